/*
 * The fixture shared by the configuration loader's tests (test_config.c
 * and test_rules_config.c): load a config text under the name "iocd.jsonc",
 * keep the return code, the config and the error output together, and check
 * tables of texts that must fail with an exact error output. Static inline,
 * so that a test file that uses only part of it compiles without warnings
 * and no CMake change is needed to share it.
 */
#ifndef IOCD_TESTS_UNIT_CONFIG_FIXTURE_H
#define IOCD_TESTS_UNIT_CONFIG_FIXTURE_H

#include <criterion/criterion.h>
#include <stddef.h>
#include <string.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"

#ifndef IOCD_SOURCE_DIR
#error "tests/CMakeLists.txt passes IOCD_SOURCE_DIR"
#endif
#define EXAMPLE_PATH IOCD_SOURCE_DIR "/config/iocd.example.jsonc"

/* The smallest valid head: one subscription and the file output. Cases
 * append their keys from line 2 on. */
#define HEAD "{\"file\": {}, \"subscriptions\": [{\"topic\": \"t\"}],\n"

/* One load: cfg is owned by it (NULL when the text was refused) and errors
 * holds the loader's messages; load_done frees both. */
struct load {
  int rc;
  struct config *cfg;
  struct buf errors;
};

static inline void load_text(struct load *l, const char *text) {
  buf_init(&l->errors, 0);
  l->cfg = NULL;
  l->rc =
      config_load_text("iocd.jsonc", text, strlen(text), &l->cfg, &l->errors);
}

/* The error output, "" when there was none. */
static inline const char *errors_of(const struct load *l) {
  return l->errors.data ? l->errors.data : "";
}

static inline void load_done(struct load *l) {
  config_free(l->cfg);
  buf_cleanup(&l->errors);
}

/* Loads text that must be valid and returns the config (the caller frees
 * it); fails the test with the errors otherwise. */
static inline struct config *load_ok(const char *text) {
  struct load l;
  load_text(&l, text);
  cr_assert_eq(l.rc, IOCD_OK, "rc %d, errors:\n%s", l.rc, errors_of(&l));
  cr_assert_not_null(l.cfg);
  buf_cleanup(&l.errors);
  return l.cfg;
}

struct err_case {
  const char *what;
  const char *text;
  const char *want; /* the complete error output */
};

/* Every case must be refused as a parse error, with no config and exactly
 * its error output; all cases run even after one fails. */
static inline void check_cases(const struct err_case *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    struct load l;
    load_text(&l, cases[i].text);
    cr_expect_eq(l.rc, IOCD_EPARSE, "%s: rc %d", cases[i].what, l.rc);
    cr_expect_null(l.cfg, "%s: a config came back", cases[i].what);
    cr_expect_str_eq(errors_of(&l), cases[i].want, "%s:\ngot:  %swant: %s",
                     cases[i].what, errors_of(&l), cases[i].want);
    load_done(&l);
  }
}

#define CHECK_CASES(a) check_cases(a, sizeof(a) / sizeof((a)[0]))

#endif
