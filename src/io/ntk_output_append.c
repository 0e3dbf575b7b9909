/* ntk_output_append: the extendible /trajectory datasets: one row per measurement,
 * their row counts and truncation for --resume, the flush after each measurement. */
#include "ntk_output_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_error.h"
#include "ntk_h5check.h"
#include "ntk_schema.h"

/* Opens (creating on first use) an extendible dataset (T, tail...) and grows it by one
 * row; *row is the index of the new row.  The row count is the dataset's extent, so a
 * reopened file continues where it stopped. */
static int append_open(ntk_output *o, const char *name, hid_t mtype, int ntail,
                       const hsize_t *tail, const hsize_t *chunk, int large, hid_t *d,
                       hsize_t *row) {
  int rank = ntail + 1, r;
  hsize_t dims[H5S_MAX_RANK], maxd[H5S_MAX_RANK];
  int rc = ntk_out_dset_lookup(o, name, d, &r, dims, maxd);
  if (rc != NTK_OK) return rc;
  if (*d >= 0) {
    int same = r == rank && maxd[0] == H5S_UNLIMITED;
    for (int k = 0; same && k < ntail; ++k) same = dims[k + 1] == tail[k];
    if (!same) {
      rc = ntk_err_set(NTK_ERR_INTERNAL, "HDF5: dataset %s exists with another row shape", name);
      goto done;
    }
  } else {
    dims[0] = 0;
    maxd[0] = H5S_UNLIMITED;
    for (int k = 0; k < ntail; ++k) dims[k + 1] = maxd[k + 1] = tail[k];
    rc = ntk_out_dset_create(o, name, mtype, rank, dims, maxd, chunk, large, d);
    if (rc != NTK_OK) goto done;
  }
  *row = dims[0];
  dims[0] += 1;
  H5TRY(H5Dset_extent(*d, dims), "cannot extend dataset", name);
done:
  if (rc != NTK_OK) {
    ntk_h5_close(*d);
    *d = H5I_INVALID_HID;
  }
  return rc;
}

static int is_step_name(const char *name) {
  return !strcmp(name, "/trajectory/step") || !strcmp(name, "trajectory/step");
}

/* One replicated row (len values, or a scalar when len == 0), written by rank 0. */
static int append_small(ntk_output *o, const char *name, hid_t mtype, int len, const void *x) {
  if (!ntk_out_is_open(o)) return ntk_out_not_open(name);
  NTK_CHECK(ntk_out_claim(o, 16384.0 + 8.0 * len));
  hid_t d;
  hsize_t row = 0, tail[1] = {(hsize_t)len}, chunk[2];
  int ntail = len > 0 ? 1 : 0;
  if (ntail) {
    chunk[1] = (hsize_t)len;
    chunk[0] = len < 8192 ? (hsize_t)(8192 / len) : 1;
  } else {
    chunk[0] = 1024;
  }
  int rc = ntk_err_sync(o->g->comm, append_open(o, name, mtype, ntail, tail, chunk, 0, &d, &row));
  if (rc == NTK_OK) {
    hsize_t start[2] = {row, 0}, count[2] = {1, (hsize_t)len}, md[1] = {ntail ? tail[0] : 1};
    rc = ntk_out_write_rank0(o, d, name, mtype, 1, md, start, count, x);
  }
  if (rc == NTK_OK && is_step_name(name)) o->nsteps = (long long)row + 1;
  ntk_h5_close(d);
  return rc;
}

int ntk_output_append_scalar(ntk_output *o, const char *name, double value) {
  NTK_CHECK(append_small(o, name, H5T_NATIVE_DOUBLE, 0, &value));
  return NTK_OK;
}

int ntk_output_append_int(ntk_output *o, const char *name, long long value) {
  NTK_CHECK(append_small(o, name, H5T_NATIVE_LLONG, 0, &value));
  return NTK_OK;
}

int ntk_output_append_row(ntk_output *o, const char *name, int len, const double *row) {
  if (len < 1) return ntk_err_set(NTK_ERR_INTERNAL, "output: row of length %d for %s", len, name);
  NTK_CHECK(append_small(o, name, H5T_NATIVE_DOUBLE, len, row));
  return NTK_OK;
}

int ntk_output_append_dmat(ntk_output *o, const char *name, const ntk_dmat *A) {
  if (!ntk_out_is_open(o)) return ntk_out_not_open(name);
  NTK_CHECK(ntk_out_check_grid(o, A, name));
  NTK_CHECK(ntk_out_claim(o, 8.0 * ntk_out_padded(A->m) * ntk_out_padded(A->n) + 4096.0));
  hid_t d;
  hsize_t row = 0, tail[2] = {(hsize_t)A->m, (hsize_t)A->n};
  hsize_t chunk[3] = {1, (hsize_t)(A->m < 256 ? A->m : 256), (hsize_t)(A->n < 256 ? A->n : 256)};
  int rc = append_open(o, name, H5T_NATIVE_DOUBLE, 2, tail, chunk, 1, &d, &row);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  rc = ntk_out_write_dmat_into(o, d, name, (long long)row, A);
  H5Dclose(d);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  return NTK_OK;
}

int ntk_output_rows(ntk_output *o, const char *name, long long *rows) {
  if (!ntk_out_is_open(o)) return ntk_out_not_open(name);
  hid_t d;
  hsize_t dims[H5S_MAX_RANK];
  int r;
  int rc = ntk_out_dset_lookup(o, name, &d, &r, dims, NULL);
  *rows = d < 0 ? 0 : r > 0 ? (long long)dims[0] : 1;
  ntk_h5_close(d);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  return NTK_OK;
}

int ntk_output_truncate(ntk_output *o, const char *name, long long rows) {
  if (!ntk_out_is_open(o)) return ntk_out_not_open(name);
  hid_t d;
  hsize_t dims[H5S_MAX_RANK];
  int r;
  int rc = ntk_out_dset_lookup(o, name, &d, &r, dims, NULL);
  if (rc != NTK_OK) goto done;
  if (d < 0 || r < 1 || rows < 0 || (hsize_t)rows > dims[0]) {
    rc = ntk_err_set(NTK_ERR_INTERNAL, "output: cannot truncate %s to %lld rows", name, rows);
    goto done;
  }
  dims[0] = (hsize_t)rows;
  H5TRY(H5Dset_extent(d, dims), "cannot shrink dataset", name);
  if (is_step_name(name)) o->nsteps = rows;
done:
  ntk_h5_close(d);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  return NTK_OK;
}

/* H5Fflush writes the metadata cache and the superblock, then syncs MPI-IO: after it
 * returns, a killed run leaves a file that opens with everything written so far.  The
 * caller flushes after each complete group of appends (one measurement). */
int ntk_output_flush(ntk_output *o) {
  if (!ntk_out_is_open(o)) return ntk_out_not_open("flush");
  NTK_CHECK(ntk_out_claim(o, 0.0));
  int rc = NTK_OK;
  errno = 0;
  if (H5Fflush(o->file, H5F_SCOPE_GLOBAL) < 0)
    rc = ntk_h5_fail_o(o, "cannot flush file", o->partial);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  return NTK_OK;
}

void ntk_series_scalar(ntk_series_value *v, ntk_traj_id id, double x) {
  v[id].set = NTK_SERIES_SCALAR + 1;
  v[id].x = x;
}

void ntk_series_int(ntk_series_value *v, ntk_traj_id id, long long i) {
  v[id].set = NTK_SERIES_INT + 1;
  v[id].i = i;
}

void ntk_series_row(ntk_series_value *v, ntk_traj_id id, int len, const double *row) {
  v[id].set = NTK_SERIES_ROW_K + 1; /* ROW_K and ROW_G are written alike */
  v[id].len = len;
  v[id].row = row;
}

void ntk_series_dmat(ntk_series_value *v, ntk_traj_id id, const ntk_dmat *A) {
  v[id].set = NTK_SERIES_NN + 1; /* NN and NK are written alike */
  v[id].A = A;
}

/* The setter that fits a kind (rows and matrices of either shape share one). */
static int setter_of(ntk_series_kind k) {
  return k == NTK_SERIES_ROW_G ? NTK_SERIES_ROW_K + 1 : k == NTK_SERIES_NK ? NTK_SERIES_NN + 1 : (int)k + 1;
}

int ntk_output_append_measurement(ntk_output *o, const ntk_series_value *v) {
  for (int i = 0; i < NTK_TRAJ_COUNT; ++i) {
    const ntk_series_info *s = &ntk_schema_trajectory[i];
    if (!v[i].set) continue;
    if (v[i].set != setter_of(s->kind))
      return ntk_err_set(NTK_ERR_INTERNAL, "output: %s set as another kind of series", s->path);
    switch (s->kind) {
      case NTK_SERIES_SCALAR: NTK_CHECK(ntk_output_append_scalar(o, s->path, v[i].x)); break;
      case NTK_SERIES_INT: NTK_CHECK(ntk_output_append_int(o, s->path, v[i].i)); break;
      case NTK_SERIES_ROW_K:
      case NTK_SERIES_ROW_G: NTK_CHECK(ntk_output_append_row(o, s->path, v[i].len, v[i].row)); break;
      case NTK_SERIES_NN:
      case NTK_SERIES_NK: NTK_CHECK(ntk_output_append_dmat(o, s->path, v[i].A)); break;
    }
  }
  NTK_CHECK(ntk_output_flush(o));
  return NTK_OK;
}

int ntk_output_read_steps(ntk_output *o, long long **steps, long long *rows) {
  const char *name = ntk_schema_trajectory[NTK_TRAJ_STEP].path;
  *steps = NULL;
  NTK_CHECK(ntk_output_rows(o, name, rows));
  if (*rows == 0) return NTK_OK;
  long long *s = ntk_malloc((size_t)*rows * sizeof *s, "trajectory steps");
  int rc = s ? NTK_OK : ntk_err_code();
  if (rc == NTK_OK) {
    /* every rank reads the small column (independent raw read; the open is collective) */
    hid_t d = H5Dopen2(o->file, name, H5P_DEFAULT);
    if (d < 0 || !ntk_h5check_dataset_intact(d) ||
        H5Dread(d, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) < 0) {
      H5Eclear2(H5E_DEFAULT);
      rc = ntk_err_set(NTK_ERR_RUNTIME, "cannot read %s of %s", name, o->partial);
    }
    if (d >= 0) H5Dclose(d);
  }
  rc = ntk_err_sync(o->g->comm, rc);
  if (rc != NTK_OK) {
    free(s);
    NTK_CHECK(rc);
  }
  *steps = s;
  return NTK_OK;
}
