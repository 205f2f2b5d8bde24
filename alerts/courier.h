/*
 * The courier: the durable outbox (outbox.h) and the transports
 * (deliver.h) on the loop. A notice submitted is written to the outbox
 * before its first attempt; a retry waits for the time deliver chose (a
 * timer), with the attempt count kept on disk; a notice the receiver took
 * leaves the outbox; one given up on (refused for good, or max_attempts
 * reached) moves to outbox/dead/ and is reported, as a NOTICE_DEAD_LETTER
 * notice, to the caller, who routes it like an alert. At start everything
 * a previous run left pending is sent again, in id order.
 *
 * Each receiver gets one notice at a time. Within a group (the notice's
 * group_key) the oldest goes first and the later ones wait until it went
 * through or was given up, so a "resolved" never overtakes its "firing";
 * while one group's notice waits for its retry, another group's may go.
 *
 * Counters besides deliver's: iocd_outbox_pending and
 * iocd_outbox_dead_letters (gauges), iocd_outbox_evicted_total (notices
 * given up because the outbox was full; also counted as
 * iocd_notifications_total{outcome="dead"}).
 */
#ifndef IOCD_ALERTS_COURIER_H
#define IOCD_ALERTS_COURIER_H

#include <stdint.h>
#include <uv.h>

#include "alerts/deliver.h"
#include "alerts/notice.h"
#include "alerts/outbox.h"
#include "config/config.h"
#include "core/curl_loop.h"
#include "core/err.h"
#include "core/stats.h"

/* A notice was given up on. dead_letter is a NOTICE_DEAD_LETTER notice
 * made for it (id 0 and receiver NULL, for the caller to route and submit;
 * the failed notice's group labels and alerts; its text from
 * template_dead_letter_text in the failed receiver's language); failed is
 * the notice given up (its attempts counted), why the last error. All are
 * borrowed for the call. The callback may call courier_submit, or
 * courier_close. No dead letter is made for a dead letter that failed:
 * that is only logged. */
typedef void courier_dead_fn(void *ud, const struct notice *dead_letter,
                             const struct notice *failed, const char *why);

/* A notice reached its receiver (n borrowed for the call). The callback
 * may call courier_submit. */
typedef void courier_sent_fn(void *ud, const struct notice *n);

struct courier_opts {
  uv_loop_t *loop;
  struct curl_loop *curl; /* borrowed; NULL: the courier runs its own */
  const struct config_notify *cfg; /* borrowed until courier_set_config */
  const char *dir;                 /* the outbox: <data_dir>/outbox */
  struct outbox_opts outbox;       /* limits; on_evict is the courier's */
  struct stats *stats;             /* borrowed; NULL: no counters */
  deliver_templates_fn *templates; /* see deliver.h */
  void *templates_ud;
  deliver_publish_fn *publish; /* NULL: MQTT receivers fail */
  void *publish_ud;
  const char *external_url; /* the webhook's externalURL (copied) */
  /* With opts.outbox.sync_later: the outbox is made durable against a
   * power loss this often (journal.fsync_interval), and at close; 0: only
   * at close (journal.fsync "never"). */
  int sync_interval_ms;
  courier_dead_fn *on_dead; /* may be NULL */
  courier_sent_fn *on_sent; /* may be NULL; with dead_ud */
  void *dead_ud;
};

struct courier;

/* Opens the outbox in opts->dir and starts sending what it holds. Returns
 * IOCD_OK and *out, or an error with err set ("outbox DIR: ...") and
 * nothing left running. */
int courier_new(const struct courier_opts *opts, struct courier **out,
                struct iocd_err *err);

/* Takes n (copied; receiver set; n->id 0: a new id is given) into the
 * outbox, durably, and sends it when its receiver is free. *id (may be
 * NULL) receives the id. Returns IOCD_OK (also when the file could not be
 * written: the notice is then sent from memory, with an error logged);
 * IOCD_EINVAL (no receiver, or the id is pending already), IOCD_ETOOBIG,
 * IOCD_ENOMEM or IOCD_ECLOSED with err set, and then nothing is kept. */
int courier_submit(struct courier *c, const struct notice *n, uint64_t *id,
                   struct iocd_err *err);

/* A new notice id (outbox_next_id). */
uint64_t courier_next_id(struct courier *c);

/* The receivers of cfg (borrowed until the next call) from now on. A
 * pending notice whose receiver is gone is given up ("no receiver ..."). */
void courier_set_config(struct courier *c, const struct config_notify *cfg);

/* The outbox, for the API's lists (outbox_list, outbox_dead_list);
 * borrowed. */
const struct outbox *courier_outbox(const struct courier *c);

typedef void courier_closed_fn(void *ud);

/* Stops sending: attempts out are aborted (their notices stay pending in
 * the outbox for the next start), the handles closed, c freed; closed (may
 * be NULL) is called then, on a later loop iteration. */
void courier_close(struct courier *c, courier_closed_fn *closed, void *ud);

#endif
