/*
 * A notification, as the stages of delivery hand it on: the dispatcher
 * (dispatch.c) makes one for a receiver from a group of alerts, the outbox
 * (outbox.c) keeps it on disk until the receiver took it, and a sender
 * renders it (template.c) into the receiver's own message.
 *
 * Everything in it is owned by it and self-contained, so it can outlive
 * the engine event it came from, a reload, or a restart (notice_json.c
 * writes and reads it).
 */
#ifndef IOCD_ALERTS_NOTICE_H
#define IOCD_ALERTS_NOTICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A label or an annotation. */
struct notice_label {
  char *name;
  char *value;
};

/* Labels sorted by name, names unique. The labels of an alert are:
 * "alertname" (the rule), "severity", the rule's `by` labels (district,
 * system, ...) and the rule's static labels. */
struct notice_labels {
  struct notice_label *v;
  size_t n;
};

enum notice_status {
  NOTICE_FIRING = 0,
  NOTICE_RESOLVED,
};

/* One alert in a notification. */
struct notice_alert {
  uint64_t fingerprint; /* of the labels without "severity": the alert's id
                           across restarts (16 hex digits in the API) */
  struct notice_labels labels;
  struct notice_labels annotations; /* rendered by the rules engine */
  enum notice_status status;
  int64_t starts_ns;   /* when it started firing */
  int64_t ends_ns;     /* resolved: when; firing: 0 */
  bool has_value;
  double value;
  bool has_threshold;
  double threshold;
  char *reason;        /* the engine's words for the last transition */
  char *acked_by;      /* NULL unless acknowledged */
  int64_t acked_ns;
  char *ack_comment;
};

enum notice_kind {
  NOTICE_ALERTS = 0,  /* a group's firing and resolved alerts */
  NOTICE_ESCALATION,  /* the same, to an escalation tier nobody answered */
  NOTICE_FLAPPING,    /* one alert is flapping: notifications held */
  NOTICE_STORM,       /* the receiver's rate limit: one digest of many */
  NOTICE_DIGEST,      /* the leaders' daily or per-shift digest */
  NOTICE_DEAD_LETTER, /* a notification could not be delivered */
};

struct notice {
  uint64_t id;       /* unique per iocd data_dir; the outbox's key */
  char *receiver;    /* the receiver's name in config */
  enum notice_kind kind;
  int tier;          /* NOTICE_ESCALATION: 1 for the first tier */
  char *group_key;   /* route and group labels, e.g.
                        "{}/{severity=\"critical\"}:{district=\"Krông Búk\"}" */
  struct notice_labels group_labels;
  struct notice_alert *alerts;
  size_t nalerts;
  int64_t created_ns;
  /* NOTICE_STORM, NOTICE_DIGEST, NOTICE_DEAD_LETTER: what it sums up;
   * NULL otherwise. Rendered by template.c at creation. */
  char *text;
  int attempts;      /* delivery attempts so far (the outbox keeps it) */
};

const char *notice_kind_name(enum notice_kind k);
const char *notice_status_name(enum notice_status s);

/* Looks a label up; NULL when absent. */
const char *notice_label_get(const struct notice_labels *ls, const char *name);

/* Sets name=value, keeping the labels sorted (replaces an existing value).
 * Returns IOCD_OK or IOCD_ENOMEM. */
int notice_labels_set(struct notice_labels *ls, const char *name,
                      const char *value);

/* Deep copy into *dst (zeroed or cleaned first). IOCD_OK or IOCD_ENOMEM. */
int notice_labels_copy(struct notice_labels *dst,
                       const struct notice_labels *src);

void notice_labels_cleanup(struct notice_labels *ls);

/* The fingerprint of labels, leaving out "severity". */
uint64_t notice_labels_fingerprint(const struct notice_labels *ls);

int notice_alert_copy(struct notice_alert *dst, const struct notice_alert *src);
void notice_alert_cleanup(struct notice_alert *a);

/* A zeroed notice on the heap; NULL when memory runs out. */
struct notice *notice_new(void);
/* Deep copy; NULL when memory runs out. */
struct notice *notice_dup(const struct notice *n);
void notice_free(struct notice *n);

/* notice_json.c: the outbox's form of a notice, one JSON object. The
 * writer appends to out (IOCD_OK or IOCD_ENOMEM); the reader returns
 * IOCD_OK and *out, or IOCD_EPARSE with err saying which member is wrong. */
struct buf;
struct iocd_err;
int notice_to_json(const struct notice *n, struct buf *out);
int notice_from_json(const char *json, size_t len, struct notice **out,
                     struct iocd_err *err);

#endif
