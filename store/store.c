/*
 * The store's front: accepted points are encoded once as line protocol and
 * queued as one record per message, in the on-disk journal (store/journal.c)
 * or, with journal.enabled false, in memory (store/queue.c); every enabled
 * output reads the queue as its own reader. The store keeps the books shared
 * by the outputs (queue gauges, per-subscription counts that reconcile) and
 * runs the two-step shutdown: drain until every output is done or the
 * deadline passes, then close them all.
 *
 * With notifications.history, the `alerts` points iocd makes itself have a
 * lane of their own: a second queue (journal) read by a second InfluxDB
 * writer, so that a burst of alert transitions, or a history database that
 * fails, never holds back the data (store_int.h, "The alert history").
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/container.h"
#include "core/err.h"
#include "core/log.h"
#include "core/lp.h"
#include "store/journal_int.h"
#include "store/store_int.h"

const char *store__suppressed(char *buf, size_t n, uint32_t held) {
  buf[0] = '\0';
  if (held > 0) {
    snprintf(buf, n, " (%u similar messages suppressed)", held);
  }
  return buf;
}

int64_t store__now_ms(const struct store *s) {
  return (int64_t)uv_now(s->loop);
}

/* Points and bytes held by both queues. */
static void totals(const struct store *s, uint64_t *points, uint64_t *bytes) {
  *points = 0;
  *bytes = 0;
  struct queue *qs[2] = {s->q, s->hq};
  for (int i = 0; i < 2; i++) {
    if (qs[i]) {
      uint64_t p, b;
      qs[i]->ops->totals(qs[i], &p, &b);
      *points += p;
      *bytes += b;
    }
  }
}

static void update_gauges(struct store *s) {
  uint64_t points, bytes;
  totals(s, &points, &bytes);
  stat_set(s->queue_points, (double)points);
  stat_set(s->queue_bytes, (double)bytes);
}

/* New records in q: its readers may take them. */
static void notify(struct store *s, const struct queue *q) {
  for (unsigned i = 0; i < s->nouts; i++) {
    if (s->outs[i]->q == q) {
      s->outs[i]->ops->notify(s->outs[i]);
    }
  }
}

static const char *sub_name(const struct config *cfg, size_t i) {
  const struct config_subscription *sub = &cfg->subs[i];
  if (sub->name && *sub->name) {
    return sub->name;
  }
  return sub->topic ? sub->topic : "";
}

/* Finds the source called name (len bytes), adding it with its counters
 * when it is new. Sources are never removed: records queued under a name
 * keep their meaning across reloads and restarts. */
static int intern_source(struct store *s, const char *name, size_t len,
                         uint32_t *id) {
  size_t i = 0;
  while (i < s->nsources && !(strlen(s->sources[i].name) == len &&
                              memcmp(s->sources[i].name, name, len) == 0)) {
    i++;
  }
  if (i < s->nsources) {
    *id = (uint32_t)i;
    return IOCD_OK;
  }
  if (s->nsources >= UINT32_MAX) {
    return IOCD_ENOMEM;
  }
  struct source *grown = malloc((s->nsources + 1) * sizeof *grown);
  char *copy = malloc(len + 1);
  if (!grown || !copy) {
    free(grown);
    free(copy);
    return IOCD_ENOMEM;
  }
  memcpy(copy, name, len);
  copy[len] = '\0';
  if (s->nsources) {
    memcpy(grown, s->sources, s->nsources * sizeof *grown);
  }
  free(s->sources);
  s->sources = grown;
  struct stats *st = s->stats;
  s->sources[i] = (struct source){
      .name = copy,
      .written =
          stats_counter(st, "iocd_source_points_written_total",
                        "Points written, by the subscription they came from.",
                        "subscription", copy, NULL),
      .dropped = stats_counter(
          st, "iocd_source_points_dropped_total",
          "Points dropped by the store, by the subscription they came "
          "from.",
          "subscription", copy, NULL),
      .waiting = stats_gauge(st, "iocd_source_points_waiting",
                             "Points accepted and not yet written (or "
                             "dropped) by the first output.",
                             "subscription", copy, NULL),
      .replayed = stats_counter(st, "iocd_journal_replayed_points_total",
                                "Points found in the journal at start, not "
                                "yet written by the first output, sent "
                                "again.",
                                "subscription", copy, NULL),
      .jdropped = stats_counter(st, "iocd_journal_dropped_points_total",
                                "Points deleted from the journal before "
                                "they were written, by reason.",
                                "subscription", copy, "reason", "full", NULL),
      .refused_full = stats_counter(
          st, "iocd_source_messages_refused_total",
          "Accepted messages the store could not keep, by reason.",
          "subscription", copy, "reason", "full", NULL),
      .refused_error = stats_counter(
          st, "iocd_source_messages_refused_total",
          "Accepted messages the store could not keep, by reason.",
          "subscription", copy, "reason", "error", NULL),
  };
  s->nsources++;
  *id = (uint32_t)i;
  return IOCD_OK;
}

/* Maps every subscription of cfg to a source id, adding sources by name. */
static int map_sources(struct store *s, const struct config *cfg) {
  uint32_t *map = malloc((cfg->nsubs ? cfg->nsubs : 1) * sizeof *map);
  if (!map) {
    return IOCD_ENOMEM;
  }
  for (size_t i = 0; i < cfg->nsubs; i++) {
    const char *name = sub_name(cfg, i);
    if (intern_source(s, name, strlen(name), &map[i]) != IOCD_OK) {
      free(map);
      return IOCD_ENOMEM;
    }
  }
  static const char internal[] = "iocd:alerts";
  if (intern_source(s, internal, sizeof internal - 1, &s->internal_src) !=
      IOCD_OK) {
    free(map);
    return IOCD_ENOMEM;
  }
  free(s->src_map);
  s->src_map = map;
  s->nsrc_map = cfg->nsubs;
  return IOCD_OK;
}

static void add_waiting(struct source *src, uint64_t n) {
  src->nwaiting += n;
  stat_set(src->waiting, (double)src->nwaiting);
}

static void sub_waiting(struct source *src, uint64_t n) {
  src->nwaiting = src->nwaiting > n ? src->nwaiting - n : 0;
  stat_set(src->waiting, (double)src->nwaiting);
}

/* ---- The journal's view of the books ---- */

static const char *hook_name(void *ud, uint32_t id) {
  struct store *s = ud;
  return id < s->nsources ? s->sources[id].name : "";
}

static int hook_id(void *ud, const char *name, size_t len, uint32_t *id) {
  return intern_source(ud, name, len, id);
}

static void hook_found(void *ud, uint32_t id, uint64_t points) {
  struct store *s = ud;
  stat_add(s->sources[id].replayed, points);
  add_waiting(&s->sources[id], points);
}

static void hook_dropped(void *ud, uint32_t id, uint64_t points) {
  struct store *s = ud;
  stat_add(s->sources[id].jdropped, points);
  sub_waiting(&s->sources[id], points);
}

static struct journal_hooks book_hooks(struct store *s) {
  return (struct journal_hooks){
      .ud = s,
      .source_name = hook_name,
      .source_id = hook_id,
      .found = hook_found,
      .dropped = hook_dropped,
  };
}

/* The enabled outputs in the order they read the queue; the first one is
 * the primary (InfluxDB when enabled), whose writes count per
 * subscription. Returns how many. */
static unsigned wanted(const struct config *cfg,
                       const struct output_ops *out[STORE_MAX_OUTPUTS]) {
  unsigned n = 0;
  if (cfg->influx.enabled) {
    out[n++] = &store__influx_ops;
  }
  if (cfg->file.enabled) {
    out[n++] = &store__file_ops;
  }
  return n;
}

static int validate(const struct config *cfg, struct iocd_err *err) {
  if (cfg->influx.enabled) {
    struct influx_settings st;
    store__influx_settings(&cfg->influx, &st);
    int rc = store__influx_validate(&st, err);
    if (rc) {
      return rc;
    }
  }
  if (cfg->file.enabled && (!cfg->file.path || !*cfg->file.path)) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "file.path: required when the file output is "
                        "enabled (\"-\" for stdout)");
  }
  if (store__history_wanted(cfg)) {
    return store__history_validate(cfg, err);
  }
  return IOCD_OK;
}

static size_t buffer_bytes(const struct config *cfg) {
  return cfg->influx.buffer_bytes ? cfg->influx.buffer_bytes
                                  : STORE_DEFAULT_BUFFER_BYTES;
}

/* The in-memory limit of the history's queue without the journal. */
static size_t history_buffer_bytes(const struct config *cfg) {
  size_t cap = buffer_bytes(cfg);
  return cap < STORE_HISTORY_MEMORY ? cap : STORE_HISTORY_MEMORY;
}

static void free_store(struct store *s) {
  if (s->q) {
    s->q->ops->free(s->q);
  }
  if (s->hq) {
    s->hq->ops->free(s->hq);
  }
  for (size_t i = 0; i < s->nsources; i++) {
    free(s->sources[i].name);
  }
  free(s->sources);
  free(s->src_map);
  free(s->line_end);
  buf_cleanup(&s->scratch);
  free(s);
}

static void finish(struct store *s);

static bool is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Removes the files of a journal directory that holds nothing to send any
 * more (its segments, checkpoints and lock), then the directory. */
static void remove_journal_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    return;
  }
  struct dirent *e;
  char path[4096];
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
      continue;
    }
    int k = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (k > 0 && (size_t)k < sizeof path && unlink(path) != 0) {
      log_warn("store", "cannot delete %s: %s", path, strerror(errno));
    }
  }
  closedir(d);
  if (rmdir(dir) != 0) {
    log_warn("store", "cannot delete %s: %s", dir, strerror(errno));
  }
}

/* Opens the alert history's lane (store_int.h): its queue and its InfluxDB
 * writer. Without a history in cfg the lane opens only to finish what an
 * earlier run journaled for one: those points go to influxdb's database,
 * new `alerts` points go with the data, and a journal with nothing left is
 * removed. Returns IOCD_OK, or an error with err set (what was opened is
 * then the store's to close). */
static int open_history(struct store *s, const struct config *cfg,
                        struct iocd_err *err) {
  bool want = store__history_wanted(cfg);
  if (!cfg->influx.enabled) {
    return IOCD_OK;
  }
  char dir[4096];
  struct journal_settings js;
  store__journal_history_settings(cfg, dir, sizeof dir, &js);
  if (!want && (!cfg->journal.enabled || !is_dir(dir))) {
    return IOCD_OK;
  }
  const char *names[1] = {store__influx_history_ops.name};
  if (cfg->journal.enabled) {
    struct journal_hooks hooks = book_hooks(s);
    s->hq = store__journal_open(s->loop, &js, names, 1, &hooks, s->stats, err);
    if (!s->hq) {
      return IOCD_EIO; /* err says why */
    }
  } else {
    s->hq = store__memq_new(history_buffer_bytes(cfg), 1);
    if (!s->hq) {
      return iocd_err_set(err, IOCD_ENOMEM, "store: out of memory");
    }
  }
  uint64_t left, bytes;
  s->hq->ops->totals(s->hq, &left, &bytes);
  if (!want && left == 0) {
    s->hq->ops->free(s->hq);
    s->hq = NULL;
    remove_journal_dir(dir);
    log_info("store",
             "%s removed: notifications.history is no longer set and every "
             "alert point in it was written",
             dir);
    return IOCD_OK;
  }
  if (!want) {
    log_warn("store",
             "%s holds %llu alert points journaled for notifications.history, "
             "which is no longer set: they are written to influxdb.database",
             dir, (unsigned long long)left);
  }
  s->route_history = want;
  struct output *o = store__influx_history_ops.create(s, s->hq, 0, cfg, err);
  if (!o) {
    return IOCD_EIO; /* err says why */
  }
  o->primary = true;
  s->outs[s->nouts++] = o;
  return IOCD_OK;
}

struct store *store_new(uv_loop_t *loop, const struct config *cfg,
                        struct stats *stats, struct iocd_err *err) {
  if (validate(cfg, err) != IOCD_OK) {
    return NULL;
  }
  struct store *s = calloc(1, sizeof *s);
  if (!s) {
    iocd_err_set(err, IOCD_ENOMEM, "store: out of memory");
    return NULL;
  }
  s->loop = loop;
  s->cfg = cfg;
  s->stats = stats;
  size_t cap = buffer_bytes(cfg);
  buf_init(&s->scratch, cap < UINT32_MAX ? cap : UINT32_MAX);
  s->queue_points = stats_gauge(stats, "iocd_queue_points",
                                "Points queued and not yet written by every "
                                "output.",
                                NULL);
  s->queue_bytes = stats_gauge(stats, "iocd_queue_bytes",
                               "Bytes of line protocol of the points in "
                               "iocd_queue_points (the journal's files are "
                               "iocd_journal_bytes).",
                               NULL);
  if (map_sources(s, cfg) != IOCD_OK) {
    iocd_err_set(err, IOCD_ENOMEM, "store: out of memory");
    free_store(s);
    return NULL;
  }
  const struct output_ops *ops[STORE_MAX_OUTPUTS];
  unsigned n = wanted(cfg, ops);
  if (n > 0 && cfg->journal.enabled) {
    char dir[4096];
    struct journal_settings js;
    store__journal_settings(cfg, dir, sizeof dir, &js);
    const char *names[STORE_MAX_OUTPUTS];
    for (unsigned i = 0; i < n; i++) {
      names[i] = ops[i]->name;
    }
    struct journal_hooks hooks = book_hooks(s);
    s->q = store__journal_open(loop, &js, names, n, &hooks, stats, err);
    if (!s->q) {
      free_store(s);
      return NULL;
    }
    s->journal = true;
  } else if (n > 0) {
    s->q = store__memq_new(cap, n);
    if (!s->q) {
      iocd_err_set(err, IOCD_ENOMEM, "store: out of memory");
      free_store(s);
      return NULL;
    }
  }
  uv_timer_init(loop, &s->timer);
  for (unsigned i = 0; i < n; i++) {
    struct output *o = ops[i]->create(s, s->q, i, cfg, err);
    if (!o) {
      /* Tear down what was built: outputs close asynchronously, so the
       * store is freed by its timer's close callback, with no callback. */
      s->closing = true;
      finish(s);
      return NULL;
    }
    o->primary = i == 0;
    s->outs[s->nouts++] = o;
  }
  if (open_history(s, cfg, err) != IOCD_OK) {
    s->closing = true;
    finish(s);
    return NULL;
  }
  update_gauges(s);
  /* What the journals kept from an earlier run goes out without waiting
   * for a new message. */
  if (store_pending_points(s) > 0) {
    for (unsigned i = 0; i < s->nouts; i++) {
      s->outs[i]->ops->notify(s->outs[i]);
    }
  }
  return s;
}

int store_append(struct store *s, size_t source, const struct point_batch *pb) {
  if (s->closing) {
    return IOCD_ECLOSED;
  }
  if (source >= s->nsrc_map && source != STORE_SOURCE_INTERNAL &&
      source != STORE_SOURCE_SELF) {
    return IOCD_EINVAL;
  }
  if (pb->npoints == 0 || s->nouts == 0) {
    return IOCD_OK;
  }
  if (source == STORE_SOURCE_SELF && !s->has_self_src) {
    static const char self[] = "iocd:self";
    if (intern_source(s, self, sizeof self - 1, &s->self_src) != IOCD_OK) {
      return IOCD_ENOMEM;
    }
    s->has_self_src = true;
  }
  uint32_t src_id = source == STORE_SOURCE_INTERNAL ? s->internal_src
                    : source == STORE_SOURCE_SELF   ? s->self_src
                                                    : s->src_map[source];
  struct queue *q =
      source == STORE_SOURCE_INTERNAL && s->route_history ? s->hq : s->q;
  struct source *src = &s->sources[src_id];
  if (pb->npoints > UINT32_MAX) {
    stat_inc(src->refused_full);
    return IOCD_EFULL;
  }
  if (pb->npoints > s->cap_line_end) {
    uint32_t *ends = malloc(pb->npoints * sizeof *ends);
    if (!ends) {
      stat_inc(src->refused_error);
      return IOCD_ENOMEM;
    }
    free(s->line_end);
    s->line_end = ends;
    s->cap_line_end = pb->npoints;
  }
  buf_reset(&s->scratch);
  for (size_t i = 0; i < pb->npoints; i++) {
    int rc = lp_append_point(&s->scratch, pb, &pb->points[i]);
    if (rc == IOCD_ETOOBIG) {
      stat_inc(src->refused_full);
      return IOCD_EFULL;
    }
    if (rc) {
      stat_inc(src->refused_error);
      return rc;
    }
    s->line_end[i] = (uint32_t)s->scratch.len;
  }
  int rc = q->ops->append(q, s->scratch.data, s->scratch.len, s->line_end,
                          (uint32_t)pb->npoints, src_id, store__now_ms(s));
  if (rc) {
    stat_inc(rc == IOCD_EFULL ? src->refused_full : src->refused_error);
    return rc;
  }
  add_waiting(src, pb->npoints);
  update_gauges(s);
  notify(s, q);
  return IOCD_OK;
}

int store_reconfigure(struct store *s, const struct config *cfg,
                      struct iocd_err *err) {
  if (s->closing) {
    return iocd_err_set(err, IOCD_ESTATE, "store: closing");
  }
  int rc = validate(cfg, err);
  if (rc) {
    return rc;
  }
  const struct output_ops *ops[STORE_MAX_OUTPUTS];
  unsigned n = wanted(cfg, ops);
  bool same = n == s->nouts;
  for (unsigned i = 0; same && i < n; i++) {
    same = ops[i] == s->outs[i]->ops;
  }
  if (!same) {
    log_warn("store",
             "enabling or disabling an output (influxdb.enabled, "
             "file.enabled) takes effect at the next restart");
  }
  if (cfg->journal.enabled != s->journal ||
      (s->journal && strcmp(cfg->data_dir ? cfg->data_dir : "",
                            s->cfg->data_dir ? s->cfg->data_dir : "") != 0)) {
    log_warn("store",
             "journal.enabled and data_dir take effect at the next restart");
  }
  if (store__history_wanted(cfg) != s->route_history) {
    log_warn("store",
             "adding or removing notifications.history takes effect at the "
             "next restart: until then the alert points keep the queue they "
             "have, and are written where the new configuration says");
  }
  rc = map_sources(s, cfg);
  if (rc) {
    return iocd_err_set(err, rc, "store: out of memory");
  }
  /* From here on nothing of the old config may be used: it is freed after
   * this returns. */
  s->cfg = cfg;
  if (s->q && s->journal && cfg->journal.enabled) {
    char dir[4096];
    struct journal_settings js;
    store__journal_settings(cfg, dir, sizeof dir, &js);
    store__journal_apply(s->q, &js);
  } else if (s->q) {
    s->q->ops->set_limit(s->q, buffer_bytes(cfg));
  }
  if (s->hq && s->journal && cfg->journal.enabled) {
    char dir[4096];
    struct journal_settings js;
    store__journal_history_settings(cfg, dir, sizeof dir, &js);
    store__journal_apply(s->hq, &js);
  } else if (s->hq) {
    s->hq->ops->set_limit(s->hq, history_buffer_bytes(cfg));
  }
  size_t cap = buffer_bytes(cfg);
  s->scratch.max = cap < UINT32_MAX ? cap : UINT32_MAX;
  for (unsigned i = 0; i < s->nouts; i++) {
    rc = s->outs[i]->ops->reconfigure(s->outs[i], cfg, err);
    if (rc) {
      return rc;
    }
  }
  return IOCD_OK;
}

uint64_t store_pending_points(const struct store *s) {
  uint64_t points, bytes;
  totals(s, &points, &bytes);
  return points;
}

bool store_healthy(const struct store *s, char *why, size_t n) {
  /* The journals first: while their disk is full nothing new is kept, and
   * that is the cause to name. */
  if (s->q && s->q->ops->healthy && !s->q->ops->healthy(s->q, why, n)) {
    return false;
  }
  if (s->hq && s->hq->ops->healthy && !s->hq->ops->healthy(s->hq, why, n)) {
    return false;
  }
  for (unsigned i = 0; i < s->nouts; i++) {
    const struct output *o = s->outs[i];
    if (o && o->ops->healthy && !o->ops->healthy(o, why, n)) {
      return false;
    }
  }
  return true;
}

/* The data's queue only: the history's never pauses intake. */
double store_fill(const struct store *s) {
  if (!s->q || !s->cfg) {
    return 0;
  }
  if (s->q->ops->fill) {
    return s->q->ops->fill(s->q);
  }
  uint64_t points, bytes;
  s->q->ops->totals(s->q, &points, &bytes);
  size_t cap = buffer_bytes(s->cfg);
  return cap ? (double)bytes / (double)cap : 0;
}

void store__count_written(struct store *s, struct output *o,
                          const struct sbatch *b, size_t l0, size_t l1) {
  if (!o->primary) {
    return;
  }
  for (size_t i = l0; i < l1; i++) {
    stat_inc(s->sources[b->line_src[i]].written);
  }
}

void store__count_dropped(struct store *s, struct output *o,
                          const struct sbatch *b, size_t l0, size_t l1,
                          const char *reason) {
  stat_add(stats_counter(s->stats, "iocd_points_dropped_total",
                         "Points an output gave up on, by reason.", "output",
                         o->ops->name, "reason", reason, NULL),
           l1 - l0);
  if (!o->primary) {
    return;
  }
  for (size_t i = l0; i < l1; i++) {
    stat_inc(s->sources[b->line_src[i]].dropped);
  }
}

void store__confirm(struct store *s, struct output *o, struct sbatch *b) {
  if (o->primary) {
    for (size_t i = 0; i < b->npoints; i++) {
      struct source *src = &s->sources[b->line_src[i]];
      src->nwaiting = src->nwaiting ? src->nwaiting - 1 : 0;
      if (i + 1 == b->npoints || b->line_src[i + 1] != b->line_src[i]) {
        stat_set(src->waiting, (double)src->nwaiting);
      }
    }
  }
  o->q->ops->confirm(o->q, o->reader, b);
  store__batch_free(b);
  update_gauges(s);
}

static void on_timer_closed(uv_handle_t *h) {
  struct store *s = container_of((uv_timer_t *)h, struct store, timer);
  store_closed_fn *cb = s->close_cb;
  void *ud = s->close_ud;
  uint64_t unwritten = s->unwritten;
  if (cb) {
    cb(ud, unwritten);
  }
  free_store(s);
}

void store__output_closed(struct store *s) {
  if (--s->nopen > 0) {
    return;
  }
  s->unwritten = store_pending_points(s);
  update_gauges(s);
  if (s->unwritten > 0 && s->journal) {
    log_warn("store",
             "closed with %llu points not written: they stay in the "
             "journal and are sent after the next start",
             (unsigned long long)s->unwritten);
  } else if (s->unwritten > 0) {
    log_warn("store", "closed with %llu points not written",
             (unsigned long long)s->unwritten);
  }
  uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

/* Second step of the shutdown: every output aborts and closes. */
static void finish(struct store *s) {
  if (s->finishing) {
    return;
  }
  s->finishing = true;
  uv_timer_stop(&s->timer);
  s->nopen = s->nouts + 1;
  for (unsigned i = 0; i < s->nouts; i++) {
    struct output *o = s->outs[i];
    s->outs[i] = NULL;
    o->ops->close(o);
  }
  s->nouts = 0;
  /* The extra count keeps the store alive while the loop above runs, even
   * when every output closes synchronously. */
  store__output_closed(s);
}

void store__output_drained(struct store *s, struct output *o) {
  if (o->drained || !s->closing || s->finishing) {
    return;
  }
  o->drained = true;
  for (unsigned i = 0; i < s->nouts; i++) {
    if (!s->outs[i]->drained) {
      return;
    }
  }
  finish(s);
}

static void on_deadline(uv_timer_t *t) {
  struct store *s = container_of(t, struct store, timer);
  log_warn("store", "shutdown deadline reached: aborting what is in flight");
  finish(s);
}

void store_close(struct store *s, uint64_t timeout_ms, store_closed_fn *cb,
                 void *ud) {
  if (s->closing) {
    return;
  }
  s->closing = true;
  s->close_cb = cb;
  s->close_ud = ud;
  uv_timer_start(&s->timer, on_deadline, timeout_ms, 0);
  int64_t deadline = store__now_ms(s) + (int64_t)timeout_ms;
  for (unsigned i = 0; i < s->nouts && !s->finishing; i++) {
    s->outs[i]->ops->drain(s->outs[i], deadline);
  }
  if (s->nouts == 0) {
    finish(s);
  }
}
