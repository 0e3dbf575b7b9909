/* ntk_timer: named per-phase timers with flop counts, in the spirit of PETSc -log_view.
 * Phases are a fixed enum so that the report and the HDF5 /timing group have stable
 * names.  Timers nest freely (each phase has its own accumulator); the report reduces
 * min/avg/max over ranks and gives GFLOP/s from the flops counted on each rank. */
#ifndef NTK_TIMER_H
#define NTK_TIMER_H
#include <mpi.h>

typedef enum {
  NTK_PHASE_SETUP,
  NTK_PHASE_DATA,
  NTK_PHASE_INIT,
  NTK_PHASE_FORWARD,
  NTK_PHASE_BACKWARD,
  NTK_PHASE_GRAM,
  NTK_PHASE_HADAMARD,
  NTK_PHASE_JACOBIAN,
  NTK_PHASE_EIGENSOLVE,
  NTK_PHASE_ANALYTIC,
  NTK_PHASE_TRAIN,
  NTK_PHASE_METRICS,
  NTK_PHASE_OUTPUT,
  NTK_PHASE_COMM_WAIT,
  NTK_PHASE_TOTAL,
  NTK_PHASE_COUNT
} ntk_phase;

typedef struct {
  const char *name;
  double min, avg, max; /* seconds over ranks */
  double flops;         /* summed over ranks */
  double gflops_rate;   /* flops / max time / 1e9 */
  long calls;           /* on rank 0 */
} ntk_timer_stat;

const char *ntk_phase_name(ntk_phase p);
void ntk_timer_reset(void);
void ntk_timer_start(ntk_phase p);
void ntk_timer_stop(ntk_phase p);
void ntk_timer_add_flops(ntk_phase p, double flops);
double ntk_timer_seconds(ntk_phase p); /* this rank */
double ntk_timer_flops(ntk_phase p);   /* this rank */
/* Waiting for communication (the comm_wait phase): the entry of the collective phases gram
 * and eigensolve first times a barrier on the timer's communicator,
 * so that the time ranks spend waiting for the slowest one - load imbalance of what came
 * before - is counted in comm_wait instead of inside the collective phase.  The
 * communicator is MPI_COMM_WORLD by default (once MPI is initialised, with more than one
 * rank); ntk_timer_set_comm sets another one (every rank of it must enter those phases
 * together, as every ntk_grid-wide operation does) or MPI_COMM_NULL to switch it off. */
void ntk_timer_set_comm(MPI_Comm comm);
/* Collective. Fills stats[NTK_PHASE_COUNT]. */
void ntk_timer_reduce(MPI_Comm comm, ntk_timer_stat *stats);
/* Collective; rank 0 prints the table. */
void ntk_timer_report(MPI_Comm comm);

#endif
