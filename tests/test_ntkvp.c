/* The matrix-free product Theta v (ntk_ntkvp) against the dense kernel the structured path
 * assembles (ntk_ntk_for_config) times v, and its trace and per-group traces against the
 * dense kernel's: for relu, tanh and gelu, every ntk.network (eval, mask, mask_average),
 * trainable and fixed Fourier features, without projection, without skip connections, raw
 * inputs, k = 1 and k = 3; and the gathered A^T B product the operator relies on.  MPI test on the grid given by argv (rows cols block): every rank
 * runs every case, the errors are reduced to all ranks.
 *
 * Tolerance 1e-12 on ||Theta v - y|| / (||Theta||_F ||v||): both sides are the same sums
 * in float64 in a different order (the dense path: Gram matrices and Hadamard products; the
 * product: two GEMM chains), so they differ by rounding, about eps (n + N) ~ 1e-14 here
 * (measured: below 1e-15); any missing or wrong term (a bias, a mask, one output's weight)
 * changes the product by far more than 1e-6 of its scale. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_error.h"
#include "ntk_grid.h"
#include "ntk_model.h"
#include "ntk_ntk.h"
#include "ntk_ntkvp.h"
#include "ntk_rng.h"
#include "ntk_test_expect.h"

#define TOL 1e-12

static double worst_apply, worst_trace;

static double vdata(int i, int j, void *ctx) {
  return ntk_rng_normal(9, NTK_STREAM_USER, (uint64_t)i, (uint64_t)j, (uint64_t)*(int *)ctx);
}

/* test_ntk's network, wider, with the kernel's settings */
static void vp_config(ntk_config *c) {
  base_config(c);
  c->model.width = 32;
  c->fourier.features = 8;
  c->depth.survival = 0.6;
  c->depth.schedule = NTK_SURVIVAL_UNIFORM;
  c->ntk.method = NTK_METHOD_STRUCTURED;
  c->ntk.network = NTK_NETWORK_EVAL;
  c->ntk.mask_samples = 3;
  c->ntk.chunk_mb = 0.01; /* gathered products in several panels */
}

/* One configuration: two products (the second reuses the first's states) and the traces. */
static void check_case(const char *name, const ntk_config *cfg, const ntk_grid *g, int k,
                       int borrow_eval) {
  const int N = 67, d = 3, L = cfg->model.depth, ng = NTK_NGROUPS(L);
  const long long step = 5;
  ntk_dmat X, T, v, y, yd;
  ntk_model M;
  OK(ntk_dmat_create(g, N, d, &X));
  ntk_dmat_fill(&X, xdata, NULL);
  OK(ntk_model_init(cfg, g, d, k, &M));
  OK(ntk_dmat_create(g, N, N, &T));
  double *gt_dense = calloc((size_t)ng, sizeof(double)), *gt = calloc((size_t)ng, sizeof(double));
  ntk_forward F = {0};
  if (borrow_eval) OK(ntk_model_forward(&M, &X, NULL, &F));
  OK(ntk_ntk_for_config(&M, &X, step, borrow_eval ? &F : NULL, &T, gt_dense));
  ntk_ntkvp *op;
  OK(ntk_ntkvp_create(&M, &X, step, borrow_eval ? &F : NULL, &op));
  OK(ntk_dmat_create(g, N, 1, &v));
  OK(ntk_dmat_create(g, N, 1, &y));
  OK(ntk_dmat_create(g, N, 1, &yd));
  const double tnorm = ntk_dmat_norm_fro(&T);
  for (int rep = 0; rep < 2; ++rep) {
    ntk_dmat_fill(&v, vdata, &rep);
    OK(ntk_ntkvp_apply(op, &v, &y));
    OK(ntk_dmat_gemm('N', 'N', 1.0, &T, &v, 0.0, &yd));
    const double err = ntk_dmat_diff_fro(&y, &yd) / (tnorm * ntk_dmat_norm_fro(&v));
    if (err > worst_apply) worst_apply = err;
    EXPECT(err < TOL && tnorm > 0, "%s k=%d product %d: |Theta v - y| / |Theta||v| = %.3e", name, k, rep,
           err);
  }
  double tr;
  OK(ntk_ntkvp_trace(op, &tr, gt));
  const double trd = ntk_dmat_trace(&T);
  double e = fabs(tr - trd) / trd;
  for (int q = 0; q < ng; ++q) {
    const double eq = fabs(gt[q] - gt_dense[q]) / trd;
    if (eq > e) e = eq;
  }
  if (e > worst_trace) worst_trace = e;
  EXPECT(e < TOL, "%s k=%d: trace %.17g vs dense %.17g, worst group error %.3e of the trace", name, k,
         tr, trd, e);
  double fl;
  OK(ntk_ntkvp_flops(op, &fl));
  EXPECT(fl > 0, "%s: flops %g", name, fl);
  ntk_ntkvp_destroy(&op);
  EXPECT(op == NULL, "%s: destroy leaves the handle", name);
  if (borrow_eval) ntk_forward_free(&F);
  free(gt);
  free(gt_dense);
  ntk_dmat_free(&yd);
  ntk_dmat_free(&y);
  ntk_dmat_free(&v);
  ntk_dmat_free(&T);
  ntk_model_free(&M);
  ntk_dmat_free(&X);
}

/* The weight-gradient product it relies on, ntk_dmat_gemm_atb_gathered, against PDGEMM 'T','N'
 * for shapes that leave partial blocks, with beta != 0, in tiny and in one chunk of rows. */
static void check_atb(const ntk_grid *g) {
  static const int shapes[][3] = {{67, 13, 9}, {50, 5, 21}, {3, 7, 7}};
  for (int t = 0; t < 3; ++t)
    for (int pass = 0; pass < 2; ++pass) {
      const int K = shapes[t][0], m1 = shapes[t][1], m2 = shapes[t][2];
      ntk_dmat A, B, C, R;
      int s1 = 1, s2 = 2, s3 = 3;
      OK(ntk_dmat_create(g, K, m1, &A));
      OK(ntk_dmat_create(g, K, m2, &B));
      OK(ntk_dmat_create(g, m1, m2, &C));
      OK(ntk_dmat_create(g, m1, m2, &R));
      ntk_dmat_fill(&A, vdata, &s1);
      ntk_dmat_fill(&B, vdata, &s2);
      ntk_dmat_fill(&C, vdata, &s3);
      ntk_dmat_fill(&R, vdata, &s3);
      OK(ntk_dmat_gemm_atb_gathered(0.7, &A, &B, -0.3, &C, pass ? 64.0 : 1e-6));
      OK(ntk_dmat_gemm('T', 'N', 0.7, &A, &B, -0.3, &R));
      const double e = ntk_dmat_diff_fro(&C, &R) / ntk_dmat_norm_fro(&R);
      EXPECT(e < 1e-14, "gemm_atb %d x %d x %d (panel %s): relative error %.3e", m1, m2, K,
             pass ? "64 MiB" : "one block of rows", e);
      ntk_dmat_free(&A);
      ntk_dmat_free(&B);
      ntk_dmat_free(&C);
      ntk_dmat_free(&R);
    }
}

/* A vector of another length is refused, not read out of bounds, and so is y aliasing v. */
static void check_bad_vector(const ntk_grid *g) {
  ntk_config cfg;
  vp_config(&cfg);
  ntk_dmat X, v, y;
  ntk_model M;
  OK(ntk_dmat_create(g, 20, 3, &X));
  ntk_dmat_fill(&X, xdata, NULL);
  OK(ntk_model_init(&cfg, g, 3, 1, &M));
  ntk_ntkvp *op;
  OK(ntk_ntkvp_create(&M, &X, 0, NULL, &op));
  OK(ntk_dmat_create(g, 21, 1, &v));
  OK(ntk_dmat_create(g, 20, 1, &y));
  EXPECT(ntk_ntkvp_apply(op, &v, &y) == NTK_ERR_INTERNAL, "a 21-vector for 20 samples is refused");
  EXPECT(ntk_ntkvp_apply(op, &y, &y) == NTK_ERR_INTERNAL, "y = Theta y in place is refused");
  ntk_ntkvp_destroy(&op);
  ntk_dmat_free(&v);
  ntk_dmat_free(&y);
  ntk_model_free(&M);
  ntk_dmat_free(&X);
}

int main(int argc, char **argv) {
  ntk_grid g;
  test_start(&argc, &argv, 4, &g);
  static const struct { const char *name; int act; } acts[] = {
      {"relu", NTK_ACT_RELU}, {"tanh", NTK_ACT_TANH}, {"gelu", NTK_ACT_GELU}};
  static const struct { const char *name; int network; } nets[] = {
      {"eval", NTK_NETWORK_EVAL}, {"mask", NTK_NETWORK_MASK}, {"mask_average", NTK_NETWORK_MASK_AVERAGE}};
  ntk_config cfg;
  char name[96];
  for (int a = 0; a < 3; ++a)
    for (int w = 0; w < 3; ++w) {
      vp_config(&cfg);
      cfg.model.activation = acts[a].act;
      cfg.ntk.network = nets[w].network;
      snprintf(name, sizeof name, "%s %s trainable-Fourier", acts[a].name, nets[w].name);
      check_case(name, &cfg, &g, a == 1 ? 3 : 1, 0);
    }
  /* k = 3 for every network once more, on relu */
  for (int w = 0; w < 3; ++w) {
    vp_config(&cfg);
    cfg.model.activation = NTK_ACT_RELU;
    cfg.ntk.network = nets[w].network;
    snprintf(name, sizeof name, "relu %s", nets[w].name);
    check_case(name, &cfg, &g, 3, 0);
  }
  vp_config(&cfg);
  check_case("tanh eval, forward states borrowed", &cfg, &g, 1, 1);
  vp_config(&cfg);
  cfg.fourier.trainable = 0;
  check_case("gelu fixed Fourier", &cfg, &g, 1, 0);
  vp_config(&cfg);
  cfg.fourier.project = 0;
  cfg.model.width = 16;
  check_case("unprojected trainable Fourier", &cfg, &g, 3, 0);
  vp_config(&cfg);
  cfg.fourier.project = 0;
  cfg.fourier.trainable = 0;
  cfg.model.width = 16;
  check_case("unprojected fixed Fourier", &cfg, &g, 1, 0);
  vp_config(&cfg);
  cfg.residual.skip = 0;
  cfg.ntk.network = NTK_NETWORK_MASK;
  check_case("plain MLP, mask", &cfg, &g, 1, 0);
  vp_config(&cfg);
  cfg.fourier.features = 0;
  cfg.fourier.trainable = 0;
  check_case("raw inputs", &cfg, &g, 1, 0);
  check_bad_vector(&g);
  check_atb(&g);

  MPI_Allreduce(MPI_IN_PLACE, &worst_apply, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &worst_trace, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  if (rank_ == 0)
    printf("ntkvp on %dx%d, block %d: %d checks, %d failures; worst product error %.2e, worst trace "
           "error %.2e\n",
           g.nprow, g.npcol, g.nb, checks, failures, worst_apply, worst_trace);
  ntk_grid_free(&g);
  MPI_Finalize();
  return failures ? 1 : 0;
}
