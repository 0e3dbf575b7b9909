#include "ntk_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int log_rank;
static int log_verbosity = 1;
static double log_t0;

void ntk_log_init(MPI_Comm comm, int verbosity) {
  MPI_Comm_rank(comm, &log_rank);
  log_verbosity = verbosity;
  log_t0 = MPI_Wtime();
}

int ntk_log_rank(void) { return log_rank; }
double ntk_log_elapsed(void) { return MPI_Wtime() - log_t0; }

double ntk_peak_rss_bytes(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_maxrss * 1024.0;
}

double ntk_current_rss_bytes(void) {
  long pages = 0, rss = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0.0;
  if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
  fclose(f);
  return (double)rss * (double)sysconf(_SC_PAGESIZE);
}

static void vlog(FILE *out, int level, const char *fmt, va_list ap) {
  if (log_rank != 0 || log_verbosity < level) return;
  fprintf(out, "[%8.2fs %7.1f MiB] ", ntk_log_elapsed(), ntk_current_rss_bytes() / 1048576.0);
  vfprintf(out, fmt, ap);
  fputc('\n', out);
  fflush(out);
}

void ntk_log_info(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(stdout, 1, fmt, ap);
  va_end(ap);
}

void ntk_log_debug(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(stdout, 2, fmt, ap);
  va_end(ap);
}

/* Every rank may write to the one stderr mpirun forwards: a line goes out in a single
 * write(2), which the pipe keeps whole, so lines of different ranks never mix. */
static void write_line(const char *prefix, const char *fmt, va_list ap) {
  char line[4096];
  int n = snprintf(line, sizeof line, "%s", prefix);
  if (n < 0) n = 0;
  if ((size_t)n < sizeof line) {
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    n = m < 0 ? n : n + m;
  }
  if ((size_t)n >= sizeof line - 1) n = (int)sizeof line - 2; /* truncated, still one line */
  line[n++] = '\n';
  fflush(stderr);
  for (size_t off = 0; off < (size_t)n;) {
    ssize_t w = write(STDERR_FILENO, line + off, (size_t)n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (size_t)w;
  }
}

void ntk_log_warn(const char *fmt, ...) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "ntkspec: warning [rank %d]: ", log_rank);
  va_list ap;
  va_start(ap, fmt);
  write_line(prefix, fmt, ap);
  va_end(ap);
}

void ntk_log_stderr_line(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  write_line("", fmt, ap);
  va_end(ap);
}

void ntk_log_error_line(const char *msg) {
  if (log_rank != 0) return;
  ntk_log_stderr_line("ntkspec: error: %s", msg);
}

void ntk_log_raw(const char *fmt, ...) {
  if (log_rank != 0) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  fflush(stdout);
}
