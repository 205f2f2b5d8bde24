/*
 * The route tree: Alertmanager's depth-first walk with "continue", the
 * settings children inherit, route and group keys, and the errors of a
 * tree that does not hold together.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "alerts/route.h"
#include "core/clock.h"

static struct config_matcher m_crit = {"severity", CONFIG_MATCH_EQ, "critical"};
static struct config_matcher m_feed = {"alertname", CONFIG_MATCH_EQ,
                                       "feed_silent"};
static struct config_matcher m_krong = {"district", CONFIG_MATCH_RE, "Krông.*"};
static char *gb_root[] = {"alertname", "district"};
static char *gb_feed[] = {"alertname"};
static char *gb_all[] = {"..."};
static char *mute[] = {"outside_working_time"};
static struct config_escalation esc[] = {{15 * 60000, "director"},
                                         {60 * 60000, "vice_chair"}};

static struct config_route child(char *receiver, struct config_matcher *m,
                                 bool cont) {
  return (struct config_route){
      .receiver = receiver,
      .matchers = m,
      .nmatchers = m ? 1 : 0,
      .cont = cont,
      .group_wait_ms = -1,
      .group_interval_ms = -1,
      .repeat_interval_ms = -1,
      .critical_any_time = -1,
  };
}

/* root (operators) -> [critical: vice_chair, continue]
 *                  -> [feed_silent: operators by alertname
 *                        -> [district=~Krông.*: wall]] */
static struct config_route tree(struct config_route kids[2],
                                struct config_route *grandkid) {
  kids[0] = child("vice_chair", &m_crit, true);
  kids[1] = child("operators", &m_feed, false);
  kids[1].group_by = gb_feed;
  kids[1].ngroup_by = 1;
  kids[1].group_by_set = true;
  kids[1].routes = grandkid;
  kids[1].nroutes = 1;
  *grandkid = child("wall", &m_krong, false);
  return (struct config_route){
      .receiver = "operators",
      .group_by = gb_root,
      .ngroup_by = 2,
      .group_by_set = true,
      .group_wait_ms = 30000,
      .group_interval_ms = 300000,
      .repeat_interval_ms = 4 * 3600000,
      .mute_time_intervals = mute,
      .nmute = 1,
      .mute_set = true,
      .critical_any_time = 1,
      .escalation = esc,
      .nescalation = 2,
      .escalation_set = true,
      .routes = kids,
      .nroutes = 2,
  };
}

static struct notice_labels lbl(const char *name, const char *district,
                                const char *sev) {
  struct notice_labels ls = {0};
  notice_labels_set(&ls, "alertname", name);
  notice_labels_set(&ls, "district", district);
  notice_labels_set(&ls, "severity", sev);
  return ls;
}

Test(route, walks_depth_first_honouring_continue) {
  struct config_route kids[2], gk;
  struct config_route root = tree(kids, &gk);
  struct iocd_err err = {{0}};
  struct route_tree *t = route_tree_new(&root, &err);
  cr_assert_not_null(t, "%s", err.msg);
  static const struct {
    const char *name, *district, *sev;
    const char *want[3]; /* receivers, in order */
  } cases[] = {
      /* continue on the critical route: the feed route too, and there
       * the grandchild for Krông districts */
      {"feed_silent", "Krông Búk", "critical", {"vice_chair", "wall"}},
      {"feed_silent", "Lắk", "critical", {"vice_chair", "operators"}},
      /* a critical alert of another rule stops at the vice chair */
      {"online_share_low", "Lắk", "critical", {"vice_chair"}},
      /* no child matches: the root itself */
      {"online_share_low", "Lắk", "warning", {"operators"}},
      /* the feed route with no matching grandchild: the feed route */
      {"feed_silent", "Ea Súp", "warning", {"operators"}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct notice_labels ls =
        lbl(cases[i].name, cases[i].district, cases[i].sev);
    const struct route *out[8];
    size_t n = route_match(t, &ls, out, 8);
    size_t want = 0;
    while (want < 3 && cases[i].want[want]) {
      want++;
    }
    cr_assert_eq(n, want, "case %zu: %zu routes", i, n);
    for (size_t k = 0; k < n; k++) {
      cr_assert_str_eq(out[k]->receiver, cases[i].want[k], "case %zu", i);
    }
    notice_labels_cleanup(&ls);
  }
  route_tree_free(t);
}

Test(route, children_inherit_what_they_do_not_set) {
  struct config_route kids[2], gk;
  struct config_route root = tree(kids, &gk);
  kids[0].critical_any_time = 0;
  kids[0].repeat_interval_ms = 3600000;
  gk.receiver = NULL;
  gk.group_wait_ms = 0;
  struct route_tree *t = route_tree_new(&root, NULL);
  cr_assert_not_null(t);
  cr_assert_eq(route_tree_size(t), 4);
  const struct route *r = route_tree_at(t, 0);
  const struct route *crit = route_tree_at(t, 1);
  const struct route *feed = route_tree_at(t, 2);
  const struct route *krong = route_tree_at(t, 3);
  cr_assert_eq(r->group_wait_ns, 30 * NS_PER_SEC);
  cr_assert_eq(crit->group_wait_ns, 30 * NS_PER_SEC);
  cr_assert_eq(crit->group_interval_ns, 300 * NS_PER_SEC);
  cr_assert_eq(crit->repeat_interval_ns, 3600 * NS_PER_SEC);
  cr_assert_eq(crit->ngroup_by, 2);
  cr_assert_str_eq(crit->group_by[1], "district");
  cr_assert_not(crit->critical_any_time);
  cr_assert(feed->critical_any_time);
  cr_assert_eq(crit->nmute, 1);
  cr_assert_str_eq(crit->mute[0], "outside_working_time");
  cr_assert_eq(crit->ntiers, 2);
  cr_assert_str_eq(crit->tiers[1].receiver, "vice_chair");
  cr_assert_eq(crit->tiers[0].after_ns, 15 * 60 * NS_PER_SEC);
  cr_assert_str_eq(krong->receiver, "operators", "the feed route's");
  cr_assert_eq(krong->ngroup_by, 1, "the feed route's group_by");
  cr_assert_eq(krong->group_wait_ns, 0, "0 is a value, not a default");
  route_tree_free(t);
}

Test(route, a_bare_root_takes_the_defaults) {
  struct config_route root = child("operators", NULL, false);
  struct route_tree *t = route_tree_new(&root, NULL);
  cr_assert_not_null(t);
  const struct route *r = route_tree_at(t, 0);
  cr_assert_eq(r->group_wait_ns, ROUTE_GROUP_WAIT_MS * NS_PER_MS);
  cr_assert_eq(r->group_interval_ns, ROUTE_GROUP_INTERVAL_MS * NS_PER_MS);
  cr_assert_eq(r->repeat_interval_ns, ROUTE_REPEAT_INTERVAL_MS * NS_PER_MS);
  cr_assert(r->critical_any_time);
  cr_assert_eq(r->ntiers + r->nmute + r->nactive + r->ngroup_by, 0);
  cr_assert_str_eq(r->key, "{}");
  route_tree_free(t);
}

Test(route, keys_name_the_matcher_path_and_stay_unique) {
  struct config_route kids[3], gk;
  struct config_route root = tree(kids, &gk);
  kids[2] = child("wall", &m_crit, false);
  root.nroutes = 3;
  struct route_tree *t = route_tree_new(&root, NULL);
  cr_assert_not_null(t);
  cr_assert_str_eq(route_tree_at(t, 0)->key, "{}");
  cr_assert_str_eq(route_tree_at(t, 1)->key, "{}/{severity=\"critical\"}");
  cr_assert_str_eq(route_tree_at(t, 3)->key,
                   "{}/{alertname=\"feed_silent\"}/{district=~\"Krông.*\"}");
  cr_assert_str_eq(route_tree_at(t, 4)->key, "{}/{severity=\"critical\"}/2");
  cr_assert_eq(route_find(t, "{}/{severity=\"critical\"}/2"),
               route_tree_at(t, 4));
  cr_assert_null(route_find(t, "{}/{x=\"y\"}"));
  route_tree_free(t);
}

Test(route, group_labels_and_keys) {
  struct config_route kids[2], gk;
  struct config_route root = tree(kids, &gk);
  kids[0].group_by = gb_all;
  kids[0].ngroup_by = 1;
  kids[0].group_by_set = true;
  struct route_tree *t = route_tree_new(&root, NULL);
  struct notice_labels ls = lbl("online_share_low", "Krông Búk", "critical");
  struct notice_labels g = {0};
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(route_group_labels(route_tree_at(t, 0), &ls, &g), IOCD_OK);
  cr_assert_eq(g.n, 2);
  cr_assert_eq(route_group_key(route_tree_at(t, 0), &g, &b), IOCD_OK);
  cr_assert_str_eq(b.data,
                   "{}:{alertname=\"online_share_low\","
                   "district=\"Krông Búk\"}");
  notice_labels_cleanup(&g);
  buf_reset(&b);
  cr_assert(route_tree_at(t, 1)->group_all);
  cr_assert_eq(route_group_labels(route_tree_at(t, 1), &ls, &g), IOCD_OK);
  cr_assert_eq(g.n, 3, "\"...\" groups by every label");
  notice_labels_cleanup(&g);
  /* A group_by label the alert lacks is left out. */
  struct notice_labels nod = {0};
  notice_labels_set(&nod, "alertname", "iocd_broker_unreachable");
  cr_assert_eq(route_group_labels(route_tree_at(t, 0), &nod, &g), IOCD_OK);
  cr_assert_eq(g.n, 1);
  notice_labels_cleanup(&g);
  notice_labels_cleanup(&nod);
  notice_labels_cleanup(&ls);
  buf_cleanup(&b);
  route_tree_free(t);
}

Test(route, refuses_a_tree_that_does_not_hold_together) {
  struct config_route kids[2], gk;
  struct config_route root = tree(kids, &gk);
  struct iocd_err err = {{0}};
  root.receiver = NULL;
  cr_assert_null(route_tree_new(&root, &err));
  cr_assert_str_eq(err.msg, "route: no receiver");
  root.receiver = "operators";
  struct config_matcher bad = {"district", CONFIG_MATCH_RE, "(Krông"};
  gk.matchers = &bad;
  cr_assert_null(route_tree_new(&root, &err));
  cr_assert(strncmp(err.msg,
                    "route.routes[1].routes[0]: matchers[0]: district=~(Krông",
                    57) == 0,
            "%s", err.msg);
  gk.matchers = &m_krong;
  struct config_escalation down[] = {{60 * 60000, "a"}, {15 * 60000, "b"}};
  kids[1].escalation = down;
  kids[1].nescalation = 2;
  kids[1].escalation_set = true;
  cr_assert_null(route_tree_new(&root, &err));
  cr_assert_str_eq(err.msg,
                   "route.routes[1]: escalation[1]: `after` must be positive "
                   "and longer than the tier before");
}
