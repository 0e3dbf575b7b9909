/* Prints 60 warnings from every rank at once, for test_log.py.  With one write(2) per line,
 * no stderr line may hold parts of two warnings.  60 lines of about 62 bytes stay under
 * the 4096 bytes Open MPI's output forwarding reads from a rank at a time: a longer output
 * is cut at that boundary by mpirun itself, whatever the program writes. */
#include <mpi.h>

#include "ntk_log.h"

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  ntk_log_init(MPI_COMM_WORLD, 1);
  MPI_Barrier(MPI_COMM_WORLD);
  for (int i = 0; i < 60; ++i) ntk_log_warn("line %02d xxxxxxxxxxxxxxxxxxxx end", i);
  MPI_Finalize();
  return 0;
}
