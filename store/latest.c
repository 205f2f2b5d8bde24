/*
 * The latest-value table: series in one chained hash table over their key
 * (the measurement, then each tag key and value in key order, every part
 * ended by a NUL), and on one list from the most to the least recently
 * updated, whose tail is what the bounds evict. A point's key is built in
 * a buffer the table reuses, so updating a known series allocates nothing
 * unless a string field changed.
 */
#include "store/latest.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/mem.h"

struct lseries {
  struct lseries *hnext;         /* in its bucket */
  struct lseries *newer, *older; /* the update list */
  uint64_t hash;
  char *key; /* keylen bytes: measurement\0k1\0v1\0... */
  size_t keylen;
  const char **tags; /* 2 * ntags pointers into key: keys, then values */
  size_t ntags;
  struct latest_field *fields;
  size_t nfields, cap_fields;
  int64_t ts_ns;
  int64_t updated_ns;
  size_t bytes; /* counted against max_bytes */
};

struct latest {
  struct lseries **buckets;
  size_t nbuckets; /* a power of two */
  size_t n;
  size_t bytes;
  size_t max_series, max_bytes;
  struct lseries *newest, *oldest;
  uint64_t evicted, dropped_fields;
  struct buf key; /* the key being looked up */
  size_t *order;  /* tag indices of the point, sorted */
  size_t cap_order;
  struct metric *st_series, *st_bytes, *st_evicted, *st_dropped,
      *st_dropped_mem;
};

static struct metric unused; /* the metrics of a table without stats */

struct latest *latest_new(size_t max_series, size_t max_bytes,
                          struct stats *stats) {
  struct latest *l = calloc(1, sizeof *l);
  if (!l) {
    return NULL;
  }
  l->max_series = max_series ? max_series : LATEST_MAX_SERIES_DEFAULT;
  l->max_bytes = max_bytes ? max_bytes : LATEST_MAX_BYTES_DEFAULT;
  l->nbuckets = 64;
  l->buckets = calloc(l->nbuckets, sizeof *l->buckets);
  if (!l->buckets) {
    free(l);
    return NULL;
  }
  buf_init(&l->key, 1u << 20);
  if (stats) {
    l->st_series = stats_gauge(stats, "iocd_latest_series",
                               "Series held by the latest-value table "
                               "(GET /api/v1/latest).",
                               NULL);
    l->st_bytes = stats_gauge(stats, "iocd_latest_bytes",
                              "Bytes of names and values held by the "
                              "latest-value table.",
                              NULL);
    l->st_evicted = stats_counter(
        stats, "iocd_latest_evicted_total",
        "Series evicted from the latest-value table at its bounds, the "
        "least recently updated first.",
        NULL);
    l->st_dropped = stats_counter(stats, "iocd_latest_dropped_total",
                                  "Values the latest-value table did not keep.",
                                  "reason", "fields", NULL);
    l->st_dropped_mem =
        stats_counter(stats, "iocd_latest_dropped_total",
                      "Values the latest-value table did not keep.", "reason",
                      "memory", NULL);
  } else {
    l->st_series = l->st_bytes = l->st_evicted = l->st_dropped =
        l->st_dropped_mem = &unused;
  }
  return l;
}

static void field_free_value(struct latest_field *f) {
  if (f->type == FIELD_STRING) {
    free((char *)f->v.s);
    f->v.s = NULL;
  }
}

static void series_free(struct lseries *s) {
  for (size_t i = 0; i < s->nfields; i++) {
    field_free_value(&s->fields[i]);
    free((char *)s->fields[i].key);
  }
  free(s->fields);
  free(s->tags);
  free(s->key);
  free(s);
}

void latest_free(struct latest *l) {
  if (!l) {
    return;
  }
  for (struct lseries *s = l->newest, *next; s; s = next) {
    next = s->older;
    series_free(s);
  }
  free(l->buckets);
  free(l->order);
  buf_cleanup(&l->key);
  free(l);
}

/* The bytes a series holds: itself, its key and tags, its fields. */
static size_t series_bytes(const struct lseries *s) {
  size_t n = sizeof *s + s->keylen + 2 * s->ntags * sizeof(char *) +
             s->cap_fields * sizeof(struct latest_field);
  for (size_t i = 0; i < s->nfields; i++) {
    n += strlen(s->fields[i].key) + 1;
    if (s->fields[i].type == FIELD_STRING) {
      n += strlen(s->fields[i].v.s) + 1;
    }
  }
  return n;
}

static void gauges(struct latest *l) {
  stat_set(l->st_series, (double)l->n);
  stat_set(l->st_bytes, (double)l->bytes);
}

/* Takes s off the update list. */
static void list_unlink(struct latest *l, struct lseries *s) {
  if (s->newer) {
    s->newer->older = s->older;
  } else {
    l->newest = s->older;
  }
  if (s->older) {
    s->older->newer = s->newer;
  } else {
    l->oldest = s->newer;
  }
  s->newer = s->older = NULL;
}

static void list_push_newest(struct latest *l, struct lseries *s) {
  s->newer = NULL;
  s->older = l->newest;
  if (l->newest) {
    l->newest->newer = s;
  } else {
    l->oldest = s;
  }
  l->newest = s;
}

static void table_remove(struct latest *l, struct lseries *s) {
  struct lseries **pp = &l->buckets[s->hash & (l->nbuckets - 1)];
  while (*pp && *pp != s) {
    pp = &(*pp)->hnext;
  }
  if (*pp) {
    *pp = s->hnext;
  }
}

/* Evicts the least recently updated series other than keep while a bound
 * is exceeded. */
static void enforce_bounds(struct latest *l, const struct lseries *keep) {
  while ((l->n > l->max_series || l->bytes > l->max_bytes) && l->oldest &&
         l->oldest != keep) {
    struct lseries *s = l->oldest;
    list_unlink(l, s);
    table_remove(l, s);
    l->n--;
    l->bytes -= s->bytes;
    l->evicted++;
    stat_inc(l->st_evicted);
    series_free(s);
  }
}

/* Doubles the table when it holds as many series as buckets; on ENOMEM it
 * stays as it is (longer chains, still correct). */
static void table_grow(struct latest *l) {
  if (l->n < l->nbuckets) {
    return;
  }
  size_t n = l->nbuckets * 2;
  struct lseries **b = calloc(n, sizeof *b);
  if (!b) {
    return;
  }
  for (size_t i = 0; i < l->nbuckets; i++) {
    for (struct lseries *s = l->buckets[i], *next; s; s = next) {
      next = s->hnext;
      s->hnext = b[s->hash & (n - 1)];
      b[s->hash & (n - 1)] = s;
    }
  }
  free(l->buckets);
  l->buckets = b;
  l->nbuckets = n;
}

static int str_cmp(const struct str *a, const struct str *b) {
  size_t n = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->p, b->p, n);
  if (c) {
    return c;
  }
  return a->len < b->len ? -1 : a->len > b->len;
}

/* Builds p's key in l->key: the measurement, then its tags by key. A tag
 * key that repeats keeps its first value (the batch's own rule). */
static int build_key(struct latest *l, const struct point_batch *pb,
                     const struct point *p, size_t *ntags) {
  const struct tag *tags = pb_tags(pb, p);
  if (p->ntags > l->cap_order) {
    void *arr = l->order;
    size_t cap = l->cap_order;
    while (cap < p->ntags) {
      if (mem_grow(&arr, &cap, cap, sizeof *l->order)) {
        return IOCD_ENOMEM;
      }
      l->order = arr;
      l->cap_order = cap;
    }
  }
  /* Insertion sort: a point has a handful of tags. */
  size_t n = 0;
  for (size_t i = 0; i < p->ntags; i++) {
    size_t j = n;
    while (j > 0 && str_cmp(&tags[l->order[j - 1]].key, &tags[i].key) > 0) {
      j--;
    }
    if (j > 0 && str_cmp(&tags[l->order[j - 1]].key, &tags[i].key) == 0) {
      continue;
    }
    memmove(&l->order[j + 1], &l->order[j], (n - j) * sizeof *l->order);
    l->order[j] = i;
    n++;
  }
  buf_reset(&l->key);
  int rc = buf_append(&l->key, p->measurement.p, p->measurement.len);
  rc = rc ? rc : buf_putc(&l->key, '\0');
  for (size_t i = 0; !rc && i < n; i++) {
    const struct tag *t = &tags[l->order[i]];
    rc = buf_append(&l->key, t->key.p, t->key.len);
    rc = rc ? rc : buf_putc(&l->key, '\0');
    rc = rc ? rc : buf_append(&l->key, t->value.p, t->value.len);
    rc = rc ? rc : buf_putc(&l->key, '\0');
  }
  *ntags = n;
  return rc;
}

static struct lseries *find(const struct latest *l, uint64_t h, const char *key,
                            size_t len) {
  for (struct lseries *s = l->buckets[h & (l->nbuckets - 1)]; s; s = s->hnext) {
    if (s->hash == h && s->keylen == len && memcmp(s->key, key, len) == 0) {
      return s;
    }
  }
  return NULL;
}

/* A new series for the key in l->key with ntags tags, on the table and at
 * the newest end of the list; NULL on ENOMEM. */
static struct lseries *create(struct latest *l, uint64_t h, size_t ntags) {
  struct lseries *s = calloc(1, sizeof *s);
  if (!s) {
    return NULL;
  }
  s->keylen = l->key.len;
  s->key = malloc(s->keylen);
  s->tags = calloc(ntags ? 2 * ntags : 1, sizeof *s->tags);
  if (!s->key || !s->tags) {
    free(s->key);
    free(s->tags);
    free(s);
    return NULL;
  }
  memcpy(s->key, l->key.data, s->keylen);
  s->ntags = ntags;
  const char *q = s->key + strlen(s->key) + 1;
  for (size_t i = 0; i < ntags; i++) {
    s->tags[i] = q;
    q += strlen(q) + 1;
    s->tags[ntags + i] = q;
    q += strlen(q) + 1;
  }
  s->hash = h;
  table_grow(l);
  struct lseries **slot = &l->buckets[h & (l->nbuckets - 1)];
  s->hnext = *slot;
  *slot = s;
  list_push_newest(l, s);
  l->n++;
  s->bytes = series_bytes(s);
  l->bytes += s->bytes;
  return s;
}

static char *dup_str(const struct str *s) {
  char *d = malloc(s->len + 1);
  if (d) {
    memcpy(d, s->p, s->len);
    d[s->len] = '\0';
  }
  return d;
}

/* Sets f to the value of pf at ts. Returns IOCD_OK or IOCD_ENOMEM (f kept
 * as it was). */
static int set_value(struct latest_field *f, const struct field *pf,
                     int64_t ts) {
  char *s = NULL;
  if (pf->type == FIELD_STRING) {
    s = dup_str(&pf->v.s);
    if (!s) {
      return IOCD_ENOMEM;
    }
  }
  field_free_value(f);
  f->type = pf->type;
  switch (pf->type) {
    case FIELD_FLOAT:
      f->v.f = pf->v.f;
      break;
    case FIELD_INT:
      f->v.i = pf->v.i;
      break;
    case FIELD_BOOL:
      f->v.b = pf->v.b;
      break;
    default:
      f->v.s = s;
      break;
  }
  f->ts_ns = ts;
  return IOCD_OK;
}

/* Puts the fields of p into s. */
static int update_fields(struct latest *l, struct lseries *s,
                         const struct point_batch *pb, const struct point *p) {
  const struct field *fs = pb_fields(pb, p);
  int rc = IOCD_OK;
  for (size_t i = 0; i < p->nfields; i++) {
    const struct field *pf = &fs[i];
    if (pf->type == FIELD_NONE) {
      continue;
    }
    struct latest_field *f = NULL;
    for (size_t k = 0; k < s->nfields; k++) {
      const char *key = s->fields[k].key;
      if (strlen(key) == pf->key.len &&
          memcmp(key, pf->key.p, pf->key.len) == 0) {
        f = &s->fields[k];
        break;
      }
    }
    if (f) {
      if (p->ts_ns >= f->ts_ns && set_value(f, pf, p->ts_ns)) {
        stat_inc(l->st_dropped_mem);
        rc = IOCD_ENOMEM;
      }
    } else if (s->nfields >= LATEST_FIELDS_MAX) {
      l->dropped_fields++;
      stat_inc(l->st_dropped);
      continue;
    } else {
      void *arr = s->fields;
      size_t cap = s->cap_fields;
      char *key = dup_str(&pf->key);
      if (!key || mem_grow(&arr, &cap, s->nfields, sizeof *s->fields)) {
        free(key);
        stat_inc(l->st_dropped_mem);
        rc = IOCD_ENOMEM;
        continue;
      }
      s->fields = arr;
      s->cap_fields = cap;
      f = &s->fields[s->nfields];
      memset(f, 0, sizeof *f);
      f->key = key;
      f->type = FIELD_BOOL; /* no string to free yet */
      if (set_value(f, pf, p->ts_ns)) {
        free(key);
        stat_inc(l->st_dropped_mem);
        rc = IOCD_ENOMEM;
        continue;
      }
      s->nfields++;
    }
    if (p->ts_ns > s->ts_ns) {
      s->ts_ns = p->ts_ns;
    }
  }
  return rc;
}

int latest_update(struct latest *l, const struct point_batch *pb, int64_t now) {
  int rc = IOCD_OK;
  for (size_t i = 0; i < pb->npoints; i++) {
    const struct point *p = &pb->points[i];
    size_t ntags = 0;
    if (!p->has_ts || p->nfields == 0) {
      continue;
    }
    if (build_key(l, pb, p, &ntags)) {
      stat_inc(l->st_dropped_mem);
      rc = IOCD_ENOMEM;
      continue;
    }
    uint64_t h = hash_bytes(HASH_START, l->key.data, l->key.len);
    struct lseries *s = find(l, h, l->key.data, l->key.len);
    if (s) {
      list_unlink(l, s);
      list_push_newest(l, s);
    } else if (!(s = create(l, h, ntags))) {
      stat_inc(l->st_dropped_mem);
      rc = IOCD_ENOMEM;
      continue;
    }
    if (update_fields(l, s, pb, p)) {
      rc = IOCD_ENOMEM;
    }
    s->updated_ns = now;
    l->bytes -= s->bytes;
    s->bytes = series_bytes(s);
    l->bytes += s->bytes;
    enforce_bounds(l, s);
  }
  gauges(l);
  return rc;
}

static int by_key(const void *a, const void *b) {
  const struct lseries *x = *(const struct lseries *const *)a;
  const struct lseries *y = *(const struct lseries *const *)b;
  size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
  int c = memcmp(x->key, y->key, n);
  if (c) {
    return c;
  }
  return x->keylen < y->keylen ? -1 : x->keylen > y->keylen;
}

static bool matches(const struct lseries *s, const char *measurement,
                    const struct latest_match *match, size_t nmatch) {
  if (measurement && strcmp(s->key, measurement) != 0) {
    return false;
  }
  for (size_t m = 0; m < nmatch; m++) {
    bool found = false;
    for (size_t i = 0; i < s->ntags && !found; i++) {
      found = strcmp(s->tags[i], match[m].key) == 0 &&
              strcmp(s->tags[s->ntags + i], match[m].value) == 0;
    }
    if (!found) {
      return false;
    }
  }
  return true;
}

int latest_each(const struct latest *l, const char *measurement,
                const struct latest_match *match, size_t nmatch,
                latest_each_fn *fn, void *ud) {
  struct lseries **v = malloc((l->n ? l->n : 1) * sizeof *v);
  if (!v) {
    return IOCD_ENOMEM;
  }
  size_t n = 0;
  for (struct lseries *s = l->newest; s; s = s->older) {
    if (matches(s, measurement, match, nmatch)) {
      v[n++] = s;
    }
  }
  qsort(v, n, sizeof *v, by_key);
  int rc = IOCD_OK;
  for (size_t i = 0; i < n && !rc; i++) {
    const struct lseries *s = v[i];
    struct latest_series view = {
        .measurement = s->key,
        .tag_keys = s->tags,
        .tag_values = s->tags + s->ntags,
        .ntags = s->ntags,
        .fields = s->fields,
        .nfields = s->nfields,
        .ts_ns = s->ts_ns,
        .updated_ns = s->updated_ns,
    };
    rc = fn(ud, &view);
  }
  free(v);
  return rc;
}

void latest_get_stats(const struct latest *l, struct latest_stats *out) {
  *out = (struct latest_stats){
      .series = l->n,
      .bytes = l->bytes,
      .max_series = l->max_series,
      .max_bytes = l->max_bytes,
      .evicted = l->evicted,
      .dropped_fields = l->dropped_fields,
  };
}
