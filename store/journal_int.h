/*
 * The on-disk write-ahead journal behind the store (store/journal.c): its
 * record format, which the unit tests exercise directly, and how the store
 * opens it. The journal implements struct queue_ops; docs/durability.md
 * describes the format, the guarantees and the counters.
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

#endif
