/*
 * The latest value of each series, for GET /api/v1/latest: a table in
 * memory keyed by a point's measurement and tags (its series, as InfluxDB
 * sees it), holding the newest value of each of the series' fields and
 * when it was measured. The service updates it after store_append took a
 * batch, so it shows what is being written.
 *
 * Bounded: at most max_series series and max_bytes bytes of names and
 * values. Past either bound the series updated longest ago is evicted to
 * make room (counted in iocd_latest_evicted_total): a series that stopped
 * publishing goes first, and the ones still publishing stay. A series keeps
 * at most LATEST_FIELDS_MAX fields; a value for one more field name is
 * dropped (iocd_latest_dropped_total{reason="fields"}).
 *
 * Everything runs on the loop thread.
 */
#ifndef IOCD_STORE_LATEST_H
#define IOCD_STORE_LATEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/point.h"
#include "core/stats.h"

/* The bounds the service uses. */
#define LATEST_MAX_SERIES_DEFAULT 100000u
#define LATEST_MAX_BYTES_DEFAULT (64u << 20)
#define LATEST_FIELDS_MAX 256u

struct latest;

/* One field's newest value and when it was measured. Strings are owned by
 * the table. */
struct latest_field {
  const char *key;
  enum field_type type; /* FIELD_FLOAT, FIELD_INT, FIELD_BOOL, FIELD_STRING */
  union {
    double f;
    int64_t i;
    bool b;
    const char *s;
  } v;
  int64_t ts_ns;
};

/* A series as latest_each shows it; borrowed for the callback. */
struct latest_series {
  const char *measurement;
  const char *const *tag_keys; /* sorted by key (bytewise) */
  const char *const *tag_values;
  size_t ntags;
  const struct latest_field *fields; /* in the order they first came */
  size_t nfields;
  int64_t ts_ns;      /* the newest of the fields' times */
  int64_t updated_ns; /* when a point last updated it (arrival time) */
};

/* Creates an empty table with the bounds (0: the defaults above); its
 * metrics (iocd_latest_series, iocd_latest_bytes,
 * iocd_latest_evicted_total, iocd_latest_dropped_total) are registered in
 * stats (borrowed; may be NULL for none). Returns NULL when memory runs
 * out. */
struct latest *latest_new(size_t max_series, size_t max_bytes,
                          struct stats *stats);

/* Frees l; NULL is allowed. */
void latest_free(struct latest *l);

/* Takes every point of pb that has a time (pb borrowed for the call): its
 * series is found or created, and each of its fields replaces the field's
 * value when it is at least as new as the one held (a late point from a
 * district's buffer does not hide a newer value). now is the arrival time.
 * Returns IOCD_OK, or IOCD_ENOMEM when some point could not be kept (the
 * others were). */
int latest_update(struct latest *l, const struct point_batch *pb, int64_t now);

/* A tag a series must have, with this value. */
struct latest_match {
  const char *key;
  const char *value;
};

/* Calls fn for every series whose measurement is measurement (NULL: any)
 * and that has every tag of match[0..nmatch), in order of measurement then
 * tags. Stops at the first non-zero return of fn and returns it; IOCD_OK
 * after all, or IOCD_ENOMEM (nothing was called). */
typedef int latest_each_fn(void *ud, const struct latest_series *s);
int latest_each(const struct latest *l, const char *measurement,
                const struct latest_match *match, size_t nmatch,
                latest_each_fn *fn, void *ud);

/* The table's size and what its bounds did so far. */
struct latest_stats {
  size_t series;
  size_t bytes;
  size_t max_series;
  size_t max_bytes;
  uint64_t evicted;
  uint64_t dropped_fields;
};

void latest_get_stats(const struct latest *l, struct latest_stats *out);

#endif
