/* Eigensolver benchmark: every back-end of the ntk_eig table (or the ones named) on the same
 * kernel matrix, all eigenpairs and the top K, with and without eigenvectors.
 *   mpirun -np P bench_eig N [K] [block] [solvers] [vectors] [repeats]
 *   defaults: N 2048, K 64, block 64, solvers pdsyevr,pdsyevd,elpa2, vectors 1, repeats 1
 * The matrix is a Gaussian kernel on N standard-normal points in R^8 (length scale sqrt(8))
 * plus 1e-3 I: a smooth, fast-decaying spectrum with many clustered small eigenvalues, as
 * an NTK has.  Times are the max over ranks of the best of `repeats`; the top eigenvalue of
 * every solver is compared with the first one's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_eig.h"
#include "ntk_error.h"
#include "ntk_grid.h"
#include "ntk_log.h"
#include "ntk_rng.h"

#define DIM 8
static double *points; /* N x DIM, replicated: cheap, and the benchmark is about the solve */

static double kernel(int i, int j, void *ctx) {
  (void)ctx;
  double r2 = 0.0;
  for (int a = 0; a < DIM; ++a) {
    double d = points[(size_t)i * DIM + a] - points[(size_t)j * DIM + a];
    r2 += d * d;
  }
  return exp(-r2 / (2.0 * DIM)) + (i == j ? 1e-3 : 0.0);
}

static double timed_solve(const char *name, const ntk_dmat *A, int K, int vectors, double *w) {
  ntk_dmat Z;
  memset(&Z, 0, sizeof Z);
  MPI_Barrier(A->g->comm);
  double t = MPI_Wtime();
  if (ntk_eig_solve(name, A, K, vectors, w, vectors ? &Z : NULL)) {
    ntk_log_error_line(ntk_err_message());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  t = MPI_Wtime() - t;
  ntk_dmat_free(&Z);
  double tmax;
  MPI_Allreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, A->g->comm);
  return tmax;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  const int N = argc > 1 ? atoi(argv[1]) : 2048, Ktop = argc > 2 ? atoi(argv[2]) : 64;
  const int nb = argc > 3 ? atoi(argv[3]) : 64;
  char solvers[256] = "pdsyevr,pdsyevd,elpa2";
  if (argc > 4) snprintf(solvers, sizeof solvers, "%s", argv[4]);
  const int vectors = argc > 5 ? atoi(argv[5]) : 1, reps = argc > 6 ? atoi(argv[6]) : 1;
  ntk_log_init(MPI_COMM_WORLD, 1);
  ntk_grid g;
  if (N < 1 || Ktop < 0 || Ktop > N || ntk_grid_create(MPI_COMM_WORLD, 0, 0, nb, &g)) {
    if (argc > 0) fprintf(stderr, "usage: bench_eig N [K] [block] [solvers] [vectors] [repeats]\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  points = malloc(sizeof(double) * (size_t)N * DIM);
  for (int i = 0; i < N; ++i)
    for (int a = 0; a < DIM; ++a)
      points[(size_t)i * DIM + a] = ntk_rng_normal(11, NTK_STREAM_DATA_X, (uint64_t)i, (uint64_t)a, 0);
  ntk_dmat A;
  if (ntk_dmat_create(&g, N, N, &A)) MPI_Abort(MPI_COMM_WORLD, 1);
  ntk_dmat_fill(&A, kernel, NULL);
  double *w = malloc(sizeof(double) * (size_t)N);
  double ref = NAN;
  ntk_log_raw("# eigensolvers: N=%d ranks=%d grid=%dx%d block=%d vectors=%d repeats=%d\n", N, g.size,
              g.nprow, g.npcol, nb, vectors, reps);
  ntk_log_raw("%-8s %6s %6s %5s %10s %12s\n", "solver", "N", "K", "vec", "time[s]", "rel.diff l1");
  const int ks[2] = {0, Ktop};
  for (int kk = 0; kk < (Ktop > 0 && Ktop < N ? 2 : 1); ++kk) {
    char list[256];
    snprintf(list, sizeof list, "%s", solvers);
    for (char *save = NULL, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
      const ntk_eigensolver *s = ntk_eig_find(name);
      if (!s) {
        ntk_log_raw("%-8s unknown\n", name);
        continue;
      }
      const int K = ks[kk] > 0 ? ks[kk] : N;
      double best = 1e30;
      for (int r = 0; r < reps; ++r) {
        double t = timed_solve(name, &A, K, vectors, w);
        if (t < best) best = t;
      }
      if (isnan(ref)) ref = w[0];
      ntk_log_raw("%-8s %6d %6d %5d %10.3f %12.2e\n", name, N, K, vectors, best, fabs(w[0] - ref) / ref);
    }
  }
  free(w);
  free(points);
  ntk_dmat_free(&A);
  ntk_grid_free(&g);
  MPI_Finalize();
  return 0;
}
