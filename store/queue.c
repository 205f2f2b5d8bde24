/*
 * The in-memory queue behind the store: a ring of records (one accepted
 * message's line protocol each) in arrival order, bounded in bytes. Every
 * output reads it through its own cursor and confirms what it is done with;
 * a record is freed once every reader confirmed it and every record before
 * it is gone, so the queue is always one contiguous run of sequence numbers.
 */
#include <stdlib.h>
#include <string.h>

#include "core/container.h"
#include "core/err.h"
#include "store/store_int.h"

/* line_end[npoints] is followed by the len bytes of line protocol. */
struct mrec {
  int64_t t_ms;
  uint32_t source;
  uint32_t npoints;
  unsigned done; /* bit per reader that confirmed it */
  size_t len;
  uint32_t line_end[];
};

struct memq {
  struct queue base;
  struct mrec **ring;
  size_t ring_cap; /* a power of two */
  size_t head;     /* ring index of the oldest record */
  size_t count;
  uint64_t head_seq; /* sequence number of ring[head] */
  size_t max_bytes;
  uint64_t points, bytes; /* of every record held */
  unsigned nreaders;
  unsigned all;                         /* mask with a bit per reader */
  uint64_t next_seq[STORE_MAX_OUTPUTS]; /* first record not taken */
  size_t untaken_points[STORE_MAX_OUTPUTS];
  size_t untaken_bytes[STORE_MAX_OUTPUTS];
};

static char *rec_data(struct mrec *r) {
  return (char *)(r->line_end + r->npoints);
}

static struct mrec *at(struct memq *m, uint64_t seq) {
  return m->ring[(m->head + (size_t)(seq - m->head_seq)) & (m->ring_cap - 1)];
}

static int grow(struct memq *m) {
  size_t cap = m->ring_cap ? m->ring_cap * 2 : 64;
  if (cap > SIZE_MAX / sizeof(struct mrec *)) {
    return IOCD_ENOMEM;
  }
  struct mrec **ring = malloc(cap * sizeof *ring);
  if (!ring) {
    return IOCD_ENOMEM;
  }
  for (size_t i = 0; i < m->count; i++) {
    ring[i] = m->ring[(m->head + i) & (m->ring_cap - 1)];
  }
  free(m->ring);
  m->ring = ring;
  m->ring_cap = cap;
  m->head = 0;
  return IOCD_OK;
}

static int memq_append(struct queue *q, const char *data, size_t len,
                       const uint32_t *line_end, uint32_t npoints,
                       uint32_t source, int64_t now_ms) {
  struct memq *m = container_of(q, struct memq, base);
  if (len > m->max_bytes || m->bytes > m->max_bytes - len) {
    return IOCD_EFULL;
  }
  if (m->count == m->ring_cap && grow(m) != IOCD_OK) {
    return IOCD_ENOMEM;
  }
  size_t ends = (size_t)npoints * sizeof(uint32_t);
  struct mrec *r = malloc(sizeof *r + ends + len);
  if (!r) {
    return IOCD_ENOMEM;
  }
  r->t_ms = now_ms;
  r->source = source;
  r->npoints = npoints;
  r->done = 0;
  r->len = len;
  memcpy(r->line_end, line_end, ends);
  memcpy(rec_data(r), data, len);
  m->ring[(m->head + m->count) & (m->ring_cap - 1)] = r;
  m->count++;
  m->points += npoints;
  m->bytes += len;
  for (unsigned i = 0; i < m->nreaders; i++) {
    m->untaken_points[i] += npoints;
    m->untaken_bytes[i] += len;
  }
  return IOCD_OK;
}

static void memq_level(struct queue *q, unsigned reader, struct qlevel *out) {
  struct memq *m = container_of(q, struct memq, base);
  uint64_t end = m->head_seq + m->count;
  out->points = m->untaken_points[reader];
  out->bytes = m->untaken_bytes[reader];
  out->records = (size_t)(end - m->next_seq[reader]);
  out->oldest_ms = out->records ? at(m, m->next_seq[reader])->t_ms : 0;
  out->not_before_ms = 0;
}

static int memq_take(struct queue *q, unsigned reader, size_t max_points,
                     size_t max_bytes, struct sbatch **out) {
  struct memq *m = container_of(q, struct memq, base);
  *out = NULL;
  uint64_t seq = m->next_seq[reader];
  uint64_t end = m->head_seq + m->count;
  size_t npoints = 0, len = 0, n = 0;
  for (uint64_t s = seq; s < end; s++) {
    struct mrec *r = at(m, s);
    if (n > 0 &&
        (npoints + r->npoints > max_points || len + r->len > max_bytes)) {
      break;
    }
    npoints += r->npoints;
    len += r->len;
    n++;
  }
  if (n == 0) {
    return IOCD_OK;
  }
  struct sbatch *b = calloc(1, sizeof *b);
  if (!b) {
    return IOCD_ENOMEM;
  }
  b->body = malloc(len + 1);
  b->line_off = malloc((npoints + 1) * sizeof *b->line_off);
  b->line_src = malloc((npoints ? npoints : 1) * sizeof *b->line_src);
  if (!b->body || !b->line_off || !b->line_src) {
    store__batch_free(b);
    return IOCD_ENOMEM;
  }
  size_t off = 0, line = 0;
  for (uint64_t s = seq; s < seq + n; s++) {
    struct mrec *r = at(m, s);
    size_t start = 0;
    for (uint32_t i = 0; i < r->npoints; i++) {
      b->line_off[line] = off + start;
      b->line_src[line] = r->source;
      start = r->line_end[i];
      line++;
    }
    memcpy(b->body + off, rec_data(r), r->len);
    off += r->len;
  }
  b->body[len] = '\0';
  b->line_off[npoints] = len;
  b->len = len;
  b->npoints = npoints;
  b->first_seq = seq;
  b->nrecords = n;
  m->next_seq[reader] = seq + n;
  m->untaken_points[reader] -= npoints;
  m->untaken_bytes[reader] -= len;
  *out = b;
  return IOCD_OK;
}

static void memq_confirm(struct queue *q, unsigned reader,
                         const struct sbatch *b) {
  struct memq *m = container_of(q, struct memq, base);
  for (uint64_t s = b->first_seq; s < b->first_seq + b->nrecords; s++) {
    if (s >= m->head_seq && s < m->head_seq + m->count) {
      at(m, s)->done |= 1u << reader;
    }
  }
  while (m->count > 0 && m->ring[m->head]->done == m->all) {
    struct mrec *r = m->ring[m->head];
    m->points -= r->npoints;
    m->bytes -= r->len;
    free(r);
    m->ring[m->head] = NULL;
    m->head = (m->head + 1) & (m->ring_cap - 1);
    m->count--;
    m->head_seq++;
  }
}

static void memq_totals(const struct queue *q, uint64_t *points,
                        uint64_t *bytes) {
  const struct memq *m = container_of(q, const struct memq, base);
  *points = m->points;
  *bytes = m->bytes;
}

static void memq_set_limit(struct queue *q, size_t max_bytes) {
  container_of(q, struct memq, base)->max_bytes = max_bytes;
}

static void memq_free(struct queue *q) {
  if (!q) {
    return;
  }
  struct memq *m = container_of(q, struct memq, base);
  for (size_t i = 0; i < m->count; i++) {
    free(m->ring[(m->head + i) & (m->ring_cap - 1)]);
  }
  free(m->ring);
  free(m);
}

static const struct queue_ops memq_ops = {
    .append = memq_append,
    .level = memq_level,
    .take = memq_take,
    .confirm = memq_confirm,
    .totals = memq_totals,
    .set_limit = memq_set_limit,
    .free = memq_free,
};

struct queue *store__memq_new(size_t max_bytes, unsigned nreaders) {
  if (nreaders == 0 || nreaders > STORE_MAX_OUTPUTS) {
    return NULL;
  }
  struct memq *m = calloc(1, sizeof *m);
  if (!m) {
    return NULL;
  }
  m->base.ops = &memq_ops;
  m->max_bytes = max_bytes;
  m->nreaders = nreaders;
  m->all = (1u << nreaders) - 1;
  if (grow(m) != IOCD_OK) {
    free(m);
    return NULL;
  }
  return &m->base;
}
