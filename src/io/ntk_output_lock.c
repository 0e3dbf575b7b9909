/* ntk_output_lock: one run per output path.  PATH.lock is a small regular file that rank 0
 * holds an fcntl (POSIX record) write lock on for as long as the run writes PATH; it
 * records who holds it ("host H pid P slurm_job_id J start T").  Why fcntl: the kernel
 * drops the lock when the holding process ends, however it ends (SIGKILL, node crash on
 * NFS once the server notices), so a lock file whose lock can be taken is stale by
 * definition, also when its holder ran on another host; NFS (NLM / NFSv4) and Lustre
 * (mounted with -o flock) carry these locks between hosts, which a pid check cannot do.
 * Where the file system refuses fcntl locks (ENOLCK, EOPNOTSUPP: e.g. Lustre -o noflock)
 * the lock falls back to creating PATH.lock exclusively: a holder on this host whose
 * process is gone is then recognised as stale, a holder on another host is not (the
 * refusal says to remove the file if that run is gone).
 *
 * The lock file is never opened a second time by the holding process (POSIX drops all of a
 * process's locks on a file when any of its descriptors of that file is closed). */
#define _GNU_SOURCE
#include "ntk_output_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ntk_error.h"
#include "ntk_log.h"

#define NLOCKS 8

typedef struct {
  char path[1100]; /* PATH.lock; empty: slot free */
  int fd;
  int refs;
  int exclusive; /* the fallback: the file's existence is the lock */
} held_lock;

static held_lock locks[NLOCKS];

static held_lock *find(const char *lp) {
  for (int i = 0; i < NLOCKS; ++i)
    if (locks[i].path[0] && !strcmp(locks[i].path, lp)) return &locks[i];
  return NULL;
}

/* The holder's line from an open lock file ("" when empty or unreadable). */
static void read_holder(int fd, char *buf, size_t n) {
  ssize_t got = pread(fd, buf, n - 1, 0);
  buf[got > 0 ? got : 0] = '\0';
  char *nl = strchr(buf, '\n');
  if (nl) *nl = '\0';
}

static int write_holder(int fd) {
  char host[256] = "?", when[32] = "?", line[512];
  if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "?");
  host[sizeof host - 1] = '\0';
  time_t now = time(NULL);
  struct tm tm;
  if (gmtime_r(&now, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  const char *job = getenv("SLURM_JOB_ID");
  int len = snprintf(line, sizeof line, "host %s pid %ld slurm_job_id %s start %s\n", host,
                     (long)getpid(), job && job[0] ? job : "-", when);
  if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) return -1;
  return fsync(fd) == 0 || errno == EINVAL ? 0 : -1;
}

/* A holder line of this host whose process no longer exists. */
static int holder_gone_here(const char *holder) {
  char host[256], me[256] = "";
  long pid = 0;
  if (sscanf(holder, "host %255s pid %ld", host, &pid) != 2 || pid <= 0) return 0;
  if (gethostname(me, sizeof me) != 0) return 0;
  me[sizeof me - 1] = '\0';
  return !strcmp(host, me) && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static int refuse_in_use(const char *path, const char *lp, const char *holder, const char *hint) {
  return ntk_err_set(NTK_ERR_INPUT, "output.path: %s is in use by another run (%s; lock %s)%s", path,
                     holder[0] ? holder : "holder unknown", lp, hint);
}

/* The fallback where fcntl locks are refused: PATH.lock created exclusively. */
static int take_exclusive(const char *path, const char *lp, held_lock *h) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = open(lp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0) {
      h->fd = fd;
      h->exclusive = 1;
      if (write_holder(fd) != 0)
        return ntk_err_set(NTK_ERR_INPUT, "output.path: cannot write lock %s (%s)", lp, strerror(errno));
      return NTK_OK;
    }
    if (errno != EEXIST)
      return ntk_err_set(NTK_ERR_INPUT, "output.path: cannot create lock %s (%s)", lp, strerror(errno));
    char holder[512] = "";
    int old = open(lp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (old >= 0) {
      read_holder(old, holder, sizeof holder);
      close(old);
    }
    if (!holder_gone_here(holder))
      return refuse_in_use(path, lp, holder,
                           ": this file system has no fcntl locks, so a holder on another host cannot be "
                           "checked: remove the lock file if that run is gone");
    ntk_log_info("output: taking over the stale lock %s (%s: that process is gone)", lp, holder);
    if (unlink(lp) != 0 && errno != ENOENT)
      return ntk_err_set(NTK_ERR_INPUT, "output.path: cannot remove stale lock %s (%s)", lp, strerror(errno));
  }
  return ntk_err_set(NTK_ERR_INPUT, "output.path: cannot take lock %s (it keeps coming back)", lp);
}

/* Rank 0. */
static int take_rank0(const char *path) {
  char lp[1100];
  if (!path || !path[0]) return ntk_err_set(NTK_ERR_INPUT, "output.path: empty");
  if (snprintf(lp, sizeof lp, "%s.lock", path) >= (int)sizeof lp)
    return ntk_err_set(NTK_ERR_INPUT, "output.path: too long");
  held_lock *h = find(lp);
  if (h) {
    h->refs++;
    return NTK_OK;
  }
  /* what would be refused anyway is refused before a lock file is made beside it (e.g.
   * output.path /dev/null) */
  char partial[1100];
  snprintf(partial, sizeof partial, "%s.partial", path);
  NTK_CHECK(ntk_out_check_folder(path));
  NTK_CHECK(ntk_out_check_replaceable("output.path", path));
  NTK_CHECK(ntk_out_check_replaceable("output.path", partial));
  for (int i = 0; i < NLOCKS && !h; ++i)
    if (!locks[i].path[0]) h = &locks[i];
  if (!h) return ntk_err_set(NTK_ERR_INTERNAL, "output: more than %d output locks", NLOCKS);
  struct stat st, st2;
  /* a previous holder may remove its lock file between our open and our lock: retry on
   * the file that is there then */
  for (int attempt = 0; attempt < 8; ++attempt) {
    int existed = lstat(lp, &st) == 0;
    if (existed && !S_ISREG(st.st_mode))
      return ntk_err_set(NTK_ERR_INPUT, "output.path: lock %s exists and is not a regular file", lp);
    int fd = open(lp, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
      return ntk_err_set(NTK_ERR_INPUT, "output.path: cannot create lock %s (%s)", lp, strerror(errno));
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) != 0) {
      int e = errno;
      char holder[512] = "";
      read_holder(fd, holder, sizeof holder);
      close(fd);
      if (e == EACCES || e == EAGAIN) return refuse_in_use(path, lp, holder, "");
      if (e == ENOLCK || e == EOPNOTSUPP || e == ENOSYS || e == EINVAL) {
        if (!existed) unlink(lp); /* ours, just created: the fallback creates it exclusively */
        int rc = take_exclusive(path, lp, h);
        if (rc != NTK_OK) return rc;
        snprintf(h->path, sizeof h->path, "%s", lp);
        h->refs = 1;
        return NTK_OK;
      }
      return ntk_err_set(NTK_ERR_INPUT, "output.path: cannot lock %s (%s)", lp, strerror(e));
    }
    if (fstat(fd, &st) != 0 || stat(lp, &st2) != 0 || st.st_dev != st2.st_dev || st.st_ino != st2.st_ino) {
      close(fd);
      continue;
    }
    char holder[512] = "";
    read_holder(fd, holder, sizeof holder);
    if (holder[0]) ntk_log_info("output: taking over the stale lock %s (%s: that run is gone)", lp, holder);
    if (write_holder(fd) != 0) {
      int e = errno;
      close(fd);
      return ntk_err_set(NTK_ERR_INPUT, "output.path: cannot write lock %s (%s)", lp, strerror(e));
    }
    snprintf(h->path, sizeof h->path, "%s", lp);
    h->fd = fd;
    h->refs = 1;
    h->exclusive = 0;
    return NTK_OK;
  }
  return ntk_err_set(NTK_ERR_INPUT, "output.path: cannot take lock %s (it keeps being replaced)", lp);
}

int ntk_output_lock(MPI_Comm comm, const char *path) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  int rc = rank == 0 ? take_rank0(path) : NTK_OK;
  NTK_CHECK(ntk_err_share0(comm, rc));
  return NTK_OK;
}

void ntk_output_unlock(MPI_Comm comm, const char *path) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  char lp[1100];
  if (rank != 0 || !path || snprintf(lp, sizeof lp, "%s.lock", path) >= (int)sizeof lp) return;
  held_lock *h = find(lp);
  if (!h || --h->refs > 0) return;
  /* removed while still locked: a run that opened the old file meanwhile sees another inode
   * at the path once it has the lock, and starts over on the new one */
  unlink(lp);
  close(h->fd);
  memset(h, 0, sizeof *h);
}
