/*
 * The config walker: one way, for the loader (config.c) and the rules
 * sections (rules_config.c), to read a JSONC document against tables of
 * keys and to say what is wrong with it. A problem names its place as
 * FILE:LINE:COL: JSON.PATH and says what was expected and what was found;
 * problems go to the caller's sink, which collects and orders them, so that
 * `iocd check` shows them all. Nothing here knows which file or section it
 * reads: the current document and the path are in struct cw.
 */
#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_int.h"
#include "core/hash.h"
#include "core/utf8.h"

#define QUOTE_MAX 48
#define KEY_SHOW_MAX 64
#define MAX_LIST ((size_t)100000)

void cw_init(struct cw *c, config__sink_fn *sink, void *ud) {
  memset(c, 0, sizeof *c);
  buf_init(&c->path, 1 << 20);
  c->sink = sink;
  c->ud = ud;
}

void cw_cleanup(struct cw *c) {
  buf_cleanup(&c->path);
}

/* Reporting. */

static void check_rc(struct cw *c, int rc) {
  if (rc == IOCD_ENOMEM) {
    c->nomem = true;
  }
}

static void vreport(struct cw *c, size_t off, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vreport(struct cw *c, size_t off, const char *fmt, va_list ap) {
  const struct config__doc *d = c->doc;
  struct buf b;
  buf_init(&b, 8192);
  int rc;
  if (off == SIZE_MAX) {
    rc = buf_printf(&b, "%s: ", d->name);
  } else {
    int line, col;
    config__lines_at(d->lines, off, &line, &col);
    rc = buf_printf(&b, "%s:%d:%d: ", d->name, line, col);
  }
  if (!rc && c->path.len) {
    rc = buf_printf(&b, "%s: ", c->path.data);
  }
  if (!rc) {
    rc = buf_vprintf(&b, fmt, ap);
  }
  if (rc) {
    check_rc(c, rc);
  } else if (d->order != SIZE_MAX) {
    c->sink(c->ud, d->order, b.data);
  } else {
    c->sink(c->ud, off == SIZE_MAX ? 0 : off, b.data);
  }
  buf_cleanup(&b);
}

void cw_report(struct cw *c, size_t off, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(c, off, fmt, ap);
  va_end(ap);
}

void cw_report_key(struct cw *c, const char *key, size_t off, const char *fmt,
                   ...) {
  size_t mark = cw_path_key(c, key);
  va_list ap;
  va_start(ap, fmt);
  vreport(c, off, fmt, ap);
  va_end(ap);
  cw_path_pop(c, mark);
}

/* Positions and children. */

size_t cw_voff(const struct cw *c, struct cw_val v) {
  const struct config_posmap *pm = c->doc->pm;
  return v.pi < pm->n ? pm->v[v.pi].value : 0;
}

uint64_t cw_fingerprint(struct cw *c, struct cw_val v) {
  char *text = cJSON_PrintUnformatted(v.j);
  if (!text) {
    c->nomem = true;
    return 0;
  }
  uint64_t h = hash_str(HASH_START, text);
  cJSON_free(text);
  return h;
}

void cw_place(struct cw *c, size_t off, struct config_place *p) {
  p->file = strdup(c->doc->name);
  c->nomem = c->nomem || !p->file;
  config__lines_at(c->doc->lines, off, &p->line, &p->col);
}

size_t cw_koff(const struct cw *c, struct cw_val v) {
  const struct config_posmap *pm = c->doc->pm;
  if (v.pi < pm->n && pm->v[v.pi].key != SIZE_MAX) {
    return pm->v[v.pi].key;
  }
  return cw_voff(c, v);
}

static size_t next_pi(const struct cw *c, size_t pi) {
  const struct config_posmap *pm = c->doc->pm;
  return pi < pm->n ? pm->v[pi].end : pi;
}

struct cw_val *cw_children(struct cw *c, struct cw_val v, size_t *n) {
  size_t count = 0;
  for (const cJSON *j = v.j->child; j; j = j->next) {
    count++;
  }
  *n = 0;
  struct cw_val *a = calloc(count ? count : 1, sizeof *a);
  if (!a) {
    c->nomem = true;
    return NULL;
  }
  size_t pi = v.pi + 1, i = 0;
  for (const cJSON *j = v.j->child; j; j = j->next) {
    a[i++] = (struct cw_val){j, pi};
    pi = next_pi(c, pi);
  }
  *n = count;
  return a;
}

bool cw_find_child(struct cw *c, struct cw_val v, const char *key,
                   struct cw_val *out) {
  size_t pi = v.pi + 1;
  for (const cJSON *j = v.j->child; j; j = j->next) {
    if (j->string && strcmp(j->string, key) == 0) {
      *out = (struct cw_val){j, pi};
      return !cJSON_IsNull(j);
    }
    pi = next_pi(c, pi);
  }
  return false;
}

size_t cw_child_off(struct cw *c, struct cw_val v, const char *key) {
  struct cw_val cv;
  return cw_find_child(c, v, key, &cv) ? cw_voff(c, cv) : cw_voff(c, v);
}

/* The JSON path. */

static bool plain_key(const char *k) {
  size_t n = strlen(k);
  if (n == 0 || n > KEY_SHOW_MAX) {
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

size_t cw_path_key(struct cw *c, const char *key) {
  size_t mark = c->path.len;
  int rc;
  if (plain_key(key)) {
    rc = buf_printf(&c->path, "%s%s", mark ? "." : "", key);
  } else {
    rc = buf_putc(&c->path, '[');
    if (!rc) {
      rc = config__quote(&c->path, key, KEY_SHOW_MAX);
    }
    if (!rc) {
      rc = buf_putc(&c->path, ']');
    }
  }
  check_rc(c, rc);
  return mark;
}

size_t cw_path_index(struct cw *c, size_t i) {
  size_t mark = c->path.len;
  check_rc(c, buf_printf(&c->path, "[%zu]", i));
  return mark;
}

void cw_path_pop(struct cw *c, size_t mark) {
  buf_truncate(&c->path, mark);
}

void cw_path_set(struct cw *c, const char *s) {
  buf_reset(&c->path);
  if (s && *s) {
    check_rc(c, buf_puts(&c->path, s));
  }
}

/* Describing values in messages. */

const char *cw_describe(struct cw *c, struct cw_val v, struct cw_desc *d) {
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
    const char *t = c->doc->text;
    size_t len = c->doc->len, off = cw_voff(c, v), n = 0;
    while (off + n < len && n < 32 && (unsigned char)t[off + n] > 32 &&
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

void cw_quoted(struct cw *c, const char *s, struct cw_desc *d) {
  buf_init(&d->b, 1024);
  check_rc(c, config__quote(&d->b, s, QUOTE_MAX));
}

const char *cw_qs(const struct cw_desc *d) {
  return d->b.data ? d->b.data : "\"\"";
}

void cw_desc_done(struct cw_desc *d) {
  buf_cleanup(&d->b);
}

void cw_report_type(struct cw *c, struct cw_val v, const char *expected) {
  struct cw_desc d;
  cw_report(c, cw_voff(c, v), "expected %s, got %s", expected,
            cw_describe(c, v, &d));
  cw_desc_done(&d);
}

/* Reading values. */

char *cw_get_str(struct cw *c, struct cw_val v, const char *expected,
                 bool env) {
  if (!cJSON_IsString(v.j)) {
    cw_report_type(c, v, expected);
    return NULL;
  }
  const char *s = v.j->valuestring;
  size_t bad;
  if (!utf8_valid(s, strlen(s), &bad)) {
    cw_report(c, cw_voff(c, v), "invalid UTF-8 at byte %zu of the string",
              bad + 1);
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
    cw_report(c, cw_voff(c, v), "%s", err.msg);
    return NULL;
  }
  if (!utf8_valid(out, strlen(out), &bad)) {
    cw_report(c, cw_voff(c, v),
              "invalid UTF-8 at byte %zu of the string after ${...} "
              "substitution",
              bad + 1);
    free(out);
    return NULL;
  }
  return out;
}

bool cw_name_ok(struct cw *c, size_t off, const char *s) {
  size_t chars = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned cp = *p;
    if (cp == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) {
      cp = p[1];
    } else if (cp >= 0x80) {
      chars += (cp & 0xC0) != 0x80;
      continue;
    }
    chars++;
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) {
      cw_report(c, off,
                "character %zu is the control character U+%04X, which a "
                "name cannot hold",
                chars, cp);
      return false;
    }
  }
  return true;
}

static bool name_has_control(struct cw *c, struct cw_val v, const char *s) {
  return !cw_name_ok(c, cw_voff(c, v), s);
}

char *cw_get_name(struct cw *c, struct cw_val v, const char *expected) {
  char *s = cw_get_str(c, v, expected, true);
  if (s && !*s) {
    cw_report(c, cw_voff(c, v), "must not be empty");
    free(s);
    s = NULL;
  }
  if (s && name_has_control(c, v, s)) {
    free(s);
    s = NULL;
  }
  return s;
}

bool cw_get_int(const cJSON *j, int64_t *out) {
  if (!cJSON_IsNumber(j)) {
    return false;
  }
  double d = j->valuedouble;
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) {
    return false;
  }
  int64_t x = (int64_t)d;
  if ((double)x != d) {
    return false;
  }
  *out = x;
  return true;
}

bool cw_get_number(struct cw *c, struct cw_val v, double *out) {
  static const char expected[] = "a number or a percentage such as \"30%\"";
  if (cJSON_IsNumber(v.j)) {
    *out = v.j->valuedouble;
    return true;
  }
  if (!cJSON_IsString(v.j)) {
    cw_report_type(c, v, expected);
    return false;
  }
  const char *s = v.j->valuestring;
  size_t n = strlen(s);
  char *end = NULL;
  errno = 0;
  double x = n >= 2 && s[n - 1] == '%' && s[0] != ' ' ? strtod(s, &end) : 0;
  if (!end || end != s + n - 1 || errno || !isfinite(x)) {
    cw_report_type(c, v, expected);
    return false;
  }
  *out = x / 100.0;
  return true;
}

/* "json", "value" or "line". */
static void enum_expected(struct cw *c, const struct cw_enum *e,
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

bool cw_get_enum(struct cw *c, struct cw_val v, const struct cw_enum *e,
                 bool env, int *out) {
  struct buf exp;
  buf_init(&exp, 4096);
  enum_expected(c, e, &exp);
  const char *expected = exp.data ? exp.data : "a name";
  char *s = NULL;
  bool ok = false;
  if (!cJSON_IsString(v.j)) {
    cw_report_type(c, v, expected);
    goto out;
  }
  const char *name = v.j->valuestring;
  if (env) {
    s = cw_get_str(c, v, expected, true);
    if (!s) {
      goto out;
    }
    name = s;
  }
  for (size_t i = 0; e[i].name; i++) {
    if (strcmp(name, e[i].name) == 0) {
      *out = e[i].value;
      ok = true;
      break;
    }
  }
  if (!ok && s) {
    /* Say what the name became, which may not be what was written. */
    struct cw_desc d;
    cw_quoted(c, s, &d);
    cw_report(c, cw_voff(c, v), "expected %s, got %s", expected, cw_qs(&d));
    cw_desc_done(&d);
  } else if (!ok) {
    cw_report_type(c, v, expected);
  }
out:
  free(s);
  buf_cleanup(&exp);
  return ok;
}

const char *cw_enum_name(const struct cw_enum *e, int value) {
  for (size_t i = 0; e[i].name; i++) {
    if (e[i].value == value) {
      return e[i].name;
    }
  }
  return "unknown";
}

static int cmp_nref(const void *a, const void *b) {
  const struct cw_nref *x = a, *y = b;
  int r = strcmp(x->name, y->name);
  if (r) {
    return r;
  }
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

void cw_find_repeats(struct cw_nref *refs, size_t n, size_t *first) {
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

/* The items of array v as non-empty strings, NULL where an item is not one
 * (reported): a malloc'd array of *n, with the items in *items (the caller
 * frees both). NULL after reporting that v is not an array or has more
 * than max items, or on ENOMEM. */
static char **get_names(struct cw *c, struct cw_val v, size_t max, size_t *n,
                        struct cw_val **items) {
  *items = NULL;
  *n = 0;
  if (!cJSON_IsArray(v.j)) {
    cw_report_type(c, v, "an array of strings");
    return NULL;
  }
  *items = cw_children(c, v, n);
  if (!*items) {
    return NULL;
  }
  char **all = NULL;
  if (*n > max) {
    cw_report(c, cw_voff(c, v), "at most %zu items are allowed, got %zu", max,
              *n);
  } else if (!(all = calloc(*n ? *n : 1, sizeof *all))) {
    c->nomem = true;
  }
  for (size_t i = 0; all && i < *n; i++) {
    size_t mark = cw_path_index(c, i);
    all[i] = cw_get_name(c, (*items)[i], "a string");
    cw_path_pop(c, mark);
  }
  if (!all) {
    free(*items);
    *items = NULL;
    *n = 0;
  }
  return all;
}

char **cw_get_names(struct cw *c, struct cw_val v, size_t *n) {
  struct cw_val *items;
  char **all = get_names(c, v, SIZE_MAX, n, &items);
  free(items);
  return all;
}

void cw_get_string_list(struct cw *c, struct cw_val v, char ***out,
                        size_t *nout) {
  size_t n;
  struct cw_val *items;
  char **all = get_names(c, v, MAX_LIST, &n, &items);
  if (!all) {
    return;
  }
  char **list = calloc(n ? n : 1, sizeof *list);
  struct cw_nref *refs = malloc((n ? n : 1) * sizeof *refs);
  size_t *first = malloc((n ? n : 1) * sizeof *first);
  if (!list || !refs || !first) {
    c->nomem = true;
    cw_free_list(all, n);
    free(list);
    free(refs);
    free(first);
    free(items);
    return;
  }
  size_t nrefs = 0;
  for (size_t i = 0; i < n; i++) {
    if (all[i]) {
      refs[nrefs++] = (struct cw_nref){all[i], i};
    }
    first[i] = SIZE_MAX;
  }
  cw_find_repeats(refs, nrefs, first);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (all[i] && first[i] != SIZE_MAX) {
      size_t mark = cw_path_index(c, i);
      struct cw_desc d;
      cw_quoted(c, all[i], &d);
      cw_report(c, cw_voff(c, items[i]), "%s is listed twice (first at [%zu])",
                cw_qs(&d), first[i]);
      cw_desc_done(&d);
      cw_path_pop(c, mark);
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

void cw_free_list(char **list, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(list[i]);
  }
  free(list);
}

void cw_free_kv(struct config_kv *kv, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(kv[i].key);
    free(kv[i].value);
  }
  free(kv);
}

bool cw_grow(void **arr, size_t elem, size_t n, size_t *cap) {
  if (n < *cap) {
    return true;
  }
  size_t ncap = *cap ? *cap * 2 : 16;
  void *p = realloc(*arr, ncap * elem);
  if (!p) {
    return false;
  }
  *arr = p;
  *cap = ncap;
  return true;
}

/* The values of table keys. */

static void store_num(void *p, enum cw_store st, int64_t x) {
  switch (st) {
    case CW_AS_INT:
      *(int *)p = (int)x;
      break;
    case CW_AS_U32:
      *(uint32_t *)p = (uint32_t)x;
      break;
    case CW_AS_I64:
      *(int64_t *)p = x;
      break;
    case CW_AS_SIZE:
      *(size_t *)p = (size_t)x;
      break;
  }
}

static void set_str(struct cw *c, const struct cw_key *k, struct cw_val v,
                    void *p) {
  /* Expressions are taken as written: no ${NAME}, so that columns in
   * messages match the file. */
  bool expr = k->type == CW_EXPR;
  char *s = cw_get_str(c, v, expr ? "an expression string" : "a string", !expr);
  if (!s) {
    return;
  }
  if (!*s) {
    free(s);
    /* An optional setting left empty (often through an empty environment
     * variable) is the same as leaving it out; one that has a default or
     * must be given cannot be empty. The value stays as it was. */
    if (expr || k->def_str || (k->flags & (CW_REQ | CW_NONEMPTY))) {
      cw_report(c, cw_voff(c, v), "must not be empty");
    }
    return;
  }
  if ((k->flags & CW_NAME) && name_has_control(c, v, s)) {
    free(s);
    return;
  }
  char **dst = p;
  free(*dst);
  *dst = s;
}

/* "0, 1 or 2" for small sets, else "an integer from 1 to 65535". */
static void int_expected(const struct cw_key *k, char *out, size_t n) {
  if (k->max - k->min <= 2) {
    size_t used = 0;
    for (int64_t x = k->min; x <= k->max && used < n; x++) {
      const char *sep = x == k->min ? "" : x == k->max ? " or " : ", ";
      int w = snprintf(out + used, n - used, "%s%" PRId64, sep, x);
      used += w > 0 ? (size_t)w : 0;
    }
    return;
  }
  snprintf(out, n, "an integer from %" PRId64 " to %" PRId64, k->min, k->max);
}

static void set_int(struct cw *c, const struct cw_key *k, struct cw_val v,
                    void *p) {
  int64_t x;
  if (!cw_get_int(v.j, &x) || x < k->min || x > k->max) {
    char exp[96];
    int_expected(k, exp, sizeof exp);
    cw_report_type(c, v, exp);
    return;
  }
  store_num(p, k->store, x);
}

static void set_dur(struct cw *c, const struct cw_key *k, struct cw_val v,
                    void *p) {
  char *s = cw_get_str(c, v, "a duration string such as \"30s\"", true);
  if (!s) {
    return;
  }
  struct cw_desc d;
  cw_quoted(c, s, &d);
  int64_t ms;
  int rc = config__parse_duration(s, &ms);
  if (rc == IOCD_EPARSE) {
    cw_report(c, cw_voff(c, v),
              "%s is not a duration (use e.g. \"500ms\", \"10s\", \"5m\")",
              cw_qs(&d));
  } else if (rc || ms < k->min || ms > k->max) {
    char lo[32], hi[32];
    config__format_duration(k->min, lo, sizeof lo);
    config__format_duration(k->max, hi, sizeof hi);
    cw_report(c, cw_voff(c, v), "expected a duration from %s to %s, got %s", lo,
              hi, cw_qs(&d));
  } else if (ms % k->unit) {
    cw_report(c, cw_voff(c, v), "%s is not a whole number of seconds",
              cw_qs(&d));
  } else {
    store_num(p, k->store, ms / k->unit);
  }
  cw_desc_done(&d);
  free(s);
}

static void set_size(struct cw *c, const struct cw_key *k, struct cw_val v,
                     void *p) {
  static const char hint[] =
      "use a number of bytes or e.g. \"64KiB\", \"1MiB\", \"2GiB\"";
  int64_t x = 0;
  struct cw_desc d;
  int rc;
  if (cJSON_IsNumber(v.j)) {
    cw_describe(c, v, &d);
    rc = cw_get_int(v.j, &x) && x >= 0 ? IOCD_OK : IOCD_EPARSE;
  } else if (cJSON_IsString(v.j)) {
    char *s = cw_get_str(c, v, "a size", true);
    if (!s) {
      return;
    }
    cw_quoted(c, s, &d);
    rc = config__parse_size(s, &x);
    free(s);
  } else {
    cw_report_type(c, v, "a size (a number of bytes or e.g. \"64KiB\")");
    return;
  }
  if (rc == IOCD_EPARSE) {
    cw_report(c, cw_voff(c, v), "%s is not a size (%s)", cw_qs(&d), hint);
  } else if (rc || x < k->min || x > k->max || (uint64_t)x > SIZE_MAX) {
    char lo[32], hi[32];
    config__format_size(k->min, lo, sizeof lo);
    config__format_size(k->max, hi, sizeof hi);
    cw_report(c, cw_voff(c, v), "expected a size from %s to %s, got %s", lo, hi,
              cw_qs(&d));
  } else {
    store_num(p, CW_AS_SIZE, x);
  }
  cw_desc_done(&d);
}

static void set_value(struct cw *c, const struct cw_key *k, struct cw_val v,
                      void *base) {
  void *p = (char *)base + k->off;
  switch (k->type) {
    case CW_STR:
    case CW_EXPR:
      set_str(c, k, v, p);
      break;
    case CW_BOOL:
      if (cJSON_IsBool(v.j)) {
        *(bool *)p = cJSON_IsTrue(v.j);
      } else {
        cw_report_type(c, v, "true or false");
      }
      break;
    case CW_INT:
      set_int(c, k, v, p);
      break;
    case CW_DUR:
      set_dur(c, k, v, p);
      break;
    case CW_SIZE:
      set_size(c, k, v, p);
      break;
    case CW_ENUM: {
      int x;
      if (cw_get_enum(c, v, k->names, !(k->flags & CW_RAW), &x)) {
        *(int *)p = x;
      }
      break;
    }
    case CW_OBJ:
      cw_walk(c, v, k->obj, p);
      break;
    case CW_FN:
      k->set(c, v, base);
      break;
  }
}

void cw_defaults(struct cw *c, const struct cw_object *o, void *base) {
  for (size_t i = 0; i < o->nkeys; i++) {
    const struct cw_key *k = &o->keys[i];
    void *p = (char *)base + k->off;
    switch (k->type) {
      case CW_STR:
        if (k->def_str) {
          char **dst = p;
          free(*dst);
          *dst = strdup(k->def_str);
          c->nomem = c->nomem || !*dst;
        }
        break;
      case CW_BOOL:
        *(bool *)p = k->def != 0;
        break;
      case CW_INT:
        store_num(p, k->store, k->def);
        break;
      case CW_DUR:
        store_num(p, k->store, k->def / k->unit);
        break;
      case CW_SIZE:
        store_num(p, CW_AS_SIZE, k->def);
        break;
      case CW_ENUM:
        *(int *)p = (int)k->def;
        break;
      case CW_OBJ:
        cw_defaults(c, k->obj, p);
        break;
      case CW_EXPR:
      case CW_FN:
        break;
    }
  }
}

void cw_free_strings(const struct cw_object *o, void *base) {
  for (size_t i = 0; i < o->nkeys; i++) {
    const struct cw_key *k = &o->keys[i];
    void *p = (char *)base + k->off;
    if (k->type == CW_STR || k->type == CW_EXPR) {
      char **s = p;
      free(*s);
      *s = NULL;
    } else if (k->type == CW_OBJ) {
      cw_free_strings(k->obj, p);
    }
  }
}

const char *cw_suggest(const char *const *names, size_t n, const char *key) {
  const char *best = NULL;
  size_t bestd = SIZE_MAX;
  /* Names compare without diacritics and case too: "Buon Ma Thuot" is
   * three bytes' edits from nothing, but the same letters as
   * "Buôn Ma Thuột". */
  char *fkey = utf8_fold(key);
  for (size_t i = 0; i < n; i++) {
    size_t d = config__distance(key, names[i]);
    char *fname = fkey ? utf8_fold(names[i]) : NULL;
    if (fname) {
      size_t fd = config__distance(fkey, fname);
      d = fd < d ? fd : d;
      free(fname);
    }
    if (d < bestd) {
      bestd = d;
      best = names[i];
    }
  }
  free(fkey);
  if (!best || bestd > (strlen(best) <= 4 ? 1u : 2u)) {
    return NULL;
  }
  return best;
}

const char *cw_suggest_key(const struct cw_object *o, const char *key) {
  const char *names[CW_MAX_KEYS];
  size_t n = 0;
  for (size_t i = 0; i < o->nkeys && n < CW_MAX_KEYS; i++) {
    names[n++] = o->keys[i].name;
  }
  return cw_suggest(names, n, key);
}

/* Reports members whose key is not valid UTF-8 or repeats an earlier key
 * (cJSON would silently keep the first), in the order of the file, and
 * returns an array that marks them to be skipped; NULL on ENOMEM. */
static bool *bad_keys(struct cw *c, const struct cw_val *kids, size_t n) {
  bool *skip = calloc(n ? n : 1, sizeof *skip);
  struct cw_nref *refs = malloc((n ? n : 1) * sizeof *refs);
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
      cw_report(c, cw_koff(c, kids[i]), "key is not valid UTF-8");
      skip[i] = true;
      continue;
    }
    refs[nrefs++] = (struct cw_nref){k, i};
  }
  cw_find_repeats(refs, nrefs, first);
  for (size_t i = 0; i < n; i++) {
    if (skip[i] || first[i] == SIZE_MAX) {
      continue;
    }
    int line, col;
    config__lines_at(c->doc->lines, cw_koff(c, kids[first[i]]), &line, &col);
    size_t mark = cw_path_key(c, kids[i].j->string);
    cw_report(c, cw_koff(c, kids[i]), "duplicate key (first set at line %d)",
              line);
    cw_path_pop(c, mark);
    skip[i] = true;
  }
  free(refs);
  free(first);
  return skip;
}

bool cw_walk(struct cw *c, struct cw_val v, const struct cw_object *o,
             void *base) {
  assert(o->nkeys <= CW_MAX_KEYS);
  if (!cJSON_IsObject(v.j)) {
    cw_report_type(c, v, "an object");
    return false;
  }
  if (o->begin) {
    o->begin(base);
  }
  size_t n;
  struct cw_val *kids = cw_children(c, v, &n);
  bool *skip = kids ? bad_keys(c, kids, n) : NULL;
  if (!skip) {
    free(kids);
    return false;
  }
  bool seen[CW_MAX_KEYS] = {false};
  for (size_t i = 0; i < n; i++) {
    if (skip[i]) {
      continue;
    }
    const char *name = kids[i].j->string;
    const struct cw_key *k = NULL;
    for (size_t t = 0; t < o->nkeys; t++) {
      if (strcmp(o->keys[t].name, name) == 0) {
        k = &o->keys[t];
        break;
      }
    }
    size_t mark = cw_path_key(c, name);
    const char *hint = k ? NULL : cw_suggest_key(o, name);
    if (hint) {
      cw_report(c, cw_koff(c, kids[i]), "unknown key (did you mean \"%s\"?)",
                hint);
    } else if (!k && o->unknown_hint) {
      cw_report(c, cw_koff(c, kids[i]), "unknown key (%s)", o->unknown_hint);
    } else if (!k) {
      cw_report(c, cw_koff(c, kids[i]), "unknown key");
    } else if (!cJSON_IsNull(kids[i].j)) {
      /* null means "not set": the default stays. */
      seen[k - o->keys] = true;
      set_value(c, k, kids[i], base);
    }
    cw_path_pop(c, mark);
  }
  for (size_t t = 0; t < o->nkeys; t++) {
    if ((o->keys[t].flags & CW_REQ) && !seen[t]) {
      size_t mark = cw_path_key(c, o->keys[t].name);
      cw_report(c, cw_voff(c, v), "required key is missing");
      cw_path_pop(c, mark);
    }
  }
  free(skip);
  free(kids);
  if (o->check) {
    o->check(c, v, base);
  }
  return true;
}

void cw_skip(struct cw *c, struct cw_val v, void *base) {
  (void)c;
  (void)v;
  (void)base;
}

bool cw_member_room(struct cw *c, struct cw_val v, size_t elem, void **room) {
  if (!cJSON_IsObject(v.j)) {
    return true;
  }
  int n = cJSON_GetArraySize(v.j);
  *room = calloc(n > 0 ? (size_t)n : 1, elem);
  c->nomem = c->nomem || !*room;
  return *room != NULL;
}

void cw_walk_map(struct cw *c, struct cw_val v, const char *expected,
                 bool empty_ok, cw_member_fn *fn, void *base) {
  if (!cJSON_IsObject(v.j)) {
    cw_report_type(c, v, expected);
    return;
  }
  size_t n;
  struct cw_val *kids = cw_children(c, v, &n);
  bool *skip = kids ? bad_keys(c, kids, n) : NULL;
  for (size_t i = 0; skip && i < n; i++) {
    if (skip[i]) {
      continue;
    }
    const char *key = kids[i].j->string;
    if (!*key && !empty_ok) {
      cw_report(c, cw_koff(c, kids[i]), "empty name");
      continue;
    }
    size_t mark = cw_path_key(c, key);
    bool more = fn(c, key, kids[i], base);
    cw_path_pop(c, mark);
    if (!more) {
      break;
    }
  }
  free(skip);
  free(kids);
}

/* The byte offset in the document of character col (1-based) of the JSON
 * string whose opening quote is at q: escapes count as the one character
 * they stand for. Past the end: the closing quote. */
size_t config__string_char_off(const char *t, size_t len, size_t q, int col) {
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

/* Lists of objects. */

void *cw_get_objects(struct cw *c, struct cw_val v, const struct cw_object *o,
                     size_t elem, size_t max, const char *expected,
                     void (*init)(struct cw *c, void *item), size_t *n,
                     struct cw_val **items) {
  *n = 0;
  *items = NULL;
  if (!cJSON_IsArray(v.j)) {
    cw_report_type(c, v, expected);
    return NULL;
  }
  size_t k;
  struct cw_val *kids = cw_children(c, v, &k);
  if (!kids) {
    return NULL;
  }
  if (k > max) {
    cw_report(c, cw_voff(c, v), "at most %zu items are allowed, got %zu", max,
              k);
    free(kids);
    return NULL;
  }
  char *arr = calloc(k ? k : 1, elem);
  if (!arr) {
    c->nomem = true;
    free(kids);
    return NULL;
  }
  for (size_t i = 0; i < k; i++) {
    size_t mark = cw_path_index(c, i);
    init(c, arr + i * elem);
    cw_walk(c, kids[i], o, arr + i * elem);
    cw_path_pop(c, mark);
  }
  *n = k;
  *items = kids;
  return arr;
}

void cw_place_at(struct cw *c, struct cw_val item, const char *key,
                 struct config_place *p) {
  struct cw_val kv;
  bool has = cJSON_IsObject(item.j) && cw_find_child(c, item, key, &kv);
  cw_place(c, has ? cw_voff(c, kv) : cw_voff(c, item), p);
}

void cw_check_unique(struct cw *c, struct cw_val list, const char *what,
                     const char *const *names, size_t n) {
  struct cw_nref *refs = malloc((n ? n : 1) * sizeof *refs);
  size_t *first = malloc((n ? n : 1) * sizeof *first);
  struct cw_val *items = NULL;
  size_t k = 0;
  if (refs && first) {
    items = cw_children(c, list, &k);
  }
  if (!refs || !first || !items || k != n) {
    c->nomem = c->nomem || !refs || !first;
    free(refs);
    free(first);
    free(items);
    return;
  }
  size_t nrefs = 0;
  for (size_t i = 0; i < n; i++) {
    first[i] = SIZE_MAX;
    if (names[i]) {
      refs[nrefs++] = (struct cw_nref){names[i], i};
    }
  }
  cw_find_repeats(refs, nrefs, first);
  for (size_t i = 0; i < n; i++) {
    if (first[i] == SIZE_MAX) {
      continue;
    }
    struct cw_desc d;
    cw_quoted(c, names[i], &d);
    size_t mark = cw_path_index(c, i);
    cw_report_key(c, "name", cw_child_off(c, items[i], "name"),
                  "%s is already the name of %s[%zu]", cw_qs(&d), what,
                  first[i]);
    cw_path_pop(c, mark);
    cw_desc_done(&d);
  }
  free(refs);
  free(first);
  free(items);
}

/* Documents. */

static bool blank(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if ((unsigned char)s[i] > 32) {
      return false;
    }
  }
  return true;
}

/* Whether the text around offset at may hold a secret: a "password",
 * "token" or "headers" member within the SECRET_REACH bytes before it. The
 * snippet of a syntax error there is not shown, since it could be part of
 * the secret's value. */
#define SECRET_REACH 256
static bool near_secret(const char *t, size_t len, size_t at) {
  static const char *const keys[] = {"\"password\"", "\"token\"",
                                     "\"headers\""};
  size_t from = at > SECRET_REACH ? at - SECRET_REACH : 0;
  size_t to = at + 32 < len ? at + 32 : len;
  for (size_t i = from; i < to; i++) {
    for (size_t k = 0; t[i] == '"' && k < sizeof keys / sizeof keys[0]; k++) {
      size_t n = strlen(keys[k]);
      if (i + n > len || strncmp(t + i, keys[k], n) != 0) {
        continue;
      }
      size_t j = i + n;
      while (j < len && (unsigned char)t[j] <= 32) {
        j++;
      }
      if (j < len && t[j] == ':') {
        return true;
      }
    }
  }
  return false;
}

/* Reports a cJSON syntax error. cJSON's pointer can sit one byte past the
 * fault, or past the whitespace after it, so it backs up to the last thing
 * that was read and says "near". */
static void report_syntax(struct cw *c, const char *end) {
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
  } else if (at + n < len && n == 24) {
    /* Cut at a character boundary. */
    while (n > 0 && ((unsigned char)t[at + n] & 0xC0) == 0x80) {
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
  /* The two mistakes people make most in JSON, named: a comma after the
   * last member, and none between two. */
  for (size_t back = 0; back < 2 && back <= at; back++) {
    /* cJSON's pointer may be one past the closing bracket. */
    size_t pos = at - back, prev = pos;
    while (prev > 0 && (unsigned char)t[prev - 1] <= 32) {
      prev--;
    }
    char b = prev > 0 ? t[prev - 1] : '\0';
    char h = pos < len ? t[pos] : '\0';
    if (b == ',' && (h == '}' || h == ']')) {
      cw_report(c, prev - 1,
                "a comma after the last %s (JSON allows none before '%c')",
                h == '}' ? "member" : "item", h);
      return;
    }
  }
  size_t prev = at;
  while (prev > 0 && (unsigned char)t[prev - 1] <= 32) {
    prev--;
  }
  char before = prev > 0 ? t[prev - 1] : '\0';
  char here = at < len ? t[at] : '\0';
  bool secret = near_secret(t, len, at);
  if ((here == '"' || here == '{' || here == '[' || here == '-' ||
       (here >= '0' && here <= '9')) &&
      (before == '"' || before == '}' || before == ']' ||
       (before >= '0' && before <= '9') || before == 'e' || before == 'l')) {
    if (secret) {
      cw_report(c, at, "missing comma (near a secret, not shown)");
    } else {
      cw_report(c, at, "missing comma before '%s'", snip);
    }
    return;
  }
  if (secret) {
    cw_report(c, at, "syntax error (near a secret, not shown)");
  } else {
    cw_report(c, at, "syntax error near '%s'", snip);
  }
}

/* Replaces *s (cJSON's allocation) by its NFC form when that differs. */
static int nfc_string(char **s) {
  char *out = NULL;
  size_t n;
  int rc = *s ? utf8_nfc(*s, strlen(*s), &out, &n) : IOCD_OK;
  if (rc == IOCD_EINVAL) {
    return IOCD_OK; /* not UTF-8: reported where the value is read */
  }
  if (rc == IOCD_OK && out) {
    cJSON_free(*s);
    *s = out;
  }
  return rc;
}

/* Members whose values are taken byte for byte: a secret, a path, a host,
 * a URL or an address must reach the system as written (a password
 * normalized would no longer match, a file name stored decomposed would not
 * be found, a chat id or a mailbox is compared as bytes). */
static bool bytes_exact(const char *key) {
  static const char *const keys[] = {
      "password",  "token",       "username",   "url",           "host",
      "client_id", "listen",      "path",       "data_dir",      "ca_file",
      "ca_path",   "cert_file",   "key_file",   "rule_files",    "smtp_url",
      "base_url",  "grafana_url", "token_file", "password_file", "chat_id",
      "user_ids",  "from",        "to",         "topic_prefix",  "headers"};
  for (size_t i = 0; key && i < sizeof keys / sizeof keys[0]; i++) {
    if (strcmp(key, keys[i]) == 0) {
      return true;
    }
  }
  return false;
}

/* Every key, and every string but those of bytes_exact members, in Unicode
 * NFC, so that a name typed with combining accents is the same name as the
 * precomposed one that districts publish. The positions of values are
 * kept apart from the tree (config_posmap), so they are unchanged. exact
 * is inherited by the items of an array and the members of an object
 * (the values of "headers"). */
static int nfc_tree(cJSON *j, bool exact) {
  for (; j; j = j->next) {
    int rc = nfc_string(&j->string);
    bool keep = exact || bytes_exact(j->string);
    if (!rc && cJSON_IsString(j) && !keep) {
      rc = nfc_string(&j->valuestring);
    }
    if (!rc && j->child) {
      rc = nfc_tree(j->child, keep);
    }
    if (rc) {
      return rc;
    }
  }
  return IOCD_OK;
}

int cw_file_load(struct cw *c, struct cw_file *f, const char *text, size_t len,
                 const char *empty) {
  c->doc = &f->doc;
  f->doc.lines = &f->lines;
  f->doc.pm = &f->pm;
  f->copy = malloc(len + 1);
  if (!f->copy || config__lines_init(&f->lines, text, len)) {
    return IOCD_ENOMEM;
  }
  memcpy(f->copy, text, len);
  f->copy[len] = '\0';
  f->doc.text = f->copy;
  f->doc.len = len;
  const char *nul = memchr(text, '\0', len);
  if (nul) {
    cw_report(c, (size_t)(nul - text), "NUL byte in the file");
    return IOCD_EPARSE;
  }
  size_t bad;
  if (!utf8_valid(text, len, &bad)) {
    cw_report(c, bad,
              "byte 0x%02X is not UTF-8: save the file as UTF-8 (this is how "
              "a file in a legacy encoding such as Windows-1258, TCVN3 or "
              "VNI looks)",
              (unsigned char)text[bad]);
    return IOCD_EPARSE;
  }
  if (config__blank_comments(f->copy, len, &bad)) {
    cw_report(c, bad, "unterminated /* comment");
    return IOCD_EPARSE;
  }
  bad = config__find_nul_escape(f->copy, len);
  if (bad != SIZE_MAX) {
    cw_report(c, bad,
              "\\u0000 (NUL) in a string: iocd's strings cannot hold it, and "
              "everything after it would be lost");
    return IOCD_EPARSE;
  }
  if (empty && blank(f->copy, len)) {
    cw_report(c, SIZE_MAX, "%s", empty);
    return IOCD_EPARSE;
  }
  const char *end = NULL;
  f->json = cJSON_ParseWithOpts(f->copy, &end, 1);
  if (!f->json) {
    report_syntax(c, end);
    return IOCD_EPARSE;
  }
  return nfc_tree(f->json, false);
}

void cw_file_cleanup(struct cw_file *f) {
  free(f->copy);
  config__lines_cleanup(&f->lines);
  free(f->pm.v);
  cJSON_Delete(f->json);
  f->copy = NULL;
  f->pm.v = NULL;
  f->json = NULL;
}
