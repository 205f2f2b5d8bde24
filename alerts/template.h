/*
 * The words of a notification: what a leader reads in an e-mail, a
 * Telegram or Zalo message, and what a webhook carries as text. Pure: no
 * I/O, no clock (the time of sending is passed in).
 *
 * Default texts are Vietnamese (English when the receiver's language is
 * "en"), with numbers as the province writes them (core/numfmt.h): 1.410.312
 * and 10,61% (English: 1,410,312 and 10.61%), district names exactly as in
 * the labels, local times ("từ 09:15 ngày 08/12/2026, đã 2 giờ 15 phút") and
 * a link to the district's Grafana dashboard. The subject is the tag
 * ("[CẢNH BÁO]", "[NGHIÊM TRỌNG]", "[ĐÃ KHẮC PHỤC]"; escalations add "— chưa
 * được xác nhận sau 15 phút") and the alert's summary annotation (else its
 * name and district), or for a group the count and the districts. The text
 * has one block per alert: the description, then "Địa bàn", "Hệ thống", "Mức
 * độ", "Giá trị ... (ngưỡng: ...)", "Thời gian", "Xác nhận" (acknowledged:
 * by whom, when), "Chi tiết" (the link) and "Mã cảnh báo" (the id for the
 * ack API); the summary is not repeated (it is the subject, or each block's
 * heading in a group). Storm digests, daily digests and dead letters list
 * one line per alert under notice.text.
 *
 * Values and thresholds: a rule whose label (or annotation) "unit" is
 * "ratio" has values that are shares (0.1061 is shown as 10,61%); "percent"
 * means the value is already in percent (10.61 is shown as 10,61%);
 * anything else, or no "unit", shows the plain number.
 *
 * The configuration may override the subject, the plain text and the HTML
 * ("notifications.templates"). Their syntax:
 *
 *   {{name}}               a field, spaces allowed inside the braces
 *   {{labels.NAME}}        any label of the alert
 *   {{annotations.NAME}}   any annotation of the alert
 *   {{#alerts}}...{{/alerts}}     the part between, once per alert of the
 *                                 notification ({{#firing}} and
 *                                 {{#resolved}}: only those); blocks do not
 *                                 nest
 *
 * Alert fields (outside a block: the first alert's): alertname, district,
 * system, severity, status ("firing" or "resolved"), value, threshold
 * (formatted by the rule's unit), value_pct, threshold_pct (the number as a
 * share, times 100 with "%"), since (local time the alert started: "09:15
 * ngày 08/12/2026"), since_rfc3339, until (resolved: when; else empty),
 * duration ("2 giờ 15 phút", until now while firing), summary, description,
 * link (Grafana; empty without grafana_url or district), acked_by,
 * ack_comment, id (16 hex digits), reason (the engine's words for the last
 * change). Notification fields: tag ("[CẢNH BÁO]", "[NGHIÊM TRỌNG]",
 * "[ĐÃ KHẮC PHỤC]", ...), receiver, count, firing_count, resolved_count,
 * escalation (escalations: "chưa được xác nhận sau 15 phút", else empty),
 * notice_text (the text of a digest or a dead letter), notice_id.
 *
 * A missing field, label or annotation renders as nothing; value and
 * threshold render as "-" when the alert has none. In the HTML template
 * every field is escaped (& < > " '), the template's own text is not.
 * "{{" cannot be written literally. A text or HTML template without a
 * block is a template for one alert: it is repeated for each alert of the
 * notification, separated by a blank line (HTML: a newline). The overrides
 * apply to alert notifications and escalations; flapping, storm digests,
 * daily digests and dead letters always use the built-in texts.
 */
#ifndef IOCD_ALERTS_TEMPLATE_H
#define IOCD_ALERTS_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "alerts/notice.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"

/* The compiled templates of one language: opaque. */
struct template_set;

struct template_opts {
  enum config_language lang;
  int32_t utc_offset_s;       /* local time = UTC + this (calendar) */
  const char *district_label; /* NULL: "district" (sources.district_tag) */
  const char *system_label;   /* NULL: "system" (sources.system_tag) */
};

/* Compiles the templates of cfg->templates (NULL members: the defaults)
 * and copies what the texts need from cfg (grafana_url, the escalation
 * tiers' delays, the flapping settings), so cfg may be freed afterwards;
 * cfg itself may be NULL (defaults only). opts is borrowed. Returns IOCD_OK
 * and *out (free with template_set_free), IOCD_EPARSE with err as
 * template_check words it, or IOCD_ENOMEM. */
int template_set_new(const struct config_notify *cfg,
                     const struct template_opts *opts,
                     struct template_set **out, struct iocd_err *err);

void template_set_free(struct template_set *ts);

/* The language, UTC offset and label names ts was made with; the strings
 * are owned by ts. */
enum config_language template_set_lang(const struct template_set *ts);
int32_t template_set_utc_offset(const struct template_set *ts);
const char *template_set_district_label(const struct template_set *ts);
const char *template_set_system_label(const struct template_set *ts);

/* Appends the subject of n (one line: line breaks become spaces), sent at
 * now_ns. Returns IOCD_OK or a buf_* error. */
int template_render_subject(const struct template_set *ts,
                            const struct notice *n, int64_t now_ns,
                            struct buf *out);

/* Appends the plain text of n, without the subject. Returns as above. */
int template_render_text(const struct template_set *ts, const struct notice *n,
                         int64_t now_ns, struct buf *out);

/* Appends the HTML of n: by default a whole document (UTF-8, the subject
 * as title and heading). Returns as above. */
int template_render_html(const struct template_set *ts, const struct notice *n,
                         int64_t now_ns, struct buf *out);

/* Appends one line for alert a of n: the tag and the headline (the
 * summary, else the alert name, with the district), as a storm digest
 * lists it; the MQTT receiver's "text". Returns as above. */
int template_render_alert_line(const struct template_set *ts,
                               const struct notice *n,
                               const struct notice_alert *a, struct buf *out);

/* Appends the Grafana link of alert a (<grafana_url>/d/iocd-district?
 * var-district=<percent-encoded district>), nothing when ts has no
 * grafana_url or a has no district. Returns as above. */
int template_alert_link(const struct template_set *ts,
                        const struct notice_alert *a, struct buf *out);

/* Checks the syntax of template text: every "{{" closed, every field
 * known, blocks opened and closed in order. name says which template for
 * the message ("notifications.templates.text"). Returns IOCD_OK, or
 * IOCD_EPARSE with err "FILE:LINE:COL: NAME: unknown field {{distric}}":
 * place is where the string's first character is written (right after
 * its opening quote, as the configuration loader records the templates)
 * and COL adds the UTF-8 characters before the "{{" at fault. A JSON
 * escape in the file (\n, \", \u00e9) is one character of text but
 * several in the file, so after one the column is early by the
 * difference. Without place (NULL or no file) the message is "NAME:
 * column N: ...", N counted from 1 in text. */
int template_check(const char *text, const struct config_place *place,
                   const char *name, struct iocd_err *err);

/* ---- formatting, for the receivers' payloads and for tests ---- */

/* Appends v formatted by the unit of labels/annotations as described at
 * the top ("ratio", "percent" or a plain number), with the digits of
 * core/numfmt.h; has false: "-". Returns IOCD_OK or a buf_* error. */
int template_format_value(const struct notice_alert *a, bool has, double v,
                          enum config_language lang, struct buf *out);

/* Appends local time t_ns: vi "09:15 ngày 08/12/2026", en "09:15 on
 * 2026-12-08". Returns as above. */
int template_format_time(int64_t t_ns, int32_t utc_offset_s,
                         enum config_language lang, struct buf *out);

/* Appends the length of [from_ns, to_ns) in its two largest units: vi "2
 * giờ 15 phút", "3 ngày 2 giờ", "15 phút", "40 giây"; en "2 h 15 min",
 * "3 d 2 h", "15 min", "40 s". Negative lengths count as 0. Returns as
 * above. */
int template_format_duration(int64_t from_ns, int64_t to_ns,
                             enum config_language lang, struct buf *out);

/* Appends t_ns as RFC 3339 in local time: "2026-12-08T09:15:00+07:00",
 * with the fraction of a second when there is one
 * ("2026-12-08T09:15:00.25+07:00"), "Z" for offset 0. Returns as above. */
int template_format_rfc3339(int64_t t_ns, int32_t utc_offset_s,
                            struct buf *out);

/* Appends s[0..n) with & < > " ' as HTML entities (' as &#39;). Returns as
 * above. */
int template_html_escape(const char *s, size_t n, struct buf *out);

/* Appends s with every byte outside RFC 3986's unreserved characters
 * (A-Z a-z 0-9 - . _ ~) as %XX: "Ea H'Leo" is "Ea%20H%27Leo". Returns as
 * above. */
int template_url_encode(const char *s, struct buf *out);

/* ---- the texts of notices that sum something up (notice.text) ---- */

/* A storm digest: receiver passed rate_per_hour messages in an hour and
 * nheld notifications are summed up instead. Returns as above. */
int template_storm_text(enum config_language lang, const char *receiver,
                        int rate_per_hour, size_t nheld, struct buf *out);

/* The leaders' digest made at at_ns: "Tình hình cảnh báo lúc 07:30 ngày
 * 08/12/2026". Returns as above. */
int template_digest_text(enum config_language lang, int32_t utc_offset_s,
                         int64_t at_ns, struct buf *out);

/* A notification that could not be delivered: failed (borrowed) was given
 * up after failed->attempts attempts, error says why (may be NULL; it must
 * not hold a secret). Returns as above. */
int template_dead_letter_text(enum config_language lang,
                              const struct notice *failed, const char *error,
                              struct buf *out);

#endif
