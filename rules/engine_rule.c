/*
 * Rules and calendars built from their definitions: every definition is
 * checked (names, durations, by labels, expected groups, templates), its
 * expressions parsed, its calendars resolved, and its canonical text and
 * hash made, so that a reload keeps the state of a rule that did not
 * change. Errors say which rule and which field.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/mem.h"
#include "rules/engine_int.h"

/* ---- calendars ----------------------------------------------------------- */

const struct calendar *engine__find_cal(const struct calendar *const *cals,
                                        size_t n, const char *name) {
  for (size_t i = 0; i < n; i++) {
    if (strcmp(calendar_name(cals[i]), name) == 0) {
      return cals[i];
    }
  }
  return NULL;
}

const struct calendar *engine__default_cal(const struct engine *e) {
  const struct calendar *c = engine__find_cal(
      (const struct calendar *const *)e->cals, e->ncals, "office_hours");
  return c ? c : e->ncals ? e->cals[0] : NULL;
}

void engine__cals_free(struct calendar **c, size_t n) {
  for (size_t i = 0; c && i < n; i++) {
    calendar_free(c[i]);
  }
  free(c);
}

int engine__cals_build(const struct calendar_def *defs, size_t n,
                       struct calendar ***out, size_t *nout,
                       struct rule_error *re) {
  static const struct calendar_def def0 = {0};
  if (n == 0) {
    defs = &def0;
    n = 1;
  }
  struct calendar **v = calloc(n, sizeof *v);
  if (!v) {
    return engine__rerr(re, 0, "calendars", "calendars", 0, IOCD_ENOMEM,
                        "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    struct iocd_err err = {{0}};
    v[i] = calendar_new(&defs[i], &err);
    if (!v[i]) {
      engine__cals_free(v, i);
      if (re) {
        re->rule = 0;
        snprintf(re->where, sizeof re->where, "calendars[%zu]", i);
        re->col = 0;
        re->err = err;
      }
      return IOCD_EINVAL;
    }
    for (size_t k = 0; k < i; k++) {
      if (strcmp(calendar_name(v[k]), calendar_name(v[i])) == 0) {
        if (re) {
          re->rule = 0;
          snprintf(re->where, sizeof re->where, "calendars[%zu]", i);
          re->col = 0;
          iocd_err_set(&re->err, IOCD_EINVAL,
                       "calendars[%zu]: a second calendar named %s", i,
                       calendar_name(v[k]));
        }
        engine__cals_free(v, i + 1);
        return IOCD_EINVAL;
      }
    }
  }
  *out = v;
  *nout = n;
  return IOCD_OK;
}

/* ---- rules --------------------------------------------------------------- */

void engine__kv_free(struct kv *v, size_t n) {
  for (size_t i = 0; v && i < n; i++) {
    free(v[i].key);
    free(v[i].value);
  }
  free(v);
}

void engine__rule_free(struct rule *r) {
  if (!r) {
    return;
  }
  free(r->name);
  for (size_t i = 0; i < r->nlevels; i++) {
    free(r->levels[i].severity);
    expr_free(r->levels[i].fire);
    expr_free(r->levels[i].clear);
  }
  expr_free(r->guard);
  for (size_t i = 0; i < r->nby; i++) {
    free(r->by[i]);
  }
  free(r->by);
  engine__kv_free(r->annotations, r->nannotations);
  engine__kv_free(r->labels, r->nlabels);
  free(r->label_view);
  for (size_t i = 0; r->expected && i < r->nexpected * r->nby; i++) {
    free(r->expected[i]);
  }
  free(r->expected);
  free(r->canonical);
  for (size_t i = 0; i < r->ninsts; i++) {
    engine__inst_free(r->insts[i]);
  }
  free(r->insts);
  free(r->table);
  free(r);
}

static bool name_ok(const char *s) {
  if (!s || !*s) {
    return false;
  }
  for (; *s; s++) {
    char c = *s;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
              c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

int engine__rerr(struct rule_error *re, size_t idx, const char *name,
                 const char *where, int col, int rc, const char *fmt, ...) {
  if (!re) {
    return rc;
  }
  char what[IOCD_ERR_SIZE];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  re->rule = idx;
  snprintf(re->where, sizeof re->where, "%s", where);
  re->col = col;
  iocd_err_set(&re->err, rc, "rules[%zu] %s: %s: %s", idx,
               name && *name ? name : "(unnamed)", where, what);
  return rc;
}

/* Parses one expression of a rule; *out NULL when text is NULL and the
 * expression is optional. */
static int parse_one(const char *text, bool required, struct expr **out,
                     struct rule_error *re, size_t idx, const char *name,
                     const char *where) {
  *out = NULL;
  if (!text) {
    if (required) {
      return engine__rerr(re, idx, name, where, 0, IOCD_EINVAL, "missing");
    }
    return IOCD_OK;
  }
  struct iocd_err err = {{0}};
  int col = 0;
  *out = expr_parse(text, &err, &col);
  if (!*out) {
    return engine__rerr(re, idx, name, where, col,
                        col ? IOCD_EPARSE : IOCD_ENOMEM, "%s", err.msg);
  }
  return IOCD_OK;
}

static int check_def(const struct rule_def *d, size_t idx,
                     struct rule_error *re) {
  const char *name = d->name;
  if (!name_ok(name)) {
    return engine__rerr(re, idx, name, "name", 0, IOCD_EINVAL,
                        "\"%s\" is not a rule name (letters, digits, _ . : -)",
                        name ? name : "");
  }
  if (strcmp(name, ENGINE_BROKER_RULE) == 0) {
    return engine__rerr(re, idx, name, "name", 0, IOCD_EINVAL,
                        "the name is reserved for iocd's own broker alert");
  }
  if (d->expr && d->nlevels) {
    return engine__rerr(re, idx, name, "levels", 0, IOCD_EINVAL,
                        "give either expr or levels, not both");
  }
  if (!d->expr && !d->nlevels) {
    return engine__rerr(re, idx, name, "expr", 0, IOCD_EINVAL,
                        "missing (or give levels)");
  }
  if (d->nlevels > ALERT_MAX_LEVELS || (d->nlevels && !d->levels)) {
    return engine__rerr(re, idx, name, "levels", 0, IOCD_EINVAL,
                        "at most %d levels", ALERT_MAX_LEVELS);
  }
  if (d->nlevels && (d->clear || d->severity)) {
    return engine__rerr(re, idx, name, d->clear ? "clear" : "severity", 0,
                        IOCD_EINVAL, "with levels, give it per level");
  }
  if (d->for_ns < 0 || d->tolerance_ns < 0 || d->keep_firing_for_ns < 0 ||
      d->freshness_ns < 0) {
    return engine__rerr(re, idx, name,
                        d->for_ns < 0         ? "for"
                        : d->tolerance_ns < 0 ? "tolerance"
                        : d->freshness_ns < 0 ? "freshness"
                                              : "keep_firing_for",
                        0, IOCD_EINVAL, "a duration cannot be negative");
  }
  if ((unsigned)d->missing > ALERT_MISSING_OK) {
    return engine__rerr(re, idx, name, "missing", 0, IOCD_EINVAL,
                        "not one of nodata, keep, ok");
  }
  if ((unsigned)d->inhibited_by_broker > RULE_INHIBIT_NO) {
    return engine__rerr(re, idx, name, "inhibited_by_broker", 0, IOCD_EINVAL,
                        "not one of auto, yes, no");
  }
  if (d->nby > MAX_BY || (d->nby && !d->by)) {
    return engine__rerr(re, idx, name, "by", 0, IOCD_EINVAL,
                        "at most %d labels", MAX_BY);
  }
  for (size_t i = 0; i < d->nby; i++) {
    if (!d->by[i] || !*d->by[i]) {
      return engine__rerr(re, idx, name, "by", 0, IOCD_EINVAL,
                          "by[%zu] is empty", i);
    }
    for (size_t j = 0; j < i; j++) {
      if (strcmp(d->by[i], d->by[j]) == 0) {
        return engine__rerr(re, idx, name, "by", 0, IOCD_EINVAL,
                            "label %s is listed twice", d->by[i]);
      }
    }
  }
  if (d->nexpected && (!d->nby || !d->expected)) {
    return engine__rerr(re, idx, name, "expected", 0, IOCD_EINVAL,
                        "expected groups need by labels");
  }
  for (size_t i = 0; i < d->nexpected * d->nby; i++) {
    if (!d->expected[i] || !*d->expected[i]) {
      char where[48];
      snprintf(where, sizeof where, "expected[%zu]", i / d->nby);
      return engine__rerr(re, idx, name, where, 0, IOCD_EINVAL,
                          "the value of %s is empty", d->by[i % d->nby]);
    }
  }
  if (d->nannotations > MAX_ANNOTATIONS ||
      (d->nannotations && !d->annotations)) {
    return engine__rerr(re, idx, name, "annotations", 0, IOCD_EINVAL,
                        "at most %d annotations", MAX_ANNOTATIONS);
  }
  if (d->nlabels && !d->labels) {
    return engine__rerr(re, idx, name, "labels", 0, IOCD_EINVAL, "missing");
  }
  for (size_t i = 0; i < d->nannotations; i++) {
    const struct alert_kv *a = &d->annotations[i];
    char where[48];
    snprintf(where, sizeof where, "annotations.%s", a->key ? a->key : "");
    if (!a->key || !*a->key || !a->value) {
      return engine__rerr(re, idx, name, where, 0, IOCD_EINVAL,
                          "an annotation needs a name and a template");
    }
    struct iocd_err err = {{0}};
    if (engine__check_template(a->value, &err)) {
      return engine__rerr(re, idx, name, where, 0, IOCD_EPARSE, "%s", err.msg);
    }
  }
  for (size_t i = 0; i < d->nlabels; i++) {
    if (!d->labels[i].key || !*d->labels[i].key || !d->labels[i].value) {
      return engine__rerr(re, idx, name, "labels", 0, IOCD_EINVAL,
                          "labels[%zu] needs a name and a value", i);
    }
  }
  return IOCD_OK;
}

/* Parses every expression of d into r. */
static int parse_exprs(const struct rule_def *d, size_t idx, struct rule *r,
                       struct rule_error *re) {
  int rc;
  if (d->expr) {
    r->nlevels = 1;
    r->levels[0].severity = mem_strdup(d->severity ? d->severity : "warning");
    if (!r->levels[0].severity) {
      return engine__rerr(re, idx, d->name, "severity", 0, IOCD_ENOMEM,
                          "out of memory");
    }
    rc = parse_one(d->expr, true, &r->levels[0].fire, re, idx, d->name, "expr");
    if (!rc) {
      rc = parse_one(d->clear, false, &r->levels[0].clear, re, idx, d->name,
                     "clear");
    }
    if (rc) {
      return rc;
    }
  } else {
    for (size_t i = 0; i < d->nlevels; i++) {
      const struct rule_level *lv = &d->levels[i];
      char where[48];
      snprintf(where, sizeof where, "levels[%zu].severity", i);
      if (!lv->severity || !*lv->severity) {
        return engine__rerr(re, idx, d->name, where, 0, IOCD_EINVAL, "missing");
      }
      r->nlevels = i + 1;
      r->levels[i].severity = mem_strdup(lv->severity);
      if (!r->levels[i].severity) {
        return engine__rerr(re, idx, d->name, where, 0, IOCD_ENOMEM,
                            "out of memory");
      }
      snprintf(where, sizeof where, "levels[%zu].expr", i);
      rc = parse_one(lv->expr, true, &r->levels[i].fire, re, idx, d->name,
                     where);
      if (rc) {
        return rc;
      }
      snprintf(where, sizeof where, "levels[%zu].clear", i);
      rc = parse_one(lv->clear, false, &r->levels[i].clear, re, idx, d->name,
                     where);
      if (rc) {
        return rc;
      }
    }
  }
  return parse_one(d->guard, false, &r->guard, re, idx, d->name, "guard");
}

int engine_check_rule(const struct rule_def *def, struct rule_error *re) {
  if (!def) {
    return IOCD_EINVAL;
  }
  int rc = check_def(def, 0, re);
  if (rc) {
    return rc;
  }
  struct rule *r = calloc(1, sizeof *r);
  if (!r) {
    return engine__rerr(re, 0, def->name, "name", 0, IOCD_ENOMEM,
                        "out of memory");
  }
  rc = parse_exprs(def, 0, r, re);
  engine__rule_free(r);
  return rc;
}

static int put_kvs(struct buf *b, const char *what, const struct kv *v,
                   size_t n) {
  int rc = buf_printf(b, "\n%s=", what);
  for (size_t i = 0; i < n && !rc; i++) {
    rc = buf_printf(b, "%s%s=%s", i ? "," : "", v[i].key, v[i].value);
  }
  return rc;
}

/* The canonical definition and its hash: what the state machine means,
 * so that a reload can keep the state of a rule that did not change. */
static int make_canonical(struct rule *r, const struct calendar *const *cals,
                          size_t ncals) {
  struct buf b;
  buf_init(&b, 1u << 20);
  int rc = buf_printf(&b, "name=%s", r->name);
  for (size_t i = 0; i < r->nlevels && !rc; i++) {
    rc = buf_printf(
        &b, "\nlevel=%s|%s|%s", r->levels[i].severity,
        expr_to_string(r->levels[i].fire),
        r->levels[i].clear ? expr_to_string(r->levels[i].clear) : "");
  }
  if (!rc) {
    rc = buf_printf(
        &b, "\nguard=%s\nby=", r->guard ? expr_to_string(r->guard) : "");
  }
  for (size_t i = 0; i < r->nby && !rc; i++) {
    rc = buf_printf(&b, "%s%s", i ? "," : "", r->by[i]);
  }
  if (!rc) {
    rc = buf_printf(&b,
                    "\nfor=%lld\ntolerance=%lld\nkeep_firing_for=%lld"
                    "\nmissing=%s\nworking_only=%d\nfreshness=%lld"
                    "\ninhibited=%d",
                    (long long)r->params.for_ns,
                    (long long)r->params.tolerance_ns,
                    (long long)r->params.keep_firing_for_ns,
                    alert_missing_name(r->params.missing), r->working_only,
                    (long long)r->freshness_ns, r->inhibited);
  }
  if (!rc) {
    rc = put_kvs(&b, "labels", r->labels, r->nlabels);
  }
  /* The calendars the rule uses are part of what it means. */
  bool uses_own = r->working_only;
  FOR_EACH_EXPR(r, x, uses_own |= expr_uses_working(x));
  if (!rc && uses_own && r->cal) {
    rc = buf_printf(&b, "\ncalendar=%s", calendar_canonical(r->cal));
  }
  FOR_EACH_EXPR(r, x, {
    size_t nc;
    const char *const *names = expr_calendars(x, &nc);
    for (size_t k = 0; k < nc && !rc; k++) {
      const struct calendar *c = engine__find_cal(cals, ncals, names[k]);
      rc = buf_printf(&b, "\nduring=%s", c ? calendar_canonical(c) : "");
    }
  });
  if (rc) {
    buf_cleanup(&b);
    return rc;
  }
  r->canonical = buf_detach(&b, NULL);
  uint64_t h = hash_bytes(HASH_START, r->canonical, strlen(r->canonical));
  snprintf(r->hash, sizeof r->hash, "%016llx", (unsigned long long)h);
  return IOCD_OK;
}

int engine__copy_kvs(const struct alert_kv *in, size_t n, struct kv **out) {
  *out = NULL;
  if (!n) {
    return IOCD_OK;
  }
  struct kv *v = calloc(n, sizeof *v);
  if (!v) {
    return IOCD_ENOMEM;
  }
  *out = v;
  for (size_t i = 0; i < n; i++) {
    v[i].key = mem_strdup(in[i].key);
    v[i].value = mem_strdup(in[i].value);
    if (!v[i].key || !v[i].value) {
      return IOCD_ENOMEM;
    }
  }
  return IOCD_OK;
}

/* Builds rule idx from d against the calendars. */
static int rule_build(const struct rule_def *d, size_t idx,
                      const struct calendar *const *cals, size_t ncals,
                      struct rule **out, struct rule_error *re) {
  *out = NULL;
  int rc = check_def(d, idx, re);
  if (rc) {
    return rc;
  }
  struct rule *r = calloc(1, sizeof *r);
  if (!r) {
    return engine__rerr(re, idx, d->name, "name", 0, IOCD_ENOMEM,
                        "out of memory");
  }
  r->index = idx;
  r->name = mem_strdup(d->name);
  if (!r->name) {
    goto nomem;
  }
  rc = parse_exprs(d, idx, r, re);
  if (rc) {
    goto fail;
  }
  if (d->nby) {
    r->by = calloc(d->nby, sizeof *r->by);
    if (!r->by) {
      goto nomem;
    }
    r->nby = d->nby;
    for (size_t i = 0; i < d->nby; i++) {
      r->by[i] = mem_strdup(d->by[i]);
      if (!r->by[i]) {
        goto nomem;
      }
    }
  }
  r->params.for_ns = d->for_ns;
  r->params.tolerance_ns = d->tolerance_ns;
  r->params.keep_firing_for_ns = d->keep_firing_for_ns;
  r->params.missing = d->missing;
  r->working_only = d->working_time_only;
  r->freshness_ns = d->freshness_ns;
  const char *cname = d->calendar ? d->calendar : "office_hours";
  r->cal = engine__find_cal(cals, ncals, cname);
  bool needs_cal = r->working_only;
  FOR_EACH_EXPR(r, x, needs_cal |= expr_uses_working(x));
  if (needs_cal && !r->cal) {
    rc = engine__rerr(re, idx, d->name, "calendar", 0, IOCD_EINVAL,
                      "no calendar named %s", cname);
    goto fail;
  }
  if (d->calendar && !r->cal) {
    rc = engine__rerr(re, idx, d->name, "calendar", 0, IOCD_EINVAL,
                      "no calendar named %s", cname);
    goto fail;
  }
  if (r->working_only) {
    r->params.working = r->cal;
  }
  rc = IOCD_OK;
  FOR_EACH_EXPR(r, x, {
    size_t nc;
    const char *const *names = expr_calendars(x, &nc);
    for (size_t k = 0; k < nc && !rc; k++) {
      if (!engine__find_cal(cals, ncals, names[k])) {
        rc = engine__rerr(re, idx, d->name, "calendar", 0, IOCD_EINVAL,
                          "during(\"%s\"): no calendar of that name", names[k]);
      }
    }
  });
  if (rc) {
    goto fail;
  }
  bool silence = false;
  FOR_EACH_EXPR(r, x, silence |= expr_uses_silence(x));
  r->inhibited = d->inhibited_by_broker == RULE_INHIBIT_YES ||
                 (d->inhibited_by_broker == RULE_INHIBIT_AUTO && silence);
  if (engine__copy_kvs(d->annotations, d->nannotations, &r->annotations)) {
    r->nannotations = d->nannotations;
    goto nomem;
  }
  r->nannotations = d->nannotations;
  if (engine__copy_kvs(d->labels, d->nlabels, &r->labels)) {
    r->nlabels = d->nlabels;
    goto nomem;
  }
  r->nlabels = d->nlabels;
  if (r->nlabels) {
    r->label_view = calloc(r->nlabels, sizeof *r->label_view);
    if (!r->label_view) {
      goto nomem;
    }
    for (size_t i = 0; i < r->nlabels; i++) {
      r->label_view[i] = (struct alert_kv){.key = r->labels[i].key,
                                           .value = r->labels[i].value};
    }
  }
  if (d->nexpected) {
    size_t n = d->nexpected * d->nby;
    r->expected = calloc(n, sizeof *r->expected);
    if (!r->expected) {
      goto nomem;
    }
    r->nexpected = d->nexpected;
    for (size_t i = 0; i < n; i++) {
      r->expected[i] = mem_strdup(d->expected[i]);
      if (!r->expected[i]) {
        goto nomem;
      }
    }
  }
  if (make_canonical(r, cals, ncals)) {
    goto nomem;
  }
  *out = r;
  return IOCD_OK;
nomem:
  rc = engine__rerr(re, idx, d->name, "name", 0, IOCD_ENOMEM, "out of memory");
fail:
  engine__rule_free(r);
  return rc;
}

/* ---- the rules of an engine ---------------------------------------------- */

void engine__rules_free(struct rule **v, size_t n) {
  for (size_t i = 0; v && i < n; i++) {
    engine__rule_free(v[i]);
  }
  free(v);
}

/* Builds every rule of defs against cals into a new array. */
int engine__rules_build(const struct rule_def *defs, size_t n,
                        const struct calendar *const *cals, size_t ncals,
                        struct rule ***out, struct rule_error *re) {
  struct rule **v = calloc(n ? n : 1, sizeof *v);
  if (!v) {
    return engine__rerr(re, 0, "rules", "rules", 0, IOCD_ENOMEM,
                        "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    int rc = rule_build(&defs[i], i, cals, ncals, &v[i], re);
    if (rc) {
      engine__rules_free(v, i);
      return rc;
    }
    for (size_t k = 0; k < i; k++) {
      if (strcmp(v[k]->name, v[i]->name) == 0) {
        rc = engine__rerr(
            re, i, v[i]->name, "name", 0, IOCD_EINVAL,
            "a second rule with this name (the first is rules[%zu])", k);
        engine__rules_free(v, i + 1);
        return rc;
      }
    }
  }
  *out = v;
  return IOCD_OK;
}
