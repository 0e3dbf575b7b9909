#include "ntk_app.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
#include "ntk_timer.h"

char *openblas_get_config(void);

void ntk_app_usage(void) {
  printf(
      "ntkspec %s - the distributed empirical NTK spectrum of wide residual networks\n"
      "\n"
      "usage: mpirun -np P ntkspec run CONFIG.yaml [--set key.path=value ...] [--dry-run]\n"
      "       ntkspec --help | --version\n"
      "\n"
      "commands:\n"
      "  run CONFIG   compute the NTK (and its spectrum) of the network CONFIG describes and\n"
      "               write one HDF5 file (output.path)\n"
      "options of run:\n"
      "  --set K=V    override a configuration key (repeatable), e.g. --set model.width=1024\n"
      "  --dry-run    print the effective configuration, the process grid and the estimated\n"
      "               memory per rank, and compute nothing\n"
      "  -q, --quiet  no progress lines;  -v, --verbose  debug lines\n"
      "\n"
      "exit status: 0 success, 2 bad input (usage, configuration, data), 1 other failure.\n"
      "docs: README.md, docs/CONFIG.md (every key), docs/OUTPUT.md (the file format).\n",
      NTK_VERSION);
}

typedef struct {
  ntk_config cfg;
  int dry_run;
  char cmdline[4096];
} run_opts;

static int parse_run_args(int argc, char **argv, run_opts *o) {
  const char *path = NULL;
  int verbosity = -1;
  snprintf(o->cmdline, sizeof o->cmdline, "ntkspec run");
  for (int i = 0; i < argc; ++i) {
    size_t len = strlen(o->cmdline);
    snprintf(o->cmdline + len, sizeof o->cmdline - len, " %s", argv[i]);
  }
  /* the config file first, so that --set applies on top of it in order */
  for (int i = 0; i < argc; ++i) {
    if (!strcmp(argv[i], "--set")) {
      ++i;
    } else if (!strcmp(argv[i], "--dry-run")) {
      o->dry_run = 1;
    } else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
      verbosity = 0;
    } else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
      verbosity = 2;
    } else if (!strncmp(argv[i], "--set=", 6)) {
      /* handled below */
    } else if (argv[i][0] == '-') {
      return ntk_err_set(NTK_ERR_INPUT, "run: unknown option '%s' (try ntkspec --help)", argv[i]);
    } else if (path) {
      return ntk_err_set(NTK_ERR_INPUT, "run: more than one config file ('%s' and '%s')", path, argv[i]);
    } else {
      path = argv[i];
    }
  }
  if (!path) return ntk_err_set(NTK_ERR_INPUT, "run: missing CONFIG (usage: ntkspec run CONFIG.yaml)");
  NTK_CHECK(ntk_config_load(path, &o->cfg));
  for (int i = 0; i < argc; ++i) {
    const char *assign = NULL;
    if (!strcmp(argv[i], "--set")) {
      if (i + 1 >= argc) return ntk_err_set(NTK_ERR_INPUT, "--set: missing key=value");
      assign = argv[++i];
    } else if (!strncmp(argv[i], "--set=", 6)) {
      assign = argv[i] + 6;
    }
    if (assign) NTK_CHECK(ntk_config_set(&o->cfg, assign));
  }
  if (verbosity >= 0) o->cfg.verbosity = verbosity;
  NTK_CHECK(ntk_config_validate(&o->cfg));
  return NTK_OK;
}

static void utc_now(char *buf, size_t len) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Shapes and grid checks that need no data: a grid row or column without a single
 * block of samples or neurons is a configuration the user should change. */
static int check_layout(const ntk_config *cfg, const ntk_grid *g, int N, int d) {
  int p = cfg->fourier.features > 0 ? 2 * cfg->fourier.features : d;
  int n = cfg->fourier.project ? cfg->model.width : p;
  int row_blocks = (N + g->nb - 1) / g->nb, col_blocks = (n + g->nb - 1) / g->nb;
  if (row_blocks < g->nprow)
    return ntk_err_set(NTK_ERR_INPUT,
                       "%d samples in blocks of %d give %d row block(s) for %d process rows: "
                       "use fewer ranks, grid.rows <= %d, or a smaller grid.block_size",
                       N, g->nb, row_blocks, g->nprow, row_blocks);
  if (col_blocks < g->npcol)
    return ntk_err_set(NTK_ERR_INPUT,
                       "width %d in blocks of %d gives %d column block(s) for %d process "
                       "columns: use fewer ranks, grid.cols <= %d, or a smaller grid.block_size",
                       n, g->nb, col_blocks, g->npcol, col_blocks);
  int K = cfg->ntk.top_k;
  if (K > N) return ntk_err_set(NTK_ERR_INPUT, "ntk.top_k: %d exceeds the %d training samples", K, N);
  if (!ntk_eig_find(cfg->eigensolver.type))
    return ntk_err_set(NTK_ERR_INPUT, "eigensolver.type: unknown solver '%s'", cfg->eigensolver.type);
  return NTK_OK;
}

static int write_provenance(ntk_output *out, const run_opts *o, const ntk_grid *g, const char *start) {
  char *yaml = ntk_config_to_yaml(&o->cfg);
  if (!yaml) return ntk_err_set(NTK_ERR_MEMORY, "out of memory printing the configuration");
  int err = ntk_output_attr_string(out, "/", "config", yaml);
  free(yaml);
  NTK_CHECK(err);
  char buf[512];
  NTK_CHECK(ntk_output_attr_string(out, "/", "command_line", o->cmdline));
  NTK_CHECK(ntk_output_attr_int(out, "/", "mpi_size", g->size));
  snprintf(buf, sizeof buf, "%dx%d", g->nprow, g->npcol);
  NTK_CHECK(ntk_output_attr_string(out, "/", "process_grid", buf));
  NTK_CHECK(ntk_output_attr_int(out, "/", "block_size", g->nb));
  NTK_CHECK(ntk_output_attr_string(out, "/", "eigensolver", o->cfg.eigensolver.type));
  NTK_CHECK(ntk_output_attr_string(out, "/", "ntk_method", ntk_config_enum_name("ntk.method", o->cfg.ntk.method)));
  NTK_CHECK(ntk_output_attr_int(out, "/", "seed", (long long)o->cfg.seed));
  char mpiv[MPI_MAX_LIBRARY_VERSION_STRING];
  int len;
  MPI_Get_library_version(mpiv, &len);
  mpiv[strcspn(mpiv, ",\n")] = '\0';
  unsigned maj, min, rel;
  H5get_libversion(&maj, &min, &rel);
  snprintf(buf, sizeof buf, "ntkspec %s; %s; HDF5 %u.%u.%u; %s; ScaLAPACK (Debian scalapack-openmpi)",
           NTK_VERSION, mpiv, maj, min, rel, openblas_get_config());
  NTK_CHECK(ntk_output_attr_string(out, "/", "library_versions", buf));
  const char *job = getenv("SLURM_JOB_ID");
  NTK_CHECK(ntk_output_attr_string(out, "/", "slurm_job_id", job ? job : ""));
  NTK_CHECK(ntk_output_attr_string(out, "/", "start_utc", start));
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
  if (cfg->output.save_params) {
    const char *pre = "/params/step_0";
    char name[128];
    long long dims[2];
    if (M->has_fourier) {
      snprintf(name, sizeof name, "%s/G", pre);
      NTK_CHECK(ntk_output_write_dmat(out, name, &M->G));
    }
    if (M->project) {
      snprintf(name, sizeof name, "%s/W0", pre);
      NTK_CHECK(ntk_output_write_dmat(out, name, &M->W0));
      snprintf(name, sizeof name, "%s/b0", pre);
      dims[0] = M->n;
      NTK_CHECK(ntk_output_write_array(out, name, 1, dims, M->b0));
    }
    for (int l = 0; l < M->L; ++l) {
      snprintf(name, sizeof name, "%s/W", pre);
      NTK_CHECK(ntk_output_write_dmat_slice(out, name, M->L, l, &M->W[l]));
    }
    if (M->L > 0) {
      snprintf(name, sizeof name, "%s/b", pre);
      dims[0] = M->L;
      dims[1] = M->n;
      NTK_CHECK(ntk_output_write_array(out, name, 2, dims, M->b));
    }
    snprintf(name, sizeof name, "%s/V", pre);
    NTK_CHECK(ntk_output_write_dmat(out, name, &M->V));
    snprintf(name, sizeof name, "%s/b_out", pre);
    dims[0] = M->k;
    NTK_CHECK(ntk_output_write_array(out, name, 1, dims, M->b_out));
  }
  return NTK_OK;
}

typedef struct {
  ntk_grid g;
  ntk_data data;
  ntk_model model;
  ntk_dmat theta, vectors;
  ntk_output out;
  double *w, *group_trace;
  int have_grid, have_data, have_model;
} run_state;

/* For steps whose outcome is identical on every rank (they depend only on the
 * configuration): agreeing on the error lets all ranks stop together with one message. */
#define NTK_CHECK_ALL(call) NTK_CHECK(ntk_err_sync(MPI_COMM_WORLD, (call)))

static int run_pipeline(run_opts *o, run_state *st) {
  ntk_config *cfg = &o->cfg;
  char start[32];
  utc_now(start, sizeof start);
  ntk_timer_start(NTK_PHASE_SETUP);
  NTK_CHECK_ALL(ntk_grid_create(MPI_COMM_WORLD, cfg->grid.rows, cfg->grid.cols, cfg->grid.block_size, &st->g));
  st->have_grid = 1;
  ntk_grid *g = &st->g;
  int N, n_test, d, k;
  NTK_CHECK_ALL(ntk_data_shape(cfg, &N, &n_test, &d, &k));
  NTK_CHECK_ALL(check_layout(cfg, g, N, d));
  ntk_timer_stop(NTK_PHASE_SETUP);
  if (o->dry_run) {
    char *yaml = ntk_config_to_yaml(cfg);
    ntk_log_raw("# effective configuration\n%s", yaml ? yaml : "");
    free(yaml);
    ntk_log_raw("# process grid: %d x %d (%d ranks; rows split the %d samples, columns the neurons), block size %d\n",
                g->nprow, g->npcol, g->size, N, g->nb);
    ntk_log_raw("# data: N = %d, n_test = %d, d = %d, k = %d\n", N, n_test, d, k);
    ntk_mem_estimate e;
    ntk_memory_estimate(cfg, g, N, n_test, d, k, ntk_current_rss_bytes(), &e);
    ntk_memory_print(&e);
    return NTK_OK;
  }
  ntk_log_info("ntkspec %s: %d ranks, grid %d x %d, block %d", NTK_VERSION, g->size, g->nprow, g->npcol, g->nb);

  ntk_timer_start(NTK_PHASE_DATA);
  NTK_CHECK(ntk_data_load(cfg, g, &st->data));
  st->have_data = 1;
  ntk_timer_stop(NTK_PHASE_DATA);
  ntk_data *D = &st->data;
  ntk_log_info("data: %s (N = %d, test %d, d = %d, k = %d)", D->description, D->n_train, D->n_test, D->d, D->k);

  NTK_CHECK_ALL(ntk_model_init(cfg, g, D->d, D->k, &st->model));
  st->have_model = 1;
  ntk_model *M = &st->model;
  ntk_log_info("model: width %d, depth %d, %s, %lld parameters", M->n, M->L,
               ntk_config_enum_name("model.activation", M->activation), ntk_model_num_params(M));

  ntk_timer_start(NTK_PHASE_OUTPUT);
  NTK_CHECK(ntk_output_open(&st->out, g, cfg->output.path, cfg->output.overwrite));
  NTK_CHECK(write_provenance(&st->out, o, g, start));
  NTK_CHECK(write_data_and_params(&st->out, cfg, D, M));
  ntk_timer_stop(NTK_PHASE_OUTPUT);

  const int ng = NTK_NGROUPS(M->L);
  NTK_ALLOC(st->group_trace, ng, "group traces");
  NTK_CHECK(ntk_dmat_create(g, D->n_train, D->n_train, &st->theta));
  ntk_log_info("NTK: %s method, %s network", ntk_config_enum_name("ntk.method", cfg->ntk.method),
               ntk_config_enum_name("ntk.network", cfg->ntk.network));
  NTK_CHECK(ntk_ntk_for_config(M, &D->x_train, 0, &st->theta, st->group_trace));

  const int K = cfg->ntk.top_k > 0 ? cfg->ntk.top_k : D->n_train;
  NTK_ALLOC(st->w, K, "eigenvalues");
  ntk_log_info("eigensolve: %s, %s%d eigenvalues%s", cfg->eigensolver.type, K < D->n_train ? "top " : "all ",
               K, cfg->output.save_eigenvectors ? " with vectors" : "");
  ntk_timer_start(NTK_PHASE_EIGENSOLVE);
  NTK_CHECK(ntk_eig_solve(cfg->eigensolver.type, &st->theta, K, cfg->output.save_eigenvectors, st->w,
                          cfg->output.save_eigenvectors ? &st->vectors : NULL));
  ntk_timer_stop(NTK_PHASE_EIGENSOLVE);

  ntk_timer_start(NTK_PHASE_METRICS);
  ntk_kernel_metrics km;
  NTK_CHECK(ntk_metrics_kernel(&st->theta, st->w, K, &D->y_train, &km));
  double train_loss, train_acc, test_loss = NAN, test_acc = NAN;
  {
    ntk_forward F;
    NTK_CHECK(ntk_model_forward(M, &D->x_train, NULL, &F));
    int err = ntk_metrics_loss(&F.f, &D->y_train, D->classification, &train_loss, &train_acc);
    ntk_forward_free(&F);
    NTK_CHECK(err);
    if (D->n_test > 0) {
      NTK_CHECK(ntk_model_forward(M, &D->x_test, NULL, &F));
      err = ntk_metrics_loss(&F.f, &D->y_test, D->classification, &test_loss, &test_acc);
      ntk_forward_free(&F);
      NTK_CHECK(err);
    }
  }
  ntk_timer_stop(NTK_PHASE_METRICS);

  ntk_timer_start(NTK_PHASE_OUTPUT);
  ntk_output *out = &st->out;
  NTK_CHECK(ntk_output_append_int(out, "/trajectory/step", 0));
  NTK_CHECK(ntk_output_append_row(out, "/trajectory/eigenvalues", K, st->w));
  NTK_CHECK(ntk_output_append_scalar(out, "/trajectory/lambda_max", km.lambda_max));
  NTK_CHECK(ntk_output_append_scalar(out, "/trajectory/lambda_min", km.lambda_min));
  NTK_CHECK(ntk_output_append_scalar(out, "/trajectory/condition_number", km.condition_number));
  NTK_CHECK(ntk_output_append_scalar(out, "/trajectory/effective_rank", km.effective_rank));
  NTK_CHECK(ntk_output_append_scalar(out, "/trajectory/trace", km.trace));
  NTK_CHECK(ntk_output_append_scalar(out, "/trajectory/kernel_target_alignment", km.alignment));
  NTK_CHECK(ntk_output_append_scalar(out, "/trajectory/drift", 0.0));
  NTK_CHECK(ntk_output_append_scalar(out, "/trajectory/eigenvalue_drift", 0.0));
  NTK_CHECK(ntk_output_append_scalar(out, "/trajectory/train_loss", train_loss));
  NTK_CHECK(ntk_output_append_scalar(out, "/trajectory/test_loss", test_loss));
  if (D->classification) {
    NTK_CHECK(ntk_output_append_scalar(out, "/trajectory/train_accuracy", train_acc));
    NTK_CHECK(ntk_output_append_scalar(out, "/trajectory/test_accuracy", test_acc));
  }
  NTK_CHECK(ntk_output_append_row(out, "/trajectory/layer_trace", ng, st->group_trace));
  if (cfg->output.save_ntk) NTK_CHECK(ntk_output_append_dmat(out, "/trajectory/ntk", &st->theta));
  if (cfg->output.save_eigenvectors) NTK_CHECK(ntk_output_append_dmat(out, "/trajectory/eigenvectors", &st->vectors));
  NTK_CHECK(ntk_output_flush(out));
  ntk_timer_stop(NTK_PHASE_OUTPUT);

  ntk_log_info("lambda_max %.6e  lambda_min %.6e  condition %.3e  effective rank %.2f  alignment %.4f",
               km.lambda_max, km.lambda_min, km.condition_number, km.effective_rank, km.alignment);
  ntk_log_info("train loss %.6e%s", train_loss, D->n_test > 0 ? "" : " (no test set)");
  return NTK_OK;
}

static void run_state_free(run_state *st) {
  free(st->w);
  free(st->group_trace);
  ntk_dmat_free(&st->theta);
  ntk_dmat_free(&st->vectors);
  if (st->have_model) ntk_model_free(&st->model);
  if (st->have_data) ntk_data_free(&st->data);
  if (st->have_grid) ntk_grid_free(&st->g);
}

int ntk_app_run(int argc, char **argv) {
  static run_opts o;
  static run_state st;
  memset(&o, 0, sizeof o);
  memset(&st, 0, sizeof st);
  st.out.file = -1;
  ntk_timer_reset();
  ntk_timer_start(NTK_PHASE_TOTAL);
  ntk_config_defaults(&o.cfg);
  /* every rank reads the same file and arguments: the outcome is the same everywhere */
  int err = ntk_err_sync(MPI_COMM_WORLD, parse_run_args(argc, argv, &o));
  ntk_log_init(MPI_COMM_WORLD, err ? 1 : o.cfg.verbosity);
  if (!err) err = run_pipeline(&o, &st);
  if (err && !ntk_err_is_synced()) {
    /* this rank failed alone, perhaps while others wait in a collective: stop them all */
    fprintf(stderr, "ntkspec: error [rank %d]: %s\n", ntk_log_rank(), ntk_err_message());
    if (getenv("NTK_DEBUG")) ntk_err_print_trace();
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, ntk_err_exit_status(err));
  }
  err = ntk_err_sync(MPI_COMM_WORLD, err);
  ntk_timer_stop(NTK_PHASE_TOTAL);
  if (st.out.file >= 0) {
    if (!err) {
      ntk_timer_stat stats[NTK_PHASE_COUNT];
      ntk_timer_reduce(MPI_COMM_WORLD, stats);
      char end[32];
      utc_now(end, sizeof end);
      err = ntk_output_write_timing(&st.out, stats, NTK_PHASE_COUNT);
      if (!err) err = ntk_output_attr_string(&st.out, "/", "end_utc", end);
      err = ntk_err_sync(MPI_COMM_WORLD, err);
    }
    int cerr = ntk_output_close(&st.out, err ? "failed" : "complete");
    if (!err) err = ntk_err_sync(MPI_COMM_WORLD, cerr);
  }
  if (err) {
    ntk_log_error_line(ntk_err_message());
    if (getenv("NTK_DEBUG")) ntk_err_print_trace();
  } else if (!o.dry_run) {
    ntk_timer_report(MPI_COMM_WORLD);
    ntk_log_raw("\nwrote %s\n", o.cfg.output.path);
  }
  run_state_free(&st);
  return ntk_err_exit_status(err);
}
