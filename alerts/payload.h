/*
 * What each kind of receiver is sent, and what its answer means. Pure: the
 * bodies are built from a notice and the texts of template.c, answers are
 * classified from an HTTP status and body; sending is deliver.c's.
 *
 * - webhook: Alertmanager's webhook JSON, version "4", so tools written for
 *   Alertmanager work unchanged; iocd's own members sit under the extra
 *   top-level key "iocd" that such tools ignore.
 * - alertmanager: the JSON array of POST <url>/api/v2/alerts.
 * - telegram: the sendMessage JSON, HTML parse mode.
 * - zalo: the OA API v3.0 message JSON.
 * - email: a whole RFC 5322 message (MIME, UTF-8, base64 bodies, RFC 2047
 *   headers, CRLF line ends) for libcurl's SMTP upload.
 * - mqtt: one topic and JSON state per alert.
 *
 * Times in JSON are RFC 3339 in the calendar's local time
 * ("2026-12-08T09:15:00+07:00").
 */
#ifndef IOCD_ALERTS_PAYLOAD_H
#define IOCD_ALERTS_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "alerts/notice.h"
#include "alerts/template.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"

/* Telegram's limit on a message's text, in UTF-16 code units after the
 * HTML tags are taken out; Zalo's limit on a text message. Longer texts
 * are cut on a character boundary and end with "…". */
#define PAYLOAD_TELEGRAM_MAX 4096
#define PAYLOAD_ZALO_MAX 2000

/* What to do after a receiver answered. */
enum payload_verdict {
  PAYLOAD_OK = 0, /* accepted: the outbox forgets the notice */
  PAYLOAD_RETRY,  /* try again later (backoff, or retry_after_ms) */
  PAYLOAD_FAIL,   /* retrying cannot help: a dead letter now */
};

struct payload_answer {
  enum payload_verdict verdict;
  int64_t retry_after_ms; /* RETRY: the receiver's own delay; 0: none */
  /* For the log line: "HTTP 403: Forbidden: bot was blocked by the user",
   * "Zalo error -216: Access token is invalid". Never holds the request. */
  char message[IOCD_ERR_SIZE];
};

/* ---- webhook and Alertmanager ---- */

/* Appends Alertmanager's webhook body for n:
 * {"version":"4","groupKey","truncatedAlerts":0,"status","receiver",
 *  "groupLabels","commonLabels","commonAnnotations","externalURL",
 *  "alerts":[{"status","labels","annotations","startsAt","endsAt",
 *  "generatorURL","fingerprint"}],
 *  "iocd":{"notice_id","kind","tier","subject","text","alerts":[{
 *  "fingerprint","value","threshold","acked_by","acked_at",
 *  "ack_comment"}]}}.
 * status is "firing" when any alert fires; a firing alert's endsAt is
 * "0001-01-01T00:00:00Z"; generatorURL is the alert's Grafana link or "";
 * fingerprint its id (16 hex digits). external_url (iocd's own address,
 * NULL: "") is borrowed. Returns IOCD_OK, IOCD_ENOMEM or a buf_* error. */
int payload_webhook(const struct template_set *ts, const struct notice *n,
                    const char *external_url, int64_t now_ns, struct buf *out);

/* Appends the body of POST /api/v2/alerts for the alerts of n (of any
 * kind: their current state): [{"labels","annotations","startsAt",
 * "endsAt","generatorURL"}]. A resolved alert's endsAt is when it ended.
 * A firing alert has endsAt = firing_ends_ns when it is not 0, else none,
 * and then Alertmanager resolves it by itself after its resolve_timeout
 * (5 minutes) unless it is pushed again before. generatorURL is left out
 * without a Grafana link (Alertmanager refuses an empty URL). Returns as
 * payload_webhook. */
int payload_alertmanager(const struct template_set *ts, const struct notice *n,
                         int64_t firing_ends_ns, struct buf *out);

/* Classifies the answer to a webhook or Alertmanager request: 2xx OK;
 * 408, 429, 5xx and status 0 (no answer) RETRY; any other FAIL, with the
 * start of body in the message. The caller applies a Retry-After header
 * itself. body may be NULL. */
void payload_http_answer(long status, const char *body, size_t len,
                         struct payload_answer *ans);

/* ---- Telegram ---- */

/* Appends the sendMessage body: {"chat_id","text","parse_mode":"HTML",
 * "disable_web_page_preview":true}, the text being the subject in bold, a
 * blank line and the plain text, HTML-escaped, cut to
 * PAYLOAD_TELEGRAM_MAX. chat_id ("-100123", "@channel") is sent as a
 * string, which the Bot API takes for both. Returns as payload_webhook. */
int payload_telegram(const struct template_set *ts, const struct notice *n,
                     const char *chat_id, int64_t now_ns, struct buf *out);

/* Classifies the Bot API's answer: HTTP 2xx with "ok" not false is OK;
 * 429 is RETRY after parameters.retry_after seconds; 5xx and status 0
 * RETRY; 400, 401, 403, 404 and other statuses FAIL with the answer's
 * description. */
void payload_telegram_answer(long status, const char *body, size_t len,
                             struct payload_answer *ans);

/* ---- Zalo ---- */

/* Appends {"recipient":{"user_id"},"message":{"text"}}: the subject, a
 * blank line and the plain text, cut to PAYLOAD_ZALO_MAX characters.
 * Returns as payload_webhook. */
int payload_zalo(const struct template_set *ts, const struct notice *n,
                 const char *user_id, int64_t now_ns, struct buf *out);

/* Classifies the OA API's answer, which is HTTP 200 even when it failed:
 * OK only for a JSON object with "error": 0. A negative error is FAIL with
 * Zalo's "message", except the temporary ones (-32: request rate limit;
 * -100: unknown error, "try again later"), which RETRY; an unknown code is
 * FAIL. HTTP 429, 5xx, status 0 and a 200 that is not such JSON (a proxy's
 * page) RETRY; other statuses FAIL. */
void payload_zalo_answer(long status, const char *body, size_t len,
                         struct payload_answer *ans);

/* ---- e-mail ---- */

/* Appends the whole message for receiver r (from, to, html): headers From,
 * To (display names with non-ASCII characters as RFC 2047 encoded-words),
 * Subject (encoded-words of at most 75 characters, never splitting a
 * UTF-8 sequence, folded), Date (RFC 5322, now_ns in the calendar's
 * offset), Message-ID <NOTICEID.CREATED@DOMAIN> (DOMAIN from the From
 * address, else "iocd"; the same for every attempt at the notice),
 * MIME-Version, Auto-Submitted: auto-generated, then a text/plain part, or
 * with r->html a multipart/alternative of text/plain and text/html, UTF-8,
 * base64 in lines of 76, every line ended by CRLF (the text's own line
 * breaks too). Returns IOCD_EINVAL when r has no from or no to or one of
 * them has no valid address (payload_email_address), else as
 * payload_webhook. */
int payload_email(const struct template_set *ts, const struct notice *n,
                  const struct config_receiver *r, int64_t now_ns,
                  struct buf *out);

/* Appends the address of mailbox "IOC Đắk Lắk <ioc@daklak.gov.vn>" (or a
 * bare "ioc@daklak.gov.vn"), for the SMTP envelope. Returns IOCD_EINVAL
 * when there is no address or it is not printable ASCII without spaces
 * (payload_email refuses such a mailbox too), else IOCD_OK or a buf_*
 * error. */
int payload_email_address(const char *mailbox, struct buf *out);

/* ---- MQTT ---- */

/* Appends the topic of alert a: <prefix>/<alertname>/<district or "_">,
 * and /<system> when the alert has a system label (a feed_silent alert per
 * district and system keeps its own retained message). In a level, '%',
 * '+', '#' and '/' are written %25, %2B, %23 and %2F so the level stays one
 * level and can be read back; an empty value is "_". A trailing '/' of
 * prefix is dropped. Returns IOCD_OK or a buf_* error. */
int payload_mqtt_topic(const struct template_set *ts, const char *prefix,
                       const struct notice_alert *a, struct buf *out);

/* Appends the JSON state of alert a of notice n: {"id","notice_id","kind",
 * "status","labels","annotations","value","threshold","startsAt",
 * "endsAt","acked_by","acked_at","ack_comment","text","link"} (null for
 * what the alert has not: a firing alert's endsAt, no value, no ack). A
 * resolved alert is published once on its topic with this body, and then
 * the caller clears the retained message with an empty payload on the same
 * topic, so a wall that subscribes later sees only firing alerts. Returns
 * as payload_webhook. */
int payload_mqtt_body(const struct template_set *ts, const struct notice *n,
                      const struct notice_alert *a, struct buf *out);

#endif
