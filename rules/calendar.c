/*
 * The working calendar: which instants are working time, how much working
 * time lies between two instants, and where the next start or end of office
 * hours is. Everything is computed day by day in local time (UTC plus a
 * fixed offset), so a query costs the number of days it spans; searches
 * stop after CAL_SEARCH_DAYS so that a calendar without working time cannot
 * loop forever.
 *
 * Holiday and make-up ranges are sorted and merged at creation, so a date
 * lookup is a binary search.
 */
#include "rules/calendar.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"

#define NS_PER_MIN (INT64_C(60) * NS_PER_SEC)
#define NS_PER_DAY (INT64_C(86400) * NS_PER_SEC)
#define MAX_OFFSET_S (18 * 3600)
#define DEFAULT_OFFSET_S (7 * 3600)

struct calendar {
  char *name;
  int64_t offset_ns;
  struct cal_span spans[CAL_MAX_SPANS];
  size_t nspans;
  unsigned weekdays;
  struct cal_dates *holidays; /* sorted, merged */
  size_t nholidays;
  struct cal_dates *workdays; /* sorted, merged */
  size_t nworkdays;
  char *canonical;
};

static const struct cal_span default_spans[] = {
    {7 * 60 + 30, 11 * 60 + 30},
    {13 * 60 + 30, 17 * 60},
};

/* ---- day numbers --------------------------------------------------------- */

/* Howard Hinnant's days_from_civil: exact for the proleptic Gregorian
 * calendar. */
cal_day calendar_day_from_ymd(int y, int m, int d) {
  y -= m <= 2;
  int era = (y >= 0 ? y : y - 399) / 400;
  int yoe = y - era * 400;
  int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return (cal_day)(era * 146097 + doe - 719468);
}

void calendar_ymd_from_day(cal_day day, int *y, int *m, int *d) {
  int z = (int)day + 719468;
  int era = (z >= 0 ? z : z - 146096) / 146097;
  int doe = z - era * 146097;
  int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = yoe + era * 400 + (*m <= 2);
}

void calendar_format_date(cal_day day, char out[11]) {
  int y, m, d;
  calendar_ymd_from_day(day, &y, &m, &d);
  /* The moduli keep the text at 10 characters whatever the day. */
  snprintf(out, 11, "%04u-%02u-%02u", (unsigned)y % 10000u,
           (unsigned)m % 100u, (unsigned)d % 100u);
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) {
    q--;
  }
  return q;
}

/* Local midnight starting day, as UTC nanoseconds. Days are bounded by the
 * int64 range of instants; callers pass days derived from instants. */
static int64_t day_start(const struct calendar *c, cal_day day) {
  int64_t lim = INT64_MAX / NS_PER_DAY - 1;
  if (day > lim) {
    return INT64_MAX - NS_PER_DAY * 2;
  }
  if (day < -lim) {
    return INT64_MIN + NS_PER_DAY * 2;
  }
  return (int64_t)day * NS_PER_DAY - c->offset_ns;
}

cal_day calendar_day_of(const struct calendar *c, int64_t t_ns) {
  int64_t local;
  if (c->offset_ns > 0 && t_ns > INT64_MAX - c->offset_ns) {
    local = INT64_MAX;
  } else if (c->offset_ns < 0 && t_ns < INT64_MIN - c->offset_ns) {
    local = INT64_MIN;
  } else {
    local = t_ns + c->offset_ns;
  }
  return (cal_day)floor_div(local, NS_PER_DAY);
}

/* ---- working days -------------------------------------------------------- */

static bool in_dates(const struct cal_dates *v, size_t n, cal_day day) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v[mid].last < day) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo < n && v[lo].first <= day;
}

static int weekday_of(cal_day day) {
  int w = (int)(((int64_t)day + 4) % 7); /* day 0 was a Thursday */
  return w < 0 ? w + 7 : w;
}

bool calendar_is_working_date(const struct calendar *c, cal_day day) {
  if (in_dates(c->workdays, c->nworkdays, day)) {
    return true;
  }
  if (in_dates(c->holidays, c->nholidays, day)) {
    return false;
  }
  return (c->weekdays >> weekday_of(day)) & 1u;
}

bool calendar_is_working_day(const struct calendar *c, int64_t t_ns) {
  return calendar_is_working_date(c, calendar_day_of(c, t_ns));
}

bool calendar_is_working_time(const struct calendar *c, int64_t t_ns) {
  cal_day day = calendar_day_of(c, t_ns);
  if (!calendar_is_working_date(c, day)) {
    return false;
  }
  int64_t into = t_ns - day_start(c, day);
  for (size_t i = 0; i < c->nspans; i++) {
    if (into >= c->spans[i].start_min * NS_PER_MIN &&
        into < c->spans[i].end_min * NS_PER_MIN) {
      return true;
    }
  }
  return false;
}

/* The instants [a, b) of span i of day. */
static void span_at(const struct calendar *c, cal_day day, size_t i,
                    int64_t *a, int64_t *b) {
  int64_t base = day_start(c, day);
  *a = base + c->spans[i].start_min * NS_PER_MIN;
  *b = base + c->spans[i].end_min * NS_PER_MIN;
}

int64_t calendar_working_ns(const struct calendar *c, int64_t from_ns,
                            int64_t to_ns) {
  if (to_ns <= from_ns) {
    return 0;
  }
  int64_t total = 0;
  cal_day last = calendar_day_of(c, to_ns - 1);
  for (cal_day day = calendar_day_of(c, from_ns); day <= last; day++) {
    if (!calendar_is_working_date(c, day)) {
      continue;
    }
    for (size_t i = 0; i < c->nspans; i++) {
      int64_t a, b;
      span_at(c, day, i, &a, &b);
      if (a < from_ns) {
        a = from_ns;
      }
      if (b > to_ns) {
        b = to_ns;
      }
      if (b > a) {
        total += b - a;
      }
    }
  }
  return total;
}

int64_t calendar_working_start(const struct calendar *c, int64_t t_ns,
                               int64_t d_ns) {
  if (d_ns <= 0) {
    return t_ns;
  }
  int64_t left = d_ns;
  cal_day first = calendar_day_of(c, t_ns);
  for (cal_day day = first; day > first - CAL_SEARCH_DAYS; day--) {
    if (!calendar_is_working_date(c, day)) {
      continue;
    }
    for (size_t i = c->nspans; i-- > 0;) {
      int64_t a, b;
      span_at(c, day, i, &a, &b);
      if (b > t_ns) {
        b = t_ns;
      }
      if (b <= a) {
        continue;
      }
      if (left <= b - a) {
        return b - left;
      }
      left -= b - a;
    }
  }
  return INT64_MIN;
}

int64_t calendar_add_working(const struct calendar *c, int64_t t_ns,
                             int64_t d_ns) {
  if (d_ns <= 0) {
    return t_ns;
  }
  int64_t left = d_ns;
  cal_day first = calendar_day_of(c, t_ns);
  for (cal_day day = first; day < first + CAL_SEARCH_DAYS; day++) {
    if (!calendar_is_working_date(c, day)) {
      continue;
    }
    for (size_t i = 0; i < c->nspans; i++) {
      int64_t a, b;
      span_at(c, day, i, &a, &b);
      if (a < t_ns) {
        a = t_ns;
      }
      if (b <= a) {
        continue;
      }
      if (left <= b - a) {
        return a + left;
      }
      left -= b - a;
    }
  }
  return INT64_MAX;
}

int64_t calendar_next_change(const struct calendar *c, int64_t t_ns) {
  bool now = calendar_is_working_time(c, t_ns);
  cal_day first = calendar_day_of(c, t_ns);
  for (cal_day day = first; day < first + CAL_SEARCH_DAYS; day++) {
    if (!calendar_is_working_date(c, day)) {
      continue;
    }
    /* Adjacent spans, or a span to midnight followed by one from midnight,
     * are one stretch: only a boundary where the answer flips counts. */
    for (size_t i = 0; i < c->nspans; i++) {
      int64_t a, b;
      span_at(c, day, i, &a, &b);
      if (a > t_ns && calendar_is_working_time(c, a) != now) {
        return a;
      }
      if (b > t_ns && calendar_is_working_time(c, b) != now) {
        return b;
      }
    }
  }
  return INT64_MAX;
}

bool calendar_during(const struct calendar *c, int64_t from_ns,
                     int64_t to_ns) {
  if (to_ns < from_ns) {
    return false;
  }
  if (!calendar_is_working_time(c, to_ns)) {
    return false;
  }
  return calendar_working_ns(c, from_ns, to_ns) == to_ns - from_ns;
}

int64_t calendar_during_next(const struct calendar *c, int64_t t_ns,
                             int64_t d_ns) {
  /* during(u - d, u) can only flip when u or u - d crosses a boundary. */
  int64_t u1 = calendar_next_change(c, t_ns);
  int64_t u2 = INT64_MAX;
  if (d_ns > 0) {
    int64_t b = calendar_next_change(c, t_ns - d_ns);
    if (b != INT64_MAX && b <= INT64_MAX - d_ns) {
      u2 = b + d_ns;
    }
  }
  int64_t u = u1 < u2 ? u1 : u2;
  return u > t_ns ? u : t_ns + 1;
}

int64_t calendar_span_bound(const struct calendar *c, int64_t d_ns) {
  if (d_ns <= 0) {
    return 0;
  }
  /* Look at every day around the configured dates (and two ordinary weeks),
   * ending the d of working time at each midnight: the longest wall-clock
   * span seen, plus a day for ends inside a day, bounds them all. */
  cal_day lo = 0, hi = 14;
  for (size_t i = 0; i < c->nholidays; i++) {
    if (i == 0 || c->holidays[i].first < lo) {
      lo = c->holidays[i].first;
    }
    if (i == 0 || c->holidays[i].last > hi) {
      hi = c->holidays[i].last;
    }
  }
  lo -= 14;
  hi += 14;
  if (hi - lo > CAL_SEARCH_DAYS * 4) {
    lo = hi - CAL_SEARCH_DAYS * 4;
  }
  int64_t worst = d_ns;
  for (cal_day day = lo; day <= hi; day++) {
    int64_t t = day_start(c, day + 1);
    int64_t s = calendar_working_start(c, t, d_ns);
    if (s == INT64_MIN) {
      return d_ns + (int64_t)CAL_SEARCH_DAYS * NS_PER_DAY;
    }
    if (t - s > worst) {
      worst = t - s;
    }
  }
  return worst + NS_PER_DAY;
}

/* ---- creation ------------------------------------------------------------ */

static int cmp_dates(const void *a, const void *b) {
  const struct cal_dates *x = a, *y = b;
  return x->first < y->first ? -1 : x->first > y->first;
}

/* Copies, sorts and merges n ranges into *out. */
static int copy_dates(const struct cal_dates *in, size_t n,
                      struct cal_dates **out, size_t *nout) {
  *out = NULL;
  *nout = 0;
  if (n == 0) {
    return IOCD_OK;
  }
  struct cal_dates *v = malloc(n * sizeof *v);
  if (!v) {
    return IOCD_ENOMEM;
  }
  memcpy(v, in, n * sizeof *v);
  qsort(v, n, sizeof *v, cmp_dates);
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    if (w > 0 && v[i].first <= v[w - 1].last + 1) {
      if (v[i].last > v[w - 1].last) {
        v[w - 1].last = v[i].last;
      }
      continue;
    }
    v[w++] = v[i];
  }
  *out = v;
  *nout = w;
  return IOCD_OK;
}

static int check_dates(const struct cal_dates *v, size_t n, const char *name,
                       const char *what, struct iocd_err *err) {
  if (n > CAL_MAX_DATES) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "calendar %s: %s: more than %d entries", name, what,
                        CAL_MAX_DATES);
  }
  if (n && !v) {
    return iocd_err_set(err, IOCD_EINVAL, "calendar %s: %s: missing", name,
                        what);
  }
  for (size_t i = 0; i < n; i++) {
    if (v[i].last < v[i].first) {
      char a[11], b[11];
      calendar_format_date(v[i].first, a);
      calendar_format_date(v[i].last, b);
      return iocd_err_set(err, IOCD_EINVAL,
                          "calendar %s: %s[%zu]: %s..%s ends before it starts",
                          name, what, i, a, b);
    }
  }
  return IOCD_OK;
}

static int put_dates(struct buf *b, const char *what,
                     const struct cal_dates *v, size_t n) {
  int rc = buf_printf(b, ";%s=", what);
  for (size_t i = 0; i < n && !rc; i++) {
    char x[11], y[11];
    calendar_format_date(v[i].first, x);
    calendar_format_date(v[i].last, y);
    rc = buf_printf(b, "%s%s..%s", i ? "," : "", x, y);
  }
  return rc;
}

static char *make_canonical(const struct calendar *c) {
  struct buf b;
  buf_init(&b, 1u << 20);
  int rc = buf_printf(&b, "name=%s;offset=%lld;hours=", c->name,
                      (long long)(c->offset_ns / NS_PER_SEC));
  for (size_t i = 0; i < c->nspans && !rc; i++) {
    rc = buf_printf(&b, "%s%02d:%02d-%02d:%02d", i ? "," : "",
                    c->spans[i].start_min / 60, c->spans[i].start_min % 60,
                    c->spans[i].end_min / 60, c->spans[i].end_min % 60);
  }
  if (!rc) {
    rc = buf_printf(&b, ";weekdays=%u", c->weekdays);
  }
  if (!rc) {
    rc = put_dates(&b, "holidays", c->holidays, c->nholidays);
  }
  if (!rc) {
    rc = put_dates(&b, "workdays", c->workdays, c->nworkdays);
  }
  if (rc) {
    buf_cleanup(&b);
    return NULL;
  }
  return buf_detach(&b, NULL);
}

struct calendar *calendar_new(const struct calendar_def *def,
                              struct iocd_err *err) {
  static const struct calendar_def defaults = {0};
  if (!def) {
    def = &defaults;
  }
  const char *name = def->name && *def->name ? def->name : "office_hours";
  const struct cal_span *spans = def->hours;
  size_t nspans = def->nhours;
  if (nspans == 0) {
    spans = default_spans;
    nspans = sizeof default_spans / sizeof default_spans[0];
  }
  if (nspans > CAL_MAX_SPANS || !spans) {
    iocd_err_set(err, IOCD_EINVAL, "calendar %s: hours: more than %d spans",
                 name, CAL_MAX_SPANS);
    return NULL;
  }
  for (size_t i = 0; i < nspans; i++) {
    const struct cal_span *s = &spans[i];
    if (s->start_min < 0 || s->end_min > 1440 || s->start_min >= s->end_min) {
      iocd_err_set(err, IOCD_EINVAL,
                   "calendar %s: hours[%zu]: %02d:%02d-%02d:%02d is not a "
                   "span of the day (start before end, within 00:00-24:00)",
                   name, i, s->start_min / 60, s->start_min % 60,
                   s->end_min / 60, s->end_min % 60);
      return NULL;
    }
    if (i > 0 && s->start_min < spans[i - 1].end_min) {
      iocd_err_set(err, IOCD_EINVAL,
                   "calendar %s: hours[%zu]: starts before hours[%zu] ends "
                   "(list the spans in order, without overlap)",
                   name, i, i - 1);
      return NULL;
    }
  }
  int32_t off = def->utc_offset_set ? def->utc_offset_s : DEFAULT_OFFSET_S;
  if (off < -MAX_OFFSET_S || off > MAX_OFFSET_S) {
    iocd_err_set(err, IOCD_EINVAL,
                 "calendar %s: utc offset %d s is beyond +-18 hours", name,
                 (int)off);
    return NULL;
  }
  if (def->weekdays & ~0x7fu) {
    iocd_err_set(err, IOCD_EINVAL, "calendar %s: weekdays: unknown bits",
                 name);
    return NULL;
  }
  if (check_dates(def->holidays, def->nholidays, name, "holidays", err) ||
      check_dates(def->workdays, def->nworkdays, name, "workdays", err)) {
    return NULL;
  }
  struct calendar *c = calloc(1, sizeof *c);
  if (!c) {
    goto nomem;
  }
  size_t nlen = strlen(name);
  c->name = malloc(nlen + 1);
  if (!c->name) {
    goto nomem;
  }
  memcpy(c->name, name, nlen + 1);
  c->offset_ns = (int64_t)off * NS_PER_SEC;
  memcpy(c->spans, spans, nspans * sizeof *spans);
  c->nspans = nspans;
  c->weekdays = def->weekdays ? def->weekdays : CAL_MON_FRI;
  if (copy_dates(def->holidays, def->nholidays, &c->holidays,
                 &c->nholidays) ||
      copy_dates(def->workdays, def->nworkdays, &c->workdays,
                 &c->nworkdays)) {
    goto nomem;
  }
  c->canonical = make_canonical(c);
  if (!c->canonical) {
    goto nomem;
  }
  return c;
nomem:
  calendar_free(c);
  iocd_err_set(err, IOCD_ENOMEM, "calendar %s: out of memory", name);
  return NULL;
}

void calendar_free(struct calendar *c) {
  if (!c) {
    return;
  }
  free(c->name);
  free(c->holidays);
  free(c->workdays);
  free(c->canonical);
  free(c);
}

const char *calendar_name(const struct calendar *c) {
  return c->name;
}

int32_t calendar_utc_offset(const struct calendar *c) {
  return (int32_t)(c->offset_ns / NS_PER_SEC);
}

const char *calendar_canonical(const struct calendar *c) {
  return c->canonical;
}

/* ---- parsing ------------------------------------------------------------- */

/* Reads exactly n digits at s into *v. */
static bool digits(const char *s, size_t n, int *v) {
  int x = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    x = x * 10 + (s[i] - '0');
  }
  *v = x;
  return true;
}

static int days_in_month(int y, int m) {
  static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : dm[m - 1];
}

bool calendar_parse_ymd(const char *s, size_t n, cal_day *day) {
  int y, m, d;
  if (n != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, &y) ||
      !digits(s + 5, 2, &m) || !digits(s + 8, 2, &d)) {
    return false;
  }
  if (y < 1970 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) {
    return false;
  }
  *day = calendar_day_from_ymd(y, m, d);
  return true;
}

int calendar_parse_date(const char *s, cal_day *day, struct iocd_err *err) {
  if (!s || !calendar_parse_ymd(s, strlen(s), day)) {
    return iocd_err_set(err, IOCD_EPARSE, "\"%s\" is not a date (YYYY-MM-DD)",
                        s ? s : "");
  }
  return IOCD_OK;
}

int calendar_parse_dates(const char *s, struct cal_dates *out,
                         struct iocd_err *err) {
  if (!s) {
    return iocd_err_set(err, IOCD_EPARSE, "missing date");
  }
  const char *dots = strstr(s, "..");
  if (!dots) {
    int rc = calendar_parse_date(s, &out->first, err);
    out->last = out->first;
    return rc;
  }
  struct cal_dates r;
  if (!calendar_parse_ymd(s, (size_t)(dots - s), &r.first) ||
      !calendar_parse_ymd(dots + 2, strlen(dots + 2), &r.last)) {
    return iocd_err_set(err, IOCD_EPARSE,
                        "\"%s\" is not a date or a range of dates "
                        "(YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD)",
                        s);
  }
  if (r.last < r.first) {
    return iocd_err_set(err, IOCD_EPARSE,
                        "\"%s\": the range ends before it starts", s);
  }
  *out = r;
  return IOCD_OK;
}

/* "HH:MM" in s[0..5) into minutes; 24:00 only when end is true. */
static bool parse_hhmm(const char *s, bool end, int *min) {
  int h, m;
  if (s[2] != ':' || !digits(s, 2, &h) || !digits(s + 3, 2, &m) || m > 59) {
    return false;
  }
  if (h > 24 || (h == 24 && (m != 0 || !end))) {
    return false;
  }
  *min = h * 60 + m;
  return true;
}

int calendar_parse_span(const char *s, struct cal_span *out,
                        struct iocd_err *err) {
  struct cal_span sp;
  if (!s || strlen(s) != 11 || s[5] != '-' ||
      !parse_hhmm(s, false, &sp.start_min) ||
      !parse_hhmm(s + 6, true, &sp.end_min)) {
    return iocd_err_set(err, IOCD_EPARSE,
                        "\"%s\" is not a span of office hours (HH:MM-HH:MM)",
                        s ? s : "");
  }
  if (sp.end_min <= sp.start_min) {
    return iocd_err_set(err, IOCD_EPARSE,
                        "\"%s\": office hours end before they start", s);
  }
  *out = sp;
  return IOCD_OK;
}

static const char *const wday_names[] = {
    "sunday", "monday", "tuesday", "wednesday", "thursday", "friday",
    "saturday",
};

/* A weekday name in s[0..n), 3 letters or in full, any case. */
static int parse_wday(const char *s, size_t n) {
  char low[16];
  if (n < 3 || n >= sizeof low) {
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    low[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
  }
  low[n] = '\0';
  for (int w = 0; w < 7; w++) {
    if ((n == 3 && memcmp(low, wday_names[w], 3) == 0) ||
        strcmp(low, wday_names[w]) == 0) {
      return w;
    }
  }
  return -1;
}

int calendar_parse_weekdays(const char *s, unsigned *bits,
                            struct iocd_err *err) {
  if (!s || !*s) {
    return iocd_err_set(err, IOCD_EPARSE, "empty list of weekdays");
  }
  unsigned acc = 0;
  const char *p = s;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    while (n > 0 && *p == ' ') {
      p++;
      n--;
    }
    while (n > 0 && p[n - 1] == ' ') {
      n--;
    }
    const char *dash = memchr(p, '-', n);
    int a, b;
    if (dash) {
      a = parse_wday(p, (size_t)(dash - p));
      b = parse_wday(dash + 1, n - (size_t)(dash - p) - 1);
    } else {
      a = b = parse_wday(p, n);
    }
    if (a < 0 || b < 0) {
      return iocd_err_set(err, IOCD_EPARSE,
                          "\"%.*s\" is not a weekday or a range of weekdays "
                          "(mon, tuesday, mon-fri)",
                          (int)n, p);
    }
    for (int w = a;; w = (w + 1) % 7) {
      acc |= 1u << w;
      if (w == b) {
        break;
      }
    }
    if (!comma) {
      break;
    }
    p = comma + 1;
  }
  *bits |= acc;
  return IOCD_OK;
}

static const struct {
  const char *name;
  int32_t offset_s;
} zones[] = {
    {"Asia/Ho_Chi_Minh", 7 * 3600}, {"Asia/Saigon", 7 * 3600},
    {"Asia/Bangkok", 7 * 3600},     {"Asia/Jakarta", 7 * 3600},
    {"UTC", 0},                     {"Etc/UTC", 0},
    {"Z", 0},
};

int calendar_parse_utc_offset(const char *s, int32_t *seconds,
                              struct iocd_err *err) {
  if (!s) {
    return iocd_err_set(err, IOCD_EPARSE, "missing UTC offset");
  }
  for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
    if (strcmp(s, zones[i].name) == 0) {
      *seconds = zones[i].offset_s;
      return IOCD_OK;
    }
  }
  const char *p = s;
  if (strncmp(p, "UTC", 3) == 0) {
    p += 3;
  }
  if (*p != '+' && *p != '-') {
    goto bad;
  }
  int sign = *p == '-' ? -1 : 1;
  p++;
  size_t n = strlen(p);
  int h = 0, m = 0;
  if (n == 1 || n == 2) {
    if (!digits(p, n, &h)) {
      goto bad;
    }
  } else if (n == 4) {
    if (!digits(p, 2, &h) || !digits(p + 2, 2, &m)) {
      goto bad;
    }
  } else if (n == 5 && p[2] == ':') {
    if (!digits(p, 2, &h) || !digits(p + 3, 2, &m)) {
      goto bad;
    }
  } else {
    goto bad;
  }
  if (m > 59 || h * 3600 + m * 60 > MAX_OFFSET_S) {
    goto bad;
  }
  *seconds = sign * (h * 3600 + m * 60);
  return IOCD_OK;
bad:
  return iocd_err_set(err, IOCD_EPARSE,
                      "\"%s\" is not a UTC offset (+07:00) or a known "
                      "fixed-offset zone (Asia/Ho_Chi_Minh)",
                      s);
}
