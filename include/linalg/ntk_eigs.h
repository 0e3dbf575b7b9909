/* ntk_eigs: the top K eigenpairs of a symmetric N x N operator known only by its products
 * y = A x (matrix-free), with SLEPc's EPS over the grid's ranks.  The EPS method is chosen
 * by name from a small table (like ntk_eig's), so another SLEPc solver is one more row.
 * The operator is a callback on N x 1 block-cyclic dmats, so the caller never sees PETSc.
 *
 * Eigenvalues come back descending and bitwise identical on every rank; eigenvectors, when
 * asked for, as an N x K dmat whose column i belongs to eigenvalue i (as ntk_eig's); the
 * residual norm ||A u_i - lambda_i u_i|| (u_i of unit norm) of every pair is recomputed
 * here with one extra product per pair, not taken from SLEPc's estimate.
 *
 * PETSc and SLEPc are started on first use (after MPI_Init; PETSc never owns MPI) with a
 * fixed option list: no ~/.petscrc, no PETSc signal handler (ntk_signal's stay), errors
 * returned, not printed.  ntk_eigs_finalize must run before MPI_Finalize. */
#ifndef NTK_EIGS_H
#define NTK_EIGS_H
#include <stdint.h>

#include "ntk_grid.h"

/* y := A x for N x 1 dmats on the solver's grid; collective; NTK error codes, agreed across
 * ranks by the callback or not (ntk_eigs agrees them). */
typedef int (*ntk_eigs_apply_fn)(void *ctx, const ntk_dmat *x, ntk_dmat *y);

typedef struct {
  const char *name; /* the configured name (eigensolver.matrix_free) */
  const char *eps;  /* SLEPc's EPSType */
  const char *doc;
} ntk_eigs_method;

extern const ntk_eigs_method ntk_eigs_methods[];
extern const int ntk_eigs_num_methods;
#define NTK_EIGS_DEFAULT "krylovschur"
/* NULL if unknown. */
const ntk_eigs_method *ntk_eigs_find(const char *name);

typedef struct {
  const char *method; /* a row of ntk_eigs_methods */
  double tol;         /* relative: a pair converges when ||A u - lambda u|| <= tol |lambda| */
  int max_it;         /* restarts (SLEPc's iterations); 0 = SLEPc's default */
  int ncv;            /* basis vectors; 0 = SLEPc's default (max(2K, K + 15)) */
} ntk_eigs_options;

typedef struct {
  int iterations;      /* SLEPc's restarts */
  long long products;  /* products during the solve (the residual checks not counted) */
  int ncv;             /* the basis size SLEPc used */
  double max_rel_residual; /* max_i residual_i / |lambda_i| */
} ntk_eigs_stats;

/* Collective over g->comm.  K (1 <= K <= N) largest eigenvalues of the symmetric operator
 * into w_desc (K doubles), their residual norms into residual (K doubles, may be NULL),
 * with want_vectors the eigenvectors into Z (created here, N x K).  The start vector is a
 * fixed function of the sample index (Philox), so the result does not depend on the rank
 * count beyond rounding.  Fewer than K converged pairs within max_it is NTK_ERR_RUNTIME
 * naming the counts.  stats may be NULL. */
int ntk_eigs_solve(const ntk_grid *g, int N, ntk_eigs_apply_fn apply, void *ctx,
                   const ntk_eigs_options *opt, int K, int want_vectors, double *w_desc,
                   double *residual, ntk_dmat *Z, ntk_eigs_stats *stats);

/* The basis size SLEPc picks for K pairs and a configured ncv (0 = default). */
int ntk_eigs_ncv(int N, int K, int ncv);
/* Bytes one solve holds on process (0, 0) (saturating): the ncv + 1 basis vectors, SLEPc's
 * ncv x ncv projected problem and its work vectors, the eigenvectors' staging buffer. */
int64_t ntk_eigs_memory(const ntk_grid *g, int N, int K, int ncv, int want_vectors);

/* Collective over MPI_COMM_WORLD; ends PETSc and SLEPc if they were started (else
 * nothing).  Before MPI_Finalize. */
int ntk_eigs_finalize(void);

#endif
