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
 * This file holds the journal object: its paths, segment and in-memory
 * record bookkeeping, metrics, the struct queue_ops table, opening (the
 * settings, the directory lock), reloading and freeing. The other parts:
 * journal_record.c (the record format), journal_scan.c (the scan at start),
 * journal_write.c (appending, writing, fsync and checkpoint files),
 * journal_read.c (reading back, batches for the outputs, confirmations) and
 * journal_space.c (deleting segments, when_full, fill and health);
 * journal_int.h has the structures they share. docs/durability.md states
 * what the journal guarantees.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/container.h"
#include "core/file.h"
#include "core/log.h"
#include "store/journal_int.h"

#define RETRY_MS 1000

/* ---- Paths and time ----------------------------------------------------- */

int64_t journal__wall_ms(void) {
  return clock_realtime_ns() / NS_PER_MS;
}

void journal__seg_name(const struct jseg *g, char *out, size_t n) {
  snprintf(out, n, "%0*" PRIu64 SEG_SUFFIX, SEG_DIGITS, g->first_seq);
}

/* dir + "/" + file, malloc'd. */
char *journal__path_join(const char *dir, const char *file) {
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

char *journal__seg_path(const struct journal *j, const struct jseg *g) {
  char name[64];
  journal__seg_name(g, name, sizeof name);
  return journal__path_join(j->dir, name);
}

char *journal__ckpt_path(const struct journal *j, const struct jreader *r) {
  char file[128];
  snprintf(file, sizeof file, "checkpoint.%s", r->name);
  return journal__path_join(j->dir, file);
}

/* ---- Growing arrays ----------------------------------------------------- */

/* A zeroed array of cap elements of size bytes that starts with the used
 * elements of old, which it replaces (old is freed). Returns NULL when out
 * of memory (or cap * size overflows), and old is then left as it was. The
 * one copy-and-swap behind every array here that grows. */
void *journal__regrow(void *old, size_t used, size_t cap, size_t size) {
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
int journal__counts_fit(uint64_t **v, size_t *n, uint32_t id) {
  if (id < *n) {
    return IOCD_OK;
  }
  size_t cap = (size_t)id + 8;
  uint64_t *nv = journal__regrow(*v, *n, cap, sizeof *nv);
  if (!nv) {
    return IOCD_ENOMEM;
  }
  *v = nv;
  *n = cap;
  return IOCD_OK;
}

/* ---- Segments ----------------------------------------------------------- */

struct jseg *journal__seg_new(uint64_t first_seq) {
  struct jseg *g = calloc(1, sizeof *g);
  if (!g) {
    return NULL;
  }
  g->first_seq = first_seq;
  g->end_seq = first_seq;
  g->fd = -1;
  return g;
}

void journal__seg_link(struct journal *j, struct jseg *g) {
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
int journal__seg_src(struct jseg *g, uint32_t id) {
  return journal__counts_fit(&g->src_utk, &g->nsrc, id);
}

int journal__seg_add_bad(struct jseg *g, uint64_t from, uint64_t to) {
  struct jbad *v = journal__regrow(g->bad, g->nbad, g->nbad + 1, sizeof *v);
  if (!v) {
    return IOCD_ENOMEM;
  }
  g->bad = v;
  g->bad[g->nbad++] = (struct jbad){from, to};
  return IOCD_OK;
}

const struct jbad *journal__seg_find_bad(const struct jseg *g, uint64_t off) {
  for (size_t i = 0; i < g->nbad; i++) {
    if (g->bad[i].from == off) {
      return &g->bad[i];
    }
  }
  return NULL;
}

void journal__seg_free(struct jseg *g) {
  if (!g) {
    return;
  }
  free(g->src_utk);
  free(g->bad);
  free(g);
}

/* ---- The memory tail ---------------------------------------------------- */

int journal__ring_grow(struct journal *j) {
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
  j->cache_mem -= journal__rec_mem(r);
  free(r);
  j->ring[j->ring_head] = NULL;
  j->ring_head = (j->ring_head + 1) & (j->ring_cap - 1);
  j->count--;
  j->cache_first++;
}

uint64_t journal__min_cursor(const struct journal *j) {
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
void journal__evict(struct journal *j) {
  uint64_t m = journal__min_cursor(j);
  while (j->count > 0 && j->cache_first < m) {
    evict_front(j);
  }
  while (j->count > 0 && j->cache_mem > j->st.memory_bytes &&
         j->cache_first < j->flushed_seq) {
    evict_front(j);
  }
}

/* ---- Metrics ------------------------------------------------------------ */

void journal__set_gauges(struct journal *j) {
  stat_set(j->m_bytes, (double)j->bytes);
  stat_set(j->m_segments, (double)j->nsegs);
}

void journal__set_backlog(struct jreader *r) {
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
    return journal__rec_at(j, seq)->wall_ms;
  }
  struct jseg *g = r->back.seg;
  if (!g) {
    return -1;
  }
  struct jview v;
  if (journal__read_at(j, g, r->back.off, journal__seg_readable(j, g), &v) ==
      JREC_OK) {
    return v.wall_ms;
  }
  return g->first_wall_ms;
}

void journal__set_oldest(struct journal *j) {
  int64_t now = journal__wall_ms();
  for (unsigned i = 0; i < j->nreaders; i++) {
    struct jreader *r = &j->rd[i];
    int64_t w = r->pending ? oldest_wall(j, r) : -1;
    double age = w < 0 || now < w ? 0 : (double)(now - w) / 1000.0;
    stat_set(r->m_oldest, age);
  }
}

/* ---- The queue operations ----------------------------------------------- */

static int64_t tick_ms(const struct journal_settings *st) {
  if (st->fsync == JOURNAL_FSYNC_INTERVAL && st->fsync_interval_ms < RETRY_MS) {
    return st->fsync_interval_ms > 0 ? st->fsync_interval_ms : RETRY_MS;
  }
  return RETRY_MS;
}

static void journal_set_limit(struct queue *q, size_t max_bytes) {
  /* The journal's limits come from its own settings. */
  (void)q;
  (void)max_bytes;
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
    journal__make_room(j);
  }
  if (j->active && j->wbuf.len > 0 && journal__flush(j) != IOCD_OK) {
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
    char *path = journal__ckpt_path(j, r);
    if (!path) {
      continue;
    }
    if (j->job && j->job->nfin < STORE_MAX_OUTPUTS) {
      j->job->fin[j->job->nfin++] = (struct jckpt){path, r->conf, i, 0};
      continue;
    }
    int rc = journal__write_checkpoint(path, r->conf, sync);
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
  journal__rb_forget(j);
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
    journal__seg_free(g);
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
    .append = journal__append,
    .level = journal__level,
    .take = journal__take,
    .confirm = journal__confirm,
    .totals = journal__totals,
    .set_limit = journal_set_limit,
    .free = journal_free,
    .pace = journal__pace,
    .fill = journal__fill,
    .healthy = journal__healthy,
};

/* ---- Opening ------------------------------------------------------------ */

static int mkdir_p(const char *dir, struct iocd_err *err) {
  int e = file_mkdirs(dir);
  if (e) {
    return iocd_err_set(err, IOCD_EIO, "journal: cannot create %s: %s", dir,
                        strerror(e));
  }
  return IOCD_OK;
}

static int take_lock(struct journal *j, struct iocd_err *err) {
  char *path = journal__path_join(j->dir, "lock");
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
      journal__ring_grow(j) != IOCD_OK) {
    if (!err || !err->msg[0]) {
      iocd_err_set(err, IOCD_ENOMEM, "journal: out of memory");
    }
    goto fail;
  }
  if (journal__scan(j, err) != IOCD_OK) {
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
    char *path = journal__ckpt_path(j, r);
    int rc = path ? journal__write_checkpoint(path, r->conf, sync) : ENOMEM;
    if (rc && journal__no_space(rc)) {
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
  uv_timer_start(&j->h->tick, journal__on_tick, (uint64_t)every,
                 (uint64_t)every);
  j->last_ckpt_ms = journal__loop_ms(j);
  j->last_sync_ms = j->last_ckpt_ms;
  j->ready = true;
  journal__set_gauges(j);
  journal__set_oldest(j);
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
    uv_timer_start(&j->h->tick, journal__on_tick, (uint64_t)every,
                   (uint64_t)every);
  }
  journal__evict(j);
}

int store__journal_flush(struct queue *q) {
  struct journal *j = container_of(q, struct journal, base);
  return journal__flush(j);
}

uint64_t store__journal_checkpoint(struct queue *q, unsigned reader) {
  struct journal *j = container_of(q, struct journal, base);
  return j->rd[reader].conf;
}

size_t store__journal_segments(struct queue *q) {
  struct journal *j = container_of(q, struct journal, base);
  return j->nsegs;
}
