/* ntk_output_estimate: the size of a run's result file from its configuration, before
 * anything is computed (ntk_output_precheck compares it with the free space). */
#include "ntk_output_estimate.h"
#include "ntk_output_impl.h"

#include <math.h>

#include "ntk_error.h"
#include "ntk_schema.h"

/* Bytes of an appended dataset of T rows of `len` values, in whole chunks as append_small
 * makes them (rows of about 8 KiB; parallel HDF5 allocates a chunk at once). */
static double appended_bytes(long long T, int len) {
  double row = 8.0 * (len > 0 ? len : 1);
  double rows = len > 0 ? (len < 8192 ? 8192 / len : 1) : 1024;
  return ceil((double)T / rows) * rows * row;
}

/* Generous rather than exact, on purpose: a run refused for a few MiB it would not have
 * needed costs a retry; one that fills the disk after hours of compute costs the hours.
 * Every dataset MODEL.md's output holds for this configuration, rounded up to whole
 * chunks, plus a fixed 1 MiB and 16 KiB per dataset for HDF5 metadata (superblock,
 * object headers, chunk indexes, the config text and the other attributes, /timing),
 * which is several times what the files of the test configurations use. */
double ntk_output_estimate_bytes(const ntk_config *cfg, int N, int n_test, int d, int k,
                                 long long T) {
  const int K = cfg->ntk.top_k > 0 ? cfg->ntk.top_k : N;
  const int m = cfg->fourier.features, p = ntk_config_input_dim(cfg, d);
  const int n = ntk_config_width(cfg, d), L = cfg->model.depth;
  const int training = cfg->train.steps > 0;
  const int vectors = training || cfg->output.save_eigenvectors;
  double values = 0.0, chunked = 0.0;
  int ndsets = 0;
  if (cfg->output.save_data) {
    values += ((double)N + n_test) * (d + k);
    ndsets += 4;
  }
  if (cfg->output.save_params) {
    /* step 0, and the last step of a training run */
    double one = (double)m * d + (cfg->fourier.project ? (double)n * p + n : 0.0) +
                 (double)L * n * n + (double)L * n + (double)k * n + k;
    values += one * (training ? 2 : 1);
    ndsets += 7 * (training ? 2 : 1);
  }
  if (cfg->analytic.enabled) {
    values += 2.0 * N * N + K;
    ndsets += 3;
  }
  /* /trajectory: the scalar series (at most 20, counted 24), the eigenvalues, the residual
   * energies and the per-group traces */
  chunked += 24 * appended_bytes(T, 0) + appended_bytes(T, K) * (vectors ? 2 : 1) +
             appended_bytes(T, L + 3);
  ndsets += 28;
  /* per-measurement matrices: one chunk (and its index entry) per row and tile */
  if (cfg->output.save_ntk) {
    chunked += (double)T * (8.0 * ntk_out_padded(N) * ntk_out_padded(N) + 256.0);
    ndsets += 1;
  }
  if (cfg->output.save_eigenvectors) {
    chunked += (double)T * (8.0 * ntk_out_padded(N) * ntk_out_padded(K) + 256.0);
    ndsets += 1;
  }
  return 8.0 * values + chunked + NTK_MIB + 16384.0 * ndsets;
}
