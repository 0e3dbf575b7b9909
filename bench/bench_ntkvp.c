/* Matrix-free NTK product benchmark: the flop rate of one Theta v (ntk_ntkvp_apply, best of
 * 3) per rank against OpenBLAS DGEMM's rate measured in the same run on the same ranks (just
 * before each product, so that on a shared machine each pair sees the same load), and
 * the time of the operator's setup (the forward pass) and of its exact trace.
 *   mpirun -np P bench_ntkvp [N] [n] [L] [block] [k] [rows cols]
 *   (defaults 16384 1024 4 64 1, grid auto) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_common.h"
#include "ntk_config.h"
#include "ntk_error.h"
#include "ntk_grid.h"
#include "ntk_log.h"
#include "ntk_memory.h"
#include "ntk_model.h"
#include "ntk_ntkvp.h"
#include "ntk_rng.h"

static double vval(int i, int j, void *ctx) {
  return ntk_rng_normal(4, NTK_STREAM_USER, (uint64_t)i, (uint64_t)j, (uint64_t)*(int *)ctx);
}

static void die(void) {
  fprintf(stderr, "%s\n", ntk_err_message());
  MPI_Abort(MPI_COMM_WORLD, 1);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int N = argc > 1 ? atoi(argv[1]) : 16384, n = argc > 2 ? atoi(argv[2]) : 1024;
  int L = argc > 3 ? atoi(argv[3]) : 4, nb = argc > 4 ? atoi(argv[4]) : 64;
  int k = argc > 5 ? atoi(argv[5]) : 1;
  int rows = argc > 7 ? atoi(argv[6]) : 0, cols = argc > 7 ? atoi(argv[7]) : 0;
  ntk_log_init(MPI_COMM_WORLD, 1);
  ntk_memory_init(); /* the allocator setting ntkspec run uses */
  ntk_config cfg;
  bench_config(&cfg, n, L, nb);
  ntk_grid g;
  if (ntk_grid_create(MPI_COMM_WORLD, rows, cols, nb, &g)) die();
  const int d = 16;
  ntk_dmat X, v, y;
  ntk_model M;
  if (ntk_dmat_create(&g, N, d, &X) || ntk_model_init(&cfg, &g, d, k, &M) ||
      ntk_dmat_create(&g, N, 1, &v) || ntk_dmat_create(&g, N, 1, &y))
    die();
  ntk_dmat_fill(&X, bench_xval, NULL);
  ntk_ntkvp *op;
  MPI_Barrier(MPI_COMM_WORLD);
  double t_create = MPI_Wtime();
  if (ntk_ntkvp_create(&M, &X, 0, NULL, &op)) die();
  t_create = MPI_Wtime() - t_create;
  double best = 1e30, best_cpu = 1e30, flops;
  ntk_ntkvp_flops(op, &flops);
  /* DGEMM just before each product: on a shared machine each pair sees the same load */
  double dg_best = 0.0, dg_cpu_best = 0.0, ratios[3];
  for (int r = 0; r < 3; ++r) {
    double dg_cpu, dg = bench_dgemm_rate(MPI_COMM_WORLD, 1536, &dg_cpu);
    MPI_Allreduce(MPI_IN_PLACE, &dg, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &dg_cpu, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
    if (dg > dg_best) dg_best = dg;
    if (dg_cpu > dg_cpu_best) dg_cpu_best = dg_cpu;
    ntk_dmat_fill(&v, vval, &r);
    MPI_Barrier(MPI_COMM_WORLD);
    double t = MPI_Wtime(), tc = bench_cpu_seconds();
    if (ntk_ntkvp_apply(op, &v, &y)) die();
    tc = bench_cpu_seconds() - tc;
    MPI_Barrier(MPI_COMM_WORLD);
    t = MPI_Wtime() - t;
    if (t < best) best = t;
    double cmax;
    MPI_Allreduce(&tc, &cmax, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (cmax < best_cpu) best_cpu = cmax;
    ratios[r] = flops / t / g.size / dg;
    ntk_log_raw("  round %d: DGEMM %.2f GFLOP/s per rank, then Theta v %.3f s = %.2f GFLOP/s per rank: %.1f%%\n",
                r, dg / 1e9, t, flops / t / g.size / 1e9, 100.0 * ratios[r]);
  }
  double t_trace = MPI_Wtime(), tr;
  if (ntk_ntkvp_trace(op, &tr, NULL)) die();
  t_trace = MPI_Wtime() - t_trace;
  double peak = ntk_peak_rss_bytes(), peak_max;
  MPI_Allreduce(&peak, &peak_max, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  ntk_ntkvp_destroy(&op);
  const double rate = flops / best / g.size, cpu_rate = flops / best_cpu / g.size; /* per rank */
  ntk_log_raw("matrix-free NTK product: N=%d n=%d L=%d k=%d ranks=%d grid=%dx%d block=%d\n", N, n, L,
              k, g.size, g.nprow, g.npcol, nb);
  ntk_log_raw("  setup (forward pass) %.3f s; trace %.3f s (tr = %.6e)\n", t_create, t_trace, tr);
  ntk_log_raw("  one Theta v: %.3f s, %.3e flop, %.2f GFLOP/s per rank\n", best, flops, rate / 1e9);
  ntk_log_raw("  OpenBLAS DGEMM (1536^3, same ranks, same run, best): %.2f GFLOP/s per rank\n", dg_best / 1e9);
  ntk_log_raw("  ratio Theta v / DGEMM: best %.1f%%, rounds %.1f%% %.1f%% %.1f%% (wall clock)\n",
              100.0 * rate / dg_best, 100.0 * ratios[0], 100.0 * ratios[1], 100.0 * ratios[2]);
  ntk_log_raw("  by CPU time: Theta v %.2f, DGEMM %.2f GFLOP/s per rank, ratio %.1f%%\n", cpu_rate / 1e9,
              dg_cpu_best / 1e9, 100.0 * cpu_rate / dg_cpu_best);
  ntk_log_raw("  peak RSS (max over ranks) %.1f MiB\n", peak_max / 1048576.0);
  ntk_dmat_free(&y);
  ntk_dmat_free(&v);
  ntk_dmat_free(&X);
  ntk_model_free(&M);
  ntk_grid_free(&g);
  MPI_Finalize();
  return 0;
}
