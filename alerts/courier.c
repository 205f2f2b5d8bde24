/*
 * The courier (courier.h): per receiver a lane that sends the oldest of its
 * pending notices, one at a time, and a timer for the next retry. The
 * outbox is the only list of what is pending; a lane finds its next notice
 * there (the lowest id for its receiver), so a restart, a reload or an
 * eviction needs no bookkeeping of its own.
 */
#include "alerts/courier.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/template.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/container.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/mem.h"

#define LOG_MOD "alerts"
/* When deliver cannot even start an attempt (out of memory). */
#define STALL_RETRY_MS 1000

struct courier;

/* One receiver's lane. */
struct lane {
  uv_timer_t timer; /* the head notice's next try */
  struct courier *c;
  struct lane *next;
  char *receiver;
  uint64_t inflight; /* the notice out, 0: none */
};

/* A notice given up while the outbox was changing, reported after. */
struct gone {
  struct gone *next;
  struct notice *notice;
  char *why;
};

struct courier {
  uv_loop_t *loop;
  struct curl_loop *curl;
  bool own_curl;
  const struct config_notify *cfg;
  struct stats *stats;
  struct outbox *ob;
  struct deliver *dl;
  deliver_templates_fn *templates;
  void *templates_ud;
  courier_dead_fn *on_dead;
  courier_sent_fn *on_sent;
  void *dead_ud;
  struct lane *lanes;
  struct gone *gone; /* evicted during outbox_put */
  struct metric *pending;
  struct metric *dead;
  struct metric *evicted;
  uv_timer_t sync_timer; /* outbox_sync, with sync_later */
  int sync_interval_ms;
  bool closing;
  unsigned open; /* lanes' timers, deliver, the own curl loop, sync_timer */
  courier_closed_fn *closed;
  void *closed_ud;
};

static void pump(struct lane *l);

static void gauges(struct courier *c) {
  if (!c->stats || !c->ob) {
    return;
  }
  size_t n;
  outbox_list(c->ob, &n);
  stat_set(c->pending, (double)n);
  outbox_dead_list(c->ob, &n);
  stat_set(c->dead, (double)n);
}

/* ---- dead letters ---- */

static struct notice *make_dead_letter(struct courier *c,
                                       const struct notice *failed,
                                       const char *why) {
  struct notice *d = notice_new();
  if (!d) {
    return NULL;
  }
  d->kind = NOTICE_DEAD_LETTER;
  d->created_ns = clock_realtime_ns();
  enum config_language lang = CONFIG_LANG_VI;
  const struct config_receiver *r = deliver_receiver(c->dl, failed->receiver);
  const struct template_set *ts = r ? c->templates(c->templates_ud, r) : NULL;
  if (ts) {
    lang = template_set_lang(ts);
  }
  struct buf text;
  buf_init(&text, 0);
  bool ok = template_dead_letter_text(lang, failed, why, &text) == IOCD_OK;
  d->text = ok ? buf_detach(&text, NULL) : NULL;
  buf_cleanup(&text);
  ok = ok && d->text;
  if (ok && failed->group_key) {
    d->group_key = mem_strdup(failed->group_key);
    ok = d->group_key != NULL;
  }
  ok = ok &&
       notice_labels_copy(&d->group_labels, &failed->group_labels) == IOCD_OK;
  if (ok && failed->nalerts > 0) {
    d->alerts = calloc(failed->nalerts, sizeof *d->alerts);
    ok = d->alerts != NULL;
    for (size_t i = 0; ok && i < failed->nalerts; i++) {
      ok = notice_alert_copy(&d->alerts[i], &failed->alerts[i]) == IOCD_OK;
      d->nalerts = ok ? i + 1 : i;
    }
  }
  if (!ok) {
    notice_free(d);
    return NULL;
  }
  return d;
}

/* Reports failed (owned by the caller) as given up. Called last by whoever
 * calls it: the callback may submit or close. */
static void report_dead(struct courier *c, const struct notice *failed,
                        const char *why) {
  if (failed->kind == NOTICE_DEAD_LETTER) {
    log_error(LOG_MOD,
              "notification %016" PRIx64
              " (a dead letter) to %s could not be delivered either: %s",
              failed->id, failed->receiver ? failed->receiver : "?",
              why ? why : "");
    return;
  }
  if (!c->on_dead) {
    return;
  }
  struct notice *d = make_dead_letter(c, failed, why);
  if (!d) {
    log_error(LOG_MOD,
              "notification %016" PRIx64 ": no dead letter: out of memory",
              failed->id);
    return;
  }
  c->on_dead(c->dead_ud, d, failed, why ? why : "");
  notice_free(d);
}

/* Reports what outbox_put gave up, in order. */
static void report_gone(struct courier *c) {
  while (c->gone && !c->closing) {
    struct gone *g = c->gone;
    c->gone = g->next;
    report_dead(c, g->notice, g->why);
    notice_free(g->notice);
    free(g->why);
    free(g);
  }
}

/* outbox_evict_fn: note it; reported once outbox_put returned. */
static void on_evict(void *ud, const struct notice *n, const char *why) {
  struct courier *c = ud;
  deliver_forget(c->dl, n->id);
  if (c->stats) {
    stat_inc(c->evicted);
    stat_inc(stats_counter(c->stats, "iocd_notifications_total",
                           "Notification attempts, by receiver and outcome.",
                           "receiver", n->receiver ? n->receiver : "?",
                           "outcome", "dead", NULL));
  }
  struct gone *g = calloc(1, sizeof *g);
  if (g) {
    g->notice = notice_dup(n);
    g->why = mem_strdup(why);
  }
  if (!g || !g->notice || !g->why) {
    if (g) {
      notice_free(g->notice);
      free(g->why);
      free(g);
    }
    log_error(LOG_MOD,
              "notification %016" PRIx64 ": no dead letter: out of memory",
              n->id);
    return;
  }
  struct gone **pp = &c->gone;
  while (*pp) {
    pp = &(*pp)->next;
  }
  *pp = g;
}

/* ---- lanes ---- */

static void on_lane_closed(uv_handle_t *h);

static void on_lane_timer(uv_timer_t *t) {
  pump(container_of(t, struct lane, timer));
}

static struct lane *lane_get(struct courier *c, const char *receiver) {
  for (struct lane *l = c->lanes; l; l = l->next) {
    if (strcmp(l->receiver, receiver) == 0) {
      return l;
    }
  }
  struct lane *l = calloc(1, sizeof *l);
  if (!l) {
    return NULL;
  }
  l->receiver = mem_strdup(receiver);
  if (!l->receiver) {
    free(l);
    return NULL;
  }
  l->c = c;
  uv_timer_init(c->loop, &l->timer);
  c->open++;
  l->next = c->lanes;
  c->lanes = l;
  return l;
}

static bool mine(const struct lane *l, const struct outbox_item *it) {
  return it->notice->receiver && strcmp(it->notice->receiver, l->receiver) == 0;
}

/* The oldest pending notice for l's receiver, or NULL. */
static const struct outbox_item *head(struct lane *l) {
  size_t n;
  const struct outbox_item *it = outbox_list(l->c->ob, &n);
  for (size_t i = 0; i < n; i++) {
    if (mine(l, &it[i])) {
      return &it[i];
    }
  }
  return NULL;
}

/* Adds h to the open-addressing set (cap a power of two, never full).
 * Returns false when it was there already. */
static bool set_add(uint64_t *set, size_t cap, uint64_t h) {
  h = h ? h : 1; /* 0 marks a free slot */
  for (size_t i = (size_t)h & (cap - 1);; i = (i + 1) & (cap - 1)) {
    if (set[i] == h) {
      return false;
    }
    if (set[i] == 0) {
      set[i] = h;
      return true;
    }
  }
}

/* The notice l sends next: of its receiver's pending notices, in id order,
 * the first of each group (a group's later notices wait behind it), and of
 * those the first that is due at now. NULL when none is due; *wake_ns is
 * then the earliest next try (INT64_MAX: nothing pending). Without memory
 * for the set of groups, only the oldest notice is considered. */
static const struct outbox_item *pick(struct lane *l, int64_t now,
                                      int64_t *wake_ns) {
  size_t n;
  const struct outbox_item *it = outbox_list(l->c->ob, &n);
  *wake_ns = INT64_MAX;
  size_t cap = 16;
  while (cap < 2 * n) {
    cap *= 2;
  }
  uint64_t *set = calloc(cap, sizeof *set);
  const struct outbox_item *found = NULL;
  for (size_t i = 0; i < n && !found; i++) {
    if (!mine(l, &it[i])) {
      continue;
    }
    const char *g = it[i].notice->group_key;
    if (set && !set_add(set, cap, hash_str(HASH_START, g ? g : ""))) {
      continue;
    }
    if (it[i].next_try_ns <= now) {
      found = &it[i];
    } else if (it[i].next_try_ns < *wake_ns) {
      *wake_ns = it[i].next_try_ns;
    }
    if (!set) {
      break;
    }
  }
  free(set);
  return found;
}

/* Moves id to dead/ with attempts counted. Returns a copy of the notice
 * for the report (NULL when it was not pending or memory ran out). */
static struct notice *give_up(struct courier *c, uint64_t id, int attempts,
                              const char *why) {
  const struct outbox_item *it = outbox_get(c->ob, id);
  if (!it) {
    return NULL;
  }
  it->notice->attempts = attempts;
  struct notice *copy = notice_dup(it->notice);
  struct iocd_err err = {{0}};
  if (outbox_dead(c->ob, id, why, &err) != IOCD_OK) {
    log_error(LOG_MOD, "notification %016" PRIx64 ": %s", id, err.msg);
  }
  deliver_forget(c->dl, id);
  gauges(c);
  return copy;
}

static void on_sent(void *ud, uint64_t id, enum deliver_outcome outcome,
                    int64_t next_try_ns, const char *why);

static void pump(struct lane *l) {
  struct courier *c = l->c;
  if (c->closing || l->inflight) {
    return;
  }
  for (;;) {
    const struct outbox_item *it = head(l);
    if (!it) {
      uv_timer_stop(&l->timer);
      return;
    }
    uint64_t id = it->notice->id;
    if (!deliver_receiver(c->dl, l->receiver)) {
      char why[256];
      snprintf(why, sizeof why, "no receiver \"%.200s\" in the configuration",
               l->receiver);
      log_error(LOG_MOD, "notification %016" PRIx64 " to %s: given up: %s", id,
                l->receiver, why);
      struct notice *copy = give_up(c, id, it->notice->attempts, why);
      if (copy) {
        report_dead(c, copy, why);
        notice_free(copy);
      }
      if (c->closing || l->inflight) {
        /* The report's callback closed the courier or sent on this lane. */
        return;
      }
      continue;
    }
    int64_t now = clock_realtime_ns(), wake;
    it = pick(l, now, &wake);
    if (!it) {
      int64_t ms = (wake - now + NS_PER_MS - 1) / NS_PER_MS;
      uv_timer_start(&l->timer, on_lane_timer, (uint64_t)ms, 0);
      return;
    }
    id = it->notice->id;
    if (deliver_send(c->dl, it->notice, on_sent, l) != IOCD_OK) {
      uv_timer_start(&l->timer, on_lane_timer, STALL_RETRY_MS, 0);
      return;
    }
    uv_timer_stop(&l->timer);
    l->inflight = id;
    return;
  }
}

/* deliver_done_fn: the attempt at id ended. */
static void on_sent(void *ud, uint64_t id, enum deliver_outcome outcome,
                    int64_t next_try_ns, const char *why) {
  struct lane *l = ud;
  struct courier *c = l->c;
  l->inflight = 0;
  const struct outbox_item *it = outbox_get(c->ob, id);
  struct notice *dead = NULL;
  struct iocd_err err = {{0}};
  if (it) {
    int attempts = it->notice->attempts + 1;
    switch (outcome) {
      case DELIVER_SENT:
        if (c->on_sent) {
          /* it is not read again: a submit may move the outbox's items. */
          c->on_sent(c->dead_ud, it->notice);
        }
        if (outbox_done(c->ob, id, &err) != IOCD_OK) {
          log_error(LOG_MOD, "notification %016" PRIx64 " sent: %s", id,
                    err.msg);
        }
        gauges(c);
        break;
      case DELIVER_RETRY:
        if (outbox_attempt(c->ob, id, attempts, next_try_ns, &err) != IOCD_OK) {
          log_error(LOG_MOD, "notification %016" PRIx64 ": %s", id, err.msg);
        }
        break;
      case DELIVER_FAILED:
      case DELIVER_DEAD:
        dead = give_up(c, id, attempts, why ? why : "");
        break;
    }
  }
  pump(l);
  if (dead) {
    report_dead(c, dead, why);
    notice_free(dead);
  }
}

/* ---- durability ---- */

static void sync_outbox(struct courier *c) {
  struct iocd_err err = {{0}};
  if (c->ob && outbox_dirty(c->ob) && outbox_sync(c->ob, &err) != IOCD_OK) {
    log_error(LOG_MOD, "%s", err.msg);
  }
}

static void on_sync_timer(uv_timer_t *t) {
  sync_outbox(container_of(t, struct courier, sync_timer));
}

/* ---- the API ---- */

int courier_new(const struct courier_opts *opts, struct courier **out,
                struct iocd_err *err) {
  *out = NULL;
  if (!opts->loop || !opts->dir || !opts->templates) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "courier: a loop, a directory and templates are "
                        "needed");
  }
  struct courier *c = calloc(1, sizeof *c);
  if (!c) {
    return iocd_err_set(err, IOCD_ENOMEM, "courier: out of memory");
  }
  c->loop = opts->loop;
  c->cfg = opts->cfg;
  c->stats = opts->stats;
  c->templates = opts->templates;
  c->templates_ud = opts->templates_ud;
  c->on_dead = opts->on_dead;
  c->on_sent = opts->on_sent;
  c->dead_ud = opts->dead_ud;
  struct outbox_opts oo = opts->outbox;
  oo.on_evict = on_evict;
  oo.ud = c;
  c->ob = outbox_open(opts->dir, &oo, err);
  if (!c->ob) {
    free(c);
    return IOCD_EIO;
  }
  c->curl = opts->curl;
  if (!c->curl) {
    c->curl = curl_loop_new(c->loop);
    c->own_curl = true;
  }
  struct deliver_opts dopts = {
      .loop = c->loop,
      .curl = c->curl,
      .cfg = opts->cfg,
      .stats = opts->stats,
      .templates = opts->templates,
      .templates_ud = opts->templates_ud,
      .publish = opts->publish,
      .publish_ud = opts->publish_ud,
      .external_url = opts->external_url,
  };
  int rc = c->curl ? deliver_new(&dopts, &c->dl, err)
                   : iocd_err_set(err, IOCD_ENOMEM,
                                  "courier: cannot set up libcurl");
  if (rc) {
    if (c->own_curl && c->curl) {
      /* Nothing was added: the close completes on the next iteration. */
      curl_loop_close(c->curl, NULL, NULL);
    }
    outbox_close(c->ob);
    free(c);
    return rc;
  }
  c->open = 2 + (c->own_curl ? 1u : 0u);
  c->sync_interval_ms = opts->outbox.sync_later ? opts->sync_interval_ms : 0;
  uv_timer_init(c->loop, &c->sync_timer);
  if (c->sync_interval_ms > 0) {
    uv_timer_start(&c->sync_timer, on_sync_timer, (uint64_t)c->sync_interval_ms,
                   (uint64_t)c->sync_interval_ms);
  }
  if (c->stats) {
    c->pending = stats_gauge(c->stats, "iocd_outbox_pending",
                             "Notifications in the outbox, not delivered "
                             "yet.",
                             NULL);
    c->dead =
        stats_gauge(c->stats, "iocd_outbox_dead_letters",
                    "Notifications given up on, kept in outbox/dead.", NULL);
    c->evicted = stats_counter(c->stats, "iocd_outbox_evicted_total",
                               "Notifications given up because the outbox "
                               "was full.",
                               NULL);
  }
  gauges(c);
  size_t n;
  const struct outbox_item *it = outbox_list(c->ob, &n);
  if (n > 0) {
    log_info(LOG_MOD, "outbox: %zu notifications pending from the last run", n);
  }
  for (size_t i = 0; i < n; i++) {
    if (!lane_get(c, it[i].notice->receiver)) {
      courier_close(c, NULL, NULL);
      return iocd_err_set(err, IOCD_ENOMEM, "courier: out of memory");
    }
  }
  /* The first attempts start from the loop, once the caller has c. */
  for (struct lane *l = c->lanes; l; l = l->next) {
    uv_timer_start(&l->timer, on_lane_timer, 0, 0);
  }
  *out = c;
  return IOCD_OK;
}

int courier_submit(struct courier *c, const struct notice *n, uint64_t *id,
                   struct iocd_err *err) {
  if (c->closing) {
    return iocd_err_set(err, IOCD_ECLOSED, "courier: closed");
  }
  if (!n->receiver) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "courier: a notice needs a "
                        "receiver");
  }
  struct lane *l = lane_get(c, n->receiver);
  if (!l) {
    return iocd_err_set(err, IOCD_ENOMEM, "courier: out of memory");
  }
  /* A shallow copy that only differs by the id: outbox_put copies it. */
  struct notice tmp = *n;
  if (tmp.id == 0) {
    tmp.id = outbox_next_id(c->ob);
  }
  struct iocd_err perr = {{0}};
  int rc = outbox_put(c->ob, &tmp, &perr);
  if (rc == IOCD_EIO) {
    log_error(LOG_MOD,
              "notification %016" PRIx64
              " to %s: %s; sending it "
              "from memory",
              tmp.id, tmp.receiver, perr.msg);
    rc = IOCD_OK;
  }
  if (rc) {
    if (err) {
      *err = perr;
    }
    report_gone(c);
    return rc;
  }
  if (id) {
    *id = tmp.id;
  }
  gauges(c);
  pump(l);
  report_gone(c);
  return IOCD_OK;
}

uint64_t courier_next_id(struct courier *c) {
  return outbox_next_id(c->ob);
}

void courier_set_config(struct courier *c, const struct config_notify *cfg) {
  c->cfg = cfg;
  deliver_set_config(c->dl, cfg);
  for (struct lane *l = c->lanes; l && !c->closing; l = l->next) {
    pump(l);
  }
}

const struct outbox *courier_outbox(const struct courier *c) {
  return c->ob;
}

static void one_closed(struct courier *c) {
  if (--c->open > 0) {
    return;
  }
  courier_closed_fn *closed = c->closed;
  void *ud = c->closed_ud;
  free(c);
  if (closed) {
    closed(ud);
  }
}

static void on_lane_closed(uv_handle_t *h) {
  struct lane *l = container_of((uv_timer_t *)h, struct lane, timer);
  struct courier *c = l->c;
  free(l->receiver);
  free(l);
  one_closed(c);
}

static void on_deliver_closed(void *ud) {
  one_closed(ud);
}

static void on_curl_closed(void *ud) {
  one_closed(ud);
}

static void on_sync_timer_closed(uv_handle_t *h) {
  one_closed(container_of((uv_timer_t *)h, struct courier, sync_timer));
}

void courier_close(struct courier *c, courier_closed_fn *closed, void *ud) {
  if (c->closing) {
    return;
  }
  c->closing = true;
  c->closed = closed;
  c->closed_ud = ud;
  while (c->gone) {
    struct gone *g = c->gone;
    c->gone = g->next;
    notice_free(g->notice);
    free(g->why);
    free(g);
  }
  /* Attempts out are aborted without their done: the notices stay pending
   * on disk. */
  deliver_close(c->dl, on_deliver_closed, c);
  if (c->own_curl) {
    curl_loop_close(c->curl, on_curl_closed, c);
  }
  while (c->lanes) {
    struct lane *l = c->lanes;
    c->lanes = l->next;
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, on_lane_closed);
  }
  /* What changed since the last sync is made durable before iocd exits. */
  sync_outbox(c);
  uv_close((uv_handle_t *)&c->sync_timer, on_sync_timer_closed);
  outbox_close(c->ob);
  c->ob = NULL;
}
