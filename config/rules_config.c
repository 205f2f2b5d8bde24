/*
 * The rules sections of the configuration: the working calendar, the
 * sources that silent-feed rules expect, per-group parameters, the rules and
 * the rule files they may live in. The loader (config.c) hands over the
 * parsed main file; this file walks those sections with tables of keys like
 * the loader's own, loads each rule file, merges their parameters and rules,
 * and then checks what needs everything loaded: duplicate names (naming both
 * places), expressions (parsed here, so an error points INTO the expression
 * string at FILE:LINE:COL), unknown $parameters and calendar names.
 *
 * Every document stays loaded until the end, so a late check can still
 * point at the text of any file.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "config/config_int.h"
#include "core/utf8.h"
#include "rules/engine.h"
#include "rules/expr.h"

#define MAX_RULE_FILES 64
#define MAX_RULES 10000
#define MAX_PARAMS 1000
#define MAX_LIST 100000
#define QUOTE_MAX 48
#define RULE_FILE_MAX (16u << 20)
#define NAME_MAX_LEN 128

#define MS_S INT64_C(1000)
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)

/* The calendars an expression's during() may name: the "calendar"
 * section is the one calendar, called "office_hours" as the engine's
 * default is. */
static const char *const calendar_periods[] = {"office_hours", NULL};

/* One JSONC document: the main file (borrowed from the loader) or a rule
 * file (owned). */
struct rdoc {
  char *name;
  const char *text; /* comment-blanked */
  size_t len;
  const struct config_lines *lines;
  const struct config_posmap *pm;
  const cJSON *root;
  size_t order; /* where its problems sort among the main file's */
  /* Storage of a rule file: the text as read (for line:col) and the
   * comment-blanked copy cJSON parsed. */
  char *own_orig;
  char *own_text;
  struct config_lines own_lines;
  struct config_posmap own_pm;
  cJSON *own_json;
};

/* A JSON value and the index of its position node in its document. */
struct rv {
  const cJSON *j;
  size_t pi;
};

/* Where a rule came from, for the checks after the merge. */
struct rule_src {
  size_t doc;
  size_t index; /* in its file's "rules" */
  struct rv v;
};

struct param_src {
  size_t doc;
  struct rv v; /* the member: key and value */
};

struct rctx {
  struct rdoc *docs[MAX_RULE_FILES + 1];
  size_t ndocs;
  struct rdoc *doc; /* the document being walked */
  struct buf path;
  struct config *cfg;
  config__sink_fn *sink;
  void *ud;
  bool nomem;
  struct rule_src *rsrc; /* parallel to cfg->rules.v */
  size_t caprules, caprsrc;
  struct param_src *psrc; /* parallel to cfg->rules.params */
  size_t capparams, cappsrc;
};

/* Reporting. */

static void vrep(struct rctx *c, size_t off, const char *fmt, va_list ap) {
  struct buf b;
  buf_init(&b, 8192);
  int line, col;
  config__lines_at(c->doc->lines, off, &line, &col);
  int rc = buf_printf(&b, "%s:%d:%d: ", c->doc->name, line, col);
  if (!rc && c->path.len) {
    rc = buf_printf(&b, "%s: ", c->path.data);
  }
  if (!rc) {
    rc = buf_vprintf(&b, fmt, ap);
  }
  if (rc) {
    c->nomem = c->nomem || rc == IOCD_ENOMEM;
  } else {
    c->sink(c->ud, c->doc->order == SIZE_MAX ? off : c->doc->order, b.data);
  }
  buf_cleanup(&b);
}

/* Reports "FILE:LINE:COL: PATH: message" for the byte at off of the current
 * document. */
static void rep(struct rctx *c, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rep(struct rctx *c, size_t off, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vrep(c, off, fmt, ap);
  va_end(ap);
}

static void check_rc(struct rctx *c, int rc) {
  if (rc == IOCD_ENOMEM) {
    c->nomem = true;
  }
}

/* Positions, children and paths, as the loader has them. */

static size_t voff(const struct rctx *c, struct rv v) {
  return v.pi < c->doc->pm->n ? c->doc->pm->v[v.pi].value : 0;
}

static size_t koff(const struct rctx *c, struct rv v) {
  if (v.pi < c->doc->pm->n && c->doc->pm->v[v.pi].key != SIZE_MAX) {
    return c->doc->pm->v[v.pi].key;
  }
  return voff(c, v);
}

static size_t next_pi(const struct rctx *c, size_t pi) {
  return pi < c->doc->pm->n ? c->doc->pm->v[pi].end : pi;
}

/* The children of an object or array with their positions; NULL on ENOMEM
 * (*n is then 0). */
static struct rv *children(struct rctx *c, struct rv v, size_t *n) {
  size_t count = 0;
  for (const cJSON *j = v.j->child; j; j = j->next) {
    count++;
  }
  *n = 0;
  struct rv *a = calloc(count ? count : 1, sizeof *a);
  if (!a) {
    c->nomem = true;
    return NULL;
  }
  size_t pi = v.pi + 1, i = 0;
  for (const cJSON *j = v.j->child; j; j = j->next) {
    a[i++] = (struct rv){j, pi};
    pi = next_pi(c, pi);
  }
  *n = count;
  return a;
}

/* The first member named key of object v; false when absent or null. */
static bool find_child(struct rctx *c, struct rv v, const char *key,
                       struct rv *out) {
  size_t pi = v.pi + 1;
  for (const cJSON *j = v.j->child; j; j = j->next) {
    if (j->string && strcmp(j->string, key) == 0) {
      *out = (struct rv){j, pi};
      return !cJSON_IsNull(j);
    }
    pi = next_pi(c, pi);
  }
  return false;
}

static bool plain_key(const char *k) {
  size_t n = strlen(k);
  if (n == 0 || n > 64) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)k[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch >= 0x80)) {
      return false;
    }
  }
  return true;
}

static size_t path_key(struct rctx *c, const char *key) {
  size_t mark = c->path.len;
  int rc;
  if (plain_key(key)) {
    rc = buf_printf(&c->path, "%s%s", mark ? "." : "", key);
  } else {
    rc = buf_putc(&c->path, '[');
    if (!rc) {
      rc = config__quote(&c->path, key, 64);
    }
    if (!rc) {
      rc = buf_putc(&c->path, ']');
    }
  }
  check_rc(c, rc);
  return mark;
}

static size_t path_index(struct rctx *c, size_t i) {
  size_t mark = c->path.len;
  check_rc(c, buf_printf(&c->path, "[%zu]", i));
  return mark;
}

static void path_pop(struct rctx *c, size_t mark) {
  buf_truncate(&c->path, mark);
}

static void path_set(struct rctx *c, const char *s) {
  buf_reset(&c->path);
  if (s && *s) {
    check_rc(c, buf_puts(&c->path, s));
  }
}

/* Describing values in messages: a quoted string, a number as written,
 * true, false, "an object", "an array" or "null". */
struct desc {
  struct buf b;
};

static const char *describe(struct rctx *c, struct rv v, struct desc *d) {
  buf_init(&d->b, 1024);
  const cJSON *j = v.j;
  int rc = IOCD_OK;
  if (cJSON_IsString(j)) {
    const char *s = j->valuestring;
    if (!utf8_valid(s, strlen(s), NULL)) {
      return "a string that is not valid UTF-8";
    }
    rc = config__quote(&d->b, s, QUOTE_MAX);
  } else if (cJSON_IsNumber(j)) {
    size_t off = voff(c, v), n = 0;
    const char *t = c->doc->text;
    while (off + n < c->doc->len && n < 32 && (unsigned char)t[off + n] > 32 &&
           !memchr(",]}", t[off + n], 3)) {
      n++;
    }
    rc = buf_append(&d->b, t + off, n);
  } else if (cJSON_IsTrue(j)) {
    return "true";
  } else if (cJSON_IsFalse(j)) {
    return "false";
  } else if (cJSON_IsObject(j)) {
    return "an object";
  } else if (cJSON_IsArray(j)) {
    return "an array";
  } else {
    return "null";
  }
  check_rc(c, rc);
  return rc || !d->b.data ? "a value" : d->b.data;
}

static void quoted(struct rctx *c, const char *s, struct desc *d) {
  buf_init(&d->b, 1024);
  check_rc(c, config__quote(&d->b, s, QUOTE_MAX));
}

static const char *qs(struct desc *d) {
  return d->b.data ? d->b.data : "\"\"";
}

static void desc_done(struct desc *d) {
  buf_cleanup(&d->b);
}

static void report_type(struct rctx *c, struct rv v, const char *expected) {
  struct desc d;
  rep(c, voff(c, v), "expected %s, got %s", expected, describe(c, v, &d));
  desc_done(&d);
}

/* Reading values. */

/* A string value, UTF-8 checked; ${NAME} substituted when env. Returns a
 * new string or NULL after reporting. */
static char *get_str(struct rctx *c, struct rv v, const char *expected,
                     bool env) {
  if (!cJSON_IsString(v.j)) {
    report_type(c, v, expected);
    return NULL;
  }
  const char *s = v.j->valuestring;
  size_t bad;
  if (!utf8_valid(s, strlen(s), &bad)) {
    rep(c, voff(c, v), "invalid UTF-8 at byte %zu of the string", bad + 1);
    return NULL;
  }
  char *out = NULL;
  if (!env) {
    out = strdup(s);
    c->nomem = c->nomem || !out;
    return out;
  }
  struct iocd_err err;
  int rc = config__expand_env(s, &out, &err);
  if (rc == IOCD_ENOMEM) {
    c->nomem = true;
    return NULL;
  }
  if (rc) {
    rep(c, voff(c, v), "%s", err.msg);
    return NULL;
  }
  if (!utf8_valid(out, strlen(out), &bad)) {
    rep(c, voff(c, v),
        "invalid UTF-8 at byte %zu of the string after ${...} substitution",
        bad + 1);
    free(out);
    return NULL;
  }
  return out;
}

/* A non-empty string. */
static char *get_name(struct rctx *c, struct rv v, const char *expected) {
  char *s = get_str(c, v, expected, true);
  if (s && !*s) {
    rep(c, voff(c, v), "must not be empty");
    free(s);
    s = NULL;
  }
  return s;
}

static bool get_duration(struct rctx *c, struct rv v, int64_t min, int64_t max,
                         int64_t *out) {
  char *s = get_str(c, v, "a duration string such as \"30s\"", true);
  if (!s) {
    return false;
  }
  struct desc d;
  quoted(c, s, &d);
  int64_t ms;
  bool ok = false;
  int rc = config__parse_duration(s, &ms);
  if (rc == IOCD_EPARSE) {
    rep(c, voff(c, v),
        "%s is not a duration (use e.g. \"500ms\", \"10s\", \"5m\")", qs(&d));
  } else if (rc || ms < min || ms > max) {
    char lo[32], hi[32];
    config__format_duration(min, lo, sizeof lo);
    config__format_duration(max, hi, sizeof hi);
    rep(c, voff(c, v), "expected a duration from %s to %s, got %s", lo, hi,
        qs(&d));
  } else {
    *out = ms;
    ok = true;
  }
  desc_done(&d);
  free(s);
  return ok;
}

/* A number, or a percentage string "30%" (0.30). */
static bool get_number(struct rctx *c, struct rv v, double *out) {
  static const char expected[] = "a number or a percentage such as \"30%\"";
  if (cJSON_IsNumber(v.j)) {
    *out = v.j->valuedouble;
    return true;
  }
  if (!cJSON_IsString(v.j)) {
    report_type(c, v, expected);
    return false;
  }
  const char *s = v.j->valuestring;
  size_t n = strlen(s);
  char *end = NULL;
  errno = 0;
  double x = n >= 2 && s[n - 1] == '%' && s[0] != ' ' ? strtod(s, &end) : 0;
  if (!end || end != s + n - 1 || errno || !isfinite(x)) {
    report_type(c, v, expected);
    return false;
  }
  *out = x / 100.0;
  return true;
}

/* Tables of keys, as the loader's. */

struct enum_name {
  const char *name;
  int value;
};

enum rtype { R_STR, R_EXPR, R_BOOL, R_DUR, R_ENUM, R_FN };

#define RF_REQ 1u

typedef void rset_fn(struct rctx *c, struct rv v, void *base);

struct rkey {
  const char *name;
  enum rtype type;
  size_t off;
  unsigned flags;
  int64_t min, max, def;
  const char *def_str;
  const struct enum_name *names;
  rset_fn *set;
};

struct robj {
  const struct rkey *keys;
  size_t n;
};

#define RSTR(n, t, f, d) \
  { .name = n, .type = R_STR, .off = offsetof(t, f), .def_str = d }
#define REXPR(n, t, f, fl) \
  { .name = n, .type = R_EXPR, .off = offsetof(t, f), .flags = fl }
#define RBOOL(n, t, f, d) \
  { .name = n, .type = R_BOOL, .off = offsetof(t, f), .def = d }
#define RDUR(n, t, f, lo, hi, d)                                           \
  {                                                                        \
    .name = n, .type = R_DUR, .off = offsetof(t, f), .min = lo, .max = hi, \
    .def = d                                                               \
  }
#define RENUM(n, t, f, e, d, fl)                                            \
  {                                                                         \
    .name = n, .type = R_ENUM, .off = offsetof(t, f), .names = e, .def = d, \
    .flags = fl                                                             \
  }
#define RFN(n, fn) \
  { .name = n, .type = R_FN, .set = fn }
#define ROBJ(keys) \
  { keys, sizeof(keys) / sizeof(keys[0]) }

static void enum_list(struct rctx *c, const struct enum_name *e,
                      struct buf *b) {
  size_t n = 0;
  while (e[n].name) {
    n++;
  }
  int rc = IOCD_OK;
  for (size_t i = 0; i < n && !rc; i++) {
    const char *sep = i == 0 ? "" : i == n - 1 ? " or " : ", ";
    rc = buf_printf(b, "%s\"%s\"", sep, e[i].name);
  }
  check_rc(c, rc);
}

static bool get_enum(struct rctx *c, struct rv v, const struct enum_name *e,
                     int *out) {
  struct buf exp;
  buf_init(&exp, 4096);
  enum_list(c, e, &exp);
  const char *expected = exp.data ? exp.data : "a name";
  bool ok = false;
  if (!cJSON_IsString(v.j)) {
    report_type(c, v, expected);
    goto out;
  }
  for (size_t i = 0; e[i].name; i++) {
    if (strcmp(v.j->valuestring, e[i].name) == 0) {
      *out = e[i].value;
      ok = true;
      break;
    }
  }
  if (!ok) {
    report_type(c, v, expected);
  }
out:
  buf_cleanup(&exp);
  return ok;
}

static void defaults(struct rctx *c, const struct robj *o, void *base) {
  for (size_t i = 0; i < o->n; i++) {
    const struct rkey *k = &o->keys[i];
    void *p = (char *)base + k->off;
    switch (k->type) {
      case R_STR:
        if (k->def_str) {
          char **dst = p;
          *dst = strdup(k->def_str);
          c->nomem = c->nomem || !*dst;
        }
        break;
      case R_BOOL:
        *(bool *)p = k->def != 0;
        break;
      case R_DUR:
        *(int64_t *)p = k->def;
        break;
      case R_ENUM:
        *(int *)p = (int)k->def;
        break;
      case R_EXPR:
      case R_FN:
        break;
    }
  }
}

static void free_keys(const struct robj *o, void *base) {
  for (size_t i = 0; i < o->n; i++) {
    const struct rkey *k = &o->keys[i];
    if (k->type == R_STR || k->type == R_EXPR) {
      char **s = (char **)((char *)base + k->off);
      free(*s);
      *s = NULL;
    }
  }
}

static const char *suggest_in(const char *const *names, size_t n,
                              const char *key) {
  const char *best = NULL;
  size_t bestd = SIZE_MAX;
  for (size_t i = 0; i < n; i++) {
    size_t d = config__distance(key, names[i]);
    if (d < bestd) {
      bestd = d;
      best = names[i];
    }
  }
  if (!best || bestd > (strlen(best) <= 4 ? 1u : 2u)) {
    return NULL;
  }
  return best;
}

static const char *suggest_key(const struct robj *o, const char *key) {
  const char *names[32];
  size_t n = 0;
  for (size_t i = 0; i < o->n && n < 32; i++) {
    names[n++] = o->keys[i].name;
  }
  return suggest_in(names, n, key);
}

/* A name and where it came from, for finding repeats by sorting (lists
 * can hold thousands of districts). */
struct nref {
  const char *name;
  size_t idx;
};

static int cmp_nref(const void *a, const void *b) {
  const struct nref *x = a, *y = b;
  int r = strcmp(x->name, y->name);
  if (r) {
    return r;
  }
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* For refs[0..n) (names with their indexes), sets first[i] to the index of
 * the first ref with the same name as the one of index i, or SIZE_MAX when
 * that one is the first. first has room for the largest idx + 1. */
static void find_repeats(struct nref *refs, size_t n, size_t *first) {
  qsort(refs, n, sizeof *refs, cmp_nref);
  for (size_t i = 0; i < n; i++) {
    bool repeat = i > 0 && strcmp(refs[i].name, refs[i - 1].name) == 0;
    first[refs[i].idx] = SIZE_MAX;
    if (repeat) {
      size_t k = i - 1;
      while (k > 0 && strcmp(refs[k - 1].name, refs[i].name) == 0) {
        k--;
      }
      first[refs[i].idx] = refs[k].idx;
    }
  }
}

/* Reports keys that are not valid UTF-8 or repeat an earlier key, and
 * returns the marks of those to skip; NULL on ENOMEM. */
static bool *bad_keys(struct rctx *c, const struct rv *kids, size_t n) {
  bool *skip = calloc(n ? n : 1, sizeof *skip);
  struct nref *refs = malloc((n ? n : 1) * sizeof *refs);
  size_t *first = malloc((n ? n : 1) * sizeof *first);
  if (!skip || !refs || !first) {
    c->nomem = true;
    free(skip);
    free(refs);
    free(first);
    return NULL;
  }
  size_t nrefs = 0;
  for (size_t i = 0; i < n; i++) {
    const char *k = kids[i].j->string;
    first[i] = SIZE_MAX;
    if (!utf8_valid(k, strlen(k), NULL)) {
      rep(c, koff(c, kids[i]), "key is not valid UTF-8");
      skip[i] = true;
      continue;
    }
    refs[nrefs++] = (struct nref){k, i};
  }
  find_repeats(refs, nrefs, first);
  for (size_t i = 0; i < n; i++) {
    if (skip[i] || first[i] == SIZE_MAX) {
      continue;
    }
    int line, col;
    config__lines_at(c->doc->lines, koff(c, kids[first[i]]), &line, &col);
    size_t mark = path_key(c, kids[i].j->string);
    rep(c, koff(c, kids[i]), "duplicate key (first set at line %d)", line);
    path_pop(c, mark);
    skip[i] = true;
  }
  free(refs);
  free(first);
  return skip;
}

static void set_key(struct rctx *c, const struct rkey *k, struct rv v,
                    void *base) {
  void *p = (char *)base + k->off;
  switch (k->type) {
    case R_STR: {
      char *s = get_name(c, v, "a string");
      if (s) {
        char **dst = p;
        free(*dst);
        *dst = s;
      }
      break;
    }
    case R_EXPR: {
      /* Expressions are taken as written: no ${NAME}, so that columns in
       * messages match the file. */
      char *s = get_str(c, v, "an expression string", false);
      if (s && !*s) {
        rep(c, voff(c, v), "must not be empty");
        free(s);
        s = NULL;
      }
      if (s) {
        char **dst = p;
        free(*dst);
        *dst = s;
      }
      break;
    }
    case R_BOOL:
      if (cJSON_IsBool(v.j)) {
        *(bool *)p = cJSON_IsTrue(v.j);
      } else {
        report_type(c, v, "true or false");
      }
      break;
    case R_DUR:
      get_duration(c, v, k->min, k->max, (int64_t *)p);
      break;
    case R_ENUM: {
      int x;
      if (get_enum(c, v, k->names, &x)) {
        *(int *)p = x;
      }
      break;
    }
    case R_FN:
      k->set(c, v, base);
      break;
  }
}

/* Checks object v against o and stores what it finds in base. Returns false
 * when v is not an object. */
static bool walk(struct rctx *c, struct rv v, const struct robj *o,
                 void *base) {
  if (!cJSON_IsObject(v.j)) {
    report_type(c, v, "an object");
    return false;
  }
  size_t n;
  struct rv *kids = children(c, v, &n);
  bool *skip = kids ? bad_keys(c, kids, n) : NULL;
  bool seen[32] = {false};
  for (size_t i = 0; skip && i < n; i++) {
    if (skip[i]) {
      continue;
    }
    const char *name = kids[i].j->string;
    const struct rkey *k = NULL;
    for (size_t t = 0; t < o->n; t++) {
      if (strcmp(o->keys[t].name, name) == 0) {
        k = &o->keys[t];
        break;
      }
    }
    size_t mark = path_key(c, name);
    if (!k) {
      const char *hint = suggest_key(o, name);
      if (hint) {
        rep(c, koff(c, kids[i]), "unknown key (did you mean \"%s\"?)", hint);
      } else {
        rep(c, koff(c, kids[i]), "unknown key");
      }
    } else if (!cJSON_IsNull(kids[i].j)) {
      seen[k - o->keys] = true;
      set_key(c, k, kids[i], base);
    }
    path_pop(c, mark);
  }
  for (size_t t = 0; skip && t < o->n && t < 32; t++) {
    if ((o->keys[t].flags & RF_REQ) && !seen[t]) {
      size_t mark = path_key(c, o->keys[t].name);
      rep(c, voff(c, v), "required key is missing");
      path_pop(c, mark);
    }
  }
  free(skip);
  free(kids);
  return true;
}

/* Lists of strings. */

/* Reads an array of non-empty, distinct strings into *out. */
static void get_string_list(struct rctx *c, struct rv v, char ***out,
                            size_t *nout) {
  if (!cJSON_IsArray(v.j)) {
    report_type(c, v, "an array of strings");
    return;
  }
  size_t n;
  struct rv *items = children(c, v, &n);
  if (!items) {
    return;
  }
  if (n > MAX_LIST) {
    rep(c, voff(c, v), "at most %d items are allowed, got %zu", MAX_LIST, n);
    free(items);
    return;
  }
  char **all = calloc(n ? n : 1, sizeof *all);
  char **list = calloc(n ? n : 1, sizeof *list);
  struct nref *refs = malloc((n ? n : 1) * sizeof *refs);
  size_t *first = malloc((n ? n : 1) * sizeof *first);
  if (!all || !list || !refs || !first) {
    c->nomem = true;
    free(all);
    free(list);
    free(refs);
    free(first);
    free(items);
    return;
  }
  size_t nrefs = 0;
  for (size_t i = 0; i < n; i++) {
    size_t mark = path_index(c, i);
    all[i] = get_name(c, items[i], "a string");
    if (all[i]) {
      refs[nrefs++] = (struct nref){all[i], i};
    }
    first[i] = SIZE_MAX;
    path_pop(c, mark);
  }
  find_repeats(refs, nrefs, first);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (all[i] && first[i] != SIZE_MAX) {
      size_t mark = path_index(c, i);
      struct desc d;
      quoted(c, all[i], &d);
      rep(c, voff(c, items[i]), "%s is listed twice (first at [%zu])", qs(&d),
          first[i]);
      desc_done(&d);
      path_pop(c, mark);
      free(all[i]);
    } else if (all[i]) {
      list[k++] = all[i];
    }
  }
  *out = list;
  *nout = k;
  free(all);
  free(refs);
  free(first);
  free(items);
}

static void free_list(char **list, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(list[i]);
  }
  free(list);
}

/* Objects whose keys are the user's names with string values. */
static void get_kv_map(struct rctx *c, struct rv v, const char *expected,
                       struct config_kv **out, size_t *nout) {
  if (!cJSON_IsObject(v.j)) {
    report_type(c, v, expected);
    return;
  }
  size_t n;
  struct rv *kids = children(c, v, &n);
  bool *skip = kids ? bad_keys(c, kids, n) : NULL;
  struct config_kv *kv = calloc(n ? n : 1, sizeof *kv);
  if (!skip || !kv) {
    c->nomem = true;
    free(kv);
    free(skip);
    free(kids);
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (skip[i]) {
      continue;
    }
    const char *key = kids[i].j->string;
    if (!*key) {
      rep(c, koff(c, kids[i]), "empty name");
      continue;
    }
    size_t mark = path_key(c, key);
    char *value = get_str(c, kids[i], "a string", true);
    char *kc = value ? strdup(key) : NULL;
    if (value && !kc) {
      c->nomem = true;
    }
    if (kc) {
      kv[k].key = kc;
      kv[k].value = value;
      k++;
    } else {
      free(value);
    }
    path_pop(c, mark);
  }
  *out = kv;
  *nout = k;
  free(skip);
  free(kids);
}

static void free_kv(struct config_kv *kv, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(kv[i].key);
    free(kv[i].value);
  }
  free(kv);
}

/* Dates and times. */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int32_t days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  int era = (y >= 0 ? y : y - 399) / 400;
  int yoe = y - era * 400;
  int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return (int32_t)(era * 146097 + doe - 719468);
}

static bool digits(const char *s, size_t n, int *out) {
  int x = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    x = x * 10 + (s[i] - '0');
  }
  *out = x;
  return true;
}

int config__parse_date(const char *s, size_t n, int32_t *days) {
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int y, m, d;
  if (n != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, &y) ||
      !digits(s + 5, 2, &m) || !digits(s + 8, 2, &d)) {
    return IOCD_EPARSE;
  }
  if (y < 1970 || m < 1 || m > 12 || d < 1) {
    return IOCD_EPARSE;
  }
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > mdays[m - 1] + (m == 2 && leap)) {
    return IOCD_EPARSE;
  }
  *days = days_from_civil(y, m, d);
  return IOCD_OK;
}

void config__format_date(int32_t days, char *out, size_t n) {
  /* civil_from_days, the inverse of days_from_civil. */
  int z = days + 719468;
  int era = (z >= 0 ? z : z - 146096) / 146097;
  int doe = z - era * 146097;
  int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int y = yoe + era * 400;
  int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int mp = (5 * doy + 2) / 153;
  int d = doy - (153 * mp + 2) / 5 + 1;
  int m = mp + (mp < 10 ? 3 : -9);
  snprintf(out, n, "%04d-%02d-%02d", y + (m <= 2), m, d);
}

/* Zones without daylight saving time (tzdata 2024), by UTC offset. A zone
 * with DST cannot be one offset; give it as "+HH:MM" for the season. */
static const struct {
  const char *name;
  int32_t offset_s;
} zones[] = {
    {"Asia/Ho_Chi_Minh", 7 * 3600},
    {"Asia/Saigon", 7 * 3600},
    {"Asia/Bangkok", 7 * 3600},
    {"Asia/Phnom_Penh", 7 * 3600},
    {"Asia/Vientiane", 7 * 3600},
    {"Asia/Jakarta", 7 * 3600},
    {"Asia/Yangon", 6 * 3600 + 1800},
    {"Asia/Dhaka", 6 * 3600},
    {"Asia/Kathmandu", 5 * 3600 + 2700},
    {"Asia/Kolkata", 5 * 3600 + 1800},
    {"Asia/Karachi", 5 * 3600},
    {"Asia/Tashkent", 5 * 3600},
    {"Asia/Dubai", 4 * 3600},
    {"Asia/Riyadh", 3 * 3600},
    {"Europe/Moscow", 3 * 3600},
    {"Asia/Singapore", 8 * 3600},
    {"Asia/Kuala_Lumpur", 8 * 3600},
    {"Asia/Manila", 8 * 3600},
    {"Asia/Shanghai", 8 * 3600},
    {"Asia/Hong_Kong", 8 * 3600},
    {"Asia/Taipei", 8 * 3600},
    {"Australia/Perth", 8 * 3600},
    {"Asia/Tokyo", 9 * 3600},
    {"Asia/Seoul", 9 * 3600},
    {"UTC", 0},
    {"Etc/UTC", 0},
    {"GMT", 0},
};

int config__timezone_offset(const char *tz, int32_t *offset_s) {
  for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
    if (strcmp(tz, zones[i].name) == 0) {
      *offset_s = zones[i].offset_s;
      return IOCD_OK;
    }
  }
  int h, m;
  if (strlen(tz) == 6 && (tz[0] == '+' || tz[0] == '-') && tz[3] == ':' &&
      digits(tz + 1, 2, &h) && digits(tz + 4, 2, &m) && m < 60 &&
      h * 60 + m <= 14 * 60) {
    *offset_s = (tz[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
    return IOCD_OK;
  }
  return IOCD_ENOTFOUND;
}

/* "07:30" to minutes; 24:00 allowed as an end. */
static bool parse_hhmm(const char *s, int *min) {
  int h, m;
  if (s[2] != ':' || !digits(s, 2, &h) || !digits(s + 3, 2, &m) || m > 59 ||
      h > 24 || (h == 24 && m != 0)) {
    return false;
  }
  *min = h * 60 + m;
  return true;
}

/* The calendar section. */

static void set_timezone(struct rctx *c, struct rv v, void *base) {
  struct config_calendar *cal = base;
  char *s = get_name(c, v, "a time zone such as \"Asia/Ho_Chi_Minh\"");
  if (!s) {
    return;
  }
  int32_t off;
  if (config__timezone_offset(s, &off) != IOCD_OK) {
    struct desc d;
    quoted(c, s, &d);
    rep(c, voff(c, v),
        "unknown time zone %s (iocd knows zones without daylight saving "
        "time, e.g. \"Asia/Ho_Chi_Minh\"; give others as an offset such as "
        "\"+07:00\")",
        qs(&d));
    desc_done(&d);
    free(s);
    return;
  }
  free(cal->timezone);
  cal->timezone = s;
  cal->utc_offset_s = off;
}

static void set_office_hours(struct rctx *c, struct rv v, void *base) {
  struct config_calendar *cal = base;
  if (!cJSON_IsArray(v.j)) {
    report_type(c, v, "an array of \"HH:MM-HH:MM\" strings");
    return;
  }
  size_t n;
  struct rv *items = children(c, v, &n);
  if (!items) {
    return;
  }
  struct config_minutes *spans = calloc(n ? n : 1, sizeof *spans);
  if (!spans) {
    c->nomem = true;
    free(items);
    return;
  }
  size_t k = 0;
  bool ok = true;
  for (size_t i = 0; i < n; i++) {
    size_t mark = path_index(c, i);
    char *s = get_str(c, items[i], "a string such as \"07:30-11:30\"", true);
    int a, b;
    if (!s) {
      ok = false;
    } else if (strlen(s) != 11 || s[5] != '-' || !parse_hhmm(s, &a) ||
               !parse_hhmm(s + 6, &b) || a >= b) {
      struct desc d;
      quoted(c, s, &d);
      rep(c, voff(c, items[i]),
          "expected office hours \"HH:MM-HH:MM\" with the start before the "
          "end, got %s",
          qs(&d));
      desc_done(&d);
      ok = false;
    } else if (k > 0 && a < spans[k - 1].end) {
      struct desc d;
      quoted(c, s, &d);
      rep(c, voff(c, items[i]),
          "%s starts before the end of the span before it (list the spans "
          "in order, without overlap)",
          qs(&d));
      desc_done(&d);
      ok = false;
    } else {
      spans[k].start = a;
      spans[k].end = b;
      k++;
    }
    free(s);
    path_pop(c, mark);
  }
  free(items);
  if (!ok) {
    free(spans);
    return;
  }
  free(cal->office_hours);
  cal->office_hours = spans;
  cal->noffice_hours = k;
}

static void set_weekdays(struct rctx *c, struct rv v, void *base) {
  static const char *const names[] = {"sun", "mon", "tue", "wed",
                                      "thu", "fri", "sat"};
  struct config_calendar *cal = base;
  if (!cJSON_IsArray(v.j)) {
    report_type(c, v, "an array of day names (\"mon\" ... \"sun\")");
    return;
  }
  size_t n;
  struct rv *items = children(c, v, &n);
  if (!items) {
    return;
  }
  unsigned days = 0;
  if (n == 0) {
    rep(c, voff(c, v), "at least one working weekday is required");
  }
  for (size_t i = 0; i < n; i++) {
    size_t mark = path_index(c, i);
    int d = -1;
    for (int k = 0; k < 7 && cJSON_IsString(items[i].j); k++) {
      if (strcmp(items[i].j->valuestring, names[k]) == 0) {
        d = k;
      }
    }
    if (d < 0) {
      report_type(c, items[i],
                  "\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\" or "
                  "\"sun\"");
    } else if (days & (1u << d)) {
      rep(c, voff(c, items[i]), "\"%s\" is listed twice", names[d]);
    } else {
      days |= 1u << d;
    }
    path_pop(c, mark);
  }
  free(items);
  if (days) {
    cal->weekdays = days;
  }
}

/* "2021-02-10" or "2021-02-10..2021-02-16". */
static bool parse_day_range(const char *s, struct config_day_range *r) {
  size_t n = strlen(s);
  if (n == 10) {
    if (config__parse_date(s, 10, &r->first)) {
      return false;
    }
    r->last = r->first;
    return true;
  }
  return n == 22 && s[10] == '.' && s[11] == '.' &&
         config__parse_date(s, 10, &r->first) == IOCD_OK &&
         config__parse_date(s + 12, 10, &r->last) == IOCD_OK;
}

static void get_day_ranges(struct rctx *c, struct rv v,
                           struct config_day_range **out, size_t *nout) {
  if (!cJSON_IsArray(v.j)) {
    report_type(c, v,
                "an array of dates (\"2021-02-10\" or "
                "\"2021-02-10..2021-02-16\")");
    return;
  }
  size_t n;
  struct rv *items = children(c, v, &n);
  if (!items) {
    return;
  }
  struct config_day_range *r = calloc(n ? n : 1, sizeof *r);
  if (!r) {
    c->nomem = true;
    free(items);
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    size_t mark = path_index(c, i);
    char *s = get_str(c, items[i], "a date such as \"2021-02-10\"", true);
    if (s && !parse_day_range(s, &r[k])) {
      struct desc d;
      quoted(c, s, &d);
      rep(c, voff(c, items[i]),
          "expected a date \"YYYY-MM-DD\" or a range "
          "\"YYYY-MM-DD..YYYY-MM-DD\", got %s",
          qs(&d));
      desc_done(&d);
    } else if (s && r[k].first > r[k].last) {
      struct desc d;
      quoted(c, s, &d);
      rep(c, voff(c, items[i]), "the range %s ends before it starts", qs(&d));
      desc_done(&d);
    } else if (s) {
      k++;
    }
    free(s);
    path_pop(c, mark);
  }
  free(items);
  free(*out);
  *out = r;
  *nout = k;
}

static void set_holidays(struct rctx *c, struct rv v, void *base) {
  struct config_calendar *cal = base;
  get_day_ranges(c, v, &cal->holidays, &cal->nholidays);
}

static void set_workdays(struct rctx *c, struct rv v, void *base) {
  struct config_calendar *cal = base;
  get_day_ranges(c, v, &cal->workdays, &cal->nworkdays);
}

#define T struct config_calendar
static const struct rkey calendar_keys[] = {
    RFN("timezone", set_timezone), RFN("office_hours", set_office_hours),
    RFN("weekdays", set_weekdays), RFN("holidays", set_holidays),
    RFN("workdays", set_workdays),
};
#undef T
static const struct robj calendar_obj = ROBJ(calendar_keys);

static void calendar_defaults(struct rctx *c, struct config_calendar *cal) {
  cal->timezone = strdup("Asia/Ho_Chi_Minh");
  cal->utc_offset_s = 7 * 3600;
  cal->office_hours = calloc(2, sizeof *cal->office_hours);
  if (!cal->timezone || !cal->office_hours) {
    c->nomem = true;
    return;
  }
  cal->office_hours[0] = (struct config_minutes){7 * 60 + 30, 11 * 60 + 30};
  cal->office_hours[1] = (struct config_minutes){13 * 60 + 30, 17 * 60};
  cal->noffice_hours = 2;
  cal->weekdays = 0x3E;
}

/* A date both off and worked is a contradiction in the file. */
static void calendar_check(struct rctx *c, struct rv v,
                           const struct config_calendar *cal) {
  struct rv wv;
  if (!find_child(c, v, "workdays", &wv) || !cJSON_IsArray(wv.j)) {
    return;
  }
  for (size_t w = 0; w < cal->nworkdays; w++) {
    for (size_t h = 0; h < cal->nholidays; h++) {
      const struct config_day_range *a = &cal->workdays[w];
      const struct config_day_range *b = &cal->holidays[h];
      if (a->first <= b->last && b->first <= a->last) {
        char day[16];
        config__format_date(a->first > b->first ? a->first : b->first, day,
                            sizeof day);
        size_t mark = path_key(c, "workdays");
        rep(c, voff(c, wv), "%s is also a holiday (holidays[%zu])", day, h);
        path_pop(c, mark);
        return;
      }
    }
  }
}

/* The sources section. */

static void set_districts(struct rctx *c, struct rv v, void *base) {
  struct config_sources *s = base;
  get_string_list(c, v, &s->districts, &s->ndistricts);
}

static void set_systems(struct rctx *c, struct rv v, void *base) {
  struct config_sources *s = base;
  get_string_list(c, v, &s->systems, &s->nsystems);
}

#define T struct config_sources
static const struct rkey sources_keys[] = {
    RFN("districts", set_districts),
    RFN("systems", set_systems),
    RSTR("district_tag", T, district_tag, "district"),
    RSTR("system_tag", T, system_tag, "system"),
};
#undef T
static const struct robj sources_obj = ROBJ(sources_keys);

/* The rule_engine section. */

#define T struct config_rules
static const struct rkey engine_keys[] = {
    RDUR("evaluation_interval", T, evaluation_interval_ms, MS_S, MS_H,
         15 * MS_S),
    RDUR("save_interval", T, save_interval_ms, MS_S, MS_H, 10 * MS_S),
    RDUR("freshness", T, freshness_ms, MS_S, 30 * MS_D, 10 * MS_M),
};
#undef T
static const struct robj engine_obj = ROBJ(engine_keys);

/* Names. */

static bool ident_char(unsigned char ch, bool first) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
         (!first && ch >= '0' && ch <= '9');
}

/* Rule names: letters, digits, "_", "-" and ".", from a letter or "_". */
static bool rule_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > NAME_MAX_LEN || !ident_char((unsigned char)s[0], true)) {
    return false;
  }
  for (size_t i = 1; i < n; i++) {
    if (!ident_char((unsigned char)s[i], false) && s[i] != '-' && s[i] != '.') {
      return false;
    }
  }
  return true;
}

static bool param_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > NAME_MAX_LEN || !ident_char((unsigned char)s[0], true)) {
    return false;
  }
  for (size_t i = 1; i < n; i++) {
    if (!ident_char((unsigned char)s[i], false)) {
      return false;
    }
  }
  return true;
}

/* Tags every alert point carries; a rule's labels may not take them. */
static bool reserved_label(const char *k) {
  return strcmp(k, "rule") == 0 || strcmp(k, "severity") == 0 ||
         strcmp(k, "state") == 0;
}

static void place_of(struct rctx *c, size_t off, struct config_place *p) {
  p->file = strdup(c->doc->name);
  c->nomem = c->nomem || !p->file;
  config__lines_at(c->doc->lines, off, &p->line, &p->col);
}

/* Parameters. */

static bool grow(struct rctx *c, void **arr, size_t elem, size_t n,
                 size_t *cap) {
  if (n < *cap) {
    return true;
  }
  size_t ncap = *cap ? *cap * 2 : 16;
  void *p = realloc(*arr, ncap * elem);
  if (!p) {
    c->nomem = true;
    return false;
  }
  *arr = p;
  *cap = ncap;
  return true;
}

static void param_values(struct rctx *c, struct rv v, struct config_param *p) {
  if (!cJSON_IsObject(v.j)) {
    report_type(c, v, "an object of label values and numbers");
    return;
  }
  size_t n;
  struct rv *kids = children(c, v, &n);
  bool *skip = kids ? bad_keys(c, kids, n) : NULL;
  p->values = calloc(n ? n : 1, sizeof *p->values);
  if (!skip || !p->values) {
    c->nomem = true;
    free(skip);
    free(kids);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    if (skip[i]) {
      continue;
    }
    const char *key = kids[i].j->string;
    size_t mark = path_key(c, key);
    double x;
    if (!*key) {
      rep(c, koff(c, kids[i]), "empty name");
    } else if (get_number(c, kids[i], &x)) {
      char *g = strdup(key);
      if (!g) {
        c->nomem = true;
      } else {
        p->values[p->nvalues].group = g;
        p->values[p->nvalues].value = x;
        p->nvalues++;
      }
    }
    path_pop(c, mark);
  }
  free(skip);
  free(kids);
}

static void param_by(struct rctx *c, struct rv v, void *base) {
  struct config_param *p = base;
  char *s = get_name(c, v, "a label name");
  if (s) {
    free(p->by);
    p->by = s;
  }
}

static void param_default(struct rctx *c, struct rv v, void *base) {
  struct config_param *p = base;
  p->has_default = get_number(c, v, &p->def);
}

static void param_values_fn(struct rctx *c, struct rv v, void *base) {
  param_values(c, v, base);
}

static const struct rkey param_keys[] = {
    RFN("default", param_default),
    RFN("by", param_by),
    RFN("values", param_values_fn),
};
static const struct robj param_obj = ROBJ(param_keys);

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* An override for a district the sources do not list would never apply. */
static void check_param_groups(struct rctx *c, struct rv v,
                               const struct config_param *p) {
  const struct config_sources *src = &c->cfg->sources;
  struct rv vv;
  if (!p->by || !src->district_tag || strcmp(p->by, src->district_tag) != 0 ||
      src->ndistricts == 0 || !find_child(c, v, "values", &vv)) {
    return;
  }
  size_t n;
  struct rv *kids = children(c, vv, &n);
  const char **sorted = malloc(src->ndistricts * sizeof *sorted);
  if (!kids || !sorted) {
    c->nomem = true;
    free(kids);
    free(sorted);
    return;
  }
  memcpy(sorted, src->districts, src->ndistricts * sizeof *sorted);
  qsort(sorted, src->ndistricts, sizeof *sorted, cmp_str);
  for (size_t i = 0; i < n; i++) {
    const char *g = kids[i].j->string;
    if (!*g || bsearch(&g, sorted, src->ndistricts, sizeof *sorted, cmp_str)) {
      continue;
    }
    const char *hint =
        suggest_in((const char *const *)src->districts, src->ndistricts, g);
    size_t m1 = path_key(c, "values");
    size_t m2 = path_key(c, g);
    if (hint) {
      rep(c, koff(c, kids[i]),
          "not one of sources.districts (did you mean \"%s\"?)", hint);
    } else {
      rep(c, koff(c, kids[i]), "not one of sources.districts");
    }
    path_pop(c, m2);
    path_pop(c, m1);
  }
  free(sorted);
  free(kids);
}

/* "params": {"name": 30 | "30%" | {"default", "by", "values"}}. */
static void load_params(struct rctx *c, struct rv v) {
  struct config_rules *r = &c->cfg->rules;
  if (!cJSON_IsObject(v.j)) {
    report_type(c, v, "an object of parameters");
    return;
  }
  size_t n;
  struct rv *kids = children(c, v, &n);
  bool *skip = kids ? bad_keys(c, kids, n) : NULL;
  for (size_t i = 0; skip && i < n; i++) {
    if (skip[i]) {
      continue;
    }
    const char *name = kids[i].j->string;
    size_t mark = path_key(c, name);
    if (!param_name_ok(name)) {
      struct desc d;
      quoted(c, name, &d);
      rep(c, koff(c, kids[i]),
          "%s is not a parameter name (letters, digits and \"_\", from a "
          "letter or \"_\")",
          qs(&d));
      desc_done(&d);
      path_pop(c, mark);
      continue;
    }
    if (r->nparams >= MAX_PARAMS) {
      rep(c, koff(c, kids[i]), "at most %d parameters are allowed", MAX_PARAMS);
      path_pop(c, mark);
      break;
    }
    if (!grow(c, (void **)&r->params, sizeof *r->params, r->nparams,
              &c->capparams) ||
        !grow(c, (void **)&c->psrc, sizeof *c->psrc, r->nparams, &c->cappsrc)) {
      path_pop(c, mark);
      break;
    }
    struct config_param *p = &r->params[r->nparams];
    memset(p, 0, sizeof *p);
    p->name = strdup(name);
    c->nomem = c->nomem || !p->name;
    place_of(c, koff(c, kids[i]), &p->place);
    if (cJSON_IsObject(kids[i].j)) {
      walk(c, kids[i], &param_obj, p);
    } else {
      p->has_default = get_number(c, kids[i], &p->def);
    }
    if (!p->by && c->cfg->sources.district_tag) {
      p->by = strdup(c->cfg->sources.district_tag);
      c->nomem = c->nomem || !p->by;
    }
    if (cJSON_IsObject(kids[i].j)) {
      check_param_groups(c, kids[i], p);
    }
    c->psrc[r->nparams] = (struct param_src){c->ndocs - 1, kids[i]};
    r->nparams++;
    path_pop(c, mark);
  }
  free(skip);
  free(kids);
}

/* Rules. */

static const struct enum_name severity_names[] = {
    {"info", CONFIG_SEV_INFO},
    {"warning", CONFIG_SEV_WARNING},
    {"critical", CONFIG_SEV_CRITICAL},
    {NULL, 0},
};

static const struct enum_name missing_names[] = {
    {"nodata", CONFIG_MISSING_NODATA},
    {"keep", CONFIG_MISSING_KEEP},
    {"ok", CONFIG_MISSING_OK},
    {NULL, 0},
};

_Static_assert(sizeof(enum config_severity) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_missing) == sizeof(int), "enum size");

const char *config_severity_name(enum config_severity s) {
  for (size_t i = 0; severity_names[i].name; i++) {
    if (severity_names[i].value == (int)s) {
      return severity_names[i].name;
    }
  }
  return "unknown";
}

const char *config_missing_name(enum config_missing m) {
  for (size_t i = 0; missing_names[i].name; i++) {
    if (missing_names[i].value == (int)m) {
      return missing_names[i].name;
    }
  }
  return "unknown";
}

static void rule_by(struct rctx *c, struct rv v, void *base) {
  struct config_rule *r = base;
  size_t mark = c->path.len;
  get_string_list(c, v, &r->by, &r->nby);
  path_pop(c, mark);
  struct rv *items;
  size_t n;
  if (!r->by || !(items = children(c, v, &n))) {
    return;
  }
  for (size_t i = 0; i < r->nby; i++) {
    if (reserved_label(r->by[i])) {
      for (size_t k = 0; k < n; k++) {
        if (cJSON_IsString(items[k].j) &&
            strcmp(items[k].j->valuestring, r->by[i]) == 0) {
          size_t m = path_index(c, k);
          rep(c, voff(c, items[k]),
              "\"%s\" is reserved: every alert has it as a tag", r->by[i]);
          path_pop(c, m);
          break;
        }
      }
    }
  }
  free(items);
}

static void rule_annotations(struct rctx *c, struct rv v, void *base) {
  struct config_rule *r = base;
  get_kv_map(c, v, "an object of annotation names and templates",
             &r->annotations, &r->nannotations);
}

static void rule_labels(struct rctx *c, struct rv v, void *base) {
  struct config_rule *r = base;
  get_kv_map(c, v, "an object of label names and values", &r->labels,
             &r->nlabels);
  size_t n;
  struct rv *kids = r->labels ? children(c, v, &n) : NULL;
  for (size_t i = 0; kids && i < n; i++) {
    if (reserved_label(kids[i].j->string)) {
      size_t m = path_key(c, kids[i].j->string);
      rep(c, koff(c, kids[i]),
          "\"%s\" is reserved: every alert has it as a tag", kids[i].j->string);
      path_pop(c, m);
    }
  }
  free(kids);
}

static void rule_broker(struct rctx *c, struct rv v, void *base) {
  struct config_rule *r = base;
  if (cJSON_IsBool(v.j)) {
    r->broker_dependent = cJSON_IsTrue(v.j) ? 1 : 0;
  } else {
    report_type(c, v, "true or false");
  }
}

#define T struct config_rule_level
static const struct rkey level_keys[] = {
    RENUM("severity", T, severity, severity_names, CONFIG_SEV_WARNING, RF_REQ),
    REXPR("expr", T, expr, RF_REQ),
    REXPR("clear", T, clear, 0),
};
#undef T
static const struct robj level_obj = ROBJ(level_keys);

static void rule_levels(struct rctx *c, struct rv v, void *base) {
  struct config_rule *r = base;
  if (!cJSON_IsArray(v.j)) {
    report_type(c, v, "an array of levels");
    return;
  }
  size_t n;
  struct rv *items = children(c, v, &n);
  if (!items) {
    return;
  }
  if (n == 0 || n > 3) {
    rep(c, voff(c, v), "expected 1 to 3 levels, got %zu", n);
    free(items);
    return;
  }
  r->levels = calloc(n, sizeof *r->levels);
  if (!r->levels) {
    c->nomem = true;
    free(items);
    return;
  }
  r->nlevels = n;
  for (size_t i = 0; i < n; i++) {
    size_t mark = path_index(c, i);
    defaults(c, &level_obj, &r->levels[i]);
    walk(c, items[i], &level_obj, &r->levels[i]);
    struct rv sv;
    if (i > 0 && find_child(c, items[i], "severity", &sv) &&
        r->levels[i].severity <= r->levels[i - 1].severity) {
      size_t m = path_key(c, "severity");
      rep(c, voff(c, sv),
          "levels go from the lowest severity to the highest: \"%s\" "
          "cannot follow \"%s\"",
          config_severity_name(r->levels[i].severity),
          config_severity_name(r->levels[i - 1].severity));
      path_pop(c, m);
    }
    path_pop(c, mark);
  }
  free(items);
}

#define T struct config_rule
static const struct rkey rule_keys[] = {
    RSTR("name", T, name, NULL),
    REXPR("expr", T, expr, 0),
    REXPR("clear", T, clear, 0),
    REXPR("guard", T, guard, 0),
    RFN("by", rule_by),
    RENUM("severity", T, severity, severity_names, CONFIG_SEV_WARNING, 0),
    RFN("levels", rule_levels),
    RDUR("for", T, for_ms, 0, 30 * MS_D, 0),
    RDUR("for_tolerance", T, for_tolerance_ms, 0, MS_D, 0),
    RDUR("keep_firing_for", T, keep_firing_for_ms, 0, 30 * MS_D, 0),
    RENUM("missing", T, missing, missing_names, CONFIG_MISSING_NODATA, 0),
    RBOOL("working_time", T, working_time, false),
    RFN("annotations", rule_annotations),
    RFN("labels", rule_labels),
    RDUR("freshness", T, freshness_ms, MS_S, 30 * MS_D, 0),
    RBOOL("expected", T, expected, false),
    RFN("depends_on_broker", rule_broker),
};
#undef T
static const struct robj rule_obj = ROBJ(rule_keys);

/* Reports msg at key's value in obj, or at obj when key is absent. */
static void report_key_at(struct rctx *c, struct rv obj, const char *key,
                          const char *msg) {
  struct rv kv;
  size_t off = find_child(c, obj, key, &kv) ? voff(c, kv) : voff(c, obj);
  size_t mark = path_key(c, key);
  rep(c, off, "%s", msg);
  path_pop(c, mark);
}

/* Checks between the keys of one rule. */
static void rule_check(struct rctx *c, struct rv v, struct config_rule *r) {
  struct rv tmp;
  bool has_expr = find_child(c, v, "expr", &tmp);
  bool has_levels = find_child(c, v, "levels", &tmp);
  if (!has_expr && !has_levels) {
    report_key_at(c, v, "expr", "required key is missing (or give \"levels\")");
  }
  if (has_expr && has_levels) {
    report_key_at(c, v, "levels",
                  "give either \"expr\" or \"levels\", not both");
  }
  if (has_levels && find_child(c, v, "severity", &tmp)) {
    report_key_at(c, v, "severity",
                  "not used with \"levels\" (each level has its own)");
  }
  if (has_levels && find_child(c, v, "clear", &tmp)) {
    report_key_at(c, v, "clear",
                  "not used with \"levels\" (each level has its own)");
  }
  if (r->for_tolerance_ms > 0 && r->for_ms == 0) {
    report_key_at(c, v, "for_tolerance", "has no effect without \"for\"");
  }
  const struct config_sources *s = &c->cfg->sources;
  if (r->expected) {
    bool ok = r->nby > 0;
    for (size_t i = 0; ok && i < r->nby; i++) {
      ok = (s->district_tag && strcmp(r->by[i], s->district_tag) == 0) ||
           (s->system_tag && strcmp(r->by[i], s->system_tag) == 0);
    }
    if (!ok) {
      report_key_at(c, v, "expected",
                    "needs \"by\" made of the source tags "
                    "(sources.district_tag and/or sources.system_tag)");
    } else {
      for (size_t i = 0; i < r->nby; i++) {
        bool district =
            s->district_tag && strcmp(r->by[i], s->district_tag) == 0;
        if ((district && s->ndistricts == 0) ||
            (!district && s->nsystems == 0)) {
          report_key_at(c, v, "expected",
                        district ? "needs sources.districts to list the "
                                   "sources"
                                 : "needs sources.systems to list the "
                                   "sources");
          break;
        }
      }
    }
  }
  for (size_t i = 0; i < r->nlabels; i++) {
    for (size_t k = 0; k < r->nby; k++) {
      if (strcmp(r->labels[i].key, r->by[k]) == 0) {
        struct rv lv;
        if (find_child(c, v, "labels", &lv)) {
          size_t m1 = path_key(c, "labels");
          size_t m2 = path_key(c, r->labels[i].key);
          rep(c, voff(c, lv),
              "\"%s\" is one of the rule's \"by\" labels, which come from "
              "the data",
              r->labels[i].key);
          path_pop(c, m2);
          path_pop(c, m1);
        }
      }
    }
  }
}

static void load_rules(struct rctx *c, struct rv v) {
  struct config_rules *rs = &c->cfg->rules;
  if (!cJSON_IsArray(v.j)) {
    report_type(c, v, "an array of rules");
    return;
  }
  size_t n;
  struct rv *items = children(c, v, &n);
  if (!items) {
    return;
  }
  for (size_t i = 0; i < n; i++) {
    size_t mark = path_index(c, i);
    if (rs->n >= MAX_RULES) {
      rep(c, voff(c, items[i]), "at most %d rules are allowed", MAX_RULES);
      path_pop(c, mark);
      break;
    }
    if (!grow(c, (void **)&rs->v, sizeof *rs->v, rs->n, &c->caprules) ||
        !grow(c, (void **)&c->rsrc, sizeof *c->rsrc, rs->n, &c->caprsrc)) {
      path_pop(c, mark);
      break;
    }
    struct config_rule *r = &rs->v[rs->n];
    memset(r, 0, sizeof *r);
    r->broker_dependent = -1;
    defaults(c, &rule_obj, r);
    c->rsrc[rs->n] = (struct rule_src){c->ndocs - 1, i, items[i]};
    rs->n++;
    struct rv nv = {0};
    bool named =
        cJSON_IsObject(items[i].j) && find_child(c, items[i], "name", &nv);
    place_of(c, named ? voff(c, nv) : voff(c, items[i]), &r->place);
    if (walk(c, items[i], &rule_obj, r)) {
      if (r->name && !rule_name_ok(r->name) &&
          find_child(c, items[i], "name", &nv)) {
        struct desc d;
        quoted(c, r->name, &d);
        size_t m = path_key(c, "name");
        rep(c, voff(c, nv),
            "%s is not a rule name (letters, digits, \"_\", \"-\" and "
            "\".\", from a letter or \"_\")",
            qs(&d));
        path_pop(c, m);
        desc_done(&d);
      } else if (!r->name) {
        struct rv dummy;
        if (!find_child(c, items[i], "name", &dummy)) {
          /* walk reported nothing: name is not RF_REQ so that a missing
           * name and a bad one read alike. */
          size_t m = path_key(c, "name");
          rep(c, voff(c, items[i]), "required key is missing");
          path_pop(c, m);
        }
      }
      rule_check(c, items[i], r);
    }
    path_pop(c, mark);
  }
  free(items);
}

/* Rule files. */

static void doc_free(struct rdoc *d) {
  if (!d) {
    return;
  }
  free(d->name);
  free(d->own_orig);
  free(d->own_text);
  config__lines_cleanup(&d->own_lines);
  free(d->own_pm.v);
  cJSON_Delete(d->own_json);
  free(d);
}

/* Joins the directory of base and rel (rel as is when absolute). */
static char *resolve(const char *base, const char *rel) {
  const char *slash = strrchr(base, '/');
  if (rel[0] == '/' || !slash) {
    return strdup(rel);
  }
  size_t dn = (size_t)(slash - base) + 1;
  size_t rn = strlen(rel);
  char *p = malloc(dn + rn + 1);
  if (p) {
    memcpy(p, base, dn);
    memcpy(p + dn, rel, rn + 1);
  }
  return p;
}

/* Reads a whole file (at most RULE_FILE_MAX). Returns IOCD_OK with *out
 * (malloc'd, NUL-terminated), or an error with why. */
static int read_file(const char *path, char **out, size_t *len, char *why,
                     size_t n) {
  struct buf b;
  buf_init(&b, RULE_FILE_MAX);
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(why, n, "%s", strerror(errno));
    return IOCD_EIO;
  }
  int rc = IOCD_OK;
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    snprintf(why, n, "is a directory, not a file");
    rc = IOCD_EIO;
  }
  while (!rc) {
    char chunk[16384];
    size_t got = fread(chunk, 1, sizeof chunk, f);
    if (got) {
      rc = buf_append(&b, chunk, got);
    }
    if (got < sizeof chunk) {
      break;
    }
  }
  if (rc == IOCD_ETOOBIG) {
    snprintf(why, n, "the file is larger than %u MiB", RULE_FILE_MAX >> 20);
    rc = IOCD_EIO;
  } else if (!rc && ferror(f)) {
    snprintf(why, n, "%s", strerror(errno));
    rc = IOCD_EIO;
  }
  fclose(f);
  if (!rc && !b.data) {
    rc = buf_putc(&b, '\0');
    b.len = 0;
  }
  if (rc) {
    buf_cleanup(&b);
    return rc;
  }
  *len = b.len;
  *out = buf_detach(&b, NULL);
  return IOCD_OK;
}

/* Reports a JSON syntax error of d near end, as the loader does. */
static void report_syntax(struct rctx *c, const char *end) {
  const char *t = c->doc->text;
  size_t len = c->doc->len;
  size_t at = end && end >= t ? (size_t)(end - t) : 0;
  if (at > len) {
    at = len;
  }
  while (at > 0 && (at >= len || (unsigned char)t[at] <= 32)) {
    at--;
  }
  size_t n = 0;
  while (at + n < len && n < 24 && t[at + n] != '\n' && t[at + n] != '\r') {
    n++;
  }
  size_t bad;
  if (!utf8_valid(t + at, n, &bad)) {
    n = bad;
  } else {
    while (at + n < len && n > 0 && ((unsigned char)t[at + n] & 0xC0) == 0x80) {
      n--;
    }
  }
  char snip[32];
  size_t k = 0;
  for (size_t i = 0; i < n && k < sizeof snip - 1; i++) {
    unsigned char ch = (unsigned char)t[at + i];
    snip[k++] = ch < 32 || ch == 0x7F ? ' ' : (char)ch;
  }
  while (k > 0 && snip[k - 1] == ' ') {
    k--;
  }
  snip[k] = '\0';
  rep(c, at, "syntax error near '%s'", snip);
}

static const struct rkey file_keys[] = {
    RFN("params", NULL),
    RFN("rules", NULL),
};
static const struct robj file_obj = ROBJ(file_keys);

/* Loads one rule file named by entry v of the main file's rule_files.
 * Returns the document (kept in c->docs), or NULL after reporting. */
static struct rdoc *open_rule_file(struct rctx *c, struct rv v,
                                   const char *rel) {
  struct rdoc *main_doc = c->docs[0];
  char *path = resolve(main_doc->name, rel);
  if (!path) {
    c->nomem = true;
    return NULL;
  }
  for (size_t i = 1; i < c->ndocs; i++) {
    if (strcmp(c->docs[i]->name, path) == 0) {
      struct desc d;
      quoted(c, rel, &d);
      rep(c, voff(c, v), "%s is already included", qs(&d));
      desc_done(&d);
      free(path);
      return NULL;
    }
  }
  char *text = NULL;
  size_t len = 0;
  char why[256];
  int rc = read_file(path, &text, &len, why, sizeof why);
  if (rc) {
    struct desc d;
    quoted(c, path, &d);
    rep(c, voff(c, v), "cannot read %s: %s", qs(&d), why);
    desc_done(&d);
    free(path);
    return NULL;
  }
  struct rdoc *d = calloc(1, sizeof *d);
  if (!d) {
    c->nomem = true;
    free(path);
    free(text);
    return NULL;
  }
  d->name = path;
  d->own_orig = text;
  d->own_text = malloc(len + 1);
  d->len = len;
  d->lines = &d->own_lines;
  d->pm = &d->own_pm;
  d->order = voff(c, v);
  /* Columns are counted in the text as read (a comment's characters
   * count as the editor shows them); the blanking keeps every offset. */
  if (!d->own_text || config__lines_init(&d->own_lines, text, len)) {
    c->nomem = true;
    doc_free(d);
    return NULL;
  }
  memcpy(d->own_text, text, len + 1);
  text = d->own_text;
  d->text = text;
  c->docs[c->ndocs++] = d;
  struct rdoc *saved = c->doc;
  c->doc = d;
  struct buf saved_path = c->path;
  buf_init(&c->path, 1 << 20);
  size_t bad;
  const char *nul = memchr(text, '\0', len);
  if (nul) {
    rep(c, (size_t)(nul - text), "NUL byte in the file");
    goto fail;
  }
  if (config__blank_comments(text, len, &bad)) {
    rep(c, bad, "unterminated /* comment");
    goto fail;
  }
  const char *end = NULL;
  d->own_json = cJSON_ParseWithOpts(text, &end, 1);
  if (!d->own_json) {
    report_syntax(c, end);
    goto fail;
  }
  rc = config__scan(text, len, &d->own_pm);
  if (rc) {
    c->nomem = c->nomem || rc == IOCD_ENOMEM;
    if (rc != IOCD_ENOMEM) {
      rep(c, 0, "cannot locate the values in the file");
    }
    goto fail;
  }
  d->root = d->own_json;
  struct rv root = {d->root, 0};
  if (!cJSON_IsObject(d->root)) {
    report_type(c, root, "an object with \"params\" and \"rules\"");
    goto fail;
  }
  buf_cleanup(&c->path);
  c->path = saved_path;
  c->doc = saved;
  return d;
fail:
  buf_cleanup(&c->path);
  c->path = saved_path;
  c->doc = saved;
  return NULL;
}

/* Walks the keys of a rule file: only "params" and "rules". */
static void load_rule_file(struct rctx *c, struct rdoc *d) {
  struct rdoc *saved = c->doc;
  c->doc = d;
  struct buf saved_path = c->path;
  buf_init(&c->path, 1 << 20);
  struct rv root = {d->root, 0};
  /* The table walk only checks the keys here; the two sections are read
   * below, params first so that rules can be checked against them. */
  size_t n;
  struct rv *kids = children(c, root, &n);
  bool *skip = kids ? bad_keys(c, kids, n) : NULL;
  for (size_t i = 0; skip && i < n; i++) {
    const char *k = kids[i].j->string;
    if (skip[i] || strcmp(k, "params") == 0 || strcmp(k, "rules") == 0) {
      continue;
    }
    const char *hint = suggest_key(&file_obj, k);
    size_t mark = path_key(c, k);
    if (hint) {
      rep(c, koff(c, kids[i]), "unknown key (did you mean \"%s\"?)", hint);
    } else {
      rep(c, koff(c, kids[i]),
          "unknown key (a rule file has \"params\" and \"rules\")");
    }
    path_pop(c, mark);
  }
  free(skip);
  free(kids);
  struct rv v;
  if (find_child(c, root, "params", &v)) {
    size_t mark = path_key(c, "params");
    load_params(c, v);
    path_pop(c, mark);
  }
  if (find_child(c, root, "rules", &v)) {
    size_t mark = path_key(c, "rules");
    load_rules(c, v);
    path_pop(c, mark);
  }
  buf_cleanup(&c->path);
  c->path = saved_path;
  c->doc = saved;
}

static void load_rule_files(struct rctx *c, struct rv v) {
  struct config_rules *rs = &c->cfg->rules;
  size_t mark = c->path.len;
  get_string_list(c, v, &rs->files, &rs->nfiles);
  path_pop(c, mark);
  if (!rs->files || !cJSON_IsArray(v.j)) {
    return;
  }
  size_t n;
  struct rv *items = children(c, v, &n);
  if (!items) {
    return;
  }
  if (n > MAX_RULE_FILES) {
    rep(c, voff(c, v), "at most %d rule files are allowed, got %zu",
        MAX_RULE_FILES, n);
    free(items);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    bool again = false;
    for (size_t k = 0; k < i && cJSON_IsString(items[i].j); k++) {
      again = again ||
              (cJSON_IsString(items[k].j) &&
               strcmp(items[k].j->valuestring, items[i].j->valuestring) == 0);
    }
    /* A repeated name was reported by the list reader. */
    if (again || !cJSON_IsString(items[i].j) || !*items[i].j->valuestring) {
      continue;
    }
    size_t m = path_index(c, i);
    char *rel = get_str(c, items[i], "a file name", true);
    struct rdoc *d = rel ? open_rule_file(c, items[i], rel) : NULL;
    path_pop(c, m);
    free(rel);
    if (d) {
      load_rule_file(c, d);
    }
  }
  free(items);
}

/* Checks after the merge. */

/* The byte offset in the document of character col (1-based) of the JSON
 * string whose opening quote is at q: escapes count as the one character
 * they stand for. Past the end: the closing quote. */
static size_t string_char_off(const char *t, size_t len, size_t q, int col) {
  size_t i = q + 1;
  int k = 1;
  while (i < len && t[i] != '"') {
    if (k == col) {
      return i;
    }
    if (t[i] == '\\' && i + 1 < len) {
      if (t[i + 1] == 'u') {
        bool high = i + 5 < len && (t[i + 2] == 'd' || t[i + 2] == 'D') &&
                    strchr("89abAB", t[i + 3]) != NULL;
        i += 6;
        if (high && i + 1 < len && t[i] == '\\' && t[i + 1] == 'u') {
          i += 6;
        }
      } else {
        i += 2;
      }
    } else {
      i++;
      while (i < len && ((unsigned char)t[i] & 0xC0) == 0x80) {
        i++;
      }
    }
    k++;
  }
  return i < len ? i : len;
}

/* Column (1-based, in characters) of byte at in s. */
static int char_col(const char *s, size_t at) {
  int col = 1;
  for (size_t i = 0; i < at && s[i]; i++) {
    if (((unsigned char)s[i] & 0xC0) != 0x80) {
      col++;
    }
  }
  return col;
}

/* Where in an expression text $name is used: its column, or 1. String
 * literals are skipped. */
static int param_col(const char *s, const char *name) {
  size_t n = strlen(name);
  bool in_str = false;
  for (size_t i = 0; s[i]; i++) {
    if (in_str) {
      if (s[i] == '\\' && s[i + 1]) {
        i++;
      } else if (s[i] == '"') {
        in_str = false;
      }
      continue;
    }
    if (s[i] == '"') {
      in_str = true;
    } else if (s[i] == '$' && strncmp(s + i + 1, name, n) == 0 &&
               !ident_char((unsigned char)s[i + 1 + n], false) &&
               (unsigned char)s[i + 1 + n] < 0x80) {
      return char_col(s, i);
    }
  }
  return 1;
}

/* Where the string literal "name" is in an expression text: the column of
 * its opening quote, or 1. */
static int literal_col(const char *s, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; s[i]; i++) {
    if (s[i] != '"') {
      continue;
    }
    size_t j = i + 1;
    size_t k = 0;
    bool match = true;
    while (s[j] && s[j] != '"') {
      char ch = s[j];
      if (ch == '\\' && s[j + 1]) {
        ch = s[++j];
      }
      match = match && k < n && name[k] == ch;
      k++;
      j++;
    }
    if (match && k == n && s[j] == '"') {
      return char_col(s, i);
    }
    if (!s[j]) {
      break;
    }
    i = j;
  }
  return 1;
}

static const struct config_param *find_param(const struct config_rules *rs,
                                             const char *name) {
  for (size_t i = 0; i < rs->nparams; i++) {
    if (rs->params[i].name && strcmp(rs->params[i].name, name) == 0) {
      return &rs->params[i];
    }
  }
  return NULL;
}

/* Parses the expression at key of rule object v and checks its
 * parameters and calendar names. */
static void check_expr(struct rctx *c, struct rv obj, const char *key,
                       const char *text) {
  struct rv v;
  if (!text || !find_child(c, obj, key, &v) || !cJSON_IsString(v.j)) {
    return;
  }
  size_t q = voff(c, v);
  size_t mark = path_key(c, key);
  struct iocd_err err = {{0}};
  int col = 0;
  struct expr *e = expr_parse(text, &err, &col);
  if (!e) {
    if (col == 0) {
      c->nomem = true;
    } else {
      /* The message starts "column N: "; the position says it already. */
      const char *msg = err.msg;
      const char *p = strstr(msg, ": ");
      if (strncmp(msg, "column ", 7) == 0 && p) {
        msg = p + 2;
      }
      rep(c, string_char_off(c->doc->text, c->doc->len, q, col), "%s", msg);
    }
    path_pop(c, mark);
    return;
  }
  const struct config_rules *rs = &c->cfg->rules;
  size_t n;
  const char *const *params = expr_params(e, &n);
  for (size_t i = 0; i < n; i++) {
    if (find_param(rs, params[i])) {
      continue;
    }
    size_t at = string_char_off(c->doc->text, c->doc->len, q,
                                param_col(text, params[i]));
    const char *names[MAX_PARAMS];
    size_t nn = 0;
    for (size_t k = 0; k < rs->nparams && nn < MAX_PARAMS; k++) {
      if (rs->params[k].name) {
        names[nn++] = rs->params[k].name;
      }
    }
    const char *hint = suggest_in(names, nn, params[i]);
    if (hint) {
      rep(c, at, "unknown parameter $%s (did you mean $%s?)", params[i], hint);
    } else {
      rep(c, at, "unknown parameter $%s (define it under \"params\")",
          params[i]);
    }
  }
  const char *const *cals = expr_calendars(e, &n);
  for (size_t i = 0; i < n; i++) {
    bool known = false;
    for (size_t k = 0; calendar_periods[k]; k++) {
      known = known || strcmp(calendar_periods[k], cals[i]) == 0;
    }
    if (!known) {
      size_t at = string_char_off(c->doc->text, c->doc->len, q,
                                  literal_col(text, cals[i]));
      struct desc d;
      quoted(c, cals[i], &d);
      rep(c, at,
          "unknown calendar %s (the \"calendar\" section is "
          "\"office_hours\")",
          qs(&d));
      desc_done(&d);
    }
  }
  expr_free(e);
  path_pop(c, mark);
}

/* Renders the annotation templates of rule object obj once, so that an
 * unclosed {{ or an unknown filter is reported inside the string. The
 * engine's message gives a byte column in the template. */
static void check_templates(struct rctx *c, struct rv obj) {
  struct rv av;
  if (!find_child(c, obj, "annotations", &av) || !cJSON_IsObject(av.j)) {
    return;
  }
  size_t n;
  struct rv *kids = children(c, av, &n);
  struct alert_event ev;
  memset(&ev, 0, sizeof ev);
  ev.rule = "";
  for (size_t i = 0; kids && i < n; i++) {
    if (!cJSON_IsString(kids[i].j)) {
      continue;
    }
    const char *t = kids[i].j->valuestring;
    struct buf out;
    buf_init(&out, 1 << 20);
    struct iocd_err err = {{0}};
    int rc = engine_render(t, &ev, &out, &err);
    buf_cleanup(&out);
    if (rc != IOCD_EPARSE) {
      c->nomem = c->nomem || rc == IOCD_ENOMEM;
      continue;
    }
    const char *msg = err.msg;
    int col = 1;
    const char *sep = strstr(msg, ": ");
    if (strncmp(msg, "column ", 7) == 0 && sep) {
      long byte = strtol(msg + 7, NULL, 10);
      if (byte >= 1 && (size_t)byte <= strlen(t) + 1) {
        col = char_col(t, (size_t)byte - 1);
      }
      msg = sep + 2;
    }
    size_t m1 = path_key(c, "annotations");
    size_t m2 = path_key(c, kids[i].j->string);
    rep(c, string_char_off(c->doc->text, c->doc->len, voff(c, kids[i]), col),
        "%s", msg);
    path_pop(c, m2);
    path_pop(c, m1);
  }
  free(kids);
}

static void check_rule_exprs(struct rctx *c, size_t i) {
  const struct rule_src *src = &c->rsrc[i];
  const struct config_rule *r = &c->cfg->rules.v[i];
  c->doc = c->docs[src->doc];
  path_set(c, "rules");
  path_index(c, src->index);
  check_expr(c, src->v, "expr", r->expr);
  check_expr(c, src->v, "clear", r->clear);
  check_expr(c, src->v, "guard", r->guard);
  check_templates(c, src->v);
  struct rv lv;
  if (r->levels && find_child(c, src->v, "levels", &lv)) {
    size_t n;
    struct rv *items = children(c, lv, &n);
    size_t m1 = path_key(c, "levels");
    for (size_t k = 0; items && k < n && k < r->nlevels; k++) {
      size_t m2 = path_index(c, k);
      check_expr(c, items[k], "expr", r->levels[k].expr);
      check_expr(c, items[k], "clear", r->levels[k].clear);
      path_pop(c, m2);
    }
    path_pop(c, m1);
    free(items);
  }
}

static void check_duplicates(struct rctx *c) {
  const struct config_rules *rs = &c->cfg->rules;
  size_t most = rs->n > rs->nparams ? rs->n : rs->nparams;
  struct nref *refs = malloc((most ? most : 1) * sizeof *refs);
  size_t *first = malloc((most ? most : 1) * sizeof *first);
  if (!refs || !first) {
    c->nomem = true;
    free(refs);
    free(first);
    return;
  }
  size_t nrefs = 0;
  for (size_t i = 0; i < rs->n; i++) {
    first[i] = SIZE_MAX;
    if (rs->v[i].name) {
      refs[nrefs++] = (struct nref){rs->v[i].name, i};
    }
  }
  find_repeats(refs, nrefs, first);
  for (size_t i = 0; i < rs->n; i++) {
    if (first[i] == SIZE_MAX) {
      continue;
    }
    const struct config_rule *o = &rs->v[first[i]];
    const struct rule_src *src = &c->rsrc[i];
    c->doc = c->docs[src->doc];
    path_set(c, "rules");
    path_index(c, src->index);
    path_key(c, "name");
    struct rv nv = {0};
    find_child(c, src->v, "name", &nv);
    rep(c, voff(c, nv), "rule \"%s\" is already defined at %s:%d:%d",
        rs->v[i].name, o->place.file, o->place.line, o->place.col);
  }
  nrefs = 0;
  for (size_t i = 0; i < rs->nparams; i++) {
    first[i] = SIZE_MAX;
    if (rs->params[i].name) {
      refs[nrefs++] = (struct nref){rs->params[i].name, i};
    }
  }
  find_repeats(refs, nrefs, first);
  for (size_t i = 0; i < rs->nparams; i++) {
    if (first[i] == SIZE_MAX) {
      continue;
    }
    const struct config_param *p = &rs->params[i];
    const struct config_param *o = &rs->params[first[i]];
    c->doc = c->docs[c->psrc[i].doc];
    path_set(c, "params");
    path_key(c, p->name);
    rep(c, koff(c, c->psrc[i].v),
        "parameter \"%s\" is already defined at %s:%d:%d", p->name,
        o->place.file, o->place.line, o->place.col);
  }
  free(refs);
  free(first);
}

int config__load_rules(const struct config__doc *doc, const struct cJSON *root,
                       struct config *cfg, config__sink_fn *sink, void *ud) {
  struct rctx c = {0};
  c.cfg = cfg;
  c.sink = sink;
  c.ud = ud;
  buf_init(&c.path, 1 << 20);
  struct rdoc *main_doc = calloc(1, sizeof *main_doc);
  if (!main_doc || !(main_doc->name = strdup(doc->name))) {
    free(main_doc);
    buf_cleanup(&c.path);
    return IOCD_ENOMEM;
  }
  main_doc->text = doc->text;
  main_doc->len = doc->len;
  main_doc->lines = doc->lines;
  main_doc->pm = doc->pm;
  main_doc->root = root;
  main_doc->order = SIZE_MAX;
  c.docs[c.ndocs++] = main_doc;
  c.doc = main_doc;

  calendar_defaults(&c, &cfg->calendar);
  defaults(&c, &sources_obj, &cfg->sources);
  defaults(&c, &engine_obj, &cfg->rules);

  struct rv r = {root, 0};
  struct rv v;
  if (cJSON_IsObject(root)) {
    if (find_child(&c, r, "calendar", &v)) {
      size_t m = path_key(&c, "calendar");
      if (walk(&c, v, &calendar_obj, &cfg->calendar)) {
        calendar_check(&c, v, &cfg->calendar);
      }
      path_pop(&c, m);
    }
    if (find_child(&c, r, "sources", &v)) {
      size_t m = path_key(&c, "sources");
      walk(&c, v, &sources_obj, &cfg->sources);
      path_pop(&c, m);
    }
    if (find_child(&c, r, "rule_engine", &v)) {
      size_t m = path_key(&c, "rule_engine");
      walk(&c, v, &engine_obj, &cfg->rules);
      path_pop(&c, m);
    }
    if (find_child(&c, r, "params", &v)) {
      size_t m = path_key(&c, "params");
      load_params(&c, v);
      path_pop(&c, m);
    }
    if (find_child(&c, r, "rules", &v)) {
      size_t m = path_key(&c, "rules");
      load_rules(&c, v);
      path_pop(&c, m);
    }
    if (find_child(&c, r, "rule_files", &v)) {
      size_t m = path_key(&c, "rule_files");
      load_rule_files(&c, v);
      path_pop(&c, m);
    }
  }
  check_duplicates(&c);
  for (size_t i = 0; i < cfg->rules.n; i++) {
    check_rule_exprs(&c, i);
  }
  for (size_t i = 0; i < c.ndocs; i++) {
    doc_free(c.docs[i]);
  }
  free(c.rsrc);
  free(c.psrc);
  buf_cleanup(&c.path);
  return c.nomem ? IOCD_ENOMEM : IOCD_OK;
}

void config__free_rules(struct config *cfg) {
  struct config_calendar *cal = &cfg->calendar;
  free(cal->timezone);
  free(cal->office_hours);
  free(cal->holidays);
  free(cal->workdays);
  memset(cal, 0, sizeof *cal);
  struct config_sources *s = &cfg->sources;
  free_list(s->districts, s->ndistricts);
  free_list(s->systems, s->nsystems);
  free(s->district_tag);
  free(s->system_tag);
  memset(s, 0, sizeof *s);
  struct config_rules *rs = &cfg->rules;
  for (size_t i = 0; i < rs->n; i++) {
    struct config_rule *r = &rs->v[i];
    free_keys(&rule_obj, r);
    free_list(r->by, r->nby);
    for (size_t k = 0; k < r->nlevels; k++) {
      free_keys(&level_obj, &r->levels[k]);
    }
    free(r->levels);
    free_kv(r->annotations, r->nannotations);
    free_kv(r->labels, r->nlabels);
    free(r->place.file);
  }
  free(rs->v);
  for (size_t i = 0; i < rs->nparams; i++) {
    struct config_param *p = &rs->params[i];
    free(p->name);
    free(p->by);
    for (size_t k = 0; k < p->nvalues; k++) {
      free(p->values[k].group);
    }
    free(p->values);
    free(p->place.file);
  }
  free(rs->params);
  free_list(rs->files, rs->nfiles);
  memset(rs, 0, sizeof *rs);
}

/* Collects the one message of config_parse_jsonc. */
static void first_message(void *ud, size_t order, const char *msg) {
  (void)order;
  struct buf *b = ud;
  if (b && !b->len) {
    buf_printf(b, "%s\n", msg);
  }
}

int config_parse_jsonc(const char *name, const char *text, size_t len,
                       struct cJSON **out, struct buf *errors) {
  *out = NULL;
  struct rdoc d = {0};
  struct rctx c = {0};
  c.sink = first_message;
  c.ud = errors;
  c.doc = &d;
  buf_init(&c.path, 64);
  d.name = (char *)name;
  d.order = SIZE_MAX;
  d.lines = &d.own_lines;
  d.pm = &d.own_pm;
  d.own_text = malloc(len + 1);
  int rc = IOCD_ENOMEM;
  if (!d.own_text || config__lines_init(&d.own_lines, text, len)) {
    goto out;
  }
  memcpy(d.own_text, text, len);
  d.own_text[len] = '\0';
  d.text = d.own_text;
  d.len = len;
  rc = IOCD_EPARSE;
  size_t bad;
  const char *nul = memchr(text, '\0', len);
  if (nul) {
    rep(&c, (size_t)(nul - text), "NUL byte in the file");
    goto out;
  }
  if (config__blank_comments(d.own_text, len, &bad)) {
    rep(&c, bad, "unterminated /* comment");
    goto out;
  }
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithOpts(d.own_text, &end, 1);
  if (!j) {
    report_syntax(&c, end);
    goto out;
  }
  *out = j;
  rc = IOCD_OK;
out:
  free(d.own_text);
  config__lines_cleanup(&d.own_lines);
  buf_cleanup(&c.path);
  return c.nomem ? IOCD_ENOMEM : rc;
}
