/*
 * One evaluation of an instance: its rule's guard, levels and clear
 * condition evaluated in one context, the alert state machine stepped,
 * and, on a transition, the reason (what set it off, the value against
 * the threshold, what was missing) written and the event delivered. The
 * instance is then scheduled for when its state can next change with time
 * alone.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/timefmt.h"
#include "rules/engine_int.h"
#include "rules/rules_int.h"

#define REASON_MAX 1024

/* Appends v as reasons show numbers: a whole number without decimals
 * (counts of dossiers stay counts), others with up to six significant
 * digits. Templates write numbers for people instead (core/numfmt.h). */
static int put_num(struct buf *b, double v) {
  if (isnan(v)) {
    return buf_puts(b, "NaN");
  }
  if (v == floor(v) && fabs(v) < 1e15) {
    return buf_printf(b, "%.0f", v);
  }
  char text[64];
  snprintf(text, sizeof text, "%.6g", v);
  if (strchr(text, 'e') && fabs(v) < 1e15 && fabs(v) >= 1e-4) {
    snprintf(text, sizeof text, "%.2f", v);
  }
  return buf_puts(b, text);
}

/* ISO 8601 local time of t in calendar c (or UTC), to the second, with the
 * offset: 2021-03-01T09:15:00+07:00. */
void engine__fmt_time(const struct calendar *c, int64_t t, char out[40]) {
  time_format_rfc3339(t, c ? calendar_utc_offset(c) : 0, 0, out, 40);
}

/* What the expression callbacks need. */
struct evalud {
  struct engine *e;
  struct rule *r;
};

static bool cb_param(void *ud, const char *name, const struct group *g,
                     double *out) {
  struct evalud *u = ud;
  return u->e->opts.param && u->e->opts.param(u->e->opts.hook_ud, name, g, out);
}

static int64_t cb_freshness(void *ud, const char *meas, const char *field) {
  struct evalud *u = ud;
  return u->e->opts.freshness
             ? u->e->opts.freshness(u->e->opts.hook_ud, meas, field)
             : 0;
}

static const struct calendar *cal_named(const struct engine *e,
                                        const char *name) {
  return engine__find_cal((const struct calendar *const *)e->cals, e->ncals,
                          name);
}

static int cb_calendar(void *ud, const char *name, const struct group *g,
                       int64_t from, int64_t to) {
  (void)g;
  struct evalud *u = ud;
  const struct calendar *c = cal_named(u->e, name);
  if (!c) {
    return -1;
  }
  return calendar_during(c, from, to) ? 1 : 0;
}

static int64_t cb_calendar_next(void *ud, const char *name,
                                const struct group *g, int64_t t, int64_t d) {
  (void)g;
  struct evalud *u = ud;
  const struct calendar *c = cal_named(u->e, name);
  return c ? calendar_during_next(c, t, d) : INT64_MAX;
}

static int64_t cb_working(void *ud, const struct group *g, int64_t t, int64_t d,
                          bool forward) {
  (void)g;
  struct evalud *u = ud;
  if (!u->r->cal) {
    return forward ? INT64_MAX : INT64_MIN;
  }
  return forward ? calendar_add_working(u->r->cal, t, d)
                 : calendar_working_start(u->r->cal, t, d);
}

static int64_t rule_freshness(const struct engine *e, const struct rule *r) {
  if (r->freshness_ns > 0) {
    return r->freshness_ns;
  }
  return e->opts.freshness_ns > 0 ? e->opts.freshness_ns
                                  : EXPR_DEFAULT_FRESHNESS_NS;
}

/* What one evaluation saw, for the reason text. */
struct seen {
  struct expr_value fire[ALERT_MAX_LEVELS];
  struct expr_value guard;
  struct expr_value gl, gr; /* the guard's sides */
  bool guard_sides;
};

static int put_series(struct buf *b, const struct touch *t) {
  int rc = buf_printf(b, "%s.%s", t->measurement, t->field ? t->field : "*");
  size_t n = series_ntags(t->series);
  for (size_t i = 0; i < n && !rc; i++) {
    const char *k, *v;
    series_tag_at(t->series, i, &k, &v);
    rc = buf_printf(b, "%s%s=\"%s\"", i ? "," : "{", k, v);
  }
  if (!rc && n) {
    rc = buf_putc(b, '}');
  }
  return rc;
}

static int put_missing(struct buf *b, enum engine_lang lang,
                       const struct expr_value *v) {
  return buf_printf(b, "%s (%s)", v->culprit ? v->culprit : "?",
                    engine__why_word(lang, v->why));
}

/* "sample igate.online_l3{district="Lắk"}=12 at 2021-...: value 0.16,
 * threshold 0.3" and the like. */
static int build_reason(struct engine *e, const struct inst *in,
                        const struct trigger *trg,
                        const struct alert_transition *tr,
                        const struct seen *sw, int64_t now, struct buf *b) {
  char when[40];
  const struct calendar *fc =
      in->rule->cal ? in->rule->cal : engine__default_cal(e);
  int rc;
  if (trg->by == ALERT_BY_SAMPLE && trg->touch) {
    const struct touch *t = trg->touch;
    rc = buf_printf(b, "%s ", engine__word(e->opts.lang, ENGINE__W_SAMPLE));
    if (!rc) {
      rc = put_series(b, t);
    }
    const struct ring *r = &t->series->ring;
    size_t i = series__upper(r, t->ts);
    if (!rc && i > 0 && ring_at(r, i - 1)->ts == t->ts) {
      rc = buf_putc(b, '=');
      if (!rc) {
        rc = put_num(b, ring_at(r, i - 1)->v);
      }
    }
    engine__fmt_time(fc, t->ts, when);
    if (!rc) {
      rc = buf_printf(b, " %s %s", engine__word(e->opts.lang, ENGINE__W_AT),
                      when);
    }
  } else {
    engine__fmt_time(fc, now, when);
    rc = buf_printf(b, "%s %s %s", engine__trigger_word(e->opts.lang, trg->by),
                    engine__word(e->opts.lang, ENGINE__W_AT), when);
  }
  if (rc) {
    return rc;
  }
  switch (tr->state) {
    case ALERT_NODATA: {
      const struct expr_value *m = sw->guard.missing ? &sw->guard : NULL;
      for (size_t i = 0; !m && i < in->rule->nlevels; i++) {
        if (sw->fire[i].missing) {
          m = &sw->fire[i];
        }
      }
      rc = buf_printf(b, ": %s", engine__word(e->opts.lang, ENGINE__W_NO_DATA));
      if (!rc && m) {
        rc = buf_puts(b, ": ");
        if (!rc) {
          rc = put_missing(b, e->opts.lang, m);
        }
      }
      return rc;
    }
    case ALERT_INSUFFICIENT:
      rc = buf_printf(b, ": %s %s %s",
                      engine__word(e->opts.lang, ENGINE__W_INSUFFICIENT),
                      expr_to_string(in->rule->guard),
                      engine__word(e->opts.lang, ENGINE__W_NOT_MET));
      if (!rc && sw->guard_sides && !sw->gl.missing && !sw->gr.missing) {
        rc = buf_puts(b, " (");
        if (!rc) {
          rc = put_num(b, sw->gl.v);
        }
        if (!rc) {
          rc = buf_printf(b, " %s ", engine__word(e->opts.lang, ENGINE__W_VS));
        }
        if (!rc) {
          rc = put_num(b, sw->gr.v);
        }
        if (!rc) {
          rc = buf_putc(b, ')');
        }
      }
      return rc;
    default:
      break;
  }
  bool truth = tr->state == ALERT_PENDING || tr->state == ALERT_FIRING;
  rc =
      buf_printf(b, ": %s",
                 engine__word(e->opts.lang, truth ? ENGINE__W_CONDITION_TRUE
                                                  : ENGINE__W_CONDITION_FALSE));
  if (!rc && in->has_value) {
    rc = buf_printf(b, ", %s ", engine__word(e->opts.lang, ENGINE__W_VALUE));
    if (!rc) {
      rc = put_num(b, in->value);
    }
  }
  if (!rc && in->has_threshold) {
    rc =
        buf_printf(b, ", %s ", engine__word(e->opts.lang, ENGINE__W_THRESHOLD));
    if (!rc) {
      rc = put_num(b, in->threshold);
    }
  }
  if (!rc && tr->severity_changed) {
    rc = buf_printf(b, ", %s %s -> %s",
                    engine__word(e->opts.lang, ENGINE__W_SEVERITY),
                    in->rule->levels[tr->prev_level - 1].severity,
                    in->rule->levels[tr->level - 1].severity);
  }
  return rc;
}

/* Evaluates one expression into *v and its truth. */
static enum expr_truth eval_truth(const struct expr *x,
                                  const struct eval_ctx *c,
                                  struct expr_value *v) {
  expr_eval(x, c, v);
  return expr_truth_of(v);
}

static int64_t min64(int64_t a, int64_t b) {
  return a < b ? a : b;
}

/* Evaluates inst at now and delivers the transition, if any. */
void engine__evaluate(struct engine *e, struct inst *in, int64_t now,
                      const struct trigger *trg) {
  struct rule *r = in->rule;
  if (r->builtin) {
    return;
  }
  if (r->inhibited && e->broker_down) {
    engine__schedule(e, in, INT64_MAX);
    return;
  }
  e->st.evaluations++;
  if (trg->by == ALERT_BY_SAMPLE) {
    e->st.evals_on_sample++;
  } else {
    e->st.evals_on_tick++;
  }
  struct evalud u = {.e = e, .r = r};
  /* Every expression of the rule below is evaluated in this one context,
   * so a window they share is read once. */
  struct expr_memo memo;
  memo.n = 0;
  struct eval_ctx c = {
      .t_ns = now,
      .store = e->store,
      .group = &in->group,
      .freshness_ns = rule_freshness(e, r),
      .param = cb_param,
      .freshness = r->freshness_ns > 0 ? NULL : cb_freshness,
      .calendar = cb_calendar,
      .ud = &u,
      .working = cb_working,
      .calendar_next = cb_calendar_next,
      /* A firing instance sees the real silence; the others are not
       * blamed for time iocd could not hear them. */
      .heard_since_ns = in->a.state == ALERT_FIRING ? 0 : e->listen_since,
      .memo = &memo,
  };
  struct alert_params p = r->params;
  if (e->listen_since > 0) {
    p.warmup_until_ns = e->listen_since + rule_freshness(e, r);
  }
  struct alert_input ai = {.t_ns = now, .nlevels = r->nlevels};
  struct seen sw;
  memset(&sw, 0, sizeof sw);
  int64_t wake = INT64_MAX;
  ai.off = r->working_only && !calendar_is_working_time(r->cal, now);
  if (ai.off) {
    wake = calendar_next_change(r->cal, now);
  } else {
    ai.guard = EXPR_TRUE;
    if (r->guard) {
      ai.guard = eval_truth(r->guard, &c, &sw.guard);
      wake = min64(wake, expr_horizon(r->guard, &c));
    }
    int high = 0;
    for (size_t i = 0; i < r->nlevels; i++) {
      ai.fire[i] = eval_truth(r->levels[i].fire, &c, &sw.fire[i]);
      if (ai.fire[i] == EXPR_TRUE) {
        high = (int)i + 1;
      }
      wake = min64(wake, expr_horizon(r->levels[i].fire, &c));
    }
    ai.clear = EXPR_TRUE;
    int cl = alert_level_for_clear(&in->a);
    if (cl > 0 && r->levels[cl - 1].clear) {
      struct expr_value cv;
      ai.clear = eval_truth(r->levels[cl - 1].clear, &c, &cv);
      wake = min64(wake, expr_horizon(r->levels[cl - 1].clear, &c));
    }
    /* The number and threshold shown: the level that is true, else the
     * level it fires at, else the first. */
    int show = high ? high : cl ? cl : 1;
    struct expr_value lhs, rhs;
    if (expr_eval_sides(r->levels[show - 1].fire, &c, &lhs, &rhs) == IOCD_OK) {
      in->has_value = !lhs.missing;
      in->value = lhs.v;
      in->has_threshold = !rhs.missing;
      in->threshold = rhs.v;
    } else {
      struct expr_value *fv = &sw.fire[show - 1];
      in->has_value = !fv->missing;
      in->value = fv->v;
      in->has_threshold = false;
    }
  }
  struct alert_transition tr;
  bool changed = alert_step(&in->a, &p, &ai, &tr);
  if (changed) {
    if (tr.state == ALERT_INSUFFICIENT && r->guard) {
      /* The guard's two sides, for the reason only. */
      sw.guard_sides = expr_eval_sides(r->guard, &c, &sw.gl, &sw.gr) == IOCD_OK;
    }
    struct buf b;
    buf_init(&b, REASON_MAX);
    if (build_reason(e, in, trg, &tr, &sw, now, &b) == IOCD_OK) {
      engine__set_reason(in, b.data);
    }
    buf_cleanup(&b);
    in->reason_ns = now;
    in->by = trg->by;
    struct alert_event ev;
    engine__fill_event(e, in, &ev);
    ev.prev = tr.prev;
    ev.state = tr.state;
    ev.t_ns = now;
    ev.severity_changed = tr.severity_changed;
    int lv = tr.level ? tr.level : tr.prev_level;
    ev.severity = engine__severity_of(r, lv);
    ev.prev_severity =
        tr.severity_changed ? engine__severity_of(r, tr.prev_level) : NULL;
    if (tr.state == ALERT_RESOLVED) {
      ev.active_since_ns = 0;
      ev.firing_since_ns = 0;
    }
    engine__deliver(e, in, &ev);
  }
  wake = min64(wake, alert_deadline(&in->a, &p));
  if (wake <= now) {
    wake = now + 1;
  }
  engine__schedule(e, in, wake);
}
