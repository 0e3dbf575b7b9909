/* The infinite-width limit: the mean of the empirical NTK over 64 seeds at width 2048
 * matches Theta_inf within 2% (largest entry-wise difference over the mean diagonal) for
 * relu, erf, tanh and gelu, constant (a = 0.5) and 1/sqrt(L) schedules, L in {1, 4, 8}, with Fourier
 * features (exact finite-m kernel of each seed's frequencies) and without.
 *
 * The weights of one (seed, L, features) network are drawn once and reused for the eight
 * (activation, schedule) variants: every variant still averages 64 independent networks,
 * and drawing 2048 x 2048 x L normals is what costs.
 * Usage: test_limit [seeds] [width] [only-depth] [only-fourier 0|1] [constant a]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_analytic.h"
#include "ntk_error.h"
#include "ntk_grid.h"
#include "ntk_model.h"
#include "ntk_ntk.h"

#define NPTS 6
#define NVAR 8

static int rank_;

#define OK(call)                                                                       \
  do {                                                                                 \
    if ((call) != NTK_OK) {                                                            \
      fprintf(stderr, "rank %d: %s failed: %s\n", rank_, #call, ntk_err_message());    \
      MPI_Abort(MPI_COMM_WORLD, 1);                                                    \
    }                                                                                  \
  } while (0)

static double points(int i, int j, void *ctx) {
  (void)ctx;
  /* six points spread over the unit sphere in R^3, some close, some far apart */
  static const double P[NPTS][3] = {{1, 0, 0}, {0.8, 0.6, 0}, {0, 1, 0},
                                    {0, 0.6, 0.8}, {-0.6, 0, 0.8}, {0.36, -0.48, 0.8}};
  return P[i][j];
}

static void accumulate(const ntk_dmat *A, double *acc, double w) {
  double *full = NULL;
  OK(ntk_dmat_gather(A, 0, &full));
  if (rank_ == 0)
    for (int e = 0; e < NPTS * NPTS; ++e) acc[e] += w * full[e];
  free(full);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  const int seeds = argc > 1 ? atoi(argv[1]) : 64, width = argc > 2 ? atoi(argv[2]) : 2048;
  const int only_depth = argc > 3 ? atoi(argv[3]) : 0, only_fourier = argc > 4 ? atoi(argv[4]) : -1;
  const double a_const = argc > 5 ? atof(argv[5]) : 0.5;
  ntk_grid g;
  OK(ntk_grid_create(MPI_COMM_WORLD, 0, 0, 64, &g));
  ntk_dmat X;
  OK(ntk_dmat_create(&g, NPTS, 3, &X));
  ntk_dmat_fill(&X, points, NULL);
  static const int acts[4] = {NTK_ACT_RELU, NTK_ACT_ERF, NTK_ACT_TANH, NTK_ACT_GELU};
  static const char *act_names[4] = {"relu", "erf", "tanh", "gelu"};
  static const int depths[3] = {1, 4, 8};
  int passed = 0, failed = 0;
  double worst = 0.0;
  for (int fourier = 0; fourier < 2; ++fourier) {
    if (only_fourier >= 0 && fourier != only_fourier) continue;
    for (int di = 0; di < 3; ++di) {
      if (only_depth && depths[di] != only_depth) continue;
      double emp[NVAR][NPTS * NPTS], inf[NVAR][NPTS * NPTS];
      memset(emp, 0, sizeof emp);
      memset(inf, 0, sizeof inf);
      ntk_config cfg[NVAR];
      for (int s = 0; s < seeds; ++s) {
        ntk_config base;
        ntk_config_defaults(&base);
        base.seed = 1000 + (uint64_t)s;
        base.model.width = width;
        base.model.depth = depths[di];
        base.fourier.features = fourier ? 16 : 0;
        base.fourier.scale = 0.25;
        base.analytic.fourier = NTK_FOURIER_EXACT;
        ntk_model M;
        OK(ntk_model_init(&base, &g, 3, 1, &M));
        for (int v = 0; v < NVAR; ++v) {
          cfg[v] = base;
          cfg[v].model.activation = acts[v / 2];
          cfg[v].residual.schedule = v % 2 ? NTK_ALPHA_INV_SQRT_DEPTH : NTK_ALPHA_CONSTANT;
          /* constant a = 0.5: with a = 1 the deep (L = 8) networks fluctuate so much that
           * the 64-seed mean itself is off by about 2.5% (gelu; 1.25% with 256 seeds, so
           * it is sampling noise, not a kernel error: see docs/ANALYTIC.md) */
          cfg[v].residual.alpha = v % 2 ? 1.0 : a_const;
          /* the same weights under another activation and block scale */
          M.cfg = &cfg[v];
          M.activation = cfg[v].model.activation;
          for (int l = 1; l <= M.L; ++l) M.alpha[l - 1] = ntk_config_alpha(&cfg[v], l);
          ntk_dmat T, nngp, tinf;
          OK(ntk_dmat_create(&g, NPTS, NPTS, &T));
          OK(ntk_ntk_compute(&M, &X, NULL, NTK_METHOD_STRUCTURED, 64, &T, NULL));
          accumulate(&T, emp[v], 1.0 / seeds);
          ntk_dmat_free(&T);
          /* Theta_inf depends on the seed only through the exact Fourier kernel */
          if (fourier || s == 0) {
            OK(ntk_analytic_compute(&cfg[v], &g, &X, NTK_NETWORK_EVAL, NULL, &nngp, &tinf, NULL));
            accumulate(&tinf, inf[v], fourier ? 1.0 / seeds : 1.0);
            ntk_dmat_free(&nngp);
            ntk_dmat_free(&tinf);
          }
        }
        M.cfg = &base;
        ntk_model_free(&M);
      }
      if (rank_ == 0)
        for (int v = 0; v < NVAR; ++v) {
          double diag = 0.0, maxdiff = 0.0;
          for (int i = 0; i < NPTS; ++i) diag += inf[v][i * NPTS + i] / NPTS;
          for (int e = 0; e < NPTS * NPTS; ++e) maxdiff = fmax(maxdiff, fabs(emp[v][e] - inf[v][e]));
          double rel = maxdiff / diag;
          worst = fmax(worst, rel);
          int ok = rel < 0.02;
          ok ? ++passed : ++failed;
          printf("%s %-4s %-14s L=%d fourier=%-3s: max |mean Theta - Theta_inf| / mean diag = %.4f\n",
                 ok ? "ok  " : "FAIL", act_names[v / 2], v % 2 ? "inv_sqrt_depth" : "constant",
                 depths[di], fourier ? "yes" : "no", rel);
          fflush(stdout);
        }
    }
  }
  MPI_Bcast(&failed, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (rank_ == 0) printf("worst %.4f (tolerance 0.02)\n%d passed, %d failed\n", worst, passed, failed);
  ntk_dmat_free(&X);
  ntk_grid_free(&g);
  MPI_Finalize();
  return failed ? 1 : 0;
}
