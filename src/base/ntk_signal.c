#include "ntk_signal.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "ntk_error.h"

static volatile sig_atomic_t pending = 0;
static pid_t launcher = 0; /* the parent a launcher started us under; 0 when not launched */

static void on_stop(int sig) {
  if (!pending) pending = sig;
}

/* SIGUSR2 is the parent-death signal (PR_SET_PDEATHSIG): it fires when the thread that
 * forked us exits, which for mpirun and slurmstepd is the launcher's end.  getppid() tells a
 * real orphaning from a stray SIGUSR2; both calls are async-signal-safe. */
static void on_parent_death(int sig) {
  (void)sig;
  if (launcher && getppid() != launcher) _exit(1);
}

static void handle(int sig, void (*fn)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART; /* MPI and HDF5 calls in progress simply carry on */
  sigaction(sig, &sa, NULL);
}

void ntk_signal_install(void) {
  handle(SIGTERM, on_stop);
  handle(SIGINT, on_stop);
  handle(SIGUSR1, on_stop);
  /* Open MPI's launchers (mpirun's daemons, srun's PMIx plugin) set PMIX_RANK; a process
   * started from a shell (a singleton) keeps the shell's semantics (nohup, &). */
  if (getenv("PMIX_RANK") || getenv("OMPI_COMM_WORLD_RANK")) {
    pid_t parent = getppid();
    handle(SIGUSR2, on_parent_death);
    if (prctl(PR_SET_PDEATHSIG, SIGUSR2) == 0) {
      launcher = parent;
      /* the launcher may have gone before the prctl: then no signal will come */
      if (getppid() != parent) _exit(1);
    }
  }
}

int ntk_signal_pending(void) { return pending; }

int ntk_signal_agree(MPI_Comm comm) {
  int mine = pending, first = 0;
  /* any nonzero signal number; the largest is as good as any for the message */
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MAX, comm);
  return first;
}

int ntk_signal_check(MPI_Comm comm, const char *what) {
  int sig = ntk_signal_agree(comm);
  if (!sig) return NTK_OK;
  return ntk_err_set(NTK_ERR_INTERRUPTED, "interrupted by %s during %s: nothing to keep",
                     ntk_signal_name(sig), what);
}

const char *ntk_signal_name(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGUSR1: return "SIGUSR1";
    default: return "a signal";
  }
}
