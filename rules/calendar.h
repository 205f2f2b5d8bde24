/*
 * The working calendar shared by rules and (later) notifications: a fixed
 * offset from UTC, office hours as [start, end) intervals of the local day,
 * working weekdays, public holidays (lunar ones such as Tết are simply dates
 * in config) and make-up working days (a Saturday that is worked).
 *
 * "Working time" is the set of instants that fall inside office hours on a
 * working day. A day is a working day when it is a make-up working day, or
 * when its weekday is a working weekday and it is not a holiday (a make-up
 * day listed as a holiday too is a working day: the later decree wins).
 *
 * Pure: no clock, no I/O, no time zone database. Time is nanoseconds since
 * the Unix epoch (UTC); dates are local dates. The config layer resolves a
 * zone name to its offset (Asia/Ho_Chi_Minh is +07:00 all year, no DST).
 */
#ifndef IOCD_RULES_CALENDAR_H
#define IOCD_RULES_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct calendar;

/* A local date as a day number: days since 1970-01-01 (day 0, a Thursday).
 * calendar_parse_date makes one from "YYYY-MM-DD". */
typedef int32_t cal_day;

/* Office hours of a day: [start_min, end_min) minutes after local midnight,
 * 0 <= start_min < end_min <= 1440. */
struct cal_span {
  int start_min;
  int end_min;
};

/* An inclusive range of local dates; first == last for one date. */
struct cal_dates {
  cal_day first;
  cal_day last;
};

/* Weekday bits, as struct tm counts them: bit 0 Sunday ... bit 6 Saturday. */
#define CAL_SUN (1u << 0)
#define CAL_MON (1u << 1)
#define CAL_TUE (1u << 2)
#define CAL_WED (1u << 3)
#define CAL_THU (1u << 4)
#define CAL_FRI (1u << 5)
#define CAL_SAT (1u << 6)
#define CAL_MON_FRI (CAL_MON | CAL_TUE | CAL_WED | CAL_THU | CAL_FRI)

/* At most this many office-hour spans per day, holiday ranges and make-up
 * ranges per calendar. */
#define CAL_MAX_SPANS 16
#define CAL_MAX_DATES 4096

/* The definition of a calendar. Caller storage; {0} is the default calendar
 * "office_hours": +07:00, Monday to Friday, 07:30-11:30 and 13:30-17:00, no
 * holidays. Every pointer is borrowed: calendar_new copies what it keeps. */
struct calendar_def {
  const char *name;           /* NULL: "office_hours" */
  int32_t utc_offset_s;       /* local time = UTC + this, in seconds */
  bool utc_offset_set;        /* false: +07:00 (Asia/Ho_Chi_Minh) */
  const struct cal_span *hours; /* ascending, not overlapping */
  size_t nhours;                /* 0: 07:30-11:30 and 13:30-17:00 */
  unsigned weekdays;            /* CAL_* bits; 0: CAL_MON_FRI */
  const struct cal_dates *holidays; /* days off, e.g. Tết 2021-02-10..16 */
  size_t nholidays;
  const struct cal_dates *workdays; /* make-up working days */
  size_t nworkdays;
};

/* Builds a calendar from def, copying everything. Returns NULL with err set
 * ("calendar office_hours: hours[1]: 13:30-11:00 ends before it starts")
 * when def is invalid (spans out of order or overlapping, an offset beyond
 * +-18 h, a date range that ends before it starts, too many entries) or when
 * memory runs out. Free with calendar_free. */
struct calendar *calendar_new(const struct calendar_def *def,
                              struct iocd_err *err);

/* Frees c; NULL is allowed. */
void calendar_free(struct calendar *c);

/* The calendar's name; owned by c. */
const char *calendar_name(const struct calendar *c);

/* A canonical text of the whole definition (offset, spans, weekdays, every
 * date), so that a reload can tell whether a calendar changed. Owned by c. */
const char *calendar_canonical(const struct calendar *c);

/* The calendar's offset from UTC, in seconds. */
int32_t calendar_utc_offset(const struct calendar *c);

/* The local date of instant t. */
cal_day calendar_day_of(const struct calendar *c, int64_t t_ns);

/* Whether local date day is a working day. */
bool calendar_is_working_date(const struct calendar *c, cal_day day);

/* Whether the local date of t is a working day. */
bool calendar_is_working_day(const struct calendar *c, int64_t t_ns);

/* Whether instant t is working time (office hours on a working day). */
bool calendar_is_working_time(const struct calendar *c, int64_t t_ns);

/* The working time inside [from, to), in nanoseconds; 0 when to <= from. */
int64_t calendar_working_ns(const struct calendar *c, int64_t from_ns,
                            int64_t to_ns);

/* The latest instant s <= t such that [s, t) holds d of working time: the
 * start of the last d of working time before t (so "two office hours" at
 * 14:00 on a Monday reaches back over lunch to Friday's afternoon when the
 * morning was short). s == t when d <= 0. Returns INT64_MIN when the
 * calendar has no working time within CAL_SEARCH_DAYS before t. */
int64_t calendar_working_start(const struct calendar *c, int64_t t_ns,
                               int64_t d_ns);

/* The earliest instant u >= t such that [t, u) holds d of working time.
 * u == t when d <= 0. Returns INT64_MAX when there is not enough working
 * time within CAL_SEARCH_DAYS after t. */
int64_t calendar_add_working(const struct calendar *c, int64_t t_ns,
                             int64_t d_ns);

/* The earliest instant u > t at which calendar_is_working_time(u) differs
 * from calendar_is_working_time(t): the next start or end of office hours
 * (for scheduling a tick). INT64_MAX when there is none within
 * CAL_SEARCH_DAYS. */
int64_t calendar_next_change(const struct calendar *c, int64_t t_ns);

/* The language's during(name, d) hook: true when every instant of
 * [from, to] is working time (for from == to: t is working time). */
bool calendar_during(const struct calendar *c, int64_t from_ns,
                     int64_t to_ns);

/* The earliest instant u > t at which calendar_during(u - d, u) may differ
 * from its value at t (for scheduling). INT64_MAX when none is found. */
int64_t calendar_during_next(const struct calendar *c, int64_t t_ns,
                             int64_t d_ns);

/* An upper bound of the wall-clock time that can pass while d of working
 * time accumulates (weekends, the longest run of holidays, nights): how far
 * back a rule reading a [2wh] range needs samples. */
int64_t calendar_span_bound(const struct calendar *c, int64_t d_ns);

/* How far the search functions above look: about two years. */
#define CAL_SEARCH_DAYS 800

/* ---- parsing helpers for config ------------------------------------------ */

/* Parses "YYYY-MM-DD" (a valid Gregorian date, years 1970-9999) into *day.
 * Returns IOCD_OK or IOCD_EPARSE with err set to "\"2021-02-30\" is not a
 * date (YYYY-MM-DD)". */
int calendar_parse_date(const char *s, cal_day *day, struct iocd_err *err);

/* "YYYY-MM-DD" (a real date, 1970 or later) in s[0..n) to *day; false when
 * it is not one. */
bool calendar_parse_ymd(const char *s, size_t n, cal_day *day);

/* Parses "YYYY-MM-DD" or "YYYY-MM-DD..YYYY-MM-DD" (inclusive, the first not
 * after the last). Returns IOCD_OK or IOCD_EPARSE with err set. */
int calendar_parse_dates(const char *s, struct cal_dates *out,
                         struct iocd_err *err);

/* Parses "HH:MM-HH:MM" (24:00 allowed as an end) into *out. Returns IOCD_OK
 * or IOCD_EPARSE with err set. */
int calendar_parse_span(const char *s, struct cal_span *out,
                        struct iocd_err *err);

/* Parses a weekday name, "mon" or "monday" (case-insensitive), or a range
 * "mon-fri", or a comma-separated list "mon,tue,sat", into CAL_* bits ORed
 * into *bits. Returns IOCD_OK or IOCD_EPARSE with err set. */
int calendar_parse_weekdays(const char *s, unsigned *bits,
                            struct iocd_err *err);

/* Parses a UTC offset "+07:00", "-05:30", "+0700", "+7", "UTC", "Z", or one
 * of the few fixed-offset zone names it knows (Asia/Ho_Chi_Minh,
 * Asia/Saigon, Asia/Bangkok, Asia/Jakarta, UTC), into seconds. Returns
 * IOCD_OK or IOCD_EPARSE with err set. */
int calendar_parse_utc_offset(const char *s, int32_t *seconds,
                              struct iocd_err *err);

/* Writes day as "YYYY-MM-DD" into out (at least 11 bytes). */
void calendar_format_date(cal_day day, char out[11]);

/* Day number of a Gregorian date (no validation), and back. */
cal_day calendar_day_from_ymd(int y, int m, int d);
void calendar_ymd_from_day(cal_day day, int *y, int *m, int *d);

#endif
