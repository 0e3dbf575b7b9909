"""Faults (issue 7, docs/HARDENING.md).  Each case checks what was kept, not only the exit
status:
  memory      a run whose estimated peak exceeds memory.limit_mb (or the SLURM limit)
              stops before computing, naming the largest term and how many ranks would fit,
              and that rank count does fit; --dry-run prints the limit;
  kill        SIGKILL of one rank mid-run ends the whole job; PATH.partial keeps every
              measurement reported before the kill, status "running", no PATH;
  checkpoint  truncated, zeroed, garbage, empty, foreign, incomplete and damaged (compact
              storage shorter than the shape) checkpoints given
              to --resume are refused with one line naming the checkpoint (exit 2), and
              the interrupted output file and the checkpoint are left as they were;
  config      a resume with changed keys is refused naming a changed key;
  output      a missing or non-folder output folder, and a read-only mount (also for
              root), is refused before any compute, and leaves no file;
  disk        on a real small file system (tmpfs): too little free space for the estimated
              output is refused before any compute; a disk that fills up during a run ends
              the job with one line naming the file and "No space left on device", no PATH,
              a PATH.partial that is not "complete", no rank left, and the folder usable
              again; a periodic checkpoint that no longer fits keeps the previous one.
Without permission to mount (non-root), the tmpfs cases print "skipped: cannot mount
tmpfs" and pass.  Pass section names to run only those."""
import contextlib
import errno
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
section = H.section


one_error_line = R.one_error_line


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], stdout=subprocess.PIPE, text=True).stdout
    return [int(x) for x in out.split()]


def start_run(cfg, path, np_, extra=()):
    cmd = ["mpirun", "-q", "-np", str(np_), H.NTKSPEC, "run", cfg, "--set", "output.path=" + path,
           "--set", "output.overwrite=true"] + list(extra)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)


def wait_for(proc, pattern, limit=600):
    """Progress lines until one matches; returns every 'step N:' reported so far."""
    t0, steps = time.time(), []
    while time.time() - t0 < H.limit(limit):
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"step (\d+):", line)
        if m:
            steps.append(int(m.group(1)))
        if re.search(pattern, line):
            return steps
    return None


@contextlib.contextmanager
def tmpfs(name, size, ro=False):
    """A real file system of `size` (tmpfs) at tmp/NAME, unmounted on the way out also when
    a check raised; None (and a "skipped" line) when mounting is not permitted."""
    mnt = os.path.join(tmp, name)
    os.makedirs(mnt, exist_ok=True)
    opts = "size=%s,mode=0755%s" % (size, ",ro" if ro else "")
    try:
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "ntkspec-test", mnt],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=H.limit(60))
        why = p.stderr.strip() or "mount status %d" % p.returncode
        ok = p.returncode == 0
    except (OSError, subprocess.TimeoutExpired) as e:
        why, ok = str(e), False
    if not ok:
        print("   skipped: cannot mount tmpfs (%s)" % (why.strip().splitlines() or ["?"])[0], flush=True)
        yield None
        return
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", mnt]).returncode != 0:
            subprocess.run(["umount", "-l", mnt])


def fill(folder):
    """Write a filler file until the file system says ENOSPC; returns its bytes."""
    path = os.path.join(folder, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    n = 0
    try:
        for block in (1 << 20, 1 << 12, 1):
            while True:
                try:
                    w = os.write(fd, b"\xff" * block)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
                n += w
                if w < block:
                    break
    finally:
        os.close(fd)
    return n


def rank_alive(k):
    try:
        with open("/proc/%d/stat" % k) as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def finish(proc, kids, what, limit=600):
    """Waits for a started run to end by itself; kills it (and checks that) on timeout (a
    hang: the run stops at its next write).  Returns its output; checks that no rank
    process is left."""
    limit = H.limit(limit)
    try:
        out = proc.communicate(timeout=limit)[0]
        ended = True
    except subprocess.TimeoutExpired:
        ended = False
        for k in children(proc.pid):
            os.kill(k, signal.SIGKILL)
        proc.kill()
        out = proc.communicate()[0]
    R.check(ended, "%s: the job ended by itself within %d s" % (what, limit))
    t0 = time.time()
    while any(rank_alive(k) for k in kids) and time.time() - t0 < H.limit(120):
        time.sleep(0.5)
    R.check(kids and not any(rank_alive(k) for k in kids),
            "%s: no rank process left running (%s of %s)" % (what, [k for k in kids if rank_alive(k)], kids))
    return out or ""


def error_lines(text):
    return [l for l in text.splitlines() if l.startswith("ntkspec: error")]


TRAIN = """seed: 3
model: {width: 48, depth: 2, activation: tanh}
fourier: {features: 6}
data: {source: synthetic_1d, n_train: 24}
grid: {block_size: 4}
train: {steps: 400, lr_scale: 0.5, measure: every, measure_every: 10}
"""
# TRAIN for the runs that a signal or a kill interrupts on reading a step line: the same
# measurements (every 10 steps to 400), then 3600 plain steps, so that the rest of the run
# outlasts mpirun's forwarding of the line on a fast machine (400 steps take a fraction of
# a second there)
SIGNALLED = TRAIN.replace("steps: 400, lr_scale: 0.5, measure: every, measure_every: 10",
                          "steps: 4000, lr_scale: 0.5, measure: list, measure_steps: [%s]"
                          % ", ".join(str(10 * i) for i in range(1, 41)))

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
                              timeout=H.limit(600), env=env, stdin=subprocess.DEVNULL)

    p = dry(1)
    m = re.search(r"estimated peak\s+([0-9.]+) MiB", p.stdout)
    lim = re.search(r"limit per rank\s+([0-9.]+) MiB \((.*)\)", p.stdout)
    R.check(p.returncode == 0 and m and lim, "dry run prints the estimate and the limit: " + p.stdout[-400:])
    def estimate_of(text):
        """(estimated peak, runtime baseline) in MiB from a dry run's estimate."""
        pk = re.search(r"estimated peak\s+([0-9.]+) MiB", text)
        bl = re.search(r"runtime baseline\s+([0-9.]+) MiB", text)
        return (float(pk.group(1)) if pk else float("inf"), float(bl.group(1)) if bl else 0.0)

    if m:
        est1, base1 = estimate_of(p.stdout)
        limit = 0.7 * est1
        p = H.run(["run", cfg, "--set", "output.path=" + out, "--set", "memory.limit_mb=%.3f" % limit], np=1)
        one_error_line(p, ["memory.limit_mb", "estimated peak", "largest term", "ranks would fit"],
                       "estimate %.1f MiB over a limit of %.1f MiB" % (est1, limit))
        R.check(not os.path.exists(out) and not os.path.exists(out + ".partial"), "no output file")
        R.check("step 0" not in p.stdout and "eigensolve" not in p.stdout, "stopped before computing")
        fit = re.search(r"(\d+) ranks would fit", p.stderr)
        if fit:
            P = int(fit.group(1))
            print("   estimate %.1f MiB on 1 rank, limit %.1f MiB: %d ranks would fit" % (est1, limit, P))
            R.check(2 <= P <= 8, "a plausible rank count (%d)" % P)
            # the promise rests on the 1-rank runtime baseline; under AddressSanitizer
            # (scripts/sanitize.sh sets ASAN_OPTIONS) the baseline is the sanitizer's and
            # grows with the rank count, so the promise is only checked natively
            if "ASAN_OPTIONS" in os.environ:
                print("   sanitizer build: the rank-count promise is not checked")
            elif P <= 4:
                # "at this memory per rank": the promise keeps the 1-rank runtime baseline,
                # while a P-rank process starts a little larger (MPI's shared-memory segments
                # for its local peers, about 1 MiB each here); P ranks must fit a limit raised
                # by that difference, and P - 1 must not.  The refusing run measured its own
                # baseline, and so does every launch, each a fraction of a MiB from the dry
                # run's base1: the checks and the run allow 1 MiB for that
                q = dry(P)
                peakP, baseP = estimate_of(q.stdout)
                grow = baseP - base1
                R.check(peakP - grow <= limit + 1.0, "%d ranks fit the limit, as promised: %.1f MiB - %.1f MiB "
                        "baseline growth over %.1f MiB" % (P, peakP, grow, limit))
                q = H.run(["run", cfg, "-q", "--set", "output.path=" + out, "--set", "output.overwrite=true",
                           "--set", "memory.limit_mb=%.3f" % (limit + max(grow, 0.0) + 1.0)], np=P)
                R.check(q.returncode == 0 and os.path.exists(out), "the run on %d ranks completes" % P)
            if P > 2 and "ASAN_OPTIONS" not in os.environ:
                # the refusing run measured its own baseline, a fraction of a MiB from the
                # dry run's base1: the same 1 MiB allowance as for the run above (here the
                # 3-rank estimate once sat 0.2 MiB under the limit by base1, over it by the
                # refusing run's own baseline)
                peakQ, baseQ = estimate_of(dry(P - 1).stdout)
                R.check(peakQ - (baseQ - base1) > limit - 1.0, "%d ranks do not fit: %.1f MiB - %.1f MiB "
                        "baseline growth over %.1f MiB" % (P - 1, peakQ, baseQ - base1, limit))
        # SLURM's allocation is the default limit
        env = dict(os.environ, SLURM_MEM_PER_NODE="8")
        p = subprocess.run(["mpirun", "-q", "-np", "2", "-x", "SLURM_MEM_PER_NODE", H.NTKSPEC, "run", cfg,
                            "--set", "output.path=" + out, "--set", "output.overwrite=true"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=H.limit(600), env=env,
                           stdin=subprocess.DEVNULL)
        one_error_line(p, ["SLURM_MEM_PER_NODE 8 MiB / 2 ranks", "largest term"], "SLURM_MEM_PER_NODE=8")
        R.check(not os.path.exists(out + ".partial"), "no partial file")
    p = H.run(["run", cfg, "--set", "output.path=" + out, "--set", "memory.limit_mb=-1"], np=1)
    one_error_line(p, ["memory.limit_mb"], "negative limit")

# -------------------------------------------------------------------- kill --
if section("kill"):
    cfg = H.write_config(tmp, "kill.yaml", SIGNALLED)
    out = os.path.join(tmp, "kill.h5")
    proc = start_run(cfg, out, 2)
    steps = wait_for(proc, r"step 60:")
    R.check(steps is not None, "the run reached step 60")
    kids = children(proc.pid)
    R.check(len(kids) == 2, "two rank processes (%s)" % kids)
    if kids:
        os.kill(kids[-1], signal.SIGKILL)
    finish(proc, kids, "one rank killed")
    R.check(proc.returncode != 0, "killing one rank ends the job (status %s)" % proc.returncode)
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
    cfg = H.write_config(tmp, name + ".yaml", SIGNALLED)
    out = os.path.join(tmp, name + ".h5")
    proc = start_run(cfg, out, 2)
    ok = wait_for(proc, r"step 30:") is not None
    proc.send_signal(signal.SIGUSR1)
    proc.communicate(timeout=H.limit(600))
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
        # datasets whose compact storage is shorter than their shape (HDF5 1.10's H5Dread
        # crashed on them): a replicated vector and a distributed matrix
        for name in ["params/b_out", "params/V"]:
            with open(out + ".ckpt", "wb") as f:
                f.write(good)
            H.compact_too_small(out + ".ckpt", name)
            p = H.run(["run", cfg, "--resume", "--set", "output.path=" + out], np=2)
            one_error_line(p, ["checkpoint", name, "is corrupt"], "checkpoint with a damaged " + name)
            after = snapshot(out)
            R.check(after[1] == before[1], "damaged %s: the output file is unchanged" % name)
        # a checkpoint whose metadata makes HDF5 itself crash (fuzz_hdf5's corrupt local heap),
        # and the same damage in the output file to resume: refused, both left as they were
        crasher = open(os.path.join(H.SOURCE_DIR, "fuzz", "corpus", "hdf5", "raw_corrupt_local_heap.h5"),
                       "rb").read()
        with open(out + ".ckpt", "wb") as f:
            f.write(crasher)
        p = H.run(["run", cfg, "--resume", "--set", "output.path=" + out], np=2)
        one_error_line(p, ["checkpoint", "HDF5 crashed"], "checkpoint HDF5 crashes on")
        R.check(snapshot(out)[1] == before[1], "checkpoint HDF5 crashes on: the output file is unchanged")
        with open(out + ".ckpt", "wb") as f:
            f.write(good)
        kept = open(out, "rb").read()
        with open(out, "wb") as f:
            f.write(crasher)
        p = H.run(["run", cfg, "--resume", "--set", "output.path=" + out], np=2)
        one_error_line(p, [out, "HDF5 crashed"], "output file HDF5 crashes on")
        R.check(open(out, "rb").read() == crasher and not os.path.exists(out + ".partial"),
                "output file HDF5 crashes on: left as it was, under its name")
        with open(out, "wb") as f:
            f.write(kept)
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
    # a read-only mount: root may write to any folder (access(2) says yes to mode 0500 too),
    # but not there; the check creates a probe file, so root is refused as well
    with tmpfs("romount", "1m", ro=True) as ro:
        if ro:
            path = os.path.join(ro, "o.h5")
            t0 = time.time()
            p = H.run(["run", cfg, "--set", "output.path=" + path], np=2)
            one_error_line(p, [ro, "Read-only file system"], "read-only mount")
            R.check("step 0" not in p.stdout and "eigensolve" not in p.stdout,
                    "read-only mount: refused before computing")
            R.check(os.listdir(ro) == [], "read-only mount: no file (%s)" % os.listdir(ro))
            print("   read-only mount: refused in %.1f s" % (time.time() - t0))

# -------------------------------------------------------------------- disk --
if section("disk"):
    t_disk = time.time()
    # every measurement appends the 24 x 24 kernel: the file grows at each one
    cfg = H.write_config(tmp, "disk.yaml", TRAIN + "output: {save_ntk: true}\n")
    p = subprocess.run(["mpirun", "-q", "-np", "2", H.NTKSPEC, "run", cfg, "--dry-run",
                        "--set", "output.path=" + os.path.join(tmp, "d.h5")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=H.limit(600),
                       stdin=subprocess.DEVNULL)
    m = re.search(r"# output: about ([0-9.]+) MiB estimated; ([0-9.]+) MiB free in", p.stdout)
    R.check(p.returncode == 0 and m, "--dry-run prints the output estimate: " + p.stdout[-300:])
    est = float(m.group(1)) if m else 2.0
    # (a) a file system smaller than the estimate: refused before anything is computed
    small_kib = int(est * 1024 / 2)
    with tmpfs("small", "%dk" % small_kib) as mnt:
        if mnt:
            out = os.path.join(mnt, "o.h5")
            t0 = time.time()
            p = H.run(["run", cfg, "--set", "output.path=" + out], np=2)
            dt = time.time() - t0
            one_error_line(p, ["not enough free space", mnt, "MiB (estimated)", "MiB free"],
                           "%d KiB file system for an estimated %.1f MiB" % (small_kib, est))
            m2 = re.search(r"about ([0-9.]+) MiB \(estimated\), ([0-9.]+) MiB free", p.stderr)
            R.check(m2 and abs(float(m2.group(1)) - est) < 0.11 and float(m2.group(2)) <= small_kib / 1024 + 0.06,
                    "the message gives the estimate and the free space: " + p.stderr.strip())
            R.check("step" not in p.stdout and "eigensolve" not in p.stdout and "data:" not in p.stdout,
                    "too small: refused before loading or computing anything")
            R.check(os.listdir(mnt) == [], "too small: no file (%s)" % os.listdir(mnt))
            print("   %d KiB for an estimated %.2f MiB: refused in %.1f s" % (small_kib, est, dt))
    # (b) room for the estimate, but the disk fills up during the run (a run long enough
    # to be caught in the middle; it stops at the first write after the filling)
    long_cfg = H.write_config(tmp, "disklong.yaml", TRAIN.replace("steps: 400", "steps: 20000")
                              + "output: {save_ntk: true}\n")
    p = subprocess.run(["mpirun", "-q", "-np", "2", H.NTKSPEC, "run", long_cfg, "--dry-run",
                        "--set", "output.path=" + os.path.join(tmp, "d.h5")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=H.limit(600),
                       stdin=subprocess.DEVNULL)
    m = re.search(r"# output: about ([0-9.]+) MiB estimated", p.stdout)
    est_long = float(m.group(1)) if m else 16.0
    with tmpfs("full", "%dk" % (int(est_long * 1024) + 1024)) as mnt:
        if mnt:
            out = os.path.join(mnt, "o.h5")
            proc = start_run(long_cfg, out, 2)
            steps = wait_for(proc, r"step 20:")
            R.check(steps is not None, "disk full: the run reached step 20")
            kids = children(proc.pid)
            filled = fill(mnt)
            t0 = time.time()
            text = finish(proc, kids, "disk full")
            dt = time.time() - t0
            errs = error_lines(text)
            R.check(proc.returncode not in (0, None), "disk full: non-zero exit status (%s)" % proc.returncode)
            R.check(len(errs) == 1, "disk full: one error line, got %r" % (errs or text.splitlines()[-8:]))
            R.check(errs and "No space left on device" in errs[0] and out + ".partial" in errs[0],
                    "disk full: the error names the file and 'No space left on device': %r" % errs)
            R.check(not os.path.exists(out), "disk full: no " + out)
            status, rows = None, set()
            if os.path.exists(out + ".partial"):
                try:
                    with h5py.File(out + ".partial", "r") as f:
                        status = f.attrs["status"]
                        rows = {f["trajectory"][k].shape[0] for k in f["trajectory"]}
                except Exception as e:  # noqa: BLE001  a half-written file is partial too
                    status = "unreadable (%s)" % type(e).__name__
            R.check(status != "complete", "disk full: PATH.partial is not complete (%s)" % status)
            # space is claimed ahead of each write: the file is consistent, and says so
            R.check(status == "failed" and len(rows) == 1 and steps and min(rows) >= len(steps),
                    "disk full: PATH.partial readable, status failed, every trajectory dataset with "
                    "the same rows, at least the %d reported (%s, %s)" % (len(steps or []), status, rows))
            print("   filled %.2f MiB after step %s: ended in %.1f s, status %d, PATH.partial %s, rows %s"
                  % (filled / 2**20, steps[-1] if steps else "?", dt, proc.returncode, status, sorted(rows)))
            print("   " + (errs[0] if errs else "(no error line)"))
            # the folder is usable again once there is room: nothing stale blocks it
            os.unlink(os.path.join(mnt, "filler"))
            p = H.run(["run", cfg, "-q", "--set", "output.path=" + out, "--set", "output.overwrite=true"], np=2)
            R.check(p.returncode == 0, "after freeing space a new run completes: " + p.stderr[-300:])
            R.check(sorted(os.listdir(mnt)) == ["o.h5"], "only o.h5 is left (%s)" % os.listdir(mnt))
            if os.path.exists(out):
                with h5py.File(out, "r") as f:
                    st, T = f.attrs["status"], f["trajectory/step"].shape[0]
                    ntk = f["trajectory/ntk"].shape
                size = os.path.getsize(out) / 2**20
                R.check(st == "complete" and T == 41 and ntk == (41, 24, 24), "complete, 41 rows (%s, %d)" % (st, T))
                R.check(size <= est <= 8 * size + 2.0, "the estimate %.2f MiB bounds the file (%.2f MiB), generously"
                        % (est, size))
                print("   fresh run: %.2f MiB written, %.2f MiB estimated" % (size, est))
    # (c) a periodic checkpoint that no longer fits keeps the previous checkpoint (the
    # output itself hardly grows between measurements here)
    ck_cfg = H.write_config(tmp, "diskck.yaml", TRAIN.replace("steps: 400", "steps: 20000").replace(
        "measure_every: 10}", "measure_every: 1000, checkpoint_every: 5000}"))
    with tmpfs("ckfull", "%dk" % (int(est * 1024) + 2048)) as mnt:
        if mnt:
            out = os.path.join(mnt, "c.h5")
            ck = out + ".ckpt"
            proc = start_run(ck_cfg, out, 2)
            seen = wait_for(proc, r"checkpoint at step 5000:")
            R.check(seen is not None, "checkpoint: the first periodic checkpoint was written")
            kids = children(proc.pid)
            good = open(ck, "rb").read() if os.path.exists(ck) else b""
            fill(mnt)
            text = finish(proc, kids, "checkpoint on a full disk")
            errs = error_lines(text)
            R.check(proc.returncode not in (0, None) and len(errs) == 1 and "No space left on device" in errs[0],
                    "checkpoint on a full disk: one error line with 'No space left on device': %r (status %s)"
                    % (errs or text.splitlines()[-6:], proc.returncode))
            R.check(errs and ck + ".new.partial" in errs[0], "the error names the checkpoint file: %r" % errs)
            R.check(good and os.path.exists(ck) and open(ck, "rb").read() == good,
                    "the previous checkpoint is kept byte for byte")
            R.check(not os.path.exists(ck + ".new") and not os.path.exists(ck + ".new.partial"),
                    "the half-written checkpoint is removed (%s)" % os.listdir(mnt))
            R.check(not os.path.exists(out), "checkpoint on a full disk: no " + out)
            print("   " + (errs[0] if errs else "(no error line)"))
            os.unlink(os.path.join(mnt, "filler"))
            p = H.run(["run", ck_cfg, "-q", "--resume", "--set", "output.path=" + out,
                       "--set", "train.steps=6000"], np=2)
            R.check(p.returncode == 0 and os.path.exists(out), "the kept checkpoint resumes: " + p.stderr[-300:])
            if os.path.exists(out):
                with h5py.File(out, "r") as f:
                    R.check(f.attrs["status"] == "complete" and f.attrs["last_resume_step"] == 5000
                            and f["trajectory/step"][-1] == 6000,
                            "resumed from step 5000 to completion")
    print("   disk section: %.1f s" % (time.time() - t_disk))

shutil.rmtree(tmp, ignore_errors=True)
sys.exit(R.finish())
