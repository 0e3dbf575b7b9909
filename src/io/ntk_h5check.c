#include "ntk_h5check.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ntk_error.h"
#include "ntk_log.h"

extern char **environ;

/* ---------- the walk ---------- */

enum { WALK_MAX_ATTR_BYTES = 1 << 24 }; /* larger attribute values are not read */

static herr_t walk_attr(hid_t loc, const char *name, const H5A_info_t *ainfo, void *data) {
  (void)ainfo;
  (void)data;
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  hid_t ft = a >= 0 ? H5Aget_type(a) : -1, sp = a >= 0 ? H5Aget_space(a) : -1;
  hid_t mt = ft >= 0 ? H5Tget_native_type(ft, H5T_DIR_ASCEND) : -1;
  const hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
  const size_t size = mt >= 0 ? H5Tget_size(mt) : 0;
  if (n > 0 && size > 0 && (size_t)n <= WALK_MAX_ATTR_BYTES / size) {
    void *buf = calloc((size_t)n, size);
    if (buf && H5Aread(a, mt, buf) >= 0) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, buf);
    free(buf);
  }
  if (mt >= 0) H5Tclose(mt);
  if (sp >= 0) H5Sclose(sp);
  if (ft >= 0) H5Tclose(ft);
  if (a >= 0) H5Aclose(a);
  return 0; /* an unreadable attribute is the caller's to report */
}

static herr_t walk_object(hid_t root, const char *name, const H5O_info_t *info, void *data) {
  hid_t o = H5Oopen(root, name, H5P_DEFAULT);
  if (o < 0) return 0;
  H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, walk_attr, data);
  if (info->type == H5O_TYPE_DATASET) {
    hid_t t = H5Dget_type(o), s = H5Dget_space(o), p = H5Dget_create_plist(o);
    if (p >= 0) H5Pget_layout(p);
    H5Dget_storage_size(o); /* walks a chunked dataset's index */
    if (p >= 0) H5Pclose(p);
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
  }
  H5Oclose(o);
  return 0;
}

void ntk_h5check_walk(const char *path) {
  H5E_auto2_t func;
  void *fdata;
  H5Eget_auto2(H5E_DEFAULT, &func, &fdata);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl >= 0) H5Pset_file_locking(fapl, 0, 1); /* a running job may hold the file */
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl >= 0 ? fapl : H5P_DEFAULT);
  if (fapl >= 0) H5Pclose(fapl);
  if (f >= 0) {
    H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_NATIVE, walk_object, NULL, H5O_INFO_BASIC);
    H5Fclose(f);
  }
  H5Eclear2(H5E_DEFAULT);
  H5Eset_auto2(H5E_DEFAULT, func, fdata);
}

/* ---------- the checker process ---------- */

static char checker[PATH_MAX];
static int checker_known;

void ntk_h5check_set_checker(const char *exe) {
  snprintf(checker, sizeof checker, "%s", exe ? exe : "");
  checker_known = 1;
}

/* The ntkspec-h5check next to the running program, or NULL. */
static const char *find_checker(void) {
  if (!checker_known) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char *slash = n > 0 ? (self[n] = 0, strrchr(self, '/')) : NULL;
    checker[0] = 0;
    if (slash) {
      *slash = 0;
      if (strlen(self) + sizeof "/ntkspec-h5check" <= sizeof checker)
        snprintf(checker, sizeof checker, "%s/ntkspec-h5check", self);
      if (access(checker, X_OK) != 0) checker[0] = 0;
    }
    checker_known = 1;
  }
  return checker[0] ? checker : NULL;
}

int ntk_h5check_file(const char *path, const char *label) {
  const char *exe = find_checker();
  if (!exe) {
    ntk_log_debug("%s: no ntkspec-h5check; reading the metadata in this process", label);
    ntk_h5check_walk(path);
    return NTK_OK;
  }
  /* posix_spawn, not fork: nothing of this (possibly huge, RDMA-registered) process is
   * copied, and the checker never starts MPI */
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  char *argv[] = {(char *)exe, (char *)path, NULL};
  pid_t pid;
  int e = posix_spawn(&pid, exe, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (e != 0) {
    ntk_log_debug("%s: cannot start %s (%s); reading the metadata in this process", label, exe,
                  strerror(e));
    ntk_h5check_walk(path);
    return NTK_OK;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return ntk_err_set(NTK_ERR_RUNTIME, "%s: waiting for %s: %s", label, exe, strerror(errno));
  if (WIFSIGNALED(status))
    return ntk_err_set(NTK_ERR_INPUT,
                       "%s: HDF5 crashed (signal %d, %s) reading its metadata: the file is corrupt",
                       label, WTERMSIG(status), strsignal(WTERMSIG(status)));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return ntk_err_set(NTK_ERR_INPUT,
                       "%s: HDF5 failed reading its metadata (%s exit status %d): the file is corrupt",
                       label, exe, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return NTK_OK;
}

/* ---------- datasets ---------- */

int ntk_h5check_dataset_intact(hid_t d) {
  hid_t dcpl = H5Dget_create_plist(d), sp = H5Dget_space(d), ty = H5Dget_type(d);
  const H5D_layout_t layout = dcpl >= 0 ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
  const hssize_t npoints = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
  const size_t size = ty >= 0 ? H5Tget_size(ty) : 0;
  hsize_t need = 0, dims[H5S_MAX_RANK], maxdims[H5S_MAX_RANK];
  const int rank = sp >= 0 ? H5Sget_simple_extent_dims(sp, dims, maxdims) : -1;
  int ok = layout != H5D_LAYOUT_ERROR && rank >= 0 && npoints >= 0 && size > 0 &&
           !__builtin_mul_overflow((hsize_t)npoints, (hsize_t)size, &need) &&
           (layout != H5D_COMPACT || H5Dget_storage_size(d) == need);
  /* an extent beyond the maximum extent: a corrupt dataspace (HDF5 then sizes its chunk
   * index by the extent, gigabytes for a few bytes of file) */
  for (int i = 0; ok && i < rank; ++i)
    if (maxdims[i] != H5S_UNLIMITED && dims[i] > maxdims[i]) ok = 0;
  if (ty >= 0) H5Tclose(ty);
  if (sp >= 0) H5Sclose(sp);
  if (dcpl >= 0) H5Pclose(dcpl);
  return ok;
}

int ntk_h5check_dataset(hid_t d, const char *label, const char *name) {
  if (ntk_h5check_dataset_intact(d)) return NTK_OK;
  return ntk_err_set(NTK_ERR_INPUT,
                     "%s: %s is corrupt (its stored size or its maximum extent contradicts its shape)",
                     label, name);
}
