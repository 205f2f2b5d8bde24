/*
 * The operators' read endpoints and the reload against the running iocd:
 * a real mosquitto and influxd, the iocd binary, district data published
 * over MQTT, and each answer checked against what was published:
 * GET /api/v1/latest, /api/v1/alerts with its filters, /api/v1/rules with
 * its groups, /api/v1/status (and no secret in it), /metrics as promtool
 * reads it, and POST /api/v1/reload (a new threshold seen in the rules; 409
 * while a reload runs; a failed one reported in the status).
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "tests/harness/harness.h"

#define MQTT_PASSWORD "mqtt-pw-3b7e1c-S3CRET"
#define TELEGRAM_TOKEN "123456:telegram-9f2d0a-S3CRET"

/* iocd's config: the broker account (mosquitto accepts any, the password
 * must still stay hidden), the igate subscription, a rule on the online
 * share with the given threshold, extra (more members, may be ""), and
 * notifications to a Telegram receiver nobody answers. */
static void write_config(struct h_env *e, const char *threshold,
                         const char *extra) {
  int dead = h_free_port();
  int k = snprintf(
      e->config, sizeof e->config,
      "{\n"
      "  \"data_dir\": \"%s/data\",\n"
      "  \"log\": {\"level\": \"info\"},\n"
      "  \"mqtt\": {\"host\": \"127.0.0.1\", \"port\": %d,\n"
      "           \"client_id\": \"endpoints\", \"username\": \"iocd\",\n"
      "           \"password\": \"" MQTT_PASSWORD
      "\",\n"
      "           \"reconnect_min\": \"100ms\", \"reconnect_max\": "
      "\"500ms\"},\n"
      "  \"influxdb\": {\"url\": \"%s\", \"database\": \"ioc\",\n"
      "               \"flush_interval\": \"100ms\"},\n"
      "  \"api\": {\"listen\": \"127.0.0.1:%d\"},\n"
      "  \"subscriptions\": [{\"name\": \"igate\", \"topic\": "
      "\"ioc/{district}/igate\",\n"
      "    \"measurement\": \"igate\", \"tags\": {\"system\": \"igate\"},\n"
      "    \"types\": {\"received\": \"integer\", \"online\": "
      "\"integer\"}}],\n"
      "  \"rule_engine\": {\"evaluation_interval\": \"1s\"},\n"
      "  \"rules\": [{\"name\": \"online_low\",\n"
      "    \"expr\": \"igate.online / igate.received < %s\",\n"
      "    \"by\": [\"district\"], \"missing\": \"keep\"}],\n"
      "  \"notifications\": {\n"
      "    \"receivers\": [{\"name\": \"duty\", \"type\": \"telegram\",\n"
      "      \"base_url\": \"http://127.0.0.1:%d\", \"token\": "
      "\"" TELEGRAM_TOKEN
      "\",\n"
      "      \"chat_id\": \"-100\", \"max_attempts\": 1}],\n"
      "    \"route\": {\"receiver\": \"duty\", \"group_wait\": \"0s\"}}%s%s\n"
      "}\n",
      e->dir, e->mq.port, e->db.url, e->api_port, threshold, dead,
      extra[0] ? ",\n" : "", extra);
  cr_assert(k > 0 && (size_t)k < sizeof e->config);
}

/* Rewrites the config file iocd runs on (for a reload). */
static void rewrite_config(struct h_env *e) {
  FILE *f = fopen(e->iocd.config, "w");
  cr_assert_not_null(f);
  cr_assert_eq(fputs(e->config, f) >= 0, true);
  cr_assert_eq(fclose(f), 0);
}

static void publish(struct h_env *e, const char *district, int received,
                    int online) {
  char topic[64], payload[96];
  snprintf(topic, sizeof topic, "ioc/%s/igate", district);
  int n = snprintf(payload, sizeof payload,
                   "{\"received\": %d, \"online\": %d}", received, online);
  cr_assert_eq(h_publish(e->mq.port, topic, payload, (size_t)n, 1, NULL), 0);
}

/* GET path: the status, and the body parsed as JSON (caller deletes). */
static cJSON *get_json(struct h_env *e, const char *path, long want,
                       struct buf *raw) {
  struct buf b;
  buf_init(&b, 16u << 20);
  long st = h_http_get(e->api_port, path, &b);
  cr_assert_eq(st, want, "GET %s: %ld, want %ld: %s", path, st, want,
               b.data ? b.data : "");
  cJSON *doc = cJSON_ParseWithLength(b.data, b.len);
  cr_assert_not_null(doc, "GET %s: not JSON: %s", path, b.data);
  if (raw) {
    buf_append(raw, b.data, b.len);
    buf_putc(raw, '\0');
  }
  buf_cleanup(&b);
  return doc;
}

/* Sends POST path on two connections at once, both requests written
 * before either answer is read, and returns the two statuses (0: none). */
static void post_twice(int port, const char *path, int status[2]) {
  int fd[2];
  char req[256];
  int n = snprintf(req, sizeof req,
                   "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                   path);
  for (int i = 0; i < 2; i++) {
    fd[i] = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd[i] >= 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd[i], (struct sockaddr *)&sa, sizeof sa), 0);
  }
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(send(fd[i], req, (size_t)n, MSG_NOSIGNAL), n);
  }
  for (int i = 0; i < 2; i++) {
    char got[1024];
    size_t have = 0;
    ssize_t r;
    while (have < sizeof got - 1 &&
           (r = recv(fd[i], got + have, sizeof got - 1 - have, 0)) > 0) {
      have += (size_t)r; /* every answer closes its connection */
    }
    got[have] = '\0';
    status[i] =
        strncmp(got, "HTTP/1.1 ", 9) == 0 ? (int)strtol(got + 9, NULL, 10) : 0;
    close(fd[i]);
  }
}

static cJSON *item(const cJSON *o, const char *k) {
  cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  cr_assert_not_null(v, "no \"%s\" in %s", k, cJSON_PrintUnformatted(o));
  return v;
}

static size_t count_of(struct h_env *e, const char *path) {
  cJSON *doc = get_json(e, path, 200, NULL);
  cJSON *list = doc->child; /* "alerts" or "series" */
  size_t n = (size_t)cJSON_GetArraySize(list);
  cJSON_Delete(doc);
  return n;
}

/* The group of rule (the first of /api/v1/rules) whose district is d;
 * NULL when there is none. Deleted with doc. */
static cJSON *group_of(cJSON *doc, const char *d) {
  cJSON *rule = cJSON_GetArrayItem(item(doc, "rules"), 0);
  cJSON *g;
  cJSON_ArrayForEach(g, item(rule, "groups")) {
    if (strcmp(item(item(g, "labels"), "district")->valuestring, d) == 0) {
      return g;
    }
  }
  return NULL;
}

struct state_wait {
  struct h_env *e;
  const char *district;
  const char *state;
  double threshold;
};

static bool group_reached(void *ud) {
  struct state_wait *w = ud;
  cJSON *doc = get_json(w->e, "/api/v1/rules", 200, NULL);
  cJSON *g = group_of(doc, w->district);
  bool ok = g && strcmp(item(g, "state")->valuestring, w->state) == 0 &&
            cJSON_IsNumber(item(g, "threshold")) &&
            item(g, "threshold")->valuedouble == w->threshold;
  cJSON_Delete(doc);
  return ok;
}

static void wait_group(struct h_env *e, const char *district, const char *state,
                       double threshold) {
  struct state_wait w = {e, district, state, threshold};
  cr_assert_eq(h_wait_until(group_reached, &w, 15000), 0,
               "%s never %s with threshold %g", district, state, threshold);
}

/* promtool's verdict on /metrics: its exit status and what it printed. */
static int promtool_check(const char *metrics, size_t len, char *said,
                          size_t n) {
  char path[] = "/tmp/iocd-metrics-XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  cr_assert_eq(write(fd, metrics, len), (ssize_t)len);
  close(fd);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "/usr/bin/promtool check metrics < %s 2>&1", path);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  size_t got = fread(said, 1, n - 1, p);
  said[got] = '\0';
  int status = pclose(p);
  unlink(path);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(api_endpoints, answer_what_was_published) {
  struct h_env e;
  cr_assert_eq(h_env_start(&e), 0);
  write_config(&e, "0.3", "");
  cr_assert_eq(h_env_iocd_start(&e), 0, "see %s", e.iocd.log);
  publish(&e, "A", 100, 10); /* 10% online: below 30% */
  publish(&e, "B", 100, 50);
  cr_assert_eq(
      h_env_wait_count(&e, "SELECT count(received) FROM igate", 2, 15000), 0);
  wait_group(&e, "A", "firing", 0.3);

  /* The latest values: the published fields, per district. */
  cJSON *doc = get_json(&e, "/api/v1/latest?district=A", 200, NULL);
  cJSON *series = item(doc, "series");
  cr_assert_eq(cJSON_GetArraySize(series), 1);
  cJSON *s = cJSON_GetArrayItem(series, 0);
  cr_expect_str_eq(item(s, "measurement")->valuestring, "igate");
  cr_expect_str_eq(item(item(s, "tags"), "district")->valuestring, "A");
  cr_expect_str_eq(item(item(s, "tags"), "system")->valuestring, "igate");
  cr_expect_eq(item(item(s, "fields"), "received")->valuedouble, 100);
  cr_expect_eq(item(item(s, "fields"), "online")->valuedouble, 10);
  cr_expect_eq(strlen(item(s, "time")->valuestring) >= 20, true);
  cJSON_Delete(doc);
  cr_expect_eq(count_of(&e, "/api/v1/latest"), 2);
  cr_expect_eq(count_of(&e, "/api/v1/latest?district=B&system=igate"), 1);
  cr_expect_eq(count_of(&e, "/api/v1/latest?district=A&system=dvc"), 0);
  cr_expect_eq(count_of(&e, "/api/v1/latest?measurement=other"), 0);
  publish(&e, "A", 120, 30);
  struct buf raw;
  buf_init(&raw, 1u << 20);
  for (int i = 0; i < 100; i++) {
    doc = get_json(&e, "/api/v1/latest?district=A", 200, NULL);
    double v = item(item(cJSON_GetArrayItem(item(doc, "series"), 0), "fields"),
                    "received")
                   ->valuedouble;
    cJSON_Delete(doc);
    if (v == 120) {
      break;
    }
    cr_assert_lt(i, 99, "the second value of A never showed");
    h_sleep_ms(100);
  }

  /* The alerts, filtered: A fires, B does not. */
  cr_expect_eq(count_of(&e, "/api/v1/alerts?district=A&state=firing"), 1);
  cr_expect_eq(count_of(&e, "/api/v1/alerts?district=B"), 0);
  cr_expect_eq(count_of(&e, "/api/v1/alerts?rule=online_low&state=pending"), 0);
  cr_expect_eq(
      count_of(&e, "/api/v1/alerts?rule=online_low&severity=warning,critical"),
      1);
  cr_expect_eq(count_of(&e, "/api/v1/alerts?rule=online_low&severity=info"), 0);
  doc = get_json(&e, "/api/v1/alerts?state=fire", 400, NULL);
  const char *msg = item(doc, "error")->valuestring;
  cr_expect(strstr(msg, "state") && strstr(msg, "pending, firing, nodata"),
            "%s", msg);
  cJSON_Delete(doc);
  doc = get_json(&e, "/api/v1/alerts?severity=urgent", 400, NULL);
  msg = item(doc, "error")->valuestring;
  cr_expect(strstr(msg, "severity") && strstr(msg, "info, warning, critical"),
            "%s", msg);
  cJSON_Delete(doc);

  /* The rules with their groups and last values (30/120 = 0.25 for A). */
  wait_group(&e, "B", "inactive", 0.3);
  doc = get_json(&e, "/api/v1/rules", 200, NULL);
  cJSON *b = group_of(doc, "B");
  cr_expect_eq(item(b, "value")->valuedouble, 0.5);
  cJSON_Delete(doc);

  /* The status: what runs, and no secret. */
  buf_reset(&raw);
  doc = get_json(&e, "/api/v1/status", 200, &raw);
  cr_expect_null(strstr(raw.data, MQTT_PASSWORD), "%s", raw.data);
  cr_expect_null(strstr(raw.data, "S3CRET"), "%s", raw.data);
  cr_expect_eq(item(doc, "pid")->valuedouble, (double)e.iocd.pid);
  cr_expect_gt(item(doc, "uptime_s")->valuedouble, 0);
  cJSON *c = item(doc, "config");
  cr_expect_eq(item(item(c, "broker"), "port")->valuedouble, e.mq.port);
  cr_expect_eq(item(item(c, "subscriptions"), "count")->valuedouble, 1);
  cr_expect_str_eq(
      item(item(item(c, "outputs"), "influxdb"), "url")->valuestring, e.db.url);
  cr_expect_eq(item(item(c, "rules"), "count")->valuedouble, 1);
  cJSON *r = cJSON_GetArrayItem(item(item(c, "notifications"), "receivers"), 0);
  cr_expect_str_eq(item(r, "name")->valuestring, "duty");
  cr_expect_str_eq(item(r, "type")->valuestring, "telegram");
  cr_expect(cJSON_IsNull(item(doc, "last_reload")));
  cJSON_Delete(doc);

  /* /metrics as Prometheus reads it: no complaint from promtool. */
  if (access("/usr/bin/promtool", X_OK) == 0) {
    buf_reset(&raw);
    cr_assert_eq(h_http_get(e.api_port, "/metrics", &raw), 200);
    cr_expect_null(strstr(raw.data, "S3CRET"));
    char said[4096];
    int rc = promtool_check(raw.data, raw.len, said, sizeof said);
    cr_expect_eq(rc, 0, "promtool exited %d: %s", rc, said);
    cr_expect_str_eq(said, "", "promtool complains: %s", said);
    cr_expect(strstr(raw.data, "\niocd_build_info{version=\"") != NULL);
    cr_expect(strstr(raw.data, "\n# TYPE iocd_uptime_seconds gauge\n") != NULL);
    cr_expect(strstr(raw.data, "\niocd_start_time_seconds ") != NULL);
    cr_expect(strstr(raw.data, "\n# TYPE iocd_alerts_firing gauge\n") &&
                  strstr(raw.data, "\n# TYPE iocd_notify_notices_total "),
              "the families of the rules and notifications are missing");
  } else {
    cr_log_warn("promtool is not installed: /metrics not checked by it");
  }
  buf_cleanup(&raw);
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  h_env_stop(&e);
}

struct reload_wait {
  struct h_env *e;
};

static bool reload_ended(void *ud) {
  struct reload_wait *w = ud;
  cJSON *doc = get_json(w->e, "/api/v1/status", 200, NULL);
  bool ended = !cJSON_IsTrue(item(doc, "reloading")) &&
               cJSON_IsObject(item(doc, "last_reload"));
  cJSON_Delete(doc);
  return ended;
}

/* Waits for the reload to end and returns its "last_reload" (caller
 * deletes). */
static cJSON *last_reload(struct h_env *e) {
  struct reload_wait w = {e};
  cr_assert_eq(h_wait_until(reload_ended, &w, 30000), 0, "no reload ended");
  cJSON *doc = get_json(e, "/api/v1/status", 200, NULL);
  cJSON *lr = cJSON_DetachItemFromObject(doc, "last_reload");
  cJSON_Delete(doc);
  return lr;
}

/* A rule file of n rules, so that a reload takes long enough for a second
 * request to find it running. */
static void many_rules(struct h_env *e, int n) {
  char path[512];
  snprintf(path, sizeof path, "%s/many.jsonc", e->dir);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs("{\"rules\": [\n", f);
  for (int i = 0; i < n; i++) {
    fprintf(f,
            "%s{\"name\": \"r%d\", \"expr\": \"m%d.v > %d\", \"by\": "
            "[\"district\"]}\n",
            i ? "," : "", i, i % 50, i);
  }
  fputs("]}\n", f);
  cr_assert_eq(fclose(f), 0);
}

Test(api_endpoints, reload_applies_a_new_threshold_and_refuses_a_second) {
  struct h_env e;
  cr_assert_eq(h_env_start(&e), 0);
  many_rules(&e, 1000);
  char extra[600];
  snprintf(extra, sizeof extra, "  \"rule_files\": [\"%s/many.jsonc\"]", e.dir);
  write_config(&e, "0.3", extra);
  cr_assert_eq(h_env_iocd_start(&e), 0, "see %s", e.iocd.log);
  publish(&e, "A", 100, 20);
  wait_group(&e, "A", "firing", 0.3);

  /* The threshold drops to 10%: 20% is no longer low. */
  write_config(&e, "0.1", extra);
  rewrite_config(&e);
  /* Two at once: one starts it, the other finds it running. */
  int st[2];
  post_twice(e.api_port, "/api/v1/reload", st);
  cr_expect((st[0] == 202 && st[1] == 409) || (st[0] == 409 && st[1] == 202),
            "answers %d and %d, want 202 and 409", st[0], st[1]);
  cJSON *lr = last_reload(&e);
  cr_expect(cJSON_IsTrue(item(lr, "ok")), "%s", cJSON_PrintUnformatted(lr));
  cr_expect(cJSON_IsNull(item(lr, "error")));
  cr_expect_str_eq(item(lr, "by")->valuestring, "api (anonymous)");
  cJSON_Delete(lr);
  cJSON *doc = get_json(&e, "/api/v1/rules?rule=online_low", 200, NULL);
  cr_expect_str_eq(
      item(cJSON_GetArrayItem(item(doc, "rules"), 0), "expr")->valuestring,
      "igate.online / igate.received < 0.1");
  cr_expect_eq(cJSON_GetArraySize(item(doc, "rules")), 1);
  cJSON_Delete(doc);
  publish(&e, "A", 100, 20);
  wait_group(&e, "A", "inactive", 0.1);
  cr_expect_eq(count_of(&e, "/api/v1/alerts?rule=online_low"), 0);

  /* A configuration that does not load: the old one stays, and the status
   * says why. */
  write_config(&e, "0.1 +", extra);
  rewrite_config(&e);
  struct buf out;
  buf_init(&out, 1u << 20);
  cr_assert_eq(h_http_request(e.api_port, "POST", "/api/v1/reload", NULL, &out),
               202, "%s", out.data);
  cr_expect_str_eq(out.data, "{\"reload\":\"started\"}\n");
  lr = last_reload(&e);
  for (int i = 0; i < 100 && cJSON_IsTrue(item(lr, "ok")); i++) {
    cJSON_Delete(lr); /* the earlier reload's, until this one ends */
    h_sleep_ms(100);
    lr = last_reload(&e);
  }
  cr_expect(cJSON_IsFalse(item(lr, "ok")));
  cr_expect(strstr(item(lr, "error")->valuestring, "online_low") != NULL ||
                strstr(item(lr, "error")->valuestring, "expr") != NULL,
            "%s", item(lr, "error")->valuestring);
  cJSON_Delete(lr);
  doc = get_json(&e, "/api/v1/rules?rule=online_low", 200, NULL);
  cr_expect_str_eq(
      item(cJSON_GetArrayItem(item(doc, "rules"), 0), "expr")->valuestring,
      "igate.online / igate.received < 0.1");
  cJSON_Delete(doc);
  doc = get_json(&e, "/api/v1/rules?rule=nope", 404, NULL);
  cJSON_Delete(doc);
  buf_reset(&out);
  cr_expect_eq(h_http_request(e.api_port, "POST", "/api/v1/status", NULL, &out),
               405);
  buf_cleanup(&out);
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  h_env_stop(&e);
}
