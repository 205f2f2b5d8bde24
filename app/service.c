/*
 * The service: one libuv loop owned here, with the MQTT client feeding the
 * ingest pipeline, whose sink is the store. Shutdown runs in stages so that
 * nothing accepted is left behind: stop intake (disconnect from the broker,
 * which keeps unacknowledged messages for the persistent session), flush the
 * store within shutdown_timeout, then close the remaining handles and require
 * uv_loop_close() == 0.
 */
#include "app/service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api/api.h"
#include "core/buf.h"
#include "core/container.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/stats.h"
#include "ingest/ingest.h"
#include "ingest/mqtt.h"
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

/* The ingest sink: accepted points go to the store. */
static int sink(void *ud, size_t sub, const struct point_batch *pb) {
  struct service *svc = ud;
  return store_append(svc->store, sub, pb);
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
  svc->state = SVC_STOPPING_MQTT;
  uv_timer_stop(&svc->stats_timer);
  uv_timer_stop(&svc->resume_timer);
  uv_signal_stop(&svc->sig_hup);
  mqtt_close(svc->mqtt, on_mqtt_closed, svc);
}

static void reload(struct service *svc) {
  const char *path = svc->cfg->path;
  log_info("service", "SIGHUP: reloading %s", path);
  struct buf errors;
  buf_init(&errors, 1 << 20);
  struct config *ncfg = NULL;
  struct iocd_err err = {{0}};
  int rc = config_load(path, &ncfg, &errors);
  if (rc) {
    stat_inc(svc->st_reload_failures);
    log_error("service", "reload failed, keeping the running configuration: "
              "%s", errors.len ? errors.data : iocd_strerror(rc));
    buf_cleanup(&errors);
    return;
  }
  buf_cleanup(&errors);
  /* The pipeline validates patterns before anything else changes, so a
   * failure here leaves every module on the old configuration. */
  rc = service_check(ncfg, &err);
  if (!rc) {
    rc = ingest_reconfigure(svc->ingest, ncfg, &err);
  }
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
  if (rc) {
    /* Partly applied: put the old configuration back everywhere. */
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
  struct config *old = svc->cfg;
  svc->cfg = ncfg;
  config_free(old);
  apply_logging(ncfg);
  uv_timer_stop(&svc->stats_timer);
  if (ncfg->stats_interval_s > 0) {
    uint64_t ms = (uint64_t)ncfg->stats_interval_s * 1000;
    uv_timer_start(&svc->stats_timer, on_stats_timer, ms, ms);
  }
  stat_inc(svc->st_reloads);
  log_info("service", "configuration reloaded (%zu subscriptions)",
           ncfg->nsubs);
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
  if (!mqtt_connected(svc->mqtt)) {
    snprintf(why, n, "not connected to the MQTT broker %s:%d",
             svc->cfg->mqtt.host, svc->cfg->mqtt.port);
    return false;
  }
  return true;
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
    }
  }
  rc = svc.exit_code ? IOCD_OK : mqtt_start(svc.mqtt);
  if (rc) {
    log_error("service", "cannot start the MQTT client: %s",
              iocd_strerror(rc));
  }
  log_info("service", "iocd %s started: %zu subscriptions, broker %s:%d, "
           "outputs:%s%s", IOCD_VERSION, cfg->nsubs, cfg->mqtt.host,
           cfg->mqtt.port, cfg->influx.enabled ? " influxdb" : "",
           cfg->file.enabled ? " file" : "");
  if (rc) {
    begin_stop(&svc, "start failure");
    svc.exit_code = 1;
  }

  uv_run(&svc.loop, UV_RUN_DEFAULT);
  ingest_free(svc.ingest);
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
  uv_run(&svc.loop, UV_RUN_DEFAULT);
  ingest_free(svc.ingest);
  stats_free(svc.stats);
  uv_loop_close(&svc.loop);
  config_free(cfg);
  return 1;
}
