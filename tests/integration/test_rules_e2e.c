/*
 * Rules end to end, as a user sees them: a real mosquitto and influxd on
 * free ports, the iocd binary on a config with rules, district data
 * published over MQTT, and the alerts read back where people look for
 * them: InfluxDB's `alerts` measurement, GET /api/v1/alerts, and the log.
 * Rules here use seconds instead of minutes so the tests run quickly.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "tests/harness/harness.h"

/* A config with the igate subscription, the given districts as expected
 * sources, and two rules: the online share below its target (sustained 2s,
 * hysteresis, a minimum denominator) and a silent feed (silent_s). */
static void env_config(struct h_env *e, const char *client_id,
                       const char *districts, int silent_s) {
  cr_assert_eq(
      h_env_config(
          e, client_id,
          "  \"subscriptions\": [\n"
          "    {\"name\": \"igate\", \"topic\": \"ioc/{district}/igate\",\n"
          "     \"measurement\": \"igate\",\n"
          "     \"types\": {\"received\": \"integer\", \"online\": "
          "\"integer\"},\n"
          "     \"tags\": {\"system\": \"igate\"}}\n"
          "  ],\n"
          "  \"sources\": {\"districts\": [%s], \"systems\": [\"igate\"]},\n"
          "  \"rule_engine\": {\"evaluation_interval\": \"1s\",\n"
          "                  \"save_interval\": \"1s\"},\n"
          "  \"params\": {\"online_target\": {\"default\": \"30%%\"}},\n"
          "  \"rules\": [\n"
          "    {\"name\": \"online_share_low\",\n"
          "     \"expr\": \"igate.online / igate.received < "
          "$online_target\",\n"
          "     \"clear\": \"igate.online / igate.received >= $online_target "
          "+ 2%%\",\n"
          "     \"guard\": \"igate.received >= 20\",\n"
          "     \"by\": [\"district\"], \"for\": \"2s\", \"missing\": "
          "\"keep\",\n"
          "     \"annotations\": {\"summary\": \"Tỷ lệ hồ sơ trực tuyến của "
          "{{district}} là {{value|pct}}, dưới mục tiêu "
          "{{threshold|pct}}\"}},\n"
          "    {\"name\": \"feed_silent\", \"expr\": \"age(_source.seen) > "
          "%ds\",\n"
          "     \"by\": [\"district\", \"system\"], \"expected\": true,\n"
          "     \"severity\": \"critical\",\n"
          "     \"annotations\": {\"summary\": \"Không nhận được dữ liệu "
          "{{system}} của {{district}}\"}}\n"
          "  ]\n",
          districts, silent_s),
      0);
}

static void iocd_start(struct h_env *e) {
  cr_assert_eq(h_env_iocd_start(e), 0, "iocd did not subscribe; see %s",
               e->iocd.log);
}

/* The servers, the config and iocd subscribed. */
static void env_up(struct h_env *e, const char *client_id,
                   const char *districts, int silent_s) {
  cr_assert_eq(h_env_start(e), 0);
  env_config(e, client_id, districts, silent_s);
  iocd_start(e);
}

/* Every test ends with iocd exiting 0 on SIGTERM. */
static void env_down(struct h_env *e) {
  cr_assert_eq(h_iocd_stop(&e->iocd, SIGTERM, 15000), 0);
  h_env_stop(e);
}

/* Publishes one iGate figure for district, every 200 ms for ms. */
static void publish_for(struct h_env *e, const char *district, int received,
                        int online, int ms) {
  char topic[128], payload[128];
  snprintf(topic, sizeof topic, "ioc/%s/igate", district);
  int len = snprintf(payload, sizeof payload,
                     "{\"received\": %d, \"online\": %d}", received, online);
  for (int t = 0; t <= ms; t += 200) {
    cr_assert_eq(h_publish(e->mq.port, topic, payload, (size_t)len, 1, NULL),
                 0);
    h_sleep_ms(200);
  }
}

struct metric_wait {
  int port;
  const char *series;
  double at_least;
};

static bool metric_reached(void *ud) {
  struct metric_wait *w = ud;
  return h_metric(w->port, w->series) >= w->at_least;
}

static bool metric_zero(void *ud) {
  struct metric_wait *w = ud;
  return h_metric(w->port, w->series) == 0;
}

#define ACTIVE_EAHLEO(state)                                            \
  "iocd_alerts_active{rule=\"online_share_low\",state=\"" state "\"," \
  "severity=\"warning\",district=\"Ea H'Leo\"}"

#define Q_FIRING_EAHLEO                                                 \
  "SELECT count(active) FROM alerts WHERE \"rule\"='online_share_low' " \
  "AND \"state\"='firing' AND \"district\"='Ea H\\'Leo'"
#define Q_RESOLVED_EAHLEO                                               \
  "SELECT count(active) FROM alerts WHERE \"rule\"='online_share_low' " \
  "AND \"state\"='resolved' AND \"district\"='Ea H\\'Leo'"
#define Q_SILENT_LAK                                               \
  "SELECT count(active) FROM alerts WHERE \"rule\"='feed_silent' " \
  "AND \"state\"='firing' AND \"district\"='Lắk' AND \"system\"='igate'"
#define Q_SILENT_ANY \
  "SELECT count(active) FROM alerts WHERE \"rule\"='feed_silent'"
#define Q_BROKER(state)                                                        \
  "SELECT count(active) FROM alerts WHERE \"rule\"='iocd_broker_unreachable' " \
  "AND \"state\"='" state "'"

/* Ea H'Leo at 20 of 100 online (below 30%) for longer than the rule's 2s:
 * its alert fires and the firing point reaches InfluxDB. */
static void eahleo_fires(struct h_env *e) {
  publish_for(e, "Ea H'Leo", 100, 20, 3500);
  cr_assert_eq(h_env_wait_count(e, Q_FIRING_EAHLEO, 1, 15000), 0,
               "no firing point in InfluxDB; see %s", e->iocd.log);
}

/* GET /api/v1/alerts lists Ea H'Leo's alert as firing; what says when. */
static void eahleo_listed_firing(struct h_env *e, const char *what) {
  struct buf b;
  buf_init(&b, 1 << 20);
  cr_assert_eq(h_http_get(e->api_port, "/api/v1/alerts", &b), 200);
  cr_assert(strstr(b.data,
                   "\"labels\":{\"district\":\"Ea H'Leo\"},"
                   "\"state\":\"firing\"") != NULL,
            "%s: %s", what, b.data);
  buf_cleanup(&b);
}

Test(rules_e2e,
     a_district_below_target_fires_is_stored_listed_logged_and_resolves,
     .timeout = 120) {
  struct h_env e;
  env_up(&e, "rules-e2e-fire", "\"Ea H'Leo\", \"Lắk\"", 6);

  eahleo_fires(&e);
  char *json = NULL;
  cr_assert_eq(h_influx_query(&e.db, "ioc",
                              "SELECT value, threshold, summary, reason "
                              "FROM alerts WHERE \"state\"='firing' AND "
                              "\"rule\"='online_share_low'",
                              &json),
               0);
  cr_assert(strstr(json,
                   "Tỷ lệ hồ sơ trực tuyến của Ea H'Leo là 20%, "
                   "dưới mục tiêu 30%") != NULL,
            "%s", json);
  cr_assert(strstr(json, ",0.2,0.3,") != NULL, "value and threshold: %s", json);
  free(json);

  struct buf b;
  buf_init(&b, 1 << 20);
  cr_assert_eq(h_http_get(e.api_port, "/api/v1/alerts", &b), 200);
  cr_assert(strstr(b.data,
                   "\"rule\":\"online_share_low\",\"labels\":"
                   "{\"district\":\"Ea H'Leo\"},\"state\":"
                   "\"firing\",\"severity\":\"warning\"") != NULL,
            "%s", b.data);
  cr_assert(strstr(b.data, "\"value\":0.2,\"threshold\":0.3") != NULL, "%s",
            b.data);
  buf_reset(&b);
  cr_assert_eq(h_http_get(e.api_port, "/api/v1/rules", &b), 200);
  cr_assert(strstr(b.data,
                   "\"name\":\"online_share_low\",\"expr\":"
                   "\"igate.online / igate.received < "
                   "$online_target\"") != NULL,
            "%s", b.data);
  cr_assert(
      strstr(b.data, "\"instances\":{\"pending\":0,\"firing\":1,") != NULL,
      "%s", b.data);
  buf_cleanup(&b);
  cr_assert(h_iocd_log_contains(&e.iocd, "pending -> firing"), "see %s",
            e.iocd.log);
  struct metric_wait mw = {e.api_port, "iocd_alerts_firing", 1};
  cr_assert_eq(h_wait_until(metric_reached, &mw, 5000), 0,
               "iocd_alerts_firing on /metrics: %g",
               h_metric(e.api_port, "iocd_alerts_firing"));
  cr_assert(h_iocd_log_contains(&e.iocd, "online_share_low{district="),
            "see %s", e.iocd.log);
  /* The active alerts by rule, state, severity and district. */
  struct metric_wait active = {e.api_port, ACTIVE_EAHLEO("firing"), 1};
  cr_assert_eq(h_wait_until(metric_reached, &active, 5000), 0,
               "%s on /metrics: %g", active.series,
               h_metric(e.api_port, active.series));

  /* Lắk never published: its silent-feed alert names it. */
  cr_assert_eq(h_env_wait_count(&e, Q_SILENT_LAK, 1, 15000), 0,
               "no silent-feed alert for Lắk; see %s", e.iocd.log);
  cr_assert_eq(h_influx_query(&e.db, "ioc",
                              "SELECT summary FROM alerts WHERE "
                              "\"rule\"='feed_silent' AND \"state\"='firing'",
                              &json),
               0);
  cr_assert(strstr(json, "Không nhận được dữ liệu igate của Lắk") != NULL, "%s",
            json);
  cr_assert(strstr(json, "Ea H'Leo") == NULL,
            "Ea H'Leo publishes: not silent: %s", json);
  free(json);

  /* 40 of 100: above 30% + 2%: it resolves. */
  publish_for(&e, "Ea H'Leo", 100, 40, 600);
  cr_assert_eq(h_env_wait_count(&e, Q_RESOLVED_EAHLEO, 1, 15000), 0,
               "not resolved; see %s", e.iocd.log);
  cr_assert(h_iocd_log_contains(&e.iocd, "firing -> resolved"));
  cr_assert_eq(h_wait_until(metric_zero, &active, 5000), 0,
               "%s still %g after it resolved", active.series,
               h_metric(e.api_port, active.series));
  env_down(&e);
}

Test(rules_e2e, a_restart_restores_the_firing_alert_without_a_second_point,
     .timeout = 120) {
  struct h_env e;
  env_up(&e, "rules-e2e-restart", "\"Ea H'Leo\"", 600);
  eahleo_fires(&e);
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  char state[512];
  snprintf(state, sizeof state, "%s/data/rules-state.json", e.dir);
  cr_assert_eq(access(state, R_OK), 0, "no state file %s", state);

  iocd_start(&e);
  cr_assert_eq(h_iocd_wait_log(&e.iocd, "alert state restored", 5000), 0,
               "see %s", e.iocd.log);
  /* Still below target after the restart: still the same alert. */
  publish_for(&e, "Ea H'Leo", 100, 20, 3000);
  eahleo_listed_firing(&e, "restored alert not listed");
  h_sleep_ms(1000); /* let a wrongly repeated point reach InfluxDB */
  double n = h_env_count(&e, Q_FIRING_EAHLEO);
  cr_assert_eq(n, 1.0, "%g firing points after the restart", n);
  cr_assert(!h_iocd_log_contains(&e.iocd, "pending -> firing"),
            "announced again after the restart; see %s", e.iocd.log);

  /* A reload with the rule unchanged keeps its state too. */
  kill(e.iocd.pid, SIGHUP);
  cr_assert_eq(h_iocd_wait_log(&e.iocd, "configuration reloaded", 10000), 0,
               "see %s", e.iocd.log);
  publish_for(&e, "Ea H'Leo", 100, 20, 1000);
  eahleo_listed_firing(&e, "not firing after the reload");
  n = h_env_count(&e, Q_FIRING_EAHLEO);
  cr_assert_eq(n, 1.0, "%g firing points after the reload", n);
  env_down(&e);
}

#define N_DISTRICTS 15
static const char *const districts[N_DISTRICTS] = {
    "Buôn Ma Thuột", "Buôn Hồ",    "Buôn Đôn",  "Cư Kuin",   "Cư M'gar",
    "Ea H'Leo",      "Ea Kar",     "Ea Súp",    "Krông Ana", "Krông Bông",
    "Krông Búk",     "Krông Năng", "Krông Pắc", "Lắk",       "M'Đrắk"};

/* One message from every district. */
static void publish_all(struct h_pub *p) {
  for (int i = 0; i < N_DISTRICTS; i++) {
    char topic[128];
    snprintf(topic, sizeof topic, "ioc/%s/igate", districts[i]);
    static const char payload[] = "{\"received\": 100, \"online\": 50}";
    cr_assert_eq(h_pub_send(p, topic, payload, sizeof payload - 1, 1), 0);
  }
  cr_assert_eq(h_pub_flush(p), 0);
}

Test(rules_e2e, a_broker_outage_is_one_alert_not_fifteen_silent_feeds,
     .timeout = 120) {
  char list[1024];
  size_t used = 0;
  for (int i = 0; i < N_DISTRICTS; i++) {
    used += (size_t)snprintf(list + used, sizeof list - used, "%s\"%s\"",
                             i ? ", " : "", districts[i]);
  }
  struct h_env e;
  /* Silence at 10s: longer than iocd's 5s grace for the broker. */
  env_up(&e, "rules-e2e-broker", list, 10);
  struct h_pub *p = h_pub_open(e.mq.port, NULL);
  cr_assert_not_null(p);
  for (int k = 0; k < 5; k++) {
    publish_all(p);
    h_sleep_ms(400);
  }
  h_pub_close(p);

  h_mosquitto_stop(&e.mq);
  cr_assert_eq(h_env_wait_count(&e, Q_BROKER("firing"), 1, 20000), 0,
               "no broker alert; see %s", e.iocd.log);
  /* Well past the 10s of silence of every district. */
  h_sleep_ms(12000);
  double silent = h_env_count(&e, Q_SILENT_ANY);
  cr_assert_eq(silent, 0.0, "%g silent-feed points while deaf; see %s", silent,
               e.iocd.log);
  double broker = h_env_count(&e, Q_BROKER("firing"));
  cr_assert_eq(broker, 1.0, "%g broker alerts", broker);

  /* The broker comes back: the broker alert resolves, and the districts'
   * silence is counted from then, so none fires at once. */
  cr_assert_eq(h_mosquitto_restart(&e.mq), 0);
  cr_assert_eq(h_env_wait_count(&e, Q_BROKER("resolved"), 1, 20000), 0,
               "broker alert not resolved; see %s", e.iocd.log);
  p = h_pub_open(e.mq.port, NULL);
  cr_assert_not_null(p);
  publish_all(p);
  h_pub_close(p);
  h_sleep_ms(2000);
  silent = h_env_count(&e, Q_SILENT_ANY);
  cr_assert_eq(silent, 0.0, "%g silent-feed points after the outage", silent);
  env_down(&e);
}
