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

/* Whether a run of `cfg` may write a series written `when`; the accuracies are counted
 * whatever the data (an upper estimate needs no data source's details). */
static int series_written(const ntk_config *cfg, ntk_series_when when) {
  const int training = cfg->train.steps > 0;
  switch (when) {
    case NTK_WHEN_ALWAYS:
    case NTK_WHEN_CLASSIFICATION: return 1;
    case NTK_WHEN_VECTORS: return ntk_config_wants_eigenvectors(cfg);
    case NTK_WHEN_TRAINING: return training;
    case NTK_WHEN_TRAINING_ANALYTIC: return training && cfg->analytic.enabled;
    case NTK_WHEN_SAVE_NTK: return cfg->output.save_ntk;
    case NTK_WHEN_SAVE_EIGENVECTORS: return cfg->output.save_eigenvectors;
    case NTK_WHEN_MATRIX_FREE: return cfg->ntk.method == NTK_METHOD_MATRIX_FREE;
  }
  return 1;
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
  /* /trajectory: every series of the schema this configuration may write, each in whole
   * chunks */
  for (int i = 0; i < NTK_TRAJ_COUNT; ++i) {
    const ntk_series_info *s = &ntk_schema_trajectory[i];
    if (!series_written(cfg, s->when)) continue;
    ++ndsets;
    switch (s->kind) {
      case NTK_SERIES_SCALAR:
      case NTK_SERIES_INT: chunked += appended_bytes(T, 0); break;
      case NTK_SERIES_ROW_K: chunked += appended_bytes(T, K); break;
      case NTK_SERIES_ROW_G: chunked += appended_bytes(T, L + 3); break;
      /* per-measurement matrices: one chunk (and its index entry) per row and tile */
      case NTK_SERIES_NN: chunked += (double)T * (8.0 * ntk_out_padded(N) * ntk_out_padded(N) + 256.0); break;
      case NTK_SERIES_NK: chunked += (double)T * (8.0 * ntk_out_padded(N) * ntk_out_padded(K) + 256.0); break;
    }
  }
  return 8.0 * values + chunked + NTK_MIB + 16384.0 * ndsets;
}
