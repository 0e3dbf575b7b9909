/* ntk_eig: symmetric eigensolvers for distributed matrices, chosen by name from a small
 * table (like SLEPc's EPS types) so that another back-end is one more table row.
 * Eigenvalues come back descending and replicated on every rank; eigenvectors, when
 * asked for, as an N x K dmat whose column i belongs to eigenvalue i. */
#ifndef NTK_EIG_H
#define NTK_EIG_H
#include "ntk_grid.h"

typedef struct {
  const char *name;
  const char *doc;
  int supports_top_k; /* can compute only the top K without the full spectrum */
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

/* NULL if unknown. */
const ntk_eigensolver *ntk_eig_find(const char *name);
/* Collective.  A is not modified.  top_k = 0 means all N.  w_desc must hold K values.
 * Z: NULL, or an unallocated ntk_dmat that receives N x K eigenvectors. */
int ntk_eig_solve(const char *name, const ntk_dmat *A, int top_k, int want_vectors,
                  double *w_desc, ntk_dmat *Z);

#endif
