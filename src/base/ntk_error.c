#include "ntk_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTK_MSG_MAX 1024
#define NTK_TRACE_MAX 32

static int err_code = NTK_OK;
static char err_msg[NTK_MSG_MAX];
static char err_trace[NTK_TRACE_MAX][160];
static int err_ntrace;
static int err_synced;

int ntk_err_set(int code, const char *fmt, ...) {
  if (err_code != NTK_OK) return err_code; /* keep the first, it is the cause */
  err_code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err_msg, sizeof err_msg, fmt, ap);
  va_end(ap);
  /* messages are one line by contract */
  for (char *p = err_msg; *p; ++p)
    if (*p == '\n') *p = ' ';
  return code;
}

void ntk_err_trace(const char *file, int line, const char *func) {
  if (err_ntrace < NTK_TRACE_MAX)
    snprintf(err_trace[err_ntrace++], sizeof err_trace[0], "%s:%d (%s)", file, line, func);
}

const char *ntk_err_message(void) { return err_msg; }
int ntk_err_code(void) { return err_code; }

void ntk_err_clear(void) {
  err_code = NTK_OK;
  err_msg[0] = '\0';
  err_ntrace = 0;
  err_synced = 0;
}

int ntk_err_is_synced(void) { return err_synced; }

int ntk_err_sync(MPI_Comm comm, int local_code) {
  int size, rank;
  MPI_Comm_size(comm, &size);
  MPI_Comm_rank(comm, &rank);
  if (local_code != NTK_OK && err_code == NTK_OK) {
    err_code = local_code;
    snprintf(err_msg, sizeof err_msg, "error code %d without a message", local_code);
  }
  int mine[2] = {local_code, local_code != NTK_OK ? rank : size};
  int worst[2];
  /* largest code, and separately the lowest failing rank */
  MPI_Allreduce(&mine[0], &worst[0], 1, MPI_INT, MPI_MAX, comm);
  if (worst[0] == NTK_OK) return NTK_OK;
  err_synced = 1;
  MPI_Allreduce(&mine[1], &worst[1], 1, MPI_INT, MPI_MIN, comm);
  int nfail = 0, failed = local_code != NTK_OK;
  MPI_Allreduce(&failed, &nfail, 1, MPI_INT, MPI_SUM, comm);
  char buf[NTK_MSG_MAX];
  int code = local_code;
  if (rank == worst[1]) {
    if (nfail == size || size == 1)
      snprintf(buf, sizeof buf, "%.1000s", err_msg);
    else
      snprintf(buf, sizeof buf, "[rank %d] %.1000s", rank, err_msg);
  }
  MPI_Bcast(buf, NTK_MSG_MAX, MPI_CHAR, worst[1], comm);
  MPI_Bcast(&code, 1, MPI_INT, worst[1], comm);
  err_code = code;
  memcpy(err_msg, buf, sizeof err_msg);
  return code;
}

int ntk_err_share0(MPI_Comm comm, int rc) {
  int rank, code = rc;
  MPI_Comm_rank(comm, &rank);
  MPI_Bcast(&code, 1, MPI_INT, 0, comm);
  if (code == NTK_OK) return NTK_OK;
  char msg[1024];
  if (rank == 0) snprintf(msg, sizeof msg, "%s", ntk_err_message());
  MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, 0, comm);
  if (rank != 0) ntk_err_set(code, "%s", msg);
  return ntk_err_sync(comm, code);
}

void ntk_err_print_trace(void) {
  for (int i = 0; i < err_ntrace; ++i) fprintf(stderr, "  at %s\n", err_trace[i]);
}

int ntk_err_exit_status(int code) {
  switch (code) {
    case NTK_OK: return 0;
    case NTK_ERR_INPUT: return 2;
    case NTK_ERR_INTERRUPTED: return 3;
    default: return 1;
  }
}

void *ntk_malloc(size_t bytes, const char *what) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p)
    ntk_err_set(NTK_ERR_MEMORY, "out of memory allocating %.1f MiB for %s",
                (double)bytes / 1048576.0, what);
  return p;
}

void *ntk_calloc(size_t count, size_t size, const char *what) {
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p)
    ntk_err_set(NTK_ERR_MEMORY, "out of memory allocating %.1f MiB for %s",
                (double)count * (double)size / 1048576.0, what);
  return p;
}
