/*
 * The on-disk write-ahead journal behind the store (store/journal*.c): its
 * record format, which the unit tests exercise directly, how the store
 * opens it, and the structures and functions its files share. The journal
 * implements struct queue_ops; docs/durability.md describes the format, the
 * guarantees and the counters.
 */
#ifndef IOCD_STORE_JOURNAL_INT_H
#define IOCD_STORE_JOURNAL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/stats.h"
#include "store/store_int.h"

/* ---- Record format ----
 *
 * A record is a 40-byte header followed by its payload, all integers
 * little-endian:
 *
 *   0  u32 magic "IOCJ"        16  u64 sequence number
 *   4  u16 version (1)         24  i64 append time, ms since the epoch
 *   6  u16 name length         32  u32 point count (at least 1)
 *   8  u32 payload length      36  u32 line-protocol length
 *  12  u32 CRC-32 (zlib) of bytes 0..11, 16..39 and the payload
 *
 * payload: the subscription name, the end offset of every line (u32 each,
 * relative to the line protocol), then the line protocol, exactly as it is
 * written to InfluxDB. */

#define JOURNAL_MAGIC "IOCJ"
#define JOURNAL_VERSION 1
#define JOURNAL_HDR 40
/* A record's payload may not be larger: anything longer in a header is
 * damage, not data. */
#define JOURNAL_RECORD_MAX ((size_t)64 << 20)
#define JOURNAL_NAME_MAX 65535

/* A record read back: pointers into the bytes it was decoded from. */
struct jview {
  uint64_t seq;
  int64_t wall_ms;
  uint32_t npoints;
  const char *name;
  size_t name_len;
  const unsigned char *ends; /* npoints little-endian u32 */
  const char *lp;
  size_t lp_len;
  size_t size; /* header + payload */
};

enum jdecode {
  JREC_OK,
  JREC_SHORT,    /* fewer bytes than the record claims (or than a header) */
  JREC_MAGIC,    /* no record header here */
  JREC_LENGTH,   /* impossible lengths in the header */
  JREC_CHECKSUM, /* the CRC does not match */
};

/* Appends one encoded record to out. Returns IOCD_OK, IOCD_ETOOBIG (past
 * JOURNAL_RECORD_MAX or JOURNAL_NAME_MAX, or out's cap) or IOCD_ENOMEM. */
int journal__encode(struct buf *out, uint64_t seq, int64_t wall_ms,
                    const char *name, size_t name_len, const uint32_t *ends,
                    uint32_t npoints, const char *lp, size_t lp_len);

/* Decodes the record at p (avail bytes readable). JREC_OK fills v. */
enum jdecode journal__decode(const void *p, size_t avail, struct jview *v);

/* The line end i of a decoded record. */
uint32_t journal__end(const struct jview *v, uint32_t i);

/* "bad checksum", "truncated record", ... for a decode result. */
const char *journal__decode_text(enum jdecode d);

/* ---- Opening ---- */

/* The journal's settings with defaults applied; dir is borrowed. */
struct journal_settings {
  const char *dir;
  uint64_t segment_bytes;
  uint64_t max_bytes;
  size_t memory_bytes;
  enum journal_fsync fsync;
  int64_t fsync_interval_ms;
  enum journal_when_full when_full;
  uint64_t replay_rate;
  /* NULL for the data's journal; for another one (the alert history's),
   * the value of the `journal` label on the series that are not per
   * output (iocd_journal_bytes{journal="history"}, ...). */
  const char *label;
};

#define JOURNAL_DEFAULT_SEGMENT ((uint64_t)16 << 20)
#define JOURNAL_DEFAULT_MAX ((uint64_t)1 << 30)
#define JOURNAL_DEFAULT_MEMORY ((size_t)64 << 20)
#define JOURNAL_DEFAULT_FSYNC_MS 1000
/* Checkpoints are written at most this often (and at close). */
#define JOURNAL_CHECKPOINT_MS 1000

/* Fills st from cfg->journal with defaults; dir is written into dirbuf as
 * "<data_dir>/journal". */
void store__journal_settings(const struct config *cfg, char *dirbuf, size_t n,
                             struct journal_settings *st);

/* The same for the alert history's journal: "<data_dir>/"
 * STORE_HISTORY_DIR, the limits of cfg->journal capped at
 * STORE_HISTORY_MEMORY, STORE_HISTORY_MAX_BYTES and STORE_HISTORY_SEGMENT,
 * when_full drop_oldest (nothing can pause the rules: the newest
 * transitions are kept), label "history". */
void store__journal_history_settings(const struct config *cfg, char *dirbuf,
                                     size_t n, struct journal_settings *st);

/* What the journal needs from the store's books. Source ids are the
 * store's; names are the subscription names kept in each record. */
struct journal_hooks {
  void *ud;
  const char *(*source_name)(void *ud, uint32_t id);
  /* Finds or adds the source called name. Returns IOCD_OK or ENOMEM. */
  int (*source_id)(void *ud, const char *name, size_t len, uint32_t *id);
  /* At open: points of source id that reader 0 had not confirmed. */
  void (*found)(void *ud, uint32_t id, uint64_t points);
  /* Points of source id that reader 0 had not taken, deleted because the
   * journal was full (drop_oldest). */
  void (*dropped)(void *ud, uint32_t id, uint64_t points);
};

/* Opens (creating it if needed) the journal in st->dir for readers named
 * outputs[0..nreaders-1] (the checkpoint files are named after them; reader
 * 0 is the one whose books the hooks keep). Scans the segments, reports and
 * skips damaged records, and positions each reader after its checkpoint.
 * Registers the iocd_journal_* series in stats. Returns NULL with err set
 * when the directory cannot be used (another iocd holds it, no rights, ...).
 * The queue's free (at store close) writes what is buffered and the
 * checkpoints; its handles close on the loop afterwards. */
struct queue *store__journal_open(uv_loop_t *loop,
                                  const struct journal_settings *st,
                                  const char *const *outputs, unsigned nreaders,
                                  const struct journal_hooks *hooks,
                                  struct stats *stats, struct iocd_err *err);

/* Applies what a reload may change (limits, fsync policy, replay rate);
 * the directory stays. */
void store__journal_apply(struct queue *q, const struct journal_settings *st);

/* Writes what is buffered now (the loop's check handle does this once per
 * iteration), for tests. Returns IOCD_OK or IOCD_EIO. */
int store__journal_flush(struct queue *q);

/* The first sequence number reader has not confirmed (its checkpoint). */
uint64_t store__journal_checkpoint(struct queue *q, unsigned reader);

/* Segment files on disk now. */
size_t store__journal_segments(struct queue *q);

/* ---- The journal's structures ----
 *
 * Shared by the files of the journal: journal.c (the object, opening and
 * freeing), journal_record.c, journal_scan.c, journal_write.c,
 * journal_read.c and journal_space.c. */

#define SEG_DIGITS 16
#define SEG_SUFFIX ".seg"
#define LOG_BURST 5
#define LOG_WINDOW_MS 10000

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

/* ---- Small helpers (inline: they run for every record) ---- */

/* The little-endian u32 and u64 at p. */
static inline uint32_t journal__get32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) {
    v = (v << 8) | p[i];
  }
  return v;
}

static inline uint64_t journal__get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) {
    v = (v << 8) | p[i];
  }
  return v;
}

static inline int64_t journal__loop_ms(const struct journal *j) {
  return (int64_t)uv_now(j->loop);
}

/* The record seq of the memory tail (cache_first <= seq < next_seq). */
static inline struct jrec *journal__rec_at(const struct journal *j,
                                           uint64_t seq) {
  return j->ring[(j->ring_head + (size_t)(seq - j->cache_first)) &
                 (j->ring_cap - 1)];
}

static inline char *journal__rec_data(struct jrec *r) {
  return (char *)(r->line_end + r->npoints);
}

static inline size_t journal__rec_mem(const struct jrec *r) {
  return sizeof *r + (size_t)r->npoints * sizeof(uint32_t) + r->len;
}

/* The bytes of g that are in its file (the active segment's buffered tail
 * is not). */
static inline uint64_t journal__seg_readable(const struct journal *j,
                                             const struct jseg *g) {
  if (g == j->active) {
    return g->bytes - j->wbuf.len;
  }
  return g->bytes;
}

static inline void journal__count_add(struct jcount *c, uint64_t points,
                                      uint64_t bytes) {
  c->points += points;
  c->bytes += bytes;
  c->records++;
}

static inline void journal__count_sub(struct jcount *c, uint64_t points,
                                      uint64_t bytes) {
  c->points -= points;
  c->bytes -= bytes;
  c->records--;
}

/* ---- journal.c: paths, arrays, segments, the memory tail, metrics ---- */

/* The append time now, ms since the epoch. */
int64_t journal__wall_ms(void);

/* The file name of segment g ("0000000000000001.seg") into out. */
void journal__seg_name(const struct jseg *g, char *out, size_t n);

/* dir + "/" + file, malloc'd (NULL when out of memory). */
char *journal__path_join(const char *dir, const char *file);

/* The path of g's file, and of reader r's checkpoint file; malloc'd (NULL
 * when out of memory). */
char *journal__seg_path(const struct journal *j, const struct jseg *g);
char *journal__ckpt_path(const struct journal *j, const struct jreader *r);

/* A zeroed array of cap elements of size bytes that starts with the used
 * elements of old, which it replaces (old is freed). Returns NULL when out
 * of memory (or cap * size overflows), and old is then left as it was. The
 * one copy-and-swap behind every array here that grows. */
void *journal__regrow(void *old, size_t used, size_t cap, size_t size);

/* Makes room for index id in the per-source counts *v (*n of them), with
 * room for a few more sources past it; new counts are zero. Returns
 * IOCD_OK or IOCD_ENOMEM. */
int journal__counts_fit(uint64_t **v, size_t *n, uint32_t id);

/* A new, empty segment starting at first_seq (its file does not exist yet);
 * NULL when out of memory. Freed with journal__seg_free. */
struct jseg *journal__seg_new(uint64_t first_seq);

/* Appends g to the journal's list of segments (the journal owns it). */
void journal__seg_link(struct journal *j, struct jseg *g);

/* Makes room for the per-source count of source id. Returns IOCD_OK or
 * IOCD_ENOMEM. */
int journal__seg_src(struct jseg *g, uint32_t id);

/* Notes [from, to) of g's file as damaged. Returns IOCD_OK or ENOMEM. */
int journal__seg_add_bad(struct jseg *g, uint64_t from, uint64_t to);

/* The damaged range of g that starts at off, or NULL. */
const struct jbad *journal__seg_find_bad(const struct jseg *g, uint64_t off);

void journal__seg_free(struct jseg *g);

/* Makes room for one more record in the memory tail. Returns IOCD_OK or
 * IOCD_ENOMEM. */
int journal__ring_grow(struct journal *j);

/* The first record some reader has not taken. */
uint64_t journal__min_cursor(const struct journal *j);

/* Records every reader has taken are not needed in memory any more; past
 * the memory budget, the oldest records already in their files go too. */
void journal__evict(struct journal *j);

/* Set the iocd_journal_bytes and _segments gauges, reader r's backlog, and
 * every reader's age of the oldest record it has not confirmed. */
void journal__set_gauges(struct journal *j);
void journal__set_backlog(struct jreader *r);
void journal__set_oldest(struct journal *j);

/* ---- journal_scan.c: the scan at start ---- */

/* Reads the checkpoints and every segment file of j->dir: the segments'
 * counts, where each reader resumes, damage (reported and skipped), the
 * next sequence number; reports the points found for reader 0 through the
 * hooks. Returns IOCD_OK, or an error with err set. */
int journal__scan(struct journal *j, struct iocd_err *err);

/* ---- journal_write.c: writing, fsync, checkpoint files ---- */

/* Writes "SEQ\n" to path atomically (core/file.h), so that a reader sees
 * the old or the new checkpoint, never half of one, and with sync the new
 * one survives a power loss. Returns 0 or an errno value. */
int journal__write_checkpoint(const char *path, uint64_t seq, bool sync);

/* Writes the buffered records to the active segment's file, creating it
 * first if needed, and syncs it under the always policy. Returns IOCD_OK or
 * IOCD_EIO (the data stays buffered; the tick retries). */
int journal__flush(struct journal *j);

/* The journal's timer: retries a failed write, starts the disk work that is
 * due (fdatasync, checkpoints), deletes what is confirmed, sets the gauges. */
void journal__on_tick(uv_timer_t *t);

/* struct queue_ops append. */
int journal__append(struct queue *q, const char *data, size_t len,
                    const uint32_t *line_end, uint32_t npoints, uint32_t source,
                    int64_t now_ms);

/* ---- journal_read.c: reading back, taking, confirming ---- */

/* Closes the segment file open for reading back and empties the window. */
void journal__rb_forget(struct journal *j);

/* Decodes the record at off in g (end: where its readable bytes end). */
enum jdecode journal__read_at(struct journal *j, struct jseg *g, uint64_t off,
                              uint64_t end, struct jview *v);

/* The offset of the next valid record after the damage at off, or end. */
uint64_t journal__resync(struct journal *j, struct jseg *g, uint64_t off,
                         uint64_t end, struct jview *v);

/* The source id of a record read back, looked up by its name. Returns
 * IOCD_OK or the hook's error. */
int journal__name_to_id(struct journal *j, const char *name, size_t len,
                        uint32_t *id);

/* Folds confirmed runs at the front into conf. */
void journal__advance_conf(struct jreader *r);

/* Records that a run [first, end) was taken (confirmed false) or skipped
 * (confirmed true), keeping the runs in order. Returns IOCD_OK or
 * IOCD_ENOMEM. */
int journal__add_out(struct jreader *r, uint64_t first, uint64_t end,
                     int64_t wall, bool confirmed);

/* struct queue_ops level, take, confirm and pace. */
void journal__level(struct queue *q, unsigned reader, struct qlevel *out);
int journal__take(struct queue *q, unsigned reader, size_t max_points,
                  size_t max_bytes, struct sbatch **out);
void journal__confirm(struct queue *q, unsigned reader, const struct sbatch *b);
void journal__pace(struct queue *q, unsigned reader, const struct qpace *p);

/* ---- journal_space.c: deletion, when_full, fill ---- */

/* Whether errno value err means the disk (or the quota) is full. */
bool journal__no_space(int err);

/* Deletes the segments every reader has confirmed, whether or not their
 * checkpoints are on disk yet: a checkpoint only spares a restart sending
 * confirmed records again, and a reader whose checkpoint is older than the
 * oldest segment resumes at that segment. So a full disk, on which no
 * checkpoint can be written, frees itself as the outputs confirm. */
void journal__delete_done(struct journal *j);

/* A write failed: free what the outputs have confirmed. */
void journal__make_room(struct journal *j);

/* Drops the oldest closed segment to make room (drop_oldest): what the
 * readers had not taken from it is lost, counted and logged. */
void journal__drop_oldest(struct journal *j);

/* struct queue_ops totals, fill and healthy. */
void journal__totals(const struct queue *q, uint64_t *points, uint64_t *bytes);
double journal__fill(const struct queue *q);
bool journal__healthy(const struct queue *q, char *why, size_t n);

#endif
