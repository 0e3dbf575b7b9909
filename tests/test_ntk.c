/* Model and empirical NTK: back-propagated gradients against central finite differences
 * for every parameter group and activation (with masks, trainable Fourier features, the
 * plain-MLP and unprojected variants), and the structured NTK against the Jacobian
 * reference.  MPI test: every rank runs the collective parts, rank 0 compares. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_error.h"
#include "ntk_grid.h"
#include "ntk_model.h"
#include "ntk_ntk.h"
#include "ntk_rng.h"
#include "ntk_test_expect.h"
#include "ntk_scalapack.h"

/* Jacobian of output c on all samples, one column per parameter, gathered on rank 0. */
typedef struct {
  double *J;    /* N x P row-major on rank 0 */
  int N, P, k, c;
  int offset[16];  /* column offset of each group */
} jac_ctx;

static int record_jacobian(int group, const ntk_dmat *gs, const ntk_dmat *a, double ws, double bs,
                           void *vctx) {
  jac_ctx *J = vctx;
  double *G = NULL, *Af = NULL;
  NTK_CHECK(ntk_dmat_gather(gs, 0, &G));
  NTK_CHECK(ntk_dmat_gather(a, 0, &Af));
  if (rank_ == 0) {
    int fo = gs->n, fi = a->n, off = J->offset[group];
    for (int s = 0; s < J->N; ++s) {
      for (int i = 0; i < fo; ++i) {
        /* the output group's bias and weights only move output c: the seed has zero
         * columns elsewhere, so the general formula already gives zeros there */
        for (int j = 0; j < fi; ++j)
          J->J[(size_t)s * J->P + off + i * fi + j] = ws * G[s * fo + i] * Af[s * fi + j];
        if (bs != 0.0) J->J[(size_t)s * J->P + off + fo * fi + i] = bs * G[s * fo + i];
      }
    }
  }
  free(G);
  free(Af);
  return NTK_OK;
}

/* The parameter behind column q, as a pointer to a distributed entry or a replicated one. */
typedef struct {
  ntk_dmat *mat; int i, j;   /* distributed entry */
  double *vec;               /* replicated bias entry (same on all ranks) */
} param_ref;

static param_ref param_at(ntk_model *M, int group, int q) {
  param_ref r = {0};
  int L = M->L, n = M->n;
  if (group == NTK_GROUP_FOURIER) { r.mat = &M->G; r.i = q / M->d; r.j = q % M->d; return r; }
  ntk_dmat *W; double *b; int fo, fi;
  if (group == NTK_GROUP_INPUT) { W = &M->W0; b = M->b0; fo = n; fi = M->p; }
  else if (group == NTK_GROUP_OUTPUT(L)) { W = &M->V; b = M->b_out; fo = M->k; fi = n; }
  else { int l = group - 1; W = &M->W[l - 1]; b = M->b + (size_t)(l - 1) * n; fo = n; fi = n; }
  if (q < fo * fi) { r.mat = W; r.i = q / fi; r.j = q % fi; }
  else r.vec = b + (q - fo * fi);
  return r;
}

static void perturb(param_ref r, double delta, double *saved, int restore) {
  if (r.vec) { if (restore) *r.vec = *saved; else { *saved = *r.vec; *r.vec += delta; } return; }
  int il, jl;
  if (ntk_dmat_row_g2l(r.mat, r.i, &il) && ntk_dmat_col_g2l(r.mat, r.j, &jl)) {
    double *e = &r.mat->a[il + (size_t)jl * r.mat->lld];
    if (restore) *e = *saved; else { *saved = *e; *e += delta; }
  }
}

static double *outputs(ntk_model *M, const ntk_dmat *X, const double *xi) {
  ntk_forward F;
  double *f = NULL;
  OK(ntk_model_forward(M, X, xi, &F));
  OK(ntk_dmat_gather(&F.f, 0, &f));
  ntk_forward_free(&F);
  return f;
}

static void gradient_check(const char *name, ntk_config *cfg, const ntk_grid *g, const double *xi) {
  const int N = 5, d = 3, k = 2;
  ntk_dmat X;
  OK(ntk_dmat_create(g, N, d, &X));
  ntk_dmat_fill(&X, xdata, NULL);
  ntk_model M;
  OK(ntk_model_init(cfg, g, d, k, &M));
  jac_ctx J = {.N = N, .k = k};
  int ng = NTK_NGROUPS(M.L), sizes[16] = {0};
  sizes[NTK_GROUP_FOURIER] = M.fourier_trainable ? M.m * d : 0;
  sizes[NTK_GROUP_INPUT] = M.project ? M.n * M.p + M.n : 0;
  for (int l = 1; l <= M.L; ++l) sizes[NTK_GROUP_BLOCK(l)] = M.n * M.n + M.n;
  sizes[NTK_GROUP_OUTPUT(M.L)] = k * M.n + k;
  for (int q = 0; q < ng; ++q) { J.offset[q] = J.P; J.P += sizes[q]; }
  EXPECT(J.P == ntk_model_num_params(&M), "%s: parameter count %d vs %lld", name, J.P, ntk_model_num_params(&M));
  J.J = calloc((size_t)N * J.P, sizeof(double));
  ntk_forward F;
  OK(ntk_model_forward(&M, &X, xi, &F));
  ntk_dmat S;
  OK(ntk_dmat_create(g, N, k, &S));
  const double h = 1e-5;
  for (int c = 0; c < k; ++c) {
    for (int jl = 0; jl < S.nloc; ++jl)
      for (int il = 0; il < S.mloc; ++il)
        S.a[il + (size_t)jl * S.lld] = ntk_dmat_col_l2g(&S, jl) == c ? 1.0 : 0.0;
    memset(J.J, 0, (size_t)N * J.P * sizeof(double));
    OK(ntk_model_backward(&M, &X, &F, &S, record_jacobian, &J));
    for (int grp = 0; grp < ng; ++grp) {
      double num = 0.0, den = 0.0;
      for (int q = 0; q < sizes[grp]; ++q) {
        param_ref r = param_at(&M, grp, q);
        double saved = 0.0;
        perturb(r, h, &saved, 0);
        double *fp = outputs(&M, &X, xi);
        perturb(r, 0, &saved, 1);
        perturb(r, -h, &saved, 0);
        double *fm = outputs(&M, &X, xi);
        perturb(r, 0, &saved, 1);
        if (rank_ == 0)
          for (int s = 0; s < N; ++s) {
            double fd = (fp[s * k + c] - fm[s * k + c]) / (2 * h);
            double ad = J.J[(size_t)s * J.P + J.offset[grp] + q];
            num += (fd - ad) * (fd - ad);
            den += ad * ad;
          }
        free(fp);
        free(fm);
      }
      if (rank_ == 0 && sizes[grp] > 0)
        /* a block masked out has no gradient: both sides must be exactly zero */
        EXPECT(den > 0 ? sqrt(num / den) < 1e-6 : num == 0.0, "%s: output %d group %d: relative error %.3e (|J| %.3e)",
               name, c, grp, den > 0 ? sqrt(num / den) : -1.0, sqrt(den));
    }
  }
  free(J.J);
  ntk_dmat_free(&S);
  ntk_forward_free(&F);
  ntk_model_free(&M);
  ntk_dmat_free(&X);
}

static void min_max_eig(const double *A, int n, double *lmin, double *lmax) {
  double *B = malloc(sizeof(double) * n * n), *w = malloc(sizeof(double) * n), q;
  memcpy(B, A, sizeof(double) * n * n);
  int lw = -1, liw = -1, iq, info;
  dsyevd_("N", "L", &n, B, &n, w, &q, &lw, &iq, &liw, &info);
  lw = (int)q; liw = iq;
  double *work = malloc(sizeof(double) * lw); int *iw = malloc(sizeof(int) * liw);
  dsyevd_("N", "L", &n, B, &n, w, work, &lw, iw, &liw, &info);
  *lmin = w[0]; *lmax = w[n - 1];
  free(B); free(w); free(work); free(iw);
}

static void methods_agree(const char *name, ntk_config *cfg, const ntk_grid *g, const double *xi, int k) {
  const int N = 11, d = 3;
  ntk_dmat X, T1, T2;
  OK(ntk_dmat_create(g, N, d, &X));
  ntk_dmat_fill(&X, xdata, NULL);
  ntk_model M;
  OK(ntk_model_init(cfg, g, d, k, &M));
  OK(ntk_dmat_create(g, N, N, &T1));
  OK(ntk_dmat_create(g, N, N, &T2));
  double tr1[16], tr2[16];
  /* a tiny panel bound makes the structured Gram run over several panels */
  OK(ntk_ntk_compute(&M, &X, xi, NTK_METHOD_STRUCTURED, 1e-6, &T1, tr1));
  OK(ntk_ntk_compute(&M, &X, xi, NTK_METHOD_JACOBIAN, 0.002, &T2, tr2));
  double rel = ntk_dmat_diff_fro(&T1, &T2) / ntk_dmat_norm_fro(&T2);
  EXPECT(rel < 1e-12, "%s: structured vs jacobian relative Frobenius %.3e", name, rel);
  {
    /* from forward states the caller holds (a measurement's loss pass): the same kernel,
     * bit for bit, and the states are left intact for a second use */
    ntk_forward F;
    ntk_dmat T3;
    double tr3[16];
    OK(ntk_model_forward(&M, &X, xi, &F));
    OK(ntk_dmat_create(g, N, N, &T3));
    for (int rep = 0; rep < 2; ++rep) {
      OK(ntk_ntk_compute_from(&M, &X, &F, NTK_METHOD_STRUCTURED, 1e-6, &T3, tr3));
      double diff = ntk_dmat_diff_fro(&T1, &T3);
      EXPECT(diff == 0.0, "%s: kernel from held forward states (use %d) differs by %.3e", name, rep, diff);
      for (int q = 0; q < NTK_NGROUPS(M.L); ++q)
        EXPECT(tr3[q] == tr1[q], "%s: group %d trace from held states %.17g vs %.17g", name, q, tr3[q], tr1[q]);
    }
    ntk_forward_free(&F);
    /* states of other samples are refused, not read out of bounds */
    ntk_dmat Y;
    OK(ntk_dmat_create(g, N - 1, d, &Y));
    ntk_dmat_fill(&Y, xdata, NULL);
    OK(ntk_model_forward(&M, &Y, xi, &F));
    EXPECT(ntk_ntk_compute_from(&M, &X, &F, NTK_METHOD_STRUCTURED, 1e-6, &T3, NULL) == NTK_ERR_INTERNAL,
           "%s: forward states of %d samples accepted for %d", name, N - 1, N);
    ntk_err_clear();
    ntk_forward_free(&F);
    ntk_dmat_free(&Y);
    ntk_dmat_free(&T3);
  }
  double ttot = ntk_dmat_trace(&T1), gsum = 0.0;
  for (int q = 0; q < NTK_NGROUPS(M.L); ++q) {
    gsum += tr1[q];
    EXPECT(fabs(tr1[q] - tr2[q]) <= 1e-12 * ttot, "%s: group %d trace %.15g vs %.15g", name, q, tr1[q], tr2[q]);
  }
  EXPECT(fabs(gsum - ttot) <= 1e-12 * ttot, "%s: group traces sum %.15g, trace %.15g", name, gsum, ttot);
  double *full = NULL;
  OK(ntk_dmat_gather(&T1, 0, &full));
  if (rank_ == 0) {
    int asym = 0;
    for (int i = 0; i < N; ++i)
      for (int j = 0; j < N; ++j) asym += full[i * N + j] != full[j * N + i];
    EXPECT(asym == 0, "%s: %d asymmetric entries", name, asym);
    double lmin, lmax;
    min_max_eig(full, N, &lmin, &lmax);
    EXPECT(lmin >= -1e-12 * lmax, "%s: not PSD: lambda_min %.3e lambda_max %.3e", name, lmin, lmax);
  }
  free(full);
  ntk_dmat_free(&T1);
  ntk_dmat_free(&T2);
  ntk_model_free(&M);
  ntk_dmat_free(&X);
}

int main(int argc, char **argv) {
  ntk_grid g;
  test_start(&argc, &argv, 2, &g);
  static const char *acts[] = {"relu", "erf", "tanh", "gelu", "identity"};
  ntk_config cfg;
  double mask[3] = {1.0, 0.0, 1.0};
  for (int a = 0; a < 5; ++a) {
    char name[64];
    base_config(&cfg);
    cfg.model.activation = a;
    snprintf(name, sizeof name, "%s eval-network", acts[a]);
    gradient_check(name, &cfg, &g, NULL);
    snprintf(name, sizeof name, "%s mask 101", acts[a]);
    gradient_check(name, &cfg, &g, mask);
  }
  base_config(&cfg);
  cfg.residual.skip = 0;
  gradient_check("plain MLP", &cfg, &g, NULL);
  base_config(&cfg);
  cfg.fourier.project = 0;
  cfg.model.width = 8;
  gradient_check("unprojected Fourier", &cfg, &g, NULL);
  base_config(&cfg);
  cfg.fourier.features = 0;
  cfg.fourier.trainable = 0;
  gradient_check("raw inputs", &cfg, &g, NULL);

  for (int a = 0; a < 5; ++a) {
    base_config(&cfg);
    cfg.model.activation = a;
    cfg.model.width = 7;
    methods_agree(acts[a], &cfg, &g, NULL, 2);
    methods_agree(acts[a], &cfg, &g, mask, 1);
  }
  base_config(&cfg);
  cfg.fourier.project = 0;
  cfg.model.width = 8;
  methods_agree("unprojected", &cfg, &g, NULL, 3);
  base_config(&cfg);
  cfg.residual.skip = 0;
  cfg.fourier.trainable = 0;
  methods_agree("plain MLP", &cfg, &g, NULL, 1);

  int total_fail = 0;
  MPI_Allreduce(&failures, &total_fail, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank_ == 0) printf("%d passed, %d failed\n", checks - failures, failures);
  ntk_grid_free(&g);
  MPI_Finalize();
  return total_fail ? 1 : 0;
}
