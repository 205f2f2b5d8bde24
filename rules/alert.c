/*
 * The alert state machine of one instance (docs/rules.md has the table).
 * An evaluation is first classified (true at a level, false, missing,
 * insufficient), the missing policy maps "missing" onto one of the others
 * or onto "no change", and the state then moves by the table. Timers (for,
 * tolerance, keep_firing_for) are measured between evaluations, in
 * wall-clock time or, for working-time-only rules, in working time; the
 * instance never reads a clock, it is told the time.
 */
#include "rules/alert.h"

#include <string.h>

static const char *const state_names[] = {
    [ALERT_INACTIVE] = "inactive", [ALERT_PENDING] = "pending",
    [ALERT_FIRING] = "firing",     [ALERT_RESOLVED] = "resolved",
    [ALERT_NODATA] = "nodata",     [ALERT_INSUFFICIENT] = "insufficient",
};

const char *alert_state_name(enum alert_state s) {
  if ((unsigned)s < sizeof state_names / sizeof state_names[0]) {
    return state_names[s];
  }
  return "unknown";
}

int alert_state_parse(const char *s, enum alert_state *out) {
  for (size_t i = 0; s && i < sizeof state_names / sizeof state_names[0];
       i++) {
    if (strcmp(s, state_names[i]) == 0) {
      *out = (enum alert_state)i;
      return IOCD_OK;
    }
  }
  return IOCD_EINVAL;
}

static const char *const missing_names[] = {
    [ALERT_MISSING_NODATA] = "nodata",
    [ALERT_MISSING_KEEP] = "keep",
    [ALERT_MISSING_OK] = "ok",
};

const char *alert_missing_name(enum alert_missing m) {
  if ((unsigned)m < sizeof missing_names / sizeof missing_names[0]) {
    return missing_names[m];
  }
  return "unknown";
}

int alert_missing_parse(const char *s, enum alert_missing *out) {
  for (size_t i = 0; s && i < sizeof missing_names / sizeof missing_names[0];
       i++) {
    if (strcmp(s, missing_names[i]) == 0) {
      *out = (enum alert_missing)i;
      return IOCD_OK;
    }
  }
  return IOCD_EINVAL;
}

static const char *const trigger_names[] = {
    [ALERT_BY_SAMPLE] = "sample",   [ALERT_BY_TICK] = "tick",
    [ALERT_BY_BROKER] = "broker",   [ALERT_BY_RESTORE] = "restore",
    [ALERT_BY_RELOAD] = "reload",
};

const char *alert_trigger_name(enum alert_trigger by) {
  if ((unsigned)by < sizeof trigger_names / sizeof trigger_names[0]) {
    return trigger_names[by];
  }
  return "unknown";
}

void alert_init(struct alert *a) {
  memset(a, 0, sizeof *a);
}

int alert_level_for_clear(const struct alert *a) {
  return a->state == ALERT_FIRING ? a->level : 0;
}

int64_t alert_elapsed(const struct alert_params *p, int64_t from_ns,
                      int64_t to_ns) {
  if (to_ns <= from_ns) {
    return 0;
  }
  if (p->working) {
    return calendar_working_ns(p->working, from_ns, to_ns);
  }
  return to_ns - from_ns;
}

/* The time at which d has elapsed since from. */
static int64_t elapsed_at(const struct alert_params *p, int64_t from_ns,
                          int64_t d_ns) {
  if (p->working) {
    return calendar_add_working(p->working, from_ns, d_ns);
  }
  if (d_ns > 0 && from_ns > INT64_MAX - d_ns) {
    return INT64_MAX;
  }
  return from_ns + d_ns;
}

/* What one evaluation says, once levels, hysteresis and the guard are
 * taken into account and before the missing policy. */
enum verdict { V_TRUE, V_FALSE, V_MISSING, V_INSUFFICIENT, V_NODATA };

static enum verdict classify(const struct alert *a,
                             const struct alert_input *in, int *level) {
  *level = 0;
  if (in->guard == EXPR_MISSING) {
    return V_MISSING;
  }
  if (in->guard == EXPR_FALSE) {
    return V_INSUFFICIENT;
  }
  size_t n = in->nlevels < ALERT_MAX_LEVELS ? in->nlevels : ALERT_MAX_LEVELS;
  int high = 0;
  bool any_missing = false;
  for (size_t i = 0; i < n; i++) {
    if (in->fire[i] == EXPR_TRUE) {
      high = (int)i + 1;
    } else if (in->fire[i] == EXPR_MISSING) {
      any_missing = true;
    }
  }
  int cur = a->state == ALERT_FIRING ? a->level : 0;
  if (cur > 0 && high < cur) {
    /* Kapacitor's rule: below the current level only once its clear
     * condition holds. A clear that cannot be evaluated keeps the level,
     * unless the conditions themselves are missing: then it is no data. */
    if (in->clear == EXPR_FALSE ||
        (in->clear == EXPR_MISSING && !any_missing)) {
      *level = cur;
      return V_TRUE;
    }
    if (in->clear == EXPR_MISSING) {
      return V_MISSING;
    }
  }
  if (high > 0) {
    *level = high;
    return V_TRUE;
  }
  return any_missing ? V_MISSING : V_FALSE;
}

static void enter(struct alert *a, enum alert_state s, int64_t t) {
  a->state = s;
  a->since_ns = t;
  a->false_since_ns = 0;
  a->keep_since_ns = 0;
  if (s != ALERT_PENDING && s != ALERT_FIRING) {
    a->level = 0;
    a->pending_since_ns = 0;
    a->firing_since_ns = 0;
  }
}

static bool report(struct alert_transition *tr, enum alert_state prev,
                   enum alert_state state, int prev_level, int level,
                   int64_t t) {
  if (tr) {
    *tr = (struct alert_transition){.prev = prev,
                                    .state = state,
                                    .prev_level = prev_level,
                                    .level = level,
                                    .severity_changed = prev == state &&
                                                        prev_level != level,
                                    .t_ns = t};
  }
  return true;
}

/* The condition became true at level: pending, or firing at once without a
 * `for`. */
static bool start(struct alert *a, const struct alert_params *p, int level,
                  int64_t t, struct alert_transition *tr) {
  enum alert_state prev = a->state;
  int prev_level = a->level;
  if (p->for_ns <= 0) {
    enter(a, ALERT_FIRING, t);
    a->level = level;
    a->pending_since_ns = t;
    a->firing_since_ns = t;
    return report(tr, prev, ALERT_FIRING, prev_level, level, t);
  }
  enter(a, ALERT_PENDING, t);
  a->level = level;
  a->pending_since_ns = t;
  return report(tr, prev, ALERT_PENDING, prev_level, level, t);
}

static enum alert_state target_of(enum verdict v) {
  switch (v) {
    case V_NODATA:
      return ALERT_NODATA;
    case V_INSUFFICIENT:
      return ALERT_INSUFFICIENT;
    default:
      return ALERT_INACTIVE;
  }
}

bool alert_step(struct alert *a, const struct alert_params *p,
                const struct alert_input *in, struct alert_transition *tr) {
  int64_t t = in->t_ns;
  a->last_eval_ns = t;
  if (in->off) {
    /* Outside working time nothing starts, nothing fires, nothing ends:
     * a firing alert is not resolved by a holiday. */
    return false;
  }
  int level;
  enum verdict v = classify(a, in, &level);
  if (v == V_MISSING) {
    if (t < p->warmup_until_ns) {
      return false;
    }
    switch (p->missing) {
      case ALERT_MISSING_KEEP:
        return false;
      case ALERT_MISSING_OK:
        v = V_FALSE;
        break;
      case ALERT_MISSING_NODATA:
        v = V_NODATA;
        break;
    }
  }
  enum alert_state prev = a->state;
  int prev_level = a->level;
  switch (a->state) {
    case ALERT_INACTIVE:
    case ALERT_NODATA:
    case ALERT_INSUFFICIENT:
    case ALERT_RESOLVED:
      if (v == V_TRUE) {
        return start(a, p, level, t, tr);
      }
      if (target_of(v) == a->state) {
        return false;
      }
      enter(a, target_of(v), t);
      return report(tr, prev, a->state, prev_level, 0, t);
    case ALERT_PENDING:
      if (v == V_TRUE) {
        a->false_since_ns = 0;
        a->level = level;
        if (alert_elapsed(p, a->pending_since_ns, t) < p->for_ns) {
          return false;
        }
        a->state = ALERT_FIRING;
        a->since_ns = t;
        a->firing_since_ns = t;
        return report(tr, prev, ALERT_FIRING, prev_level, level, t);
      }
      if (p->tolerance_ns > 0) {
        if (!a->false_since_ns) {
          a->false_since_ns = t;
        }
        if (alert_elapsed(p, a->false_since_ns, t) < p->tolerance_ns) {
          return false;
        }
      }
      enter(a, target_of(v), t);
      return report(tr, prev, a->state, prev_level, 0, t);
    case ALERT_FIRING:
      if (v == V_TRUE) {
        a->keep_since_ns = 0;
        if (level == a->level) {
          return false;
        }
        a->level = level;
        return report(tr, prev, ALERT_FIRING, prev_level, level, t);
      }
      if (p->keep_firing_for_ns > 0) {
        if (!a->keep_since_ns) {
          a->keep_since_ns = t;
        }
        if (alert_elapsed(p, a->keep_since_ns, t) < p->keep_firing_for_ns) {
          return false;
        }
      }
      enter(a, target_of(v), t);
      return report(tr, prev,
                    a->state == ALERT_INACTIVE ? ALERT_RESOLVED : a->state,
                    prev_level, prev_level, t);
  }
  return false;
}

int64_t alert_deadline(const struct alert *a, const struct alert_params *p) {
  int64_t d = INT64_MAX;
  switch (a->state) {
    case ALERT_PENDING:
      if (a->false_since_ns) {
        d = elapsed_at(p, a->false_since_ns, p->tolerance_ns);
      } else {
        d = elapsed_at(p, a->pending_since_ns, p->for_ns);
      }
      break;
    case ALERT_FIRING:
      if (a->keep_since_ns && p->keep_firing_for_ns > 0) {
        d = elapsed_at(p, a->keep_since_ns, p->keep_firing_for_ns);
      }
      break;
    default:
      break;
  }
  if (p->warmup_until_ns > a->last_eval_ns && p->warmup_until_ns < d) {
    d = p->warmup_until_ns;
  }
  return d;
}
