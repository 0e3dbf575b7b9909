#include "ntk_app.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ntk_analytic.h"
#include "ntk_checkpoint.h"
#include "ntk_config.h"
#include "ntk_data.h"
#include "ntk_eig.h"
#include "ntk_error.h"
#include "ntk_grid.h"
#include "ntk_log.h"
#include "ntk_memory.h"
#include "ntk_metrics.h"
#include "ntk_model.h"
#include "ntk_ntk.h"
#include "ntk_output.h"
#include "ntk_output_estimate.h"
#include "ntk_output_timing.h"
#include "ntk_signal.h"
#include "ntk_timer.h"
#include "ntk_train.h"

/* What `run` keeps beside the command's context (ntk_app_main). */
typedef struct {
  int dry_run, resume; /* the options */
  const char *stop_at_text;
  long long stop_at; /* --stop-at, parsed; 0 = none */
  ntk_model model;
  ntk_trainer tr;
  ntk_train_outcome outcome;
  int have_model, have_trainer;
  ntk_mem_estimate mem;      /* the estimate --dry-run prints; recorded in /memory */
  ntk_mem_measured measured; /* the peaks, recorded beside it */
} run_state;

static int run_check_args(ntk_app_ctx *ctx) {
  run_state *st = ctx->state;
  if (st->resume && ctx->cfg.train.steps == 0)
    return ntk_err_set(NTK_ERR_INPUT, "--resume: only a training run (train.steps > 0) can be resumed");
  if (st->stop_at_text) {
    NTK_CHECK(ntk_app_parse_positive("--stop-at", st->stop_at_text, LLONG_MAX, &st->stop_at));
    if (ctx->cfg.train.steps == 0)
      return ntk_err_set(NTK_ERR_INPUT, "--stop-at: only a training run (train.steps > 0) stops at a step");
  }
  return NTK_OK;
}

/* Shape checks that need no data (the grid's are ntk_grid_layout's). */
static int check_layout(const ntk_config *cfg, int N) {
  int K = cfg->ntk.top_k;
  if (K > N) return ntk_err_set(NTK_ERR_INPUT, "ntk.top_k: %d exceeds the %d training samples", K, N);
  if (!ntk_eig_find(cfg->eigensolver.type))
    return ntk_err_set(NTK_ERR_INPUT, "eigensolver.type: unknown solver '%s'", cfg->eigensolver.type);
  if (cfg->analytic.enabled) NTK_CHECK(ntk_analytic_check(cfg));
  if (cfg->train.optimizer == NTK_OPT_SGD && cfg->train.batch_size > N)
    return ntk_err_set(NTK_ERR_INPUT, "train.batch_size: %d exceeds the %d training samples",
                       cfg->train.batch_size, N);
  if (cfg->train.steps > 0) {
    /* found now rather than when a signal asks for the checkpoint */
    char ck[NTK_PATH_MAX + 16], dir[NTK_PATH_MAX + 16];
    ntk_checkpoint_path(cfg, ck, sizeof ck);
    ntk_path_dirname(ck, dir, sizeof dir);
    if (access(dir, W_OK | X_OK) != 0)
      return ntk_err_set(NTK_ERR_INPUT, "train.checkpoint: folder %s of %s is missing or not writable",
                         dir, ck);
  }
  return NTK_OK;
}

static int write_data_and_params(ntk_output *out, const ntk_config *cfg, const ntk_data *D,
                                 const ntk_model *M) {
  if (cfg->output.save_data) {
    NTK_CHECK(ntk_output_write_dmat(out, "/data/x_train", &D->x_train));
    NTK_CHECK(ntk_output_write_dmat(out, "/data/y_train", &D->y_train));
    if (D->n_test > 0) {
      NTK_CHECK(ntk_output_write_dmat(out, "/data/x_test", &D->x_test));
      NTK_CHECK(ntk_output_write_dmat(out, "/data/y_test", &D->y_test));
    }
  }
  if (cfg->output.save_params) NTK_CHECK(ntk_checkpoint_write_params(out, M, "/params/step_0"));
  return NTK_OK;
}

/* The infinite-width NNGP and NTK (ntk_app_write_analytic writes /analytic); with training,
 * Theta_inf also becomes the second kernel-regime reference, with Theta_inf(X_test, X)
 * for the test loss when there is a test set. */
static int run_analytic(ntk_app_ctx *ctx, run_state *st) {
  const ntk_config *cfg = &ctx->cfg;
  const ntk_data *D = &ctx->data;
  ntk_dmat theta_inf = {0}, cross = {0};
  NTK_CHECK(ntk_app_write_analytic(cfg, &ctx->g, &D->x_train, &ctx->out,
                                   cfg->train.steps > 0 ? &theta_inf : NULL, NULL));
  if (cfg->train.steps == 0) return NTK_OK;
  int err = D->n_test > 0 ? ntk_app_analytic_cross(cfg, &ctx->g, &D->x_test, &D->x_train, &cross)
                          : NTK_OK;
  if (!err) err = ntk_train_set_infinite_reference(&st->tr, &theta_inf, cross.a ? &cross : NULL);
  ntk_dmat_free(&theta_inf);
  ntk_dmat_free(&cross);
  NTK_CHECK(err);
  return NTK_OK;
}

static int run_pipeline(ntk_app_ctx *ctx, run_state *st) {
  const ntk_config *cfg = &ctx->cfg;
  const int training = cfg->train.steps > 0;
  const char *start = ctx->start_utc;
  ntk_timer_start(NTK_PHASE_SETUP);
  int shape[4];
  NTK_CHECK(ntk_app_data_shape(cfg, shape));
  const int N = shape[0], n_test = shape[1], d = shape[2], k = shape[3];
  /* the layout gives every process row samples and every process column neurons */
  NTK_CHECK(ntk_app_ctx_grid(ctx, N, ntk_config_width(cfg, d)));
  ntk_grid *g = &ctx->g;
  NTK_CHECK_ALL(check_layout(cfg, N));
  ntk_timer_stop(NTK_PHASE_SETUP);
  if (st->dry_run) {
    char *yaml = ntk_config_to_yaml(cfg);
    ntk_log_raw("# effective configuration\n%s", yaml ? yaml : "");
    free(yaml);
    ntk_log_raw("# process grid: %d x %d (%d ranks; rows split the %d samples, columns the neurons), block size %d\n",
                g->nprow, g->npcol, g->size, N, g->nb);
    ntk_log_raw("# data: N = %d, n_test = %d, d = %d, k = %d\n", N, n_test, d, k);
  }
  /* before any data or matrix exists: a run that cannot fit stops here */
  NTK_CHECK(ntk_memory_enforce(cfg, g, N, n_test, d, k, st->dry_run, &st->mem));
  {
    /* likewise the output folder: writable and with room for the whole file */
    int64_t T = 1;
    NTK_CHECK_ALL(ntk_train_schedule_count(cfg, &T));
    double bytes = ntk_output_estimate_bytes(cfg, N, n_test, d, k, T);
    NTK_CHECK(ntk_output_precheck(MPI_COMM_WORLD, cfg->output.path, cfg->output.overwrite,
                                  st->resume, cfg->train.steps, bytes, st->dry_run));
  }
  {
    /* the input, the checkpoint and the output: three different files */
    char ck[NTK_PATH_MAX + 16];
    ntk_checkpoint_path(cfg, ck, sizeof ck);
    NTK_CHECK(ntk_output_check_distinct(MPI_COMM_WORLD, cfg->output.path, cfg->data.path,
                                        training ? ck : NULL));
  }
  if (st->dry_run) return NTK_OK;
  NTK_CHECK(ntk_signal_check(MPI_COMM_WORLD, "the setup"));
  ntk_log_info("ntkspec %s: %d ranks, grid %d x %d, block %d", NTK_VERSION, g->size, g->nprow, g->npcol, g->nb);

  ntk_timer_start(NTK_PHASE_DATA);
  NTK_CHECK(ntk_app_ctx_data(ctx));
  ntk_timer_stop(NTK_PHASE_DATA);
  ntk_data *D = &ctx->data;
  ntk_log_info("data: %s (N = %d, test %d, d = %d, k = %d)", D->description, D->n_train, D->n_test, D->d, D->k);

  NTK_CHECK_ALL(ntk_model_init(cfg, g, D->d, D->k, &st->model));
  st->have_model = 1;
  ntk_model *M = &st->model;
  ntk_log_info("model: width %d, depth %d, %s, %lld parameters", M->n, M->L,
               ntk_config_enum_name("model.activation", M->activation), ntk_model_num_params(M));
  NTK_CHECK(ntk_train_init(&st->tr, cfg, g, M, D, &ctx->out));
  st->have_trainer = 1;
  NTK_CHECK(ntk_signal_check(MPI_COMM_WORLD, "the setup"));
  ntk_output *out = &ctx->out;
  ntk_trainer *tr = &st->tr;

  long long first = 0;
  int first_measured = 0;
  st->outcome = NTK_TRAIN_COMPLETE;
  if (st->resume) {
    int restart = 0;
    NTK_CHECK(ntk_checkpoint_restart_check(tr, &restart));
    if (restart) {
      ntk_log_info("resume: no checkpoint: the run stopped before its first one; starting again "
                   "from step 0 (its parameters come from the seed)");
      st->resume = 0;
    }
  }
  if (st->resume) {
    /* the checkpoint is checked before the output is touched: a refused resume leaves the
     * interrupted file as it was */
    NTK_CHECK(ntk_checkpoint_read(tr, &first));
    ntk_timer_start(NTK_PHASE_OUTPUT);
    NTK_CHECK(ntk_output_reopen(out, g, cfg->output.path));
    NTK_CHECK(ntk_train_resume_output(tr, first, &first_measured));
    long long count = 0;
    NTK_CHECK(ntk_output_attr_get_int(out, NTK_ATTR_RESUME_COUNT, 0, &count));
    NTK_CHECK(ntk_output_attr_int(out, "/", NTK_ATTR_RESUME_COUNT, count + 1));
    NTK_CHECK(ntk_output_attr_int(out, "/", "last_resume_step", first));
    NTK_CHECK(ntk_output_attr_string(out, "/", "last_resume_command_line", ctx->cmdline));
    NTK_CHECK(ntk_output_attr_int(out, "/", "last_resume_mpi_size", g->size));
    NTK_CHECK(ntk_output_attr_string(out, "/", "last_resume_utc", start));
    ntk_timer_stop(NTK_PHASE_OUTPUT);
    ntk_log_info("resuming at step %lld of %d (learning rate %.6e)", first, cfg->train.steps, tr->lr);
    if (st->stop_at > 0 && st->stop_at <= first)
      return ntk_err_set(NTK_ERR_INPUT, "--stop-at %lld: the checkpoint is already at step %lld", st->stop_at,
                         first);
  } else {
    ntk_timer_start(NTK_PHASE_OUTPUT);
    NTK_CHECK(ntk_app_ctx_open_output(ctx));
    NTK_CHECK(write_data_and_params(out, cfg, D, M));
    ntk_timer_stop(NTK_PHASE_OUTPUT);
    if (cfg->analytic.enabled) NTK_CHECK(run_analytic(ctx, st));
    /* the last point with nothing measured yet: PATH.partial is removed (ntk_app_main) */
    NTK_CHECK(ntk_signal_check(MPI_COMM_WORLD, "the setup"));
    ntk_log_info("NTK: %s method, %s network", ntk_config_enum_name("ntk.method", cfg->ntk.method),
                 ntk_config_enum_name("ntk.network", cfg->ntk.network));
    const int K = tr->K;
    if (tr->matrix_free) {
      /* what the file holds as NaN, named where a reader of the file finds it */
      NTK_CHECK(ntk_output_attr_string(out, "/", "eigensolver_used", cfg->eigensolver.matrix_free));
      const int probes = cfg->eigensolver.frobenius_probes;
      NTK_CHECK(ntk_output_attr_string(out, "/", NTK_ATTR_NOT_COMPUTED,
                                       probes > 0 ? NTK_MATRIX_FREE_NOT_COMPUTED_ALWAYS
                                                  : NTK_MATRIX_FREE_NOT_COMPUTED));
      if (probes > 0) {
        char est[160];
        snprintf(est, sizeof est, "%s (Hutchinson, %d probes, top %d deflated)", NTK_MATRIX_FREE_ESTIMATED,
                 probes, K);
        NTK_CHECK(ntk_output_attr_string(out, "/", NTK_ATTR_ESTIMATED, est));
      }
      ntk_log_info("eigensolve: matrix-free, SLEPc %s, top %d eigenpairs to relative residual "
                   "%.1e%s", cfg->eigensolver.matrix_free, K, cfg->eigensolver.tol,
                   tr->want_vectors ? " with vectors" : "");
    } else {
      const char *solver = ntk_eig_resolve(cfg->eigensolver.type, D->n_train, K, tr->want_vectors);
      NTK_CHECK(ntk_output_attr_string(out, "/", "eigensolver_used", solver));
      ntk_log_info("eigensolve: %s, %s%d eigenvalues%s", solver, K < D->n_train ? "top " : "all ", K,
                   tr->want_vectors ? " with vectors" : "");
    }
    int diverged = 0;
    NTK_CHECK(ntk_train_measure(tr, 0, &diverged));
    first_measured = 1;
    if (diverged) st->outcome = NTK_TRAIN_DIVERGED;
    if (training && !diverged) {
      NTK_CHECK(ntk_output_attr_double(out, "/", "learning_rate", tr->lr));
      NTK_CHECK(ntk_output_attr_double(out, "/", "stability_limit_lr", 2.0 * D->n_train / tr->ref0.w[0]));
      ntk_log_info("training: %d %s steps, learning rate %.6e (%.3f x the stability limit 2N/lambda_max)",
                   cfg->train.steps, ntk_config_enum_name("train.optimizer", cfg->train.optimizer), tr->lr,
                   tr->lr * tr->ref0.w[0] / (2.0 * D->n_train));
    }
  }
  if (!training) return NTK_OK;

  long long last = first;
  if (st->outcome != NTK_TRAIN_DIVERGED)
    NTK_CHECK(ntk_train_run(tr, first, first_measured, st->stop_at, &st->outcome, &last));
  ntk_timer_start(NTK_PHASE_OUTPUT);
  NTK_CHECK(ntk_output_attr_int(out, "/", "unstable", tr->unstable || st->outcome == NTK_TRAIN_DIVERGED));
  NTK_CHECK(ntk_output_attr_int(out, "/", "last_step", last));
  if (st->outcome == NTK_TRAIN_DIVERGED) NTK_CHECK(ntk_output_attr_int(out, "/", "diverged_step", last));
  if (cfg->output.save_params && st->outcome != NTK_TRAIN_DIVERGED && last > 0) {
    char pre[64];
    snprintf(pre, sizeof pre, "/params/step_%lld", last);
    NTK_CHECK(ntk_checkpoint_write_params(out, M, pre));
  }
  ntk_timer_stop(NTK_PHASE_OUTPUT);
  if (st->outcome == NTK_TRAIN_INTERRUPTED) {
    char ck[NTK_PATH_MAX + 16];
    ntk_checkpoint_path(cfg, ck, sizeof ck);
    ntk_log_info("interrupted at step %lld: checkpoint %s; continue with --resume", last, ck);
  }
  return NTK_OK;
}

/* Per-step cost of the training steps (max over ranks): the benchmark compares it with
 * a forward pass. */
static int write_train_timing(ntk_app_ctx *ctx, const run_state *st) {
  double loc[2] = {st->tr.step_seconds, st->tr.forward_seconds}, mx[2];
  MPI_Allreduce(loc, mx, 2, MPI_DOUBLE, MPI_MAX, ctx->g.comm);
  long long n = st->tr.steps_done;
  NTK_CHECK(ntk_output_attr_int(&ctx->out, "/timing", "train_steps", n));
  NTK_CHECK(ntk_output_attr_double(&ctx->out, "/timing", "train_step_seconds", n ? mx[0] / n : 0.0));
  NTK_CHECK(ntk_output_attr_double(&ctx->out, "/timing", "train_forward_seconds", n ? mx[1] / n : 0.0));
  if (n) ntk_log_info("training: %lld steps, %.4f s per step, of which forward %.4f s (%.2f forward passes)",
                      n, mx[0] / n, mx[1] / n, mx[1] > 0 ? mx[0] / mx[1] : 0.0);
  return NTK_OK;
}

static void run_begin(ntk_app_ctx *ctx) {
  (void)ctx;
  ntk_memory_init();
  ntk_timer_start(NTK_PHASE_TOTAL);
}

/* How the run ended names the file's status and the exit status. */
static void run_set_outcome(ntk_app_ctx *ctx, ntk_train_outcome outcome) {
  static const char *const names[] = {NTK_STATUS_COMPLETE, NTK_STATUS_INTERRUPTED, NTK_STATUS_DIVERGED};
  ctx->status = names[outcome];
  ctx->exit_status = outcome == NTK_TRAIN_INTERRUPTED ? NTK_EXIT_INTERRUPTED
                     : outcome == NTK_TRAIN_DIVERGED  ? NTK_EXIT_DIVERGED
                                                      : 0;
}

static int run_body(ntk_app_ctx *ctx) {
  run_state *st = ctx->state;
  int err = run_pipeline(ctx, st);
  run_set_outcome(ctx, st->outcome);
  return err;
}

/* /timing, the training step costs and /memory, once every phase has ended. */
static int run_before_close(ntk_app_ctx *ctx) {
  run_state *st = ctx->state;
  ntk_timer_stop(NTK_PHASE_TOTAL);
  ntk_timer_stat stats[NTK_PHASE_COUNT];
  ntk_timer_reduce(MPI_COMM_WORLD, stats);
  NTK_CHECK(ntk_output_write_timing(&ctx->out, stats, NTK_PHASE_COUNT));
  if (st->have_trainer && ctx->cfg.train.steps > 0) NTK_CHECK(write_train_timing(ctx, st));
  ntk_memory_measure(MPI_COMM_WORLD, &st->measured);
  NTK_CHECK(ntk_memory_record(&ctx->out, &st->mem, &st->measured));
  return NTK_OK;
}

static void run_report(ntk_app_ctx *ctx) {
  const run_state *st = ctx->state;
  if (st->dry_run) return;
  ntk_timer_report(MPI_COMM_WORLD);
  if (st->measured.max > 0) ntk_memory_print_usage(&st->mem, &st->measured);
  ntk_log_raw("\nwrote %s%s\n", ctx->cfg.output.path,
              st->outcome == NTK_TRAIN_INTERRUPTED ? " (interrupted)"
              : st->outcome == NTK_TRAIN_DIVERGED  ? " (diverged)" : "");
}

static void run_free(ntk_app_ctx *ctx) {
  run_state *st = ctx->state;
  if (st->have_trainer) ntk_train_free(&st->tr);
  if (st->have_model) ntk_model_free(&st->model);
}

int ntk_app_run(int argc, char **argv) {
  static run_state st;
  memset(&st, 0, sizeof st);
  const ntk_app_option opts[] = {{"--dry-run", 0, &st.dry_run, NULL}, {"--resume", 0, &st.resume, NULL},
                                 {"--stop-at", 1, NULL, &st.stop_at_text}};
  const ntk_app_command cmd = {.name = "run", .opts = opts, .nopts = 3, .begin = run_begin,
                               .check_args = run_check_args, .body = run_body,
                               .before_close = run_before_close, .report = run_report,
                               .free_state = run_free};
  return ntk_app_main(&cmd, &st, argc, argv);
}
