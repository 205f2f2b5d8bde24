/*
 * Background district publishers for the benchmarks (pubs.h).
 */
#include "bench/pubs.h"

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/clock.h"

/* A publisher keeps at most this many messages unacknowledged; the same
 * number is its MQTT send maximum, so QoS 1 pipelines. */
#define PUB_WINDOW 1000
/* A publisher gives up when its acknowledgements stall this long. */
#define STALL_MS 30000

static const char *const districts[PUBS_NDISTRICTS] = {
    "Buôn Ma Thuột", "Buôn Hồ",    "Buôn Đôn",  "Cư Kuin",   "Cư M'gar",
    "Ea H'Leo",      "Ea Kar",     "Ea Súp",    "Krông Ana", "Krông Bông",
    "Krông Búk",     "Krông Năng", "Krông Pắc", "Lắk",       "M'Đrắk",
};

const char *pubs_district(size_t k) {
  return districts[k % PUBS_NDISTRICTS];
}

struct pub_group {
  int port;
  int64_t ts_base_ms;
  long j0;            /* added to every message number: counters only grow */
  pthread_mutex_t mu; /* guards ready, go and cancel */
  pthread_cond_t cv;
  int ready;
  bool go;
  bool cancel;
  atomic_int finished;
};

struct pub {
  pthread_t thread;
  struct pub_group *g;
  int index;
  char topic[192];
  long first;
  long count;
  struct mosquitto *m;
  long unacked;
  int connack;
  bool lost;
  bool failed;
  char err[192];
};

struct pubs {
  struct pub_group g;
  struct pub *p;
  int n;
  int started;
};

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
  if (rc >= 0x80 && !p->failed) {
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

/* Runs the network until at most limit messages are unacknowledged. */
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
  return p->connack == 0 || pub_fail(p, "CONNACK refused", 0);
}

/* Message j of publisher p: cumulative iGate counters that break no
 * default rule (50% online, 90% resolved, a small overdue backlog), a
 * timestamp of its own. */
static int bg_payload(const struct pub *p, long j, char *out, size_t n) {
  long received = 1000 + (long)p->index * 3700 + p->g->j0 + j;
  return snprintf(out, n,
                  "{\"received\": %ld, \"resolved\": %ld, \"online_l3\": %ld, "
                  "\"online_l4\": %ld, \"overdue\": %ld, \"time\": %lld}",
                  received, received * 90 / 100, received * 40 / 100,
                  received / 10, j % 47,
                  (long long)p->g->ts_base_ms + (long long)j);
}

static bool pub_send_all(struct pub *p) {
  char payload[512];
  for (long i = 0; i < p->count; i++) {
    int len = bg_payload(p, p->first + i, payload, sizeof payload);
    if (p->unacked >= PUB_WINDOW && !pub_drain(p, PUB_WINDOW - 1, STALL_MS)) {
      return false;
    }
    p->unacked++;
    int rc = mosquitto_publish_v5(p->m, NULL, p->topic, len, payload, 1, false,
                                  NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
      p->unacked--;
      return pub_fail(p, "publish", rc);
    }
    if (i % 16 == 15 && (rc = mosquitto_loop(p->m, 0, 1)) != 0) {
      return pub_fail(p, "loop", rc);
    }
  }
  return pub_drain(p, 0, 4 * STALL_MS);
}

static void *pub_main(void *arg) {
  struct pub *p = arg;
  struct pub_group *g = p->g;
  bool ok = pub_connect(p);
  pthread_mutex_lock(&g->mu);
  g->ready++;
  pthread_cond_broadcast(&g->cv);
  while (!g->go) {
    pthread_cond_wait(&g->cv, &g->mu);
  }
  ok = ok && !g->cancel;
  pthread_mutex_unlock(&g->mu);
  if (ok) {
    pub_send_all(p);
  }
  if (p->m) {
    if (!p->lost) {
      mosquitto_disconnect(p->m);
      mosquitto_loop(p->m, 0, 1);
    }
    mosquitto_destroy(p->m);
    p->m = NULL;
  }
  atomic_fetch_add(&g->finished, 1);
  return NULL;
}

int pubs_join(struct pubs *ps) {
  pthread_mutex_lock(&ps->g.mu);
  if (!ps->g.go) {
    ps->g.go = true;
    ps->g.cancel = true;
    pthread_cond_broadcast(&ps->g.cv);
  }
  pthread_mutex_unlock(&ps->g.mu);
  int rc = 0;
  for (int k = 0; k < ps->started; k++) {
    pthread_join(ps->p[k].thread, NULL);
    if (ps->p[k].failed) {
      fprintf(stderr, "bench: publisher %d: %s\n", k, ps->p[k].err);
      rc = -1;
    }
  }
  pthread_cond_destroy(&ps->g.cv);
  pthread_mutex_destroy(&ps->g.mu);
  free(ps->p);
  free(ps);
  return rc;
}

struct pubs *pubs_start(const struct pubs_opts *o) {
  struct pubs *ps = calloc(1, sizeof *ps);
  if (!ps) {
    fprintf(stderr, "bench: out of memory\n");
    return NULL;
  }
  ps->g.port = o->port;
  ps->g.j0 = o->j0;
  ps->g.ts_base_ms = o->ts_base_ms;
  atomic_init(&ps->g.finished, 0);
  ps->n = o->publishers < o->n ? o->publishers : (int)o->n;
  ps->p = calloc((size_t)ps->n, sizeof *ps->p);
  if (!ps->p) {
    fprintf(stderr, "bench: out of memory\n");
    free(ps);
    return NULL;
  }
  pthread_mutex_init(&ps->g.mu, NULL);
  pthread_cond_init(&ps->g.cv, NULL);
  long per = o->n / ps->n, extra = o->n % ps->n, first = 0;
  for (int k = 0; k < ps->n; k++) {
    struct pub *p = &ps->p[k];
    p->g = &ps->g;
    p->index = k;
    snprintf(p->topic, sizeof p->topic, "ioc/%s/igate",
             districts[(size_t)k % PUBS_NDISTRICTS]);
    p->first = first;
    p->count = per + (k < extra ? 1 : 0);
    first += p->count;
  }
  for (int k = 0; k < ps->n; k++) {
    if (pthread_create(&ps->p[k].thread, NULL, pub_main, &ps->p[k]) != 0) {
      fprintf(stderr, "bench: pthread_create failed\n");
      pubs_join(ps);
      return NULL;
    }
    ps->started++;
  }
  return ps;
}

int64_t pubs_go(struct pubs *ps) {
  pthread_mutex_lock(&ps->g.mu);
  while (ps->g.ready < ps->n) {
    pthread_cond_wait(&ps->g.cv, &ps->g.mu);
  }
  ps->g.go = true;
  pthread_cond_broadcast(&ps->g.cv);
  pthread_mutex_unlock(&ps->g.mu);
  return clock_mono_ns();
}

bool pubs_finished(struct pubs *ps) {
  return atomic_load(&ps->g.finished) == ps->n;
}
