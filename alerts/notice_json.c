/*
 * A notice as one JSON object: the form the outbox keeps on disk
 * (<data_dir>/outbox/<id>.json) and the API lists. Reading it back gives
 * the same notice, byte for byte:
 *
 *   - ids and fingerprints are 16 lowercase hex digits, and nanosecond
 *     times are strings of decimal digits: JSON numbers are doubles for
 *     most readers (cJSON included) and would lose the last digits;
 *   - doubles are written with the fewest digits that read back to the
 *     same bits; NaN and the infinities, which JSON has no numbers for, as
 *     the strings "NaN", "+Inf" and "-Inf";
 *   - strings are copied as they are (UTF-8, with JSON escapes only where
 *     JSON needs them);
 *   - labels and annotations are objects, names in sorted order.
 *
 * Optional members (text, reason, ack, value, threshold) are left out when
 * absent. The reader checks every member and says which one is wrong.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/notice.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"

/* A notice on disk is at most this deep (object, alerts, alert, labels). */
#define PATH_MAX_LEN 96

/* ---- writing ---- */

static cJSON *hex64(uint64_t v) {
  char s[17];
  snprintf(s, sizeof s, "%016" PRIx64, v);
  return cJSON_CreateString(s);
}

static cJSON *dec64(int64_t v) {
  char s[24];
  snprintf(s, sizeof s, "%" PRId64, v);
  return cJSON_CreateString(s);
}

/* The shortest of %.15g, %.16g and %.17g that reads back to v. */
static cJSON *num(double v) {
  if (isnan(v)) {
    return cJSON_CreateString("NaN");
  }
  if (isinf(v)) {
    return cJSON_CreateString(v > 0 ? "+Inf" : "-Inf");
  }
  char s[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(s, sizeof s, "%.*g", prec, v);
    if (strtod(s, NULL) == v) {
      break;
    }
  }
  return cJSON_CreateRaw(s);
}

static bool add(cJSON *obj, const char *name, cJSON *item) {
  if (!item) {
    return false;
  }
  cJSON_AddItemToObject(obj, name, item);
  return true;
}

static bool add_str_opt(cJSON *obj, const char *name, const char *s) {
  return !s || add(obj, name, cJSON_CreateString(s));
}

static cJSON *labels(const struct notice_labels *ls) {
  cJSON *o = cJSON_CreateObject();
  for (size_t i = 0; o && i < ls->n; i++) {
    if (!add(o, ls->v[i].name, cJSON_CreateString(ls->v[i].value))) {
      cJSON_Delete(o);
      return NULL;
    }
  }
  return o;
}

static cJSON *alert(const struct notice_alert *a) {
  cJSON *o = cJSON_CreateObject();
  if (!o) {
    return NULL;
  }
  bool ok =
      add(o, "fingerprint", hex64(a->fingerprint)) &&
      add(o, "status", cJSON_CreateString(notice_status_name(a->status))) &&
      add(o, "labels", labels(&a->labels)) &&
      add(o, "annotations", labels(&a->annotations)) &&
      add(o, "starts_ns", dec64(a->starts_ns)) &&
      add(o, "ends_ns", dec64(a->ends_ns)) &&
      (!a->has_value || add(o, "value", num(a->value))) &&
      (!a->has_threshold || add(o, "threshold", num(a->threshold))) &&
      add_str_opt(o, "reason", a->reason) &&
      add_str_opt(o, "acked_by", a->acked_by) &&
      ((!a->acked_by && a->acked_ns == 0) ||
       add(o, "acked_ns", dec64(a->acked_ns))) &&
      add_str_opt(o, "ack_comment", a->ack_comment);
  if (!ok) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

int notice_to_json(const struct notice *n, struct buf *out) {
  cJSON *o = cJSON_CreateObject();
  cJSON *arr = cJSON_CreateArray();
  bool ok = o && arr;
  for (size_t i = 0; ok && i < n->nalerts; i++) {
    cJSON *a = alert(&n->alerts[i]);
    ok = a != NULL;
    if (ok) {
      cJSON_AddItemToArray(arr, a);
    }
  }
  if (ok) {
    ok = add(o, "id", hex64(n->id)) &&
         add_str_opt(o, "receiver", n->receiver) &&
         add(o, "kind", cJSON_CreateString(notice_kind_name(n->kind))) &&
         add(o, "tier", cJSON_CreateNumber(n->tier)) &&
         add_str_opt(o, "group_key", n->group_key) &&
         add(o, "group_labels", labels(&n->group_labels)) &&
         add(o, "created_ns", dec64(n->created_ns)) &&
         add(o, "attempts", cJSON_CreateNumber(n->attempts)) &&
         add_str_opt(o, "text", n->text);
  }
  if (ok) {
    cJSON_AddItemToObject(o, "alerts", arr);
    arr = NULL;
  }
  char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  cJSON_Delete(arr);
  if (!text) {
    return IOCD_ENOMEM;
  }
  int rc = buf_puts(out, text);
  cJSON_free(text);
  return rc;
}

/* ---- reading ---- */

/* Where the reader is, for its error messages: "alerts[2].labels". */
struct path {
  char s[PATH_MAX_LEN];
};

static int bad(struct iocd_err *err, const struct path *at, const char *name,
               const char *what) {
  return iocd_err_set(err, IOCD_EPARSE, "notice: %s%s%s: %s", at->s,
                      at->s[0] && name[0] ? "." : "", name, what);
}

static const cJSON *member(const cJSON *o, const char *name) {
  return cJSON_GetObjectItemCaseSensitive(o, name);
}

static int get_hex64(const cJSON *o, const char *name, const struct path *at,
                     uint64_t *out, struct iocd_err *err) {
  const cJSON *v = member(o, name);
  if (!cJSON_IsString(v)) {
    return bad(err, at, name, "expected a string of 16 hex digits");
  }
  const char *s = v->valuestring;
  uint64_t x = 0;
  size_t i = 0;
  for (; s[i]; i++) {
    char c = s[i];
    unsigned d;
    if (c >= '0' && c <= '9') {
      d = (unsigned)(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = (unsigned)(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      d = (unsigned)(c - 'A' + 10);
    } else {
      break;
    }
    x = x << 4 | d;
  }
  if (i != 16 || s[i] != '\0') {
    return bad(err, at, name, "expected a string of 16 hex digits");
  }
  *out = x;
  return IOCD_OK;
}

/* Nanoseconds: a string of decimal digits (what the writer writes), or a
 * JSON number that is an integer a double holds exactly. */
static int get_i64(const cJSON *o, const char *name, const struct path *at,
                   bool required, int64_t *out, struct iocd_err *err) {
  const cJSON *v = member(o, name);
  *out = 0;
  if (!v && !required) {
    return IOCD_OK;
  }
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (d != trunc(d) || fabs(d) > 9007199254740992.0) {
      return bad(err, at, name, "expected an integer");
    }
    *out = (int64_t)d;
    return IOCD_OK;
  }
  if (!cJSON_IsString(v) || !v->valuestring[0]) {
    return bad(err, at, name, "expected an integer (a string of digits)");
  }
  const char *s = v->valuestring;
  errno = 0;
  char *end;
  long long x = strtoll(s, &end, 10);
  if (*end != '\0' || errno == ERANGE || s[0] == ' ' || s[0] == '+') {
    return bad(err, at, name, "expected an integer (a string of digits)");
  }
  *out = (int64_t)x;
  return IOCD_OK;
}

static int get_int(const cJSON *o, const char *name, const struct path *at,
                   int lo, int hi, int *out, struct iocd_err *err) {
  const cJSON *v = member(o, name);
  *out = 0;
  if (!v) {
    return IOCD_OK;
  }
  if (!cJSON_IsNumber(v) || v->valuedouble != trunc(v->valuedouble) ||
      v->valuedouble < lo || v->valuedouble > hi) {
    char what[64];
    snprintf(what, sizeof what, "expected an integer from %d to %d", lo, hi);
    return bad(err, at, name, what);
  }
  *out = (int)v->valuedouble;
  return IOCD_OK;
}

static int get_double(const cJSON *o, const char *name, const struct path *at,
                      bool *has, double *out, struct iocd_err *err) {
  const cJSON *v = member(o, name);
  *has = false;
  *out = 0;
  if (!v || cJSON_IsNull(v)) {
    return IOCD_OK;
  }
  if (cJSON_IsNumber(v)) {
    *out = v->valuedouble;
  } else if (cJSON_IsString(v) && strcmp(v->valuestring, "NaN") == 0) {
    *out = (double)NAN;
  } else if (cJSON_IsString(v) && strcmp(v->valuestring, "+Inf") == 0) {
    *out = (double)INFINITY;
  } else if (cJSON_IsString(v) && strcmp(v->valuestring, "-Inf") == 0) {
    *out = -(double)INFINITY;
  } else {
    return bad(err, at, name,
               "expected a number, \"NaN\", \"+Inf\" or \"-Inf\"");
  }
  *has = true;
  return IOCD_OK;
}

/* An optional string: absent or null gives NULL. */
static int get_str(const cJSON *o, const char *name, const struct path *at,
                   bool required, char **out, struct iocd_err *err) {
  const cJSON *v = member(o, name);
  *out = NULL;
  if ((!v || cJSON_IsNull(v)) && !required) {
    return IOCD_OK;
  }
  if (!cJSON_IsString(v)) {
    return bad(err, at, name, "expected a string");
  }
  *out = mem_strdup(v->valuestring);
  if (!*out) {
    return iocd_err_set(err, IOCD_ENOMEM, "notice: out of memory");
  }
  return IOCD_OK;
}

static int get_labels(const cJSON *o, const char *name, const struct path *at,
                      struct notice_labels *out, struct iocd_err *err) {
  const cJSON *v = member(o, name);
  if (!v || cJSON_IsNull(v)) {
    return IOCD_OK;
  }
  if (!cJSON_IsObject(v)) {
    return bad(err, at, name, "expected an object of strings");
  }
  /* The path is short ("alerts[12].annotations"): a longer one would only
   * be cut in the message. */
  struct path sub;
  if (snprintf(sub.s, sizeof sub.s, "%s%s%s", at->s, at->s[0] ? "." : "",
               name) < 0) {
    sub.s[0] = '\0';
  }
  for (const cJSON *it = v->child; it; it = it->next) {
    if (!cJSON_IsString(it)) {
      return bad(err, &sub, it->string, "expected a string");
    }
    if (notice_label_get(out, it->string)) {
      return bad(err, &sub, it->string, "given twice");
    }
    if (notice_labels_set(out, it->string, it->valuestring) != IOCD_OK) {
      return iocd_err_set(err, IOCD_ENOMEM, "notice: out of memory");
    }
  }
  return IOCD_OK;
}

static int get_status(const cJSON *o, const struct path *at,
                      enum notice_status *out, struct iocd_err *err) {
  const cJSON *v = member(o, "status");
  static const enum notice_status all[] = {NOTICE_FIRING, NOTICE_RESOLVED};
  for (size_t i = 0; cJSON_IsString(v) && i < sizeof all / sizeof all[0]; i++) {
    if (strcmp(v->valuestring, notice_status_name(all[i])) == 0) {
      *out = all[i];
      return IOCD_OK;
    }
  }
  return bad(err, at, "status", "expected \"firing\" or \"resolved\"");
}

static int get_kind(const cJSON *o, enum notice_kind *out,
                    struct iocd_err *err) {
  const cJSON *v = member(o, "kind");
  static const enum notice_kind all[] = {
      NOTICE_ALERTS, NOTICE_ESCALATION, NOTICE_FLAPPING,
      NOTICE_STORM,  NOTICE_DIGEST,     NOTICE_DEAD_LETTER,
  };
  for (size_t i = 0; cJSON_IsString(v) && i < sizeof all / sizeof all[0]; i++) {
    if (strcmp(v->valuestring, notice_kind_name(all[i])) == 0) {
      *out = all[i];
      return IOCD_OK;
    }
  }
  return bad(err, &(struct path){{0}}, "kind",
             "expected \"alerts\", \"escalation\", \"flapping\", \"storm\", "
             "\"digest\" or \"dead_letter\"");
}

static int read_alert(const cJSON *o, const struct path *at,
                      struct notice_alert *a, struct iocd_err *err) {
  if (!cJSON_IsObject(o)) {
    return bad(err, at, "", "expected an object");
  }
  int rc = get_hex64(o, "fingerprint", at, &a->fingerprint, err);
  if (!rc) {
    rc = get_status(o, at, &a->status, err);
  }
  if (!rc) {
    rc = get_labels(o, "labels", at, &a->labels, err);
  }
  if (!rc) {
    rc = get_labels(o, "annotations", at, &a->annotations, err);
  }
  if (!rc) {
    rc = get_i64(o, "starts_ns", at, true, &a->starts_ns, err);
  }
  if (!rc) {
    rc = get_i64(o, "ends_ns", at, false, &a->ends_ns, err);
  }
  if (!rc) {
    rc = get_double(o, "value", at, &a->has_value, &a->value, err);
  }
  if (!rc) {
    rc = get_double(o, "threshold", at, &a->has_threshold, &a->threshold, err);
  }
  if (!rc) {
    rc = get_str(o, "reason", at, false, &a->reason, err);
  }
  if (!rc) {
    rc = get_str(o, "acked_by", at, false, &a->acked_by, err);
  }
  if (!rc) {
    rc = get_i64(o, "acked_ns", at, false, &a->acked_ns, err);
  }
  if (!rc) {
    rc = get_str(o, "ack_comment", at, false, &a->ack_comment, err);
  }
  return rc;
}

static int read_notice(const cJSON *o, struct notice *n, struct iocd_err *err) {
  const struct path top = {{0}};
  if (!cJSON_IsObject(o)) {
    return iocd_err_set(err, IOCD_EPARSE, "notice: expected a JSON object");
  }
  int rc = get_hex64(o, "id", &top, &n->id, err);
  if (!rc) {
    rc = get_str(o, "receiver", &top, false, &n->receiver, err);
  }
  if (!rc) {
    rc = get_kind(o, &n->kind, err);
  }
  if (!rc) {
    rc = get_int(o, "tier", &top, 0, 1000, &n->tier, err);
  }
  if (!rc) {
    rc = get_str(o, "group_key", &top, false, &n->group_key, err);
  }
  if (!rc) {
    rc = get_labels(o, "group_labels", &top, &n->group_labels, err);
  }
  if (!rc) {
    rc = get_i64(o, "created_ns", &top, false, &n->created_ns, err);
  }
  if (!rc) {
    rc = get_int(o, "attempts", &top, 0, 1000000, &n->attempts, err);
  }
  if (!rc) {
    rc = get_str(o, "text", &top, false, &n->text, err);
  }
  if (rc) {
    return rc;
  }
  const cJSON *arr = member(o, "alerts");
  if (!arr || cJSON_IsNull(arr)) {
    return IOCD_OK;
  }
  if (!cJSON_IsArray(arr)) {
    return bad(err, &top, "alerts", "expected an array");
  }
  size_t count = (size_t)cJSON_GetArraySize(arr);
  if (count == 0) {
    return IOCD_OK;
  }
  n->alerts = calloc(count, sizeof *n->alerts);
  if (!n->alerts) {
    return iocd_err_set(err, IOCD_ENOMEM, "notice: out of memory");
  }
  size_t i = 0;
  for (const cJSON *it = arr->child; it; it = it->next, i++) {
    struct path at;
    snprintf(at.s, sizeof at.s, "alerts[%zu]", i);
    n->nalerts = i + 1;
    rc = read_alert(it, &at, &n->alerts[i], err);
    if (rc) {
      return rc;
    }
  }
  return IOCD_OK;
}

int notice_from_json(const char *json, size_t len, struct notice **out,
                     struct iocd_err *err) {
  *out = NULL;
  cJSON *o = cJSON_ParseWithLength(json, len);
  if (!o) {
    const char *at = cJSON_GetErrorPtr();
    size_t off = at && at >= json && at <= json + len ? (size_t)(at - json) : 0;
    return iocd_err_set(err, IOCD_EPARSE, "notice: not JSON (near byte %zu)",
                        off);
  }
  struct notice *n = notice_new();
  if (!n) {
    cJSON_Delete(o);
    return iocd_err_set(err, IOCD_ENOMEM, "notice: out of memory");
  }
  int rc = read_notice(o, n, err);
  cJSON_Delete(o);
  if (rc) {
    notice_free(n);
    return rc;
  }
  *out = n;
  return IOCD_OK;
}
