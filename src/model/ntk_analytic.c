#include "ntk_analytic.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_error.h"
#include "ntk_log.h"
#include "ntk_model.h"
#include "ntk_rng.h"
#include "ntk_timer.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define INV_2PI (0.5 / M_PI)

int ntk_analytic_check(const ntk_config *cfg) {
  if (cfg->fourier.trainable && cfg->fourier.features > 0)
    return ntk_err_set(NTK_ERR_INPUT,
                       "analytic: fourier.trainable: the infinite-width kernel with trained "
                       "Fourier frequencies is not implemented (set fourier.trainable: false "
                       "or analytic.enabled: false)");
  const int act = cfg->model.activation;
  if (act < 0 || act >= NTK_ACT_COUNT)
    return ntk_err_set(NTK_ERR_INPUT, "analytic: model.activation: unknown activation %d", act);
  const int qo = cfg->analytic.quadrature_order;
  if (!ntk_dual_closed_form(act) && qo != 0 && (qo < 2 || qo > 1024))
    return ntk_err_set(NTK_ERR_INPUT,
                       "analytic.quadrature_order: %d is outside 2 .. 1024 (0: error-controlled; "
                       "used for %s)",
                       qo, ntk_config_enum_name("model.activation", act));
  if (cfg->model.depth < 0)
    return ntk_err_set(NTK_ERR_INPUT, "analytic: model.depth: %d is negative", cfg->model.depth);
  if (cfg->fourier.features > 0 && !(cfg->fourier.scale >= 0.0))
    return ntk_err_set(NTK_ERR_INPUT, "analytic: fourier.scale: %g is not >= 0",
                       cfg->fourier.scale);
  return NTK_OK;
}

/* ---------------------------------------------------------------- input kernel */

static double fill_fourier_g(int k, int j, void *ctx) {
  return ntk_rng_normal(*(const uint64_t *)ctx, NTK_STREAM_FOURIER_G, (uint64_t)k, (uint64_t)j, 0);
}

/* The replicated diagonal of a square dmat: each entry has one owner, so a sum of the
 * owners' contributions is exact and identical on every rank. */
static int replicated_diag(const ntk_dmat *K, double *diag) {
  double *part;
  NTK_ALLOC(part, K->m, "kernel diagonal");
  for (int jl = 0; jl < K->nloc; ++jl) {
    int il, j = ntk_dmat_col_l2g(K, jl);
    if (ntk_dmat_row_g2l(K, j, &il)) part[j] = K->a[il + (size_t)jl * K->lld];
  }
  MPI_Allreduce(part, diag, K->m, MPI_DOUBLE, MPI_SUM, K->g->comm);
  free(part);
  return NTK_OK;
}

/* part[i] += scale * (sum of this rank's entries of row i of A) */
static void add_row_sums(const ntk_dmat *A, double scale, double *part) {
  for (int jl = 0; jl < A->nloc; ++jl)
    for (int il = 0; il < A->mloc; ++il)
      part[ntk_dmat_row_l2g(A, il)] += scale * A->a[il + (size_t)jl * A->lld];
}

/* The exact Fourier features of X with the finite network's own frequencies (G[k][j]
 * from (FOURIER_G; k, j, 0)): the sin and cos halves as two N x m matrices U and C (same
 * local layout, so no redistribution), K_phi = (U U^T + C C^T) / 2m. */
static int fourier_features(const ntk_config *cfg, const ntk_grid *g, const ntk_dmat *X,
                            ntk_dmat *U, ntk_dmat *C) {
  const int N = X->m, d = X->n, m = cfg->fourier.features;
  ntk_dmat G;
  uint64_t seed = cfg->seed;
  NTK_CHECK(ntk_dmat_create(g, m, d, &G));
  ntk_dmat_fill(&G, fill_fourier_g, &seed);
  NTK_CHECK(ntk_dmat_create(g, N, m, U));
  NTK_CHECK(ntk_dmat_gemm('N', 'T', 2.0 * M_PI * cfg->fourier.scale, X, &G, 0.0, U));
  ntk_dmat_free(&G);
  NTK_CHECK(ntk_dmat_create(g, N, m, C));
  for (int jl = 0; jl < U->nloc; ++jl)
    for (int il = 0; il < U->mloc; ++il) {
      size_t e = il + (size_t)jl * U->lld;
      double u = U->a[e];
      U->a[e] = sin(u);
      C->a[e] = cos(u);
    }
  return NTK_OK;
}

/* K_phi with its lower triangle valid (PDSYRK leaves the upper one alone). */
static int input_kernel_lower(const ntk_config *cfg, const ntk_grid *g, const ntk_dmat *X,
                              ntk_dmat *K, double *diag, double *mean) {
  const int N = X->m, d = X->n, m = cfg->fourier.features;
  const double s = cfg->fourier.scale;
  double *part = NULL;
  if (mean) NTK_ALLOC(part, N, "feature means");
  NTK_CHECK(ntk_dmat_create(g, N, N, K));
  if (m == 0) {
    NTK_CHECK(ntk_dmat_syrk_lower(1.0 / d, X, 0.0, K));
    if (mean) add_row_sums(X, 1.0 / d, part);
  } else if (cfg->analytic.fourier == NTK_FOURIER_EXACT) {
    ntk_dmat U, C;
    NTK_CHECK(fourier_features(cfg, g, X, &U, &C));
    NTK_CHECK(ntk_dmat_syrk_lower(0.5 / m, &U, 0.0, K));
    NTK_CHECK(ntk_dmat_syrk_lower(0.5 / m, &C, 1.0, K));
    if (mean) {
      add_row_sums(&U, 0.5 / m, part);
      add_row_sums(&C, 0.5 / m, part);
    }
    ntk_dmat_free(&U);
    ntk_dmat_free(&C);
  } else {
    /* m -> infinity: 1/2 exp(-2 pi^2 s^2 |x - x'|^2) from the Gram matrix */
    double *nrm;
    NTK_ALLOC(nrm, N, "squared norms");
    NTK_CHECK(ntk_dmat_syrk_lower(1.0, X, 0.0, K));
    NTK_CHECK(replicated_diag(K, nrm));
    const double c = -2.0 * M_PI * M_PI * s * s;
    for (int jl = 0; jl < K->nloc; ++jl) {
      int j = ntk_dmat_col_l2g(K, jl);
      for (int il = 0; il < K->mloc; ++il) {
        int i = ntk_dmat_row_l2g(K, il);
        if (i < j) continue;
        double *kij = &K->a[il + (size_t)jl * K->lld];
        double r2 = nrm[i] + nrm[j] - 2.0 * (*kij);
        *kij = i == j ? 0.5 : 0.5 * exp(c * (r2 > 0.0 ? r2 : 0.0));
      }
    }
    if (mean) { /* E_g[sin] = 0, E_g[cos(2 pi s g.x)] = exp(-2 pi^2 s^2 |x|^2) */
      int own = g->rank == 0;
      for (int i = 0; own && i < N; ++i) part[i] = 0.5 * exp(c * nrm[i]);
    }
    free(nrm);
  }
  if (mean) {
    MPI_Allreduce(part, mean, N, MPI_DOUBLE, MPI_SUM, g->comm);
    free(part);
  }
  if (diag) NTK_CHECK(replicated_diag(K, diag));
  return NTK_OK;
}

/* part[i] += scale * (sum of squares of this rank's entries of row i of A) */
static void add_row_sqsums(const ntk_dmat *A, double scale, double *part) {
  for (int jl = 0; jl < A->nloc; ++jl)
    for (int il = 0; il < A->mloc; ++il) {
      const double v = A->a[il + (size_t)jl * A->lld];
      part[ntk_dmat_row_l2g(A, il)] += scale * v * v;
    }
}

/* The cross input kernel K_phi(Xl, X) (Nl x N, every entry) and each set's diagonal
 * K_phi(x, x) and feature mean (replicated), for the cross kernel. */
static int input_kernel_cross(const ntk_config *cfg, const ntk_grid *g, const ntk_dmat *Xl,
                              const ntk_dmat *X, ntk_dmat *K, double *diag_l, double *diag,
                              double *mean_l, double *mean) {
  const ntk_dmat *sets[2] = {Xl, X};
  double *dg[2] = {diag_l, diag}, *mn[2] = {mean_l, mean}, *sq[2] = {NULL, NULL};
  const int d = X->n, m = cfg->fourier.features;
  const int exact = m > 0 && cfg->analytic.fourier == NTK_FOURIER_EXACT, limit = m > 0 && !exact;
  const double c = -2.0 * M_PI * M_PI * cfg->fourier.scale * cfg->fourier.scale;
  ntk_dmat U[2] = {{0}}, C[2] = {{0}};
  int rc = ntk_dmat_create(g, Xl->m, X->m, K);
  /* per set: the row sums of squares (the diagonal; |x|^2 for the limit kernel) and the
   * row sums (the mean) of the features */
  for (int q = 0; q < 2 && !rc; ++q) {
    const int n = sets[q]->m;
    double *part = ntk_calloc(2 * (size_t)n, sizeof(double), "input kernel diagonal");
    if (!part) {
      rc = ntk_err_code();
      break;
    }
    if (exact) {
      if (!(rc = fourier_features(cfg, g, sets[q], &U[q], &C[q]))) {
        add_row_sqsums(&U[q], 0.5 / m, part);
        add_row_sqsums(&C[q], 0.5 / m, part);
        add_row_sums(&U[q], 0.5 / m, part + n);
        add_row_sums(&C[q], 0.5 / m, part + n);
      }
    } else {
      add_row_sqsums(sets[q], limit ? 1.0 : 1.0 / d, part);
      add_row_sums(sets[q], 1.0 / d, part + n);
    }
    MPI_Allreduce(MPI_IN_PLACE, part, 2 * n, MPI_DOUBLE, MPI_SUM, g->comm);
    for (int i = 0; i < n; ++i) {
      /* the limit kernel: diagonal 1/2, E_g[cos(2 pi s g.x)] / 2 = exp(-2 pi^2 s^2 |x|^2) / 2 */
      dg[q][i] = limit ? 0.5 : part[i];
      mn[q][i] = limit ? 0.5 * exp(c * part[i]) : part[n + i];
    }
    sq[q] = part;
  }
  if (!rc && m == 0) rc = ntk_dmat_gemm('N', 'T', 1.0 / d, Xl, X, 0.0, K);
  if (!rc && exact) {
    rc = ntk_dmat_gemm('N', 'T', 0.5 / m, &U[0], &U[1], 0.0, K);
    if (!rc) rc = ntk_dmat_gemm('N', 'T', 0.5 / m, &C[0], &C[1], 1.0, K);
  }
  if (!rc && limit) {
    rc = ntk_dmat_gemm('N', 'T', 1.0, Xl, X, 0.0, K);
    for (int jl = 0; !rc && jl < K->nloc; ++jl) {
      const double nj = sq[1][ntk_dmat_col_l2g(K, jl)];
      for (int il = 0; il < K->mloc; ++il) {
        double *kij = &K->a[il + (size_t)jl * K->lld];
        const double r2 = sq[0][ntk_dmat_row_l2g(K, il)] + nj - 2.0 * (*kij);
        *kij = 0.5 * exp(c * (r2 > 0.0 ? r2 : 0.0));
      }
    }
  }
  for (int q = 0; q < 2; ++q) {
    ntk_dmat_free(&U[q]);
    ntk_dmat_free(&C[q]);
    free(sq[q]);
  }
  NTK_CHECK(rc);
  return NTK_OK;
}

int ntk_analytic_input_kernel(const ntk_config *cfg, const ntk_grid *g, const ntk_dmat *X,
                              ntk_dmat *K, double *diag, double *mean) {
  NTK_CHECK(ntk_analytic_check(cfg));
  NTK_CHECK(input_kernel_lower(cfg, g, X, K, diag, mean));
  NTK_CHECK(ntk_dmat_symmetrize_lower(K));
  return NTK_OK;
}

/* ---------------------------------------------------------------- recursion */

typedef struct {
  int act, skip, project, L;
  double sw2, sb2;
  ntk_dual *D;
  const double *a;                /* a_l = xi_l alpha_l, l = 1..L at [l-1] (skip only) */
  const ntk_dual_cheb *const *ip; /* per layer: interpolant of the current mask, or NULL */
} rec_t;

/* Per-sample (diagonal) quantities of one mask for a list of samples, layer-major
 * ([l * cnt + t] for block l+1): Sigma^{l+1}(x,x), c_{l+1}(x), mu^l(x), and for relu
 * sqrt(Sigma) and its inverse (0 for a zero variance); then K^L(x,x), Theta^L(x,x). */
typedef struct {
  int cnt;
  double *S, *c, *mu, *r, *ir, *KL, *TL;
} side_t;

static int side_alloc(side_t *sd, int cnt, int L) {
  memset(sd, 0, sizeof *sd);
  sd->cnt = cnt;
  size_t n = (size_t)cnt * (L > 0 ? L : 1);
  NTK_ALLOC(sd->S, n, "analytic per-sample state");
  NTK_ALLOC(sd->c, n, "analytic per-sample state");
  NTK_ALLOC(sd->mu, n, "analytic per-sample state");
  NTK_ALLOC(sd->r, n, "analytic per-sample state");
  NTK_ALLOC(sd->ir, n, "analytic per-sample state");
  NTK_ALLOC(sd->KL, cnt, "analytic per-sample state");
  NTK_ALLOC(sd->TL, cnt, "analytic per-sample state");
  return NTK_OK;
}

static void side_free(side_t *sd) {
  free(sd->S), free(sd->c), free(sd->mu), free(sd->r), free(sd->ir), free(sd->KL), free(sd->TL);
  memset(sd, 0, sizeof *sd);
}

/* One layer's update of (K, Theta, mu) for a pair; the per-entry loops below repeat it
 * inline so that the diagonal and the off-diagonal follow the same arithmetic. */
/* Samples with the same Sigma^l(x,x) to rounding (the Fourier diagonal is 1/2 up to a
 * few ulp) share one evaluation: the duals' relative change over that spread is ~1e-16,
 * and the controlled path costs thousands of activation calls per evaluation. */
#define SAME_VARIANCE 4e-16
static void side_compute(const rec_t *R, side_t *sd, const double *kphi, const double *mean0) {
  const int cnt = sd->cnt, L = R->L;
  const double sw2 = R->sw2, sb2 = R->sb2;
  double memo[4 * 64]; /* per layer (for L <= 64): S, c, kss, kdd of the previous sample */
  const int use_memo = L <= 64;
  for (int l = 0; use_memo && l < L; ++l) memo[4 * l] = -1.0;
  for (int t = 0; t < cnt; ++t) {
    double K = R->project ? sw2 * kphi[t] + sb2 : kphi[t];
    double T = R->project ? K : 0.0;
    double mu = (R->project || !mean0) ? 0.0 : mean0[t];
    for (int l = 0; l < L; ++l) {
      size_t o = (size_t)l * cnt + t;
      double S = sw2 * K + sb2;
      double al = R->skip ? R->a[l] : 1.0;
      double r = S > 0.0 ? sqrt(S) : 0.0;
      sd->S[o] = S;
      sd->r[o] = r;
      sd->ir[o] = r > 0.0 ? 1.0 / r : 0.0;
      sd->mu[o] = mu;
      double c, kss, kdd, *me = memo + 4 * l;
      if (use_memo && fabs(S - me[0]) <= SAME_VARIANCE * S) {
        c = me[1], kss = me[2], kdd = me[3];
      } else {
        c = ntk_dual_mean(R->D, S);
        ntk_dual_eval(R->D, S, S, S, &kss, &kdd);
        if (use_memo) me[0] = S, me[1] = c, me[2] = kss, me[3] = kdd;
      }
      c = (R->skip && al != 0.0) ? c : 0.0;
      sd->c[o] = c;
      if (al == 0.0) continue; /* a dropped block is the identity */
      if (R->skip) {
        double a2 = al * al;
        K += a2 * kss + al * (mu * c + c * mu);
        T = T * (1.0 + a2 * sw2 * kdd) + a2 * S * kdd;
        mu += al * c;
      } else {
        K = kss;
        T = sw2 * kdd * T + S * kdd;
      }
    }
    sd->KL[t] = K;
    sd->TL[t] = T;
  }
}

/* Rows t0 .. t0+cnt-1 of `rows` against column sample jl of `cols`: K, T hold
 * (K^0, Theta^0) on entry and (K^L, Theta^L) on exit. */
static void column_generic(const rec_t *R, const side_t *rows, int t0, int cnt,
                           const side_t *cols, int jl, double *restrict K, double *restrict T) {
  const double sw2 = R->sw2, sb2 = R->sb2;
  for (int l = 0; l < R->L; ++l) {
    double al = R->skip ? R->a[l] : 1.0;
    if (al == 0.0) continue;
    const double a2 = al * al;
    const size_t orow = (size_t)l * rows->cnt + t0, ocol = (size_t)l * cols->cnt + jl;
    const double *Sr = rows->S + orow, *cr = rows->c + orow, *mur = rows->mu + orow;
    const double Sj = cols->S[ocol], cj = cols->c[ocol], muj = cols->mu[ocol];
    const ntk_dual_cheb *ip = R->ip ? R->ip[l] : NULL;
    for (int t = 0; t < cnt; ++t) {
      double s12 = sw2 * K[t] + sb2, kss, kdd;
      if (ip)
        ntk_dual_cheb_eval(ip, s12, &kss, &kdd);
      else
        ntk_dual_eval(R->D, Sr[t], s12, Sj, &kss, &kdd);
      if (R->skip) {
        K[t] += a2 * kss + al * (mur[t] * cj + cr[t] * muj);
        T[t] = T[t] * (1.0 + a2 * sw2 * kdd) + a2 * s12 * kdd;
      } else {
        K[t] = kss;
        T[t] = sw2 * kdd * T[t] + s12 * kdd;
      }
    }
  }
}

#ifdef __SSE2__
/* Two lanes of ntk_fast_acos, operation for operation (so bitwise the same values; ISO C
 * mode does not contract to FMA). */
static inline __m128d sel2(__m128d m, __m128d a, __m128d b) {
  return _mm_or_pd(_mm_and_pd(m, a), _mm_andnot_pd(m, b));
}
static inline __m128d acos2(__m128d x) {
  const __m128d one = _mm_set1_pd(1.0), half = _mm_set1_pd(0.5), zero = _mm_setzero_pd();
  x = _mm_min_pd(_mm_max_pd(x, _mm_set1_pd(-1.0)), one);
  __m128d y = _mm_andnot_pd(_mm_set1_pd(-0.0), x);
  __m128d big = _mm_cmpgt_pd(y, half);
  __m128d tb = _mm_mul_pd(half, _mm_sub_pd(one, y));
  __m128d t = sel2(big, tb, _mm_mul_pd(y, y));
  __m128d s = sel2(big, _mm_sqrt_pd(tb), y);
#define C2(v) _mm_set1_pd(v)
  __m128d p = _mm_add_pd(C2(-4.00555345006794114027e-02), _mm_mul_pd(t, _mm_add_pd(C2(7.91534994289814532176e-04), _mm_mul_pd(t, C2(3.47933107596021167570e-05)))));
  p = _mm_add_pd(C2(2.01212532134862925881e-01), _mm_mul_pd(t, p));
  p = _mm_add_pd(C2(-3.25565818622400915405e-01), _mm_mul_pd(t, p));
  p = _mm_add_pd(C2(1.66666666666666657415e-01), _mm_mul_pd(t, p));
  p = _mm_mul_pd(t, p);
  __m128d q = _mm_add_pd(C2(-6.88283971605453293030e-01), _mm_mul_pd(t, C2(7.70381505559019352791e-02)));
  q = _mm_add_pd(C2(2.02094576023350569471e+00), _mm_mul_pd(t, q));
  q = _mm_add_pd(C2(-2.40339491173441421878e+00), _mm_mul_pd(t, q));
  q = _mm_add_pd(one, _mm_mul_pd(t, q));
  __m128d as = _mm_add_pd(s, _mm_mul_pd(s, _mm_div_pd(p, q)));
  __m128d r = sel2(big, _mm_mul_pd(C2(2.0), as), _mm_sub_pd(C2(1.57079632679489655800e+00), as));
  return sel2(_mm_cmplt_pd(x, zero), _mm_sub_pd(C2(3.14159265358979311600e+00), r), r);
#undef C2
}
#endif

/* The same for relu, with the arc-cosine kernels inlined on the correlation
 * rho = Sigma12 / (r_i r_j) from per-sample 1/r; callers route zero variances to
 * column_generic.  Two entries at a time with SSE2 where available (the scalar tail does
 * the same arithmetic). */
static void column_relu(const rec_t *R, const side_t *rows, int t0, int cnt, const side_t *cols,
                        int jl, double *restrict K, double *restrict T) {
  const double sw2 = R->sw2, sb2 = R->sb2;
  const int skip = R->skip;
  for (int l = 0; l < R->L; ++l) {
    double al = skip ? R->a[l] : 1.0;
    if (al == 0.0) continue;
    const double a2 = al * al, a2sw2 = a2 * sw2;
    const size_t orow = (size_t)l * rows->cnt + t0, ocol = (size_t)l * cols->cnt + jl;
    const double *restrict rr = rows->r + orow, *restrict irr = rows->ir + orow;
    const double *restrict cr = rows->c + orow, *restrict mur = rows->mu + orow;
    const double rj = cols->r[ocol] * INV_2PI, irj = cols->ir[ocol], cj = cols->c[ocol],
                 muj = cols->mu[ocol];
    int t = 0;
#ifdef __SSE2__
    {
      const __m128d vsw2 = _mm_set1_pd(sw2), vsb2 = _mm_set1_pd(sb2), virj = _mm_set1_pd(irj),
                    vrj = _mm_set1_pd(rj), vpi = _mm_set1_pd(M_PI), one = _mm_set1_pd(1.0),
                    vinv = _mm_set1_pd(INV_2PI), va2 = _mm_set1_pd(a2), val = _mm_set1_pd(al),
                    va2sw2 = _mm_set1_pd(a2sw2), vcj = _mm_set1_pd(cj), vmuj = _mm_set1_pd(muj);
      for (; t + 2 <= cnt; t += 2) {
        __m128d Kv = _mm_loadu_pd(K + t), Tv = _mm_loadu_pd(T + t);
        __m128d s12 = _mm_add_pd(_mm_mul_pd(vsw2, Kv), vsb2);
        __m128d rho = _mm_mul_pd(s12, _mm_mul_pd(_mm_loadu_pd(irr + t), virj));
        rho = _mm_min_pd(_mm_max_pd(rho, _mm_set1_pd(-1.0)), one);
        __m128d pt = _mm_sub_pd(vpi, acos2(rho));
        __m128d sn = _mm_sqrt_pd(_mm_mul_pd(_mm_sub_pd(one, rho), _mm_add_pd(one, rho)));
        __m128d kss = _mm_mul_pd(_mm_mul_pd(_mm_loadu_pd(rr + t), vrj),
                                 _mm_add_pd(sn, _mm_mul_pd(pt, rho)));
        __m128d kdd = _mm_mul_pd(pt, vinv);
        if (skip) {
          __m128d mean = _mm_add_pd(_mm_mul_pd(_mm_loadu_pd(mur + t), vcj),
                                    _mm_mul_pd(_mm_loadu_pd(cr + t), vmuj));
          Kv = _mm_add_pd(Kv, _mm_add_pd(_mm_mul_pd(va2, kss), _mm_mul_pd(val, mean)));
          Tv = _mm_add_pd(_mm_mul_pd(Tv, _mm_add_pd(one, _mm_mul_pd(va2sw2, kdd))),
                          _mm_mul_pd(_mm_mul_pd(va2, s12), kdd));
        } else {
          Kv = kss;
          Tv = _mm_add_pd(_mm_mul_pd(_mm_mul_pd(vsw2, kdd), Tv), _mm_mul_pd(s12, kdd));
        }
        _mm_storeu_pd(K + t, Kv);
        _mm_storeu_pd(T + t, Tv);
      }
    }
#endif
    for (; t < cnt; ++t) {
      double s12 = sw2 * K[t] + sb2;
      double rho = s12 * (irr[t] * irj);
      rho = rho > 1.0 ? 1.0 : (rho < -1.0 ? -1.0 : rho);
      double pt = M_PI - ntk_fast_acos(rho);
      double sn = sqrt((1.0 - rho) * (1.0 + rho));
      double kss = rr[t] * rj * (sn + pt * rho), kdd = pt * INV_2PI;
      if (skip) {
        K[t] += a2 * kss + al * (mur[t] * cj + cr[t] * muj);
        T[t] = T[t] * (1.0 + a2sw2 * kdd) + a2 * s12 * kdd;
      } else {
        K[t] = kss;
        T[t] = sw2 * kdd * T[t] + s12 * kdd;
      }
    }
  }
}

/* 1 if some sample of `sd` (all of them: col < 0) has a zero variance in some layer */
static int side_has_zero(const side_t *sd, int L, int col) {
  for (int l = 0; l < L; ++l)
    for (int t = col < 0 ? 0 : col; t < (col < 0 ? sd->cnt : col + 1); ++t)
      if (sd->ir[(size_t)l * sd->cnt + t] == 0.0) return 1;
  return 0;
}

/* Interpolation in rho (ntk_dual_cheb) replaces the controlled quadrature of a layer when
 * every sample of my rows and columns has the same Sigma^l(x,x) to IP_SPREAD (Fourier
 * features: the diagonal is 1/2) and I have at least IP_MIN_PAIRS entries: building one
 * costs a few hundred direct evaluations.  Interpolants are kept by variance, so the masks
 * of a mask average that share a prefix share them. */
#define IP_CACHE 64
#define IP_MIN_PAIRS 1024
#define IP_SPREAD 1e-13

typedef struct {
  side_t rows, cols;
  double *kr, *kc, *mr, *mc; /* K_phi(x,x) and feature means of my rows / columns */
  int *t0;                   /* per local column: first local row on or below the diagonal */
  double *K, *T;             /* column scratch */
  double *a;                 /* a_l of the current mask */
  long long pairs;           /* my lower-triangle entries (every entry of a cross kernel) */
  int cross;                 /* rows and columns are different sample sets */
  const ntk_dual_cheb **ip;  /* per layer, into cache */
  ntk_dual_cheb cache[IP_CACHE];
  int ncache;
} work_t;

static void work_free(work_t *w) {
  side_free(&w->rows);
  side_free(&w->cols);
  free(w->kr), free(w->kc), free(w->mr), free(w->mc), free(w->t0), free(w->K), free(w->T);
  free(w->a);
  free(w->ip);
  for (int k = 0; k < w->ncache; ++k) ntk_dual_cheb_free(&w->cache[k]);
  memset(w, 0, sizeof *w);
}

/* diag_r, mean_r: the row samples' K_phi(x,x) and feature means; diag_c, mean_c the
 * column samples' (the same arrays for a symmetric kernel, then cross = 0); means may be
 * NULL. */
static int work_alloc(work_t *w, const ntk_dmat *Kphi, const double *diag_r, const double *diag_c,
                      const double *mean_r, const double *mean_c, int cross, int L) {
  const int mloc = Kphi->mloc, nloc = Kphi->nloc;
  NTK_CHECK(side_alloc(&w->rows, mloc, L));
  NTK_CHECK(side_alloc(&w->cols, nloc, L));
  NTK_ALLOC(w->kr, mloc, "analytic row state");
  NTK_ALLOC(w->mr, mloc, "analytic row state");
  NTK_ALLOC(w->kc, nloc, "analytic column state");
  NTK_ALLOC(w->mc, nloc, "analytic column state");
  NTK_ALLOC(w->t0, nloc, "analytic column state");
  NTK_ALLOC(w->K, mloc, "analytic column scratch");
  NTK_ALLOC(w->T, mloc, "analytic column scratch");
  NTK_ALLOC(w->a, L > 0 ? L : 1, "block scales");
  NTK_ALLOC(w->ip, L > 0 ? L : 1, "interpolants");
  w->cross = cross;
  for (int il = 0; il < mloc; ++il) {
    int i = ntk_dmat_row_l2g(Kphi, il);
    w->kr[il] = diag_r[i];
    w->mr[il] = mean_r ? mean_r[i] : 0.0;
  }
  for (int jl = 0; jl < nloc; ++jl) {
    int j = ntk_dmat_col_l2g(Kphi, jl), t = 0;
    w->kc[jl] = diag_c[j];
    w->mc[jl] = mean_c ? mean_c[j] : 0.0;
    while (!cross && t < mloc && ntk_dmat_row_l2g(Kphi, t) < j) ++t;
    w->t0[jl] = t;
    w->pairs += mloc - t;
  }
  return NTK_OK;
}

/* the common Sigma^l(x,x) of all my samples, or 0 if they differ by more than IP_SPREAD */
static double common_variance(const work_t *w, int l) {
  const side_t *sd[2] = {&w->rows, &w->cols};
  double S0 = -1.0;
  for (int k = 0; k < 2; ++k)
    for (int t = 0; t < sd[k]->cnt; ++t) {
      double S = sd[k]->S[(size_t)l * sd[k]->cnt + t];
      if (S0 < 0.0) S0 = S;
      if (!(fabs(S - S0) <= IP_SPREAD * S0)) return 0.0;
    }
  return S0 > 0.0 ? S0 : 0.0;
}

static int choose_interpolants(const rec_t *R, work_t *w) {
  for (int l = 0; l < R->L; ++l) w->ip[l] = NULL;
  if (ntk_dual_closed_form(R->act) || R->D->q || w->pairs < IP_MIN_PAIRS) return NTK_OK;
  for (int l = 0; l < R->L; ++l) {
    if (R->skip && R->a[l] == 0.0) continue;
    double S = common_variance(w, l);
    if (S == 0.0) continue;
    for (int k = 0; k < w->ncache && !w->ip[l]; ++k)
      if (fabs(w->cache[k].S - S) <= IP_SPREAD * S) w->ip[l] = &w->cache[k];
    if (w->ip[l] || w->ncache == IP_CACHE) continue; /* a full cache: direct evaluation */
    NTK_CHECK(ntk_dual_cheb_build(R->D, S, &w->cache[w->ncache]));
    w->ip[l] = &w->cache[w->ncache++];
  }
  return NTK_OK;
}

/* nngp += weight * K_f(xi), ntk += weight * Theta_inf(xi) on my lower-triangle entries
 * (every entry of a cross kernel). */
static int accumulate_mask(const rec_t *R, work_t *w, const ntk_dmat *Kphi, double weight,
                           ntk_dmat *nngp, ntk_dmat *ntk) {
  const double sw2 = R->sw2, sb2 = R->sb2;
  side_compute(R, &w->rows, w->kr, R->project ? NULL : w->mr);
  side_compute(R, &w->cols, w->kc, R->project ? NULL : w->mc);
  NTK_CHECK(choose_interpolants(R, w));
  const int rows_zero = side_has_zero(&w->rows, R->L, -1);
  for (int jl = 0; jl < Kphi->nloc; ++jl) {
    const int j = ntk_dmat_col_l2g(Kphi, jl), t0 = w->t0[jl], cnt = Kphi->mloc - t0;
    if (cnt <= 0) continue;
    const double *kp = Kphi->a + (size_t)jl * Kphi->lld + t0;
    for (int t = 0; t < cnt; ++t) {
      double k0 = R->project ? sw2 * kp[t] + sb2 : kp[t];
      w->K[t] = k0;
      w->T[t] = R->project ? k0 : 0.0;
    }
    if (R->act == NTK_ACT_RELU && !rows_zero && !side_has_zero(&w->cols, R->L, jl))
      column_relu(R, &w->rows, t0, cnt, &w->cols, jl, w->K, w->T);
    else
      column_generic(R, &w->rows, t0, cnt, &w->cols, jl, w->K, w->T);
    double *outk = nngp->a + (size_t)jl * nngp->lld + t0;
    double *outt = ntk->a + (size_t)jl * ntk->lld + t0;
    /* the diagonal can only be the first row of the suffix; there take the per-sample
     * values, computed with rho = 1 exactly (relu's kdd has infinite slope there) */
    if (!w->cross && ntk_dmat_row_l2g(Kphi, t0) == j) {
      w->K[0] = w->rows.KL[t0];
      w->T[0] = w->rows.TL[t0];
    }
    for (int t = 0; t < cnt; ++t) {
      double kf = sw2 * w->K[t] + sb2;
      outk[t] += weight * kf;
      outt[t] += weight * (kf + sw2 * w->T[t]);
    }
  }
  return NTK_OK;
}

/* Blocks with 0 < p_l < 1 are the only random ones; enumerate those. */
static int count_free(const double *p, int L) {
  int f = 0;
  for (int l = 0; l < L; ++l) f += p[l] > 0.0 && p[l] < 1.0;
  return f;
}

/* The recursion on every pair of a symmetric input kernel (cross = 0: lower triangle,
 * then mirrored; diag_c, mean_c are diag_r, mean_r) or of a cross one (rows and columns
 * are two sample sets, each with its own diagonal and means). */
static int recursion(const ntk_config *cfg, const ntk_dmat *Kphi, const double *diag_r,
                     const double *diag_c, const double *mean_r, const double *mean_c, int cross,
                     int mode, const double *xi, ntk_dmat *nngp, ntk_dmat *ntk,
                     ntk_analytic_info *info) {
  memset(nngp, 0, sizeof *nngp);
  memset(ntk, 0, sizeof *ntk);
  NTK_CHECK(ntk_analytic_check(cfg));
  const ntk_grid *g = Kphi->g;
  const int L = cfg->model.depth;
  if (mode != NTK_NETWORK_EVAL && mode != NTK_NETWORK_MASK && mode != NTK_NETWORK_MASK_AVERAGE)
    return ntk_err_set(NTK_ERR_INTERNAL, "analytic: unknown network mode %d", mode);
  if (mode == NTK_NETWORK_MASK && !xi && L > 0)
    return ntk_err_set(NTK_ERR_INTERNAL, "analytic: network mode mask without a mask");
  if (!cfg->fourier.project && (!mean_r || !mean_c))
    return ntk_err_set(NTK_ERR_INTERNAL, "analytic: fourier.project false needs feature means");

  rec_t R = {0};
  R.act = cfg->model.activation;
  R.skip = cfg->residual.skip;
  R.project = cfg->fourier.project;
  R.L = L;
  R.sw2 = cfg->model.weight_std * cfg->model.weight_std;
  R.sb2 = cfg->model.bias_std * cfg->model.bias_std;

  ntk_quad q = {0};
  ntk_dual D;
  work_t w = {0};
  double *alpha = NULL, *p = NULL;
  int rc = NTK_OK;
  if (!ntk_dual_closed_form(R.act) && cfg->analytic.quadrature_order > 0)
    rc = ntk_quad_create(cfg->analytic.quadrature_order, &q);
  if (!rc) rc = ntk_dmat_create(g, Kphi->m, Kphi->n, nngp);
  if (!rc) rc = ntk_dmat_create(g, Kphi->m, Kphi->n, ntk);
  if (!rc) rc = work_alloc(&w, Kphi, diag_r, diag_c, mean_r, mean_c, cross, L);
  if (!rc && !(alpha = ntk_calloc(L > 0 ? L : 1, sizeof *alpha, "block scales"))) rc = ntk_err_code();
  if (!rc && !(p = ntk_calloc(L > 0 ? L : 1, sizeof *p, "survival"))) rc = ntk_err_code();
  rc = ntk_err_sync(g->comm, rc);
  if (rc) goto done;
  ntk_dual_init(&D, R.act, cfg->model.leaky_slope, q.n ? &q : NULL);
  R.D = &D;
  R.a = w.a;
  R.ip = w.ip;
  for (int l = 1; l <= L; ++l) {
    alpha[l - 1] = ntk_config_alpha(cfg, l);
    p[l - 1] = ntk_config_survival(cfg, l);
  }

  int used = 0;
  if (!R.skip || mode == NTK_NETWORK_EVAL) {
    /* the plain MLP uses neither alpha nor xi: every mask gives the same kernel */
    for (int l = 0; l < L; ++l) w.a[l] = p[l] * alpha[l];
    rc = accumulate_mask(&R, &w, Kphi, 1.0, nngp, ntk);
    used = 1;
  } else if (mode == NTK_NETWORK_MASK) {
    for (int l = 0; l < L; ++l) w.a[l] = xi[l] * alpha[l];
    rc = accumulate_mask(&R, &w, Kphi, 1.0, nngp, ntk);
    used = 1;
  } else if (count_free(p, L) <= cfg->analytic.enumerate_depth) {
    int nf = count_free(p, L);
    for (long long bits = 0; bits < (1LL << nf); ++bits) {
      double weight = 1.0;
      for (int l = 0, f = 0; l < L; ++l) {
        double x;
        if (p[l] <= 0.0) {
          x = 0.0;
        } else if (p[l] >= 1.0) {
          x = 1.0;
        } else {
          x = (double)((bits >> f++) & 1);
          weight *= x > 0.0 ? p[l] : 1.0 - p[l];
        }
        w.a[l] = x * alpha[l];
      }
      if ((rc = accumulate_mask(&R, &w, Kphi, weight, nngp, ntk))) break;
      ++used;
    }
  } else {
    const int S = cfg->analytic.mask_samples;
    if (S < 1) {
      rc = ntk_err_set(NTK_ERR_INPUT, "analytic.mask_samples: %d, need >= 1", S);
      goto done;
    }
    for (int s = 0; s < S; ++s) {
      for (int l = 1; l <= L; ++l) {
        double u = ntk_rng_uniform(cfg->seed, NTK_STREAM_MASK, (uint64_t)l, (uint64_t)s, 1);
        double x = (p[l - 1] >= 1.0 || u < p[l - 1]) ? 1.0 : 0.0;
        w.a[l - 1] = x * alpha[l - 1];
      }
      if ((rc = accumulate_mask(&R, &w, Kphi, 1.0 / S, nngp, ntk))) break;
    }
    used = S;
  }
  rc = ntk_err_sync(g->comm, rc);
  if (rc) goto done;
  ntk_log_debug("analytic kernel: %d mask(s)", used);
  if (info) {
    /* the largest estimate of any rank (NaN, a fixed rule, wins) */
    double e = D.err, emax = 0.0;
    int fixed = isnan(e), anyfixed = 0;
    e = fixed ? 0.0 : e;
    MPI_Allreduce(&e, &emax, 1, MPI_DOUBLE, MPI_MAX, g->comm);
    MPI_Allreduce(&fixed, &anyfixed, 1, MPI_INT, MPI_MAX, g->comm);
    info->n_masks = used;
    info->dual_error = anyfixed ? NAN : emax;
    info->closed_form = ntk_dual_closed_form(R.act);
  }
  if (!cross) rc = ntk_dmat_symmetrize_lower(nngp);
  if (!rc && !cross) rc = ntk_dmat_symmetrize_lower(ntk);

done:
  work_free(&w);
  ntk_quad_free(&q);
  free(alpha);
  free(p);
  if (rc) {
    ntk_dmat_free(nngp);
    ntk_dmat_free(ntk);
    ntk_err_trace(__FILE__, __LINE__, __func__);
  }
  return rc;
}

int ntk_analytic_from_input(const ntk_config *cfg, const ntk_dmat *Kphi, const double *diag,
                            const double *mean0, int mode, const double *xi, ntk_dmat *nngp,
                            ntk_dmat *ntk, ntk_analytic_info *info) {
  NTK_CHECK(recursion(cfg, Kphi, diag, diag, mean0, mean0, 0, mode, xi, nngp, ntk, info));
  return NTK_OK;
}

int ntk_analytic_cross(const ntk_config *cfg, const ntk_grid *g, const ntk_dmat *Xl,
                       const ntk_dmat *X, int mode, const double *xi, ntk_dmat *ntk) {
  NTK_CHECK(ntk_analytic_check(cfg));
  ntk_timer_start(NTK_PHASE_ANALYTIC);
  const int Nl = Xl->m, N = X->m;
  double *dl = ntk_calloc(2 * ((size_t)Nl + N), sizeof(double), "kernel diagonals");
  ntk_dmat K = {0}, nngp = {0};
  int rc = dl ? NTK_OK : ntk_err_code();
  rc = ntk_err_sync(g->comm, rc);
  double *d = rc ? NULL : dl + Nl, *ml = rc ? NULL : d + N, *m = rc ? NULL : ml + Nl;
  if (!rc) rc = input_kernel_cross(cfg, g, Xl, X, &K, dl, d, ml, m);
  if (!rc) rc = recursion(cfg, &K, dl, d, ml, m, 1, mode, xi, &nngp, ntk, NULL);
  ntk_dmat_free(&nngp);
  ntk_dmat_free(&K);
  free(dl);
  ntk_timer_stop(NTK_PHASE_ANALYTIC);
  if (rc) ntk_err_trace(__FILE__, __LINE__, __func__);
  return rc;
}

int ntk_analytic_compute(const ntk_config *cfg, const ntk_grid *g, const ntk_dmat *X, int mode,
                         const double *xi, ntk_dmat *nngp, ntk_dmat *ntk,
                         ntk_analytic_info *info) {
  NTK_CHECK(ntk_analytic_check(cfg));
  ntk_timer_start(NTK_PHASE_ANALYTIC);
  const int N = X->m;
  double *diag = NULL, *mean0 = NULL;
  ntk_dmat K = {0};
  int rc = NTK_OK;
  if (!(diag = ntk_calloc(N, sizeof *diag, "kernel diagonal"))) rc = ntk_err_code();
  if (!rc && !cfg->fourier.project &&
      !(mean0 = ntk_calloc(N, sizeof *mean0, "feature means")))
    rc = ntk_err_code();
  rc = ntk_err_sync(g->comm, rc);
  if (!rc) rc = input_kernel_lower(cfg, g, X, &K, diag, mean0);
  if (!rc) rc = ntk_analytic_from_input(cfg, &K, diag, mean0, mode, xi, nngp, ntk, info);
  ntk_dmat_free(&K);
  free(diag);
  free(mean0);
  ntk_timer_stop(NTK_PHASE_ANALYTIC);
  if (rc) ntk_err_trace(__FILE__, __LINE__, __func__);
  return rc;
}
