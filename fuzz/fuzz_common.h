/* Shared by the fuzz targets: the libFuzzer entry points, the input written to an
 * anonymous in-memory file (the loaders take a path), and the contract every target
 * checks after each call: a failure is an NTK_ERR_INPUT (or the allowed codes) with one
 * non-empty line of message, never a crash, an internal error or a leak. */
#ifndef NTK_FUZZ_COMMON_H
#define NTK_FUZZ_COMMON_H
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Write bytes to a fresh memfd; path receives "/proc/self/fd/N".  Returns the fd (close it
 * after use) or aborts: the harness itself failing is not a finding. */
int ntk_fuzz_file(const void *data, size_t size, char *path, size_t pathlen);

/* Abort (a libFuzzer crash) with a message when cond is false. */
#define NTK_FUZZ_ASSERT(cond, ...) \
  do {                             \
    if (!(cond)) ntk_fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
  } while (0)
void ntk_fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/* rc must be NTK_OK or one of the `allowed` codes (a 0-terminated list); a failure must
 * leave one line of message. */
void ntk_fuzz_check_rc(int rc, const int *allowed, const char *what);

#endif
