/*
 * Smoke tests of the integration-test harness itself: the servers start on
 * free ports, answer, keep their data over a restart, and the blocking
 * helpers publish and query what the other tests will rely on.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tests/harness/harness.h"

/* A blocking subscriber that keeps what it receives. */
struct sub {
  struct mosquitto *m;
  bool subscribed;
  int count;
  char topic[128];
  char payload[128];
  char content_type[64];
};

static void sub_on_subscribe(struct mosquitto *m, void *ud, int mid, int n,
                             const int *granted) {
  (void)m;
  (void)mid;
  (void)n;
  (void)granted;
  struct sub *s = ud;
  s->subscribed = true;
}

static void sub_on_message(struct mosquitto *m, void *ud,
                           const struct mosquitto_message *msg,
                           const mosquitto_property *props) {
  (void)m;
  struct sub *s = ud;
  s->count++;
  snprintf(s->topic, sizeof s->topic, "%s", msg->topic);
  snprintf(s->payload, sizeof s->payload, "%.*s", msg->payloadlen,
           (const char *)msg->payload);
  char *ct = NULL;
  if (mosquitto_property_read_string(props, MQTT_PROP_CONTENT_TYPE, &ct,
                                     false)) {
    snprintf(s->content_type, sizeof s->content_type, "%s", ct);
    free(ct);
  }
}

static void sub_open(struct sub *s, int port, const char *filter) {
  memset(s, 0, sizeof *s);
  mosquitto_lib_init();
  s->m = mosquitto_new(NULL, true, s);
  cr_assert_not_null(s->m);
  mosquitto_int_option(s->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
  mosquitto_subscribe_callback_set(s->m, sub_on_subscribe);
  mosquitto_message_v5_callback_set(s->m, sub_on_message);
  cr_assert_eq(mosquitto_connect(s->m, "127.0.0.1", port, 30), 0);
  cr_assert_eq(mosquitto_subscribe(s->m, NULL, filter, 1), 0);
  for (int i = 0; i < 250 && !s->subscribed; i++) {
    cr_assert_eq(mosquitto_loop(s->m, 20, 1), 0);
  }
  cr_assert(s->subscribed, "no SUBACK");
}

static void sub_wait(struct sub *s, int count) {
  time_t end = time(NULL) + 20;
  while (s->count < count && time(NULL) < end) {
    cr_assert_eq(mosquitto_loop(s->m, 20, 1), 0);
  }
}

static void sub_close(struct sub *s) {
  mosquitto_disconnect(s->m);
  mosquitto_destroy(s->m);
}

Test(harness, free_port_is_bindable_and_nonzero) {
  int port = h_free_port();
  cr_assert_gt(port, 0);
  cr_assert_lt(port, 65536);
}

Test(harness, tmpdir_is_created_and_removed_with_its_contents) {
  char dir[64];
  cr_assert_eq(h_tmpdir(dir, sizeof dir), 0);
  char sub[128], file[192];
  snprintf(sub, sizeof sub, "%s/a", dir);
  cr_assert_eq(mkdir(sub, 0700), 0);
  snprintf(file, sizeof file, "%s/f", sub);
  FILE *f = fopen(file, "w");
  cr_assert_not_null(f);
  fputs("x", f);
  fclose(f);
  h_rmtree(dir);
  struct stat st;
  cr_assert_neq(stat(dir, &st), 0, "%s still exists", dir);
}

Test(harness, influxd_stores_a_point_and_keeps_it_over_a_restart) {
  struct h_influxd d;
  cr_assert_eq(h_influxd_start(&d, NULL), 0);
  char *json = NULL;
  cr_assert_eq(h_influx_query(&d, NULL, "CREATE DATABASE smoke", &json), 0);
  free(json);

  char url[128];
  snprintf(url, sizeof url, "%s/write?db=smoke&precision=ns", d.url);
  const char *line =
      "probe,district=Bu\xc3\xb4n\\ Ma\\ Thu\xe1\xbb\x99t "
      "v=42.5 1700000000000000000\n";
  CURL *e = curl_easy_init();
  cr_assert_not_null(e);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, line);
  cr_assert_eq(curl_easy_perform(e), CURLE_OK);
  long code = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(e);
  cr_assert_eq(code, 204);

  double v = 0;
  cr_assert_eq(h_influx_scalar(&d, "smoke", "SELECT v FROM probe", &v), 0);
  cr_assert_float_eq(v, 42.5, 1e-9);
  cr_assert_eq(h_influx_query(&d, "smoke",
                              "SHOW TAG VALUES FROM probe "
                              "WITH KEY = district",
                              &json),
               0);
  cr_assert(strstr(json, "Bu\xc3\xb4n Ma Thu\xe1\xbb\x99t") != NULL, "%s",
            json);
  free(json);

  cr_assert_eq(h_influxd_restart(&d), 0);
  double n = 0;
  cr_assert_eq(h_influx_scalar(&d, "smoke", "SELECT count(v) FROM probe", &n),
               0);
  cr_assert_float_eq(n, 1.0, 1e-9);
  cr_assert_neq(h_influx_scalar(&d, "smoke", "SELECT v FROM nothing", &v), 0);
  h_influxd_stop(&d);
  h_rmtree(d.dir);
}

Test(harness, published_message_reaches_a_subscriber_with_content_type) {
  struct h_mosquitto m;
  cr_assert_eq(h_mosquitto_start(&m, NULL, NULL), 0);
  struct sub s;
  sub_open(&s, m.port, "smoke/#");
  cr_assert_eq(h_publish(m.port, "smoke/a", "hello", 5, 1, "application/json"),
               0);
  sub_wait(&s, 1);
  cr_assert_eq(s.count, 1);
  cr_assert_str_eq(s.topic, "smoke/a");
  cr_assert_str_eq(s.payload, "hello");
  cr_assert_str_eq(s.content_type, "application/json");
  sub_close(&s);
  h_mosquitto_stop(&m);
  h_rmtree(m.dir);
}

Test(harness, persistent_publisher_delivers_a_burst_in_order) {
  struct h_mosquitto m;
  cr_assert_eq(h_mosquitto_start(&m, NULL, NULL), 0);
  struct sub s;
  sub_open(&s, m.port, "burst");
  struct h_pub *p = h_pub_open(m.port, "burst-pub");
  cr_assert_not_null(p);
  enum { N = 3000 };
  for (int i = 0; i < N; i++) {
    char msg[16];
    int k = snprintf(msg, sizeof msg, "%d", i);
    cr_assert_eq(h_pub_send(p, "burst", msg, (size_t)k, 1), 0);
    if (i % 100 == 0) {
      mosquitto_loop(s.m, 0, 1);
    }
  }
  cr_assert_eq(h_pub_flush(p), 0);
  h_pub_close(p);
  sub_wait(&s, N);
  cr_assert_eq(s.count, N);
  char last[16];
  snprintf(last, sizeof last, "%d", N - 1);
  cr_assert_str_eq(s.payload, last);
  sub_close(&s);
  h_mosquitto_stop(&m);
  h_rmtree(m.dir);
}

Test(harness, mosquitto_restart_keeps_port_and_queued_messages) {
  struct h_mosquitto m;
  cr_assert_eq(h_mosquitto_start(&m, NULL, NULL), 0);
  int port = m.port;

  /* A persistent v3.1.1 session (clean_session false) with a subscription,
   * then disconnected: the broker queues for it across the restart. */
  mosquitto_lib_init();
  struct sub s;
  memset(&s, 0, sizeof s);
  s.m = mosquitto_new("persist-sub", false, &s);
  cr_assert_not_null(s.m);
  mosquitto_subscribe_callback_set(s.m, sub_on_subscribe);
  mosquitto_message_v5_callback_set(s.m, sub_on_message);
  cr_assert_eq(mosquitto_connect(s.m, "127.0.0.1", port, 30), 0);
  cr_assert_eq(mosquitto_subscribe(s.m, NULL, "q", 1), 0);
  for (int i = 0; i < 250 && !s.subscribed; i++) {
    mosquitto_loop(s.m, 20, 1);
  }
  cr_assert(s.subscribed);
  sub_close(&s);

  cr_assert_eq(h_publish(port, "q", "kept", 4, 1, NULL), 0);
  cr_assert_eq(h_mosquitto_restart(&m), 0);
  cr_assert_eq(m.port, port);

  memset(&s, 0, sizeof s);
  s.m = mosquitto_new("persist-sub", false, &s);
  mosquitto_message_v5_callback_set(s.m, sub_on_message);
  cr_assert_eq(mosquitto_connect(s.m, "127.0.0.1", port, 30), 0);
  sub_wait(&s, 1);
  cr_assert_eq(s.count, 1);
  cr_assert_str_eq(s.payload, "kept");
  sub_close(&s);
  h_mosquitto_stop(&m);
  h_rmtree(m.dir);
}

static bool file_exists(void *ud) {
  struct stat st;
  return stat(ud, &st) == 0;
}

Test(harness, iocd_binary_runs_with_its_log_captured) {
  char dir[64];
  cr_assert_eq(h_tmpdir(dir, sizeof dir), 0);
  struct h_iocd p;
  cr_assert_eq(h_iocd_start(&p, dir, "{ /* not a valid config */ ]"), 0);
  cr_assert_eq(h_wait_until(file_exists, p.log, 5000), 0);
  /* An invalid config makes iocd exit 1 and name the file in its log:
   * proof that the binary ran on the written config with stderr captured.
   * Signal 0 only waits for the exit. */
  cr_assert_eq(h_iocd_stop(&p, 0, 10000), 1);
  cr_assert(h_iocd_log_contains(&p, "iocd.jsonc"), "see %s", p.log);
  h_rmtree(dir);
}
