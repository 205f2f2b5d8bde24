/*
 * Field types and series cardinality. InfluxDB fixes a field's type by the
 * first value it stores and refuses every later value of another type, so
 * iocd checks the types itself, before the store, and turns a conflict into
 * a reject that names the field instead of a 400 for a whole batch.
 *
 * Both registries keep only 64-bit FNV-1a hashes, in open-addressing tables:
 * a series is its measurement and sorted tag set, a type entry its
 * (measurement, field) pair. What a message would add is staged in two
 * per-message tables and merged by ingest__schema_commit only when the whole
 * message was accepted.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "ingest/ingest_int.h"

/* ---- hash tables ------------------------------------------------------ */

static void htab_init(struct htab *t) {
  memset(t, 0, sizeof *t);
  t->gen = 1;
}

static void htab_cleanup(struct htab *t) {
  free(t->slots);
  htab_init(t);
}

/* Forgets every entry in O(1): slots of an older generation read as
 * empty. */
static void htab_clear(struct htab *t) {
  t->n = 0;
  if (++t->gen == 0) {
    if (t->slots) {
      memset(t->slots, 0, t->cap * sizeof *t->slots);
    }
    t->gen = 1;
  }
}

/* The splitmix64 finalizer spreads the FNV bits over the index bits. */
static size_t slot_of(uint64_t key, size_t cap) {
  key ^= key >> 30;
  key *= UINT64_C(0xbf58476d1ce4e5b9);
  key ^= key >> 27;
  key *= UINT64_C(0x94d049bb133111eb);
  key ^= key >> 31;
  return (size_t)key & (cap - 1);
}

static bool live(const struct htab *t, const struct hslot *s) {
  return s->key != 0 && s->gen == t->gen;
}

static struct hslot *htab_find(const struct htab *t, uint64_t key) {
  if (!t->cap) {
    return NULL;
  }
  for (size_t i = slot_of(key, t->cap);; i = (i + 1) & (t->cap - 1)) {
    struct hslot *s = &t->slots[i];
    if (!live(t, s)) {
      return NULL;
    }
    if (s->key == key) {
      return s;
    }
  }
}

/* The caller made room with htab_reserve and knows key is absent. */
static void htab_put(struct htab *t, uint64_t key, uint32_t val) {
  size_t i = slot_of(key, t->cap);
  while (live(t, &t->slots[i])) {
    i = (i + 1) & (t->cap - 1);
  }
  t->slots[i].key = key;
  t->slots[i].gen = t->gen;
  t->slots[i].val = val;
  t->n++;
}

/* Grows the table so that it holds n entries at a load of at most 1/2. */
static int htab_reserve(struct htab *t, size_t n) {
  if (n <= t->cap / 2) {
    return IOCD_OK;
  }
  size_t cap = t->cap ? t->cap : 64;
  while (cap / 2 < n) {
    if (cap > SIZE_MAX / 2 / sizeof(struct hslot)) {
      return IOCD_ENOMEM;
    }
    cap *= 2;
  }
  struct hslot *slots = calloc(cap, sizeof *slots);
  if (!slots) {
    return IOCD_ENOMEM;
  }
  struct htab old = *t;
  t->slots = slots;
  t->cap = cap;
  t->n = 0;
  t->gen = 1;
  for (size_t i = 0; i < old.cap; i++) {
    if (live(&old, &old.slots[i])) {
      htab_put(t, old.slots[i].key, old.slots[i].val);
    }
  }
  free(old.slots);
  return IOCD_OK;
}

/* Each part is hashed with its length first, so ("ab", "c") and ("a", "bc")
 * differ. */
static uint64_t fnv_part(uint64_t h, const char *p, size_t n) {
  uint64_t len = n;
  h = hash_bytes(h, &len, sizeof len);
  return hash_bytes(h, p, n);
}


static uint64_t nonzero(uint64_t h) {
  return h ? h : 1;
}

static uint64_t type_key(const struct str *meas, const struct str *field) {
  uint64_t h = fnv_part(HASH_START, meas->p, meas->len);
  return nonzero(fnv_part(h, field->p, field->len));
}

static uint64_t series_key(const struct point_batch *pb,
                           const struct point *p) {
  uint64_t h = fnv_part(HASH_START, p->measurement.p, p->measurement.len);
  const struct tag *tags = pb_tags(pb, p);
  for (size_t i = 0; i < p->ntags; i++) {
    h = fnv_part(h, tags[i].key.p, tags[i].key.len);
    h = fnv_part(h, tags[i].value.p, tags[i].value.len);
  }
  return nonzero(h);
}

/* ---- the registry ----------------------------------------------------- */

void ingest__schema_init(struct schema *s) {
  htab_init(&s->series);
  htab_init(&s->types);
  htab_init(&s->new_series);
  htab_init(&s->new_types);
}

void ingest__schema_cleanup(struct schema *s) {
  htab_cleanup(&s->series);
  htab_cleanup(&s->types);
  htab_cleanup(&s->new_series);
  htab_cleanup(&s->new_types);
}

size_t ingest__schema_series(const struct schema *s) {
  return s->series.n;
}

static bool str_eq(const char *c, const char *p, size_t n) {
  return strlen(c) == n && memcmp(c, p, n) == 0;
}

enum field_type ingest__declared_type(const struct config_subscription *sub,
                                      const char *meas, size_t mlen,
                                      const char *field, size_t flen) {
  enum field_type any = FIELD_NONE;
  for (size_t i = 0; i < sub->ntypes; i++) {
    const struct config_field_type *t = &sub->types[i];
    if (!t->field || !str_eq(t->field, field, flen)) {
      continue;
    }
    if (!t->measurement) {
      if (any == FIELD_NONE) {
        any = t->type;
      }
    } else if (str_eq(t->measurement, meas, mlen)) {
      return t->type; /* a declaration for this measurement wins */
    }
  }
  return any;
}

/* Renders a value for a type_conflict message. */
static void value_text(const struct field *f, char *out, size_t n) {
  switch (f->type) {
    case FIELD_INT:
      snprintf(out, n, " %" PRId64, f->v.i);
      break;
    case FIELD_FLOAT:
      /* The shortest precision that reads back to the same double. */
      for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, n, " %.*g", prec, f->v.f);
        if (strtod(out, NULL) == f->v.f) {
          break;
        }
      }
      break;
    case FIELD_BOOL:
      snprintf(out, n, " %s", f->v.b ? "true" : "false");
      break;
    default:
      out[0] = '\0';
      break;
  }
}

/* Makes f fit a field of type want, or rejects the message. */
static int coerce(struct field *f, enum field_type want, const struct str *meas,
                  struct ingest_result *res) {
  if (f->type == want) {
    return IOCD_OK;
  }
  if (want == FIELD_FLOAT && f->type == FIELD_INT) {
    f->v.f = (double)f->v.i;
    f->type = FIELD_FLOAT;
    return IOCD_OK;
  }
  /* [-2^63, 2^63) is exactly representable at both ends as doubles. */
  if (want == FIELD_INT && f->type == FIELD_FLOAT && isfinite(f->v.f) &&
      f->v.f == trunc(f->v.f) && f->v.f >= -9223372036854775808.0 &&
      f->v.f < 9223372036854775808.0) {
    f->v.i = (int64_t)f->v.f;
    f->type = FIELD_INT;
    return IOCD_OK;
  }
  char qf[INGEST_QUOTE_SIZE], qm[INGEST_QUOTE_SIZE], val[40];
  value_text(f, val, sizeof val);
  return ingest__reject(res, INGEST_TYPE_CONFLICT,
                        "field %s of %s is %s, got %s%s",
                        ingest__quote(qf, sizeof qf, f->key.p, f->key.len),
                        ingest__quote(qm, sizeof qm, meas->p, meas->len),
                        field_type_name(want), field_type_name(f->type), val);
}

/* Renders "meas,k=v,..." for a cardinality message. */
static void series_text(const struct point_batch *pb, const struct point *p,
                        char *out, size_t n) {
  struct buf b;
  buf_init(&b, 200);
  int rc = buf_append(&b, p->measurement.p, p->measurement.len);
  const struct tag *tags = pb_tags(pb, p);
  for (size_t i = 0; i < p->ntags && !rc; i++) {
    rc = buf_putc(&b, ',');
    if (!rc) {
      rc = buf_append(&b, tags[i].key.p, tags[i].key.len);
    }
    if (!rc) {
      rc = buf_putc(&b, '=');
    }
    if (!rc) {
      rc = buf_append(&b, tags[i].value.p, tags[i].value.len);
    }
  }
  ingest__quote(out, n, b.data ? b.data : "", b.len);
  buf_cleanup(&b);
}

int ingest__schema_check(struct schema *s,
                         const struct config_subscription *sub,
                         const struct ingest_limits *lim,
                         struct point_batch *pb, struct ingest_result *res) {
  htab_clear(&s->new_series);
  htab_clear(&s->new_types);
  int rc;
  for (size_t pi = 0; pi < pb->npoints; pi++) {
    struct point *p = &pb->points[pi];
    struct field *fields = pb_fields(pb, p);
    for (size_t fi = 0; fi < p->nfields; fi++) {
      struct field *f = &fields[fi];
      uint64_t key = type_key(&p->measurement, &f->key);
      const struct hslot *known = htab_find(&s->types, key);
      if (!known) {
        known = htab_find(&s->new_types, key);
      }
      enum field_type want = ingest__declared_type(
          sub, p->measurement.p, p->measurement.len, f->key.p, f->key.len);
      if (want == FIELD_NONE && known) {
        want = (enum field_type)known->val;
      }
      if (want != FIELD_NONE) {
        rc = coerce(f, want, &p->measurement, res);
        if (rc) {
          return rc;
        }
      }
      if (known) {
        continue;
      }
      if (s->types.n + s->new_types.n >= lim->max_field_types) {
        char qf[INGEST_QUOTE_SIZE], qm[INGEST_QUOTE_SIZE];
        return ingest__reject(
            res, INGEST_CARDINALITY,
            "limit of %zu distinct fields reached; new field %s of %s",
            lim->max_field_types,
            ingest__quote(qf, sizeof qf, f->key.p, f->key.len),
            ingest__quote(qm, sizeof qm, p->measurement.p, p->measurement.len));
      }
      rc = htab_reserve(&s->new_types, s->new_types.n + 1);
      if (rc) {
        return rc;
      }
      htab_put(&s->new_types, key, (uint32_t)f->type);
    }
    uint64_t key = series_key(pb, p);
    if (htab_find(&s->series, key) || htab_find(&s->new_series, key)) {
      continue;
    }
    if (s->series.n + s->new_series.n >= lim->max_series) {
      char q[INGEST_QUOTE_SIZE];
      series_text(pb, p, q, sizeof q);
      return ingest__reject(res, INGEST_CARDINALITY,
                            "limit of %zu series reached; new series %s",
                            lim->max_series, q);
    }
    rc = htab_reserve(&s->new_series, s->new_series.n + 1);
    if (rc) {
      return rc;
    }
    htab_put(&s->new_series, key, 0);
  }
  /* Room for the commit, so that it cannot fail after the sink took the
   * points. */
  rc = htab_reserve(&s->series, s->series.n + s->new_series.n);
  if (!rc) {
    rc = htab_reserve(&s->types, s->types.n + s->new_types.n);
  }
  return rc;
}

void ingest__schema_commit(struct schema *s) {
  for (size_t i = 0; i < s->new_series.cap; i++) {
    const struct hslot *h = &s->new_series.slots[i];
    if (live(&s->new_series, h)) {
      htab_put(&s->series, h->key, h->val);
    }
  }
  for (size_t i = 0; i < s->new_types.cap; i++) {
    const struct hslot *h = &s->new_types.slots[i];
    if (live(&s->new_types, h)) {
      htab_put(&s->types, h->key, h->val);
    }
  }
  htab_clear(&s->new_series);
  htab_clear(&s->new_types);
}
