"""The job scripts across hosts: a 5-host SLURM cluster of network namespaces.

scripts/testcluster.sh brings up K = 5 hosts (one network namespace each, joined by a
bridge; slurmctld on a head host, one slurmd per host) under a name of its own (ntkt), so
a cluster someone brought up by hand is left alone.  Open MPI talks TCP between hosts and
shared memory only within one (testcluster.sh sets the transports).  Sections (all by
default; name some to run only those):

  fence      a PMIx fence without data (MPI_Finalize's) is a barrier across 4 hosts when
             launched as the job scripts launch (jobs/common.sh: SLURM_PMIX_FENCE=ring):
             no rank leaves it before rank 0, which waits 2 s, has entered it; Slurm's
             own default ("mixed", whose tree fence completes on each node alone in
             Slurm 22.05) is run too and reported, not asserted;
  jobs       jobs/submit.sh unchanged across hosts:
             - sweep: a 2 widths x 2 seeds array, 2 ranks per task, submitted to the idle
               cluster: the 4 tasks run on 4 different hosts; the aggregation reads them;
             - run on 4 hosts x 2 ranks (srun --mpi=pmix): the spectrum equals a 1-rank run
               (1e-12), one HDF5 file with the kernel from all 8 ranks; a wrapper around
               ntkspec records each rank's hostname and network namespace (4 hosts, 2
               ranks each), and each host's link carried the traffic;
             - run on 2 hosts through mpirun inside the allocation (Open MPI's slurm
               launcher), and mpirun outside SLURM on 3 hosts (hostfile, plm_rsh_agent =
               testcluster.sh rsh): both equal the 1-rank spectrum (1e-12);
             - strong scaling at 1, 2, 4 hosts (one rank per host) and its report;
  partition  a training run on 4 hosts; one host's link is down for 6 s mid-run: the
             run completes and its file equals an uninterrupted run's (bitwise);
  lock       the output lock across hosts: a run on host 1 holds it (frozen while it
             does); the same run started on host 2 is refused at start naming host 1's
             holder; host 1's run completes with the uninterrupted trajectory;
  failure    a training run on 4 of the 5 hosts (checkpoint every 10 steps); once it has
             a checkpoint one of its hosts dies (link cut, every process on it killed):
             the job leaves the running state within 150 s, SLURM requeues it, it resumes
             from the checkpoint on the 4 hosts left, and its trajectory equals the
             uninterrupted run's bitwise; the file stays readable while the job waits.

Needs root (network namespaces, daemons as root), iproute2 and slurm-wlm; otherwise it
prints "skipped: ..." and exits 77.  The cluster is torn down whatever happens (also on
SIGTERM); a run killed outright leaves it to the next run, which takes a lock on the name
first (so it never tears down a concurrent run's cluster) and then runs `down`."""
import fcntl
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkharness as H  # noqa: E402
import test_slurm as TS  # noqa: E402  (its cluster's job records and teardown, job environment, logs)

SKIP = 77
SRC = H.SOURCE_DIR
TC = os.path.join(SRC, "scripts", "testcluster.sh")
PREFIX = "ntkt"
K = 5
JOB_DEADLINE_S = 420      # per group of jobs; only catches a hang
CFG = os.path.join(SRC, "configs", "quickstart.yaml")
SMALL = ["--set", "train.steps=0", "--set", "data.n_test=0", "--set", "grid.block_size=16", "-q"]
SPECTRUM = SMALL + ["--set", "model.width=128", "--set", "data.n_train=96", "--set", "output.save_ntk=true"]
TRAIN = ["--set", "data.n_test=0", "--set", "grid.block_size=16", "--set", "model.width=64",
         "--set", "model.depth=2", "--set", "data.n_train=64", "--set", "train.steps=60",
         "--set", "train.measure=every", "--set", "train.measure_every=10",
         "--set", "train.checkpoint_every=10"]


class NsCluster(TS.Cluster):
    """scripts/testcluster.sh's cluster; SLURM commands run on its head host."""

    def __init__(self, root):
        self.root = root
        self.env = dict(os.environ, NTK_CLUSTER=PREFIX, NTK_CLUSTER_DIR=root)

    def tc(self, args, check=True, timeout=120, env=None):
        p = subprocess.run([TC] + list(args), env=env or self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError("testcluster.sh %s failed (%d): %s" % (" ".join(args), p.returncode, p.stdout))
        return p.stdout

    def cmd(self, args, check=True, timeout=60):
        return self.tc(["exec", "head"] + list(args), check=check, timeout=timeout)

    def start(self):
        self.tc(["down"])  # what a crashed earlier run may have left
        self.tc(["up", str(K)])

    def stop(self):
        print(self.tc(["down"], check=False), end="")

    def log_tail(self, n=30):
        out = []
        for p in sorted(glob.glob(os.path.join(self.root, "log", "*.log"))):
            with open(p) as f:
                out.append("--- %s\n%s" % (p, "".join(f.readlines()[-n:])))
        return "\n".join(out)

    def host(self, i):
        return "%s%d" % (PREFIX, i)

    def hostnames(self, nodelist):
        """The host names of a SLURM node list (ntkt[1-3,5])."""
        return self.cmd(["scontrol", "show", "hostnames", nodelist]).split() if nodelist else []

    def link_bytes(self):
        """{host: (rx, tx) bytes} of every host's port on the bridge (the switch's view)."""
        out = subprocess.run(["ip", "-n", PREFIX + "sw", "-s", "-j", "link", "show"], stdout=subprocess.PIPE,
                             text=True, check=True).stdout
        res = {}
        for link in json.loads(out):
            name = link.get("ifname", "")
            if name.startswith("p") and name[1:].isdigit() and "stats64" in link:
                s = link["stats64"]
                host = PREFIX + "head" if name == "p0" else self.host(int(name[1:]))
                res[host] = (s["rx"]["bytes"], s["tx"]["bytes"])
        return res

    def submit(self, env, kind, *args):
        """jobs/submit.sh KIND ARGS on the head host: {kind: jobid}."""
        p = subprocess.run([TC, "exec", "head", os.path.join(SRC, "jobs", "submit.sh"), kind] + list(args),
                           env=env, cwd=env["NTK_WORK"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=120, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise AssertionError("submit.sh %s failed (%d):\n%s" % (kind, p.returncode, p.stdout))
        return {parts[0]: parts[1] for parts in (l.split() for l in p.stdout.splitlines())
                if len(parts) == 2 and parts[1].isdigit()}

    def wait(self, ids, deadline_s=JOB_DEADLINE_S, poll=None):
        """Until none of the jobs `ids` is queued (requeued ones are released at once:
        SLURM holds them for a while, Reason=BeginTime); `poll()` runs every round.
        Returns the ids still queued at the deadline."""
        t0 = time.time()
        pending = set(ids)
        while pending and time.time() - t0 < deadline_s:
            if poll:
                poll()
            live = set()
            for line in self.cmd(["squeue", "-h", "-o", "%i %T %r"], check=False).splitlines():
                jid, state, reason = (line.split() + ["", "", ""])[:3]
                base = jid.split("_")[0]
                live.add(base)
                if state == "PENDING" and reason == "BeginTime":
                    self.cmd(["scontrol", "update", "jobid=" + base, "StartTime=now"], check=False)
            pending &= live
            if pending:
                time.sleep(0.5)
        return pending

    def completed(self, R, jid, what):
        recs = self.job_records(jid)
        states = [(r.get("JobState"), r.get("ExitCode")) for r in recs]
        R.check(recs and all(s == ("COMPLETED", "0:0") for s in states), "%s (job %s) states %s" % (what, jid, states))
        return recs


def rank_wrapper(work):
    """An NTKSPEC that records 'JOBID RANK HOSTNAME NETNS' of every rank of a computing
    launch (not the one-rank --dry-run the job scripts start first) in work/ranks.txt."""
    path = os.path.join(work, "ntkspec-wrapper.sh")
    with open(path, "w") as f:
        f.write("""#!/bin/sh
case " $* " in *" --dry-run "*) ;; *)
  echo "${SLURM_JOB_ID:-none} ${PMIX_RANK:-${OMPI_COMM_WORLD_RANK:-?}} $(hostname) $(readlink /proc/self/ns/net)" \\
    >> "%s/ranks.txt" ;;
esac
exec "%s" "$@"
""" % (work, os.path.abspath(H.NTKSPEC)))
    os.chmod(path, 0o755)
    return path


def ranks_of(work, jobid):
    """{rank: (hostname, netns)} recorded by the wrapper for job `jobid`."""
    res = {}
    for line in TS.read_text(os.path.join(work, "ranks.txt")).splitlines():
        j, r, host, ns = (line.split() + ["", "", "", ""])[:4]
        if j == jobid:
            res[r] = (host, ns)
    return res


def max_rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def spectrum(path):
    with h5py.File(path, "r") as f:
        return f["trajectory/eigenvalues"][0], f.attrs["status"]


def same_trajectory(R, path, ref, what):
    with h5py.File(path, "r") as a, h5py.File(ref, "r") as b:
        R.check(a.attrs["status"] == "complete", "%s: status %s" % (what, a.attrs["status"]))
        keys = sorted(b["trajectory"].keys())
        R.check(sorted(a["trajectory"].keys()) == keys, "%s: trajectory datasets differ" % what)
        for k in keys:
            x, y = a["trajectory/" + k][()], b["trajectory/" + k][()]
            R.check(x.shape == y.shape and np.array_equal(x, y, equal_nan=True),
                    "%s: /trajectory/%s differs from the uninterrupted run" % (what, k))


def fence_probe(cl, launch, what):
    """tests/fence_probe.c on 4 hosts, one rank each, launched on the head host by the shell
    command `launch` (the probe and its argument appended): {rank: (host, enter, leave)}."""
    probe = os.environ.get("NTK_FENCE_PROBE") or os.path.join(os.path.dirname(H.NTKSPEC), "tests", "ntk_fence_probe")
    out = cl.cmd(["bash", "-c", "%s %s 2" % (launch, probe)], timeout=H.limit(120))
    ranks = {}
    for m in re.finditer(r"^fence_probe rank (\d+) host (\S+) enter (\S+) leave (\S+)$", out, re.M):
        ranks[int(m.group(1))] = (m.group(2), float(m.group(3)), float(m.group(4)))
    if sorted(ranks) != [0, 1, 2, 3] or len({h for h, _, _ in ranks.values()}) != 4:
        raise AssertionError("%s: expected ranks 0-3 on 4 hosts, got %s:\n%s" % (what, ranks, out[-2000:]))
    return ranks


def section_fence(R, cl, env, work):
    opts = "-N 4 -n 4 --ntasks-per-node=1 -t 5"

    def early(ranks):  # how long before rank 0 entered the fence the first other rank left it
        return ranks[0][1] - min(leave for r, (_, _, leave) in ranks.items() if r != 0)

    # as the job scripts launch: ntk_launcher's srun, with its fence setting
    e = early(fence_probe(cl, 'unset SLURM_PMIX_FENCE; . %s && ntk_launcher && "${ntk_cmd[@]}" %s' % (
        os.path.join(SRC, "jobs", "common.sh"), opts), "jobs' launcher"))
    R.check(e <= 0, "jobs' launcher: a rank left MPI_Finalize's fence %.3f s before rank 0 entered it" % e)
    # Slurm's own default, for the record (a later Slurm may mend it)
    e = early(fence_probe(cl, "env -u SLURM_PMIX_FENCE srun --mpi=pmix " + opts, "Slurm's default fence"))
    print("fence: Slurm's default PMIx fence %s: the first rank left it %.3f s %s rank 0 entered it"
          % ("is no barrier" if e > 0 else "held", abs(e), "before" if e > 0 else "after"))


def section_jobs(R, cl, env, work):
    ref = os.path.join(work, "ref1.h5")
    H.run(["run", CFG] + SPECTRUM + ["--set", "output.path=" + ref], np=1, check=True)
    ref_eig, _ = spectrum(ref)

    before = cl.link_bytes()
    ids = {}
    # the sweep first, on the idle cluster: 4 tasks of a full host each start at once
    e = dict(env, NTK_OUTDIR=os.path.join(work, "sweep"), NTK_WIDTHS="64,256", NTK_SEEDS="2",
             NTK_NODES="1", NTK_RANKS_PER_NODE="2")
    s = cl.submit(e, "sweep", CFG, "--set", "data.n_train=48", "--set", "model.depth=2", *SMALL)
    ids["sweep"], ids["aggregate"] = s["sweep"], s["aggregate"]
    e = dict(env, NTK_OUTDIR=os.path.join(work, "run4"), NTK_NODES="4", NTK_RANKS_PER_NODE="2")
    ids["run4"] = cl.submit(e, "run", CFG, *SPECTRUM)["run"]
    e = dict(env, NTK_OUTDIR=os.path.join(work, "mpirun2"), NTK_NODES="2", NTK_RANKS_PER_NODE="2",
             NTK_LAUNCHER="mpirun")
    ids["mpirun2"] = cl.submit(e, "run", CFG, *SPECTRUM)["run"]
    e = dict(env, NTK_OUTDIR=os.path.join(work, "strong"), NTK_SCALE_BY="nodes", NTK_SCALE_MAX="4",
             NTK_RANKS_PER_NODE="1", NTK_N="128", NTK_WIDTH="128", NTK_DEPTH="2", NTK_TOPK="16", NTK_BLOCK="16")
    for k, v in cl.submit(e, "strong", CFG, "-q").items():
        ids["strong:" + k] = v
    print("submitted: %s" % ids, flush=True)

    # meanwhile, mpirun without SLURM: a hostfile and testcluster.sh as its remote shell
    hostfile = os.path.join(work, "hostfile")
    with open(hostfile, "w") as f:
        f.write("".join("%s slots=1\n" % cl.host(i) for i in (2, 3, 4)))
    out3 = os.path.join(work, "rsh3.h5")
    p = subprocess.run([TC, "exec", "head", "mpirun", "--hostfile", hostfile, "--mca", "plm_rsh_agent", TC + " rsh",
                        os.path.abspath(H.NTKSPEC), "run", CFG] + SPECTRUM + ["--set", "output.path=" + out3],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    R.check(p.returncode == 0, "mpirun --hostfile on 3 hosts failed (%d):\n%s" % (p.returncode, p.stdout[-3000:]))
    if p.returncode == 0:
        eig, status = spectrum(out3)
        R.check(status == "complete" and max_rel(eig, ref_eig) < 1e-12,
                "mpirun on 3 hosts: spectrum differs from 1 rank by %g" % max_rel(eig, ref_eig))

    left = cl.wait(ids.values())
    after = cl.link_bytes()
    R.check(not left, "jobs still queued after %d s: %s" % (JOB_DEADLINE_S, sorted(left)))

    # the sweep: 4 tasks on 4 hosts, aggregated
    recs = cl.completed(R, ids["sweep"], "sweep array")
    hosts = sorted(r.get("NodeList", "") for r in recs)
    R.check(len(recs) == 4 and len(set(hosts)) == 4, "sweep tasks on hosts %s, expected 4 different" % hosts)
    cl.completed(R, ids["aggregate"], "sweep aggregation")
    table = TS.read_text(os.path.join(work, "sweep", "sweep.csv")).split()
    R.check(len(table) == 3 and table[1].startswith("64,2,") and table[2].startswith("256,2,"),
            "sweep.csv %s" % table)

    # 4 hosts x 2 ranks through srun --mpi=pmix
    cl.completed(R, ids["run4"], "run on 4 hosts")
    path = os.path.join(work, "run4", "run.h5")
    eig, status = spectrum(path)
    R.check(status == "complete" and max_rel(eig, ref_eig) < 1e-12,
            "4 hosts: spectrum differs from 1 rank by %g" % max_rel(eig, ref_eig))
    with h5py.File(path, "r") as f, h5py.File(ref, "r") as g:
        R.check(int(f.attrs["mpi_size"]) == 8 and int(f.attrs["slurm_nodes"]) == 4,
                "4 hosts: mpi_size %s, slurm_nodes %s" % (f.attrs["mpi_size"], f.attrs["slurm_nodes"]))
        # every rank wrote its blocks of the kernel into the one file
        d = max_rel(f["trajectory/ntk"][()], g["trajectory/ntk"][()])
        R.check(d < 1e-12, "4 hosts: the written kernel differs from 1 rank's by %g" % d)
    ranks = ranks_of(work, ids["run4"])
    by_host = {}
    for r, (host, ns) in ranks.items():
        by_host.setdefault((host, ns), []).append(r)
    R.check(len(ranks) == 8 and len(by_host) == 4 and all(len(v) == 2 for v in by_host.values())
            and len({h for h, _ in by_host}) == 4 and len({n for _, n in by_host}) == 4,
            "4 hosts: ranks on (host, netns) %s" % by_host)
    for host, _ in by_host:
        rx = after.get(host, (0, 0))[0] - before.get(host, (0, 0))[0]
        tx = after.get(host, (0, 0))[1] - before.get(host, (0, 0))[1]
        # a host's ranks exchange their share of the Grams' panels: far above 64 KiB
        R.check(rx > 65536 and tx > 65536, "4 hosts: %s's link carried only %d / %d bytes" % (host, rx, tx))
    print("4-host run: ranks %s; link bytes (rx, tx) %s" %
          (sorted((h, len(v)) for (h, _), v in by_host.items()),
           {h: (after[h][0] - before.get(h, (0, 0))[0], after[h][1] - before.get(h, (0, 0))[1]) for h in after}),
          flush=True)

    # 2 hosts x 2 ranks through mpirun inside the allocation
    cl.completed(R, ids["mpirun2"], "mpirun run on 2 hosts")
    eig, status = spectrum(os.path.join(work, "mpirun2", "run.h5"))
    R.check(status == "complete" and max_rel(eig, ref_eig) < 1e-12,
            "mpirun on 2 hosts: spectrum differs from 1 rank by %g" % max_rel(eig, ref_eig))
    R.check("via mpirun" in TS.logs_of(os.path.join(work, "mpirun2")), "mpirun2: not launched by mpirun")
    hosts2 = {h for h, _ in ranks_of(work, ids["mpirun2"]).values()}
    R.check(len(hosts2) == 2, "mpirun on 2 hosts: ranks on %s" % sorted(hosts2))

    # strong scaling at 1, 2, 4 hosts
    for k, v in ids.items():
        if k.startswith("strong:"):
            cl.completed(R, v, k)
    rows = TS.read_text(os.path.join(work, "strong", "scaling_strong.csv")).split()
    R.check(rows and rows[0] == TS.EXPECTED_COLUMNS, "strong CSV header %s" % rows[:1])
    body = [r.split(",") for r in rows[1:]]
    R.check([(r[0], r[1]) for r in body] == [("1", "1"), ("2", "2"), ("4", "4")],
            "strong CSV (ranks, nodes) %s" % [(r[0], r[1]) for r in body])
    R.check(os.path.getsize(os.path.join(work, "strong", "scaling_strong.png")) > 0, "strong PNG")
    R.check("speedup" in TS.read_text(os.path.join(work, "strong", "scaling_strong.txt")).lower(), "strong report text")


def train_reference(work):
    """The uninterrupted training run on 4 ranks (same grid as 4 hosts x 1 rank)."""
    ref = os.path.join(work, "train_ref.h5")
    if not os.path.exists(ref):
        H.run(["run", CFG] + TRAIN + ["-q", "--set", "output.path=" + ref], np=4, check=True)
    return ref


def section_partition(R, cl, env, work):
    ref = train_reference(work)
    out = os.path.join(work, "partition")
    e = dict(env, NTK_OUTDIR=out, NTK_OUTPUT=os.path.join(out, "run.h5"), NTK_NODES="4", NTK_RANKS_PER_NODE="1")
    jid = cl.submit(e, "run", CFG, *TRAIN)["run"]
    log = os.path.join(out, "logs")
    state = {"cut": None, "healed": False}

    def poll():
        if state["cut"] is None and "step 10:" in "".join(TS.read_text(p) for p in glob.glob(log + "/*")):
            hosts = cl.job_records(jid)[0].get("NodeList", "")
            # the last host of the allocation: not the one running the batch script
            victim = sorted(cl.hostnames(hosts))[-1]
            cl.tc(["link", victim[len(PREFIX):], "down"])
            state["cut"], state["victim"] = time.time(), victim
            print("partition: %s's link down" % victim, flush=True)
        elif state["cut"] and not state["healed"] and time.time() - state["cut"] > 6:
            cl.tc(["link", state["victim"][len(PREFIX):], "up"])
            state["healed"] = True
            print("partition: link up again", flush=True)

    left = cl.wait([jid], poll=poll)
    if state["cut"] and not state["healed"]:
        cl.tc(["link", state["victim"][len(PREFIX):], "up"])
    R.check(not left, "partition: job still queued")
    R.check(state["healed"], "partition: the link was never cut (training not seen in the log)")
    cl.completed(R, jid, "partitioned run")
    same_trajectory(R, os.path.join(out, "run.h5"), ref, "partition")


def section_lock(R, cl, env, work):
    """Issue 22 across hosts: a run on host 1 holds output.path's lock (frozen with SIGSTOP
    while it does, so that the collision is certain); the same run started on host 2 is
    refused at start (exit 2, one line naming host 1); host 1's run then completes with the
    uninterrupted trajectory."""
    out = os.path.join(work, "lock", "run.h5")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    ref = os.path.join(work, "lock", "lone.h5")
    H.run(["run", CFG] + TRAIN + ["-q", "--set", "output.path=" + ref], np=1, check=True)
    args = ["mpirun", "-q", "-np", "1", H.NTKSPEC, "run", CFG] + TRAIN + ["-q", "--set", "output.path=" + out]
    first = subprocess.Popen([TC, "exec", cl.host(1)] + args, env=cl.env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    pid, t0 = None, time.time()
    while pid is None and first.poll() is None and time.time() - t0 < H.limit(300):
        try:
            m = re.match(r"host (\S+) pid (\d+) .*\n", open(out + ".lock").read())
        except OSError:
            m = None
        if m:
            R.check(m.group(1) == cl.host(1), "lock: PATH.lock names host %s (%s)" % (cl.host(1), m.group(1)))
            pid = int(m.group(2))
        else:
            time.sleep(0.01)
    R.check(pid is not None, "lock: the run on %s took the lock" % cl.host(1))
    if pid is None:
        first.communicate(timeout=H.limit(600))
        return
    os.kill(pid, signal.SIGSTOP)
    try:
        second = subprocess.run([TC, "exec", cl.host(2)] + args, env=cl.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, timeout=H.limit(600))
    finally:
        os.kill(pid, signal.SIGCONT)
    lines = second.stderr.strip().splitlines()
    R.check(second.returncode == 2 and len(lines) == 1 and cl.host(1) in lines[0] and "pid %d" % pid in lines[0],
            "lock: the run on %s is refused in one line naming %s's holder: rc %d, %s"
            % (cl.host(2), cl.host(1), second.returncode, second.stderr.strip()[-400:]))
    rest = first.communicate(timeout=H.limit(900))[0]
    R.check(first.returncode == 0, "lock: the holder completes: rc %d, %s" % (first.returncode, rest[-400:]))
    if first.returncode == 0:
        same_trajectory(R, out, ref, "lock: the holder vs a lone run")
        R.check(not os.path.exists(out + ".lock") and not os.path.exists(out + ".partial"), "lock: no .lock or .partial left")


def section_failure(R, cl, env, work):
    ref = train_reference(work)
    out = os.path.join(work, "failure")
    path = os.path.join(out, "run.h5")
    e = dict(env, NTK_OUTDIR=out, NTK_OUTPUT=path, NTK_NODES="4", NTK_RANKS_PER_NODE="1")
    jid = cl.submit(e, "run", CFG, *TRAIN)["run"]
    state = {}

    def poll():
        if "killed" not in state and os.path.exists(path + ".ckpt"):
            rec = cl.job_records(jid)[0]
            victim = sorted(cl.hostnames(rec.get("NodeList", "")))[-1]
            cl.tc(["kill-node", victim[len(PREFIX):]])
            state["killed"], state["victim"] = time.time(), victim
            print("failure: %s died (job %s on %s)" % (victim, jid, rec.get("NodeList")), flush=True)
        elif "killed" in state and "ended" not in state:
            rec = cl.job_records(jid)[0]
            if rec.get("JobState") != "RUNNING" or rec.get("Restarts", "0") != "0":
                state["ended"] = time.time()
                print("failure: job %s %s %.1f s after the host died" %
                      (jid, rec.get("JobState"), state["ended"] - state["killed"]), flush=True)
                # the file a waiting job leaves behind is readable
                with h5py.File(path + ".partial", "r") as f:
                    state["rows"] = f["trajectory/step"].shape[0]
                    state["status"] = f.attrs["status"]

    left = cl.wait([jid], poll=poll)
    R.check(not left, "failure: job still queued")
    R.check("killed" in state, "failure: no checkpoint appeared, no host was killed")
    if "killed" not in state:
        return
    R.check("ended" in state and state["ended"] - state["killed"] < 150,
            "failure: the job kept running %.0f s after its host died" % (state.get("ended", time.time()) - state["killed"]))
    R.check(state.get("status") == "running" and state.get("rows", 0) >= 1,
            "failure: file while waiting: status %s, %s rows" % (state.get("status"), state.get("rows")))
    recs = cl.completed(R, jid, "requeued run")
    if recs:
        rec = recs[0]
        R.check(rec.get("Restarts") == "1", "failure: Restarts=%s" % rec.get("Restarts"))
        hosts = cl.hostnames(rec.get("NodeList", ""))
        R.check(len(hosts) == 4 and state["victim"] not in hosts, "failure: resumed on %s" % hosts)
    logs = TS.logs_of(out)
    R.check("resuming from checkpoint" in logs, "failure: the requeued job did not resume:\n" + logs[-3000:])
    with h5py.File(path, "r") as f:
        R.check(int(f.attrs.get("resume_count", 0)) == 1, "failure: resume_count %s" % f.attrs.get("resume_count"))
    same_trajectory(R, path, ref, "failure")


def main():
    if os.geteuid() != 0:
        print("skipped: the namespace cluster needs root (network namespaces, SLURM daemons as root)")
        return SKIP
    for c in ("ip", "nsenter", "unshare", "slurmctld", "slurmd", "sbatch"):
        if not shutil.which(c):
            print("skipped: %s is not installed (scripts/install-deps.sh)" % c)
            return SKIP
    probe = PREFIX + "probe"
    p = subprocess.run(["ip", "netns", "add", probe], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        print("skipped: cannot create a network namespace here: %s" % p.stdout.strip())
        return SKIP
    subprocess.run(["ip", "netns", "del", probe])

    # one cluster of this name at a time: a concurrent run (another build folder) waits
    lock = open(os.path.join("/run" if os.path.isdir("/run") else "/tmp", "ntkspec-testcluster-%s.lock" % PREFIX), "w")
    t0 = time.time()
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.time() - t0 > 900:
                print("FAIL: another run held the cluster lock for 900 s")
                return 1
            time.sleep(1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated: tearing the cluster down"))

    t_start = time.time()
    R = H.Report()
    root = tempfile.mkdtemp(prefix="ntkspec-cluster-")
    cl = NsCluster(root)
    work = os.path.join(root, "work")
    os.makedirs(work)
    env = TS.job_env(cl.env, work, PREFIX, rank_wrapper(work))
    ok = False
    try:
        cl.start()
        print("cluster of %d hosts up in %.1f s (%s)" % (K, time.time() - t_start, root), flush=True)
        for name, fn in (("fence", section_fence), ("jobs", section_jobs), ("lock", section_lock),
                         ("partition", section_partition), ("failure", section_failure)):
            if H.section(name):
                t0 = time.time()
                fn(R, cl, env, work)
                print("%s: %.1f s" % (name, time.time() - t0), flush=True)
        ok = R.failed == 0
    except Exception as e:  # report, then tear down
        R.check(False, "exception: %r" % (e,))
    finally:
        cl.finish(ok, [os.path.dirname(d) for d in sorted(glob.glob(os.path.join(work, "*", "logs")))])
        left = [l for l in subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, text=True).stdout.split("\n")
                if l.startswith(PREFIX)]
        R.check(not left, "namespaces left after teardown: %s" % left)
    print("total %.1f s" % (time.time() - t_start))
    return R.finish()


if __name__ == "__main__":
    sys.exit(main())
