/*
 * The service: one libuv loop owned here, with the MQTT client feeding the
 * ingest pipeline, whose sink is the store. Shutdown runs in stages so that
 * nothing accepted is left behind: stop intake (disconnect from the broker,
 * which keeps unacknowledged messages for the persistent session), flush the
 * store within shutdown_timeout, then close the remaining handles and require
 * uv_loop_close() == 0.
 */
#include "app/service.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "alerts/alert_metrics.h"
#include "api/api_rules.h"
#include "app/rules_setup.h"
#include "core/buf.h"
#include "core/container.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/log.h"
#include "core/stats.h"
#include "ingest/ingest.h"
#include "ingest/mqtt.h"
#include "rules/engine.h"
#include "store/store.h"

enum svc_state { SVC_RUNNING, SVC_STOPPING_MQTT, SVC_STOPPING_STORE, SVC_DONE };

struct service {
  uv_loop_t loop;
  struct config *cfg;
  struct stats *stats;
  struct ingest *ingest;
  struct store *store;
  struct mqtt *mqtt;
  struct api *api;
  uv_signal_t sig_int, sig_term, sig_hup;
  uv_timer_t stats_timer;
  uv_timer_t resume_timer; /* while intake is paused for back-pressure */
  bool paused;
  enum svc_state state;
  uint64_t unwritten;
  int exit_code;
  struct metric *st_reloads;
  struct metric *st_reload_failures;
  struct metric *st_dead_letters;
  struct metric *st_buffer_full;
  struct metric *st_pauses;
  /* Rules: the engine sees every accepted point; its events become log
   * lines and `alerts` points. The parameter hook reads params_cfg, which
   * a reload points at the new configuration before the engine sees it. */
  struct engine *engine;
  const struct config *params_cfg;
  uv_timer_t rules_timer;
  int64_t last_tick_ns;
  int64_t broker_down_since_ns; /* 0 while connected */
  bool broker_reported_down;
  bool state_dirty;
  int64_t last_save_ns;
  struct point_batch alert_pb;
  struct metric *st_alert_events;
  struct metric *st_alert_points_lost;
  struct metric *st_state_saves;
  struct metric *st_state_save_failures;
  struct metric *st_instances, *st_pending, *st_firing, *st_nodata;
  struct metric *st_insufficient, *st_held, *st_evaluations;
  uint64_t evaluations_seen;
  struct alert_metrics *alert_metrics; /* iocd_alerts_active */
  struct reload_job *reload_job;       /* a reload on the thread pool */
  bool reload_again;                   /* SIGHUP came during it */
};

/* The rules timer: at most this period, so that the broker's state and
 * due deadlines are seen within a second. */
#define RULES_POLL_MS 1000
/* The broker must be unreachable this long (and at least two evaluation
 * intervals) before the broker alert is raised: a reconnect is not an
 * outage, and neither is the first connection at start. */
#define BROKER_GRACE_NS (INT64_C(5) * NS_PER_SEC)

/* Back-pressure: above PAUSE_AT of the buffer, stop reading from the broker
 * (it keeps queueing for the persistent session); below RESUME_AT, read
 * again. The gap keeps intake from flapping. */
#define PAUSE_AT 0.8
#define RESUME_AT 0.5
#define RESUME_CHECK_MS 100

static void apply_logging(const struct config *cfg) {
  log_set_level(cfg->log_level);
  log_set_format(cfg->log_format);
}

static void rules_rearm(struct service *svc, int64_t now);

/* The ingest sink: accepted points go to the store, then to the rules
 * engine (only once the store took them: a refused message is not seen by
 * the rules either), at their arrival time. */
static int sink(void *ud, size_t sub, const struct point_batch *pb) {
  struct service *svc = ud;
  int rc = store_append(svc->store, sub, pb);
  if (rc || !svc->engine) {
    return rc;
  }
  int64_t now = clock_realtime_ns();
  for (size_t i = 0; i < pb->npoints; i++) {
    engine_add_point(svc->engine, pb, &pb->points[i], now);
  }
  rules_rearm(svc, now);
  return IOCD_OK;
}

/* Rules. */

static void put_labels(struct buf *b, const struct alert_event *ev) {
  buf_putc(b, '{');
  size_t n = 0;
  for (size_t i = 0; ev->group && i < ev->group->n; i++, n++) {
    buf_printf(b, "%s%s=\"%s\"", n ? "," : "", ev->group->keys[i],
               ev->group->values[i]);
  }
  for (size_t i = 0; i < ev->nlabels; i++, n++) {
    buf_printf(b, "%s%s=\"%s\"", n ? "," : "", ev->labels[i].key,
               ev->labels[i].value);
  }
  buf_putc(b, '}');
}

/* Field names of an alert point; an annotation may not take one. */
static bool alert_field_reserved(const char *k) {
  static const char *const names[] = {"value",   "threshold",  "reason",
                                      "trigger", "prev_state", "active"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (strcmp(k, names[i]) == 0) {
      return true;
    }
  }
  return false;
}

static int add_tag(struct point_batch *pb, struct point *p, const char *k,
                   const char *v) {
  if (!v || !*v) {
    return IOCD_OK; /* InfluxDB refuses empty tag values */
  }
  return pb_tag(pb, p, k, strlen(k), v, strlen(v), false);
}

/* The `alerts` point of an event: tags rule, severity, state and the
 * labels; fields value, threshold, reason, trigger, prev_state, active
 * (1 while pending, firing, nodata or insufficient) and the annotations,
 * so Grafana can draw annotations and a table of active alerts. */
static int alert_point(struct point_batch *pb, const struct alert_event *ev) {
  pb_reset(pb);
  static const char meas[] = "alerts";
  struct point *p = pb_point_new(pb, meas, sizeof meas - 1);
  if (!p) {
    return IOCD_ENOMEM;
  }
  p->ts_ns = ev->t_ns;
  p->has_ts = true;
  const char *state = alert_state_name(ev->state);
  int rc = add_tag(pb, p, "rule", ev->rule);
  if (!rc) {
    rc = add_tag(pb, p, "severity", ev->severity);
  }
  if (!rc) {
    rc = add_tag(pb, p, "state", state);
  }
  for (size_t i = 0; !rc && ev->group && i < ev->group->n; i++) {
    rc = add_tag(pb, p, ev->group->keys[i], ev->group->values[i]);
  }
  for (size_t i = 0; !rc && i < ev->nlabels; i++) {
    rc = add_tag(pb, p, ev->labels[i].key, ev->labels[i].value);
  }
  if (!rc && ev->has_value) {
    rc = pb_field_float(pb, p, "value", 5, ev->value);
  }
  if (!rc && ev->has_threshold) {
    rc = pb_field_float(pb, p, "threshold", 9, ev->threshold);
  }
  if (!rc && ev->reason) {
    rc = pb_field_string(pb, p, "reason", 6, ev->reason, strlen(ev->reason));
  }
  const char *by = alert_trigger_name(ev->by);
  if (!rc) {
    rc = pb_field_string(pb, p, "trigger", 7, by, strlen(by));
  }
  const char *prev = alert_state_name(ev->prev);
  if (!rc) {
    rc = pb_field_string(pb, p, "prev_state", 10, prev, strlen(prev));
  }
  bool active = ev->state != ALERT_RESOLVED && ev->state != ALERT_INACTIVE;
  if (!rc) {
    rc = pb_field_int(pb, p, "active", 6, active ? 1 : 0);
  }
  for (size_t i = 0; !rc && i < ev->nannotations; i++) {
    const struct alert_kv *a = &ev->annotations[i];
    if (!alert_field_reserved(a->key)) {
      rc = pb_field_string(pb, p, a->key, strlen(a->key), a->value,
                           strlen(a->value));
    }
  }
  if (!rc) {
    pb_point_sort_tags(pb, p);
  }
  return rc;
}

/* Every transition: a log line and a point; the state file is due. */
static void on_alert_event(void *ud, const struct alert_event *ev) {
  struct service *svc = ud;
  stat_inc(svc->st_alert_events);
  svc->state_dirty = true;
  struct buf b;
  buf_init(&b, 1 << 16);
  buf_puts(&b, ev->rule);
  put_labels(&b, ev);
  buf_printf(&b, " %s -> %s", alert_state_name(ev->prev),
             alert_state_name(ev->state));
  if (ev->severity_changed && ev->prev_severity) {
    buf_printf(&b, " severity=%s->%s", ev->prev_severity,
               ev->severity ? ev->severity : "");
  } else if (ev->severity) {
    buf_printf(&b, " severity=%s", ev->severity);
  }
  if (ev->has_value) {
    buf_printf(&b, " value=%.6g", ev->value);
  }
  if (ev->has_threshold) {
    buf_printf(&b, " threshold=%.6g", ev->threshold);
  }
  buf_printf(&b, " by=%s why: %s", alert_trigger_name(ev->by),
             ev->reason ? ev->reason : "");
  log_warn("rules", "alert %s", b.data ? b.data : ev->rule);
  buf_cleanup(&b);
  if (svc->state != SVC_RUNNING || !svc->store) {
    return;
  }
  int rc = alert_point(&svc->alert_pb, ev);
  if (!rc) {
    rc = store_append(svc->store, STORE_SOURCE_INTERNAL, &svc->alert_pb);
  }
  if (rc) {
    stat_inc(svc->st_alert_points_lost);
    log_error("rules", "alert point of %s not stored: %s", ev->rule,
              iocd_strerror(rc));
  }
}


/* Writes the state file atomically and durably (core/file.h). */
static int save_state(struct service *svc) {
  struct buf b;
  buf_init(&b, 256u << 20);
  char path[4096];
  snprintf(path, sizeof path, "%s/rules-state.json", svc->cfg->data_dir);
  int rc = engine_state_save(svc->engine, &b);
  if (rc) {
    log_error("rules", "cannot save the alert state: %s", iocd_strerror(rc));
    goto out;
  }
  int e = file_mkdirs(svc->cfg->data_dir);
  if (e) {
    log_error("rules", "cannot create %s: %s", svc->cfg->data_dir,
              strerror(e));
  }
  e = file_write_atomic(path, b.data ? b.data : "", b.len, true);
  if (e) {
    rc = IOCD_EIO;
    log_error("rules", "cannot write %s: %s", path, strerror(e));
  }
out:
  buf_cleanup(&b);
  stat_inc(rc ? svc->st_state_save_failures : svc->st_state_saves);
  if (!rc) {
    svc->state_dirty = false;
  }
  return rc;
}

/* Restores the state file, if any, before any data arrives. */
static void restore_state(struct service *svc) {
  char path[4096];
  snprintf(path, sizeof path, "%s/rules-state.json", svc->cfg->data_dir);
  struct buf b;
  buf_init(&b, 256u << 20);
  struct iocd_err err = {{0}};
  struct stat st;
  if (stat(path, &st) != 0 && errno == ENOENT) {
    buf_cleanup(&b);
    return;
  }
  int rc = file_read(path, &b, &err);
  if (rc) {
    log_error("rules", "%s: not restored: %s", path, err.msg);
    buf_cleanup(&b);
    return;
  }
  struct engine_restore_report rep = {0};
  rc = engine_state_restore(svc->engine, b.data ? b.data : "", b.len, &rep,
                            &err);
  if (rc) {
    log_error("rules", "%s: not restored: %s", path,
              err.msg[0] ? err.msg : iocd_strerror(rc));
  } else {
    log_info("rules",
             "alert state restored from %s: %zu instances (%zu of changed "
             "rules and %zu of removed rules dropped)",
             path, rep.restored, rep.changed, rep.unknown);
  }
  buf_cleanup(&b);
}

static void on_rules_timer(uv_timer_t *t);

/* The next time the rules timer must run: a deadline the engine asked
 * for, else the poll period. */
static void rules_rearm(struct service *svc, int64_t now) {
  if (!svc->engine || svc->state != SVC_RUNNING) {
    return;
  }
  int64_t wake = engine_next_wake(svc->engine);
  int64_t due = uv_timer_get_due_in(&svc->rules_timer) > 0
                    ? (int64_t)uv_timer_get_due_in(&svc->rules_timer)
                    : RULES_POLL_MS;
  if (wake == INT64_MAX || wake - now >= due * NS_PER_MS) {
    return;
  }
  int64_t ms = wake > now ? (wake - now + NS_PER_MS - 1) / NS_PER_MS : 0;
  uv_timer_start(&svc->rules_timer, on_rules_timer, (uint64_t)ms,
                 RULES_POLL_MS);
}

/* The broker dependency: connected or not, with a grace period. */
static void check_broker(struct service *svc, int64_t now) {
  if (mqtt_connected(svc->mqtt)) {
    svc->broker_down_since_ns = 0;
    if (svc->broker_reported_down) {
      svc->broker_reported_down = false;
      engine_set_broker_up(svc->engine, true, now);
    }
    return;
  }
  if (svc->broker_down_since_ns == 0) {
    svc->broker_down_since_ns = now;
  }
  int64_t grace = 2 * svc->cfg->rules.evaluation_interval_ms * NS_PER_MS;
  if (grace < BROKER_GRACE_NS) {
    grace = BROKER_GRACE_NS;
  }
  if (!svc->broker_reported_down && now - svc->broker_down_since_ns >= grace) {
    svc->broker_reported_down = true;
    engine_set_broker_up(svc->engine, false, now);
  }
}

/* The engine's figures on /metrics. */
static void rules_gauges(struct service *svc) {
  struct engine_stats st;
  engine_get_stats(svc->engine, &st);
  stat_set(svc->st_instances, (double)st.instances);
  stat_set(svc->st_pending, (double)st.pending);
  stat_set(svc->st_firing, (double)st.firing);
  stat_set(svc->st_nodata, (double)st.nodata);
  stat_set(svc->st_insufficient, (double)st.insufficient);
  stat_set(svc->st_held, (double)st.held);
  stat_add(svc->st_evaluations, st.evaluations - svc->evaluations_seen);
  svc->evaluations_seen = st.evaluations;
  alert_metrics_update(svc->alert_metrics, svc->engine,
                       svc->st_alert_events->count);
}

static void on_rules_timer(uv_timer_t *t) {
  struct service *svc = container_of(t, struct service, rules_timer);
  if (svc->state != SVC_RUNNING) {
    return;
  }
  int64_t now = clock_realtime_ns();
  check_broker(svc, now);
  int64_t interval = svc->cfg->rules.evaluation_interval_ms * NS_PER_MS;
  if (now >= engine_next_wake(svc->engine) ||
      now - svc->last_tick_ns >= interval) {
    engine_tick(svc->engine, now);
    svc->last_tick_ns = now;
  }
  if (svc->state_dirty &&
      now - svc->last_save_ns >= svc->cfg->rules.save_interval_ms * NS_PER_MS) {
    svc->last_save_ns = now;
    save_state(svc);
  }
  rules_gauges(svc);
  uv_timer_start(&svc->rules_timer, on_rules_timer, RULES_POLL_MS,
                 RULES_POLL_MS);
  rules_rearm(svc, now);
}

/* The alerts and rules the API lists. */
static int render_alerts(void *ud, struct buf *out) {
  struct service *svc = ud;
  return api_rules_alerts_json(svc->engine, out);
}

static int render_rules(void *ud, struct buf *out) {
  struct service *svc = ud;
  return api_rules_rules_json(svc->engine, svc->cfg, out);
}

static void on_resume_timer(uv_timer_t *t) {
  struct service *svc = container_of(t, struct service, resume_timer);
  double fill = store_fill(svc->store);
  if (svc->state != SVC_RUNNING || fill >= RESUME_AT) {
    return;
  }
  uv_timer_stop(t);
  svc->paused = false;
  mqtt_resume(svc->mqtt);
  log_info("service", "buffer down to %.0f%%: intake resumed", fill * 100);
}

static void maybe_pause(struct service *svc) {
  double fill = store_fill(svc->store);
  if (svc->paused || fill < PAUSE_AT) {
    return;
  }
  svc->paused = true;
  stat_inc(svc->st_pauses);
  mqtt_pause(svc->mqtt);
  uv_timer_start(&svc->resume_timer, on_resume_timer, RESUME_CHECK_MS,
                 RESUME_CHECK_MS);
  log_warn("service",
           "buffer %.0f%% full (outputs behind): intake paused; the broker "
           "queues for iocd's session until the outputs catch up",
           fill * 100);
}

static void on_message(void *ud, const struct mqtt_msg *msg) {
  struct service *svc = ud;
  if (svc->state != SVC_RUNNING) {
    return;
  }
  struct ingest_result res;
  int rc = ingest_message(svc->ingest, msg->topic, msg->payload, msg->len,
                          msg->content_type, clock_realtime_ns(), &res);
  if (rc == IOCD_EFULL) {
    stat_inc(svc->st_buffer_full);
    log_error("service",
              "buffer full: message on \"%s\" lost (already acknowledged "
              "to the broker); pausing intake until the outputs catch up",
              msg->topic);
    maybe_pause(svc);
    return;
  }
  maybe_pause(svc);
  if (res.reason != INGEST_OK && res.sub >= 0) {
    const struct config_subscription *sc = &svc->cfg->subs[res.sub];
    if (sc->dead_letter &&
        mqtt_publish(svc->mqtt, sc->dead_letter, msg->payload, msg->len,
                     1) == IOCD_OK) {
      stat_inc(svc->st_dead_letters);
    }
  }
}

/* Topic filters for the subscriptions, in config order. */
static int subscribe_all(struct service *svc, const struct config *cfg,
                         struct iocd_err *err) {
  int rc = IOCD_OK;
  const char **filters = calloc(cfg->nsubs ? cfg->nsubs : 1, sizeof *filters);
  int *qos = calloc(cfg->nsubs ? cfg->nsubs : 1, sizeof *qos);
  if (!filters || !qos) {
    rc = iocd_err_set(err, IOCD_ENOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < cfg->nsubs; i++) {
    size_t n = strlen(cfg->subs[i].topic) + 1;
    char *f = malloc(n);
    if (!f) {
      rc = iocd_err_set(err, IOCD_ENOMEM, "out of memory");
      goto out;
    }
    filters[i] = f;
    rc = ingest_topic_filter(cfg->subs[i].topic, f, n, err);
    if (rc) {
      goto out;
    }
    qos[i] = cfg->subs[i].qos;
  }
  rc = mqtt_set_subscriptions(svc->mqtt, filters, qos, cfg->nsubs);
  if (rc) {
    iocd_err_set(err, rc, "cannot set subscriptions: %s", iocd_strerror(rc));
  }
out:
  if (filters) {
    for (size_t i = 0; i < cfg->nsubs; i++) {
      free((char *)filters[i]);
    }
  }
  free(filters);
  free(qos);
  return rc;
}

static void log_stats(struct service *svc) {
  struct buf b;
  buf_init(&b, 1 << 20);
  if (stats_render_summary(svc->stats, &b) == IOCD_OK && b.len) {
    log_info("stats", "%s", b.data);
  }
  buf_cleanup(&b);
}

static void on_stats_timer(uv_timer_t *t) {
  struct service *svc = container_of(t, struct service, stats_timer);
  log_stats(svc);
}

static void close_cb_noop(uv_handle_t *h) {
  (void)h;
}

static void close_own_handles(struct service *svc) {
  uv_close((uv_handle_t *)&svc->rules_timer, close_cb_noop);
  uv_close((uv_handle_t *)&svc->sig_int, close_cb_noop);
  uv_close((uv_handle_t *)&svc->sig_term, close_cb_noop);
  uv_close((uv_handle_t *)&svc->sig_hup, close_cb_noop);
  uv_close((uv_handle_t *)&svc->stats_timer, close_cb_noop);
  uv_close((uv_handle_t *)&svc->resume_timer, close_cb_noop);
}

static void on_api_closed(void *ud) {
  struct service *svc = ud;
  svc->api = NULL;
}

static void on_store_closed(void *ud, uint64_t unwritten) {
  struct service *svc = ud;
  svc->store = NULL;
  svc->unwritten = unwritten;
  svc->state = SVC_DONE;
  if (unwritten) {
    log_error("service",
              "stopped with %llu points not written within the shutdown "
              "timeout",
              (unsigned long long)unwritten);
    svc->exit_code = 2;
  } else {
    log_info("service", "all accepted points written; stopped");
  }
  log_stats(svc);
  if (svc->api) {
    api_close(svc->api, on_api_closed, svc);
  }
  close_own_handles(svc);
}

static void on_mqtt_closed(void *ud) {
  struct service *svc = ud;
  svc->mqtt = NULL;
  svc->state = SVC_STOPPING_STORE;
  uint64_t pending = store_pending_points(svc->store);
  log_info("service", "intake stopped; flushing %llu buffered points "
           "(at most %d ms)", (unsigned long long)pending,
           svc->cfg->shutdown_timeout_ms);
  store_close(svc->store, (uint64_t)svc->cfg->shutdown_timeout_ms,
              on_store_closed, svc);
}

static void begin_stop(struct service *svc, const char *why) {
  if (svc->state != SVC_RUNNING) {
    log_info("service", "%s again while stopping; still flushing", why);
    return;
  }
  log_info("service", "%s: stopping", why);
  if (svc->engine) {
    /* The alert state as it is now: nothing will change it any more. */
    save_state(svc);
  }
  svc->state = SVC_STOPPING_MQTT;
  uv_timer_stop(&svc->rules_timer);
  uv_timer_stop(&svc->stats_timer);
  uv_timer_stop(&svc->resume_timer);
  uv_signal_stop(&svc->sig_hup);
  mqtt_close(svc->mqtt, on_mqtt_closed, svc);
}

/* Applies the rules of ncfg; unchanged rules keep their state. */
static int reload_rules(struct service *svc, const struct config *ncfg,
                        struct iocd_err *err) {
  struct rules_setup rs;
  int rc = rules_setup_init(&rs, ncfg, err);
  if (rc) {
    return rc;
  }
  svc->params_cfg = ncfg;
  rc = rules_setup_reconfigure(&rs, svc->engine, clock_realtime_ns(), err);
  if (rc) {
    svc->params_cfg = svc->cfg;
  }
  rules_setup_cleanup(&rs);
  return rc;
}

/* One log line per problem of a configuration that was refused, each
 * saying that the running one is kept. */
static void log_reload_problems(const char *text) {
  size_t total = 0;
  for (const char *p = text; *p; p++) {
    total += *p == '\n' || p[1] == '\0';
  }
  size_t k = 0;
  for (const char *p = text; *p;) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    if (n > 0) {
      k++;
      if (total > 1) {
        log_error("service",
                  "reload failed, keeping the running configuration "
                  "(problem %zu of %zu): %.*s",
                  k, total, (int)n, p);
      } else {
        log_error("service",
                  "reload failed, keeping the running configuration: %.*s",
                  (int)n, p);
      }
    }
    p += n + (nl ? 1 : 0);
  }
}

/* A reload's file work (reading and checking the new configuration),
 * done on libuv's thread pool so that a slow disk or a large rule set
 * never holds up ingest and the API; reload_done applies it on the loop. */
struct reload_job {
  uv_work_t req;
  struct service *svc;
  char *path;
  struct config *ncfg;
  struct buf errors;
  int rc;
  struct iocd_err err;
};

static void reload(struct service *svc);
static void reload_apply(struct service *svc, struct config *ncfg);

static void reload_work(uv_work_t *req) {
  struct reload_job *j = container_of(req, struct reload_job, req);
  j->rc = config_load(j->path, &j->ncfg, &j->errors);
  /* The pipeline validates patterns and rules before anything changes,
   * so a failure leaves every module on the old configuration. */
  if (!j->rc) {
    j->rc = service_check(j->ncfg, &j->err);
    if (j->rc) {
      buf_reset(&j->errors);
      buf_puts(&j->errors, j->err.msg);
    }
  }
}

static void reload_done(uv_work_t *req, int status) {
  struct reload_job *j = container_of(req, struct reload_job, req);
  struct service *svc = j->svc;
  svc->reload_job = NULL;
  if (status == 0 && svc->state == SVC_RUNNING) {
    if (j->rc) {
      stat_inc(svc->st_reload_failures);
      log_reload_problems(j->errors.len ? j->errors.data
                                        : iocd_strerror(j->rc));
    } else {
      reload_apply(svc, j->ncfg);
      j->ncfg = NULL;
    }
  }
  config_free(j->ncfg);
  buf_cleanup(&j->errors);
  free(j->path);
  free(j);
  if (svc->reload_again && svc->state == SVC_RUNNING) {
    svc->reload_again = false;
    reload(svc);
  }
}

static void reload(struct service *svc) {
  if (svc->reload_job) {
    svc->reload_again = true;
    log_info("service", "SIGHUP during a reload: another follows it");
    return;
  }
  const char *path = svc->cfg->path;
  log_info("service", "SIGHUP: reloading %s", path);
  struct reload_job *j = calloc(1, sizeof *j);
  if (j) {
    j->path = strdup(path);
  }
  if (!j || !j->path) {
    free(j);
    stat_inc(svc->st_reload_failures);
    log_error("service", "reload failed: out of memory");
    return;
  }
  j->svc = svc;
  buf_init(&j->errors, 1 << 20);
  int rc = uv_queue_work(&svc->loop, &j->req, reload_work, reload_done);
  if (rc) {
    stat_inc(svc->st_reload_failures);
    log_error("service", "reload failed: %s", uv_strerror(rc));
    buf_cleanup(&j->errors);
    free(j->path);
    free(j);
    return;
  }
  svc->reload_job = j;
}

/* Applies a configuration that loaded and checked; ncfg is owned here. */
static void reload_apply(struct service *svc, struct config *ncfg) {
  struct iocd_err err = {{0}};
  int rc = ingest_reconfigure(svc->ingest, ncfg, &err);
  if (rc) {
    stat_inc(svc->st_reload_failures);
    log_error("service", "reload failed, keeping the running configuration: "
              "%s", err.msg);
    config_free(ncfg);
    return;
  }
  rc = store_reconfigure(svc->store, ncfg, &err);
  if (!rc) {
    rc = mqtt_reconfigure(svc->mqtt, &ncfg->mqtt, &err);
  }
  if (!rc) {
    rc = subscribe_all(svc, ncfg, &err);
  }
  if (!rc) {
    rc = reload_rules(svc, ncfg, &err);
  }
  if (rc) {
    /* Partly applied: put the old configuration back everywhere (the
     * engine changes only when reload_rules succeeds, the last step). */
    struct iocd_err ignored;
    ingest_reconfigure(svc->ingest, svc->cfg, &ignored);
    store_reconfigure(svc->store, svc->cfg, &ignored);
    mqtt_reconfigure(svc->mqtt, &svc->cfg->mqtt, &ignored);
    subscribe_all(svc, svc->cfg, &ignored);
    stat_inc(svc->st_reload_failures);
    log_error("service", "reload failed, keeping the running configuration: "
              "%s", err.msg);
    config_free(ncfg);
    return;
  }
  struct buf changes;
  buf_init(&changes, 1 << 16);
  if (config_diff(svc->cfg, ncfg, &changes) != IOCD_OK) {
    buf_reset(&changes);
  }
  struct config *old = svc->cfg;
  svc->cfg = ncfg;
  alert_metrics_set_district_tag(svc->alert_metrics,
                                 ncfg->sources.district_tag);
  config_free(old);
  apply_logging(ncfg);
  uv_timer_stop(&svc->stats_timer);
  if (ncfg->stats_interval_s > 0) {
    uint64_t ms = (uint64_t)ncfg->stats_interval_s * 1000;
    uv_timer_start(&svc->stats_timer, on_stats_timer, ms, ms);
  }
  stat_inc(svc->st_reloads);
  log_info("service",
           "configuration reloaded: %s (now %zu subscriptions, %zu rules)",
           changes.len ? changes.data : "changes not known", ncfg->nsubs,
           ncfg->rules.n);
  buf_cleanup(&changes);
}

static void on_signal(uv_signal_t *h, int signum) {
  struct service *svc = h->data;
  if (signum == SIGHUP) {
    reload(svc);
  } else {
    begin_stop(svc, signum == SIGINT ? "SIGINT" : "SIGTERM");
  }
}

/* Ready: connected to the broker and the outputs are keeping up. */
static bool is_ready(void *ud, char *why, size_t n) {
  struct service *svc = ud;
  if (svc->state != SVC_RUNNING) {
    snprintf(why, n, "stopping");
    return false;
  }
  /* While intake is paused the store is the cause (a full journal disk,
   * InfluxDB behind): name it, not the broker connection that a long pause
   * may cost and that comes back when intake resumes. */
  if (svc->paused && !store_healthy(svc->store, why, n)) {
    return false;
  }
  if (!mqtt_connected(svc->mqtt)) {
    snprintf(why, n, "not connected to the MQTT broker %s:%d",
             svc->cfg->mqtt.host, svc->cfg->mqtt.port);
    return false;
  }
  return store_healthy(svc->store, why, n);
}

int service_check(const struct config *cfg, struct iocd_err *err) {
  struct stats *stats = stats_new();
  if (!stats) {
    return iocd_err_set(err, IOCD_ENOMEM, "out of memory");
  }
  struct ingest *in = ingest_new(cfg, stats, NULL, NULL, err);
  int rc = in ? IOCD_OK : IOCD_EINVAL;
  for (size_t i = 0; !rc && i < cfg->nsubs; i++) {
    size_t n = strlen(cfg->subs[i].topic) + 1;
    char *f = malloc(n);
    if (!f) {
      rc = iocd_err_set(err, IOCD_ENOMEM, "out of memory");
      break;
    }
    rc = ingest_topic_filter(cfg->subs[i].topic, f, n, err);
    free(f);
  }
  /* A dead-letter topic that a subscription matches would feed every reject
   * back into iocd, forever. */
  for (size_t i = 0; !rc && i < cfg->nsubs; i++) {
    const char *dl = cfg->subs[i].dead_letter;
    int hit = dl ? ingest_match(in, dl) : -1;
    if (hit >= 0) {
      rc = iocd_err_set(err, IOCD_EINVAL,
                        "subscriptions[%zu].dead_letter: \"%s\" matches the "
                        "topic of subscription %s: rejects would loop back",
                        i, dl, cfg->subs[hit].name);
    }
  }
  ingest_free(in);
  stats_free(stats);
  /* The rules as the engine takes them: templates, calendars, and what
   * the loader cannot see. */
  struct rules_setup rs;
  if (!rc) {
    rc = rules_setup_init(&rs, cfg, err);
    if (!rc) {
      struct engine_opts opts;
      const struct config *pc = cfg;
      struct engine *e = NULL;
      rules_setup_opts(&rs, &opts, &pc, NULL, NULL, 0);
      rc = rules_setup_engine(&rs, &opts, &e, err);
      engine_free(e);
      rules_setup_cleanup(&rs);
    }
  }
  return rc;
}

static void on_fail_mqtt_closed(void *ud) {
  (void)ud;
}

static void on_fail_store_closed(void *ud, uint64_t unwritten) {
  (void)ud;
  (void)unwritten;
}

/* Builds the engine, restores the saved alert state and starts its timer
 * (stopped again if the start fails later). */
static int start_rules(struct service *svc, struct iocd_err *err) {
  svc->st_alert_events = stats_counter(
      svc->stats, "iocd_alert_events_total",
      "Alert transitions (pending, firing, resolved, ...).", NULL);
  svc->st_alert_points_lost =
      stats_counter(svc->stats, "iocd_alert_points_lost_total",
                    "Alert transitions not stored as points.", NULL);
  svc->st_state_saves =
      stats_counter(svc->stats, "iocd_rules_state_saves_total",
                    "Writes of the alert state file.", NULL);
  svc->st_state_save_failures =
      stats_counter(svc->stats, "iocd_rules_state_save_failures_total",
                    "Failed writes of the alert state file.", NULL);
  svc->st_instances =
      stats_gauge(svc->stats, "iocd_rules_instances",
                  "Rule instances (rule x group), all states.", NULL);
  svc->st_pending = stats_gauge(svc->stats, "iocd_alerts_pending",
                                "Alert instances pending.", NULL);
  svc->st_firing = stats_gauge(svc->stats, "iocd_alerts_firing",
                               "Alert instances firing.", NULL);
  svc->st_nodata = stats_gauge(svc->stats, "iocd_alerts_nodata",
                               "Alert instances in their no-data state.", NULL);
  svc->st_insufficient =
      stats_gauge(svc->stats, "iocd_alerts_insufficient",
                  "Alert instances below their minimum denominator.", NULL);
  svc->st_held =
      stats_gauge(svc->stats, "iocd_alerts_held",
                  "Instances held back while the broker is unreachable.", NULL);
  svc->st_evaluations = stats_counter(
      svc->stats, "iocd_rules_evaluations_total",
      "Rule instance evaluations (on arrival and on ticks).", NULL);
  svc->params_cfg = svc->cfg;
  pb_init(&svc->alert_pb);
  svc->alert_metrics = alert_metrics_new(
      svc->stats, svc->cfg->sources.district_tag, svc->cfg->limits.max_series);
  if (!svc->alert_metrics) {
    return iocd_err_set(err, IOCD_ENOMEM, "out of memory");
  }
  struct rules_setup rs;
  int rc = rules_setup_init(&rs, svc->cfg, err);
  if (rc) {
    return rc;
  }
  struct engine_opts opts;
  int64_t now = clock_realtime_ns();
  rules_setup_opts(&rs, &opts, &svc->params_cfg, on_alert_event, svc, now);
  rc = rules_setup_engine(&rs, &opts, &svc->engine, err);
  rules_setup_cleanup(&rs);
  if (rc) {
    return rc;
  }
  restore_state(svc);
  svc->last_tick_ns = now;
  svc->last_save_ns = now;
  uv_timer_init(&svc->loop, &svc->rules_timer);
  uv_timer_start(&svc->rules_timer, on_rules_timer, RULES_POLL_MS,
                 RULES_POLL_MS);
  log_info("rules", "%zu rules loaded; evaluation every %lld ms",
           svc->cfg->rules.n,
           (long long)svc->cfg->rules.evaluation_interval_ms);
  return IOCD_OK;
}

int service_run(struct config *cfg) {
  struct service svc;
  memset(&svc, 0, sizeof svc);
  svc.cfg = cfg;
  apply_logging(cfg);
  struct iocd_err err = {{0}};
  int rc = uv_loop_init(&svc.loop);
  if (rc) {
    log_error("service", "uv_loop_init: %s", uv_strerror(rc));
    config_free(cfg);
    return 1;
  }
  svc.stats = stats_new();
  if (!svc.stats) {
    log_error("service", "out of memory");
    goto fail;
  }
  svc.st_reloads = stats_counter(svc.stats, "iocd_config_reloads_total",
                                 "Configuration reloads applied.", NULL);
  svc.st_reload_failures =
      stats_counter(svc.stats, "iocd_config_reload_failures_total",
                    "Configuration reloads rejected (the old one kept).",
                    NULL);
  svc.st_dead_letters =
      stats_counter(svc.stats, "iocd_dead_letters_total",
                    "Rejected messages republished to a dead-letter topic.",
                    NULL);
  svc.st_buffer_full =
      stats_counter(svc.stats, "iocd_buffer_full_total",
                    "Messages not stored because the buffer was full.", NULL);
  svc.st_pauses = stats_counter(svc.stats, "iocd_intake_pauses_total",
                                "Times intake paused because the buffer "
                                "was filling up.",
                                NULL);

  svc.store = store_new(&svc.loop, cfg, svc.stats, &err);
  if (!svc.store) {
    log_error("service", "cannot start the store: %s", err.msg);
    goto fail;
  }
  if (service_check(cfg, &err)) {
    log_error("service", "%s", err.msg);
    goto fail;
  }
  if (start_rules(&svc, &err)) {
    log_error("service", "cannot start the rules: %s", err.msg);
    goto fail;
  }
  svc.ingest = ingest_new(cfg, svc.stats, sink, &svc, &err);
  if (!svc.ingest) {
    log_error("service", "cannot start ingest: %s", err.msg);
    goto fail;
  }
  svc.mqtt = mqtt_new(&svc.loop, &cfg->mqtt, svc.stats, on_message, &svc,
                      &err);
  if (!svc.mqtt) {
    log_error("service", "cannot start the MQTT client: %s", err.msg);
    goto fail;
  }
  if (subscribe_all(&svc, cfg, &err)) {
    log_error("service", "%s", err.msg);
    goto fail;
  }

  uv_signal_init(&svc.loop, &svc.sig_int);
  uv_signal_init(&svc.loop, &svc.sig_term);
  uv_signal_init(&svc.loop, &svc.sig_hup);
  svc.sig_int.data = svc.sig_term.data = svc.sig_hup.data = &svc;
  uv_signal_start(&svc.sig_int, on_signal, SIGINT);
  uv_signal_start(&svc.sig_term, on_signal, SIGTERM);
  uv_signal_start(&svc.sig_hup, on_signal, SIGHUP);
  uv_timer_init(&svc.loop, &svc.stats_timer);
  uv_timer_init(&svc.loop, &svc.resume_timer);
  if (cfg->stats_interval_s > 0) {
    uint64_t ms = (uint64_t)cfg->stats_interval_s * 1000;
    uv_timer_start(&svc.stats_timer, on_stats_timer, ms, ms);
  }

  if (cfg->api.enabled) {
    svc.api = api_new(&svc.loop, cfg->api.listen, svc.stats, is_ready, &svc,
                      &err);
    if (!svc.api) {
      log_error("service", "cannot start the API: %s", err.msg);
      begin_stop(&svc, "start failure");
      svc.exit_code = 1;
    } else {
      api_set_rules(svc.api, render_alerts, render_rules, &svc);
    }
  }
  rc = svc.exit_code ? IOCD_OK : mqtt_start(svc.mqtt);
  if (rc) {
    log_error("service", "cannot start the MQTT client: %s",
              iocd_strerror(rc));
    begin_stop(&svc, "start failure");
    svc.exit_code = 1;
  } else if (!svc.exit_code) {
    log_info("service", "iocd %s started: %zu subscriptions, broker %s:%d, "
             "outputs:%s%s", IOCD_VERSION, cfg->nsubs, cfg->mqtt.host,
             cfg->mqtt.port, cfg->influx.enabled ? " influxdb" : "",
             cfg->file.enabled ? " file" : "");
  }

  uv_run(&svc.loop, UV_RUN_DEFAULT);
  ingest_free(svc.ingest);
  engine_free(svc.engine);
  alert_metrics_free(svc.alert_metrics);
  pb_cleanup(&svc.alert_pb);
  stats_free(svc.stats);
  rc = uv_loop_close(&svc.loop);
  if (rc) {
    log_error("service", "handles left open at exit: %s", uv_strerror(rc));
    if (!svc.exit_code) {
      svc.exit_code = 1;
    }
  }
  config_free(svc.cfg);
  return svc.exit_code;

fail:
  /* Nothing has run yet: close what was created, then the loop. */
  if (svc.mqtt) {
    mqtt_close(svc.mqtt, on_fail_mqtt_closed, NULL);
  }
  if (svc.store) {
    store_close(svc.store, 0, on_fail_store_closed, NULL);
  }
  if (svc.engine) {
    uv_close((uv_handle_t *)&svc.rules_timer, close_cb_noop);
  }
  uv_run(&svc.loop, UV_RUN_DEFAULT);
  ingest_free(svc.ingest);
  engine_free(svc.engine);
  alert_metrics_free(svc.alert_metrics);
  pb_cleanup(&svc.alert_pb);
  stats_free(svc.stats);
  uv_loop_close(&svc.loop);
  config_free(cfg);
  return 1;
}
