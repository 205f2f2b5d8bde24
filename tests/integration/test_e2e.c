/*
 * End to end, as a user sees iocd: a real mosquitto and a real influxd on
 * free loopback ports, the iocd binary run as a black box on a config file,
 * messages published over MQTT, and the rows read back from InfluxDB's
 * /query, the counters from /metrics, the exit status and the log.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "tests/harness/harness.h"

#define COUNT_IGATE "SELECT count(received) FROM igate"

/* The configuration of these tests: the igate subscription, then the
 * subscriptions of subs (JSON objects separated by commas, or NULL). */
static void env_config(struct h_env *e, const char *client_id,
                       const char *subs) {
  cr_assert_eq(
      h_env_config(e, client_id,
                   "  \"shutdown_timeout\": \"10s\",\n"
                   "  \"limits\": {\"max_past\": \"36600d\"},\n"
                   "  \"subscriptions\": [\n"
                   "    {\"name\": \"igate\", \"topic\": "
                   "\"ioc/{district}/igate\",\n"
                   "     \"measurement\": \"igate\", \"qos\": 1,\n"
                   "     \"types\": {\"received\": \"integer\", \"share\": "
                   "\"float\"},\n"
                   "     \"tags\": {\"system\": \"igate\"}}%s%s\n"
                   "  ]\n",
                   subs ? ",\n    " : "", subs ? subs : ""),
      0);
}

/* Inserts text into the config right before the first occurrence of key. */
static void config_insert(struct h_env *e, const char *key, const char *text) {
  char *at = strstr(e->config, key);
  cr_assert_not_null(at, "%s not in the config", key);
  char cfg[sizeof e->config];
  snprintf(cfg, sizeof cfg, "%.*s%s%s", (int)(at - e->config), e->config, text,
           at);
  memcpy(e->config, cfg, sizeof cfg);
}

/* Replaces the file at path with text. */
static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "%s", path);
  fputs(text, f);
  fclose(f);
}

static void iocd_start(struct h_env *e) {
  cr_assert_eq(h_env_iocd_start(e), 0, "iocd did not subscribe; see %s",
               e->iocd.log);
}

/* The servers and the config of a test; iocd is not started yet, so the
 * test may still change the config. */
static void env_prepare(struct h_env *e, const char *client_id,
                        const char *subs) {
  cr_assert_eq(h_env_start(e), 0);
  env_config(e, client_id, subs);
}

/* The servers, the config and iocd subscribed. */
static void env_up(struct h_env *e, const char *client_id, const char *subs) {
  env_prepare(e, client_id, subs);
  iocd_start(e);
}

/* Every test ends with iocd exiting 0 on SIGTERM: all it accepted written. */
static void env_down(struct h_env *e) {
  cr_assert_eq(h_iocd_stop(&e->iocd, SIGTERM, 15000), 0);
  h_env_stop(e);
}

static void publish(struct h_env *e, const char *topic, const char *payload) {
  cr_assert_eq(h_publish(e->mq.port, topic, payload, strlen(payload), 1, NULL),
               0);
}

Test(e2e, writes_json_with_vietnamese_tags_exact_values_types_and_time,
     .timeout = 60) {
  struct h_env e;
  env_up(&e, "e2e-json", NULL);

  publish(&e, "ioc/Ea H'Leo/igate",
          "{\"received\": 1520, \"share\": 30, \"online_l3\": 161, "
          "\"time\": \"2020-09-30T17:00:00+07:00\"}");
  publish(&e, "ioc/Buôn Ma Thuột/igate",
          "{\"received\": 44388, \"share\": 12.5, \"online_l3\": 4043, "
          "\"time\": 1601460000}");
  publish(&e, "ioc/M'Đrắk/igate",
          "{\"received\": 6658, \"share\": 0.25, \"online_l3\": 606, "
          "\"time\": 1601460000}");
  cr_assert_eq(h_env_wait_count(&e, COUNT_IGATE, 3, 15000), 0,
               "3 points did not arrive; see %s", e.iocd.log);

  char *json = NULL;
  cr_assert_eq(h_influx_query(&e.db, "ioc",
                              "SELECT received, share, online_l3 FROM igate "
                              "WHERE district='Ea H\\'Leo' AND system='igate'",
                              &json),
               0);
  cr_assert(strstr(json, "[1601460000000000000,1520,30,161]") != NULL,
            "unexpected row: %s", json);
  free(json);

  cr_assert_eq(h_influx_query(&e.db, "ioc",
                              "SELECT received, share FROM igate WHERE "
                              "district='Buôn Ma Thuột'",
                              &json),
               0);
  cr_assert(strstr(json, "[1601460000000000000,44388,12.5]") != NULL, "%s",
            json);
  free(json);

  cr_assert_eq(h_influx_query(&e.db, "ioc", "SHOW FIELD KEYS FROM igate",
                              &json),
               0);
  /* Declared integer stays integer, declared float stays float even when
   * written as 30, an undeclared integer literal is learned as integer. */
  cr_assert(strstr(json, "[\"received\",\"integer\"]") != NULL, "%s", json);
  cr_assert(strstr(json, "[\"share\",\"float\"]") != NULL, "%s", json);
  cr_assert(strstr(json, "[\"online_l3\",\"integer\"]") != NULL, "%s", json);
  free(json);

  cr_assert_eq(h_influx_query(&e.db, "ioc",
                              "SHOW TAG VALUES FROM igate WITH KEY = district",
                              &json),
               0);
  cr_assert(strstr(json, "\"Ea H'Leo\"") && strstr(json, "\"M'Đrắk\"") &&
                strstr(json, "\"Buôn Ma Thuột\""),
            "%s", json);
  free(json);

  env_down(&e);
}

Test(e2e, value_line_and_senml_payloads_arrive, .timeout = 60) {
  struct h_env e;
  env_up(&e, "e2e-formats",
         "{\"name\": \"sensors\", \"topic\": "
         "\"ioc/{district}/sensors/{field}\", \"format\": \"value\", "
         "\"measurement\": \"sensors\"},\n"
         "    {\"name\": \"line\", \"topic\": \"ioc/{district}/line\", "
         "\"format\": \"line\"},\n"
         "    {\"name\": \"senml\", \"topic\": \"ioc/{district}/senml\", "
         "\"format\": \"senml\", \"measurement\": \"senml\"}");

  publish(&e, "ioc/Lắk/sensors/temperature", "27.5");
  publish(&e, "ioc/Lắk/sensors/visitors", "42");
  publish(&e, "ioc/Cư Kuin/line",
          "idesk,district=Spoofed documents_sent=120i,note=\"a \\\"b\\\"\" "
          "1601460000000000000");
  publish(&e, "ioc/Ea Súp/senml",
          "[{\"bn\":\"station1/\",\"bt\":1601460000,\"n\":\"temp\","
          "\"u\":\"Cel\",\"v\":31.5},{\"n\":\"rain\",\"u\":\"mm\",\"v\":2,"
          "\"t\":60}]");

  cr_assert_eq(
      h_env_wait_count(&e, "SELECT count(temperature) FROM sensors", 1, 15000),
      0);
  cr_assert_eq(
      h_env_wait_count(&e, "SELECT count(visitors) FROM sensors", 1, 15000), 0);
  cr_assert_eq(
      h_env_wait_count(&e, "SELECT count(documents_sent) FROM idesk", 1, 15000),
      0);
  char *json = NULL;
  cr_assert_eq(h_influx_query(&e.db, "ioc",
                              "SELECT temperature FROM sensors WHERE "
                              "district='Lắk'",
                              &json),
               0);
  cr_assert(strstr(json, ",27.5]") != NULL, "%s", json);
  free(json);
  /* The topic's district wins over the payload's tag. */
  cr_assert_eq(h_influx_query(&e.db, "ioc",
                              "SELECT documents_sent, note FROM idesk WHERE "
                              "district='Cư Kuin'",
                              &json),
               0);
  cr_assert(strstr(json, "[1601460000000000000,120,\"a \\\"b\\\"\"]") != NULL,
            "%s", json);
  free(json);
  cr_assert_eq(h_env_wait_count(&e, "SELECT count(*) FROM senml", 1, 15000), 0);
  cr_assert_eq(h_influx_query(&e.db, "ioc",
                              "SELECT * FROM senml WHERE district='Ea Súp'",
                              &json),
               0);
  cr_assert(strstr(json, "31.5") && strstr(json, "1601460060000000000"), "%s",
            json);
  free(json);
  env_down(&e);
}

Test(e2e, bad_messages_are_rejected_counted_and_the_next_one_is_stored,
     .timeout = 60) {
  struct h_env e;
  env_up(&e, "e2e-bad", NULL);

  publish(&e, "ioc/Ea Kar/igate", "{\"received\": 1,");
  publish(&e, "ioc/Ea Kar/igate", "{\"received\": \"many\"}");
  publish(&e, "ioc/Ea Kar/igate", "{\"received\": 2.5}");
  publish(&e, "ioc/Ea Kar/igate", "{\"share\": 1e999}");
  const char bad_utf8[] = "{\"received\": 3, \"x\": \"\xC3\x28\"}";
  publish(&e, "ioc/Ea Kar/igate", bad_utf8);
  char *big = malloc(70000);
  cr_assert_not_null(big);
  memset(big, ' ', 70000);
  memcpy(big, "{\"received\": 4}", 15);
  cr_assert_eq(h_publish(e.mq.port, "ioc/Ea Kar/igate", big, 70000, 1, NULL),
               0);
  free(big);
  publish(&e, "ioc/Ea Kar/igate", "{\"received\": 5, \"time\": 1601460000}");

  cr_assert_eq(h_env_wait_count(&e, COUNT_IGATE, 1, 15000), 0);
  double n = h_env_count(&e, COUNT_IGATE);
  cr_assert_eq(n, 1.0, "only the good message is stored, got %g", n);

  const char *reasons[] = {"malformed", "wrong_type", "type_conflict",
                           "not_finite", "invalid_utf8", "too_big"};
  for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++) {
    char series[160];
    snprintf(series, sizeof series,
             "iocd_rejects_total{subscription=\"igate\",reason=\"%s\"}",
             reasons[i]);
    cr_assert_eq(h_metric(e.api_port, series), 1.0, "%s", series);
  }
  cr_assert_eq(
      h_metric(e.api_port, "iocd_messages_total{subscription=\"igate\"}"), 7.0);
  cr_assert(h_iocd_log_contains(&e.iocd, "wrong_type"));
  cr_assert(h_iocd_log_contains(&e.iocd, "ioc/Ea Kar/igate"));
  env_down(&e);
}

Test(e2e, messages_published_while_iocd_is_down_arrive_after_restart,
     .timeout = 90) {
  struct h_env e;
  env_up(&e, "e2e-session", NULL);
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);

  for (int i = 0; i < 20; i++) {
    char payload[128];
    snprintf(payload, sizeof payload, "{\"received\": %d, \"time\": %d}", i,
             1601460000 + i);
    publish(&e, "ioc/Krông Búk/igate", payload);
  }
  iocd_start(&e);
  cr_assert_eq(h_env_wait_count(&e, COUNT_IGATE, 20, 20000), 0,
               "messages published while iocd was down were lost");
  env_down(&e);
}

/* Makes iocd read the numbers in "time" as milliseconds, the unit of
 * publish_seq's timestamps. Before iocd_start. */
static void config_ms(struct h_env *e) {
  config_insert(e, "\"tags\"", "\"time_unit_numbers\": \"ms\", ");
}

/* Publishes n messages at qos with distinct timestamps from one publisher. */
static void publish_seq(struct h_env *e, const char *district, int from, int n,
                        int qos) {
  struct h_pub *p = h_pub_open(e->mq.port, NULL);
  cr_assert_not_null(p);
  char topic[128];
  snprintf(topic, sizeof topic, "ioc/%s/igate", district);
  for (int i = from; i < from + n; i++) {
    char payload[128];
    int len = snprintf(payload, sizeof payload,
                       "{\"received\": %d, \"time\": %lld}", i,
                       1601460000000LL + i);
    cr_assert_eq(h_pub_send(p, topic, payload, (size_t)len, qos), 0);
  }
  cr_assert_eq(h_pub_flush(p), 0);
  h_pub_close(p);
}

/* All n points of the published sequences arrive within ms, each once. */
static void all_arrive(struct h_env *e, double n, int ms) {
  cr_assert_eq(h_env_wait_count(e, COUNT_IGATE, n, ms), 0,
               "got %g of %g points; see %s", h_env_count(e, COUNT_IGATE), n,
               e->iocd.log);
  cr_assert_eq(h_env_count(e, COUNT_IGATE), n);
}

Test(e2e, broker_restart_mid_stream_loses_nothing_at_qos1, .timeout = 120) {
  struct h_env e;
  env_prepare(&e, "e2e-broker-restart", NULL);
  config_ms(&e);
  iocd_start(&e);

  publish_seq(&e, "Krông Năng", 0, 2000, 1);
  cr_assert_eq(h_mosquitto_restart(&e.mq), 0);
  publish_seq(&e, "Krông Năng", 2000, 2000, 1);
  all_arrive(&e, 4000, 60000);
  env_down(&e);
}

Test(e2e, sigterm_under_load_writes_everything_accepted, .timeout = 120) {
  struct h_env e;
  env_prepare(&e, "e2e-sigterm", NULL);
  config_ms(&e);
  iocd_start(&e);

  publish_seq(&e, "Krông Pắc", 0, 5000, 1);
  /* Stop while iocd is still working through the stream. */
  int status = h_iocd_stop(&e.iocd, SIGTERM, 30000);
  cr_assert_eq(status, 0, "exit status %d: points left unwritten", status);
  double written = h_env_count(&e, COUNT_IGATE);
  cr_assert(h_iocd_log_contains(&e.iocd, "all accepted points written"));

  /* What iocd had not taken yet is still queued at the broker. */
  iocd_start(&e);
  cr_assert_eq(h_env_wait_count(&e, COUNT_IGATE, 5000, 60000), 0,
               "had %g before the restart, %g now", written,
               h_env_count(&e, COUNT_IGATE));
  env_down(&e);
}

Test(e2e, sighup_applies_a_valid_config_and_keeps_the_old_one_otherwise,
     .timeout = 60) {
  struct h_env e;
  env_up(&e, "e2e-reload", NULL);

  /* A broken file: iocd logs why and keeps running on the old one. */
  write_text(e.iocd.config, "{ \"mqtt\": { \"port\": \"not a number\" } }\n");
  kill(e.iocd.pid, SIGHUP);
  cr_assert_eq(h_iocd_wait_log(&e.iocd, "reload failed", 10000), 0);
  cr_assert(h_iocd_log_contains(&e.iocd, "mqtt.port"));
  publish(&e, "ioc/Lắk/igate", "{\"received\": 1, \"time\": 1601460000}");
  cr_assert_eq(h_env_wait_count(&e, COUNT_IGATE, 1, 15000), 0);

  /* A valid file with a new subscription: it is applied. */
  env_config(&e, "e2e-reload",
             "{\"name\": \"idesk\", \"topic\": \"ioc/{district}/idesk\", "
             "\"measurement\": \"idesk\"}");
  write_text(e.iocd.config, e.config);
  kill(e.iocd.pid, SIGHUP);
  cr_assert_eq(h_iocd_wait_log(&e.iocd, "configuration reloaded", 10000), 0);
  cr_assert_eq(h_metric(e.api_port, "iocd_config_reloads_total"), 1.0);
  cr_assert_eq(h_metric(e.api_port, "iocd_config_reload_failures_total"), 1.0);
  /* Give the new SUBSCRIBE a moment to be acknowledged. */
  h_sleep_ms(500);
  publish(&e, "ioc/Lắk/idesk", "{\"documents_sent\": 9, \"time\": 1601460000}");
  cr_assert_eq(
      h_env_wait_count(&e, "SELECT count(documents_sent) FROM idesk", 1, 15000),
      0);
  env_down(&e);
}

Test(e2e, health_ready_and_metrics_are_served, .timeout = 60) {
  struct h_env e;
  env_up(&e, "e2e-api", NULL);
  struct buf b;
  buf_init(&b, 1 << 20);
  cr_assert_eq(h_http_get(e.api_port, "/health", &b), 200);
  buf_reset(&b);
  cr_assert_eq(h_http_get(e.api_port, "/ready", &b), 200, "%s",
               b.data ? b.data : "");
  buf_reset(&b);
  cr_assert_eq(h_http_get(e.api_port, "/metrics", &b), 200);
  cr_assert(strstr(b.data, "# TYPE iocd_messages_total counter") != NULL);
  cr_assert(strstr(b.data, "iocd_mqtt_connected 1") != NULL, "%s", b.data);
  buf_reset(&b);
  cr_assert_eq(h_http_get(e.api_port, "/nope", &b), 404);

  /* InfluxDB down and a point to write: not ready, and /ready says why. */
  h_influxd_stop(&e.db);
  publish(&e, "ioc/Lắk/igate", "{\"received\": 1, \"time\": 1601460000}");
  bool influx_down = false;
  for (int i = 0; i < 200 && !influx_down; i++) {
    buf_reset(&b);
    influx_down = h_http_get(e.api_port, "/ready", &b) == 503 &&
                  strstr(b.data, "InfluxDB writes failing") != NULL;
    h_sleep_ms(50);
  }
  cr_assert(influx_down, "/ready does not report InfluxDB failing: %s",
            b.data ? b.data : "");
  cr_assert_eq(h_influxd_restart(&e.db), 0);
  bool back = false;
  for (int i = 0; i < 300 && !back; i++) {
    buf_reset(&b);
    back = h_http_get(e.api_port, "/ready", &b) == 200;
    h_sleep_ms(50);
  }
  cr_assert(back, "/ready stays 503 after InfluxDB came back: %s",
            b.data ? b.data : "");
  buf_cleanup(&b);

  h_mosquitto_stop(&e.mq);
  buf_init(&b, 1 << 20);
  bool not_ready = false;
  for (int i = 0; i < 100 && !not_ready; i++) {
    buf_reset(&b);
    not_ready = h_http_get(e.api_port, "/ready", &b) == 503;
    h_sleep_ms(50);
  }
  cr_assert(not_ready, "/ready stays 200 with the broker down");
  cr_assert(strstr(b.data, "MQTT") != NULL, "%s", b.data);
  buf_cleanup(&b);
  env_down(&e);
}

/* Runs the iocd binary with args and returns its exit status; its stdout and
 * stderr go to out. */
static int run_iocd(const char *const *args, struct buf *out) {
  char cmd[2048];
  size_t pos = (size_t)snprintf(cmd, sizeof cmd, "'%s'", h_iocd_bin());
  for (size_t i = 0; args[i]; i++) {
    pos += (size_t)snprintf(cmd + pos, sizeof cmd - pos, " '%s'", args[i]);
  }
  snprintf(cmd + pos, sizeof cmd - pos, " 2>&1");
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, p)) > 0) {
    buf_append(out, chunk, n);
  }
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `iocd check -c path`: its exit status; its output goes to out. */
static int iocd_check(const char *path, struct buf *out) {
  const char *args[] = {"check", "-c", path, NULL};
  return run_iocd(args, out);
}

/* A config file for `iocd check` in a temporary directory of its own. */
struct check_file {
  char dir[256];
  char path[512];
};

static void check_file_init(struct check_file *c, const char *name,
                            const char *text) {
  cr_assert_eq(h_tmpdir(c->dir, sizeof c->dir), 0);
  snprintf(c->path, sizeof c->path, "%s/%s", c->dir, name);
  write_text(c->path, text);
}

Test(e2e, check_names_file_line_and_exits_1_on_a_bad_config) {
  struct check_file cf;
  check_file_init(
      &cf, "bad.jsonc",
      "{\n  // broker\n  \"mqtt\": {\"port\": 70000},\n"
      "  \"subscriptions\": [{\"topic\": \"ioc/{district}/igate\"}],\n"
      "  \"file\": {\"enabled\": true, \"path\": \"-\"}\n}\n");
  struct buf out;
  buf_init(&out, 1 << 20);
  cr_assert_eq(iocd_check(cf.path, &out), 1);
  char want[600];
  snprintf(want, sizeof want,
           "%s:3:20: mqtt.port: expected an integer from 1 to 65535, got 70000",
           cf.path);
  cr_assert(strstr(out.data, want) != NULL, "got: %s", out.data);

  write_text(cf.path,
             "{\"subscriptions\": [{\"topic\": \"ioc/{district}/igate\"}],\n"
             " \"file\": {\"enabled\": true, \"path\": \"-\"}}\n");
  buf_reset(&out);
  cr_assert_eq(iocd_check(cf.path, &out), 0, "%s", out.data);
  cr_assert(strstr(out.data, "OK") != NULL);

  buf_reset(&out);
  const char *help[] = {"--help", NULL};
  cr_assert_eq(run_iocd(help, &out), 0);
  cr_assert(strstr(out.data, "iocd check") != NULL);
  buf_reset(&out);
  const char *version[] = {"--version", NULL};
  cr_assert_eq(run_iocd(version, &out), 0);
  cr_assert(strncmp(out.data, "iocd ", 5) == 0);
  buf_cleanup(&out);
  h_rmtree(cf.dir);
}

Test(e2e, example_config_is_valid) {
  struct buf out;
  buf_init(&out, 1 << 20);
  cr_assert_eq(iocd_check(IOCD_SOURCE_DIR "/config/iocd.example.jsonc", &out),
               0, "%s", out.data);
  buf_cleanup(&out);
}

Test(e2e, content_type_picks_the_decoder_and_rejects_go_to_the_dead_letter,
     .timeout = 60) {
  struct h_env e;
  env_up(&e, "e2e-auto",
         "{\"name\": \"auto\", \"topic\": \"ioc/{district}/auto\", "
         "\"format\": \"auto\", \"measurement\": \"auto\", "
         "\"dead_letter\": \"iocd/rejected/auto\"}");

  /* A subscriber on the dead-letter topic, through the broker. */
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "timeout 20 mosquitto_sub -p %d -t iocd/rejected/auto -C 1 "
           "-W 15 > %s/dead.txt 2>&1 &",
           e.mq.port, e.dir);
  cr_assert_eq(system(cmd), 0);
  h_sleep_ms(500);

  const char *json = "{\"v\": 7, \"time\": 1601460000}";
  cr_assert_eq(h_publish(e.mq.port, "ioc/Lắk/auto", json, strlen(json), 1,
                         "application/json"),
               0);
  const char *line = "auto v=8i 1601460001000000000";
  cr_assert_eq(h_publish(e.mq.port, "ioc/Lắk/auto", line, strlen(line), 1,
                         "application/x-influx-line-protocol"),
               0);
  const char *bad = "{\"v\": ";
  cr_assert_eq(h_publish(e.mq.port, "ioc/Lắk/auto", bad, strlen(bad), 1,
                         "application/json"),
               0);
  cr_assert_eq(h_env_wait_count(&e, "SELECT count(v) FROM auto", 2, 15000), 0);
  char *rows = NULL;
  cr_assert_eq(h_influx_query(&e.db, "ioc", "SELECT v FROM auto", &rows), 0);
  cr_assert(strstr(rows, "[1601460000000000000,7]") &&
                strstr(rows, "[1601460001000000000,8]"),
            "%s", rows);
  free(rows);

  char path[600];
  snprintf(path, sizeof path, "%s/dead.txt", e.dir);
  bool got = false;
  for (int i = 0; i < 100 && !got; i++) {
    FILE *f = fopen(path, "r");
    char text[256] = "";
    if (f) {
      size_t n = fread(text, 1, sizeof text - 1, f);
      text[n] = '\0';
      fclose(f);
    }
    got = strstr(text, "{\"v\": ") != NULL;
    h_sleep_ms(100);
  }
  cr_assert(got, "the rejected payload did not reach the dead-letter topic");
  cr_assert_eq(h_metric(e.api_port, "iocd_dead_letters_total"), 1.0);
  env_down(&e);
}

Test(e2e, check_refuses_a_dead_letter_topic_that_loops_back) {
  struct check_file cf;
  check_file_init(&cf, "loop.jsonc",
                  "{\"subscriptions\": [{\"name\": \"senml\", \"topic\": "
                  "\"ioc/{district}/senml\", \"format\": \"senml\", "
                  "\"dead_letter\": \"ioc/_rejected/senml\"}],\n"
                  " \"file\": {\"path\": \"-\"}}\n");
  struct buf out;
  buf_init(&out, 1 << 20);
  cr_assert_eq(iocd_check(cf.path, &out), 1);
  cr_assert(strstr(out.data, "subscriptions[0].dead_letter: "
                             "\"ioc/_rejected/senml\" matches the topic of "
                             "subscription senml") != NULL,
            "%s", out.data);
  buf_cleanup(&out);
  h_rmtree(cf.dir);
}

Test(e2e, influxdb_outage_pauses_intake_and_loses_nothing, .timeout = 120) {
  struct h_env e;
  env_prepare(&e, "e2e-outage", NULL);
  /* A small buffer, so that the outage fills it. */
  config_insert(&e, "\"flush_interval\"", "\"buffer\": \"1MiB\", ");
  /* The in-memory queue: this test is about back-pressure without the
   * journal (test_durability covers outages with it). */
  config_insert(&e, "\"api\"", "\"journal\": {\"enabled\": false},\n  ");
  config_ms(&e);
  iocd_start(&e);

  h_influxd_stop(&e.db);
  publish_seq(&e, "Ea H'Leo", 0, 20000, 1);
  cr_assert_eq(h_iocd_wait_log(&e.iocd, "intake paused", 20000), 0,
               "intake did not pause with InfluxDB down; see %s",
               e.iocd.log);
  cr_assert_eq(h_metric(e.api_port, "iocd_buffer_full_total"), 0.0);
  cr_assert(h_metric(e.api_port, "iocd_intake_pauses_total") >= 1.0);

  cr_assert_eq(h_influxd_restart(&e.db), 0);
  all_arrive(&e, 20000, 60000);
  cr_assert(h_iocd_log_contains(&e.iocd, "intake resumed"));
  cr_assert_eq(h_metric(e.api_port, "iocd_buffer_full_total"), 0.0);
  env_down(&e);
}

Test(e2e, qos2_burst_arrives_whole, .timeout = 120) {
  struct h_env e;
  env_prepare(&e, "e2e-qos2", NULL);
  config_ms(&e);
  char *q = strstr(e.config, "\"qos\": 1");
  cr_assert_not_null(q);
  q[7] = '2';
  iocd_start(&e);

  publish_seq(&e, "Cư M'gar", 0, 3000, 2);
  all_arrive(&e, 3000, 60000);
  cr_assert_eq(h_metric(e.api_port, "iocd_mqtt_disconnects_total"), 0.0);
  env_down(&e);
}
