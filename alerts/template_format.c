/*
 * Values (by the rule's unit; the digits are core/numfmt.c's), times and
 * durations as people read them in a notification, in Vietnamese or
 * English, and the escaping of text for HTML and URLs.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alerts/template.h"
#include "alerts/template_int.h"
#include "core/clock.h"
#include "core/numfmt.h"
#include "core/timefmt.h"

static bool en(enum config_language lang) {
  return lang == CONFIG_LANG_EN;
}

/* ---- numbers ------------------------------------------------------------- */

static const char *alert_unit(const struct notice_alert *a) {
  const char *u = notice_label_get(&a->labels, "unit");
  return u ? u : notice_label_get(&a->annotations, "unit");
}

int template_format_value(const struct notice_alert *a, bool has, double v,
                          enum config_language lang, struct buf *out) {
  if (!has) {
    return buf_putc(out, '-');
  }
  const char *u = alert_unit(a);
  if (u && strcmp(u, "ratio") == 0) {
    return numfmt_pct(v, template__numfmt_lang(lang), out);
  }
  int rc = numfmt_number(v, template__numfmt_lang(lang), out);
  if (!rc && u && strcmp(u, "percent") == 0 && isfinite(v)) {
    rc = buf_putc(out, '%');
  }
  return rc;
}

/* ---- times --------------------------------------------------------------- */

/* The local broken-down time of t_ns. */
static void local_tm(int64_t t_ns, int32_t off, struct tm *tm) {
  int64_t s = t_ns / NS_PER_SEC - (t_ns % NS_PER_SEC < 0);
  time_t tt = (time_t)(s + off);
  if (!gmtime_r(&tt, tm)) {
    memset(tm, 0, sizeof *tm);
  }
}

int template_format_time(int64_t t_ns, int32_t utc_offset_s,
                         enum config_language lang, struct buf *out) {
  struct tm tm;
  local_tm(t_ns, utc_offset_s, &tm);
  if (en(lang)) {
    return buf_printf(out, "%02d:%02d on %04d-%02d-%02d", tm.tm_hour, tm.tm_min,
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  }
  return buf_printf(out, "%02d:%02d ngày %02d/%02d/%04d", tm.tm_hour, tm.tm_min,
                    tm.tm_mday, tm.tm_mon + 1, tm.tm_year + 1900);
}

int template_format_duration(int64_t from_ns, int64_t to_ns,
                             enum config_language lang, struct buf *out) {
  long long s =
      to_ns > from_ns ? (long long)((to_ns - from_ns) / NS_PER_SEC) : 0;
  bool e = en(lang);
  if (s < 60) {
    return buf_printf(out, e ? "%lld s" : "%lld giây", s);
  }
  long long d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60;
  if (d) {
    int rc = buf_printf(out, e ? "%lld d" : "%lld ngày", d);
    return rc || !h ? rc : buf_printf(out, e ? " %lld h" : " %lld giờ", h);
  }
  if (h) {
    int rc = buf_printf(out, e ? "%lld h" : "%lld giờ", h);
    return rc || !m ? rc : buf_printf(out, e ? " %lld min" : " %lld phút", m);
  }
  return buf_printf(out, e ? "%lld min" : "%lld phút", m);
}

int template_format_rfc3339(int64_t t_ns, int32_t utc_offset_s,
                            struct buf *out) {
  char s[48];
  time_format_rfc3339(t_ns, utc_offset_s, -1, s, sizeof s);
  return buf_puts(out, s);
}

/* ---- escaping ------------------------------------------------------------ */

int template_html_escape(const char *s, size_t n, struct buf *out) {
  int rc = IOCD_OK;
  size_t run = 0; /* bytes copied as they are, pending */
  for (size_t i = 0; i < n && !rc; i++) {
    const char *ent = NULL;
    switch (s[i]) {
      case '&':
        ent = "&amp;";
        break;
      case '<':
        ent = "&lt;";
        break;
      case '>':
        ent = "&gt;";
        break;
      case '"':
        ent = "&quot;";
        break;
      case '\'':
        ent = "&#39;";
        break;
      default:
        continue;
    }
    rc = buf_append(out, s + run, i - run);
    if (!rc) {
      rc = buf_puts(out, ent);
    }
    run = i + 1;
  }
  return rc ? rc : buf_append(out, s + run, n - run);
}

int template_url_encode(const char *s, struct buf *out) {
  static const char hex[] = "0123456789ABCDEF";
  int rc = IOCD_OK;
  for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
    unsigned char c = *p;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      rc = buf_putc(out, (char)c);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      rc = buf_append(out, e, 3);
    }
  }
  return rc;
}
