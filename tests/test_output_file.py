"""The output file's format and its protection (issues 21 and 22, docs/OUTPUT.md):
  schema    `ntkspec schema` equals the committed tools/ntk_schema.json, is valid JSON, and
            every /trajectory series it lists is in docs/OUTPUT.md's table and is the set a
            training run writes (with its optional series switched on);
  lock      two concurrent runs on one output.path: the second is refused at start (exit 2,
            one line naming the holder's pid), the first completes with datasets bitwise
            equal to a lone run; the same for two concurrent --resume; a lock held by a
            process of "another host" (an fcntl lock this test holds) is refused naming
            that host; a lock left by a killed run is taken over with a warning;
  refuse    a FIFO, a null device (as root), a folder and a dangling symlink as output.path are refused
            (exit 2) with overwrite true or false and left as they were; data.path or
            train.checkpoint naming the output file is refused;
  resume    --resume of a complete run is refused naming its status; `ntkspec info` on a
            checkpoint says it is a checkpoint; a run killed as soon as PATH.partial exists
            leaves a file h5py opens (status "running").
Pass section names to run only those."""
import fcntl
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time

import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkharness as H  # noqa: E402

R = H.Report()
tmp = H.tmpdir()
section = H.section

BASE = """seed: 3
model: {width: 64, depth: 3, activation: relu}
fourier: {features: 8, scale: 1.0}
data: {source: synthetic_1d, n_train: 24, n_test: 8}
grid: {block_size: 4}
"""
# long enough (thousands of steps) that a second run started meanwhile finds it running
TRAIN = BASE + """train: {steps: 3000, lr_scale: 0.5, measure: every, measure_every: 500, checkpoint_every: 1000}
output: {overwrite: true}
"""


one_error_line = R.one_error_line


def datasets(path):
    """{name: (dtype, shape, bytes)} of every dataset but /timing and /memory."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not name.startswith(("timing", "memory")):
                v = obj[()]
                out[name] = (str(v.dtype), v.shape, v.tobytes())
        f.visititems(visit)
    return out


def same_datasets(a, b, what):
    da, db = datasets(a), datasets(b)
    R.check(sorted(da) == sorted(db), "%s: the same datasets: %s" % (what, sorted(set(da) ^ set(db))))
    diff = [n for n in da if n in db and da[n] != db[n]]
    R.check(not diff, "%s: datasets bitwise equal, differ: %s" % (what, diff))


def start(args, np_=1):
    return subprocess.Popen(["mpirun", "-q", "-np", str(np_), H.NTKSPEC] + args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def descends_from(pid, ancestor):
    """Whether process `pid` is `ancestor` or below it (signals go only to our own runs)."""
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def holder_pid(lock, proc, limit=300):
    """The pid PATH.lock names once `proc` (a run this test started) holds it; None if proc
    ended first."""
    t0 = time.time()
    while time.time() - t0 < limit and proc.poll() is None:
        try:
            # only a whole line (it ends with a newline): never a pid cut short
            m = re.match(r"host \S+ pid (\d+) .*\n", open(lock).read())
        except OSError:
            m = None
        if m and descends_from(int(m.group(1)), proc.pid):
            return int(m.group(1))
        time.sleep(0.002)
    return None


def collide(first_args, second_args, out, what):
    """Starts the first command, freezes it (SIGSTOP) while it holds the lock, runs the
    second, lets the first go on.  Returns (first's process, second's result) or None when
    the first ended before it could be frozen."""
    a = start(first_args)
    pid = holder_pid(out + ".lock", a)
    if pid is None:
        a.communicate()
        print("   %s: the first run ended before it could be frozen; again" % what, flush=True)
        return None
    os.kill(pid, signal.SIGSTOP)
    try:
        b = H.run(second_args, np=2)
    finally:
        os.kill(pid, signal.SIGCONT)
    one_error_line(b, [out, "in use by another run", "pid %d" % pid, "host " + socket.gethostname()],
                   what + ": the second")
    return a, b, pid


# ------------------------------------------------------------------ schema --
if section("schema"):
    p = subprocess.run([H.NTKSPEC, "schema"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=120)
    committed = open(os.path.join(H.SOURCE_DIR, "tools", "ntk_schema.json")).read()
    R.check(p.returncode == 0 and p.stdout == committed,
            "`ntkspec schema` equals tools/ntk_schema.json (regenerate it with "
            "`build/ntkspec schema > tools/ntk_schema.json`)")
    sch = json.loads(p.stdout)
    names = [s["name"] for s in sch["trajectory"]]
    R.check(len(names) == len(set(names)) and names[0] == "step", "trajectory names unique, step first")
    doc = open(os.path.join(H.SOURCE_DIR, "docs", "OUTPUT.md")).read()
    table = doc[doc.index("## `/trajectory`"):doc.index("## `/analytic`")]
    documented = set(re.findall(r"^\| `(\w+)`(?:, `(\w+)`)? \|", table, re.M))
    documented = {n for pair in documented for n in pair if n}
    R.check(documented == set(names), "docs/OUTPUT.md's /trajectory table is the schema's: %s"
            % sorted(documented ^ set(names)))
    # a training run with every optional series on writes exactly the schema's series
    # (the accuracies need classification data: a regression run lacks just those two)
    cfg = H.write_config(tmp, "all.yaml", BASE + "analytic: {enabled: true}\n"
                         "train: {steps: 4, lr_scale: 0.5, measure: every, measure_every: 2}\n"
                         "output: {save_ntk: true, save_eigenvectors: true}\n")
    out = os.path.join(tmp, "all.h5")
    p = H.run(["run", cfg, "-q", "--set", "output.path=" + out], np=2)
    R.check(p.returncode == 0, "run with every series: " + p.stderr[-400:])
    with h5py.File(out, "r") as f:
        written = set(f["trajectory"])
        rows = {n: f["trajectory"][n].shape[0] for n in written}
    # (ntk.method matrix_free's own series are not a dense run's: the same run with it
    # writes them and everything else but the kernel, which it never forms)
    mf_only = {s["name"] for s in sch["trajectory"] if s["when"] == "matrix_free"}
    want = set(names) - {"train_accuracy", "test_accuracy"} - mf_only
    R.check(written == want, "the run writes the schema's series: %s" % sorted(written ^ want))
    R.check(set(rows.values()) == {3}, "every series has the 3 measurements: %s" % rows)
    out_mf = os.path.join(tmp, "all_mf.h5")
    p = H.run(["run", cfg, "-q", "--set", "output.path=" + out_mf, "--set", "ntk.method=matrix_free",
               "--set", "ntk.top_k=4", "--set", "output.save_ntk=false"], np=2)
    R.check(p.returncode == 0, "matrix-free run with every series: " + p.stderr[-400:])
    with h5py.File(out_mf, "r") as f:
        written = set(f["trajectory"])
    want = set(names) - {"train_accuracy", "test_accuracy", "ntk"}
    R.check(written == want, "the matrix-free run writes the schema's series: %s" % sorted(written ^ want))
    # every name the file holds is in the schema (the writers outside the trajectory use
    # their own literals: this keeps the schema complete)
    def unknown_names(path, checkpoint=False):
        groups = sch["groups"]
        def known(group, name, attrs):
            for g in groups:
                gname = g["group"]
                if gname.startswith("checkpoint:") != checkpoint:
                    continue
                pat = re.escape(gname.replace("checkpoint:", "").strip("/")).replace(re.escape("<t>"), "[0-9]+")
                if (g["items"] == "attributes") == attrs and re.fullmatch(pat, group.strip("/")) and name in g["names"]:
                    return True
            return not checkpoint and not attrs and group.strip("/") == "trajectory" and name in names
        bad = []
        with h5py.File(path, "r") as f:
            def visit(name, obj):
                group, _, leaf = name.rpartition("/")
                if isinstance(obj, h5py.Dataset) and not known(group, leaf, False):
                    bad.append("/" + name)
                for a in obj.attrs:
                    if not known(name, a, True):
                        bad.append("/%s@%s" % (name, a))
            f.visititems(visit)
            bad += ["/@" + a for a in f.attrs if not known("", a, True)]
        return bad
    full = os.path.join(tmp, "full.h5")
    p = H.run(["run", cfg, "-q", "--set", "output.path=" + full, "--set", "output.save_params=true",
               "--set", "output.save_data=true", "--set", "train.checkpoint_every=2"], np=2)
    R.check(p.returncode == 0, "run with data, parameters and a checkpoint: " + p.stderr[-400:])
    R.check(unknown_names(full) == [], "every name of a run file is in the schema: %s" % unknown_names(full))
    R.check(unknown_names(full + ".ckpt", True) == [], "every name of a checkpoint is in the schema: %s"
            % unknown_names(full + ".ckpt", True))
    R.check(unknown_names(out_mf) == [], "every name of a matrix-free run file is in the schema: %s"
            % unknown_names(out_mf))
    # the tools take the names from the same file
    sys.path.insert(0, os.path.join(H.SOURCE_DIR, "tools"))
    import ntkfile
    R.check(ntkfile.trajectory_names() == names and ntkfile.dataset("trajectory/ntk") == "/trajectory/ntk"
            and ntkfile.dataset("params/step_12/W") == "/params/step_12/W", "tools/ntkfile.py reads the schema")
    try:
        ntkfile.dataset("trajectory/no_such_series")
        R.check(False, "ntkfile.dataset refuses a name the format does not have")
    except KeyError:
        R.check(True, "")

# -------------------------------------------------------------------- lock --
if section("lock"):
    cfg = H.write_config(tmp, "train.yaml", TRAIN)
    lone = os.path.join(tmp, "lone.h5")
    p = H.run(["run", cfg, "-q", "--set", "output.path=" + lone], np=1)
    R.check(p.returncode == 0, "lone run: " + p.stderr[-400:])
    out = os.path.join(tmp, "shared.h5")
    args = ["run", cfg, "-q", "--set", "output.path=" + out]
    for attempt in range(3):
        got = collide(args, args, out, "two runs")
        if got:
            break
    R.check(got is not None, "the first run could be frozen while it held the lock")
    if got:
        a, b, pid = got
        err = a.communicate(timeout=600)[1]
        R.check(a.returncode == 0, "the first run completes: %s" % err[-400:])
        R.check(os.path.exists(out) and not os.path.exists(out + ".partial") and not os.path.exists(out + ".lock"),
                "the first run's file is in place, no .partial and no .lock left")
        if os.path.exists(out):
            same_datasets(out, lone, "first of two concurrent runs vs a lone run")

    # two --resume of one run: a run to step 1500 (checkpoint at 1000) resumed to 3000
    res = os.path.join(tmp, "resumed.h5")
    p = H.run(["run", cfg, "-q", "--set", "output.path=" + res, "--set", "train.steps=1500"], np=1)
    R.check(p.returncode == 0 and os.path.exists(res + ".ckpt"), "run to step 1500: " + p.stderr[-400:])
    rargs = ["run", cfg, "-q", "--resume", "--set", "output.path=" + res]
    for attempt in range(3):
        got = collide(rargs, rargs, res, "two resumes")
        if got:
            break
        # the resume ran to completion: start over from step 1500
        H.run(["run", cfg, "-q", "--set", "output.path=" + res, "--set", "train.steps=1500"], np=1)
    R.check(got is not None, "the first resume could be frozen while it held the lock")
    if got:
        a, b, pid = got
        err = a.communicate(timeout=600)[1]
        R.check(a.returncode == 0, "the first resume completes: %s" % err[-400:])
        if os.path.exists(res):
            same_datasets(res, lone, "first of two concurrent resumes vs a lone run")
            with h5py.File(res, "r") as f:
                R.check(f.attrs["status"] == "complete" and f.attrs["resume_count"] == 1,
                        "resumed once, complete")

    # a live holder elsewhere: this test holds the fcntl lock, the file names another host
    other = os.path.join(tmp, "other.h5")
    fd = os.open(other + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"host node-017 pid 4242 slurm_job_id 991 start 2026-01-01T00:00:00Z\n")
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    p = H.run(["run", cfg, "-q", "--set", "output.path=" + other], np=2)
    one_error_line(p, ["in use by another run", "host node-017 pid 4242 slurm_job_id 991"], "a lock held on another host")
    R.check(not os.path.exists(other) and not os.path.exists(other + ".partial"), "refused: nothing written")
    # the same file once its holder is gone (the lock released): stale, taken over
    os.close(fd)
    p = H.run(["run", cfg, "--set", "output.path=" + other, "--set", "train.steps=10"], np=2)
    R.check(p.returncode == 0 and os.path.exists(other), "a stale lock is taken over: " + p.stderr[-400:])
    R.check("stale lock" in p.stdout + p.stderr and "node-017" in p.stdout + p.stderr,
            "the takeover is logged naming the old holder: " + (p.stdout + p.stderr)[-600:])
    R.check(not os.path.exists(other + ".lock"), "the lock is removed at the end")

    # a run killed (SIGKILL) while it holds the lock leaves a stale one
    killed = os.path.join(tmp, "killed.h5")
    a = start(["run", cfg, "-q", "--set", "output.path=" + killed])
    pid = holder_pid(killed + ".lock", a)
    if pid:
        os.kill(pid, signal.SIGKILL)
    a.communicate(timeout=300)
    R.check(pid is not None and os.path.exists(killed + ".lock"), "a killed run leaves its lock file")
    p = H.run(["run", cfg, "--set", "output.path=" + killed, "--set", "train.steps=10"], np=1)
    R.check(p.returncode == 0 and "stale lock" in p.stdout + p.stderr and "pid %s" % pid in p.stdout + p.stderr,
            "the killed run's lock is taken over, naming it: " + (p.stdout + p.stderr)[-400:])

# ------------------------------------------------------------------ refuse --
if section("refuse"):
    cfg = H.write_config(tmp, "one.yaml", BASE)
    fifo = os.path.join(tmp, "fifo.h5")
    os.mkfifo(fifo)
    folder = os.path.join(tmp, "folder.h5")
    os.mkdir(folder)
    dangling = os.path.join(tmp, "dangling.h5")
    os.symlink(os.path.join(tmp, "nowhere", "x.h5"), dangling)
    cases = [(fifo, "a FIFO"), (folder, "a folder"), (dangling, "a symbolic link")]
    # a null device of our own (the system's /dev/null is never put at risk by a test)
    null = os.path.join(tmp, "null")
    if os.geteuid() == 0:
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        cases.append((null, "a device"))
    for path, kind in cases:
        for ow in ("true", "false"):
            p = H.run(["run", cfg, "--set", "output.path=" + path, "--set", "output.overwrite=" + ow], np=1)
            one_error_line(p, [path, kind, "regular files"], "%s as output.path, overwrite %s" % (kind, ow))
    R.check(stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.path.isdir(folder) and os.path.islink(dangling)
            and not os.path.exists(os.path.join(tmp, "nowhere")), "each is left as it was")
    if os.geteuid() == 0:
        R.check(stat.S_ISCHR(os.lstat(null).st_mode), "the null device is still a device")
    # a non-regular PATH.partial is not removed "as stale" either
    odd = os.path.join(tmp, "odd.h5")
    os.mkfifo(odd + ".partial")
    p = H.run(["run", cfg, "--set", "output.path=" + odd], np=1)
    one_error_line(p, [odd + ".partial", "a FIFO"], "a FIFO as PATH.partial")
    R.check(stat.S_ISFIFO(os.lstat(odd + ".partial").st_mode), "the FIFO .partial is left")

    # input, checkpoint and output naming the same file
    data = os.path.join(tmp, "data.h5")
    with h5py.File(data, "w") as f:
        f["x"] = [[0.1 * i] for i in range(12)]
        f["y"] = [[0.2 * i] for i in range(12)]
    before = open(data, "rb").read()
    hcfg = H.write_config(tmp, "hdf5.yaml", BASE.replace("synthetic_1d, n_train: 24, n_test: 8",
                                                        "hdf5, n_train: 12, path: " + data))
    p = H.run(["run", hcfg, "--set", "output.path=" + data, "--set", "output.overwrite=true"], np=1)
    one_error_line(p, ["data.path", data], "output.path = data.path")
    alias = os.path.join(tmp, ".", "sub", "..", "data.h5")
    os.makedirs(os.path.join(tmp, "sub"), exist_ok=True)
    p = H.run(["run", hcfg, "--set", "output.path=" + alias, "--set", "output.overwrite=true"], np=1)
    one_error_line(p, ["data.path"], "output.path another spelling of data.path")
    R.check(open(data, "rb").read() == before, "the input is left as it was")
    tcfg = H.write_config(tmp, "ck.yaml", TRAIN)
    out = os.path.join(tmp, "ck.h5")
    p = H.run(["run", tcfg, "--set", "output.path=" + out, "--set", "train.checkpoint=" + out], np=1)
    one_error_line(p, ["train.checkpoint", out], "train.checkpoint = output.path")
    p = H.run(["run", tcfg, "--set", "output.path=" + out, "--set", "train.checkpoint=" + out + ".partial"], np=1)
    one_error_line(p, ["train.checkpoint"], "train.checkpoint = output.path.partial")
    R.check(not os.path.exists(out) and not os.path.exists(out + ".partial"), "refused: nothing written")

# ------------------------------------------------------------------ resume --
if section("resume"):
    cfg = H.write_config(tmp, "short.yaml", TRAIN.replace("steps: 3000", "steps: 40").replace(
        "measure_every: 500, checkpoint_every: 1000", "measure_every: 10, checkpoint_every: 20"))
    out = os.path.join(tmp, "done.h5")
    p = H.run(["run", cfg, "-q", "--set", "output.path=" + out], np=2)
    R.check(p.returncode == 0, "a complete run: " + p.stderr[-300:])
    before = open(out, "rb").read()
    p = H.run(["run", cfg, "--resume", "--set", "output.path=" + out], np=2)
    one_error_line(p, [out, "status complete", "nothing to resume"], "--resume of a complete run")
    R.check(open(out, "rb").read() == before and not os.path.exists(out + ".partial"),
            "the complete file is left as it was, under its name")
    p = H.run(["run", cfg, "-q", "--resume", "--set", "output.path=" + out, "--set", "train.steps=60"], np=2)
    R.check(p.returncode == 0, "a complete run still extends to more steps: " + p.stderr[-300:])

    p = H.run(["info", out + ".ckpt"], np=1)
    R.check(p.returncode == 0 and re.search(r"^status\s+checkpoint at step \d+", p.stdout, re.M)
            and "status      complete" not in p.stdout, "info on a checkpoint says so: " + p.stdout[:400])

    # PATH.partial is a valid HDF5 file as soon as it exists
    early = os.path.join(tmp, "early.h5")
    big = H.write_config(tmp, "big.yaml", BASE.replace("width: 64", "width: 512").replace("n_train: 24", "n_train: 256")
                         + "analytic: {enabled: true}\noutput: {save_ntk: true}\n")
    a = start(["run", big, "-q", "--set", "output.path=" + early])
    pid = holder_pid(early + ".lock", a)
    while pid and not os.path.exists(early + ".partial") and a.poll() is None:
        time.sleep(0.0005)
    if pid:
        os.kill(pid, signal.SIGKILL)
    a.communicate(timeout=300)
    if os.path.exists(early):
        print("   the run finished before it could be killed", flush=True)
    else:
        R.check(os.path.exists(early + ".partial"), "the killed run left PATH.partial")
        try:
            with h5py.File(early + ".partial", "r") as f:
                ok = f.attrs["status"] == "running" and f.attrs["format"] == "ntkspec"
        except OSError as e:
            ok = False
            print("   h5py:", e)
        R.check(ok, "h5py opens the PATH.partial of a run killed at its start (status running)")

sys.exit(R.finish())
