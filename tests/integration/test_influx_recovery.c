/*
 * InfluxDB back after an outage, as a user sees it: the iocd binary against
 * a real mosquitto and a real influxd, influxd stopped while a point waits
 * to be written and started again on the same port and data. With the
 * recovery probe (influxdb.probe_interval) the point arrives within seconds
 * of influxd's return, far under the writer's backoff; without it, only
 * when the backoff is over.
 *
 * The backoff is made long and exact: retry_min 30s (the first retry
 * waits exactly retry_min), retry_max 60s. A point written before the
 * retry is due was written because of the probe.
 *
 * What influxd will not do on demand (answer 503, to writes and to /ping)
 * comes from the harness's recorder, which also shows what the probe sends:
 * the output's credentials, never logged.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tests/harness/harness.h"

#define COUNT "SELECT count(received) FROM igate"
#define RETRY_MIN_MS 30000
/* What "at once" means here: far under RETRY_MIN_MS. */
#define RESUME_BOUND_MS 10000

#define RETRIES "iocd_write_retries_total{output=\"influxdb\"}"
#define PROBES_DOWN \
  "iocd_influx_probes_total{output=\"influxdb\",outcome=\"down\"}"
#define PROBES_UP "iocd_influx_probes_total{output=\"influxdb\",outcome=\"up\"}"
#define RESUMES "iocd_influx_probe_resumes_total{output=\"influxdb\"}"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* iocd on e's servers (e->influx_url: another InfluxDB), with the long
 * backoff; influx holds more members of the influxdb section, or NULL. */
static void env_iocd(struct h_env *e, const char *client_id,
                     const char *influx) {
  e->influx_extra = influx;
  cr_assert_eq(h_env_config(e, client_id,
                            "  \"shutdown_timeout\": \"10s\",\n"
                            "  \"limits\": {\"max_past\": \"36600d\"},\n"
                            "  \"subscriptions\": [\n"
                            "    {\"name\": \"igate\", \"topic\": "
                            "\"ioc/{district}/igate\",\n"
                            "     \"measurement\": \"igate\", \"qos\": 1,\n"
                            "     \"types\": {\"received\": \"integer\"}}\n"
                            "  ]\n"),
               0);
  /* The harness retries between 100ms and 1s; this test needs a backoff
   * that is long and known. */
  static const char fast[] = "\"retry_min\": \"100ms\", \"retry_max\": \"1s\"";
  char *at = strstr(e->config, fast);
  cr_assert_not_null(at, "the harness's retry bounds moved:\n%s", e->config);
  char cfg[sizeof e->config];
  snprintf(cfg, sizeof cfg,
           "%.*s\"retry_min\": \"%ds\", \"retry_max\": "
           "\"60s\"%s",
           (int)(at - e->config), e->config, RETRY_MIN_MS / 1000,
           at + strlen(fast));
  memcpy(e->config, cfg, sizeof cfg);
  cr_assert_eq(h_env_iocd_start(e), 0, "iocd did not subscribe; see %s",
               e->iocd.log);
}

/* The servers and iocd, with the long backoff and probe (the members of
 * the influxdb section, or NULL for the default probe_interval). */
static void env_up(struct h_env *e, const char *client_id, const char *probe) {
  cr_assert_eq(h_env_start(e), 0);
  env_iocd(e, client_id, probe);
}

static void env_down(struct h_env *e) {
  cr_assert_eq(h_iocd_stop(&e->iocd, SIGTERM, 15000), 0);
  h_env_stop(e);
}

static void publish(struct h_env *e, int received, long t) {
  char payload[128];
  snprintf(payload, sizeof payload, "{\"received\": %d, \"time\": %ld}",
           received, t);
  cr_assert_eq(
      h_publish(e->mq.port, "ioc/Lắk/igate", payload, strlen(payload), 1, NULL),
      0);
}

struct mwait {
  const struct h_env *e;
  const char *series;
  double want;
};

static bool metric_reached(void *ud) {
  const struct mwait *w = ud;
  return h_metric(w->e->api_port, w->series) >= w->want;
}

static void wait_metric(const struct h_env *e, const char *series, double want,
                        int timeout_ms) {
  struct mwait w = {e, series, want};
  cr_assert_eq(h_wait_until(metric_reached, &w, timeout_ms), 0,
               "%s stays at %g (want %g); see %s", series,
               h_metric(e->api_port, series), want, e->iocd.log);
}

/* One point written, influxd stopped, a second point whose write fails
 * (its retry is due RETRY_MIN_MS later), then influxd started again on the
 * same port and data dir. Returns when influxd answers /ping again, with
 * the time the write failed in *failed_ms. */
static void outage(struct h_env *e, bool probe, int64_t *failed_ms) {
  publish(e, 1, 1601460000);
  cr_assert_eq(h_env_wait_count(e, COUNT, 1, 15000), 0,
               "the first point did not arrive; see %s", e->iocd.log);

  h_influxd_stop(&e->db);
  publish(e, 2, 1601460060);
  wait_metric(e, RETRIES, 1, 10000);
  *failed_ms = now_ms();
  if (probe) {
    /* The probe has seen InfluxDB away. */
    wait_metric(e, PROBES_DOWN, 1, 10000);
  } else {
    h_sleep_ms(2500);
  }
  cr_assert_eq(h_influxd_restart(&e->db), 0);
}

Test(influx_recovery, probe_writes_within_seconds_of_influxd_back) {
  struct h_env e;
  env_up(&e, "recovery-probe", NULL); /* probe_interval: the default 2s */
  int64_t failed;
  outage(&e, true, &failed);
  int64_t back = now_ms();
  cr_assert_lt(back - failed, RETRY_MIN_MS - RESUME_BOUND_MS,
               "influxd took too long to restart for this test");

  cr_assert_eq(h_env_wait_count(&e, COUNT, 2, RESUME_BOUND_MS), 0,
               "the point did not arrive within %d ms of influxd's return "
               "(the backoff's retry is due %lld ms after it); see %s",
               RESUME_BOUND_MS, (long long)(failed + RETRY_MIN_MS - back),
               e.iocd.log);
  int64_t took = now_ms() - back;
  cr_log_info(
      "influxd back to the point written: %lld ms (retry due after "
      "%lld ms)",
      (long long)took, (long long)(failed + RETRY_MIN_MS - back));
  fprintf(stderr,
          "influx_recovery: influxd back to the point written: %lld ms "
          "(the backoff's retry was due after %lld ms)\n",
          (long long)took, (long long)(failed + RETRY_MIN_MS - back));

  cr_expect_eq(h_metric(e.api_port, RESUMES), 1);
  cr_expect_geq(h_metric(e.api_port, PROBES_UP), 1);
  cr_expect_eq(h_metric(e.api_port, RETRIES), 1,
               "the point went out because of the probe, not a retry");
  cr_expect(h_iocd_log_contains(&e.iocd, "InfluxDB answers /ping again after "),
            "no resume line in %s", e.iocd.log);
  cr_expect(h_iocd_log_contains(&e.iocd, "writes recovered after"),
            "no recovery line in %s", e.iocd.log);
  env_down(&e);
}

Test(influx_recovery, without_the_probe_the_point_waits_for_the_backoff) {
  struct h_env e;
  env_up(&e, "recovery-noprobe", "\"probe_interval\": \"0s\"");
  int64_t failed;
  outage(&e, false, &failed);
  int64_t back = now_ms();
  cr_assert_lt(back - failed, RETRY_MIN_MS - RESUME_BOUND_MS,
               "influxd took too long to restart for this test");

  cr_expect_neq(h_env_wait_count(&e, COUNT, 2, RESUME_BOUND_MS), 0,
                "the point arrived before its retry was due");
  cr_expect_eq(h_metric(e.api_port, PROBES_DOWN), 0);
  cr_expect_eq(h_metric(e.api_port, PROBES_UP), 0);
  cr_expect_eq(h_metric(e.api_port, RESUMES), 0);
  /* The retry brings it, RETRY_MIN_MS after the failure. */
  cr_assert_eq(h_env_wait_count(&e, COUNT, 2, RETRY_MIN_MS + 10000), 0,
               "the point never arrived; see %s", e.iocd.log);
  int64_t took = now_ms() - failed;
  cr_expect_geq(took, RETRY_MIN_MS - 1000, "arrived %lld ms after the failure",
                (long long)took);
  cr_expect(!h_iocd_log_contains(&e.iocd, "answers /ping again"));
  env_down(&e);
}

/* The recorder stands in for InfluxDB: the write fails with 503, the
 * first /ping too, the next one answers 204 and the write goes out at
 * once. What the probe sent: a GET of /ping with the output's
 * credentials. */
struct auth_case {
  const char *name;
  const char *influx; /* members of the influxdb section */
  const char *write_path;
  const char *authorization; /* the header every request carries */
  const char *secret;        /* never in the log */
  size_t first_write;        /* requests before the first write */
};

static void probe_through_5xx(const struct auth_case *c) {
  struct h_env e;
  cr_assert_eq(h_env_start(&e), 0);
  struct h_recorder *rec = h_recorder_start(0);
  cr_assert_not_null(rec);
  h_recorder_default(rec, 204, "");
  if (c->first_write > 0) {
    h_recorder_script(rec, (int)c->first_write, 200, "{\"results\":[{}]}",
                      NULL);
  }
  /* the write, then the first /ping */
  h_recorder_script(rec, 2, 503, "{\"error\":\"busy\"}", NULL);
  e.influx_url = h_recorder_url(rec);
  env_iocd(&e, c->name, c->influx);
  publish(&e, 1, 1601460000);

  size_t nfirst = c->first_write;
  cr_assert_eq(h_recorder_wait(rec, nfirst + 1, 10000), 0);
  int64_t failed = now_ms();
  /* the 503, the /ping answered 503, the /ping answered 204, the write */
  cr_assert_eq(h_recorder_wait(rec, nfirst + 4, 15000), 0,
               "%zu requests; see %s", h_recorder_count(rec), e.iocd.log);
  int64_t took = now_ms() - failed;
  cr_expect_lt(took, RESUME_BOUND_MS, "the write went out after %lld ms",
               (long long)took);

  static const char *const method[] = {"POST", "GET", "GET", "POST"};
  for (size_t i = 0; i < 4; i++) {
    struct h_request q;
    cr_assert(h_recorder_get(rec, nfirst + i, &q));
    const char *want_path = i == 1 || i == 2 ? "/ping" : c->write_path;
    cr_expect_str_eq(q.method, method[i], "%s: request %zu", c->name, i);
    cr_expect_str_eq(q.path, want_path, "%s: request %zu", c->name, i);
    const char *auth = h_request_header(&q, "Authorization");
    cr_expect(auth && strcmp(auth, c->authorization) == 0,
              "%s: request %zu %s: Authorization %s", c->name, i, q.path,
              auth ? auth : "(none)");
    h_request_cleanup(&q);
  }
  cr_expect_eq(h_metric(e.api_port, PROBES_DOWN), 1);
  cr_expect_eq(h_metric(e.api_port, PROBES_UP), 1);
  cr_expect_eq(h_metric(e.api_port, RESUMES), 1);
  cr_expect(h_iocd_log_contains(&e.iocd, "InfluxDB answers /ping again after"),
            "no resume line in %s", e.iocd.log);
  cr_expect(!h_iocd_log_contains(&e.iocd, c->secret), "%s: the secret is in %s",
            c->name, e.iocd.log);
  env_down(&e);
  h_recorder_stop(rec);
}

Test(influx_recovery, api2_probe_sends_the_token_and_resumes_after_a_5xx) {
  static const struct auth_case c = {
      .name = "recovery-token",
      .influx =
          "\"api\": 2, \"org\": \"ioc\", \"bucket\": \"ioc\", "
          "\"token\": \"tok-Quae7ahb-secret\"",
      .write_path = "/api/v2/write",
      .authorization = "Token tok-Quae7ahb-secret",
      .secret = "Quae7ahb",
      .first_write = 0,
  };
  probe_through_5xx(&c);
}

Test(influx_recovery, api1_probe_logs_in_as_the_writes_do) {
  /* iocd:pw-Oodei4ai-secret in base64 */
  static const struct auth_case c = {
      .name = "recovery-basic",
      .influx =
          "\"username\": \"iocd\", \"password\": "
          "\"pw-Oodei4ai-secret\"",
      .write_path = "/write",
      .authorization = "Basic aW9jZDpwdy1Pb2RlaTRhaS1zZWNyZXQ=",
      .secret = "Oodei4ai",
      .first_write = 1, /* CREATE DATABASE */
  };
  probe_through_5xx(&c);
}
