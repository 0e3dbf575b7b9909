/* Fuzz target: the configuration loader (YAML file), the --set parser and the validator.
 * Properties checked for every input:
 *  - ntk_config_load / ntk_config_validate succeed or fail with NTK_ERR_INPUT and one line;
 *  - a configuration that validates prints (ntk_config_to_yaml) as YAML that loads and
 *    validates again to the same values (the `config` attribute of every output file is
 *    that text, and --resume compares configurations), and reads back the same as a
 *    stored text (ntk_config_from_text);
 *  - every line of the input, given to ntk_config_set as a --set KEY=VALUE, succeeds or
 *    fails with NTK_ERR_INPUT, and the result validates or fails the same way. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "ntk_config.h"
#include "ntk_error.h"

static const int input_errors[] = {NTK_ERR_INPUT, 0};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

static void check_round_trip(const ntk_config *cfg) {
  char *yaml = ntk_config_to_yaml(cfg);
  NTK_FUZZ_ASSERT(yaml != NULL, "printing a valid configuration failed: %s", ntk_err_message());
  char path[64];
  int fd = ntk_fuzz_file(yaml, strlen(yaml), path, sizeof path);
  static ntk_config again;
  ntk_err_clear();
  int rc = ntk_config_load(path, &again);
  if (!rc) rc = ntk_config_validate(&again);
  close(fd);
  NTK_FUZZ_ASSERT(rc == NTK_OK, "the printed configuration does not load back: %s\n%s",
                  ntk_err_message(), yaml);
  const char *diff = ntk_config_diff(cfg, &again);
  NTK_FUZZ_ASSERT(diff == NULL, "key %s changes in a print/load round trip:\n%s", diff, yaml);
  /* info and --resume read the stored text with ntk_config_from_text: the same values */
  unsigned char given[NTK_CONFIG_MAX_KEYS];
  rc = ntk_config_from_text(yaml, "stored", &again, given);
  NTK_FUZZ_ASSERT(rc == NTK_OK, "the printed configuration does not read as stored text: %s\n%s",
                  ntk_err_message(), yaml);
  diff = ntk_config_diff(cfg, &again);
  NTK_FUZZ_ASSERT(diff == NULL, "key %s changes in a print/stored-text round trip:\n%s", diff,
                  yaml);
  for (int i = 0; i < ntk_config_nkeys; ++i)
    NTK_FUZZ_ASSERT(given[i], "key %s missing from the stored text:\n%s", ntk_config_keys[i].name,
                    yaml);
  free(yaml);
}

static void check_set_lines(const uint8_t *data, size_t size) {
  static ntk_config cfg;
  ntk_config_defaults(&cfg);
  char line[2048];
  size_t start = 0;
  for (int nlines = 0; start < size && nlines < 32; ++nlines) {
    size_t end = start;
    while (end < size && data[end] != '\n') ++end;
    size_t len = end - start < sizeof line - 1 ? end - start : sizeof line - 1;
    memcpy(line, data + start, len);
    line[len] = '\0';
    if (strlen(line) == len) { /* an embedded NUL cannot come from a command line */
      ntk_err_clear();
      ntk_fuzz_check_rc(ntk_config_set(&cfg, line), input_errors, "ntk_config_set");
    }
    start = end + 1;
  }
  ntk_err_clear();
  ntk_fuzz_check_rc(ntk_config_validate(&cfg), input_errors, "ntk_config_validate after --set");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static ntk_config cfg;
  char path[64];
  int fd = ntk_fuzz_file(data, size, path, sizeof path);
  ntk_err_clear();
  int rc = ntk_config_load(path, &cfg);
  close(fd);
  ntk_fuzz_check_rc(rc, input_errors, "ntk_config_load");
  if (!rc) {
    ntk_err_clear();
    rc = ntk_config_validate(&cfg);
    ntk_fuzz_check_rc(rc, input_errors, "ntk_config_validate");
    if (!rc) check_round_trip(&cfg);
  }
  check_set_lines(data, size);
  ntk_err_clear();
  return 0;
}
