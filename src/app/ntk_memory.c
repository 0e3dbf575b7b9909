#include "ntk_memory.h"

#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_error.h"
#include "ntk_eig.h"
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

/* The gathered products of ntk_grid.c keep their panels in five buffers, reused from one
 * call to the next (only grown) until ntk_dmat_panels_release: what is held while two
 * kinds of product alternate (the Grams and the backward's A B) is the larger of the two
 * in each buffer, not their sum. */
typedef struct {
  double arow, brow, acol, pack, recv;
} panel_slots;

static double slots_sum(panel_slots s) { return s.arow + s.brow + s.acol + s.pack + s.recv; }

static panel_slots slots_max(panel_slots a, panel_slots b) {
  return (panel_slots){max2(a.arow, b.arow), max2(a.brow, b.brow), max2(a.acol, b.acol),
                       max2(a.pack, b.pack), max2(a.recv, b.recv)};
}

/* Bytes process (0, 0) touches in the panels of gathered_abt (C := A B^T, A am x K, B bm x K,
 * C am x bm; same: B is A, as in ntk_dmat_gram_lower): per panel of kb columns (kb within
 * panel_mb, as the code cuts it) the rows of B for my C columns, received and reordered
 * (2 nc kb) and, with more than one grid column, my rows of A and of B gathered (ma kb,
 * mb kb) and the rows of B for my C columns packed (about one grid column's share).  On
 * one rank nothing is gathered (the panels are the matrices themselves). */
static panel_slots abt_slots(const ntk_grid *g, int am, int bm, int K, int same, double panel_mb) {
  panel_slots s = {0};
  if (g->nprow * g->npcol == 1 || K < 1) return s;
  int zero = 0;
  double ma = numroc_(&am, &g->nb, &zero, &zero, &g->nprow);
  double mb = same ? 0.0 : numroc_(&bm, &g->nb, &zero, &zero, &g->nprow);
  double nc = numroc_(&bm, &g->nb, &zero, &zero, &g->npcol);
  double kb = 8.0 * ntk_dmat_panel_columns(g, am, bm, K, same, panel_mb);
  s.acol = s.recv = kb * nc;
  if (g->npcol > 1) {
    s.arow = kb * ma;
    s.brow = kb * mb;
    s.pack = kb * max2(ma, mb) / g->npcol;
  }
  return s;
}

static double gathered_bytes(const ntk_grid *g, int am, int bm, int K, int same, double panel_mb) {
  return slots_sum(abt_slots(g, am, bm, K, same, panel_mb));
}

/* ntk_dmat_gemm_ab_gathered (C := A B, A am x K, C am x cn): my rows of A gathered (more
 * than one grid column), the panel's rows of B for my C columns packed and received (more
 * than one grid row) and reordered (any grid but one rank). */
static panel_slots ab_slots(const ntk_grid *g, int am, int cn, int K, double panel_mb) {
  panel_slots s = {0};
  if (g->nprow * g->npcol == 1 || K < 1) return s;
  int zero = 0, kb = ntk_dmat_panel_columns_ab(g, am, cn, K, panel_mb);
  double nc = numroc_(&cn, &g->nb, &zero, &zero, &g->npcol);
  s.acol = 8.0 * kb * nc;
  if (g->npcol > 1) s.arow = 8.0 * kb * numroc_(&am, &g->nb, &zero, &zero, &g->nprow);
  if (g->nprow > 1) {
    s.recv = 8.0 * kb * nc;
    s.pack = 8.0 * numroc_(&kb, &g->nb, &zero, &zero, &g->nprow) * nc;
  }
  return s;
}

/* ntk_dmat_gemm_abt_gathered: with fewer rows in A than in B it computes C^T = B A^T into a
 * bm x am block, then transposes it into C. */
static double abt_bytes(const ntk_grid *g, int am, int bm, int K, double panel_mb) {
  if (am >= bm) return gathered_bytes(g, am, bm, K, 0, panel_mb);
  return gathered_bytes(g, bm, am, K, 0, panel_mb) + dm(g, bm, am);
}

/* What one eigensolve holds on top of the matrix copy ntk_eig_solve makes, in local N x N
 * blocks B (measured peaks of the resident set, docs/HARDENING.md).  `inside` is the most
 * held during the ScaLAPACK/ELPA call; `after` what is still held when the K vectors are
 * reordered (ntk_eig.c's finish: the new N x K matrix and its send and receive buffers,
 * 3 N x K in all, are added to it).  PDSYEVR and PDSYEVD allocate Z as N x N even for the
 * top K; PDSYEVD always computes vectors; ELPA copies its own vectors (no reordering). */
typedef struct {
  double zfull, work_inside, work_after;
  int reorders;
} solver_cost;

static solver_cost solver_memory(const char *type, int vectors) {
  if (!type) type = "pdsyevr";
  if (strcmp(type, "pdsyevd") == 0) return (solver_cost){1.0, 1.65, 1.65, vectors};
  if (strcmp(type, "pdsyev") == 0)
    return vectors ? (solver_cost){1.0, 2.8, 1.6, 1} : (solver_cost){0.0, 0.05, 0.05, 0};
  if (strcmp(type, "elpa2") == 0)
    return vectors ? (solver_cost){1.0, 1.5, 1.5, 0} : (solver_cost){0.0, 2.9, 0.0, 0};
  /* pdsyevr */
  return vectors ? (solver_cost){1.0, 2.2, 2.2, 1} : (solver_cost){0.0, 2.2, 0.0, 0};
}

/* Bytes held by one eigensolve beyond the caller's matrices: the copy, the solver's own
 * matrices and, with vectors, the reordering buffers (the new vectors are the caller's). */
static double solve_bytes(const char *type, int vectors, double B, double V) {
  solver_cost c = solver_memory(type, vectors);
  double inside = (c.zfull + c.work_inside) * B, after = (c.zfull + c.work_after) * B;
  if (vectors) after += (c.reorders ? 2.0 : 0.0) * V;
  return B + max2(inside, after);
}

void ntk_memory_estimate(const ntk_config *cfg, const ntk_grid *g, int N, int n_test, int d, int k,
                         double baseline, ntk_mem_estimate *e) {
  *e = (ntk_mem_estimate){0};
  const int m = cfg->fourier.features, p = ntk_config_input_dim(cfg, d);
  const int n = ntk_config_width(cfg, d), L = cfg->model.depth;
  const int K = cfg->ntk.top_k > 0 ? cfg->ntk.top_k : N;
  const int training = cfg->train.steps > 0;
  const int vectors = training || cfg->output.save_eigenvectors;
  /* "auto" runs a solver chosen by the shapes: the estimate is that solver's */
  const char *solver = ntk_eig_resolve(cfg->eigensolver.type, N, cfg->ntk.top_k, vectors);
  const char *diff_solver = ntk_eig_resolve(cfg->eigensolver.type, N, 0, 0);
  e->baseline = baseline;
  /* what the libraries add once running: the open HDF5 file (MPI-IO), BLACS and MPI
   * message buffers, OpenBLAS's packing buffers (measured, docs/HARDENING.md) */
  e->runtime = NTK_MEM_RUNTIME_MIB * MIB;

  double data = dm(g, N, d) + dm(g, N, k) + dm(g, n_test, d) + dm(g, n_test, k);
  double params = (m > 0 ? dm(g, m, d) : 0) + (cfg->fourier.project ? dm(g, n, p) : 0) +
                  L * dm(g, n, n) + dm(g, k, n) + 8.0 * ((L + 1.0) * n + k);
  term(e, "data (x, y, train and test)", data);
  term(e, "parameters", params);
  /* The measured kernel lives from the first measurement to the end; with training, so do
   * Theta_0 (the drift's reference), the eigenvectors of the last measurement (residual
   * projections) and one gradient buffer per weight shape (n x n, n x p, k x n, m x d). */
  const double B = dm(g, N, N);
  double z = vectors ? dm(g, N, K) : 0.0;
  double theta0 = training ? B : 0.0;
  double grads = 0.0;
  if (training)
    grads = (L > 0 ? dm(g, n, n) : 0) + (cfg->fourier.project ? dm(g, n, p) : 0) + dm(g, k, n) +
            (m > 0 && cfg->fourier.trainable ? dm(g, m, d) : 0);
  term(e, "NTK", B);
  term(e, "eigenvectors", z);
  term(e, "training: Theta_0", theta0);
  term(e, "training: gradient buffers", grads);
  /* PDSYEVR on a non-square grid redistributes the matrix (PDSYNTRD -> PDTRMR2D) through
   * BLACS's send buffer, which BLACS keeps for the rest of the run: about half a block */
  int uses_mrrr = strcmp(solver, "pdsyevr") == 0 || (training && strcmp(diff_solver, "pdsyevr") == 0);
  double blacs = uses_mrrr && g->nprow != g->npcol ? 0.5 * B : 0.0;
  term(e, "BLACS buffer kept after PDSYEVR", blacs);
  e->persistent = data + params + B + z + theta0 + grads + blacs;

  /* NTK assembly: the forward states live throughout; the backward signals and the Gram
   * panels while the groups are visited; ntk_dmat_symmetrize_lower's transpose (one N x N)
   * at the end, while the Gram scratch is still held */
  double fourier = m > 0 ? 2 * dm(g, N, 2 * m) : 0.0;
  double states = (2.0 * L + 1.0) * dm(g, N, n) + dm(g, N, k);
  double signals = 2.0 * dm(g, N, n) + dm(g, N, k);
  if (m > 0 && cfg->fourier.trainable) signals += dm(g, N, p) + dm(g, N, m);
  const int wide = n > p ? n : p;
  double scratch, panels;
  /* the backward's dF/dh^{l-1} = c gz W^l (ntk_dmat_gemm_ab_gathered) */
  const panel_slots bwd_slots = L > 0 ? ab_slots(g, N, n, n, cfg->ntk.chunk_mb) : (panel_slots){0};
  if (cfg->ntk.method == NTK_METHOD_STRUCTURED) {
    scratch = (1.0 + (k > 1 ? L + 3.0 : 1.0)) * B;
    /* Gram panels of the signals and of the layer inputs (ntk_dmat_gram_lower), sharing
     * their buffers with the backward's products */
    panels = slots_sum(slots_max(abt_slots(g, N, N, wide, 1, cfg->ntk.chunk_mb), bwd_slots));
  } else {
    /* replicated rows of one group's signals and inputs + one Jacobian chunk */
    double rows = (double)N / g->nprow + g->nb;
    scratch = 0.0;
    panels = 2.0 * rows * wide * 8.0 + cfg->ntk.chunk_mb * MIB * 1.2 + slots_sum(bwd_slots);
  }
  /* the forward pass's gathered panels (ntk_dmat_gemm_abt_gathered): h W^T of the blocks
   * and, with the projection, phi W0^T */
  double fwd = max2(L > 0 ? abt_bytes(g, N, n, n, cfg->ntk.chunk_mb) : 0.0,
                    cfg->fourier.project ? abt_bytes(g, N, n, p, cfg->ntk.chunk_mb) : 0.0);
  term(e, "forward gathered panels", fwd);
  double transpose = B;
  double average = cfg->ntk.network == NTK_NETWORK_MASK_AVERAGE ? B : 0.0;
  term(e, "Fourier features", fourier);
  term(e, "forward states h, z", states);
  term(e, "backward signals", signals);
  if (scratch > 0) term(e, "Gram scratch", scratch);
  term(e, cfg->ntk.method == NTK_METHOD_STRUCTURED ? "Gram and backward panels"
                                                   : "Jacobian chunk, backward panels",
       panels);
  term(e, "kernel symmetrization transpose", transpose);
  if (average > 0) term(e, "mask-average accumulator", average);
  e->phase_ntk = average + fourier + states + scratch + max2(max2(signals + panels, transpose), fwd);

  /* The eigensolve of a measurement: the previous vectors are freed first, the new ones
   * (the "eigenvectors" term) are made at its end.  With training the kernel's distance
   * to Theta_0 (ntk_change_norm2) is one more eigensolve, values only, of a difference
   * copy, while the vectors are held. */
  solver_cost c = solver_memory(solver, vectors);
  double copy = B;
  double zfull = c.zfull * B;
  double work = max2(c.work_inside, c.work_after) * B;
  double reorder = vectors && c.reorders ? 2.0 * dm(g, N, K) : 0.0;
  term(e, "eigensolver matrix copy", copy);
  term(e, "eigensolver all vectors (N x N)", zfull);
  term(e, "eigensolver workspace", work);
  term(e, "eigenvector reordering buffers", reorder);
  e->phase_eig = solve_bytes(solver, vectors, B, z);
  double diff = training ? B + solve_bytes(diff_solver, 0, B, 0.0) : 0.0;
  if (diff > 0) term(e, "training: Theta_t - Theta_0 eigensolve", diff);
  e->phase_eig = max2(e->phase_eig, diff);
  /* a training step: forward states, backward signals and Fourier features again */
  double phase_train = training ? fourier + states + max2(signals + slots_sum(bwd_slots), fwd) : 0.0;
  /* writing the kernel or the vectors stages a local block (ntk_output, at most 64 MiB) */
  double stage = max2(cfg->output.save_ntk ? B : 0.0, cfg->output.save_eigenvectors ? z : 0.0);
  if (stage > 64.0 * MIB) stage = 64.0 * MIB;
  if (stage > 0) term(e, "output write staging", stage);

  const char *names[4] = {"NTK assembly", "eigensolve", "training step", "output"};
  double phases[4] = {e->phase_ntk, e->phase_eig, phase_train, stage};
  int top = 0;
  for (int i = 1; i < 4; ++i)
    if (phases[i] > phases[top]) top = i;
  e->peak_phase = names[top];
  e->peak = e->baseline + e->runtime + e->persistent + phases[top];
}

void ntk_memory_print(const ntk_mem_estimate *e) {
  ntk_log_raw("estimated memory per rank (largest rank):\n");
  ntk_log_raw("  %-38s %10.1f MiB\n", "runtime baseline", e->baseline / MIB);
  ntk_log_raw("  %-38s %10.1f MiB\n", "runtime growth (HDF5, MPI, BLAS)", e->runtime / MIB);
  for (int i = 0; i < e->nterms; ++i)
    if (e->terms[i].bytes > 0)
      ntk_log_raw("  %-38s %10.1f MiB\n", e->terms[i].name, e->terms[i].bytes / MIB);
  ntk_log_raw("  %-38s %10.1f MiB\n", "phase peak: NTK assembly", (e->persistent + e->phase_ntk) / MIB);
  ntk_log_raw("  %-38s %10.1f MiB\n", "phase peak: eigensolve", (e->persistent + e->phase_eig) / MIB);
  ntk_log_raw("  %-38s %10.1f MiB (%s)\n", "estimated peak", e->peak / MIB, e->peak_phase);
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
                       int dry_run, ntk_mem_estimate *est) {
  /* the baselines differ a little between ranks: all ranks use the largest */
  double base = ntk_current_rss_bytes(), limit;
  MPI_Allreduce(MPI_IN_PLACE, &base, 1, MPI_DOUBLE, MPI_MAX, g->comm);
  char source[200];
  NTK_CHECK(ntk_memory_limit(cfg, g->comm, &limit, source, sizeof source));
  ntk_mem_estimate e;
  ntk_memory_estimate(cfg, g, N, n_test, d, k, base, &e);
  if (est) *est = e;
  int rc = ntk_memory_check(&e, limit, source, cfg, g, N, n_test, d, k);
  if (dry_run) {
    ntk_memory_print(&e);
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

/* ---------------------------------------------------------------- measured -- */

void ntk_memory_init(void) {
  /* glibc's default threshold grows to the size of each block freed (up to 32 MiB), so
   * freed N x N blocks stay in the heap, where later blocks of other sizes fit them badly:
   * the peak resident set of a training run was up to 20% above the data alive at any
   * time, and depended on the order of earlier frees.  A fixed threshold hands every
   * block of 512 KiB or more back to the system when freed (docs/HARDENING.md). */
  mallopt(M_MMAP_THRESHOLD, 512 * 1024);
}

void ntk_memory_measure(MPI_Comm comm, ntk_mem_measured *m) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  double peak = ntk_peak_rss_bytes(), lo, hi, sum;
  MPI_Allreduce(&peak, &lo, 1, MPI_DOUBLE, MPI_MIN, comm);
  MPI_Allreduce(&peak, &hi, 1, MPI_DOUBLE, MPI_MAX, comm);
  MPI_Allreduce(&peak, &sum, 1, MPI_DOUBLE, MPI_SUM, comm);
  *m = (ntk_mem_measured){lo, sum / size, hi};
}

int ntk_memory_record(ntk_output *out, const ntk_mem_estimate *e, const ntk_mem_measured *m) {
  static const char *const g = "/memory";
  NTK_CHECK(ntk_output_attr_double(out, g, "estimated_peak_bytes", e->peak));
  NTK_CHECK(ntk_output_attr_double(out, g, "estimated_baseline_bytes", e->baseline));
  NTK_CHECK(ntk_output_attr_double(out, g, "estimated_persistent_bytes", e->persistent));
  NTK_CHECK(ntk_output_attr_string(out, g, "estimated_peak_phase", e->peak_phase));
  NTK_CHECK(ntk_output_attr_double(out, g, "measured_peak_bytes_min", m->min));
  NTK_CHECK(ntk_output_attr_double(out, g, "measured_peak_bytes_avg", m->avg));
  NTK_CHECK(ntk_output_attr_double(out, g, "measured_peak_bytes_max", m->max));
  return NTK_OK;
}

void ntk_memory_print_usage(const ntk_mem_estimate *e, const ntk_mem_measured *m) {
  ntk_log_raw("memory per rank: peak %.1f MiB measured (max over ranks), %.1f MiB estimated "
              "(measured / estimated %.2f)\n",
              m->max / MIB, e->peak / MIB, e->peak > 0 ? m->max / e->peak : 0.0);
}
