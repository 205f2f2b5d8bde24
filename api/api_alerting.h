/*
 * The operators' endpoints of alert delivery (docs/api.md):
 *
 *   POST   /api/v1/alerts/{id}/ack    {"by": "...", "comment": "..."}
 *   DELETE /api/v1/alerts/{id}/ack    {"by": "..."}
 *   GET    /api/v1/acks               current acks and the audit trail
 *   GET    /api/v1/silences
 *   POST   /api/v1/silences           {"matchers": ["district=Krông Búk"],
 *                                      "starts_at": RFC 3339 (default now),
 *                                      "ends_at": RFC 3339 | "duration": "2h",
 *                                      "created_by": "...", "comment": "..."}
 *   DELETE /api/v1/silences/{id}
 *   GET    /api/v1/notifications      the outbox: pending and dead letters
 *
 * Errors are JSON {"error": "..."} saying what was wrong: 400 for a body
 * that is not what the endpoint takes, 404 for an unknown alert or
 * silence, 405 for a method the path does not take, 503 when
 * notifications are off.
 */
#ifndef IOCD_API_API_ALERTING_H
#define IOCD_API_API_ALERTING_H

#include "alerts/notify.h"
#include "api/api.h"
#include "core/buf.h"

/* Answers req when its path is one of the above (api_handle_fn's
 * contract): IOCD_OK with rep and the body in out, IOCD_ENOTFOUND for
 * another path. n may be NULL (notifications off). */
int api_alerting_handle(struct notify *n, const struct api_request *req,
                        struct api_reply *rep, struct buf *out);

#endif
