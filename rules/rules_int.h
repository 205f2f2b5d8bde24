/*
 * What expr.c and series.c share inside rules/: the layout of a series and
 * its ring of samples (so the evaluator reads samples without a call per
 * sample), label matchers, and the selection of the series a selector sees.
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

/* Samples in time order, oldest at head; strictly increasing times. */
struct ring {
  struct sample *s;
  size_t head, n, cap;
};

static inline const struct sample *ring_at(const struct ring *r, size_t i) {
  size_t j = r->head + i;
  if (j >= r->cap) {
    j -= r->cap;
  }
  return &r->s[j];
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

struct series {
  struct hnode hn; /* in the store's table of series; must stay first */
  struct family *fam;
  struct ring ring;
  char *text; /* the strings of tags[] */
  size_t ntags;
  struct stag tags[]; /* sorted by key, bytewise */
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

typedef void series__visit_fn(void *ud, const struct series *s);

/* Calls fn, in the order the series were created, for every series of fam
 * (a family of st) that is in group g (NULL: every series) and satisfies
 * the nm matchers m. */
void series__select(const struct series_store *st, const struct family *fam,
                    const struct group *g, const struct matcher *m, size_t nm,
                    series__visit_fn *fn, void *ud);

#endif
