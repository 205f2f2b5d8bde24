/*
 * The dispatcher on a virtual clock: the configuration of docs/alerts.md
 * built by hand (operators at the root, critical alerts also to the vice
 * chair, feed_silent grouped by alertname alone, muted outside working
 * time, escalation to the director after 15 min and the vice chair after
 * 1 h), alerts of Đắk Lắk's districts, and what comes out when, checked by
 * kind, receiver, time and content. Also: alerts restored at a restart,
 * what a resolved notice keeps of its firing episode, silences' starts and
 * ends as wake-ups, and the configurations the loader accepts.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/dispatch.h"
#include "alerts/notify.h"
#include "core/buf.h"
#include "core/clock.h"
#include "rules/calendar.h"

#define SEC(n) ((int64_t)(n)*NS_PER_SEC)
#undef MIN /* <sys/param.h>'s, through <uv.h> */
#define MIN(n) ((int64_t)(n)*60 * NS_PER_SEC)
#define HOUR(n) ((int64_t)(n)*3600 * NS_PER_SEC)

/* An instant given in local time at +07:00. */
static int64_t vn(int y, int mo, int d, int h, int mi) {
  int64_t day = calendar_day_from_ymd(y, mo, d);
  return ((day * 86400) + h * 3600 + mi * 60 - 7 * 3600) * NS_PER_SEC;
}

/* Monday 2026-12-07 09:00, working time. */
#define MON9 vn(2026, 12, 7, 9, 0)

static struct {
  struct config_notify cfg;
  struct config_receiver recv[4];
  struct config_route routes[2];
  struct config_matcher m_crit, m_feed;
  char *gb_root[2];
  char *gb_feed[1];
  char *mute[1];
  struct config_escalation esc[2];
  struct config_inhibit inhibit[3];
  struct config_matcher inh_m[6];
  char *inh_eq0[1], *inh_eq2[2];
  struct config_minutes digest_at[1];
  struct calendar *cal;
  struct dispatch *d;
  struct notice **out;
  size_t nout, capout;
  struct buf audit;
  int64_t now;
  uint64_t first_id;
} F;

static void on_emit(void *ud, struct notice *n) {
  (void)ud;
  if (F.nout == F.capout) {
    F.capout = F.capout ? 2 * F.capout : 64;
    F.out = realloc(F.out, F.capout * sizeof *F.out);
    cr_assert_not_null(F.out);
  }
  F.out[F.nout++] = n;
}

static void on_audit(void *ud, const char *line, size_t len) {
  (void)ud;
  buf_append(&F.audit, line, len);
}

static void receiver(size_t i, const char *name) {
  F.recv[i].name = (char *)name;
  F.recv[i].send_resolved = true;
  F.recv[i].rate_per_hour = -1;
}

static struct config_matcher matcher(const char *name, enum config_match_op op,
                                     const char *value) {
  return (struct config_matcher){(char *)name, op, (char *)value};
}

/* The configuration of docs/alerts.md, without inhibit rules. */
static void fx_init(void) {
  memset(&F, 0, sizeof F);
  buf_init(&F.audit, 1 << 20);
  receiver(0, "operators");
  receiver(1, "director");
  receiver(2, "vice_chair");
  receiver(3, "wall");
  F.cfg.receivers = F.recv;
  F.cfg.nreceivers = 4;

  struct config_route *root = &F.cfg.route;
  F.gb_root[0] = "alertname";
  F.gb_root[1] = "district";
  F.mute[0] = "outside_working_time";
  F.esc[0] = (struct config_escalation){15 * 60000, "director"};
  F.esc[1] = (struct config_escalation){60 * 60000, "vice_chair"};
  *root = (struct config_route){
      .receiver = "operators",
      .group_by = F.gb_root,
      .ngroup_by = 2,
      .group_by_set = true,
      .group_wait_ms = 30000,
      .group_interval_ms = 300000,
      .repeat_interval_ms = 4 * 3600000,
      .mute_time_intervals = F.mute,
      .nmute = 1,
      .mute_set = true,
      .critical_any_time = 1,
      .escalation = F.esc,
      .nescalation = 2,
      .escalation_set = true,
      .routes = F.routes,
      .nroutes = 2,
  };
  F.m_crit = matcher("severity", CONFIG_MATCH_EQ, "critical");
  F.m_feed = matcher("alertname", CONFIG_MATCH_EQ, "feed_silent");
  F.gb_feed[0] = "alertname";
  F.routes[0] = (struct config_route){
      .receiver = "vice_chair",
      .matchers = &F.m_crit,
      .nmatchers = 1,
      .cont = true,
      .group_wait_ms = -1,
      .group_interval_ms = -1,
      .repeat_interval_ms = -1,
      .critical_any_time = -1,
  };
  F.routes[1] = (struct config_route){
      .receiver = "operators",
      .matchers = &F.m_feed,
      .nmatchers = 1,
      .group_by = F.gb_feed,
      .ngroup_by = 1,
      .group_by_set = true,
      .group_wait_ms = -1,
      .group_interval_ms = -1,
      .repeat_interval_ms = -1,
      .critical_any_time = -1,
  };
  F.cfg.has_route = true;
  F.cfg.flap_transitions = 4;
  F.cfg.flap_window_ms = 3600000;
}

/* The three inhibit rules of docs/alerts.md. */
static void fx_inhibit(void) {
  F.inh_m[0] = matcher("alertname", CONFIG_MATCH_EQ, "feed_silent");
  F.inh_m[1] = matcher("alertname", CONFIG_MATCH_RE, "online_share.*");
  F.inh_m[2] = matcher("alertname", CONFIG_MATCH_EQ, "iocd_broker_unreachable");
  F.inh_m[3] = matcher("alertname", CONFIG_MATCH_EQ, "feed_silent");
  F.inh_m[4] = matcher("severity", CONFIG_MATCH_EQ, "critical");
  F.inh_m[5] = matcher("severity", CONFIG_MATCH_EQ, "warning");
  F.inh_eq0[0] = "district";
  F.inh_eq2[0] = "alertname";
  F.inh_eq2[1] = "district";
  F.inhibit[0] = (struct config_inhibit){.source = &F.inh_m[0],
                                         .nsource = 1,
                                         .target = &F.inh_m[1],
                                         .ntarget = 1,
                                         .equal = F.inh_eq0,
                                         .nequal = 1};
  F.inhibit[1] = (struct config_inhibit){
      .source = &F.inh_m[2], .nsource = 1, .target = &F.inh_m[3], .ntarget = 1};
  F.inhibit[2] = (struct config_inhibit){.source = &F.inh_m[4],
                                         .nsource = 1,
                                         .target = &F.inh_m[5],
                                         .ntarget = 1,
                                         .equal = F.inh_eq2,
                                         .nequal = 2};
  F.cfg.inhibit = F.inhibit;
  F.cfg.ninhibit = 3;
}

/* Tết 2026 (2026-02-14..22) off, Saturday 2026-12-12 a make-up day. */
static struct calendar *fx_calendar(void) {
  static struct cal_dates holidays[1];
  static struct cal_dates workdays[1];
  cr_assert_eq(
      calendar_parse_dates("2026-02-14..2026-02-22", &holidays[0], NULL),
      IOCD_OK);
  cr_assert_eq(calendar_parse_dates("2026-12-12", &workdays[0], NULL), IOCD_OK);
  struct calendar_def def = {
      .holidays = holidays,
      .nholidays = 1,
      .workdays = workdays,
      .nworkdays = 1,
  };
  struct iocd_err err = {{0}};
  struct calendar *c = calendar_new(&def, &err);
  cr_assert_not_null(c, "%s", err.msg);
  return c;
}

static void fx_start(int64_t now) {
  F.cal = fx_calendar();
  struct dispatch_opts o = {
      .cfg = &F.cfg,
      .cal = F.cal,
      .emit = on_emit,
      .audit = on_audit,
      .first_id = F.first_id,
      .now_ns = now,
  };
  struct iocd_err err = {{0}};
  F.d = dispatch_new(&o, &err);
  cr_assert_not_null(F.d, "%s", err.msg);
  F.now = now;
}

static void fx_fini(void) {
  dispatch_free(F.d);
  calendar_free(F.cal);
  for (size_t i = 0; i < F.nout; i++) {
    notice_free(F.out[i]);
  }
  free(F.out);
  buf_cleanup(&F.audit);
}

TestSuite(dispatch, .init = fx_init, .fini = fx_fini);

/* Tells the dispatcher about an alert at F.now; extra is "name=value" or
 * NULL. Returns its id. */
static uint64_t tell(const char *name, const char *district, const char *sev,
                     const char *extra, enum notice_status st) {
  struct notice_alert a = {0};
  cr_assert_eq(notice_labels_set(&a.labels, "alertname", name), IOCD_OK);
  if (district) {
    notice_labels_set(&a.labels, "district", district);
  }
  notice_labels_set(&a.labels, "severity", sev);
  if (extra) {
    char k[64];
    const char *eq = strchr(extra, '=');
    snprintf(k, sizeof k, "%.*s", (int)(eq - extra), extra);
    notice_labels_set(&a.labels, k, eq + 1);
  }
  a.status = st;
  a.starts_ns = st == NOTICE_FIRING ? F.now : 0;
  a.ends_ns = st == NOTICE_RESOLVED ? F.now : 0;
  uint64_t id = a.fingerprint = notice_labels_fingerprint(&a.labels);
  cr_assert_eq(dispatch_alert(F.d, &a, F.now), IOCD_OK);
  notice_alert_cleanup(&a);
  return id;
}

static uint64_t fire(const char *name, const char *district, const char *sev) {
  return tell(name, district, sev, NULL, NOTICE_FIRING);
}

static void resolve(const char *name, const char *district, const char *sev) {
  tell(name, district, sev, NULL, NOTICE_RESOLVED);
}

/* Runs the clock to t, ticking at every wake-up on the way. */
static void run_until(int64_t t) {
  for (int guard = 0;; guard++) {
    cr_assert_lt(guard, 200000,
                 "the dispatcher keeps waking at the same "
                 "instant");
    int64_t w = dispatch_next_wake(F.d);
    if (w > t) {
      break;
    }
    if (w > F.now) {
      F.now = w;
    }
    dispatch_tick(F.d, F.now);
  }
  F.now = t;
}

static bool recv_is(const struct notice *n, const char *receiver) {
  return !receiver || strcmp(n->receiver, receiver) == 0;
}

static size_t count(enum notice_kind k, const char *receiver) {
  size_t c = 0;
  for (size_t i = 0; i < F.nout; i++) {
    c += F.out[i]->kind == k && recv_is(F.out[i], receiver);
  }
  return c;
}

static const struct notice *nth(enum notice_kind k, const char *receiver,
                                size_t idx) {
  for (size_t i = 0; i < F.nout; i++) {
    if (F.out[i]->kind == k && recv_is(F.out[i], receiver) && idx-- == 0) {
      return F.out[i];
    }
  }
  cr_assert_fail("no notice #%zu of kind %s to %s", idx, notice_kind_name(k),
                 receiver ? receiver : "anyone");
  abort();
}

/* The alert of n with these labels, or NULL. */
static const struct notice_alert *in(const struct notice *n, const char *name,
                                     const char *district) {
  for (size_t i = 0; i < n->nalerts; i++) {
    const struct notice_alert *a = &n->alerts[i];
    const char *an = notice_label_get(&a->labels, "alertname");
    const char *di = notice_label_get(&a->labels, "district");
    if (an && strcmp(an, name) == 0 &&
        (!district || (di && strcmp(di, district) == 0))) {
      return a;
    }
  }
  return NULL;
}

/* The alert of n with these labels, which must be there. */
static const struct notice_alert *get(const struct notice *n, const char *name,
                                      const char *district) {
  const struct notice_alert *a = in(n, name, district);
  if (!a) {
    cr_assert_fail("%s of %s is not in the notice", name,
                   district ? district : "-");
    abort();
  }
  return a;
}

/* Whether any alerts notice told anyone that name/district fires. */
static bool notified_firing(const char *name, const char *district) {
  for (size_t i = 0; i < F.nout; i++) {
    const struct notice_alert *a =
        F.out[i]->kind == NOTICE_ALERTS ? in(F.out[i], name, district) : NULL;
    if (a && a->status == NOTICE_FIRING) {
      return true;
    }
  }
  return false;
}

/* ---- grouping ------------------------------------------------------------ */

Test(dispatch, group_wait_batches_two_districts_into_one_notice) {
  F.cfg.route.ngroup_by = 1; /* alertname alone */
  F.cfg.route.escalation_set = false;
  F.cfg.route.nescalation = 0;
  fx_start(MON9);
  fire("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + SEC(10));
  fire("online_share_low", "Buôn Đôn", "warning");
  run_until(MON9 + SEC(29));
  cr_assert_eq(F.nout, 0, "nothing before group_wait");
  run_until(MON9 + SEC(30));
  cr_assert_eq(F.nout, 1);
  const struct notice *n = F.out[0];
  cr_assert_eq(n->kind, NOTICE_ALERTS);
  cr_assert_str_eq(n->receiver, "operators");
  cr_assert_eq(n->created_ns, MON9 + SEC(30));
  cr_assert_eq(n->nalerts, 2);
  cr_assert_not_null(in(n, "online_share_low", "Krông Búk"));
  cr_assert_not_null(in(n, "online_share_low", "Buôn Đôn"));
  cr_assert_str_eq(n->group_key, "{}:{alertname=\"online_share_low\"}");
  cr_assert_str_eq(notice_label_get(&n->group_labels, "alertname"),
                   "online_share_low");
  cr_assert_eq(n->group_labels.n, 1);
}

Test(dispatch, group_interval_batches_later_changes) {
  F.cfg.route.ngroup_by = 1;
  F.cfg.route.nescalation = 0;
  fx_start(MON9);
  fire("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + MIN(1));
  cr_assert_eq(F.nout, 1);
  fire("online_share_low", "Ea Súp", "warning");
  run_until(MON9 + MIN(2));
  resolve("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + SEC(30) + MIN(5) - SEC(1));
  cr_assert_eq(F.nout, 1, "changes wait for group_interval");
  run_until(MON9 + SEC(30) + MIN(5));
  cr_assert_eq(F.nout, 2);
  const struct notice *n = F.out[1];
  cr_assert_eq(n->created_ns, MON9 + SEC(30) + MIN(5));
  cr_assert_eq(n->nalerts, 2);
  cr_assert_eq(get(n, "online_share_low", "Ea Súp")->status, NOTICE_FIRING);
  cr_assert_eq(get(n, "online_share_low", "Krông Búk")->status,
               NOTICE_RESOLVED);
  /* Nothing changed since: no more notices until the repeat. */
  run_until(MON9 + HOUR(1));
  cr_assert_eq(F.nout, 2);
}

Test(dispatch, repeat_interval_repeats_the_unchanged_firing_set) {
  F.cfg.route.nescalation = 0;
  F.cfg.route.nmute = 0; /* 4 h from 09:00 is lunch time */
  fx_start(MON9);
  fire("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + HOUR(4));
  cr_assert_eq(F.nout, 1);
  run_until(MON9 + SEC(30) + HOUR(4));
  cr_assert_eq(F.nout, 2);
  cr_assert_eq(F.out[1]->created_ns, MON9 + SEC(30) + HOUR(4));
  cr_assert_eq(F.out[1]->nalerts, 1);
  cr_assert_eq(F.out[1]->alerts[0].status, NOTICE_FIRING);
}

Test(dispatch, a_resolved_alert_never_notified_is_not_sent) {
  fx_start(MON9);
  fire("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + SEC(10));
  resolve("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + HOUR(2));
  cr_assert_eq(F.nout, 0);
  struct dispatch_stats st;
  dispatch_get_stats(F.d, &st);
  cr_assert_eq(st.groups, 0, "the empty group is gone");
}

Test(dispatch, continue_sends_to_two_receivers) {
  fx_start(MON9);
  fire("feed_silent", "Krông Búk", "critical");
  run_until(MON9 + MIN(1));
  cr_assert_eq(count(NOTICE_ALERTS, "vice_chair"), 1);
  cr_assert_eq(count(NOTICE_ALERTS, "operators"), 1);
  cr_assert_str_eq(nth(NOTICE_ALERTS, "vice_chair", 0)->group_key,
                   "{}/{severity=\"critical\"}:{alertname=\"feed_silent\","
                   "district=\"Krông Búk\"}");
  cr_assert_str_eq(nth(NOTICE_ALERTS, "operators", 0)->group_key,
                   "{}/{alertname=\"feed_silent\"}:{alertname=\"feed_"
                   "silent\"}");
  /* A critical alert of another rule stops at the vice chair's route. */
  fire("online_share_low", "Ea Súp", "critical");
  run_until(MON9 + MIN(10));
  cr_assert_eq(count(NOTICE_ALERTS, "vice_chair"), 2);
  cr_assert_eq(count(NOTICE_ALERTS, "operators"), 1);
}

Test(dispatch, notice_ids_count_from_the_seed) {
  F.first_id = 500;
  fx_start(MON9);
  fire("feed_silent", "Krông Búk", "critical");
  run_until(MON9 + MIN(1));
  cr_assert_eq(F.nout, 2);
  cr_assert_eq(F.out[0]->id, 500);
  cr_assert_eq(F.out[1]->id, 501);
  cr_assert_eq(dispatch_next_id(F.d), 502);
}

/* ---- inhibition and silences --------------------------------------------- */

Test(dispatch, feed_silent_inhibits_online_share_of_its_district_only) {
  fx_inhibit();
  fx_start(MON9);
  fire("feed_silent", "Krông Búk", "warning");
  fire("online_share_low", "Krông Búk", "warning");
  fire("online_share_low", "Buôn Đôn", "warning");
  run_until(MON9 + MIN(1));
  cr_assert(notified_firing("feed_silent", "Krông Búk"));
  cr_assert(notified_firing("online_share_low", "Buôn Đôn"));
  cr_assert_not(notified_firing("online_share_low", "Krông Búk"));
  /* The feed is back: the share alert of Krông Búk is not inhibited any
   * more and goes out at its group's next flush. */
  resolve("feed_silent", "Krông Búk", "warning");
  run_until(MON9 + MIN(6));
  cr_assert(notified_firing("online_share_low", "Krông Búk"));
}

Test(dispatch, the_broker_alert_inhibits_every_feed_silent) {
  fx_inhibit();
  fx_start(MON9);
  fire("iocd_broker_unreachable", NULL, "warning");
  fire("feed_silent", "Krông Búk", "warning");
  fire("feed_silent", "Lắk", "warning");
  run_until(MON9 + MIN(1));
  cr_assert(notified_firing("iocd_broker_unreachable", NULL));
  cr_assert_not(notified_firing("feed_silent", NULL));
}

Test(dispatch, critical_inhibits_warning_of_the_same_instance) {
  fx_inhibit();
  fx_start(MON9);
  tell("online_share_low", "Krông Búk", "critical", "system=igate",
       NOTICE_FIRING);
  tell("online_share_low", "Krông Búk", "warning", "system=vneid",
       NOTICE_FIRING);
  tell("online_share_low", "Ea Súp", "warning", "system=vneid", NOTICE_FIRING);
  run_until(MON9 + MIN(1));
  cr_assert_eq(count(NOTICE_ALERTS, "vice_chair"), 1);
  cr_assert_eq(count(NOTICE_ALERTS, "operators"), 1);
  const struct notice *ops = nth(NOTICE_ALERTS, "operators", 0);
  cr_assert_eq(ops->nalerts, 1);
  cr_assert_not_null(in(ops, "online_share_low", "Ea Súp"));
}

Test(dispatch, silence_mutes_but_a_notified_alert_still_resolves) {
  fx_start(MON9);
  fire("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + MIN(1));
  cr_assert_eq(F.nout, 1);
  struct config_matcher m = matcher("district", CONFIG_MATCH_EQ, "Krông Búk");
  struct silence_spec spec = {
      .matchers = &m,
      .nmatchers = 1,
      .starts_ns = F.now,
      .ends_ns = F.now + HOUR(2),
      .created_by = "admin",
      .comment = "bảo trì",
  };
  char id[17];
  struct iocd_err err = {{0}};
  cr_assert_eq(
      silence_add(dispatch_silences(F.d), &spec, 0x1234, F.now, id, &err),
      IOCD_OK, "%s", err.msg);
  cr_assert_str_eq(id, "0000000000001234");
  fire("feed_silent", "Krông Búk", "warning");
  fire("online_share_low", "Ea Súp", "warning");
  run_until(MON9 + MIN(20));
  cr_assert_not(notified_firing("feed_silent", "Krông Búk"));
  cr_assert(notified_firing("online_share_low", "Ea Súp"));
  resolve("online_share_low", "Krông Búk", "warning");
  resolve("feed_silent", "Krông Búk", "warning");
  size_t before = F.nout;
  run_until(MON9 + MIN(40));
  size_t resolved = 0;
  for (size_t i = before; i < F.nout; i++) {
    const struct notice_alert *a =
        in(F.out[i], "online_share_low", "Krông Búk");
    resolved += a && a->status == NOTICE_RESOLVED;
    cr_assert_null(in(F.out[i], "feed_silent", NULL),
                   "never notified firing: no resolved either");
  }
  cr_assert_eq(resolved, 1);
}

Test(dispatch, expired_silences_are_collected) {
  fx_start(MON9);
  struct config_matcher m = matcher("district", CONFIG_MATCH_EQ, "Lắk");
  struct silence_spec spec = {.matchers = &m,
                              .nmatchers = 1,
                              .starts_ns = MON9,
                              .ends_ns = MON9 + HOUR(1)};
  struct silence_set *s = dispatch_silences(F.d);
  cr_assert_eq(silence_add(s, &spec, 7, MON9, NULL, NULL), IOCD_OK);
  dispatch_tick(F.d, MON9 + HOUR(2));
  cr_assert_eq(silence_count(s), 1, "expired, still listed");
  cr_assert_eq(silence_state_at(silence_at(s, 0), MON9 + HOUR(2)),
               SILENCE_EXPIRED);
  dispatch_tick(F.d, MON9 + HOUR(1) + 5 * HOUR(24) + SEC(1));
  cr_assert_eq(silence_count(s), 0);
}

/* ---- acknowledgement and escalation -------------------------------------- */

Test(dispatch, escalates_to_tier_1_after_15_min_and_tier_2_after_60) {
  fx_start(MON9);
  fire("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + MIN(15) - SEC(1));
  cr_assert_eq(count(NOTICE_ESCALATION, NULL), 0);
  run_until(MON9 + MIN(15));
  cr_assert_eq(count(NOTICE_ESCALATION, NULL), 1);
  const struct notice *t1 = nth(NOTICE_ESCALATION, NULL, 0);
  cr_assert_str_eq(t1->receiver, "director");
  cr_assert_eq(t1->tier, 1);
  cr_assert_eq(t1->created_ns, MON9 + MIN(15));
  cr_assert_not_null(in(t1, "online_share_low", "Krông Búk"));
  run_until(MON9 + MIN(60));
  cr_assert_eq(count(NOTICE_ESCALATION, NULL), 2);
  const struct notice *t2 = nth(NOTICE_ESCALATION, NULL, 1);
  cr_assert_str_eq(t2->receiver, "vice_chair");
  cr_assert_eq(t2->tier, 2);
  cr_assert_eq(t2->created_ns, MON9 + MIN(60));
  run_until(MON9 + HOUR(3));
  cr_assert_eq(count(NOTICE_ESCALATION, NULL), 2, "no tier 3");
}

Test(dispatch, ack_stops_repeat_and_escalation) {
  F.cfg.route.nmute = 0; /* it runs into the evening */
  fx_start(MON9);
  uint64_t id = fire("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + MIN(5));
  cr_assert_eq(
      dispatch_ack(F.d, id, "an.nguyen", "ops-duty", "đang xử lý", F.now),
      IOCD_OK);
  cr_assert_not_null(strstr(F.audit.data, "\"action\":\"ack\""));
  cr_assert_not_null(strstr(F.audit.data, "\"by\":\"an.nguyen\""));
  cr_assert_not_null(strstr(F.audit.data, "\"principal\":\"ops-duty\""));
  run_until(MON9 + HOUR(9));
  cr_assert_eq(count(NOTICE_ALERTS, NULL), 1, "no repeat after the ack");
  cr_assert_eq(count(NOTICE_ESCALATION, NULL), 0, "no escalation");
  /* Taken back: the repeat comes at the next flush past repeat_interval. */
  cr_assert_eq(dispatch_unack(F.d, id, "an.nguyen", "ops-duty", NULL, F.now),
               IOCD_OK);
  run_until(MON9 + HOUR(9) + MIN(5));
  cr_assert_eq(count(NOTICE_ALERTS, NULL), 2);
  cr_assert_eq(count(NOTICE_ESCALATION, NULL), 2,
               "both tiers were due long ago");
}

Test(dispatch, an_ack_is_shown_in_later_notices_and_ends_at_resolve) {
  F.cfg.route.ngroup_by = 1;
  fx_start(MON9);
  uint64_t id = fire("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + MIN(1));
  cr_assert_eq(dispatch_ack(F.d, id, "an.nguyen", "ops-duty", "ok", F.now),
               IOCD_OK);
  fire("online_share_low", "Ea Súp", "warning");
  run_until(MON9 + MIN(6));
  cr_assert_eq(count(NOTICE_ALERTS, NULL), 2);
  const struct notice *n = nth(NOTICE_ALERTS, NULL, 1);
  const struct notice_alert *a = get(n, "online_share_low", "Krông Búk");
  cr_assert_str_eq(a->acked_by, "an.nguyen");
  cr_assert_str_eq(a->ack_comment, "ok");
  cr_assert_eq(a->acked_ns, MON9 + MIN(1));
  cr_assert_null(get(n, "online_share_low", "Ea Súp")->acked_by);
  resolve("online_share_low", "Krông Búk", "warning");
  cr_assert_null(ack_find(dispatch_acks(F.d), id));
  cr_assert_not_null(strstr(F.audit.data, "\"action\":\"expire\""));
  cr_assert_eq(dispatch_ack(F.d, id, "an.nguyen", "ops-duty", NULL, F.now),
               IOCD_ESTATE);
  cr_assert_eq(dispatch_ack(F.d, 42, "an.nguyen", "ops-duty", NULL, F.now),
               IOCD_ENOTFOUND);
  cr_assert_eq(dispatch_unack(F.d, id, "an.nguyen", "ops-duty", NULL, F.now),
               IOCD_ENOTFOUND);
}

/* ---- mute intervals on the working calendar ------------------------------ */

Test(dispatch, a_warning_at_23h_is_muted_until_0730_the_next_working_day) {
  int64_t t = vn(2026, 12, 7, 23, 0);
  fx_start(t);
  fire("online_share_low", "Krông Búk", "warning");
  run_until(vn(2026, 12, 8, 7, 29));
  cr_assert_eq(F.nout, 0);
  run_until(vn(2026, 12, 8, 7, 30));
  cr_assert_eq(count(NOTICE_ALERTS, "operators"), 1);
  cr_assert_eq(nth(NOTICE_ALERTS, "operators", 0)->created_ns,
               vn(2026, 12, 8, 7, 30));
  /* Escalation counts real time: both tiers fell due in the night and go
   * out when the mute ends. */
  cr_assert_eq(count(NOTICE_ESCALATION, "director"), 1);
  cr_assert_eq(count(NOTICE_ESCALATION, "vice_chair"), 1);
  cr_assert_eq(nth(NOTICE_ESCALATION, "director", 0)->created_ns,
               vn(2026, 12, 8, 7, 30));
}

Test(dispatch, a_critical_at_23h_passes) {
  int64_t t = vn(2026, 12, 7, 23, 0);
  fx_start(t);
  fire("feed_silent", "Krông Búk", "critical");
  run_until(t + SEC(30));
  cr_assert_eq(count(NOTICE_ALERTS, "vice_chair"), 1);
  cr_assert_eq(count(NOTICE_ALERTS, "operators"), 1);
  cr_assert_eq(nth(NOTICE_ALERTS, "vice_chair", 0)->created_ns, t + SEC(30));
  run_until(t + MIN(15));
  cr_assert_eq(count(NOTICE_ESCALATION, "director"), 1,
               "at night too, and once though the alert is in two groups");
}

Test(dispatch, a_warning_during_tet_waits_for_the_first_working_day) {
  int64_t t = vn(2026, 2, 16, 9, 0); /* a Monday, inside Tết */
  F.cfg.route.nescalation = 0;
  fx_start(t);
  fire("online_share_low", "Krông Búk", "warning");
  run_until(vn(2026, 2, 23, 7, 29));
  cr_assert_eq(count(NOTICE_ALERTS, NULL), 0);
  run_until(vn(2026, 2, 23, 7, 30));
  cr_assert_eq(count(NOTICE_ALERTS, NULL), 1);
  cr_assert_eq(nth(NOTICE_ALERTS, NULL, 0)->created_ns, vn(2026, 2, 23, 7, 30));
}

Test(dispatch, a_make_up_saturday_is_a_working_day) {
  int64_t t = vn(2026, 12, 12, 9, 0);
  fx_start(t);
  fire("online_share_low", "Krông Búk", "warning");
  run_until(t + MIN(1));
  cr_assert_eq(count(NOTICE_ALERTS, NULL), 1);
  /* The next Saturday is a weekend day: Monday 07:30. */
  int64_t s = vn(2026, 12, 19, 9, 0);
  run_until(s);
  fire("online_share_low", "Ea Súp", "warning");
  run_until(vn(2026, 12, 21, 7, 29));
  cr_assert_not(notified_firing("online_share_low", "Ea Súp"));
  run_until(vn(2026, 12, 21, 7, 30));
  cr_assert(notified_firing("online_share_low", "Ea Súp"));
}

/* ---- flapping, storms, the digest ---------------------------------------- */

Test(dispatch, flapping_gives_one_notice_then_holds_until_stable) {
  F.cfg.route.nescalation = 0;
  fx_start(MON9);
  fire("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + MIN(1));
  cr_assert_eq(count(NOTICE_ALERTS, NULL), 1);
  for (int k = 0; k < 7; k++) {
    run_until(MON9 + MIN(2 + k));
    if (k % 2 == 0) {
      resolve("online_share_low", "Krông Búk", "warning");
    } else {
      fire("online_share_low", "Krông Búk", "warning");
    }
  }
  /* The last change (resolved) at +8 min; stable from then on. */
  run_until(MON9 + MIN(8) + HOUR(1) - SEC(1));
  cr_assert_eq(count(NOTICE_FLAPPING, "operators"), 1);
  const struct notice *f = nth(NOTICE_FLAPPING, "operators", 0);
  cr_assert_not_null(in(f, "online_share_low", "Krông Búk"));
  cr_assert_eq(f->created_ns, MON9 + MIN(4));
  cr_assert_eq(count(NOTICE_ALERTS, NULL), 1, "changes held while flapping");
  run_until(MON9 + MIN(8) + HOUR(1) + MIN(5));
  cr_assert_eq(count(NOTICE_ALERTS, NULL), 2);
  const struct notice *n = nth(NOTICE_ALERTS, NULL, 1);
  cr_assert_eq(get(n, "online_share_low", "Krông Búk")->status,
               NOTICE_RESOLVED);
  cr_assert_geq(n->created_ns, MON9 + MIN(8) + HOUR(1));
  cr_assert_eq(count(NOTICE_FLAPPING, NULL), 1);
}

Test(dispatch, a_storm_past_the_hourly_rate_gives_ten_notices_and_a_digest) {
  F.recv[0].rate_per_hour = 10;
  F.cfg.route.nescalation = 0;
  fx_start(MON9);
  for (int i = 0; i < 100; i++) {
    char district[16];
    snprintf(district, sizeof district, "D%03d", i);
    fire("online_share_low", district, "warning");
  }
  run_until(MON9 + SEC(30) + MIN(5) - SEC(1));
  cr_assert_eq(count(NOTICE_ALERTS, "operators"), 10);
  cr_assert_eq(count(NOTICE_STORM, NULL), 0);
  run_until(MON9 + SEC(30) + MIN(5));
  cr_assert_eq(count(NOTICE_STORM, "operators"), 1);
  const struct notice *s = nth(NOTICE_STORM, "operators", 0);
  cr_assert_str_eq(notice_label_get(&s->group_labels, "notices"), "90");
  cr_assert_eq(s->nalerts, 90, "one entry per alertname and district");
  double sum = 0;
  for (size_t i = 0; i < s->nalerts; i++) {
    sum += s->alerts[i].value;
    cr_assert_str_eq(notice_label_get(&s->alerts[i].annotations, "firing"),
                     "1");
  }
  cr_assert_eq((int)sum, 90);
  run_until(MON9 + HOUR(2));
  cr_assert_eq(count(NOTICE_ALERTS, "operators"), 10);
  cr_assert_eq(count(NOTICE_STORM, "operators"), 1);
  struct dispatch_stats st;
  dispatch_get_stats(F.d, &st);
  cr_assert_eq(st.storm_folded, 90);
}

Test(dispatch, digest_at_0730_lists_breaches_with_time_to_ack_and_resolve) {
  F.cfg.digest_receiver = "director";
  F.digest_at[0] = (struct config_minutes){7 * 60 + 30, 7 * 60 + 30};
  F.cfg.digest_at = F.digest_at;
  F.cfg.ndigest_at = 1;
  F.cfg.route.nescalation = 0;
  fx_start(MON9);
  uint64_t x = fire("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + MIN(10));
  cr_assert_eq(
      dispatch_ack(F.d, x, "an.nguyen", "ops-duty", "gọi huyện", F.now),
      IOCD_OK);
  run_until(MON9 + MIN(60));
  resolve("online_share_low", "Krông Búk", "warning");
  run_until(vn(2026, 12, 7, 14, 0));
  fire("feed_silent", "Lắk", "warning");
  run_until(vn(2026, 12, 8, 7, 29));
  cr_assert_eq(count(NOTICE_DIGEST, NULL), 0);
  run_until(vn(2026, 12, 8, 7, 30));
  cr_assert_eq(count(NOTICE_DIGEST, "director"), 1);
  const struct notice *dg = nth(NOTICE_DIGEST, "director", 0);
  cr_assert_eq(dg->created_ns, vn(2026, 12, 8, 7, 30));
  cr_assert_eq(dg->nalerts, 2);
  const struct notice_alert *a = get(dg, "online_share_low", "Krông Búk");
  cr_assert_eq(a->status, NOTICE_RESOLVED);
  cr_assert_eq(a->starts_ns, MON9);
  cr_assert_str_eq(a->acked_by, "an.nguyen");
  cr_assert_eq(a->acked_ns - a->starts_ns, MIN(10), "time to ack");
  cr_assert_eq(a->ends_ns - a->starts_ns, MIN(60), "time to resolve");
  const struct notice_alert *b = get(dg, "feed_silent", "Lắk");
  cr_assert_eq(b->status, NOTICE_FIRING);
  cr_assert_null(b->acked_by);
  /* The next digest lists what is still open. */
  run_until(vn(2026, 12, 9, 7, 30));
  cr_assert_eq(count(NOTICE_DIGEST, "director"), 2);
  const struct notice *dg2 = nth(NOTICE_DIGEST, "director", 1);
  cr_assert_eq(dg2->nalerts, 1);
  cr_assert_not_null(in(dg2, "feed_silent", "Lắk"));
}

/* ---- bounds and reconfiguration ------------------------------------------ */

Test(dispatch, past_max_groups_alerts_go_to_the_overflow_group) {
  F.cfg.route.nescalation = 0;
  F.cal = fx_calendar();
  struct dispatch_opts o = {.cfg = &F.cfg,
                            .cal = F.cal,
                            .emit = on_emit,
                            .now_ns = MON9,
                            .max_groups = 2};
  F.d = dispatch_new(&o, NULL);
  cr_assert_not_null(F.d);
  F.now = MON9;
  fire("online_share_low", "A", "warning");
  fire("online_share_low", "B", "warning");
  fire("online_share_low", "C", "warning");
  fire("online_share_low", "D", "warning");
  run_until(MON9 + MIN(1));
  cr_assert_eq(count(NOTICE_ALERTS, NULL), 3);
  const struct notice *n = nth(NOTICE_ALERTS, NULL, 2);
  cr_assert_str_eq(n->group_key, "{}:overflow");
  cr_assert_eq(n->nalerts, 2);
  struct dispatch_stats st;
  dispatch_get_stats(F.d, &st);
  cr_assert_eq(st.group_overflow, 2);
}

Test(dispatch, reconfigure_keeps_groups_whose_route_still_exists) {
  F.cfg.route.nescalation = 0;
  fx_start(MON9);
  fire("online_share_low", "Krông Búk", "warning");
  fire("feed_silent", "Lắk", "warning");
  run_until(MON9 + MIN(1));
  cr_assert_eq(count(NOTICE_ALERTS, NULL), 2);
  /* Same routes, longer repeat: nothing is sent again. */
  F.cfg.route.repeat_interval_ms = 8 * 3600000;
  struct iocd_err err = {{0}};
  cr_assert_eq(dispatch_reconfigure(F.d, &F.cfg, F.cal, F.now, &err), IOCD_OK,
               "%s", err.msg);
  run_until(MON9 + HOUR(5));
  cr_assert_eq(count(NOTICE_ALERTS, NULL), 2, "repeat now 8 h");
  /* The feed_silent route goes: its alert starts a root group. */
  F.cfg.route.nroutes = 1;
  cr_assert_eq(dispatch_reconfigure(F.d, &F.cfg, F.cal, F.now, &err), IOCD_OK,
               "%s", err.msg);
  run_until(MON9 + HOUR(5) + MIN(1));
  cr_assert_eq(count(NOTICE_ALERTS, NULL), 3);
  cr_assert_str_eq(nth(NOTICE_ALERTS, NULL, 2)->group_key,
                   "{}:{alertname=\"feed_silent\",district=\"Lắk\"}");
  /* A configuration that does not hold together is refused whole. */
  F.cfg.route.receiver = "nobody";
  cr_assert_eq(dispatch_reconfigure(F.d, &F.cfg, F.cal, F.now, &err),
               IOCD_EINVAL);
  cr_assert_str_eq(err.msg, "route {}: receiver nobody is not configured");
}

Test(dispatch, refuses_a_configuration_naming_unknown_things) {
  F.cal = fx_calendar();
  struct dispatch_opts o = {
      .cfg = &F.cfg, .cal = F.cal, .emit = on_emit, .now_ns = MON9};
  struct iocd_err err = {{0}};
  F.mute[0] = "lunch";
  cr_assert_null(dispatch_new(&o, &err));
  cr_assert_str_eq(err.msg, "route {}: time interval lunch is not defined");
  F.mute[0] = "outside_working_time";
  F.esc[1].receiver = "pager";
  cr_assert_null(dispatch_new(&o, &err));
  cr_assert_str_eq(err.msg,
                   "route {}: escalation[1]: receiver pager is not "
                   "configured");
}

Test(dispatch, a_warning_that_turns_critical_leaves_its_group_as_resolved) {
  F.cfg.route.nescalation = 0;
  fx_start(MON9);
  uint64_t w = fire("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + MIN(1));
  cr_assert_eq(count(NOTICE_ALERTS, "operators"), 1);
  uint64_t c = fire("online_share_low", "Krông Búk", "critical");
  cr_assert_eq(w, c, "the same alert: severity is not part of its id");
  run_until(MON9 + MIN(6));
  cr_assert_eq(count(NOTICE_ALERTS, "vice_chair"), 1);
  cr_assert_eq(
      get(nth(NOTICE_ALERTS, "vice_chair", 0), "online_share_low", "Krông Búk")
          ->status,
      NOTICE_FIRING);
  cr_assert_eq(count(NOTICE_ALERTS, "operators"), 2);
  const struct notice_alert *a =
      get(nth(NOTICE_ALERTS, "operators", 1), "online_share_low", "Krông Búk");
  cr_assert_eq(a->status, NOTICE_RESOLVED);
  cr_assert_str_eq(notice_label_get(&a->labels, "severity"), "warning");
}

Test(dispatch, acks_loaded_at_start_hold_for_their_episode_only) {
  fx_start(MON9);
  struct notice_labels x = {0}, y = {0};
  notice_labels_set(&x, "alertname", "online_share_low");
  notice_labels_set(&x, "district", "Krông Búk");
  notice_labels_set(&y, "alertname", "online_share_low");
  notice_labels_set(&y, "district", "Lắk");
  struct ack_set *prev = ack_set_new();
  struct buf trail;
  buf_init(&trail, 0);
  /* x acked in this episode (it fires from MON9), y in an earlier one */
  ack_put(prev, notice_labels_fingerprint(&x), &x, "an", "ops-duty", NULL,
          MON9 + MIN(1), &trail);
  ack_put(prev, notice_labels_fingerprint(&y), &y, "an", "ops-duty", NULL,
          MON9 - HOUR(24), &trail);
  size_t bad = 1;
  cr_assert_eq(dispatch_load_acks(F.d, trail.data, trail.len, &bad), IOCD_OK);
  cr_assert_eq(bad, 0);
  cr_assert_eq(ack_count(dispatch_acks(F.d)), 2);
  run_until(MON9 + MIN(2));
  struct notice_alert a = {.status = NOTICE_FIRING, .starts_ns = MON9};
  notice_labels_copy(&a.labels, &x);
  cr_assert_eq(dispatch_alert(F.d, &a, MON9 + MIN(2)), IOCD_OK);
  notice_alert_cleanup(&a);
  a = (struct notice_alert){.status = NOTICE_FIRING, .starts_ns = MON9};
  notice_labels_copy(&a.labels, &y);
  cr_assert_eq(dispatch_alert(F.d, &a, MON9 + MIN(2)), IOCD_OK);
  notice_alert_cleanup(&a);
  cr_assert_not_null(
      ack_find(dispatch_acks(F.d), notice_labels_fingerprint(&x)));
  cr_assert_null(ack_find(dispatch_acks(F.d), notice_labels_fingerprint(&y)));
  cr_assert_not_null(strstr(F.audit.data, "\"action\":\"expire\""));
  run_until(MON9 + MIN(20));
  cr_assert_eq(count(NOTICE_ESCALATION, "director"), 1);
  const struct notice *e = nth(NOTICE_ESCALATION, "director", 0);
  cr_assert_eq(e->nalerts, 1);
  cr_assert_not_null(in(e, "online_share_low", "Lắk"));
  notice_labels_cleanup(&x);
  notice_labels_cleanup(&y);
  buf_cleanup(&trail);
  ack_set_free(prev);
}

/* ---- restart ------------------------------------------------------------- */

/* An alert of name/district, firing since starts or resolved at F.now,
 * with a summary (may be NULL) and a value; the caller cleans it up. */
static struct notice_alert alert_of(const char *name, const char *district,
                                    enum notice_status st, int64_t starts,
                                    const char *summary, double value) {
  struct notice_alert a = {0};
  cr_assert_eq(notice_labels_set(&a.labels, "alertname", name), IOCD_OK);
  cr_assert_eq(notice_labels_set(&a.labels, "district", district), IOCD_OK);
  cr_assert_eq(notice_labels_set(&a.labels, "severity", "warning"), IOCD_OK);
  if (summary) {
    cr_assert_eq(notice_labels_set(&a.annotations, "summary", summary),
                 IOCD_OK);
  }
  a.fingerprint = notice_labels_fingerprint(&a.labels);
  a.status = st;
  a.starts_ns = starts;
  a.ends_ns = st == NOTICE_RESOLVED ? F.now : 0;
  a.has_value = true;
  a.value = value;
  a.has_threshold = true;
  a.threshold = 0.3;
  return a;
}

/* What iocd does at start for an alert the rules engine restored firing
 * since starts. */
static uint64_t restore(const char *district, int64_t starts, bool notified) {
  struct notice_alert a =
      alert_of("online_share_low", district, NOTICE_FIRING, starts, NULL, 0.1);
  cr_assert_eq(dispatch_restore(F.d, &a, notified, F.now), IOCD_OK);
  notice_alert_cleanup(&a);
  return a.fingerprint;
}

Test(dispatch, a_restored_notified_alert_is_not_sent_again_but_resolves) {
  F.cfg.route.nescalation = 0;
  fx_start(MON9);
  uint64_t id = restore("Krông Búk", MON9 - HOUR(1), true);
  cr_assert(dispatch_notified(F.d, id));
  run_until(MON9 + HOUR(1));
  cr_assert_eq(F.nout, 0, "no firing notice after the restart");
  resolve("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + HOUR(2));
  cr_assert_eq(F.nout, 1);
  cr_assert_eq(F.out[0]->created_ns, MON9 + HOUR(1) + SEC(30));
  const struct notice_alert *a = get(F.out[0], "online_share_low", "Krông Búk");
  cr_assert_eq(a->status, NOTICE_RESOLVED);
  cr_assert_eq(a->starts_ns, MON9 - HOUR(1));
  cr_assert_not(dispatch_notified(F.d, id));
}

Test(dispatch, a_restored_alert_nobody_was_told_of_is_a_new_alert) {
  F.cfg.route.nescalation = 0;
  fx_start(MON9);
  uint64_t id = restore("Krông Búk", MON9 - HOUR(1), false);
  cr_assert_not(dispatch_notified(F.d, id));
  run_until(MON9 + SEC(30));
  cr_assert_eq(F.nout, 1);
  cr_assert_eq(get(F.out[0], "online_share_low", "Krông Búk")->status,
               NOTICE_FIRING);
  cr_assert(dispatch_notified(F.d, id));
}

Test(dispatch, repeat_interval_of_a_restored_alert_counts_from_the_restart) {
  F.cfg.route.nescalation = 0;
  F.cfg.route.nmute = 0;
  fx_start(MON9);
  restore("Krông Búk", MON9 - HOUR(3), true);
  run_until(MON9 + HOUR(4));
  cr_assert_eq(F.nout, 0, "not repeated 4 h after it started firing");
  /* The first group_interval tick (30 s + k * 5 min) past 4 h. */
  run_until(MON9 + HOUR(4) + SEC(30));
  cr_assert_eq(F.nout, 1);
  cr_assert_eq(F.out[0]->created_ns, MON9 + HOUR(4) + SEC(30));
  cr_assert_eq(get(F.out[0], "online_share_low", "Krông Búk")->status,
               NOTICE_FIRING);
}

Test(dispatch, a_restored_alert_is_not_escalated_again_for_tiers_past_due) {
  fx_start(MON9);
  /* Firing for 20 min: tier 1 (15 min) went out before the restart. */
  restore("Krông Búk", MON9 - MIN(20), true);
  run_until(MON9 + MIN(40) - SEC(1));
  cr_assert_eq(F.nout, 0);
  run_until(MON9 + MIN(40));
  cr_assert_eq(count(NOTICE_ESCALATION, "vice_chair"), 1);
  const struct notice *e = nth(NOTICE_ESCALATION, "vice_chair", 0);
  cr_assert_eq(e->tier, 2);
  cr_assert_eq(e->created_ns, MON9 + MIN(40), "1 h after it started");
  run_until(MON9 + HOUR(3));
  cr_assert_eq(count(NOTICE_ESCALATION, "director"), 0);
  cr_assert_eq(count(NOTICE_ESCALATION, NULL), 1);
  cr_assert_eq(count(NOTICE_ALERTS, NULL), 0);
}

Test(dispatch, a_new_alert_joins_the_group_of_a_restored_one) {
  F.cfg.route.nescalation = 0;
  F.cfg.route.ngroup_by = 1;
  fx_start(MON9);
  restore("Krông Búk", MON9 - HOUR(1), true);
  fire("online_share_low", "Ea Súp", "warning");
  run_until(MON9 + SEC(30));
  /* Alertmanager's way: a notice carries the group's whole firing set. */
  cr_assert_eq(F.nout, 1);
  cr_assert_eq(F.out[0]->nalerts, 2);
  run_until(MON9 + HOUR(1));
  cr_assert_eq(F.nout, 1);
}

/* ---- what a resolved notice says ----------------------------------------- */

Test(dispatch, a_resolved_notice_keeps_the_start_and_words_of_the_firing) {
  static const char firing_text[] =
      "Tỷ lệ hồ sơ trực tuyến của Krông Búk là 10,6%, dưới mục tiêu 30%";
  F.cfg.route.nescalation = 0;
  fx_start(MON9);
  struct notice_alert a = alert_of("online_share_low", "Krông Búk",
                                   NOTICE_FIRING, MON9, firing_text, 0.106);
  cr_assert_eq(dispatch_alert(F.d, &a, F.now), IOCD_OK);
  notice_alert_cleanup(&a);
  run_until(MON9 + HOUR(1));
  cr_assert_eq(F.nout, 1);
  /* The engine's resolved event: rendered with the recovered value, and
   * its start is the time of the resolution. */
  a = alert_of("online_share_low", "Krông Búk", NOTICE_RESOLVED, F.now,
               "Tỷ lệ hồ sơ trực tuyến của Krông Búk là 40,6%, dưới mục "
               "tiêu 30%",
               0.406);
  cr_assert_eq(dispatch_alert(F.d, &a, F.now), IOCD_OK);
  notice_alert_cleanup(&a);
  cr_assert_eq(dispatch_find_alert(F.d, a.fingerprint)->starts_ns, MON9);
  run_until(MON9 + HOUR(2));
  cr_assert_eq(F.nout, 2);
  const struct notice_alert *r = get(F.out[1], "online_share_low", "Krông Búk");
  cr_assert_eq(r->status, NOTICE_RESOLVED);
  cr_assert_eq(r->starts_ns, MON9);
  cr_assert_eq(r->ends_ns, MON9 + HOUR(1));
  cr_assert_str_eq(notice_label_get(&r->annotations, "summary"), firing_text);
  cr_assert(r->has_value);
  cr_assert_float_eq(r->value, 0.406, 1e-9);
  cr_assert_float_eq(r->threshold, 0.3, 1e-9);
}

Test(dispatch, a_resolved_change_without_times_keeps_the_start) {
  F.cfg.route.nescalation = 0;
  fx_start(MON9);
  fire("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + MIN(20));
  struct notice_alert a =
      alert_of("online_share_low", "Krông Búk", NOTICE_RESOLVED, 0, NULL, 0.5);
  a.ends_ns = 0;
  cr_assert_eq(dispatch_alert(F.d, &a, F.now), IOCD_OK);
  notice_alert_cleanup(&a);
  run_until(MON9 + HOUR(1));
  cr_assert_eq(F.nout, 2);
  const struct notice_alert *r = get(F.out[1], "online_share_low", "Krông Búk");
  cr_assert_eq(r->starts_ns, MON9);
  cr_assert_eq(r->ends_ns, MON9 + MIN(20), "the time it was told of");
}

/* ---- silences as wake-ups ------------------------------------------------ */

static void silence(const char *district, int64_t from, int64_t until,
                    uint64_t id) {
  struct config_matcher m = matcher("district", CONFIG_MATCH_EQ, district);
  struct silence_spec spec = {
      .matchers = &m, .nmatchers = 1, .starts_ns = from, .ends_ns = until};
  struct iocd_err err = {{0}};
  cr_assert_eq(
      silence_add(dispatch_silences(F.d), &spec, id, F.now, NULL, &err),
      IOCD_OK, "%s", err.msg);
}

Test(dispatch, an_alert_is_notified_when_its_silence_ends) {
  F.cfg.route.nescalation = 0;
  fx_start(MON9);
  silence("Krông Búk", MON9, MON9 + MIN(7), 0x51);
  fire("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + MIN(7) - SEC(1));
  cr_assert_eq(F.nout, 0);
  run_until(MON9 + MIN(7));
  cr_assert_eq(F.nout, 1, "at the end of the silence, not at 10 min 30 s");
  cr_assert_eq(F.out[0]->created_ns, MON9 + MIN(7));
  cr_assert_eq(get(F.out[0], "online_share_low", "Krông Búk")->status,
               NOTICE_FIRING);
  run_until(MON9 + HOUR(1));
  cr_assert_eq(F.nout, 1);
}

Test(dispatch, a_silence_ended_early_releases_its_alerts_at_once) {
  F.cfg.route.nescalation = 0;
  fx_start(MON9);
  silence("Krông Búk", MON9, MON9 + HOUR(2), 0x51);
  fire("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + MIN(2));
  cr_assert_eq(F.nout, 0);
  cr_assert_eq(silence_expire(dispatch_silences(F.d), "0000000000000051",
                              "ops-duty", F.now),
               IOCD_OK);
  dispatch_tick(F.d, F.now); /* what the caller does after a change */
  cr_assert_eq(F.nout, 1);
  cr_assert_eq(F.out[0]->created_ns, MON9 + MIN(2));
}

Test(dispatch, an_alert_silenced_mid_group_is_not_sent_at_the_next_flush) {
  F.cfg.route.nescalation = 0;
  F.cfg.route.ngroup_by = 1;
  fx_start(MON9);
  fire("online_share_low", "Krông Búk", "warning");
  run_until(MON9 + MIN(1));
  cr_assert_eq(F.nout, 1);
  fire("online_share_low", "Ea Súp", "warning");
  silence("Ea Súp", MON9 + MIN(3), MON9 + HOUR(1), 0x52);
  cr_assert_eq(dispatch_next_wake(F.d), MON9 + MIN(3),
               "the silence's start is a wake-up");
  run_until(MON9 + MIN(3));
  cr_assert_eq(F.nout, 1, "nothing goes out at the silence's start");
  run_until(MON9 + HOUR(1) - SEC(1));
  cr_assert_eq(F.nout, 1, "silenced at every flush of its group");
  run_until(MON9 + HOUR(1));
  cr_assert_eq(F.nout, 2);
  cr_assert_eq(F.out[1]->created_ns, MON9 + HOUR(1));
  cr_assert_eq(get(F.out[1], "online_share_low", "Ea Súp")->status,
               NOTICE_FIRING);
}

/* ---- configurations the loader accepts ----------------------------------- */

Test(dispatch, builds_from_every_configuration_the_loader_accepts) {
  static const char head[] =
      "{\"file\": {}, \"subscriptions\": [{\"topic\": \"t\"}],\n"
      " \"notifications\": {\"receivers\": [\n"
      "  {\"name\": \"operators\", \"type\": \"webhook\", \"url\": "
      "\"http://127.0.0.1:9/a\"},\n"
      "  {\"name\": \"wall\", \"type\": \"webhook\", \"url\": "
      "\"http://127.0.0.1:9/b\", \"rate_per_hour\": -1,\n"
      "   \"send_resolved\": false},\n"
      "  {\"name\": \"director\", \"type\": \"webhook\", \"url\": "
      "\"http://127.0.0.1:9/c\"}],\n";
  static const char *const cases[] = {
      /* Children that set nothing take everything from their parents. */
      "  \"route\": {\"receiver\": \"operators\", \"routes\": [\n"
      "   {\"matchers\": [\"severity=critical\"], \"routes\": [\n"
      "    {\"matchers\": {\"district\": \"Lắk\"}}]}]}}}",
      /* The example's shape: a wall taking everything without mute or
       * escalation, a route with its own mute, zero group_wait, every
       * label as the group. */
      "  \"route\": {\"receiver\": \"operators\", \"group_by\": "
      "[\"alertname\", \"district\"],\n"
      "   \"mute_time_intervals\": [\"outside_working_time\"],\n"
      "   \"escalation\": [{\"after\": \"15m\", \"receiver\": "
      "\"director\"}],\n"
      "   \"routes\": [\n"
      "    {\"receiver\": \"wall\", \"continue\": true, "
      "\"mute_time_intervals\": [], \"escalation\": [],\n"
      "     \"group_wait\": \"0s\", \"group_by\": [\"...\"]},\n"
      "    {\"matchers\": [\"severity=critical\"], \"continue\": true,\n"
      "     \"mute_time_intervals\": [\"night\"], \"critical_any_time\": "
      "false},\n"
      "    {\"matchers\": [\"alertname=~feed_.*\"], "
      "\"active_time_intervals\": [\"working_time\"],\n"
      "     \"escalation\": [{\"after\": \"1m\", \"receiver\": "
      "\"wall\"}]}]},\n"
      "  \"time_intervals\": [{\"name\": \"night\", \"times\": "
      "[\"22:00-06:00\"]}],\n"
      "  \"inhibit_rules\": [{\"source_matchers\": "
      "[\"alertname=feed_silent\"],\n"
      "   \"target_matchers\": [\"alertname=~online_share.*\"], \"equal\": "
      "[\"district\"]}],\n"
      "  \"flapping\": {\"transitions\": 2, \"window\": \"1m\"},\n"
      "  \"digest\": {\"receiver\": \"director\", \"at\": [\"07:30\", "
      "\"16:30\"]}}}",
      /* A silence of the file that ended long ago, without starts_at. */
      "  \"route\": {\"receiver\": \"operators\"},\n"
      "  \"silences\": [{\"matchers\": [\"district=Krông Búk\"], "
      "\"ends_at\": \"2020-01-01T00:00:00+07:00\"}]}}",
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[4096];
    snprintf(text, sizeof text, "%s%s", head, cases[i]);
    struct config *cfg = NULL;
    struct buf errors;
    buf_init(&errors, 0);
    int rc = config_load_text("iocd.jsonc", text, strlen(text), &cfg, &errors);
    cr_assert_eq(rc, IOCD_OK, "case %zu: %s", i,
                 errors.data ? errors.data : "");
    buf_cleanup(&errors);
    struct iocd_err err = {{0}};
    cr_expect_eq(notify_check(cfg, &err), IOCD_OK, "case %zu: %s", i, err.msg);
    config_free(cfg);
  }
}
