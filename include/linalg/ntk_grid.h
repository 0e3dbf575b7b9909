/* ntk_grid: the 2-D BLACS process grid and block-cyclic distributed matrices (ntk_dmat).
 *
 * Grid rows split samples, grid columns split neurons; every distributed matrix of a run
 * (activations N x n, weights n x n, the NTK N x N, data N x d) lives on the one grid with
 * square blocks of grid.block_size.  Local storage is column-major (ScaLAPACK's).  No rank
 * ever holds a whole N x N or n x n matrix: the only gathers are the test-only
 * ntk_dmat_gather and the row-replication used by the Jacobian reference path. */
#ifndef NTK_GRID_H
#define NTK_GRID_H
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

/* The block size grid.block_size 0 (automatic) gives whenever every process row and column
 * gets a block with it: the problems that fill a grid keep it. */
#define NTK_GRID_BLOCK_DEFAULT 64

typedef struct {
  MPI_Comm comm;       /* all ranks of the grid (MPI_COMM_WORLD) */
  MPI_Comm row_comm;   /* ranks of my grid row (same samples, different neurons) */
  MPI_Comm col_comm;   /* ranks of my grid column */
  int ctxt;            /* BLACS context */
  int rank, size;
  int nprow, npcol, myrow, mycol;
  int nb;              /* block size, both dimensions */
} ntk_grid;

typedef struct {
  const ntk_grid *g;
  int m, n;         /* global shape */
  int mloc, nloc;   /* local shape */
  int lld;          /* local leading dimension, >= 1 */
  int desc[9];
  double *a;        /* column-major mloc x nloc, a[i + j*lld] */
} ntk_dmat;

/* Choose Pr x Pc for `size` ranks: Pr*Pc == size, Pc the largest divisor <= sqrt(size). */
void ntk_grid_choose(int size, int *nprow, int *npcol);
/* Collective. rows/cols 0 = choose. Errors (NTK_ERR_INPUT) if rows*cols != size. */
int ntk_grid_create(MPI_Comm comm, int rows, int cols, int block_size, ntk_grid *g);
/* The layout of `size` ranks for matrices whose rows are m samples and whose columns are n
 * neurons, from grid.rows, grid.cols and grid.block_size (0 = choose each), such that every
 * process row holds a block of the m rows and every process column one of the n columns:
 *  - block size 0: NTK_GRID_BLOCK_DEFAULT when it does it, else the even split of the
 *    smaller dimension (ceil(m / rows) or ceil(n / cols)) or the largest below it that does;
 *  - rows and cols 0: ntk_grid_choose's shape, or, when no block size makes it work (fewer
 *    samples than its rows), the most square shape that works.
 * What the user fixed is kept: NTK_ERR_INPUT when it leaves a process row or column empty
 * (a fixed grid with more rows than samples, or a fixed block size and grid).  The
 * results do not depend on the layout (to rounding; tests/test_run.py compares 1, 2 and 4
 * ranks): the choice only avoids idle ranks.  Not collective. */
int ntk_grid_layout(int size, int rows, int cols, int block_size, int64_t m, int64_t n,
                    int *nprow, int *npcol, int *nb);
/* Collective: ntk_grid_layout for the ranks of comm, then ntk_grid_create. */
int ntk_grid_create_for(MPI_Comm comm, int rows, int cols, int block_size, int64_t m, int64_t n,
                        ntk_grid *g);
void ntk_grid_free(ntk_grid *g);

int ntk_dmat_create(const ntk_grid *g, int m, int n, ntk_dmat *A); /* zero-filled */
void ntk_dmat_free(ntk_dmat *A);
int ntk_dmat_copy(const ntk_dmat *src, ntk_dmat *dst); /* same shape, same grid */
void ntk_dmat_zero(ntk_dmat *A);
size_t ntk_dmat_local_bytes(const ntk_grid *g, int m, int n);

/* Local <-> global indices (0-based). */
int ntk_dmat_row_l2g(const ntk_dmat *A, int iloc);
int ntk_dmat_col_l2g(const ntk_dmat *A, int jloc);
/* Returns 1 and the local index if this rank owns global row i (resp. column j). */
int ntk_dmat_row_g2l(const ntk_dmat *A, int i, int *iloc);
int ntk_dmat_col_g2l(const ntk_dmat *A, int j, int *jloc);

/* Fill every local entry from a function of the global indices. */
typedef double (*ntk_entry_fn)(int i, int j, void *ctx);
void ntk_dmat_fill(ntk_dmat *A, ntk_entry_fn fn, void *ctx);

/* Collective: A := lower triangle mirrored into the upper one (exactly symmetric). */
int ntk_dmat_symmetrize_lower(ntk_dmat *A);
/* Collective Frobenius norm. */
double ntk_dmat_norm_fro(const ntk_dmat *A);
/* Collective: ||A - B||_F for A, B of equal shape. */
double ntk_dmat_diff_fro(const ntk_dmat *A, const ntk_dmat *B);
/* Collective: sum of the diagonal (square A). */
double ntk_dmat_trace(const ntk_dmat *A);
/* C := alpha*op(A)*op(B) + beta*C (PDGEMM on whole matrices). */
int ntk_dmat_gemm(char ta, char tb, double alpha, const ntk_dmat *A, const ntk_dmat *B,
                  double beta, ntk_dmat *C);
/* C := alpha*A*A^T + beta*C on the lower triangle (PDSYRK, A is N x K, C is N x N). */
int ntk_dmat_syrk_lower(double alpha, const ntk_dmat *A, double beta, ntk_dmat *C);

/* C := alpha*A*A^T + beta*C for the blocks of C on and below the diagonal (all entries of
 * the diagonal blocks are written, the strictly upper blocks are left alone).  Instead of
 * PBLAS's PDSYRK it gathers panels of A's rows (the rank's own rows along its grid row,
 * the rows of its C columns along its grid column) and runs one local DGEMM per column
 * block of C: the same flops at close to DGEMM speed.  panel_mb bounds the gathered
 * panels per rank (MiB). */
int ntk_dmat_gram_lower(double alpha, const ntk_dmat *A, double beta, ntk_dmat *C, double panel_mb);
/* C := alpha*A*B^T + beta*C (A M x K, B Nb x K, C M x Nb) the same way: each rank gathers
 * its rows of A and the rows of B that are its C columns, then one local DGEMM per panel.
 * Words received per rank: M K (Pc-1)/P for A, Nb K (Pr-1)/P + Nb K (Pc-1)/P for B;
 * against PDTRAN + PDGEMM this saves the transpose and the SUMMA rounds (on a Pr x 1 grid
 * half the words: B is gathered once).  When A has fewer rows than B it computes
 * C^T = B A^T the same way (A moves, not B) and transposes C^T into C: an M x Nb block
 * more for the call.  panel_mb bounds the gathered panels per rank. */
int ntk_dmat_gemm_abt_gathered(double alpha, const ntk_dmat *A, const ntk_dmat *B, double beta,
                               ntk_dmat *C, double panel_mb);
/* C := alpha*A*B + beta*C (A M x K, B K x Nc, C M x Nc) by gathered panels of K: each rank
 * gathers its rows of A along its grid row and the panel's rows of B in its C columns
 * along its grid column (Allgatherv, no SUMMA rounds), then runs one local DGEMM per
 * panel.  Words received per rank: M K (Pc-1)/P for A and K Nc (Pr-1)/P for B, as in
 * PDGEMM, but in panels of up to panel_mb MiB instead of SUMMA's rank-nb steps. */
int ntk_dmat_gemm_ab_gathered(double alpha, const ntk_dmat *A, const ntk_dmat *B, double beta,
                              ntk_dmat *C, double panel_mb);
/* C := alpha*A^T*B + beta*C (A K x m1, B K x m2 on the same rows, C m1 x m2): the product
 * over the samples, as in a weight gradient g^T a.  Each rank multiplies its rows of A (with
 * every column: gathered along its grid row in chunks of rows within panel_mb MiB when the
 * grid has more than one column) by its rows of B in one local DGEMM per grid column, into
 * its grid column's m1 x (its columns of C) partial sum, which MPI_Reduce_scatter sums over
 * the grid column and deals out to the grid rows: no SUMMA rounds.  Words per rank: K m1
 * (Pc-1)/P gathered and m1 m2 / Pc reduced. */
int ntk_dmat_gemm_atb_gathered(double alpha, const ntk_dmat *A, const ntk_dmat *B, double beta,
                               ntk_dmat *C, double panel_mb);
/* Collective over comm (q ranks): MPI_Allgatherv(send, cnt[me], recv, cnt, dsp) in
 * doubles, the same bytes in the same places, but where fewer than half the ranks
 * contribute (cnt[r] > 0) each contributor's block is broadcast (two ranks: MPI_Bcast;
 * more: a scatter of it in q pieces and an allgather of the pieces, in place), which is
 * what the gathers along grid columns of the gathered products are on square grids: one
 * contributor, whose block a ring allgatherv would forward q - 1 times in a row
 * (docs/SCALING.md).  scratch: 2 q ints. */
int ntk_gather_blocks(const double *send, double *recv, const int *cnt, const int *dsp,
                      MPI_Comm comm, int *scratch);
/* Its panel width for A am x K and C am x cn within panel_mb MiB per rank (every rank the
 * same; the memory estimate uses it). */
int ntk_dmat_panel_columns_ab(const ntk_grid *g, int am, int cn, int K, double panel_mb);
/* The panel width, in columns of K, that the gathered products cut for C := A B^T with A
 * am x K and B bm x K (same: B is A) within panel_mb MiB per rank: the same on every rank;
 * the memory estimate uses it too. */
int ntk_dmat_panel_columns(const ntk_grid *g, int am, int bm, int K, int same, double panel_mb);
/* Memory of the gathered products, for the estimate (ntk_memory): the bytes process (0, 0),
 * the one holding the most, keeps in each of the five panel buffers, which are reused from
 * one call to the next (only grown) until ntk_dmat_panels_release.  Saturating sizes
 * (ntk_size.h). */
typedef struct {
  int64_t arow, brow, acol, pack, recv;
} ntk_panel_bytes;
/* ntk_dmat_gram_lower (same, B is A) or gathered_abt's C := A B^T, A am x K, B bm x K. */
ntk_panel_bytes ntk_dmat_abt_panel_bytes(const ntk_grid *g, int am, int bm, int K, int same,
                                         double panel_mb);
/* ntk_dmat_gemm_ab_gathered: A am x K, C am x cn. */
ntk_panel_bytes ntk_dmat_ab_panel_bytes(const ntk_grid *g, int am, int cn, int K, double panel_mb);
/* ntk_dmat_gemm_atb_gathered: A K x m1, B K x m2. */
ntk_panel_bytes ntk_dmat_atb_panel_bytes(const ntk_grid *g, int K, int m1, int m2, double panel_mb);
/* What two kinds of product alternating hold: the larger of each buffer. */
ntk_panel_bytes ntk_panel_bytes_max(ntk_panel_bytes a, ntk_panel_bytes b);
int64_t ntk_panel_bytes_sum(ntk_panel_bytes s);
/* The whole of ntk_dmat_gemm_abt_gathered (A am x K, B bm x K): its panels and, with fewer
 * rows in A than in B, the bm x am block of C^T. */
int64_t ntk_dmat_gemm_abt_gathered_bytes(const ntk_grid *g, int am, int bm, int K,
                                         double panel_mb);
/* Local bytes of an m x n matrix on process (0, 0), the largest block; 0 for an empty
 * shape. */
int64_t ntk_dmat_max_local_bytes(const ntk_grid *g, int64_t m, int64_t n);

/* The gathered products keep their panel buffers for the next call (same phase, similar
 * shapes); this frees them.  The forward pass and the NTK assembly call it at their end. */
void ntk_dmat_panels_release(void);

/* Collective; test/debug only: whole matrix, row-major, on `root` (NULL elsewhere). */
int ntk_dmat_gather(const ntk_dmat *A, int root, double **full_rowmajor);
/* Collective: this rank's rows of A with ALL columns, row-major (mloc x n), replicated
 * across the grid row.  Used by the Jacobian path and the metrics. Caller frees.  Rows
 * of 2^31 entries or more per rank are refused (NTK_ERR_INPUT): MPI's counts are int. */
int ntk_dmat_replicate_rows(const ntk_dmat *A, double **rows_rowmajor);
/* Collective: the whole vector x (length n) of a 1 x n or n x 1 matrix on every rank. */
int ntk_dmat_allgather_vector(const ntk_dmat *A, double *x);

#endif
