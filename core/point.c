/*
 * Point batches: the arrays of points, tags and fields, and the arena that
 * owns their strings. A batch is reused for every message on the hot path,
 * so pb_reset only rewinds counters and keeps one arena chunk; steady-state
 * decoding then allocates nothing.
 */
#include "core/mem.h"
#include "core/point.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

struct tag pb__no_tags[1];
struct field pb__no_fields[1];

/* Chunks never move once allocated, so pointers into them stay valid until
 * the chunk is freed by pb_reset or pb_cleanup. Each new chunk is twice the
 * previous one up to CHUNK_GROW_MAX; a string too big for that gets a chunk
 * of its own. */
#define CHUNK_MIN 4096
#define CHUNK_GROW_MAX (64 * 1024)

struct pb_chunk {
  struct pb_chunk *next;
  size_t cap;
  size_t used;
  char data[];
};

const char *field_type_name(enum field_type t) {
  switch (t) {
    case FIELD_FLOAT:
      return "float";
    case FIELD_INT:
      return "integer";
    case FIELD_BOOL:
      return "boolean";
    case FIELD_STRING:
      return "string";
    case FIELD_NONE:
      break;
  }
  return "none";
}

enum field_type field_type_parse(const char *s) {
  static const struct {
    const char *name;
    enum field_type type;
  } names[] = {
      {"float", FIELD_FLOAT},
      {"integer", FIELD_INT},
      {"boolean", FIELD_BOOL},
      {"string", FIELD_STRING},
  };
  if (!s) {
    return FIELD_NONE;
  }
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (strcmp(s, names[i].name) == 0) {
      return names[i].type;
    }
  }
  return FIELD_NONE;
}

void pb_init(struct point_batch *pb) {
  memset(pb, 0, sizeof *pb);
}

/* Keeps the largest chunk that is not oversized: a batch that regularly
 * needs 16 KiB of strings then settles on one 16 KiB chunk. */
static void free_chunks_but_one(struct point_batch *pb) {
  struct pb_chunk *keep = NULL;
  for (struct pb_chunk *c = pb->chunks; c; c = c->next) {
    if (c->cap <= CHUNK_GROW_MAX && (!keep || c->cap > keep->cap)) {
      keep = c;
    }
  }
  struct pb_chunk *c = pb->chunks;
  while (c) {
    struct pb_chunk *next = c->next;
    if (c != keep) {
      free(c);
    }
    c = next;
  }
  if (keep) {
    keep->next = NULL;
    keep->used = 0;
  }
  pb->chunks = keep;
}

void pb_reset(struct point_batch *pb) {
  pb->npoints = 0;
  pb->ntags = 0;
  pb->nfields = 0;
  if (pb->chunks && (pb->chunks->next || pb->chunks->cap > CHUNK_GROW_MAX)) {
    free_chunks_but_one(pb);
  } else if (pb->chunks) {
    pb->chunks->used = 0;
  }
}

void pb_cleanup(struct point_batch *pb) {
  struct pb_chunk *c = pb->chunks;
  while (c) {
    struct pb_chunk *next = c->next;
    free(c);
    c = next;
  }
  free(pb->points);
  free(pb->tags);
  free(pb->fields);
  size_t max = pb->max_points;
  pb_init(pb);
  pb->max_points = max;
}

/* Returns room for n bytes in the arena, or NULL on ENOMEM. */
static char *arena_alloc(struct point_batch *pb, size_t n) {
  struct pb_chunk *head = pb->chunks;
  if (head && head->cap - head->used >= n) {
    char *p = head->data + head->used;
    head->used += n;
    return p;
  }
  if (n > SIZE_MAX - sizeof(struct pb_chunk)) {
    return NULL;
  }
  size_t cap = CHUNK_MIN;
  if (head) {
    cap = head->cap >= CHUNK_GROW_MAX / 2 ? CHUNK_GROW_MAX : head->cap * 2;
  }
  bool dedicated = false;
  if (n > cap / 2) {
    /* A big string would waste the rest of a shared chunk: give it one of
     * its own behind the head, which stays the chunk small strings use. */
    cap = n;
    dedicated = head != NULL;
  }
  struct pb_chunk *c = malloc(sizeof *c + cap);
  if (!c) {
    return NULL;
  }
  c->cap = cap;
  c->used = n;
  if (dedicated) {
    c->next = head->next;
    head->next = c;
  } else {
    c->next = head;
    pb->chunks = c;
  }
  return c->data;
}

const char *pb_strdup(struct point_batch *pb, const char *s, size_t n) {
  if (n == SIZE_MAX) {
    return NULL;
  }
  char *p = arena_alloc(pb, n + 1);
  if (!p) {
    return NULL;
  }
  if (n) {
    memcpy(p, s, n);
  }
  p[n] = '\0';
  return p;
}

struct point *pb_point_new(struct point_batch *pb, const char *meas,
                           size_t len) {
  if (pb->max_points && pb->npoints >= pb->max_points) {
    return NULL;
  }
  if (mem_grow((void **)&pb->points, &pb->cap_points, pb->npoints,
           sizeof *pb->points)) {
    return NULL;
  }
  const char *m = pb_strdup(pb, meas, len);
  if (!m) {
    return NULL;
  }
  struct point *p = &pb->points[pb->npoints++];
  p->measurement.p = m;
  p->measurement.len = len;
  p->tag0 = pb->ntags;
  p->ntags = 0;
  p->field0 = pb->nfields;
  p->nfields = 0;
  p->ts_ns = 0;
  p->has_ts = false;
  return p;
}

static bool str_eq(const struct str *a, const char *p, size_t n) {
  return a->len == n && (n == 0 || memcmp(a->p, p, n) == 0);
}

static void assert_last(const struct point_batch *pb, const struct point *p) {
  (void)pb;
  (void)p;
  assert(pb->npoints > 0 && p == &pb->points[pb->npoints - 1]);
}

int pb_tag(struct point_batch *pb, struct point *p, const char *k, size_t kn,
           const char *v, size_t vn, bool replace) {
  assert_last(pb, p);
  struct tag *tags = pb_tags(pb, p);
  for (size_t i = 0; i < p->ntags; i++) {
    if (str_eq(&tags[i].key, k, kn)) {
      if (!replace) {
        return IOCD_OK;
      }
      const char *nv = pb_strdup(pb, v, vn);
      if (!nv) {
        return IOCD_ENOMEM;
      }
      tags[i].value.p = nv;
      tags[i].value.len = vn;
      return IOCD_OK;
    }
  }
  if (mem_grow((void **)&pb->tags, &pb->cap_tags, pb->ntags, sizeof *pb->tags)) {
    return IOCD_ENOMEM;
  }
  const char *nk = pb_strdup(pb, k, kn);
  const char *nv = nk ? pb_strdup(pb, v, vn) : NULL;
  if (!nv) {
    return IOCD_ENOMEM;
  }
  struct tag *t = &pb->tags[pb->ntags++];
  t->key.p = nk;
  t->key.len = kn;
  t->value.p = nv;
  t->value.len = vn;
  p->ntags++;
  return IOCD_OK;
}

/* Appends a field with its key copied; the caller sets type and value. */
static struct field *field_add(struct point_batch *pb, struct point *p,
                               const char *k, size_t kn) {
  assert_last(pb, p);
  if (mem_grow((void **)&pb->fields, &pb->cap_fields, pb->nfields,
           sizeof *pb->fields)) {
    return NULL;
  }
  const char *nk = pb_strdup(pb, k, kn);
  if (!nk) {
    return NULL;
  }
  struct field *f = &pb->fields[pb->nfields];
  f->key.p = nk;
  f->key.len = kn;
  return f;
}

/* Makes the field returned by field_add part of p, once it is complete. */
static int field_commit(struct point_batch *pb, struct point *p) {
  pb->nfields++;
  p->nfields++;
  return IOCD_OK;
}

int pb_field_float(struct point_batch *pb, struct point *p, const char *k,
                   size_t kn, double v) {
  struct field *f = field_add(pb, p, k, kn);
  if (!f) {
    return IOCD_ENOMEM;
  }
  f->type = FIELD_FLOAT;
  f->v.f = v;
  return field_commit(pb, p);
}

int pb_field_int(struct point_batch *pb, struct point *p, const char *k,
                 size_t kn, int64_t v) {
  struct field *f = field_add(pb, p, k, kn);
  if (!f) {
    return IOCD_ENOMEM;
  }
  f->type = FIELD_INT;
  f->v.i = v;
  return field_commit(pb, p);
}

int pb_field_bool(struct point_batch *pb, struct point *p, const char *k,
                  size_t kn, bool v) {
  struct field *f = field_add(pb, p, k, kn);
  if (!f) {
    return IOCD_ENOMEM;
  }
  f->type = FIELD_BOOL;
  f->v.b = v;
  return field_commit(pb, p);
}

int pb_field_string(struct point_batch *pb, struct point *p, const char *k,
                    size_t kn, const char *v, size_t vn) {
  struct field *f = field_add(pb, p, k, kn);
  if (!f) {
    return IOCD_ENOMEM;
  }
  const char *s = pb_strdup(pb, v, vn);
  if (!s) {
    return IOCD_ENOMEM;
  }
  f->type = FIELD_STRING;
  f->v.s.p = s;
  f->v.s.len = vn;
  return field_commit(pb, p);
}

void pb_point_drop_last(struct point_batch *pb) {
  if (pb->npoints == 0) {
    return;
  }
  /* The arena strings of the dropped point stay until pb_reset: chunks are
   * shared, and the waste is bounded by one message. */
  struct point *p = &pb->points[--pb->npoints];
  pb->ntags = p->tag0;
  pb->nfields = p->field0;
}

static int key_cmp(const struct str *a, const struct str *b) {
  size_t n = a->len < b->len ? a->len : b->len;
  int c = n ? memcmp(a->p, b->p, n) : 0;
  if (c) {
    return c;
  }
  return (a->len > b->len) - (a->len < b->len);
}

void pb_point_sort_tags(struct point_batch *pb, struct point *p) {
  /* Points carry a handful of tags, often already sorted: a binary insertion
   * sort is stable, allocates nothing and is linear on sorted input. */
  struct tag *t = pb_tags(pb, p);
  for (size_t i = 1; i < p->ntags; i++) {
    if (key_cmp(&t[i - 1].key, &t[i].key) <= 0) {
      continue;
    }
    struct tag cur = t[i];
    size_t lo = 0;
    size_t hi = i;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (key_cmp(&t[mid].key, &cur.key) <= 0) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    memmove(&t[lo + 1], &t[lo], (i - lo) * sizeof *t);
    t[lo] = cur;
  }
}

const struct str *pb_tag_get(const struct point_batch *pb,
                             const struct point *p, const char *key) {
  size_t kn = strlen(key);
  const struct tag *t = pb_tags(pb, p);
  for (size_t i = 0; i < p->ntags; i++) {
    if (str_eq(&t[i].key, key, kn)) {
      return &t[i].value;
    }
  }
  return NULL;
}
