"""Memory estimate against the measured peak (issue 7, docs/HARDENING.md "Memory: estimate
and limit").  Configurations of clearly different shapes, each big enough that the
matrices dominate the runtime baseline:
  wide     width 2048, depth 2, N = 256, 2 GD steps (measured every step), 2 ranks
  deep     width 512, depth 12, N = 1536, no training, 4 ranks (2 x 2 grid)
  vectors  width 128, depth 1, N = 2048, pdsyevd with all eigenvectors saved, 2 ranks
  train1   width 256, depth 2, N = 1536, 2 GD steps (default solver), 1 rank
For each: the run records /memory (estimated_peak_bytes, measured_peak_bytes_min/avg/max,
...), prints the one-line summary, and 0.85 <= measured (max over ranks) / estimate <=
1.15; the estimate --dry-run prints is the recorded one (the same terms; only the runtime
baseline, measured in each process, may differ a little).  Pass names to run only those."""
import os
import re
import sys
import time

import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkharness as H  # noqa: E402

MIB = 1048576.0
R = H.Report()
tmp = H.tmpdir()
ONLY = sys.argv[1:]

BASE = """seed: 1
model: {{width: {width}, depth: {depth}, activation: relu}}
fourier: {{features: 64}}
data: {{source: synthetic_1d, n_train: {n}, n_test: 0}}
train: {{steps: {steps}, lr_scale: 0.5, measure: every, measure_every: 1}}
eigensolver: {{type: {solver}}}
output: {{save_data: false, save_eigenvectors: {vectors}}}
"""

CASES = [
    ("wide", 2, dict(width=2048, depth=2, n=256, steps=2, solver="auto", vectors="false")),
    ("deep", 4, dict(width=512, depth=12, n=1536, steps=0, solver="auto", vectors="false")),
    ("vectors", 2, dict(width=128, depth=1, n=2048, steps=0, solver="pdsyevd", vectors="true")),
    ("train1", 1, dict(width=256, depth=2, n=1536, steps=2, solver="auto", vectors="false")),
]


def dry_run(cfg, path, np_):
    p = H.run(["run", cfg, "--dry-run", "--set", "output.path=" + path], np=np_)
    peak = re.search(r"estimated peak\s+([0-9.]+) MiB \((.*)\)", p.stdout)
    base = re.search(r"runtime baseline\s+([0-9.]+) MiB", p.stdout)
    R.check(p.returncode == 0 and peak and base, "dry run prints the estimate: " + p.stdout[-600:] + p.stderr)
    if not (peak and base):
        return None
    return float(peak.group(1)), float(base.group(1)), peak.group(2)


t_all = time.time()
for name, np_, shape in CASES:
    if ONLY and name not in ONLY:
        continue
    cfg = H.write_config(tmp, name + ".yaml", BASE.format(**shape))
    path = os.path.join(tmp, name + ".h5")
    dry = dry_run(cfg, path, np_)
    t0 = time.time()
    p = H.run(["run", cfg, "-q", "--set", "output.path=" + path, "--set", "output.overwrite=true"], np=np_)
    dt = time.time() - t0
    R.check(p.returncode == 0, "%s: run failed: %s" % (name, p.stderr[-800:]))
    if p.returncode != 0:
        continue
    with h5py.File(path, "r") as f:
        R.check("memory" in f, "%s: /memory recorded" % name)
        if "memory" not in f:
            continue
        a = dict(f["memory"].attrs)
    est, base = a["estimated_peak_bytes"] / MIB, a["estimated_baseline_bytes"] / MIB
    lo, avg, hi = (a["measured_peak_bytes_" + s] / MIB for s in ("min", "avg", "max"))
    ratio = hi / est
    print("   %-8s %d ranks: estimate %7.1f MiB (%s), measured %7.1f MiB (min %.1f, avg %.1f): "
          "%.3f  [%.1f s]" % (name, np_, est, a["estimated_peak_phase"], hi, lo, avg, ratio, dt), flush=True)
    R.check(0.85 <= ratio <= 1.15, "%s: measured / estimate %.3f within 0.85 .. 1.15" % (name, ratio))
    R.check(0 < lo <= avg <= hi, "%s: min <= avg <= max (%.1f %.1f %.1f)" % (name, lo, avg, hi))
    R.check(est > 2.5 * base, "%s: the matrices dominate the baseline (%.1f vs %.1f MiB)" % (name, est, base))
    summary = re.search(r"memory per rank: peak ([0-9.]+) MiB measured \(max over ranks\), ([0-9.]+) MiB "
                        r"estimated", p.stdout)
    R.check(summary is not None, "%s: summary line: %s" % (name, p.stdout[-400:]))
    if summary:
        R.check(abs(float(summary.group(1)) - hi) <= 0.051 and abs(float(summary.group(2)) - est) <= 0.051,
                "%s: the summary prints the recorded numbers: %s" % (name, summary.group(0)))
    if dry:
        d_peak, d_base, d_phase = dry
        # each value is printed to 0.1 MiB: the terms above the baseline agree to rounding
        R.check(abs((d_peak - d_base) - (est - base)) <= 0.101,
                "%s: dry run %.1f - %.1f MiB vs recorded %.2f - %.2f MiB" % (name, d_peak, d_base, est, base))
        R.check(abs(d_base - base) <= 3.0, "%s: baselines %.1f and %.1f MiB" % (name, d_base, base))
        R.check(d_phase == a["estimated_peak_phase"], "%s: peak phase %s vs %s" % (name, d_phase,
                                                                                  a["estimated_peak_phase"]))
# every measurement's step is held (the schedule): 10^6 steps measured every step hold
# 1000001 x 8 bytes, printed by the dry run and counted in the peak
cfg = H.write_config(tmp, "schedule.yaml", BASE.format(width=64, depth=1, n=64, steps=0, solver="auto",
                                                       vectors="false"))
p = H.run(["run", cfg, "--dry-run", "--set", "train.steps=1000000", "--set", "output.path=" +
           os.path.join(tmp, "schedule.h5")], np=1)
sched = re.search(r"measurement schedule\s+([0-9.]+) MiB", p.stdout)
R.check(p.returncode == 0 and sched and abs(float(sched.group(1)) - 1000001 * 8 / MIB) <= 0.051,
        "dry run counts the schedule of 10^6 measurements (7.6 MiB): %s" % (sched.group(0) if sched else p.stdout[-400:]))
R.check("# work: 1000001 measurement(s) x 1 kernel assembly each = 1000001 assemblies, 1000001 eigensolves; "
        "1000000 training step(s)" in p.stdout, "dry run prints the work: %s" % p.stdout[-300:])
p = H.run(["run", cfg, "--dry-run", "--set", "train.steps=1000", "--set", "ntk.network=mask_average", "--set",
           "ntk.mask_samples=2147483647", "--set", "output.path=" + os.path.join(tmp, "schedule.h5")], np=1)
R.check(p.returncode == 0 and "1001 measurement(s) x 2147483647 kernel assemblies each = %d assemblies"
        % (1001 * 2147483647) in p.stdout,
        "ntk.mask_samples counts in the work, in 64 bits: %s" % p.stdout[-300:])
print("   all cases: %.1f s" % (time.time() - t_all))
sys.exit(R.finish())
