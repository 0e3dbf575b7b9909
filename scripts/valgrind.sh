#!/usr/bin/env bash
# valgrind memcheck of the 1-rank quick start (docs/HARDENING.md): ntkspec run as an MPI
# singleton (no mpirun, so valgrind sees only ntkspec), on configs/quickstart.yaml made
# smaller (width 256, 128 samples, 8 training steps) so that it takes about a minute under
# valgrind's 30-50x slowdown; every code path of the quick start (data, model, NTK,
# eigensolver, training, checkpoint-free measurement, output) still runs.  Fails on any
# memcheck error and on any definite leak; Open MPI's own reports are suppressed with
# Debian's openmpi-valgrind.supp and tests/valgrind.supp.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${NTK_BUILD:-build}
if [ ! -x "$BUILD/ntkspec" ]; then ./scripts/build.sh; fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
SUPP=()
for s in /usr/share/openmpi/openmpi-valgrind.supp "$ROOT/tests/valgrind.supp"; do
  if [ -f "$s" ]; then SUPP+=("--suppressions=$s"); fi
done
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
# valgrind 3.19 does not emulate AVX-512: keep OpenBLAS on its AVX2 kernels.
export OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=Haswell
export OMPI_MCA_btl_vader_single_copy_mechanism=none
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \
  --errors-for-leak-kinds=definite --error-exitcode=99 --track-origins=yes --num-callers=30 \
  --gen-suppressions=all "${SUPP[@]}" --log-file="$OUT/valgrind.log" \
  "$BUILD/ntkspec" run configs/quickstart.yaml --set output.path="$OUT/quickstart.h5" \
  --set model.width=256 --set data.n_train=128 --set data.n_test=32 --set train.steps=8 \
  --set train.measure_points=3 -q >"$OUT/stdout.txt" 2>&1 && status=0 || status=$?
summary=$(grep -E "ERROR SUMMARY|definitely lost" "$OUT/valgrind.log" || true)
echo "$summary"
if [ "$status" -ne 0 ] || [ ! -f "$OUT/quickstart.h5" ]; then
  echo "valgrind: ntkspec exited with status $status"
  cat "$OUT/stdout.txt"
  grep -v "^==[0-9]*== *$" "$OUT/valgrind.log" | tail -200
  exit 1
fi
echo "valgrind: quick start clean (no memcheck errors, no definite leaks)"
