/*
 * Alert delivery's I/O half (alerts/courier.c, deliver.c, outbox.c) on a
 * real uv loop in the test, against real receivers: Alertmanager, an SMTP
 * server (aiosmtpd, the message read back with Python's email package),
 * mosquitto, and an HTTP recorder standing in for a webhook, the Telegram
 * Bot API and the Zalo OA API. What is checked is what the receiver got,
 * byte for byte, how often, and what the outbox and the counters say.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "alerts/courier.h"
#include "alerts/notice.h"
#include "alerts/payload.h"
#include "alerts/template.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/mem.h"
#include "core/stats.h"
#include "tests/harness/harness.h"

#define DISTRICT "Ea H'Leo"
#define SUMMARY "Tỷ lệ trực tuyến 10,61% dưới ngưỡng 15%"
#define TG_TOKEN "123456789:AAE-secret_Token-xyz"

struct world {
  uv_loop_t loop;
  struct stats *stats;
  struct config_notify cfg;
  struct config_receiver recv[2];
  struct template_set *ts;
  struct courier *c;
  char dir[64];
  char outbox[128];
  int mqtt_port;
  size_t ndead;
  struct notice *dead_letter;
  struct notice *failed;
  char why[256];
};

static const struct template_set *templates(void *ud,
                                            const struct config_receiver *r) {
  (void)r;
  return ((struct world *)ud)->ts;
}

static void on_dead(void *ud, const struct notice *dead_letter,
                    const struct notice *failed, const char *why) {
  struct world *w = ud;
  w->ndead++;
  notice_free(w->dead_letter);
  notice_free(w->failed);
  w->dead_letter = notice_dup(dead_letter);
  w->failed = notice_dup(failed);
  snprintf(w->why, sizeof w->why, "%s", why);
}

/* The application's publish, done with the harness's blocking publisher:
 * the acknowledgement is in when it returns. */
static int publish(void *ud, const char *topic, const void *payload, size_t len,
                   int qos, bool retain, deliver_published_fn *done,
                   void *done_ud) {
  struct world *w = ud;
  int rc;
  if (retain) {
    char *s = malloc(len + 1);
    cr_assert_not_null(s);
    memcpy(s, payload, len);
    s[len] = '\0';
    rc = h_publish_retained(w->mqtt_port, topic, s);
    free(s);
  } else {
    rc = h_publish(w->mqtt_port, topic, payload, len, qos, NULL);
  }
  done(done_ud, rc == 0 ? IOCD_OK : IOCD_ECONN);
  return IOCD_OK;
}

/* A receiver with quick retries. */
static struct config_receiver receiver(const char *name,
                                       enum config_receiver_type type) {
  return (struct config_receiver){
      .name = (char *)name,
      .type = type,
      .send_resolved = true,
      .timeout_ms = 3000,
      .max_attempts = 10,
      .retry_min_ms = 20,
      .retry_max_ms = 100,
      .tls_verify = true,
      .html = true,
      .qos = 1,
      .retain = true,
  };
}

static void world_init(struct world *w) {
  memset(w, 0, sizeof *w);
  cr_assert_eq(uv_loop_init(&w->loop), 0);
  w->stats = stats_new();
  cr_assert_not_null(w->stats);
  cr_assert_eq(h_tmpdir(w->dir, sizeof w->dir), 0);
  snprintf(w->outbox, sizeof w->outbox, "%s/outbox", w->dir);
  w->cfg.receivers = w->recv;
  w->cfg.nreceivers = 1;
  struct template_opts to = {.lang = CONFIG_LANG_VI, .utc_offset_s = 7 * 3600};
  struct iocd_err err = {{0}};
  cr_assert_eq(template_set_new(NULL, &to, &w->ts, &err), IOCD_OK, "%s",
               err.msg);
}

static void courier_start(struct world *w) {
  struct courier_opts o = {
      .loop = &w->loop,
      .cfg = &w->cfg,
      .dir = w->outbox,
      .stats = w->stats,
      .templates = templates,
      .templates_ud = w,
      .publish = publish,
      .publish_ud = w,
      .on_dead = on_dead,
      .dead_ud = w,
  };
  struct iocd_err err = {{0}};
  cr_assert_eq(courier_new(&o, &w->c, &err), IOCD_OK, "%s", err.msg);
}

static void on_tick(uv_timer_t *t) {
  (void)t;
}

/* Runs the loop until pred holds or timeout_ms passed. */
static bool run_until(struct world *w, bool (*pred)(struct world *),
                      int timeout_ms) {
  uv_timer_t tick;
  uv_timer_init(&w->loop, &tick);
  uv_timer_start(&tick, on_tick, 10, 10);
  int64_t end = clock_mono_ns() + (int64_t)timeout_ms * NS_PER_MS;
  bool ok;
  while (!(ok = pred(w)) && clock_mono_ns() < end) {
    uv_run(&w->loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&w->loop, UV_RUN_NOWAIT);
  return ok;
}

static bool never(struct world *w) {
  (void)w;
  return false;
}

/* Runs the loop for ms. */
static void run_for(struct world *w, int ms) {
  run_until(w, never, ms);
}

static void on_closed(void *ud) {
  *(bool *)ud = true;
}

static bool closed_flag;
static bool is_closed(struct world *w) {
  (void)w;
  return closed_flag;
}

static void courier_stop(struct world *w) {
  closed_flag = false;
  courier_close(w->c, on_closed, &closed_flag);
  w->c = NULL;
  cr_assert(run_until(w, is_closed, 5000));
}

static void world_cleanup(struct world *w) {
  if (w->c) {
    courier_stop(w);
  }
  uv_run(&w->loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&w->loop), 0);
  template_set_free(w->ts);
  stats_free(w->stats);
  notice_free(w->dead_letter);
  notice_free(w->failed);
  if (!getenv("IOCD_TEST_KEEP")) {
    h_rmtree(w->dir);
  }
}

static uint64_t counted(struct world *w, const char *receiver,
                        const char *outcome) {
  struct metric *m = stats_find(w->stats, "iocd_notifications_total",
                                "receiver", receiver, "outcome", outcome, NULL);
  return m ? m->count : 0;
}

static const char *want_receiver;
static const char *want_outcome;
static uint64_t want_count;
static bool counted_enough(struct world *w) {
  return counted(w, want_receiver, want_outcome) >= want_count;
}

/* Runs until receiver has n attempts with outcome. */
static bool run_until_counted(struct world *w, const char *receiver,
                              const char *outcome, uint64_t n, int timeout_ms) {
  want_receiver = receiver;
  want_outcome = outcome;
  want_count = n;
  return run_until(w, counted_enough, timeout_ms);
}

static bool has_dead(struct world *w) {
  return w->ndead > 0;
}

static size_t pending(struct world *w) {
  size_t n;
  outbox_list(courier_outbox(w->c), &n);
  return n;
}

/* A firing (or resolved) notice for receiver about DISTRICT, started 3
 * days 2 hours 30 minutes ago (so its texts read the same for a while). */
static struct notice *make_notice(const char *recv, enum notice_status st) {
  struct notice *n = notice_new();
  cr_assert_not_null(n);
  int64_t now = clock_realtime_ns();
  n->receiver = mem_strdup(recv);
  n->kind = NOTICE_ALERTS;
  n->group_key = mem_strdup("{}:{district=\"" DISTRICT "\"}");
  notice_labels_set(&n->group_labels, "alertname", "online_share_low");
  notice_labels_set(&n->group_labels, "district", DISTRICT);
  n->created_ns = now;
  n->alerts = calloc(1, sizeof *n->alerts);
  n->nalerts = 1;
  struct notice_alert *a = &n->alerts[0];
  notice_labels_set(&a->labels, "alertname", "online_share_low");
  notice_labels_set(&a->labels, "district", DISTRICT);
  notice_labels_set(&a->labels, "severity", "warning");
  notice_labels_set(&a->labels, "unit", "ratio");
  notice_labels_set(&a->annotations, "summary", SUMMARY);
  a->fingerprint = notice_labels_fingerprint(&a->labels);
  a->status = st;
  a->starts_ns = now - (INT64_C(3) * 86400 + 2 * 3600 + 1800) * NS_PER_SEC;
  a->ends_ns = st == NOTICE_RESOLVED ? now - 60 * NS_PER_SEC : 0;
  a->has_value = true;
  a->value = 0.1061;
  a->has_threshold = true;
  a->threshold = 0.15;
  return n;
}

static uint64_t submit(struct world *w, struct notice *n) {
  uint64_t id = 0;
  struct iocd_err err = {{0}};
  cr_assert_eq(courier_submit(w->c, n, &id, &err), IOCD_OK, "%s", err.msg);
  n->id = id;
  return id;
}

static cJSON *json_of(const char *s) {
  cJSON *j = cJSON_Parse(s);
  cr_assert_not_null(j, "not JSON: %s", s);
  return j;
}

static const char *jstr(const cJSON *o, const char *path) {
  /* "a.b.c" through objects; "alerts[0]" not needed here. */
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  const cJSON *cur = o;
  for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && cur;
       k = strtok_r(NULL, ".", &save)) {
    cur = cJSON_GetObjectItemCaseSensitive(cur, k);
  }
  return cJSON_IsString(cur) ? cur->valuestring : NULL;
}

static bool file_exists(const char *dir, const char *sub, uint64_t id) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s%016" PRIx64 ".json", dir, sub, id);
  struct stat st;
  return stat(p, &st) == 0;
}

/* ---- webhook ---- */

Test(deliver, a_webhook_gets_the_notice_once_as_alertmanager_json) {
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  struct world w;
  world_init(&w);
  char url[128];
  snprintf(url, sizeof url, "%s/hook", h_recorder_url(rec));
  w.recv[0] = receiver("operators", CONFIG_RECV_WEBHOOK);
  w.recv[0].url = url;
  struct config_kv hdr = {(char *)"X-Org", (char *)"IOC Đắk Lắk"};
  w.recv[0].headers = &hdr;
  w.recv[0].nheaders = 1;
  courier_start(&w);

  struct notice *n = make_notice("operators", NOTICE_FIRING);
  uint64_t id = submit(&w, n);
  cr_assert(file_exists(w.outbox, "", id), "on disk before it is sent");
  cr_assert(run_until_counted(&w, "operators", "sent", 1, 10000));
  run_for(&w, 200);
  cr_assert_eq(h_recorder_count(rec), 1);
  cr_assert_eq(pending(&w), 0);
  cr_assert_not(file_exists(w.outbox, "", id));

  struct h_request q;
  cr_assert(h_recorder_get(rec, 0, &q));
  cr_assert_str_eq(q.method, "POST");
  cr_assert_str_eq(q.path, "/hook");
  cr_assert_str_eq(h_request_header(&q, "Content-Type"), "application/json");
  cr_assert_str_eq(h_request_header(&q, "X-Org"), "IOC Đắk Lắk");
  /* Exactly what payload.c makes of the notice. */
  struct buf want;
  buf_init(&want, 0);
  cr_assert_eq(payload_webhook(w.ts, n, "", clock_realtime_ns(), &want),
               IOCD_OK);
  cr_assert_str_eq(q.body, want.data);
  cJSON *j = json_of(q.body);
  cJSON *a0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "alerts"), 0);
  cr_assert_str_eq(jstr(a0, "labels.district"), DISTRICT);
  cr_assert_str_eq(jstr(a0, "annotations.summary"), SUMMARY);
  char idhex[17];
  snprintf(idhex, sizeof idhex, "%016" PRIx64, id);
  cr_assert_str_eq(jstr(j, "iocd.notice_id"), idhex);
  cJSON_Delete(j);
  buf_cleanup(&want);
  h_request_cleanup(&q);
  notice_free(n);
  world_cleanup(&w);
  h_recorder_stop(rec);
}

Test(deliver, a_refusing_webhook_fails_at_once_into_a_dead_letter) {
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  h_recorder_default(rec, 400, "{\"error\":\"bad payload\"}");
  struct world w;
  world_init(&w);
  w.recv[0] = receiver("operators", CONFIG_RECV_WEBHOOK);
  w.recv[0].url = (char *)h_recorder_url(rec);
  courier_start(&w);
  struct notice *n = make_notice("operators", NOTICE_FIRING);
  uint64_t id = submit(&w, n);
  cr_assert(run_until(&w, has_dead, 10000));
  cr_assert_eq(h_recorder_count(rec), 1);
  cr_assert_eq(counted(&w, "operators", "failed"), 1);
  cr_assert_not_null(strstr(w.why, "HTTP 400"), "%s", w.why);
  cr_assert(file_exists(w.outbox, "dead/", id));
  cr_assert_eq(w.dead_letter->kind, NOTICE_DEAD_LETTER);
  cr_assert_null(w.dead_letter->receiver);
  cr_assert_not_null(w.dead_letter->text);
  cr_assert_eq(w.dead_letter->nalerts, 1);
  cr_assert_str_eq(
      notice_label_get(&w.dead_letter->alerts[0].labels, "district"), DISTRICT);
  cr_assert_eq(w.failed->id, id);
  cr_assert_eq(w.failed->attempts, 1);
  notice_free(n);
  world_cleanup(&w);
  h_recorder_stop(rec);
}

/* ---- a receiver that is down ---- */

Test(deliver, a_receiver_answering_503_gets_each_notice_once_in_order) {
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  h_recorder_script(rec, 2, 503, "busy", NULL);
  struct world w;
  world_init(&w);
  w.recv[0] = receiver("operators", CONFIG_RECV_WEBHOOK);
  w.recv[0].url = (char *)h_recorder_url(rec);
  courier_start(&w);
  struct notice *n1 = make_notice("operators", NOTICE_FIRING);
  struct notice *n2 = make_notice("operators", NOTICE_RESOLVED);
  uint64_t id1 = submit(&w, n1);
  uint64_t id2 = submit(&w, n2);
  cr_assert(run_until_counted(&w, "operators", "sent", 2, 10000));
  run_for(&w, 200);
  cr_assert_eq(h_recorder_count(rec), 4);
  cr_assert_eq(counted(&w, "operators", "retry"), 2);
  cr_assert_eq(counted(&w, "operators", "sent"), 2);
  /* The first notice three times (503, 503, 200), then the second: a
   * resolved never overtakes its firing. */
  uint64_t order[4];
  for (size_t i = 0; i < 4; i++) {
    struct h_request q;
    cr_assert(h_recorder_get(rec, i, &q));
    cJSON *j = json_of(q.body);
    order[i] = strtoull(jstr(j, "iocd.notice_id"), NULL, 16);
    cJSON_Delete(j);
    h_request_cleanup(&q);
  }
  cr_assert(order[0] == id1 && order[1] == id1 && order[2] == id1 &&
            order[3] == id2);
  cr_assert_eq(pending(&w), 0);
  notice_free(n1);
  notice_free(n2);
  world_cleanup(&w);
  h_recorder_stop(rec);
}

Test(deliver, a_group_waiting_for_its_retry_does_not_hold_back_another) {
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  h_recorder_script(rec, 1, 503, "busy", "Retry-After: 2");
  struct world w;
  world_init(&w);
  w.recv[0] = receiver("operators", CONFIG_RECV_WEBHOOK);
  w.recv[0].url = (char *)h_recorder_url(rec);
  courier_start(&w);
  struct notice *n1 = make_notice("operators", NOTICE_FIRING);
  struct notice *n2 = make_notice("operators", NOTICE_FIRING);
  free(n2->group_key);
  n2->group_key = mem_strdup("{}:{district=\"Lắk\"}");
  uint64_t id1 = submit(&w, n1);
  uint64_t id2 = submit(&w, n2);
  cr_assert(run_until_counted(&w, "operators", "sent", 2, 10000));
  cr_assert_eq(h_recorder_count(rec), 3);
  uint64_t order[3];
  for (size_t i = 0; i < 3; i++) {
    struct h_request q;
    cr_assert(h_recorder_get(rec, i, &q));
    cJSON *j = json_of(q.body);
    order[i] = strtoull(jstr(j, "iocd.notice_id"), NULL, 16);
    cJSON_Delete(j);
    h_request_cleanup(&q);
  }
  /* The first group's retry waits 2 s (Retry-After); the second group's
   * notice goes meanwhile. */
  cr_assert(order[0] == id1 && order[1] == id2 && order[2] == id1);
  notice_free(n1);
  notice_free(n2);
  world_cleanup(&w);
  h_recorder_stop(rec);
}

Test(deliver, a_receiver_not_listening_gets_the_notice_once_it_is_back) {
  int port = h_free_port();
  cr_assert_gt(port, 0);
  struct world w;
  world_init(&w);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", port);
  w.recv[0] = receiver("operators", CONFIG_RECV_WEBHOOK);
  w.recv[0].url = url;
  w.recv[0].max_attempts = 100;
  w.recv[0].retry_min_ms = 50;
  w.recv[0].retry_max_ms = 200;
  courier_start(&w);
  struct notice *n = make_notice("operators", NOTICE_FIRING);
  submit(&w, n);
  cr_assert(run_until_counted(&w, "operators", "retry", 3, 10000));
  cr_assert_eq(counted(&w, "operators", "sent"), 0);
  struct h_recorder *rec = h_recorder_start(port);
  cr_assert_not_null(rec);
  cr_assert(run_until_counted(&w, "operators", "sent", 1, 10000));
  run_for(&w, 300);
  cr_assert_eq(h_recorder_count(rec), 1);
  cr_assert_eq(pending(&w), 0);
  notice_free(n);
  world_cleanup(&w);
  h_recorder_stop(rec);
}

Test(deliver, max_attempts_reached_moves_the_notice_to_dead_letters) {
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  h_recorder_default(rec, 503, "Service Unavailable");
  struct world w;
  world_init(&w);
  w.recv[0] = receiver("operators", CONFIG_RECV_WEBHOOK);
  w.recv[0].url = (char *)h_recorder_url(rec);
  w.recv[0].max_attempts = 3;
  courier_start(&w);
  struct notice *n = make_notice("operators", NOTICE_FIRING);
  uint64_t id = submit(&w, n);
  cr_assert(run_until(&w, has_dead, 10000));
  run_for(&w, 200);
  cr_assert_eq(h_recorder_count(rec), 3);
  cr_assert_eq(counted(&w, "operators", "retry"), 2);
  cr_assert_eq(counted(&w, "operators", "dead"), 1);
  cr_assert_eq(w.ndead, 1);
  cr_assert_str_eq(w.why, "HTTP 503: Service Unavailable");
  cr_assert_eq(w.failed->attempts, 3);
  cr_assert_eq(pending(&w), 0);
  cr_assert(file_exists(w.outbox, "dead/", id));
  size_t nd;
  const struct outbox_dead *d = outbox_dead_list(courier_outbox(w.c), &nd);
  cr_assert_eq(nd, 1);
  cr_assert_eq(d[0].notice->id, id);
  cr_assert_str_eq(d[0].why, "HTTP 503: Service Unavailable");
  notice_free(n);
  world_cleanup(&w);
  h_recorder_stop(rec);
}

Test(deliver, a_notice_put_before_a_crash_is_sent_exactly_once_after) {
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  struct world w;
  world_init(&w);
  w.recv[0] = receiver("operators", CONFIG_RECV_WEBHOOK);
  w.recv[0].url = (char *)h_recorder_url(rec);
  /* The child takes the notice into its outbox and dies before its loop
   * ever runs: nothing was sent. */
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    /* A loop of its own: the parent's epoll instance is shared. */
    if (uv_loop_init(&w.loop) != 0) {
      _exit(2);
    }
    courier_start(&w);
    struct notice *n = make_notice("operators", NOTICE_FIRING);
    uint64_t id = 0;
    int rc = courier_submit(w.c, n, &id, NULL);
    _exit(rc == IOCD_OK && id != 0 ? 0 : 1);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  cr_assert_eq(h_recorder_count(rec), 0);

  courier_start(&w);
  cr_assert(run_until_counted(&w, "operators", "sent", 1, 10000));
  run_for(&w, 300);
  cr_assert_eq(h_recorder_count(rec), 1);
  courier_stop(&w);
  /* And not again at the next start. */
  courier_start(&w);
  run_for(&w, 300);
  cr_assert_eq(h_recorder_count(rec), 1);
  world_cleanup(&w);
  h_recorder_stop(rec);
}

/* ---- Alertmanager ---- */

static struct h_alertmanager *am_now;
static bool am_has_district(struct world *w) {
  (void)w;
  char *json = NULL;
  if (h_alertmanager_alerts(am_now, &json) != 0) {
    return false;
  }
  bool found = strstr(json, DISTRICT) != NULL;
  free(json);
  return found;
}
static bool am_lacks_district(struct world *w) {
  return !am_has_district(w);
}

Test(deliver, alertmanager_lists_the_alert_with_its_labels_byte_exact) {
  struct h_alertmanager am;
  cr_assert_eq(h_alertmanager_start(&am), 0);
  am_now = &am;
  struct world w;
  world_init(&w);
  w.recv[0] = receiver("am", CONFIG_RECV_ALERTMANAGER);
  w.recv[0].url = am.url;
  courier_start(&w);
  struct notice *n = make_notice("am", NOTICE_FIRING);
  submit(&w, n);
  cr_assert(run_until_counted(&w, "am", "sent", 1, 10000));
  char *json = NULL;
  cr_assert_eq(h_alertmanager_alerts(&am, &json), 0);
  cJSON *arr = json_of(json);
  cr_assert_eq(cJSON_GetArraySize(arr), 1, "%s", json);
  cJSON *a = cJSON_GetArrayItem(arr, 0);
  cr_assert_str_eq(jstr(a, "labels.district"), DISTRICT);
  cr_assert_str_eq(jstr(a, "labels.alertname"), "online_share_low");
  cr_assert_str_eq(jstr(a, "annotations.summary"), SUMMARY);
  cr_assert_str_eq(jstr(a, "status.state"), "active");
  cJSON_Delete(arr);
  free(json);

  /* Resolved: Alertmanager no longer lists it. */
  struct notice *r = make_notice("am", NOTICE_RESOLVED);
  submit(&w, r);
  cr_assert(run_until_counted(&w, "am", "sent", 2, 10000));
  cr_assert(run_until(&w, am_lacks_district, 10000));
  notice_free(n);
  notice_free(r);
  world_cleanup(&w);
  h_alertmanager_stop(&am);
}

/* ---- e-mail ---- */

static char *crlf_to_lf(const char *s) {
  char *d = mem_strdup(s);
  cr_assert_not_null(d);
  char *o = d;
  for (const char *p = s; *p; p++) {
    if (!(p[0] == '\r' && p[1] == '\n')) {
      *o++ = *p;
    }
  }
  *o = '\0';
  return d;
}

Test(deliver, an_email_reaches_the_mailbox_with_its_vietnamese_text) {
  struct h_smtp smtp;
  cr_assert_eq(h_smtp_start(&smtp), 0);
  struct world w;
  world_init(&w);
  w.recv[0] = receiver("director", CONFIG_RECV_EMAIL);
  w.recv[0].smtp_url = smtp.url;
  w.recv[0].smtp_tls = CONFIG_SMTP_TLS_AUTO;
  w.recv[0].from = (char *)"IOC Đắk Lắk <ioc@daklak.gov.vn>";
  char *to[] = {(char *)"Giám đốc Sở <giamdoc.stttt@daklak.gov.vn>"};
  w.recv[0].to = to;
  w.recv[0].nto = 1;
  courier_start(&w);
  struct notice *n = make_notice("director", NOTICE_FIRING);
  submit(&w, n);
  cr_assert(run_until_counted(&w, "director", "sent", 1, 15000));
  cr_assert_eq(h_smtp_wait(&smtp, 1, 5000), 0);
  run_for(&w, 200);
  cr_assert_eq(h_smtp_count(&smtp), 1);

  char *json = NULL;
  cr_assert_eq(h_smtp_messages(&smtp, &json), 0);
  cJSON *arr = json_of(json);
  cr_assert_eq(cJSON_GetArraySize(arr), 1);
  cJSON *m = cJSON_GetArrayItem(arr, 0);
  struct buf subject, text;
  buf_init(&subject, 0);
  buf_init(&text, 0);
  int64_t now = clock_realtime_ns();
  cr_assert_eq(template_render_subject(w.ts, n, now, &subject), IOCD_OK);
  cr_assert_eq(template_render_text(w.ts, n, now, &text), IOCD_OK);
  cr_assert_str_eq(jstr(m, "subject"), subject.data);
  cr_assert_not_null(strstr(subject.data, DISTRICT));
  char *got = crlf_to_lf(jstr(m, "text"));
  cr_assert_str_eq(got, text.data);
  cr_assert_not_null(strstr(got, DISTRICT), "%s", got);
  cr_assert_not_null(strstr(got, "10,61%"), "%s", got);
  cr_assert_str_eq(jstr(m, "from"), "IOC Đắk Lắk <ioc@daklak.gov.vn>");
  cr_assert_str_eq(jstr(m, "to"), "Giám đốc Sở <giamdoc.stttt@daklak.gov.vn>");
  cr_assert_str_eq(jstr(m, "mail_from"), "ioc@daklak.gov.vn");
  cr_assert_str_eq(jstr(m, "rcpt_to"), "giamdoc.stttt@daklak.gov.vn");
  cr_assert_not_null(jstr(m, "html"));
  free(got);
  buf_cleanup(&subject);
  buf_cleanup(&text);
  cJSON_Delete(arr);
  free(json);
  notice_free(n);
  world_cleanup(&w);
  h_smtp_stop(&smtp);
}

Test(deliver, an_smtp_server_that_is_down_is_retried) {
  int port = h_free_port();
  struct world w;
  world_init(&w);
  char url[64];
  snprintf(url, sizeof url, "smtp://127.0.0.1:%d", port);
  w.recv[0] = receiver("director", CONFIG_RECV_EMAIL);
  w.recv[0].smtp_url = url;
  w.recv[0].from = (char *)"ioc@daklak.gov.vn";
  char *to[] = {(char *)"giamdoc.stttt@daklak.gov.vn"};
  w.recv[0].to = to;
  w.recv[0].nto = 1;
  courier_start(&w);
  struct notice *n = make_notice("director", NOTICE_FIRING);
  submit(&w, n);
  cr_assert(run_until_counted(&w, "director", "retry", 2, 10000));
  cr_assert_eq(pending(&w), 1);
  notice_free(n);
  world_cleanup(&w);
}

Test(deliver, a_required_starttls_the_server_lacks_fails_the_notice) {
  struct h_smtp smtp;
  cr_assert_eq(h_smtp_start(&smtp), 0);
  struct world w;
  world_init(&w);
  w.recv[0] = receiver("director", CONFIG_RECV_EMAIL);
  w.recv[0].smtp_url = smtp.url;
  w.recv[0].smtp_tls = CONFIG_SMTP_TLS_STARTTLS;
  w.recv[0].from = (char *)"ioc@daklak.gov.vn";
  char *to[] = {(char *)"giamdoc.stttt@daklak.gov.vn"};
  w.recv[0].to = to;
  w.recv[0].nto = 1;
  courier_start(&w);
  struct notice *n = make_notice("director", NOTICE_FIRING);
  submit(&w, n);
  cr_assert(run_until(&w, has_dead, 10000));
  cr_assert_eq(counted(&w, "director", "failed"), 1);
  cr_assert_eq(h_smtp_count(&smtp), 0, "nothing sent in clear text");
  notice_free(n);
  world_cleanup(&w);
  h_smtp_stop(&smtp);
}

/* ---- Telegram ---- */

/* Runs fn with stderr (iocd's log) going to path. */
static int saved_stderr = -1;
static void capture_stderr(const char *path) {
  fflush(stderr);
  saved_stderr = dup(2);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  cr_assert_geq(fd, 0);
  dup2(fd, 2);
  close(fd);
}
static void restore_stderr(void) {
  fflush(stderr);
  dup2(saved_stderr, 2);
  close(saved_stderr);
}

static char *read_all(const char *path) {
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f);
  char *s = calloc(1, (size_t)st.st_size + 1);
  cr_assert_eq(fread(s, 1, (size_t)st.st_size, f), (size_t)st.st_size);
  fclose(f);
  return s;
}

Test(deliver, telegram_gets_send_message_and_no_log_line_shows_the_token) {
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  h_recorder_default(rec, 200, "{\"ok\":true,\"result\":{\"message_id\":7}}");
  struct world w;
  world_init(&w);
  w.recv[0] = receiver("vice_chair", CONFIG_RECV_TELEGRAM);
  w.recv[0].base_url = (char *)h_recorder_url(rec);
  w.recv[0].token = (char *)TG_TOKEN;
  w.recv[0].chat_id = (char *)"-100123";
  courier_start(&w);
  char logpath[128];
  snprintf(logpath, sizeof logpath, "%s/log", w.dir);
  capture_stderr(logpath);

  struct notice *n = make_notice("vice_chair", NOTICE_FIRING);
  submit(&w, n);
  bool sent = run_until_counted(&w, "vice_chair", "sent", 1, 10000);
  /* Refused: the failure's log line names the URL. */
  h_recorder_default(rec, 403,
                     "{\"ok\":false,\"error_code\":403,\"description\":"
                     "\"Forbidden: bot was blocked by the user\"}");
  struct notice *n2 = make_notice("vice_chair", NOTICE_RESOLVED);
  submit(&w, n2);
  bool failed = run_until(&w, has_dead, 10000);
  restore_stderr();
  cr_assert(sent);
  cr_assert(failed);

  struct h_request q;
  cr_assert(h_recorder_get(rec, 0, &q));
  cr_assert_str_eq(q.path, "/bot" TG_TOKEN "/sendMessage");
  struct buf want;
  buf_init(&want, 0);
  cr_assert_eq(payload_telegram(w.ts, n, "-100123", clock_realtime_ns(), &want),
               IOCD_OK);
  cr_assert_str_eq(q.body, want.data);
  cJSON *j = json_of(q.body);
  cr_assert_str_eq(jstr(j, "chat_id"), "-100123");
  cr_assert_str_eq(jstr(j, "parse_mode"), "HTML");
  cJSON_Delete(j);
  buf_cleanup(&want);
  h_request_cleanup(&q);
  cr_assert_str_eq(w.why, "HTTP 403: Forbidden: bot was blocked by the user");

  char *log = read_all(logpath);
  cr_assert_not_null(strstr(log, ": sent in "), "%s", log);
  cr_assert_not_null(strstr(log, "/bot***/sendMessage"), "%s", log);
  cr_assert_null(strstr(log, "AAE-secret_Token"), "%s", log);
  free(log);
  notice_free(n);
  notice_free(n2);
  world_cleanup(&w);
  h_recorder_stop(rec);
}

Test(deliver, a_webhook_url_is_logged_without_credentials_path_or_query) {
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  h_recorder_default(rec, 404, "not here");
  struct world w;
  world_init(&w);
  char url[256];
  snprintf(url, sizeof url,
           "http://hook:pa55word@127.0.0.1:%d/services/T0/S3CRETPATH"
           "?token=Q5ECRET",
           h_recorder_port(rec));
  w.recv[0] = receiver("operators", CONFIG_RECV_WEBHOOK);
  w.recv[0].url = url;
  courier_start(&w);
  char logpath[128];
  snprintf(logpath, sizeof logpath, "%s/log", w.dir);
  capture_stderr(logpath);
  struct notice *n = make_notice("operators", NOTICE_FIRING);
  submit(&w, n);
  bool failed = run_until(&w, has_dead, 10000);
  restore_stderr();
  cr_assert(failed);
  struct h_request q;
  cr_assert(h_recorder_get(rec, 0, &q));
  cr_assert_str_eq(q.path, "/services/T0/S3CRETPATH");
  h_request_cleanup(&q);
  char *log = read_all(logpath);
  char origin[64];
  snprintf(origin, sizeof origin, "(http://127.0.0.1:%d/...)",
           h_recorder_port(rec));
  cr_assert_not_null(strstr(log, origin), "%s", log);
  cr_assert_null(strstr(log, "pa55word"), "%s", log);
  cr_assert_null(strstr(log, "S3CRETPATH"), "%s", log);
  cr_assert_null(strstr(log, "Q5ECRET"), "%s", log);
  free(log);
  notice_free(n);
  world_cleanup(&w);
  h_recorder_stop(rec);
}

Test(deliver, telegram_retry_after_is_honoured) {
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  h_recorder_script(rec, 1, 429,
                    "{\"ok\":false,\"error_code\":429,\"description\":"
                    "\"Too Many Requests: retry after 1\",\"parameters\":"
                    "{\"retry_after\":1}}",
                    NULL);
  h_recorder_default(rec, 200, "{\"ok\":true,\"result\":{}}");
  struct world w;
  world_init(&w);
  w.recv[0] = receiver("vice_chair", CONFIG_RECV_TELEGRAM);
  w.recv[0].base_url = (char *)h_recorder_url(rec);
  w.recv[0].token = (char *)TG_TOKEN;
  w.recv[0].chat_id = (char *)"-100123";
  courier_start(&w);
  struct notice *n = make_notice("vice_chair", NOTICE_FIRING);
  int64_t t0 = clock_mono_ns();
  submit(&w, n);
  cr_assert(run_until_counted(&w, "vice_chair", "sent", 1, 10000));
  int64_t took_ms = (clock_mono_ns() - t0) / NS_PER_MS;
  cr_assert_geq(took_ms, 950, "retried after %lld ms", (long long)took_ms);
  cr_assert_eq(h_recorder_count(rec), 2);
  cr_assert_eq(counted(&w, "vice_chair", "retry"), 1);
  notice_free(n);
  world_cleanup(&w);
  h_recorder_stop(rec);
}

/* ---- Zalo ---- */

static void write_token(const char *path, const char *token) {
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fprintf(f, "%s\n", token);
  fclose(f);
}

Test(deliver, zalo_reads_its_token_file_at_each_send_and_needs_error_0) {
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  h_recorder_default(rec, 200,
                     "{\"error\":0,\"message\":\"Success\",\"data\":"
                     "{\"message_id\":\"m1\"}}");
  struct world w;
  world_init(&w);
  char token_file[128];
  snprintf(token_file, sizeof token_file, "%s/zalo.token", w.dir);
  write_token(token_file, "tok-A");
  w.recv[0] = receiver("leaders_zalo", CONFIG_RECV_ZALO);
  w.recv[0].base_url = (char *)h_recorder_url(rec);
  w.recv[0].token_file = token_file;
  char *users[] = {(char *)"123", (char *)"456"};
  w.recv[0].user_ids = users;
  w.recv[0].nuser_ids = 2;
  courier_start(&w);

  struct notice *n = make_notice("leaders_zalo", NOTICE_FIRING);
  submit(&w, n);
  cr_assert(run_until_counted(&w, "leaders_zalo", "sent", 1, 10000));
  cr_assert_eq(h_recorder_count(rec), 2);
  bool seen[2] = {false, false};
  for (size_t i = 0; i < 2; i++) {
    struct h_request q;
    cr_assert(h_recorder_get(rec, i, &q));
    cr_assert_str_eq(q.path, "/v3.0/oa/message/transaction");
    cr_assert_str_eq(h_request_header(&q, "access_token"), "tok-A");
    cJSON *j = json_of(q.body);
    const char *user = jstr(j, "recipient.user_id");
    cr_assert_not_null(user);
    seen[strcmp(user, "123") == 0 ? 0 : 1] = true;
    struct buf want;
    buf_init(&want, 0);
    cr_assert_eq(payload_zalo(w.ts, n, user, clock_realtime_ns(), &want),
                 IOCD_OK);
    cr_assert_str_eq(q.body, want.data);
    buf_cleanup(&want);
    cJSON_Delete(j);
    h_request_cleanup(&q);
  }
  cr_assert(seen[0] && seen[1]);

  /* Another process refreshed the token: the next send uses it. */
  write_token(token_file, "tok-B");
  struct notice *n2 = make_notice("leaders_zalo", NOTICE_RESOLVED);
  submit(&w, n2);
  cr_assert(run_until_counted(&w, "leaders_zalo", "sent", 2, 10000));
  struct h_request q;
  cr_assert(h_recorder_get(rec, 2, &q));
  cr_assert_str_eq(h_request_header(&q, "access_token"), "tok-B");
  h_request_cleanup(&q);

  /* HTTP 200 with a negative error is a failure, not a success. */
  h_recorder_default(rec, 200,
                     "{\"error\":-216,\"message\":\"Access token is "
                     "invalid\"}");
  struct notice *n3 = make_notice("leaders_zalo", NOTICE_FIRING);
  uint64_t id3 = submit(&w, n3);
  cr_assert(run_until(&w, has_dead, 10000));
  cr_assert_eq(counted(&w, "leaders_zalo", "failed"), 1);
  cr_assert_eq(counted(&w, "leaders_zalo", "sent"), 2);
  cr_assert_not_null(strstr(w.why, "Zalo error -216: Access token is invalid"),
                     "%s", w.why);
  cr_assert(file_exists(w.outbox, "dead/", id3));
  notice_free(n);
  notice_free(n2);
  notice_free(n3);
  world_cleanup(&w);
  h_recorder_stop(rec);
}

Test(deliver, zalo_retries_only_the_recipients_that_did_not_get_it) {
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  /* One of the two first requests gets a 503, the other 200. */
  h_recorder_script(rec, 1, 503, "busy", NULL);
  h_recorder_default(rec, 200, "{\"error\":0,\"message\":\"Success\"}");
  struct world w;
  world_init(&w);
  w.recv[0] = receiver("leaders_zalo", CONFIG_RECV_ZALO);
  w.recv[0].base_url = (char *)h_recorder_url(rec);
  w.recv[0].token = (char *)"tok-inline";
  char *users[] = {(char *)"123", (char *)"456"};
  w.recv[0].user_ids = users;
  w.recv[0].nuser_ids = 2;
  courier_start(&w);
  struct notice *n = make_notice("leaders_zalo", NOTICE_FIRING);
  submit(&w, n);
  cr_assert(run_until_counted(&w, "leaders_zalo", "sent", 1, 10000));
  run_for(&w, 200);
  cr_assert_eq(h_recorder_count(rec), 3);
  cr_assert_eq(counted(&w, "leaders_zalo", "retry"), 1);
  int per_user[2] = {0, 0};
  for (size_t i = 0; i < 3; i++) {
    struct h_request q;
    cr_assert(h_recorder_get(rec, i, &q));
    cJSON *j = json_of(q.body);
    per_user[strcmp(jstr(j, "recipient.user_id"), "123") == 0 ? 0 : 1]++;
    cJSON_Delete(j);
    h_request_cleanup(&q);
  }
  /* One user was sent to once, the other twice (503, then 200). */
  cr_assert_eq(per_user[0] + per_user[1], 3);
  cr_assert(per_user[0] >= 1 && per_user[1] >= 1);
  notice_free(n);
  world_cleanup(&w);
  h_recorder_stop(rec);
}

/* ---- MQTT ---- */

struct retained {
  char *payload;
  bool got;
};

static void on_message(struct mosquitto *m, void *ud,
                       const struct mosquitto_message *msg) {
  (void)m;
  struct retained *r = ud;
  if (!r->got && msg->retain) {
    r->payload = calloc(1, (size_t)msg->payloadlen + 1);
    memcpy(r->payload, msg->payload, (size_t)msg->payloadlen);
    r->got = true;
  }
}

/* The retained message on topic, or NULL when none came within 1 s. */
static char *retained_on(int port, const char *topic) {
  struct retained r = {NULL, false};
  struct mosquitto *m = mosquitto_new(NULL, true, &r);
  cr_assert_not_null(m);
  mosquitto_message_callback_set(m, on_message);
  cr_assert_eq(mosquitto_connect(m, "127.0.0.1", port, 10), MOSQ_ERR_SUCCESS);
  cr_assert_eq(mosquitto_subscribe(m, NULL, topic, 1), MOSQ_ERR_SUCCESS);
  int64_t end = clock_mono_ns() + NS_PER_SEC;
  while (!r.got && clock_mono_ns() < end) {
    mosquitto_loop(m, 50, 1);
  }
  mosquitto_disconnect(m);
  mosquitto_destroy(m);
  return r.payload;
}

Test(deliver, mqtt_keeps_the_firing_alert_retained_and_clears_it_resolved) {
  mosquitto_lib_init();
  struct h_mosquitto mq;
  cr_assert_eq(h_mosquitto_start(&mq, NULL, NULL), 0);
  struct world w;
  world_init(&w);
  w.mqtt_port = mq.port;
  w.recv[0] = receiver("wall", CONFIG_RECV_MQTT);
  w.recv[0].topic_prefix = (char *)"ioc/alerts";
  courier_start(&w);
  struct notice *n = make_notice("wall", NOTICE_FIRING);
  submit(&w, n);
  cr_assert(run_until_counted(&w, "wall", "sent", 1, 10000));

  struct buf topic, body;
  buf_init(&topic, 0);
  buf_init(&body, 0);
  cr_assert_eq(payload_mqtt_topic(w.ts, "ioc/alerts", &n->alerts[0], &topic),
               IOCD_OK);
  cr_assert_eq(payload_mqtt_body(w.ts, n, &n->alerts[0], &body), IOCD_OK);
  cr_assert_not_null(strstr(topic.data, DISTRICT), "%s", topic.data);
  char *got = retained_on(mq.port, topic.data);
  cr_assert_not_null(got, "no retained message on %s", topic.data);
  cr_assert_str_eq(got, body.data);
  free(got);

  struct notice *r = make_notice("wall", NOTICE_RESOLVED);
  submit(&w, r);
  cr_assert(run_until_counted(&w, "wall", "sent", 2, 10000));
  got = retained_on(mq.port, topic.data);
  cr_assert_null(got, "still retained: %s", got);
  buf_cleanup(&topic);
  buf_cleanup(&body);
  notice_free(n);
  notice_free(r);
  world_cleanup(&w);
  h_mosquitto_stop(&mq);
  h_rmtree(mq.dir);
  mosquitto_lib_cleanup();
}

Test(deliver, mqtt_without_a_broker_connection_fails) {
  struct world w;
  world_init(&w);
  w.recv[0] = receiver("wall", CONFIG_RECV_MQTT);
  struct courier_opts o = {
      .loop = &w.loop,
      .cfg = &w.cfg,
      .dir = w.outbox,
      .stats = w.stats,
      .templates = templates,
      .templates_ud = &w,
      .on_dead = on_dead,
      .dead_ud = &w,
  };
  struct iocd_err err = {{0}};
  cr_assert_eq(courier_new(&o, &w.c, &err), IOCD_OK, "%s", err.msg);
  struct notice *n = make_notice("wall", NOTICE_FIRING);
  submit(&w, n);
  cr_assert(run_until(&w, has_dead, 5000));
  cr_assert_eq(counted(&w, "wall", "failed"), 1);
  notice_free(n);
  world_cleanup(&w);
}
