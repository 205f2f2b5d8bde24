/*
 * Timestamps: RFC 3339 with offsets and fractions, epoch numbers in every
 * unit converted exactly from their text, the formatter, and the
 * future/past window.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "core/timefmt.h"
#include "ingest/ingest_int.h"

#define NOW INT64_C(1601460000000000000) /* 2020-09-30T10:00:00Z */

static const struct {
  const char *text;
  int rc;
  int64_t ns;
} rfc3339_cases[] = {
    {"2020-09-30T17:00:00+07:00", IOCD_OK, NOW},
    {"2020-09-30T10:00:00Z", IOCD_OK, NOW},
    {"2020-09-30t10:00:00z", IOCD_OK, NOW},
    {"2020-09-30 10:00:00Z", IOCD_OK, NOW},
    {"2020-09-30T09:30:00-00:30", IOCD_OK, NOW},
    {"2020-09-30T10:00:00.5Z", IOCD_OK, NOW + 500000000},
    {"2020-09-30T10:00:00.123456789Z", IOCD_OK, NOW + 123456789},
    {"2020-09-30T10:00:00.000000001+00:00", IOCD_OK, NOW + 1},
    {"1970-01-01T00:00:00Z", IOCD_OK, 0},
    {"1969-12-31T23:59:59Z", IOCD_OK, -INT64_C(1000000000)},
    {"2020-02-29T00:00:00Z", IOCD_OK, INT64_C(1582934400000000000)},
    {"2000-02-29T00:00:00Z", IOCD_OK, INT64_C(951782400000000000)},
    {"2262-04-11T23:47:16Z", IOCD_OK, INT64_C(9223372036000000000)},
    {"2020-09-30T10:00:00", IOCD_EPARSE, 0},             /* no offset */
    {"2020-09-30T10:00:00.1234567891Z", IOCD_EPARSE, 0}, /* > ns */
    {"2020-02-30T00:00:00Z", IOCD_EPARSE, 0},            /* Feb 30 */
    {"2019-02-29T00:00:00Z", IOCD_EPARSE, 0},            /* not a leap year */
    {"1900-02-29T00:00:00Z", IOCD_EPARSE, 0},            /* not a leap year */
    {"2020-13-01T00:00:00Z", IOCD_EPARSE, 0},
    {"2020-00-01T00:00:00Z", IOCD_EPARSE, 0},
    {"2020-09-31T00:00:00Z", IOCD_EPARSE, 0},
    {"2020-09-30T24:00:00Z", IOCD_EPARSE, 0},
    {"2020-09-30T10:60:00Z", IOCD_EPARSE, 0},
    {"2020-09-30T10:00:60Z", IOCD_EPARSE, 0},
    {"2020-09-30T10:00:00+24:00", IOCD_EPARSE, 0},
    {"2020-09-30T10:00:00+0700", IOCD_EPARSE, 0},
    {"2020-09-30T10:00:00.Z", IOCD_EPARSE, 0},
    {"2020-09-30T10:00:00Zjunk", IOCD_EPARSE, 0},
    {"2020-9-30T10:00:00Z", IOCD_EPARSE, 0},
    {"", IOCD_EPARSE, 0},
    {"yesterday", IOCD_EPARSE, 0},
    {"2263-01-01T00:00:00Z", IOCD_ERANGE, 0},
    {"1600-01-01T00:00:00Z", IOCD_ERANGE, 0},
};

Test(ingest_time, parses_rfc3339_with_offsets_and_rejects_the_rest) {
  for (size_t i = 0; i < sizeof rfc3339_cases / sizeof rfc3339_cases[0]; i++) {
    const char *t = rfc3339_cases[i].text;
    int64_t ns = 0;
    const char *why = NULL;
    int rc = time_parse_rfc3339(t, strlen(t), &ns, &why);
    cr_expect_eq(rc, rfc3339_cases[i].rc, "%s: rc %d (%s)", t, rc,
                 why ? why : "");
    if (rc == IOCD_OK) {
      cr_expect_eq(ns, rfc3339_cases[i].ns, "%s: %lld", t, (long long)ns);
    } else {
      cr_expect(why != NULL && *why, "%s: no reason", t);
    }
  }
}

Test(ingest_time, names_the_problem_of_a_bad_timestamp) {
  const char *why;
  int64_t ns;
  const char *t = "2020-02-30T00:00:00Z";
  time_parse_rfc3339(t, strlen(t), &ns, &why);
  cr_assert_str_eq(why, "day out of range");
  t = "2020-09-30T10:00:00";
  time_parse_rfc3339(t, strlen(t), &ns, &why);
  cr_assert_str_eq(why, "no offset (Z or +hh:mm)");
}

static const struct {
  const char *text;
  enum time_unit unit;
  int rc;
  int64_t ns;
} epoch_cases[] = {
    {"1601460000", TIME_S, IOCD_OK, NOW},
    {"1601460000000", TIME_MS, IOCD_OK, NOW},
    {"1601460000000000", TIME_US, IOCD_OK, NOW},
    {"1601460000000000000", TIME_NS, IOCD_OK, NOW},
    {"1601460000.123456789", TIME_S, IOCD_OK, NOW + 123456789},
    {"1601460000.5", TIME_S, IOCD_OK, NOW + 500000000},
    {"1601460000000.5", TIME_MS, IOCD_OK, NOW + 500000},
    {"1601460000.0000000004", TIME_S, IOCD_OK, NOW},     /* rounds down */
    {"1601460000.0000000005", TIME_S, IOCD_OK, NOW + 1}, /* half away */
    {"-1.0000000005", TIME_S, IOCD_OK, -INT64_C(1000000001)},
    {"1.60146e9", TIME_S, IOCD_OK, NOW},
    {"1601460E6", TIME_MS, IOCD_OK, NOW},
    {"16014600000e-1", TIME_S, IOCD_OK, NOW},
    {"0", TIME_S, IOCD_OK, 0},
    {"-0", TIME_NS, IOCD_OK, 0},
    {"0.000", TIME_NS, IOCD_OK, 0},
    {"1601460000000000.5", TIME_US, IOCD_OK, NOW + 500}, /* whole ns */
    {"1601460000000000.0005", TIME_US, IOCD_ETYPE, 0},   /* 0.5 ns */
    {"1.5", TIME_NS, IOCD_ETYPE, 0},
    {"9223372036854775807", TIME_NS, IOCD_OK, INT64_MAX},
    {"-9223372036854775808", TIME_NS, IOCD_OK, INT64_MIN},
    {"9223372036854775808", TIME_NS, IOCD_ERANGE, 0},
    {"9223372037", TIME_S, IOCD_ERANGE, 0},
    {"1e999", TIME_S, IOCD_ERANGE, 0},
    {"1e-999", TIME_S, IOCD_OK, 0},
    {"12345678901234567890123456789012345678901234567890", TIME_NS, IOCD_ERANGE,
     0},
    {"", TIME_S, IOCD_EPARSE, 0},
    {"-", TIME_S, IOCD_EPARSE, 0},
    {"1e", TIME_S, IOCD_EPARSE, 0},
    {"12abc", TIME_S, IOCD_EPARSE, 0},
    {"0x10", TIME_S, IOCD_EPARSE, 0},
};

Test(ingest_time, converts_epoch_numbers_exactly_from_their_text) {
  for (size_t i = 0; i < sizeof epoch_cases / sizeof epoch_cases[0]; i++) {
    const char *t = epoch_cases[i].text;
    int64_t ns = 0;
    int rc = ingest__time_epoch_text(t, strlen(t), epoch_cases[i].unit, &ns);
    cr_expect_eq(rc, epoch_cases[i].rc, "%s: rc %d", t, rc);
    if (rc == IOCD_OK) {
      cr_expect_eq(ns, epoch_cases[i].ns, "%s: %lld", t, (long long)ns);
    }
  }
}

Test(ingest_time, checks_overflow_of_integer_epochs) {
  int64_t ns;
  cr_assert_eq(ingest__time_epoch_int(1601460000, TIME_S, &ns), IOCD_OK);
  cr_assert_eq(ns, NOW);
  cr_assert_eq(ingest__time_epoch_int(-5, TIME_MS, &ns), IOCD_OK);
  cr_assert_eq(ns, -5000000);
  cr_assert_eq(ingest__time_epoch_int(INT64_C(9223372037), TIME_S, &ns),
               IOCD_ERANGE);
  cr_assert_eq(ingest__time_epoch_int(-INT64_C(9223372037), TIME_S, &ns),
               IOCD_ERANGE);
}

Test(ingest_time, formats_utc_with_a_fraction_only_when_needed) {
  char out[48];
  ingest__time_format(NOW, out, sizeof out);
  cr_assert_str_eq(out, "2020-09-30T10:00:00Z");
  ingest__time_format(NOW + 120000000, out, sizeof out);
  cr_assert_str_eq(out, "2020-09-30T10:00:00.12Z");
  ingest__time_format(-1, out, sizeof out);
  cr_assert_str_eq(out, "1969-12-31T23:59:59.999999999Z");
  ingest__time_format(INT64_C(951782400000000000), out, sizeof out);
  cr_assert_str_eq(out, "2000-02-29T00:00:00Z");
}

Test(ingest_time, unit_for_numbers_follows_the_subscription) {
  struct config_subscription sub = {0};
  sub.time_unit = TIME_MS;
  cr_assert_eq(ingest__number_unit(&sub), TIME_MS);
  sub.time_unit = TIME_RFC3339;
  cr_assert_eq(ingest__number_unit(&sub), TIME_RFC3339);
  sub.time_unit = TIME_AUTO;
  cr_assert_eq(ingest__number_unit(&sub), TIME_S);
  sub.time_unit_numbers = TIME_US;
  cr_assert_eq(ingest__number_unit(&sub), TIME_US);
}

Test(ingest_time, rejects_outside_the_future_and_past_window) {
  struct ingest_limits lim;
  struct config_limits cl = {0};
  ingest__limits_resolve(&cl, &lim);
  struct ingest_result res = {0};
  int64_t s = INT64_C(1000000000);
  cr_assert_eq(ingest__time_check(&res, NOW + 600 * s, NOW, &lim), IOCD_OK);
  cr_assert_eq(ingest__time_check(&res, NOW + 601 * s, NOW, &lim), IOCD_EINVAL);
  cr_assert_eq(res.reason, INGEST_TIME_FUTURE);
  cr_assert_str_eq(res.detail,
                   "timestamp 2020-09-30T10:10:01Z is more "
                   "than 600 s in the future");
  cr_assert_eq(ingest__time_check(&res, NOW - 31622400 * s, NOW, &lim),
               IOCD_OK);
  cr_assert_eq(ingest__time_check(&res, NOW - 31622401 * s, NOW, &lim),
               IOCD_EINVAL);
  cr_assert_eq(res.reason, INGEST_TIME_PAST);
  /* No overflow at the ends of the int64 range. */
  cr_assert_eq(ingest__time_check(&res, INT64_MAX, INT64_MAX - 5, &lim),
               IOCD_OK);
  cr_assert_eq(ingest__time_check(&res, INT64_MIN, INT64_MIN + 5, &lim),
               IOCD_OK);
}
