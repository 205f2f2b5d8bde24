/*
 * Fuzz target: the rules language. An input is an expression's text. One
 * that parses must
 *
 *   - print as a canonical text that parses again to the same canonical
 *     text (expr.h promises "parsing it gives the same expression"), and
 *   - evaluate, over a small store holding samples of every series it
 *     reads, to the same value bit for bit with and without the
 *     evaluation memo, and give a horizon after the evaluation time.
 */
#include "rules/expr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "fuzz/fuzz.h"
#include "rules/series.h"

#define MINUTE_NS (INT64_C(60) * INT64_C(1000000000))

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  log_set_level(LOG_ERROR);
  return 0;
}

static bool param(void *ud, const char *name, const struct group *g,
                  double *out) {
  (void)ud;
  (void)g;
  if (name[0] == 'n') {
    return false; /* $n... has no value: MISSING */
  }
  *out = 0.3;
  return true;
}

static int calendar(void *ud, const char *name, const struct group *g,
                    int64_t from_ns, int64_t to_ns) {
  (void)ud;
  (void)g;
  (void)to_ns;
  if (strcmp(name, "office") != 0) {
    return -1;
  }
  return (from_ns / (60 * MINUTE_NS)) % 2 == 0;
}

/* Samples for every series e reads: two districts, one a minute for two
 * hours, a counter that resets once. */
static void fill(struct series_store *st, const struct expr *e) {
  size_t n;
  const struct expr_read *r = expr_reads(e, &n);
  static const char *const districts[] = {"Ea H'Leo", "Lắk"};
  for (size_t i = 0; i < n; i++) {
    const char *field = r[i].field ? r[i].field : "value";
    for (size_t d = 0; d < 2; d++) {
      struct series_label label = {"district", districts[d]};
      for (int64_t k = 120; k >= 0; k--) {
        double v = (double)((120 - k) % 90) * (1.5 + (double)d);
        if (series_store_add(st, r[i].measurement, field, &label, 1,
                             FUZZ_NOW_NS - k * MINUTE_NS, v, NULL, NULL)) {
          return;
        }
      }
    }
  }
}

static bool same_value(const struct expr_value *a, const struct expr_value *b) {
  if (a->missing != b->missing) {
    return false;
  }
  if (a->missing) {
    return a->why == b->why;
  }
  return !memcmp(&a->v, &b->v, sizeof a->v) || (isnan(a->v) && isnan(b->v));
}

static void check_eval(const struct expr *e, const char *canon) {
  struct series_store_opts opts = {.max_samples = 256, .max_series = 64};
  struct series_store *st = series_store_new(&opts);
  if (!st) {
    return;
  }
  if (series_store_want_expr(st, e) == IOCD_OK) {
    fill(st, e);
  }
  static const char *const keys[] = {"district"};
  static const char *const values[] = {"Ea H'Leo"};
  struct group g = {.keys = keys, .values = values, .n = 1};
  struct expr_memo memo = {.n = 0};
  struct eval_ctx ctx = {
      .t_ns = FUZZ_NOW_NS,
      .store = st,
      .group = &g,
      .param = param,
      .calendar = calendar,
  };
  struct expr_value plain, memoized, again;
  if (expr_eval(e, &ctx, &plain) != IOCD_OK) {
    fuzz_fail("expr_eval failed on %s", canon);
  }
  ctx.memo = &memo;
  if (expr_eval(e, &ctx, &memoized) != IOCD_OK ||
      expr_eval(e, &ctx, &again) != IOCD_OK) {
    fuzz_fail("expr_eval with a memo failed on %s", canon);
  }
  if (!same_value(&plain, &memoized) || !same_value(&plain, &again)) {
    fuzz_fail(
        "%s: %.17g (missing %d) without the memo, %.17g (missing %d) "
        "and %.17g (missing %d) with it",
        canon, plain.v, plain.missing, memoized.v, memoized.missing, again.v,
        again.missing);
  }
  ctx.memo = NULL;
  int64_t h = expr_horizon(e, &ctx);
  if (h <= ctx.t_ns) {
    fuzz_fail("%s: horizon %lld is not after the evaluation time %lld", canon,
              (long long)h, (long long)ctx.t_ns);
  }
  series_store_free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) {
    return 0;
  }
  if (size) {
    memcpy(text, data, size);
  }
  text[size] = '\0';
  struct iocd_err err = {{0}};
  int col = 0;
  struct expr *e = expr_parse(text, &err, &col);
  if (!e) {
    if (!err.msg[0]) {
      fuzz_fail("refused without saying why");
    }
    free(text);
    return 0;
  }
  const char *canon = expr_to_string(e);
  struct expr *e2 = expr_parse(canon, &err, &col);
  if (!e2) {
    fuzz_fail("the canonical text %s of %s does not parse: %s", canon, text,
              err.msg);
  }
  if (strcmp(expr_to_string(e2), canon) != 0) {
    fuzz_fail("%s prints as %s, which prints as %s", text, canon,
              expr_to_string(e2));
  }
  check_eval(e, canon);
  expr_free(e2);
  expr_free(e);
  free(text);
  return 0;
}
