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
    {"avg", F_AVG, FA_WINDOW},           {"min", F_MIN, FA_WINDOW},
    {"max", F_MAX, FA_WINDOW},           {"sum", F_SUM, FA_WINDOW},
    {"count", F_COUNT, FA_WINDOW},       {"last", F_LAST, FA_WINDOW},
    {"delta", F_DELTA, FA_WINDOW},       {"increase", F_INCREASE, FA_WINDOW},
    {"rate", F_RATE, FA_WINDOW},         {"age", F_AGE, FA_INSTANT},
    {"absent", F_ABSENT, FA_INSTANT},    {"during", F_DURING, FA_CALENDAR},
};

struct selector {
  char *meas;
  char *field; /* NULL: a bare measurement (age/absent only) */
  struct matcher *m;
  size_t nm;
  int64_t range_ms; /* 0: no range */
};

struct node {
  enum kind kind;
  int col;    /* 1-based column of the node's first character */
  char *text; /* canonical text of a possible culprit: selectors, calls,
                 parameters; for a division, its divisor's */
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

/* Lexes the duration whose first digits start at p->s[start]; the unit text
 * starts at *pos. */
static bool lex_duration(struct parser *p, size_t start, size_t *pos,
                         bool whole, struct tok *t) {
  size_t i = start;
  int64_t total = 0;
  size_t last_unit = NUNITS;
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
    if (u == NUNITS) {
      fail(p, ustart, "unknown unit '%.*s' in %.*s (use ms, s, m, h, d or w)",
           (int)(i - ustart), p->s + ustart, (int)(i - start), p->s + start);
      return false;
    }
    if (!whole) {
      fail(p, start, "durations take whole numbers: %.*s", (int)(i - start),
           p->s + start);
      return false;
    }
    if (last_unit != NUNITS && u <= last_unit) {
      fail(p, dstart,
           "the units of a duration go from the largest to the smallest, "
           "each once: %.*s",
           (int)(i - start), p->s + start);
      return false;
    }
    last_unit = u;
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
    if (errno || *end || n > (MAX_DURATION_MS - total) / units[u].ms) {
      fail(p, start, "duration out of range: %.*s", (int)(i - start),
           p->s + start);
      return false;
    }
    total += (int64_t)n * units[u].ms;
  }
  *pos = i;
  t->kind = T_NUM;
  t->lk = LIT_DURATION;
  t->ms = total;
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
    if (!lex_duration(p, start, &pos, whole, t)) {
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
      fail(p, p->tok.start, "expected ',' or '}' to close '{' at column %d, "
           "got %s", column_of(p, open), got);
      return false;
    }
  }
  return advance(p);
}

/* The function a selector is an argument of (NULL: none) decides what it
 * may be: a range is required by window functions and refused elsewhere,
 * a bare measurement is allowed only in age() and absent(). */
static struct node *parse_selector(struct parser *p,
                                   const struct fninfo *in) {
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
  if (p->tok.kind != T_NUM || p->tok.lk != LIT_DURATION || p->tok.ms <= 0) {
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
    fail(p, p->tok.start, "%s takes %s", fi->name,
         fi->args == FA_CALENDAR ? "at most 2 arguments"
                                 : "exactly 1 argument");
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
    case T_EOF:
      if (start == 0) {
        fail(p, start, "empty expression");
        return NULL;
      }
      break;
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
