/*
 * InfluxDB line protocol: the encoder the store uses for every point it
 * writes, and the validating parser behind the `line` payload format.
 *
 * The escaping rules are the ones InfluxDB 1.6 was seen to apply (see
 * docs/line-protocol.md). The encoder runs once per point on the hot path:
 * it appends runs of plain bytes with one reserve each and formats integers
 * by hand. The parser never reads past len (the text is an MQTT payload, not
 * a C string) and copies nothing unless an escape has to be removed.
 */
#include "core/lp.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* InfluxDB's own time limits (models.MinNanoTime / MaxNanoTime): the two
 * values nearest to the int64 ends are reserved there. */
#define LP_MIN_NS (INT64_MIN + 2)
#define LP_MAX_NS (INT64_MAX - 1)

/* ---- Encoding ---------------------------------------------------------- */

/* Appends s[0..n) with a backslash before each byte that special[] marks. */
static int escape(struct buf *out, const char *s, size_t n,
                  const bool special[256]) {
  size_t start = out->len;
  size_t run = 0;
  int rc = IOCD_OK;
  for (size_t i = 0; i < n; i++) {
    if (!special[(unsigned char)s[i]]) {
      continue;
    }
    rc = buf_append(out, s + run, i - run);
    if (!rc) {
      char esc[2] = {'\\', s[i]};
      rc = buf_append(out, esc, 2);
    }
    if (rc) {
      goto out;
    }
    run = i + 1;
  }
  rc = buf_append(out, s + run, n - run);
out:
  if (rc) {
    buf_truncate(out, start);
  }
  return rc;
}

static const bool meas_special[256] = {[','] = true, [' '] = true};
static const bool key_special[256] = {[','] = true, ['='] = true, [' '] = true};
static const bool string_special[256] = {['\\'] = true, ['"'] = true};

int lp_escape_measurement(struct buf *out, const char *s, size_t n) {
  return escape(out, s, n, meas_special);
}

int lp_escape_key(struct buf *out, const char *s, size_t n) {
  return escape(out, s, n, key_special);
}

int lp_escape_string(struct buf *out, const char *s, size_t n) {
  return escape(out, s, n, string_special);
}

/* Writes v in decimal into the end of a buffer of at least 21 bytes and
 * returns where the digits start. */
static char *fmt_int64(char *end, int64_t v) {
  /* Work on the magnitude as unsigned so that INT64_MIN needs no case. */
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  char *p = end;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) {
    *--p = '-';
  }
  return p;
}

static int put_int64(struct buf *out, int64_t v) {
  char tmp[24];
  char *end = tmp + sizeof tmp;
  char *p = fmt_int64(end, v);
  return buf_append(out, p, (size_t)(end - p));
}

/* The shortest of %.15g, %.16g and %.17g that reads back to the same double;
 * %.17g always does. */
static int put_double(struct buf *out, double v) {
  char tmp[40];
  int n = 0;
  for (int prec = 15; prec <= 17; prec++) {
    n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
    if (n < 0 || (size_t)n >= sizeof tmp) {
      return IOCD_EINVAL;
    }
    if (prec == 17 || strtod(tmp, NULL) == v) {
      break;
    }
  }
  return buf_append(out, tmp, (size_t)n);
}

static bool has_byte(const struct str *s, char c) {
  return s->len && memchr(s->p, c, s->len) != NULL;
}

static bool ends_in_backslash(const struct str *s) {
  return s->len && s->p[s->len - 1] == '\\';
}

/* True when a backslash in s is followed by a byte of set. */
static bool backslash_before(const struct str *s, const char *set) {
  for (size_t i = 0; i + 1 < s->len; i++) {
    if (s->p[i] == '\\' && memchr(set, s->p[i + 1], strlen(set))) {
      return true;
    }
  }
  return false;
}

/* Why InfluxDB 1.6 would not read name s back as written, or NULL. A newline
 * ends the line and a final backslash escapes the separator after it. In
 * measurements and field keys InfluxDB also reads `\=` and `\"` as escapes,
 * and in field keys it skips a backslash with the byte after it (`bs\\,x=1`
 * is "invalid field format"), so there a backslash before `,` space `=` or
 * `"` has no encoding (bs_special). */
static const char *name_problem(const struct str *s, bool bs_special) {
  if (s->len == 0) {
    return "is empty";
  }
  if (has_byte(s, '\n')) {
    return "contains a newline";
  }
  if (ends_in_backslash(s)) {
    return "ends in a backslash";
  }
  if (bs_special && backslash_before(s, ", =\"")) {
    return "has a backslash before ',', ' ', '=' or '\"'";
  }
  return NULL;
}

/* A line whose first non-blank byte is '#' is a comment, and InfluxDB skips
 * leading tabs and NULs as blanks (a leading space is escaped, so it stays). */
static const char *measurement_problem(const struct str *m) {
  const char *why = name_problem(m, true);
  if (why) {
    return why;
  }
  if (m->p[0] == '#') {
    return "starts with '#'";
  }
  if (m->p[0] == '\t' || m->p[0] == '\0') {
    return "starts with a tab or NUL";
  }
  return NULL;
}

/* Prints a name for an error message: truncated, and without bytes that
 * would break the message's line. */
static const char *shown(const struct str *s, char *tmp, size_t size) {
  size_t n = 0;
  for (size_t i = 0; i < s->len && n + 4 < size; i++) {
    char c = s->p[i];
    tmp[n++] = (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  }
  if (n < s->len) {
    memcpy(tmp + n, "...", 3);
    n += 3;
  }
  tmp[n] = '\0';
  return tmp;
}

int lp_check_point(const struct point_batch *pb, const struct point *p,
                   struct iocd_err *err) {
  char tmp[64];
  const char *why = measurement_problem(&p->measurement);
  if (why) {
    return iocd_err_set(err, IOCD_EINVAL, "measurement \"%s\": %s",
                        shown(&p->measurement, tmp, sizeof tmp), why);
  }
  if (p->nfields == 0) {
    return iocd_err_set(err, IOCD_EINVAL, "no fields");
  }
  const struct tag *t = pb_tags(pb, p);
  for (size_t i = 0; i < p->ntags; i++) {
    if (t[i].value.len == 0) {
      continue;
    }
    if ((why = name_problem(&t[i].key, false))) {
      return iocd_err_set(err, IOCD_EINVAL, "tag key \"%s\": %s",
                          shown(&t[i].key, tmp, sizeof tmp), why);
    }
    if ((why = name_problem(&t[i].value, false))) {
      return iocd_err_set(err, IOCD_EINVAL, "tag \"%s\": value %s",
                          shown(&t[i].key, tmp, sizeof tmp), why);
    }
  }
  const struct field *f = pb_fields(pb, p);
  for (size_t i = 0; i < p->nfields; i++) {
    if ((why = name_problem(&f[i].key, true))) {
      return iocd_err_set(err, IOCD_EINVAL, "field key \"%s\": %s",
                          shown(&f[i].key, tmp, sizeof tmp), why);
    }
    bool bad_type = f[i].type != FIELD_FLOAT && f[i].type != FIELD_INT &&
                    f[i].type != FIELD_BOOL && f[i].type != FIELD_STRING;
    if (bad_type) {
      return iocd_err_set(err, IOCD_EINVAL, "field \"%s\": no type",
                          shown(&f[i].key, tmp, sizeof tmp));
    }
    if (f[i].type == FIELD_FLOAT && !isfinite(f[i].v.f)) {
      return iocd_err_set(err, IOCD_EINVAL, "field \"%s\": NaN or infinity",
                          shown(&f[i].key, tmp, sizeof tmp));
    }
  }
  return IOCD_OK;
}

static int put_field_value(struct buf *out, const struct field *f) {
  int rc;
  switch (f->type) {
    case FIELD_FLOAT:
      return put_double(out, f->v.f);
    case FIELD_INT:
      rc = put_int64(out, f->v.i);
      return rc ? rc : buf_putc(out, 'i');
    case FIELD_BOOL:
      return f->v.b ? buf_append(out, "true", 4) : buf_append(out, "false", 5);
    case FIELD_STRING:
      rc = buf_putc(out, '"');
      if (!rc) {
        rc = lp_escape_string(out, f->v.s.p, f->v.s.len);
      }
      return rc ? rc : buf_putc(out, '"');
    case FIELD_NONE:
    default:
      return IOCD_EINVAL;
  }
}

int lp_append_point(struct buf *out, const struct point_batch *pb,
                    const struct point *p) {
  int rc = lp_check_point(pb, p, NULL);
  if (rc) {
    return rc;
  }
  size_t start = out->len;
  rc = lp_escape_measurement(out, p->measurement.p, p->measurement.len);
  if (rc) {
    goto out;
  }
  const struct tag *t = pb_tags(pb, p);
  for (size_t i = 0; i < p->ntags; i++) {
    /* InfluxDB rejects `k=`; a tag without a value is no tag. */
    if (t[i].value.len == 0) {
      continue;
    }
    if ((rc = buf_putc(out, ',')) ||
        (rc = lp_escape_key(out, t[i].key.p, t[i].key.len)) ||
        (rc = buf_putc(out, '=')) ||
        (rc = lp_escape_key(out, t[i].value.p, t[i].value.len))) {
      goto out;
    }
  }
  const struct field *f = pb_fields(pb, p);
  for (size_t i = 0; i < p->nfields; i++) {
    if ((rc = buf_putc(out, i ? ',' : ' ')) ||
        (rc = lp_escape_key(out, f[i].key.p, f[i].key.len)) ||
        (rc = buf_putc(out, '=')) || (rc = put_field_value(out, &f[i]))) {
      goto out;
    }
  }
  if (p->has_ts) {
    if ((rc = buf_putc(out, ' ')) || (rc = put_int64(out, p->ts_ns))) {
      goto out;
    }
  }
  rc = buf_putc(out, '\n');
out:
  if (rc) {
    buf_truncate(out, start);
  }
  return rc;
}

/* ---- Parsing ----------------------------------------------------------- */

struct parser {
  const char *s;
  size_t len;
  size_t pos;
  struct point_batch *pb;
  int64_t ts_mult;
  struct iocd_err *err;
  /* Unescaped copies of the current key and value, used only when the text
   * holds an escape; otherwise names point into s. */
  struct buf key;
  struct buf val;
};

/* Which bytes end a name, and which may follow a backslash as an escape. */
struct name_rules {
  bool stop[256];
  bool esc[256];
};

/* Escapes as InfluxDB 1.6 reads them: in measurements and field keys it
 * also turns `\=` and `\"` into `=` and `"`; in tags only `,` `=` and space
 * are escapes. */
static const struct name_rules meas_rules = {
    .stop = {[','] = true, [' '] = true, ['\n'] = true},
    .esc = {[','] = true, [' '] = true, ['='] = true, ['"'] = true},
};
static const struct name_rules tag_rules = {
    .stop = {[','] = true, [' '] = true, ['='] = true, ['\n'] = true},
    .esc = {[','] = true, [' '] = true, ['='] = true},
};
static const struct name_rules field_key_rules = {
    .stop = {[','] = true, [' '] = true, ['='] = true, ['\n'] = true},
    .esc = {[','] = true, [' '] = true, ['='] = true, ['"'] = true},
};

static bool at_end(const struct parser *ps, size_t i) {
  return i >= ps->len;
}

/* The end of a line: '\n', the end of the text, or a '\r' just before one
 * of them (which fail() then reports as such). */
static bool at_eol(const struct parser *ps, size_t i) {
  if (i >= ps->len || ps->s[i] == '\n') {
    return true;
  }
  return ps->s[i] == '\r' && (i + 1 >= ps->len || ps->s[i + 1] == '\n');
}

static bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

static size_t skip_blanks(const struct parser *ps, size_t i) {
  while (!at_end(ps, i) && is_blank(ps->s[i])) {
    i++;
  }
  return i;
}

/* Sets err to "line L, column C: reason" for byte offset at and returns rc.
 * Lines count every '\n' (also those inside strings); columns count
 * characters, not bytes, so that they match an editor's. */
static int vfail(struct parser *ps, int rc, size_t at, const char *fmt,
                 va_list ap) __attribute__((format(printf, 4, 0)));

static int vfail(struct parser *ps, int rc, size_t at, const char *fmt,
                 va_list ap) {
  if (at > ps->len) {
    at = ps->len;
  }
  size_t line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < at; i++) {
    if (ps->s[i] == '\n') {
      line++;
      line_start = i + 1;
    }
  }
  size_t col = 1;
  for (size_t i = line_start; i < at; i++) {
    if (((unsigned char)ps->s[i] & 0xC0) != 0x80) {
      col++;
    }
  }
  char reason[160];
  if (at < ps->len && ps->s[at] == '\r' && at_eol(ps, at)) {
    /* Whatever was expected there, the cause is a CRLF line ending. */
    snprintf(reason, sizeof reason, "%s",
             "\\r\\n line ending (only \\n is accepted)");
  } else {
    vsnprintf(reason, sizeof reason, fmt, ap);
  }
  return iocd_err_set(ps->err, rc, "line %zu, column %zu: %s", line, col,
                      reason);
}

static int fail(struct parser *ps, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct parser *ps, size_t at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = vfail(ps, IOCD_EPARSE, at, fmt, ap);
  va_end(ap);
  return rc;
}

static int fail_limit(struct parser *ps, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_limit(struct parser *ps, size_t at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = vfail(ps, IOCD_ELIMIT, at, fmt, ap);
  va_end(ap);
  return rc;
}

static int fail_nomem(struct parser *ps, int rc) {
  return iocd_err_set(ps->err, rc, "line protocol: %s", iocd_strerror(rc));
}

/* Scans a name from ps->pos up to a stop byte or the end of the line, and
 * removes the escapes the rules allow (a backslash before anything else is
 * kept as it is). *out points into the text when nothing had to be removed,
 * else into scratch. */
static int scan_name(struct parser *ps, const struct name_rules *r,
                     struct buf *scratch, struct str *out) {
  size_t start = ps->pos;
  size_t i = start;
  bool escaped = false;
  while (!at_eol(ps, i) && !r->stop[(unsigned char)ps->s[i]]) {
    if (ps->s[i] == '\\' && i + 1 < ps->len &&
        r->esc[(unsigned char)ps->s[i + 1]]) {
      escaped = true;
      i += 2;
    } else {
      i++;
    }
  }
  ps->pos = i;
  if (!escaped) {
    out->p = ps->s + start;
    out->len = i - start;
    return IOCD_OK;
  }
  buf_reset(scratch);
  for (size_t j = start; j < i; j++) {
    if (ps->s[j] == '\\' && j + 1 < i && r->esc[(unsigned char)ps->s[j + 1]]) {
      j++;
    }
    int rc = buf_putc(scratch, ps->s[j]);
    if (rc) {
      return fail_nomem(ps, rc);
    }
  }
  out->p = scratch->data;
  out->len = scratch->len;
  return IOCD_OK;
}

static bool str_eq(const struct str *a, const struct str *b) {
  return a->len == b->len && (a->len == 0 || !memcmp(a->p, b->p, a->len));
}

static int parse_tags(struct parser *ps, struct point *p) {
  /* ps->pos is just past a ',' after the measurement or a tag value. */
  for (;;) {
    size_t key_at = ps->pos;
    struct str k = {0};
    int rc = scan_name(ps, &tag_rules, &ps->key, &k);
    if (rc) {
      return rc;
    }
    if (k.len == 0) {
      return fail(ps, key_at, "missing tag key");
    }
    if (at_end(ps, ps->pos) || ps->s[ps->pos] != '=') {
      return fail(ps, ps->pos, "missing '=' after tag key");
    }
    ps->pos++;
    size_t val_at = ps->pos;
    struct str v = {0};
    rc = scan_name(ps, &tag_rules, &ps->val, &v);
    if (rc) {
      return rc;
    }
    if (!at_end(ps, ps->pos) && ps->s[ps->pos] == '=') {
      return fail(ps, ps->pos, "unescaped '=' in tag value");
    }
    if (v.len == 0) {
      return fail(ps, val_at, "missing tag value");
    }
    const struct tag *t = pb_tags(ps->pb, p);
    for (size_t i = 0; i < p->ntags; i++) {
      if (str_eq(&t[i].key, &k)) {
        char tmp[64];
        return fail(ps, key_at, "duplicate tag \"%s\"",
                    shown(&k, tmp, sizeof tmp));
      }
    }
    rc = pb_tag(ps->pb, p, k.p, k.len, v.p, v.len, false);
    if (rc) {
      return fail_nomem(ps, rc);
    }
    if (at_eol(ps, ps->pos)) {
      return fail(ps, ps->pos, "missing fields");
    }
    if (ps->s[ps->pos] == ' ') {
      return IOCD_OK;
    }
    ps->pos++; /* ',' */
  }
}

/* Copies the token [a, b) into ps->val as a C string for strtod/strtoll. */
static int token_cstr(struct parser *ps, size_t a, size_t b, const char **out) {
  buf_reset(&ps->val);
  int rc = buf_append(&ps->val, ps->s + a, b - a);
  if (rc) {
    return fail_nomem(ps, rc);
  }
  *out = ps->val.data;
  return IOCD_OK;
}

static bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

/* [-]digits */
static bool int_syntax(const char *s, size_t n) {
  size_t i = (n && s[0] == '-') ? 1 : 0;
  if (i == n) {
    return false;
  }
  for (; i < n; i++) {
    if (!is_digit(s[i])) {
      return false;
    }
  }
  return true;
}

/* [-](digits[.digits*] | .digits)[(e|E)[+|-]digits] */
static bool float_syntax(const char *s, size_t n) {
  size_t i = (n && s[0] == '-') ? 1 : 0;
  size_t digits = 0;
  while (i < n && is_digit(s[i])) {
    i++;
    digits++;
  }
  if (i < n && s[i] == '.') {
    i++;
    while (i < n && is_digit(s[i])) {
      i++;
      digits++;
    }
  }
  if (digits == 0) {
    return false;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
      i++;
    }
    size_t exp_digits = 0;
    while (i < n && is_digit(s[i])) {
      i++;
      exp_digits++;
    }
    if (exp_digits == 0) {
      return false;
    }
  }
  return i == n;
}

static bool word_eq(const char *s, size_t n, const char *w) {
  size_t wn = strlen(w);
  if (n != wn) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') {
      c = (char)(c - 'A' + 'a');
    }
    if (c != w[i]) {
      return false;
    }
  }
  return true;
}

static bool nan_or_inf(const char *s, size_t n) {
  if (n && (s[0] == '-' || s[0] == '+')) {
    s++;
    n--;
  }
  return word_eq(s, n, "nan") || word_eq(s, n, "inf") ||
         word_eq(s, n, "infinity");
}

static bool parse_bool(const char *s, size_t n, bool *out) {
  static const char *const yes[] = {"t", "T", "true", "True", "TRUE"};
  static const char *const no[] = {"f", "F", "false", "False", "FALSE"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (strlen(yes[i]) == n && !memcmp(s, yes[i], n)) {
      *out = true;
      return true;
    }
    if (strlen(no[i]) == n && !memcmp(s, no[i], n)) {
      *out = false;
      return true;
    }
  }
  return false;
}

/* Parses a quoted string starting at the '"' at ps->pos: `\"` and `\\` are
 * escapes, any other backslash is kept. Newlines inside are part of it. */
static int scan_string(struct parser *ps, struct str *out) {
  size_t open = ps->pos;
  size_t i = open + 1;
  bool escaped = false;
  for (;;) {
    if (at_end(ps, i)) {
      return fail(ps, open, "unterminated string");
    }
    char c = ps->s[i];
    if (c == '"') {
      break;
    }
    if (c == '\\' && i + 1 < ps->len &&
        (ps->s[i + 1] == '"' || ps->s[i + 1] == '\\')) {
      escaped = true;
      i += 2;
    } else {
      i++;
    }
  }
  ps->pos = i + 1;
  if (!escaped) {
    out->p = ps->s + open + 1;
    out->len = i - open - 1;
    return IOCD_OK;
  }
  buf_reset(&ps->val);
  for (size_t j = open + 1; j < i; j++) {
    if (ps->s[j] == '\\' && j + 1 < i &&
        (ps->s[j + 1] == '"' || ps->s[j + 1] == '\\')) {
      j++;
    }
    int rc = buf_putc(&ps->val, ps->s[j]);
    if (rc) {
      return fail_nomem(ps, rc);
    }
  }
  out->p = ps->val.data;
  out->len = ps->val.len;
  return IOCD_OK;
}

/* Parses the value at ps->pos and adds field k (which lives in ps->key or
 * the text, never in ps->val) to p. */
static int parse_value(struct parser *ps, struct point *p,
                       const struct str *k) {
  struct point_batch *pb = ps->pb;
  size_t at = ps->pos;
  int rc;
  if (!at_end(ps, at) && ps->s[at] == '"') {
    struct str v = {0};
    rc = scan_string(ps, &v);
    if (rc) {
      return rc;
    }
    if (!at_eol(ps, ps->pos) && ps->s[ps->pos] != ',' &&
        ps->s[ps->pos] != ' ') {
      return fail(ps, ps->pos, "expected ',' or ' ' after string");
    }
    rc = pb_field_string(pb, p, k->p, k->len, v.p, v.len);
    return rc ? fail_nomem(ps, rc) : IOCD_OK;
  }
  size_t end = at;
  while (!at_eol(ps, end) && ps->s[end] != ',' && ps->s[end] != ' ') {
    end++;
  }
  ps->pos = end;
  const char *t = ps->s + at;
  size_t n = end - at;
  if (n == 0) {
    return fail(ps, at, "missing field value");
  }
  char last = t[n - 1];
  if (is_digit(t[0]) || t[0] == '-' || t[0] == '.') {
    if (last == 'i' && int_syntax(t, n - 1)) {
      const char *c = NULL;
      if ((rc = token_cstr(ps, at, end - 1, &c))) {
        return rc;
      }
      errno = 0;
      char *e;
      long long v = strtoll(c, &e, 10);
      if (errno == ERANGE || *e != '\0') {
        return fail(ps, at, "integer out of range");
      }
      rc = pb_field_int(pb, p, k->p, k->len, (int64_t)v);
      return rc ? fail_nomem(ps, rc) : IOCD_OK;
    }
    if (last == 'u' && int_syntax(t, n - 1)) {
      return fail(ps, at, "unsigned integers (u suffix) are not supported");
    }
    if (last == 'i') {
      return fail(ps, at, "invalid integer");
    }
    if (float_syntax(t, n)) {
      const char *c = NULL;
      if ((rc = token_cstr(ps, at, end, &c))) {
        return rc;
      }
      char *e;
      double v = strtod(c, &e);
      if (*e != '\0') {
        return fail(ps, at, "invalid number");
      }
      if (isinf(v)) {
        return fail(ps, at, "float out of range");
      }
      rc = pb_field_float(pb, p, k->p, k->len, v);
      return rc ? fail_nomem(ps, rc) : IOCD_OK;
    }
  }
  if (nan_or_inf(t, n)) {
    return fail(ps, at, "NaN or infinity");
  }
  if (t[0] == 't' || t[0] == 'T' || t[0] == 'f' || t[0] == 'F') {
    bool b;
    if (!parse_bool(t, n, &b)) {
      return fail(ps, at, "invalid boolean");
    }
    rc = pb_field_bool(pb, p, k->p, k->len, b);
    return rc ? fail_nomem(ps, rc) : IOCD_OK;
  }
  if (is_digit(t[0]) || t[0] == '-' || t[0] == '.') {
    return fail(ps, at, "invalid number");
  }
  return fail(ps, at, "invalid field value");
}

static int parse_fields(struct parser *ps, struct point *p) {
  /* ps->pos is at the first byte of the first field key. */
  for (;;) {
    size_t key_at = ps->pos;
    struct str k = {0};
    int rc = scan_name(ps, &field_key_rules, &ps->key, &k);
    if (rc) {
      return rc;
    }
    if (k.len == 0) {
      return fail(ps, key_at, "missing field key");
    }
    if (at_end(ps, ps->pos) || ps->s[ps->pos] != '=') {
      return fail(ps, ps->pos, "missing '=' after field key");
    }
    const struct field *f = pb_fields(ps->pb, p);
    for (size_t i = 0; i < p->nfields; i++) {
      if (str_eq(&f[i].key, &k)) {
        char tmp[64];
        return fail(ps, key_at, "duplicate field \"%s\"",
                    shown(&k, tmp, sizeof tmp));
      }
    }
    ps->pos++;
    rc = parse_value(ps, p, &k);
    if (rc) {
      return rc;
    }
    if (at_end(ps, ps->pos) || ps->s[ps->pos] != ',') {
      return IOCD_OK;
    }
    ps->pos++;
    if (at_eol(ps, ps->pos) || ps->s[ps->pos] == ' ') {
      return fail(ps, ps->pos, "missing field key");
    }
  }
}

static int parse_timestamp(struct parser *ps, struct point *p) {
  size_t at = ps->pos;
  size_t end = at;
  while (!at_eol(ps, end) && !is_blank(ps->s[end])) {
    end++;
  }
  ps->pos = end;
  if (!int_syntax(ps->s + at, end - at)) {
    return fail(ps, at, "invalid timestamp");
  }
  const char *c = NULL;
  int rc = token_cstr(ps, at, end, &c);
  if (rc) {
    return rc;
  }
  errno = 0;
  char *e;
  long long v = strtoll(c, &e, 10);
  if (errno == ERANGE || *e != '\0') {
    return fail(ps, at, "timestamp out of range");
  }
  int64_t ts = (int64_t)v;
  int64_t m = ps->ts_mult;
  if ((ts > 0 && ts > LP_MAX_NS / m) || (ts < 0 && ts < LP_MIN_NS / m)) {
    return fail(ps, at, "timestamp out of range");
  }
  ts *= m;
  if (ts < LP_MIN_NS || ts > LP_MAX_NS) {
    return fail(ps, at, "timestamp out of range");
  }
  p->ts_ns = ts;
  p->has_ts = true;
  return IOCD_OK;
}

/* Parses the point that starts at ps->pos (a non-blank, non-comment byte)
 * up to and including its end of line. */
static int parse_point(struct parser *ps) {
  size_t at = ps->pos;
  if (ps->s[at] == ',') {
    return fail(ps, at, "missing measurement");
  }
  struct str m = {0};
  int rc = scan_name(ps, &meas_rules, &ps->key, &m);
  if (rc) {
    return rc;
  }
  if (ps->pb->max_points && ps->pb->npoints >= ps->pb->max_points) {
    return fail_limit(ps, at, "too many points (at most %zu)",
                      ps->pb->max_points);
  }
  struct point *p = pb_point_new(ps->pb, m.p, m.len);
  if (!p) {
    return fail_nomem(ps, IOCD_ENOMEM);
  }
  if (at_eol(ps, ps->pos)) {
    return fail(ps, ps->pos, "missing fields");
  }
  if (ps->s[ps->pos] == ',') {
    ps->pos++;
    rc = parse_tags(ps, p);
    if (rc) {
      return rc;
    }
  }
  /* At the space that ends the measurement or the tags. */
  ps->pos = skip_blanks(ps, ps->pos);
  if (at_eol(ps, ps->pos)) {
    return fail(ps, ps->pos, "missing fields");
  }
  rc = parse_fields(ps, p);
  if (rc) {
    return rc;
  }
  size_t before = ps->pos;
  ps->pos = skip_blanks(ps, ps->pos);
  if (!at_eol(ps, ps->pos)) {
    if (ps->pos == before) {
      return fail(ps, ps->pos, "trailing characters");
    }
    rc = parse_timestamp(ps, p);
    if (rc) {
      return rc;
    }
    ps->pos = skip_blanks(ps, ps->pos);
    if (!at_eol(ps, ps->pos)) {
      return fail(ps, ps->pos, "trailing characters");
    }
  }
  if (!at_end(ps, ps->pos) && ps->s[ps->pos] == '\r') {
    return fail(ps, ps->pos, "carriage return");
  }
  if (!at_end(ps, ps->pos)) {
    ps->pos++; /* '\n' */
  }
  return IOCD_OK;
}

int lp_parse(struct point_batch *pb, const char *text, size_t len,
             int64_t ts_mult, struct iocd_err *err) {
  if (ts_mult <= 0) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "line protocol: timestamp multiplier must be > 0");
  }
  struct parser ps = {
      .s = text,
      .len = len,
      .pb = pb,
      .ts_mult = ts_mult,
      .err = err,
  };
  /* Unescaped names and values are never longer than the text. */
  buf_init(&ps.key, len + 1);
  buf_init(&ps.val, len + 1);
  int rc = IOCD_OK;
  while (ps.pos < len) {
    size_t i = skip_blanks(&ps, ps.pos);
    if (at_end(&ps, i) || text[i] == '\n') {
      ps.pos = i + 1;
      continue;
    }
    if (text[i] == '#') {
      const char *nl = memchr(text + i, '\n', len - i);
      ps.pos = nl ? (size_t)(nl - text) + 1 : len;
      continue;
    }
    if (at_eol(&ps, i)) {
      rc = fail(&ps, i, "carriage return");
      goto out;
    }
    ps.pos = i;
    size_t npoints = pb->npoints;
    rc = parse_point(&ps);
    if (rc) {
      /* Only the bad line's own point goes; earlier lines stay. */
      if (pb->npoints > npoints) {
        pb_point_drop_last(pb);
      }
      goto out;
    }
  }
out:
  buf_cleanup(&ps.key);
  buf_cleanup(&ps.val);
  return rc;
}
