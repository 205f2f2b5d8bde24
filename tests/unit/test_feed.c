/*
 * Feed quality per district (ingest/feed.c): messages, rejects by reason,
 * late and future timestamps, the last message and the silent periods per
 * system, counted for the districts of sources.districts, with one "other"
 * for the rest.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/stats.h"
#include "ingest/ingest.h"

#define NOW INT64_C(1601460000000000000) /* 2020-09-30T10:00:00Z */
#define SEC INT64_C(1000000000)
#define MIN (60 * SEC)

struct fx {
  struct config *cfg;
  struct stats *stats;
  struct ingest *in;
};

static void fx_init(struct fx *fx, const char *extra) {
  char text[2048];
  snprintf(text, sizeof text,
           "{\"file\": {},\n"
           " \"subscriptions\": [\n"
           "  {\"name\": \"igate\", \"topic\": \"ioc/{district}/igate\",\n"
           "   \"tags\": {\"system\": \"igate\"}},\n"
           "  {\"name\": \"other\", \"topic\": \"ioc/{district}/{system}\"},\n"
           "  {\"name\": \"flat\", \"topic\": \"flat/#\"}],\n"
           " \"sources\": {\"districts\": [\"Krông Búk\", \"Ea H'leo\"],\n"
           "             \"systems\": [\"igate\", \"idesk\"]}%s}\n",
           extra);
  struct buf errors;
  buf_init(&errors, 0);
  int rc =
      config_load_text("iocd.jsonc", text, strlen(text), &fx->cfg, &errors);
  cr_assert_eq(rc, IOCD_OK, "%s", errors.data ? errors.data : "");
  buf_cleanup(&errors);
  fx->stats = stats_new();
  struct iocd_err err = {{0}};
  fx->in = ingest_new(fx->cfg, fx->stats, NULL, NULL, &err);
  cr_assert(fx->in, "%s", err.msg);
}

static void fx_done(struct fx *fx) {
  ingest_free(fx->in);
  stats_free(fx->stats);
  config_free(fx->cfg);
}

static void publish(struct fx *fx, const char *topic, const char *payload,
                    int64_t now) {
  struct ingest_result res;
  ingest_message(fx->in, topic, payload, strlen(payload), NULL, now, &res);
}

static uint64_t counter(struct fx *fx, const char *name, const char *district) {
  struct metric *m = stats_find(fx->stats, name, "district", district, NULL);
  cr_assert(m, "%s{district=\"%s\"} is not registered", name, district);
  return m->count;
}

static uint64_t rejects(struct fx *fx, const char *district,
                        const char *reason) {
  struct metric *m = stats_find(fx->stats, "iocd_district_rejects_total",
                                "district", district, "reason", reason, NULL);
  return m ? m->count : 0;
}

Test(ingest_feed, counts_accepted_and_rejected_messages_per_district) {
  struct fx fx;
  fx_init(&fx, "");
  publish(&fx, "ioc/Krông Búk/igate", "{\"received\": 5}", NOW);
  publish(&fx, "ioc/Krông Búk/igate", "{\"received\": 6}", NOW);
  publish(&fx, "ioc/Krông Búk/igate", "{not json", NOW);
  publish(&fx, "ioc/Ea H'leo/igate", "{\"received\": \"many\"}", NOW);
  cr_expect_eq(counter(&fx, "iocd_district_messages_total", "Krông Búk"), 3);
  cr_expect_eq(
      counter(&fx, "iocd_district_messages_accepted_total", "Krông Búk"), 2);
  cr_expect_eq(rejects(&fx, "Krông Búk", "malformed"), 1);
  cr_expect_eq(rejects(&fx, "Ea H'leo", "wrong_type"), 1);
  cr_expect_eq(rejects(&fx, "Ea H'leo", "malformed"), 0);
  cr_expect_eq(
      counter(&fx, "iocd_district_messages_accepted_total", "Ea H'leo"), 0);
  fx_done(&fx);
}

Test(ingest_feed, unlisted_districts_share_one_other_bucket) {
  struct fx fx;
  fx_init(&fx, "");
  publish(&fx, "ioc/Nowhere/igate", "{\"received\": 5}", NOW);
  publish(&fx, "ioc/Elsewhere/igate", "{oops", NOW);
  cr_expect_eq(counter(&fx, "iocd_district_messages_total", "other"), 2);
  cr_expect_eq(rejects(&fx, "other", "malformed"), 1);
  cr_expect_null(stats_find(fx.stats, "iocd_district_messages_total",
                            "district", "Nowhere", NULL));
  fx_done(&fx);
}

Test(ingest_feed, a_district_written_decomposed_is_the_listed_one) {
  struct fx fx;
  fx_init(&fx, "");
  /* "Krông Búk" with combining circumflex and acute (NFD). */
  publish(&fx, "ioc/Kro\xcc\x82ng Bu\xcc\x81k/igate", "{\"received\": 1}", NOW);
  cr_expect_eq(counter(&fx, "iocd_district_messages_total", "Krông Búk"), 1);
  cr_expect_eq(counter(&fx, "iocd_district_messages_total", "other"), 0);
  fx_done(&fx);
}

Test(ingest_feed, counts_late_and_future_timestamps_accepted_or_not) {
  struct fx fx;
  fx_init(&fx,
          ", \"limits\": {\"late_after\": \"5m\", \"future_after\": "
          "\"1m\", \"max_future\": \"10m\", \"max_past\": \"1d\"}");
  char p[128];
  /* 4 min old: on time. 6 min old: late, accepted. 2 days: rejected. */
  snprintf(p, sizeof p, "{\"v\": 1, \"time\": %lld}",
           (long long)((NOW - 240 * SEC) / SEC));
  publish(&fx, "ioc/Ea H'leo/igate", p, NOW);
  snprintf(p, sizeof p, "{\"v\": 1, \"time\": %lld}",
           (long long)((NOW - 360 * SEC) / SEC));
  publish(&fx, "ioc/Ea H'leo/igate", p, NOW);
  snprintf(p, sizeof p, "{\"v\": 1, \"time\": %lld}",
           (long long)((NOW - 2 * 86400 * SEC) / SEC));
  publish(&fx, "ioc/Ea H'leo/igate", p, NOW);
  /* 2 min ahead: future, accepted. 20 min ahead: rejected. */
  snprintf(p, sizeof p, "{\"v\": 1, \"time\": %lld}",
           (long long)((NOW + 120 * SEC) / SEC));
  publish(&fx, "ioc/Ea H'leo/igate", p, NOW);
  snprintf(p, sizeof p, "{\"v\": 1, \"time\": %lld}",
           (long long)((NOW + 1200 * SEC) / SEC));
  publish(&fx, "ioc/Ea H'leo/igate", p, NOW);
  cr_expect_eq(counter(&fx, "iocd_district_late_messages_total", "Ea H'leo"),
               2);
  cr_expect_eq(counter(&fx, "iocd_district_future_messages_total", "Ea H'leo"),
               2);
  cr_expect_eq(rejects(&fx, "Ea H'leo", "time_past"), 1);
  cr_expect_eq(rejects(&fx, "Ea H'leo", "time_future"), 1);
  cr_expect_eq(
      counter(&fx, "iocd_district_messages_accepted_total", "Ea H'leo"), 3);
  fx_done(&fx);
}

Test(ingest_feed, keeps_the_arrival_of_the_last_accepted_message_per_system) {
  struct fx fx;
  fx_init(&fx, "");
  publish(&fx, "ioc/Ea H'leo/igate", "{\"v\": 1}", NOW);
  publish(&fx, "ioc/Ea H'leo/igate", "{\"v\": 1}", NOW + 30 * SEC);
  publish(&fx, "ioc/Ea H'leo/igate", "{bad", NOW + 60 * SEC);
  publish(&fx, "ioc/Ea H'leo/idesk", "{\"v\": 1}", NOW + 5 * SEC);
  publish(&fx, "ioc/Ea H'leo/imail", "{\"v\": 1}", NOW + 7 * SEC);
  struct metric *ig =
      stats_find(fx.stats, "iocd_district_last_message_seconds", "district",
                 "Ea H'leo", "system", "igate", NULL);
  struct metric *id =
      stats_find(fx.stats, "iocd_district_last_message_seconds", "district",
                 "Ea H'leo", "system", "idesk", NULL);
  struct metric *ot =
      stats_find(fx.stats, "iocd_district_last_message_seconds", "district",
                 "Ea H'leo", "system", "other", NULL);
  cr_assert(ig && id && ot);
  cr_expect_eq(ig->value, (double)(NOW + 30 * SEC) / 1e9);
  cr_expect_eq(id->value, (double)(NOW + 5 * SEC) / 1e9);
  cr_expect_eq(ot->value, (double)(NOW + 7 * SEC) / 1e9);
  /* Nothing from Krông Búk yet: no gauge, rather than one at 1970. */
  cr_expect_null(stats_find(fx.stats, "iocd_district_last_message_seconds",
                            "district", "Krông Búk", "system", "igate", NULL));
  fx_done(&fx);
}

Test(ingest_feed, a_topic_without_a_district_is_not_counted_per_district) {
  struct fx fx;
  fx_init(&fx, "");
  publish(&fx, "flat/x", "{\"v\": 1}", NOW);
  cr_expect_eq(stats_sum(fx.stats, "iocd_district_messages_total", NULL), 0);
  fx_done(&fx);
}

Test(ingest_feed, counts_nothing_without_sources_districts) {
  char text[] =
      "{\"file\": {}, \"subscriptions\": [{\"topic\": "
      "\"ioc/{district}/igate\"}]}";
  struct config *cfg = NULL;
  cr_assert_eq(config_load_text("iocd.jsonc", text, strlen(text), &cfg, NULL),
               IOCD_OK);
  struct stats *st = stats_new();
  struct iocd_err err;
  struct ingest *in = ingest_new(cfg, st, NULL, NULL, &err);
  cr_assert(in);
  ingest_message(in, "ioc/A/igate", "{bad", 4, NULL, NOW, NULL);
  struct buf b;
  buf_init(&b, 0);
  stats_render_prometheus(st, &b);
  cr_expect_null(strstr(b.data, "iocd_district_"));
  buf_cleanup(&b);
  ingest_free(in);
  stats_free(st);
  config_free(cfg);
}

/* The silent periods of a district's system and their seconds; a pair
 * that never had an accepted message has neither series (-1). */
struct silences {
  int64_t periods, seconds;
};

static struct silences silences_of(struct fx *fx, const char *district,
                                   const char *system) {
  struct metric *n = stats_find(fx->stats, "iocd_district_silent_periods_total",
                                "district", district, "system", system, NULL);
  struct metric *s = stats_find(fx->stats, "iocd_district_silent_seconds_total",
                                "district", district, "system", system, NULL);
  return (struct silences){n ? (int64_t)n->count : -1,
                           s ? (int64_t)s->count : -1};
}

Test(ingest_feed, counts_a_silent_period_for_a_gap_over_limits_silent_after) {
  static const struct {
    const char *what;
    const char *limits; /* "" keeps the default silent_after, 10m */
    int64_t gaps[3];    /* between arrivals; 0 ends the list */
    int64_t periods, seconds;
  } cases[] = {
      {"under", "", {10 * MIN - SEC}, 0, 0},
      {"at", "", {10 * MIN}, 0, 0},
      {"just over", "", {10 * MIN + 1}, 1, 600},
      {"over", "", {25 * MIN}, 1, 1500},
      {"fractions of a second summed",
       "",
       {10 * MIN + SEC / 2, 10 * MIN + SEC / 2},
       2,
       1201},
      {"short gaps never add up", "", {6 * MIN, 6 * MIN, 6 * MIN}, 0, 0},
      {"one silence among short gaps", "", {MIN, 40 * MIN, MIN}, 1, 2400},
      {"set to 30s: at",
       ", \"limits\": {\"silent_after\": \"30s\"}",
       {30 * SEC},
       0,
       0},
      {"set to 30s: over",
       ", \"limits\": {\"silent_after\": \"30s\"}",
       {31 * SEC, 29 * SEC, 45 * SEC},
       2,
       76},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct fx fx;
    fx_init(&fx, cases[i].limits);
    int64_t t = NOW;
    publish(&fx, "ioc/Ea H'leo/igate", "{\"v\": 1}", t);
    for (size_t k = 0; k < 3 && cases[i].gaps[k]; k++) {
      t += cases[i].gaps[k];
      publish(&fx, "ioc/Ea H'leo/igate", "{\"v\": 1}", t);
    }
    struct silences got = silences_of(&fx, "Ea H'leo", "igate");
    cr_expect_eq(got.periods, cases[i].periods, "%s: %lld periods",
                 cases[i].what, (long long)got.periods);
    cr_expect_eq(got.seconds, cases[i].seconds, "%s: %lld seconds",
                 cases[i].what, (long long)got.seconds);
    fx_done(&fx);
  }
}

Test(ingest_feed, counts_silences_per_system_and_unlisted_ones_as_other) {
  struct fx fx;
  fx_init(&fx, "");
  /* iGate silent for 15 minutes while iDesk sends every 5. */
  publish(&fx, "ioc/Ea H'leo/igate", "{\"v\": 1}", NOW);
  for (int m = 0; m <= 15; m += 5) {
    publish(&fx, "ioc/Ea H'leo/idesk", "{\"v\": 1}", NOW + m * MIN);
  }
  publish(&fx, "ioc/Ea H'leo/igate", "{\"v\": 1}", NOW + 15 * MIN);
  /* Neither the district nor the system is listed. */
  publish(&fx, "ioc/Nowhere/imail", "{\"v\": 1}", NOW);
  publish(&fx, "ioc/Nowhere/imail", "{\"v\": 1}", NOW + 11 * MIN);
  struct silences ig = silences_of(&fx, "Ea H'leo", "igate");
  struct silences id = silences_of(&fx, "Ea H'leo", "idesk");
  struct silences ot = silences_of(&fx, "other", "other");
  cr_expect(ig.periods == 1 && ig.seconds == 900, "%lld, %lld",
            (long long)ig.periods, (long long)ig.seconds);
  cr_expect(id.periods == 0 && id.seconds == 0);
  cr_expect(ot.periods == 1 && ot.seconds == 660);
  cr_expect_null(stats_find(fx.stats, "iocd_district_silent_periods_total",
                            "district", "Nowhere", "system", "imail", NULL));
  /* Nothing from Krông Búk: no series, like its last message. */
  cr_expect_eq(silences_of(&fx, "Krông Búk", "igate").periods, -1);
  fx_done(&fx);
}

Test(ingest_feed, measures_silence_on_arrival_not_on_payload_timestamps) {
  struct fx fx;
  fx_init(&fx, ", \"limits\": {\"max_past\": \"1d\"}");
  char p[128];
  /* Points an hour apart arriving a minute apart: no silence. */
  snprintf(p, sizeof p, "{\"v\": 1, \"time\": %lld}",
           (long long)((NOW - 60 * MIN) / SEC));
  publish(&fx, "ioc/Ea H'leo/igate", p, NOW);
  snprintf(p, sizeof p, "{\"v\": 1, \"time\": %lld}", (long long)(NOW / SEC));
  publish(&fx, "ioc/Ea H'leo/igate", p, NOW + MIN);
  cr_expect_eq(silences_of(&fx, "Ea H'leo", "igate").periods, 0);
  /* The same timestamp twice, arriving 20 minutes apart: a silence. */
  publish(&fx, "ioc/Ea H'leo/igate", p, NOW + 21 * MIN);
  struct silences got = silences_of(&fx, "Ea H'leo", "igate");
  cr_expect(got.periods == 1 && got.seconds == 1200, "%lld, %lld",
            (long long)got.periods, (long long)got.seconds);
  fx_done(&fx);
}

Test(ingest_feed, only_an_accepted_message_ends_a_silence) {
  struct fx fx;
  fx_init(&fx, "");
  publish(&fx, "ioc/Ea H'leo/igate", "{\"v\": 1}", NOW);
  publish(&fx, "ioc/Ea H'leo/igate", "{bad", NOW + 11 * MIN);
  cr_expect_eq(silences_of(&fx, "Ea H'leo", "igate").periods, 0);
  publish(&fx, "ioc/Ea H'leo/igate", "{\"v\": 1}", NOW + 12 * MIN);
  struct silences got = silences_of(&fx, "Ea H'leo", "igate");
  cr_expect(got.periods == 1 && got.seconds == 720, "%lld, %lld",
            (long long)got.periods, (long long)got.seconds);
  /* A clock that went back is no silence. */
  publish(&fx, "ioc/Ea H'leo/igate", "{\"v\": 1}", NOW);
  publish(&fx, "ioc/Ea H'leo/igate", "{\"v\": 1}", NOW + 5 * MIN);
  cr_expect_eq(silences_of(&fx, "Ea H'leo", "igate").periods, 1);
  fx_done(&fx);
}

Test(ingest_feed, a_silence_spanning_a_reload_is_still_counted) {
  struct fx fx;
  fx_init(&fx, "");
  publish(&fx, "ioc/Ea H'leo/igate", "{\"v\": 1}", NOW);
  publish(&fx, "ioc/Ea H'leo/igate", "{\"v\": 1}", NOW + 11 * MIN);
  char text[] =
      "{\"file\": {}, \"subscriptions\": [{\"topic\": "
      "\"ioc/{district}/{system}\"}],\n"
      " \"sources\": {\"districts\": [\"Ea H'leo\"], \"systems\": "
      "[\"igate\"]},\n"
      " \"limits\": {\"silent_after\": \"15m\"}}";
  struct config *next = NULL;
  cr_assert_eq(config_load_text("iocd.jsonc", text, strlen(text), &next, NULL),
               IOCD_OK);
  struct iocd_err err = {{0}};
  cr_assert_eq(ingest_reconfigure(fx.in, next, &err), IOCD_OK, "%s", err.msg);
  publish(&fx, "ioc/Ea H'leo/igate", "{\"v\": 1}", NOW + 31 * MIN);
  struct silences got = silences_of(&fx, "Ea H'leo", "igate");
  cr_expect(got.periods == 2 && got.seconds == 660 + 1200, "%lld, %lld",
            (long long)got.periods, (long long)got.seconds);
  ingest_free(fx.in);
  stats_free(fx.stats);
  config_free(fx.cfg);
  config_free(next);
}
