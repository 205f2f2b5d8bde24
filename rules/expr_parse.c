/*
 * The parser of the rules language: recursive descent over the lexer's
 * tokens (expr_lex.c), one function per precedence level of the grammar in
 * docs/rules-language.md, into the tree of expr_int.h; and expr_parse,
 * which checks the text, parses it and gives the tree its canonical texts
 * and the list of what it reads.
 */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/utf8.h"
#include "rules/expr.h"
#include "rules/expr_int.h"

#define MAX_DEPTH 64
#define MAX_NODES 512

static const struct fninfo fns[] = {
    {"avg", F_AVG, FA_WINDOW},        {"min", F_MIN, FA_WINDOW},
    {"max", F_MAX, FA_WINDOW},        {"sum", F_SUM, FA_WINDOW},
    {"count", F_COUNT, FA_WINDOW},    {"last", F_LAST, FA_WINDOW},
    {"delta", F_DELTA, FA_WINDOW},    {"increase", F_INCREASE, FA_WINDOW},
    {"rate", F_RATE, FA_WINDOW},      {"age", F_AGE, FA_INSTANT},
    {"absent", F_ABSENT, FA_INSTANT}, {"during", F_DURING, FA_CALENDAR},
};

/* ---- parser -------------------------------------------------------------- */

static struct node *node_new(struct parser *p, enum kind kind, size_t at) {
  if (++p->nodes > MAX_NODES) {
    expr__fail(p, at, "expression too long: more than %d terms", MAX_NODES);
    return NULL;
  }
  struct node *n = calloc(1, sizeof *n);
  if (!n) {
    expr__fail_nomem(p);
    return NULL;
  }
  n->kind = kind;
  n->col = expr__column_of(p, at);
  return n;
}

static bool enter(struct parser *p, size_t at) {
  if (++p->depth > MAX_DEPTH) {
    expr__fail(p, at, "expression nests deeper than %d levels", MAX_DEPTH);
    return false;
  }
  return true;
}

static char *dup_n(struct parser *p, const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (!d) {
    expr__fail_nomem(p);
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
  if (!expr__advance(p)) {
    return false;
  }
  size_t cap = 0;
  while (p->tok.kind != T_RBRACE) {
    if (p->tok.kind != T_IDENT && p->tok.kind != T_STR) {
      char got[64];
      expr__describe(p, got, sizeof got);
      expr__fail(p, p->tok.start, "expected a label name or '}', got %s", got);
      return false;
    }
    if (p->tok.kind == T_STR && p->str.len == 0) {
      expr__fail(p, p->tok.start, "a label name cannot be empty");
      return false;
    }
    if (sel->nm == cap) {
      size_t ncap = cap ? cap * 2 : 2;
      struct matcher *m = realloc(sel->m, ncap * sizeof *m);
      if (!m) {
        expr__fail_nomem(p);
        return false;
      }
      sel->m = m;
      cap = ncap;
    }
    struct matcher *m = &sel->m[sel->nm];
    memset(m, 0, sizeof *m);
    sel->nm++;
    m->key = name_of_tok(p);
    if (!m->key || !expr__advance(p)) {
      return false;
    }
    if (p->tok.kind != T_ASSIGN && p->tok.kind != T_NE) {
      char got[64];
      expr__describe(p, got, sizeof got);
      expr__fail(p, p->tok.start, "expected '=' or '!=' after label %s, got %s",
                 m->key, got);
      return false;
    }
    m->neg = p->tok.kind == T_NE;
    if (!expr__advance(p)) {
      return false;
    }
    if (p->tok.kind != T_STR) {
      char got[64];
      expr__describe(p, got, sizeof got);
      expr__fail(p, p->tok.start,
                 "expected a label value in double quotes, got %s", got);
      return false;
    }
    m->value = name_of_tok(p);
    if (!m->value || !expr__advance(p)) {
      return false;
    }
    if (p->tok.kind == T_COMMA) {
      if (!expr__advance(p)) {
        return false;
      }
    } else if (p->tok.kind != T_RBRACE) {
      char got[64];
      expr__describe(p, got, sizeof got);
      expr__fail(p, p->tok.start,
                 "expected ',' or '}' to close '{' at column %d, "
                 "got %s",
                 expr__column_of(p, open), got);
      return false;
    }
  }
  return expr__advance(p);
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
    expr__fail(p, start, "a measurement name cannot be empty");
    goto err;
  }
  sel->meas = name_of_tok(p);
  if (!sel->meas) {
    goto err;
  }
  size_t name_end = p->tok.end;
  if (!expr__advance(p)) {
    goto err;
  }
  if (p->tok.kind == T_DOT && p->tok.start == name_end) {
    size_t dot_end = p->tok.end;
    if (!expr__advance(p)) {
      goto err;
    }
    if ((p->tok.kind != T_IDENT && p->tok.kind != T_STR) ||
        p->tok.start != dot_end) {
      expr__fail(p, dot_end, "expected a field name right after '%s.'",
                 sel->meas);
      goto err;
    }
    if (p->tok.kind == T_STR && p->str.len == 0) {
      expr__fail(p, p->tok.start, "a field name cannot be empty");
      goto err;
    }
    sel->field = name_of_tok(p);
    if (!sel->field || !expr__advance(p)) {
      goto err;
    }
  }
  if (p->tok.kind == T_LBRACE && !parse_matchers(p, sel)) {
    goto err;
  }
  if (!sel->field && !(in && in->args == FA_INSTANT)) {
    expr__fail(p, start,
               "%s needs a field, as in %s.<field> (a measurement alone is "
               "allowed only in age() and absent())",
               sel->meas, sel->meas);
    goto err;
  }
  if (p->tok.kind == T_LBRACKET) {
    size_t open = p->tok.start;
    if (!in || in->args != FA_WINDOW) {
      if (in) {
        expr__fail(p, open, "%s takes no range", in->name);
      } else {
        expr__fail(p, open,
                   "a range is allowed only inside avg, min, max, sum, count, "
                   "last, delta, increase and rate");
      }
      goto err;
    }
    if (!expr__advance(p)) {
      goto err;
    }
    if (p->tok.kind != T_NUM || p->tok.lk != LIT_DURATION) {
      expr__fail(p, p->tok.start,
                 "expected a duration such as 15m in the range");
      goto err;
    }
    if (p->tok.ms <= 0) {
      expr__fail(p, p->tok.start, "a range must be longer than zero");
      goto err;
    }
    sel->range_ms = p->tok.ms;
    sel->working = p->tok.working;
    if (!expr__advance(p)) {
      goto err;
    }
    if (p->tok.kind != T_RBRACKET) {
      expr__fail(p, p->tok.start, "expected ']' to close '[' at column %d",
                 expr__column_of(p, open));
      goto err;
    }
    if (!expr__advance(p)) {
      goto err;
    }
  } else if (in && in->args == FA_WINDOW) {
    expr__fail(p, p->tok.start, "%s needs a range such as [15m] after %s%s%s",
               in->name, sel->meas, sel->field ? "." : "",
               sel->field ? sel->field : "");
    goto err;
  }
  return n;
err:
  expr__node_free(n);
  return NULL;
}

static bool starts_selector(const struct parser *p) {
  return (p->tok.kind == T_IDENT && !expr__is_keyword(p->tok.id, p->tok.idn)) ||
         p->tok.kind == T_STR;
}

/* Whether the current identifier is followed by '(' (a call). */
static bool before_paren(const struct parser *p) {
  size_t i = p->tok.end;
  while (i < p->len && expr__is_space(p->s[i])) {
    i++;
  }
  return i < p->len && p->s[i] == '(';
}

static bool parse_calendar_args(struct parser *p, struct node *n) {
  if (p->tok.kind != T_STR || p->str.len == 0) {
    expr__fail(p, p->tok.start,
               "during takes a calendar name in double quotes, as in "
               "during(\"office_hours\")");
    return false;
  }
  n->u.call.cal = name_of_tok(p);
  if (!n->u.call.cal || !expr__advance(p)) {
    return false;
  }
  if (p->tok.kind != T_COMMA) {
    return true;
  }
  if (!expr__advance(p)) {
    return false;
  }
  if (p->tok.kind != T_NUM || p->tok.lk != LIT_DURATION || p->tok.ms <= 0 ||
      p->tok.working) {
    expr__fail(
        p, p->tok.start,
        "expected a duration such as 2h as the second argument of during");
    return false;
  }
  n->u.call.ms = p->tok.ms;
  return expr__advance(p);
}

static struct node *parse_call(struct parser *p) {
  size_t start = p->tok.start;
  const struct fninfo *fi = NULL;
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    if (expr__tok_is(&p->tok, fns[i].name)) {
      fi = &fns[i];
    }
  }
  if (!fi) {
    expr__fail(p, start, "unknown function '%.*s'", (int)p->tok.idn, p->tok.id);
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
  if (!expr__advance(p) || !expr__advance(p)) { /* the name, then '(' */
    goto err;
  }
  if (p->tok.kind == T_RPAREN) {
    expr__fail(p, p->tok.start, "%s takes %s, got none", fi->name,
               fi->args == FA_CALENDAR ? "1 or 2 arguments" : "1 argument");
    goto err;
  }
  if (fi->args == FA_CALENDAR) {
    if (!parse_calendar_args(p, n)) {
      goto err;
    }
  } else {
    if (!starts_selector(p)) {
      expr__fail(
          p, p->tok.start,
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
    expr__fail(
        p, p->tok.start, "%s takes %s", fi->name,
        fi->args == FA_CALENDAR ? "at most 2 arguments" : "exactly 1 argument");
    goto err;
  }
  if (p->tok.kind != T_RPAREN) {
    expr__fail(p, p->tok.start, "expected ')' after the arguments of %s",
               fi->name);
    goto err;
  }
  if (!expr__advance(p)) {
    goto err;
  }
  p->depth--;
  return n;
err:
  expr__node_free(n);
  return NULL;
}

static struct node *parse_primary(struct parser *p) {
  size_t start = p->tok.start;
  switch (p->tok.kind) {
    case T_NUM: {
      if (p->tok.working) {
        expr__fail(
            p, start,
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
      if (!expr__advance(p)) {
        expr__node_free(n);
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
      if (!n->u.param || !expr__advance(p)) {
        expr__node_free(n);
        return NULL;
      }
      return n;
    }
    case T_LPAREN: {
      if (!enter(p, start) || !expr__advance(p)) {
        return NULL;
      }
      struct node *n = parse_or(p);
      if (!n) {
        return NULL;
      }
      if (p->tok.kind != T_RPAREN) {
        char got[64];
        expr__describe(p, got, sizeof got);
        expr__fail(p, p->tok.start,
                   "expected ')' to close '(' at column %d, got %s",
                   expr__column_of(p, start), got);
        expr__node_free(n);
        return NULL;
      }
      p->depth--;
      if (!expr__advance(p)) {
        expr__node_free(n);
        return NULL;
      }
      return n;
    }
    case T_IDENT:
      if (expr__is_keyword(p->tok.id, p->tok.idn)) {
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
  expr__describe(p, got, sizeof got);
  expr__fail(p, start,
             "expected a number, a series, a parameter or '(', got %s", got);
  return NULL;
}

static struct node *parse_unary(struct parser *p) {
  if (p->tok.kind != T_MINUS) {
    return parse_primary(p);
  }
  size_t start = p->tok.start;
  if (!enter(p, start) || !expr__advance(p)) {
    return NULL;
  }
  struct node *sub = parse_unary(p);
  if (!sub) {
    return NULL;
  }
  p->depth--;
  struct node *n = node_new(p, K_NEG, start);
  if (!n) {
    expr__node_free(sub);
    return NULL;
  }
  n->u.sub = sub;
  return n;
}

static struct node *binary(struct parser *p, enum op op, struct node *l,
                           struct node *r, size_t at) {
  struct node *n = node_new(p, K_BIN, at);
  if (!n) {
    expr__node_free(l);
    expr__node_free(r);
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
    struct node *r = expr__advance(p) ? parse_unary(p) : NULL;
    if (!r) {
      expr__node_free(l);
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
    struct node *r = expr__advance(p) ? parse_mul(p) : NULL;
    if (!r) {
      expr__node_free(l);
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
      expr__fail(p, p->tok.start, "unexpected '=' (use == to compare)");
      expr__node_free(l);
      return NULL;
    }
    return l;
  }
  size_t at = p->tok.start;
  struct node *r = expr__advance(p) ? parse_add(p) : NULL;
  if (!r) {
    expr__node_free(l);
    return NULL;
  }
  enum op next;
  if (cmp_op(p->tok.kind, &next)) {
    expr__fail(p, p->tok.start,
               "comparisons do not chain; combine them with and");
    expr__node_free(l);
    expr__node_free(r);
    return NULL;
  }
  return binary(p, op, l, r, at);
}

static struct node *parse_not(struct parser *p) {
  if (!expr__tok_is(&p->tok, "not")) {
    return parse_cmp(p);
  }
  size_t start = p->tok.start;
  if (!enter(p, start) || !expr__advance(p)) {
    return NULL;
  }
  struct node *sub = parse_not(p);
  if (!sub) {
    return NULL;
  }
  p->depth--;
  struct node *n = node_new(p, K_NOT, start);
  if (!n) {
    expr__node_free(sub);
    return NULL;
  }
  n->u.sub = sub;
  return n;
}

static struct node *parse_and(struct parser *p) {
  struct node *l = parse_not(p);
  while (l && expr__tok_is(&p->tok, "and")) {
    size_t at = p->tok.start;
    struct node *r = expr__advance(p) ? parse_not(p) : NULL;
    if (!r) {
      expr__node_free(l);
      return NULL;
    }
    l = binary(p, OP_AND, l, r, at);
  }
  return l;
}

static struct node *parse_or(struct parser *p) {
  struct node *l = parse_and(p);
  while (l && expr__tok_is(&p->tok, "or")) {
    size_t at = p->tok.start;
    struct node *r = expr__advance(p) ? parse_and(p) : NULL;
    if (!r) {
      expr__node_free(l);
      return NULL;
    }
    l = binary(p, OP_OR, l, r, at);
  }
  return l;
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
    expr__fail(&p, 0, "expression longer than %d bytes", EXPR_MAX_LEN);
    goto out;
  }
  if (!utf8_valid(p.s, p.len, &bad)) {
    expr__fail(&p, bad, "invalid UTF-8");
    goto out;
  }
  if (!expr__advance(&p)) {
    goto out;
  }
  if (p.tok.kind == T_EOF) {
    expr__fail(&p, 0, "empty expression");
    goto out;
  }
  root = parse_or(&p);
  if (!root) {
    goto out;
  }
  if (p.tok.kind != T_EOF) {
    char got[64];
    expr__describe(&p, got, sizeof got);
    expr__fail(&p, p.tok.start, "unexpected %s after a complete expression",
               got);
    goto out;
  }
  e = calloc(1, sizeof *e);
  if (!e) {
    goto nomem;
  }
  e->root = root;
  root = NULL;
  struct caps caps = {0};
  if (expr__fill_texts(e->root) || expr__collect(e, &caps, e->root)) {
    goto nomem;
  }
  e->text = expr__render_new(e->root);
  if (!e->text) {
    goto nomem;
  }
  goto out;
nomem:
  expr__fail_nomem(&p);
  expr_free(e);
  e = NULL;
out:
  expr__node_free(root);
  buf_cleanup(&p.str);
  if (!e && !p.rc) {
    expr__fail_nomem(&p);
  }
  if (err_col) {
    *err_col = e ? 0 : p.col;
  }
  return e;
}
