/*
 * The rules engine: parsed rules, their instances, the sample store, and
 * the two triggers that evaluate them.
 *
 * On arrival, the store calls back once per sample stored; the callback
 * finds the rules that read that (measurement, field) through an index,
 * names the group from the series' labels, and marks the instance. Only
 * after the whole point (and its heartbeat) is stored are the marked
 * instances evaluated, each once, so a rule that reads two fields of one
 * point sees both. Work is proportional to the rules reading what changed.
 *
 * On a tick, a min-heap of wake times gives the instances whose state can
 * change with time alone. An instance's wake is the earliest of its state
 * machine's deadline (alert_deadline) and the horizon of the expressions it
 * evaluated (expr_horizon: staleness, windows, age() thresholds, calendar
 * boundaries), recomputed after every evaluation. Ties pop in rule order,
 * then creation order, so the same input gives the same events in the same
 * order.
 */
#include "rules/engine.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/mem.h"
#include "core/numfmt.h"
#include "core/timefmt.h"
#include "rules/engine_int.h"
#include "rules/rules_int.h"

#define DEFAULT_MAX_INSTANCES 1000000
#define MAX_BY 16
#define MAX_TEMPLATE 4096
#define MAX_ANNOTATIONS 64
#define REASON_MAX 1024
#define EVENT_TEXT_MAX (64 * 1024)

/* One instance touched by the point being added, and the sample that
 * touched it first (for the reason of a transition). */
struct touch {
  struct inst *inst;
  const struct series *series;
  const char *measurement;
  const char *field;
  int64_t ts;
};

/* An index entry: the rules that read (measurement, field). */
struct reader {
  struct reader *next;
  char *meas;
  char *field; /* NULL: the bare measurement */
  struct rule **rules;
  size_t n, cap;
};

/* What the engine keeps with the labels of a point (series_user): the
 * instance each rule reading them found last, so that the next point with
 * the same labels does not look it up. Valid while gen is the engine's
 * known_gen, which moves whenever instances or rules are freed. */
#define KNOWN_MIN 4
#define KNOWN_MAX 16
struct known {
  uint64_t gen;
  size_t *bytes; /* the engine's count of what these take */
  uint32_t n, cap, next;
  struct {
    const struct rule *r;
    struct inst *in;
  } v[];
};

static size_t known_size(uint32_t cap) {
  return sizeof(struct known) + cap * sizeof(((struct known *)0)->v[0]);
}

/* The store's user_free for struct known. */
static void known_free(void *p) {
  struct known *k = p;
  *k->bytes -= known_size(k->cap);
  free(k);
}

struct engine {
  struct engine_opts opts;
  struct calendar **cals;
  size_t ncals;
  struct rule **rules;
  size_t nrules;
  struct rule *broker; /* the built-in alert */
  struct reader **index;
  size_t index_size;
  struct series_store *store;
  uint64_t known_gen; /* struct known */
  size_t known_bytes; /* held by struct known */
  /* Scheduling. */
  struct inst **heap;
  size_t nheap, cap_heap;
  uint64_t seq;
  size_t ninsts;
  size_t max_insts;
  /* Arrival batch. */
  uint64_t mark;
  struct touch *touched;
  size_t ntouched, cap_touched;
  bool reads_heartbeat; /* some rule reads _source */
  /* Listening. */
  bool broker_down;
  int64_t listen_since; /* engine start or broker back; 0: none */
  struct engine_stats st;
};

/* ---- small helpers ------------------------------------------------------- */

static uint64_t values_hash(const char *const *v, size_t n) {
  uint64_t h = HASH_START;
  for (size_t i = 0; i < n; i++) {
    h = hash_str(h, v[i]);
  }
  return h;
}

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
static void fmt_time(const struct calendar *c, int64_t t, char out[40]) {
  time_format_rfc3339(t, c ? calendar_utc_offset(c) : 0, 0, out, 40);
}

static const struct calendar *find_cal(const struct calendar *const *cals,
                                       size_t n, const char *name) {
  for (size_t i = 0; i < n; i++) {
    if (strcmp(calendar_name(cals[i]), name) == 0) {
      return cals[i];
    }
  }
  return NULL;
}

static const struct calendar *default_cal(const struct engine *e) {
  const struct calendar *c = find_cal((const struct calendar *const *)e->cals,
                                      e->ncals, "office_hours");
  return c ? c : e->ncals ? e->cals[0] : NULL;
}

/* ---- the wake heap ------------------------------------------------------- */

static bool before(const struct inst *a, const struct inst *b) {
  if (a->hkey != b->hkey) {
    return a->hkey < b->hkey;
  }
  if (a->rule->index != b->rule->index) {
    return a->rule->index < b->rule->index;
  }
  return a->seq < b->seq;
}

static void heap_swap(struct engine *e, size_t i, size_t j) {
  struct inst *t = e->heap[i];
  e->heap[i] = e->heap[j];
  e->heap[j] = t;
  e->heap[i]->heap_idx = i;
  e->heap[j]->heap_idx = j;
}

static void heap_up(struct engine *e, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!before(e->heap[i], e->heap[p])) {
      break;
    }
    heap_swap(e, i, p);
    i = p;
  }
}

static void heap_down(struct engine *e, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < e->nheap && before(e->heap[l], e->heap[m])) {
      m = l;
    }
    if (r < e->nheap && before(e->heap[r], e->heap[m])) {
      m = r;
    }
    if (m == i) {
      return;
    }
    heap_swap(e, i, m);
    i = m;
  }
}

static void heap_remove(struct engine *e, struct inst *in) {
  size_t i = in->heap_idx;
  if (i == SIZE_MAX) {
    return;
  }
  in->heap_idx = SIZE_MAX;
  e->nheap--;
  if (i == e->nheap) {
    return;
  }
  e->heap[i] = e->heap[e->nheap];
  e->heap[i]->heap_idx = i;
  heap_up(e, i);
  heap_down(e, e->heap[i]->heap_idx);
}

/* Schedules in at wake (INT64_MAX: not at all). When the heap cannot grow
 * the instance is evaluated on arrival only; that is the one degradation
 * memory exhaustion causes.
 *
 * Most evaluations move a wake later (each sample pushes back when a feed
 * counts as silent or when the oldest sample leaves a window), and with
 * tens of thousands of instances sifting each one down the heap costs more
 * than the evaluation. So a later wake leaves the heap alone: the key stays
 * where it was, below the true wake, and settle() moves the instance when
 * its stale key reaches the top. Keys are never above the true wake, so
 * the top, once settled, is the instance due first, in the same (wake,
 * rule, creation) order as an exact heap. */
static void schedule(struct engine *e, struct inst *in, int64_t wake) {
  if (wake == INT64_MAX) {
    heap_remove(e, in);
    in->wake = wake;
    return;
  }
  if (in->heap_idx != SIZE_MAX) {
    in->wake = wake;
    if (wake < in->hkey) {
      in->hkey = wake;
      heap_up(e, in->heap_idx);
    }
    return;
  }
  if (e->nheap == e->cap_heap) {
    size_t ncap = e->cap_heap ? e->cap_heap * 2 : 64;
    struct inst **h = realloc(e->heap, ncap * sizeof *h);
    if (!h) {
      return;
    }
    e->heap = h;
    e->cap_heap = ncap;
  }
  in->wake = wake;
  in->hkey = wake;
  in->heap_idx = e->nheap;
  e->heap[e->nheap++] = in;
  heap_up(e, in->heap_idx);
}

/* Gives the top of the heap its true key, until the top is exact. */
static void settle(struct engine *e) {
  while (e->nheap > 0 && e->heap[0]->hkey < e->heap[0]->wake) {
    e->heap[0]->hkey = e->heap[0]->wake;
    heap_down(e, 0);
  }
}

/* ---- rules --------------------------------------------------------------- */

static void inst_free(struct inst *in) {
  if (!in) {
    return;
  }
  free(in->values);
  free(in->hashes);
  free(in->text);
  free(in->reason);
  free(in);
}

static void kv_free(struct kv *v, size_t n) {
  for (size_t i = 0; v && i < n; i++) {
    free(v[i].key);
    free(v[i].value);
  }
  free(v);
}

static void rule_free(struct rule *r) {
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
  kv_free(r->annotations, r->nannotations);
  kv_free(r->labels, r->nlabels);
  free(r->label_view);
  for (size_t i = 0; r->expected && i < r->nexpected * r->nby; i++) {
    free(r->expected[i]);
  }
  free(r->expected);
  free(r->canonical);
  for (size_t i = 0; i < r->ninsts; i++) {
    inst_free(r->insts[i]);
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

static int rerr(struct rule_error *re, size_t idx, const char *name,
                const char *where, int col, int rc, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static int rerr(struct rule_error *re, size_t idx, const char *name,
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
      return rerr(re, idx, name, where, 0, IOCD_EINVAL, "missing");
    }
    return IOCD_OK;
  }
  struct iocd_err err = {{0}};
  int col = 0;
  *out = expr_parse(text, &err, &col);
  if (!*out) {
    return rerr(re, idx, name, where, col, col ? IOCD_EPARSE : IOCD_ENOMEM,
                "%s", err.msg);
  }
  return IOCD_OK;
}

/* Checks a template: every {{ closes, names are words, filters known. */
static int check_template(const char *t, struct iocd_err *err) {
  size_t n = strlen(t);
  if (n > MAX_TEMPLATE) {
    return iocd_err_set(err, IOCD_EPARSE, "longer than %d bytes", MAX_TEMPLATE);
  }
  for (const char *p = strstr(t, "{{"); p; p = strstr(p, "{{")) {
    const char *end = strstr(p + 2, "}}");
    if (!end) {
      return iocd_err_set(err, IOCD_EPARSE,
                          "column %d: '{{' without a closing '}}'",
                          (int)(p - t) + 1);
    }
    const char *bar = memchr(p + 2, '|', (size_t)(end - p - 2));
    if (bar) {
      const char *f = bar + 1;
      while (*f == ' ') {
        f++;
      }
      size_t fn = (size_t)(end - f);
      while (fn > 0 && f[fn - 1] == ' ') {
        fn--;
      }
      if (!(fn == 3 && memcmp(f, "pct", 3) == 0) &&
          !(fn == 3 && memcmp(f, "int", 3) == 0)) {
        return iocd_err_set(err, IOCD_EPARSE,
                            "column %d: unknown filter '%.*s' (pct or int)",
                            (int)(f - t) + 1, (int)fn, f);
      }
    }
    p = end + 2;
  }
  return IOCD_OK;
}

static int check_def(const struct rule_def *d, size_t idx,
                     struct rule_error *re) {
  const char *name = d->name;
  if (!name_ok(name)) {
    return rerr(re, idx, name, "name", 0, IOCD_EINVAL,
                "\"%s\" is not a rule name (letters, digits, _ . : -)",
                name ? name : "");
  }
  if (strcmp(name, ENGINE_BROKER_RULE) == 0) {
    return rerr(re, idx, name, "name", 0, IOCD_EINVAL,
                "the name is reserved for iocd's own broker alert");
  }
  if (d->expr && d->nlevels) {
    return rerr(re, idx, name, "levels", 0, IOCD_EINVAL,
                "give either expr or levels, not both");
  }
  if (!d->expr && !d->nlevels) {
    return rerr(re, idx, name, "expr", 0, IOCD_EINVAL,
                "missing (or give levels)");
  }
  if (d->nlevels > ALERT_MAX_LEVELS || (d->nlevels && !d->levels)) {
    return rerr(re, idx, name, "levels", 0, IOCD_EINVAL, "at most %d levels",
                ALERT_MAX_LEVELS);
  }
  if (d->nlevels && (d->clear || d->severity)) {
    return rerr(re, idx, name, d->clear ? "clear" : "severity", 0, IOCD_EINVAL,
                "with levels, give it per level");
  }
  if (d->for_ns < 0 || d->tolerance_ns < 0 || d->keep_firing_for_ns < 0 ||
      d->freshness_ns < 0) {
    return rerr(re, idx, name,
                d->for_ns < 0         ? "for"
                : d->tolerance_ns < 0 ? "tolerance"
                : d->freshness_ns < 0 ? "freshness"
                                      : "keep_firing_for",
                0, IOCD_EINVAL, "a duration cannot be negative");
  }
  if ((unsigned)d->missing > ALERT_MISSING_OK) {
    return rerr(re, idx, name, "missing", 0, IOCD_EINVAL,
                "not one of nodata, keep, ok");
  }
  if ((unsigned)d->inhibited_by_broker > RULE_INHIBIT_NO) {
    return rerr(re, idx, name, "inhibited_by_broker", 0, IOCD_EINVAL,
                "not one of auto, yes, no");
  }
  if (d->nby > MAX_BY || (d->nby && !d->by)) {
    return rerr(re, idx, name, "by", 0, IOCD_EINVAL, "at most %d labels",
                MAX_BY);
  }
  for (size_t i = 0; i < d->nby; i++) {
    if (!d->by[i] || !*d->by[i]) {
      return rerr(re, idx, name, "by", 0, IOCD_EINVAL, "by[%zu] is empty", i);
    }
    for (size_t j = 0; j < i; j++) {
      if (strcmp(d->by[i], d->by[j]) == 0) {
        return rerr(re, idx, name, "by", 0, IOCD_EINVAL,
                    "label %s is listed twice", d->by[i]);
      }
    }
  }
  if (d->nexpected && (!d->nby || !d->expected)) {
    return rerr(re, idx, name, "expected", 0, IOCD_EINVAL,
                "expected groups need by labels");
  }
  for (size_t i = 0; i < d->nexpected * d->nby; i++) {
    if (!d->expected[i] || !*d->expected[i]) {
      char where[48];
      snprintf(where, sizeof where, "expected[%zu]", i / d->nby);
      return rerr(re, idx, name, where, 0, IOCD_EINVAL,
                  "the value of %s is empty", d->by[i % d->nby]);
    }
  }
  if (d->nannotations > MAX_ANNOTATIONS ||
      (d->nannotations && !d->annotations)) {
    return rerr(re, idx, name, "annotations", 0, IOCD_EINVAL,
                "at most %d annotations", MAX_ANNOTATIONS);
  }
  if (d->nlabels && !d->labels) {
    return rerr(re, idx, name, "labels", 0, IOCD_EINVAL, "missing");
  }
  for (size_t i = 0; i < d->nannotations; i++) {
    const struct alert_kv *a = &d->annotations[i];
    char where[48];
    snprintf(where, sizeof where, "annotations.%s", a->key ? a->key : "");
    if (!a->key || !*a->key || !a->value) {
      return rerr(re, idx, name, where, 0, IOCD_EINVAL,
                  "an annotation needs a name and a template");
    }
    struct iocd_err err = {{0}};
    if (check_template(a->value, &err)) {
      return rerr(re, idx, name, where, 0, IOCD_EPARSE, "%s", err.msg);
    }
  }
  for (size_t i = 0; i < d->nlabels; i++) {
    if (!d->labels[i].key || !*d->labels[i].key || !d->labels[i].value) {
      return rerr(re, idx, name, "labels", 0, IOCD_EINVAL,
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
      return rerr(re, idx, d->name, "severity", 0, IOCD_ENOMEM,
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
        return rerr(re, idx, d->name, where, 0, IOCD_EINVAL, "missing");
      }
      r->nlevels = i + 1;
      r->levels[i].severity = mem_strdup(lv->severity);
      if (!r->levels[i].severity) {
        return rerr(re, idx, d->name, where, 0, IOCD_ENOMEM, "out of memory");
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
    return rerr(re, 0, def->name, "name", 0, IOCD_ENOMEM, "out of memory");
  }
  rc = parse_exprs(def, 0, r, re);
  rule_free(r);
  return rc;
}

/* Runs body with x bound to every expression of rule r: each level's fire
 * and clear conditions, then the guard. */
#define FOR_EACH_EXPR(r, x, body)                     \
  do {                                                \
    for (size_t li_ = 0; li_ < (r)->nlevels; li_++) { \
      const struct expr *x = (r)->levels[li_].fire;   \
      body;                                           \
      x = (r)->levels[li_].clear;                     \
      if (x) {                                        \
        body;                                         \
      }                                               \
    }                                                 \
    if ((r)->guard) {                                 \
      const struct expr *x = (r)->guard;              \
      body;                                           \
    }                                                 \
  } while (0)

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
      const struct calendar *c = find_cal(cals, ncals, names[k]);
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

static int copy_kvs(const struct alert_kv *in, size_t n, struct kv **out) {
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
    return rerr(re, idx, d->name, "name", 0, IOCD_ENOMEM, "out of memory");
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
  r->cal = find_cal(cals, ncals, cname);
  bool needs_cal = r->working_only;
  FOR_EACH_EXPR(r, x, needs_cal |= expr_uses_working(x));
  if (needs_cal && !r->cal) {
    rc = rerr(re, idx, d->name, "calendar", 0, IOCD_EINVAL,
              "no calendar named %s", cname);
    goto fail;
  }
  if (d->calendar && !r->cal) {
    rc = rerr(re, idx, d->name, "calendar", 0, IOCD_EINVAL,
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
      if (!find_cal(cals, ncals, names[k])) {
        rc = rerr(re, idx, d->name, "calendar", 0, IOCD_EINVAL,
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
  if (copy_kvs(d->annotations, d->nannotations, &r->annotations)) {
    r->nannotations = d->nannotations;
    goto nomem;
  }
  r->nannotations = d->nannotations;
  if (copy_kvs(d->labels, d->nlabels, &r->labels)) {
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
  rc = rerr(re, idx, d->name, "name", 0, IOCD_ENOMEM, "out of memory");
fail:
  rule_free(r);
  return rc;
}

/* ---- instances ----------------------------------------------------------- */

static int table_grow(struct rule *r) {
  size_t n = r->table_size ? r->table_size * 2 : 16;
  struct inst **t = calloc(n, sizeof *t);
  if (!t) {
    return IOCD_ENOMEM;
  }
  for (size_t i = 0; i < r->ninsts; i++) {
    struct inst *in = r->insts[i];
    size_t b = (size_t)(in->hash & (n - 1));
    in->hnext = t[b];
    t[b] = in;
  }
  free(r->table);
  r->table = t;
  r->table_size = n;
  return IOCD_OK;
}

static struct inst *inst_find(const struct rule *r, const char *const *values,
                              uint64_t h) {
  if (!r->table_size) {
    return NULL;
  }
  for (struct inst *in = r->table[h & (r->table_size - 1)]; in;
       in = in->hnext) {
    if (in->hash != h) {
      continue;
    }
    size_t i = 0;
    while (i < r->nby && strcmp(in->values[i], values[i]) == 0) {
      i++;
    }
    if (i == r->nby) {
      return in;
    }
  }
  return NULL;
}

/* Gives in the table and array of r (in was made for r's by labels). */
static int inst_attach(struct rule *r, struct inst *in) {
  if (r->ninsts == r->cap_insts) {
    size_t ncap = r->cap_insts ? r->cap_insts * 2 : 8;
    struct inst **v = realloc(r->insts, ncap * sizeof *v);
    if (!v) {
      return IOCD_ENOMEM;
    }
    r->insts = v;
    r->cap_insts = ncap;
  }
  if ((r->ninsts + 1) * 2 > r->table_size && table_grow(r)) {
    return IOCD_ENOMEM;
  }
  in->rule = r;
  in->group.keys = (const char *const *)r->by;
  r->insts[r->ninsts++] = in;
  size_t b = (size_t)(in->hash & (r->table_size - 1));
  in->hnext = r->table[b];
  r->table[b] = in;
  return IOCD_OK;
}

/* The distinct (measurement, field) pairs r reads, counted up to 4. */
static uint32_t rule_families(struct rule *r) {
  if (r->nfams) {
    return r->nfams;
  }
  const char *m[4], *f[4];
  uint32_t n = 0;
  FOR_EACH_EXPR(r, x, {
    size_t nr;
    const struct expr_read *rd = expr_reads(x, &nr);
    for (size_t k = 0; k < nr && n < 4; k++) {
      uint32_t j = 0;
      while (j < n && !(strcmp(m[j], rd[k].measurement) == 0 &&
                        (f[j] && rd[k].field ? strcmp(f[j], rd[k].field) == 0
                                             : f[j] == rd[k].field))) {
        j++;
      }
      if (j == n) {
        m[n] = rd[k].measurement;
        f[n] = rd[k].field;
        n++;
      }
    }
  });
  r->nfams = n ? n : 1;
  return r->nfams;
}

struct inst *engine__instance(struct engine *e, struct rule *r,
                              const char *const *values) {
  uint64_t h = values_hash(values, r->nby);
  struct inst *in = inst_find(r, values, h);
  if (in) {
    return in;
  }
  if (e->ninsts >= e->max_insts) {
    e->st.instances_refused++;
    return NULL;
  }
  /* The group's cache of where its series are (series.h), one way per
   * family the rule reads, in the same block. */
  uint32_t ways = r->nby ? rule_families(r) : 0;
  in = calloc(1, sizeof *in + (ways ? SERIES_GROUP_CACHE_SIZE(ways) : 0));
  if (!in) {
    return NULL;
  }
  if (ways) {
    in->group.cache = (struct series_group_cache *)(void *)(in + 1);
    in->group.cache->nways = ways;
  }
  size_t total = 0;
  for (size_t i = 0; i < r->nby; i++) {
    total += strlen(values[i]) + 1;
  }
  in->values = calloc(r->nby ? r->nby : 1, sizeof *in->values);
  in->hashes = calloc(r->nby ? r->nby : 1, sizeof *in->hashes);
  in->text = malloc(total ? total : 1);
  if (!in->values || !in->hashes || !in->text) {
    inst_free(in);
    return NULL;
  }
  char *p = in->text;
  for (size_t i = 0; i < r->nby; i++) {
    size_t n = strlen(values[i]) + 1;
    memcpy(p, values[i], n);
    in->values[i] = p;
    in->hashes[i] = series_group_hash(r->by[i], p);
    p += n;
  }
  in->hash = h;
  in->seq = e->seq++;
  in->heap_idx = SIZE_MAX;
  in->wake = INT64_MAX;
  in->hkey = INT64_MAX;
  in->group.values = in->values;
  in->group.hashes = in->hashes;
  in->group.n = r->nby;
  alert_init(&in->a);
  if (inst_attach(r, in)) {
    inst_free(in);
    return NULL;
  }
  e->ninsts++;
  return in;
}

int engine__set_reason(struct inst *in, const char *reason) {
  char *d = mem_strdup(reason ? reason : "");
  if (!d) {
    return IOCD_ENOMEM;
  }
  free(in->reason);
  in->reason = d;
  return IOCD_OK;
}

struct rule *engine__rule(const struct engine *e, const char *name) {
  for (size_t i = 0; i < e->nrules; i++) {
    if (strcmp(e->rules[i]->name, name) == 0) {
      return e->rules[i];
    }
  }
  return NULL;
}

size_t engine__nrules(const struct engine *e) {
  return e->nrules;
}

struct rule *engine__rule_at(const struct engine *e, size_t i) {
  return i < e->nrules ? e->rules[i] : NULL;
}

/* ---- the read index ------------------------------------------------------ */

static uint64_t reader_hash(const char *meas, const char *field) {
  uint64_t h = hash_str(HASH_START, meas);
  return field ? hash_str(h, field) : hash_byte(h, 0xff);
}

static bool same(const char *a, const char *b) {
  return a == b || (a && b && strcmp(a, b) == 0);
}

static struct reader *reader_find(const struct engine *e, const char *meas,
                                  const char *field) {
  if (!e->index_size) {
    return NULL;
  }
  uint64_t h = reader_hash(meas, field);
  for (struct reader *x = e->index[h & (e->index_size - 1)]; x; x = x->next) {
    if (strcmp(x->meas, meas) == 0 && same(x->field, field)) {
      return x;
    }
  }
  return NULL;
}

static void index_free(struct engine *e) {
  for (size_t i = 0; i < e->index_size; i++) {
    struct reader *x = e->index[i];
    while (x) {
      struct reader *next = x->next;
      free(x->meas);
      free(x->field);
      free(x->rules);
      free(x);
      x = next;
    }
  }
  free(e->index);
  e->index = NULL;
  e->index_size = 0;
}

static int index_add(struct engine *e, const char *meas, const char *field,
                     struct rule *r) {
  struct reader *x = reader_find(e, meas, field);
  if (!x) {
    x = calloc(1, sizeof *x);
    if (!x) {
      return IOCD_ENOMEM;
    }
    x->meas = mem_strdup(meas);
    x->field = field ? mem_strdup(field) : NULL;
    if (!x->meas || (field && !x->field)) {
      free(x->meas);
      free(x->field);
      free(x);
      return IOCD_ENOMEM;
    }
    size_t b = (size_t)(reader_hash(meas, field) & (e->index_size - 1));
    x->next = e->index[b];
    e->index[b] = x;
  }
  for (size_t i = 0; i < x->n; i++) {
    if (x->rules[i] == r) {
      return IOCD_OK;
    }
  }
  if (x->n == x->cap) {
    size_t ncap = x->cap ? x->cap * 2 : 4;
    struct rule **v = realloc(x->rules, ncap * sizeof *v);
    if (!v) {
      return IOCD_ENOMEM;
    }
    x->rules = v;
    x->cap = ncap;
  }
  x->rules[x->n++] = r;
  return IOCD_OK;
}

/* Rebuilds the index of reads and registers every read with the store, for
 * as long back as the rules read it. */
static int index_build(struct engine *e) {
  index_free(e);
  e->index_size = 256;
  e->index = calloc(e->index_size, sizeof *e->index);
  if (!e->index) {
    e->index_size = 0;
    return IOCD_ENOMEM;
  }
  int rc = IOCD_OK;
  for (size_t i = 0; i < e->nrules && !rc; i++) {
    struct rule *r = e->rules[i];
    FOR_EACH_EXPR(r, x, {
      size_t nr;
      const struct expr_read *rd = expr_reads(x, &nr);
      for (size_t k = 0; k < nr && !rc; k++) {
        rc = index_add(e, rd[k].measurement, rd[k].field, r);
        if (!rc) {
          rc = series_store_want_aggs(e->store, rd[k].measurement, rd[k].field,
                                      rd[k].range_ns, rd[k].aggs);
        }
        if (!rc && rd[k].working_ns && r->cal) {
          rc = series_store_want(e->store, rd[k].measurement, rd[k].field,
                                 calendar_span_bound(r->cal, rd[k].working_ns));
        }
      }
    });
  }
  e->reads_heartbeat =
      reader_find(e, ENGINE_HEARTBEAT_MEASUREMENT, ENGINE_HEARTBEAT_FIELD) ||
      reader_find(e, ENGINE_HEARTBEAT_MEASUREMENT, NULL);
  return rc;
}

/* ---- evaluation ---------------------------------------------------------- */

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
  return find_cal((const struct calendar *const *)e->cals, e->ncals, name);
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

/* The trigger of an evaluation, for the reason of a transition. */
struct trigger {
  enum alert_trigger by;
  const struct touch *touch; /* BY_SAMPLE */
};

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
  const struct calendar *fc = in->rule->cal ? in->rule->cal : default_cal(e);
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
    fmt_time(fc, t->ts, when);
    if (!rc) {
      rc = buf_printf(b, " %s %s", engine__word(e->opts.lang, ENGINE__W_AT),
                      when);
    }
  } else {
    fmt_time(fc, now, when);
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

static const char *severity_of(const struct rule *r, int level) {
  if (r->nlevels == 0) {
    return "critical";
  }
  if (level < 1 || (size_t)level > r->nlevels) {
    level = 1;
  }
  return r->levels[level - 1].severity;
}

/* ---- templates ----------------------------------------------------------- */

static const char *label_value(const struct alert_event *ev, const char *k,
                               size_t kn) {
  for (size_t i = 0; ev->group && i < ev->group->n; i++) {
    if (strlen(ev->group->keys[i]) == kn &&
        memcmp(ev->group->keys[i], k, kn) == 0) {
      return ev->group->values[i];
    }
  }
  for (size_t i = 0; i < ev->nlabels; i++) {
    if (strlen(ev->labels[i].key) == kn &&
        memcmp(ev->labels[i].key, k, kn) == 0) {
      return ev->labels[i].value;
    }
  }
  return NULL;
}

static bool word_is(const char *k, size_t kn, const char *w) {
  return strlen(w) == kn && memcmp(k, w, kn) == 0;
}

int engine_render(const char *tmpl, const struct alert_event *ev,
                  enum engine_lang lang, struct buf *out,
                  struct iocd_err *err) {
  enum numfmt_lang nl = lang == ENGINE_LANG_EN ? NUMFMT_EN : NUMFMT_VI;
  int rc = check_template(tmpl, err);
  if (rc) {
    return rc;
  }
  const char *p = tmpl;
  for (;;) {
    const char *open = strstr(p, "{{");
    if (!open) {
      return buf_puts(out, p);
    }
    rc = buf_append(out, p, (size_t)(open - p));
    if (rc) {
      return rc;
    }
    const char *close = strstr(open + 2, "}}");
    const char *k = open + 2;
    const char *kend = close;
    const char *bar = memchr(k, '|', (size_t)(close - k));
    bool pct = false, whole = false;
    if (bar) {
      kend = bar;
      const char *f = bar + 1;
      while (*f == ' ') {
        f++;
      }
      pct = *f == 'p';
      whole = *f == 'i';
    }
    while (k < kend && *k == ' ') {
      k++;
    }
    while (kend > k && kend[-1] == ' ') {
      kend--;
    }
    size_t kn = (size_t)(kend - k);
    if (kn > 8 && memcmp(k, "$labels.", 8) == 0) {
      k += 8;
      kn -= 8;
    }
    bool num = false, have = false;
    double v = 0;
    if (word_is(k, kn, "value")) {
      num = true;
      have = ev->has_value;
      v = ev->value;
    } else if (word_is(k, kn, "threshold")) {
      num = true;
      have = ev->has_threshold;
      v = ev->threshold;
    }
    if (num) {
      if (!have) {
        rc = buf_puts(out, "-");
      } else if (pct) {
        rc = numfmt_pct(v, nl, out);
      } else if (whole) {
        rc = numfmt_number(round(v), nl, out);
      } else {
        rc = numfmt_number(v, nl, out);
      }
    } else {
      const char *s = NULL;
      if (word_is(k, kn, "rule")) {
        s = ev->rule;
      } else if (word_is(k, kn, "severity")) {
        s = ev->severity;
      } else if (word_is(k, kn, "state")) {
        s = alert_state_name(ev->state);
      } else {
        s = label_value(ev, k, kn);
      }
      rc = s ? buf_puts(out, s) : IOCD_OK;
    }
    if (rc) {
      return rc;
    }
    p = close + 2;
  }
}

/* ---- events -------------------------------------------------------------- */

static void fill_event(const struct engine *e, const struct inst *in,
                       struct alert_event *ev) {
  (void)e;
  const struct rule *r = in->rule;
  *ev = (struct alert_event){
      .rule = r->name,
      .group = &in->group,
      .labels = r->label_view,
      .nlabels = r->nlabels,
      .prev = in->a.state,
      .state = in->a.state,
      .severity = severity_of(r, in->a.level),
      .t_ns = in->a.since_ns,
      .active_since_ns = in->a.pending_since_ns,
      .firing_since_ns = in->a.firing_since_ns,
      .has_value = in->has_value,
      .value = in->value,
      .has_threshold = in->has_threshold,
      .threshold = in->threshold,
      .by = in->by,
      .reason = in->reason ? in->reason : "",
  };
}

/* Renders the annotations of ev into texts (one buffer, NUL-separated) and
 * delivers it. */
static void deliver(struct engine *e, const struct inst *in,
                    struct alert_event *ev) {
  const struct rule *r = in->rule;
  struct alert_kv views[MAX_ANNOTATIONS];
  size_t nv = r->nannotations;
  struct buf b;
  buf_init(&b, EVENT_TEXT_MAX);
  size_t offs[MAX_ANNOTATIONS];
  for (size_t i = 0; i < nv; i++) {
    offs[i] = b.len;
    if (engine_render(r->annotations[i].value, ev, e->opts.lang, &b, NULL) ||
        buf_putc(&b, '\0')) {
      nv = i;
      break;
    }
  }
  for (size_t i = 0; i < nv; i++) {
    views[i] = (struct alert_kv){.key = r->annotations[i].key,
                                 .value = b.data + offs[i]};
  }
  ev->annotations = views;
  ev->nannotations = nv;
  e->st.events++;
  if (e->opts.on_event) {
    e->opts.on_event(e->opts.event_ud, ev);
  }
  buf_cleanup(&b);
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
static void evaluate(struct engine *e, struct inst *in, int64_t now,
                     const struct trigger *trg) {
  struct rule *r = in->rule;
  if (r->builtin) {
    return;
  }
  if (r->inhibited && e->broker_down) {
    schedule(e, in, INT64_MAX);
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
    fill_event(e, in, &ev);
    ev.prev = tr.prev;
    ev.state = tr.state;
    ev.t_ns = now;
    ev.severity_changed = tr.severity_changed;
    int lv = tr.level ? tr.level : tr.prev_level;
    ev.severity = severity_of(r, lv);
    ev.prev_severity =
        tr.severity_changed ? severity_of(r, tr.prev_level) : NULL;
    if (tr.state == ALERT_RESOLVED) {
      ev.active_since_ns = 0;
      ev.firing_since_ns = 0;
    }
    deliver(e, in, &ev);
  }
  wake = min64(wake, alert_deadline(&in->a, &p));
  if (wake <= now) {
    wake = now + 1;
  }
  schedule(e, in, wake);
}

/* ---- arrival ------------------------------------------------------------- */

/* The instance of r for the group of series s (NULL when s lacks one of
 * r's by labels), through what the engine keeps with s's labels. */
static struct inst *instance_of(struct engine *e, struct rule *r,
                                const struct series *s) {
  void **slot = series_user(s);
  struct known *k = *slot;
  if (k && k->gen == e->known_gen) {
    for (uint32_t i = 0; i < k->n; i++) {
      if (k->v[i].r == r) {
        return k->v[i].in;
      }
    }
  }
  const char *vals[MAX_BY];
  if (!series_group_values(s, (const char *const *)r->by, r->nby, vals)) {
    return NULL;
  }
  struct inst *in = engine__instance(e, r, vals);
  if (!in) {
    return NULL;
  }
  if (k && k->gen != e->known_gen) {
    k->gen = e->known_gen;
    k->n = 0;
    k->next = 0;
  }
  if (!k || (k->n == k->cap && k->cap < KNOWN_MAX)) {
    uint32_t cap = k ? k->cap * 2 : KNOWN_MIN;
    struct known *g = realloc(k, known_size(cap));
    if (!g) {
      return in;
    }
    if (!k) {
      g->gen = e->known_gen;
      g->bytes = &e->known_bytes;
      g->n = g->next = 0;
    } else {
      e->known_bytes -= known_size(g->cap);
    }
    g->cap = cap;
    e->known_bytes += known_size(cap);
    k = g;
    *slot = k;
  }
  uint32_t i = k->n < k->cap ? k->n++ : k->next++ % k->cap;
  k->v[i].r = r;
  k->v[i].in = in;
  return in;
}

static void on_change(void *ud, const struct series_change *c) {
  struct engine *e = ud;
  struct reader *x = reader_find(e, c->measurement, c->field);
  if (!x) {
    return;
  }
  for (size_t i = 0; i < x->n; i++) {
    struct rule *r = x->rules[i];
    /* The samples of one point share its tags, so a rule they touch twice
     * is the same instance: found once. (engine_add_sample adds one.) */
    if (r->mark == e->mark) {
      continue;
    }
    r->mark = e->mark;
    struct inst *in = instance_of(e, r, c->series);
    if (!in || in->mark == e->mark) {
      continue;
    }
    if (e->ntouched == e->cap_touched) {
      size_t ncap = e->cap_touched ? e->cap_touched * 2 : 16;
      struct touch *v = realloc(e->touched, ncap * sizeof *v);
      if (!v) {
        continue;
      }
      e->touched = v;
      e->cap_touched = ncap;
    }
    in->mark = e->mark;
    e->touched[e->ntouched++] = (struct touch){.inst = in,
                                               .series = c->series,
                                               .measurement = c->measurement,
                                               .field = c->field,
                                               .ts = c->ts_ns};
  }
}

static void run_touched(struct engine *e, int64_t now) {
  for (size_t i = 0; i < e->ntouched; i++) {
    struct trigger trg = {.by = ALERT_BY_SAMPLE, .touch = &e->touched[i]};
    evaluate(e, e->touched[i].inst, now, &trg);
  }
  e->ntouched = 0;
}

static int heartbeat(struct engine *e, const struct series_label *labels,
                     size_t n, int64_t now) {
  return series_store_add(e->store, ENGINE_HEARTBEAT_MEASUREMENT,
                          ENGINE_HEARTBEAT_FIELD, labels, n, now, 1.0,
                          on_change, e);
}

int engine_add_point(struct engine *e, const struct point_batch *pb,
                     const struct point *p, int64_t now) {
  if (!e || !pb || !p || !p->has_ts) {
    return IOCD_EINVAL;
  }
  e->mark++;
  e->ntouched = 0;
  /* The heartbeat of the point's source, stamped with its arrival. */
  struct series_seen seen = {.measurement = ENGINE_HEARTBEAT_MEASUREMENT,
                             .field = ENGINE_HEARTBEAT_FIELD,
                             .ts_ns = now};
  int rc = series_store_add_point_seen(
      e->store, pb, p, e->reads_heartbeat ? &seen : NULL, on_change, e);
  run_touched(e, now);
  return rc;
}

int engine_add_sample(struct engine *e, const char *measurement,
                      const char *field, const struct series_label *labels,
                      size_t nlabels, int64_t ts_ns, double v, int64_t now) {
  if (!e || !measurement || !field) {
    return IOCD_EINVAL;
  }
  e->mark++;
  e->ntouched = 0;
  int rc = series_store_add(e->store, measurement, field, labels, nlabels,
                            ts_ns, v, on_change, e);
  if ((!rc || rc == IOCD_ELIMIT) && e->reads_heartbeat) {
    int hrc = heartbeat(e, labels, nlabels, now);
    if (hrc && !rc) {
      rc = hrc;
    }
  }
  run_touched(e, now);
  return rc;
}

/* ---- time ---------------------------------------------------------------- */

size_t engine_tick(struct engine *e, int64_t now) {
  size_t n = 0;
  struct trigger trg = {.by = ALERT_BY_TICK};
  for (settle(e); e->nheap > 0 && e->heap[0]->wake <= now; settle(e)) {
    struct inst *in = e->heap[0];
    heap_remove(e, in);
    in->wake = INT64_MAX;
    evaluate(e, in, now, &trg);
    n++;
  }
  return n;
}

size_t engine_eval_all(struct engine *e, int64_t now) {
  size_t n = 0;
  struct trigger trg = {.by = ALERT_BY_TICK};
  for (size_t i = 0; i < e->nrules; i++) {
    struct rule *r = e->rules[i];
    for (size_t k = 0; k < r->ninsts; k++) {
      evaluate(e, r->insts[k], now, &trg);
      n++;
    }
  }
  return n;
}

int64_t engine_next_wake(struct engine *e) {
  settle(e);
  return e->nheap ? e->heap[0]->wake : INT64_MAX;
}

void engine_set_broker_up(struct engine *e, bool up, int64_t now) {
  if (up == !e->broker_down) {
    return;
  }
  e->broker_down = !up;
  struct inst *bi = e->broker->ninsts ? e->broker->insts[0] : NULL;
  if (up) {
    e->listen_since = now;
    for (size_t i = 0; i < e->nrules; i++) {
      struct rule *r = e->rules[i];
      for (size_t k = 0; r->inhibited && k < r->ninsts; k++) {
        schedule(e, r->insts[k], now);
      }
    }
  } else {
    for (size_t i = 0; i < e->nrules; i++) {
      struct rule *r = e->rules[i];
      for (size_t k = 0; r->inhibited && k < r->ninsts; k++) {
        schedule(e, r->insts[k], INT64_MAX);
      }
    }
  }
  if (!bi) {
    return;
  }
  char when[40];
  fmt_time(default_cal(e), now, when);
  char reason[256];
  snprintf(reason, sizeof reason, "%s %s %s: %s",
           engine__word(e->opts.lang, ENGINE__W_BROKER),
           engine__word(e->opts.lang, ENGINE__W_AT), when,
           engine__word(e->opts.lang,
                        up ? ENGINE__W_BROKER_UP : ENGINE__W_BROKER_DOWN));
  enum alert_state prev = bi->a.state;
  alert_init(&bi->a);
  if (!up) {
    bi->a.state = ALERT_FIRING;
    bi->a.level = 1;
    bi->a.since_ns = now;
    bi->a.pending_since_ns = now;
    bi->a.firing_since_ns = now;
  }
  bi->a.last_eval_ns = now;
  engine__set_reason(bi, reason);
  bi->reason_ns = now;
  bi->by = ALERT_BY_BROKER;
  struct alert_event ev;
  fill_event(e, bi, &ev);
  ev.prev = prev;
  ev.state = up ? ALERT_RESOLVED : ALERT_FIRING;
  ev.severity = "critical";
  ev.t_ns = now;
  if (up) {
    ev.active_since_ns = 0;
    ev.firing_since_ns = 0;
  }
  deliver(e, bi, &ev);
}

void engine__schedule_restored(struct engine *e, struct inst *in) {
  struct alert_params p = in->rule->params;
  int64_t d = alert_deadline(&in->a, &p);
  int64_t at = e->listen_since;
  schedule(e, in, d < at ? d : at);
}

/* ---- creation and reload ------------------------------------------------- */

static void cals_free(struct calendar **c, size_t n) {
  for (size_t i = 0; c && i < n; i++) {
    calendar_free(c[i]);
  }
  free(c);
}

static int cals_build(const struct calendar_def *defs, size_t n,
                      struct calendar ***out, size_t *nout,
                      struct rule_error *re) {
  static const struct calendar_def def0 = {0};
  if (n == 0) {
    defs = &def0;
    n = 1;
  }
  struct calendar **v = calloc(n, sizeof *v);
  if (!v) {
    return rerr(re, 0, "calendars", "calendars", 0, IOCD_ENOMEM,
                "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    struct iocd_err err = {{0}};
    v[i] = calendar_new(&defs[i], &err);
    if (!v[i]) {
      cals_free(v, i);
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
        cals_free(v, i + 1);
        return IOCD_EINVAL;
      }
    }
  }
  *out = v;
  *nout = n;
  return IOCD_OK;
}

static void rules_free(struct rule **v, size_t n) {
  for (size_t i = 0; v && i < n; i++) {
    rule_free(v[i]);
  }
  free(v);
}

/* Builds every rule of defs against cals into a new array. */
static int rules_build(const struct rule_def *defs, size_t n,
                       const struct calendar *const *cals, size_t ncals,
                       struct rule ***out, struct rule_error *re) {
  struct rule **v = calloc(n ? n : 1, sizeof *v);
  if (!v) {
    return rerr(re, 0, "rules", "rules", 0, IOCD_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    int rc = rule_build(&defs[i], i, cals, ncals, &v[i], re);
    if (rc) {
      rules_free(v, i);
      return rc;
    }
    for (size_t k = 0; k < i; k++) {
      if (strcmp(v[k]->name, v[i]->name) == 0) {
        rc = rerr(re, i, v[i]->name, "name", 0, IOCD_EINVAL,
                  "a second rule with this name (the first is rules[%zu])", k);
        rules_free(v, i + 1);
        return rc;
      }
    }
  }
  *out = v;
  return IOCD_OK;
}

/* Creates the instances of r's expected groups that do not exist yet, due
 * for a first evaluation at once. */
static int make_expected(struct engine *e, struct rule *r) {
  for (size_t i = 0; i < r->nexpected; i++) {
    const char *const *vals = (const char *const *)&r->expected[i * r->nby];
    uint64_t h = values_hash(vals, r->nby);
    if (inst_find(r, vals, h)) {
      continue;
    }
    struct inst *in = engine__instance(e, r, vals);
    if (!in) {
      return IOCD_ENOMEM;
    }
    schedule(e, in, e->listen_since);
  }
  return IOCD_OK;
}

static int make_broker(struct engine *e) {
  struct rule *r = calloc(1, sizeof *r);
  if (!r) {
    return IOCD_ENOMEM;
  }
  r->builtin = true;
  r->name = mem_strdup(ENGINE_BROKER_RULE);
  r->canonical = mem_strdup(ENGINE_BROKER_RULE);
  const struct alert_kv ann = {
      .key = "summary",
      .value = engine__word(e->opts.lang, ENGINE__W_BROKER_SUMMARY),
  };
  if (!r->name || !r->canonical || copy_kvs(&ann, 1, &r->annotations)) {
    r->nannotations = r->annotations ? 1 : 0;
    rule_free(r);
    return IOCD_ENOMEM;
  }
  r->nannotations = 1;
  e->broker = r;
  const char *none[1] = {NULL};
  if (!engine__instance(e, r, none)) {
    return IOCD_ENOMEM;
  }
  return IOCD_OK;
}

int engine_set_lang(struct engine *e, enum engine_lang lang) {
  if (e->opts.lang == lang) {
    return IOCD_OK;
  }
  const struct alert_kv ann = {
      .key = "summary",
      .value = engine__word(lang, ENGINE__W_BROKER_SUMMARY),
  };
  struct kv *v = NULL;
  if (copy_kvs(&ann, 1, &v)) {
    kv_free(v, v ? 1 : 0);
    return IOCD_ENOMEM;
  }
  kv_free(e->broker->annotations, e->broker->nannotations);
  e->broker->annotations = v;
  e->broker->nannotations = 1;
  e->opts.lang = lang;
  return IOCD_OK;
}

int engine_new(const struct engine_opts *opts, const struct rule_def *rules,
               size_t n, struct engine **out, struct rule_error *re) {
  *out = NULL;
  if (n && !rules) {
    return IOCD_EINVAL;
  }
  struct engine *e = calloc(1, sizeof *e);
  if (!e) {
    return rerr(re, 0, "engine", "engine", 0, IOCD_ENOMEM, "out of memory");
  }
  if (opts) {
    e->opts = *opts;
  }
  e->opts.calendars = NULL;
  e->opts.ncalendars = 0;
  e->max_insts =
      e->opts.max_instances ? e->opts.max_instances : DEFAULT_MAX_INSTANCES;
  e->listen_since = e->opts.start_ns > 0 ? e->opts.start_ns : 0;
  int rc = cals_build(opts ? opts->calendars : NULL,
                      opts ? opts->ncalendars : 0, &e->cals, &e->ncals, re);
  if (rc) {
    goto fail;
  }
  rc = rules_build(rules, n, (const struct calendar *const *)e->cals, e->ncals,
                   &e->rules, re);
  if (rc) {
    goto fail;
  }
  e->nrules = n;
  struct series_store_opts so = e->opts.store;
  so.user_free = known_free;
  e->store = series_store_new(&so);
  if (!e->store) {
    rc = rerr(re, 0, "engine", "engine", 0, IOCD_ENOMEM, "out of memory");
    goto fail;
  }
  rc = make_broker(e);
  if (!rc) {
    rc = index_build(e);
  }
  for (size_t i = 0; i < e->nrules && !rc; i++) {
    rc = make_expected(e, e->rules[i]);
  }
  if (rc) {
    rc = rerr(re, 0, "engine", "engine", 0, rc, "%s", iocd_strerror(rc));
    goto fail;
  }
  *out = e;
  return IOCD_OK;
fail:
  engine_free(e);
  return rc;
}

void engine_free(struct engine *e) {
  if (!e) {
    return;
  }
  rules_free(e->rules, e->nrules);
  rule_free(e->broker);
  cals_free(e->cals, e->ncals);
  index_free(e);
  series_store_free(e->store);
  free(e->heap);
  free(e->touched);
  free(e);
}

/* Ends the instances of a rule that goes away: firing ones resolve. */
static void retire(struct engine *e, struct rule *r, int64_t now) {
  for (size_t k = 0; k < r->ninsts; k++) {
    struct inst *in = r->insts[k];
    heap_remove(e, in);
    e->ninsts--;
    if (in->a.state != ALERT_FIRING) {
      continue;
    }
    char when[40];
    fmt_time(r->cal ? r->cal : default_cal(e), now, when);
    char reason[256];
    snprintf(reason, sizeof reason, "%s %s %s: %s",
             engine__word(e->opts.lang, ENGINE__W_RELOAD),
             engine__word(e->opts.lang, ENGINE__W_AT), when,
             engine__word(e->opts.lang, ENGINE__W_RULE_GONE));
    engine__set_reason(in, reason);
    in->by = ALERT_BY_RELOAD;
    struct alert_event ev;
    fill_event(e, in, &ev);
    ev.prev = ALERT_FIRING;
    ev.state = ALERT_RESOLVED;
    ev.t_ns = now;
    ev.active_since_ns = 0;
    ev.firing_since_ns = 0;
    deliver(e, in, &ev);
  }
}

int engine_reconfigure(struct engine *e, const struct calendar_def *cals,
                       size_t ncals, const struct rule_def *rules, size_t n,
                       int64_t now, struct rule_error *re) {
  if (!e || (n && !rules)) {
    return IOCD_EINVAL;
  }
  struct calendar **nc = NULL;
  size_t nnc = 0;
  int rc = IOCD_OK;
  if (cals) {
    rc = cals_build(cals, ncals, &nc, &nnc, re);
    if (rc) {
      return rc;
    }
  }
  const struct calendar *const *use =
      (const struct calendar *const *)(nc ? nc : e->cals);
  size_t nuse = nc ? nnc : e->ncals;
  struct rule **nr = NULL;
  rc = rules_build(rules, n, use, nuse, &nr, re);
  if (rc) {
    cals_free(nc, nnc);
    return rc;
  }
  /* Nothing can fail past this point but memory for tables, which only
   * loses instances of the kept rules. Rules and instances are freed
   * below: what series_user slots remember of them is void. */
  e->known_gen++;
  for (size_t i = 0; i < e->nrules; i++) {
    struct rule *old = e->rules[i];
    struct rule *keep = NULL;
    for (size_t k = 0; k < n; k++) {
      if (strcmp(nr[k]->name, old->name) == 0 &&
          strcmp(nr[k]->hash, old->hash) == 0) {
        keep = nr[k];
      }
    }
    if (!keep) {
      retire(e, old, now);
      continue;
    }
    for (size_t k = 0; k < old->ninsts; k++) {
      struct inst *in = old->insts[k];
      if (inst_attach(keep, in)) {
        heap_remove(e, in);
        e->ninsts--;
        inst_free(in);
      }
    }
    old->ninsts = 0;
  }
  /* The heap orders by rule index, which changed: rebuild its order. */
  rules_free(e->rules, e->nrules);
  e->rules = nr;
  e->nrules = n;
  if (nc) {
    cals_free(e->cals, e->ncals);
    e->cals = nc;
    e->ncals = nnc;
  }
  for (size_t i = e->nheap / 2 + 1; i-- > 0;) {
    if (i < e->nheap) {
      heap_down(e, i);
    }
  }
  rc = index_build(e);
  for (size_t i = 0; i < e->nrules && !rc; i++) {
    rc = make_expected(e, e->rules[i]);
  }
  if (rc) {
    return rerr(re, 0, "engine", "engine", 0, rc, "%s", iocd_strerror(rc));
  }
  /* Kept instances are looked at again now: annotations may differ. */
  for (size_t i = 0; i < e->nrules; i++) {
    struct rule *r = e->rules[i];
    for (size_t k = 0; k < r->ninsts; k++) {
      struct inst *in = r->insts[k];
      if (in->heap_idx == SIZE_MAX) {
        schedule(e, in, now);
      }
    }
  }
  return IOCD_OK;
}

/* ---- inspection ---------------------------------------------------------- */

void engine_list(const struct engine *e, engine_list_fn *fn, void *ud) {
  for (size_t i = 0; i <= e->nrules; i++) {
    struct rule *r = i < e->nrules ? e->rules[i] : e->broker;
    for (size_t k = 0; k < r->ninsts; k++) {
      struct inst *in = r->insts[k];
      if (in->a.state == ALERT_INACTIVE) {
        continue;
      }
      struct alert_event ev;
      fill_event(e, in, &ev);
      if (r->builtin) {
        ev.severity = "critical";
      }
      struct alert_kv views[MAX_ANNOTATIONS];
      size_t nv = r->nannotations;
      struct buf b;
      buf_init(&b, EVENT_TEXT_MAX);
      size_t offs[MAX_ANNOTATIONS];
      for (size_t a = 0; a < nv; a++) {
        offs[a] = b.len;
        if (engine_render(r->annotations[a].value, &ev, e->opts.lang, &b,
                          NULL) ||
            buf_putc(&b, '\0')) {
          nv = a;
          break;
        }
      }
      for (size_t a = 0; a < nv; a++) {
        views[a] = (struct alert_kv){.key = r->annotations[a].key,
                                     .value = b.data + offs[a]};
      }
      ev.annotations = views;
      ev.nannotations = nv;
      fn(ud, &ev);
      buf_cleanup(&b);
    }
  }
}

void engine_list_groups(const struct engine *e, const char *rule,
                        engine_group_fn *fn, void *ud) {
  const struct rule *r = engine__rule(e, rule);
  for (size_t k = 0; r && k < r->ninsts; k++) {
    const struct inst *in = r->insts[k];
    struct alert_event ev;
    fill_event(e, in, &ev);
    fn(ud, &ev, in->a.last_eval_ns);
  }
}

void engine_get_stats(const struct engine *e, struct engine_stats *out) {
  *out = e->st;
  out->rules = e->nrules;
  out->instances = 0;
  out->pending = out->firing = out->nodata = out->insufficient = 0;
  out->held = 0;
  out->bytes = sizeof *e + e->cap_heap * sizeof *e->heap + e->known_bytes;
  for (size_t i = 0; i <= e->nrules; i++) {
    const struct rule *r = i < e->nrules ? e->rules[i] : e->broker;
    out->bytes += sizeof *r + r->cap_insts * sizeof *r->insts +
                  r->table_size * sizeof *r->table;
    if (r->canonical) {
      out->bytes += strlen(r->canonical) + 1;
    }
    for (size_t k = 0; k < r->ninsts; k++) {
      const struct inst *in = r->insts[k];
      out->instances++;
      out->bytes += sizeof *in + (r->nby ? r->nby : 1) *
                                     (sizeof *in->values + sizeof *in->hashes);
      if (in->group.cache) {
        out->bytes += SERIES_GROUP_CACHE_SIZE(in->group.cache->nways);
      }
      for (size_t v = 0; v < r->nby; v++) {
        out->bytes += strlen(in->values[v]) + 1;
      }
      if (in->reason) {
        out->bytes += strlen(in->reason) + 1;
      }
      if (r->inhibited && e->broker_down) {
        out->held++;
      }
      switch (in->a.state) {
        case ALERT_PENDING:
          out->pending++;
          break;
        case ALERT_FIRING:
          out->firing++;
          break;
        case ALERT_NODATA:
          out->nodata++;
          break;
        case ALERT_INSUFFICIENT:
          out->insufficient++;
          break;
        default:
          break;
      }
    }
  }
}

const struct series_store *engine_store(const struct engine *e) {
  return e->store;
}

const char *engine_rule_hash(const struct engine *e, const char *name) {
  const struct rule *r = engine__rule(e, name);
  return r ? r->hash : NULL;
}
