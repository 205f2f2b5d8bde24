/*
 * The "calendar" section of the configuration: the working calendar that
 * rules with "working_time", during() and working-time ranges such as [2wh]
 * read. Dates ("2021-02-10", ranges "A..B"), time zones without daylight
 * saving time (or a fixed offset), office hours, working weekdays, holidays
 * and make-up working days, each checked with its place in the file.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_int.h"
#include "rules/calendar.h"

#define RFN(n, fn) \
  { .name = n, .type = CW_FN, .set = fn }

/* Dates and times. */

/* Reads exactly n digits at s into *out. */
static bool digits(const char *s, size_t n, int *out) {
  int x = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    x = x * 10 + (s[i] - '0');
  }
  *out = x;
  return true;
}

int config__parse_date(const char *s, size_t n, int32_t *days) {
  cal_day day;
  if (!calendar_parse_ymd(s, n, &day)) {
    return IOCD_EPARSE;
  }
  *days = (int32_t)day;
  return IOCD_OK;
}

void config__format_date(int32_t days, char *out, size_t n) {
  int y, m, d;
  calendar_ymd_from_day((cal_day)days, &y, &m, &d);
  snprintf(out, n, "%04d-%02d-%02d", y, m, d);
}

/* Zones without daylight saving time (tzdata 2024), by UTC offset. A zone
 * with DST cannot be one offset; give it as "+HH:MM" for the season. */
static const struct {
  const char *name;
  int32_t offset_s;
} zones[] = {
    {"Asia/Ho_Chi_Minh", 7 * 3600},
    {"Asia/Saigon", 7 * 3600},
    {"Asia/Bangkok", 7 * 3600},
    {"Asia/Phnom_Penh", 7 * 3600},
    {"Asia/Vientiane", 7 * 3600},
    {"Asia/Jakarta", 7 * 3600},
    {"Asia/Yangon", 6 * 3600 + 1800},
    {"Asia/Dhaka", 6 * 3600},
    {"Asia/Kathmandu", 5 * 3600 + 2700},
    {"Asia/Kolkata", 5 * 3600 + 1800},
    {"Asia/Karachi", 5 * 3600},
    {"Asia/Tashkent", 5 * 3600},
    {"Asia/Dubai", 4 * 3600},
    {"Asia/Riyadh", 3 * 3600},
    {"Europe/Moscow", 3 * 3600},
    {"Asia/Singapore", 8 * 3600},
    {"Asia/Kuala_Lumpur", 8 * 3600},
    {"Asia/Manila", 8 * 3600},
    {"Asia/Shanghai", 8 * 3600},
    {"Asia/Hong_Kong", 8 * 3600},
    {"Asia/Taipei", 8 * 3600},
    {"Australia/Perth", 8 * 3600},
    {"Asia/Tokyo", 9 * 3600},
    {"Asia/Seoul", 9 * 3600},
    {"UTC", 0},
    {"Etc/UTC", 0},
    {"GMT", 0},
};

int config__timezone_offset(const char *tz, int32_t *offset_s) {
  for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
    if (strcmp(tz, zones[i].name) == 0) {
      *offset_s = zones[i].offset_s;
      return IOCD_OK;
    }
  }
  int h, m;
  if (strlen(tz) == 6 && (tz[0] == '+' || tz[0] == '-') && tz[3] == ':' &&
      digits(tz + 1, 2, &h) && digits(tz + 4, 2, &m) && m < 60 &&
      h * 60 + m <= 14 * 60) {
    *offset_s = (tz[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
    return IOCD_OK;
  }
  return IOCD_ENOTFOUND;
}

/* "07:30" to minutes; 24:00 allowed as an end. */
bool config__parse_hhmm(const char *s, int *min) {
  int h, m;
  if (s[2] != ':' || !digits(s, 2, &h) || !digits(s + 3, 2, &m) || m > 59 ||
      h > 24 || (h == 24 && m != 0)) {
    return false;
  }
  *min = h * 60 + m;
  return true;
}

/* The calendar section. */

static void set_timezone(struct cw *c, struct cw_val v, void *base) {
  struct config_calendar *cal = base;
  char *s = cw_get_name(c, v, "a time zone such as \"Asia/Ho_Chi_Minh\"");
  if (!s) {
    return;
  }
  int32_t off;
  if (config__timezone_offset(s, &off) != IOCD_OK) {
    struct cw_desc d;
    cw_quoted(c, s, &d);
    cw_report(
        c, cw_voff(c, v),
        "unknown time zone %s (iocd knows zones without daylight saving "
        "time, e.g. \"Asia/Ho_Chi_Minh\"; give others as an offset such as "
        "\"+07:00\")",
        cw_qs(&d));
    cw_desc_done(&d);
    free(s);
    return;
  }
  free(cal->timezone);
  cal->timezone = s;
  cal->utc_offset_s = off;
}

static void set_office_hours(struct cw *c, struct cw_val v, void *base) {
  struct config_calendar *cal = base;
  if (!cJSON_IsArray(v.j)) {
    cw_report_type(c, v, "an array of \"HH:MM-HH:MM\" strings");
    return;
  }
  size_t n;
  struct cw_val *items = cw_children(c, v, &n);
  if (!items) {
    return;
  }
  struct config_minutes *spans = calloc(n ? n : 1, sizeof *spans);
  if (!spans) {
    c->nomem = true;
    free(items);
    return;
  }
  size_t k = 0;
  bool ok = true;
  for (size_t i = 0; i < n; i++) {
    size_t mark = cw_path_index(c, i);
    char *s = cw_get_str(c, items[i], "a string such as \"07:30-11:30\"", true);
    int a, b;
    if (!s) {
      ok = false;
    } else if (strlen(s) != 11 || s[5] != '-' || !config__parse_hhmm(s, &a) ||
               !config__parse_hhmm(s + 6, &b) || a >= b) {
      struct cw_desc d;
      cw_quoted(c, s, &d);
      cw_report(
          c, cw_voff(c, items[i]),
          "expected office hours \"HH:MM-HH:MM\" with the start before the "
          "end, got %s",
          cw_qs(&d));
      cw_desc_done(&d);
      ok = false;
    } else if (k > 0 && a < spans[k - 1].end) {
      struct cw_desc d;
      cw_quoted(c, s, &d);
      cw_report(
          c, cw_voff(c, items[i]),
          "%s starts before the end of the span before it (list the spans "
          "in order, without overlap)",
          cw_qs(&d));
      cw_desc_done(&d);
      ok = false;
    } else {
      spans[k].start = a;
      spans[k].end = b;
      k++;
    }
    free(s);
    cw_path_pop(c, mark);
  }
  free(items);
  if (!ok) {
    free(spans);
    return;
  }
  free(cal->office_hours);
  cal->office_hours = spans;
  cal->noffice_hours = k;
}

static void set_weekdays(struct cw *c, struct cw_val v, void *base) {
  static const char *const names[] = {"sun", "mon", "tue", "wed",
                                      "thu", "fri", "sat"};
  struct config_calendar *cal = base;
  if (!cJSON_IsArray(v.j)) {
    cw_report_type(c, v, "an array of day names (\"mon\" ... \"sun\")");
    return;
  }
  size_t n;
  struct cw_val *items = cw_children(c, v, &n);
  if (!items) {
    return;
  }
  unsigned days = 0;
  if (n == 0) {
    cw_report(c, cw_voff(c, v), "at least one working weekday is required");
  }
  for (size_t i = 0; i < n; i++) {
    size_t mark = cw_path_index(c, i);
    int d = -1;
    for (int k = 0; k < 7 && cJSON_IsString(items[i].j); k++) {
      if (strcmp(items[i].j->valuestring, names[k]) == 0) {
        d = k;
      }
    }
    if (d < 0) {
      cw_report_type(c, items[i],
                     "\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\" or "
                     "\"sun\"");
    } else if (days & (1u << d)) {
      cw_report(c, cw_voff(c, items[i]), "\"%s\" is listed twice", names[d]);
    } else {
      days |= 1u << d;
    }
    cw_path_pop(c, mark);
  }
  free(items);
  if (days) {
    cal->weekdays = days;
  }
}

/* "2021-02-10" or "2021-02-10..2021-02-16". */
static bool parse_day_range(const char *s, struct config_day_range *r) {
  size_t n = strlen(s);
  if (n == 10) {
    if (config__parse_date(s, 10, &r->first)) {
      return false;
    }
    r->last = r->first;
    return true;
  }
  return n == 22 && s[10] == '.' && s[11] == '.' &&
         config__parse_date(s, 10, &r->first) == IOCD_OK &&
         config__parse_date(s + 12, 10, &r->last) == IOCD_OK;
}

static void get_day_ranges(struct cw *c, struct cw_val v,
                           struct config_day_range **out, size_t *nout) {
  if (!cJSON_IsArray(v.j)) {
    cw_report_type(c, v,
                   "an array of dates (\"2021-02-10\" or "
                   "\"2021-02-10..2021-02-16\")");
    return;
  }
  size_t n;
  struct cw_val *items = cw_children(c, v, &n);
  if (!items) {
    return;
  }
  struct config_day_range *r = calloc(n ? n : 1, sizeof *r);
  if (!r) {
    c->nomem = true;
    free(items);
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    size_t mark = cw_path_index(c, i);
    char *s = cw_get_str(c, items[i], "a date such as \"2021-02-10\"", true);
    if (s && !parse_day_range(s, &r[k])) {
      struct cw_desc d;
      cw_quoted(c, s, &d);
      cw_report(c, cw_voff(c, items[i]),
                "expected a date \"YYYY-MM-DD\" or a range "
                "\"YYYY-MM-DD..YYYY-MM-DD\", got %s",
                cw_qs(&d));
      cw_desc_done(&d);
    } else if (s && r[k].first > r[k].last) {
      struct cw_desc d;
      cw_quoted(c, s, &d);
      cw_report(c, cw_voff(c, items[i]), "the range %s ends before it starts",
                cw_qs(&d));
      cw_desc_done(&d);
    } else if (s) {
      k++;
    }
    free(s);
    cw_path_pop(c, mark);
  }
  free(items);
  free(*out);
  *out = r;
  *nout = k;
}

static void set_holidays(struct cw *c, struct cw_val v, void *base) {
  struct config_calendar *cal = base;
  get_day_ranges(c, v, &cal->holidays, &cal->nholidays);
}

static void set_workdays(struct cw *c, struct cw_val v, void *base) {
  struct config_calendar *cal = base;
  get_day_ranges(c, v, &cal->workdays, &cal->nworkdays);
}

/* A date both off and worked is a contradiction in the file. */
static void calendar_check(struct cw *c, struct cw_val v, void *base) {
  const struct config_calendar *cal = base;
  struct cw_val wv;
  if (!cw_find_child(c, v, "workdays", &wv) || !cJSON_IsArray(wv.j)) {
    return;
  }
  for (size_t w = 0; w < cal->nworkdays; w++) {
    for (size_t h = 0; h < cal->nholidays; h++) {
      const struct config_day_range *a = &cal->workdays[w];
      const struct config_day_range *b = &cal->holidays[h];
      if (a->first <= b->last && b->first <= a->last) {
        char day[16];
        config__format_date(a->first > b->first ? a->first : b->first, day,
                            sizeof day);
        cw_report_key(c, "workdays", cw_voff(c, wv),
                      "%s is also a holiday (holidays[%zu])", day, h);
        return;
      }
    }
  }
}

#define T struct config_calendar
static const struct cw_key calendar_keys[] = {
    RFN("timezone", set_timezone), RFN("office_hours", set_office_hours),
    RFN("weekdays", set_weekdays), RFN("holidays", set_holidays),
    RFN("workdays", set_workdays),
};
#undef T
const struct cw_object config__calendar_obj =
    CW_OBJECT(calendar_keys, NULL, calendar_check);

void config__calendar_defaults(struct cw *c, struct config_calendar *cal) {
  cal->timezone = strdup("Asia/Ho_Chi_Minh");
  cal->utc_offset_s = 7 * 3600;
  cal->office_hours = calloc(2, sizeof *cal->office_hours);
  if (!cal->timezone || !cal->office_hours) {
    c->nomem = true;
    return;
  }
  cal->office_hours[0] = (struct config_minutes){7 * 60 + 30, 11 * 60 + 30};
  cal->office_hours[1] = (struct config_minutes){13 * 60 + 30, 17 * 60};
  cal->noffice_hours = 2;
  cal->weekdays = 0x3E;
}
