/*
 * The sample store behind the rules. Three chained hash tables index it:
 * families (the registered (measurement, field) pairs), tag sets (each full
 * set of tags seen, with the series of every family that has it) and
 * postings (a family and one label value, listing the series that carry it,
 * in creation order). A point's fields, its any-field time and its
 * heartbeat share its tags, so storing them costs one tag-set lookup, not
 * one per family. Selecting the series of a group walks the posting of the
 * group's first label instead of the family, so an evaluation costs the
 * series it reads, not the number of groups.
 *
 * Each series keeps its samples in a ring that grows by doubling up to
 * max_samples and is trimmed on every append to the family's retention.
 * When a rule reads the family through increase()/rate() or sum()/avg(),
 * the ring also keeps running aggregates slot for slot (rules_int.h), kept
 * up to date on every insert: an append costs O(1), an insert or a
 * replacement k samples from the newest O(k).
 */
#include "rules/series.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/container.h"
#include "rules/expr.h"
#include "rules/rules_int.h"

#define DEFAULT_MAX_SAMPLES 10000
#define DEFAULT_MAX_SERIES 100000
#define DEFAULT_SLACK_NS (600 * NS_PER_SEC)
#define MAX_TAGS 256
#define RING_MIN 4
#define TABLE_MIN 16


struct family {
  struct hnode hn; /* must stay first */
  char *meas;
  char *field;          /* NULL: the any-field times of meas */
  size_t mn, fn;        /* their lengths */
  int64_t retention_ns; /* longest range read; the slack is added at use */
  unsigned aggs;        /* running aggregates its rings keep */
  struct series **all;  /* every series, in creation order */
  size_t n, cap;
};

struct posting {
  struct hnode hn; /* must stay first */
  const struct family *fam;
  struct series **v; /* in creation order */
  size_t n, cap;
  size_t kn, vn;
  char *key, *value; /* point into text */
  char text[];
};

struct table {
  struct hnode **b;
  size_t nb; /* 0 or a power of two */
  size_t n;
};

/* A full tag set and the series that have it, one per family. */
struct tagset {
  struct hnode hn; /* in the store's table of tag sets; must stay first */
  char *text;      /* the strings of tags[] */
  void *user;      /* series_user */
  struct series **ser;
  size_t nser, capser;
  size_t ntags;
  struct stag tags[]; /* sorted by key, bytewise */
};

struct series_store {
  size_t max_samples, max_series;
  int64_t slack_ns;
  void (*user_free)(void *user);
  struct table fams, tsets, posts;
  size_t nseries;
  struct stag *scratch; /* the tags of the point being added, sorted */
  size_t scratch_cap;
  /* Moves on whenever a posting is created or freed, which is what
   * invalidates a struct series_group_cache; starts at 1, so that a zeroed
   * cache holds nothing valid. */
  uint64_t post_gen;
  struct series_store_stats st;
};

/* ---- hashing and tables -------------------------------------------------- */

/* splitmix64's finalizer: spreads a combination of two hashes over all bits,
 * since the bucket index uses the low ones. */
static uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= UINT64_C(0xbf58476d1ce4e5b9);
  x ^= x >> 27;
  x *= UINT64_C(0x94d049bb133111eb);
  x ^= x >> 31;
  return x;
}

/* Makes room for one more entry at a load factor of at most 1. Failing to
 * grow a table that already has buckets is not an error: chains get longer. */
static int table_reserve(struct series_store *st, struct table *t) {
  if (t->n < t->nb) {
    return IOCD_OK;
  }
  size_t nb = t->nb ? t->nb * 2 : TABLE_MIN;
  struct hnode **b = calloc(nb, sizeof *b);
  if (!b) {
    return t->nb ? IOCD_OK : IOCD_ENOMEM;
  }
  for (size_t i = 0; i < t->nb; i++) {
    struct hnode *h = t->b[i];
    while (h) {
      struct hnode *next = h->next;
      size_t j = (size_t)(h->hash & (nb - 1));
      h->next = b[j];
      b[j] = h;
      h = next;
    }
  }
  free(t->b);
  st->st.bytes += (nb - t->nb) * sizeof *b;
  t->b = b;
  t->nb = nb;
  return IOCD_OK;
}

/* The table must have buckets (table_reserve succeeded). */
static void table_insert(struct table *t, struct hnode *h) {
  size_t j = (size_t)(h->hash & (t->nb - 1));
  h->next = t->b[j];
  t->b[j] = h;
  t->n++;
}

static void table_remove(struct table *t, struct hnode *h) {
  struct hnode **pp = &t->b[h->hash & (t->nb - 1)];
  while (*pp && *pp != h) {
    pp = &(*pp)->next;
  }
  if (*pp) {
    *pp = h->next;
    t->n--;
  }
}

static struct hnode *table_first(const struct table *t, uint64_t hash) {
  return t->nb ? t->b[hash & (t->nb - 1)] : NULL;
}

static bool str_eq(const char *a, size_t an, const char *b, size_t bn) {
  return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* Bytewise order of two strings given with their lengths. */
static int str_cmp(const char *a, size_t an, const char *b, size_t bn) {
  size_t n = an < bn ? an : bn;
  int c = n ? memcmp(a, b, n) : 0;
  if (c) {
    return c;
  }
  return an < bn ? -1 : an > bn;
}

/* ---- families ------------------------------------------------------------ */

static uint64_t family_hash(const char *m, size_t mn, const char *f,
                            size_t fn) {
  uint64_t h = hash_bytes(HASH_START, m, mn);
  if (!f) {
    return hash_byte(h, 0xfe);
  }
  return hash_bytes(hash_byte(h, 0xff), f, fn);
}

uint64_t series__family_hash(const char *m, size_t mn, const char *f,
                             size_t fn) {
  return family_hash(m, mn, f, fn);
}

static struct family *family_find_h(const struct series_store *st,
                                    const char *m, size_t mn, const char *f,
                                    size_t fn, uint64_t hash) {
  for (struct hnode *h = table_first(&st->fams, hash); h; h = h->next) {
    struct family *fam = container_of(h, struct family, hn);
    if (h->hash != hash || !str_eq(fam->meas, fam->mn, m, mn)) {
      continue;
    }
    if (!f ? !fam->field
           : fam->field && str_eq(fam->field, fam->fn, f, fn)) {
      return fam;
    }
  }
  return NULL;
}

static struct family *family_find(const struct series_store *st, const char *m,
                                  size_t mn, const char *f, size_t fn) {
  if (st->fams.n == 0) {
    return NULL;
  }
  return family_find_h(st, m, mn, f, fn, family_hash(m, mn, f, fn));
}

const struct family *series__family_h(const struct series_store *st,
                                      const char *m, size_t mn,
                                      const char *f, size_t fn,
                                      uint64_t hash) {
  if (!st || !m) {
    return NULL;
  }
  return family_find_h(st, m, mn, f, fn, hash);
}

const struct family *series__family(const struct series_store *st,
                                    const char *measurement,
                                    const char *field) {
  if (!st || !measurement) {
    return NULL;
  }
  return family_find(st, measurement, strlen(measurement), field,
                     field ? strlen(field) : 0);
}

static void family_free(struct family *fam) {
  free(fam->meas);
  free(fam->field);
  free(fam->all);
  free(fam);
}

static void ring_set_aggs(struct series_store *st, struct ring *r,
                          unsigned aggs);

int series_store_want(struct series_store *st, const char *measurement,
                      const char *field, int64_t range_ns) {
  return series_store_want_aggs(st, measurement, field, range_ns, 0);
}

int series_store_want_aggs(struct series_store *st, const char *measurement,
                           const char *field, int64_t range_ns,
                           unsigned aggs) {
  aggs &= SERIES_AGG_INCREASE | SERIES_AGG_SUM;
  if (!st || !measurement || !*measurement || (field && !*field) ||
      range_ns < 0) {
    return IOCD_EINVAL;
  }
  if (!field) {
    range_ns = 0;
  }
  size_t mn = strlen(measurement);
  size_t fn = field ? strlen(field) : 0;
  struct family *fam = family_find(st, measurement, mn, field, fn);
  if (fam) {
    if (range_ns > fam->retention_ns) {
      fam->retention_ns = range_ns;
    }
    if (aggs & ~fam->aggs) {
      fam->aggs |= aggs;
      for (size_t i = 0; i < fam->n; i++) {
        ring_set_aggs(st, &fam->all[i]->ring, fam->aggs);
      }
    }
    return IOCD_OK;
  }
  int rc = table_reserve(st, &st->fams);
  if (rc) {
    return rc;
  }
  fam = calloc(1, sizeof *fam);
  if (!fam) {
    return IOCD_ENOMEM;
  }
  fam->meas = strdup(measurement);
  fam->field = field ? strdup(field) : NULL;
  if (!fam->meas || (field && !fam->field)) {
    family_free(fam);
    return IOCD_ENOMEM;
  }
  fam->mn = mn;
  fam->fn = fn;
  fam->retention_ns = range_ns;
  fam->aggs = field ? aggs : 0;
  fam->hn.hash = family_hash(measurement, mn, field, fn);
  table_insert(&st->fams, &fam->hn);
  st->st.bytes += sizeof *fam + mn + fn + 2;
  return IOCD_OK;
}

int series_store_want_expr(struct series_store *st, const struct expr *e) {
  if (!st || !e) {
    return IOCD_EINVAL;
  }
  size_t n;
  const struct expr_read *r = expr_reads(e, &n);
  for (size_t i = 0; i < n; i++) {
    int rc = series_store_want_aggs(st, r[i].measurement, r[i].field,
                                    r[i].range_ns, r[i].aggs);
    if (rc) {
      return rc;
    }
  }
  return IOCD_OK;
}

/* ---- postings ------------------------------------------------------------ */

/* A posting's hash combines its family's with the label's, so that the
 * label's part can be computed once per group (series_group_hash). */
static uint64_t label_hash(const char *k, size_t kn, const char *v,
                           size_t vn) {
  return hash_bytes(hash_byte(hash_bytes(HASH_START, k, kn), 0xff), v, vn);
}

uint64_t series_group_hash(const char *key, const char *value) {
  return label_hash(key, strlen(key), value, strlen(value));
}

static uint64_t posting_hash(const struct family *fam, uint64_t lh) {
  return mix(fam->hn.hash ^ lh);
}

static struct posting *posting_find(const struct series_store *st,
                                    const struct family *fam, const char *k,
                                    size_t kn, const char *v, size_t vn) {
  uint64_t hash = posting_hash(fam, label_hash(k, kn, v, vn));
  for (struct hnode *h = table_first(&st->posts, hash); h; h = h->next) {
    struct posting *p = container_of(h, struct posting, hn);
    if (h->hash == hash && p->fam == fam && str_eq(p->key, p->kn, k, kn) &&
        str_eq(p->value, p->vn, v, vn)) {
      return p;
    }
  }
  return NULL;
}

/* posting_find for a NUL-terminated label whose label_hash is lh. */
static struct posting *posting_find_h(const struct series_store *st,
                                      const struct family *fam, const char *k,
                                      const char *v, uint64_t lh) {
  uint64_t hash = posting_hash(fam, lh);
  for (struct hnode *h = table_first(&st->posts, hash); h; h = h->next) {
    struct posting *p = container_of(h, struct posting, hn);
    if (h->hash == hash && p->fam == fam && strcmp(p->key, k) == 0 &&
        strcmp(p->value, v) == 0) {
      return p;
    }
  }
  return NULL;
}

static void posting_free(struct series_store *st, struct posting *p) {
  st->post_gen++;
  st->st.bytes -= sizeof *p + p->kn + p->vn + 2 + p->cap * sizeof *p->v;
  free(p->v);
  free(p);
}

/* Makes room for one more in a list of n series of capacity *cap, doubling
 * it (from first when empty); counted in the store's bytes. */
static int list_reserve(struct series_store *st, struct series ***v, size_t n,
                        size_t *cap, size_t first) {
  if (n < *cap) {
    return IOCD_OK;
  }
  size_t ncap = *cap ? *cap * 2 : first;
  struct series **grown = realloc(*v, ncap * sizeof *grown);
  if (!grown) {
    return IOCD_ENOMEM;
  }
  st->st.bytes += (ncap - *cap) * sizeof *grown;
  *v = grown;
  *cap = ncap;
  return IOCD_OK;
}

/* Finds or creates the posting of (fam, tag) with room for one more series.
 * A posting created here stays (empty) if a later step fails. */
static int posting_reserve(struct series_store *st, const struct family *fam,
                           const struct stag *t) {
  struct posting *p = posting_find(st, fam, t->k, t->kn, t->v, t->vn);
  if (!p) {
    int rc = table_reserve(st, &st->posts);
    if (rc) {
      return rc;
    }
    p = calloc(1, sizeof *p + t->kn + t->vn + 2);
    if (!p) {
      return IOCD_ENOMEM;
    }
    p->fam = fam;
    p->key = p->text;
    p->kn = t->kn;
    memcpy(p->key, t->k, t->kn);
    p->key[t->kn] = '\0';
    p->value = p->text + t->kn + 1;
    p->vn = t->vn;
    memcpy(p->value, t->v, t->vn);
    p->value[t->vn] = '\0';
    p->hn.hash = posting_hash(fam, label_hash(t->k, t->kn, t->v, t->vn));
    table_insert(&st->posts, &p->hn);
    st->post_gen++;
    st->st.bytes += sizeof *p + t->kn + t->vn + 2;
  }
  return list_reserve(st, &p->v, p->n, &p->cap, 4);
}

/* Removes s from a list of series, keeping the order of the rest. */
static void list_remove(struct series **v, size_t *n, const struct series *s) {
  for (size_t i = 0; i < *n; i++) {
    if (v[i] == s) {
      memmove(v + i, v + i + 1, (*n - i - 1) * sizeof *v);
      (*n)--;
      return;
    }
  }
}

/* ---- series -------------------------------------------------------------- */

static uint64_t tags_hash(const struct stag *t, size_t n) {
  uint64_t h = HASH_START;
  for (size_t i = 0; i < n; i++) {
    h = hash_byte(hash_bytes(h, t[i].k, t[i].kn), 0xff);
    h = hash_byte(hash_bytes(h, t[i].v, t[i].vn), 0xfe);
  }
  return h;
}

static bool tags_eq(const struct tagset *ts, const struct stag *t, size_t n) {
  if (ts->ntags != n) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    if (!str_eq(ts->tags[i].k, ts->tags[i].kn, t[i].k, t[i].kn) ||
        !str_eq(ts->tags[i].v, ts->tags[i].vn, t[i].v, t[i].vn)) {
      return false;
    }
  }
  return true;
}

static size_t tagset_size(size_t ntags) {
  return sizeof(struct tagset) + ntags * sizeof(struct stag);
}

static size_t text_size(const struct stag *t, size_t n) {
  size_t len = 0;
  for (size_t i = 0; i < n; i++) {
    len += t[i].kn + t[i].vn + 2;
  }
  return len;
}

static size_t slot_size(unsigned aggs) {
  size_t n = sizeof(struct sample);
  if (aggs & SERIES_AGG_INCREASE) {
    n += sizeof(double);
  }
  if (aggs & SERIES_AGG_SUM) {
    n += sizeof(double);
  }
  return n;
}

static void tagset_free(struct series_store *st, struct tagset *ts) {
  if (ts->user && st->user_free) {
    st->user_free(ts->user);
  }
  st->st.bytes -= tagset_size(ts->ntags) + text_size(ts->tags, ts->ntags) +
                  ts->capser * sizeof *ts->ser;
  free(ts->ser);
  free(ts->text);
  free(ts);
}

static void series_free(struct series_store *st, struct series *s) {
  st->st.bytes -= sizeof *s + s->ring.cap * slot_size(s->ring.aggs);
  st->st.samples -= s->ring.n;
  free(s->ring.s);
  free(s);
}

/* Finds the tag set of tags (sorted, taghash = tags_hash), creating it
 * with room for one series when new. Returns IOCD_OK or IOCD_ENOMEM. */
static int tagset_get(struct series_store *st, const struct stag *tags,
                      size_t ntags, uint64_t taghash, struct tagset **out) {
  for (struct hnode *h = table_first(&st->tsets, taghash); h; h = h->next) {
    struct tagset *ts = container_of(h, struct tagset, hn);
    if (h->hash == taghash && tags_eq(ts, tags, ntags)) {
      *out = ts;
      return IOCD_OK;
    }
  }
  int rc = table_reserve(st, &st->tsets);
  if (rc) {
    return rc;
  }
  struct tagset *ts = calloc(1, tagset_size(ntags));
  size_t tlen = text_size(tags, ntags);
  char *text = malloc(tlen ? tlen : 1);
  struct series **ser = malloc(sizeof *ser);
  if (!ts || !text || !ser) {
    free(ts);
    free(text);
    free(ser);
    return IOCD_ENOMEM;
  }
  ts->text = text;
  ts->ser = ser;
  ts->capser = 1;
  ts->ntags = ntags;
  char *w = text;
  for (size_t i = 0; i < ntags; i++) {
    ts->tags[i].k = w;
    ts->tags[i].kn = tags[i].kn;
    memcpy(w, tags[i].k, tags[i].kn);
    w[tags[i].kn] = '\0';
    w += tags[i].kn + 1;
    ts->tags[i].v = w;
    ts->tags[i].vn = tags[i].vn;
    memcpy(w, tags[i].v, tags[i].vn);
    w[tags[i].vn] = '\0';
    w += tags[i].vn + 1;
  }
  ts->hn.hash = taghash;
  table_insert(&st->tsets, &ts->hn);
  st->st.bytes += tagset_size(ntags) + tlen + sizeof *ser;
  *out = ts;
  return IOCD_OK;
}

/* Drops a tag set that no series has any more. */
static void tagset_release(struct series_store *st, struct tagset *ts) {
  if (ts->nser == 0) {
    table_remove(&st->tsets, &ts->hn);
    tagset_free(st, ts);
  }
}

/* Finds the series of (fam, ts), creating it (and its postings) when new.
 * Returns IOCD_OK, IOCD_ELIMIT at max_series, or IOCD_ENOMEM. */
static int series_get(struct series_store *st, struct family *fam,
                      struct tagset *ts, struct series **out) {
  for (size_t i = 0; i < ts->nser; i++) {
    if (ts->ser[i]->fam == fam) {
      *out = ts->ser[i];
      return IOCD_OK;
    }
  }
  if (st->nseries >= st->max_series) {
    st->st.series_refused++;
    return IOCD_ELIMIT;
  }
  /* Every step that can fail comes before the series is linked anywhere. */
  int rc = IOCD_OK;
  for (size_t i = 0; !rc && i < ts->ntags; i++) {
    rc = posting_reserve(st, fam, &ts->tags[i]);
  }
  if (!rc) {
    rc = list_reserve(st, &fam->all, fam->n, &fam->cap, 16);
  }
  if (!rc) {
    rc = list_reserve(st, &ts->ser, ts->nser, &ts->capser, 1);
  }
  if (rc) {
    return rc;
  }
  struct series *s = calloc(1, sizeof *s);
  if (!s) {
    return IOCD_ENOMEM;
  }
  s->fam = fam;
  s->ts = ts;
  for (size_t i = 0; i < ts->ntags; i++) {
    const struct stag *t = &ts->tags[i];
    struct posting *p = posting_find(st, fam, t->k, t->kn, t->v, t->vn);
    p->v[p->n++] = s;
  }
  fam->all[fam->n++] = s;
  ts->ser[ts->nser++] = s;
  st->nseries++;
  st->st.bytes += sizeof *s;
  *out = s;
  return IOCD_OK;
}

const char *series_tag(const struct series *s, const char *key) {
  const struct tagset *ts = s->ts;
  size_t kn = strlen(key);
  for (size_t i = 0; i < ts->ntags; i++) {
    if (str_eq(ts->tags[i].k, ts->tags[i].kn, key, kn)) {
      return ts->tags[i].v;
    }
  }
  return NULL;
}

void **series_user(const struct series *s) {
  return &s->ts->user;
}

size_t series_ntags(const struct series *s) {
  return s->ts->ntags;
}

void series_tag_at(const struct series *s, size_t i, const char **key,
                   const char **value) {
  *key = s->ts->tags[i].k;
  *value = s->ts->tags[i].v;
}

bool series_group_values(const struct series *s, const char *const *keys,
                         size_t n, const char **values) {
  for (size_t i = 0; i < n; i++) {
    values[i] = series_tag(s, keys[i]);
    if (!values[i]) {
      return false;
    }
  }
  return true;
}

/* ---- rings --------------------------------------------------------------- */

static struct sample *ring_slot(struct ring *r, size_t i) {
  return &r->s[ring_slot_of(r, i)];
}

size_t series__upper(const struct ring *r, int64_t t) {
  size_t lo = 0, hi = r->n;
  /* The ends first: a window's end is usually at or after the newest
   * sample, and its start before the oldest one held. */
  if (hi == 0 || ring_at(r, hi - 1)->ts <= t) {
    return hi;
  }
  if (ring_at(r, 0)->ts > t) {
    return 0;
  }
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ring_at(r, mid)->ts <= t) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

/* Whether v may spoil the exactness of the aggregates: not an integer of
 * at most RING_EXACT_MAX in magnitude (NaN and infinities included). */
static bool unsafe_value(double v) {
  return !(fabs(v) <= RING_EXACT_MAX) || v != (double)(int64_t)v;
}

/* The larger of bound a and |x|; a NaN stays, so that a ring whose
 * aggregates went NaN is not taken for exact until they are recomputed. */
static double bound_with(double a, double x) {
  x = fabs(x);
  if (isnan(a)) {
    return a;
  }
  return isnan(x) || x > a ? x : a;
}

/* Recomputes the aggregates of the samples from from (an index) to the
 * newest, from those before it: after an insert or a replacement at from,
 * or (from 0) after a resize. */
static void ring_recompute(struct ring *r, size_t from) {
  if (!r->aggs) {
    return;
  }
  if (from == 0) {
    r->amax = 0;
    r->since_rebase = 0;
  }
  double amax = r->amax;
  double *rinc = ring_inc(r), *rsum = ring_sum(r);
  for (size_t i = from; i < r->n; i++) {
    size_t j = ring_slot_of(r, i);
    double v = r->s[j].v;
    double inc = 0, sum = v;
    if (i > 0) {
      size_t pj = ring_slot_of(r, i - 1);
      double prev = r->s[pj].v;
      if (rinc) {
        /* A drop is a reset to zero, as in counter_increase (expr_eval.c). */
        inc = rinc[pj] + (v >= prev ? v - prev : v);
      }
      if (rsum) {
        sum = rsum[pj] + v;
      }
    }
    if (rinc) {
      rinc[j] = inc;
      amax = bound_with(amax, inc);
    }
    if (rsum) {
      rsum[j] = sum;
      amax = bound_with(amax, sum);
    }
  }
  r->amax = amax;
}

/* Moves the ring into a block of cap slots keeping aggregates aggs, oldest
 * sample first. cap >= r->n. */
static int ring_realloc(struct series_store *st, struct ring *r, size_t cap,
                        unsigned aggs) {
  struct ring nr = {.cap = cap, .aggs = (uint8_t)aggs};
  nr.s = malloc(cap * slot_size(aggs));
  if (!nr.s) {
    return IOCD_ENOMEM;
  }
  bool same = (aggs & ~r->aggs) == 0;
  double *inc = ring_inc(&nr), *sum = ring_sum(&nr);
  double *oinc = ring_inc(r), *osum = ring_sum(r);
  for (size_t i = 0; i < r->n; i++) {
    size_t j = ring_slot_of(r, i);
    nr.s[i] = r->s[j];
    if (same && inc) {
      inc[i] = oinc[j];
    }
    if (same && sum) {
      sum[i] = osum[j];
    }
  }
  free(r->s);
  st->st.bytes += cap * slot_size(aggs);
  st->st.bytes -= r->cap * slot_size(r->aggs);
  r->s = nr.s;
  r->head = 0;
  r->cap = cap;
  r->aggs = nr.aggs;
  if (!same) {
    ring_recompute(r, 0);
  }
  return IOCD_OK;
}

/* Gives an existing ring the aggregates aggs. Without memory for them the
 * ring keeps what it had: the evaluator then adds up its windows. */
static void ring_set_aggs(struct series_store *st, struct ring *r,
                          unsigned aggs) {
  if ((aggs & ~r->aggs) == 0 || r->cap == 0) {
    return;
  }
  (void)ring_realloc(st, r, r->cap, aggs | r->aggs);
}

static void ring_pop_front(struct series_store *st, struct ring *r) {
  if (unsafe_value(r->s[r->head].v)) {
    r->nbad--;
  }
  r->head = r->head + 1 == r->cap ? 0 : r->head + 1;
  r->n--;
  st->st.samples--;
}

/* Makes room for one more sample (r->n < max_samples is the caller's). */
static int ring_reserve(struct series_store *st, struct ring *r,
                        unsigned aggs) {
  if (r->n < r->cap) {
    return IOCD_OK;
  }
  size_t cap = r->cap ? r->cap * 2 : RING_MIN;
  if (cap > st->max_samples) {
    cap = st->max_samples;
  }
  return ring_realloc(st, r, cap, aggs | r->aggs);
}

/* a - b without overflow, for "newest minus retention". */
static int64_t sub_sat(int64_t a, int64_t b) {
  if (b > 0 && a < INT64_MIN + b) {
    return INT64_MIN;
  }
  return a - b;
}

static int64_t add_sat(int64_t a, int64_t b) {
  if (b > 0 && a > INT64_MAX - b) {
    return INT64_MAX;
  }
  return a + b;
}

/* Puts one sample in the ring of s. Returns 1 when stored (added or
 * replaced), 0 when dropped, IOCD_ENOMEM. */
static int ring_put(struct series_store *st, struct series *s, int64_t ts,
                    double v) {
  struct ring *r = &s->ring;
  int64_t keep = add_sat(s->fam->retention_ns, st->slack_ns);
  size_t at = r->n;
  if (r->n > 0) {
    int64_t newest = ring_at(r, r->n - 1)->ts;
    if (ts <= newest) {
      at = series__upper(r, ts);
      if (at > 0 && ring_at(r, at - 1)->ts == ts) {
        struct sample *x = ring_slot(r, at - 1);
        r->nbad -= unsafe_value(x->v);
        r->nbad += unsafe_value(v);
        x->v = v;
        ring_recompute(r, at - 1);
        st->st.replaced++;
        return 1;
      }
      if (ts <= sub_sat(newest, keep)) {
        st->st.dropped_old++;
        return 0;
      }
    }
  }
  if (r->n == st->max_samples) {
    if (at == 0) {
      st->st.dropped_cap++;
      return 0;
    }
    ring_pop_front(st, r);
    st->st.dropped_cap++;
    at--;
  }
  int rc = ring_reserve(st, r, s->fam->aggs);
  if (rc) {
    return rc;
  }
  for (size_t i = r->n; i > at; i--) {
    *ring_slot(r, i) = *ring_at(r, i - 1);
  }
  *ring_slot(r, at) = (struct sample){.ts = ts, .v = v};
  r->n++;
  r->nbad += unsafe_value(v);
  st->st.samples++;
  st->st.added++;
  /* The aggregates only grow away from their origin; once they pass the
   * exact range, start them again from the oldest sample, at most once per
   * ring's worth of appends so that the cost stays O(1) per sample. */
  if (r->since_rebase < UINT32_MAX) {
    r->since_rebase++;
  }
  if (r->aggs && !(r->amax <= RING_EXACT_MAX / 2) &&
      r->since_rebase >= r->n) {
    ring_recompute(r, 0);
  } else {
    ring_recompute(r, at);
  }
  if (at == r->n - 1) {
    int64_t oldest_kept = sub_sat(ts, keep);
    while (r->n > 1 && ring_at(r, 0)->ts <= oldest_kept) {
      ring_pop_front(st, r);
    }
  }
  return 1;
}

/* ---- adding samples ------------------------------------------------------ */

/* Stores one sample of fam for tag set tags. */
static int add_one(struct series_store *st, struct family *fam,
                   struct tagset *tags, int64_t ts, double v,
                   series_change_fn *cb, void *ud) {
  struct series *s;
  int rc = series_get(st, fam, tags, &s);
  if (rc) {
    return rc;
  }
  rc = ring_put(st, s, ts, v);
  if (rc < 0) {
    return rc;
  }
  if (rc == 1 && cb) {
    struct series_change c = {
        .measurement = fam->meas,
        .field = fam->field,
        .series = s,
        .ts_ns = ts,
    };
    cb(ud, &c);
  }
  return IOCD_OK;
}

static int scratch_reserve(struct series_store *st, size_t n) {
  if (n > MAX_TAGS) {
    return IOCD_ELIMIT;
  }
  if (n <= st->scratch_cap) {
    return IOCD_OK;
  }
  struct stag *t = malloc(n * sizeof *t);
  if (!t) {
    return IOCD_ENOMEM;
  }
  free(st->scratch);
  st->scratch = t;
  st->scratch_cap = n;
  return IOCD_OK;
}

/* Sorts the n tags of st->scratch by key (stably: of two equal keys the one
 * given last wins and the other goes). Returns the count left. */
static size_t scratch_sort(struct series_store *st, size_t n) {
  struct stag *t = st->scratch;
  for (size_t i = 1; i < n; i++) {
    struct stag x = t[i];
    size_t j = i;
    while (j > 0 && str_cmp(t[j - 1].k, t[j - 1].kn, x.k, x.kn) > 0) {
      t[j] = t[j - 1];
      j--;
    }
    t[j] = x;
  }
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    if (i + 1 < n && str_eq(t[i].k, t[i].kn, t[i + 1].k, t[i + 1].kn)) {
      continue;
    }
    t[w++] = t[i];
  }
  return w;
}

int series_store_add_point_seen(struct series_store *st,
                                const struct point_batch *pb,
                                const struct point *p,
                                const struct series_seen *seen,
                                series_change_fn *cb, void *ud) {
  if (!st || !pb || !p || !p->has_ts ||
      (seen && (!seen->measurement || !seen->field))) {
    return IOCD_EINVAL;
  }
  const char *m = p->measurement.p;
  size_t mn = p->measurement.len;
  const struct field *f = pb_fields(pb, p);
  struct family *any = family_find(st, m, mn, NULL, 0);
  /* After the fields and the any-field time: the heartbeat's family and
   * its measurement's any-field times. */
  struct family *extra[2] = {NULL, NULL};
  if (seen) {
    size_t sn = strlen(seen->measurement);
    extra[0] = family_find(st, seen->measurement, sn, seen->field,
                           strlen(seen->field));
    extra[1] = family_find(st, seen->measurement, sn, NULL, 0);
  }
  bool refused = false;
  struct tagset *tags = NULL;
  int rc = IOCD_OK;
  for (size_t i = 0; i < p->nfields + 3; i++) {
    struct family *fam;
    double v;
    int64_t ts = p->ts_ns;
    if (i > p->nfields) {
      fam = extra[i - p->nfields - 1];
      v = 1.0;
      ts = seen ? seen->ts_ns : 0;
      if (!fam) {
        continue;
      }
    } else if (i < p->nfields) {
      if (f[i].type == FIELD_STRING || f[i].type == FIELD_NONE) {
        continue;
      }
      fam = family_find(st, m, mn, f[i].key.p, f[i].key.len);
      if (!fam) {
        continue;
      }
      v = f[i].type == FIELD_FLOAT ? f[i].v.f
          : f[i].type == FIELD_INT ? (double)f[i].v.i
                                   : (f[i].v.b ? 1.0 : 0.0);
    } else {
      /* Then the any-field time: a point of any field keeps it alive. */
      fam = any;
      v = 1.0;
      if (!fam) {
        continue;
      }
    }
    if (!tags) {
      rc = scratch_reserve(st, p->ntags);
      if (rc == IOCD_ELIMIT) {
        st->st.series_refused++;
        return rc;
      }
      if (rc) {
        return rc;
      }
      size_t ntags = 0;
      const struct tag *t = pb_tags(pb, p);
      for (size_t k = 0; k < p->ntags; k++) {
        if (t[k].value.len == 0) {
          continue;
        }
        st->scratch[ntags++] = (struct stag){.k = t[k].key.p,
                                             .kn = t[k].key.len,
                                             .v = t[k].value.p,
                                             .vn = t[k].value.len};
      }
      ntags = scratch_sort(st, ntags);
      rc = tagset_get(st, st->scratch, ntags, tags_hash(st->scratch, ntags),
                      &tags);
      if (rc) {
        return rc;
      }
    }
    rc = add_one(st, fam, tags, ts, v, cb, ud);
    if (rc == IOCD_ELIMIT) {
      refused = true;
    } else if (rc) {
      break;
    }
  }
  if (tags) {
    tagset_release(st, tags);
  }
  return rc && rc != IOCD_ELIMIT ? rc : refused ? IOCD_ELIMIT : IOCD_OK;
}

int series_store_add_point(struct series_store *st,
                           const struct point_batch *pb, const struct point *p,
                           series_change_fn *cb, void *ud) {
  return series_store_add_point_seen(st, pb, p, NULL, cb, ud);
}

int series_store_add(struct series_store *st, const char *measurement,
                     const char *field, const struct series_label *labels,
                     size_t nlabels, int64_t ts_ns, double v,
                     series_change_fn *cb, void *ud) {
  if (!st || !measurement || !field || (nlabels && !labels)) {
    return IOCD_EINVAL;
  }
  size_t mn = strlen(measurement);
  struct family *fam = family_find(st, measurement, mn, field, strlen(field));
  struct family *any = family_find(st, measurement, mn, NULL, 0);
  if (!fam && !any) {
    return IOCD_OK;
  }
  int rc = scratch_reserve(st, nlabels);
  if (rc == IOCD_ELIMIT) {
    st->st.series_refused++;
  }
  if (rc) {
    return rc;
  }
  size_t ntags = 0;
  for (size_t i = 0; i < nlabels; i++) {
    if (!labels[i].key || !labels[i].value) {
      return IOCD_EINVAL;
    }
    if (!*labels[i].value) {
      continue;
    }
    st->scratch[ntags++] = (struct stag){.k = labels[i].key,
                                         .kn = strlen(labels[i].key),
                                         .v = labels[i].value,
                                         .vn = strlen(labels[i].value)};
  }
  ntags = scratch_sort(st, ntags);
  struct tagset *tags;
  rc = tagset_get(st, st->scratch, ntags, tags_hash(st->scratch, ntags),
                  &tags);
  if (rc) {
    return rc;
  }
  bool refused = false;
  if (fam) {
    rc = add_one(st, fam, tags, ts_ns, v, cb, ud);
    refused = rc == IOCD_ELIMIT;
  }
  if (any && (!rc || rc == IOCD_ELIMIT)) {
    rc = add_one(st, any, tags, ts_ns, 1.0, cb, ud);
    refused = refused || rc == IOCD_ELIMIT;
  }
  tagset_release(st, tags);
  return rc && rc != IOCD_ELIMIT ? rc : refused ? IOCD_ELIMIT : IOCD_OK;
}

/* ---- selection ----------------------------------------------------------- */

static const char *tag_or_empty(const struct series *s, const char *key) {
  const char *v = series_tag(s, key);
  return v ? v : "";
}

/* Whether s is in g, label skip (SIZE_MAX: none) being known to match. */
static bool in_group(const struct series *s, const struct group *g,
                     size_t skip) {
  for (size_t i = 0; g && i < g->n; i++) {
    if (i != skip && strcmp(tag_or_empty(s, g->keys[i]), g->values[i]) != 0) {
      return false;
    }
  }
  return true;
}

static bool matches(const struct series *s, const struct matcher *m,
                    size_t nm) {
  for (size_t i = 0; i < nm; i++) {
    bool eq = strcmp(tag_or_empty(s, m[i].key), m[i].value) == 0;
    if (eq == m[i].neg) {
      return false;
    }
  }
  return true;
}

/* The posting of fam for label i of g, through g's cache when it has one. */
static const struct posting *group_posting(const struct series_store *st,
                                           const struct family *fam,
                                           const struct group *g, size_t i) {
  struct series_group_cache *c = g->cache;
  if (c && c->nways == 0) {
    c = NULL;
  }
  if (c) {
    for (size_t w = 0; w < c->nways; w++) {
      if (c->way[w].fam == fam && c->way[w].gen == st->post_gen) {
        return c->way[w].post;
      }
    }
  }
  const struct posting *p =
      g->hashes ? posting_find_h(st, fam, g->keys[i], g->values[i],
                                 g->hashes[i])
                : posting_find(st, fam, g->keys[i], strlen(g->keys[i]),
                               g->values[i], strlen(g->values[i]));
  if (c) {
    size_t w = 0;
    while (w < c->nways && c->way[w].fam != fam) {
      w++;
    }
    if (w == c->nways) {
      w = c->next;
      c->next = (c->next + 1) % c->nways;
    }
    c->way[w].fam = fam;
    c->way[w].post = p;
    c->way[w].gen = st->post_gen;
  }
  return p;
}

void series__select(const struct series_store *st, const struct family *fam,
                    const struct group *g, const struct matcher *m, size_t nm,
                    series__visit_fn *fn, void *ud) {
  if (!st || !fam) {
    return;
  }
  struct series *const *list = fam->all;
  size_t n = fam->n;
  size_t known = SIZE_MAX; /* the label every series of list has */
  for (size_t i = 0; g && i < g->n; i++) {
    if (!*g->values[i]) {
      continue;
    }
    const struct posting *p = group_posting(st, fam, g, i);
    if (!p) {
      return;
    }
    list = p->v;
    n = p->n;
    known = i;
    break;
  }
  for (size_t i = 0; i < n; i++) {
    if (in_group(list[i], g, known) && matches(list[i], m, nm)) {
      fn(ud, list[i]);
    }
  }
}

/* ---- life cycle ---------------------------------------------------------- */

struct series_store *series_store_new(const struct series_store_opts *opts) {
  struct series_store *st = calloc(1, sizeof *st);
  if (!st) {
    return NULL;
  }
  struct series_store_opts o = {0};
  if (opts) {
    o = *opts;
  }
  st->max_samples = o.max_samples ? o.max_samples : DEFAULT_MAX_SAMPLES;
  st->max_series = o.max_series ? o.max_series : DEFAULT_MAX_SERIES;
  st->slack_ns = o.slack_ns > 0    ? o.slack_ns
                 : o.slack_ns == 0 ? DEFAULT_SLACK_NS
                                   : 0;
  st->st.bytes = sizeof *st;
  st->post_gen = 1;
  st->user_free = o.user_free;
  return st;
}

static void unlink_series(struct series_store *st, struct series *s) {
  struct tagset *ts = s->ts;
  for (size_t i = 0; i < ts->ntags; i++) {
    const struct stag *t = &ts->tags[i];
    struct posting *p = posting_find(st, s->fam, t->k, t->kn, t->v, t->vn);
    if (!p) {
      continue;
    }
    list_remove(p->v, &p->n, s);
    if (p->n == 0) {
      table_remove(&st->posts, &p->hn);
      posting_free(st, p);
    }
  }
  list_remove(ts->ser, &ts->nser, s);
  st->nseries--;
  tagset_release(st, ts);
}

size_t series_store_gc(struct series_store *st, int64_t before_ns) {
  if (!st) {
    return 0;
  }
  size_t removed = 0;
  for (size_t b = 0; b < st->fams.nb; b++) {
    for (struct hnode *h = st->fams.b[b]; h; h = h->next) {
      struct family *fam = container_of(h, struct family, hn);
      size_t w = 0;
      for (size_t i = 0; i < fam->n; i++) {
        struct series *s = fam->all[i];
        const struct ring *r = &s->ring;
        if (r->n > 0 && ring_at(r, r->n - 1)->ts >= before_ns) {
          fam->all[w++] = s;
          continue;
        }
        unlink_series(st, s);
        series_free(st, s);
        removed++;
      }
      fam->n = w;
    }
  }
  return removed;
}

void series_store_free(struct series_store *st) {
  if (!st) {
    return;
  }
  for (size_t b = 0; b < st->tsets.nb; b++) {
    struct hnode *h = st->tsets.b[b];
    while (h) {
      struct hnode *next = h->next;
      struct tagset *ts = container_of(h, struct tagset, hn);
      for (size_t i = 0; i < ts->nser; i++) {
        series_free(st, ts->ser[i]);
      }
      tagset_free(st, ts);
      h = next;
    }
  }
  for (size_t b = 0; b < st->posts.nb; b++) {
    struct hnode *h = st->posts.b[b];
    while (h) {
      struct hnode *next = h->next;
      posting_free(st, container_of(h, struct posting, hn));
      h = next;
    }
  }
  for (size_t b = 0; b < st->fams.nb; b++) {
    struct hnode *h = st->fams.b[b];
    while (h) {
      struct hnode *next = h->next;
      family_free(container_of(h, struct family, hn));
      h = next;
    }
  }
  free(st->tsets.b);
  free(st->posts.b);
  free(st->fams.b);
  free(st->scratch);
  free(st);
}

void series_store_get_stats(const struct series_store *st,
                            struct series_store_stats *out) {
  *out = st->st;
  out->families = st->fams.n;
  out->series = st->nseries;
}
