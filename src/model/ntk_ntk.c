#include "ntk_ntk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_error.h"
#include "ntk_log.h"
#include "ntk_size.h"
#include "ntk_timer.h"

/* The left sample set of a cross kernel Theta(X', X): its signals for one output, recorded
 * group by group by a backward pass over X' (copies: the backward frees them), and its
 * layer inputs (pointers into its forward states, which outlive the assembly). */
typedef struct {
  ntk_dmat *sig;
  const ntk_dmat **a;
} ntk_left;

typedef struct {
  const ntk_model *M;
  int method;
  double chunk_mb;
  double weight;         /* 1/k: Theta is the mean over outputs */
  ntk_dmat *theta;       /* lower triangle accumulated (all of it for a cross kernel) */
  const ntk_left *left;  /* NULL: Theta(X, X); else the cross kernel Theta(X', X) */
  ntk_dmat gg;           /* scratch N x N (N' x N): Gram of the signals */
  ntk_dmat *ga_cache;    /* per group Gram of the layer inputs, shared by the k outputs */
  int *ga_valid;         /* (with k == 1 one slot is reused: nothing to share) */
  int cache_all;
  double *group_trace;
} ntk_acc;

static void add_syrk_flops(ntk_phase ph, const ntk_grid *g, double N, double K) {
  ntk_timer_add_flops(ph, N * (N + 1.0) * K / g->size);
}

/* Theta += weight * (ws^2 Gg o Ga + bs^2 Gg) on the lower triangle (lower) or on every
 * entry (a cross kernel); the trace of the term is returned (lower only). */
static double hadamard_accumulate(ntk_dmat *theta, const ntk_dmat *gg, const ntk_dmat *ga,
                                  double ws, double bs, double weight, int lower) {
  double tr = 0.0;
  const double w2 = weight * ws * ws, b2 = weight * bs * bs;
  for (int jl = 0; jl < theta->nloc; ++jl) {
    int j = ntk_dmat_col_l2g(theta, jl);
    int il0 = 0;
    while (lower && il0 < theta->mloc && ntk_dmat_row_l2g(theta, il0) < j) ++il0;
    double *t = theta->a + (size_t)jl * theta->lld;
    const double *pg = gg->a + (size_t)jl * gg->lld, *pa = ga->a + (size_t)jl * ga->lld;
    for (int il = il0; il < theta->mloc; ++il) {
      double v = pg[il] * (w2 * pa[il] + b2);
      t[il] += v;
      if (lower && ntk_dmat_row_l2g(theta, il) == j) tr += v;
    }
  }
  return tr;
}

/* G := B B^T (lower triangle; left == NULL) or G := L B^T (the cross Gram of the left
 * set's L and B): the one Gram product of the structured method. */
static int gram(const ntk_dmat *left, const ntk_dmat *B, ntk_dmat *G, double chunk_mb) {
  const ntk_grid *g = B->g;
  if (!left) {
    NTK_CHECK(ntk_dmat_gram_lower(1.0, B, 0.0, G, chunk_mb));
    add_syrk_flops(NTK_PHASE_GRAM, g, B->m, B->n);
    return NTK_OK;
  }
  NTK_CHECK(ntk_dmat_gemm_abt_gathered(1.0, left, B, 0.0, G, chunk_mb));
  ntk_timer_add_flops(NTK_PHASE_GRAM, 2.0 * left->m * (double)B->m * B->n / g->size);
  return NTK_OK;
}

static int visit_structured(int group, const ntk_dmat *gsig, const ntk_dmat *a, double ws,
                            double bs, void *vctx) {
  ntk_acc *A = vctx;
  const ntk_grid *g = A->M->g;
  const ntk_left *Lf = A->left;
  const int N = gsig->m;
  if (Lf && !Lf->a[group])
    return ntk_err_set(NTK_ERR_INTERNAL, "ntk: group %d has no left signals", group);
  ntk_timer_start(NTK_PHASE_GRAM);
  NTK_CHECK(gram(Lf ? &Lf->sig[group] : NULL, gsig, &A->gg, A->chunk_mb));
  const int slot = A->cache_all ? group : 0;
  if (!A->cache_all || !A->ga_valid[slot]) {
    NTK_CHECK(gram(Lf ? Lf->a[group] : NULL, a, &A->ga_cache[slot], A->chunk_mb));
    A->ga_valid[slot] = 1;
  }
  ntk_timer_stop(NTK_PHASE_GRAM);
  ntk_timer_start(NTK_PHASE_HADAMARD);
  double tr = hadamard_accumulate(A->theta, &A->gg, &A->ga_cache[slot], ws, bs, A->weight, !Lf);
  ntk_timer_add_flops(NTK_PHASE_HADAMARD, 3.0 * A->theta->m * (N + 1.0) / (Lf ? 1.0 : 2.0) / g->size);
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

/* Records the left set's signals of one output (copies) and its layer inputs. */
static int visit_record(int group, const ntk_dmat *gsig, const ntk_dmat *a, double ws, double bs,
                        void *vctx) {
  ntk_left *Lf = vctx;
  (void)ws;
  (void)bs;
  ntk_dmat_free(&Lf->sig[group]);
  NTK_CHECK(ntk_dmat_copy(gsig, &Lf->sig[group]));
  Lf->a[group] = a;
  return NTK_OK;
}

/* S := the unit seed of output c (every row e_c): the backward then gives f_c's signals. */
static void seed_unit(ntk_dmat *S, int c) {
  for (int jl = 0; jl < S->nloc; ++jl) {
    double v = ntk_dmat_col_l2g(S, jl) == c ? 1.0 : 0.0;
    for (int il = 0; il < S->mloc; ++il) S->a[il + (size_t)jl * S->lld] = v;
  }
}

/* Theta(X, X) (Xl == NULL) or the cross kernel Theta(Xl, X) (structured method only) from
 * forward states F of X and Fl of Xl. */
static int assemble(const ntk_model *M, const ntk_dmat *Xl, const ntk_forward *Fl,
                    const ntk_dmat *X, const ntk_forward *F, int method, double chunk_mb,
                    ntk_dmat *theta, double *group_trace) {
  const ntk_grid *g = M->g;
  const int N = X->m, Nl = Xl ? Xl->m : N, k = M->k, ng = NTK_NGROUPS(M->L);
  int err = NTK_OK;
  ntk_dmat S = {0}, Sl = {0};
  ntk_left left = {0};
  ntk_acc A = {.M = M, .method = method, .chunk_mb = chunk_mb, .weight = 1.0 / k,
               .theta = theta, .left = Xl ? &left : NULL, .group_trace = group_trace,
               .cache_all = k > 1};
  if (theta->m != Nl || theta->n != N)
    return ntk_err_set(NTK_ERR_INTERNAL, "ntk: theta is %d x %d for %d x %d samples", theta->m,
                       theta->n, Nl, N);
  if (F->N != N || F->L != M->L || F->f.n != k || (Fl && (Fl->N != Nl || Fl->L != M->L)))
    return ntk_err_set(NTK_ERR_INTERNAL, "ntk: forward states of %d samples, %d blocks for %d, %d",
                       F->N, F->L, N, M->L);
  if (Xl && method != NTK_METHOD_STRUCTURED)
    return ntk_err_set(NTK_ERR_INTERNAL, "ntk: a cross kernel needs the structured method");
  ntk_dmat_zero(theta);
  if (group_trace) memset(group_trace, 0, (size_t)ng * sizeof(double));
  A.ga_cache = calloc((size_t)ng, sizeof(ntk_dmat));
  A.ga_valid = calloc((size_t)ng, sizeof(int));
  left.sig = calloc((size_t)ng, sizeof(ntk_dmat));
  left.a = calloc((size_t)ng, sizeof(ntk_dmat *));
  if (!A.ga_cache || !A.ga_valid || !left.sig || !left.a) {
    err = ntk_err_set(NTK_ERR_MEMORY, "out of memory for the Gram cache");
    goto done;
  }
  if (method == NTK_METHOD_STRUCTURED) {
    if ((err = ntk_dmat_create(g, Nl, N, &A.gg))) goto done;
    for (int q = 0; q < (A.cache_all ? ng : 1); ++q)
      if ((err = ntk_dmat_create(g, Nl, N, &A.ga_cache[q]))) goto done;
  }
  if ((err = ntk_dmat_create(g, N, k, &S))) goto done;
  if (Xl && (err = ntk_dmat_create(g, Nl, k, &Sl))) goto done;
  for (int c = 0; c < k; ++c) {
    if (Xl) {
      seed_unit(&Sl, c);
      if ((err = ntk_model_backward(M, Xl, Fl, &Sl, visit_record, &left))) goto done;
    }
    seed_unit(&S, c);
    err = ntk_model_backward(M, X, F, &S,
                             method == NTK_METHOD_JACOBIAN ? visit_jacobian : visit_structured, &A);
    if (err) goto done;
  }
  if (group_trace && method == NTK_METHOD_STRUCTURED)
    MPI_Allreduce(MPI_IN_PLACE, group_trace, ng, MPI_DOUBLE, MPI_SUM, g->comm);
  ntk_dmat_panels_release();
  if (!Xl) err = ntk_dmat_symmetrize_lower(theta);
done:
  ntk_dmat_panels_release();
  ntk_dmat_free(&S);
  ntk_dmat_free(&Sl);
  ntk_dmat_free(&A.gg);
  for (int q = 0; q < ng; ++q) {
    if (A.ga_cache) ntk_dmat_free(&A.ga_cache[q]);
    if (left.sig) ntk_dmat_free(&left.sig[q]);
  }
  free(A.ga_cache);
  free(A.ga_valid);
  free(left.sig);
  free(left.a);
  if (err) ntk_err_trace(__FILE__, __LINE__, __func__);
  return err;
}

int ntk_ntk_compute_from(const ntk_model *M, const ntk_dmat *X, const ntk_forward *F, int method,
                         double chunk_mb, ntk_dmat *theta, double *group_trace) {
  NTK_CHECK(assemble(M, NULL, NULL, X, F, method, chunk_mb, theta, group_trace));
  return NTK_OK;
}

/* One kernel of the network with mask xi (NULL = evaluation network): Theta(X, X), or
 * Theta(Xl, X) when Xl is given. */
static int compute_pair(const ntk_model *M, const ntk_dmat *Xl, const ntk_dmat *X,
                        const double *xi, int method, double chunk_mb, ntk_dmat *theta,
                        double *group_trace) {
  ntk_forward F, Fl;
  NTK_CHECK(ntk_model_forward(M, X, xi, &F));
  int err = Xl ? ntk_model_forward(M, Xl, xi, &Fl) : NTK_OK;
  if (err) {
    ntk_forward_free(&F);
    NTK_CHECK(err);
  }
  err = assemble(M, Xl, Xl ? &Fl : NULL, X, &F, method, chunk_mb, theta, group_trace);
  if (Xl) ntk_forward_free(&Fl);
  ntk_forward_free(&F);
  NTK_CHECK(err);
  return NTK_OK;
}

int ntk_ntk_compute(const ntk_model *M, const ntk_dmat *X, const double *xi, int method,
                    double chunk_mb, ntk_dmat *theta, double *group_trace) {
  NTK_CHECK(compute_pair(M, NULL, X, xi, method, chunk_mb, theta, group_trace));
  return NTK_OK;
}

/* ntk_ntk_for_config and ntk_ntk_cross_for_config: Xl NULL or the left set (then the
 * structured method, whatever ntk.method says). */
static int kernel_for_config(const ntk_model *M, const ntk_dmat *Xl, const ntk_dmat *X,
                             long long step, const ntk_forward *eval_fwd, ntk_dmat *theta,
                             double *group_trace) {
  const ntk_config *cfg = M->cfg;
  const int L = M->L, ng = NTK_NGROUPS(L);
  const int method = Xl ? NTK_METHOD_STRUCTURED : cfg->ntk.method;
  double *xi;
  NTK_ALLOC(xi, L > 0 ? L : 1, "mask");
  int err = NTK_OK;
  switch (cfg->ntk.network) {
    case NTK_NETWORK_EVAL:
      err = eval_fwd && !Xl
                ? ntk_ntk_compute_from(M, X, eval_fwd, method, cfg->ntk.chunk_mb, theta, group_trace)
                : compute_pair(M, Xl, X, NULL, method, cfg->ntk.chunk_mb, theta, group_trace);
      break;
    case NTK_NETWORK_MASK:
      ntk_network_mask(cfg, step, 0, xi);
      err = compute_pair(M, Xl, X, xi, method, cfg->ntk.chunk_mb, theta, group_trace);
      break;
    case NTK_NETWORK_MASK_AVERAGE: {
      ntk_dmat one = {0};
      double *tr = calloc((size_t)ng, sizeof(double));
      const int S = ntk_network_count(cfg);
      if (!tr) { err = ntk_err_set(NTK_ERR_MEMORY, "out of memory"); break; }
      if ((err = ntk_dmat_create(M->g, theta->m, theta->n, &one))) { free(tr); break; }
      ntk_dmat_zero(theta);
      if (group_trace) memset(group_trace, 0, (size_t)ng * sizeof(double));
      for (int s = 0; s < S && !err; ++s) {
        ntk_network_mask(cfg, step, s, xi);
        err = compute_pair(M, Xl, X, xi, method, cfg->ntk.chunk_mb, &one, tr);
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

int ntk_ntk_for_config(const ntk_model *M, const ntk_dmat *X, long long step,
                       const ntk_forward *eval_fwd, ntk_dmat *theta, double *group_trace) {
  NTK_CHECK(kernel_for_config(M, NULL, X, step, eval_fwd, theta, group_trace));
  return NTK_OK;
}

int ntk_ntk_cross_for_config(const ntk_model *M, const ntk_dmat *Xl, const ntk_dmat *X,
                             long long step, ntk_dmat *theta) {
  NTK_CHECK(kernel_for_config(M, Xl, X, step, NULL, theta, NULL));
  return NTK_OK;
}

int64_t ntk_ntk_cross_memory(const ntk_config *cfg, const ntk_grid *g, int Nl, int N, int d,
                             int k) {
  const int p = ntk_config_input_dim(cfg, d), n = ntk_config_width(cfg, d);
  const int L = cfg->model.depth, wide = n > p ? n : p;
  const int64_t C = ntk_dmat_max_local_bytes(g, Nl, N);
  ntk_model_bytes left;
  ntk_model_memory(cfg, g, Nl, d, k, &left);
  /* the left set's forward states and features, its recorded signals (one per group, no
   * more than its states), the result, the Gram scratch and the cross products' panels */
  return ntk_size_add(
      ntk_size_add(ntk_size_add(left.states, left.fourier), ntk_size_add(left.states, left.signals)),
      ntk_size_add(ntk_size_mul(2 + (k > 1 ? L + 3 : 1), C),
                   ntk_dmat_gemm_abt_gathered_bytes(g, Nl, N, wide, cfg->ntk.chunk_mb)));
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
