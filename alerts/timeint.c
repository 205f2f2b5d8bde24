/*
 * Named time intervals on the working calendar: the three built-in ones and
 * those from the configuration, whether an instant is inside one, and when
 * that next changes. A configured interval only changes at a local
 * midnight or at one of its span boundaries, so the next change is found by
 * walking those candidate instants day by day.
 */
#include "alerts/timeint.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"

enum ti_kind {
  TI_WORKING_TIME = 0,
  TI_OUTSIDE_WORKING_TIME,
  TI_DAYS, /* days, and times of the day: configured or non_working_days */
};

struct timeint {
  char *name;
  enum ti_kind kind;
  enum config_days days;
  struct config_minutes *times;
  size_t ntimes;
  int *bounds; /* the distinct span boundaries in [1, 1440), ascending */
  size_t nbounds;
};

struct timeint_set {
  const struct calendar *cal;
  struct timeint *v;
  size_t n;
};

static const char *const builtin_names[] = {
    "working_time",
    "outside_working_time",
    "non_working_days",
};
#define NBUILTIN (sizeof builtin_names / sizeof builtin_names[0])

void timeint_set_free(struct timeint_set *s) {
  if (!s) {
    return;
  }
  for (size_t i = 0; i < s->n; i++) {
    free(s->v[i].name);
    free(s->v[i].times);
    free(s->v[i].bounds);
  }
  free(s->v);
  free(s);
}

static const struct timeint *find(const struct timeint_set *s,
                                  const char *name) {
  for (size_t i = 0; s && name && i < s->n; i++) {
    if (strcmp(s->v[i].name, name) == 0) {
      return &s->v[i];
    }
  }
  return NULL;
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* Copies the spans of c into t and collects their distinct boundaries. */
static int copy_times(struct timeint *t, const struct config_time_interval *c,
                      struct iocd_err *err) {
  if (c->ntimes == 0) {
    return IOCD_OK;
  }
  t->times = calloc(c->ntimes, sizeof *t->times);
  t->bounds = calloc(2 * c->ntimes, sizeof *t->bounds);
  if (!t->times || !t->bounds) {
    return IOCD_ENOMEM;
  }
  for (size_t j = 0; j < c->ntimes; j++) {
    int a = c->times[j].start, b = c->times[j].end;
    if (a < 0 || a >= 1440 || b < 0 || b > 1440 || a == b) {
      return iocd_err_set(err, IOCD_EINVAL,
                          "time interval %s: times[%zu]: %d-%d is not a span "
                          "of the day (minutes 0-1440, start != end)",
                          c->name, j, a, b);
    }
    t->times[j] = c->times[j];
    t->ntimes = j + 1;
    int cand[2] = {a, b};
    for (size_t k = 0; k < 2; k++) {
      if (cand[k] <= 0 || cand[k] >= 1440) {
        continue; /* midnight is always a candidate */
      }
      bool dup = false;
      for (size_t q = 0; q < t->nbounds; q++) {
        dup = dup || t->bounds[q] == cand[k];
      }
      if (!dup) {
        t->bounds[t->nbounds++] = cand[k];
      }
    }
  }
  qsort(t->bounds, t->nbounds, sizeof *t->bounds, cmp_int);
  return IOCD_OK;
}

struct timeint_set *timeint_set_new(const struct calendar *cal,
                                    const struct config_time_interval *v,
                                    size_t n, struct iocd_err *err) {
  if (!cal) {
    iocd_err_set(err, IOCD_EINVAL, "time intervals: no calendar");
    return NULL;
  }
  struct timeint_set *s = calloc(1, sizeof *s);
  if (!s || !(s->v = calloc(NBUILTIN + n, sizeof *s->v))) {
    free(s);
    iocd_err_set(err, IOCD_ENOMEM, "time intervals: out of memory");
    return NULL;
  }
  s->cal = cal;
  for (size_t i = 0; i < NBUILTIN; i++) {
    struct timeint *t = &s->v[s->n];
    t->name = mem_strdup(builtin_names[i]);
    t->kind = i == 0   ? TI_WORKING_TIME
              : i == 1 ? TI_OUTSIDE_WORKING_TIME
                       : TI_DAYS;
    t->days = CONFIG_DAYS_NON_WORKING;
    s->n++;
    if (!t->name) {
      iocd_err_set(err, IOCD_ENOMEM, "time intervals: out of memory");
      timeint_set_free(s);
      return NULL;
    }
  }
  for (size_t i = 0; i < n; i++) {
    const struct config_time_interval *c = &v[i];
    if (!c->name || !c->name[0]) {
      iocd_err_set(err, IOCD_EINVAL, "time_intervals[%zu]: no name", i);
      timeint_set_free(s);
      return NULL;
    }
    const struct timeint *prev = find(s, c->name);
    if (prev) {
      iocd_err_set(err, IOCD_EINVAL, "time_intervals[%zu]: the name %s is %s",
                   i, c->name,
                   prev < &s->v[NBUILTIN] ? "built in" : "used twice");
      timeint_set_free(s);
      return NULL;
    }
    struct timeint *t = &s->v[s->n];
    t->kind = TI_DAYS;
    t->days = c->days;
    t->name = mem_strdup(c->name);
    s->n++;
    int rc = t->name ? copy_times(t, c, err) : IOCD_ENOMEM;
    if (rc) {
      if (rc == IOCD_ENOMEM) {
        iocd_err_set(err, rc, "time intervals: out of memory");
      }
      timeint_set_free(s);
      return NULL;
    }
  }
  return s;
}

bool timeint_known(const struct timeint_set *s, const char *name) {
  return find(s, name) != NULL;
}

/* The local day and minute of the day of instant t. */
static void local_of(const struct calendar *cal, int64_t t_ns, cal_day *day,
                     int *minute) {
  int64_t sec = t_ns / NS_PER_SEC;
  if (t_ns % NS_PER_SEC < 0) {
    sec--;
  }
  sec += calendar_utc_offset(cal);
  int64_t d = sec / 86400;
  if (sec % 86400 < 0) {
    d--;
  }
  *day = (cal_day)d;
  *minute = (int)((sec - d * 86400) / 60);
}

/* The instant at which local day `day` reaches minute m. */
static int64_t instant_of(const struct calendar *cal, cal_day day, int m) {
  int64_t sec =
      (int64_t)day * 86400 + (int64_t)m * 60 - calendar_utc_offset(cal);
  return sec * NS_PER_SEC;
}

static bool days_ok(const struct calendar *cal, enum config_days days,
                    cal_day day) {
  switch (days) {
    case CONFIG_DAYS_ALL:
      return true;
    case CONFIG_DAYS_WORKING:
      return calendar_is_working_date(cal, day);
    case CONFIG_DAYS_NON_WORKING:
      return !calendar_is_working_date(cal, day);
  }
  return false;
}

static bool days_active(const struct calendar *cal, const struct timeint *t,
                        cal_day day, int minute) {
  if (t->ntimes == 0) {
    return days_ok(cal, t->days, day);
  }
  for (size_t i = 0; i < t->ntimes; i++) {
    int a = t->times[i].start, b = t->times[i].end;
    if (a < b) {
      if (minute >= a && minute < b && days_ok(cal, t->days, day)) {
        return true;
      }
    } else if ((minute >= a && days_ok(cal, t->days, day)) ||
               (minute < b && days_ok(cal, t->days, day - 1))) {
      return true;
    }
  }
  return false;
}

static bool active_at(const struct calendar *cal, const struct timeint *t,
                      int64_t t_ns) {
  switch (t->kind) {
    case TI_WORKING_TIME:
      return calendar_is_working_time(cal, t_ns);
    case TI_OUTSIDE_WORKING_TIME:
      return !calendar_is_working_time(cal, t_ns);
    case TI_DAYS:
      break;
  }
  cal_day day;
  int minute;
  local_of(cal, t_ns, &day, &minute);
  return days_active(cal, t, day, minute);
}

bool timeint_active(const struct timeint_set *s, const char *name,
                    int64_t t_ns) {
  const struct timeint *t = find(s, name);
  return t ? active_at(s->cal, t, t_ns) : false;
}

int64_t timeint_next_change(const struct timeint_set *s, const char *name,
                            int64_t t_ns) {
  const struct timeint *t = find(s, name);
  if (!t) {
    return INT64_MAX;
  }
  if (t->kind != TI_DAYS) {
    return calendar_next_change(s->cal, t_ns);
  }
  bool now = active_at(s->cal, t, t_ns);
  cal_day day;
  int minute;
  local_of(s->cal, t_ns, &day, &minute);
  for (cal_day d = day; d <= day + CAL_SEARCH_DAYS; d++) {
    /* Candidates of day d: its midnight, then each boundary. */
    for (size_t k = 0; k <= t->nbounds; k++) {
      int m = k == 0 ? 0 : t->bounds[k - 1];
      int64_t u = instant_of(s->cal, d, m);
      if (u <= t_ns) {
        continue;
      }
      if (days_active(s->cal, t, d, m) != now) {
        return u;
      }
    }
  }
  return INT64_MAX;
}
