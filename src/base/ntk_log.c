#include "ntk_log.h"

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

void ntk_log_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "ntkspec: warning [rank %d]: ", log_rank);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  fflush(stderr);
  va_end(ap);
}

void ntk_log_error_line(const char *msg) {
  if (log_rank != 0) return;
  fprintf(stderr, "ntkspec: error: %s\n", msg);
  fflush(stderr);
}

void ntk_log_raw(const char *fmt, ...) {
  if (log_rank != 0) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  fflush(stdout);
}
