/*
 * The small syntaxes inside configuration values: durations ("500ms",
 * "30s"), sizes ("64KiB"), ${NAME} environment substitution, and the edit
 * distance behind "did you mean". Each is strict, so that a typo is an
 * error with a reason instead of a silently different setting.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"

struct unit {
  const char *name;
  int64_t mult;
};

/* Largest first, so that formatting picks the shortest exact form. */
static const struct unit duration_units[] = {
    {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1},
};

static const struct unit size_units[] = {
    {"GiB", INT64_C(1) << 30},
    {"MiB", INT64_C(1) << 20},
    {"KiB", INT64_C(1) << 10},
    {"B", 1},
    {"", 1},
};

#define NUNITS(a) (sizeof(a) / sizeof((a)[0]))

/* Parses "<digits><unit>" where unit is one of units (exact spelling). */
static int parse_with_unit(const char *s, const struct unit *units,
                           size_t nunits, int64_t *out) {
  if (s[0] < '0' || s[0] > '9') {
    return IOCD_EPARSE;
  }
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  bool overflow = errno == ERANGE;
  const struct unit *u = NULL;
  for (size_t i = 0; i < nunits; i++) {
    if (strcmp(end, units[i].name) == 0) {
      u = &units[i];
      break;
    }
  }
  if (!u) {
    return IOCD_EPARSE;
  }
  if (overflow || v > INT64_MAX / u->mult) {
    return IOCD_ERANGE;
  }
  *out = (int64_t)v * u->mult;
  return IOCD_OK;
}

int config__parse_duration(const char *s, int64_t *ms) {
  return parse_with_unit(s, duration_units, NUNITS(duration_units), ms);
}

int config_parse_duration(const char *s, int64_t *ms) {
  return config__parse_duration(s, ms);
}

int config__parse_size(const char *s, int64_t *bytes) {
  return parse_with_unit(s, size_units, NUNITS(size_units), bytes);
}

static void format_with_unit(int64_t v, const struct unit *units, size_t nunits,
                             char *out, size_t n) {
  for (size_t i = 0; i < nunits; i++) {
    if (v != 0 && v % units[i].mult == 0) {
      snprintf(out, n, "%" PRId64 "%s", v / units[i].mult, units[i].name);
      return;
    }
  }
  snprintf(out, n, "0%s", units[nunits - 1].name);
}

void config__format_duration(int64_t ms, char *out, size_t n) {
  if (ms == 0) {
    snprintf(out, n, "0s");
    return;
  }
  format_with_unit(ms, duration_units, NUNITS(duration_units), out, n);
}

void config__format_size(int64_t bytes, char *out, size_t n) {
  /* The last entry is the bare number; sizes are shown with "B". */
  format_with_unit(bytes, size_units, NUNITS(size_units) - 1, out, n);
}

/* An expanded string may not grow past this; environment values are small. */
#define EXPAND_MAX (1u << 20)
#define NAME_MAX_LEN 128

static bool name_ok(const char *p, size_t n) {
  if (n == 0 || n > NAME_MAX_LEN || (p[0] >= '0' && p[0] <= '9')) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
          (c >= '0' && c <= '9') || c == '_')) {
      return false;
    }
  }
  return true;
}

int config__expand_env(const char *s, char **out, struct iocd_err *err) {
  struct buf b;
  buf_init(&b, EXPAND_MAX);
  int rc = IOCD_OK;
  const char *p = s;
  while (*p) {
    size_t run = strcspn(p, "$");
    if (run) {
      rc = buf_append(&b, p, run);
      if (rc) {
        goto out;
      }
      p += run;
      continue;
    }
    if (p[1] == '$' && p[2] == '{') {
      rc = buf_puts(&b, "${");
      p += 3;
    } else if (p[1] == '{') {
      const char *name = p + 2;
      const char *close = strchr(name, '}');
      if (!close) {
        rc = iocd_err_set(err, IOCD_EPARSE,
                          "\"${\" without a closing \"}\" "
                          "(write $${ for a literal ${)");
        goto out;
      }
      size_t n = (size_t)(close - name);
      if (!name_ok(name, n)) {
        rc = iocd_err_set(err, IOCD_EPARSE,
                          "\"${%.*s}\" is not a variable reference (a name is "
                          "letters, digits and _, not starting with a digit)",
                          n > 40 ? 40 : (int)n, name);
        goto out;
      }
      char var[NAME_MAX_LEN + 1];
      memcpy(var, name, n);
      var[n] = '\0';
      const char *val = getenv(var);
      if (!val) {
        rc = iocd_err_set(err, IOCD_EPARSE,
                          "environment variable %s is not set", var);
        goto out;
      }
      rc = buf_puts(&b, val);
      p = close + 1;
    } else {
      rc = buf_putc(&b, '$');
      p++;
    }
    if (rc) {
      goto out;
    }
  }
  /* Appending nothing still allocates and terminates an empty result. */
  rc = buf_append(&b, "", 0);
out:
  if (rc == IOCD_ETOOBIG) {
    rc = iocd_err_set(err, IOCD_EPARSE,
                      "longer than %u bytes after ${...} substitution",
                      EXPAND_MAX);
  }
  if (rc) {
    buf_cleanup(&b);
    return rc;
  }
  *out = buf_detach(&b, NULL);
  return IOCD_OK;
}

#define DIST_MAX 64

static char lower(char c) {
  return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

size_t config__distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  if (n > DIST_MAX || m > DIST_MAX) {
    return SIZE_MAX;
  }
  /* Three rows of the optimal string alignment matrix. */
  size_t rows[3][DIST_MAX + 1];
  size_t *pp = rows[0], *prev = rows[1], *cur = rows[2];
  for (size_t j = 0; j <= m; j++) {
    prev[j] = j;
  }
  for (size_t i = 1; i <= n; i++) {
    cur[0] = i;
    for (size_t j = 1; j <= m; j++) {
      size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      size_t d = prev[j] + 1;
      if (cur[j - 1] + 1 < d) {
        d = cur[j - 1] + 1;
      }
      if (prev[j - 1] + cost < d) {
        d = prev[j - 1] + cost;
      }
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
          lower(a[i - 2]) == lower(b[j - 1]) && pp[j - 2] + 1 < d) {
        d = pp[j - 2] + 1;
      }
      cur[j] = d;
    }
    size_t *t = pp;
    pp = prev;
    prev = cur;
    cur = t;
  }
  return prev[m];
}

int config__quote(struct buf *b, const char *s, size_t max) {
  size_t n = strlen(s);
  bool cut = false;
  if (n > max) {
    n = max;
    /* Back up to the start of a character. */
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) {
      n--;
    }
    cut = true;
  }
  int rc = buf_putc(b, '"');
  for (size_t i = 0; i < n && !rc; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      rc = buf_printf(b, "\\%c", c);
    } else if (c == '\n') {
      rc = buf_puts(b, "\\n");
    } else if (c == '\t') {
      rc = buf_puts(b, "\\t");
    } else if (c < 0x20 || c == 0x7F) {
      rc = buf_printf(b, "\\u%04x", c);
    } else {
      rc = buf_putc(b, (char)c);
    }
  }
  if (!rc && cut) {
    rc = buf_puts(b, "...");
  }
  if (!rc) {
    rc = buf_putc(b, '"');
  }
  return rc;
}
