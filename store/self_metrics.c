/*
 * Self-metrics (self_metrics.h): the registry walked with stats_each, its
 * series grouped by their tag set (the labels that make a tag, in order),
 * one point per group with one field per series; then a timer on the loop
 * that hands each sample to the store.
 *
 * A sample is built in one batch that is reset, not freed, between
 * samples. The group keys and the unescaped labels are copied into that
 * batch's arena, so nothing of the registry is kept past stats_each.
 */
#include "store/self_metrics.h"

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/container.h"
#include "core/log.h"
#include "core/lp.h"

/* One series kept for the sample. */
struct entry {
  size_t seq;      /* registration order, to keep fields in /metrics order */
  const char *key; /* the group: its tags, in the arena */
  const char *name;
  enum stat_kind kind;
  uint64_t count;
  double value;
  size_t kv0, nkv; /* its tags: pairs in collector.kv from kv0 */
};

struct collector {
  struct point_batch *pb;
  struct entry *e;
  size_t n, cap;
  const char **kv; /* key, value, key, value... in the arena */
  size_t nkv, cap_kv;
  struct buf key;
};

static bool grow(void **p, size_t size, size_t n, size_t *cap) {
  if (n < *cap) {
    return true;
  }
  size_t ncap = *cap ? *cap * 2 : 64;
  void *np = realloc(*p, ncap * size);
  if (!np) {
    return false;
  }
  *p = np;
  *cap = ncap;
  return true;
}

/* stats_each's callback: keeps what a point needs of the series. */
static int keep(void *ud, const struct stats_series *se) {
  struct collector *c = ud;
  const struct metric *m = se->metric;
  if ((se->kind == STAT_COUNTER || se->kind == STAT_HISTOGRAM) &&
      m->count == 0) {
    return IOCD_OK;
  }
  if (se->kind == STAT_GAUGE && !isfinite(m->value)) {
    return IOCD_OK; /* line protocol has no NaN */
  }
  if (!grow((void **)&c->e, sizeof *c->e, c->n, &c->cap)) {
    return IOCD_ENOMEM;
  }
  struct entry *e = &c->e[c->n];
  *e = (struct entry){.seq = c->n,
                      .kind = se->kind,
                      .count = m->count,
                      .value = m->value,
                      .kv0 = c->nkv};
  buf_reset(&c->key);
  for (size_t i = 0; i < se->nlabels; i++) {
    if (!se->values[i][0]) {
      continue; /* InfluxDB has no empty tag */
    }
    if (!grow((void **)&c->kv, sizeof *c->kv, c->nkv + 1, &c->cap_kv)) {
      return IOCD_ENOMEM;
    }
    const char *k = pb_strdup(c->pb, se->keys[i], strlen(se->keys[i]));
    const char *v = pb_strdup(c->pb, se->values[i], strlen(se->values[i]));
    if (!k || !v) {
      return IOCD_ENOMEM;
    }
    c->kv[c->nkv++] = k;
    c->kv[c->nkv++] = v;
    /* Unit and record separators cannot occur in a label the registry
     * renders, so the key is unambiguous. */
    if (buf_printf(&c->key, "%s\x1f%s\x1e", k, v)) {
      return IOCD_ENOMEM;
    }
  }
  e->nkv = (c->nkv - e->kv0) / 2;
  e->key = pb_strdup(c->pb, c->key.data ? c->key.data : "", c->key.len);
  e->name = pb_strdup(c->pb, se->name, strlen(se->name));
  if (!e->key || !e->name) {
    return IOCD_ENOMEM;
  }
  c->n++;
  return IOCD_OK;
}

static int cmp_entry(const void *a, const void *b) {
  const struct entry *x = a, *y = b;
  int k = strcmp(x->key, y->key);
  if (k) {
    return k;
  }
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool has_field(const struct point_batch *pb, const struct point *p,
                      const char *k, size_t kn) {
  const struct field *f = pb_fields(pb, p);
  for (size_t i = 0; i < p->nfields; i++) {
    if (f[i].key.len == kn && memcmp(f[i].key.p, k, kn) == 0) {
      return true;
    }
  }
  return false;
}

static int64_t clamp_count(uint64_t v) {
  return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* Adds the field (or, for a histogram, the two fields) of e to p; a name
 * already in p (two series whose labels differ only by empty ones) is
 * left out. */
static int add_fields(struct point_batch *pb, struct point *p,
                      const struct entry *e) {
  size_t n = strlen(e->name);
  if (e->kind == STAT_COUNTER) {
    return has_field(pb, p, e->name, n)
               ? IOCD_OK
               : pb_field_int(pb, p, e->name, n, clamp_count(e->count));
  }
  if (e->kind == STAT_GAUGE) {
    return has_field(pb, p, e->name, n)
               ? IOCD_OK
               : pb_field_float(pb, p, e->name, n, e->value);
  }
  char k[256];
  int kn = snprintf(k, sizeof k, "%s_sum", e->name);
  if (kn < 0 || (size_t)kn >= sizeof k) {
    return IOCD_OK;
  }
  int rc = IOCD_OK;
  if (!has_field(pb, p, k, (size_t)kn) && isfinite(e->value)) {
    rc = pb_field_float(pb, p, k, (size_t)kn, e->value);
  }
  kn = snprintf(k, sizeof k, "%s_count", e->name);
  if (!rc && !has_field(pb, p, k, (size_t)kn)) {
    rc = pb_field_int(pb, p, k, (size_t)kn, clamp_count(e->count));
  }
  return rc;
}

/* One point for the group es[0..n) (same key). Returns IOCD_OK (with
 * *added false when the point could not be written as line protocol and
 * was dropped) or IOCD_ENOMEM. */
static int add_point(struct collector *c, const char *measurement,
                     const char *host, int64_t ts_ns, const struct entry *es,
                     size_t n, bool *added) {
  struct point_batch *pb = c->pb;
  *added = false;
  struct point *p = pb_point_new(pb, measurement, strlen(measurement));
  if (!p) {
    return IOCD_ENOMEM;
  }
  p->ts_ns = ts_ns;
  p->has_ts = true;
  int rc = IOCD_OK;
  if (host && *host) {
    rc = pb_tag(pb, p, "host", 4, host, strlen(host), false);
  }
  for (size_t i = 0; i < es[0].nkv && !rc; i++) {
    const char *k = c->kv[es[0].kv0 + 2 * i];
    const char *v = c->kv[es[0].kv0 + 2 * i + 1];
    rc = pb_tag(pb, p, k, strlen(k), v, strlen(v), false);
  }
  for (size_t i = 0; i < n && !rc; i++) {
    rc = add_fields(pb, p, &es[i]);
  }
  if (rc) {
    pb_point_drop_last(pb);
    return rc;
  }
  pb_point_sort_tags(pb, p);
  struct iocd_err err;
  if (p->nfields == 0 || lp_check_point(pb, p, &err) != IOCD_OK) {
    pb_point_drop_last(pb);
    return IOCD_OK;
  }
  *added = true;
  return IOCD_OK;
}

int self_metrics_collect(struct stats *stats, const char *measurement,
                         const char *host, int64_t ts_ns, size_t max_points,
                         struct point_batch *pb, size_t *left_out) {
  struct collector c = {.pb = pb};
  buf_init(&c.key, 1 << 20);
  size_t skipped = 0;
  int rc = stats_each(stats, keep, &c);
  if (!rc && c.n > 1) {
    qsort(c.e, c.n, sizeof *c.e, cmp_entry);
  }
  for (size_t i = 0; !rc && i < c.n;) {
    size_t j = i + 1;
    while (j < c.n && strcmp(c.e[j].key, c.e[i].key) == 0) {
      j++;
    }
    bool added = false;
    if (pb->npoints < max_points) {
      rc = add_point(&c, measurement, host, ts_ns, &c.e[i], j - i, &added);
    }
    skipped += !rc && !added;
    i = j;
  }
  if (left_out) {
    *left_out = skipped;
  }
  buf_cleanup(&c.key);
  free(c.e);
  free(c.kv);
  return rc;
}

/* ---- the writer on the loop ------------------------------------------- */

struct self_metrics {
  uv_timer_t timer;
  struct store *store;
  struct stats *stats;
  bool enabled;
  uint64_t interval_ms;
  char *measurement;
  char *host;
  struct point_batch pb;
  struct metric *left_out;
};

static void sample(struct self_metrics *sm) {
  pb_reset(&sm->pb);
  size_t left = 0;
  int rc = self_metrics_collect(sm->stats, sm->measurement, sm->host,
                                clock_realtime_ns(), SELF_METRICS_MAX_POINTS,
                                &sm->pb, &left);
  stat_add(sm->left_out, left);
  if (rc) {
    log_warn("self_metrics", "sample not written: %s", iocd_strerror(rc));
    return;
  }
  /* The store counts a refusal under the source "iocd:self"
   * (iocd_source_messages_refused_total); a full buffer is the data's
   * problem, not one to log every interval. */
  (void)store_append(sm->store, STORE_SOURCE_SELF, &sm->pb);
}

static void on_timer(uv_timer_t *t) {
  sample(container_of(t, struct self_metrics, timer));
}

/* Copies what sm keeps of cfg. */
static int apply(struct self_metrics *sm,
                 const struct config_self_metrics *cfg) {
  char hostname[256] = "";
  const char *host = cfg->host;
  if (!host) {
    if (gethostname(hostname, sizeof hostname - 1) != 0) {
      snprintf(hostname, sizeof hostname, "localhost");
    }
    host = hostname;
  }
  char *m = strdup(cfg->measurement ? cfg->measurement : "iocd_internal");
  char *h = strdup(host);
  if (!m || !h) {
    free(m);
    free(h);
    return IOCD_ENOMEM;
  }
  free(sm->measurement);
  free(sm->host);
  sm->measurement = m;
  sm->host = h;
  sm->enabled = cfg->enabled;
  sm->interval_ms = cfg->interval_ms > 0 ? (uint64_t)cfg->interval_ms : 10000;
  uv_timer_stop(&sm->timer);
  if (sm->enabled) {
    uv_timer_start(&sm->timer, on_timer, sm->interval_ms, sm->interval_ms);
  }
  return IOCD_OK;
}

struct self_metrics *self_metrics_new(uv_loop_t *loop, struct store *store,
                                      struct stats *stats,
                                      const struct config_self_metrics *cfg,
                                      struct iocd_err *err) {
  struct self_metrics *sm = calloc(1, sizeof *sm);
  if (!sm) {
    iocd_err_set(err, IOCD_ENOMEM, "self_metrics: out of memory");
    return NULL;
  }
  sm->store = store;
  sm->stats = stats;
  pb_init(&sm->pb);
  sm->left_out = stats_counter(
      stats, "iocd_self_metrics_left_out_total",
      "Label sets of the registry left out of the self-metrics (past the "
      "limit of points per sample, or not writable as line protocol).",
      NULL);
  uv_timer_init(loop, &sm->timer);
  if (apply(sm, cfg) != IOCD_OK) {
    iocd_err_set(err, IOCD_ENOMEM, "self_metrics: out of memory");
    self_metrics_close(sm);
    return NULL;
  }
  return sm;
}

int self_metrics_reconfigure(struct self_metrics *sm,
                             const struct config_self_metrics *cfg,
                             struct iocd_err *err) {
  if (apply(sm, cfg) != IOCD_OK) {
    return iocd_err_set(err, IOCD_ENOMEM, "self_metrics: out of memory");
  }
  return IOCD_OK;
}

void self_metrics_stop(struct self_metrics *sm) {
  if (sm && sm->enabled && uv_is_active((uv_handle_t *)&sm->timer)) {
    uv_timer_stop(&sm->timer);
    sample(sm);
  }
}

static void on_closed(uv_handle_t *h) {
  struct self_metrics *sm =
      container_of((uv_timer_t *)h, struct self_metrics, timer);
  pb_cleanup(&sm->pb);
  free(sm->measurement);
  free(sm->host);
  free(sm);
}

void self_metrics_close(struct self_metrics *sm) {
  if (!sm) {
    return;
  }
  uv_timer_stop(&sm->timer);
  uv_close((uv_handle_t *)&sm->timer, on_closed);
}
