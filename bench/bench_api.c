/*
 * API under load benchmark: what hundreds of HTTP clients asking iocd's API
 * cost its ingest, and how the API answers meanwhile. One mosquitto and one
 * influxd (the test harness, free loopback ports) serve the whole run; iocd
 * is a black box started fresh for every phase, with the province's
 * default rules (config/rules/daklak.jsonc), so /api/v1/rules has content.
 *
 * Per round, in an order alternating from round to round:
 *
 * - quiet: N messages from P district publishers (bench/pubs.c) at the
 *   broker's full rate, no API client;
 * - api: the same while C clients (libcurl multi, one thread of this
 *   program) ask GET /api/v1/alerts, /metrics and /api/v1/rules in turn,
 *   each on a new connection, each client bound to one of 50 loopback
 *   source addresses 127.0.1.1-50 (CURLOPT_INTERFACE "host!..."): the API
 *   keeps 32 connections per client address and 128 in all, closing the
 *   oldest to make room, so a client whose connection was closed, or which
 *   was answered 503 before its request was read, asks again, and that is
 *   counted as a retry.
 *
 * In both phases a thread asks /health every 100 ms on a new connection
 * from 127.0.0.1, as a supervisor would. The clients and the health thread
 * start 1 s (or one --interval) before the clock, so the clock runs under
 * a steady load. The
 * ingest rate is N / (first publish to the N-th point written, from
 * iocd's /metrics, read every 20 ms from 127.0.0.1); the figure is the
 * ratio api / quiet of the rates within a round, and its median over the
 * rounds. The API's figures count what completed while the clock ran.
 *
 * --interval MS makes each client pause after each answer (wall displays
 * polling) instead of asking again at once (the default: as many answers
 * as iocd gives). --tokens adds a viewer token to iocd's "api" section and
 * sends it with every request but /health (which stays open).
 */
#include <curl/curl.h>
#include <errno.h>
#include <mosquitto.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "bench/pubs.h"
#include "core/buf.h"
#include "core/clock.h"
#include "tests/harness/harness.h"

#define PROG "bench_api"

/* A phase gives up when nothing moved for this long. */
#define STALL_MS 30000
/* After the warm-up, at most this long for iocd and influxd to go idle. */
#define SETTLE_MAX_MS 60000
/* iocd's /metrics is polled this often while the clock runs. */
#define POLL_MS 20
/* The clients and the health thread run this long before the clock. */
#define RAMP_MS 1000
/* Background messages per district before the clock. */
#define WARM_BG 2
#define MAX_ROUNDS 20
#define MAX_CLIENTS 5000
/* Client source addresses: 127.0.1.1 .. 127.0.1.ADDRESSES. */
#define ADDRESSES 50
/* One request (one attempt) gives up after this long. */
#define REQUEST_TIMEOUT_MS 30000 /* the report says "30 s" */
#define HEALTH_EVERY_MS 100
#define HEALTH_TIMEOUT_MS 5000
/* Latencies kept per phase at most (the rest are counted, not kept). */
#define MAX_LATENCIES (1L << 24)

#define VIEWER_TOKEN "bench-viewer-7Qf2xR9kLm3Np8Vt"
#define SERIES_WRITTEN \
  "iocd_source_points_written_total{subscription=\"igate\"}"
#define SERIES_ROOM "iocd_api_connections_closed_total{reason=\"room\"}"

static const char *const paths[] = {"/api/v1/alerts", "/metrics",
                                    "/api/v1/rules"};
#define NPATHS (sizeof paths / sizeof paths[0])

struct opts {
  long n;          /* messages per phase */
  int publishers;  /* background publishers (districts) */
  int rounds;      /* of quiet + api */
  int clients;     /* concurrent API clients */
  int interval_ms; /* a client's pause after each answer (0: none) */
  bool tokens;     /* a viewer token in the config and on every request */
  bool keep;
};

/* A growable series of latencies in ms, capped at MAX_LATENCIES. */
struct series {
  double *v;
  long n, cap;
  long dropped; /* past the cap */
};

static void series_add(struct series *s, double ms) {
  if (s->n == s->cap) {
    long cap = s->cap ? s->cap * 2 : 4096;
    double *v =
        cap <= MAX_LATENCIES ? realloc(s->v, (size_t)cap * sizeof *v) : NULL;
    if (!v) {
      s->dropped++;
      return;
    }
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = ms;
}

static void series_cleanup(struct series *s) {
  free(s->v);
  memset(s, 0, sizeof *s);
}

/* ---- the API clients ---- */

struct client {
  CURL *h;
  int64_t due_ns;   /* asks again then (0: asking) */
  size_t path;      /* index in paths of the request under way */
  int64_t first_ns; /* its first attempt began (retries keep it) */
  char url[128];
  char iface[32];
};

/* The thread that runs the clients. Its counters are written by it alone
 * and read once it has been joined; "answered" is read live. */
struct load {
  pthread_t thread;
  int port;
  int nclients;
  int interval_ms;
  struct curl_slist *headers; /* Authorization, or NULL */
  const atomic_bool *measuring;
  atomic_bool stop;
  atomic_long answered; /* 200s since the start */
  bool failed;          /* could not set up */
  /* While measuring: */
  long win_answered;
  long win_per_path[NPATHS];
  long win_retried;  /* closed to make room, or answered 503 */
  long win_timeouts; /* no answer in REQUEST_TIMEOUT_MS: asked again */
  long win_errors;   /* anything else: also asked again */
  struct series lat; /* first attempt to 200, ms */
  /* The first error seen (any time), to report. */
  long err_status;
  CURLcode err_curl;
  char err_url[128];
};

static size_t discard(char *p, size_t size, size_t n, void *ud) {
  (void)p;
  (void)ud;
  return size * n;
}

static void client_arm(struct load *l, struct client *c) {
  snprintf(c->url, sizeof c->url, "http://127.0.0.1:%d%s", l->port,
           paths[c->path]);
  curl_easy_setopt(c->h, CURLOPT_URL, c->url);
}

/* A refusal the limits allow: the connection closed to make room (before
 * or while the answer came), or 503 before the request was read. */
static bool made_room(CURLcode rc, long status) {
  if (rc == CURLE_OK) {
    return status == 503;
  }
  return status == 0 && (rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR ||
                         rc == CURLE_SEND_ERROR || rc == CURLE_PARTIAL_FILE);
}

static void client_done(struct load *l, struct client *c, CURLcode rc) {
  long status = 0;
  curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
  bool measuring = atomic_load(l->measuring);
  int64_t now = clock_mono_ns();
  if (rc == CURLE_OK && status == 200) {
    atomic_fetch_add(&l->answered, 1);
    if (measuring) {
      l->win_answered++;
      l->win_per_path[c->path]++;
      series_add(&l->lat, (double)(now - c->first_ns) / 1e6);
    }
    c->path = (c->path + 1) % NPATHS;
    c->first_ns = now + (int64_t)l->interval_ms * 1000000;
    c->due_ns = l->interval_ms > 0 ? c->first_ns : 0;
  } else if (made_room(rc, status)) {
    l->win_retried += measuring;
  } else if (rc == CURLE_OPERATION_TIMEDOUT) {
    l->win_timeouts += measuring;
  } else {
    l->win_errors += measuring;
    if (!l->err_url[0]) {
      l->err_status = status;
      l->err_curl = rc;
      snprintf(l->err_url, sizeof l->err_url, "%s", c->url);
    }
  }
  client_arm(l, c);
}

static void *load_main(void *arg) {
  struct load *l = arg;
  CURLM *m = curl_multi_init();
  struct client *cs = calloc((size_t)l->nclients, sizeof *cs);
  int added = 0;
  if (!m || !cs) {
    l->failed = true;
    goto out;
  }
  for (int i = 0; i < l->nclients; i++) {
    struct client *c = &cs[i];
    c->h = curl_easy_init();
    if (!c->h) {
      l->failed = true;
      goto out;
    }
    /* Clients on one address ask different things at first. */
    c->path = (size_t)(i / ADDRESSES) % NPATHS;
    c->first_ns = clock_mono_ns();
    snprintf(c->iface, sizeof c->iface, "host!127.0.1.%d", 1 + i % ADDRESSES);
    curl_easy_setopt(c->h, CURLOPT_INTERFACE, c->iface);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, l->headers);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c->h, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, (long)REQUEST_TIMEOUT_MS);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_PRIVATE, c);
    client_arm(l, c);
    added = i + 1;
    if (l->interval_ms > 0 && i > 0) {
      /* Spread over one interval, as independent pollers would be. */
      c->first_ns += (int64_t)l->interval_ms * 1000000 * i / l->nclients;
      c->due_ns = c->first_ns;
    } else if (curl_multi_add_handle(m, c->h) != CURLM_OK) {
      l->failed = true;
      goto out;
    }
  }
  while (!atomic_load(&l->stop)) {
    int running = 0;
    curl_multi_perform(m, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
      if (msg->msg != CURLMSG_DONE) {
        continue;
      }
      CURL *h = msg->easy_handle;
      CURLcode rc = msg->data.result;
      char *priv = NULL;
      curl_easy_getinfo(h, CURLINFO_PRIVATE, &priv);
      struct client *c = (struct client *)(void *)priv;
      curl_multi_remove_handle(m, h);
      client_done(l, c, rc);
      if (!c->due_ns) {
        curl_multi_add_handle(m, h);
      }
    }
    if (l->interval_ms > 0) {
      int64_t now = clock_mono_ns();
      for (int i = 0; i < l->nclients; i++) {
        if (cs[i].due_ns && cs[i].due_ns <= now) {
          cs[i].due_ns = 0;
          curl_multi_add_handle(m, cs[i].h);
        }
      }
    }
    curl_multi_poll(m, NULL, 0, l->interval_ms > 0 ? 5 : 100, NULL);
  }
out:
  for (int i = 0; cs && i < l->nclients; i++) {
    if (cs[i].h) {
      if (i < added && !cs[i].due_ns) {
        curl_multi_remove_handle(m, cs[i].h);
      }
      curl_easy_cleanup(cs[i].h);
    }
  }
  free(cs);
  if (m) {
    curl_multi_cleanup(m);
  }
  return NULL;
}

/* ---- /health ---- */

/* The thread that asks /health every HEALTH_EVERY_MS until stopped. */
struct health {
  pthread_t thread;
  int port;
  const atomic_bool *measuring;
  atomic_bool stop;
  /* While measuring: */
  long asked, failed;
  struct series lat; /* of the 200s, ms */
};

static void *health_main(void *arg) {
  struct health *hl = arg;
  CURL *h = curl_easy_init();
  if (!h) {
    return NULL;
  }
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/health", hl->port);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)HEALTH_TIMEOUT_MS);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  struct timespec at;
  clock_gettime(CLOCK_MONOTONIC, &at);
  while (!atomic_load(&hl->stop)) {
    int64_t t0 = clock_mono_ns();
    CURLcode rc = curl_easy_perform(h);
    int64_t t1 = clock_mono_ns();
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (atomic_load(hl->measuring)) {
      hl->asked++;
      if (rc == CURLE_OK && status == 200) {
        series_add(&hl->lat, (double)(t1 - t0) / 1e6);
      } else {
        hl->failed++;
      }
    }
    /* The next one on a fixed schedule; after one that took longer than
     * the period, at once, and the schedule starts again from now (no
     * burst to catch up). */
    at.tv_nsec += (long)HEALTH_EVERY_MS * 1000000L;
    while (at.tv_nsec >= 1000000000L) {
      at.tv_nsec -= 1000000000L;
      at.tv_sec++;
    }
    if ((int64_t)at.tv_sec * 1000000000 + at.tv_nsec < t1) {
      at.tv_sec = (time_t)(t1 / 1000000000);
      at.tv_nsec = (long)(t1 % 1000000000);
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) ==
           EINTR) {
    }
  }
  curl_easy_cleanup(h);
  return NULL;
}

/* ---- the kernel's listen queues ---- */

/* The next space-separated field of *p (NUL-terminated in place), or
 * NULL at the end of the line. */
static char *next_field(char **p) {
  char *f = *p + strspn(*p, " ");
  size_t n = strcspn(f, " \n");
  if (n == 0) {
    return NULL;
  }
  *p = f[n] ? f + n + 1 : f + n;
  f[n] = '\0';
  return f;
}

/* TcpExt ListenOverflows of /proc/net/netstat (the whole network
 * namespace): connections dropped because a listen queue was full; the
 * client's SYN is sent again after 1 s, then 3 s. -1 when unreadable. */
static long listen_overflows(void) {
  FILE *f = fopen("/proc/net/netstat", "r");
  if (!f) {
    return -1;
  }
  char names[4096], values[4096];
  long v = -1;
  while (v < 0 && fgets(names, sizeof names, f) &&
         fgets(values, sizeof values, f)) {
    if (strncmp(names, "TcpExt:", 7) != 0) {
      continue;
    }
    /* The names line and the values line list their fields in step. */
    char *pn = names, *pv = values, *n, *x;
    while ((n = next_field(&pn)) != NULL && (x = next_field(&pv)) != NULL) {
      if (strcmp(n, "ListenOverflows") == 0) {
        char *end;
        errno = 0;
        long parsed = strtol(x, &end, 10);
        v = errno || end == x ? -1 : parsed;
        break;
      }
    }
  }
  fclose(f);
  return v;
}

/* ---- a phase ---- */

struct bench {
  struct opts o;
  char dir[256];
  struct h_mosquitto mq;
  struct h_influxd db;
  struct bench_metrics met;
  struct curl_slist *headers; /* the clients' Authorization, or NULL */
};

struct phase_result {
  bool ok;
  double seconds;   /* first publish to the N-th point written */
  double iocd_cpu;  /* s, while the clock ran */
  double bench_cpu; /* s, this program (publishers and clients) */
  /* api only: */
  long answered, per_path[NPATHS], retried, timeouts, errors;
  struct bench_pct lat;
  double room;    /* connections iocd closed to make room; -1: unknown */
  long overflows; /* listen queue overflows (system-wide); -1: unknown */
  /* both: */
  long health_asked, health_failed;
  struct bench_pct health;
};

/* The first timestamp of a batch of n background records that ends back
 * ms before now - 2 min: inside iocd's past limit, and apart from the
 * batch before (back: its size). */
static int64_t ts_base(long n, long back) {
  return clock_realtime_ns() / 1000000 - n - back - 120000;
}

static int write_config(const struct bench *b, const char *dir,
                        const char *client_id, const char *db, int api_port,
                        struct buf *out) {
  struct buf ds;
  buf_init(&ds, 4096);
  for (size_t k = 0; k < PUBS_NDISTRICTS; k++) {
    buf_printf(&ds, "%s\"%s\"", k ? ", " : "", pubs_district(k));
  }
  int rc = buf_printf(
      out,
      "// written by " PROG
      "\n"
      "{\n"
      "  \"data_dir\": \"%s/data\",\n"
      "  \"log\": {\"level\": \"info\"},\n"
      "  \"mqtt\": {\"host\": \"127.0.0.1\", \"port\": %d,\n"
      "           \"client_id\": \"%s\"},\n"
      "  \"influxdb\": {\"url\": \"%s\", \"database\": \"%s\"},\n"
      "  \"api\": {\"listen\": \"127.0.0.1:%d\"%s},\n"
      "  \"subscriptions\": [\n"
      "    {\"name\": \"igate\", \"qos\": 1, \"topic\": "
      "\"ioc/{district}/igate\",\n"
      "     \"format\": \"json\", \"measurement\": \"igate\",\n"
      "     \"time_unit_numbers\": \"ms\", \"tags\": {\"system\": "
      "\"igate\"},\n"
      "     \"types\": {\"received\": \"integer\", \"resolved\": "
      "\"integer\", \"online_l3\": \"integer\", \"online_l4\": "
      "\"integer\", \"overdue\": \"integer\"}}\n"
      "  ],\n"
      "  \"sources\": {\"districts\": [%s], \"systems\": [\"igate\"]},\n"
      "  \"rule_files\": [\"" IOCD_SOURCE_DIR
      "/config/rules/daklak.jsonc\"]\n"
      "}\n",
      dir, b->mq.port, client_id, b->db.url, db, api_port,
      b->o.tokens ? ",\n          \"tokens\": [{\"name\": \"bench-viewer\", "
                    "\"role\": \"viewer\", \"token\": \"" VIEWER_TOKEN "\"}]"
                  : "",
      ds.data);
  buf_cleanup(&ds);
  return rc == 0 ? 0 : -1;
}

/* Polls /metrics until the igate points written reach want. Returns 0, or
 * -1 when they stalled for STALL_MS. */
static int wait_written(struct bench *b, const struct h_iocd *iocd,
                        int api_port, long want, const char *what) {
  long written = 0, last = -1;
  int64_t moved_at = clock_mono_ns();
  for (;;) {
    if (bench_metrics_get(&b->met, api_port) == 200) {
      written = (long)bench_metrics_value(&b->met, SERIES_WRITTEN);
    }
    if (written >= want) {
      return 0;
    }
    if (written != last) {
      last = written;
      moved_at = clock_mono_ns();
    } else if (clock_mono_ns() - moved_at > (int64_t)STALL_MS * 1000000) {
      fprintf(stderr, PROG ": %s: stuck at %ld of %ld points (see %s)\n", what,
              written, want, iocd->log);
      return -1;
    }
    h_sleep_ms(POLL_MS);
  }
}

/* The value of series on /metrics, asked up to 10 times (the API may
 * close the connection to make room), or -1. */
static double metric_now(struct bench *b, int api_port, const char *series) {
  for (int i = 0; i < 10; i++) {
    if (bench_metrics_get(&b->met, api_port) == 200) {
      return bench_metrics_value(&b->met, series);
    }
    h_sleep_ms(POLL_MS);
  }
  return -1;
}

/* One phase: a fresh iocd, warmed up (two messages per district written,
 * then idle), then (api) the clients and in both the health thread, and
 * N messages at the broker's full rate. */
static int phase(struct bench *b, const char *name, bool api,
                 struct phase_result *r) {
  memset(r, 0, sizeof *r);
  r->room = -1;
  int rc = -1;
  char dir[512], client_id[96], db[96];
  snprintf(dir, sizeof dir, "%s/%s", b->dir, name);
  snprintf(client_id, sizeof client_id, PROG "-%s-%ld", name, (long)getpid());
  snprintf(db, sizeof db, "bench_%s", name);
  for (char *c = db; *c; c++) {
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9'))) {
      *c = '_';
    }
  }
  struct buf cfg;
  buf_init(&cfg, 1 << 20);
  struct h_iocd iocd = {0};
  int api_port = h_free_port();
  atomic_bool measuring;
  atomic_init(&measuring, false);
  struct load l = {.nclients = b->o.clients,
                   .interval_ms = b->o.interval_ms,
                   .headers = b->headers,
                   .measuring = &measuring};
  struct health hl = {.measuring = &measuring};
  atomic_init(&l.stop, false);
  atomic_init(&l.answered, 0);
  atomic_init(&hl.stop, false);
  bool load_on = false, health_on = false;
  struct pubs *ps = NULL;
  long bg = (long)WARM_BG * b->o.publishers;
  if (mkdir(dir, 0755) != 0) {
    fprintf(stderr, PROG ": mkdir %s: %s\n", dir, strerror(errno));
    goto out;
  }
  if (api_port < 0 ||
      write_config(b, dir, client_id, db, api_port, &cfg) != 0 ||
      h_iocd_start(&iocd, dir, cfg.data) != 0 ||
      h_iocd_wait_log(&iocd, "subscribed", 15000) != 0) {
    goto out;
  }
  /* The warm-up: the first points of each district (series created in
   * InfluxDB, rules instantiated), then the servers idle. */
  ps = pubs_start(&(struct pubs_opts){b->mq.port, b->o.publishers, bg,
                                      ts_base(bg, b->o.n), 0});
  if (!ps) {
    goto out;
  }
  pubs_go(ps);
  int prc = pubs_join(ps);
  ps = NULL;
  if (prc != 0 || wait_written(b, &iocd, api_port, bg, "warm-up") != 0) {
    goto out;
  }
  pid_t idle[] = {iocd.pid, b->db.pid};
  bench_settle(idle, 2, SETTLE_MAX_MS);

  l.port = hl.port = api_port;
  if (pthread_create(&hl.thread, NULL, health_main, &hl) != 0) {
    fprintf(stderr, PROG ": pthread_create failed\n");
    goto out;
  }
  health_on = true;
  if (api) {
    if (pthread_create(&l.thread, NULL, load_main, &l) != 0) {
      fprintf(stderr, PROG ": pthread_create failed\n");
      goto out;
    }
    load_on = true;
  }
  /* Every client has asked once before the clock. */
  int ramp_ms = b->o.interval_ms > RAMP_MS ? b->o.interval_ms : RAMP_MS;
  h_sleep_ms(ramp_ms);
  if (api && atomic_load(&l.answered) == 0) {
    fprintf(stderr, PROG ": %s: no API client got an answer in %d ms\n", name,
            ramp_ms);
  }
  double room0 = api ? metric_now(b, api_port, SERIES_ROOM) : -1;
  ps = pubs_start(&(struct pubs_opts){b->mq.port, b->o.publishers, b->o.n,
                                      ts_base(b->o.n, 0), bg});
  if (!ps) {
    goto out;
  }
  long ov0 = listen_overflows();
  double i0 = bench_proc_cpu_s(iocd.pid);
  double s0 = bench_proc_cpu_s(getpid());
  atomic_store(&measuring, true);
  int64_t t0 = pubs_go(ps);
  rc = wait_written(b, &iocd, api_port, bg + b->o.n, name);
  int64_t t_end = clock_mono_ns();
  atomic_store(&measuring, false);
  r->seconds = (double)(t_end - t0) / 1e9;
  r->iocd_cpu = bench_proc_cpu_s(iocd.pid) - i0;
  r->bench_cpu = bench_proc_cpu_s(getpid()) - s0;
  long ov1 = listen_overflows();
  r->overflows = ov0 >= 0 && ov1 >= 0 ? ov1 - ov0 : -1;
  if (rc == 0 && api && room0 >= 0) {
    /* From the answer that showed the N-th point. */
    double room1 = bench_metrics_value(&b->met, SERIES_ROOM);
    r->room = room1 >= 0 ? room1 - room0 : -1;
  }
  r->ok = rc == 0;

out:
  if (ps && pubs_join(ps) != 0) {
    r->ok = false;
    rc = -1;
  }
  if (load_on) {
    atomic_store(&l.stop, true);
    pthread_join(l.thread, NULL);
    if (l.failed) {
      fprintf(stderr, PROG ": %s: the API clients could not be set up\n", name);
      rc = -1;
      r->ok = false;
    }
    r->answered = l.win_answered;
    memcpy(r->per_path, l.win_per_path, sizeof r->per_path);
    r->retried = l.win_retried;
    r->timeouts = l.win_timeouts;
    r->errors = l.win_errors;
    r->lat = bench_percentiles(l.lat.v, l.lat.n);
    if (l.err_url[0]) {
      fprintf(stderr, PROG ": %s: first failed request: %s: HTTP %ld, %s\n",
              name, l.err_url, l.err_status, curl_easy_strerror(l.err_curl));
    }
  }
  if (health_on) {
    atomic_store(&hl.stop, true);
    pthread_join(hl.thread, NULL);
    r->health_asked = hl.asked;
    r->health_failed = hl.failed;
    r->health = bench_percentiles(hl.lat.v, hl.lat.n);
  }
  series_cleanup(&l.lat);
  series_cleanup(&hl.lat);
  if (iocd.pid > 0) {
    int st = h_iocd_stop(&iocd, SIGTERM, 30000);
    if (st != 0) {
      fprintf(stderr, PROG ": iocd exited with status %d (see %s)\n", st,
              iocd.log);
    }
  }
  bench_drop_session(b->mq.port, client_id);
  buf_cleanup(&cfg);
  return rc;
}

/* ---- command line ---- */

static void usage(FILE *out) {
  fprintf(out,
          "Usage: " PROG
          " [options]\n"
          "  -n N                 messages per phase (default 200000)\n"
          "  -P, --publishers P   background publishers (default 15)\n"
          "  -r, --repeat R       rounds of quiet + api (default 3)\n"
          "  -C, --clients C      concurrent API clients (default 500)\n"
          "  --interval MS        a client's pause after each answer "
          "(default 0: none)\n"
          "  --quick              -n 20000 -r 1 (options after it win)\n"
          "  --tokens             a viewer token in iocd's config, sent by "
          "every client\n"
          "  --keep               keep the temporary directories\n"
          "  -h, --help           this help\n"
          "Environment: IOCD_BIN overrides the iocd binary.\n");
}

static int parse_args(int argc, char **argv, struct opts *o) {
  *o =
      (struct opts){.n = 200000, .publishers = 15, .rounds = 3, .clients = 500};
  long publishers = o->publishers, rounds = o->rounds, clients = o->clients,
       interval = 0;
  const struct {
    const char *name, *alias;
    long *out, lo, hi;
  } nums[] = {
      {"-n", NULL, &o->n, 1000, 100000000},
      {"--publishers", "-P", &publishers, 1, PUBS_NDISTRICTS},
      {"--repeat", "-r", &rounds, 1, MAX_ROUNDS},
      {"--clients", "-C", &clients, 1, MAX_CLIENTS},
      {"--interval", NULL, &interval, 0, 600000},
  };
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    size_t k = 0;
    while (k < sizeof nums / sizeof nums[0] && strcmp(a, nums[k].name) != 0 &&
           !(nums[k].alias && strcmp(a, nums[k].alias) == 0)) {
      k++;
    }
    if (k < sizeof nums / sizeof nums[0]) {
      if (bench_parse_long(PROG, a, i + 1 < argc ? argv[i + 1] : NULL,
                           nums[k].lo, nums[k].hi, nums[k].out) != 0) {
        return -1;
      }
      i++;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 1;
    } else if (strcmp(a, "--quick") == 0) {
      o->n = 20000;
      rounds = 1;
    } else if (strcmp(a, "--tokens") == 0) {
      o->tokens = true;
    } else if (strcmp(a, "--keep") == 0) {
      o->keep = true;
    } else {
      fprintf(stderr, PROG ": unknown option '%s'\n", a);
      usage(stderr);
      return -1;
    }
  }
  o->publishers = (int)publishers;
  o->rounds = (int)rounds;
  o->clients = (int)clients;
  o->interval_ms = (int)interval;
  return 0;
}

/* ---- report ---- */

static void print_params(const struct bench *b) {
  printf(
      "parameters: N=%ld messages per phase from %d publishers, QoS 1, "
      "JSON; %d round%s\n",
      b->o.n, b->o.publishers, b->o.rounds, b->o.rounds == 1 ? "" : "s");
  printf("clients:    %d, from 127.0.1.1-%d, GET", b->o.clients,
         b->o.clients < ADDRESSES ? b->o.clients : ADDRESSES);
  for (size_t k = 0; k < NPATHS; k++) {
    printf(" %s%s", paths[k], k + 1 < NPATHS ? "," : "");
  }
  printf(" in turn,\n            a new connection each, ");
  if (b->o.interval_ms > 0) {
    printf("%d ms apart", b->o.interval_ms);
  } else {
    printf("asking again at once");
  }
  printf("; token: %s;\n            /health every %d ms from 127.0.0.1\n",
         b->o.tokens ? "viewer" : "none (anonymous)", HEALTH_EVERY_MS);
  printf("servers:    mosquitto on :%d, influxd on :%d, iocd %s\n", b->mq.port,
         b->db.port, h_iocd_bin());
}

static void print_ingest(int round, const char *phase,
                         const struct phase_result *r,
                         const struct phase_result *quiet, long n) {
  if (!r->ok) {
    printf("%5d  %-6s failed\n", round, phase);
    return;
  }
  char ratio[16] = "-";
  if (r != quiet && quiet->ok) {
    snprintf(ratio, sizeof ratio, "%.3f", quiet->seconds / r->seconds);
  }
  printf("%5d  %-6s %7.2f %9.0f %7s %9.2f %9.2f\n", round, phase, r->seconds,
         (double)n / r->seconds, ratio, r->iocd_cpu * 100000.0 / (double)n,
         r->bench_cpu * 100000.0 / (double)n);
}

static void print_api(int round, const struct phase_result *r,
                      const struct phase_result *quiet) {
  if (!r->ok) {
    printf("%5d  failed\n", round);
    return;
  }
  char room[32] = "-", per[16] = "-", cpu[16] = "-", ov[32] = "-";
  if (quiet->ok && r->answered > 0) {
    /* iocd's CPU beyond what the same messages took without clients. */
    snprintf(cpu, sizeof cpu, "%.3f",
             (r->iocd_cpu - quiet->iocd_cpu) * 1000.0 / (double)r->answered);
  }
  if (r->overflows >= 0) {
    snprintf(ov, sizeof ov, "%ld", r->overflows);
  }
  if (r->room >= 0) {
    snprintf(room, sizeof room, "%.0f", r->room);
  }
  if (r->answered > 0) {
    snprintf(per, sizeof per, "%.2f", (double)r->retried / (double)r->answered);
  }
  printf("%5d  %9.0f %8ld %7.1f %7.1f %8.1f %8ld %6s %5ld %6ld %8s %7s %9s\n",
         round, (double)r->answered / r->seconds, r->answered, r->lat.p50,
         r->lat.p99, r->lat.max, r->retried, per, r->timeouts, r->errors, room,
         cpu, ov);
}

static void print_health(int round, const char *phase,
                         const struct phase_result *r) {
  printf("%5d  %-6s %6ld %6ld", round, phase, r->health_asked,
         r->health_failed);
  if (r->health.n > 0) {
    printf(" %7.1f %7.1f %7.1f\n", r->health.p50, r->health.p99, r->health.max);
  } else {
    printf(" %7s %7s %7s\n", "-", "-", "-");
  }
}

/* ---- main ---- */

struct round_result {
  struct phase_result quiet, api;
};

int main(int argc, char **argv) {
  struct bench b;
  memset(&b, 0, sizeof b);
  int prc = parse_args(argc, argv, &b.o);
  if (prc != 0) {
    return prc > 0 ? 0 : 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  mosquitto_lib_init();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int exit_code = 1;
  struct round_result *rr = calloc((size_t)b.o.rounds + 1, sizeof *rr);
  const char *token = b.o.tokens ? VIEWER_TOKEN : NULL;
  if (!rr || bench_metrics_init(&b.met, token) != 0) {
    fprintf(stderr, PROG ": out of memory\n");
    goto out;
  }
  if (token && !(b.headers = curl_slist_append(
                     NULL, "Authorization: Bearer " VIEWER_TOKEN))) {
    fprintf(stderr, PROG ": out of memory\n");
    goto out;
  }
  if (h_tmpdir(b.dir, sizeof b.dir) != 0) {
    goto out;
  }
  if (h_mosquitto_start(&b.mq, NULL,
                        "persistence false\nmax_queued_messages 0\n") != 0 ||
      h_influxd_start(&b.db, NULL) != 0) {
    goto out;
  }
  bench_print_header("iocd API under load benchmark", IOCD_SOURCE_DIR);
  print_params(&b);
  bench_print_command(argc, argv);

  bool failed = false;
  for (int round = 1; round <= b.o.rounds; round++) {
    struct round_result *r = &rr[round];
    /* Alternate the order so that a trend of the machine's load does not
     * fall on one side. */
    for (int k = 0; k < 2; k++) {
      bool api = (k == 0) == (round % 2 == 0);
      char name[64];
      snprintf(name, sizeof name, "%s-%d", api ? "api" : "quiet", round);
      fprintf(stderr, "round %d: %s...\n", round, api ? "api" : "quiet");
      if (phase(&b, name, api, api ? &r->api : &r->quiet) != 0) {
        failed = true;
      }
      h_sleep_ms(2000);
    }
  }

  printf(
      "\ningest (time s: first publish to the N-th point written; "
      "ratio: quiet time / time;\n"
      "CPU s per 100k messages of iocd and of this program: publishers "
      "and clients)\n");
  printf("%5s  %-6s %7s %9s %7s %9s %9s\n", "round", "phase", "time s",
         "msgs/s", "ratio", "iocd CPU", "bench CPU");
  for (int round = 1; round <= b.o.rounds; round++) {
    print_ingest(round, "quiet", &rr[round].quiet, &rr[round].quiet, b.o.n);
    print_ingest(round, "api", &rr[round].api, &rr[round].quiet, b.o.n);
  }

  printf(
      "\nAPI while the clock ran (answers: 200s; latency ms from a "
      "request's first attempt\n"
      "to its 200, retries included; retried: connection closed to make "
      "room or 503;\n"
      "t/o: an attempt with no answer in 30 s; errors: anything else; "
      "room: connections\niocd counted closing to make room; "
      "CPU ms: iocd's CPU per answer\nbeyond the quiet phase's; "
      "overflows: connections dropped by full listen queues,\n"
      "system-wide: each a wait of 1 s or more for its client)\n");
  printf("%5s  %9s %8s %7s %7s %8s %8s %6s %5s %6s %8s %7s %9s\n", "round",
         "answers/s", "answers", "p50", "p99", "max", "retried", "/answ", "t/o",
         "errors", "room", "CPU ms", "overflows");
  long errors = 0;
  for (int round = 1; round <= b.o.rounds; round++) {
    print_api(round, &rr[round].api, &rr[round].quiet);
    errors += rr[round].api.errors;
  }
  for (int round = 1; round <= b.o.rounds; round++) {
    const struct phase_result *r = &rr[round].api;
    if (r->ok) {
      printf("  round %d answers by path:", round);
      for (size_t k = 0; k < NPATHS; k++) {
        printf(" %s %ld%s", paths[k], r->per_path[k],
               k + 1 < NPATHS ? "," : "");
      }
      printf("\n");
    }
  }

  printf(
      "\n/health every %d ms while the clock ran (ms; failed: not 200 "
      "within %d ms)\n",
      HEALTH_EVERY_MS, HEALTH_TIMEOUT_MS);
  printf("%5s  %-6s %6s %6s %7s %7s %7s\n", "round", "phase", "asked", "failed",
         "p50", "p99", "max");
  long health_failed = 0;
  for (int round = 1; round <= b.o.rounds; round++) {
    print_health(round, "quiet", &rr[round].quiet);
    print_health(round, "api", &rr[round].api);
    health_failed += rr[round].api.health_failed;
  }

  double ratios[MAX_ROUNDS], rates[MAX_ROUNDS], p99s[MAX_ROUNDS],
      hp99s[MAX_ROUNDS];
  int k = 0;
  printf("\nrate api / quiet:");
  for (int round = 1; round <= b.o.rounds; round++) {
    struct round_result *r = &rr[round];
    if (r->api.ok && r->quiet.ok) {
      ratios[k] = r->quiet.seconds / r->api.seconds;
      rates[k] = (double)r->api.answered / r->api.seconds;
      p99s[k] = r->api.lat.p99;
      hp99s[k] = r->api.health.p99;
      printf(" %.3f", ratios[k]);
      k++;
    } else {
      printf(" -");
    }
  }
  if (k > 0) {
    printf("; median %.3f\n", bench_median(ratios, k));
    printf(
        "medians over the rounds: %.0f answers/s, request p99 %.1f ms, "
        "/health p99 %.1f ms\n",
        bench_median(rates, k), bench_median(p99s, k), bench_median(hp99s, k));
  } else {
    printf("\n");
  }
  printf("API errors: %ld; /health failures under load: %ld\n", errors,
         health_failed);
  exit_code = failed || errors != 0 ? 1 : 0;

out:
  h_mosquitto_stop(&b.mq);
  h_influxd_stop(&b.db);
  if (b.o.keep) {
    fprintf(stderr, "kept: %s %s %s\n", b.dir, b.mq.dir, b.db.dir);
  } else {
    if (b.dir[0]) {
      h_rmtree(b.dir);
    }
    if (b.mq.dir[0]) {
      h_rmtree(b.mq.dir);
    }
    if (b.db.dir[0]) {
      h_rmtree(b.db.dir);
    }
  }
  free(rr);
  curl_slist_free_all(b.headers);
  bench_metrics_cleanup(&b.met);
  curl_global_cleanup();
  mosquitto_lib_cleanup();
  return exit_code;
}
