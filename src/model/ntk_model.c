#include "ntk_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_error.h"
#include "ntk_rng.h"
#include "ntk_scalapack.h"
#include "ntk_size.h"
#include "ntk_timer.h"

static const int ione = 1;

/* logistic 1/(1+e^-x) without overflow for either sign */
static inline double logistic(double x) {
  if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

double ntk_act(int activation, double slope, double x) {
  switch (activation) {
    case NTK_ACT_RELU: return x > 0.0 ? x : 0.0;
    case NTK_ACT_ERF: return erf(x);
    case NTK_ACT_TANH: return tanh(x);
    case NTK_ACT_GELU: return 0.5 * x * erfc(-x * M_SQRT1_2);
    case NTK_ACT_LEAKY_RELU: return x > 0.0 ? x : slope * x;
    case NTK_ACT_ABS: return fabs(x);
    case NTK_ACT_SIN: return sin(x);
    case NTK_ACT_COS: return cos(x);
    case NTK_ACT_SOFTPLUS: return (x > 0.0 ? x : 0.0) + log1p(exp(-fabs(x)));
    case NTK_ACT_SILU: return x * logistic(x);
    case NTK_ACT_SIGMOID: return logistic(x);
    case NTK_ACT_SIGN: return x > 0.0 ? 1.0 : (x < 0.0 ? -1.0 : 0.0);
    default: return x;
  }
}

/* At a kink the derivative is the left one (relu'(0) = 0, leaky_relu'(0) = slope,
 * abs'(0) = -1); sign' is 0 everywhere, as automatic differentiation has it. */
double ntk_act_deriv(int activation, double slope, double x) {
  switch (activation) {
    case NTK_ACT_RELU: return x > 0.0 ? 1.0 : 0.0;
    case NTK_ACT_ERF: return M_2_SQRTPI * exp(-x * x);
    case NTK_ACT_TANH: {
      double t = tanh(x);
      return 1.0 - t * t;
    }
    case NTK_ACT_GELU: return 0.5 * erfc(-x * M_SQRT1_2) + x * exp(-0.5 * x * x) * 0.5 * M_2_SQRTPI * M_SQRT1_2;
    case NTK_ACT_LEAKY_RELU: return x > 0.0 ? 1.0 : slope;
    case NTK_ACT_ABS: return x > 0.0 ? 1.0 : -1.0;
    case NTK_ACT_SIN: return cos(x);
    case NTK_ACT_COS: return -sin(x);
    case NTK_ACT_SOFTPLUS: return logistic(x);
    case NTK_ACT_SILU: {
      double s = logistic(x);
      return s + x * s * logistic(-x);
    }
    case NTK_ACT_SIGMOID: return logistic(x) * logistic(-x);
    case NTK_ACT_SIGN: return 0.0;
    default: return 1.0;
  }
}

/* A matrix of N(0,1) entries (i, j) -> ntk_rng_normal(seed, stream, i, j, c), filled
 * four columns per Philox block: initialisation of very wide layers is RNG-bound. */
static int normal_dmat(const ntk_grid *g, int m, int n, uint64_t seed, uint32_t stream, uint64_t c,
                       ntk_dmat *A) {
  NTK_CHECK(ntk_dmat_create(g, m, n, A));
  for (int il = 0; il < A->mloc; ++il) {
    const uint64_t i = (uint64_t)ntk_dmat_row_l2g(A, il);
    uint64_t q = UINT64_MAX;
    double z[4];
    for (int jl = 0; jl < A->nloc; ++jl) {
      const uint64_t j = (uint64_t)ntk_dmat_col_l2g(A, jl);
      if (j / 4 != q) {
        q = j / 4;
        ntk_rng_normal4(seed, stream, i, q, c, z);
      }
      A->a[il + (size_t)jl * A->lld] = z[j % 4];
    }
  }
  return NTK_OK;
}

int ntk_model_init(const ntk_config *cfg, const ntk_grid *g, int d, int k, ntk_model *M) {
  memset(M, 0, sizeof *M);
  M->cfg = cfg;
  M->g = g;
  M->d = d;
  M->k = k;
  M->m = cfg->fourier.features;
  M->has_fourier = M->m > 0;
  M->fourier_trainable = M->has_fourier && cfg->fourier.trainable;
  M->p = ntk_config_input_dim(cfg, d);
  M->project = cfg->fourier.project;
  M->n = ntk_config_width(cfg, d);
  if (!M->project && cfg->model.width != M->p)
    return ntk_err_set(NTK_ERR_INPUT,
                       "model.width: with fourier.project false the width is dim phi(x) = %d, "
                       "got %d",
                       M->p, cfg->model.width);
  M->L = cfg->model.depth;
  M->skip = cfg->residual.skip;
  M->activation = cfg->model.activation;
  M->slope = cfg->model.leaky_slope;
  M->sw = cfg->model.weight_std;
  M->sb = cfg->model.bias_std;
  const uint64_t seed = cfg->seed;
  const int n = M->n, L = M->L;
  NTK_ALLOC(M->alpha, L, "block scales");
  NTK_ALLOC(M->survival, L, "survival probabilities");
  for (int l = 1; l <= L; ++l) {
    M->alpha[l - 1] = ntk_config_alpha(cfg, l);
    M->survival[l - 1] = ntk_config_survival(cfg, l);
  }
  ntk_timer_start(NTK_PHASE_INIT);
  if (M->has_fourier) NTK_CHECK(normal_dmat(g, M->m, d, seed, NTK_STREAM_FOURIER_G, 0, &M->G));
  if (M->project) {
    NTK_CHECK(normal_dmat(g, n, M->p, seed, NTK_STREAM_W0, 0, &M->W0));
    NTK_ALLOC(M->b0, n, "input bias");
    for (int i = 0; i < n; ++i) M->b0[i] = ntk_rng_normal(seed, NTK_STREAM_B0, (uint64_t)i, 0, 0);
  }
  NTK_ALLOC(M->W, L > 0 ? L : 1, "block weights");
  NTK_ALLOC(M->b, (size_t)(L > 0 ? L : 1) * n, "block biases");
  for (int l = 1; l <= L; ++l) {
    NTK_CHECK(normal_dmat(g, n, n, seed, NTK_STREAM_W, (uint64_t)l, &M->W[l - 1]));
    for (int i = 0; i < n; ++i)
      M->b[(size_t)(l - 1) * n + i] = ntk_rng_normal(seed, NTK_STREAM_B, (uint64_t)l, (uint64_t)i, 0);
  }
  NTK_CHECK(normal_dmat(g, k, n, seed, NTK_STREAM_V, 0, &M->V));
  NTK_ALLOC(M->b_out, k, "output bias");
  for (int c = 0; c < k; ++c) M->b_out[c] = ntk_rng_normal(seed, NTK_STREAM_B_OUT, (uint64_t)c, 0, 0);
  ntk_timer_stop(NTK_PHASE_INIT);
  return NTK_OK;
}

void ntk_model_free(ntk_model *M) {
  if (M->has_fourier) ntk_dmat_free(&M->G);
  if (M->project) ntk_dmat_free(&M->W0);
  for (int l = 0; M->W && l < M->L; ++l) ntk_dmat_free(&M->W[l]);
  free(M->W);
  free(M->b);
  free(M->b0);
  ntk_dmat_free(&M->V);
  free(M->b_out);
  free(M->alpha);
  free(M->survival);
  memset(M, 0, sizeof *M);
}

long long ntk_model_num_params(const ntk_model *M) {
  long long n = M->n, c = 0;
  if (M->fourier_trainable) c += (long long)M->m * M->d;
  if (M->project) c += n * M->p + n;
  c += (long long)M->L * (n * n + n);
  c += (long long)M->k * n + M->k;
  return c;
}

void ntk_model_eval_mask(const ntk_model *M, double *xi) {
  for (int l = 0; l < M->L; ++l) xi[l] = M->survival[l];
}

void ntk_mask_draw(const ntk_config *cfg, long long step, long long sample, double *xi) {
  for (int l = 1; l <= cfg->model.depth; ++l) {
    const double p = ntk_config_survival(cfg, l);
    const double u = ntk_rng_uniform(cfg->seed, NTK_STREAM_MASK, (uint64_t)l, (uint64_t)step,
                                     (uint64_t)sample);
    /* p_l == 1 must give exactly the network without stochastic depth */
    xi[l - 1] = (p >= 1.0 || u < p) ? 1.0 : 0.0;
  }
}

void ntk_mask_measured(const ntk_config *cfg, long long step, double *xi) {
  if (cfg->depth.mask_len > 0)
    for (int l = 0; l < cfg->model.depth; ++l) xi[l] = cfg->depth.mask[l];
  else
    ntk_mask_draw(cfg, step, 0, xi);
}

int ntk_network_count(const ntk_config *cfg) {
  return cfg->ntk.network == NTK_NETWORK_MASK_AVERAGE ? cfg->ntk.mask_samples : 1;
}

int ntk_network_mask(const ntk_config *cfg, long long step, int q, double *xi) {
  switch (cfg->ntk.network) {
    case NTK_NETWORK_MASK: ntk_mask_measured(cfg, step, xi); return 1;
    case NTK_NETWORK_MASK_AVERAGE: ntk_mask_draw(cfg, step, q, xi); return 1;
    default: return 0;
  }
}

void ntk_model_draw_mask(const ntk_model *M, long long step, long long sample, double *xi) {
  ntk_mask_draw(M->cfg, step, sample, xi);
}

/* C[:, j] += alpha * v[j] for the local columns of C (a bias broadcast over samples). */
static void add_row_vector(ntk_dmat *C, double alpha, const double *v) {
  for (int jl = 0; jl < C->nloc; ++jl) {
    double bj = alpha * v[ntk_dmat_col_l2g(C, jl)];
    double *col = C->a + (size_t)jl * C->lld;
    for (int il = 0; il < C->mloc; ++il) col[il] += bj;
  }
}

static void count_gemm(ntk_phase ph, const ntk_grid *g, double m, double n, double k) {
  ntk_timer_add_flops(ph, 2.0 * m * n * k / g->size);
}

int ntk_model_forward(const ntk_model *M, const ntk_dmat *X, const double *xi_in, ntk_forward *F) {
  const ntk_grid *g = M->g;
  const int N = X->m, n = M->n, L = M->L;
  memset(F, 0, sizeof *F);
  F->N = N;
  F->L = L;
  ntk_timer_start(NTK_PHASE_FORWARD);
  NTK_ALLOC(F->xi, L > 0 ? L : 1, "mask");
  if (xi_in)
    memcpy(F->xi, xi_in, (size_t)L * sizeof(double));
  else
    ntk_model_eval_mask(M, F->xi);

  if (M->has_fourier) {
    /* u = 2 pi s X G^T, duplicated into both halves so that sin and cos columns of phi
     * sit on the same process column as their argument */
    const int m = M->m;
    ntk_dmat U;
    NTK_CHECK(ntk_dmat_create(g, N, m, &U));
    NTK_CHECK(ntk_dmat_gemm('N', 'T', 2.0 * M_PI * M->cfg->fourier.scale, X, &M->G, 0.0, &U));
    count_gemm(NTK_PHASE_FORWARD, g, N, m, M->d);
    NTK_CHECK(ntk_dmat_create(g, N, 2 * m, &F->u));
    const double one = 1.0, zero = 0.0;
    const int jc2 = m + 1;
    pdgeadd_("N", &N, &m, &one, U.a, &ione, &ione, U.desc, &zero, F->u.a, &ione, &ione, F->u.desc);
    pdgeadd_("N", &N, &m, &one, U.a, &ione, &ione, U.desc, &zero, F->u.a, &ione, &jc2, F->u.desc);
    ntk_dmat_free(&U);
    NTK_CHECK(ntk_dmat_create(g, N, 2 * m, &F->phi));
    F->phi_owned = 1;
    for (int jl = 0; jl < F->phi.nloc; ++jl) {
      int is_sin = ntk_dmat_col_l2g(&F->phi, jl) < m;
      for (int il = 0; il < F->phi.mloc; ++il) {
        double u = F->u.a[il + (size_t)jl * F->u.lld];
        F->phi.a[il + (size_t)jl * F->phi.lld] = is_sin ? sin(u) : cos(u);
      }
    }
  } else {
    F->phi = *X; /* alias: raw inputs */
    F->phi_owned = 0;
  }

  NTK_ALLOC(F->h, L + 1, "hidden states");
  NTK_ALLOC(F->z, L > 0 ? L : 1, "pre-activations");
  NTK_CHECK(ntk_dmat_create(g, N, n, &F->h[0]));
  if (M->project) {
    NTK_CHECK(ntk_dmat_gemm_abt_gathered(M->sw / sqrt((double)M->p), &F->phi, &M->W0, 0.0, &F->h[0],
                                         M->cfg->ntk.chunk_mb));
    count_gemm(NTK_PHASE_FORWARD, g, N, n, M->p);
    add_row_vector(&F->h[0], M->sb, M->b0);
  } else {
    memcpy(F->h[0].a, F->phi.a, (size_t)F->phi.lld * F->phi.nloc * sizeof(double));
  }
  const double c = M->sw / sqrt((double)n);
  for (int l = 1; l <= L; ++l) {
    ntk_dmat *z = &F->z[l - 1], *h = &F->h[l];
    const ntk_dmat *hp = &F->h[l - 1];
    NTK_CHECK(ntk_dmat_create(g, N, n, z));
    NTK_CHECK(ntk_dmat_create(g, N, n, h));
    NTK_CHECK(ntk_dmat_gemm_abt_gathered(c, hp, &M->W[l - 1], 0.0, z, M->cfg->ntk.chunk_mb));
    count_gemm(NTK_PHASE_FORWARD, g, N, n, n);
    add_row_vector(z, M->sb, M->b + (size_t)(l - 1) * n);
    const double s = F->xi[l - 1] * M->alpha[l - 1];
    const size_t len = (size_t)z->lld * z->nloc;
    if (M->skip) {
      for (size_t e = 0; e < len; ++e) h->a[e] = hp->a[e] + s * ntk_act(M->activation, M->slope, z->a[e]);
    } else {
      for (size_t e = 0; e < len; ++e) h->a[e] = ntk_act(M->activation, M->slope, z->a[e]);
    }
  }
  ntk_dmat_panels_release();
  NTK_CHECK(ntk_dmat_create(g, N, M->k, &F->f));
  NTK_CHECK(ntk_dmat_gemm('N', 'T', c, &F->h[L], &M->V, 0.0, &F->f));
  count_gemm(NTK_PHASE_FORWARD, g, N, M->k, n);
  add_row_vector(&F->f, M->sb, M->b_out);
  ntk_timer_stop(NTK_PHASE_FORWARD);
  return NTK_OK;
}

void ntk_forward_free(ntk_forward *F) {
  if (F->h)
    for (int l = 0; l <= F->L; ++l) ntk_dmat_free(&F->h[l]);
  if (F->z)
    for (int l = 0; l < F->L; ++l) ntk_dmat_free(&F->z[l]);
  free(F->h);
  free(F->z);
  free(F->xi);
  if (F->phi_owned) {
    ntk_dmat_free(&F->phi);
    ntk_dmat_free(&F->u);
  }
  ntk_dmat_free(&F->f);
  memset(F, 0, sizeof *F);
}

/* The visitor's time is its own phase (gram, hadamard, jacobian, ...), not backward. */
static int visit_group(ntk_visit_fn visit, void *ctx, int group, const ntk_dmat *gsig,
                       const ntk_dmat *a, double wscale, double bscale) {
  ntk_timer_stop(NTK_PHASE_BACKWARD);
  int err = visit(group, gsig, a, wscale, bscale, ctx);
  ntk_timer_start(NTK_PHASE_BACKWARD);
  return err;
}

int ntk_model_backward(const ntk_model *M, const ntk_dmat *X, const ntk_forward *F,
                       const ntk_dmat *S, ntk_visit_fn visit, void *ctx) {
  const ntk_grid *g = M->g;
  const int N = F->N, n = M->n, L = M->L;
  const double c = M->sw / sqrt((double)n);
  int err = NTK_OK;
  ntk_timer_start(NTK_PHASE_BACKWARD);
  ntk_dmat gh = {0}, gz = {0};
  err = visit_group(visit, ctx, NTK_GROUP_OUTPUT(L), S, &F->h[L], c, M->sb);
  if (err) goto done;
  if ((err = ntk_dmat_create(g, N, n, &gh))) goto done;
  if ((err = ntk_dmat_create(g, N, n, &gz))) goto done;
  /* dF/dh^L = c S V */
  if ((err = ntk_dmat_gemm('N', 'N', c, S, &M->V, 0.0, &gh))) goto done;
  count_gemm(NTK_PHASE_BACKWARD, g, N, n, M->k);
  for (int l = L; l >= 1; --l) {
    const ntk_dmat *z = &F->z[l - 1];
    const double s = M->skip ? F->xi[l - 1] * M->alpha[l - 1] : 1.0;
    const size_t len = (size_t)z->lld * z->nloc;
    for (size_t e = 0; e < len; ++e) gz.a[e] = gh.a[e] * s * ntk_act_deriv(M->activation, M->slope, z->a[e]);
    err = visit_group(visit, ctx, NTK_GROUP_BLOCK(l), &gz, &F->h[l - 1], c, M->sb);
    if (err) goto done;
    /* dF/dh^{l-1} = [skip] dF/dh^l + c gz W^l */
    if ((err = ntk_dmat_gemm_ab_gathered(c, &gz, &M->W[l - 1], M->skip ? 1.0 : 0.0, &gh,
                                         M->cfg->ntk.chunk_mb)))
      goto done;
    count_gemm(NTK_PHASE_BACKWARD, g, N, n, n);
  }
  ntk_dmat_free(&gz);
  if (M->project) {
    err = visit_group(visit, ctx, NTK_GROUP_INPUT, &gh, &F->phi, M->sw / sqrt((double)M->p), M->sb);
    if (err) goto done;
  }
  if (M->fourier_trainable) {
    const int m = M->m, p = M->p;
    ntk_dmat gphi = {0}, q = {0};
    if (M->project) {
      if ((err = ntk_dmat_create(g, N, p, &gphi))) goto done;
      if ((err = ntk_dmat_gemm('N', 'N', M->sw / sqrt((double)p), &gh, &M->W0, 0.0, &gphi))) goto fourier_done;
      count_gemm(NTK_PHASE_BACKWARD, g, N, p, n);
    } else {
      gphi = gh; /* h^0 = phi */
      gh.a = NULL;
    }
    /* d phi / d u: cos u for the sine half, -sin u for the cosine half */
    for (int jl = 0; jl < gphi.nloc; ++jl) {
      int is_sin = ntk_dmat_col_l2g(&gphi, jl) < m;
      for (int il = 0; il < gphi.mloc; ++il) {
        double u = F->u.a[il + (size_t)jl * F->u.lld];
        gphi.a[il + (size_t)jl * gphi.lld] *= is_sin ? cos(u) : -sin(u);
      }
    }
    /* both halves share G: q = 2 pi s (r[:, :m] + r[:, m:]) */
    if ((err = ntk_dmat_create(g, N, m, &q))) goto fourier_done;
    {
      const double one = 1.0, zero = 0.0, ts = 2.0 * M_PI * M->cfg->fourier.scale;
      const int ja2 = m + 1;
      pdgeadd_("N", &N, &m, &ts, gphi.a, &ione, &ione, gphi.desc, &zero, q.a, &ione, &ione, q.desc);
      pdgeadd_("N", &N, &m, &ts, gphi.a, &ione, &ja2, gphi.desc, &one, q.a, &ione, &ione, q.desc);
    }
    err = visit_group(visit, ctx, NTK_GROUP_FOURIER, &q, X, 1.0, 0.0);
  fourier_done:
    ntk_dmat_free(&q);
    ntk_dmat_free(&gphi);
  }
done:
  ntk_dmat_free(&gz);
  ntk_dmat_free(&gh);
  ntk_timer_stop(NTK_PHASE_BACKWARD);
  if (err) ntk_err_trace(__FILE__, __LINE__, __func__);
  return err;
}

void ntk_model_memory(const ntk_config *cfg, const ntk_grid *g, int N, int d, int k,
                      ntk_model_bytes *b) {
  const int m = cfg->fourier.features, p = ntk_config_input_dim(cfg, d);
  const int n = ntk_config_width(cfg, d), L = cfg->model.depth;
  const int project = cfg->fourier.project, trainable = m > 0 && cfg->fourier.trainable;
  const double mb = cfg->ntk.chunk_mb;
  const int64_t hn = ntk_dmat_max_local_bytes(g, N, n), fk = ntk_dmat_max_local_bytes(g, N, k);
  *b = (ntk_model_bytes){0};
  int64_t biases = ntk_size_mul(8, ntk_size_add(ntk_size_mul((int64_t)L + 1, n), k));
  b->params = ntk_size_add(ntk_size_add(m > 0 ? ntk_dmat_max_local_bytes(g, m, d) : 0,
                                        project ? ntk_dmat_max_local_bytes(g, n, p) : 0),
                           ntk_size_add(ntk_size_mul(L, ntk_dmat_max_local_bytes(g, n, n)),
                                        ntk_size_add(ntk_dmat_max_local_bytes(g, k, n), biases)));
  b->fourier = m > 0 ? ntk_size_mul(2, ntk_dmat_max_local_bytes(g, N, 2 * (int64_t)m)) : 0;
  b->states = ntk_size_add(ntk_size_mul(2 * (int64_t)L + 1, hn), fk);
  b->signals = ntk_size_add(ntk_size_mul(2, hn), fk);
  if (trainable)
    b->signals = ntk_size_add(b->signals, ntk_size_add(ntk_dmat_max_local_bytes(g, N, p),
                                                       ntk_dmat_max_local_bytes(g, N, m)));
  b->forward_panels = ntk_size_max(L > 0 ? ntk_dmat_gemm_abt_gathered_bytes(g, N, n, n, mb) : 0,
                                   project ? ntk_dmat_gemm_abt_gathered_bytes(g, N, n, p, mb) : 0);
  if (L > 0) b->backward_panels = ntk_dmat_ab_panel_bytes(g, N, n, n, mb);
}
