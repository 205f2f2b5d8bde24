/*
 * GET /api/v1/latest: the newest value of each series, for a wall display
 * or a script, from the latest-value table (store/latest.h).
 *
 *   GET /api/v1/latest?district=Krông%20Búk&system=igate&measurement=igate
 *
 * Each parameter is optional; together they are combined with AND.
 * district and system match the tags that sources.district_tag and
 * sources.system_tag name ("district" and "system" by default).
 */
#ifndef IOCD_API_API_LATEST_H
#define IOCD_API_API_LATEST_H

#include "api/api.h"
#include "config/config.h"
#include "core/buf.h"
#include "store/latest.h"

/* {"series": [{"measurement", "tags": {...}, "fields": {...}, "time"}],
 * "table": {"series", "max_series", "evicted"}}: the series of l that have
 * the tags of match[0..nmatch) (and measurement, when not NULL), ordered by
 * measurement then tags; time is RFC 3339 in UTC with as many fractional
 * digits as it needs. Appends to out; returns IOCD_OK or an error
 * (IOCD_ENOMEM, a buf_* error). */
int api_latest_json(const struct latest *l, const char *measurement,
                    const struct latest_match *match, size_t nmatch,
                    struct buf *out);

/* Answers GET/HEAD /api/v1/latest (405 for another method); l NULL is 503.
 * Returns as api_handle_fn: IOCD_ENOTFOUND for any other path. */
int api_latest_handle(const struct latest *l, const struct config *cfg,
                      const struct api_request *req, struct api_reply *rep,
                      struct buf *out);

#endif
