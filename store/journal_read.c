/*
 * Reading the journal back for the outputs: records come from memory while
 * they are recent and from the segment files otherwise (a read window,
 * resynchronising after damage found late). Each output (reader) takes
 * batches in order; one far behind is split into a backlog, paced by
 * replay_rate, and live records that go ahead. The runs taken and confirmed
 * move the reader's checkpoint.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/container.h"
#include "core/log.h"
#include "store/journal_int.h"

/* Segment files are read back in windows of this size. */
#define READ_CHUNK ((size_t)1 << 20)
/* A reader this many batches behind drains that backlog alongside the live
 * records instead of strictly before them. */
#define SPLIT_BATCHES 4

/* ---- Reading back ------------------------------------------------------- */

void journal__rb_forget(struct journal *j) {
  if (j->rfd >= 0) {
    close(j->rfd);
  }
  j->rfd = -1;
  j->rfd_seg = UINT64_MAX;
  j->rb_len = 0;
}

/* Makes [off, off + n) of g's file readable in the window (or less at the
 * end of the file). Returns the bytes available from off, or -1 on an I/O
 * error (logged). */
static ssize_t rb_get(struct journal *j, struct jseg *g, uint64_t off, size_t n,
                      uint64_t end, const unsigned char **p) {
  if (j->rfd_seg == g->first_seq && off >= j->rb_off &&
      off + n <= j->rb_off + j->rb_len) {
    *p = (const unsigned char *)j->rb + (off - j->rb_off);
    return (ssize_t)(j->rb_off + j->rb_len - off);
  }
  if (j->rfd_seg != g->first_seq) {
    journal__rb_forget(j);
    char *path = journal__seg_path(j, g);
    if (!path) {
      return -1;
    }
    j->rfd = open(path, O_RDONLY | O_CLOEXEC);
    if (j->rfd < 0) {
      log_error("journal", "cannot read %s: %s", path, strerror(errno));
      free(path);
      return -1;
    }
    free(path);
    j->rfd_seg = g->first_seq;
  }
  size_t want = n > READ_CHUNK ? n : READ_CHUNK;
  if (off >= end) {
    want = 0;
  } else if (end - off < want) {
    want = (size_t)(end - off);
  }
  if (want > j->rb_cap) {
    char *nb = malloc(want);
    if (!nb) {
      return -1;
    }
    free(j->rb);
    j->rb = nb;
    j->rb_cap = want;
  }
  size_t got = 0;
  while (got < want) {
    ssize_t r = pread(j->rfd, j->rb + got, want - got, (off_t)(off + got));
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      log_error("journal", "reading segment %016" PRIu64 ": %s", g->first_seq,
                strerror(errno));
      j->rb_len = 0;
      return -1;
    }
    if (r == 0) {
      break;
    }
    got += (size_t)r;
  }
  j->rb_off = off;
  j->rb_len = got;
  *p = (const unsigned char *)j->rb;
  return (ssize_t)got;
}

/* Decodes the record at off in g (end: where its readable bytes end). */
enum jdecode journal__read_at(struct journal *j, struct jseg *g, uint64_t off,
                              uint64_t end, struct jview *v) {
  const unsigned char *p;
  ssize_t n = rb_get(j, g, off, JOURNAL_HDR, end, &p);
  if (n < 0) {
    return JREC_SHORT;
  }
  enum jdecode d = journal__decode(p, (size_t)n, v);
  if (d != JREC_SHORT || (size_t)n < JOURNAL_HDR) {
    return d;
  }
  /* The header is there but the payload goes past the window. */
  size_t size = JOURNAL_HDR + (size_t)journal__get32(p + 8);
  if (off + size > end) {
    return JREC_SHORT;
  }
  n = rb_get(j, g, off, size, end, &p);
  if (n < 0) {
    return JREC_SHORT;
  }
  return journal__decode(p, (size_t)n, v);
}

/* The offset of the next valid record after the damage at off, or end. */
uint64_t journal__resync(struct journal *j, struct jseg *g, uint64_t off,
                         uint64_t end, struct jview *v) {
  uint64_t p = off + 1;
  while (p + JOURNAL_HDR <= end) {
    const unsigned char *w;
    ssize_t n = rb_get(j, g, p, 4, end, &w);
    if (n < 4) {
      break;
    }
    size_t i = 0;
    while (i + 4 <= (size_t)n && memcmp(w + i, JOURNAL_MAGIC, 4) != 0) {
      i++;
    }
    if (i + 4 > (size_t)n) {
      p += (uint64_t)n - 3;
      continue;
    }
    p += i;
    if (journal__read_at(j, g, p, end, v) == JREC_OK) {
      return p;
    }
    p++;
  }
  return end;
}

/* The source id of a record read back, looked up by its name. */
int journal__name_to_id(struct journal *j, const char *name, size_t len,
                        uint32_t *id) {
  if (j->name_last && j->name_last_len == len &&
      memcmp(j->name_last, name, len) == 0) {
    *id = j->name_id;
    return IOCD_OK;
  }
  int rc = j->hooks.source_id(j->hooks.ud, name, len, id);
  if (rc) {
    return rc;
  }
  char *copy = malloc(len + 1);
  if (copy) {
    memcpy(copy, name, len);
    copy[len] = '\0';
    free(j->name_last);
    j->name_last = copy;
    j->name_last_len = len;
    j->name_id = *id;
  }
  return IOCD_OK;
}

/* ---- Checkpoints: runs taken and confirmed ------------------------------ */

/* Folds confirmed runs at the front into conf. */
void journal__advance_conf(struct jreader *r) {
  for (;;) {
    uint64_t c = r->back.seq;
    if (r->nouts > 0 && r->outs[0].first < c) {
      c = r->outs[0].first;
    }
    if (r->nouts > 0 && r->outs[0].confirmed && r->outs[0].first == c) {
      memmove(r->outs, r->outs + 1, (r->nouts - 1) * sizeof *r->outs);
      r->nouts--;
      continue;
    }
    if (c > r->conf) {
      r->conf = c;
    }
    return;
  }
}

/* Makes room for more runs in r->outs. */
static int reserve_outs(struct jreader *r, size_t more) {
  if (r->nouts + more <= r->capouts) {
    return IOCD_OK;
  }
  size_t cap = r->capouts ? r->capouts * 2 : 8;
  while (cap < r->nouts + more) {
    cap *= 2;
  }
  struct jout *v = journal__regrow(r->outs, r->nouts, cap, sizeof *v);
  if (!v) {
    return IOCD_ENOMEM;
  }
  r->outs = v;
  r->capouts = cap;
  return IOCD_OK;
}

/* Records that a run [first, end) was taken (confirmed false) or skipped
 * (confirmed true), keeping the runs in order. */
int journal__add_out(struct jreader *r, uint64_t first, uint64_t end,
                     int64_t wall, bool confirmed) {
  if (first >= end) {
    return IOCD_OK;
  }
  if (reserve_outs(r, 1) != IOCD_OK) {
    return IOCD_ENOMEM;
  }
  size_t i = r->nouts;
  while (i > 0 && r->outs[i - 1].first > first) {
    i--;
  }
  memmove(r->outs + i + 1, r->outs + i, (r->nouts - i) * sizeof *r->outs);
  r->outs[i] = (struct jout){first, end, wall, confirmed};
  r->nouts++;
  return IOCD_OK;
}

/* ---- Taking batches ----------------------------------------------------- */

static bool live_due(const struct journal *j, const struct jreader *r,
                     int64_t now, int64_t *at) {
  *at = INT64_MAX;
  if (r->lutk.records == 0) {
    return false;
  }
  if (r->lutk.points >= r->pace.batch_points ||
      r->lutk.bytes >= r->pace.batch_bytes || r->live.seq < j->cache_first) {
    return true;
  }
  int64_t t = journal__rec_at(j, r->live.seq)->loop_ms + r->pace.flush_ms;
  if (now >= t) {
    return true;
  }
  *at = t;
  return false;
}

static void refill(const struct journal *j, struct jreader *r, int64_t now) {
  uint64_t rate = j->st.replay_rate;
  if (rate == 0) {
    return;
  }
  double burst =
      (double)(rate > r->pace.batch_points ? rate : r->pace.batch_points);
  r->tokens += (double)(now - r->tokens_ms) * (double)rate / 1000.0;
  if (r->tokens > burst) {
    r->tokens = burst;
  }
  r->tokens_ms = now;
}

/* May the backlog region be taken now? Else *at is when. */
static bool back_ok(const struct journal *j, struct jreader *r, int64_t now,
                    int64_t *at) {
  *at = INT64_MAX;
  if (r->utk.records == r->lutk.records) {
    return false;
  }
  if (j->st.replay_rate == 0) {
    return true;
  }
  refill(j, r, now);
  if (r->tokens > 0) {
    return true;
  }
  *at = now + 1 +
        (int64_t)((1.0 - r->tokens) * 1000.0 / (double)j->st.replay_rate);
  return false;
}

void journal__level(struct queue *q, unsigned reader, struct qlevel *out) {
  struct journal *j = container_of(q, struct journal, base);
  struct jreader *r = &j->rd[reader];
  out->points = (size_t)r->utk.points;
  out->bytes = (size_t)r->utk.bytes;
  out->records = (size_t)r->utk.records;
  out->not_before_ms = 0;
  out->oldest_ms = 0;
  if (r->utk.records == 0) {
    return;
  }
  if (!r->split) {
    if (r->back.seq >= j->cache_first && r->back.seq < j->next_seq) {
      out->oldest_ms = journal__rec_at(j, r->back.seq)->loop_ms;
    }
    return;
  }
  int64_t now = journal__loop_ms(j), a, b;
  if (live_due(j, r, now, &a) || back_ok(j, r, now, &b)) {
    return;
  }
  out->not_before_ms = a < b ? a : b;
  if (out->not_before_ms == INT64_MAX) {
    out->not_before_ms = 0;
  }
}

/* A batch under construction. */
struct bb {
  struct buf body;
  size_t *off;
  uint32_t *src;
  size_t n, cap;
};

static int bb_add(struct bb *b, const char *lp, size_t len,
                  const uint32_t *ends, const struct jview *v, uint32_t npoints,
                  uint32_t src) {
  if (b->n + npoints + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + npoints + 1) {
      cap *= 2;
    }
    size_t *off = malloc(cap * sizeof *off);
    uint32_t *s = malloc(cap * sizeof *s);
    if (!off || !s) {
      free(off);
      free(s);
      return IOCD_ENOMEM;
    }
    if (b->n) {
      memcpy(off, b->off, b->n * sizeof *off);
      memcpy(s, b->src, b->n * sizeof *s);
    }
    free(b->off);
    free(b->src);
    b->off = off;
    b->src = s;
    b->cap = cap;
  }
  size_t base = b->body.len;
  int rc = buf_append(&b->body, lp, len);
  if (rc) {
    return rc == IOCD_ETOOBIG ? IOCD_ENOMEM : rc;
  }
  uint32_t start = 0;
  for (uint32_t i = 0; i < npoints; i++) {
    b->off[b->n] = base + start;
    b->src[b->n] = src;
    start = ends ? ends[i] : journal__end(v, i);
    b->n++;
  }
  return IOCD_OK;
}

static void bb_cleanup(struct bb *b) {
  buf_cleanup(&b->body);
  free(b->off);
  free(b->src);
}

/* Takes records for reader r through cursor c, up to bound (exclusive) and
 * the limits, into *out (NULL when nothing was taken). live: c is the live
 * cursor of a split reader. Every record the cursor passes ends up in the
 * batch; on a failure half-way the batch holds what was taken so far, and
 * the cursor stays on the record that failed. */
static int take_run(struct journal *j, unsigned reader, struct jcur *c,
                    uint64_t bound, bool live, size_t max_points,
                    size_t max_bytes, struct sbatch **out) {
  struct jreader *r = &j->rd[reader];
  *out = NULL;
  struct sbatch *sb = calloc(1, sizeof *sb);
  if (!sb || reserve_outs(r, 2) != IOCD_OK) {
    free(sb);
    return IOCD_ENOMEM;
  }
  struct bb b = {0};
  buf_init(&b.body, 0);
  uint64_t start = c->seq;
  uint64_t first = UINT64_MAX;
  int64_t first_wall = 0;
  size_t points = 0;
  int rc = IOCD_OK;
  struct jcount taken = {0};

  /* Older records from their files. */
  while (!rc && c->seq < bound && c->seq < j->cache_first) {
    struct jseg *g = c->seg;
    if (!g) {
      /* Records lost before the memory tail (damage, a checkpoint past
       * them) are skipped. */
      c->seq = j->cache_first < bound ? j->cache_first : bound;
      break;
    }
    uint64_t end = journal__seg_readable(j, g);
    if (c->off >= end) {
      c->seg = g->next;
      c->off = 0;
      continue;
    }
    const struct jbad *bad = journal__seg_find_bad(g, c->off);
    if (bad) {
      c->off = bad->to;
      continue;
    }
    struct jview v;
    enum jdecode d = journal__read_at(j, g, c->off, end, &v);
    if (d != JREC_OK) {
      /* Damage that appeared after the start scan. */
      struct jview nv;
      uint64_t to = journal__resync(j, g, c->off, end, &nv);
      char name[64];
      journal__seg_name(g, name, sizeof name);
      stat_inc(j->m_corrupt);
      uint32_t held = 0;
      if (log_limit_allow(&j->corrupt_lim, journal__loop_ms(j), LOG_BURST,
                          LOG_WINDOW_MS, &held)) {
        log_error("journal",
                  "journal %s offset %" PRIu64
                  ": %s; skipped (resynchronised "
                  "at offset %" PRIu64 ")%s",
                  name, c->off, journal__decode_text(d), to, SUPPRESSED(held));
      }
      (void)journal__seg_add_bad(g, c->off, to);
      c->off = to;
      continue;
    }
    if (v.seq < c->seq) {
      c->off += v.size;
      continue;
    }
    if (v.seq >= bound) {
      c->seq = bound;
      break;
    }
    if (b.n > 0 && (points + v.npoints > max_points ||
                    b.body.len + v.lp_len > max_bytes)) {
      break;
    }
    uint32_t src;
    rc = journal__name_to_id(j, v.name, v.name_len, &src);
    if (!rc) {
      rc = bb_add(&b, v.lp, v.lp_len, NULL, &v, v.npoints, src);
    }
    if (rc) {
      break;
    }
    if (first == UINT64_MAX) {
      first = v.seq;
      first_wall = v.wall_ms;
    }
    points += v.npoints;
    journal__count_add(&taken, v.npoints, v.lp_len);
    journal__count_sub(&g->utk[reader], v.npoints, v.lp_len);
    if (live) {
      journal__count_sub(&g->live[reader], v.npoints, v.lp_len);
    }
    if (reader == 0 && src < g->nsrc) {
      g->src_utk[src] -= v.npoints;
    }
    c->seq = v.seq + 1;
    c->off += v.size;
  }
  /* Recent records from memory. */
  while (!rc && c->seq >= j->cache_first && c->seq < bound &&
         c->seq < j->next_seq) {
    struct jrec *e = journal__rec_at(j, c->seq);
    if (b.n > 0 &&
        (points + e->npoints > max_points || b.body.len + e->len > max_bytes)) {
      break;
    }
    rc = bb_add(&b, journal__rec_data(e), e->len, e->line_end, NULL, e->npoints,
                e->source);
    if (rc) {
      break;
    }
    if (first == UINT64_MAX) {
      first = e->seq;
      first_wall = e->wall_ms;
    }
    points += e->npoints;
    journal__count_add(&taken, e->npoints, e->len);
    journal__count_sub(&e->seg->utk[reader], e->npoints, e->len);
    if (live) {
      journal__count_sub(&e->seg->live[reader], e->npoints, e->len);
    }
    if (reader == 0) {
      e->seg->src_utk[e->source] -= e->npoints;
    }
    c->seq++;
  }
  if (first == UINT64_MAX) {
    /* Nothing but skipped numbers (if any). */
    (void)journal__add_out(r, start, c->seq, 0, true);
    bb_cleanup(&b);
    free(sb);
    return rc;
  }
  (void)journal__add_out(r, start, first, 0, true);
  (void)journal__add_out(r, first, c->seq, first_wall, false);
  sb->len = b.body.len;
  sb->npoints = b.n;
  sb->body = buf_detach(&b.body, NULL);
  sb->line_off = b.off;
  sb->line_off[b.n] = sb->len;
  sb->line_src = b.src;
  sb->first_seq = first;
  sb->nrecords = (size_t)(c->seq - first);
  r->utk.points -= taken.points;
  r->utk.bytes -= taken.bytes;
  r->utk.records -= taken.records;
  if (live) {
    r->lutk.points -= taken.points;
    r->lutk.bytes -= taken.bytes;
    r->lutk.records -= taken.records;
  }
  *out = sb;
  return IOCD_OK;
}

static void merge(struct journal *j, unsigned reader) {
  struct jreader *r = &j->rd[reader];
  r->back = r->live;
  r->split = false;
  r->lutk = (struct jcount){0};
  for (struct jseg *g = j->head; g; g = g->next) {
    g->live[reader] = (struct jcount){0};
  }
}

int journal__take(struct queue *q, unsigned reader, size_t max_points,
                  size_t max_bytes, struct sbatch **out) {
  struct journal *j = container_of(q, struct journal, base);
  struct jreader *r = &j->rd[reader];
  *out = NULL;
  int64_t now = journal__loop_ms(j);
  if (r->paced && !r->split && r->utk.records > 0 &&
      r->utk.points >= SPLIT_BATCHES * (uint64_t)r->pace.batch_points) {
    /* Far behind: what is there now is the backlog; what comes from now
     * on is live and is not held back by it. */
    r->split = true;
    r->live_from = j->next_seq;
    r->live = (struct jcur){j->next_seq, NULL, 0};
    r->lutk = (struct jcount){0};
    r->last_live = false;
    r->tokens = 0;
    r->tokens_ms = now;
    uint32_t held = 0;
    if (log_limit_allow(&r->split_lim, now, LOG_BURST, 60000, &held)) {
      log_info("journal",
               "%s is %" PRIu64
               " points behind: sending them in order%s while new points "
               "go ahead%s",
               r->name, r->utk.points,
               j->st.replay_rate ? " at the replay rate" : "",
               SUPPRESSED(held));
    }
  }
  int rc;
  if (!r->split) {
    rc = take_run(j, reader, &r->back, j->next_seq, false, max_points,
                  max_bytes, out);
  } else {
    int64_t a, b;
    bool ld = live_due(j, r, now, &a);
    bool bk = back_ok(j, r, now, &b);
    if (ld && (!bk || !r->last_live)) {
      rc = take_run(j, reader, &r->live, j->next_seq, true, max_points,
                    max_bytes, out);
      r->last_live = true;
    } else if (bk) {
      rc = take_run(j, reader, &r->back, r->live_from, false, max_points,
                    max_bytes, out);
      r->last_live = false;
      if (*out && j->st.replay_rate) {
        r->tokens -= (double)(*out)->npoints;
      }
      if (r->back.seq >= r->live_from) {
        merge(j, reader);
        log_debug("journal", "%s caught up with its backlog", r->name);
      }
    } else {
      rc = IOCD_OK;
    }
  }
  journal__advance_conf(r);
  journal__evict(j);
  return rc;
}

void journal__confirm(struct queue *q, unsigned reader,
                      const struct sbatch *b) {
  struct journal *j = container_of(q, struct journal, base);
  struct jreader *r = &j->rd[reader];
  for (size_t i = 0; i < r->nouts; i++) {
    if (r->outs[i].first == b->first_seq && !r->outs[i].confirmed) {
      r->outs[i].confirmed = true;
      r->pending -= b->npoints;
      r->pending_bytes -= b->len;
      /* Confirmed runs that touch become one, so that the list stays short
       * while a backlog holds the checkpoint back. */
      if (i + 1 < r->nouts && r->outs[i + 1].confirmed &&
          r->outs[i].end == r->outs[i + 1].first) {
        r->outs[i].end = r->outs[i + 1].end;
        memmove(r->outs + i + 1, r->outs + i + 2,
                (r->nouts - i - 2) * sizeof *r->outs);
        r->nouts--;
      }
      if (i > 0 && r->outs[i - 1].confirmed &&
          r->outs[i - 1].end == r->outs[i].first) {
        r->outs[i - 1].end = r->outs[i].end;
        memmove(r->outs + i, r->outs + i + 1,
                (r->nouts - i - 1) * sizeof *r->outs);
        r->nouts--;
      }
      journal__advance_conf(r);
      journal__set_backlog(r);
      return;
    }
  }
  log_error("journal", "%s confirmed records %" PRIu64 "+%zu it did not take",
            r->name, b->first_seq, b->nrecords);
}

void journal__pace(struct queue *q, unsigned reader, const struct qpace *p) {
  struct journal *j = container_of(q, struct journal, base);
  struct jreader *r = &j->rd[reader];
  r->paced = true;
  r->pace = *p;
  if (r->pace.batch_points == 0) {
    r->pace.batch_points = 1;
  }
  if (r->pace.batch_bytes == 0) {
    r->pace.batch_bytes = 1;
  }
}
