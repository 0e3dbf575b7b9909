"""Faults (issue 7, docs/HARDENING.md).  Each case checks what was kept, not only the exit
status:
  memory      a run whose estimated peak exceeds memory.limit_mb (or the SLURM limit)
              stops before computing, naming the largest term and how many ranks would fit,
              and that rank count does fit; --dry-run prints the limit;
  kill        SIGKILL of one rank mid-run ends the whole job; PATH.partial keeps every
              measurement reported before the kill, status "running", no PATH;
  checkpoint  truncated, zeroed, garbage, empty, foreign and incomplete checkpoints given
              to --resume are refused with one line naming the checkpoint (exit 2), and
              the interrupted output file and the checkpoint are left as they were;
  config      a resume with changed keys is refused naming a changed key;
  output      a missing or non-folder output folder is refused before any compute, and
              leaves no file.
Pass section names to run only those."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkharness as H  # noqa: E402

R = H.Report()
tmp = H.tmpdir()
ONLY = sys.argv[1:]


def section(name):
    run = not ONLY or name in ONLY
    if run:
        print("--", name, flush=True)
    return run


def one_error_line(p, words, what):
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    R.check(p.returncode == 2, "%s: exit status %d, expected 2: %s" % (what, p.returncode, p.stderr[-600:]))
    R.check(len(lines) == 1 and lines[0].startswith("ntkspec: error:"),
            "%s: one error line, got %r" % (what, lines[-5:]))
    for w in words:
        R.check(w in p.stderr, "%s: message names %r: %s" % (what, w, p.stderr.strip()[-400:]))


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], stdout=subprocess.PIPE, text=True).stdout
    return [int(x) for x in out.split()]


def start_run(cfg, path, np_, extra=()):
    cmd = ["mpirun", "-q", "-np", str(np_), H.NTKSPEC, "run", cfg, "--set", "output.path=" + path,
           "--set", "output.overwrite=true"] + list(extra)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)


def wait_for(proc, pattern, limit=300):
    """Progress lines until one matches; returns every 'step N:' reported so far."""
    t0, steps = time.time(), []
    while time.time() - t0 < limit:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"step (\d+):", line)
        if m:
            steps.append(int(m.group(1)))
        if re.search(pattern, line):
            return steps
    return None


TRAIN = """seed: 3
model: {width: 48, depth: 2, activation: tanh}
fourier: {features: 6}
data: {source: synthetic_1d, n_train: 24}
grid: {block_size: 4}
train: {steps: 400, lr_scale: 0.5, measure: every, measure_every: 10}
"""

# ------------------------------------------------------------------ memory --
if section("memory"):
    BIG = """seed: 1
model: {width: 1024, depth: 2}
fourier: {features: 16}
data: {source: synthetic_1d, n_train: 1024}
grid: {block_size: 32}
"""
    cfg = H.write_config(tmp, "big.yaml", BIG)
    out = os.path.join(tmp, "big.h5")

    def dry(np_, extra=(), env=None):
        cmd = ["mpirun", "-q", "-np", str(np_), H.NTKSPEC, "run", cfg, "--dry-run",
               "--set", "output.path=" + out] + list(extra)
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=300, env=env, stdin=subprocess.DEVNULL)

    p = dry(1)
    m = re.search(r"estimated peak\s+([0-9.]+) MiB", p.stdout)
    lim = re.search(r"limit per rank\s+([0-9.]+) MiB \((.*)\)", p.stdout)
    R.check(p.returncode == 0 and m and lim, "dry run prints the estimate and the limit: " + p.stdout[-400:])
    if m:
        est1 = float(m.group(1))
        limit = 0.7 * est1
        t0 = time.time()
        p = H.run(["run", cfg, "--set", "output.path=" + out, "--set", "memory.limit_mb=%.3f" % limit], np=1)
        one_error_line(p, ["memory.limit_mb", "estimated peak", "largest term", "ranks would fit"],
                       "estimate %.1f MiB over a limit of %.1f MiB" % (est1, limit))
        R.check(not os.path.exists(out) and not os.path.exists(out + ".partial"), "no output file")
        R.check(time.time() - t0 < 60 and "step 0" not in p.stdout, "stopped before computing")
        fit = re.search(r"(\d+) ranks would fit", p.stderr)
        if fit:
            P = int(fit.group(1))
            print("   estimate %.1f MiB on 1 rank, limit %.1f MiB: %d ranks would fit" % (est1, limit, P))
            R.check(2 <= P <= 8, "a plausible rank count (%d)" % P)
            if P <= 4:
                q = dry(P, ["--set", "memory.limit_mb=%.3f" % limit])
                R.check(q.returncode == 0 and "EXCEEDED" not in q.stdout,
                        "%d ranks fit the limit, as promised: %s" % (P, q.stdout[-300:]))
                q = H.run(["run", cfg, "-q", "--set", "output.path=" + out, "--set", "output.overwrite=true",
                           "--set", "memory.limit_mb=%.3f" % limit], np=P)
                R.check(q.returncode == 0 and os.path.exists(out), "the run on %d ranks completes" % P)
            if P > 2:
                q = dry(P - 1, ["--set", "memory.limit_mb=%.3f" % limit])
                R.check("EXCEEDED" in q.stdout, "%d ranks do not fit" % (P - 1))
        # SLURM's allocation is the default limit
        env = dict(os.environ, SLURM_MEM_PER_NODE="8")
        p = subprocess.run(["mpirun", "-q", "-np", "2", "-x", "SLURM_MEM_PER_NODE", H.NTKSPEC, "run", cfg,
                            "--set", "output.path=" + out, "--set", "output.overwrite=true"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300, env=env,
                           stdin=subprocess.DEVNULL)
        one_error_line(p, ["SLURM_MEM_PER_NODE 8 MiB / 2 ranks", "largest term"], "SLURM_MEM_PER_NODE=8")
        R.check(not os.path.exists(out + ".partial"), "no partial file")
    p = H.run(["run", cfg, "--set", "output.path=" + out, "--set", "memory.limit_mb=-1"], np=1)
    one_error_line(p, ["memory.limit_mb"], "negative limit")

# -------------------------------------------------------------------- kill --
if section("kill"):
    cfg = H.write_config(tmp, "kill.yaml", TRAIN)
    out = os.path.join(tmp, "kill.h5")
    proc = start_run(cfg, out, 2)
    steps = wait_for(proc, r"step 60:")
    R.check(steps is not None, "the run reached step 60")
    kids = children(proc.pid)
    R.check(len(kids) == 2, "two rank processes (%s)" % kids)
    if kids:
        os.kill(kids[-1], signal.SIGKILL)
    try:
        proc.communicate(timeout=120)
        ended = True
    except subprocess.TimeoutExpired:
        ended = False
        for k in children(proc.pid):
            os.kill(k, signal.SIGKILL)
        proc.kill()
        proc.communicate()
    R.check(ended and proc.returncode != 0, "killing one rank ends the job (status %s)" % proc.returncode)
    def alive(k):
        try:
            with open("/proc/%d/stat" % k) as f:
                return f.read().split()[2] != "Z"
        except OSError:
            return False
    t0 = time.time()
    while any(alive(k) for k in kids) and time.time() - t0 < 30:
        time.sleep(0.5)
    R.check(not any(alive(k) for k in kids), "no rank process left running (%s)" % [k for k in kids if alive(k)])
    R.check(not os.path.exists(out) and os.path.exists(out + ".partial"), "only PATH.partial is left")
    if os.path.exists(out + ".partial") and steps:
        with h5py.File(out + ".partial", "r") as f:
            st = f.attrs["status"]
            T = {k: f["trajectory"][k][()] for k in f["trajectory"]}
        kept = T["step"].tolist()
        R.check(st == "running", "status of the killed run: %s (recognisably partial)" % st)
        R.check(set(steps) <= set(kept), "every reported measurement %s is in the file %s" % (steps, kept))
        R.check(kept == list(range(0, 10 * len(kept), 10)), "rows are the schedule's prefix")
        R.check(all(len(v) == len(kept) for v in T.values()), "all trajectory datasets have the same rows")
        R.check(np.all(np.isfinite(T["train_loss"])) and np.all(np.diff(T["train_loss"]) < 0),
                "kept losses are finite and decreasing")
        print("   one rank killed after step %d: %d rows kept" % (steps[-1], len(kept)))

# -------------------------------------------------------------- checkpoint --
def interrupted_run(name):
    """A 2-rank run stopped by SIGUSR1 (mpirun forwards it to the ranks, as a SLURM
    --signal does): PATH (status interrupted) and PATH.ckpt."""
    cfg = H.write_config(tmp, name + ".yaml", TRAIN)
    out = os.path.join(tmp, name + ".h5")
    proc = start_run(cfg, out, 2)
    ok = wait_for(proc, r"step 30:") is not None
    proc.send_signal(signal.SIGUSR1)
    proc.communicate(timeout=300)
    R.check(ok and proc.returncode == 3 and os.path.exists(out + ".ckpt"),
            "%s: interrupted with a checkpoint (status %d)" % (name, proc.returncode))
    return cfg, out


def snapshot(path):
    with h5py.File(path, "r") as f:
        return f.attrs["status"], f["trajectory/step"][()].tolist(), f["trajectory/train_loss"][()]


if section("checkpoint"):
    cfg, out = interrupted_run("ck")
    if os.path.exists(out + ".ckpt"):
        good = open(out + ".ckpt", "rb").read()
        before = snapshot(out)
        R.check(before[0] == "interrupted", "the interrupted file says so")
        variants = {
            "truncated to half": good[: len(good) // 2],
            "truncated to 100 bytes": good[:100],
            "zeroed superblock": b"\0" * 4096 + good[4096:],
            "garbage": b"not a checkpoint\n" * 100,
            "empty": b"",
        }
        for what, data in variants.items():
            ck = out + ".ckpt"
            with open(ck, "wb") as f:
                f.write(data)
            p = H.run(["run", cfg, "--resume", "--set", "output.path=" + out], np=2)
            one_error_line(p, ["checkpoint"], "checkpoint " + what)
            R.check(open(ck, "rb").read() == data, "%s: checkpoint left as it was" % what)
            after = snapshot(out)
            R.check(after[0] == before[0] and after[1] == before[1] and np.array_equal(after[2], before[2]),
                    "%s: the interrupted output file is unchanged" % what)
        # well-formed HDF5 that is not a (whole) checkpoint
        shutil.copy(out, out + ".ckpt")
        p = H.run(["run", cfg, "--resume", "--set", "output.path=" + out], np=2)
        one_error_line(p, ["checkpoint"], "the result file given as checkpoint")
        for drop in ["params/V", "theta0"]:
            with open(out + ".ckpt", "wb") as f:
                f.write(good)
            with h5py.File(out + ".ckpt", "a") as f:
                del f[drop]
            p = H.run(["run", cfg, "--resume", "--set", "output.path=" + out], np=2)
            one_error_line(p, ["checkpoint", drop.split("/")[-1]], "checkpoint without " + drop)
            after = snapshot(out)
            R.check(after[1] == before[1], "without %s: the output file is unchanged" % drop)
        # the intact checkpoint still resumes to completion
        with open(out + ".ckpt", "wb") as f:
            f.write(good)
        p = H.run(["run", cfg, "-q", "--resume", "--set", "output.path=" + out], np=2)
        R.check(p.returncode == 0 and snapshot(out)[0] == "complete", "the intact checkpoint resumes")

# ------------------------------------------------------------------ config --
if section("config"):
    cfg, out = interrupted_run("cf")
    if os.path.exists(out + ".ckpt"):
        before = snapshot(out)
        p = H.run(["run", cfg, "--resume", "--set", "output.path=" + out, "--set", "model.depth=3"], np=2)
        one_error_line(p, ["model.depth", "2 in the checkpoint, 3 now"], "resume with another depth")
        p = H.run(["run", cfg, "--resume", "--set", "output.path=" + out, "--set", "seed=4",
                   "--set", "data.n_train=20"], np=2)
        one_error_line(p, ["another configuration"], "resume with two changed keys")
        R.check("seed" in p.stderr or "data.n_train" in p.stderr, "a changed key is named: " + p.stderr)
        R.check(snapshot(out)[1] == before[1], "refused resumes leave the output file unchanged")
        p = H.run(["run", cfg, "-q", "--resume", "--set", "output.path=" + out, "--set", "train.steps=500"], np=2)
        R.check(p.returncode == 0, "train.steps may change on resume: " + p.stderr[-300:])

# ------------------------------------------------------------------ output --
if section("output"):
    cfg = H.write_config(tmp, "out.yaml", TRAIN.replace("steps: 400", "steps: 0"))
    afile = os.path.join(tmp, "a_file")
    open(afile, "w").write("x")
    for what, path in [("missing folder", os.path.join(tmp, "no", "such", "dir", "o.h5")),
                       ("a file as folder", os.path.join(afile, "o.h5"))]:
        t0 = time.time()
        p = H.run(["run", cfg, "--set", "output.path=" + path], np=2)
        one_error_line(p, [os.path.dirname(path)], what)
        R.check("step 0" not in p.stdout and "eigensolve" not in p.stdout, "%s: refused before computing" % what)
        R.check(not os.path.exists(path) and not os.path.exists(path + ".partial"), "%s: no file" % what)
        print("   %s: refused in %.1f s" % (what, time.time() - t0))
    if os.getuid() != 0:
        ro = os.path.join(tmp, "readonly")
        os.mkdir(ro, 0o500)
        p = H.run(["run", cfg, "--set", "output.path=" + os.path.join(ro, "o.h5")], np=2)
        one_error_line(p, [ro], "read-only folder")
        R.check(os.listdir(ro) == [], "read-only folder: no file")

shutil.rmtree(tmp, ignore_errors=True)
sys.exit(R.finish())
