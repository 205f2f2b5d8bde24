/*
 * Alert burst benchmark: does a burst of thousands of alert transitions slow
 * the ingest of data points? One mosquitto and one influxd (the test
 * harness, free loopback ports) serve the whole run; iocd is a black box
 * started fresh for every phase.
 *
 * Each phase publishes the districts' iGate records at a steady rate (one
 * publisher on a thread of its own, a message every 1/rate s, 15 districts
 * in turn) and, every `period` seconds after a warm-up, a burst: K groups of
 * the `burst` measurement (line protocol, 500 lines a message) whose rule
 * `burst.value > 0 by group` changes state for every one of them at once:
 * value 1 (K firing transitions), then value 0 (K resolved ones), and so
 * on, i.e. K `alerts` points within a second, each a new series for
 * InfluxDB. The groups were published once before the clock with value 0
 * (their series exist, their instances are inactive), so a burst adds K
 * data points to existing series, and the K alert points. The group tag is
 * not the district tag: iocd_alerts_active then stays a few series instead
 * of K, and reading /metrics costs iocd as much after a burst as before.
 *
 * Every 50 ms it reads iocd's /metrics and computes, in the `window`
 * seconds before each burst and in the `window` seconds after it:
 *
 * - write lag: how old the newest iGate point confirmed written is (now -
 *   the publish time of that message): what the wall sees;
 * - intake lag: the same for the newest message iocd took in;
 * - request s: the mean duration of the data writer's InfluxDB requests
 *   (iocd_write_batch_seconds{output="influxdb"});
 * - the iGate points written per second, and influxd's CPU per second.
 *
 * Figures are ratios, after / before each burst, summed up as medians over
 * every burst of every round, so that a stall of the machine that falls on
 * one window weighs little. The phases (variants) are: "no-alerts" (the
 * same bursts with a rule that never fires: what the bursts' data points
 * alone cost, and the noise), "shared" (the alert points go to the data's
 * database, as without notifications.history) and "own-db"
 * (notifications.history.database set: the alert points go through their
 * own lane of the store to a database of their own). On a machine whose
 * disk is shared with other work, --dir /dev/shm keeps the disk's stalls
 * (iocd's journal, influxd's WAL) out of the figures.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "core/buf.h"
#include "core/clock.h"
#include "tests/harness/harness.h"

#define POLL_MS 50
#define STALL_MS 60000
#define SETTLE_MAX_MS 60000
/* Lines of the burst measurement per MQTT message (max_payload is 64 KiB). */
#define BURST_LINES 500
#define MAX_ROUNDS 50

#define SERIES_WRITTEN \
  "iocd_source_points_written_total{subscription=\"igate\"}"
#define SERIES_TAKEN "iocd_messages_total{subscription=\"igate\"}"
#define SERIES_BURST_WRITTEN \
  "iocd_source_points_written_total{subscription=\"burst\"}"
#define SERIES_ALERTS_WRITTEN \
  "iocd_source_points_written_total{subscription=\"iocd:alerts\"}"
#define SERIES_REQ_SUM "iocd_write_batch_seconds_sum{output=\"influxdb\"}"
#define SERIES_REQ_COUNT "iocd_write_batch_seconds_count{output=\"influxdb\"}"

static const char *const districts[] = {
    "Buôn Ma Thuột", "Buôn Hồ",    "Buôn Đôn",  "Cư Kuin",   "Cư M'gar",
    "Ea H'Leo",      "Ea Kar",     "Ea Súp",    "Krông Ana", "Krông Bông",
    "Krông Búk",     "Krông Năng", "Krông Pắc", "Lắk",       "M'Đrắk",
};
#define NDISTRICTS (sizeof districts / sizeof districts[0])

#define MAX_BURSTS 20

#define PROG "bench_alert_burst"

struct opts {
  long rate;   /* iGate messages per second */
  long burst;  /* groups that change state at once */
  long bursts; /* bursts per phase */
  long warm;   /* seconds of steady stream before the first burst */
  long period; /* seconds from one burst to the next (and after the last) */
  long window; /* seconds before and after a burst that are compared */
  int rounds;
  unsigned variants; /* bit v: run variants[v] */
  bool keep;
  const char *dir; /* where the directories go; NULL: /tmp (harness) */
};

struct variant {
  const char *name;
  bool fires;   /* the burst raises alerts */
  bool history; /* notifications.history.database set */
};

static const struct variant variants[] = {
    {"no-alerts", false, false},
    {"shared", true, false},
    {"own-db", true, true},
};
#define NVARIANTS (sizeof variants / sizeof variants[0])

/* One reading of /metrics. */
struct sample {
  double t; /* seconds since the steady stream began */
  double written, taken, alerts;
  double req_sum, req_count;
  double influxd_cpu;
};

/* The figures of one window of a phase. */
struct window {
  double lag_mean, lag_max;
  double intake_max;
  double req_mean;
  double rate;
  double cpu; /* influxd CPU seconds per second */
};

struct result {
  bool ok;
  long nbursts;
  struct window before[MAX_BURSTS], after[MAX_BURSTS];
  double alerts_s[MAX_BURSTS]; /* burst to its last alert point written */
  long alerts_data_db, alerts_history_db;
  long missing;
};

struct bench {
  struct opts o;
  char dir[256];
  struct h_mosquitto mq;
  struct h_influxd db;
  struct bench_metrics met;
};

/* Count of query q in database db, 0 when it has no rows. */
static long influx_count(const struct bench *b, const char *db, const char *q) {
  double v = 0;
  if (h_influx_scalar(&b->db, db, q, &v) != 0 || v < 0) {
    v = 0;
  }
  return (long)v;
}

/* ---- iocd ---- */

static int write_config(const struct bench *b, const struct variant *v,
                        const char *dir, const char *client_id, const char *db,
                        int api_port, struct buf *out) {
  char history[256] = "";
  if (v->history) {
    snprintf(history, sizeof history,
             ",\n  \"notifications\": {\"history\": {\"database\": "
             "\"%s_history\"}}",
             db);
  }
  int rc = buf_printf(
      out,
      "// written by bench_alert_burst\n"
      "{\n"
      "  \"data_dir\": \"%s/data\",\n"
      "  \"log\": {\"level\": \"info\"},\n"
      "  \"mqtt\": {\"host\": \"127.0.0.1\", \"port\": %d,\n"
      "           \"client_id\": \"%s\"},\n"
      "  \"influxdb\": {\"url\": \"%s\", \"database\": \"%s\"},\n"
      "  \"api\": {\"listen\": \"127.0.0.1:%d\"},\n"
      "  \"subscriptions\": [\n"
      "    {\"name\": \"igate\", \"qos\": 1, \"topic\": "
      "\"ioc/{district}/igate\",\n"
      "     \"format\": \"json\", \"measurement\": \"igate\",\n"
      "     \"types\": {\"received\": \"integer\", \"resolved\": "
      "\"integer\",\n"
      "               \"online_l3\": \"integer\", \"online_l4\": "
      "\"integer\",\n"
      "               \"overdue\": \"integer\"}},\n"
      "    {\"name\": \"burst\", \"qos\": 1, \"topic\": \"ioc/burst\",\n"
      "     \"format\": \"line\"}\n"
      "  ],\n"
      "  \"rules\": [\n"
      "    {\"name\": \"burst_high\", \"expr\": \"burst.value > %s\",\n"
      "     \"by\": [\"group\"], \"severity\": \"warning\",\n"
      "     \"annotations\": {\"summary\": \"Nhóm {{group}}: giá trị "
      "{{value}} vượt ngưỡng {{threshold}}\"}}\n"
      "  ]%s\n"
      "}\n",
      dir, b->mq.port, client_id, b->db.url, db, api_port,
      v->fires ? "0" : "1e12", history);
  return rc == 0 ? 0 : -1;
}

/* Publishes the K burst groups with value (line protocol, BURST_LINES a
 * message) on p, without waiting for the acknowledgements. */
static int publish_burst(struct h_pub *p, long k, int value) {
  struct buf msg;
  buf_init(&msg, 1 << 20);
  int rc = 0;
  for (long i = 0; rc == 0 && i < k; i += BURST_LINES) {
    buf_reset(&msg);
    for (long j = i; rc == 0 && j < k && j < i + BURST_LINES; j++) {
      rc = buf_printf(&msg, "burst,group=b%06ld value=%d\n", j, value);
    }
    if (rc == 0) {
      rc = h_pub_send(p, "ioc/burst", msg.data, msg.len, 1);
    }
  }
  buf_cleanup(&msg);
  return rc == 0 ? 0 : -1;
}

/* Waits until series reaches want on /metrics, at most STALL_MS. */
static int wait_metric(struct bench *b, int api_port, const char *series,
                       double want) {
  int64_t end = clock_mono_ns() + (int64_t)STALL_MS * 1000000;
  double v = -1;
  while (clock_mono_ns() < end) {
    if (bench_metrics_get(&b->met, api_port) == 200) {
      v = bench_metrics_value(&b->met, series);
      if (v >= want) {
        return 0;
      }
    }
    h_sleep_ms(POLL_MS);
  }
  fprintf(stderr, "bench: %s is %.0f, waited for %.0f\n", series, v, want);
  return -1;
}

static const char *steady_payload(long k, char *out, size_t n) {
  long received = 1000 + k;
  snprintf(out, n,
           "{\"received\": %ld, \"resolved\": %ld, \"online_l3\": %ld, "
           "\"online_l4\": %ld, \"overdue\": %ld}",
           received, received * 89 / 100, received * 106 / 1000,
           received * 6 / 100, k % 47);
  return out;
}

/* The figures of samples with from <= t < to. pub[k] is when message k of
 * the steady stream was published (seconds since the stream began); base is
 * the written and taken count before the stream. */
static void figures(const struct sample *s, size_t ns, double from, double to,
                    const double *pub, long npub, double base_written,
                    double base_taken, struct window *w) {
  memset(w, 0, sizeof *w);
  double *lags = malloc((ns ? ns : 1) * sizeof *lags);
  size_t nl = 0, first = ns, last = ns;
  /* Points are confirmed a batch at a time: the rate is taken between the
   * first and the last confirmation seen in the window, not between its
   * edges, which would count a batch more or less. */
  size_t step0 = ns, step1 = ns;
  for (size_t i = 0; i < ns; i++) {
    if (s[i].t < from || s[i].t >= to || s[i].written < 0) {
      continue;
    }
    first = first == ns ? i : first;
    last = i;
    if (i > 0 && s[i - 1].written >= 0 && s[i].written > s[i - 1].written) {
      step0 = step0 == ns ? i : step0;
      step1 = i;
    }
    long wk = (long)(s[i].written - base_written);
    long tk = (long)(s[i].taken - base_taken);
    if (lags && wk >= 1 && wk <= npub) {
      lags[nl++] = s[i].t - pub[wk - 1];
    }
    if (tk >= 1 && tk <= npub && s[i].t - pub[tk - 1] > w->intake_max) {
      w->intake_max = s[i].t - pub[tk - 1];
    }
  }
  if (nl > 0) {
    w->lag_max = bench_percentiles(lags, (long)nl).max; /* sorts lags */
    double sum = 0;
    for (size_t i = 0; i < nl; i++) {
      sum += lags[i];
    }
    w->lag_mean = sum / (double)nl;
  }
  free(lags);
  if (first < ns && s[last].t > s[first].t) {
    double dt = s[last].t - s[first].t;
    w->cpu = (s[last].influxd_cpu - s[first].influxd_cpu) / dt;
    double dc = s[last].req_count - s[first].req_count;
    w->req_mean = dc > 0 ? (s[last].req_sum - s[first].req_sum) / dc : 0;
  }
  if (step0 < ns && s[step1].t > s[step0].t) {
    w->rate = (s[step1].written - s[step0].written) / (s[step1].t - s[step0].t);
  }
  if (getenv("BENCH_DUMP")) {
    for (size_t i = first; i < ns && i <= last; i++) {
      fprintf(stderr, "  t=%.3f written=%.0f taken=%.0f alerts=%.0f\n", s[i].t,
              s[i].written, s[i].taken, s[i].alerts);
    }
  }
}

/* The steady stream, on a thread of its own so that reading /metrics
 * never delays it: message k is published at k / rate s after t0 (or as
 * soon as the connection lets it), and pub[k] records when it was. */
struct steady {
  struct h_pub *p;
  long rate;
  long npub;
  double *pub;
  int64_t t0;
  long sent;
  int rc;
};

static void *steady_main(void *arg) {
  struct steady *st = arg;
  char payload[256], topic[128];
  while (st->sent < st->npub) {
    double t = (double)(clock_mono_ns() - st->t0) / 1e9;
    long due = (long)(t * (double)st->rate) + 1;
    while (st->sent < due && st->sent < st->npub) {
      long k = st->sent;
      snprintf(topic, sizeof topic, "ioc/%s/igate",
               districts[(size_t)k % NDISTRICTS]);
      steady_payload(k, payload, sizeof payload);
      st->pub[k] = (double)(clock_mono_ns() - st->t0) / 1e9;
      if (h_pub_send(st->p, topic, payload, strlen(payload), 1) != 0) {
        st->rc = -1;
        return NULL;
      }
      st->sent++;
    }
    h_sleep_ms(1);
  }
  st->rc = h_pub_flush(st->p);
  return NULL;
}

/* The measured part of a phase: the steady stream, a burst every period
 * after the warm-up, a reading of /metrics every POLL_MS. */
static int measure(struct bench *b, const struct variant *v, int api_port,
                   const struct h_iocd *iocd, const char *db,
                   struct result *r) {
  const struct opts *o = &b->o;
  long total = o->warm + o->bursts * o->period;
  struct steady st = {.rate = o->rate, .npub = o->rate * total};
  size_t cap = (size_t)(total * 1000 / POLL_MS + 64);
  st.pub = calloc((size_t)st.npub, sizeof *st.pub);
  struct sample *s = calloc(cap, sizeof *s);
  char id[96];
  snprintf(id, sizeof id, "bench-steady-%ld", (long)getpid());
  st.p = h_pub_open(b->mq.port, id);
  snprintf(id, sizeof id, "bench-burst-%ld", (long)getpid());
  struct h_pub *burster = h_pub_open(b->mq.port, id);
  int rc = -1;
  size_t ns = 0;
  bool started = false;
  pthread_t thread;
  if (!st.pub || !s || !st.p || !burster ||
      bench_metrics_get(&b->met, api_port) != 200) {
    goto out;
  }
  double base_written = bench_metrics_value(&b->met, SERIES_WRITTEN);
  double base_taken = bench_metrics_value(&b->met, SERIES_TAKEN);
  double base_alerts = bench_metrics_value(&b->met, SERIES_ALERTS_WRITTEN);
  if (base_alerts < 0) {
    base_alerts = 0;
  }
  st.t0 = clock_mono_ns();
  if (pthread_create(&thread, NULL, steady_main, &st) != 0) {
    goto out;
  }
  started = true;
  double t_burst[MAX_BURSTS], t_alerts[MAX_BURSTS];
  long nb = 0; /* bursts sent */
  for (;;) {
    int64_t now = clock_mono_ns();
    double t = (double)(now - st.t0) / 1e9;
    if (t >= (double)total) {
      break;
    }
    if (nb < o->bursts && t >= (double)(o->warm + nb * o->period)) {
      /* Even bursts fire every group, odd ones resolve them. */
      t_burst[nb] = t;
      t_alerts[nb] = -1;
      if (publish_burst(burster, o->burst, nb % 2 == 0 ? 1 : 0) != 0) {
        goto out;
      }
      nb++;
    }
    if (ns < cap && bench_metrics_get(&b->met, api_port) == 200) {
      struct sample *x = &s[ns++];
      x->t = (double)(clock_mono_ns() - st.t0) / 1e9;
      x->written = bench_metrics_value(&b->met, SERIES_WRITTEN);
      x->taken = bench_metrics_value(&b->met, SERIES_TAKEN);
      x->alerts = bench_metrics_value(&b->met, SERIES_ALERTS_WRITTEN);
      x->req_sum = bench_metrics_value(&b->met, SERIES_REQ_SUM);
      x->req_count = bench_metrics_value(&b->met, SERIES_REQ_COUNT);
      x->influxd_cpu = bench_proc_cpu_s(b->db.pid);
      for (long k = 0; v->fires && k < nb; k++) {
        if (t_alerts[k] < 0 &&
            x->alerts - base_alerts >= (double)(o->burst * (k + 1))) {
          t_alerts[k] = x->t;
        }
      }
    }
    int64_t next = now + (int64_t)POLL_MS * 1000000;
    int64_t left = next - clock_mono_ns();
    if (left > 0) {
      h_sleep_ms((long)(left / 1000000));
    }
  }
  pthread_join(thread, NULL);
  started = false;
  if (st.rc != 0 || h_pub_flush(burster) != 0) {
    goto out;
  }
  if (st.sent < st.npub) {
    fprintf(stderr, "bench: %s: published %ld of %ld\n", v->name, st.sent,
            st.npub);
  }
  /* Everything published is written in the end, alert points included. */
  if (wait_metric(b, api_port, SERIES_WRITTEN,
                  base_written + (double)st.sent) != 0 ||
      (v->fires && wait_metric(b, api_port, SERIES_ALERTS_WRITTEN,
                               base_alerts + (double)(o->burst * nb)) != 0)) {
    goto out;
  }
  r->nbursts = nb;
  for (long k = 0; k < nb; k++) {
    if (v->fires && t_alerts[k] < 0) {
      t_alerts[k] = (double)(clock_mono_ns() - st.t0) / 1e9;
    }
    double t = t_burst[k];
    figures(s, ns, t - (double)o->window, t, st.pub, st.sent, base_written,
            base_taken, &r->before[k]);
    figures(s, ns, t, t + (double)o->window, st.pub, st.sent, base_written,
            base_taken, &r->after[k]);
    r->alerts_s[k] = v->fires ? t_alerts[k] - t : -1;
  }
  char hdb[128];
  snprintf(hdb, sizeof hdb, "%s_history", db);
  long stored = influx_count(b, db, "SELECT count(received) FROM igate");
  r->missing = (long)base_written + st.sent - stored;
  r->alerts_data_db = influx_count(b, db, "SELECT count(active) FROM alerts");
  r->alerts_history_db =
      influx_count(b, hdb, "SELECT count(active) FROM alerts");
  rc = 0;
out:
  if (started) {
    /* A failure on this side: the thread ends once it has sent the rest. */
    pthread_join(thread, NULL);
  }
  if (rc != 0) {
    fprintf(stderr, "bench: %s: phase failed (see %s)\n", v->name, iocd->log);
  }
  h_pub_close(st.p);
  h_pub_close(burster);
  free(st.pub);
  free(s);
  return rc;
}

static int phase(struct bench *b, int round, const struct variant *v,
                 struct result *r) {
  memset(r, 0, sizeof *r);
  char dir[512], client_id[96], db[96], id[96];
  snprintf(dir, sizeof dir, "%s/%s-%d", b->dir, v->name, round);
  snprintf(client_id, sizeof client_id, "bench-iocd-%s-%d-%ld", v->name, round,
           (long)getpid());
  snprintf(db, sizeof db, "burst_%d_%s", round, v->name);
  for (char *c = db; *c; c++) {
    if (*c == '-') {
      *c = '_';
    }
  }
  struct buf cfg;
  buf_init(&cfg, 1 << 16);
  struct h_iocd iocd = {0};
  int api_port = h_free_port();
  int rc = -1;
  if (mkdir(dir, 0755) != 0 || api_port < 0 ||
      write_config(b, v, dir, client_id, db, api_port, &cfg) != 0 ||
      h_iocd_start(&iocd, dir, cfg.data) != 0 ||
      h_iocd_wait_log(&iocd, "subscribed", 15000) != 0) {
    fprintf(stderr, "bench: %s: iocd did not start (see %s/iocd.log)\n",
            v->name, dir);
    goto out;
  }
  /* Before the clock: the burst's groups exist with value 0 (no alert),
   * one message of every district, and both servers idle. */
  snprintf(id, sizeof id, "bench-warm-%ld", (long)getpid());
  struct h_pub *warm = h_pub_open(b->mq.port, id);
  int wrc = warm ? publish_burst(warm, b->o.burst, 0) : -1;
  char payload[256], topic[128];
  for (size_t d = 0; wrc == 0 && d < NDISTRICTS; d++) {
    snprintf(topic, sizeof topic, "ioc/%s/igate", districts[d]);
    steady_payload((long)d, payload, sizeof payload);
    wrc = h_pub_send(warm, topic, payload, strlen(payload), 1);
  }
  if (wrc == 0) {
    wrc = h_pub_flush(warm);
  }
  h_pub_close(warm);
  if (wrc != 0 ||
      wait_metric(b, api_port, SERIES_BURST_WRITTEN, (double)b->o.burst) != 0 ||
      wait_metric(b, api_port, SERIES_WRITTEN, (double)NDISTRICTS) != 0) {
    goto stop;
  }
  bench_settle((const pid_t[]){b->db.pid, iocd.pid}, 2, SETTLE_MAX_MS);
  rc = measure(b, v, api_port, &iocd, db, r);
stop:;
  int status = h_iocd_stop(&iocd, SIGTERM, 30000);
  if (status != 0) {
    fprintf(stderr, "bench: %s: iocd exited with status %d\n", v->name, status);
    rc = -1;
  }
out:
  buf_cleanup(&cfg);
  r->ok = rc == 0;
  return rc;
}

/* ---- report ---- */

static double ratio(double a, double b) {
  return b > 0 ? a / b : 0;
}

static void print_result(int round, const struct variant *v,
                         const struct result *r) {
  if (!r->ok) {
    printf("%5d  %-10s failed\n", round, v->name);
    return;
  }
  for (long k = 0; k < r->nbursts; k++) {
    const struct window *x = &r->before[k], *y = &r->after[k];
    printf(
        "%5d  %-10s %2ld %5.2f→%5.2f %5.2f→%5.2f %5.2f→%5.2f %5.3f→%5.3f "
        "%6.0f→%6.0f %4.2f→%4.2f",
        round, v->name, k + 1, x->lag_mean, y->lag_mean, x->lag_max, y->lag_max,
        x->intake_max, y->intake_max, x->req_mean, y->req_mean, x->rate,
        y->rate, x->cpu, y->cpu);
    if (r->alerts_s[k] >= 0) {
      printf(" %6.2f\n", r->alerts_s[k]);
    } else {
      printf(" %6s\n", "-");
    }
  }
}

/* The medians over every burst of every round of variant v. */
static void print_summary(const struct bench *b, const struct result *res,
                          size_t v) {
  enum {
    LAG_MEAN,
    LAG_MAX,
    REQUEST,
    RATE,
    LAG_MAX_ABS,
    INTAKE_ABS,
    ALERTS,
    NFIG
  };
  static double fig[NFIG][MAX_ROUNDS * MAX_BURSTS];
  size_t n = 0, na = 0;
  long alerts_data = 0, alerts_history = 0;
  for (int round = 0; round < b->o.rounds; round++) {
    const struct result *r = &res[(size_t)round * NVARIANTS + v];
    if (!r->ok) {
      continue;
    }
    alerts_data += r->alerts_data_db;
    alerts_history += r->alerts_history_db;
    for (long k = 0; k < r->nbursts; k++) {
      const struct window *x = &r->before[k], *y = &r->after[k];
      fig[LAG_MEAN][n] = ratio(y->lag_mean, x->lag_mean);
      fig[LAG_MAX][n] = ratio(y->lag_max, x->lag_max);
      fig[REQUEST][n] = ratio(y->req_mean, x->req_mean);
      fig[RATE][n] = ratio(y->rate, x->rate);
      fig[LAG_MAX_ABS][n] = y->lag_max;
      fig[INTAKE_ABS][n] = y->intake_max;
      n++;
      if (r->alerts_s[k] >= 0) {
        fig[ALERTS][na++] = r->alerts_s[k];
      }
    }
  }
  printf("%-10s %6zu %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f", variants[v].name, n,
         bench_median(fig[LAG_MEAN], (int)n),
         bench_median(fig[LAG_MAX], (int)n), bench_median(fig[REQUEST], (int)n),
         bench_median(fig[RATE], (int)n),
         bench_median(fig[LAG_MAX_ABS], (int)n),
         bench_median(fig[INTAKE_ABS], (int)n));
  if (na > 0) {
    printf(" %9.2f", bench_median(fig[ALERTS], (int)na));
  } else {
    printf(" %9s", "-");
  }
  printf(" %ld/%ld\n", alerts_data, alerts_history);
}

/* The run's directory (b->dir) and influxd's inside it. */
static int make_dir(struct bench *b, char *influx_dir, size_t n) {
  if (!b->o.dir) {
    if (h_tmpdir(b->dir, sizeof b->dir) != 0) {
      return -1;
    }
  } else {
    int k = snprintf(b->dir, sizeof b->dir, "%s/iocd-burst-XXXXXX", b->o.dir);
    if (k < 0 || (size_t)k >= sizeof b->dir || !mkdtemp(b->dir)) {
      fprintf(stderr, "bench: cannot create a directory in %s\n", b->o.dir);
      return -1;
    }
  }
  int k = snprintf(influx_dir, n, "%s/influxd", b->dir);
  if (k < 0 || (size_t)k >= n || mkdir(influx_dir, 0755) != 0) {
    fprintf(stderr, "bench: cannot create %s/influxd\n", b->dir);
    return -1;
  }
  return 0;
}

static void usage(FILE *out) {
  fprintf(
      out,
      "Usage: bench_alert_burst [options]\n"
      "  --rate R        iGate messages per second (default 4000)\n"
      "  --burst K       alert transitions per burst (default 10000)\n"
      "  --bursts N      bursts per phase, firing then resolving (default 4)\n"
      "  --warm S        seconds of steady stream before the first\n"
      "                  (default 8)\n"
      "  --period S      seconds from a burst to the next (default 12)\n"
      "  --window S      seconds before and after each burst that are\n"
      "                  compared (default 5)\n"
      "  --repeat N      rounds of every variant (default 1)\n"
      "  --variants LIST no-alerts,shared,own-db (default: all)\n"
      "  --keep          keep the temporary directories\n"
      "  --dir DIR       put iocd's and influxd's directories in DIR\n"
      "                  (/dev/shm keeps a shared disk out of the\n"
      "                  figures; default /tmp)\n"
      "Environment: IOCD_BIN overrides the iocd binary; BENCH_DUMP=1\n"
      "prints every reading of /metrics that falls in a window.\n");
}

static int parse_variants(const char *s, unsigned *out) {
  *out = 0;
  while (s && *s) {
    size_t n = strcspn(s, ",");
    size_t v = 0;
    while (v < NVARIANTS && !(strlen(variants[v].name) == n &&
                              memcmp(variants[v].name, s, n) == 0)) {
      v++;
    }
    if (v == NVARIANTS) {
      fprintf(stderr, "bench_alert_burst: unknown variant \"%.*s\"\n", (int)n,
              s);
      return -1;
    }
    *out |= 1u << v;
    s += n + (s[n] == ',');
  }
  return *out ? 0 : -1;
}

static int parse_args(int argc, char **argv, struct opts *o) {
  *o = (struct opts){.rate = 4000,
                     .burst = 10000,
                     .bursts = 4,
                     .warm = 8,
                     .period = 12,
                     .window = 5,
                     .rounds = 1,
                     .variants = (1u << NVARIANTS) - 1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    long v = 0;
    int rc = 0;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 1;
    } else if (strcmp(a, "--keep") == 0) {
      o->keep = true;
      continue;
    } else if (strcmp(a, "--dir") == 0) {
      o->dir = val;
      rc = val ? 0 : -1;
    } else if (strcmp(a, "--rate") == 0) {
      rc = bench_parse_long(PROG, a, val, 1, 100000, &o->rate);
    } else if (strcmp(a, "--burst") == 0) {
      rc = bench_parse_long(PROG, a, val, 1, 1000000, &o->burst);
    } else if (strcmp(a, "--bursts") == 0) {
      rc = bench_parse_long(PROG, a, val, 1, MAX_BURSTS, &o->bursts);
    } else if (strcmp(a, "--warm") == 0) {
      rc = bench_parse_long(PROG, a, val, 1, 3600, &o->warm);
    } else if (strcmp(a, "--period") == 0) {
      rc = bench_parse_long(PROG, a, val, 2, 3600, &o->period);
    } else if (strcmp(a, "--window") == 0) {
      rc = bench_parse_long(PROG, a, val, 1, 3600, &o->window);
    } else if (strcmp(a, "--repeat") == 0) {
      rc = bench_parse_long(PROG, a, val, 1, MAX_ROUNDS, &v);
      o->rounds = (int)v;
    } else if (strcmp(a, "--variants") == 0) {
      rc = parse_variants(val, &o->variants);
    } else {
      fprintf(stderr, "bench_alert_burst: unknown option '%s'\n", a);
      usage(stderr);
      return -1;
    }
    if (rc != 0) {
      return -1;
    }
    i++;
  }
  /* The window before a burst must not reach into the previous one's. */
  if (2 * o->window > o->period || o->window + 2 > o->warm) {
    fprintf(stderr,
            "bench_alert_burst: --window %ld needs --period of at least %ld "
            "and --warm of at least %ld\n",
            o->window, 2 * o->window, o->window + 2);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  struct bench b;
  memset(&b, 0, sizeof b);
  int prc = parse_args(argc, argv, &b.o);
  if (prc != 0) {
    return prc > 0 ? 0 : 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int exit_code = 1;
  struct result *res = calloc((size_t)b.o.rounds * NVARIANTS, sizeof *res);
  char influx_dir[512];
  if (bench_metrics_init(&b.met, NULL) != 0 || !res ||
      make_dir(&b, influx_dir, sizeof influx_dir) != 0 ||
      h_mosquitto_start(&b.mq, NULL,
                        "persistence false\nmax_queued_messages 0\n") != 0 ||
      h_influxd_start(&b.db, influx_dir) != 0) {
    goto out;
  }
  time_t now = time(NULL);
  char date[64];
  strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
  printf("iocd alert burst benchmark, %s, %ld CPUs\n", date,
         sysconf(_SC_NPROCESSORS_ONLN));
  printf(
      "steady stream %ld msg/s (15 districts, QoS 1); %ld bursts of %ld alert "
      "transitions,\nthe first after %ld s, then every %ld s; windows of %ld s "
      "before and after each;\n%d round%s, iocd %s, directories in %s\n",
      b.o.rate, b.o.bursts, b.o.burst, b.o.warm, b.o.period, b.o.window,
      b.o.rounds, b.o.rounds == 1 ? "" : "s", h_iocd_bin(), b.dir);
  bool failed = false;
  long missing = 0;
  for (int round = 1; round <= b.o.rounds; round++) {
    for (size_t v = 0; v < NVARIANTS; v++) {
      if (!(b.o.variants & (1u << v))) {
        continue;
      }
      fprintf(stderr, "round %d: %s...\n", round, variants[v].name);
      struct result *r = &res[(size_t)(round - 1) * NVARIANTS + v];
      if (phase(&b, round, &variants[v], r) != 0) {
        failed = true;
      }
      missing += r->missing;
      h_sleep_ms(2000);
    }
  }
  printf(
      "\nbefore → after each burst (write lag: age of the newest iGate point "
      "written, s;\nintake: the same for the newest message taken in; "
      "request: mean InfluxDB\nrequest of the data writer, s; influxd: its "
      "CPU s per s; alerts s: burst to\nits last alert point written)\n");
  printf("%5s  %-10s %2s %11s %11s %11s %13s %13s %9s %6s\n", "round",
         "variant", "#", "lag mean", "lag max", "intake max", "request s",
         "points/s", "influxd", "alerts");
  for (int round = 1; round <= b.o.rounds; round++) {
    for (size_t v = 0; v < NVARIANTS; v++) {
      if (b.o.variants & (1u << v)) {
        print_result(round, &variants[v],
                     &res[(size_t)(round - 1) * NVARIANTS + v]);
      }
    }
  }
  printf(
      "\nmedians over every burst: ratios after / before (1.00: the burst "
      "changed nothing),\nthen seconds after the burst (lag max, intake "
      "max), alerts s, and the `alerts`\npoints found in the data / history "
      "database\n");
  printf("%-10s %6s %9s %9s %9s %9s %9s %9s %9s %s\n", "variant", "bursts",
         "lag mean", "lag max", "request", "points/s", "lag max s", "intake s",
         "alerts s", "alerts");
  for (size_t v = 0; v < NVARIANTS; v++) {
    if (b.o.variants & (1u << v)) {
      print_summary(&b, res, v);
    }
  }
  printf("missing points: %ld\n", missing);
  exit_code = failed || missing != 0 ? 1 : 0;
out:
  h_mosquitto_stop(&b.mq);
  h_influxd_stop(&b.db);
  if (b.o.keep) {
    fprintf(stderr, "kept: %s %s %s\n", b.dir, b.mq.dir, b.db.dir);
  } else {
    h_rmtree(b.dir);
    h_rmtree(b.mq.dir);
    h_rmtree(b.db.dir);
  }
  free(res);
  bench_metrics_cleanup(&b.met);
  curl_global_cleanup();
  return exit_code;
}
