/* ntk_log: all printing goes through here.  Info lines come from rank 0 only, prefixed
 * with the elapsed wall time and the resident memory of rank 0; warnings may come from
 * any rank and say which.  Verbosity: 0 quiet, 1 progress (default), 2 debug. */
#ifndef NTK_LOG_H
#define NTK_LOG_H
#include <mpi.h>
#include <stdio.h>

void ntk_log_init(MPI_Comm comm, int verbosity);
int ntk_log_rank(void);
void ntk_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ntk_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Any rank; prints "warning [rank r]: ..." on stderr as one line in one write(2), so the
 * lines of different ranks never interleave. */
void ntk_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Any rank: one line (the newline added) on stderr in one write(2), for the messages of
 * a rank that stops alone. */
void ntk_log_stderr_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Rank 0 prints "ntkspec: error: MSG" on stderr (after ntk_err_sync). */
void ntk_log_error_line(const char *msg);
/* Plain output on rank 0 without the time prefix (tables, dry-run). */
void ntk_log_raw(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
double ntk_log_elapsed(void);
/* Peak resident set size of this process in bytes (getrusage). */
double ntk_peak_rss_bytes(void);
double ntk_current_rss_bytes(void);

#endif
