#include "ntk_dual.h"

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

void ntk_dual_relu(double s11, double s12, double s22, double *kss, double *kdd) {
  s11 = s11 > 0.0 ? s11 : 0.0;
  s22 = s22 > 0.0 ? s22 : 0.0;
  if (s11 == 0.0 || s22 == 0.0) {
    /* a deterministic 0: relu(0) = 0; the derivative at 0 is the network's convention */
    double d0 = ntk_act_deriv(NTK_ACT_RELU, 0.0);
    double dmean = 0.5 * (ntk_act_deriv(NTK_ACT_RELU, 1.0) + ntk_act_deriv(NTK_ACT_RELU, -1.0));
    *kss = 0.0;
    *kdd = (s11 == 0.0 && s22 == 0.0) ? d0 * d0 : d0 * dmean;
    return;
  }
  double r = sqrt(s11 * s22);
  double rho = s12 / r;
  rho = rho > 1.0 ? 1.0 : (rho < -1.0 ? -1.0 : rho);
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
  double rho = s12 / sqrt(s11 * s22);
  rho = rho > 1.0 ? 1.0 : (rho < -1.0 ? -1.0 : rho);
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

static double act_fn(double x, void *ctx) { return ntk_act(*(const int *)ctx, x); }
static double act_deriv_fn(double x, void *ctx) { return ntk_act_deriv(*(const int *)ctx, x); }

void ntk_dual_quad_act(const ntk_quad *q, int activation, double s11, double s12, double s22,
                       double *kss, double *kdd) {
  ntk_dual_quad(q, act_fn, act_deriv_fn, &activation, s11, s12, s22, kss, kdd);
}

int ntk_dual_closed_form(int activation) {
  return activation == NTK_ACT_RELU || activation == NTK_ACT_ERF || activation == NTK_ACT_GELU ||
         activation == NTK_ACT_IDENTITY;
}

void ntk_dual_eval(int activation, const ntk_quad *q, double s11, double s12, double s22,
                   double *kss, double *kdd) {
  switch (activation) {
    case NTK_ACT_RELU: ntk_dual_relu(s11, s12, s22, kss, kdd); return;
    case NTK_ACT_ERF: ntk_dual_erf(s11, s12, s22, kss, kdd); return;
    case NTK_ACT_GELU: ntk_dual_gelu(s11, s12, s22, kss, kdd); return;
    case NTK_ACT_IDENTITY: ntk_dual_identity(s11, s12, s22, kss, kdd); return;
    default: ntk_dual_quad_act(q, activation, s11, s12, s22, kss, kdd); return;
  }
}

double ntk_dual_mean(int activation, const ntk_quad *q, double s11) {
  switch (activation) {
    case NTK_ACT_RELU: return ntk_dual_relu_mean(s11);
    case NTK_ACT_GELU: return ntk_dual_gelu_mean(s11);
    case NTK_ACT_ERF:
    case NTK_ACT_TANH:
    case NTK_ACT_IDENTITY: return 0.0; /* odd: exactly 0 */
    default: return ntk_dual_quad_mean(q, act_fn, &activation, s11);
  }
}
