/* ntk_output_file: the life cycle of a result file: PATH.partial created (or reopened for
 * --resume), the status attribute, the close and the rename to PATH. */
#define _GNU_SOURCE /* fallocate(2) and FALLOC_FL_KEEP_SIZE */
#include "ntk_output_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ntk_error.h"
#include "ntk_h5check.h"
#include "ntk_log.h"
#include "ntk_schema.h"

static int set_paths(ntk_output *o, const char *path) {
  if (!path || !path[0]) return ntk_err_set(NTK_ERR_INPUT, "output.path: empty");
  if (strlen(path) >= sizeof o->path)
    return ntk_err_set(NTK_ERR_INPUT, "output.path: longer than %zu characters",
                       sizeof o->path - 1);
  snprintf(o->path, sizeof o->path, "%s", path);
  snprintf(o->partial, sizeof o->partial, "%s.partial", path);
  snprintf(o->creating, sizeof o->creating, "%s.partial.new", path);
  return NTK_OK;
}

/* Rank 0 only: the folder must exist and be writable, PATH must be absent unless
 * overwrite, and a stale PATH.partial from a crashed run is removed. */
int ntk_out_prepare_create(ntk_output *o, int overwrite) {
  /* o->partial already names the file being created (PATH.partial.new, create_file) */
  char published[sizeof o->partial];
  snprintf(published, sizeof published, "%s.partial", o->path);
  NTK_CHECK(ntk_out_check_folder(o->path));
  NTK_CHECK(ntk_out_check_replaceable("output.path", o->path));
  NTK_CHECK(ntk_out_check_replaceable("output.path", published));
  NTK_CHECK(ntk_out_check_replaceable("output.path", o->creating));
  if (ntk_out_exists(o->path)) {
    if (!overwrite)
      return ntk_err_set(NTK_ERR_INPUT, "output.path: %s exists (set output.overwrite: true)",
                         o->path);
    /* Removed now rather than replaced at close: a run that then fails must not leave the
     * previous run's complete-looking file next to its own .partial. */
    if (unlink(o->path) != 0)
      return ntk_err_set(NTK_ERR_INPUT, "output.path: cannot remove %s (%s)", o->path,
                         strerror(errno));
  }
  /* stale: the output lock says that no other run writes them */
  if (unlink(published) != 0 && errno != ENOENT)
    return ntk_err_set(NTK_ERR_INPUT, "output.path: cannot remove stale %s (%s)", published,
                       strerror(errno));
  if (unlink(o->creating) != 0 && errno != ENOENT)
    return ntk_err_set(NTK_ERR_INPUT, "output.path: cannot remove stale %s (%s)", o->creating,
                       strerror(errno));
#ifdef FALLOC_FL_KEEP_SIZE
  /* The first MiB is claimed before HDF5 creates the file (which it then takes over: it
   * truncates only a file of non-zero size): a disk already full fails here, before HDF5
   * holds a file it would have to write to close. */
  int fd = open(o->partial, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = 0;
  if (fd < 0 || fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)NTK_MIB) != 0) e = errno;
  if (fd >= 0) close(fd);
  if (ntk_out_claim_result(o, e) != NTK_OK) {
    unlink(o->partial);
    return NTK_ERR_RUNTIME;
  }
  if (e == 0) o->reserved = NTK_MIB;
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
  hid_t fapl = ntk_h5_fapl(o->g->comm);
  if (fapl < 0) return ntk_h5_fail_o(o, "cannot set up MPI-IO access", o->partial);
  o->file = create ? H5Fcreate(o->partial, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)
                   : H5Fopen(o->partial, H5F_ACC_RDWR, fapl);
  H5Pclose(fapl);
  if (o->file >= 0) return NTK_OK;
  if (create) return ntk_h5_fail_o(o, "cannot create file", o->partial);
  H5Eclear2(H5E_DEFAULT);
  return ntk_err_set(NTK_ERR_INPUT, "output.path: cannot open %s as HDF5", o->partial);
}

/* Collective: the file with its root attributes, under PATH.partial.new until
 * ntk_output_publish names it PATH.partial (a run killed before then leaves no
 * PATH.partial; the next run removes the .new). */
static int create_file(ntk_output *o, int overwrite) {
  snprintf(o->partial, sizeof o->partial, "%s", o->creating);
  o->unpublished = 1;
  int rc = NTK_OK;
  if (o->g->rank == 0) rc = ntk_out_prepare_create(o, overwrite);
  NTK_CHECK(ntk_err_share0(o->g->comm, rc));
  NTK_CHECK(ntk_err_sync(o->g->comm, open_partial(o, 1)));
  NTK_CHECK(ntk_out_claim(o, 0.0));
  NTK_CHECK(ntk_output_attr_string(o, "/", NTK_ATTR_FORMAT, NTK_FORMAT_NAME));
  NTK_CHECK(ntk_output_attr_int(o, "/", NTK_ATTR_FORMAT_VERSION, NTK_FORMAT_VERSION));
  NTK_CHECK(ntk_output_attr_string(o, "/", NTK_ATTR_VERSION, NTK_VERSION));
  NTK_CHECK(ntk_output_attr_string(o, "/", NTK_ATTR_STATUS, NTK_STATUS_RUNNING));
  return NTK_OK;
}

int ntk_output_publish(ntk_output *o) {
  if (!ntk_out_is_open(o)) return ntk_out_not_open("publish");
  if (!o->unpublished) return NTK_OK;
  NTK_CHECK(ntk_output_flush(o));
  char final[sizeof o->partial];
  snprintf(final, sizeof final, "%s.partial", o->path);
  int rc = NTK_OK;
  /* the open MPI-IO handles and claim_fd follow the file: a rename keeps the inode */
  if (o->g->rank == 0 && rename(o->partial, final) != 0)
    rc = ntk_err_set(NTK_ERR_RUNTIME, "output: cannot rename %s to %s (%s)", o->partial, final,
                     strerror(errno));
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  snprintf(o->partial, sizeof o->partial, "%s", final);
  o->unpublished = 0;
  return NTK_OK;
}

int ntk_output_open(ntk_output *o, const ntk_grid *g, const char *path, int overwrite) {
  reset(o, g);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  NTK_CHECK(set_paths(o, path));
  NTK_CHECK(create_file(o, overwrite));
  return NTK_OK;
}

static int check_format(ntk_output *o) {
  int rc = NTK_OK;
  hid_t a = H5I_INVALID_HID, t = H5I_INVALID_HID;
  char *s = NULL;
  htri_t has = H5Aexists(o->file, NTK_ATTR_FORMAT);
  if (has < 0) {
    rc = ntk_h5_fail("cannot read attribute", NTK_ATTR_FORMAT);
    goto done;
  }
  if (has) {
    H5TRY(a = H5Aopen(o->file, NTK_ATTR_FORMAT, H5P_DEFAULT), "cannot open attribute", NTK_ATTR_FORMAT);
    H5TRY(t = ntk_h5_vlstr(), "cannot make a string type", NTK_ATTR_FORMAT);
    /* another string flavour than ours fails to convert: also not our file */
    if (H5Aread(a, t, &s) < 0) {
      H5Eclear2(H5E_DEFAULT);
      s = NULL;
    }
  }
  if (!s || strcmp(s, NTK_FORMAT_NAME) != 0)
    rc = ntk_err_set(NTK_ERR_INPUT, "output.path: %s is not an ntkspec file", o->partial);
done:
  if (s) H5free_memory(s);
  ntk_h5_close(t);
  ntk_h5_close(a);
  return rc;
}

static int reopen_file(ntk_output *o) {
  const ntk_grid *g = o->g;
  int rc = NTK_OK, renamed = 0;
  /* A resumed run is again "running": it must not look complete until it closes. */
  if (g->rank == 0) {
    rc = ntk_out_check_replaceable("output.path", o->path);
    if (rc == NTK_OK) rc = ntk_out_check_replaceable("output.path", o->partial);
    if (rc != NTK_OK) {
    } else if (ntk_out_exists(o->path)) {
      renamed = rename(o->path, o->partial) == 0;
      if (!renamed)
        rc = ntk_err_set(NTK_ERR_INPUT, "output.path: cannot rename %s to %s (%s)", o->path,
                         o->partial, strerror(errno));
    } else if (!ntk_out_exists(o->partial)) {
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
  NTK_CHECK(ntk_output_rows(o, ntk_schema_trajectory[NTK_TRAJ_STEP].path, &o->nsteps));
  NTK_CHECK(ntk_output_attr_string(o, "/", NTK_ATTR_STATUS, NTK_STATUS_RUNNING));
  return NTK_OK;
}

int ntk_output_reopen(ntk_output *o, const ntk_grid *g, const char *path) {
  reset(o, g);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  NTK_CHECK(set_paths(o, path));
  NTK_CHECK(reopen_file(o));
  return NTK_OK;
}

/* Ids still open on the file when it is closed are a bug here (the MPI-IO driver's close
 * degree refuses to close then); close them so the file is still finished, and report. */
static int close_leaked(hid_t file, const char *partial) {
  unsigned types = H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR;
  ssize_t n = H5Fget_obj_count(file, types);
  if (n <= 0) return NTK_OK;
  hid_t *ids = malloc((size_t)n * sizeof *ids);
  if (ids) {
    ssize_t got = H5Fget_obj_ids(file, types, (size_t)n, ids);
    for (ssize_t i = 0; i < got; ++i) ntk_h5_close(ids[i]);
    free(ids);
  }
  return ntk_err_set(NTK_ERR_INTERNAL, "HDF5: %zd object ids left open in %s", n, partial);
}

int ntk_output_discard(ntk_output *o) {
  if (!ntk_out_is_open(o)) return NTK_OK;
  NTK_CHECK(ntk_output_close(o, "failed"));
  int rc = NTK_OK;
  if (o->g->rank == 0 && unlink(o->partial) != 0 && errno != ENOENT)
    rc = ntk_err_set(NTK_ERR_RUNTIME, "output: cannot remove %s (%s)", o->partial, strerror(errno));
  NTK_CHECK(ntk_err_sync(o->g->comm, rc));
  return NTK_OK;
}

int ntk_output_close(ntk_output *o, const char *status) {
  if (!ntk_out_is_open(o)) return NTK_OK;
  if (!status) status = NTK_STATUS_FAILED;
  int failed = !strcmp(status, NTK_STATUS_FAILED), broken = o->broken;
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
   * NTK_STATUS_RUNNING: a disk that fills up now fails this flush, and the file never claims a
   * status it did not reach. */
  int rc = failed ? NTK_OK : ntk_output_flush(o);
  if (rc != NTK_OK) {
    failed = 1;
    status = NTK_STATUS_FAILED;
  }
  hid_t t = ntk_h5_vlstr();
  int rc2 = t < 0 ? ntk_err_sync(o->g->comm, ntk_h5_fail("cannot make a string type", NTK_ATTR_STATUS))
                  : ntk_out_attr_write_claimed(o, "/", NTK_ATTR_STATUS, t, &status);
  if (t >= 0) H5Tclose(t);
  if (rc == NTK_OK) rc = rc2;
  rc2 = close_leaked(o->file, o->partial);
  if (rc == NTK_OK) rc = rc2;
  errno = 0;
  if (H5Fclose(o->file) < 0 && rc == NTK_OK)
    rc = ntk_h5_fail_o(o, "cannot close file", o->partial);
  o->file = H5I_INVALID_HID;
  ntk_out_release_claim(o, o->partial);
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
