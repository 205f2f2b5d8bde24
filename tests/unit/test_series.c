/*
 * Tests of the sample store behind the rules: what it keeps (only fields a
 * rule reads, numbers as doubles), for how long (retention from the newest
 * sample, the per-series cap), out-of-order and duplicate samples, the
 * series limit, garbage collection, and the changes it reports so that only
 * the affected rules and groups are evaluated.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/point.h"
#include "rules/expr.h"
#include "rules/series.h"

#define T0 (INT64_C(1600000000) * NS_PER_SEC)
#define SEC(x) ((int64_t)(x)*NS_PER_SEC)
#define MINUTES(x) SEC(60 * (x))
#define HOURS(x) SEC(3600 * (x))

static const char *const by_district[] = {"district"};

#define DISTRICT(name) \
  (&(struct group){    \
      .keys = by_district, .values = (const char *const[]){name}, .n = 1})

/* Evaluates text; MISSING comes back as -1 (no test value is negative). */
static double eval_at(const struct series_store *st, const struct group *g,
                      int64_t t, const char *text) {
  struct iocd_err err = {{0}};
  struct expr *e = expr_parse(text, &err, NULL);
  cr_assert_not_null(e, "%s: %s", text, err.msg);
  struct eval_ctx c = {.t_ns = t, .store = st, .group = g};
  struct expr_value v;
  cr_assert_eq(expr_eval(e, &c, &v), IOCD_OK);
  expr_free(e);
  return v.missing ? -1 : v.v;
}

static void add(struct series_store *st, const char *meas, const char *field,
                const char *district, int64_t ts, double v) {
  struct series_label l[] = {{"district", district}};
  int rc = series_store_add(st, meas, field, l, 1, ts, v, NULL, NULL);
  cr_assert_eq(rc, IOCD_OK, "rc %d", rc);
}

static struct series_store_stats stats_of(const struct series_store *st) {
  struct series_store_stats s;
  series_store_get_stats(st, &s);
  return s;
}

/* A point of measurement igate for district d with every field type. */
static struct point *igate_point(struct point_batch *pb, const char *d,
                                 int64_t ts) {
  struct point *p = pb_point_new(pb, "igate", 5);
  cr_assert_not_null(p);
  cr_assert_eq(pb_tag(pb, p, "system", 6, "igate", 5, true), IOCD_OK);
  cr_assert_eq(pb_tag(pb, p, "district", 8, d, strlen(d), true), IOCD_OK);
  cr_assert_eq(pb_field_int(pb, p, "received", 8, 221942), IOCD_OK);
  cr_assert_eq(pb_field_float(pb, p, "share", 5, 0.125), IOCD_OK);
  cr_assert_eq(pb_field_bool(pb, p, "online", 6, true), IOCD_OK);
  cr_assert_eq(pb_field_string(pb, p, "note", 4, "Ea H'Leo", 8), IOCD_OK);
  p->ts_ns = ts;
  p->has_ts = true;
  return p;
}

struct changes {
  int n;
  char field[8][32];
  char district[8][64];
  bool in_group[8];
  int64_t ts[8];
};

static void on_change(void *ud, const struct series_change *c) {
  struct changes *ch = ud;
  cr_assert_lt(ch->n, 8);
  cr_assert_str_eq(c->measurement, "igate");
  snprintf(ch->field[ch->n], sizeof ch->field[0], "%s",
           c->field ? c->field : "(any)");
  const char *v[1];
  ch->in_group[ch->n] = series_group_values(c->series, by_district, 1, v);
  snprintf(ch->district[ch->n], sizeof ch->district[0], "%s",
           ch->in_group[ch->n] ? v[0] : "");
  ch->ts[ch->n] = c->ts_ns;
  ch->n++;
}

/* ---- what is kept -------------------------------------------------------- */

Test(series_store, stores_nothing_for_fields_no_rule_reads) {
  struct series_store *st = series_store_new(NULL);
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = igate_point(&pb, "Lắk", T0);
  struct changes ch = {0};
  cr_assert_eq(series_store_add_point(st, &pb, p, on_change, &ch), IOCD_OK);
  cr_assert_eq(ch.n, 0);
  struct series_store_stats s = stats_of(st);
  cr_assert_eq(s.series, 0);
  cr_assert_eq(s.samples, 0);
  cr_assert_eq(s.added, 0);
  /* Registering another measurement's field changes nothing either. */
  cr_assert_eq(series_store_want(st, "idesk", "received", HOURS(1)), IOCD_OK);
  cr_assert_eq(series_store_add_point(st, &pb, p, on_change, &ch), IOCD_OK);
  cr_assert_eq(stats_of(st).samples, 0);
  pb_cleanup(&pb);
  series_store_free(st);
}

Test(series_store, keeps_only_the_registered_fields_and_reports_them) {
  struct series_store *st = series_store_new(NULL);
  cr_assert_eq(series_store_want(st, "igate", "received", 0), IOCD_OK);
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = igate_point(&pb, "Ea H'Leo", T0);
  struct changes ch = {0};
  cr_assert_eq(series_store_add_point(st, &pb, p, on_change, &ch), IOCD_OK);
  cr_assert_eq(ch.n, 1);
  cr_assert_str_eq(ch.field[0], "received");
  cr_assert(ch.in_group[0]);
  cr_assert_str_eq(ch.district[0], "Ea H'Leo");
  cr_assert_eq(ch.ts[0], T0);
  struct series_store_stats s = stats_of(st);
  cr_assert_eq(s.families, 1);
  cr_assert_eq(s.series, 1);
  cr_assert_eq(s.samples, 1);
  cr_assert_gt(s.bytes, 0);
  pb_cleanup(&pb);
  series_store_free(st);
}

/* Every change as "measurement.field{labels}@ts", one line each. */
static void log_change(void *ud, const struct series_change *c) {
  char **log = ud;
  char line[256];
  int n = snprintf(line, sizeof line, "%s.%s{", c->measurement,
                   c->field ? c->field : "*");
  for (size_t i = 0; i < series_ntags(c->series); i++) {
    const char *k, *v;
    series_tag_at(c->series, i, &k, &v);
    n += snprintf(line + n, sizeof line - (size_t)n, "%s=%s,", k, v);
  }
  snprintf(line + n, sizeof line - (size_t)n, "}@%lld\n",
           (long long)((c->ts_ns - T0) / NS_PER_SEC));
  size_t old = *log ? strlen(*log) : 0;
  char *grown = realloc(*log, old + strlen(line) + 1);
  cr_assert_not_null(grown);
  memcpy(grown + old, line, strlen(line) + 1);
  *log = grown;
}

static struct series_store *seen_store(void) {
  struct series_store *st = series_store_new(NULL);
  cr_assert_eq(series_store_want(st, "igate", "received", HOURS(1)), IOCD_OK);
  cr_assert_eq(series_store_want(st, "igate", NULL, 0), IOCD_OK);
  cr_assert_eq(series_store_want(st, "_source", "seen", 0), IOCD_OK);
  cr_assert_eq(series_store_want(st, "_source", NULL, 0), IOCD_OK);
  return st;
}

Test(series_store, records_a_heartbeat_with_the_point_as_a_second_add_would) {
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = igate_point(&pb, "Krông Pắc", T0);
  /* An empty tag is no label, in both ways. */
  cr_assert_eq(pb_tag(&pb, p, "zone", 4, "", 0, true), IOCD_OK);
  struct series_seen seen = {"_source", "seen", T0 + SEC(7)};
  struct series_store *one = seen_store(), *two = seen_store();
  char *log1 = NULL, *log2 = NULL;
  cr_assert_eq(series_store_add_point_seen(one, &pb, p, &seen, log_change,
                                           &log1),
               IOCD_OK);
  cr_assert_eq(series_store_add_point(two, &pb, p, log_change, &log2),
               IOCD_OK);
  struct series_label l[] = {{"system", "igate"},
                             {"district", "Krông Pắc"},
                             {"zone", ""}};
  cr_assert_eq(series_store_add(two, "_source", "seen", l, 3, T0 + SEC(7), 1,
                                log_change, &log2),
               IOCD_OK);
  cr_assert_str_eq(log1,
                   "igate.received{district=Krông Pắc,system=igate,}@0\n"
                   "igate.*{district=Krông Pắc,system=igate,}@0\n"
                   "_source.seen{district=Krông Pắc,system=igate,}@7\n"
                   "_source.*{district=Krông Pắc,system=igate,}@7\n");
  cr_assert_str_eq(log1, log2);
  struct series_store_stats s1 = stats_of(one), s2 = stats_of(two);
  cr_assert_eq(s1.series, 4);
  cr_assert_eq(s1.series, s2.series);
  cr_assert_eq(s1.samples, s2.samples);
  cr_assert_eq(s1.bytes, s2.bytes);
  /* No heartbeat: the point alone. */
  struct series_store *three = seen_store();
  cr_assert_eq(series_store_add_point_seen(three, &pb, p, NULL, NULL, NULL),
               IOCD_OK);
  cr_assert_eq(stats_of(three).series, 2);
  free(log1);
  free(log2);
  series_store_free(one);
  series_store_free(two);
  series_store_free(three);
  pb_cleanup(&pb);
}

Test(series_store, converts_ints_floats_and_booleans_and_ignores_strings) {
  struct series_store *st = series_store_new(NULL);
  const char *fields[] = {"received", "share", "online", "note"};
  for (int i = 0; i < 4; i++) {
    cr_assert_eq(series_store_want(st, "igate", fields[i], 0), IOCD_OK);
  }
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = igate_point(&pb, "Lắk", T0);
  struct changes ch = {0};
  cr_assert_eq(series_store_add_point(st, &pb, p, on_change, &ch), IOCD_OK);
  cr_assert_eq(ch.n, 3);
  cr_assert_str_eq(ch.field[0], "received");
  cr_assert_str_eq(ch.field[1], "share");
  cr_assert_str_eq(ch.field[2], "online");
  const struct group *g = DISTRICT("Lắk");
  cr_assert(eval_at(st, g, T0, "igate.received") == 221942);
  cr_assert(eval_at(st, g, T0, "igate.share") == 0.125);
  cr_assert(eval_at(st, g, T0, "igate.online") == 1);
  cr_assert(eval_at(st, g, T0, "igate.note") == -1);
  cr_assert_eq(stats_of(st).series, 3);
  pb_cleanup(&pb);
  series_store_free(st);
}

Test(series_store, reports_the_any_field_time_for_age_and_absent) {
  struct series_store *st = series_store_new(NULL);
  cr_assert_eq(series_store_want(st, "igate", NULL, HOURS(5)), IOCD_OK);
  struct point_batch pb;
  pb_init(&pb);
  /* A point with only a string field still shows the feed is alive. */
  struct point *p = pb_point_new(&pb, "igate", 5);
  cr_assert_eq(pb_tag(&pb, p, "district", 8, "M'Đrắk", strlen("M'Đrắk"), true),
               IOCD_OK);
  cr_assert_eq(pb_field_string(&pb, p, "status", 6, "ok", 2), IOCD_OK);
  p->ts_ns = T0;
  p->has_ts = true;
  struct changes ch = {0};
  cr_assert_eq(series_store_add_point(st, &pb, p, on_change, &ch), IOCD_OK);
  cr_assert_eq(ch.n, 1);
  cr_assert_str_eq(ch.field[0], "(any)");
  cr_assert_str_eq(ch.district[0], "M'Đrắk");
  cr_assert(eval_at(st, DISTRICT("M'Đrắk"), T0 + SEC(42), "age(igate)") == 42);
  pb_cleanup(&pb);
  series_store_free(st);
}

static void keep_series(void *ud, const struct series_change *c) {
  *(const struct series **)ud = c->series;
}

Test(series_store, names_no_group_for_a_series_without_the_label) {
  struct series_store *st = series_store_new(NULL);
  cr_assert_eq(series_store_want(st, "province", "services_l3", 0), IOCD_OK);
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = pb_point_new(&pb, "province", 8);
  cr_assert_eq(
      pb_tag(&pb, p, "province", 8, "Đắk Lắk", strlen("Đắk Lắk"), true),
      IOCD_OK);
  cr_assert_eq(pb_field_int(&pb, p, "services_l3", 11, 595), IOCD_OK);
  p->ts_ns = T0;
  p->has_ts = true;
  const struct series *s = NULL;
  cr_assert_eq(series_store_add_point(st, &pb, p, keep_series, &s), IOCD_OK);
  cr_assert_not_null(s);
  const char *v[1];
  cr_assert(!series_group_values(s, by_district, 1, v));
  cr_assert_str_eq(series_tag(s, "province"), "Đắk Lắk");
  /* A rule without `by` still sees it. */
  cr_assert(eval_at(st, NULL, T0, "province.services_l3") == 595);
  cr_assert(eval_at(st, DISTRICT("Lắk"), T0, "province.services_l3") == -1);
  pb_cleanup(&pb);
  series_store_free(st);
}

Test(series_store, exposes_the_labels_of_a_changed_series) {
  struct series_store *st = series_store_new(NULL);
  cr_assert_eq(series_store_want(st, "igate", "received", 0), IOCD_OK);
  const struct series *s = NULL;
  struct series_label l[] = {
      {"system", "igate"}, {"district", "Buôn Ma Thuột"}, {"empty", ""}};
  cr_assert_eq(
      series_store_add(st, "igate", "received", l, 3, T0, 1, keep_series, &s),
      IOCD_OK);
  cr_assert_not_null(s);
  /* Sorted by key; the empty value is no label. */
  cr_assert_eq(series_ntags(s), 2);
  const char *k, *v;
  series_tag_at(s, 0, &k, &v);
  cr_assert_str_eq(k, "district");
  cr_assert_str_eq(v, "Buôn Ma Thuột");
  series_tag_at(s, 1, &k, &v);
  cr_assert_str_eq(k, "system");
  cr_assert_str_eq(v, "igate");
  cr_assert_str_eq(series_tag(s, "district"), "Buôn Ma Thuột");
  cr_assert_null(series_tag(s, "empty"));
  const char *const keys[] = {"district", "province"};
  const char *vals[2];
  cr_assert(!series_group_values(s, keys, 2, vals));
  cr_assert(series_group_values(s, keys, 1, vals));
  cr_assert_str_eq(vals[0], "Buôn Ma Thuột");
  series_store_free(st);
}

Test(series_store, treats_tag_order_and_empty_tags_as_the_same_series) {
  struct series_store *st = series_store_new(NULL);
  cr_assert_eq(series_store_want(st, "m", "f", HOURS(1)), IOCD_OK);
  struct series_label a[] = {{"district", "Lắk"}, {"system", "igate"}};
  struct series_label b[] = {
      {"system", "igate"}, {"x", ""}, {"district", "Lắk"}};
  cr_assert_eq(series_store_add(st, "m", "f", a, 2, T0, 1, NULL, NULL),
               IOCD_OK);
  cr_assert_eq(series_store_add(st, "m", "f", b, 3, T0 + SEC(1), 2, NULL, NULL),
               IOCD_OK);
  cr_assert_eq(stats_of(st).series, 1);
  cr_assert(eval_at(st, DISTRICT("Lắk"), T0 + SEC(1), "count(m.f[1h])") == 2);
  series_store_free(st);
}

/* ---- retention, order and caps ------------------------------------------- */

Test(series_store, keeps_the_retention_back_from_the_newest_sample) {
  struct series_store_opts o = {.slack_ns = -1};
  struct series_store *st = series_store_new(&o);
  cr_assert_eq(series_store_want(st, "m", "f", HOURS(1)), IOCD_OK);
  /* Every 10 minutes for 3 hours: 19 samples. */
  for (int k = 0; k <= 18; k++) {
    add(st, "m", "f", "Lắk", T0 + MINUTES(10 * k), k);
  }
  /* Kept: newer than newest - 1h, i.e. the last 6. */
  struct series_store_stats s = stats_of(st);
  cr_assert_eq(s.samples, 6);
  cr_assert_eq(s.added, 19);
  int64_t t = T0 + MINUTES(180);
  cr_assert(eval_at(st, DISTRICT("Lắk"), t, "count(m.f[1h])") == 6);
  cr_assert(eval_at(st, DISTRICT("Lắk"), t, "min(m.f[1h])") == 13);
  series_store_free(st);

  /* The default slack keeps 10 more minutes. */
  st = series_store_new(NULL);
  cr_assert_eq(series_store_want(st, "m", "f", HOURS(1)), IOCD_OK);
  for (int k = 0; k <= 18; k++) {
    add(st, "m", "f", "Lắk", T0 + MINUTES(10 * k), k);
  }
  cr_assert_eq(stats_of(st).samples, 7);
  series_store_free(st);
}

Test(series_store, keeps_the_longest_range_registered) {
  struct series_store_opts o = {.slack_ns = -1};
  struct series_store *st = series_store_new(&o);
  cr_assert_eq(series_store_want(st, "m", "f", HOURS(2)), IOCD_OK);
  cr_assert_eq(series_store_want(st, "m", "f", HOURS(1)), IOCD_OK);
  cr_assert_eq(series_store_want(st, "m", "f", 0), IOCD_OK);
  for (int k = 0; k <= 18; k++) {
    add(st, "m", "f", "Lắk", T0 + MINUTES(10 * k), k);
  }
  cr_assert_eq(stats_of(st).samples, 12);
  cr_assert_eq(stats_of(st).families, 1);
  series_store_free(st);
}

Test(series_store, keeps_only_the_newest_sample_for_an_instant_selector) {
  struct series_store_opts o = {.slack_ns = -1};
  struct series_store *st = series_store_new(&o);
  cr_assert_eq(series_store_want(st, "m", "f", 0), IOCD_OK);
  for (int k = 0; k < 10; k++) {
    add(st, "m", "f", "Lắk", T0 + SEC(k), k);
  }
  cr_assert_eq(stats_of(st).samples, 1);
  cr_assert(eval_at(st, DISTRICT("Lắk"), T0 + SEC(9), "m.f") == 9);
  series_store_free(st);
}

Test(series_store, inserts_late_samples_in_order_within_the_retention) {
  struct series_store_opts o = {.slack_ns = -1};
  struct series_store *st = series_store_new(&o);
  cr_assert_eq(series_store_want(st, "m", "f", HOURS(1)), IOCD_OK);
  add(st, "m", "f", "Lắk", T0, 10);
  add(st, "m", "f", "Lắk", T0 + MINUTES(20), 30);
  /* Late but inside the hour: goes between the two. */
  add(st, "m", "f", "Lắk", T0 + MINUTES(10), 20);
  /* Older than newest - 1h: dropped and counted. */
  struct series_label l[] = {{"district", "Lắk"}};
  struct changes ch = {0};
  cr_assert_eq(series_store_add(st, "m", "f", l, 1, T0 - MINUTES(41), 99,
                                on_change, &ch),
               IOCD_OK);
  cr_assert_eq(ch.n, 0);
  struct series_store_stats s = stats_of(st);
  cr_assert_eq(s.samples, 3);
  cr_assert_eq(s.dropped_old, 1);
  int64_t t = T0 + MINUTES(20);
  const struct group *g = DISTRICT("Lắk");
  /* delta = last - first proves the order: 30 - 10; the increase from 10
   * to 20 to 30 has no reset. */
  cr_assert(eval_at(st, g, t, "delta(m.f[1h])") == 20);
  cr_assert(eval_at(st, g, t, "increase(m.f[1h])") == 20);
  cr_assert(eval_at(st, g, t - MINUTES(5), "last(m.f[1h])") == 20);
  /* A sample at the same time replaces the value. */
  add(st, "m", "f", "Lắk", T0 + MINUTES(10), 25);
  s = stats_of(st);
  cr_assert_eq(s.samples, 3);
  cr_assert_eq(s.replaced, 1);
  cr_assert(eval_at(st, g, t - MINUTES(5), "last(m.f[1h])") == 25);
  series_store_free(st);
}

Test(series_store, caps_the_samples_per_series_dropping_the_oldest) {
  struct series_store_opts o = {.max_samples = 5};
  struct series_store *st = series_store_new(&o);
  cr_assert_eq(series_store_want(st, "m", "f", HOURS(24)), IOCD_OK);
  for (int k = 1; k <= 8; k++) {
    add(st, "m", "f", "Lắk", T0 + MINUTES(k), k);
  }
  struct series_store_stats s = stats_of(st);
  cr_assert_eq(s.samples, 5);
  cr_assert_eq(s.dropped_cap, 3);
  const struct group *g = DISTRICT("Lắk");
  int64_t t = T0 + MINUTES(8);
  cr_assert(eval_at(st, g, t, "min(m.f[1d])") == 4);
  cr_assert(eval_at(st, g, t, "count(m.f[1d])") == 5);
  /* A late sample inside the held range replaces the oldest... */
  add(st, "m", "f", "Lắk", T0 + MINUTES(6) + SEC(30), 6.5);
  cr_assert(eval_at(st, g, t, "min(m.f[1d])") == 5);
  cr_assert(eval_at(st, g, t, "count(m.f[1d])") == 5);
  /* ...one older than everything held is dropped. */
  add(st, "m", "f", "Lắk", T0 + MINUTES(1), 1);
  s = stats_of(st);
  cr_assert_eq(s.dropped_cap, 5);
  cr_assert_eq(s.samples, 5);
  cr_assert(eval_at(st, g, t, "min(m.f[1d])") == 5);
  cr_assert(eval_at(st, g, t, "sum(m.f[1d])") == 5 + 6 + 6.5 + 7 + 8);
  series_store_free(st);
}

Test(series_store, wraps_its_ring_many_times_without_losing_order) {
  struct series_store_opts o = {.slack_ns = -1};
  struct series_store *st = series_store_new(&o);
  cr_assert_eq(series_store_want(st, "m", "f", MINUTES(10)), IOCD_OK);
  for (int k = 0; k < 1000; k++) {
    add(st, "m", "f", "Lắk", T0 + MINUTES(k), k);
    if (k % 7 == 3) {
      /* A late sample half a minute back. */
      add(st, "m", "f", "Lắk", T0 + MINUTES(k) - SEC(30), k - 0.5);
    }
  }
  const struct group *g = DISTRICT("Lắk");
  int64_t t = T0 + MINUTES(999);
  /* (989m, 999m] holds 990..999 and the late 989.5 and 996.5. */
  cr_assert(eval_at(st, g, t, "last(m.f[10m])") == 999);
  cr_assert(eval_at(st, g, t, "count(m.f[10m])") == 12);
  cr_assert(eval_at(st, g, t, "delta(m.f[10m])") == 999 - 989.5);
  cr_assert(eval_at(st, g, t, "increase(m.f[10m])") == 999 - 989.5);
  cr_assert(eval_at(st, g, t - SEC(30), "last(m.f[10m])") == 998);
  cr_assert(eval_at(st, g, t - MINUTES(2) - SEC(15), "last(m.f[10m])") ==
            996.5);
  cr_assert_eq(stats_of(st).samples, 12);
  series_store_free(st);
}

/* ---- limits -------------------------------------------------------------- */

Test(series_store, refuses_series_past_the_limit_and_counts_them) {
  struct series_store_opts o = {.max_series = 2};
  struct series_store *st = series_store_new(&o);
  cr_assert_eq(series_store_want(st, "m", "f", 0), IOCD_OK);
  add(st, "m", "f", "Lắk", T0, 1);
  add(st, "m", "f", "Ea Kar", T0, 2);
  struct series_label l[] = {{"district", "Ea Súp"}};
  cr_assert_eq(series_store_add(st, "m", "f", l, 1, T0, 3, NULL, NULL),
               IOCD_ELIMIT);
  /* Existing series still take samples. */
  add(st, "m", "f", "Lắk", T0 + SEC(1), 4);
  struct series_store_stats s = stats_of(st);
  cr_assert_eq(s.series, 2);
  cr_assert_eq(s.series_refused, 1);
  cr_assert(eval_at(st, DISTRICT("Ea Súp"), T0, "m.f") == -1);
  cr_assert(eval_at(st, DISTRICT("Lắk"), T0 + SEC(1), "m.f") == 4);
  series_store_free(st);
}

Test(series_store, rejects_bad_arguments) {
  struct series_store *st = series_store_new(NULL);
  cr_assert_eq(series_store_want(st, "", "f", 0), IOCD_EINVAL);
  cr_assert_eq(series_store_want(st, "m", "", 0), IOCD_EINVAL);
  cr_assert_eq(series_store_want(st, NULL, "f", 0), IOCD_EINVAL);
  cr_assert_eq(series_store_want(st, "m", "f", -1), IOCD_EINVAL);
  cr_assert_eq(series_store_want_expr(st, NULL), IOCD_EINVAL);
  cr_assert_eq(series_store_want(st, "igate", "received", 0), IOCD_OK);
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = igate_point(&pb, "Lắk", T0);
  p->has_ts = false;
  cr_assert_eq(series_store_add_point(st, &pb, p, NULL, NULL), IOCD_EINVAL);
  cr_assert_eq(series_store_add(st, "igate", NULL, NULL, 0, T0, 1, NULL, NULL),
               IOCD_EINVAL);
  cr_assert_eq(stats_of(st).samples, 0);
  pb_cleanup(&pb);
  series_store_free(st);
  series_store_free(NULL);
}

Test(series_store, refuses_a_point_with_too_many_tags) {
  struct series_store *st = series_store_new(NULL);
  cr_assert_eq(series_store_want(st, "m", "f", 0), IOCD_OK);
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = pb_point_new(&pb, "m", 1);
  for (int i = 0; i < 300; i++) {
    char k[16];
    int n = snprintf(k, sizeof k, "t%d", i);
    cr_assert_eq(pb_tag(&pb, p, k, (size_t)n, "v", 1, true), IOCD_OK);
  }
  cr_assert_eq(pb_field_float(&pb, p, "f", 1, 1.0), IOCD_OK);
  p->ts_ns = T0;
  p->has_ts = true;
  cr_assert_eq(series_store_add_point(st, &pb, p, NULL, NULL), IOCD_ELIMIT);
  struct series_store_stats s = stats_of(st);
  cr_assert_eq(s.series, 0);
  cr_assert_eq(s.series_refused, 1);
  pb_cleanup(&pb);
  series_store_free(st);
}

/* ---- garbage collection -------------------------------------------------- */

Test(series_store, collects_series_that_stopped_and_frees_their_memory) {
  struct series_store *st = series_store_new(NULL);
  cr_assert_eq(series_store_want(st, "m", "f", HOURS(1)), IOCD_OK);
  add(st, "m", "f", "Lắk", T0, 1);
  add(st, "m", "f", "Ea Kar", T0 + HOURS(5), 2);
  add(st, "m", "f", "Cư Kuin", T0 + HOURS(6), 3);
  struct series_store_stats before = stats_of(st);
  cr_assert_eq(before.series, 3);
  cr_assert_eq(series_store_gc(st, T0 + HOURS(5)), 1);
  struct series_store_stats after = stats_of(st);
  cr_assert_eq(after.series, 2);
  cr_assert_eq(after.samples, 2);
  cr_assert_lt(after.bytes, before.bytes);
  int64_t t = T0 + HOURS(6);
  cr_assert(eval_at(st, DISTRICT("Lắk"), t, "count(m.f[1d])") == 0);
  cr_assert(eval_at(st, DISTRICT("Ea Kar"), t, "last(m.f[1d])") == 2);
  cr_assert(eval_at(st, NULL, t, "sum(m.f[1d])") == 5);
  /* The district comes back. */
  add(st, "m", "f", "Lắk", t, 7);
  cr_assert(eval_at(st, DISTRICT("Lắk"), t, "m.f") == 7);
  cr_assert(eval_at(st, NULL, t, "m.f") == 10);
  cr_assert_eq(series_store_gc(st, T0 + HOURS(7)), 3);
  cr_assert_eq(stats_of(st).series, 0);
  series_store_free(st);
}

/* ---- scale --------------------------------------------------------------- */

Test(series_store, selects_one_group_among_ten_thousand) {
  struct series_store *st = series_store_new(NULL);
  cr_assert_eq(series_store_want(st, "igate", "received", HOURS(1)), IOCD_OK);
  char name[32];
  for (int i = 0; i < 10000; i++) {
    snprintf(name, sizeof name, "Xã %05d", i);
    add(st, "igate", "received", name, T0, i);
    add(st, "igate", "received", name, T0 + MINUTES(1), 2 * i);
  }
  struct series_store_stats s = stats_of(st);
  cr_assert_eq(s.series, 10000);
  cr_assert_eq(s.samples, 20000);
  for (int i = 0; i < 10000; i += 997) {
    snprintf(name, sizeof name, "Xã %05d", i);
    cr_assert(eval_at(st, DISTRICT(name), T0 + MINUTES(1),
                      "increase(igate.received[1h])") == i);
  }
  /* About 420 bytes per series with one label, two samples in a ring of
   * four, and the only family of its tag set. */
  cr_assert_lt(s.bytes / s.series, 450, "%zu bytes per series",
               s.bytes / s.series);
  series_store_free(st);
}

/* A point's fields and its any-field time share one tag set: a series
 * then costs its ring and its place in the indexes, not its labels. */
Test(series_store, series_of_one_point_share_their_labels) {
  struct series_store *st = series_store_new(NULL);
  const char *fields[] = {"received", "resolved", "online_l3", "online_l4",
                          "overdue"};
  for (size_t f = 0; f < 5; f++) {
    cr_assert_eq(series_store_want(st, "igate", fields[f], HOURS(1)),
                 IOCD_OK);
  }
  cr_assert_eq(series_store_want(st, "igate", NULL, 0), IOCD_OK);
  struct point_batch pb;
  pb_init(&pb);
  char name[32];
  for (int i = 0; i < 2000; i++) {
    snprintf(name, sizeof name, "Xã %05d", i);
    for (int k = 0; k < 2; k++) {
      pb_reset(&pb);
      struct point *p = pb_point_new(&pb, "igate", 5);
      cr_assert_eq(pb_tag(&pb, p, "district", 8, name, strlen(name), true),
                   IOCD_OK);
      cr_assert_eq(pb_tag(&pb, p, "system", 6, "igate", 5, true), IOCD_OK);
      for (size_t f = 0; f < 5; f++) {
        cr_assert_eq(pb_field_int(&pb, p, fields[f], strlen(fields[f]),
                                  i + k),
                     IOCD_OK);
      }
      p->ts_ns = T0 + MINUTES(k);
      p->has_ts = true;
      cr_assert_eq(series_store_add_point(st, &pb, p, NULL, NULL), IOCD_OK);
    }
  }
  struct series_store_stats s = stats_of(st);
  cr_assert_eq(s.series, 2000 * 6);
  cr_assert_eq(s.samples, 2000 * 6 * 2);
  /* Two labels each, yet less than the one-label series above (about
   * 330 bytes: the ring, the two postings, a sixth of the tag set). */
  cr_assert_lt(s.bytes / s.series, 360, "%zu bytes per series",
               s.bytes / s.series);
  snprintf(name, sizeof name, "Xã %05d", 1234);
  cr_assert_eq(eval_at(st, DISTRICT(name), T0 + MINUTES(1),
                       "igate.overdue + igate.received"),
               2 * 1235);
  /* Collected, every tag set goes with its last series. */
  size_t before = stats_of(st).bytes;
  cr_assert_eq(series_store_gc(st, T0 + HOURS(3)), 2000 * 6);
  cr_assert_lt(stats_of(st).bytes, before / 10);
  pb_cleanup(&pb);
  series_store_free(st);
}

/* ---- a group's cache of where its series are ----------------------------- */

Test(series_store, a_group_cache_sees_series_added_and_collected_later) {
  struct series_store *st = series_store_new(NULL);
  cr_assert_eq(series_store_want(st, "igate", "received", HOURS(1)), IOCD_OK);
  /* Two ways: the families below take turns in them. */
  struct series_group_cache *cache = calloc(1, SERIES_GROUP_CACHE_SIZE(2));
  cr_assert_not_null(cache);
  cache->nways = 2;
  const char *const lak[] = {"Lắk"};
  struct group g = {.keys = by_district, .values = lak, .n = 1,
                    .cache = cache};
  const char *sum = "sum(igate.received[1h])";
  /* Nothing yet: the cache remembers that Lắk has no series. */
  cr_assert_eq(eval_at(st, &g, T0, sum), -1);
  add(st, "igate", "received", "Lắk", T0, 5);
  cr_assert_eq(eval_at(st, &g, T0, sum), 5);
  /* A second series of the same district, and another district. */
  struct series_label two[] = {{"district", "Lắk"}, {"system", "idesk"}};
  cr_assert_eq(series_store_add(st, "igate", "received", two, 2, T0 + SEC(1),
                                7, NULL, NULL),
               IOCD_OK);
  add(st, "igate", "received", "Ea Kar", T0, 100);
  cr_assert_eq(eval_at(st, &g, T0 + SEC(1), sum), 12);
  /* Collected: gone, then back as new series. */
  cr_assert_eq(series_store_gc(st, T0 + HOURS(2)), 3);
  cr_assert_eq(eval_at(st, &g, T0 + HOURS(2), sum), -1);
  add(st, "igate", "received", "Ea Kar", T0 + HOURS(3), 100);
  add(st, "igate", "received", "Lắk", T0 + HOURS(3), 9);
  cr_assert_eq(eval_at(st, &g, T0 + HOURS(3), sum), 9);
  /* More families than the cache has ways: each still finds its own. */
  const char *fields[] = {"a", "b", "c", "d", "e", "f"};
  for (size_t i = 0; i < 6; i++) {
    cr_assert_eq(series_store_want(st, "igate", fields[i], 0), IOCD_OK);
    add(st, "igate", fields[i], "Lắk", T0 + HOURS(3), (double)i + 1);
  }
  for (int round = 0; round < 2; round++) {
    for (size_t i = 0; i < 6; i++) {
      char text[32];
      snprintf(text, sizeof text, "igate.%s", fields[i]);
      cr_assert_eq(eval_at(st, &g, T0 + HOURS(3), text), (double)i + 1);
    }
  }
  free(cache);
  series_store_free(st);
}
