/*
 * The JSON answers the endpoint modules of api/ share (api_rules.c,
 * api_status.c, api_latest.c): a document printed from cJSON, an error
 * {"error": "..."}, and 405 with the methods a path takes.
 */
#ifndef IOCD_API_API_REPLY_H
#define IOCD_API_API_REPLY_H

#include <cjson/cJSON.h>

#include "api/api.h"
#include "core/buf.h"

/* Prints doc (freed here, NULL allowed: out of memory) with a newline into
 * out and sets rep's status. nomem true: doc is incomplete, only freed.
 * Returns IOCD_OK, IOCD_ENOMEM or a buf_* error. */
int api_reply_doc(struct api_reply *rep, struct buf *out, unsigned status,
                  cJSON *doc, bool nomem);

/* {"error": msg} with status. Returns IOCD_OK or an error as above. */
int api_reply_error(struct api_reply *rep, struct buf *out, unsigned status,
                    const char *msg);

/* 405 naming allowed (a static string, also sent as Allow). */
int api_reply_not_allowed(struct api_reply *rep, struct buf *out,
                          const char *allowed);

/* True for GET and HEAD. */
bool api_is_get(const struct api_request *req);

#endif
