/* ntk_output_disk: the output folder and its free space, checked before any compute
 * (ntk_output_precheck), and the disk blocks claimed ahead of every write (fallocate),
 * so that a disk that fills up is an error before HDF5 writes, not inside it. */
#define _GNU_SOURCE /* fallocate(2) and FALLOC_FL_KEEP_SIZE */
#include "ntk_output_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <math.h>

#include "ntk_error.h"
#include "ntk_h5check.h"
#include "ntk_log.h"
#include "ntk_schema.h"

/* Free bytes for an unprivileged writer in the folder of `path`; < 0 when unknown. */
double ntk_disk_free_bytes(const char *dir) {
  struct statvfs v;
  if (statvfs(dir, &v) != 0) return -1.0;
  return (double)v.f_bavail * (double)v.f_frsize;
}

int ntk_out_exists(const char *p) { return access(p, F_OK) == 0; }
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
int ntk_out_check_folder(const char *path) {
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
double ntk_out_padded(int x) {
  int c = x < 256 ? (x > 0 ? x : 1) : 256;
  return ceil((double)x / c) * c;
}

#ifdef FALLOC_FL_KEEP_SIZE
/* The outcome of claiming disk blocks for `o` (errno e, 0: claimed): a file system that
 * cannot claim ahead turns claiming off; any other failure is the run's one error line. */
int ntk_out_claim_result(ntk_output *o, int e) {
  if (e == EOPNOTSUPP || e == ENOSYS || e == EINVAL) {
    o->no_reserve = 1;
    return NTK_OK;
  }
  if (e == 0) return NTK_OK;
  char dir[1100];
  ntk_path_dirname(o->partial, dir, sizeof dir);
  return ntk_err_set(NTK_ERR_RUNTIME, "output: cannot write %s: %s (%.1f MiB free in %s)",
                     o->partial, strerror(e), ntk_disk_free_bytes(dir) / NTK_MIB, dir);
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
int ntk_out_claim(ntk_output *o, double bytes) {
  int rc = NTK_OK;
#ifdef FALLOC_FL_KEEP_SIZE
  struct stat st;
  if (o->g->rank == 0 && !o->no_reserve) {
    int e = 0;
    if (o->claim_fd <= 0) o->claim_fd = open(o->partial, O_WRONLY);
    if (o->claim_fd < 0 || fstat(o->claim_fd, &st) != 0) {
      e = errno;
    } else if ((double)st.st_size < o->seen_size ||
               (double)st.st_size + bytes + 0.5 * NTK_MIB > o->reserved) {
      off_t from = st.st_size & ~(off_t)4095, len = (off_t)(bytes + NTK_MIB) + (st.st_size - from);
      if (fallocate(o->claim_fd, FALLOC_FL_KEEP_SIZE, from, len) != 0)
        e = errno;
      else
        o->reserved = (double)(from + len);
    }
    if (e == 0) o->seen_size = (double)st.st_size;
    rc = ntk_out_claim_result(o, e);
  }
#else
  (void)bytes;
#endif
  return ntk_err_share0(o->g->comm, rc);
}

/* Rank 0: give back the blocks claimed beyond the end of the closed file (truncating to
 * its own size frees them on tmpfs and ext4). */
void ntk_out_release_claim(ntk_output *o, const char *path) {
  struct stat st;
  if (o->claim_fd > 0) close(o->claim_fd);
  o->claim_fd = -1;
  if (o->g->rank == 0 && o->reserved > 0 && stat(path, &st) == 0) {
    if (truncate(path, st.st_size) != 0) { /* best effort: the blocks are only wasted */
    }
  }
}

/* Only regular files are ever replaced or removed: a FIFO, a device (/dev/null as root), a
 * folder or a symbolic link (dangling or not: the run would replace the link, not what it
 * names) under an output name is refused, whatever output.overwrite says. */
int ntk_out_check_replaceable(const char *key, const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (errno == ENOENT) return NTK_OK;
    return ntk_err_set(NTK_ERR_INPUT, "%s: cannot look at %s (%s)", key, path, strerror(errno));
  }
  if (S_ISREG(st.st_mode)) return NTK_OK;
  const char *what = S_ISLNK(st.st_mode)    ? "a symbolic link"
                     : S_ISDIR(st.st_mode)  ? "a folder"
                     : S_ISFIFO(st.st_mode) ? "a FIFO"
                     : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                     : S_ISSOCK(st.st_mode) ? "a socket"
                                            : "not a regular file";
  return ntk_err_set(NTK_ERR_INPUT,
                     "%s: %s is %s; ntkspec only writes, replaces or removes regular files", key,
                     path, what);
}

/* The identity of a path: its device and inode when it exists, else its folder's with its
 * last component (so that "out.h5" and "./x/../out.h5" agree before either exists). */
typedef struct {
  dev_t dev;
  ino_t ino;
  char leaf[256]; /* "" when the path itself exists */
} path_id;

static int identify(const char *path, path_id *id) {
  struct stat st;
  memset(id, 0, sizeof *id);
  if (stat(path, &st) == 0) {
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    return 1;
  }
  char dir[NTK_OUT_PATH];
  ntk_path_dirname(path, dir, sizeof dir);
  const char *slash = strrchr(path, '/');
  snprintf(id->leaf, sizeof id->leaf, "%s", slash ? slash + 1 : path);
  if (stat(dir, &st) != 0) return 0;
  id->dev = st.st_dev;
  id->ino = st.st_ino;
  return 1;
}

static int same_file(const char *a, const char *b) {
  path_id x, y;
  if (!a || !b || !a[0] || !b[0]) return 0;
  if (!identify(a, &x) || !identify(b, &y)) return !strcmp(a, b);
  return x.dev == y.dev && x.ino == y.ino && !strcmp(x.leaf, y.leaf);
}

int ntk_output_check_distinct(MPI_Comm comm, const char *out, const char *data, const char *ckpt) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  int rc = NTK_OK;
  if (rank == 0) {
    char partial[NTK_OUT_PATH + 16];
    snprintf(partial, sizeof partial, "%s.partial", out ? out : "");
    const char *outs[2] = {out, partial};
    for (int i = 0; i < 2 && rc == NTK_OK; ++i) {
      if (same_file(outs[i], data))
        rc = ntk_err_set(NTK_ERR_INPUT, "output.path: %s is the input data.path %s; the run would "
                         "replace its own input", outs[i], data);
      else if (same_file(outs[i], ckpt))
        rc = ntk_err_set(NTK_ERR_INPUT, "train.checkpoint: %s is the output %s; give the checkpoint "
                         "its own file", ckpt, outs[i]);
    }
    if (rc == NTK_OK && same_file(ckpt, data))
      rc = ntk_err_set(NTK_ERR_INPUT, "train.checkpoint: %s is the input data.path %s", ckpt, data);
  }
  NTK_CHECK(ntk_err_share0(comm, rc));
  return NTK_OK;
}

/* --resume of PATH (rank 0, PATH exists): a file whose run has nothing left to do is
 * refused, naming its status, instead of being recomputed under PATH.partial. */
static int check_resumable(const char *path, long long steps) {
  char status[64] = "";
  long long last = -1;
  NTK_CHECK(ntk_h5check_file(path, path));
  if (ntk_h5_peek_status(path, status, sizeof status, &last) != 0) return NTK_OK; /* reopen says why */
  if (!strcmp(status, NTK_STATUS_COMPLETE) && last >= steps)
    return ntk_err_set(NTK_ERR_INPUT, "--resume: %s is complete (status %s at step %lld of "
                       "train.steps = %lld): nothing to resume", path, status, last, steps);
  if (!strcmp(status, NTK_STATUS_DIVERGED))
    return ntk_err_set(NTK_ERR_INPUT, "--resume: %s has status %s (at step %lld): resuming would "
                       "diverge again; change the configuration and start a new run", path, status, last);
  return NTK_OK;
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
static int precheck_rank0(const char *path, int overwrite, int resume, long long steps,
                          double bytes, double *have, double *need) {
  char partial[1040], dir[1024];
  *have = -1.0;
  *need = bytes;
  if (!path || !path[0]) return ntk_err_set(NTK_ERR_INPUT, "output.path: empty");
  if (strlen(path) >= 1024)
    return ntk_err_set(NTK_ERR_INPUT, "output.path: longer than 1023 characters");
  snprintf(partial, sizeof partial, "%s.partial", path);
  ntk_path_dirname(path, dir, sizeof dir);
  NTK_CHECK(ntk_out_check_folder(path));
  NTK_CHECK(ntk_out_check_replaceable("output.path", path));
  NTK_CHECK(ntk_out_check_replaceable("output.path", partial));
  if (resume && ntk_out_exists(path)) NTK_CHECK(check_resumable(path, steps));
  if (!resume && !overwrite && ntk_out_exists(path))
    return ntk_err_set(NTK_ERR_INPUT, "output.path: %s exists (set output.overwrite: true)", path);
  double avail = ntk_disk_free_bytes(dir);
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
                       dir, *need / NTK_MIB, avail / NTK_MIB);
  return NTK_OK;
}

int ntk_output_precheck(MPI_Comm comm, const char *path, int overwrite, int resume,
                        long long steps, double bytes, int dry_run) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  int rc = NTK_OK;
  double have = -1.0, need = bytes;
  if (rank == 0) rc = precheck_rank0(path, overwrite, resume, steps, bytes, &have, &need);
  if (dry_run) {
    char dir[1024];
    ntk_path_dirname(path ? path : "", dir, sizeof dir);
    if (have >= 0)
      ntk_log_raw("# output: about %.1f MiB estimated%s; %.1f MiB free in %s%s\n", need / NTK_MIB,
                  resume ? " still to write" : "", have / NTK_MIB, dir,
                  need > have ? ": NOT ENOUGH" : "");
    else
      ntk_log_raw("# output: about %.1f MiB estimated\n", need / NTK_MIB);
    if (rc) ntk_log_raw("# %s\n", ntk_err_message());
    if (rank == 0) ntk_err_clear();
    return NTK_OK;
  }
  NTK_CHECK(ntk_err_share0(comm, rc));
  return NTK_OK;
}
