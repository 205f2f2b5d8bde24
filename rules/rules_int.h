/*
 * What the rules language (expr*.c) and series.c share inside rules/: the
 * layout of a series and its ring of samples (so the evaluator, expr_eval.c,
 * reads samples without a call per sample), label matchers, and the
 * selection of the series a selector sees.
 */
#ifndef IOCD_RULES_RULES_INT_H
#define IOCD_RULES_RULES_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules/series.h"

struct sample {
  int64_t ts; /* ns since the epoch */
  double v;
};

/* Samples in time order, oldest at head; strictly increasing times.
 *
 * Beside the samples a ring may keep running aggregates (aggs, a set of
 * SERIES_AGG_*), slot for slot with s[] and in the same block after it
 * (ring_inc, ring_sum): inc[j], the reset-adjusted
 * increase of the counter from the oldest sample ever held up to the sample
 * in slot j (each step adds cur - prev, or cur after a drop, as increase()
 * does), and sum[j], the sum of the values up to and including it. Their
 * origin is arbitrary (eviction does not change them), so only differences
 * mean something: the increase over samples lo..hi is inc[hi] - inc[lo].
 *
 * Such a difference equals, bit for bit, what adding up the window gives
 * only while every operation is exact: every value an integer of at most
 * 2^51 in magnitude (nbad counts the samples held that are not) and every
 * aggregate at most 2^51 (amax bounds them). series__exact says whether
 * that holds; when not, the evaluator adds up the window as before. */
struct ring {
  struct sample *s;
  size_t head, n, cap;
  size_t nbad;           /* samples held whose value is not a safe integer */
  double amax;           /* >= |inc[j]| and |sum[j]| of every sample held */
  uint32_t since_rebase; /* appends since the aggregates were recomputed,
                            saturating */
  uint8_t aggs;
};

/* The running aggregates of r, NULL when it keeps none of that kind. */
static inline double *ring_inc(const struct ring *r) {
  if (!(r->aggs & SERIES_AGG_INCREASE)) {
    return NULL;
  }
  return (double *)(void *)(r->s + r->cap);
}

static inline double *ring_sum(const struct ring *r) {
  if (!(r->aggs & SERIES_AGG_SUM)) {
    return NULL;
  }
  double *p = (double *)(void *)(r->s + r->cap);
  return r->aggs & SERIES_AGG_INCREASE ? p + r->cap : p;
}

/* The slot of the i-th oldest sample. */
static inline size_t ring_slot_of(const struct ring *r, size_t i) {
  size_t j = r->head + i;
  if (j >= r->cap) {
    j -= r->cap;
  }
  return j;
}

static inline const struct sample *ring_at(const struct ring *r, size_t i) {
  return &r->s[ring_slot_of(r, i)];
}

/* Largest magnitude of a value or aggregate for which sums and differences
 * of the ring's aggregates are exact in a double. */
#define RING_EXACT_MAX 2251799813685248.0 /* 2^51 */

/* Whether the differences of r's aggregates are exactly what adding up
 * the samples in order gives. */
static inline bool series__exact(const struct ring *r) {
  return r->nbad == 0 && r->amax <= RING_EXACT_MAX;
}

/* Index of the first sample with ts > t, n when there is none. */
size_t series__upper(const struct ring *r, int64_t t);

/* One label of a series: NUL-terminated strings in the series' text block,
 * with their lengths. */
struct stag {
  const char *k, *v;
  size_t kn, vn;
};

/* A node of a chained hash table; embedded first in each entry. */
struct hnode {
  struct hnode *next;
  uint64_t hash;
};

struct family;
struct tagset;

/* The series of one family and one tag set; the tags live in the tag set,
 * shared by the series of every family that has them. */
struct series {
  struct family *fam;
  struct tagset *ts;
  struct ring ring;
};

/* A label matcher of a selector: key="value" or key!="value". A series
 * without the label has the value "" (as in Prometheus). */
struct matcher {
  char *key;
  char *value;
  bool neg;
};

/* The family (registration) of (measurement, field), field NULL for the
 * any-field times; NULL when nothing registered it. */
const struct family *series__family(const struct series_store *st,
                                    const char *measurement, const char *field);

/* series__family with the lengths of the names and their hash,
 * series__family_hash(measurement, mn, field, fn), computed beforehand. */
uint64_t series__family_hash(const char *measurement, size_t mn,
                             const char *field, size_t fn);
const struct family *series__family_h(const struct series_store *st,
                                      const char *measurement, size_t mn,
                                      const char *field, size_t fn,
                                      uint64_t hash);

typedef void series__visit_fn(void *ud, const struct series *s);

/* Calls fn, in the order the series were created, for every series of fam
 * (a family of st) that is in group g (NULL: every series) and satisfies
 * the nm matchers m. */
void series__select(const struct series_store *st, const struct family *fam,
                    const struct group *g, const struct matcher *m, size_t nm,
                    series__visit_fn *fn, void *ud);

#endif
