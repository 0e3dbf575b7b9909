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

#endif
