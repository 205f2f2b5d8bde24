/*
 * The rules engine on the loop. The engine (rules/) is pure: it is handed
 * points and the time, and answers with transitions. This file gives it
 * both on iocd's loop: the points the store accepted (alerts_add_points),
 * and a timer that runs at least every second, sooner when the engine asks
 * for a deadline, to tick it, to tell it whether the broker is reachable
 * and to save its state when it changed. Every transition becomes the
 * records of records.c, and so does every action on an acknowledgement
 * that the notifications report; the state file is state_file.c's.
 */
#include "alerts/alerts.h"

#include <stdlib.h>

#include "alerts/alert_metrics.h"
#include "alerts/notify.h"
#include "alerts/records.h"
#include "alerts/rules_setup.h"
#include "alerts/state_file.h"
#include "core/clock.h"
#include "core/container.h"
#include "core/log.h"

/* The rules timer: at most this period, so that the broker's state and
 * due deadlines are seen within a second. */
#define RULES_POLL_MS 1000
/* The broker must be unreachable this long (and at least two evaluation
 * intervals) before the broker alert is raised: a reconnect is not an
 * outage, and neither is the first connection at start. */
#define BROKER_GRACE_NS (INT64_C(5) * NS_PER_SEC)

struct alerts {
  uv_timer_t timer; /* the rules timer; a is freed in its close callback */
  /* The live configuration (borrowed). Its address is the parameter hook's
   * ud, so a reload that points it at the new configuration before the
   * engine sees it changes the parameters in place. */
  const struct config *cfg;
  struct engine *engine;
  struct notify *notify; /* NULL when notifications are off */
  uv_loop_t *loop;
  notify_publish_fn *publish;
  void *publish_ud;
  int closes; /* handles and notifiers still closing */
  struct stats *stats;
  bool closing;
  struct alert_metrics *alert_metrics; /* iocd_alerts_active */
  alerts_store_fn *store;
  void *store_ud;
  alerts_broker_fn *broker_connected;
  void *broker_ud;
  alerts_closed_fn *closed_cb;
  void *closed_ud;
  bool stopped;
  int64_t last_tick_ns;
  int64_t broker_down_since_ns; /* 0 while connected */
  bool broker_reported_down;
  bool state_dirty;
  int64_t last_save_ns;
  struct point_batch alert_pb; /* the point of the transition at hand */
  struct point_batch ack_pb;   /* the point of the ack action at hand */
  struct metric *st_alert_events;
  struct metric *st_alert_points_lost;
  struct metric *st_state_saves;
  struct metric *st_state_save_failures;
  struct metric *st_instances, *st_pending, *st_firing, *st_nodata;
  struct metric *st_insufficient, *st_held, *st_evaluations;
  uint64_t evaluations_seen;
};

/* Every transition: a log line and a point; the state file is due. */
static void on_alert_event(void *ud, const struct alert_event *ev) {
  struct alerts *a = ud;
  stat_inc(a->st_alert_events);
  a->state_dirty = true;
  alert_record_log(ev);
  notify_event(a->notify, ev);
  if (a->stopped || !a->store) {
    return;
  }
  int rc = alert_record_point(&a->alert_pb, ev);
  if (!rc) {
    /* app/service.c: store_append with STORE_SOURCE_INTERNAL. */
    rc = a->store(a->store_ud, &a->alert_pb);
  }
  if (rc) {
    stat_inc(a->st_alert_points_lost);
    log_error("rules", "alert point of %s not stored: %s", ev->rule,
              iocd_strerror(rc));
  }
}

/* Every acknowledgement, taking back and end: its `alert_acks` point, on
 * the transitions' way into the store. */
static void on_ack_action(void *ud, const struct notify_ack_action *act) {
  struct alerts *a = ud;
  if (a->stopped || !a->store) {
    return;
  }
  int rc = alert_ack_record_point(&a->ack_pb, act);
  if (!rc) {
    /* app/service.c: store_append with STORE_SOURCE_INTERNAL. */
    rc = a->store(a->store_ud, &a->ack_pb);
  }
  if (rc) {
    stat_inc(a->st_alert_points_lost);
    log_error("rules", "%s point of alert %016llx not stored: %s", act->action,
              (unsigned long long)act->id, iocd_strerror(rc));
  }
}

static int save_state(struct alerts *a) {
  int rc = state_file_save(a->engine, a->cfg->data_dir);
  stat_inc(rc ? a->st_state_save_failures : a->st_state_saves);
  if (!rc) {
    a->state_dirty = false;
  }
  return rc;
}

static void on_rules_timer(uv_timer_t *t);
static void on_notify_closed(void *ud);

/* The next time the rules timer must run: a deadline the engine asked
 * for, else the poll period. */
static void rules_rearm(struct alerts *a, int64_t now) {
  if (a->stopped) {
    return;
  }
  int64_t wake = engine_next_wake(a->engine);
  int64_t due = uv_timer_get_due_in(&a->timer) > 0
                    ? (int64_t)uv_timer_get_due_in(&a->timer)
                    : RULES_POLL_MS;
  if (wake == INT64_MAX || wake - now >= due * NS_PER_MS) {
    return;
  }
  int64_t ms = wake > now ? (wake - now + NS_PER_MS - 1) / NS_PER_MS : 0;
  uv_timer_start(&a->timer, on_rules_timer, (uint64_t)ms, RULES_POLL_MS);
}

/* The broker dependency: connected or not, with a grace period. */
static void check_broker(struct alerts *a, int64_t now) {
  /* app/service.c: mqtt_connected. */
  if (!a->broker_connected || a->broker_connected(a->broker_ud)) {
    a->broker_down_since_ns = 0;
    if (a->broker_reported_down) {
      a->broker_reported_down = false;
      engine_set_broker_up(a->engine, true, now);
    }
    return;
  }
  if (a->broker_down_since_ns == 0) {
    a->broker_down_since_ns = now;
  }
  int64_t grace = 2 * a->cfg->rules.evaluation_interval_ms * NS_PER_MS;
  if (grace < BROKER_GRACE_NS) {
    grace = BROKER_GRACE_NS;
  }
  if (!a->broker_reported_down && now - a->broker_down_since_ns >= grace) {
    a->broker_reported_down = true;
    engine_set_broker_up(a->engine, false, now);
  }
}

/* The engine's figures on /metrics. */
static void rules_gauges(struct alerts *a) {
  struct engine_stats st;
  engine_get_stats(a->engine, &st);
  stat_set(a->st_instances, (double)st.instances);
  stat_set(a->st_pending, (double)st.pending);
  stat_set(a->st_firing, (double)st.firing);
  stat_set(a->st_nodata, (double)st.nodata);
  stat_set(a->st_insufficient, (double)st.insufficient);
  stat_set(a->st_held, (double)st.held);
  stat_add(a->st_evaluations, st.evaluations - a->evaluations_seen);
  a->evaluations_seen = st.evaluations;
  alert_metrics_update(a->alert_metrics, a->engine, a->st_alert_events->count);
}

static void on_rules_timer(uv_timer_t *t) {
  struct alerts *a = container_of(t, struct alerts, timer);
  if (a->stopped) {
    return;
  }
  int64_t now = clock_realtime_ns();
  check_broker(a, now);
  int64_t interval = a->cfg->rules.evaluation_interval_ms * NS_PER_MS;
  if (now >= engine_next_wake(a->engine) || now - a->last_tick_ns >= interval) {
    engine_tick(a->engine, now);
    a->last_tick_ns = now;
  }
  if (a->state_dirty &&
      now - a->last_save_ns >= a->cfg->rules.save_interval_ms * NS_PER_MS) {
    a->last_save_ns = now;
    save_state(a);
  }
  rules_gauges(a);
  uv_timer_start(&a->timer, on_rules_timer, RULES_POLL_MS, RULES_POLL_MS);
  rules_rearm(a, now);
}

int alerts_check(const struct config *cfg, struct iocd_err *err) {
  struct rules_setup rs;
  int rc = rules_setup_init(&rs, cfg, err);
  if (rc) {
    return rc;
  }
  struct engine_opts opts;
  const struct config *pc = cfg;
  struct engine *e = NULL;
  rules_setup_opts(&rs, &opts, &pc, NULL, NULL, 0);
  rc = rules_setup_engine(&rs, &opts, &e, err);
  engine_free(e);
  rules_setup_cleanup(&rs);
  if (!rc) {
    rc = notify_check(cfg, err);
  }
  return rc;
}

static void alerts_free(struct alerts *a) {
  engine_free(a->engine);
  alert_metrics_free(a->alert_metrics);
  pb_cleanup(&a->alert_pb);
  pb_cleanup(&a->ack_pb);
  free(a);
}

static void register_metrics(struct alerts *a, struct stats *stats) {
  a->st_alert_events = stats_counter(
      stats, "iocd_alert_events_total",
      "Alert transitions (pending, firing, resolved, ...).", NULL);
  a->st_alert_points_lost = stats_counter(
      stats, "iocd_alert_points_lost_total",
      "Alert transitions and acknowledgements not stored as points.", NULL);
  a->st_state_saves = stats_counter(stats, "iocd_rules_state_saves_total",
                                    "Writes of the alert state file.", NULL);
  a->st_state_save_failures =
      stats_counter(stats, "iocd_rules_state_save_failures_total",
                    "Failed writes of the alert state file.", NULL);
  a->st_instances =
      stats_gauge(stats, "iocd_rules_instances",
                  "Rule instances (rule x group), all states.", NULL);
  a->st_pending = stats_gauge(stats, "iocd_alerts_pending",
                              "Alert instances pending.", NULL);
  a->st_firing =
      stats_gauge(stats, "iocd_alerts_firing", "Alert instances firing.", NULL);
  a->st_nodata = stats_gauge(stats, "iocd_alerts_nodata",
                             "Alert instances in their no-data state.", NULL);
  a->st_insufficient =
      stats_gauge(stats, "iocd_alerts_insufficient",
                  "Alert instances below their minimum denominator.", NULL);
  a->st_held =
      stats_gauge(stats, "iocd_alerts_held",
                  "Instances held back while the broker is unreachable.", NULL);
  a->st_evaluations = stats_counter(
      stats, "iocd_rules_evaluations_total",
      "Rule instance evaluations (on arrival and on ticks).", NULL);
}

/* What the restored state has firing: the dispatcher learns of it, so its
 * resolution reaches the receivers, without a second firing notification
 * for what they were told before the restart. */
static void restored_alert(void *ud, const struct alert_event *ev) {
  struct alerts *a = ud;
  notify_restore(a->notify, ev);
}

static int start_notify(struct alerts *a, const struct config *cfg,
                        struct stats *stats, struct iocd_err *err) {
  if (!cfg->notify.enabled) {
    return IOCD_OK;
  }
  struct notify_opts no = {
      .loop = a->loop,
      .cfg = cfg,
      .stats = stats,
      .publish = a->publish,
      .publish_ud = a->publish_ud,
      .on_ack = on_ack_action,
      .ack_ud = a,
  };
  int rc = notify_new(&no, &a->notify, err);
  if (!rc) {
    engine_list(a->engine, restored_alert, a);
    notify_restore_done(a->notify);
  }
  return rc;
}

int alerts_new(const struct alerts_opts *o, struct alerts **out,
               struct iocd_err *err) {
  *out = NULL;
  struct alerts *a = calloc(1, sizeof *a);
  if (!a) {
    return iocd_err_set(err, IOCD_ENOMEM, "out of memory");
  }
  register_metrics(a, o->stats);
  a->cfg = o->cfg;
  a->store = o->store;
  a->store_ud = o->store_ud;
  a->broker_connected = o->broker_connected;
  a->broker_ud = o->broker_ud;
  pb_init(&a->alert_pb);
  pb_init(&a->ack_pb);
  a->alert_metrics = alert_metrics_new(o->stats, o->cfg->sources.district_tag,
                                       o->cfg->limits.max_series);
  if (!a->alert_metrics) {
    alerts_free(a);
    return iocd_err_set(err, IOCD_ENOMEM, "out of memory");
  }
  struct rules_setup rs;
  int rc = rules_setup_init(&rs, o->cfg, err);
  if (rc) {
    alerts_free(a);
    return rc;
  }
  struct engine_opts opts;
  int64_t now = clock_realtime_ns();
  rules_setup_opts(&rs, &opts, &a->cfg, on_alert_event, a, now);
  rc = rules_setup_engine(&rs, &opts, &a->engine, err);
  rules_setup_cleanup(&rs);
  if (rc) {
    alerts_free(a);
    return rc;
  }
  state_file_restore(a->engine, o->cfg->data_dir);
  a->loop = o->loop;
  a->stats = o->stats;
  a->publish = o->publish;
  a->publish_ud = o->publish_ud;
  rc = start_notify(a, o->cfg, o->stats, err);
  if (rc) {
    alerts_free(a);
    return rc;
  }
  a->last_tick_ns = now;
  a->last_save_ns = now;
  uv_timer_init(o->loop, &a->timer);
  uv_timer_start(&a->timer, on_rules_timer, RULES_POLL_MS, RULES_POLL_MS);
  log_info("rules", "%zu rules loaded; evaluation every %lld ms",
           o->cfg->rules.n, (long long)o->cfg->rules.evaluation_interval_ms);
  *out = a;
  return IOCD_OK;
}

void alerts_add_points(struct alerts *a, const struct point_batch *pb,
                       int64_t now) {
  for (size_t i = 0; i < pb->npoints; i++) {
    engine_add_point(a->engine, pb, &pb->points[i], now);
  }
  rules_rearm(a, now);
}

int alerts_reconfigure(struct alerts *a, const struct config *ncfg,
                       struct iocd_err *err) {
  int rc = notify_check(ncfg, err);
  if (rc) {
    return rc;
  }
  struct rules_setup rs;
  rc = rules_setup_init(&rs, ncfg, err);
  if (rc) {
    return rc;
  }
  const struct config *old = a->cfg;
  a->cfg = ncfg;
  rc = rules_setup_reconfigure(&rs, a->engine, clock_realtime_ns(), err);
  if (rc) {
    a->cfg = old;
  } else {
    alert_metrics_set_district_tag(a->alert_metrics,
                                   ncfg->sources.district_tag);
  }
  rules_setup_cleanup(&rs);
  if (rc) {
    return rc;
  }
  /* Checked before the engine changed: what fails from here on is logged,
   * and the rules' new configuration stands. */
  struct iocd_err nerr = {{0}};
  if (a->notify && !ncfg->notify.enabled) {
    struct notify *n = a->notify;
    a->notify = NULL;
    a->closes++;
    notify_close(n, on_notify_closed, a);
    log_info("notify",
             "notifications turned off: what is pending stays in "
             "the outbox");
  } else if (a->notify) {
    if (notify_reconfigure(a->notify, ncfg, &nerr)) {
      log_error("notify", "notifications keep the previous settings: %s",
                nerr.msg);
    }
  } else if (start_notify(a, ncfg, a->stats, &nerr)) {
    log_error("notify", "notifications not started: %s", nerr.msg);
  }
  return IOCD_OK;
}

struct notify *alerts_notify(const struct alerts *a) {
  return a->notify;
}

const struct engine *alerts_engine(const struct alerts *a) {
  return a->engine;
}

void alerts_stop(struct alerts *a) {
  if (a->stopped) {
    return;
  }
  /* The alert state as it is now: nothing will change it any more. */
  save_state(a);
  a->stopped = true;
  uv_timer_stop(&a->timer);
  notify_stop(a->notify);
}

static void closed_one(struct alerts *a) {
  if (--a->closes > 0 || !a->closing) {
    return;
  }
  alerts_closed_fn *cb = a->closed_cb;
  void *ud = a->closed_ud;
  alerts_free(a);
  if (cb) {
    cb(ud);
  }
}

static void on_timer_closed(uv_handle_t *h) {
  closed_one(container_of((uv_timer_t *)h, struct alerts, timer));
}

static void on_notify_closed(void *ud) {
  closed_one(ud);
}

void alerts_close(struct alerts *a, alerts_closed_fn *cb, void *ud) {
  a->closed_cb = cb;
  a->closed_ud = ud;
  a->stopped = true;
  a->closing = true;
  a->closes += a->notify ? 2 : 1;
  uv_close((uv_handle_t *)&a->timer, on_timer_closed);
  if (a->notify) {
    struct notify *n = a->notify;
    a->notify = NULL;
    notify_close(n, on_notify_closed, a);
  }
}
