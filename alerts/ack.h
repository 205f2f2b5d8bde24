/*
 * Acknowledgements of firing alerts, by alert id (the fingerprint of its
 * labels without "severity"): who, when, and a comment. An acknowledged
 * alert is not repeated and not escalated (dispatch.h); the ack ends when
 * the alert resolves, so a new firing episode needs a new ack.
 *
 * Every action leaves one line of the audit trail, data_dir/acks.jsonl,
 * which this module writes into a buffer for the caller to append to the
 * file (the caller does the I/O):
 *
 *   {"id":"0123456789abcdef","alertname":"feed_silent","labels":{...},
 *    "action":"ack","by":"an.nguyen","principal":"ops-duty",
 *    "at":1796705400000,"comment":"..."}
 *
 * action is "ack", "unack" or "expire" (the alert resolved; by, principal
 * and comment null); by is the person the request names, principal who
 * made the request (the API token's name, "anonymous" without one); at is
 * Unix milliseconds. At start, the current acks are loaded back by
 * replaying those lines; a line written before principal existed has none
 * and is read as well.
 *
 * Pure: no I/O, no clock.
 */
#ifndef IOCD_ALERTS_ACK_H
#define IOCD_ALERTS_ACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alerts/notice.h"
#include "core/buf.h"
#include "core/err.h"

/* At most this many alerts acknowledged at once. */
#define ACK_MAX 10000

/* One acknowledgement; owned by its set, read-only for its users. */
struct ack {
  uint64_t id;
  char *alertname; /* NULL when the labels have none */
  struct notice_labels labels;
  char *by;
  char *principal; /* NULL when the line it was replayed from had none */
  int64_t at_ns;
  char *comment; /* NULL when none was given */
};

struct ack_set;

/* An empty set; NULL when memory runs out. Free with ack_set_free. */
struct ack_set *ack_set_new(void);

/* Frees s; NULL is allowed. */
void ack_set_free(struct ack_set *s);

/* The ack of alert id; NULL when it is not acknowledged. Valid until s
 * changes. */
const struct ack *ack_find(const struct ack_set *s, uint64_t id);

/* The number of acks and ack i, for listing. */
size_t ack_count(const struct ack_set *s);
const struct ack *ack_at(const struct ack_set *s, size_t i);

/* Acknowledges alert id with labels (borrowed) by `by` (required), on the
 * request of principal (the token's name; NULL when not known, written as
 * null) with a comment (may be NULL), at now; acknowledging again replaces
 * who, when and the comment. Strings are copied. Appends the audit line,
 * '\n' included, to audit (may be NULL). Returns IOCD_OK; IOCD_EINVAL
 * without `by`; IOCD_ELIMIT past ACK_MAX; IOCD_ENOMEM (s unchanged). */
int ack_put(struct ack_set *s, uint64_t id, const struct notice_labels *labels,
            const char *by, const char *principal, const char *comment,
            int64_t now_ns, struct buf *audit);

/* Takes the ack of alert id back, by `by` (required) on the request of
 * principal (may be NULL) with a comment (may be NULL); appends the audit
 * line to audit (may be NULL). Returns IOCD_OK, IOCD_EINVAL without `by`,
 * IOCD_ENOTFOUND when id is not acknowledged, or IOCD_ENOMEM (s
 * unchanged). */
int ack_remove(struct ack_set *s, uint64_t id, const char *by,
               const char *principal, const char *comment, int64_t now_ns,
               struct buf *audit);

/* Ends the ack of alert id because the alert resolved; appends the
 * "expire" audit line to audit (may be NULL). Returns IOCD_OK,
 * IOCD_ENOTFOUND when id is not acknowledged, or IOCD_ENOMEM (s
 * unchanged). */
int ack_expire(struct ack_set *s, uint64_t id, int64_t now_ns,
               struct buf *audit);

/* Replays the audit lines in text[0..len) (borrowed) into s: "ack" sets,
 * "unack" and "expire" clear. A line without "principal" (written by an
 * older iocd) is replayed with principal NULL. Empty lines are ignored; a line
 * that is not an audit object (a torn last line after a crash) is skipped and
 * counted in *bad (may be NULL). Returns IOCD_OK or IOCD_ENOMEM. */
int ack_load(struct ack_set *s, const char *text, size_t len, size_t *bad);

#endif
