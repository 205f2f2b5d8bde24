/*
 * Writing the journal: append copies the record into a buffer, and a
 * uv_check_t writes that buffer with one write(2) right after the I/O
 * callbacks of the iteration ran (libmosquitto's loop_read and the messages
 * it delivered). fdatasync runs never, every interval on the thread pool, or
 * after each write; the thread-pool job also writes the checkpoint files.
 * A failed write keeps the records in memory and is retried by the tick.
 * docs/durability.md states what that guarantees.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/container.h"
#include "core/file.h"
#include "core/log.h"
#include "store/journal_int.h"

/* ---- Checkpoint files (also written on the thread pool) ----------------- */

/* Writes "SEQ\n" to path atomically (core/file.h), so that a reader sees
 * the old or the new checkpoint, never half of one, and with sync the new
 * one survives a power loss. Returns 0 or an errno value. */
int journal__write_checkpoint(const char *path, uint64_t seq, bool sync) {
  char text[32];
  int len = snprintf(text, sizeof text, "%" PRIu64 "\n", seq);
  return file_write_atomic(path, text, (size_t)len, sync);
}

/* ---- Writing ------------------------------------------------------------ */

static void check_start(struct journal *j);

static void set_werr(struct journal *j, int err, const char *what,
                     const struct jseg *g) {
  stat_inc(j->m_werrors);
  if (journal__no_space(err)) {
    stat_inc(j->m_nospace);
  }
  int64_t now = journal__loop_ms(j);
  if (!j->werr) {
    j->werr = true;
    j->werr_since_ms = now;
  }
  j->werr_errno = err;
  uint32_t held = 0;
  if (log_limit_allow(&j->werr_lim, now, 1, 60000, &held)) {
    char name[64];
    journal__seg_name(g, name, sizeof name);
    log_error("journal",
              "%s %s/%s failed: %s; %zu bytes kept in memory and intake "
              "paused, retrying every second%s",
              what, j->dir, name, strerror(err), j->wbuf.len, SUPPRESSED(held));
  }
}

/* Writes the buffered records to the active segment's file, creating it
 * first if needed, and syncs it under the always policy. Returns IOCD_OK or
 * IOCD_EIO (the data stays buffered; the tick retries). */
int journal__flush(struct journal *j) {
  struct jseg *g = j->active;
  if (j->wbuf.len > 0) {
    if (g->fd < 0) {
      char *path = journal__seg_path(j, g);
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
    uint64_t base = journal__seg_readable(j, g);
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
             (double)(journal__loop_ms(j) - j->werr_since_ms) / 1000.0);
    j->werr = false;
  }
  journal__evict(j);
  return IOCD_OK;
}

static void on_check(uv_check_t *h) {
  struct jhandles *hs = container_of(h, struct jhandles, check);
  struct journal *j = hs->j;
  uv_check_stop(h);
  if (j && !j->werr) {
    (void)journal__flush(j);
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
        journal__write_checkpoint(job->ck[i].path, job->ck[i].seq, job->sync);
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
      int rc = journal__write_checkpoint(job->fin[i].path, job->fin[i].seq,
                                         job->sync);
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
      if (journal__no_space(err)) {
        stat_inc(j->m_nospace);
      }
      /* Apart from the segments' limit: a failing segment write must not
       * hide this one until exit. */
      uint32_t held = 0;
      if (log_limit_allow(&j->ckpt_lim, journal__loop_ms(j), 1, 60000, &held)) {
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
  journal__delete_done(j);
}

/* Starts the disk work that is due: fdatasync (interval policy), and the
 * checkpoints that moved once JOURNAL_CHECKPOINT_MS passed. */
static void job_start(struct journal *j) {
  if (j->job) {
    return;
  }
  int64_t now = journal__loop_ms(j);
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
      char *path = journal__ckpt_path(j, r);
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

void journal__on_tick(uv_timer_t *t) {
  struct jhandles *hs = container_of(t, struct jhandles, tick);
  struct journal *j = hs->j;
  if (!j) {
    return;
  }
  if (j->werr) {
    journal__make_room(j);
  }
  if (j->werr ||
      (j->wbuf.len > 0 && !uv_is_active((uv_handle_t *)&hs->check))) {
    (void)journal__flush(j);
  }
  job_start(j);
  if (!j->job) {
    journal__delete_done(j);
  }
  journal__set_gauges(j);
  journal__set_oldest(j);
}

/* ---- Appending ---------------------------------------------------------- */

int journal__append(struct queue *q, const char *data, size_t len,
                    const uint32_t *line_end, uint32_t npoints, uint32_t source,
                    int64_t now_ms) {
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
      journal__drop_oldest(j);
    }
  }
  if (j->bytes + disk > j->st.max_bytes) {
    uint32_t held = 0;
    if (log_limit_allow(&j->full_lim, journal__loop_ms(j), LOG_BURST,
                        LOG_WINDOW_MS, &held)) {
      log_error("journal",
                "journal full (%" PRIu64 " of max_bytes %" PRIu64
                " bytes): message from %s not stored%s",
                j->bytes, j->st.max_bytes, name, SUPPRESSED(held));
    }
    return IOCD_EFULL;
  }
  if (j->active && j->active->bytes > 0 &&
      j->active->bytes + disk > j->st.segment_bytes) {
    if (j->wbuf.len == 0 || journal__flush(j) == IOCD_OK) {
      retire_active(j);
    }
  }
  if (j->count == j->ring_cap && journal__ring_grow(j) != IOCD_OK) {
    return IOCD_ENOMEM;
  }
  struct jrec *r = malloc(sizeof *r + (size_t)npoints * sizeof(uint32_t) + len);
  if (!r) {
    return IOCD_ENOMEM;
  }
  struct jseg *g = j->active;
  bool fresh = !g;
  if (fresh) {
    g = journal__seg_new(j->next_seq);
    if (!g) {
      free(r);
      return IOCD_ENOMEM;
    }
  }
  int rc = journal__seg_src(g, source);
  if (!rc) {
    rc = journal__encode(&j->wbuf, j->next_seq, journal__wall_ms(), name,
                         name_len, line_end, npoints, data, len);
  }
  if (rc) {
    free(r);
    if (fresh) {
      journal__seg_free(g);
    }
    return rc == IOCD_ETOOBIG ? IOCD_EFULL : rc;
  }
  if (fresh) {
    journal__seg_link(j, g);
    j->active = g;
  }
  const unsigned char *h =
      (const unsigned char *)j->wbuf.data + j->wbuf.len - disk;
  r->seq = j->next_seq;
  r->wall_ms = (int64_t)journal__get64(h + 24);
  r->loop_ms = now_ms;
  r->seg = g;
  r->off = g->bytes;
  r->source = source;
  r->npoints = npoints;
  r->len = len;
  memcpy(r->line_end, line_end, (size_t)npoints * sizeof(uint32_t));
  if (len) {
    memcpy(journal__rec_data(r), data, len);
  }
  j->ring[(j->ring_head + j->count) & (j->ring_cap - 1)] = r;
  j->count++;
  j->cache_mem += journal__rec_mem(r);

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
    journal__count_add(&g->utk[i], npoints, len);
    journal__count_add(&rd->utk, npoints, len);
    if (rd->split) {
      journal__count_add(&g->live[i], npoints, len);
      journal__count_add(&rd->lutk, npoints, len);
    }
    rd->pending += npoints;
    rd->pending_bytes += len;
    journal__set_backlog(rd);
  }
  j->next_seq++;
  check_start(j);
  journal__evict(j);
  return IOCD_OK;
}
