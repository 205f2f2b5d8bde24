/*
 * The InfluxDB writer's recovery probe as pure functions (store/retry.c):
 * which failed writes start the /ping probe, what a /ping answer means, and
 * when an answer cuts the backoff short. The writer's timers and requests
 * are tested against a real influxd in
 * tests/integration/test_influx_recovery.c.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"
#include "store/store_int.h"

Test(probe, classifies_ping_answers_as_up_down_or_other) {
  static const struct {
    long status;
    CURLcode res;
    enum probe_outcome want;
  } cases[] = {
      {204, CURLE_OK, PROBE_UP},
      {200, CURLE_OK, PROBE_UP},
      {0, CURLE_COULDNT_CONNECT, PROBE_DOWN},
      {0, CURLE_OPERATION_TIMEDOUT, PROBE_DOWN},
      {0, CURLE_GOT_NOTHING, PROBE_DOWN},
      {0, CURLE_COULDNT_RESOLVE_HOST, PROBE_DOWN},
      {500, CURLE_OK, PROBE_DOWN},
      {502, CURLE_OK, PROBE_DOWN},
      {503, CURLE_OK, PROBE_DOWN},
      {401, CURLE_OK, PROBE_OTHER},
      {404, CURLE_OK, PROBE_OTHER},
      {301, CURLE_OK, PROBE_OTHER},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_expect_eq(store__probe_outcome(cases[i].status, cases[i].res),
                 cases[i].want, "status %ld, curl %d", cases[i].status,
                 (int)cases[i].res);
  }
  cr_expect_str_eq(store__probe_outcome_name(PROBE_UP), "up");
  cr_expect_str_eq(store__probe_outcome_name(PROBE_DOWN), "down");
  cr_expect_str_eq(store__probe_outcome_name(PROBE_OTHER), "other");
}

Test(probe, starts_on_network_errors_and_5xx_not_on_refusals) {
  static const struct {
    long status;
    CURLcode res;
    bool active;
    bool seen_down;
  } cases[] = {
      /* InfluxDB not there at all: the failure is evidence by itself. */
      {0, CURLE_COULDNT_CONNECT, true, true},
      {0, CURLE_COULDNT_RESOLVE_HOST, true, true},
      /* May be away, may be slow: the probe finds out. */
      {0, CURLE_OPERATION_TIMEDOUT, true, false},
      {0, CURLE_RECV_ERROR, true, false},
      {0, CURLE_GOT_NOTHING, true, false},
      {500, CURLE_OK, true, false},
      {502, CURLE_OK, true, false},
      {503, CURLE_OK, true, false},
      /* InfluxDB is there and said no: /ping cannot tell more. */
      {408, CURLE_OK, false, false},
      {429, CURLE_OK, false, false},
      {401, CURLE_OK, false, false},
      {403, CURLE_OK, false, false},
      {404, CURLE_OK, false, false},
      {400, CURLE_OK, false, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct probe_state ps = {0};
    store__probe_failed(&ps, cases[i].status, cases[i].res, 1000);
    cr_expect(ps.failing);
    cr_expect_eq(ps.since_ms, 1000);
    cr_expect_eq(ps.active, cases[i].active, "status %ld, curl %d",
                 cases[i].status, (int)cases[i].res);
    cr_expect_eq(ps.seen_down, cases[i].seen_down, "status %ld, curl %d",
                 cases[i].status, (int)cases[i].res);
  }
}

Test(probe, resumes_once_when_influxdb_answers_after_it_was_away) {
  struct probe_state ps = {0};
  store__probe_failed(&ps, 0, CURLE_OPERATION_TIMEDOUT, 500);
  cr_expect_not(store__probe_answer(&ps, PROBE_DOWN));
  cr_expect_not(store__probe_answer(&ps, PROBE_DOWN));
  cr_expect_not(store__probe_answer(&ps, PROBE_OTHER));
  cr_expect(store__probe_answer(&ps, PROBE_UP));
  /* The evidence is used up: a second 204 alone does not resume again. */
  cr_expect_not(store__probe_answer(&ps, PROBE_UP));
  /* The resumed write fails again, InfluxDB goes away and comes back. */
  store__probe_failed(&ps, 503, CURLE_OK, 9000);
  cr_expect_eq(ps.since_ms, 500, "the outage began with the first failure");
  cr_expect_not(store__probe_answer(&ps, PROBE_UP));
  cr_expect_not(store__probe_answer(&ps, PROBE_DOWN));
  cr_expect(store__probe_answer(&ps, PROBE_UP));
}

Test(probe, a_refused_connection_resumes_on_the_first_answer) {
  struct probe_state ps = {0};
  store__probe_failed(&ps, 0, CURLE_COULDNT_CONNECT, 0);
  cr_expect(store__probe_answer(&ps, PROBE_UP));
}

Test(probe, keeps_the_backoff_while_ping_answers_and_writes_fail) {
  /* An overloaded server times writes out but answers /ping: resuming at
   * every probe would hammer it. */
  struct probe_state ps = {0};
  store__probe_failed(&ps, 0, CURLE_OPERATION_TIMEDOUT, 0);
  for (int i = 0; i < 5; i++) {
    cr_expect_not(store__probe_answer(&ps, PROBE_UP));
    store__probe_failed(&ps, 500, CURLE_OK, 100 * i);
  }
}

Test(probe, stops_when_influxdb_refuses_or_writes_work) {
  struct probe_state ps = {0};
  store__probe_failed(&ps, 0, CURLE_COULDNT_CONNECT, 0);
  store__probe_failed(&ps, 429, CURLE_OK, 10);
  cr_expect_not(ps.active);
  cr_expect_not(store__probe_answer(&ps, PROBE_DOWN));
  cr_expect_not(store__probe_answer(&ps, PROBE_UP),
                "a 429's Retry-After is not cut short");

  store__probe_failed(&ps, 0, CURLE_COULDNT_CONNECT, 20);
  cr_expect(ps.active);
  store__probe_reset(&ps);
  cr_expect_not(ps.active);
  cr_expect_not(ps.failing);
  cr_expect_not(store__probe_answer(&ps, PROBE_UP));
}

Test(probe, pings_the_base_url_without_its_trailing_slashes) {
  static const struct {
    const char *url;
    enum influx_api api;
    const char *want;
  } cases[] = {
      {"http://127.0.0.1:8086", INFLUX_V1, "http://127.0.0.1:8086/ping"},
      {"http://127.0.0.1:8086/", INFLUX_V1, "http://127.0.0.1:8086/ping"},
      {"https://db.example//", INFLUX_V2, "https://db.example/ping"},
      {"http://proxy/influx", INFLUX_V1, "http://proxy/influx/ping"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct influx_settings st = {.url = cases[i].url, .api = cases[i].api};
    struct buf b;
    buf_init(&b, 0);
    cr_assert_eq(store__influx_ping_url(&b, &st), 0);
    cr_expect_str_eq(b.data, cases[i].want);
    buf_cleanup(&b);
  }
}

Test(probe, probe_interval_is_taken_as_configured_zero_turning_it_off) {
  struct config_influx ci = {.url = "http://x", .probe_interval_ms = 0};
  struct influx_settings st;
  store__influx_settings(&ci, &st);
  cr_expect_eq(st.probe_ms, 0);
  ci.probe_interval_ms = 2000;
  store__influx_settings(&ci, &st);
  cr_expect_eq(st.probe_ms, 2000);
}

/* Loads an influxdb section with the members in extra; returns the return
 * code and the probe interval (ms) in *ms, the loader's messages in
 * errors (the caller cleans it up). */
static int load_probe(const char *extra, int *ms, struct buf *errors) {
  char text[512];
  snprintf(text, sizeof text,
           "{\"subscriptions\": [{\"topic\": \"t\"}],\n"
           " \"influxdb\": {\"database\": \"ioc\"%s}}\n",
           extra);
  struct config *cfg = NULL;
  buf_init(errors, 0);
  int rc = config_load_text("iocd.jsonc", text, strlen(text), &cfg, errors);
  *ms = cfg ? cfg->influx.probe_interval_ms : -1;
  config_free(cfg);
  return rc;
}

Test(probe, probe_interval_defaults_to_2s_and_0s_turns_it_off) {
  static const struct {
    const char *extra;
    int want_ms;
  } cases[] = {
      {"", 2000},
      {", \"probe_interval\": \"0s\"", 0},
      {", \"probe_interval\": \"500ms\"", 500},
      {", \"probe_interval\": \"1m\"", 60000},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int ms;
    struct buf errors;
    int rc = load_probe(cases[i].extra, &ms, &errors);
    cr_expect_eq(rc, IOCD_OK, "%s: %s", cases[i].extra,
                 errors.data ? errors.data : "");
    cr_expect_eq(ms, cases[i].want_ms, "%s", cases[i].extra);
    buf_cleanup(&errors);
  }
}

Test(probe, probe_interval_refuses_less_than_100ms_and_more_than_1h) {
  static const char *const bad[] = {
      ", \"probe_interval\": \"50ms\"",
      ", \"probe_interval\": \"2h\"",
      ", \"probe_interval\": \"soon\"",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int ms;
    struct buf errors;
    int rc = load_probe(bad[i], &ms, &errors);
    cr_expect_eq(rc, IOCD_EPARSE, "%s", bad[i]);
    cr_expect(errors.data && strstr(errors.data, "probe_interval"), "%s: %s",
              bad[i], errors.data ? errors.data : "");
    buf_cleanup(&errors);
  }
}
