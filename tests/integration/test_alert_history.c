/*
 * The alert history in a database of its own (notifications.history), as a
 * user sees it: a real mosquitto and influxd on free ports, iocd as a black
 * box with a rule that fires per district, and the `alerts` points read back
 * from InfluxDB. They land in the history's database and retention policy
 * and not in the data's; while the history's destination fails (a retention
 * policy that does not exist yet, a database dropped under iocd) the data
 * keeps landing and the alert points wait, retried, in their own journal,
 * through a restart, until the destination works.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "tests/harness/harness.h"

#define HDB "ioc_history"

#define Q_DATA "SELECT count(received) FROM igate"
#define Q_ALERTS_IN_DATA "SELECT count(active) FROM alerts"

/* The config: the igate subscription, a rule that fires at once for every
 * district above 100 dossiers, and the history in HDB under rp (NULL:
 * the database's default policy). */
static void env_config(struct h_env *e, const char *client_id, const char *rp) {
  char history[256];
  if (rp) {
    snprintf(history, sizeof history,
             "{\"database\": \"" HDB "\", \"retention_policy\": \"%s\"}", rp);
  } else {
    snprintf(history, sizeof history, "{\"database\": \"" HDB "\"}");
  }
  cr_assert_eq(
      h_env_config(
          e, client_id,
          "  \"subscriptions\": [\n"
          "    {\"name\": \"igate\", \"topic\": \"ioc/{district}/igate\",\n"
          "     \"measurement\": \"igate\",\n"
          "     \"types\": {\"received\": \"integer\"}}\n"
          "  ],\n"
          "  \"rules\": [\n"
          "    {\"name\": \"received_high\", \"expr\": \"igate.received > "
          "100\",\n"
          "     \"by\": [\"district\"],\n"
          "     \"annotations\": {\"summary\": \"{{district}}: {{value}} hồ "
          "sơ\"}}\n"
          "  ],\n"
          "  \"notifications\": {\"history\": %s}\n",
          history),
      0);
}

static void influx_exec(const struct h_env *e, const char *db, const char *q) {
  char *json = NULL;
  cr_assert_eq(h_influx_query(&e->db, db, q, &json), 0, "%s", q);
  cr_assert(json && !strstr(json, "\"error\""), "%s: %s", q, json ? json : "");
  free(json);
}

/* The count of q in database db (0 when it has no rows). */
static double count_in(const struct h_env *e, const char *db, const char *q) {
  double v = 0;
  if (h_influx_scalar(&e->db, db, q, &v) != 0 || v < 0) {
    return 0;
  }
  return v;
}

struct count_wait {
  const struct h_env *e;
  const char *db;
  const char *q;
  double want;
};

static bool count_reached(void *ud) {
  struct count_wait *w = ud;
  return count_in(w->e, w->db, w->q) >= w->want;
}

static int wait_count(const struct h_env *e, const char *db, const char *q,
                      double want, int timeout_ms) {
  struct count_wait w = {e, db, q, want};
  return h_wait_until(count_reached, &w, timeout_ms);
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

static int wait_metric(const struct h_env *e, const char *series,
                       double at_least, int timeout_ms) {
  struct metric_wait w = {e->api_port, series, at_least};
  return h_wait_until(metric_reached, &w, timeout_ms);
}

static bool metric_zero(void *ud) {
  struct metric_wait *w = ud;
  return h_metric(w->port, w->series) == 0;
}

static int wait_metric_zero(const struct h_env *e, const char *series,
                            int timeout_ms) {
  struct metric_wait w = {e->api_port, series, 0};
  return h_wait_until(metric_zero, &w, timeout_ms);
}

/* One figure of district; the districts are d0, d1, ... */
static void publish(const struct h_env *e, int district, int received) {
  char topic[64], payload[64];
  snprintf(topic, sizeof topic, "ioc/d%d/igate", district);
  int len = snprintf(payload, sizeof payload, "{\"received\": %d}", received);
  cr_assert_eq(h_publish(e->mq.port, topic, payload, (size_t)len, 1, NULL), 0);
}

/* Three districts below the threshold, then above it: three firing
 * alerts, six data points. */
static void raise_three_alerts(const struct h_env *e) {
  for (int d = 0; d < 3; d++) {
    publish(e, d, 50);
  }
  for (int d = 0; d < 3; d++) {
    publish(e, d, 500);
  }
}

#define WRITTEN_DATA "iocd_points_written_total{output=\"influxdb\"}"
#define WRITTEN_HISTORY "iocd_points_written_total{output=\"influxdb_history\"}"
#define ALERTS_WAITING \
  "iocd_source_points_waiting{subscription=\"iocd:alerts\"}"
#define HISTORY_RETRIES "iocd_write_retries_total{output=\"influxdb_history\"}"

Test(alert_history, alert_points_land_in_their_own_database_and_policy) {
  struct h_env e;
  cr_assert_eq(h_env_start(&e), 0);
  influx_exec(&e, NULL, "CREATE DATABASE " HDB);
  influx_exec(&e, NULL,
              "CREATE RETENTION POLICY alerts_1y ON " HDB
              " DURATION 52w REPLICATION 1");
  env_config(&e, "it-history-rp", "alerts_1y");
  cr_assert_eq(h_env_iocd_start(&e), 0, "see %s", e.iocd.log);
  raise_three_alerts(&e);

  cr_assert_eq(
      wait_count(&e, HDB, "SELECT count(active) FROM \"alerts_1y\".\"alerts\"",
                 3, 15000),
      0, "the alert points did not reach " HDB ".alerts_1y (see %s)",
      e.iocd.log);
  cr_assert_eq(h_env_wait_count(&e, Q_DATA, 6, 15000), 0);
  cr_expect_eq(count_in(&e, HDB,
                        "SELECT count(active) FROM \"alerts_1y\".\"alerts\" "
                        "WHERE \"rule\"='received_high' AND "
                        "\"state\"='firing' AND \"district\"='d1'"),
               1);
  /* Nowhere else: not in the data's database, not under the history
   * database's default policy. */
  cr_expect_eq(h_env_count(&e, Q_ALERTS_IN_DATA), 0);
  cr_expect_eq(
      count_in(&e, HDB, "SELECT count(active) FROM \"autogen\".\"alerts\""), 0);
  /* iocd counts a write once InfluxDB's answer is in, which may come a
   * moment after the points can be read. */
  cr_expect_eq(wait_metric(&e, WRITTEN_HISTORY, 3, 5000), 0);
  cr_expect_eq(wait_metric(&e, WRITTEN_DATA, 6, 5000), 0);
  cr_expect_eq(h_metric(e.api_port, WRITTEN_HISTORY), 3);
  cr_expect_eq(h_metric(e.api_port,
                        "iocd_source_points_written_total{subscription="
                        "\"iocd:alerts\"}"),
               3);
  cr_expect_eq(h_metric(e.api_port, WRITTEN_DATA), 6);
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  h_env_stop(&e);
}

Test(alert_history,
     a_failing_history_holds_back_neither_the_data_nor_its_points) {
  struct h_env e;
  cr_assert_eq(h_env_start(&e), 0);
  influx_exec(&e, NULL, "CREATE DATABASE " HDB);
  /* The policy does not exist yet: InfluxDB answers 500 to every write of
   * the history. */
  env_config(&e, "it-history-fail", "later");
  cr_assert_eq(h_env_iocd_start(&e), 0, "see %s", e.iocd.log);
  raise_three_alerts(&e);
  cr_assert_eq(wait_metric(&e, HISTORY_RETRIES, 2, 15000), 0,
               "the history's writes were not retried (see %s)", e.iocd.log);

  /* The data goes on landing while the history fails. */
  for (int i = 0; i < 20; i++) {
    publish(&e, i % 3, 600 + i);
  }
  cr_assert_eq(h_env_wait_count(&e, Q_DATA, 26, 10000), 0,
               "data held back by the failing history (see %s)", e.iocd.log);
  cr_expect_eq(wait_metric(&e, "iocd_influxdb_up", 1, 5000), 0);
  cr_expect_eq(
      h_metric(e.api_port, "iocd_influxdb_up{output=\"influxdb_history\"}"), 0);
  cr_expect_eq(h_metric(e.api_port, ALERTS_WAITING), 3);
  cr_expect_eq(h_env_count(&e, Q_ALERTS_IN_DATA), 0);
  struct buf body;
  buf_init(&body, 1 << 16);
  cr_expect_eq(h_http_get(e.api_port, "/ready", &body), 503);
  cr_expect(body.data && strstr(body.data, "alert history"), "/ready: %s",
            body.data ? body.data : "");
  buf_cleanup(&body);
  cr_expect(h_iocd_log_contains(&e.iocd, "retention policy not found: later"));

  /* The policy appears: the alert points kept are written. */
  influx_exec(&e, NULL,
              "CREATE RETENTION POLICY later ON " HDB
              " DURATION 52w REPLICATION 1");
  cr_assert_eq(
      wait_count(&e, HDB, "SELECT count(active) FROM \"later\".\"alerts\"", 3,
                 15000),
      0, "the alert points were not written once the policy existed (see %s)",
      e.iocd.log);
  cr_expect_eq(wait_metric_zero(&e, ALERTS_WAITING, 5000), 0);
  cr_expect_eq(h_env_count(&e, Q_ALERTS_IN_DATA), 0);
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  h_env_stop(&e);
}

Test(alert_history, points_kept_while_the_history_fails_survive_a_restart) {
  struct h_env e;
  cr_assert_eq(h_env_start(&e), 0);
  influx_exec(&e, NULL, "CREATE DATABASE " HDB);
  env_config(&e, "it-history-restart", "later");
  cr_assert_eq(h_env_iocd_start(&e), 0, "see %s", e.iocd.log);
  raise_three_alerts(&e);
  cr_assert_eq(h_env_wait_count(&e, Q_DATA, 6, 10000), 0);
  cr_assert_eq(wait_metric(&e, HISTORY_RETRIES, 1, 15000), 0);
  /* Stopped with the three alert points unwritten: status 2, and they stay
   * in the history's journal. */
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 2);
  cr_assert(h_iocd_log_contains(&e.iocd, "3 points not written"), "see %s",
            e.iocd.log);

  influx_exec(&e, NULL,
              "CREATE RETENTION POLICY later ON " HDB
              " DURATION 52w REPLICATION 1");
  cr_assert_eq(h_env_iocd_start(&e), 0, "see %s", e.iocd.log);
  cr_assert_eq(
      wait_count(&e, HDB, "SELECT count(active) FROM \"later\".\"alerts\"", 3,
                 15000),
      0, "the journaled alert points were not sent after the restart (see %s)",
      e.iocd.log);
  cr_expect_eq(h_metric(e.api_port,
                        "iocd_journal_replayed_points_total{"
                        "subscription=\"iocd:alerts\"}"),
               3);
  cr_expect_eq(h_env_count(&e, Q_ALERTS_IN_DATA), 0);
  cr_expect_eq(h_env_count(&e, Q_DATA), 6);
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  h_env_stop(&e);
}

Test(alert_history, a_history_database_dropped_under_iocd_is_created_again) {
  struct h_env e;
  cr_assert_eq(h_env_start(&e), 0);
  env_config(&e, "it-history-drop", NULL);
  cr_assert_eq(h_env_iocd_start(&e), 0, "see %s", e.iocd.log);
  raise_three_alerts(&e);
  cr_assert_eq(
      wait_count(&e, HDB, "SELECT count(active) FROM alerts", 3, 15000), 0,
      "see %s", e.iocd.log);

  influx_exec(&e, NULL, "DROP DATABASE " HDB);
  /* Two districts back below the threshold: two resolved transitions, and
   * data all along. */
  publish(&e, 0, 10);
  publish(&e, 1, 10);
  cr_assert_eq(h_env_wait_count(&e, Q_DATA, 8, 10000), 0);
  cr_assert_eq(wait_count(&e, HDB,
                          "SELECT count(active) FROM alerts WHERE "
                          "\"state\"='resolved'",
                          2, 15000),
               0, "the history's database was not created again (see %s)",
               e.iocd.log);
  cr_expect_eq(h_env_count(&e, Q_ALERTS_IN_DATA), 0);
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  h_env_stop(&e);
}
