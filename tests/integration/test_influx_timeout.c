/*
 * influxdb.timeout as a user sees it: a write that gets no answer fails
 * once `timeout` has passed since its request started, and nothing else
 * on the loop waits meanwhile. Two servers that never answer are made
 * inside the test: a listening socket nobody accepts on (the kernel
 * completes the handshake, the request goes out, no answer comes), and a
 * name server that swallows every query (the host name of the URL never
 * resolves; this one needs root, for a private mount namespace in which
 * /etc/resolv.conf points at it).
 *
 * Each test drives the store on its own loop with UV_RUN_ONCE under a
 * deadline and ends with uv_loop_close() == 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/point.h"
#include "core/stats.h"
#include "store/store.h"
#include "tests/harness/harness.h"

#define TIMEOUT_MS 800
#define FLUSH_MS 10
/* What the loop may add to a timeout: its timers' granularity, the flush
 * interval before the request starts, a busy test machine. */
#define SLACK_MS 400

static int64_t mono_ms(void) {
  return clock_mono_ns() / NS_PER_MS;
}

/* ---- A store on a private loop ------------------------------------------ */

struct t {
  uv_loop_t loop;
  uv_timer_t tick; /* every 20 ms: how long the loop was held shows here */
  int64_t last_tick_ms;
  int64_t max_gap_ms;
  struct stats *stats;
  struct config cfg;
  struct config_subscription subs[1];
  struct store *s;
  bool closed;
};

static void on_tick(uv_timer_t *h) {
  struct t *t = h->data;
  int64_t now = mono_ms();
  if (t->last_tick_ms && now - t->last_tick_ms > t->max_gap_ms) {
    t->max_gap_ms = now - t->last_tick_ms;
  }
  t->last_tick_ms = now;
}

/* The store writes to url with TIMEOUT_MS, and retries only after 60 s, so
 * that the first attempt is the one observed. */
static void t_start(struct t *t, const char *url) {
  memset(t, 0, sizeof *t);
  cr_assert_eq(uv_loop_init(&t->loop), 0);
  uv_timer_init(&t->loop, &t->tick);
  t->tick.data = t;
  uv_timer_start(&t->tick, on_tick, 20, 20);
  t->stats = stats_new();
  cr_assert_not_null(t->stats);
  t->subs[0].name = "igate";
  t->subs[0].topic = "ioc/+/igate";
  t->cfg.subs = t->subs;
  t->cfg.nsubs = 1;
  t->cfg.influx = (struct config_influx){
      .enabled = true,
      .url = (char *)url,
      .api = INFLUX_V1,
      .database = "ioc",
      .create_database = false,
      .gzip = true,
      .timeout_ms = TIMEOUT_MS,
      .flush_interval_ms = FLUSH_MS,
      .retry_min_ms = 60000,
      .retry_max_ms = 60000,
      .tls_verify = true,
  };
  struct iocd_err err = {{0}};
  t->s = store_new(&t->loop, &t->cfg, t->stats, &err);
  cr_assert_not_null(t->s, "store_new: %s", err.msg);
}

static void append_one(struct t *t) {
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = pb_point_new(&pb, "igate", 5);
  cr_assert_not_null(p);
  p->ts_ns = INT64_C(1700000000000000000);
  p->has_ts = true;
  cr_assert_eq(pb_tag(&pb, p, "district", 8, "Ea H'Leo", 8, true), 0);
  cr_assert_eq(pb_field_int(&pb, p, "received", 8, 1520), 0);
  cr_assert_eq(store_append(t->s, 0, &pb), 0);
  pb_cleanup(&pb);
}

static uint64_t network_failures(struct t *t) {
  struct metric *m = stats_find(t->stats, "iocd_write_requests_total", "output",
                                "influxdb", "status", "network", NULL);
  return m ? m->count : 0;
}

/* Runs the loop until the first request failed; returns how long that took
 * from now, or -1 after limit_ms. */
static int64_t ms_until_failure(struct t *t, int limit_ms) {
  int64_t start = mono_ms();
  t->last_tick_ms = 0;
  t->max_gap_ms = 0;
  while (network_failures(t) == 0) {
    if (mono_ms() - start > limit_ms) {
      return -1;
    }
    uv_run(&t->loop, UV_RUN_ONCE);
  }
  int64_t took = mono_ms() - start;
  /* The next ticks show whether the iteration that failed it held the
   * loop. */
  int64_t end = mono_ms() + 100;
  while (mono_ms() < end) {
    uv_run(&t->loop, UV_RUN_ONCE);
  }
  return took;
}

static void on_closed(void *ud, uint64_t unwritten) {
  (void)unwritten;
  struct t *t = ud;
  t->closed = true;
}

static void t_finish(struct t *t) {
  store_close(t->s, 1000, on_closed, t);
  int64_t end = mono_ms() + 5000;
  while (!t->closed && mono_ms() < end) {
    uv_run(&t->loop, UV_RUN_ONCE);
  }
  cr_assert(t->closed, "store_close did not call back");
  uv_close((uv_handle_t *)&t->tick, NULL);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&t->loop), 0, "handles left open on the loop");
  stats_free(t->stats);
}

/* ---- A server that accepts and never answers ----------------------------
 */

Test(influx_timeout, a_server_that_never_answers_fails_the_write_at_timeout) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_geq(fd, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  cr_assert_eq(listen(fd, 16), 0);
  socklen_t len = sizeof a;
  cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));

  struct t t;
  t_start(&t, url);
  append_one(&t);
  int64_t took = ms_until_failure(&t, 10 * TIMEOUT_MS);
  cr_assert_geq(took, 0, "no failure reported");
  cr_expect_geq(took, TIMEOUT_MS, "failed after %lld ms, before its timeout",
                (long long)took);
  cr_expect_leq(took, TIMEOUT_MS + SLACK_MS, "failed after %lld ms",
                (long long)took);
  struct metric *h = stats_find(t.stats, "iocd_write_batch_seconds", "output",
                                "influxdb", NULL);
  cr_assert_not_null(h);
  cr_expect_eq(h->count, 1);
  cr_expect_leq(h->value, (TIMEOUT_MS + SLACK_MS) / 1000.0,
                "the request took %.3f s", h->value);
  cr_expect_leq(t.max_gap_ms, SLACK_MS, "the loop was held for %lld ms",
                (long long)t.max_gap_ms);
  t_finish(&t);
  close(fd);
}

/* ---- A host name that never resolves ------------------------------------
 */

struct probe {
  const char *host;
  volatile int done;
};

static void *resolve(void *ud) {
  struct probe *p = ud;
  struct addrinfo *res = NULL;
  if (getaddrinfo(p->host, "8086", NULL, &res) == 0) {
    freeaddrinfo(res);
  }
  p->done = 1;
  return NULL;
}

/* In a mount namespace of this process alone, /etc/resolv.conf names a
 * server at 127.0.3.53 that takes every query and never answers, so that
 * resolving any name not in /etc/hosts takes timeout x attempts (4 s).
 * Skips the test when that cannot be set up or names do not resolve
 * through /etc/resolv.conf here. dir holds the file. */
static int black_hole_dns(const char *dir, const char *host) {
  if (geteuid() != 0) {
    cr_skip_test("needs root (a private mount namespace for resolv.conf)");
  }
  int dns = socket(AF_INET, SOCK_DGRAM, 0);
  cr_assert_geq(dns, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
  inet_pton(AF_INET, "127.0.3.53", &a.sin_addr);
  if (bind(dns, (struct sockaddr *)&a, sizeof a) != 0) {
    cr_skip_test("cannot bind 127.0.3.53:53: %s", strerror(errno));
  }
  char conf[300];
  snprintf(conf, sizeof conf, "%s/resolv.conf", dir);
  FILE *f = fopen(conf, "w");
  cr_assert_not_null(f);
  fputs("nameserver 127.0.3.53\noptions timeout:2 attempts:2\n", f);
  fclose(f);
  if (unshare(CLONE_NEWNS) != 0 ||
      mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
      mount(conf, "/etc/resolv.conf", NULL, MS_BIND, NULL) != 0) {
    cr_skip_test("cannot bind-mount resolv.conf in a private namespace: %s",
                 strerror(errno));
  }
  /* Resolution through another path (nss-resolve, a hosts entry) would
   * answer at once: then there is nothing to test here. */
  static struct probe p;
  p.host = host;
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, resolve, &p), 0);
  pthread_detach(th);
  h_sleep_ms(1000);
  if (p.done) {
    cr_skip_test(
        "%s resolved (or failed) at once: names do not go through "
        "/etc/resolv.conf here",
        host);
  }
  return dns;
}

Test(influx_timeout, a_host_name_that_never_resolves_fails_at_timeout) {
  char dir[64];
  cr_assert_eq(h_tmpdir(dir, sizeof dir), 0);
  const char *host = "influxdb.iocd-test.invalid";
  int dns = black_hole_dns(dir, host);
  char url[128];
  snprintf(url, sizeof url, "http://%s:8086", host);

  struct t t;
  t_start(&t, url);
  append_one(&t);
  int64_t took = ms_until_failure(&t, 20000);
  cr_assert_geq(took, 0, "no failure reported");
  cr_expect_leq(took, TIMEOUT_MS + SLACK_MS,
                "failed after %lld ms with a timeout of %d ms", (long long)took,
                TIMEOUT_MS);
  cr_expect_leq(t.max_gap_ms, SLACK_MS,
                "the loop was held for %lld ms while the name did not "
                "resolve",
                (long long)t.max_gap_ms);
  int64_t t0 = mono_ms();
  t_finish(&t);
  cr_expect_leq(mono_ms() - t0, 1500, "closing the store waited for the name");
  close(dns);
  h_rmtree(dir);
}
