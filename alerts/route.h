/*
 * The notification route tree, compiled from config (struct config_route)
 * with every inherited setting resolved, and Alertmanager's way of walking
 * it: depth first; a node matches when all its matchers do; its children
 * are tried in order and the first one that matches stops its later
 * siblings unless that child says "continue"; when no child matches, the
 * node itself is the match. The root matches everything.
 *
 * Each route has a key made of its matchers and those of its ancestors,
 * "{}/{severity=\"critical\"}", unique in the tree (a sibling repeating an
 * earlier one's matchers gets "/<index>" appended), which names its groups
 * and lets a reload find the same route in the new tree.
 *
 * Pure: no I/O, no clock.
 */
#ifndef IOCD_ALERTS_ROUTE_H
#define IOCD_ALERTS_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alerts/match.h"
#include "alerts/notice.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"

/* Defaults of the root route. */
#define ROUTE_GROUP_WAIT_MS INT64_C(30000)
#define ROUTE_GROUP_INTERVAL_MS INT64_C(300000)
#define ROUTE_REPEAT_INTERVAL_MS INT64_C(14400000)

/* An escalation tier: past after_ns of firing without acknowledgement,
 * notify receiver. */
struct route_tier {
  int64_t after_ns;
  char *receiver;
};

/* One compiled route; everything resolved (no "the parent's" left), owned
 * by the tree and read-only for its users. */
struct route {
  char *key;
  size_t index; /* in pre-order, 0 for the root */
  struct match_set matchers;
  bool cont;
  char *receiver;
  char **group_by; /* label names; ignored when group_all */
  size_t ngroup_by;
  bool group_all; /* group_by ["..."]: every label */
  int64_t group_wait_ns;
  int64_t group_interval_ns;
  int64_t repeat_interval_ns;
  char **mute; /* time interval names */
  size_t nmute;
  char **active; /* time interval names; none: always active */
  size_t nactive;
  bool critical_any_time;   /* severity=critical passes mute intervals */
  struct route_tier *tiers; /* ascending after_ns */
  size_t ntiers;
  struct route *children;
  size_t nchildren;
};

struct route_tree;

/* Compiles the tree under root (borrowed, copied). Inheritance: a NULL
 * receiver, an unset group_by, mute, active or escalation list, a negative
 * group_wait, a group_interval or repeat_interval <= 0 and a negative
 * critical_any_time take the parent's; at the root they take the defaults
 * (30 s, 5 min, 4 h, critical passes). Returns NULL with err set when the
 * root has no receiver, a matcher's regex does not compile, a tier's
 * `after` is not positive or not ascending, or memory runs out. Free with
 * route_tree_free. */
struct route_tree *route_tree_new(const struct config_route *root,
                                  struct iocd_err *err);

/* Frees t; NULL is allowed. */
void route_tree_free(struct route_tree *t);

/* The number of routes, and route i in pre-order (0 is the root). */
size_t route_tree_size(const struct route_tree *t);
const struct route *route_tree_at(const struct route_tree *t, size_t i);

/* The route whose key is key; NULL when none. */
const struct route *route_find(const struct route_tree *t, const char *key);

/* The routes that take an alert with labels ls (borrowed), in order:
 * writes up to cap of them to out and returns how many there are (at
 * least 1, the root when nothing else matches; never more than
 * route_tree_size). */
size_t route_match(const struct route_tree *t, const struct notice_labels *ls,
                   const struct route **out, size_t cap);

/* The labels of ls that r groups by, into *out ({0} or cleaned first):
 * those of r->group_by that ls has, or all of ls when r->group_all.
 * Returns IOCD_OK or IOCD_ENOMEM. */
int route_group_labels(const struct route *r, const struct notice_labels *ls,
                       struct notice_labels *out);

/* Appends the key of r's group with labels group:
 * "<route key>:{district=\"Krông Búk\"}". IOCD_OK, or an error of buf. */
int route_group_key(const struct route *r, const struct notice_labels *group,
                    struct buf *out);

#endif
