#include "ntk_memory.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_eig.h"
#include "ntk_error.h"
#include "ntk_log.h"
#include "ntk_scalapack.h"

#define MIB 1048576.0

/* Local bytes of an m x n matrix on process (0, 0), the one holding the most. */
static double dm(const ntk_grid *g, double m, double n) {
  if (m < 1 || n < 1) return 0.0;
  int mi = (int)m, ni = (int)n, zero = 0;
  double ml = numroc_(&mi, &g->nb, &zero, &zero, &g->nprow);
  double nl = numroc_(&ni, &g->nb, &zero, &zero, &g->npcol);
  return ml * nl * 8.0;
}

static void term(ntk_mem_estimate *e, const char *name, double bytes) {
  if (e->nterms < NTK_MEM_MAX_TERMS) e->terms[e->nterms++] = (ntk_mem_term){name, bytes};
}

static double max2(double a, double b) { return a > b ? a : b; }

void ntk_memory_estimate(const ntk_config *cfg, const ntk_grid *g, int N, int n_test, int d, int k,
                         double baseline, ntk_mem_estimate *e) {
  *e = (ntk_mem_estimate){0};
  const int m = cfg->fourier.features, p = m > 0 ? 2 * m : d;
  const int n = cfg->fourier.project ? cfg->model.width : p, L = cfg->model.depth;
  const int K = cfg->ntk.top_k > 0 ? cfg->ntk.top_k : N;
  const int training = cfg->train.steps > 0;
  e->baseline = baseline;

  double data = dm(g, N, d) + dm(g, N, k) + dm(g, n_test, d) + dm(g, n_test, k);
  double params = (m > 0 ? dm(g, m, d) : 0) + (cfg->fourier.project ? dm(g, n, p) : 0) +
                  L * dm(g, n, n) + dm(g, k, n) + 8.0 * ((L + 1.0) * n + k);
  term(e, "data (x, y, train and test)", data);
  term(e, "parameters", params);
  /* The measured kernel lives from the first measurement to the end; with training, so do
   * Theta_0 (the drift's reference), the eigenvectors of the last measurement (residual
   * projections) and one gradient buffer per weight shape (n x n, n x p, k x n, m x d). */
  double kernel = dm(g, N, N);
  const int vectors = training || cfg->output.save_eigenvectors;
  double z = vectors ? dm(g, N, K) : 0.0;
  double theta0 = training ? dm(g, N, N) : 0.0;
  double grads = 0.0;
  if (training)
    grads = (L > 0 ? dm(g, n, n) : 0) + (cfg->fourier.project ? dm(g, n, p) : 0) + dm(g, k, n) +
            (m > 0 && cfg->fourier.trainable ? dm(g, m, d) : 0);
  term(e, "NTK", kernel);
  term(e, "eigenvectors", z);
  term(e, "training: Theta_0", theta0);
  term(e, "training: gradient buffers", grads);
  e->persistent = data + params + kernel + z + theta0 + grads;

  double fourier = m > 0 ? 2 * dm(g, N, 2 * m) : 0.0;
  double states = (2.0 * L + 1.0) * dm(g, N, n) + dm(g, N, k);
  double signals = 2.0 * dm(g, N, n) + dm(g, N, k);
  if (m > 0 && cfg->fourier.trainable) signals += dm(g, N, p) + dm(g, N, m);
  double scratch;
  if (cfg->ntk.method == NTK_METHOD_STRUCTURED) {
    scratch = (1.0 + (k > 1 ? L + 3.0 : 1.0)) * dm(g, N, N);
    /* Gram panels: rows of A for my C rows and columns, sent and received (ntk_dmat_gram_lower) */
    int zero = 0;
    double rows = numroc_(&N, &g->nb, &zero, &zero, &g->nprow) + numroc_(&N, &g->nb, &zero, &zero, &g->npcol);
    double full = 2.0 * rows * (n > p ? n : p) * 8.0, bound = 2.0 * cfg->ntk.chunk_mb * MIB;
    scratch += full < bound ? full : bound;
  } else {
    /* replicated rows of one group's signals and inputs + one Jacobian chunk */
    double rows = (double)N / g->nprow + g->nb;
    scratch = 2.0 * rows * (n > p ? n : p) * 8.0 + cfg->ntk.chunk_mb * MIB * 1.2;
  }
  /* the forward pass's gathered panels (ntk_dmat_gemm_abt_gathered, h W^T): the rows of W
   * for my z columns, received and reordered, and with more than one grid column my rows
   * of h and of W gathered and packed; kb columns per panel within ntk.chunk_mb */
  double fwd;
  {
    int zero = 0, Kf = n > p ? n : p;
    double ma = numroc_(&N, &g->nb, &zero, &zero, &g->nprow);
    double mb = numroc_(&n, &g->nb, &zero, &zero, &g->nprow);
    double nc = numroc_(&n, &g->nb, &zero, &zero, &g->npcol);
    double kb = cfg->ntk.chunk_mb * MIB / 8.0 / (ma + mb + nc + 1.0);
    if (kb > Kf) kb = Kf;
    fwd = 8.0 * kb * (2.0 * nc + (g->npcol > 1 ? ma + mb + max2(ma, mb) : 0.0));
  }
  term(e, "forward gathered panels", fwd);
  double average = cfg->ntk.network == NTK_NETWORK_MASK_AVERAGE ? dm(g, N, N) : 0.0;
  term(e, "Fourier features", fourier);
  term(e, "forward states h, z", states);
  term(e, "backward signals", signals);
  term(e, cfg->ntk.method == NTK_METHOD_STRUCTURED ? "Gram scratch" : "Jacobian chunk", scratch);
  if (average > 0) term(e, "mask-average accumulator", average);
  e->phase_ntk = fourier + states + max2(signals + scratch, fwd) + average;

  /* the eigensolver works on a copy; with vectors ScaLAPACK's workspace is about one more
   * local N x N block, without them a few vectors of length N.  With training the kernel's
   * distance to Theta_0 (ntk_change_norm2) is one more eigensolve, values only, of a
   * difference copy. */
  double copy = dm(g, N, N);
  /* with vectors: all N vectors (Z, before the top K are picked) and the workspace,
   * allocated at twice pdsyevr's query (about 1.5 local N x N blocks) by ntk_eig, a
   * little over pdsyevd's (measured: docs/HARDENING.md) */
  const int mrrr = strcmp(ntk_eig_resolve(cfg->eigensolver.type, N, cfg->ntk.top_k, vectors), "pdsyevr") == 0;
  double zfull = vectors ? dm(g, N, N) : 0.0;
  double work = vectors ? (mrrr ? 3.0 : 1.2) * dm(g, N, N) : 16.0 * N * 8.0;
  term(e, "eigensolver matrix copy", copy);
  term(e, "eigensolver all vectors", zfull);
  term(e, "eigensolver workspace", work);
  double diff = training ? 2.0 * dm(g, N, N) + 16.0 * N * 8.0 : 0.0;
  if (diff > 0) term(e, "training: Theta_t - Theta_0 eigensolve", diff);
  e->phase_eig = max2(copy + zfull + work, diff);
  /* a training step: forward states, backward signals and Fourier features again */
  double phase_train = training ? fourier + states + max2(signals, fwd) : 0.0;
  double phase = max2(max2(e->phase_ntk, e->phase_eig), phase_train);
  e->peak = e->baseline + e->persistent + phase;
}

void ntk_memory_print(const ntk_mem_estimate *e) {
  ntk_log_raw("estimated memory per rank (largest rank):\n");
  ntk_log_raw("  %-38s %10.1f MiB\n", "runtime baseline", e->baseline / MIB);
  for (int i = 0; i < e->nterms; ++i)
    if (e->terms[i].bytes > 0)
      ntk_log_raw("  %-38s %10.1f MiB\n", e->terms[i].name, e->terms[i].bytes / MIB);
  ntk_log_raw("  %-38s %10.1f MiB\n", "phase peak: NTK assembly", (e->persistent + e->phase_ntk) / MIB);
  ntk_log_raw("  %-38s %10.1f MiB\n", "phase peak: eigensolve", (e->persistent + e->phase_eig) / MIB);
  ntk_log_raw("  %-38s %10.1f MiB\n", "estimated peak", e->peak / MIB);
}

/* ------------------------------------------------------------------ limit -- */

/* MemTotal of /proc/meminfo, bytes; 0 if unreadable. */
static double meminfo_total(void) {
  FILE *f = fopen("/proc/meminfo", "r");
  if (!f) return 0.0;
  char line[256];
  double kb = 0.0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "MemTotal: %lf kB", &kb) == 1) break;
  fclose(f);
  return kb * 1024.0;
}

/* The memory cgroup's limit (v2 memory.max, else v1 memory.limit_in_bytes), bytes; 0 when
 * there is none.  A container or a SLURM cgroup can hold less than the node. */
static double cgroup_limit(void) {
  static const char *const files[] = {"/sys/fs/cgroup/memory.max",
                                      "/sys/fs/cgroup/memory/memory.limit_in_bytes"};
  for (int i = 0; i < 2; ++i) {
    FILE *f = fopen(files[i], "r");
    if (!f) continue;
    char buf[64] = "";
    char *ok = fgets(buf, sizeof buf, f);
    fclose(f);
    double v = ok ? strtod(buf, NULL) : 0.0;
    if (v > 0 && v < 1e18) return v; /* "max" parses as 0; v1's "unlimited" is ~2^63 */
  }
  return 0.0;
}

static double env_mb(const char *name) {
  const char *s = getenv(name);
  if (!s || !*s) return 0.0;
  char *end;
  double v = strtod(s, &end);
  /* SLURM writes plain MiB; a unit suffix is tolerated */
  if (*end == 'G' || *end == 'g') v *= 1024.0;
  if (*end == 'T' || *end == 't') v *= 1024.0 * 1024.0;
  return v > 0 ? v : 0.0;
}

int ntk_memory_limit(const ntk_config *cfg, MPI_Comm comm, double *limit, char *source, size_t n) {
  *limit = 0.0;
  snprintf(source, n, "none known");
  if (cfg->memory.limit_mb > 0) {
    *limit = cfg->memory.limit_mb * MIB;
    snprintf(source, n, "memory.limit_mb");
    return NTK_OK;
  }
  MPI_Comm node;
  int local = 1;
  if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
  }
  double per_node = env_mb("SLURM_MEM_PER_NODE"), per_cpu = env_mb("SLURM_MEM_PER_CPU");
  double mine;
  if (per_node > 0) {
    mine = per_node * MIB / local;
    snprintf(source, n, "SLURM_MEM_PER_NODE %.0f MiB / %d ranks on the node", per_node, local);
  } else if (per_cpu > 0) {
    double cpus = env_mb("SLURM_CPUS_PER_TASK");
    if (cpus < 1) cpus = 1;
    mine = per_cpu * MIB * cpus;
    snprintf(source, n, "SLURM_MEM_PER_CPU %.0f MiB x %.0f cpus per task", per_cpu, cpus);
  } else {
    double total = meminfo_total(), cg = cgroup_limit();
    const char *what = "MemTotal";
    if (cg > 0 && (total <= 0 || cg < total)) {
      total = cg;
      what = "the memory cgroup's limit";
    }
    mine = total / local;
    snprintf(source, n, "%s %.0f MiB / %d ranks on the node", what, total / MIB, local);
  }
  /* every rank applies the tightest limit, so that all stop or none does */
  MPI_Allreduce(&mine, limit, 1, MPI_DOUBLE, MPI_MIN, comm);
  return NTK_OK;
}

static int largest_term(const ntk_mem_estimate *e) {
  int best = -1;
  for (int i = 0; i < e->nterms; ++i)
    if (best < 0 || e->terms[i].bytes > e->terms[best].bytes) best = i;
  return best;
}

int ntk_memory_ranks_that_fit(const ntk_config *cfg, const ntk_grid *g, int N, int n_test, int d,
                              int k, double baseline, double limit) {
  /* a wider job keeps the memory per rank; the grid of each candidate is the automatic one */
  for (int P = g->size + 1; P <= 1 << 20; P = P < 4096 ? P + 1 : P + P / 8) {
    ntk_grid h = *g;
    ntk_grid_choose(P, &h.nprow, &h.npcol);
    h.size = P;
    ntk_mem_estimate e;
    ntk_memory_estimate(cfg, &h, N, n_test, d, k, baseline, &e);
    if (e.peak <= limit) return P;
  }
  return 0;
}

int ntk_memory_check(const ntk_mem_estimate *e, double limit, const char *source,
                     const ntk_config *cfg, const ntk_grid *g, int N, int n_test, int d, int k) {
  if (limit <= 0 || e->peak <= limit) return NTK_OK;
  int big = largest_term(e);
  int fit = ntk_memory_ranks_that_fit(cfg, g, N, n_test, d, k, e->baseline, limit);
  char ranks[160];
  if (fit > 0)
    snprintf(ranks, sizeof ranks, "%d ranks would fit (at this memory per rank)", fit);
  else
    snprintf(ranks, sizeof ranks, "no rank count up to 2^20 fits (the terms that do not shrink "
                                  "with more ranks exceed it)");
  return ntk_err_set(NTK_ERR_INPUT,
                     "memory: the estimated peak is %.1f MiB per rank, over the limit of %.1f MiB "
                     "per rank (%s); the largest term, %s, needs %.1f MiB per rank on %d ranks; "
                     "%s; or set memory.limit_mb (see ntkspec run --dry-run)",
                     e->peak / MIB, limit / MIB, source, big >= 0 ? e->terms[big].name : "?",
                     big >= 0 ? e->terms[big].bytes / MIB : 0.0, g->size, ranks);
}

int ntk_memory_enforce(const ntk_config *cfg, const ntk_grid *g, int N, int n_test, int d, int k,
                       int dry_run) {
  /* the baselines differ a little between ranks: all ranks use the largest */
  double base = ntk_current_rss_bytes(), limit;
  MPI_Allreduce(MPI_IN_PLACE, &base, 1, MPI_DOUBLE, MPI_MAX, g->comm);
  char source[200];
  NTK_CHECK(ntk_memory_limit(cfg, g->comm, &limit, source, sizeof source));
  ntk_mem_estimate e;
  ntk_memory_estimate(cfg, g, N, n_test, d, k, base, &e);
  int rc = ntk_memory_check(&e, limit, source, cfg, g, N, n_test, d, k);
  if (dry_run) {
    if (limit > 0)
      ntk_log_raw("  %-38s %10.1f MiB (%s)%s\n", "limit per rank", limit / MIB, source,
                  rc ? ": EXCEEDED" : "");
    if (rc) ntk_log_raw("# %s\n", ntk_err_message());
    ntk_err_clear();
    return NTK_OK;
  }
  /* the same inputs on every rank give the same verdict: agree on it, one message */
  NTK_CHECK(ntk_err_sync(g->comm, rc));
  return NTK_OK;
}
