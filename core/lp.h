/*
 * InfluxDB line protocol, both ways: exact escaping and encoding of points
 * for the store, and a validating parser for the `line` payload format.
 *
 * Escaping (verified against InfluxDB 1.6, see docs/line-protocol.md):
 *   measurement:           `,` and space get a backslash;
 *   tag key, tag value,
 *   field key:             `,` `=` and space get a backslash; a backslash is
 *                          written as is;
 *   string field value:    wrapped in `"`; `\` and `"` get a backslash.
 * A tag value that ends in a backslash cannot be written to InfluxDB 1.x, and
 * an empty tag value is an error there: lp_append_point drops empty tags and
 * the ingest layer rejects a trailing backslash before encoding.
 */
#ifndef IOCD_CORE_LP_H
#define IOCD_CORE_LP_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/point.h"

int lp_escape_measurement(struct buf *out, const char *s, size_t n);
int lp_escape_key(struct buf *out, const char *s, size_t n); /* tag/field keys, tag values */
int lp_escape_string(struct buf *out, const char *s, size_t n); /* inside the quotes */

/* Appends one line (with '\n') for p: integers with the `i` suffix, floats in
 * the shortest form that reads back to the same double, booleans as
 * true/false, the timestamp in nanoseconds. Returns IOCD_OK, IOCD_EINVAL for a
 * point with no field or a non-finite float, or the buf_* error. On error out
 * is left as it was.
 * Also IOCD_EINVAL for names InfluxDB 1.6 cannot read back as written: an
 * empty measurement, tag key or field key; a newline in any name or tag
 * value, or one ending in a backslash; a measurement starting with '#', tab
 * or NUL; a backslash before `,` space `=` or `"` in a measurement or field
 * key (docs/line-protocol.md has the details). */
int lp_append_point(struct buf *out, const struct point_batch *pb,
                    const struct point *p);

/* The checks lp_append_point makes, with the reason in err ("measurement
 * \"#x\": starts with '#'", "field \"v\": NaN or infinity", ...), so that a
 * decoder can reject one point instead of the store failing its batch.
 * Returns IOCD_OK or IOCD_EINVAL; err may be NULL. */
int lp_check_point(const struct point_batch *pb, const struct point *p,
                   struct iocd_err *err);

/* Parses line protocol text (one or more lines, '\n' separated; blank lines
 * and lines starting with '#' skipped) into points of pb. Timestamps are read
 * in the given precision multiplier (1 for ns, 1000 for us, ...); a line
 * without a timestamp gets has_ts = false. On the first bad line returns
 * IOCD_EPARSE with err naming the line number, the column and the reason;
 * the points of earlier lines stay in pb.
 * A "\r\n" line ending is an error, as in InfluxDB. IOCD_ELIMIT when pb
 * reaches max_points, IOCD_EINVAL when ts_mult <= 0, IOCD_ENOMEM. */
int lp_parse(struct point_batch *pb, const char *text, size_t len,
             int64_t ts_mult, struct iocd_err *err);

#endif
