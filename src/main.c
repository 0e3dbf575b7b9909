/* ntkspec: the distributed empirical NTK spectrum of wide residual networks. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "ntk_app.h"

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, status = 2;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const char *cmd = argc > 1 ? argv[1] : NULL;
  if (!cmd || !strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    if (rank == 0) ntk_app_usage();
    status = cmd ? 0 : 2;
  } else if (!strcmp(cmd, "--version")) {
    if (rank == 0) printf("ntkspec %s\n", NTK_VERSION);
    status = 0;
  } else if (!strcmp(cmd, "run")) {
    status = ntk_app_run(argc - 2, argv + 2);
  } else if (!strcmp(cmd, "analytic")) {
    status = ntk_app_analytic(argc - 2, argv + 2);
  } else if (!strcmp(cmd, "sweep")) {
    status = ntk_app_sweep(argc - 2, argv + 2);
  } else if (!strcmp(cmd, "info")) {
    status = ntk_app_info(argc - 2, argv + 2);
  } else {
    if (rank == 0) fprintf(stderr, "ntkspec: error: unknown command '%s' (try ntkspec --help)\n", cmd);
  }
  MPI_Finalize();
  return status;
}
