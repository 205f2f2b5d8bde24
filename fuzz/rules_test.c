/*
 * Fuzz target: the rule-test reader behind `iocd rules test FILE`
 * (rules_cli_test in app/rules_cli.c). An input is the text of a test
 * file; it is written to a file in a private temporary directory, so that
 * paths in it resolve next to it, and run as the command runs it. Any
 * exit status is fine; a crash, a sanitizer report (an overflow of a time
 * is one) or a run that never ends (libFuzzer's -timeout) is not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/rules_cli.h"
#include "core/log.h"
#include "fuzz/fuzz.h"

static char dir[256];
static char path[300];
static FILE *devnull;

static void remove_dir(void) {
  unlink(path);
  rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  log_set_level(LOG_ERROR);
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/iocd-fuzz-rules-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    fuzz_fail("cannot create a directory under %s", tmp ? tmp : "/tmp");
  }
  snprintf(path, sizeof path, "%s/fuzz.test.jsonc", dir);
  devnull = fopen("/dev/null", "w");
  if (!devnull) {
    fuzz_fail("cannot open /dev/null");
  }
  atexit(remove_dir);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f) {
    fuzz_fail("cannot write %s", path);
  }
  if (size && fwrite(data, 1, size, f) != size) {
    fuzz_fail("cannot write %s", path);
  }
  fclose(f);
  const char *paths[] = {path};
  int status = rules_cli_test(paths, 1, devnull, devnull);
  if (status != 0 && status != 1) {
    fuzz_fail("rules_cli_test returned %d, not an exit status 0 or 1", status);
  }
  return 0;
}
