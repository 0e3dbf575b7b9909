/* ntk_signal: SIGTERM, SIGINT and SIGUSR1 as requests to stop, and the launcher's death.
 *
 * ntk_signal_install() runs first in main(), before MPI_Init and before any file exists, so
 * that no early signal kills a rank by its default action.  A handler only records the
 * signal; the ranks agree on it collectively (ntk_signal_agree) at the points where
 * stopping is safe: a training step boundary writes a checkpoint, the setup of any command
 * stops with "nothing to keep" (NTK_ERR_INTERRUPTED, exit status 3, no output left).
 * A rank started by a launcher (mpirun, srun) also dies at once when that launcher is gone,
 * so that no rank still writes after the job's command has returned. */
#ifndef NTK_SIGNAL_H
#define NTK_SIGNAL_H
#include <mpi.h>

void ntk_signal_install(void);
/* The first signal this rank received (SIGTERM, SIGINT, SIGUSR1), or 0. */
int ntk_signal_pending(void);
/* Collective: the first signal any rank received, or 0; the same on every rank. */
int ntk_signal_agree(MPI_Comm comm);
/* Collective: NTK_OK, or NTK_ERR_INTERRUPTED on every rank when any rank received a signal
 * (message: "interrupted by SIGTERM during WHAT: nothing to keep"). */
int ntk_signal_check(MPI_Comm comm, const char *what);
const char *ntk_signal_name(int sig);

#endif
