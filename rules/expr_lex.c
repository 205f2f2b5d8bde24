/*
 * The lexer of the rules language: numbers, percentages, durations (clock
 * and working time), identifiers, double-quoted strings, parameters and
 * operators, one token at a time into the parser's state (expr_int.h), and
 * the first error with its column.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "rules/expr_int.h"

#define MAX_NUMBER_TEXT 64
/* Durations are kept in milliseconds and used in nanoseconds. */
#define MAX_DURATION_MS (INT64_MAX / NS_PER_MS)

/* Column (1-based, in characters) of byte offset at. */
int expr__column_of(const struct parser *p, size_t at) {
  int col = 1;
  for (size_t i = 0; i < at && i < p->len; i++) {
    if (((unsigned char)p->s[i] & 0xC0) != 0x80) {
      col++;
    }
  }
  return col;
}

/* Records the first error only: what follows it is noise. */
void expr__fail(struct parser *p, size_t at, const char *fmt, ...) {
  if (p->rc) {
    return;
  }
  char what[IOCD_ERR_SIZE];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  p->rc = IOCD_EPARSE;
  p->col = expr__column_of(p, at);
  iocd_err_set(p->err, IOCD_EPARSE, "column %d: %s", p->col, what);
}

void expr__fail_nomem(struct parser *p) {
  if (p->rc) {
    return;
  }
  p->rc = IOCD_ENOMEM;
  p->col = 0;
  iocd_err_set(p->err, IOCD_ENOMEM, "out of memory");
}

static bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

static bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Identifiers: ASCII letters, '_' and any non-ASCII character (the text is
 * valid UTF-8), then digits too. */
bool expr__ident_start(char c) {
  return is_alpha(c) || c == '_' || (unsigned char)c >= 0x80;
}

bool expr__ident_char(char c) {
  return expr__ident_start(c) || is_digit(c);
}

bool expr__is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool expr__tok_is(const struct tok *t, const char *word) {
  return t->kind == T_IDENT && t->idn == strlen(word) &&
         memcmp(t->id, word, t->idn) == 0;
}

bool expr__is_keyword(const char *s, size_t n) {
  return (n == 3 && (!memcmp(s, "and", 3) || !memcmp(s, "not", 3))) ||
         (n == 2 && !memcmp(s, "or", 2));
}

const struct expr__unit expr__units[] = {
    {"w", INT64_C(604800000)}, {"d", INT64_C(86400000)},
    {"h", INT64_C(3600000)},   {"m", INT64_C(60000)},
    {"s", INT64_C(1000)},      {"ms", INT64_C(1)},
};

/* Working-time units, for ranges only: a working hour is an hour of the
 * calendar's office hours, wherever the clock is. */
const struct expr__unit expr__wunits[] = {
    {"wh", INT64_C(3600000)},
    {"wm", INT64_C(60000)},
};

/* Lexes the duration whose first digits start at p->s[start]; the unit text
 * starts at *pos. */
static bool lex_duration(struct parser *p, size_t start, size_t *pos,
                         struct tok *t) {
  size_t i = start;
  int64_t total = 0;
  size_t last_unit = EXPR__NUNITS;
  size_t last_wunit = EXPR__NWUNITS;
  bool clock_units = false, working_units = false;
  for (;;) {
    size_t dstart = i;
    while (i < p->len && is_digit(p->s[i])) {
      i++;
    }
    if (i == dstart) {
      break;
    }
    size_t ustart = i;
    while (i < p->len && expr__ident_char(p->s[i]) && !is_digit(p->s[i])) {
      i++;
    }
    if (i == ustart) {
      expr__fail(
          p, i, "expected a unit after %.*s in %.*s (ms, s, m, h, d or w)",
          (int)(i - dstart), p->s + dstart, (int)(i - start), p->s + start);
      return false;
    }
    size_t u = 0;
    while (u < EXPR__NUNITS &&
           !(strlen(expr__units[u].name) == i - ustart &&
             !memcmp(expr__units[u].name, p->s + ustart, i - ustart))) {
      u++;
    }
    size_t wu = 0;
    while (u == EXPR__NUNITS && wu < EXPR__NWUNITS &&
           !(strlen(expr__wunits[wu].name) == i - ustart &&
             !memcmp(expr__wunits[wu].name, p->s + ustart, i - ustart))) {
      wu++;
    }
    if (u == EXPR__NUNITS && wu == EXPR__NWUNITS) {
      expr__fail(
          p, ustart, "unknown unit '%.*s' in %.*s (use ms, s, m, h, d or w)",
          (int)(i - ustart), p->s + ustart, (int)(i - start), p->s + start);
      return false;
    }
    if ((u < EXPR__NUNITS && last_unit != EXPR__NUNITS && u <= last_unit) ||
        (u == EXPR__NUNITS && last_wunit != EXPR__NWUNITS &&
         wu <= last_wunit)) {
      expr__fail(p, dstart,
                 "the units of a duration go from the largest to the smallest, "
                 "each once: %.*s",
                 (int)(i - start), p->s + start);
      return false;
    }
    if (u < EXPR__NUNITS) {
      last_unit = u;
      clock_units = true;
    } else {
      last_wunit = wu;
      working_units = true;
    }
    if (clock_units && working_units) {
      expr__fail(p, dstart,
                 "a duration cannot mix working time (wh, wm) with clock time: "
                 "%.*s",
                 (int)(i - start), p->s + start);
      return false;
    }
    int64_t unit_ms =
        u < EXPR__NUNITS ? expr__units[u].ms : expr__wunits[wu].ms;
    char digits[MAX_NUMBER_TEXT];
    size_t dn = ustart - dstart;
    if (dn >= sizeof digits) {
      dn = sizeof digits - 1;
    }
    memcpy(digits, p->s + dstart, dn);
    digits[dn] = '\0';
    errno = 0;
    char *end;
    long long n = strtoll(digits, &end, 10);
    if (errno || *end || n > (MAX_DURATION_MS - total) / unit_ms) {
      expr__fail(p, start, "duration out of range: %.*s", (int)(i - start),
                 p->s + start);
      return false;
    }
    total += (int64_t)n * unit_ms;
  }
  *pos = i;
  t->kind = T_NUM;
  t->lk = LIT_DURATION;
  t->ms = total;
  t->working = working_units;
  t->v = (double)total / 1000.0;
  t->shown = t->v;
  return true;
}

static bool lex_number(struct parser *p, size_t start, struct tok *t) {
  size_t i = start;
  bool whole = true;
  while (i < p->len && is_digit(p->s[i])) {
    i++;
  }
  if (i < p->len && p->s[i] == '.') {
    if (i + 1 >= p->len || !is_digit(p->s[i + 1])) {
      expr__fail(p, i + 1, "expected digits after '.' in %.*s",
                 (int)(i + 1 - start), p->s + start);
      return false;
    }
    whole = false;
    i++;
    while (i < p->len && is_digit(p->s[i])) {
      i++;
    }
  }
  if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
    size_t j = i + 1;
    if (j < p->len && (p->s[j] == '+' || p->s[j] == '-')) {
      j++;
    }
    if (j < p->len && is_digit(p->s[j])) {
      whole = false;
      i = j;
      while (i < p->len && is_digit(p->s[i])) {
        i++;
      }
    }
  }
  if (i < p->len && expr__ident_start(p->s[i])) {
    size_t pos;
    if (!whole) {
      size_t u = i;
      while (u < p->len && expr__ident_char(p->s[u]) && !is_digit(p->s[u])) {
        u++;
      }
      bool known = false;
      for (size_t k = 0; k < EXPR__NUNITS; k++) {
        known |= strlen(expr__units[k].name) == u - i &&
                 !memcmp(expr__units[k].name, p->s + i, u - i);
      }
      if (known) {
        expr__fail(p, start, "durations take whole numbers: %.*s",
                   (int)(u - start), p->s + start);
      } else {
        expr__fail(p, i,
                   "unknown unit '%.*s' in %.*s (use ms, s, m, h, d or w)",
                   (int)(u - i), p->s + i, (int)(u - start), p->s + start);
      }
      return false;
    }
    if (!lex_duration(p, start, &pos, t)) {
      return false;
    }
    t->end = pos;
    return true;
  }
  if (i - start >= MAX_NUMBER_TEXT) {
    expr__fail(p, start, "number too long: %.*s", (int)(i - start),
               p->s + start);
    return false;
  }
  char text[MAX_NUMBER_TEXT];
  memcpy(text, p->s + start, i - start);
  text[i - start] = '\0';
  errno = 0;
  char *end;
  double v = strtod(text, &end);
  if (*end || (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL))) {
    expr__fail(p, start, "number out of range: %s", text);
    return false;
  }
  t->kind = T_NUM;
  t->lk = LIT_NUMBER;
  t->v = v;
  t->shown = v;
  t->ms = 0;
  if (i < p->len && p->s[i] == '%') {
    i++;
    t->lk = LIT_PERCENT;
    t->v = v / 100.0;
  }
  t->end = i;
  return true;
}

/* Decodes a double-quoted string starting at p->s[start] into p->str. */
static bool lex_string(struct parser *p, size_t start, struct tok *t) {
  buf_reset(&p->str);
  size_t i = start + 1;
  for (;;) {
    if (i >= p->len) {
      expr__fail(p, start, "unterminated string");
      return false;
    }
    char c = p->s[i];
    if (c == '"') {
      break;
    }
    if (c == '\\') {
      if (i + 1 < p->len && (p->s[i + 1] == '"' || p->s[i + 1] == '\\')) {
        c = p->s[i + 1];
        i++;
      } else if (i + 1 >= p->len) {
        expr__fail(p, start, "unterminated string");
        return false;
      } else {
        size_t n = 1;
        while (i + 1 + n < p->len &&
               ((unsigned char)p->s[i + 1 + n] & 0xC0) == 0x80) {
          n++;
        }
        expr__fail(p, i,
                   "unknown escape '\\%.*s' in a string (only \\\" and \\\\)",
                   (int)n, p->s + i + 1);
        return false;
      }
    }
    if (buf_putc(&p->str, c)) {
      expr__fail_nomem(p);
      return false;
    }
    i++;
  }
  if (!p->str.data && buf_puts(&p->str, "")) {
    expr__fail_nomem(p);
    return false;
  }
  t->kind = T_STR;
  t->end = i + 1;
  return true;
}

/* Lexes the token after the current one into p->tok. */
bool expr__advance(struct parser *p) {
  size_t i = p->tok.end;
  while (i < p->len && expr__is_space(p->s[i])) {
    i++;
  }
  struct tok *t = &p->tok;
  memset(t, 0, sizeof *t);
  t->start = i;
  t->end = i + 1;
  if (i >= p->len) {
    t->kind = T_EOF;
    t->end = i;
    return true;
  }
  char c = p->s[i];
  char c2 = i + 1 < p->len ? p->s[i + 1] : '\0';
  if (is_digit(c)) {
    return lex_number(p, i, t);
  }
  if (expr__ident_start(c)) {
    size_t j = i;
    while (j < p->len && expr__ident_char(p->s[j])) {
      j++;
    }
    t->kind = T_IDENT;
    t->id = p->s + i;
    t->idn = j - i;
    t->end = j;
    return true;
  }
  switch (c) {
    case '"':
      return lex_string(p, i, t);
    case '$': {
      size_t j = i + 1;
      if (j >= p->len || !expr__ident_start(p->s[j])) {
        expr__fail(p, i, "expected a parameter name after '$'");
        return false;
      }
      while (j < p->len && expr__ident_char(p->s[j])) {
        j++;
      }
      t->kind = T_PARAM;
      t->id = p->s + i + 1;
      t->idn = j - i - 1;
      t->end = j;
      return true;
    }
    case '(':
      t->kind = T_LPAREN;
      return true;
    case ')':
      t->kind = T_RPAREN;
      return true;
    case '{':
      t->kind = T_LBRACE;
      return true;
    case '}':
      t->kind = T_RBRACE;
      return true;
    case '[':
      t->kind = T_LBRACKET;
      return true;
    case ']':
      t->kind = T_RBRACKET;
      return true;
    case ',':
      t->kind = T_COMMA;
      return true;
    case '.':
      t->kind = T_DOT;
      return true;
    case '+':
      t->kind = T_PLUS;
      return true;
    case '-':
      t->kind = T_MINUS;
      return true;
    case '*':
      t->kind = T_STAR;
      return true;
    case '/':
      t->kind = T_SLASH;
      return true;
    case '<':
      t->kind = c2 == '=' ? T_LE : T_LT;
      t->end = c2 == '=' ? i + 2 : i + 1;
      return true;
    case '>':
      t->kind = c2 == '=' ? T_GE : T_GT;
      t->end = c2 == '=' ? i + 2 : i + 1;
      return true;
    case '=':
      t->kind = c2 == '=' ? T_EQ : T_ASSIGN;
      t->end = c2 == '=' ? i + 2 : i + 1;
      return true;
    case '!':
      if (c2 == '=') {
        t->kind = T_NE;
        t->end = i + 2;
        return true;
      }
      expr__fail(p, i, "unexpected '!' (use != to compare, not to negate)");
      return false;
    default:
      break;
  }
  if ((unsigned char)c < 0x20 || c == 0x7f) {
    expr__fail(p, i, "unexpected control character 0x%02x", (unsigned char)c);
  } else {
    expr__fail(p, i, "unexpected character '%c'", c);
  }
  return false;
}

/* How the current token reads in a message. */
void expr__describe(const struct parser *p, char *out, size_t n) {
  const struct tok *t = &p->tok;
  if (t->kind == T_EOF) {
    snprintf(out, n, "the end of the expression");
  } else if (t->kind == T_STR) {
    snprintf(out, n, "a string");
  } else {
    size_t len = t->end - t->start;
    snprintf(out, n, "'%.*s'", (int)(len > 40 ? 40 : len), p->s + t->start);
  }
}
