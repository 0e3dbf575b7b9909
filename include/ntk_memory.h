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

/* The memory limit per rank (added for issue 7, docs/HARDENING.md).  Collective.  In
 * order: memory.limit_mb when > 0; SLURM_MEM_PER_NODE / the ranks on this node;
 * SLURM_MEM_PER_CPU x SLURM_CPUS_PER_TASK; the smaller of MemTotal (/proc/meminfo) and
 * the memory cgroup's limit, divided by the ranks on this node.  The minimum over all
 * ranks; `source` says where it came from.  0 when nothing is known (no check). */
int ntk_memory_limit(const ntk_config *cfg, MPI_Comm comm, double *limit, char *source,
                     size_t n);
/* The smallest rank count above g->size whose estimate (automatic grid, same block size)
 * fits in `limit` bytes per rank; 0 if none up to 2^20. */
int ntk_memory_ranks_that_fit(const ntk_config *cfg, const ntk_grid *g, int N, int n_test,
                              int d, int k, double baseline, double limit);
/* NTK_ERR_INPUT when e->peak exceeds limit (> 0): the message gives the peak, the limit
 * and its source, the largest term and how many ranks would fit.  Not collective; the same
 * result on every rank for the same estimate. */
int ntk_memory_check(const ntk_mem_estimate *e, double limit, const char *source,
                     const ntk_config *cfg, const ntk_grid *g, int N, int n_test, int d, int k);
/* Collective: estimate (the largest baseline over the ranks), limit and check, before
 * anything is allocated.  With dry_run it prints the limit line (after ntk_memory_print's
 * table) and the verdict, and never fails. */
int ntk_memory_enforce(const ntk_config *cfg, const ntk_grid *g, int N, int n_test, int d,
                       int k, int dry_run);

#endif
