#include "ntk_timer.h"

#include <string.h>

#include "ntk_log.h"

static const char *phase_names[NTK_PHASE_COUNT] = {
    "setup",    "data",       "init",     "forward", "backward", "gram",      "hadamard", "jacobian",
    "eigensolve", "analytic", "train",    "metrics", "output",   "comm_wait", "total"};

static double t_acc[NTK_PHASE_COUNT], t_start[NTK_PHASE_COUNT], flops_acc[NTK_PHASE_COUNT];
static int depth[NTK_PHASE_COUNT];
static long ncalls[NTK_PHASE_COUNT];

const char *ntk_phase_name(ntk_phase p) { return (p >= 0 && p < NTK_PHASE_COUNT) ? phase_names[p] : "?"; }

void ntk_timer_reset(void) {
  memset(t_acc, 0, sizeof t_acc);
  memset(flops_acc, 0, sizeof flops_acc);
  memset(depth, 0, sizeof depth);
  memset(ncalls, 0, sizeof ncalls);
}

static MPI_Comm wait_comm = MPI_COMM_WORLD;

void ntk_timer_set_comm(MPI_Comm comm) {
  wait_comm = comm;
}

/* Collective phases (PBLAS, ScaLAPACK) entered a few times per NTK evaluation: the Gram
 * products follow the rank-local back-propagation and Hadamard work, the eigensolve the
 * whole assembly.  Forward and backward are left out: a training step enters them many
 * times, and a barrier per entry would cost more than it tells on a busy node. */
static int is_collective(ntk_phase p) { return p == NTK_PHASE_GRAM || p == NTK_PHASE_EIGENSOLVE; }

/* The barrier before a collective phase, timed as comm_wait; skipped when there is nobody
 * to wait for (one rank, MPI not running, or switched off). */
static void wait_for_peers(void) {
  if (wait_comm == MPI_COMM_NULL) return;
  int up = 0, down = 0, size = 1;
  MPI_Initialized(&up);
  if (up) MPI_Finalized(&down);
  if (!up || down) return;
  MPI_Comm_size(wait_comm, &size);
  if (size < 2) return;
  double t = MPI_Wtime();
  MPI_Barrier(wait_comm);
  t_acc[NTK_PHASE_COMM_WAIT] += MPI_Wtime() - t;
  ncalls[NTK_PHASE_COMM_WAIT]++;
}

/* Re-entrant per phase: only the outermost start/stop pair counts, so a helper that
 * times itself can be called from a caller that times the same phase. */
void ntk_timer_start(ntk_phase p) {
  if (depth[p] == 0 && is_collective(p)) wait_for_peers();
  if (depth[p]++ == 0) t_start[p] = MPI_Wtime();
}

void ntk_timer_stop(ntk_phase p) {
  if (depth[p] <= 0) return;
  if (--depth[p] == 0) {
    t_acc[p] += MPI_Wtime() - t_start[p];
    ncalls[p]++;
  }
}

void ntk_timer_add_flops(ntk_phase p, double flops) { flops_acc[p] += flops; }
double ntk_timer_seconds(ntk_phase p) { return t_acc[p]; }
double ntk_timer_flops(ntk_phase p) { return flops_acc[p]; }

void ntk_timer_reduce(MPI_Comm comm, ntk_timer_stat *stats) {
  int size;
  MPI_Comm_size(comm, &size);
  double tmin[NTK_PHASE_COUNT], tmax[NTK_PHASE_COUNT], tsum[NTK_PHASE_COUNT], fsum[NTK_PHASE_COUNT];
  MPI_Allreduce(t_acc, tmin, NTK_PHASE_COUNT, MPI_DOUBLE, MPI_MIN, comm);
  MPI_Allreduce(t_acc, tmax, NTK_PHASE_COUNT, MPI_DOUBLE, MPI_MAX, comm);
  MPI_Allreduce(t_acc, tsum, NTK_PHASE_COUNT, MPI_DOUBLE, MPI_SUM, comm);
  MPI_Allreduce(flops_acc, fsum, NTK_PHASE_COUNT, MPI_DOUBLE, MPI_SUM, comm);
  for (int p = 0; p < NTK_PHASE_COUNT; ++p) {
    stats[p].name = phase_names[p];
    stats[p].min = tmin[p];
    stats[p].max = tmax[p];
    stats[p].avg = tsum[p] / size;
    stats[p].flops = fsum[p];
    stats[p].gflops_rate = tmax[p] > 0 ? fsum[p] / tmax[p] / 1e9 : 0.0;
    stats[p].calls = ncalls[p];
  }
}

void ntk_timer_report(MPI_Comm comm) {
  ntk_timer_stat st[NTK_PHASE_COUNT];
  ntk_timer_reduce(comm, st);
  ntk_log_raw("\n%-12s %10s %10s %10s %10s %6s\n", "phase", "min [s]", "avg [s]", "max [s]",
              "GFLOP/s", "calls");
  for (int p = 0; p < NTK_PHASE_COUNT; ++p) {
    if (st[p].max <= 0.0 && st[p].calls == 0) continue;
    ntk_log_raw("%-12s %10.4f %10.4f %10.4f %10.2f %6ld\n", st[p].name, st[p].min, st[p].avg,
                st[p].max, st[p].gflops_rate, st[p].calls);
  }
}
