/*
 * The rules engine: a set of rules, their instances (one per rule and group)
 * and the sample store they read. Points go in (engine_add_point), time goes
 * in (engine_tick), and alert events come out through a callback. The
 * service wires it to the loop, the state file and InfluxDB; the engine
 * itself is pure: no clock, no I/O, one thread. docs/rules.md is the
 * reference for what each rule field means.
 *
 * Evaluation triggers:
 * - on arrival: a point evaluates only the rules that read one of its
 *   (measurement, field) pairs (or its bare measurement, or the heartbeat),
 *   only for the group the point belongs to, once per point, after all of
 *   the point's fields are stored, at the arrival time `now` (not the
 *   point's timestamp);
 * - on a tick: only the instances whose state can change with time are
 *   evaluated (a pending deadline, a keep_firing_for deadline, a sample
 *   going stale or leaving a window, age() crossing its threshold, office
 *   hours starting or ending). engine_next_wake says when the next one is.
 *
 * The same calls with the same arguments give the same events, in the same
 * order: replay a recording to reproduce an alert.
 */
#ifndef IOCD_RULES_ENGINE_H
#define IOCD_RULES_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/point.h"
#include "rules/alert.h"
#include "rules/calendar.h"
#include "rules/expr.h"
#include "rules/series.h"

struct engine;

/* The heartbeat: every point the engine is given also records a sample of
 * `_source.seen` (value 1) with the point's tags, stamped with the arrival
 * time, so that `age(_source.seen) > 10m` by [district, system] is "this
 * district's system has sent nothing (of any measurement) for 10 minutes".
 * It costs nothing unless some rule reads it. */
#define ENGINE_HEARTBEAT_MEASUREMENT "_source"
#define ENGINE_HEARTBEAT_FIELD "seen"

/* The built-in alert raised while iocd cannot reach its MQTT broker. */
#define ENGINE_BROKER_RULE "iocd_broker_unreachable"

/* One severity level of a rule. Levels are listed lowest severity first;
 * the highest level whose condition is true wins (Kapacitor's levels). */
struct rule_level {
  const char *severity; /* "warning", "critical"; required */
  const char *expr;     /* the level's fire condition; required */
  const char *clear;    /* hysteresis: while firing at this level, lower
                           levels (or inactive) are reached only when this
                           is true; NULL: as soon as expr is false */
};

/* Whether a rule's instances are held back while the broker is down. */
enum rule_inhibit {
  RULE_INHIBIT_AUTO = 0, /* yes when the rule uses age() or absent() */
  RULE_INHIBIT_YES,
  RULE_INHIBIT_NO,
};

/* A rule, as config gives it. Caller storage; every string and array is
 * borrowed and copied by engine_new / engine_reconfigure / engine_check_rule,
 * so the caller may free it right after. Durations are nanoseconds. */
struct rule_def {
  const char *name; /* unique in the set; [A-Za-z0-9_.:-]+ */
  /* Either expr (one level) or levels (several), not both. */
  const char *expr;     /* the fire condition */
  const char *clear;    /* with expr: the clear condition (hysteresis) */
  const char *severity; /* with expr: NULL is "warning" */
  const struct rule_level *levels;
  size_t nlevels; /* at most ALERT_MAX_LEVELS */
  /* A minimum denominator: while it is false the instance is in the
   * insufficient state; NULL: none. */
  const char *guard;
  /* The labels the rule is evaluated per: one instance per distinct tuple
   * of values ("district"), none: one instance for the whole rule. */
  const char *const *by;
  size_t nby;
  int64_t for_ns;
  int64_t tolerance_ns;
  int64_t keep_firing_for_ns;
  enum alert_missing missing;
  /* Outside the calendar's working time nothing starts pending or fires and
   * a firing alert stays firing; for, tolerance and keep_firing_for count
   * working time. */
  bool working_time_only;
  /* The calendar of working_time_only and of [2wh] ranges; NULL:
   * "office_hours". during("name") names its own. */
  const char *calendar;
  /* Freshness of every series the rule reads (instant selectors, absent);
   * 0: the freshness hook's answer, else the engine's default. */
  int64_t freshness_ns;
  /* Templates, rendered into each event: {{district}} (any label of the
   * group or of the rule), {{$labels.district}}, {{value}}, {{threshold}},
   * {{value|pct}} ("28,34%" in Vietnamese, "28.34%" in English; numbers
   * as engine_render writes them in the engine's lang), {{threshold|pct}},
   * {{rule}}, {{severity}}, {{state}}. Text outside {{ }} (Vietnamese
   * included) is copied as is. */
  const struct alert_kv *annotations;
  size_t nannotations;
  const struct alert_kv *labels; /* static labels added to every event */
  size_t nlabels;
  /* Groups that must exist even before (or without) any data: nexpected
   * tuples of nby values each, row-major (expected[i * nby + j] is the
   * value of by[j] in tuple i): the configured districts x systems, so a
   * feed that never started is noticed. */
  const char *const *expected;
  size_t nexpected;
  enum rule_inhibit inhibited_by_broker;
};

/* Where a rule is wrong, for `iocd check`. */
struct rule_error {
  size_t rule;    /* index in the array given */
  char where[48]; /* "expr", "clear", "guard", "levels[1].expr", "by",
                     "annotations.summary", "calendar", "expected[3]", ... */
  int col;        /* 1-based column in that text for expression errors
                     (add it to the text's own position), else 0 */
  struct iocd_err err; /* "rules[2] online_share: expr: column 7: ..." */
};

/* Receives every alert event. ev and everything it points to are borrowed
 * for the call. The callback must not call back into the engine. */
typedef void engine_event_fn(void *ud, const struct alert_event *ev);

/* The language of the engine's own texts: why an alert changed, the
 * built-in broker alert; and how the numbers of the rules' annotations
 * are written (1.410.312 and 10,61%, or 1,410,312 and 10.61%). The words
 * of the annotations are the rule author's. */
enum engine_lang {
  ENGINE_LANG_VI = 0, /* Vietnamese, the default */
  ENGINE_LANG_EN,
};

/* The engine's settings. Caller storage, {0} is valid: calendars are then
 * the default "office_hours" only, every parameter is MISSING, no events
 * are delivered. Pointers are borrowed: calendars are copied; the hooks and
 * their ud must stay valid for the life of the engine. */
struct engine_opts {
  const struct calendar_def *calendars; /* 0: one default "office_hours" */
  size_t ncalendars;
  /* Per-group parameters ($online_target): the group's override, else the
   * default. Called with the rule's by labels and the group's values. */
  expr_param_fn *param;
  /* Freshness per (measurement, field), for rules without their own. */
  expr_freshness_fn *freshness;
  void *hook_ud; /* passed to param and freshness */
  engine_event_fn *on_event;
  void *event_ud;
  int64_t freshness_ns;      /* default freshness; 0: 10 minutes */
  struct series_store_opts store;
  size_t max_instances;      /* in all rules; 0: 1,000,000 */
  /* When the engine starts listening (the first broker connection, or the
   * start of a replay). Silence is counted from no earlier than this, and
   * MISSING data within a rule's freshness after it keeps the state (the
   * store is still filling after a restart). 0: no such floor. */
  int64_t start_ns;
  enum engine_lang lang; /* default Vietnamese */
};

/* Checks one rule on its own (every expression parses, templates are
 * well-formed, names and durations make sense) without an engine, for
 * `iocd check`. Calendars named by the rule are not checked here (the
 * engine does). Returns IOCD_OK, or IOCD_EPARSE / IOCD_EINVAL with *re
 * filled (re->rule is 0). */
int engine_check_rule(const struct rule_def *def, struct rule_error *re);

/* Creates an engine with rules[0..n) and the instances of their expected
 * groups. Returns IOCD_OK and *out (free with engine_free), or an error with
 * *re saying which rule and where (IOCD_EPARSE, IOCD_EINVAL for a bad
 * field, a duplicate name or an unknown calendar, IOCD_ENOMEM). */
int engine_new(const struct engine_opts *opts, const struct rule_def *rules,
               size_t n, struct engine **out, struct rule_error *re);

/* Switches the language of the engine's own texts (a reload changed it):
 * later reasons, the numbers of later annotations, and the broker alert's
 * summary. Returns IOCD_OK or IOCD_ENOMEM (then nothing changed). */
int engine_set_lang(struct engine *e, enum engine_lang lang);

/* Frees the engine; NULL is allowed. No events are delivered. */
void engine_free(struct engine *e);

/* Replaces the rule set (and the calendars, when cals is not NULL) as a
 * whole. A rule whose definition did not change (same name and the same
 * canonical definition, engine_rule_hash; annotations and expected groups
 * may change) keeps its instances and their state; the others start
 * afresh. Instances of changed or removed rules that were firing resolve
 * with an event (by ALERT_BY_RELOAD) so nothing stays firing forever
 * downstream. The samples held are kept. On error nothing changes and *re
 * says why. now is the time of the reload. */
int engine_reconfigure(struct engine *e, const struct calendar_def *cals,
                       size_t ncals, const struct rule_def *rules, size_t n,
                       int64_t now, struct rule_error *re);

/* Feeds point p of batch pb (p->has_ts required) that arrived at now:
 * stores the samples the rules read, the heartbeat, and evaluates the
 * affected instances at now. Events are delivered before it returns.
 * Returns IOCD_OK, IOCD_ELIMIT (some series refused at the store's cap; the
 * rest was used), IOCD_EINVAL or IOCD_ENOMEM. */
int engine_add_point(struct engine *e, const struct point_batch *pb,
                     const struct point *p, int64_t now);

/* Feeds one sample, as engine_add_point does for one field of a point
 * (with its heartbeat), for replay and rule tests. Labels are borrowed.
 * Returns as engine_add_point. */
int engine_add_sample(struct engine *e, const char *measurement,
                      const char *field, const struct series_label *labels,
                      size_t nlabels, int64_t ts_ns, double v, int64_t now);

/* Evaluates the instances due at or before now (see the top of this file).
 * Call it at engine_next_wake, or on a fixed period: a late tick gives the
 * same transitions, stamped later. Returns the number of instances
 * evaluated. */
size_t engine_tick(struct engine *e, int64_t now);

/* Evaluates every instance of every rule at now, whatever its deadline, as
 * a Prometheus evaluation cycle does (rule tests, replay at an interval).
 * Returns the number evaluated. */
size_t engine_eval_all(struct engine *e, int64_t now);

/* The earliest time at which some instance is due; INT64_MAX when none.
 * Not const: it brings the wake heap up to date first. */
int64_t engine_next_wake(struct engine *e);

/* Tells the engine whether iocd can reach its broker. Going down raises the
 * one ENGINE_BROKER_RULE alert (firing at once) and holds back every
 * instance of rules inhibited by the broker: they are not evaluated and do
 * not change state. Coming back resolves it, and the silence of every
 * source is counted from now (age() and absent() see no sample older than
 * now for instances that were not already firing), so a district is not
 * declared silent because iocd was deaf. Repeating the current state does
 * nothing. */
void engine_set_broker_up(struct engine *e, bool up, int64_t now);

/* Calls fn for every instance that is not inactive (the broker alert
 * included), rule by rule in definition order, groups in creation order.
 * ev->prev == ev->state; t_ns is the time of the last transition. */
typedef void engine_list_fn(void *ud, const struct alert_event *ev);
void engine_list(const struct engine *e, engine_list_fn *fn, void *ud);

/* Calls fn for every instance (group) of rule name, inactive ones
 * included, in creation order, with the time of its last evaluation (0:
 * not evaluated yet): its state, severity, last value and threshold as
 * engine_list gives them, without annotations (nannotations is 0). Nothing
 * is called when there is no such rule (the broker alert is not one). */
typedef void engine_group_fn(void *ud, const struct alert_event *ev,
                             int64_t evaluated_ns);
void engine_list_groups(const struct engine *e, const char *rule,
                        engine_group_fn *fn, void *ud);

struct engine_stats {
  size_t rules;
  size_t instances;    /* all, inactive included */
  size_t pending, firing, nodata, insufficient;
  size_t held;         /* instances held back while the broker is down */
  uint64_t evaluations;     /* instance evaluations, all triggers */
  uint64_t evals_on_sample; /* ... on arrival */
  uint64_t evals_on_tick;   /* ... by engine_tick and engine_eval_all */
  uint64_t events;          /* events delivered */
  uint64_t instances_refused; /* new groups refused at max_instances,
                                 once per point and rule */
  size_t bytes;             /* memory of rules and instances (not the store) */
};

void engine_get_stats(const struct engine *e, struct engine_stats *out);

/* The sample store, for inspection and tests. Owned by e. */
const struct series_store *engine_store(const struct engine *e);

/* The definition hash of rule name (16 hex digits, owned by e), NULL when
 * there is no such rule. Two definitions have the same hash when they mean
 * the same state machine: the canonical text of each expression, by, for,
 * tolerance, keep_firing_for, missing, guard, levels, freshness, labels,
 * working_time_only and the calendar's canonical definition. */
const char *engine_rule_hash(const struct engine *e, const char *name);

/* Renders template tmpl for event ev (as the annotations are) into out,
 * numbers as lang writes them (core/numfmt.h): {{value}} vi "1.410.312",
 * "0,28", en "1,410,312", "0.28"; {{value|pct}} vi "10,61%", en "10.61%";
 * {{value|int}} rounded half away from zero ("1.410.312"); a value the
 * event does not have, "-". Returns IOCD_OK, IOCD_EPARSE (an unterminated
 * {{ or an unknown filter, with err set) or a buf_* error. */
int engine_render(const char *tmpl, const struct alert_event *ev,
                  enum engine_lang lang, struct buf *out,
                  struct iocd_err *err);

/* ---- state save / restore (state_io.c) ----------------------------------- */

/* Appends the state of every instance that is not inactive to out as text
 * (JSON): rule name and definition hash, group labels, state, level and
 * severity, pending/firing/keep-firing times, last value and threshold,
 * the last transition's reason. The broker alert is not saved. Returns
 * IOCD_OK or a buf_* error. */
int engine_state_save(const struct engine *e, struct buf *out);

struct engine_restore_report {
  size_t restored;
  size_t changed; /* the rule's definition hash differs: not restored */
  size_t unknown; /* no such rule any more: not restored */
};

/* Restores the state saved by engine_state_save into the rules whose
 * definition hash matches, before any data arrives. No event is delivered:
 * a restored firing alert is still firing, and it is not announced again.
 * report may be NULL. Returns IOCD_OK, or IOCD_ECORRUPT with err set
 * ("state: alerts[3].state: \"fire\" is not a state") when the text is not
 * a state file (nothing is restored then), or IOCD_ENOMEM. */
int engine_state_restore(struct engine *e, const char *text, size_t len,
                         struct engine_restore_report *report,
                         struct iocd_err *err);

#endif
