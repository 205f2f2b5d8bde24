/*
 * The service: one libuv loop owned here, with the MQTT client feeding the
 * ingest pipeline, whose sink is the store and then the alerts (the rules
 * engine on the loop, alerts/alerts.h). Shutdown runs in stages so that
 * nothing accepted is left behind: stop intake (disconnect from the broker,
 * which keeps unacknowledged messages for the persistent session), flush the
 * store within shutdown_timeout, then close the remaining handles and require
 * uv_loop_close() == 0.
 */
#include "app/service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "alerts/alerts.h"
#include "api/api.h"
#include "api/api_alerting.h"
#include "api/api_latest.h"
#include "api/api_rules.h"
#include "api/api_status.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/container.h"
#include "core/log.h"
#include "core/stats.h"
#include "ingest/ingest.h"
#include "ingest/mqtt.h"
#include "store/latest.h"
#include "store/self_metrics.h"
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
  /* The rules engine on the loop: it sees every accepted point, and its
   * transitions come back as `alerts` points through store_alert_point. */
  struct alerts *alerts;
  struct reload_job *reload_job; /* a reload on the thread pool */
  bool reload_again;             /* SIGHUP came during it */
  /* What GET /api/v1/status shows: when iocd started and the running
   * configuration was applied, who started the running reload, and how
   * the last one ended. */
  int64_t started_ns;
  int64_t config_loaded_ns;
  char reload_by[96];
  struct {
    int64_t at_ns; /* 0: none yet */
    bool ok;
    char by[96];
    char error[1024];
  } last_reload;
  /* The newest value of each series, for GET /api/v1/latest. */
  struct latest *latest;
  /* The registry written into the outputs (self_metrics). */
  struct self_metrics *self_metrics;
};

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

/* The ingest sink: accepted points go to the store, then to the rules
 * engine (only once the store took them: a refused message is not seen by
 * the rules either), at their arrival time. */
static int sink(void *ud, size_t sub, const struct point_batch *pb) {
  struct service *svc = ud;
  int rc = store_append(svc->store, sub, pb);
  if (rc) {
    return rc;
  }
  int64_t now = clock_realtime_ns();
  if (svc->latest) {
    latest_update(svc->latest, pb, now); /* counts what it could not keep */
  }
  if (svc->alerts) {
    alerts_add_points(svc->alerts, pb, now);
  }
  return IOCD_OK;
}

/* The alerts' store (alerts/alerts.c, for every transition): the same
 * store as the data, counted apart as iocd's own source. */
static int store_alert_point(void *ud, const struct point_batch *pb) {
  struct service *svc = ud;
  return store_append(svc->store, STORE_SOURCE_INTERNAL, pb);
}

/* The alerts' view of the broker, for the broker alert. */
static bool broker_connected(void *ud) {
  struct service *svc = ud;
  return mqtt_connected(svc->mqtt);
}

static int reload(struct service *svc, const char *by);

/* GET /api/v1/status: what the service knows of itself. */
static void fill_status(void *ud, struct api_status *st) {
  struct service *svc = ud;
  *st = (struct api_status){
      .version = IOCD_VERSION,
      .started_ns = svc->started_ns,
      .now_ns = clock_realtime_ns(),
      .pid = (long)getpid(),
      .cfg = svc->cfg,
      .config_loaded_ns = svc->config_loaded_ns,
      .reloading = svc->reload_job != NULL,
      .reload_at_ns = svc->last_reload.at_ns,
      .reload_ok = svc->last_reload.ok,
      .reload_error = svc->last_reload.error,
      .reload_by = svc->last_reload.by,
  };
}

/* POST /api/v1/reload: the reload SIGHUP starts, unless one runs. */
static int reload_from_api(void *ud, const char *principal) {
  struct service *svc = ud;
  if (svc->reload_job || svc->state != SVC_RUNNING) {
    return IOCD_ESTATE;
  }
  char by[96];
  snprintf(by, sizeof by, "api (%s)", principal);
  return reload(svc, by);
}

/* Everything under /api/v1/: alerts and rules, status and reload, the
 * latest values, then acknowledgements, silences and the outbox. */
static int handle_api(void *ud, const struct api_request *req,
                      struct api_reply *rep, struct buf *out) {
  struct service *svc = ud;
  const struct api_status_hooks hooks = {fill_status, reload_from_api, svc};
  int rc =
      api_rules_handle(alerts_engine(svc->alerts), alerts_notify(svc->alerts),
                       svc->cfg, req, rep, out);
  if (rc == IOCD_ENOTFOUND) {
    rc = api_status_handle(&hooks, req, rep, out);
  }
  if (rc == IOCD_ENOTFOUND) {
    rc = api_latest_handle(svc->latest, svc->cfg, req, rep, out);
  }
  if (rc == IOCD_ENOTFOUND) {
    rc = api_alerting_handle(alerts_notify(svc->alerts), req, rep, out);
  }
  return rc;
}

/* The MQTT receivers publish on iocd's own broker connection. */
static int publish_alert(void *ud, const char *topic, const void *payload,
                         size_t len, int qos, bool retain,
                         notify_published_fn *done, void *done_ud) {
  struct service *svc = ud;
  if (!svc->mqtt) {
    return IOCD_ECONN; /* the outbox's notices go out before it starts */
  }
  return mqtt_publish(svc->mqtt, topic, payload, len, qos, retain, done,
                      done_ud);
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
  struct ingest_meta meta = {.content_type = msg->content_type,
                             .user_props = msg->user_props,
                             .nuser_props = msg->nuser_props};
  int rc = ingest_message_meta(svc->ingest, msg->topic, msg->payload, msg->len,
                               &meta, clock_realtime_ns(), &res);
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
        mqtt_publish(svc->mqtt, sc->dead_letter, msg->payload, msg->len, 1,
                     false, NULL, NULL) == IOCD_OK) {
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

static void on_alerts_closed(void *ud) {
  struct service *svc = ud;
  svc->alerts = NULL;
}

static void close_own_handles(struct service *svc) {
  if (svc->alerts) {
    alerts_close(svc->alerts, on_alerts_closed, svc);
  }
  uv_close((uv_handle_t *)&svc->sig_int, close_cb_noop);
  uv_close((uv_handle_t *)&svc->sig_term, close_cb_noop);
  uv_close((uv_handle_t *)&svc->sig_hup, close_cb_noop);
  uv_close((uv_handle_t *)&svc->stats_timer, close_cb_noop);
  uv_close((uv_handle_t *)&svc->resume_timer, close_cb_noop);
  self_metrics_close(svc->self_metrics);
  svc->self_metrics = NULL;
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
  log_info("service",
           "intake stopped; flushing %llu buffered points "
           "(at most %d ms)",
           (unsigned long long)pending, svc->cfg->shutdown_timeout_ms);
  store_close(svc->store, (uint64_t)svc->cfg->shutdown_timeout_ms,
              on_store_closed, svc);
}

static void begin_stop(struct service *svc, const char *why) {
  if (svc->state != SVC_RUNNING) {
    log_info("service", "%s again while stopping; still flushing", why);
    return;
  }
  log_info("service", "%s: stopping", why);
  if (svc->alerts) {
    alerts_stop(svc->alerts);
  }
  svc->state = SVC_STOPPING_MQTT;
  uv_timer_stop(&svc->stats_timer);
  uv_timer_stop(&svc->resume_timer);
  self_metrics_stop(svc->self_metrics); /* the last sample, then flushed */
  uv_signal_stop(&svc->sig_hup);
  mqtt_close(svc->mqtt, on_mqtt_closed, svc);
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

static void reload_apply(struct service *svc, struct config *ncfg);

/* Keeps how the reload that ran ended, for GET /api/v1/status: error is
 * the first problem (NULL when it worked). */
static void reload_ended(struct service *svc, bool ok, const char *error) {
  svc->last_reload.at_ns = clock_realtime_ns();
  svc->last_reload.ok = ok;
  snprintf(svc->last_reload.by, sizeof svc->last_reload.by, "%s",
           svc->reload_by);
  snprintf(svc->last_reload.error, sizeof svc->last_reload.error, "%s",
           ok || !error ? "" : error);
  if (ok) {
    svc->config_loaded_ns = svc->last_reload.at_ns;
  }
}

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
      reload_ended(svc, false,
                   j->errors.len ? j->errors.data : iocd_strerror(j->rc));
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
    reload(svc, "SIGHUP");
  }
}

/* Starts a reload on the thread pool, by (what asked for it: "SIGHUP",
 * "api (NAME)") kept for the status. Returns IOCD_OK, or an error when it
 * could not start (counted and logged). */
static int reload(struct service *svc, const char *by) {
  if (svc->reload_job) {
    svc->reload_again = true;
    log_info("service", "%s during a reload: another follows it", by);
    return IOCD_OK;
  }
  const char *path = svc->cfg->path;
  log_info("service", "%s: reloading %s", by, path);
  snprintf(svc->reload_by, sizeof svc->reload_by, "%s", by);
  struct reload_job *j = calloc(1, sizeof *j);
  if (j) {
    j->path = strdup(path);
  }
  if (!j || !j->path) {
    free(j);
    stat_inc(svc->st_reload_failures);
    log_error("service", "reload failed: out of memory");
    reload_ended(svc, false, "out of memory");
    return IOCD_ENOMEM;
  }
  j->svc = svc;
  buf_init(&j->errors, 1 << 20);
  int rc = uv_queue_work(&svc->loop, &j->req, reload_work, reload_done);
  if (rc) {
    stat_inc(svc->st_reload_failures);
    log_error("service", "reload failed: %s", uv_strerror(rc));
    reload_ended(svc, false, uv_strerror(rc));
    buf_cleanup(&j->errors);
    free(j->path);
    free(j);
    return IOCD_EIO;
  }
  svc->reload_job = j;
  return IOCD_OK;
}

/* Applies a configuration that loaded and checked; ncfg is owned here. */
static void reload_apply(struct service *svc, struct config *ncfg) {
  struct iocd_err err = {{0}};
  int rc = ingest_reconfigure(svc->ingest, ncfg, &err);
  if (rc) {
    stat_inc(svc->st_reload_failures);
    log_error("service",
              "reload failed, keeping the running configuration: "
              "%s",
              err.msg);
    reload_ended(svc, false, err.msg);
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
    rc = alerts_reconfigure(svc->alerts, ncfg, &err);
  }
  if (rc) {
    /* Partly applied: put the old configuration back everywhere (the
     * engine changes only when alerts_reconfigure succeeds, the last
     * step). */
    struct iocd_err ignored;
    ingest_reconfigure(svc->ingest, svc->cfg, &ignored);
    store_reconfigure(svc->store, svc->cfg, &ignored);
    mqtt_reconfigure(svc->mqtt, &svc->cfg->mqtt, &ignored);
    subscribe_all(svc, svc->cfg, &ignored);
    stat_inc(svc->st_reload_failures);
    log_error("service",
              "reload failed, keeping the running configuration: "
              "%s",
              err.msg);
    reload_ended(svc, false, err.msg);
    config_free(ncfg);
    return;
  }
  struct buf changes;
  buf_init(&changes, 1 << 16);
  if (config_diff(svc->cfg, ncfg, &changes) != IOCD_OK) {
    buf_reset(&changes);
  }
  /* The tokens, their files re-read by the load; on ENOMEM the API keeps
   * the previous ones. */
  if (svc->api && api_set_auth(svc->api, &ncfg->api) != IOCD_OK) {
    log_error("service", "the API keeps its previous tokens: out of memory");
  }
  struct config *old = svc->cfg;
  svc->cfg = ncfg;
  config_free(old);
  apply_logging(ncfg);
  /* It copies what it keeps; on ENOMEM it keeps writing as before. */
  if (self_metrics_reconfigure(svc->self_metrics, &ncfg->self_metrics, &err) !=
      IOCD_OK) {
    log_error("service", "%s; the self-metrics keep their settings", err.msg);
  }
  uv_timer_stop(&svc->stats_timer);
  if (ncfg->stats_interval_s > 0) {
    uint64_t ms = (uint64_t)ncfg->stats_interval_s * 1000;
    uv_timer_start(&svc->stats_timer, on_stats_timer, ms, ms);
  }
  stat_inc(svc->st_reloads);
  reload_ended(svc, true, NULL);
  log_info("service",
           "configuration reloaded: %s (now %zu subscriptions, %zu rules)",
           changes.len ? changes.data : "changes not known", ncfg->nsubs,
           ncfg->rules.n);
  buf_cleanup(&changes);
}

static void on_signal(uv_signal_t *h, int signum) {
  struct service *svc = h->data;
  if (signum == SIGHUP) {
    reload(svc, "SIGHUP");
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
  if (!rc) {
    rc = alerts_check(cfg, err);
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
  svc.started_ns = clock_realtime_ns();
  svc.config_loaded_ns = svc.started_ns;
  svc.stats = stats_new();
  if (!svc.stats) {
    log_error("service", "out of memory");
    goto fail;
  }
  stats_process_info(svc.stats, IOCD_VERSION, svc.started_ns);
  svc.latest = latest_new(LATEST_MAX_SERIES_DEFAULT, LATEST_MAX_BYTES_DEFAULT,
                          svc.stats);
  if (!svc.latest) {
    log_error("service", "out of memory");
    goto fail;
  }
  svc.st_reloads = stats_counter(svc.stats, "iocd_config_reloads_total",
                                 "Configuration reloads applied.", NULL);
  svc.st_reload_failures =
      stats_counter(svc.stats, "iocd_config_reload_failures_total",
                    "Configuration reloads rejected (the old one kept).", NULL);
  svc.st_dead_letters = stats_counter(
      svc.stats, "iocd_dead_letters_total",
      "Rejected messages republished to a dead-letter topic.", NULL);
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
  svc.self_metrics = self_metrics_new(&svc.loop, svc.store, svc.stats,
                                      &cfg->self_metrics, &err);
  if (!svc.self_metrics) {
    log_error("service", "cannot start the self-metrics: %s", err.msg);
    goto fail;
  }
  if (service_check(cfg, &err)) {
    log_error("service", "%s", err.msg);
    goto fail;
  }
  struct alerts_opts ao = {
      .loop = &svc.loop,
      .cfg = cfg,
      .stats = svc.stats,
      .store = store_alert_point,
      .store_ud = &svc,
      .broker_connected = broker_connected,
      .broker_ud = &svc,
      .publish = publish_alert,
      .publish_ud = &svc,
  };
  if (alerts_new(&ao, &svc.alerts, &err)) {
    log_error("service", "cannot start the rules: %s", err.msg);
    goto fail;
  }
  svc.ingest = ingest_new(cfg, svc.stats, sink, &svc, &err);
  if (!svc.ingest) {
    log_error("service", "cannot start ingest: %s", err.msg);
    goto fail;
  }
  svc.mqtt = mqtt_new(&svc.loop, &cfg->mqtt, svc.stats, on_message, &svc, &err);
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
    svc.api = api_new(&svc.loop, &cfg->api, svc.stats, is_ready, &svc, &err);
    if (!svc.api) {
      log_error("service", "cannot start the API: %s", err.msg);
      begin_stop(&svc, "start failure");
      svc.exit_code = 1;
    } else {
      api_set_handler(svc.api, handle_api, &svc);
    }
  }
  rc = svc.exit_code ? IOCD_OK : mqtt_start(svc.mqtt);
  if (rc) {
    log_error("service", "cannot start the MQTT client: %s", iocd_strerror(rc));
    begin_stop(&svc, "start failure");
    svc.exit_code = 1;
  } else if (!svc.exit_code) {
    log_info("service",
             "iocd %s started: %zu subscriptions, broker %s:%d, "
             "outputs:%s%s",
             IOCD_VERSION, cfg->nsubs, cfg->mqtt.host, cfg->mqtt.port,
             cfg->influx.enabled ? " influxdb" : "",
             cfg->file.enabled ? " file" : "");
  }

  uv_run(&svc.loop, UV_RUN_DEFAULT);
  ingest_free(svc.ingest);
  latest_free(svc.latest);
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
  if (svc.alerts) {
    alerts_close(svc.alerts, on_alerts_closed, &svc);
  }
  self_metrics_close(svc.self_metrics);
  uv_run(&svc.loop, UV_RUN_DEFAULT);
  ingest_free(svc.ingest);
  latest_free(svc.latest);
  stats_free(svc.stats);
  uv_loop_close(&svc.loop);
  config_free(cfg);
  return 1;
}
