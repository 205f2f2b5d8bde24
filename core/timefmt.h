/*
 * RFC 3339 timestamps, read and written, as int64 nanoseconds since the
 * Unix epoch, and the civil calendar under them. Pure functions.
 */
#ifndef IOCD_CORE_TIMEFMT_H
#define IOCD_CORE_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Parses an RFC 3339 timestamp with a mandatory offset (Z or +hh:mm; "T",
 * "t" or a space between date and time), fractional seconds up to
 * nanoseconds. Returns IOCD_OK, IOCD_EPARSE or IOCD_ERANGE (outside what
 * int64 nanoseconds hold); *why (may be NULL) names the problem on
 * failure. */
int time_parse_rfc3339(const char *s, size_t n, int64_t *out_ns,
                       const char **why);

/* Writes ns as RFC 3339 in local time offset_s east of UTC ("Z" when 0,
 * else "+07:00"), with frac_digits fractional digits: 0 none, 1 to 9 that
 * many, -1 as many as needed (none for a whole second). At most 40 bytes
 * with the NUL. */
void time_format_rfc3339(int64_t ns, int32_t offset_s, int frac_digits,
                         char *out, size_t n);

/* Days from 1970-01-01 to y-m-d, and back (proleptic Gregorian). */
int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d);
void time_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

#endif
