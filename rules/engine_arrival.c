/*
 * Arrival: the store calls back once per sample stored; the callback finds
 * the rules that read that (measurement, field) through an index, names
 * the group from the series' labels, and marks the instance. Only after
 * the whole point (and its heartbeat) is stored are the marked instances
 * evaluated, each once, so a rule that reads two fields of one point sees
 * both. Work is proportional to the rules reading what changed.
 */
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/mem.h"
#include "rules/engine_int.h"

/* An index entry: the rules that read (measurement, field). */
struct reader {
  struct reader *next;
  char *meas;
  char *field; /* NULL: the bare measurement */
  struct rule **rules;
  size_t n, cap;
};

/* What the engine keeps with the labels of a point (series_user): the
 * instance each rule reading them found last, so that the next point with
 * the same labels does not look it up. Valid while gen is the engine's
 * known_gen, which moves whenever instances or rules are freed. */
#define KNOWN_MIN 4
#define KNOWN_MAX 16
struct known {
  uint64_t gen;
  size_t *bytes; /* the engine's count of what these take */
  uint32_t n, cap, next;
  struct {
    const struct rule *r;
    struct inst *in;
  } v[];
};

static size_t known_size(uint32_t cap) {
  return sizeof(struct known) + cap * sizeof(((struct known *)0)->v[0]);
}

/* The store's user_free for struct known. */
void engine__known_free(void *p) {
  struct known *k = p;
  *k->bytes -= known_size(k->cap);
  free(k);
}

/* ---- the read index ------------------------------------------------------ */

static uint64_t reader_hash(const char *meas, const char *field) {
  uint64_t h = hash_str(HASH_START, meas);
  return field ? hash_str(h, field) : hash_byte(h, 0xff);
}

static bool same(const char *a, const char *b) {
  return a == b || (a && b && strcmp(a, b) == 0);
}

static struct reader *reader_find(const struct engine *e, const char *meas,
                                  const char *field) {
  if (!e->index_size) {
    return NULL;
  }
  uint64_t h = reader_hash(meas, field);
  for (struct reader *x = e->index[h & (e->index_size - 1)]; x; x = x->next) {
    if (strcmp(x->meas, meas) == 0 && same(x->field, field)) {
      return x;
    }
  }
  return NULL;
}

void engine__index_free(struct engine *e) {
  for (size_t i = 0; i < e->index_size; i++) {
    struct reader *x = e->index[i];
    while (x) {
      struct reader *next = x->next;
      free(x->meas);
      free(x->field);
      free(x->rules);
      free(x);
      x = next;
    }
  }
  free(e->index);
  e->index = NULL;
  e->index_size = 0;
}

static int index_add(struct engine *e, const char *meas, const char *field,
                     struct rule *r) {
  struct reader *x = reader_find(e, meas, field);
  if (!x) {
    x = calloc(1, sizeof *x);
    if (!x) {
      return IOCD_ENOMEM;
    }
    x->meas = mem_strdup(meas);
    x->field = field ? mem_strdup(field) : NULL;
    if (!x->meas || (field && !x->field)) {
      free(x->meas);
      free(x->field);
      free(x);
      return IOCD_ENOMEM;
    }
    size_t b = (size_t)(reader_hash(meas, field) & (e->index_size - 1));
    x->next = e->index[b];
    e->index[b] = x;
  }
  for (size_t i = 0; i < x->n; i++) {
    if (x->rules[i] == r) {
      return IOCD_OK;
    }
  }
  if (x->n == x->cap) {
    size_t ncap = x->cap ? x->cap * 2 : 4;
    struct rule **v = realloc(x->rules, ncap * sizeof *v);
    if (!v) {
      return IOCD_ENOMEM;
    }
    x->rules = v;
    x->cap = ncap;
  }
  x->rules[x->n++] = r;
  return IOCD_OK;
}

/* Rebuilds the index of reads and registers every read with the store, for
 * as long back as the rules read it. */
int engine__index_build(struct engine *e) {
  engine__index_free(e);
  e->index_size = 256;
  e->index = calloc(e->index_size, sizeof *e->index);
  if (!e->index) {
    e->index_size = 0;
    return IOCD_ENOMEM;
  }
  int rc = IOCD_OK;
  for (size_t i = 0; i < e->nrules && !rc; i++) {
    struct rule *r = e->rules[i];
    FOR_EACH_EXPR(r, x, {
      size_t nr;
      const struct expr_read *rd = expr_reads(x, &nr);
      for (size_t k = 0; k < nr && !rc; k++) {
        rc = index_add(e, rd[k].measurement, rd[k].field, r);
        if (!rc) {
          rc = series_store_want_aggs(e->store, rd[k].measurement, rd[k].field,
                                      rd[k].range_ns, rd[k].aggs);
        }
        if (!rc && rd[k].working_ns && r->cal) {
          rc = series_store_want(e->store, rd[k].measurement, rd[k].field,
                                 calendar_span_bound(r->cal, rd[k].working_ns));
        }
      }
    });
  }
  e->reads_heartbeat =
      reader_find(e, ENGINE_HEARTBEAT_MEASUREMENT, ENGINE_HEARTBEAT_FIELD) ||
      reader_find(e, ENGINE_HEARTBEAT_MEASUREMENT, NULL);
  return rc;
}

/* ---- arrival ------------------------------------------------------------- */

/* The instance of r for the group of series s (NULL when s lacks one of
 * r's by labels), through what the engine keeps with s's labels. */
static struct inst *instance_of(struct engine *e, struct rule *r,
                                const struct series *s) {
  void **slot = series_user(s);
  struct known *k = *slot;
  if (k && k->gen == e->known_gen) {
    for (uint32_t i = 0; i < k->n; i++) {
      if (k->v[i].r == r) {
        return k->v[i].in;
      }
    }
  }
  const char *vals[MAX_BY];
  if (!series_group_values(s, (const char *const *)r->by, r->nby, vals)) {
    return NULL;
  }
  struct inst *in = engine__instance(e, r, vals);
  if (!in) {
    return NULL;
  }
  if (k && k->gen != e->known_gen) {
    k->gen = e->known_gen;
    k->n = 0;
    k->next = 0;
  }
  if (!k || (k->n == k->cap && k->cap < KNOWN_MAX)) {
    uint32_t cap = k ? k->cap * 2 : KNOWN_MIN;
    struct known *g = realloc(k, known_size(cap));
    if (!g) {
      return in;
    }
    if (!k) {
      g->gen = e->known_gen;
      g->bytes = &e->known_bytes;
      g->n = g->next = 0;
    } else {
      e->known_bytes -= known_size(g->cap);
    }
    g->cap = cap;
    e->known_bytes += known_size(cap);
    k = g;
    *slot = k;
  }
  uint32_t i = k->n < k->cap ? k->n++ : k->next++ % k->cap;
  k->v[i].r = r;
  k->v[i].in = in;
  return in;
}

static void on_change(void *ud, const struct series_change *c) {
  struct engine *e = ud;
  struct reader *x = reader_find(e, c->measurement, c->field);
  if (!x) {
    return;
  }
  for (size_t i = 0; i < x->n; i++) {
    struct rule *r = x->rules[i];
    /* The samples of one point share its tags, so a rule they touch twice
     * is the same instance: found once. (engine_add_sample adds one.) */
    if (r->mark == e->mark) {
      continue;
    }
    r->mark = e->mark;
    struct inst *in = instance_of(e, r, c->series);
    if (!in || in->mark == e->mark) {
      continue;
    }
    if (e->ntouched == e->cap_touched) {
      size_t ncap = e->cap_touched ? e->cap_touched * 2 : 16;
      struct touch *v = realloc(e->touched, ncap * sizeof *v);
      if (!v) {
        continue;
      }
      e->touched = v;
      e->cap_touched = ncap;
    }
    in->mark = e->mark;
    e->touched[e->ntouched++] = (struct touch){.inst = in,
                                               .series = c->series,
                                               .measurement = c->measurement,
                                               .field = c->field,
                                               .ts = c->ts_ns};
  }
}

static void run_touched(struct engine *e, int64_t now) {
  for (size_t i = 0; i < e->ntouched; i++) {
    struct trigger trg = {.by = ALERT_BY_SAMPLE, .touch = &e->touched[i]};
    engine__evaluate(e, e->touched[i].inst, now, &trg);
  }
  e->ntouched = 0;
}

static int heartbeat(struct engine *e, const struct series_label *labels,
                     size_t n, int64_t now) {
  return series_store_add(e->store, ENGINE_HEARTBEAT_MEASUREMENT,
                          ENGINE_HEARTBEAT_FIELD, labels, n, now, 1.0,
                          on_change, e);
}

int engine_add_point(struct engine *e, const struct point_batch *pb,
                     const struct point *p, int64_t now) {
  if (!e || !pb || !p || !p->has_ts) {
    return IOCD_EINVAL;
  }
  e->mark++;
  e->ntouched = 0;
  /* The heartbeat of the point's source, stamped with its arrival. */
  struct series_seen seen = {.measurement = ENGINE_HEARTBEAT_MEASUREMENT,
                             .field = ENGINE_HEARTBEAT_FIELD,
                             .ts_ns = now};
  int rc = series_store_add_point_seen(
      e->store, pb, p, e->reads_heartbeat ? &seen : NULL, on_change, e);
  run_touched(e, now);
  return rc;
}

int engine_add_sample(struct engine *e, const char *measurement,
                      const char *field, const struct series_label *labels,
                      size_t nlabels, int64_t ts_ns, double v, int64_t now) {
  if (!e || !measurement || !field) {
    return IOCD_EINVAL;
  }
  e->mark++;
  e->ntouched = 0;
  int rc = series_store_add(e->store, measurement, field, labels, nlabels,
                            ts_ns, v, on_change, e);
  if ((!rc || rc == IOCD_ELIMIT) && e->reads_heartbeat) {
    int hrc = heartbeat(e, labels, nlabels, now);
    if (hrc && !rc) {
      rc = hrc;
    }
  }
  run_touched(e, now);
  return rc;
}
