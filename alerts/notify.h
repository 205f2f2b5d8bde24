/*
 * Alert delivery on the loop: from the rules engine's transitions to the
 * receivers' acknowledgement. struct notify owns the dispatcher (routing,
 * grouping, inhibition, silences, acknowledgements, escalation, mute times,
 * flapping, storms, digests: dispatch.c, pure), the courier (the durable
 * outbox and the senders: courier.c) and the files under data_dir that
 * carry silences and acknowledgements across a restart. docs/alerts.md is
 * the reference.
 *
 * Everything here runs on the loop thread; the functions the API calls
 * return at once with what is in memory.
 */
#ifndef IOCD_ALERTS_NOTIFY_H
#define IOCD_ALERTS_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "alerts/notice.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/stats.h"
#include "rules/engine.h"

struct notify;

/* Publishes on iocd's own broker connection (app/: mqtt_publish); done is
 * called later with IOCD_OK once the broker took it, or an error. Returns
 * IOCD_OK, or an error when it cannot even be tried (not connected). */
typedef void notify_published_fn(void *ud, int rc);
typedef int notify_publish_fn(void *ud, const char *topic, const void *payload,
                              size_t len, int qos, bool retain,
                              notify_published_fn *done, void *done_ud);

/* What changed in the acknowledgement of an alert, once it took effect:
 * everything is borrowed for the call. */
struct notify_ack_action {
  const char *action; /* "ack", "unack" or "expire" (the alert resolved, or
                         fires again in an episode the ack is not for) */
  uint64_t id;        /* the alert's id (its fingerprint) */
  /* The alert's labels (alertname, severity, district, ...) as the
   * dispatcher knows them now, else as they were acknowledged. */
  const struct notice_labels *labels;
  const char *by;        /* whom the request names; NULL for "expire" */
  const char *principal; /* the API token's name; NULL when not known */
  const char *comment;   /* NULL when none was given */
  int64_t at_ns;         /* when it took effect (Unix ns) */
  int64_t fired_ns;      /* when the alert started firing; 0: not known */
};

/* Hears of every acknowledgement, taking back and end (notify_opts). */
typedef void notify_ack_fn(void *ud, const struct notify_ack_action *act);

struct notify_opts {
  uv_loop_t *loop;
  const struct config *cfg;   /* borrowed, as struct alerts_opts says */
  struct stats *stats;        /* borrowed; counters registered here */
  notify_publish_fn *publish; /* NULL: MQTT receivers fail */
  void *publish_ud;
  notify_ack_fn *on_ack; /* NULL: nobody hears of acknowledgements */
  void *ack_ud;
};

/* Checks what the loader cannot: templates (FILE:LINE:COL), that the
 * dispatcher builds. Returns IOCD_OK or the error with err set. */
int notify_check(const struct config *cfg, struct iocd_err *err);

/* Opens the outbox, silences and acknowledgements under cfg->data_dir,
 * resends what the outbox still holds and starts the timers. Returns
 * IOCD_OK and *out, or an error with err set and nothing left running. */
int notify_new(const struct notify_opts *opts, struct notify **out,
               struct iocd_err *err);

/* One transition of the rules engine (pending, firing, resolved, ...):
 * those that change what receivers must know go to the dispatcher. The
 * first one ends the restore (notify_restore_done). An ack it ends (the
 * alert resolved) reaches on_ack as "expire", as does one notify_restore
 * ends. */
void notify_event(struct notify *n, const struct alert_event *ev);

/* At start, after notify_new: one alert of the rules engine's restored
 * state (engine_list; ev borrowed). A firing one (firing, nodata) goes to
 * the dispatcher as notified when data_dir/notified.json says its
 * receivers were told before the restart (no second firing notification,
 * its resolved one still sent), else as new; the others are ignored. */
void notify_restore(struct notify *n, const struct alert_event *ev);

/* Ends the restore: the entries of notified.json no restored firing alert
 * claimed are dropped, and what is due runs. Call it once after the last
 * notify_restore; the first notify_event or timer tick does it too. */
void notify_restore_done(struct notify *n);

/* The id of the alert of ev, as the API and notifications show it: 16
 * lowercase hex digits of the fingerprint of its labels. */
void notify_event_id(const struct alert_event *ev, char out[17]);

/* Acknowledges the firing alert id (16 hex digits) by who, on the request
 * of principal (the API token's name, "anonymous" without one; may be
 * NULL), with comment (may be NULL). Both who and principal go into the
 * audit line, which is written before it returns; then on_ack hears of it
 * ("ack"; notify_unack: "unack"). Returns IOCD_OK,
 * IOCD_ENOTFOUND (no such firing alert), IOCD_EINVAL (bad id or who) with
 * err set. */
int notify_ack(struct notify *n, const char *id, const char *who,
               const char *principal, const char *comment,
               struct iocd_err *err);
int notify_unack(struct notify *n, const char *id, const char *who,
                 const char *principal, struct iocd_err *err);

/* Adds a silence: matchers as strings ("district=Krông Búk",
 * "alertname=~online_.*"), from and until (Unix ns; from 0: now), by
 * created_by on the request of principal (the API token's name; may be
 * NULL). Returns IOCD_OK and its id in id_out, or IOCD_EINVAL with err
 * saying which matcher or time is wrong. Saved before it returns. */
int notify_silence_add(struct notify *n, const char *const *matchers,
                       size_t nmatchers, int64_t starts_ns, int64_t ends_ns,
                       const char *created_by, const char *principal,
                       const char *comment, char id_out[17],
                       struct iocd_err *err);

/* Ends silence id now on the request of principal (may be NULL): it stays
 * listed as expired, with principal as its expired_by, and the log says
 * who ended it. IOCD_ENOTFOUND when there is none; IOCD_EINVAL for a
 * silence from the configuration. */
int notify_silence_delete(struct notify *n, const char *id,
                          const char *principal, struct iocd_err *err);

/* The JSON documents of the API: {"silences": [...]} (each with its
 * principal and expired_by), {"acks": [...], "audit": [...]} (the current
 * acks with their principal, and the audit trail, newest last),
 * {"notifications": {"pending": [...], "dead": [...]}}. Append to out; IOCD_OK
 * or a buf_* error. */
int notify_silences_json(struct notify *n, struct buf *out);
int notify_acks_json(struct notify *n, struct buf *out);
int notify_outbox_json(struct notify *n, struct buf *out);

/* The acknowledgement of alert id, for the alerts list: who, when (ns) and
 * comment, borrowed until the next call into n; false when unacknowledged. */
bool notify_ack_of(struct notify *n, const char *id, const char **who,
                   int64_t *at_ns, const char **comment);

/* Applies a reloaded configuration (receivers, routes, silences from
 * config, templates). On failure nothing changed. */
int notify_reconfigure(struct notify *n, const struct config *ncfg,
                       struct iocd_err *err);

/* Stops taking events and sending; what is not delivered stays in the
 * outbox for the next start. */
void notify_stop(struct notify *n);

typedef void notify_closed_fn(void *ud);
/* Closes the handles; cb is called when n is freed. */
void notify_close(struct notify *n, notify_closed_fn *cb, void *ud);

#endif
