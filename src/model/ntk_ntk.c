#include "ntk_ntk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_error.h"
#include "ntk_log.h"
#include "ntk_size.h"
#include "ntk_timer.h"

typedef struct {
  const ntk_model *M;
  int method;
  double chunk_mb;
  double weight;         /* 1/k: Theta is the mean over outputs */
  ntk_dmat *theta;       /* lower triangle accumulated */
  ntk_dmat gg;           /* scratch N x N: Gram of the signals */
  ntk_dmat *ga_cache;    /* per group Gram of the layer inputs, shared by the k outputs */
  int *ga_valid;         /* (with k == 1 one slot is reused: nothing to share) */
  int cache_all;
  double *group_trace;
} ntk_acc;

static void add_syrk_flops(ntk_phase ph, const ntk_grid *g, double N, double K) {
  ntk_timer_add_flops(ph, N * (N + 1.0) * K / g->size);
}

/* Theta_lower += weight * (ws^2 Gg o Ga + bs^2 Gg); the trace of the term is returned. */
static double hadamard_accumulate(ntk_dmat *theta, const ntk_dmat *gg, const ntk_dmat *ga,
                                  double ws, double bs, double weight) {
  double tr = 0.0;
  const double w2 = weight * ws * ws, b2 = weight * bs * bs;
  for (int jl = 0; jl < theta->nloc; ++jl) {
    int j = ntk_dmat_col_l2g(theta, jl);
    int il0 = 0;
    while (il0 < theta->mloc && ntk_dmat_row_l2g(theta, il0) < j) ++il0;
    double *t = theta->a + (size_t)jl * theta->lld;
    const double *pg = gg->a + (size_t)jl * gg->lld, *pa = ga->a + (size_t)jl * ga->lld;
    for (int il = il0; il < theta->mloc; ++il) {
      double v = pg[il] * (w2 * pa[il] + b2);
      t[il] += v;
      if (ntk_dmat_row_l2g(theta, il) == j) tr += v;
    }
  }
  return tr;
}

static int visit_structured(int group, const ntk_dmat *gsig, const ntk_dmat *a, double ws,
                            double bs, void *vctx) {
  ntk_acc *A = vctx;
  const ntk_grid *g = A->M->g;
  const int N = gsig->m;
  ntk_timer_start(NTK_PHASE_GRAM);
  NTK_CHECK(ntk_dmat_gram_lower(1.0, gsig, 0.0, &A->gg, A->chunk_mb));
  add_syrk_flops(NTK_PHASE_GRAM, g, N, gsig->n);
  const int slot = A->cache_all ? group : 0;
  if (!A->cache_all || !A->ga_valid[slot]) {
    NTK_CHECK(ntk_dmat_gram_lower(1.0, a, 0.0, &A->ga_cache[slot], A->chunk_mb));
    add_syrk_flops(NTK_PHASE_GRAM, g, N, a->n);
    A->ga_valid[slot] = 1;
  }
  ntk_timer_stop(NTK_PHASE_GRAM);
  ntk_timer_start(NTK_PHASE_HADAMARD);
  double tr = hadamard_accumulate(A->theta, &A->gg, &A->ga_cache[slot], ws, bs, A->weight);
  ntk_timer_add_flops(NTK_PHASE_HADAMARD, 3.0 * N * (N + 1.0) / 2.0 / g->size);
  ntk_timer_stop(NTK_PHASE_HADAMARD);
  if (A->group_trace) A->group_trace[group] += tr; /* this rank's diagonal: reduced at the end */
  return NTK_OK;
}

/* Jacobian reference: J[s, (i, j)] = ws g[s,i] a[s,j] and J[s, bias i] = bs g[s,i],
 * materialised in chunks of output neurons so that a chunk stays within chunk_mb per
 * rank; Theta += weight J J^T per chunk. */
static int visit_jacobian(int group, const ntk_dmat *gsig, const ntk_dmat *a, double ws,
                          double bs, void *vctx) {
  ntk_acc *A = vctx;
  const ntk_grid *g = A->M->g;
  const int N = gsig->m, fo = gsig->n, fi = a->n;
  const int per_i = fi + (bs != 0.0 ? 1 : 0); /* parameters per output neuron */
  int err = NTK_OK;
  ntk_timer_start(NTK_PHASE_JACOBIAN);
  double *grow = NULL, *arow = NULL;
  ntk_dmat J = {0};
  if ((err = ntk_dmat_replicate_rows(gsig, &grow))) goto done;
  if ((err = ntk_dmat_replicate_rows(a, &arow))) goto done;
  /* local J bytes ~ (N/Pr) * (cols/Pc) * 8 */
  double budget_cols = A->chunk_mb * 1048576.0 / 8.0 / ((double)N / g->nprow + g->nb) * g->npcol;
  int ni = (int)(budget_cols / per_i);
  if (ni < 1) ni = 1;
  if (ni > fo) ni = fo;
  double tr_before = A->group_trace ? ntk_dmat_trace(A->theta) : 0.0;
  for (int i0 = 0; i0 < fo; i0 += ni) {
    int i1 = i0 + ni < fo ? i0 + ni : fo;
    int cols = (i1 - i0) * per_i;
    if ((err = ntk_dmat_create(g, N, cols, &J))) goto done;
    for (int jl = 0; jl < J.nloc; ++jl) {
      int q = ntk_dmat_col_l2g(&J, jl);
      int i = i0 + q / per_i, j = q % per_i;
      double *col = J.a + (size_t)jl * J.lld;
      if (j < fi)
        for (int il = 0; il < J.mloc; ++il) col[il] = ws * grow[(size_t)il * fo + i] * arow[(size_t)il * fi + j];
      else
        for (int il = 0; il < J.mloc; ++il) col[il] = bs * grow[(size_t)il * fo + i];
    }
    if ((err = ntk_dmat_syrk_lower(A->weight, &J, 1.0, A->theta))) goto done;
    add_syrk_flops(NTK_PHASE_JACOBIAN, g, N, cols);
    ntk_dmat_free(&J);
  }
  if (A->group_trace) A->group_trace[group] += ntk_dmat_trace(A->theta) - tr_before;
done:
  ntk_dmat_free(&J);
  free(grow);
  free(arow);
  ntk_timer_stop(NTK_PHASE_JACOBIAN);
  if (err) ntk_err_trace(__FILE__, __LINE__, __func__);
  return err;
}

int ntk_ntk_compute_from(const ntk_model *M, const ntk_dmat *X, const ntk_forward *F, int method,
                         double chunk_mb, ntk_dmat *theta, double *group_trace) {
  const ntk_grid *g = M->g;
  const int N = X->m, k = M->k, ng = NTK_NGROUPS(M->L);
  int err = NTK_OK;
  ntk_dmat S = {0};
  ntk_acc A = {.M = M, .method = method, .chunk_mb = chunk_mb, .weight = 1.0 / k,
               .theta = theta, .group_trace = group_trace, .cache_all = k > 1};
  if (theta->m != N || theta->n != N)
    return ntk_err_set(NTK_ERR_INTERNAL, "ntk: theta is %d x %d for %d samples", theta->m, theta->n, N);
  if (F->N != N || F->L != M->L || F->f.n != k)
    return ntk_err_set(NTK_ERR_INTERNAL, "ntk: forward states of %d samples, %d blocks for %d, %d",
                       F->N, F->L, N, M->L);
  ntk_dmat_zero(theta);
  if (group_trace) memset(group_trace, 0, (size_t)ng * sizeof(double));
  A.ga_cache = calloc((size_t)ng, sizeof(ntk_dmat));
  A.ga_valid = calloc((size_t)ng, sizeof(int));
  if (!A.ga_cache || !A.ga_valid) {
    err = ntk_err_set(NTK_ERR_MEMORY, "out of memory for the Gram cache");
    goto done;
  }
  if (method == NTK_METHOD_STRUCTURED) {
    if ((err = ntk_dmat_create(g, N, N, &A.gg))) goto done;
    for (int q = 0; q < (A.cache_all ? ng : 1); ++q)
      if ((err = ntk_dmat_create(g, N, N, &A.ga_cache[q]))) goto done;
  }
  if ((err = ntk_dmat_create(g, N, k, &S))) goto done;
  for (int c = 0; c < k; ++c) {
    /* seed e_c: the signals of output c */
    for (int jl = 0; jl < S.nloc; ++jl) {
      double v = ntk_dmat_col_l2g(&S, jl) == c ? 1.0 : 0.0;
      for (int il = 0; il < S.mloc; ++il) S.a[il + (size_t)jl * S.lld] = v;
    }
    err = ntk_model_backward(M, X, F, &S,
                             method == NTK_METHOD_JACOBIAN ? visit_jacobian : visit_structured, &A);
    if (err) goto done;
  }
  if (group_trace && method == NTK_METHOD_STRUCTURED)
    MPI_Allreduce(MPI_IN_PLACE, group_trace, ng, MPI_DOUBLE, MPI_SUM, g->comm);
  ntk_dmat_panels_release();
  err = ntk_dmat_symmetrize_lower(theta);
done:
  ntk_dmat_panels_release();
  ntk_dmat_free(&S);
  ntk_dmat_free(&A.gg);
  for (int q = 0; A.ga_cache && q < ng; ++q) ntk_dmat_free(&A.ga_cache[q]);
  free(A.ga_cache);
  free(A.ga_valid);
  if (err) ntk_err_trace(__FILE__, __LINE__, __func__);
  return err;
}

int ntk_ntk_compute(const ntk_model *M, const ntk_dmat *X, const double *xi, int method,
                    double chunk_mb, ntk_dmat *theta, double *group_trace) {
  ntk_forward F;
  NTK_CHECK(ntk_model_forward(M, X, xi, &F));
  int err = ntk_ntk_compute_from(M, X, &F, method, chunk_mb, theta, group_trace);
  ntk_forward_free(&F);
  NTK_CHECK(err);
  return NTK_OK;
}

int ntk_ntk_for_config(const ntk_model *M, const ntk_dmat *X, long long step,
                       const ntk_forward *eval_fwd, ntk_dmat *theta, double *group_trace) {
  const ntk_config *cfg = M->cfg;
  const int L = M->L, ng = NTK_NGROUPS(L);
  double *xi;
  NTK_ALLOC(xi, L > 0 ? L : 1, "mask");
  int err = NTK_OK;
  switch (cfg->ntk.network) {
    case NTK_NETWORK_EVAL:
      err = eval_fwd ? ntk_ntk_compute_from(M, X, eval_fwd, cfg->ntk.method, cfg->ntk.chunk_mb, theta,
                                            group_trace)
                     : ntk_ntk_compute(M, X, NULL, cfg->ntk.method, cfg->ntk.chunk_mb, theta, group_trace);
      break;
    case NTK_NETWORK_MASK:
      ntk_mask_measured(cfg, step, xi);
      err = ntk_ntk_compute(M, X, xi, cfg->ntk.method, cfg->ntk.chunk_mb, theta, group_trace);
      break;
    case NTK_NETWORK_MASK_AVERAGE: {
      ntk_dmat one = {0};
      double *tr = calloc((size_t)ng, sizeof(double));
      const int S = cfg->ntk.mask_samples;
      if (!tr) { err = ntk_err_set(NTK_ERR_MEMORY, "out of memory"); break; }
      if ((err = ntk_dmat_create(M->g, X->m, X->m, &one))) { free(tr); break; }
      ntk_dmat_zero(theta);
      if (group_trace) memset(group_trace, 0, (size_t)ng * sizeof(double));
      for (int s = 0; s < S && !err; ++s) {
        ntk_model_draw_mask(M, step, s, xi);
        err = ntk_ntk_compute(M, X, xi, cfg->ntk.method, cfg->ntk.chunk_mb, &one, tr);
        const size_t len = (size_t)one.lld * one.nloc;
        for (size_t e = 0; e < len && !err; ++e) theta->a[e] += one.a[e] / S;
        for (int q = 0; group_trace && q < ng; ++q) group_trace[q] += tr[q] / S;
      }
      ntk_dmat_free(&one);
      free(tr);
      break;
    }
    default:
      err = ntk_err_set(NTK_ERR_INTERNAL, "unknown ntk.network %d", cfg->ntk.network);
  }
  free(xi);
  if (err) ntk_err_trace(__FILE__, __LINE__, __func__);
  return err;
}

void ntk_ntk_memory(const ntk_config *cfg, const ntk_grid *g, int N, int d, int k,
                    const ntk_model_bytes *model, ntk_ntk_bytes *b) {
  const int p = ntk_config_input_dim(cfg, d), n = ntk_config_width(cfg, d);
  const int L = cfg->model.depth, wide = n > p ? n : p;
  const int64_t B = ntk_dmat_max_local_bytes(g, N, N);
  *b = (ntk_ntk_bytes){0};
  if (cfg->ntk.method == NTK_METHOD_STRUCTURED) {
    /* G_g, and with several outputs the cached G_a of every group */
    b->scratch = ntk_size_from_double((1.0 + (k > 1 ? L + 3.0 : 1.0)) * (double)B);
    b->panels = ntk_panel_bytes_sum(ntk_panel_bytes_max(
        ntk_dmat_abt_panel_bytes(g, N, N, wide, 1, cfg->ntk.chunk_mb), model->backward_panels));
  } else {
    const double rows = (double)N / g->nprow + g->nb;
    b->panels = ntk_size_add(ntk_size_from_double(2.0 * rows * wide * 8.0 + cfg->ntk.chunk_mb * 1048576.0 * 1.2),
                             ntk_panel_bytes_sum(model->backward_panels));
  }
  b->transpose = B;
  b->average = cfg->ntk.network == NTK_NETWORK_MASK_AVERAGE ? B : 0;
}
