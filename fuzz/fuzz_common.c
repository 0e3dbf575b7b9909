#define _GNU_SOURCE /* memfd_create */
#include "fuzz_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ntk_error.h"

void ntk_fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
  fprintf(stderr, "%s:%d: fuzz check failed: %s: ", file, line, cond);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  abort();
}

int ntk_fuzz_file(const void *data, size_t size, char *path, size_t pathlen) {
  int fd = memfd_create("ntk-fuzz", 0);
  if (fd < 0) {
    perror("memfd_create");
    abort();
  }
  const char *p = data;
  while (size > 0) {
    ssize_t w = write(fd, p, size);
    if (w <= 0) {
      perror("write");
      abort();
    }
    p += w;
    size -= (size_t)w;
  }
  snprintf(path, pathlen, "/proc/self/fd/%d", fd);
  return fd;
}

void ntk_fuzz_check_rc(int rc, const int *allowed, const char *what) {
  static int verbose = -1;
  if (verbose < 0) verbose = getenv("NTK_FUZZ_VERBOSE") != NULL;
  if (verbose) fprintf(stderr, "  %s: %d %s\n", what, rc, rc ? ntk_err_message() : "");
  if (rc == NTK_OK) return;
  int ok = 0;
  for (const int *a = allowed; *a; ++a) ok |= rc == *a;
  const char *msg = ntk_err_message();
  NTK_FUZZ_ASSERT(ok, "%s: unexpected error code %d (%s)", what, rc, msg);
  NTK_FUZZ_ASSERT(ntk_err_code() == rc, "%s: returned %d but the recorded error is %d (%s)", what,
                  rc, ntk_err_code(), msg);
  NTK_FUZZ_ASSERT(msg[0] != '\0', "%s: error %d without a message", what, rc);
  NTK_FUZZ_ASSERT(strchr(msg, '\n') == NULL, "%s: message is not one line: %s", what, msg);
}
