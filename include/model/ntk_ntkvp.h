/* ntk_ntkvp: the matrix-free NTK product v -> Theta v, for eigensolvers that never hold the
 * N x N kernel.  Theta = (1/k) sum_c J_c J_c^T (the mean over outputs, MODEL.md), so per
 * output c:
 *   1. delta = J_c^T v: ntk_model_backward from the seed S = v e_c^T; its visitor's (g, a)
 *      give each group's parameter direction dW = wscale g^T a, db = bscale sum_s g_s;
 *   2. J_c delta: a forward-mode (tangent) pass through the same network and mask that
 *      reuses the stored forward states: dz = c (h dW^T + dh W^T) + sb db, through the
 *      residual blocks (first derivatives of the activation only), the Fourier features
 *      (trainable G included), the projection and the output layer; column c of df.
 * Every step is an N x n x n (or N x n x p) matrix product on the grid: O(k N n^2 L) flops
 * and O(N n L) memory per product, never N^2.  The forward states are computed once at
 * create (one set per mask for ntk.network mask_average) and reused by every apply.
 *
 * Vectors: v and y are N x 1 ntk_dmats from ntk_dmat_create(g, N, 1, ...): rows block-cyclic
 * in blocks of g->nb over the grid rows (global row i on process row (i / nb) % nprow, local
 * row il is global ntk_dmat_row_l2g), the one column on process column 0 (ranks with
 * mycol > 0 hold no entries, nloc == 0).  Every function here is collective over g->comm. */
#ifndef NTK_NTKVP_H
#define NTK_NTKVP_H
#include <stdint.h>

#include "ntk_model.h"

typedef struct ntk_ntkvp ntk_ntkvp; /* opaque */

/* The operator for the kernel ntk_ntk_for_config assembles densely at training step `step`
 * (cfg->ntk.network: the evaluation network, the step's mask, or the mean over
 * ntk.mask_samples masks).  eval_fwd (may be NULL): the evaluation network's forward states
 * of X, borrowed (not copied, not freed; must outlive the operator) when the network is eval.
 * model and X are borrowed too. */
int ntk_ntkvp_create(const ntk_model *model, const ntk_dmat *X, long long step,
                     const ntk_forward *eval_fwd, ntk_ntkvp **op);
/* y := Theta v (v and y as above, distinct). */
int ntk_ntkvp_apply(ntk_ntkvp *op, const ntk_dmat *v, ntk_dmat *y);
/* The exact trace of Theta and (group_trace may be NULL; NTK_NGROUPS(L) doubles) each
 * parameter group's share, from the squared per-sample Jacobian norms: what the dense path's
 * group_trace gives, with no N^2 term.  Computed on the first call, then cached. */
int ntk_ntkvp_trace(ntk_ntkvp *op, double *trace, double *group_trace);
/* Floating-point operations of one apply summed over all ranks (the GEMMs; elementwise work
 * is O(N n L) and left out), for benchmarks and timers.  An apply's backward passes time and
 * count their own share (2 N n (k + n L) per output and network) in the backward phase, as
 * ntk_model_backward does everywhere; the directions and the tangent pass use no timer. */
int ntk_ntkvp_flops(const ntk_ntkvp *op, double *flops_per_apply);
void ntk_ntkvp_destroy(ntk_ntkvp **op);

/* Memory beyond ntk_model_memory (the forward states of one network and the backward's
 * signals are counted there) for the estimate, in bytes on process (0, 0); saturating:
 * the parameter direction (one copy of the weights), the tangent states, the seed and
 * output, the weight directions' gathered A^T B buffers, and with mask_average the forward
 * states of the other masks. */
void ntk_ntkvp_memory(const ntk_config *cfg, const ntk_grid *g, int N, int d, int k,
                      const ntk_model_bytes *model, int64_t *bytes);

#endif
