/* ntk_data at any rank count and grid shape: usage  test_data ROWS COLS NB
 * (ROWS = COLS = 0 lets the grid module choose).  Synthetic sources gathered on rank 0 must
 * equal, bit for bit, the serial formulas written out again below; Fashion-MNIST is checked
 * against an independent read of the gzip IDX files; the HDF5 loader against files written
 * here.  Error cases must give NTK_ERR_INPUT on every rank.  Prints "N passed, M failed". */
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "ntk_data.h"
#include "ntk_error.h"
#include "ntk_log.h"
#include "ntk_rng.h"

static int rank, nfail, npass;
static char tmpdir[256];

#define CHECK(cond, ...)                                                     \
  do {                                                                       \
    if (cond) {                                                              \
      ++npass;                                                               \
    } else {                                                                 \
      ++nfail;                                                               \
      fprintf(stderr, "[rank %d] FAIL %s:%d: ", rank, __FILE__, __LINE__);   \
      fprintf(stderr, __VA_ARGS__);                                          \
      fputc('\n', stderr);                                                   \
    }                                                                        \
  } while (0)

static const double two_pi = 6.283185307179586476925286766559;

static void base_cfg(ntk_config *c, int source) {
  memset(c, 0, sizeof *c);
  c->seed = 20251208;
  c->data.source = source;
  c->data.n_train = 37;
  c->data.n_test = 11;
  c->data.dim = 5;
  c->data.outputs = 3;
  c->data.noise = 0.1;
}

/* ---- serial reference formulas (written independently of src/data/ntk_data.c) ---- */

static void ref_row(const ntk_config *c, int i, int test, double *x, double *y) {
  const uint64_t s = c->seed, ct = (uint64_t)test;
  const int d = c->data.dim;
  if (c->data.source == NTK_DATA_SYNTHETIC_1D) {
    x[0] = 2.0 * ntk_rng_uniform(s, NTK_STREAM_DATA_X, (uint64_t)i, 0, ct) - 1.0;
    y[0] = sin(two_pi * x[0]) + 0.5 * sin(two_pi * 8.0 * x[0]) +
           c->data.noise * ntk_rng_normal(s, NTK_STREAM_DATA_NOISE, (uint64_t)i, 0, ct);
  } else if (c->data.source == NTK_DATA_TEACHER) {
    for (int j = 0; j < d; ++j)
      x[j] = ntk_rng_normal(s, NTK_STREAM_DATA_X, (uint64_t)i, (uint64_t)j, ct) / sqrt((double)d);
    for (int o = 0; o < c->data.outputs; ++o) {
      double f = 0.0;
      for (int h = 0; h < 32; ++h) {
        double z = 0.0;
        for (int j = 0; j < d; ++j)
          z += ntk_rng_normal(s, NTK_STREAM_TEACHER, (uint64_t)h, (uint64_t)j, 0) /
               sqrt((double)d) * x[j];
        f += ntk_rng_normal(s, NTK_STREAM_TEACHER, (uint64_t)o, (uint64_t)h, 1) *
             tanh(sqrt((double)d) * z);
      }
      y[o] = f / sqrt(32.0) +
             c->data.noise * ntk_rng_normal(s, NTK_STREAM_DATA_NOISE, (uint64_t)i, (uint64_t)o, ct);
    }
  } else { /* sphere */
    double n2 = 0.0;
    for (int j = 0; j < d; ++j) {
      x[j] = ntk_rng_normal(s, NTK_STREAM_DATA_X, (uint64_t)i, (uint64_t)j, ct);
      n2 += x[j] * x[j];
    }
    for (int j = 0; j < d; ++j) x[j] /= sqrt(n2);
    y[0] = x[0] + x[0] * x[1] * sqrt((double)d) +
           c->data.noise * ntk_rng_normal(s, NTK_STREAM_DATA_NOISE, (uint64_t)i, 0, ct);
  }
}

/* Gather a distributed matrix on rank 0 (NULL elsewhere). */
static double *gather(const ntk_dmat *A) {
  double *full = NULL;
  if (ntk_dmat_gather(A, 0, &full) != NTK_OK) {
    CHECK(0, "gather failed: %s", ntk_err_message());
    return NULL;
  }
  return full;
}

static void expect_input_error(int rc, const char *what, const char *needle) {
  CHECK(rc == NTK_ERR_INPUT, "%s: expected NTK_ERR_INPUT, got %d (%s)", what, rc,
        ntk_err_message());
  if (needle)
    CHECK(strstr(ntk_err_message(), needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what,
          ntk_err_message(), needle);
  ntk_err_clear();
}

/* ---- synthetic ---- */

static void test_synthetic(const ntk_grid *g, int source) {
  ntk_config c;
  base_cfg(&c, source);
  if (source == NTK_DATA_SYNTHETIC_1D) c.data.dim = 1;
  const int d = c.data.dim, k = source == NTK_DATA_TEACHER ? c.data.outputs : 1;
  ntk_data D;
  int rc = ntk_data_load(&c, g, &D);
  CHECK(rc == NTK_OK, "synthetic %d: load failed: %s", source, ntk_err_message());
  if (rc) {
    ntk_err_clear();
    return;
  }
  CHECK(D.n_train == 37 && D.n_test == 11 && D.d == d && D.k == k && !D.classification,
        "synthetic %d: shape %d %d %d %d", source, D.n_train, D.n_test, D.d, D.k);
  int sn, st, sd, sk;
  rc = ntk_data_shape(&c, &sn, &st, &sd, &sk);
  CHECK(rc == NTK_OK && sn == 37 && st == 11 && sd == d && sk == k, "synthetic %d: shape()",
        source);
  double *xs[2] = {gather(&D.x_train), gather(&D.x_test)};
  double *ys[2] = {gather(&D.y_train), gather(&D.y_test)};
  if (rank == 0) {
    double x[16], y[16];
    for (int t = 0; t < 2; ++t) {
      int n = t ? 11 : 37, bad = 0, badnorm = 0;
      for (int i = 0; i < n; ++i) {
        ref_row(&c, i, t, x, y);
        for (int j = 0; j < d; ++j) bad += xs[t][(size_t)i * d + j] != x[j];
        for (int o = 0; o < k; ++o) bad += ys[t][(size_t)i * k + o] != y[o];
        if (source == NTK_DATA_SPHERE) {
          double n2 = 0.0;
          for (int j = 0; j < d; ++j) n2 += xs[t][(size_t)i * d + j] * xs[t][(size_t)i * d + j];
          badnorm += fabs(sqrt(n2) - 1.0) > 4e-16 * d;
        }
        if (source == NTK_DATA_SYNTHETIC_1D) bad += !(fabs(xs[t][i]) < 1.0);
      }
      CHECK(bad == 0, "synthetic %d set %d: %d entries differ from the serial formula", source, t,
            bad);
      CHECK(badnorm == 0, "sphere set %d: %d rows without unit norm", t, badnorm);
    }
    /* train and test draw different samples */
    CHECK(xs[0][0] != xs[1][0], "synthetic %d: train and test rows coincide", source);
  }
  for (int t = 0; t < 2; ++t) {
    free(xs[t]);
    free(ys[t]);
  }
  ntk_data_free(&D);
}

/* The noise-free targets are the stated functions of the stored inputs. */
static void test_noise_free(const ntk_grid *g) {
  ntk_config c;
  base_cfg(&c, NTK_DATA_SPHERE);
  c.data.noise = 0.0;
  c.data.dim = 6;
  ntk_data D;
  int rc = ntk_data_load(&c, g, &D);
  CHECK(rc == NTK_OK, "sphere noise-free: %s", ntk_err_message());
  if (rc) {
    ntk_err_clear();
    return;
  }
  double *x = gather(&D.x_train), *y = gather(&D.y_train);
  if (rank == 0) {
    int bad = 0;
    for (int i = 0; i < 37; ++i)
      bad += fabs(y[i] - (x[i * 6] + sqrt(6.0) * x[i * 6] * x[i * 6 + 1])) > 1e-15;
    CHECK(bad == 0, "sphere: %d targets are not x1 + sqrt(d) x1 x2", bad);
  }
  free(x);
  free(y);
  ntk_data_free(&D);

  base_cfg(&c, NTK_DATA_SYNTHETIC_1D);
  c.data.noise = 0.0;
  c.data.n_test = 0;
  rc = ntk_data_load(&c, g, &D);
  CHECK(rc == NTK_OK, "1d noise-free: %s", ntk_err_message());
  if (rc) {
    ntk_err_clear();
    return;
  }
  CHECK(D.x_test.a == NULL && D.n_test == 0, "n_test = 0 must leave the test set empty");
  x = gather(&D.x_train);
  y = gather(&D.y_train);
  if (rank == 0) {
    int bad = 0;
    for (int i = 0; i < 37; ++i)
      bad += fabs(y[i] - (sin(two_pi * x[i]) + 0.5 * sin(16.0 * 3.14159265358979323846 * x[i]))) >
             1e-13;
    CHECK(bad == 0, "synthetic_1d: %d targets differ from sin(2 pi x) + 0.5 sin(16 pi x)", bad);
  }
  free(x);
  free(y);
  ntk_data_free(&D);
}

static void test_synthetic_errors(const ntk_grid *g) {
  ntk_config c;
  ntk_data D;
  base_cfg(&c, NTK_DATA_SPHERE);
  c.data.dim = 1;
  expect_input_error(ntk_data_load(&c, g, &D), "sphere with d = 1", "data.dim");
  base_cfg(&c, NTK_DATA_TEACHER);
  c.data.outputs = 0;
  expect_input_error(ntk_data_load(&c, g, &D), "teacher with k = 0", "data.outputs");
  base_cfg(&c, NTK_DATA_SYNTHETIC_1D);
  c.data.n_train = 0;
  expect_input_error(ntk_data_load(&c, g, &D), "n_train = 0", "data.n_train");
  base_cfg(&c, NTK_DATA_SYNTHETIC_1D);
  c.data.noise = NAN;
  expect_input_error(ntk_data_load(&c, g, &D), "noise = NaN", "data.noise");
}

/* ---- IDX parser (local) ---- */

static void test_idx_parse(void) {
  ntk_idx idx;
  const unsigned char ok[] = {0, 0, 8, 2, 0, 0, 0, 3, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6};
  int rc = ntk_idx_parse(ok, sizeof ok, "ok", -1, NULL, &idx);
  CHECK(rc == NTK_OK && idx.ndim == 2 && idx.dims[0] == 3 && idx.dims[1] == 2 &&
            idx.item_size == 2 && idx.nitems == 3 && idx.data[5] == 6,
        "idx: valid file");
  ntk_idx_free(&idx);
  const int sel[2] = {0, 2};
  rc = ntk_idx_parse(ok, sizeof ok, "ok", 2, sel, &idx);
  CHECK(rc == NTK_OK && idx.nitems == 2 && idx.data[0] == 1 && idx.data[1] == 2 &&
            idx.data[2] == 5 && idx.data[3] == 6,
        "idx: selection");
  ntk_idx_free(&idx);
  unsigned char bad[sizeof ok];
  memcpy(bad, ok, sizeof ok);
  bad[1] = 1;
  expect_input_error(ntk_idx_parse(bad, sizeof bad, "badmagic", -1, NULL, &idx), "idx magic",
                     "badmagic: not an IDX file");
  memcpy(bad, ok, sizeof ok);
  bad[2] = 0x0d;
  expect_input_error(ntk_idx_parse(bad, sizeof bad, "float", -1, NULL, &idx), "idx type",
                     "float: IDX element type 0x0d");
  memcpy(bad, ok, sizeof ok);
  bad[3] = 0;
  expect_input_error(ntk_idx_parse(bad, sizeof bad, "rank0", -1, NULL, &idx), "idx rank",
                     "rank0");
  expect_input_error(ntk_idx_parse(ok, sizeof ok - 1, "short", -1, NULL, &idx), "idx truncated",
                     "short: truncated");
  expect_input_error(ntk_idx_parse(ok, 10, "hdr", -1, NULL, &idx), "idx truncated header",
                     "hdr: truncated IDX header");
  unsigned char longer[sizeof ok + 1];
  memcpy(longer, ok, sizeof ok);
  longer[sizeof ok] = 7;
  expect_input_error(ntk_idx_parse(longer, sizeof longer, "long", -1, NULL, &idx), "idx long",
                     "long: IDX file longer");
  /* a header claiming ~2^31 items of 10^6 bytes must fail on the data, not on malloc */
  const unsigned char huge[] = {0, 0, 8, 3, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0x03, 0xe8,
                                0, 0, 0x03, 0xe8, 1, 2, 3};
  expect_input_error(ntk_idx_parse(huge, sizeof huge, "huge", -1, NULL, &idx), "idx huge",
                     "huge: truncated");
  const unsigned char big[] = {0, 0, 8, 1, 0x80, 0, 0, 0};
  expect_input_error(ntk_idx_parse(big, sizeof big, "big", -1, NULL, &idx), "idx dim > INT_MAX",
                     "big: IDX dimension 0");
  expect_input_error(ntk_idx_parse(ok, 0, "empty", -1, NULL, &idx), "idx empty", "empty");
}

/* ---- Fashion-MNIST ---- */

static unsigned char *gz_slurp(const char *path, size_t *len) {
  gzFile f = gzopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 20, n = 0;
  unsigned char *b = malloc(cap);
  int r;
  while ((r = gzread(f, b + n, (unsigned)(cap - n))) > 0) {
    n += (size_t)r;
    if (n == cap) b = realloc(b, cap *= 2);
  }
  gzclose(f);
  *len = n;
  return b;
}

static void test_fashion(const ntk_grid *g, int standardize) {
  const char *dir = "/usr/share/datasets/fashion-mnist";
  ntk_config c;
  base_cfg(&c, NTK_DATA_FASHION_MNIST);
  c.data.n_train = 40;
  c.data.n_test = 15;
  c.data.classes[0] = 3; /* order of the list = order of the one-hot columns */
  c.data.classes[1] = 0;
  c.data.n_classes = 2;
  c.data.standardize = standardize;
  ntk_data D;
  int rc = ntk_data_load(&c, g, &D);
  CHECK(rc == NTK_OK, "fashion: load failed: %s", ntk_err_message());
  if (rc) {
    ntk_err_clear();
    return;
  }
  CHECK(D.n_train == 40 && D.n_test == 15 && D.d == 784 && D.k == 2 && D.classification,
        "fashion: shape %d %d %d %d %d", D.n_train, D.n_test, D.d, D.k, D.classification);
  double *x[2] = {gather(&D.x_train), gather(&D.x_test)};
  double *y[2] = {gather(&D.y_train), gather(&D.y_test)};
  if (rank == 0) {
    /* independent read of the files */
    double mean[784], sd[784];
    for (int t = 0; t < 2; ++t) {
      char lp[512], ip[512];
      snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", dir, t ? "t10k" : "train");
      snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", dir, t ? "t10k" : "train");
      size_t ll = 0, il = 0;
      unsigned char *lab = gz_slurp(lp, &ll), *img = gz_slurp(ip, &il);
      CHECK(lab && img && ll > 8 && il > 16, "fashion: cannot read %s / %s", lp, ip);
      if (!lab || !img) {
        free(lab);
        free(img);
        continue;
      }
      const int n = t ? 15 : 40;
      int sel[40], got = 0;
      for (size_t e = 0; e + 8 < ll && got < n; ++e)
        if (lab[8 + e] == 0 || lab[8 + e] == 3) sel[got++] = (int)e;
      CHECK(got == n, "fashion: only %d examples", got);
      double *ref = malloc((size_t)n * 784 * sizeof(double));
      for (int i = 0; i < got; ++i)
        for (int j = 0; j < 784; ++j) ref[i * 784 + j] = img[16 + (size_t)sel[i] * 784 + j] / 255.0;
      if (t == 0)
        for (int j = 0; j < 784; ++j) {
          double s = 0.0, v = 0.0;
          for (int i = 0; i < n; ++i) s += ref[i * 784 + j];
          mean[j] = s / n;
          for (int i = 0; i < n; ++i) v += (ref[i * 784 + j] - mean[j]) * (ref[i * 784 + j] - mean[j]);
          sd[j] = sqrt(v / n);
        }
      int bady = 0, badsum = 0, badx = 0;
      double maxdiff = 0.0;
      for (int i = 0; i < got; ++i) {
        int l = lab[8 + sel[i]];
        bady += y[t][i * 2 + 0] != (l == 3) || y[t][i * 2 + 1] != (l == 0);
        badsum += y[t][i * 2] + y[t][i * 2 + 1] != 1.0;
        for (int j = 0; j < 784; ++j) {
          double r = ref[i * 784 + j];
          if (standardize) r = sd[j] > 1e-8 ? (r - mean[j]) / sd[j] : 0.0;
          double diff = fabs(x[t][i * 784 + j] - r);
          if (diff > maxdiff) maxdiff = diff;
          badx += standardize ? diff > 1e-10 : diff != 0.0;
        }
      }
      CHECK(bady == 0, "fashion set %d: %d one-hot rows disagree with the label file", t, bady);
      CHECK(badsum == 0, "fashion set %d: %d one-hot rows do not sum to 1", t, badsum);
      CHECK(badx == 0, "fashion set %d: %d pixels differ (max %g)", t, badx, maxdiff);
      if (t == 0 && standardize) {
        int badmean = 0, badsd = 0, nconst = 0;
        for (int j = 0; j < 784; ++j) {
          double s = 0.0, v = 0.0;
          for (int i = 0; i < n; ++i) s += x[0][i * 784 + j];
          for (int i = 0; i < n; ++i) v += x[0][i * 784 + j] * x[0][i * 784 + j];
          badmean += fabs(s / n) > 1e-12;
          if (v == 0.0)
            ++nconst;
          else
            badsd += fabs(v / n - 1.0) > 1e-12;
        }
        CHECK(badmean == 0, "fashion: %d standardized columns without mean 0", badmean);
        CHECK(badsd == 0, "fashion: %d standardized columns without variance 1", badsd);
        /* the corner pixels of Fashion-MNIST are blank for so few images */
        CHECK(nconst > 0 && x[0][0] == 0.0, "fashion: constant pixels must become exactly 0");
      }
      free(ref);
      free(lab);
      free(img);
    }
  }
  for (int t = 0; t < 2; ++t) {
    free(x[t]);
    free(y[t]);
  }
  ntk_data_free(&D);
  int sn, st, sd2, sk;
  rc = ntk_data_shape(&c, &sn, &st, &sd2, &sk);
  CHECK(rc == NTK_OK && sn == 40 && st == 15 && sd2 == 784 && sk == 2, "fashion: shape() %s",
        ntk_err_message());
  ntk_err_clear();
}

static void write_gz(const char *path, const unsigned char *b, size_t n) {
  gzFile f = gzopen(path, "wb");
  gzwrite(f, b, (unsigned)n);
  gzclose(f);
}

static void write_fake_fashion(const char *dir, int nimg, int nimg_bytes, int nlab, int magic0) {
  char p[512];
  unsigned char lab[8 + 16] = {0, 0, 8, 1, 0, 0, 0, (unsigned char)nlab};
  lab[0] = (unsigned char)magic0;
  for (int i = 0; i < nlab; ++i) lab[8 + i] = (unsigned char)(i % 10);
  unsigned char *img = calloc(16 + (size_t)nimg * 784, 1);
  const unsigned char h[16] = {0, 0, 8, 3, 0, 0, 0, (unsigned char)nimg, 0, 0, 0, 28, 0, 0, 0, 28};
  memcpy(img, h, 16);
  for (int t = 0; t < 2; ++t) {
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte.gz", dir, t ? "t10k" : "train");
    write_gz(p, lab, 8 + (size_t)nlab);
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte.gz", dir, t ? "t10k" : "train");
    write_gz(p, img, 16 + (size_t)nimg_bytes);
  }
  free(img);
}

static void test_fashion_errors(const ntk_grid *g) {
  ntk_config c;
  ntk_data D;
  base_cfg(&c, NTK_DATA_FASHION_MNIST);
  c.data.n_train = 7000;
  c.data.n_test = 0;
  c.data.classes[0] = 0;
  c.data.n_classes = 1;
  expect_input_error(ntk_data_load(&c, g, &D), "fashion: more than 6000 of class 0",
                     "has only 6000 examples");
  c.data.n_train = 10;
  c.data.classes[1] = 11;
  c.data.n_classes = 2;
  expect_input_error(ntk_data_load(&c, g, &D), "fashion: class 11", "class 11");
  c.data.classes[1] = 0;
  expect_input_error(ntk_data_load(&c, g, &D), "fashion: duplicate class", "twice");

  char dir[300];
  snprintf(dir, sizeof dir, "%s/fake", tmpdir);
  snprintf(c.data.path, sizeof c.data.path, "%s", dir);
  c.data.n_classes = 0;
  c.data.n_train = 3;
  c.data.n_test = 2;
  /* truncated image file: header says 6 images, 5 present */
  if (rank == 0) write_fake_fashion(dir, 6, 5 * 784, 6, 0);
  MPI_Barrier(MPI_COMM_WORLD);
  expect_input_error(ntk_data_load(&c, g, &D), "fashion: truncated images",
                     "train-images-idx3-ubyte.gz: truncated");
  /* label count differs from the image count */
  if (rank == 0) write_fake_fashion(dir, 6, 6 * 784, 5, 0);
  MPI_Barrier(MPI_COMM_WORLD);
  expect_input_error(ntk_data_load(&c, g, &D), "fashion: count mismatch",
                     "train-images-idx3-ubyte.gz: 6 images, but");
  /* bad magic in the label file */
  if (rank == 0) write_fake_fashion(dir, 6, 6 * 784, 6, 1);
  MPI_Barrier(MPI_COMM_WORLD);
  expect_input_error(ntk_data_load(&c, g, &D), "fashion: bad magic",
                     "train-labels-idx1-ubyte.gz: not an IDX file");
  /* valid small files load (blank images: every pixel constant -> 0) */
  if (rank == 0) write_fake_fashion(dir, 6, 6 * 784, 6, 0);
  MPI_Barrier(MPI_COMM_WORLD);
  c.data.standardize = 1;
  int rc = ntk_data_load(&c, g, &D);
  CHECK(rc == NTK_OK, "fake fashion: %s", ntk_err_message());
  if (rc == NTK_OK) {
    CHECK(ntk_dmat_norm_fro(&D.x_train) == 0.0, "fake fashion: blank pixels must be 0");
    CHECK(fabs(ntk_dmat_norm_fro(&D.y_train) - sqrt(3.0)) < 1e-15, "fake fashion: one-hot");
    ntk_data_free(&D);
  }
  ntk_err_clear();
  c.data.n_test = 7;
  expect_input_error(ntk_data_load(&c, g, &D), "fake fashion: n_test > 6",
                     "t10k-labels-idx1-ubyte.gz has only 6");
  snprintf(c.data.path, sizeof c.data.path, "%s/nonexistent", tmpdir);
  expect_input_error(ntk_data_load(&c, g, &D), "fashion: missing folder", "cannot open");
}

/* ---- HDF5 ---- */

static double xval(int i, int j) { return i + 0.25 * j - 3.0; }
static double yval(int i, int j) { return (i * 7 + j * 3) % 11 - 5; }

static void h5_write_layout(hid_t f, const char *name, hid_t memtype, hid_t filetype, int ndim,
                            int rows, int cols, const void *buf, hid_t dcpl) {
  hsize_t dims[3] = {(hsize_t)rows, (hsize_t)cols, 2};
  hid_t sp = H5Screate_simple(ndim, dims, NULL);
  hid_t ds = H5Dcreate2(f, name, filetype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  H5Dwrite(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  H5Dclose(ds);
  H5Sclose(sp);
}

static void h5_write(hid_t f, const char *name, hid_t memtype, hid_t filetype, int ndim, int rows,
                     int cols, const void *buf) {
  h5_write_layout(f, name, memtype, filetype, ndim, rows, cols, buf, H5P_DEFAULT);
}

enum { H5_GOOD, H5_NAN, H5_INF_YTEST, H5_MISMATCH, H5_NO_Y, H5_RANK3, H5_Y1D, H5_NO_YTEST, H5_NARROW };

/* IEEE half precision as h5py stores numpy's float16 (exact for xval's test rows). */
static hid_t h5_float16(void) {
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  return t;
}

/* rank 0 writes; x (23, 4) float64, y (23, 2) int32, x_test (7, 4) float32, y_test (7, 2);
 * H5_NARROW stores y as 12-bit integers and x_test as compact float16. */
static void make_h5(const char *path, int kind) {
  if (rank == 0) {
    const int n = 23, nt = 7;
    double x[23 * 4 * 2], xt[7 * 4];
    float xtf[7 * 4];
    int y[23 * 2], yt[7 * 2];
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < 4; ++j) x[i * 4 + j] = xval(i, j);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < 2; ++j) y[i * 2 + j] = (int)yval(i, j);
    for (int i = 0; i < nt; ++i)
      for (int j = 0; j < 4; ++j) xtf[i * 4 + j] = (float)(xt[i * 4 + j] = xval(i + 100, j));
    for (int i = 0; i < nt; ++i)
      for (int j = 0; j < 2; ++j) yt[i * 2 + j] = (int)yval(i + 100, j);
    if (kind == H5_NAN) x[13 * 4 + 2] = NAN;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t ytype = H5Tcopy(H5T_STD_I32LE), xttype = H5Tcopy(H5T_IEEE_F32LE);
    if (kind == H5_NARROW) {
      H5Tclose(ytype);
      H5Tclose(xttype);
      ytype = H5Tcopy(H5T_STD_I16BE);
      H5Tset_precision(ytype, 12);
      xttype = h5_float16();
    }
    if (kind == H5_RANK3)
      h5_write(f, "x", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 3, n, 2, x);
    else
      h5_write(f, "x", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 2, n, 4, x);
    if (kind == H5_MISMATCH)
      h5_write(f, "y", H5T_NATIVE_INT, H5T_STD_I32LE, 2, n - 1, 2, y);
    else if (kind == H5_Y1D)
      h5_write(f, "y", H5T_NATIVE_INT, H5T_STD_I32LE, 1, n, 1, y);
    else if (kind != H5_NO_Y)
      h5_write(f, "y", H5T_NATIVE_INT, ytype, 2, n, 2, y);
    if (kind != H5_Y1D) {
      hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
      if (kind == H5_NARROW) H5Pset_layout(dcpl, H5D_COMPACT);
      h5_write_layout(f, "x_test", H5T_NATIVE_FLOAT, xttype, 2, nt, 4, xtf, dcpl);
      H5Pclose(dcpl);
      if (kind == H5_INF_YTEST) {
        double ytd[7 * 2];
        for (int e = 0; e < 14; ++e) ytd[e] = yt[e];
        ytd[5 * 2 + 1] = -INFINITY;
        h5_write(f, "y_test", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 2, nt, 2, ytd);
      } else if (kind != H5_NO_YTEST) {
        h5_write(f, "y_test", H5T_NATIVE_INT, H5T_STD_I32LE, 2, nt, 2, yt);
      }
    }
    H5Tclose(ytype);
    H5Tclose(xttype);
    H5Fclose(f);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

static void test_hdf5(const ntk_grid *g) {
  char path[512];
  ntk_config c;
  base_cfg(&c, NTK_DATA_HDF5);
  /* all rows and the first rows; then all rows of the file with narrow element types */
  for (int sub = 0; sub < 3; ++sub) {
    snprintf(path, sizeof path, "%s/%s.h5", tmpdir, sub < 2 ? "good" : "narrow");
    if (sub != 1) make_h5(path, sub < 2 ? H5_GOOD : H5_NARROW);
    snprintf(c.data.path, sizeof c.data.path, "%s", path);
    c.data.n_train = sub == 1 ? 10 : 0;
    c.data.n_test = sub == 1 ? 3 : 0;
    const int n = sub == 1 ? 10 : 23, nt = sub == 1 ? 3 : 7;
    ntk_data D;
    int rc = ntk_data_load(&c, g, &D);
    CHECK(rc == NTK_OK, "hdf5 load: %s", ntk_err_message());
    if (rc) {
      ntk_err_clear();
      continue;
    }
    CHECK(D.n_train == n && D.n_test == nt && D.d == 4 && D.k == 2, "hdf5 shape %d %d %d %d",
          D.n_train, D.n_test, D.d, D.k);
    int sn, st, sd, sk;
    rc = ntk_data_shape(&c, &sn, &st, &sd, &sk);
    CHECK(rc == NTK_OK && sn == n && st == nt && sd == 4 && sk == 2, "hdf5 shape()");
    double *x = gather(&D.x_train), *y = gather(&D.y_train), *xt = gather(&D.x_test),
           *yt = gather(&D.y_test);
    if (rank == 0) {
      int bad = 0;
      for (int i = 0; i < n; ++i) {
        for (int j = 0; j < 4; ++j) bad += x[i * 4 + j] != xval(i, j);
        for (int j = 0; j < 2; ++j) bad += y[i * 2 + j] != yval(i, j);
      }
      for (int i = 0; i < nt; ++i) {
        for (int j = 0; j < 4; ++j) bad += xt[i * 4 + j] != xval(i + 100, j);
        for (int j = 0; j < 2; ++j) bad += yt[i * 2 + j] != yval(i + 100, j);
      }
      CHECK(bad == 0, "hdf5: %d entries differ from the file", bad);
    }
    free(x);
    free(y);
    free(xt);
    free(yt);
    ntk_data_free(&D);
  }

  ntk_data D;
  c.data.n_train = 24;
  c.data.n_test = 0;
  expect_input_error(ntk_data_load(&c, g, &D), "hdf5 n_train > N", "data.n_train = 24");
  c.data.n_train = 0;
  c.data.n_test = 8;
  expect_input_error(ntk_data_load(&c, g, &D), "hdf5 n_test > N", "data.n_test = 8");
  c.data.n_test = 0;

  snprintf(c.data.path, sizeof c.data.path, "%s/nan.h5", tmpdir);
  make_h5(c.data.path, H5_NAN);
  expect_input_error(ntk_data_load(&c, g, &D), "hdf5 NaN", "\"x\" row 13 column 2 is NaN");
  snprintf(c.data.path, sizeof c.data.path, "%s/inf.h5", tmpdir);
  make_h5(c.data.path, H5_INF_YTEST);
  expect_input_error(ntk_data_load(&c, g, &D), "hdf5 Inf", "\"y_test\" row 5 column 1 is infinite");
  snprintf(c.data.path, sizeof c.data.path, "%s/mismatch.h5", tmpdir);
  make_h5(c.data.path, H5_MISMATCH);
  expect_input_error(ntk_data_load(&c, g, &D), "hdf5 row mismatch", "\"x\" has 23 rows but \"y\" has 22");
  snprintf(c.data.path, sizeof c.data.path, "%s/noy.h5", tmpdir);
  make_h5(c.data.path, H5_NO_Y);
  expect_input_error(ntk_data_load(&c, g, &D), "hdf5 missing y", "no dataset \"y\"");
  snprintf(c.data.path, sizeof c.data.path, "%s/rank3.h5", tmpdir);
  make_h5(c.data.path, H5_RANK3);
  expect_input_error(ntk_data_load(&c, g, &D), "hdf5 rank 3", "has rank 3");
  snprintf(c.data.path, sizeof c.data.path, "%s/noytest.h5", tmpdir);
  make_h5(c.data.path, H5_NO_YTEST);
  expect_input_error(ntk_data_load(&c, g, &D), "hdf5 x_test alone", "\"x_test\" without \"y_test\"");
  snprintf(c.data.path, sizeof c.data.path, "%s/missing.h5", tmpdir);
  expect_input_error(ntk_data_load(&c, g, &D), "hdf5 missing file", "missing.h5: cannot read");
  int sn, st, sd, sk;
  expect_input_error(ntk_data_shape(&c, &sn, &st, &sd, &sk), "hdf5 shape of missing file",
                     "missing.h5");
  snprintf(c.data.path, sizeof c.data.path, "%s/text.h5", tmpdir);
  if (rank == 0) {
    FILE *f = fopen(c.data.path, "w");
    fputs("not hdf5\n", f);
    fclose(f);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  expect_input_error(ntk_data_load(&c, g, &D), "hdf5 not a file", "not an HDF5 file");

  /* a 1-D y is one output column; no x_test means no test set */
  snprintf(c.data.path, sizeof c.data.path, "%s/y1d.h5", tmpdir);
  make_h5(c.data.path, H5_Y1D);
  int rc = ntk_data_load(&c, g, &D);
  CHECK(rc == NTK_OK && D.k == 1 && D.n_test == 0, "hdf5 1-D y: %s", ntk_err_message());
  if (rc == NTK_OK) {
    double *y = gather(&D.y_train);
    if (rank == 0) {
      int bad = 0;
      for (int i = 0; i < 23; ++i) bad += y[i] != yval(i / 2, i % 2);
      CHECK(bad == 0, "hdf5 1-D y: %d entries differ", bad);
    }
    free(y);
    ntk_data_free(&D);
  }
  ntk_err_clear();
  c.data.n_test = 2;
  expect_input_error(ntk_data_load(&c, g, &D), "hdf5 n_test without x_test", "no \"x_test\"");
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  ntk_log_init(MPI_COMM_WORLD, 0);
  int rows = argc > 1 ? atoi(argv[1]) : 0, cols = argc > 2 ? atoi(argv[2]) : 0;
  int nb = argc > 3 ? atoi(argv[3]) : 4;
  ntk_grid g;
  if (ntk_grid_create(MPI_COMM_WORLD, rows, cols, nb, &g) != NTK_OK) {
    if (rank == 0) fprintf(stderr, "grid: %s\n", ntk_err_message());
    MPI_Finalize();
    return 1;
  }
  if (rank == 0) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ntk_test_data_XXXXXX");
    if (!mkdtemp(tmpdir)) tmpdir[0] = '\0';
    char fake[300];
    snprintf(fake, sizeof fake, "%s/fake", tmpdir);
    mkdir(fake, 0700);
  }
  MPI_Bcast(tmpdir, sizeof tmpdir, MPI_CHAR, 0, MPI_COMM_WORLD);

  test_idx_parse();
  test_synthetic(&g, NTK_DATA_SYNTHETIC_1D);
  test_synthetic(&g, NTK_DATA_TEACHER);
  test_synthetic(&g, NTK_DATA_SPHERE);
  test_noise_free(&g);
  test_synthetic_errors(&g);
  test_fashion(&g, 1);
  test_fashion(&g, 0);
  test_fashion_errors(&g);
  test_hdf5(&g);

  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0 && tmpdir[0]) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  }
  int tot[2] = {npass, nfail}, all[2];
  MPI_Allreduce(tot, all, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0)
    printf("test_data on %d x %d grid, nb %d: %d passed, %d failed\n", g.nprow, g.npcol, g.nb,
           all[0], all[1]);
  ntk_grid_free(&g);
  MPI_Finalize();
  return all[1] ? 1 : 0;
}
