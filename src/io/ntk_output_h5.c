/* ntk_output_h5: HDF5's errors as the run's one error line (the innermost message, the
 * file, the cause of a failed write), and the property lists and small HDF5 helpers the
 * output files share. */
#include "ntk_output_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_error.h"
#include "ntk_schema.h"

static herr_t first_desc(unsigned n, const H5E_error2_t *e, void *data) {
  (void)n;
  char *buf = data;
  if (!buf[0] && e->desc && e->desc[0]) snprintf(buf, 200, "%s", e->desc);
  return 0;
}

/* Why a write into `file` failed, when HDF5 cannot say: MPI-IO reports a full disk as a
 * bare MPI error class, but errno is still the failed write's, and a folder without free
 * space left is the same diagnosis when errno was overwritten since. */
static const char *io_cause(int err_no, const char *file) {
  if (err_no == ENOSPC || err_no == EDQUOT || err_no == EFBIG || err_no == EROFS ||
      err_no == EIO)
    return strerror(err_no);
  if (!file || !file[0]) return NULL;
  char dir[1100];
  ntk_path_dirname(file, dir, sizeof dir);
  double f = ntk_disk_free_bytes(dir);
  return f >= 0 && f < NTK_MIB ? strerror(ENOSPC) : NULL;
}

/* The innermost entry of HDF5's stack is the one that says why (e.g. "no space left").
 * `file` (may be NULL) is named, with the cause of a failed write when there is one. */
int ntk_h5_fail_in(const char *file, const char *what, const char *name) {
  int err_no = errno;
  char detail[200] = "";
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first_desc, detail);
  H5Eclear2(H5E_DEFAULT);
  const char *cause = io_cause(err_no, file);
  char where[1200] = "";
  if (file && file[0] && strcmp(file, name) != 0) snprintf(where, sizeof where, " in %s", file);
  if (cause)
    return ntk_err_set(NTK_ERR_RUNTIME, "HDF5: %s: %s%s: %s%s%s%s", what, name, where, cause,
                       detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
  if (detail[0])
    return ntk_err_set(NTK_ERR_RUNTIME, "HDF5: %s: %s%s (%s)", what, name, where, detail);
  return ntk_err_set(NTK_ERR_RUNTIME, "HDF5: %s: %s%s", what, name, where);
}

int ntk_h5_fail(const char *what, const char *name) { return ntk_h5_fail_in(NULL, what, name); }

/* A failed HDF5 call on the open file `o`: named, and the file marked broken (see
 * ntk_output_close). */
int ntk_h5_fail_o(ntk_output *o, const char *what, const char *name) {
  o->broken = 1;
  return ntk_h5_fail_in(o->partial, what, name);
}

void ntk_h5_close(hid_t id) {
  if (id < 0) return;
  switch (H5Iget_type(id)) {
    case H5I_DATASET: H5Dclose(id); break;
    case H5I_GROUP: H5Gclose(id); break;
    case H5I_DATATYPE: H5Tclose(id); break;
    case H5I_DATASPACE: H5Sclose(id); break;
    case H5I_GENPROP_LST: H5Pclose(id); break;
    case H5I_ATTR: H5Aclose(id); break;
    default: break;
  }
}

int ntk_out_is_open(const ntk_output *o) { return o && o->g && o->file > 0; }

int ntk_out_not_open(const char *what) {
  return ntk_err_set(NTK_ERR_INTERNAL, "output: %s on a file that is not open", what);
}

hid_t ntk_h5_fapl(MPI_Comm comm) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0) return fapl;
  /* Collective metadata reads and writes: one rank reads and broadcasts instead of every
   * rank hitting the file system; every metadata call here is made by all ranks anyway. */
  if (H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0 ||
      H5Pset_all_coll_metadata_ops(fapl, 1) < 0 || H5Pset_coll_metadata_write(fapl, 1) < 0) {
    H5Pclose(fapl);
    return -1;
  }
  return fapl;
}

hid_t ntk_h5_dxpl(void) {
  hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
  if (dxpl >= 0 && H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0) {
    H5Pclose(dxpl);
    return -1;
  }
  return dxpl;
}

hid_t ntk_h5_lcpl(void) {
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  if (lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) < 0) {
    H5Pclose(lcpl);
    return -1;
  }
  return lcpl;
}

hid_t ntk_h5_vlstr(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
    H5Tclose(t);
    return -1;
  }
  return t;
}

/* H5Lexists fails (rather than answering no) when a middle component is missing, so
 * walk the path one component at a time.  1 exists, 0 not, <0 error. */
int ntk_h5_link_exists(hid_t file, const char *name) {
  char buf[1024];
  if (snprintf(buf, sizeof buf, "%s", name) >= (int)sizeof buf) return -1;
  if (!strcmp(buf, "/") || !buf[0]) return 1;
  for (char *p = buf + 1;; ++p) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      htri_t e = H5Lexists(file, buf, H5P_DEFAULT);
      if (e <= 0) return e < 0 ? -1 : 0;
      if (c == '\0') return 1;
      *p = c;
    }
  }
}
hid_t ntk_h5_file_type(hid_t mtype) {
  if (H5Tequal(mtype, H5T_NATIVE_DOUBLE) > 0) return H5T_IEEE_F64LE;
  if (H5Tequal(mtype, H5T_NATIVE_LLONG) > 0) return H5T_STD_I64LE;
  return mtype;
}

int ntk_h5_peek_status(const char *path, char *status, size_t n, long long *last_step) {
  status[0] = '\0';
  *last_step = -1;
  /* serially, without HDF5's file lock: the file may be another job's (that the output
   * lock has already refused) or a killed one's */
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl >= 0) H5Pset_file_locking(fapl, 0, 1);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl >= 0 ? fapl : H5P_DEFAULT);
  if (fapl >= 0) H5Pclose(fapl);
  int rc = -1;
  if (f >= 0) {
    hid_t a = H5Aexists(f, NTK_ATTR_STATUS) > 0 ? H5Aopen(f, NTK_ATTR_STATUS, H5P_DEFAULT) : -1;
    hid_t t = ntk_h5_vlstr();
    char *v = NULL;
    if (a >= 0 && t >= 0 && H5Aread(a, t, &v) >= 0 && v) {
      snprintf(status, n, "%s", v);
      rc = 0;
    }
    if (v) H5free_memory(v);
    ntk_h5_close(t);
    ntk_h5_close(a);
    a = H5Aexists(f, "last_step") > 0 ? H5Aopen(f, "last_step", H5P_DEFAULT) : -1;
    if (a >= 0 && H5Aread(a, H5T_NATIVE_LLONG, last_step) < 0) *last_step = -1;
    ntk_h5_close(a);
    H5Fclose(f);
  }
  H5Eclear2(H5E_DEFAULT);
  return rc;
}
