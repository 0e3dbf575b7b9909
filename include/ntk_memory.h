/* ntk_memory: the per-rank memory estimate of a run, term by term and phase by phase,
 * from the shapes alone (no allocation).  --dry-run prints it; the benchmark checks it
 * against the measured peak.  Sizes are those of the rank holding the most (process
 * (0,0) of the block-cyclic layout). */
#ifndef NTK_MEMORY_H
#define NTK_MEMORY_H
#include "ntk_config.h"
#include "ntk_grid.h"

#define NTK_MEM_MAX_TERMS 24

typedef struct {
  const char *name;
  double bytes;
} ntk_mem_term;

typedef struct {
  double baseline;      /* resident size of the process before any data (MPI, libraries) */
  double persistent;    /* data + parameters, alive the whole run */
  double phase_ntk;     /* forward state + backward signals + kernel matrices */
  double phase_eig;     /* kernel + eigensolver copy, vectors and workspace */
  double peak;          /* baseline + persistent + max(phase) */
  int nterms;
  ntk_mem_term terms[NTK_MEM_MAX_TERMS];
} ntk_mem_estimate;

/* shapes: N samples, n_test, d inputs, k outputs. */
void ntk_memory_estimate(const ntk_config *cfg, const ntk_grid *g, int N, int n_test, int d,
                         int k, double baseline, ntk_mem_estimate *e);
/* Rank 0 prints the table. */
void ntk_memory_print(const ntk_mem_estimate *e);

#endif
