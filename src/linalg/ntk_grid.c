#include "ntk_grid.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_error.h"
#include "ntk_scalapack.h"
#include "ntk_size.h"

static const int izero = 0, ione = 1;

void ntk_grid_choose(int size, int *nprow, int *npcol) {
  int c = 1;
  for (int k = 1; (long)k * k <= size; ++k)
    if (size % k == 0) c = k;
  *npcol = c;
  *nprow = size / c;
}

/* Blocks of nb that m indices make (ceil(m / nb)), without overflow. */
static int64_t block_count(int64_t m, int nb) { return m / nb + (m % nb != 0); }

static int fits(int64_t m, int64_t n, int pr, int pc, int nb) {
  return block_count(m, nb) >= pr && block_count(n, nb) >= pc;
}

/* NTK_GRID_BLOCK_DEFAULT when it gives every process row a block of the m rows and every
 * process column one of the n columns (the problems that fill the grid keep it); else
 * the even split, ceil(m / pr) or ceil(n / pc), or the largest block below it that does;
 * 0 if none does. */
static int auto_block(int64_t m, int64_t n, int pr, int pc) {
  if (fits(m, n, pr, pc, NTK_GRID_BLOCK_DEFAULT)) return NTK_GRID_BLOCK_DEFAULT;
  int64_t even = block_count(m, pr) < block_count(n, pc) ? block_count(m, pr) : block_count(n, pc);
  for (int nb = even < NTK_GRID_BLOCK_DEFAULT ? (int)even : NTK_GRID_BLOCK_DEFAULT; nb >= 1; --nb)
    if (fits(m, n, pr, pc, nb)) return nb;
  return 0;
}

/* rows/cols with at most one of them 0 (the other given): the full shape, or an error. */
static int complete_shape(int size, int *rows, int *cols) {
  if (*rows == 0) {
    if (*cols < 1 || size % *cols)
      return ntk_err_set(NTK_ERR_INPUT, "grid.cols: %d does not divide the %d MPI ranks", *cols, size);
    *rows = size / *cols;
  } else if (*cols == 0) {
    if (*rows < 1 || size % *rows)
      return ntk_err_set(NTK_ERR_INPUT, "grid.rows: %d does not divide the %d MPI ranks", *rows, size);
    *cols = size / *rows;
  }
  /* negative shapes can multiply to the rank count; BLACS would abort on them */
  if (*rows < 1 || *cols < 1 || (int64_t)*rows * *cols != size)
    return ntk_err_set(NTK_ERR_INPUT,
                       "grid.rows x grid.cols = %d x %d does not match the %d MPI ranks", *rows,
                       *cols, size);
  return NTK_OK;
}

/* The refusal of a fixed layout: the first dimension without a block for each process. */
static int layout_error(int64_t m, int64_t n, int pr, int pc, int nb) {
  int64_t rb = block_count(m, nb), cb = block_count(n, nb);
  const char *fix = nb > 1 ? ", or a smaller grid.block_size" : "";
  if (rb < pr)
    return ntk_err_set(NTK_ERR_INPUT,
                       "%lld samples in blocks of %d give %lld row block(s) for %d process rows: "
                       "use fewer ranks, grid.rows <= %lld%s",
                       (long long)m, nb, (long long)rb, pr, (long long)rb, fix);
  return ntk_err_set(NTK_ERR_INPUT,
                     "width %lld in blocks of %d gives %lld column block(s) for %d process "
                     "columns: use fewer ranks, grid.cols <= %lld%s",
                     (long long)n, nb, (long long)cb, pc, (long long)cb, fix);
}

int ntk_grid_layout(int size, int rows, int cols, int block_size, int64_t m, int64_t n,
                    int *nprow, int *npcol, int *nb) {
  if (block_size < 0)
    return ntk_err_set(NTK_ERR_INPUT, "grid.block_size: must be >= 1 (or 0 = automatic), got %d",
                       block_size);
  if (size < 1 || m < 1 || n < 1)
    return ntk_err_set(NTK_ERR_INTERNAL, "grid layout for %d ranks and %lld x %lld", size,
                       (long long)m, (long long)n);
  /* candidate shapes: the one given, else ntk_grid_choose's first and then the others,
   * most square first (more rows on a tie), for when the first leaves a process row or
   * column empty */
  int cand[64][2], nc = 0;
  if (rows != 0 || cols != 0) {
    NTK_CHECK(complete_shape(size, &rows, &cols));
    cand[nc][0] = rows;
    cand[nc++][1] = cols;
  } else {
    ntk_grid_choose(size, &cand[0][0], &cand[0][1]);
    nc = 1;
    /* divisors c <= sqrt(size) from the largest down: c columns, then c rows */
    for (int c = cand[0][1]; c >= 1 && nc < 62; --c) {
      if (size % c) continue;
      const int shapes[2][2] = {{size / c, c}, {c, size / c}};
      for (int t = 0; t < 2; ++t)
        if (!(shapes[t][0] == cand[0][0] && shapes[t][1] == cand[0][1]) &&
            !(t == 1 && shapes[1][0] == shapes[0][0])) {
          cand[nc][0] = shapes[t][0];
          cand[nc++][1] = shapes[t][1];
        }
    }
  }
  for (int i = 0; i < nc; ++i) {
    const int pr = cand[i][0], pc = cand[i][1];
    const int b = block_size > 0 ? (fits(m, n, pr, pc, block_size) ? block_size : 0)
                                 : auto_block(m, n, pr, pc);
    if (b > 0) {
      *nprow = pr;
      *npcol = pc;
      *nb = b;
      return NTK_OK;
    }
  }
  return layout_error(m, n, cand[0][0], cand[0][1], block_size > 0 ? block_size : 1);
}

int ntk_grid_create_for(MPI_Comm comm, int rows, int cols, int block_size, int64_t m, int64_t n,
                        ntk_grid *g) {
  int size = 1, pr = 0, pc = 0, nb = 0;
  MPI_Comm_size(comm, &size);
  memset(g, 0, sizeof *g);
  NTK_CHECK(ntk_grid_layout(size, rows, cols, block_size, m, n, &pr, &pc, &nb));
  NTK_CHECK(ntk_grid_create(comm, pr, pc, nb, g));
  return NTK_OK;
}

int ntk_grid_create(MPI_Comm comm, int rows, int cols, int block_size, ntk_grid *g) {
  memset(g, 0, sizeof *g);
  g->comm = comm;
  MPI_Comm_rank(comm, &g->rank);
  MPI_Comm_size(comm, &g->size);
  if (block_size < 1)
    return ntk_err_set(NTK_ERR_INPUT, "grid.block_size: must be >= 1, got %d", block_size);
  if (rows == 0 && cols == 0)
    ntk_grid_choose(g->size, &rows, &cols);
  else
    NTK_CHECK(complete_shape(g->size, &rows, &cols));
  if (comm != MPI_COMM_WORLD)
    return ntk_err_set(NTK_ERR_INTERNAL, "the BLACS grid must be built on MPI_COMM_WORLD");
  g->nb = block_size;
  Cblacs_get(-1, 0, &g->ctxt);
  Cblacs_gridinit(&g->ctxt, "Row", rows, cols);
  Cblacs_gridinfo(g->ctxt, &g->nprow, &g->npcol, &g->myrow, &g->mycol);
  MPI_Comm_split(comm, g->myrow, g->mycol, &g->row_comm);
  MPI_Comm_split(comm, g->mycol, g->myrow, &g->col_comm);
  return NTK_OK;
}

void ntk_grid_free(ntk_grid *g) {
  ntk_dmat_panels_release();
  if (g->row_comm != MPI_COMM_NULL && g->row_comm) MPI_Comm_free(&g->row_comm);
  if (g->col_comm != MPI_COMM_NULL && g->col_comm) MPI_Comm_free(&g->col_comm);
  if (g->nprow > 0) Cblacs_gridexit(g->ctxt);
  memset(g, 0, sizeof *g);
}

static int local_count(int n, int nb, int p, int np) { return numroc_(&n, &nb, &p, &izero, &np); }

size_t ntk_dmat_local_bytes(const ntk_grid *g, int m, int n) {
  return (size_t)local_count(m, g->nb, g->myrow, g->nprow) *
         (size_t)local_count(n, g->nb, g->mycol, g->npcol) * sizeof(double);
}

int ntk_dmat_create(const ntk_grid *g, int m, int n, ntk_dmat *A) {
  memset(A, 0, sizeof *A);
  if (m < 1 || n < 1)
    return ntk_err_set(NTK_ERR_INTERNAL, "distributed matrix of shape %d x %d", m, n);
  A->g = g;
  A->m = m;
  A->n = n;
  A->mloc = local_count(m, g->nb, g->myrow, g->nprow);
  A->nloc = local_count(n, g->nb, g->mycol, g->npcol);
  A->lld = A->mloc > 1 ? A->mloc : 1;
  int info = 0;
  descinit_(A->desc, &m, &n, &g->nb, &g->nb, &izero, &izero, &g->ctxt, &A->lld, &info);
  if (info != 0) return ntk_err_set(NTK_ERR_INTERNAL, "descinit failed (info %d)", info);
  A->a = ntk_calloc((size_t)A->lld * (size_t)(A->nloc > 0 ? A->nloc : 1), sizeof(double),
                    "a distributed matrix");
  if (!A->a) return NTK_ERR_MEMORY;
  return NTK_OK;
}

void ntk_dmat_free(ntk_dmat *A) {
  free(A->a);
  memset(A, 0, sizeof *A);
}

int ntk_dmat_copy(const ntk_dmat *src, ntk_dmat *dst) {
  NTK_CHECK(ntk_dmat_create(src->g, src->m, src->n, dst));
  memcpy(dst->a, src->a, (size_t)src->lld * (size_t)src->nloc * sizeof(double));
  return NTK_OK;
}

void ntk_dmat_zero(ntk_dmat *A) {
  memset(A->a, 0, (size_t)A->lld * (size_t)A->nloc * sizeof(double));
}

static int l2g(int il, int nb, int p, int np) { return (il / nb) * nb * np + p * nb + il % nb; }

int ntk_dmat_row_l2g(const ntk_dmat *A, int iloc) {
  return l2g(iloc, A->g->nb, A->g->myrow, A->g->nprow);
}
int ntk_dmat_col_l2g(const ntk_dmat *A, int jloc) {
  return l2g(jloc, A->g->nb, A->g->mycol, A->g->npcol);
}

static int g2l(int i, int nb, int p, int np, int *il) {
  if ((i / nb) % np != p) return 0;
  *il = (i / (nb * np)) * nb + i % nb;
  return 1;
}

int ntk_dmat_row_g2l(const ntk_dmat *A, int i, int *iloc) {
  return g2l(i, A->g->nb, A->g->myrow, A->g->nprow, iloc);
}
int ntk_dmat_col_g2l(const ntk_dmat *A, int j, int *jloc) {
  return g2l(j, A->g->nb, A->g->mycol, A->g->npcol, jloc);
}

void ntk_dmat_fill(ntk_dmat *A, ntk_entry_fn fn, void *ctx) {
  for (int jl = 0; jl < A->nloc; ++jl) {
    int j = ntk_dmat_col_l2g(A, jl);
    for (int il = 0; il < A->mloc; ++il)
      A->a[il + (size_t)jl * A->lld] = fn(ntk_dmat_row_l2g(A, il), j, ctx);
  }
}

int ntk_dmat_symmetrize_lower(ntk_dmat *A) {
  if (A->m != A->n)
    return ntk_err_set(NTK_ERR_INTERNAL, "symmetrize: %d x %d is not square", A->m, A->n);
  ntk_dmat T;
  NTK_CHECK(ntk_dmat_create(A->g, A->n, A->m, &T));
  const double one = 1.0, zero = 0.0;
  pdtran_(&A->m, &A->n, &one, A->a, &ione, &ione, A->desc, &zero, T.a, &ione, &ione, T.desc);
  for (int jl = 0; jl < A->nloc; ++jl) {
    int j = ntk_dmat_col_l2g(A, jl);
    for (int il = 0; il < A->mloc; ++il)
      if (ntk_dmat_row_l2g(A, il) < j) A->a[il + (size_t)jl * A->lld] = T.a[il + (size_t)jl * T.lld];
  }
  ntk_dmat_free(&T);
  return NTK_OK;
}

double ntk_dmat_norm_fro(const ntk_dmat *A) {
  double s = 0.0, tot = 0.0;
  for (int jl = 0; jl < A->nloc; ++jl)
    for (int il = 0; il < A->mloc; ++il) {
      double v = A->a[il + (size_t)jl * A->lld];
      s += v * v;
    }
  MPI_Allreduce(&s, &tot, 1, MPI_DOUBLE, MPI_SUM, A->g->comm);
  return sqrt(tot);
}

double ntk_dmat_diff_fro(const ntk_dmat *A, const ntk_dmat *B) {
  double s = 0.0, tot = 0.0;
  for (int jl = 0; jl < A->nloc; ++jl)
    for (int il = 0; il < A->mloc; ++il) {
      double v = A->a[il + (size_t)jl * A->lld] - B->a[il + (size_t)jl * B->lld];
      s += v * v;
    }
  MPI_Allreduce(&s, &tot, 1, MPI_DOUBLE, MPI_SUM, A->g->comm);
  return sqrt(tot);
}

double ntk_dmat_trace(const ntk_dmat *A) {
  double s = 0.0, tot = 0.0;
  for (int jl = 0; jl < A->nloc; ++jl) {
    int il, j = ntk_dmat_col_l2g(A, jl);
    if (ntk_dmat_row_g2l(A, j, &il)) s += A->a[il + (size_t)jl * A->lld];
  }
  MPI_Allreduce(&s, &tot, 1, MPI_DOUBLE, MPI_SUM, A->g->comm);
  return tot;
}

int ntk_dmat_gemm(char ta, char tb, double alpha, const ntk_dmat *A, const ntk_dmat *B,
                  double beta, ntk_dmat *C) {
  int k = (ta == 'N' || ta == 'n') ? A->n : A->m;
  int kb = (tb == 'N' || tb == 'n') ? B->m : B->n;
  if (k != kb) return ntk_err_set(NTK_ERR_INTERNAL, "gemm: inner dimensions %d and %d", k, kb);
  /* PDGEMM only prints a mismatch with C, it cannot return it */
  int m = (ta == 'N' || ta == 'n') ? A->m : A->n, n = (tb == 'N' || tb == 'n') ? B->n : B->m;
  if (C->m != m || C->n != n)
    return ntk_err_set(NTK_ERR_INTERNAL, "gemm: C is %d x %d for a %d x %d product", C->m, C->n,
                       m, n);
  pdgemm_(&ta, &tb, &C->m, &C->n, &k, &alpha, A->a, &ione, &ione, A->desc, B->a, &ione, &ione,
          B->desc, &beta, C->a, &ione, &ione, C->desc);
  return NTK_OK;
}

int ntk_dmat_syrk_lower(double alpha, const ntk_dmat *A, double beta, ntk_dmat *C) {
  if (C->m != A->m || C->n != A->m)
    return ntk_err_set(NTK_ERR_INTERNAL, "syrk: C is %d x %d for A of %d rows", C->m, C->n, A->m);
  pdsyrk_("L", "N", &A->m, &A->n, &alpha, A->a, &ione, &ione, A->desc, &beta, C->a, &ione,
          &ione, C->desc);
  return NTK_OK;
}

/* Rank r of the "Row"-ordered grid sits at (r / npcol, r % npcol). */
int ntk_dmat_gather(const ntk_dmat *A, int root, double **full) {
  const ntk_grid *g = A->g;
  *full = NULL;
  int nloc_all = A->mloc * A->nloc;
  if (g->rank != root) {
    double *tmp = ntk_malloc((size_t)nloc_all * sizeof(double), "gather buffer");
    if (!tmp) return NTK_ERR_MEMORY;
    for (int jl = 0; jl < A->nloc; ++jl)
      memcpy(tmp + (size_t)jl * A->mloc, A->a + (size_t)jl * A->lld, (size_t)A->mloc * sizeof(double));
    MPI_Send(tmp, nloc_all, MPI_DOUBLE, root, 1, g->comm);
    free(tmp);
    return NTK_OK;
  }
  double *out = ntk_calloc((size_t)A->m * A->n, sizeof(double), "gathered matrix");
  /* process (0, 0) holds the largest block: one receive buffer fits every rank's */
  const int mmax = local_count(A->m, g->nb, 0, g->nprow), nmax = local_count(A->n, g->nb, 0, g->npcol);
  double *recv = ntk_malloc((size_t)(mmax * nmax > 0 ? mmax * nmax : 1) * sizeof(double), "gather buffer");
  if (!out || !recv) {
    free(out);
    free(recv);
    return NTK_ERR_MEMORY;
  }
  for (int r = 0; r < g->size; ++r) {
    int pr = r / g->npcol, pc = r % g->npcol;
    int ml = local_count(A->m, g->nb, pr, g->nprow), nl = local_count(A->n, g->nb, pc, g->npcol);
    const double *buf = A->a; /* the root's own block, with its leading dimension */
    int ld = A->lld;
    if (r != root) {
      MPI_Recv(recv, ml * nl, MPI_DOUBLE, r, 1, g->comm, MPI_STATUS_IGNORE);
      buf = recv;
      ld = ml;
    }
    for (int jl = 0; jl < nl; ++jl) {
      int j = l2g(jl, g->nb, pc, g->npcol);
      for (int il = 0; il < ml; ++il)
        out[(size_t)l2g(il, g->nb, pr, g->nprow) * A->n + j] = buf[il + (size_t)jl * ld];
    }
  }
  free(recv);
  *full = out;
  return NTK_OK;
}

int ntk_dmat_replicate_rows(const ntk_dmat *A, double **rows) {
  const ntk_grid *g = A->g;
  *rows = NULL;
  /* MPI counts are int; process row 0 holds the most rows, so every rank decides alike */
  const double most = (double)local_count(A->m, g->nb, 0, g->nprow) * A->n;
  if (most > (double)INT_MAX)
    return ntk_err_set(NTK_ERR_INPUT,
                       "%.0f entries of replicated rows per rank exceed MPI's 2^31 count (the "
                       "jacobian method at this size: use ntk.method structured or more grid rows)",
                       most);
  int *counts = calloc((size_t)g->npcol, sizeof(int)), *displs = calloc((size_t)g->npcol, sizeof(int));
  double *send = malloc(sizeof(double) * ((size_t)A->mloc * A->nloc + 1));
  double *recv = malloc(sizeof(double) * ((size_t)A->mloc * A->n + 1));
  double *out = malloc(sizeof(double) * ((size_t)A->mloc * A->n + 1));
  int err = counts && displs && send && recv && out
                ? NTK_OK
                : ntk_err_set(NTK_ERR_MEMORY, "out of memory replicating %d x %d rows", A->mloc, A->n);
  /* a rank that could not allocate must not leave the others in the Allgatherv */
  if ((err = ntk_err_sync(g->comm, err))) goto done;
  int total = 0;
  for (int pc = 0; pc < g->npcol; ++pc) {
    counts[pc] = A->mloc * local_count(A->n, g->nb, pc, g->npcol);
    displs[pc] = total;
    total += counts[pc];
  }
  for (int jl = 0; jl < A->nloc; ++jl)
    memcpy(send + (size_t)jl * A->mloc, A->a + (size_t)jl * A->lld, (size_t)A->mloc * sizeof(double));
  MPI_Allgatherv(send, A->mloc * A->nloc, MPI_DOUBLE, recv, counts, displs, MPI_DOUBLE,
                 g->row_comm);
  for (int pc = 0; pc < g->npcol; ++pc) {
    int nl = local_count(A->n, g->nb, pc, g->npcol);
    for (int jl = 0; jl < nl; ++jl) {
      int j = l2g(jl, g->nb, pc, g->npcol);
      for (int il = 0; il < A->mloc; ++il)
        out[(size_t)il * A->n + j] = recv[displs[pc] + il + (size_t)jl * A->mloc];
    }
  }
  *rows = out;
  out = NULL;
done:
  free(send);
  free(recv);
  free(out);
  free(counts);
  free(displs);
  return err;
}

int ntk_dmat_allgather_vector(const ntk_dmat *A, double *x) {
  if (A->m != 1 && A->n != 1)
    return ntk_err_set(NTK_ERR_INTERNAL, "allgather_vector on a %d x %d matrix", A->m, A->n);
  int len = A->m * A->n;
  double *part;
  NTK_ALLOC(part, len, "vector gather");
  for (int jl = 0; jl < A->nloc; ++jl)
    for (int il = 0; il < A->mloc; ++il)
      part[ntk_dmat_row_l2g(A, il) + ntk_dmat_col_l2g(A, jl)] = A->a[il + (size_t)jl * A->lld];
  /* each entry has exactly one owner, so a sum assembles the vector */
  MPI_Allreduce(part, x, len, MPI_DOUBLE, MPI_SUM, A->g->comm);
  free(part);
  return NTK_OK;
}

/* The gathered products' panel buffers, kept from one call to the next until
 * ntk_dmat_panels_release: a phase makes several calls of similar shapes (the blocks of a
 * forward pass, the Grams of an assembly), and fresh large blocks would be page-faulted
 * in at every call (ntkspec hands blocks of 512 KiB or more back to the system when they
 * are freed, ntk_memory_init). */
enum { PANEL_AROW, PANEL_BROW, PANEL_ACOL, PANEL_PACK, PANEL_RECV, PANEL_NBUF };
static double *panel_buf[PANEL_NBUF];
static size_t panel_cap[PANEL_NBUF];

static double *panel(int which, size_t n) {
  if (n > panel_cap[which]) {
    free(panel_buf[which]);
    panel_buf[which] = malloc(n * sizeof(double));
    panel_cap[which] = panel_buf[which] ? n : 0;
  }
  return panel_buf[which];
}

void ntk_dmat_panels_release(void) {
  for (int i = 0; i < PANEL_NBUF; ++i) {
    free(panel_buf[i]);
    panel_buf[i] = NULL;
    panel_cap[i] = 0;
  }
}

int ntk_dmat_panel_columns(const ntk_grid *g, int am, int bm, int K, int same, double panel_mb) {
  /* the gathered panels take (mloc + [B's mloc] + nloc) * kb doubles.  Every rank must cut
   * the same panels (they are collective), so the sizes are process (0, 0)'s, the largest,
   * not this rank's. */
  const int nb = g->nb, step = nb * g->npcol;
  double rows_all = (double)numroc_(&am, &nb, &izero, &izero, &g->nprow) +
                    (same ? 0 : numroc_(&bm, &nb, &izero, &izero, &g->nprow)) +
                    numroc_(&bm, &nb, &izero, &izero, &g->npcol) + 1;
  double cols = panel_mb * 1048576.0 / 8.0 / rows_all;
  int kb = cols > (double)(INT_MAX / 4) ? INT_MAX / 4 : (int)cols;
  kb = kb / step * step;
  if (kb < step) kb = step;
  return kb > K ? K : kb;
}

/* My rows of X's global columns [k0, k1), column-major: in place when one grid column
 * holds them all, else gathered along the grid row into `out`.  My own columns of the
 * panel are contiguous (lld is mloc, ntk_dmat_create), so they are sent as they lie. */
static const double *row_panel(const ntk_dmat *X, int k0, int k1, int *cnt, int *dsp,
                               double *out, int *ld) {
  const ntk_grid *g = X->g;
  int jlo, jhi; /* my local column range inside [k0, k1) */
  for (jlo = 0; jlo < X->nloc && ntk_dmat_col_l2g(X, jlo) < k0; ++jlo) {}
  for (jhi = jlo; jhi < X->nloc && ntk_dmat_col_l2g(X, jhi) < k1; ++jhi) {}
  if (g->npcol == 1) {
    *ld = X->lld;
    return X->a + (size_t)jlo * X->lld;
  }
  int mine = (jhi - jlo) * X->mloc, total = 0;
  MPI_Allgather(&mine, 1, MPI_INT, cnt, 1, MPI_INT, g->row_comm);
  for (int q = 0; q < g->npcol; ++q) { dsp[q] = total; total += cnt[q]; }
  /* each global column has one owner: the gathered panel is complete, in grid-column
   * order (grid column 0's columns of the panel, then 1's, ...), which is the global
   * column order within a panel of whole block columns */
  MPI_Allgatherv(X->a + (size_t)jlo * X->lld, mine, MPI_DOUBLE, out, cnt, dsp, MPI_DOUBLE,
                 g->row_comm);
  *ld = X->mloc > 0 ? X->mloc : 1;
  return out;
}

/* The gathers along a grid column: see ntk_grid.h.  Not MPI_Bcast from 3 ranks on: Open
 * MPI 4.1's picks for a large block (coll_tuned_decision_fixed.c) send it whole from rank
 * to rank (a chain or the root to every rank below 16 ranks: q - 1 blocks in a row; a
 * k-nomial tree without segments from 32 ranks on: the root sends it to each of its
 * children), while a scatter of the block into q pieces (the root sends (q-1)/q of it)
 * and an allgather of the pieces (each rank receives (q-1)/q of it) take 2 (q-1)/q blocks
 * whatever q is and put every piece straight into its final place.  Two ranks: one
 * transfer, which is MPI_Bcast. */
int ntk_gather_blocks(const double *send, double *recv, const int *cnt, const int *dsp,
                      MPI_Comm comm, int *scratch) {
  int q = 1, me = 0, c = 0;
  MPI_Comm_size(comm, &q);
  MPI_Comm_rank(comm, &me);
  for (int r = 0; r < q; ++r) c += cnt[r] > 0;
  /* an allgatherv passes the blocks along a chain of dependent steps, q - 1 of up to a
   * block each for a ring (q/2 for neighbour exchange, about (q-1)/2 blocks for bruck at
   * c = q/2); the broadcasts cost 2 (q-1)/q blocks per contributor: they win when fewer
   * than half the ranks contribute, and tie at q = 2 with one */
  const int bcast = c < q && (2 * c < q || q == 2);
  if (!bcast) {
    MPI_Allgatherv(send, cnt[me], MPI_DOUBLE, recv, cnt, dsp, MPI_DOUBLE, comm);
    return NTK_OK;
  }
  int *pcnt = scratch, *poff = scratch + q;
  for (int r = 0; r < q; ++r) {
    if (cnt[r] == 0) continue;
    double *blk = recv + dsp[r];
    if (r == me && send != blk) memcpy(blk, send, sizeof(double) * (size_t)cnt[r]);
    if (q == 2) {
      MPI_Bcast(blk, cnt[r], MPI_DOUBLE, r, comm);
      continue;
    }
    for (int j = 0, off = 0; j < q; ++j) {
      pcnt[j] = cnt[r] / q + (j < cnt[r] % q);
      poff[j] = off;
      off += pcnt[j];
    }
    MPI_Scatterv(blk, pcnt, poff, MPI_DOUBLE, me == r ? MPI_IN_PLACE : blk + poff[me], pcnt[me],
                 MPI_DOUBLE, r, comm);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, blk, pcnt, poff, MPI_DOUBLE, comm);
  }
  return NTK_OK;
}

/* C := alpha A B^T + beta C (all of C, or its lower triangle), A M x K, B Nb x K, C M x Nb,
 * all block-cyclic on one grid: panel by panel of K, every rank gathers its rows of A
 * (along its grid row) and the rows of B that are its C columns (along its grid row, then
 * its grid column), then multiplies locally.  No SUMMA rounds and no transpose: A's rows
 * stay where they are, and B moves once per panel. */
static int gathered_abt(double alpha, const ntk_dmat *A, const ntk_dmat *B, double beta, ntk_dmat *C,
                        int lower, double panel_mb) {
  const ntk_grid *g = A->g;
  const int K = A->n, Nb = B->m, nb = g->nb, same = A == B;
  if (B->n != K || C->m != A->m || C->n != Nb)
    return ntk_err_set(NTK_ERR_INTERNAL, "gathered A*B^T: A %d x %d, B %d x %d, C %d x %d", A->m, K,
                       Nb, B->n, C->m, C->n);
  const int kb = ntk_dmat_panel_columns(g, A->m, Nb, K, same, panel_mb);
  int err = NTK_OK;
  const size_t rmax = (size_t)(A->mloc > B->mloc ? A->mloc : B->mloc);
  int *cnt = calloc((size_t)(g->npcol > g->nprow ? g->npcol : g->nprow), sizeof(int));
  int *dsp = calloc((size_t)(g->npcol > g->nprow ? g->npcol : g->nprow), sizeof(int));
  double *arow = panel(PANEL_AROW, (size_t)A->mloc * kb + 1);
  double *brow = same ? NULL : panel(PANEL_BROW, (size_t)B->mloc * kb + 1);
  double *acol = panel(PANEL_ACOL, (size_t)C->nloc * kb + 1);
  double *pack = panel(PANEL_PACK, rmax * kb + 1);
  double *recv = panel(PANEL_RECV, (size_t)C->nloc * kb + 1);
  int *rowidx = malloc(sizeof(int) * ((rmax > (size_t)C->nloc ? rmax : (size_t)C->nloc) + 1));
  int *pieces = malloc(sizeof(int) * 2 * (size_t)g->nprow);
  if (!cnt || !dsp || !arow || (!same && !brow) || !acol || !pack || !recv || !rowidx || !pieces)
    err = ntk_err_set(NTK_ERR_MEMORY, "out of memory for gathered panels (%.0f MiB)", panel_mb);
  /* a rank that could not allocate must not leave the others in the panel exchanges */
  if ((err = ntk_err_sync(g->comm, err))) goto done;
  for (int k0 = 0; k0 < K; k0 += kb) {
    const int k1 = k0 + kb < K ? k0 + kb : K, kp = k1 - k0;
    /* 1. my rows of A and of B, all panel columns */
    int lda_r, ldb_r;
    const double *ar = row_panel(A, k0, k1, cnt, dsp, arow, &lda_r);
    const double *br = same ? ar : row_panel(B, k0, k1, cnt, dsp, brow, &ldb_r);
    if (same) ldb_r = lda_r;
    /* 2. the rows of B that are my C columns, from the grid rows that own them */
    const double *ac;
    int lda_c = C->nloc > 0 ? C->nloc : 1;
    if (g->nprow == 1 && g->npcol == 1) {
      ac = br; /* one rank: the rows of my C columns are my rows */
      lda_c = ldb_r;
    } else {
      int nmine = 0;
      for (int il = 0; il < B->mloc; ++il) {
        int jl;
        if (ntk_dmat_col_g2l(C, ntk_dmat_row_l2g(B, il), &jl)) rowidx[nmine++] = il;
      }
      /* column-major (nmine x kp); the selected rows come in runs of whole blocks, and
       * when all my rows are selected (one grid column) the panel is sent as it is */
      const double *sendbuf = br;
      if (nmine != B->mloc || ldb_r != B->mloc) {
        for (int q = 0; q < kp; ++q)
          for (int t = 0; t < nmine;) {
            int run = 1;
            while (t + run < nmine && rowidx[t + run] == rowidx[t] + run) ++run;
            memcpy(pack + t + (size_t)q * nmine, br + rowidx[t] + (size_t)q * ldb_r, sizeof(double) * run);
            t += run;
          }
        sendbuf = pack;
      }
      int sendn = nmine * kp, tot2 = 0;
      MPI_Allgather(&sendn, 1, MPI_INT, cnt, 1, MPI_INT, g->col_comm);
      for (int q = 0; q < g->nprow; ++q) { dsp[q] = tot2; tot2 += cnt[q]; }
      /* only the grid rows r = my grid column mod gcd(Pr, Pc) hold such rows (C's column
       * blocks and B's row blocks are dealt alike): one of them on a square grid */
      if ((err = ntk_gather_blocks(sendbuf, recv, cnt, dsp, g->col_comm, pieces))) goto done;
      /* grid row q sent its rows of my C columns in increasing global order */
      for (int q = 0; q < g->nprow; ++q) {
        int mq = numroc_(&Nb, &nb, &q, &izero, &g->nprow), nq = 0;
        for (int il = 0; il < mq; ++il) {
          int i = (il / nb) * nb * g->nprow + q * nb + il % nb, jl;
          if (ntk_dmat_col_g2l(C, i, &jl)) rowidx[nq++] = jl;
        }
        const double *src = recv + dsp[q];
        for (int c = 0; c < kp; ++c)
          for (int t = 0; t < nq;) {
            int run = 1;
            while (t + run < nq && rowidx[t + run] == rowidx[t] + run) ++run;
            memcpy(acol + rowidx[t] + (size_t)c * C->nloc, src + t + (size_t)c * nq, sizeof(double) * run);
            t += run;
          }
      }
      ac = acol;
    }
    const double bet = k0 == 0 ? beta : 1.0;
    if (!lower) {
      if (C->mloc > 0 && C->nloc > 0 && kp > 0)
        dgemm_("N", "T", &C->mloc, &C->nloc, &kp, &alpha, ar, &lda_r, ac, &lda_c, &bet, C->a, &C->lld);
      continue;
    }
    /* 3. the lower triangle by DGEMMs: groups of local column blocks share one wide DGEMM
     * over the rows below all their diagonals, and each block adds the rows between its
     * own diagonal and the group's (same flops as block by block, wider products) */
    const int group = 4 * nb;
    for (int gb = 0; gb < C->nloc && kp > 0; gb += group) {
      const int gw = C->nloc - gb < group ? C->nloc - gb : group;
      int jlast = gb + ((gw - 1) / nb) * nb; /* first local column of the group's last block */
      int il_last = 0;
      while (il_last < C->mloc && ntk_dmat_row_l2g(C, il_last) < ntk_dmat_col_l2g(C, jlast)) ++il_last;
      int mrows = C->mloc - il_last;
      if (mrows > 0)
        dgemm_("N", "T", &mrows, &gw, &kp, &alpha, ar + il_last, &lda_r, ac + gb, &lda_c, &bet,
               C->a + il_last + (size_t)gb * C->lld, &C->lld);
      for (int jb = gb; jb < jlast; jb += nb) {
        int w = nb, il0 = 0;
        while (il0 < C->mloc && ntk_dmat_row_l2g(C, il0) < ntk_dmat_col_l2g(C, jb)) ++il0;
        int m2 = il_last - il0;
        if (m2 > 0)
          dgemm_("N", "T", &m2, &w, &kp, &alpha, ar + il0, &lda_r, ac + jb, &lda_c, &bet,
                 C->a + il0 + (size_t)jb * C->lld, &C->lld);
      }
    }
  }
done:
  free(cnt); free(dsp); free(rowidx); free(pieces);
  return err;
}

int ntk_dmat_gram_lower(double alpha, const ntk_dmat *A, double beta, ntk_dmat *C, double panel_mb) {
  if (C->m != A->m || C->n != A->m)
    return ntk_err_set(NTK_ERR_INTERNAL, "gram: C is %d x %d for A of %d rows", C->m, C->n, A->m);
  return gathered_abt(alpha, A, A, beta, C, 1, panel_mb);
}

int ntk_dmat_gemm_abt_gathered(double alpha, const ntk_dmat *A, const ntk_dmat *B, double beta,
                               ntk_dmat *C, double panel_mb) {
  if (A->m >= B->m || C->m != A->m || C->n != B->m || B->n != A->n)
    return gathered_abt(alpha, A, B, beta, C, 0, panel_mb);
  /* fewer rows in A than in B (few samples, a wide layer): gathering B would move the big
   * matrix, so compute C^T = B A^T instead, which leaves B's rows where they are and
   * gathers A's, and transpose the small result into C */
  ntk_dmat T;
  int err = ntk_err_sync(A->g->comm, ntk_dmat_create(A->g, B->m, A->m, &T));
  if (!err) err = gathered_abt(1.0, B, A, 0.0, &T, 0, panel_mb);
  if (!err)
    pdtran_(&C->m, &C->n, &alpha, T.a, &ione, &ione, T.desc, &beta, C->a, &ione, &ione, C->desc);
  ntk_dmat_free(&T);
  return err;
}

int ntk_dmat_panel_columns_ab(const ntk_grid *g, int am, int cn, int K, double panel_mb) {
  /* my rows of A gathered (more than one grid column), the panel's rows of B for my C
   * columns packed and received (more than one grid row) and put in A's column order:
   * process (0, 0)'s sizes, so that every rank cuts the same panels */
  const int nb = g->nb;
  double ma = g->npcol > 1 ? local_count(am, nb, 0, g->nprow) : 0.0;
  double nc = local_count(cn, nb, 0, g->npcol);
  double copies = g->nprow > 1 ? 2.0 + 1.0 / g->nprow : (g->npcol > 1 ? 1.0 : 0.0);
  double kb = panel_mb * 1048576.0 / 8.0 / (ma + copies * nc + 1.0);
  if (kb > (double)(INT_MAX / 4)) kb = INT_MAX / 4;
  int k = (int)kb / nb * nb;
  if (k < nb) k = nb;
  return k > K ? K : k;
}

/* How many of the indices [k0, k1) process p of np owns (blocks of nb). */
static int span_count(int k0, int k1, int nb, int p, int np) {
  return local_count(k1, nb, p, np) - local_count(k0, nb, p, np);
}

/* Where global column k of a panel [k0, k1) sits in row_panel's gathered panel: grid
 * column c's columns come after those of the grid columns before it (base[c]). */
static int panel_pos(int k, int k0, const int *base, int nb, int npcol) {
  int c = (k / nb) % npcol;
  return base[c] + span_count(k0, k, nb, c, npcol);
}

int ntk_dmat_gemm_ab_gathered(double alpha, const ntk_dmat *A, const ntk_dmat *B, double beta,
                              ntk_dmat *C, double panel_mb) {
  const ntk_grid *g = A->g;
  const int K = A->n, nb = g->nb, Pr = g->nprow, Pc = g->npcol, one = Pr * Pc == 1;
  if (B->m != K || C->m != A->m || C->n != B->n)
    return ntk_err_set(NTK_ERR_INTERNAL, "gathered A*B: A %d x %d, B %d x %d, C %d x %d", A->m, K,
                       B->m, B->n, C->m, C->n);
  if (K == 0) {
    for (int jl = 0; jl < C->nloc; ++jl)
      for (int il = 0; il < C->mloc; ++il)
        C->a[il + (size_t)jl * C->lld] = beta == 0.0 ? 0.0 : beta * C->a[il + (size_t)jl * C->lld];
    return NTK_OK;
  }
  const int kb = ntk_dmat_panel_columns_ab(g, A->m, C->n, K, panel_mb);
  int err = NTK_OK;
  const int pmax = Pr > Pc ? Pr : Pc;
  int *cnt = calloc((size_t)pmax, sizeof(int)), *dsp = calloc((size_t)pmax, sizeof(int));
  int *base = calloc((size_t)Pc + 1, sizeof(int)), *pieces = malloc(sizeof(int) * 2 * (size_t)Pr);
  double *arow = Pc > 1 ? panel(PANEL_AROW, (size_t)A->mloc * kb + 1) : NULL;
  double *recv = Pr > 1 ? panel(PANEL_RECV, (size_t)C->nloc * kb + 1) : NULL;
  double *pack = Pr > 1 ? panel(PANEL_PACK, (size_t)C->nloc * (kb / Pr + nb) + 1) : NULL;
  double *bcol = one ? NULL : panel(PANEL_ACOL, (size_t)C->nloc * kb + 1);
  if (!cnt || !dsp || !base || !pieces || (Pc > 1 && !arow) || (Pr > 1 && (!recv || !pack)) || (!one && !bcol))
    err = ntk_err_set(NTK_ERR_MEMORY, "out of memory for gathered panels (%.0f MiB)", panel_mb);
  if ((err = ntk_err_sync(g->comm, err))) goto done;
  for (int k0 = 0; k0 < K; k0 += kb) {
    const int k1 = k0 + kb < K ? k0 + kb : K, kp = k1 - k0;
    int lda, ldb;
    const double *ar = row_panel(A, k0, k1, cnt, dsp, arow, &lda), *bp = B->a + k0;
    ldb = B->lld;
    if (!one) {
      /* the panel's rows of B in my C columns come from every grid row, each grid row's
       * in its own order; they are put in the order of A's gathered columns */
      if (Pr > 1) {
        int tot = 0;
        for (int q = 0; q < Pr; ++q) {
          cnt[q] = span_count(k0, k1, nb, q, Pr) * C->nloc;
          dsp[q] = tot;
          tot += cnt[q];
        }
        /* packed: Open MPI's tuned Allgatherv picks its algorithm from the send type's
         * size, so a derived type on some ranks and none on others would not match */
        const int ilo = local_count(k0, nb, g->myrow, Pr), mine = span_count(k0, k1, nb, g->myrow, Pr);
        for (int jl = 0; jl < B->nloc && mine > 0; ++jl)
          memcpy(pack + (size_t)jl * mine, B->a + ilo + (size_t)jl * B->lld, sizeof(double) * mine);
        /* a panel narrower than Pr blocks leaves some grid rows without rows of it */
        if ((err = ntk_gather_blocks(pack, recv, cnt, dsp, g->col_comm, pieces))) goto done;
      }
      for (int c = 0; c < Pc; ++c)
        base[c + 1] = base[c] + span_count(k0, k1, nb, c, Pc);
      for (int q = 0; q < Pr; ++q) {
        const int first = local_count(k0, nb, q, Pr), rq = span_count(k0, k1, nb, q, Pr);
        const double *src = Pr > 1 ? recv + dsp[q] : B->a + k0;
        const int lds = Pr > 1 ? rq : B->lld;
        /* the rows of one block are consecutive in both orders */
        for (int t = 0; t < rq;) {
          const int il = first + t, k = (il / nb) * nb * Pr + q * nb + il % nb;
          const int run = nb - il % nb < rq - t ? nb - il % nb : rq - t;
          const int pos = panel_pos(k, k0, base, nb, Pc);
          for (int jl = 0; jl < C->nloc; ++jl)
            memcpy(bcol + pos + (size_t)jl * kp, src + t + (size_t)jl * lds, sizeof(double) * run);
          t += run;
        }
      }
      bp = bcol;
      ldb = kp;
    }
    const double bet = k0 == 0 ? beta : 1.0;
    if (C->mloc > 0 && C->nloc > 0)
      dgemm_("N", "N", &C->mloc, &C->nloc, &kp, &alpha, ar, &lda, bp, &ldb, &bet, C->a, &C->lld);
  }
done:
  free(cnt);
  free(dsp);
  free(base);
  free(pieces);
  return err;
}

/* ------------------------------------------------------------- memory sizes -- */

int64_t ntk_dmat_max_local_bytes(const ntk_grid *g, int64_t m, int64_t n) {
  if (m < 1 || n < 1) return 0;
  /* a dimension beyond an int has no layout: count it whole (the estimate refuses it) */
  int64_t ml = m > INT_MAX ? m : local_count((int)m, g->nb, 0, g->nprow);
  int64_t nl = n > INT_MAX ? n : local_count((int)n, g->nb, 0, g->npcol);
  return ntk_size_mul3(ml, nl, 8);
}

ntk_panel_bytes ntk_panel_bytes_max(ntk_panel_bytes a, ntk_panel_bytes b) {
  return (ntk_panel_bytes){ntk_size_max(a.arow, b.arow), ntk_size_max(a.brow, b.brow),
                           ntk_size_max(a.acol, b.acol), ntk_size_max(a.pack, b.pack),
                           ntk_size_max(a.recv, b.recv)};
}

int64_t ntk_panel_bytes_sum(ntk_panel_bytes s) {
  return ntk_size_add(ntk_size_add(ntk_size_add(s.arow, s.brow), ntk_size_add(s.acol, s.pack)), s.recv);
}

/* gathered_abt's buffers: per panel of kb columns the rows of B for my C columns, received
 * and reordered (2 nc kb) and, with more than one grid column, my rows of A and of B
 * gathered (ma kb, mb kb) and the rows of B for my C columns packed (about one grid
 * column's share).  On one rank nothing is gathered (the panels are the matrices). */
ntk_panel_bytes ntk_dmat_abt_panel_bytes(const ntk_grid *g, int am, int bm, int K, int same,
                                         double panel_mb) {
  ntk_panel_bytes s = {0};
  if (g->nprow * g->npcol == 1 || K < 1) return s;
  const int64_t ma = local_count(am, g->nb, 0, g->nprow);
  const int64_t mb = same ? 0 : local_count(bm, g->nb, 0, g->nprow);
  const int64_t nc = local_count(bm, g->nb, 0, g->npcol);
  const int64_t kb = ntk_size_mul(8, ntk_dmat_panel_columns(g, am, bm, K, same, panel_mb));
  s.acol = s.recv = ntk_size_mul(kb, nc);
  if (g->npcol > 1) {
    s.arow = ntk_size_mul(kb, ma);
    s.brow = ntk_size_mul(kb, mb);
    s.pack = ntk_size_mul(kb, ma > mb ? ma : mb) / g->npcol;
  }
  return s;
}

/* ntk_dmat_gemm_ab_gathered's: my rows of A gathered (more than one grid column), the
 * panel's rows of B for my C columns packed and received (more than one grid row) and
 * reordered (any grid but one rank). */
ntk_panel_bytes ntk_dmat_ab_panel_bytes(const ntk_grid *g, int am, int cn, int K, double panel_mb) {
  ntk_panel_bytes s = {0};
  if (g->nprow * g->npcol == 1 || K < 1) return s;
  const int kb = ntk_dmat_panel_columns_ab(g, am, cn, K, panel_mb);
  const int64_t nc = local_count(cn, g->nb, 0, g->npcol);
  s.acol = ntk_size_mul3(8, kb, nc);
  if (g->npcol > 1) s.arow = ntk_size_mul3(8, kb, local_count(am, g->nb, 0, g->nprow));
  if (g->nprow > 1) {
    s.recv = ntk_size_mul3(8, kb, nc);
    s.pack = ntk_size_mul3(8, local_count(kb, g->nb, 0, g->nprow), nc);
  }
  return s;
}

int64_t ntk_dmat_gemm_abt_gathered_bytes(const ntk_grid *g, int am, int bm, int K,
                                         double panel_mb) {
  if (am >= bm) return ntk_panel_bytes_sum(ntk_dmat_abt_panel_bytes(g, am, bm, K, 0, panel_mb));
  return ntk_size_add(ntk_panel_bytes_sum(ntk_dmat_abt_panel_bytes(g, bm, am, K, 0, panel_mb)),
                      ntk_dmat_max_local_bytes(g, bm, am));
}

/* Rows of A gathered per chunk (kc x m1, plus the packed send), within panel_mb: the same on
 * every rank of a grid row, which is all that must agree (the gathers run along it). */
static int atb_chunk_rows(const ntk_grid *g, int K, int m1, double panel_mb) {
  double kc = panel_mb * 1048576.0 / 8.0 / (m1 + (double)local_count(m1, g->nb, 0, g->npcol) + 1.0);
  if (kc > (double)(INT_MAX / 4)) kc = INT_MAX / 4;
  int k = (int)kc / g->nb * g->nb;
  if (k < g->nb) k = g->nb;
  return k > K ? K : k;
}

int ntk_dmat_gemm_atb_gathered(double alpha, const ntk_dmat *A, const ntk_dmat *B, double beta,
                               ntk_dmat *C, double panel_mb) {
  const ntk_grid *g = A->g;
  const int Pr = g->nprow, Pc = g->npcol, nb = g->nb, m1 = A->n;
  if (B->m != A->m || C->m != m1 || C->n != B->n)
    return ntk_err_set(NTK_ERR_INTERNAL, "gemm_atb: A %d x %d, B %d x %d, C %d x %d", A->m, A->n,
                       B->m, B->n, C->m, C->n);
  /* MPI counts are int: the largest (process (0, 0)'s) decides alike everywhere */
  const double most = (double)m1 * local_count(B->n, nb, 0, Pc);
  if (most > (double)INT_MAX)
    return ntk_err_set(NTK_ERR_INPUT, "gemm_atb: %.0f entries per rank exceed MPI's 2^31 count", most);
  const int mloc = A->mloc, nloc = B->nloc;
  const int kc = atb_chunk_rows(g, mloc > 0 ? mloc : 1, m1, panel_mb); /* alike in my grid row */
  /* T (m1 x nloc): my rows' share of A^T B in one DGEMM per grid column of A, its rows in
   * A's local column order, grid column after grid column; Q = [Q_0 | Q_1 | ...] the same
   * rows put in the order of C's grid rows (Q_r: the rows grid row r owns, in its order) */
  int *qoff = calloc((size_t)Pr + 1, sizeof(int)), *cnt = calloc((size_t)(Pr > Pc ? Pr : Pc), sizeof(int));
  int *dsp = calloc((size_t)Pc + 1, sizeof(int)), *toff = calloc((size_t)Pc + 1, sizeof(int));
  int *pieces = malloc(sizeof(int) * 2 * (size_t)Pc);
  double *T = panel(PANEL_BROW, (size_t)m1 * nloc + 1);
  double *Q = panel(PANEL_RECV, (size_t)m1 * nloc + 1);
  double *rows = Pc > 1 ? panel(PANEL_AROW, (size_t)kc * m1 + 1) : NULL;
  double *pack = Pc > 1 ? panel(PANEL_PACK, (size_t)kc * A->nloc + 1) : NULL;
  double *out = panel(PANEL_ACOL, (size_t)C->mloc * nloc + 1);
  int err = qoff && cnt && dsp && toff && pieces && T && Q && out && (Pc == 1 || (rows && pack))
                ? NTK_OK
                : ntk_err_set(NTK_ERR_MEMORY, "out of memory for gemm_atb (%d x %d)", m1, nloc);
  if ((err = ntk_err_sync(g->comm, err))) goto done;
  for (int r = 0; r < Pr; ++r) qoff[r + 1] = qoff[r] + local_count(m1, nb, r, Pr) * nloc;
  for (int pc = 0; pc < Pc; ++pc) toff[pc + 1] = toff[pc] + local_count(m1, nb, pc, Pc);
  memset(T, 0, (size_t)m1 * nloc * sizeof(double));
  for (int r0 = 0; r0 < mloc; r0 += kc) { /* every rank of the grid row: the gathers */
    const int kr = mloc - r0 < kc ? mloc - r0 : kc;
    const double one = 1.0;
    if (Pc > 1) {
      /* this chunk of my rows with every column, gathered along my grid row: kr x (its
       * columns) from each grid column, column-major */
      for (int jl = 0; jl < A->nloc; ++jl)
        memcpy(pack + (size_t)jl * kr, A->a + r0 + (size_t)jl * A->lld, (size_t)kr * sizeof(double));
      for (int pc = 0; pc < Pc; ++pc) {
        cnt[pc] = kr * (toff[pc + 1] - toff[pc]);
        dsp[pc + 1] = dsp[pc] + cnt[pc];
      }
      /* A with fewer than Pc blocks of columns (the Fourier features' p = 2m on a wide
       * grid) leaves grid columns without any: then it is broadcasts (ntk_gather_blocks) */
      if ((err = ntk_gather_blocks(pack, rows, cnt, dsp, g->row_comm, pieces))) goto done;
    }
    for (int pc = 0; pc < Pc; ++pc) {
      const int mc = toff[pc + 1] - toff[pc];
      const double *ap = Pc > 1 ? rows + dsp[pc] : A->a + r0;
      const int lda = Pc > 1 ? kr : A->lld;
      if (mc > 0 && nloc > 0)
        dgemm_("T", "N", &mc, &nloc, &kr, &one, ap, &lda, B->a + r0, &B->lld, &one, T + toff[pc], &m1);
    }
  }
  /* block bi of A's columns (grid column bi % Pc, its local block bi / Pc) is block bi / Pr of
   * the rows grid row bi % Pr owns */
  for (int bi = 0; bi * nb < m1; ++bi) {
    const int bs = m1 - bi * nb < nb ? m1 - bi * nb : nb, rr = bi % Pr;
    const int ldq = local_count(m1, nb, rr, Pr);
    const double *src = T + toff[bi % Pc] + (size_t)(bi / Pc) * nb;
    double *dst = Q + qoff[rr] + (size_t)(bi / Pr) * nb;
    for (int jl = 0; jl < nloc; ++jl)
      memcpy(dst + (size_t)jl * ldq, src + (size_t)jl * m1, (size_t)bs * sizeof(double));
  }
  /* sum over my grid column, each grid row receiving its rows of C */
  for (int r = 0; r < Pr; ++r) cnt[r] = qoff[r + 1] - qoff[r];
  MPI_Reduce_scatter(Q, out, cnt, MPI_DOUBLE, MPI_SUM, g->col_comm);
  for (int jl = 0; jl < C->nloc; ++jl) {
    double *c = C->a + (size_t)jl * C->lld;
    const double *o = out + (size_t)jl * C->mloc;
    if (beta == 0.0)
      for (int il = 0; il < C->mloc; ++il) c[il] = alpha * o[il];
    else
      for (int il = 0; il < C->mloc; ++il) c[il] = alpha * o[il] + beta * c[il];
  }
done:
  free(qoff);
  free(cnt);
  free(dsp);
  free(toff);
  free(pieces);
  if (err) ntk_err_trace(__FILE__, __LINE__, __func__);
  return err;
}

ntk_panel_bytes ntk_dmat_atb_panel_bytes(const ntk_grid *g, int K, int m1, int m2, double panel_mb) {
  ntk_panel_bytes s = {0};
  const int64_t n2 = local_count(m2, g->nb, 0, g->npcol);
  s.recv = ntk_size_mul3(8, m1, n2);
  s.brow = s.recv;
  s.acol = ntk_size_mul3(8, local_count(m1, g->nb, 0, g->nprow), n2);
  if (g->npcol > 1) {
    const int kc = atb_chunk_rows(g, local_count(K, g->nb, 0, g->nprow), m1, panel_mb);
    s.arow = ntk_size_mul3(8, kc, m1);
    s.pack = ntk_size_mul3(8, kc, local_count(m1, g->nb, 0, g->npcol));
  }
  return s;
}
