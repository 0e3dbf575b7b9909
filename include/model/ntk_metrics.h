/* ntk_metrics: the scalar metrics of MODEL.md computed from a kernel, its spectrum, the
 * targets and the network outputs.  Every function is collective and returns the same
 * value on every rank.  Metrics that a top-K spectrum cannot give (lambda_min, the
 * condition number) are NaN when only the top K < N eigenvalues are known; the effective
 * rank and trace come from the matrix itself ((tr Theta)^2 / ||Theta||_F^2), so they are
 * exact either way. */
#ifndef NTK_METRICS_H
#define NTK_METRICS_H
#include "ntk_grid.h"

typedef struct {
  double lambda_max, lambda_min, condition_number, effective_rank, trace, frobenius;
  double alignment;
} ntk_kernel_metrics;

/* w: K eigenvalues descending (K == N: the full spectrum). */
int ntk_metrics_kernel(const ntk_dmat *theta, const double *w, int K, const ntk_dmat *Y,
                       ntk_kernel_metrics *km);
/* Loss (1/2N) sum ||f - y||^2; accuracy (argmax agreement) when classification, else NaN. */
int ntk_metrics_loss(const ntk_dmat *f, const ntk_dmat *Y, int classification, double *loss,
                     double *accuracy);

/* Additions for training (issue 4). */
/* Collective: 1 on every rank when every entry of A is finite. */
int ntk_metrics_all_finite(const ntk_dmat *A);
/* Collective: R := F - Y (N x k, same layout), the residual. */
int ntk_metrics_residual(const ntk_dmat *f, const ntk_dmat *Y, ntk_dmat *R);
/* Collective: energy[i] = sum_c (u_i^T r_c)^2 for the K columns u_i of U (N x K) and the k
 * columns r_c of R (N x k); replicated on every rank.  *total (may be NULL) = ||R||_F^2. */
int ntk_metrics_residual_energy(const ntk_dmat *U, const ntk_dmat *R, double *energy,
                                double *total);
/* max_i |w_i - w0_i| over K values (absolute, not scaled). */
double ntk_metrics_max_shift(const double *w, const double *w0, int K);
/* Collective: the spectral norm ||A - B||_2 of two symmetric N x N matrices (all
 * eigenvalues of the difference with the named eigensolver, no vectors). */
int ntk_metrics_diff_norm2(const char *solver, const ntk_dmat *A, const ntk_dmat *B,
                           double *norm2);
/* The rounding floor of an N x N kernel's spectrum, 64 eps N |lambda_max| (the
 * eigensolver's backward error, with a margin): eigenvalues below it are noise. */
double ntk_metrics_rounding_floor(int N, double lambda_max);
/* Weyl's inequality max_i |lambda_i(A) - lambda_i(B)| <= ||A - B||_2 with the rounding
 * floor as allowance: 1 if it holds. */
int ntk_metrics_weyl_holds(double max_shift, double norm2, int N, double lambda_max);

#endif
