/* The distributed infinite-width kernel against a serial reference computed on rank 0 by
 * an independent implementation of MODEL.md's recursion (plain loops over all pairs, the
 * input kernel from its defining formula).  Every rank count and grid shape is compared
 * with the same reference, so they agree with each other too.  Also: exact symmetry,
 * positive semi-definiteness, the Fourier limit kernel, the exact kernel's approach to it
 * as m grows, mask averages (enumeration, Monte Carlo) and the refusals.
 * Usage: test_analytic [--rows R --cols C]; prints "N passed, M failed" on rank 0. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_analytic.h"
#include "ntk_config.h"
#include "ntk_dual.h"
#include "ntk_error.h"
#include "ntk_grid.h"
#include "ntk_log.h"
#include "ntk_rng.h"
#include "ntk_scalapack.h"

static int g_rank, g_pass, g_fail;

#define EXPECT(cond, ...)                               \
  do {                                                  \
    if (g_rank == 0) {                                  \
      if (cond) {                                       \
        ++g_pass;                                       \
      } else {                                          \
        ++g_fail;                                       \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                   \
        fprintf(stderr, "\n");                          \
      }                                                 \
    }                                                   \
  } while (0)

#define N_SAMPLES 30
#define D_IN 3

/* inputs: a smooth formula, distinct points, |x| of order 1; optional zero first row */
static int g_zero_row = 0;
static double xfun(int i, int j) {
  if (g_zero_row && i == 0) return 0.0;
  return 0.9 * sin(1.0 + 1.7 * i + 2.3 * j + 0.31 * i * j) + 0.2 * cos(0.5 * i - j);
}
static double fill_x(int i, int j, void *ctx) {
  (void)ctx;
  return xfun(i, j);
}

/* ------------------------------------------------------------- serial reference */

static void ref_input(const ntk_config *cfg, int N, int d, double *Kp, double *mean) {
  const int m = cfg->fourier.features;
  const double s = cfg->fourier.scale;
  for (int i = 0; i < N; ++i) {
    for (int j = 0; j < N; ++j) {
      double v = 0.0;
      if (m == 0) {
        for (int c = 0; c < d; ++c) v += xfun(i, c) * xfun(j, c);
        v /= d;
      } else if (cfg->analytic.fourier == NTK_FOURIER_EXACT) {
        for (int k = 0; k < m; ++k) { /* (1/2m) sum_k cos(2 pi s g_k.(x - x')) */
          double dot = 0.0;
          for (int c = 0; c < d; ++c)
            dot += ntk_rng_normal(cfg->seed, NTK_STREAM_FOURIER_G, k, c, 0) *
                   (xfun(i, c) - xfun(j, c));
          v += cos(2 * M_PI * s * dot);
        }
        v /= 2.0 * m;
      } else {
        double r2 = 0.0;
        for (int c = 0; c < d; ++c) r2 += pow(xfun(i, c) - xfun(j, c), 2);
        v = 0.5 * exp(-2 * M_PI * M_PI * s * s * r2);
      }
      Kp[i * N + j] = v;
    }
    double mu = 0.0;
    if (m == 0) {
      for (int c = 0; c < d; ++c) mu += xfun(i, c);
      mu /= d;
    } else if (cfg->analytic.fourier == NTK_FOURIER_EXACT) {
      for (int k = 0; k < m; ++k) {
        double dot = 0.0;
        for (int c = 0; c < d; ++c)
          dot += ntk_rng_normal(cfg->seed, NTK_STREAM_FOURIER_G, k, c, 0) * xfun(i, c);
        mu += sin(2 * M_PI * s * dot) + cos(2 * M_PI * s * dot);
      }
      mu /= 2.0 * m;
    } else {
      double r2 = 0.0;
      for (int c = 0; c < d; ++c) r2 += xfun(i, c) * xfun(i, c);
      mu = 0.5 * exp(-2 * M_PI * M_PI * s * s * r2);
    }
    mean[i] = mu;
  }
}

/* The reference computes only entries with (i N + j) % ref_every == 0 (the others NaN),
 * with the direct (never interpolated) duals at relative target ref_tol. */
static int ref_every = 1;
static double ref_tol = NTK_DUAL_TOL;

/* One mask: a[l] = xi_l alpha_l (residual) ; Kf, Th full N x N row-major. */
static void ref_mask(const ntk_config *cfg, ntk_dual *q, int N, const double *Kp,
                     const double *mean, const double *a, double *Kf, double *Th) {
  const int L = cfg->model.depth, skip = cfg->residual.skip;
  const int proj = cfg->fourier.project;
  const double sw2 = pow(cfg->model.weight_std, 2), sb2 = pow(cfg->model.bias_std, 2);
  double *Sd = calloc((size_t)(L + 1) * N, sizeof(double));
  double *cd = calloc((size_t)(L + 1) * N, sizeof(double));
  double *md = calloc((size_t)(L + 1) * N, sizeof(double));
  for (int i = 0; i < N; ++i) { /* per-sample: Sigma^l(x,x), c_l(x), mu^{l-1}(x) */
    double K = proj ? sw2 * Kp[i * N + i] + sb2 : Kp[i * N + i], mu = proj ? 0.0 : mean[i];
    for (int l = 0; l < L; ++l) {
      double S = sw2 * K + sb2, kss, kdd;
      double c = ntk_dual_mean(q, S);
      Sd[l * N + i] = S, cd[l * N + i] = c, md[l * N + i] = mu;
      ntk_dual_eval(q, S, S, S, &kss, &kdd);
      if (skip) {
        /* the same expression as for a pair (i, i), so the diagonal sees rho = 1 exactly:
         * relu's kdd has infinite slope there, and one ulp of Sigma12 moves it by 1e-9 */
        K = K + a[l] * a[l] * kss + a[l] * (mu * c + c * mu);
        mu = mu + a[l] * c;
      } else {
        K = kss;
      }
    }
  }
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) {
      if ((i * N + j) % ref_every) {
        Kf[i * N + j] = Th[i * N + j] = NAN;
        continue;
      }
      double K = proj ? sw2 * Kp[i * N + j] + sb2 : Kp[i * N + j];
      double T = proj ? K : 0.0;
      for (int l = 0; l < L; ++l) {
        double S12 = sw2 * K + sb2, kss, kdd;
        ntk_dual_eval(q, Sd[l * N + i], S12, Sd[l * N + j], &kss, &kdd);
        if (skip) {
          double al = a[l];
          K = K + al * al * kss + al * (md[l * N + i] * cd[l * N + j] + cd[l * N + i] * md[l * N + j]);
          T = T * (1.0 + al * al * sw2 * kdd) + al * al * S12 * kdd;
        } else {
          K = kss;
          T = sw2 * kdd * T + S12 * kdd;
        }
      }
      Kf[i * N + j] = sw2 * K + sb2;
      Th[i * N + j] = sw2 * K + sb2 + sw2 * T;
    }
  free(Sd), free(cd), free(md);
}

/* mode as ntk_analytic_compute; for mask_average enumeration of all 2^L bit patterns
 * (n_free <= enumerate_depth) or the same Monte Carlo draws as documented. */
static void ref_kernel(const ntk_config *cfg, int mode, const double *xi, int N, double *Kf,
                       double *Th) {
  const int L = cfg->model.depth;
  double *Kp = malloc(sizeof(double) * N * N), *mean = malloc(sizeof(double) * N);
  double *kf = malloc(sizeof(double) * N * N), *th = malloc(sizeof(double) * N * N);
  double a[64], alpha[64], p[64];
  ntk_quad q = {0};
  if (!ntk_dual_closed_form(cfg->model.activation) && cfg->analytic.quadrature_order > 0)
    ntk_quad_create(cfg->analytic.quadrature_order, &q);
  ntk_dual D;
  ntk_dual_init(&D, cfg->model.activation, cfg->model.leaky_slope, q.n ? &q : NULL);
  D.tol = ref_tol;
  ref_input(cfg, N, D_IN, Kp, mean);
  for (int l = 0; l < L; ++l) alpha[l] = ntk_config_alpha(cfg, l + 1), p[l] = ntk_config_survival(cfg, l + 1);
  memset(Kf, 0, sizeof(double) * N * N);
  memset(Th, 0, sizeof(double) * N * N);
  int nfree = 0;
  for (int l = 0; l < L; ++l) nfree += p[l] > 0 && p[l] < 1;
  if (mode != NTK_NETWORK_MASK_AVERAGE || !cfg->residual.skip) {
    for (int l = 0; l < L; ++l) a[l] = (mode == NTK_NETWORK_MASK ? xi[l] : p[l]) * alpha[l];
    ref_mask(cfg, &D, N, Kp, mean, a, Kf, Th);
  } else if (nfree <= cfg->analytic.enumerate_depth) {
    for (int bits = 0; bits < (1 << L); ++bits) {
      double w = 1.0;
      for (int l = 0; l < L; ++l) {
        int x = (bits >> l) & 1;
        w *= x ? p[l] : 1 - p[l];
        a[l] = x * alpha[l];
      }
      if (w == 0.0) continue;
      ref_mask(cfg, &D, N, Kp, mean, a, kf, th);
      for (int e = 0; e < N * N; ++e) Kf[e] += w * kf[e], Th[e] += w * th[e];
    }
  } else {
    const int S = cfg->analytic.mask_samples;
    for (int s = 0; s < S; ++s) {
      for (int l = 0; l < L; ++l) {
        double u = ntk_rng_uniform(cfg->seed, NTK_STREAM_MASK, l + 1, s, 1);
        a[l] = (p[l] >= 1 || u < p[l]) * alpha[l];
      }
      ref_mask(cfg, &D, N, Kp, mean, a, kf, th);
      for (int e = 0; e < N * N; ++e) Kf[e] += kf[e] / S, Th[e] += th[e] / S;
    }
  }
  ntk_quad_free(&q);
  free(Kp), free(mean), free(kf), free(th);
}

/* ------------------------------------------------------------- checks */

static double max_rel_diff(const double *A, const double *B, int n) {
  double d = 0, s = 0;
  for (int e = 0; e < n; ++e) {
    d = fmax(d, fabs(A[e] - B[e]));
    s = fmax(s, fabs(B[e]));
  }
  if (getenv("NTK_TEST_DEBUG")) {
    int w = 0;
    for (int e = 0; e < n; ++e)
      if (fabs(A[e] - B[e]) > fabs(A[w] - B[w])) w = e;
    fprintf(stderr, "  worst entry (%d,%d): %.17g vs %.17g\n", w / N_SAMPLES, w % N_SAMPLES, A[w], B[w]);
  }
  return s > 0 ? d / s : d;
}

static int exactly_symmetric(const double *A, int N) {
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < i; ++j)
      if (A[i * N + j] != A[j * N + i]) return 0;
  return 1;
}

static void eig_range(const double *A, int N, double *lmin, double *lmax) {
  double *a = malloc(sizeof(double) * N * N), *w = malloc(sizeof(double) * N);
  memcpy(a, A, sizeof(double) * N * N);
  int lwork = -1, liwork = -1, info = 0, iw;
  double wq;
  dsyevd_("N", "L", &N, a, &N, w, &wq, &lwork, &iw, &liwork, &info);
  lwork = (int)wq, liwork = iw;
  double *work = malloc(sizeof(double) * lwork);
  int *iwork = malloc(sizeof(int) * liwork);
  dsyevd_("N", "L", &N, a, &N, w, work, &lwork, iwork, &liwork, &info);
  *lmin = info == 0 ? w[0] : NAN;
  *lmax = info == 0 ? w[N - 1] : NAN;
  free(a), free(w), free(work), free(iwork);
}

static void base_config(ntk_config *cfg) {
  ntk_config_defaults(cfg);
  cfg->seed = 1234;
  cfg->model.depth = 4;
  cfg->model.activation = NTK_ACT_RELU;
  cfg->model.weight_std = 1.0;
  cfg->model.bias_std = 0.1;
  cfg->fourier.features = 0;
  cfg->fourier.scale = 0.15;
  cfg->fourier.project = 1;
  cfg->fourier.trainable = 0;
  cfg->residual.skip = 1;
  cfg->residual.alpha = 1.0;
  cfg->residual.schedule = NTK_ALPHA_INV_SQRT_DEPTH;
  cfg->depth.survival = 1.0;
  cfg->depth.schedule = NTK_SURVIVAL_UNIFORM;
  cfg->analytic.fourier = NTK_FOURIER_EXACT;
  cfg->analytic.quadrature_order = 24;
  cfg->analytic.enumerate_depth = 10;
  cfg->analytic.mask_samples = 64;
}

/* Collective: run the distributed kernel, compare with the reference on rank 0. */
static void run_case(const char *name, const ntk_config *cfg, const ntk_grid *g, int mode,
                     const double *xi, double tol, int expect_masks) {
  ntk_dmat X, Kf, Th;
  ntk_analytic_info info = {.n_masks = -1};
  ntk_dmat_create(g, N_SAMPLES, D_IN, &X);
  ntk_dmat_fill(&X, fill_x, NULL);
  int rc = ntk_analytic_compute(cfg, g, &X, mode, xi, &Kf, &Th, &info);
  const int n_masks = info.n_masks;
  EXPECT(rc == 0, "%s: ntk_analytic_compute failed: %s", name, ntk_err_message());
  if (rc) {
    ntk_dmat_free(&X);
    return;
  }
  double *kf = NULL, *th = NULL;
  ntk_dmat_gather(&Kf, 0, &kf);
  ntk_dmat_gather(&Th, 0, &th);
  if (g_rank == 0) {
    const int N = N_SAMPLES;
    double *rk = malloc(sizeof(double) * N * N), *rt = malloc(sizeof(double) * N * N);
    ref_kernel(cfg, mode, xi, N, rk, rt);
    double ek = max_rel_diff(kf, rk, N * N), et = max_rel_diff(th, rt, N * N);
    if (getenv("NTK_TEST_DEBUG")) fprintf(stderr, "%s: rel diff NNGP %.2g NTK %.2g\n", name, ek, et);
    EXPECT(ek <= tol, "%s: NNGP vs reference: rel diff %.3g > %.1g", name, ek, tol);
    EXPECT(et <= tol, "%s: NTK vs reference: rel diff %.3g > %.1g", name, et, tol);
    EXPECT(exactly_symmetric(kf, N) && exactly_symmetric(th, N), "%s: not exactly symmetric",
           name);
    int finite = 1;
    for (int e = 0; e < N * N; ++e) finite &= isfinite(kf[e]) && isfinite(th[e]);
    EXPECT(finite, "%s: non-finite entries", name);
    double lmin, lmax;
    eig_range(th, N, &lmin, &lmax);
    EXPECT(lmin >= -1e-12 * lmax, "%s: NTK not PSD: lambda_min %.3g lambda_max %.3g", name, lmin,
           lmax);
    eig_range(kf, N, &lmin, &lmax);
    EXPECT(lmin >= -1e-12 * lmax, "%s: NNGP not PSD: lambda_min %.3g lambda_max %.3g", name,
           lmin, lmax);
    if (expect_masks > 0)
      EXPECT(n_masks == expect_masks, "%s: %d masks used, expected %d", name, n_masks,
             expect_masks);
    free(rk), free(rt);
  }
  free(kf), free(th);
  ntk_dmat_free(&Kf), ntk_dmat_free(&Th), ntk_dmat_free(&X);
}

static void test_reference_cases(const ntk_grid *g) {
  ntk_config c;
  const double tol = 1e-12;

  base_config(&c); /* relu, raw inputs, projection, residual */
  run_case("relu raw", &c, g, NTK_NETWORK_EVAL, NULL, tol, 1);
  c.model.depth = 0; /* no blocks: K_f = sigma_w^2 K^0 + sigma_b^2 */
  run_case("relu no blocks", &c, g, NTK_NETWORK_MASK_AVERAGE, NULL, tol, 1);

  base_config(&c);
  c.model.activation = NTK_ACT_ERF, c.model.depth = 3, c.fourier.features = 8;
  c.depth.survival = 0.7, c.depth.schedule = NTK_SURVIVAL_LINEAR;
  run_case("erf fourier exact, eval p_l linear", &c, g, NTK_NETWORK_EVAL, NULL, tol, 1);

  base_config(&c);
  c.model.activation = NTK_ACT_GELU, c.model.depth = 3, c.fourier.features = 8;
  c.analytic.fourier = NTK_FOURIER_LIMIT, c.residual.schedule = NTK_ALPHA_POWER;
  c.residual.power = 0.7, c.residual.alpha = 1.5;
  run_case("gelu fourier limit, power schedule", &c, g, NTK_NETWORK_EVAL, NULL, tol, 1);

  base_config(&c);
  c.model.activation = NTK_ACT_TANH, c.model.depth = 2, c.model.weight_std = 1.3;
  run_case("tanh quadrature", &c, g, NTK_NETWORK_EVAL, NULL, tol, 1);
  c.analytic.quadrature_order = 0; /* the default: controlled, direct on raw inputs */
  run_case("tanh controlled", &c, g, NTK_NETWORK_EVAL, NULL, tol, 1);
  c.analytic.quadrature_order = 24;

  /* the closed forms of issue 19, with Fourier features (mean terms for leaky, abs, cos) */
  const int more[5] = {NTK_ACT_LEAKY_RELU, NTK_ACT_ABS, NTK_ACT_SIN, NTK_ACT_COS, NTK_ACT_SIGN};
  for (int k = 0; k < 5; ++k) {
    base_config(&c);
    c.model.activation = more[k], c.model.depth = 3, c.fourier.features = 8;
    c.model.leaky_slope = 0.2;
    run_case(ntk_config_enum_name("model.activation", more[k]), &c, g, NTK_NETWORK_EVAL, NULL,
             tol, 1);
  }

  base_config(&c);
  c.model.activation = NTK_ACT_IDENTITY, c.model.depth = 3, c.residual.schedule = NTK_ALPHA_CONSTANT;
  run_case("identity", &c, g, NTK_NETWORK_EVAL, NULL, tol, 1);

  base_config(&c);
  c.residual.skip = 0, c.model.depth = 3, c.fourier.features = 8, c.model.weight_std = 1.4;
  run_case("relu plain MLP", &c, g, NTK_NETWORK_EVAL, NULL, tol, 1);
  run_case("relu plain MLP mask average", &c, g, NTK_NETWORK_MASK_AVERAGE, NULL, tol, 1);

  base_config(&c);
  c.fourier.project = 0, c.fourier.features = 8, c.model.depth = 3;
  run_case("relu no projection, fourier exact", &c, g, NTK_NETWORK_EVAL, NULL, tol, 1);
  c.analytic.fourier = NTK_FOURIER_LIMIT;
  run_case("relu no projection, fourier limit", &c, g, NTK_NETWORK_EVAL, NULL, tol, 1);

  base_config(&c);
  c.fourier.project = 0, c.model.activation = NTK_ACT_GELU, c.model.depth = 2;
  run_case("gelu no projection, raw", &c, g, NTK_NETWORK_EVAL, NULL, tol, 1);

  base_config(&c);
  c.depth.survival = 0.5;
  const double xi[4] = {1, 0, 1, 1};
  run_case("relu fixed mask", &c, g, NTK_NETWORK_MASK, xi, tol, 1);

  base_config(&c);
  c.model.depth = 3, c.depth.survival = 0.6;
  run_case("relu mask average, enumeration", &c, g, NTK_NETWORK_MASK_AVERAGE, NULL, tol, 8);
  c.model.activation = NTK_ACT_ERF, c.analytic.enumerate_depth = 2, c.analytic.mask_samples = 50;
  run_case("erf mask average, Monte Carlo", &c, g, NTK_NETWORK_MASK_AVERAGE, NULL, tol, 50);

  /* zero variance: x_0 = 0 and sigma_b = 0 make Sigma^l(x_0, x_0) = 0 in every layer */
  base_config(&c);
  c.model.bias_std = 0.0;
  g_zero_row = 1;
  run_case("relu zero-variance sample", &c, g, NTK_NETWORK_EVAL, NULL, tol, 1);
  c.model.activation = NTK_ACT_TANH;
  run_case("tanh zero-variance sample", &c, g, NTK_NETWORK_EVAL, NULL, tol, 1);
  g_zero_row = 0;
}

/* K_phi for analytic.fourier limit equals 1/2 exp(-2 pi^2 s^2 |x - x'|^2) entry-wise, and
 * the exact kernel with m frequencies approaches it like 1/sqrt(m). */
static void test_fourier_limit(const ntk_grid *g) {
  ntk_config c;
  base_config(&c);
  c.fourier.features = 64;
  c.analytic.fourier = NTK_FOURIER_LIMIT;
  ntk_dmat X, Kl, Ke;
  ntk_dmat_create(g, N_SAMPLES, D_IN, &X);
  ntk_dmat_fill(&X, fill_x, NULL);
  double diag[N_SAMPLES], mean[N_SAMPLES];
  int rc = ntk_analytic_input_kernel(&c, g, &X, &Kl, diag, mean);
  EXPECT(rc == 0, "limit input kernel failed: %s", ntk_err_message());
  double *kl = NULL, *ke = NULL;
  ntk_dmat_gather(&Kl, 0, &kl);
  const int N = N_SAMPLES;
  if (g_rank == 0) {
    double err = 0;
    for (int i = 0; i < N; ++i)
      for (int j = 0; j < N; ++j) {
        double r2 = 0;
        for (int k = 0; k < D_IN; ++k) r2 += pow(xfun(i, k) - xfun(j, k), 2);
        err = fmax(err, fabs(kl[i * N + j] - 0.5 * exp(-2 * M_PI * M_PI * 0.15 * 0.15 * r2)));
      }
    EXPECT(err <= 1e-14, "fourier limit kernel: max error %.3g > 1e-14", err);
    EXPECT(diag[0] == 0.5 && diag[N - 1] == 0.5, "fourier limit diagonal not 1/2");
  }
  double errs[2] = {0, 0};
  const int ms[2] = {64, 4096};
  c.analytic.fourier = NTK_FOURIER_EXACT;
  for (int t = 0; t < 2; ++t) {
    c.fourier.features = ms[t];
    rc = ntk_analytic_input_kernel(&c, g, &X, &Ke, NULL, NULL);
    EXPECT(rc == 0, "exact input kernel failed");
    ntk_dmat_gather(&Ke, 0, &ke);
    if (g_rank == 0) {
      for (int e = 0; e < N * N; ++e) errs[t] = fmax(errs[t], fabs(ke[e] - kl[e]));
      double dd = 0;
      for (int i = 0; i < N; ++i) dd = fmax(dd, fabs(ke[i * N + i] - 0.5));
      EXPECT(dd <= 1e-14, "exact kernel diagonal off 1/2 by %.3g", dd);
    }
    free(ke);
    ntk_dmat_free(&Ke);
  }
  if (g_rank == 0) {
    printf("fourier exact vs limit: max error m=64 %.4f, m=4096 %.4f (ratio %.1f, sqrt(64) = 8)\n",
           errs[0], errs[1], errs[0] / errs[1]);
    EXPECT(errs[1] < errs[0] / 4 && errs[1] < 2.0 / sqrt(4096.0),
           "exact kernel does not approach the limit: m=64 %.3g, m=4096 %.3g", errs[0], errs[1]);
  }
  free(kl);
  ntk_dmat_free(&Kl), ntk_dmat_free(&X);
}

static int gather_pair(const ntk_config *c, const ntk_grid *g, int mode, const double *xi,
                       double **kf, double **th, int *n_masks) {
  ntk_dmat X, Kf, Th;
  ntk_dmat_create(g, N_SAMPLES, D_IN, &X);
  ntk_dmat_fill(&X, fill_x, NULL);
  ntk_analytic_info info = {0};
  int rc = ntk_analytic_compute(c, g, &X, mode, xi, &Kf, &Th, &info);
  if (n_masks) *n_masks = info.n_masks;
  ntk_dmat_free(&X);
  if (rc) return rc;
  ntk_dmat_gather(&Kf, 0, kf);
  ntk_dmat_gather(&Th, 0, th);
  ntk_dmat_free(&Kf), ntk_dmat_free(&Th);
  return 0;
}

/* survival 1: the mask average is the evaluation kernel; Monte Carlo within its error of
 * the exact enumeration (L = 3, per-entry standard error from the 8 exact mask kernels). */
static void test_masks(const ntk_grid *g) {
  ntk_config c;
  base_config(&c);
  c.model.depth = 3;
  c.fourier.features = 8;
  double *e1 = NULL, *e2 = NULL, *a1 = NULL, *a2 = NULL;
  int nm = 0;
  gather_pair(&c, g, NTK_NETWORK_EVAL, NULL, &e1, &e2, &nm);
  gather_pair(&c, g, NTK_NETWORK_MASK_AVERAGE, NULL, &a1, &a2, &nm);
  const int N = N_SAMPLES;
  if (g_rank == 0) {
    EXPECT(max_rel_diff(a1, e1, N * N) == 0.0 && max_rel_diff(a2, e2, N * N) == 0.0,
           "p = 1: mask average differs from the evaluation kernel");
    EXPECT(nm == 1, "p = 1: %d masks enumerated, expected 1", nm);
  }
  free(e1), free(e2), free(a1), free(a2);

  c.depth.survival = 0.5;
  c.analytic.mask_samples = 400;
  double *en_k = NULL, *en_t = NULL, *mc_k = NULL, *mc_t = NULL;
  gather_pair(&c, g, NTK_NETWORK_MASK_AVERAGE, NULL, &en_k, &en_t, &nm);
  if (g_rank == 0) EXPECT(nm == 8, "enumeration used %d masks, expected 8", nm);
  c.analytic.enumerate_depth = 2;
  gather_pair(&c, g, NTK_NETWORK_MASK_AVERAGE, NULL, &mc_k, &mc_t, &nm);
  if (g_rank == 0) {
    EXPECT(nm == 400, "Monte Carlo used %d masks, expected 400", nm);
    /* per-entry variance over masks from the 8 exact mask kernels */
    double *vk = calloc(N * N, sizeof(double)), *vt = calloc(N * N, sizeof(double));
    double *mk = calloc(N * N, sizeof(double)), *mt = calloc(N * N, sizeof(double));
    double *kf = malloc(sizeof(double) * N * N), *th = malloc(sizeof(double) * N * N);
    for (int bits = 0; bits < 8; ++bits) {
      double xi[3] = {bits & 1, (bits >> 1) & 1, (bits >> 2) & 1};
      ref_kernel(&c, NTK_NETWORK_MASK, xi, N, kf, th);
      for (int e = 0; e < N * N; ++e) {
        mk[e] += kf[e] / 8, mt[e] += th[e] / 8;
        vk[e] += kf[e] * kf[e] / 8, vt[e] += th[e] * th[e] / 8;
      }
    }
    double worst = 0, worst_enum = 0;
    for (int e = 0; e < N * N; ++e) {
      double sk = sqrt(fmax(vk[e] - mk[e] * mk[e], 0) / 400) + 1e-12;
      double st = sqrt(fmax(vt[e] - mt[e] * mt[e], 0) / 400) + 1e-12;
      worst = fmax(worst, fmax(fabs(mc_k[e] - en_k[e]) / sk, fabs(mc_t[e] - en_t[e]) / st));
      worst_enum = fmax(worst_enum, fmax(fabs(mk[e] - en_k[e]), fabs(mt[e] - en_t[e])));
    }
    printf("mask average: Monte Carlo (400 masks) vs enumeration: max %.2f standard errors\n",
           worst);
    EXPECT(worst_enum <= 1e-12 * 10, "enumeration differs from the exact p = 1/2 mean: %.3g",
           worst_enum);
    EXPECT(worst <= 5.0, "Monte Carlo off the enumeration by %.2f standard errors", worst);
    free(vk), free(vt), free(mk), free(mt), free(kf), free(th);
  }
  free(en_k), free(en_t), free(mc_k), free(mc_t);
}

static void test_refusals(void) {
  ntk_config c;
  base_config(&c);
  c.fourier.features = 4;
  c.fourier.trainable = 1;
  ntk_err_clear();
  int rc = ntk_analytic_check(&c);
  EXPECT(rc == NTK_ERR_INPUT && strstr(ntk_err_message(), "fourier.trainable"),
         "trainable Fourier features not refused (rc %d, '%s')", rc, ntk_err_message());
  ntk_err_clear();
  base_config(&c);
  c.model.activation = 17;
  rc = ntk_analytic_check(&c);
  EXPECT(rc == NTK_ERR_INPUT, "unknown activation not refused");
  ntk_err_clear();
  base_config(&c);
  EXPECT(ntk_analytic_check(&c) == 0, "default-like configuration refused: %s", ntk_err_message());
  ntk_err_clear();
}

/* Issue 19's acceptance case: a 2-block network, sigma_w = 1.4, Fourier features with the
 * m -> infinity input kernel, at DEFAULT analytic settings (error-controlled quadrature,
 * and with N = 96 every rank has enough entries for the interpolated path), for each
 * activation without a closed form (and gelu): every compared entry within 1e-12 of the
 * max-norm of a reference from the direct duals at a 100x tighter target.  Also the old
 * default, a fixed order-64 rule, for tanh: printed, to show what the control buys. */
static void test_default_accuracy(const ntk_grid *g) {
  const int N = 96, acts[5] = {NTK_ACT_TANH, NTK_ACT_GELU, NTK_ACT_SOFTPLUS, NTK_ACT_SILU,
                               NTK_ACT_SIGMOID};
  for (int a = 0; a < 6; ++a) {
    ntk_config c;
    base_config(&c);
    c.analytic.quadrature_order = a == 5 ? 64 : 0; /* 0 is the shipped default */
    c.model.activation = acts[a == 5 ? 0 : a];
    c.model.depth = 2, c.model.weight_std = 1.4, c.fourier.features = 16;
    c.fourier.scale = 0.25, c.analytic.fourier = NTK_FOURIER_LIMIT;
    ntk_dmat X, Kf, Th;
    ntk_analytic_info info = {0};
    ntk_dmat_create(g, N, D_IN, &X);
    ntk_dmat_fill(&X, fill_x, NULL);
    int rc = ntk_analytic_compute(&c, g, &X, NTK_NETWORK_EVAL, NULL, &Kf, &Th, &info);
    ntk_dmat_free(&X);
    const char *name = ntk_config_enum_name("model.activation", c.model.activation);
    EXPECT(rc == 0, "default accuracy %s: %s", name, ntk_err_message());
    if (rc) continue;
    double *kf = NULL, *th = NULL;
    ntk_dmat_gather(&Kf, 0, &kf);
    ntk_dmat_gather(&Th, 0, &th);
    ntk_dmat_free(&Kf), ntk_dmat_free(&Th);
    if (g_rank == 0) {
      double *rk = malloc(sizeof(double) * N * N), *rt = malloc(sizeof(double) * N * N);
      ref_every = 41, ref_tol = 1e-16;
      c.analytic.quadrature_order = 0;
      ref_kernel(&c, NTK_NETWORK_EVAL, NULL, N, rk, rt);
      ref_every = 1, ref_tol = NTK_DUAL_TOL;
      double dk = 0, dt = 0, sk = 0, st = 0;
      for (int e = 0; e < N * N; ++e) {
        sk = fmax(sk, fabs(kf[e])), st = fmax(st, fabs(th[e]));
        if (isnan(rk[e])) continue;
        dk = fmax(dk, fabs(kf[e] - rk[e])), dt = fmax(dt, fabs(th[e] - rt[e]));
      }
      printf("default accuracy %-8s%s: NNGP %.2g NTK %.2g (max-norm relative; estimate %.2g)\n",
             name, a == 5 ? " (fixed order 64)" : "", dk / sk, dt / st, info.dual_error);
      if (a < 5) {
        EXPECT(dk <= 1e-12 * sk && dt <= 1e-12 * st, "default accuracy %s: NNGP %.3g NTK %.3g > 1e-12",
               name, dk / sk, dt / st);
        EXPECT(info.closed_form || info.dual_error < 1e-13, "%s: dual error estimate %.3g",
               name, info.dual_error);
      } else {
        EXPECT(isnan(info.dual_error), "a fixed rule reports no estimate, got %.3g",
               info.dual_error);
      }
      free(rk), free(rt);
    }
    free(kf), free(th);
  }
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  ntk_log_init(MPI_COMM_WORLD, 0);
  int rows = 0, cols = 0;
  for (int a = 1; a + 1 < argc; ++a) {
    if (!strcmp(argv[a], "--rows")) rows = atoi(argv[a + 1]);
    if (!strcmp(argv[a], "--cols")) cols = atoi(argv[a + 1]);
  }
  ntk_grid g;
  if (ntk_grid_create(MPI_COMM_WORLD, rows, cols, 3, &g) != 0) {
    if (g_rank == 0) fprintf(stderr, "grid: %s\n", ntk_err_message());
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  if (g_rank == 0) printf("grid %d x %d, block 3, N = %d\n", g.nprow, g.npcol, N_SAMPLES);
  test_reference_cases(&g);
  test_fourier_limit(&g);
  test_masks(&g);
  test_default_accuracy(&g);
  test_refusals();
  int fails = g_fail;
  MPI_Bcast(&fails, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (g_rank == 0) printf("%d passed, %d failed\n", g_pass, g_fail);
  ntk_grid_free(&g);
  MPI_Finalize();
  return fails ? 1 : 0;
}
