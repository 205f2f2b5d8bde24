/*
 * Alert delivery across a restart of iocd (a real mosquitto and influxd on
 * free ports, the iocd binary as a black box, a webhook receiver that
 * records what it gets): an alert notified as firing before the restart is
 * not notified again after it, and its resolution still reaches the
 * receiver, with the start and the words of the firing notification;
 * data_dir/notified.json says which alerts were told.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/file.h"
#include "tests/harness/harness.h"

/* One rule: the online share of a district below 30%, at once; the
 * webhook receiver at url, every change sent at once. */
static void config(struct h_env *e, const char *url) {
  cr_assert_eq(
      h_env_config(
          e, "notify-restart",
          "  \"subscriptions\": [\n"
          "    {\"name\": \"igate\", \"topic\": \"ioc/{district}/igate\",\n"
          "     \"measurement\": \"igate\", \"tags\": {\"system\": "
          "\"igate\"}}],\n"
          "  \"sources\": {\"districts\": [\"Krông Búk\", \"Lắk\"]},\n"
          "  \"rule_engine\": {\"evaluation_interval\": \"1s\"},\n"
          "  \"rules\": [\n"
          "    {\"name\": \"online_share_low\",\n"
          "     \"expr\": \"igate.online / igate.received < 0.3\",\n"
          "     \"by\": [\"district\"], \"labels\": {\"unit\": \"ratio\"},\n"
          "     \"annotations\": {\"summary\": \"Tỷ lệ hồ sơ trực tuyến của "
          "{{district}} là {{value|pct}}\"}}],\n"
          "  \"notifications\": {\n"
          "    \"receivers\": [{\"name\": \"ops\", \"type\": \"webhook\",\n"
          "      \"url\": \"%s/hook\"}],\n"
          "    \"route\": {\"receiver\": \"ops\", \"group_wait\": \"0s\",\n"
          "      \"group_interval\": \"1s\", \"repeat_interval\": \"1h\",\n"
          "      \"group_by\": [\"district\"]}}\n",
          url),
      0);
}

static void publish(struct h_env *e, const char *district, int received,
                    int online) {
  char topic[128], payload[128];
  snprintf(topic, sizeof topic, "ioc/%s/igate", district);
  int n = snprintf(payload, sizeof payload,
                   "{\"received\": %d, \"online\": %d}", received, online);
  cr_assert_eq(h_publish(e->mq.port, topic, payload, (size_t)n, 1, NULL), 0);
}

/* Webhook request i of r, parsed (caller frees). */
static cJSON *request_json(struct h_recorder *r, size_t i) {
  struct h_request q;
  cr_assert(h_recorder_get(r, i, &q), "no request %zu", i);
  cJSON *doc = cJSON_Parse(q.body);
  cr_assert_not_null(doc, "not JSON: %s", q.body);
  h_request_cleanup(&q);
  return doc;
}

/* Member name of the first alert of a webhook document, "" when absent. */
static const char *first_alert(const cJSON *doc, const char *name) {
  const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(doc, "alerts");
  const cJSON *a = cJSON_GetArrayItem(alerts, 0);
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(a, name);
  if (!m) {
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(a, "annotations");
    m = cJSON_GetObjectItemCaseSensitive(ann, name);
  }
  return cJSON_IsString(m) ? m->valuestring : "";
}

/* The text of data_dir/notified.json ("" when there is none); the caller
 * frees it. */
static char *notified_json(const struct h_env *e) {
  char path[512];
  snprintf(path, sizeof path, "%s/data/notified.json", e->dir);
  struct buf b;
  buf_init(&b, 1 << 20);
  if (file_read(path, &b, NULL) != IOCD_OK || buf_putc(&b, '\0')) {
    buf_cleanup(&b);
    char *none = malloc(1);
    cr_assert_not_null(none);
    none[0] = '\0';
    return none;
  }
  return buf_detach(&b, NULL);
}

Test(notify_restart, a_notified_alert_is_not_sent_again_and_still_resolves,
     .timeout = 120) {
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  struct h_env e;
  cr_assert_eq(h_env_start(&e), 0);
  config(&e, h_recorder_url(rec));
  cr_assert_eq(h_env_iocd_start(&e), 0, "see %s", e.iocd.log);

  publish(&e, "Krông Búk", 1000, 106);
  cr_assert_eq(h_recorder_wait(rec, 1, 20000), 0, "see %s", e.iocd.log);
  cJSON *firing = request_json(rec, 0);
  cr_assert_str_eq(first_alert(firing, "status"), "firing");
  char id[17];
  snprintf(id, sizeof id, "%s", first_alert(firing, "fingerprint"));
  cr_assert_eq(strlen(id), 16);
  char *told = notified_json(&e);
  char want[32];
  snprintf(want, sizeof want, "\"%s\":true", id);
  cr_expect(strstr(told, want) != NULL, "notified.json: %s", told);
  free(told);

  /* A restart: the alert is restored firing, and was told already. */
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0, "see %s", e.iocd.log);
  cr_assert_eq(h_env_iocd_start(&e), 0, "see %s", e.iocd.log);
  h_sleep_ms(3000);
  cr_assert_eq(h_recorder_count(rec), 1, "notified again after the restart");

  /* Its resolution is not lost, and says what the firing one said. */
  publish(&e, "Krông Búk", 1000, 406);
  cr_assert_eq(h_recorder_wait(rec, 2, 20000), 0, "no resolved; see %s",
               e.iocd.log);
  cJSON *resolved = request_json(rec, 1);
  cr_assert_str_eq(first_alert(resolved, "status"), "resolved");
  cr_expect_str_eq(first_alert(resolved, "fingerprint"), id);
  cr_expect_str_eq(first_alert(resolved, "startsAt"),
                   first_alert(firing, "startsAt"));
  cr_expect_str_eq(first_alert(resolved, "summary"),
                   first_alert(firing, "summary"));
  cr_expect(strstr(first_alert(firing, "summary"), "10,6%") != NULL, "%s",
            first_alert(firing, "summary"));
  /* notified.json is rewritten on the thread pool once the resolved
   * notification was taken: soon after the receiver saw it. */
  told = notified_json(&e);
  bool gone = strstr(told, id) == NULL;
  for (int i = 0; i < 50 && !gone; i++) {
    free(told);
    h_sleep_ms(100);
    told = notified_json(&e);
    gone = strstr(told, id) == NULL;
  }
  cr_expect(gone, "still in notified.json 5 s after the resolved: %s", told);
  free(told);
  h_sleep_ms(2000);
  cr_expect_eq(h_recorder_count(rec), 2);

  cJSON_Delete(firing);
  cJSON_Delete(resolved);
  cr_expect_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0, "see %s", e.iocd.log);
  h_env_stop(&e);
  h_recorder_stop(rec);
}
