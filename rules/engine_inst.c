/*
 * The instances of a rule, one per group (values of its by labels): found
 * through a hash table over the values, created on first sight (within
 * max_instances), and kept in creation order, which breaks ties in the
 * wake heap.
 */
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/mem.h"
#include "rules/engine_int.h"

static uint64_t values_hash(const char *const *v, size_t n) {
  uint64_t h = HASH_START;
  for (size_t i = 0; i < n; i++) {
    h = hash_str(h, v[i]);
  }
  return h;
}

void engine__inst_free(struct inst *in) {
  if (!in) {
    return;
  }
  free(in->values);
  free(in->hashes);
  free(in->text);
  free(in->reason);
  free(in);
}

static int table_grow(struct rule *r) {
  size_t n = r->table_size ? r->table_size * 2 : 16;
  struct inst **t = calloc(n, sizeof *t);
  if (!t) {
    return IOCD_ENOMEM;
  }
  for (size_t i = 0; i < r->ninsts; i++) {
    struct inst *in = r->insts[i];
    size_t b = (size_t)(in->hash & (n - 1));
    in->hnext = t[b];
    t[b] = in;
  }
  free(r->table);
  r->table = t;
  r->table_size = n;
  return IOCD_OK;
}

static struct inst *inst_find(const struct rule *r, const char *const *values,
                              uint64_t h) {
  if (!r->table_size) {
    return NULL;
  }
  for (struct inst *in = r->table[h & (r->table_size - 1)]; in;
       in = in->hnext) {
    if (in->hash != h) {
      continue;
    }
    size_t i = 0;
    while (i < r->nby && strcmp(in->values[i], values[i]) == 0) {
      i++;
    }
    if (i == r->nby) {
      return in;
    }
  }
  return NULL;
}

/* Gives in the table and array of r (in was made for r's by labels). */
int engine__inst_attach(struct rule *r, struct inst *in) {
  if (r->ninsts == r->cap_insts) {
    size_t ncap = r->cap_insts ? r->cap_insts * 2 : 8;
    struct inst **v = realloc(r->insts, ncap * sizeof *v);
    if (!v) {
      return IOCD_ENOMEM;
    }
    r->insts = v;
    r->cap_insts = ncap;
  }
  if ((r->ninsts + 1) * 2 > r->table_size && table_grow(r)) {
    return IOCD_ENOMEM;
  }
  in->rule = r;
  in->group.keys = (const char *const *)r->by;
  r->insts[r->ninsts++] = in;
  size_t b = (size_t)(in->hash & (r->table_size - 1));
  in->hnext = r->table[b];
  r->table[b] = in;
  return IOCD_OK;
}

/* The distinct (measurement, field) pairs r reads, counted up to 4. */
static uint32_t rule_families(struct rule *r) {
  if (r->nfams) {
    return r->nfams;
  }
  const char *m[4], *f[4];
  uint32_t n = 0;
  FOR_EACH_EXPR(r, x, {
    size_t nr;
    const struct expr_read *rd = expr_reads(x, &nr);
    for (size_t k = 0; k < nr && n < 4; k++) {
      uint32_t j = 0;
      while (j < n && !(strcmp(m[j], rd[k].measurement) == 0 &&
                        (f[j] && rd[k].field ? strcmp(f[j], rd[k].field) == 0
                                             : f[j] == rd[k].field))) {
        j++;
      }
      if (j == n) {
        m[n] = rd[k].measurement;
        f[n] = rd[k].field;
        n++;
      }
    }
  });
  r->nfams = n ? n : 1;
  return r->nfams;
}

struct inst *engine__instance(struct engine *e, struct rule *r,
                              const char *const *values) {
  uint64_t h = values_hash(values, r->nby);
  struct inst *in = inst_find(r, values, h);
  if (in) {
    return in;
  }
  if (e->ninsts >= e->max_insts) {
    e->st.instances_refused++;
    return NULL;
  }
  /* The group's cache of where its series are (series.h), one way per
   * family the rule reads, in the same block. */
  uint32_t ways = r->nby ? rule_families(r) : 0;
  in = calloc(1, sizeof *in + (ways ? SERIES_GROUP_CACHE_SIZE(ways) : 0));
  if (!in) {
    return NULL;
  }
  if (ways) {
    in->group.cache = (struct series_group_cache *)(void *)(in + 1);
    in->group.cache->nways = ways;
  }
  size_t total = 0;
  for (size_t i = 0; i < r->nby; i++) {
    total += strlen(values[i]) + 1;
  }
  in->values = calloc(r->nby ? r->nby : 1, sizeof *in->values);
  in->hashes = calloc(r->nby ? r->nby : 1, sizeof *in->hashes);
  in->text = malloc(total ? total : 1);
  if (!in->values || !in->hashes || !in->text) {
    engine__inst_free(in);
    return NULL;
  }
  char *p = in->text;
  for (size_t i = 0; i < r->nby; i++) {
    size_t n = strlen(values[i]) + 1;
    memcpy(p, values[i], n);
    in->values[i] = p;
    in->hashes[i] = series_group_hash(r->by[i], p);
    p += n;
  }
  in->hash = h;
  in->seq = e->seq++;
  in->heap_idx = SIZE_MAX;
  in->wake = INT64_MAX;
  in->hkey = INT64_MAX;
  in->group.values = in->values;
  in->group.hashes = in->hashes;
  in->group.n = r->nby;
  alert_init(&in->a);
  if (engine__inst_attach(r, in)) {
    engine__inst_free(in);
    return NULL;
  }
  e->ninsts++;
  return in;
}

int engine__set_reason(struct inst *in, const char *reason) {
  char *d = mem_strdup(reason ? reason : "");
  if (!d) {
    return IOCD_ENOMEM;
  }
  free(in->reason);
  in->reason = d;
  return IOCD_OK;
}

struct rule *engine__rule(const struct engine *e, const char *name) {
  for (size_t i = 0; i < e->nrules; i++) {
    if (strcmp(e->rules[i]->name, name) == 0) {
      return e->rules[i];
    }
  }
  return NULL;
}

size_t engine__nrules(const struct engine *e) {
  return e->nrules;
}

struct rule *engine__rule_at(const struct engine *e, size_t i) {
  return i < e->nrules ? e->rules[i] : NULL;
}

/* Creates the instances of r's expected groups that do not exist yet, due
 * for a first evaluation at once. */
int engine__make_expected(struct engine *e, struct rule *r) {
  for (size_t i = 0; i < r->nexpected; i++) {
    const char *const *vals = (const char *const *)&r->expected[i * r->nby];
    uint64_t h = values_hash(vals, r->nby);
    if (inst_find(r, vals, h)) {
      continue;
    }
    struct inst *in = engine__instance(e, r, vals);
    if (!in) {
      return IOCD_ENOMEM;
    }
    engine__schedule(e, in, e->listen_since);
  }
  return IOCD_OK;
}
