/* ntk_eig_elpa: the ELPA 2-stage back-end of the eigensolver table (Debian libelpa-dev).
 *
 * ELPA reduces the matrix to a band and then to tridiagonal form (two stages, mostly BLAS-3
 * in the first), solves the tridiagonal problem by divide and conquer and back-transforms
 * only the NEV wanted vectors.  It works on the same block-cyclic layout as ScaLAPACK
 * (square blocks, first block on process (0,0)), so an ntk_dmat is passed as it is.
 *
 * What differs from the ScaLAPACK drivers and is handled here:
 *  - ELPA reads the whole matrix, not one triangle: the lower triangle (our contract) is
 *    mirrored first (ntk_dmat_symmetrize_lower).
 *  - ELPA computes the NEV *smallest* eigenpairs.  The top K of A are the K smallest of
 *    -A, in the order we want (descending for A), so A is negated and no column reversal
 *    is needed; the eigenvalues are negated back.
 *  - The eigenvector matrix must have A's global shape (N x N) even when only K columns
 *    are filled.  The first K columns of an N x N block-cyclic matrix are laid out exactly
 *    like an N x K matrix (the local index of a column depends only on its global index),
 *    so they are copied locally into the N x K result.
 *  - The eigenvalue array must hold N entries whatever NEV is.
 *  - ELPA's setup refuses a rank with an empty local part (fewer blocks than process rows
 *    or columns, e.g. N = 67 with NB = 64 on 4 process rows).  Such (small) matrices are
 *    redistributed to a block size that gives every rank a block, solved, and the
 *    eigenvectors moved back (PDGEMR2D). */
#include <elpa/elpa.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_eig.h"
#include "ntk_error.h"
#include "ntk_scalapack.h"

/* elpa_init may be called once per process; its state is only freed at exit. */
static int elpa_ready(void) {
  static int ready = 0;
  if (!ready) {
    if (elpa_init(ELPA_API_VERSION) != ELPA_OK)
      return ntk_err_set(NTK_ERR_RUNTIME, "elpa: elpa_init(%d) refused the API version (library "
                         "too old or too new)", ELPA_API_VERSION);
    ready = 1;
  }
  return NTK_OK;
}

static int set_int(elpa_t h, const char *key, int value) {
  int e = ELPA_OK;
  elpa_set_integer(h, key, value, &e);
  if (e != ELPA_OK)
    return ntk_err_set(NTK_ERR_RUNTIME, "elpa: cannot set %s = %d (%s)", key, value, elpa_strerr(e));
  return NTK_OK;
}

/* Every rank configures the handle identically, so a failure here is the same on all of
 * them (it is synced by the caller anyway). */
static int configure(elpa_t h, const ntk_dmat *A, int nev) {
  const ntk_grid *g = A->g;
  NTK_CHECK(set_int(h, "na", A->m));
  NTK_CHECK(set_int(h, "nev", nev));
  NTK_CHECK(set_int(h, "local_nrows", A->mloc));
  NTK_CHECK(set_int(h, "local_ncols", A->nloc));
  NTK_CHECK(set_int(h, "nblk", g->nb));
  NTK_CHECK(set_int(h, "mpi_comm_parent", (int)MPI_Comm_c2f(g->comm)));
  NTK_CHECK(set_int(h, "process_row", g->myrow));
  NTK_CHECK(set_int(h, "process_col", g->mycol));
  int e = elpa_setup(h);
  if (e != ELPA_OK) return ntk_err_set(NTK_ERR_RUNTIME, "elpa: setup failed (%s)", elpa_strerr(e));
  NTK_CHECK(set_int(h, "solver", ELPA_SOLVER_2STAGE));
  return NTK_OK;
}

static int solve_core(ntk_dmat *A, int top_k, int want_vectors, double *w_desc, ntk_dmat *Z) {
  const ntk_grid *g = A->g;
  const int n = A->m, K = top_k > 0 ? top_k : n;
  ntk_dmat Q;
  memset(&Q, 0, sizeof Q);
  double *ev = NULL;
  elpa_t h = NULL;
  int err = elpa_ready();
  if (!err) err = ntk_dmat_symmetrize_lower(A);
  if (!err && want_vectors) err = ntk_dmat_create(g, n, n, &Q);
  if (!err) {
    ev = ntk_calloc((size_t)n, sizeof(double), "eigenvalues");
    if (!ev) err = NTK_ERR_MEMORY;
  }
  if (!err) {
    int e = ELPA_OK;
    h = elpa_allocate(&e);
    if (e != ELPA_OK || !h) err = ntk_err_set(NTK_ERR_RUNTIME, "elpa: cannot allocate a handle (%s)", elpa_strerr(e));
  }
  if (!err) err = configure(h, A, K);
  err = ntk_err_sync(g->comm, err);
  if (err) goto done;
  const size_t len = (size_t)A->lld * (size_t)A->nloc;
  for (size_t e = 0; e < len; ++e) A->a[e] = -A->a[e];
  int e = ELPA_OK;
  if (want_vectors)
    elpa_eigenvectors_a_h_a_d(h, A->a, ev, Q.a, &e);
  else
    elpa_eigenvalues_a_h_a_d(h, A->a, ev, &e);
  if (e != ELPA_OK)
    err = ntk_err_set(NTK_ERR_RUNTIME, "elpa: 2-stage %s failed (%s)",
                      want_vectors ? "eigenvectors" : "eigenvalues", elpa_strerr(e));
  err = ntk_err_sync(g->comm, err);
  if (err) goto done;
  for (int i = 0; i < K; ++i) w_desc[i] = -ev[i];
  if (want_vectors) {
    err = ntk_dmat_create(g, n, K, Z);
    if (!err)
      for (int jl = 0; jl < Z->nloc; ++jl)
        memcpy(Z->a + (size_t)jl * Z->lld, Q.a + (size_t)jl * Q.lld, (size_t)Z->mloc * sizeof(double));
    err = ntk_err_sync(g->comm, err);
    if (err) ntk_dmat_free(Z);
  }
done:
  if (h) {
    int e2;
    elpa_deallocate(h, &e2);
  }
  ntk_dmat_free(&Q);
  free(ev);
  return err;
}

int ntk_eig_solve_elpa2(ntk_dmat *A, int top_k, int want_vectors, double *w_desc, ntk_dmat *Z) {
  const ntk_grid *g = A->g;
  const int n = A->m, K = top_k > 0 ? top_k : n;
  const int pmax = g->nprow > g->npcol ? g->nprow : g->npcol;
  if ((n + g->nb - 1) / g->nb >= pmax) return solve_core(A, K, want_vectors, w_desc, Z);
  if (n < pmax)
    return ntk_err_set(NTK_ERR_INPUT, "elpa2: N = %d is smaller than the %d x %d process grid; "
                       "use another eigensolver or fewer ranks", n, g->nprow, g->npcol);
  /* the same BLACS context with a smaller block: only the layout changes */
  ntk_grid g2 = *g;
  g2.nb = n / pmax;
  ntk_dmat A2, Z2;
  memset(&Z2, 0, sizeof Z2);
  int err = ntk_err_sync(g->comm, ntk_dmat_create(&g2, n, n, &A2));
  if (err) {
    ntk_dmat_free(&A2);
    return err;
  }
  const int one = 1;
  pdgemr2d_(&n, &n, A->a, &one, &one, A->desc, A2.a, &one, &one, A2.desc, &g->ctxt);
  err = solve_core(&A2, K, want_vectors, w_desc, want_vectors ? &Z2 : NULL);
  ntk_dmat_free(&A2);
  if (!err && want_vectors) {
    err = ntk_err_sync(g->comm, ntk_dmat_create(g, n, K, Z));
    if (!err)
      pdgemr2d_(&n, &K, Z2.a, &one, &one, Z2.desc, Z->a, &one, &one, Z->desc, &g->ctxt);
    else
      ntk_dmat_free(Z);
  }
  ntk_dmat_free(&Z2);
  return err;
}
