/*
 * The dispatcher's side parts, each kept to its own state: the index that
 * finds alerts and groups by a 64-bit key, the receivers' sliding hour and
 * the storm notice that replaces what goes past it, flapping detection,
 * and the records of firing episodes that the leaders' digest lists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/dispatch_int.h"
#include "core/clock.h"
#include "core/mem.h"

/* ---- index --------------------------------------------------------------- */

static size_t home_of(uint64_t k, size_t cap) {
  k ^= k >> 33;
  k *= UINT64_C(0xff51afd7ed558ccd);
  k ^= k >> 33;
  return (size_t)k & (cap - 1);
}

void *dispatch__index_get(const struct dispatch_index *x, uint64_t k) {
  if (x->cap == 0) {
    return NULL;
  }
  for (size_t i = home_of(k, x->cap); x->vals[i]; i = (i + 1) & (x->cap - 1)) {
    if (x->keys[i] == k) {
      return x->vals[i];
    }
  }
  return NULL;
}

static void place(uint64_t *keys, void **vals, size_t cap, uint64_t k,
                  void *v) {
  size_t i = home_of(k, cap);
  while (vals[i] && keys[i] != k) {
    i = (i + 1) & (cap - 1);
  }
  keys[i] = k;
  vals[i] = v;
}

int dispatch__index_put(struct dispatch_index *x, uint64_t k, void *v) {
  if (dispatch__index_get(x, k)) {
    place(x->keys, x->vals, x->cap, k, v);
    return IOCD_OK;
  }
  if ((x->n + 1) * 2 > x->cap) {
    size_t cap = x->cap ? x->cap * 2 : 16;
    uint64_t *keys = calloc(cap, sizeof *keys);
    void **vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) {
      free(keys);
      free(vals);
      return IOCD_ENOMEM;
    }
    for (size_t i = 0; i < x->cap; i++) {
      if (x->vals[i]) {
        place(keys, vals, cap, x->keys[i], x->vals[i]);
      }
    }
    free(x->keys);
    free(x->vals);
    x->keys = keys;
    x->vals = vals;
    x->cap = cap;
  }
  place(x->keys, x->vals, x->cap, k, v);
  x->n++;
  return IOCD_OK;
}

void dispatch__index_del(struct dispatch_index *x, uint64_t k) {
  if (x->cap == 0) {
    return;
  }
  size_t mask = x->cap - 1, i = home_of(k, x->cap);
  while (x->vals[i] && x->keys[i] != k) {
    i = (i + 1) & mask;
  }
  if (!x->vals[i]) {
    return;
  }
  x->vals[i] = NULL;
  x->n--;
  /* Backward shift: move up every later entry of the run whose home is not
   * cyclically in (i, j], so that lookups never stop at the hole. */
  for (size_t j = (i + 1) & mask; x->vals[j]; j = (j + 1) & mask) {
    size_t h = home_of(x->keys[j], x->cap);
    bool between = i <= j ? (i < h && h <= j) : (i < h || h <= j);
    if (!between) {
      x->keys[i] = x->keys[j];
      x->vals[i] = x->vals[j];
      x->vals[j] = NULL;
      i = j;
    }
  }
}

void dispatch__index_cleanup(struct dispatch_index *x) {
  free(x->keys);
  free(x->vals);
  memset(x, 0, sizeof *x);
}

/* ---- receivers, the hourly limit, storms --------------------------------- */

struct drecv *dispatch__recv(const struct dconf *c, const char *name) {
  for (size_t i = 0; name && i < c->nrecv; i++) {
    if (strcmp(c->recv[i].name, name) == 0) {
      return &c->recv[i];
    }
  }
  return NULL;
}

static void storm_reset(struct drecv *r) {
  for (size_t i = 0; i < r->nstorm; i++) {
    free(r->storm[i].alertname);
    free(r->storm[i].district);
  }
  free(r->storm);
  r->storm = NULL;
  r->nstorm = 0;
  r->storm_notices = 0;
  r->storm_first_ns = 0;
  r->storm_due_ns = 0;
}

void dispatch__recv_cleanup(struct drecv *r) {
  storm_reset(r);
  free(r->name);
  free(r->sent);
  memset(r, 0, sizeof *r);
}

int dispatch__recv_build(struct dconf *c, const struct config_notify *cfg) {
  if (cfg->nreceivers == 0) {
    return IOCD_OK;
  }
  c->recv = calloc(cfg->nreceivers, sizeof *c->recv);
  if (!c->recv) {
    return IOCD_ENOMEM;
  }
  for (size_t i = 0; i < cfg->nreceivers; i++) {
    const struct config_receiver *cr = &cfg->receivers[i];
    struct drecv *r = &c->recv[i];
    c->nrecv = i + 1;
    if (!(r->name = mem_strdup(cr->name ? cr->name : ""))) {
      return IOCD_ENOMEM;
    }
    r->send_resolved = cr->send_resolved;
    r->rate = cr->rate_per_hour == 0                  ? DISPATCH_RATE_DEFAULT
              : cr->rate_per_hour < 0                 ? -1
              : cr->rate_per_hour > DISPATCH_MAX_RATE ? DISPATCH_MAX_RATE
                                                      : cr->rate_per_hour;
  }
  return IOCD_OK;
}

void dispatch__recv_carry(struct dconf *to, struct dconf *from) {
  for (size_t i = 0; i < to->nrecv; i++) {
    struct drecv *r = &to->recv[i];
    struct drecv *o = dispatch__recv(from, r->name);
    if (!o) {
      continue;
    }
    if (o->rate == r->rate) {
      r->sent = o->sent;
      r->head = o->head;
      r->count = o->count;
      o->sent = NULL;
      o->count = 0;
    }
    r->storm = o->storm;
    r->nstorm = o->nstorm;
    r->storm_notices = o->storm_notices;
    r->storm_first_ns = o->storm_first_ns;
    r->storm_due_ns = o->storm_due_ns;
    o->storm = NULL;
    o->nstorm = 0;
    o->storm_due_ns = 0;
  }
}

void dispatch__emit(struct dispatch *d, struct notice *n) {
  n->id = d->next_id++;
  d->stats.notices++;
  /* Lands in the caller's emit callback (alerts.c: the outbox). */
  d->emit(d->ud, n);
}

/* The storm entry of (alertname, district); NULL when memory runs out. */
static struct dstorm *storm_entry(struct drecv *r, const char *alertname,
                                  const char *district) {
  for (size_t i = 0; i < r->nstorm; i++) {
    struct dstorm *e = &r->storm[i];
    if (strcmp(e->alertname, alertname) == 0 &&
        ((!e->district && !district) ||
         (e->district && district && strcmp(e->district, district) == 0))) {
      return e;
    }
  }
  if (r->nstorm >= DISPATCH_MAX_STORM) {
    /* Past the bound, every new pair is counted under "other". */
    if (strcmp(alertname, "other") != 0 || district) {
      return storm_entry(r, "other", NULL);
    }
  }
  if (!r->storm) {
    r->storm = calloc(DISPATCH_MAX_STORM + 1, sizeof *r->storm);
    if (!r->storm) {
      return NULL;
    }
  }
  struct dstorm *e = &r->storm[r->nstorm];
  e->alertname = mem_strdup(alertname);
  e->district = district ? mem_strdup(district) : NULL;
  if (!e->alertname || (district && !e->district)) {
    free(e->alertname);
    free(e->district);
    memset(e, 0, sizeof *e);
    return NULL;
  }
  r->nstorm++;
  return e;
}

void dispatch__emit_limited(struct dispatch *d, struct notice *n,
                            int64_t now_ns) {
  struct drecv *r = dispatch__recv(&d->c, n->receiver);
  if (!r || r->rate < 0) {
    dispatch__emit(d, n);
    return;
  }
  if (!r->sent) {
    r->sent = calloc((size_t)r->rate, sizeof *r->sent);
    if (!r->sent) {
      dispatch__emit(d, n); /* without its count rather than lost */
      return;
    }
    r->head = r->count = 0;
  }
  size_t cap = (size_t)r->rate;
  while (r->count > 0 && r->sent[r->head] <= now_ns - DISPATCH_HOUR_NS) {
    r->head = (r->head + 1) % cap;
    r->count--;
  }
  if (r->count < cap) {
    r->sent[(r->head + r->count) % cap] = now_ns;
    r->count++;
    dispatch__emit(d, n);
    return;
  }
  for (size_t i = 0; i < n->nalerts; i++) {
    const struct notice_alert *a = &n->alerts[i];
    const char *name = notice_label_get(&a->labels, "alertname");
    struct dstorm *e = storm_entry(r, name ? name : "",
                                   notice_label_get(&a->labels, "district"));
    if (e && a->status == NOTICE_FIRING) {
      e->firing++;
    } else if (e) {
      e->resolved++;
    }
  }
  r->storm_notices++;
  d->stats.storm_folded++;
  if (r->storm_due_ns == 0) {
    r->storm_first_ns = now_ns;
    r->storm_due_ns = now_ns + route_tree_at(d->c.routes, 0)->group_interval_ns;
  }
  notice_free(n);
}

/* The storm notice of r; NULL when memory runs out. */
static struct notice *storm_notice(struct dispatch *d, struct drecv *r,
                                   int64_t now_ns) {
  struct notice *n = dispatch__notice(d, NOTICE_STORM, r->name, "storm", NULL,
                                      r->nstorm, now_ns);
  char num[24];
  snprintf(num, sizeof num, "%llu", (unsigned long long)r->storm_notices);
  if (!n || notice_labels_set(&n->group_labels, "notices", num)) {
    notice_free(n);
    return NULL;
  }
  for (size_t i = 0; i < r->nstorm; i++) {
    const struct dstorm *e = &r->storm[i];
    struct notice_alert *a = &n->alerts[n->nalerts++];
    a->status = e->firing ? NOTICE_FIRING : NOTICE_RESOLVED;
    a->starts_ns = r->storm_first_ns;
    a->has_value = true;
    a->value = (double)(e->firing + e->resolved);
    char f[24], s[24];
    snprintf(f, sizeof f, "%llu", (unsigned long long)e->firing);
    snprintf(s, sizeof s, "%llu", (unsigned long long)e->resolved);
    if (notice_labels_set(&a->labels, "alertname", e->alertname) ||
        (e->district &&
         notice_labels_set(&a->labels, "district", e->district)) ||
        notice_labels_set(&a->annotations, "firing", f) ||
        notice_labels_set(&a->annotations, "resolved", s)) {
      notice_free(n);
      return NULL;
    }
    a->fingerprint = notice_labels_fingerprint(&a->labels);
  }
  return n;
}

void dispatch__storms_tick(struct dispatch *d, int64_t now_ns) {
  for (size_t i = 0; i < d->c.nrecv; i++) {
    struct drecv *r = &d->c.recv[i];
    if (r->storm_due_ns == 0 || now_ns < r->storm_due_ns) {
      continue;
    }
    struct notice *n = storm_notice(d, r, now_ns);
    if (!n) {
      /* Out of memory: try again one interval later. */
      r->storm_due_ns =
          now_ns + route_tree_at(d->c.routes, 0)->group_interval_ns;
      continue;
    }
    storm_reset(r);
    dispatch__emit(d, n);
  }
}

/* ---- flapping ------------------------------------------------------------ */

bool dispatch__flap_change(struct dispatch *d, struct dalert *da,
                           int64_t now_ns) {
  int64_t w = d->c.flap_window_ns;
  if (da->flapping && now_ns >= da->last_change_ns + w) {
    da->flapping = false;
  }
  size_t k = (size_t)d->c.flap_transitions;
  if (da->nflips == DISPATCH_MAX_FLIPS) {
    memmove(&da->flips[0], &da->flips[1],
            (DISPATCH_MAX_FLIPS - 1) * sizeof da->flips[0]);
    da->nflips--;
  }
  da->flips[da->nflips++] = now_ns;
  da->last_change_ns = now_ns;
  if (da->flapping || k == 0) {
    return false;
  }
  size_t recent = 0;
  for (size_t i = 0; i < da->nflips; i++) {
    recent += da->flips[i] > now_ns - w;
  }
  if (recent < k) {
    return false;
  }
  da->flapping = true;
  d->stats.flapping++;
  return true;
}

bool dispatch__flapping(const struct dispatch *d, uint64_t fp, int64_t now_ns) {
  const struct dalert *da = dispatch__index_get(&d->alert_index, fp);
  return da && da->flapping &&
         now_ns < da->last_change_ns + d->c.flap_window_ns;
}

/* Sends the flapping notices of da: one per receiver of its groups. */
static void flap_notify(struct dispatch *d, struct dalert *da, int64_t now_ns) {
  bool crit = dispatch__critical(&da->a.labels);
  for (size_t i = 0; i < da->ngroups; i++) {
    const struct dgroup *g = da->groups[i];
    const struct route *r = g->route;
    bool seen = false;
    for (size_t j = 0; j < i; j++) {
      seen = seen || strcmp(da->groups[j]->route->receiver, r->receiver) == 0;
    }
    if (seen || (dispatch__route_muted(d, r, now_ns) &&
                 !(crit && r->critical_any_time))) {
      continue;
    }
    struct notice *n = dispatch__notice(d, NOTICE_FLAPPING, r->receiver, g->key,
                                        &g->labels, 1, now_ns);
    if (!n || dispatch__notice_add(d, n, &da->a)) {
      notice_free(n);
      continue;
    }
    dispatch__emit_limited(d, n, now_ns);
  }
}

void dispatch__flap_tick(struct dispatch *d, int64_t now_ns) {
  if (!d->flap_pending) {
    return;
  }
  d->flap_pending = false;
  for (size_t i = 0; i < d->nalerts; i++) {
    struct dalert *da = d->alerts[i];
    if (da->flap_notify) {
      da->flap_notify = false;
      flap_notify(d, da, now_ns);
    }
  }
}

/* ---- the digest ---------------------------------------------------------- */

bool dispatch__digest_on(const struct dispatch *d) {
  return d->c.digest_receiver && d->c.ndigest_at > 0;
}

int64_t dispatch__digest_next(const struct dispatch *d, int64_t now_ns) {
  if (!dispatch__digest_on(d)) {
    return INT64_MAX;
  }
  int64_t off = calendar_utc_offset(d->cal);
  int64_t sec = now_ns / NS_PER_SEC + off;
  int64_t day = sec / 86400 - (sec % 86400 < 0);
  for (int64_t dd = day - 1; dd <= day + 1; dd++) {
    for (size_t i = 0; i < d->c.ndigest_at; i++) {
      int64_t t =
          (dd * 86400 + (int64_t)d->c.digest_at[i] * 60 - off) * NS_PER_SEC;
      if (t > now_ns) {
        return t;
      }
    }
  }
  return INT64_MAX;
}

static void record_drop(struct dispatch *d, size_t i) {
  notice_alert_cleanup(&d->records[i].a);
  memmove(&d->records[i], &d->records[i + 1],
          (d->nrecords - i - 1) * sizeof *d->records);
  d->nrecords--;
}

void dispatch__record_fire(struct dispatch *d, const struct dalert *da,
                           int64_t now_ns) {
  if (!dispatch__digest_on(d)) {
    return;
  }
  if (d->nrecords >= d->max_records) {
    size_t victim = 0;
    for (size_t i = 0; i < d->nrecords; i++) {
      if (d->records[i].a.status == NOTICE_RESOLVED) {
        victim = i;
        break;
      }
    }
    record_drop(d, victim);
    d->records_omitted++;
    d->stats.records_dropped++;
  }
  if (mem_grow((void **)&d->records, &d->caprecords, d->nrecords,
               sizeof *d->records)) {
    d->records_omitted++;
    d->stats.records_dropped++;
    return;
  }
  struct drecord *r = &d->records[d->nrecords];
  if (notice_alert_copy(&r->a, &da->a)) {
    d->records_omitted++;
    d->stats.records_dropped++;
    return;
  }
  free(r->a.acked_by);
  free(r->a.ack_comment);
  r->a.acked_by = r->a.ack_comment = NULL;
  r->a.acked_ns = 0;
  r->a.ends_ns = 0;
  r->a.fingerprint = da->fp;
  if (r->a.starts_ns == 0) {
    r->a.starts_ns = now_ns;
  }
  r->fp = da->fp;
  d->nrecords++;
}

/* The latest record of fp still firing; NULL when none. */
static struct drecord *open_record(struct dispatch *d, uint64_t fp) {
  for (size_t i = d->nrecords; i-- > 0;) {
    if (d->records[i].fp == fp) {
      return d->records[i].a.status == NOTICE_FIRING ? &d->records[i] : NULL;
    }
  }
  return NULL;
}

void dispatch__record_ack(struct dispatch *d, uint64_t fp, const char *by,
                          const char *comment, int64_t at_ns) {
  struct drecord *r = open_record(d, fp);
  if (!r) {
    return;
  }
  free(r->a.acked_by);
  free(r->a.ack_comment);
  r->a.acked_by = mem_strdup(by);
  r->a.ack_comment = mem_strdup(comment);
  r->a.acked_ns = r->a.acked_by ? at_ns : 0;
}

void dispatch__record_resolve(struct dispatch *d, uint64_t fp,
                              int64_t ends_ns) {
  struct drecord *r = open_record(d, fp);
  if (r) {
    r->a.status = NOTICE_RESOLVED;
    r->a.ends_ns = ends_ns;
  }
}

void dispatch__records_cleanup(struct dispatch *d) {
  for (size_t i = 0; i < d->nrecords; i++) {
    notice_alert_cleanup(&d->records[i].a);
  }
  free(d->records);
  d->records = NULL;
  d->nrecords = d->caprecords = 0;
}

void dispatch__digest_tick(struct dispatch *d, int64_t now_ns) {
  if (now_ns < d->digest_next_ns) {
    return;
  }
  d->digest_next_ns = dispatch__digest_next(d, now_ns);
  if (d->nrecords == 0 && d->records_omitted == 0) {
    return;
  }
  struct notice *n = dispatch__notice(d, NOTICE_DIGEST, d->c.digest_receiver,
                                      "digest", NULL, d->nrecords, now_ns);
  if (!n) {
    return;
  }
  bool ok = true;
  if (d->records_omitted > 0) {
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)d->records_omitted);
    ok = notice_labels_set(&n->group_labels, "omitted", num) == IOCD_OK;
  }
  for (size_t i = 0; ok && i < d->nrecords; i++) {
    ok = notice_alert_copy(&n->alerts[i], &d->records[i].a) == IOCD_OK;
    n->nalerts += ok;
  }
  if (!ok) {
    notice_free(n);
    return;
  }
  /* Open episodes are listed again in the next digest; the rest is done. */
  for (size_t i = 0; i < d->nrecords;) {
    if (d->records[i].a.status == NOTICE_RESOLVED) {
      record_drop(d, i);
    } else {
      i++;
    }
  }
  d->records_omitted = 0;
  dispatch__emit(d, n);
}
