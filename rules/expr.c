/*
 * The rules language, the expression itself: the tree's lifetime (expr_free)
 * and what an expression reads (its selectors with their ranges, parameters
 * and calendars), recorded once when it is parsed.
 *
 * The language is one file per concern, sharing expr_int.h: expr_lex.c
 * (tokens), expr_parse.c (the recursive-descent parser; the grammar, one
 * function per precedence level, is in docs/rules-language.md),
 * expr_print.c (the canonical text) and expr_eval.c (values and horizons).
 * Parsing does all the checking (functions, arity, ranges, units), so
 * evaluation cannot fail: it only meets MISSING values, which carry the
 * reason and the culprit's canonical text up to the result.
 *
 * Limits keep a hostile config harmless: EXPR_MAX_LEN bytes of text, MAX_DEPTH
 * levels of nesting and MAX_NODES nodes (expr_parse.c), which also bounds the
 * recursion of the printer, the evaluator and expr_free.
 */
#include "rules/expr.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "rules/expr_int.h"

/* ---- the tree ------------------------------------------------------------ */

void expr__node_free(struct node *n) {
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
      expr__node_free(n->u.call.arg);
      free(n->u.call.cal);
      break;
    case K_NEG:
    case K_NOT:
      expr__node_free(n->u.sub);
      break;
    case K_BIN:
      expr__node_free(n->u.bin.l);
      expr__node_free(n->u.bin.r);
      break;
  }
  free(n);
}

void expr_free(struct expr *e) {
  if (!e) {
    return;
  }
  expr__node_free(e->root);
  free(e->text);
  free(e->reads);
  free(e->params);
  free(e->cals);
  free(e);
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

int expr__collect(struct expr *e, struct caps *caps, const struct node *n) {
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
      return expr__collect(e, caps, n->u.call.arg);
    case K_NEG:
    case K_NOT:
      return expr__collect(e, caps, n->u.sub);
    case K_BIN: {
      int rc = expr__collect(e, caps, n->u.bin.l);
      return rc ? rc : expr__collect(e, caps, n->u.bin.r);
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
