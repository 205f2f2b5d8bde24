/*
 * Silences: matchers and a time span during which matching alerts are not
 * notified as firing (their resolved notification still goes out when they
 * had been notified as firing: see dispatch.h). Each has an id of 16
 * lowercase hex digits.
 *
 * Silences come from the configuration ("notifications.silences": read
 * only, id derived from their content so that it is the same after a
 * restart or a reload) or from the API (id chosen by the caller, e.g.
 * random; expire and delete allowed). The API's silences are kept across
 * restarts in data_dir/silences.json: this module turns them into that
 * JSON text and back, the caller reads and writes the file.
 *
 * A silence is pending before starts, active in [starts, ends), expired
 * from ends; expired silences stay listed for a retention (5 days by
 * default) and are then collected.
 *
 * Pure: no I/O, no clock; time is ns since the Unix epoch.
 */
#ifndef IOCD_ALERTS_SILENCE_H
#define IOCD_ALERTS_SILENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alerts/match.h"
#include "alerts/notice.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"

/* How long an expired silence stays listed: 5 days. */
#define SILENCE_RETENTION_NS (INT64_C(5) * 86400 * INT64_C(1000000000))

/* At most this many silences in a set. */
#define SILENCE_MAX 10000

enum silence_state {
  SILENCE_PENDING = 0,
  SILENCE_ACTIVE,
  SILENCE_EXPIRED,
};

/* One silence; owned by its set, read-only for its users. */
struct silence {
  char id[17];
  struct config_matcher *matchers; /* as given */
  size_t nmatchers;
  struct match_set compiled;
  int64_t starts_ns;
  int64_t ends_ns;
  char *created_by; /* never NULL ("" when not given) */
  char *principal;  /* who added it through the API (the token's name,
                       "anonymous"); NULL for the configuration's and for
                       those read from a file written before it existed */
  char *expired_by; /* the principal that ended it early; NULL otherwise */
  char *comment;    /* never NULL */
  bool from_config;
  int64_t updated_ns; /* made, or expired early */
};

/* What a new silence says; every pointer borrowed for the call. */
struct silence_spec {
  const struct config_matcher *matchers;
  size_t nmatchers;
  int64_t starts_ns;
  int64_t ends_ns;
  const char *created_by;
  const char *principal; /* NULL: not known */
  const char *comment;
};

struct silence_set;

/* An empty set; NULL when memory runs out. Free with silence_set_free. */
struct silence_set *silence_set_new(void);

/* Frees s; NULL is allowed. */
void silence_set_free(struct silence_set *s);

/* Adds an API silence. id is the caller's choice (e.g. random); 0 derives
 * it from the content and now. The spec must have at least one matcher,
 * one of which does not match the empty string (a silence of everything is
 * refused), regexes that compile, ends after starts and after now. On
 * success writes the id's text to out_id (may be NULL) and returns IOCD_OK;
 * IOCD_EINVAL with err saying why; IOCD_ESTATE when the id is taken;
 * IOCD_ELIMIT past SILENCE_MAX; IOCD_ENOMEM. */
int silence_add(struct silence_set *s, const struct silence_spec *spec,
                uint64_t id, int64_t now_ns, char out_id[17],
                struct iocd_err *err);

/* Replaces the configuration's silences with the n in v (borrowed): a
 * starts of 0 means now_ns (an entry that ended before now_ns is kept,
 * expired); the id is derived from what is written, so the
 * same entry keeps its id; an entry repeated is kept once. The API's
 * silences stay. Returns IOCD_OK, or IOCD_EINVAL with err naming the entry
 * ("silences[2]: ...") and the set unchanged, or IOCD_ENOMEM. */
int silence_set_config(struct silence_set *s, const struct config_silence *v,
                       size_t n, int64_t now_ns, struct iocd_err *err);

/* Ends the API silence id (16 hex digits) at now: an active one ends now,
 * a pending one never starts. by is the principal that ends it (copied
 * into expired_by; may be NULL). IOCD_OK; IOCD_ENOTFOUND; IOCD_ESTATE when
 * it is from the configuration or already expired; IOCD_ENOMEM (the
 * silence unchanged). */
int silence_expire(struct silence_set *s, const char *id, const char *by,
                   int64_t now_ns);

/* Removes the API silence id altogether. IOCD_OK, IOCD_ENOTFOUND, or
 * IOCD_ESTATE for one from the configuration. */
int silence_delete(struct silence_set *s, const char *id);

/* Removes the silences that ended more than retention_ns before now
 * (retention_ns <= 0: SILENCE_RETENTION_NS). Returns how many. */
size_t silence_gc(struct silence_set *s, int64_t now_ns, int64_t retention_ns);

/* The first silence active at now whose matchers all match ls (borrowed);
 * NULL when none. The pointer is valid until s changes. */
const struct silence *silence_matching(const struct silence_set *s,
                                       const struct notice_labels *ls,
                                       int64_t now_ns);

/* The number of silences, silence i (in the order they were added), and
 * the silence with the given id (NULL when none). Valid until s changes. */
size_t silence_count(const struct silence_set *s);
const struct silence *silence_at(const struct silence_set *s, size_t i);
const struct silence *silence_get(const struct silence_set *s, const char *id);

/* The state of x at now, and its name: "pending", "active", "expired". */
enum silence_state silence_state_at(const struct silence *x, int64_t now_ns);
const char *silence_state_name(enum silence_state st);

/* Appends the API's silences as one JSON document to out:
 *   {"silences":[{"id":"0123456789abcdef","matchers":[{"name":"district",
 *     "op":"=","value":"Krông Búk"}],"starts_ms":...,"ends_ms":...,
 *     "created_by":"...","principal":"ops-duty","expired_by":null,
 *     "comment":"...","updated_ms":...}]}
 * Times are Unix milliseconds; principal and expired_by are null when not
 * known (and may be absent from an older file). Returns IOCD_OK, IOCD_ENOMEM or
 * IOCD_ETOOBIG. */
int silence_set_to_json(const struct silence_set *s, struct buf *out);

/* Adds the silences of a document silence_set_to_json wrote (json[0..len),
 * borrowed) as API silences; those whose id is already in s are skipped.
 * An entry that is not valid is skipped and counted in *skipped (may be
 * NULL) with err (may be NULL) describing the first one. Returns IOCD_OK;
 * IOCD_EPARSE with err set when the text is not such a document at all;
 * IOCD_ENOMEM. */
int silence_set_from_json(struct silence_set *s, const char *json, size_t len,
                          size_t *skipped, struct iocd_err *err);

#endif
