/* fallocate(2) and FALLOC_FL_KEEP_SIZE are Linux's, declared for _GNU_SOURCE */
#define _GNU_SOURCE
#include "ntk_output.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "ntk_error.h"
#include "ntk_h5check.h"
#include "ntk_log.h"

#define MIB (1024.0 * 1024.0)

/* Bytes of the row-major staging buffer a rank uses per collective write of a dmat: big
 * local blocks go out in several rounds so the write never doubles a rank's memory. */
static size_t write_buffer_bytes = (size_t)64 << 20;

void ntk_output_set_write_buffer(size_t bytes) { write_buffer_bytes = bytes; }

int64_t ntk_output_stage_bytes(int64_t local_bytes) {
  return local_bytes < (int64_t)write_buffer_bytes ? local_bytes : (int64_t)write_buffer_bytes;
}

/* ---------- HDF5 error conversion ---------- */

static herr_t first_desc(unsigned n, const H5E_error2_t *e, void *data) {
  (void)n;
  char *buf = data;
  if (!buf[0] && e->desc && e->desc[0]) snprintf(buf, 200, "%s", e->desc);
  return 0;
}

/* Free bytes for an unprivileged writer in the folder of `path`; < 0 when unknown. */
static double free_bytes(const char *dir) {
  struct statvfs v;
  if (statvfs(dir, &v) != 0) return -1.0;
  return (double)v.f_bavail * (double)v.f_frsize;
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
  double f = free_bytes(dir);
  return f >= 0 && f < MIB ? strerror(ENOSPC) : NULL;
}

/* The innermost entry of HDF5's stack is the one that says why (e.g. "no space left").
 * `file` (may be NULL) is named, with the cause of a failed write when there is one. */
static int h5_fail_in(const char *file, const char *what, const char *name) {
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

static int h5_fail(const char *what, const char *name) { return h5_fail_in(NULL, what, name); }

/* A failed HDF5 call on the open file `o`: named, and the file marked broken (see
 * ntk_output_close). */
static int h5_fail_o(ntk_output *o, const char *what, const char *name) {
  o->broken = 1;
  return h5_fail_in(o->partial, what, name);
}

/* Inside functions that have the ntk_output `o`. */
#define H5TRY(expr, what, name)                \
  do {                                         \
    if ((expr) < 0) {                          \
      rc = h5_fail_o(o, (what), (name));       \
      goto done;                               \
    }                                          \
  } while (0)

static void h5_close(hid_t id) {
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

static int is_open(const ntk_output *o) { return o && o->g && o->file > 0; }

static int not_open(const char *what) {
  return ntk_err_set(NTK_ERR_INTERNAL, "output: %s on a file that is not open", what);
}

static hid_t new_fapl(MPI_Comm comm) {
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

static hid_t new_dxpl(void) {
  hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
  if (dxpl >= 0 && H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0) {
    H5Pclose(dxpl);
    return -1;
  }
  return dxpl;
}

static hid_t new_lcpl(void) {
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  if (lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) < 0) {
    H5Pclose(lcpl);
    return -1;
  }
  return lcpl;
}

static hid_t new_vlstr(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
    H5Tclose(t);
    return -1;
  }
  return t;
}

/* H5Lexists fails (rather than answering no) when a middle component is missing, so
 * walk the path one component at a time.  1 exists, 0 not, <0 error. */
static int link_exists(hid_t file, const char *name) {
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

/* ---------- open / reopen ---------- */

static int set_paths(ntk_output *o, const char *path) {
  if (!path || !path[0]) return ntk_err_set(NTK_ERR_INPUT, "output.path: empty");
  if (strlen(path) >= sizeof o->path)
    return ntk_err_set(NTK_ERR_INPUT, "output.path: longer than %zu characters",
                       sizeof o->path - 1);
  snprintf(o->path, sizeof o->path, "%s", path);
  snprintf(o->partial, sizeof o->partial, "%s.partial", path);
  return NTK_OK;
}

static int exists(const char *p) { return access(p, F_OK) == 0; }

void ntk_path_dirname(const char *path, char *dir, size_t len) {
  snprintf(dir, len, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash)
    snprintf(dir, len, ".");
  else if (slash == dir)
    dir[1] = '\0';
  else
    *slash = '\0';
}

/* Rank 0 only: the folder of `path` exists and a file can be made in it.  A probe file
 * rather than access(2): for root access says yes to any folder except on a read-only
 * mount, and it cannot see e.g. a full inode table or an NFS server's own refusal. */
static int check_folder(const char *path) {
  char dir[1024], probe[1100];
  ntk_path_dirname(path, dir, sizeof dir);
  struct stat st;
  if (stat(dir, &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return ntk_err_set(NTK_ERR_INPUT, "output.path: folder %s does not exist", dir);
    return ntk_err_set(NTK_ERR_INPUT, "output.path: folder %s: %s", dir, strerror(errno));
  }
  if (!S_ISDIR(st.st_mode))
    return ntk_err_set(NTK_ERR_INPUT, "output.path: %s is not a folder", dir);
  snprintf(probe, sizeof probe, "%s.probe", path);
  int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0 && errno == EEXIST && unlink(probe) == 0) /* left by a killed check */
    fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0)
    return ntk_err_set(NTK_ERR_INPUT, "output.path: folder %s is not writable (%s)", dir,
                       strerror(errno));
  close(fd);
  unlink(probe);
  return NTK_OK;
}

/* Collective: rank 0 alone looked (rc is its result, ignored elsewhere); its verdict
 * becomes every rank's own error, so that the one printed line has no "[rank 0]". */
/* A matrix dimension padded to the 256-wide chunks of ntk_output_append_dmat's datasets. */
static double padded(int x) {
  int c = x < 256 ? (x > 0 ? x : 1) : 256;
  return ceil((double)x / c) * c;
}

#ifdef FALLOC_FL_KEEP_SIZE
/* The outcome of claiming disk blocks for `o` (errno e, 0: claimed): a file system that
 * cannot claim ahead turns claiming off; any other failure is the run's one error line. */
static int claim_result(ntk_output *o, int e) {
  if (e == EOPNOTSUPP || e == ENOSYS || e == EINVAL) {
    o->no_reserve = 1;
    return NTK_OK;
  }
  if (e == 0) return NTK_OK;
  char dir[1100];
  ntk_path_dirname(o->partial, dir, sizeof dir);
  return ntk_err_set(NTK_ERR_RUNTIME, "output: cannot write %s: %s (%.1f MiB free in %s)",
                     o->partial, strerror(e), free_bytes(dir) / MIB, dir);
}
#endif

/* Collective: claim the disk blocks of the next `bytes` the file grows by, plus 1 MiB for
 * HDF5's metadata, before HDF5 writes them.  A disk that filled up since the last claim
 * is then an error here, agreed by all ranks while HDF5's file is still consistent,
 * rather than a failed write inside HDF5, after which its parallel close can hang.  Rank 0
 * claims from the file's end (FALLOC_FL_KEEP_SIZE: the size, and so HDF5's view of the
 * file, does not change), again whenever the claim no longer reaches half a MiB beyond
 * what this write needs, or the file shrank (a truncation frees the blocks above it);
 * where the file system cannot claim ahead, nothing is. */
static int reserve(ntk_output *o, double bytes) {
  int rc = NTK_OK;
#ifdef FALLOC_FL_KEEP_SIZE
  struct stat st;
  if (o->g->rank == 0 && !o->no_reserve) {
    int e = 0;
    if (o->claim_fd <= 0) o->claim_fd = open(o->partial, O_WRONLY);
    if (o->claim_fd < 0 || fstat(o->claim_fd, &st) != 0) {
      e = errno;
    } else if ((double)st.st_size < o->seen_size ||
               (double)st.st_size + bytes + 0.5 * MIB > o->reserved) {
      off_t from = st.st_size & ~(off_t)4095, len = (off_t)(bytes + MIB) + (st.st_size - from);
      if (fallocate(o->claim_fd, FALLOC_FL_KEEP_SIZE, from, len) != 0)
        e = errno;
      else
        o->reserved = (double)(from + len);
    }
    if (e == 0) o->seen_size = (double)st.st_size;
    rc = claim_result(o, e);
  }
#else
  (void)bytes;
#endif
  return ntk_err_share0(o->g->comm, rc);
}

/* Rank 0: give back the blocks claimed beyond the end of the closed file (truncating to
 * its own size frees them on tmpfs and ext4). */
static void release_reserve(ntk_output *o, const char *path) {
  struct stat st;
  if (o->claim_fd > 0) close(o->claim_fd);
  o->claim_fd = -1;
  if (o->g->rank == 0 && o->reserved > 0 && stat(path, &st) == 0) {
    if (truncate(path, st.st_size) != 0) { /* best effort: the blocks are only wasted */
    }
  }
}

/* Rank 0 only: the folder must exist and be writable, PATH must be absent unless
 * overwrite, and a stale PATH.partial from a crashed run is removed. */
static int prepare_create(ntk_output *o, int overwrite) {
  NTK_CHECK(check_folder(o->path));
  if (exists(o->path)) {
    if (!overwrite)
      return ntk_err_set(NTK_ERR_INPUT, "output.path: %s exists (set output.overwrite: true)",
                         o->path);
    /* Removed now rather than replaced at close: a run that then fails must not leave the
     * previous run's complete-looking file next to its own .partial. */
    if (unlink(o->path) != 0)
      return ntk_err_set(NTK_ERR_INPUT, "output.path: cannot remove %s (%s)", o->path,
                         strerror(errno));
  }
  if (unlink(o->partial) != 0 && errno != ENOENT)
    return ntk_err_set(NTK_ERR_INPUT, "output.path: cannot remove stale %s (%s)", o->partial,
                       strerror(errno));
#ifdef FALLOC_FL_KEEP_SIZE
  /* The first MiB is claimed before HDF5 creates the file (which it then takes over: it
   * truncates only a file of non-zero size): a disk already full fails here, before HDF5
   * holds a file it would have to write to close. */
  int fd = open(o->partial, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = 0;
  if (fd < 0 || fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)MIB) != 0) e = errno;
  if (fd >= 0) close(fd);
  if (claim_result(o, e) != NTK_OK) {
    unlink(o->partial);
    return NTK_ERR_RUNTIME;
  }
  if (e == 0) o->reserved = MIB;
#endif
  return NTK_OK;
}

static void reset(ntk_output *o, const ntk_grid *g) {
  memset(o, 0, sizeof *o);
  o->g = g;
  o->file = H5I_INVALID_HID;
  o->claim_fd = -1;
}

/* Collective: create (or open read-write) PATH.partial over MPI-IO. */
static int open_partial(ntk_output *o, int create) {
  hid_t fapl = new_fapl(o->g->comm);
  if (fapl < 0) return h5_fail_o(o, "cannot set up MPI-IO access", o->partial);
  o->file = create ? H5Fcreate(o->partial, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)
                   : H5Fopen(o->partial, H5F_ACC_RDWR, fapl);
  H5Pclose(fapl);
  if (o->file >= 0) return NTK_OK;
  if (create) return h5_fail_o(o, "cannot create file", o->partial);
  H5Eclear2(H5E_DEFAULT);
  return ntk_err_set(NTK_ERR_INPUT, "output.path: cannot open %s as HDF5", o->partial);
}

int ntk_output_open(ntk_output *o, const ntk_grid *g, const char *path, int overwrite) {
  reset(o, g);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  int rc = set_paths(o, path);
  if (rc == NTK_OK && g->rank == 0) rc = prepare_create(o, overwrite);
  NTK_CHECK(ntk_err_share0(g->comm, rc));

  NTK_CHECK(ntk_err_sync(g->comm, open_partial(o, 1)));
  NTK_CHECK(reserve(o, 0.0));
  NTK_CHECK(ntk_output_attr_string(o, "/", "format", "ntkspec"));
  NTK_CHECK(ntk_output_attr_int(o, "/", "format_version", 1));
  NTK_CHECK(ntk_output_attr_string(o, "/", "version", NTK_VERSION));
  NTK_CHECK(ntk_output_attr_string(o, "/", "status", "running"));
  return NTK_OK;
}

static int check_format(ntk_output *o) {
  int rc = NTK_OK;
  hid_t a = H5I_INVALID_HID, t = H5I_INVALID_HID;
  char *s = NULL;
  htri_t has = H5Aexists(o->file, "format");
  if (has < 0) {
    rc = h5_fail("cannot read attribute", "format");
    goto done;
  }
  if (has) {
    H5TRY(a = H5Aopen(o->file, "format", H5P_DEFAULT), "cannot open attribute", "format");
    H5TRY(t = new_vlstr(), "cannot make a string type", "format");
    /* another string flavour than ours fails to convert: also not our file */
    if (H5Aread(a, t, &s) < 0) {
      H5Eclear2(H5E_DEFAULT);
      s = NULL;
    }
  }
  if (!s || strcmp(s, "ntkspec") != 0)
    rc = ntk_err_set(NTK_ERR_INPUT, "output.path: %s is not an ntkspec file", o->partial);
done:
  if (s) H5free_memory(s);
  h5_close(t);
  h5_close(a);
  return rc;
}

int ntk_output_reopen(ntk_output *o, const ntk_grid *g, const char *path) {
  reset(o, g);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  int rc = set_paths(o, path), renamed = 0;
  /* A resumed run is again "running": it must not look complete until it closes. */
  if (rc == NTK_OK && g->rank == 0) {
    if (exists(o->path)) {
      renamed = rename(o->path, o->partial) == 0;
      if (!renamed)
        rc = ntk_err_set(NTK_ERR_INPUT, "output.path: cannot rename %s to %s (%s)", o->path,
                         o->partial, strerror(errno));
    } else if (!exists(o->partial)) {
      rc = ntk_err_set(NTK_ERR_INPUT, "output.path: neither %s nor %s exists (nothing to resume)",
                       o->path, o->partial);
    }
    if (rc == NTK_OK) rc = ntk_h5check_file(o->partial, o->partial);
    if (rc != NTK_OK && renamed) rename(o->partial, o->path);
  }
  NTK_CHECK(ntk_err_share0(g->comm, rc));

  rc = open_partial(o, 0);
  if (rc == NTK_OK) rc = check_format(o);
  rc = ntk_err_sync(g->comm, rc);
  if (rc != NTK_OK) {
    if (o->file > 0) H5Fclose(o->file);
    o->file = H5I_INVALID_HID;
    /* not resumable (e.g. not our file): give the user's file its name back */
    if (renamed) rename(o->partial, o->path);
    ntk_err_trace(__FILE__, __LINE__, __func__);
    return rc;
  }
  NTK_CHECK(ntk_output_rows(o, "/trajectory/step", &o->nsteps));
  NTK_CHECK(ntk_output_attr_string(o, "/", "status", "running"));
  return NTK_OK;
}

/* ---------- attributes ---------- */

static hid_t file_type_of(hid_t mtype) {
  if (H5Tequal(mtype, H5T_NATIVE_DOUBLE) > 0) return H5T_IEEE_F64LE;
  if (H5Tequal(mtype, H5T_NATIVE_LLONG) > 0) return H5T_STD_I64LE;
  return mtype;
}

static int attr_write_claimed(ntk_output *o, const char *obj, const char *name, hid_t type,
                              const void *buf);

static int attr_write(ntk_output *o, const char *obj, const char *name, hid_t type,
                      const void *buf) {
  if (!is_open(o)) return not_open("attribute");
  NTK_CHECK(reserve(o, 0.0));
  return attr_write_claimed(o, obj, name, type, buf);
}

/* attr_write in space already claimed: the final status of a run whose last claim failed
 * still fits in the slack of the earlier ones. */
static int attr_write_claimed(ntk_output *o, const char *obj, const char *name, hid_t type,
                              const void *buf) {
  int rc = NTK_OK;
  hid_t oid = H5I_INVALID_HID, sp = H5I_INVALID_HID, a = H5I_INVALID_HID;
  hid_t lcpl = H5I_INVALID_HID;
  if (!obj || !obj[0]) obj = "/";
  int e = link_exists(o->file, obj);
  if (e < 0) {
    rc = h5_fail_o(o, "cannot look up object", obj);
    goto done;
  }
  if (e) {
    H5TRY(oid = H5Oopen(o->file, obj, H5P_DEFAULT), "cannot open object", obj);
  } else {
    H5TRY(lcpl = new_lcpl(), "cannot make a property list", obj);
    H5TRY(oid = H5Gcreate2(o->file, obj, lcpl, H5P_DEFAULT, H5P_DEFAULT),
          "cannot create group", obj);
  }
  htri_t has = H5Aexists(oid, name);
  H5TRY(has, "cannot look up attribute", name);
  if (has) H5TRY(H5Adelete(oid, name), "cannot replace attribute", name);
  H5TRY(sp = H5Screate(H5S_SCALAR), "cannot make a dataspace", name);
  H5TRY(a = H5Acreate2(oid, name, file_type_of(type), sp, H5P_DEFAULT, H5P_DEFAULT),
        "cannot create attribute", name);
  H5TRY(H5Awrite(a, type, buf), "cannot write attribute", name);
done:
  h5_close(a);
  h5_close(sp);
  h5_close(lcpl);
  h5_close(oid);
  return ntk_err_sync(o->g->comm, rc);
}

int ntk_output_attr_string(ntk_output *o, const char *obj, const char *name, const char *value) {
  hid_t t = new_vlstr();
  if (t < 0) return ntk_err_sync(o->g->comm, h5_fail("cannot make a string type", name));
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

/* ---------- datasets ---------- */

/* New dataset (parents created).  maxd/chunk NULL: contiguous.  large: no fill values,
 * since parallel HDF5 allocates early and would otherwise write every byte twice. */
static int dset_create(ntk_output *o, const char *name, hid_t mtype, int rank,
                       const hsize_t *dims, const hsize_t *maxd, const hsize_t *chunk, int large,
                       hid_t *d) {
  int rc = NTK_OK;
  hid_t sp = H5I_INVALID_HID, lcpl = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
  H5TRY(sp = H5Screate_simple(rank, dims, maxd), "cannot make a dataspace", name);
  H5TRY(lcpl = new_lcpl(), "cannot make a property list", name);
  H5TRY(dcpl = H5Pcreate(H5P_DATASET_CREATE), "cannot make a property list", name);
  if (chunk) H5TRY(H5Pset_chunk(dcpl, rank, chunk), "cannot set chunking", name);
  if (large) H5TRY(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), "cannot set fill time", name);
  H5TRY(*d = H5Dcreate2(o->file, name, file_type_of(mtype), sp, lcpl, dcpl, H5P_DEFAULT),
        "cannot create dataset", name);
done:
  h5_close(sp);
  h5_close(lcpl);
  h5_close(dcpl);
  return rc;
}

/* Opens dataset `name` if it exists (*d < 0 when not) and reads its shape. */
static int dset_lookup(ntk_output *o, const char *name, hid_t *d, int *rank, hsize_t *dims,
                       hsize_t *maxd) {
  int rc = NTK_OK;
  hid_t sp = H5I_INVALID_HID;
  *d = H5I_INVALID_HID;
  *rank = -1;
  int e = link_exists(o->file, name);
  if (e < 0) return h5_fail_o(o, "cannot look up dataset", name);
  if (!e) return NTK_OK;
  H5TRY(*d = H5Dopen2(o->file, name, H5P_DEFAULT), "cannot open dataset", name);
  H5TRY(sp = H5Dget_space(*d), "cannot get dataspace", name);
  H5TRY(*rank = H5Sget_simple_extent_dims(sp, dims, maxd), "cannot get extent", name);
done:
  h5_close(sp);
  if (rc != NTK_OK) {
    h5_close(*d);
    *d = H5I_INVALID_HID;
  }
  return rc;
}

/* Opens `name` if it already has exactly this type and shape (a rewrite, e.g. after a
 * resume), otherwise (re)creates it, contiguous. */
static int dset_ensure(ntk_output *o, const char *name, hid_t mtype, int rank,
                       const hsize_t *dims, int large, hid_t *d) {
  hid_t t = H5I_INVALID_HID;
  hsize_t cur[H5S_MAX_RANK];
  int r;
  int rc = dset_lookup(o, name, d, &r, cur, NULL);
  if (rc != NTK_OK) return rc;
  if (*d >= 0) {
    H5TRY(t = H5Dget_type(*d), "cannot get type", name);
    int same = r == rank && H5Tequal(t, file_type_of(mtype)) > 0;
    for (int k = 0; same && k < rank; ++k) same = cur[k] == dims[k];
    hid_t dcpl_old = H5Dget_create_plist(*d);
    if (dcpl_old >= 0) {
      same = same && H5Pget_layout(dcpl_old) == H5D_CONTIGUOUS;
      H5Pclose(dcpl_old);
    }
    if (same) goto done;
    h5_close(*d);
    *d = H5I_INVALID_HID;
    H5TRY(H5Ldelete(o->file, name, H5P_DEFAULT), "cannot replace dataset", name);
  }
  rc = dset_create(o, name, mtype, rank, dims, NULL, NULL, large, d);
done:
  if (rc != NTK_OK) {
    h5_close(*d);
    *d = H5I_INVALID_HID;
  }
  h5_close(t);
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
static herr_t select_local_rows(hid_t fs, long long lead, const ntk_dmat *A, int l0, int l1) {
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
      return h5_fail("cannot select", name);
    return NTK_OK;
  }
  if (select_local_rows(fs, lead, A, l0, l1) < 0) return h5_fail("cannot select blocks", name);
  hsize_t md[2] = {(hsize_t)(l1 - l0), (hsize_t)nloc};
  if ((*ms = H5Screate_simple(2, md, NULL)) < 0) return h5_fail("cannot make a dataspace", name);
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
static int write_dmat_into(ntk_output *o, hid_t d, const char *name, long long lead,
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
  if (rc == NTK_OK && (dxpl = new_dxpl()) < 0)
    rc = h5_fail("cannot make a transfer property list", name);
  if (rc == NTK_OK && (fs = H5Dget_space(d)) < 0)
    rc = h5_fail_o(o, "cannot get dataspace", name);
  rc = ntk_err_sync(comm, rc);
  for (int r = 0; r < rounds && rc == NTK_OK; ++r) {
    int l0 = r * R, l1 = l0 + R < mloc ? l0 + R : mloc;
    rc = ntk_err_sync(comm, prepare_round(fs, &ms, A, lead, l0, l1, buf, name));
    errno = 0;
    if (rc == NTK_OK && H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, fs, dxpl, buf) < 0)
      rc = h5_fail_o(o, "cannot write dataset", name);
    h5_close(ms);
    ms = H5I_INVALID_HID;
    rc = ntk_err_sync(comm, rc);
  }
  free(buf);
  h5_close(fs);
  h5_close(dxpl);
  return rc;
}

static int check_same_grid(const ntk_output *o, const ntk_dmat *A, const char *name) {
  if (!A || !A->g || A->g->comm != o->g->comm)
    return ntk_err_set(NTK_ERR_INTERNAL, "output: matrix for %s is not on the output's grid",
                       name);
  return NTK_OK;
}

int ntk_output_write_dmat(ntk_output *o, const char *name, const ntk_dmat *A) {
  if (!is_open(o)) return not_open(name);
  NTK_CHECK(check_same_grid(o, A, name));
  NTK_CHECK(reserve(o, 8.0 * A->m * A->n));
  hid_t d;
  hsize_t dims[2] = {(hsize_t)A->m, (hsize_t)A->n};
  int rc = dset_ensure(o, name, H5T_NATIVE_DOUBLE, 2, dims, 1, &d);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  rc = write_dmat_into(o, d, name, -1, A);
  H5Dclose(d);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  return NTK_OK;
}

int ntk_output_write_dmat_slice(ntk_output *o, const char *name, int count, int index,
                                const ntk_dmat *A) {
  if (!is_open(o)) return not_open(name);
  NTK_CHECK(check_same_grid(o, A, name));
  if (index < 0 || index >= count)
    return ntk_err_set(NTK_ERR_INTERNAL, "output: slice %d of %s out of range [0, %d)", index,
                       name, count);
  /* the whole dataset is allocated with its first slice */
  NTK_CHECK(reserve(o, 8.0 * A->m * A->n * (index == 0 ? count : 1)));
  hid_t d;
  hsize_t dims[3] = {(hsize_t)count, (hsize_t)A->m, (hsize_t)A->n};
  int rc = dset_ensure(o, name, H5T_NATIVE_DOUBLE, 3, dims, 1, &d);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  rc = write_dmat_into(o, d, name, index, A);
  H5Dclose(d);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  return NTK_OK;
}

/* Collective write of replicated data into d: rank 0 writes buf (mrank, mdims) to the
 * file region start/count (the whole dataset when start is NULL); the others take part
 * selecting nothing. */
static int write_rank0(ntk_output *o, hid_t d, const char *name, hid_t mtype, int mrank,
                       const hsize_t *mdims, const hsize_t *start, const hsize_t *count,
                       const void *buf) {
  int rc = NTK_OK;
  hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID, dxpl = H5I_INVALID_HID;
  H5TRY(dxpl = new_dxpl(), "cannot make a transfer property list", name);
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
    rc = h5_fail_o(o, "cannot write dataset", name);
  h5_close(ms);
  h5_close(fs);
  h5_close(dxpl);
  return ntk_err_sync(o->g->comm, rc);
}

static int write_replicated(ntk_output *o, const char *name, hid_t mtype, int rank,
                            const hsize_t *dims, const void *buf) {
  if (!is_open(o)) return not_open(name);
  double bytes = (double)H5Tget_size(mtype);
  for (int k = 0; k < rank; ++k) bytes *= (double)dims[k];
  NTK_CHECK(reserve(o, bytes));
  hid_t d;
  int rc = ntk_err_sync(o->g->comm, dset_ensure(o, name, mtype, rank, dims, 0, &d));
  if (rc == NTK_OK) rc = write_rank0(o, d, name, mtype, rank, dims, NULL, NULL, buf);
  h5_close(d);
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
  if (!is_open(o)) return not_open(name);
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
    rc = ntk_err_sync(o->g->comm, h5_fail("cannot make a string type", name));
  } else {
    hsize_t hd[1] = {(hsize_t)n};
    rc = write_replicated(o, name, t, 1, hd, buf);
  }
  h5_close(t);
  free(buf);
  NTK_CHECK(rc);
  return NTK_OK;
}

/* ---------- trajectory appends ---------- */

/* Opens (creating on first use) an extendible dataset (T, tail...) and grows it by one
 * row; *row is the index of the new row.  The row count is the dataset's extent, so a
 * reopened file continues where it stopped. */
static int append_open(ntk_output *o, const char *name, hid_t mtype, int ntail,
                       const hsize_t *tail, const hsize_t *chunk, int large, hid_t *d,
                       hsize_t *row) {
  int rank = ntail + 1, r;
  hsize_t dims[H5S_MAX_RANK], maxd[H5S_MAX_RANK];
  int rc = dset_lookup(o, name, d, &r, dims, maxd);
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
    rc = dset_create(o, name, mtype, rank, dims, maxd, chunk, large, d);
    if (rc != NTK_OK) goto done;
  }
  *row = dims[0];
  dims[0] += 1;
  H5TRY(H5Dset_extent(*d, dims), "cannot extend dataset", name);
done:
  if (rc != NTK_OK) {
    h5_close(*d);
    *d = H5I_INVALID_HID;
  }
  return rc;
}

static int is_step_name(const char *name) {
  return !strcmp(name, "/trajectory/step") || !strcmp(name, "trajectory/step");
}

/* One replicated row (len values, or a scalar when len == 0), written by rank 0. */
static int append_small(ntk_output *o, const char *name, hid_t mtype, int len, const void *x) {
  if (!is_open(o)) return not_open(name);
  NTK_CHECK(reserve(o, 16384.0 + 8.0 * len));
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
    rc = write_rank0(o, d, name, mtype, 1, md, start, count, x);
  }
  if (rc == NTK_OK && is_step_name(name)) o->nsteps = (long long)row + 1;
  h5_close(d);
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
  if (!is_open(o)) return not_open(name);
  NTK_CHECK(check_same_grid(o, A, name));
  NTK_CHECK(reserve(o, 8.0 * padded(A->m) * padded(A->n) + 4096.0));
  hid_t d;
  hsize_t row = 0, tail[2] = {(hsize_t)A->m, (hsize_t)A->n};
  hsize_t chunk[3] = {1, (hsize_t)(A->m < 256 ? A->m : 256), (hsize_t)(A->n < 256 ? A->n : 256)};
  int rc = append_open(o, name, H5T_NATIVE_DOUBLE, 2, tail, chunk, 1, &d, &row);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  rc = write_dmat_into(o, d, name, (long long)row, A);
  H5Dclose(d);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  return NTK_OK;
}

int ntk_output_rows(ntk_output *o, const char *name, long long *rows) {
  if (!is_open(o)) return not_open(name);
  hid_t d;
  hsize_t dims[H5S_MAX_RANK];
  int r;
  int rc = dset_lookup(o, name, &d, &r, dims, NULL);
  *rows = d < 0 ? 0 : r > 0 ? (long long)dims[0] : 1;
  h5_close(d);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  return NTK_OK;
}

int ntk_output_truncate(ntk_output *o, const char *name, long long rows) {
  if (!is_open(o)) return not_open(name);
  hid_t d;
  hsize_t dims[H5S_MAX_RANK];
  int r;
  int rc = dset_lookup(o, name, &d, &r, dims, NULL);
  if (rc != NTK_OK) goto done;
  if (d < 0 || r < 1 || rows < 0 || (hsize_t)rows > dims[0]) {
    rc = ntk_err_set(NTK_ERR_INTERNAL, "output: cannot truncate %s to %lld rows", name, rows);
    goto done;
  }
  dims[0] = (hsize_t)rows;
  H5TRY(H5Dset_extent(d, dims), "cannot shrink dataset", name);
  if (is_step_name(name)) o->nsteps = rows;
done:
  h5_close(d);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  return NTK_OK;
}

/* H5Fflush writes the metadata cache and the superblock, then syncs MPI-IO: after it
 * returns, a killed run leaves a file that opens with everything written so far.  The
 * caller flushes after each complete group of appends (one measurement). */
int ntk_output_flush(ntk_output *o) {
  if (!is_open(o)) return not_open("flush");
  NTK_CHECK(reserve(o, 0.0));
  int rc = NTK_OK;
  errno = 0;
  if (H5Fflush(o->file, H5F_SCOPE_GLOBAL) < 0)
    rc = h5_fail_o(o, "cannot flush file", o->partial);
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  return NTK_OK;
}

/* ---------- timing ---------- */

int ntk_output_write_timing(ntk_output *o, const ntk_timer_stat *stats, int nstats) {
  if (!is_open(o)) return not_open("/timing");
  int n = nstats > 0 ? nstats : 0;
  const char **names = ntk_calloc((size_t)(n > 0 ? n : 1), sizeof *names, "timing names");
  double *v = ntk_calloc((size_t)(n > 0 ? n : 1) * 4, sizeof *v, "timing values");
  long long *calls = ntk_calloc((size_t)(n > 0 ? n : 1), sizeof *calls, "timing calls");
  int rc = ntk_err_sync(o->g->comm, names && v && calls ? NTK_OK : NTK_ERR_MEMORY);
  if (rc == NTK_OK) {
    for (int i = 0; i < n; ++i) {
      names[i] = stats[i].name ? stats[i].name : "";
      v[i] = stats[i].min;
      v[n + i] = stats[i].avg;
      v[2 * n + i] = stats[i].max;
      v[3 * n + i] = stats[i].flops;
      calls[i] = stats[i].calls;
    }
    long long dn = n;
    static const char *const cols[4] = {"/timing/min", "/timing/avg", "/timing/max",
                                        "/timing/flops"};
    rc = ntk_output_write_strings(o, "/timing/phase", n, names);
    for (int k = 0; k < 4 && rc == NTK_OK; ++k)
      rc = ntk_output_write_array(o, cols[k], 1, &dn, v + (size_t)k * n);
    if (rc == NTK_OK) rc = ntk_output_write_int_array(o, "/timing/calls", dn, calls);
  }
  free(names);
  free(v);
  free(calls);
  NTK_CHECK(rc);
  return NTK_OK;
}

/* ---------- close ---------- */

/* Ids still open on the file when it is closed are a bug here (the MPI-IO driver's close
 * degree refuses to close then); close them so the file is still finished, and report. */
static int close_leaked(hid_t file, const char *partial) {
  unsigned types = H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR;
  ssize_t n = H5Fget_obj_count(file, types);
  if (n <= 0) return NTK_OK;
  hid_t *ids = malloc((size_t)n * sizeof *ids);
  if (ids) {
    ssize_t got = H5Fget_obj_ids(file, types, (size_t)n, ids);
    for (ssize_t i = 0; i < got; ++i) h5_close(ids[i]);
    free(ids);
  }
  return ntk_err_set(NTK_ERR_INTERNAL, "HDF5: %zd object ids left open in %s", n, partial);
}

int ntk_output_discard(ntk_output *o) {
  if (!is_open(o)) return NTK_OK;
  NTK_CHECK(ntk_output_close(o, "failed"));
  int rc = NTK_OK;
  if (o->g->rank == 0 && unlink(o->partial) != 0 && errno != ENOENT)
    rc = ntk_err_set(NTK_ERR_RUNTIME, "output: cannot remove %s (%s)", o->partial, strerror(errno));
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  return NTK_OK;
}

int ntk_output_close(ntk_output *o, const char *status) {
  if (!is_open(o)) return NTK_OK;
  if (!status) status = "failed";
  int failed = !strcmp(status, "failed"), broken = o->broken;
  MPI_Allreduce(MPI_IN_PLACE, &broken, 1, MPI_INT, MPI_MAX, o->g->comm);
  if (broken) {
    /* An HDF5 call on this file failed (a write where no space could be claimed ahead,
     * an I/O error): HDF5 1.10's parallel close then flushes what it still holds, a rank
     * whose write fails skips a collective the others wait in, and the job hangs (seen:
     * one rank in H5AC's barrier, the other in H5FD_truncate's broadcast), as it would at
     * MPI_Finalize.  PATH.partial keeps what the last successful flush wrote. */
    if (!ntk_err_code())
      ntk_err_set(NTK_ERR_RUNTIME, "HDF5: a write to %s failed on another rank", o->partial);
    ntk_log_error_line(ntk_err_message());
    fflush(stdout);
    MPI_Abort(o->g->comm, ntk_err_exit_status(ntk_err_code()));
  }
  /* Everything but the status reaches the disk first, while the file still says
   * "running": a disk that fills up now fails this flush, and the file never claims a
   * status it did not reach. */
  int rc = failed ? NTK_OK : ntk_output_flush(o);
  if (rc != NTK_OK) {
    failed = 1;
    status = "failed";
  }
  hid_t t = new_vlstr();
  int rc2 = t < 0 ? ntk_err_sync(o->g->comm, h5_fail("cannot make a string type", "status"))
                  : attr_write_claimed(o, "/", "status", t, &status);
  if (t >= 0) H5Tclose(t);
  if (rc == NTK_OK) rc = rc2;
  rc2 = close_leaked(o->file, o->partial);
  if (rc == NTK_OK) rc = rc2;
  errno = 0;
  if (H5Fclose(o->file) < 0 && rc == NTK_OK)
    rc = h5_fail_o(o, "cannot close file", o->partial);
  o->file = H5I_INVALID_HID;
  release_reserve(o, o->partial);
  /* renamed only when every rank closed cleanly: a close that failed on any rank (the
   * metadata it still had to write) leaves PATH.partial */
  rc = ntk_err_sync(o->g->comm, rc);
  if (rc == NTK_OK && !failed && o->g->rank == 0 && rename(o->partial, o->path) != 0)
    rc = ntk_err_set(NTK_ERR_RUNTIME, "output: cannot rename %s to %s (%s)", o->partial, o->path,
                     strerror(errno));
  /* also the barrier: nobody looks for PATH before rank 0 has renamed it */
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  return NTK_OK;
}

int ntk_output_read_dmat(hid_t f, const char *label, const char *name, long long lead, ntk_dmat *A) {
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
    if (select_local_rows(fs, lead, A, 0, A->mloc) < 0) {
      rc = h5_fail("cannot select blocks", name);
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
    rc = h5_fail("cannot read", name);
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

/* ---------- disk space, before any compute ---------- */

/* Bytes of an appended dataset of T rows of `len` values, in whole chunks as append_small
 * makes them (rows of about 8 KiB; parallel HDF5 allocates a chunk at once). */
static double appended_bytes(long long T, int len) {
  double row = 8.0 * (len > 0 ? len : 1);
  double rows = len > 0 ? (len < 8192 ? 8192 / len : 1) : 1024;
  return ceil((double)T / rows) * rows * row;
}

/* Generous rather than exact, on purpose: a run refused for a few MiB it would not have
 * needed costs a retry; one that fills the disk after hours of compute costs the hours.
 * Every dataset MODEL.md's output holds for this configuration, rounded up to whole
 * chunks, plus a fixed 1 MiB and 16 KiB per dataset for HDF5 metadata (superblock,
 * object headers, chunk indexes, the config text and the other attributes, /timing),
 * which is several times what the files of the test configurations use. */
double ntk_output_estimate_bytes(const ntk_config *cfg, int N, int n_test, int d, int k,
                                 long long T) {
  const int K = cfg->ntk.top_k > 0 ? cfg->ntk.top_k : N;
  const int m = cfg->fourier.features, p = ntk_config_input_dim(cfg, d);
  const int n = ntk_config_width(cfg, d), L = cfg->model.depth;
  const int training = cfg->train.steps > 0;
  const int vectors = training || cfg->output.save_eigenvectors;
  double values = 0.0, chunked = 0.0;
  int ndsets = 0;
  if (cfg->output.save_data) {
    values += ((double)N + n_test) * (d + k);
    ndsets += 4;
  }
  if (cfg->output.save_params) {
    /* step 0, and the last step of a training run */
    double one = (double)m * d + (cfg->fourier.project ? (double)n * p + n : 0.0) +
                 (double)L * n * n + (double)L * n + (double)k * n + k;
    values += one * (training ? 2 : 1);
    ndsets += 7 * (training ? 2 : 1);
  }
  if (cfg->analytic.enabled) {
    values += 2.0 * N * N + K;
    ndsets += 3;
  }
  /* /trajectory: the scalar series (at most 20, counted 24), the eigenvalues, the residual
   * energies and the per-group traces */
  chunked += 24 * appended_bytes(T, 0) + appended_bytes(T, K) * (vectors ? 2 : 1) +
             appended_bytes(T, L + 3);
  ndsets += 28;
  /* per-measurement matrices: one chunk (and its index entry) per row and tile */
  if (cfg->output.save_ntk) {
    chunked += (double)T * (8.0 * padded(N) * padded(N) + 256.0);
    ndsets += 1;
  }
  if (cfg->output.save_eigenvectors) {
    chunked += (double)T * (8.0 * padded(N) * padded(K) + 256.0);
    ndsets += 1;
  }
  return 8.0 * values + chunked + MIB + 16384.0 * ndsets;
}

/* Blocks a file holds (what removing it frees); 0 when it does not exist. */
static double file_blocks(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 ? 512.0 * (double)st.st_blocks : 0.0;
}

static double file_size(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 ? (double)st.st_size : 0.0;
}

/* Rank 0 only; *have and *need receive the bytes found and asked for (have < 0: unknown). */
static int precheck_rank0(const char *path, int overwrite, int resume, double bytes,
                          double *have, double *need) {
  char partial[1040], dir[1024];
  *have = -1.0;
  *need = bytes;
  if (!path || !path[0]) return ntk_err_set(NTK_ERR_INPUT, "output.path: empty");
  if (strlen(path) >= 1024)
    return ntk_err_set(NTK_ERR_INPUT, "output.path: longer than 1023 characters");
  snprintf(partial, sizeof partial, "%s.partial", path);
  ntk_path_dirname(path, dir, sizeof dir);
  NTK_CHECK(check_folder(path));
  if (!resume && !overwrite && exists(path))
    return ntk_err_set(NTK_ERR_INPUT, "output.path: %s exists (set output.overwrite: true)", path);
  double avail = free_bytes(dir);
  if (avail < 0) return NTK_OK; /* statvfs unsupported: nothing to compare with */
  if (resume) {
    /* the file grows from what it holds already */
    double cur = file_size(path) > file_size(partial) ? file_size(path) : file_size(partial);
    *need = bytes > cur ? bytes - cur : 0.0;
  } else {
    /* the run removes these before it writes */
    avail += file_blocks(partial) + (overwrite ? file_blocks(path) : 0.0);
  }
  *have = avail;
  if (*need > avail)
    return ntk_err_set(NTK_ERR_INPUT,
                       "output.path: not enough free space in %s: the output needs about %.1f MiB "
                       "(estimated), %.1f MiB free",
                       dir, *need / MIB, avail / MIB);
  return NTK_OK;
}

int ntk_output_precheck(MPI_Comm comm, const char *path, int overwrite, int resume,
                        double bytes, int dry_run) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  int rc = NTK_OK;
  double have = -1.0, need = bytes;
  if (rank == 0) rc = precheck_rank0(path, overwrite, resume, bytes, &have, &need);
  if (dry_run) {
    char dir[1024];
    ntk_path_dirname(path ? path : "", dir, sizeof dir);
    if (have >= 0)
      ntk_log_raw("# output: about %.1f MiB estimated%s; %.1f MiB free in %s%s\n", need / MIB,
                  resume ? " still to write" : "", have / MIB, dir,
                  need > have ? ": NOT ENOUGH" : "");
    else
      ntk_log_raw("# output: about %.1f MiB estimated\n", need / MIB);
    if (rc) ntk_log_raw("# %s\n", ntk_err_message());
    if (rank == 0) ntk_err_clear();
    return NTK_OK;
  }
  NTK_CHECK(ntk_err_share0(comm, rc));
  return NTK_OK;
}
