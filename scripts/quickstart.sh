#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine: installs the packages, builds, and runs the
# shipped quickstart configuration on 2 MPI ranks.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
if [ "$(id -u)" -eq 0 ]; then
  # Open MPI refuses to run as root unless told to; only for this script's own mpirun.
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OPENBLAS_NUM_THREADS=1
mkdir -p results
mpirun -np 2 --oversubscribe build/ntkspec run configs/quickstart.yaml \
  --set output.path=results/quickstart.h5 --set output.overwrite=true
echo
# the summary and the first/last value of every metric (the dataset list is left out)
info=$(build/ntkspec info results/quickstart.h5)
printf '%s\n' "$info" | sed -n '1,13p;/^  metric /,/^$/p'
tools/ntkspec-plot results/quickstart.h5 -o results/plots >/dev/null
echo
echo "result: $(pwd)/results/quickstart.h5 (pictures in $(pwd)/results/plots)"
