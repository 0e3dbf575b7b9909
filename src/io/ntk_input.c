/* ntk_input: collective reads of a file ntkspec wrote (see ntk_input.h). */
#include "ntk_input.h"
#include "ntk_output_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_error.h"
#include "ntk_h5check.h"
#include "ntk_output.h"

static int fail(const ntk_input *in, const char *what, const char *name) {
  H5Eclear2(H5E_DEFAULT);
  return ntk_err_set(NTK_ERR_INPUT, "%s: %s %s", in->label, what, name);
}

int ntk_input_open(ntk_input *in, MPI_Comm comm, const char *path, const char *label) {
  int rank, rc = NTK_OK;
  MPI_Comm_rank(comm, &rank);
  in->f = H5I_INVALID_HID;
  snprintf(in->label, sizeof in->label, "%s", label);
  if (rank == 0) rc = ntk_h5check_file(path, label);
  NTK_CHECK(ntk_err_share0(comm, rc));
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
  H5Pset_all_coll_metadata_ops(fapl, 1);
  in->f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  rc = in->f < 0 ? fail(in, "cannot be opened as", "HDF5") : NTK_OK;
  NTK_CHECK(ntk_err_sync(comm, rc));
  return NTK_OK;
}

void ntk_input_close(ntk_input *in) {
  if (in->f >= 0) H5Fclose(in->f);
  in->f = H5I_INVALID_HID;
}

int ntk_input_attr_string(ntk_input *in, const char *name, char **out) {
  *out = NULL;
  if (H5Aexists(in->f, name) <= 0) return fail(in, "has no attribute", name);
  hid_t a = H5Aopen(in->f, name, H5P_DEFAULT), t = H5Tcopy(H5T_C_S1);
  int rc = NTK_OK;
  char *v = NULL;
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  if (a < 0 || H5Aread(a, t, &v) < 0 || !v) {
    rc = fail(in, "cannot read attribute", name);
  } else {
    *out = strdup(v);
    if (!*out) rc = ntk_err_set(NTK_ERR_MEMORY, "out of memory reading %s", in->label);
  }
  if (v) H5free_memory(v);
  H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return rc;
}

static int attr_num(ntk_input *in, const char *obj, const char *name, hid_t type, void *v) {
  if (H5Aexists_by_name(in->f, obj, name, H5P_DEFAULT) <= 0) return fail(in, "has no attribute", name);
  hid_t a = H5Aopen_by_name(in->f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
  int rc = a >= 0 && H5Aread(a, type, v) >= 0 ? NTK_OK : fail(in, "cannot read attribute", name);
  if (a >= 0) H5Aclose(a);
  return rc;
}

int ntk_input_attr_int(ntk_input *in, const char *obj, const char *name, long long *v) {
  return attr_num(in, obj, name, H5T_NATIVE_LLONG, v);
}

int ntk_input_attr_double(ntk_input *in, const char *obj, const char *name, double *v) {
  return attr_num(in, obj, name, H5T_NATIVE_DOUBLE, v);
}

int ntk_input_read_array(ntk_input *in, const char *name, long long n, double *x) {
  hid_t d = H5Dopen2(in->f, name, H5P_DEFAULT);
  if (d < 0) return fail(in, "has no dataset", name);
  hid_t sp = H5Dget_space(d);
  long long have = sp >= 0 ? (long long)H5Sget_simple_extent_npoints(sp) : -1;
  int rc = NTK_OK;
  if (have != n) {
    rc = ntk_err_set(NTK_ERR_INPUT, "%s: %s has %lld values, expected %lld", in->label, name, have, n);
  } else {
    rc = ntk_h5check_dataset(d, in->label, name);
    if (rc == NTK_OK && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0)
      rc = fail(in, "cannot read", name);
  }
  if (sp >= 0) H5Sclose(sp);
  H5Dclose(d);
  return rc;
}

int ntk_input_read_dmat(ntk_input *in, const char *name, long long lead, ntk_dmat *A) {
  const hid_t f = in->f;
  const char *label = in->label;
  int rc = NTK_OK;
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT), fs = -1, ms = -1, dxpl = -1;
  double *buf = NULL;
  if (d < 0) {
    H5Eclear2(H5E_DEFAULT);
    rc = ntk_err_set(NTK_ERR_INPUT, "%s: has no dataset %s", label, name);
    goto done;
  }
  fs = H5Dget_space(d);
  hsize_t dims[3] = {0, 0, 0};
  int r = fs >= 0 ? H5Sget_simple_extent_dims(fs, dims, NULL) : -1;
  int off = lead >= 0 ? 1 : 0;
  if (r != 2 + off || dims[off] != (hsize_t)A->m || dims[off + 1] != (hsize_t)A->n ||
      (off && (hsize_t)lead >= dims[0])) {
    rc = ntk_err_set(NTK_ERR_INPUT, "%s: %s has another shape than %d x %d", label, name, A->m, A->n);
    goto done;
  }
  if ((rc = ntk_h5check_dataset(d, label, name)) != NTK_OK) goto done;
  buf = ntk_malloc((size_t)(A->mloc > 0 ? A->mloc : 1) * (size_t)(A->nloc > 0 ? A->nloc : 1) *
                       sizeof(double), "a read buffer");
  if (!buf) {
    rc = ntk_err_code();
    goto done;
  }
  if (A->mloc > 0 && A->nloc > 0) {
    if (ntk_out_select_local_rows(fs, lead, A, 0, A->mloc) < 0) {
      rc = ntk_h5_fail("cannot select blocks", name);
      goto done;
    }
    hsize_t md[2] = {(hsize_t)A->mloc, (hsize_t)A->nloc};
    ms = H5Screate_simple(2, md, NULL);
  } else {
    H5Sselect_none(fs);
    ms = H5Screate(H5S_SCALAR);
    H5Sselect_none(ms);
  }
  dxpl = H5Pcreate(H5P_DATASET_XFER);
  H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
  if (H5Dread(d, H5T_NATIVE_DOUBLE, ms, fs, dxpl, buf) < 0) {
    rc = ntk_h5_fail("cannot read", name);
    goto done;
  }
  for (int il = 0; il < A->mloc; ++il)
    for (int jl = 0; jl < A->nloc; ++jl) A->a[il + (size_t)jl * A->lld] = buf[(size_t)il * A->nloc + jl];
done:
  free(buf);
  if (dxpl >= 0) H5Pclose(dxpl);
  if (ms >= 0) H5Sclose(ms);
  if (fs >= 0) H5Sclose(fs);
  if (d >= 0) H5Dclose(d);
  return rc;
}
