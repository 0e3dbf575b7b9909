#include "ntk_dual.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_config.h"
#include "ntk_error.h"
#include "ntk_model.h"

/* LAPACK symmetric tridiagonal eigensolver (not in ntk_scalapack.h). */
void dstev_(const char *jobz, const int *n, double *d, double *e, double *z, const int *ldz,
            double *work, int *info);

#define INV_2PI (0.5 / M_PI)

int ntk_quad_create(int order, ntk_quad *q) {
  memset(q, 0, sizeof *q);
  if (order < 1 || order > 1024)
    return ntk_err_set(NTK_ERR_INPUT,
                       "analytic.quadrature_order: %d points is outside 1 .. 1024", order);
  const int n = order;
  double *d, *e, *z, *work;
  NTK_ALLOC(d, n, "Gauss-Hermite nodes");
  NTK_ALLOC(e, n, "Gauss-Hermite off-diagonal");
  NTK_ALLOC(z, (size_t)n * n, "Gauss-Hermite eigenvectors");
  NTK_ALLOC(work, 2 * n, "Gauss-Hermite workspace");
  /* Jacobi matrix of the probabilists' Hermite polynomials: He_{k+1} = x He_k - k He_{k-1} */
  for (int k = 0; k + 1 < n; ++k) e[k] = sqrt((double)(k + 1));
  int info = 0;
  dstev_("V", &n, d, e, z, &n, work, &info);
  if (info != 0) {
    free(d), free(e), free(z), free(work);
    return ntk_err_set(NTK_ERR_RUNTIME, "Gauss-Hermite rule of order %d: dstev info %d", n, info);
  }
  double *w = work; /* reuse: n raw weights */
  for (int i = 0; i < n; ++i) w[i] = z[(size_t)i * n] * z[(size_t)i * n];
  /* The rule is symmetric in exact arithmetic; enforce it so odd moments vanish exactly. */
  double *zs, *ws;
  NTK_ALLOC(zs, n, "Gauss-Hermite nodes");
  NTK_ALLOC(ws, n, "Gauss-Hermite weights");
  for (int i = 0; i < n; ++i) {
    int k = n - 1 - i;
    zs[i] = 0.5 * (d[i] - d[k]);
    ws[i] = 0.5 * (w[i] + w[k]);
  }
  if (n % 2) zs[n / 2] = 0.0;
  double sum = 0.0; /* small weights first */
  for (int i = 0; i < n / 2; ++i) sum += ws[i] + ws[n - 1 - i];
  if (n % 2) sum += ws[n / 2];
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    double wi = ws[i] / sum;
    if (wi < NTK_QUAD_WEIGHT_FLOOR) continue; /* contributes below double rounding */
    zs[kept] = zs[i];
    ws[kept] = wi;
    ++kept;
  }
  free(d), free(e), free(z), free(work);
  q->order = order;
  q->n = kept;
  q->z = zs;
  q->w = ws;
  return NTK_OK;
}

void ntk_quad_free(ntk_quad *q) {
  free(q->z);
  free(q->w);
  memset(q, 0, sizeof *q);
}

static inline double clamp_cov(double s11, double s22, double s12) {
  double lim = sqrt(s11 * s22);
  return s12 > lim ? lim : (s12 < -lim ? -lim : s12);
}

/* correlation of a covariance with both variances > 0, clamped to [-1, 1] */
static inline double corr(double s11, double s12, double s22) {
  double rho = s12 / sqrt(s11 * s22);
  return rho > 1.0 ? 1.0 : (rho < -1.0 ? -1.0 : rho);
}

/* max(x, 0) + slope * min(x, 0) = A x + B |x| with A = (1 + slope)/2, B = (1 - slope)/2:
 * E[u v] = s12, E[|u| |v|] = (2r/pi)(sin th + (pi/2 - th) rho) (two arc-cosine kernels),
 * E[u |v|] = 0 by the symmetry (u, v) -> (-u, -v); the derivative A + B sign(x) gives
 * A^2 + B^2 E[sign u sign v] = A^2 + B^2 (1 - 2 th / pi). */
void ntk_dual_leaky(double slope, double s11, double s12, double s22, double *kss,
                    double *kdd) {
  const double A = 0.5 * (1.0 + slope), B = 0.5 * (1.0 - slope);
  s11 = s11 > 0.0 ? s11 : 0.0;
  s22 = s22 > 0.0 ? s22 : 0.0;
  if (s11 == 0.0 || s22 == 0.0) {
    /* a deterministic 0: sigma(0) = 0; sigma'(0) is the network's convention (slope),
     * E[sigma'(v)] = A */
    *kss = 0.0;
    *kdd = (s11 == 0.0 && s22 == 0.0) ? slope * slope : slope * A;
    return;
  }
  double r = sqrt(s11 * s22), rho = corr(s11, s12, s22);
  double th = ntk_fast_acos(rho), sn = sqrt((1.0 - rho) * (1.0 + rho));
  *kss = A * A * r * rho + B * B * M_2_PI * r * (sn + (M_PI_2 - th) * rho);
  *kdd = A * A + B * B * (1.0 - M_2_PI * th);
}

void ntk_dual_relu(double s11, double s12, double s22, double *kss, double *kdd) {
  s11 = s11 > 0.0 ? s11 : 0.0;
  s22 = s22 > 0.0 ? s22 : 0.0;
  if (s11 == 0.0 || s22 == 0.0) {
    /* a deterministic 0: relu(0) = 0; the derivative at 0 is the network's convention */
    double d0 = ntk_act_deriv(NTK_ACT_RELU, 0.0, 0.0);
    double dmean =
        0.5 * (ntk_act_deriv(NTK_ACT_RELU, 0.0, 1.0) + ntk_act_deriv(NTK_ACT_RELU, 0.0, -1.0));
    *kss = 0.0;
    *kdd = (s11 == 0.0 && s22 == 0.0) ? d0 * d0 : d0 * dmean;
    return;
  }
  double r = sqrt(s11 * s22);
  double rho = corr(s11, s12, s22);
  double th = ntk_fast_acos(rho);
  double sn = sqrt((1.0 - rho) * (1.0 + rho));
  *kss = r * (sn + (M_PI - th) * rho) * INV_2PI;
  *kdd = (M_PI - th) * INV_2PI;
}

double ntk_dual_relu_mean(double s11) { return s11 > 0.0 ? sqrt(s11 * INV_2PI) : 0.0; }

void ntk_dual_erf(double s11, double s12, double s22, double *kss, double *kdd) {
  s11 = s11 > 0.0 ? s11 : 0.0;
  s22 = s22 > 0.0 ? s22 : 0.0;
  s12 = clamp_cov(s11, s22, s12);
  double pr = (1.0 + 2.0 * s11) * (1.0 + 2.0 * s22);
  double arg = 2.0 * s12 / sqrt(pr);
  arg = arg > 1.0 ? 1.0 : (arg < -1.0 ? -1.0 : arg);
  *kss = M_2_PI * asin(arg);
  /* pr - 4 s12^2 >= 1 + 2 s11 + 2 s22 >= 1 on the clamped cone */
  *kdd = 2.0 * M_2_PI / sqrt(pr - 4.0 * s12 * s12);
}

/* gelu(x) = x Phi(x).  E[Phi(u) Phi(v)] is an orthant probability of (u - a, v - b) with
 * a, b ~ N(0,1) independent; the remaining terms follow from Stein's lemma.  The NNGP part
 * is the formula of Tsuchida et al. (arXiv 2002.08517); both are checked against
 * high-order quadrature in tests/test_dual.c. */
void ntk_dual_gelu(double s11, double s12, double s22, double *kss, double *kdd) {
  s11 = s11 > 0.0 ? s11 : 0.0;
  s22 = s22 > 0.0 ? s22 : 0.0;
  s12 = clamp_cov(s11, s22, s12);
  double pp1 = (1.0 + s11) * (1.0 + s22);
  double d2 = pp1 - s12 * s12; /* >= 1 + s11 + s22 */
  double d = sqrt(d2);
  double ang = atan2(s12, d); /* asin(s12 / sqrt(pp1)) */
  *kss = ((s12 * s12 + s11 * s22 * d2) / (pp1 * d) + s12 * ang) * INV_2PI + 0.25 * s12;
  *kdd = s12 / d * INV_2PI * (1.0 / d2 + (2.0 + s11 + s22) / pp1) + 0.25 + ang * INV_2PI;
}

double ntk_dual_gelu_mean(double s11) {
  return s11 > 0.0 ? s11 / sqrt(2.0 * M_PI * (1.0 + s11)) : 0.0;
}

/* e^{-m} cosh x and e^{-m} sinh x for |x| <= m (no overflow: both exponents <= 0) */
static double exp_cosh(double m, double x) { return 0.5 * (exp(x - m) + exp(-x - m)); }
static double exp_sinh(double m, double x) {
  return fabs(x) < 1.0 ? exp(-m) * sinh(x) : 0.5 * (exp(x - m) - exp(-x - m));
}

/* E[e^{i(u +- v)}] = e^{-(s11 + s22 +- 2 s12)/2} gives
 * E[sin u sin v] = e^{-(s11+s22)/2} sinh s12 and E[cos u cos v] = e^{-(s11+s22)/2} cosh s12. */
void ntk_dual_sin(double s11, double s12, double s22, double *kss, double *kdd) {
  s11 = s11 > 0.0 ? s11 : 0.0;
  s22 = s22 > 0.0 ? s22 : 0.0;
  s12 = clamp_cov(s11, s22, s12);
  double m = 0.5 * (s11 + s22);
  *kss = exp_sinh(m, s12);
  *kdd = exp_cosh(m, s12);
}

void ntk_dual_cos(double s11, double s12, double s22, double *kss, double *kdd) {
  s11 = s11 > 0.0 ? s11 : 0.0;
  s22 = s22 > 0.0 ? s22 : 0.0;
  s12 = clamp_cov(s11, s22, s12);
  double m = 0.5 * (s11 + s22);
  *kss = exp_cosh(m, s12);
  *kdd = exp_sinh(m, s12); /* cos' = -sin: the signs cancel */
}

/* E[sign u sign v] = (2/pi) asin rho; sign(0) = 0 for a zero variance.  The derivative is
 * 0 almost everywhere and is taken as 0 (as the finite network's backward pass does): the
 * distributional derivative 2 delta(u) would give E = 2 / (pi sqrt(s11 s22 - s12^2)),
 * infinite at rho = 1. */
void ntk_dual_sign(double s11, double s12, double s22, double *kss, double *kdd) {
  *kdd = 0.0;
  if (!(s11 > 0.0) || !(s22 > 0.0)) {
    *kss = 0.0;
    return;
  }
  *kss = M_2_PI * asin(corr(s11, s12, s22));
}

void ntk_dual_identity(double s11, double s12, double s22, double *kss, double *kdd) {
  s11 = s11 > 0.0 ? s11 : 0.0;
  s22 = s22 > 0.0 ? s22 : 0.0;
  *kss = clamp_cov(s11, s22, s12);
  *kdd = 1.0;
}

/* Cholesky factor of the clamped covariance: u = a z1, v = c z1 + e z2.  Built from the
 * correlation so that rho = +-1 gives e = 0 exactly. */
static void chol2(double s11, double s12, double s22, double *a, double *c, double *e) {
  s11 = s11 > 0.0 ? s11 : 0.0;
  s22 = s22 > 0.0 ? s22 : 0.0;
  double b = sqrt(s22);
  *a = sqrt(s11);
  if (s11 == 0.0 || s22 == 0.0) {
    *c = 0.0;
    *e = b;
    return;
  }
  double rho = corr(s11, s12, s22);
  *c = b * rho;
  *e = b * sqrt((1.0 - rho) * (1.0 + rho));
}

void ntk_dual_quad(const ntk_quad *q, ntk_scalar_fn s, ntk_scalar_fn ds, void *ctx, double s11,
                   double s12, double s22, double *kss, double *kdd) {
  /* a truncated rule is not symmetric under u <-> v; a canonical order makes the result
   * (and so every kernel built from it) symmetric in the two samples by construction */
  if (s22 > s11) {
    double t = s11;
    s11 = s22;
    s22 = t;
  }
  double a, c, e;
  chol2(s11, s12, s22, &a, &c, &e);
  const int n = q->n;
  const double *z = q->z, *w = q->w;
  double acc_s = 0.0, acc_d = 0.0;
  for (int i = 0; i < n; ++i) {
    double u = a * z[i], m = c * z[i];
    double su = s(u, ctx), du = ds ? ds(u, ctx) : 0.0;
    double in_s = 0.0, in_d = 0.0;
    if (e == 0.0) {
      in_s = s(m, ctx);
      if (ds) in_d = ds(m, ctx);
    } else {
      for (int j = 0; j < n; ++j) {
        double v = m + e * z[j];
        in_s += w[j] * s(v, ctx);
        if (ds) in_d += w[j] * ds(v, ctx);
      }
    }
    acc_s += w[i] * su * in_s;
    acc_d += w[i] * du * in_d;
  }
  *kss = acc_s;
  if (kdd) *kdd = acc_d;
}

double ntk_dual_quad_mean(const ntk_quad *q, ntk_scalar_fn s, void *ctx, double s11) {
  double a = s11 > 0.0 ? sqrt(s11) : 0.0, acc = 0.0;
  for (int i = 0; i < q->n; ++i) acc += q->w[i] * s(a * q->z[i], ctx);
  return acc;
}

/* ---------------------------------------------------------------- adaptive quadrature */

/* The trapezoidal rule on the real line converges geometrically for an integrand analytic
 * in a strip |Im z| < d and decaying like the Gaussian: error ~ exp(-2 pi d / h).  For the
 * activations here d ~ 1/scale (tanh's poles at +-i pi/2, the logistic's at +-i pi), so
 * the step starts at 1/scale and is halved (reusing every node) until two successive
 * differences say the result is within its target. */
#define ZMAX 9.5 /* standard-normal mass beyond: 2e-21 */
#define MAXLEVEL 10
#define INV_SQRT_2PI 0.398942280401432677939946059934

/* integrand with two components; fe receives the absolute errors of f (from a nested
 * integral), 0 when f is exact */
typedef void (*vec_fn)(double z, void *ctx, double f[2], double fe[2]);

/* sums over the nodes z0 + k h in [-ZMAX, ZMAX] (odd k only if `odd`) */
static void trap_nodes(vec_fn fn, void *ctx, double z0, double h, int odd, double sum[2],
                       double esum[2], double asum[2]) {
  long k0 = (long)ceil((-ZMAX - z0) / h), k1 = (long)floor((ZMAX - z0) / h);
  if (odd && !(k0 & 1)) ++k0;
  for (long k = k0; k <= k1; k += odd ? 2 : 1) {
    double f[2], fe[2];
    fn(z0 + (double)k * h, ctx, f, fe);
    for (int c = 0; c < 2; ++c) sum[c] += f[c], esum[c] += fe[c], asum[c] += fabs(f[c]);
  }
}

/* res = integral over R of fn (two components), nodes aligned at z0, first step h0.
 * Converged when the estimate err_k <= atol_k for both components, or, with atol NULL,
 * err_k <= tol * (integral of |integrand_k|).  The estimate of the last level is
 * d_last * min(1, d_last / d_prev) (the error squares with each halving once resolved:
 * this is still well above it), plus the nested integrals' errors.  relerr: the larger
 * err_k / target_k times the tolerance (i.e. a relative error). */
static void trap(vec_fn fn, void *ctx, double z0, double h0, const double *atol, double tol,
                 double res[2], double err[2], double *relerr) {
  double h = h0, sum[2] = {0, 0}, esum[2] = {0, 0}, asum[2] = {0, 0}, T[2], dprev[2];
  z0 -= h * floor(z0 / h); /* the same grid, anchored in [0, h) */
  trap_nodes(fn, ctx, z0, h, 0, sum, esum, asum);
  for (int c = 0; c < 2; ++c) T[c] = h * sum[c], dprev[c] = INFINITY;
  for (int level = 1;; ++level) {
    h *= 0.5;
    trap_nodes(fn, ctx, z0, h, 1, sum, esum, asum);
    double rel = 0.0, E[2], Tn[2];
    for (int c = 0; c < 2; ++c) {
      Tn[c] = h * sum[c];
      double d = fabs(Tn[c] - T[c]);
      E[c] = d * fmin(1.0, d / dprev[c]) + h * esum[c];
      /* a target below the rounding of the sum itself cannot be met: accept that */
      double tgt = fmax(atol ? atol[c] : tol * h * asum[c], 8.0 * DBL_EPSILON * h * asum[c]);
      rel = fmax(rel, tgt > 0.0 ? E[c] / tgt : (E[c] > 0.0 ? INFINITY : 0.0));
      T[c] = Tn[c], dprev[c] = d;
    }
    if ((level >= 2 && rel <= 1.0) || level == MAXLEVEL) {
      res[0] = T[0], res[1] = T[1], err[0] = E[0], err[1] = E[1];
      if (relerr) *relerr = rel * (atol ? 1.0 : tol);
      return;
    }
  }
}

/* first step for an integrand whose features have width 1/scale */
static double step0(double scale) { return 1.0 / fmax(1.0, scale); }

typedef struct {
  ntk_scalar_fn s, ds;
  void *ctx;
  double a, c, e, m;
  double atol_in[2]; /* absolute targets of the inner integrals */
} pair_ctx;

/* inner: phi(z2) (s(m + e z2), s'(m + e z2)) */
static void inner_fn(double z, void *vp, double f[2], double fe[2]) {
  const pair_ctx *P = vp;
  double x = P->m + P->e * z, w = INV_SQRT_2PI * exp(-0.5 * z * z);
  f[0] = w * P->s(x, P->ctx);
  f[1] = P->ds ? w * P->ds(x, P->ctx) : 0.0;
  fe[0] = fe[1] = 0.0;
}

/* outer: phi(z1) (s(a z1) E[s(v) | z1], s'(a z1) E[s'(v) | z1]) */
static void outer_fn(double z, void *vp, double f[2], double fe[2]) {
  pair_ctx *P = vp;
  double x = P->a * z, w = INV_SQRT_2PI * exp(-0.5 * z * z);
  double su = P->s(x, P->ctx), du = P->ds ? P->ds(x, P->ctx) : 0.0;
  double H[2], He[2] = {0.0, 0.0};
  P->m = P->c * z;
  if (P->e == 0.0) {
    H[0] = P->s(P->m, P->ctx);
    H[1] = P->ds ? P->ds(P->m, P->ctx) : 0.0;
  } else {
    trap(inner_fn, P, -P->m / P->e, step0(P->e), P->atol_in, 0.0, H, He, NULL);
  }
  f[0] = w * su * H[0];
  f[1] = w * du * H[1];
  fe[0] = w * fabs(su) * He[0];
  fe[1] = w * fabs(du) * He[1];
}

typedef struct {
  ntk_scalar_fn s, ds;
  void *ctx;
  double a;
} mom_ctx;

/* phi(z) (s(a z)^2, s'(a z)^2) */
static void moment_fn(double z, void *vp, double f[2], double fe[2]) {
  const mom_ctx *M = vp;
  double x = M->a * z, w = INV_SQRT_2PI * exp(-0.5 * z * z);
  double v = M->s(x, M->ctx), d = M->ds ? M->ds(x, M->ctx) : 0.0;
  f[0] = w * v * v;
  f[1] = w * d * d;
  fe[0] = fe[1] = 0.0;
}

/* sqrt(E[s(aZ)^2]), sqrt(E[s'(aZ)^2]) to a few digits: the scales of the error targets */
static void rms(ntk_scalar_fn s, ntk_scalar_fn ds, void *ctx, double a, double r[2]) {
  mom_ctx M = {s, ds, ctx, a};
  double res[2], e2[2];
  trap(moment_fn, &M, 0.0, step0(a), NULL, 1e-6, res, e2, NULL);
  r[0] = sqrt(fmax(res[0], 0.0));
  r[1] = sqrt(fmax(res[1], 0.0));
}

/* Targets: |error of E[g(u) g(v)]| <= tol sqrt(E g(u)^2 E g(v)^2) for g = s, s' (the
 * Cauchy-Schwarz bound of the result: the kernel's own scale).  The inner integrals
 * E[g(v) | z1] get tol/4 sqrt(E g(v)^2) each, so that their weighted sum, which the outer
 * estimate includes, is at most tol/4 of the target. */
void ntk_dual_adapt(ntk_scalar_fn s, ntk_scalar_fn ds, void *ctx, double tol, double s11,
                    double s12, double s22, double *kss, double *kdd, double *err) {
  if (s22 > s11) { /* canonical order: symmetric in the two samples by construction */
    double t = s11;
    s11 = s22;
    s22 = t;
  }
  pair_ctx P = {.s = s, .ds = ds, .ctx = ctx};
  chol2(s11, s12, s22, &P.a, &P.c, &P.e);
  double ru[2], rv[2], atol[2], res[2], e2[2], rel = 0.0;
  rms(s, ds, ctx, P.a, ru);
  rms(s, ds, ctx, sqrt(s22 > 0.0 ? s22 : 0.0), rv);
  for (int k = 0; k < 2; ++k) {
    atol[k] = tol * ru[k] * rv[k];
    P.atol_in[k] = 0.25 * tol * rv[k];
  }
  if (P.a == 0.0) { /* u = 0: s(0) E[s(v)] with v = e z2 */
    P.m = 0.0;
    trap(inner_fn, &P, 0.0, step0(P.e), P.atol_in, 0.0, res, e2, &rel);
    rel *= 0.25;
    res[0] *= s(0.0, ctx);
    res[1] *= ds ? ds(0.0, ctx) : 0.0;
  } else {
    trap(outer_fn, &P, 0.0, step0(P.a), atol, 0.0, res, e2, &rel);
  }
  *kss = res[0];
  if (kdd) *kdd = res[1];
  if (err) *err = rel * tol;
}

typedef struct {
  ntk_scalar_fn s;
  void *ctx;
  double a;
} mean_ctx;

static void mean_fn(double z, void *vp, double f[2], double fe[2]) {
  const mean_ctx *M = vp;
  f[0] = INV_SQRT_2PI * exp(-0.5 * z * z) * M->s(M->a * z, M->ctx);
  f[1] = fe[0] = fe[1] = 0.0;
}

double ntk_dual_adapt_mean(ntk_scalar_fn s, void *ctx, double tol, double s11, double *err) {
  mean_ctx M = {s, ctx, s11 > 0.0 ? sqrt(s11) : 0.0};
  double res[2], e2[2];
  trap(mean_fn, &M, 0.0, step0(M.a), NULL, tol, res, e2, err);
  return res[0];
}

typedef struct {
  int act;
  double slope;
} act_ctx;
static double act_fn(double x, void *ctx) {
  const act_ctx *A = ctx;
  return ntk_act(A->act, A->slope, x);
}
static double act_deriv_fn(double x, void *ctx) {
  const act_ctx *A = ctx;
  return ntk_act_deriv(A->act, A->slope, x);
}

void ntk_dual_quad_act(const ntk_quad *q, int activation, double slope, double s11, double s12,
                       double s22, double *kss, double *kdd) {
  act_ctx A = {activation, slope};
  ntk_dual_quad(q, act_fn, act_deriv_fn, &A, s11, s12, s22, kss, kdd);
}

void ntk_dual_adapt_act(int activation, double slope, double tol, double s11, double s12,
                        double s22, double *kss, double *kdd, double *err) {
  act_ctx A = {activation, slope};
  ntk_dual_adapt(act_fn, act_deriv_fn, &A, tol, s11, s12, s22, kss, kdd, err);
}

/* ---------------------------------------------------------------- dispatch */

void ntk_dual_init(ntk_dual *D, int act, double slope, const ntk_quad *q) {
  D->act = act;
  D->slope = slope;
  D->q = q;
  D->tol = NTK_DUAL_TOL;
  D->err = 0.0;
}

int ntk_dual_closed_form(int activation) {
  switch (activation) {
    case NTK_ACT_TANH:
    case NTK_ACT_SOFTPLUS:
    case NTK_ACT_SILU:
    case NTK_ACT_SIGMOID: return 0;
    default: return 1;
  }
}

/* the estimates are of the truncation error; the rounding of the sums (a few eps of the
 * scale, measured 2e-15 against closed forms) is their floor */
static void note_err(ntk_dual *D, double e) {
  e = fmax(e, 4.0 * DBL_EPSILON);
  if (!(D->err >= e)) D->err = isnan(D->err) ? D->err : e;
}

void ntk_dual_eval(ntk_dual *D, double s11, double s12, double s22, double *kss, double *kdd) {
  switch (D->act) {
    case NTK_ACT_RELU: ntk_dual_relu(s11, s12, s22, kss, kdd); return;
    case NTK_ACT_ERF: ntk_dual_erf(s11, s12, s22, kss, kdd); return;
    case NTK_ACT_GELU: ntk_dual_gelu(s11, s12, s22, kss, kdd); return;
    case NTK_ACT_IDENTITY: ntk_dual_identity(s11, s12, s22, kss, kdd); return;
    case NTK_ACT_LEAKY_RELU: ntk_dual_leaky(D->slope, s11, s12, s22, kss, kdd); return;
    case NTK_ACT_ABS: ntk_dual_leaky(-1.0, s11, s12, s22, kss, kdd); return;
    case NTK_ACT_SIN: ntk_dual_sin(s11, s12, s22, kss, kdd); return;
    case NTK_ACT_COS: ntk_dual_cos(s11, s12, s22, kss, kdd); return;
    case NTK_ACT_SIGN: ntk_dual_sign(s11, s12, s22, kss, kdd); return;
    default: break;
  }
  if (D->q) {
    ntk_dual_quad_act(D->q, D->act, D->slope, s11, s12, s22, kss, kdd);
    D->err = NAN; /* a fixed rule: not estimated */
  } else {
    double e;
    ntk_dual_adapt_act(D->act, D->slope, D->tol, s11, s12, s22, kss, kdd, &e);
    note_err(D, e);
  }
}

double ntk_dual_mean(ntk_dual *D, double s11) {
  switch (D->act) {
    case NTK_ACT_RELU: return ntk_dual_relu_mean(s11);
    case NTK_ACT_GELU: return ntk_dual_gelu_mean(s11);
    case NTK_ACT_LEAKY_RELU: /* B E|u| */
      return s11 > 0.0 ? 0.5 * (1.0 - D->slope) * sqrt(M_2_PI * s11) : 0.0;
    case NTK_ACT_ABS: return s11 > 0.0 ? sqrt(M_2_PI * s11) : 0.0;
    case NTK_ACT_COS: return exp(-0.5 * (s11 > 0.0 ? s11 : 0.0));
    case NTK_ACT_SIGMOID: return 0.5; /* sigmoid - 1/2 is odd */
    case NTK_ACT_ERF:
    case NTK_ACT_TANH:
    case NTK_ACT_SIN:
    case NTK_ACT_SIGN:
    case NTK_ACT_IDENTITY: return 0.0; /* odd: exactly 0 */
    default: break;
  }
  act_ctx A = {D->act, D->slope};
  if (D->q) {
    D->err = NAN;
    return ntk_dual_quad_mean(D->q, act_fn, &A, s11);
  }
  double e;
  double r = ntk_dual_adapt_mean(act_fn, &A, D->tol, s11, &e);
  note_err(D, e);
  return r;
}

/* ---------------------------------------------------------------- Chebyshev interpolant */

#define CN NTK_CHEB_DEG
#define MAXDEPTH 48

typedef struct {
  double lo, hi, c[2 * (CN + 1)];
} cpanel;

/* coefficients from values at the extreme points cos(pi j / CN), j = 0..CN */
static void cheb_coeffs(const double *f, double *c) {
  for (int k = 0; k <= CN; ++k) {
    double s = 0.0;
    for (int j = 0; j <= CN; ++j) {
      double w = (j == 0 || j == CN) ? 0.5 : 1.0;
      s += w * f[j] * cos(M_PI * (double)j * k / CN);
    }
    c[k] = s * 2.0 / CN * ((k == 0 || k == CN) ? 0.5 : 1.0);
  }
}

int ntk_dual_cheb_build(ntk_dual *D, double S, ntk_dual_cheb *C) {
  memset(C, 0, sizeof *C);
  C->S = S;
  C->invS = S > 0.0 ? 1.0 / S : 0.0;
  double sc[2];
  ntk_dual_eval(D, S, S, S, &sc[0], &sc[1]); /* E[s^2], E[s'^2]: the largest |values| */
  int cap = 64, np = 0, top = 0;
  cpanel *out = NULL;
  NTK_ALLOC(out, cap, "Chebyshev panels");
  /* depth-first bisection, left to right, so panels come out ordered */
  double stk_lo[MAXDEPTH + 2], stk_hi[MAXDEPTH + 2];
  int stk_d[MAXDEPTH + 2];
  stk_lo[0] = -1.0, stk_hi[0] = 1.0, stk_d[0] = 0, top = 1;
  double err = 0.0;
  while (top > 0) {
    --top;
    double lo = stk_lo[top], hi = stk_hi[top];
    int depth = stk_d[top];
    double fk[CN + 1], fd[CN + 1];
    for (int j = 0; j <= CN; ++j) {
      double x = 0.5 * (lo + hi) + 0.5 * (hi - lo) * cos(M_PI * j / CN);
      x = x > 1.0 ? 1.0 : (x < -1.0 ? -1.0 : x);
      ntk_dual_eval(D, S, x * S, S, &fk[j], &fd[j]);
    }
    cpanel P = {.lo = lo, .hi = hi};
    cheb_coeffs(fk, P.c);
    cheb_coeffs(fd, P.c + CN + 1);
    double tail = 0.0;
    for (int k = 0; k < 2; ++k) {
      const double *c = P.c + k * (CN + 1);
      double t = fabs(c[CN - 2]) + fabs(c[CN - 1]) + fabs(c[CN]);
      tail = fmax(tail, sc[k] > 0.0 ? t / sc[k] : 0.0);
    }
    if (tail > D->tol && depth < MAXDEPTH && top + 2 <= MAXDEPTH + 2) {
      double mid = 0.5 * (lo + hi);
      /* right half below left half on the stack: the left one is popped first */
      stk_lo[top] = mid, stk_hi[top] = hi, stk_d[top++] = depth + 1;
      stk_lo[top] = lo, stk_hi[top] = mid, stk_d[top++] = depth + 1;
      continue;
    }
    err = fmax(err, tail);
    if (np == cap) {
      cpanel *t = realloc(out, sizeof *out * (size_t)(cap *= 2));
      if (!t) {
        free(out);
        return ntk_err_set(NTK_ERR_MEMORY, "Chebyshev panels: out of memory");
      }
      out = t;
    }
    out[np++] = P;
  }
  C->np = np;
  double *lo = malloc(sizeof *lo * np), *hi = malloc(sizeof *hi * np);
  double *c = malloc(sizeof *c * (size_t)np * 2 * (CN + 1));
  if (!lo || !hi || !c) {
    free(out), free(lo), free(hi), free(c);
    return ntk_err_set(NTK_ERR_MEMORY, "Chebyshev panels: out of memory");
  }
  for (int p = 0; p < np; ++p) {
    lo[p] = out[p].lo, hi[p] = out[p].hi;
    memcpy(c + (size_t)p * 2 * (CN + 1), out[p].c, sizeof out[p].c);
  }
  free(out);
  C->lo = lo, C->hi = hi, C->c = c;
  for (int b = 0, p = 0; b < NTK_CHEB_BUCKETS; ++b) {
    double x = -1.0 + 2.0 * b / NTK_CHEB_BUCKETS;
    while (p + 1 < np && hi[p] < x) ++p;
    C->bucket[b] = p;
  }
  C->err = err + (isnan(D->err) ? 0.0 : D->err);
  note_err(D, C->err);
  return NTK_OK;
}

void ntk_dual_cheb_free(ntk_dual_cheb *C) {
  free(C->lo), free(C->hi), free(C->c);
  memset(C, 0, sizeof *C);
}
