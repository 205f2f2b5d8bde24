/*
 * What a reload changed, for the one log line that says so. Named items
 * (subscriptions, rules, parameters) are matched by name and compared by
 * the fingerprint of their text; the other top-level sections by theirs.
 * Comments and white space are not part of a fingerprint, so reformatting
 * a file changes nothing.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

/* At most this many names per list; the rest are counted. */
#define DIFF_NAMES_MAX 10

/* One kind of named item, seen through accessors so that one loop serves
 * subscriptions, rules and parameters alike. */
struct kind {
  const char *what;
  size_t (*count)(const struct config *cfg);
  const char *(*name)(const struct config *cfg, size_t i);
  uint64_t (*print)(const struct config *cfg, size_t i);
  /* A section left out takes its defaults: adding or removing one is a
   * change of it, not an addition. */
  bool absent_is_default;
};

static size_t subs_n(const struct config *c) {
  return c->nsubs;
}
static const char *subs_name(const struct config *c, size_t i) {
  return c->subs[i].name;
}
static uint64_t subs_print(const struct config *c, size_t i) {
  return c->subs[i].fingerprint;
}
static size_t rules_n(const struct config *c) {
  return c->rules.n;
}
static const char *rules_name(const struct config *c, size_t i) {
  return c->rules.v[i].name;
}
static uint64_t rules_print(const struct config *c, size_t i) {
  return c->rules.v[i].fingerprint;
}
static size_t params_n(const struct config *c) {
  return c->rules.nparams;
}
static const char *params_name(const struct config *c, size_t i) {
  return c->rules.params[i].name;
}
static uint64_t params_print(const struct config *c, size_t i) {
  return c->rules.params[i].fingerprint;
}
static size_t sections_n(const struct config *c) {
  return c->nprints;
}
static const char *sections_name(const struct config *c, size_t i) {
  return c->prints[i].name;
}
static uint64_t sections_print(const struct config *c, size_t i) {
  return c->prints[i].fingerprint;
}

static const struct kind kinds[] = {
    {"subscriptions", subs_n, subs_name, subs_print, false},
    {"rules", rules_n, rules_name, rules_print, false},
    {"params", params_n, params_name, params_print, false},
    {"sections", sections_n, sections_name, sections_print, true},
};

/* The index of the item called name in cfg, or SIZE_MAX. */
static size_t find(const struct kind *k, const struct config *cfg,
                   const char *name) {
  size_t n = k->count(cfg);
  for (size_t i = 0; i < n; i++) {
    const char *s = k->name(cfg, i);
    if (s && strcmp(s, name) == 0) {
      return i;
    }
  }
  return SIZE_MAX;
}

/* A list being written: "; rules changed: a, b and 3 more". */
struct list {
  struct buf *out;
  size_t n;
  int rc;
};

static void list_add(struct list *l, const char *head, const char *name) {
  if (l->rc) {
    return;
  }
  if (l->n == 0) {
    l->rc = buf_printf(l->out, "%s%s: %s", l->out->len ? "; " : "", head, name);
  } else if (l->n < DIFF_NAMES_MAX) {
    l->rc = buf_printf(l->out, ", %s", name);
  }
  l->n++;
}

static int list_end(struct list *l) {
  if (!l->rc && l->n > DIFF_NAMES_MAX) {
    l->rc = buf_printf(l->out, " and %zu more", l->n - DIFF_NAMES_MAX);
  }
  return l->rc;
}

/* Appends "WHAT added: ..., WHAT removed: ..., WHAT changed: ...". */
static int diff_kind(const struct kind *k, const struct config *a,
                     const struct config *b, struct buf *out) {
  char head[64];
  static const char *const verbs[] = {"added", "removed", "changed"};
  for (int v = k->absent_is_default ? 2 : 0; v < 3; v++) {
    snprintf(head, sizeof head, "%s %s", k->what, verbs[v]);
    struct list l = {out, 0, IOCD_OK};
    /* added: in b, not in a; removed: in a, not in b; changed: in both
     * with another fingerprint. */
    const struct config *from = v == 1 ? a : b, *other = v == 1 ? b : a;
    size_t n = k->count(from);
    for (size_t i = 0; i < n; i++) {
      const char *name = k->name(from, i);
      if (!name) {
        continue;
      }
      size_t j = find(k, other, name);
      if (v < 2           ? j == SIZE_MAX
          : j != SIZE_MAX ? k->print(from, i) != k->print(other, j)
                          : k->absent_is_default) {
        list_add(&l, head, name);
      }
    }
    /* A section only the old configuration had went back to defaults. */
    for (size_t i = 0; v == 2 && k->absent_is_default && i < k->count(a); i++) {
      const char *name = k->name(a, i);
      if (name && find(k, b, name) == SIZE_MAX) {
        list_add(&l, head, name);
      }
    }
    int rc = list_end(&l);
    if (rc) {
      return rc;
    }
  }
  return IOCD_OK;
}

int config_diff(const struct config *old, const struct config *new_cfg,
                struct buf *out) {
  size_t start = out->len;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    struct buf part;
    buf_init(&part, 1 << 16);
    int rc = diff_kind(&kinds[i], old, new_cfg, &part);
    if (!rc && part.len) {
      rc = buf_printf(out, "%s%s", out->len > start ? "; " : "", part.data);
    }
    buf_cleanup(&part);
    if (rc) {
      return rc;
    }
  }
  return out->len > start ? IOCD_OK : buf_puts(out, "nothing changed");
}
