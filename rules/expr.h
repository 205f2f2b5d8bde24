/*
 * The rules language: expressions such as
 *
 *   (increase(igate.online_l3[1d]) + increase(igate.online_l4[1d]))
 *     / increase(igate.received[1d]) < $online_target
 *
 * parsed once into a struct expr and evaluated for one group (e.g. one
 * district) at one time against a series store. Values are numbers or
 * MISSING (no fresh data, no parameter, division by zero), with Kleene logic
 * for and/or/not. docs/rules-language.md is the reference: grammar, units,
 * functions, and where and why results differ from Prometheus. Working-time
 * ranges ([2wh], [90wm]), the heard-since floor of age()/absent() and
 * expr_horizon serve the engine and are described in docs/rules.md.
 *
 * Pure: no clock, no I/O. Time is an argument (int64 nanoseconds since the
 * epoch), so a recorded input replays to the same results.
 */
#ifndef IOCD_RULES_EXPR_H
#define IOCD_RULES_EXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "rules/series.h"

struct expr;

/* Longest expression text accepted, in bytes. */
#define EXPR_MAX_LEN 8192

/* Parses text (NUL-terminated UTF-8). Returns the expression, owned by the
 * caller and freed with expr_free, or NULL with err (may be NULL) set to
 * "column N: what was expected" and *err_col (may be NULL) to N, the 1-based
 * column in characters (not bytes) where the problem is, so that a config
 * checker can print FILE:LINE:COL. The return code behind a NULL is
 * IOCD_EPARSE, or IOCD_ENOMEM when err says "out of memory" and *err_col
 * is 0. */
struct expr *expr_parse(const char *text, struct iocd_err *err, int *err_col);

/* Frees e; NULL is allowed. */
void expr_free(struct expr *e);

/* The canonical text of e: single spaces around binary operators, only the
 * parentheses precedence needs, numbers in their shortest exact form,
 * durations as 1w2d3h4m5s6ms. Parsing it gives the same expression. Owned
 * by e. */
const char *expr_to_string(const struct expr *e);

/* One (measurement, field) that e reads, with the longest range it is read
 * over (0: only as an instant selector or in age()/absent()). field NULL: a
 * bare measurement in age()/absent(), any field. */
struct expr_read {
  const char *measurement;
  const char *field;
  int64_t range_ns;
  /* The longest working-time range ([2wh]) it is read over, 0: none. Its
   * wall-clock length depends on the calendar (a weekend, Tết), so whoever
   * keeps samples for it converts it (calendar_span_bound); range_ns does
   * not include it. */
  int64_t working_ns;
  /* The running aggregates (a set of series_agg) that the window
   * functions reading it use: for series_store_want_aggs. */
  unsigned aggs;
};

/* What e reads, each (measurement, field) once, in order of first use: for
 * series_store_want (retention) and for finding the rules that read a
 * changed series. Sets *n; the array is owned by e. */
const struct expr_read *expr_reads(const struct expr *e, size_t *n);

/* The names of the $parameters e uses (without the '$'), each once, in order
 * of first use, so that config can check each has a value. Owned by e. */
const char *const *expr_params(const struct expr *e, size_t *n);

/* The calendar names e uses in during("name"), each once, so that config can
 * check each exists. Owned by e. */
const char *const *expr_calendars(const struct expr *e, size_t *n);

/* Why a value is MISSING. */
enum expr_why {
  EXPR_WHY_NONE = 0,     /* not missing */
  EXPR_WHY_NO_SERIES,    /* no sample of a matching series at or before t */
  EXPR_WHY_STALE,        /* matching series, none fresh (newest too old) */
  EXPR_WHY_EMPTY_WINDOW, /* no sample inside the range */
  EXPR_WHY_TOO_FEW,      /* fewer than 2 samples for delta/increase/rate */
  EXPR_WHY_NO_PARAM,     /* the parameter has no value for this group */
  EXPR_WHY_DIV_ZERO,     /* division by zero */
  EXPR_WHY_NO_CALENDAR,  /* during(): no calendar callback or unknown name */
};

/* "no series", "stale", ... for logs. */
const char *expr_why_name(enum expr_why why);

/* The value of an expression: a number, or MISSING with the first reason met
 * in evaluation order (left to right) that made it so. */
struct expr_value {
  bool missing;
  double v;            /* valid when !missing; comparisons and logic: 1 or 0 */
  enum expr_why why;   /* EXPR_WHY_NONE when !missing */
  const char *culprit; /* when missing: canonical text of the selector,
                          function, parameter or divisor responsible, e.g.
                          "increase(igate.received[1d])"; owned by the
                          expression evaluated */
};

/* Looks up parameter name for group g. Returns true and sets *out when it has
 * a value (the group's override, else the default), false when not: the
 * parameter is MISSING. */
typedef bool expr_param_fn(void *ud, const char *name, const struct group *g,
                           double *out);

/* Freshness of (measurement, field) in nanoseconds (field NULL for a bare
 * measurement); 0 or less means the evaluation's default. */
typedef int64_t expr_freshness_fn(void *ud, const char *measurement,
                                  const char *field);

/* The calendar hook behind during(name) and during(name, d): returns 1 when
 * the whole of [from_ns, to_ns] lies in the calendar's active time for group
 * g (office hours on a working day, say), 0 when not, -1 for an unknown name
 * (MISSING). during(name) asks for the instant: from_ns == to_ns. */
typedef int expr_calendar_fn(void *ud, const char *name, const struct group *g,
                             int64_t from_ns, int64_t to_ns);

/* The calendar behind working-time ranges ([2wh], [90wm]) for group g.
 * forward false: the start s of the last d of working time before t (the
 * window is (s, t]); forward true: the earliest u such that [t, u) holds d
 * of working time (when a sample at t leaves such a window). Returns
 * INT64_MIN (backward) or INT64_MAX (forward) when there is no such time
 * or no calendar: the range is then MISSING ("no calendar"). */
typedef int64_t expr_working_fn(void *ud, const struct group *g, int64_t t_ns,
                                int64_t d_ns, bool forward);

/* The earliest time after t at which during(name, d) may change for group g
 * (d 0 for the one-argument form), for expr_horizon. INT64_MAX: never. */
typedef int64_t expr_calendar_next_fn(void *ud, const char *name,
                                      const struct group *g, int64_t t_ns,
                                      int64_t d_ns);

/* What one evaluation context has already computed: the value of each
 * selector, function call and parameter met, and the horizon of each
 * selector and call, by canonical text, so that a rule whose condition,
 * guard, clear condition and threshold read the same window
 * (increase(igate.received[1d]) in all four, say) reads it once.
 * Caller-allocated; set n to 0 before first use, and again whenever
 * the context or the store changes: entries hold for one context over one
 * store contents. Past EXPR_MEMO_MAX entries, the rest is computed each
 * time. */
#define EXPR_MEMO_MAX 16

struct expr_memo {
  size_t n;
  struct expr_memo_ent {
    uint64_t hash;
    const char *text;
    bool is_horizon;
    struct expr_value v;
    int64_t next; /* horizon: the earliest time of change */
    bool seen;    /* horizon of age(): a sample at or before t ... */
    int64_t newest; /* ... and the newest one */
  } e[EXPR_MEMO_MAX];
};

/* Everything one evaluation reads. {0} plus t_ns and store is a valid
 * context: every parameter and calendar is then MISSING. */
struct eval_ctx {
  int64_t t_ns;                     /* evaluation time */
  const struct series_store *store; /* may be NULL: every series missing */
  const struct group *group;        /* NULL: no group, every series */
  int64_t freshness_ns;             /* 0: 10 minutes */
  expr_param_fn *param;             /* may be NULL */
  expr_freshness_fn *freshness;     /* may be NULL: freshness_ns for all */
  expr_calendar_fn *calendar;       /* may be NULL */
  void *ud;                         /* passed to the callbacks */
  expr_working_fn *working;         /* may be NULL: [2wh] ranges MISSING */
  expr_calendar_next_fn *calendar_next; /* may be NULL (expr_horizon) */
  /* Silence is not counted before this time: age() and absent() treat
   * every matching series as heard at max(its newest sample, this), and a
   * selector that never had a sample as heard at this time (age() is then
   * a number, not MISSING). It is the time the engine started listening,
   * or the time its broker connection came back, so that iocd's own
   * deafness is not taken for the sources' silence. 0: none. Values of
   * instant selectors are not affected. */
  int64_t heard_since_ns;
  struct expr_memo *memo; /* may be NULL: nothing remembered */
};

#define EXPR_DEFAULT_FRESHNESS_NS (INT64_C(600) * INT64_C(1000000000))

/* Evaluates e in ctx into *out. The same store contents, context and
 * callbacks' answers give the same result, bit for bit. A guard (the
 * minimum denominator of a ratio rule) is an expression of its own,
 * evaluated with the same ctx. Returns IOCD_OK, or IOCD_EINVAL when e, ctx
 * or out is NULL. */
int expr_eval(const struct expr *e, const struct eval_ctx *ctx,
              struct expr_value *out);

/* When the top of e is a comparison (`share < $target`), evaluates its two
 * sides: the number and the threshold a notification shows. Returns IOCD_OK,
 * or IOCD_EINVAL when the top of e is not a comparison. */
int expr_eval_sides(const struct expr *e, const struct eval_ctx *ctx,
                    struct expr_value *lhs, struct expr_value *rhs);

/* The earliest time after ctx->t_ns at which the value of e in ctx could
 * differ if the store received no new sample: a fresh sample goes stale, a
 * sample leaves (or a sample stamped in the future enters) a window, age()
 * reaches the value it is compared with, absent() turns, the calendar of
 * during() starts or ends. Conservative: the value may well be the same
 * then (an age() that is not compared with a constant is re-evaluated each
 * second). INT64_MAX when only new samples can change it. For scheduling
 * evaluations: the engine evaluates an instance at its horizon, not on
 * every tick. */
int64_t expr_horizon(const struct expr *e, const struct eval_ctx *ctx);

/* Whether e reads a series through age() or absent() (what silence rules
 * use), and whether it uses a working-time range. */
bool expr_uses_silence(const struct expr *e);
bool expr_uses_working(const struct expr *e);

/* Three-valued truth of a value: MISSING, or a number that is true when not
 * zero (and not NaN). */
enum expr_truth { EXPR_FALSE = 0, EXPR_TRUE = 1, EXPR_MISSING = -1 };
enum expr_truth expr_truth_of(const struct expr_value *v);

#endif
