/*
 * Timestamps of incoming points, as int64 nanoseconds since the Unix epoch:
 * RFC 3339 text with a mandatory offset, and epoch numbers in s, ms, us or
 * ns. Pure functions with no clock reads: the arrival time is passed in.
 *
 * Epoch numbers are converted from their decimal text, digit by digit, so
 * that 1601460000.123456789 s is exactly 1601460000123456789 ns; going
 * through a double would lose the last digits (a double holds ~16).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "ingest/ingest_int.h"

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
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

int ingest_time_rfc3339(const char *s, size_t len, int64_t *out_ns,
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
  int64_t secs = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 +
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

static int unit_exp(enum time_unit unit) {
  switch (unit) {
    case TIME_S:
      return 9;
    case TIME_MS:
      return 6;
    case TIME_US:
      return 3;
    default:
      return 0;
  }
}

int ingest__time_epoch_int(int64_t v, enum time_unit unit, int64_t *out_ns) {
  int64_t mult = 1;
  for (int e = unit_exp(unit); e > 0; e--) {
    mult *= 10;
  }
  if ((v > 0 && v > INT64_MAX / mult) || (v < 0 && v < INT64_MIN / mult)) {
    return IOCD_ERANGE;
  }
  *out_ns = v * mult;
  return IOCD_OK;
}

int ingest__time_epoch_text(const char *s, size_t n, enum time_unit unit,
                            int64_t *out_ns) {
  size_t i = 0;
  bool neg = false;
  if (i < n && (s[i] == '-' || s[i] == '+')) {
    neg = s[i] == '-';
    i++;
  }
  /* The significant digits (leading zeros dropped) and the power of ten
   * they are scaled by: value = sig * 10^scale. Only the first 40 digits
   * are kept; later ones only matter for "is there a fraction". */
  char sig[40];
  size_t nsig = 0, ndig = 0;
  bool dropped_nonzero = false;
  int64_t scale = 0;
  bool dot = false;
  for (; i < n; i++) {
    char c = s[i];
    if (c == '.' && !dot) {
      dot = true;
      continue;
    }
    if (c < '0' || c > '9') {
      break;
    }
    ndig++;
    if (dot) {
      scale--;
    }
    if (nsig == 0 && c == '0') {
      continue;
    }
    if (nsig < sizeof sig) {
      sig[nsig++] = c;
    } else {
      scale++; /* the digit is dropped: the kept ones move up */
      dropped_nonzero |= c != '0';
    }
  }
  if (ndig == 0) {
    return IOCD_EPARSE;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    bool eneg = false;
    if (i < n && (s[i] == '-' || s[i] == '+')) {
      eneg = s[i] == '-';
      i++;
    }
    int64_t e = 0;
    size_t start = i;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
      if (e < 100000) {
        e = e * 10 + (s[i] - '0');
      }
    }
    if (i == start) {
      return IOCD_EPARSE;
    }
    scale += eneg ? -e : e;
  }
  if (i != n) {
    return IOCD_EPARSE;
  }
  if (nsig == 0) {
    *out_ns = 0;
    return IOCD_OK;
  }
  scale += unit_exp(unit);
  /* Digits of the integer part: the kept digits up to the decimal point
   * that scale puts among (or after) them. */
  int64_t nint = (int64_t)nsig + scale;
  if (nint > 19) {
    return IOCD_ERANGE;
  }
  uint64_t mag = 0;
  const uint64_t lim =
      neg ? UINT64_C(9223372036854775808) : UINT64_C(9223372036854775807);
  int64_t k = 0;
  for (; k < nint; k++) {
    unsigned dgt = k < (int64_t)nsig ? (unsigned)(sig[k] - '0') : 0;
    if (mag > (lim - dgt) / 10) {
      return IOCD_ERANGE;
    }
    mag = mag * 10 + dgt;
  }
  /* What is left below one nanosecond: round half away from zero. */
  bool frac = dropped_nonzero;
  unsigned round_digit = 0;
  for (int64_t r = nint < 0 ? 0 : nint; r < (int64_t)nsig; r++) {
    if (r == nint) {
      round_digit = (unsigned)(sig[r] - '0');
    }
    frac |= sig[r] != '0';
  }
  if (nint < 0) {
    round_digit = 0; /* the first kept digit is below 0.1 ns */
  }
  if (frac && unit != TIME_S && unit != TIME_MS) {
    return IOCD_ETYPE;
  }
  if (round_digit >= 5) {
    if (mag == lim) {
      return IOCD_ERANGE;
    }
    mag++;
  }
  if (neg) {
    *out_ns = mag == UINT64_C(9223372036854775808) ? INT64_MIN : -(int64_t)mag;
  } else {
    *out_ns = (int64_t)mag;
  }
  return IOCD_OK;
}

enum time_unit ingest__number_unit(const struct config_subscription *sub) {
  switch (sub->time_unit) {
    case TIME_S:
    case TIME_MS:
    case TIME_US:
    case TIME_NS:
    case TIME_RFC3339:
      return sub->time_unit;
    case TIME_AUTO:
    default:
      break;
  }
  switch (sub->time_unit_numbers) {
    case TIME_MS:
    case TIME_US:
    case TIME_NS:
      return sub->time_unit_numbers;
    default:
      return TIME_S;
  }
}

void ingest__time_format(int64_t ns, char *out, size_t n) {
  int64_t secs = ns / NS_PER_SEC;
  int64_t frac = ns % NS_PER_SEC;
  if (frac < 0) {
    frac += NS_PER_SEC;
    secs--;
  }
  int64_t days = secs / 86400;
  int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    days--;
  }
  int64_t y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  char fr[16] = "";
  if (frac) {
    snprintf(fr, sizeof fr, ".%09" PRId64, frac);
    /* frac is not zero, so a digit other than '0' stops the loop before
     * the leading '.'. */
    size_t l = strlen(fr);
    while (l > 1 && fr[l - 1] == '0') {
      fr[--l] = '\0';
    }
  }
  snprintf(out, n, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d%sZ", y, m, d,
           (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), fr);
}

int ingest__time_check(struct ingest_result *res, int64_t ts, int64_t now,
                       const struct ingest_limits *lim) {
  int64_t hi = now > INT64_MAX - lim->max_future_ns ? INT64_MAX
                                                    : now + lim->max_future_ns;
  int64_t lo =
      now < INT64_MIN + lim->max_past_ns ? INT64_MIN : now - lim->max_past_ns;
  if (ts <= hi && ts >= lo) {
    return IOCD_OK;
  }
  char when[48];
  ingest__time_format(ts, when, sizeof when);
  if (ts > hi) {
    return ingest__reject(res, INGEST_TIME_FUTURE,
                          "timestamp %s is more than %" PRId64
                          " s in the future",
                          when, lim->max_future_ns / NS_PER_SEC);
  }
  return ingest__reject(res, INGEST_TIME_PAST,
                        "timestamp %s is more than %" PRId64 " s in the past",
                        when, lim->max_past_ns / NS_PER_SEC);
}
