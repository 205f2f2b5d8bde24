/*
 * RFC 3339 timestamps, read and written, and the proleptic Gregorian
 * calendar under them (H. Hinnant's days_from_civil and civil_from_days).
 * Pure: no clock, no time zone database; offsets are given in seconds.
 */
#include "core/timefmt.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil). */
int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

void time_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m) {
  static const unsigned dim[12] = {31, 28, 31, 30, 31, 30,
                                   31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly n digits at s[*i]. */
static bool digits(const char *s, size_t len, size_t *i, size_t n,
                   unsigned *out) {
  if (len - *i < n) {
    return false;
  }
  unsigned v = 0;
  for (size_t k = 0; k < n; k++) {
    char c = s[*i + k];
    if (c < '0' || c > '9') {
      return false;
    }
    v = v * 10 + (unsigned)(c - '0');
  }
  *i += n;
  *out = v;
  return true;
}

static bool expect(const char *s, size_t len, size_t *i, char c) {
  if (*i < len && s[*i] == c) {
    (*i)++;
    return true;
  }
  return false;
}

int time_parse_rfc3339(const char *s, size_t len, int64_t *out_ns,
                       const char **why) {
  size_t i = 0;
  unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  const char *dummy;
  if (!why) {
    why = &dummy;
  }
  *why = "not an RFC 3339 timestamp";
  if (!digits(s, len, &i, 4, &y) || !expect(s, len, &i, '-') ||
      !digits(s, len, &i, 2, &mo) || !expect(s, len, &i, '-') ||
      !digits(s, len, &i, 2, &d)) {
    return IOCD_EPARSE;
  }
  if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' ')) {
    return IOCD_EPARSE;
  }
  i++;
  if (!digits(s, len, &i, 2, &h) || !expect(s, len, &i, ':') ||
      !digits(s, len, &i, 2, &mi) || !expect(s, len, &i, ':') ||
      !digits(s, len, &i, 2, &sec)) {
    return IOCD_EPARSE;
  }
  int64_t frac = 0;
  if (expect(s, len, &i, '.')) {
    size_t nd = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
      if (++nd > 9) {
        *why = "more than 9 fractional digits";
        return IOCD_EPARSE;
      }
      frac = frac * 10 + (s[i] - '0');
      i++;
    }
    if (nd == 0) {
      return IOCD_EPARSE;
    }
    for (; nd < 9; nd++) {
      frac *= 10;
    }
  }
  int64_t offset_s = 0;
  if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
    i++;
  } else if (i < len && (s[i] == '+' || s[i] == '-')) {
    int sign = s[i] == '-' ? -1 : 1;
    unsigned oh, om;
    i++;
    if (!digits(s, len, &i, 2, &oh) || !expect(s, len, &i, ':') ||
        !digits(s, len, &i, 2, &om)) {
      return IOCD_EPARSE;
    }
    if (oh > 23 || om > 59) {
      *why = "offset out of range";
      return IOCD_EPARSE;
    }
    offset_s = sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
  } else {
    *why = i == len ? "no offset (Z or +hh:mm)" : "not an RFC 3339 timestamp";
    return IOCD_EPARSE;
  }
  if (i != len) {
    *why = "trailing text";
    return IOCD_EPARSE;
  }
  if (mo < 1 || mo > 12) {
    *why = "month out of range";
    return IOCD_EPARSE;
  }
  if (d < 1 || d > days_in_month(y, mo)) {
    *why = "day out of range";
    return IOCD_EPARSE;
  }
  if (h > 23 || mi > 59 || sec > 59) {
    *why = "time of day out of range";
    return IOCD_EPARSE;
  }
  int64_t secs = time_days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 +
                 (int64_t)mi * 60 + sec - offset_s;
  /* int64 nanoseconds span 1677-09-21 to 2262-04-11. */
  if (secs > INT64_MAX / NS_PER_SEC || secs < INT64_MIN / NS_PER_SEC ||
      (secs == INT64_MAX / NS_PER_SEC && frac > INT64_MAX % NS_PER_SEC)) {
    *why = "outside the years 1678 to 2261";
    return IOCD_ERANGE;
  }
  *out_ns = secs * NS_PER_SEC + frac;
  return IOCD_OK;
}

void time_format_rfc3339(int64_t ns, int32_t offset_s, int frac_digits,
                         char *out, size_t n) {
  int64_t secs = ns / NS_PER_SEC;
  int64_t frac = ns % NS_PER_SEC;
  if (frac < 0) {
    frac += NS_PER_SEC;
    secs--;
  }
  secs += offset_s;
  int64_t days = secs / 86400;
  int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    days--;
  }
  int64_t y;
  unsigned m, d;
  time_civil_from_days(days, &y, &m, &d);
  char fr[32] = "";
  if (frac_digits > 0) {
    int nd = frac_digits > 9 ? 9 : frac_digits;
    int64_t f = frac;
    for (int k = nd; k < 9; k++) {
      f /= 10;
    }
    snprintf(fr, sizeof fr, ".%0*" PRId64, nd, f);
  } else if (frac_digits < 0 && frac) {
    snprintf(fr, sizeof fr, ".%09" PRId64, frac);
    /* frac is not zero, so a digit other than '0' stops the loop before
     * the leading '.'. */
    size_t l = strlen(fr);
    while (l > 1 && fr[l - 1] == '0') {
      fr[--l] = '\0';
    }
  }
  char zone[32] = "Z";
  if (offset_s) {
    int32_t a = offset_s < 0 ? -offset_s : offset_s;
    snprintf(zone, sizeof zone, "%c%02d:%02d", offset_s < 0 ? '-' : '+',
             (int)(a / 3600 % 100), (int)(a / 60 % 60));
  }
  snprintf(out, n, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d%s%s", y, m, d,
           (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), fr, zone);
}
