#include "ntk_ntkvp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_error.h"
#include "ntk_scalapack.h"
#include "ntk_size.h"

static const int ione = 1;

struct ntk_ntkvp {
  const ntk_model *M;
  const ntk_dmat *X;
  int nnet;          /* networks averaged: 1, or ntk.mask_samples for mask_average */
  ntk_forward *fwd;  /* their forward states */
  int *owned;        /* fwd[q] computed here (else borrowed eval_fwd) */
  /* the parameter direction J_c^T v: dG (m x d) and dV (k x n) shaped like G and V, the
   * wide layers' transposed (dWt = dW^T, fan_in x fan_out) for the tangent's h dW^T */
  ntk_dmat dG, dW0t, *dWt, dV;
  double *db0, *db, *db_out;
  /* the tangent pass: dh, dz (N x n); du (N x m), dphi (N x p) with trainable G */
  ntk_dmat dh, dz, du, dphi;
  ntk_dmat S, df; /* seed and output tangent, N x k */
  double flops;
  int have_trace;
  double trace, *group_trace;
};

/* out[j] = scale * sum_s A[s, j] on every rank (A->n entries). */
static int colsum(const ntk_dmat *A, double scale, double *out) {
  memset(out, 0, (size_t)A->n * sizeof(double));
  for (int jl = 0; jl < A->nloc; ++jl) {
    const double *col = A->a + (size_t)jl * A->lld;
    double s = 0.0;
    for (int il = 0; il < A->mloc; ++il) s += col[il];
    out[ntk_dmat_col_l2g(A, jl)] = scale * s;
  }
  MPI_Allreduce(MPI_IN_PLACE, out, A->n, MPI_DOUBLE, MPI_SUM, A->g->comm);
  return NTK_OK;
}

/* C[:, j] += alpha * v[j] (a bias tangent broadcast over samples). */
static void add_row_vector(ntk_dmat *C, double alpha, const double *v) {
  for (int jl = 0; jl < C->nloc; ++jl) {
    const double bj = alpha * v[ntk_dmat_col_l2g(C, jl)];
    double *col = C->a + (size_t)jl * C->lld;
    for (int il = 0; il < C->mloc; ++il) col[il] += bj;
  }
}

/* Visitor of the backward pass from seed v e_c^T: the group's share of J_c^T v. */
static int visit_direction(int group, const ntk_dmat *gs, const ntk_dmat *a, double ws, double bs,
                           void *vctx) {
  ntk_ntkvp *op = vctx;
  const ntk_model *M = op->M;
  const int L = M->L;
  if (group == NTK_GROUP_OUTPUT(L)) { /* k rows: PDGEMM's rounds are few */
    NTK_CHECK(ntk_dmat_gemm('T', 'N', ws, gs, a, 0.0, &op->dV));
    NTK_CHECK(colsum(gs, bs, op->db_out));
  } else if (group == NTK_GROUP_FOURIER) { /* m x d */
    NTK_CHECK(ntk_dmat_gemm('T', 'N', ws, gs, a, 0.0, &op->dG));
  } else if (group == NTK_GROUP_INPUT) {
    NTK_CHECK(ntk_dmat_gemm_atb_gathered(ws, a, gs, 0.0, &op->dW0t, M->cfg->ntk.chunk_mb));
    NTK_CHECK(colsum(gs, bs, op->db0));
  } else {
    const int l = group - NTK_GROUP_BLOCK(1);
    NTK_CHECK(ntk_dmat_gemm_atb_gathered(ws, a, gs, 0.0, &op->dWt[l], M->cfg->ntk.chunk_mb));
    NTK_CHECK(colsum(gs, bs, op->db + (size_t)l * M->n));
  }
  return NTK_OK;
}

/* df := J dtheta for the network F (the tangent of f along the stored direction). */
static int tangent(ntk_ntkvp *op, const ntk_forward *F) {
  const ntk_model *M = op->M;
  const ntk_config *cfg = M->cfg;
  const int N = F->N, n = M->n, L = M->L, m = M->m;
  const double c = M->sw / sqrt((double)n), c0 = M->sw / sqrt((double)M->p);
  const double mb = cfg->ntk.chunk_mb;
  int have_dh = 0; /* dh = 0 so far: the fixed input of a network without projection */
  if (M->fourier_trainable) {
    /* du = 2 pi s X dG^T in both halves; dphi = (cos u, -sin u) o du */
    const double one = 1.0, zero = 0.0;
    const int jc2 = m + 1;
    NTK_CHECK(ntk_dmat_gemm('N', 'T', 2.0 * M_PI * cfg->fourier.scale, op->X, &op->dG, 0.0, &op->du));
    pdgeadd_("N", &N, &m, &one, op->du.a, &ione, &ione, op->du.desc, &zero, op->dphi.a, &ione, &ione,
             op->dphi.desc);
    pdgeadd_("N", &N, &m, &one, op->du.a, &ione, &ione, op->du.desc, &zero, op->dphi.a, &ione, &jc2,
             op->dphi.desc);
    for (int jl = 0; jl < op->dphi.nloc; ++jl) {
      const int is_sin = ntk_dmat_col_l2g(&op->dphi, jl) < m;
      const double *u = F->u.a + (size_t)jl * F->u.lld;
      double *t = op->dphi.a + (size_t)jl * op->dphi.lld;
      for (int il = 0; il < op->dphi.mloc; ++il) t[il] *= is_sin ? cos(u[il]) : -sin(u[il]);
    }
  }
  if (M->project) {
    /* dh0 = c0 (phi dW0^T + dphi W0^T) + sb db0 */
    NTK_CHECK(ntk_dmat_gemm_ab_gathered(c0, &F->phi, &op->dW0t, 0.0, &op->dh, mb));
    if (M->fourier_trainable)
      NTK_CHECK(ntk_dmat_gemm_abt_gathered(c0, &op->dphi, &M->W0, 1.0, &op->dh, mb));
    add_row_vector(&op->dh, M->sb, op->db0);
    have_dh = 1;
  } else if (M->fourier_trainable) {
    memcpy(op->dh.a, op->dphi.a, (size_t)op->dh.lld * op->dh.nloc * sizeof(double)); /* h0 = phi */
    have_dh = 1;
  }
  for (int l = 1; l <= L; ++l) {
    /* dz = c (h^{l-1} dW^T + dh^{l-1} W^T) + sb db;  dh^l = [skip] dh^{l-1} + s sigma'(z) o dz,
     * the bias added in the same pass as the update (at n = 256 the passes over the N x n
     * states cost a third of the GEMMs' time) */
    NTK_CHECK(ntk_dmat_gemm_ab_gathered(c, &F->h[l - 1], &op->dWt[l - 1], 0.0, &op->dz, mb));
    if (have_dh) NTK_CHECK(ntk_dmat_gemm_abt_gathered(c, &op->dh, &M->W[l - 1], 1.0, &op->dz, mb));
    const ntk_dmat *z = &F->z[l - 1];
    const double *db = op->db + (size_t)(l - 1) * n;
    const int act = M->activation;
    const double slope = M->slope, s = M->skip ? F->xi[l - 1] * M->alpha[l - 1] : 1.0;
    const int keep = M->skip && have_dh;
    for (int jl = 0; jl < z->nloc; ++jl) {
      const double bj = M->sb * db[ntk_dmat_col_l2g(z, jl)];
      const double *zc = z->a + (size_t)jl * z->lld, *dzc = op->dz.a + (size_t)jl * z->lld;
      double *dhc = op->dh.a + (size_t)jl * z->lld;
      if (keep)
        for (int il = 0; il < z->mloc; ++il) dhc[il] += s * ntk_act_deriv(act, slope, zc[il]) * (dzc[il] + bj);
      else
        for (int il = 0; il < z->mloc; ++il) dhc[il] = s * ntk_act_deriv(act, slope, zc[il]) * (dzc[il] + bj);
    }
    have_dh = 1;
  }
  /* df = c (h^L dV^T + dh^L V^T) + sb db_out */
  NTK_CHECK(ntk_dmat_gemm('N', 'T', c, &F->h[L], &op->dV, 0.0, &op->df));
  if (have_dh) NTK_CHECK(ntk_dmat_gemm('N', 'T', c, &op->dh, &M->V, 1.0, &op->df));
  add_row_vector(&op->df, M->sb, op->db_out);
  return NTK_OK;
}

/* GEMM flops (all ranks) of one apply; mirrors visit_direction, tangent and the backward. */
static double apply_flops(const ntk_model *M, int N, int nnet) {
  const double Nd = N, n = M->n, p = M->p, k = M->k, m = M->m, d = M->d, L = M->L;
  const int tr = M->fourier_trainable, pr = M->project;
  double f = 2 * N * n * k;                 /* backward: dF/dh^L = c S V */
  f += L * 2 * Nd * n * n;                  /* backward: c gz W^l */
  if (tr && pr) f += 2 * Nd * p * n;        /* backward: dF/dphi */
  f += 2 * k * Nd * n + L * 2 * Nd * n * n; /* directions: dV, dW^l */
  if (pr) f += 2 * Nd * n * p;              /* dW0 */
  if (tr) f += 2 * m * d * Nd + 2 * Nd * m * d; /* dG, du */
  if (pr) f += 2 * Nd * n * p * (tr ? 2 : 1);   /* dh0 */
  const int dh0 = pr || tr;
  f += L * 2 * Nd * n * n + (L - 1 + dh0) * 2 * Nd * n * n; /* dz^l */
  f += 2 * Nd * k * n * (L > 0 || dh0 ? 2 : 1);            /* df */
  return f * k * nnet;
}

void ntk_ntkvp_destroy(ntk_ntkvp **opp) {
  ntk_ntkvp *op = *opp;
  if (!op) return;
  const ntk_model *M = op->M;
  for (int q = 0; op->fwd && q < op->nnet; ++q)
    if (op->owned[q]) ntk_forward_free(&op->fwd[q]);
  free(op->fwd);
  free(op->owned);
  ntk_dmat_free(&op->dG);
  ntk_dmat_free(&op->dW0t);
  for (int l = 0; op->dWt && l < M->L; ++l) ntk_dmat_free(&op->dWt[l]);
  free(op->dWt);
  ntk_dmat_free(&op->dV);
  free(op->db0);
  free(op->db);
  free(op->db_out);
  ntk_dmat_free(&op->dh);
  ntk_dmat_free(&op->dz);
  ntk_dmat_free(&op->du);
  ntk_dmat_free(&op->dphi);
  ntk_dmat_free(&op->S);
  ntk_dmat_free(&op->df);
  free(op->group_trace);
  free(op);
  *opp = NULL;
  ntk_dmat_panels_release();
}

static int create_body(ntk_ntkvp *op, const ntk_forward *eval_fwd, long long step) {
  const ntk_model *M = op->M;
  const ntk_config *cfg = M->cfg;
  const ntk_grid *g = M->g;
  const int N = op->X->m, n = M->n, L = M->L, k = M->k;
  double *xi;
  op->nnet = ntk_network_count(cfg);
  NTK_ALLOC(op->fwd, op->nnet, "ntkvp forward states");
  NTK_ALLOC(op->owned, op->nnet, "ntkvp forward states");
  NTK_ALLOC(op->group_trace, NTK_NGROUPS(L), "ntkvp group traces");
  NTK_ALLOC(xi, L > 0 ? L : 1, "mask");
  int err = NTK_OK;
  for (int q = 0; q < op->nnet && !err; ++q) {
    const int masked = ntk_network_mask(cfg, step, q, xi);
    if (!masked && eval_fwd) {
      op->fwd[q] = *eval_fwd; /* borrowed: not owned */
      continue;
    }
    err = ntk_model_forward(M, op->X, masked ? xi : NULL, &op->fwd[q]);
    if (!err) op->owned[q] = 1;
  }
  free(xi);
  NTK_CHECK(err);
  if (M->fourier_trainable) {
    NTK_CHECK(ntk_dmat_create(g, M->m, M->d, &op->dG));
    NTK_CHECK(ntk_dmat_create(g, N, M->m, &op->du));
    NTK_CHECK(ntk_dmat_create(g, N, M->p, &op->dphi));
  }
  if (M->project) {
    NTK_CHECK(ntk_dmat_create(g, M->p, n, &op->dW0t));
    NTK_ALLOC(op->db0, n, "ntkvp input bias direction");
  }
  NTK_ALLOC(op->dWt, L > 0 ? L : 1, "ntkvp block directions");
  for (int l = 0; l < L; ++l) NTK_CHECK(ntk_dmat_create(g, n, n, &op->dWt[l]));
  NTK_ALLOC(op->db, (size_t)(L > 0 ? L : 1) * n, "ntkvp block bias directions");
  NTK_CHECK(ntk_dmat_create(g, k, n, &op->dV));
  NTK_ALLOC(op->db_out, k, "ntkvp output bias direction");
  NTK_CHECK(ntk_dmat_create(g, N, n, &op->dh));
  NTK_CHECK(ntk_dmat_create(g, N, n, &op->dz));
  NTK_CHECK(ntk_dmat_create(g, N, k, &op->S));
  NTK_CHECK(ntk_dmat_create(g, N, k, &op->df));
  op->flops = apply_flops(M, N, op->nnet);
  return NTK_OK;
}

int ntk_ntkvp_create(const ntk_model *M, const ntk_dmat *X, long long step,
                     const ntk_forward *eval_fwd, ntk_ntkvp **opp) {
  *opp = NULL;
  if (eval_fwd && (eval_fwd->N != X->m || eval_fwd->L != M->L))
    return ntk_err_set(NTK_ERR_INTERNAL, "ntkvp: forward states of %d samples, %d blocks for %d, %d",
                       eval_fwd->N, eval_fwd->L, X->m, M->L);
  ntk_ntkvp *op = calloc(1, sizeof *op);
  if (!op) return ntk_err_set(NTK_ERR_MEMORY, "out of memory for the NTK product");
  op->M = M;
  op->X = X;
  int err = create_body(op, eval_fwd, step);
  if (err) {
    ntk_ntkvp_destroy(&op);
    ntk_err_trace(__FILE__, __LINE__, __func__);
    return err;
  }
  *opp = op;
  return NTK_OK;
}

/* v is an N x 1 vector of the operator's grid in the layout ntk_dmat_create gives. */
static int check_vector(const ntk_ntkvp *op, const ntk_dmat *v, const char *what) {
  const ntk_dmat *S = &op->S;
  if (v->g != S->g || v->m != S->m || v->n != 1 || v->desc[4] != S->desc[4] ||
      v->desc[6] != 0 || v->desc[7] != 0)
    return ntk_err_set(NTK_ERR_INTERNAL, "ntkvp: %s is %d x %d, not an N = %d vector of the grid",
                       what, v->m, v->n, S->m);
  return NTK_OK;
}

int ntk_ntkvp_apply(ntk_ntkvp *op, const ntk_dmat *v, ntk_dmat *y) {
  const ntk_model *M = op->M;
  const int N = op->X->m, k = M->k;
  NTK_CHECK(check_vector(op, v, "v"));
  NTK_CHECK(check_vector(op, y, "y"));
  if (v->a == y->a) return ntk_err_set(NTK_ERR_INTERNAL, "ntkvp: y is v (y is zeroed before v is read)");
  const double one = 1.0, zero = 0.0, w = 1.0 / ((double)k * op->nnet);
  ntk_dmat_zero(y);
  for (int q = 0; q < op->nnet; ++q) {
    for (int c = 0; c < k; ++c) {
      const int jc = c + 1;
      ntk_dmat_zero(&op->S);
      pdgeadd_("N", &N, &ione, &one, v->a, &ione, &ione, v->desc, &zero, op->S.a, &ione, &jc, op->S.desc);
      NTK_CHECK(ntk_model_backward(M, op->X, &op->fwd[q], &op->S, visit_direction, op));
      NTK_CHECK(tangent(op, &op->fwd[q]));
      pdgeadd_("N", &N, &ione, &w, op->df.a, &ione, &jc, op->df.desc, &one, y->a, &ione, &ione, y->desc);
    }
  }
  return NTK_OK;
}

/* Visitor of the backward pass from seed e_c: row s of g is the gradient of f_c(x_s), so
 * sample s's squared Jacobian norm in the group is |g_s|^2 (ws^2 |a_s|^2 + bs^2), the
 * group's diagonal entry of the dense kernel. */
typedef struct {
  ntk_ntkvp *op;
  double weight;
  double *gn, *an; /* per local row */
} trace_ctx;

static int visit_trace(int group, const ntk_dmat *gs, const ntk_dmat *a, double ws, double bs,
                       void *vctx) {
  trace_ctx *T = vctx;
  const ntk_grid *g = gs->g;
  const int rows = gs->mloc;
  memset(T->gn, 0, (size_t)rows * sizeof(double));
  memset(T->an, 0, (size_t)rows * sizeof(double));
  for (int jl = 0; jl < gs->nloc; ++jl)
    for (int il = 0; il < rows; ++il) {
      const double x = gs->a[il + (size_t)jl * gs->lld];
      T->gn[il] += x * x;
    }
  for (int jl = 0; jl < a->nloc; ++jl)
    for (int il = 0; il < rows; ++il) {
      const double x = a->a[il + (size_t)jl * a->lld];
      T->an[il] += x * x;
    }
  /* the ranks of a grid row hold the same samples, different columns */
  MPI_Allreduce(MPI_IN_PLACE, T->gn, rows, MPI_DOUBLE, MPI_SUM, g->row_comm);
  MPI_Allreduce(MPI_IN_PLACE, T->an, rows, MPI_DOUBLE, MPI_SUM, g->row_comm);
  if (g->mycol == 0) { /* each sample once; summed over the grid column at the end */
    double s = 0.0;
    for (int il = 0; il < rows; ++il) s += T->gn[il] * (ws * ws * T->an[il] + bs * bs);
    T->op->group_trace[group] += T->weight * s;
  }
  return NTK_OK;
}

int ntk_ntkvp_trace(ntk_ntkvp *op, double *trace, double *group_trace) {
  const ntk_model *M = op->M;
  const int ng = NTK_NGROUPS(M->L), k = M->k;
  if (!op->have_trace) {
    trace_ctx T = {.op = op, .weight = 1.0 / ((double)k * op->nnet)};
    int err = NTK_OK;
    memset(op->group_trace, 0, (size_t)ng * sizeof(double));
    T.gn = calloc((size_t)op->S.mloc + 1, sizeof(double));
    T.an = calloc((size_t)op->S.mloc + 1, sizeof(double));
    if (!T.gn || !T.an) err = ntk_err_set(NTK_ERR_MEMORY, "out of memory for the row norms");
    for (int q = 0; q < op->nnet && !err; ++q)
      for (int c = 0; c < k && !err; ++c) {
        for (int jl = 0; jl < op->S.nloc; ++jl) {
          const double e = ntk_dmat_col_l2g(&op->S, jl) == c ? 1.0 : 0.0;
          for (int il = 0; il < op->S.mloc; ++il) op->S.a[il + (size_t)jl * op->S.lld] = e;
        }
        err = ntk_model_backward(M, op->X, &op->fwd[q], &op->S, visit_trace, &T);
      }
    free(T.gn);
    free(T.an);
    NTK_CHECK(err);
    MPI_Allreduce(MPI_IN_PLACE, op->group_trace, ng, MPI_DOUBLE, MPI_SUM, M->g->comm);
    op->trace = 0.0;
    for (int q = 0; q < ng; ++q) op->trace += op->group_trace[q];
    op->have_trace = 1;
  }
  if (trace) *trace = op->trace;
  if (group_trace) memcpy(group_trace, op->group_trace, (size_t)ng * sizeof(double));
  return NTK_OK;
}

int ntk_ntkvp_flops(const ntk_ntkvp *op, double *flops_per_apply) {
  *flops_per_apply = op->flops;
  return NTK_OK;
}

void ntk_ntkvp_memory(const ntk_config *cfg, const ntk_grid *g, int N, int d, int k,
                      const ntk_model_bytes *model, int64_t *bytes) {
  const int m = cfg->fourier.features, p = ntk_config_input_dim(cfg, d);
  const int n = ntk_config_width(cfg, d), L = cfg->model.depth;
  const int trainable = m > 0 && cfg->fourier.trainable;
  /* the direction: a copy of the parameters */
  int64_t b = model->params;
  /* dh, dz; S, df; du and dphi */
  b = ntk_size_add(b, ntk_size_mul(2, ntk_dmat_max_local_bytes(g, N, n)));
  b = ntk_size_add(b, ntk_size_mul(2, ntk_dmat_max_local_bytes(g, N, k)));
  if (trainable)
    b = ntk_size_add(b, ntk_size_add(ntk_dmat_max_local_bytes(g, N, m), ntk_dmat_max_local_bytes(g, N, p)));
  /* mask_average keeps every mask's forward states, the model's estimate one */
  if (cfg->ntk.network == NTK_NETWORK_MASK_AVERAGE && cfg->ntk.mask_samples > 1)
    b = ntk_size_add(b, ntk_size_mul((int64_t)cfg->ntk.mask_samples - 1,
                                     ntk_size_add(model->states, model->fourier)));
  /* the weight directions' gathered A^T B (its Q and reduced block; the gathered panels of
   * the forward and backward are the model's, whose buffers the tangent's products reuse) */
  const int wide = n > p ? n : p;
  if (L > 0 || cfg->fourier.project)
    b = ntk_size_add(b, ntk_panel_bytes_sum(ntk_dmat_atb_panel_bytes(g, N, wide, n, cfg->ntk.chunk_mb)));
  *bytes = b;
}
