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
#include "ntk_data.h"
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
/* Collective: the data's shape {N, n_test, d, k}, read by rank 0 for every rank. */
int ntk_app_data_shape(const ntk_config *cfg, int shape[4]);
/* "2026-11-28T12:00:00Z" */
void ntk_app_utc_now(char *buf, size_t len);
/* An option's value as an integer in 1 .. max, or NTK_ERR_INPUT "WHAT: expected a positive
 * integer, got 'TEXT'" (not collective; every rank parses the same text). */
int ntk_app_parse_positive(const char *what, const char *text, long long max, long long *v);
/* Collective: a rank whose error no other rank knows (it may have failed while the others
 * wait in a collective) prints it and aborts the job; otherwise all ranks agree on err. */
int ntk_app_agree(int err);

/* For steps whose outcome is identical on every rank (they depend only on the
 * configuration and the data's shape): agreeing on the error lets all ranks stop together
 * with one message, where an unagreed one would abort the job as one rank's failure. */
#define NTK_CHECK_ALL(call) NTK_CHECK(ntk_err_sync(MPI_COMM_WORLD, (call)))

/* One command's life, the same for run, analytic and sweep (ntk_app_common.c):
 * ntk_app_main parses CONFIG and the options (every rank alike, agreed), starts the log,
 * runs the command's body, which sets up what it needs with the ntk_app_ctx_* steps
 * (grid, data, output), then agrees on the outcome (a rank that failed alone aborts the
 * job), writes end_utc and closes the output ("failed" on an error), prints the error
 * once or the command's report, frees everything and returns the exit status. */
typedef struct ntk_app_ctx ntk_app_ctx;

typedef struct {
  const char *name;           /* "run", "analytic", "sweep": messages and the command line */
  const ntk_app_option *opts; /* its options beside CONFIG, --set, -q and -v */
  int nopts;
  void (*begin)(ntk_app_ctx *ctx);        /* NULL, or before the arguments are read */
  int (*check_args)(ntk_app_ctx *ctx);    /* NULL, or option checks agreed with the parse */
  int (*body)(ntk_app_ctx *ctx);          /* the command's work */
  int (*before_close)(ntk_app_ctx *ctx);  /* NULL, or more output after a success */
  void (*report)(ntk_app_ctx *ctx);       /* NULL, or rank 0's printout after a success */
  void (*free_state)(ntk_app_ctx *ctx);   /* NULL, or frees the command's own state */
} ntk_app_command;

struct ntk_app_ctx {
  const ntk_app_command *cmd;
  void *state; /* the command's own */
  ntk_config cfg;
  char cmdline[4096];
  char start_utc[32];
  ntk_grid g;
  ntk_data data;
  ntk_output out; /* file < 0 until opened */
  int have_grid, have_data;
  const char *status; /* root status the output closes with after a success ("complete") */
  int exit_status;    /* exit status of a success (0) */
};

/* Collective: the whole life of a command; returns the process exit status. */
int ntk_app_main(const ntk_app_command *cmd, void *state, int argc, char **argv);
/* Collective steps a body takes: the BLACS grid of grid.* (agreed; rows of `samples`,
 * columns of `neurons`, what grid.* leaves at 0 chosen by ntk_grid_layout), the data, and
 * the output file created with the provenance attributes. */
int ntk_app_ctx_grid(ntk_app_ctx *ctx, int samples, int neurons);
int ntk_app_ctx_data(ntk_app_ctx *ctx);
int ntk_app_ctx_open_output(ntk_app_ctx *ctx);

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
/* Collective: the infinite-width cross kernel Theta_inf(Xl, X) (created here) of the same
 * network as ntk_app_write_analytic's, for the test-loss prediction. */
int ntk_app_analytic_cross(const ntk_config *cfg, const ntk_grid *g, const ntk_dmat *Xl,
                           const ntk_dmat *X, ntk_dmat *cross);
