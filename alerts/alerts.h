/*
 * The rules engine's life on the loop, and what its decisions leave behind.
 * struct alerts builds the engine from the configuration, feeds it the
 * points the store accepted, drives its time (a 1 s timer: pending
 * deadlines, silent feeds, the broker's grace period), keeps its gauges and
 * counters on /metrics, and turns every alert transition into a log line, a
 * point of the `alerts` measurement (handed back to the app, which stores
 * it) and the state file under data_dir that carries the alerts across a
 * restart.
 *
 * alerts/ reads config/, rules/ and core/ only: what it needs of the broker
 * connection and of the store comes through the callbacks of struct
 * alerts_opts, wired by app/.
 */
#ifndef IOCD_ALERTS_ALERTS_H
#define IOCD_ALERTS_ALERTS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "alerts/notify.h"
#include "config/config.h"
#include "core/err.h"
#include "core/point.h"
#include "core/stats.h"
#include "rules/engine.h"

struct alerts;

/* Takes the `alerts` point of one transition (pb borrowed for the call).
 * Returns IOCD_OK, or an error that is logged and counted as a lost alert
 * point (iocd_alert_points_lost_total). */
typedef int alerts_store_fn(void *ud, const struct point_batch *pb);

/* Says whether iocd is connected to its MQTT broker now. */
typedef bool alerts_broker_fn(void *ud);

struct alerts_opts {
  uv_loop_t *loop;
  /* Borrowed: must live until alerts_reconfigure replaces it or until
   * alerts_close. */
  const struct config *cfg;
  /* Borrowed: the counters and gauges are registered here by alerts_new
   * and must outlive the alerts. */
  struct stats *stats;
  /* Where the `alerts` points go (the app: store_append with the store's
   * internal source). NULL: transitions are logged only. */
  alerts_store_fn *store;
  void *store_ud;
  /* Polled every second: the broker alert is raised once it has said false
   * for the grace period (5 s, at least two evaluation intervals), and
   * resolved when it says true again. NULL: always connected. */
  alerts_broker_fn *broker_connected;
  void *broker_ud;
  /* The MQTT receivers' way out (app/: mqtt_publish on iocd's broker
   * connection). NULL: MQTT receivers fail. */
  notify_publish_fn *publish;
  void *publish_ud;
};

/* Checks that the rules of cfg build an engine (templates, calendars, what
 * the loader cannot see), without starting anything. Returns IOCD_OK, or
 * the error with err saying where ("FILE:LINE:COL: ..." for a rule). */
int alerts_check(const struct config *cfg, struct iocd_err *err);

/* Registers the metrics in opts->stats, builds the engine for opts->cfg,
 * restores the state file of cfg->data_dir (a bad one is logged and
 * ignored) and starts the rules timer on opts->loop. Returns IOCD_OK and
 * *out, to be closed with alerts_close; or IOCD_ENOMEM / the engine's error
 * with err set, and then nothing is left on the loop and nothing to free. */
int alerts_new(const struct alerts_opts *opts, struct alerts **out,
               struct iocd_err *err);

/* Feeds the points of pb, accepted at now (realtime ns), to the engine, for
 * their own groups; transitions are recorded before it returns. pb is
 * borrowed for the call. Call it only once the store took the points, so
 * that the rules see exactly what is written. */
void alerts_add_points(struct alerts *a, const struct point_batch *pb,
                       int64_t now);

/* Applies the rules, calendar and parameters of ncfg to the running engine:
 * unchanged rules keep their state. On success a reads ncfg from then on
 * (the caller keeps it alive and may free the previous configuration); on
 * failure nothing changed and err says why. Call it as the last step of a
 * reload, when nothing after it can fail. */
int alerts_reconfigure(struct alerts *a, const struct config *ncfg,
                       struct iocd_err *err);

/* Alert delivery (silences, acknowledgements, the outbox), for the API;
 * NULL when notifications are off. Owned by a: valid until alerts_close. */
struct notify *alerts_notify(const struct alerts *a);

/* The engine, for the API's renderers of the active alerts and the rules.
 * Owned by a: valid until alerts_close. */
const struct engine *alerts_engine(const struct alerts *a);

/* Saves the state file as it is now and stops the timer: from here on no
 * transition is stored as a point (one still is logged). Call it when the
 * service begins to stop; calling it again does nothing. */
void alerts_stop(struct alerts *a);

typedef void alerts_closed_fn(void *ud);

/* Closes the timer; in its close callback frees the engine and a, then
 * calls cb (which may be NULL). The loop must run for that to happen. Does
 * not save the state: alerts_stop does. */
void alerts_close(struct alerts *a, alerts_closed_fn *cb, void *ud);

#endif
