/*
 * Alert delivery end to end: a district's MQTT message, through iocd (a
 * real mosquitto and influxd on free ports, the iocd binary as a black
 * box), to what a leader or an operator receives: an email in a real SMTP
 * server's mailbox, a webhook request, Alertmanager's list, the retained
 * state on the broker. And what an operator does: acknowledge and silence
 * through the API; what an administrator fears: a receiver down, iocd
 * killed with notifications pending. Each notification is counted at the
 * receiver: it must arrive, and once.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <mosquitto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "tests/harness/harness.h"

/* One rule: the online share of a district below 30%, at once (no `for`),
 * and the subscription its figures arrive on. receivers and route are the
 * "notifications" members. */
static void config(struct h_env *e, const char *client_id,
                   const char *notifications) {
  cr_assert_eq(
      h_env_config(
          e, client_id,
          "  \"subscriptions\": [\n"
          "    {\"name\": \"igate\", \"topic\": \"ioc/{district}/igate\",\n"
          "     \"measurement\": \"igate\", \"tags\": {\"system\": "
          "\"igate\"}}],\n"
          "  \"sources\": {\"districts\": [\"Ea H'Leo\", \"Krông Búk\", "
          "\"Lắk\", \"M'Drắk\", \"Cư M'gar\"]},\n"
          "  \"rule_engine\": {\"evaluation_interval\": \"1s\"},\n"
          "  \"rules\": [\n"
          "    {\"name\": \"online_share_low\",\n"
          "     \"expr\": \"igate.online / igate.received < 0.3\",\n"
          "     \"by\": [\"district\"], \"labels\": {\"unit\": \"ratio\"},\n"
          "     \"annotations\": {\"summary\": \"Tỷ lệ hồ sơ trực tuyến của "
          "{{district}} dưới mục tiêu\"}}],\n"
          "  \"notifications\": {%s}\n",
          notifications),
      0);
}

static void start(struct h_env *e, const char *client_id,
                  const char *notifications) {
  cr_assert_eq(h_env_start(e), 0);
  config(e, client_id, notifications);
  cr_assert_eq(h_env_iocd_start(e), 0, "iocd did not start; see %s",
               e->iocd.log);
}

static void publish(struct h_env *e, const char *district, int received,
                    int online) {
  char topic[128], payload[128];
  snprintf(topic, sizeof topic, "ioc/%s/igate", district);
  int n = snprintf(payload, sizeof payload,
                   "{\"received\": %d, \"online\": %d}", received, online);
  cr_assert_eq(h_publish(e->mq.port, topic, payload, (size_t)n, 1, NULL), 0);
}

static void stop(struct h_env *e) {
  cr_expect_eq(h_iocd_stop(&e->iocd, SIGTERM, 15000), 0, "see %s", e->iocd.log);
  h_env_stop(e);
}

/* A JSON document's string member, "" when absent. */
static const char *jstr(const cJSON *o, const char *name) {
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(m) ? m->valuestring : "";
}

/* The webhook request i of r, parsed (caller frees). */
static cJSON *request_json(struct h_recorder *r, size_t i) {
  struct h_request q;
  cr_assert(h_recorder_get(r, i, &q), "no request %zu", i);
  cJSON *doc = cJSON_Parse(q.body);
  cr_assert_not_null(doc, "not JSON: %s", q.body);
  h_request_cleanup(&q);
  return doc;
}

Test(notify_e2e, a_districts_breach_reaches_a_leaders_mailbox_in_vietnamese,
     .timeout = 120) {
  struct h_smtp smtp;
  cr_assert_eq(h_smtp_start(&smtp), 0);
  char notif[1024];
  snprintf(notif, sizeof notif,
           "\"grafana_url\": \"http://grafana.ioc.local:3000\",\n"
           "\"receivers\": [{\"name\": \"director\", \"type\": \"email\",\n"
           "  \"smtp_url\": \"%s\", \"smtp_tls\": \"none\",\n"
           "  \"from\": \"IOC Đắk Lắk <ioc@daklak.gov.vn>\",\n"
           "  \"to\": [\"giamdoc.stttt@daklak.gov.vn\"]}],\n"
           "\"route\": {\"receiver\": \"director\", \"group_wait\": \"0s\",\n"
           "  \"group_interval\": \"1s\", \"group_by\": [\"district\"]}",
           smtp.url);
  struct h_env e;
  start(&e, "notify-email", notif);
  publish(&e, "Ea H'Leo", 1000, 106);
  cr_assert_eq(h_smtp_wait(&smtp, 1, 20000), 0, "no email; see %s", e.iocd.log);
  publish(&e, "Ea H'Leo", 1000, 406);
  cr_assert_eq(h_smtp_wait(&smtp, 2, 20000), 0, "no resolved email; see %s",
               e.iocd.log);
  char *json = NULL;
  cr_assert_eq(h_smtp_messages(&smtp, &json), 0);
  cJSON *msgs = cJSON_Parse(json);
  cr_assert(cJSON_IsArray(msgs) && cJSON_GetArraySize(msgs) == 2, "%s", json);
  const cJSON *firing = cJSON_GetArrayItem(msgs, 0);
  const cJSON *resolved = cJSON_GetArrayItem(msgs, 1);
  /* The subject decodes back byte-exact, diacritics and apostrophe kept. */
  cr_expect(strstr(jstr(firing, "subject"), "[CẢNH BÁO]") != NULL, "%s",
            jstr(firing, "subject"));
  cr_expect(strstr(jstr(firing, "subject"),
                   "Tỷ lệ hồ sơ trực tuyến của Ea H'Leo dưới mục tiêu") != NULL,
            "%s", jstr(firing, "subject"));
  const char *text = jstr(firing, "text");
  cr_expect(strstr(text, "Ea H'Leo") != NULL, "%s", text);
  cr_expect(strstr(text, "10,6%") != NULL, "the value as 10,6%%: %s", text);
  cr_expect(strstr(text, "30%") != NULL, "the target: %s", text);
  cr_expect(strstr(text,
                   "http://grafana.ioc.local:3000/d/iocd-district"
                   "?var-district=Ea%20H%27Leo") != NULL,
            "the district's dashboard: %s", text);
  cr_expect(strstr(jstr(firing, "html"), "Ea H&#39;Leo") != NULL ||
                strstr(jstr(firing, "html"), "Ea H&#x27;Leo") != NULL,
            "the HTML part: %s", jstr(firing, "html"));
  cr_expect_str_eq(jstr(firing, "rcpt_to"), "giamdoc.stttt@daklak.gov.vn");
  cr_expect(strstr(jstr(resolved, "subject"), "[ĐÃ KHẮC PHỤC]") != NULL, "%s",
            jstr(resolved, "subject"));
  cr_expect(strstr(jstr(resolved, "text"), "40,6%") != NULL, "%s",
            jstr(resolved, "text"));
  cJSON_Delete(msgs);
  free(json);
  stop(&e);
  h_smtp_stop(&smtp);
}

/* The webhook's notice ids answered 2xx, each counted. */
struct tally {
  char ids[64][17];
  int count[64];
  int n;
};

static void tally_add(struct tally *t, const char *id) {
  for (int i = 0; i < t->n; i++) {
    if (strcmp(t->ids[i], id) == 0) {
      t->count[i]++;
      return;
    }
  }
  cr_assert_lt(t->n, 64);
  snprintf(t->ids[t->n], sizeof t->ids[t->n], "%s", id);
  t->count[t->n++] = 1;
}

/* Requests first..count-1 of r, by the notice id iocd gives each. */
static void tally_requests(struct h_recorder *r, size_t first,
                           struct tally *t) {
  memset(t, 0, sizeof *t);
  for (size_t i = first; i < h_recorder_count(r); i++) {
    cJSON *doc = request_json(r, i);
    const cJSON *iocd = cJSON_GetObjectItemCaseSensitive(doc, "iocd");
    cr_assert_not_null(iocd);
    tally_add(t, jstr(iocd, "notice_id"));
    cJSON_Delete(doc);
  }
}

static const char webhook_route[] =
    "\"route\": {\"receiver\": \"ops\", \"group_wait\": \"0s\",\n"
    "  \"group_interval\": \"1s\", \"repeat_interval\": \"1h\",\n"
    "  \"group_by\": [\"district\"]}";

Test(notify_e2e, a_receiver_down_for_a_while_gets_the_notification_once,
     .timeout = 120) {
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  h_recorder_script(rec, 3, 503, "{\"error\":\"maintenance\"}", NULL);
  char notif[1024];
  snprintf(notif, sizeof notif,
           "\"receivers\": [{\"name\": \"ops\", \"type\": \"webhook\",\n"
           "  \"url\": \"%s/hook\", \"retry_min\": \"200ms\",\n"
           "  \"retry_max\": \"500ms\"}],\n%s",
           h_recorder_url(rec), webhook_route);
  struct h_env e;
  start(&e, "notify-down", notif);
  publish(&e, "Krông Búk", 500, 20);
  cr_assert_eq(h_recorder_wait(rec, 4, 30000), 0, "see %s", e.iocd.log);
  h_sleep_ms(1500);
  cr_assert_eq(h_recorder_count(rec), 4, "3 refusals and one delivery");
  struct tally t;
  tally_requests(rec, 0, &t);
  cr_assert_eq(t.n, 1, "one notification, tried 4 times");
  cr_expect_eq(h_metric(e.api_port,
                        "iocd_notifications_total{receiver=\"ops\","
                        "outcome=\"sent\"}"),
               1);
  cr_expect_eq(h_metric(e.api_port,
                        "iocd_notifications_total{receiver=\"ops\","
                        "outcome=\"retry\"}"),
               3);
  stop(&e);
  h_recorder_stop(rec);
}

Test(notify_e2e, notifications_pending_at_a_kill_9_arrive_once_after_restart,
     .timeout = 180) {
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  h_recorder_default(rec, 503, "{}");
  char notif[1024];
  snprintf(notif, sizeof notif,
           "\"receivers\": [{\"name\": \"ops\", \"type\": \"webhook\",\n"
           "  \"url\": \"%s/hook\", \"retry_min\": \"300ms\",\n"
           "  \"retry_max\": \"300ms\", \"max_attempts\": 1000}],\n%s",
           h_recorder_url(rec), webhook_route);
  struct h_env e;
  start(&e, "notify-kill", notif);
  static const char *const districts[] = {"Ea H'Leo", "Krông Búk", "Lắk",
                                          "M'Drắk", "Cư M'gar"};
  for (size_t i = 0; i < 5; i++) {
    publish(&e, districts[i], 1000, 100);
  }
  /* Every district's notification tried at least once, none accepted. */
  for (int tries = 0; tries < 100; tries++) {
    struct tally t;
    tally_requests(rec, 0, &t);
    if (t.n == 5) {
      break;
    }
    h_sleep_ms(200);
  }
  cr_assert_eq(kill(e.iocd.pid, SIGKILL), 0);
  h_iocd_stop(&e.iocd, SIGKILL, 5000);
  size_t before = h_recorder_count(rec);
  h_recorder_default(rec, 200, "{}");
  cr_assert_eq(h_env_iocd_start(&e), 0, "see %s", e.iocd.log);
  cr_assert_eq(h_recorder_wait(rec, before + 5, 30000), 0, "see %s",
               e.iocd.log);
  h_sleep_ms(3000);
  struct tally t;
  tally_requests(rec, before, &t);
  cr_assert_eq(t.n, 5, "five notifications after the restart, got %d", t.n);
  for (int i = 0; i < t.n; i++) {
    cr_expect_eq(t.count[i], 1, "notification %s arrived %d times", t.ids[i],
                 t.count[i]);
  }
  /* The restart itself sends nothing new: the alerts were notified. */
  cr_expect_eq(h_recorder_count(rec), before + 5);
  stop(&e);
  h_recorder_stop(rec);
}

Test(notify_e2e, alertmanager_lists_the_alert_iocd_pushed, .timeout = 120) {
  struct h_alertmanager am;
  cr_assert_eq(h_alertmanager_start(&am), 0);
  char notif[1024];
  snprintf(notif, sizeof notif,
           "\"receivers\": [{\"name\": \"am\", \"type\": \"alertmanager\",\n"
           "  \"url\": \"%s\"}],\n"
           "\"route\": {\"receiver\": \"am\", \"group_wait\": \"0s\"}",
           am.url);
  struct h_env e;
  start(&e, "notify-am", notif);
  publish(&e, "Ea H'Leo", 1000, 106);
  char *json = NULL;
  bool seen = false;
  for (int i = 0; i < 100 && !seen; i++) {
    free(json);
    json = NULL;
    cr_assert_eq(h_alertmanager_alerts(&am, &json), 0);
    seen = strstr(json, "\"district\":\"Ea H'Leo\"") != NULL;
    if (!seen) {
      h_sleep_ms(200);
    }
  }
  cr_assert(seen, "not in Alertmanager: %s; see %s", json, e.iocd.log);
  cr_expect(strstr(json, "\"alertname\":\"online_share_low\"") != NULL, "%s",
            json);
  cr_expect(
      strstr(json, "Tỷ lệ hồ sơ trực tuyến của Ea H'Leo dưới mục tiêu") != NULL,
      "%s", json);
  free(json);
  stop(&e);
  h_alertmanager_stop(&am);
}

/* The retained message on topic, waited for up to 10 s ("" when it was
 * cleared or never set). */
struct retained {
  char payload[4096];
  bool got;
};

static void on_retained(struct mosquitto *m, void *ud,
                        const struct mosquitto_message *msg) {
  (void)m;
  struct retained *r = ud;
  if (msg->retain) {
    snprintf(r->payload, sizeof r->payload, "%.*s", msg->payloadlen,
             (const char *)msg->payload);
    r->got = true;
  }
}

static void read_retained(int port, const char *topic, struct retained *r) {
  memset(r, 0, sizeof *r);
  mosquitto_lib_init();
  struct mosquitto *m = mosquitto_new(NULL, true, r);
  cr_assert_not_null(m);
  mosquitto_message_callback_set(m, on_retained);
  cr_assert_eq(mosquitto_connect(m, "127.0.0.1", port, 30), MOSQ_ERR_SUCCESS);
  cr_assert_eq(mosquitto_subscribe(m, NULL, topic, 1), MOSQ_ERR_SUCCESS);
  for (int i = 0; i < 20 && !r->got; i++) {
    mosquitto_loop(m, 100, 1);
  }
  mosquitto_disconnect(m);
  mosquitto_destroy(m);
}

Test(notify_e2e, the_wall_reads_what_fires_from_retained_mqtt_messages,
     .timeout = 120) {
  static const char notif[] =
      "\"receivers\": [{\"name\": \"wall\", \"type\": \"mqtt\",\n"
      "  \"topic_prefix\": \"ioc/alerts\"}],\n"
      "\"route\": {\"receiver\": \"wall\", \"group_wait\": \"0s\",\n"
      "  \"group_interval\": \"1s\", \"group_by\": [\"district\"]}";
  struct h_env e;
  start(&e, "notify-mqtt", notif);
  publish(&e, "Ea H'Leo", 1000, 106);
  struct retained r;
  for (int i = 0; i < 50; i++) {
    read_retained(e.mq.port, "ioc/alerts/online_share_low/Ea H'Leo", &r);
    if (r.got) {
      break;
    }
    h_sleep_ms(200);
  }
  cr_assert(r.got, "no retained state; see %s", e.iocd.log);
  cJSON *doc = cJSON_Parse(r.payload);
  cr_assert_not_null(doc, "%s", r.payload);
  cr_expect_str_eq(jstr(doc, "status"), "firing", "%s", r.payload);
  cJSON_Delete(doc);
  publish(&e, "Ea H'Leo", 1000, 406);
  bool cleared = false;
  for (int i = 0; i < 50 && !cleared; i++) {
    h_sleep_ms(200);
    read_retained(e.mq.port, "ioc/alerts/online_share_low/Ea H'Leo", &r);
    cleared = !r.got;
  }
  cr_expect(cleared, "the retained state outlived the alert: %s", r.payload);
  stop(&e);
}

/* Sends body to path on iocd's API with curl; returns the status, the
 * answer in out. */
static long api_call(int port, const char *method, const char *path,
                     const char *body, struct buf *out) {
  char cmd[2048];
  /* The body goes through a file: popen is one way. */
  char tmp[] = "/tmp/iocd-body-XXXXXX";
  int fd = mkstemp(tmp);
  cr_assert_geq(fd, 0);
  cr_assert_eq(write(fd, body, strlen(body)), (ssize_t)strlen(body));
  close(fd);
  snprintf(cmd, sizeof cmd,
           "curl -s -w '\\n%%{http_code}' -X %s "
           "-H 'Content-Type: application/json' --data-binary @%s "
           "http://127.0.0.1:%d%s",
           method, tmp, port, path);
  FILE *f = popen(cmd, "r");
  cr_assert_not_null(f);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    buf_append(out, chunk, n);
  }
  pclose(f);
  unlink(tmp);
  buf_putc(out, '\0');
  char *nl = strrchr(out->data, '\n');
  cr_assert_not_null(nl);
  long status = strtol(nl + 1, NULL, 10);
  *nl = '\0';
  return status;
}

/* The id of the first alert GET /api/v1/alerts lists for district. */
static void alert_id(int port, const char *district, char id[17]) {
  struct buf b;
  buf_init(&b, 1 << 20);
  cr_assert_eq(h_http_get(port, "/api/v1/alerts", &b), 200);
  buf_putc(&b, '\0');
  cJSON *doc = cJSON_Parse(b.data);
  const cJSON *a;
  id[0] = '\0';
  cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(doc, "alerts")) {
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(a, "labels");
    if (strcmp(jstr(labels, "district"), district) == 0) {
      snprintf(id, 17, "%s", jstr(a, "id"));
    }
  }
  cJSON_Delete(doc);
  buf_cleanup(&b);
  cr_assert_eq(strlen(id), 16, "no alert for %s", district);
}

Test(notify_e2e, an_acknowledgement_stops_the_repeats_and_is_audited,
     .timeout = 120) {
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  char notif[1024];
  snprintf(notif, sizeof notif,
           "\"receivers\": [{\"name\": \"ops\", \"type\": \"webhook\",\n"
           "  \"url\": \"%s/hook\"}],\n"
           "\"route\": {\"receiver\": \"ops\", \"group_wait\": \"0s\",\n"
           "  \"group_interval\": \"1s\", \"repeat_interval\": \"2s\",\n"
           "  \"group_by\": [\"district\"]}",
           h_recorder_url(rec));
  struct h_env e;
  start(&e, "notify-ack", notif);
  publish(&e, "Lắk", 1000, 100);
  /* Repeated while nobody answers. */
  cr_assert_eq(h_recorder_wait(rec, 2, 20000), 0, "no repeat; see %s",
               e.iocd.log);
  char id[17];
  alert_id(e.api_port, "Lắk", id);
  char path[64];
  snprintf(path, sizeof path, "/api/v1/alerts/%s/ack", id);
  struct buf b;
  buf_init(&b, 1 << 20);
  cr_assert_eq(
      api_call(e.api_port, "POST", path,
               "{\"by\": \"an.nguyen\", \"comment\": \"đang xử lý\"}", &b),
      200, "%s", b.data);
  size_t after_ack = h_recorder_count(rec);
  h_sleep_ms(5000);
  cr_expect_leq(h_recorder_count(rec), after_ack + 1,
                "repeated after the ack: %zu -> %zu", after_ack,
                h_recorder_count(rec));
  /* Listed as acknowledged, and in the audit trail, across a restart. */
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  cr_assert_eq(h_env_iocd_start(&e), 0);
  buf_reset(&b);
  cr_assert_eq(h_http_get(e.api_port, "/api/v1/alerts", &b), 200);
  buf_putc(&b, '\0');
  cr_expect(strstr(b.data, "\"acknowledged\":{\"by\":\"an.nguyen\"") != NULL,
            "%s", b.data);
  buf_reset(&b);
  cr_assert_eq(h_http_get(e.api_port, "/api/v1/acks", &b), 200);
  buf_putc(&b, '\0');
  cr_expect(strstr(b.data, "\"action\":\"ack\"") != NULL, "%s", b.data);
  cr_expect(strstr(b.data, "\"principal\":\"anonymous\"") != NULL,
            "no token: the principal is anonymous: %s", b.data);
  cr_expect(strstr(b.data, "đang xử lý") != NULL, "%s", b.data);
  /* Errors say what was wrong. */
  buf_reset(&b);
  cr_expect_eq(api_call(e.api_port, "POST", "/api/v1/alerts/0123/ack",
                        "{\"by\": \"x\"}", &b),
               400, "%s", b.data);
  buf_reset(&b);
  cr_expect_eq(
      api_call(e.api_port, "POST", "/api/v1/alerts/0123456789abcdef/ack",
               "{\"by\": \"x\"}", &b),
      404, "%s", b.data);
  buf_reset(&b);
  cr_expect_eq(api_call(e.api_port, "POST", path, "{\"comment\": 1}", &b), 400,
               "%s", b.data);
  buf_cleanup(&b);
  stop(&e);
  h_recorder_stop(rec);
}

Test(notify_e2e, a_silence_from_the_api_mutes_its_district_only,
     .timeout = 120) {
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  char notif[1024];
  snprintf(notif, sizeof notif,
           "\"receivers\": [{\"name\": \"ops\", \"type\": \"webhook\",\n"
           "  \"url\": \"%s/hook\"}],\n%s",
           h_recorder_url(rec), webhook_route);
  struct h_env e;
  start(&e, "notify-silence", notif);
  struct buf b;
  buf_init(&b, 1 << 20);
  cr_assert_eq(api_call(e.api_port, "POST", "/api/v1/silences",
                        "{\"matchers\": [\"district=Krông Búk\"], "
                        "\"duration\": \"2h\", \"created_by\": \"admin\", "
                        "\"comment\": \"bảo trì hệ thống\"}",
                        &b),
               201, "%s", b.data);
  /* Kept across a restart. */
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  cr_assert_eq(h_env_iocd_start(&e), 0);
  publish(&e, "Krông Búk", 1000, 100);
  publish(&e, "Lắk", 1000, 100);
  cr_assert_eq(h_recorder_wait(rec, 1, 20000), 0, "see %s", e.iocd.log);
  h_sleep_ms(3000);
  cr_assert_eq(h_recorder_count(rec), 1, "only Lắk's notification");
  cJSON *doc = request_json(rec, 0);
  cr_expect_str_eq(
      jstr(cJSON_GetObjectItemCaseSensitive(doc, "groupLabels"), "district"),
      "Lắk");
  cJSON_Delete(doc);
  buf_reset(&b);
  cr_assert_eq(h_http_get(e.api_port, "/api/v1/silences", &b), 200);
  buf_putc(&b, '\0');
  cr_expect(strstr(b.data, "bảo trì hệ thống") != NULL, "%s", b.data);
  buf_reset(&b);
  cr_expect_eq(api_call(e.api_port, "POST", "/api/v1/silences",
                        "{\"matchers\": [\"district~Lắk\"], \"duration\": "
                        "\"1h\"}",
                        &b),
               400, "%s", b.data);
  cr_expect(strstr(b.data, "matchers[0]") != NULL, "%s", b.data);
  buf_cleanup(&b);
  /* A method the path does not take: 405 with the ones it does. */
  char cmd[256], head[1024] = "";
  snprintf(cmd, sizeof cmd,
           "curl -s -D - -o /dev/null -X PUT "
           "http://127.0.0.1:%d/api/v1/silences",
           e.api_port);
  FILE *f = popen(cmd, "r");
  cr_assert_not_null(f);
  size_t hn = fread(head, 1, sizeof head - 1, f);
  head[hn] = '\0';
  pclose(f);
  cr_expect(strstr(head, " 405 ") != NULL, "%s", head);
  cr_expect(strstr(head, "Allow: GET, HEAD, POST\r\n") != NULL, "%s", head);
  stop(&e);
  h_recorder_stop(rec);
}

Test(notify_e2e,
     telegram_and_zalo_get_their_exact_requests_and_no_log_line_a_token,
     .timeout = 120) {
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  h_recorder_default(rec, 200,
                     "{\"ok\": true, \"error\": 0, \"message\": \"Success\"}");
  char notif[2048];
  snprintf(notif, sizeof notif,
           "\"receivers\": [\n"
           "  {\"name\": \"tg\", \"type\": \"telegram\", \"base_url\": "
           "\"%s\",\n"
           "   \"token\": \"123456:SECRET-TG-TOKEN\", \"chat_id\": "
           "\"-1001234\"},\n"
           "  {\"name\": \"zalo\", \"type\": \"zalo\", \"base_url\": \"%s\",\n"
           "   \"token\": \"SECRET-ZALO-TOKEN\", \"user_ids\": [\"8811\"]}],\n"
           "\"route\": {\"receiver\": \"tg\", \"group_wait\": \"0s\",\n"
           "  \"routes\": [{\"receiver\": \"tg\", \"continue\": true},\n"
           "             {\"receiver\": \"zalo\"}]}",
           h_recorder_url(rec), h_recorder_url(rec));
  struct h_env e;
  start(&e, "notify-chat", notif);
  publish(&e, "M'Drắk", 1000, 100);
  cr_assert_eq(h_recorder_wait(rec, 2, 20000), 0, "see %s", e.iocd.log);
  bool tg = false, zalo = false;
  for (size_t i = 0; i < 2; i++) {
    struct h_request q;
    cr_assert(h_recorder_get(rec, i, &q));
    cJSON *doc = cJSON_Parse(q.body);
    cr_assert_not_null(doc, "%s", q.body);
    if (strcmp(q.path, "/bot123456:SECRET-TG-TOKEN/sendMessage") == 0) {
      tg = true;
      cr_expect_str_eq(jstr(doc, "chat_id"), "-1001234");
      cr_expect_str_eq(jstr(doc, "parse_mode"), "HTML");
      cr_expect(strstr(jstr(doc, "text"), "M&#39;Drắk") != NULL, "%s", q.body);
    } else if (strcmp(q.path, "/v3.0/oa/message/transaction") == 0) {
      zalo = true;
      cr_expect_str_eq(h_request_header(&q, "access_token"),
                       "SECRET-ZALO-TOKEN");
      const cJSON *rcp = cJSON_GetObjectItemCaseSensitive(doc, "recipient");
      cr_expect_str_eq(jstr(rcp, "user_id"), "8811");
      const cJSON *msg = cJSON_GetObjectItemCaseSensitive(doc, "message");
      cr_expect(strstr(jstr(msg, "text"), "M'Drắk") != NULL, "%s", q.body);
    }
    cJSON_Delete(doc);
    h_request_cleanup(&q);
  }
  cr_expect(tg, "no Telegram request");
  cr_expect(zalo, "no Zalo request");
  cr_expect_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  cr_expect(!h_iocd_log_contains(&e.iocd, "SECRET-TG-TOKEN"),
            "the bot token is in the log");
  cr_expect(!h_iocd_log_contains(&e.iocd, "SECRET-ZALO-TOKEN"),
            "the Zalo token is in the log");
  h_env_stop(&e);
  h_recorder_stop(rec);
}

Test(notify_e2e, a_notification_given_up_on_is_raised_to_the_other_receivers,
     .timeout = 120) {
  struct h_recorder *zalo = h_recorder_start(0);
  struct h_recorder *ops = h_recorder_start(0);
  cr_assert(zalo && ops);
  h_recorder_default(zalo, 200,
                     "{\"error\": -216, \"message\": \"Access token is "
                     "invalid\"}");
  char notif[2048];
  snprintf(notif, sizeof notif,
           "\"receivers\": [\n"
           "  {\"name\": \"zalo\", \"type\": \"zalo\", \"base_url\": \"%s\",\n"
           "   \"token\": \"expired\", \"user_ids\": [\"8811\"]},\n"
           "  {\"name\": \"ops\", \"type\": \"webhook\", \"url\": "
           "\"%s/hook\"}],\n"
           "\"route\": {\"receiver\": \"ops\", \"group_wait\": \"0s\",\n"
           "  \"group_interval\": \"1s\",\n"
           "  \"routes\": [{\"matchers\": [\"alertname=online_share_low\"],\n"
           "               \"receiver\": \"zalo\"}]}",
           h_recorder_url(zalo), h_recorder_url(ops));
  struct h_env e;
  start(&e, "notify-dead", notif);
  publish(&e, "Cư M'gar", 1000, 100);
  cr_assert_eq(h_recorder_wait(ops, 1, 30000), 0, "nothing raised; see %s",
               e.iocd.log);
  cJSON *doc = request_json(ops, 0);
  const cJSON *labels = cJSON_GetObjectItemCaseSensitive(doc, "commonLabels");
  cr_expect_str_eq(jstr(labels, "alertname"), "iocd_notification_failed");
  cr_expect_str_eq(jstr(labels, "receiver"), "zalo");
  cJSON_Delete(doc);
  cr_expect_eq(h_recorder_count(zalo), 1, "refused for good: tried once");
  cr_expect_eq(h_metric(e.api_port,
                        "iocd_notifications_total{receiver="
                        "\"zalo\",outcome=\"failed\"}"),
               1);
  cr_expect_eq(h_metric(e.api_port, "iocd_outbox_dead_letters"), 1);
  struct buf b;
  buf_init(&b, 1 << 20);
  cr_assert_eq(h_http_get(e.api_port, "/api/v1/notifications", &b), 200);
  buf_putc(&b, '\0');
  cJSON *list = cJSON_Parse(b.data);
  const cJSON *dead = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(list, "notifications"), "dead");
  cr_assert_eq(cJSON_GetArraySize(dead), 1, "%s", b.data);
  const cJSON *d0 = cJSON_GetArrayItem(dead, 0);
  cr_expect_str_eq(jstr(d0, "receiver"), "zalo");
  cr_expect(strstr(jstr(d0, "error"), "Access token is invalid") != NULL, "%s",
            b.data);
  cJSON_Delete(list);
  buf_cleanup(&b);
  /* The token is renewed: the next notification goes through, and the
   * failure is over for the other receivers too. */
  h_recorder_default(zalo, 200, "{\"error\": 0, \"message\": \"Success\"}");
  publish(&e, "Lắk", 1000, 100);
  cr_assert_eq(h_recorder_wait(ops, 2, 30000), 0, "not resolved; see %s",
               e.iocd.log);
  doc = request_json(ops, 1);
  cr_expect_str_eq(jstr(doc, "status"), "resolved");
  labels = cJSON_GetObjectItemCaseSensitive(doc, "commonLabels");
  cr_expect_str_eq(jstr(labels, "alertname"), "iocd_notification_failed");
  cJSON_Delete(doc);
  stop(&e);
  h_recorder_stop(zalo);
  h_recorder_stop(ops);
}
