/* What the plain MPI tests of the model (test_ntk, test_ntkvp) share: EXPECT counts a failed
 * check on every rank and prints it from rank 0 (the values compared are the same on every
 * rank, reduced before), so a test goes on through its collectives and fails at the end;
 * OK aborts all ranks on a library error, whose message it prints; xdata is their inputs,
 * base_config their network, test_start their MPI and grid. */
#ifndef NTK_TEST_EXPECT_H
#define NTK_TEST_EXPECT_H
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <string.h>

#include "ntk_config.h"
#include "ntk_error.h"
#include "ntk_grid.h"
#include "ntk_rng.h"

static int rank_, failures, checks;

#define EXPECT(cond, ...)                           \
  do {                                              \
    ++checks;                                       \
    if (!(cond)) {                                  \
      ++failures;                                   \
      if (rank_ == 0) {                             \
        printf("FAIL %s:%d: ", __FILE__, __LINE__); \
        printf(__VA_ARGS__);                        \
        printf("\n");                               \
      }                                             \
    }                                               \
  } while (0)

#define OK(call)                                                                     \
  do {                                                                               \
    int e_ = (call);                                                                 \
    if (e_) {                                                                        \
      fprintf(stderr, "rank %d: %s failed: %s\n", rank_, #call, ntk_err_message()); \
      MPI_Abort(MPI_COMM_WORLD, 1);                                                  \
    }                                                                                \
  } while (0)

static inline double xdata(int i, int j, void *ctx) {
  (void)ctx;
  return ntk_rng_normal(7, NTK_STREAM_USER, (uint64_t)i, (uint64_t)j, 0);
}

/* The small network both check: tanh, trainable Fourier features, stochastic depth. */
static inline void base_config(ntk_config *c) {
  memset(c, 0, sizeof *c);
  c->seed = 11;
  c->model.width = 6;
  c->model.depth = 3;
  c->model.activation = NTK_ACT_TANH;
  c->model.weight_std = 1.3;
  c->model.bias_std = 0.4;
  c->fourier.features = 4;
  c->fourier.scale = 0.3;
  c->fourier.trainable = 1;
  c->fourier.project = 1;
  c->residual.alpha = 0.9;
  c->residual.schedule = NTK_ALPHA_INV_SQRT_DEPTH;
  c->residual.power = 1.0;
  c->residual.skip = 1;
  c->depth.survival = 0.7;
  c->depth.schedule = NTK_SURVIVAL_LINEAR;
  c->ntk.chunk_mb = 0.001; /* forces several chunks in the Jacobian path */
}

/* MPI_Init, rank_, and the grid of argv: [rows cols [block]] (0 = choose; block nb_default). */
static inline void test_start(int *argc, char ***argv, int nb_default, ntk_grid *g) {
  MPI_Init(argc, argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  int rows = *argc > 1 ? atoi((*argv)[1]) : 0, cols = *argc > 2 ? atoi((*argv)[2]) : 0;
  int nb = *argc > 3 ? atoi((*argv)[3]) : nb_default;
  OK(ntk_grid_create(MPI_COMM_WORLD, rows, cols, nb, g));
}

#endif
