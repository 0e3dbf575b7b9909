/* ntk_memory: the per-rank memory estimate of a run, term by term and phase by phase,
 * summed from what each module declares it allocates (ntk_*_memory, the eigensolver
 * table's cost), from the shapes alone (no allocation).  --dry-run prints it; every run records it in
 * /memory next to the measured peak resident set (ru_maxrss, min/avg/max over the ranks)
 * and prints both at the end; tests/test_memory.py holds them within 15%.  Sizes are
 * those of the rank holding the most (process (0,0) of the block-cyclic layout); the
 * solver terms are those of the solver "auto" resolves to (ntk_eig_resolve), with
 * workspaces measured (docs/HARDENING.md, "Memory: estimate and limit"). */
#ifndef NTK_MEMORY_H
#define NTK_MEMORY_H
#include "ntk_config.h"
#include "ntk_grid.h"
#include "ntk_output.h"

#define NTK_MEM_MAX_TERMS 28
/* MiB the libraries add to the baseline once running (measured, docs/HARDENING.md) */
#define NTK_MEM_RUNTIME_MIB 10.0

typedef struct {
  const char *name;
  double bytes;
} ntk_mem_term;

typedef struct {
  double baseline;      /* resident size of the process before any data (MPI, libraries) */
  double runtime;       /* what the libraries add once running (NTK_MEM_RUNTIME_MIB) */
  double persistent;    /* data + parameters, alive the whole run */
  double phase_ntk;     /* forward states + max(signals + Gram panels, transpose) + scratch */
  double phase_eig;     /* eigensolver copy, Z, workspace, reordering (or the drift solve) */
  const char *phase_ntk_name, *phase_eig_name; /* what the method calls these two phases */
  double peak;          /* baseline + runtime + persistent + max(phase) */
  const char *peak_phase; /* the phase of the peak: "NTK assembly", "eigensolve", ... */
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
/* NTK_ERR_INPUT when a term saturated (more than 2^63 bytes: too large for any machine,
 * whatever the limit), or when e->peak exceeds limit (> 0): the message gives the peak, the limit
 * and its source, the largest term and how many ranks would fit.  Not collective; the same
 * result on every rank for the same estimate. */
int ntk_memory_check(const ntk_mem_estimate *e, double limit, const char *source,
                     const ntk_config *cfg, const ntk_grid *g, int N, int n_test, int d, int k);
/* Collective: estimate (the largest baseline over the ranks), limit and check, before
 * anything is allocated.  With dry_run it prints ntk_memory_print's table, the limit line
 * and the verdict, and never fails.  est (may be NULL) receives the estimate: the one
 * --dry-run prints is the one a run records (ntk_memory_record). */
int ntk_memory_enforce(const ntk_config *cfg, const ntk_grid *g, int N, int n_test, int d,
                       int k, int dry_run, ntk_mem_estimate *est);

/* Large blocks (512 KiB and more) go back to the system when freed, so that the resident
 * set follows the data alive and the estimate can bound it.  Call once, first. */
void ntk_memory_init(void);

/* The measured peak resident set per rank (getrusage ru_maxrss: the high-water mark of the
 * whole run so far) over the ranks. */
typedef struct {
  double min, avg, max;
} ntk_mem_measured;
/* Collective. */
void ntk_memory_measure(MPI_Comm comm, ntk_mem_measured *m);
/* Collective: the /memory group of the result file (docs/OUTPUT.md): the estimate and the
 * measured peak, in bytes per rank. */
int ntk_memory_record(ntk_output *out, const ntk_mem_estimate *e,
                      const ntk_mem_measured *m);
/* Rank 0: "memory per rank: peak X MiB measured (max over ranks), Y MiB estimated". */
void ntk_memory_print_usage(const ntk_mem_estimate *e, const ntk_mem_measured *m);

#endif
