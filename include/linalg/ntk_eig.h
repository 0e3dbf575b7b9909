/* ntk_eig: symmetric eigensolvers for distributed matrices, chosen by name from a small
 * table (like SLEPc's EPS types) so that another back-end is one more table row.
 * Eigenvalues come back descending and replicated on every rank; eigenvectors, when
 * asked for, as an N x K dmat whose column i belongs to eigenvalue i. */
#ifndef NTK_EIG_H
#define NTK_EIG_H
#include <stdint.h>

#include "ntk_grid.h"

/* What one eigensolve holds on top of the copy ntk_eig_solve makes, in local N x N blocks
 * (measured peaks of the resident set, docs/HARDENING.md): `zfull` the N x N vector matrix
 * the driver writes, `work_inside` the most held during the library call, `work_after`
 * what is still held when the K vectors are reordered (`reorders`: the new N x K matrix
 * and its send and receive buffers), `kept` what the libraries keep after the call for the
 * rest of the run (BLACS's send buffer after PDSYEVR's redistribution on a non-square
 * grid).  The memory estimate sums these (ntk_eig_solve_bytes). */
typedef struct {
  double zfull, work_inside, work_after, kept;
  int reorders;
} ntk_eig_cost;

typedef struct {
  const char *name;
  const char *doc;
  int supports_top_k; /* can compute only the top K without the full spectrum */
  /* the back-end's memory on grid g, with or without vectors (NULL for "auto") */
  ntk_eig_cost (*cost)(const ntk_grid *g, int want_vectors);
  /* A: N x N symmetric (lower triangle read, destroyed); w: ascending output of length n_want
   * internally; see ntk_eig.c. */
  int (*solve)(ntk_dmat *A, int top_k, int want_vectors, double *w_desc, ntk_dmat *Z);
} ntk_eigensolver;

extern const ntk_eigensolver ntk_eigensolvers[];
extern const int ntk_num_eigensolvers;
/* The table's first entry: "auto" picks a row by N, K and whether vectors are wanted. */
#define NTK_EIG_DEFAULT "auto"
/* The row "auto" uses for an N x N matrix, K wanted values (K = N: all), with or without
 * vectors: a measured rule (docs/PERFORMANCE.md), never "auto" itself. */
const char *ntk_eig_auto_choice(int N, int K, int want_vectors);
/* The row a configured name runs: itself, or auto's choice (top_k 0 = all). */
const char *ntk_eig_resolve(const char *name, int N, int top_k, int want_vectors);
/* Calling an entry's solve directly: collective; A (N x N) is destroyed and only its lower
 * triangle read; top_k 0 means all N; w_desc receives K descending values; with
 * want_vectors Z is created (N x K, column i for w_desc[i]); errors are agreed across
 * ranks.  ntk_eig_solve adds the copy of A, argument checks and a broadcast that makes
 * w_desc bitwise identical on every rank. */

/* ELPA 2-stage back-end (src/linalg/ntk_eig_elpa.c), the table row "elpa2"; same contract as an
 * entry's solve. */
int ntk_eig_solve_elpa2(ntk_dmat *A, int top_k, int want_vectors, double *w_desc, ntk_dmat *Z);

/* The cost of the back-end a configured name runs (ntk_eig_resolve; unknown names cost
 * as pdsyevr) for an N x N matrix and top_k values. */
ntk_eig_cost ntk_eig_memory(const char *name, const ntk_grid *g, int N, int top_k, int want_vectors);
/* Bytes one ntk_eig_solve holds beyond the caller's matrices (B: one local N x N block,
 * V: the local N x K vectors): the copy, the solver's own matrices and, with vectors, the
 * reordering buffers (the new vectors are the caller's).  Saturating (ntk_size.h). */
int64_t ntk_eig_solve_bytes(const ntk_eig_cost *c, int want_vectors, int64_t B, int64_t V);

/* NULL if unknown. */
const ntk_eigensolver *ntk_eig_find(const char *name);
/* Collective.  A is not modified.  top_k = 0 means all N.  w_desc must hold K values.
 * Z: NULL, or an unallocated ntk_dmat that receives N x K eigenvectors. */
int ntk_eig_solve(const char *name, const ntk_dmat *A, int top_k, int want_vectors,
                  double *w_desc, ntk_dmat *Z);

#endif
