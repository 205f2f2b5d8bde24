/*
 * Tests of the rules language: the parser (every construct, precedence, the
 * canonical text and every error with its column), each function on
 * hand-made samples with exact results, staleness, MISSING and Kleene logic,
 * parameters, the calendar hook, the default rules on the seed's figures
 * with Vietnamese district names, and deterministic replay.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "rules/expr.h"
#include "rules/series.h"

/* 2020-01-01T00:00:00Z: iGate's counters restart on 1 January. */
#define NEW_YEAR (INT64_C(1577836800) * NS_PER_SEC)
#define SEC(x) ((int64_t)(x)*NS_PER_SEC)
#define MINUTES(x) SEC(60 * (x))
#define HOURS(x) SEC(3600 * (x))
#define DAYS(x) SEC(86400 * (x))

static const char *const by_district[] = {"district"};

#define DISTRICT(name) \
  (&(struct group){    \
      .keys = by_district, .values = (const char *const[]){name}, .n = 1})

struct res {
  bool missing;
  double v;
  enum expr_why why;
  char culprit[200];
};

static struct expr *parse_ok(const char *text) {
  struct iocd_err err = {{0}};
  int col = -1;
  struct expr *e = expr_parse(text, &err, &col);
  cr_assert_not_null(e, "parse %s: %s", text, err.msg);
  cr_assert_eq(col, 0);
  return e;
}

static struct res eval_in(const struct eval_ctx *c, const char *text) {
  struct expr *e = parse_ok(text);
  struct expr_value v;
  cr_assert_eq(expr_eval(e, c, &v), IOCD_OK);
  struct res r = {.missing = v.missing, .v = v.v, .why = v.why};
  if (v.culprit) {
    snprintf(r.culprit, sizeof r.culprit, "%s", v.culprit);
  }
  expr_free(e);
  return r;
}

static struct res eval_at(const struct series_store *st, const struct group *g,
                          int64_t t, const char *text) {
  struct eval_ctx c = {.t_ns = t, .store = st, .group = g};
  return eval_in(&c, text);
}

static void assert_value(struct res r, double want, const char *text) {
  cr_assert(!r.missing, "%s: MISSING (%s, %s), want %.17g", text,
            expr_why_name(r.why), r.culprit, want);
  cr_assert(r.v == want, "%s: got %.17g, want %.17g", text, r.v, want);
}

static void assert_missing(struct res r, enum expr_why why, const char *culprit,
                           const char *text) {
  cr_assert(r.missing, "%s: got %.17g, want MISSING", text, r.v);
  cr_assert_eq(r.why, why, "%s: why %s, want %s", text, expr_why_name(r.why),
               expr_why_name(why));
  if (culprit) {
    cr_assert_str_eq(r.culprit, culprit, "%s", text);
  }
}

static struct series_store *store_wanting(const char *const *texts, size_t n) {
  struct series_store *st = series_store_new(NULL);
  cr_assert_not_null(st);
  for (size_t i = 0; i < n; i++) {
    struct expr *e = parse_ok(texts[i]);
    cr_assert_eq(series_store_want_expr(st, e), IOCD_OK);
    expr_free(e);
  }
  return st;
}

static void add(struct series_store *st, const char *meas, const char *field,
                const char *district, int64_t ts, double v) {
  struct series_label l[] = {{"district", district}};
  cr_assert_eq(
      series_store_add(st, meas, field, l, district ? 1 : 0, ts, v, NULL, NULL),
      IOCD_OK);
}

/* ---- parser: canonical text ---------------------------------------------- */

static const struct {
  const char *in, *canon;
} canon_cases[] = {
    /* precedence and associativity */
    {"1+2*3", "1 + 2 * 3"},
    {"(1+2)*3", "(1 + 2) * 3"},
    {"1-2-3", "1 - 2 - 3"},
    {"1-(2-3)", "1 - (2 - 3)"},
    {"8/4/2", "8 / 4 / 2"},
    {"8/(4/2)", "8 / (4 / 2)"},
    {"(1*2)+3", "1 * 2 + 3"},
    {"-2", "-2"},
    {"- -2", "- -2"},
    {"-(-2)", "- -2"},
    {"- - -x.y", "- - -x.y"},
    {"-(1+2)", "-(1 + 2)"},
    {"2*-3", "2 * -3"},
    {"not a.b > 1 and c.d < 2 or e.f == 3",
     "not a.b > 1 and c.d < 2 or e.f == 3"},
    {"not (a.b > 1 and c.d < 2)", "not (a.b > 1 and c.d < 2)"},
    {"a.b or (c.d and e.f)", "a.b or c.d and e.f"},
    {"(a.b or c.d) and e.f", "(a.b or c.d) and e.f"},
    {"not not a.b", "not not a.b"},
    {"(1 < 2) == 1", "(1 < 2) == 1"},
    {"1<=2", "1 <= 2"},
    {"1>=2", "1 >= 2"},
    {"1!=2", "1 != 2"},
    {"1>2", "1 > 2"},
    {"(((1)))", "1"},
    /* numbers, percentages, durations */
    {"1e3", "1000"},
    {"0.5", "0.5"},
    {"0.1", "0.1"},
    {"1E21", "1e+21"},
    {"2.5e-3", "0.0025"},
    {"30%", "30%"},
    {"12.5%", "12.5%"},
    {"90s", "1m30s"},
    {"1d", "1d"},
    {"7d", "1w"},
    {"1h30m", "1h30m"},
    {"1500ms", "1s500ms"},
    {"0s", "0s"},
    {"2w3d4h5m6s7ms", "2w3d4h5m6s7ms"},
    /* parameters */
    {"$online_target", "$online_target"},
    {"a.b<$x_2", "a.b < $x_2"},
    /* selectors */
    {"igate.received", "igate.received"},
    {"igate.received{district=\"Lắk\", system!=\"x\"}",
     "igate.received{district=\"Lắk\", system!=\"x\"}"},
    {"igate.received{ district = \"Lắk\" , }",
     "igate.received{district=\"Lắk\"}"},
    {"igate.received{}", "igate.received"},
    {"\"my meas\".\"field x\"", "\"my meas\".\"field x\""},
    {"\"igate\".\"received\"", "igate.received"},
    {"\"and\".x", "\"and\".x"},
    {"m.and", "m.and"},
    {"\"a\\\"b\\\\c\".f", "\"a\\\"b\\\\c\".f"},
    {"m.f{\"label key\"=\"v\"}", "m.f{\"label key\"=\"v\"}"},
    {"m.f{k=\"Ea H'Leo \\\"x\\\"\"}", "m.f{k=\"Ea H'Leo \\\"x\\\"\"}"},
    {"thống_kê.số_hồ_sơ", "thống_kê.số_hồ_sơ"},
    {"m2.f_3", "m2.f_3"},
    {"_m.f", "_m.f"},
    /* functions */
    {"avg ( igate.received [ 15m ] )", "avg(igate.received[15m])"},
    {"min(m.f[1h])", "min(m.f[1h])"},
    {"max(m.f[1h])", "max(m.f[1h])"},
    {"sum(m.f[1h])", "sum(m.f[1h])"},
    {"count(m.f[1h])", "count(m.f[1h])"},
    {"last(m.f[1h])", "last(m.f[1h])"},
    {"delta(m.f[1h])", "delta(m.f[1h])"},
    {"increase(m.f{district=\"Lắk\"}[1d])",
     "increase(m.f{district=\"Lắk\"}[1d])"},
    {"rate(m.f[5m])", "rate(m.f[5m])"},
    {"age(igate)", "age(igate)"},
    {"age(igate.received)", "age(igate.received)"},
    {"absent(igate{district=\"Ea H'Leo\"})",
     "absent(igate{district=\"Ea H'Leo\"})"},
    {"age(avg)", "age(avg)"},
    {"avg.f", "avg.f"},
    {"during(\"office_hours\")", "during(\"office_hours\")"},
    {"during(\"office_hours\",120m)", "during(\"office_hours\", 2h)"},
    /* the default rules */
    {"(increase(igate.online_l3[1d]) + increase(igate.online_l4[1d])) / "
     "increase(igate.received[1d]) < $online_target",
     "(increase(igate.online_l3[1d]) + increase(igate.online_l4[1d])) / "
     "increase(igate.received[1d]) < $online_target"},
    {"increase(igate.received[1d]) >= 20",
     "increase(igate.received[1d]) >= 20"},
    {"province.services_l3 / province.services_total < 60%",
     "province.services_l3 / province.services_total < 60%"},
    {"igate.resolved/igate.received<85%",
     "igate.resolved / igate.received < 85%"},
    {"igate.overdue > $overdue_limit", "igate.overdue > $overdue_limit"},
    {"increase(idesk.documents_sent[2h]) == 0 and during(\"office_hours\", "
     "2h)",
     "increase(idesk.documents_sent[2h]) == 0 and during(\"office_hours\", "
     "2h)"},
    {"age(igate) > 10m or absent(igate.received)",
     "age(igate) > 10m or absent(igate.received)"},
};

Test(expr_parse, prints_every_construct_in_canonical_form) {
  for (size_t i = 0; i < sizeof canon_cases / sizeof canon_cases[0]; i++) {
    struct expr *e = parse_ok(canon_cases[i].in);
    cr_expect_str_eq(expr_to_string(e), canon_cases[i].canon,
                     "input %s: got %s", canon_cases[i].in, expr_to_string(e));
    expr_free(e);
  }
}

Test(expr_parse, reparses_its_canonical_form_to_the_same_text) {
  for (size_t i = 0; i < sizeof canon_cases / sizeof canon_cases[0]; i++) {
    struct expr *e = parse_ok(canon_cases[i].in);
    struct expr *again = parse_ok(expr_to_string(e));
    cr_expect_str_eq(expr_to_string(again), expr_to_string(e));
    expr_free(again);
    expr_free(e);
  }
}

/* A chain of minuses as deep as the parser allows parses again once
 * printed (parentheses around each would add a level per minus). */
Test(expr_parse, a_deep_chain_of_minuses_reparses_once_printed) {
  char text[80];
  for (int n = 1; n <= 64; n++) {
    memset(text, '-', (size_t)n);
    snprintf(text + n, sizeof text - (size_t)n, "1");
    struct iocd_err err;
    int col = 0;
    struct expr *e = expr_parse(text, &err, &col);
    if (!e) {
      continue; /* past the parser's depth: refused as written */
    }
    struct expr *again = expr_parse(expr_to_string(e), &err, &col);
    cr_expect_not_null(again, "%d minuses print as \"%s\", which fails: %s", n,
                       expr_to_string(e), err.msg);
    expr_free(again);
    expr_free(e);
  }
}

static const struct {
  const char *text;
  double want;
} arith_cases[] = {
    {"1 + 2 * 3", 7},
    {"(1 + 2) * 3", 9},
    {"2 - 3 - 4", -5},
    {"8 / 4 / 2", 1},
    {"-2 * 3", -6},
    {"- -2", 2},
    {"2 * -3 + 1", -5},
    {"not 1 < 0", 1},
    {"not 0 and 0", 0}, /* (not 0) and 0: not binds tighter than and */
    {"not (0 and 0)", 1},
    {"1 or 0 and 0", 1}, /* 1 or (0 and 0) */
    {"(1 or 0) and 0", 0},
    {"0 and 1 or 1", 1},
    {"1 + 1 == 2", 1}, /* comparison binds looser than + */
    {"2 * 3 > 5 and 1", 1},
    {"-2 < -1", 1},
    {"3 <= 3", 1},
    {"3 >= 4", 0},
    {"3 != 3", 0},
    {"3 == 3", 1},
    {"30%", 0.30},
    {"85%", 0.85},
    {"12.5%", 0.125},
    {"1e3", 1000},
    {"90s", 90},
    {"15m", 900},
    {"2h", 7200},
    {"1d", 86400},
    {"1w", 604800},
    {"1h30m", 5400},
    {"250ms", 0.25},
    {"10m > 9m59s", 1},
};

Test(expr_eval, follows_precedence_and_units) {
  struct eval_ctx c = {.t_ns = NEW_YEAR};
  for (size_t i = 0; i < sizeof arith_cases / sizeof arith_cases[0]; i++) {
    assert_value(eval_in(&c, arith_cases[i].text), arith_cases[i].want,
                 arith_cases[i].text);
  }
}

/* ---- parser: errors ------------------------------------------------------ */

static const struct {
  const char *in;
  int col;
  const char *msg;
} error_cases[] = {
    {"", 1, "empty expression"},
    {"   ", 1, "empty expression"},
    {"1 +", 4,
     "expected a number, a series, a parameter or '(', got the end of the "
     "expression"},
    {"1 +* 2", 4, "expected a number, a series, a parameter or '(', got '*'"},
    {"and", 1, "expected a number, a series, a parameter or '(', got 'and'"},
    {"a.b and", 8,
     "expected a number, a series, a parameter or '(', got the end of the "
     "expression"},
    {"avg(igate.received[1d]", 23, "expected ')' after the arguments of avg"},
    {"avg(igate.received[1d] x", 24, "expected ')' after the arguments of avg"},
    {"(1 + 2", 7,
     "expected ')' to close '(' at column 1, got the end of the "
     "expression"},
    {"foo(igate.received)", 1, "unknown function 'foo'"},
    {"avg(igate.received[1d], igate.x[1d])", 23,
     "avg takes exactly 1 argument"},
    {"avg()", 5, "avg takes 1 argument, got none"},
    {"avg(1)", 5,
     "the argument of avg must be a series selector such as "
     "igate.received[1d]"},
    {"age(1)", 5,
     "the argument of age must be a series selector such as igate.received"},
    {"avg(igate.received)", 19,
     "avg needs a range such as [15m] after igate.received"},
    {"rate(igate)", 6,
     "igate needs a field, as in igate.<field> (a measurement alone is "
     "allowed only in age() and absent())"},
    {"igate.received[1d]", 15,
     "a range is allowed only inside avg, min, max, sum, count, last, delta, "
     "increase and rate"},
    {"age(igate[5m])", 10, "age takes no range"},
    {"absent(igate.received[5m])", 22, "absent takes no range"},
    {"igate > 1", 1,
     "igate needs a field, as in igate.<field> (a measurement alone is "
     "allowed only in age() and absent())"},
    {"avg(m.f[15])", 9, "expected a duration such as 15m in the range"},
    {"avg(m.f[0s])", 9, "a range must be longer than zero"},
    {"avg(m.f[5m)", 11, "expected ']' to close '[' at column 8"},
    {"igate.received > 15x", 20,
     "unknown unit 'x' in 15x (use ms, s, m, h, d or w)"},
    {"15min", 3, "unknown unit 'min' in 15min (use ms, s, m, h, d or w)"},
    {"1.5h", 1, "durations take whole numbers: 1.5h"},
    {"30m1h", 4,
     "the units of a duration go from the largest to the smallest, each "
     "once: 30m1h"},
    {"1h30", 5, "expected a unit after 30 in 1h30 (ms, s, m, h, d or w)"},
    {"1.", 3, "expected digits after '.' in 1."},
    {"1e999", 1, "number out of range: 1e999"},
    {"igate.received{district=\"Lắk}", 25, "unterminated string"},
    {"1.5x", 4, "unknown unit 'x' in 1.5x (use ms, s, m, h, d or w)"},
    {"2e3h", 1, "durations take whole numbers: 2e3h"},
    {"a.\"x\\n\"", 5, "unknown escape '\\n' in a string (only \\\" and \\\\)"},
    {"1 2", 3, "unexpected '2' after a complete expression"},
    {"a.b c.d", 5, "unexpected 'c' after a complete expression"},
    {"$ x", 1, "expected a parameter name after '$'"},
    {"1 < 2 < 3", 7, "comparisons do not chain; combine them with and"},
    {"a.b = 1", 5, "unexpected '=' (use == to compare)"},
    {"!a.b", 1, "unexpected '!' (use != to compare, not to negate)"},
    {"a.b{x=1}", 7, "expected a label value in double quotes, got '1'"},
    {"a.b{x}", 6, "expected '=' or '!=' after label x, got '}'"},
    {"a.b{x==\"1\"}", 6, "expected '=' or '!=' after label x, got '=='"},
    {"a.b{x=\"1\" y=\"2\"}", 11,
     "expected ',' or '}' to close '{' at column 4, got 'y'"},
    {"a.b{=\"1\"}", 5, "expected a label name or '}', got '='"},
    {"a. b", 3, "expected a field name right after 'a.'"},
    {"\"\".x", 1, "a measurement name cannot be empty"},
    {"a.\"\"", 3, "a field name cannot be empty"},
    {"during(office_hours)", 8,
     "during takes a calendar name in double quotes, as in "
     "during(\"office_hours\")"},
    {"during(\"x\", 5)", 13,
     "expected a duration such as 2h as the second argument of during"},
    {"during(\"x\", 2h, 3h)", 15, "during takes at most 2 arguments"},
    {"Lắk.x > #", 9, "unexpected character '#'"},
    {"Buôn_Ma_Thuột.x + ", 19,
     "expected a number, a series, a parameter or '(', got the end of the "
     "expression"},
    {"a.\xff", 3, "invalid UTF-8"},
    {"a.b\x01", 4, "unexpected control character 0x01"},
};

Test(expr_parse, reports_each_error_with_its_column) {
  for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
    struct iocd_err err = {{0}};
    int col = -1;
    struct expr *e = expr_parse(error_cases[i].in, &err, &col);
    cr_expect_null(e, "input %s parsed", error_cases[i].in);
    expr_free(e);
    char want[IOCD_ERR_SIZE];
    snprintf(want, sizeof want, "column %d: %s", error_cases[i].col,
             error_cases[i].msg);
    cr_expect_str_eq(err.msg, want, "input %s: got %s", error_cases[i].in,
                     err.msg);
    cr_expect_eq(col, error_cases[i].col, "input %s: column %d",
                 error_cases[i].in, col);
  }
}

Test(expr_parse, limits_nesting_and_length) {
  char deep[200];
  memset(deep, '(', 65);
  snprintf(deep + 65, sizeof deep - 65, "1");
  struct iocd_err err = {{0}};
  int col = -1;
  cr_assert_null(expr_parse(deep, &err, &col));
  cr_assert_str_eq(err.msg,
                   "column 65: expression nests deeper than 64 "
                   "levels");
  cr_assert_eq(col, 65);

  /* 64 levels are fine. */
  char ok[200];
  memset(ok, '(', 64);
  memset(ok + 64, 0, sizeof ok - 64);
  ok[64] = '1';
  memset(ok + 65, ')', 64);
  struct expr *e = parse_ok(ok);
  cr_assert_str_eq(expr_to_string(e), "1");
  expr_free(e);

  char *longer = malloc(EXPR_MAX_LEN + 2);
  cr_assert_not_null(longer);
  memset(longer, ' ', EXPR_MAX_LEN + 1);
  longer[0] = '1';
  longer[EXPR_MAX_LEN + 1] = '\0';
  cr_assert_null(expr_parse(longer, &err, &col));
  cr_assert_str_eq(err.msg, "column 1: expression longer than 8192 bytes");
  free(longer);

  /* 600 terms of a sum: more nodes than allowed. */
  char *sum = malloc(4 * 600 + 1);
  cr_assert_not_null(sum);
  size_t n = 0;
  for (int i = 0; i < 600; i++) {
    n += (size_t)snprintf(sum + n, 5, i ? " + 1" : "1");
  }
  cr_assert_null(expr_parse(sum, &err, &col));
  cr_assert(strstr(err.msg, "expression too long: more than 512 terms"), "%s",
            err.msg);
  free(sum);
}

Test(expr_parse, accepts_null_error_outputs) {
  cr_assert_null(expr_parse("1 +", NULL, NULL));
  cr_assert_null(expr_parse(NULL, NULL, NULL));
  expr_free(NULL);
}

/* ---- what an expression reads -------------------------------------------- */

Test(expr_reads, lists_each_series_once_with_its_longest_range) {
  struct expr *e = parse_ok(
      "increase(igate.received[1d]) > 0 and igate.received > 0 and "
      "rate(igate.received[1h]) > 0 and age(igate) < 1h and "
      "avg(\"my meas\".\"f x\"[15m]) > $a and $b < $a and "
      "during(\"office_hours\") and during(\"tết\", 1h) and "
      "during(\"office_hours\", 2h)");
  size_t n;
  const struct expr_read *r = expr_reads(e, &n);
  cr_assert_eq(n, 3);
  cr_assert_str_eq(r[0].measurement, "igate");
  cr_assert_str_eq(r[0].field, "received");
  cr_assert_eq(r[0].range_ns, DAYS(1));
  cr_assert_str_eq(r[1].measurement, "igate");
  cr_assert_null(r[1].field);
  cr_assert_eq(r[1].range_ns, 0);
  cr_assert_str_eq(r[2].measurement, "my meas");
  cr_assert_str_eq(r[2].field, "f x");
  cr_assert_eq(r[2].range_ns, MINUTES(15));
  const char *const *p = expr_params(e, &n);
  cr_assert_eq(n, 2);
  cr_assert_str_eq(p[0], "a");
  cr_assert_str_eq(p[1], "b");
  const char *const *cal = expr_calendars(e, &n);
  cr_assert_eq(n, 2);
  cr_assert_str_eq(cal[0], "office_hours");
  cr_assert_str_eq(cal[1], "tết");
  expr_free(e);
}

Test(expr_reads, reports_nothing_for_constants) {
  struct expr *e = parse_ok("1 + 2 > 30%");
  size_t n = 99;
  expr_reads(e, &n);
  cr_assert_eq(n, 0);
  expr_params(e, &n);
  cr_assert_eq(n, 0);
  expr_calendars(e, &n);
  cr_assert_eq(n, 0);
  expr_free(e);
}

/* ---- window functions ---------------------------------------------------- */

/* A gauge sampled every minute: 4, 8, 2, 6, 10 at t-4m .. t. */
static struct series_store *gauge_store(int64_t t) {
  const char *w[] = {"avg(m.g[1w])", "m.g"};
  struct series_store *st = store_wanting(w, 2);
  const double v[] = {4, 8, 2, 6, 10};
  for (int i = 0; i < 5; i++) {
    add(st, "m", "g", "Lắk", t - MINUTES(4 - i), v[i]);
  }
  return st;
}

static const struct {
  const char *text;
  int64_t dt; /* evaluation time relative to the newest sample */
  bool missing;
  enum expr_why why;
  double want;
} window_cases[] = {
    /* (t-5m, t]: all five samples */
    {"avg(m.g[5m])", 0, false, 0, 6},
    {"min(m.g[5m])", 0, false, 0, 2},
    {"max(m.g[5m])", 0, false, 0, 10},
    {"sum(m.g[5m])", 0, false, 0, 30},
    {"count(m.g[5m])", 0, false, 0, 5},
    {"last(m.g[5m])", 0, false, 0, 10},
    {"delta(m.g[5m])", 0, false, 0, 6},
    /* (t-4m, t]: the sample at exactly t-4m is out (left-open) */
    {"avg(m.g[4m])", 0, false, 0, 6.5},
    {"min(m.g[4m])", 0, false, 0, 2},
    {"sum(m.g[4m])", 0, false, 0, 26},
    {"count(m.g[4m])", 0, false, 0, 4},
    {"delta(m.g[4m])", 0, false, 0, 2},
    /* the end is inclusive: at t-1m the window (t-3m, t-1m] holds 2, 6 */
    {"count(m.g[2m])", -MINUTES(1), false, 0, 2},
    {"last(m.g[2m])", -MINUTES(1), false, 0, 6},
    {"avg(m.g[2m])", -MINUTES(1), false, 0, 4},
    /* a sample 1 ns after the evaluation time is not seen */
    {"last(m.g[5m])", -1, false, 0, 6},
    /* a single sample */
    {"count(m.g[1m])", 0, false, 0, 1},
    {"avg(m.g[1m])", 0, false, 0, 10},
    {"min(m.g[1m])", 0, false, 0, 10},
    {"max(m.g[1m])", 0, false, 0, 10},
    {"last(m.g[1m])", 0, false, 0, 10},
    {"delta(m.g[1m])", 0, true, EXPR_WHY_TOO_FEW, 0},
    {"increase(m.g[1m])", 0, true, EXPR_WHY_TOO_FEW, 0},
    {"rate(m.g[1m])", 0, true, EXPR_WHY_TOO_FEW, 0},
    /* an empty window: every function MISSING but count, which is 0 */
    {"count(m.g[5m])", MINUTES(10), false, 0, 0},
    {"avg(m.g[5m])", MINUTES(10), true, EXPR_WHY_EMPTY_WINDOW, 0},
    {"min(m.g[5m])", MINUTES(10), true, EXPR_WHY_EMPTY_WINDOW, 0},
    {"max(m.g[5m])", MINUTES(10), true, EXPR_WHY_EMPTY_WINDOW, 0},
    {"sum(m.g[5m])", MINUTES(10), true, EXPR_WHY_EMPTY_WINDOW, 0},
    {"last(m.g[5m])", MINUTES(10), true, EXPR_WHY_EMPTY_WINDOW, 0},
    {"delta(m.g[5m])", MINUTES(10), true, EXPR_WHY_EMPTY_WINDOW, 0},
    {"increase(m.g[5m])", MINUTES(10), true, EXPR_WHY_EMPTY_WINDOW, 0},
    /* before the first sample: no series has anything yet */
    {"count(m.g[5m])", -HOURS(1), false, 0, 0},
    {"avg(m.g[5m])", -HOURS(1), true, EXPR_WHY_NO_SERIES, 0},
};

Test(expr_window, computes_each_function_exactly_at_the_window_edges) {
  int64_t t = NEW_YEAR + HOURS(10);
  struct series_store *st = gauge_store(t);
  for (size_t i = 0; i < sizeof window_cases / sizeof window_cases[0]; i++) {
    struct res r = eval_at(st, DISTRICT("Lắk"), t + window_cases[i].dt,
                           window_cases[i].text);
    if (window_cases[i].missing) {
      assert_missing(r, window_cases[i].why, NULL, window_cases[i].text);
    } else {
      assert_value(r, window_cases[i].want, window_cases[i].text);
    }
  }
  series_store_free(st);
}

Test(expr_window, handles_the_new_year_counter_reset) {
  const char *w[] = {"increase(igate.received[1d])"};
  struct series_store *st = store_wanting(w, 1);
  /* 100 -> 120 on 31 December, reset at midnight, 4 -> 10 on 1 January. */
  add(st, "igate", "received", "Ea H'Leo", NEW_YEAR - HOURS(16), 100);
  add(st, "igate", "received", "Ea H'Leo", NEW_YEAR - HOURS(4), 120);
  add(st, "igate", "received", "Ea H'Leo", NEW_YEAR + MINUTES(30), 4);
  add(st, "igate", "received", "Ea H'Leo", NEW_YEAR + HOURS(5), 10);
  int64_t t = NEW_YEAR + HOURS(6);
  const struct group *g = DISTRICT("Ea H'Leo");
  /* 20 before the reset, 4 counted since it, 6 after: 30. */
  assert_value(eval_at(st, g, t, "increase(igate.received[1d])"), 30,
               "increase");
  /* Over the 21 h the samples span. */
  assert_value(eval_at(st, g, t, "rate(igate.received[1d])"), 30.0 / 75600,
               "rate");
  /* delta is for gauges: it does not know about resets. */
  assert_value(eval_at(st, g, t, "delta(igate.received[1d])"), -90, "delta");
  /* A window that starts after the reset sees 6. */
  assert_value(eval_at(st, g, t, "increase(igate.received[6h])"), 6,
               "increase 6h");
  /* A window that spans only the reset sees the counter's new value. */
  assert_value(
      eval_at(st, g, NEW_YEAR + MINUTES(30), "increase(igate.received[5h])"), 4,
      "increase across the reset");
  series_store_free(st);
}

static const struct {
  const double v[6];
  size_t n;
  double increase;
} counter_cases[] = {
    {{100, 120}, 2, 20},
    {{5, 5, 5}, 3, 0},
    {{10, 3, 8, 2, 2}, 5, 3 + 5 + 2 + 0}, /* two resets */
    {{10, 0, 0, 7}, 4, 7},                /* reset to exactly zero */
    {{0.5, 1.75, 0.25}, 3, 1.25 + 0.25},  /* float counters */
    {{1e15, 1e15 + 4}, 2, 4},
};

Test(expr_window, counts_increase_across_resets) {
  int64_t t = NEW_YEAR;
  for (size_t i = 0; i < sizeof counter_cases / sizeof counter_cases[0]; i++) {
    const char *w[] = {"increase(c.n[1h])"};
    struct series_store *st = store_wanting(w, 1);
    size_t n = counter_cases[i].n;
    for (size_t k = 0; k < n; k++) {
      add(st, "c", "n", NULL, t - MINUTES(10 * (n - 1 - k)),
          counter_cases[i].v[k]);
    }
    assert_value(eval_at(st, NULL, t, "increase(c.n[1h])"),
                 counter_cases[i].increase, "increase");
    assert_value(eval_at(st, NULL, t, "rate(c.n[1h])"),
                 counter_cases[i].increase / (600.0 * (double)(n - 1)), "rate");
    series_store_free(st);
  }
}

Test(expr_window, divides_rate_by_the_time_the_samples_span) {
  const char *w[] = {"rate(c.n[1h])"};
  struct series_store *st = store_wanting(w, 1);
  /* A gap: two samples 40 minutes apart inside an hour. */
  add(st, "c", "n", NULL, NEW_YEAR - MINUTES(50), 0);
  add(st, "c", "n", NULL, NEW_YEAR - MINUTES(10), 60);
  assert_value(eval_at(st, NULL, NEW_YEAR, "rate(c.n[1h])"), 60.0 / 2400,
               "rate");
  assert_value(eval_at(st, NULL, NEW_YEAR, "increase(c.n[1h])"), 60,
               "increase");
  series_store_free(st);
}

/* ---- instant selectors, staleness, age and absence ----------------------- */

Test(expr_instant, uses_the_newest_sample_only_while_fresh) {
  const char *w[] = {"igate.received", "age(igate)",
                     "last(igate.received[1h])"};
  struct series_store *st = store_wanting(w, 3);
  int64_t t = NEW_YEAR + DAYS(30);
  add(st, "igate", "received", "Krông Búk", t - MINUTES(20), 7);
  add(st, "igate", "received", "Krông Búk", t - MINUTES(10), 9);
  const struct group *g = DISTRICT("Krông Búk");
  /* Age exactly 10 minutes: still fresh. */
  assert_value(eval_at(st, g, t, "igate.received"), 9, "fresh");
  /* 1 ns older: MISSING, not the last value. */
  assert_missing(eval_at(st, g, t + 1, "igate.received"), EXPR_WHY_STALE,
                 "igate.received", "stale");
  /* Another district, or a series never seen. */
  assert_missing(eval_at(st, DISTRICT("Lắk"), t, "igate.received"),
                 EXPR_WHY_NO_SERIES, "igate.received", "other district");
  assert_missing(eval_at(st, g, t, "igate.resolved"), EXPR_WHY_NO_SERIES,
                 "igate.resolved", "unregistered");
  /* Evaluated in the past, the newer sample does not exist yet. */
  assert_value(eval_at(st, g, t - MINUTES(15), "igate.received"), 7, "past");

  /* A longer freshness in the context, or per measurement. */
  struct eval_ctx c = {
      .t_ns = t + HOURS(1), .store = st, .group = g, .freshness_ns = HOURS(2)};
  assert_value(eval_in(&c, "igate.received"), 9, "freshness_ns");
  series_store_free(st);
}

static int64_t freshness_by_measurement(void *ud, const char *m,
                                        const char *f) {
  (void)ud;
  (void)f;
  return strcmp(m, "province") == 0 ? DAYS(2) : 0;
}

Test(expr_instant, takes_freshness_per_measurement_from_the_callback) {
  const char *w[] = {"province.services_l3", "igate.received"};
  struct series_store *st = store_wanting(w, 2);
  int64_t t = NEW_YEAR + DAYS(100);
  add(st, "province", "services_l3", NULL, t - DAYS(1), 595);
  add(st, "igate", "received", NULL, t - DAYS(1), 221942);
  struct eval_ctx c = {
      .t_ns = t, .store = st, .freshness = freshness_by_measurement};
  assert_value(eval_in(&c, "province.services_l3"), 595, "daily feed");
  assert_missing(eval_in(&c, "igate.received"), EXPR_WHY_STALE,
                 "igate.received", "default freshness");
  series_store_free(st);
}

Test(expr_instant, measures_age_and_absence) {
  const char *w[] = {"age(igate)", "age(igate.received)",
                     "age(igate.resolved)"};
  struct series_store *st = store_wanting(w, 3);
  int64_t t = NEW_YEAR + DAYS(3);
  add(st, "igate", "received", "Cư Kuin", t - SEC(300), 1);
  add(st, "igate", "resolved", "Cư Kuin", t - SEC(30), 1);
  /* A field no rule reads still keeps the feed alive for age(igate). */
  add(st, "igate", "overdue", "Cư Kuin", t - SEC(20) - 500000000, 1);
  const struct group *g = DISTRICT("Cư Kuin");
  assert_value(eval_at(st, g, t, "age(igate.received)"), 300, "age field");
  assert_value(eval_at(st, g, t, "age(igate)"), 20.5, "age any field");
  assert_value(eval_at(st, g, t, "age(igate) > 10m"), 0, "not silent");
  assert_value(eval_at(st, g, t + MINUTES(11), "age(igate) > 10m"), 1,
               "silent");
  assert_value(eval_at(st, g, t, "absent(igate.received)"), 0, "present");
  assert_value(eval_at(st, g, t + MINUTES(6), "absent(igate.received)"), 1,
               "stale is absent");
  assert_value(eval_at(st, g, t, "absent(igate)"), 0, "any field present");
  assert_value(eval_at(st, DISTRICT("Lắk"), t, "absent(igate)"), 1,
               "never seen is absent");
  assert_missing(eval_at(st, DISTRICT("Lắk"), t, "age(igate)"),
                 EXPR_WHY_NO_SERIES, "age(igate)", "age never seen");
  series_store_free(st);
}

/* ---- several series in one group ----------------------------------------- */

Test(expr_group, adds_up_the_series_that_match_and_honours_matchers) {
  const char *w[] = {"increase(igate.received[1d])", "igate.received",
                     "min(igate.received[1d])", "max(igate.received[1d])"};
  struct series_store *st = store_wanting(w, 4);
  int64_t t = NEW_YEAR + DAYS(10);
  static const char *const systems[] = {"igate", "vilis"};
  for (int s = 0; s < 2; s++) {
    for (int k = 0; k < 3; k++) {
      struct series_label l[] = {{"district", "Cư M'gar"},
                                 {"system", systems[s]}};
      double v = s == 0 ? 10 * (k + 1) : 100 + k;
      cr_assert_eq(series_store_add(st, "igate", "received", l, 2,
                                    t - MINUTES(10 * (2 - k)), v, NULL, NULL),
                   IOCD_OK);
    }
  }
  /* A province-level series without the district label is in no district
   * group. */
  struct series_label prov[] = {{"system", "igate"}};
  cr_assert_eq(
      series_store_add(st, "igate", "received", prov, 1, t, 5000, NULL, NULL),
      IOCD_OK);
  const struct group *g = DISTRICT("Cư M'gar");
  assert_value(eval_at(st, g, t, "igate.received"), 30 + 102, "sum instant");
  assert_value(eval_at(st, g, t, "increase(igate.received[1d])"), 20 + 2,
               "sum increase");
  assert_value(eval_at(st, g, t, "min(igate.received[1d])"), 10, "min");
  assert_value(eval_at(st, g, t, "max(igate.received[1d])"), 102, "max");
  assert_value(eval_at(st, g, t, "igate.received{system=\"vilis\"}"), 102,
               "matcher =");
  assert_value(eval_at(st, g, t, "igate.received{system!=\"vilis\"}"), 30,
               "matcher !=");
  assert_missing(eval_at(st, g, t, "igate.received{system=\"x\"}"),
                 EXPR_WHY_NO_SERIES, "igate.received{system=\"x\"}",
                 "no match");
  /* Without a group every series is seen; district="" picks the one
   * without the label, as in Prometheus. */
  assert_value(eval_at(st, NULL, t, "igate.received"), 5132, "no group");
  assert_value(eval_at(st, NULL, t, "igate.received{district=\"\"}"), 5000,
               "empty matcher");
  assert_value(eval_at(st, NULL, t, "igate.received{district!=\"\"}"), 132,
               "non-empty matcher");
  const char *const empty[] = {""};
  struct group no_district = {.keys = by_district, .values = empty, .n = 1};
  assert_value(eval_at(st, &no_district, t, "igate.received"), 5000,
               "empty group value");
  series_store_free(st);
}

/* ---- MISSING and three-valued logic -------------------------------------- */

static bool truth_params(void *ud, const char *name, const struct group *g,
                         double *out) {
  (void)ud;
  (void)g;
  if (strcmp(name, "t") == 0) {
    *out = 1;
    return true;
  }
  if (strcmp(name, "f") == 0) {
    *out = 0;
    return true;
  }
  return false;
}

#define M (-1) /* MISSING in the truth tables */

static const struct {
  const char *text;
  int want; /* 1, 0 or M */
} kleene_cases[] = {
    {"$t and $t", 1},   {"$t and $f", 0},    {"$t and $m", M},
    {"$f and $t", 0},   {"$f and $f", 0},    {"$f and $m", 0},
    {"$m and $t", M},   {"$m and $f", 0},    {"$m and $m", M},
    {"$t or $t", 1},    {"$t or $f", 1},     {"$t or $m", 1},
    {"$f or $t", 1},    {"$f or $f", 0},     {"$f or $m", M},
    {"$m or $t", 1},    {"$m or $f", M},     {"$m or $m", M},
    {"not $t", 0},      {"not $f", 1},       {"not $m", M},
    {"$m + 1", M},      {"1 - $m", M},       {"$m * 0", M},
    {"$m / 1", M},      {"1 / $m", M},       {"-$m", M},
    {"$m < 1", M},      {"1 == $m", M},      {"$m != $m", M},
    {"1 / 0 or $t", 1}, {"1 / 0 and $f", 0}, {"not (1 / 0)", M},
    {"2 and 3", 1}, /* any non-zero number is true */
    {"-1 or 0", 1},
};

Test(expr_missing, propagates_through_arithmetic_and_kleene_logic) {
  struct eval_ctx c = {.t_ns = NEW_YEAR, .param = truth_params};
  for (size_t i = 0; i < sizeof kleene_cases / sizeof kleene_cases[0]; i++) {
    struct res r = eval_in(&c, kleene_cases[i].text);
    if (kleene_cases[i].want == M) {
      cr_expect(r.missing, "%s: got %g, want MISSING", kleene_cases[i].text,
                r.v);
    } else {
      cr_expect(!r.missing && r.v == kleene_cases[i].want,
                "%s: got %s%g, want %d", kleene_cases[i].text,
                r.missing ? "MISSING " : "", r.v, kleene_cases[i].want);
    }
  }
}

Test(expr_missing, names_the_first_culprit_in_evaluation_order) {
  struct eval_ctx c = {.t_ns = NEW_YEAR, .param = truth_params};
  assert_missing(eval_in(&c, "$m + $other"), EXPR_WHY_NO_PARAM, "$m", "m");
  assert_missing(eval_in(&c, "1 + $other"), EXPR_WHY_NO_PARAM, "$other",
                 "other");
  assert_missing(eval_in(&c, "1 / 0"), EXPR_WHY_DIV_ZERO, "0", "div 0");
  assert_missing(eval_in(&c, "1 / ($t - 1) > 2"), EXPR_WHY_DIV_ZERO, "$t - 1",
                 "div expr");
  assert_missing(eval_in(&c, "$m and $x"), EXPR_WHY_NO_PARAM, "$m", "and");
  assert_missing(eval_in(&c, "$f or $x"), EXPR_WHY_NO_PARAM, "$x", "or");
  /* No series: the selector that had no data. */
  const char *w[] = {"igate.resolved / igate.received < 85%"};
  struct series_store *st = store_wanting(w, 1);
  add(st, "igate", "resolved", "Lắk", NEW_YEAR, 197552);
  assert_missing(eval_at(st, DISTRICT("Lắk"), NEW_YEAR,
                         "igate.resolved / igate.received < 85%"),
                 EXPR_WHY_NO_SERIES, "igate.received", "ratio");
  /* A ratio whose denominator is 0 is MISSING, not a breach. */
  add(st, "igate", "received", "Lắk", NEW_YEAR, 0);
  assert_missing(eval_at(st, DISTRICT("Lắk"), NEW_YEAR,
                         "igate.resolved / igate.received < 85%"),
                 EXPR_WHY_DIV_ZERO, "igate.received", "ratio by 0");
  series_store_free(st);
}

Test(expr_missing, maps_values_to_three_truths) {
  struct expr_value v = {.v = 2};
  cr_assert_eq(expr_truth_of(&v), EXPR_TRUE);
  v.v = 0;
  cr_assert_eq(expr_truth_of(&v), EXPR_FALSE);
  v.v = (double)NAN;
  cr_assert_eq(expr_truth_of(&v), EXPR_FALSE);
  v.missing = true;
  cr_assert_eq(expr_truth_of(&v), EXPR_MISSING);
  cr_assert_str_eq(expr_why_name(EXPR_WHY_STALE), "stale");
  cr_assert_str_eq(expr_why_name(EXPR_WHY_DIV_ZERO), "division by zero");
}

/* ---- parameters ---------------------------------------------------------- */

/* The online target: 30% by default, overridden for two districts. */
static bool online_target(void *ud, const char *name, const struct group *g,
                          double *out) {
  int *calls = ud;
  (*calls)++;
  if (strcmp(name, "online_target") != 0) {
    return false;
  }
  const char *d = g && g->n ? g->values[0] : "";
  if (strcmp(d, "Buôn Ma Thuột") == 0) {
    *out = 0.45;
  } else if (strcmp(d, "M'Đrắk") == 0) {
    *out = 0.10;
  } else {
    *out = 0.30;
  }
  return true;
}

Test(expr_params, looks_up_a_value_per_group_with_a_default) {
  int calls = 0;
  struct eval_ctx c = {.t_ns = NEW_YEAR, .param = online_target, .ud = &calls};
  c.group = DISTRICT("Buôn Ma Thuột");
  assert_value(eval_in(&c, "$online_target"), 0.45, "override");
  c.group = DISTRICT("M'Đrắk");
  assert_value(eval_in(&c, "$online_target"), 0.10, "override 2");
  c.group = DISTRICT("Ea Kar");
  assert_value(eval_in(&c, "$online_target"), 0.30, "default");
  assert_missing(eval_in(&c, "$unknown"), EXPR_WHY_NO_PARAM, "$unknown",
                 "unknown");
  cr_assert_eq(calls, 4);
  struct eval_ctx none = {.t_ns = NEW_YEAR};
  assert_missing(eval_in(&none, "$online_target"), EXPR_WHY_NO_PARAM,
                 "$online_target", "no callback");
}

/* ---- the calendar hook --------------------------------------------------- */

struct cal_calls {
  int n;
  int64_t from, to;
  char name[32];
  char district[32];
};

static int office_hours(void *ud, const char *name, const struct group *g,
                        int64_t from, int64_t to) {
  struct cal_calls *cc = ud;
  cc->n++;
  cc->from = from;
  cc->to = to;
  snprintf(cc->name, sizeof cc->name, "%s", name);
  snprintf(cc->district, sizeof cc->district, "%s", g ? g->values[0] : "");
  if (strcmp(name, "office_hours") != 0) {
    return -1;
  }
  /* Office hours are 01:00-10:00 UTC here (08:00-17:00 in Vietnam). */
  int64_t day_from = from % DAYS(1), day_to = to % DAYS(1);
  return to - from < DAYS(1) && day_from >= HOURS(1) && day_to <= HOURS(10) &&
         day_from <= day_to;
}

Test(expr_calendar, asks_the_hook_about_the_window) {
  struct cal_calls cc = {0};
  int64_t t = NEW_YEAR + DAYS(1) + HOURS(4);
  struct eval_ctx c = {.t_ns = t,
                       .calendar = office_hours,
                       .ud = &cc,
                       .group = DISTRICT("Krông Pắc")};
  assert_value(eval_in(&c, "during(\"office_hours\", 2h)"), 1, "office");
  cr_assert_eq(cc.from, t - HOURS(2));
  cr_assert_eq(cc.to, t);
  cr_assert_str_eq(cc.district, "Krông Pắc");
  /* At 09:30 local (02:30 UTC) the last 2 h began before the office. */
  c.t_ns = NEW_YEAR + DAYS(1) + HOURS(2) + MINUTES(30);
  assert_value(eval_in(&c, "during(\"office_hours\", 2h)"), 0, "early");
  assert_value(eval_in(&c, "during(\"office_hours\")"), 1, "instant");
  cr_assert_eq(cc.from, cc.to);
  assert_missing(eval_in(&c, "during(\"tết\")"), EXPR_WHY_NO_CALENDAR,
                 "during(\"tết\")", "unknown calendar");
  cr_assert_str_eq(cc.name, "tết");
  struct eval_ctx none = {.t_ns = t};
  assert_missing(eval_in(&none, "during(\"office_hours\")"),
                 EXPR_WHY_NO_CALENDAR, NULL, "no hook");
}

/* ---- the default rules on the seed's figures ----------------------------- */

static const char online_share[] =
    "(increase(igate.online_l3[1d]) + increase(igate.online_l4[1d])) / "
    "increase(igate.received[1d]) < $online_target";
static const char online_guard[] = "increase(igate.received[1d]) >= 20";

/* A district's counters over a day: from 0 to the given totals, in 24
 * hourly steps, starting at the day's first hour. */
static void add_day(struct series_store *st, const char *district, int64_t t,
                    double received, double l3, double l4) {
  for (int h = 0; h <= 24; h++) {
    int64_t ts = t - HOURS(24) + HOURS(h);
    add(st, "igate", "received", district, ts, received * h / 24);
    add(st, "igate", "online_l3", district, ts, l3 * h / 24);
    add(st, "igate", "online_l4", district, ts, l4 * h / 24);
  }
}

Test(expr_default_rules, online_share_per_district_against_its_target) {
  const char *w[] = {online_share, online_guard};
  struct series_store *st = store_wanting(w, 2);
  int64_t t = NEW_YEAR + DAYS(200);
  /* The seed: of 190,425 dossiers, 20,215 online at level 3 and 11,302 at
   * level 4: 16.55%, below 30%. */
  add_day(st, "Ea H'Leo", t, 190425, 20215, 11302);
  /* 40% online: above the default, below Buôn Ma Thuột's own 45%. */
  add_day(st, "Buôn Ma Thuột", t, 200, 50, 30);
  add_day(st, "Ea Kar", t, 200, 50, 30);
  /* Too few dossiers for the share to mean anything. */
  add_day(st, "Lắk", t, 12, 0, 0);
  int calls = 0;
  struct eval_ctx c = {
      .t_ns = t, .store = st, .param = online_target, .ud = &calls};
  struct expr *rule = parse_ok(online_share);
  struct expr *guard = parse_ok(online_guard);
  static const struct {
    const char *district;
    double guard;
    double fires;
    double share;
  } want[] = {
      {"Ea H'Leo", 1, 1, (20215.0 + 11302.0) / 190425.0},
      {"Buôn Ma Thuột", 1, 1, 0.4},
      {"Ea Kar", 1, 0, 0.4},
      {"Lắk", 0, 1, 0}, /* fires, but the guard holds it back */
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    c.group = DISTRICT(want[i].district);
    struct expr_value v, lhs, rhs;
    cr_assert_eq(expr_eval(guard, &c, &v), IOCD_OK);
    cr_assert(!v.missing && v.v == want[i].guard, "%s guard", want[i].district);
    cr_assert_eq(expr_eval(rule, &c, &v), IOCD_OK);
    cr_assert(!v.missing && v.v == want[i].fires, "%s: %g", want[i].district,
              v.v);
    cr_assert_eq(expr_eval_sides(rule, &c, &lhs, &rhs), IOCD_OK);
    cr_assert(!lhs.missing && fabs(lhs.v - want[i].share) < 1e-12,
              "%s share %.17g", want[i].district, lhs.v);
  }
  /* No data at all for a district: MISSING, not a breach. */
  c.group = DISTRICT("Krông Năng");
  struct expr_value v;
  cr_assert_eq(expr_eval(rule, &c, &v), IOCD_OK);
  cr_assert(v.missing);
  cr_assert_eq(v.why, EXPR_WHY_NO_SERIES);
  cr_assert_str_eq(v.culprit, "increase(igate.online_l3[1d])");
  expr_free(rule);
  expr_free(guard);
  series_store_free(st);
}

Test(expr_default_rules, services_offered_and_dossier_ratios) {
  const char *w[] = {"province.services_l3 / province.services_total",
                     "province.services_l4", "igate.resolved / igate.received",
                     "igate.overdue"};
  struct series_store *st = store_wanting(w, 4);
  int64_t t = NEW_YEAR + DAYS(273); /* 30 September 2020 */
  add(st, "province", "services_total", NULL, t - HOURS(1), 1626);
  add(st, "province", "services_l3", NULL, t - HOURS(1), 595);
  add(st, "province", "services_l4", NULL, t - HOURS(1), 351);
  add(st, "igate", "received", "Buôn Hồ", t - MINUTES(1), 221942);
  add(st, "igate", "resolved", "Buôn Hồ", t - MINUTES(1), 197552);
  add(st, "igate", "overdue", "Buôn Hồ", t - MINUTES(1), 120);
  struct eval_ctx c = {.t_ns = t, .store = st, .freshness_ns = DAYS(1)};
  /* 595 / 1626 = 36.6% and 351 / 1626 = 21.6%: both below target. */
  struct expr *l3 =
      parse_ok("province.services_l3 / province.services_total < 60%");
  struct expr_value v, lhs, rhs;
  cr_assert_eq(expr_eval(l3, &c, &v), IOCD_OK);
  cr_assert(!v.missing && v.v == 1);
  cr_assert_eq(expr_eval_sides(l3, &c, &lhs, &rhs), IOCD_OK);
  cr_assert(lhs.v == 595.0 / 1626.0);
  cr_assert(rhs.v == 0.6);
  expr_free(l3);
  assert_value(eval_in(&c,
                       "province.services_l4 / province.services_total "
                       "< 30%"),
               1, "level 4");
  /* 197,552 / 221,942 = 89%: not below 85%. */
  c.group = DISTRICT("Buôn Hồ");
  assert_value(eval_in(&c, "igate.resolved / igate.received < 85%"), 0,
               "resolved ratio");
  assert_value(eval_in(&c, "igate.resolved / igate.received < 90%"), 1,
               "resolved ratio 90");
  int calls = 0;
  c.ud = &calls;
  c.param = online_target;
  assert_missing(eval_in(&c, "igate.overdue > $overdue_limit"),
                 EXPR_WHY_NO_PARAM, "$overdue_limit", "no limit");
  series_store_free(st);
  struct expr *sides = parse_ok("igate.overdue + 1");
  cr_assert_eq(expr_eval_sides(sides, &c, &lhs, &rhs), IOCD_EINVAL);
  expr_free(sides);
}

static bool overdue_limit(void *ud, const char *name, const struct group *g,
                          double *out) {
  (void)ud;
  (void)g;
  *out = 100;
  return strcmp(name, "overdue_limit") == 0;
}

Test(expr_default_rules, overdue_backlog_above_its_limit) {
  const char *w[] = {"igate.overdue"};
  struct series_store *st = store_wanting(w, 1);
  int64_t t = NEW_YEAR + DAYS(5);
  add(st, "igate", "overdue", "Krông Ana", t - MINUTES(2), 120);
  add(st, "igate", "overdue", "Krông Bông", t - MINUTES(2), 80);
  struct eval_ctx c = {.t_ns = t, .store = st, .param = overdue_limit};
  c.group = DISTRICT("Krông Ana");
  assert_value(eval_in(&c, "igate.overdue > $overdue_limit"), 1, "above");
  c.group = DISTRICT("Krông Bông");
  assert_value(eval_in(&c, "igate.overdue > $overdue_limit"), 0, "below");
  series_store_free(st);
}

Test(expr_default_rules, idesk_stalled_and_silent_feeds) {
  const char *w[] = {"increase(idesk.documents_sent[2h]) == 0",
                     "age(igate) > 10m", "absent(igate.received)"};
  struct series_store *st = store_wanting(w, 3);
  int64_t t = NEW_YEAR + DAYS(7) + HOURS(3);
  /* Flat for two hours in Cư Kuin, moving in Buôn Đôn. */
  for (int k = 0; k <= 12; k++) {
    int64_t ts = t - MINUTES(10 * (12 - k));
    add(st, "idesk", "documents_sent", "Cư Kuin", ts, 1410312);
    add(st, "idesk", "documents_sent", "Buôn Đôn", ts, 1000 + k / 6);
  }
  const char *stalled = "increase(idesk.documents_sent[2h]) == 0";
  assert_value(eval_at(st, DISTRICT("Cư Kuin"), t, stalled), 1, "stalled");
  assert_value(eval_at(st, DISTRICT("Buôn Đôn"), t, stalled), 0, "moving");
  /* The last message of Ea Súp is 11 minutes old. */
  add(st, "igate", "received", "Ea Súp", t - MINUTES(11), 3);
  add(st, "igate", "received", "Krông Năng", t - MINUTES(1), 3);
  const char *silent = "age(igate) > 10m";
  assert_value(eval_at(st, DISTRICT("Ea Súp"), t, silent), 1, "silent");
  assert_value(eval_at(st, DISTRICT("Krông Năng"), t, silent), 0, "alive");
  assert_value(eval_at(st, DISTRICT("Ea Súp"), t, "absent(igate.received)"), 1,
               "absent");
  assert_value(eval_at(st, DISTRICT("Krông Năng"), t, "absent(igate.received)"),
               0, "present");
  series_store_free(st);
}

/* ---- determinism --------------------------------------------------------- */

static uint64_t lcg(uint64_t *s) {
  *s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
  return *s >> 33;
}

static const char *const replay_districts[] = {"Buôn Ma Thuột", "Ea H'Leo",
                                               "Lắk", "M'Đrắk"};
static const char *const replay_exprs[] = {
    "increase(igate.received[1h])",
    "rate(igate.received[30m])",
    "avg(igate.received[15m])",
    "igate.received",
    "delta(igate.received[1h])",
    "age(igate)",
    "max(igate.received[1h]) - min(igate.received[1h])",
};

/* Feeds the same pseudo-random samples (with resets and some out of order)
 * and records every result at 1-minute ticks. */
static void replay(double *out, size_t n) {
  struct series_store *st = store_wanting(replay_exprs, 7);
  uint64_t seed = 42;
  double counter[4] = {0};
  size_t k = 0;
  for (int minute = 0; minute < 180; minute++) {
    int64_t t = NEW_YEAR - HOURS(1) + MINUTES(minute);
    for (int d = 0; d < 4; d++) {
      counter[d] = lcg(&seed) % 50 == 0 ? 0 : counter[d] + lcg(&seed) % 7;
      int64_t ts = t - SEC(lcg(&seed) % 90);
      add(st, "igate", "received", replay_districts[d], ts,
          counter[d] + 0.1 * (double)(lcg(&seed) % 10));
    }
    for (int d = 0; d < 4; d++) {
      for (int e = 0; e < 7; e++) {
        struct expr *x = parse_ok(replay_exprs[e]);
        struct eval_ctx c = {
            .t_ns = t, .store = st, .group = DISTRICT(replay_districts[d])};
        struct expr_value v;
        expr_eval(x, &c, &v);
        cr_assert_lt(k, n);
        out[k++] = v.missing ? -1e300 : v.v;
        expr_free(x);
      }
    }
  }
  series_store_free(st);
}

Test(expr_determinism, same_samples_and_times_give_the_same_results) {
  size_t n = 180 * 4 * 7;
  double *a = calloc(n, sizeof *a), *b = calloc(n, sizeof *b);
  cr_assert(a && b);
  replay(a, n);
  replay(b, n);
  cr_assert_eq(memcmp(a, b, n * sizeof *a), 0);
  /* And the run computed something: not all MISSING, not all zero. */
  size_t present = 0;
  for (size_t i = 0; i < n; i++) {
    present += a[i] != -1e300 && a[i] != 0;
  }
  cr_assert_gt(present, n / 2);
  free(a);
  free(b);
}

Test(expr_eval, rejects_null_arguments) {
  struct expr *e = parse_ok("1");
  struct eval_ctx c = {0};
  struct expr_value v;
  cr_assert_eq(expr_eval(NULL, &c, &v), IOCD_EINVAL);
  cr_assert_eq(expr_eval(e, NULL, &v), IOCD_EINVAL);
  cr_assert_eq(expr_eval(e, &c, NULL), IOCD_EINVAL);
  /* No store: every series is missing, constants still evaluate. */
  cr_assert_eq(expr_eval(e, &c, &v), IOCD_OK);
  cr_assert(!v.missing && v.v == 1);
  expr_free(e);
  assert_missing(eval_in(&c, "m.f"), EXPR_WHY_NO_SERIES, "m.f", "no store");
}
