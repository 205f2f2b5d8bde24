/*
 * Alerts and rules as JSON, with cJSON: the engine lists its active
 * instances through a callback whose arguments are borrowed, so each one
 * is copied into the document as it comes. Times are RFC 3339 in UTC with
 * milliseconds; a value that is not known is null.
 */
#include "api/api_rules.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_reply.h"
#include "core/clock.h"
#include "core/timefmt.h"

/* "2021-03-01T01:32:00.000Z", or null for 0 (not set). */
static cJSON *json_time(int64_t ns) {
  if (ns == 0) {
    return cJSON_CreateNull();
  }
  char out[48];
  time_format_rfc3339(ns, 0, 3, out, sizeof out);
  return cJSON_CreateString(out);
}

static cJSON *json_number(bool has, double v) {
  /* JSON has no NaN or Infinity. */
  if (!has || v != v || v - v != 0) {
    return cJSON_CreateNull();
  }
  return cJSON_CreateNumber(v);
}

/* Adds item to obj under key; false when either is NULL (no memory). */
static bool put(cJSON *obj, const char *key, cJSON *item) {
  if (!item) {
    return false;
  }
  return cJSON_AddItemToObject(obj, key, item) != 0;
}

struct alerts_ctx {
  cJSON *list;
  struct notify *notify;
  const struct api_alerts_filter *filter; /* NULL: all */
  bool nomem;
};

/* The states an alert listing can show, and the severities, as the
 * filters name them. */
static const enum alert_state listed_states[] = {
    ALERT_PENDING, ALERT_FIRING, ALERT_NODATA, ALERT_INSUFFICIENT};
#define NSTATES (sizeof listed_states / sizeof listed_states[0])
static const enum config_severity severities[] = {
    CONFIG_SEV_INFO, CONFIG_SEV_WARNING, CONFIG_SEV_CRITICAL};
#define NSEVERITIES (sizeof severities / sizeof severities[0])

/* The value of label key of ev (the group's, then the rule's); NULL. */
static const char *label_of(const struct alert_event *ev, const char *key) {
  for (size_t i = 0; ev->group && i < ev->group->n; i++) {
    if (strcmp(ev->group->keys[i], key) == 0) {
      return ev->group->values[i];
    }
  }
  for (size_t i = 0; i < ev->nlabels; i++) {
    if (strcmp(ev->labels[i].key, key) == 0) {
      return ev->labels[i].value;
    }
  }
  return NULL;
}

static bool passes(const struct api_alerts_filter *f,
                   const struct alert_event *ev) {
  if (!f) {
    return true;
  }
  if (f->states && !(f->states & (1u << ev->state))) {
    return false;
  }
  if (f->severities) {
    bool any = false;
    for (size_t i = 0; i < NSEVERITIES && !any; i++) {
      any = (f->severities & (1u << severities[i])) && ev->severity &&
            strcmp(ev->severity, config_severity_name(severities[i])) == 0;
    }
    if (!any) {
      return false;
    }
  }
  if (f->rule && strcmp(f->rule, ev->rule) != 0) {
    return false;
  }
  if (f->district) {
    const char *d =
        label_of(ev, f->district_tag ? f->district_tag : "district");
    if (!d || strcmp(d, f->district) != 0) {
      return false;
    }
  }
  return true;
}

/* Splits list at commas and sets, for each item, the bit of the name it
 * equals among names[0..n); false when an item is none of them (or empty),
 * with that item in bad. */
static bool parse_set(const char *list, const char *const *names,
                      const unsigned *bits, size_t n, unsigned *out, char *bad,
                      size_t badn) {
  *out = 0;
  for (const char *p = list;;) {
    size_t len = strcspn(p, ",");
    size_t i = 0;
    while (i < n &&
           !(strlen(names[i]) == len && memcmp(names[i], p, len) == 0)) {
      i++;
    }
    if (i == n) {
      snprintf(bad, badn, "%.*s", (int)(len < 64 ? len : 64), p);
      return false;
    }
    *out |= bits[i];
    if (!p[len]) {
      return true;
    }
    p += len + 1;
  }
}

int api_alerts_filter_parse(const char *state, const char *severity,
                            const char *district, const char *rule,
                            const struct config *cfg,
                            struct api_alerts_filter *f, struct iocd_err *err) {
  *f = (struct api_alerts_filter){0};
  char bad[80];
  if (state) {
    const char *names[NSTATES];
    unsigned bits[NSTATES];
    for (size_t i = 0; i < NSTATES; i++) {
      names[i] = alert_state_name(listed_states[i]);
      bits[i] = 1u << listed_states[i];
    }
    if (!parse_set(state, names, bits, NSTATES, &f->states, bad, sizeof bad)) {
      return iocd_err_set(err, IOCD_EINVAL,
                          "state: \"%s\" is not a state; allowed: pending, "
                          "firing, nodata, insufficient (several separated "
                          "by commas)",
                          bad);
    }
  }
  if (severity) {
    const char *names[NSEVERITIES];
    unsigned bits[NSEVERITIES];
    for (size_t i = 0; i < NSEVERITIES; i++) {
      names[i] = config_severity_name(severities[i]);
      bits[i] = 1u << severities[i];
    }
    if (!parse_set(severity, names, bits, NSEVERITIES, &f->severities, bad,
                   sizeof bad)) {
      return iocd_err_set(err, IOCD_EINVAL,
                          "severity: \"%s\" is not a severity; allowed: "
                          "info, warning, critical (several separated by "
                          "commas)",
                          bad);
    }
  }
  if (rule) {
    bool known = strcmp(rule, ENGINE_BROKER_RULE) == 0;
    for (size_t i = 0; !known && i < cfg->rules.n; i++) {
      known = strcmp(cfg->rules.v[i].name, rule) == 0;
    }
    if (!known) {
      return iocd_err_set(
          err, IOCD_EINVAL,
          "rule: no rule is named \"%.64s\"; allowed: the "
          "names GET /api/v1/rules lists, or " ENGINE_BROKER_RULE,
          rule);
    }
    f->rule = rule;
  }
  f->district = district;
  f->district_tag = cfg->sources.district_tag;
  return IOCD_OK;
}

/* The alert's id and, when it is acknowledged, who, when and why. */
static bool add_ack(cJSON *a, const struct alert_event *ev, struct notify *n) {
  char id[17];
  notify_event_id(ev, id);
  const char *who = NULL, *comment = NULL;
  int64_t at = 0;
  if (!put(a, "id", cJSON_CreateString(id))) {
    return false;
  }
  if (!notify_ack_of(n, id, &who, &at, &comment)) {
    return put(a, "acknowledged", cJSON_CreateNull());
  }
  cJSON *o = cJSON_CreateObject();
  return put(a, "acknowledged", o) && put(o, "by", cJSON_CreateString(who)) &&
         put(o, "at", json_time(at)) &&
         put(o, "comment",
             comment ? cJSON_CreateString(comment) : cJSON_CreateNull());
}

static void add_alert(void *ud, const struct alert_event *ev) {
  struct alerts_ctx *ac = ud;
  if (!passes(ac->filter, ev)) {
    return;
  }
  cJSON *a = cJSON_CreateObject();
  if (!a || !cJSON_AddItemToArray(ac->list, a)) {
    cJSON_Delete(a);
    ac->nomem = true;
    return;
  }
  cJSON *labels = cJSON_CreateObject();
  bool ok = add_ack(a, ev, ac->notify) &&
            put(a, "rule", cJSON_CreateString(ev->rule)) &&
            put(a, "labels", labels);
  for (size_t i = 0; ok && ev->group && i < ev->group->n; i++) {
    ok = put(labels, ev->group->keys[i],
             cJSON_CreateString(ev->group->values[i]));
  }
  for (size_t i = 0; ok && i < ev->nlabels; i++) {
    ok =
        put(labels, ev->labels[i].key, cJSON_CreateString(ev->labels[i].value));
  }
  ok = ok && put(a, "state", cJSON_CreateString(alert_state_name(ev->state))) &&
       put(a, "severity",
           ev->severity ? cJSON_CreateString(ev->severity)
                        : cJSON_CreateNull()) &&
       put(a, "since", json_time(ev->t_ns)) &&
       put(a, "active_since", json_time(ev->active_since_ns)) &&
       put(a, "firing_since", json_time(ev->firing_since_ns)) &&
       put(a, "value", json_number(ev->has_value, ev->value)) &&
       put(a, "threshold", json_number(ev->has_threshold, ev->threshold)) &&
       put(a, "trigger", cJSON_CreateString(alert_trigger_name(ev->by))) &&
       put(a, "why", cJSON_CreateString(ev->reason ? ev->reason : ""));
  cJSON *ann = ok ? cJSON_CreateObject() : NULL;
  ok = ok && put(a, "annotations", ann);
  for (size_t i = 0; ok && i < ev->nannotations; i++) {
    ok = put(ann, ev->annotations[i].key,
             cJSON_CreateString(ev->annotations[i].value));
  }
  if (!ok) {
    ac->nomem = true;
  }
}

/* Prints doc (which it frees) and appends it to out with a newline. */
static int finish(cJSON *doc, bool nomem, struct buf *out) {
  char *text = nomem ? NULL : cJSON_PrintUnformatted(doc);
  cJSON_Delete(doc);
  if (!text) {
    return IOCD_ENOMEM;
  }
  int rc = buf_puts(out, text);
  if (!rc) {
    rc = buf_putc(out, '\n');
  }
  cJSON_free(text);
  return rc;
}

int api_rules_alerts_json(const struct engine *e, struct notify *n,
                          struct buf *out) {
  return api_rules_alerts_json_filtered(e, n, NULL, out);
}

int api_rules_alerts_json_filtered(const struct engine *e, struct notify *n,
                                   const struct api_alerts_filter *f,
                                   struct buf *out) {
  cJSON *doc = cJSON_CreateObject();
  struct alerts_ctx ac = {NULL, n, f, false};
  ac.list = doc ? cJSON_AddArrayToObject(doc, "alerts") : NULL;
  if (!ac.list) {
    cJSON_Delete(doc);
    return IOCD_ENOMEM;
  }
  if (e) {
    engine_list(e, add_alert, &ac);
  }
  return finish(doc, ac.nomem, out);
}

/* Counts of active instances by rule, in cfg's order. */
struct count_ctx {
  const struct config *cfg;
  size_t (*counts)[4]; /* pending, firing, nodata, insufficient */
};

static void count_alert(void *ud, const struct alert_event *ev) {
  struct count_ctx *cc = ud;
  for (size_t i = 0; i < cc->cfg->rules.n; i++) {
    if (strcmp(cc->cfg->rules.v[i].name, ev->rule) != 0) {
      continue;
    }
    switch (ev->state) {
      case ALERT_PENDING:
        cc->counts[i][0]++;
        break;
      case ALERT_FIRING:
        cc->counts[i][1]++;
        break;
      case ALERT_NODATA:
        cc->counts[i][2]++;
        break;
      case ALERT_INSUFFICIENT:
        cc->counts[i][3]++;
        break;
      default:
        break;
    }
    return;
  }
}

/* "1h30m", "15s", "0s": durations as the config writes them. */
static cJSON *json_duration(int64_t ms) {
  char out[64];
  size_t n = 0;
  static const struct {
    const char *unit;
    int64_t ms;
  } units[] = {
      {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
  out[0] = '\0';
  for (size_t i = 0; i < sizeof units / sizeof units[0] && ms > 0; i++) {
    if (ms >= units[i].ms) {
      int w = snprintf(out + n, sizeof out - n, "%" PRId64 "%s",
                       ms / units[i].ms, units[i].unit);
      n += w > 0 ? (size_t)w : 0;
      ms %= units[i].ms;
    }
  }
  return cJSON_CreateString(n ? out : "0s");
}

static cJSON *json_str(const char *s) {
  return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

/* An array of n strings; [] for none (cJSON_CreateStringArray answers NULL
 * for a count of 0, which would read as out of memory). */
static cJSON *json_strings(char *const *v, size_t n) {
  cJSON *a = cJSON_CreateArray();
  for (size_t i = 0; a && i < n; i++) {
    cJSON *s = cJSON_CreateString(v[i]);
    if (!s || !cJSON_AddItemToArray(a, s)) {
      cJSON_Delete(s);
      cJSON_Delete(a);
      a = NULL;
    }
  }
  return a;
}

struct groups_ctx {
  cJSON *list;
  bool nomem;
};

/* One group of a rule: its labels, state and last evaluation. */
static void add_group(void *ud, const struct alert_event *ev,
                      int64_t evaluated_ns) {
  struct groups_ctx *gc = ud;
  if (gc->nomem) {
    return;
  }
  cJSON *g = cJSON_CreateObject();
  if (!g || !cJSON_AddItemToArray(gc->list, g)) {
    cJSON_Delete(g);
    gc->nomem = true;
    return;
  }
  cJSON *labels = cJSON_CreateObject();
  bool ok = put(g, "labels", labels);
  for (size_t i = 0; ok && ev->group && i < ev->group->n; i++) {
    ok = put(labels, ev->group->keys[i],
             cJSON_CreateString(ev->group->values[i]));
  }
  bool active = ev->state != ALERT_INACTIVE;
  ok = ok && put(g, "state", cJSON_CreateString(alert_state_name(ev->state))) &&
       put(g, "severity",
           active && ev->severity ? cJSON_CreateString(ev->severity)
                                  : cJSON_CreateNull()) &&
       put(g, "since", json_time(ev->t_ns)) &&
       put(g, "value", json_number(ev->has_value, ev->value)) &&
       put(g, "threshold", json_number(ev->has_threshold, ev->threshold)) &&
       put(g, "evaluated_at", json_time(evaluated_ns));
  if (!ok) {
    gc->nomem = true;
  }
}

static bool add_rule(cJSON *list, const struct engine *e,
                     const struct config_rule *r, const size_t counts[4]) {
  cJSON *o = cJSON_CreateObject();
  if (!o || !cJSON_AddItemToArray(list, o)) {
    cJSON_Delete(o);
    return false;
  }
  const char *hash = e ? engine_rule_hash(e, r->name) : NULL;
  bool ok = put(o, "name", cJSON_CreateString(r->name)) &&
            put(o, "expr", json_str(r->expr)) &&
            put(o, "clear", json_str(r->clear)) &&
            put(o, "guard", json_str(r->guard));
  cJSON *levels = ok ? cJSON_CreateArray() : NULL;
  ok = ok && put(o, "levels", levels);
  for (size_t i = 0; ok && i < r->nlevels; i++) {
    cJSON *l = cJSON_CreateObject();
    ok = l && cJSON_AddItemToArray(levels, l) &&
         put(l, "severity",
             cJSON_CreateString(config_severity_name(r->levels[i].severity))) &&
         put(l, "expr", json_str(r->levels[i].expr)) &&
         put(l, "clear", json_str(r->levels[i].clear));
  }
  ok =
      ok && put(o, "by", json_strings(r->by, r->nby)) &&
      put(o, "severity",
          r->nlevels ? cJSON_CreateNull()
                     : cJSON_CreateString(config_severity_name(r->severity))) &&
      put(o, "for", json_duration(r->for_ms)) &&
      put(o, "for_tolerance", json_duration(r->for_tolerance_ms)) &&
      put(o, "keep_firing_for", json_duration(r->keep_firing_for_ms)) &&
      put(o, "missing", cJSON_CreateString(config_missing_name(r->missing))) &&
      put(o, "working_time", cJSON_CreateBool(r->working_time)) &&
      put(o, "expected", cJSON_CreateBool(r->expected)) &&
      put(o, "hash", json_str(hash));
  cJSON *place = ok ? cJSON_CreateObject() : NULL;
  ok = ok && put(o, "defined_at", place) &&
       put(place, "file", json_str(r->place.file)) &&
       put(place, "line", cJSON_CreateNumber(r->place.line));
  cJSON *inst = ok ? cJSON_CreateObject() : NULL;
  ok = ok && put(o, "instances", inst) &&
       put(inst, "pending", cJSON_CreateNumber((double)counts[0])) &&
       put(inst, "firing", cJSON_CreateNumber((double)counts[1])) &&
       put(inst, "nodata", cJSON_CreateNumber((double)counts[2])) &&
       put(inst, "insufficient", cJSON_CreateNumber((double)counts[3]));
  struct groups_ctx gc = {ok ? cJSON_CreateArray() : NULL, false};
  ok = ok && put(o, "groups", gc.list);
  if (ok && e) {
    engine_list_groups(e, r->name, add_group, &gc);
  }
  return ok && !gc.nomem;
}

/* The rules document; only rule `only` when it is not NULL. */
static int rules_json(const struct engine *e, const struct config *cfg,
                      const char *only, struct buf *out) {
  size_t n = cfg->rules.n;
  size_t(*counts)[4] = calloc(n ? n : 1, sizeof *counts);
  cJSON *doc = cJSON_CreateObject();
  cJSON *list = doc ? cJSON_AddArrayToObject(doc, "rules") : NULL;
  if (!counts || !list) {
    free(counts);
    cJSON_Delete(doc);
    return IOCD_ENOMEM;
  }
  struct count_ctx cc = {cfg, counts};
  if (e) {
    engine_list(e, count_alert, &cc);
  }
  bool ok = true;
  for (size_t i = 0; ok && i < n; i++) {
    if (!only || strcmp(only, cfg->rules.v[i].name) == 0) {
      ok = add_rule(list, e, &cfg->rules.v[i], counts[i]);
    }
  }
  if (ok && e) {
    struct engine_stats st;
    engine_get_stats(e, &st);
    cJSON *tot = cJSON_CreateObject();
    ok =
        put(doc, "totals", tot) &&
        put(tot, "rules", cJSON_CreateNumber((double)st.rules)) &&
        put(tot, "instances", cJSON_CreateNumber((double)st.instances)) &&
        put(tot, "pending", cJSON_CreateNumber((double)st.pending)) &&
        put(tot, "firing", cJSON_CreateNumber((double)st.firing)) &&
        put(tot, "nodata", cJSON_CreateNumber((double)st.nodata)) &&
        put(tot, "insufficient", cJSON_CreateNumber((double)st.insufficient)) &&
        put(tot, "held", cJSON_CreateNumber((double)st.held));
  }
  free(counts);
  return finish(doc, !ok, out);
}

int api_rules_rules_json(const struct engine *e, const struct config *cfg,
                         struct buf *out) {
  return rules_json(e, cfg, NULL, out);
}

int api_rules_handle(const struct engine *e, struct notify *n,
                     const struct config *cfg, const struct api_request *req,
                     struct api_reply *rep, struct buf *out) {
  bool alerts = strcmp(req->path, "/api/v1/alerts") == 0;
  if (!alerts && strcmp(req->path, "/api/v1/rules") != 0) {
    return IOCD_ENOTFOUND;
  }
  if (!api_is_get(req)) {
    return api_reply_not_allowed(rep, out, "GET, HEAD");
  }
  int rc;
  if (alerts) {
    struct api_alerts_filter f;
    struct iocd_err err = {{0}};
    if (api_alerts_filter_parse(api_request_arg(req, "state"),
                                api_request_arg(req, "severity"),
                                api_request_arg(req, "district"),
                                api_request_arg(req, "rule"), cfg, &f, &err)) {
      return api_reply_error(rep, out, 400, err.msg);
    }
    rc = api_rules_alerts_json_filtered(e, n, &f, out);
  } else {
    const char *only = api_request_arg(req, "rule");
    bool known = !only;
    for (size_t i = 0; !known && i < cfg->rules.n; i++) {
      known = strcmp(cfg->rules.v[i].name, only) == 0;
    }
    if (!known) {
      char msg[160];
      snprintf(msg, sizeof msg, "rule: no rule is named \"%.64s\"", only);
      return api_reply_error(rep, out, 404, msg);
    }
    rc = rules_json(e, cfg, only, out);
  }
  if (!rc) {
    rep->status = 200;
  }
  return rc;
}
