/*
 * The durable outbox of notifications, <data_dir>/outbox: a notice is
 * written there (one file, <id as 16 hex digits>.json, replaced atomically
 * and fsynced) before anything is sent, and removed once its receiver took
 * it, so that a crash or a restart loses no notification and sends none
 * twice on purpose. The attempts so far are kept in the file; a notice
 * given up on moves to outbox/dead/ (kept and listed for the API); a file
 * that cannot be read moves to outbox/bad/ with a log line, never deleted.
 *
 *   outbox/0000000000000001.json   pending
 *   outbox/dead/...json            given up on: the notice, why and when
 *   outbox/bad/...                 unreadable files, as they were found
 *   outbox/next_id                 ids handed out so far (unique across
 *                                  restarts)
 *
 * The outbox keeps the pending notices in memory too, in id order, so that
 * sending never reads the disk. Its calls block on the file system (an
 * fsync each): notifications are few. Everything runs on one thread.
 */
#ifndef IOCD_ALERTS_OUTBOX_H
#define IOCD_ALERTS_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alerts/notice.h"
#include "core/err.h"

#define OUTBOX_DEFAULT_MAX_FILES 10000
#define OUTBOX_DEFAULT_MAX_BYTES ((size_t)64 << 20)
#define OUTBOX_DEFAULT_MAX_DEAD 1000

/* The outbox moved a pending notice to dead/ on its own (reason "outbox
 * full"), during outbox_put. n is borrowed for the call; it is no longer
 * pending when this runs. The callback must not call the outbox (note the
 * id and act after outbox_put returns). */
typedef void outbox_evict_fn(void *ud, const struct notice *n, const char *why);

/* Options; {0} means the defaults. */
struct outbox_opts {
  /* false (the default): every change is fsynced before the call returns
   * (the file, then its directory). true: changes are written at once (a
   * killed iocd loses nothing: they are in the kernel's page cache) and
   * made durable against a power loss by outbox_sync, which the caller
   * runs every journal.fsync_interval, the same promise the journal of
   * points makes. */
  bool sync_later;
  size_t max_files; /* pending notices; past it the oldest is dead-lettered */
  size_t max_bytes; /* bytes of pending files; likewise */
  size_t max_dead;  /* dead letters kept; past it the oldest is removed,
                       with a log line */
  outbox_evict_fn *on_evict; /* may be NULL */
  void *ud;
};

/* A pending notice, as the outbox holds it. */
struct outbox_item {
  struct notice *notice; /* owned by the outbox; notice->attempts is the
                            count persisted */
  int64_t next_try_ns;   /* wall clock; 0: as soon as possible */
  size_t bytes;          /* the size of its file */
  bool durable;          /* false when its file could not be written */
};

/* A dead letter. */
struct outbox_dead {
  struct notice *notice; /* owned by the outbox */
  char *why;
  int64_t dead_ns; /* wall clock */
};

struct outbox;

/* Opens the outbox in dir (created with its parents, dead/ and bad/ too)
 * and loads what a previous run left there: the pending notices in id
 * order, and the dead letters. A file that is not a readable notice (or
 * whose id is not its name) is moved to dir/bad/ with a warning; a
 * leftover "*.tmp" of an interrupted write is removed. opts may be NULL.
 * Returns the outbox, or NULL with err set ("outbox DIR: ...") when the
 * directory cannot be created or read or memory runs out. */
struct outbox *outbox_open(const char *dir, const struct outbox_opts *opts,
                           struct iocd_err *err);

/* Frees the outbox from memory; the files stay for the next run. NULL is
 * allowed. */
void outbox_close(struct outbox *ob);

/* A new notice id, never handed out before by this directory: larger than
 * every id found at open, and past the mark in dir/next_id, which is moved
 * ahead (durably) a block at a time. Never 0. A caller may also count ids
 * itself from one this gave: outbox_put moves the mark past them too. */
uint64_t outbox_next_id(struct outbox *ob);

/* Writes n (a copy is taken; n->id set, from outbox_next_id, and not
 * pending yet; n->receiver set) to its file and fsyncs it before returning,
 * so that the caller sends only what a crash would not lose. Before that,
 * while the outbox is past max_files or max_bytes with n in it, the oldest
 * pending notice is moved to dead/ ("outbox full") and on_evict is called.
 * Returns IOCD_OK; IOCD_EINVAL (no id or receiver, or the id is pending
 * already); IOCD_ETOOBIG (n alone is larger than max_bytes; not kept);
 * IOCD_ENOMEM; or IOCD_EIO with err when the file could not be written: n
 * is then kept in memory all the same (durable false), so the caller may
 * still send it. */
int outbox_put(struct outbox *ob, const struct notice *n, struct iocd_err *err);

/* The pending notice id, or NULL. Borrowed until it leaves the outbox. */
const struct outbox_item *outbox_get(const struct outbox *ob, uint64_t id);

/* Delivered: removes the file (and fsyncs the directory) and forgets the
 * notice. Returns IOCD_OK, IOCD_ENOTFOUND when id is not pending, or
 * IOCD_EIO with err (the notice is forgotten all the same; its file would
 * be sent again after a restart). */
int outbox_done(struct outbox *ob, uint64_t id, struct iocd_err *err);

/* Records a failed attempt: the notice's attempts become attempts and its
 * next try next_try_ns (wall clock), written to its file. Returns IOCD_OK,
 * IOCD_ENOTFOUND, or IOCD_EIO with err (the memory is updated all the
 * same). */
int outbox_attempt(struct outbox *ob, uint64_t id, int attempts,
                   int64_t next_try_ns, struct iocd_err *err);

/* Gives up on id: writes it with why and the time to dir/dead/, removes
 * the pending file, and keeps it in the dead list. Past max_dead the
 * oldest dead letter's file is removed, with a log line. Returns IOCD_OK,
 * IOCD_ENOTFOUND, IOCD_ENOMEM or IOCD_EIO with err (the notice is no
 * longer pending either way). */
int outbox_dead(struct outbox *ob, uint64_t id, const char *why,
                struct iocd_err *err);

/* The pending notices in id order: *n items, borrowed until the next call
 * that changes the outbox. */
const struct outbox_item *outbox_list(const struct outbox *ob, size_t *n);

/* The dead letters in id order, borrowed likewise. */
const struct outbox_dead *outbox_dead_list(const struct outbox *ob, size_t *n);

/* With sync_later: fsyncs the files written and the directories changed
 * since the last call. Returns IOCD_OK, or IOCD_EIO with err (what failed
 * is tried again at the next call). Does nothing otherwise. */
int outbox_sync(struct outbox *ob, struct iocd_err *err);

/* Whether outbox_sync has something to do. */
bool outbox_dirty(const struct outbox *ob);

/* Bytes of the pending files. */
size_t outbox_bytes(const struct outbox *ob);

/* Pending notices moved to dead/ because the outbox was full, since open. */
uint64_t outbox_evicted(const struct outbox *ob);

#endif
