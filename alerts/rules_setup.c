/*
 * The configuration's rules, calendar, sources and parameters turned into
 * what rules/engine.h takes. Strings are borrowed from the config (the
 * engine copies what it keeps); the arrays of pointers that the engine's
 * structs need are built here, in a few flat allocations.
 */
#include "alerts/rules_setup.h"

#include <stdlib.h>
#include <string.h>

#define NS_PER_MS_I64 INT64_C(1000000)

static const char *source_values(const struct config_sources *src,
                                 const char *tag, size_t *n,
                                 char *const **list) {
  if (src->district_tag && strcmp(tag, src->district_tag) == 0) {
    *n = src->ndistricts;
    *list = src->districts;
    return tag;
  }
  if (src->system_tag && strcmp(tag, src->system_tag) == 0) {
    *n = src->nsystems;
    *list = src->systems;
    return tag;
  }
  *n = 0;
  *list = NULL;
  return NULL;
}

/* The number of expected tuples of r: the product of its sources' sizes. */
static size_t expected_count(const struct config *cfg,
                             const struct config_rule *r) {
  if (!r->expected || r->nby == 0) {
    return 0;
  }
  size_t total = 1;
  for (size_t i = 0; i < r->nby; i++) {
    size_t n;
    char *const *list;
    if (!source_values(&cfg->sources, r->by[i], &n, &list)) {
      return 0;
    }
    total *= n;
  }
  return total;
}

/* Writes the tuples of r, row-major, the last label varying fastest. */
static void expected_fill(const struct config *cfg, const struct config_rule *r,
                          const char **out, size_t ntuples) {
  for (size_t t = 0; t < ntuples; t++) {
    size_t rest = t;
    for (size_t k = r->nby; k-- > 0;) {
      size_t n;
      char *const *list;
      source_values(&cfg->sources, r->by[k], &n, &list);
      out[t * r->nby + k] = list[rest % n];
      rest /= n;
    }
  }
}

int rules_setup_init(struct rules_setup *s, const struct config *cfg,
                     struct iocd_err *err) {
  memset(s, 0, sizeof *s);
  s->cfg = cfg;
  const struct config_calendar *c = &cfg->calendar;
  const struct config_rules *rs = &cfg->rules;
  size_t nlevels = 0, nkvs = 0, nexp = 0;
  for (size_t i = 0; i < rs->n; i++) {
    const struct config_rule *r = &rs->v[i];
    nlevels += r->nlevels;
    nkvs += r->nannotations + r->nlabels;
    nexp += expected_count(cfg, r) * r->nby;
  }
  s->spans = calloc(c->noffice_hours + 1, sizeof *s->spans);
  s->holidays = calloc(c->nholidays + 1, sizeof *s->holidays);
  s->workdays = calloc(c->nworkdays + 1, sizeof *s->workdays);
  s->defs = calloc(rs->n + 1, sizeof *s->defs);
  s->levels = calloc(nlevels + 1, sizeof *s->levels);
  s->kvs = calloc(nkvs + 1, sizeof *s->kvs);
  s->expected = calloc(nexp + 1, sizeof *s->expected);
  if (!s->spans || !s->holidays || !s->workdays || !s->defs || !s->levels ||
      !s->kvs || !s->expected) {
    rules_setup_cleanup(s);
    return iocd_err_set(err, IOCD_ENOMEM, "rules: out of memory");
  }
  for (size_t i = 0; i < c->noffice_hours; i++) {
    s->spans[i] =
        (struct cal_span){c->office_hours[i].start, c->office_hours[i].end};
  }
  for (size_t i = 0; i < c->nholidays; i++) {
    s->holidays[i] =
        (struct cal_dates){c->holidays[i].first, c->holidays[i].last};
  }
  for (size_t i = 0; i < c->nworkdays; i++) {
    s->workdays[i] =
        (struct cal_dates){c->workdays[i].first, c->workdays[i].last};
  }
  s->cal = (struct calendar_def){
      .name = "office_hours",
      .utc_offset_s = c->utc_offset_s,
      .utc_offset_set = true,
      .hours = s->spans,
      .nhours = c->noffice_hours,
      /* Never 0 (the engine's Monday to Friday): config requires a day. */
      .weekdays = c->weekdays,
      .holidays = s->holidays,
      .nholidays = c->nholidays,
      .workdays = s->workdays,
      .nworkdays = c->nworkdays,
  };
  size_t lv = 0, kv = 0, ex = 0;
  for (size_t i = 0; i < rs->n; i++) {
    const struct config_rule *r = &rs->v[i];
    struct rule_def *d = &s->defs[i];
    d->name = r->name;
    d->guard = r->guard;
    if (r->nlevels) {
      d->levels = &s->levels[lv];
      d->nlevels = r->nlevels;
      for (size_t k = 0; k < r->nlevels; k++) {
        s->levels[lv++] =
            (struct rule_level){config_severity_name(r->levels[k].severity),
                                r->levels[k].expr, r->levels[k].clear};
      }
    } else {
      d->expr = r->expr;
      d->clear = r->clear;
      d->severity = config_severity_name(r->severity);
    }
    d->by = (const char *const *)r->by;
    d->nby = r->nby;
    d->for_ns = r->for_ms * NS_PER_MS_I64;
    d->tolerance_ns = r->for_tolerance_ms * NS_PER_MS_I64;
    d->keep_firing_for_ns = r->keep_firing_for_ms * NS_PER_MS_I64;
    d->missing = r->missing == CONFIG_MISSING_KEEP ? ALERT_MISSING_KEEP
                 : r->missing == CONFIG_MISSING_OK ? ALERT_MISSING_OK
                                                   : ALERT_MISSING_NODATA;
    d->working_time_only = r->working_time;
    d->calendar = NULL;
    d->freshness_ns = r->freshness_ms * NS_PER_MS_I64;
    d->annotations = &s->kvs[kv];
    d->nannotations = r->nannotations;
    for (size_t k = 0; k < r->nannotations; k++) {
      s->kvs[kv++] =
          (struct alert_kv){r->annotations[k].key, r->annotations[k].value};
    }
    d->labels = &s->kvs[kv];
    d->nlabels = r->nlabels;
    for (size_t k = 0; k < r->nlabels; k++) {
      s->kvs[kv++] = (struct alert_kv){r->labels[k].key, r->labels[k].value};
    }
    size_t nt = expected_count(cfg, r);
    d->expected = &s->expected[ex];
    d->nexpected = nt;
    expected_fill(cfg, r, &s->expected[ex], nt);
    ex += nt * r->nby;
    d->inhibited_by_broker = r->broker_dependent < 0    ? RULE_INHIBIT_AUTO
                             : r->broker_dependent == 1 ? RULE_INHIBIT_YES
                                                        : RULE_INHIBIT_NO;
  }
  s->ndefs = rs->n;
  return IOCD_OK;
}

void rules_setup_cleanup(struct rules_setup *s) {
  free(s->spans);
  free(s->holidays);
  free(s->workdays);
  free(s->defs);
  free(s->levels);
  free(s->kvs);
  free(s->expected);
  memset(s, 0, sizeof *s);
}

bool rules_setup_param(void *ud, const char *name, const struct group *g,
                       double *out) {
  const struct config *const *cfgp = ud;
  const struct config_rules *rs = &(*cfgp)->rules;
  const struct config_param *p = NULL;
  for (size_t i = 0; i < rs->nparams && !p; i++) {
    if (strcmp(rs->params[i].name, name) == 0) {
      p = &rs->params[i];
    }
  }
  if (!p) {
    return false;
  }
  const char *value = NULL;
  for (size_t k = 0; g && p->by && k < g->n && !value; k++) {
    if (strcmp(g->keys[k], p->by) == 0) {
      value = g->values[k];
    }
  }
  for (size_t k = 0; value && k < p->nvalues; k++) {
    if (strcmp(p->values[k].group, value) == 0) {
      *out = p->values[k].value;
      return true;
    }
  }
  if (p->has_default) {
    *out = p->def;
    return true;
  }
  return false;
}

void rules_setup_opts(const struct rules_setup *s, struct engine_opts *opts,
                      void *hook_ud, engine_event_fn *on_event, void *event_ud,
                      int64_t start_ns) {
  memset(opts, 0, sizeof *opts);
  opts->calendars = &s->cal;
  opts->ncalendars = 1;
  opts->param = rules_setup_param;
  opts->hook_ud = hook_ud;
  opts->on_event = on_event;
  opts->event_ud = event_ud;
  opts->freshness_ns = s->cfg->rules.freshness_ms * NS_PER_MS_I64;
  opts->start_ns = start_ns;
  opts->lang =
      s->cfg->language == CONFIG_LANG_EN ? ENGINE_LANG_EN : ENGINE_LANG_VI;
}

/* "FILE:LINE:COL: " of the rule the engine complains about. */
static int rule_error(const struct rules_setup *s, int rc,
                      const struct rule_error *re, struct iocd_err *err) {
  if (rc == IOCD_ENOMEM) {
    return iocd_err_set(err, rc, "rules: out of memory");
  }
  if (re->rule < s->cfg->rules.n) {
    const struct config_place *p = &s->cfg->rules.v[re->rule].place;
    return iocd_err_set(err, rc, "%s:%d:%d: %s", p->file ? p->file : "?",
                        p->line, p->col, re->err.msg);
  }
  return iocd_err_set(err, rc, "%s", re->err.msg);
}

int rules_setup_engine(const struct rules_setup *s,
                       const struct engine_opts *opts, struct engine **out,
                       struct iocd_err *err) {
  struct rule_error re;
  memset(&re, 0, sizeof re);
  int rc = engine_new(opts, s->defs, s->ndefs, out, &re);
  return rc ? rule_error(s, rc, &re, err) : IOCD_OK;
}

int rules_setup_reconfigure(const struct rules_setup *s, struct engine *e,
                            int64_t now, struct iocd_err *err) {
  struct rule_error re;
  memset(&re, 0, sizeof re);
  int rc = engine_reconfigure(e, &s->cal, 1, s->defs, s->ndefs, now, &re);
  if (rc) {
    return rule_error(s, rc, &re, err);
  }
  rc = engine_set_lang(
      e, s->cfg->language == CONFIG_LANG_EN ? ENGINE_LANG_EN : ENGINE_LANG_VI);
  return rc ? iocd_err_set(err, rc, "out of memory") : IOCD_OK;
}
