#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hdf5.h>

#include "ntk_app.h"
#include "ntk_data.h"
#include "ntk_error.h"
#include "ntk_log.h"
#include "ntk_signal.h"
#include "ntk_timer.h"

static const ntk_app_option *find_option(const ntk_app_option *opts, int nopts, const char *arg,
                                         const char **inline_value) {
  *inline_value = NULL;
  for (int i = 0; i < nopts; ++i) {
    size_t len = strlen(opts[i].name);
    if (!strncmp(arg, opts[i].name, len)) {
      if (arg[len] == '\0') return &opts[i];
      if (arg[len] == '=' && opts[i].takes_value) {
        *inline_value = arg + len + 1;
        return &opts[i];
      }
    }
  }
  return NULL;
}

int ntk_app_parse_config(const char *command, int argc, char **argv, const ntk_app_option *opts,
                         int nopts, ntk_config *cfg, char *cmdline, size_t cmdline_len) {
  const char *path = NULL;
  int verbosity = -1;
  snprintf(cmdline, cmdline_len, "ntkspec %s", command);
  for (int i = 0; i < argc; ++i) {
    size_t len = strlen(cmdline);
    snprintf(cmdline + len, cmdline_len - len, " %s", argv[i]);
  }
  ntk_config_defaults(cfg);
  /* the config file first, so that --set applies on top of it in order */
  for (int i = 0; i < argc; ++i) {
    const char *inl;
    const ntk_app_option *o;
    if (!strcmp(argv[i], "--set")) {
      ++i;
    } else if (!strncmp(argv[i], "--set=", 6)) {
    } else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
      verbosity = 0;
    } else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
      verbosity = 2;
    } else if ((o = find_option(opts, nopts, argv[i], &inl))) {
      if (!o->takes_value) {
        *o->flag = 1;
      } else if (inl) {
        *o->value = inl;
      } else if (i + 1 < argc) {
        *o->value = argv[++i];
      } else {
        return ntk_err_set(NTK_ERR_INPUT, "%s: %s needs a value", command, o->name);
      }
    } else if (argv[i][0] == '-') {
      return ntk_err_set(NTK_ERR_INPUT, "%s: unknown option '%s' (try ntkspec --help)", command, argv[i]);
    } else if (path) {
      return ntk_err_set(NTK_ERR_INPUT, "%s: more than one config file ('%s' and '%s')", command,
                         path, argv[i]);
    } else {
      path = argv[i];
    }
  }
  if (!path)
    return ntk_err_set(NTK_ERR_INPUT, "%s: missing CONFIG (usage: ntkspec %s CONFIG.yaml)", command, command);
  NTK_CHECK(ntk_config_load(path, cfg));
  for (int i = 0; i < argc; ++i) {
    const char *assign = NULL;
    if (!strcmp(argv[i], "--set")) {
      if (i + 1 >= argc) return ntk_err_set(NTK_ERR_INPUT, "--set: missing key=value");
      assign = argv[++i];
    } else if (!strncmp(argv[i], "--set=", 6)) {
      assign = argv[i] + 6;
    } else {
      const char *inl;
      const ntk_app_option *o = find_option(opts, nopts, argv[i], &inl);
      if (o && o->takes_value && !inl) ++i; /* skip the option's value */
    }
    if (assign) NTK_CHECK(ntk_config_set(cfg, assign));
  }
  if (verbosity >= 0) cfg->verbosity = verbosity;
  NTK_CHECK(ntk_config_validate(cfg));
  return NTK_OK;
}

int ntk_app_data_shape(const ntk_config *cfg, int shape[4]) {
  /* rank 0 reads the data's shape for everybody: one metadata read (and one checker
   * process, ntk_h5check) per job, not one per rank */
  int rank, rc = NTK_OK;
  shape[0] = shape[1] = shape[2] = shape[3] = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) rc = ntk_data_shape(cfg, &shape[0], &shape[1], &shape[2], &shape[3]);
  NTK_CHECK(ntk_err_share0(MPI_COMM_WORLD, rc));
  MPI_Bcast(shape, 4, MPI_INT, 0, MPI_COMM_WORLD);
  return NTK_OK;
}

int ntk_app_parse_positive(const char *what, const char *text, long long max, long long *v) {
  char *end;
  errno = 0;
  const long long x = strtoll(text, &end, 10);
  if (end == text || *end || errno || x < 1 || x > max)
    return ntk_err_set(NTK_ERR_INPUT, "%s: expected a positive integer, got '%s'", what, text);
  *v = x;
  return NTK_OK;
}

void ntk_app_utc_now(char *buf, size_t len) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int ntk_app_agree(int err) {
  if (err && !ntk_err_is_synced()) {
    ntk_log_stderr_line("ntkspec: error [rank %d]: %s", ntk_log_rank(), ntk_err_message());
    if (getenv("NTK_DEBUG")) ntk_err_print_trace();
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, ntk_err_exit_status(err));
  }
  return ntk_err_sync(MPI_COMM_WORLD, err);
}

int ntk_app_ctx_grid(ntk_app_ctx *ctx, int samples, int neurons) {
  const ntk_config *cfg = &ctx->cfg;
  /* the same inputs on every rank: the same layout, or the same refusal */
  NTK_CHECK(ntk_err_sync(MPI_COMM_WORLD, ntk_grid_create_for(MPI_COMM_WORLD, cfg->grid.rows, cfg->grid.cols,
                                                             cfg->grid.block_size, samples, neurons, &ctx->g)));
  ctx->have_grid = 1;
  return NTK_OK;
}

int ntk_app_ctx_data(ntk_app_ctx *ctx) {
  /* one run per output path, before anything is loaded or written (docs/OUTPUT.md
   * "Output lock"); released by ntk_app_main once the output is closed */
  NTK_CHECK(ntk_output_lock(MPI_COMM_WORLD, ctx->cfg.output.path));
  NTK_CHECK(ntk_data_load(&ctx->cfg, &ctx->g, &ctx->data));
  ctx->have_data = 1;
  NTK_CHECK(ntk_signal_check(MPI_COMM_WORLD, "the setup"));
  return NTK_OK;
}

int ntk_app_ctx_open_output(ntk_app_ctx *ctx) {
  const ntk_config *cfg = &ctx->cfg;
  NTK_CHECK(ntk_output_open(&ctx->out, &ctx->g, cfg->output.path, cfg->output.overwrite));
  NTK_CHECK(ntk_app_write_provenance(&ctx->out, cfg, &ctx->g, ctx->cmdline, ctx->start_utc));
  /* only now PATH.partial: a run killed from here on leaves a file --resume can check */
  NTK_CHECK(ntk_output_publish(&ctx->out));
  return NTK_OK;
}

/* The end of a command: the last attributes and the close, agreed on every rank. */
static int close_output(ntk_app_ctx *ctx, int err) {
  if (ctx->out.file < 0) return err;
  if (!err) {
    char end[32];
    if (ctx->cmd->before_close) err = ctx->cmd->before_close(ctx);
    ntk_app_utc_now(end, sizeof end);
    if (!err) err = ntk_output_attr_string(&ctx->out, "/", "end_utc", end);
    err = ntk_err_sync(MPI_COMM_WORLD, err);
  }
  /* a signal before anything worth keeping (NTK_ERR_INTERRUPTED) leaves no file at all */
  int cerr = err == NTK_ERR_INTERRUPTED ? ntk_output_discard(&ctx->out)
                                        : ntk_output_close(&ctx->out, err ? NTK_STATUS_FAILED : ctx->status);
  if (!err) err = ntk_err_sync(MPI_COMM_WORLD, cerr);
  return err;
}

/* The parse, then the command's own option checks: one outcome for every rank. */
static int parse_args(ntk_app_ctx *ctx, int argc, char **argv) {
  const ntk_app_command *c = ctx->cmd;
  NTK_CHECK(ntk_app_parse_config(c->name, argc, argv, c->opts, c->nopts, &ctx->cfg, ctx->cmdline,
                                 sizeof ctx->cmdline));
  if (c->check_args) NTK_CHECK(c->check_args(ctx));
  return NTK_OK;
}

int ntk_app_main(const ntk_app_command *cmd, void *state, int argc, char **argv) {
  static ntk_app_ctx ctx; /* static: the configuration alone is several kilobytes */
  memset(&ctx, 0, sizeof ctx);
  ctx.cmd = cmd;
  ctx.state = state;
  ctx.out.file = -1;
  ctx.status = NTK_STATUS_COMPLETE;
  ntk_timer_reset();
  if (cmd->begin) cmd->begin(&ctx);
  ntk_config_defaults(&ctx.cfg);
  /* every rank reads the same file and arguments: the outcome is the same everywhere */
  int err = ntk_err_sync(MPI_COMM_WORLD, parse_args(&ctx, argc, argv));
  ntk_log_init(MPI_COMM_WORLD, err ? 1 : ctx.cfg.verbosity);
  if (!err) {
    ntk_app_utc_now(ctx.start_utc, sizeof ctx.start_utc);
    err = cmd->body(&ctx);
  }
  err = close_output(&ctx, ntk_app_agree(err));
  /* PATH is in place (or the run failed): a run that starts now sees the finished file */
  ntk_output_unlock(MPI_COMM_WORLD, ctx.cfg.output.path);
  if (err) {
    ntk_log_error_line(ntk_err_message());
    if (getenv("NTK_DEBUG")) ntk_err_print_trace();
  } else if (cmd->report) {
    cmd->report(&ctx);
  }
  int status = err ? ntk_err_exit_status(err) : ctx.exit_status;
  if (cmd->free_state) cmd->free_state(&ctx);
  if (ctx.have_data) ntk_data_free(&ctx.data);
  if (ctx.have_grid) ntk_grid_free(&ctx.g);
  return status;
}

char *openblas_get_config(void);

int ntk_app_write_provenance(ntk_output *out, const ntk_config *cfg, const ntk_grid *g,
                             const char *cmdline, const char *start) {
  char *yaml = ntk_config_to_yaml(cfg);
  if (!yaml) return ntk_err_set(NTK_ERR_MEMORY, "out of memory printing the configuration");
  int err = ntk_output_attr_string(out, "/", NTK_ATTR_CONFIG, yaml);
  free(yaml);
  NTK_CHECK(err);
  char buf[512];
  NTK_CHECK(ntk_output_attr_string(out, "/", "command_line", cmdline));
  NTK_CHECK(ntk_output_attr_int(out, "/", "mpi_size", g->size));
  snprintf(buf, sizeof buf, "%dx%d", g->nprow, g->npcol);
  NTK_CHECK(ntk_output_attr_string(out, "/", "process_grid", buf));
  NTK_CHECK(ntk_output_attr_int(out, "/", "block_size", g->nb));
  NTK_CHECK(ntk_output_attr_string(out, "/", "eigensolver", cfg->eigensolver.type));
  NTK_CHECK(ntk_output_attr_string(out, "/", "ntk_method", ntk_config_enum_name("ntk.method", cfg->ntk.method)));
  NTK_CHECK(ntk_output_attr_int(out, "/", "seed", (long long)cfg->seed));
  char mpiv[MPI_MAX_LIBRARY_VERSION_STRING];
  int len;
  MPI_Get_library_version(mpiv, &len);
  mpiv[strcspn(mpiv, ",\n")] = '\0';
  unsigned maj, min, rel;
  H5get_libversion(&maj, &min, &rel);
  snprintf(buf, sizeof buf, "ntkspec %s; %s; HDF5 %u.%u.%u; %s; ScaLAPACK (Debian scalapack-openmpi)",
           NTK_VERSION, mpiv, maj, min, rel, openblas_get_config());
  NTK_CHECK(ntk_output_attr_string(out, "/", "library_versions", buf));
  const char *job = getenv("SLURM_JOB_ID"), *nodes = getenv("SLURM_JOB_NUM_NODES");
  NTK_CHECK(ntk_output_attr_string(out, "/", "slurm_job_id", job ? job : ""));
  /* the scaling report counts nodes from here (0 = not under SLURM) */
  NTK_CHECK(ntk_output_attr_int(out, "/", "slurm_nodes", nodes ? atol(nodes) : 0));
  NTK_CHECK(ntk_output_attr_string(out, "/", "start_utc", start));
  return NTK_OK;
}
