/*
 * The dispatcher: alerts in, notices out, on a virtual clock. This file
 * holds what the alerts and their groups go through (routing to
 * aggregation groups, inhibition and silences, the flush of a group with
 * Alertmanager's deduplication, mute intervals, acknowledgements and
 * escalation) and the dispatcher's life (build, reconfigure, free);
 * dispatch_aux.c holds the index, the receivers' hourly limit and storms,
 * flapping and the digest. dispatch.h says what the behaviour is.
 */
#include "alerts/dispatch.h"

#include <stdlib.h>
#include <string.h>

#include "alerts/dispatch_int.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/mem.h"

/* What a flush decides for one member. */
enum {
  CLS_KEEP = 0, /* nothing now: muted, held, or firing unchanged */
  CLS_QUIET,    /* firing but silenced or inhibited */
  CLS_FIRING,   /* in the notice as firing */
  CLS_RESOLVED, /* in the notice as resolved, then dropped */
  CLS_DROP,     /* resolved, nothing to tell: dropped */
  CLS_ESCALATE, /* in this tier's escalation notice */
};

bool dispatch__critical(const struct notice_labels *ls) {
  const char *s = notice_label_get(ls, "severity");
  return s && strcmp(s, "critical") == 0;
}

bool dispatch__route_muted(const struct dispatch *d, const struct route *r,
                           int64_t now_ns) {
  for (size_t i = 0; i < r->nmute; i++) {
    if (timeint_active(d->c.intervals, r->mute[i], now_ns)) {
      return true;
    }
  }
  for (size_t i = 0; i < r->nactive; i++) {
    if (timeint_active(d->c.intervals, r->active[i], now_ns)) {
      return false;
    }
  }
  return r->nactive > 0;
}

/* When the mute of r may next change. */
static int64_t mute_change(const struct dispatch *d, const struct route *r,
                           int64_t now_ns) {
  int64_t t = INT64_MAX;
  for (size_t i = 0; i < r->nmute; i++) {
    int64_t u = timeint_next_change(d->c.intervals, r->mute[i], now_ns);
    t = u < t ? u : t;
  }
  for (size_t i = 0; i < r->nactive; i++) {
    int64_t u = timeint_next_change(d->c.intervals, r->active[i], now_ns);
    t = u < t ? u : t;
  }
  return t;
}

struct notice *dispatch__notice(struct dispatch *d, enum notice_kind kind,
                                const char *receiver, const char *group_key,
                                const struct notice_labels *group_labels,
                                size_t nalerts, int64_t now_ns) {
  (void)d;
  struct notice *n = notice_new();
  if (!n) {
    return NULL;
  }
  n->kind = kind;
  n->created_ns = now_ns;
  n->receiver = mem_strdup(receiver);
  n->group_key = mem_strdup(group_key);
  if (!n->receiver || !n->group_key ||
      notice_labels_copy(&n->group_labels, group_labels) ||
      (nalerts && !(n->alerts = calloc(nalerts, sizeof *n->alerts)))) {
    notice_free(n);
    return NULL;
  }
  return n;
}

int dispatch__notice_add(struct dispatch *d, struct notice *n,
                         const struct notice_alert *a) {
  struct notice_alert *c = &n->alerts[n->nalerts];
  if (notice_alert_copy(c, a)) {
    return IOCD_ENOMEM;
  }
  n->nalerts++;
  free(c->acked_by);
  free(c->ack_comment);
  c->acked_by = c->ack_comment = NULL;
  c->acked_ns = 0;
  const struct ack *k =
      a->status == NOTICE_FIRING ? ack_find(d->acks, a->fingerprint) : NULL;
  if (k) {
    c->acked_by = mem_strdup(k->by);
    c->ack_comment = k->comment ? mem_strdup(k->comment) : NULL;
    c->acked_ns = k->at_ns;
    if (!c->acked_by || (k->comment && !c->ack_comment)) {
      return IOCD_ENOMEM;
    }
  }
  return IOCD_OK;
}

static void audit_out(struct dispatch *d, struct buf *line) {
  if (d->audit && line->len > 0) {
    /* Lands in the caller's audit callback (alerts.c: acks.jsonl). */
    d->audit(d->ud, line->data, line->len);
  }
  buf_reset(line);
}

/* ---- configuration ------------------------------------------------------- */

static void conf_cleanup(struct dconf *c) {
  route_tree_free(c->routes);
  timeint_set_free(c->intervals);
  for (size_t i = 0; i < c->ninhibit; i++) {
    struct dinhibit *r = &c->inhibit[i];
    match_set_cleanup(&r->src);
    match_set_cleanup(&r->tgt);
    for (size_t j = 0; j < r->nequal; j++) {
      free(r->equal[j]);
    }
    free(r->equal);
    free(r->srcs);
  }
  free(c->inhibit);
  for (size_t i = 0; i < c->nrecv; i++) {
    dispatch__recv_cleanup(&c->recv[i]);
  }
  free(c->recv);
  free(c->digest_receiver);
  free(c->digest_at);
  memset(c, 0, sizeof *c);
}

/* Checks that what route r names exists. */
static int check_route(const struct dconf *c, const struct route *r,
                       struct iocd_err *err) {
  if (!dispatch__recv(c, r->receiver)) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "route %s: receiver %s is not configured", r->key,
                        r->receiver);
  }
  for (size_t i = 0; i < r->ntiers; i++) {
    if (!dispatch__recv(c, r->tiers[i].receiver)) {
      return iocd_err_set(err, IOCD_EINVAL,
                          "route %s: escalation[%zu]: receiver %s is not "
                          "configured",
                          r->key, i, r->tiers[i].receiver);
    }
  }
  for (size_t i = 0; i < r->nmute + r->nactive; i++) {
    const char *name = i < r->nmute ? r->mute[i] : r->active[i - r->nmute];
    if (!timeint_known(c->intervals, name)) {
      return iocd_err_set(err, IOCD_EINVAL,
                          "route %s: time interval %s is not defined", r->key,
                          name);
    }
  }
  return IOCD_OK;
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

static int conf_inhibit(struct dconf *c, const struct config_notify *cfg,
                        struct iocd_err *err) {
  if (cfg->ninhibit == 0) {
    return IOCD_OK;
  }
  if (!(c->inhibit = calloc(cfg->ninhibit, sizeof *c->inhibit))) {
    return IOCD_ENOMEM;
  }
  for (size_t i = 0; i < cfg->ninhibit; i++) {
    const struct config_inhibit *ci = &cfg->inhibit[i];
    struct dinhibit *r = &c->inhibit[i];
    c->ninhibit = i + 1;
    int rc = match_compile(&r->src, ci->source, ci->nsource, err);
    if (!rc) {
      rc = match_compile(&r->tgt, ci->target, ci->ntarget, err);
    }
    if (rc) {
      if (rc == IOCD_EINVAL) {
        iocd_err_prefix(err, "inhibit_rules[%zu]", i);
      }
      return rc;
    }
    if (ci->nequal > 0) {
      if (!(r->equal = calloc(ci->nequal, sizeof *r->equal))) {
        return IOCD_ENOMEM;
      }
      for (size_t j = 0; j < ci->nequal; j++) {
        if (!(r->equal[j] = mem_strdup(ci->equal[j] ? ci->equal[j] : ""))) {
          return IOCD_ENOMEM;
        }
        r->nequal = j + 1;
      }
    }
  }
  return IOCD_OK;
}

static int conf_build(struct dconf *c, const struct config_notify *cfg,
                      const struct calendar *cal, struct iocd_err *err) {
  memset(c, 0, sizeof *c);
  int rc = IOCD_EINVAL;
  if (!(c->routes = route_tree_new(&cfg->route, err)) ||
      !(c->intervals =
            timeint_set_new(cal, cfg->intervals, cfg->nintervals, err))) {
    goto out;
  }
  rc = dispatch__recv_build(c, cfg);
  for (size_t i = 0; !rc && i < route_tree_size(c->routes); i++) {
    rc = check_route(c, route_tree_at(c->routes, i), err);
  }
  if (!rc) {
    rc = conf_inhibit(c, cfg, err);
  }
  if (rc) {
    goto out;
  }
  c->flap_transitions = cfg->flap_transitions == 0  ? 4
                        : cfg->flap_transitions < 0 ? 0
                        : cfg->flap_transitions > DISPATCH_MAX_FLIPS
                            ? DISPATCH_MAX_FLIPS
                            : cfg->flap_transitions;
  c->flap_window_ns =
      (cfg->flap_window_ms > 0 ? cfg->flap_window_ms : INT64_C(3600000)) *
      NS_PER_MS;
  if (cfg->digest_receiver && cfg->ndigest_at > 0) {
    if (!dispatch__recv(c, cfg->digest_receiver)) {
      rc = iocd_err_set(err, IOCD_EINVAL,
                        "digest: receiver %s is not configured",
                        cfg->digest_receiver);
      goto out;
    }
    c->digest_receiver = mem_strdup(cfg->digest_receiver);
    c->digest_at = calloc(cfg->ndigest_at, sizeof *c->digest_at);
    if (!c->digest_receiver || !c->digest_at) {
      rc = IOCD_ENOMEM;
      goto out;
    }
    for (size_t i = 0; i < cfg->ndigest_at; i++) {
      int m = cfg->digest_at[i].start;
      if (m < 0 || m >= 1440) {
        rc = iocd_err_set(err, IOCD_EINVAL,
                          "digest: at[%zu]: not a time of the day", i);
        goto out;
      }
      c->digest_at[c->ndigest_at++] = m;
    }
    qsort(c->digest_at, c->ndigest_at, sizeof *c->digest_at, cmp_int);
  }
out:
  if (rc == IOCD_ENOMEM) {
    iocd_err_set(err, rc, "notifications: out of memory");
  }
  if (rc) {
    conf_cleanup(c);
  }
  return rc;
}

/* ---- alerts and groups --------------------------------------------------- */

static void escalated_reset(struct dalert *da) {
  for (size_t i = 0; i < da->nescalated; i++) {
    free(da->escalated[i]);
  }
  free(da->escalated);
  da->escalated = NULL;
  da->nescalated = 0;
}

static void dalert_free(struct dalert *da) {
  notice_alert_cleanup(&da->a);
  escalated_reset(da);
  free(da->groups);
  free(da);
}

/* Removes g from the groups alert fp is routed to. */
static void alert_unlink(struct dispatch *d, uint64_t fp,
                         const struct dgroup *g) {
  struct dalert *da = dispatch__index_get(&d->alert_index, fp);
  for (size_t i = 0; da && i < da->ngroups; i++) {
    if (da->groups[i] == g) {
      memmove(&da->groups[i], &da->groups[i + 1],
              (da->ngroups - i - 1) * sizeof *da->groups);
      da->ngroups--;
      return;
    }
  }
}

static void member_remove(struct dgroup *g, size_t i) {
  notice_alert_cleanup(&g->m[i].a);
  memmove(&g->m[i], &g->m[i + 1], (g->n - i - 1) * sizeof *g->m);
  g->n--;
}

static struct dmember *member_find(struct dgroup *g, uint64_t fp) {
  for (size_t i = 0; i < g->n; i++) {
    if (g->m[i].fp == fp) {
      return &g->m[i];
    }
  }
  return NULL;
}

/* Frees g, its members leaving their alerts' lists; the caller takes it
 * out of d->groups. */
static void group_destroy(struct dispatch *d, struct dgroup *g) {
  for (size_t i = 0; i < g->n; i++) {
    alert_unlink(d, g->m[i].fp, g);
    notice_alert_cleanup(&g->m[i].a);
  }
  if (dispatch__index_get(&d->group_index, g->hash) == g) {
    dispatch__index_del(&d->group_index, g->hash);
  }
  free(g->m);
  free(g->key);
  free(g->route_key);
  notice_labels_cleanup(&g->labels);
  free(g);
}

/* Drops the NULL entries of d->groups, keeping the order. */
static void groups_compact(struct dispatch *d) {
  size_t w = 0;
  for (size_t i = 0; i < d->ngroups; i++) {
    if (d->groups[i]) {
      d->groups[w++] = d->groups[i];
    }
  }
  d->ngroups = w;
}

/* Finds or makes the group of key (labels moved in on creation); *out NULL
 * when a different group has the same hash. */
static int group_get(struct dispatch *d, const struct route *r, char *key,
                     struct notice_labels *labels, bool overflow,
                     int64_t now_ns, struct dgroup **out) {
  uint64_t h = hash_str(HASH_START, key);
  struct dgroup *g = dispatch__index_get(&d->group_index, h);
  *out = NULL;
  if (g) {
    *out = strcmp(g->key, key) == 0 ? g : NULL;
    return IOCD_OK;
  }
  if (!(g = calloc(1, sizeof *g))) {
    return IOCD_ENOMEM;
  }
  g->key = mem_strdup(key);
  g->route_key = mem_strdup(r->key);
  if (!g->key || !g->route_key ||
      mem_grow((void **)&d->groups, &d->capgroups, d->ngroups,
               sizeof *d->groups) ||
      dispatch__index_put(&d->group_index, h, g)) {
    free(g->key);
    free(g->route_key);
    free(g);
    return IOCD_ENOMEM;
  }
  g->hash = h;
  g->route = r;
  g->labels = *labels;
  *labels = (struct notice_labels){0};
  g->overflow = overflow;
  g->next_flush_ns = now_ns + r->group_wait_ns;
  d->groups[d->ngroups++] = g;
  *out = g;
  return IOCD_OK;
}

/* The group of route r for labels ls; *out NULL when there is none to be
 * had (a hash collision). */
static int group_for(struct dispatch *d, const struct route *r,
                     const struct notice_labels *ls, int64_t now_ns,
                     struct dgroup **out) {
  struct notice_labels gl = {0};
  struct buf key;
  buf_init(&key, 1 << 20);
  int rc = route_group_labels(r, ls, &gl);
  if (!rc) {
    rc = route_group_key(r, &gl, &key);
  }
  if (rc) {
    goto out;
  }
  uint64_t h = hash_str(HASH_START, key.data);
  struct dgroup *g = dispatch__index_get(&d->group_index, h);
  if (g || d->ngroups < d->max_groups) {
    rc = group_get(d, r, key.data, &gl, false, now_ns, out);
    goto out;
  }
  /* At the bound: the route's overflow group, with no group labels. */
  notice_labels_cleanup(&gl);
  buf_reset(&key);
  rc = buf_printf(&key, "%s:overflow", r->key);
  if (!rc) {
    rc = group_get(d, r, key.data, &gl, true, now_ns, out);
  }
out:
  notice_labels_cleanup(&gl);
  buf_cleanup(&key);
  return rc ? IOCD_ENOMEM : IOCD_OK;
}

/* Puts the current state of da into group g. IOCD_EFULL when g is full. */
static int member_upsert(struct dispatch *d, struct dgroup *g,
                         const struct dalert *da, int64_t now_ns) {
  struct dmember *m = member_find(g, da->fp);
  struct notice_alert copy;
  if (!m && g->n >= d->max_group_alerts) {
    return IOCD_EFULL;
  }
  if (!m && mem_grow((void **)&g->m, &g->cap, g->n, sizeof *g->m)) {
    return IOCD_ENOMEM;
  }
  if (notice_alert_copy(&copy, &da->a)) {
    return IOCD_ENOMEM;
  }
  copy.fingerprint = da->fp;
  enum notice_status was = NOTICE_RESOLVED;
  if (m) {
    was = m->a.status;
    notice_alert_cleanup(&m->a);
  } else {
    m = &g->m[g->n++];
    memset(m, 0, sizeof *m);
    m->fp = da->fp;
    d->stats.group_overflow += g->overflow;
  }
  m->a = copy;
  m->detached = false;
  if (copy.status == NOTICE_FIRING && was == NOTICE_RESOLVED) {
    m->fired_ns = copy.starts_ns ? copy.starts_ns : now_ns;
    m->esc_sent = 0;
  }
  return IOCD_OK;
}

/* Routes da to its groups. A resolved alert only updates the groups that
 * hold it. Groups it is no longer routed to: quiet (a reload) drops it,
 * otherwise it stays there as resolved when it had been notified. */
static int route_alert(struct dispatch *d, struct dalert *da, int64_t now_ns,
                       bool quiet) {
  if (da->a.status == NOTICE_RESOLVED) {
    for (size_t i = 0; i < da->ngroups; i++) {
      int rc = member_upsert(d, da->groups[i], da, now_ns);
      if (rc == IOCD_ENOMEM) {
        return rc;
      }
    }
    return IOCD_OK;
  }
  size_t cap = route_tree_size(d->c.routes);
  const struct route **rs = calloc(cap, sizeof *rs);
  struct dgroup **in = calloc(cap, sizeof *in);
  if (!rs || !in) {
    free(rs);
    free(in);
    return IOCD_ENOMEM;
  }
  size_t nr = route_match(d->c.routes, &da->a.labels, rs, cap);
  size_t nin = 0;
  int rc = IOCD_OK;
  for (size_t i = 0; i < nr && i < cap; i++) {
    struct dgroup *g;
    rc = group_for(d, rs[i], &da->a.labels, now_ns, &g);
    if (rc) {
      break;
    }
    rc = g ? member_upsert(d, g, da, now_ns) : IOCD_EFULL;
    if (rc == IOCD_EFULL) {
      d->stats.group_full++;
      rc = IOCD_OK;
      continue;
    }
    if (rc) {
      break;
    }
    in[nin++] = g;
  }
  for (size_t i = 0; i < da->ngroups; i++) {
    struct dgroup *g = da->groups[i];
    bool kept = false;
    for (size_t j = 0; j < nin; j++) {
      kept = kept || in[j] == g;
    }
    struct dmember *m = kept ? NULL : member_find(g, da->fp);
    if (!m) {
      continue;
    }
    if (quiet || !m->notified_firing) {
      member_remove(g, (size_t)(m - g->m));
    } else {
      m->detached = true;
      m->a.status = NOTICE_RESOLVED;
      m->a.ends_ns = now_ns;
    }
  }
  if (!rc && nin > da->capgroups) {
    struct dgroup **ng = realloc(da->groups, nin * sizeof *ng);
    if (!ng) {
      rc = IOCD_ENOMEM;
    } else {
      da->groups = ng;
      da->capgroups = nin;
    }
  }
  if (!rc) {
    if (nin > 0) {
      memcpy(da->groups, in, nin * sizeof *in);
    }
    da->ngroups = nin;
  }
  free(rs);
  free(in);
  return rc;
}

/* Forgets the alerts that are resolved, in no group, and past the flapping
 * window; all of them with force, else only when past max_alerts. */
static void alerts_gc(struct dispatch *d, int64_t now_ns) {
  size_t w = 0;
  bool removed = false;
  for (size_t i = 0; i < d->nalerts; i++) {
    struct dalert *da = d->alerts[i];
    if (da->a.status == NOTICE_RESOLVED && da->ngroups == 0 &&
        !da->flap_notify &&
        now_ns >= da->last_change_ns + d->c.flap_window_ns) {
      dispatch__index_del(&d->alert_index, da->fp);
      dalert_free(da);
      removed = true;
    } else {
      d->alerts[w++] = da;
    }
  }
  d->nalerts = w;
  if (removed) {
    d->gen++;
  }
}

/* The resolved change res of an alert whose episode was firing keeps what
 * the episode's notification said: when it started (the engine's resolved
 * event may carry 0 or the time of resolution) and its annotations (the
 * engine renders a resolved event's summary with the recovered value).
 * Value, threshold, reason and labels are the new ones; ends at now when
 * it says nothing. firing's annotations are moved into res. */
static void keep_episode(struct notice_alert *res, struct notice_alert *firing,
                         int64_t now_ns) {
  if (firing->starts_ns) {
    res->starts_ns = firing->starts_ns;
  }
  notice_labels_cleanup(&res->annotations);
  res->annotations = firing->annotations;
  firing->annotations = (struct notice_labels){0};
  if (!res->ends_ns) {
    res->ends_ns = now_ns;
  }
}

int dispatch_alert(struct dispatch *d, const struct notice_alert *a,
                   int64_t now_ns) {
  uint64_t fp =
      a->fingerprint ? a->fingerprint : notice_labels_fingerprint(&a->labels);
  struct dalert *da = dispatch__index_get(&d->alert_index, fp);
  bool fresh = da == NULL;
  if (now_ns > d->now_ns) {
    d->now_ns = now_ns;
  }
  if (!da) {
    if (a->status == NOTICE_RESOLVED) {
      return IOCD_OK;
    }
    if (d->nalerts >= d->max_alerts) {
      alerts_gc(d, INT64_MAX - d->c.flap_window_ns);
    }
    if (d->nalerts >= d->max_alerts) {
      d->stats.alerts_refused++;
      return IOCD_ELIMIT;
    }
    if (!(da = calloc(1, sizeof *da)) ||
        mem_grow((void **)&d->alerts, &d->capalerts, d->nalerts,
                 sizeof *d->alerts) ||
        dispatch__index_put(&d->alert_index, fp, da)) {
      free(da);
      return IOCD_ENOMEM;
    }
    da->fp = fp;
    d->alerts[d->nalerts++] = da;
  }
  struct notice_alert copy;
  if (notice_alert_copy(&copy, a)) {
    if (fresh) {
      /* A fresh alert with no state yet: forget it again. */
      dispatch__index_del(&d->alert_index, fp);
      d->nalerts--;
      free(da);
    }
    return IOCD_ENOMEM;
  }
  copy.fingerprint = fp;
  enum notice_status was = fresh ? NOTICE_RESOLVED : da->a.status;
  if (was == NOTICE_FIRING && a->status == NOTICE_RESOLVED) {
    keep_episode(&copy, &da->a, now_ns);
  }
  notice_alert_cleanup(&da->a);
  da->a = copy;
  struct buf line;
  buf_init(&line, 1 << 20);
  const struct ack *k = ack_find(d->acks, fp);
  if (k && a->status == NOTICE_FIRING && a->starts_ns > k->at_ns) {
    /* An ack from an earlier episode (it resolved while iocd was away). */
    ack_expire(d->acks, fp, now_ns, &line);
    audit_out(d, &line);
  }
  if (fresh || was != a->status) {
    if (dispatch__flap_change(d, da, now_ns)) {
      da->flap_notify = true;
      if (!d->flap_pending) {
        d->flap_pending = true;
        d->flap_due_ns = now_ns;
      }
    }
    if (a->status == NOTICE_FIRING) {
      escalated_reset(da);
      dispatch__record_fire(d, da, now_ns);
    } else {
      if (ack_expire(d->acks, fp, now_ns, &line) == IOCD_OK) {
        audit_out(d, &line);
      }
      dispatch__record_resolve(d, fp, a->ends_ns ? a->ends_ns : now_ns);
    }
  }
  buf_cleanup(&line);
  d->gen++;
  return route_alert(d, da, now_ns, false);
}

/* ---- inhibition and silences --------------------------------------------- */

static void inhibit_refresh(struct dispatch *d) {
  if (d->inhibit_gen == d->gen) {
    return;
  }
  for (size_t i = 0; i < d->c.ninhibit; i++) {
    struct dinhibit *r = &d->c.inhibit[i];
    r->nsrcs = 0;
    for (size_t j = 0; j < d->nalerts; j++) {
      struct dalert *da = d->alerts[j];
      if (da->a.status != NOTICE_FIRING ||
          !match_labels(&r->src, &da->a.labels)) {
        continue;
      }
      if (mem_grow((void **)&r->srcs, &r->capsrcs, r->nsrcs, sizeof *r->srcs)) {
        break; /* out of memory: fewer sources, more notices */
      }
      r->srcs[r->nsrcs++] = da;
    }
  }
  d->inhibit_gen = d->gen;
}

static bool inhibited(struct dispatch *d, uint64_t fp,
                      const struct notice_labels *ls) {
  inhibit_refresh(d);
  for (size_t i = 0; i < d->c.ninhibit; i++) {
    const struct dinhibit *r = &d->c.inhibit[i];
    if (r->nsrcs == 0 || !match_labels(&r->tgt, ls)) {
      continue;
    }
    for (size_t j = 0; j < r->nsrcs; j++) {
      const struct dalert *src = r->srcs[j];
      if (src->fp == fp) {
        continue; /* an alert never inhibits itself */
      }
      bool equal = true;
      for (size_t k = 0; equal && k < r->nequal; k++) {
        const char *x = notice_label_get(&src->a.labels, r->equal[k]);
        const char *y = notice_label_get(ls, r->equal[k]);
        equal = strcmp(x ? x : "", y ? y : "") == 0;
      }
      if (equal) {
        return true;
      }
    }
  }
  return false;
}

static bool suppressed(struct dispatch *d, const struct dmember *m,
                       int64_t now_ns) {
  return silence_matching(d->silences, &m->a.labels, now_ns) ||
         inhibited(d, m->fp, &m->a.labels);
}

/* ---- flush and escalation ------------------------------------------------ */

static void flush(struct dispatch *d, struct dgroup *g, int64_t now_ns) {
  const struct route *r = g->route;
  const struct drecv *rv = dispatch__recv(&d->c, r->receiver);
  bool send_resolved = rv ? rv->send_resolved : true;
  bool muted = dispatch__route_muted(d, r, now_ns);
  bool changed = false;
  size_t nfiring = 0, nunacked = 0, nresolved = 0;
  for (size_t i = 0; i < g->n; i++) {
    struct dmember *m = &g->m[i];
    m->cls = CLS_KEEP;
    m->held = false;
    if (dispatch__flapping(d, m->fp, now_ns)) {
      continue; /* held until it is stable */
    }
    bool m_muted =
        muted && !(r->critical_any_time && dispatch__critical(&m->a.labels));
    if (m->a.status == NOTICE_FIRING) {
      if (suppressed(d, m, now_ns)) {
        m->cls = CLS_QUIET;
        m->held = true;
      } else if (!m_muted) {
        m->cls = CLS_FIRING;
        changed = changed || !m->in_last;
        nfiring++;
        nunacked += ack_find(d->acks, m->fp) == NULL;
      }
    } else if (!m->notified_firing || !send_resolved) {
      m->cls = CLS_DROP;
    } else if (!m_muted) {
      m->cls = CLS_RESOLVED;
      changed = true;
      nresolved++;
    }
  }
  bool repeat = !changed && nunacked > 0 && g->last_sent_ns != 0 &&
                now_ns - g->last_sent_ns >= r->repeat_interval_ns;
  bool sent = false;
  if (changed || repeat) {
    /* A repeat carries only the alerts nobody acknowledged. */
    size_t count = (repeat ? nunacked : nfiring) + (repeat ? 0 : nresolved);
    struct notice *n = dispatch__notice(d, NOTICE_ALERTS, r->receiver, g->key,
                                        &g->labels, count, now_ns);
    for (int pass = 0; n && pass < 2; pass++) {
      for (size_t i = 0; n && i < g->n; i++) {
        const struct dmember *m = &g->m[i];
        bool take = pass == 0 ? m->cls == CLS_FIRING &&
                                    !(repeat && ack_find(d->acks, m->fp))
                              : m->cls == CLS_RESOLVED && !repeat;
        if (take && dispatch__notice_add(d, n, &m->a)) {
          notice_free(n);
          n = NULL;
        }
      }
    }
    if (n) {
      dispatch__emit_limited(d, n, now_ns);
      g->last_sent_ns = now_ns;
      sent = true;
    }
  }
  for (size_t i = 0; i < g->n;) {
    struct dmember *m = &g->m[i];
    if (sent && m->cls == CLS_FIRING) {
      m->in_last = true;
      m->notified_firing = true;
    } else if (sent && m->cls == CLS_QUIET) {
      m->in_last = false;
    }
    if (m->cls == CLS_DROP || (sent && m->cls == CLS_RESOLVED)) {
      alert_unlink(d, m->fp, g);
      member_remove(g, i);
    } else {
      i++;
    }
  }
  g->next_flush_ns = now_ns + r->group_interval_ns;
  if (muted && g->n > 0) {
    /* Wake when the mute ends, so that what waited goes out then. */
    int64_t t = mute_change(d, r, now_ns);
    if (t < g->next_flush_ns) {
      g->next_flush_ns = t;
    }
  }
}

static bool escalable(struct dispatch *d, const struct dgroup *g,
                      const struct dmember *m, size_t tier, bool muted,
                      int64_t now_ns) {
  const struct route *r = g->route;
  return m->a.status == NOTICE_FIRING && !m->detached && m->esc_sent == tier &&
         m->fired_ns + r->tiers[tier].after_ns <= now_ns &&
         !(muted &&
           !(r->critical_any_time && dispatch__critical(&m->a.labels))) &&
         !ack_find(d->acks, m->fp) && !dispatch__flapping(d, m->fp, now_ns) &&
         !suppressed(d, m, now_ns);
}

/* Whether da was escalated to receiver in this episode already (from
 * another of its groups). */
static bool escalated_to(const struct dalert *da, const char *receiver) {
  for (size_t i = 0; da && i < da->nescalated; i++) {
    if (strcmp(da->escalated[i], receiver) == 0) {
      return true;
    }
  }
  return false;
}

static void escalated_add(struct dalert *da, const char *receiver) {
  char *c = mem_strdup(receiver);
  char **v =
      c ? realloc(da->escalated, (da->nescalated + 1) * sizeof *da->escalated)
        : NULL;
  if (!v) {
    free(c); /* out of memory: the alert may be escalated twice */
    return;
  }
  da->escalated = v;
  da->escalated[da->nescalated++] = c;
}

static void escalate(struct dispatch *d, struct dgroup *g, int64_t now_ns) {
  const struct route *r = g->route;
  if (r->ntiers == 0 || g->n == 0) {
    return;
  }
  bool muted = dispatch__route_muted(d, r, now_ns);
  for (size_t k = 0; k < r->ntiers; k++) {
    const char *to = r->tiers[k].receiver;
    size_t count = 0;
    for (size_t i = 0; i < g->n; i++) {
      struct dmember *m = &g->m[i];
      m->cls = CLS_KEEP;
      if (!escalable(d, g, m, k, muted, now_ns)) {
        continue;
      }
      if (escalated_to(dispatch__index_get(&d->alert_index, m->fp), to)) {
        m->esc_sent = k + 1; /* told through another group */
        continue;
      }
      m->cls = CLS_ESCALATE;
      count++;
    }
    if (count == 0) {
      continue;
    }
    struct notice *n = dispatch__notice(d, NOTICE_ESCALATION, to, g->key,
                                        &g->labels, count, now_ns);
    for (size_t i = 0; n && i < g->n; i++) {
      if (g->m[i].cls == CLS_ESCALATE &&
          dispatch__notice_add(d, n, &g->m[i].a)) {
        notice_free(n);
        n = NULL;
      }
    }
    if (!n) {
      continue; /* out of memory: the next tick tries again */
    }
    n->tier = (int)k + 1;
    for (size_t i = 0; i < g->n; i++) {
      if (g->m[i].cls == CLS_ESCALATE) {
        g->m[i].esc_sent = k + 1;
        struct dalert *da = dispatch__index_get(&d->alert_index, g->m[i].fp);
        if (da) {
          escalated_add(da, to);
        }
      }
    }
    dispatch__emit_limited(d, n, now_ns);
  }
}

/* Whether a silence of s ended in (from, to]. */
static bool silence_ended(const struct silence_set *s, int64_t from,
                          int64_t to) {
  for (size_t i = 0; i < silence_count(s); i++) {
    int64_t e = silence_at(s, i)->ends_ns;
    if (e > from && e <= to) {
      return true;
    }
  }
  return false;
}

/* Whether an alert that g's last flush held back (silenced, inhibited) may
 * go out now: firing, no longer suppressed, not muted, not flapping. */
static bool released(struct dispatch *d, struct dgroup *g, int64_t now_ns) {
  const struct route *r = g->route;
  bool muted = dispatch__route_muted(d, r, now_ns);
  for (size_t i = 0; i < g->n; i++) {
    struct dmember *m = &g->m[i];
    if (m->held && m->a.status == NOTICE_FIRING &&
        !(muted &&
          !(r->critical_any_time && dispatch__critical(&m->a.labels))) &&
        !dispatch__flapping(d, m->fp, now_ns) && !suppressed(d, m, now_ns)) {
      return true;
    }
  }
  return false;
}

void dispatch_tick(struct dispatch *d, int64_t now_ns) {
  int64_t since = d->tick_ns;
  if (now_ns > d->now_ns) {
    d->now_ns = now_ns;
  }
  if (now_ns > d->tick_ns) {
    d->tick_ns = now_ns;
  }
  dispatch__digest_tick(d, now_ns);
  dispatch__flap_tick(d, now_ns);
  /* A silence that ended lets the alerts it held go out now rather than
   * at their group's next flush. */
  bool unsilenced = silence_ended(d->silences, since, now_ns);
  size_t n = d->ngroups;
  for (size_t i = 0; i < n; i++) {
    struct dgroup *g = d->groups[i];
    if (now_ns >= g->next_flush_ns || (unsilenced && released(d, g, now_ns))) {
      flush(d, g, now_ns);
    }
  }
  for (size_t i = 0; i < n; i++) {
    escalate(d, d->groups[i], now_ns);
  }
  bool empty = false;
  for (size_t i = 0; i < d->ngroups; i++) {
    if (d->groups[i]->n == 0) {
      group_destroy(d, d->groups[i]);
      d->groups[i] = NULL;
      empty = true;
    }
  }
  if (empty) {
    groups_compact(d);
  }
  dispatch__storms_tick(d, now_ns);
  silence_gc(d->silences, now_ns, d->silence_retention_ns);
  alerts_gc(d, now_ns);
}

int64_t dispatch_next_wake(const struct dispatch *d) {
  int64_t w = d->digest_next_ns;
  if (d->flap_pending && d->flap_due_ns < w) {
    w = d->flap_due_ns;
  }
  /* The starts and ends of silences since the last tick. */
  for (size_t i = 0; i < silence_count(d->silences); i++) {
    const struct silence *s = silence_at(d->silences, i);
    if (s->starts_ns > d->tick_ns && s->starts_ns < w) {
      w = s->starts_ns;
    }
    if (s->ends_ns > d->tick_ns && s->ends_ns < w) {
      w = s->ends_ns;
    }
  }
  for (size_t i = 0; i < d->c.nrecv; i++) {
    int64_t t = d->c.recv[i].storm_due_ns;
    if (t && t < w) {
      w = t;
    }
  }
  for (size_t i = 0; i < d->ngroups; i++) {
    const struct dgroup *g = d->groups[i];
    const struct route *r = g->route;
    if (g->next_flush_ns < w) {
      w = g->next_flush_ns;
    }
    for (size_t j = 0; r->ntiers && j < g->n; j++) {
      const struct dmember *m = &g->m[j];
      if (m->a.status != NOTICE_FIRING || m->detached ||
          m->esc_sent >= r->ntiers || ack_find(d->acks, m->fp)) {
        continue;
      }
      /* A tier already due but held (mute, silence) is seen again at the
       * group's flushes; only future ones are wake-ups. */
      int64_t t = m->fired_ns + r->tiers[m->esc_sent].after_ns;
      if (t > d->now_ns && t < w) {
        w = t;
      }
    }
  }
  return w;
}

/* ---- restart ------------------------------------------------------------- */

int dispatch_restore(struct dispatch *d, const struct notice_alert *a,
                     bool notified, int64_t now_ns) {
  int rc = dispatch_alert(d, a, now_ns);
  if (rc || !notified || a->status != NOTICE_FIRING) {
    return rc;
  }
  uint64_t fp =
      a->fingerprint ? a->fingerprint : notice_labels_fingerprint(&a->labels);
  struct dalert *da = dispatch__index_get(&d->alert_index, fp);
  for (size_t i = 0; da && i < da->ngroups; i++) {
    struct dgroup *g = da->groups[i];
    const struct route *r = g->route;
    struct dmember *m = member_find(g, fp);
    if (!m) {
      continue;
    }
    /* As if the group's last notice, sent now, had carried it. */
    m->notified_firing = true;
    m->in_last = true;
    if (g->last_sent_ns == 0) {
      g->last_sent_ns = now_ns;
    }
    /* The tiers due by now were sent before the restart. */
    while (m->esc_sent < r->ntiers &&
           m->fired_ns + r->tiers[m->esc_sent].after_ns <= now_ns) {
      const char *to = r->tiers[m->esc_sent].receiver;
      if (!escalated_to(da, to)) {
        escalated_add(da, to);
      }
      m->esc_sent++;
    }
  }
  return IOCD_OK;
}

bool dispatch_notified(const struct dispatch *d, uint64_t id) {
  const struct dalert *da = dispatch__index_get(&d->alert_index, id);
  for (size_t i = 0; da && i < da->ngroups; i++) {
    const struct dmember *m = member_find(da->groups[i], id);
    if (m && m->notified_firing) {
      return true;
    }
  }
  return false;
}

/* ---- acknowledgements ---------------------------------------------------- */

int dispatch_ack(struct dispatch *d, uint64_t id, const char *by,
                 const char *principal, const char *comment, int64_t now_ns) {
  const struct dalert *da = dispatch__index_get(&d->alert_index, id);
  if (!by || !by[0]) {
    return IOCD_EINVAL;
  }
  if (!da) {
    return IOCD_ENOTFOUND;
  }
  if (da->a.status != NOTICE_FIRING) {
    return IOCD_ESTATE;
  }
  struct buf line;
  buf_init(&line, 1 << 20);
  int rc = ack_put(d->acks, id, &da->a.labels, by, principal, comment, now_ns,
                   &line);
  if (!rc) {
    audit_out(d, &line);
    dispatch__record_ack(d, id, by, comment, now_ns);
  }
  buf_cleanup(&line);
  return rc;
}

int dispatch_unack(struct dispatch *d, uint64_t id, const char *by,
                   const char *principal, const char *comment, int64_t now_ns) {
  struct buf line;
  buf_init(&line, 1 << 20);
  int rc = ack_remove(d->acks, id, by, principal, comment, now_ns, &line);
  if (!rc) {
    audit_out(d, &line);
    dispatch__record_ack(d, id, NULL, NULL, 0);
  }
  buf_cleanup(&line);
  return rc;
}

int dispatch_load_acks(struct dispatch *d, const char *text, size_t len,
                       size_t *bad) {
  return ack_load(d->acks, text, len, bad);
}

const struct ack_set *dispatch_acks(const struct dispatch *d) {
  return d->acks;
}

struct silence_set *dispatch_silences(struct dispatch *d) {
  return d->silences;
}

uint64_t dispatch_next_id(const struct dispatch *d) {
  return d->next_id;
}

const struct notice_alert *dispatch_find_alert(const struct dispatch *d,
                                               uint64_t id) {
  const struct dalert *da = dispatch__index_get(&d->alert_index, id);
  return da ? &da->a : NULL;
}

void dispatch_get_stats(const struct dispatch *d, struct dispatch_stats *out) {
  *out = d->stats;
  out->alerts = d->nalerts;
  out->groups = d->ngroups;
}

/* ---- life ---------------------------------------------------------------- */

struct dispatch *dispatch_new(const struct dispatch_opts *opts,
                              struct iocd_err *err) {
  if (!opts || !opts->cfg || !opts->cal || !opts->emit) {
    iocd_err_set(err, IOCD_EINVAL,
                 "notifications: the dispatcher needs a configuration, a "
                 "calendar and an emit callback");
    return NULL;
  }
  struct dispatch *d = calloc(1, sizeof *d);
  if (!d) {
    iocd_err_set(err, IOCD_ENOMEM, "notifications: out of memory");
    return NULL;
  }
  d->cal = opts->cal;
  d->emit = opts->emit;
  d->audit = opts->audit;
  d->ud = opts->ud;
  d->next_id = opts->first_id ? opts->first_id : 1;
  d->now_ns = opts->now_ns;
  d->tick_ns = opts->now_ns;
  d->max_alerts = opts->max_alerts ? opts->max_alerts : DISPATCH_MAX_ALERTS;
  d->max_groups = opts->max_groups ? opts->max_groups : DISPATCH_MAX_GROUPS;
  d->max_group_alerts = opts->max_group_alerts ? opts->max_group_alerts
                                               : DISPATCH_MAX_GROUP_ALERTS;
  d->max_records = opts->max_records ? opts->max_records : DISPATCH_MAX_RECORDS;
  d->silence_retention_ns = opts->silence_retention_ns;
  d->gen = 1;
  d->silences = silence_set_new();
  d->acks = ack_set_new();
  if (!d->silences || !d->acks) {
    iocd_err_set(err, IOCD_ENOMEM, "notifications: out of memory");
    dispatch_free(d);
    return NULL;
  }
  if (conf_build(&d->c, opts->cfg, opts->cal, err) ||
      silence_set_config(d->silences, opts->cfg->silences, opts->cfg->nsilences,
                         opts->now_ns, err)) {
    dispatch_free(d);
    return NULL;
  }
  d->digest_next_ns = dispatch__digest_next(d, opts->now_ns);
  return d;
}

void dispatch_free(struct dispatch *d) {
  if (!d) {
    return;
  }
  for (size_t i = 0; i < d->ngroups; i++) {
    struct dgroup *g = d->groups[i];
    for (size_t j = 0; j < g->n; j++) {
      notice_alert_cleanup(&g->m[j].a);
    }
    free(g->m);
    free(g->key);
    free(g->route_key);
    notice_labels_cleanup(&g->labels);
    free(g);
  }
  free(d->groups);
  for (size_t i = 0; i < d->nalerts; i++) {
    dalert_free(d->alerts[i]);
  }
  free(d->alerts);
  dispatch__index_cleanup(&d->alert_index);
  dispatch__index_cleanup(&d->group_index);
  dispatch__records_cleanup(d);
  conf_cleanup(&d->c);
  silence_set_free(d->silences);
  ack_set_free(d->acks);
  free(d);
}

int dispatch_reconfigure(struct dispatch *d, const struct config_notify *cfg,
                         const struct calendar *cal, int64_t now_ns,
                         struct iocd_err *err) {
  struct dconf nc;
  int rc = conf_build(&nc, cfg, cal, err);
  if (rc) {
    return rc;
  }
  rc = silence_set_config(d->silences, cfg->silences, cfg->nsilences, now_ns,
                          err);
  if (rc) {
    conf_cleanup(&nc);
    return rc;
  }
  dispatch__recv_carry(&nc, &d->c);
  struct dconf old = d->c;
  d->c = nc;
  d->cal = cal;
  if (now_ns > d->now_ns) {
    d->now_ns = now_ns;
  }
  bool gone = false;
  for (size_t i = 0; i < d->ngroups; i++) {
    struct dgroup *g = d->groups[i];
    const struct route *r = route_find(d->c.routes, g->route_key);
    if (r) {
      g->route = r;
    } else {
      group_destroy(d, g);
      d->groups[i] = NULL;
      gone = true;
    }
  }
  if (gone) {
    groups_compact(d);
  }
  for (size_t i = 0; i < d->nalerts; i++) {
    if (d->alerts[i]->a.status == NOTICE_FIRING &&
        route_alert(d, d->alerts[i], now_ns, true) == IOCD_ENOMEM) {
      rc = iocd_err_set(err, IOCD_ENOMEM,
                        "notifications: out of memory while routing the "
                        "alerts again");
    }
  }
  conf_cleanup(&old);
  d->inhibit_gen = 0;
  d->gen++;
  d->digest_next_ns = dispatch__digest_next(d, now_ns);
  return rc;
}
