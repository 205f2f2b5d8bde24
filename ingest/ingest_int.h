/*
 * Internals of the ingest pipeline shared by the files of ingest/: topic
 * patterns, the decoder interface, timestamps and the field type and series
 * registry. Nothing outside ingest/ (tests aside) includes this header.
 */
#ifndef IOCD_INGEST_INGEST_INT_H
#define IOCD_INGEST_INGEST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/point.h"
#include "ingest/ingest.h"

/* ---- limits ---------------------------------------------------------- */

/* The limits in force, with every zero of struct config_limits replaced by
 * its default. The defaults live in ingest__limits_resolve and nowhere
 * else. */
struct ingest_limits {
  size_t max_payload_bytes;
  size_t max_series;
  size_t max_field_types; /* distinct (measurement, field) pairs */
  int max_json_depth;
  size_t max_fields; /* per point */
  size_t max_points; /* per message */
  int64_t max_future_ns;
  int64_t max_past_ns;
  uint32_t log_burst;
  int64_t log_window_ms;
};

#define INGEST_DEFAULT_MAX_PAYLOAD_BYTES ((size_t)65536)
#define INGEST_DEFAULT_MAX_SERIES ((size_t)100000)
#define INGEST_DEFAULT_MAX_FIELD_TYPES ((size_t)100000)
#define INGEST_DEFAULT_MAX_JSON_DEPTH 8
#define INGEST_DEFAULT_MAX_FIELDS ((size_t)256)
#define INGEST_DEFAULT_MAX_POINTS ((size_t)1000)
#define INGEST_DEFAULT_MAX_FUTURE_S INT64_C(600)
#define INGEST_DEFAULT_MAX_PAST_S INT64_C(31622400)
#define INGEST_DEFAULT_LOG_BURST 10
#define INGEST_DEFAULT_LOG_WINDOW_S 10
#define INGEST_DEFAULT_LATE_AFTER_S INT64_C(300)
#define INGEST_DEFAULT_FUTURE_AFTER_S INT64_C(60)
#define INGEST_DEFAULT_SILENT_AFTER_S INT64_C(600)
/* MQTT's own packet limit: no payload can be larger. */
#define INGEST_MAX_PAYLOAD_CEILING ((size_t)268435455)

void ingest__limits_resolve(const struct config_limits *cl,
                            struct ingest_limits *out);

/* ---- topic patterns (pattern.c) ------------------------------------- */

enum level_kind { LEVEL_LITERAL, LEVEL_PLUS, LEVEL_CAPTURE, LEVEL_HASH };

struct pattern_level {
  enum level_kind kind;
  const char *text; /* literal text or capture name, inside pattern->src */
  size_t len;
};

/* A pattern holds at most this many {name} captures, so that matching can
 * use a fixed array on the stack. */
#define INGEST_MAX_CAPTURES 16

struct pattern {
  char *src; /* owned copy of the pattern text */
  struct pattern_level *levels;
  size_t nlevels;
  size_t ncaptures;
};

/* One {name} capture of a match: both slices borrow from the pattern and
 * the topic. */
struct capture {
  struct str name;
  struct str value;
};

/* Parses src into pat (caller storage). Returns IOCD_OK, IOCD_EPARSE with
 * err naming the 1-based column (also stored in *col when col is not NULL;
 * 0 when no column applies), or IOCD_ENOMEM. On failure pat needs no
 * cleanup. */
int ingest__pattern_parse(struct pattern *pat, const char *src, size_t *col,
                          struct iocd_err *err);
void ingest__pattern_cleanup(struct pattern *pat);

/* Matches topic[0..len) against pat without allocating. Returns the number
 * of captures written to caps (which holds INGEST_MAX_CAPTURES), or -1 when
 * the topic does not match. */
int ingest__pattern_match(const struct pattern *pat, const char *topic,
                          size_t len, struct capture *caps);

/* ---- decoders --------------------------------------------------------- */

/* A number token of JSON text, found by the pre-scan in document order. */
struct json_num {
  uint32_t off, len;
  bool is_int; /* no fraction and no exponent in the source text */
};

/* Buffers reused from message to message, so that the hot path does not
 * allocate once they have grown to the largest message seen. */
struct ingest_scratch {
  struct json_num *nums;
  size_t cap_nums;
  struct buf key;        /* flattened JSON keys, SenML names */
  struct point_batch lp; /* lp_parse's output before the tags are merged */
};

/* What a decoder gets. The reject fields of res are the output. */
struct decode_ctx {
  const struct config_subscription *sub;
  const struct ingest_limits *lim;
  const char *topic;
  const char *payload;
  size_t len;
  const struct capture *caps;
  size_t ncaps;
  struct str measurement; /* {measurement} > sub->measurement > sub name */
  struct str field;       /* {field} capture; p is NULL when absent */
  int64_t now_ns;
  struct ingest_scratch *scratch;
  struct ingest_result *res;
};

/* A payload format. decode fills pb (reset, empty) from ctx->payload and
 * returns IOCD_OK, IOCD_EINVAL after ingest__reject, or IOCD_ENOMEM. Points
 * left without a timestamp get the arrival time afterwards. */
struct decoder_ops {
  const char *name;
  int (*decode)(struct decode_ctx *ctx, struct point_batch *pb);
};

extern const struct decoder_ops ingest__decoder_json;
extern const struct decoder_ops ingest__decoder_value;
extern const struct decoder_ops ingest__decoder_line;
extern const struct decoder_ops ingest__decoder_senml;

/* The decoder for an MQTT 5 content type (parameters such as "; charset="
 * and letter case ignored), or NULL when the type is not one of ours. */
const struct decoder_ops *ingest__decoder_for_content_type(const char *ct);

/* Records a reject in res (reason and detail) and returns IOCD_EINVAL. */
int ingest__reject(struct ingest_result *res, enum ingest_reason reason,
                   const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Starts a point, enforcing the per-message point limit, and gives it the
 * tags of the topic's captures and then the subscription's static tags.
 * Decoders add the payload's tags after these with replace = false, so the
 * topic wins over the payload. Returns IOCD_OK, IOCD_EINVAL (rejected as
 * too_many) or IOCD_ENOMEM. */
int ingest__point_new(struct decode_ctx *ctx, struct point_batch *pb,
                      const char *meas, size_t len, struct point **out);

/* Writes s[0..len) into dst as a quoted string for a message: `"` and `\`
 * escaped, control characters and invalid UTF-8 as \xNN, long text cut
 * with "...". Returns dst. */
const char *ingest__quote(char *dst, size_t n, const char *s, size_t len);
#define INGEST_QUOTE_SIZE 96

/* Parses an integer literal (optional sign, decimal digits only) with
 * strtoll. Returns IOCD_OK, IOCD_ERANGE outside int64, IOCD_EPARSE. */
int ingest__parse_i64(const char *s, size_t n, int64_t *out);

/* JSON helpers shared by the json and senml decoders (decode_json.c).
 * ingest__json_parse pre-scans the payload (depth limit, number tokens),
 * parses it with cJSON and rejects trailing text. On success *root is
 * owned by the caller (cJSON_Delete) and *nnums tokens are in
 * ctx->scratch->nums. */
struct cJSON;
int ingest__json_parse(struct decode_ctx *ctx, struct cJSON **root,
                       size_t *nnums);
/* The number of number items in item's subtree: the tokens a walk must
 * skip when it skips the item. */
size_t ingest__json_count_numbers(const struct cJSON *item);
/* Names a cJSON item's type for messages: "string", "number", ... */
const char *ingest__json_type_name(const struct cJSON *item);

/* ---- timestamps (timestamp.c) ----------------------------------------- */

/* time_parse_rfc3339 (core/timefmt.h) parses RFC 3339 strings. */

/* Converts an epoch number given as decimal text (a JSON number token) in
 * unit (TIME_S, TIME_MS, TIME_US or TIME_NS) to nanoseconds, exactly.
 * Fractions are allowed for s and ms and rounded to the nearest ns.
 * Returns IOCD_OK, IOCD_EPARSE (not a number), IOCD_ETYPE (a fraction in
 * us or ns) or IOCD_ERANGE. */
int ingest__time_epoch_text(const char *s, size_t n, enum time_unit unit,
                            int64_t *out_ns);

/* The same for an integer. Returns IOCD_OK or IOCD_ERANGE. */
int ingest__time_epoch_int(int64_t v, enum time_unit unit, int64_t *out_ns);

/* The unit of epoch numbers for a subscription: TIME_S..TIME_NS, or
 * TIME_RFC3339 when only RFC 3339 strings are accepted. */
enum time_unit ingest__number_unit(const struct config_subscription *sub);

/* Formats ns as RFC 3339 in UTC ("2020-09-30T10:00:00Z", with a fraction
 * when there is one). */
void ingest__time_format(int64_t ns, char *out, size_t n);

/* Checks ts against [now - max_past, now + max_future]. Returns IOCD_OK or
 * IOCD_EINVAL after ingest__reject (time_future or time_past). */
int ingest__time_check(struct ingest_result *res, int64_t ts, int64_t now,
                       const struct ingest_limits *lim);

/* ---- field types and series (schema.c) --------------------------------- */

/* Open addressing over 64-bit hashes (0 marks an empty slot). A slot is
 * live only when its gen equals the table's, so a table is emptied in O(1)
 * by bumping gen. */
struct hslot {
  uint64_t key;
  uint32_t gen;
  uint32_t val;
};

struct htab {
  struct hslot *slots;
  size_t cap; /* a power of two, or 0 */
  size_t n;
  uint32_t gen;
};

struct schema {
  struct htab series;     /* known series */
  struct htab types;      /* learned type per (measurement, field) */
  struct htab new_series; /* first seen in the message being checked */
  struct htab new_types;
};

void ingest__schema_init(struct schema *s);
void ingest__schema_cleanup(struct schema *s);

/* The type declared for (meas, field) in sub->types, or FIELD_NONE. */
enum field_type ingest__declared_type(const struct config_subscription *sub,
                                      const char *meas, size_t mlen,
                                      const char *field, size_t flen);

/* Checks every field of pb against the declared and learned types,
 * coercing in place where allowed, then the series against the limit.
 * Nothing is registered: the new types and series wait for
 * ingest__schema_commit. Returns IOCD_OK, IOCD_EINVAL after ingest__reject
 * (type_conflict or cardinality) or IOCD_ENOMEM. */
int ingest__schema_check(struct schema *s,
                         const struct config_subscription *sub,
                         const struct ingest_limits *lim,
                         struct point_batch *pb, struct ingest_result *res);

/* Registers what the last successful ingest__schema_check found new. Room
 * was reserved by the check, so this cannot fail. */
void ingest__schema_commit(struct schema *s);

size_t ingest__schema_series(const struct schema *s);

/* ---- feed quality per district (feed.c) -------------------------------- */

/* One system of a district: its series are made at its first accepted
 * message. seen_ns and silent_total_ns start from the series' values, so that a
 * silence that spans a reload (a new struct feed) is still counted. */
struct feed_system {
  struct metric *last;     /* iocd_district_last_message_seconds */
  struct metric *silences; /* iocd_district_silent_periods_total */
  struct metric *silent_s; /* iocd_district_silent_seconds_total */
  int64_t seen_ns;         /* arrival of the last accepted message; 0: none */
  int64_t silent_total_ns; /* the silences summed; silent_s in seconds */
};

/* One district's counters (docs/ingest.md, "Feed quality per district"):
 * rejects and the series of a system are made at their first use. */
struct feed_district {
  const char *name; /* sources.districts[i], or "other" */
  struct metric *messages, *accepted, *late, *future;
  struct metric *rejects[INGEST_NREASONS];
  struct feed_system *sys; /* nsystems + 1, by system; the last is "other" */
};

/* The districts of sources.districts and one "other" for the rest, so
 * that the series stay bounded whatever topics say. Without
 * sources.districts nothing is counted. */
struct feed {
  struct stats *stats;
  const char *district_tag, *system_tag; /* borrowed from the config */
  char **districts;                      /* borrowed: sources.districts */
  char **systems;                        /* borrowed: sources.systems */
  size_t nsystems;
  struct feed_district *d; /* ndistricts + 1; the last is "other" */
  size_t ndistricts;
  int64_t late_ns, future_ns, silent_after_ns;
};

/* Builds f (caller storage) for cfg, borrowed until the next init, and
 * registers the per-district counters in stats. Returns IOCD_OK or
 * IOCD_ENOMEM (f then needs no cleanup). */
int ingest__feed_init(struct feed *f, const struct config *cfg,
                      struct stats *stats);
void ingest__feed_cleanup(struct feed *f);

/* Counts one message of subscription sub whose topic gave caps: accepted
 * when res->reason is INGEST_OK (its points in pb, which may be NULL for a
 * reject), rejected otherwise. A message without a district (no capture,
 * static tag or, when accepted, point tag named sources.district_tag) is
 * not counted. */
void ingest__feed_count(struct feed *f, const struct config_subscription *sub,
                        const struct capture *caps, size_t ncaps,
                        const struct point_batch *pb,
                        const struct ingest_result *res, int64_t now_ns);

#endif
