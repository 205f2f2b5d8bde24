/*
 * Named time intervals on the working calendar, for the routes' mute and
 * active intervals. Three names are built in and need no configuration:
 *
 *   working_time          office hours on a working day (rules/calendar.h)
 *   outside_working_time  every other instant: nights, lunch, weekends,
 *                         holidays such as Tết
 *   non_working_days      the whole local day of a day that is not a
 *                         working day (a make-up Saturday is a working day)
 *
 * A configured interval (struct config_time_interval) is a set of days
 * (all, working, non_working, as the calendar says) and, optionally, times
 * of the local day [start, end). A time span whose end is before its start
 * wraps past midnight, and its part after midnight belongs to the day it
 * started on: "22:00-06:00" on working days holds from Friday 22:00 to
 * Saturday 06:00, and not from Saturday 22:00. Without times, the whole of
 * each such day.
 *
 * Pure: time is passed in (ns since the Unix epoch); local time is UTC
 * plus the calendar's offset.
 */
#ifndef IOCD_ALERTS_TIMEINT_H
#define IOCD_ALERTS_TIMEINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/err.h"
#include "rules/calendar.h"

struct timeint_set;

/* Builds the built-in intervals and the n configured ones in v (borrowed,
 * copied) on calendar cal (borrowed: it must outlive the set). Returns NULL
 * with err set when a name is missing, repeated or one of the built-in
 * names, when a time span is empty or outside the day, or when memory runs
 * out. Free with timeint_set_free. */
struct timeint_set *timeint_set_new(const struct calendar *cal,
                                    const struct config_time_interval *v,
                                    size_t n, struct iocd_err *err);

/* Frees s; NULL is allowed. */
void timeint_set_free(struct timeint_set *s);

/* Whether s knows an interval called name (built-in or configured). */
bool timeint_known(const struct timeint_set *s, const char *name);

/* Whether instant t is inside the interval called name; false for a name
 * s does not know. */
bool timeint_active(const struct timeint_set *s, const char *name,
                    int64_t t_ns);

/* The earliest instant u > t at which timeint_active(name, u) differs from
 * timeint_active(name, t): when a mute ends or begins, for the dispatcher's
 * wake-up. INT64_MAX when there is none within CAL_SEARCH_DAYS, or for a
 * name s does not know. */
int64_t timeint_next_change(const struct timeint_set *s, const char *name,
                            int64_t t_ns);

#endif
