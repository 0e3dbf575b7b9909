/* ntk_dual: dual activations, the Gaussian expectations the infinite-width recursion needs.
 *
 * For a 2 x 2 covariance (s11, s12; s12, s22) and (u, v) ~ N(0, Sigma):
 *   kss = E[s(u) s(v)],   kdd = E[s'(u) s'(v)],   and mean = E[s(u)] for u ~ N(0, s11).
 * Closed forms for relu, leaky_relu, abs (arc-cosine kernels), erf, gelu (x Phi(x)), sin,
 * cos, sign and identity.  tanh, softplus, silu and sigmoid have none: their expectations
 * come from a nested trapezoidal rule on the real line with an error estimate, refined
 * until it is below a relative target (ntk_dual.tol), or from a fixed Gauss-Hermite rule
 * when the user overrides the order.  For one common variance the pair (kss, kdd) is a function of
 * the correlation alone; ntk_dual_cheb interpolates it piecewise (Chebyshev) for the
 * recursion's inner loop.
 * Every function accepts a covariance on the edge of the cone: the correlation is clamped
 * to [-1, 1], a variance <= 0 means that variable is deterministically 0, and the results
 * are then the exact expectations of that degenerate law (finite, never NaN). */
#ifndef NTK_DUAL_H
#define NTK_DUAL_H
#include <math.h>
#include <stddef.h>

/* Probabilists' Gauss-Hermite rule: E[f(Z)], Z ~ N(0,1), ~= sum_i w[i] f(z[i]).
 * `order` is the requested number of points; nodes whose weight is below
 * NTK_QUAD_WEIGHT_FLOOR (relative to the sum, 1) are dropped, so `n` <= order. */
#define NTK_QUAD_WEIGHT_FLOOR 1e-22
typedef struct {
  int order; /* requested points per dimension */
  int n;     /* points kept */
  double *z, *w;
} ntk_quad;

/* Golub-Welsch through LAPACK dstev.  NTK_ERR_INPUT for order outside 1..1024. */
int ntk_quad_create(int order, ntk_quad *q);
void ntk_quad_free(ntk_quad *q);

/* Target relative error of each controlled expectation (relative to its Cauchy-Schwarz
 * scale sqrt(E[s(u)^2] E[s(v)^2]), resp. the integral of |integrand|). */
#define NTK_DUAL_TOL 1e-14

/* The evaluation context of one activation.  err is raised by every evaluation to the
 * largest estimated relative error so far (0 for closed forms; NAN once a fixed rule has
 * been used, whose error is not estimated). */
typedef struct {
  int act;           /* ntk_activation */
  double slope;      /* leaky_relu */
  const ntk_quad *q; /* fixed Gauss-Hermite rule (override), or NULL: controlled */
  double tol;        /* NTK_DUAL_TOL unless a test asks for another */
  double err;
} ntk_dual;

void ntk_dual_init(ntk_dual *D, int act, double slope, const ntk_quad *q);

/* 1 if the activation has closed forms here (no quadrature at all). */
int ntk_dual_closed_form(int activation);

/* Dispatch: closed form, fixed rule (D->q) or controlled quadrature. */
void ntk_dual_eval(ntk_dual *D, double s11, double s12, double s22, double *kss, double *kdd);
double ntk_dual_mean(ntk_dual *D, double s11);

/* Closed forms. */
void ntk_dual_relu(double s11, double s12, double s22, double *kss, double *kdd);
/* sigma(x) = x for x > 0, slope * x otherwise (abs: slope = -1) */
void ntk_dual_leaky(double slope, double s11, double s12, double s22, double *kss, double *kdd);
void ntk_dual_erf(double s11, double s12, double s22, double *kss, double *kdd);
void ntk_dual_gelu(double s11, double s12, double s22, double *kss, double *kdd);
void ntk_dual_sin(double s11, double s12, double s22, double *kss, double *kdd);
void ntk_dual_cos(double s11, double s12, double s22, double *kss, double *kdd);
void ntk_dual_sign(double s11, double s12, double s22, double *kss, double *kdd);
void ntk_dual_identity(double s11, double s12, double s22, double *kss, double *kdd);
double ntk_dual_relu_mean(double s11); /* sqrt(s11 / (2 pi)) */
double ntk_dual_gelu_mean(double s11); /* s11 / sqrt(2 pi (1 + s11)) */

/* Quadrature for any scalar function pair (s, s'); ds may be NULL (kdd not computed). */
typedef double (*ntk_scalar_fn)(double x, void *ctx);
/* fixed tensor Gauss-Hermite rule */
void ntk_dual_quad(const ntk_quad *q, ntk_scalar_fn s, ntk_scalar_fn ds, void *ctx, double s11,
                   double s12, double s22, double *kss, double *kdd);
double ntk_dual_quad_mean(const ntk_quad *q, ntk_scalar_fn s, void *ctx, double s11);
/* nested trapezoidal rule in (z1, z2) over [-9.5, 9.5]^2 (u = a z1, v = c z1 + e z2), the
 * step halved until the estimated error of each result is below tol times its
 * Cauchy-Schwarz scale sqrt(E[g(u)^2] E[g(v)^2]); err (may be NULL) receives the larger
 * of the two estimated relative errors.  s and ds must be analytic near the real axis. */
void ntk_dual_adapt(ntk_scalar_fn s, ntk_scalar_fn ds, void *ctx, double tol, double s11,
                    double s12, double s22, double *kss, double *kdd, double *err);
double ntk_dual_adapt_mean(ntk_scalar_fn s, void *ctx, double tol, double s11, double *err);
/* the same for an activation through ntk_act / ntk_act_deriv */
void ntk_dual_quad_act(const ntk_quad *q, int activation, double slope, double s11, double s12,
                       double s22, double *kss, double *kdd);
void ntk_dual_adapt_act(int activation, double slope, double tol, double s11, double s12,
                        double s22, double *kss, double *kdd, double *err);

/* Piecewise Chebyshev interpolant of (kss, kdd)(S, rho S, S) in rho on [-1, 1]:
 * panels by bisection until the last coefficients of both series on a panel are below
 * D->tol times kss(S,S,S) resp. kdd(S,S,S); err = the largest tail plus the node errors,
 * relative.  Degree NTK_CHEB_DEG on every panel. */
#define NTK_CHEB_DEG 16
#define NTK_CHEB_BUCKETS 512
typedef struct {
  double S, invS;
  int np;          /* panels, ordered */
  double *lo, *hi; /* panel bounds in rho */
  double *c;       /* np * 2 * (NTK_CHEB_DEG + 1): kss then kdd coefficients per panel */
  int bucket[NTK_CHEB_BUCKETS]; /* first panel meeting each of equal slices of [-1, 1] */
  double err;
} ntk_dual_cheb;

int ntk_dual_cheb_build(ntk_dual *D, double S, ntk_dual_cheb *C);
void ntk_dual_cheb_free(ntk_dual_cheb *C);

static inline void ntk_dual_cheb_eval(const ntk_dual_cheb *C, double s12, double *kss,
                                      double *kdd) {
  double rho = s12 * C->invS;
  rho = rho > 1.0 ? 1.0 : (rho < -1.0 ? -1.0 : rho);
  int b = (int)((rho + 1.0) * (0.5 * NTK_CHEB_BUCKETS));
  b = b >= NTK_CHEB_BUCKETS ? NTK_CHEB_BUCKETS - 1 : b;
  int p = C->bucket[b];
  while (p + 1 < C->np && rho > C->hi[p]) ++p;
  const double t = (2.0 * rho - (C->lo[p] + C->hi[p])) / (C->hi[p] - C->lo[p]), t2 = 2.0 * t;
  const double *a = C->c + (size_t)p * 2 * (NTK_CHEB_DEG + 1), *d = a + NTK_CHEB_DEG + 1;
  double b1 = 0.0, b2 = 0.0, e1 = 0.0, e2 = 0.0;
  for (int k = NTK_CHEB_DEG; k >= 1; --k) {
    double bn = a[k] + t2 * b1 - b2, en = d[k] + t2 * e1 - e2;
    b2 = b1, b1 = bn, e2 = e1, e1 = en;
  }
  *kss = a[0] + t * b1 - b2;
  *kdd = d[0] + t * e1 - e2;
}

/* acos on [-1, 1] to a few ulp without branches (the relu recursion's inner loop):
 * fdlibm's rational approximation of asin on [0, 1/2] and acos(y) = 2 asin(sqrt((1-y)/2))
 * above 1/2.  Arguments outside [-1, 1] are clamped. */
static inline double ntk_fast_acos(double x) {
  const double p0 = 1.66666666666666657415e-01, p1 = -3.25565818622400915405e-01,
               p2 = 2.01212532134862925881e-01, p3 = -4.00555345006794114027e-02,
               p4 = 7.91534994289814532176e-04, p5 = 3.47933107596021167570e-05,
               q1 = -2.40339491173441421878e+00, q2 = 2.02094576023350569471e+00,
               q3 = -6.88283971605453293030e-01, q4 = 7.70381505559019352791e-02;
  const double pi = 3.14159265358979311600e+00, pi_2 = 1.57079632679489655800e+00;
  x = x > 1.0 ? 1.0 : (x < -1.0 ? -1.0 : x);
  double y = x < 0.0 ? -x : x;
  int big = y > 0.5;
  double tb = 0.5 * (1.0 - y); /* exact for y >= 1/2 (Sterbenz) */
  double t = big ? tb : y * y;
  double s = big ? sqrt(tb) : y;
  double p = t * (p0 + t * (p1 + t * (p2 + t * (p3 + t * (p4 + t * p5)))));
  double q = 1.0 + t * (q1 + t * (q2 + t * (q3 + t * q4)));
  double as = s + s * (p / q); /* asin(s) */
  double r = big ? 2.0 * as : pi_2 - as;
  return x < 0.0 ? pi - r : r;
}

#endif
