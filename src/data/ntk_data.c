#include "ntk_data.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>
#include <zlib.h>

#include "ntk_error.h"
#include "ntk_h5check.h"
#include "ntk_log.h"
#include "ntk_rng.h"
#include "ntk_size.h"

#define FMNIST_SIDE 28
#define FMNIST_CLASSES 10
#define TEACHER_WIDTH 32

static const double two_pi = 6.283185307179586476925286766559;

/* ------------------------------------------------------------------------------------ */
/* IDX reader                                                                            */

typedef struct {
  gzFile gz;                /* NULL: read from buf */
  const unsigned char *buf;
  size_t len, pos;
  const char *name;
  size_t consumed;          /* bytes read so far, for the truncation message */
} idx_src;

/* Up to n bytes; fewer only at the end of the data. -1 on a broken stream (error set). */
static long long src_read(idx_src *s, unsigned char *dst, size_t n) {
  size_t got = 0;
  if (s->gz) {
    while (got < n) {
      size_t want = n - got;
      unsigned chunk = want > (1u << 30) ? (1u << 30) : (unsigned)want;
      int r = gzread(s->gz, dst + got, chunk);
      if (r < 0) {
        int zerr = 0;
        const char *m = gzerror(s->gz, &zerr);
        ntk_err_set(NTK_ERR_INPUT, "%s: corrupt or truncated gzip data after %zu bytes (%s)",
                    s->name, s->consumed + got, m ? m : "zlib error");
        return -1;
      }
      if (r == 0) break;
      got += (size_t)r;
    }
  } else {
    got = s->len - s->pos < n ? s->len - s->pos : n;
    memcpy(dst, s->buf + s->pos, got);
    s->pos += got;
  }
  s->consumed += got;
  return (long long)got;
}

static int idx_truncated(const idx_src *s, const ntk_idx *idx) {
  return ntk_err_set(NTK_ERR_INPUT,
                     "%s: truncated IDX file: the header promises %d items of %zu bytes, the "
                     "data end after %zu bytes",
                     s->name, idx->dims[0], idx->item_size, s->consumed);
}

/* Read (and drop, unless dst) n bytes, in chunks so that a lying header costs no memory. */
static int src_consume(idx_src *s, const ntk_idx *idx, size_t n, unsigned char *dst) {
  unsigned char scratch[65536];
  while (n > 0) {
    size_t chunk = n < sizeof scratch ? n : sizeof scratch;
    long long got = src_read(s, dst ? dst : scratch, chunk);
    if (got < 0) return NTK_ERR_INPUT;
    if ((size_t)got < chunk) return idx_truncated(s, idx);
    if (dst) dst += chunk;
    n -= chunk;
  }
  return NTK_OK;
}

static int idx_header(idx_src *s, ntk_idx *idx) {
  unsigned char hdr[4 + 4 * 4];
  long long got = src_read(s, hdr, 4);
  if (got < 0) return NTK_ERR_INPUT;
  if (got < 4)
    return ntk_err_set(NTK_ERR_INPUT, "%s: not an IDX file (only %lld bytes)", s->name, got);
  if (hdr[0] != 0 || hdr[1] != 0)
    return ntk_err_set(NTK_ERR_INPUT, "%s: not an IDX file (magic bytes %02x %02x %02x %02x)",
                       s->name, hdr[0], hdr[1], hdr[2], hdr[3]);
  if (hdr[2] != 0x08)
    return ntk_err_set(NTK_ERR_INPUT,
                       "%s: IDX element type 0x%02x is not supported (only unsigned bytes, 0x08)",
                       s->name, hdr[2]);
  if (hdr[3] < 1 || hdr[3] > 4)
    return ntk_err_set(NTK_ERR_INPUT, "%s: IDX rank %d is not supported (1 to 4)", s->name,
                       hdr[3]);
  idx->ndim = hdr[3];
  got = src_read(s, hdr + 4, 4 * (size_t)idx->ndim);
  if (got < 0) return NTK_ERR_INPUT;
  if (got < 4 * idx->ndim)
    return ntk_err_set(NTK_ERR_INPUT, "%s: truncated IDX header (%d dimensions, %lld bytes)",
                       s->name, idx->ndim, got);
  idx->item_size = 1;
  for (int k = 0; k < idx->ndim; ++k) {
    const unsigned char *b = hdr + 4 + 4 * k;
    uint32_t v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    if (v > INT_MAX)
      return ntk_err_set(NTK_ERR_INPUT, "%s: IDX dimension %d is %u, too large", s->name, k, v);
    if (k > 0 && v == 0)
      return ntk_err_set(NTK_ERR_INPUT, "%s: IDX dimension %d is 0", s->name, k);
    idx->dims[k] = (int)v;
    if (k > 0) {
      idx->item_size *= v;
      if (idx->item_size > ((size_t)1 << 30))
        return ntk_err_set(NTK_ERR_INPUT, "%s: IDX items of more than 2^30 bytes", s->name);
    }
  }
  return NTK_OK;
}

static int idx_body(idx_src *s, int nsel, const int *items, ntk_idx *idx) {
  const int nall = idx->dims[0];
  if (!items) nsel = nall;
  for (int t = 0; items && t < nsel; ++t)
    if (items[t] < 0 || items[t] >= nall || (t > 0 && items[t] <= items[t - 1]))
      return ntk_err_set(NTK_ERR_INTERNAL, "%s: IDX item selection not increasing in [0, %d)",
                         s->name, nall);
  /* The buffer grows with the data that really arrive (a header may lie). */
  size_t cap = 0, used = 0;
  int next = 0; /* next file item to read */
  for (int t = 0; t < nsel; ++t) {
    int it = items ? items[t] : t;
    int rc = src_consume(s, idx, (size_t)(it - next) * idx->item_size, NULL);
    if (rc) return rc;
    if (used + idx->item_size > cap) {
      size_t want = cap ? 2 * cap : (idx->item_size > 65536 ? idx->item_size : 65536);
      size_t need = (size_t)nsel * idx->item_size;
      if (want > need) want = need;
      if (want < used + idx->item_size) want = used + idx->item_size;
      unsigned char *p = realloc(idx->data, want);
      if (!p) return ntk_err_set(NTK_ERR_MEMORY, "%s: out of memory for IDX data", s->name);
      idx->data = p;
      cap = want;
    }
    rc = src_consume(s, idx, idx->item_size, idx->data + used);
    if (rc) return rc;
    used += idx->item_size;
    idx->nitems = t + 1;
    next = it + 1;
  }
  int rc = src_consume(s, idx, (size_t)(nall - next) * idx->item_size, NULL);
  if (rc) return rc;
  unsigned char extra;
  long long got = src_read(s, &extra, 1);
  if (got < 0) return NTK_ERR_INPUT;
  if (got > 0)
    return ntk_err_set(NTK_ERR_INPUT,
                       "%s: IDX file longer than its header says (%d items of %zu bytes)",
                       s->name, nall, idx->item_size);
  return NTK_OK;
}

void ntk_idx_free(ntk_idx *idx) {
  free(idx->data);
  memset(idx, 0, sizeof *idx);
}

int ntk_idx_parse(const unsigned char *buf, size_t len, const char *name, int nsel,
                  const int *items, ntk_idx *idx) {
  memset(idx, 0, sizeof *idx);
  idx_src s = {.buf = buf, .len = len, .name = name ? name : "<memory>"};
  int rc = idx_header(&s, idx);
  if (!rc) rc = idx_body(&s, nsel, items, idx);
  if (rc) ntk_idx_free(idx);
  return rc;
}

static int idx_open(const char *path, idx_src *s) {
  memset(s, 0, sizeof *s);
  s->name = path;
  errno = 0;
  s->gz = gzopen(path, "rb");
  if (!s->gz)
    return ntk_err_set(NTK_ERR_INPUT, "%s: cannot open (%s)", path,
                       errno ? strerror(errno) : "out of memory");
  gzbuffer(s->gz, 1 << 17);
  return NTK_OK;
}

int ntk_idx_read(const char *path, int nsel, const int *items, ntk_idx *idx) {
  memset(idx, 0, sizeof *idx);
  idx_src s;
  NTK_CHECK(idx_open(path, &s));
  int rc = idx_header(&s, idx);
  if (!rc) rc = idx_body(&s, nsel, items, idx);
  gzclose(s.gz);
  if (rc) ntk_idx_free(idx);
  return rc;
}

int ntk_idx_read_header(const char *path, ntk_idx *idx) {
  memset(idx, 0, sizeof *idx);
  idx_src s;
  NTK_CHECK(idx_open(path, &s));
  int rc = idx_header(&s, idx);
  gzclose(s.gz);
  return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Synthetic sources                                                                     */

typedef struct {
  const ntk_config *cfg;
  int source, d, k;
  double *teacher_w; /* TEACHER_WIDTH x d, row-major */
  double *teacher_a; /* k x TEACHER_WIDTH */
} synth_ctx;

/* x row and y row of sample i (test = 0 train, 1 test): the whole definition of the data. */
static void synth_row(const synth_ctx *s, int i, int test, double *x, double *y) {
  const uint64_t seed = s->cfg->seed, c = (uint64_t)test;
  const double noise = s->cfg->data.noise;
  const int d = s->d;
  switch (s->source) {
    case NTK_DATA_SYNTHETIC_1D: {
      x[0] = 2.0 * ntk_rng_uniform(seed, NTK_STREAM_DATA_X, (uint64_t)i, 0, c) - 1.0;
      y[0] = sin(two_pi * x[0]) + 0.5 * sin(two_pi * 8.0 * x[0]) +
             noise * ntk_rng_normal(seed, NTK_STREAM_DATA_NOISE, (uint64_t)i, 0, c);
      break;
    }
    case NTK_DATA_TEACHER: {
      const double sd = sqrt((double)d);
      for (int j = 0; j < d; ++j)
        x[j] = ntk_rng_normal(seed, NTK_STREAM_DATA_X, (uint64_t)i, (uint64_t)j, c) / sd;
      double h[TEACHER_WIDTH];
      for (int u = 0; u < TEACHER_WIDTH; ++u) {
        double z = 0.0;
        for (int j = 0; j < d; ++j) z += s->teacher_w[(size_t)u * d + j] * x[j];
        h[u] = tanh(sd * z);
      }
      for (int o = 0; o < s->k; ++o) {
        double f = 0.0;
        for (int u = 0; u < TEACHER_WIDTH; ++u) f += s->teacher_a[(size_t)o * TEACHER_WIDTH + u] * h[u];
        y[o] = f / sqrt((double)TEACHER_WIDTH) +
               noise * ntk_rng_normal(seed, NTK_STREAM_DATA_NOISE, (uint64_t)i, (uint64_t)o, c);
      }
      break;
    }
    case NTK_DATA_SPHERE: {
      double nrm2 = 0.0;
      for (int j = 0; j < d; ++j) {
        x[j] = ntk_rng_normal(seed, NTK_STREAM_DATA_X, (uint64_t)i, (uint64_t)j, c);
        nrm2 += x[j] * x[j];
      }
      const double nrm = sqrt(nrm2);
      for (int j = 0; j < d; ++j) x[j] /= nrm;
      y[0] = x[0] + x[0] * x[1] * sqrt((double)d) +
             noise * ntk_rng_normal(seed, NTK_STREAM_DATA_NOISE, (uint64_t)i, 0, c);
      break;
    }
  }
}

static const char *source_name(int source) {
  switch (source) {
    case NTK_DATA_SYNTHETIC_1D: return "synthetic_1d";
    case NTK_DATA_TEACHER: return "teacher";
    case NTK_DATA_SPHERE: return "sphere";
    case NTK_DATA_FASHION_MNIST: return "fashion_mnist";
    case NTK_DATA_HDF5: return "hdf5";
  }
  return "?";
}

static int check_counts(const ntk_config *cfg) {
  if (cfg->data.n_train < 1)
    return ntk_err_set(NTK_ERR_INPUT, "data.n_train: must be >= 1 for data.source: %s, got %d",
                       source_name(cfg->data.source), cfg->data.n_train);
  if (cfg->data.n_test < 0)
    return ntk_err_set(NTK_ERR_INPUT, "data.n_test: must be >= 0, got %d", cfg->data.n_test);
  return NTK_OK;
}

static int synth_shape(const ntk_config *cfg, int *d, int *k) {
  NTK_CHECK(check_counts(cfg));
  if (!isfinite(cfg->data.noise) || cfg->data.noise < 0.0)
    return ntk_err_set(NTK_ERR_INPUT, "data.noise: must be a finite number >= 0, got %g",
                       cfg->data.noise);
  *d = 1;
  *k = 1;
  if (cfg->data.source == NTK_DATA_SYNTHETIC_1D) return NTK_OK;
  *d = cfg->data.dim;
  const int dmin = cfg->data.source == NTK_DATA_SPHERE ? 2 : 1;
  if (*d < dmin)
    return ntk_err_set(NTK_ERR_INPUT, "data.dim: must be >= %d for data.source: %s, got %d",
                       dmin, source_name(cfg->data.source), *d);
  if (cfg->data.source == NTK_DATA_TEACHER) {
    *k = cfg->data.outputs;
    if (*k < 1)
      return ntk_err_set(NTK_ERR_INPUT, "data.outputs: must be >= 1, got %d", *k);
  }
  return NTK_OK;
}

static void fill_rows(const synth_ctx *s, int test, ntk_dmat *X, ntk_dmat *Y, double *x,
                      double *y) {
  for (int il = 0; il < X->mloc; ++il) {
    int i = ntk_dmat_row_l2g(X, il);
    synth_row(s, i, test, x, y);
    for (int jl = 0; jl < X->nloc; ++jl) X->a[il + (size_t)jl * X->lld] = x[ntk_dmat_col_l2g(X, jl)];
    for (int jl = 0; jl < Y->nloc; ++jl) Y->a[il + (size_t)jl * Y->lld] = y[ntk_dmat_col_l2g(Y, jl)];
  }
}

static int alloc_sets(const ntk_grid *g, ntk_data *D) {
  int rc = ntk_dmat_create(g, D->n_train, D->d, &D->x_train);
  if (!rc) rc = ntk_dmat_create(g, D->n_train, D->k, &D->y_train);
  if (!rc && D->n_test > 0) rc = ntk_dmat_create(g, D->n_test, D->d, &D->x_test);
  if (!rc && D->n_test > 0) rc = ntk_dmat_create(g, D->n_test, D->k, &D->y_test);
  return ntk_err_sync(g->comm, rc);
}

static int load_synthetic(const ntk_config *cfg, const ntk_grid *g, ntk_data *D) {
  NTK_CHECK(synth_shape(cfg, &D->d, &D->k));
  D->n_train = cfg->data.n_train;
  D->n_test = cfg->data.n_test;
  NTK_CHECK(alloc_sets(g, D));
  synth_ctx s = {.cfg = cfg, .source = cfg->data.source, .d = D->d, .k = D->k};
  double *x = NULL, *y = NULL;
  int rc = NTK_OK;
  x = ntk_malloc((size_t)D->d * sizeof(double), "a data row");
  y = ntk_malloc((size_t)D->k * sizeof(double), "a target row");
  if (!x || !y) rc = NTK_ERR_MEMORY;
  if (!rc && s.source == NTK_DATA_TEACHER) {
    /* every rank builds the whole (small) teacher: it is a pure function of the seed */
    s.teacher_w = ntk_malloc((size_t)TEACHER_WIDTH * D->d * sizeof(double), "teacher weights");
    s.teacher_a = ntk_malloc((size_t)TEACHER_WIDTH * D->k * sizeof(double), "teacher weights");
    if (!s.teacher_w || !s.teacher_a) {
      rc = NTK_ERR_MEMORY;
    } else {
      const double sd = sqrt((double)D->d);
      for (int u = 0; u < TEACHER_WIDTH; ++u)
        for (int j = 0; j < D->d; ++j)
          s.teacher_w[(size_t)u * D->d + j] =
              ntk_rng_normal(cfg->seed, NTK_STREAM_TEACHER, (uint64_t)u, (uint64_t)j, 0) / sd;
      for (int o = 0; o < D->k; ++o)
        for (int u = 0; u < TEACHER_WIDTH; ++u)
          s.teacher_a[(size_t)o * TEACHER_WIDTH + u] =
              ntk_rng_normal(cfg->seed, NTK_STREAM_TEACHER, (uint64_t)o, (uint64_t)u, 1);
    }
  }
  if (!rc) {
    fill_rows(&s, 0, &D->x_train, &D->y_train, x, y);
    if (D->n_test > 0) fill_rows(&s, 1, &D->x_test, &D->y_test, x, y);
  }
  free(x);
  free(y);
  free(s.teacher_w);
  free(s.teacher_a);
  NTK_CHECK(ntk_err_sync(g->comm, rc));
  if (s.source == NTK_DATA_SYNTHETIC_1D)
    snprintf(D->description, sizeof D->description,
             "synthetic_1d: sin(2 pi x) + 0.5 sin(16 pi x), x ~ U(-1, 1), noise %g",
             cfg->data.noise);
  else if (s.source == NTK_DATA_TEACHER)
    snprintf(D->description, sizeof D->description,
             "teacher: tanh two-layer teacher (width %d), x ~ N(0, I/%d), %d outputs, noise %g",
             TEACHER_WIDTH, D->d, D->k, cfg->data.noise);
  else
    snprintf(D->description, sizeof D->description,
             "sphere: x uniform on S^%d, y = x1 + sqrt(d) x1 x2, noise %g", D->d - 1,
             cfg->data.noise);
  return NTK_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Fashion-MNIST                                                                         */

typedef struct {
  char dir[NTK_PATH_MAX];
  int classes[FMNIST_CLASSES];
  int ncls;
} fmnist_spec;

static int fmnist_spec_make(const ntk_config *cfg, fmnist_spec *f) {
  memset(f, 0, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "%s", cfg->data.path[0] ? cfg->data.path : NTK_FASHION_MNIST_DIR);
  size_t len = strlen(f->dir);
  if (len > 1 && f->dir[len - 1] == '/') f->dir[len - 1] = '\0';
  if (cfg->data.n_classes < 0 || cfg->data.n_classes > FMNIST_CLASSES)
    return ntk_err_set(NTK_ERR_INPUT, "data.classes: %d classes given, Fashion-MNIST has %d",
                       cfg->data.n_classes, FMNIST_CLASSES);
  if (cfg->data.n_classes == 0) {
    f->ncls = FMNIST_CLASSES;
    for (int c = 0; c < FMNIST_CLASSES; ++c) f->classes[c] = c;
    return NTK_OK;
  }
  f->ncls = cfg->data.n_classes;
  for (int c = 0; c < f->ncls; ++c) {
    int v = cfg->data.classes[c];
    if (v < 0 || v >= FMNIST_CLASSES)
      return ntk_err_set(NTK_ERR_INPUT, "data.classes: class %d is not a Fashion-MNIST label (0 to 9)",
                         v);
    for (int e = 0; e < c; ++e)
      if (f->classes[e] == v)
        return ntk_err_set(NTK_ERR_INPUT, "data.classes: class %d is listed twice", v);
    f->classes[c] = v;
  }
  return NTK_OK;
}

static void fmnist_path(const fmnist_spec *f, int test, int images, char *out, size_t len) {
  snprintf(out, len, "%s/%s-%s-idx%d-ubyte.gz", f->dir, test ? "t10k" : "train",
           images ? "images" : "labels", images ? 3 : 1);
}

static int fmnist_check_images(const char *path, const ntk_idx *im, int nlabels,
                               const char *lpath) {
  if (im->ndim != 3 || im->dims[1] != FMNIST_SIDE || im->dims[2] != FMNIST_SIDE)
    return ntk_err_set(NTK_ERR_INPUT, "%s: expected IDX images of shape (N, 28, 28)", path);
  if (im->dims[0] != nlabels)
    return ntk_err_set(NTK_ERR_INPUT, "%s: %d images, but %s has %d labels", path, im->dims[0],
                       lpath, nlabels);
  return NTK_OK;
}

/* Labels of the first n_want examples whose class is selected: file indices into *sel,
 * the class position (0..ncls-1) into *cls. */
static int fmnist_select(const fmnist_spec *f, int test, int n_want, int **sel, int **cls,
                         int *nlabels) {
  char lpath[NTK_PATH_MAX + 64];
  fmnist_path(f, test, 0, lpath, sizeof lpath);
  *sel = *cls = NULL;
  ntk_idx lab;
  NTK_CHECK(ntk_idx_read(lpath, -1, NULL, &lab));
  if (lab.ndim != 1) {
    ntk_idx_free(&lab);
    return ntk_err_set(NTK_ERR_INPUT, "%s: expected a 1-D IDX label file, found rank %d", lpath,
                       lab.ndim);
  }
  int pos[256];
  for (int v = 0; v < 256; ++v) pos[v] = -1;
  for (int c = 0; c < f->ncls; ++c) pos[f->classes[c]] = c;
  int *s = malloc((size_t)(n_want > 0 ? n_want : 1) * sizeof(int));
  int *p = malloc((size_t)(n_want > 0 ? n_want : 1) * sizeof(int));
  if (!s || !p) {
    free(s);
    free(p);
    ntk_idx_free(&lab);
    return ntk_err_set(NTK_ERR_MEMORY, "out of memory for the Fashion-MNIST subset");
  }
  int got = 0, avail = 0;
  for (int t = 0; t < lab.dims[0]; ++t) {
    int v = lab.data[t];
    if (v >= FMNIST_CLASSES) {
      free(s);
      free(p);
      ntk_idx_free(&lab);
      return ntk_err_set(NTK_ERR_INPUT, "%s: label %d of example %d is not in 0..9", lpath, v, t);
    }
    if (pos[v] < 0) continue;
    ++avail;
    if (got < n_want) {
      s[got] = t;
      p[got] = pos[v];
      ++got;
    }
  }
  *nlabels = lab.dims[0];
  ntk_idx_free(&lab);
  if (got < n_want) {
    free(s);
    free(p);
    return ntk_err_set(NTK_ERR_INPUT,
                       "data.%s = %d, but %s has only %d examples of the selected classes",
                       test ? "n_test" : "n_train", n_want, lpath, avail);
  }
  *sel = s;
  *cls = p;
  return NTK_OK;
}

/* Reads this rank's rows of one set: raw pixels (mloc x 784, row-major) and targets. */
static int fmnist_read_set(const fmnist_spec *f, int test, ntk_dmat *X, ntk_dmat *Y,
                           unsigned char **pixels) {
  int *sel = NULL, *cls = NULL, nlabels = 0;
  *pixels = NULL;
  NTK_CHECK(fmnist_select(f, test, X->m, &sel, &cls, &nlabels));
  char ipath[NTK_PATH_MAX + 64], lpath[NTK_PATH_MAX + 64];
  fmnist_path(f, test, 1, ipath, sizeof ipath);
  fmnist_path(f, test, 0, lpath, sizeof lpath);
  int *items = malloc((size_t)(X->mloc > 0 ? X->mloc : 1) * sizeof(int));
  if (!items) {
    free(sel);
    free(cls);
    return ntk_err_set(NTK_ERR_MEMORY, "out of memory for the Fashion-MNIST subset");
  }
  for (int il = 0; il < X->mloc; ++il) items[il] = sel[ntk_dmat_row_l2g(X, il)];
  /* every rank reads the whole file through (keeping only its rows), so that a broken
   * file is reported by all ranks alike */
  ntk_idx im;
  int rc = ntk_idx_read(ipath, X->mloc, items, &im);
  if (!rc) rc = fmnist_check_images(ipath, &im, nlabels, lpath);
  if (!rc) {
    for (int il = 0; il < Y->mloc; ++il) {
      int i = ntk_dmat_row_l2g(Y, il);
      for (int jl = 0; jl < Y->nloc; ++jl)
        Y->a[il + (size_t)jl * Y->lld] = ntk_dmat_col_l2g(Y, jl) == cls[i] ? 1.0 : 0.0;
    }
    *pixels = im.data;
    im.data = NULL;
  }
  ntk_idx_free(&im);
  free(items);
  free(sel);
  free(cls);
  return rc;
}

/* Exact integer pixel sums over the training rows make the standardisation independent
 * of the grid: (x - mean)/std = (N p - S1) / sqrt(N S2 - S1^2) with x = p/255. */
static void fmnist_fill(ntk_dmat *X, const unsigned char *pix, int standardize, int64_t N,
                        const int64_t *s1, const int64_t *s2) {
  for (int jl = 0; jl < X->nloc; ++jl) {
    int j = ntk_dmat_col_l2g(X, jl);
    double den = 0.0;
    if (standardize) den = sqrt((double)(N * s2[jl] - s1[jl] * s1[jl]));
    for (int il = 0; il < X->mloc; ++il) {
      int64_t p = pix[(size_t)il * FMNIST_SIDE * FMNIST_SIDE + j];
      double v;
      if (!standardize)
        v = (double)p / 255.0;
      else
        v = den > 0.0 ? (double)(N * p - s1[jl]) / den : 0.0;
      X->a[il + (size_t)jl * X->lld] = v;
    }
  }
}

static int load_fashion(const ntk_config *cfg, const ntk_grid *g, ntk_data *D) {
  fmnist_spec f;
  NTK_CHECK(check_counts(cfg));
  NTK_CHECK(fmnist_spec_make(cfg, &f));
  D->n_train = cfg->data.n_train;
  D->n_test = cfg->data.n_test;
  D->d = FMNIST_SIDE * FMNIST_SIDE;
  D->k = f.ncls;
  D->classification = 1;
  NTK_CHECK(alloc_sets(g, D));
  unsigned char *ptrain = NULL, *ptest = NULL;
  int rc = fmnist_read_set(&f, 0, &D->x_train, &D->y_train, &ptrain);
  if (!rc && D->n_test > 0) rc = fmnist_read_set(&f, 1, &D->x_test, &D->y_test, &ptest);
  rc = ntk_err_sync(g->comm, rc);
  int64_t *s = NULL;
  if (!rc) {
    const int nloc = D->x_train.nloc;
    s = calloc((size_t)(2 * nloc > 0 ? 2 * nloc : 1), sizeof(int64_t));
    if (!s) rc = ntk_err_set(NTK_ERR_MEMORY, "out of memory for pixel sums");
    if (cfg->data.standardize && s) {
      for (int jl = 0; jl < nloc; ++jl) {
        int j = ntk_dmat_col_l2g(&D->x_train, jl);
        for (int il = 0; il < D->x_train.mloc; ++il) {
          int64_t p = ptrain[(size_t)il * D->d + j];
          s[jl] += p;
          s[nloc + jl] += p * p;
        }
      }
    }
    rc = ntk_err_sync(g->comm, rc);
    if (!rc && cfg->data.standardize)
      MPI_Allreduce(MPI_IN_PLACE, s, 2 * nloc, MPI_INT64_T, MPI_SUM, g->col_comm);
  }
  if (!rc) {
    const int nloc = D->x_train.nloc;
    fmnist_fill(&D->x_train, ptrain, cfg->data.standardize, D->n_train, s, s + nloc);
    if (D->n_test > 0)
      fmnist_fill(&D->x_test, ptest, cfg->data.standardize, D->n_train, s, s + nloc);
    char list[64] = "";
    for (int c = 0; c < f.ncls; ++c) {
      size_t len = strlen(list);
      snprintf(list + len, sizeof list - len, "%s%d", c ? "," : "", f.classes[c]);
    }
    snprintf(D->description, sizeof D->description,
             "fashion_mnist (%.120s): classes {%s}, pixels %s", f.dir, list,
             cfg->data.standardize ? "standardized" : "in [0, 1]");
  }
  free(s);
  free(ptrain);
  free(ptest);
  return rc;
}

static int shape_fashion(const ntk_config *cfg, int *n_train, int *n_test, int *d, int *k) {
  fmnist_spec f;
  NTK_CHECK(check_counts(cfg));
  NTK_CHECK(fmnist_spec_make(cfg, &f));
  for (int test = 0; test < 2; ++test) {
    int want = test ? cfg->data.n_test : cfg->data.n_train;
    if (want == 0) continue;
    /* the label files are small: reading them checks that enough examples exist */
    int *sel, *cls, nlabels;
    NTK_CHECK(fmnist_select(&f, test, want, &sel, &cls, &nlabels));
    free(sel);
    free(cls);
    char ipath[NTK_PATH_MAX + 64], lpath[NTK_PATH_MAX + 64];
    fmnist_path(&f, test, 1, ipath, sizeof ipath);
    fmnist_path(&f, test, 0, lpath, sizeof lpath);
    ntk_idx im;
    NTK_CHECK(ntk_idx_read_header(ipath, &im));
    NTK_CHECK(fmnist_check_images(ipath, &im, nlabels, lpath));
  }
  *n_train = cfg->data.n_train;
  *n_test = cfg->data.n_test;
  *d = FMNIST_SIDE * FMNIST_SIDE;
  *k = f.ncls;
  return NTK_OK;
}

/* ------------------------------------------------------------------------------------ */
/* User HDF5 files                                                                       */

typedef struct {
  int exists;
  int ndim;     /* 1 or 2; a 1-D dataset is one column */
  int rows, cols;
} h5_info;

/* The HDF5 error stack printer is silenced: every failure becomes one ntkspec message. */
typedef struct {
  H5E_auto2_t func;
  void *data;
} h5_quiet;

static void h5_quiet_on(h5_quiet *q) {
  H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
static void h5_quiet_off(const h5_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

/* Bit fields [pos, pos + size) of a type's precision window must lie inside it. */
static int h5_field_inside(size_t pos, size_t size, size_t lo, size_t hi) {
  return size >= 1 && pos >= lo && pos + size <= hi;
}

/* Element types whose conversion to double HDF5 defines: integers of any sign, order and
 * precision, floats whose sign, exponent and mantissa fields are disjoint and lie inside
 * the type (IEEE single and double, h5py's float16).  A corrupt file can describe a 0-bit
 * integer or overlapping float fields, for which HDF5's converters return garbage or fail
 * in one driver and not another; such types are refused by name. */
static int h5_type_supported(hid_t ty) {
  const size_t bits = 8 * H5Tget_size(ty), off = H5Tget_offset(ty), prec = H5Tget_precision(ty);
  if (bits == 0 || bits > 64 || !h5_field_inside(off, prec, 0, bits)) return 0;
  const H5T_order_t order = H5Tget_order(ty);
  if (order != H5T_ORDER_LE && order != H5T_ORDER_BE) return 0;
  if (H5Tget_class(ty) == H5T_INTEGER) return 1;
  size_t spos, epos, esize, mpos, msize;
  if (H5Tget_fields(ty, &spos, &epos, &esize, &mpos, &msize) < 0) return 0;
  const size_t hi = off + prec;
  return h5_field_inside(spos, 1, off, hi) && h5_field_inside(epos, esize, off, hi) &&
         h5_field_inside(mpos, msize, off, hi) && esize >= 2 && esize <= 16 &&
         (spos < mpos || spos >= mpos + msize) && (spos < epos || spos >= epos + esize) &&
         (mpos + msize <= epos || epos + esize <= mpos);
}

static int h5_inspect(hid_t file, const char *path, const char *name, h5_info *info) {
  memset(info, 0, sizeof *info);
  htri_t ex = H5Lexists(file, name, H5P_DEFAULT);
  if (ex <= 0) return NTK_OK;
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
  if (ds < 0) return ntk_err_set(NTK_ERR_INPUT, "%s: \"%s\" is not a dataset", path, name);
  int rc = NTK_OK;
  hid_t sp = H5Dget_space(ds), ty = H5Dget_type(ds);
  H5T_class_t cl = ty >= 0 ? H5Tget_class(ty) : H5T_NO_CLASS;
  int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  hsize_t dims[H5S_MAX_RANK] = {0};
  if (nd >= 1 && nd <= 2) H5Sget_simple_extent_dims(sp, dims, NULL);
  if (cl != H5T_INTEGER && cl != H5T_FLOAT)
    rc = ntk_err_set(NTK_ERR_INPUT, "%s: dataset \"%s\" is not numeric", path, name);
  else if (!h5_type_supported(ty))
    rc = ntk_err_set(NTK_ERR_INPUT,
                     "%s: dataset \"%s\" has an unusable %s type (%zu bytes, %zu-bit precision:"
                     " corrupt or not a plain integer or floating-point type)",
                     path, name, cl == H5T_INTEGER ? "integer" : "float", H5Tget_size(ty),
                     H5Tget_precision(ty));
  else if (nd < 1 || nd > 2)
    rc = ntk_err_set(NTK_ERR_INPUT,
                     "%s: dataset \"%s\" has rank %d, expected 2 (samples x features) or 1",
                     path, name, nd);
  else if (nd == 1) dims[1] = 1;
  if (!rc && (dims[0] < 1 || dims[1] < 1 || dims[0] > INT_MAX || dims[1] > INT_MAX))
    rc = ntk_err_set(NTK_ERR_INPUT, "%s: dataset \"%s\" has unusable shape (%llu, %llu)", path,
                     name, (unsigned long long)dims[0], (unsigned long long)dims[1]);
  if (!rc) {
    char what[80];
    snprintf(what, sizeof what, "dataset \"%s\"", name);
    rc = ntk_h5check_dataset(ds, path, what);
  }
  if (!rc) {
    info->exists = 1;
    info->ndim = nd;
    info->rows = (int)dims[0];
    info->cols = (int)dims[1];
  }
  if (ty >= 0) H5Tclose(ty);
  if (sp >= 0) H5Sclose(sp);
  H5Dclose(ds);
  return rc;
}

/* Shapes of x, y, x_test, y_test and the row counts the config selects. */
static int h5_plan(const ntk_config *cfg, hid_t file, h5_info info[4], int *n_train,
                   int *n_test) {
  static const char *names[4] = {"x", "y", "x_test", "y_test"};
  const char *path = cfg->data.path;
  for (int t = 0; t < 4; ++t) NTK_CHECK(h5_inspect(file, path, names[t], &info[t]));
  for (int t = 0; t < 2; ++t)
    if (!info[t].exists)
      return ntk_err_set(NTK_ERR_INPUT, "%s: no dataset \"%s\" (need \"x\" (N, d) and \"y\" (N, k))",
                         path, names[t]);
  if (info[0].rows != info[1].rows)
    return ntk_err_set(NTK_ERR_INPUT, "%s: \"x\" has %d rows but \"y\" has %d", path,
                       info[0].rows, info[1].rows);
  if (info[2].exists != info[3].exists)
    return ntk_err_set(NTK_ERR_INPUT, "%s: \"%s\" without \"%s\"", path,
                       info[2].exists ? "x_test" : "y_test", info[2].exists ? "y_test" : "x_test");
  if (info[2].exists) {
    if (info[2].rows != info[3].rows)
      return ntk_err_set(NTK_ERR_INPUT, "%s: \"x_test\" has %d rows but \"y_test\" has %d", path,
                         info[2].rows, info[3].rows);
    if (info[2].cols != info[0].cols)
      return ntk_err_set(NTK_ERR_INPUT, "%s: \"x_test\" has %d columns but \"x\" has %d", path,
                         info[2].cols, info[0].cols);
    if (info[3].cols != info[1].cols)
      return ntk_err_set(NTK_ERR_INPUT, "%s: \"y_test\" has %d columns but \"y\" has %d", path,
                         info[3].cols, info[1].cols);
  }
  const int ntr = cfg->data.n_train, nte = cfg->data.n_test;
  if (ntr < 0 || nte < 0)
    return ntk_err_set(NTK_ERR_INPUT, "data.n_train and data.n_test must be >= 0 (0 = all rows)");
  if (ntr > info[0].rows)
    return ntk_err_set(NTK_ERR_INPUT, "data.n_train = %d, but %s has only %d rows in \"x\"", ntr,
                       path, info[0].rows);
  if (nte > 0 && !info[2].exists)
    return ntk_err_set(NTK_ERR_INPUT,
                       "data.n_test = %d, but %s has no \"x_test\" (set data.n_test: 0)", nte,
                       path);
  if (info[2].exists && nte > info[2].rows)
    return ntk_err_set(NTK_ERR_INPUT, "data.n_test = %d, but %s has only %d rows in \"x_test\"",
                       nte, path, info[2].rows);
  *n_train = ntr > 0 ? ntr : info[0].rows;
  *n_test = info[2].exists ? (nte > 0 ? nte : info[2].rows) : 0;
  return NTK_OK;
}

/* The optional root attribute "classification" (an integer scalar, 0 or 1): 1 says y is
 * one-hot over its k >= 2 columns, so that accuracy is reported (tools/ntkspec-uci writes
 * it); without it the targets are regression targets. */
static int h5_classification(hid_t file, const char *path, int k, int *cls) {
  *cls = 0;
  if (H5Aexists(file, "classification") <= 0) return NTK_OK;
  hid_t a = H5Aopen(file, "classification", H5P_DEFAULT);
  hid_t ty = a >= 0 ? H5Aget_type(a) : -1, sp = a >= 0 ? H5Aget_space(a) : -1;
  long long v = -1;
  int ok = ty >= 0 && sp >= 0 && H5Tget_class(ty) == H5T_INTEGER && h5_type_supported(ty) &&
           H5Sget_simple_extent_npoints(sp) == 1 && H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0;
  if (sp >= 0) H5Sclose(sp);
  if (ty >= 0) H5Tclose(ty);
  if (a >= 0) H5Aclose(a);
  if (!ok || (v != 0 && v != 1))
    return ntk_err_set(NTK_ERR_INPUT, "%s: attribute \"classification\" must be the integer 0 or 1",
                       path);
  if (v == 1 && k < 2)
    return ntk_err_set(NTK_ERR_INPUT,
                       "%s: attribute \"classification\" is 1 but \"y\" has %d column (one-hot "
                       "targets need k >= 2)", path, k);
  *cls = (int)v;
  return NTK_OK;
}

/* Reads rows [0, A->m) of dataset `name`, only the row blocks this rank owns (all
 * columns), and stores the owned entries.  Collective over the grid. */
static int h5_read_rows(const ntk_config *cfg, hid_t file, const char *name, const h5_info *info,
                        ntk_dmat *A) {
  const ntk_grid *g = A->g;
  const int nb = g->nb, C = info->cols, nd = info->ndim;
  int rc = NTK_OK;
  double *buf = malloc((size_t)(A->mloc > 0 ? A->mloc : 1) * (size_t)C * sizeof(double));
  if (!buf) rc = ntk_err_set(NTK_ERR_MEMORY, "out of memory reading \"%s\"", name);
  rc = ntk_err_sync(g->comm, rc);
  if (rc) {
    free(buf);
    return rc;
  }
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
  hid_t fs = H5Dget_space(ds);
  hsize_t mdims[2] = {(hsize_t)(A->mloc > 0 ? A->mloc : 1), (hsize_t)C};
  hid_t ms = H5Screate_simple(nd, mdims, NULL);
  /* Owned row blocks: b = myrow + t*nprow; all full except perhaps the global last one. */
  const int nblocks = (A->m + nb - 1) / nb;
  const int nown = g->myrow < nblocks ? (nblocks - g->myrow + g->nprow - 1) / g->nprow : 0;
  herr_t st = 0;
  if (nown == 0) {
    st |= H5Sselect_none(fs);
    st |= H5Sselect_none(ms);
  } else {
    const int blast = g->myrow + (nown - 1) * g->nprow;
    const int partial = (blast + 1) * nb > A->m;
    const int nfull = nown - partial;
    H5S_seloper_t op = H5S_SELECT_SET;
    if (nfull > 0) {
      hsize_t start[2] = {(hsize_t)g->myrow * nb, 0}, stride[2] = {(hsize_t)nb * g->nprow, 1};
      hsize_t count[2] = {(hsize_t)nfull, 1}, block[2] = {(hsize_t)nb, (hsize_t)C};
      st |= H5Sselect_hyperslab(fs, op, start, stride, count, block);
      op = H5S_SELECT_OR;
    }
    if (partial) {
      hsize_t start[2] = {(hsize_t)blast * nb, 0}, count[2] = {1, 1};
      hsize_t block[2] = {(hsize_t)(A->m - blast * nb), (hsize_t)C};
      st |= H5Sselect_hyperslab(fs, op, start, NULL, count, block);
    }
  }
  hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
  st |= H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
  /* A rank whose H5Dread fails early would leave the others waiting in the collective
   * read, so the selections are checked and agreed on first. */
  if (ds < 0 || fs < 0 || ms < 0 || dxpl < 0 || st < 0 || H5Sselect_valid(fs) <= 0 ||
      H5Sget_select_npoints(fs) != (hssize_t)A->mloc * C)
    rc = ntk_err_set(NTK_ERR_INTERNAL, "%s: bad row selection in dataset \"%s\"",
                     cfg->data.path, name);
  rc = ntk_err_sync(g->comm, rc);
  if (!rc && H5Dread(ds, H5T_NATIVE_DOUBLE, ms, fs, dxpl, buf) < 0)
    rc = ntk_err_set(NTK_ERR_RUNTIME, "%s: reading dataset \"%s\" failed", cfg->data.path, name);
  if (dxpl >= 0) H5Pclose(dxpl);
  if (ms >= 0) H5Sclose(ms);
  if (fs >= 0) H5Sclose(fs);
  if (ds >= 0) H5Dclose(ds);
  for (int il = 0; !rc && il < A->mloc; ++il) {
    const double *row = buf + (size_t)il * C;
    for (int j = 0; j < C; ++j)
      if (!isfinite(row[j])) {
        rc = ntk_err_set(NTK_ERR_INPUT, "%s: dataset \"%s\" row %d column %d is %s (0-based)",
                         cfg->data.path, name, ntk_dmat_row_l2g(A, il), j,
                         isnan(row[j]) ? "NaN" : "infinite");
        break;
      }
    for (int jl = 0; jl < A->nloc; ++jl) A->a[il + (size_t)jl * A->lld] = row[ntk_dmat_col_l2g(A, jl)];
  }
  free(buf);
  return ntk_err_sync(g->comm, rc);
}

static int shape_hdf5(const ntk_config *cfg, int *n_train, int *n_test, int *d, int *k) {
  const char *path = cfg->data.path;
  if (!path[0])
    return ntk_err_set(NTK_ERR_INPUT, "data.path: data.source: hdf5 needs the file's path");
  if (access(path, R_OK) != 0)
    return ntk_err_set(NTK_ERR_INPUT, "%s: cannot read the data file (%s)", path, strerror(errno));
  NTK_CHECK(ntk_h5check_file(path, path));
  h5_quiet q;
  h5_quiet_on(&q);
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  int rc = NTK_OK;
  h5_info info[4] = {{0}}; /* h5_plan fills it when it succeeds */
  if (file < 0)
    rc = ntk_err_set(NTK_ERR_INPUT, "%s: not an HDF5 file or unreadable", path);
  else
    rc = h5_plan(cfg, file, info, n_train, n_test);
  if (!rc) {
    int cls;
    rc = h5_classification(file, path, info[1].cols, &cls);
  }
  if (file >= 0) H5Fclose(file);
  h5_quiet_off(&q);
  if (rc) return rc;
  *d = info[0].cols;
  *k = info[1].cols;
  return NTK_OK;
}

static int load_hdf5(const ntk_config *cfg, const ntk_grid *g, ntk_data *D) {
  const char *path = cfg->data.path;
  int rc = NTK_OK;
  if (!path[0])
    return ntk_err_set(NTK_ERR_INPUT, "data.path: data.source: hdf5 needs the file's path");
  if (access(path, R_OK) != 0) /* on every rank: nodes may not share the folder */
    rc = ntk_err_set(NTK_ERR_INPUT, "%s: cannot read the data file (%s)", path, strerror(errno));
  NTK_CHECK(ntk_err_sync(g->comm, rc));
  /* Rank 0 checks the file as the dry run does (HDF5's serial driver) before the MPI-IO
   * open: on a corrupt superblock Open MPI's I/O layer prints its own errors to stderr and
   * HDF5's MPI-IO driver may go on where the serial one refuses the file. */
  if (g->rank == 0) {
    int sn, st, sd, sk;
    rc = shape_hdf5(cfg, &sn, &st, &sd, &sk);
  }
  NTK_CHECK(ntk_err_share0(g->comm, rc));
  h5_quiet q;
  h5_quiet_on(&q);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_mpio(fapl, g->comm, MPI_INFO_NULL);
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  if (file < 0) rc = ntk_err_set(NTK_ERR_INPUT, "%s: not an HDF5 file or unreadable", path);
  rc = ntk_err_sync(g->comm, rc);
  h5_info info[4];
  if (!rc) rc = ntk_err_sync(g->comm, h5_plan(cfg, file, info, &D->n_train, &D->n_test));
  if (!rc)
    rc = ntk_err_sync(g->comm, h5_classification(file, path, info[1].cols, &D->classification));
  if (!rc) {
    D->d = info[0].cols;
    D->k = info[1].cols;
    rc = alloc_sets(g, D);
  }
  if (!rc) rc = h5_read_rows(cfg, file, "x", &info[0], &D->x_train);
  if (!rc) rc = h5_read_rows(cfg, file, "y", &info[1], &D->y_train);
  if (!rc && D->n_test > 0) rc = h5_read_rows(cfg, file, "x_test", &info[2], &D->x_test);
  if (!rc && D->n_test > 0) rc = h5_read_rows(cfg, file, "y_test", &info[3], &D->y_test);
  if (file >= 0) H5Fclose(file);
  h5_quiet_off(&q);
  if (!rc)
    snprintf(D->description, sizeof D->description, "hdf5: %.200s (%d of %d rows%s)", path,
             D->n_train, info[0].rows, D->classification ? ", one-hot classes" : "");
  return rc;
}

/* ------------------------------------------------------------------------------------ */

void ntk_data_free(ntk_data *D) {
  ntk_dmat_free(&D->x_train);
  ntk_dmat_free(&D->y_train);
  ntk_dmat_free(&D->x_test);
  ntk_dmat_free(&D->y_test);
  memset(D, 0, sizeof *D);
}

/* Returns 0 or an NTK_ERR_INPUT naming the first non-finite local entry of A. */
static int check_finite(const ntk_dmat *A, const char *what) {
  if (!A->a) return NTK_OK;
  for (int jl = 0; jl < A->nloc; ++jl)
    for (int il = 0; il < A->mloc; ++il)
      if (!isfinite(A->a[il + (size_t)jl * A->lld]))
        return ntk_err_set(NTK_ERR_INPUT, "data: %s row %d column %d is not finite", what,
                           ntk_dmat_row_l2g(A, il), ntk_dmat_col_l2g(A, jl));
  return NTK_OK;
}

int ntk_data_load(const ntk_config *cfg, const ntk_grid *g, ntk_data *D) {
  memset(D, 0, sizeof *D);
  int rc;
  switch (cfg->data.source) {
    case NTK_DATA_SYNTHETIC_1D:
    case NTK_DATA_TEACHER:
    case NTK_DATA_SPHERE: rc = load_synthetic(cfg, g, D); break;
    case NTK_DATA_FASHION_MNIST: rc = load_fashion(cfg, g, D); break;
    case NTK_DATA_HDF5: rc = load_hdf5(cfg, g, D); break;
    default: rc = ntk_err_set(NTK_ERR_INPUT, "data.source: unknown source %d", cfg->data.source);
  }
  if (!rc) {
    rc = check_finite(&D->x_train, "x_train");
    if (!rc) rc = check_finite(&D->y_train, "y_train");
    if (!rc) rc = check_finite(&D->x_test, "x_test");
    if (!rc) rc = check_finite(&D->y_test, "y_test");
    rc = ntk_err_sync(g->comm, rc);
  }
  if (rc) {
    ntk_data_free(D);
    ntk_err_trace(__FILE__, __LINE__, __func__);
    return rc;
  }
  ntk_log_debug("data: %s; %d train, %d test, d = %d, k = %d", D->description, D->n_train,
                D->n_test, D->d, D->k);
  return NTK_OK;
}

int ntk_data_shape(const ntk_config *cfg, int *n_train, int *n_test, int *d, int *k) {
  switch (cfg->data.source) {
    case NTK_DATA_SYNTHETIC_1D:
    case NTK_DATA_TEACHER:
    case NTK_DATA_SPHERE:
      NTK_CHECK(synth_shape(cfg, d, k));
      *n_train = cfg->data.n_train;
      *n_test = cfg->data.n_test;
      return NTK_OK;
    case NTK_DATA_FASHION_MNIST: NTK_CHECK(shape_fashion(cfg, n_train, n_test, d, k)); return NTK_OK;
    case NTK_DATA_HDF5: NTK_CHECK(shape_hdf5(cfg, n_train, n_test, d, k)); return NTK_OK;
  }
  return ntk_err_set(NTK_ERR_INPUT, "data.source: unknown source %d", cfg->data.source);
}

int64_t ntk_data_memory(const ntk_grid *g, int n_train, int n_test, int d, int k) {
  return ntk_size_add(ntk_size_add(ntk_dmat_max_local_bytes(g, n_train, d), ntk_dmat_max_local_bytes(g, n_train, k)),
                      ntk_size_add(ntk_dmat_max_local_bytes(g, n_test, d), ntk_dmat_max_local_bytes(g, n_test, k)));
}
