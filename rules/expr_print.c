/*
 * The canonical text of the rules language: the fewest parentheses the
 * precedence needs, numbers in their shortest exact form, durations from the
 * largest unit down, names quoted only when they would not lex back. It is
 * what expr_to_string gives, and the culprit text of each node that a
 * MISSING value can name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/hash.h"
#include "rules/expr_int.h"

/* ---- canonical text ------------------------------------------------------ */

static const char *const op_text[] = {
    [OP_OR] = "or", [OP_AND] = "and", [OP_LT] = "<",  [OP_LE] = "<=",
    [OP_GT] = ">",  [OP_GE] = ">=",   [OP_EQ] = "==", [OP_NE] = "!=",
    [OP_ADD] = "+", [OP_SUB] = "-",   [OP_MUL] = "*", [OP_DIV] = "/",
};

/* Binding strength, as in the grammar: or 1, and 2, not 3, comparisons 4,
 * + - 5, * / 6, unary minus 7, everything else 8. */
int expr__prec_of(const struct node *n) {
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
  for (size_t u = 0; u < EXPR__NUNITS && !rc; u++) {
    if (ms >= expr__units[u].ms) {
      rc = buf_printf(b, "%lld%s", (long long)(ms / expr__units[u].ms),
                      expr__units[u].name);
      ms %= expr__units[u].ms;
    }
  }
  return rc;
}

static int put_wduration(struct buf *b, int64_t ms) {
  int rc = IOCD_OK;
  for (size_t u = 0; u < EXPR__NWUNITS && !rc; u++) {
    if (ms >= expr__wunits[u].ms) {
      rc = buf_printf(b, "%lld%s", (long long)(ms / expr__wunits[u].ms),
                      expr__wunits[u].name);
      ms %= expr__wunits[u].ms;
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
  bool plain = n > 0 && expr__ident_start(s[0]);
  for (size_t i = 1; plain && i < n; i++) {
    plain = expr__ident_char(s[i]);
  }
  if (plain && quote_keywords && expr__is_keyword(s, n)) {
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
      int prec = expr__prec_of(n);
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
  bool paren = expr__prec_of(n) < min_prec;
  int rc = paren ? buf_putc(b, '(') : IOCD_OK;
  if (!rc) {
    rc = render_inner(b, n);
  }
  if (!rc && paren) {
    rc = buf_putc(b, ')');
  }
  return rc;
}

char *expr__render_new(const struct node *n) {
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

/* Gives every node that can be a culprit its canonical text. */
int expr__fill_texts(struct node *n) {
  switch (n->kind) {
    case K_SEL:
    case K_CALL:
    case K_PARAM:
      n->text = expr__render_new(n);
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
      return expr__fill_texts(n->u.sub);
    case K_BIN:
      if (n->u.bin.op == OP_DIV) {
        n->text = expr__render_new(n->u.bin.r);
        if (!n->text) {
          return IOCD_ENOMEM;
        }
      }
      int rc = expr__fill_texts(n->u.bin.l);
      return rc ? rc : expr__fill_texts(n->u.bin.r);
    case K_NUM:
      break;
  }
  return IOCD_OK;
}
