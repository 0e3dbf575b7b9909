/* ntk_eig: the eigensolver table and the ScaLAPACK drivers behind it.
 *
 * Every driver works on a private copy of the caller's matrix (ScaLAPACK destroys its
 * input), reads the lower triangle only, and hands back the K largest eigenpairs in
 * descending order.  ScaLAPACK returns ascending order, so the eigenvalues are read
 * backwards and the K eigenvector columns are reversed by one all-to-all within each grid
 * row (see reverse_columns).
 *
 * Restrictions met by every ntk_dmat (square blocks, matrix starting at (1,1) on process
 * (0,0)) and worth knowing for another back-end:
 *  - PDSYEVR and PDSYEVD want the eigenvector matrix Z to be N x N (global) even when only
 *    K columns are filled, so a top-K solve still allocates a distributed N x N Z.
 *  - PDSYEVD has no eigenvalues-only mode (JOBZ = 'N' is "not implemented"): it always
 *    computes the eigenvectors, want_vectors only decides whether they are returned.
 *  - The back-transformation PDORMTR inside PDSYEVR and PDSYEVD can be left short of
 *    workspace when NB is large against the local sizes; it then prints an error while
 *    the driver returns INFO = 0 with wrong eigenvectors.  solve_pdsyevr and
 *    solve_pdsyevd avoid it (see there); test_eig's N = 67 and N = 300 cases with NB = 64
 *    fail without that.
 *  - PDSYEVR's workspace query is known to underestimate in some configurations with
 *    eigenvectors, hence the margin in workspace_size(). */
#include "ntk_eig.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_error.h"
#include "ntk_scalapack.h"
#include "ntk_size.h"

static const int ione = 1;

static int resolve_k(int n, int top_k) { return top_k > 0 ? top_k : n; }

/* Turn a ScaLAPACK workspace query (a double) into an allocation size with a margin,
 * refusing sizes an int LWORK cannot express. */
static int workspace_size(double query, double minimum, int generous, const char *routine,
                          const char *which, int *size) {
  double q = query > minimum ? query : minimum;
  double s = generous ? (2.0 * q > q + 4096.0 ? 2.0 * q : q + 4096.0) : q + q / 8.0 + 1024.0;
  if (s > (double)INT_MAX)
    return ntk_err_set(NTK_ERR_MEMORY,
                       "%s: %s workspace of %.0f entries exceeds the 32-bit LWORK limit; use "
                       "more ranks",
                       routine, which, s);
  *size = (int)s;
  return NTK_OK;
}

/* Z(:, K-1-a) := S(:, s0+a) for a = 0..K-1, with Z created here as N x K.  S and Z have
 * the same rows on the same grid, so every column stays in its grid row and only moves
 * between grid columns: one MPI_Alltoallv on row_comm (whose rank is mycol).  Both sides
 * enumerate the columns of a (source, destination) pair in the same order (increasing
 * source column = decreasing destination column), so no indices travel. */
static int reverse_columns(const ntk_dmat *S, int s0, int K, ntk_dmat *Z) {
  const ntk_grid *g = S->g;
  const int nb = g->nb, npc = g->npcol, ml = S->mloc;
  int err = ntk_dmat_create(g, S->m, K, Z);
  int *scnt = ntk_calloc((size_t)npc, sizeof(int), "column exchange counts");
  int *sdsp = ntk_calloc((size_t)npc, sizeof(int), "column exchange counts");
  int *rcnt = ntk_calloc((size_t)npc, sizeof(int), "column exchange counts");
  int *rdsp = ntk_calloc((size_t)npc, sizeof(int), "column exchange counts");
  int *cur = ntk_calloc((size_t)npc, sizeof(int), "column exchange counts");
  double *sbuf = NULL, *rbuf = NULL;
  if (err) goto done;
  if (!scnt || !sdsp || !rcnt || !rdsp || !cur) {
    err = NTK_ERR_MEMORY;
    goto done;
  }
  size_t stot = 0, rtot = 0;
  for (int jl = 0; jl < S->nloc; ++jl) {
    int j = ntk_dmat_col_l2g(S, jl);
    if (j < s0 || j >= s0 + K) continue;
    int d = K - 1 - (j - s0);
    scnt[(d / nb) % npc] += ml;
    stot += (size_t)ml;
  }
  for (int dl = 0; dl < Z->nloc; ++dl) {
    int j = s0 + K - 1 - ntk_dmat_col_l2g(Z, dl);
    rcnt[(j / nb) % npc] += ml;
    rtot += (size_t)ml;
  }
  if (stot > INT_MAX || rtot > INT_MAX) {
    err = ntk_err_set(NTK_ERR_MEMORY, "eigenvector reordering: %zu local entries exceed the "
                      "MPI count limit; use more ranks", stot > rtot ? stot : rtot);
    goto done;
  }
  for (int p = 1; p < npc; ++p) {
    sdsp[p] = sdsp[p - 1] + scnt[p - 1];
    rdsp[p] = rdsp[p - 1] + rcnt[p - 1];
  }
  sbuf = ntk_malloc((stot ? stot : 1) * sizeof(double), "eigenvector send buffer");
  rbuf = ntk_malloc((rtot ? rtot : 1) * sizeof(double), "eigenvector receive buffer");
  if (!sbuf || !rbuf) {
    err = NTK_ERR_MEMORY;
    goto done;
  }
  for (int jl = 0; jl < S->nloc; ++jl) {
    int j = ntk_dmat_col_l2g(S, jl);
    if (j < s0 || j >= s0 + K) continue;
    int p = ((K - 1 - (j - s0)) / nb) % npc;
    memcpy(sbuf + sdsp[p] + cur[p], S->a + (size_t)jl * S->lld, (size_t)ml * sizeof(double));
    cur[p] += ml;
  }
done:
  /* the exchange is collective: agree on allocation failures before entering it */
  err = ntk_err_sync(g->comm, err);
  if (err == NTK_OK) {
    MPI_Alltoallv(sbuf, scnt, sdsp, MPI_DOUBLE, rbuf, rcnt, rdsp, MPI_DOUBLE, g->row_comm);
    memset(cur, 0, (size_t)npc * sizeof(int));
    for (int dl = Z->nloc - 1; dl >= 0; --dl) {
      int j = s0 + K - 1 - ntk_dmat_col_l2g(Z, dl);
      int p = (j / nb) % npc;
      memcpy(Z->a + (size_t)dl * Z->lld, rbuf + rdsp[p] + cur[p], (size_t)ml * sizeof(double));
      cur[p] += ml;
    }
  } else {
    ntk_dmat_free(Z);
  }
  free(scnt);
  free(sdsp);
  free(rcnt);
  free(rdsp);
  free(cur);
  free(sbuf);
  free(rbuf);
  return err;
}

/* Shared tail of the drivers: descending eigenvalues from the ascending w (the K largest
 * sit at w[s0 .. s0+K-1]) and, if asked, the reversed eigenvector columns of Zf. */
static int finish(const ntk_dmat *Zf, const double *w, int s0, int K, int want_vectors,
                  double *w_desc, ntk_dmat *Z) {
  for (int i = 0; i < K; ++i) w_desc[i] = w[s0 + K - 1 - i];
  if (want_vectors) NTK_CHECK(reverse_columns(Zf, s0, K, Z));
  return NTK_OK;
}

/* Workspace PDORMTR (SIDE = 'L', lower, C at (1,1)) documents for a C with mp local rows
 * and nq local columns. */
static double ormtr_lwork(int mp, int nq, int nb) {
  double a = 0.5 * nb * (nb - 1.0), b = ((double)mp + nq) * nb;
  return (a > b ? a : b) + (double)nb * nb;
}

/* What the three ScaLAPACK drivers share: the N x N vector matrix they write (when they
 * write one), the ascending eigenvalues, the workspaces and their query.  Each step agrees
 * on its outcome across ranks, since the next ScaLAPACK call is collective. */
typedef struct {
  const char *name;
  int generous; /* the query is known to underestimate (PDSYEVR): a wider margin */
  ntk_dmat Zf;
  double *w, *work, wq[4];
  int *iwork, iwq[4], lwork, liwork;
} eig_driver;

static int driver_begin(eig_driver *d, const ntk_dmat *A, int want_z) {
  d->lwork = d->liwork = -1;
  int err = want_z ? ntk_dmat_create(A->g, A->m, A->m, &d->Zf) : NTK_OK;
  if (err == NTK_OK) {
    d->w = ntk_calloc((size_t)A->m, sizeof(double), "eigenvalues");
    if (!d->w) err = NTK_ERR_MEMORY;
  }
  return ntk_err_sync(A->g->comm, err);
}

/* After the query (info): workspaces of at least lw_min reals and, with liw_min >= 0, of
 * at least liw_min integers. */
static int driver_workspace(eig_driver *d, const ntk_grid *g, int info, double lw_min, double liw_min) {
  int err = NTK_OK;
  if (info != 0) {
    err = ntk_err_set(NTK_ERR_RUNTIME, "%s workspace query failed (info %d)", d->name, info);
  } else {
    err = workspace_size(d->wq[0], lw_min, d->generous, d->name, "real", &d->lwork);
    if (!err && liw_min >= 0.0)
      err = workspace_size((double)d->iwq[0], liw_min, d->generous, d->name, "integer", &d->liwork);
    if (!err) {
      d->work = ntk_malloc((size_t)d->lwork * sizeof(double), "eigensolver workspace");
      if (!d->work) err = NTK_ERR_MEMORY;
    }
    if (!err && liw_min >= 0.0) {
      d->iwork = ntk_malloc((size_t)d->liwork * sizeof(int), "eigensolver integer workspace");
      if (!d->iwork) err = NTK_ERR_MEMORY;
    }
  }
  return ntk_err_sync(g->comm, err);
}

/* After the solve: its info, and err from the caller's own checks of what it returned. */
static int driver_check(const eig_driver *d, const ntk_grid *g, int info, int err) {
  if (info != 0) err = ntk_err_set(NTK_ERR_RUNTIME, "%s failed (info %d)", d->name, info);
  return ntk_err_sync(g->comm, err);
}

static void driver_end(eig_driver *d) {
  ntk_dmat_free(&d->Zf);
  free(d->w);
  free(d->work);
  free(d->iwork);
}

/* MRRR.  RANGE = 'I' with IL = N-MZ+1, IU = N computes only the MZ >= K largest.
 *
 * PDSYEVR hands the back-transformation PDORMTR a workspace sized by its own formula,
 * max(18N, NP0*MQ0 + 2NB^2) with NP0, MQ0 the local sizes of process (0,0), whatever
 * LWORK is, while PDORMTR needs (MpC0 + NqC0)*NB + NB^2.  That is short whenever
 * NP0 > NB > MQ0, i.e. fewer than NB wanted eigenvectors of a matrix larger than one
 * block: PDORMTR then rejects its LWORK, PDSYEVR still returns INFO = 0 and the vectors
 * are those of the tridiagonal matrix.  Asking for at least NB eigenpairs keeps
 * (NP0 - NB)(MQ0 - NB) >= 0, which makes the formula sufficient; the extra MRRR pairs
 * are cheap and dropped. */
static int solve_pdsyevr(ntk_dmat *A, int top_k, int want_vectors, double *w_desc, ntk_dmat *Z) {
  const ntk_grid *g = A->g;
  const int n = A->m, K = resolve_k(n, top_k);
  int mz = K;
  if (want_vectors && n >= g->nb && mz < g->nb) mz = g->nb;
  const char jobz = want_vectors ? 'V' : 'N', range = mz == n ? 'A' : 'I';
  const int il = n - mz + 1, iu = n;
  const double vl = 0.0, vu = 0.0;
  int m = 0, nz = 0, info = 0;
  eig_driver d = {.name = "pdsyevr", .generous = 1};
  int err = driver_begin(&d, A, want_vectors);
  /* with JOBZ = 'N' Z is not referenced; A's array and descriptor stand in for it */
  double *za = want_vectors ? d.Zf.a : A->a;
  const int *zdesc = want_vectors ? d.Zf.desc : A->desc;
  if (err) goto done;
  pdsyevr_(&jobz, &range, "L", &n, A->a, &ione, &ione, A->desc, &vl, &vu, &il, &iu, &m, &nz, d.w,
           za, &ione, &ione, zdesc, d.wq, &d.lwork, d.iwq, &d.liwork, &info);
  int nnp = n > g->size + 1 ? n : g->size + 1;
  if (nnp < 4) nnp = 4;
  if ((err = driver_workspace(&d, g, info, 3.0, (want_vectors ? 12.0 : 10.0) * nnp + 2.0 * n)))
    goto done;
  pdsyevr_(&jobz, &range, "L", &n, A->a, &ione, &ione, A->desc, &vl, &vu, &il, &iu, &m, &nz, d.w,
           za, &ione, &ione, zdesc, d.work, &d.lwork, d.iwork, &d.liwork, &info);
  if (info == 0 && (m != mz || (want_vectors && nz != mz)))
    err = ntk_err_set(NTK_ERR_RUNTIME, "pdsyevr returned %d eigenvalues and %d vectors of %d",
                      m, want_vectors ? nz : 0, mz);
  if ((err = driver_check(&d, g, info, err))) goto done;
  err = finish(&d.Zf, d.w, mz - K, K, want_vectors, w_desc, Z);
done:
  driver_end(&d);
  return err;
}

/* Divide and conquer: always the full spectrum and all eigenvectors. */
static int solve_pdsyevd(ntk_dmat *A, int top_k, int want_vectors, double *w_desc, ntk_dmat *Z) {
  const ntk_grid *g = A->g;
  const int n = A->m, K = resolve_k(n, top_k);
  int info = 0;
  eig_driver d = {.name = "pdsyevd"};
  int err = driver_begin(&d, A, 1);
  if (err) goto done;
  pdsyevd_("V", "L", &n, A->a, &ione, &ione, A->desc, d.w, d.Zf.a, &ione, &ione, d.Zf.desc, d.wq,
           &d.lwork, d.iwq, &d.liwork, &info);
  /* the query returns PDSYEVD's documented LWMIN, which leaves PDORMTR (given LWORK - 2N)
   * short when NB is large against the local sizes: add what PDORMTR documents */
  if ((err = driver_workspace(&d, g, info, 2.0 * n + ormtr_lwork(A->mloc, d.Zf.nloc, g->nb),
                              7.0 * n + 8.0 * g->npcol + 2.0)))
    goto done;
  pdsyevd_("V", "L", &n, A->a, &ione, &ione, A->desc, d.w, d.Zf.a, &ione, &ione, d.Zf.desc, d.work,
           &d.lwork, d.iwork, &d.liwork, &info);
  if ((err = driver_check(&d, g, info, NTK_OK))) goto done;
  err = finish(&d.Zf, d.w, n - K, K, want_vectors, w_desc, Z);
done:
  driver_end(&d);
  return err;
}

/* QR iteration: the full spectrum, vectors only when asked; the slow, simple reference. */
static int solve_pdsyev(ntk_dmat *A, int top_k, int want_vectors, double *w_desc, ntk_dmat *Z) {
  const ntk_grid *g = A->g;
  const int n = A->m, K = resolve_k(n, top_k);
  const char jobz = want_vectors ? 'V' : 'N';
  int info = 0;
  eig_driver d = {.name = "pdsyev", .generous = 1};
  int err = driver_begin(&d, A, want_vectors);
  double *za = want_vectors ? d.Zf.a : A->a;
  const int *zdesc = want_vectors ? d.Zf.desc : A->desc;
  if (err) goto done;
  pdsyev_(&jobz, "L", &n, A->a, &ione, &ione, A->desc, d.w, za, &ione, &ione, zdesc, d.wq,
          &d.lwork, &info);
  if ((err = driver_workspace(&d, g, info, 1.0, -1.0))) goto done;
  pdsyev_(&jobz, "L", &n, A->a, &ione, &ione, A->desc, d.w, za, &ione, &ione, zdesc, d.work,
          &d.lwork, &info);
  if ((err = driver_check(&d, g, info, NTK_OK))) goto done;
  err = finish(&d.Zf, d.w, n - K, K, want_vectors, w_desc, Z);
done:
  driver_end(&d);
  return err;
}

/* The first entry is the default. */
/* The rule of docs/PERFORMANCE.md ("Eigensolvers"), measured on 2 ranks at N = 2048, 4096
 * and 8192 (quiet machine): ELPA 2-stage is 1.9-3x faster than PDSYEVR from N = 4096 on
 * for the top K, and 2-3x for all eigenvalues without vectors from N = 2048 on; with all N
 * eigenvectors it is 1.7-2x slower (Debian's ELPA has only the generic back-transformation
 * kernels) and PDSYEVD is the fastest from N = 2048 on; otherwise PDSYEVR is as fast as
 * any (below N = 2048 nothing was measured to beat it). */
const char *ntk_eig_auto_choice(int N, int K, int want_vectors) {
  if (K >= N) {
    if (N < 2048) return "pdsyevr";
    return want_vectors ? "pdsyevd" : "elpa2";
  }
  return N >= 4096 ? "elpa2" : "pdsyevr";
}

static int solve_auto(ntk_dmat *A, int top_k, int want_vectors, double *w_desc, ntk_dmat *Z) {
  const ntk_eigensolver *s =
      ntk_eig_find(ntk_eig_auto_choice(A->m, resolve_k(A->m, top_k), want_vectors));
  return s->solve(A, top_k, want_vectors, w_desc, Z);
}

/* The back-ends' memory (measured, docs/HARDENING.md "Memory: estimate and limit").
 * PDSYEVR and PDSYEVD allocate Z as N x N even for the top K; PDSYEVD always computes
 * vectors; ELPA copies its own vectors (no reordering).  PDSYEVR on a non-square grid
 * redistributes the matrix (PDSYNTRD -> PDTRMR2D) through BLACS's send buffer, which BLACS
 * keeps for the rest of the run: about half a block. */
static ntk_eig_cost cost_pdsyevr(const ntk_grid *g, int v) {
  const double kept = g->nprow != g->npcol ? 0.5 : 0.0;
  return v ? (ntk_eig_cost){1.0, 2.2, 2.2, kept, 1} : (ntk_eig_cost){0.0, 2.2, 0.0, kept, 0};
}
static ntk_eig_cost cost_pdsyevd(const ntk_grid *g, int v) {
  (void)g;
  return (ntk_eig_cost){1.0, 1.65, 1.65, 0.0, v};
}
static ntk_eig_cost cost_pdsyev(const ntk_grid *g, int v) {
  (void)g;
  return v ? (ntk_eig_cost){1.0, 2.8, 1.6, 0.0, 1} : (ntk_eig_cost){0.0, 0.05, 0.05, 0.0, 0};
}
static ntk_eig_cost cost_elpa2(const ntk_grid *g, int v) {
  (void)g;
  return v ? (ntk_eig_cost){1.0, 1.5, 1.5, 0.0, 0} : (ntk_eig_cost){0.0, 2.9, 0.0, 0.0, 0};
}

const ntk_eigensolver ntk_eigensolvers[] = {
    {"auto",
     "by size (default): from N = 2048 pdsyevd for all eigenvectors, elpa2 for all "
     "eigenvalues; elpa2 for the top K from N = 4096; else pdsyevr", 1, NULL, solve_auto},
    {"pdsyevr", "ScaLAPACK MRRR (PDSYEVR); computes only the top K by index range", 1,
     cost_pdsyevr, solve_pdsyevr},
    {"pdsyevd",
     "ScaLAPACK divide and conquer (PDSYEVD); full spectrum and vectors always, top K kept", 0,
     cost_pdsyevd, solve_pdsyevd},
    {"pdsyev", "ScaLAPACK QR iteration (PDSYEV); full spectrum, slow but simple reference", 0,
     cost_pdsyev, solve_pdsyev},
    {"elpa2", "ELPA 2-stage (band, then tridiagonal); computes only the top K vectors", 1,
     cost_elpa2, ntk_eig_solve_elpa2},
};
const int ntk_num_eigensolvers = (int)(sizeof ntk_eigensolvers / sizeof ntk_eigensolvers[0]);

const char *ntk_eig_resolve(const char *name, int N, int top_k, int want_vectors) {
  if (name && strcmp(name, "auto") == 0)
    return ntk_eig_auto_choice(N, resolve_k(N, top_k), want_vectors);
  return name;
}

ntk_eig_cost ntk_eig_memory(const char *name, const ntk_grid *g, int N, int top_k, int want_vectors) {
  const ntk_eigensolver *s = ntk_eig_find(ntk_eig_resolve(name, N, top_k, want_vectors));
  if (!s || !s->cost) s = ntk_eig_find("pdsyevr");
  return s->cost(g, want_vectors);
}

int64_t ntk_eig_solve_bytes(const ntk_eig_cost *c, int want_vectors, int64_t B, int64_t V) {
  int64_t inside = ntk_size_from_double((c->zfull + c->work_inside) * (double)B);
  int64_t after = ntk_size_from_double((c->zfull + c->work_after) * (double)B);
  if (want_vectors && c->reorders) after = ntk_size_add(after, ntk_size_mul(2, V));
  return ntk_size_add(B, ntk_size_max(inside, after));
}

const ntk_eigensolver *ntk_eig_find(const char *name) {
  if (!name) return NULL;
  for (int i = 0; i < ntk_num_eigensolvers; ++i)
    if (strcmp(ntk_eigensolvers[i].name, name) == 0) return &ntk_eigensolvers[i];
  return NULL;
}

int ntk_eig_solve(const char *name, const ntk_dmat *A, int top_k, int want_vectors,
                  double *w_desc, ntk_dmat *Z) {
  const ntk_eigensolver *s = ntk_eig_find(name);
  if (!s) {
    char list[256] = "";
    for (int i = 0; i < ntk_num_eigensolvers; ++i) {
      if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
      strncat(list, ntk_eigensolvers[i].name, sizeof list - strlen(list) - 1);
    }
    return ntk_err_set(NTK_ERR_INPUT, "unknown eigensolver '%s' (available: %s)",
                       name ? name : "(null)", list);
  }
  if (A->m != A->n)
    return ntk_err_set(NTK_ERR_INTERNAL, "eigensolver on a non-square %d x %d matrix", A->m,
                       A->n);
  if (top_k < 0 || top_k > A->m)
    return ntk_err_set(NTK_ERR_INPUT, "top_k = %d: must be between 0 (all) and N = %d", top_k,
                       A->m);
  if (want_vectors && !Z)
    return ntk_err_set(NTK_ERR_INTERNAL, "eigenvectors requested without a matrix for them");
  const int K = resolve_k(A->m, top_k);
  ntk_dmat work;
  int err = ntk_err_sync(A->g->comm, ntk_dmat_copy(A, &work));
  if (err) {
    ntk_dmat_free(&work);
    return err;
  }
  err = s->solve(&work, K, want_vectors, w_desc, Z);
  ntk_dmat_free(&work);
  if (err) return err;
  /* later code compares spectra across ranks: make them bitwise identical */
  MPI_Bcast(w_desc, K, MPI_DOUBLE, 0, A->g->comm);
  return NTK_OK;
}
