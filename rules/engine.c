/*
 * The rules engine: parsed rules, their instances, the sample store, and
 * the two triggers that evaluate them. This file makes, reloads and frees
 * the engine; the rest of it lives beside it:
 *
 *   engine_rule.c     rules and calendars built and checked from definitions
 *   engine_inst.c     instances: the table of a rule's groups
 *   engine_arrival.c  the read index and what a new point or sample sets off
 *   engine_sched.c    the wake heap and the ticks that pop it
 *   engine_eval.c     one evaluation: the state machine's step and its reason
 *   engine_event.c    alert events and the annotation templates they carry
 *   engine_broker.c   the built-in broker alert
 *   engine_list.c     listing alerts, groups and counters
 *   state_io.c        alert state saved and restored
 */
#include "rules/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/engine_int.h"

#define DEFAULT_MAX_INSTANCES 1000000

int engine_new(const struct engine_opts *opts, const struct rule_def *rules,
               size_t n, struct engine **out, struct rule_error *re) {
  *out = NULL;
  if (n && !rules) {
    return IOCD_EINVAL;
  }
  struct engine *e = calloc(1, sizeof *e);
  if (!e) {
    return engine__rerr(re, 0, "engine", "engine", 0, IOCD_ENOMEM,
                        "out of memory");
  }
  if (opts) {
    e->opts = *opts;
  }
  e->opts.calendars = NULL;
  e->opts.ncalendars = 0;
  e->max_insts =
      e->opts.max_instances ? e->opts.max_instances : DEFAULT_MAX_INSTANCES;
  e->listen_since = e->opts.start_ns > 0 ? e->opts.start_ns : 0;
  int rc =
      engine__cals_build(opts ? opts->calendars : NULL,
                         opts ? opts->ncalendars : 0, &e->cals, &e->ncals, re);
  if (rc) {
    goto fail;
  }
  rc = engine__rules_build(rules, n, (const struct calendar *const *)e->cals,
                           e->ncals, &e->rules, re);
  if (rc) {
    goto fail;
  }
  e->nrules = n;
  struct series_store_opts so = e->opts.store;
  so.user_free = engine__known_free;
  e->store = series_store_new(&so);
  if (!e->store) {
    rc = engine__rerr(re, 0, "engine", "engine", 0, IOCD_ENOMEM,
                      "out of memory");
    goto fail;
  }
  rc = engine__make_broker(e);
  if (!rc) {
    rc = engine__index_build(e);
  }
  for (size_t i = 0; i < e->nrules && !rc; i++) {
    rc = engine__make_expected(e, e->rules[i]);
  }
  if (rc) {
    rc =
        engine__rerr(re, 0, "engine", "engine", 0, rc, "%s", iocd_strerror(rc));
    goto fail;
  }
  *out = e;
  return IOCD_OK;
fail:
  engine_free(e);
  return rc;
}

void engine_free(struct engine *e) {
  if (!e) {
    return;
  }
  engine__rules_free(e->rules, e->nrules);
  engine__rule_free(e->broker);
  engine__cals_free(e->cals, e->ncals);
  engine__index_free(e);
  series_store_free(e->store);
  free(e->heap);
  free(e->touched);
  free(e);
}

/* Ends the instances of a rule that goes away: firing ones resolve. */
static void retire(struct engine *e, struct rule *r, int64_t now) {
  for (size_t k = 0; k < r->ninsts; k++) {
    struct inst *in = r->insts[k];
    engine__heap_remove(e, in);
    e->ninsts--;
    if (in->a.state != ALERT_FIRING) {
      continue;
    }
    char when[40];
    engine__fmt_time(r->cal ? r->cal : engine__default_cal(e), now, when);
    char reason[256];
    snprintf(reason, sizeof reason, "%s %s %s: %s",
             engine__word(e->opts.lang, ENGINE__W_RELOAD),
             engine__word(e->opts.lang, ENGINE__W_AT), when,
             engine__word(e->opts.lang, ENGINE__W_RULE_GONE));
    engine__set_reason(in, reason);
    in->by = ALERT_BY_RELOAD;
    struct alert_event ev;
    engine__fill_event(e, in, &ev);
    ev.prev = ALERT_FIRING;
    ev.state = ALERT_RESOLVED;
    ev.t_ns = now;
    ev.active_since_ns = 0;
    ev.firing_since_ns = 0;
    engine__deliver(e, in, &ev);
  }
}

int engine_reconfigure(struct engine *e, const struct calendar_def *cals,
                       size_t ncals, const struct rule_def *rules, size_t n,
                       int64_t now, struct rule_error *re) {
  if (!e || (n && !rules)) {
    return IOCD_EINVAL;
  }
  struct calendar **nc = NULL;
  size_t nnc = 0;
  int rc = IOCD_OK;
  if (cals) {
    rc = engine__cals_build(cals, ncals, &nc, &nnc, re);
    if (rc) {
      return rc;
    }
  }
  const struct calendar *const *use =
      (const struct calendar *const *)(nc ? nc : e->cals);
  size_t nuse = nc ? nnc : e->ncals;
  struct rule **nr = NULL;
  rc = engine__rules_build(rules, n, use, nuse, &nr, re);
  if (rc) {
    engine__cals_free(nc, nnc);
    return rc;
  }
  /* Nothing can fail past this point but memory for tables, which only
   * loses instances of the kept rules. Rules and instances are freed
   * below: what series_user slots remember of them is void. */
  e->known_gen++;
  for (size_t i = 0; i < e->nrules; i++) {
    struct rule *old = e->rules[i];
    struct rule *keep = NULL;
    for (size_t k = 0; k < n; k++) {
      if (strcmp(nr[k]->name, old->name) == 0 &&
          strcmp(nr[k]->hash, old->hash) == 0) {
        keep = nr[k];
      }
    }
    if (!keep) {
      retire(e, old, now);
      continue;
    }
    for (size_t k = 0; k < old->ninsts; k++) {
      struct inst *in = old->insts[k];
      if (engine__inst_attach(keep, in)) {
        engine__heap_remove(e, in);
        e->ninsts--;
        engine__inst_free(in);
      }
    }
    old->ninsts = 0;
  }
  /* The heap orders by rule index, which changed: rebuild its order. */
  engine__rules_free(e->rules, e->nrules);
  e->rules = nr;
  e->nrules = n;
  if (nc) {
    engine__cals_free(e->cals, e->ncals);
    e->cals = nc;
    e->ncals = nnc;
  }
  for (size_t i = e->nheap / 2 + 1; i-- > 0;) {
    if (i < e->nheap) {
      engine__heap_down(e, i);
    }
  }
  rc = engine__index_build(e);
  for (size_t i = 0; i < e->nrules && !rc; i++) {
    rc = engine__make_expected(e, e->rules[i]);
  }
  if (rc) {
    return engine__rerr(re, 0, "engine", "engine", 0, rc, "%s",
                        iocd_strerror(rc));
  }
  /* Kept instances are looked at again now: annotations may differ. */
  for (size_t i = 0; i < e->nrules; i++) {
    struct rule *r = e->rules[i];
    for (size_t k = 0; k < r->ninsts; k++) {
      struct inst *in = r->insts[k];
      if (in->heap_idx == SIZE_MAX) {
        engine__schedule(e, in, now);
      }
    }
  }
  return IOCD_OK;
}
