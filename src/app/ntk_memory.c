#include "ntk_memory.h"

#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_data.h"
#include "ntk_eig.h"
#include "ntk_eigs.h"
#include "ntk_error.h"
#include "ntk_log.h"
#include "ntk_model.h"
#include "ntk_ntk.h"
#include "ntk_ntkvp.h"
#include "ntk_size.h"
#include "ntk_train.h"

#define MIB 1048576.0

static void term(ntk_mem_estimate *e, const char *name, int64_t bytes) {
  if (e->nterms < NTK_MEM_MAX_TERMS) e->terms[e->nterms++] = (ntk_mem_term){name, (double)bytes};
}

/* A training step's bytes: forward states and Fourier features, then the backward's
 * signals and panels or the forward's panels, whichever is larger. */
static int64_t train_step_bytes(const ntk_model_bytes *mb) {
  return ntk_size_add(ntk_size_add(mb->fourier, mb->states),
                      ntk_size_max(ntk_size_add(mb->signals, ntk_panel_bytes_sum(mb->backward_panels)),
                                   mb->forward_panels));
}

/* step 0 of a training run with a test set: the cross kernel Theta_0(X_test, X), assembled
 * from both sets' forward passes (the test set's signals recorded); the phase's bytes, its
 * term added (0 without a test-loss reference). */
static int64_t cross_kernel_bytes(const ntk_config *cfg, const ntk_grid *g, int N, int n_test,
                                  int d, int k, const ntk_model_bytes *mb, int64_t test_ref,
                                  ntk_mem_estimate *e) {
  const int64_t cross = test_ref > 0 ? ntk_ntk_cross_memory(cfg, g, n_test, N, d, k) : 0;
  if (cross == 0) return 0;
  term(e, "training: cross kernel (step 0)", cross);
  return ntk_size_add(ntk_size_add(cross, ntk_size_add(mb->fourier, mb->states)),
                      ntk_size_add(mb->signals, ntk_panel_bytes_sum(mb->backward_panels)));
}

/* The phases of a measurement and a step, in this order in estimate_peak's arrays. */
#define NTK_MEM_PHASES 5

/* The peak: what persists plus the largest of the phases (named in names): the NTK or the
 * forward pass, the eigensolve, a training step, output, the cross kernel. */
static void estimate_peak(ntk_mem_estimate *e, int64_t persistent,
                          const char *const names[NTK_MEM_PHASES],
                          const int64_t phases[NTK_MEM_PHASES]) {
  int top = 0;
  for (int i = 1; i < NTK_MEM_PHASES; ++i)
    if (phases[i] > phases[top]) top = i;
  e->persistent = (double)persistent;
  e->phase_ntk = (double)phases[0];
  e->phase_eig = (double)phases[1];
  e->phase_ntk_name = names[0];
  e->phase_eig_name = names[1];
  e->peak_phase = names[top];
  e->peak = e->baseline + e->runtime + (double)ntk_size_add(persistent, phases[top]);
}

/* ntk.method matrix_free: no N x N matrix at all.  A measurement holds the forward states
 * (the operator borrows the loss's, or makes its own), the operator's scratch
 * (ntk_ntkvp_memory), the backward's signals and panels during each product, and the
 * eigensolver's Krylov basis (ntk_eigs_memory); a training step is the dense path's. */
static void estimate_matrix_free(const ntk_config *cfg, const ntk_grid *g, int N, int n_test,
                                 int d, int k, const ntk_model_bytes *mb,
                                 const ntk_train_bytes *tb, int64_t data, ntk_mem_estimate *e) {
  const int training = cfg->train.steps > 0;
  const int vectors = ntk_config_wants_eigenvectors(cfg);
  int64_t op = 0;
  ntk_ntkvp_memory(cfg, g, N, d, k, mb, &op);
  const int64_t basis = ntk_eigs_memory(g, N, cfg->ntk.top_k, cfg->eigensolver.ncv, vectors);
  term(e, "data (x, y, train and test)", data);
  term(e, "parameters", mb->params);
  term(e, "eigenvectors", tb->vectors);
  term(e, "training: gradient buffers", tb->grads);
  term(e, "measurement schedule", tb->schedule);
  const int64_t test_ref = ntk_train_test_memory(cfg, g, N, n_test, k);
  term(e, "training: test-loss prediction reference", test_ref);
  const int64_t persistent = ntk_size_add(
      ntk_size_add(ntk_size_add(data, mb->params),
                   ntk_size_add(tb->vectors, ntk_size_add(tb->grads, tb->schedule))),
      test_ref);
  term(e, "forward gathered panels", mb->forward_panels);
  term(e, "Fourier features", mb->fourier);
  term(e, "forward states h, z", mb->states);
  term(e, "backward signals", mb->signals);
  term(e, "backward panels", ntk_panel_bytes_sum(mb->backward_panels));
  term(e, "matrix-free product scratch", op);
  term(e, "Krylov basis (SLEPc)", basis);
  const int64_t states = ntk_size_add(mb->fourier, mb->states);
  const int64_t phase_fwd = ntk_size_add(states, mb->forward_panels);
  const int64_t phase_eig = ntk_size_add(
      ntk_size_add(states, ntk_size_add(op, basis)),
      ntk_size_max(ntk_size_add(mb->signals, ntk_panel_bytes_sum(mb->backward_panels)),
                   mb->forward_panels));
  const int64_t stage = ntk_output_stage_bytes(cfg->output.save_eigenvectors ? tb->vectors : 0);
  if (stage > 0) term(e, "output write staging", stage);
  const int64_t phase_cross = cross_kernel_bytes(cfg, g, N, n_test, d, k, mb, test_ref, e);
  const char *const names[NTK_MEM_PHASES] = {"forward pass", "matrix-free eigensolve",
                                              "training step", "output", "cross kernel"};
  const int64_t phases[NTK_MEM_PHASES] = {phase_fwd, phase_eig, training ? train_step_bytes(mb) : 0,
                                          stage, phase_cross};
  estimate_peak(e, persistent, names, phases);
}

/* Every size comes from the module that allocates it (ntk_data_memory, ntk_model_memory,
 * ntk_ntk_memory, ntk_train_memory, ntk_eig_memory, ntk_output_stage_bytes); this only
 * says which of them are alive together, in saturating 64-bit sums (ntk_size.h): a key
 * too large for any machine gives a peak that no limit admits, never a wrapped one. */
void ntk_memory_estimate(const ntk_config *cfg, const ntk_grid *g, int N, int n_test, int d, int k,
                         double baseline, ntk_mem_estimate *e) {
  *e = (ntk_mem_estimate){0};
  const int training = cfg->train.steps > 0;
  const int vectors = ntk_config_wants_eigenvectors(cfg);
  e->baseline = baseline;
  /* what the libraries add once running: the open HDF5 file (MPI-IO), BLACS and MPI
   * message buffers, OpenBLAS's packing buffers (measured, docs/HARDENING.md) */
  e->runtime = NTK_MEM_RUNTIME_MIB * MIB;

  ntk_model_bytes mb;
  ntk_ntk_bytes nb;
  ntk_train_bytes tb;
  ntk_model_memory(cfg, g, N, d, k, &mb);
  ntk_ntk_memory(cfg, g, N, d, k, &mb, &nb);
  ntk_train_memory(cfg, g, N, d, k, &tb);
  const int64_t data = ntk_data_memory(g, N, n_test, d, k);
  if (cfg->ntk.method == NTK_METHOD_MATRIX_FREE) {
    estimate_matrix_free(cfg, g, N, n_test, d, k, &mb, &tb, data, e);
    return;
  }
  /* "auto" runs a solver chosen by the shapes: the estimate is that solver's; with
   * training the kernel's distance to Theta_0 is one more solve, values only */
  const ntk_eig_cost solve = ntk_eig_memory(cfg->eigensolver.type, g, N, cfg->ntk.top_k, vectors);
  const ntk_eig_cost diff = ntk_eig_memory(cfg->eigensolver.type, g, N, 0, 0);
  const int64_t B = tb.kernel;

  term(e, "data (x, y, train and test)", data);
  term(e, "parameters", mb.params);
  /* The measured kernel lives from the first measurement to the end; with training, so do
   * Theta_0, the eigenvectors of the last measurement and the gradient buffers. */
  term(e, "NTK", B);
  term(e, "eigenvectors", tb.vectors);
  term(e, "training: Theta_0", tb.theta0);
  term(e, "training: gradient buffers", tb.grads);
  term(e, "measurement schedule", tb.schedule);
  double kept = solve.kept > (training ? diff.kept : 0.0) ? solve.kept : (training ? diff.kept : 0.0);
  const int64_t blacs = ntk_size_from_double(kept * (double)B);
  term(e, "BLACS buffer kept after PDSYEVR", blacs);
  const int64_t test_ref = ntk_train_test_memory(cfg, g, N, n_test, k);
  term(e, "training: test-loss prediction reference", test_ref);
  const int64_t persistent = ntk_size_add(
      ntk_size_add(ntk_size_add(ntk_size_add(data, mb.params), ntk_size_add(B, tb.vectors)),
                   ntk_size_add(ntk_size_add(tb.theta0, tb.grads), ntk_size_add(tb.schedule, blacs))),
      test_ref);

  /* NTK assembly: the forward states live throughout; the backward signals and the Gram
   * panels while the groups are visited; the symmetrization's transpose at the end, while
   * the Gram scratch is still held */
  term(e, "forward gathered panels", mb.forward_panels);
  term(e, "Fourier features", mb.fourier);
  term(e, "forward states h, z", mb.states);
  term(e, "backward signals", mb.signals);
  if (nb.scratch > 0) term(e, "Gram scratch", nb.scratch);
  term(e, cfg->ntk.method == NTK_METHOD_STRUCTURED ? "Gram and backward panels"
                                                   : "Jacobian chunk, backward panels",
       nb.panels);
  term(e, "kernel symmetrization transpose", nb.transpose);
  if (nb.average > 0) term(e, "mask-average accumulator", nb.average);
  const int64_t phase_ntk = ntk_size_add(
      ntk_size_add(ntk_size_add(nb.average, mb.fourier), ntk_size_add(mb.states, nb.scratch)),
      ntk_size_max(ntk_size_max(ntk_size_add(mb.signals, nb.panels), nb.transpose), mb.forward_panels));

  /* The eigensolve of a measurement: the previous vectors are freed first, the new ones
   * (the "eigenvectors" term) are made at its end. */
  term(e, "eigensolver matrix copy", B);
  term(e, "eigensolver all vectors (N x N)", ntk_size_from_double(solve.zfull * (double)B));
  term(e, "eigensolver workspace",
       ntk_size_from_double((solve.work_inside > solve.work_after ? solve.work_inside : solve.work_after) * (double)B));
  term(e, "eigenvector reordering buffers", vectors && solve.reorders ? ntk_size_mul(2, tb.vectors) : 0);
  int64_t phase_eig = ntk_eig_solve_bytes(&solve, vectors, B, tb.vectors);
  const int64_t drift = training ? ntk_size_add(B, ntk_eig_solve_bytes(&diff, 0, B, 0)) : 0;
  if (drift > 0) term(e, "training: Theta_t - Theta_0 eigensolve", drift);
  phase_eig = ntk_size_max(phase_eig, drift);
  /* a training step: forward states, backward signals and Fourier features again */
  const int64_t phase_train = training ? train_step_bytes(&mb) : 0;
  const int64_t phase_cross = cross_kernel_bytes(cfg, g, N, n_test, d, k, &mb, test_ref, e);
  /* writing the kernel or the vectors stages a local block */
  const int64_t stage = ntk_output_stage_bytes(
      ntk_size_max(cfg->output.save_ntk ? B : 0, cfg->output.save_eigenvectors ? tb.vectors : 0));
  if (stage > 0) term(e, "output write staging", stage);

  const char *const names[NTK_MEM_PHASES] = {"NTK assembly", "eigensolve", "training step",
                                              "output", "cross kernel"};
  const int64_t phases[NTK_MEM_PHASES] = {phase_ntk, phase_eig, phase_train, stage, phase_cross};
  estimate_peak(e, persistent, names, phases);
}

void ntk_memory_print(const ntk_mem_estimate *e) {
  ntk_log_raw("estimated memory per rank (largest rank):\n");
  ntk_log_raw("  %-38s %10.1f MiB\n", "runtime baseline", e->baseline / MIB);
  ntk_log_raw("  %-38s %10.1f MiB\n", "runtime growth (HDF5, MPI, BLAS)", e->runtime / MIB);
  for (int i = 0; i < e->nterms; ++i)
    if (e->terms[i].bytes > 0)
      ntk_log_raw("  %-38s %10.1f MiB\n", e->terms[i].name, e->terms[i].bytes / MIB);
  char label[64];
  snprintf(label, sizeof label, "phase peak: %s", e->phase_ntk_name);
  ntk_log_raw("  %-38s %10.1f MiB\n", label, (e->persistent + e->phase_ntk) / MIB);
  snprintf(label, sizeof label, "phase peak: %s", e->phase_eig_name);
  ntk_log_raw("  %-38s %10.1f MiB\n", label, (e->persistent + e->phase_eig) / MIB);
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
  int big = largest_term(e);
  /* a term that saturated (ntk_size.h) is beyond any machine, whatever the limit says */
  if (big >= 0 && e->terms[big].bytes >= (double)NTK_SIZE_MAX)
    return ntk_err_set(NTK_ERR_INPUT,
                       "memory: %s alone needs more than 2^63 bytes per rank on %d ranks: the "
                       "configuration is too large for any machine (see ntkspec run --dry-run)",
                       e->terms[big].name, g->size);
  if (limit <= 0 || e->peak <= limit) return NTK_OK;
  int fit = ntk_memory_ranks_that_fit(cfg, g, N, n_test, d, k, e->baseline, limit);
  char ranks[160];
  if (fit > 0)
    snprintf(ranks, sizeof ranks, "%d ranks would fit (at this memory per rank)", fit);
  else
    snprintf(ranks, sizeof ranks, "no rank count up to 2^20 fits (the terms that do not shrink "
                                  "with more ranks exceed it)");
  /* the dense kernel is the usual reason: the method that never forms it is the way out */
  char mf[200] = "";
  if (cfg->ntk.method != NTK_METHOD_MATRIX_FREE) {
    ntk_config c = *cfg;
    c.ntk.method = NTK_METHOD_MATRIX_FREE;
    if (c.ntk.top_k < 1) c.ntk.top_k = N < 16 ? N : 16;
    c.output.save_ntk = 0;
    ntk_mem_estimate m;
    ntk_memory_estimate(&c, g, N, n_test, d, k, e->baseline, &m);
    snprintf(mf, sizeof mf, "; or ntk.method: matrix_free (the top %d eigenpairs without the N x N "
             "kernel: %.1f MiB per rank%s)", c.ntk.top_k, m.peak / MIB,
             m.peak <= limit ? ", fits" : "");
  }
  return ntk_err_set(NTK_ERR_INPUT,
                     "memory: the estimated peak is %.1f MiB per rank, over the limit of %.1f MiB "
                     "per rank (%s); the largest term, %s, needs %.1f MiB per rank on %d ranks; "
                     "%s%s; or set memory.limit_mb (see ntkspec run --dry-run)",
                     e->peak / MIB, limit / MIB, source, big >= 0 ? e->terms[big].name : "?",
                     big >= 0 ? e->terms[big].bytes / MIB : 0.0, g->size, ranks, mf);
}

/* The keys that scale the work rather than the memory: measurements (each a kernel and
 * its eigensolve), the masks averaged per kernel, the training steps.  Saturating counts:
 * the dry run of an extreme configuration says how extreme. */
static void print_work(const ntk_config *cfg) {
  int64_t measurements = 1;
  if (ntk_train_schedule_count(cfg, &measurements)) ntk_err_clear();
  const int64_t masks = cfg->ntk.network == NTK_NETWORK_MASK_AVERAGE ? cfg->ntk.mask_samples : 1;
  ntk_log_raw("# work: %lld measurement(s) x %lld kernel assembl%s each = %lld assemblies, "
              "%lld eigensolves; %d training step(s)\n",
              (long long)measurements, (long long)masks, masks == 1 ? "y" : "ies",
              (long long)ntk_size_mul(measurements, masks), (long long)measurements,
              cfg->train.steps);
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
    print_work(cfg);
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
   * block of 512 KiB or more back to the system when freed (docs/HARDENING.md).
   * SuperLU_DIST, which PETSc (so SLEPc, ntk_eigs) links in, turns mmap off and trimming
   * off when it is loaded (mallopt M_MMAP_MAX 0, M_TRIM_THRESHOLD -1): every block then
   * stays in the heap once touched, and a matrix-free run's resident set sat 12-18 %
   * above what was allocated.  glibc's defaults are put back: up to 65536 mappings, trim
   * above 128 KiB of free heap top. */
  mallopt(M_MMAP_MAX, 65536);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
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
