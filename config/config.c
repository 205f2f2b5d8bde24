/*
 * Loading and validating iocd's configuration. The keys of every object are
 * described by tables (name, type, bounds, default, where the value goes),
 * and one walker checks any object against its table, so unknown keys, wrong
 * types, ranges and defaults are handled the same way everywhere. Problems
 * are collected rather than returned at the first one, and each one names
 * its place as FILE:LINE:COL: JSON.PATH, so `iocd check` shows them all.
 */
#include "config/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_int.h"
#include "core/utf8.h"

#define CONFIG_MAX_FILE (16u << 20)
#define MAX_ERRORS 100
#define MAX_SUBS 10000
#define QUOTE_MAX 48
#define KEY_SHOW_MAX 64

/* Durations in the tables are in milliseconds. */
#define D_MS INT64_C(1)
#define D_S INT64_C(1000)
#define D_M (60 * D_S)
#define D_H (60 * D_M)
#define D_D (24 * D_H)
#define Z_KIB (INT64_C(1) << 10)
#define Z_MIB (INT64_C(1) << 20)
#define Z_GIB (INT64_C(1) << 30)

/* Enums are stored through an int lvalue; these keep that honest. */
_Static_assert(sizeof(enum mqtt_protocol) == sizeof(int), "enum size");
_Static_assert(sizeof(enum payload_format) == sizeof(int), "enum size");
_Static_assert(sizeof(enum time_unit) == sizeof(int), "enum size");
_Static_assert(sizeof(enum influx_api) == sizeof(int), "enum size");
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum log_format) == sizeof(int), "enum size");
_Static_assert(sizeof(enum field_type) == sizeof(int), "enum size");
_Static_assert(sizeof(enum journal_fsync) == sizeof(int), "enum size");
_Static_assert(sizeof(enum journal_when_full) == sizeof(int), "enum size");

struct errrec {
  size_t off;
  size_t seq;
  char *msg;
};

/* State of one load: the text, where its values are, the JSON path being
 * walked, and the problems found so far. */
struct ctx {
  const char *name; /* file name for messages */
  const char *text; /* comment-blanked copy that cJSON parsed */
  size_t len;
  struct config_lines lines; /* over the original text */
  struct config_posmap pm;
  struct buf path;
  struct errrec *errs;
  size_t nerrs, caperrs;
  size_t total; /* problems found, including those past MAX_ERRORS */
  bool nomem;
};

/* A JSON value and the index of its position node. */
struct val {
  const cJSON *j;
  size_t pi;
};

enum ktype { K_STR, K_BOOL, K_INT, K_DUR, K_SIZE, K_ENUM, K_OBJ, K_FN };
enum kstore { S_INT = 0, S_U32, S_I64, S_SIZE };

#define F_REQ 1u /* must be present */

struct enum_name {
  const char *name;
  int value;
};

struct object;
typedef void set_fn(struct ctx *c, struct val v, void *base);

/* One key of an object. off is where the value goes in the object's struct.
 * min, max and def are in the key's own terms: plain integers, milliseconds
 * for durations (stored divided by unit), bytes for sizes. */
struct key {
  const char *name;
  enum ktype type;
  size_t off;
  unsigned flags;
  enum kstore store;
  int64_t min, max;
  int64_t unit;
  int64_t def;
  const char *def_str;
  const struct enum_name *names;
  const struct object *obj;
  set_fn *set;
};

struct object {
  const struct key *keys;
  size_t nkeys;
  /* Runs when the object is present, before its keys are read. */
  void (*begin)(void *base);
  /* Cross-field checks, after its keys are read. */
  void (*check)(struct ctx *c, struct val v, void *base);
};

/* Reporting. */

static void vreport(struct ctx *c, size_t off, const char *fmt, va_list ap) {
  c->total++;
  if (c->nerrs >= MAX_ERRORS) {
    return;
  }
  struct buf b;
  buf_init(&b, 8192);
  int rc;
  if (off == SIZE_MAX) {
    rc = buf_printf(&b, "%s: ", c->name);
  } else {
    int line, col;
    config__lines_at(&c->lines, off, &line, &col);
    rc = buf_printf(&b, "%s:%d:%d: ", c->name, line, col);
  }
  if (!rc && c->path.len) {
    rc = buf_printf(&b, "%s: ", c->path.data);
  }
  if (!rc) {
    rc = buf_vprintf(&b, fmt, ap);
  }
  if (!rc && c->nerrs == c->caperrs) {
    size_t cap = c->caperrs ? c->caperrs * 2 : 16;
    struct errrec *e = realloc(c->errs, cap * sizeof *e);
    if (e) {
      c->errs = e;
      c->caperrs = cap;
    } else {
      rc = IOCD_ENOMEM;
    }
  }
  if (rc) {
    c->nomem = c->nomem || rc == IOCD_ENOMEM;
    buf_cleanup(&b);
    return;
  }
  c->errs[c->nerrs].off = off == SIZE_MAX ? 0 : off;
  c->errs[c->nerrs].seq = c->nerrs;
  c->errs[c->nerrs].msg = buf_detach(&b, NULL);
  c->nerrs++;
}

/* Adds "FILE:LINE:COL: PATH: message" for the byte at off (SIZE_MAX: no
 * position), with the JSON path being walked. */
static void report(struct ctx *c, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report(struct ctx *c, size_t off, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(c, off, fmt, ap);
  va_end(ap);
}

static void check_rc(struct ctx *c, int rc) {
  if (rc == IOCD_ENOMEM) {
    c->nomem = true;
  }
}

static int cmp_err(const void *a, const void *b) {
  const struct errrec *x = a, *y = b;
  if (x->off != y->off) {
    return x->off < y->off ? -1 : 1;
  }
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Hands the problems to the caller in file order. */
static void flush_errors(struct ctx *c, struct buf *errors) {
  if (c->nerrs > 1) {
    qsort(c->errs, c->nerrs, sizeof *c->errs, cmp_err);
  }
  for (size_t i = 0; i < c->nerrs; i++) {
    if (errors) {
      buf_printf(errors, "%s\n", c->errs[i].msg);
    }
    free(c->errs[i].msg);
  }
  if (errors && c->total > c->nerrs) {
    buf_printf(errors, "%s: %zu more problems not shown\n", c->name,
               c->total - c->nerrs);
  }
  free(c->errs);
  c->errs = NULL;
  c->nerrs = c->caperrs = 0;
}

/* Positions and children. */

static size_t voff(const struct ctx *c, struct val v) {
  return v.pi < c->pm.n ? c->pm.v[v.pi].value : 0;
}

static size_t koff(const struct ctx *c, struct val v) {
  if (v.pi < c->pm.n && c->pm.v[v.pi].key != SIZE_MAX) {
    return c->pm.v[v.pi].key;
  }
  return voff(c, v);
}

/* The children of an object or array with their positions, in order.
 * Returns a malloc'd array (possibly of 0 items), or NULL on ENOMEM. */
static struct val *children(struct ctx *c, struct val v, size_t *n) {
  size_t count = 0;
  for (const cJSON *j = v.j->child; j; j = j->next) {
    count++;
  }
  struct val *a = calloc(count ? count : 1, sizeof *a);
  if (!a) {
    c->nomem = true;
    return NULL;
  }
  size_t pi = v.pi + 1, i = 0;
  for (const cJSON *j = v.j->child; j; j = j->next) {
    a[i++] = (struct val){j, pi};
    pi = pi < c->pm.n ? c->pm.v[pi].end : pi;
  }
  *n = count;
  return a;
}

/* The first member named key of object v; false when absent or null. */
static bool find_child(struct ctx *c, struct val v, const char *key,
                       struct val *out) {
  size_t pi = v.pi + 1;
  for (const cJSON *j = v.j->child; j; j = j->next) {
    if (j->string && strcmp(j->string, key) == 0) {
      *out = (struct val){j, pi};
      return !cJSON_IsNull(j);
    }
    pi = pi < c->pm.n ? c->pm.v[pi].end : pi;
  }
  return false;
}

/* Where key's value is in object v, or v itself when it is absent. */
static size_t child_off(struct ctx *c, struct val v, const char *key) {
  struct val cv;
  return find_child(c, v, key, &cv) ? voff(c, cv) : voff(c, v);
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

/* Appends ".key" (or ["key"] for keys that are not plain names) and returns
 * the length to restore with path_pop. */
static size_t path_key(struct ctx *c, const char *key) {
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

static size_t path_index(struct ctx *c, size_t i) {
  size_t mark = c->path.len;
  check_rc(c, buf_printf(&c->path, "[%zu]", i));
  return mark;
}

static void path_pop(struct ctx *c, size_t mark) {
  buf_truncate(&c->path, mark);
}

/* Describing values in messages. */

struct desc {
  struct buf b;
};

/* What a value is, for "got ...": a number as written, a quoted string,
 * true, false, "an object", "an array" or "null". */
static const char *describe(struct ctx *c, struct val v, struct desc *d) {
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
    while (off + n < c->len && n < 32 && (unsigned char)c->text[off + n] > 32 &&
           !memchr(",]}", c->text[off + n], 3)) {
      n++;
    }
    rc = buf_append(&d->b, c->text + off, n);
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

static void desc_done(struct desc *d) {
  buf_cleanup(&d->b);
}

static void report_type(struct ctx *c, struct val v, const char *expected) {
  struct desc d;
  report(c, voff(c, v), "expected %s, got %s", expected, describe(c, v, &d));
  desc_done(&d);
}

static void quoted(struct ctx *c, const char *s, struct desc *d) {
  buf_init(&d->b, 1024);
  check_rc(c, config__quote(&d->b, s, QUOTE_MAX));
}

static const char *qs(struct desc *d) {
  return d->b.data ? d->b.data : "\"\"";
}

/* Reading values. */

/* Reads a string value, checks its UTF-8 and substitutes ${NAME}. Returns a
 * new string (the caller frees it), or NULL after reporting the problem. */
static char *get_string(struct ctx *c, struct val v, const char *expected) {
  if (!cJSON_IsString(v.j)) {
    report_type(c, v, expected);
    return NULL;
  }
  const char *s = v.j->valuestring;
  size_t bad;
  if (!utf8_valid(s, strlen(s), &bad)) {
    report(c, voff(c, v), "invalid UTF-8 at byte %zu of the string", bad + 1);
    return NULL;
  }
  struct iocd_err err;
  char *out = NULL;
  int rc = config__expand_env(s, &out, &err);
  if (rc == IOCD_ENOMEM) {
    c->nomem = true;
    return NULL;
  }
  if (rc) {
    report(c, voff(c, v), "%s", err.msg);
    return NULL;
  }
  if (!utf8_valid(out, strlen(out), &bad)) {
    report(c, voff(c, v),
           "invalid UTF-8 at byte %zu of the string after ${...} "
           "substitution",
           bad + 1);
    free(out);
    return NULL;
  }
  return out;
}

static bool get_int(const cJSON *j, int64_t *out) {
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

static void store_num(void *p, enum kstore st, int64_t x) {
  switch (st) {
    case S_INT:
      *(int *)p = (int)x;
      break;
    case S_U32:
      *(uint32_t *)p = (uint32_t)x;
      break;
    case S_I64:
      *(int64_t *)p = x;
      break;
    case S_SIZE:
      *(size_t *)p = (size_t)x;
      break;
  }
}

/* "0, 1 or 2" for small sets, else "an integer from 1 to 65535". */
static void int_expected(const struct key *k, char *out, size_t n) {
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

/* "json", "value" or "line". */
static void enum_expected(struct ctx *c, const struct enum_name *e,
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

static void set_str(struct ctx *c, const struct key *k, struct val v, void *p) {
  char *s = get_string(c, v, "a string");
  if (!s) {
    return;
  }
  if (!*s) {
    free(s);
    /* An optional setting left empty (often through an empty environment
     * variable) is the same as leaving it out. */
    if (k->def_str || (k->flags & F_REQ)) {
      report(c, voff(c, v), "must not be empty");
    }
    s = NULL;
  }
  char **dst = p;
  free(*dst);
  *dst = s;
}

static void set_int(struct ctx *c, const struct key *k, struct val v, void *p) {
  int64_t x;
  if (!get_int(v.j, &x) || x < k->min || x > k->max) {
    char exp[96];
    int_expected(k, exp, sizeof exp);
    report_type(c, v, exp);
    return;
  }
  store_num(p, k->store, x);
}

static void set_dur(struct ctx *c, const struct key *k, struct val v, void *p) {
  char *s = get_string(c, v, "a duration string such as \"30s\"");
  if (!s) {
    return;
  }
  struct desc d;
  quoted(c, s, &d);
  int64_t ms;
  int rc = config__parse_duration(s, &ms);
  if (rc == IOCD_EPARSE) {
    report(c, voff(c, v),
           "%s is not a duration (use e.g. \"500ms\", \"10s\", \"5m\")",
           qs(&d));
  } else if (rc || ms < k->min || ms > k->max) {
    char lo[32], hi[32];
    config__format_duration(k->min, lo, sizeof lo);
    config__format_duration(k->max, hi, sizeof hi);
    report(c, voff(c, v), "expected a duration from %s to %s, got %s", lo, hi,
           qs(&d));
  } else if (ms % k->unit) {
    report(c, voff(c, v), "%s is not a whole number of seconds", qs(&d));
  } else {
    store_num(p, k->store, ms / k->unit);
  }
  desc_done(&d);
  free(s);
}

static void set_size(struct ctx *c, const struct key *k, struct val v,
                     void *p) {
  static const char hint[] =
      "use a number of bytes or e.g. \"64KiB\", \"1MiB\", \"2GiB\"";
  int64_t x = 0;
  struct desc d;
  int rc;
  if (cJSON_IsNumber(v.j)) {
    describe(c, v, &d);
    rc = get_int(v.j, &x) && x >= 0 ? IOCD_OK : IOCD_EPARSE;
  } else if (cJSON_IsString(v.j)) {
    char *s = get_string(c, v, "a size");
    if (!s) {
      return;
    }
    quoted(c, s, &d);
    rc = config__parse_size(s, &x);
    free(s);
  } else {
    report_type(c, v, "a size (a number of bytes or e.g. \"64KiB\")");
    return;
  }
  if (rc == IOCD_EPARSE) {
    report(c, voff(c, v), "%s is not a size (%s)", qs(&d), hint);
  } else if (rc || x < k->min || x > k->max || (uint64_t)x > SIZE_MAX) {
    char lo[32], hi[32];
    config__format_size(k->min, lo, sizeof lo);
    config__format_size(k->max, hi, sizeof hi);
    report(c, voff(c, v), "expected a size from %s to %s, got %s", lo, hi,
           qs(&d));
  } else {
    store_num(p, S_SIZE, x);
  }
  desc_done(&d);
}

/* Looks a string value up in names; reports and returns false when it is
 * not one of them. */
static bool get_enum(struct ctx *c, struct val v, const struct enum_name *e,
                     int *out) {
  struct buf exp;
  buf_init(&exp, 4096);
  enum_expected(c, e, &exp);
  const char *expected = exp.data ? exp.data : "a name";
  bool ok = false;
  if (!cJSON_IsString(v.j)) {
    report_type(c, v, expected);
    goto out;
  }
  char *s = get_string(c, v, expected);
  if (!s) {
    goto out;
  }
  for (size_t i = 0; e[i].name; i++) {
    if (strcmp(s, e[i].name) == 0) {
      *out = e[i].value;
      ok = true;
      break;
    }
  }
  if (!ok) {
    struct desc d;
    quoted(c, s, &d);
    report(c, voff(c, v), "expected %s, got %s", expected, qs(&d));
    desc_done(&d);
  }
  free(s);
out:
  buf_cleanup(&exp);
  return ok;
}

static void walk_object(struct ctx *c, struct val v, const struct object *o,
                        void *base);

static void set_value(struct ctx *c, const struct key *k, struct val v,
                      void *base) {
  void *p = (char *)base + k->off;
  switch (k->type) {
    case K_STR:
      set_str(c, k, v, p);
      break;
    case K_BOOL:
      if (cJSON_IsBool(v.j)) {
        *(bool *)p = cJSON_IsTrue(v.j);
      } else {
        report_type(c, v, "true or false");
      }
      break;
    case K_INT:
      set_int(c, k, v, p);
      break;
    case K_DUR:
      set_dur(c, k, v, p);
      break;
    case K_SIZE:
      set_size(c, k, v, p);
      break;
    case K_ENUM: {
      int x;
      if (get_enum(c, v, k->names, &x)) {
        *(int *)p = x;
      }
      break;
    }
    case K_OBJ:
      walk_object(c, v, k->obj, p);
      break;
    case K_FN:
      k->set(c, v, base);
      break;
  }
}

static void apply_defaults(struct ctx *c, const struct object *o, void *base) {
  for (size_t i = 0; i < o->nkeys; i++) {
    const struct key *k = &o->keys[i];
    void *p = (char *)base + k->off;
    switch (k->type) {
      case K_STR:
        if (k->def_str) {
          char **dst = p;
          free(*dst);
          *dst = strdup(k->def_str);
          c->nomem = c->nomem || !*dst;
        }
        break;
      case K_BOOL:
        *(bool *)p = k->def != 0;
        break;
      case K_INT:
        store_num(p, k->store, k->def);
        break;
      case K_DUR:
        store_num(p, k->store, k->def / k->unit);
        break;
      case K_SIZE:
        store_num(p, S_SIZE, k->def);
        break;
      case K_ENUM:
        *(int *)p = (int)k->def;
        break;
      case K_OBJ:
        apply_defaults(c, k->obj, p);
        break;
      case K_FN:
        break;
    }
  }
}

static void free_strings(const struct object *o, void *base) {
  for (size_t i = 0; i < o->nkeys; i++) {
    const struct key *k = &o->keys[i];
    void *p = (char *)base + k->off;
    if (k->type == K_STR) {
      char **s = p;
      free(*s);
      *s = NULL;
    } else if (k->type == K_OBJ) {
      free_strings(k->obj, p);
    }
  }
}

struct keyref {
  const char *key;
  size_t idx;
};

static int cmp_keyref(const void *a, const void *b) {
  const struct keyref *x = a, *y = b;
  int r = strcmp(x->key, y->key);
  if (r) {
    return r;
  }
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Reports members of an object whose key is not valid UTF-8 or repeats an
 * earlier key (cJSON would silently keep the first), and returns an array
 * that marks them to be skipped; NULL on ENOMEM. */
static bool *bad_keys(struct ctx *c, const struct val *kids, size_t n) {
  bool *skip = calloc(n ? n : 1, sizeof *skip);
  struct keyref *refs = malloc((n ? n : 1) * sizeof *refs);
  if (!skip || !refs) {
    c->nomem = true;
    free(skip);
    free(refs);
    return NULL;
  }
  size_t nrefs = 0;
  for (size_t i = 0; i < n; i++) {
    const char *k = kids[i].j->string;
    if (!utf8_valid(k, strlen(k), NULL)) {
      report(c, koff(c, kids[i]), "key is not valid UTF-8");
      skip[i] = true;
      continue;
    }
    refs[nrefs++] = (struct keyref){k, i};
  }
  qsort(refs, nrefs, sizeof *refs, cmp_keyref);
  for (size_t i = 1; i < nrefs; i++) {
    size_t first = i - 1;
    while (i < nrefs && strcmp(refs[i].key, refs[first].key) == 0) {
      struct val dup = kids[refs[i].idx];
      int line, col;
      config__lines_at(&c->lines, koff(c, kids[refs[first].idx]), &line, &col);
      size_t mark = path_key(c, refs[i].key);
      report(c, koff(c, dup), "duplicate key (first set at line %d)", line);
      path_pop(c, mark);
      skip[refs[i].idx] = true;
      i++;
    }
  }
  free(refs);
  return skip;
}

static const char *suggest(const struct object *o, const char *key) {
  const char *best = NULL;
  size_t bestd = SIZE_MAX;
  for (size_t i = 0; i < o->nkeys; i++) {
    size_t d = config__distance(key, o->keys[i].name);
    if (d < bestd) {
      bestd = d;
      best = o->keys[i].name;
    }
  }
  if (!best || bestd > (strlen(best) <= 4 ? 1u : 2u)) {
    return NULL;
  }
  return best;
}

/* Checks object v against o's table and stores what it finds in base. */
static void walk_object(struct ctx *c, struct val v, const struct object *o,
                        void *base) {
  if (!cJSON_IsObject(v.j)) {
    report_type(c, v, "an object");
    return;
  }
  if (o->begin) {
    o->begin(base);
  }
  size_t n;
  struct val *kids = children(c, v, &n);
  bool *skip = kids ? bad_keys(c, kids, n) : NULL;
  bool *seen = calloc(o->nkeys, sizeof *seen);
  if (!skip || !seen) {
    c->nomem = true;
    free(seen);
    free(skip);
    free(kids);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    if (skip[i]) {
      continue;
    }
    const char *name = kids[i].j->string;
    const struct key *k = NULL;
    for (size_t t = 0; t < o->nkeys; t++) {
      if (strcmp(o->keys[t].name, name) == 0) {
        k = &o->keys[t];
        seen[t] = true;
        break;
      }
    }
    size_t mark = path_key(c, name);
    if (!k) {
      const char *hint = suggest(o, name);
      if (hint) {
        report(c, koff(c, kids[i]), "unknown key (did you mean \"%s\"?)", hint);
      } else {
        report(c, koff(c, kids[i]), "unknown key");
      }
    } else if (cJSON_IsNull(kids[i].j)) {
      /* null means "not set": the default stays. */
      seen[k - o->keys] = false;
    } else {
      set_value(c, k, kids[i], base);
    }
    path_pop(c, mark);
  }
  for (size_t t = 0; t < o->nkeys; t++) {
    if ((o->keys[t].flags & F_REQ) && !seen[t]) {
      size_t mark = path_key(c, o->keys[t].name);
      report(c, voff(c, v), "required key is missing");
      path_pop(c, mark);
    }
  }
  free(seen);
  free(skip);
  free(kids);
  if (o->check) {
    o->check(c, v, base);
  }
}

/* The tables. */

static const struct enum_name log_level_names[] = {
    {"error", LOG_ERROR}, {"warn", LOG_WARN}, {"info", LOG_INFO},
    {"debug", LOG_DEBUG}, {NULL, 0},
};

static const struct enum_name log_format_names[] = {
    {"text", LOG_FMT_TEXT},
    {"json", LOG_FMT_JSON},
    {NULL, 0},
};

static const struct enum_name protocol_names[] = {
    {"5", MQTT_PROTO_V5},
    {"3.1.1", MQTT_PROTO_V311},
    {NULL, 0},
};

static const struct enum_name format_names[] = {
    {"json", FORMAT_JSON},   {"value", FORMAT_VALUE}, {"line", FORMAT_LINE},
    {"senml", FORMAT_SENML}, {"auto", FORMAT_AUTO},   {NULL, 0},
};

/* What "auto" falls back to cannot itself be "auto". */
static const struct enum_name fallback_names[] = {
    {"json", FORMAT_JSON},
    {"value", FORMAT_VALUE},
    {"line", FORMAT_LINE},
    {"senml", FORMAT_SENML},
    {NULL, 0},
};

static const struct enum_name time_unit_names[] = {
    {"auto", TIME_AUTO}, {"s", TIME_S},   {"ms", TIME_MS},
    {"us", TIME_US},     {"ns", TIME_NS}, {"rfc3339", TIME_RFC3339},
    {NULL, 0},
};

static const struct enum_name number_unit_names[] = {
    {"s", TIME_S}, {"ms", TIME_MS}, {"us", TIME_US}, {"ns", TIME_NS}, {NULL, 0},
};

static const struct enum_name fsync_names[] = {
    {"interval", JOURNAL_FSYNC_INTERVAL},
    {"never", JOURNAL_FSYNC_NEVER},
    {"always", JOURNAL_FSYNC_ALWAYS},
    {NULL, 0},
};

static const struct enum_name when_full_names[] = {
    {"pause", JOURNAL_FULL_PAUSE},
    {"drop_oldest", JOURNAL_FULL_DROP_OLDEST},
    {NULL, 0},
};

static const struct enum_name field_type_names[] = {
    {"float", FIELD_FLOAT},
    {"integer", FIELD_INT},
    {"boolean", FIELD_BOOL},
    {"string", FIELD_STRING},
    {NULL, 0},
};

#define KSTR(n, t, f, d) \
  { .name = n, .type = K_STR, .off = offsetof(t, f), .def_str = d }
#define KREQ(n, t, f) \
  { .name = n, .type = K_STR, .off = offsetof(t, f), .flags = F_REQ }
#define KBOOL(n, t, f, d) \
  { .name = n, .type = K_BOOL, .off = offsetof(t, f), .def = d }
#define KINT(n, t, f, st, lo, hi, d)                                         \
  {                                                                          \
    .name = n, .type = K_INT, .off = offsetof(t, f), .store = st, .min = lo, \
    .max = hi, .def = d                                                      \
  }
#define KDUR(n, t, f, st, u, lo, hi, d)                                      \
  {                                                                          \
    .name = n, .type = K_DUR, .off = offsetof(t, f), .store = st, .unit = u, \
    .min = lo, .max = hi, .def = d                                           \
  }
#define KSIZE(n, t, f, lo, hi, d)                                           \
  {                                                                         \
    .name = n, .type = K_SIZE, .off = offsetof(t, f), .min = lo, .max = hi, \
    .def = d                                                                \
  }
#define KENUM(n, t, f, e, d) \
  { .name = n, .type = K_ENUM, .off = offsetof(t, f), .names = e, .def = d }
#define KOBJ(n, t, f, o) \
  { .name = n, .type = K_OBJ, .off = offsetof(t, f), .obj = o }
#define KFN(n, fn) \
  { .name = n, .type = K_FN, .set = fn }

#define OBJECT(keys, begin, check) \
  { keys, sizeof(keys) / sizeof(keys[0]), begin, check }

/* A section that can be switched off is on as soon as it is present, unless
 * it says "enabled": false. */
static void tls_begin(void *base) {
  ((struct config_tls *)base)->enabled = true;
}

static void influx_begin(void *base) {
  ((struct config_influx *)base)->enabled = true;
}

static void file_begin(void *base) {
  ((struct config_file_output *)base)->enabled = true;
}

static void tls_check(struct ctx *c, struct val v, void *base);
static void mqtt_check(struct ctx *c, struct val v, void *base);
static void influx_check(struct ctx *c, struct val v, void *base);
static void api_check(struct ctx *c, struct val v, void *base);
static void journal_check(struct ctx *c, struct val v, void *base);
static void set_subs(struct ctx *c, struct val v, void *base);
static void set_tag_keys(struct ctx *c, struct val v, void *base);
static void set_tags(struct ctx *c, struct val v, void *base);
static void set_types(struct ctx *c, struct val v, void *base);

#define T struct config_tls
static const struct key tls_keys[] = {
    KBOOL("enabled", T, enabled, false),
    KSTR("ca_file", T, ca_file, NULL),
    KSTR("ca_path", T, ca_path, NULL),
    KSTR("cert_file", T, cert_file, NULL),
    KSTR("key_file", T, key_file, NULL),
    KBOOL("verify_hostname", T, verify_hostname, true),
};
#undef T
static const struct object tls_object = OBJECT(tls_keys, tls_begin, tls_check);

#define T struct config_mqtt
static const struct key mqtt_keys[] = {
    KSTR("host", T, host, "127.0.0.1"),
    /* 0 until the end of the load, which picks 1883 or 8883. */
    KINT("port", T, port, S_INT, 1, 65535, 0),
    KSTR("client_id", T, client_id, NULL),
    KENUM("protocol", T, protocol, protocol_names, MQTT_PROTO_V5),
    KSTR("username", T, username, NULL),
    KSTR("password", T, password, NULL),
    KDUR("keepalive", T, keepalive_s, S_INT, D_S, 5 * D_S, D_H, 30 * D_S),
    KBOOL("clean_start", T, clean_start, false),
    KDUR("session_expiry", T, session_expiry_s, S_U32, D_S, 0,
         INT64_C(4294967295) * D_S, D_D),
    KDUR("reconnect_min", T, reconnect_min_ms, S_INT, D_MS, 10, D_H, 500),
    KDUR("reconnect_max", T, reconnect_max_ms, S_INT, D_MS, 100, D_D, 30 * D_S),
    KDUR("idle_timeout", T, idle_timeout_s, S_INT, D_S, 0, D_D, 5 * D_M),
    KOBJ("tls", T, tls, &tls_object),
};
#undef T
static const struct object mqtt_object = OBJECT(mqtt_keys, NULL, mqtt_check);

#define T struct config
static const struct key log_keys[] = {
    KENUM("level", T, log_level, log_level_names, LOG_INFO),
    KENUM("format", T, log_format, log_format_names, LOG_FMT_TEXT),
};
#undef T
static const struct object log_object = OBJECT(log_keys, NULL, NULL);

#define T struct config_limits
static const struct key limits_keys[] = {
    KSIZE("max_payload", T, max_payload_bytes, 16, 256 * Z_MIB, 64 * Z_KIB),
    KINT("max_series", T, max_series, S_SIZE, 1, 100000000, 100000),
    KINT("max_json_depth", T, max_json_depth, S_INT, 1, 64, 8),
    KINT("max_fields", T, max_fields, S_SIZE, 1, 100000, 256),
    KDUR("max_future", T, max_future_s, S_I64, D_S, 0, 366 * D_D, 10 * D_M),
    KDUR("max_past", T, max_past_s, S_I64, D_S, D_S, 36600 * D_D, 366 * D_D),
    KINT("log_burst", T, log_burst, S_INT, 1, 100000, 10),
    KDUR("log_window", T, log_window_s, S_INT, D_S, D_S, D_H, 10 * D_S),
};
#undef T
static const struct object limits_object = OBJECT(limits_keys, NULL, NULL);

#define T struct config_subscription
static const struct key sub_keys[] = {
    KSTR("name", T, name, NULL),
    KREQ("topic", T, topic),
    KINT("qos", T, qos, S_INT, 0, 2, 1),
    KENUM("format", T, format, format_names, FORMAT_JSON),
    KENUM("fallback_format", T, fallback, fallback_names, FORMAT_JSON),
    KSTR("measurement", T, measurement, NULL),
    KSTR("field", T, field, "value"),
    KSTR("time_key", T, time_key, "time"),
    KENUM("time_unit", T, time_unit, time_unit_names, TIME_AUTO),
    KENUM("time_unit_numbers", T, time_unit_numbers, number_unit_names, TIME_S),
    KSTR("measurement_key", T, measurement_key, NULL),
    KFN("tag_keys", set_tag_keys),
    KFN("tags", set_tags),
    KFN("types", set_types),
    KBOOL("allow_strings", T, allow_strings, false),
    KSTR("dead_letter", T, dead_letter, NULL),
};
#undef T
static const struct object sub_object = OBJECT(sub_keys, NULL, NULL);

#define T struct config_influx
static const struct key influx_keys[] = {
    KBOOL("enabled", T, enabled, false),
    KSTR("url", T, url, "http://127.0.0.1:8086"),
    KINT("api", T, api, S_INT, 1, 2, INFLUX_V1),
    KSTR("database", T, database, NULL),
    KSTR("retention_policy", T, retention_policy, NULL),
    KSTR("username", T, username, NULL),
    KSTR("password", T, password, NULL),
    KBOOL("create_database", T, create_database, true),
    KSTR("org", T, org, NULL),
    KSTR("bucket", T, bucket, NULL),
    KSTR("token", T, token, NULL),
    KBOOL("gzip", T, gzip, true),
    KDUR("timeout", T, timeout_ms, S_INT, D_MS, 100, 10 * D_M, 10 * D_S),
    KINT("batch_points", T, batch_points, S_INT, 1, 1000000, 5000),
    KSIZE("batch_bytes", T, batch_bytes, Z_KIB, 256 * Z_MIB, Z_MIB),
    KDUR("flush_interval", T, flush_interval_ms, S_INT, D_MS, 10, D_H, D_S),
    KDUR("retry_min", T, retry_min_ms, S_INT, D_MS, 10, D_H, 500),
    KDUR("retry_max", T, retry_max_ms, S_INT, D_MS, 100, D_D, 60 * D_S),
    KINT("max_in_flight", T, max_in_flight, S_INT, 1, 64, 2),
    KSIZE("buffer", T, buffer_bytes, Z_MIB, 64 * Z_GIB, 64 * Z_MIB),
    KSTR("ca_file", T, ca_file, NULL),
    KBOOL("tls_verify", T, tls_verify, true),
};
#undef T
static const struct object influx_object =
    OBJECT(influx_keys, influx_begin, influx_check);

#define T struct config_file_output
static const struct key file_keys[] = {
    KBOOL("enabled", T, enabled, false),
    KSTR("path", T, path, "-"),
};
#undef T
static const struct object file_object = OBJECT(file_keys, file_begin, NULL);

#define T struct config_api
static const struct key api_keys[] = {
    KBOOL("enabled", T, enabled, true),
    KSTR("listen", T, listen, "127.0.0.1:8080"),
};
#undef T
static const struct object api_object = OBJECT(api_keys, NULL, api_check);

#define T struct config_journal
static const struct key journal_keys[] = {
    KBOOL("enabled", T, enabled, true),
    KSIZE("segment_bytes", T, segment_bytes, 4 * Z_KIB, Z_GIB, 16 * Z_MIB),
    KSIZE("max_bytes", T, max_bytes, 64 * Z_KIB, 65536 * Z_GIB, Z_GIB),
    KSIZE("memory", T, memory_bytes, 64 * Z_KIB, 64 * Z_GIB, 64 * Z_MIB),
    KENUM("fsync", T, fsync, fsync_names, JOURNAL_FSYNC_INTERVAL),
    KDUR("fsync_interval", T, fsync_interval_ms, S_INT, D_MS, 10, D_H, D_S),
    KENUM("when_full", T, when_full, when_full_names, JOURNAL_FULL_PAUSE),
    KINT("replay_rate", T, replay_rate, S_I64, 0, 1000000000, 0),
};
#undef T
static const struct object journal_object =
    OBJECT(journal_keys, NULL, journal_check);

/* The rules sections need every rule file and the whole main file (a rule
 * may use a parameter defined after it), so config__load_rules reads them
 * after the walk; here they are only known keys. */
static void rules_section(struct ctx *c, struct val v, void *base) {
  (void)c;
  (void)v;
  (void)base;
}

#define T struct config
static const struct key root_keys[] = {
    KSTR("data_dir", T, data_dir, "./var/iocd"),
    /* log.level and log.format live in struct config itself. */
    {.name = "log", .type = K_OBJ, .off = 0, .obj = &log_object},
    KDUR("stats_interval", T, stats_interval_s, S_INT, D_S, 0, D_D, 60 * D_S),
    KDUR("shutdown_timeout", T, shutdown_timeout_ms, S_INT, D_MS, 0, D_H,
         10 * D_S),
    KOBJ("mqtt", T, mqtt, &mqtt_object),
    KFN("subscriptions", set_subs),
    KOBJ("limits", T, limits, &limits_object),
    KOBJ("influxdb", T, influx, &influx_object),
    KOBJ("file", T, file, &file_object),
    KOBJ("api", T, api, &api_object),
    KOBJ("journal", T, journal, &journal_object),
    /* Read by rules_config.c once the whole file is walked. */
    KFN("calendar", rules_section),
    KFN("sources", rules_section),
    KFN("rule_engine", rules_section),
    KFN("params", rules_section),
    KFN("rules", rules_section),
    KFN("rule_files", rules_section),
};
#undef T
static const struct object root_object = OBJECT(root_keys, NULL, NULL);

/* Cross-field checks. Each points at the value that is wrong, or at the
 * object when the problem is something missing from it. */

static void report_key(struct ctx *c, const char *key, size_t off,
                       const char *msg) {
  size_t mark = path_key(c, key);
  report(c, off, "%s", msg);
  path_pop(c, mark);
}

static void tls_check(struct ctx *c, struct val v, void *base) {
  struct config_tls *t = base;
  if (t->cert_file && !t->key_file) {
    report_key(c, "key_file", voff(c, v),
               "required when mqtt.tls.cert_file is set");
  }
  if (t->key_file && !t->cert_file) {
    report_key(c, "cert_file", voff(c, v),
               "required when mqtt.tls.key_file is set");
  }
}

/* Reports "min_key: X is more than PREFIX.max_key (Y)" at min_key's value,
 * or at max_key's when min_key kept its default. */
static void check_order(struct ctx *c, struct val v, const char *prefix,
                        const char *min_key, int64_t min_ms,
                        const char *max_key, int64_t max_ms) {
  if (min_ms <= max_ms) {
    return;
  }
  struct val cv;
  size_t off =
      find_child(c, v, min_key, &cv) ? voff(c, cv) : child_off(c, v, max_key);
  char a[32], b[32];
  config__format_duration(min_ms, a, sizeof a);
  config__format_duration(max_ms, b, sizeof b);
  size_t mark = path_key(c, min_key);
  report(c, off, "%s is more than %s.%s (%s)", a, prefix, max_key, b);
  path_pop(c, mark);
}

static void mqtt_check(struct ctx *c, struct val v, void *base) {
  struct config_mqtt *m = base;
  check_order(c, v, "mqtt", "reconnect_min", m->reconnect_min_ms,
              "reconnect_max", m->reconnect_max_ms);
}

static void influx_check(struct ctx *c, struct val v, void *base) {
  struct config_influx *in = base;
  if (!in->enabled) {
    return;
  }
  /* With a bad "api" the default would stand in for it; what it requires
   * would then be noise next to the real mistake. */
  struct val av;
  int64_t api = in->api;
  if (find_child(c, v, "api", &av) && !get_int(av.j, &api)) {
    api = 0;
  }
  if (api == INFLUX_V1 && !in->database) {
    report_key(c, "database", voff(c, v), "required when influxdb.api is 1");
  }
  if (api == INFLUX_V2) {
    static const char *const need[] = {"org", "bucket", "token"};
    const char *have[] = {in->org, in->bucket, in->token};
    for (size_t i = 0; i < 3; i++) {
      if (!have[i]) {
        report_key(c, need[i], voff(c, v), "required when influxdb.api is 2");
      }
    }
  }
  if (in->url && strncmp(in->url, "http://", 7) != 0 &&
      strncmp(in->url, "https://", 8) != 0) {
    struct desc d;
    quoted(c, in->url, &d);
    size_t mark = path_key(c, "url");
    report(c, child_off(c, v, "url"),
           "expected an http:// or https:// URL, got %s", qs(&d));
    path_pop(c, mark);
    desc_done(&d);
  }
  check_order(c, v, "influxdb", "retry_min", in->retry_min_ms, "retry_max",
              in->retry_max_ms);
  if (in->batch_bytes > in->buffer_bytes) {
    char a[32], b[32];
    config__format_size((int64_t)in->buffer_bytes, a, sizeof a);
    config__format_size((int64_t)in->batch_bytes, b, sizeof b);
    size_t mark = path_key(c, "buffer");
    report(c, child_off(c, v, "buffer"),
           "%s is less than influxdb.batch_bytes (%s)", a, b);
    path_pop(c, mark);
  }
}

/* "HOST:PORT" with a port from 1 to 65535, as api_new accepts it. */
static bool listen_ok(const char *s) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || colon[1] < '0' || colon[1] > '9') {
    return false;
  }
  errno = 0;
  char *end;
  long port = strtol(colon + 1, &end, 10);
  return errno == 0 && *end == '\0' && port >= 1 && port <= 65535;
}

static void api_check(struct ctx *c, struct val v, void *base) {
  struct config_api *a = base;
  if (a->listen && !listen_ok(a->listen)) {
    struct desc d;
    quoted(c, a->listen, &d);
    size_t mark = path_key(c, "listen");
    report(c, child_off(c, v, "listen"),
           "expected \"HOST:PORT\" with a port from 1 to 65535, got %s",
           qs(&d));
    path_pop(c, mark);
    desc_done(&d);
  }
}

/* Rotation must leave room for at least one closed segment besides the one
 * being written, or drop_oldest would have nothing to drop. */
static void journal_check(struct ctx *c, struct val v, void *base) {
  struct config_journal *jn = base;
  if (jn->max_bytes / 2 < jn->segment_bytes) {
    char a[32], b[32];
    config__format_size((int64_t)jn->max_bytes, a, sizeof a);
    config__format_size((int64_t)jn->segment_bytes, b, sizeof b);
    struct val mv;
    size_t off = find_child(c, v, "max_bytes", &mv)
                     ? voff(c, mv)
                     : child_off(c, v, "segment_bytes");
    size_t mark = path_key(c, "max_bytes");
    report(c, off, "%s is less than twice journal.segment_bytes (%s)", a, b);
    path_pop(c, mark);
  }
}

/* Subscriptions and their free-form parts. */

static void set_tag_keys(struct ctx *c, struct val v, void *base) {
  struct config_subscription *s = base;
  if (!cJSON_IsArray(v.j)) {
    report_type(c, v, "an array of strings");
    return;
  }
  size_t n;
  struct val *items = children(c, v, &n);
  if (!items) {
    return;
  }
  s->tag_keys = calloc(n ? n : 1, sizeof *s->tag_keys);
  if (!s->tag_keys) {
    c->nomem = true;
    free(items);
    return;
  }
  s->ntag_keys = n;
  for (size_t i = 0; i < n; i++) {
    size_t mark = path_index(c, i);
    char *k = get_string(c, items[i], "a string");
    if (k && !*k) {
      report(c, voff(c, items[i]), "must not be empty");
      free(k);
      k = NULL;
    }
    s->tag_keys[i] = k;
    path_pop(c, mark);
  }
  free(items);
}

/* Shared by "tags" and "types": an object whose keys are names chosen by
 * the user, each with a string value. Calls add for every good member. */
static void walk_map(struct ctx *c, struct val v, const char *expected,
                     void (*add)(struct ctx *c, const char *key, struct val cv,
                                 void *base),
                     void *base) {
  if (!cJSON_IsObject(v.j)) {
    report_type(c, v, expected);
    return;
  }
  size_t n;
  struct val *kids = children(c, v, &n);
  bool *skip = kids ? bad_keys(c, kids, n) : NULL;
  for (size_t i = 0; skip && i < n; i++) {
    if (skip[i]) {
      continue;
    }
    const char *key = kids[i].j->string;
    if (!*key) {
      report(c, koff(c, kids[i]), "empty name");
      continue;
    }
    size_t mark = path_key(c, key);
    add(c, key, kids[i], base);
    path_pop(c, mark);
  }
  free(skip);
  free(kids);
}

static void add_tag(struct ctx *c, const char *key, struct val cv, void *base) {
  struct config_subscription *s = base;
  char *value = get_string(c, cv, "a string");
  if (!value) {
    return;
  }
  if (!*value) {
    report(c, voff(c, cv), "must not be empty");
    free(value);
    return;
  }
  char *k = strdup(key);
  if (!k) {
    c->nomem = true;
    free(value);
    return;
  }
  s->tags[s->ntags].key = k;
  s->tags[s->ntags].value = value;
  s->ntags++;
}

static void set_tags(struct ctx *c, struct val v, void *base) {
  struct config_subscription *s = base;
  int n = cJSON_IsObject(v.j) ? cJSON_GetArraySize(v.j) : 0;
  s->tags = calloc(n > 0 ? (size_t)n : 1, sizeof *s->tags);
  if (!s->tags) {
    c->nomem = true;
    return;
  }
  walk_map(c, v, "an object of tag names and values", add_tag, base);
}

static void add_type(struct ctx *c, const char *key, struct val cv,
                     void *base) {
  struct config_subscription *s = base;
  int t;
  if (!get_enum(c, cv, field_type_names, &t)) {
    return;
  }
  char *k = strdup(key);
  if (!k) {
    c->nomem = true;
    return;
  }
  s->types[s->ntypes].measurement = NULL;
  s->types[s->ntypes].field = k;
  s->types[s->ntypes].type = (enum field_type)t;
  s->ntypes++;
}

static void set_types(struct ctx *c, struct val v, void *base) {
  struct config_subscription *s = base;
  int n = cJSON_IsObject(v.j) ? cJSON_GetArraySize(v.j) : 0;
  s->types = calloc(n > 0 ? (size_t)n : 1, sizeof *s->types);
  if (!s->types) {
    c->nomem = true;
    return;
  }
  walk_map(c, v, "an object of field names and types", add_type, base);
}

struct nameref {
  const char *name;
  size_t idx;
};

static int cmp_nameref(const void *a, const void *b) {
  const struct nameref *x = a, *y = b;
  int r = strcmp(x->name, y->name);
  if (r) {
    return r;
  }
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Names label counters and logs, so two subscriptions may not share one. */
static void check_names(struct ctx *c, struct config *cfg,
                        const struct val *items) {
  struct nameref *refs = malloc(cfg->nsubs * sizeof *refs);
  if (!refs) {
    c->nomem = true;
    return;
  }
  size_t n = 0;
  for (size_t i = 0; i < cfg->nsubs; i++) {
    if (cfg->subs[i].name) {
      refs[n++] = (struct nameref){cfg->subs[i].name, i};
    }
  }
  qsort(refs, n, sizeof *refs, cmp_nameref);
  for (size_t i = 1; i < n; i++) {
    size_t first = i - 1;
    while (i < n && strcmp(refs[i].name, refs[first].name) == 0) {
      size_t idx = refs[i].idx;
      struct val nv;
      bool named = find_child(c, items[idx], "name", &nv);
      struct desc d;
      quoted(c, refs[i].name, &d);
      size_t m1 = path_index(c, idx);
      size_t m2 = path_key(c, named ? "name" : "topic");
      report(c, child_off(c, items[idx], named ? "name" : "topic"),
             "%s is already the name of subscriptions[%zu]%s", qs(&d),
             refs[first].idx,
             named ? "" : " (give this one a unique \"name\")");
      path_pop(c, m2);
      path_pop(c, m1);
      desc_done(&d);
      i++;
    }
  }
  free(refs);
}

static void set_subs(struct ctx *c, struct val v, void *base) {
  struct config *cfg = base;
  if (!cJSON_IsArray(v.j)) {
    report_type(c, v, "an array of subscriptions");
    return;
  }
  size_t n;
  struct val *items = children(c, v, &n);
  if (!items) {
    return;
  }
  if (n == 0) {
    report(c, voff(c, v), "at least one subscription is required");
    goto out;
  }
  if (n > MAX_SUBS) {
    report(c, voff(c, v), "at most %d subscriptions are allowed, got %zu",
           MAX_SUBS, n);
    goto out;
  }
  cfg->subs = calloc(n, sizeof *cfg->subs);
  if (!cfg->subs) {
    c->nomem = true;
    goto out;
  }
  cfg->nsubs = n;
  for (size_t i = 0; i < n; i++) {
    struct config_subscription *s = &cfg->subs[i];
    size_t mark = path_index(c, i);
    apply_defaults(c, &sub_object, s);
    walk_object(c, items[i], &sub_object, s);
    if (!s->name && s->topic) {
      s->name = strdup(s->topic);
      c->nomem = c->nomem || !s->name;
    }
    path_pop(c, mark);
  }
  check_names(c, cfg, items);
out:
  free(items);
}

/* Loading. */

static void default_client_id(struct ctx *c, struct config_mqtt *m) {
  char host[256];
  if (gethostname(host, sizeof host) != 0 || !host[0]) {
    snprintf(host, sizeof host, "localhost");
  }
  host[sizeof host - 1] = '\0';
  char id[300];
  snprintf(id, sizeof id, "iocd-%s", host);
  m->client_id = strdup(id);
  c->nomem = c->nomem || !m->client_id;
}

/* Defaults that depend on other settings, and checks on the whole file. */
static void finish(struct ctx *c, struct val root, struct config *cfg) {
  if (cfg->mqtt.port == 0) {
    cfg->mqtt.port = cfg->mqtt.tls.enabled ? 8883 : 1883;
  }
  if (!cfg->mqtt.client_id) {
    default_client_id(c, &cfg->mqtt);
  }
  struct val sv;
  if (!find_child(c, root, "subscriptions", &sv)) {
    report_key(c, "subscriptions", voff(c, root),
               "at least one subscription is required");
  }
  if (!cfg->influx.enabled && !cfg->file.enabled) {
    report(c, voff(c, root),
           "no output is enabled (add an \"influxdb\" section or enable "
           "\"file\")");
  }
}

/* Reports a cJSON syntax error. cJSON's pointer can sit one byte past the
 * fault, or past the whitespace after it, so it backs up to the last thing
 * that was read and says "near". */
static void report_syntax(struct ctx *c, const char *end) {
  size_t at = end && end >= c->text ? (size_t)(end - c->text) : 0;
  if (at > c->len) {
    at = c->len;
  }
  while (at > 0 && (at >= c->len || (unsigned char)c->text[at] <= 32)) {
    at--;
  }
  size_t n = 0;
  while (at + n < c->len && n < 24 && c->text[at + n] != '\n' &&
         c->text[at + n] != '\r') {
    n++;
  }
  size_t bad;
  if (!utf8_valid(c->text + at, n, &bad)) {
    n = bad;
  } else if (at + n < c->len && n == 24) {
    /* Cut at a character boundary. */
    while (n > 0 && ((unsigned char)c->text[at + n] & 0xC0) == 0x80) {
      n--;
    }
  }
  char snip[32];
  size_t k = 0;
  for (size_t i = 0; i < n && k < sizeof snip - 1; i++) {
    unsigned char ch = (unsigned char)c->text[at + i];
    snip[k++] = ch < 32 || ch == 0x7F ? ' ' : (char)ch;
  }
  while (k > 0 && snip[k - 1] == ' ') {
    k--;
  }
  snip[k] = '\0';
  report(c, at, "syntax error near '%s'", snip);
}

/* Takes a complete message from rules_config.c; order places it among the
 * others (a byte offset in this file). */
static void rules_sink(void *ud, size_t order, const char *msg) {
  struct ctx *c = ud;
  c->total++;
  if (c->nerrs >= MAX_ERRORS) {
    return;
  }
  if (c->nerrs == c->caperrs) {
    size_t cap = c->caperrs ? c->caperrs * 2 : 16;
    struct errrec *e = realloc(c->errs, cap * sizeof *e);
    if (!e) {
      c->nomem = true;
      return;
    }
    c->errs = e;
    c->caperrs = cap;
  }
  char *m = strdup(msg);
  if (!m) {
    c->nomem = true;
    return;
  }
  c->errs[c->nerrs] = (struct errrec){order, c->nerrs, m};
  c->nerrs++;
}

static bool blank(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if ((unsigned char)s[i] > 32) {
      return false;
    }
  }
  return true;
}

int config_load_text(const char *name, const char *text, size_t len,
                     struct config **out, struct buf *errors) {
  struct ctx c = {0};
  c.name = name ? name : "<config>";
  buf_init(&c.path, 1 << 20);
  char *copy = NULL;
  cJSON *json = NULL;
  struct config *cfg = NULL;
  int rc = IOCD_OK;
  if (out) {
    *out = NULL;
  }
  if (len > CONFIG_MAX_FILE) {
    report(&c, SIZE_MAX, "the file is larger than %u MiB",
           CONFIG_MAX_FILE >> 20);
    goto out;
  }
  rc = config__lines_init(&c.lines, text, len);
  if (rc) {
    goto out;
  }
  const char *nul = memchr(text, '\0', len);
  if (nul) {
    report(&c, (size_t)(nul - text), "NUL byte in the file");
    goto out;
  }
  copy = malloc(len + 1);
  if (!copy) {
    rc = IOCD_ENOMEM;
    goto out;
  }
  memcpy(copy, text, len);
  copy[len] = '\0';
  c.text = copy;
  c.len = len;
  size_t bad;
  if (config__blank_comments(copy, len, &bad)) {
    report(&c, bad, "unterminated /* comment");
    goto out;
  }
  if (blank(copy, len)) {
    report(&c, SIZE_MAX, "the file is empty (expected a JSON object)");
    goto out;
  }
  const char *end = NULL;
  json = cJSON_ParseWithOpts(copy, &end, 1);
  if (!json) {
    report_syntax(&c, end);
    goto out;
  }
  rc = config__scan(copy, len, &c.pm);
  if (rc == IOCD_EPARSE) {
    report(&c, SIZE_MAX, "cannot locate the values in the file");
  }
  if (rc) {
    goto out;
  }
  struct val root = {json, 0};
  if (!cJSON_IsObject(json)) {
    report_type(&c, root, "an object at the top level");
    goto out;
  }
  cfg = calloc(1, sizeof *cfg);
  if (!cfg) {
    rc = IOCD_ENOMEM;
    goto out;
  }
  cfg->path = strdup(c.name);
  c.nomem = !cfg->path;
  apply_defaults(&c, &root_object, cfg);
  walk_object(&c, root, &root_object, cfg);
  finish(&c, root, cfg);
  struct config__doc doc = {c.name, c.text, c.len, &c.lines, &c.pm};
  if (config__load_rules(&doc, json, cfg, rules_sink, &c) != IOCD_OK) {
    c.nomem = true;
  }
out:
  if (!rc && c.nomem) {
    rc = IOCD_ENOMEM;
  }
  if (!rc && c.total) {
    rc = IOCD_EPARSE;
  }
  flush_errors(&c, errors);
  cJSON_Delete(json);
  free(copy);
  free(c.pm.v);
  config__lines_cleanup(&c.lines);
  buf_cleanup(&c.path);
  if (rc) {
    config_free(cfg);
  } else if (out) {
    *out = cfg;
  } else {
    config_free(cfg);
  }
  return rc;
}

int config_load(const char *path, struct config **out, struct buf *errors) {
  if (out) {
    *out = NULL;
  }
  struct buf text;
  buf_init(&text, CONFIG_MAX_FILE);
  int rc = IOCD_OK;
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errors) {
      buf_printf(errors, "%s: cannot open: %s\n", path, strerror(errno));
    }
    return IOCD_EIO;
  }
  struct stat st;
  if (fstat(fileno(f), &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      if (errors) {
        buf_printf(errors, "%s: is a directory, not a file\n", path);
      }
      rc = IOCD_EIO;
      goto out;
    }
    if (st.st_size > (off_t)CONFIG_MAX_FILE) {
      rc = IOCD_ETOOBIG;
    }
  }
  while (!rc) {
    char chunk[16384];
    size_t n = fread(chunk, 1, sizeof chunk, f);
    if (n) {
      rc = buf_append(&text, chunk, n);
    }
    if (n < sizeof chunk) {
      break;
    }
  }
  if (rc == IOCD_ETOOBIG) {
    if (errors) {
      buf_printf(errors, "%s: the file is larger than %u MiB\n", path,
                 CONFIG_MAX_FILE >> 20);
    }
    rc = IOCD_EIO;
    goto out;
  }
  if (rc) {
    goto out;
  }
  if (ferror(f)) {
    if (errors) {
      buf_printf(errors, "%s: cannot read: %s\n", path, strerror(errno));
    }
    rc = IOCD_EIO;
    goto out;
  }
  rc =
      config_load_text(path, text.data ? text.data : "", text.len, out, errors);
out:
  fclose(f);
  buf_cleanup(&text);
  return rc;
}

static void free_sub(struct config_subscription *s) {
  free_strings(&sub_object, s);
  for (size_t i = 0; i < s->ntag_keys; i++) {
    free(s->tag_keys[i]);
  }
  free(s->tag_keys);
  for (size_t i = 0; i < s->ntags; i++) {
    free(s->tags[i].key);
    free(s->tags[i].value);
  }
  free(s->tags);
  for (size_t i = 0; i < s->ntypes; i++) {
    free(s->types[i].measurement);
    free(s->types[i].field);
  }
  free(s->types);
}

void config_free(struct config *cfg) {
  if (!cfg) {
    return;
  }
  for (size_t i = 0; i < cfg->nsubs; i++) {
    free_sub(&cfg->subs[i]);
  }
  free(cfg->subs);
  free_strings(&root_object, cfg);
  config__free_rules(cfg);
  free(cfg->path);
  free(cfg);
}

const char *config_format_name(enum payload_format f) {
  for (size_t i = 0; format_names[i].name; i++) {
    if (format_names[i].value == (int)f) {
      return format_names[i].name;
    }
  }
  return "unknown";
}
