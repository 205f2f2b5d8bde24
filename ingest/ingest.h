/*
 * The ingest pipeline: an MQTT message (topic, payload, content type) becomes
 * zero or more validated points, or one reject with a reason. It matches the
 * topic against the subscriptions' patterns, decodes the payload with the
 * subscription's format, fixes timestamps, enforces field types, limits and
 * series cardinality, and hands the accepted points to a sink.
 *
 * Pure: no I/O and no clock reads (time is passed in), so every path is unit
 * tested. A message is accepted or rejected as a whole.
 */
#ifndef IOCD_INGEST_INGEST_H
#define IOCD_INGEST_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/err.h"
#include "core/point.h"
#include "core/stats.h"

#define INGEST_REASONS(X)                                              \
  X(NO_SUBSCRIPTION, "no_subscription", "topic matches no subscription") \
  X(TOO_BIG, "too_big", "payload over the size limit")                 \
  X(INVALID_UTF8, "invalid_utf8", "invalid UTF-8")                     \
  X(MALFORMED, "malformed", "malformed payload")                       \
  X(WRONG_TYPE, "wrong_type", "value of a wrong type")                 \
  X(TYPE_CONFLICT, "type_conflict", "field type conflict")             \
  X(NOT_FINITE, "not_finite", "NaN or Infinity")                       \
  X(TOO_DEEP, "too_deep", "nesting too deep")                          \
  X(BAD_TIME, "bad_time", "invalid timestamp")                         \
  X(TIME_FUTURE, "time_future", "timestamp too far in the future")     \
  X(TIME_PAST, "time_past", "timestamp too far in the past")           \
  X(NO_FIELDS, "no_fields", "no fields")                               \
  X(BAD_NAME, "bad_name", "invalid measurement, tag or field name")    \
  X(CARDINALITY, "cardinality", "series limit reached")                \
  X(TOO_MANY, "too_many", "too many points or fields")                \
  X(IDENTITY, "identity", "publisher's district is not the topic's")

enum ingest_reason {
  INGEST_OK = 0,
#define INGEST_REASON_ENUM(name, id, text) INGEST_##name,
  INGEST_REASONS(INGEST_REASON_ENUM)
#undef INGEST_REASON_ENUM
  INGEST_NREASONS
};

/* "malformed", ... (the counter label) and the human text. */
const char *ingest_reason_id(enum ingest_reason r);
const char *ingest_reason_text(enum ingest_reason r);

/* Called once per accepted message with its points (borrowed for the call).
 * sub is the index of the subscription in cfg->subs. A non-zero return means
 * the sink could not take the points (for example the buffer is full); the
 * message then counts as not accepted and ingest_message returns that code. */
typedef int ingest_sink_fn(void *ud, size_t sub, const struct point_batch *pb);

struct ingest;

/* Builds the pipeline for cfg (borrowed; must outlive the pipeline or be
 * replaced with ingest_reconfigure). Registers its counters in stats. Returns
 * NULL with err set when a subscription's pattern is invalid. */
struct ingest *ingest_new(const struct config *cfg, struct stats *stats,
                          ingest_sink_fn *sink, void *sink_ud,
                          struct iocd_err *err);
void ingest_free(struct ingest *in);

/* Swaps in a new configuration; learned field types and known series are
 * kept. Returns IOCD_OK, or an error (with err) leaving the old one active. */
int ingest_reconfigure(struct ingest *in, const struct config *cfg,
                       struct iocd_err *err);

/* The outcome of one message. */
struct ingest_result {
  enum ingest_reason reason; /* INGEST_OK when accepted */
  int sub;                   /* matched subscription, -1 for none */
  size_t npoints;            /* points handed to the sink */
  char detail[256];          /* "field \"received\": expected a number, got string" */
};

/* Handles one message. now_ns is the arrival time, used for points without a
 * timestamp and for the future/past limits. content_type may be NULL.
 * Returns IOCD_OK when accepted, IOCD_EINVAL when rejected (res says why; the
 * reject is counted and logged, rate-limited), or the sink's error. */
int ingest_message(struct ingest *in, const char *topic, const void *payload,
                   size_t len, const char *content_type, int64_t now_ns,
                   struct ingest_result *res);

/* One MQTT 5 user property of a message; both strings borrowed. */
struct ingest_user_prop {
  const char *name;
  const char *value;
};

/* What came with a message besides its topic and payload, all borrowed for
 * the call: the MQTT 5 content type (NULL: none) and user properties. */
struct ingest_meta {
  const char *content_type;
  const struct ingest_user_prop *user_props;
  size_t nuser_props;
};

/* As ingest_message, with the message's properties (meta may be NULL).
 * A subscription with an identity check ("identity" in the configuration)
 * rejects, with reason "identity", a message whose user property of that
 * name is absent or differs from the topic's {district} level, before its
 * payload is read. */
int ingest_message_meta(struct ingest *in, const char *topic,
                        const void *payload, size_t len,
                        const struct ingest_meta *meta, int64_t now_ns,
                        struct ingest_result *res);

/* The MQTT topic filter for a subscription pattern: `ioc/{district}/igate`
 * gives `ioc/+/igate`. out must hold strlen(pattern) + 1 bytes. */
int ingest_topic_filter(const char *pattern, char *out, size_t n,
                        struct iocd_err *err);

/* The index of the first subscription whose pattern matches topic, or -1. */
int ingest_match(const struct ingest *in, const char *topic);

/* Number of distinct series seen (for the cardinality gauge). */
size_t ingest_series_count(const struct ingest *in);

#endif
