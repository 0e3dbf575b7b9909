#!/usr/bin/env bash
# Bounded libFuzzer run of every fuzz target (docs/HARDENING.md): builds build-fuzz with
# clang (-DNTK_FUZZ=ON: libFuzzer + ASan + UBSan) and runs each target for a fixed number
# of inputs from libFuzzer's random seed NTK_FUZZ_SEED (default 1), starting from the
# checked-in corpus fuzz/corpus/<target> (read only; new inputs go to a scratch folder).
# A fixed seed and input count make CI's run the same walk on every machine, so a failure
# reproduces with the same command and a pass does not depend on the draw or the speed.
# Inputs per target: NTK_FUZZ_RUNS (default: about 20 s here of each, config 8000, idx
# 20000, hdf5 2500); NTK_FUZZ_SECONDS (default 300) caps a slow machine.  For campaigns
# that look for new bugs: NTK_FUZZ_SEED=0 (a new random walk), NTK_FUZZ_RUNS=-1 (no input
# limit) and a longer NTK_FUZZ_SECONDS.  Any crash, leak, timeout or failed property stops
# with the reproducer in build-fuzz/artifacts/: fix the bug, then add the file to
# fuzz/corpus/<target>/ so that ctest (fuzz_replay_<target>) replays it in every build
# from then on.  Arguments: target names (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${NTK_FUZZ_BUILD:-build-fuzz}
SECS=${NTK_FUZZ_SECONDS:-300}
SEED=${NTK_FUZZ_SEED:-1}
declare -A DEFAULT_RUNS=([config]=8000 [idx]=20000 [hdf5]=2500)
TARGETS=("$@")
if [ "${#TARGETS[@]}" -eq 0 ]; then TARGETS=(config idx hdf5); fi
cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNTK_FUZZ=ON \
  -DNTK_WERROR=ON >/dev/null
for t in "${TARGETS[@]}"; do
  # a failed build stops here with the compiler's messages (not a run of an older binary)
  if ! out=$(cmake --build "$BUILD" -j "$(nproc)" --target "fuzz_$t" 2>&1); then
    grep -E "error:|warning:|Error" <<<"$out" || tail -20 <<<"$out"
    echo "fuzz.sh: building fuzz_$t failed" >&2
    exit 1
  fi
done
ART="$(cd "$BUILD" && pwd)/artifacts"
mkdir -p "$ART"
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OPENBLAS_NUM_THREADS=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
# allocator_may_return_null: HDF5's metadata cache allocates sizes read from the file; for
# an impossible one malloc returns NULL in a normal build and HDF5 reports an error, which
# is what the sanitizer build must do too (fuzz/corpus/hdf5/huge_metadata_allocation)
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:allocator_may_return_null=1"
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
status=0
for t in "${TARGETS[@]}"; do
  work=$(mktemp -d)
  log="$ART/fuzz_$t.log"
  runs=${NTK_FUZZ_RUNS:-${DEFAULT_RUNS[$t]:-2000}}
  if "$BUILD/fuzz/fuzz_$t" -runs="$runs" -max_total_time="$SECS" -seed="$SEED" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$ART/$t-" -print_final_stats=1 "$work" "fuzz/corpus/$t" >"$log" 2>&1; then
    done_runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
    cap=""
    if [ "$runs" -ge 0 ] && [ "${done_runs:-0}" -lt "$runs" ]; then cap=" (stopped by the ${SECS} s cap)"; fi
    echo "fuzz_$t: seed $SEED, ${done_runs:-?} inputs in ${secs:-?} s$cap, no crash"
  else
    status=1
    echo "fuzz_$t: FAILED (seed $SEED, log $log); reproducer:"
    ls "$ART" | grep "^$t-" || true
    grep -v "# Uses" "$log" | tail -60
  fi
  rm -rf "$work"
done
exit "$status"
