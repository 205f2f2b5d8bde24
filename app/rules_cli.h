/*
 * `iocd rules test FILE...`: rule unit tests. Each file names the rules to
 * load (a configuration, or rule files with the calendar, sources and
 * parameters they need), input series in a compact notation, and the
 * alerts expected at given times. The rules run in the real engine on a
 * virtual clock; a failure prints what was expected and what came out, per
 * alert. docs/rules-guide.md describes the format.
 */
#ifndef IOCD_APP_RULES_CLI_H
#define IOCD_APP_RULES_CLI_H

#include <stdio.h>

/* Runs the test files paths[0..n). Results go to out, problems with a file
 * (it cannot be read, or is not a test file) to errs. Returns the exit
 * status: 0 when every test passed, 1 otherwise. */
int rules_cli_test(const char *const *paths, size_t n, FILE *out, FILE *errs);

#endif
