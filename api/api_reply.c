/*
 * The endpoint modules' JSON answers, printed by cJSON so that any text
 * (a rule name with a quote, a config path) stays valid JSON.
 */
#include "api/api_reply.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"

int api_reply_doc(struct api_reply *rep, struct buf *out, unsigned status,
                  cJSON *doc, bool nomem) {
  char *text = doc && !nomem ? cJSON_PrintUnformatted(doc) : NULL;
  cJSON_Delete(doc);
  if (!text) {
    return IOCD_ENOMEM;
  }
  rep->status = status;
  int rc = buf_puts(out, text);
  if (!rc) {
    rc = buf_putc(out, '\n');
  }
  cJSON_free(text);
  return rc;
}

int api_reply_error(struct api_reply *rep, struct buf *out, unsigned status,
                    const char *msg) {
  cJSON *doc = cJSON_CreateObject();
  bool ok = doc && cJSON_AddStringToObject(doc, "error", msg);
  return api_reply_doc(rep, out, status, doc, !ok);
}

int api_reply_not_allowed(struct api_reply *rep, struct buf *out,
                          const char *allowed) {
  char msg[96];
  snprintf(msg, sizeof msg, "method not allowed here (allowed: %s)", allowed);
  rep->allow = allowed;
  return api_reply_error(rep, out, 405, msg);
}

bool api_is_get(const struct api_request *req) {
  return strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}
