/*
 * Evaluation of the rules language against a sample store at a time: the
 * operators (Kleene's and/or over MISSING), instant selectors, parameters,
 * the functions (the windows of avg, min, max, sum, count, last, delta,
 * increase and rate; age, absent and during) and the memo shared by the
 * rules of one evaluation; then the horizon, the earliest time after which
 * the value may change without a new sample.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/clock.h"
#include "rules/expr.h"
#include "rules/expr_int.h"
#include "rules/rules_int.h"

/* ---- evaluation ---------------------------------------------------------- */

/* The family of sel in c's store, NULL when none. */
static const struct family *sel_family(const struct eval_ctx *c,
                                       const struct selector *sel) {
  return series__family_h(c->store, sel->meas, sel->mn, sel->field, sel->fn,
                          sel->fam_hash);
}

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
                                       const struct node *n, bool is_horizon) {
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
      bool heard =
          a.floor
              ? a.nheard > 0 || (uint64_t)c->t_ns - (uint64_t)a.floor <= a.fresh
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
      expr__prec_of(e->root) != 4) {
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
  enum fn fn;      /* F_AVG..F_RATE for windows; F_AGE, F_ABSENT; or
                      F_DURING as "instant selector" */
  int64_t t, from; /* from: window start (exclusive) */
  uint64_t fresh;
  int64_t floor;
  int64_t next; /* the result so far */
  bool seen;
  int64_t newest; /* age(): the newest sample at or before t */
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
    h_at(h, c->working ? c->working(c->ud, c->group, ts, d, true) : INT64_MAX);
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
  if (expr__prec_of(n) == 4) {
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
