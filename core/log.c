/*
 * Line-oriented logging. Each event is formatted into a stack buffer and
 * written with one write(2), so lines from iocd never interleave mid-line.
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"

static enum log_level g_level = LOG_INFO;
static enum log_format g_format = LOG_FMT_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level) {
  g_level = level;
}

void log_set_format(enum log_format fmt) {
  g_format = fmt;
}

enum log_level log_get_level(void) {
  return g_level;
}

int log_level_parse(const char *s, enum log_level *out) {
  for (int i = 0; i <= LOG_DEBUG; i++) {
    if (strcmp(s, level_names[i]) == 0) {
      *out = (enum log_level)i;
      return IOCD_OK;
    }
  }
  return IOCD_EINVAL;
}

bool log_enabled(enum log_level level) {
  return level <= g_level;
}

/* Appends s to out as the inside of a quoted string, escaping what would
 * break the line: quotes, backslashes and control characters. */
static size_t put_escaped(char *out, size_t pos, size_t cap, const char *s) {
  for (; *s && pos + 8 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      out[pos++] = '\\';
      out[pos++] = (char)c;
    } else if (c == '\n') {
      out[pos++] = '\\';
      out[pos++] = 'n';
    } else if (c < 0x20) {
      pos += (size_t)snprintf(out + pos, cap - pos, "\\u%04x", c);
    } else {
      out[pos++] = (char)c;
    }
  }
  return pos;
}

void log_write(enum log_level level, const char *mod, const char *fmt, ...) {
  if (!log_enabled(level)) {
    return;
  }
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);

  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[96];
  snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
           tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);

  char line[4608];
  size_t cap = sizeof line;
  size_t pos;
  if (g_format == LOG_FMT_JSON) {
    pos = (size_t)snprintf(line, cap,
                           "{\"ts\":\"%s\",\"level\":\"%s\",\"mod\":\"%s\","
                           "\"msg\":\"",
                           when, level_names[level], mod);
    pos = put_escaped(line, pos, cap, msg);
    pos += (size_t)snprintf(line + pos, cap - pos, "\"}\n");
  } else {
    pos = (size_t)snprintf(line, cap, "ts=%s level=%s mod=%s msg=\"", when,
                           level_names[level], mod);
    pos = put_escaped(line, pos, cap, msg);
    pos += (size_t)snprintf(line + pos, cap - pos, "\"\n");
  }
  if (pos > cap - 1) {
    pos = cap - 1;
    line[pos - 1] = '\n';
  }
  ssize_t w = write(STDERR_FILENO, line, pos);
  (void)w;
}

bool log_limit_allow(struct log_limit *l, int64_t now_ms, uint32_t burst,
                     int64_t window_ms, uint32_t *suppressed) {
  if (now_ms - l->window_start_ms >= window_ms || now_ms < l->window_start_ms) {
    l->window_start_ms = now_ms;
    l->used = 0;
  }
  if (l->used < burst) {
    l->used++;
    if (suppressed) {
      *suppressed = l->suppressed;
    }
    l->suppressed = 0;
    return true;
  }
  l->suppressed++;
  return false;
}
