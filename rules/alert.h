/*
 * The state machine of one alert instance: one rule for one group (one
 * district, say). docs/rules.md is the reference, as a table of states,
 * inputs and transitions.
 *
 * States: inactive -> pending -> firing -> (resolved) -> inactive, plus
 * nodata (the rule's condition is MISSING and its policy says to raise it)
 * and insufficient (the rule's guard, a minimum denominator, is not met).
 * "resolved" is an event, never a resting state: an instance that resolves
 * is inactive afterwards.
 *
 * The machine is fed one evaluation at a time (struct alert_input: the
 * truth of each level's condition, of the clear condition, of the guard,
 * whether the rule is outside working time) and answers with at most one
 * transition. It never evaluates expressions and never reads a clock, so it
 * is tested exhaustively on its own.
 */
#ifndef IOCD_RULES_ALERT_H
#define IOCD_RULES_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules/calendar.h"
#include "rules/expr.h"
#include "rules/series.h"

enum alert_state {
  ALERT_INACTIVE = 0,
  ALERT_PENDING,
  ALERT_FIRING,
  ALERT_RESOLVED, /* in events only: the instance is inactive afterwards */
  ALERT_NODATA,
  ALERT_INSUFFICIENT,
};

/* "inactive", "pending", "firing", "resolved", "nodata", "insufficient". */
const char *alert_state_name(enum alert_state s);

/* Parses the names above. Returns IOCD_OK or IOCD_EINVAL. */
int alert_state_parse(const char *s, enum alert_state *out);

/* What a MISSING condition means for a rule. {0} is NODATA. */
enum alert_missing {
  ALERT_MISSING_NODATA = 0, /* raise the nodata state of the same alert */
  ALERT_MISSING_KEEP,       /* keep the state as it is */
  ALERT_MISSING_OK,         /* treat as a false condition */
};

/* "nodata", "keep", "ok". */
const char *alert_missing_name(enum alert_missing m);

/* Parses the names above. Returns IOCD_OK or IOCD_EINVAL. */
int alert_missing_parse(const char *s, enum alert_missing *out);

/* Severity levels per rule, lowest first (warning, critical). */
#define ALERT_MAX_LEVELS 8

/* The timing and policies of a rule. Caller storage; {0} is: fire on the
 * first true evaluation, no tolerance, no keep_firing_for, MISSING raises
 * nodata, always active. */
struct alert_params {
  int64_t for_ns;             /* the condition must hold this long */
  int64_t tolerance_ns;       /* false/missing spells shorter than this do
                                 not end pending */
  int64_t keep_firing_for_ns; /* firing outlives its condition this long */
  enum alert_missing missing;
  /* Working-time-only rules: when not NULL, outside working time nothing
   * starts pending or fires, and for, tolerance and keep_firing_for count
   * working time only. Borrowed. */
  const struct calendar *working;
  /* Within this long after the time it is set to (engine start, broker
   * back), a MISSING condition keeps the state whatever the policy: the
   * store is still filling. 0: none. */
  int64_t warmup_until_ns;
};

/* What set off an evaluation. */
enum alert_trigger {
  ALERT_BY_SAMPLE = 0, /* a sample of a series the rule reads arrived */
  ALERT_BY_TICK,       /* time passed (a deadline, staleness, calendar) */
  ALERT_BY_BROKER,     /* iocd's own broker connection changed */
  ALERT_BY_RESTORE,    /* state restored from the state file */
  ALERT_BY_RELOAD,     /* the rule changed or went away in a reload */
};

/* "sample", "tick", "broker", "restore", "reload". */
const char *alert_trigger_name(enum alert_trigger by);

/* One evaluation of a rule for a group at time t_ns. */
struct alert_input {
  int64_t t_ns;
  bool off;          /* working-time-only rule outside working time */
  enum expr_truth guard;   /* EXPR_TRUE when the rule has no guard */
  size_t nlevels;          /* 1..ALERT_MAX_LEVELS */
  enum expr_truth fire[ALERT_MAX_LEVELS]; /* each level's condition */
  /* The clear condition of the level the instance fires at
   * (alert_level_for_clear), EXPR_TRUE when that level has none: while
   * firing, lower levels are reached only when it is true (hysteresis). */
  enum expr_truth clear;
};

/* One instance's state. Caller storage; zeroed (or alert_init) is inactive.
 * Fields are read-only outside alert.c and state restore. Times are
 * nanoseconds since the epoch, 0 when not set. */
struct alert {
  enum alert_state state; /* never ALERT_RESOLVED */
  int level;              /* 1-based level when pending or firing, else 0 */
  int64_t since_ns;       /* when the current state was entered */
  int64_t pending_since_ns; /* start of the current pending/firing episode */
  int64_t firing_since_ns;  /* when it started firing */
  int64_t false_since_ns;   /* pending: start of the current false spell */
  int64_t keep_since_ns;    /* firing: the condition false since */
  int64_t last_eval_ns;     /* the last evaluation */
};

/* A transition, as alert_step reports it. */
struct alert_transition {
  enum alert_state prev;
  enum alert_state state; /* ALERT_RESOLVED for firing -> inactive */
  int prev_level;
  int level;
  bool severity_changed; /* firing -> firing at another level */
  int64_t t_ns;
};

/* Zeroes a (inactive). */
void alert_init(struct alert *a);

/* The level whose clear condition the next input's `clear` must carry: the
 * level a fires at, 0 when it is not firing (then `clear` is ignored). */
int alert_level_for_clear(const struct alert *a);

/* Feeds one evaluation to a. Returns true and fills *tr when the state (or,
 * while firing, the level) changed; false when nothing a person would be
 * told about changed (internal clocks such as false_since may still move).
 * The level rule is Kapacitor's: the highest true level wins; while firing
 * at level c, a lower level (or none) is reached only when c's clear
 * condition is true. */
bool alert_step(struct alert *a, const struct alert_params *p,
                const struct alert_input *in, struct alert_transition *tr);

/* The earliest time at which a can change with no new evaluation input
 * other than the passing of time: the end of `for` while pending, the end
 * of the tolerance of a false spell, the end of keep_firing_for, the end of
 * the warm-up. The caller evaluates at that time. INT64_MAX when none. */
int64_t alert_deadline(const struct alert *a, const struct alert_params *p);

/* How long a state has lasted at t: wall-clock, or working time when p has
 * a working calendar. */
int64_t alert_elapsed(const struct alert_params *p, int64_t from_ns,
                      int64_t to_ns);

/* A key and a value, borrowed: rule labels, rendered annotations. */
struct alert_kv {
  const char *key;
  const char *value;
};

/* An alert event, delivered to engine_event_fn, and an active instance, as
 * engine_list reports it. Every pointer is borrowed for the duration of the
 * callback: copy what you keep. */
struct alert_event {
  const char *rule;
  const struct group *group;    /* the rule's by labels and their values */
  const struct alert_kv *labels; /* the rule's static labels */
  size_t nlabels;
  enum alert_state prev;        /* listing: == state */
  enum alert_state state;       /* ALERT_RESOLVED when it resolved */
  bool severity_changed;        /* firing at another level */
  const char *severity;         /* the level's severity now (for resolved:
                                   the level it fired at) */
  const char *prev_severity;    /* NULL unless severity_changed */
  int64_t t_ns;                 /* when (listing: the last transition) */
  int64_t active_since_ns;      /* pending/firing since (0 when neither) */
  int64_t firing_since_ns;      /* 0 unless it fired */
  bool has_value;               /* the number and threshold of the  */
  double value;                 /* condition (expr_eval_sides) when its */
  bool has_threshold;           /* top is a comparison and they are not */
  double threshold;             /* MISSING */
  enum alert_trigger by;        /* what set off the transition */
  /* Why, in words: what triggered it and what the condition saw, e.g.
   * "sample igate.online_l3{district=\"Lắk\",system=\"igate\"}=12 at
   * 2021-03-01T09:15:00+07:00: 0.162 < 0.3" or "tick at ...: no data:
   * increase(igate.received[1d]) stale". */
  const char *reason;
  const struct alert_kv *annotations; /* rendered templates */
  size_t nannotations;
};

#endif
