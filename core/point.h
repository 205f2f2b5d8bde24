/*
 * The data model every layer shares: a point is one measurement at one time,
 * with tags (indexed strings) and typed fields, as in InfluxDB. Decoders fill a
 * struct point_batch; the store encodes its points as line protocol; the rules
 * read their values.
 *
 * A batch owns every string its points refer to (an arena of chunks that never
 * move), so a point stays valid until pb_reset or pb_cleanup. Tags and fields
 * of all points live in two arrays of the batch; a point refers to its range by
 * index, which is why tags and fields may be added only to the last point.
 */
#ifndef IOCD_CORE_POINT_H
#define IOCD_CORE_POINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum field_type {
  FIELD_NONE = 0, /* not declared: learn from the first value */
  FIELD_FLOAT,
  FIELD_INT,
  FIELD_BOOL,
  FIELD_STRING,
};

/* "float", "integer", "boolean", "string" (or "none"). */
const char *field_type_name(enum field_type t);
/* Parses the names above. Returns FIELD_NONE for anything else. */
enum field_type field_type_parse(const char *s);

struct str {
  const char *p; /* not NUL-terminated in general; arena strings are */
  size_t len;
};

struct tag {
  struct str key;
  struct str value;
};

struct field {
  struct str key;
  enum field_type type;
  union {
    double f;
    int64_t i;
    bool b;
    struct str s;
  } v;
};

struct point {
  struct str measurement;
  size_t tag0, ntags;     /* range in batch->tags */
  size_t field0, nfields; /* range in batch->fields */
  int64_t ts_ns;          /* fixed at ingest; valid when has_ts */
  bool has_ts;
};

struct pb_chunk;

struct point_batch {
  struct point *points;
  size_t npoints, cap_points;
  struct tag *tags;
  size_t ntags, cap_tags;
  struct field *fields;
  size_t nfields, cap_fields;
  struct pb_chunk *chunks; /* arena */
  size_t max_points;       /* 0: unlimited */
};

void pb_init(struct point_batch *pb);
/* Forgets every point; keeps the allocations for reuse. */
void pb_reset(struct point_batch *pb);
void pb_cleanup(struct point_batch *pb);

/* Copies n bytes into the batch's arena (NUL-terminated). Returns the copy,
 * or NULL when memory runs out. */
const char *pb_strdup(struct point_batch *pb, const char *s, size_t n);

/* Starts a new point; the measurement is copied. Returns NULL on ENOMEM or
 * when max_points is reached. */
struct point *pb_point_new(struct point_batch *pb, const char *meas,
                           size_t len);

/* Adds a tag or field to the last point (p must be it). Keys and string
 * values are copied. A tag whose key is already present replaces the value
 * when replace is true and is ignored otherwise. Each returns IOCD_OK or
 * IOCD_ENOMEM. */
int pb_tag(struct point_batch *pb, struct point *p, const char *k, size_t kn,
           const char *v, size_t vn, bool replace);
int pb_field_float(struct point_batch *pb, struct point *p, const char *k,
                   size_t kn, double v);
int pb_field_int(struct point_batch *pb, struct point *p, const char *k,
                 size_t kn, int64_t v);
int pb_field_bool(struct point_batch *pb, struct point *p, const char *k,
                  size_t kn, bool v);
int pb_field_string(struct point_batch *pb, struct point *p, const char *k,
                    size_t kn, const char *v, size_t vn);

/* Drops the last point with its tags and fields (a decoder that rejects a
 * half-built point). */
void pb_point_drop_last(struct point_batch *pb);

/* Sorts the tags of p by key (bytewise), the order InfluxDB prefers. */
void pb_point_sort_tags(struct point_batch *pb, struct point *p);

/* Empty arrays for a batch that never held a tag or a field. */
extern struct tag pb__no_tags[1];
extern struct field pb__no_fields[1];

/* The tags and fields of p. A batch that never held one has no array, and
 * NULL + 0 is undefined in C: then an empty array (p->ntags or p->nfields
 * is 0), never NULL. */
static inline struct tag *pb_tags(const struct point_batch *pb,
                                  const struct point *p) {
  return pb->tags ? pb->tags + p->tag0 : pb__no_tags;
}
static inline struct field *pb_fields(const struct point_batch *pb,
                                      const struct point *p) {
  return pb->fields ? pb->fields + p->field0 : pb__no_fields;
}

/* Looks up a tag value of p by key; NULL when absent. */
const struct str *pb_tag_get(const struct point_batch *pb,
                             const struct point *p, const char *key);

#endif
