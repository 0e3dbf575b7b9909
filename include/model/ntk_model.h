/* ntk_model: the NTK-ECRN of MODEL.md - parameters, the forward pass and the backward
 * pass - on the distributed layout.  Weights are block-cyclic matrices (ntk_grid's
 * gathered products do the wide layer maps, PDGEMM the small ones); biases are short
 * vectors replicated on every rank.  The backward pass
 * starts from an output seed S (N x k): g_out = dF/df with dF = sum_{s,c} S_sc f_c(x_s),
 * so a unit column gives the NTK's per-output signals and the residual gives the loss
 * gradient.  It hands each parameter group's (signal g, layer input a) pair to a visitor
 * as soon as it exists, so the NTK never stores more than one layer of signals. */
#ifndef NTK_MODEL_H
#define NTK_MODEL_H
#include <stdint.h>

#include "ntk_config.h"
#include "ntk_grid.h"

/* Parameter groups, in the order used for per-layer contributions:
 * 0 = Fourier frequencies G (only when trainable), 1 = input layer (W0, b0),
 * 2..L+1 = residual blocks 1..L (W^l, b^l), L+2 = output layer (V, b_out). */
#define NTK_GROUP_FOURIER 0
#define NTK_GROUP_INPUT 1
#define NTK_GROUP_BLOCK(l) (1 + (l))
#define NTK_GROUP_OUTPUT(L) ((L) + 2)
#define NTK_NGROUPS(L) ((L) + 3)

typedef struct {
  const ntk_config *cfg;
  const ntk_grid *g;
  int d, m, p, n, L, k;
  int has_fourier, fourier_trainable, project, skip;
  int activation;
  double slope;      /* leaky_relu's negative-side slope */
  double sw, sb;     /* sigma_w, sigma_b */
  double *alpha;     /* alpha_l, l = 1..L stored at [l-1] */
  double *survival;  /* p_l */
  ntk_dmat G;        /* m x d (has_fourier) */
  ntk_dmat W0;       /* n x p (project) */
  double *b0;        /* n (project) */
  ntk_dmat *W;       /* L matrices n x n */
  double *b;         /* L x n, b + (l-1)*n is b^l */
  ntk_dmat V;        /* k x n */
  double *b_out;     /* k */
} ntk_model;

typedef struct {
  int N, L;
  double *xi;       /* the mask used (length L) */
  ntk_dmat u;       /* N x 2m: 2*pi*s * X G^T in both halves (has_fourier) */
  ntk_dmat phi;     /* N x p: the input features (aliases X when m == 0) */
  int phi_owned;
  ntk_dmat *h;      /* L+1: h^0 .. h^L (N x n) */
  ntk_dmat *z;      /* L: pre-activations z^1 .. z^L */
  ntk_dmat f;       /* N x k */
} ntk_forward;

/* Visitor: group as above; g (N x fan_out) = dF/dz of the group's map, a (N x fan_in)
 * its input; the weight Jacobian entry is wscale * g[s,i] * a[s,j], the bias one
 * bscale * g[s,i] (bscale 0: no bias).  For the output group g is the seed S itself. */
typedef int (*ntk_visit_fn)(int group, const ntk_dmat *g, const ntk_dmat *a, double wscale,
                            double bscale, void *ctx);

/* Collective: draw the parameters at initialisation.  Every entry is N(0,1) from
 * ntk_rng_normal(seed, stream, a, b, c) with (stream; a, b, c):
 *   G[k][j]   (FOURIER_G; k, j, 0)      W0[i][j] (W0; i, j, 0)   b0[i] (B0; i, 0, 0)
 *   W^l[i][j] (W; i, j, l)              b^l[i]   (B; l, i, 0)
 *   V[c][j]   (V; c, j, 0)              b_out[c] (B_OUT; c, 0, 0)
 * so any module (the analytic kernel's exact Fourier features) can regenerate them. */
int ntk_model_init(const ntk_config *cfg, const ntk_grid *g, int d, int k, ntk_model *model);
void ntk_model_free(ntk_model *model);
/* Total trainable parameter count. */
long long ntk_model_num_params(const ntk_model *model);

/* Masks: evaluation network (xi_l = p_l), or the training mask of `step`, sample `s`
 * (xi_l ~ Bernoulli(p_l) from NTK_STREAM_MASK; identical on every rank). */
void ntk_model_eval_mask(const ntk_model *model, double *xi);
void ntk_model_draw_mask(const ntk_model *model, long long step, long long sample, double *xi);
/* The same training mask from the configuration alone (no model needed). */
void ntk_mask_draw(const ntk_config *cfg, long long step, long long sample, double *xi);
/* The one network ntk.network: mask measures at `step`: depth.mask when given, else the
 * training mask of the step (sample 0).  The empirical and the analytic kernel both use it. */
void ntk_mask_measured(const ntk_config *cfg, long long step, double *xi);
/* The networks ntk.network measures at `step`: ntk_network_count of them (mask_samples for
 * mask_average, else 1).  Network q's mask goes into xi (returns 1), or 0 is returned for
 * the evaluation network (xi untouched).  The dense kernel and the matrix-free product
 * both take their masks from here, so they measure the same networks. */
int ntk_network_count(const ntk_config *cfg);
int ntk_network_mask(const ntk_config *cfg, long long step, int q, double *xi);

/* Collective forward pass on X (N x d); fwd is allocated here, free with
 * ntk_forward_free.  xi == NULL means the evaluation network. */
int ntk_model_forward(const ntk_model *model, const ntk_dmat *X, const double *xi,
                      ntk_forward *fwd);
void ntk_forward_free(ntk_forward *fwd);
/* Collective backward pass from seed S (N x k), visiting groups from the output down. */
int ntk_model_backward(const ntk_model *model, const ntk_dmat *X, const ntk_forward *fwd,
                       const ntk_dmat *S, ntk_visit_fn visit, void *ctx);

/* Memory of the network for the estimate (ntk_memory), in bytes on process (0, 0), the rank
 * holding the most; saturating (ntk_size.h).  d inputs, k outputs, N samples. */
typedef struct {
  int64_t params;  /* G, W0, W^l, V, and the biases every rank holds */
  int64_t fourier; /* a forward pass's u and phi (N x 2m each) */
  int64_t states;  /* h^0 .. h^L, z^1 .. z^L (N x n) and f (N x k) */
  int64_t signals; /* the backward's two N x n signals and its N x k seed; with trainable
                    * Fourier features their N x p and N x m signals */
  int64_t forward_panels;          /* the forward's gathered products (h W^T, phi W0^T) */
  ntk_panel_bytes backward_panels; /* the backward's dF/dh^{l-1} = c gz W^l */
} ntk_model_bytes;
void ntk_model_memory(const ntk_config *cfg, const ntk_grid *g, int N, int d, int k,
                      ntk_model_bytes *b);

/* Elementwise activation and derivative (shared with the analytic module). */
double ntk_act(int activation, double slope, double x);
double ntk_act_deriv(int activation, double slope, double x);

#endif
