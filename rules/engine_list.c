/*
 * What the engine shows without changing: the alerts that are not
 * inactive (with their annotations rendered), the groups of one rule, its
 * counters and memory, the sample store, and a rule's definition hash.
 */
#include <string.h>

#include "rules/engine_int.h"

void engine_list(const struct engine *e, engine_list_fn *fn, void *ud) {
  for (size_t i = 0; i <= e->nrules; i++) {
    struct rule *r = i < e->nrules ? e->rules[i] : e->broker;
    for (size_t k = 0; k < r->ninsts; k++) {
      struct inst *in = r->insts[k];
      if (in->a.state == ALERT_INACTIVE) {
        continue;
      }
      struct alert_event ev;
      engine__fill_event(e, in, &ev);
      if (r->builtin) {
        ev.severity = "critical";
      }
      struct alert_kv views[MAX_ANNOTATIONS];
      size_t nv = r->nannotations;
      struct buf b;
      buf_init(&b, EVENT_TEXT_MAX);
      size_t offs[MAX_ANNOTATIONS];
      for (size_t a = 0; a < nv; a++) {
        offs[a] = b.len;
        if (engine_render(r->annotations[a].value, &ev, e->opts.lang, &b,
                          NULL) ||
            buf_putc(&b, '\0')) {
          nv = a;
          break;
        }
      }
      for (size_t a = 0; a < nv; a++) {
        views[a] = (struct alert_kv){.key = r->annotations[a].key,
                                     .value = b.data + offs[a]};
      }
      ev.annotations = views;
      ev.nannotations = nv;
      fn(ud, &ev);
      buf_cleanup(&b);
    }
  }
}

void engine_list_groups(const struct engine *e, const char *rule,
                        engine_group_fn *fn, void *ud) {
  const struct rule *r = engine__rule(e, rule);
  for (size_t k = 0; r && k < r->ninsts; k++) {
    const struct inst *in = r->insts[k];
    struct alert_event ev;
    engine__fill_event(e, in, &ev);
    fn(ud, &ev, in->a.last_eval_ns);
  }
}

void engine_get_stats(const struct engine *e, struct engine_stats *out) {
  *out = e->st;
  out->rules = e->nrules;
  out->instances = 0;
  out->pending = out->firing = out->nodata = out->insufficient = 0;
  out->held = 0;
  out->bytes = sizeof *e + e->cap_heap * sizeof *e->heap + e->known_bytes;
  for (size_t i = 0; i <= e->nrules; i++) {
    const struct rule *r = i < e->nrules ? e->rules[i] : e->broker;
    out->bytes += sizeof *r + r->cap_insts * sizeof *r->insts +
                  r->table_size * sizeof *r->table;
    if (r->canonical) {
      out->bytes += strlen(r->canonical) + 1;
    }
    for (size_t k = 0; k < r->ninsts; k++) {
      const struct inst *in = r->insts[k];
      out->instances++;
      out->bytes += sizeof *in + (r->nby ? r->nby : 1) *
                                     (sizeof *in->values + sizeof *in->hashes);
      if (in->group.cache) {
        out->bytes += SERIES_GROUP_CACHE_SIZE(in->group.cache->nways);
      }
      for (size_t v = 0; v < r->nby; v++) {
        out->bytes += strlen(in->values[v]) + 1;
      }
      if (in->reason) {
        out->bytes += strlen(in->reason) + 1;
      }
      if (r->inhibited && e->broker_down) {
        out->held++;
      }
      switch (in->a.state) {
        case ALERT_PENDING:
          out->pending++;
          break;
        case ALERT_FIRING:
          out->firing++;
          break;
        case ALERT_NODATA:
          out->nodata++;
          break;
        case ALERT_INSUFFICIENT:
          out->insufficient++;
          break;
        default:
          break;
      }
    }
  }
}

const struct series_store *engine_store(const struct engine *e) {
  return e->store;
}

const char *engine_rule_hash(const struct engine *e, const char *name) {
  const struct rule *r = engine__rule(e, name);
  return r ? r->hash : NULL;
}
