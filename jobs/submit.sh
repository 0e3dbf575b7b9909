#!/usr/bin/env bash
# Submits ntkspec jobs with partition, account, sizes and time taken from variables.
# Run from the repository root:
#   jobs/submit.sh run     CONFIG [ntkspec options]   one run (jobs/run.sbatch)
#   jobs/submit.sh sweep   CONFIG [ntkspec options]   width sweep array + aggregation job
#   jobs/submit.sh strong  CONFIG [ntkspec options]   same problem at 1, 2, 4, ... nodes/ranks
#   jobs/submit.sh weak    CONFIG [ntkspec options]   N grows as sqrt(P): fixed work per rank
#   jobs/submit.sh study   STUDY.yaml [--only EXP,...] the missing points of a study as arrays,
#                                                     then the next round, at last the report
# Prints one line "KIND JOBID" per submitted job (also appended to $NTK_OUTDIR/jobs.txt).
#
# Variables (defaults in brackets):
#   NTK_PARTITION, NTK_ACCOUNT   sbatch -p / -A                        [cluster default]
#   NTK_TIME                     time limit per job                     [01:00:00]
#   NTK_SIGNAL_LEAD              seconds of warning before the limit    [300]
#   NTK_NODES                    nodes of a run or sweep task           [1]
#   NTK_RANKS_PER_NODE           MPI ranks per node                     [16]
#   NTK_CPUS_PER_RANK            CPUs (BLAS threads) per rank           [1]
#   NTK_OUTDIR                   results and job logs                   [results/<kind>]
#   NTK_SBATCH_EXTRA             more sbatch options (word-split)       []
#   sweep:   NTK_WIDTHS [256,512,1024,2048], NTK_SEEDS [4], NTK_SEED0 [0]
#   scaling: NTK_N [4096], NTK_WIDTH [4096], NTK_DEPTH [4], NTK_TOPK [64],
#            NTK_EIGENSOLVER [auto], NTK_BLOCK [64],
#            NTK_SCALE_BY nodes|ranks [nodes], NTK_SCALE_MAX [8] (1, 2, 4, ... up to it)
#   study:   NTK_STUDY_ROUNDS [20] (rounds of arrays at most); an experiment's `slurm:` keys
#            in the study file (nodes, ranks_per_node, time) override the sizes and time
# The launcher and the rest are read inside the jobs (jobs/common.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export NTK_ROOT=${NTK_ROOT:-$(dirname "$here")}
kind=${1:-}
[ $# -ge 2 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
shift
config=$1
shift

export NTK_OUTDIR=${NTK_OUTDIR:-results/$kind}
mkdir -p "$NTK_OUTDIR/logs"
time_limit=${NTK_TIME:-01:00:00}
rpn=${NTK_RANKS_PER_NODE:-16}
common=(--time="$time_limit" --cpus-per-task="${NTK_CPUS_PER_RANK:-1}" --chdir="$PWD")
[ -n "${NTK_PARTITION:-}" ] && common+=(--partition="$NTK_PARTITION")
[ -n "${NTK_ACCOUNT:-}" ] && common+=(--account="$NTK_ACCOUNT")
# shellcheck disable=SC2206
[ -n "${NTK_SBATCH_EXTRA:-}" ] && common+=($NTK_SBATCH_EXTRA)
signal=(--signal="B:USR1@${NTK_SIGNAL_LEAD:-300}")

submit() { # KIND sbatch-args...
  local k=$1 id
  shift
  id=$(sbatch --parsable "$@")
  id=${id%%;*}
  echo "$k $id"
  echo "$k $id" >> "$NTK_OUTDIR/jobs.txt"
  last_id=$id
}

case "$kind" in
  run)
    export NTK_OUTPUT=${NTK_OUTPUT:-$NTK_OUTDIR/run.h5}
    submit run "${common[@]}" "${signal[@]}" --nodes="${NTK_NODES:-1}" --ntasks-per-node="$rpn" \
      --output="$NTK_OUTDIR/logs/%x-%j.out" "$here/run.sbatch" "$config" "$@"
    ;;
  sweep)
    export NTK_WIDTHS=${NTK_WIDTHS:-256,512,1024,2048} NTK_SEEDS=${NTK_SEEDS:-4} NTK_SEED0=${NTK_SEED0:-0}
    IFS=, read -ra widths <<< "$NTK_WIDTHS"
    ntasks=$(( ${#widths[@]} * NTK_SEEDS ))
    submit sweep "${common[@]}" "${signal[@]}" --nodes="${NTK_NODES:-1}" --ntasks-per-node="$rpn" \
      --array="0-$(( ntasks - 1 ))" --output="$NTK_OUTDIR/logs/%x-%A_%a.out" \
      "$here/sweep_task.sbatch" "$config" "$@"
    submit aggregate "${common[@]}" --ntasks=1 --dependency="afterok:$last_id" \
      --output="$NTK_OUTDIR/logs/%x-%j.out" "$here/sweep_aggregate.sbatch"
    ;;
  strong|weak)
    export NTK_MODE=$kind NTK_N=${NTK_N:-4096} NTK_WIDTH=${NTK_WIDTH:-4096} NTK_DEPTH=${NTK_DEPTH:-4}
    export NTK_TOPK=${NTK_TOPK:-64} NTK_EIGENSOLVER=${NTK_EIGENSOLVER:-auto} NTK_BLOCK=${NTK_BLOCK:-64}
    by=${NTK_SCALE_BY:-nodes}
    max=${NTK_SCALE_MAX:-8}
    n0=$NTK_N
    ids=()
    for (( p = 1; p <= max; p *= 2 )); do
      if [ "$kind" = weak ]; then
        # the assembly does O(N^2 n) work on N^2/P kernel entries per rank: N ~ sqrt(P)
        NTK_N=$(awk -v n="$n0" -v p="$p" -v b="$NTK_BLOCK" 'BEGIN { v = n * sqrt(p) / b; printf "%d", (v < 1 ? 1 : int(v + 0.5)) * b }')
        export NTK_N
      fi
      if [ "$by" = nodes ]; then
        size=(--nodes="$p" --ntasks-per-node="$rpn")
      else
        size=(--nodes=1 --ntasks="$p")
      fi
      submit "$kind-p$p" "${common[@]}" "${signal[@]}" "${size[@]}" --exclusive \
        --output="$NTK_OUTDIR/logs/%x-%j.out" "$here/scaling.sbatch" "$config" "$@"
      ids+=("$last_id")
    done
    dep=$(IFS=:; echo "${ids[*]}")
    submit report "${common[@]}" --ntasks=1 --dependency="afterok:$dep" \
      --output="$NTK_OUTDIR/logs/%x-%j.out" "$here/scaling_report.sbatch"
    ;;
  study)
    # one round: an array per experiment of the points missing now (tools/ntkspec-study
    # plan), then a job that runs this again once they have ended (afterany: a diverged or
    # failed point is the study's to judge); a round with nothing missing submits the report
    export NTK_STUDY_FILE=$config NTK_STUDY_ARGS="$*" NTK_STUDY_ROUND=${NTK_STUDY_ROUND:-0}
    py=${NTK_PYTHON:-/usr/bin/python3}
    plan=$("$py" "$NTK_ROOT/tools/ntkspec-study" plan "$config" --out "$NTK_OUTDIR" \
           --tasks "$NTK_OUTDIR/tasks/round$NTK_STUDY_ROUND" "$@")
    ids=()
    while read -r exp count file nodes ranks limit; do
      [ -n "$exp" ] || continue
      [ "$nodes" = - ] && nodes=${NTK_NODES:-1}
      [ "$ranks" = - ] && ranks=$rpn
      [ "$limit" = - ] && limit=$time_limit
      submit "study-$exp" "${common[@]}" --time="$limit" "${signal[@]}" --nodes="$nodes" \
        --ntasks-per-node="$ranks" --array="0-$(( count - 1 ))" \
        --output="$NTK_OUTDIR/logs/%x-%A_%a.out" "$here/study_task.sbatch" "$file"
      ids+=("$last_id")
    done <<< "$plan"
    if [ ${#ids[@]} -gt 0 ]; then
      if [ "$NTK_STUDY_ROUND" -ge "${NTK_STUDY_ROUNDS:-20}" ]; then
        echo "submit.sh: study round $NTK_STUDY_ROUND: NTK_STUDY_ROUNDS reached, no further round" >&2
        exit 1
      fi
      dep=$(IFS=:; echo "${ids[*]}")
      export NTK_STUDY_ROUND=$(( NTK_STUDY_ROUND + 1 ))
      submit study-next "${common[@]}" --time=00:15:00 --ntasks=1 \
        --dependency="afterany:$dep" --output="$NTK_OUTDIR/logs/%x-%j.out" "$here/study_next.sbatch"
    else
      submit study-report "${common[@]}" --ntasks=1 --output="$NTK_OUTDIR/logs/%x-%j.out" \
        "$here/study_report.sbatch"
    fi
    ;;
  *)
    sed -n '2,11p' "$0" >&2
    exit 2
    ;;
esac
