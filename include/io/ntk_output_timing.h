/* ntk_output_timing: the /timing group of a result file from the per-phase timers reduced
 * over the ranks (ntk_timer_reduce).  Apart from the output module so that the writers do
 * not depend on the timers. */
#ifndef NTK_OUTPUT_TIMING_H
#define NTK_OUTPUT_TIMING_H
#include "ntk_output.h"
#include "ntk_timer.h"

/* Collective: /timing with per-phase phase names, min/avg/max seconds, flops and calls. */
int ntk_output_write_timing(ntk_output *o, const ntk_timer_stat *stats, int nstats);

#endif
