/*
 * The broker alert: a built-in rule with one instance, which fires when
 * iocd loses its MQTT broker and resolves when it is back. While the
 * broker is down the rules it inhibits are held, and when it is back they
 * are evaluated at once, counting silence only from then on. Its summary
 * is written in the engine's language.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/mem.h"
#include "rules/engine_int.h"

int engine__make_broker(struct engine *e) {
  struct rule *r = calloc(1, sizeof *r);
  if (!r) {
    return IOCD_ENOMEM;
  }
  r->builtin = true;
  r->name = mem_strdup(ENGINE_BROKER_RULE);
  r->canonical = mem_strdup(ENGINE_BROKER_RULE);
  const struct alert_kv ann = {
      .key = "summary",
      .value = engine__word(e->opts.lang, ENGINE__W_BROKER_SUMMARY),
  };
  if (!r->name || !r->canonical || engine__copy_kvs(&ann, 1, &r->annotations)) {
    r->nannotations = r->annotations ? 1 : 0;
    engine__rule_free(r);
    return IOCD_ENOMEM;
  }
  r->nannotations = 1;
  e->broker = r;
  const char *none[1] = {NULL};
  if (!engine__instance(e, r, none)) {
    return IOCD_ENOMEM;
  }
  return IOCD_OK;
}

int engine_set_lang(struct engine *e, enum engine_lang lang) {
  if (e->opts.lang == lang) {
    return IOCD_OK;
  }
  const struct alert_kv ann = {
      .key = "summary",
      .value = engine__word(lang, ENGINE__W_BROKER_SUMMARY),
  };
  struct kv *v = NULL;
  if (engine__copy_kvs(&ann, 1, &v)) {
    engine__kv_free(v, v ? 1 : 0);
    return IOCD_ENOMEM;
  }
  engine__kv_free(e->broker->annotations, e->broker->nannotations);
  e->broker->annotations = v;
  e->broker->nannotations = 1;
  e->opts.lang = lang;
  return IOCD_OK;
}

void engine_set_broker_up(struct engine *e, bool up, int64_t now) {
  if (up == !e->broker_down) {
    return;
  }
  e->broker_down = !up;
  struct inst *bi = e->broker->ninsts ? e->broker->insts[0] : NULL;
  if (up) {
    e->listen_since = now;
    for (size_t i = 0; i < e->nrules; i++) {
      struct rule *r = e->rules[i];
      for (size_t k = 0; r->inhibited && k < r->ninsts; k++) {
        engine__schedule(e, r->insts[k], now);
      }
    }
  } else {
    for (size_t i = 0; i < e->nrules; i++) {
      struct rule *r = e->rules[i];
      for (size_t k = 0; r->inhibited && k < r->ninsts; k++) {
        engine__schedule(e, r->insts[k], INT64_MAX);
      }
    }
  }
  if (!bi) {
    return;
  }
  char when[40];
  engine__fmt_time(engine__default_cal(e), now, when);
  char reason[256];
  snprintf(reason, sizeof reason, "%s %s %s: %s",
           engine__word(e->opts.lang, ENGINE__W_BROKER),
           engine__word(e->opts.lang, ENGINE__W_AT), when,
           engine__word(e->opts.lang,
                        up ? ENGINE__W_BROKER_UP : ENGINE__W_BROKER_DOWN));
  enum alert_state prev = bi->a.state;
  alert_init(&bi->a);
  if (!up) {
    bi->a.state = ALERT_FIRING;
    bi->a.level = 1;
    bi->a.since_ns = now;
    bi->a.pending_since_ns = now;
    bi->a.firing_since_ns = now;
  }
  bi->a.last_eval_ns = now;
  engine__set_reason(bi, reason);
  bi->reason_ns = now;
  bi->by = ALERT_BY_BROKER;
  struct alert_event ev;
  engine__fill_event(e, bi, &ev);
  ev.prev = prev;
  ev.state = up ? ALERT_RESOLVED : ALERT_FIRING;
  ev.severity = "critical";
  ev.t_ns = now;
  if (up) {
    ev.active_since_ns = 0;
    ev.firing_since_ns = 0;
  }
  engine__deliver(e, bi, &ev);
}
