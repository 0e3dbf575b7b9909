/* ntk_ntk: the empirical Neural Tangent Kernel Theta (N x N, block-cyclic), averaged over
 * the k outputs.  Two methods that must agree:
 *   structured - per parameter group, Gram matrices of the back-propagated signals and
 *                of the layer inputs (PDSYRK), combined by a Hadamard product:
 *                wscale^2 (G_g o G_a) + bscale^2 G_g;  O(L N^2 n) flops.
 *   jacobian   - the reference: each rank materialises its block of the Jacobian
 *                (its samples x its share of a parameter chunk) and Theta += J J^T.
 * Only the lower triangle is accumulated; the result is mirrored, so Theta is exactly
 * symmetric.  The structured method also gives the cross kernel Theta(X', X) of two sample
 * sets (the kernel-regime prediction of the test loss). */
#ifndef NTK_NTK_H
#define NTK_NTK_H
#include "ntk_model.h"

/* Collective.  theta must be an N x N dmat (overwritten).  xi: the mask (NULL = evaluation
 * network).  group_trace (NTK_NGROUPS(L) doubles, may be NULL) receives the trace of each
 * parameter group's contribution. */
int ntk_ntk_compute(const ntk_model *model, const ntk_dmat *X, const double *xi, int method,
                    double chunk_mb, ntk_dmat *theta, double *group_trace);
/* Collective: the same kernel from forward states F of X that the caller already has (the
 * loss's forward pass of the evaluation network: a measurement then runs one forward pass,
 * not two).  F is read, not freed. */
int ntk_ntk_compute_from(const ntk_model *model, const ntk_dmat *X, const ntk_forward *F,
                         int method, double chunk_mb, ntk_dmat *theta, double *group_trace);
/* Collective: the kernel the config's ntk.network asks for at training step `step`
 * (eval, the step's mask, or the average over ntk.mask_samples masks).  eval_fwd (may be
 * NULL): the evaluation network's forward states of X, used instead of a new forward pass
 * when the network is eval. */
int ntk_ntk_for_config(const ntk_model *model, const ntk_dmat *X, long long step,
                       const ntk_forward *eval_fwd, ntk_dmat *theta, double *group_trace);

/* Collective: the cross kernel Theta(Xl, X) (Xl->m x X->m, e.g. test x train) of the
 * network ntk.network measures at `step` (for mask_average, the mean of the masks'
 * cross kernels), by the structured method whatever ntk.method says: the Gram products
 * become L B^T of the two sets' signals and layer inputs, the left set's signals of one
 * output recorded by a backward pass over Xl first.  No symmetry: every entry computed. */
int ntk_ntk_cross_for_config(const ntk_model *model, const ntk_dmat *Xl, const ntk_dmat *X,
                             long long step, ntk_dmat *theta);

/* Memory of one kernel assembly beyond the network's forward states and signals
 * (ntk_model_memory), in bytes on process (0, 0); saturating. */
typedef struct {
  int64_t scratch;   /* structured: the Gram matrices (G_g, the cached G_a's) */
  int64_t panels;    /* structured: Gram and backward panels sharing their buffers;
                      * jacobian: replicated rows of one group, a Jacobian chunk, backward panels */
  int64_t transpose; /* ntk_dmat_symmetrize_lower's N x N transpose */
  int64_t average;   /* ntk.network mask_average: the accumulator of one mask's kernel */
} ntk_ntk_bytes;
void ntk_ntk_memory(const ntk_config *cfg, const ntk_grid *g, int N, int d, int k,
                    const ntk_model_bytes *model, ntk_ntk_bytes *b);
/* Memory of ntk_ntk_cross_for_config for Nl x N beyond the N set's forward states and
 * signals (ntk_model_memory of N), in bytes on process (0, 0), the result included;
 * saturating. */
int64_t ntk_ntk_cross_memory(const ntk_config *cfg, const ntk_grid *g, int Nl, int N, int d,
                             int k);

#endif
