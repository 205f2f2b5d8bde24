/*
 * The working calendar: parsing of config values, working days and hours in
 * Vietnam's time zone (lunch break, weekends, Tết 2021, a make-up
 * Saturday), working time between instants, and the boundaries a tick is
 * scheduled at.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "core/clock.h"
#include "rules/calendar.h"

/* An instant given in local time at +07:00. */
static int64_t vn(int y, int mo, int d, int h, int mi) {
  int64_t day = calendar_day_from_ymd(y, mo, d);
  return ((day * 86400) + h * 3600 + mi * 60 - 7 * 3600) * NS_PER_SEC;
}

#define MIN(n) ((int64_t)(n) * 60 * NS_PER_SEC)
#define HOUR(n) ((int64_t)(n) * 3600 * NS_PER_SEC)

static struct calendar *tet_calendar(void) {
  static struct cal_dates holidays[2];
  static struct cal_dates workdays[1];
  cr_assert_eq(calendar_parse_dates("2021-02-10..2021-02-16", &holidays[0],
                                    NULL),
               IOCD_OK);
  cr_assert_eq(calendar_parse_dates("2021-04-30", &holidays[1], NULL),
               IOCD_OK);
  cr_assert_eq(calendar_parse_dates("2021-02-20", &workdays[0], NULL),
               IOCD_OK);
  struct calendar_def def = {
      .holidays = holidays,
      .nholidays = 2,
      .workdays = workdays,
      .nworkdays = 1,
  };
  struct iocd_err err = {{0}};
  struct calendar *c = calendar_new(&def, &err);
  cr_assert_not_null(c, "%s", err.msg);
  return c;
}

Test(calendar, parses_dates_and_rejects_non_dates) {
  static const struct {
    const char *text;
    bool ok;
    int y, m, d;
  } cases[] = {
      {"2021-02-10", true, 2021, 2, 10}, {"2024-02-29", true, 2024, 2, 29},
      {"1970-01-01", true, 1970, 1, 1},  {"2021-02-29", false, 0, 0, 0},
      {"2021-13-01", false, 0, 0, 0},    {"2021-00-10", false, 0, 0, 0},
      {"2021-2-10", false, 0, 0, 0},     {"21-02-10", false, 0, 0, 0},
      {"2021-02-10x", false, 0, 0, 0},   {"", false, 0, 0, 0},
      {"1969-12-31", false, 0, 0, 0},    {"2100-02-29", false, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cal_day day = -1;
    struct iocd_err err = {{0}};
    int rc = calendar_parse_date(cases[i].text, &day, &err);
    if (!cases[i].ok) {
      cr_expect_eq(rc, IOCD_EPARSE, "%s", cases[i].text);
      cr_expect(strstr(err.msg, "is not a date") != NULL, "%s", err.msg);
      continue;
    }
    cr_expect_eq(rc, IOCD_OK, "%s: %s", cases[i].text, err.msg);
    cr_expect_eq(day, calendar_day_from_ymd(cases[i].y, cases[i].m,
                                            cases[i].d));
    char back[11];
    calendar_format_date(day, back);
    cr_expect_str_eq(back, cases[i].text);
  }
}

Test(calendar, parses_date_ranges_inclusive) {
  struct cal_dates r;
  cr_assert_eq(calendar_parse_dates("2021-02-10..2021-02-16", &r, NULL),
               IOCD_OK);
  cr_expect_eq(r.last - r.first, 6);
  cr_assert_eq(calendar_parse_dates("2021-02-10", &r, NULL), IOCD_OK);
  cr_expect_eq(r.first, r.last);
  struct iocd_err err = {{0}};
  cr_expect_eq(calendar_parse_dates("2021-02-16..2021-02-10", &r, &err),
               IOCD_EPARSE);
  cr_expect(strstr(err.msg, "ends before it starts") != NULL, "%s", err.msg);
  cr_expect_eq(calendar_parse_dates("2021-02-10..", &r, NULL), IOCD_EPARSE);
  cr_expect_eq(calendar_parse_dates("..2021-02-10", &r, NULL), IOCD_EPARSE);
}

Test(calendar, parses_spans_weekdays_and_offsets) {
  static const struct {
    const char *text;
    int rc, start, end;
  } spans[] = {
      {"07:30-11:30", IOCD_OK, 450, 690},
      {"13:30-17:00", IOCD_OK, 810, 1020},
      {"00:00-24:00", IOCD_OK, 0, 1440},
      {"11:30-07:30", IOCD_EPARSE, 0, 0},
      {"24:00-24:00", IOCD_EPARSE, 0, 0},
      {"7:30-11:30", IOCD_EPARSE, 0, 0},
      {"07:60-11:30", IOCD_EPARSE, 0, 0},
  };
  for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++) {
    struct cal_span sp = {0};
    cr_expect_eq(calendar_parse_span(spans[i].text, &sp, NULL), spans[i].rc,
                 "%s", spans[i].text);
    if (spans[i].rc == IOCD_OK) {
      cr_expect_eq(sp.start_min, spans[i].start);
      cr_expect_eq(sp.end_min, spans[i].end);
    }
  }
  static const struct {
    const char *text;
    int rc;
    unsigned bits;
  } days[] = {
      {"mon-fri", IOCD_OK, CAL_MON_FRI},
      {"Monday", IOCD_OK, CAL_MON},
      {"mon,wed, sat", IOCD_OK, CAL_MON | CAL_WED | CAL_SAT},
      {"fri-mon", IOCD_OK, CAL_FRI | CAL_SAT | CAL_SUN | CAL_MON},
      {"mo", IOCD_EPARSE, 0},
      {"mon-", IOCD_EPARSE, 0},
      {"thứ hai", IOCD_EPARSE, 0},
  };
  for (size_t i = 0; i < sizeof days / sizeof days[0]; i++) {
    unsigned bits = 0;
    cr_expect_eq(calendar_parse_weekdays(days[i].text, &bits, NULL),
                 days[i].rc, "%s", days[i].text);
    if (days[i].rc == IOCD_OK) {
      cr_expect_eq(bits, days[i].bits, "%s: %x", days[i].text, bits);
    }
  }
  static const struct {
    const char *text;
    int rc;
    int32_t s;
  } offs[] = {
      {"+07:00", IOCD_OK, 25200},       {"Asia/Ho_Chi_Minh", IOCD_OK, 25200},
      {"-05:30", IOCD_OK, -19800},      {"+0700", IOCD_OK, 25200},
      {"UTC+7", IOCD_OK, 25200},        {"UTC", IOCD_OK, 0},
      {"+19:00", IOCD_EPARSE, 0},       {"Europe/Paris", IOCD_EPARSE, 0},
      {"07:00", IOCD_EPARSE, 0},
  };
  for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
    int32_t s = 1;
    cr_expect_eq(calendar_parse_utc_offset(offs[i].text, &s, NULL),
                 offs[i].rc, "%s", offs[i].text);
    if (offs[i].rc == IOCD_OK) {
      cr_expect_eq(s, offs[i].s, "%s", offs[i].text);
    }
  }
}

Test(calendar, rejects_invalid_definitions_with_a_reason) {
  static const struct cal_span overlap[] = {{450, 700}, {690, 1020}};
  static const struct cal_span reversed[] = {{700, 600}};
  static const struct cal_dates backwards[] = {{100, 90}};
  static const struct {
    struct calendar_def def;
    const char *msg;
  } cases[] = {
      {{.hours = overlap, .nhours = 2}, "starts before hours[0] ends"},
      {{.hours = reversed, .nhours = 1}, "is not a span of the day"},
      {{.utc_offset_s = 20 * 3600, .utc_offset_set = true}, "beyond"},
      {{.holidays = backwards, .nholidays = 1}, "ends before it starts"},
      {{.weekdays = 0x80}, "unknown bits"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct iocd_err err = {{0}};
    struct calendar *c = calendar_new(&cases[i].def, &err);
    cr_expect_null(c, "case %zu", i);
    cr_expect(strstr(err.msg, cases[i].msg) != NULL, "case %zu: %s", i,
              err.msg);
    cr_expect(strncmp(err.msg, "calendar office_hours: ", 23) == 0, "%s",
              err.msg);
    calendar_free(c);
  }
}

Test(calendar, default_is_office_hours_in_vietnam_monday_to_friday) {
  struct calendar *c = calendar_new(NULL, NULL);
  cr_assert_not_null(c);
  cr_expect_str_eq(calendar_name(c), "office_hours");
  cr_expect_eq(calendar_utc_offset(c), 25200);
  static const struct {
    int d, h, m;
    bool working;
  } cases[] = {
      /* 2021-03-01 is a Monday. */
      {1, 7, 29, false}, {1, 7, 30, true},   {1, 11, 29, true},
      {1, 11, 30, false}, {1, 12, 15, false}, {1, 13, 29, false},
      {1, 13, 30, true},  {1, 16, 59, true},  {1, 17, 0, false},
      {1, 0, 30, false},  {5, 10, 0, true},   {6, 10, 0, false},
      {7, 10, 0, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int64_t t = vn(2021, 3, cases[i].d, cases[i].h, cases[i].m);
    cr_expect_eq(calendar_is_working_time(c, t), cases[i].working,
                 "2021-03-%02d %02d:%02d", cases[i].d, cases[i].h,
                 cases[i].m);
  }
  /* 00:30 local on Monday is still Sunday in UTC: the local date counts. */
  cr_expect(calendar_is_working_day(c, vn(2021, 3, 1, 0, 30)));
  cr_expect_not(calendar_is_working_day(c, vn(2021, 2, 28, 23, 59)));
  calendar_free(c);
}

Test(calendar, tet_is_off_and_a_makeup_saturday_is_worked) {
  struct calendar *c = tet_calendar();
  cr_expect_not(calendar_is_working_time(c, vn(2021, 2, 10, 9, 0)));
  cr_expect_not(calendar_is_working_time(c, vn(2021, 2, 16, 9, 0)));
  cr_expect(calendar_is_working_time(c, vn(2021, 2, 9, 9, 0)));
  cr_expect(calendar_is_working_time(c, vn(2021, 2, 17, 9, 0)));
  cr_expect(calendar_is_working_time(c, vn(2021, 2, 20, 9, 0)));
  cr_expect_not(calendar_is_working_time(c, vn(2021, 2, 27, 9, 0)));
  cr_expect_not(calendar_is_working_time(c, vn(2021, 4, 30, 9, 0)));
  calendar_free(c);
}

Test(calendar, counts_working_time_across_lunch_nights_and_weekends) {
  struct calendar *c = tet_calendar();
  const struct {
    int64_t from, to, want;
  } cases[] = {
      {vn(2021, 3, 1, 10, 30), vn(2021, 3, 1, 14, 30), HOUR(2)},
      {vn(2021, 3, 1, 11, 30), vn(2021, 3, 1, 13, 30), 0},
      {vn(2021, 3, 1, 0, 0), vn(2021, 3, 2, 0, 0), HOUR(7) + MIN(30)},
      {vn(2021, 3, 5, 16, 0), vn(2021, 3, 8, 8, 0), HOUR(1) + MIN(30)},
      {vn(2021, 2, 9, 16, 0), vn(2021, 2, 17, 8, 0), HOUR(1) + MIN(30)},
      {vn(2021, 3, 1, 14, 0), vn(2021, 3, 1, 10, 0), 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_expect_eq(calendar_working_ns(c, cases[i].from, cases[i].to),
                 cases[i].want, "case %zu", i);
  }
  calendar_free(c);
}

Test(calendar, two_office_hours_back_reach_over_lunch_weekend_and_tet) {
  struct calendar *c = tet_calendar();
  const struct {
    int64_t t, want;
  } cases[] = {
      /* Monday 14:00: 13:30-14:00, then 10:00-11:30. */
      {vn(2021, 3, 1, 14, 0), vn(2021, 3, 1, 10, 0)},
      /* Lunch: the last two office hours end at 11:30. */
      {vn(2021, 3, 1, 12, 0), vn(2021, 3, 1, 9, 30)},
      /* Monday 08:00: 07:30-08:00, then Friday 15:30-17:00. */
      {vn(2021, 3, 8, 8, 0), vn(2021, 3, 5, 15, 30)},
      /* The first morning after Tết reaches back to the day before it. */
      {vn(2021, 2, 17, 8, 0), vn(2021, 2, 9, 15, 30)},
      /* The Monday after the make-up Saturday reaches back to it. */
      {vn(2021, 2, 22, 8, 0), vn(2021, 2, 20, 15, 30)},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int64_t s = calendar_working_start(c, cases[i].t, HOUR(2));
    cr_expect_eq(s, cases[i].want, "case %zu: off by %lld min", i,
                 (long long)((s - cases[i].want) / MIN(1)));
    cr_expect_eq(calendar_working_ns(c, s, cases[i].t), HOUR(2));
    /* And forward again. */
    cr_expect_eq(calendar_working_ns(c, s, calendar_add_working(c, s,
                                                                HOUR(2))),
                 HOUR(2));
  }
  cr_expect_eq(calendar_add_working(c, vn(2021, 2, 9, 16, 0), HOUR(2)),
               vn(2021, 2, 17, 8, 30));
  cr_expect_eq(calendar_working_start(c, vn(2021, 3, 1, 9, 0), 0),
               vn(2021, 3, 1, 9, 0));
  /* Enough wall-clock history is kept to cover Tết. */
  cr_expect_geq(calendar_span_bound(c, HOUR(2)),
                vn(2021, 2, 17, 8, 0) - vn(2021, 2, 9, 15, 30));
  calendar_free(c);
}

Test(calendar, next_change_is_the_next_start_or_end_of_office_hours) {
  struct calendar *c = tet_calendar();
  const struct {
    int64_t t, want;
  } cases[] = {
      {vn(2021, 3, 1, 7, 0), vn(2021, 3, 1, 7, 30)},
      {vn(2021, 3, 1, 7, 30), vn(2021, 3, 1, 11, 30)},
      {vn(2021, 3, 1, 9, 0), vn(2021, 3, 1, 11, 30)},
      {vn(2021, 3, 1, 11, 30), vn(2021, 3, 1, 13, 30)},
      {vn(2021, 3, 5, 17, 0), vn(2021, 3, 8, 7, 30)},
      {vn(2021, 2, 9, 17, 0), vn(2021, 2, 17, 7, 30)},
      {vn(2021, 2, 19, 17, 0), vn(2021, 2, 20, 7, 30)},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_expect_eq(calendar_next_change(c, cases[i].t), cases[i].want,
                 "case %zu", i);
  }
  struct cal_span all_day = {0, 1440};
  struct calendar_def always = {.name = "always",
                                .hours = &all_day,
                                .nhours = 1,
                                .weekdays = 0x7f};
  struct calendar *a = calendar_new(&always, NULL);
  cr_assert_not_null(a);
  /* Midnight joins two days into one stretch: no change at all. */
  cr_expect_eq(calendar_next_change(a, vn(2021, 3, 1, 9, 0)), INT64_MAX);
  calendar_free(a);
  calendar_free(c);
}

Test(calendar, during_needs_every_instant_of_the_window_in_office_hours) {
  struct calendar *c = calendar_new(NULL, NULL);
  const struct {
    int64_t from, to;
    bool want;
  } cases[] = {
      {vn(2021, 3, 1, 9, 0), vn(2021, 3, 1, 11, 0), true},
      {vn(2021, 3, 1, 10, 30), vn(2021, 3, 1, 12, 0), false},
      {vn(2021, 3, 1, 11, 0), vn(2021, 3, 1, 11, 30), false},
      {vn(2021, 3, 1, 9, 0), vn(2021, 3, 1, 9, 0), true},
      {vn(2021, 3, 1, 12, 0), vn(2021, 3, 1, 12, 0), false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_expect_eq(calendar_during(c, cases[i].from, cases[i].to),
                 cases[i].want, "case %zu", i);
  }
  /* during(2h) at 13:45 turns true at 15:30 (13:30 + 2h). */
  int64_t t = vn(2021, 3, 1, 13, 45);
  int64_t u = calendar_during_next(c, t, HOUR(2));
  cr_expect_leq(u, vn(2021, 3, 1, 15, 30));
  cr_expect_gt(u, t);
  calendar_free(c);
}

Test(calendar, canonical_text_ignores_order_and_sees_changes) {
  struct cal_dates a[] = {{18668, 18674}, {18747, 18747}};
  struct cal_dates b[] = {{18747, 18747}, {18668, 18670}, {18671, 18674}};
  struct calendar_def da = {.holidays = a, .nholidays = 2};
  struct calendar_def db = {.holidays = b, .nholidays = 3};
  struct calendar *ca = calendar_new(&da, NULL);
  struct calendar *cb = calendar_new(&db, NULL);
  cr_assert(ca && cb);
  cr_expect_str_eq(calendar_canonical(ca), calendar_canonical(cb));
  struct calendar_def dc = {.holidays = a, .nholidays = 1};
  struct calendar *cc = calendar_new(&dc, NULL);
  cr_expect_str_neq(calendar_canonical(ca), calendar_canonical(cc));
  calendar_free(ca);
  calendar_free(cb);
  calendar_free(cc);
}

Test(calendar, a_negative_offset_shifts_the_local_day) {
  struct calendar_def def = {.name = "ny",
                             .utc_offset_s = -5 * 3600,
                             .utc_offset_set = true};
  struct calendar *c = calendar_new(&def, NULL);
  cr_assert_not_null(c);
  /* 2021-03-01 13:00 UTC is 08:00 in New York on Monday. */
  int64_t t = (int64_t)calendar_day_from_ymd(2021, 3, 1) * 86400 * NS_PER_SEC +
              HOUR(13);
  cr_expect(calendar_is_working_time(c, t));
  cr_expect_eq(calendar_day_of(c, t - HOUR(9)),
               calendar_day_from_ymd(2021, 2, 28));
  calendar_free(c);
}
