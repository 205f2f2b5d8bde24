/*
 * The route tree: compiling config routes with their inheritance resolved
 * once, so that routing an alert is only matching, and Alertmanager's
 * depth-first walk with "continue".
 */
#include "alerts/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"

struct route_tree {
  struct route root;
  const struct route **order; /* pre-order */
  size_t n;
  size_t cap;
};

static void free_strv(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(v[i]);
  }
  free(v);
}

static void route_cleanup(struct route *r) {
  for (size_t i = 0; i < r->nchildren; i++) {
    route_cleanup(&r->children[i]);
  }
  free(r->children);
  free(r->key);
  match_set_cleanup(&r->matchers);
  free(r->receiver);
  free_strv(r->group_by, r->ngroup_by);
  free_strv(r->mute, r->nmute);
  free_strv(r->active, r->nactive);
  for (size_t i = 0; i < r->ntiers; i++) {
    free(r->tiers[i].receiver);
  }
  free(r->tiers);
}

void route_tree_free(struct route_tree *t) {
  if (!t) {
    return;
  }
  route_cleanup(&t->root);
  free(t->order);
  free(t);
}

/* Copies n strings; *out NULL when n is 0. Returns IOCD_OK or ENOMEM. */
static int dup_strv(char ***out, char *const *v, size_t n) {
  *out = NULL;
  if (n == 0) {
    return IOCD_OK;
  }
  char **c = calloc(n, sizeof *c);
  if (!c) {
    return IOCD_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    if (!(c[i] = mem_strdup(v[i] ? v[i] : ""))) {
      free_strv(c, i);
      return IOCD_ENOMEM;
    }
  }
  *out = c;
  return IOCD_OK;
}

/* The key of the matchers of c under parent key pk: "<pk>/{m1,m2}". */
static int make_key(struct buf *b, const char *pk,
                    const struct config_route *c) {
  int rc = IOCD_OK;
  if (pk) {
    rc = buf_puts(b, pk);
    if (!rc) {
      rc = buf_putc(b, '/');
    }
  }
  if (!rc) {
    rc = buf_putc(b, '{');
  }
  for (size_t i = 0; !rc && i < c->nmatchers; i++) {
    if (i > 0) {
      rc = buf_putc(b, ',');
    }
    if (!rc) {
      rc = match_format(b, c->matchers[i].name ? c->matchers[i].name : "",
                        c->matchers[i].op, c->matchers[i].value);
    }
  }
  if (!rc) {
    rc = buf_putc(b, '}');
  }
  return rc;
}

static int compile(struct route_tree *t, struct route *r,
                   const struct config_route *c, const struct route *parent,
                   size_t sibling, const char *where, struct iocd_err *err);

/* Resolves the settings of r from c and parent (NULL at the root). */
static int inherit(struct route *r, const struct config_route *c,
                   const struct route *p, const char *where,
                   struct iocd_err *err) {
  const char *recv = c->receiver ? c->receiver : p ? p->receiver : NULL;
  if (!recv || !recv[0]) {
    return iocd_err_set(err, IOCD_EINVAL, "%s: no receiver", where);
  }
  if (!(r->receiver = mem_strdup(recv))) {
    return IOCD_ENOMEM;
  }
  int rc;
  if (c->group_by_set || !p) {
    bool all = false;
    for (size_t i = 0; i < c->ngroup_by; i++) {
      all = all || (c->group_by[i] && strcmp(c->group_by[i], "...") == 0);
    }
    r->group_all = all;
    rc = all ? IOCD_OK : dup_strv(&r->group_by, c->group_by, c->ngroup_by);
    r->ngroup_by = all || rc ? 0 : c->ngroup_by;
  } else {
    r->group_all = p->group_all;
    rc = dup_strv(&r->group_by, p->group_by, p->ngroup_by);
    r->ngroup_by = rc ? 0 : p->ngroup_by;
  }
  if (rc) {
    return rc;
  }
  r->group_wait_ns = c->group_wait_ms >= 0 ? c->group_wait_ms * NS_PER_MS
                     : p                   ? p->group_wait_ns
                                           : ROUTE_GROUP_WAIT_MS * NS_PER_MS;
  r->group_interval_ns = c->group_interval_ms > 0
                             ? c->group_interval_ms * NS_PER_MS
                         : p ? p->group_interval_ns
                             : ROUTE_GROUP_INTERVAL_MS * NS_PER_MS;
  r->repeat_interval_ns = c->repeat_interval_ms > 0
                              ? c->repeat_interval_ms * NS_PER_MS
                          : p ? p->repeat_interval_ns
                              : ROUTE_REPEAT_INTERVAL_MS * NS_PER_MS;
  r->critical_any_time = c->critical_any_time >= 0 ? c->critical_any_time != 0
                         : p                       ? p->critical_any_time
                                                   : true;
  if (c->mute_set || !p) {
    rc = dup_strv(&r->mute, c->mute_time_intervals, c->nmute);
    r->nmute = rc ? 0 : c->nmute;
  } else {
    rc = dup_strv(&r->mute, p->mute, p->nmute);
    r->nmute = rc ? 0 : p->nmute;
  }
  if (rc) {
    return rc;
  }
  if (c->active_set || !p) {
    rc = dup_strv(&r->active, c->active_time_intervals, c->nactive);
    r->nactive = rc ? 0 : c->nactive;
  } else {
    rc = dup_strv(&r->active, p->active, p->nactive);
    r->nactive = rc ? 0 : p->nactive;
  }
  if (rc) {
    return rc;
  }
  size_t nt = c->escalation_set || !p ? c->nescalation : p->ntiers;
  if (nt == 0) {
    return IOCD_OK;
  }
  if (!(r->tiers = calloc(nt, sizeof *r->tiers))) {
    return IOCD_ENOMEM;
  }
  for (size_t i = 0; i < nt; i++) {
    int64_t after;
    const char *tr;
    if (c->escalation_set || !p) {
      after = c->escalation[i].after_ms * NS_PER_MS;
      tr = c->escalation[i].receiver;
      if (c->escalation[i].after_ms <= 0 ||
          (i > 0 &&
           c->escalation[i].after_ms <= c->escalation[i - 1].after_ms)) {
        return iocd_err_set(err, IOCD_EINVAL,
                            "%s: escalation[%zu]: `after` must be positive "
                            "and longer than the tier before",
                            where, i);
      }
      if (!tr || !tr[0]) {
        return iocd_err_set(err, IOCD_EINVAL,
                            "%s: escalation[%zu]: no receiver", where, i);
      }
    } else {
      after = p->tiers[i].after_ns;
      tr = p->tiers[i].receiver;
    }
    r->tiers[i].after_ns = after;
    if (!(r->tiers[i].receiver = mem_strdup(tr))) {
      return IOCD_ENOMEM;
    }
    r->ntiers = i + 1;
  }
  return IOCD_OK;
}

static int compile(struct route_tree *t, struct route *r,
                   const struct config_route *c, const struct route *parent,
                   size_t sibling, const char *where, struct iocd_err *err) {
  if (mem_grow((void **)&t->order, &t->cap, t->n, sizeof *t->order)) {
    return IOCD_ENOMEM;
  }
  r->index = t->n;
  t->order[t->n++] = r;
  r->cont = c->cont;
  struct buf b;
  buf_init(&b, 1 << 20);
  int rc = make_key(&b, parent ? parent->key : NULL, c);
  if (!rc && parent) {
    /* An earlier sibling with the same matchers: keep keys unique. */
    for (size_t i = 0; i < sibling; i++) {
      if (strcmp(parent->children[i].key, b.data) == 0) {
        rc = buf_printf(&b, "/%zu", sibling);
        break;
      }
    }
  }
  if (rc) {
    buf_cleanup(&b);
    return IOCD_ENOMEM;
  }
  r->key = buf_detach(&b, NULL);
  rc = match_compile(&r->matchers, c->matchers, c->nmatchers, err);
  if (rc) {
    if (rc == IOCD_EINVAL) {
      iocd_err_prefix(err, "%s", where);
    }
    return rc;
  }
  rc = inherit(r, c, parent, where, err);
  if (rc) {
    return rc;
  }
  if (c->nroutes == 0) {
    return IOCD_OK;
  }
  if (!(r->children = calloc(c->nroutes, sizeof *r->children))) {
    return IOCD_ENOMEM;
  }
  for (size_t i = 0; i < c->nroutes; i++) {
    char sub[200];
    int len = snprintf(sub, sizeof sub, "%s.routes[%zu]", where, i);
    if (len < 0 || (size_t)len >= sizeof sub) {
      snprintf(sub, sizeof sub, "route ...routes[%zu]", i);
    }
    r->nchildren = i + 1;
    rc = compile(t, &r->children[i], &c->routes[i], r, i, sub, err);
    if (rc) {
      return rc;
    }
  }
  return IOCD_OK;
}

struct route_tree *route_tree_new(const struct config_route *root,
                                  struct iocd_err *err) {
  struct route_tree *t = calloc(1, sizeof *t);
  if (!t) {
    iocd_err_set(err, IOCD_ENOMEM, "route: out of memory");
    return NULL;
  }
  int rc = compile(t, &t->root, root, NULL, 0, "route", err);
  if (rc) {
    if (rc == IOCD_ENOMEM) {
      iocd_err_set(err, rc, "route: out of memory");
    }
    route_tree_free(t);
    return NULL;
  }
  return t;
}

size_t route_tree_size(const struct route_tree *t) {
  return t ? t->n : 0;
}

const struct route *route_tree_at(const struct route_tree *t, size_t i) {
  return t && i < t->n ? t->order[i] : NULL;
}

const struct route *route_find(const struct route_tree *t, const char *key) {
  for (size_t i = 0; t && key && i < t->n; i++) {
    if (strcmp(t->order[i]->key, key) == 0) {
      return t->order[i];
    }
  }
  return NULL;
}

/* Adds the matches under r to out[*n...]; returns whether r matched. */
static bool walk(const struct route *r, const struct notice_labels *ls,
                 const struct route **out, size_t cap, size_t *n) {
  if (!match_labels(&r->matchers, ls)) {
    return false;
  }
  size_t before = *n;
  for (size_t i = 0; i < r->nchildren; i++) {
    if (walk(&r->children[i], ls, out, cap, n) && !r->children[i].cont) {
      break;
    }
  }
  if (*n == before) {
    if (*n < cap) {
      out[*n] = r;
    }
    (*n)++;
  }
  return true;
}

size_t route_match(const struct route_tree *t, const struct notice_labels *ls,
                   const struct route **out, size_t cap) {
  size_t n = 0;
  if (!walk(&t->root, ls, out, cap, &n)) {
    /* A root with matchers that do not match still takes the alert. */
    if (cap > 0) {
      out[0] = &t->root;
    }
    n = 1;
  }
  return n;
}

int route_group_labels(const struct route *r, const struct notice_labels *ls,
                       struct notice_labels *out) {
  out->v = NULL;
  out->n = 0;
  if (r->group_all) {
    return notice_labels_copy(out, ls);
  }
  for (size_t i = 0; i < r->ngroup_by; i++) {
    const char *v = notice_label_get(ls, r->group_by[i]);
    if (v && notice_labels_set(out, r->group_by[i], v)) {
      notice_labels_cleanup(out);
      return IOCD_ENOMEM;
    }
  }
  return IOCD_OK;
}

int route_group_key(const struct route *r, const struct notice_labels *group,
                    struct buf *out) {
  int rc = buf_puts(out, r->key);
  if (!rc) {
    rc = buf_puts(out, ":{");
  }
  for (size_t i = 0; !rc && group && i < group->n; i++) {
    if (i > 0) {
      rc = buf_putc(out, ',');
    }
    if (!rc) {
      rc = match_format(out, group->v[i].name, CONFIG_MATCH_EQ,
                        group->v[i].value);
    }
  }
  if (!rc) {
    rc = buf_putc(out, '}');
  }
  return rc;
}
