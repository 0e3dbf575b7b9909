/* ntk_output_estimate: the size of a run's result file from its configuration, counted
 * over the datasets of ntk_schema (docs/OUTPUT.md); compared with the free space by
 * ntk_output_precheck before anything is computed.  Apart from the output module because
 * it reads the configuration, which the file writers need not know. */
#ifndef NTK_OUTPUT_ESTIMATE_H
#define NTK_OUTPUT_ESTIMATE_H
#include "ntk_config.h"

/* Bytes the result file of `ntkspec run` takes on disk: an upper estimate from the
 * configuration and the shapes (N samples, n_test, d inputs, k outputs, T measurements of
 * the schedule), chunk padding and a fixed allowance for HDF5 metadata included. */
double ntk_output_estimate_bytes(const ntk_config *cfg, int N, int n_test, int d, int k,
                                 long long T);

#endif
