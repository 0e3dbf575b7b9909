# Shared by the ntkspec job scripts (sourced, not run): where things are, how ranks are
# launched, and the signal -> checkpoint -> requeue logic.  See jobs/README.md.
#
# Variables (all optional; the defaults suit a job submitted from the repository root):
#   NTK_ROOT           repository root                       (default: $SLURM_SUBMIT_DIR)
#   NTKSPEC            the ntkspec binary        (default: $NTK_ROOT/build/ntkspec, else PATH)
#   NTK_PYTHON         Python with h5py/numpy/matplotlib     (default: /usr/bin/python3)
#   NTK_LAUNCHER       srun | mpirun                          (default: srun)
#   NTK_SRUN_MPI       srun --mpi plugin                      (default: pmix)
#   NTK_SRUN_EXTRA     extra srun options                     (default: none)
#   SLURM_PMIX_FENCE   Slurm's PMIx fence algorithm           (default here: ring)
#   NTK_MPIRUN_EXTRA   extra mpirun options                   (default: none)
#   NTK_RESUMABLE      auto | 0 | 1: forward the time-limit signal to ntkspec and requeue
#                      (auto: only training runs, train.steps > 0, can checkpoint)
#   NTK_MAX_RESTARTS   requeue at most this many times        (default: 20)
# shellcheck shell=bash

NTK_ROOT=${NTK_ROOT:-${SLURM_SUBMIT_DIR:-$PWD}}
if [ -z "${NTKSPEC:-}" ]; then
  if [ -x "$NTK_ROOT/build/ntkspec" ]; then NTKSPEC="$NTK_ROOT/build/ntkspec"; else NTKSPEC=ntkspec; fi
fi
NTK_PYTHON=${NTK_PYTHON:-/usr/bin/python3}
NTK_LAUNCHER=${NTK_LAUNCHER:-srun}
NTK_SRUN_MPI=${NTK_SRUN_MPI:-pmix}
NTK_RESUMABLE=${NTK_RESUMABLE:-auto}
NTK_MAX_RESTARTS=${NTK_MAX_RESTARTS:-20}
# one BLAS thread per rank unless the job asked for more CPUs per task
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$OPENBLAS_NUM_THREADS}

# the exit status ntkspec uses for "interrupted, checkpoint written" (ntkspec --help)
NTK_EXIT_INTERRUPTED=3

ntk_log() { echo "[ntk-job $(date -u +%Y-%m-%dT%H:%M:%SZ) ${SLURM_JOB_ID:-nojob}] $*"; }

# ntk_launcher [NTASKS]: sets the array ntk_cmd to the launcher command line for all the
# job's ranks (or NTASKS of them on one node).  Run as "${ntk_cmd[@]}" PROGRAM ARGS, so that
# a background launch's $! is the launcher itself (signals must reach it, not a subshell).
ntk_launcher() {
  local n=${1:-}
  case "$NTK_LAUNCHER" in
    srun)
      ntk_cmd=(srun --mpi="$NTK_SRUN_MPI")
      [ -n "$n" ] && ntk_cmd+=(-n "$n" -N 1)
      # every PMIx fence on the ring: Slurm's default ("mixed") sends a fence without data
      # (MPI_Init's closing barrier, MPI_Finalize's) through its tree, which in Slurm 22.05
      # completes on each node alone; a rank then leaves MPI_Init and sends to a rank that
      # has not yet registered its receive handlers, which dies (jobs/README.md)
      export SLURM_PMIX_FENCE=${SLURM_PMIX_FENCE:-ring}
      # shellcheck disable=SC2206
      [ -n "${NTK_SRUN_EXTRA:-}" ] && ntk_cmd+=($NTK_SRUN_EXTRA) ;;
    mpirun)
      # Open MPI's mpirun reads the allocation from SLURM's environment
      ntk_cmd=(mpirun)
      [ -n "$n" ] && ntk_cmd+=(-np "$n")
      # a SIGTERM (scancel, the time limit) gives the ranks time to reach a step boundary and
      # checkpoint, not mpirun's default 1 s before it kills them (docs/TRAINING.md)
      export OMPI_MCA_odls_base_sigkill_timeout=${OMPI_MCA_odls_base_sigkill_timeout:-60}
      # shellcheck disable=SC2206
      [ -n "${NTK_MPIRUN_EXTRA:-}" ] && ntk_cmd+=($NTK_MPIRUN_EXTRA) ;;
    *)
      ntk_log "NTK_LAUNCHER must be srun or mpirun, got '$NTK_LAUNCHER'"; return 2 ;;
  esac
  return 0
}

# ntk_effective_config CONFIG ARGS...: the effective configuration as ntkspec prints it
# with --dry-run (one rank; nothing is computed).
ntk_effective_config() {
  ntk_launcher 1 || return
  "${ntk_cmd[@]}" "$NTKSPEC" run "$@" --dry-run -q 2>/dev/null
}

# ntk_config_value SECTION KEY < EFFECTIVE_CONFIG: one key of that text.
ntk_config_value() {
  awk -v s="$1:" -v k="  $2:" '
    /^[^ #]/ { insec = ($1 == s) }
    insec && index($0, k) == 1 { v = substr($0, length(k) + 1); sub(/^ +/, "", v); sub(/ +#.*/, "", v); gsub(/"/, "", v); print v; exit }'
}

ntk_child=""
ntk_forward_signal() {
  ntk_log "received SIG$1 (time limit near, or preemption)"
  if [ "$ntk_resumable" != 1 ]; then
    ntk_log "not a training run: nothing to checkpoint, the run continues until the limit"
  elif [ -n "$ntk_child" ]; then
    # ntkspec checkpoints on SIGUSR1; srun and mpirun both forward it to every rank
    kill -USR1 "$ntk_child" 2>/dev/null || true
  fi
}

# ntk_run_resumable OUTPUT CONFIG ARGS...: `ntkspec run CONFIG ARGS --set output.path=OUTPUT`
# on all ranks.  A training run resumes from its checkpoint when one exists (a requeued
# job); on SIGUSR1/SIGTERM the signal is forwarded to ntkspec, which checkpoints and exits
# with status 3, and the job requeues itself (scontrol requeue) to continue later.
# Returns ntkspec's exit status (or does not return: the requeue ends this incarnation).
ntk_run_resumable() {
  local output=$1 config=$2
  shift 2
  local args=("$config" "$@" --set "output.path=$output")
  local restarts=${SLURM_RESTART_COUNT:-0}
  ntk_resumable=$NTK_RESUMABLE
  local ckpt=""
  if [ "$ntk_resumable" != 0 ]; then
    local eff steps
    eff=$(ntk_effective_config "${args[@]}")
    steps=$(ntk_config_value train steps <<< "$eff")
    ckpt=$(ntk_config_value train checkpoint <<< "$eff")
    [ -n "$ckpt" ] || ckpt="$output.ckpt"
    if [ "$ntk_resumable" = auto ]; then
      if [ -n "$steps" ] && [ "$steps" -gt 0 ] 2>/dev/null; then ntk_resumable=1; else ntk_resumable=0; fi
    fi
  fi
  mkdir -p "$(dirname "$output")"
  # a run that was killed (node failure, SIGKILL) left its file as OUTPUT.partial: it
  # resumes from the last periodic checkpoint (train.checkpoint_every) all the same
  if [ "$ntk_resumable" = 1 ] && [ -f "$ckpt" ] && { [ -f "$output" ] || [ -f "$output.partial" ]; }; then
    ntk_log "restart $restarts: resuming from checkpoint $ckpt"
    args+=(--resume)
  elif [ "$restarts" -gt 0 ]; then
    ntk_log "restart $restarts: no checkpoint, starting over"
    args+=(--set output.overwrite=true)
  fi
  trap 'ntk_forward_signal USR1' USR1
  trap 'ntk_forward_signal TERM' TERM
  ntk_log "ntkspec run ${args[*]} on ${SLURM_NTASKS:-?} ranks (${SLURM_JOB_NUM_NODES:-?} nodes) via $NTK_LAUNCHER"
  ntk_launcher || return
  "${ntk_cmd[@]}" "$NTKSPEC" run "${args[@]}" &
  ntk_child=$!
  local rc
  while :; do
    # a trap interrupts wait; the child is still running then, so wait again
    wait "$ntk_child"
    rc=$?
    [ "$rc" -gt 128 ] || break
    kill -0 "$ntk_child" 2>/dev/null && continue
    wait "$ntk_child" # it ended meanwhile: bash kept its status
    rc=$?
    break
  done
  ntk_child=""
  trap - USR1 TERM
  ntk_log "ntkspec exited with status $rc"
  if [ "$rc" = "$NTK_EXIT_INTERRUPTED" ] && [ "$ntk_resumable" = 1 ]; then
    if [ "$restarts" -ge "$NTK_MAX_RESTARTS" ]; then
      ntk_log "interrupted, but already restarted $restarts times (NTK_MAX_RESTARTS): not requeueing"
      return "$rc"
    fi
    ntk_log "interrupted with a checkpoint: requeueing job $SLURM_JOB_ID"
    # ends this incarnation (Slurm cancels the running batch script)
    scontrol requeue "$SLURM_JOB_ID"
    sleep 60
    return "$rc"
  fi
  return "$rc"
}
