/* ntk_output_timing: the /timing group from the reduced per-phase timers. */
#include "ntk_output_timing.h"
#include "ntk_output_impl.h"

#include <stdlib.h>

#include "ntk_error.h"

int ntk_output_write_timing(ntk_output *o, const ntk_timer_stat *stats, int nstats) {
  if (!ntk_out_is_open(o)) return ntk_out_not_open("/timing");
  int n = nstats > 0 ? nstats : 0;
  const char **names = ntk_calloc((size_t)(n > 0 ? n : 1), sizeof *names, "timing names");
  double *v = ntk_calloc((size_t)(n > 0 ? n : 1) * 4, sizeof *v, "timing values");
  long long *calls = ntk_calloc((size_t)(n > 0 ? n : 1), sizeof *calls, "timing calls");
  int rc = ntk_err_sync(o->g->comm, names && v && calls ? NTK_OK : NTK_ERR_MEMORY);
  if (rc == NTK_OK) {
    for (int i = 0; i < n; ++i) {
      names[i] = stats[i].name ? stats[i].name : "";
      v[i] = stats[i].min;
      v[n + i] = stats[i].avg;
      v[2 * n + i] = stats[i].max;
      v[3 * n + i] = stats[i].flops;
      calls[i] = stats[i].calls;
    }
    long long dn = n;
    static const char *const cols[4] = {"/timing/min", "/timing/avg", "/timing/max",
                                        "/timing/flops"};
    rc = ntk_output_write_strings(o, "/timing/phase", n, names);
    for (int k = 0; k < 4 && rc == NTK_OK; ++k)
      rc = ntk_output_write_array(o, cols[k], 1, &dn, v + (size_t)k * n);
    if (rc == NTK_OK) rc = ntk_output_write_int_array(o, "/timing/calls", dn, calls);
  }
  free(names);
  free(v);
  free(calls);
  NTK_CHECK(rc);
  return NTK_OK;
}
