/*
 * Alert notification benchmark: how long from the MQTT publish of a
 * breaching point to the webhook request it causes, and what delivering
 * notifications costs the ingest. One mosquitto and one influxd (the test
 * harness, free loopback ports) and one HTTP recorder (the harness's, a
 * libmicrohttpd thread in this process, standing in for the webhook) serve
 * the whole run; iocd is a black box started fresh for every phase.
 *
 * The rule that fires: none of the province's default rules (config/
 * rules/daklak.jsonc) fires at once on a district's point (they wait 15 min
 * to 1 h, have one instance for the province, count office hours or need
 * 10 minutes of silence). iocd runs them,
 * plus online_share_now: online_share_low as written there (expr, clear,
 * guard, parameters, annotations) without "for". Each probe district
 * publishes one point before the clock (a first sample: the rule's
 * increase() needs two) and, when measured, one breaching point (5% online
 * against the 30% target), which opens a new alert and a new group
 * (group_by alertname and district, group_wait 0s, no rate limit, no quiet
 * hours), i.e. one webhook request per probe.
 *
 * Phases:
 *
 * - unloaded: the probes' breaching points one by one, --spacing ms apart,
 *   nothing else published. Each publish is timed (CLOCK_REALTIME just
 *   before mosquitto_publish) and matched to its webhook request (by the
 *   district in groupLabels; arrival time taken by the recorder when the
 *   request is whole). iocd's log splits the time: the transition's line
 *   ("alert online_share_now{...} ... -> firing"), the notice queued (its
 *   line comes after the outbox took it: written, and fsynced where the
 *   outbox does that per notice) and sent.
 * - per round: raw (N background messages from P district publishers to
 *   mosquitto_sub > /dev/null: the broker's rate), then iocd with
 *   notifications off and on (the same config, "enabled" false or true),
 *   each taking the same N non-breaching messages at the broker's full rate
 *   while the probes fire as above. The ingest rate is N / (first publish
 *   to the N-th point written, from iocd's /metrics); the figure is the
 *   ratio on / off within a round, and its median over the rounds.
 *
 * The background publishers are bench/pubs.c. --dump writes every probe's
 * instants, to correlate with a trace of iocd (docs/performance.md).
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "bench/pubs.h"
#include "core/buf.h"
#include "core/clock.h"
#include "tests/harness/harness.h"

/* A phase gives up when nothing moved for this long. */
#define STALL_MS 30000
/* After the warm-up, at most this long for iocd and influxd to go idle. */
#define SETTLE_MAX_MS 60000
/* iocd's /metrics is polled this often while the clock runs. */
#define POLL_MS 20
/* After the last probe, at most this long for the webhook requests. */
#define REQUEST_WAIT_MS 30000
#define MAX_ROUNDS 20
/* Background messages per district before the clock of a loaded phase. */
#define WARM_BG 2
#define MAX_PROBES 2000

#define RULE "online_share_now"
#define SERIES_WRITTEN \
  "iocd_source_points_written_total{subscription=\"igate\"}"
#define SERIES_PROBES_WRITTEN \
  "iocd_source_points_written_total{subscription=\"probe\"}"
#define SERIES_ALERTS_WAITING \
  "iocd_source_points_waiting{subscription=\"iocd:alerts\"}"
#define SERIES_SENT \
  "iocd_notifications_total{receiver=\"ops\",outcome=\"sent\"}"

struct opts {
  long n;         /* background messages per loaded phase */
  int publishers; /* background publishers (districts) */
  long probes;    /* probe districts: at most this many notices a phase */
  int spacing_ms; /* between two probes */
  int rounds;     /* of raw + off + on */
  bool unloaded;  /* run the unloaded phase */
  bool keep;
  const char *dump; /* --dump: every probe's instants, as CSV */
};

/* One probe district of one phase. Times are CLOCK_REALTIME ns; 0: not
 * seen. Log times have iocd's millisecond resolution. */
struct probe {
  int64_t pub_ns;     /* just before its breaching point was published */
  bool loaded;        /* the background publishers were still running */
  int64_t arrived_ns; /* its webhook request, whole */
  int requests;       /* webhook requests for it (1 expected) */
  char notice_id[17];
  int64_t transition_ns; /* "alert online_share_now{...} ... -> firing" */
  int64_t queued_ns;     /* "notification ID to ops: firing ..." */
  int64_t sent_ns;       /* "notification ID to ops (webhook): sent" */
};

/* The spans reported, each between two instants of a probe. */
enum span {
  SPAN_TOTAL,
  SPAN_RULES,
  SPAN_OUTBOX,
  SPAN_HTTP,
  SPAN_REPLY,
  NSPANS
};

static const struct {
  const char *name;
  size_t from, to; /* offsets of int64_t members of struct probe */
} spans[NSPANS] = {
    {"total", offsetof(struct probe, pub_ns),
     offsetof(struct probe, arrived_ns)},
    {"rules", offsetof(struct probe, pub_ns),
     offsetof(struct probe, transition_ns)},
    {"outbox", offsetof(struct probe, transition_ns),
     offsetof(struct probe, queued_ns)},
    {"http", offsetof(struct probe, queued_ns),
     offsetof(struct probe, arrived_ns)},
    {"reply", offsetof(struct probe, arrived_ns),
     offsetof(struct probe, sent_ns)},
};

struct lat_result {
  long sent;    /* probes published (while loaded, for a loaded phase) */
  long matched; /* ... with their webhook request */
  long dups;    /* requests beyond the first for a probe */
  struct bench_pct span[NSPANS]; /* in ms */
  /* Unloaded: iocd's CPU time from the first probe to the last request
   * (each point's ingest and rules included) per probe, in ms; else 0. */
  double cpu_ms;
};

struct ingest_result {
  bool ok;
  double seconds; /* first publish to the N-th point written (or consumed) */
  double iocd_cpu;
  double broker_cpu;
  double influxd_cpu;
  long probes; /* probes sent while the background ran */
};

struct bench {
  struct opts o;
  char dir[256];
  struct h_mosquitto mq;
  struct h_influxd db;
  struct h_recorder *rec;
  struct bench_metrics met;
  struct probe *probes; /* o.probes of them, reused by every phase */
};

/* The first timestamp of a batch of n background records that ends back
 * ms before now - 2 min: inside iocd's past limit, and apart from the
 * batch before (back: its size). */
static int64_t ts_base(long n, long back) {
  return clock_realtime_ns() / 1000000 - n - back - 120000;
}

static void probe_name(long k, char *out, size_t n) {
  snprintf(out, n, "Probe %04ld", k);
}

/* ---- the probes ---- */

/* Probe k's point: its first (a sample for increase() to start from; 50%
 * online) or its breaching one (5 of 100 new dossiers online). */
static int probe_payload(long k, bool breach, char *topic, size_t tn, char *out,
                         size_t n) {
  char name[32];
  probe_name(k, name, sizeof name);
  snprintf(topic, tn, "probe/%s/igate", name);
  long received = breach ? 1100 : 1000;
  long l3 = breach ? 405 : 400;
  return snprintf(out, n,
                  "{\"received\": %ld, \"resolved\": %ld, \"online_l3\": %ld, "
                  "\"online_l4\": 100, \"overdue\": 3, \"time\": %lld}",
                  received, received * 95 / 100, l3,
                  (long long)(clock_realtime_ns() / 1000000));
}

/* The thread that publishes the probes' breaching points, spacing_ms
 * apart, until they run out, or (bg set) the background publishers
 * finished, or stop is set. */
struct prober {
  pthread_t thread;
  struct h_pub *pub;
  struct probe *p;
  long n;
  int spacing_ms;
  struct pubs *bg; /* NULL: unloaded */
  atomic_bool stop;
  long sent;
  bool failed;
};

static void *prober_main(void *arg) {
  struct prober *pr = arg;
  struct timespec at;
  clock_gettime(CLOCK_MONOTONIC, &at);
  for (long k = 0; k < pr->n && !atomic_load(&pr->stop); k++) {
    if (pr->bg && pubs_finished(pr->bg)) {
      break;
    }
    char topic[128], payload[256];
    int len =
        probe_payload(k, true, topic, sizeof topic, payload, sizeof payload);
    pr->p[k].pub_ns = clock_realtime_ns();
    if (h_pub_send(pr->pub, topic, payload, (size_t)len, 1) != 0) {
      pr->p[k].pub_ns = 0;
      pr->failed = true;
      break;
    }
    pr->p[k].loaded = pr->bg && !pubs_finished(pr->bg);
    pr->sent = k + 1;
    /* The next one at a fixed schedule, whatever this one took. */
    at.tv_nsec += (long)pr->spacing_ms * 1000000L;
    while (at.tv_nsec >= 1000000000L) {
      at.tv_nsec -= 1000000000L;
      at.tv_sec++;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) ==
           EINTR) {
    }
  }
  if (!pr->failed && h_pub_flush(pr->pub) != 0) {
    pr->failed = true;
  }
  return NULL;
}

/* ---- iocd ---- */

static const char json_types[] =
    "\"types\": {\"received\": \"integer\", \"resolved\": \"integer\", "
    "\"online_l3\": \"integer\", \"online_l4\": \"integer\", "
    "\"overdue\": \"integer\"}";

static int write_config(const struct bench *b, const char *dir,
                        const char *client_id, const char *db, int api_port,
                        bool notify, struct buf *out) {
  struct buf ds;
  buf_init(&ds, 4096);
  for (size_t k = 0; k < PUBS_NDISTRICTS; k++) {
    buf_printf(&ds, "%s\"%s\"", k ? ", " : "", pubs_district(k));
  }
  int rc = buf_printf(
      out,
      "// written by bench_notify\n"
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
      "     \"time_unit_numbers\": \"ms\", \"tags\": {\"system\": "
      "\"igate\"},\n     %s},\n"
      "    {\"name\": \"probe\", \"qos\": 1, \"topic\": "
      "\"probe/{district}/igate\",\n"
      "     \"format\": \"json\", \"measurement\": \"igate\",\n"
      "     \"time_unit_numbers\": \"ms\", \"tags\": {\"system\": "
      "\"igate\"},\n     %s}\n"
      "  ],\n"
      "  \"sources\": {\"districts\": [%s], \"systems\": [\"igate\"]},\n"
      "  \"rule_files\": [\"" IOCD_SOURCE_DIR
      "/config/rules/daklak.jsonc\"],\n"
      "  \"rules\": [\n"
      "    {\"name\": \"" RULE
      "\",\n"
      "     \"expr\": \"(increase(igate.online_l3[1d]) + "
      "increase(igate.online_l4[1d])) / increase(igate.received[1d]) < "
      "$online_target\",\n"
      "     \"clear\": \"(increase(igate.online_l3[1d]) + "
      "increase(igate.online_l4[1d])) / increase(igate.received[1d]) >= "
      "$online_target + 2%%\",\n"
      "     \"guard\": \"increase(igate.received[1d]) >= $min_dossiers\",\n"
      "     \"by\": [\"district\"], \"missing\": \"keep\", \"severity\": "
      "\"warning\",\n"
      "     \"annotations\": {\"summary\": \"Tỷ lệ hồ sơ trực tuyến của "
      "{{district}} là {{value|pct}}, dưới mục tiêu {{threshold|pct}}\"}}\n"
      "  ],\n"
      "  \"notifications\": {\n"
      "    \"enabled\": %s,\n"
      "    \"receivers\": [{\"name\": \"ops\", \"type\": \"webhook\",\n"
      "      \"url\": \"%s/hook\", \"rate_per_hour\": -1}],\n"
      "    \"route\": {\"receiver\": \"ops\", \"group_by\": [\"alertname\", "
      "\"district\"],\n"
      "      \"group_wait\": \"0s\", \"group_interval\": \"5m\", "
      "\"repeat_interval\": \"4h\"}\n"
      "  }\n"
      "}\n",
      dir, b->mq.port, client_id, b->db.url, db, api_port, json_types,
      json_types, ds.data, notify ? "true" : "false", h_recorder_url(b->rec));
  buf_cleanup(&ds);
  return rc == 0 ? 0 : -1;
}

/* Before the clock: every probe's first point, and (loaded) two messages
 * per background district, written with the alert points they raised;
 * then the servers idle. Leaves the background points written in *base. */
static int warm_up(struct bench *b, const struct h_iocd *iocd, int api_port,
                   bool loaded, long *base) {
  char id[64];
  snprintf(id, sizeof id, "bench-notify-warm-%ld", (long)getpid());
  struct h_pub *hp = h_pub_open(b->mq.port, id);
  if (!hp) {
    return -1;
  }
  int rc = 0;
  for (long k = 0; rc == 0 && k < b->o.probes; k++) {
    char topic[128], payload[256];
    int len =
        probe_payload(k, false, topic, sizeof topic, payload, sizeof payload);
    rc = h_pub_send(hp, topic, payload, (size_t)len, 1);
  }
  if (rc == 0) {
    rc = h_pub_flush(hp);
  }
  h_pub_close(hp);
  long bg = loaded ? (long)WARM_BG * b->o.publishers : 0;
  if (rc == 0 && bg > 0) {
    struct pubs *ps = pubs_start(&(struct pubs_opts){
        b->mq.port, b->o.publishers, bg, ts_base(bg, b->o.n), 0});
    rc = ps ? 0 : -1;
    if (ps) {
      pubs_go(ps);
      rc = pubs_join(ps);
    }
  }
  *base = 0;
  int64_t moved_at = clock_mono_ns();
  double last = -1;
  while (rc == 0) {
    if (bench_metrics_get(&b->met, api_port) == 200) {
      double probes = bench_metrics_value(&b->met, SERIES_PROBES_WRITTEN);
      double written = bench_metrics_value(&b->met, SERIES_WRITTEN);
      double waiting = bench_metrics_value(&b->met, SERIES_ALERTS_WAITING);
      if (probes >= (double)b->o.probes && (bg == 0 || written >= (double)bg) &&
          waiting <= 0) {
        *base = written > 0 ? (long)written : 0;
        break;
      }
      if (probes + written != last) {
        last = probes + written;
        moved_at = clock_mono_ns();
      }
    }
    if (clock_mono_ns() - moved_at > (int64_t)STALL_MS * 1000000) {
      fprintf(stderr, "bench: warm-up stuck (see %s)\n", iocd->log);
      rc = -1;
    }
    h_sleep_ms(POLL_MS);
  }
  if (rc == 0) {
    bench_settle((const pid_t[]){iocd->pid, b->db.pid}, 2, SETTLE_MAX_MS);
  }
  return rc;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* "2026-12-08T07:30:00.123Z" (UTC) at s to ns, or 0. */
static int64_t parse_log_ts(const char *s) {
  char *end;
  long v[7];
  const char seps[] = "--T::.Z";
  const char *p = s;
  for (int i = 0; i < 7; i++) {
    errno = 0;
    v[i] = strtol(p, &end, 10);
    if (errno || end == p || *end != seps[i]) {
      return 0;
    }
    p = end + 1;
  }
  int64_t secs = days_from_civil(v[0], v[1], v[2]) * 86400 + v[3] * 3600 +
                 v[4] * 60 + v[5];
  return secs * 1000000000 + (int64_t)v[6] * 1000000;
}

/* The probe of a district name "Probe NNNN" at s (ended by end_ch), or
 * -1. */
static long probe_index(const char *s, char end_ch, long n) {
  if (strncmp(s, "Probe ", 6) != 0) {
    return -1;
  }
  char *end;
  errno = 0;
  long k = strtol(s + 6, &end, 10);
  if (errno || end == s + 6 || *end != end_ch || k < 0 || k >= n) {
    return -1;
  }
  return k;
}

static long probe_by_id(const struct bench *b, const char *id) {
  for (long k = 0; k < b->o.probes; k++) {
    if (strncmp(b->probes[k].notice_id, id, 16) == 0) {
      return k;
    }
  }
  return -1;
}

/* Reads iocd's log for the three instants of each probe. */
static void read_log(struct bench *b, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    return;
  }
  static const char transition[] = "alert " RULE "{district=\\\"";
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    if (strncmp(line, "ts=", 3) != 0) {
      continue;
    }
    int64_t ts = parse_log_ts(line + 3);
    const char *m = strstr(line, "msg=\"");
    if (!ts || !m) {
      continue;
    }
    m += 5;
    if (strncmp(m, transition, sizeof transition - 1) == 0) {
      long k = probe_index(m + sizeof transition - 1, '\\', b->o.probes);
      if (k >= 0 && strstr(m, " -> firing") && !b->probes[k].transition_ns) {
        b->probes[k].transition_ns = ts;
      }
    } else if (strncmp(m, "notification ", 13) == 0 && strlen(m) > 29) {
      long k = probe_by_id(b, m + 13);
      if (k < 0) {
        continue;
      }
      if (strncmp(m + 29, " to ops: ", 9) == 0) {
        b->probes[k].queued_ns = ts;
      } else if (strncmp(m + 29, " to ops (webhook): sent", 23) == 0) {
        b->probes[k].sent_ns = ts;
      }
    }
  }
  free(line);
  fclose(f);
}

/* Matches the webhook requests first.. to the probes. */
static void read_requests(struct bench *b, size_t first) {
  size_t n = h_recorder_count(b->rec);
  for (size_t i = first; i < n; i++) {
    struct h_request q;
    if (!h_recorder_get(b->rec, i, &q)) {
      break;
    }
    cJSON *doc = cJSON_Parse(q.body);
    const cJSON *gl = cJSON_GetObjectItemCaseSensitive(doc, "groupLabels");
    const cJSON *an = cJSON_GetObjectItemCaseSensitive(gl, "alertname");
    const cJSON *di = cJSON_GetObjectItemCaseSensitive(gl, "district");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(doc, "status");
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(doc, "iocd");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(x, "notice_id");
    long k = -1;
    if (cJSON_IsString(an) && strcmp(an->valuestring, RULE) == 0 &&
        cJSON_IsString(di) && cJSON_IsString(st) &&
        strcmp(st->valuestring, "firing") == 0) {
      k = probe_index(di->valuestring, '\0', b->o.probes);
    }
    if (k >= 0) {
      struct probe *p = &b->probes[k];
      if (p->requests++ == 0) {
        p->arrived_ns = q.arrived_ns;
        if (cJSON_IsString(id)) {
          snprintf(p->notice_id, sizeof p->notice_id, "%s", id->valuestring);
        }
      }
    } else {
      fprintf(stderr, "bench: an unexpected webhook request: %.200s\n",
              q.body ? q.body : "");
    }
    cJSON_Delete(doc);
    h_request_cleanup(&q);
  }
}

/* The instant at offset off of p (ns), 0 when not seen. */
static int64_t probe_at(const struct probe *p, size_t off) {
  int64_t v;
  memcpy(&v, (const char *)p + off, sizeof v);
  return v;
}

static void latency_figures(struct bench *b, bool loaded_only,
                            struct lat_result *r) {
  memset(r, 0, sizeof *r);
  double *tmp = calloc((size_t)b->o.probes, sizeof *tmp);
  if (!tmp) {
    return;
  }
  for (long k = 0; k < b->o.probes; k++) {
    const struct probe *p = &b->probes[k];
    if (p->pub_ns && (!loaded_only || p->loaded)) {
      r->sent++;
      r->matched += p->requests > 0;
      r->dups += p->requests > 1 ? p->requests - 1 : 0;
    }
  }
  for (int s = 0; s < NSPANS; s++) {
    long n = 0;
    for (long k = 0; k < b->o.probes; k++) {
      const struct probe *p = &b->probes[k];
      int64_t from = probe_at(p, spans[s].from), to = probe_at(p, spans[s].to);
      if (p->pub_ns && (!loaded_only || p->loaded) && from && to) {
        tmp[n++] = (double)(to - from) / 1e6;
      }
    }
    r->span[s] = bench_percentiles(tmp, n);
  }
  free(tmp);
}

/* Appends the probes of phase name to the --dump file: one line each,
 * its instants in ns (CLOCK_REALTIME; 0: not seen). */
static void dump_probes(const struct bench *b, const char *name) {
  if (!b->o.dump) {
    return;
  }
  FILE *f = fopen(b->o.dump, "a");
  if (!f) {
    fprintf(stderr, "bench: %s: %s\n", b->o.dump, strerror(errno));
    return;
  }
  if (fseek(f, 0, SEEK_END) == 0 && ftell(f) == 0) {
    fprintf(f,
            "phase,probe,loaded,requests,notice_id,pub_ns,transition_ns,"
            "queued_ns,arrived_ns,sent_ns\n");
  }
  for (long k = 0; k < b->o.probes; k++) {
    const struct probe *p = &b->probes[k];
    if (p->pub_ns) {
      fprintf(f,
              "%s,%ld,%d,%d,%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
              ",%" PRId64 "\n",
              name, k, p->loaded, p->requests, p->notice_id, p->pub_ns,
              p->transition_ns, p->queued_ns, p->arrived_ns, p->sent_ns);
    }
  }
  fclose(f);
}

/* Waits until every probe sent has its webhook request, at most
 * REQUEST_WAIT_MS after the last one. */
static void wait_requests(struct bench *b, size_t first, long sent) {
  int64_t end = clock_mono_ns() + (int64_t)REQUEST_WAIT_MS * 1000000;
  while (h_recorder_count(b->rec) < first + (size_t)sent &&
         clock_mono_ns() < end) {
    h_sleep_ms(50);
  }
  /* A duplicate would come right after. */
  h_sleep_ms(300);
}

/* One iocd phase: a fresh iocd (notifications on or off), warmed up, then
 * the probes, with (loaded) N background messages at the broker's full
 * rate. Fills lat (notify on) and ing (loaded). */
static int phase_iocd(struct bench *b, const char *name, bool notify,
                      bool loaded, struct lat_result *lat,
                      struct ingest_result *ing) {
  memset(ing, 0, sizeof *ing);
  memset(b->probes, 0, (size_t)b->o.probes * sizeof *b->probes);
  int rc = -1;
  char dir[512], client_id[96], db[96];
  snprintf(dir, sizeof dir, "%s/%s", b->dir, name);
  snprintf(client_id, sizeof client_id, "bench-notify-%s-%ld", name,
           (long)getpid());
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
  long base = 0;
  double probe_cpu = 0;
  struct prober pr = {
      .p = b->probes, .n = b->o.probes, .spacing_ms = b->o.spacing_ms};
  atomic_init(&pr.stop, false);
  if (mkdir(dir, 0755) != 0) {
    fprintf(stderr, "bench: mkdir %s: %s\n", dir, strerror(errno));
    goto out;
  }
  if (api_port < 0 ||
      write_config(b, dir, client_id, db, api_port, notify, &cfg) != 0 ||
      h_iocd_start(&iocd, dir, cfg.data) != 0 ||
      h_iocd_wait_log(&iocd, "subscribed", 15000) != 0 ||
      warm_up(b, &iocd, api_port, loaded, &base) != 0) {
    goto out;
  }
  char pid_name[96];
  snprintf(pid_name, sizeof pid_name, "bench-notify-probe-%ld", (long)getpid());
  pr.pub = h_pub_open(b->mq.port, pid_name);
  if (!pr.pub) {
    goto out;
  }
  size_t first = h_recorder_count(b->rec);
  struct pubs *ps = NULL;
  if (loaded && !(ps = pubs_start(&(struct pubs_opts){
                      b->mq.port, b->o.publishers, b->o.n, ts_base(b->o.n, 0),
                      WARM_BG * b->o.publishers}))) {
    goto out;
  }
  double i0 = bench_proc_cpu_s(iocd.pid);
  double m0 = bench_proc_cpu_s(b->mq.pid);
  double d0 = bench_proc_cpu_s(b->db.pid);
  int64_t t0 = clock_mono_ns();
  if (loaded) {
    /* The background first: the probes start once it is at full rate. */
    t0 = pubs_go(ps);
    pr.bg = ps;
  }
  if (pthread_create(&pr.thread, NULL, prober_main, &pr) != 0) {
    fprintf(stderr, "bench: pthread_create failed\n");
    if (loaded) {
      pubs_join(ps);
    }
    goto out;
  }
  rc = 0;
  if (loaded) {
    long want = base + b->o.n, written = 0, last = -1;
    int64_t moved_at = clock_mono_ns();
    for (;;) {
      if (bench_metrics_get(&b->met, api_port) == 200) {
        written = (long)bench_metrics_value(&b->met, SERIES_WRITTEN);
      }
      if (written >= want) {
        break;
      }
      if (written != last) {
        last = written;
        moved_at = clock_mono_ns();
      } else if (clock_mono_ns() - moved_at > (int64_t)STALL_MS * 1000000) {
        fprintf(stderr, "bench: %s: stuck at %ld of %ld points (see %s)\n",
                name, written, want, iocd.log);
        rc = -1;
        break;
      }
      h_sleep_ms(POLL_MS);
    }
    int64_t t_end = clock_mono_ns();
    ing->seconds = (double)(t_end - t0) / 1e9;
    ing->iocd_cpu = bench_proc_cpu_s(iocd.pid) - i0;
    ing->broker_cpu = bench_proc_cpu_s(b->mq.pid) - m0;
    ing->influxd_cpu = bench_proc_cpu_s(b->db.pid) - d0;
    atomic_store(&pr.stop, true);
    if (pubs_join(ps) != 0) {
      rc = -1;
    }
    ing->ok = rc == 0;
  }
  pthread_join(pr.thread, NULL);
  if (pr.failed) {
    fprintf(stderr, "bench: %s: the probe publisher failed\n", name);
    rc = -1;
  }
  if (notify) {
    wait_requests(b, first, pr.sent);
    if (!loaded && pr.sent > 0) {
      probe_cpu = (bench_proc_cpu_s(iocd.pid) - i0) * 1000.0 / (double)pr.sent;
    }
    read_requests(b, first);
    double sent = bench_metrics_get(&b->met, api_port) == 200
                      ? bench_metrics_value(&b->met, SERIES_SENT)
                      : -1;
    if (sent >= 0 && sent < (double)pr.sent) {
      fprintf(stderr,
              "bench: %s: iocd counted %.0f notifications sent of %ld\n", name,
              sent, pr.sent);
    }
  }
  for (long k = 0; k < pr.sent; k++) {
    ing->probes += b->probes[k].loaded;
  }

out:
  if (pr.pub) {
    h_pub_close(pr.pub);
  }
  if (iocd.pid > 0) {
    int st = h_iocd_stop(&iocd, SIGTERM, 30000);
    if (st != 0) {
      fprintf(stderr, "bench: iocd exited with status %d (see %s)\n", st,
              iocd.log);
    }
    read_log(b, iocd.log);
  }
  if (lat) {
    latency_figures(b, loaded, lat);
    lat->cpu_ms = probe_cpu;
  }
  dump_probes(b, name);
  bench_drop_session(b->mq.port, client_id);
  buf_cleanup(&cfg);
  return rc;
}

/* ---- the raw phase ---- */

/* N background messages to mosquitto_sub > /dev/null: the broker's rate. */
static int phase_raw(struct bench *b, int round, struct ingest_result *r) {
  memset(r, 0, sizeof *r);
  char id[64], errlog[512];
  snprintf(id, sizeof id, "bench-notify-raw-%d", round);
  snprintf(errlog, sizeof errlog, "%s/raw-%d.err", b->dir, round);
  pid_t sub = bench_spawn_sub(b->mq.port, 1, id, b->o.n, errlog);
  if (sub < 0) {
    return -1;
  }
  int status = 0;
  int64_t end = clock_mono_ns() + 10 * NS_PER_SEC;
  while (!bench_broker_saw_subscribe(b->mq.dir, id, 1)) {
    if (waitpid(sub, &status, WNOHANG) == sub || clock_mono_ns() > end) {
      fprintf(stderr, "bench: mosquitto_sub did not subscribe (see %s)\n",
              errlog);
      kill(sub, SIGKILL);
      waitpid(sub, &status, 0);
      return -1;
    }
    h_sleep_ms(20);
  }
  struct pubs *ps = pubs_start(&(struct pubs_opts){
      b->mq.port, b->o.publishers, b->o.n, ts_base(b->o.n, 0), 0});
  if (!ps) {
    kill(sub, SIGKILL);
    waitpid(sub, &status, 0);
    return -1;
  }
  double m0 = bench_proc_cpu_s(b->mq.pid);
  int64_t t0 = pubs_go(ps), t_end = 0, done_at = 0;
  for (;;) {
    if (waitpid(sub, &status, WNOHANG) == sub) {
      t_end = clock_mono_ns();
      break;
    }
    if (pubs_finished(ps)) {
      if (!done_at) {
        done_at = clock_mono_ns();
      } else if (clock_mono_ns() - done_at > (int64_t)STALL_MS * 1000000) {
        fprintf(stderr, "bench: mosquitto_sub still waiting\n");
        kill(sub, SIGKILL);
        waitpid(sub, &status, 0);
        break;
      }
    }
    h_sleep_ms(2);
  }
  r->broker_cpu = bench_proc_cpu_s(b->mq.pid) - m0;
  int prc = pubs_join(ps);
  if (!t_end || prc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return -1;
  }
  r->seconds = (double)(t_end - t0) / 1e9;
  r->ok = true;
  return 0;
}

/* ---- report ---- */

static void print_header(const struct bench *b, int argc, char **argv) {
  bench_print_header("iocd notification benchmark", NULL);
  printf("rule:       " RULE
         ": online_share_low of config/rules/daklak.jsonc without \"for\"\n"
         "            (none of the default rules fires on one point: they wait "
         "15 min to 1 h,\n            or have one instance for the province); "
         "the default rules run too\n");
  printf(
      "receiver:   webhook on loopback (in-process recorder), group_by "
      "[alertname, district],\n            group_wait 0s, rate_per_hour -1, "
      "no quiet hours; each probe opens a new group\n");
  printf(
      "parameters: %ld probe districts, a breaching point every %d ms; "
      "loaded: N=%ld\n            non-breaching messages from %d "
      "publishers, QoS 1, JSON; %d round%s\n",
      b->o.probes, b->o.spacing_ms, b->o.n, b->o.publishers, b->o.rounds,
      b->o.rounds == 1 ? "" : "s");
  printf("servers:    mosquitto on :%d, influxd on :%d, webhook %s, iocd %s\n",
         b->mq.port, b->db.port, h_recorder_url(b->rec), h_iocd_bin());
  bench_print_command(argc, argv);
}

static void print_pct(const struct bench_pct *p) {
  if (p->n == 0) {
    printf("  %6s %6s %6s", "-", "-", "-");
  } else {
    printf("  %6.1f %6.1f %6.1f", p->p50, p->p99, p->max);
  }
}

static void print_lat_header(void) {
  printf(
      "\nlatency in ms (p50 p99 max), from the publish of the breaching "
      "point:\n"
      "  total:   to the webhook request (whole, at the recorder)\n"
      "  rules:   to the transition's log line (iocd's log: ms resolution)\n"
      "  outbox:  transition to \"notification ... to ops: ...\" (dispatch "
      "and the\n           outbox's write, with its fsyncs where it syncs "
      "per notice)\n"
      "  http:    that line to the webhook request (the rest of the loop "
      "iteration,\n           then libcurl)\n"
      "  reply:   request to \"sent\" in iocd's log\n");
  printf("%-10s %5s %5s %4s", "phase", "sent", "recv", "dup");
  for (int s = 0; s < NSPANS; s++) {
    printf("  %20s", spans[s].name);
  }
  printf("\n");
}

static void print_lat(const char *phase, const struct lat_result *r) {
  printf("%-10s %5ld %5ld %4ld", phase, r->sent, r->matched, r->dups);
  for (int s = 0; s < NSPANS; s++) {
    print_pct(&r->span[s]);
  }
  printf("\n");
}

/* ---- command line ---- */

static void usage(FILE *out) {
  fprintf(out,
          "Usage: bench_notify [options]\n"
          "  -n N             background messages per loaded phase "
          "(default 200000)\n"
          "  --publishers P   background publishers (default 15)\n"
          "  --probes K       probe districts: notifications per phase "
          "(default 300)\n"
          "  --spacing MS     between two breaching points (default 30)\n"
          "  --repeat R       rounds of raw + notify-off + notify-on "
          "(default 3; 0: none)\n"
          "  --no-unloaded    skip the unloaded latency phase\n"
          "  --keep           keep the temporary directories\n"
          "  --dump FILE      append every probe's instants to FILE (CSV)\n"
          "  -h, --help       this help\n"
          "Environment: IOCD_BIN overrides the iocd binary.\n");
}

static int parse_args(int argc, char **argv, struct opts *o) {
  *o = (struct opts){.n = 200000,
                     .publishers = 15,
                     .probes = 300,
                     .spacing_ms = 30,
                     .rounds = 3,
                     .unloaded = true};
  long publishers = o->publishers, spacing = o->spacing_ms, rounds = o->rounds;
  const struct {
    const char *name;
    long *out, lo, hi;
  } nums[] = {
      {"-n", &o->n, 1000, 100000000},
      {"--publishers", &publishers, 1, PUBS_NDISTRICTS},
      {"--probes", &o->probes, 1, MAX_PROBES},
      {"--spacing", &spacing, 1, 10000},
      {"--repeat", &rounds, 0, MAX_ROUNDS},
  };
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    size_t k = 0;
    while (k < sizeof nums / sizeof nums[0] && strcmp(a, nums[k].name) != 0) {
      k++;
    }
    if (k < sizeof nums / sizeof nums[0]) {
      if (bench_parse_long("bench_notify", a, i + 1 < argc ? argv[i + 1] : NULL,
                           nums[k].lo, nums[k].hi, nums[k].out) != 0) {
        return -1;
      }
      i++;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 1;
    } else if (strcmp(a, "--dump") == 0 && i + 1 < argc) {
      o->dump = argv[++i];
    } else if (strcmp(a, "--keep") == 0) {
      o->keep = true;
    } else if (strcmp(a, "--no-unloaded") == 0) {
      o->unloaded = false;
    } else {
      fprintf(stderr, "bench_notify: unknown option '%s'\n", a);
      usage(stderr);
      return -1;
    }
  }
  o->publishers = (int)publishers;
  o->spacing_ms = (int)spacing;
  o->rounds = (int)rounds;
  return 0;
}

/* ---- main ---- */

struct round_result {
  struct ingest_result raw, off, on;
  struct lat_result lat_on, lat_off;
};

static void print_ingest(int round, const char *phase,
                         const struct ingest_result *r,
                         const struct ingest_result *raw, long n) {
  if (!r->ok) {
    printf("%5d  %-11s failed\n", round, phase);
    return;
  }
  char ratio[16] = "-", cpu[16] = "-", probes[16] = "-";
  if (r != raw && raw->ok) {
    snprintf(ratio, sizeof ratio, "%.3f", raw->seconds / r->seconds);
  }
  if (r != raw) {
    snprintf(cpu, sizeof cpu, "%.2f", r->iocd_cpu * 100000.0 / (double)n);
    snprintf(probes, sizeof probes, "%ld", r->probes);
  }
  printf("%5d  %-11s %7.2f %9.0f %9s %9s %9.2f %9.2f %7s\n", round, phase,
         r->seconds, (double)n / r->seconds, ratio, cpu,
         r->broker_cpu * 100000.0 / (double)n,
         r->influxd_cpu * 100000.0 / (double)n, probes);
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
  mosquitto_lib_init();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int exit_code = 1;
  struct round_result *rr = calloc((size_t)b.o.rounds + 1, sizeof *rr);
  b.probes = calloc((size_t)b.o.probes, sizeof *b.probes);
  if (bench_metrics_init(&b.met, NULL) != 0 || !rr || !b.probes) {
    fprintf(stderr, "bench: out of memory\n");
    goto out;
  }
  if (h_tmpdir(b.dir, sizeof b.dir) != 0) {
    goto out;
  }
  if (h_mosquitto_start(&b.mq, NULL,
                        "persistence false\nmax_queued_messages 0\n") != 0 ||
      h_influxd_start(&b.db, NULL) != 0 ||
      (b.rec = h_recorder_start(0)) == NULL) {
    goto out;
  }
  print_header(&b, argc, argv);

  bool failed = false;
  struct lat_result unloaded;
  struct ingest_result unused;
  memset(&unloaded, 0, sizeof unloaded);
  if (b.o.unloaded) {
    fprintf(stderr, "unloaded...\n");
    if (phase_iocd(&b, "unloaded", true, false, &unloaded, &unused) != 0) {
      failed = true;
    }
    h_sleep_ms(2000);
  }
  for (int round = 1; round <= b.o.rounds; round++) {
    struct round_result *r = &rr[round];
    char name[64];
    fprintf(stderr, "round %d: raw...\n", round);
    if (phase_raw(&b, round, &r->raw) != 0) {
      failed = true;
    }
    /* Alternate the order so that a trend of the machine's load does not
     * fall on one side. */
    for (int k = 0; k < 2; k++) {
      bool on = (k == 0) == (round % 2 == 0);
      h_sleep_ms(2000);
      snprintf(name, sizeof name, "%s-%d", on ? "on" : "off", round);
      fprintf(stderr, "round %d: notify %s...\n", round, on ? "on" : "off");
      if (phase_iocd(&b, name, on, true, on ? &r->lat_on : &r->lat_off,
                     on ? &r->on : &r->off) != 0) {
        failed = true;
      }
    }
    h_sleep_ms(2000);
  }

  print_lat_header();
  if (b.o.unloaded) {
    print_lat("unloaded", &unloaded);
    printf(
        "(unloaded: iocd's CPU per probe, its point and its notification: "
        "%.2f ms)\n",
        unloaded.cpu_ms);
  }
  for (int round = 1; round <= b.o.rounds; round++) {
    char name[32];
    snprintf(name, sizeof name, "loaded %d", round);
    print_lat(name, &rr[round].lat_on);
  }
  if (b.o.rounds > 0) {
    printf(
        "(loaded: only the probes published while the background "
        "publishers ran)\n");
    printf("\nrules alone, notifications off (publish -> transition):\n");
    for (int round = 1; round <= b.o.rounds; round++) {
      const struct bench_pct *p = &rr[round].lat_off.span[SPAN_RULES];
      printf("  loaded %d: %ld probes, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
             round, p->n, p->p50, p->p99, p->max);
    }
    printf(
        "\ningest while the probes fire (time s: first publish to the N-th "
        "point written;\n"
        "ratio: raw time / time; CPU s per 100k messages; probes: "
        "notifications caused)\n");
    printf("%5s  %-11s %7s %9s %9s %9s %9s %9s %7s\n", "round", "phase",
           "time s", "msgs/s", "ratio", "iocd CPU", "broker", "influxd",
           "probes");
    for (int round = 1; round <= b.o.rounds; round++) {
      struct round_result *r = &rr[round];
      print_ingest(round, "raw", &r->raw, &r->raw, b.o.n);
      print_ingest(round, "notify-off", &r->off, &r->raw, b.o.n);
      print_ingest(round, "notify-on", &r->on, &r->raw, b.o.n);
    }
    double ratios[MAX_ROUNDS];
    int k = 0;
    printf("\nrate notify-on / notify-off:");
    for (int round = 1; round <= b.o.rounds; round++) {
      struct round_result *r = &rr[round];
      if (r->on.ok && r->off.ok) {
        ratios[k] = r->off.seconds / r->on.seconds;
        printf(" %.3f", ratios[k]);
        k++;
      } else {
        printf(" -");
      }
    }
    if (k > 0) {
      double m = bench_median(ratios, k);
      printf("; median %.3f (target >= 0.95: %s)", m,
             m >= 0.95 ? "met" : "NOT met");
    }
    /* What one notification costs the ingest, in wall time: the phase's
     * extra time over the probes that fired during it. */
    printf("\nextra time per notification, (time on - time off) / probes:");
    for (int round = 1; round <= b.o.rounds; round++) {
      struct round_result *r = &rr[round];
      if (r->on.ok && r->off.ok && r->on.probes > 0) {
        printf(" %.1f ms", (r->on.seconds - r->off.seconds) * 1000.0 /
                               (double)r->on.probes);
      } else {
        printf(" -");
      }
    }
    printf("\n");
  }
  if (b.o.unloaded && unloaded.span[SPAN_TOTAL].n > 0) {
    printf("unloaded p99 publish -> webhook: %.1f ms (target <= 20 ms: %s)\n",
           unloaded.span[SPAN_TOTAL].p99,
           unloaded.span[SPAN_TOTAL].p99 <= 20.0 ? "met" : "NOT met");
  }
  long lost = unloaded.sent - unloaded.matched, dups = unloaded.dups;
  for (int round = 1; round <= b.o.rounds; round++) {
    lost += rr[round].lat_on.sent - rr[round].lat_on.matched;
    dups += rr[round].lat_on.dups;
  }
  printf("notifications missing: %ld, sent twice: %ld\n", lost, dups);
  exit_code = failed || lost != 0 || dups != 0 ? 1 : 0;

out:
  h_recorder_stop(b.rec);
  h_mosquitto_stop(&b.mq);
  h_influxd_stop(&b.db);
  if (b.o.keep) {
    fprintf(stderr, "kept: %s %s %s\n", b.dir, b.mq.dir, b.db.dir);
  } else {
    h_rmtree(b.dir);
    h_rmtree(b.mq.dir);
    h_rmtree(b.db.dir);
  }
  free(rr);
  free(b.probes);
  bench_metrics_cleanup(&b.met);
  curl_global_cleanup();
  mosquitto_lib_cleanup();
  return exit_code;
}
