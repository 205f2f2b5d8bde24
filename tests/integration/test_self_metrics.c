/*
 * Self-metrics and the feed quality per district, as a Grafana on the same
 * InfluxDB sees them: iocd run as a black box against a real mosquitto and
 * a real influxd, messages published over MQTT, and iocd's own counters
 * read back from the measurement iocd_internal.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tests/harness/harness.h"

#define Q_MESSAGES                                             \
  "SELECT last(iocd_messages_total) FROM iocd_internal WHERE " \
  "host = 'it-host' AND \"subscription\" = 'igate'"

static void env_up(struct h_env *e, const char *client_id) {
  cr_assert_eq(h_env_start(e), 0);
  cr_assert_eq(
      h_env_config(
          e, client_id,
          "  \"self_metrics\": {\"interval\": \"1s\", \"host\": \"it-host\"},\n"
          "  \"limits\": {\"max_past\": \"1d\", \"max_future\": \"10m\",\n"
          "             \"late_after\": \"5m\", \"future_after\": \"1m\",\n"
          "             \"silent_after\": \"1s\"},\n"
          "  \"sources\": {\"districts\": [\"Krông Búk\", \"Ea Súp\"],\n"
          "              \"systems\": [\"igate\"]},\n"
          "  \"subscriptions\": [\n"
          "    {\"name\": \"igate\", \"topic\": \"ioc/{district}/igate\",\n"
          "     \"measurement\": \"igate\",\n"
          "     \"tags\": {\"system\": \"igate\"}}]\n"),
      0);
  cr_assert_eq(h_env_iocd_start(e), 0, "iocd did not subscribe; see %s",
               e->iocd.log);
}

static void publish(struct h_env *e, const char *topic, const char *payload) {
  cr_assert_eq(h_publish(e->mq.port, topic, payload, strlen(payload), 1, NULL),
               0);
}

Test(self_metrics_e2e, writes_its_counters_into_influxdb_as_they_grow,
     .timeout = 120) {
  struct h_env e;
  env_up(&e, "it-selfm-grow");
  for (int i = 0; i < 3; i++) {
    publish(&e, "ioc/Krông Búk/igate", "{\"received\": 1}");
  }
  cr_expect_eq(h_env_wait_count(&e, Q_MESSAGES, 3, 20000), 0,
               "iocd_messages_total 3 not in iocd_internal; see %s",
               e.iocd.log);
  for (int i = 0; i < 2; i++) {
    publish(&e, "ioc/Krông Búk/igate", "{\"received\": 1}");
  }
  cr_expect_eq(h_env_wait_count(&e, Q_MESSAGES, 5, 20000), 0);
  /* Written every second, growing: the earliest sample saw 3 or fewer. */
  cr_expect_leq(h_env_count(&e,
                            "SELECT first(iocd_messages_total) FROM "
                            "iocd_internal WHERE \"subscription\" = 'igate'"),
                3);
  cr_expect_geq(h_env_count(&e,
                            "SELECT count(iocd_uptime_seconds) FROM "
                            "iocd_internal WHERE host = 'it-host'"),
                2);
  /* The store's own books count the self-metrics as their own source. */
  cr_expect_gt(h_env_count(&e,
                           "SELECT last(iocd_source_points_written_total) "
                           "FROM iocd_internal WHERE \"subscription\" = "
                           "'iocd:self'"),
               0);
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  h_env_stop(&e);
}

/* A district's feed: what was rejected and why, and late and future
 * timestamps, per district in iocd_internal. */
Test(self_metrics_e2e, shows_a_districts_rejects_and_late_timestamps,
     .timeout = 120) {
  struct h_env e;
  env_up(&e, "it-selfm-feed");
  char p[128];
  long long now = (long long)time(NULL);
  publish(&e, "ioc/Ea Súp/igate", "{\"received\": ");       /* malformed */
  publish(&e, "ioc/Ea Súp/igate", "{\"received\": \"x\"}"); /* wrong_type */
  publish(&e, "ioc/Ea Súp/igate", "{oops");
  snprintf(p, sizeof p, "{\"received\": 1, \"time\": %lld}", now - 600);
  publish(&e, "ioc/Ea Súp/igate", p); /* late, accepted */
  snprintf(p, sizeof p, "{\"received\": 1, \"time\": %lld}", now - 3 * 86400);
  publish(&e, "ioc/Ea Súp/igate", p); /* time_past */
  snprintf(p, sizeof p, "{\"received\": 1, \"time\": %lld}", now + 180);
  publish(&e, "ioc/Ea Súp/igate", p); /* future, accepted */
  publish(&e, "ioc/Krông Búk/igate", "{\"received\": 1}");
  publish(&e, "ioc/Nowhere/igate", "[1,");

  static const struct {
    const char *q;
    double want;
  } cases[] = {
      {"SELECT last(iocd_district_rejects_total) FROM iocd_internal WHERE "
       "district = 'Ea Súp' AND reason = 'malformed'",
       2},
      {"SELECT last(iocd_district_rejects_total) FROM iocd_internal WHERE "
       "district = 'Ea Súp' AND reason = 'wrong_type'",
       1},
      {"SELECT last(iocd_district_rejects_total) FROM iocd_internal WHERE "
       "district = 'Ea Súp' AND reason = 'time_past'",
       1},
      {"SELECT last(iocd_district_late_messages_total) FROM iocd_internal "
       "WHERE district = 'Ea Súp'",
       2},
      {"SELECT last(iocd_district_future_messages_total) FROM iocd_internal "
       "WHERE district = 'Ea Súp'",
       1},
      {"SELECT last(iocd_district_messages_accepted_total) FROM "
       "iocd_internal WHERE district = 'Ea Súp'",
       2},
      {"SELECT last(iocd_district_messages_total) FROM iocd_internal WHERE "
       "district = 'Krông Búk'",
       1},
      {"SELECT last(iocd_district_rejects_total) FROM iocd_internal WHERE "
       "district = 'other' AND reason = 'malformed'",
       1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_expect_eq(h_env_wait_count(&e, cases[i].q, cases[i].want, 20000), 0,
                 "%s: want %g, got %g; see %s", cases[i].q, cases[i].want,
                 h_env_count(&e, cases[i].q), e.iocd.log);
  }
  /* No rejects of Krông Búk: no series for them at all. */
  cr_expect_eq(h_env_count(&e,
                           "SELECT count(iocd_district_rejects_total) FROM "
                           "iocd_internal WHERE district = 'Krông Búk'"),
               0);
  /* The last message of Krông Búk's igate, in seconds since the epoch. */
  double last = h_env_count(&e,
                            "SELECT last(iocd_district_last_message_seconds) "
                            "FROM iocd_internal WHERE district = 'Krông Búk' "
                            "AND system = 'igate'");
  cr_expect(last >= (double)now - 5 && last <= (double)now + 60, "%f", last);
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  h_env_stop(&e);
}

/* A system that sent nothing for longer than limits.silent_after (1 s
 * here) had a silent period once its next message arrives: counted with
 * its length, per district and system; a steady feed has none. */
Test(self_metrics_e2e, shows_a_systems_silent_periods_and_their_length,
     .timeout = 120) {
  struct h_env e;
  env_up(&e, "it-selfm-silent");
  publish(&e, "ioc/Krông Búk/igate", "{\"received\": 1}");
  publish(&e, "ioc/Ea Súp/igate", "{\"received\": 1}");
  publish(&e, "ioc/Ea Súp/igate", "{\"received\": 2}");
  h_sleep_ms(2500);
  publish(&e, "ioc/Krông Búk/igate", "{\"received\": 2}");
  static const char q_periods[] =
      "SELECT last(iocd_district_silent_periods_total) FROM iocd_internal "
      "WHERE district = 'Krông Búk' AND system = 'igate'";
  cr_expect_eq(h_env_wait_count(&e, q_periods, 1, 20000), 0,
               "no silent period of Krông Búk's igate; see %s", e.iocd.log);
  cr_expect_eq(h_env_count(&e, q_periods), 1);
  double seconds =
      h_env_count(&e,
                  "SELECT last(iocd_district_silent_seconds_total) FROM "
                  "iocd_internal WHERE district = 'Krông Búk' AND "
                  "system = 'igate'");
  cr_expect(seconds >= 2 && seconds <= 10, "%f", seconds);
  /* Ea Súp sent twice at once: no silence, so no field (zero counters
   * are not written). */
  cr_expect_eq(h_env_count(&e,
                           "SELECT count(iocd_district_silent_periods_total) "
                           "FROM iocd_internal WHERE district = 'Ea Súp'"),
               0);
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  h_env_stop(&e);
}
