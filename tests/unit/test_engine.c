/*
 * The rules engine on a virtual clock: alerts through their whole life,
 * evaluation only of the affected rules and groups, silent feeds, the
 * broker dependency, working-time rules across lunch, weekends and Tết,
 * state save/restore, reload, templates, 10,000 groups, and parity with
 * Prometheus (checked against promtool when it is installed).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/point.h"
#include "rules/engine.h"

#define SEC(n) ((int64_t)(n) * NS_PER_SEC)
#define MIN(n) ((int64_t)(n) * 60 * NS_PER_SEC)
#define HOUR(n) ((int64_t)(n) * 3600 * NS_PER_SEC)
/* 2021-03-01 09:00 +07:00, a Monday in office hours. */
#define BASE (INT64_C(1614564000) * NS_PER_SEC)

/* ---- recording events ---------------------------------------------------- */

#define MAX_EVENTS 4096

struct rec {
  char *lines[MAX_EVENTS];
  size_t n;
  int64_t t[MAX_EVENTS];
};

static void on_event(void *ud, const struct alert_event *ev) {
  struct rec *r = ud;
  struct buf b;
  buf_init(&b, 1 << 16);
  buf_printf(&b, "%s", ev->rule);
  for (size_t i = 0; i < ev->group->n; i++) {
    buf_printf(&b, "%s%s=%s", i ? "," : "{", ev->group->keys[i],
               ev->group->values[i]);
  }
  buf_printf(&b, "%s %s>%s sev=%s", ev->group->n ? "}" : "",
             alert_state_name(ev->prev), alert_state_name(ev->state),
             ev->severity);
  if (ev->severity_changed) {
    buf_printf(&b, " from=%s", ev->prev_severity);
  }
  buf_printf(&b, " by=%s reason=[%s]", alert_trigger_name(ev->by),
             ev->reason);
  for (size_t i = 0; i < ev->nannotations; i++) {
    buf_printf(&b, " %s=[%s]", ev->annotations[i].key,
               ev->annotations[i].value);
  }
  if (r->n < MAX_EVENTS) {
    r->t[r->n] = ev->t_ns;
    r->lines[r->n++] = buf_detach(&b, NULL);
  }
  buf_cleanup(&b);
}

static void rec_free(struct rec *r) {
  for (size_t i = 0; i < r->n; i++) {
    free(r->lines[i]);
  }
  r->n = 0;
}

static size_t rec_count(const struct rec *r, const char *needle) {
  size_t n = 0;
  for (size_t i = 0; i < r->n; i++) {
    n += strstr(r->lines[i], needle) != NULL;
  }
  return n;
}

/* The time of the first event containing needle, or -1. */
static int64_t rec_time(const struct rec *r, const char *needle) {
  for (size_t i = 0; i < r->n; i++) {
    if (strstr(r->lines[i], needle)) {
      return r->t[i];
    }
  }
  return -1;
}

static void rec_dump(const struct rec *r) {
  for (size_t i = 0; i < r->n; i++) {
    fprintf(stderr, "  %lld: %s\n", (long long)((r->t[i] - BASE) / SEC(1)),
            r->lines[i]);
  }
}

/* ---- hooks --------------------------------------------------------------- */

/* $online_target: 30%, 45% for Buôn Ma Thuột; $min_received: 20. */
static bool param(void *ud, const char *name, const struct group *g,
                  double *out) {
  (void)ud;
  if (strcmp(name, "min_received") == 0) {
    *out = 20;
    return true;
  }
  if (strcmp(name, "online_target") != 0) {
    return false;
  }
  *out = 0.30;
  for (size_t i = 0; g && i < g->n; i++) {
    if (strcmp(g->keys[i], "district") == 0 &&
        strcmp(g->values[i], "Buôn Ma Thuột") == 0) {
      *out = 0.45;
    }
  }
  return true;
}

/* An engine whose texts are in lang. */
static struct engine *make_in(const struct rule_def *rules, size_t n,
                              struct rec *rec, int64_t start,
                              enum engine_lang lang) {
  struct engine_opts o = {
      .param = param,
      .on_event = on_event,
      .event_ud = rec,
      .start_ns = start,
      .lang = lang,
  };
  struct rule_error re = {0};
  struct engine *e = NULL;
  int rc = engine_new(&o, rules, n, &e, &re);
  cr_assert_eq(rc, IOCD_OK, "%s", re.err.msg);
  return e;
}

/* Most tests read the engine's reasons in English. */
static struct engine *make(const struct rule_def *rules, size_t n,
                           struct rec *rec, int64_t start) {
  return make_in(rules, n, rec, start, ENGINE_LANG_EN);
}

/* One point of measurement meas for district d (system "igate") with up to
 * two fields, arriving at its own time. */
static void point(struct engine *e, const char *meas, const char *d,
                  int64_t ts, const char *f1, double v1, const char *f2,
                  double v2) {
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = pb_point_new(&pb, meas, strlen(meas));
  cr_assert_not_null(p);
  cr_assert_eq(pb_tag(&pb, p, "district", 8, d, strlen(d), true), IOCD_OK);
  cr_assert_eq(pb_tag(&pb, p, "system", 6, "igate", 5, true), IOCD_OK);
  if (f1) {
    cr_assert_eq(pb_field_float(&pb, p, f1, strlen(f1), v1), IOCD_OK);
  }
  if (f2) {
    cr_assert_eq(pb_field_float(&pb, p, f2, strlen(f2), v2), IOCD_OK);
  }
  p->ts_ns = ts;
  p->has_ts = true;
  int rc = engine_add_point(e, &pb, p, ts);
  cr_assert_eq(rc, IOCD_OK, "add_point: %s", iocd_strerror(rc));
  pb_cleanup(&pb);
}

static void sample(struct engine *e, const char *meas, const char *field,
                   const char *k, const char *v, int64_t ts, double x) {
  struct series_label l = {.key = k, .value = v};
  cr_assert_eq(engine_add_sample(e, meas, field, &l, k ? 1 : 0, ts, x, ts),
               IOCD_OK);
}

/* Ticks at every wake up to and including t. */
static void advance(struct engine *e, int64_t t) {
  for (int guard = 0; guard < 1000000; guard++) {
    int64_t w = engine_next_wake(e);
    if (w > t) {
      return;
    }
    engine_tick(e, w);
  }
  cr_assert_fail("advance: the engine keeps waking up");
}

static const char *const BY_DISTRICT[] = {"district"};
static const char *const BY_DS[] = {"district", "system"};

static const struct alert_kv SHARE_NOTES[] = {
    {"summary",
     "Tỷ lệ hồ sơ trực tuyến của {{district}} là {{value|pct}}, dưới mục "
     "tiêu {{ threshold | pct }}"},
    {"raw", "{{value}}/{{threshold}} {{rule}} {{severity}} {{state}}"},
};

static struct rule_def share_rule(void) {
  return (struct rule_def){
      .name = "online_share",
      .expr = "igate.online / igate.received < $online_target",
      .guard = "igate.received >= $min_received",
      .by = BY_DISTRICT,
      .nby = 1,
      .for_ns = MIN(15),
      .annotations = SHARE_NOTES,
      .nannotations = 2,
  };
}

/* ---- a whole life ------------------------------------------------------- */

Test(engine, fires_once_when_share_stays_below_target_for_15m) {
  struct rec rec = {0};
  struct rule_def r = share_rule();
  struct engine *e = make(&r, 1, &rec, BASE);
  for (int m = 0; m <= 40; m++) {
    double online = m <= 30 ? 25 : 35;
    point(e, "igate", "Ea H'Leo", BASE + MIN(m), "received", 100, "online",
          online);
    advance(e, BASE + MIN(m));
  }
  cr_expect_eq(rec.n, 3, "events:");
  if (rec.n != 3) {
    rec_dump(&rec);
  }
  cr_expect_eq(rec_time(&rec, "inactive>pending"), BASE);
  cr_expect_eq(rec_time(&rec, "pending>firing"), BASE + MIN(15));
  cr_expect_eq(rec_time(&rec, "firing>resolved"), BASE + MIN(31));
  cr_expect_eq(rec_count(&rec, "online_share{district=Ea H'Leo}"), 3);
  /* Why, with the sample, the value and the threshold. */
  cr_expect(strstr(rec.lines[1],
                   "by=sample reason=[sample igate.received{district=\"Ea "
                   "H'Leo\",system=\"igate\"}=100 at "
                   "2021-03-01T09:15:00+07:00"
                   ": condition true, value 0.25, threshold 0.3]") != NULL,
            "%s", rec.lines[1]);
  cr_expect(strstr(rec.lines[1],
                   "summary=[Tỷ lệ hồ sơ trực tuyến của Ea H'Leo là 25%, "
                   "dưới mục tiêu 30%]") != NULL,
            "%s", rec.lines[1]);
  cr_expect(strstr(rec.lines[1],
                   "raw=[0.25/0.3 online_share warning firing]") != NULL,
            "%s", rec.lines[1]);
  cr_expect(strstr(rec.lines[2], "value 0.35") != NULL, "%s", rec.lines[2]);
  engine_free(e);
  rec_free(&rec);
}

Test(engine, a_per_district_target_applies_to_that_district_only) {
  struct rec rec = {0};
  struct rule_def r = share_rule();
  r.for_ns = 0;
  struct engine *e = make(&r, 1, &rec, BASE);
  /* 40% is above the default 30%, below Buôn Ma Thuột's 45%. */
  point(e, "igate", "Lắk", BASE, "received", 100, "online", 40);
  point(e, "igate", "Buôn Ma Thuột", BASE, "received", 100, "online", 40);
  cr_expect_eq(rec.n, 1);
  cr_expect_eq(rec_count(&rec, "{district=Buôn Ma Thuột} inactive>firing"),
               1);
  cr_expect_eq(rec_count(&rec, "threshold 0.45"), 1);
  engine_free(e);
  rec_free(&rec);
}

Test(engine, few_dossiers_are_insufficient_not_a_breach) {
  struct rec rec = {0};
  struct rule_def r = share_rule();
  struct engine *e = make(&r, 1, &rec, BASE);
  /* 1 of 2 dossiers online at 7 a.m.: 50%, but only 2 received. */
  point(e, "igate", "Lắk", BASE, "received", 2, "online", 0);
  cr_expect_eq(rec.n, 1);
  cr_expect_eq(rec_count(&rec, "inactive>insufficient"), 1);
  cr_expect_eq(rec_count(&rec, "guard igate.received >= $min_received is "
                               "false (2 vs 20)"),
               1, "%s", rec.n ? rec.lines[0] : "");
  struct engine_stats st;
  engine_get_stats(e, &st);
  cr_expect_eq(st.insufficient, 1);
  cr_expect_eq(st.firing + st.pending, 0);
  engine_free(e);
  rec_free(&rec);
}

Test(engine, stale_data_raises_nodata_of_the_same_alert) {
  struct rec rec = {0};
  struct rule_def r = share_rule();
  r.for_ns = 0;
  struct engine *e = make(&r, 1, &rec, BASE);
  point(e, "igate", "Lắk", BASE, "received", 100, "online", 10);
  cr_expect_eq(rec_count(&rec, "inactive>firing"), 1);
  /* Nothing more arrives: stale after 10 minutes. */
  advance(e, BASE + HOUR(1));
  cr_expect_eq(rec.n, 2);
  cr_expect_eq(rec_count(&rec, "online_share{district=Lắk} firing>nodata"),
               1);
  cr_expect_eq(rec_time(&rec, "firing>nodata"), BASE + MIN(10) + 1);
  cr_expect_eq(rec_count(&rec, "by=tick reason=[tick at "
                               "2021-03-01T09:10:00+07:00: no data: "
                               "igate.received (stale)]"),
               1, "%s", rec.n > 1 ? rec.lines[1] : "");
  engine_free(e);
  rec_free(&rec);
}

Test(engine, levels_and_hysteresis_move_severity_with_events) {
  struct rec rec = {0};
  static const struct rule_level levels[] = {
      {"warning", "share.v < 30%", "share.v > 32%"},
      {"critical", "share.v < 15%", "share.v > 17%"},
  };
  struct rule_def r = {
      .name = "levels",
      .levels = levels,
      .nlevels = 2,
      .by = BY_DISTRICT,
      .nby = 1,
  };
  struct engine *e = make(&r, 1, &rec, BASE);
  static const struct {
    double v;
    const char *want;
  } steps[] = {
      {0.29, "inactive>firing sev=warning"},
      {0.14, "firing>firing sev=critical from=warning"},
      {0.16, NULL}, /* critical holds until above 17% */
      {0.18, "firing>firing sev=warning from=critical"},
      {0.31, NULL}, /* warning holds until above 32% */
      {0.33, "firing>resolved sev=warning"},
  };
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    size_t before = rec.n;
    sample(e, "share", "v", "district", "Lắk", BASE + MIN((int)i),
           steps[i].v);
    if (!steps[i].want) {
      cr_expect_eq(rec.n, before, "step %zu: %s", i,
                   rec.n ? rec.lines[rec.n - 1] : "");
      continue;
    }
    cr_expect_eq(rec.n, before + 1, "step %zu", i);
    cr_expect(rec.n && strstr(rec.lines[rec.n - 1], steps[i].want), "%s",
              rec.n ? rec.lines[rec.n - 1] : "");
  }
  engine_free(e);
  rec_free(&rec);
}

/* ---- evaluation work ----------------------------------------------------- */

Test(engine, evaluates_only_the_rules_and_groups_that_read_the_change) {
  struct rec rec = {0};
  struct rule_def rules[] = {
      {.name = "a", .expr = "igate.received > 1000", .by = BY_DISTRICT,
       .nby = 1},
      {.name = "b", .expr = "igate.received < 0", .by = BY_DISTRICT,
       .nby = 1},
      {.name = "c", .expr = "idesk.documents_sent < 0", .by = BY_DISTRICT,
       .nby = 1},
      {.name = "d", .expr = "igate.overdue > 5", .by = BY_DISTRICT, .nby = 1},
  };
  struct engine *e = make(rules, 4, &rec, BASE);
  point(e, "igate", "Lắk", BASE, "received", 10, NULL, 0);
  struct engine_stats st;
  engine_get_stats(e, &st);
  cr_expect_eq(st.evals_on_sample, 2, "rules a and b, district Lắk only");
  cr_expect_eq(st.instances, 3, "a and b for Lắk, and the broker alert");
  /* A point with two fields read by the same rule is evaluated once. */
  point(e, "igate", "Krông Pắc", BASE, "received", 10, "overdue", 1);
  engine_get_stats(e, &st);
  cr_expect_eq(st.evals_on_sample, 5);
  /* Fields nobody reads cost no evaluation. */
  point(e, "imail", "Lắk", BASE, "accounts", 10, NULL, 0);
  engine_get_stats(e, &st);
  cr_expect_eq(st.evals_on_sample, 5);
  /* Time matters only at the end of the start-up warm-up and when the
   * samples go stale: one late tick evaluates the five instances once,
   * and after that there is nothing to wait for. */
  cr_expect_eq(engine_next_wake(e), BASE + MIN(10));
  cr_expect_eq(engine_tick(e, BASE + HOUR(1)), 5);
  cr_expect_eq(engine_tick(e, BASE + HOUR(2)), 0);
  cr_expect_eq(engine_next_wake(e), INT64_MAX);
  engine_free(e);
  rec_free(&rec);
}

Test(engine, ten_thousand_groups_work_and_cost_one_evaluation_each) {
  struct rec rec = {0};
  struct rule_def r = {.name = "big",
                       .expr = "m.v > 9990",
                       .by = BY_DISTRICT,
                       .nby = 1};
  struct engine *e = make(&r, 1, &rec, BASE);
  char d[32];
  for (int i = 0; i < 10000; i++) {
    snprintf(d, sizeof d, "xã %05d", i);
    sample(e, "m", "v", "district", d, BASE + SEC(1), i);
  }
  for (int i = 0; i < 10000; i++) {
    snprintf(d, sizeof d, "xã %05d", i);
    sample(e, "m", "v", "district", d, BASE + SEC(2), i);
  }
  struct engine_stats st;
  engine_get_stats(e, &st);
  cr_expect_eq(st.instances, 10001);
  cr_expect_eq(st.evals_on_sample, 20000);
  cr_expect_eq(st.firing, 9);
  cr_expect_eq(rec.n, 9, "fired once each, not again on the second sample");
  cr_expect_lt(st.bytes / st.instances, 512, "bytes per instance: %zu",
               st.bytes / st.instances);
  engine_free(e);
  rec_free(&rec);
}

/* ---- silent feeds and the broker ----------------------------------------- */

static const char *const DISTRICTS[15] = {
    "Buôn Ma Thuột", "Buôn Hồ",    "Buôn Đôn",   "Cư Kuin",   "Cư M'gar",
    "Ea H'Leo",      "Ea Kar",     "Ea Súp",     "Krông Ana", "Krông Bông",
    "Krông Búk",     "Krông Năng", "Krông Pắc",  "Lắk",       "M'Đrắk",
};

static const struct alert_kv SILENT_NOTES[] = {
    {"summary", "{{district}}: hệ thống {{system}} không gửi dữ liệu"},
};

static struct rule_def silent_rule(const char **expected) {
  for (int i = 0; i < 15; i++) {
    expected[2 * i] = DISTRICTS[i];
    expected[2 * i + 1] = "igate";
  }
  return (struct rule_def){
      .name = "feed_silent",
      .expr = "age(_source.seen) > 10m",
      .by = BY_DS,
      .nby = 2,
      .expected = expected,
      .nexpected = 15,
      .severity = "critical",
      .annotations = SILENT_NOTES,
      .nannotations = 1,
  };
}

/* Every district but those in skip publishes each minute of [from, to]. */
static void publish(struct engine *e, int from, int to, unsigned skip) {
  for (int m = from; m <= to; m++) {
    advance(e, BASE + MIN(m) - 1);
    for (int i = 0; i < 15; i++) {
      if (!(skip & (1u << i))) {
        point(e, "igate", DISTRICTS[i], BASE + MIN(m), "received", m, NULL,
              0);
      }
    }
  }
}

Test(engine, a_district_that_never_published_is_named_after_10_minutes) {
  struct rec rec = {0};
  const char *expected[30];
  struct rule_def r = silent_rule(expected);
  struct engine *e = make(&r, 1, &rec, BASE);
  publish(e, 0, 20, 1u << 14);
  advance(e, BASE + MIN(20));
  cr_expect_eq(rec.n, 1);
  if (rec.n != 1) {
    rec_dump(&rec);
  }
  cr_expect_eq(rec_count(&rec, "feed_silent{district=M'Đrắk,system=igate} "
                               "inactive>firing sev=critical"),
               1);
  cr_expect_eq(rec_count(&rec, "summary=[M'Đrắk: hệ thống igate không gửi "
                               "dữ liệu]"),
               1);
  /* Silence counts from when the engine started listening. */
  cr_expect_eq(rec_time(&rec, "M'Đrắk"), BASE + MIN(10) + 1);
  engine_free(e);
  rec_free(&rec);
}

Test(engine, a_district_that_stops_is_named_10_minutes_after_its_last_point) {
  struct rec rec = {0};
  const char *expected[30];
  struct rule_def r = silent_rule(expected);
  struct engine *e = make(&r, 1, &rec, BASE);
  publish(e, 0, 5, 0);
  publish(e, 6, 30, 1u << 5); /* Ea H'Leo stops after minute 5 */
  publish(e, 31, 35, 0);      /* and comes back */
  advance(e, BASE + MIN(40));
  cr_expect_eq(rec.n, 2);
  cr_expect_eq(rec_time(&rec, "Ea H'Leo,system=igate} inactive>firing"),
               BASE + MIN(15) + 1);
  cr_expect_eq(rec_time(&rec, "Ea H'Leo,system=igate} firing>resolved"),
               BASE + MIN(31));
  cr_expect_eq(rec_count(&rec, "reason=[tick at 2021-03-01T09:15:00+07:00"),
               1);
  /* Between points, ticks wake only at the silence thresholds. */
  struct engine_stats st;
  engine_get_stats(e, &st);
  cr_expect_lt(st.evals_on_tick, 40, "tick evaluations: %llu",
               (unsigned long long)st.evals_on_tick);
  engine_free(e);
  rec_free(&rec);
}

/* Every point moves a feed's wake ten minutes later; the wake heap keeps
 * older keys until they come up (engine.c, schedule): what it reports
 * and what a tick evaluates must still be the true wake. */
Test(engine, a_wake_moved_later_is_neither_early_nor_evaluated_early) {
  struct rec rec = {0};
  const char *expected[30];
  struct rule_def r = silent_rule(expected);
  struct engine *e = make(&r, 1, &rec, BASE);
  publish(e, 0, 30, 0);
  struct engine_stats st0, st1;
  engine_get_stats(e, &st0);
  cr_expect_eq(engine_next_wake(e), BASE + MIN(40));
  cr_expect_eq(engine_tick(e, BASE + MIN(40) - 1), 0);
  engine_get_stats(e, &st1);
  cr_expect_eq(st1.evals_on_tick, st0.evals_on_tick);
  /* Ea H'Leo then goes quiet: its wake is the only one to move earlier
   * than the others', and it comes first. */
  publish(e, 31, 31, 0);
  publish(e, 32, 45, 1u << 5);
  advance(e, BASE + MIN(45));
  cr_expect_eq(rec.n, 1);
  cr_expect_eq(rec_time(&rec, "Ea H'Leo,system=igate} inactive>firing"),
               BASE + MIN(41) + 1);
  cr_expect_eq(engine_next_wake(e), BASE + MIN(55));
  engine_free(e);
  rec_free(&rec);
}

Test(engine, speaks_vietnamese_by_default_in_reasons_and_built_in_alerts) {
  struct rec rec = {0};
  struct rule_def r = share_rule();
  struct engine *e = make_in(&r, 1, &rec, BASE, ENGINE_LANG_VI);
  for (int m = 0; m <= 16; m++) {
    point(e, "igate", "Ea H'Leo", BASE + MIN(m), "received", 100, "online",
          25);
    advance(e, BASE + MIN(m));
  }
  cr_assert_eq(rec.n, 2);
  cr_expect(strstr(rec.lines[1],
                   "reason=[mẫu igate.received{district=\"Ea "
                   "H'Leo\",system=\"igate\"}=100 lúc "
                   "2021-03-01T09:15:00+07:00"
                   ": điều kiện đúng, giá trị 0.25, ngưỡng 0.3]") != NULL,
            "%s", rec.lines[1]);
  engine_set_broker_up(e, false, BASE + MIN(20));
  cr_assert_eq(rec.n, 3);
  cr_expect(strstr(rec.lines[2], "reason=[broker lúc 2021-03-01T09:20:00+07:00"
                                 ": iocd không kết nối được MQTT broker]") !=
                NULL,
            "%s", rec.lines[2]);
  cr_expect(strstr(rec.lines[2],
                   "summary=[iocd không kết nối được MQTT broker: mọi nguồn "
                   "dữ liệu đều có vẻ im lặng]") != NULL,
            "%s", rec.lines[2]);
  /* A reload to English: the next reason is in English. */
  cr_assert_eq(engine_set_lang(e, ENGINE_LANG_EN), IOCD_OK);
  engine_set_broker_up(e, true, BASE + MIN(21));
  cr_assert_eq(rec.n, 4);
  cr_expect(strstr(rec.lines[3], "reason=[broker at 2021-03-01T09:21:00+07:00"
                                 ": iocd reaches its MQTT broker again]") !=
                NULL,
            "%s", rec.lines[3]);
  engine_free(e);
  rec_free(&rec);
}

Test(engine, broker_down_is_one_alert_and_silence_restarts_fairly) {
  struct rec rec = {0};
  const char *expected[30];
  struct rule_def r = silent_rule(expected);
  struct engine *e = make(&r, 1, &rec, BASE);
  publish(e, 0, 5, 0);
  engine_set_broker_up(e, false, BASE + MIN(5) + SEC(30));
  engine_set_broker_up(e, false, BASE + MIN(6));
  advance(e, BASE + MIN(35));
  /* One alert, fifteen held back. */
  cr_expect_eq(rec.n, 1);
  cr_expect_eq(rec_count(&rec, "iocd_broker_unreachable inactive>firing "
                               "sev=critical by=broker"),
               1);
  struct engine_stats st;
  engine_get_stats(e, &st);
  cr_expect_eq(st.held, 15);
  engine_set_broker_up(e, true, BASE + MIN(35));
  cr_expect_eq(rec.n, 2);
  cr_expect_eq(rec_count(&rec, "iocd_broker_unreachable firing>resolved"), 1);
  /* Ten districts come back within the next minutes, five do not. */
  publish(e, 36, 50, 0x7c00);
  advance(e, BASE + MIN(50));
  cr_expect_eq(rec.n, 7, "the broker twice and five districts");
  cr_expect_eq(rec_count(&rec, "feed_silent"), 5);
  /* Not at once because the data was old: 10 minutes after the return. */
  cr_expect_eq(rec_time(&rec, "feed_silent"), BASE + MIN(45) + 1);
  cr_expect_eq(rec_count(&rec, "Buôn Hồ"), 0);
  cr_expect_eq(rec_count(&rec, "M'Đrắk,system=igate} inactive>firing"), 1);
  engine_free(e);
  rec_free(&rec);
}

/* ---- working time -------------------------------------------------------- */

/* 2021-MM-DD HH:MM at +07:00. */
static int64_t vn(int mo, int d, int h, int mi) {
  int64_t day = calendar_day_from_ymd(2021, mo, d);
  return SEC(day * 86400 + h * 3600 + mi * 60 - 7 * 3600);
}

Test(engine, idesk_stalled_means_two_office_hours_across_lunch_weekend_tet) {
  static const struct cal_dates holidays[] = {{18668, 18674}};
  static const struct cal_dates workdays[] = {{18678, 18678}};
  cr_assert_eq(calendar_day_from_ymd(2021, 2, 10), 18668);
  cr_assert_eq(calendar_day_from_ymd(2021, 2, 20), 18678);
  struct calendar_def cal = {.holidays = holidays,
                             .nholidays = 1,
                             .workdays = workdays,
                             .nworkdays = 1};
  /* The counter is sampled every 10 minutes and its last increase shows
   * between the samples at stop - 10m and stop: increase() over [2wh] is
   * 0 once the stop - 10m sample has left the window, two office hours
   * after it. */
  const struct {
    const char *what;
    int64_t stop, want;
  } cases[] = {
      /* 10:20-11:30 and 13:30-14:20. */
      {"lunch", vn(3, 1, 10, 30), vn(3, 1, 14, 20)},
      /* Friday 15:50-17:00, Monday 07:30-08:20. */
      {"weekend", vn(3, 5, 16, 0), vn(3, 8, 8, 20)},
      /* The day before Tết, then the first day after it. */
      {"tet", vn(2, 9, 16, 0), vn(2, 17, 8, 20)},
      /* Friday, then the make-up Saturday. */
      {"make-up saturday", vn(2, 19, 16, 0), vn(2, 20, 8, 20)},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    struct rec rec = {0};
    struct rule_def r = {
        .name = "idesk_stalled",
        .expr = "increase(idesk.documents_sent[2wh]) == 0",
        .by = BY_DISTRICT,
        .nby = 1,
        .working_time_only = true,
    };
    struct engine_opts o = {.calendars = &cal,
                            .ncalendars = 1,
                            .on_event = on_event,
                            .event_ud = &rec,
                            .start_ns = cases[c].stop - HOUR(24 * 10)};
    struct rule_error re = {0};
    struct engine *e = NULL;
    cr_assert_eq(engine_new(&o, &r, 1, &e, &re), IOCD_OK, "%s", re.err.msg);
    /* A counter sampled every 10 minutes, day and night, that stops
     * counting at `stop`. */
    double count = 0;
    for (int64_t t = cases[c].stop - HOUR(24 * 10);
         t <= cases[c].want + HOUR(2); t += MIN(10)) {
      advance(e, t - 1);
      if (t <= cases[c].stop) {
        count += 1;
      }
      sample(e, "idesk", "documents_sent", "district", "Lắk", t, count);
    }
    cr_expect_eq(rec_count(&rec, "inactive>firing"), 1, "%s", cases[c].what);
    int64_t got = rec_time(&rec, "inactive>firing");
    cr_expect_eq(got, cases[c].want, "%s: fired %lld min off",
                 cases[c].what, (long long)((got - cases[c].want) / MIN(1)));
    if (rec_count(&rec, "inactive>firing") != 1) {
      rec_dump(&rec);
    }
    engine_free(e);
    rec_free(&rec);
  }
}

Test(engine, a_firing_working_time_alert_is_not_resolved_on_a_holiday) {
  struct rec rec = {0};
  struct rule_def r = {.name = "w",
                       .expr = "m.v > 1",
                       .working_time_only = true,
                       .missing = ALERT_MISSING_OK};
  struct engine *e = make(&r, 1, &rec, BASE);
  sample(e, "m", "v", NULL, NULL, vn(3, 5, 16, 0), 5);
  cr_expect_eq(rec_count(&rec, "inactive>firing"), 1);
  /* Saturday: the value drops and goes stale; nothing happens. */
  sample(e, "m", "v", NULL, NULL, vn(3, 6, 9, 0), 0);
  advance(e, vn(3, 7, 23, 0));
  cr_expect_eq(rec.n, 1);
  /* Monday morning it resolves (the data is stale: missing is ok). */
  advance(e, vn(3, 8, 8, 0));
  cr_expect_eq(rec.n, 2);
  cr_expect_eq(rec_time(&rec, "firing>resolved"), vn(3, 8, 7, 30));
  engine_free(e);
  rec_free(&rec);
}

/* ---- persistence and reload ---------------------------------------------- */

Test(engine, save_then_restore_does_not_announce_again) {
  struct rec rec = {0};
  struct rule_def r = share_rule();
  r.for_ns = 0;
  struct engine *e = make(&r, 1, &rec, BASE);
  point(e, "igate", "Lắk", BASE, "received", 100, "online", 10);
  point(e, "igate", "Ea Kar", BASE, "received", 100, "online", 10);
  point(e, "igate", "Ea Kar", BASE + MIN(1), "received", 100, "online", 50);
  cr_expect_eq(rec.n, 3);
  struct buf text;
  buf_init(&text, 1 << 20);
  cr_assert_eq(engine_state_save(e, &text), IOCD_OK);
  engine_free(e);
  rec_free(&rec);
  cr_expect(strstr(text.data, "\"state\":\"firing\"") != NULL, "%s",
            text.data);
  cr_expect(strstr(text.data, "Ea Kar") == NULL, "inactive is not saved");

  /* Restart: a new engine, the same rules, the state restored. */
  e = make(&r, 1, &rec, BASE + MIN(5));
  struct engine_restore_report rep;
  struct iocd_err err = {{0}};
  cr_assert_eq(engine_state_restore(e, text.data, text.len, &rep, &err),
               IOCD_OK, "%s", err.msg);
  cr_expect_eq(rep.restored, 1);
  struct engine_stats st;
  engine_get_stats(e, &st);
  cr_expect_eq(st.firing, 1);
  /* The store is empty after a restart: no nodata during the warm-up. */
  advance(e, BASE + MIN(6));
  point(e, "igate", "Lắk", BASE + MIN(7), "received", 100, "online", 10);
  cr_expect_eq(rec.n, 0, "%s", rec.n ? rec.lines[0] : "");
  point(e, "igate", "Lắk", BASE + MIN(8), "received", 100, "online", 50);
  cr_expect_eq(rec.n, 1);
  cr_expect_eq(rec_count(&rec, "online_share{district=Lắk} firing>resolved"),
               1);
  engine_free(e);
  rec_free(&rec);

  /* A changed rule is not restored. */
  r.expr = "igate.online / igate.received < 0.5";
  e = make(&r, 1, &rec, BASE);
  cr_assert_eq(engine_state_restore(e, text.data, text.len, &rep, &err),
               IOCD_OK);
  cr_expect_eq(rep.restored, 0);
  cr_expect_eq(rep.changed, 1);
  engine_free(e);
  buf_cleanup(&text);
}

Test(engine, a_damaged_state_file_restores_nothing) {
  struct rec rec = {0};
  struct rule_def r = share_rule();
  struct engine *e = make(&r, 1, &rec, BASE);
  static const struct {
    const char *text;
    const char *msg;
  } cases[] = {
      {"not json", "state: not JSON"},
      {"{\"version\":2,\"alerts\":[]}", "version"},
      {"{\"version\":1,\"alerts\":[{\"rule\":\"online_share\",\"hash\":\"x\","
       "\"group\":{},\"state\":\"fire\",\"level\":1}]}",
       "alerts[0].state: \"fire\" is not a state"},
      {"{\"version\":1,\"alerts\":[{\"rule\":\"online_share\",\"hash\":\"x\","
       "\"group\":{},\"state\":\"firing\",\"level\":1,\"since\":\"12x\"}]}",
       "alerts[0].since"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct iocd_err err = {{0}};
    cr_expect_eq(engine_state_restore(e, cases[i].text,
                                      strlen(cases[i].text), NULL, &err),
                 IOCD_ECORRUPT, "case %zu", i);
    cr_expect(strstr(err.msg, cases[i].msg) != NULL, "%s", err.msg);
  }
  engine_free(e);
}

Test(engine, reconfigure_keeps_unchanged_rules_and_resets_changed_ones) {
  struct rec rec = {0};
  struct rule_def rules[] = {
      {.name = "keep", .expr = "m.v > 1", .by = BY_DISTRICT, .nby = 1},
      {.name = "change", .expr = "m.v > 2", .by = BY_DISTRICT, .nby = 1},
      {.name = "gone", .expr = "m.v > 3", .by = BY_DISTRICT, .nby = 1},
  };
  struct engine *e = make(rules, 3, &rec, BASE);
  sample(e, "m", "v", "district", "Lắk", BASE, 5);
  cr_expect_eq(rec.n, 3);
  const char *h = engine_rule_hash(e, "keep");
  cr_assert_not_null(h);
  char keep_hash[17];
  snprintf(keep_hash, sizeof keep_hash, "%s", h);
  rec_free(&rec);
  static const struct alert_kv notes[] = {{"summary", "new text"}};
  struct rule_def next[] = {
      {.name = "change", .expr = "m.v > 4", .by = BY_DISTRICT, .nby = 1},
      /* Same definition, written differently, with a new annotation. */
      {.name = "keep",
       .expr = "m.v>1",
       .by = BY_DISTRICT,
       .nby = 1,
       .annotations = notes,
       .nannotations = 1},
  };
  struct rule_error re = {0};
  cr_assert_eq(engine_reconfigure(e, NULL, 0, next, 2, BASE + MIN(1), &re),
               IOCD_OK, "%s", re.err.msg);
  cr_expect_str_eq(engine_rule_hash(e, "keep"), keep_hash);
  cr_expect_eq(rec.n, 2, "change and gone resolve");
  cr_expect_eq(rec_count(&rec, "change{district=Lắk} firing>resolved "
                               "sev=warning by=reload"),
               1);
  cr_expect_eq(rec_count(&rec, "gone{district=Lắk} firing>resolved"), 1);
  rec_free(&rec);
  sample(e, "m", "v", "district", "Lắk", BASE + MIN(2), 5);
  cr_expect_eq(rec.n, 1, "only the changed rule fires again");
  cr_expect_eq(rec_count(&rec, "change{district=Lắk} inactive>firing"), 1);
  struct engine_stats st;
  engine_get_stats(e, &st);
  cr_expect_eq(st.firing, 2);
  /* A bad reload changes nothing. */
  struct rule_def bad = {.name = "keep", .expr = "m.v >", .nby = 0};
  cr_expect_eq(engine_reconfigure(e, NULL, 0, &bad, 1, BASE + MIN(3), &re),
               IOCD_EPARSE);
  engine_get_stats(e, &st);
  cr_expect_eq(st.rules, 2);
  engine_free(e);
  rec_free(&rec);
}

/* More rules read a point's labels than the engine remembers instances
 * for (16): each still finds its own. */
Test(engine, twenty_rules_on_the_same_labels_each_find_their_instance) {
  struct rec rec = {0};
  struct rule_def rules[20];
  char names[20][16], exprs[20][32];
  for (int i = 0; i < 20; i++) {
    snprintf(names[i], sizeof names[i], "r%02d", i);
    snprintf(exprs[i], sizeof exprs[i], "m.v > %d", i);
    rules[i] = (struct rule_def){
        .name = names[i], .expr = exprs[i], .by = BY_DISTRICT, .nby = 1};
  }
  struct engine *e = make(rules, 20, &rec, BASE);
  for (int round = 0; round < 3; round++) {
    sample(e, "m", "v", "district", "Lắk", BASE + MIN(2 * round), 9.5);
    sample(e, "m", "v", "district", "Lắk", BASE + MIN(2 * round + 1), -1);
  }
  /* r00..r09 fire and resolve three times, r10..r19 never. */
  cr_expect_eq(rec.n, 60);
  for (int i = 0; i < 20; i++) {
    char any[64], resolve[64];
    snprintf(any, sizeof any, "r%02d{district=Lắk} ", i);
    snprintf(resolve, sizeof resolve, "r%02d{district=Lắk} firing>resolved",
             i);
    cr_expect_eq(rec_count(&rec, any), i < 10 ? 6 : 0, "%s", any);
    cr_expect_eq(rec_count(&rec, resolve), i < 10 ? 3 : 0, "%s", resolve);
  }
  struct engine_stats st;
  engine_get_stats(e, &st);
  cr_expect_eq(st.instances, 21, "20 rules for Lắk and the broker alert");
  cr_expect_eq(st.evals_on_sample, 6 * 20);
  engine_free(e);
  rec_free(&rec);
}

static void count_listed(void *ud, const struct alert_event *ev) {
  size_t *n = ud;
  (*n)++;
  cr_expect_eq(ev->prev, ev->state);
  cr_expect_eq(ev->state, ALERT_FIRING);
  cr_expect_eq(ev->nannotations, 2);
  cr_expect(strstr(ev->annotations[0].value, "Lắk") != NULL);
}

Test(engine, lists_active_instances_with_rendered_annotations) {
  struct rec rec = {0};
  struct rule_def r = share_rule();
  r.for_ns = 0;
  struct engine *e = make(&r, 1, &rec, BASE);
  point(e, "igate", "Lắk", BASE, "received", 100, "online", 10);
  point(e, "igate", "Ea Kar", BASE, "received", 100, "online", 90);
  size_t n = 0;
  engine_list(e, count_listed, &n);
  cr_expect_eq(n, 1);
  engine_free(e);
  rec_free(&rec);
}

/* ---- definitions and templates ------------------------------------------- */

Test(engine, bad_rules_are_reported_with_where_and_column) {
  static const struct rule_level bad_level[] = {
      {"warning", "a.b < 1", NULL},
      {"critical", "a.b < (1", NULL},
  };
  const struct {
    struct rule_def def;
    int rc;
    const char *where;
    int col;
    const char *msg;
  } cases[] = {
      {{.name = "x", .expr = "igate.received > 15x"},
       IOCD_EPARSE, "expr", 20, "rules[0] x: expr: column 20: unknown unit"},
      {{.name = "x", .expr = "a.b < 1", .clear = "a.b >"},
       IOCD_EPARSE, "clear", 6, "clear: column 6"},
      {{.name = "x", .expr = "a.b < 1", .guard = "avg(a.b)"},
       IOCD_EPARSE, "guard", 8, "needs a range"},
      {{.name = "x", .levels = bad_level, .nlevels = 2},
       IOCD_EPARSE, "levels[1].expr", 9, "levels[1].expr: column 9"},
      {{.name = "x y", .expr = "a.b < 1"}, IOCD_EINVAL, "name", 0,
       "is not a rule name"},
      {{.name = "x"}, IOCD_EINVAL, "expr", 0, "missing"},
      {{.name = "x", .expr = "a.b < 1", .for_ns = -1}, IOCD_EINVAL, "for", 0,
       "negative"},
      {{.name = "x",
        .expr = "a.b < 1",
        .annotations = (const struct alert_kv[]){{"s", "{{value|pc}}"}},
        .nannotations = 1},
       IOCD_EPARSE, "annotations.s", 0, "unknown filter 'pc'"},
      {{.name = "x",
        .expr = "a.b < 1",
        .annotations = (const struct alert_kv[]){{"s", "{{value"}},
        .nannotations = 1},
       IOCD_EPARSE, "annotations.s", 0, "without a closing"},
      {{.name = "x", .expr = "x.y[2wh] > 1"}, IOCD_EPARSE, "expr", 4,
       "a range is allowed only inside"},
      {{.name = "x", .expr = "2wh > 1"}, IOCD_EPARSE, "expr", 1,
       "working-time durations (wh, wm) are allowed only in a range"},
      {{.name = "x", .expr = "increase(x.y[1h30wm]) > 1"}, IOCD_EPARSE,
       "expr", 16, "cannot mix working time"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct rule_error re = {0};
    int rc = engine_check_rule(&cases[i].def, &re);
    cr_expect_eq(rc, cases[i].rc, "case %zu: %s", i, re.err.msg);
    cr_expect_str_eq(re.where, cases[i].where, "case %zu", i);
    cr_expect_eq(re.col, cases[i].col, "case %zu: %s", i, re.err.msg);
    cr_expect(strstr(re.err.msg, cases[i].msg) != NULL, "case %zu: %s", i,
              re.err.msg);
  }
  /* The engine adds what needs the whole set. */
  struct rule_def two[] = {
      {.name = "x", .expr = "a.b < 1"},
      {.name = "x", .expr = "a.b < 2"},
  };
  struct rule_error re = {0};
  struct engine *e = NULL;
  cr_expect_eq(engine_new(NULL, two, 2, &e, &re), IOCD_EINVAL);
  cr_expect_eq(re.rule, 1);
  cr_expect(strstr(re.err.msg, "a second rule with this name") != NULL);
  struct rule_def cal = {.name = "c",
                         .expr = "a.b < 1 and during(\"tet\")"};
  cr_expect_eq(engine_new(NULL, &cal, 1, &e, &re), IOCD_EINVAL);
  cr_expect(strstr(re.err.msg, "during(\"tet\"): no calendar") != NULL, "%s",
            re.err.msg);
  cr_expect_null(e);
}

Test(engine, renders_templates_with_numbers_in_the_engines_language) {
  const char *keys[] = {"district"};
  const char *vals[] = {"Ea H'Leo"};
  struct group g = {.keys = keys, .values = vals, .n = 1};
  struct alert_kv labels[] = {{"team", "Sở TT&TT"}};
  struct alert_event ev = {.rule = "online_share",
                           .group = &g,
                           .labels = labels,
                           .nlabels = 1,
                           .state = ALERT_FIRING,
                           .severity = "warning",
                           .has_value = true,
                           .value = 0.2834,
                           .has_threshold = true,
                           .threshold = 0.3};
  static const struct {
    const char *tmpl;
    const char *vi, *en;
  } cases[] = {
      {"{{district}}", "Ea H'Leo", "Ea H'Leo"},
      {"{{ $labels.district }}", "Ea H'Leo", "Ea H'Leo"},
      {"{{value|pct}} < {{threshold|pct}}", "28,34% < 30%", "28.34% < 30%"},
      {"{{ value | pct }}", "28,34%", "28.34%"},
      {"{{value}}", "0,28", "0.28"},
      {"{{threshold}}", "0,3", "0.3"},
      {"{{value|int}}", "0", "0"},
      {"{{team}}: {{rule}} {{severity}} {{state}}",
       "Sở TT&TT: online_share warning firing",
       "Sở TT&TT: online_share warning firing"},
      {"{{nosuch}}x", "x", "x"},
      {"Huyện {{district}} — cảnh báo", "Huyện Ea H'Leo — cảnh báo",
       "Huyện Ea H'Leo — cảnh báo"},
      {"no braces { } }}", "no braces { } }}", "no braces { } }}"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    for (int l = 0; l < 2; l++) {
      struct buf b;
      buf_init(&b, 4096);
      cr_expect_eq(engine_render(cases[i].tmpl, &ev,
                                 l ? ENGINE_LANG_EN : ENGINE_LANG_VI, &b, NULL),
                   IOCD_OK);
      cr_expect_str_eq(b.data ? b.data : "", l ? cases[i].en : cases[i].vi,
                       "%s (%s)", cases[i].tmpl, l ? "en" : "vi");
      buf_cleanup(&b);
    }
  }
  /* Counts: whole, rounded, grouped by thousands. */
  static const struct {
    double v;
    const char *tmpl, *vi, *en;
  } counts[] = {
      {1410312, "{{value}}", "1.410.312", "1,410,312"},
      {1410312.5, "{{value|int}}", "1.410.313", "1,410,313"},
      {1410312.4, "{{value|int}}", "1.410.312", "1,410,312"},
      {-2.5, "{{value|int}}", "-3", "-3"},
      {250, "{{value}} (ngưỡng {{threshold}})", "250 (ngưỡng 0,3)",
       "250 (ngưỡng 0.3)"},
      {0.1061, "{{value|pct}}", "10,61%", "10.61%"},
  };
  for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
    ev.value = counts[i].v;
    for (int l = 0; l < 2; l++) {
      struct buf b;
      buf_init(&b, 4096);
      cr_expect_eq(engine_render(counts[i].tmpl, &ev,
                                 l ? ENGINE_LANG_EN : ENGINE_LANG_VI, &b, NULL),
                   IOCD_OK);
      cr_expect_str_eq(b.data ? b.data : "", l ? counts[i].en : counts[i].vi,
                       "%s with %g (%s)", counts[i].tmpl, counts[i].v,
                       l ? "en" : "vi");
      buf_cleanup(&b);
    }
  }
  ev.has_value = false;
  struct buf b;
  buf_init(&b, 4096);
  cr_expect_eq(engine_render("{{value|pct}} {{value}} {{value|int}}", &ev,
                             ENGINE_LANG_VI, &b, NULL),
               IOCD_OK);
  cr_expect_str_eq(b.data, "- - -");
  buf_cleanup(&b);
}

Test(engine, annotations_write_numbers_in_the_engines_language) {
  struct rec rec = {0};
  struct rule_def r = share_rule();
  struct engine *e = make_in(&r, 1, &rec, BASE, ENGINE_LANG_VI);
  for (int m = 0; m <= 16; m++) {
    point(e, "igate", "Ea H'Leo", BASE + MIN(m), "received", 10000, "online",
          2834);
    advance(e, BASE + MIN(m));
  }
  cr_assert_eq(rec.n, 2);
  cr_expect(strstr(rec.lines[1],
                   "summary=[Tỷ lệ hồ sơ trực tuyến của Ea H'Leo là 28,34%, "
                   "dưới mục tiêu 30%]") != NULL,
            "%s", rec.lines[1]);
  cr_expect(strstr(rec.lines[1], "raw=[0,28/0,3 online_share") != NULL, "%s",
            rec.lines[1]);
  /* A reload to English: the alerts listed now read the English way. */
  cr_assert_eq(engine_set_lang(e, ENGINE_LANG_EN), IOCD_OK);
  engine_list(e, on_event, &rec);
  cr_assert_eq(rec.n, 3);
  cr_expect(strstr(rec.lines[2],
                   "summary=[Tỷ lệ hồ sơ trực tuyến của Ea H'Leo là 28.34%, "
                   "dưới mục tiêu 30%]") != NULL,
            "%s", rec.lines[2]);
  cr_expect(strstr(rec.lines[2], "raw=[0.28/0.3 online_share") != NULL, "%s",
            rec.lines[2]);
  engine_free(e);
  rec_free(&rec);
}

Test(engine, the_same_input_gives_the_same_events) {
  char *runs[2] = {NULL, NULL};
  for (int run = 0; run < 2; run++) {
    struct rec rec = {0};
    const char *expected[30];
    struct rule_def rules[2] = {silent_rule(expected), share_rule()};
    struct engine *e = make(rules, 2, &rec, BASE);
    for (int m = 0; m < 40; m++) {
      advance(e, BASE + MIN(m) - 1);
      for (int i = 0; i < 15; i++) {
        if ((m + i) % 7 == 0) {
          continue;
        }
        point(e, "igate", DISTRICTS[i], BASE + MIN(m), "received",
              20 + (m * i) % 30, "online", (m + i) % 9);
      }
    }
    advance(e, BASE + HOUR(2));
    struct buf b;
    buf_init(&b, 1 << 24);
    for (size_t i = 0; i < rec.n; i++) {
      buf_printf(&b, "%lld %s\n", (long long)rec.t[i], rec.lines[i]);
    }
    cr_expect_gt(rec.n, 10);
    runs[run] = buf_detach(&b, NULL);
    engine_free(e);
    rec_free(&rec);
  }
  cr_expect_str_eq(runs[0], runs[1]);
  free(runs[0]);
  free(runs[1]);
}

/* ---- parity with Prometheus ---------------------------------------------- */

/* Replays series as promtool does (one sample a minute, "_" none) and
 * evaluates every rule each minute, as a Prometheus group with a 1m
 * interval. Returns the events. */
static void replay(const struct rule_def *r, const char *meas,
                   const char *k, const char *v, const char *values,
                   int minutes, struct rec *rec) {
  struct engine_opts o = {.on_event = on_event,
                          .event_ud = rec,
                          .freshness_ns = MIN(5)};
  struct engine *e = NULL;
  struct rule_error re = {0};
  cr_assert_eq(engine_new(&o, r, 1, &e, &re), IOCD_OK, "%s", re.err.msg);
  const char *p = values;
  for (int m = 0; m <= minutes; m++) {
    while (*p == ' ') {
      p++;
    }
    if (*p && *p != '_') {
      char *end;
      double x = strtod(p, &end);
      sample(e, meas, "v", k, v, BASE + MIN(m), x);
      p = end;
    } else if (*p) {
      p++;
    }
    engine_eval_all(e, BASE + MIN(m));
  }
  engine_free(e);
}

Test(engine_parity, for_5m_fires_and_resolves_when_prometheus_does) {
  struct rec rec = {0};
  struct rule_def r = {.name = "LowShareFor5m",
                       .expr = "share.v{case=\"for\"} < 0.3",
                       .for_ns = MIN(5),
                       .missing = ALERT_MISSING_OK};
  replay(&r, "share", "case", "for",
         "0.5 0.2 0.2 0.2 0.2 0.2 0.2 0.2 0.2 0.5 0.5 0.5", 11, &rec);
  /* tests/promtool/parity_test.yml: firing at 6m, not at 5m; gone at 9m. */
  cr_expect_eq(rec_time(&rec, "inactive>pending"), BASE + MIN(1));
  cr_expect_eq(rec_time(&rec, "pending>firing"), BASE + MIN(6));
  cr_expect_eq(rec_time(&rec, "firing>resolved"), BASE + MIN(9));
  cr_expect_eq(rec.n, 3);
  rec_free(&rec);
}

Test(engine_parity, keep_firing_for_resolves_when_prometheus_does) {
  struct rec rec = {0};
  struct rule_def r = {.name = "LowShareKeepFiring",
                       .expr = "share.v{case=\"keep\"} < 0.3",
                       .keep_firing_for_ns = MIN(3),
                       .missing = ALERT_MISSING_OK};
  replay(&r, "share", "case", "keep", "0.2 0.2 0.2 0.5 0.5 0.5 0.5 0.5 0.5",
         9, &rec);
  cr_expect_eq(rec_time(&rec, "inactive>firing"), BASE);
  cr_expect_eq(rec_time(&rec, "firing>resolved"), BASE + MIN(6));
  cr_expect_eq(rec.n, 2);
  rec_free(&rec);
}

Test(engine_parity, absent_fires_when_prometheus_does) {
  struct rec rec = {0};
  struct rule_def r = {.name = "HeartbeatAbsent",
                       .expr = "absent(heartbeat.v{district=\"A\"})",
                       .for_ns = MIN(2)};
  replay(&r, "heartbeat", "district", "A", "1 1 1 1 1", 13, &rec);
  /* The 4m sample is fresh up to 9m (exactly 5m old counts): absent from
   * 10m, firing at 12m. */
  cr_expect_eq(rec_time(&rec, "inactive>pending"), BASE + MIN(10));
  cr_expect_eq(rec_time(&rec, "pending>firing"), BASE + MIN(12));
  rec_free(&rec);
}

Test(engine_parity, promtool_agrees_with_the_same_cases) {
  const char *file = __FILE__;
  const char *slash = strrchr(file, '/');
  if (file[0] != '/' || !slash) {
    cr_skip_test("promtool check skipped: the test does not know the "
                 "source directory (__FILE__ is %s)",
                 file);
  }
  char dir[4096];
  snprintf(dir, sizeof dir, "%.*s/../promtool", (int)(slash - file), file);
  const char *prom = NULL;
  static const char *const where[] = {"/usr/bin/promtool",
                                      "/usr/local/bin/promtool"};
  for (size_t i = 0; i < 2; i++) {
    if (access(where[i], X_OK) == 0) {
      prom = where[i];
    }
  }
  if (!prom) {
    cr_skip_test("promtool is not installed (Debian: apt-get install "
                 "prometheus, never start the service): the Prometheus "
                 "side of the parity cases was not checked");
  }
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    if (chdir(dir) != 0) {
      _exit(126);
    }
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) {
      dup2(fd, 1);
    }
    execl(prom, "promtool", "test", "rules", "parity_test.yml", (char *)NULL);
    _exit(127);
  }
  int status = 0;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status));
  cr_expect_eq(WEXITSTATUS(status), 0,
               "promtool test rules %s/parity_test.yml failed (exit %d)",
               dir, WEXITSTATUS(status));
}

/* ---- the language additions the engine relies on ------------------------- */

static struct expr *parse_ok(const char *text) {
  struct iocd_err err = {{0}};
  struct expr *x = expr_parse(text, &err, NULL);
  cr_assert_not_null(x, "%s: %s", text, err.msg);
  return x;
}

Test(engine_expr, working_ranges_print_and_report_their_working_length) {
  struct expr *x = parse_ok("increase(idesk.documents_sent[90wm]) == 0");
  cr_expect_str_eq(expr_to_string(x),
                   "increase(idesk.documents_sent[1wh30wm]) == 0");
  size_t n;
  const struct expr_read *rd = expr_reads(x, &n);
  cr_assert_eq(n, 1);
  cr_expect_eq(rd[0].range_ns, 0);
  cr_expect_eq(rd[0].working_ns, MIN(90));
  cr_expect(expr_uses_working(x));
  cr_expect_not(expr_uses_silence(x));
  /* Without a calendar the range is MISSING, not a guess. */
  struct series_store *st = series_store_new(NULL);
  cr_assert_eq(series_store_want_expr(st, x), IOCD_OK);
  struct eval_ctx c = {.t_ns = BASE, .store = st};
  struct expr_value v;
  expr_eval(x, &c, &v);
  cr_expect(v.missing);
  cr_expect_eq(v.why, EXPR_WHY_NO_CALENDAR);
  series_store_free(st);
  expr_free(x);
}

Test(engine_expr, horizon_is_when_time_alone_can_change_the_value) {
  struct series_store *st = series_store_new(NULL);
  cr_assert_not_null(st);
  cr_assert_eq(series_store_want(st, "m", "v", MIN(5)), IOCD_OK);
  cr_assert_eq(series_store_want(st, "m", NULL, 0), IOCD_OK);
  struct series_label l = {"district", "Lắk"};
  cr_assert_eq(series_store_add(st, "m", "v", &l, 1, BASE, 5, NULL, NULL),
               IOCD_OK);
  cr_assert_eq(series_store_add(st, "m", "v", &l, 1, BASE + MIN(1), 5, NULL,
                                NULL),
               IOCD_OK);
  const struct {
    const char *text;
    int64_t want;
  } cases[] = {
      /* The newest sample (1m) turns stale after 10 minutes. */
      {"m.v > 1", BASE + MIN(11) + 1},
      /* The oldest sample in the window leaves it. */
      {"avg(m.v[5m]) > 1", BASE + MIN(5)},
      /* age() reaches 10m; a strict comparison flips just after. */
      {"age(m.v) > 10m", BASE + MIN(11)},
      {"age(m) >= 3m", BASE + MIN(4)},
      /* age() not compared with a constant: look again in a second. */
      {"age(m.v) * 2 > 10m", BASE + MIN(2) + SEC(1)},
      {"absent(m.v)", BASE + MIN(11) + 1},
      {"3 > 1", INT64_MAX},
      {"m.v{district=\"Ea Kar\"} > 1", INT64_MAX},
  };
  struct eval_ctx c = {.t_ns = BASE + MIN(2), .store = st};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct expr *x = parse_ok(cases[i].text);
    cr_expect_eq(expr_horizon(x, &c), cases[i].want, "%s: %lld s off",
                 cases[i].text,
                 (long long)((expr_horizon(x, &c) - cases[i].want) /
                             SEC(1)));
    expr_free(x);
  }
  /* A sample stamped ahead of the evaluation comes into existence. */
  cr_assert_eq(series_store_add(st, "m", "v", &l, 1, BASE + MIN(4), 7, NULL,
                                NULL),
               IOCD_OK);
  struct expr *x = parse_ok("m.v > 6");
  cr_expect_eq(expr_horizon(x, &c), BASE + MIN(4));
  expr_free(x);
  series_store_free(st);
}

Test(engine_expr, silence_is_not_counted_before_heard_since) {
  struct series_store *st = series_store_new(NULL);
  cr_assert_eq(series_store_want(st, "m", "v", 0), IOCD_OK);
  struct series_label l = {"district", "Lắk"};
  cr_assert_eq(series_store_add(st, "m", "v", &l, 1, BASE, 5, NULL, NULL),
               IOCD_OK);
  struct expr *age = parse_ok("age(m.v)");
  struct expr *abs = parse_ok("absent(m.v{district=\"Ea Kar\"})");
  struct expr *val = parse_ok("m.v");
  struct eval_ctx c = {.t_ns = BASE + MIN(30), .store = st};
  struct expr_value v;
  expr_eval(age, &c, &v);
  cr_expect_eq(v.v, 1800);
  expr_eval(abs, &c, &v);
  cr_expect_eq(v.v, 1, "never seen, no floor: absent");
  /* The broker came back 2 minutes ago. */
  c.heard_since_ns = BASE + MIN(28);
  expr_eval(age, &c, &v);
  cr_expect_eq(v.v, 120);
  expr_eval(abs, &c, &v);
  cr_expect_eq(v.v, 0, "not absent before a whole freshness was heard");
  c.t_ns = BASE + MIN(39);
  expr_eval(abs, &c, &v);
  cr_expect_eq(v.v, 1);
  /* Values are never made up: the instant selector stays stale. */
  expr_eval(val, &c, &v);
  cr_expect(v.missing);
  cr_expect_eq(v.why, EXPR_WHY_STALE);
  expr_free(age);
  expr_free(abs);
  expr_free(val);
  series_store_free(st);
}

Test(engine, a_second_calendar_of_the_same_name_is_refused) {
  struct calendar_def cals[] = {{.name = "office_hours"},
                                {.name = "office_hours"}};
  struct engine_opts o = {.calendars = cals, .ncalendars = 2};
  struct rule_error re = {0};
  struct engine *e = NULL;
  cr_expect_eq(engine_new(&o, NULL, 0, &e, &re), IOCD_EINVAL);
  cr_expect_str_eq(re.where, "calendars[1]");
  cr_expect(strstr(re.err.msg, "a second calendar named office_hours") !=
                NULL,
            "%s", re.err.msg);
  cr_expect_null(e);
}
