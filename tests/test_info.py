"""`ntkspec info` end to end.

- On the real quickstart output (2 ranks): status complete, provenance, the shapes, and the
  summary numbers equal what h5py reads from the file (printed with 6 significant digits);
  the same text under mpirun -np 2 as alone (rank 0 prints once).
- On partial files (a copy left as PATH.partial with status "running" and ragged rows as a
  killed run leaves them; status interrupted / diverged / failed; asking for PATH when only
  PATH.partial exists): the summary, marked PARTIAL, exit status 0.
- Distance to the infinite-width kernel: computed from /analytic/ntk and /trajectory/ntk and
  checked against numpy.
- A file with damaged datasets (compact storage shorter than the shape): the rest of the
  summary, one error line counting the damage, exit status 2, no crash.
- A sweep file: widths, mean distances and the fitted slope.
- Not an ntkspec file (plain HDF5, other format, text, truncated, folder, missing): one line
  "ntkspec: error: FILE: ...", exit status 2, nothing on stdout, at 1 and 2 ranks."""
import os
import re
import shutil
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkharness as H  # noqa: E402
from test_plot import write_sweep_file, write_training_file  # noqa: E402

R = H.Report()
tmp = H.tmpdir()


def info(args, np_=1):
    return H.run(["info"] + list(args), np=np_, timeout=300)


def metrics(text):
    """{metric: (first, last)} from the trajectory table."""
    out = {}
    body = text.split("\ntrajectory:", 1)[-1]
    for line in body.splitlines()[2:]:
        m = re.match(r"^  (\S+)\s+(\S+)\s+(\S+)$", line)
        if not m:
            break
        out[m.group(1)] = (m.group(2), m.group(3).rstrip("*"))
    return out


def close(s, v, rel=1e-5):  # printed with %.6g
    if s == "n/a":
        return np.isnan(v)
    try:
        x = float(s)
    except ValueError:
        return False
    return abs(x - v) <= rel * max(abs(v), 1e-300)


def one_error(p, words):
    lines = p.stderr.strip().splitlines()
    return (p.returncode == 2 and len(lines) == 1 and lines[0].startswith("ntkspec: error: ")
            and words in lines[0] and p.stdout.strip() == "")


# 1. complete quickstart file (training shortened to 8 steps to keep the test quick) ------
qs = os.path.join(tmp, "quickstart.h5")
p = H.run(["run", os.path.join(H.SOURCE_DIR, "configs", "quickstart.yaml"), "--set", "output.path=" + qs,
           "--set", "output.save_ntk=true", "--set", "train.steps=8", "-q"], np=2)
R.check(p.returncode == 0, "quickstart run: %s" % p.stderr)
if p.returncode == 0:
    p1 = info([qs])
    R.check(p1.returncode == 0 and p1.stderr == "", "info quickstart: %d %s" % (p1.returncode, p1.stderr))
    t = p1.stdout
    R.check(re.search(r"^status\s+complete$", t, re.M) is not None and "PARTIAL" not in t, "status complete")
    R.check(re.search(r"^processes\s+2 ranks, grid 2x1", t, re.M) is not None, "provenance: ranks and grid")
    R.check(re.search(r"^command\s+ntkspec run .*quickstart.yaml", t, re.M) is not None, "provenance: command")
    R.check(re.search(r"^network\s+width 512, depth 4, relu", t, re.M) is not None, "configuration summary")
    with h5py.File(qs, "r") as f:
        T, K = f["trajectory/eigenvalues"].shape
        R.check(re.search(r"^  /trajectory/eigenvalues\s+\(%d\+, %d\)\s+float$" % (T, K), t, re.M) is not None,
                "shape of /trajectory/eigenvalues listed")
        R.check(re.search(r"^  /data/x_train\s+\(256, 1\)", t, re.M) is not None, "shape of /data/x_train")
        R.check("%d measurement" % T in t, "number of measurements")
        m = metrics(t)
        for name in ["lambda_max", "lambda_min", "condition_number", "train_loss", "test_loss", "drift"]:
            v = f["trajectory/" + name][()]
            R.check(name in m and close(m[name][0], v[0]) and close(m[name][1], v[-1]),
                    "%s first/last %s vs %r" % (name, m.get(name), (v[0], v[-1])))
        # every (T,) trajectory dataset appears in the table
        for name, d in f["trajectory"].items():
            if d.ndim == 1 and name != "step":
                R.check(name in m, "trajectory/%s in the summary" % name)
        lt = f["trajectory/layer_trace"][-1]
        share = 100 * lt[-1] / lt.sum()
        R.check(re.search(r"output %.1f%%" % share, t) is not None, "output layer's trace share %.1f%%" % share)
        R.check(re.search(r"^  eigensolve\s+\d", t, re.M) is not None, "timing table")
        theta = f["trajectory/ntk"][0]
        lam_max0 = f["trajectory/lambda_max"][0]
    # mpirun -np 2: rank 0 prints, once, the same text
    p2 = info([qs], np_=2)
    R.check(p2.returncode == 0 and p2.stdout == p1.stdout, "info under mpirun -np 2 prints the same once")
    p3 = info(["--config", qs])
    R.check(p3.returncode == 0 and "\n  width: 512\n" in p3.stdout, "--config prints the stored YAML")

    # 2. distance to Theta_inf: add a made-up analytic kernel and check the number
    an = os.path.join(tmp, "with_analytic.h5")
    shutil.copy(qs, an)
    rng = np.random.default_rng(1)
    E = rng.standard_normal(theta.shape)
    theta_inf = theta + 0.03 * np.linalg.norm(theta) / np.linalg.norm(E) * (E + E.T) / 2
    with h5py.File(an, "a") as f:
        f["analytic/ntk"] = theta_inf
        lam_inf = np.linalg.eigvalsh(theta_inf)[::-1]
        f["analytic/eigenvalues"] = lam_inf
        w0 = f["trajectory/eigenvalues"][0]
    d = np.linalg.norm(theta - theta_inf) / np.linalg.norm(theta_inf)
    e = np.linalg.norm(w0 - lam_inf[:len(w0)]) / np.linalg.norm(lam_inf[:len(w0)])
    p4 = info([an])
    m = metrics(p4.stdout)
    R.check(p4.returncode == 0, "info with analytic kernel: %s" % p4.stderr)
    key = "||Theta-Theta_inf||_F/||Theta_inf||_F"
    R.check(key in m and close(m[key][0], d), "distance to Theta_inf %s vs numpy %.6g" % (m.get(key), d))
    key = "||lambda-lambda_inf||_2/||lambda_inf||_2"
    R.check(key in m and close(m[key][0], e), "eigenvalue error vs Theta_inf %s vs numpy %.6g" % (m.get(key), e))

    # 3. partial: the quickstart file as a killed run leaves it (PATH.partial, running)
    part = os.path.join(tmp, "killed.h5.partial")
    shutil.copy(qs, part)
    with h5py.File(part, "a") as f:
        f.attrs["status"] = "running"
        del f.attrs["end_utc"]
    for asked in [part, part[:-len(".partial")]]:
        p5 = info([asked])
        t5 = p5.stdout
        R.check(p5.returncode == 0, "info on a partial file (%s): %s" % (asked, p5.stderr))
        R.check(re.search(r"^status\s+running: PARTIAL", t5, re.M) is not None, "marked partial (running)")
        R.check("(not finished)" in t5, "no end time shown as not finished")
        m5 = metrics(t5)
        R.check("lambda_max" in m5 and close(m5["lambda_max"][0], lam_max0),
                "partial: same lambda_max as the complete file")
    R.check("does not exist (yet): showing" in info([part[:-len(".partial")]]).stdout,
            "asking for PATH shows PATH.partial with a note")

# 3b. a real killed run: SIGKILL to every rank right after a measurement was flushed
#     (measurements 100 steps, a few seconds, apart: the kill lands between two flushes)
def killed_run():
    import signal
    import subprocess
    import time
    path = os.path.join(tmp, "killed_real.h5")
    cmd = ["mpirun", "-q", "-np", "2", H.NTKSPEC, "run", os.path.join(H.SOURCE_DIR, "configs", "quickstart.yaml"),
           "--set", "output.path=" + path, "--set", "train.steps=100000", "--set", "train.measure=every",
           "--set", "train.measure_every=100", "--set", "model.width=256", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    seen, deadline = 0, time.time() + H.limit(900)
    while time.time() < deadline and proc.poll() is None:
        q = subprocess.run([H.NTKSPEC, "info", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=H.limit(300), stdin=subprocess.DEVNULL)
        m = re.search(r"(\d+) measurements? saved", q.stdout)
        seen = int(m.group(1)) if m else 0
        if seen >= 2:
            break
        time.sleep(0.3)
    running = proc.poll() is None
    if running:
        os.killpg(proc.pid, signal.SIGKILL)
    err = proc.communicate()[1]
    if not running and "train." in err:
        print("note: training not available (%s); real killed run skipped" % err.strip())
        return
    R.check(running and seen >= 2, "training run still going with >= 2 measurements when killed (%d): %s"
            % (seen, err))
    R.check(os.path.exists(path + ".partial") and not os.path.exists(path), "a killed run leaves only PATH.partial")
    q = info([path])
    R.check(q.returncode == 0 and re.search(r"^status\s+running: PARTIAL", q.stdout, re.M) is not None,
            "info on the killed run: %d %s" % (q.returncode, q.stderr))
    m = re.search(r"trajectory: (\d+) measurements, steps 0 \.\. (\d+)", q.stdout)
    R.check(m is not None and int(m.group(1)) >= 2 and int(m.group(2)) == 100 * (int(m.group(1)) - 1),
            "killed run: every flushed measurement readable (%s)" % (m.group(0) if m else q.stdout[:200]))


killed_run()

# 4. training trajectories: complete, killed with ragged rows, interrupted, diverged, failed
tr = os.path.join(tmp, "train.h5")
s = write_training_file(tr)
p6 = info([tr])
m = metrics(p6.stdout)
R.check(p6.returncode == 0 and "11 measurements, steps 0 .. 1000" in p6.stdout, "training file: %s" % p6.stderr)
for name in ["lambda_max", "condition_number", "drift", "train_loss", "predicted_train_loss", "test_loss", "weyl_ok"]:
    R.check(name in m and close(m[name][0], s[name][0]) and close(m[name][1], s[name][-1]),
            "training %s first/last %s vs %r" % (name, m.get(name), (s[name][0], s[name][-1])))
R.check("first (step 0)" in p6.stdout and "last (step 1000)" in p6.stdout, "table header names the steps")
killed = os.path.join(tmp, "killed_train.h5.partial")
write_training_file(killed, "running", {"*": 6, "train_loss": 5})
p7 = info([killed])
m = metrics(p7.stdout)
R.check(p7.returncode == 0 and re.search(r"^status\s+running: PARTIAL .*6 measurements saved", p7.stdout, re.M)
        is not None, "killed run: partial, 6 measurements: %s" % p7.stderr)
R.check("train_loss" in m and close(m["train_loss"][1], s["train_loss"][4]) and "*" in p7.stdout,
        "ragged dataset: its own last row, marked")
R.check("lambda_max" in m and close(m["lambda_max"][1], s["lambda_max"][5]), "last complete row of lambda_max")
for status in ["interrupted", "diverged", "failed"]:
    path = os.path.join(tmp, "train_%s.h5" % status)
    write_training_file(path, status, {"*": 4})
    p8 = info([path])
    R.check(p8.returncode == 0 and re.search(r"^status\s+%s: PARTIAL" % status, p8.stdout, re.M) is not None,
            "status %s reported as partial: %s" % (status, p8.stdout[:300]))

# 4b. damaged datasets (compact storage shorter than the shape, as fuzz_hdf5 found): the
#     rest of the summary, the damage counted in one error line, status 2, no crash
dam = os.path.join(tmp, "damaged.h5")
shutil.copy(tr, dam)
H.compact_too_small(dam, "trajectory/lambda_max")
H.compact_too_small(dam, "trajectory/condition_number")
p = info([dam])
lines = p.stderr.strip().splitlines()
R.check(p.returncode == 2 and len(lines) == 1 and "could not be read (damaged file?)" in lines[0],
        "damaged compact datasets: status %d, stderr %r" % (p.returncode, p.stderr))
m = metrics(p.stdout)
R.check(m.get("lambda_max") == ("-", "-") and m.get("condition_number") == ("-", "-") and "train_loss" in m and close(m["train_loss"][0], s["train_loss"][0]),
        "damaged metrics shown as '-', the other metrics read: %s" % m)

# 4c. a file whose metadata makes HDF5 itself crash (fuzz_hdf5's corrupt local heap)
crasher = os.path.join(H.SOURCE_DIR, "fuzz", "corpus", "hdf5", "raw_corrupt_local_heap.h5")
p = info([crasher])
R.check(one_error(p, "HDF5 crashed (signal 11, Segmentation fault) reading its metadata"),
        "a file HDF5 crashes on: status %d, stderr %r" % (p.returncode, p.stderr))

# 5. sweep file
sw = os.path.join(tmp, "sweep.h5")
slope = write_sweep_file(sw)
p9 = info([sw])
R.check(p9.returncode == 0 and "width sweep: 5 widths x 4 seeds" in p9.stdout, "sweep summary: %s" % p9.stderr)
R.check(("log-log slope of distance vs width: %.4g" % slope) in p9.stdout, "sweep slope printed")
with h5py.File(sw, "r") as f:
    dm = f["sweep/distance_mean"][()]
rows = re.findall(r"^\s+(\d+)\s+(\S+)\s+\S+\s+\S+$", p9.stdout.split("width sweep:")[-1], re.M)
R.check(len(rows) == 5 and all(close(r[1], v) for r, v in zip(rows, dm)), "sweep mean distances %s" % rows)

# 6. not ntkspec files: one line, status 2, at 1 and 2 ranks
plain = os.path.join(tmp, "plain.h5")
with h5py.File(plain, "w") as f:
    f["x"] = np.arange(4.0)
other = os.path.join(tmp, "other.h5")
with h5py.File(other, "w") as f:
    f.attrs["format"] = "somethingelse"
text = H.write_config(tmp, "notes.h5", "just text\n")
trunc = os.path.join(tmp, "truncated.h5")
with open(tr, "rb") as a, open(trunc, "wb") as b:
    b.write(a.read(1500))
cases = [(plain, "%s: not an ntkspec file (no format attribute)" % plain),
         (other, "not an ntkspec file (format is 'somethingelse')"),
         (text, "not an ntkspec file (not an HDF5 file)"),
         (trunc, "truncated.h5: "),
         (tmp, "is a folder"),
         (os.path.join(tmp, "missing.h5"), "missing.h5: no such file")]
for i, (path, words) in enumerate(cases):
    for np_ in ((1, 2) if i in (0, 5) else (1,)):
        p = info([path], np_=np_)
        R.check(one_error(p, words), "info %s at %d rank(s): status %d, stderr %r"
                % (os.path.basename(path), np_, p.returncode, p.stderr))
p = info([plain])
R.check(p.stderr.strip() == "ntkspec: error: %s: not an ntkspec file (no format attribute)" % plain,
        "the exact line for a plain HDF5 file: %r" % p.stderr)
for args, words in [([], "missing FILE"), ([tr, sw], "more than one file"), (["--bogus", tr], "unknown option")]:
    p = info(args)
    R.check(one_error(p, words), "usage %s: %d %r" % (args, p.returncode, p.stderr))
p = info(["--help"])
R.check(p.returncode == 0 and "usage: ntkspec info" in p.stdout, "info --help")

status = R.finish()
if status == 0:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(status)
