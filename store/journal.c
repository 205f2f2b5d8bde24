/*
 * The write-ahead journal behind the store: every accepted message becomes
 * one record appended to a segment file under <data_dir>/journal before the
 * loop waits again, and the outputs read the records back in order, from
 * memory while they are recent and from the segment files otherwise. Each
 * output has a checkpoint (the first record it has not confirmed); a segment
 * is deleted once every checkpoint is past it. At start the segments are
 * scanned with their checksums, damaged records are reported and skipped,
 * and every output resumes after its checkpoint.
 *
 * Writes are grouped: append copies the record into a buffer, and a
 * uv_check_t writes that buffer with one write(2) right after the I/O
 * callbacks of the iteration ran (libmosquitto's loop_read and the messages
 * it delivered). fdatasync runs never, every interval on the thread pool, or
 * after each write. docs/durability.md states what that guarantees.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/clock.h"
#include "core/container.h"
#include "core/file.h"
#include "core/log.h"
#include "store/journal_int.h"

#define SEG_DIGITS 16
#define SEG_SUFFIX ".seg"
/* Segment files are read back in windows of this size. */
#define READ_CHUNK ((size_t)1 << 20)
/* A reader this many batches behind drains that backlog alongside the live
 * records instead of strictly before them. */
#define SPLIT_BATCHES 4
#define RETRY_MS 1000
#define LOG_BURST 5
#define LOG_WINDOW_MS 10000

/* ---- The record format ------------------------------------------------- */

static void put16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) {
    p[i] = (unsigned char)(v >> (8 * i));
  }
}

static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) {
    p[i] = (unsigned char)(v >> (8 * i));
  }
}

static uint16_t get16(const unsigned char *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) {
    v = (v << 8) | p[i];
  }
  return v;
}

static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) {
    v = (v << 8) | p[i];
  }
  return v;
}

static uint32_t record_crc(const unsigned char *hdr,
                           const unsigned char *payload, size_t len) {
  uLong c = crc32(0L, Z_NULL, 0);
  c = crc32(c, hdr, 12);
  c = crc32(c, hdr + 16, JOURNAL_HDR - 16);
  if (len > 0) {
    c = crc32(c, payload, (uInt)len);
  }
  return (uint32_t)c;
}

int journal__encode(struct buf *out, uint64_t seq, int64_t wall_ms,
                    const char *name, size_t name_len, const uint32_t *ends,
                    uint32_t npoints, const char *lp, size_t lp_len) {
  if (npoints == 0) {
    return IOCD_EINVAL;
  }
  if (name_len > JOURNAL_NAME_MAX || lp_len > JOURNAL_RECORD_MAX ||
      npoints > JOURNAL_RECORD_MAX / 4) {
    return IOCD_ETOOBIG;
  }
  size_t payload = name_len + (size_t)npoints * 4 + lp_len;
  if (payload > JOURNAL_RECORD_MAX) {
    return IOCD_ETOOBIG;
  }
  int rc = buf_reserve(out, JOURNAL_HDR + payload);
  if (rc) {
    return rc;
  }
  unsigned char *h = (unsigned char *)out->data + out->len;
  memcpy(h, JOURNAL_MAGIC, 4);
  put16(h + 4, JOURNAL_VERSION);
  put16(h + 6, (uint16_t)name_len);
  put32(h + 8, (uint32_t)payload);
  put64(h + 16, seq);
  put64(h + 24, (uint64_t)wall_ms);
  put32(h + 32, npoints);
  put32(h + 36, (uint32_t)lp_len);
  unsigned char *p = h + JOURNAL_HDR;
  if (name_len) {
    memcpy(p, name, name_len);
  }
  for (uint32_t i = 0; i < npoints; i++) {
    put32(p + name_len + 4 * (size_t)i, ends[i]);
  }
  if (lp_len) {
    memcpy(p + name_len + 4 * (size_t)npoints, lp, lp_len);
  }
  put32(h + 12, record_crc(h, p, payload));
  out->len += JOURNAL_HDR + payload;
  out->data[out->len] = '\0';
  return IOCD_OK;
}

enum jdecode journal__decode(const void *ptr, size_t avail, struct jview *v) {
  const unsigned char *h = ptr;
  if (avail < JOURNAL_HDR) {
    if (avail >= 4 && memcmp(h, JOURNAL_MAGIC, 4) != 0) {
      return JREC_MAGIC;
    }
    return JREC_SHORT;
  }
  if (memcmp(h, JOURNAL_MAGIC, 4) != 0 || get16(h + 4) != JOURNAL_VERSION) {
    return JREC_MAGIC;
  }
  size_t name_len = get16(h + 6);
  size_t payload = get32(h + 8);
  uint32_t npoints = get32(h + 32);
  size_t lp_len = get32(h + 36);
  if (payload > JOURNAL_RECORD_MAX || npoints == 0 ||
      npoints > JOURNAL_RECORD_MAX / 4 ||
      name_len + (size_t)npoints * 4 + lp_len != payload) {
    return JREC_LENGTH;
  }
  if (avail - JOURNAL_HDR < payload) {
    return JREC_SHORT;
  }
  const unsigned char *p = h + JOURNAL_HDR;
  if (record_crc(h, p, payload) != get32(h + 12)) {
    return JREC_CHECKSUM;
  }
  v->seq = get64(h + 16);
  v->wall_ms = (int64_t)get64(h + 24);
  v->npoints = npoints;
  v->name = (const char *)p;
  v->name_len = name_len;
  v->ends = p + name_len;
  v->lp = (const char *)(p + name_len + 4 * (size_t)npoints);
  v->lp_len = lp_len;
  v->size = JOURNAL_HDR + payload;
  /* The checksum held, so lines that do not tile the line protocol were
   * written that way: still refuse them, the outputs rely on it. */
  uint32_t prev = 0;
  for (uint32_t i = 0; i < npoints; i++) {
    uint32_t e = get32(v->ends + 4 * (size_t)i);
    if (e <= prev || e > lp_len) {
      return JREC_LENGTH;
    }
    prev = e;
  }
  if (prev != lp_len) {
    return JREC_LENGTH;
  }
  return JREC_OK;
}

uint32_t journal__end(const struct jview *v, uint32_t i) {
  return get32(v->ends + 4 * (size_t)i);
}

const char *journal__decode_text(enum jdecode d) {
  switch (d) {
    case JREC_OK:
      return "ok";
    case JREC_SHORT:
      return "truncated record";
    case JREC_MAGIC:
      return "no record header";
    case JREC_LENGTH:
      return "bad record length";
    case JREC_CHECKSUM:
      return "bad checksum";
  }
  return "damaged record";
}

/* ---- Structures -------------------------------------------------------- */

struct jcount {
  uint64_t points, bytes, records;
};

/* A damaged byte range of a segment, skipped when reading. */
struct jbad {
  uint64_t from, to;
};

struct jseg {
  struct jseg *prev, *next;
  uint64_t first_seq; /* from the file name */
  uint64_t end_seq;   /* one past its last record */
  uint64_t bytes;     /* in the file, plus what is still buffered (active) */
  uint64_t points;
  int64_t first_wall_ms, last_wall_ms;
  int fd; /* the active segment, once its file exists; else -1 */
  /* What reader r has not taken, and the part of it in r's live region. */
  struct jcount utk[STORE_MAX_OUTPUTS];
  struct jcount live[STORE_MAX_OUTPUTS];
  uint64_t *src_utk; /* utk[0].points by source */
  size_t nsrc;
  struct jbad *bad;
  size_t nbad;
};

/* A recent record kept in memory: line_end[npoints] then the line
 * protocol. */
struct jrec {
  uint64_t seq;
  int64_t wall_ms;
  int64_t loop_ms;
  struct jseg *seg;
  uint64_t off; /* of the record in seg's file */
  uint32_t source;
  uint32_t npoints;
  size_t len;
  uint32_t line_end[];
};

/* Where a reader goes on: seq, and when seq is no longer in memory, the
 * file position of the first record at or after it. */
struct jcur {
  uint64_t seq;
  struct jseg *seg;
  uint64_t off;
};

/* A run of sequence numbers a reader took (a batch) or skipped (records
 * lost to damage or deleted from a full journal, confirmed at once). */
struct jout {
  uint64_t first, end;
  int64_t wall_ms;
  bool confirmed;
};

struct jreader {
  char *name;
  struct jcur back; /* first record not taken, in order */
  /* Split: records from live_from on are live, taken through `live`,
   * while `back` drains [back.seq, live_from) alongside. */
  bool split;
  uint64_t live_from;
  struct jcur live;
  struct jcount utk;      /* not taken, both regions */
  struct jcount lutk;     /* not taken, live region */
  uint64_t pending;       /* points not confirmed */
  uint64_t pending_bytes; /* their line protocol */
  uint64_t conf;          /* first sequence number not confirmed */
  uint64_t saved;         /* the checkpoint on disk; UINT64_MAX: none */
  struct jout *outs;      /* taken or skipped runs not yet folded into conf */
  size_t nouts, capouts;
  bool paced;
  struct qpace pace;
  double tokens;
  int64_t tokens_ms;
  bool last_live;
  struct log_limit split_lim;
  struct metric *m_backlog;
  struct metric *m_oldest;
  struct metric *m_dropped;
};

struct journal;

/* The loop handles live apart from the journal, so that freeing it needs no
 * wait: they close on the loop and free themselves. */
struct jhandles {
  uv_check_t check;
  uv_timer_t tick;
  struct journal *j; /* NULL once the journal is freed */
  int open;
};

struct jckpt {
  char *path;
  uint64_t seq;
  unsigned reader;
  int err;
};

/* Disk work for the thread pool: fdatasync of segment files (descriptors
 * the job owns), the directory, then the checkpoints. It copies everything
 * it needs so that it may outlive the journal. */
struct jjob {
  uv_work_t work;
  struct journal *j;
  bool sync;
  int *fds;
  size_t nfds;
  unsigned synced;
  int sync_err;
  char *dir;
  bool sync_dir;
  struct jckpt ck[STORE_MAX_OUTPUTS];
  size_t nck;
  /* The checkpoints of a journal freed while this ran, written after it. */
  struct jckpt fin[STORE_MAX_OUTPUTS];
  size_t nfin;
};

struct journal {
  struct queue base;
  uv_loop_t *loop;
  struct journal_settings st;
  char *dir;
  struct journal_hooks hooks;
  struct stats *stats;
  int lock_fd;

  struct jseg *head, *tail; /* oldest first */
  size_t nsegs;
  uint64_t bytes;
  struct jseg *active; /* the tail while it takes records, else NULL */

  uint64_t next_seq;
  uint64_t flushed_seq; /* records below it are in their files */
  struct buf wbuf;      /* records of the active segment not written yet */

  struct jrec **ring; /* records [cache_first, next_seq) */
  size_t ring_cap, ring_head, count;
  uint64_t cache_first;
  size_t cache_mem;

  struct jreader rd[STORE_MAX_OUTPUTS];
  unsigned nreaders;

  int rfd; /* reading back: the file of segment rfd_seg */
  uint64_t rfd_seg;
  char *rb; /* a window [rb_off, rb_off + rb_len) of that file */
  size_t rb_cap, rb_len;
  uint64_t rb_off;

  struct jhandles *h;
  struct jjob *job;
  int *retired; /* closed segments' descriptors awaiting fdatasync */
  size_t nretired, capretired;
  bool dirty;     /* written since the last fdatasync */
  bool dir_dirty; /* a segment file was created since */
  int64_t last_ckpt_ms;
  int64_t last_sync_ms;
  bool ready; /* opened: free writes what is buffered and the checkpoints */

  bool werr; /* writing failed; retried every RETRY_MS */
  int werr_errno;
  int64_t werr_since_ms;
  /* A write failed half-way and its part could not be cut off again: the
   * buffer starts inside a record until the next whole write. */
  bool torn;
  int ckpt_errno; /* the last checkpoint write failed with it; else 0 */
  struct log_limit werr_lim;
  struct log_limit ckpt_lim;
  struct log_limit full_lim;
  struct log_limit corrupt_lim;

  uint32_t name_id; /* the last name looked up */
  char *name_last;
  size_t name_last_len;

  struct metric *m_bytes;
  struct metric *m_segments;
  struct metric *m_corrupt;
  struct metric *m_werrors;
  struct metric *m_nospace;
  struct metric *m_fsyncs;
};

static int64_t loop_ms(const struct journal *j) {
  return (int64_t)uv_now(j->loop);
}

static int64_t wall_ms(void) {
  return clock_realtime_ns() / NS_PER_MS;
}

static void seg_name(const struct jseg *g, char *out, size_t n) {
  snprintf(out, n, "%0*" PRIu64 SEG_SUFFIX, SEG_DIGITS, g->first_seq);
}

/* dir + "/" + file, malloc'd. */
static char *path_join(const char *dir, const char *file) {
  size_t a = strlen(dir), b = strlen(file);
  char *p = malloc(a + b + 2);
  if (!p) {
    return NULL;
  }
  memcpy(p, dir, a);
  p[a] = '/';
  memcpy(p + a + 1, file, b + 1);
  return p;
}

static char *seg_path(const struct journal *j, const struct jseg *g) {
  char name[64];
  seg_name(g, name, sizeof name);
  return path_join(j->dir, name);
}

static char *ckpt_path(const struct journal *j, const struct jreader *r) {
  char file[128];
  snprintf(file, sizeof file, "checkpoint.%s", r->name);
  return path_join(j->dir, file);
}

/* ---- Checkpoint files (also written on the thread pool) ---------------- */

/* Writes "SEQ\n" to path atomically (core/file.h), so that a reader sees
 * the old or the new checkpoint, never half of one, and with sync the new
 * one survives a power loss. Returns 0 or an errno value. */
static int write_checkpoint(const char *path, uint64_t seq, bool sync) {
  char text[32];
  int len = snprintf(text, sizeof text, "%" PRIu64 "\n", seq);
  return file_write_atomic(path, text, (size_t)len, sync);
}

/* Reads a checkpoint file. Returns 1 with *seq, 0 when there is none, -1
 * when it is not one (reported by the caller). */
static int read_checkpoint(const char *path, uint64_t *seq) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno == ENOENT ? 0 : -1;
  }
  char text[40];
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) {
    return -1;
  }
  text[n] = '\0';
  if (text[0] < '0' || text[0] > '9') {
    return -1;
  }
  errno = 0;
  char *end;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno || (*end != '\n' && *end != '\0')) {
    return -1;
  }
  *seq = (uint64_t)v;
  return 1;
}

/* ---- Growing arrays ---------------------------------------------------- */

/* A zeroed array of cap elements of size bytes that starts with the used
 * elements of old, which it replaces (old is freed). Returns NULL when out
 * of memory (or cap * size overflows), and old is then left as it was. The
 * one copy-and-swap behind every array here that grows. */
static void *regrow(void *old, size_t used, size_t cap, size_t size) {
  void *v = calloc(cap, size);
  if (!v) {
    return NULL;
  }
  if (used) {
    memcpy(v, old, used * size);
  }
  free(old);
  return v;
}

/* Makes room for index id in the per-source counts *v (*n of them), with
 * room for a few more sources past it; new counts are zero. */
static int counts_fit(uint64_t **v, size_t *n, uint32_t id) {
  if (id < *n) {
    return IOCD_OK;
  }
  size_t cap = (size_t)id + 8;
  uint64_t *nv = regrow(*v, *n, cap, sizeof *nv);
  if (!nv) {
    return IOCD_ENOMEM;
  }
  *v = nv;
  *n = cap;
  return IOCD_OK;
}

/* ---- Segments ---------------------------------------------------------- */

static struct jseg *seg_new(uint64_t first_seq) {
  struct jseg *g = calloc(1, sizeof *g);
  if (!g) {
    return NULL;
  }
  g->first_seq = first_seq;
  g->end_seq = first_seq;
  g->fd = -1;
  return g;
}

static void seg_link(struct journal *j, struct jseg *g) {
  g->prev = j->tail;
  g->next = NULL;
  if (j->tail) {
    j->tail->next = g;
  } else {
    j->head = g;
  }
  j->tail = g;
  j->nsegs++;
  j->bytes += g->bytes;
}

/* Makes room for the per-source count of source id. */
static int seg_src(struct jseg *g, uint32_t id) {
  return counts_fit(&g->src_utk, &g->nsrc, id);
}

static int seg_add_bad(struct jseg *g, uint64_t from, uint64_t to) {
  struct jbad *v = regrow(g->bad, g->nbad, g->nbad + 1, sizeof *v);
  if (!v) {
    return IOCD_ENOMEM;
  }
  g->bad = v;
  g->bad[g->nbad++] = (struct jbad){from, to};
  return IOCD_OK;
}

static const struct jbad *seg_find_bad(const struct jseg *g, uint64_t off) {
  for (size_t i = 0; i < g->nbad; i++) {
    if (g->bad[i].from == off) {
      return &g->bad[i];
    }
  }
  return NULL;
}

static void seg_free(struct jseg *g) {
  if (!g) {
    return;
  }
  free(g->src_utk);
  free(g->bad);
  free(g);
}

/* The bytes of g that are in its file (the active segment's buffered tail
 * is not). */
static uint64_t seg_readable(const struct journal *j, const struct jseg *g) {
  if (g == j->active) {
    return g->bytes - j->wbuf.len;
  }
  return g->bytes;
}

static void count_add(struct jcount *c, uint64_t points, uint64_t bytes) {
  c->points += points;
  c->bytes += bytes;
  c->records++;
}

static void count_sub(struct jcount *c, uint64_t points, uint64_t bytes) {
  c->points -= points;
  c->bytes -= bytes;
  c->records--;
}

/* ---- Reading back ------------------------------------------------------ */

static void rb_forget(struct journal *j) {
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
    rb_forget(j);
    char *path = seg_path(j, g);
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
static enum jdecode read_at(struct journal *j, struct jseg *g, uint64_t off,
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
  size_t size = JOURNAL_HDR + (size_t)get32(p + 8);
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
static uint64_t resync(struct journal *j, struct jseg *g, uint64_t off,
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
    if (read_at(j, g, p, end, v) == JREC_OK) {
      return p;
    }
    p++;
  }
  return end;
}

/* The source id of a record read back, looked up by its name. */
static int name_to_id(struct journal *j, const char *name, size_t len,
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

/* ---- The memory tail ----------------------------------------------------- */

static struct jrec *rec_at(const struct journal *j, uint64_t seq) {
  return j->ring[(j->ring_head + (size_t)(seq - j->cache_first)) &
                 (j->ring_cap - 1)];
}

static char *rec_data(struct jrec *r) {
  return (char *)(r->line_end + r->npoints);
}

static size_t rec_mem(const struct jrec *r) {
  return sizeof *r + (size_t)r->npoints * sizeof(uint32_t) + r->len;
}

static int ring_grow(struct journal *j) {
  size_t cap = j->ring_cap ? j->ring_cap * 2 : 256;
  if (cap > SIZE_MAX / sizeof(struct jrec *)) {
    return IOCD_ENOMEM;
  }
  struct jrec **ring = malloc(cap * sizeof *ring);
  if (!ring) {
    return IOCD_ENOMEM;
  }
  for (size_t i = 0; i < j->count; i++) {
    ring[i] = j->ring[(j->ring_head + i) & (j->ring_cap - 1)];
  }
  free(j->ring);
  j->ring = ring;
  j->ring_cap = cap;
  j->ring_head = 0;
  return IOCD_OK;
}

/* Drops the oldest record from memory; a reader waiting for it will read it
 * from its file. */
static void evict_front(struct journal *j) {
  struct jrec *r = j->ring[j->ring_head];
  for (unsigned i = 0; i < j->nreaders; i++) {
    struct jreader *rd = &j->rd[i];
    if (rd->back.seq == r->seq) {
      rd->back.seg = r->seg;
      rd->back.off = r->off;
    }
    if (rd->split && rd->live.seq == r->seq) {
      rd->live.seg = r->seg;
      rd->live.off = r->off;
    }
  }
  j->cache_mem -= rec_mem(r);
  free(r);
  j->ring[j->ring_head] = NULL;
  j->ring_head = (j->ring_head + 1) & (j->ring_cap - 1);
  j->count--;
  j->cache_first++;
}

static uint64_t min_cursor(const struct journal *j) {
  uint64_t m = j->next_seq;
  for (unsigned i = 0; i < j->nreaders; i++) {
    const struct jreader *r = &j->rd[i];
    if (r->back.seq < m) {
      m = r->back.seq;
    }
    if (r->split && r->live.seq < m) {
      m = r->live.seq;
    }
  }
  return m;
}

/* Records every reader has taken are not needed in memory any more; past
 * the memory budget, the oldest records already in their files go too. */
static void evict(struct journal *j) {
  uint64_t m = min_cursor(j);
  while (j->count > 0 && j->cache_first < m) {
    evict_front(j);
  }
  while (j->count > 0 && j->cache_mem > j->st.memory_bytes &&
         j->cache_first < j->flushed_seq) {
    evict_front(j);
  }
}

/* ---- Metrics ----------------------------------------------------------- */

static void set_gauges(struct journal *j) {
  stat_set(j->m_bytes, (double)j->bytes);
  stat_set(j->m_segments, (double)j->nsegs);
}

static void set_backlog(struct jreader *r) {
  stat_set(r->m_backlog, (double)r->pending);
}

/* The append time of the oldest record r has not confirmed, or -1. */
static int64_t oldest_wall(struct journal *j, struct jreader *r) {
  if (r->nouts > 0 && r->outs[0].first < r->back.seq && !r->outs[0].confirmed) {
    return r->outs[0].wall_ms;
  }
  uint64_t seq = r->back.seq;
  uint64_t bound = r->split ? r->live_from : j->next_seq;
  if (seq >= bound) {
    if (r->nouts > 0 && !r->outs[0].confirmed) {
      return r->outs[0].wall_ms;
    }
    return -1;
  }
  if (seq >= j->cache_first) {
    return rec_at(j, seq)->wall_ms;
  }
  struct jseg *g = r->back.seg;
  if (!g) {
    return -1;
  }
  struct jview v;
  if (read_at(j, g, r->back.off, seg_readable(j, g), &v) == JREC_OK) {
    return v.wall_ms;
  }
  return g->first_wall_ms;
}

static void set_oldest(struct journal *j) {
  int64_t now = wall_ms();
  for (unsigned i = 0; i < j->nreaders; i++) {
    struct jreader *r = &j->rd[i];
    int64_t w = r->pending ? oldest_wall(j, r) : -1;
    double age = w < 0 || now < w ? 0 : (double)(now - w) / 1000.0;
    stat_set(r->m_oldest, age);
  }
}

/* ---- Writing ----------------------------------------------------------- */

static void check_start(struct journal *j);

static bool no_space(int err) {
  return err == ENOSPC || err == EDQUOT;
}

static void set_werr(struct journal *j, int err, const char *what,
                     const struct jseg *g) {
  stat_inc(j->m_werrors);
  if (no_space(err)) {
    stat_inc(j->m_nospace);
  }
  int64_t now = loop_ms(j);
  if (!j->werr) {
    j->werr = true;
    j->werr_since_ms = now;
  }
  j->werr_errno = err;
  uint32_t held = 0;
  if (log_limit_allow(&j->werr_lim, now, 1, 60000, &held)) {
    char name[64];
    seg_name(g, name, sizeof name);
    log_error("journal",
              "%s %s/%s failed: %s; %zu bytes kept in memory and intake "
              "paused, retrying every second%s",
              what, j->dir, name, strerror(err), j->wbuf.len, SUPPRESSED(held));
  }
}

/* Writes the buffered records to the active segment's file, creating it
 * first if needed, and syncs it under the always policy. Returns IOCD_OK or
 * IOCD_EIO (the data stays buffered; the tick retries). */
static int flush(struct journal *j) {
  struct jseg *g = j->active;
  if (j->wbuf.len > 0) {
    if (g->fd < 0) {
      char *path = seg_path(j, g);
      if (!path) {
        set_werr(j, ENOMEM, "creating", g);
        return IOCD_EIO;
      }
      g->fd =
          open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
      int err = errno;
      free(path);
      if (g->fd < 0) {
        set_werr(j, err, "creating", g);
        return IOCD_EIO;
      }
      if (j->st.fsync == JOURNAL_FSYNC_ALWAYS) {
        (void)file_sync_dir(j->dir);
      } else if (j->st.fsync == JOURNAL_FSYNC_INTERVAL) {
        j->dir_dirty = true;
      }
    }
    /* The file ends at a record boundary before and after: a write that
     * fails half-way (a disk filling up) is cut off again and goes whole
     * with the next one, so the buffer always starts with a record. */
    uint64_t base = seg_readable(j, g);
    size_t done = 0;
    while (done < j->wbuf.len) {
      ssize_t w = write(g->fd, j->wbuf.data + done, j->wbuf.len - done);
      if (w >= 0) {
        done += (size_t)w;
        continue;
      }
      if (errno == EINTR) {
        continue;
      }
      int err = errno;
      if (done > 0 && ftruncate(g->fd, (off_t)base) != 0) {
        /* The part stays in the file; the rest follows it. */
        buf_consume(&j->wbuf, done);
        j->torn = true;
      }
      set_werr(j, err, "writing", g);
      return IOCD_EIO;
    }
    buf_consume(&j->wbuf, done);
    j->torn = false;
    j->flushed_seq = j->next_seq;
    j->dirty = true;
  }
  if (j->st.fsync == JOURNAL_FSYNC_ALWAYS && j->dirty && g && g->fd >= 0) {
    if (fdatasync(g->fd) != 0) {
      set_werr(j, errno, "fdatasync of", g);
      return IOCD_EIO;
    }
    stat_inc(j->m_fsyncs);
    j->dirty = false;
  }
  if (j->werr) {
    log_info("journal", "writing %s works again after %.1f s", j->dir,
             (double)(loop_ms(j) - j->werr_since_ms) / 1000.0);
    j->werr = false;
  }
  evict(j);
  return IOCD_OK;
}

static void on_check(uv_check_t *h) {
  struct jhandles *hs = container_of(h, struct jhandles, check);
  struct journal *j = hs->j;
  uv_check_stop(h);
  if (j && !j->werr) {
    (void)flush(j);
  }
}

static void check_start(struct journal *j) {
  if (!j->werr && !uv_is_active((uv_handle_t *)&j->h->check)) {
    uv_check_start(&j->h->check, on_check);
  }
}

/* Ends the active segment: later records go to a new file. Its descriptor
 * is synced per policy before it is closed. */
static void retire_active(struct journal *j) {
  struct jseg *g = j->active;
  j->active = NULL;
  if (!g || g->fd < 0) {
    return;
  }
  int fd = g->fd;
  g->fd = -1;
  if (j->st.fsync == JOURNAL_FSYNC_INTERVAL && j->dirty) {
    if (j->nretired == j->capretired) {
      size_t cap = j->capretired ? j->capretired * 2 : 4;
      int *v = malloc(cap * sizeof *v);
      if (v) {
        if (j->nretired) {
          memcpy(v, j->retired, j->nretired * sizeof *v);
        }
        free(j->retired);
        j->retired = v;
        j->capretired = cap;
      }
    }
    if (j->nretired < j->capretired) {
      j->retired[j->nretired++] = fd;
      return;
    }
    /* No memory to hand it to the thread pool: sync it here. */
    if (fdatasync(fd) == 0) {
      stat_inc(j->m_fsyncs);
    }
  }
  close(fd);
}

/* ---- Checkpoints and deletion ------------------------------------------ */

/* Folds confirmed runs at the front into conf. */
static void advance_conf(struct jreader *r) {
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
  struct jout *v = regrow(r->outs, r->nouts, cap, sizeof *v);
  if (!v) {
    return IOCD_ENOMEM;
  }
  r->outs = v;
  r->capouts = cap;
  return IOCD_OK;
}

/* Records that a run [first, end) was taken (confirmed false) or skipped
 * (confirmed true), keeping the runs in order. */
static int add_out(struct jreader *r, uint64_t first, uint64_t end,
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

static void delete_seg(struct journal *j, struct jseg *g) {
  for (unsigned i = 0; i < j->nreaders; i++) {
    struct jreader *r = &j->rd[i];
    if (r->back.seg == g) {
      r->back.seg = g->next;
      r->back.off = 0;
    }
    if (r->live.seg == g) {
      r->live.seg = g->next;
      r->live.off = 0;
    }
  }
  if (j->rfd_seg == g->first_seq) {
    rb_forget(j);
  }
  char *path = seg_path(j, g);
  if (path && unlink(path) != 0 && errno != ENOENT) {
    log_warn("journal", "cannot delete %s: %s", path, strerror(errno));
  }
  free(path);
  if (g->prev) {
    g->prev->next = g->next;
  } else {
    j->head = g->next;
  }
  if (g->next) {
    g->next->prev = g->prev;
  } else {
    j->tail = g->prev;
  }
  j->nsegs--;
  j->bytes -= g->bytes;
  seg_free(g);
}

/* The first record some reader has not confirmed. */
static uint64_t min_conf(const struct journal *j) {
  uint64_t m = UINT64_MAX;
  for (unsigned i = 0; i < j->nreaders; i++) {
    if (j->rd[i].conf < m) {
      m = j->rd[i].conf;
    }
  }
  return m;
}

/* Deletes the segments every reader has confirmed, whether or not their
 * checkpoints are on disk yet: a checkpoint only spares a restart sending
 * confirmed records again, and a reader whose checkpoint is older than the
 * oldest segment resumes at that segment. So a full disk, on which no
 * checkpoint can be written, frees itself as the outputs confirm. */
static void delete_done(struct journal *j) {
  uint64_t m = min_conf(j);
  evict(j);
  while (j->head && j->head != j->active && j->head->end_seq <= m &&
         j->head->end_seq <= min_cursor(j) &&
         j->cache_first >= j->head->end_seq) {
    delete_seg(j, j->head);
  }
  set_gauges(j);
}

/* Moves the records still in memory off the segment being written onto a
 * new one (its file is created by the next write) when a write failed and
 * every record already in the file is confirmed, so that delete_done can
 * delete that file: a disk that the active segment fills alone frees
 * itself too. Every record of the file is then taken by every reader, so
 * what the segment's counts hold belongs to the records that move. */
static void move_tail(struct journal *j) {
  struct jseg *g = j->active;
  if (!g || g->fd < 0 || j->torn || j->wbuf.len < JOURNAL_HDR ||
      g->bytes == j->wbuf.len) {
    return;
  }
  const unsigned char *h = (const unsigned char *)j->wbuf.data;
  uint64_t first = get64(h + 16);
  if (min_conf(j) < first) {
    return;
  }
  struct jseg *n = seg_new(first);
  if (!n) {
    return;
  }
  uint64_t infile = g->bytes - j->wbuf.len;
  n->first_wall_ms = (int64_t)get64(h + 24);
  for (size_t off = 0; off + JOURNAL_HDR <= j->wbuf.len;
       off += JOURNAL_HDR + get32(h + off + 8)) {
    n->points += get32(h + off + 32);
  }
  n->end_seq = g->end_seq;
  n->bytes = j->wbuf.len;
  n->last_wall_ms = g->last_wall_ms;
  memcpy(n->utk, g->utk, sizeof n->utk);
  memcpy(n->live, g->live, sizeof n->live);
  memset(g->utk, 0, sizeof g->utk);
  memset(g->live, 0, sizeof g->live);
  n->src_utk = g->src_utk;
  n->nsrc = g->nsrc;
  g->src_utk = NULL;
  g->nsrc = 0;
  g->end_seq = first;
  g->points -= n->points;
  g->bytes = infile;
  j->bytes -= n->bytes;
  for (uint64_t seq = first > j->cache_first ? first : j->cache_first;
       seq < j->next_seq; seq++) {
    struct jrec *r = rec_at(j, seq);
    r->seg = n;
    r->off -= infile;
  }
  for (unsigned i = 0; i < j->nreaders; i++) {
    struct jcur *cs[2] = {&j->rd[i].back, &j->rd[i].live};
    for (int c = 0; c < 2; c++) {
      if (cs[c]->seg == g) {
        cs[c]->seg = n;
        cs[c]->off = cs[c]->off > infile ? cs[c]->off - infile : 0;
      }
    }
  }
  /* Deleting the file frees its blocks only once no descriptor is left. */
  close(g->fd);
  g->fd = -1;
  j->dirty = false;
  seg_link(j, n);
  j->active = n;
  char gname[64], nname[64];
  seg_name(g, gname, sizeof gname);
  seg_name(n, nname, sizeof nname);
  uint64_t moved = n->end_seq - n->first_seq;
  log_warn(
      "journal",
      "%s: every record in %s is confirmed: it is deleted, and the %" PRIu64
      " record%s still in memory go%s to %s",
      j->dir, gname, moved, moved == 1 ? "" : "s", moved == 1 ? "es" : "",
      nname);
  delete_done(j);
}

/* A write failed: free what the outputs have confirmed. */
static void make_room(struct journal *j) {
  delete_done(j);
  move_tail(j);
}

/* ---- The thread-pool job ------------------------------------------------ */

static void job_free(struct jjob *job) {
  for (size_t i = 0; i < job->nck; i++) {
    free(job->ck[i].path);
  }
  for (size_t i = 0; i < job->nfin; i++) {
    free(job->fin[i].path);
  }
  free(job->fds);
  free(job->dir);
  free(job);
}

static void job_work(uv_work_t *w) {
  struct jjob *job = container_of(w, struct jjob, work);
  for (size_t i = 0; i < job->nfds; i++) {
    if (fdatasync(job->fds[i]) == 0) {
      job->synced++;
    } else if (!job->sync_err) {
      job->sync_err = errno;
    }
    close(job->fds[i]);
  }
  if (job->sync_dir) {
    int rc = file_sync_dir(job->dir);
    if (rc && !job->sync_err) {
      job->sync_err = rc;
    }
  }
  for (size_t i = 0; i < job->nck; i++) {
    job->ck[i].err =
        write_checkpoint(job->ck[i].path, job->ck[i].seq, job->sync);
  }
}

static void job_done(uv_work_t *w, int status) {
  (void)status;
  struct jjob *job = container_of(w, struct jjob, work);
  struct journal *j = job->j;
  if (!j) {
    /* The journal closed meanwhile: its last checkpoints go after ours,
     * so that an older one cannot replace them. */
    for (size_t i = 0; i < job->nfin; i++) {
      int rc = write_checkpoint(job->fin[i].path, job->fin[i].seq, job->sync);
      if (rc) {
        log_error("journal", "writing %s failed: %s", job->fin[i].path,
                  strerror(rc));
      }
    }
    job_free(job);
    return;
  }
  j->job = NULL;
  stat_add(j->m_fsyncs, job->synced);
  if (job->sync_err) {
    stat_inc(j->m_werrors);
    log_error("journal", "fdatasync in %s failed: %s", j->dir,
              strerror(job->sync_err));
  }
  int failed = 0;
  for (size_t i = 0; i < job->nck; i++) {
    struct jreader *r = &j->rd[job->ck[i].reader];
    int err = job->ck[i].err;
    if (err) {
      failed = err;
      stat_inc(j->m_werrors);
      if (no_space(err)) {
        stat_inc(j->m_nospace);
      }
      /* Apart from the segments' limit: a failing segment write must not
       * hide this one until exit. */
      uint32_t held = 0;
      if (log_limit_allow(&j->ckpt_lim, loop_ms(j), 1, 60000, &held)) {
        log_error("journal",
                  "writing %s failed: %s; retrying every second (segments "
                  "the outputs confirmed are deleted all the same)%s",
                  job->ck[i].path, strerror(err), SUPPRESSED(held));
      }
    } else {
      r->saved = job->ck[i].seq;
    }
  }
  if (job->nck > 0) {
    if (!failed && j->ckpt_errno) {
      log_info("journal", "writing the checkpoints in %s works again", j->dir);
    }
    j->ckpt_errno = failed;
  }
  job_free(job);
  delete_done(j);
}

/* Starts the disk work that is due: fdatasync (interval policy), and the
 * checkpoints that moved once JOURNAL_CHECKPOINT_MS passed. */
static void job_start(struct journal *j) {
  if (j->job) {
    return;
  }
  int64_t now = loop_ms(j);
  /* The timer may fire a millisecond early by the loop's clock: a tenth of
   * slack keeps "every second" from becoming every other second. */
  bool ckpt_due = now - j->last_ckpt_ms >=
                  JOURNAL_CHECKPOINT_MS - JOURNAL_CHECKPOINT_MS / 10;
  bool want_ck = false;
  for (unsigned i = 0; ckpt_due && i < j->nreaders; i++) {
    want_ck = want_ck || j->rd[i].conf != j->rd[i].saved;
  }
  bool interval_due =
      j->st.fsync == JOURNAL_FSYNC_INTERVAL &&
      now - j->last_sync_ms >=
          j->st.fsync_interval_ms - j->st.fsync_interval_ms / 10 &&
      ((j->dirty && j->active && j->active->fd >= 0) || j->dir_dirty);
  /* Closed segments waiting for their fdatasync go whatever the policy is
   * now (a reload may have changed it). */
  bool want_sync = interval_due || j->nretired > 0;
  if (!want_ck && !want_sync) {
    return;
  }
  struct jjob *job = calloc(1, sizeof *job);
  if (!job) {
    return;
  }
  job->j = j;
  job->sync = j->st.fsync != JOURNAL_FSYNC_NEVER;
  job->dir = strdup(j->dir);
  size_t nfds = j->nretired + 1;
  job->fds = malloc(nfds * sizeof *job->fds);
  if (!job->dir || !job->fds) {
    job_free(job);
    return;
  }
  for (size_t i = 0; i < j->nretired; i++) {
    job->fds[job->nfds++] = j->retired[i];
  }
  j->nretired = 0;
  if (interval_due) {
    j->last_sync_ms = now;
    if (j->dirty && j->active && j->active->fd >= 0) {
      int fd = dup(j->active->fd);
      if (fd >= 0) {
        job->fds[job->nfds++] = fd;
        j->dirty = false;
      }
    }
    job->sync_dir = j->dir_dirty;
    j->dir_dirty = false;
  }
  if (want_ck) {
    j->last_ckpt_ms = now;
    for (unsigned i = 0; i < j->nreaders; i++) {
      struct jreader *r = &j->rd[i];
      if (r->conf == r->saved) {
        continue;
      }
      char *path = ckpt_path(j, r);
      if (!path) {
        continue;
      }
      job->ck[job->nck++] = (struct jckpt){path, r->conf, i, 0};
    }
  }
  if (uv_queue_work(j->loop, &job->work, job_work, job_done) != 0) {
    /* It fails only without a work callback: close what the job held. */
    for (size_t i = 0; i < job->nfds; i++) {
      close(job->fds[i]);
    }
    job->nfds = 0;
    job_free(job);
    return;
  }
  j->job = job;
}

static void on_tick(uv_timer_t *t) {
  struct jhandles *hs = container_of(t, struct jhandles, tick);
  struct journal *j = hs->j;
  if (!j) {
    return;
  }
  if (j->werr) {
    make_room(j);
  }
  if (j->werr ||
      (j->wbuf.len > 0 && !uv_is_active((uv_handle_t *)&hs->check))) {
    (void)flush(j);
  }
  job_start(j);
  if (!j->job) {
    delete_done(j);
  }
  set_gauges(j);
  set_oldest(j);
}

/* ---- The queue operations ------------------------------------------------ */

static int64_t tick_ms(const struct journal_settings *st) {
  if (st->fsync == JOURNAL_FSYNC_INTERVAL && st->fsync_interval_ms < RETRY_MS) {
    return st->fsync_interval_ms > 0 ? st->fsync_interval_ms : RETRY_MS;
  }
  return RETRY_MS;
}

/* Drops the oldest closed segment to make room (drop_oldest): what the
 * readers had not taken from it is lost, counted and logged. */
static void drop_oldest(struct journal *j) {
  struct jseg *g = j->head;
  char name[64];
  seg_name(g, name, sizeof name);
  evict(j);
  for (unsigned i = 0; i < j->nreaders; i++) {
    struct jreader *r = &j->rd[i];
    struct jcount lost = g->utk[i];
    stat_add(r->m_dropped, lost.points);
    r->utk.points -= lost.points;
    r->utk.bytes -= lost.bytes;
    r->utk.records -= lost.records;
    r->lutk.points -= g->live[i].points;
    r->lutk.bytes -= g->live[i].bytes;
    r->lutk.records -= g->live[i].records;
    r->pending -= lost.points;
    r->pending_bytes -= lost.bytes;
    if (i == 0) {
      for (size_t s = 0; s < g->nsrc; s++) {
        if (g->src_utk[s]) {
          j->hooks.dropped(j->hooks.ud, (uint32_t)s, g->src_utk[s]);
        }
      }
    }
    if (r->back.seq < g->end_seq) {
      uint64_t to = g->end_seq;
      if (r->split && r->live_from < to) {
        to = r->live_from;
      }
      (void)add_out(r, r->back.seq, to, 0, true);
      r->back.seq = g->end_seq;
      r->back.seg = g->next;
      r->back.off = 0;
    }
    if (r->split && r->live.seq < g->end_seq) {
      (void)add_out(r, r->live.seq, g->end_seq, 0, true);
      r->live.seq = g->end_seq;
      r->live.seg = g->next;
      r->live.off = 0;
    }
    if (r->split && r->back.seq >= r->live_from) {
      r->back = r->live;
      r->split = false;
      r->lutk = (struct jcount){0};
      for (struct jseg *s = j->head; s; s = s->next) {
        s->live[i] = (struct jcount){0};
      }
    }
    advance_conf(r);
    set_backlog(r);
  }
  uint32_t held = 0;
  if (log_limit_allow(&j->full_lim, loop_ms(j), LOG_BURST, LOG_WINDOW_MS,
                      &held)) {
    int64_t now = wall_ms();
    log_error("journal",
              "journal full (max_bytes %" PRIu64 "): deleted %s with %" PRIu64
              " points not yet written to %s, "
              "received %.0f to %.0f s ago%s",
              j->st.max_bytes, name, g->utk[0].points, j->rd[0].name,
              (double)(now - g->first_wall_ms) / 1000.0,
              (double)(now - g->last_wall_ms) / 1000.0, SUPPRESSED(held));
  }
  evict(j);
  /* The readers are past it now; nothing in memory refers to it. */
  delete_seg(j, g);
  set_gauges(j);
}

static int journal_append(struct queue *q, const char *data, size_t len,
                          const uint32_t *line_end, uint32_t npoints,
                          uint32_t source, int64_t now_ms) {
  struct journal *j = container_of(q, struct journal, base);
  const char *name = j->hooks.source_name(j->hooks.ud, source);
  size_t name_len = strlen(name);
  if (npoints == 0 || name_len > JOURNAL_NAME_MAX) {
    return IOCD_EINVAL;
  }
  size_t payload = name_len + (size_t)npoints * 4 + len;
  if (len > JOURNAL_RECORD_MAX || npoints > JOURNAL_RECORD_MAX / 4 ||
      payload > JOURNAL_RECORD_MAX) {
    return IOCD_EFULL;
  }
  uint64_t disk = JOURNAL_HDR + payload;
  /* What is not in a file yet lives only in memory: it is bounded. */
  if (j->wbuf.len > 0 && j->wbuf.len + disk > j->st.memory_bytes) {
    return IOCD_EFULL;
  }
  if (j->bytes + disk > j->st.max_bytes &&
      j->st.when_full == JOURNAL_FULL_DROP_OLDEST) {
    while (j->bytes + disk > j->st.max_bytes && j->head &&
           j->head != j->active) {
      drop_oldest(j);
    }
  }
  if (j->bytes + disk > j->st.max_bytes) {
    uint32_t held = 0;
    if (log_limit_allow(&j->full_lim, loop_ms(j), LOG_BURST, LOG_WINDOW_MS,
                        &held)) {
      log_error("journal",
                "journal full (%" PRIu64 " of max_bytes %" PRIu64
                " bytes): message from %s not stored%s",
                j->bytes, j->st.max_bytes, name, SUPPRESSED(held));
    }
    return IOCD_EFULL;
  }
  if (j->active && j->active->bytes > 0 &&
      j->active->bytes + disk > j->st.segment_bytes) {
    if (j->wbuf.len == 0 || flush(j) == IOCD_OK) {
      retire_active(j);
    }
  }
  if (j->count == j->ring_cap && ring_grow(j) != IOCD_OK) {
    return IOCD_ENOMEM;
  }
  struct jrec *r = malloc(sizeof *r + (size_t)npoints * sizeof(uint32_t) + len);
  if (!r) {
    return IOCD_ENOMEM;
  }
  struct jseg *g = j->active;
  bool fresh = !g;
  if (fresh) {
    g = seg_new(j->next_seq);
    if (!g) {
      free(r);
      return IOCD_ENOMEM;
    }
  }
  int rc = seg_src(g, source);
  if (!rc) {
    rc = journal__encode(&j->wbuf, j->next_seq, wall_ms(), name, name_len,
                         line_end, npoints, data, len);
  }
  if (rc) {
    free(r);
    if (fresh) {
      seg_free(g);
    }
    return rc == IOCD_ETOOBIG ? IOCD_EFULL : rc;
  }
  if (fresh) {
    seg_link(j, g);
    j->active = g;
  }
  const unsigned char *h =
      (const unsigned char *)j->wbuf.data + j->wbuf.len - disk;
  r->seq = j->next_seq;
  r->wall_ms = (int64_t)get64(h + 24);
  r->loop_ms = now_ms;
  r->seg = g;
  r->off = g->bytes;
  r->source = source;
  r->npoints = npoints;
  r->len = len;
  memcpy(r->line_end, line_end, (size_t)npoints * sizeof(uint32_t));
  if (len) {
    memcpy(rec_data(r), data, len);
  }
  j->ring[(j->ring_head + j->count) & (j->ring_cap - 1)] = r;
  j->count++;
  j->cache_mem += rec_mem(r);

  g->bytes += disk;
  j->bytes += disk;
  g->end_seq = r->seq + 1;
  g->points += npoints;
  if (g->first_wall_ms == 0) {
    g->first_wall_ms = r->wall_ms;
  }
  g->last_wall_ms = r->wall_ms;
  g->src_utk[source] += npoints;
  for (unsigned i = 0; i < j->nreaders; i++) {
    struct jreader *rd = &j->rd[i];
    count_add(&g->utk[i], npoints, len);
    count_add(&rd->utk, npoints, len);
    if (rd->split) {
      count_add(&g->live[i], npoints, len);
      count_add(&rd->lutk, npoints, len);
    }
    rd->pending += npoints;
    rd->pending_bytes += len;
    set_backlog(rd);
  }
  j->next_seq++;
  check_start(j);
  evict(j);
  return IOCD_OK;
}

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
  int64_t t = rec_at(j, r->live.seq)->loop_ms + r->pace.flush_ms;
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

static void journal_level(struct queue *q, unsigned reader,
                          struct qlevel *out) {
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
      out->oldest_ms = rec_at(j, r->back.seq)->loop_ms;
    }
    return;
  }
  int64_t now = loop_ms(j), a, b;
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
    uint64_t end = seg_readable(j, g);
    if (c->off >= end) {
      c->seg = g->next;
      c->off = 0;
      continue;
    }
    const struct jbad *bad = seg_find_bad(g, c->off);
    if (bad) {
      c->off = bad->to;
      continue;
    }
    struct jview v;
    enum jdecode d = read_at(j, g, c->off, end, &v);
    if (d != JREC_OK) {
      /* Damage that appeared after the start scan. */
      struct jview nv;
      uint64_t to = resync(j, g, c->off, end, &nv);
      char name[64];
      seg_name(g, name, sizeof name);
      stat_inc(j->m_corrupt);
      uint32_t held = 0;
      if (log_limit_allow(&j->corrupt_lim, loop_ms(j), LOG_BURST, LOG_WINDOW_MS,
                          &held)) {
        log_error("journal",
                  "journal %s offset %" PRIu64
                  ": %s; skipped (resynchronised "
                  "at offset %" PRIu64 ")%s",
                  name, c->off, journal__decode_text(d), to, SUPPRESSED(held));
      }
      (void)seg_add_bad(g, c->off, to);
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
    rc = name_to_id(j, v.name, v.name_len, &src);
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
    count_add(&taken, v.npoints, v.lp_len);
    count_sub(&g->utk[reader], v.npoints, v.lp_len);
    if (live) {
      count_sub(&g->live[reader], v.npoints, v.lp_len);
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
    struct jrec *e = rec_at(j, c->seq);
    if (b.n > 0 &&
        (points + e->npoints > max_points || b.body.len + e->len > max_bytes)) {
      break;
    }
    rc = bb_add(&b, rec_data(e), e->len, e->line_end, NULL, e->npoints,
                e->source);
    if (rc) {
      break;
    }
    if (first == UINT64_MAX) {
      first = e->seq;
      first_wall = e->wall_ms;
    }
    points += e->npoints;
    count_add(&taken, e->npoints, e->len);
    count_sub(&e->seg->utk[reader], e->npoints, e->len);
    if (live) {
      count_sub(&e->seg->live[reader], e->npoints, e->len);
    }
    if (reader == 0) {
      e->seg->src_utk[e->source] -= e->npoints;
    }
    c->seq++;
  }
  if (first == UINT64_MAX) {
    /* Nothing but skipped numbers (if any). */
    (void)add_out(r, start, c->seq, 0, true);
    bb_cleanup(&b);
    free(sb);
    return rc;
  }
  (void)add_out(r, start, first, 0, true);
  (void)add_out(r, first, c->seq, first_wall, false);
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

static int journal_take(struct queue *q, unsigned reader, size_t max_points,
                        size_t max_bytes, struct sbatch **out) {
  struct journal *j = container_of(q, struct journal, base);
  struct jreader *r = &j->rd[reader];
  *out = NULL;
  int64_t now = loop_ms(j);
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
  advance_conf(r);
  evict(j);
  return rc;
}

static void journal_confirm(struct queue *q, unsigned reader,
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
      advance_conf(r);
      set_backlog(r);
      return;
    }
  }
  log_error("journal", "%s confirmed records %" PRIu64 "+%zu it did not take",
            r->name, b->first_seq, b->nrecords);
}

static void journal_totals(const struct queue *q, uint64_t *points,
                           uint64_t *bytes) {
  const struct journal *j = container_of(q, const struct journal, base);
  /* What waits for the slowest output, in points and in bytes of line
   * protocol, as the in-memory queue counts them; the segment files, which
   * also hold confirmed records until a whole segment is, are
   * iocd_journal_bytes. */
  uint64_t p = 0, b = 0;
  for (unsigned i = 0; i < j->nreaders; i++) {
    if (j->rd[i].pending > p) {
      p = j->rd[i].pending;
    }
    if (j->rd[i].pending_bytes > b) {
      b = j->rd[i].pending_bytes;
    }
  }
  *points = p;
  *bytes = b;
}

static double journal_fill(const struct queue *q) {
  const struct journal *j = container_of(q, const struct journal, base);
  if (j->werr) {
    return 1;
  }
  double f = 0;
  if (j->st.when_full == JOURNAL_FULL_PAUSE && j->st.max_bytes) {
    f = (double)j->bytes / (double)j->st.max_bytes;
  }
  double m = (double)j->wbuf.len / (double)j->st.memory_bytes;
  if (m > f) {
    f = m;
  }
  return f > 1 ? 1 : f;
}

static bool journal_healthy(const struct queue *q, char *why, size_t n) {
  const struct journal *j = container_of(q, const struct journal, base);
  if (!j->werr) {
    return true;
  }
  if (no_space(j->werr_errno)) {
    snprintf(why, n,
             "journal: %s in %s (%zu bytes of records wait in memory; "
             "intake is paused until there is space)",
             j->werr_errno == ENOSPC ? "no space left on device"
                                     : "disk quota exceeded",
             j->dir, j->wbuf.len);
  } else {
    snprintf(why, n, "journal: writing in %s fails: %s", j->dir,
             strerror(j->werr_errno));
  }
  return false;
}

static void journal_set_limit(struct queue *q, size_t max_bytes) {
  /* The journal's limits come from its own settings. */
  (void)q;
  (void)max_bytes;
}

static void journal_pace(struct queue *q, unsigned reader,
                         const struct qpace *p) {
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

static void on_handle_closed(uv_handle_t *h) {
  struct jhandles *hs = h->data;
  if (--hs->open == 0) {
    free(hs);
  }
}

static void journal_free(struct queue *q) {
  if (!q) {
    return;
  }
  struct journal *j = container_of(q, struct journal, base);
  if (!j->ready) {
    goto release;
  }
  if (j->werr) {
    make_room(j);
  }
  if (j->active && j->wbuf.len > 0 && flush(j) != IOCD_OK) {
    log_error("journal", "%zu bytes of records could not be written at exit",
              j->wbuf.len);
  }
  bool sync = j->st.fsync != JOURNAL_FSYNC_NEVER;
  if (sync && j->active && j->active->fd >= 0 && j->dirty) {
    if (fdatasync(j->active->fd) == 0) {
      stat_inc(j->m_fsyncs);
    }
  }
  if (j->active && j->active->fd >= 0) {
    close(j->active->fd);
    j->active->fd = -1;
  }
  for (size_t i = 0; i < j->nretired; i++) {
    if (sync) {
      (void)fdatasync(j->retired[i]);
    }
    close(j->retired[i]);
  }
  if (sync && j->dir_dirty) {
    (void)file_sync_dir(j->dir);
  }
  for (unsigned i = 0; i < j->nreaders; i++) {
    struct jreader *r = &j->rd[i];
    char *path = ckpt_path(j, r);
    if (!path) {
      continue;
    }
    if (j->job && j->job->nfin < STORE_MAX_OUTPUTS) {
      j->job->fin[j->job->nfin++] = (struct jckpt){path, r->conf, i, 0};
      continue;
    }
    int rc = write_checkpoint(path, r->conf, sync);
    if (rc) {
      log_error("journal", "writing %s failed: %s", path, strerror(rc));
    }
    free(path);
  }
  if (j->job) {
    j->job->j = NULL;
  }
release:
  if (j->h) {
    j->h->j = NULL;
    uv_check_stop(&j->h->check);
    uv_timer_stop(&j->h->tick);
    uv_close((uv_handle_t *)&j->h->check, on_handle_closed);
    uv_close((uv_handle_t *)&j->h->tick, on_handle_closed);
  }
  rb_forget(j);
  free(j->rb);
  while (j->count > 0) {
    struct jrec *r = j->ring[j->ring_head];
    free(r);
    j->ring_head = (j->ring_head + 1) & (j->ring_cap - 1);
    j->count--;
  }
  free(j->ring);
  struct jseg *g = j->head;
  while (g) {
    struct jseg *next = g->next;
    seg_free(g);
    g = next;
  }
  for (unsigned i = 0; i < j->nreaders; i++) {
    free(j->rd[i].name);
    free(j->rd[i].outs);
  }
  if (j->lock_fd >= 0) {
    close(j->lock_fd);
  }
  free(j->retired);
  free(j->name_last);
  buf_cleanup(&j->wbuf);
  free(j->dir);
  free(j);
}

static const struct queue_ops journal_ops = {
    .append = journal_append,
    .level = journal_level,
    .take = journal_take,
    .confirm = journal_confirm,
    .totals = journal_totals,
    .set_limit = journal_set_limit,
    .free = journal_free,
    .pace = journal_pace,
    .fill = journal_fill,
    .healthy = journal_healthy,
};

/* ---- Opening ------------------------------------------------------------- */

static int mkdir_p(const char *dir, struct iocd_err *err) {
  int e = file_mkdirs(dir);
  if (e) {
    return iocd_err_set(err, IOCD_EIO, "journal: cannot create %s: %s", dir,
                        strerror(e));
  }
  return IOCD_OK;
}

static int take_lock(struct journal *j, struct iocd_err *err) {
  char *path = path_join(j->dir, "lock");
  if (!path) {
    return iocd_err_set(err, IOCD_ENOMEM, "journal: out of memory");
  }
  j->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (j->lock_fd < 0) {
    int rc = iocd_err_set(err, IOCD_EIO, "journal: cannot open %s: %s", path,
                          strerror(errno));
    free(path);
    return rc;
  }
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
  if (fcntl(j->lock_fd, F_SETLK, &fl) != 0) {
    int rc = iocd_err_set(err, IOCD_ESTATE,
                          "journal: %s is in use by another iocd process "
                          "(data_dir must not be shared)",
                          j->dir);
    free(path);
    return rc;
  }
  free(path);
  return IOCD_OK;
}

static bool seg_file_name(const char *name, uint64_t *seq) {
  size_t n = strlen(name);
  if (n != SEG_DIGITS + strlen(SEG_SUFFIX) ||
      strcmp(name + SEG_DIGITS, SEG_SUFFIX) != 0) {
    return false;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < SEG_DIGITS; i++) {
    if (name[i] < '0' || name[i] > '9') {
      return false;
    }
    v = v * 10 + (uint64_t)(name[i] - '0');
  }
  *seq = v;
  return true;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The sequence numbers of the segment files in dir, sorted. Leftover
 * temporary checkpoint files are removed on the way. */
static int list_segments(struct journal *j, uint64_t **out, size_t *n,
                         struct iocd_err *err) {
  DIR *d = opendir(j->dir);
  if (!d) {
    return iocd_err_set(err, IOCD_EIO, "journal: cannot read %s: %s", j->dir,
                        strerror(errno));
  }
  uint64_t *v = NULL;
  size_t cnt = 0, cap = 0;
  int rc = IOCD_OK;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    uint64_t seq;
    size_t len = strlen(e->d_name);
    if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0 &&
        strncmp(e->d_name, "checkpoint.", 11) == 0) {
      char *p = path_join(j->dir, e->d_name);
      if (p) {
        unlink(p);
      }
      free(p);
      continue;
    }
    if (!seg_file_name(e->d_name, &seq)) {
      continue;
    }
    if (cnt == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      uint64_t *nv = regrow(v, cnt, ncap, sizeof *nv);
      if (!nv) {
        rc = iocd_err_set(err, IOCD_ENOMEM, "journal: out of memory");
        break;
      }
      v = nv;
      cap = ncap;
    }
    v[cnt++] = seq;
  }
  closedir(d);
  if (rc) {
    free(v);
    return rc;
  }
  if (cnt > 1) {
    qsort(v, cnt, sizeof *v, cmp_u64);
  }
  *out = v;
  *n = cnt;
  return IOCD_OK;
}

/* Per-source points found for reader 0, reported to the hooks at the end. */
struct found {
  uint64_t *v;
  size_t n;
};

static int found_add(struct found *f, uint32_t id, uint64_t points) {
  if (counts_fit(&f->v, &f->n, id) != IOCD_OK) {
    return IOCD_ENOMEM;
  }
  f->v[id] += points;
  return IOCD_OK;
}

static void report_damage(struct jseg *g, uint64_t off, enum jdecode d,
                          uint64_t to, uint64_t end, uint64_t skipped) {
  char name[64];
  seg_name(g, name, sizeof name);
  if (to < end && d == JREC_SHORT) {
    d = JREC_LENGTH;
  }
  if (to >= end && d == JREC_SHORT) {
    log_error("journal",
              "journal %s offset %" PRIu64 ": truncated record (%" PRIu64
              " bytes at the end of the file); ignored",
              name, off, end - off);
  } else if (to >= end) {
    log_error("journal",
              "journal %s offset %" PRIu64
              ": %s; skipped the rest of the "
              "segment (%" PRIu64 " bytes)",
              name, off, journal__decode_text(d), end - off);
  } else {
    log_error("journal",
              "journal %s offset %" PRIu64 ": %s; skipped %" PRIu64
              " record%s (resynchronised at offset %" PRIu64 ")",
              name, off, journal__decode_text(d), skipped,
              skipped == 1 ? "" : "s", to);
  }
}

/* Reads every record of g: counts, where each reader resumes, damage. */
static int scan_segment(struct journal *j, struct jseg *g, uint64_t end,
                        const uint64_t *conf, bool *placed, struct found *found,
                        uint64_t *last_seq) {
  uint64_t off = 0;
  uint64_t expected = g->first_seq;
  while (off < end) {
    struct jview v;
    enum jdecode d = read_at(j, g, off, end, &v);
    if (d == JREC_OK && v.seq < expected) {
      d = JREC_LENGTH;
    }
    if (d != JREC_OK) {
      struct jview nv;
      uint64_t to = resync(j, g, off, end, &nv);
      uint64_t skipped = 1;
      if (to < end && nv.seq > expected) {
        skipped = nv.seq - expected;
      }
      report_damage(g, off, d, to, end, skipped);
      stat_add(j->m_corrupt, skipped);
      if (seg_add_bad(g, off, to) != IOCD_OK) {
        return IOCD_ENOMEM;
      }
      off = to;
      continue;
    }
    uint32_t src;
    int rc = name_to_id(j, v.name, v.name_len, &src);
    if (!rc) {
      rc = seg_src(g, src);
    }
    if (rc) {
      return rc;
    }
    if (g->points == 0) {
      g->first_wall_ms = v.wall_ms;
    }
    g->last_wall_ms = v.wall_ms;
    g->points += v.npoints;
    g->end_seq = v.seq + 1;
    for (unsigned i = 0; i < j->nreaders; i++) {
      if (v.seq < conf[i]) {
        continue;
      }
      if (!placed[i]) {
        placed[i] = true;
        j->rd[i].back.seg = g;
        j->rd[i].back.off = off;
      }
      count_add(&g->utk[i], v.npoints, v.lp_len);
      count_add(&j->rd[i].utk, v.npoints, v.lp_len);
      j->rd[i].pending += v.npoints;
      j->rd[i].pending_bytes += v.lp_len;
      if (i == 0) {
        g->src_utk[src] += v.npoints;
        if (found_add(found, src, v.npoints) != IOCD_OK) {
          return IOCD_ENOMEM;
        }
      }
    }
    if (v.seq > *last_seq) {
      *last_seq = v.seq;
    }
    expected = v.seq + 1;
    off += v.size;
  }
  return IOCD_OK;
}

static int scan(struct journal *j, struct iocd_err *err) {
  uint64_t conf[STORE_MAX_OUTPUTS];
  uint64_t min_conf = UINT64_MAX, max_conf = 0;
  for (unsigned i = 0; i < j->nreaders; i++) {
    char *path = ckpt_path(j, &j->rd[i]);
    if (!path) {
      return iocd_err_set(err, IOCD_ENOMEM, "journal: out of memory");
    }
    uint64_t seq = 0;
    int got = read_checkpoint(path, &seq);
    if (got < 0) {
      log_warn("journal",
               "%s is not a checkpoint: %s resumes at the oldest record", path,
               j->rd[i].name);
      seq = 0;
    }
    free(path);
    conf[i] = seq;
    if (seq < min_conf) {
      min_conf = seq;
    }
    if (seq > max_conf) {
      max_conf = seq;
    }
  }
  uint64_t *names = NULL;
  size_t nnames = 0;
  int rc = list_segments(j, &names, &nnames, err);
  if (rc) {
    return rc;
  }
  bool placed[STORE_MAX_OUTPUTS] = {false};
  struct found found = {0};
  uint64_t last_seq = 0;
  uint64_t next = 1;
  for (size_t k = 0; k < nnames && !rc; k++) {
    struct jseg *g = seg_new(names[k]);
    if (!g) {
      rc = iocd_err_set(err, IOCD_ENOMEM, "journal: out of memory");
      break;
    }
    if (names[k] + 1 > next) {
      next = names[k] + 1;
    }
    char *path = seg_path(j, g);
    struct stat sb;
    if (!path || stat(path, &sb) != 0) {
      free(path);
      seg_free(g);
      continue;
    }
    /* Every record of a segment followed by one that starts at or before
     * every checkpoint was confirmed: no need to read it. */
    bool done = k + 1 < nnames && names[k + 1] <= min_conf;
    if (done || sb.st_size == 0) {
      unlink(path);
      free(path);
      seg_free(g);
      continue;
    }
    free(path);
    g->bytes = (uint64_t)sb.st_size;
    seg_link(j, g);
    rc = scan_segment(j, g, g->bytes, conf, placed, &found, &last_seq);
    if (rc) {
      iocd_err_set(err, rc, "journal: out of memory");
    }
  }
  free(names);
  if (rc) {
    free(found.v);
    return rc;
  }
  rb_forget(j);
  if (last_seq + 1 > next) {
    next = last_seq + 1;
  }
  if (max_conf > next) {
    next = max_conf;
  }
  j->next_seq = next;
  j->cache_first = next;
  j->flushed_seq = next;
  uint64_t oldest = j->head ? j->head->first_seq : next;
  for (unsigned i = 0; i < j->nreaders; i++) {
    struct jreader *r = &j->rd[i];
    uint64_t c = conf[i] < oldest ? oldest : conf[i];
    if (c > next) {
      c = next;
    }
    r->back.seq = c;
    r->conf = c;
    if (!placed[i]) {
      r->back.seg = NULL;
      r->back.off = 0;
    }
    set_backlog(r);
  }
  for (size_t s = 0; s < found.n; s++) {
    if (found.v[s]) {
      j->hooks.found(j->hooks.ud, (uint32_t)s, found.v[s]);
    }
  }
  free(found.v);
  return IOCD_OK;
}

/* The settings of cfg->journal for the journal in <data_dir>/<sub>. */
static void settings_in(const struct config *cfg, const char *sub, char *dirbuf,
                        size_t n, struct journal_settings *st) {
  const struct config_journal *c = &cfg->journal;
  const char *data =
      cfg->data_dir && *cfg->data_dir ? cfg->data_dir : "./var/iocd";
  size_t len = strlen(data);
  while (len > 1 && data[len - 1] == '/') {
    len--;
  }
  snprintf(dirbuf, n, "%.*s/%s", (int)len, data, sub);
  st->dir = dirbuf;
  st->segment_bytes =
      c->segment_bytes ? c->segment_bytes : JOURNAL_DEFAULT_SEGMENT;
  st->max_bytes = c->max_bytes ? c->max_bytes : JOURNAL_DEFAULT_MAX;
  st->memory_bytes = c->memory_bytes ? c->memory_bytes : JOURNAL_DEFAULT_MEMORY;
  st->fsync = c->fsync;
  st->fsync_interval_ms = c->fsync_interval_ms > 0 ? c->fsync_interval_ms
                                                   : JOURNAL_DEFAULT_FSYNC_MS;
  st->when_full = c->when_full;
  st->replay_rate = c->replay_rate > 0 ? (uint64_t)c->replay_rate : 0;
  st->label = NULL;
}

void store__journal_settings(const struct config *cfg, char *dirbuf, size_t n,
                             struct journal_settings *st) {
  settings_in(cfg, "journal", dirbuf, n, st);
}

void store__journal_history_settings(const struct config *cfg, char *dirbuf,
                                     size_t n, struct journal_settings *st) {
  settings_in(cfg, STORE_HISTORY_DIR, dirbuf, n, st);
  /* Capping both keeps max_bytes at least twice segment_bytes, as the
   * configuration's check made it. */
  if (st->memory_bytes > STORE_HISTORY_MEMORY) {
    st->memory_bytes = STORE_HISTORY_MEMORY;
  }
  if (st->max_bytes > STORE_HISTORY_MAX_BYTES) {
    st->max_bytes = STORE_HISTORY_MAX_BYTES;
  }
  if (st->segment_bytes > STORE_HISTORY_SEGMENT) {
    st->segment_bytes = STORE_HISTORY_SEGMENT;
  }
  st->when_full = JOURNAL_FULL_DROP_OLDEST;
  st->label = "history";
}

struct queue *store__journal_open(uv_loop_t *loop,
                                  const struct journal_settings *st,
                                  const char *const *outputs, unsigned nreaders,
                                  const struct journal_hooks *hooks,
                                  struct stats *stats, struct iocd_err *err) {
  if (nreaders == 0 || nreaders > STORE_MAX_OUTPUTS) {
    iocd_err_set(err, IOCD_EINVAL, "journal: %u outputs", nreaders);
    return NULL;
  }
  struct journal *j = calloc(1, sizeof *j);
  if (!j) {
    iocd_err_set(err, IOCD_ENOMEM, "journal: out of memory");
    return NULL;
  }
  j->base.ops = &journal_ops;
  j->loop = loop;
  j->st = *st;
  j->hooks = *hooks;
  j->stats = stats;
  j->lock_fd = -1;
  j->rfd = -1;
  j->rfd_seg = UINT64_MAX;
  j->nreaders = nreaders;
  j->dir = strdup(st->dir);
  j->st.dir = j->dir;
  buf_init(&j->wbuf, j->st.memory_bytes + JOURNAL_RECORD_MAX + JOURNAL_HDR);
  if (!j->dir) {
    iocd_err_set(err, IOCD_ENOMEM, "journal: out of memory");
    goto fail;
  }
  for (unsigned i = 0; i < nreaders; i++) {
    struct jreader *r = &j->rd[i];
    r->name = strdup(outputs[i]);
    if (!r->name) {
      iocd_err_set(err, IOCD_ENOMEM, "journal: out of memory");
      goto fail;
    }
    r->m_backlog = stats_gauge(stats, "iocd_journal_backlog_points",
                               "Points in the journal not yet confirmed by "
                               "the output.",
                               "output", outputs[i], NULL);
    r->m_oldest = stats_gauge(stats, "iocd_journal_oldest_unwritten_seconds",
                              "Age of the oldest point the output has not "
                              "confirmed.",
                              "output", outputs[i], NULL);
    r->m_dropped =
        stats_counter(stats, "iocd_points_dropped_total",
                      "Points an output gave up on, by reason.", "output",
                      outputs[i], "reason", "journal_full", NULL);
  }
  /* The data's journal has these series without labels; another one
   * (the alert history's) with its `journal` label. A NULL label ends the
   * label list at once. */
  const char *lk = st->label ? "journal" : NULL;
  const char *lv = st->label;
  j->m_bytes =
      stats_gauge(stats, "iocd_journal_bytes",
                  "Bytes of the journal's segment files.", lk, lv, NULL);
  j->m_segments = stats_gauge(stats, "iocd_journal_segments",
                              "Segment files of the journal.", lk, lv, NULL);
  j->m_corrupt =
      stats_counter(stats, "iocd_journal_corrupt_records_total",
                    "Damaged journal records skipped.", lk, lv, NULL);
  j->m_werrors = stats_counter(stats, "iocd_journal_write_errors_total",
                               "Failed journal writes, fdatasyncs and "
                               "checkpoints.",
                               lk, lv, NULL);
  j->m_nospace = stats_counter(stats, "iocd_journal_no_space_total",
                               "Journal writes (segments, checkpoints) that "
                               "failed for lack of space (ENOSPC, EDQUOT).",
                               lk, lv, NULL);
  j->m_fsyncs =
      stats_counter(stats, "iocd_journal_fsyncs_total",
                    "fdatasync calls on journal segments.", lk, lv, NULL);
  if (mkdir_p(j->dir, err) != IOCD_OK || take_lock(j, err) != IOCD_OK ||
      ring_grow(j) != IOCD_OK) {
    if (!err || !err->msg[0]) {
      iocd_err_set(err, IOCD_ENOMEM, "journal: out of memory");
    }
    goto fail;
  }
  if (scan(j, err) != IOCD_OK) {
    goto fail;
  }
  /* Each output's checkpoint exists from the start, so that an output that
   * has never confirmed anything still resumes where it began. On a full
   * disk iocd starts all the same: the checkpoint is written once the
   * outputs' confirmations have freed space (until then a restart may send
   * confirmed records again). */
  bool sync = j->st.fsync != JOURNAL_FSYNC_NEVER;
  for (unsigned i = 0; i < nreaders; i++) {
    struct jreader *r = &j->rd[i];
    char *path = ckpt_path(j, r);
    int rc = path ? write_checkpoint(path, r->conf, sync) : ENOMEM;
    if (rc && no_space(rc)) {
      stat_inc(j->m_werrors);
      stat_inc(j->m_nospace);
      log_error("journal", "cannot write %s: %s; retrying every second", path,
                strerror(rc));
      j->ckpt_errno = rc;
      r->saved = UINT64_MAX;
      free(path);
      continue;
    }
    if (rc) {
      iocd_err_set(err, IOCD_EIO, "journal: cannot write %s: %s",
                   path ? path : "a checkpoint", strerror(rc));
      free(path);
      goto fail;
    }
    free(path);
    r->saved = r->conf;
  }
  j->h = calloc(1, sizeof *j->h);
  if (!j->h) {
    iocd_err_set(err, IOCD_ENOMEM, "journal: out of memory");
    goto fail;
  }
  j->h->j = j;
  uv_check_init(loop, &j->h->check);
  uv_timer_init(loop, &j->h->tick);
  j->h->check.data = j->h;
  j->h->tick.data = j->h;
  j->h->open = 2;
  int64_t every = tick_ms(&j->st);
  uv_timer_start(&j->h->tick, on_tick, (uint64_t)every, (uint64_t)every);
  j->last_ckpt_ms = loop_ms(j);
  j->last_sync_ms = j->last_ckpt_ms;
  j->ready = true;
  set_gauges(j);
  set_oldest(j);
  uint64_t backlog = j->rd[0].pending;
  if (j->nsegs > 0) {
    log_info("journal",
             "%s: %zu segments, %" PRIu64 " bytes; %" PRIu64
             " points not yet written to %s are sent again",
             j->dir, j->nsegs, j->bytes, backlog, j->rd[0].name);
  } else {
    log_info("journal", "%s: empty", j->dir);
  }
  return &j->base;

fail:
  journal_free(&j->base);
  return NULL;
}

void store__journal_apply(struct queue *q, const struct journal_settings *st) {
  struct journal *j = container_of(q, struct journal, base);
  int64_t before = tick_ms(&j->st);
  const char *dir = j->st.dir;
  j->st = *st;
  j->st.dir = dir;
  j->wbuf.max = j->st.memory_bytes + JOURNAL_RECORD_MAX + JOURNAL_HDR;
  int64_t every = tick_ms(&j->st);
  if (every != before) {
    uv_timer_start(&j->h->tick, on_tick, (uint64_t)every, (uint64_t)every);
  }
  evict(j);
}

int store__journal_flush(struct queue *q) {
  struct journal *j = container_of(q, struct journal, base);
  return flush(j);
}

uint64_t store__journal_checkpoint(struct queue *q, unsigned reader) {
  struct journal *j = container_of(q, struct journal, base);
  return j->rd[reader].conf;
}

size_t store__journal_segments(struct queue *q) {
  struct journal *j = container_of(q, struct journal, base);
  return j->nsegs;
}
