"""Signals at random times (issue 22): nothing lost, nothing left writing.

A 2-rank training run is started through a `timeout ... mpirun` wrapper, as a user or a
batch script does, and the wrapper gets SIGTERM at a time drawn uniformly over the whole
run (start-up included), 50 times; then a few SIGINTs through the wrapper, SIGUSR1s to
mpirun (which forwards them) and SIGTERMs to one rank.  After each:
  - no rank of the run may still be alive once the wrapper has returned (a few seconds'
    grace for a loaded machine to schedule its exit): nothing writes after the command is over;
  - either the run had finished (PATH complete), or `--resume` completes it, or there was
    nothing to keep (no PATH, PATH.partial or checkpoint) and `--resume` refuses with rc 2
    and one line;
  - every completed or resumed trajectory equals the uninterrupted run's bit for bit.
mpirun gives the ranks one second (odls_base_sigkill_timeout) after forwarding SIGTERM
before it kills them: a run stopped by that kill before its first checkpoint resumes by
starting again from step 0, whose parameters come from the seed.

Run by ctest; NTK_SIGNAL_TRIALS overrides the 50."""
import os
import random
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
TRIALS = int(os.environ.get("NTK_SIGNAL_TRIALS", "50"))
CFG = H.write_config(tmp, "train.yaml", """seed: 3
model: {width: 64, depth: 2, activation: tanh}
fourier: {features: 8}
depth: {survival: 0.7}
data: {source: synthetic_1d, n_train: 24, n_test: 8}
grid: {block_size: 4}
train: {steps: 800, lr_scale: 0.5, measure: every, measure_every: 20}
output: {save_params: true}
""")


def traj(path):
    with h5py.File(path, "r") as f:
        return {k: f["trajectory"][k][()] for k in f["trajectory"]}


def same(a, b):
    return sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


def ranks_of(out):
    """PIDs of live ntkspec processes writing `out` (their command line names it)."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/stat" % p) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and os.path.basename(argv[0]) == b"ntkspec" and ("output.path=" + out).encode() in argv:
            pids.append(int(p))
    return pids


def start(out):
    cmd = ["timeout", "600", "mpirun", "-q", "-np", "2", H.NTKSPEC, "run", CFG, "-q",
           "--set", "output.path=" + out]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)


ref = os.path.join(tmp, "ref.h5")
t0 = time.time()
p = H.run(["run", CFG, "-q", "--set", "output.path=" + ref], np=2)
span = time.time() - t0
R.check(p.returncode == 0, "uninterrupted run: " + p.stderr[-500:])
REF = traj(ref)
print("uninterrupted run: %.2f s; signals drawn over [0, %.2f] s" % (span, 1.2 * span), flush=True)

rng = random.Random(int(os.environ.get("NTK_SIGNAL_SEED", "22")))
plan = [("wrapper", signal.SIGTERM)] * TRIALS
plan += [("wrapper", signal.SIGINT)] * 4 + [("mpirun", signal.SIGUSR1)] * 4 + [("rank", signal.SIGTERM)] * 4
outcomes = {}
for i, (route, sig) in enumerate(plan):
    out = os.path.join(tmp, "t%d.h5" % i)
    proc = start(out)
    delay = rng.uniform(0.0, 1.2 * span)
    time.sleep(delay)
    if route == "wrapper":
        proc.send_signal(sig)
    elif route == "mpirun":
        kids = [int(x) for x in subprocess.run(["pgrep", "-P", str(proc.pid)], stdout=subprocess.PIPE,
                                               text=True).stdout.split()]
        for k in kids:
            os.kill(k, sig)
    else:
        pids = ranks_of(out)
        if pids:
            os.kill(pids[0], sig)
    err = proc.communicate(timeout=H.limit(600))[1]
    what = "trial %d (%s to the %s at %.2f s)" % (i, signal.Signals(sig).name, route, delay)
    # nothing may still run once the command has returned
    deadline = time.time() + 30.0  # PDEATHSIG acts at once; 30 s only absorbs a loaded machine
    while ranks_of(out) and time.time() < deadline:
        time.sleep(0.05)
    R.check(not ranks_of(out), what + ": no rank alive after the command returned")
    had = [s for s in ("", ".partial", ".ckpt") if os.path.exists(out + s)]
    status = None
    if os.path.exists(out):
        with h5py.File(out, "r") as f:
            status = f.attrs["status"]
    if status == "complete":
        kind = "finished"
    else:
        r = H.run(["run", CFG, "-q", "--resume", "--set", "output.path=" + out], np=2)
        if r.returncode == 0:
            kind = "resumed from a checkpoint" if ".ckpt" in had else "resumed from step 0"
        else:
            kind = "nothing kept"
            lines = r.stderr.strip().splitlines()
            R.check(r.returncode == 2 and not had and len(lines) == 1 and "nothing was kept" in lines[0],
                    what + ": left %s; --resume: rc %d, %s" % (had, r.returncode, r.stderr.strip()[-400:]))
    if kind != "nothing kept":
        R.check(os.path.exists(out) and not os.path.exists(out + ".partial"), what + ": one complete file")
        with h5py.File(out, "r") as f:
            R.check(f.attrs["status"] == "complete", what + ": status complete")
        R.check(same(traj(out), REF), what + " (%s): trajectory equals the uninterrupted run's" % kind)
    outcomes[kind] = outcomes.get(kind, 0) + 1
    for s in ("", ".partial", ".ckpt"):
        if os.path.exists(out + s):
            os.remove(out + s)
print("outcomes over %d signals: %s" % (len(plan), ", ".join("%s %d" % kv for kv in sorted(outcomes.items()))))
shutil.rmtree(tmp, ignore_errors=True)
sys.exit(R.finish())
