/*
 * The operators' endpoints of alert delivery: request bodies read with
 * cJSON and checked member by member, answers rendered by alerts/notify.c.
 */
#include "api/api_alerting.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/timefmt.h"

#define SILENCE_MATCHERS_MAX 32

static int answer_error(unsigned code, const char *msg, struct api_reply *rep,
                        struct buf *out) {
  cJSON *doc = cJSON_CreateObject();
  char *text = NULL;
  if (doc && cJSON_AddStringToObject(doc, "error", msg)) {
    text = cJSON_PrintUnformatted(doc);
  }
  cJSON_Delete(doc);
  if (!text) {
    return IOCD_ENOMEM;
  }
  rep->status = code;
  int rc = buf_puts(out, text);
  if (!rc) {
    rc = buf_putc(out, '\n');
  }
  cJSON_free(text);
  return rc;
}

static int method_not_allowed(const char *allowed, struct api_reply *rep,
                              struct buf *out) {
  rep->allow = allowed;
  char msg[96];
  snprintf(msg, sizeof msg, "method not allowed here (allowed: %s)", allowed);
  return answer_error(405, msg, rep, out);
}

/* The body as a JSON object; NULL with the 400 answer written. */
static cJSON *body_object(const struct api_request *req, struct api_reply *rep,
                          struct buf *out, int *rc) {
  if (!req->body || req->body_len == 0) {
    *rc = answer_error(400, "a JSON object is expected as the request body",
                       rep, out);
    return NULL;
  }
  const char *end = NULL;
  cJSON *doc = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, 0);
  if (!doc || !cJSON_IsObject(doc)) {
    char msg[128];
    if (!doc) {
      size_t at = end && end >= req->body ? (size_t)(end - req->body) : 0;
      snprintf(msg, sizeof msg,
               "the request body is not JSON (near byte %zu of %zu)", at + 1,
               req->body_len);
    } else {
      snprintf(msg, sizeof msg, "the request body must be a JSON object");
    }
    cJSON_Delete(doc);
    *rc = answer_error(400, msg, rep, out);
    return NULL;
  }
  return doc;
}

/* Member name of o as a string: *out NULL when absent or null. Returns
 * false (and answers 400) when it is there with another type. */
static bool member_string(const cJSON *o, const char *name, const char **out,
                          struct api_reply *rep, struct buf *b, int *rc) {
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);
  *out = NULL;
  if (!m || cJSON_IsNull(m)) {
    return true;
  }
  if (!cJSON_IsString(m)) {
    char msg[96];
    snprintf(msg, sizeof msg, "\"%s\": a string is expected", name);
    *rc = answer_error(400, msg, rep, b);
    return false;
  }
  *out = m->valuestring;
  return true;
}

static bool member_time(const cJSON *o, const char *name, int64_t *out,
                        struct api_reply *rep, struct buf *b, int *rc) {
  const char *s;
  *out = 0;
  if (!member_string(o, name, &s, rep, b, rc)) {
    return false;
  }
  if (!s) {
    return true;
  }
  const char *why = NULL;
  if (time_parse_rfc3339(s, strlen(s), out, &why) != IOCD_OK) {
    char msg[160];
    snprintf(msg, sizeof msg,
             "\"%s\": %s (RFC 3339, e.g. 2026-12-08T17:00:00+07:00)", name,
             why);
    *rc = answer_error(400, msg, rep, b);
    return false;
  }
  return true;
}

static int answer_err(const struct iocd_err *err, int rc, struct api_reply *rep,
                      struct buf *out) {
  unsigned code = rc == IOCD_ENOTFOUND ? 404
                  : rc == IOCD_ENOMEM  ? 500
                  : rc == IOCD_ELIMIT  ? 429
                                       : 400;
  return answer_error(code, err->msg[0] ? err->msg : iocd_strerror(rc), rep,
                      out);
}

/* Who acts when the body does not say: the request's token's name; NULL
 * without a token (then "by" stays required). */
static const char *token_name(const struct api_request *req) {
  return req->principal && strcmp(req->principal, "anonymous") != 0
             ? req->principal
             : NULL;
}

/* Who made the request, for the audit whatever the body says: the token's
 * name, or "anonymous". */
static const char *principal_of(const struct api_request *req) {
  return req->principal ? req->principal : "anonymous";
}

static int ack(struct notify *n, const struct api_request *req, const char *id,
               bool take_back, struct api_reply *rep, struct buf *out) {
  int rc = IOCD_OK;
  cJSON *doc = body_object(req, rep, out, &rc);
  if (!doc) {
    return rc;
  }
  const char *by = NULL, *comment = NULL;
  if (member_string(doc, "by", &by, rep, out, &rc) &&
      member_string(doc, "comment", &comment, rep, out, &rc)) {
    by = by ? by : token_name(req);
    struct iocd_err err = {{0}};
    const char *principal = principal_of(req);
    int r = take_back ? notify_unack(n, id, by, principal, &err)
                      : notify_ack(n, id, by, principal, comment, &err);
    if (r) {
      rc = answer_err(&err, r, rep, out);
    } else {
      cJSON *ans = cJSON_CreateObject();
      char *text = NULL;
      if (ans && cJSON_AddStringToObject(ans, "id", id) &&
          cJSON_AddBoolToObject(ans, "acknowledged", !take_back) &&
          cJSON_AddStringToObject(ans, "by", by) &&
          cJSON_AddStringToObject(ans, "principal", principal)) {
        text = cJSON_PrintUnformatted(ans);
      }
      cJSON_Delete(ans);
      rep->status = 200;
      rc = text ? buf_puts(out, text) : IOCD_ENOMEM;
      if (!rc) {
        rc = buf_putc(out, '\n');
      }
      cJSON_free(text);
    }
  }
  cJSON_Delete(doc);
  return rc;
}

static int add_silence(struct notify *n, const struct api_request *req,
                       struct api_reply *rep, struct buf *out) {
  int rc = IOCD_OK;
  cJSON *doc = body_object(req, rep, out, &rc);
  if (!doc) {
    return rc;
  }
  const char *ms[SILENCE_MATCHERS_MAX];
  size_t nms = 0;
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "matchers");
  const char *created_by = NULL, *comment = NULL, *duration = NULL;
  int64_t starts = 0, ends = 0;
  bool ok = true;
  if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0 ||
      cJSON_GetArraySize(arr) > SILENCE_MATCHERS_MAX) {
    rc = answer_error(400,
                      "\"matchers\": an array of 1 to 32 strings such as "
                      "\"district=Krông Búk\" or \"alertname=~online_.*\"",
                      rep, out);
    ok = false;
  }
  for (const cJSON *m = ok ? arr->child : NULL; m; m = m->next) {
    if (!cJSON_IsString(m)) {
      char msg[64];
      snprintf(msg, sizeof msg, "\"matchers\"[%zu]: a string is expected", nms);
      rc = answer_error(400, msg, rep, out);
      ok = false;
      break;
    }
    ms[nms++] = m->valuestring;
  }
  ok = ok && member_string(doc, "created_by", &created_by, rep, out, &rc) &&
       member_string(doc, "comment", &comment, rep, out, &rc) &&
       member_string(doc, "duration", &duration, rep, out, &rc) &&
       member_time(doc, "starts_at", &starts, rep, out, &rc) &&
       member_time(doc, "ends_at", &ends, rep, out, &rc);
  if (ok && (ends != 0) == (duration != NULL)) {
    rc = answer_error(400,
                      "give either \"ends_at\" (RFC 3339) or \"duration\" "
                      "(e.g. \"2h\")",
                      rep, out);
    ok = false;
  }
  if (ok && duration) {
    int64_t ms_ = 0;
    if (config_parse_duration(duration, &ms_) != IOCD_OK || ms_ <= 0) {
      rc = answer_error(400,
                        "\"duration\": a number and a unit, e.g. \"90m\", "
                        "\"2h\", \"1d\"",
                        rep, out);
      ok = false;
    } else {
      int64_t from = starts ? starts : clock_realtime_ns();
      ends = from + ms_ * NS_PER_MS;
    }
  }
  if (ok) {
    created_by = created_by ? created_by : token_name(req);
    char id[17] = "";
    struct iocd_err err = {{0}};
    int r = notify_silence_add(n, ms, nms, starts, ends, created_by,
                               principal_of(req), comment, id, &err);
    if (r) {
      rc = answer_err(&err, r, rep, out);
    } else {
      rep->status = 201;
      rc = buf_printf(out, "{\"id\":\"%s\"}\n", id);
    }
  }
  cJSON_Delete(doc);
  return rc;
}

/* "/api/v1/alerts/{id}/ack" -> id (16 characters at most are copied). */
static bool ack_path(const char *path, char id[17]) {
  static const char pre[] = "/api/v1/alerts/";
  static const char post[] = "/ack";
  size_t np = sizeof pre - 1, nq = sizeof post - 1, n = strlen(path);
  if (n <= np + nq || strncmp(path, pre, np) != 0 ||
      strcmp(path + n - nq, post) != 0 || n - np - nq > 16) {
    return false;
  }
  memcpy(id, path + np, n - np - nq);
  id[n - np - nq] = '\0';
  return strchr(id, '/') == NULL;
}

int api_alerting_handle(struct notify *n, const struct api_request *req,
                        struct api_reply *rep, struct buf *out) {
  const char *p = req->path;
  const char *m = req->method;
  bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
  bool post = strcmp(m, "POST") == 0;
  bool del = strcmp(m, "DELETE") == 0;
  char id[17];
  bool is_ack = ack_path(p, id);
  bool is_silences = strcmp(p, "/api/v1/silences") == 0;
  bool is_silence =
      strncmp(p, "/api/v1/silences/", 17) == 0 && p[17] && !strchr(p + 17, '/');
  bool is_acks = strcmp(p, "/api/v1/acks") == 0;
  bool is_outbox = strcmp(p, "/api/v1/notifications") == 0;
  if (!is_ack && !is_silences && !is_silence && !is_acks && !is_outbox) {
    return IOCD_ENOTFOUND;
  }
  if (!n) {
    return answer_error(503,
                        "notifications are off: add receivers and a route "
                        "under \"notifications\" (docs/alerts.md)",
                        rep, out);
  }
  if (is_ack) {
    return post || del ? ack(n, req, id, del, rep, out)
                       : method_not_allowed("POST, DELETE", rep, out);
  }
  if (is_silences) {
    if (get) {
      rep->status = 200;
      return notify_silences_json(n, out);
    }
    return post ? add_silence(n, req, rep, out)
                : method_not_allowed("GET, HEAD, POST", rep, out);
  }
  if (is_silence) {
    if (!del) {
      return method_not_allowed("DELETE", rep, out);
    }
    struct iocd_err err = {{0}};
    int r = notify_silence_delete(n, p + 17, principal_of(req), &err);
    if (r) {
      return answer_err(&err, r, rep, out);
    }
    rep->status = 200;
    return buf_printf(out, "{\"id\":\"%s\",\"state\":\"expired\"}\n", p + 17);
  }
  if (!get) {
    return method_not_allowed("GET, HEAD", rep, out);
  }
  rep->status = 200;
  return is_acks ? notify_acks_json(n, out) : notify_outbox_json(n, out);
}
