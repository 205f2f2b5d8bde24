/*
 * The alert history in a database of its own (notifications.history), as a
 * user sees it: a real mosquitto and influxd on free ports, iocd as a black
 * box with a rule that fires per district, and the `alerts` points read back
 * from InfluxDB. They land in the history's database and retention policy
 * and not in the data's; while the history's destination fails (a retention
 * policy that does not exist yet, a database dropped under iocd) the data
 * keeps landing and the alert points wait, retried, in their own journal,
 * through a restart, until the destination works. And what operators do to
 * an alert, acknowledging it through the API, taking it back, and the ack
 * ending as the alert resolves: `alert_acks` points in the history, with
 * the time it took to acknowledge.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* ---- acknowledgements ---- */

/* The id of the firing alert of district that GET /api/v1/alerts lists. */
static void firing_alert_id(int port, const char *district, char id[17]) {
  struct buf b;
  buf_init(&b, 1 << 20);
  cr_assert_eq(h_http_get(port, "/api/v1/alerts", &b), 200);
  buf_putc(&b, '\0');
  cJSON *doc = cJSON_Parse(b.data);
  id[0] = '\0';
  const cJSON *a;
  cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(doc, "alerts")) {
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(a, "labels"), "district");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(a, "state");
    const cJSON *aid = cJSON_GetObjectItemCaseSensitive(a, "id");
    if (cJSON_IsString(d) && strcmp(d->valuestring, district) == 0 &&
        cJSON_IsString(state) && strcmp(state->valuestring, "firing") == 0 &&
        cJSON_IsString(aid)) {
      snprintf(id, 17, "%s", aid->valuestring);
    }
  }
  cr_assert_eq(strlen(id), 16, "no firing alert for %s: %s", district, b.data);
  cJSON_Delete(doc);
  buf_cleanup(&b);
}

/* The one row of q in database db, as a JSON object of its columns
 * (time in ns); the caller deletes it. */
static cJSON *one_row(const struct h_env *e, const char *db, const char *q) {
  char *json = NULL;
  cr_assert_eq(h_influx_query(&e->db, db, q, &json), 0, "%s", q);
  cJSON *doc = cJSON_Parse(json);
  const cJSON *series = cJSON_GetArrayItem(
      cJSON_GetObjectItemCaseSensitive(
          cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "results"),
                             0),
          "series"),
      0);
  const cJSON *cols = cJSON_GetObjectItemCaseSensitive(series, "columns");
  const cJSON *values = cJSON_GetObjectItemCaseSensitive(series, "values");
  cr_assert_eq(cJSON_GetArraySize(values), 1, "%s: %s", q, json);
  const cJSON *row = cJSON_GetArrayItem(values, 0);
  cJSON *out = cJSON_CreateObject();
  for (int i = 0; i < cJSON_GetArraySize(cols); i++) {
    cJSON_AddItemToObject(out, cJSON_GetArrayItem(cols, i)->valuestring,
                          cJSON_Duplicate(cJSON_GetArrayItem(row, i), true));
  }
  cJSON_Delete(doc);
  free(json);
  return out;
}

static const char *row_str(const cJSON *row, const char *col) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, col);
  return cJSON_IsString(v) ? v->valuestring : "(null)";
}

static double row_num(const cJSON *row, const char *col) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, col);
  cr_assert(cJSON_IsNumber(v), "%s is not a number", col);
  return v->valuedouble;
}

static void publish_to(const struct h_env *e, const char *topic, int received) {
  char payload[64];
  int len = snprintf(payload, sizeof payload, "{\"received\": %d}", received);
  cr_assert_eq(h_publish(e->mq.port, topic, payload, (size_t)len, 1, NULL), 0);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define Q_ACKS_OF(action)                                       \
  "SELECT \"by\", \"principal\", \"comment\", \"alert_id\", "   \
  "\"fired_at\", \"seconds_to_ack\" FROM \"alert_acks\" WHERE " \
  "\"action\" = '" action                                       \
  "' AND \"rule\" = 'received_high' AND "                       \
  "\"district\" = 'Ea H\\'Leo' AND \"severity\" = 'warning'"

Test(alert_history, an_acknowledgement_lands_with_its_time_to_acknowledge,
     .timeout = 120) {
  struct h_env e;
  cr_assert_eq(h_env_start(&e), 0);
  /* A receiver that waits an hour before its first notification: nothing
   * is sent while the test runs; notifications are on, so alerts can be
   * acknowledged. */
  cr_assert_eq(
      h_env_config(
          &e, "it-history-acks",
          "  \"subscriptions\": [\n"
          "    {\"name\": \"igate\", \"topic\": \"ioc/{district}/igate\",\n"
          "     \"measurement\": \"igate\",\n"
          "     \"types\": {\"received\": \"integer\"}}\n"
          "  ],\n"
          "  \"rules\": [\n"
          "    {\"name\": \"received_high\", \"expr\": \"igate.received > "
          "100\",\n"
          "     \"by\": [\"district\"], \"severity\": \"warning\"}\n"
          "  ],\n"
          "  \"notifications\": {\n"
          "    \"receivers\": [{\"name\": \"ops\", \"type\": \"webhook\",\n"
          "                   \"url\": \"http://127.0.0.1:%d/hook\"}],\n"
          "    \"route\": {\"receiver\": \"ops\", \"group_wait\": \"1h\"},\n"
          "    \"history\": {\"database\": \"" HDB "\"}}\n",
          h_free_port()),
      0);
  cr_assert_eq(h_env_iocd_start(&e), 0, "see %s", e.iocd.log);
  int64_t t0 = now_ms();
  static const char district[] = "Ea H'Leo";
  static const char topic[] = "ioc/Ea H'Leo/igate";
  publish_to(&e, topic, 50);
  publish_to(&e, topic, 500);
  cr_assert_eq(wait_count(&e, HDB,
                          "SELECT count(active) FROM alerts WHERE "
                          "\"state\" = 'firing'",
                          1, 15000),
               0, "the alert did not fire (see %s)", e.iocd.log);
  /* A second at least between firing and the ack. */
  h_sleep_ms(1100);

  char id[17], path[64];
  firing_alert_id(e.api_port, district, id);
  snprintf(path, sizeof path, "/api/v1/alerts/%s/ack", id);
  struct buf b;
  buf_init(&b, 1 << 20);
  cr_assert_eq(h_http_request(e.api_port, "POST", path,
                              "{\"by\": \"an.nguyen\", \"comment\": \"đã gọi "
                              "Văn phòng HĐND-UBND huyện\"}",
                              &b),
               200, "%s", b.data);
  int64_t t_ack = now_ms();
  cr_assert_eq(
      wait_count(&e, HDB, "SELECT count(alert_id) FROM alert_acks", 1, 15000),
      0, "no alert_acks point (see %s)", e.iocd.log);

  cJSON *row = one_row(&e, HDB, Q_ACKS_OF("ack"));
  cr_expect_str_eq(row_str(row, "by"), "an.nguyen");
  cr_expect_str_eq(row_str(row, "principal"), "anonymous",
                   "no token: the principal is anonymous");
  cr_expect_str_eq(row_str(row, "comment"), "đã gọi Văn phòng HĐND-UBND huyện");
  cr_expect_str_eq(row_str(row, "alert_id"), id);
  double fired_at = row_num(row, "fired_at");
  double seconds = row_num(row, "seconds_to_ack");
  double at_ms = row_num(row, "time") / 1e6;
  cr_expect(fired_at >= (double)t0 - 1000 && fired_at <= (double)t_ack,
            "fired_at %.0f not between the publish (%lld) and the ack (%lld)",
            fired_at, (long long)t0, (long long)t_ack);
  cr_expect(seconds >= 1.0 && seconds < 60, "seconds_to_ack %f", seconds);
  cr_expect(fabs(seconds - (at_ms - fired_at) / 1000) < 0.002,
            "seconds_to_ack %f is not the ack's time (%.0f) minus fired_at "
            "(%.0f)",
            seconds, at_ms, fired_at);
  cJSON_Delete(row);

  /* Taken back, acknowledged again, then the district falls back below
   * the threshold: the alert resolves and the ack ends. */
  buf_reset(&b);
  cr_assert_eq(
      h_http_request(e.api_port, "DELETE", path, "{\"by\": \"bình\"}", &b), 200,
      "%s", b.data);
  buf_reset(&b);
  cr_assert_eq(
      h_http_request(e.api_port, "POST", path, "{\"by\": \"bình\"}", &b), 200,
      "%s", b.data);
  publish_to(&e, topic, 10);
  cr_assert_eq(
      wait_count(&e, HDB, "SELECT count(alert_id) FROM alert_acks", 4, 15000),
      0, "not four alert_acks points (see %s)", e.iocd.log);
  row = one_row(&e, HDB, Q_ACKS_OF("unack"));
  cr_expect_str_eq(row_str(row, "by"), "bình");
  cr_expect_str_eq(row_str(row, "principal"), "anonymous");
  cr_expect_eq(row_num(row, "fired_at"), fired_at);
  cr_expect(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(row, "comment")));
  cr_expect(
      cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(row, "seconds_to_ack")));
  cJSON_Delete(row);
  row = one_row(&e, HDB, Q_ACKS_OF("expire"));
  cr_expect(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(row, "by")));
  cr_expect_str_eq(row_str(row, "alert_id"), id);
  cr_expect_eq(row_num(row, "fired_at"), fired_at);
  cJSON_Delete(row);
  cr_expect_eq(count_in(&e, HDB,
                        "SELECT count(alert_id) FROM alert_acks WHERE "
                        "\"action\" = 'ack'"),
               2);
  /* In the history's database only. */
  cr_expect_eq(h_env_count(&e, "SELECT count(alert_id) FROM alert_acks"), 0);
  cr_expect_eq(h_metric(e.api_port, "iocd_alert_points_lost_total"), 0);
  buf_cleanup(&b);
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  h_env_stop(&e);
}
