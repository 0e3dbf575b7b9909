/* Structured NTK assembly benchmark: flop rate of ntk_ntk_compute per rank against the
 * OpenBLAS DGEMM rate measured in the same run on the same ranks, and the peak resident
 * memory against the --dry-run estimate.
 *   mpirun -np P bench_ntk [N] [n] [L] [block] [rows cols]   (defaults 2048 2048 4 64, grid auto) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_config.h"
#include "ntk_error.h"
#include "ntk_grid.h"
#include "ntk_log.h"
#include "ntk_memory.h"
#include "ntk_model.h"
#include "ntk_ntk.h"
#include "ntk_rng.h"
#include "ntk_scalapack.h"
#include "ntk_timer.h"
#include "bench_common.h"

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int N = argc > 1 ? atoi(argv[1]) : 2048, n = argc > 2 ? atoi(argv[2]) : 2048;
  int L = argc > 3 ? atoi(argv[3]) : 4, nb = argc > 4 ? atoi(argv[4]) : 64;
  int rows = argc > 6 ? atoi(argv[5]) : 0, cols = argc > 6 ? atoi(argv[6]) : 0;
  ntk_log_init(MPI_COMM_WORLD, 1);
  ntk_memory_init(); /* the allocator setting ntkspec run uses */
  double baseline = ntk_current_rss_bytes();
  ntk_config cfg;
  bench_config(&cfg, n, L, nb);
  ntk_grid g;
  if (ntk_grid_create(MPI_COMM_WORLD, rows, cols, nb, &g)) MPI_Abort(MPI_COMM_WORLD, 1);
  const int d = 16;
  ntk_mem_estimate est;
  ntk_memory_estimate(&cfg, &g, N, 0, d, 1, baseline, &est);
  ntk_dmat X, T;
  ntk_model M;
  if (ntk_dmat_create(&g, N, d, &X) || ntk_model_init(&cfg, &g, d, 1, &M) ||
      ntk_dmat_create(&g, N, N, &T)) {
    fprintf(stderr, "%s\n", ntk_err_message());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  ntk_dmat_fill(&X, bench_xval, NULL);
  double best = 1e30, best_cpu = 1e30, flops = 0.0;
  for (int r = 0; r < 2; ++r) {
    ntk_timer_reset();
    MPI_Barrier(MPI_COMM_WORLD);
    double t = MPI_Wtime(), tc = bench_cpu_seconds();
    if (ntk_ntk_compute(&M, &X, NULL, NTK_METHOD_STRUCTURED, 64, &T, NULL)) MPI_Abort(MPI_COMM_WORLD, 1);
    tc = bench_cpu_seconds() - tc;
    MPI_Barrier(MPI_COMM_WORLD);
    t = MPI_Wtime() - t;
    if (t < best) best = t;
    if (tc < best_cpu) best_cpu = tc;
    flops = 0.0;
    for (int p = 0; p < NTK_PHASE_COUNT; ++p) flops += ntk_timer_flops(p);
  }
  double tot_flops;
  MPI_Allreduce(&flops, &tot_flops, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  double ntk_rate = tot_flops / best / g.size; /* per rank */
  double peak = ntk_peak_rss_bytes(), peak_max;
  MPI_Allreduce(&peak, &peak_max, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  double dg_cpu, dg = bench_dgemm_rate(MPI_COMM_WORLD, 1536, &dg_cpu), dg_min, dg_cpu_min, cpu_max;
  MPI_Allreduce(&dg, &dg_min, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&dg_cpu, &dg_cpu_min, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&best_cpu, &cpu_max, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  double ntk_cpu_rate = tot_flops / cpu_max / g.size;
  ntk_log_raw("structured NTK assembly: N=%d n=%d L=%d ranks=%d grid=%dx%d block=%d\n", N, n, L,
              g.size, g.nprow, g.npcol, nb);
  ntk_log_raw("  time %.3f s, %.3e flop, %.2f GFLOP/s per rank\n", best, tot_flops, ntk_rate / 1e9);
  ntk_log_raw("  OpenBLAS DGEMM (1536^3, same ranks, same run): %.2f GFLOP/s per rank\n", dg_min / 1e9);
  ntk_log_raw("  ratio NTK / DGEMM: %.1f%% (wall clock)\n", 100.0 * ntk_rate / dg_min);
  ntk_log_raw("  by CPU time: NTK %.2f, DGEMM %.2f GFLOP/s per rank, ratio %.1f%%\n", ntk_cpu_rate / 1e9,
              dg_cpu_min / 1e9, 100.0 * ntk_cpu_rate / dg_cpu_min);
  ntk_log_raw("  peak RSS (max over ranks) %.1f MiB; dry-run estimate %.1f MiB; ratio %.2f\n",
              peak_max / 1048576.0, est.peak / 1048576.0, peak_max / est.peak);
  ntk_timer_report(MPI_COMM_WORLD);
  ntk_dmat_free(&T);
  ntk_dmat_free(&X);
  ntk_model_free(&M);
  ntk_grid_free(&g);
  MPI_Finalize();
  return 0;
}
