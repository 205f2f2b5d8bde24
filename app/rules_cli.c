/*
 * `iocd rules test`: loads the rules a test file names into the real
 * engine, feeds the input series on a virtual clock (each sample arrives at
 * its own time; the engine ticks at every evaluation interval and at the
 * deadlines it asks for, as the service's timer does), and at each expected
 * time compares the active alerts with the expected ones. A failure prints,
 * per alert, the expected lines (-) and what came out (+).
 */
#include "app/rules_cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/rules_setup.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/mem.h"
#include "core/timefmt.h"
#include "ingest/ingest.h"
#include "rules/calendar.h"
#include "rules/engine.h"

#define TEST_FILE_MAX (16u << 20)
#define MAX_LABELS 32
#define MAX_SAMPLES 10000000u
#define MAX_STEPS 10000000u
/* Evaluations in one test (grid ticks and the engine's own deadlines): a
 * test that asks for more is refused before it runs. */
#define MAX_EVALUATIONS 1000000

/* One input series: its selector, split. */
struct in_series {
  char *measurement;
  char *field;
  struct series_label labels[MAX_LABELS];
  size_t nlabels;
  char *strings; /* the labels' text, one block */
};

struct in_sample {
  int64_t ts;
  double v;
  size_t series;
  size_t seq; /* input order, for a stable sort */
};

/* An alert as expected or as listed by the engine. */
struct alert_line {
  char *rule;
  struct alert_kv *labels; /* group labels, then the rule's */
  size_t nlabels;
  char *state;
  char *severity; /* NULL: not compared */
  struct alert_kv *annotations;
  size_t nannotations;
  bool has_annotations; /* expected: compare annotations */
  bool has_value;
  double value;
  bool matched;
};

struct alert_set {
  struct alert_line *v;
  size_t n, cap;
  bool nomem;
};

struct run {
  const char *path;
  FILE *out;
  FILE *errs;
  struct buf err;   /* what went wrong with the file, one line */
  int64_t offset_s; /* the calendar's, for printing times */
};

static void fail_file(struct run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail_file(struct run *r, const char *fmt, ...) {
  if (r->err.len) {
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  buf_printf(&r->err, "%s: ", r->path);
  buf_vprintf(&r->err, fmt, ap);
  va_end(ap);
}

/* Times. */

/* RFC 3339 with an offset: 2021-03-01T08:00:00+07:00 or ...Z. */
static bool parse_rfc3339(const char *s, int64_t *ns) {
  const char *why;
  return time_parse_rfc3339(s, strlen(s), ns, &why) == IOCD_OK;
}

/* A duration with units from the largest: "1d2h30m", "90s", "500ms". */
static bool parse_duration(const char *s, int64_t *ns) {
  static const struct {
    const char *unit;
    int64_t ns;
  } units[] = {
      {"w", 7 * 86400 * NS_PER_SEC}, {"d", 86400 * NS_PER_SEC},
      {"h", 3600 * NS_PER_SEC},      {"ms", NS_PER_MS},
      {"m", 60 * NS_PER_SEC},        {"s", NS_PER_SEC},
  };
  int64_t total = 0;
  const char *p = s;
  if (!*p) {
    return false;
  }
  while (*p) {
    if (*p < '0' || *p > '9') {
      return false;
    }
    int64_t x = 0;
    while (*p >= '0' && *p <= '9') {
      if (x > INT64_C(1000000000)) {
        return false;
      }
      x = x * 10 + (*p++ - '0');
    }
    size_t u = 0;
    while (u < sizeof units / sizeof units[0] &&
           strncmp(p, units[u].unit, strlen(units[u].unit)) != 0) {
      u++;
    }
    if (u == sizeof units / sizeof units[0]) {
      return false;
    }
    p += strlen(units[u].unit);
    if (x > INT64_MAX / units[u].ns - total / units[u].ns - 1) {
      return false;
    }
    total += x * units[u].ns;
  }
  *ns = total;
  return true;
}

/* "2021-03-01T08:45:00+07:00" in the calendar's offset. */
static void format_time(int64_t ns, int64_t offset_s, char *out, size_t n) {
  time_format_rfc3339(ns, (int32_t)offset_s, 0, out, n);
}

/* The configuration under test: "config" (a configuration file, relative
 * to the test file), or "rule_files" with the sections the rules need
 * inline ("calendar", "sources", "params", "rule_engine", "rules"). */
static struct config *load_config(struct run *r, const cJSON *root) {
  static const char *const sections[] = {
      "calendar", "sources", "params", "rule_engine", "rules", "rule_files"};
  struct buf errors;
  buf_init(&errors, 1 << 20);
  struct config *cfg = NULL;
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "config");
  if (c) {
    if (!cJSON_IsString(c)) {
      fail_file(r, "config: expected the path of a configuration file");
      goto out;
    }
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
      if (cJSON_GetObjectItemCaseSensitive(root, sections[i])) {
        fail_file(r, "%s: give either \"config\" or the rules' sections",
                  sections[i]);
        goto out;
      }
    }
    char *path = config_path_join(r->path, c->valuestring);
    if (!path) {
      fail_file(r, "out of memory");
      goto out;
    }
    if (config_load(path, &cfg, &errors)) {
      fail_file(r, "config: the configuration is not valid:\n%s",
                errors.data ? errors.data : "");
    }
    free(path);
    goto out;
  }
  /* A configuration around the sections: the loader needs an input and
   * an output, which the rules never see. Its name keeps the test file's
   * directory, so rule_files are relative to the test file. */
  cJSON *doc = cJSON_CreateObject();
  cJSON *subs = cJSON_AddArrayToObject(doc, "subscriptions");
  cJSON *sub = cJSON_CreateObject();
  cJSON_AddItemToArray(subs, sub);
  cJSON_AddStringToObject(sub, "topic", "iocd/rules-test");
  cJSON *file = cJSON_AddObjectToObject(doc, "file");
  cJSON_AddStringToObject(file, "path", "-");
  for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, sections[i]);
    if (s) {
      cJSON_AddItemToObject(doc, sections[i], cJSON_Duplicate(s, 1));
    }
  }
  char *text = cJSON_Print(doc);
  cJSON_Delete(doc);
  struct buf name;
  buf_init(&name, 0);
  if (!text || buf_printf(&name, "%s (inline configuration)", r->path)) {
    fail_file(r, "out of memory");
  } else if (config_load_text(name.data, text, strlen(text), &cfg, &errors)) {
    fail_file(r, "the rules are not valid:\n%s",
              errors.data ? errors.data : "");
  }
  buf_cleanup(&name);
  free(text);
out:
  buf_cleanup(&errors);
  return cfg;
}

/* Input series. */

static void series_free(struct in_series *s) {
  free(s->measurement);
  free(s->field);
  free(s->strings);
}

/* Parses measurement.field{key="value", ...} (\" and \\ escaped in
 * values). Returns false with why. */
static bool parse_selector(const char *sel, struct in_series *s, char *why,
                           size_t n) {
  memset(s, 0, sizeof *s);
  const char *dot = strchr(sel, '.');
  const char *brace = strchr(sel, '{');
  if (!dot || (brace && dot > brace) || dot == sel) {
    snprintf(why, n, "expected measurement.field{labels}");
    return false;
  }
  size_t fl = brace ? (size_t)(brace - dot - 1) : strlen(dot + 1);
  if (fl == 0) {
    snprintf(why, n, "expected a field after the '.'");
    return false;
  }
  s->measurement = strndup(sel, (size_t)(dot - sel));
  s->field = strndup(dot + 1, fl);
  s->strings = malloc(strlen(sel) + 1);
  if (!s->measurement || !s->field || !s->strings) {
    snprintf(why, n, "out of memory");
    return false;
  }
  if (!brace) {
    return true;
  }
  const char *p = brace + 1;
  char *w = s->strings;
  while (*p == ' ') {
    p++;
  }
  while (*p != '}') {
    const char *k = p;
    while (*p && *p != '=' && *p != ' ' && *p != '}' && *p != ',') {
      p++;
    }
    size_t kn = (size_t)(p - k);
    while (*p == ' ') {
      p++;
    }
    if (kn == 0 || *p != '=' || p[1] != '"') {
      snprintf(why, n, "expected key=\"value\" in the labels");
      return false;
    }
    if (s->nlabels == MAX_LABELS) {
      snprintf(why, n, "more than %d labels", MAX_LABELS);
      return false;
    }
    memcpy(w, k, kn);
    w[kn] = '\0';
    s->labels[s->nlabels].key = w;
    w += kn + 1;
    p += 2;
    s->labels[s->nlabels].value = w;
    while (*p && *p != '"') {
      if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) {
        p++;
      }
      *w++ = *p++;
    }
    if (*p != '"') {
      snprintf(why, n, "unterminated label value");
      return false;
    }
    *w++ = '\0';
    s->nlabels++;
    p++;
    while (*p == ' ') {
      p++;
    }
    if (*p == ',') {
      p++;
      while (*p == ' ') {
        p++;
      }
    } else if (*p != '}') {
      snprintf(why, n, "expected ',' or '}' after a label");
      return false;
    }
  }
  if (p[1] != '\0') {
    snprintf(why, n, "unexpected text after '}'");
    return false;
  }
  return true;
}

/* A plain decimal number (no hex, inf or nan, which strtod would take). */
static bool parse_number(const char *s, size_t n, double *out) {
  char tmp[64];
  if (n == 0 || n >= sizeof tmp) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    if (!strchr("0123456789.eE+-", s[i])) {
      return false;
    }
  }
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  char *end;
  errno = 0;
  double x = strtod(tmp, &end);
  if (errno || *end || !isfinite(x)) {
    return false;
  }
  *out = x;
  return true;
}

static bool parse_count(const char *s, size_t n, uint64_t *out) {
  uint64_t x = 0;
  if (n == 0 || n > 9) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    x = x * 10 + (uint64_t)(s[i] - '0');
  }
  *out = x;
  return true;
}

struct samples {
  struct in_sample *v;
  size_t n, cap;
};

static bool push_sample(struct samples *ss, struct in_sample s) {
  if (ss->n == ss->cap) {
    if (ss->n >= MAX_SAMPLES) {
      return false;
    }
    size_t cap = ss->cap ? ss->cap * 2 : 256;
    struct in_sample *v = realloc(ss->v, cap * sizeof *v);
    if (!v) {
      return false;
    }
    ss->v = v;
    ss->cap = cap;
  }
  ss->v[ss->n++] = s;
  return true;
}

/* Expands "0+10x60 _x5 700" (promtool's notation): a value; a+bxN and
 * a-bxN (N+1 values from a, stepping by b); axN (a, N+1 times); _ (no
 * sample at that step); _xN (N steps without a sample). Step k is at
 * start + k * interval. */
static bool expand_values(const char *text, size_t series, int64_t start,
                          int64_t interval, struct samples *ss, char *why,
                          size_t n) {
  const char *p = text;
  uint64_t step = 0;
  while (*p) {
    while (*p == ' ' || *p == '\t') {
      p++;
    }
    if (!*p) {
      break;
    }
    const char *tok = p;
    while (*p && *p != ' ' && *p != '\t') {
      p++;
    }
    size_t tn = (size_t)(p - tok);
    const char *x = memchr(tok, 'x', tn);
    uint64_t times = 0;
    if (x && !parse_count(x + 1, tn - (size_t)(x - tok) - 1, &times)) {
      snprintf(why, n, "\"%.*s\": expected a count after 'x'", (int)tn, tok);
      return false;
    }
    size_t head = x ? (size_t)(x - tok) : tn;
    if (head == 1 && tok[0] == '_') {
      step += x ? times : 1;
      continue;
    }
    double a, b = 0;
    size_t op = 0;
    for (size_t i = 1; x && i < head; i++) {
      if ((tok[i] == '+' || tok[i] == '-') && tok[i - 1] != 'e' &&
          tok[i - 1] != 'E') {
        op = i;
        break;
      }
    }
    bool ok = op ? parse_number(tok, op, &a) &&
                       parse_number(tok + op + 1, head - op - 1, &b)
                 : parse_number(tok, head, &a);
    if (!ok) {
      snprintf(why, n,
               "\"%.*s\" is not a value (use e.g. 5, 0+10x60, 7x3, _ or "
               "_x5)",
               (int)tn, tok);
      return false;
    }
    if (op && tok[op] == '-') {
      b = -b;
    }
    uint64_t count = x ? times + 1 : 1;
    for (uint64_t k = 0; k < count; k++) {
      if (step > MAX_STEPS) {
        snprintf(why, n, "more than %u steps", MAX_STEPS);
        return false;
      }
      /* start may be before 1970 (negative): then only the product can
       * overflow. */
      if ((int64_t)step >
          (start > 0 ? INT64_MAX - start : INT64_MAX) / interval) {
        snprintf(why, n,
                 "step %" PRIu64
                 " is past the last time iocd can represent "
                 "(2262-04-11T23:47:16Z)",
                 step);
        return false;
      }
      struct in_sample s = {start + (int64_t)step * interval, a + (double)k * b,
                            series, ss->n};
      if (!push_sample(ss, s)) {
        snprintf(why, n, "too many samples");
        return false;
      }
      step++;
    }
  }
  return true;
}

static int cmp_sample(const void *a, const void *b) {
  const struct in_sample *x = a, *y = b;
  if (x->ts != y->ts) {
    return x->ts < y->ts ? -1 : 1;
  }
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Alerts. */

static void line_free(struct alert_line *l) {
  free(l->rule);
  for (size_t i = 0; i < l->nlabels; i++) {
    free((char *)l->labels[i].key);
    free((char *)l->labels[i].value);
  }
  free(l->labels);
  free(l->state);
  free(l->severity);
  for (size_t i = 0; i < l->nannotations; i++) {
    free((char *)l->annotations[i].key);
    free((char *)l->annotations[i].value);
  }
  free(l->annotations);
}

static void set_free(struct alert_set *s) {
  for (size_t i = 0; i < s->n; i++) {
    line_free(&s->v[i]);
  }
  free(s->v);
  memset(s, 0, sizeof *s);
}

static struct alert_line *set_add(struct alert_set *s) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    struct alert_line *v = realloc(s->v, cap * sizeof *v);
    if (!v) {
      s->nomem = true;
      return NULL;
    }
    s->v = v;
    s->cap = cap;
  }
  struct alert_line *l = &s->v[s->n++];
  memset(l, 0, sizeof *l);
  return l;
}

static bool kv_add(struct alert_kv **v, size_t *n, const char *k,
                   const char *val) {
  struct alert_kv *g = realloc(*v, (*n + 1) * sizeof *g);
  if (!g) {
    return false;
  }
  *v = g;
  g[*n].key = mem_strdup(k);
  g[*n].value = mem_strdup(val);
  (*n)++;
  return g[*n - 1].key && g[*n - 1].value;
}

struct list_ctx {
  struct alert_set *set;
  const char *rule;    /* NULL: every rule */
  const cJSON *labels; /* NULL: every instance; else those with these */
};

static const char *event_label(const struct alert_event *ev, const char *k) {
  for (size_t i = 0; ev->group && i < ev->group->n; i++) {
    if (strcmp(ev->group->keys[i], k) == 0) {
      return ev->group->values[i];
    }
  }
  for (size_t i = 0; i < ev->nlabels; i++) {
    if (strcmp(ev->labels[i].key, k) == 0) {
      return ev->labels[i].value;
    }
  }
  return NULL;
}

static void on_list(void *ud, const struct alert_event *ev) {
  struct list_ctx *lc = ud;
  if (lc->rule && strcmp(lc->rule, ev->rule) != 0) {
    return;
  }
  for (const cJSON *k = lc->labels ? lc->labels->child : NULL; k; k = k->next) {
    const char *v = event_label(ev, k->string);
    if (!v || strcmp(v, k->valuestring) != 0) {
      return;
    }
  }
  struct alert_line *l = set_add(lc->set);
  if (!l) {
    return;
  }
  bool ok = (l->rule = mem_strdup(ev->rule)) != NULL;
  for (size_t i = 0; ok && ev->group && i < ev->group->n; i++) {
    ok = kv_add(&l->labels, &l->nlabels, ev->group->keys[i],
                ev->group->values[i]);
  }
  for (size_t i = 0; ok && i < ev->nlabels; i++) {
    ok =
        kv_add(&l->labels, &l->nlabels, ev->labels[i].key, ev->labels[i].value);
  }
  for (size_t i = 0; ok && i < ev->nannotations; i++) {
    ok = kv_add(&l->annotations, &l->nannotations, ev->annotations[i].key,
                ev->annotations[i].value);
  }
  ok = ok && (l->state = mem_strdup(alert_state_name(ev->state))) != NULL;
  ok = ok && (!ev->severity || (l->severity = mem_strdup(ev->severity)));
  l->has_value = ev->has_value;
  l->value = ev->value;
  if (!ok) {
    lc->set->nomem = true;
  }
}

static const char *kv_get(const struct alert_kv *v, size_t n, const char *k) {
  for (size_t i = 0; i < n; i++) {
    if (strcmp(v[i].key, k) == 0) {
      return v[i].value;
    }
  }
  return NULL;
}

static bool same_labels(const struct alert_line *a,
                        const struct alert_line *b) {
  if (a->nlabels != b->nlabels || strcmp(a->rule, b->rule) != 0) {
    return false;
  }
  for (size_t i = 0; i < a->nlabels; i++) {
    const char *v = kv_get(b->labels, b->nlabels, a->labels[i].key);
    if (!v || strcmp(v, a->labels[i].value) != 0) {
      return false;
    }
  }
  return true;
}

static void put_quoted(struct buf *b, const char *s) {
  buf_putc(b, '"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') {
      buf_putc(b, '\\');
      buf_putc(b, *s);
    } else if (*s == '\n') {
      buf_puts(b, "\\n");
    } else {
      buf_putc(b, *s);
    }
  }
  buf_putc(b, '"');
}

/* rule{k="v", ...} */
static void put_id(struct buf *b, const struct alert_line *l) {
  buf_puts(b, l->rule);
  buf_putc(b, '{');
  for (size_t i = 0; i < l->nlabels; i++) {
    buf_printf(b, "%s%s=", i ? ", " : "", l->labels[i].key);
    put_quoted(b, l->labels[i].value);
  }
  buf_putc(b, '}');
}

/* The lines of one alert, each prefixed (by "  - " or "  + "). Only the
 * annotations in `only` (when not NULL) are shown. */
static void put_alert(struct buf *b, const char *mark,
                      const struct alert_line *l,
                      const struct alert_line *only) {
  buf_printf(b, "  %s ", mark);
  put_id(b, l);
  buf_printf(b, " %s", l->state);
  if (l->severity) {
    buf_printf(b, " %s", l->severity);
  }
  if (l->has_value) {
    buf_printf(b, " value=%.10g", l->value);
  }
  buf_putc(b, '\n');
  for (size_t i = 0; i < l->nannotations; i++) {
    const char *k = l->annotations[i].key;
    if (only && !kv_get(only->annotations, only->nannotations, k)) {
      continue;
    }
    buf_printf(b, "  %s     %s: ", mark, k);
    put_quoted(b, l->annotations[i].value);
    buf_putc(b, '\n');
  }
}

static bool close_enough(double a, double b) {
  double scale = fabs(b) > 1 ? fabs(b) : 1;
  return fabs(a - b) <= 1e-9 * scale;
}

/* Whether got satisfies want: state, and severity, value and annotations
 * when want gives them. */
static bool alert_matches(const struct alert_line *want,
                          const struct alert_line *got) {
  if (strcmp(want->state, got->state) != 0) {
    return false;
  }
  if (want->severity &&
      (!got->severity || strcmp(want->severity, got->severity) != 0)) {
    return false;
  }
  if (want->has_value &&
      (!got->has_value || !close_enough(got->value, want->value))) {
    return false;
  }
  for (size_t i = 0; want->has_annotations && i < want->nannotations; i++) {
    const char *v =
        kv_get(got->annotations, got->nannotations, want->annotations[i].key);
    if (!v || strcmp(v, want->annotations[i].value) != 0) {
      return false;
    }
  }
  return true;
}

/* Compares and appends the differences to diff. Returns true when equal. */
static bool compare(const struct alert_set *want, struct alert_set *got,
                    struct buf *diff) {
  bool equal = true;
  for (size_t i = 0; i < got->n; i++) {
    got->v[i].matched = false;
  }
  for (size_t i = 0; i < want->n; i++) {
    const struct alert_line *w = &want->v[i];
    struct alert_line *g = NULL;
    for (size_t k = 0; k < got->n && !g; k++) {
      if (!got->v[k].matched && same_labels(w, &got->v[k])) {
        g = &got->v[k];
      }
    }
    if (g) {
      g->matched = true;
    }
    if (g && alert_matches(w, g)) {
      continue;
    }
    equal = false;
    put_alert(diff, "-", w, NULL);
    if (g) {
      put_alert(diff, "+", g, w->has_annotations ? w : NULL);
    }
  }
  for (size_t k = 0; k < got->n; k++) {
    if (!got->v[k].matched) {
      equal = false;
      put_alert(diff, "+", &got->v[k], NULL);
    }
  }
  return equal;
}

/* Reads an expected alert. Returns false with why. */
static bool parse_expected(const cJSON *j, const char *rule,
                           struct alert_line *l, char *why, size_t n) {
  static const char *const keys[] = {"rule",     "labels",      "state",
                                     "severity", "annotations", "value"};
  if (!cJSON_IsObject(j)) {
    snprintf(why, n, "expected an object");
    return false;
  }
  for (const cJSON *k = j->child; k; k = k->next) {
    bool known = false;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
      known = known || strcmp(k->string, keys[i]) == 0;
    }
    if (!known) {
      snprintf(why, n, "%s: unknown key", k->string);
      return false;
    }
  }
  const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "rule");
  if (r && !cJSON_IsString(r)) {
    snprintf(why, n, "rule: expected a string");
    return false;
  }
  if (!r && !rule) {
    snprintf(why, n, "rule: required (or give \"rule\" for the time)");
    return false;
  }
  l->rule = mem_strdup(r ? r->valuestring : rule);
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "state");
  enum alert_state state = ALERT_FIRING;
  if (st && (!cJSON_IsString(st) ||
             alert_state_parse(st->valuestring, &state) != IOCD_OK ||
             state == ALERT_INACTIVE || state == ALERT_RESOLVED)) {
    snprintf(why, n,
             "state: expected \"pending\", \"firing\", \"nodata\" or "
             "\"insufficient\"");
    return false;
  }
  l->state = mem_strdup(alert_state_name(state));
  const cJSON *sev = cJSON_GetObjectItemCaseSensitive(j, "severity");
  if (sev && !cJSON_IsString(sev)) {
    snprintf(why, n, "severity: expected a string");
    return false;
  }
  l->severity = sev ? mem_strdup(sev->valuestring) : NULL;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value");
  if (v && !cJSON_IsNumber(v)) {
    snprintf(why, n, "value: expected a number");
    return false;
  }
  l->has_value = v != NULL;
  l->value = v ? v->valuedouble : 0;
  const cJSON *lab = cJSON_GetObjectItemCaseSensitive(j, "labels");
  if (lab && !cJSON_IsObject(lab)) {
    snprintf(why, n, "labels: expected an object");
    return false;
  }
  for (const cJSON *k = lab ? lab->child : NULL; k; k = k->next) {
    if (!cJSON_IsString(k) ||
        !kv_add(&l->labels, &l->nlabels, k->string, k->valuestring)) {
      snprintf(why, n, "labels.%s: expected a string", k->string);
      return false;
    }
  }
  const cJSON *an = cJSON_GetObjectItemCaseSensitive(j, "annotations");
  if (an && !cJSON_IsObject(an)) {
    snprintf(why, n, "annotations: expected an object");
    return false;
  }
  l->has_annotations = an != NULL;
  for (const cJSON *k = an ? an->child : NULL; k; k = k->next) {
    if (!cJSON_IsString(k) ||
        !kv_add(&l->annotations, &l->nannotations, k->string, k->valuestring)) {
      snprintf(why, n, "annotations.%s: expected a string", k->string);
      return false;
    }
  }
  if (!l->rule || !l->state) {
    snprintf(why, n, "out of memory");
    return false;
  }
  return true;
}

/* One expected time. */
struct check {
  int64_t t;
  const char *at; /* as written */
  const char *rule;
  const cJSON *labels;
  const cJSON *alerts;
  size_t index;
};

static int cmp_check(const void *a, const void *b) {
  const struct check *x = a, *y = b;
  if (x->t != y->t) {
    return x->t < y->t ? -1 : 1;
  }
  return x->index < y->index ? -1 : x->index > y->index;
}

/* Runs tests[ti]. Returns 1 when it passed, 0 when it failed, -1 when the
 * test itself is not valid (r->err says why). */
static int run_test(struct run *r, const struct config *cfg,
                    const struct rules_setup *setup, const cJSON *t, size_t ti,
                    int64_t eval_interval, const char *eval_text) {
  static const char *const keys[] = {"name", "start", "interval", "input",
                                     "expect"};
  const struct config *cfgp = cfg;
  struct engine *e = NULL;
  struct in_series *series = NULL;
  size_t nseries = 0;
  struct samples ss = {0};
  struct check *checks = NULL;
  size_t nchecks = 0;
  int result = -1;
  char why[512];
  struct buf out;
  buf_init(&out, 0);
  if (!cJSON_IsObject(t)) {
    fail_file(r, "tests[%zu]: expected an object", ti);
    goto out;
  }
  for (const cJSON *k = t->child; k; k = k->next) {
    bool known = false;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
      known = known || strcmp(k->string, keys[i]) == 0;
    }
    if (!known) {
      fail_file(r, "tests[%zu].%s: unknown key", ti, k->string);
      goto out;
    }
  }
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
  const char *tname = cJSON_IsString(name) ? name->valuestring : "";
  const cJSON *start_j = cJSON_GetObjectItemCaseSensitive(t, "start");
  int64_t start;
  if (!cJSON_IsString(start_j) ||
      !parse_rfc3339(start_j->valuestring, &start)) {
    fail_file(r,
              "tests[%zu].start: expected a time such as "
              "\"2021-03-01T08:00:00+07:00\"",
              ti);
    goto out;
  }
  int64_t interval = INT64_C(60) * NS_PER_SEC;
  const cJSON *iv = cJSON_GetObjectItemCaseSensitive(t, "interval");
  if (iv && (!cJSON_IsString(iv) ||
             !parse_duration(iv->valuestring, &interval) || interval <= 0)) {
    fail_file(r, "tests[%zu].interval: expected a duration such as \"1m\"", ti);
    goto out;
  }
  const cJSON *input = cJSON_GetObjectItemCaseSensitive(t, "input");
  if (input && !cJSON_IsObject(input)) {
    fail_file(r, "tests[%zu].input: expected an object of series", ti);
    goto out;
  }
  size_t nin = (size_t)cJSON_GetArraySize(input);
  series = calloc(nin ? nin : 1, sizeof *series);
  if (!series) {
    fail_file(r, "out of memory");
    goto out;
  }
  for (const cJSON *s = input ? input->child : NULL; s; s = s->next) {
    if (!parse_selector(s->string, &series[nseries], why, sizeof why)) {
      nseries++;
      fail_file(r, "tests[%zu].input[\"%s\"]: %s", ti, s->string, why);
      goto out;
    }
    nseries++;
    if (!cJSON_IsString(s)) {
      fail_file(r, "tests[%zu].input[\"%s\"]: expected a string of values", ti,
                s->string);
      goto out;
    }
    if (!expand_values(s->valuestring, nseries - 1, start, interval, &ss, why,
                       sizeof why)) {
      fail_file(r, "tests[%zu].input[\"%s\"]: %s", ti, s->string, why);
      goto out;
    }
  }
  if (ss.n > 1) {
    qsort(ss.v, ss.n, sizeof *ss.v, cmp_sample);
  }
  const cJSON *expect = cJSON_GetObjectItemCaseSensitive(t, "expect");
  if (!cJSON_IsArray(expect)) {
    fail_file(r, "tests[%zu].expect: expected an array", ti);
    goto out;
  }
  nchecks = (size_t)cJSON_GetArraySize(expect);
  checks = calloc(nchecks ? nchecks : 1, sizeof *checks);
  if (!checks) {
    fail_file(r, "out of memory");
    goto out;
  }
  size_t ci = 0;
  for (const cJSON *x = expect->child; x; x = x->next, ci++) {
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(x, "at");
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(x, "rule");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(x, "labels");
    const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(x, "alerts");
    int64_t off;
    if (!cJSON_IsObject(x) || !cJSON_IsString(at)) {
      fail_file(r, "tests[%zu].expect[%zu].at: required: a time", ti, ci);
      goto out;
    }
    for (const cJSON *k = x->child; k; k = k->next) {
      if (strcmp(k->string, "at") && strcmp(k->string, "rule") &&
          strcmp(k->string, "labels") && strcmp(k->string, "alerts")) {
        fail_file(r, "tests[%zu].expect[%zu].%s: unknown key", ti, ci,
                  k->string);
        goto out;
      }
    }
    if (parse_duration(at->valuestring, &off)) {
      if (start > 0 && off > INT64_MAX - start) {
        fail_file(r,
                  "tests[%zu].expect[%zu].at: past the last time iocd can "
                  "represent (2262-04-11T23:47:16Z)",
                  ti, ci);
        goto out;
      }
      checks[ci].t = start + off;
    } else if (!parse_rfc3339(at->valuestring, &checks[ci].t)) {
      fail_file(r,
                "tests[%zu].expect[%zu].at: expected a duration after the "
                "start (\"45m\", \"1d2h\") or a time",
                ti, ci);
      goto out;
    }
    if (checks[ci].t < start) {
      fail_file(r, "tests[%zu].expect[%zu].at: before the start", ti, ci);
      goto out;
    }
    /* In unsigned: from a start before 1970 to a time after it the
     * difference may not fit in int64. */
    if (((uint64_t)checks[ci].t - (uint64_t)start) / (uint64_t)eval_interval >
            (uint64_t)MAX_EVALUATIONS ||
        checks[ci].t > INT64_MAX - eval_interval) {
      fail_file(r,
                "tests[%zu].expect[%zu].at: %s is more than %d evaluations "
                "after the start at an evaluation_interval of %s; give a "
                "longer evaluation_interval or an earlier time",
                ti, ci, at->valuestring, MAX_EVALUATIONS, eval_text);
      goto out;
    }
    if ((rule && !cJSON_IsString(rule)) || !cJSON_IsArray(alerts)) {
      fail_file(r,
                "tests[%zu].expect[%zu]: expected \"rule\" (optional) and "
                "\"alerts\" (an array)",
                ti, ci);
      goto out;
    }
    for (const cJSON *l = labels ? labels->child : NULL; l; l = l->next) {
      if (!cJSON_IsString(l)) {
        fail_file(r, "tests[%zu].expect[%zu].labels.%s: expected a string", ti,
                  ci, l->string);
        goto out;
      }
    }
    if (labels && !cJSON_IsObject(labels)) {
      fail_file(r, "tests[%zu].expect[%zu].labels: expected an object", ti, ci);
      goto out;
    }
    checks[ci].labels = labels;
    checks[ci].at = at->valuestring;
    checks[ci].rule = rule ? rule->valuestring : NULL;
    checks[ci].alerts = alerts;
    checks[ci].index = ci;
  }
  if (nchecks > 1) {
    qsort(checks, nchecks, sizeof *checks, cmp_check);
  }

  struct engine_opts opts;
  rules_setup_opts(setup, &opts, &cfgp, NULL, NULL, start);
  struct iocd_err err = {{0}};
  if (rules_setup_engine(setup, &opts, &e, &err)) {
    fail_file(r, "%s", err.msg);
    goto out;
  }

  bool passed = true;
  size_t si = 0;
  int64_t t_now = start;
  int64_t grid = start;
  long evaluations = 0;
  for (size_t k = 0; k < nchecks; k++) {
    while (t_now <= checks[k].t) {
      if (++evaluations > 2L * MAX_EVALUATIONS) {
        fail_file(r,
                  "tests[%zu]: more than %ld evaluations before %s (the "
                  "rules' deadlines come too often); give an earlier time",
                  ti, 2L * MAX_EVALUATIONS, checks[k].at);
        goto out;
      }
      while (si < ss.n && ss.v[si].ts <= t_now) {
        const struct in_sample *smp = &ss.v[si++];
        const struct in_series *sr = &series[smp->series];
        engine_add_sample(e, sr->measurement, sr->field, sr->labels,
                          sr->nlabels, smp->ts, smp->v, smp->ts);
      }
      engine_tick(e, t_now);
      if (t_now == checks[k].t) {
        break;
      }
      /* The next instant anything happens: a grid tick, a sample, a
       * deadline the engine asked for, or the check itself. */
      if (grid <= t_now) {
        uint64_t since = (uint64_t)t_now - (uint64_t)start;
        grid =
            t_now - (int64_t)(since % (uint64_t)eval_interval) + eval_interval;
      }
      int64_t next = grid;
      if (si < ss.n && ss.v[si].ts < next) {
        next = ss.v[si].ts;
      }
      int64_t wake = engine_next_wake(e);
      if (wake > t_now && wake < next) {
        next = wake;
      }
      if (checks[k].t < next) {
        next = checks[k].t;
      }
      t_now = next;
    }
    struct alert_set want = {0}, got = {0};
    bool ok = true;
    size_t ai = 0;
    for (const cJSON *a = checks[k].alerts->child; a && ok; a = a->next) {
      struct alert_line *l = set_add(&want);
      ok = l && parse_expected(a, checks[k].rule, l, why, sizeof why);
      if (!ok) {
        fail_file(r, "tests[%zu].expect[%zu].alerts[%zu]: %s", ti,
                  checks[k].index, ai, l ? why : "out of memory");
      }
      ai++;
    }
    if (ok) {
      struct list_ctx lc = {&got, checks[k].rule, checks[k].labels};
      engine_list(e, on_list, &lc);
      struct buf diff;
      buf_init(&diff, 0);
      if (got.nomem) {
        fail_file(r, "out of memory");
        ok = false;
      } else if (!compare(&want, &got, &diff)) {
        char when[40];
        format_time(checks[k].t, r->offset_s, when, sizeof when);
        buf_printf(&out, "FAIL %s: tests[%zu] \"%s\": at %s (%s)", r->path, ti,
                   tname, checks[k].at, when);
        if (checks[k].rule) {
          buf_printf(&out, ", rule %s", checks[k].rule);
        }
        for (const cJSON *l = checks[k].labels ? checks[k].labels->child : NULL;
             l; l = l->next) {
          buf_printf(&out, ", %s=", l->string);
          put_quoted(&out, l->valuestring);
        }
        buf_printf(&out, "\n  (- expected, + got)\n%s",
                   diff.data ? diff.data : "");
        passed = false;
      }
      buf_cleanup(&diff);
    }
    set_free(&want);
    set_free(&got);
    if (!ok) {
      goto out;
    }
  }
  if (out.len) {
    fputs(out.data, r->out);
  }
  result = passed ? 1 : 0;
out:
  engine_free(e);
  for (size_t i = 0; i < nseries; i++) {
    series_free(&series[i]);
  }
  free(series);
  free(ss.v);
  free(checks);
  buf_cleanup(&out);
  return result;
}

/* Runs one file. Returns the number of failed tests, or -1 when the file
 * could not be run. */
static int run_file(struct run *r, int *ntests) {
  static const char *const keys[] = {
      "config",      "calendar", "sources",    "params",
      "rule_engine", "rules",    "rule_files", "evaluation_interval",
      "tests"};
  struct buf text;
  buf_init(&text, TEST_FILE_MAX);
  cJSON *root = NULL;
  struct config *cfg = NULL;
  struct rules_setup setup;
  bool have_setup = false;
  int failed = -1;
  struct iocd_err err = {{0}};
  if (file_read(r->path, &text, &err)) {
    fail_file(r, "%s", err.msg);
    goto out;
  }
  struct buf perr;
  buf_init(&perr, 1 << 16);
  int rc = config_parse_jsonc(r->path, text.data ? text.data : "", text.len,
                              (struct cJSON **)&root, &perr);
  if (rc) {
    if (perr.len && perr.data[perr.len - 1] == '\n') {
      perr.data[--perr.len] = '\0';
    }
    buf_printf(&r->err, "%s", perr.len ? perr.data : iocd_strerror(rc));
    buf_cleanup(&perr);
    goto out;
  }
  buf_cleanup(&perr);
  if (!cJSON_IsObject(root)) {
    fail_file(r, "expected an object with \"tests\"");
    goto out;
  }
  for (const cJSON *k = root->child; k; k = k->next) {
    bool known = false;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
      known = known || strcmp(k->string, keys[i]) == 0;
    }
    if (!known) {
      fail_file(r, "%s: unknown key", k->string);
      goto out;
    }
  }
  int64_t eval_interval = INT64_C(60) * NS_PER_SEC;
  const cJSON *ei =
      cJSON_GetObjectItemCaseSensitive(root, "evaluation_interval");
  if (ei && (!cJSON_IsString(ei) ||
             !parse_duration(ei->valuestring, &eval_interval) ||
             eval_interval <= 0)) {
    fail_file(r, "evaluation_interval: expected a duration such as \"1m\"");
    goto out;
  }
  const cJSON *tests = cJSON_GetObjectItemCaseSensitive(root, "tests");
  if (!cJSON_IsArray(tests) || cJSON_GetArraySize(tests) == 0) {
    fail_file(r, "tests: expected a non-empty array of tests");
    goto out;
  }
  cfg = load_config(r, root);
  if (!cfg) {
    goto out;
  }
  r->offset_s = cfg->calendar.utc_offset_s;
  if (rules_setup_init(&setup, cfg, &err)) {
    fail_file(r, "%s", err.msg);
    goto out;
  }
  have_setup = true;
  failed = 0;
  size_t ti = 0;
  for (const cJSON *t = tests->child; t; t = t->next, ti++) {
    int res = run_test(r, cfg, &setup, t, ti, eval_interval,
                       ei ? ei->valuestring : "1m");
    if (res < 0) {
      failed = -1;
      goto out;
    }
    failed += res == 0;
    (*ntests)++;
  }
out:
  if (have_setup) {
    rules_setup_cleanup(&setup);
  }
  config_free(cfg);
  cJSON_Delete(root);
  buf_cleanup(&text);
  return failed;
}

int rules_cli_test(const char *const *paths, size_t n, FILE *out, FILE *errs) {
  int status = 0;
  for (size_t i = 0; i < n; i++) {
    struct run r = {.path = paths[i], .out = out, .errs = errs};
    buf_init(&r.err, 1 << 20);
    int ntests = 0;
    int failed = run_file(&r, &ntests);
    if (failed < 0) {
      while (r.err.len && r.err.data[r.err.len - 1] == '\n') {
        buf_truncate(&r.err, r.err.len - 1);
      }
      fprintf(errs, "%s\n", r.err.len ? r.err.data : "failed");
      fprintf(out, "ERROR %s\n", paths[i]);
      status = 1;
    } else if (failed > 0) {
      fprintf(out, "FAIL %s: %d of %d tests failed\n", paths[i], failed,
              ntests);
      status = 1;
    } else {
      fprintf(out, "PASS %s: %d test%s\n", paths[i], ntests,
              ntests == 1 ? "" : "s");
    }
    buf_cleanup(&r.err);
  }
  return status;
}
