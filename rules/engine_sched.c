/*
 * The wake heap and the ticks that pop it. On a tick, a min-heap of wake
 * times gives the instances whose state can change with time alone. An
 * instance's wake is the earliest of its state machine's deadline
 * (alert_deadline) and the horizon of the expressions it evaluated
 * (expr_horizon: staleness, windows, age() thresholds, calendar
 * boundaries), recomputed after every evaluation. Ties pop in rule order,
 * then creation order, so the same input gives the same events in the same
 * order.
 */
#include <stdlib.h>

#include "rules/engine_int.h"

static bool before(const struct inst *a, const struct inst *b) {
  if (a->hkey != b->hkey) {
    return a->hkey < b->hkey;
  }
  if (a->rule->index != b->rule->index) {
    return a->rule->index < b->rule->index;
  }
  return a->seq < b->seq;
}

static void heap_swap(struct engine *e, size_t i, size_t j) {
  struct inst *t = e->heap[i];
  e->heap[i] = e->heap[j];
  e->heap[j] = t;
  e->heap[i]->heap_idx = i;
  e->heap[j]->heap_idx = j;
}

static void heap_up(struct engine *e, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!before(e->heap[i], e->heap[p])) {
      break;
    }
    heap_swap(e, i, p);
    i = p;
  }
}

void engine__heap_down(struct engine *e, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < e->nheap && before(e->heap[l], e->heap[m])) {
      m = l;
    }
    if (r < e->nheap && before(e->heap[r], e->heap[m])) {
      m = r;
    }
    if (m == i) {
      return;
    }
    heap_swap(e, i, m);
    i = m;
  }
}

void engine__heap_remove(struct engine *e, struct inst *in) {
  size_t i = in->heap_idx;
  if (i == SIZE_MAX) {
    return;
  }
  in->heap_idx = SIZE_MAX;
  e->nheap--;
  if (i == e->nheap) {
    return;
  }
  e->heap[i] = e->heap[e->nheap];
  e->heap[i]->heap_idx = i;
  heap_up(e, i);
  engine__heap_down(e, e->heap[i]->heap_idx);
}

/* Schedules in at wake (INT64_MAX: not at all). When the heap cannot grow
 * the instance is evaluated on arrival only; that is the one degradation
 * memory exhaustion causes.
 *
 * Most evaluations move a wake later (each sample pushes back when a feed
 * counts as silent or when the oldest sample leaves a window), and with
 * tens of thousands of instances sifting each one down the heap costs more
 * than the evaluation. So a later wake leaves the heap alone: the key stays
 * where it was, below the true wake, and settle() moves the instance when
 * its stale key reaches the top. Keys are never above the true wake, so
 * the top, once settled, is the instance due first, in the same (wake,
 * rule, creation) order as an exact heap. */
void engine__schedule(struct engine *e, struct inst *in, int64_t wake) {
  if (wake == INT64_MAX) {
    engine__heap_remove(e, in);
    in->wake = wake;
    return;
  }
  if (in->heap_idx != SIZE_MAX) {
    in->wake = wake;
    if (wake < in->hkey) {
      in->hkey = wake;
      heap_up(e, in->heap_idx);
    }
    return;
  }
  if (e->nheap == e->cap_heap) {
    size_t ncap = e->cap_heap ? e->cap_heap * 2 : 64;
    struct inst **h = realloc(e->heap, ncap * sizeof *h);
    if (!h) {
      return;
    }
    e->heap = h;
    e->cap_heap = ncap;
  }
  in->wake = wake;
  in->hkey = wake;
  in->heap_idx = e->nheap;
  e->heap[e->nheap++] = in;
  heap_up(e, in->heap_idx);
}

/* Gives the top of the heap its true key, until the top is exact. */
static void settle(struct engine *e) {
  while (e->nheap > 0 && e->heap[0]->hkey < e->heap[0]->wake) {
    e->heap[0]->hkey = e->heap[0]->wake;
    engine__heap_down(e, 0);
  }
}

/* ---- time ---------------------------------------------------------------- */

size_t engine_tick(struct engine *e, int64_t now) {
  size_t n = 0;
  struct trigger trg = {.by = ALERT_BY_TICK};
  for (settle(e); e->nheap > 0 && e->heap[0]->wake <= now; settle(e)) {
    struct inst *in = e->heap[0];
    engine__heap_remove(e, in);
    in->wake = INT64_MAX;
    engine__evaluate(e, in, now, &trg);
    n++;
  }
  return n;
}

size_t engine_eval_all(struct engine *e, int64_t now) {
  size_t n = 0;
  struct trigger trg = {.by = ALERT_BY_TICK};
  for (size_t i = 0; i < e->nrules; i++) {
    struct rule *r = e->rules[i];
    for (size_t k = 0; k < r->ninsts; k++) {
      engine__evaluate(e, r->insts[k], now, &trg);
      n++;
    }
  }
  return n;
}

int64_t engine_next_wake(struct engine *e) {
  settle(e);
  return e->nheap ? e->heap[0]->wake : INT64_MAX;
}

void engine__schedule_restored(struct engine *e, struct inst *in) {
  struct alert_params p = in->rule->params;
  int64_t d = alert_deadline(&in->a, &p);
  int64_t at = e->listen_since;
  engine__schedule(e, in, d < at ? d : at);
}
