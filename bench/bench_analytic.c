/* Throughput of the analytic (infinite-width) kernel: N x N kernel entries per second per
 * core of the elementwise recursion, for the closed forms (relu, erf, gelu; raw inputs),
 * the activations without one (tanh, softplus, silu, sigmoid) with Fourier features, where
 * every Sigma(x,x) is the same and each layer's dual is a Chebyshev interpolant in rho,
 * and tanh on raw inputs (direct error-controlled quadrature, NQ samples), plus the
 * input-kernel time.
 * Usage: mpirun -np P bench_analytic [--n N] [--nq NQ] [--depth L] [--order Q] [--reps R]
 *        [--only-relu 1]   (--order Q > 0: the fixed Gauss-Hermite rule instead)
 * "entries" counts all N^2 output entries; the recursion evaluates the N(N+1)/2 of the
 * lower triangle and mirrors them, so "evaluated" is about half. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ntk_analytic.h"
#include "ntk_config.h"
#include "ntk_error.h"
#include "ntk_grid.h"
#include "ntk_log.h"

static double fill_x(int i, int j, void *ctx) {
  (void)ctx;
  return sin(0.37 * i + 1.3 * j + 0.011 * i * j);
}

/* CPU time of this process: on a shared machine wall time overstates the cost */
static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int measure(const ntk_config *cfg, const ntk_grid *g, int N, int reps, const char *label) {
  ntk_analytic_info info = {0};
  ntk_dmat X, K, nngp, ntk;
  double *diag = malloc(sizeof(double) * N), *mean = malloc(sizeof(double) * N);
  NTK_CHECK(ntk_dmat_create(g, N, 4, &X));
  ntk_dmat_fill(&X, fill_x, NULL);
  MPI_Barrier(g->comm);
  double t0 = MPI_Wtime();
  NTK_CHECK(ntk_analytic_input_kernel(cfg, g, &X, &K, diag, mean));
  MPI_Barrier(g->comm);
  double t_in = MPI_Wtime() - t0, best = 1e30, best_cpu = 1e30;
  for (int r = 0; r < reps; ++r) {
    MPI_Barrier(g->comm);
    t0 = MPI_Wtime();
    double c0 = cpu_seconds();
    NTK_CHECK(ntk_analytic_from_input(cfg, &K, diag, mean, NTK_NETWORK_EVAL, NULL, &nngp, &ntk, &info));
    double c = cpu_seconds() - c0, cmax;
    MPI_Allreduce(&c, &cmax, 1, MPI_DOUBLE, MPI_MAX, g->comm);
    MPI_Barrier(g->comm);
    double t = MPI_Wtime() - t0;
    if (t < best) best = t;
    if (cmax < best_cpu) best_cpu = cmax;
    ntk_dmat_free(&nngp);
    ntk_dmat_free(&ntk);
  }
  const double P = g->size, L = cfg->model.depth;
  const double out = (double)N * N, evaluated = 0.5 * (double)N * (N + 1);
  ntk_log_raw("%-27s N=%5d L=%2.0f P=%2.0f input %.3fs | recursion wall %.3fs: %.3g "
              "entries/s/core | cpu %.3fs: %.3g entries/s/core, %.3g evaluated/s, %.3g "
              "layer-evals/s; dual error %.1e\n",
              label, N, L, P, t_in, best, out / best / P, best_cpu, out / best_cpu / P,
              evaluated / best_cpu / P, evaluated * L / best_cpu / P, info.dual_error);
  ntk_dmat_free(&K);
  ntk_dmat_free(&X);
  free(diag);
  free(mean);
  return NTK_OK;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  ntk_log_init(MPI_COMM_WORLD, 1);
  int N = 3000, NQ = 60, L = 8, order = 0, reps = 3, only_relu = 0;
  for (int a = 1; a + 1 < argc; a += 2) {
    if (!strcmp(argv[a], "--n")) N = atoi(argv[a + 1]);
    else if (!strcmp(argv[a], "--nq")) NQ = atoi(argv[a + 1]);
    else if (!strcmp(argv[a], "--depth")) L = atoi(argv[a + 1]);
    else if (!strcmp(argv[a], "--order")) order = atoi(argv[a + 1]);
    else if (!strcmp(argv[a], "--reps")) reps = atoi(argv[a + 1]);
    else if (!strcmp(argv[a], "--only-relu")) only_relu = atoi(argv[a + 1]);
  }
  ntk_grid g;
  int rc = ntk_grid_create(MPI_COMM_WORLD, 0, 0, 64, &g);
  ntk_config cfg;
  ntk_config_defaults(&cfg);
  cfg.model.depth = L;
  cfg.fourier.features = 0;
  cfg.analytic.quadrature_order = order;
  cfg.model.activation = NTK_ACT_RELU;
  if (!rc) rc = measure(&cfg, &g, N, reps, "relu (closed form)");
  if (only_relu) goto done;
  cfg.model.activation = NTK_ACT_ERF;
  if (!rc) rc = measure(&cfg, &g, N, reps, "erf (closed form)");
  cfg.model.activation = NTK_ACT_GELU;
  if (!rc) rc = measure(&cfg, &g, N, reps, "gelu (closed form)");
  char label[64];
  const char *how = order > 0 ? "Gauss-Hermite" : "interpolated";
  static const int quad_acts[4] = {NTK_ACT_TANH, NTK_ACT_SOFTPLUS, NTK_ACT_SILU, NTK_ACT_SIGMOID};
  cfg.fourier.features = 64; /* the default: Sigma(x,x) is the same for every sample */
  for (int k = 0; k < 4 && !rc; ++k) {
    cfg.model.activation = quad_acts[k];
    snprintf(label, sizeof label, "%s (fourier, %s)",
             ntk_config_enum_name("model.activation", quad_acts[k]), how);
    rc = measure(&cfg, &g, N, reps, label);
  }
  cfg.fourier.features = 0;
  cfg.model.activation = NTK_ACT_TANH;
  snprintf(label, sizeof label, "tanh (raw inputs, %s)", order > 0 ? "Gauss-Hermite" : "direct");
  if (!rc) rc = measure(&cfg, &g, NQ, 1, label);
done:
  if (rc) ntk_log_error_line(ntk_err_message());
  ntk_grid_free(&g);
  MPI_Finalize();
  return rc ? ntk_err_exit_status(rc) : 0;
}
