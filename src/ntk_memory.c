#include "ntk_memory.h"

#include "ntk_log.h"
#include "ntk_scalapack.h"

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

void ntk_memory_estimate(const ntk_config *cfg, const ntk_grid *g, int N, int n_test, int d, int k,
                         double baseline, ntk_mem_estimate *e) {
  *e = (ntk_mem_estimate){0};
  const int m = cfg->fourier.features, p = m > 0 ? 2 * m : d;
  const int n = cfg->fourier.project ? cfg->model.width : p, L = cfg->model.depth;
  const int K = cfg->ntk.top_k > 0 ? cfg->ntk.top_k : N;
  e->baseline = baseline;

  double data = dm(g, N, d) + dm(g, N, k) + dm(g, n_test, d) + dm(g, n_test, k);
  double params = (m > 0 ? dm(g, m, d) : 0) + (cfg->fourier.project ? dm(g, n, p) : 0) +
                  L * dm(g, n, n) + dm(g, k, n) + 8.0 * ((L + 1.0) * n + k) +
                  /* transpose workspaces of one block weight and of W0 */
                  (L > 0 ? dm(g, n, n) : 0) + (cfg->fourier.project ? dm(g, p, n) : 0);
  term(e, "data (x, y, train and test)", data);
  term(e, "parameters", params);
  e->persistent = data + params;

  double fourier = m > 0 ? 2 * dm(g, N, 2 * m) : 0.0;
  double states = (2.0 * L + 1.0) * dm(g, N, n) + dm(g, N, k);
  double signals = 2.0 * dm(g, N, n) + dm(g, N, k);
  if (m > 0 && cfg->fourier.trainable) signals += dm(g, N, p) + dm(g, N, m);
  double kernel = dm(g, N, N);
  double scratch;
  if (cfg->ntk.method == NTK_METHOD_STRUCTURED) {
    scratch = (1.0 + (k > 1 ? L + 3.0 : 1.0)) * dm(g, N, N);
    /* Gram panels: rows of A for my C rows and columns, sent and received (ntk_dmat_gram_lower) */
    int zero = 0;
    double rows = numroc_(&N, &g->nb, &zero, &zero, &g->nprow) + numroc_(&N, &g->nb, &zero, &zero, &g->npcol);
    double full = 2.0 * rows * (n > p ? n : p) * 8.0, bound = 2.0 * cfg->ntk.chunk_mb * 1048576.0;
    scratch += full < bound ? full : bound;
  } else {
    /* replicated rows of one group's signals and inputs + one Jacobian chunk */
    double rows = (double)N / g->nprow + g->nb;
    scratch = 2.0 * rows * (n > p ? n : p) * 8.0 + cfg->ntk.chunk_mb * 1048576.0 * 1.2;
  }
  double average = cfg->ntk.network == NTK_NETWORK_MASK_AVERAGE ? dm(g, N, N) : 0.0;
  term(e, "Fourier features", fourier);
  term(e, "forward states h, z", states);
  term(e, "backward signals", signals);
  term(e, "NTK", kernel);
  term(e, cfg->ntk.method == NTK_METHOD_STRUCTURED ? "Gram scratch" : "Jacobian chunk", scratch);
  if (average > 0) term(e, "mask-average accumulator", average);
  e->phase_ntk = fourier + states + signals + kernel + scratch + average;

  /* the eigensolver works on a copy; with vectors ScaLAPACK's workspace is about one more
   * local N x N block, without them a few vectors of length N */
  int vectors = cfg->output.save_eigenvectors;
  double copy = dm(g, N, N), z = vectors ? dm(g, N, N) + dm(g, N, K) : 0.0;
  double work = vectors ? dm(g, N, N) : 16.0 * N * 8.0;
  term(e, "eigensolver matrix copy", copy);
  term(e, "eigenvectors", z);
  term(e, "eigensolver workspace", work);
  e->phase_eig = kernel + copy + z + work;
  double phase = e->phase_ntk > e->phase_eig ? e->phase_ntk : e->phase_eig;
  e->peak = e->baseline + e->persistent + phase;
}

void ntk_memory_print(const ntk_mem_estimate *e) {
  ntk_log_raw("estimated memory per rank (largest rank):\n");
  ntk_log_raw("  %-30s %10.1f MiB\n", "runtime baseline", e->baseline / 1048576.0);
  for (int i = 0; i < e->nterms; ++i)
    if (e->terms[i].bytes > 0)
      ntk_log_raw("  %-30s %10.1f MiB\n", e->terms[i].name, e->terms[i].bytes / 1048576.0);
  ntk_log_raw("  %-30s %10.1f MiB\n", "phase peak: NTK assembly", (e->persistent + e->phase_ntk) / 1048576.0);
  ntk_log_raw("  %-30s %10.1f MiB\n", "phase peak: eigensolve", (e->persistent + e->phase_eig) / 1048576.0);
  ntk_log_raw("  %-30s %10.1f MiB\n", "estimated peak", e->peak / 1048576.0);
}
