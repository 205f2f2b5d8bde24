/*
 * What the files of the rules language share inside rules/: the tree of a
 * parsed expression (expr.c frees it and records what it reads), the lexer's
 * tokens and parser state (expr_lex.c lexes, expr_parse.c parses), the
 * duration units (lexed in expr_lex.c, printed in expr_print.c), and the
 * functions one of these files calls in another.
 */
#ifndef IOCD_RULES_EXPR_INT_H
#define IOCD_RULES_EXPR_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "rules/expr.h"
#include "rules/rules_int.h"

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

struct fninfo {
  const char *name;
  enum fn fn;
  enum fn_args args;
};

struct selector {
  char *meas;
  char *field; /* NULL: a bare measurement (age/absent only) */
  struct matcher *m;
  size_t nm;
  int64_t range_ms;  /* 0: no range */
  bool working;      /* the range is working time ([2wh]) */
  size_t mn, fn;     /* lengths of meas and field */
  uint64_t fam_hash; /* series__family_hash of meas and field */
};

struct node {
  enum kind kind;
  int col;            /* 1-based column of the node's first character */
  char *text;         /* canonical text of a possible culprit: selectors, calls,
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

/* Frees n and everything under it; NULL is a no-op (expr.c). */
void expr__node_free(struct node *n);

/* The capacities of an expression's reads, params and cals while
 * expr__collect fills them; all 0 to start. */
struct caps {
  size_t reads, params, cals;
};

/* Records in e what the tree under n reads: its (measurement, field) pairs
 * with their ranges and aggregates, parameters and calendars, and whether
 * it uses age()/absent() or working time (expr.c). The names point into the
 * tree. Returns IOCD_OK or IOCD_ENOMEM. */
int expr__collect(struct expr *e, struct caps *caps, const struct node *n);

/* ---- lexer (expr_lex.c) -------------------------------------------------- */

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

/* A duration unit and its length. */
struct expr__unit {
  const char *name;
  int64_t ms;
};

/* Clock-time units, from the largest to the smallest: w, d, h, m, s, ms. */
#define EXPR__NUNITS 6
extern const struct expr__unit expr__units[EXPR__NUNITS];

/* Working-time units, for ranges only: wh, wm. */
#define EXPR__NWUNITS 2
extern const struct expr__unit expr__wunits[EXPR__NWUNITS];

/* Column (1-based, in characters) of byte offset at. */
int expr__column_of(const struct parser *p, size_t at);

/* Records a parse error at byte offset at (the first error only: what
 * follows it is noise). */
void expr__fail(struct parser *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records that memory ran out (unless an error is recorded already). */
void expr__fail_nomem(struct parser *p);

/* Character classes: identifiers are ASCII letters, '_' and any non-ASCII
 * character (the text is valid UTF-8), then digits too. */
bool expr__ident_start(char c);
bool expr__ident_char(char c);
bool expr__is_space(char c);

/* Whether t is the identifier word. */
bool expr__tok_is(const struct tok *t, const char *word);

/* Whether s[0..n) is a keyword (and, or, not). */
bool expr__is_keyword(const char *s, size_t n);

/* Lexes the token after the current one into p->tok. Returns false after
 * recording an error. */
bool expr__advance(struct parser *p);

/* How the current token reads in a message, into out[0..n). */
void expr__describe(const struct parser *p, char *out, size_t n);

/* ---- canonical text (expr_print.c) --------------------------------------- */

/* Binding strength of n, as in the grammar: or 1, and 2, not 3,
 * comparisons 4, + - 5, * / 6, unary minus 7, everything else 8. */
int expr__prec_of(const struct node *n);

/* The canonical text of the tree under n, a new string (the caller frees
 * it); NULL when memory runs out. */
char *expr__render_new(const struct node *n);

/* Gives every node under n that can be a culprit its canonical text, and
 * prepares its selectors for finding their family in a store. Returns
 * IOCD_OK or IOCD_ENOMEM. */
int expr__fill_texts(struct node *n);

#endif
