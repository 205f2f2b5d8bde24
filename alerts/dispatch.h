/*
 * The dispatcher: from alert changes to notices, on a virtual clock. It is
 * the pure heart of alert delivery (design: docs/alerts.md); alerts.c
 * feeds it, and the outbox and the senders take what it emits.
 *
 * For every firing or resolved change it is told of (dispatch_alert), an
 * alert goes through:
 *
 *   inhibition  a firing alert matching an inhibit rule's target matchers is
 *               not notified while another firing alert matches the source
 *               matchers with the `equal` labels equal (absent reads as "");
 *               an alert never inhibits itself.
 *   silences    an active silence whose matchers match: not notified.
 *               Inhibited or silenced, an alert that was already notified
 *               as firing still gets its resolved notification. The
 *               starts and ends of silences are wake-ups: when a silence
 *               ends, a group that its last flush held a firing alert back
 *               from (and that nothing else holds now) is flushed then,
 *               not at its next group_interval tick.
 *   routes      Alertmanager's tree walk (route.h), to one or more routes.
 *   groups      per (route, values of its group_by labels): the first
 *               notice group_wait after the group's first alert, then at
 *               most one every group_interval, when an alert is new to the
 *               firing set or resolved; the unchanged firing set is repeated
 *               every repeat_interval (checked at the group_interval ticks,
 *               as Alertmanager does). A resolved alert is sent once when the
 *               receiver has send_resolved and it had been notified as
 *               firing, and is then dropped from the group; one that was
 *               never notified is dropped silently. It keeps the facts of
 *               its firing episode: starts_ns and the annotations of the
 *               firing alert (what its notification said), with the new
 *               value, threshold, reason and ends_ns (now when 0).
 *   mute        while a route's mute interval holds (or none of its active
 *               intervals does) nothing of the route is sent, except
 *               severity=critical alerts when critical_any_time; when the
 *               mute ends (the dispatcher wakes at that instant) the group's
 *               state at that time goes out.
 *   ack         an acknowledged alert is not repeated (a repeat carries only
 *               the unacknowledged firing alerts) and not escalated; the ack
 *               itself is no notice. It ends when the alert resolves, or when
 *               the alert is seen firing in an episode that started after it.
 *   escalation  tier k of the route: when a firing alert is still
 *               unacknowledged `after` since it started firing (starts_ns),
 *               one NOTICE_ESCALATION per group and tier to the tier's
 *               receiver; an alert in several groups goes to a receiver
 *               once per episode. Real time counts, muted time included:
 *               the mute only delays the notice (critical alerts excepted)
 *               and, at the mute's end, every tier that fell due goes out,
 *               each to its own receiver. Silenced, inhibited or
 *               flapping alerts are not escalated while they are.
 *   flapping    an alert whose status changed flap_transitions times (its
 *               first firing counts) within flap_window gets one
 *               NOTICE_FLAPPING per receiver of its routes (mute applies);
 *               then its changes are held: groups neither send nor drop it
 *               until it has not changed for flap_window, after which its
 *               state then is sent as usual.
 *   storms      per receiver, a sliding hour: past rate_per_hour notices
 *               (alerts, escalation, flapping), a notice is not emitted but
 *               folded into one NOTICE_STORM, emitted the root's
 *               group_interval after the first one folded. Its alerts are
 *               one per (alertname, district) with labels alertname and
 *               district, value the number of alerts folded, annotations
 *               "firing" and "resolved" (counts as text); its group_labels
 *               {"notices": "<notices folded>"}. For the group the folded
 *               notice counts as sent.
 *   digest      at each digest_at local time, one NOTICE_DIGEST to
 *               digest_receiver (no rate limit, no mute): one alert per
 *               firing episode that started since the last digest or was
 *               still firing at it, with starts_ns, acked_by/acked_ns (time
 *               to ack) and ends_ns (time to resolve); group_labels
 *               {"omitted": "<n>"} when records were dropped at the bound.
 *               Nothing is sent when there is nothing to report.
 *
 * Every emitted notice has a unique id (a counter the caller seeds, e.g.
 * past the outbox's highest id), its receiver, kind, group_key,
 * group_labels, alerts (copies, with the ack fields of firing alerts
 * filled) and created_ns; text is left NULL for template.c.
 *
 * Nothing is emitted by dispatch_alert: notices go out from dispatch_tick,
 * which the caller runs at dispatch_next_wake (a timer) and after changes.
 *
 * Bounds, and what happens there (counted in struct dispatch_stats):
 *   max_alerts (10000): a new alert past it first makes room by forgetting
 *     resolved alerts no group holds; if there is none, dispatch_alert
 *     refuses the alert with IOCD_ELIMIT.
 *   max_groups (2000): an alert that needs a new group past it goes to its
 *     route's overflow group (key "<route key>:overflow", no group labels),
 *     one per route, so it is still notified.
 *   max_group_alerts (1000): an alert is not added to a full group (it
 *     still goes to its other routes' groups).
 *   max_records (2000): the digest's oldest resolved record is dropped (or
 *     the oldest one) and counted in the next digest's "omitted".
 *   storms keep at most 200 (alertname, district) pairs; later pairs are
 *     counted under alertname "other".
 *
 * Pure: no I/O, no clock, no libuv. Not thread-safe.
 */
#ifndef IOCD_ALERTS_DISPATCH_H
#define IOCD_ALERTS_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alerts/ack.h"
#include "alerts/notice.h"
#include "alerts/silence.h"
#include "config/config.h"
#include "core/err.h"
#include "rules/calendar.h"

struct dispatch;

/* Takes a notice to deliver: ownership of n passes to the callee (free it
 * with notice_free). Called from dispatch_tick only. */
typedef void dispatch_emit_fn(void *ud, struct notice *n);

/* Takes one line of the acks audit trail (acks.jsonl), '\n' included, to
 * append to the file; line is borrowed for the call. Called from
 * dispatch_ack, dispatch_unack and dispatch_alert (an ack that ends). */
typedef void dispatch_audit_fn(void *ud, const char *line, size_t len);

struct dispatch_opts {
  /* Borrowed for the call: the dispatcher copies what it keeps. */
  const struct config_notify *cfg;
  /* Borrowed: must outlive the dispatcher, or until dispatch_reconfigure
   * gives another. */
  const struct calendar *cal;
  dispatch_emit_fn *emit;   /* required */
  dispatch_audit_fn *audit; /* NULL: the audit lines are dropped */
  void *ud;                 /* for both callbacks */
  uint64_t first_id;        /* the first notice's id; 0: 1 */
  int64_t now_ns;           /* start: config silences' "now", the digest */
  /* Bounds; 0: the defaults above. */
  size_t max_alerts;
  size_t max_groups;
  size_t max_group_alerts;
  size_t max_records;
  int64_t silence_retention_ns; /* 0: SILENCE_RETENTION_NS */
};

struct dispatch_stats {
  uint64_t notices;         /* emitted, of every kind */
  uint64_t storm_folded;    /* notices folded into storm notices */
  uint64_t alerts_refused;  /* at max_alerts */
  uint64_t group_overflow;  /* alerts sent to an overflow group */
  uint64_t group_full;      /* alerts not added to a full group */
  uint64_t records_dropped; /* digest records dropped */
  uint64_t flapping;        /* flapping episodes detected */
  size_t alerts;            /* known now */
  size_t groups;            /* now */
};

/* Builds a dispatcher for opts->cfg (its routes, receivers, time
 * intervals, inhibit rules, silences, flapping and digest settings) on the
 * calendar opts->cal. Returns NULL with err set when the configuration does
 * not hold together (a route, tier or the digest naming a receiver that is
 * not configured, a route naming an unknown time interval, a bad matcher or
 * silence; "route.routes[1]: receiver pager is not configured") or when
 * memory runs out. Free with dispatch_free. */
struct dispatch *dispatch_new(const struct dispatch_opts *opts,
                              struct iocd_err *err);

/* Frees d and every notice state in it; NULL is allowed. Emits nothing. */
void dispatch_free(struct dispatch *d);

/* Takes a new configuration (cfg borrowed for the call, cal borrowed as in
 * dispatch_opts). Groups whose route key is in the new tree stay, with
 * their state, under the new route's settings; the others are dropped
 * without notices. Alerts are routed again: a membership that no longer
 * holds is dropped without a resolved notice, a new one starts a group as
 * usual. The configuration's silences are replaced, the API's stay; the
 * receivers' hourly counts and pending storms stay for receivers that keep
 * their name. Returns IOCD_OK; for a configuration that does not hold
 * together (err set, as dispatch_new) d is unchanged; IOCD_ENOMEM while
 * routing the alerts again leaves the new configuration in place with some
 * alerts missing from their groups until their next change. */
int dispatch_reconfigure(struct dispatch *d, const struct config_notify *cfg,
                         const struct calendar *cal, int64_t now_ns,
                         struct iocd_err *err);

/* Tells d that alert a (borrowed, copied) is firing or resolved at now: a
 * change of status, or new values of a firing one. Its id is
 * a->fingerprint, or the fingerprint of its labels when that is 0. A
 * resolved alert d does not know is ignored. Returns IOCD_OK, IOCD_ELIMIT
 * (see max_alerts) or IOCD_ENOMEM (the change is lost). */
int dispatch_alert(struct dispatch *d, const struct notice_alert *a,
                   int64_t now_ns);

/* Tells d at start (iocd restarting) of alert a (borrowed, copied), which
 * the rules engine restored. With notified false, or when a is resolved,
 * this is dispatch_alert. With notified true (the receivers were told it
 * fires before the restart) a firing alert enters its groups as notified
 * at now: no firing notification for it, repeat_interval counted from now
 * (for a group that has sent nothing yet), its resolved notification sent
 * as usual; the escalation tiers whose `after` has passed since starts_ns
 * count as sent, the later ones go out when due. Returns as
 * dispatch_alert. */
int dispatch_restore(struct dispatch *d, const struct notice_alert *a,
                     bool notified, int64_t now_ns);

/* Whether a receiver was told that alert id fires and not yet that it
 * resolved: a group it is routed to holds it as notified. For the
 * caller's record of notified alerts across restarts. */
bool dispatch_notified(const struct dispatch *d, uint64_t id);

/* Does what is due at now: the digest, group flushes, escalations, storm
 * notices, and the collection of expired silences and forgotten alerts.
 * Notices go to the emit callback in a deterministic order. */
void dispatch_tick(struct dispatch *d, int64_t now_ns);

/* The earliest instant at which dispatch_tick has something to do;
 * INT64_MAX when nothing is scheduled. */
int64_t dispatch_next_wake(const struct dispatch *d);

/* Acknowledges the firing alert id by `by` (required) on the request of
 * principal (the API token's name; may be NULL) with comment (may be NULL)
 * at now; the audit line goes to the audit callback. Strings are copied.
 * Returns IOCD_OK, IOCD_EINVAL without `by`, IOCD_ENOTFOUND when d does not
 * know the alert, IOCD_ESTATE when it is not firing, IOCD_ELIMIT or
 * IOCD_ENOMEM. */
int dispatch_ack(struct dispatch *d, uint64_t id, const char *by,
                 const char *principal, const char *comment, int64_t now_ns);

/* Takes the ack of alert id back (repeats and escalation resume; tiers
 * already sent are not sent again), by `by` on the request of principal
 * (may be NULL). Returns IOCD_OK, IOCD_EINVAL without `by`, IOCD_ENOTFOUND
 * when it is not acknowledged, or IOCD_ENOMEM. */
int dispatch_unack(struct dispatch *d, uint64_t id, const char *by,
                   const char *principal, const char *comment, int64_t now_ns);

/* Loads the acks of the audit trail at start (text borrowed); see
 * ack_load. Call before the first dispatch_alert. */
int dispatch_load_acks(struct dispatch *d, const char *text, size_t len,
                       size_t *bad);

/* The current acks, for the API; owned by d, valid until d changes. */
const struct ack_set *dispatch_acks(const struct dispatch *d);

/* The silence set d owns, for the API to list, add (silence_add), expire
 * and delete, and to save (silence_set_to_json) and load at start
 * (silence_set_from_json). Changes take effect at the next flush of each
 * group. Owned by d. */
struct silence_set *dispatch_silences(struct dispatch *d);

/* The id the next notice will get. */
uint64_t dispatch_next_id(const struct dispatch *d);

/* What d knows of alert id, for the API (status, labels, starts); NULL
 * when it does not know it. Owned by d, valid until d changes. */
const struct notice_alert *dispatch_find_alert(const struct dispatch *d,
                                               uint64_t id);

/* Counters and sizes, for /metrics. */
void dispatch_get_stats(const struct dispatch *d, struct dispatch_stats *out);

#endif
