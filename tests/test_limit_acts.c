/* The infinite-width limit of the activations added for issue 19 (leaky_relu, abs, sin,
 * cos, softplus, silu, sigmoid, sign): the mean empirical NTK of S seeds at width n
 * against Theta_inf on six points of the unit sphere (raw inputs, L = 2, a = 1/sqrt(L)).
 * Cheap by design (test_limit.c is the thorough one): 24 seeds at width 512.
 *
 * Tolerance: the seed-to-seed standard error of each entry is measured, and the test
 * asks |mean - Theta_inf| <= 5 SE + 1% of the mean diagonal per entry; the 1% covers the
 * O(1/n) bias of a finite network (about 1/512 of the kernel's scale times a constant of
 * order one).  A wrong dual or mean term moves entries by far more (dropping the mean
 * terms of abs changes the NTK by ~20%).
 * Usage: test_limit_acts [seeds] [width]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_analytic.h"
#include "ntk_error.h"
#include "ntk_grid.h"
#include "ntk_model.h"
#include "ntk_ntk.h"

#define NACT 8

static int rank_;

#include "ntk_limit_points.h"

static void gather_add(const ntk_dmat *A, double *sum, double *sq) {
  double *full = NULL;
  OK(ntk_dmat_gather(A, 0, &full));
  if (rank_ == 0)
    for (int e = 0; e < NPTS * NPTS; ++e) {
      sum[e] += full[e];
      if (sq) sq[e] += full[e] * full[e];
    }
  free(full);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  const int seeds = argc > 1 ? atoi(argv[1]) : 24, width = argc > 2 ? atoi(argv[2]) : 512;
  ntk_grid g;
  OK(ntk_grid_create(MPI_COMM_WORLD, 0, 0, 64, &g));
  ntk_dmat X;
  OK(ntk_dmat_create(&g, NPTS, 3, &X));
  ntk_dmat_fill(&X, points, NULL);
  static const int acts[NACT] = {NTK_ACT_LEAKY_RELU, NTK_ACT_ABS,  NTK_ACT_SIN,
                                 NTK_ACT_COS,        NTK_ACT_SOFTPLUS, NTK_ACT_SILU,
                                 NTK_ACT_SIGMOID,    NTK_ACT_SIGN};
  static double sum[NACT][NPTS * NPTS], sq[NACT][NPTS * NPTS], inf[NACT][NPTS * NPTS];
  ntk_config cfg[NACT];
  for (int s = 0; s < seeds; ++s) {
    ntk_config base;
    ntk_config_defaults(&base);
    base.seed = 5000 + (uint64_t)s;
    base.model.width = width;
    base.model.depth = 2;
    base.model.leaky_slope = 0.2;
    base.fourier.features = 0;
    ntk_model M;
    OK(ntk_model_init(&base, &g, 3, 1, &M));
    for (int v = 0; v < NACT; ++v) {
      cfg[v] = base;
      cfg[v].model.activation = acts[v];
      M.cfg = &cfg[v];
      M.activation = acts[v]; /* the same weights under another activation */
      ntk_dmat T;
      OK(ntk_dmat_create(&g, NPTS, NPTS, &T));
      OK(ntk_ntk_compute(&M, &X, NULL, NTK_METHOD_STRUCTURED, 64, &T, NULL));
      gather_add(&T, sum[v], sq[v]);
      ntk_dmat_free(&T);
      if (s == 0) {
        ntk_dmat nngp, tinf;
        OK(ntk_analytic_compute(&cfg[v], &g, &X, NTK_NETWORK_EVAL, NULL, &nngp, &tinf, NULL));
        gather_add(&tinf, inf[v], NULL);
        ntk_dmat_free(&nngp);
        ntk_dmat_free(&tinf);
      }
    }
    M.cfg = &base;
    ntk_model_free(&M);
  }
  int failed = 0;
  if (rank_ == 0)
    for (int v = 0; v < NACT; ++v) {
      double diag = 0.0, worst = 0.0, worst_se = 0.0;
      int ok = 1;
      for (int i = 0; i < NPTS; ++i) diag += inf[v][i * NPTS + i] / NPTS;
      for (int e = 0; e < NPTS * NPTS; ++e) {
        double mean = sum[v][e] / seeds;
        double se = sqrt(fmax(sq[v][e] / seeds - mean * mean, 0.0) / (seeds - 1));
        double d = fabs(mean - inf[v][e]);
        ok &= d <= 5 * se + 0.01 * diag;
        if (d / diag > worst) worst = d / diag, worst_se = se / diag;
      }
      failed += !ok;
      printf("%s %-10s: max |mean Theta - Theta_inf| / mean diag = %.4f (its standard error "
             "%.4f)\n",
             ok ? "ok  " : "FAIL", ntk_config_enum_name("model.activation", acts[v]), worst,
             worst_se);
    }
  MPI_Bcast(&failed, 1, MPI_INT, 0, MPI_COMM_WORLD);
  ntk_dmat_free(&X);
  ntk_grid_free(&g);
  MPI_Finalize();
  return failed ? 1 : 0;
}
