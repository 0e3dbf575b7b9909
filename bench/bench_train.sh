#!/usr/bin/env bash
# Training benchmark (not a test): per-phase times of `ntkspec run` with training and the
# cost of a training step in forward passes.
#   bench/bench_train.sh [NP] [CONFIG] [--set key=value ...]
# Defaults: 2 ranks, configs/quickstart.yaml.  Needs build/ntkspec (or $NTKSPEC) and
# Debian's python3-h5py.  Prints the /timing table of the result file, the time per
# training step, per forward pass of a training step, and the time per measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
NP=${1:-2}
CONFIG=${2:-configs/quickstart.yaml}
shift $(( $# > 2 ? 2 : $# ))
NTKSPEC=${NTKSPEC:-build/ntkspec}
OUT=${OUT:-/tmp/bench_train.h5}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
mpirun -np "$NP" "$NTKSPEC" run "$CONFIG" -q --set output.path="$OUT" \
  --set output.overwrite=true "$@"
/usr/bin/python3 - "$OUT" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
t = f["timing"]
names = [x.decode() if isinstance(x, bytes) else x for x in t["phase"][()]]
mx = dict(zip(names, t["max"][()]))
calls = dict(zip(names, t["calls"][()]))
print("%-12s %10s %8s" % ("phase", "max [s]", "calls"))
for n in names:
    if mx[n] > 0:
        print("%-12s %10.3f %8d" % (n, mx[n], calls[n]))
a = t.attrs
steps = int(a.get("train_steps", 0))
T = len(f["trajectory/step"])
if steps:
    s, fw = a["train_step_seconds"], a["train_forward_seconds"]
    print("training steps: %d, %.4f s per step, forward %.4f s -> %.2f forward passes per step"
          % (steps, s, fw, s / fw))
    meas = mx["total"] - steps * s - mx["setup"] - mx["data"] - mx["init"]
    print("measurements: %d, about %.3f s each (kernel, eigensolves, metrics, output)" % (T, meas / T))
print("status:", f.attrs["status"], " N =", f["trajectory/eigenvalues"].shape[1])
PY
