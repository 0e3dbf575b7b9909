/* Fuzz target: the user HDF5 data loader (data.source: hdf5) on a 1-rank grid.
 *
 * Two kinds of input.  One that starts with the HDF5 signature is written to the data file
 * as it is (corrupt and truncated files).  Any other input describes a well-formed but
 * hostile file, which the harness writes through the HDF5 API: for each of x, y, x_test,
 * y_test whether it is absent, a dataset, a group or a dangling link; its rank (0 to 3),
 * element type (integers, floats of both byte orders, float16, strings, compounds), shape,
 * layout (contiguous, chunked, compact), and raw element bytes (so NaN and Inf appear);
 * plus data.n_train, data.n_test and the block size.  Structured inputs reach the loader's own logic every time instead of dying
 * in the HDF5 superblock parser, which is not ours to fuzz.
 * Properties checked:
 *  - ntk_data_shape (serial open, used by --dry-run) and ntk_data_load (MPI-IO) agree:
 *    both fail, or both succeed with the same shapes;
 *  - failures are NTK_ERR_INPUT with one line (raw files may also fail to read:
 *    NTK_ERR_RUNTIME); never a crash, an internal error or a leak;
 *  - on success every loaded entry equals the file's value converted to double, row i of
 *    the matrix is row i of the dataset, and every entry is finite. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>
#include <mpi.h>

#include "fuzz_common.h"
#include "ntk_config.h"
#include "ntk_data.h"
#include "ntk_error.h"
#include "ntk_grid.h"
#include "ntk_h5check.h"

#define NGRIDS 4
static ntk_grid grids[NGRIDS]; /* block sizes 1 .. 4 */
static char dir[256], file_path[300];

static const char *const names[4] = {"x", "y", "x_test", "y_test"};

static void finish(void) {
  unlink(file_path);
  rmdir(dir);
  for (int i = 0; i < NGRIDS; ++i) ntk_grid_free(&grids[i]);
  int fin = 0;
  MPI_Finalized(&fin);
  if (!fin) MPI_Finalize();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  MPI_Init(argc, argv);
  for (int i = 0; i < NGRIDS; ++i)
    if (ntk_grid_create(MPI_COMM_WORLD, 1, 1, i + 1, &grids[i])) {
      fprintf(stderr, "fuzz_hdf5: %s\n", ntk_err_message());
      abort();
    }
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/ntk-fuzz-hdf5-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    abort();
  }
  snprintf(file_path, sizeof file_path, "%s/data.h5", dir);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  atexit(finish);
  return 0;
}

/* --------------------------------------------------------- structured files -- */

typedef struct {
  const uint8_t *p;
  size_t n, pos;
} reader;

static uint8_t next(reader *r) { return r->pos < r->n ? r->p[r->pos++] : 0; }

static hid_t element_type(int code) {
  switch (code) {
    case 0: return H5Tcopy(H5T_NATIVE_SCHAR);
    case 1: return H5Tcopy(H5T_NATIVE_UCHAR);
    case 2: return H5Tcopy(H5T_NATIVE_SHORT);
    case 3: return H5Tcopy(H5T_NATIVE_USHORT);
    case 4: return H5Tcopy(H5T_NATIVE_INT);
    case 5: return H5Tcopy(H5T_NATIVE_UINT);
    case 6: return H5Tcopy(H5T_NATIVE_LLONG);
    case 7: return H5Tcopy(H5T_NATIVE_ULLONG);
    case 8: return H5Tcopy(H5T_NATIVE_FLOAT);
    case 9: return H5Tcopy(H5T_NATIVE_DOUBLE);
    case 10: { /* IEEE half precision as h5py writes numpy's float16 */
      hid_t t = H5Tcopy(H5T_IEEE_F32LE);
      H5Tset_fields(t, 15, 10, 5, 0, 10);
      H5Tset_size(t, 2);
      H5Tset_ebias(t, 15);
      return t;
    }
    case 11: return H5Tcopy(H5T_IEEE_F64BE);
    case 12: return H5Tcopy(H5T_STD_I32BE);
    case 13: {
      hid_t t = H5Tcopy(H5T_C_S1);
      H5Tset_size(t, 4);
      return t;
    }
    case 14: {
      hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(double));
      H5Tinsert(t, "v", 0, H5T_NATIVE_DOUBLE);
      return t;
    }
    default: return H5Tcopy(H5T_NATIVE_B8);
  }
}

/* One object of the file from 3 descriptor bytes and the element bytes that follow.
 * Returns 0, or -1 when the HDF5 library refused the description (not a finding). */
static int make_object(hid_t file, const char *name, reader *r) {
  uint8_t d0 = next(r), d1 = next(r), d2 = next(r);
  int kind = d0 & 3, rank = (d0 >> 2) & 3, type = d0 >> 4;
  if (kind == 0) return 0;
  if (kind == 2) {
    hid_t g = H5Gcreate2(file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    return g < 0 ? -1 : (H5Gclose(g), 0);
  }
  if (kind == 3 && type >= 8)
    return H5Lcreate_soft("/nowhere", file, name, H5P_DEFAULT, H5P_DEFAULT) < 0 ? -1 : 0;
  int huge = (d1 & 0x7f) == 0x7f; /* more rows than an int holds, never written */
  int chunked = huge || (d2 & 0x80);
  hsize_t dims[3] = {huge ? ((hsize_t)1 << 31) + 3 : (hsize_t)(d1 % 12), (hsize_t)(d2 & 0x7f) % 5, 2};
  hsize_t maxdims[3] = {H5S_UNLIMITED, H5S_UNLIMITED, H5S_UNLIMITED};
  hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, chunked ? maxdims : NULL);
  hid_t dt = element_type(type);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (chunked && rank > 0) {
    hsize_t chunk[3] = {4, 4, 2};
    H5Pset_chunk(dcpl, rank, chunk);
  } else if (d1 & 0x80) {
    H5Pset_layout(dcpl, H5D_COMPACT);
  }
  int rc = -1;
  hid_t ds = space >= 0 && dt >= 0 ? H5Dcreate2(file, name, dt, space, H5P_DEFAULT, dcpl, H5P_DEFAULT) : -1;
  if (ds >= 0) {
    rc = 0;
    hssize_t npts = huge ? 0 : H5Sget_simple_extent_npoints(space);
    size_t bytes = (size_t)(npts > 0 ? npts : 0) * H5Tget_size(dt);
    if (bytes > 0) {
      unsigned char *buf = calloc(bytes, 1);
      for (size_t i = 0; i < bytes && r->pos < r->n; ++i) buf[i] = next(r);
      if (H5Dwrite(ds, dt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) rc = -1;
      free(buf);
    }
    H5Dclose(ds);
  }
  H5Pclose(dcpl);
  H5Tclose(dt);
  if (space >= 0) H5Sclose(space);
  return rc;
}

static int make_file(reader *r) {
  hid_t file = H5Fcreate(file_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) {
    fprintf(stderr, "fuzz_hdf5: cannot create %s\n", file_path);
    abort();
  }
  int rc = 0;
  for (int t = 0; t < 4 && !rc; ++t) rc = make_object(file, names[t], r);
  H5Fclose(file);
  return rc;
}

/* --------------------------------------------------------------- checking -- */

/* The dataset as the loader should see it: rows x cols doubles, row-major. */
static double *expected(const char *name, int rows, int cols) {
  hid_t file = H5Fopen(file_path, H5F_ACC_RDONLY, H5P_DEFAULT);
  NTK_FUZZ_ASSERT(file >= 0, "the data file no longer opens");
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
  hid_t sp = H5Dget_space(ds);
  hssize_t n = H5Sget_simple_extent_npoints(sp);
  double *all = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
  herr_t st = H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, all);
  NTK_FUZZ_ASSERT(st >= 0, "the loader read \"%s\", a plain read fails", name);
  NTK_FUZZ_ASSERT(n >= (hssize_t)rows * cols, "\"%s\" has %lld values, loaded %d x %d", name,
                  (long long)n, rows, cols);
  H5Sclose(sp);
  H5Dclose(ds);
  H5Fclose(file);
  return all;
}

static void compare(const char *name, const ntk_dmat *A) {
  if (A->m == 0) return;
  double *want = expected(name, A->m, A->n);
  for (int i = 0; i < A->m; ++i)
    for (int j = 0; j < A->n; ++j) {
      double got = A->a[i + (size_t)j * A->lld], w = want[(size_t)i * A->n + j];
      NTK_FUZZ_ASSERT(isfinite(got), "\"%s\"(%d, %d) = %g was accepted", name, i, j, got);
      NTK_FUZZ_ASSERT(got == w, "\"%s\"(%d, %d): loaded %.17g, file %.17g", name, i, j, got, w);
    }
  free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char sig[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  int raw = size >= 8 && memcmp(data, sig, 8) == 0;
  static ntk_config cfg;
  ntk_config_defaults(&cfg);
  cfg.data.source = NTK_DATA_HDF5;
  snprintf(cfg.data.path, sizeof cfg.data.path, "%s", file_path);
  const ntk_grid *g = &grids[1];
  /* HDF5 crashes on some corrupt raw files, which the loader's checker process reports;
   * files the harness wrote through HDF5 itself need no checker (and are walked here) */
  ntk_h5check_set_checker(raw ? NTK_H5CHECK_EXE : NULL);
  if (raw) {
    FILE *f = fopen(file_path, "wb");
    NTK_FUZZ_ASSERT(f && fwrite(data, 1, size, f) == size && fclose(f) == 0, "writing %s", file_path);
    cfg.data.n_train = cfg.data.n_test = 0;
  } else {
    reader r = {data, size, 0};
    cfg.data.n_train = next(&r) % 10;
    cfg.data.n_test = next(&r) % 10;
    g = &grids[next(&r) % NGRIDS];
    if (make_file(&r)) return 0;
  }

  static const int shape_errors[] = {NTK_ERR_INPUT, 0};
  static const int raw_errors[] = {NTK_ERR_INPUT, NTK_ERR_RUNTIME, NTK_ERR_MEMORY, 0};
  int N = -1, nt = -1, d = -1, k = -1;
  ntk_err_clear();
  int rcs = ntk_data_shape(&cfg, &N, &nt, &d, &k);
  ntk_fuzz_check_rc(rcs, shape_errors, "ntk_data_shape");
  char shape_msg[1024];
  snprintf(shape_msg, sizeof shape_msg, "%s", ntk_err_message());

  ntk_data D;
  ntk_err_clear();
  int rc = ntk_data_load(&cfg, g, &D);
  ntk_fuzz_check_rc(rc, raw ? raw_errors : shape_errors, "ntk_data_load");
  /* the dry run (headers only) accepts everything the run accepts, and refuses everything
   * but what only the values show: non-finite entries (and, in raw files, broken data) */
  NTK_FUZZ_ASSERT(rcs == NTK_OK || rc != NTK_OK, "shape refused (%s), load accepted", shape_msg);
  if (!raw && rcs == NTK_OK && rc != NTK_OK)
    NTK_FUZZ_ASSERT(strstr(ntk_err_message(), "NaN") || strstr(ntk_err_message(), "infinite"),
                    "shape accepted, load refused: %s", ntk_err_message());
  if (rc == NTK_OK) {
    NTK_FUZZ_ASSERT(D.n_train == N && D.n_test == nt && D.d == d && D.k == k,
                    "shape (%d, %d, %d, %d) but loaded (%d, %d, %d, %d)", N, nt, d, k, D.n_train,
                    D.n_test, D.d, D.k);
    NTK_FUZZ_ASSERT(D.n_train >= 1 && (cfg.data.n_train == 0 || D.n_train == cfg.data.n_train),
                    "n_train %d for data.n_train %d", D.n_train, cfg.data.n_train);
    NTK_FUZZ_ASSERT(cfg.data.n_test == 0 || D.n_test == cfg.data.n_test, "n_test %d for %d",
                    D.n_test, cfg.data.n_test);
    compare("x", &D.x_train);
    compare("y", &D.y_train);
    if (D.n_test > 0) {
      compare("x_test", &D.x_test);
      compare("y_test", &D.y_test);
    }
    ntk_data_free(&D);
  }
  ntk_err_clear();
  return 0;
}
