/*
 * Ingest throughput benchmark. One mosquitto and one influxd (started by the
 * test harness on free ports) serve the whole run. Each round pushes the same
 * N messages from P district publishers through the broker twice: first to a
 * consumer that does nothing (mosquitto_sub to /dev/null), which gives the
 * broker's raw rate, then into iocd writing to influxd. The figure that
 * matters is the ratio of the two, measured minutes apart on the same
 * machine: absolute rates on a shared 2-core machine say little.
 *
 * Besides rates it reports the CPU time each process spent per 100k
 * messages and iocd's peak RSS, so a low ratio can be traced to the process
 * that used the CPU. Variants of the iocd phase (more config text, such as
 * an on-disk journal) are rows of the variants table; each is measured in
 * every round against the same raw phase.
 */
#include <curl/curl.h>
#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "core/buf.h"
#include "core/clock.h"
#include "tests/harness/harness.h"

/* A publisher keeps at most this many messages unacknowledged; the same
 * number is its MQTT send maximum, so QoS 1 and 2 pipeline. */
#define PUB_WINDOW 1000

/* A phase gives up when nothing moved for this long after the publishers
 * finished. */
#define STALL_MS 30000

/* After the warm-up, at most this long for iocd and influxd to go idle. */
#define SETTLE_MAX_MS 60000

/* iocd's /metrics is polled this often while points are being written. */
#define POLL_MS 20

/* iocd's counters of the subscription's points confirmed by InfluxDB (alert
 * points are counted apart, under "iocd:alerts") and of messages it took in
 * (store/store.c and ingest/ingest.c own the names). */
#define SERIES_WRITTEN \
  "iocd_source_points_written_total{subscription=\"igate\"}"
#define SERIES_MESSAGES "iocd_messages_total{subscription=\"igate\"}"
#define SERIES_ALERTS_WAITING \
  "iocd_source_points_waiting{subscription=\"iocd:alerts\"}"

#define MAX_PUBLISHERS 1000
#define MAX_ROUNDS 100

#define PROG "bench_ingest"

static const char *const districts[] = {
    "Buôn Ma Thuột", "Buôn Hồ",    "Buôn Đôn",  "Cư Kuin",   "Cư M'gar",
    "Ea H'Leo",      "Ea Kar",     "Ea Súp",    "Krông Ana", "Krông Bông",
    "Krông Búk",     "Krông Năng", "Krông Pắc", "Lắk",       "M'Đrắk",
};
#define NDISTRICTS (sizeof districts / sizeof districts[0])

/* The five iGate fields of every record. */
static const char *const fields[] = {"received", "resolved", "online_l3",
                                     "online_l4", "overdue"};
#define NFIELDS (sizeof fields / sizeof fields[0])

enum fmt { FMT_JSON, FMT_VALUE, FMT_LINE };

static const char *const fmt_names[] = {"json", "value", "line"};

struct opts {
  long n;
  int publishers;
  int qos;
  enum fmt fmt;
  int rounds;
  long groups;
  bool keep;
  bool drain;        /* --drain: measure how fast a journal backlog drains */
  long warmup;       /* messages per group before each iocd phase's clock */
  unsigned variants; /* bit v: run variants[v] (iocd always runs) */
};

/* One variant of the iocd phase: extra members appended to the top-level
 * object of iocd's config (NULL for none). A comparison such as "with
 * journal vs without" is one more row here. */
struct variant {
  const char *name;
  const char *extra_config;
  int extra_rules; /* rules that read a measurement nobody sends */
};

static const struct variant variants[] = {
    /* As shipped: the on-disk journal on, fsync "interval". */
    {"iocd", NULL, 0},
    /* The in-memory queue instead of the journal: the journal's cost is
     * 1 - ratio(iocd) / ratio(no-journal). */
    {"no-journal", "\"journal\": {\"enabled\": false}", 0},
    /* The province's default rules and 100 rules more evaluated on every
     * point: the rules' cost is 1 - ratio(rules) / ratio(iocd). */
    {"rules",
     "\"sources\": {\"districts\": [\"Buôn Ma Thuột\", \"Buôn Hồ\", "
     "\"Buôn Đôn\", \"Cư Kuin\", \"Cư M'gar\", \"Ea H'Leo\", \"Ea Kar\", "
     "\"Ea Súp\", \"Krông Ana\", \"Krông Bông\", \"Krông Búk\", "
     "\"Krông Năng\", \"Krông Pắc\", \"Lắk\", \"M'Đrắk\"], "
     "\"systems\": [\"igate\", \"idesk\"]},\n  "
     "\"rule_files\": [\"" IOCD_SOURCE_DIR "/config/rules/daklak.jsonc\"]",
     100},
};
#define NVARIANTS (sizeof variants / sizeof variants[0])

/* CPU time of the processes in play, in seconds, at one instant. */
struct cpu_snap {
  double consumer;
  double broker;
  double influxd;
  double self;
};

struct phase_result {
  bool ok;
  double seconds;        /* first publish to the last message consumed */
  double pub_seconds;    /* first publish to the last acknowledgement */
  double ingest_seconds; /* iocd: first publish to N messages taken in */
  long consumed;         /* messages (raw) or points (iocd) confirmed */
  long missing;          /* points not found in InfluxDB */
  struct cpu_snap cpu;   /* CPU seconds spent during the phase */
  double rss_mib;        /* consumer's peak RSS */
  int exit_status;       /* iocd's exit status after SIGTERM */
};

struct bench {
  struct opts o;
  char dir[256];
  struct h_mosquitto mq;
  struct h_influxd db;
  struct bench_metrics met; /* one connection for every /metrics poll */
};

/* Shared by the publisher threads of one phase. */
struct pub_group {
  int port;
  int qos;
  enum fmt fmt;
  long groups; /* 0: each publisher its own district; else message j goes to
                  district j % groups */
  int64_t ts_base_ms;
  pthread_mutex_t mu; /* guards ready, go and cancel */
  pthread_cond_t cv;
  int ready; /* threads connected (or failed) and waiting for go */
  bool go;
  bool cancel;
  atomic_int finished;
  atomic_llong last_ack_ns;
};

struct pub {
  pthread_t thread;
  struct pub_group *g;
  int index;
  char district[96];
  char topic[192];
  long first; /* global index of its first message */
  long count;
  struct mosquitto *m;
  long unacked;
  int connack; /* -1 until CONNACK */
  bool lost;
  bool failed;
  char err[192];
};

/* ---- /proc readings ---- */

/* VmHWM of pid in MiB, or -1. */
static double proc_hwm_mib(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
  FILE *f = fopen(path, "r");
  if (!f) {
    return -1;
  }
  double mib = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "VmHWM:", 6) == 0) {
      char *end;
      errno = 0;
      long kib = strtol(line + 6, &end, 10);
      if (!errno && end != line + 6) {
        mib = (double)kib / 1024.0;
      }
      break;
    }
  }
  fclose(f);
  return mib;
}

static double self_cpu_s(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) {
    return -1;
  }
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void cpu_snap(const struct bench *b, pid_t consumer,
                     struct cpu_snap *s) {
  s->consumer = consumer > 0 ? bench_proc_cpu_s(consumer) : 0;
  s->broker = bench_proc_cpu_s(b->mq.pid);
  s->influxd = bench_proc_cpu_s(b->db.pid);
  s->self = self_cpu_s();
}

static void cpu_delta(const struct cpu_snap *a, const struct cpu_snap *z,
                      struct cpu_snap *d) {
  d->consumer = z->consumer - a->consumer;
  d->broker = z->broker - a->broker;
  d->influxd = z->influxd - a->influxd;
  d->self = z->self - a->self;
}

/* ---- payloads ---- */

/* Line-protocol tag value escaping: ',', '=' and space take a backslash. */
static size_t lp_tag(char *out, size_t n, const char *s) {
  size_t k = 0;
  for (; *s && k + 2 < n; s++) {
    if (*s == ',' || *s == '=' || *s == ' ') {
      out[k++] = '\\';
    }
    out[k++] = *s;
  }
  out[k] = '\0';
  return k;
}

/* One iGate record of district publisher p as message j (global index):
 * cumulative dossier counters in the proportions of the seed (89% resolved,
 * 10.6% online at level 3, 6% at level 4) and a small overdue backlog. The
 * timestamp is ts_base + j milliseconds, distinct for every message, so
 * InfluxDB keeps every point. topic receives the topic to publish to (one
 * per field in the value format). Returns the payload length, or -1. */
/* The k-th district: the province's 15 names, then the same names with a
 * number, so that every publisher or group has a series of its own. */
static void district_name(size_t k, char *out, size_t n) {
  if (k < NDISTRICTS) {
    snprintf(out, n, "%s", districts[k]);
  } else {
    snprintf(out, n, "%s %zu", districts[k % NDISTRICTS], k / NDISTRICTS + 1);
  }
}

static int make_payload(const struct pub *p, long j, char *out, size_t n,
                        char *topic, size_t tn) {
  char gname[96], gtopic[192];
  const char *district = p->district, *ptopic = p->topic;
  if (p->g->groups > 0) {
    district_name((size_t)(j % p->g->groups), gname, sizeof gname);
    snprintf(gtopic, sizeof gtopic, "ioc/%s/igate", gname);
    district = gname;
    ptopic = gtopic;
  }
  long received = 1000 + (long)p->index * 3700 + j;
  long resolved = received * 89 / 100;
  long l3 = received * 106 / 1000;
  long l4 = received * 6 / 100;
  long overdue = j % 47;
  long long ts_ms = (long long)p->g->ts_base_ms + j;
  int k = -1;
  switch (p->g->fmt) {
    case FMT_JSON:
      k = snprintf(out, n,
                   "{\"received\": %ld, \"resolved\": %ld, \"online_l3\": %ld, "
                   "\"online_l4\": %ld, \"overdue\": %ld, \"time\": %lld}",
                   received, resolved, l3, l4, overdue, ts_ms);
      snprintf(topic, tn, "%s", ptopic);
      break;
    case FMT_LINE: {
      char tag[192];
      lp_tag(tag, sizeof tag, district);
      k = snprintf(out, n,
                   "igate,district=%s received=%ldi,resolved=%ldi,"
                   "online_l3=%ldi,online_l4=%ldi,overdue=%ldi %lld000000",
                   tag, received, resolved, l3, l4, overdue, ts_ms);
      snprintf(topic, tn, "%s", ptopic);
      break;
    }
    case FMT_VALUE: {
      /* One field per message, the fields in turn: a bare number carries no
       * timestamp, so iocd stamps it on arrival. */
      long values[NFIELDS] = {received, resolved, l3, l4, overdue};
      size_t f = (size_t)(j % (long)NFIELDS);
      k = snprintf(out, n, "%ld", values[f]);
      snprintf(topic, tn, "%s/%s", ptopic, fields[f]);
      break;
    }
  }
  if (k < 0 || (size_t)k >= n) {
    return -1;
  }
  return k;
}

/* ---- publishers ---- */

static void on_pub_connect(struct mosquitto *m, void *ud, int rc, int flags,
                           const mosquitto_property *props) {
  (void)m;
  (void)flags;
  (void)props;
  struct pub *p = ud;
  p->connack = rc;
}

static void on_pub_publish(struct mosquitto *m, void *ud, int mid, int rc,
                           const mosquitto_property *props) {
  (void)m;
  (void)props;
  struct pub *p = ud;
  p->unacked--;
  if (rc != 0 && !p->failed) {
    p->failed = true;
    snprintf(p->err, sizeof p->err, "publish mid %d refused: %s", mid,
             mosquitto_reason_string(rc));
  }
}

static void on_pub_disconnect(struct mosquitto *m, void *ud, int rc,
                              const mosquitto_property *props) {
  (void)m;
  (void)props;
  struct pub *p = ud;
  if (rc != 0) {
    p->lost = true;
  }
}

static bool pub_fail(struct pub *p, const char *what, int rc) {
  if (!p->failed) {
    p->failed = true;
    snprintf(p->err, sizeof p->err, "%s: %s", what,
             rc ? mosquitto_strerror(rc) : "failed");
  }
  return false;
}

/* Runs the network until fewer than limit messages are unacknowledged. */
static bool pub_drain(struct pub *p, long limit, int timeout_ms) {
  int64_t end = clock_mono_ns() + (int64_t)timeout_ms * 1000000;
  while (p->unacked > limit) {
    if (p->lost) {
      return pub_fail(p, "connection lost", 0);
    }
    int rc = mosquitto_loop(p->m, 100, 1);
    if (rc != MOSQ_ERR_SUCCESS) {
      return pub_fail(p, "loop", rc);
    }
    if (clock_mono_ns() > end) {
      return pub_fail(p, "acknowledgements timed out", 0);
    }
  }
  return true;
}

static bool pub_connect(struct pub *p) {
  char id[64];
  snprintf(id, sizeof id, "bench-pub-%ld-%d", (long)getpid(), p->index);
  p->connack = -1;
  p->m = mosquitto_new(id, true, p);
  if (!p->m) {
    return pub_fail(p, "mosquitto_new", 0);
  }
  mosquitto_int_option(p->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
  mosquitto_int_option(p->m, MOSQ_OPT_SEND_MAXIMUM, PUB_WINDOW);
  mosquitto_connect_v5_callback_set(p->m, on_pub_connect);
  mosquitto_publish_v5_callback_set(p->m, on_pub_publish);
  mosquitto_disconnect_v5_callback_set(p->m, on_pub_disconnect);
  int rc = mosquitto_connect(p->m, "127.0.0.1", p->g->port, 60);
  if (rc != MOSQ_ERR_SUCCESS) {
    return pub_fail(p, "connect", rc);
  }
  int64_t end = clock_mono_ns() + 10 * NS_PER_SEC;
  while (p->connack < 0) {
    rc = mosquitto_loop(p->m, 50, 1);
    if (rc != MOSQ_ERR_SUCCESS) {
      return pub_fail(p, "connect", rc);
    }
    if (clock_mono_ns() > end) {
      return pub_fail(p, "no CONNACK after 10 s", 0);
    }
  }
  if (p->connack != 0) {
    return pub_fail(p, "CONNACK refused", 0);
  }
  return true;
}

static bool pub_send_all(struct pub *p) {
  char payload[512], topic[256];
  for (long i = 0; i < p->count; i++) {
    int len = make_payload(p, p->first + i, payload, sizeof payload, topic,
                           sizeof topic);
    if (len < 0) {
      return pub_fail(p, "payload too long", 0);
    }
    if (p->unacked >= PUB_WINDOW && !pub_drain(p, PUB_WINDOW - 1, STALL_MS)) {
      return false;
    }
    p->unacked++;
    int rc = mosquitto_publish_v5(p->m, NULL, topic, len, payload, p->g->qos,
                                  false, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
      p->unacked--;
      return pub_fail(p, "publish", rc);
    }
    /* The publish itself wrote the packet; reading acknowledgements in small
     * rounds keeps the window moving without a syscall per message. */
    if (i % 16 == 15) {
      rc = mosquitto_loop(p->m, 0, 1);
      if (rc != MOSQ_ERR_SUCCESS) {
        return pub_fail(p, "loop", rc);
      }
    }
  }
  return pub_drain(p, 0, 4 * STALL_MS);
}

static void *pub_main(void *arg) {
  struct pub *p = arg;
  bool ok = pub_connect(p);
  /* Every thread reports ready, connected or not, so the phase never waits
   * for a thread that gave up. */
  struct pub_group *g = p->g;
  pthread_mutex_lock(&g->mu);
  g->ready++;
  pthread_cond_broadcast(&g->cv);
  while (!g->go) {
    pthread_cond_wait(&g->cv, &g->mu);
  }
  ok = ok && !g->cancel;
  pthread_mutex_unlock(&g->mu);
  if (ok && pub_send_all(p)) {
    int64_t now = clock_mono_ns();
    long long prev = atomic_load(&p->g->last_ack_ns);
    while (prev < now &&
           !atomic_compare_exchange_weak(&p->g->last_ack_ns, &prev, now)) {
    }
  }
  if (p->m) {
    if (!p->lost) {
      mosquitto_disconnect(p->m);
      mosquitto_loop(p->m, 0, 1);
    }
    mosquitto_destroy(p->m);
    p->m = NULL;
  }
  atomic_fetch_add(&p->g->finished, 1);
  return NULL;
}

/* The publishers of one phase, connected and waiting until pubs_go
 * releases them. */
struct pubs {
  struct pub_group g;
  struct pub *p;
  int n;
  int started;
};

/* Joins the threads; returns -1 when any publisher failed. */
static int pubs_join(struct pubs *ps) {
  int rc = 0;
  for (int k = 0; k < ps->started; k++) {
    pthread_join(ps->p[k].thread, NULL);
    if (ps->p[k].failed) {
      fprintf(stderr, "bench: publisher %d (%s): %s\n", k, ps->p[k].district,
              ps->p[k].err);
      rc = -1;
    }
  }
  pthread_cond_destroy(&ps->g.cv);
  pthread_mutex_destroy(&ps->g.mu);
  free(ps->p);
  ps->p = NULL;
  return rc;
}

/* Starts the publishers of n messages (indices 0..n-1, so the first
 * `groups` of them reach every group once), stamped one millisecond apart
 * and ending back + 2 minutes before now. */
static int pubs_start(struct pubs *ps, const struct bench *b, long n,
                      long back) {
  const struct opts *o = &b->o;
  memset(ps, 0, sizeof *ps);
  ps->g.port = b->mq.port;
  ps->g.qos = o->qos;
  ps->g.fmt = o->fmt;
  ps->g.groups = o->groups;
  /* All timestamps lie in the last few minutes: inside iocd's past and
   * future limits, and distinct per message. */
  ps->g.ts_base_ms = clock_realtime_ns() / NS_PER_MS - n - back - 120000;
  atomic_init(&ps->g.finished, 0);
  atomic_init(&ps->g.last_ack_ns, 0);
  ps->n = o->publishers < n ? o->publishers : (int)n;
  ps->p = calloc((size_t)ps->n, sizeof *ps->p);
  if (!ps->p) {
    fprintf(stderr, "bench: out of memory\n");
    return -1;
  }
  pthread_mutex_init(&ps->g.mu, NULL);
  pthread_cond_init(&ps->g.cv, NULL);
  long per = n / ps->n, extra = n % ps->n, first = 0;
  for (int k = 0; k < ps->n; k++) {
    struct pub *p = &ps->p[k];
    p->g = &ps->g;
    p->index = k;
    district_name((size_t)k, p->district, sizeof p->district);
    snprintf(p->topic, sizeof p->topic, "ioc/%s/igate", p->district);
    p->first = first;
    p->count = per + (k < extra ? 1 : 0);
    first += p->count;
  }
  for (int k = 0; k < ps->n; k++) {
    if (pthread_create(&ps->p[k].thread, NULL, pub_main, &ps->p[k]) != 0) {
      fprintf(stderr, "bench: pthread_create failed\n");
      pthread_mutex_lock(&ps->g.mu);
      ps->g.go = true;
      ps->g.cancel = true;
      pthread_cond_broadcast(&ps->g.cv);
      pthread_mutex_unlock(&ps->g.mu);
      pubs_join(ps);
      return -1;
    }
    ps->started++;
  }
  return 0;
}

/* Waits until every publisher is connected, releases them and returns the
 * time of the first publish. */
static int64_t pubs_go(struct pubs *ps) {
  pthread_mutex_lock(&ps->g.mu);
  while (ps->g.ready < ps->n) {
    pthread_cond_wait(&ps->g.cv, &ps->g.mu);
  }
  ps->g.go = true;
  pthread_cond_broadcast(&ps->g.cv);
  pthread_mutex_unlock(&ps->g.mu);
  return clock_mono_ns();
}

static bool pubs_finished(struct pubs *ps) {
  return atomic_load(&ps->g.finished) == ps->n;
}

/* ---- the raw phase ---- */

static int phase_raw(struct bench *b, int round, struct phase_result *r) {
  memset(r, 0, sizeof *r);
  char id[64], errlog[512];
  snprintf(id, sizeof id, "bench-raw-%d", round);
  snprintf(errlog, sizeof errlog, "%s/raw-%d.err", b->dir, round);
  pid_t sub = bench_spawn_sub(b->mq.port, b->o.qos, id, b->o.n, errlog);
  if (sub < 0) {
    fprintf(stderr, "bench: fork: %s\n", strerror(errno));
    return -1;
  }
  int64_t end = clock_mono_ns() + 10 * NS_PER_SEC;
  while (!bench_broker_saw_subscribe(b->mq.dir, id, b->o.qos)) {
    int status;
    if (waitpid(sub, &status, WNOHANG) == sub) {
      fprintf(stderr, "bench: mosquitto_sub exited at start (see %s)\n",
              errlog);
      return -1;
    }
    if (clock_mono_ns() > end) {
      fprintf(stderr, "bench: mosquitto_sub did not subscribe in 10 s\n");
      kill(sub, SIGKILL);
      waitpid(sub, &status, 0);
      return -1;
    }
    h_sleep_ms(20);
  }

  struct pubs ps;
  if (pubs_start(&ps, b, b->o.n, 0) != 0) {
    kill(sub, SIGKILL);
    waitpid(sub, NULL, 0);
    return -1;
  }
  struct cpu_snap c0, c1;
  cpu_snap(b, 0, &c0);
  int64_t t0 = pubs_go(&ps);

  /* mosquitto_sub exits after its N-th message: that instant ends the
   * phase. waitid with WNOWAIT leaves it a zombie whose /proc entry still
   * holds its CPU time; its peak RSS is sampled while it runs. */
  int64_t t_end = 0, done_at = 0;
  bool exited = false;
  double rss = 0;
  for (int iter = 0;; iter++) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)sub, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid == sub) {
      t_end = clock_mono_ns();
      exited = true;
      break;
    }
    if (iter % 50 == 0) {
      double hwm = proc_hwm_mib(sub);
      rss = hwm > rss ? hwm : rss;
    }
    if (pubs_finished(&ps)) {
      if (done_at == 0) {
        done_at = clock_mono_ns();
      } else if (clock_mono_ns() - done_at > (int64_t)STALL_MS * 1000000) {
        fprintf(stderr,
                "bench: mosquitto_sub still waiting %d s after the last "
                "publish\n",
                STALL_MS / 1000);
        break;
      }
    }
    h_sleep_ms(2);
  }
  /* The broker is idle once the consumer has everything, so reading it
   * now rather than at the consumer's exit changes nothing measurable. */
  cpu_snap(b, 0, &c1);
  double sub_cpu = bench_proc_cpu_s(sub);
  if (!exited) {
    kill(sub, SIGKILL);
  }
  int status = 0;
  waitpid(sub, &status, 0);
  int prc = pubs_join(&ps);
  if (!exited || prc != 0) {
    return -1;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "bench: mosquitto_sub failed (status %d, see %s)\n", status,
            errlog);
    return -1;
  }
  cpu_delta(&c0, &c1, &r->cpu);
  r->cpu.consumer = sub_cpu;
  r->rss_mib = rss;
  r->seconds = (double)(t_end - t0) / 1e9;
  r->pub_seconds = (double)(atomic_load(&ps.g.last_ack_ns) - t0) / 1e9;
  r->consumed = b->o.n;
  r->ok = true;
  return 0;
}

/* ---- the iocd phase ---- */

/* Points stored in InfluxDB: one count per field, since a value-format
 * message carries one field. */
static long influx_points(const struct bench *b, const char *db, enum fmt fmt) {
  size_t nq = fmt == FMT_VALUE ? NFIELDS : 1;
  long total = 0;
  for (size_t i = 0; i < nq; i++) {
    char q[128];
    snprintf(q, sizeof q, "SELECT count(\"%s\") FROM igate", fields[i]);
    double v = 0;
    if (h_influx_scalar(&b->db, db, q, &v) != 0) {
      v = 0;
    }
    total += (long)v;
  }
  return total;
}

/* The members of the subscription object after its name and QoS. */
static const char *sub_config(enum fmt fmt) {
  switch (fmt) {
    case FMT_JSON:
      return "\"topic\": \"ioc/{district}/igate\",\n"
             "     \"format\": \"json\", \"measurement\": \"igate\",\n"
             "     \"time_unit_numbers\": \"ms\",\n"
             "     \"types\": {\"received\": \"integer\", \"resolved\": "
             "\"integer\",\n"
             "               \"online_l3\": \"integer\", \"online_l4\": "
             "\"integer\",\n"
             "               \"overdue\": \"integer\"}";
    case FMT_VALUE:
      return "\"topic\": \"ioc/{district}/igate/{field}\",\n"
             "     \"format\": \"value\", \"measurement\": \"igate\",\n"
             "     \"types\": {\"received\": \"integer\", \"resolved\": "
             "\"integer\",\n"
             "               \"online_l3\": \"integer\", \"online_l4\": "
             "\"integer\",\n"
             "               \"overdue\": \"integer\"}";
    case FMT_LINE:
      return "\"topic\": \"ioc/{district}/igate\", \"format\": \"line\"";
  }
  return "";
}

static int write_iocd_config(const struct bench *b, const char *dir,
                             const char *client_id, const char *db,
                             int api_port, const struct variant *v,
                             struct buf *out) {
  int rc =
      buf_printf(out,
                 "// written by bench_ingest\n"
                 "{\n"
                 "  \"data_dir\": \"%s/data\",\n"
                 "  \"log\": {\"level\": \"info\"},\n"
                 "  \"mqtt\": {\"host\": \"127.0.0.1\", \"port\": %d,\n"
                 "           \"client_id\": \"%s\"},\n"
                 "  \"influxdb\": {\"url\": \"%s\", \"database\": \"%s\"},\n"
                 "  \"api\": {\"listen\": \"127.0.0.1:%d\"},\n"
                 "  \"subscriptions\": [\n"
                 "    {\"name\": \"igate\", \"qos\": %d,\n"
                 "     %s}\n"
                 "  ]%s%s\n"
                 "}\n",
                 dir, b->mq.port, client_id, b->db.url, db, api_port, b->o.qos,
                 sub_config(b->o.fmt), v->extra_config ? ",\n  " : "",
                 v->extra_config ? v->extra_config : "");
  if (rc == 0 && v->extra_rules > 0) {
    /* Rules of other systems: one instance per district each, evaluated
     * only when their own measurement arrives. */
    buf_truncate(out, out->len - 2); /* the closing "}\n" */
    rc = buf_puts(out, ",\n  \"rules\": [");
    for (int i = 0; rc == 0 && i < v->extra_rules; i++) {
      rc = buf_printf(out,
                      "%s{\"name\": \"extra_%d\", \"expr\": "
                      "\"extra_%d.value > %d\", \"by\": [\"district\"], "
                      "\"for\": \"5m\"}",
                      i ? ",\n    " : "\n    ", i, i, i);
    }
    if (rc == 0) {
      rc = buf_puts(out, "]\n}\n");
    }
  }
  return rc == 0 ? 0 : -1;
}

/* --warmup K messages per group (per publisher without --groups) before
 * the clock starts, written and confirmed, stamped before the measured
 * ones: what happens once per group in iocd's life (its series, its rule
 * instances and their first transition, InfluxDB's new series) is not
 * what the benchmark measures. Leaves the counters it reached in
 * *written and *msgs. */
static int warm_up(struct bench *b, const struct h_iocd *iocd, int api_port,
                   const char *name, bool by_metric, long *written,
                   long *msgs) {
  long n = (b->o.groups > 0 ? b->o.groups : b->o.publishers) * b->o.warmup;
  *written = 0;
  *msgs = 0;
  if (!by_metric) {
    return 0;
  }
  struct pubs ps;
  if (pubs_start(&ps, b, n, b->o.n) != 0) {
    return -1;
  }
  pubs_go(&ps);
  int64_t moved_at = clock_mono_ns();
  long last = -1;
  /* The alert points the warm-up raised are written too before the
   * clock starts. */
  double alerts_waiting = 1;
  while (*written < n || alerts_waiting > 0) {
    if (bench_metrics_get(&b->met, api_port) == 200) {
      *written = (long)bench_metrics_value(&b->met, SERIES_WRITTEN);
      alerts_waiting = bench_metrics_value(&b->met, SERIES_ALERTS_WAITING);
    }
    if (*written != last) {
      last = *written;
      moved_at = clock_mono_ns();
    } else if (clock_mono_ns() - moved_at > (int64_t)STALL_MS * 1000000) {
      fprintf(stderr, "bench: %s: warm-up stuck at %ld of %ld (see %s)\n", name,
              *written, n, iocd->log);
      pubs_join(&ps);
      return -1;
    }
    h_sleep_ms(POLL_MS);
  }
  *msgs = (long)bench_metrics_value(&b->met, SERIES_MESSAGES);
  int rc = pubs_join(&ps);
  /* Then until iocd and influxd are idle: a burst of new series (the
   * warm-up's alert points, with their texts) keeps influxd busy for a
   * while after it acknowledged them, and that is not the steady state
   * either. */
  int64_t t0 = clock_mono_ns();
  bench_settle((const pid_t[]){iocd->pid, b->db.pid}, 2, SETTLE_MAX_MS);
  fprintf(stderr, "%s: warmed up; servers idle after %.1f s\n", name,
          (double)(clock_mono_ns() - t0) / 1e9);
  return rc;
}

/* Measures one running iocd: releases the publishers and stops the clock
 * when iocd's counter of points written reaches N (or, when that series is
 * absent, when InfluxDB holds N points). Fills r except exit_status. */
static int measure_iocd(struct bench *b, const struct h_iocd *iocd,
                        int api_port, const char *db, const char *name,
                        struct phase_result *r) {
  if (bench_metrics_get(&b->met, api_port) != 200) {
    fprintf(stderr, "bench: iocd's /metrics does not answer (see %s)\n",
            iocd->log);
    return -1;
  }
  bool by_metric = bench_metrics_value(&b->met, SERIES_WRITTEN) >= 0;
  if (!by_metric) {
    fprintf(stderr,
            "bench: %s is not on /metrics; counting points in InfluxDB "
            "instead (coarser)\n",
            SERIES_WRITTEN);
  }
  long base = 0, base_msgs = 0;
  if (b->o.warmup > 0) {
    if (warm_up(b, iocd, api_port, name, by_metric, &base, &base_msgs) != 0) {
      return -1;
    }
  }
  struct pubs ps;
  if (pubs_start(&ps, b, b->o.n, 0) != 0) {
    return -1;
  }
  struct cpu_snap c0, c1;
  cpu_snap(b, iocd->pid, &c0);
  int64_t t0 = pubs_go(&ps);

  long want = base + b->o.n, written = 0, last = -1;
  int64_t t_end = 0, t_ingested = 0, moved_at = clock_mono_ns();
  for (;;) {
    int64_t now = clock_mono_ns();
    if (by_metric) {
      if (bench_metrics_get(&b->met, api_port) == 200) {
        written = (long)bench_metrics_value(&b->met, SERIES_WRITTEN);
        if (t_ingested == 0 && bench_metrics_value(&b->met, SERIES_MESSAGES) >=
                                   base_msgs + b->o.n) {
          t_ingested = now;
        }
      }
    } else {
      written = influx_points(b, db, b->o.fmt);
    }
    if (written >= want) {
      break;
    }
    if (written != last) {
      last = written;
      moved_at = now;
    } else if (pubs_finished(&ps) &&
               now - moved_at > (int64_t)STALL_MS * 1000000) {
      fprintf(stderr,
              "bench: %s: stuck at %ld of %ld points for %d s (see %s)\n", name,
              written, want, STALL_MS / 1000, iocd->log);
      break;
    }
    h_sleep_ms(by_metric ? POLL_MS : 250);
  }
  t_end = clock_mono_ns();
  cpu_snap(b, iocd->pid, &c1);
  r->rss_mib = proc_hwm_mib(iocd->pid);
  int prc = pubs_join(&ps);

  cpu_delta(&c0, &c1, &r->cpu);
  r->seconds = (double)(t_end - t0) / 1e9;
  r->pub_seconds = (double)(atomic_load(&ps.g.last_ack_ns) - t0) / 1e9;
  r->ingest_seconds = t_ingested ? (double)(t_ingested - t0) / 1e9 : -1;
  r->consumed = written - base;
  long stored = influx_points(b, db, b->o.fmt);
  r->missing = want - stored;
  if (r->missing != 0) {
    fprintf(stderr, "bench: %s: InfluxDB holds %ld of %ld points\n", name,
            stored, want);
  }
  r->ok = prc == 0 && written >= want;
  return prc;
}

/* Runs one iocd phase of variant v: a fresh iocd with its own directory,
 * client id and database, measured by measure_iocd, then stopped with
 * SIGTERM and its broker session ended. */
static int phase_iocd(struct bench *b, int round, const struct variant *v,
                      struct phase_result *r) {
  memset(r, 0, sizeof *r);
  r->exit_status = -1;
  int rc = -1;
  char dir[512], client_id[96], db[96];
  snprintf(dir, sizeof dir, "%s/%s-%d", b->dir, v->name, round);
  snprintf(client_id, sizeof client_id, "bench-%s-%d-%ld", v->name, round,
           (long)getpid());
  /* Database names stay plain: letters, digits and underscores. */
  snprintf(db, sizeof db, "bench_%d_%s", round, v->name);
  for (char *c = db; *c; c++) {
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9'))) {
      *c = '_';
    }
  }
  struct buf cfg;
  buf_init(&cfg, 1 << 20);
  struct h_iocd iocd = {0};
  int api_port = h_free_port();
  if (mkdir(dir, 0755) != 0) {
    fprintf(stderr, "bench: mkdir %s: %s\n", dir, strerror(errno));
    goto out;
  }
  if (api_port < 0 ||
      write_iocd_config(b, dir, client_id, db, api_port, v, &cfg) != 0 ||
      h_iocd_start(&iocd, dir, cfg.data) != 0) {
    goto out;
  }
  if (h_iocd_wait_log(&iocd, "subscribed", 15000) == 0) {
    char name[96];
    snprintf(name, sizeof name, "%s round %d", v->name, round);
    rc = measure_iocd(b, &iocd, api_port, db, name, r);
  }
  r->exit_status = h_iocd_stop(&iocd, SIGTERM, 30000);
  if (r->exit_status != 0) {
    fprintf(stderr, "bench: iocd exited with status %d (see %s)\n",
            r->exit_status, iocd.log);
  }
  bench_drop_session(b->mq.port, client_id);

out:
  buf_cleanup(&cfg);
  return rc;
}

/* The drain of a journal backlog: iocd (journal on) takes N messages while
 * influxd is down, then influxd comes back and the clock runs until every
 * point is confirmed written. Prints the drain rate. */
static int phase_drain(struct bench *b) {
  static const struct variant shipped = {"drain", NULL, 0};
  int rc = -1;
  char dir[512], client_id[96];
  snprintf(dir, sizeof dir, "%s/drain", b->dir);
  snprintf(client_id, sizeof client_id, "bench-drain-%ld", (long)getpid());
  struct buf cfg;
  buf_init(&cfg, 1 << 20);
  struct h_iocd iocd = {0};
  int api_port = h_free_port();
  if (mkdir(dir, 0755) != 0 || api_port < 0 ||
      write_iocd_config(b, dir, client_id, "bench_drain", api_port, &shipped,
                        &cfg) != 0 ||
      h_iocd_start(&iocd, dir, cfg.data) != 0 ||
      h_iocd_wait_log(&iocd, "subscribed", 15000) != 0) {
    goto out;
  }
  h_influxd_stop(&b->db);
  fprintf(stderr, "drain: influxd stopped; publishing %ld messages\n", b->o.n);
  struct pubs ps;
  if (pubs_start(&ps, b, b->o.n, 0) != 0) {
    goto out;
  }
  int64_t p0 = pubs_go(&ps);
  for (;;) {
    h_sleep_ms(250);
    if (bench_metrics_get(&b->met, api_port) == 200 &&
        bench_metrics_value(&b->met, SERIES_MESSAGES) >= (double)b->o.n) {
      break;
    }
    if (pubs_finished(&ps) &&
        clock_mono_ns() - p0 > INT64_C(600) * 1000000000) {
      fprintf(stderr, "drain: iocd did not take the messages in\n");
      pubs_join(&ps);
      goto out;
    }
  }
  double in_s = (double)(clock_mono_ns() - p0) / 1e9;
  if (pubs_join(&ps) != 0) {
    goto out;
  }
  double backlog = bench_metrics_value(
      &b->met, "iocd_journal_backlog_points{output=\"influxdb\"}");
  double jbytes = bench_metrics_value(&b->met, "iocd_journal_bytes");
  if (h_influxd_restart(&b->db) != 0) {
    goto out;
  }
  struct cpu_snap c0, c1;
  cpu_snap(b, iocd.pid, &c0);
  int64_t t0 = clock_mono_ns(), t_first = 0;
  double written = 0, first = 0;
  while (written < (double)b->o.n) {
    h_sleep_ms(POLL_MS);
    if (bench_metrics_get(&b->met, api_port) == 200) {
      written = bench_metrics_value(&b->met, SERIES_WRITTEN);
    }
    if (!t_first && written > 0) {
      t_first = clock_mono_ns();
      first = written;
    }
    if (clock_mono_ns() - t0 > INT64_C(1800) * 1000000000) {
      fprintf(stderr, "drain: stuck at %.0f of %ld\n", written, b->o.n);
      goto out;
    }
  }
  int64_t t_end = clock_mono_ns();
  double secs = (double)(t_end - t0) / 1e9;
  double wait_s = (double)(t_first - t0) / 1e9;
  double rate = t_end > t_first
                    ? (written - first) / ((double)(t_end - t_first) / 1e9)
                    : 0;
  cpu_snap(b, iocd.pid, &c1);
  struct cpu_snap cpu;
  cpu_delta(&c0, &c1, &cpu);
  long stored = influx_points(b, "bench_drain", b->o.fmt);
  printf(
      "\ndrain of a journal backlog (influxd stopped while iocd took the "
      "messages)\n"
      "  taken in:  %ld messages in %.1f s while influxd was down\n"
      "  backlog:   %.0f points, journal %.1f MiB, when influxd came back\n"
      "  drained:   %.0f points in %.2f s after influxd came back: "
      "%.2f s until the\n"
      "             writer found it (probe or retry), then %.0f points/s "
      "(iocd CPU %.2f s, influxd CPU %.2f s)\n"
      "  in InfluxDB afterwards: %ld of %ld\n",
      b->o.n, in_s, backlog, jbytes / 1048576.0, written, secs, wait_s, rate,
      cpu.consumer, cpu.influxd, stored, b->o.n);
  rc = stored == b->o.n ? 0 : -1;
out:
  if (iocd.pid > 0) {
    h_iocd_stop(&iocd, SIGTERM, 30000);
  }
  bench_drop_session(b->mq.port, client_id);
  buf_cleanup(&cfg);
  return rc;
}

/* ---- report ---- */

static void print_header(const struct bench *b) {
  bench_print_header("iocd ingest benchmark", NULL);
  printf(
      "parameters: N=%ld messages, %d publishers, %ld districts, QoS %d, "
      "format %s, %d round%s,\n            iocd warmed up with %ld "
      "message%s per district before the clock starts\n",
      b->o.n, b->o.publishers, b->o.groups ? b->o.groups : b->o.publishers,
      b->o.qos, fmt_names[b->o.fmt], b->o.rounds, b->o.rounds == 1 ? "" : "s",
      b->o.warmup, b->o.warmup == 1 ? "" : "s");
  printf("servers:    mosquitto on :%d, influxd on :%d, iocd %s\n", b->mq.port,
         b->db.port, h_iocd_bin());
  fflush(stdout);
}

static double per_100k(double cpu_s, long n) {
  return cpu_s * 100000.0 / (double)n;
}

static void print_row(int round, const char *phase,
                      const struct phase_result *r,
                      const struct phase_result *raw, long n) {
  if (!r->ok) {
    printf("%5d  %-10s  failed\n", round, phase);
    return;
  }
  double rate = (double)n / r->seconds;
  bool is_raw = r == raw;
  char ratio[16] = "-", pts[24] = "-";
  if (!is_raw) {
    snprintf(pts, sizeof pts, "%.0f", (double)r->consumed / r->seconds);
    if (raw && raw->ok) {
      snprintf(ratio, sizeof ratio, "%.3f", raw->seconds / r->seconds);
    }
  }
  printf("%5d  %-10s %7.2f %7.2f %9.0f %9s %6s %8.2f %7.1f\n", round, phase,
         r->seconds, r->pub_seconds, rate, pts, ratio,
         per_100k(r->cpu.consumer, n), r->rss_mib);
}

static void print_cpu_row(int round, const char *phase,
                          const struct phase_result *r, long n) {
  if (!r->ok) {
    return;
  }
  double total = r->cpu.consumer + r->cpu.broker + r->cpu.influxd + r->cpu.self;
  printf("%5d  %-10s %9.2f %9.2f %9.2f %9.2f %9.2f   %4.2f\n", round, phase,
         per_100k(r->cpu.consumer, n), per_100k(r->cpu.broker, n),
         per_100k(r->cpu.influxd, n), per_100k(r->cpu.self, n),
         per_100k(total, n), total / r->seconds);
}

/* ---- command line ---- */

static void usage(FILE *out) {
  fprintf(out,
          "Usage: bench_ingest [options]\n"
          "  -n N              messages per phase (default 200000)\n"
          "  --publishers P    district publishers (default 15)\n"
          "  --groups G        spread the messages over G districts\n"
          "                    (default: one per publisher)\n"
          "  --qos Q           0, 1 or 2 (default 1)\n"
          "  --format F        json, value or line (default json)\n"
          "  --repeat R        rounds of raw + iocd phases (default 1)\n"
          "  --variants LIST   iocd phases to run besides \"iocd\", comma\n"
          "                    separated: no-journal, rules (default: all)\n"
          "  --warmup K        messages per group written before each\n"
          "                    iocd phase's clock starts (default 2;\n"
          "                    0: from the first message)\n"
          "  --keep            keep the temporary directories\n"
          "  --drain           instead: with influxd stopped, journal N\n"
          "                    messages, start influxd and time the drain\n"
          "  -h, --help        this help\n"
          "Environment: IOCD_BIN overrides the iocd binary.\n");
}

/* "no-journal,rules" to a set of variants; "iocd", the reference of the
 * time ratios, is always in it. */
static int parse_variants(const char *s, unsigned *out) {
  *out = 1u;
  while (s && *s) {
    size_t n = strcspn(s, ",");
    bool found = false;
    for (size_t v = 0; v < NVARIANTS; v++) {
      if (strlen(variants[v].name) == n &&
          memcmp(variants[v].name, s, n) == 0) {
        *out |= 1u << v;
        found = true;
      }
    }
    if (!found) {
      fprintf(stderr,
              "bench_ingest: --variants: unknown variant \"%.*s\" "
              "(expected no-journal or rules)\n",
              (int)n, s);
      return -1;
    }
    s += n + (s[n] == ',');
  }
  if (!s) {
    fprintf(stderr, "bench_ingest: --variants: expected a list\n");
    return -1;
  }
  return 0;
}

static int parse_args(int argc, char **argv, struct opts *o) {
  *o = (struct opts){.n = 200000,
                     .publishers = 15,
                     .qos = 1,
                     .fmt = FMT_JSON,
                     .rounds = 1,
                     .warmup = 2,
                     .variants = (1u << NVARIANTS) - 1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    long v;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 1;
    } else if (strcmp(a, "--keep") == 0) {
      o->keep = true;
    } else if (strcmp(a, "--warmup") == 0) {
      if (bench_parse_long(PROG, a, val, 0, 1000, &v) != 0) {
        return -1;
      }
      o->warmup = v;
      i++;
    } else if (strcmp(a, "--drain") == 0) {
      o->drain = true;
    } else if (strcmp(a, "-n") == 0) {
      if (bench_parse_long(PROG, a, val, 1, 100000000, &v) != 0) {
        return -1;
      }
      o->n = v;
      i++;
    } else if (strcmp(a, "--publishers") == 0) {
      if (bench_parse_long(PROG, a, val, 1, MAX_PUBLISHERS, &v) != 0) {
        return -1;
      }
      o->publishers = (int)v;
      i++;
    } else if (strcmp(a, "--variants") == 0) {
      if (parse_variants(val, &o->variants) != 0) {
        return -1;
      }
      i++;
    } else if (strcmp(a, "--groups") == 0) {
      if (bench_parse_long(PROG, a, val, 1, 1000000, &v) != 0) {
        return -1;
      }
      o->groups = v;
      i++;
    } else if (strcmp(a, "--qos") == 0) {
      if (bench_parse_long(PROG, a, val, 0, 2, &v) != 0) {
        return -1;
      }
      o->qos = (int)v;
      i++;
    } else if (strcmp(a, "--repeat") == 0) {
      if (bench_parse_long(PROG, a, val, 1, MAX_ROUNDS, &v) != 0) {
        return -1;
      }
      o->rounds = (int)v;
      i++;
    } else if (strcmp(a, "--format") == 0) {
      bool found = false;
      for (size_t f = 0; val && f < sizeof fmt_names / sizeof *fmt_names; f++) {
        if (strcmp(val, fmt_names[f]) == 0) {
          o->fmt = (enum fmt)f;
          found = true;
        }
      }
      if (!found) {
        fprintf(stderr,
                "bench_ingest: --format: expected json, value or "
                "line, got \"%s\"\n",
                val ? val : "");
        return -1;
      }
      i++;
    } else {
      fprintf(stderr, "bench_ingest: unknown option '%s'\n", a);
      usage(stderr);
      return -1;
    }
  }
  if (o->publishers > o->n) {
    fprintf(stderr, "bench_ingest: more publishers than messages\n");
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
  /* Progress goes to stderr; line buffering keeps the two in order when
   * both are captured together. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  mosquitto_lib_init();
  curl_global_init(CURL_GLOBAL_DEFAULT);

  int exit_code = 1;
  int nrows = b.o.rounds * (int)(1 + NVARIANTS);
  struct phase_result *res = calloc((size_t)nrows, sizeof *res);
  double *ratios = calloc((size_t)b.o.rounds * NVARIANTS, sizeof *ratios);
  if (bench_metrics_init(&b.met, NULL) != 0 || !res || !ratios) {
    fprintf(stderr, "bench: out of memory\n");
    goto out;
  }
  if (h_tmpdir(b.dir, sizeof b.dir) != 0) {
    goto out;
  }
  /* The harness's broker saves its store every second and caps queues at
   * 100000 messages for its tests; here neither should shape the result:
   * no persistence, and no queue limit so that a slow consumer is measured
   * as slow rather than as losing messages. */
  if (h_mosquitto_start(&b.mq, NULL,
                        "persistence false\nmax_queued_messages 0\n") != 0 ||
      h_influxd_start(&b.db, NULL) != 0) {
    goto out;
  }
  print_header(&b);
  if (b.o.drain) {
    exit_code = phase_drain(&b) == 0 ? 0 : 1;
    goto out;
  }

  long missing = 0;
  bool failed = false;
  for (int round = 1; round <= b.o.rounds; round++) {
    struct phase_result *row = &res[(round - 1) * (int)(1 + NVARIANTS)];
    fprintf(stderr, "round %d: raw...\n", round);
    if (phase_raw(&b, round, &row[0]) != 0) {
      failed = true;
    }
    for (size_t v = 0; v < NVARIANTS; v++) {
      if (!(b.o.variants & (1u << v))) {
        continue;
      }
      /* Let influxd finish compacting the previous round's writes and the
       * broker settle before the next measured phase. */
      h_sleep_ms(2000);
      fprintf(stderr, "round %d: %s...\n", round, variants[v].name);
      if (phase_iocd(&b, round, &variants[v], &row[1 + v]) != 0) {
        failed = true;
      }
      missing += row[1 + v].missing;
      if (!row[1 + v].ok) {
        failed = true;
      }
    }
    h_sleep_ms(2000);
  }

  printf(
      "\nthroughput (time s: first publish to the last message consumed,"
      "\n            for iocd to the last point confirmed written; "
      "pub s: to the\n            last acknowledgement at the "
      "publishers; ratio: raw time / time)\n");
  printf("%5s  %-10s %7s %7s %9s %9s %6s %8s %7s\n", "round", "phase", "time s",
         "pub s", "msgs/s", "points/s", "ratio", "CPU/100k", "RSS MiB");
  for (int round = 1; round <= b.o.rounds; round++) {
    struct phase_result *row = &res[(round - 1) * (int)(1 + NVARIANTS)];
    print_row(round, "raw", &row[0], &row[0], b.o.n);
    for (size_t v = 0; v < NVARIANTS; v++) {
      if (!(b.o.variants & (1u << v))) {
        continue;
      }
      print_row(round, variants[v].name, &row[1 + v], &row[0], b.o.n);
    }
  }
  printf(
      "\nCPU seconds per 100k messages, by process (machine: busy "
      "CPUs = total / time)\n");
  printf("%5s  %-10s %9s %9s %9s %9s %9s   %s\n", "round", "phase", "consumer",
         "broker", "influxd", "publish", "total", "busy");
  for (int round = 1; round <= b.o.rounds; round++) {
    struct phase_result *row = &res[(round - 1) * (int)(1 + NVARIANTS)];
    print_cpu_row(round, "raw", &row[0], b.o.n);
    for (size_t v = 0; v < NVARIANTS; v++) {
      if (!(b.o.variants & (1u << v))) {
        continue;
      }
      print_cpu_row(round, variants[v].name, &row[1 + v], b.o.n);
    }
  }
  for (size_t v = 0; v < NVARIANTS; v++) {
    int k = 0;
    if (!(b.o.variants & (1u << v))) {
      continue;
    }
    printf("\nratio %s/raw:", variants[v].name);
    for (int round = 1; round <= b.o.rounds; round++) {
      struct phase_result *row = &res[(round - 1) * (int)(1 + NVARIANTS)];
      if (row[0].ok && row[1 + v].ok) {
        ratios[k] = row[0].seconds / row[1 + v].seconds;
        printf(" %.3f", ratios[k]);
        k++;
      } else {
        printf(" -");
      }
    }
    if (k > 0) {
      double m = bench_median(ratios, k);
      printf("; median %.3f (target >= 0.9: %s)", m,
             m >= 0.9 ? "met" : "NOT met");
    }
    for (int round = 1; round <= b.o.rounds; round++) {
      struct phase_result *row = &res[(round - 1) * (int)(1 + NVARIANTS)];
      if (row[1 + v].ok && row[1 + v].ingest_seconds > 0) {
        printf(
            "\n  round %d: all messages taken in after %.2f s, written "
            "after %.2f s",
            round, row[1 + v].ingest_seconds, row[1 + v].seconds);
      }
    }
    printf("\n");
  }
  /* Each variant against the shipped configuration, round by round: the
   * cost of the journal and of the rules, as time ratios within a round. */
  for (size_t v = 1; v < NVARIANTS; v++) {
    int k = 0;
    if (!(b.o.variants & (1u << v))) {
      continue;
    }
    printf("\ntime %s / time iocd:", variants[v].name);
    for (int round = 1; round <= b.o.rounds; round++) {
      struct phase_result *row = &res[(round - 1) * (int)(1 + NVARIANTS)];
      if (row[1].ok && row[1 + v].ok && row[1].seconds > 0) {
        ratios[k] = row[1 + v].seconds / row[1].seconds;
        printf(" %.3f", ratios[k]);
        k++;
      } else {
        printf(" -");
      }
    }
    if (k > 0) {
      /* Throughput lost to the variant: 1 - rate(variant) / rate(iocd). */
      double m = bench_median(ratios, k);
      printf("; median %.3f (cost %.1f%% of throughput)", m,
             100.0 * (1.0 - 1.0 / m));
    }
  }
  printf("\nmissing points: %ld\n", missing);
  exit_code = (failed || missing != 0) ? 1 : 0;

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
  free(ratios);
  bench_metrics_cleanup(&b.met);
  curl_global_cleanup();
  mosquitto_lib_cleanup();
  return exit_code;
}
