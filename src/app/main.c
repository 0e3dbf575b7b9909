/* ntkspec: the distributed empirical NTK spectrum of wide residual networks. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "ntk_app.h"
#include "ntk_eigs.h"
#include "ntk_error.h"
#include "ntk_schema.h"
#include "ntk_signal.h"

static void usage(void) {
  printf(
      "ntkspec %s - the distributed empirical NTK spectrum of wide residual networks\n"
      "\n"
      "usage: mpirun -np P ntkspec COMMAND ...\n"
      "  run CONFIG [--set K=V ...] [--dry-run] [--resume] [--stop-at STEP]\n"
      "        compute the NTK of the network CONFIG describes and its spectrum, train it\n"
      "        (train.steps > 0) measuring the NTK along the way, write one HDF5 file\n"
      "  analytic CONFIG [--set K=V ...]\n"
      "        the infinite-width NNGP and NTK of the configuration alone\n"
      "  sweep CONFIG --widths W1,W2,... [--seeds S] [--top-k K] [--set K=V ...]\n"
      "        width study: distance of the empirical NTK to the infinite-width one against\n"
      "        the width, with the fitted log-log slope\n"
      "  info FILE.h5\n"
      "        provenance, status, shapes and a summary of a result file\n"
      "  schema\n"
      "        every dataset and attribute name of the file format, as JSON\n"
      "  --help | --version\n"
      "\n"
      "options:\n"
      "  --set K=V    override a configuration key (repeatable), e.g. --set model.width=1024\n"
      "  --dry-run    (run) print the effective configuration, the process grid, the\n"
      "               estimated memory per rank and output size, and compute nothing\n"
      "  --resume     (run) continue an interrupted training run from its checkpoint\n"
      "               (train.checkpoint), appending to output.path\n"
      "  --stop-at S  (run) checkpoint and stop at step S as a signal would (exit status 3);\n"
      "               splits a training run into pieces: --resume --stop-at S2 goes on\n"
      "  -q, --quiet  no progress lines;  -v, --verbose  debug lines\n"
      "\n"
      "SIGTERM, SIGINT or SIGUSR1: during training, checkpoint at the next step (status\n"
      "interrupted); during the setup, stop and leave no file (exit status 3 either way).\n"
      "exit status: 0 success, 2 bad input (usage, configuration, data), 1 other failure,\n"
      "             3 interrupted (checkpoint written: run again with --resume; or nothing kept),\n"
      "             4 diverged (NaN/Inf or loss blow-up; everything measured is kept).\n"
      "docs: README.md, docs/CONFIG.md (every key), docs/OUTPUT.md (the file format),\n"
      "      docs/TRAINING.md, docs/ANALYTIC.md.\n",
      NTK_VERSION);
}

int main(int argc, char **argv) {
  /* before MPI_Init and before any file exists: no early signal kills a rank */
  ntk_signal_install();
  MPI_Init(&argc, &argv);
  int rank, status = 2;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const char *cmd = argc > 1 ? argv[1] : NULL;
  if (!cmd || !strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    if (rank == 0) usage();
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
  } else if (!strcmp(cmd, "schema")) {
    status = rank == 0 && ntk_schema_write_json(stdout) != 0 ? 1 : 0;
  } else {
    if (rank == 0) fprintf(stderr, "ntkspec: error: unknown command '%s' (try ntkspec --help)\n", cmd);
  }
  /* PETSc, when the matrix-free eigensolver started it, ends before MPI does */
  if (ntk_eigs_finalize() != NTK_OK && status == 0) status = 1;
  MPI_Finalize();
  return status;
}
