/* ntk_output_write: attributes, datasets written from the block-cyclic layout by every
 * rank (collective hyperslab writes in bounded rounds), replicated data written by rank 0,
 * and the matching block-cyclic read. */
#include "ntk_output_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_error.h"
#include "ntk_h5check.h"

/* Bytes of the row-major staging buffer a rank uses per collective write of a dmat: big
 * local blocks go out in several rounds so the write never doubles a rank's memory. */
static size_t write_buffer_bytes = (size_t)64 << 20;

void ntk_output_set_write_buffer(size_t bytes) { write_buffer_bytes = bytes; }

int64_t ntk_output_stage_bytes(int64_t local_bytes) {
  return local_bytes < (int64_t)write_buffer_bytes ? local_bytes : (int64_t)write_buffer_bytes;
}

static int attr_write(ntk_output *o, const char *obj, const char *name, hid_t type,
                      const void *buf) {
  if (!ntk_out_is_open(o)) return ntk_out_not_open("attribute");
  NTK_CHECK(ntk_out_claim(o, 0.0));
  return ntk_out_attr_write_claimed(o, obj, name, type, buf);
}

/* attr_write in space already claimed: the final status of a run whose last claim failed
 * still fits in the slack of the earlier ones. */
int ntk_out_attr_write_claimed(ntk_output *o, const char *obj, const char *name, hid_t type,
                              const void *buf) {
  int rc = NTK_OK;
  hid_t oid = H5I_INVALID_HID, sp = H5I_INVALID_HID, a = H5I_INVALID_HID;
  hid_t lcpl = H5I_INVALID_HID;
  if (!obj || !obj[0]) obj = "/";
  int e = ntk_h5_link_exists(o->file, obj);
  if (e < 0) {
    rc = ntk_h5_fail_o(o, "cannot look up object", obj);
    goto done;
  }
  if (e) {
    H5TRY(oid = H5Oopen(o->file, obj, H5P_DEFAULT), "cannot open object", obj);
  } else {
    H5TRY(lcpl = ntk_h5_lcpl(), "cannot make a property list", obj);
    H5TRY(oid = H5Gcreate2(o->file, obj, lcpl, H5P_DEFAULT, H5P_DEFAULT),
          "cannot create group", obj);
  }
  htri_t has = H5Aexists(oid, name);
  H5TRY(has, "cannot look up attribute", name);
  if (has) H5TRY(H5Adelete(oid, name), "cannot replace attribute", name);
  H5TRY(sp = H5Screate(H5S_SCALAR), "cannot make a dataspace", name);
  H5TRY(a = H5Acreate2(oid, name, ntk_h5_file_type(type), sp, H5P_DEFAULT, H5P_DEFAULT),
        "cannot create attribute", name);
  H5TRY(H5Awrite(a, type, buf), "cannot write attribute", name);
done:
  ntk_h5_close(a);
  ntk_h5_close(sp);
  ntk_h5_close(lcpl);
  ntk_h5_close(oid);
  return ntk_err_sync(o->g->comm, rc);
}

int ntk_output_attr_string(ntk_output *o, const char *obj, const char *name, const char *value) {
  hid_t t = ntk_h5_vlstr();
  if (t < 0) return ntk_err_sync(o->g->comm, ntk_h5_fail("cannot make a string type", name));
  const char *v = value ? value : "";
  int rc = attr_write(o, obj, name, t, &v);
  H5Tclose(t);
  NTK_CHECK(rc);
  return NTK_OK;
}

int ntk_output_attr_int(ntk_output *o, const char *obj, const char *name, long long value) {
  NTK_CHECK(attr_write(o, obj, name, H5T_NATIVE_LLONG, &value));
  return NTK_OK;
}

int ntk_output_attr_double(ntk_output *o, const char *obj, const char *name, double value) {
  NTK_CHECK(attr_write(o, obj, name, H5T_NATIVE_DOUBLE, &value));
  return NTK_OK;
}

/* New dataset (parents created).  maxd/chunk NULL: contiguous.  large: no fill values,
 * since parallel HDF5 allocates early and would otherwise write every byte twice. */
int ntk_out_dset_create(ntk_output *o, const char *name, hid_t mtype, int rank,
                       const hsize_t *dims, const hsize_t *maxd, const hsize_t *chunk, int large,
                       hid_t *d) {
  int rc = NTK_OK;
  hid_t sp = H5I_INVALID_HID, lcpl = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
  H5TRY(sp = H5Screate_simple(rank, dims, maxd), "cannot make a dataspace", name);
  H5TRY(lcpl = ntk_h5_lcpl(), "cannot make a property list", name);
  H5TRY(dcpl = H5Pcreate(H5P_DATASET_CREATE), "cannot make a property list", name);
  if (chunk) H5TRY(H5Pset_chunk(dcpl, rank, chunk), "cannot set chunking", name);
  if (large) H5TRY(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), "cannot set fill time", name);
  H5TRY(*d = H5Dcreate2(o->file, name, ntk_h5_file_type(mtype), sp, lcpl, dcpl, H5P_DEFAULT),
        "cannot create dataset", name);
done:
  ntk_h5_close(sp);
  ntk_h5_close(lcpl);
  ntk_h5_close(dcpl);
  return rc;
}

/* Opens dataset `name` if it exists (*d < 0 when not) and reads its shape. */
int ntk_out_dset_lookup(ntk_output *o, const char *name, hid_t *d, int *rank, hsize_t *dims,
                       hsize_t *maxd) {
  int rc = NTK_OK;
  hid_t sp = H5I_INVALID_HID;
  *d = H5I_INVALID_HID;
  *rank = -1;
  int e = ntk_h5_link_exists(o->file, name);
  if (e < 0) return ntk_h5_fail_o(o, "cannot look up dataset", name);
  if (!e) return NTK_OK;
  H5TRY(*d = H5Dopen2(o->file, name, H5P_DEFAULT), "cannot open dataset", name);
  H5TRY(sp = H5Dget_space(*d), "cannot get dataspace", name);
  H5TRY(*rank = H5Sget_simple_extent_dims(sp, dims, maxd), "cannot get extent", name);
done:
  ntk_h5_close(sp);
  if (rc != NTK_OK) {
    ntk_h5_close(*d);
    *d = H5I_INVALID_HID;
  }
  return rc;
}

/* Opens `name` if it already has exactly this type and shape (a rewrite, e.g. after a
 * resume), otherwise (re)creates it, contiguous. */
int ntk_out_dset_ensure(ntk_output *o, const char *name, hid_t mtype, int rank,
                       const hsize_t *dims, int large, hid_t *d) {
  hid_t t = H5I_INVALID_HID;
  hsize_t cur[H5S_MAX_RANK];
  int r;
  int rc = ntk_out_dset_lookup(o, name, d, &r, cur, NULL);
  if (rc != NTK_OK) return rc;
  if (*d >= 0) {
    H5TRY(t = H5Dget_type(*d), "cannot get type", name);
    int same = r == rank && H5Tequal(t, ntk_h5_file_type(mtype)) > 0;
    for (int k = 0; same && k < rank; ++k) same = cur[k] == dims[k];
    hid_t dcpl_old = H5Dget_create_plist(*d);
    if (dcpl_old >= 0) {
      same = same && H5Pget_layout(dcpl_old) == H5D_CONTIGUOUS;
      H5Pclose(dcpl_old);
    }
    if (same) goto done;
    ntk_h5_close(*d);
    *d = H5I_INVALID_HID;
    H5TRY(H5Ldelete(o->file, name, H5P_DEFAULT), "cannot replace dataset", name);
  }
  rc = ntk_out_dset_create(o, name, mtype, rank, dims, NULL, NULL, large, d);
done:
  if (rc != NTK_OK) {
    ntk_h5_close(*d);
    *d = H5I_INVALID_HID;
  }
  ntk_h5_close(t);
  return rc;
}

/* Local index range [l0, l1) (l0 a multiple of nb) of a block-cyclic dimension as at
 * most two regular pieces with stride np*nb: the full blocks and a trailing partial one.
 * Only the global last block can be partial, and it is always the last local one. */
static int bc_pieces(int l0, int l1, int p, int np, int nb, hsize_t *start, hsize_t *count,
                     hsize_t *block) {
  int len = l1 - l0, full = len / nb, rem = len % nb, k = 0;
  hsize_t g0 = (hsize_t)(l0 / nb) * nb * np + (hsize_t)p * nb;
  if (full > 0) {
    start[k] = g0;
    count[k] = (hsize_t)full;
    block[k] = (hsize_t)nb;
    ++k;
  }
  if (rem > 0) {
    start[k] = g0 + (hsize_t)full * nb * np;
    count[k] = 1;
    block[k] = (hsize_t)rem;
    ++k;
  }
  return k;
}

/* File selection of local rows [l0, l1) x all local columns of A, in slice `lead` of a
 * 3-D dataset or in a 2-D one (lead < 0).  HDF5 walks both this selection and the
 * row-major memory buffer in row-major order; local indices grow with global ones, so
 * element k of the buffer lands on the k-th selected file element. */
herr_t ntk_out_select_local_rows(hid_t fs, long long lead, const ntk_dmat *A, int l0, int l1) {
  const ntk_grid *g = A->g;
  hsize_t rs[2], rc[2], rb[2], cs[2], cc[2], cb[2];
  int nr = bc_pieces(l0, l1, g->myrow, g->nprow, g->nb, rs, rc, rb);
  int nc = bc_pieces(0, A->nloc, g->mycol, g->npcol, g->nb, cs, cc, cb);
  int off = lead >= 0 ? 1 : 0;
  H5S_seloper_t op = H5S_SELECT_SET;
  for (int i = 0; i < nr; ++i)
    for (int j = 0; j < nc; ++j) {
      hsize_t start[3], stride[3], count[3], block[3];
      if (off) {
        start[0] = (hsize_t)lead;
        stride[0] = count[0] = block[0] = 1;
      }
      start[off] = rs[i];
      stride[off] = (hsize_t)g->nprow * g->nb;
      count[off] = rc[i];
      block[off] = rb[i];
      start[off + 1] = cs[j];
      stride[off + 1] = (hsize_t)g->npcol * g->nb;
      count[off + 1] = cc[j];
      block[off + 1] = cb[j];
      if (H5Sselect_hyperslab(fs, op, start, stride, count, block) < 0) return -1;
      op = H5S_SELECT_OR;
    }
  return 0;
}

/* This rank's part of one round: local rows [l0, l1) selected in fs, transposed into buf,
 * described by *ms; an empty range selects nothing.  The element count is checked here,
 * because a mismatch would fail H5Dwrite on this rank only, before the collective call
 * that the other ranks would then wait in forever. */
static int prepare_round(hid_t fs, hid_t *ms, const ntk_dmat *A, long long lead, int l0,
                         int l1, double *buf, const char *name) {
  int nloc = A->nloc;
  if (l0 >= l1 || nloc <= 0) {
    /* nothing of mine in this round, but collective I/O needs every rank in the call */
    if (H5Sselect_none(fs) < 0 || (*ms = H5Screate(H5S_SCALAR)) < 0 || H5Sselect_none(*ms) < 0)
      return ntk_h5_fail("cannot select", name);
    return NTK_OK;
  }
  if (ntk_out_select_local_rows(fs, lead, A, l0, l1) < 0) return ntk_h5_fail("cannot select blocks", name);
  hsize_t md[2] = {(hsize_t)(l1 - l0), (hsize_t)nloc};
  if ((*ms = H5Screate_simple(2, md, NULL)) < 0) return ntk_h5_fail("cannot make a dataspace", name);
  hssize_t got = H5Sget_select_npoints(fs);
  if (got != (hssize_t)(md[0] * md[1]))
    return ntk_err_set(NTK_ERR_INTERNAL, "output: %s: block-cyclic selection of %lld elements "
                       "for %lld local ones", name, (long long)got, (long long)(md[0] * md[1]));
  for (int il = l0; il < l1; ++il) {
    double *row = buf + (size_t)(il - l0) * nloc;
    for (int jl = 0; jl < nloc; ++jl) row[jl] = A->a[il + (size_t)jl * A->lld];
  }
  return NTK_OK;
}

/* Collective: every rank writes its own blocks of A straight into dataset d (2-D, or
 * slice `lead` of a 3-D one), in as many rounds as the largest local block needs. */
int ntk_out_write_dmat_into(ntk_output *o, hid_t d, const char *name, long long lead,
                           const ntk_dmat *A) {
  MPI_Comm comm = o->g->comm;
  int nb = A->g->nb, mloc = A->mloc, nloc = A->nloc;
  hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID, dxpl = H5I_INVALID_HID;
  size_t row_bytes = (size_t)(nloc > 0 ? nloc : 1) * sizeof(double);
  size_t rows = write_buffer_bytes / row_bytes;
  /* rows per round: whole local blocks, all of them when they fit */
  int R = rows >= (size_t)mloc ? (mloc + nb - 1) / nb * nb : (int)(rows / nb) * nb;
  if (R < nb) R = nb;
  int mine = mloc > 0 && nloc > 0 ? (mloc + R - 1) / R : 0, rounds = 0;
  MPI_Allreduce(&mine, &rounds, 1, MPI_INT, MPI_MAX, comm);
  int brows = mine > 0 ? (R < mloc ? R : mloc) : 1;
  double *buf = ntk_malloc((size_t)brows * row_bytes, "the HDF5 write buffer");
  int rc = buf ? NTK_OK : NTK_ERR_MEMORY;
  if (rc == NTK_OK && (dxpl = ntk_h5_dxpl()) < 0)
    rc = ntk_h5_fail("cannot make a transfer property list", name);
  if (rc == NTK_OK && (fs = H5Dget_space(d)) < 0)
    rc = ntk_h5_fail_o(o, "cannot get dataspace", name);
  rc = ntk_err_sync(comm, rc);
  for (int r = 0; r < rounds && rc == NTK_OK; ++r) {
    int l0 = r * R, l1 = l0 + R < mloc ? l0 + R : mloc;
    rc = ntk_err_sync(comm, prepare_round(fs, &ms, A, lead, l0, l1, buf, name));
    errno = 0;
    if (rc == NTK_OK && H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, fs, dxpl, buf) < 0)
      rc = ntk_h5_fail_o(o, "cannot write dataset", name);
    ntk_h5_close(ms);
    ms = H5I_INVALID_HID;
    rc = ntk_err_sync(comm, rc);
  }
  free(buf);
  ntk_h5_close(fs);
  ntk_h5_close(dxpl);
  return rc;
}

int ntk_out_check_grid(const ntk_output *o, const ntk_dmat *A, const char *name) {
  if (!A || !A->g || A->g->comm != o->g->comm)
    return ntk_err_set(NTK_ERR_INTERNAL, "output: matrix for %s is not on the output's grid",
                       name);
  return NTK_OK;
}

int ntk_output_write_dmat(ntk_output *o, const char *name, const ntk_dmat *A) {
  if (!ntk_out_is_open(o)) return ntk_out_not_open(name);
  NTK_CHECK(ntk_out_check_grid(o, A, name));
  NTK_CHECK(ntk_out_claim(o, 8.0 * A->m * A->n));
  hid_t d;
  hsize_t dims[2] = {(hsize_t)A->m, (hsize_t)A->n};
  int rc = ntk_out_dset_ensure(o, name, H5T_NATIVE_DOUBLE, 2, dims, 1, &d);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  rc = ntk_out_write_dmat_into(o, d, name, -1, A);
  H5Dclose(d);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  return NTK_OK;
}

int ntk_output_write_dmat_slice(ntk_output *o, const char *name, int count, int index,
                                const ntk_dmat *A) {
  if (!ntk_out_is_open(o)) return ntk_out_not_open(name);
  NTK_CHECK(ntk_out_check_grid(o, A, name));
  if (index < 0 || index >= count)
    return ntk_err_set(NTK_ERR_INTERNAL, "output: slice %d of %s out of range [0, %d)", index,
                       name, count);
  /* the whole dataset is allocated with its first slice */
  NTK_CHECK(ntk_out_claim(o, 8.0 * A->m * A->n * (index == 0 ? count : 1)));
  hid_t d;
  hsize_t dims[3] = {(hsize_t)count, (hsize_t)A->m, (hsize_t)A->n};
  int rc = ntk_out_dset_ensure(o, name, H5T_NATIVE_DOUBLE, 3, dims, 1, &d);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  rc = ntk_out_write_dmat_into(o, d, name, index, A);
  H5Dclose(d);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  return NTK_OK;
}

/* Collective write of replicated data into d: rank 0 writes buf (mrank, mdims) to the
 * file region start/count (the whole dataset when start is NULL); the others take part
 * selecting nothing. */
int ntk_out_write_rank0(ntk_output *o, hid_t d, const char *name, hid_t mtype, int mrank,
                       const hsize_t *mdims, const hsize_t *start, const hsize_t *count,
                       const void *buf) {
  int rc = NTK_OK;
  hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID, dxpl = H5I_INVALID_HID;
  H5TRY(dxpl = ntk_h5_dxpl(), "cannot make a transfer property list", name);
  H5TRY(fs = H5Dget_space(d), "cannot get dataspace", name);
  H5TRY(ms = H5Screate_simple(mrank, mdims, NULL), "cannot make a dataspace", name);
  if (o->g->rank != 0) {
    H5TRY(H5Sselect_none(fs), "cannot select", name);
    H5TRY(H5Sselect_none(ms), "cannot select", name);
  } else if (start) {
    H5TRY(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL), "cannot select",
          name);
  }
done:
  /* agree before the collective write: a rank that failed to prepare would not be in it */
  rc = ntk_err_sync(o->g->comm, rc);
  errno = 0;
  if (rc == NTK_OK && H5Dwrite(d, mtype, ms, fs, dxpl, buf) < 0)
    rc = ntk_h5_fail_o(o, "cannot write dataset", name);
  ntk_h5_close(ms);
  ntk_h5_close(fs);
  ntk_h5_close(dxpl);
  return ntk_err_sync(o->g->comm, rc);
}

static int write_replicated(ntk_output *o, const char *name, hid_t mtype, int rank,
                            const hsize_t *dims, const void *buf) {
  if (!ntk_out_is_open(o)) return ntk_out_not_open(name);
  double bytes = (double)H5Tget_size(mtype);
  for (int k = 0; k < rank; ++k) bytes *= (double)dims[k];
  NTK_CHECK(ntk_out_claim(o, bytes));
  hid_t d;
  int rc = ntk_err_sync(o->g->comm, ntk_out_dset_ensure(o, name, mtype, rank, dims, 0, &d));
  if (rc == NTK_OK) rc = ntk_out_write_rank0(o, d, name, mtype, rank, dims, NULL, NULL, buf);
  ntk_h5_close(d);
  return rc;
}

int ntk_output_write_array(ntk_output *o, const char *name, int rank, const long long *dims,
                           const double *x) {
  if (rank < 1 || rank > 4)
    return ntk_err_set(NTK_ERR_INTERNAL, "output: %s of rank %d", name, rank);
  hsize_t hd[4];
  for (int k = 0; k < rank; ++k) hd[k] = (hsize_t)dims[k];
  NTK_CHECK(write_replicated(o, name, H5T_NATIVE_DOUBLE, rank, hd, x));
  return NTK_OK;
}

int ntk_output_write_int_array(ntk_output *o, const char *name, long long n, const long long *x) {
  hsize_t hd[1] = {(hsize_t)n};
  NTK_CHECK(write_replicated(o, name, H5T_NATIVE_LLONG, 1, hd, x));
  return NTK_OK;
}

/* Fixed-length strings: parallel HDF5 1.10 refuses to write variable-length data to
 * datasets (it would need the global heap from several ranks). */
int ntk_output_write_strings(ntk_output *o, const char *name, int n, const char *const *s) {
  if (!ntk_out_is_open(o)) return ntk_out_not_open(name);
  int width = 1;
  for (int i = 0; i < n; ++i) {
    int len = s[i] ? (int)strlen(s[i]) + 1 : 1;
    if (len > width) width = len;
  }
  /* The type is part of the collective create: every rank must use the same width. */
  int w = width;
  MPI_Allreduce(&w, &width, 1, MPI_INT, MPI_MAX, o->g->comm);
  char *buf = ntk_calloc((size_t)(n > 0 ? n : 1), (size_t)width, "a string table");
  NTK_CHECK(ntk_err_sync(o->g->comm, buf ? NTK_OK : NTK_ERR_MEMORY));
  for (int i = 0; i < n; ++i)
    if (s[i]) memcpy(buf + (size_t)i * width, s[i], strlen(s[i]));
  int rc = NTK_OK;
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0 || H5Tset_size(t, (size_t)width) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0 ||
      H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
    rc = ntk_err_sync(o->g->comm, ntk_h5_fail("cannot make a string type", name));
  } else {
    hsize_t hd[1] = {(hsize_t)n};
    rc = write_replicated(o, name, t, 1, hd, buf);
  }
  ntk_h5_close(t);
  free(buf);
  NTK_CHECK(rc);
  return NTK_OK;
}


int ntk_output_attr_get_int(ntk_output *o, const char *name, long long dflt, long long *value) {
  if (!ntk_out_is_open(o)) return ntk_out_not_open(name);
  *value = dflt;
  int rc = NTK_OK;
  htri_t has = H5Aexists(o->file, name);
  if (has < 0) {
    rc = ntk_h5_fail_o(o, "cannot look up attribute", name);
  } else if (has) {
    hid_t a = H5Aopen(o->file, name, H5P_DEFAULT);
    if (a < 0 || H5Aread(a, H5T_NATIVE_LLONG, value) < 0) rc = ntk_h5_fail_o(o, "cannot read attribute", name);
    if (a >= 0) H5Aclose(a);
  }
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  return NTK_OK;
}
