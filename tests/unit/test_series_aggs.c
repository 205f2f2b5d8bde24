/*
 * Tests of the running aggregates the sample store keeps beside the
 * samples (rules_int.h), which let increase(), rate(), sum() and avg()
 * answer from the two ends of a window: on random sequences of appends,
 * out-of-order inserts, replacements, counter resets and evictions (by
 * retention and by the per-series cap), every window function must give,
 * bit for bit, what adding up the samples the store holds gives. The
 * reference below reads the ring directly and adds up the window as the
 * evaluator did before the aggregates existed.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "rules/expr.h"
#include "rules/rules_int.h"
#include "rules/series.h"

#define T0 (INT64_C(1600000000) * NS_PER_SEC)
#define SEC(x) ((int64_t)(x) * NS_PER_SEC)
#define MINUTES(x) SEC(60 * (x))

enum wfn { W_COUNT, W_SUM, W_AVG, W_LAST, W_DELTA, W_INCREASE, W_RATE, NW };

static const char *const wname[NW] = {"count", "sum",      "avg", "last",
                                      "delta", "increase", "rate"};

/* The ranges the tests read, in minutes. */
static const int ranges[] = {1, 7, 30, 60};
#define NRANGES (sizeof ranges / sizeof ranges[0])

struct fixture {
  struct series_store *st;
  struct expr *e[NW][NRANGES];
  const struct series *s; /* the one series, once it exists */
  uint64_t rng;
};

static uint64_t next_rand(struct fixture *f) {
  /* xorshift64*: reproducible without libc's rand. */
  f->rng ^= f->rng >> 12;
  f->rng ^= f->rng << 25;
  f->rng ^= f->rng >> 27;
  return f->rng * UINT64_C(2685821657736338717);
}

static int64_t rand_in(struct fixture *f, int64_t lo, int64_t hi) {
  return lo + (int64_t)(next_rand(f) % (uint64_t)(hi - lo + 1));
}

static void parse_all(struct fixture *f) {
  for (int w = 0; w < NW; w++) {
    for (size_t r = 0; r < NRANGES; r++) {
      char text[64];
      snprintf(text, sizeof text, "%s(m.f[%dm])", wname[w], ranges[r]);
      struct iocd_err err = {{0}};
      f->e[w][r] = expr_parse(text, &err, NULL);
      cr_assert_not_null(f->e[w][r], "%s: %s", text, err.msg);
    }
  }
}

static void want_all(struct fixture *f) {
  for (int w = 0; w < NW; w++) {
    for (size_t r = 0; r < NRANGES; r++) {
      cr_assert_eq(series_store_want_expr(f->st, f->e[w][r]), IOCD_OK);
    }
  }
}

static void setup(struct fixture *f, size_t max_samples, uint64_t seed,
                  bool want_first) {
  memset(f, 0, sizeof *f);
  struct series_store_opts o = {.max_samples = max_samples,
                                .slack_ns = MINUTES(2)};
  f->st = series_store_new(&o);
  cr_assert_not_null(f->st);
  f->rng = seed;
  parse_all(f);
  if (want_first) {
    want_all(f);
  } else {
    cr_assert_eq(series_store_want(f->st, "m", "f", MINUTES(60)), IOCD_OK);
  }
}

static void teardown(struct fixture *f) {
  for (int w = 0; w < NW; w++) {
    for (size_t r = 0; r < NRANGES; r++) {
      expr_free(f->e[w][r]);
    }
  }
  series_store_free(f->st);
}

static void on_change(void *ud, const struct series_change *c) {
  struct fixture *f = ud;
  if (c->field) {
    f->s = c->series;
  }
}

static void put(struct fixture *f, int64_t ts, double v) {
  int rc = series_store_add(f->st, "m", "f", NULL, 0, ts, v, on_change, f);
  cr_assert_eq(rc, IOCD_OK);
}

static const struct ring *ring_of(const struct fixture *f) {
  cr_assert_not_null(f->s);
  return &f->s->ring;
}

/* The window function w over (from, t] of the samples held, adding them
 * up one by one. MISSING comes back as missing. */
static struct expr_value reference(const struct ring *r, enum wfn w,
                                   int64_t from, int64_t t) {
  struct expr_value o = {.missing = true};
  size_t lo = r->n, hi = 0;
  for (size_t i = 0; i < r->n; i++) {
    int64_t ts = ring_at(r, i)->ts;
    if (ts > from && ts <= t) {
      lo = i < lo ? i : lo;
      hi = i + 1;
    }
  }
  size_t k = lo < hi ? hi - lo : 0;
  if (w == W_COUNT) {
    o = (struct expr_value){.v = (double)k};
    return o;
  }
  if (k == 0 || (k < 2 && (w == W_DELTA || w == W_INCREASE || w == W_RATE))) {
    return o;
  }
  double v = 0;
  switch (w) {
    case W_SUM:
    case W_AVG:
      for (size_t i = lo; i < hi; i++) {
        v += ring_at(r, i)->v;
      }
      if (w == W_AVG) {
        v /= (double)k;
      }
      break;
    case W_LAST:
      v = ring_at(r, hi - 1)->v;
      break;
    case W_DELTA:
      v = ring_at(r, hi - 1)->v - ring_at(r, lo)->v;
      break;
    case W_INCREASE:
    case W_RATE:
      for (size_t i = lo + 1; i < hi; i++) {
        double prev = ring_at(r, i - 1)->v, cur = ring_at(r, i)->v;
        v += cur >= prev ? cur - prev : cur;
      }
      if (w == W_RATE) {
        uint64_t d = (uint64_t)ring_at(r, hi - 1)->ts -
                     (uint64_t)ring_at(r, lo)->ts;
        uint64_t ns = (uint64_t)NS_PER_SEC;
        v /= (double)(d / ns) + (double)(d % ns) / 1e9;
      }
      break;
    case W_COUNT:
    case NW:
      break;
  }
  o = (struct expr_value){.v = v};
  return o;
}

/* Compares every window function over every range ending at t with the
 * reference. */
static void check_at(struct fixture *f, int64_t t) {
  const struct ring *r = ring_of(f);
  struct eval_ctx c = {.t_ns = t, .store = f->st};
  for (int w = 0; w < NW; w++) {
    for (size_t k = 0; k < NRANGES; k++) {
      struct expr_value got, want = reference(r, (enum wfn)w,
                                              t - MINUTES(ranges[k]), t);
      cr_assert_eq(expr_eval(f->e[w][k], &c, &got), IOCD_OK);
      cr_assert_eq(got.missing, want.missing, "%s(m.f[%dm]) at %lld",
                   wname[w], ranges[k], (long long)(t - T0));
      if (!want.missing) {
        cr_assert(got.v == want.v, "%s(m.f[%dm]) at %lld: %.17g, want %.17g",
                  wname[w], ranges[k], (long long)(t - T0), got.v, want.v);
      }
    }
  }
}

/* Windows that end and start at chosen places: on a sample, just before
 * and after one, past the newest, before the oldest (empty). */
static void check_windows(struct fixture *f) {
  const struct ring *r = ring_of(f);
  int64_t oldest = ring_at(r, 0)->ts, newest = ring_at(r, r->n - 1)->ts;
  check_at(f, newest);
  check_at(f, newest + MINUTES(3));
  check_at(f, oldest - SEC(1));
  for (int i = 0; i < 4; i++) {
    int64_t ts = ring_at(r, (size_t)rand_in(f, 0, (int64_t)r->n - 1))->ts;
    check_at(f, ts);
    check_at(f, ts - 1);
    /* A window that starts exactly on a sample leaves that sample out. */
    check_at(f, ts + MINUTES(ranges[rand_in(f, 0, NRANGES - 1)]));
    check_at(f, rand_in(f, oldest, newest));
  }
}

/* A random history of a counter: appends (mostly), counter resets,
 * samples arriving late, same-time replacements. */
static void run_random(struct fixture *f, int steps, bool integers) {
  int64_t newest = T0;
  double counter = 0;
  for (int i = 0; i < steps; i++) {
    uint64_t op = next_rand(f) % 100;
    if (op < 70 || i < 3) {
      newest += SEC(rand_in(f, 1, 120));
      counter += (double)rand_in(f, 0, 50);
      if (next_rand(f) % 40 == 0) {
        counter = (double)rand_in(f, 0, 5); /* a reset */
      }
      put(f, newest, integers ? counter : counter / 8 + 0.1);
    } else if (op < 85) {
      /* Late, within the retention or a little past it. */
      int64_t ts = newest - SEC(rand_in(f, 1, 3900));
      put(f, ts, (double)rand_in(f, 0, 1000) / (integers ? 1 : 3));
    } else {
      const struct ring *r = ring_of(f);
      int64_t ts = ring_at(r, (size_t)rand_in(f, 0, (int64_t)r->n - 1))->ts;
      put(f, ts, (double)rand_in(f, 0, 1000) / (integers ? 1 : 7));
    }
    if (i % 7 == 0) {
      check_windows(f);
    }
  }
  check_windows(f);
}

Test(series_aggs, match_a_scan_of_the_window_on_random_counter_histories) {
  for (uint64_t seed = 1; seed <= 12; seed++) {
    struct fixture f;
    /* A small cap evicts by count, a long run by retention. */
    setup(&f, seed % 2 ? 48 : 10000, seed * 7919, true);
    run_random(&f, 400, true);
    const struct ring *r = ring_of(&f);
    cr_assert_not_null(ring_inc(r));
    cr_assert_not_null(ring_sum(r));
    cr_assert(series__exact(r), "integer samples keep exact aggregates");
    teardown(&f);
  }
}

Test(series_aggs, match_a_scan_when_values_are_not_integers) {
  struct fixture f;
  setup(&f, 10000, 4242, true);
  run_random(&f, 300, false);
  cr_assert_not(series__exact(ring_of(&f)));
  teardown(&f);
}

Test(series_aggs, are_built_for_series_that_existed_before_a_rule_read_them) {
  struct fixture f;
  setup(&f, 10000, 99, false);
  run_random(&f, 60, true);
  cr_assert_null(ring_inc(ring_of(&f)));
  want_all(&f);
  const struct ring *r = ring_of(&f);
  cr_assert_not_null(ring_inc(r));
  cr_assert_not_null(ring_sum(r));
  cr_assert(series__exact(r));
  check_windows(&f);
  run_random(&f, 200, true);
  teardown(&f);
}

Test(series_aggs, fall_back_to_a_scan_past_the_exact_range_and_recover) {
  struct fixture f;
  setup(&f, 16, 5, true);
  double big = 4503599627370496.0; /* 2^52: integers, but too large */
  put(&f, T0, big);
  put(&f, T0 + SEC(60), big + 2);
  put(&f, T0 + SEC(120), 3);
  cr_assert_not(series__exact(ring_of(&f)));
  check_windows(&f);
  /* The large values leave (cap of 16): the ring is exact again once its
   * aggregates have been recomputed, at most a ring's worth later. */
  for (int i = 3; i < 40; i++) {
    put(&f, T0 + SEC(60 * i), (double)(i * 10));
  }
  cr_assert(series__exact(ring_of(&f)));
  check_windows(&f);
  teardown(&f);
}

Test(series_aggs, replacing_a_sample_updates_every_later_total) {
  struct fixture f;
  setup(&f, 10000, 3, true);
  for (int i = 0; i < 10; i++) {
    put(&f, T0 + SEC(60 * i), (double)(10 * i));
  }
  struct eval_ctx c = {.t_ns = T0 + SEC(540), .store = f.st};
  struct expr_value v;
  /* increase(m.f[30m]): samples 0..90, no reset. */
  cr_assert_eq(expr_eval(f.e[W_INCREASE][2], &c, &v), IOCD_OK);
  cr_assert(!v.missing && v.v == 90);
  /* The sample at 3m becomes 0: a reset there (20 -> 0), then 0 -> 40. */
  put(&f, T0 + SEC(180), 0);
  cr_assert_eq(expr_eval(f.e[W_INCREASE][2], &c, &v), IOCD_OK);
  cr_assert(!v.missing && v.v == 20 + 0 + 40 + 50, "got %g", v.v);
  cr_assert_eq(expr_eval(f.e[W_SUM][2], &c, &v), IOCD_OK);
  cr_assert(!v.missing && v.v == 450 - 30, "got %g", v.v);
  check_windows(&f);
  teardown(&f);
}

Test(series_aggs, a_late_sample_in_the_middle_is_counted_in_order) {
  struct fixture f;
  setup(&f, 10000, 8, true);
  put(&f, T0, 100);
  put(&f, T0 + SEC(120), 120);
  put(&f, T0 + SEC(60), 5); /* late, and a reset between 100 and 120 */
  struct eval_ctx c = {.t_ns = T0 + SEC(120), .store = f.st};
  struct expr_value v;
  cr_assert_eq(expr_eval(f.e[W_INCREASE][1], &c, &v), IOCD_OK);
  cr_assert(!v.missing && v.v == 5 + 115, "got %g", v.v);
  cr_assert_eq(expr_eval(f.e[W_AVG][1], &c, &v), IOCD_OK);
  cr_assert(!v.missing && v.v == 75, "got %g", v.v);
  /* A window starting exactly on the first sample leaves it out. */
  c.t_ns = T0 + SEC(60);
  cr_assert_eq(expr_eval(f.e[W_INCREASE][0], &c, &v), IOCD_OK);
  cr_assert(v.missing && v.why == EXPR_WHY_TOO_FEW);
  cr_assert_eq(expr_eval(f.e[W_COUNT][0], &c, &v), IOCD_OK);
  cr_assert(!v.missing && v.v == 1);
  check_windows(&f);
  teardown(&f);
}
