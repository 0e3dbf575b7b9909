/* What the benchmarks share: their network and inputs, the process CPU clock and OpenBLAS
 * DGEMM's rate measured on every rank at once, the yardstick each benchmark's rate is
 * compared with in the same run. */
#ifndef NTK_BENCH_COMMON_H
#define NTK_BENCH_COMMON_H
#include <mpi.h>
#include <stdlib.h>
#include <time.h>

#include "ntk_config.h"
#include "ntk_rng.h"
#include "ntk_scalapack.h"

/* The benchmarked NTK-ECRN: relu, 64 Fourier features, width n, depth L, block nb. */
static inline void bench_config(ntk_config *cfg, int n, int L, int nb) {
  ntk_config_defaults(cfg);
  cfg->model.width = n;
  cfg->model.depth = L;
  cfg->model.activation = NTK_ACT_RELU;
  cfg->fourier.features = 64;
  cfg->grid.block_size = nb;
}

/* The inputs, N(0,1) entries (ntk_dmat_fill). */
static inline double bench_xval(int i, int j, void *ctx) {
  (void)ctx;
  return ntk_rng_normal(3, NTK_STREAM_USER, (uint64_t)i, (uint64_t)j, 0);
}

/* CPU time of this process: on a shared machine it excludes the time other jobs hold the
 * core, so CPU-time rates compare a benchmark and DGEMM fairly when wall-clock rates cannot. */
static inline double bench_cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* DGEMM rate (s^3, best of 3) of one rank, all ranks running at once (they share the node as
 * the benchmark did); *cpu_rate the same by CPU time. */
static inline double bench_dgemm_rate(MPI_Comm comm, int s, double *cpu_rate) {
  double *a = malloc(sizeof(double) * s * s), *b = malloc(sizeof(double) * s * s),
         *c = calloc((size_t)s * s, sizeof(double));
  for (long i = 0; i < (long)s * s; ++i) { a[i] = 1.0 / (1 + i % 7); b[i] = 1.0 / (1 + i % 5); }
  const double one = 1.0, zero = 0.0;
  double best = 0.0;
  *cpu_rate = 0.0;
  for (int r = 0; r < 3; ++r) {
    MPI_Barrier(comm);
    double t = MPI_Wtime(), tc = bench_cpu_seconds();
    dgemm_("N", "N", &s, &s, &s, &one, a, &s, b, &s, &zero, c, &s);
    t = MPI_Wtime() - t;
    tc = bench_cpu_seconds() - tc;
    double rate = 2.0 * s * s * (double)s / t;
    if (rate > best) best = rate;
    if (2.0 * s * s * (double)s / tc > *cpu_rate) *cpu_rate = 2.0 * s * s * (double)s / tc;
  }
  free(a); free(b); free(c);
  return best;
}

#endif
