/*
 * The rules language: lexer, recursive-descent parser, canonical printer and
 * evaluator. The grammar, one function per precedence level, is in
 * docs/rules-language.md. Parsing does all the checking (functions, arity,
 * ranges, units), so evaluation cannot fail: it only meets MISSING values,
 * which carry the reason and the culprit's canonical text up to the result.
 *
 * Limits keep a hostile config harmless: EXPR_MAX_LEN bytes of text, MAX_DEPTH
 * levels of nesting and MAX_NODES nodes, which also bounds the recursion of
 * the printer, the evaluator and expr_free.
 */
#include "rules/expr.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/utf8.h"
#include "rules/rules_int.h"

#define MAX_DEPTH 64
#define MAX_NODES 512
#define MAX_NUMBER_TEXT 64
/* Durations are kept in milliseconds and used in nanoseconds. */
#define MAX_DURATION_MS (INT64_MAX / NS_PER_MS)

/* ---- the tree ------------------------------------------------------------ */

enum kind { K_NUM, K_PARAM, K_SEL, K_CALL, K_NEG, K_NOT, K_BIN };

enum lit { LIT_NUMBER, LIT_PERCENT, LIT_DURATION };

enum op {
  OP_OR,
  OP_AND,
  OP_LT,
  OP_LE,
  OP_GT,
  OP_GE,
  OP_EQ,
  OP_NE,
  OP_ADD,
  OP_SUB,
  OP_MUL,
  OP_DIV,
};

static const char *const op_text[] = {
    [OP_OR] = "or", [OP_AND] = "and", [OP_LT] = "<",  [OP_LE] = "<=",
    [OP_GT] = ">",  [OP_GE] = ">=",   [OP_EQ] = "==", [OP_NE] = "!=",
    [OP_ADD] = "+", [OP_SUB] = "-",   [OP_MUL] = "*", [OP_DIV] = "/",
};

enum fn {
  F_AVG,
  F_MIN,
  F_MAX,
  F_SUM,
  F_COUNT,
  F_LAST,
  F_DELTA,
  F_INCREASE,
  F_RATE,
  F_AGE,
  F_ABSENT,
  F_DURING,
};

/* What a function takes: a selector with a range, an instant selector or a
 * bare measurement, or a calendar name and an optional duration. */
enum fn_args { FA_WINDOW, FA_INSTANT, FA_CALENDAR };

static const struct fninfo {
  const char *name;
  enum fn fn;
  enum fn_args args;
} fns[] = {
    {"avg", F_AVG, FA_WINDOW},        {"min", F_MIN, FA_WINDOW},
    {"max", F_MAX, FA_WINDOW},        {"sum", F_SUM, FA_WINDOW},
    {"count", F_COUNT, FA_WINDOW},    {"last", F_LAST, FA_WINDOW},
    {"delta", F_DELTA, FA_WINDOW},    {"increase", F_INCREASE, FA_WINDOW},
    {"rate", F_RATE, FA_WINDOW},      {"age", F_AGE, FA_INSTANT},
    {"absent", F_ABSENT, FA_INSTANT}, {"during", F_DURING, FA_CALENDAR},
};

struct selector {
  char *meas;
  char *field; /* NULL: a bare measurement (age/absent only) */
  struct matcher *m;
  size_t nm;
  int64_t range_ms; /* 0: no range */
  bool working;     /* the range is working time ([2wh]) */
  size_t mn, fn;    /* lengths of meas and field */
  uint64_t fam_hash; /* series__family_hash of meas and field */
};

struct node {
  enum kind kind;
  int col;    /* 1-based column of the node's first character */
  char *text; /* canonical text of a possible culprit: selectors, calls,
                 parameters; for a division, its divisor's */
  uint64_t text_hash; /* of text, for struct expr_memo */
  union {
    struct {
      enum lit lk;
      double v;     /* the value: a percentage / 100, a duration in s */
      double shown; /* a percentage as written (30 for 30%) */
      int64_t ms;   /* a duration */
    } num;
    char *param;
    struct selector sel;
    struct {
      const struct fninfo *fi;
      struct node *arg; /* K_SEL, except for during */
      char *cal;        /* during: the calendar name */
      int64_t ms;       /* during: the optional duration, 0 if none */
    } call;
    struct {
      enum op op;
      struct node *l, *r;
    } bin;
    struct node *sub; /* K_NEG, K_NOT */
  } u;
};

struct expr {
  struct node *root;
  char *text;
  struct expr_read *reads;
  size_t nreads;
  bool silence; /* uses age() or absent() */
  bool working; /* uses a working-time range */
  const char **params;
  size_t nparams;
  const char **cals;
  size_t ncals;
};

static void node_free(struct node *n) {
  if (!n) {
    return;
  }
  free(n->text);
  switch (n->kind) {
    case K_NUM:
      break;
    case K_PARAM:
      free(n->u.param);
      break;
    case K_SEL:
      free(n->u.sel.meas);
      free(n->u.sel.field);
      for (size_t i = 0; i < n->u.sel.nm; i++) {
        free(n->u.sel.m[i].key);
        free(n->u.sel.m[i].value);
      }
      free(n->u.sel.m);
      break;
    case K_CALL:
      node_free(n->u.call.arg);
      free(n->u.call.cal);
      break;
    case K_NEG:
    case K_NOT:
      node_free(n->u.sub);
      break;
    case K_BIN:
      node_free(n->u.bin.l);
      node_free(n->u.bin.r);
      break;
  }
  free(n);
}

void expr_free(struct expr *e) {
  if (!e) {
    return;
  }
  node_free(e->root);
  free(e->text);
  free(e->reads);
  free(e->params);
  free(e->cals);
  free(e);
}

/* ---- lexer --------------------------------------------------------------- */

enum tok_kind {
  T_EOF,
  T_NUM,
  T_IDENT,
  T_STR,
  T_PARAM,
  T_LPAREN,
  T_RPAREN,
  T_LBRACE,
  T_RBRACE,
  T_LBRACKET,
  T_RBRACKET,
  T_COMMA,
  T_DOT,
  T_PLUS,
  T_MINUS,
  T_STAR,
  T_SLASH,
  T_LT,
  T_LE,
  T_GT,
  T_GE,
  T_EQ,
  T_NE,
  T_ASSIGN,
};

struct tok {
  enum tok_kind kind;
  size_t start, end; /* byte offsets in the text */
  /* T_NUM */
  enum lit lk;
  double v, shown;
  int64_t ms;
  bool working; /* a duration in working-time units (wh, wm) */
  /* T_IDENT, T_PARAM (the name, without '$'); T_STR is in parser.str */
  const char *id;
  size_t idn;
};

struct parser {
  const char *s;
  size_t len;
  struct tok tok;
  struct buf str; /* the decoded text of the current T_STR */
  struct iocd_err *err;
  int rc;
  int col;
  int depth;
  size_t nodes;
};

/* Column (1-based, in characters) of byte offset at. */
static int column_of(const struct parser *p, size_t at) {
  int col = 1;
  for (size_t i = 0; i < at && i < p->len; i++) {
    if (((unsigned char)p->s[i] & 0xC0) != 0x80) {
      col++;
    }
  }
  return col;
}

/* Records the first error only: what follows it is noise. */
static void fail(struct parser *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct parser *p, size_t at, const char *fmt, ...) {
  if (p->rc) {
    return;
  }
  char what[IOCD_ERR_SIZE];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  p->rc = IOCD_EPARSE;
  p->col = column_of(p, at);
  iocd_err_set(p->err, IOCD_EPARSE, "column %d: %s", p->col, what);
}

static void fail_nomem(struct parser *p) {
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
static bool ident_start(char c) {
  return is_alpha(c) || c == '_' || (unsigned char)c >= 0x80;
}

static bool ident_char(char c) {
  return ident_start(c) || is_digit(c);
}

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool tok_is(const struct tok *t, const char *word) {
  return t->kind == T_IDENT && t->idn == strlen(word) &&
         memcmp(t->id, word, t->idn) == 0;
}

static bool is_keyword(const char *s, size_t n) {
  return (n == 3 && (!memcmp(s, "and", 3) || !memcmp(s, "not", 3))) ||
         (n == 2 && !memcmp(s, "or", 2));
}

static const struct {
  const char *name;
  int64_t ms;
} units[] = {
    {"w", INT64_C(604800000)}, {"d", INT64_C(86400000)},
    {"h", INT64_C(3600000)},   {"m", INT64_C(60000)},
    {"s", INT64_C(1000)},      {"ms", INT64_C(1)},
};

#define NUNITS (sizeof units / sizeof units[0])

/* Working-time units, for ranges only: a working hour is an hour of the
 * calendar's office hours, wherever the clock is. */
static const struct {
  const char *name;
  int64_t ms;
} wunits[] = {
    {"wh", INT64_C(3600000)},
    {"wm", INT64_C(60000)},
};

#define NWUNITS (sizeof wunits / sizeof wunits[0])

/* Lexes the duration whose first digits start at p->s[start]; the unit text
 * starts at *pos. */
static bool lex_duration(struct parser *p, size_t start, size_t *pos,
                         struct tok *t) {
  size_t i = start;
  int64_t total = 0;
  size_t last_unit = NUNITS;
  size_t last_wunit = NWUNITS;
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
    while (i < p->len && ident_char(p->s[i]) && !is_digit(p->s[i])) {
      i++;
    }
    if (i == ustart) {
      fail(p, i, "expected a unit after %.*s in %.*s (ms, s, m, h, d or w)",
           (int)(i - dstart), p->s + dstart, (int)(i - start), p->s + start);
      return false;
    }
    size_t u = 0;
    while (u < NUNITS && !(strlen(units[u].name) == i - ustart &&
                           !memcmp(units[u].name, p->s + ustart, i - ustart))) {
      u++;
    }
    size_t wu = 0;
    while (u == NUNITS && wu < NWUNITS &&
           !(strlen(wunits[wu].name) == i - ustart &&
             !memcmp(wunits[wu].name, p->s + ustart, i - ustart))) {
      wu++;
    }
    if (u == NUNITS && wu == NWUNITS) {
      fail(p, ustart, "unknown unit '%.*s' in %.*s (use ms, s, m, h, d or w)",
           (int)(i - ustart), p->s + ustart, (int)(i - start), p->s + start);
      return false;
    }
    if ((u < NUNITS && last_unit != NUNITS && u <= last_unit) ||
        (u == NUNITS && last_wunit != NWUNITS && wu <= last_wunit)) {
      fail(p, dstart,
           "the units of a duration go from the largest to the smallest, "
           "each once: %.*s",
           (int)(i - start), p->s + start);
      return false;
    }
    if (u < NUNITS) {
      last_unit = u;
      clock_units = true;
    } else {
      last_wunit = wu;
      working_units = true;
    }
    if (clock_units && working_units) {
      fail(p, dstart,
           "a duration cannot mix working time (wh, wm) with clock time: "
           "%.*s",
           (int)(i - start), p->s + start);
      return false;
    }
    int64_t unit_ms = u < NUNITS ? units[u].ms : wunits[wu].ms;
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
      fail(p, start, "duration out of range: %.*s", (int)(i - start),
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
      fail(p, i + 1, "expected digits after '.' in %.*s", (int)(i + 1 - start),
           p->s + start);
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
  if (i < p->len && ident_start(p->s[i])) {
    size_t pos;
    if (!whole) {
      size_t u = i;
      while (u < p->len && ident_char(p->s[u]) && !is_digit(p->s[u])) {
        u++;
      }
      bool known = false;
      for (size_t k = 0; k < NUNITS; k++) {
        known |= strlen(units[k].name) == u - i &&
                 !memcmp(units[k].name, p->s + i, u - i);
      }
      if (known) {
        fail(p, start, "durations take whole numbers: %.*s", (int)(u - start),
             p->s + start);
      } else {
        fail(p, i, "unknown unit '%.*s' in %.*s (use ms, s, m, h, d or w)",
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
    fail(p, start, "number too long: %.*s", (int)(i - start), p->s + start);
    return false;
  }
  char text[MAX_NUMBER_TEXT];
  memcpy(text, p->s + start, i - start);
  text[i - start] = '\0';
  errno = 0;
  char *end;
  double v = strtod(text, &end);
  if (*end || (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL))) {
    fail(p, start, "number out of range: %s", text);
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
      fail(p, start, "unterminated string");
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
        fail(p, start, "unterminated string");
        return false;
      } else {
        size_t n = 1;
        while (i + 1 + n < p->len &&
               ((unsigned char)p->s[i + 1 + n] & 0xC0) == 0x80) {
          n++;
        }
        fail(p, i, "unknown escape '\\%.*s' in a string (only \\\" and \\\\)",
             (int)n, p->s + i + 1);
        return false;
      }
    }
    if (buf_putc(&p->str, c)) {
      fail_nomem(p);
      return false;
    }
    i++;
  }
  if (!p->str.data && buf_puts(&p->str, "")) {
    fail_nomem(p);
    return false;
  }
  t->kind = T_STR;
  t->end = i + 1;
  return true;
}

/* Lexes the token after the current one into p->tok. */
static bool advance(struct parser *p) {
  size_t i = p->tok.end;
  while (i < p->len && is_space(p->s[i])) {
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
  if (ident_start(c)) {
    size_t j = i;
    while (j < p->len && ident_char(p->s[j])) {
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
      if (j >= p->len || !ident_start(p->s[j])) {
        fail(p, i, "expected a parameter name after '$'");
        return false;
      }
      while (j < p->len && ident_char(p->s[j])) {
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
      fail(p, i, "unexpected '!' (use != to compare, not to negate)");
      return false;
    default:
      break;
  }
  if ((unsigned char)c < 0x20 || c == 0x7f) {
    fail(p, i, "unexpected control character 0x%02x", (unsigned char)c);
  } else {
    fail(p, i, "unexpected character '%c'", c);
  }
  return false;
}

/* How the current token reads in a message. */
static void describe(const struct parser *p, char *out, size_t n) {
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

/* ---- parser -------------------------------------------------------------- */

static struct node *node_new(struct parser *p, enum kind kind, size_t at) {
  if (++p->nodes > MAX_NODES) {
    fail(p, at, "expression too long: more than %d terms", MAX_NODES);
    return NULL;
  }
  struct node *n = calloc(1, sizeof *n);
  if (!n) {
    fail_nomem(p);
    return NULL;
  }
  n->kind = kind;
  n->col = column_of(p, at);
  return n;
}

static bool enter(struct parser *p, size_t at) {
  if (++p->depth > MAX_DEPTH) {
    fail(p, at, "expression nests deeper than %d levels", MAX_DEPTH);
    return false;
  }
  return true;
}

static char *dup_n(struct parser *p, const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (!d) {
    fail_nomem(p);
    return NULL;
  }
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

/* The text of the current T_IDENT or T_STR, as a new string. */
static char *name_of_tok(struct parser *p) {
  if (p->tok.kind == T_STR) {
    return dup_n(p, p->str.data, p->str.len);
  }
  return dup_n(p, p->tok.id, p->tok.idn);
}

static struct node *parse_or(struct parser *p);

/* {key="value", key!="value"} after a selector's name. */
static bool parse_matchers(struct parser *p, struct selector *sel) {
  size_t open = p->tok.start;
  if (!advance(p)) {
    return false;
  }
  size_t cap = 0;
  while (p->tok.kind != T_RBRACE) {
    if (p->tok.kind != T_IDENT && p->tok.kind != T_STR) {
      char got[64];
      describe(p, got, sizeof got);
      fail(p, p->tok.start, "expected a label name or '}', got %s", got);
      return false;
    }
    if (p->tok.kind == T_STR && p->str.len == 0) {
      fail(p, p->tok.start, "a label name cannot be empty");
      return false;
    }
    if (sel->nm == cap) {
      size_t ncap = cap ? cap * 2 : 2;
      struct matcher *m = realloc(sel->m, ncap * sizeof *m);
      if (!m) {
        fail_nomem(p);
        return false;
      }
      sel->m = m;
      cap = ncap;
    }
    struct matcher *m = &sel->m[sel->nm];
    memset(m, 0, sizeof *m);
    sel->nm++;
    m->key = name_of_tok(p);
    if (!m->key || !advance(p)) {
      return false;
    }
    if (p->tok.kind != T_ASSIGN && p->tok.kind != T_NE) {
      char got[64];
      describe(p, got, sizeof got);
      fail(p, p->tok.start, "expected '=' or '!=' after label %s, got %s",
           m->key, got);
      return false;
    }
    m->neg = p->tok.kind == T_NE;
    if (!advance(p)) {
      return false;
    }
    if (p->tok.kind != T_STR) {
      char got[64];
      describe(p, got, sizeof got);
      fail(p, p->tok.start, "expected a label value in double quotes, got %s",
           got);
      return false;
    }
    m->value = name_of_tok(p);
    if (!m->value || !advance(p)) {
      return false;
    }
    if (p->tok.kind == T_COMMA) {
      if (!advance(p)) {
        return false;
      }
    } else if (p->tok.kind != T_RBRACE) {
      char got[64];
      describe(p, got, sizeof got);
      fail(p, p->tok.start,
           "expected ',' or '}' to close '{' at column %d, "
           "got %s",
           column_of(p, open), got);
      return false;
    }
  }
  return advance(p);
}

/* The function a selector is an argument of (NULL: none) decides what it
 * may be: a range is required by window functions and refused elsewhere,
 * a bare measurement is allowed only in age() and absent(). */
static struct node *parse_selector(struct parser *p, const struct fninfo *in) {
  size_t start = p->tok.start;
  struct node *n = node_new(p, K_SEL, start);
  if (!n) {
    return NULL;
  }
  struct selector *sel = &n->u.sel;
  if (p->tok.kind == T_STR && p->str.len == 0) {
    fail(p, start, "a measurement name cannot be empty");
    goto err;
  }
  sel->meas = name_of_tok(p);
  if (!sel->meas) {
    goto err;
  }
  size_t name_end = p->tok.end;
  if (!advance(p)) {
    goto err;
  }
  if (p->tok.kind == T_DOT && p->tok.start == name_end) {
    size_t dot_end = p->tok.end;
    if (!advance(p)) {
      goto err;
    }
    if ((p->tok.kind != T_IDENT && p->tok.kind != T_STR) ||
        p->tok.start != dot_end) {
      fail(p, dot_end, "expected a field name right after '%s.'", sel->meas);
      goto err;
    }
    if (p->tok.kind == T_STR && p->str.len == 0) {
      fail(p, p->tok.start, "a field name cannot be empty");
      goto err;
    }
    sel->field = name_of_tok(p);
    if (!sel->field || !advance(p)) {
      goto err;
    }
  }
  if (p->tok.kind == T_LBRACE && !parse_matchers(p, sel)) {
    goto err;
  }
  if (!sel->field && !(in && in->args == FA_INSTANT)) {
    fail(p, start,
         "%s needs a field, as in %s.<field> (a measurement alone is "
         "allowed only in age() and absent())",
         sel->meas, sel->meas);
    goto err;
  }
  if (p->tok.kind == T_LBRACKET) {
    size_t open = p->tok.start;
    if (!in || in->args != FA_WINDOW) {
      if (in) {
        fail(p, open, "%s takes no range", in->name);
      } else {
        fail(p, open,
             "a range is allowed only inside avg, min, max, sum, count, "
             "last, delta, increase and rate");
      }
      goto err;
    }
    if (!advance(p)) {
      goto err;
    }
    if (p->tok.kind != T_NUM || p->tok.lk != LIT_DURATION) {
      fail(p, p->tok.start, "expected a duration such as 15m in the range");
      goto err;
    }
    if (p->tok.ms <= 0) {
      fail(p, p->tok.start, "a range must be longer than zero");
      goto err;
    }
    sel->range_ms = p->tok.ms;
    sel->working = p->tok.working;
    if (!advance(p)) {
      goto err;
    }
    if (p->tok.kind != T_RBRACKET) {
      fail(p, p->tok.start, "expected ']' to close '[' at column %d",
           column_of(p, open));
      goto err;
    }
    if (!advance(p)) {
      goto err;
    }
  } else if (in && in->args == FA_WINDOW) {
    fail(p, p->tok.start, "%s needs a range such as [15m] after %s%s%s",
         in->name, sel->meas, sel->field ? "." : "",
         sel->field ? sel->field : "");
    goto err;
  }
  return n;
err:
  node_free(n);
  return NULL;
}

static bool starts_selector(const struct parser *p) {
  return (p->tok.kind == T_IDENT && !is_keyword(p->tok.id, p->tok.idn)) ||
         p->tok.kind == T_STR;
}

/* Whether the current identifier is followed by '(' (a call). */
static bool before_paren(const struct parser *p) {
  size_t i = p->tok.end;
  while (i < p->len && is_space(p->s[i])) {
    i++;
  }
  return i < p->len && p->s[i] == '(';
}

static bool parse_calendar_args(struct parser *p, struct node *n) {
  if (p->tok.kind != T_STR || p->str.len == 0) {
    fail(p, p->tok.start,
         "during takes a calendar name in double quotes, as in "
         "during(\"office_hours\")");
    return false;
  }
  n->u.call.cal = name_of_tok(p);
  if (!n->u.call.cal || !advance(p)) {
    return false;
  }
  if (p->tok.kind != T_COMMA) {
    return true;
  }
  if (!advance(p)) {
    return false;
  }
  if (p->tok.kind != T_NUM || p->tok.lk != LIT_DURATION || p->tok.ms <= 0 ||
      p->tok.working) {
    fail(p, p->tok.start,
         "expected a duration such as 2h as the second argument of during");
    return false;
  }
  n->u.call.ms = p->tok.ms;
  return advance(p);
}

static struct node *parse_call(struct parser *p) {
  size_t start = p->tok.start;
  const struct fninfo *fi = NULL;
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    if (tok_is(&p->tok, fns[i].name)) {
      fi = &fns[i];
    }
  }
  if (!fi) {
    fail(p, start, "unknown function '%.*s'", (int)p->tok.idn, p->tok.id);
    return NULL;
  }
  if (!enter(p, start)) {
    return NULL;
  }
  struct node *n = node_new(p, K_CALL, start);
  if (!n) {
    return NULL;
  }
  n->u.call.fi = fi;
  if (!advance(p) || !advance(p)) { /* the name, then '(' */
    goto err;
  }
  if (p->tok.kind == T_RPAREN) {
    fail(p, p->tok.start, "%s takes %s, got none", fi->name,
         fi->args == FA_CALENDAR ? "1 or 2 arguments" : "1 argument");
    goto err;
  }
  if (fi->args == FA_CALENDAR) {
    if (!parse_calendar_args(p, n)) {
      goto err;
    }
  } else {
    if (!starts_selector(p)) {
      fail(p, p->tok.start,
           "the argument of %s must be a series selector such as %s", fi->name,
           fi->args == FA_WINDOW ? "igate.received[1d]" : "igate.received");
      goto err;
    }
    n->u.call.arg = parse_selector(p, fi);
    if (!n->u.call.arg) {
      goto err;
    }
  }
  if (p->tok.kind == T_COMMA) {
    fail(
        p, p->tok.start, "%s takes %s", fi->name,
        fi->args == FA_CALENDAR ? "at most 2 arguments" : "exactly 1 argument");
    goto err;
  }
  if (p->tok.kind != T_RPAREN) {
    fail(p, p->tok.start, "expected ')' after the arguments of %s", fi->name);
    goto err;
  }
  if (!advance(p)) {
    goto err;
  }
  p->depth--;
  return n;
err:
  node_free(n);
  return NULL;
}

static struct node *parse_primary(struct parser *p) {
  size_t start = p->tok.start;
  switch (p->tok.kind) {
    case T_NUM: {
      if (p->tok.working) {
        fail(p, start,
             "working-time durations (wh, wm) are allowed only in a range, "
             "as in increase(idesk.documents_sent[2wh])");
        return NULL;
      }
      struct node *n = node_new(p, K_NUM, start);
      if (!n) {
        return NULL;
      }
      n->u.num.lk = p->tok.lk;
      n->u.num.v = p->tok.v;
      n->u.num.shown = p->tok.shown;
      n->u.num.ms = p->tok.ms;
      if (!advance(p)) {
        node_free(n);
        return NULL;
      }
      return n;
    }
    case T_PARAM: {
      struct node *n = node_new(p, K_PARAM, start);
      if (!n) {
        return NULL;
      }
      n->u.param = dup_n(p, p->tok.id, p->tok.idn);
      if (!n->u.param || !advance(p)) {
        node_free(n);
        return NULL;
      }
      return n;
    }
    case T_LPAREN: {
      if (!enter(p, start) || !advance(p)) {
        return NULL;
      }
      struct node *n = parse_or(p);
      if (!n) {
        return NULL;
      }
      if (p->tok.kind != T_RPAREN) {
        char got[64];
        describe(p, got, sizeof got);
        fail(p, p->tok.start, "expected ')' to close '(' at column %d, got %s",
             column_of(p, start), got);
        node_free(n);
        return NULL;
      }
      p->depth--;
      if (!advance(p)) {
        node_free(n);
        return NULL;
      }
      return n;
    }
    case T_IDENT:
      if (is_keyword(p->tok.id, p->tok.idn)) {
        break;
      }
      if (before_paren(p)) {
        return parse_call(p);
      }
      return parse_selector(p, NULL);
    case T_STR:
      return parse_selector(p, NULL);
    default:
      break;
  }
  char got[64];
  describe(p, got, sizeof got);
  fail(p, start, "expected a number, a series, a parameter or '(', got %s",
       got);
  return NULL;
}

static struct node *parse_unary(struct parser *p) {
  if (p->tok.kind != T_MINUS) {
    return parse_primary(p);
  }
  size_t start = p->tok.start;
  if (!enter(p, start) || !advance(p)) {
    return NULL;
  }
  struct node *sub = parse_unary(p);
  if (!sub) {
    return NULL;
  }
  p->depth--;
  struct node *n = node_new(p, K_NEG, start);
  if (!n) {
    node_free(sub);
    return NULL;
  }
  n->u.sub = sub;
  return n;
}

static struct node *binary(struct parser *p, enum op op, struct node *l,
                           struct node *r, size_t at) {
  struct node *n = node_new(p, K_BIN, at);
  if (!n) {
    node_free(l);
    node_free(r);
    return NULL;
  }
  n->col = l->col;
  n->u.bin.op = op;
  n->u.bin.l = l;
  n->u.bin.r = r;
  return n;
}

static struct node *parse_mul(struct parser *p) {
  struct node *l = parse_unary(p);
  while (l && (p->tok.kind == T_STAR || p->tok.kind == T_SLASH)) {
    enum op op = p->tok.kind == T_STAR ? OP_MUL : OP_DIV;
    size_t at = p->tok.start;
    struct node *r = advance(p) ? parse_unary(p) : NULL;
    if (!r) {
      node_free(l);
      return NULL;
    }
    l = binary(p, op, l, r, at);
  }
  return l;
}

static struct node *parse_add(struct parser *p) {
  struct node *l = parse_mul(p);
  while (l && (p->tok.kind == T_PLUS || p->tok.kind == T_MINUS)) {
    enum op op = p->tok.kind == T_PLUS ? OP_ADD : OP_SUB;
    size_t at = p->tok.start;
    struct node *r = advance(p) ? parse_mul(p) : NULL;
    if (!r) {
      node_free(l);
      return NULL;
    }
    l = binary(p, op, l, r, at);
  }
  return l;
}

static bool cmp_op(enum tok_kind k, enum op *op) {
  switch (k) {
    case T_LT:
      *op = OP_LT;
      return true;
    case T_LE:
      *op = OP_LE;
      return true;
    case T_GT:
      *op = OP_GT;
      return true;
    case T_GE:
      *op = OP_GE;
      return true;
    case T_EQ:
      *op = OP_EQ;
      return true;
    case T_NE:
      *op = OP_NE;
      return true;
    default:
      return false;
  }
}

static struct node *parse_cmp(struct parser *p) {
  struct node *l = parse_add(p);
  if (!l) {
    return NULL;
  }
  enum op op;
  if (!cmp_op(p->tok.kind, &op)) {
    if (p->tok.kind == T_ASSIGN) {
      fail(p, p->tok.start, "unexpected '=' (use == to compare)");
      node_free(l);
      return NULL;
    }
    return l;
  }
  size_t at = p->tok.start;
  struct node *r = advance(p) ? parse_add(p) : NULL;
  if (!r) {
    node_free(l);
    return NULL;
  }
  enum op next;
  if (cmp_op(p->tok.kind, &next)) {
    fail(p, p->tok.start, "comparisons do not chain; combine them with and");
    node_free(l);
    node_free(r);
    return NULL;
  }
  return binary(p, op, l, r, at);
}

static struct node *parse_not(struct parser *p) {
  if (!tok_is(&p->tok, "not")) {
    return parse_cmp(p);
  }
  size_t start = p->tok.start;
  if (!enter(p, start) || !advance(p)) {
    return NULL;
  }
  struct node *sub = parse_not(p);
  if (!sub) {
    return NULL;
  }
  p->depth--;
  struct node *n = node_new(p, K_NOT, start);
  if (!n) {
    node_free(sub);
    return NULL;
  }
  n->u.sub = sub;
  return n;
}

static struct node *parse_and(struct parser *p) {
  struct node *l = parse_not(p);
  while (l && tok_is(&p->tok, "and")) {
    size_t at = p->tok.start;
    struct node *r = advance(p) ? parse_not(p) : NULL;
    if (!r) {
      node_free(l);
      return NULL;
    }
    l = binary(p, OP_AND, l, r, at);
  }
  return l;
}

static struct node *parse_or(struct parser *p) {
  struct node *l = parse_and(p);
  while (l && tok_is(&p->tok, "or")) {
    size_t at = p->tok.start;
    struct node *r = advance(p) ? parse_and(p) : NULL;
    if (!r) {
      node_free(l);
      return NULL;
    }
    l = binary(p, OP_OR, l, r, at);
  }
  return l;
}

/* ---- canonical text ------------------------------------------------------ */

/* Binding strength, as in the grammar: or 1, and 2, not 3, comparisons 4,
 * + - 5, * / 6, unary minus 7, everything else 8. */
static int prec_of(const struct node *n) {
  switch (n->kind) {
    case K_BIN:
      switch (n->u.bin.op) {
        case OP_OR:
          return 1;
        case OP_AND:
          return 2;
        case OP_ADD:
        case OP_SUB:
          return 5;
        case OP_MUL:
        case OP_DIV:
          return 6;
        case OP_LT:
        case OP_LE:
        case OP_GT:
        case OP_GE:
        case OP_EQ:
        case OP_NE:
          return 4;
      }
      return 4;
    case K_NOT:
      return 3;
    case K_NEG:
      return 7;
    case K_NUM:
    case K_PARAM:
    case K_SEL:
    case K_CALL:
      break;
  }
  return 8;
}

/* The fewest significant digits that read back to the same double, written
 * without an exponent when 17 digits or fewer allow it (1000, not 1e+03). */
static int put_number(struct buf *b, double v) {
  char text[40];
  int prec = 1;
  for (; prec < 17; prec++) {
    snprintf(text, sizeof text, "%.*g", prec, v);
    if (strtod(text, NULL) == v) {
      break;
    }
  }
  snprintf(text, sizeof text, "%.*g", prec, v);
  for (int q = prec; q <= 17 && strchr(text, 'e'); q++) {
    char plain[40];
    snprintf(plain, sizeof plain, "%.*g", q, v);
    if (!strchr(plain, 'e')) {
      memcpy(text, plain, sizeof text);
    }
  }
  return buf_puts(b, text);
}

static int put_duration(struct buf *b, int64_t ms) {
  if (ms == 0) {
    return buf_puts(b, "0s");
  }
  int rc = IOCD_OK;
  for (size_t u = 0; u < NUNITS && !rc; u++) {
    if (ms >= units[u].ms) {
      rc =
          buf_printf(b, "%lld%s", (long long)(ms / units[u].ms), units[u].name);
      ms %= units[u].ms;
    }
  }
  return rc;
}

static int put_wduration(struct buf *b, int64_t ms) {
  int rc = IOCD_OK;
  for (size_t u = 0; u < NWUNITS && !rc; u++) {
    if (ms >= wunits[u].ms) {
      rc = buf_printf(b, "%lld%s", (long long)(ms / wunits[u].ms),
                      wunits[u].name);
      ms %= wunits[u].ms;
    }
  }
  return rc;
}

static int put_quoted(struct buf *b, const char *s) {
  int rc = buf_putc(b, '"');
  for (; *s && !rc; s++) {
    if (*s == '"' || *s == '\\') {
      rc = buf_putc(b, '\\');
    }
    if (!rc) {
      rc = buf_putc(b, *s);
    }
  }
  return rc ? rc : buf_putc(b, '"');
}

/* A name as an identifier when it lexes back as one, else quoted. Keywords
 * are quoted where the parser would read them as keywords. */
static int put_name(struct buf *b, const char *s, bool quote_keywords) {
  size_t n = strlen(s);
  bool plain = n > 0 && ident_start(s[0]);
  for (size_t i = 1; plain && i < n; i++) {
    plain = ident_char(s[i]);
  }
  if (plain && quote_keywords && is_keyword(s, n)) {
    plain = false;
  }
  return plain ? buf_puts(b, s) : put_quoted(b, s);
}

static int render(struct buf *b, const struct node *n, int min_prec);

static int render_sel(struct buf *b, const struct selector *sel) {
  int rc = put_name(b, sel->meas, true);
  if (!rc && sel->field) {
    rc = buf_putc(b, '.');
    if (!rc) {
      rc = put_name(b, sel->field, false);
    }
  }
  if (!rc && sel->nm) {
    rc = buf_putc(b, '{');
    for (size_t i = 0; i < sel->nm && !rc; i++) {
      if (i) {
        rc = buf_puts(b, ", ");
      }
      if (!rc) {
        rc = put_name(b, sel->m[i].key, false);
      }
      if (!rc) {
        rc = buf_puts(b, sel->m[i].neg ? "!=" : "=");
      }
      if (!rc) {
        rc = put_quoted(b, sel->m[i].value);
      }
    }
    if (!rc) {
      rc = buf_putc(b, '}');
    }
  }
  if (!rc && sel->range_ms) {
    rc = buf_putc(b, '[');
    if (!rc) {
      rc = sel->working ? put_wduration(b, sel->range_ms)
                        : put_duration(b, sel->range_ms);
    }
    if (!rc) {
      rc = buf_putc(b, ']');
    }
  }
  return rc;
}

static int render_inner(struct buf *b, const struct node *n) {
  int rc = IOCD_OK;
  switch (n->kind) {
    case K_NUM:
      if (n->u.num.lk == LIT_DURATION) {
        return put_duration(b, n->u.num.ms);
      }
      rc = put_number(b, n->u.num.shown);
      if (!rc && n->u.num.lk == LIT_PERCENT) {
        rc = buf_putc(b, '%');
      }
      return rc;
    case K_PARAM:
      return buf_printf(b, "$%s", n->u.param);
    case K_SEL:
      return render_sel(b, &n->u.sel);
    case K_CALL:
      rc = buf_printf(b, "%s(", n->u.call.fi->name);
      if (!rc && n->u.call.arg) {
        rc = render_sel(b, &n->u.call.arg->u.sel);
      }
      if (!rc && n->u.call.cal) {
        rc = put_quoted(b, n->u.call.cal);
        if (!rc && n->u.call.ms) {
          rc = buf_puts(b, ", ");
          if (!rc) {
            rc = put_duration(b, n->u.call.ms);
          }
        }
      }
      return rc ? rc : buf_putc(b, ')');
    case K_NEG:
      rc = buf_putc(b, '-');
      if (rc) {
        return rc;
      }
      /* "--x" would read as a typo; "- -x" parses to the same tree at the
       * same depth (parentheses would add a level per minus, so that a
       * deep chain that parsed would not parse again once printed). */
      if (n->u.sub->kind == K_NEG) {
        rc = buf_putc(b, ' ');
        if (rc) {
          return rc;
        }
      }
      return render(b, n->u.sub, 7);
    case K_NOT:
      rc = buf_puts(b, "not ");
      return rc ? rc : render(b, n->u.sub, 3);
    case K_BIN: {
      int prec = prec_of(n);
      /* Left-associative: the right operand binds tighter. Comparisons do
       * not chain, so both their operands must. */
      int lp = prec == 4 ? 5 : prec;
      rc = render(b, n->u.bin.l, lp);
      if (!rc) {
        rc = buf_printf(b, " %s ", op_text[n->u.bin.op]);
      }
      return rc ? rc : render(b, n->u.bin.r, prec + 1);
    }
  }
  return rc;
}

static int render(struct buf *b, const struct node *n, int min_prec) {
  bool paren = prec_of(n) < min_prec;
  int rc = paren ? buf_putc(b, '(') : IOCD_OK;
  if (!rc) {
    rc = render_inner(b, n);
  }
  if (!rc && paren) {
    rc = buf_putc(b, ')');
  }
  return rc;
}

static char *render_new(const struct node *n) {
  struct buf b;
  buf_init(&b, 4 * EXPR_MAX_LEN);
  if (render(&b, n, 0) || (!b.data && buf_puts(&b, ""))) {
    buf_cleanup(&b);
    return NULL;
  }
  return buf_detach(&b, NULL);
}

/* Computes once what finding a selector's family in a store needs. */
static void sel_prepare(struct selector *sel) {
  sel->mn = strlen(sel->meas);
  sel->fn = sel->field ? strlen(sel->field) : 0;
  sel->fam_hash = series__family_hash(sel->meas, sel->mn, sel->field, sel->fn);
}

/* The family of sel in c's store, NULL when none. */
static const struct family *sel_family(const struct eval_ctx *c,
                                       const struct selector *sel) {
  return series__family_h(c->store, sel->meas, sel->mn, sel->field, sel->fn,
                          sel->fam_hash);
}

/* Gives every node that can be a culprit its canonical text. */
static int fill_texts(struct node *n) {
  switch (n->kind) {
    case K_SEL:
    case K_CALL:
    case K_PARAM:
      n->text = render_new(n);
      if (!n->text) {
        return IOCD_ENOMEM;
      }
      n->text_hash = hash_bytes(HASH_START, n->text, strlen(n->text));
      if (n->kind == K_SEL) {
        sel_prepare(&n->u.sel);
      } else if (n->kind == K_CALL && n->u.call.arg &&
                 n->u.call.arg->kind == K_SEL) {
        sel_prepare(&n->u.call.arg->u.sel);
      }
      return IOCD_OK;
    case K_NEG:
    case K_NOT:
      return fill_texts(n->u.sub);
    case K_BIN:
      if (n->u.bin.op == OP_DIV) {
        n->text = render_new(n->u.bin.r);
        if (!n->text) {
          return IOCD_ENOMEM;
        }
      }
      int rc = fill_texts(n->u.bin.l);
      return rc ? rc : fill_texts(n->u.bin.r);
    case K_NUM:
      break;
  }
  return IOCD_OK;
}

/* ---- what an expression reads -------------------------------------------- */

static bool same_name(const char *a, const char *b) {
  return a == b || (a && b && strcmp(a, b) == 0);
}

/* The running aggregates of the store that function fn reads. */
static unsigned aggs_of(enum fn fn) {
  switch (fn) {
    case F_INCREASE:
    case F_RATE:
      return SERIES_AGG_INCREASE;
    case F_SUM:
    case F_AVG:
      return SERIES_AGG_SUM;
    default:
      return 0;
  }
}

static int add_read(struct expr *e, size_t *cap, const struct selector *sel,
                    unsigned aggs) {
  int64_t range = sel->working ? 0 : sel->range_ms * NS_PER_MS;
  int64_t wrange = sel->working ? sel->range_ms * NS_PER_MS : 0;
  e->working |= sel->working;
  for (size_t i = 0; i < e->nreads; i++) {
    if (same_name(e->reads[i].measurement, sel->meas) &&
        same_name(e->reads[i].field, sel->field)) {
      if (range > e->reads[i].range_ns) {
        e->reads[i].range_ns = range;
      }
      if (wrange > e->reads[i].working_ns) {
        e->reads[i].working_ns = wrange;
      }
      e->reads[i].aggs |= aggs;
      return IOCD_OK;
    }
  }
  if (e->nreads == *cap) {
    size_t ncap = *cap ? *cap * 2 : 4;
    struct expr_read *r = realloc(e->reads, ncap * sizeof *r);
    if (!r) {
      return IOCD_ENOMEM;
    }
    e->reads = r;
    *cap = ncap;
  }
  e->reads[e->nreads++] = (struct expr_read){.measurement = sel->meas,
                                             .field = sel->field,
                                             .range_ns = range,
                                             .working_ns = wrange,
                                             .aggs = aggs};
  return IOCD_OK;
}

static int add_name(const char ***v, size_t *n, size_t *cap, const char *s) {
  for (size_t i = 0; i < *n; i++) {
    if (strcmp((*v)[i], s) == 0) {
      return IOCD_OK;
    }
  }
  if (*n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 4;
    const char **nv = realloc(*v, ncap * sizeof *nv);
    if (!nv) {
      return IOCD_ENOMEM;
    }
    *v = nv;
    *cap = ncap;
  }
  (*v)[(*n)++] = s;
  return IOCD_OK;
}

struct caps {
  size_t reads, params, cals;
};

static int collect(struct expr *e, struct caps *caps, const struct node *n) {
  switch (n->kind) {
    case K_SEL:
      return add_read(e, &caps->reads, &n->u.sel, 0);
    case K_PARAM:
      return add_name(&e->params, &e->nparams, &caps->params, n->u.param);
    case K_CALL:
      if (n->u.call.cal) {
        return add_name(&e->cals, &e->ncals, &caps->cals, n->u.call.cal);
      }
      if (n->u.call.fi->fn == F_AGE || n->u.call.fi->fn == F_ABSENT) {
        e->silence = true;
      }
      if (n->u.call.arg->kind == K_SEL) {
        return add_read(e, &caps->reads, &n->u.call.arg->u.sel,
                        aggs_of(n->u.call.fi->fn));
      }
      return collect(e, caps, n->u.call.arg);
    case K_NEG:
    case K_NOT:
      return collect(e, caps, n->u.sub);
    case K_BIN: {
      int rc = collect(e, caps, n->u.bin.l);
      return rc ? rc : collect(e, caps, n->u.bin.r);
    }
    case K_NUM:
      break;
  }
  return IOCD_OK;
}

const struct expr_read *expr_reads(const struct expr *e, size_t *n) {
  *n = e->nreads;
  return e->reads;
}

const char *const *expr_params(const struct expr *e, size_t *n) {
  *n = e->nparams;
  return e->params;
}

const char *const *expr_calendars(const struct expr *e, size_t *n) {
  *n = e->ncals;
  return e->cals;
}

const char *expr_to_string(const struct expr *e) {
  return e->text;
}

bool expr_uses_silence(const struct expr *e) {
  return e->silence;
}

bool expr_uses_working(const struct expr *e) {
  return e->working;
}

/* ---- parse entry point --------------------------------------------------- */

struct expr *expr_parse(const char *text, struct iocd_err *err, int *err_col) {
  struct parser p = {0};
  p.s = text ? text : "";
  p.len = strlen(p.s);
  p.err = err;
  buf_init(&p.str, EXPR_MAX_LEN);
  struct node *root = NULL;
  struct expr *e = NULL;
  size_t bad;
  if (p.len > EXPR_MAX_LEN) {
    fail(&p, 0, "expression longer than %d bytes", EXPR_MAX_LEN);
    goto out;
  }
  if (!utf8_valid(p.s, p.len, &bad)) {
    fail(&p, bad, "invalid UTF-8");
    goto out;
  }
  if (!advance(&p)) {
    goto out;
  }
  if (p.tok.kind == T_EOF) {
    fail(&p, 0, "empty expression");
    goto out;
  }
  root = parse_or(&p);
  if (!root) {
    goto out;
  }
  if (p.tok.kind != T_EOF) {
    char got[64];
    describe(&p, got, sizeof got);
    fail(&p, p.tok.start, "unexpected %s after a complete expression", got);
    goto out;
  }
  e = calloc(1, sizeof *e);
  if (!e) {
    goto nomem;
  }
  e->root = root;
  root = NULL;
  struct caps caps = {0};
  if (fill_texts(e->root) || collect(e, &caps, e->root)) {
    goto nomem;
  }
  e->text = render_new(e->root);
  if (!e->text) {
    goto nomem;
  }
  goto out;
nomem:
  fail_nomem(&p);
  expr_free(e);
  e = NULL;
out:
  node_free(root);
  buf_cleanup(&p.str);
  if (!e && !p.rc) {
    fail_nomem(&p);
  }
  if (err_col) {
    *err_col = e ? 0 : p.col;
  }
  return e;
}

/* ---- evaluation ---------------------------------------------------------- */

const char *expr_why_name(enum expr_why why) {
  switch (why) {
    case EXPR_WHY_NONE:
      return "none";
    case EXPR_WHY_NO_SERIES:
      return "no series";
    case EXPR_WHY_STALE:
      return "stale";
    case EXPR_WHY_EMPTY_WINDOW:
      return "empty window";
    case EXPR_WHY_TOO_FEW:
      return "too few samples";
    case EXPR_WHY_NO_PARAM:
      return "no parameter value";
    case EXPR_WHY_DIV_ZERO:
      return "division by zero";
    case EXPR_WHY_NO_CALENDAR:
      return "no calendar";
  }
  return "unknown";
}

enum expr_truth expr_truth_of(const struct expr_value *v) {
  if (v->missing) {
    return EXPR_MISSING;
  }
  return v->v != 0 && !isnan(v->v) ? EXPR_TRUE : EXPR_FALSE;
}

static void set_num(struct expr_value *o, double v) {
  *o = (struct expr_value){.v = v};
}

static void set_missing(struct expr_value *o, enum expr_why why,
                        const char *culprit) {
  *o = (struct expr_value){.missing = true, .why = why, .culprit = culprit};
}

static int64_t sub_sat(int64_t a, int64_t b) {
  if (b > 0 && a < INT64_MIN + b) {
    return INT64_MIN;
  }
  return a - b;
}

/* (to - from) in seconds, for to >= from, exact to the nanosecond for ages
 * up to 2^53 ns and whole seconds beyond. */
static double seconds_between(int64_t from, int64_t to) {
  uint64_t d = (uint64_t)to - (uint64_t)from;
  uint64_t ns = (uint64_t)NS_PER_SEC;
  return (double)(d / ns) + (double)(d % ns) / 1e9;
}

static int64_t freshness_for(const struct eval_ctx *c,
                             const struct selector *sel) {
  int64_t f = c->freshness ? c->freshness(c->ud, sel->meas, sel->field) : 0;
  if (f <= 0) {
    f = c->freshness_ns;
  }
  return f > 0 ? f : EXPR_DEFAULT_FRESHNESS_NS;
}

/* The newest sample at or before t of each series, for instant selectors,
 * age() and absent(). */
struct instant {
  int64_t t;
  uint64_t fresh;
  int64_t floor; /* heard_since, at most t; 0: none */
  double sum;
  size_t nfresh;
  size_t nheard; /* fresh when heard at max(newest, floor) */
  bool seen;
  int64_t newest;
};

static void visit_instant(void *ud, const struct series *s) {
  struct instant *a = ud;
  const struct ring *r = &s->ring;
  size_t i = series__upper(r, a->t);
  if (i == 0) {
    return;
  }
  const struct sample *x = ring_at(r, i - 1);
  if (!a->seen || x->ts > a->newest) {
    a->newest = x->ts;
  }
  a->seen = true;
  if ((uint64_t)a->t - (uint64_t)x->ts <= a->fresh) {
    a->sum += x->v;
    a->nfresh++;
  }
  int64_t heard = x->ts > a->floor ? x->ts : a->floor;
  if ((uint64_t)a->t - (uint64_t)heard <= a->fresh) {
    a->nheard++;
  }
}

/* The heard-since floor of c, never after the evaluation time. */
static int64_t floor_of(const struct eval_ctx *c) {
  int64_t f = c->heard_since_ns;
  if (f <= 0) {
    return 0;
  }
  return f < c->t_ns ? f : c->t_ns;
}

static void collect_instant(const struct selector *sel,
                            const struct eval_ctx *c, struct instant *a) {
  *a = (struct instant){.t = c->t_ns,
                        .fresh = (uint64_t)freshness_for(c, sel),
                        .floor = floor_of(c)};
  const struct family *fam = sel_family(c, sel);
  series__select(c->store, fam, c->group, sel->m, sel->nm, visit_instant, a);
}

/* A window function over (t - range, t], one series at a time; results of
 * several series are added, except min and max. */
struct window {
  enum fn fn;
  int64_t from, t;
  double acc;
  size_t nres;
  bool seen;
  bool too_few;
};

static double counter_increase(const struct ring *r, size_t lo, size_t hi) {
  double inc = 0;
  for (size_t i = lo + 1; i < hi; i++) {
    double prev = ring_at(r, i - 1)->v, cur = ring_at(r, i)->v;
    /* A drop is a reset to zero: the counter counted cur since. */
    inc += cur >= prev ? cur - prev : cur;
  }
  return inc;
}

static void visit_window(void *ud, const struct series *s) {
  struct window *a = ud;
  const struct ring *r = &s->ring;
  size_t hi = series__upper(r, a->t);
  if (hi == 0) {
    return;
  }
  a->seen = true;
  size_t lo = series__upper(r, a->from);
  if (lo >= hi) {
    return;
  }
  size_t k = hi - lo;
  double v = 0;
  switch (a->fn) {
    case F_COUNT:
      v = (double)k;
      break;
    case F_SUM:
    case F_AVG:
      if (ring_sum(r) && series__exact(r)) {
        const double *rsum = ring_sum(r);
        /* The same sum as the loop below, exactly (rules_int.h). */
        size_t jl = ring_slot_of(r, lo);
        v = rsum[ring_slot_of(r, hi - 1)] - rsum[jl] + r->s[jl].v;
      } else {
        for (size_t i = lo; i < hi; i++) {
          v += ring_at(r, i)->v;
        }
      }
      if (a->fn == F_AVG) {
        v /= (double)k;
      }
      break;
    case F_MIN:
    case F_MAX:
      v = ring_at(r, lo)->v;
      for (size_t i = lo + 1; i < hi; i++) {
        double x = ring_at(r, i)->v;
        if (a->fn == F_MIN ? x < v : x > v) {
          v = x;
        }
      }
      break;
    case F_LAST:
      v = ring_at(r, hi - 1)->v;
      break;
    case F_DELTA:
    case F_INCREASE:
    case F_RATE:
      if (k < 2) {
        a->too_few = true;
        return;
      }
      if (a->fn == F_DELTA) {
        v = ring_at(r, hi - 1)->v - ring_at(r, lo)->v;
      } else if (ring_inc(r) && series__exact(r)) {
        /* The same total as counter_increase, exactly (rules_int.h). */
        const double *rinc = ring_inc(r);
        v = rinc[ring_slot_of(r, hi - 1)] - rinc[ring_slot_of(r, lo)];
      } else {
        v = counter_increase(r, lo, hi);
      }
      if (a->fn == F_RATE) {
        v /= seconds_between(ring_at(r, lo)->ts, ring_at(r, hi - 1)->ts);
      }
      break;
    case F_AGE:
    case F_ABSENT:
    case F_DURING:
      return;
  }
  if (a->nres == 0) {
    a->acc = v;
  } else if (a->fn == F_MIN) {
    a->acc = v < a->acc ? v : a->acc;
  } else if (a->fn == F_MAX) {
    a->acc = v > a->acc ? v : a->acc;
  } else {
    a->acc += v;
  }
  a->nres++;
}

/* The entry of c's memo for node n (a selector or a call), NULL when
 * there is none yet. */
static struct expr_memo_ent *memo_find(const struct eval_ctx *c,
                                       const struct node *n,
                                       bool is_horizon) {
  struct expr_memo *m = c->memo;
  if (!m || !n->text) {
    return NULL;
  }
  for (size_t i = 0; i < m->n; i++) {
    struct expr_memo_ent *x = &m->e[i];
    if (x->hash == n->text_hash && x->is_horizon == is_horizon &&
        (x->text == n->text || strcmp(x->text, n->text) == 0)) {
      return x;
    }
  }
  return NULL;
}

/* A new entry of c's memo for node n, NULL when full or there is no memo. */
static struct expr_memo_ent *memo_add(const struct eval_ctx *c,
                                      const struct node *n, bool is_horizon) {
  struct expr_memo *m = c->memo;
  if (!m || !n->text || m->n >= EXPR_MEMO_MAX) {
    return NULL;
  }
  struct expr_memo_ent *x = &m->e[m->n++];
  *x = (struct expr_memo_ent){
      .hash = n->text_hash, .text = n->text, .is_horizon = is_horizon};
  return x;
}

static void eval_call(const struct node *n, const struct eval_ctx *c,
                      struct expr_value *o) {
  const struct fninfo *fi = n->u.call.fi;
  if (fi->fn == F_DURING) {
    int64_t from = sub_sat(c->t_ns, n->u.call.ms * NS_PER_MS);
    int r = c->calendar
                ? c->calendar(c->ud, n->u.call.cal, c->group, from, c->t_ns)
                : -1;
    if (r < 0) {
      set_missing(o, EXPR_WHY_NO_CALENDAR, n->text);
    } else {
      set_num(o, r ? 1 : 0);
    }
    return;
  }
  const struct selector *sel = &n->u.call.arg->u.sel;
  if (fi->fn == F_AGE || fi->fn == F_ABSENT) {
    struct instant a;
    collect_instant(sel, c, &a);
    if (fi->fn == F_ABSENT) {
      /* With a floor, a series (or the lack of one) counts as heard at the
       * floor at the earliest. */
      bool heard = a.floor ? a.nheard > 0 ||
                                 (uint64_t)c->t_ns - (uint64_t)a.floor <=
                                     a.fresh
                           : a.nfresh > 0;
      set_num(o, heard ? 0 : 1);
    } else if (!a.seen && !a.floor) {
      set_missing(o, EXPR_WHY_NO_SERIES, n->text);
    } else {
      int64_t newest = a.seen && a.newest > a.floor ? a.newest : a.floor;
      set_num(o, seconds_between(newest, c->t_ns));
    }
    return;
  }
  int64_t from;
  if (sel->working) {
    from = c->working ? c->working(c->ud, c->group, c->t_ns,
                                   sel->range_ms * NS_PER_MS, false)
                      : INT64_MIN;
    if (from == INT64_MIN) {
      set_missing(o, EXPR_WHY_NO_CALENDAR, n->text);
      return;
    }
  } else {
    from = sub_sat(c->t_ns, sel->range_ms * NS_PER_MS);
  }
  struct window a = {
      .fn = fi->fn,
      .t = c->t_ns,
      .from = from,
  };
  const struct family *fam = sel_family(c, sel);
  series__select(c->store, fam, c->group, sel->m, sel->nm, visit_window, &a);
  if (a.nres > 0) {
    set_num(o, a.acc);
  } else if (fi->fn == F_COUNT) {
    set_num(o, 0);
  } else {
    set_missing(o,
                !a.seen     ? EXPR_WHY_NO_SERIES
                : a.too_few ? EXPR_WHY_TOO_FEW
                            : EXPR_WHY_EMPTY_WINDOW,
                n->text);
  }
}

static void eval(const struct node *n, const struct eval_ctx *c,
                 struct expr_value *o);

/* Kleene's and/or: a false operand decides and, a true one decides or,
 * whatever the other; otherwise MISSING stays MISSING. */
static void eval_logic(const struct node *n, const struct eval_ctx *c,
                       struct expr_value *o) {
  bool is_and = n->u.bin.op == OP_AND;
  enum expr_truth decides = is_and ? EXPR_FALSE : EXPR_TRUE;
  struct expr_value l, r;
  eval(n->u.bin.l, c, &l);
  enum expr_truth tl = expr_truth_of(&l);
  if (tl == decides) {
    set_num(o, is_and ? 0 : 1);
    return;
  }
  eval(n->u.bin.r, c, &r);
  enum expr_truth tr = expr_truth_of(&r);
  if (tr == decides) {
    set_num(o, is_and ? 0 : 1);
  } else if (tl != EXPR_MISSING && tr != EXPR_MISSING) {
    set_num(o, is_and ? 1 : 0);
  } else {
    *o = tl == EXPR_MISSING ? l : r;
  }
}

/* The value of a selector, call or parameter node, from c's memo when it
 * has it. A MISSING value names this node's own text as culprit: the same
 * text, owned by the expression evaluated. */
static void eval_leaf(const struct node *n, const struct eval_ctx *c,
                      struct expr_value *o) {
  const struct expr_memo_ent *x = memo_find(c, n, false);
  if (x) {
    *o = x->v;
    if (o->missing) {
      o->culprit = n->text;
    }
    return;
  }
  if (n->kind == K_CALL) {
    eval_call(n, c, o);
  } else if (n->kind == K_PARAM) {
    double v;
    if (c->param && c->param(c->ud, n->u.param, c->group, &v)) {
      set_num(o, v);
    } else {
      set_missing(o, EXPR_WHY_NO_PARAM, n->text);
    }
  } else {
    struct instant a;
    collect_instant(&n->u.sel, c, &a);
    if (a.nfresh) {
      set_num(o, a.sum);
    } else {
      set_missing(o, a.seen ? EXPR_WHY_STALE : EXPR_WHY_NO_SERIES, n->text);
    }
  }
  struct expr_memo_ent *w = memo_add(c, n, false);
  if (w) {
    w->v = *o;
  }
}

static void eval(const struct node *n, const struct eval_ctx *c,
                 struct expr_value *o) {
  switch (n->kind) {
    case K_NUM:
      set_num(o, n->u.num.v);
      return;
    case K_PARAM:
    case K_SEL:
    case K_CALL:
      eval_leaf(n, c, o);
      return;
    case K_NEG:
      eval(n->u.sub, c, o);
      if (!o->missing) {
        o->v = -o->v;
      }
      return;
    case K_NOT: {
      eval(n->u.sub, c, o);
      enum expr_truth t = expr_truth_of(o);
      if (t != EXPR_MISSING) {
        set_num(o, t == EXPR_TRUE ? 0 : 1);
      }
      return;
    }
    case K_BIN:
      break;
  }
  enum op op = n->u.bin.op;
  if (op == OP_AND || op == OP_OR) {
    eval_logic(n, c, o);
    return;
  }
  struct expr_value l, r;
  eval(n->u.bin.l, c, &l);
  if (l.missing) {
    *o = l;
    return;
  }
  eval(n->u.bin.r, c, &r);
  if (r.missing) {
    *o = r;
    return;
  }
  double a = l.v, b = r.v;
  switch (op) {
    case OP_ADD:
      set_num(o, a + b);
      return;
    case OP_SUB:
      set_num(o, a - b);
      return;
    case OP_MUL:
      set_num(o, a * b);
      return;
    case OP_DIV:
      if (b == 0) {
        set_missing(o, EXPR_WHY_DIV_ZERO, n->text);
      } else {
        set_num(o, a / b);
      }
      return;
    case OP_LT:
      set_num(o, a < b);
      return;
    case OP_LE:
      set_num(o, a <= b);
      return;
    case OP_GT:
      set_num(o, a > b);
      return;
    case OP_GE:
      set_num(o, a >= b);
      return;
    case OP_EQ:
      set_num(o, a == b);
      return;
    case OP_NE:
      set_num(o, a != b);
      return;
    case OP_AND:
    case OP_OR:
      return;
  }
}

int expr_eval(const struct expr *e, const struct eval_ctx *ctx,
              struct expr_value *out) {
  if (!e || !ctx || !out) {
    return IOCD_EINVAL;
  }
  eval(e->root, ctx, out);
  return IOCD_OK;
}

int expr_eval_sides(const struct expr *e, const struct eval_ctx *ctx,
                    struct expr_value *lhs, struct expr_value *rhs) {
  if (!e || !ctx || !lhs || !rhs || e->root->kind != K_BIN ||
      prec_of(e->root) != 4) {
    return IOCD_EINVAL;
  }
  eval(e->root->u.bin.l, ctx, lhs);
  eval(e->root->u.bin.r, ctx, rhs);
  return IOCD_OK;
}

/* ---- horizon ------------------------------------------------------------- */

/* What a series contributes to a horizon: the times at which its samples
 * turn stale, leave a window, or (stamped after t) come into existence. */
struct horizon {
  const struct eval_ctx *c;
  const struct selector *sel;
  enum fn fn;       /* F_AVG..F_RATE for windows; F_AGE, F_ABSENT; or
                       F_DURING as "instant selector" */
  int64_t t, from;  /* from: window start (exclusive) */
  uint64_t fresh;
  int64_t floor;
  int64_t next;     /* the result so far */
  bool seen;
  int64_t newest;   /* age(): the newest sample at or before t */
};

static void h_at(struct horizon *h, int64_t u) {
  if (u > h->t && u < h->next) {
    h->next = u;
  }
}

static int64_t add_sat(int64_t a, int64_t b) {
  if (b > 0 && a > INT64_MAX - b) {
    return INT64_MAX;
  }
  return a + b;
}

static void visit_horizon(void *ud, const struct series *s) {
  struct horizon *h = ud;
  const struct ring *r = &s->ring;
  size_t hi = series__upper(r, h->t);
  if (hi < r->n) {
    h_at(h, ring_at(r, hi)->ts);
  }
  if (hi == 0) {
    return;
  }
  const struct sample *x = ring_at(r, hi - 1);
  switch (h->fn) {
    case F_AGE:
      if (!h->seen || x->ts > h->newest) {
        h->newest = x->ts;
      }
      h->seen = true;
      return;
    case F_ABSENT: {
      int64_t heard = x->ts > h->floor ? x->ts : h->floor;
      if ((uint64_t)h->t - (uint64_t)heard <= h->fresh) {
        h_at(h, add_sat(heard, (int64_t)h->fresh + 1));
      }
      return;
    }
    case F_DURING:
      /* An instant selector: the newest sample turning stale. */
      if ((uint64_t)h->t - (uint64_t)x->ts <= h->fresh) {
        h_at(h, add_sat(x->ts, (int64_t)h->fresh + 1));
      }
      return;
    default:
      break;
  }
  size_t lo = series__upper(r, h->from);
  if (lo >= hi) {
    return;
  }
  /* The oldest sample in the window is the first to leave it. */
  int64_t ts = ring_at(r, lo)->ts;
  const struct eval_ctx *c = h->c;
  int64_t d = h->sel->range_ms * NS_PER_MS;
  if (h->sel->working) {
    h_at(h, c->working ? c->working(c->ud, c->group, ts, d, true)
                       : INT64_MAX);
  } else {
    h_at(h, add_sat(ts, d));
  }
}

static int64_t h_compute(const struct eval_ctx *c, const struct selector *sel,
                         enum fn fn, struct horizon *out) {
  struct horizon h = {
      .c = c,
      .sel = sel,
      .fn = fn,
      .t = c->t_ns,
      .fresh = (uint64_t)freshness_for(c, sel),
      .floor = floor_of(c),
      .next = INT64_MAX,
  };
  if (fn != F_AGE && fn != F_ABSENT && fn != F_DURING) {
    if (sel->working) {
      h.from = c->working ? c->working(c->ud, c->group, c->t_ns,
                                       sel->range_ms * NS_PER_MS, false)
                          : INT64_MIN;
      if (h.from == INT64_MIN) {
        return INT64_MAX;
      }
    } else {
      h.from = sub_sat(c->t_ns, sel->range_ms * NS_PER_MS);
    }
  }
  const struct family *fam = sel_family(c, sel);
  series__select(c->store, fam, c->group, sel->m, sel->nm, visit_horizon, &h);
  if (fn == F_ABSENT && h.floor &&
      (uint64_t)c->t_ns - (uint64_t)h.floor <= h.fresh) {
    h_at(&h, add_sat(h.floor, (int64_t)h.fresh + 1));
  }
  if (out) {
    *out = h;
  }
  return h.next;
}

/* h_compute for node key (the selector, or the call that reads sel),
 * through c's memo. out, when not NULL, gets next, seen, newest and floor. */
static int64_t h_selector(const struct eval_ctx *c, const struct node *key,
                          const struct selector *sel, enum fn fn,
                          struct horizon *out) {
  const struct expr_memo_ent *x = memo_find(c, key, true);
  if (x) {
    if (out) {
      *out = (struct horizon){.c = c,
                              .sel = sel,
                              .fn = fn,
                              .t = c->t_ns,
                              .fresh = (uint64_t)freshness_for(c, sel),
                              .floor = floor_of(c),
                              .next = x->next,
                              .seen = x->seen,
                              .newest = x->newest};
    }
    return x->next;
  }
  struct horizon h = {0};
  int64_t next = h_compute(c, sel, fn, &h);
  struct expr_memo_ent *w = memo_add(c, key, true);
  if (w) {
    w->next = next;
    w->seen = h.seen;
    w->newest = h.newest;
  }
  if (out) {
    *out = h;
  }
  return next;
}

static int64_t horizon(const struct node *n, const struct eval_ctx *c);

/* age() compared with a value that does not change with time: the
 * comparison can only flip where age() equals that value. */
static int64_t h_age_cmp(const struct node *age, const struct node *other,
                         const struct eval_ctx *c) {
  struct horizon h;
  int64_t next = h_selector(c, age, &age->u.call.arg->u.sel, F_AGE, &h);
  int64_t other_next = horizon(other, c);
  if (other_next < next) {
    next = other_next;
  }
  if (!h.seen && !h.floor) {
    return next; /* MISSING until a sample arrives */
  }
  int64_t newest = h.seen && h.newest > h.floor ? h.newest : h.floor;
  struct expr_value v;
  eval(other, c, &v);
  if (v.missing || isnan(v.v)) {
    return next;
  }
  double ns = ceil(v.v * 1e9);
  if (ns >= 9.2e18) {
    return next;
  }
  int64_t cross = ns <= 0 ? newest : add_sat(newest, (int64_t)ns);
  /* At the crossing age equals the value; a strict comparison flips just
   * after it. */
  int64_t at = cross > c->t_ns ? cross : cross == c->t_ns ? c->t_ns + 1 : 0;
  if (at && at < next) {
    next = at;
  }
  return next;
}

static bool is_age(const struct node *n) {
  return n->kind == K_CALL && n->u.call.fi->fn == F_AGE;
}

static int64_t horizon(const struct node *n, const struct eval_ctx *c) {
  switch (n->kind) {
    case K_NUM:
    case K_PARAM:
      return INT64_MAX;
    case K_SEL:
      return h_selector(c, n, &n->u.sel, F_DURING, NULL);
    case K_CALL: {
      const struct fninfo *fi = n->u.call.fi;
      if (fi->fn == F_DURING) {
        if (!c->calendar_next) {
          return INT64_MAX;
        }
        int64_t u = c->calendar_next(c->ud, n->u.call.cal, c->group, c->t_ns,
                                     n->u.call.ms * NS_PER_MS);
        return u > c->t_ns ? u : INT64_MAX;
      }
      if (fi->fn == F_AGE) {
        struct horizon h;
        int64_t next = h_selector(c, n, &n->u.call.arg->u.sel, F_AGE, &h);
        /* A bare age() changes all the time: look again in a second. */
        if (h.seen || h.floor) {
          int64_t soon = add_sat(c->t_ns, NS_PER_SEC);
          next = soon < next ? soon : next;
        }
        return next;
      }
      return h_selector(c, n, &n->u.call.arg->u.sel, fi->fn, NULL);
    }
    case K_NEG:
    case K_NOT:
      return horizon(n->u.sub, c);
    case K_BIN:
      break;
  }
  const struct node *l = n->u.bin.l, *r = n->u.bin.r;
  if (prec_of(n) == 4) {
    if (is_age(l) && !is_age(r)) {
      return h_age_cmp(l, r, c);
    }
    if (is_age(r) && !is_age(l)) {
      return h_age_cmp(r, l, c);
    }
  }
  int64_t a = horizon(l, c), b = horizon(r, c);
  return a < b ? a : b;
}

int64_t expr_horizon(const struct expr *e, const struct eval_ctx *ctx) {
  if (!e || !ctx) {
    return INT64_MAX;
  }
  return horizon(e->root, ctx);
}
