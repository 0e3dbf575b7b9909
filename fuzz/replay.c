/* main() of the replay executables (fuzz_<target>_replay): runs the fuzz target once on
 * every file named on the command line, or in a folder named there (sorted, so failures
 * repeat in the same order).  Built in every configuration, so the checked-in corpus and
 * every crash ever found are regression tests of the normal ctest suite. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  size_t cap = 1 << 16, n = 0;
  unsigned char *buf = malloc(cap);
  for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
    n += got;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  if (!buf) {
    fprintf(stderr, "%s: out of memory\n", path);
    return 1;
  }
  if (getenv("NTK_FUZZ_VERBOSE")) fprintf(stderr, "%s (%zu bytes)\n", path, n);
  /* an exact-size copy, so that ASan sees reads past the input's end */
  unsigned char *exact = malloc(n ? n : 1);
  memcpy(exact, buf, n);
  free(buf);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
  LLVMFuzzerInitialize(&argc, &argv);
  int count = 0, bad = 0;
  for (int i = 1; i < argc; ++i) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      perror(argv[i]);
      ++bad;
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      bad += run_file(argv[i]);
      ++count;
      continue;
    }
    struct dirent **list;
    int n = scandir(argv[i], &list, NULL, NULL);
    if (n < 0) {
      perror(argv[i]);
      ++bad;
      continue;
    }
    qsort(list, (size_t)n, sizeof *list, by_name);
    for (int j = 0; j < n; ++j) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[i], list[j]->d_name);
      if (list[j]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        bad += run_file(path);
        ++count;
      }
      free(list[j]);
    }
    free(list);
  }
  printf("replayed %d inputs, %d unreadable\n", count, bad);
  return bad || count == 0;
}
