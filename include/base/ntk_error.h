/* ntk_error: error codes, the NTK_CHECK macro and collective error agreement.
 *
 * Every ntkspec function returns an int error code (NTK_OK == 0).  The first failure
 * records a one-line message (ntk_err_set); NTK_CHECK appends file:line to a trace as the
 * code travels back up.  Errors are either collective (every rank detects the same thing,
 * e.g. a config error: ntk_err_set on all ranks) or local (one rank sees bad data in its
 * rows): ntk_err_sync() makes all ranks agree, and carries the lowest failing rank's
 * message to everybody, so rank 0 can print one line and all ranks exit together. */
#ifndef NTK_ERROR_H
#define NTK_ERROR_H
#include <mpi.h>

enum {
  NTK_OK = 0,
  NTK_ERR_INTERRUPTED = 1, /* a signal stopped the run before anything worth keeping: exit 3 */
  NTK_ERR_INPUT = 2,   /* bad command line, config, data: exit status 2 */
  NTK_ERR_RUNTIME = 3, /* library failure, I/O failure, numerical breakdown */
  NTK_ERR_MEMORY = 4,
  NTK_ERR_INTERNAL = 5
};

/* Record the first error of this rank (later ones are ignored until ntk_err_clear). */
int ntk_err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Called by NTK_CHECK: remembers where the error passed through. */
void ntk_err_trace(const char *file, int line, const char *func);
const char *ntk_err_message(void);
int ntk_err_code(void);
void ntk_err_clear(void);
/* Collective: all ranks pass their local code; returns the agreed code (the largest
 * severity seen on any rank) and replaces every rank's message with the message of the
 * lowest failing rank, prefixed with "[rank r] " when it came from one rank only. */
int ntk_err_sync(MPI_Comm comm, int local_code);
/* Collective: rank 0's code (the others pass anything) becomes everybody's, with rank 0's
 * message unprefixed: for checks one rank makes on behalf of all (a file's metadata, a
 * folder), whose failure is the job's, not that rank's. */
int ntk_err_share0(MPI_Comm comm, int rank0_code);
/* 1 if the current error went through ntk_err_sync (every rank knows it), else 0: an
 * unsynced error may leave other ranks inside a collective, so the caller must abort. */
int ntk_err_is_synced(void);
/* Print the trace (file:line list) on stderr; used with NTK_DEBUG=1. */
void ntk_err_print_trace(void);
/* Map an error code to the process exit status. */
int ntk_err_exit_status(int code);

#define NTK_CHECK(call)                                    \
  do {                                                     \
    int ntk_check_err_ = (call);                           \
    if (ntk_check_err_ != NTK_OK) {                        \
      ntk_err_trace(__FILE__, __LINE__, __func__);         \
      return ntk_check_err_;                               \
    }                                                      \
  } while (0)

/* Allocation that sets an NTK_ERR_MEMORY error naming what failed. */
void *ntk_malloc(size_t bytes, const char *what);
void *ntk_calloc(size_t count, size_t size, const char *what);
#define NTK_ALLOC(ptr, count, what)                                               \
  do {                                                                            \
    (ptr) = ntk_calloc((size_t)(count) > 0 ? (size_t)(count) : 1, sizeof(*(ptr)), \
                       (what));                                                   \
    if (!(ptr)) return ntk_err_code();                                            \
  } while (0)

#endif
