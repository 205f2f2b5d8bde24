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
#include "core/timefmt.h"
#include "ingest/ingest_int.h"

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
  time_format_rfc3339(ns, 0, -1, out, n);
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
