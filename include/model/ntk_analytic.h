/* ntk_analytic: the infinite-width (n -> infinity) NNGP and NTK of the NTK-ECRN of
 * MODEL.md ("The infinite-width kernel"), computed directly in the block-cyclic N x N
 * layout of the grid.
 *
 * The input kernel K_phi is a distributed Gram matrix (PDSYRK); everything after it is
 * elementwise on each rank's own lower-triangle entries, using per-sample diagonal
 * quantities (Sigma^l(x,x), c_l(x), mu^l(x)) that each rank computes for the samples of
 * its rows and columns.  No rank gathers X or an N x N matrix.  See docs/ANALYTIC.md. */
#ifndef NTK_ANALYTIC_H
#define NTK_ANALYTIC_H
#include "ntk_config.h"
#include "ntk_dual.h"
#include "ntk_grid.h"

/* mode: NTK_NETWORK_EVAL (xi_l = p_l), NTK_NETWORK_MASK (xi given, length L),
 * NTK_NETWORK_MASK_AVERAGE (E_xi over Bernoulli(p_l) masks: exact enumeration of the 2^L
 * masks when L <= analytic.enumerate_depth, else analytic.mask_samples Monte Carlo masks
 * xi_l = [ntk_rng_uniform(seed, NTK_STREAM_MASK, l, s, 1) < p_l], l = 1..L, s = 0..S-1). */

/* What a computation used and achieved. */
typedef struct {
  int n_masks;       /* masks evaluated */
  int closed_form;   /* the activation's duals are closed forms (dual_error is rounding) */
  double dual_error; /* largest estimated relative error of any Gaussian expectation used
                      * (quadrature and interpolation; 0 for closed forms; NaN with a fixed
                      * analytic.quadrature_order, whose error is not estimated) */
} ntk_analytic_info;

/* Not collective.  NTK_ERR_INPUT with a one-line message for a configuration the analytic
 * path does not cover (fourier.trainable true, an unknown activation, ...). */
int ntk_analytic_check(const ntk_config *cfg);

/* Collective.  nngp = K_f and ntk = Theta_inf, created here as N x N dmats (N = X->m),
 * exactly symmetric.  X is the N x d input (raw, before Fourier features).  info->n_masks (info may
 * be NULL) is the number of masks evaluated: 1 for eval/mask, the number of masks
 * with nonzero probability under enumeration, analytic.mask_samples under Monte Carlo;
 * info (may be NULL) also the error estimate, the same on every rank.
 * residual.skip false (plain MLP) does not use alpha_l or xi_l, as in the network. */
int ntk_analytic_compute(const ntk_config *cfg, const ntk_grid *g, const ntk_dmat *X, int mode,
                         const double *xi, ntk_dmat *nngp, ntk_dmat *ntk, ntk_analytic_info *info);

/* Collective.  The cross kernel Theta_inf(Xl, X) (Xl->m x X->m, e.g. test x train,
 * created here) of the same network and mode: the same recursion on every pair (x', x),
 * each set with its own per-sample diagonal quantities. */
int ntk_analytic_cross(const ntk_config *cfg, const ntk_grid *g, const ntk_dmat *Xl,
                       const ntk_dmat *X, int mode, const double *xi, ntk_dmat *ntk);

/* Collective.  The input kernel K_phi (created here, N x N, exactly symmetric) per
 * analytic.fourier, with its diagonal (length N, replicated on every rank; may be NULL)
 * and the per-sample feature mean (1/p) sum_j phi_j(x_i) (length N, replicated; may be
 * NULL) that the recursion needs when fourier.project is false. */
int ntk_analytic_input_kernel(const ntk_config *cfg, const ntk_grid *g, const ntk_dmat *X,
                              ntk_dmat *K, double *diag, double *mean);

/* Collective.  The recursion alone, from a given input kernel: only the lower triangle of
 * Kphi is read; diag and mean0 as from ntk_analytic_input_kernel (mean0 may be NULL when
 * fourier.project is true).  nngp and ntk are created here.  Used by the benchmark to time
 * the elementwise phase on its own. */
int ntk_analytic_from_input(const ntk_config *cfg, const ntk_dmat *Kphi, const double *diag,
                            const double *mean0, int mode, const double *xi, ntk_dmat *nngp,
                            ntk_dmat *ntk, ntk_analytic_info *info);

#endif
