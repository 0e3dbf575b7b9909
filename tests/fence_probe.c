/* Is a PMIx fence without data a barrier under this launcher?  Rank 0 waits SECONDS
 * (default 2) before MPI_Finalize, whose PMIx fence carries no data; every rank prints when
 * it entered and left MPI_Finalize, in CLOCK_REALTIME seconds (the namespace hosts of
 * scripts/testcluster.sh share one clock).  Through a real barrier no rank leaves before
 * rank 0 has entered.  Used by tests/test_cluster.py, section fence. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double wall(void)
{
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
  double wait = argc > 1 ? atof(argv[1]) : 2.0;
  char host[256] = "?";
  int rank = -1;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  gethostname(host, sizeof host - 1);
  if (rank == 0) {
    struct timespec d = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
    nanosleep(&d, NULL);
  }
  double enter = wall();
  MPI_Finalize();
  double leave = wall();
  printf("fence_probe rank %d host %s enter %.6f leave %.6f\n", rank, host, enter, leave);
  return 0;
}
