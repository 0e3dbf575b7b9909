/* ntk_dual: dual activations, the Gaussian expectations the infinite-width recursion needs.
 *
 * For a 2 x 2 covariance (s11, s12; s12, s22) and (u, v) ~ N(0, Sigma):
 *   kss = E[s(u) s(v)],   kdd = E[s'(u) s'(v)],   and mean = E[s(u)] for u ~ N(0, s11).
 * Closed forms for relu (arc-cosine kernels), erf, gelu (x Phi(x)) and identity; tensor
 * Gauss-Hermite quadrature for tanh and for any activation given only s and s'.
 * Every function accepts a covariance on the edge of the cone: the correlation is clamped
 * to [-1, 1], a variance <= 0 means that variable is deterministically 0, and the results
 * are then the exact expectations of that degenerate law (finite, never NaN). */
#ifndef NTK_DUAL_H
#define NTK_DUAL_H
#include <math.h>

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

/* Closed forms. */
void ntk_dual_relu(double s11, double s12, double s22, double *kss, double *kdd);
void ntk_dual_erf(double s11, double s12, double s22, double *kss, double *kdd);
void ntk_dual_gelu(double s11, double s12, double s22, double *kss, double *kdd);
void ntk_dual_identity(double s11, double s12, double s22, double *kss, double *kdd);
double ntk_dual_relu_mean(double s11); /* sqrt(s11 / (2 pi)) */
double ntk_dual_gelu_mean(double s11); /* s11 / sqrt(2 pi (1 + s11)) */

/* Quadrature for any scalar function pair (s, s'); ds may be NULL (kdd not computed). */
typedef double (*ntk_scalar_fn)(double x, void *ctx);
void ntk_dual_quad(const ntk_quad *q, ntk_scalar_fn s, ntk_scalar_fn ds, void *ctx, double s11,
                   double s12, double s22, double *kss, double *kdd);
double ntk_dual_quad_mean(const ntk_quad *q, ntk_scalar_fn s, void *ctx, double s11);
/* Quadrature for an activation of ntk_config.h through ntk_act / ntk_act_deriv. */
void ntk_dual_quad_act(const ntk_quad *q, int activation, double s11, double s12, double s22,
                       double *kss, double *kdd);

/* 1 if the activation has a closed form here (no quadrature rule needed). */
int ntk_dual_closed_form(int activation);
/* Dispatch: closed form where there is one, quadrature with q otherwise (q must then be a
 * valid rule).  mean: exact 0 for the odd activations (erf, tanh, identity). */
void ntk_dual_eval(int activation, const ntk_quad *q, double s11, double s12, double s22,
                   double *kss, double *kdd);
double ntk_dual_mean(int activation, const ntk_quad *q, double s11);

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
