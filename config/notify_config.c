/*
 * The "notifications" section of the configuration: receivers (webhook,
 * Alertmanager, e-mail, MQTT, Telegram, Zalo), the route tree with its
 * escalation tiers, time intervals on the working calendar, inhibition,
 * silences written in the file, templates, flapping, the leaders' digest
 * and the alerts' history. It is read with tables of keys like the rest of
 * the file, after the walk of the main file (a receiver's language defaults
 * to the top-level one, wherever that is written), and then checked as a
 * whole: unique names, every receiver and time interval a route names,
 * matchers and their regular expressions (compiled here, so that a bad one
 * is reported at its column inside the string).
 *
 * The receivers, and their secrets, are in notify_receivers.c.
 */
#include <cjson/cJSON.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_int.h"
#include "core/container.h"
#include "core/timefmt.h"
#include "core/utf8.h"
#include "rules/calendar.h"

#define MS_S INT64_C(1000)
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)

#define MAX_ROUTES 100 /* children of one route */
#define MAX_ESCALATION 10
#define MAX_MATCHERS 100
#define MAX_INTERVALS 100
#define MAX_TIMES 24
#define MAX_INHIBIT 1000
#define MAX_SILENCES 1000
#define MAX_DIGEST_AT 48

_Static_assert(sizeof(enum config_days) == sizeof(int), "enum size");

static const struct cw_enum days_names[] = {
    {"all", CONFIG_DAYS_ALL},
    {"working", CONFIG_DAYS_WORKING},
    {"non_working", CONFIG_DAYS_NON_WORKING},
    {NULL, 0},
};

/* Time intervals that need no entry: they come from the calendar. */
static const char *const builtin_intervals[] = {
    "working_time", "outside_working_time", "non_working_days"};
#define NBUILTIN (sizeof builtin_intervals / sizeof builtin_intervals[0])

/* Tables of keys: durations are kept in milliseconds, enums are taken as
 * written. */
#define NSTR(n, t, f, d) \
  { .name = n, .type = CW_STR, .off = offsetof(t, f), .def_str = d }
#define NNAME(n, t, f, fl) \
  { .name = n, .type = CW_STR, .off = offsetof(t, f), .flags = CW_NAME | (fl) }
#define NTEXT(n, t, f) \
  { .name = n, .type = CW_EXPR, .off = offsetof(t, f) }
#define NBOOL(n, t, f, d) \
  { .name = n, .type = CW_BOOL, .off = offsetof(t, f), .def = d }
#define NINT(n, t, f, lo, hi, d)                                          \
  {                                                                       \
    .name = n, .type = CW_INT, .off = offsetof(t, f), .store = CW_AS_INT, \
    .min = lo, .max = hi, .def = d                                        \
  }
#define NDUR(n, t, f, st, lo, hi, d, fl)                                      \
  {                                                                           \
    .name = n, .type = CW_DUR, .off = offsetof(t, f), .store = st, .unit = 1, \
    .min = lo, .max = hi, .def = d, .flags = fl                               \
  }
#define NENUM(n, t, f, e, d, fl)                                             \
  {                                                                          \
    .name = n, .type = CW_ENUM, .off = offsetof(t, f), .names = e, .def = d, \
    .flags = CW_RAW | (fl)                                                   \
  }
#define NFN(n, fn, fl) \
  { .name = n, .type = CW_FN, .set = fn, .flags = fl }
/* Matchers. */

static bool label_char(unsigned char ch, bool first) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
         (!first && ch >= '0' && ch <= '9');
}

static bool label_name_ok(const char *s) {
  if (!label_char((unsigned char)s[0], true)) {
    return false;
  }
  for (size_t i = 1; s[i]; i++) {
    if (!label_char((unsigned char)s[i], false)) {
      return false;
    }
  }
  return true;
}

/* "name=value", "name!=value", "name=~re", "name!~re", with optional
 * spaces around the operator and the value optionally in double quotes
 * (as Alertmanager writes them). Fills m (new strings) and *value_at, the
 * byte offset of the value in s. Returns false when s is not a matcher;
 * ENOMEM sets *nomem. */
static bool parse_matcher(const char *s, struct config_matcher *m,
                          size_t *value_at, bool *nomem) {
  size_t i = 0;
  while (s[i] == ' ') {
    i++;
  }
  size_t name_at = i;
  if (!label_char((unsigned char)s[i], true)) {
    return false;
  }
  while (label_char((unsigned char)s[i], false)) {
    i++;
  }
  size_t name_end = i;
  while (s[i] == ' ') {
    i++;
  }
  if (s[i] == '=' && s[i + 1] == '~') {
    m->op = CONFIG_MATCH_RE;
    i += 2;
  } else if (s[i] == '!' && s[i + 1] == '~') {
    m->op = CONFIG_MATCH_NRE;
    i += 2;
  } else if (s[i] == '!' && s[i + 1] == '=') {
    m->op = CONFIG_MATCH_NE;
    i += 2;
  } else if (s[i] == '=') {
    m->op = CONFIG_MATCH_EQ;
    i++;
  } else {
    return false;
  }
  while (s[i] == ' ') {
    i++;
  }
  size_t end = strlen(s);
  while (end > i && s[end - 1] == ' ') {
    end--;
  }
  if (end - i >= 2 && s[i] == '"' && s[end - 1] == '"') {
    i++;
    end--;
  }
  *value_at = i;
  m->name = strndup(s + name_at, name_end - name_at);
  m->value = strndup(s + i, end - i);
  if (!m->name || !m->value) {
    *nomem = true;
  }
  return true;
}

/* Compiles re as the dispatcher will, anchored: "^(" re ")$" with
 * REG_EXTENDED | REG_NOSUB, and re alone (so that "a)|(b" cannot escape
 * the anchors). Returns true, or false with regerror's words in why. */
static bool regex_ok(const char *re, char *why, size_t n, bool *nomem) {
  size_t len = strlen(re);
  char *full = malloc(len + 5);
  if (!full) {
    *nomem = true;
    return true;
  }
  memcpy(full, "^(", 2);
  memcpy(full + 2, re, len);
  memcpy(full + 2 + len, ")$", 3);
  const char *const tries[] = {re, full};
  bool ok = true;
  for (size_t t = 0; ok && t < 2; t++) {
    regex_t rx;
    int rc = regcomp(&rx, tries[t], REG_EXTENDED | REG_NOSUB);
    if (rc == 0) {
      regfree(&rx);
    } else {
      regerror(rc, &rx, why, n);
      ok = false;
    }
  }
  free(full);
  return ok;
}

/* The column (1-based, in characters) of byte at of s. */
static int char_col(const char *s, size_t at) {
  int col = 1;
  for (size_t i = 0; i < at && s[i]; i++) {
    col += ((unsigned char)s[i] & 0xC0) != 0x80;
  }
  return col;
}

struct mlist {
  struct config_matcher *v;
  size_t n;
};

static void free_matchers(struct config_matcher *m, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(m[i].name);
    free(m[i].value);
  }
  free(m);
}

static const char matcher_expected[] =
    "a matcher such as \"severity=critical\" (NAME=VALUE, NAME!=VALUE, "
    "NAME=~REGEX or NAME!~REGEX)";

/* One item of a matcher list: the string at v. */
static void add_string_matcher(struct cw *c, struct cw_val v, struct mlist *l) {
  if (!cJSON_IsString(v.j)) {
    cw_report_type(c, v, matcher_expected);
    return;
  }
  const char *s = v.j->valuestring;
  struct config_matcher m = {0};
  size_t at = 0;
  if (!utf8_valid(s, strlen(s), NULL)) {
    cw_report(c, cw_voff(c, v), "not valid UTF-8");
    return;
  }
  if (!parse_matcher(s, &m, &at, &c->nomem)) {
    cw_report_type(c, v, matcher_expected);
    return;
  }
  char why[256];
  if ((m.op == CONFIG_MATCH_RE || m.op == CONFIG_MATCH_NRE) && m.value &&
      !regex_ok(m.value, why, sizeof why, &c->nomem)) {
    struct cw_desc d;
    cw_quoted(c, m.value, &d);
    size_t off = config__string_char_off(c->doc->text, c->doc->len,
                                         cw_voff(c, v), char_col(s, at));
    cw_report(c, off, "%s is not a POSIX extended regular expression: %s",
              cw_qs(&d), why);
    cw_desc_done(&d);
    free(m.name);
    free(m.value);
    return;
  }
  l->v[l->n++] = m;
}

/* {"name": "value", ...}: equality matchers. */
static bool add_object_matcher(struct cw *c, const char *key, struct cw_val v,
                               void *base) {
  struct mlist *l = base;
  if (!label_name_ok(key)) {
    cw_report(c, cw_koff(c, v),
              "not a label name (letters, digits and \"_\", from a letter "
              "or \"_\")");
    return true;
  }
  if (!cJSON_IsString(v.j)) {
    cw_report_type(c, v, "a string");
    return true;
  }
  struct config_matcher m = {NULL, CONFIG_MATCH_EQ, NULL};
  m.name = strdup(key);
  m.value = cw_get_str(c, v, "a string", false);
  if (!m.name || !m.value) {
    c->nomem = c->nomem || !m.name;
    free(m.name);
    free(m.value);
    return true;
  }
  l->v[l->n++] = m;
  return true;
}

/* A list of matchers: an array of strings or an object of label names and
 * values. Taken as written (no ${NAME}), so that a column in a message is
 * the column in the file. need_one: an empty list is a mistake. */
static void get_matchers(struct cw *c, struct cw_val v, bool need_one,
                         struct config_matcher **out, size_t *nout) {
  static const char expected[] =
      "an array of matchers such as [\"severity=critical\"] or an object of "
      "label names and values";
  if (!cJSON_IsArray(v.j) && !cJSON_IsObject(v.j)) {
    cw_report_type(c, v, expected);
    return;
  }
  size_t n = (size_t)cJSON_GetArraySize(v.j);
  if (n > MAX_MATCHERS) {
    cw_report(c, cw_voff(c, v), "at most %d matchers are allowed, got %zu",
              MAX_MATCHERS, n);
    return;
  }
  if (n == 0 && need_one) {
    cw_report(c, cw_voff(c, v), "at least one matcher is required");
    return;
  }
  struct mlist l = {calloc(n ? n : 1, sizeof *l.v), 0};
  if (!l.v) {
    c->nomem = true;
    return;
  }
  if (cJSON_IsObject(v.j)) {
    cw_walk_map(c, v, expected, false, add_object_matcher, &l);
  } else {
    size_t k;
    struct cw_val *items = cw_children(c, v, &k);
    for (size_t i = 0; items && i < k; i++) {
      size_t mark = cw_path_index(c, i);
      add_string_matcher(c, items[i], &l);
      cw_path_pop(c, mark);
    }
    free(items);
  }
  free_matchers(*out, *nout);
  *out = l.v;
  *nout = l.n;
}

/* "HH:MM" at s (exactly 5 bytes) as minutes, below 24:00. */
static bool time_of_day(const char *s, int *min) {
  return strlen(s) == 5 && config__parse_hhmm(s, min) && *min < 24 * 60;
}

/* Routes. */

static void set_group_by(struct cw *c, struct cw_val v, void *base) {
  struct config_route *r = base;
  size_t mark = c->path.len;
  cw_get_string_list(c, v, &r->group_by, &r->ngroup_by);
  cw_path_pop(c, mark);
  if (!r->group_by) {
    return;
  }
  r->group_by_set = true;
  for (size_t i = 0; r->ngroup_by > 1 && i < r->ngroup_by; i++) {
    if (strcmp(r->group_by[i], "...") == 0) {
      cw_report(c, cw_voff(c, v),
                "\"...\" (every label) stands alone, without other labels");
      break;
    }
  }
}

static void set_mute(struct cw *c, struct cw_val v, void *base) {
  struct config_route *r = base;
  size_t mark = c->path.len;
  cw_get_string_list(c, v, &r->mute_time_intervals, &r->nmute);
  cw_path_pop(c, mark);
  r->mute_set = r->mute_time_intervals != NULL;
}

static void set_active(struct cw *c, struct cw_val v, void *base) {
  struct config_route *r = base;
  size_t mark = c->path.len;
  cw_get_string_list(c, v, &r->active_time_intervals, &r->nactive);
  cw_path_pop(c, mark);
  r->active_set = r->active_time_intervals != NULL;
}

static void set_critical(struct cw *c, struct cw_val v, void *base) {
  struct config_route *r = base;
  if (cJSON_IsBool(v.j)) {
    r->critical_any_time = cJSON_IsTrue(v.j) ? 1 : 0;
  } else {
    cw_report_type(c, v, "true or false");
  }
}

static void set_route_matchers(struct cw *c, struct cw_val v, void *base) {
  struct config_route *r = base;
  get_matchers(c, v, false, &r->matchers, &r->nmatchers);
}

#define T struct config_escalation
static const struct cw_key escalation_keys[] = {
    NDUR("after", T, after_ms, CW_AS_I64, MS_S, 30 * MS_D, 0, CW_REQ),
    NNAME("receiver", T, receiver, CW_REQ),
};
#undef T
static const struct cw_object escalation_obj =
    CW_OBJECT(escalation_keys, NULL, NULL);

static void escalation_init(struct cw *c, void *item) {
  cw_defaults(c, &escalation_obj, item);
}

/* Tiers in order of "after", each later than the one before. */
static void set_escalation(struct cw *c, struct cw_val v, void *base) {
  struct config_route *r = base;
  struct cw_val *items;
  size_t n;
  struct config_escalation *e = cw_get_objects(
      c, v, &escalation_obj, sizeof *e, MAX_ESCALATION,
      "an array of escalation tiers", escalation_init, &n, &items);
  if (!e) {
    return;
  }
  for (size_t i = 1; i < n; i++) {
    struct cw_val av;
    if (e[i].after_ms > e[i - 1].after_ms || !cJSON_IsObject(items[i].j) ||
        !cw_find_child(c, items[i], "after", &av) || e[i].after_ms == 0) {
      continue;
    }
    char a[32], b[32];
    config__format_duration(e[i].after_ms, a, sizeof a);
    config__format_duration(e[i - 1].after_ms, b, sizeof b);
    size_t m1 = cw_path_index(c, i);
    cw_report_key(c, "after", cw_voff(c, av),
                  "%s is not after the tier before it (%s): list the tiers "
                  "in order",
                  a, b);
    cw_path_pop(c, m1);
  }
  free(items);
  r->escalation = e;
  r->nescalation = n;
  r->escalation_set = true;
}

static void set_routes(struct cw *c, struct cw_val v, void *base);

/* The keys every route has. The routes under the root also have
 * "matchers" and "continue", and are read with one table at any depth; for
 * config_schema_each the nesting stops at the first level (a table cannot
 * list itself). The root's defaults are the documented ones; a child's are
 * -1, "the parent's". */
#define ROUTE_KEYS(rf, gw, gi, ri)                                            \
  NNAME("receiver", T, receiver, rf), NFN("group_by", set_group_by, 0),       \
      NDUR("group_wait", T, group_wait_ms, CW_AS_I64, 0, MS_D, gw, 0),        \
      NDUR("group_interval", T, group_interval_ms, CW_AS_I64, MS_S, MS_D, gi, \
           0),                                                                \
      NDUR("repeat_interval", T, repeat_interval_ms, CW_AS_I64, MS_S,         \
           30 * MS_D, ri, 0),                                                 \
      NFN("mute_time_intervals", set_mute, 0),                                \
      NFN("active_time_intervals", set_active, 0),                            \
      NFN("critical_any_time", set_critical, 0),                              \
      CW_FN_OF("escalation", set_escalation, CW_LIST, &escalation_obj)

#define T struct config_route
static const struct cw_key child_route_keys[] = {
    ROUTE_KEYS(0, -1, -1, -1),
    NFN("matchers", set_route_matchers, 0),
    NBOOL("continue", T, cont, false),
    CW_FN_OF("routes", set_routes, CW_LIST, NULL),
};
static const struct cw_object child_route_obj =
    CW_OBJECT(child_route_keys, NULL, NULL);

static const struct cw_key root_route_keys[] = {
    ROUTE_KEYS(CW_REQ, 30 * MS_S, 5 * MS_M, 4 * MS_H),
    CW_FN_OF("routes", set_routes, CW_LIST, &child_route_obj),
};
#undef T
static const struct cw_object root_route_obj = {
    .keys = root_route_keys,
    .nkeys = sizeof root_route_keys / sizeof root_route_keys[0],
    .unknown_hint =
        "the root route takes every alert: \"matchers\" and "
        "\"continue\" belong to the routes under it",
};

static void route_init(struct cw *c, void *item) {
  struct config_route *r = item;
  cw_defaults(c, &child_route_obj, r);
  r->critical_any_time = -1;
}

static void set_routes(struct cw *c, struct cw_val v, void *base) {
  struct config_route *r = base;
  struct cw_val *items;
  r->routes =
      cw_get_objects(c, v, &child_route_obj, sizeof *r->routes, MAX_ROUTES,
                     "an array of routes", route_init, &r->nroutes, &items);
  for (size_t i = 0; i < r->nroutes; i++) {
    cw_place(c, cw_voff(c, items[i]), &r->routes[i].place);
  }
  free(items);
}

/* Time intervals. */

static void set_times(struct cw *c, struct cw_val v, void *base) {
  struct config_time_interval *ti = base;
  if (!cJSON_IsArray(v.j)) {
    cw_report_type(c, v, "an array of \"HH:MM-HH:MM\" strings");
    return;
  }
  size_t n;
  struct cw_val *items = cw_children(c, v, &n);
  if (!items) {
    return;
  }
  if (n > MAX_TIMES) {
    cw_report(c, cw_voff(c, v), "at most %d spans are allowed, got %zu",
              MAX_TIMES, n);
    free(items);
    return;
  }
  struct config_minutes *t = calloc(n ? n : 1, sizeof *t);
  if (!t) {
    c->nomem = true;
    free(items);
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    size_t mark = cw_path_index(c, i);
    char *s = cw_get_str(c, items[i], "a string such as \"22:00-06:00\"", true);
    int a, b;
    if (s && (strlen(s) != 11 || s[5] != '-' || !config__parse_hhmm(s, &a) ||
              !config__parse_hhmm(s + 6, &b) || a >= 24 * 60 || a == b)) {
      struct cw_desc d;
      cw_quoted(c, s, &d);
      cw_report(c, cw_voff(c, items[i]),
                "expected \"HH:MM-HH:MM\" with two different times (an end "
                "before the start runs past midnight), got %s",
                cw_qs(&d));
      cw_desc_done(&d);
    } else if (s) {
      t[k++] = (struct config_minutes){a, b};
    }
    free(s);
    cw_path_pop(c, mark);
  }
  free(items);
  free(ti->times);
  ti->times = t;
  ti->ntimes = k;
}

static void interval_check(struct cw *c, struct cw_val v, void *base) {
  struct config_time_interval *ti = base;
  for (size_t i = 0; ti->name && i < NBUILTIN; i++) {
    if (strcmp(ti->name, builtin_intervals[i]) == 0) {
      cw_report_key(c, "name", cw_child_off(c, v, "name"),
                    "\"%s\" is built in (working_time, outside_working_time "
                    "and non_working_days come from the calendar)",
                    ti->name);
    }
  }
}

#define T struct config_time_interval
static const struct cw_key interval_keys[] = {
    NNAME("name", T, name, CW_REQ),
    NENUM("days", T, days, days_names, CONFIG_DAYS_ALL, 0),
    NFN("times", set_times, 0),
};
#undef T
static const struct cw_object interval_obj =
    CW_OBJECT(interval_keys, NULL, interval_check);

static void interval_init(struct cw *c, void *item) {
  cw_defaults(c, &interval_obj, item);
}

static void set_intervals(struct cw *c, struct cw_val v, void *base) {
  struct config_notify *n = base;
  struct cw_val *items;
  n->intervals = cw_get_objects(c, v, &interval_obj, sizeof *n->intervals,
                                MAX_INTERVALS, "an array of time intervals",
                                interval_init, &n->nintervals, &items);
  for (size_t i = 0; i < n->nintervals; i++) {
    cw_place_at(c, items[i], "name", &n->intervals[i].place);
  }
  free(items);
}

/* Inhibition. */

static void set_source(struct cw *c, struct cw_val v, void *base) {
  struct config_inhibit *in = base;
  get_matchers(c, v, true, &in->source, &in->nsource);
}

static void set_target(struct cw *c, struct cw_val v, void *base) {
  struct config_inhibit *in = base;
  get_matchers(c, v, true, &in->target, &in->ntarget);
}

static void set_equal(struct cw *c, struct cw_val v, void *base) {
  struct config_inhibit *in = base;
  size_t mark = c->path.len;
  cw_get_string_list(c, v, &in->equal, &in->nequal);
  cw_path_pop(c, mark);
}

static const struct cw_key inhibit_keys[] = {
    NFN("source_matchers", set_source, CW_REQ),
    NFN("target_matchers", set_target, CW_REQ),
    NFN("equal", set_equal, 0),
};
static const struct cw_object inhibit_obj = CW_OBJECT(inhibit_keys, NULL, NULL);

static void plain_init(struct cw *c, void *item) {
  (void)c;
  (void)item;
}

static void set_inhibit(struct cw *c, struct cw_val v, void *base) {
  struct config_notify *n = base;
  struct cw_val *items;
  n->inhibit = cw_get_objects(c, v, &inhibit_obj, sizeof *n->inhibit,
                              MAX_INHIBIT, "an array of inhibit rules",
                              plain_init, &n->ninhibit, &items);
  for (size_t i = 0; i < n->ninhibit; i++) {
    cw_place(c, cw_voff(c, items[i]), &n->inhibit[i].place);
  }
  free(items);
}

/* Silences. */

/* RFC 3339 with its offset (core/timefmt.h), kept to the millisecond. */
static bool parse_rfc3339_ms(const char *s, int64_t *ms) {
  int64_t ns;
  if (time_parse_rfc3339(s, strlen(s), &ns, NULL) != IOCD_OK) {
    return false;
  }
  *ms = ns / 1000000;
  return true;
}

static void get_time(struct cw *c, struct cw_val v, int64_t *ms) {
  char *s =
      cw_get_str(c, v, "a time such as \"2026-12-08T07:30:00+07:00\"", true);
  if (s && !parse_rfc3339_ms(s, ms)) {
    struct cw_desc d;
    cw_quoted(c, s, &d);
    cw_report(c, cw_voff(c, v),
              "expected an RFC 3339 time with its offset, such as "
              "\"2026-12-08T07:30:00+07:00\", got %s",
              cw_qs(&d));
    cw_desc_done(&d);
  }
  free(s);
}

static void set_starts(struct cw *c, struct cw_val v, void *base) {
  get_time(c, v, &((struct config_silence *)base)->starts_ms);
}

static void set_ends(struct cw *c, struct cw_val v, void *base) {
  get_time(c, v, &((struct config_silence *)base)->ends_ms);
}

static void set_silence_matchers(struct cw *c, struct cw_val v, void *base) {
  struct config_silence *s = base;
  get_matchers(c, v, true, &s->matchers, &s->nmatchers);
}

static void silence_check(struct cw *c, struct cw_val v, void *base) {
  struct config_silence *s = base;
  struct cw_val ev;
  if (s->starts_ms && s->ends_ms && s->ends_ms <= s->starts_ms &&
      cw_find_child(c, v, "ends_at", &ev)) {
    cw_report_key(c, "ends_at", cw_voff(c, ev), "is not after starts_at");
  }
}

#define T struct config_silence
static const struct cw_key silence_keys[] = {
    NFN("matchers", set_silence_matchers, CW_REQ),
    NFN("starts_at", set_starts, 0),
    NFN("ends_at", set_ends, CW_REQ),
    NSTR("created_by", T, created_by, "config"),
    NSTR("comment", T, comment, NULL),
};
#undef T
static const struct cw_object silence_obj =
    CW_OBJECT(silence_keys, NULL, silence_check);

static void silence_init(struct cw *c, void *item) {
  cw_defaults(c, &silence_obj, item);
}

static void set_silences(struct cw *c, struct cw_val v, void *base) {
  struct config_notify *n = base;
  struct cw_val *items;
  n->silences = cw_get_objects(c, v, &silence_obj, sizeof *n->silences,
                               MAX_SILENCES, "an array of silences",
                               silence_init, &n->nsilences, &items);
  for (size_t i = 0; i < n->nsilences; i++) {
    cw_place(c, cw_voff(c, items[i]), &n->silences[i].place);
  }
  free(items);
}

/* Templates: where each string's text starts (after its opening quote),
 * for the template checker's FILE:LINE:COL. */
static void templates_check(struct cw *c, struct cw_val v, void *base) {
  struct config_notify_templates *t = base;
  static const char *const keys[] = {"subject", "text", "html"};
  struct config_place *places[] = {&t->subject_place, &t->text_place,
                                   &t->html_place};
  const char *have[] = {t->subject, t->text, t->html};
  for (size_t i = 0; i < 3; i++) {
    struct cw_val tv;
    if (have[i] && cw_find_child(c, v, keys[i], &tv)) {
      cw_place(c, cw_voff(c, tv) + 1, places[i]);
    }
  }
}

#define T struct config_notify_templates
static const struct cw_key templates_keys[] = {
    NTEXT("subject", T, subject),
    NTEXT("text", T, text),
    NTEXT("html", T, html),
};
#undef T
static const struct cw_object templates_obj =
    CW_OBJECT(templates_keys, NULL, templates_check);

/* Flapping, the digest and the history live in struct config_notify
 * itself. */
static void set_digest_at(struct cw *c, struct cw_val v, void *base) {
  struct config_notify *n = base;
  if (!cJSON_IsArray(v.j)) {
    cw_report_type(c, v, "an array of times such as [\"07:30\", \"16:30\"]");
    return;
  }
  size_t k;
  struct cw_val *items = cw_children(c, v, &k);
  if (!items) {
    return;
  }
  if (k == 0 || k > MAX_DIGEST_AT) {
    cw_report(c, cw_voff(c, v), "expected 1 to %d times, got %zu",
              MAX_DIGEST_AT, k);
    free(items);
    return;
  }
  struct config_minutes *at = calloc(k, sizeof *at);
  if (!at) {
    c->nomem = true;
    free(items);
    return;
  }
  size_t got = 0;
  for (size_t i = 0; i < k; i++) {
    size_t mark = cw_path_index(c, i);
    char *s = cw_get_str(c, items[i], "a time such as \"07:30\"", true);
    int m;
    if (s && !time_of_day(s, &m)) {
      struct cw_desc d;
      cw_quoted(c, s, &d);
      cw_report(c, cw_voff(c, items[i]),
                "expected a time of day \"HH:MM\" (00:00 to 23:59), got %s",
                cw_qs(&d));
      cw_desc_done(&d);
    } else if (s && got > 0 && m <= at[got - 1].start) {
      struct cw_desc d;
      cw_quoted(c, s, &d);
      cw_report(c, cw_voff(c, items[i]),
                "%s is not after the time before it (list the times in "
                "order, each once)",
                cw_qs(&d));
      cw_desc_done(&d);
    } else if (s) {
      at[got++] = (struct config_minutes){m, m};
    }
    free(s);
    cw_path_pop(c, mark);
  }
  free(items);
  free(n->digest_at);
  n->digest_at = at;
  n->ndigest_at = got;
}

#define T struct config_notify
static const struct cw_key flapping_keys[] = {
    NINT("transitions", T, flap_transitions, 2, 1000, 4),
    NDUR("window", T, flap_window_ms, CW_AS_I64, MS_M, 7 * MS_D, MS_H, 0),
};
static const struct cw_object flapping_obj =
    CW_OBJECT(flapping_keys, NULL, NULL);

static const struct cw_key digest_keys[] = {
    NNAME("receiver", T, digest_receiver, CW_REQ),
    NFN("at", set_digest_at, CW_REQ),
};
static const struct cw_object digest_obj = CW_OBJECT(digest_keys, NULL, NULL);

static const struct cw_key history_keys[] = {
    NNAME("database", T, history_database, 0),
    NSTR("retention_policy", T, history_retention_policy, NULL),
};
static const struct cw_object history_obj = CW_OBJECT(history_keys, NULL, NULL);

static void notify_check(struct cw *c, struct cw_val v, void *base);

static const struct cw_key notify_keys[] = {
    NBOOL("enabled", T, enabled, false),
    NSTR("grafana_url", T, grafana_url, NULL),
    CW_FN_OF("receivers", config__set_receivers, CW_LIST,
             &config__receiver_obj),
    {.name = "route",
     .type = CW_OBJ,
     .off = offsetof(T, route),
     .obj = &root_route_obj},
    CW_FN_OF("time_intervals", set_intervals, CW_LIST, &interval_obj),
    CW_FN_OF("inhibit_rules", set_inhibit, CW_LIST, &inhibit_obj),
    CW_FN_OF("silences", set_silences, CW_LIST, &silence_obj),
    {.name = "templates",
     .type = CW_OBJ,
     .off = offsetof(T, templates),
     .obj = &templates_obj},
    {.name = "flapping", .type = CW_OBJ, .off = 0, .obj = &flapping_obj},
    {.name = "digest", .type = CW_OBJ, .off = 0, .obj = &digest_obj},
    {.name = "history", .type = CW_OBJ, .off = 0, .obj = &history_obj},
};
#undef T
static const struct cw_object notify_obj =
    CW_OBJECT(notify_keys, NULL, notify_check);

static const struct cw_key section_keys[] = {
    {.name = "notifications", .type = CW_OBJ, .obj = &notify_obj},
};
const struct cw_object config__notify_section =
    CW_OBJECT(section_keys, NULL, NULL);

/* Checks on the whole section. */

/* Names a reference is looked up in (NULL: an item without one). */
struct names {
  const char **v;
  size_t n;
};

static bool has_name(const struct names *ns, const char *s) {
  for (size_t i = 0; i < ns->n; i++) {
    if (ns->v[i] && strcmp(ns->v[i], s) == 0) {
      return true;
    }
  }
  return false;
}

/* Reports at off that name is not one of ns: with "did you mean" when one
 * is close. */
static void report_unknown(struct cw *c, size_t off, const char *what,
                           const char *name, const struct names *ns,
                           const char *where) {
  const char **known = malloc((ns->n ? ns->n : 1) * sizeof *known);
  size_t k = 0;
  for (size_t i = 0; known && i < ns->n; i++) {
    if (ns->v[i]) {
      known[k++] = ns->v[i];
    }
  }
  c->nomem = c->nomem || !known;
  const char *hint = known ? cw_suggest(known, k, name) : NULL;
  struct cw_desc d;
  cw_quoted(c, name, &d);
  if (hint) {
    cw_report(c, off, "unknown %s %s (did you mean \"%s\"?)", what, cw_qs(&d),
              hint);
  } else {
    cw_report(c, off, "unknown %s %s (%s)", what, cw_qs(&d), where);
  }
  cw_desc_done(&d);
  free(known);
}

struct refs {
  struct names receivers;
  struct names intervals; /* defined ones and the built-in ones */
};

static void check_receiver_at(struct cw *c, const struct refs *rf,
                              struct cw_val obj, const char *key,
                              const char *name) {
  struct cw_val kv;
  if (!name || has_name(&rf->receivers, name) ||
      !cw_find_child(c, obj, key, &kv)) {
    return;
  }
  size_t mark = cw_path_key(c, key);
  report_unknown(c, cw_voff(c, kv), "receiver", name, &rf->receivers,
                 "not one of notifications.receivers");
  cw_path_pop(c, mark);
}

static void check_interval_list(struct cw *c, const struct refs *rf,
                                struct cw_val obj, const char *key) {
  struct cw_val lv;
  if (!cw_find_child(c, obj, key, &lv) || !cJSON_IsArray(lv.j)) {
    return;
  }
  size_t n;
  struct cw_val *items = cw_children(c, lv, &n);
  size_t m1 = cw_path_key(c, key);
  for (size_t i = 0; items && i < n; i++) {
    const char *s = cJSON_IsString(items[i].j) ? items[i].j->valuestring : "";
    if (!*s || has_name(&rf->intervals, s)) {
      continue;
    }
    size_t m2 = cw_path_index(c, i);
    report_unknown(c, cw_voff(c, items[i]), "time interval", s, &rf->intervals,
                   "define it in notifications.time_intervals, or use "
                   "\"working_time\", \"outside_working_time\" or "
                   "\"non_working_days\"");
    cw_path_pop(c, m2);
  }
  cw_path_pop(c, m1);
  free(items);
}

/* The names a route and the routes under it use. */
static void check_route_refs(struct cw *c, const struct refs *rf,
                             struct cw_val v, const struct config_route *r) {
  if (!cJSON_IsObject(v.j)) {
    return;
  }
  check_receiver_at(c, rf, v, "receiver", r->receiver);
  check_interval_list(c, rf, v, "mute_time_intervals");
  check_interval_list(c, rf, v, "active_time_intervals");
  struct cw_val ev;
  size_t n;
  struct cw_val *items;
  if (r->escalation && cw_find_child(c, v, "escalation", &ev) &&
      (items = cw_children(c, ev, &n)) != NULL) {
    size_t m1 = cw_path_key(c, "escalation");
    for (size_t i = 0; i < n && i < r->nescalation; i++) {
      size_t m2 = cw_path_index(c, i);
      if (cJSON_IsObject(items[i].j)) {
        check_receiver_at(c, rf, items[i], "receiver",
                          r->escalation[i].receiver);
      }
      cw_path_pop(c, m2);
    }
    cw_path_pop(c, m1);
    free(items);
  }
  struct cw_val rv;
  if (r->routes && cw_find_child(c, v, "routes", &rv) &&
      (items = cw_children(c, rv, &n)) != NULL) {
    size_t m1 = cw_path_key(c, "routes");
    for (size_t i = 0; i < n && i < r->nroutes; i++) {
      size_t m2 = cw_path_index(c, i);
      check_route_refs(c, rf, items[i], &r->routes[i]);
      cw_path_pop(c, m2);
    }
    cw_path_pop(c, m1);
    free(items);
  }
}

static void notify_check(struct cw *c, struct cw_val v, void *base) {
  struct config_notify *n = base;
  const struct config *cfg = container_of(n, struct config, notify);
  struct cw_val tmp;
  if (!cw_find_child(c, v, "enabled", &tmp)) {
    n->enabled = n->nreceivers > 0;
  }
  n->has_route = cw_find_child(c, v, "route", &tmp) && cJSON_IsObject(tmp.j);
  config__check_receivers(c, v, n, cfg->language);
  if (n->nreceivers > 0 && !n->has_route &&
      !cw_find_child(c, v, "route", &tmp)) {
    cw_report_key(c, "route", cw_voff(c, v),
                  "required when there are receivers (the root route's "
                  "receiver takes every alert no other route takes)");
  }
  if (n->enabled && n->nreceivers == 0 &&
      cw_find_child(c, v, "enabled", &tmp)) {
    cw_report_key(c, "enabled", cw_voff(c, tmp),
                  "notifications are enabled but there is no receiver");
  }
  config__check_http_url(c, v, "grafana_url", n->grafana_url);

  struct refs rf = {{NULL, 0}, {NULL, 0}};
  rf.receivers.v = malloc((n->nreceivers ? n->nreceivers : 1) * sizeof(char *));
  rf.intervals.v = malloc((n->nintervals + NBUILTIN) * sizeof(char *));
  if (!rf.receivers.v || !rf.intervals.v) {
    c->nomem = true;
    free(rf.receivers.v);
    free(rf.intervals.v);
    return;
  }
  for (size_t i = 0; i < n->nreceivers; i++) {
    rf.receivers.v[rf.receivers.n++] = n->receivers[i].name;
  }
  for (size_t i = 0; i < n->nintervals; i++) {
    rf.intervals.v[rf.intervals.n++] = n->intervals[i].name;
  }
  struct cw_val iv;
  if (cw_find_child(c, v, "time_intervals", &iv) && n->nintervals) {
    size_t mark = cw_path_key(c, "time_intervals");
    cw_check_unique(c, iv, "time_intervals", rf.intervals.v, n->nintervals);
    cw_path_pop(c, mark);
  }
  for (size_t i = 0; i < NBUILTIN; i++) {
    rf.intervals.v[rf.intervals.n++] = builtin_intervals[i];
  }
  struct cw_val rv;
  if (n->has_route && cw_find_child(c, v, "route", &rv)) {
    size_t mark = cw_path_key(c, "route");
    check_route_refs(c, &rf, rv, &n->route);
    cw_path_pop(c, mark);
  }
  struct cw_val dv;
  if (n->digest_receiver && cw_find_child(c, v, "digest", &dv)) {
    size_t mark = cw_path_key(c, "digest");
    check_receiver_at(c, &rf, dv, "receiver", n->digest_receiver);
    cw_path_pop(c, mark);
  }
  free(rf.receivers.v);
  free(rf.intervals.v);
}

void config__load_notify(struct cw *c, struct cw_val root, struct config *cfg) {
  struct config_notify *n = &cfg->notify;
  cw_defaults(c, &notify_obj, n);
  n->route.critical_any_time = 1;
  struct cw_val v;
  if (!cw_find_child(c, root, "notifications", &v)) {
    return;
  }
  size_t mark = cw_path_key(c, "notifications");
  if (cw_walk(c, v, &notify_obj, n)) {
    struct cw_val rv;
    if (cw_find_child(c, v, "route", &rv)) {
      cw_place(c, cw_voff(c, rv), &n->route.place);
    }
  }
  cw_path_pop(c, mark);
}

/* Freeing. */

static void free_route(struct config_route *r) {
  free(r->receiver);
  free_matchers(r->matchers, r->nmatchers);
  cw_free_list(r->group_by, r->ngroup_by);
  cw_free_list(r->mute_time_intervals, r->nmute);
  cw_free_list(r->active_time_intervals, r->nactive);
  for (size_t i = 0; i < r->nescalation; i++) {
    free(r->escalation[i].receiver);
  }
  free(r->escalation);
  for (size_t i = 0; i < r->nroutes; i++) {
    free_route(&r->routes[i]);
  }
  free(r->routes);
  free(r->place.file);
  memset(r, 0, sizeof *r);
}

void config__free_notify(struct config_notify *n) {
  for (size_t i = 0; i < n->nreceivers; i++) {
    config__free_receiver(&n->receivers[i]);
  }
  free(n->receivers);
  free_route(&n->route);
  for (size_t i = 0; i < n->nintervals; i++) {
    free(n->intervals[i].name);
    free(n->intervals[i].times);
    free(n->intervals[i].place.file);
  }
  free(n->intervals);
  for (size_t i = 0; i < n->ninhibit; i++) {
    struct config_inhibit *in = &n->inhibit[i];
    free_matchers(in->source, in->nsource);
    free_matchers(in->target, in->ntarget);
    cw_free_list(in->equal, in->nequal);
    free(in->place.file);
  }
  free(n->inhibit);
  for (size_t i = 0; i < n->nsilences; i++) {
    struct config_silence *s = &n->silences[i];
    free_matchers(s->matchers, s->nmatchers);
    cw_free_strings(&silence_obj, s);
    free(s->place.file);
  }
  free(n->silences);
  free(n->templates.subject_place.file);
  free(n->templates.text_place.file);
  free(n->templates.html_place.file);
  free(n->digest_at);
  cw_free_strings(&notify_obj, n);
  memset(n, 0, sizeof *n);
}
