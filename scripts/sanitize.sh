#!/usr/bin/env bash
# The sanitizer build (docs/HARDENING.md): builds build-asan with AddressSanitizer and
# UndefinedBehaviorSanitizer on every target (-DNTK_SANITIZE=ON, the system compiler) and
# runs the whole ctest suite there, MPI tests included, except the statistical tests whose
# code paths others cover under the sanitizers at a smaller size: limit_* (64 seeds of the
# model, the structured NTK and the analytic kernel: ntk_*, analytic_*, dual) and
# train_lazy* (1000 GD steps: train_core); matrix_free_2048 (matrix_free at N = 128);
# cluster_jobs (the job scripts across namespace
# hosts: the same C paths as the one-host tests); and memory, which compares the measured peak
# resident set with the estimate: under ASan the resident set is the sanitizer's (shadow
# memory, redzones, the quarantine of freed blocks), not ntkspec's.  docs/HARDENING.md
# lists what each left-out test would add.  Fails on any test failure and on any sanitizer
# report, including one from a process whose exit status a test did not look at.
# Extra arguments go to ctest (e.g. -R config).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${NTK_ASAN_BUILD:-build-asan}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNTK_SANITIZE=ON -DNTK_WERROR=ON >/dev/null
# a failed build stops here with the compiler's messages (not a run of an older binary)
if ! out=$(cmake --build "$BUILD" -j "$(nproc)" 2>&1); then
  grep -E "error:|warning:|Error" <<<"$out" || tail -20 <<<"$out"
  echo "sanitize.sh: the sanitizer build failed" >&2
  exit 1
fi

LOGS="$(cd "$BUILD" && pwd)/sanitizer-logs"
rm -rf "$LOGS"
mkdir -p "$LOGS"
# Reports go to files as well as failing the process: a test that only expects "non-zero"
# or reads one line of stderr cannot hide them.  Leaks inside MPI, HDF5 and hwloc are
# suppressed by tests/lsan.supp; ntkspec's own leaks are not.
# allocator_may_return_null: as in scripts/fuzz.sh, an impossible allocation size read
# from a corrupt file returns NULL (HDF5 then reports an error) as it does without ASan
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:check_initialization_order=1:allocator_may_return_null=1:log_path=$LOGS/asan"
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$LOGS/ubsan"

status=0
# signals: its paths need no 50 trials under ASan (docs/HARDENING.md)
export NTK_SIGNAL_TRIALS=${NTK_SIGNAL_TRIALS:-8}
(cd "$BUILD" && ctest --output-on-failure -j 2 -E '^(limit_.*|train_lazy.*|memory|cluster_jobs|study_.*|matrix_free_2048)$' "$@") || status=$?
# A log holding nothing but allocator_may_return_null's notes ("failed to allocate N
# bytes": malloc returned NULL, as natively) is no finding; any other line is.
nulls=0
for f in $(find "$LOGS" -type f); do
  if ! grep -qv "WARNING: AddressSanitizer failed to allocate 0x[0-9a-f]* bytes" "$f"; then
    rm "$f"
    nulls=$((nulls + 1))
  fi
done
if [ "$nulls" -gt 0 ]; then echo "sanitize: $nulls process(es) had an impossible allocation refused (NULL, as natively)"; fi
reports=$(find "$LOGS" -type f | sort)
if [ -n "$reports" ]; then
  echo "sanitizer reports:"
  for f in $reports; do
    echo "== $f"
    head -60 "$f"
  done
  status=1
fi
if [ "$status" -eq 0 ]; then echo "sanitize: all tests passed, no sanitizer reports"; fi
exit "$status"
