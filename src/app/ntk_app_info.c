/* ntkspec info FILE.h5: provenance, status, contents and a compact summary of any ntkspec
 * file (run, sweep; complete, partial, interrupted, diverged or failed).
 *
 * The file is read serially by rank 0 with the default (sec2) driver: a summary is a few
 * kilobytes, and a file still being written by a running job (or left by a killed one)
 * must be readable without joining that job's MPI-IO.  Under mpirun the other ranks only
 * wait for the exit status.  Everything the summary shows is looked up by name and is
 * optional, so files from older or newer writers and partial files still summarise. */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ntk_app.h"
#include "ntk_config.h"
#include "ntk_error.h"
#include "ntk_h5check.h"
#include "ntk_log.h"
#include "ntk_schema.h"

#define INFO_MAXDIMS 8
#define NTK_INFO_PATH 4096

typedef struct {
  hid_t f;
  const char *path;
  int unreadable; /* objects that exist but could not be read */
} info_file;

/* ---------- small HDF5 readers (1 found, 0 absent, -1 unreadable) ---------- */

/* H5Lexists fails on a missing middle component: walk the path. */
static int has_link(hid_t f, const char *name) {
  char buf[512];
  if (snprintf(buf, sizeof buf, "%s", name) >= (int)sizeof buf) return 0;
  for (char *p = buf + 1;; ++p) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (H5Lexists(f, buf, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return 0;
      }
      if (c == '\0') return 1;
      *p = c;
    }
  }
}

static int dset_shape(info_file *in, const char *name, int *rank, hsize_t *dims) {
  if (!has_link(in->f, name)) return 0;
  hid_t d = H5Dopen2(in->f, name, H5P_DEFAULT);
  if (d < 0) {
    H5Eclear2(H5E_DEFAULT);
    return 0; /* a group of that name, not a dataset */
  }
  hid_t s = H5Dget_space(d);
  int r = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
  if (r >= 0 && r <= INFO_MAXDIMS) H5Sget_simple_extent_dims(s, dims, NULL);
  if (s >= 0) H5Sclose(s);
  H5Dclose(d);
  if (r < 0 || r > INFO_MAXDIMS) {
    H5Eclear2(H5E_DEFAULT);
    in->unreadable++;
    return -1;
  }
  *rank = r;
  return 1;
}

/* `count` doubles of a numeric dataset starting at element `first` of its flattened
 * row-major layout (rows of a trajectory, one slice of a 3-D kernel stack). */
static int read_doubles(info_file *in, const char *name, hsize_t first, hsize_t count, double *x) {
  int rank;
  hsize_t dims[INFO_MAXDIMS];
  int e = dset_shape(in, name, &rank, dims);
  if (e <= 0) return e;
  hsize_t total = 1;
  for (int i = 0; i < rank; ++i) total *= dims[i];
  if (first + count > total) return 0;
  if (count == 0) return 1;
  hid_t d = H5Dopen2(in->f, name, H5P_DEFAULT);
  hid_t fs = H5Dget_space(d);
  hsize_t mdim = count;
  hid_t ms = H5Screate_simple(1, &mdim, NULL);
  int ok = d >= 0 && fs >= 0 && ms >= 0 && ntk_h5check_dataset_intact(d);
  /* callers ask for whole trailing rows: a range of rows of a matrix, or of one slice
   * of a stack of matrices (/trajectory/ntk), or the whole dataset */
  hsize_t start[3] = {0, 0, 0}, cnt[3];
  hsize_t C = rank >= 2 ? dims[rank - 1] : 1;
  if (count == total || rank == 0) {
    ok = ok && H5Sselect_all(fs) >= 0;
  } else if (rank == 1) {
    start[0] = first;
    cnt[0] = count;
    ok = ok && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0;
  } else if (rank == 2 && first % C == 0 && count % C == 0) {
    start[0] = first / C;
    cnt[0] = count / C;
    cnt[1] = C;
    ok = ok && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0;
  } else if (rank == 3 && first % C == 0 && count % C == 0 &&
             (first % (dims[1] * C)) / C + count / C <= dims[1]) {
    start[0] = first / (dims[1] * C);
    start[1] = (first % (dims[1] * C)) / C;
    cnt[0] = 1;
    cnt[1] = count / C;
    cnt[2] = C;
    ok = ok && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0;
  } else {
    ok = 0;
  }
  ok = ok && H5Dread(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, x) >= 0;
  if (ms >= 0) H5Sclose(ms);
  if (fs >= 0) H5Sclose(fs);
  if (d >= 0) H5Dclose(d);
  if (!ok) {
    H5Eclear2(H5E_DEFAULT);
    in->unreadable++;
    return -1;
  }
  return 1;
}

/* A whole 1-D (or any-rank, flattened) numeric dataset, malloc'd. */
static int read_all(info_file *in, const char *name, double **x, hsize_t *n) {
  int rank;
  hsize_t dims[INFO_MAXDIMS];
  *x = NULL;
  *n = 0;
  int e = dset_shape(in, name, &rank, dims);
  if (e <= 0) return e;
  hsize_t total = 1;
  for (int i = 0; i < rank; ++i) total *= dims[i];
  *x = malloc((size_t)(total ? total : 1) * sizeof **x);
  if (!*x) return -1;
  e = read_doubles(in, name, 0, total, *x);
  if (e <= 0) {
    free(*x);
    *x = NULL;
    return e;
  }
  *n = total;
  return 1;
}

/* An attribute of obj as text: strings as they are, numbers %g, small arrays joined. */
static int attr_text(hid_t obj, const char *name, char *buf, size_t n) {
  buf[0] = '\0';
  htri_t ex = H5Aexists(obj, name);
  if (ex <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return ex < 0 ? -1 : 0;
  }
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t t = a >= 0 ? H5Aget_type(a) : -1;
  hid_t s = a >= 0 ? H5Aget_space(a) : -1;
  int rc = -1;
  if (t < 0 || s < 0) goto done;
  hssize_t np = H5Sget_simple_extent_npoints(s);
  if (np < 0) goto done;
  H5T_class_t cls = H5Tget_class(t);
  if (cls == H5T_STRING && np == 1) {
    if (H5Tis_variable_str(t) > 0) {
      hid_t mt = H5Tcopy(H5T_C_S1);
      H5Tset_size(mt, H5T_VARIABLE);
      H5Tset_cset(mt, H5Tget_cset(t));
      char *v = NULL;
      if (H5Aread(a, mt, &v) >= 0) {
        snprintf(buf, n, "%s", v ? v : "");
        rc = 1;
      }
      if (v) H5free_memory(v);
      H5Tclose(mt);
    } else {
      size_t sz = H5Tget_size(t);
      char *v = calloc(sz + 1, 1);
      hid_t mt = H5Tcopy(H5T_C_S1);
      H5Tset_size(mt, sz + 1);
      H5Tset_cset(mt, H5Tget_cset(t));
      if (v && H5Aread(a, mt, v) >= 0) {
        snprintf(buf, n, "%s", v);
        rc = 1;
      }
      free(v);
      H5Tclose(mt);
    }
  } else if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && np >= 1 && np <= 16) {
    double v[16];
    long long iv[16];
    int isint = cls == H5T_INTEGER;
    if (H5Aread(a, isint ? H5T_NATIVE_LLONG : H5T_NATIVE_DOUBLE, isint ? (void *)iv : (void *)v) >= 0) {
      size_t len = 0;
      for (hssize_t i = 0; i < np && len < n; ++i) {
        if (isint)
          len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? ", " : "", iv[i]);
        else
          len += (size_t)snprintf(buf + len, n - len, "%s%.6g", i ? ", " : "", v[i]);
      }
      rc = 1;
    }
  } else {
    snprintf(buf, n, "(%lld values)", (long long)np);
    rc = 1;
  }
done:
  if (s >= 0) H5Sclose(s);
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  if (rc < 0) H5Eclear2(H5E_DEFAULT);
  return rc;
}

static int attr_double(hid_t obj, const char *name, double *v) {
  char buf[64];
  if (attr_text(obj, name, buf, sizeof buf) != 1) return 0;
  char *end;
  *v = strtod(buf, &end);
  return end != buf && *end == '\0';
}

/* ---------- the stored configuration (read by the config module) ---------- */

/* The keys a file's text set; a key it lacks (an older writer) shows as "?" */
typedef struct {
  ntk_config cfg;
  unsigned char given[NTK_CONFIG_MAX_KEYS];
  int n; /* keys given; 0 = nothing to show */
  char text[NTK_CONFIG_MAX_KEYS][96];
} stored_config;

static void cfg_read(const char *yaml, stored_config *m) {
  m->n = 0;
  if (ntk_config_from_text(yaml, "config", &m->cfg, m->given) != NTK_OK) {
    ntk_err_clear();
    return;
  }
  for (int i = 0; i < ntk_config_nkeys; ++i)
    if (m->given[i]) {
      ntk_config_value_text(&m->cfg, &ntk_config_keys[i], m->text[i], sizeof m->text[i]);
      m->n++;
    }
}

static const char *cfg_get(const stored_config *m, const char *key) {
  const ntk_config_key *k = ntk_config_find_key(key);
  int i = k ? (int)(k - ntk_config_keys) : -1;
  return i >= 0 && m->given[i] ? m->text[i] : NULL;
}

static const char *cfg_or(const stored_config *m, const char *key, const char *dflt) {
  const char *v = cfg_get(m, key);
  return v ? v : dflt;
}

static int cfg_true(const stored_config *m, const char *key) {
  const char *v = cfg_get(m, key);
  return v && !strcmp(v, "true");
}

/* ---------- opening and checking ---------- */

static herr_t first_desc(unsigned n, const H5E_error2_t *e, void *data) {
  (void)n;
  char *buf = data;
  if (!buf[0] && e->desc && e->desc[0]) snprintf(buf, 160, "%s", e->desc);
  return 0;
}

static int open_checked(info_file *in, const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    if (errno == ENOENT) return ntk_err_set(NTK_ERR_INPUT, "%s: no such file", path);
    return ntk_err_set(NTK_ERR_INPUT, "%s: cannot read (%s)", path, strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) return ntk_err_set(NTK_ERR_INPUT, "%s: is a folder, not an ntkspec file", path);
  if (access(path, R_OK) != 0)
    return ntk_err_set(NTK_ERR_INPUT, "%s: cannot read (%s)", path, strerror(errno));
  htri_t h5 = H5Fis_hdf5(path);
  H5Eclear2(H5E_DEFAULT);
  if (h5 == 0) return ntk_err_set(NTK_ERR_INPUT, "%s: not an ntkspec file (not an HDF5 file)", path);
  NTK_CHECK(ntk_h5check_file(path, path));
  /* a running job holds the file open for writing: read it without HDF5's lock */
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl >= 0) H5Pset_file_locking(fapl, 0, 1);
  in->f = H5Fopen(path, H5F_ACC_RDONLY, fapl >= 0 ? fapl : H5P_DEFAULT);
  if (fapl >= 0) H5Pclose(fapl);
  if (in->f < 0) {
    char detail[160] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first_desc, detail);
    H5Eclear2(H5E_DEFAULT);
    return ntk_err_set(NTK_ERR_INPUT, "%s: cannot read as HDF5 (damaged or truncated file?%s%s)", path,
                       detail[0] ? " HDF5 says: " : "", detail);
  }
  char fmt[64];
  int e = attr_text(in->f, NTK_ATTR_FORMAT, fmt, sizeof fmt);
  if (e == 0) return ntk_err_set(NTK_ERR_INPUT, "%s: not an ntkspec file (no format attribute)", path);
  if (e < 0) return ntk_err_set(NTK_ERR_INPUT, "%s: not an ntkspec file (unreadable format attribute)", path);
  if (strcmp(fmt, NTK_FORMAT_NAME) != 0)
    return ntk_err_set(NTK_ERR_INPUT, "%s: not an ntkspec file (format is '%s')", path, fmt);
  return NTK_OK;
}

/* ---------- sections ---------- */

static int ends_with(const char *s, const char *tail) {
  size_t a = strlen(s), b = strlen(tail);
  return a >= b && !strcmp(s + a - b, tail);
}

static void show_state(info_file *in, long long T) {
  char status[64], kind[64], step[32];
  if (attr_text(in->f, NTK_ATTR_STATUS, status, sizeof status) != 1) snprintf(status, sizeof status, "(none)");
  if (attr_text(in->f, NTK_ATTR_KIND, kind, sizeof kind) == 1 && !strcmp(kind, NTK_KIND_CHECKPOINT)) {
    /* a restart file, not a result: its status only says the checkpoint write finished */
    if (attr_text(in->f, NTK_ATTR_STEP, step, sizeof step) != 1) snprintf(step, sizeof step, "?");
    if (!strcmp(status, NTK_STATUS_COMPLETE))
      ntk_log_raw("status      checkpoint at step %s (the restart file of a training run, not a result: "
                  "continue the run with ntkspec run CONFIG --resume)\n", step);
    else
      ntk_log_raw("status      checkpoint at step %s: PARTIAL (status %s: the checkpoint write did not "
                  "finish; --resume uses the previous checkpoint)\n", step, status);
    return;
  }
  int partial_name = ends_with(in->path, ".partial");
  const char *why = NULL;
  if (!strcmp(status, NTK_STATUS_COMPLETE))
    why = partial_name ? "the run finished but the file was never renamed from .partial" : NULL;
  else if (!strcmp(status, NTK_STATUS_RUNNING))
    why = "the run is still going, or was killed before it could close the file";
  else if (!strcmp(status, NTK_STATUS_INTERRUPTED))
    why = "stopped by SIGTERM/SIGINT/SIGUSR1 (e.g. a SLURM time limit) after writing a checkpoint: "
          "continue with ntkspec run CONFIG --resume";
  else if (!strcmp(status, NTK_STATUS_DIVERGED))
    why = "training stopped: the loss or the kernel stopped being finite, or the train loss "
          "exceeded train.divergence_factor times its start";
  else if (!strcmp(status, NTK_STATUS_FAILED))
    why = "the run stopped on an error";
  else
    why = "unknown status";
  if (!why)
    ntk_log_raw("status      complete\n");
  else
    ntk_log_raw("status      %s: PARTIAL (%s; %lld measurement%s saved)\n", status, why, T, T == 1 ? "" : "s");
}

static void show_provenance(info_file *in) {
  char v[4096], w[256];
  char fv[32] = "?";
  attr_text(in->f, "format_version", fv, sizeof fv);
  if (attr_text(in->f, "version", w, sizeof w) == 1)
    ntk_log_raw("format      ntkspec %s, written by ntkspec %s\n", fv, w);
  else
    ntk_log_raw("format      ntkspec %s\n", fv);
  if (attr_text(in->f, "command_line", v, sizeof v) == 1) ntk_log_raw("command     %s\n", v);
  char a[64] = "", b[64] = "";
  attr_text(in->f, "start_utc", a, sizeof a);
  attr_text(in->f, "end_utc", b, sizeof b);
  if (a[0] || b[0]) ntk_log_raw("time (UTC)  %s .. %s\n", a[0] ? a : "?", b[0] ? b : "(not finished)");
  char np[32] = "", grid[64] = "", nb[32] = "", solver[64] = "", method[64] = "";
  attr_text(in->f, "mpi_size", np, sizeof np);
  attr_text(in->f, "process_grid", grid, sizeof grid);
  attr_text(in->f, "block_size", nb, sizeof nb);
  attr_text(in->f, "eigensolver", solver, sizeof solver);
  attr_text(in->f, "ntk_method", method, sizeof method);
  if (np[0] || grid[0])
    ntk_log_raw("processes   %s rank%s, grid %s, block %s%s%s%s%s\n", np[0] ? np : "?", strcmp(np, "1") ? "s" : "",
                grid[0] ? grid : "?", nb[0] ? nb : "?", solver[0] ? ", eigensolver " : "", solver,
                method[0] ? ", NTK method " : "", method);
  if (attr_text(in->f, "seed", w, sizeof w) == 1) ntk_log_raw("seed        %s\n", w);
  if (attr_text(in->f, "slurm_job_id", w, sizeof w) == 1 && w[0]) ntk_log_raw("slurm job   %s\n", w);
  if (attr_text(in->f, "library_versions", v, sizeof v) == 1) ntk_log_raw("libraries   %s\n", v);
}

static void show_config(info_file *in, const stored_config *m) {
  (void)in;
  if (m->n == 0) return;
  char fourier[160];
  const char *nf = cfg_or(m, "fourier.features", "0");
  if (!strcmp(nf, "0"))
    snprintf(fourier, sizeof fourier, "raw inputs");
  else
    snprintf(fourier, sizeof fourier, "%s Fourier features (scale %s%s)", nf, cfg_or(m, "fourier.scale", "?"),
             cfg_true(m, "fourier.trainable") ? ", trained" : "");
  ntk_log_raw("network     width %s, depth %s, %s, sigma_w %s, sigma_b %s, %s%s\n", cfg_or(m, "model.width", "?"),
              cfg_or(m, "model.depth", "?"), cfg_or(m, "model.activation", "?"), cfg_or(m, "model.weight_std", "?"),
              cfg_or(m, "model.bias_std", "?"), fourier,
              cfg_get(m, "fourier.project") && !cfg_true(m, "fourier.project") ? ", no input projection" : "");
  if (cfg_get(m, "residual.skip") && !cfg_true(m, "residual.skip"))
    ntk_log_raw("blocks      plain MLP (residual.skip false)\n");
  else
    ntk_log_raw("blocks      residual, alpha %s (%s), survival %s (%s)\n", cfg_or(m, "residual.alpha", "?"),
                cfg_or(m, "residual.schedule", "?"), cfg_or(m, "depth.survival", "?"), cfg_or(m, "depth.schedule", "?"));
  ntk_log_raw("data        %s, %s train, %s test samples\n", cfg_or(m, "data.source", "?"), cfg_or(m, "data.n_train", "?"),
              cfg_or(m, "data.n_test", "?"));
  ntk_log_raw("kernel      %s method, %s network, top_k %s%s\n", cfg_or(m, "ntk.method", "?"), cfg_or(m, "ntk.network", "?"),
              cfg_or(m, "ntk.top_k", "?"),
              cfg_true(m, "analytic.enabled") ? ", analytic infinite-width kernel on" : "");
  const char *steps = cfg_get(m, "train.steps");
  if (!steps || !strcmp(steps, "0")) {
    ntk_log_raw("training    none\n");
  } else {
    const char *lr = cfg_or(m, "train.lr", "0");
    char rate[128];
    if (strtod(lr, NULL) > 0)
      snprintf(rate, sizeof rate, "lr %s", lr);
    else
      snprintf(rate, sizeof rate, "lr_scale %s (of 2N/lambda_max)", cfg_or(m, "train.lr_scale", "?"));
    ntk_log_raw("training    %s, %s steps, %s\n", cfg_or(m, "train.optimizer", "?"), steps, rate);
  }
}

/* ---------- contents ---------- */

typedef struct {
  info_file *in;
  int nparams;      /* /params/step_* groups seen */
  char first_params[64];
} visit_state;

static herr_t visit_link(hid_t g, const char *name, const H5L_info_t *li, void *data) {
  visit_state *vs = data;
  if (li->type != H5L_TYPE_HARD) return 0;
  /* parameter snapshots repeat the same shapes at every saved step: show one */
  if (!strncmp(name, "params/step_", 12)) {
    const char *rest = strchr(name + 12, '/');
    if (!rest) {
      if (vs->nparams++ == 0) snprintf(vs->first_params, sizeof vs->first_params, "%s", name);
      return 0;
    }
    if (strncmp(name, vs->first_params, strlen(vs->first_params)) != 0) return 0;
  }
  hid_t o = H5Oopen(g, name, H5P_DEFAULT);
  if (o < 0) {
    H5Eclear2(H5E_DEFAULT);
    ntk_log_raw("  /%-42s (unreadable)\n", name);
    vs->in->unreadable++;
    return 0;
  }
  if (H5Iget_type(o) == H5I_DATASET) {
    hid_t s = H5Dget_space(o), t = H5Dget_type(o);
    hsize_t dims[INFO_MAXDIMS], maxd[INFO_MAXDIMS];
    int r = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    char shape[160] = "";
    if (r >= 0 && r <= INFO_MAXDIMS && H5Sget_simple_extent_dims(s, dims, maxd) >= 0) {
      size_t len = (size_t)snprintf(shape, sizeof shape, "(");
      for (int i = 0; i < r && len < sizeof shape; ++i)
        len += (size_t)snprintf(shape + len, sizeof shape - len, "%s%llu%s", i ? ", " : "",
                                (unsigned long long)dims[i], maxd[i] == H5S_UNLIMITED ? "+" : "");
      if (len < sizeof shape) snprintf(shape + len, sizeof shape - len, "%s)", r == 1 ? "," : "");
    } else {
      snprintf(shape, sizeof shape, "(?)");
      vs->in->unreadable++;
    }
    const char *kind = "";
    if (t >= 0) {
      H5T_class_t c = H5Tget_class(t);
      kind = c == H5T_FLOAT ? "float" : c == H5T_INTEGER ? "int" : c == H5T_STRING ? "string" : "other";
    }
    ntk_log_raw("  /%-42s %-14s %s\n", name, shape, kind);
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
  }
  H5Oclose(o);
  return 0;
}

static void show_contents(info_file *in) {
  ntk_log_raw("\ndatasets (shape as h5py shows it; + marks an extendible trajectory axis)\n");
  visit_state vs = {in, 0, ""};
  if (H5Lvisit(in->f, H5_INDEX_NAME, H5_ITER_INC, visit_link, &vs) < 0) {
    H5Eclear2(H5E_DEFAULT);
    ntk_log_raw("  (the listing stopped early: damaged file?)\n");
    in->unreadable++;
  }
  if (vs.nparams > 1) ntk_log_raw("  (parameters saved at %d steps; shapes shown for /%s)\n", vs.nparams, vs.first_params);
}

/* ---------- trajectory summary ---------- */

typedef struct {
  char name[96];
  int row_first, row_last; /* rows read, -1 if none */
  double first, last;
} metric_row;

static void fmt_num(char *buf, size_t n, double v) {
  if (isnan(v))
    snprintf(buf, n, "n/a");
  else
    snprintf(buf, n, "%.6g", v);
}

/* Relative Frobenius distance of slice t of /trajectory/ntk to /analytic/ntk, read in
 * row blocks so the check never holds a whole N x N matrix. */
static int kernel_distance(info_file *in, long long t, long long N, double *dist) {
  long long rows = (4LL << 20) / (N > 0 ? N : 1);
  if (rows < 1) rows = 1;
  if (rows > N) rows = N;
  double *a = malloc((size_t)(rows * N) * sizeof *a), *b = malloc((size_t)(rows * N) * sizeof *b);
  double num = 0, den = 0;
  int ok = a && b;
  for (long long r0 = 0; ok && r0 < N; r0 += rows) {
    long long nr = r0 + rows <= N ? rows : N - r0;
    ok = read_doubles(in, "/analytic/ntk", (hsize_t)(r0 * N), (hsize_t)(nr * N), a) == 1 &&
         read_doubles(in, ntk_schema_trajectory[NTK_TRAJ_NTK].path, (hsize_t)(t * N * N + r0 * N), (hsize_t)(nr * N), b) == 1;
    for (long long i = 0; ok && i < nr * N; ++i) {
      num += (b[i] - a[i]) * (b[i] - a[i]);
      den += a[i] * a[i];
    }
  }
  free(a);
  free(b);
  if (!ok || den <= 0) return 0;
  *dist = sqrt(num / den);
  return 1;
}

/* The sweep's eigenvalue error (docs/ANALYTIC.md): ||lambda_1..K - lambda_inf_1..K||_2 /
 * ||lambda_inf_1..K||_2 over the K eigenvalues the trajectory holds. */
static int eig_error(info_file *in, const double *lam_inf, hsize_t ninf, long long t, long long K, double *err) {
  if (K <= 0 || (hsize_t)K > ninf) return 0;
  double *w = malloc((size_t)K * sizeof *w);
  if (!w) return 0;
  int ok = read_doubles(in, ntk_schema_trajectory[NTK_TRAJ_EIGENVALUES].path, (hsize_t)(t * K), (hsize_t)K, w) == 1;
  double num = 0, den = 0;
  for (long long i = 0; ok && i < K; ++i) {
    num += (w[i] - lam_inf[i]) * (w[i] - lam_inf[i]);
    den += lam_inf[i] * lam_inf[i];
  }
  free(w);
  if (!ok || !(den > 0)) return 0;
  *err = sqrt(num / den);
  return 1;
}

static herr_t collect_metric(hid_t g, const char *name, const H5L_info_t *li, void *data) {
  (void)g;
  (void)li;
  char(*names)[96] = data;
  int n = 0;
  while (names[n][0]) ++n;
  if (n < 63) snprintf(names[n], 96, "%s", name);
  return 0;
}

static void add_metric(info_file *in, const char *name, long long T, metric_row *rows, int *nrows) {
  char path[128];
  snprintf(path, sizeof path, "/trajectory/%s", name);
  int rank;
  hsize_t dims[INFO_MAXDIMS];
  if (dset_shape(in, path, &rank, dims) != 1 || rank != 1 || dims[0] == 0) return;
  for (int i = 0; i < *nrows; ++i)
    if (!strcmp(rows[i].name, name)) return;
  metric_row *r = &rows[(*nrows)++];
  snprintf(r->name, sizeof r->name, "%s", name);
  long long last = (long long)dims[0] - 1;
  if (T > 0 && last > T - 1) last = T - 1;
  r->row_first = read_doubles(in, path, 0, 1, &r->first) == 1 ? 0 : -1;
  r->row_last = read_doubles(in, path, (hsize_t)last, 1, &r->last) == 1 ? (int)last : -1;
}

static void show_trajectory(info_file *in, long long *T_out) {
  double *steps = NULL;
  hsize_t T = 0;
  *T_out = 0;
  int e = read_all(in, ntk_schema_trajectory[NTK_TRAJ_STEP].path, &steps, &T);
  if (e <= 0 || T == 0) {
    ntk_log_raw("\ntrajectory: no measurements%s\n", e < 0 ? " (unreadable)" : "");
    free(steps);
    return;
  }
  *T_out = (long long)T;
  int rank;
  hsize_t dims[INFO_MAXDIMS];
  long long K = 0, N = 0;
  if (dset_shape(in, ntk_schema_trajectory[NTK_TRAJ_EIGENVALUES].path, &rank, dims) == 1 && rank == 2) K = (long long)dims[1];
  if (dset_shape(in, "/data/x_train", &rank, dims) == 1 && rank == 2) N = (long long)dims[0];
  else if (dset_shape(in, "/analytic/eigenvalues", &rank, dims) == 1 && rank == 1) N = (long long)dims[0];
  else if (dset_shape(in, ntk_schema_trajectory[NTK_TRAJ_NTK].path, &rank, dims) == 1 && rank == 3) N = (long long)dims[1];
  char nbuf[48] = "";
  if (N > 0) snprintf(nbuf, sizeof nbuf, " of N = %lld", N);
  ntk_log_raw("\ntrajectory: %llu measurement%s, steps %.0f .. %.0f; %lld eigenvalue%s%s per step\n",
              (unsigned long long)T, T == 1 ? "" : "s", steps[0], steps[T - 1], K, K == 1 ? "" : "s", nbuf);

  metric_row rows[80];
  int nrows = 0;
  /* the scalar series of the schema in its order; any other (T,) dataset follows */
  for (int i = 0; i < NTK_TRAJ_COUNT; ++i) {
    const ntk_series_info *s = &ntk_schema_trajectory[i];
    if ((s->kind == NTK_SERIES_SCALAR || s->kind == NTK_SERIES_INT) && i != NTK_TRAJ_STEP)
      add_metric(in, s->name, (long long)T, rows, &nrows);
  }
  static char names[64][96];
  memset(names, 0, sizeof names);
  hid_t g = H5Gopen2(in->f, "/trajectory", H5P_DEFAULT);
  if (g >= 0) {
    H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_metric, names);
    H5Gclose(g);
  }
  H5Eclear2(H5E_DEFAULT);
  for (int i = 0; names[i][0] && nrows < 70; ++i)
    if (strcmp(names[i], ntk_schema_trajectory[NTK_TRAJ_STEP].name) != 0) add_metric(in, names[i], (long long)T, rows, &nrows);

  /* distance to the infinite-width kernel, when the file has what it takes */
  double *lam_inf = NULL;
  hsize_t ninf = 0;
  int have_inf = read_all(in, "/analytic/eigenvalues", &lam_inf, &ninf) == 1;
  int r3;
  hsize_t d3[INFO_MAXDIMS], da[INFO_MAXDIMS];
  if (dset_shape(in, "/analytic/ntk", &rank, da) == 1 && rank == 2 &&
      dset_shape(in, ntk_schema_trajectory[NTK_TRAJ_NTK].path, &r3, d3) == 1 && r3 == 3 && d3[1] == da[0] && d3[2] == da[1] &&
      da[0] == da[1] && d3[0] > 0) {
    metric_row *r = &rows[nrows++];
    snprintf(r->name, sizeof r->name, "||Theta-Theta_inf||_F/||Theta_inf||_F");
    long long last = (long long)(d3[0] < T ? d3[0] : T) - 1;
    r->row_first = kernel_distance(in, 0, (long long)da[0], &r->first) ? 0 : -1;
    r->row_last = kernel_distance(in, last, (long long)da[0], &r->last) ? (int)last : -1;
  }
  if (have_inf && K > 0 && dset_shape(in, ntk_schema_trajectory[NTK_TRAJ_EIGENVALUES].path, &rank, dims) == 1 && rank == 2) {
    metric_row *r = &rows[nrows++];
    snprintf(r->name, sizeof r->name, "||lambda-lambda_inf||_2/||lambda_inf||_2");
    long long last = (long long)(dims[0] < T ? dims[0] : T) - 1;
    r->row_first = eig_error(in, lam_inf, ninf, 0, K, &r->first) ? 0 : -1;
    r->row_last = eig_error(in, lam_inf, ninf, last, K, &r->last) ? (int)last : -1;
  }
  free(lam_inf);

  if (nrows > 0) {
    char h0[48], h1[48];
    snprintf(h0, sizeof h0, "first (step %.0f)", steps[0]);
    snprintf(h1, sizeof h1, "last (step %.0f)", steps[T - 1]);
    ntk_log_raw("  %-40s %16s %16s\n", "metric", h0, h1);
    int short_rows = 0;
    for (int i = 0; i < nrows; ++i) {
      char a[32] = "-", b[40] = "-";
      if (rows[i].row_first >= 0) fmt_num(a, sizeof a, rows[i].first);
      if (rows[i].row_last >= 0) {
        fmt_num(b, sizeof b, rows[i].last);
        if (rows[i].row_last != (int)T - 1) {
          size_t len = strlen(b);
          snprintf(b + len, sizeof b - len, "*");
          short_rows = 1;
        }
      }
      ntk_log_raw("  %-40s %16s %16s\n", rows[i].name, a, b);
    }
    if (short_rows) ntk_log_raw("  * from the last row this dataset has (fewer rows than /trajectory/step)\n");
  }

  /* per-group share of the trace at the last step: which parameters make the kernel */
  if (dset_shape(in, ntk_schema_trajectory[NTK_TRAJ_LAYER_TRACE].path, &rank, dims) == 1 && rank == 2 && dims[1] >= 3 && dims[0] > 0) {
    long long G = (long long)dims[1];
    long long last = (long long)(dims[0] < T ? dims[0] : T) - 1;
    double *lt = malloc((size_t)G * sizeof *lt);
    if (lt && read_doubles(in, ntk_schema_trajectory[NTK_TRAJ_LAYER_TRACE].path, (hsize_t)(last * G), (hsize_t)G, lt) == 1) {
      double sum = 0;
      for (long long i = 0; i < G; ++i) sum += lt[i];
      if (sum > 0) {
        char line[2048];
        size_t len = (size_t)snprintf(line, sizeof line, "  trace share by parameter group (step %.0f): ", steps[last]);
        for (long long i = 0; i < G && len < sizeof line; ++i) {
          char label[32];
          if (i == 0) snprintf(label, sizeof label, "G");
          else if (i == 1) snprintf(label, sizeof label, "input");
          else if (i == G - 1) snprintf(label, sizeof label, "output");
          else snprintf(label, sizeof label, "block %lld", i - 1);
          len += (size_t)snprintf(line + len, sizeof line - len, "%s%s %.1f%%", i ? ", " : "", label, 100 * lt[i] / sum);
        }
        ntk_log_raw("%s\n", line);
      }
    }
    free(lt);
  }
  free(steps);
}

/* ---------- analytic, sweep, timing ---------- */

static herr_t print_attr(hid_t obj, const char *name, const H5A_info_t *ai, void *data) {
  (void)ai;
  const char *indent = data;
  char v[512];
  if (attr_text(obj, name, v, sizeof v) == 1) ntk_log_raw("%s%s = %s\n", indent, name, v);
  return 0;
}

static void show_group_attrs(info_file *in, const char *group, const char *title) {
  if (!has_link(in->f, group)) return;
  hid_t g = H5Gopen2(in->f, group, H5P_DEFAULT);
  if (g < 0) {
    H5Eclear2(H5E_DEFAULT);
    return;
  }
  hsize_t idx = 0;
  H5O_info_t oi;
  if (H5Oget_info(g, &oi) >= 0 && oi.num_attrs > 0) {
    ntk_log_raw("\n%s\n", title);
    H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, &idx, print_attr, "  ");
  }
  H5Eclear2(H5E_DEFAULT);
  H5Gclose(g);
}

static void show_sweep(info_file *in) {
  double *w = NULL, *dm = NULL, *dist = NULL, *eerr = NULL;
  hsize_t nw = 0, ndm = 0, nd = 0, ne = 0;
  if (read_all(in, "/sweep/widths", &w, &nw) != 1 || nw == 0) {
    free(w);
    return;
  }
  read_all(in, "/sweep/distance_mean", &dm, &ndm);
  read_all(in, "/sweep/distance", &dist, &nd);
  read_all(in, "/sweep/eigenvalue_error", &eerr, &ne);
  double *dsd = NULL;
  hsize_t nsd = 0;
  read_all(in, "/sweep/distance_std", &dsd, &nsd);
  hsize_t S = nd % nw == 0 ? nd / nw : 0;
  hsize_t Se = ne % nw == 0 ? ne / nw : 0;
  hid_t g = H5Gopen2(in->f, "/sweep", H5P_DEFAULT);
  char topk[32] = "";
  if (g >= 0) attr_text(g, "top_k", topk, sizeof topk);
  ntk_log_raw("\nwidth sweep: %llu widths x %llu seeds (distance = ||Theta-Theta_inf||_F/||Theta_inf||_F%s%s)\n",
              (unsigned long long)nw, (unsigned long long)S, topk[0] ? "; eigenvalue error over the top " : "", topk);
  ntk_log_raw("  %10s %14s %14s %16s\n", "width", "distance mean", "distance std", "eig. error mean");
  for (hsize_t i = 0; i < nw; ++i) {
    double mean = NAN, sd = NAN, em = NAN;
    if (S > 0) {
      double s = 0, s2 = 0;
      for (hsize_t j = 0; j < S; ++j) s += dist[i * S + j];
      mean = s / (double)S;
      for (hsize_t j = 0; j < S; ++j) s2 += (dist[i * S + j] - mean) * (dist[i * S + j] - mean);
      sd = S > 1 ? sqrt(s2 / (double)(S - 1)) : NAN;
    }
    if (ndm == nw) mean = dm[i];
    if (nsd == nw) sd = dsd[i];
    if (Se > 0) {
      double s = 0;
      for (hsize_t j = 0; j < Se; ++j) s += eerr[i * Se + j];
      em = s / (double)Se;
    }
    char a[32], b[32], c[32];
    fmt_num(a, sizeof a, mean);
    fmt_num(b, sizeof b, sd);
    fmt_num(c, sizeof c, em);
    ntk_log_raw("  %10.0f %14s %14s %16s\n", w[i], a, b, c);
  }
  double slope, lo, hi;
  if (g >= 0 && attr_double(g, "slope", &slope)) {
    if (attr_double(g, "slope_ci_low", &lo) && attr_double(g, "slope_ci_high", &hi))
      ntk_log_raw("  log-log slope of distance vs width: %.4g (95%% CI %.4g .. %.4g; n^-1/2 predicts -0.5)\n", slope,
                  lo, hi);
    else
      ntk_log_raw("  log-log slope of distance vs width: %.4g (n^-1/2 predicts -0.5)\n", slope);
  }
  if (g >= 0) H5Gclose(g);
  H5Eclear2(H5E_DEFAULT);
  free(w);
  free(dm);
  free(dist);
  free(eerr);
  free(dsd);
}

static void show_timing(info_file *in) {
  int rank;
  hsize_t dims[INFO_MAXDIMS];
  if (dset_shape(in, "/timing/phase", &rank, dims) != 1 || rank != 1 || dims[0] == 0) return;
  hsize_t n = dims[0];
  double *mx = NULL, *avg = NULL, *calls = NULL;
  hsize_t a = 0, b = 0, c = 0;
  read_all(in, "/timing/max", &mx, &a);
  read_all(in, "/timing/avg", &avg, &b);
  read_all(in, "/timing/calls", &calls, &c);
  hid_t d = H5Dopen2(in->f, "/timing/phase", H5P_DEFAULT);
  hid_t t = d >= 0 ? H5Dget_type(d) : -1;
  size_t sz = t >= 0 && H5Tis_variable_str(t) == 0 ? H5Tget_size(t) : 0;
  char *names = sz ? calloc(n, sz + 1) : NULL;
  hid_t mt = H5Tcopy(H5T_C_S1);
  H5Tset_size(mt, sz + 1);
  if (t >= 0) H5Tset_cset(mt, H5Tget_cset(t)); /* HDF5 converts no ASCII <-> UTF-8 */
  int ok = names && a == n && b == n && ntk_h5check_dataset_intact(d) && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) >= 0;
  H5Tclose(mt);
  if (t >= 0) H5Tclose(t);
  if (d >= 0) H5Dclose(d);
  H5Eclear2(H5E_DEFAULT);
  if (ok) {
    ntk_log_raw("\ntiming (seconds over ranks; phases that ran)\n  %-12s %10s %10s %6s\n", "phase", "avg", "max", "calls");
    for (hsize_t i = 0; i < n; ++i) {
      if (c == n && calls[i] <= 0) continue;
      ntk_log_raw("  %-12s %10.4f %10.4f %6.0f\n", names + i * (sz + 1), avg[i], mx[i], c == n ? calls[i] : NAN);
    }
  }
  free(names);
  free(mx);
  free(avg);
  free(calls);
}

/* Root attributes the sections above have not shown (written by newer modules). */
static const char *const shown_attrs[] = {NTK_ATTR_FORMAT, NTK_ATTR_FORMAT_VERSION, NTK_ATTR_VERSION, NTK_ATTR_CONFIG, NTK_ATTR_STATUS, "command_line",
                                          "mpi_size", "process_grid", "block_size", "eigensolver", "ntk_method",
                                          "seed", "library_versions", "slurm_job_id", "start_utc", "end_utc", NULL};

static herr_t other_attr(hid_t obj, const char *name, const H5A_info_t *ai, void *data) {
  (void)ai;
  int *printed = data;
  for (int i = 0; shown_attrs[i]; ++i)
    if (!strcmp(shown_attrs[i], name)) return 0;
  char v[512];
  if (attr_text(obj, name, v, sizeof v) != 1) return 0;
  if (!*printed) ntk_log_raw("\nother attributes\n");
  *printed = 1;
  char *nl = strchr(v, '\n');
  if (nl) snprintf(nl, sizeof v - (size_t)(nl - v), " ...");
  ntk_log_raw("  %s = %s\n", name, v);
  return 0;
}

/* ---------- the command ---------- */

static int info_summary(const char *asked, int print_config) {
  /* a run writes PATH.partial until it closes: asking for PATH while it runs (or after
   * it was killed) means that file */
  static char path[NTK_INFO_PATH];
  snprintf(path, sizeof path, "%s", asked);
  int redirected = 0;
  if (access(asked, F_OK) != 0 && errno == ENOENT && strlen(asked) + 9 < sizeof path) {
    snprintf(path, sizeof path, "%s.partial", asked);
    redirected = access(path, F_OK) == 0;
    if (!redirected) snprintf(path, sizeof path, "%s", asked);
  }
  info_file in = {H5I_INVALID_HID, path, 0};
  int rc = open_checked(&in, path);
  if (rc != NTK_OK) {
    if (in.f >= 0) H5Fclose(in.f);
    return rc;
  }
  ntk_log_raw("file        %s\n", path);
  if (redirected) ntk_log_raw("note        %s does not exist (yet): showing %s\n", asked, path);
  /* the number of measurements belongs in the status line: count it first */
  int rank;
  hsize_t dims[INFO_MAXDIMS];
  long long T = dset_shape(&in, ntk_schema_trajectory[NTK_TRAJ_STEP].path, &rank, dims) == 1 && rank == 1 ? (long long)dims[0] : 0;
  show_state(&in, T);
  show_provenance(&in);
  static char cfgtext[1 << 16];
  static stored_config cfg;
  cfg.n = 0;
  if (attr_text(in.f, "config", cfgtext, sizeof cfgtext) == 1) {
    cfg_read(cfgtext, &cfg);
    if (cfg.n == 0) ntk_log_raw("config      (stored configuration is not readable YAML)\n");
  }
  show_config(&in, &cfg);
  show_contents(&in);
  long long Tt = 0;
  if (has_link(in.f, "/trajectory")) show_trajectory(&in, &Tt);
  show_group_attrs(&in, "/analytic", "analytic kernel (attributes of /analytic)");
  show_sweep(&in);
  show_timing(&in);
  int printed = 0;
  hsize_t idx = 0;
  H5Aiterate2(in.f, H5_INDEX_NAME, H5_ITER_INC, &idx, other_attr, &printed);
  H5Eclear2(H5E_DEFAULT);
  if (print_config && cfgtext[0]) ntk_log_raw("\nconfiguration (as the run used it)\n%s", cfgtext);
  H5Fclose(in.f);
  if (in.unreadable > 0)
    return ntk_err_set(NTK_ERR_INPUT, "%s: %d object(s) could not be read (damaged file?)", path, in.unreadable);
  return NTK_OK;
}

static void info_usage(void) {
  ntk_log_raw(
      "usage: ntkspec info [--config] FILE.h5\n"
      "  Summarises an ntkspec result file (run or sweep; complete or partial): status,\n"
      "  provenance, configuration, dataset shapes, the first and last value of every\n"
      "  trajectory metric, distance to the infinite-width kernel when stored, timing.\n"
      "  --config   also print the full stored configuration (YAML)\n"
      "exit status: 0 summarised (a partial file too), 2 not an ntkspec file, missing or\n"
      "unreadable, bad usage.\n");
}

int ntk_app_info(int argc, char **argv) {
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  ntk_log_init(MPI_COMM_WORLD, 1);
  const char *path = NULL;
  int print_config = 0, help = 0, rc = NTK_OK;
  for (int i = 0; i < argc && rc == NTK_OK; ++i) {
    if (!strcmp(argv[i], "--config")) {
      print_config = 1;
    } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      help = 1;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      rc = ntk_err_set(NTK_ERR_INPUT, "info: unknown option '%s' (usage: ntkspec info [--config] FILE.h5)", argv[i]);
    } else if (path) {
      rc = ntk_err_set(NTK_ERR_INPUT, "info: more than one file ('%s' and '%s'); give one FILE.h5", path, argv[i]);
    } else {
      path = argv[i];
    }
  }
  if (help) {
    info_usage();
    return 0;
  }
  if (rc == NTK_OK && !path) rc = ntk_err_set(NTK_ERR_INPUT, "info: missing FILE (usage: ntkspec info [--config] FILE.h5)");
  /* the arguments are the same on every rank; only rank 0 touches the file */
  if (rc == NTK_OK && rank == 0) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    rc = info_summary(path, print_config);
  }
  MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (rc != NTK_OK) ntk_log_error_line(ntk_err_message());
  return ntk_err_exit_status(rc);
}
