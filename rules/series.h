/*
 * The sample store the rules read: recent samples (time, value) of the series
 * that some rule expression reads, in bounded per-series rings.
 *
 * A series is one (measurement, field, full tag set), as in InfluxDB: the
 * point `igate,district=Lắk,system=igate received=12i` gives the series
 * (igate, received, {district="Lắk", system="igate"}). Only the
 * (measurement, field) pairs registered with series_store_want (or
 * series_store_want_expr) are kept; every other field costs one hash lookup
 * and nothing else. A registration with field NULL keeps, per tag set, the
 * time of the newest point of the measurement with any field: that is what
 * age(igate) and absent(igate) read.
 *
 * Retention. Each (measurement, field) keeps the samples newer than its
 * newest sample minus (the longest range any rule reads + slack), and never
 * fewer than the newest sample. A sample older than that is dropped and
 * counted (dropped_old); an older sample inside it is inserted in time order;
 * a sample with the time of one already stored replaces its value (as in
 * InfluxDB). On top of that, no series holds more than max_samples: past it
 * the oldest sample goes (dropped_cap).
 *
 * Memory per series: about 200 bytes, plus 40 bytes and the text of each
 * label, plus about 130 bytes for each label value no other series of the
 * family has (its index entry: a district's name, say), plus 16 bytes per
 * sample of ring capacity, and 8 more per sample for each running
 * aggregate the family keeps (series_store_want_aggs: increase()/rate() and
 * sum()/avg() read them). Measured: 340 bytes for a series labelled by
 * district and system. The ring grows by doubling up to max_samples, so its
 * capacity is less than twice the samples held: a counter sampled every
 * minute and read over [1d] with increase() holds 1,450 samples (the day
 * and 10 minutes of slack) in a ring of 2,048, 48 KiB. An instant selector
 * (no range) needs the slack only: 10 samples at one per minute.
 *
 * The store is pure: no clock, no I/O. Everything runs on one thread.
 */
#ifndef IOCD_RULES_SERIES_H
#define IOCD_RULES_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/point.h"

struct series_store;
struct series;
struct expr;

/* A group: the values of a rule's `by` labels that identify one instance of
 * the rule, e.g. keys {"district"}, values {"Ea H'Leo"}. n == 0 is the one
 * group of a rule without `by`: it sees every series. Strings are borrowed and
 * NUL-terminated. A series is in the group when it has every key with the
 * given value (an empty value matches a series without that label). */
struct group {
  const char *const *keys;
  const char *const *values;
  size_t n;
  /* NULL, or series_group_hash(keys[i], values[i]) for each i, computed
   * once by whoever keeps the group so that selecting its series does not
   * hash its labels on every evaluation. */
  const uint64_t *hashes;
  /* NULL, or memory that selection keeps for this group: where the
   * group's series of the last few families read are, so that evaluating
   * the same group again finds them without a lookup. Belongs to one
   * store. */
  struct series_group_cache *cache;
};

/* What selection remembers of a group. Its owner zeroes
 * SERIES_GROUP_CACHE_SIZE(n) bytes and sets nways = n, one way per family
 * the group's rule reads (fewer work too, with more lookups); series.c
 * fills the ways. */
struct series_group_cache {
  uint32_t nways;
  uint32_t next; /* the way to replace next */
  struct {
    const void *fam;  /* the family, NULL: unused way */
    const void *post; /* the group's list in it; NULL: it has none */
    uint64_t gen;     /* the store's index generation it was found in */
  } way[];
};
#define SERIES_GROUP_CACHE_SIZE(n)       \
  (sizeof(struct series_group_cache) +  \
   (size_t)(n) * sizeof(((struct series_group_cache *)0)->way[0]))

/* The hash of label key=value that struct group's hashes hold. */
uint64_t series_group_hash(const char *key, const char *value);

/* A label of series_store_add: key and value, NUL-terminated, borrowed. An
 * empty value is the same as no label (InfluxDB drops empty tags). */
struct series_label {
  const char *key;
  const char *value;
};

struct series_store_opts {
  size_t max_samples; /* per series; 0: 10000 */
  size_t max_series;  /* in the whole store; 0: 100000 */
  int64_t slack_ns;   /* added to every retention, for samples that arrive
                         late or stamped ahead of the evaluation time;
                         0: 10 minutes; negative: none */
  /* Frees what a series_user slot holds when its tag set goes; NULL:
   * nothing to free. */
  void (*user_free)(void *user);
};

struct series_store_stats {
  size_t families;         /* registered (measurement, field) pairs */
  size_t series;           /* series held */
  size_t samples;          /* samples held, all series */
  size_t bytes;            /* memory held for series, rings and indexes */
  uint64_t added;          /* samples stored */
  uint64_t replaced;       /* samples that replaced one with the same time */
  uint64_t dropped_old;    /* older than the retention: not stored */
  uint64_t dropped_cap;    /* removed because a series was at max_samples */
  uint64_t series_refused; /* new series refused at max_series */
};

/* Creates an empty store. opts may be NULL (all defaults). Returns NULL when
 * memory runs out. Free with series_store_free. */
struct series_store *series_store_new(const struct series_store_opts *opts);

/* Frees the store and every series; NULL is allowed. */
void series_store_free(struct series_store *st);

/* Registers (measurement, field) so that its samples are kept, for at least
 * range_ns back from the newest (0 for an instant selector). field NULL
 * registers the any-field newest-point times of the measurement (range
 * ignored). Registering again keeps the longer range. Strings are copied.
 * Returns IOCD_OK, IOCD_EINVAL (empty name, negative range) or IOCD_ENOMEM. */
int series_store_want(struct series_store *st, const char *measurement,
                      const char *field, int64_t range_ns);

/* Running aggregates a family can keep per sample, so that a window
 * function over it costs two binary searches instead of a pass over the
 * window: increase() and rate() read SERIES_AGG_INCREASE, sum() and avg()
 * SERIES_AGG_SUM. Each costs 8 bytes per sample of ring capacity. */
enum series_agg {
  SERIES_AGG_INCREASE = 1,
  SERIES_AGG_SUM = 2,
};

/* As series_store_want, and also keeps the aggregates aggs (a set of
 * series_agg) for the family; registering again adds to them. Existing
 * series get them at once, or, when memory runs out, keep answering by
 * adding up their windows. Returns as series_store_want. */
int series_store_want_aggs(struct series_store *st, const char *measurement,
                           const char *field, int64_t range_ns,
                           unsigned aggs);

/* Registers everything expression e reads (see expr_reads). Returns as
 * series_store_want. */
int series_store_want_expr(struct series_store *st, const struct expr *e);

/* One (measurement, field) that received a sample, for the caller to find the
 * rules that read it and the groups to evaluate them for. The strings live
 * as long as the store; the series until series_store_gc removes it. */
struct series_change {
  const char *measurement;
  const char *field; /* NULL: the any-field times (age/absent of a bare
                        measurement) */
  const struct series *series; /* read its labels with series_tag */
  int64_t ts_ns;
};

typedef void series_change_fn(void *ud, const struct series_change *c);

/* A pointer the store's user may keep with the labels of s: one slot shared
 * by the series of every family that have exactly s's labels (the samples
 * of one point, for instance). NULL until set; the store hands it to
 * user_free when the last of those series is collected or freed. */
void **series_user(const struct series *s);

/* Takes the samples of point p of batch pb: every field whose (measurement,
 * field) is registered, integers and floats as double, booleans as 0 and 1;
 * string fields are ignored. Empty tag values are ignored. p->has_ts must be
 * set. For every sample stored (not for those dropped) cb, when not NULL, is
 * called once, so the caller can evaluate only the rules that read it, only
 * for the series' groups; cb may read the store (evaluate) but not add to
 * it. Returns IOCD_OK; IOCD_ELIMIT when some field was
 * refused because max_series was reached or the point has more than 256
 * tags (the others are stored); IOCD_EINVAL without a timestamp;
 * IOCD_ENOMEM. */
int series_store_add_point(struct series_store *st,
                           const struct point_batch *pb, const struct point *p,
                           series_change_fn *cb, void *ud);

/* A heartbeat that series_store_add_point_seen records with the point: a
 * sample of value 1 at ts_ns in (measurement, field) and in the
 * measurement's any-field times, with the point's tags. */
struct series_seen {
  const char *measurement;
  const char *field;
  int64_t ts_ns;
};

/* series_store_add_point, then the heartbeat seen (NULL: none) under the
 * same tags, in one pass over them: the same samples and calls of cb as
 * series_store_add_point followed by series_store_add with the point's
 * tags as labels. */
int series_store_add_point_seen(struct series_store *st,
                                const struct point_batch *pb,
                                const struct point *p,
                                const struct series_seen *seen,
                                series_change_fn *cb, void *ud);

/* Adds one sample of (measurement, field) with the given labels, as
 * series_store_add_point does for one field of a point (the any-field time of
 * the measurement included). For replaying recorded samples and for tests.
 * Returns as series_store_add_point. */
int series_store_add(struct series_store *st, const char *measurement,
                     const char *field, const struct series_label *labels,
                     size_t nlabels, int64_t ts_ns, double v,
                     series_change_fn *cb, void *ud);

/* Removes every series whose newest sample is older than before_ns (a
 * district that stopped publishing long ago, a renamed tag). Returns how
 * many were removed. Evaluation order of the remaining series is kept. */
size_t series_store_gc(struct series_store *st, int64_t before_ns);

/* Fills out with the store's counters and sizes. */
void series_store_get_stats(const struct series_store *st,
                            struct series_store_stats *out);

/* The value of label key of series s, or NULL when it has none. The string
 * lives as long as the series. */
const char *series_tag(const struct series *s, const char *key);

/* Number of labels of s, and the i-th (in key order) as key and value. */
size_t series_ntags(const struct series *s);
void series_tag_at(const struct series *s, size_t i, const char **key,
                   const char **value);

/* Fills values[0..n) with the values of labels keys[0..n) of s, which is how
 * a rule by those labels names the group of a changed series. Returns false
 * (values undefined) when s lacks one of them: s is in no group of that rule.
 * The strings live as long as the series. */
bool series_group_values(const struct series *s, const char *const *keys,
                         size_t n, const char **values);

#endif
