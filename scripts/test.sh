#!/usr/bin/env bash
# Builds (if needed) and runs the whole test suite with ctest: unit tests, MPI tests at
# 1, 2 and 4 ranks, HDF5 read-back through h5py, and the bad-input table.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
cd build
ctest --output-on-failure -j 2 "$@"
