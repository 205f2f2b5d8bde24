/*
 * Sending one notice to its receiver, on the loop: the transports of the
 * receiver types of config_receiver (webhook, Alertmanager, Telegram and
 * Zalo over HTTP, e-mail over SMTP, all with libcurl on core/curl_loop.h;
 * MQTT through the publish callback the application wires to its broker
 * connection), with the bodies from payload.h. Each attempt ends in one
 * outcome, logged on one line and counted on /metrics:
 *
 *   iocd_notifications_total{receiver,outcome="sent|retry|failed|dead"}
 *   iocd_notification_duration_seconds{receiver} (histogram)
 *
 * A retry is due after an exponential backoff with full jitter: a delay
 * drawn uniformly from [0, min(retry_max, retry_min * 2^(attempt-1))], or
 * longer when the receiver asked (Retry-After, Telegram's retry_after).
 * Past max_attempts a retry becomes a dead letter. Which notice goes when,
 * and what is kept on disk, is the courier's (courier.h).
 *
 * Log lines never show a token or a password: a Telegram URL shows
 * "bot***" in place of "bot<token>"; of a webhook's, Alertmanager's or SMTP
 * server's URL only the scheme, host and port are shown (credentials, a
 * path or a query may hold a secret); an answer that echoes the token has
 * it replaced by "***".
 */
#ifndef IOCD_ALERTS_DELIVER_H
#define IOCD_ALERTS_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "alerts/notice.h"
#include "alerts/template.h"
#include "config/config.h"
#include "core/curl_loop.h"
#include "core/err.h"
#include "core/stats.h"

enum deliver_outcome {
  DELIVER_SENT = 0, /* the receiver took it */
  DELIVER_RETRY,    /* try again at next_try_ns */
  DELIVER_FAILED,   /* refused for good (a 4xx, a wrong token): give up */
  DELIVER_DEAD,     /* still failing after max_attempts: give up */
};

/* "sent", "retry", "failed", "dead": the outcome label. */
const char *deliver_outcome_name(enum deliver_outcome o);

/* The end of one attempt at notice id: why says what went wrong (NULL
 * when sent; never a secret) and is borrowed for the call; next_try_ns is
 * the wall-clock time of the retry (DELIVER_RETRY only, else 0). */
typedef void deliver_done_fn(void *ud, uint64_t id,
                             enum deliver_outcome outcome, int64_t next_try_ns,
                             const char *why);

/* The application's MQTT publish (the same shape as notify_publish_fn):
 * returns IOCD_OK when the message was handed to the broker connection,
 * and then calls done exactly once, on the loop, with IOCD_OK once the
 * broker took it (QoS 1 and 2; at once for QoS 0) or with an error. */
typedef void deliver_published_fn(void *ud, int rc);
typedef int deliver_publish_fn(void *ud, const char *topic, const void *payload,
                               size_t len, int qos, bool retain,
                               deliver_published_fn *done, void *done_ud);

/* The compiled templates for receiver r (its language); borrowed until
 * the next call into deliver. NULL: the notice cannot be rendered (the
 * attempt fails). */
typedef const struct template_set *deliver_templates_fn(
    void *ud, const struct config_receiver *r);

struct deliver_opts {
  uv_loop_t *loop;
  struct curl_loop *curl;          /* borrowed; outlives the deliver */
  const struct config_notify *cfg; /* borrowed until deliver_set_config */
  struct stats *stats;             /* borrowed; NULL: no counters */
  deliver_templates_fn *templates;
  void *templates_ud;
  deliver_publish_fn *publish; /* NULL: MQTT receivers fail */
  void *publish_ud;
  const char *external_url; /* the webhook's externalURL; copied; NULL: "" */
};

struct deliver;

/* Creates the sender. Returns IOCD_OK and *out, or IOCD_EINVAL /
 * IOCD_ENOMEM with err set. */
int deliver_new(const struct deliver_opts *opts, struct deliver **out,
                struct iocd_err *err);

/* The receivers of cfg (borrowed until the next call) from now on;
 * attempts already out finish with what they started with. */
void deliver_set_config(struct deliver *dl, const struct config_notify *cfg);

/* The receiver of the configuration named name, or NULL. */
const struct config_receiver *deliver_receiver(const struct deliver *dl,
                                               const char *name);

/* Starts one attempt at n (attempt number n->attempts + 1) to the receiver
 * n->receiver names. Everything needed is taken from n and the receiver
 * before this returns (n may be freed then). done is called exactly once,
 * on a later loop iteration, unless deliver_close comes first. Returns
 * IOCD_OK, IOCD_ENOMEM or IOCD_ECLOSED (done not called). */
int deliver_send(struct deliver *dl, const struct notice *n,
                 deliver_done_fn *done, void *ud);

/* Forgets what deliver remembers of notice id between attempts (which
 * Zalo recipients already have it), when the notice left the outbox by
 * another way than deliver's outcome. */
void deliver_forget(struct deliver *dl, uint64_t id);

/* The number of attempts out. */
size_t deliver_inflight(const struct deliver *dl);

typedef void deliver_closed_fn(void *ud);

/* Aborts every attempt out without calling its done (their notices are
 * still in the outbox for the next start), closes the handles and frees
 * dl; closed (may be NULL) is called then, on a later loop iteration. An
 * MQTT publish whose done has not come yet is forgotten: its done, when it
 * comes, only frees what it carries. */
void deliver_close(struct deliver *dl, deliver_closed_fn *closed, void *ud);

#endif
