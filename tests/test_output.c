/* test_output: the parallel HDF5 output written from a block-cyclic grid and read back
 * with the serial HDF5 C API on rank 0, value by value.
 *
 * usage: test_output ROWS COLS NB [--keep PATH] [--crash PATH]
 *   --keep PATH   write the main file at PATH and leave it (tests/test_output_read.py
 *                 reads it with h5py; the expected values below are mirrored there)
 *   --crash PATH  append 3 flushed steps and a 4th unflushed one to PATH, then every rank
 *                 kills itself: PATH.partial must stay readable up to the last flush
 *
 * Plain checks (no cmocka): a failed check on one rank must not skip collective calls
 * that the other ranks are inside, so every check only counts, and the counts are summed
 * at the end; all ranks exit with the same status. */
#include <errno.h>
#include <hdf5.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ntk_error.h"
#include "ntk_grid.h"
#include "ntk_output.h"
#include "ntk_output_timing.h"

static int rank, nchecks, nfail;

#define CHECK(cond, ...)                                                     \
  do {                                                                       \
    ++nchecks;                                                               \
    if (!(cond)) {                                                           \
      ++nfail;                                                               \
      fprintf(stderr, "FAIL [rank %d] %s:%d: ", rank, __FILE__, __LINE__);   \
      fprintf(stderr, __VA_ARGS__);                                          \
      fputc('\n', stderr);                                                   \
    }                                                                        \
  } while (0)

#define OK(call)                                                                         \
  do {                                                                                   \
    int rc_ = (call);                                                                    \
    CHECK(rc_ == NTK_OK, "%s -> %d: %s", #call, rc_, ntk_err_message());                 \
    if (rc_ != NTK_OK) ntk_err_clear();                                                  \
  } while (0)

/* Every value is exact in binary, so the read-back compares with ==. */
static double val(double tag, int i, int j) { return tag * 1e6 + i * 1000.0 + j + 0.125; }
static double fill_fn(int i, int j, void *ctx) { return val(*(double *)ctx, i, j); }

static int exists(const char *p) { return access(p, F_OK) == 0; }

static void fill(ntk_dmat *A, double tag) { ntk_dmat_fill(A, fill_fn, &tag); }

static int write_tagged(ntk_output *o, const ntk_grid *g, const char *name, int m, int n,
                        double tag) {
  ntk_dmat A;
  NTK_CHECK(ntk_dmat_create(g, m, n, &A));
  fill(&A, tag);
  int rc = ntk_output_write_dmat(o, name, &A);
  ntk_dmat_free(&A);
  return rc;
}

static char *config_text(void) {
  /* larger than the 64 KiB an attribute can hold inline */
  size_t cap = 5000 * 24 + 1, len = 0;
  char *s = malloc(cap);
  for (int k = 0; k < 5000; ++k)
    len += (size_t)snprintf(s + len, cap - len, "key_%05d: value\n", k);
  return s;
}

/* One measurement at step t (as the driver writes it), flushed unless asked not to. */
static void append_step(ntk_output *o, const ntk_grid *g, int t, int flush) {
  OK(ntk_output_append_int(o, "/trajectory/step", 10LL * t));
  OK(ntk_output_append_scalar(o, "/trajectory/loss", 1.0 / (1 << t)));
  double row[4];
  for (int k = 0; k < 4; ++k) row[k] = 100.0 - 10.0 * t - k;
  OK(ntk_output_append_row(o, "/trajectory/eigenvalues", 4, row));
  ntk_dmat A;
  OK(ntk_dmat_create(g, 7, 5, &A));
  fill(&A, 20 + t);
  OK(ntk_output_append_dmat(o, "/trajectory/ntk", &A));
  ntk_dmat_free(&A);
  if (flush) OK(ntk_output_flush(o));
}

/* ---------- serial read-back (rank 0) ---------- */

static double *read_doubles(hid_t f, const char *name, int rank_expect, const hsize_t *dims) {
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  CHECK(d >= 0, "cannot open %s", name);
  if (d < 0) return NULL;
  hid_t sp = H5Dget_space(d);
  hsize_t cur[8];
  int r = H5Sget_simple_extent_dims(sp, cur, NULL);
  int same = r == rank_expect;
  for (int k = 0; same && k < r; ++k) same = cur[k] == dims[k];
  CHECK(same, "%s: wrong shape (rank %d, first dim %llu)", name, r,
        r > 0 ? (unsigned long long)cur[0] : 0ULL);
  double *x = NULL;
  if (same) {
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    CHECK(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0, "read %s", name);
  }
  H5Sclose(sp);
  H5Dclose(d);
  return x;
}

/* Slice `lead` (or the whole 2-D dataset when lead < 0) equals val(tag, i, j). */
static void check_matrix(hid_t f, const char *name, int count, int lead, int m, int n,
                         double tag) {
  hsize_t dims[3] = {(hsize_t)count, (hsize_t)m, (hsize_t)n};
  double *x = lead < 0 ? read_doubles(f, name, 2, dims + 1) : read_doubles(f, name, 3, dims);
  if (!x) return;
  size_t off = lead < 0 ? 0 : (size_t)lead * m * n;
  int bad = 0;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j)
      if (x[off + (size_t)i * n + j] != val(tag, i, j)) {
        if (bad++ < 3)
          fprintf(stderr, "  %s[%d](%d,%d) = %.17g, expected %.17g\n", name, lead, i, j,
                  x[off + (size_t)i * n + j], val(tag, i, j));
      }
  CHECK(bad == 0, "%s slice %d: %d wrong entries", name, lead, bad);
  free(x);
}

static char *read_str_attr(hid_t f, const char *obj, const char *name) {
  hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
  CHECK(a >= 0, "attribute %s of %s missing", name, obj);
  if (a < 0) return NULL;
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  char *s = NULL, *copy = NULL;
  CHECK(H5Aread(a, t, &s) >= 0, "read attribute %s", name);
  if (s) {
    copy = strdup(s);
    H5free_memory(s);
  }
  H5Tclose(t);
  H5Aclose(a);
  return copy;
}

static void check_str_attr(hid_t f, const char *obj, const char *name, const char *expect) {
  char *s = read_str_attr(f, obj, name);
  CHECK(s && !strcmp(s, expect), "attribute %s of %s = '%.40s', expected '%.40s'", name, obj,
        s ? s : "(null)", expect);
  free(s);
}

static void check_int_attr(hid_t f, const char *obj, const char *name, long long expect) {
  long long v = -12345;
  hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
  if (a >= 0) {
    H5Aread(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a);
  }
  CHECK(v == expect, "attribute %s of %s = %lld, expected %lld", name, obj, v, expect);
}

static void check_trajectory(hid_t f, int T) {
  hsize_t d1[1] = {(hsize_t)T}, d2[2] = {(hsize_t)T, 4};
  hid_t d = H5Dopen2(f, "/trajectory/step", H5P_DEFAULT);
  CHECK(d >= 0, "no /trajectory/step");
  if (d >= 0) {
    hid_t sp = H5Dget_space(d);
    hsize_t cur[1] = {0}, mx[1] = {0};
    H5Sget_simple_extent_dims(sp, cur, mx);
    CHECK(cur[0] == (hsize_t)T && mx[0] == H5S_UNLIMITED, "step has %llu rows, expected %d",
          (unsigned long long)cur[0], T);
    if (cur[0] == (hsize_t)T) {
      long long st[16];
      H5Dread(d, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, st);
      for (int t = 0; t < T; ++t) CHECK(st[t] == 10LL * t, "step[%d] = %lld", t, st[t]);
    }
    H5Sclose(sp);
    H5Dclose(d);
  }
  double *loss = read_doubles(f, "/trajectory/loss", 1, d1);
  for (int t = 0; loss && t < T; ++t)
    CHECK(loss[t] == 1.0 / (1 << t), "loss[%d] = %g", t, loss[t]);
  free(loss);
  double *ev = read_doubles(f, "/trajectory/eigenvalues", 2, d2);
  for (int t = 0; ev && t < T; ++t)
    for (int k = 0; k < 4; ++k)
      CHECK(ev[t * 4 + k] == 100.0 - 10.0 * t - k, "eigenvalues[%d][%d] = %g", t, k, ev[t * 4 + k]);
  free(ev);
  for (int t = 0; t < T; ++t) check_matrix(f, "/trajectory/ntk", T, t, 7, 5, 20 + t);
}

static void check_main_file(const char *path, const char *status, int T, int size) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  CHECK(f >= 0, "cannot open %s", path);
  if (f < 0) return;
  check_str_attr(f, "/", "format", "ntkspec");
  check_int_attr(f, "/", "format_version", 1);
  check_str_attr(f, "/", "version", NTK_VERSION);
  check_str_attr(f, "/", "status", status);
  char *cfg = config_text();
  check_str_attr(f, "/", "config", cfg);
  free(cfg);
  check_int_attr(f, "/", "mpi_size", size);
  double seed = 0;
  hid_t a = H5Aopen_by_name(f, "/", "seed", H5P_DEFAULT, H5P_DEFAULT);
  if (a >= 0) {
    H5Aread(a, H5T_NATIVE_DOUBLE, &seed);
    H5Aclose(a);
  }
  CHECK(seed == 0.1, "seed attribute %g", seed);
  check_str_attr(f, "/analytic", "kind", "test");
  check_int_attr(f, "/analytic", "n", 7);

  check_matrix(f, "/analytic/ntk", 0, -1, 7, 5, 1);
  check_matrix(f, "/analytic/nngp", 0, -1, 5, 7, 2);
  check_matrix(f, "/small", 0, -1, 2, 3, 3);
  check_matrix(f, "/big", 0, -1, 23, 17, 4);
  check_matrix(f, "/big2", 0, -1, 23, 17, 9);
  check_matrix(f, "/data/x_train", 0, -1, 9, 1, 5);
  check_matrix(f, "/vec", 0, -1, 1, 9, 6);
  check_matrix(f, "/re", 0, -1, 7, 5, 8);
  for (int l = 0; l < 3; ++l) check_matrix(f, "/params/step_0/W", 3, l, 7, 5, 10 + l);

  hsize_t db[2] = {2, 3}, d4[1] = {4}, d3[1] = {3};
  double *b = read_doubles(f, "/params/step_0/b", 2, db);
  for (int k = 0; b && k < 6; ++k) CHECK(b[k] == k + 0.5, "b[%d] = %g", k, b[k]);
  free(b);
  double *arr = read_doubles(f, "/arr1", 1, d4);
  const double arr_expect[4] = {1.5, -2.25, 1e300, 0.0};
  for (int k = 0; arr && k < 4; ++k) CHECK(arr[k] == arr_expect[k], "arr1[%d] = %g", k, arr[k]);
  free(arr);

  long long ints[5] = {0};
  const long long ints_expect[5] = {0, -7, 1LL << 40, 42, -(1LL << 50)};
  hid_t d = H5Dopen2(f, "/ints", H5P_DEFAULT);
  CHECK(d >= 0 && H5Dread(d, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, ints) >= 0,
        "read /ints");
  if (d >= 0) H5Dclose(d);
  for (int k = 0; k < 5; ++k) CHECK(ints[k] == ints_expect[k], "ints[%d] = %lld", k, ints[k]);

  const char *names[3] = {"alpha", "b", "gamma delta"};
  d = H5Dopen2(f, "/names", H5P_DEFAULT);
  CHECK(d >= 0, "no /names");
  if (d >= 0) {
    hid_t t = H5Dget_type(d);
    size_t w = H5Tget_size(t);
    CHECK(w == 12, "string width %zu", w);
    char buf[3 * 12 + 1] = {0};
    if (w == 12) H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    for (int k = 0; k < 3; ++k) CHECK(!strcmp(buf + 12 * k, names[k]), "names[%d]", k);
    H5Tclose(t);
    H5Dclose(d);
  }

  double *tmin = read_doubles(f, "/timing/min", 1, d3);
  double *tfl = read_doubles(f, "/timing/flops", 1, d3);
  for (int k = 0; tmin && tfl && k < 3; ++k)
    CHECK(tmin[k] == 0.5 * (k + 1) && tfl[k] == 1e9 * k, "timing row %d", k);
  free(tmin);
  free(tfl);
  d = H5Dopen2(f, "/timing/phase", H5P_DEFAULT);
  CHECK(d >= 0, "no /timing/phase");
  if (d >= 0) {
    hid_t t = H5Dget_type(d);
    char buf[64] = {0};
    size_t w = H5Tget_size(t);
    if (w * 3 < sizeof buf) H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    CHECK(!strcmp(buf, "setup") && !strcmp(buf + w, "forward") && !strcmp(buf + 2 * w, "total"),
          "timing phase names");
    H5Tclose(t);
    H5Dclose(d);
  }

  check_trajectory(f, T);
  CHECK(H5Fget_obj_count(f, H5F_OBJ_ALL) == 1, "reader leaked ids");
  H5Fclose(f);
}

/* ---------- the scenarios ---------- */

static void write_main(const ntk_grid *g, const char *path) {
  ntk_output o;
  OK(ntk_output_open(&o, g, path, 0));
  char *cfg = config_text();
  OK(ntk_output_attr_string(&o, "/", "config", cfg));
  free(cfg);
  /* PATH.partial appears only once published (its configuration written), as a run does */
  char partial[1100];
  snprintf(partial, sizeof partial, "%s.partial", path);
  if (g->rank == 0) CHECK(!exists(partial), "%s before ntk_output_publish", partial);
  OK(ntk_output_publish(&o));
  if (g->rank == 0) CHECK(exists(partial), "%s after ntk_output_publish", partial);
  OK(ntk_output_attr_int(&o, NULL, "mpi_size", g->size));
  OK(ntk_output_attr_double(&o, "/", "seed", 0.1));
  OK(ntk_output_attr_string(&o, "/analytic", "kind", "test"));
  OK(ntk_output_attr_int(&o, "/analytic", "n", 7));

  OK(write_tagged(&o, g, "/analytic/ntk", 7, 5, 1));
  OK(write_tagged(&o, g, "/analytic/nngp", 5, 7, 2));
  OK(write_tagged(&o, g, "/small", 2, 3, 3)); /* some ranks own nothing */
  ntk_output_set_write_buffer(1);              /* one block row per collective round */
  OK(write_tagged(&o, g, "/big", 23, 17, 4));
  ntk_output_set_write_buffer(1000); /* several block rows per round, a short last one */
  OK(write_tagged(&o, g, "/big2", 23, 17, 9));
  ntk_output_set_write_buffer((size_t)64 << 20);
  OK(write_tagged(&o, g, "/data/x_train", 9, 1, 5));
  OK(write_tagged(&o, g, "/vec", 1, 9, 6));
  OK(write_tagged(&o, g, "/re", 5, 7, 7));
  OK(write_tagged(&o, g, "/re", 7, 5, 8)); /* another shape: replaced */

  ntk_dmat W;
  OK(ntk_dmat_create(g, 7, 5, &W));
  const int order[3] = {2, 0, 1};
  for (int k = 0; k < 3; ++k) {
    fill(&W, 10 + order[k]);
    OK(ntk_output_write_dmat_slice(&o, "/params/step_0/W", 3, order[k], &W));
  }
  ntk_dmat_free(&W);

  double b[6];
  for (int k = 0; k < 6; ++k) b[k] = k + 0.5;
  const long long db[2] = {2, 3}, d4[1] = {4};
  OK(ntk_output_write_array(&o, "/params/step_0/b", 2, db, b));
  const double arr[4] = {1.5, -2.25, 1e300, 0.0};
  OK(ntk_output_write_array(&o, "/arr1", 1, d4, arr));
  const long long ints[5] = {0, -7, 1LL << 40, 42, -(1LL << 50)};
  OK(ntk_output_write_int_array(&o, "/ints", 5, ints));
  const char *names[3] = {"alpha", "b", "gamma delta"};
  OK(ntk_output_write_strings(&o, "/names", 3, names));

  for (int t = 0; t < 3; ++t) append_step(&o, g, t, 1);
  CHECK(o.nsteps == 3, "nsteps = %lld after 3 appends", o.nsteps);
  long long rows = -1;
  OK(ntk_output_rows(&o, "/trajectory/ntk", &rows));
  CHECK(rows == 3, "rows of /trajectory/ntk = %lld", rows);
  OK(ntk_output_rows(&o, "/nothing/here", &rows));
  CHECK(rows == 0, "rows of a missing dataset = %lld", rows);

  ntk_timer_stat st[3] = {
      {.name = "setup", .min = 0.5, .avg = 1, .max = 2, .flops = 0, .calls = 1},
      {.name = "forward", .min = 1.0, .avg = 2, .max = 3, .flops = 1e9, .calls = 2},
      {.name = "total", .min = 1.5, .avg = 3, .max = 4, .flops = 2e9, .calls = 3}};
  OK(ntk_output_write_timing(&o, st, 3));
  CHECK(exists(o.partial), "%s missing while open", o.partial);
  OK(ntk_output_close(&o, "complete"));
  OK(ntk_output_close(&o, "complete")); /* closing twice is harmless */
}

static void resume_main(const ntk_grid *g, const char *path, const char *partial) {
  ntk_output o;
  OK(ntk_output_reopen(&o, g, path));
  if (g->rank == 0)
    CHECK(!exists(path) && exists(partial), "a resumed file must be %s only", partial);
  CHECK(o.nsteps == 3, "nsteps = %lld after reopen", o.nsteps);
  /* a step appended and then dropped, as a resume from an earlier step does */
  append_step(&o, g, 3, 0);
  const char *traj[4] = {"/trajectory/step", "/trajectory/loss", "/trajectory/eigenvalues",
                         "/trajectory/ntk"};
  for (int k = 0; k < 4; ++k) OK(ntk_output_truncate(&o, traj[k], 3));
  CHECK(o.nsteps == 3, "nsteps = %lld after truncate", o.nsteps);
  append_step(&o, g, 3, 1);
  CHECK(o.nsteps == 4, "nsteps = %lld after resumed append", o.nsteps);
  OK(ntk_output_close(&o, "interrupted"));
}

static void expect_input_error(int rc, const char *what, const char *needle) {
  CHECK(rc == NTK_ERR_INPUT, "%s: code %d, expected NTK_ERR_INPUT (%s)", what, rc,
        ntk_err_message());
  CHECK(strstr(ntk_err_message(), needle) != NULL, "%s: message '%s' lacks '%s'", what,
        ntk_err_message(), needle);
  ntk_err_clear();
}

static void error_cases(const ntk_grid *g, const char *dir, const char *path) {
  char p[1100], q[1100];
  ntk_output o;

  expect_input_error(ntk_output_open(&o, g, path, 0), "existing file",
                     "exists (set output.overwrite: true)");
  CHECK(o.file < 0, "failed open left a file id");
  OK(ntk_output_close(&o, "failed")); /* safe on a failed open */
  if (g->rank == 0) CHECK(exists(path), "a refused open must not touch %s", path);
  MPI_Barrier(g->comm);

  snprintf(p, sizeof p, "%s/no_such_folder/x.h5", dir);
  snprintf(q, sizeof q, "%s/no_such_folder", dir);
  expect_input_error(ntk_output_open(&o, g, p, 1), "missing folder", q);

  snprintf(p, sizeof p, "%s/absent.h5", dir);
  expect_input_error(ntk_output_reopen(&o, g, p), "resume without a file", "nothing to resume");

  /* a failed run with overwrite: the earlier complete file goes, only .partial stays */
  snprintf(p, sizeof p, "%s/f.h5", dir);
  snprintf(q, sizeof q, "%s/f.h5.partial", dir);
  OK(ntk_output_open(&o, g, p, 0));
  OK(write_tagged(&o, g, "/a", 3, 4, 30));
  OK(ntk_output_close(&o, "complete"));
  OK(ntk_output_open(&o, g, p, 1));
  OK(ntk_output_publish(&o));
  if (g->rank == 0) CHECK(!exists(p), "overwrite must remove the old %s", p);
  OK(write_tagged(&o, g, "/a", 3, 4, 31));
  OK(ntk_output_close(&o, "failed"));
  if (g->rank == 0) {
    CHECK(!exists(p) && exists(q), "a failed run must leave only %s", q);
    hid_t f = H5Fopen(q, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0, "cannot open %s", q);
    if (f >= 0) {
      check_str_attr(f, "/", "status", "failed");
      check_matrix(f, "/a", 0, -1, 3, 4, 31);
      H5Fclose(f);
    }
  }
  MPI_Barrier(g->comm);
  /* resume picks up the .partial of the failed run */
  OK(ntk_output_reopen(&o, g, p));
  CHECK(o.nsteps == 0, "nsteps %lld without a trajectory", o.nsteps);
  OK(ntk_output_close(&o, "complete"));
  if (g->rank == 0) CHECK(exists(p) && !exists(q), "resumed run must end as %s", p);

  /* a stale .partial from a crashed run is replaced */
  snprintf(p, sizeof p, "%s/s.h5", dir);
  snprintf(q, sizeof q, "%s/s.h5.partial", dir);
  if (g->rank == 0) {
    FILE *fp = fopen(q, "w");
    fputs("junk", fp);
    fclose(fp);
  }
  MPI_Barrier(g->comm);
  OK(ntk_output_open(&o, g, p, 0));
  OK(ntk_output_close(&o, "complete"));
  if (g->rank == 0) CHECK(exists(p) && !exists(q) && H5Fis_hdf5(p) > 0, "stale partial");

  /* resume refuses files that are not ours */
  snprintf(p, sizeof p, "%s/plain.h5", dir);
  if (g->rank == 0) {
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
  }
  MPI_Barrier(g->comm);
  expect_input_error(ntk_output_reopen(&o, g, p), "foreign HDF5 file", "not an ntkspec file");
  if (g->rank == 0) CHECK(exists(p), "a refused resume must give %s its name back", p);
  snprintf(p, sizeof p, "%s/text.h5", dir);
  if (g->rank == 0) {
    FILE *fp = fopen(p, "w");
    fputs("not hdf5", fp);
    fclose(fp);
  }
  MPI_Barrier(g->comm);
  expect_input_error(ntk_output_reopen(&o, g, p), "text file", "cannot open");
  if (g->rank == 0) CHECK(exists(p), "a refused resume must give %s its name back", p);
}

static void crash_run(const ntk_grid *g, const char *path) {
  ntk_output o;
  OK(ntk_output_open(&o, g, path, 1));
  OK(ntk_output_attr_string(&o, "/", "config", "crash test"));
  OK(ntk_output_publish(&o));
  for (int t = 0; t < 3; ++t) append_step(&o, g, t, 1);
  append_step(&o, g, 3, 0);
  MPI_Barrier(g->comm);
  fflush(NULL);
  raise(SIGKILL);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc < 4) {
    if (rank == 0)
      fprintf(stderr, "usage: test_output ROWS COLS NB [--keep PATH] [--crash PATH]\n");
    MPI_Finalize();
    return 2;
  }
  int rows = atoi(argv[1]), cols = atoi(argv[2]), nb = atoi(argv[3]);
  const char *keep = NULL, *crash = NULL;
  for (int k = 4; k + 1 < argc; k += 2) {
    if (!strcmp(argv[k], "--keep")) keep = argv[k + 1];
    if (!strcmp(argv[k], "--crash")) crash = argv[k + 1];
  }
  ntk_grid g;
  if (ntk_grid_create(MPI_COMM_WORLD, rows, cols, nb, &g) != NTK_OK) {
    if (rank == 0) fprintf(stderr, "grid: %s\n", ntk_err_message());
    MPI_Finalize();
    return 2;
  }
  if (crash) crash_run(&g, crash);

  char dir[64] = "/tmp/ntk_output_XXXXXX";
  if (rank == 0 && !mkdtemp(dir)) {
    perror("mkdtemp");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
  char path[1024], partial[1040];
  if (keep)
    snprintf(path, sizeof path, "%s", keep);
  else
    snprintf(path, sizeof path, "%s/out.h5", dir);
  snprintf(partial, sizeof partial, "%s.partial", path);
  if (rank == 0 && keep) {
    unlink(path);
    unlink(partial);
  }
  MPI_Barrier(MPI_COMM_WORLD);

  write_main(&g, path);
  if (rank == 0) {
    CHECK(exists(path) && !exists(partial), "after close: %s must exist, .partial not", path);
    check_main_file(path, "complete", 3, size);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  resume_main(&g, path, partial);
  if (rank == 0) {
    CHECK(exists(path) && !exists(partial), "after resumed close: %s must exist", path);
    check_main_file(path, "interrupted", 4, size);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  error_cases(&g, dir, path);
  MPI_Barrier(MPI_COMM_WORLD);

  if (rank == 0) {
    const char *files[] = {"out.h5", "f.h5", "s.h5", "plain.h5", "text.h5"};
    char p[1100];
    for (size_t k = 0; k < sizeof files / sizeof *files; ++k) {
      snprintf(p, sizeof p, "%s/%s", dir, files[k]);
      unlink(p);
    }
    if (rmdir(dir) != 0) fprintf(stderr, "warning: %s left behind (%s)\n", dir, strerror(errno));
  }
  /* every file, group, dataset, attribute and named type the module opened is closed */
  ssize_t left = H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL);
  CHECK(left == 0, "%zd HDF5 object ids still open at the end", left);
  int tot[2], mine[2] = {nchecks, nfail};
  MPI_Allreduce(mine, tot, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0)
    printf("test_output %d ranks (%d x %d, nb %d): %d checks, %d passed, %d failed\n", size,
           g.nprow, g.npcol, nb, tot[0], tot[0] - tot[1], tot[1]);
  ntk_grid_free(&g);
  MPI_Finalize();
  return tot[1] ? 1 : 0;
}
