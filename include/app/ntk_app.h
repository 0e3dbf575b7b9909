/* ntk_app: the commands of the ntkspec program (run, ...), each a function that takes
 * the command's arguments and returns the process exit status: 0 success, 2 bad input
 * (usage, config, data), 1 any other failure.  main.c only dispatches. */
#ifndef NTK_APP_H
#define NTK_APP_H

int ntk_app_run(int argc, char **argv);      /* ntk_app.c */
int ntk_app_analytic(int argc, char **argv); /* ntk_app_analytic.c: infinite-width kernel alone */
int ntk_app_sweep(int argc, char **argv);    /* ntk_app_sweep.c: width study */
int ntk_app_info(int argc, char **argv);     /* ntk_app_info.c: summary of a result file */

#endif

/* Shared by the commands that take a configuration (ntk_app_common.c). */
#include "ntk_config.h"
#include "ntk_grid.h"
#include "ntk_output.h"

/* An option of a command: "--name" (flag) or "--name VALUE" / "--name=VALUE". */
typedef struct {
  const char *name;
  int takes_value;
  int *flag;          /* set to 1 when present (flags) */
  const char **value; /* the value (options with a value) */
} ntk_app_option;

/* Parse "CONFIG [--set k=v ...] [-q|-v] [command options]" into cfg (defaults, the file,
 * the overrides in order, validated).  cmdline receives the command as typed. Not
 * collective; every rank gets the same outcome. */
int ntk_app_parse_config(const char *command, int argc, char **argv, const ntk_app_option *opts,
                         int nopts, ntk_config *cfg, char *cmdline, size_t cmdline_len);
/* "2026-11-28T12:00:00Z" */
void ntk_app_utc_now(char *buf, size_t len);
/* Collective: a rank whose error no other rank knows (it may have failed while the others
 * wait in a collective) prints it and aborts the job; otherwise all ranks agree on err. */
int ntk_app_agree(int err);
/* Collective epilogue of a command: agree on err (a rank that failed alone aborts the
 * job), close `out` if open (status "complete" or "failed"), print the error once, and
 * return the exit status. */
int ntk_app_finish(int err, ntk_output *out);

/* Collective: the provenance attributes of MODEL.md on the root group (config text,
 * command line, MPI size, process grid, block size, eigensolver, seed, library versions,
 * SLURM job id, UTC start). */
int ntk_app_write_provenance(ntk_output *out, const ntk_config *cfg, const ntk_grid *g,
                             const char *cmdline, const char *start_utc);
/* Collective (ntk_app_analytic.c): the infinite-width NNGP and NTK of the configuration on
 * X, eigendecomposed (all or ntk.top_k) and written to /analytic/{nngp, ntk, eigenvalues}.
 * theta_inf (may be NULL) receives the kernel (caller frees), w_inf (may be NULL, length
 * N) its eigenvalues. */
int ntk_app_write_analytic(const ntk_config *cfg, const ntk_grid *g, const ntk_dmat *X,
                           ntk_output *out, ntk_dmat *theta_inf, double *w_inf);
