/*
 * Time intervals on the working calendar of Đắk Lắk: the built-in ones
 * through nights, lunch, weekends, Tết 2026 and a make-up Saturday, the
 * configured ones with spans past midnight, and when each next changes.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "alerts/timeint.h"
#include "core/clock.h"

static int64_t vn(int y, int mo, int d, int h, int mi) {
  int64_t day = calendar_day_from_ymd(y, mo, d);
  return ((day * 86400) + h * 3600 + mi * 60 - 7 * 3600) * NS_PER_SEC;
}

static struct calendar *cal;
static struct timeint_set *set;
static struct config_minutes night_times[] = {{22 * 60, 6 * 60}};
static struct config_minutes lunch_times[] = {{11 * 60 + 30, 13 * 60 + 30}};
static struct config_time_interval conf[] = {
    {.name = "night",
     .days = CONFIG_DAYS_ALL,
     .times = night_times,
     .ntimes = 1},
    {.name = "work_nights",
     .days = CONFIG_DAYS_WORKING,
     .times = night_times,
     .ntimes = 1},
    {.name = "weekend_and_holidays", .days = CONFIG_DAYS_NON_WORKING},
    {.name = "lunch",
     .days = CONFIG_DAYS_WORKING,
     .times = lunch_times,
     .ntimes = 1},
};

static void setup(void) {
  static struct cal_dates holidays[1];
  static struct cal_dates workdays[1];
  cr_assert_eq(
      calendar_parse_dates("2026-02-14..2026-02-22", &holidays[0], NULL),
      IOCD_OK);
  cr_assert_eq(calendar_parse_dates("2026-12-12", &workdays[0], NULL), IOCD_OK);
  struct calendar_def def = {.holidays = holidays,
                             .nholidays = 1,
                             .workdays = workdays,
                             .nworkdays = 1};
  cal = calendar_new(&def, NULL);
  cr_assert_not_null(cal);
  struct iocd_err err = {{0}};
  set = timeint_set_new(cal, conf, sizeof conf / sizeof conf[0], &err);
  cr_assert_not_null(set, "%s", err.msg);
}

static void teardown(void) {
  timeint_set_free(set);
  calendar_free(cal);
}

TestSuite(timeint, .init = setup, .fini = teardown);

Test(timeint, built_in_intervals_follow_the_working_calendar) {
  static const struct {
    int y, mo, d, h, mi;
    bool working_time, non_working_day;
  } cases[] = {
      {2026, 12, 7, 9, 0, true, false},   /* Monday morning */
      {2026, 12, 7, 12, 0, false, false}, /* lunch */
      {2026, 12, 7, 23, 0, false, false}, /* Monday night */
      {2026, 12, 8, 7, 29, false, false}, /* before office hours */
      {2026, 12, 8, 7, 30, true, false},  /* office hours start */
      {2026, 12, 13, 9, 0, false, true},  /* a Sunday */
      {2026, 12, 19, 9, 0, false, true},  /* a Saturday */
      {2026, 12, 12, 9, 0, true, false},  /* the make-up Saturday */
      {2026, 2, 16, 9, 0, false, true},   /* Monday in Tết */
      {2026, 2, 23, 9, 0, true, false},   /* back after Tết */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int64_t t =
        vn(cases[i].y, cases[i].mo, cases[i].d, cases[i].h, cases[i].mi);
    cr_assert_eq(timeint_active(set, "working_time", t), cases[i].working_time,
                 "case %zu", i);
    cr_assert_eq(timeint_active(set, "outside_working_time", t),
                 !cases[i].working_time, "case %zu", i);
    cr_assert_eq(timeint_active(set, "non_working_days", t),
                 cases[i].non_working_day, "case %zu", i);
  }
  cr_assert_not(timeint_active(set, "no_such_interval", vn(2026, 12, 7, 9, 0)));
  cr_assert(timeint_known(set, "outside_working_time"));
  cr_assert_not(timeint_known(set, "no_such_interval"));
}

Test(timeint, a_span_past_midnight_belongs_to_the_day_it_started) {
  /* every day 22:00-06:00 */
  cr_assert(timeint_active(set, "night", vn(2026, 12, 7, 23, 0)));
  cr_assert(timeint_active(set, "night", vn(2026, 12, 8, 5, 59)));
  cr_assert_not(timeint_active(set, "night", vn(2026, 12, 8, 6, 0)));
  cr_assert_not(timeint_active(set, "night", vn(2026, 12, 8, 21, 59)));
  /* working days only: Friday's night runs into Saturday morning, but
   * Sunday's night (Sunday is not a working day) does not reach Monday */
  cr_assert(timeint_active(set, "work_nights", vn(2026, 12, 11, 23, 0)));
  cr_assert(timeint_active(set, "work_nights", vn(2026, 12, 19, 2, 0)));
  cr_assert_not(timeint_active(set, "work_nights", vn(2026, 12, 19, 23, 0)));
  cr_assert_not(timeint_active(set, "work_nights", vn(2026, 12, 21, 2, 0)));
  /* the make-up Saturday's own night counts */
  cr_assert(timeint_active(set, "work_nights", vn(2026, 12, 12, 23, 0)));
  /* days only */
  cr_assert(
      timeint_active(set, "weekend_and_holidays", vn(2026, 2, 18, 10, 0)));
  cr_assert_not(
      timeint_active(set, "weekend_and_holidays", vn(2026, 12, 12, 10, 0)));
}

Test(timeint, says_when_a_mute_ends) {
  /* Monday 23:00: office hours start Tuesday 07:30 */
  cr_assert_eq(
      timeint_next_change(set, "outside_working_time", vn(2026, 12, 7, 23, 0)),
      vn(2026, 12, 8, 7, 30));
  /* Friday 17:00: the make-up Saturday */
  cr_assert_eq(
      timeint_next_change(set, "outside_working_time", vn(2026, 12, 11, 17, 0)),
      vn(2026, 12, 12, 7, 30));
  /* during Tết: the first working day after */
  cr_assert_eq(
      timeint_next_change(set, "outside_working_time", vn(2026, 2, 16, 9, 0)),
      vn(2026, 2, 23, 7, 30));
  cr_assert_eq(
      timeint_next_change(set, "non_working_days", vn(2026, 2, 16, 9, 0)),
      vn(2026, 2, 23, 0, 0));
  cr_assert_eq(timeint_next_change(set, "night", vn(2026, 12, 7, 23, 0)),
               vn(2026, 12, 8, 6, 0));
  cr_assert_eq(timeint_next_change(set, "night", vn(2026, 12, 8, 6, 0)),
               vn(2026, 12, 8, 22, 0));
  cr_assert_eq(timeint_next_change(set, "lunch", vn(2026, 12, 11, 12, 0)),
               vn(2026, 12, 11, 13, 30));
  /* Friday 13:30: the next lunch is the make-up Saturday's */
  cr_assert_eq(timeint_next_change(set, "lunch", vn(2026, 12, 11, 13, 30)),
               vn(2026, 12, 12, 11, 30));
  cr_assert_eq(timeint_next_change(set, "work_nights", vn(2026, 12, 19, 2, 0)),
               vn(2026, 12, 19, 6, 0));
  cr_assert_eq(timeint_next_change(set, "no_such_interval", 0), INT64_MAX);
}

Test(timeint, refuses_bad_definitions) {
  struct iocd_err err = {{0}};
  struct config_time_interval dup[] = {
      {.name = "night", .days = CONFIG_DAYS_ALL},
      {.name = "night", .days = CONFIG_DAYS_WORKING},
  };
  cr_assert_null(timeint_set_new(cal, dup, 2, &err));
  cr_assert_str_eq(err.msg, "time_intervals[1]: the name night is used twice");
  struct config_time_interval builtin[] = {
      {.name = "working_time", .days = CONFIG_DAYS_ALL},
  };
  cr_assert_null(timeint_set_new(cal, builtin, 1, &err));
  cr_assert_str_eq(err.msg,
                   "time_intervals[0]: the name working_time is built in");
  struct config_minutes empty[] = {{600, 600}};
  struct config_time_interval zero[] = {
      {.name = "x", .days = CONFIG_DAYS_ALL, .times = empty, .ntimes = 1},
  };
  cr_assert_null(timeint_set_new(cal, zero, 1, &err));
  cr_assert_str_eq(err.msg,
                   "time interval x: times[0]: 600-600 is not a span of the "
                   "day (minutes 0-1440, start != end)");
}
