/*
 * The text layer of the configuration file. cJSON parses JSON but neither
 * accepts comments nor says where a value was, so this file blanks comments
 * in place (byte offsets and newlines survive, so cJSON's error pointer still
 * maps to the right line) and scans the accepted text once to record where
 * every key and value starts. The scanner only tokenizes strings, brackets,
 * colons and commas; cJSON does the parsing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"

#define LINES_BLOCK 256

int config__blank_comments(char *s, size_t len, size_t *bad_at) {
  bool in_str = false;
  for (size_t i = 0; i < len; i++) {
    if (in_str) {
      /* A backslash escapes the next byte, as cJSON reads strings. */
      if (s[i] == '\\' && i + 1 < len) {
        i++;
      } else if (s[i] == '"') {
        in_str = false;
      }
      continue;
    }
    if (s[i] == '"') {
      in_str = true;
      continue;
    }
    if (s[i] != '/' || i + 1 >= len) {
      continue;
    }
    if (s[i + 1] == '/') {
      while (i < len && s[i] != '\n') {
        s[i++] = ' ';
      }
      continue;
    }
    if (s[i + 1] == '*') {
      size_t open = i;
      s[i] = ' ';
      s[i + 1] = ' ';
      i += 2;
      while (i + 1 < len && !(s[i] == '*' && s[i + 1] == '/')) {
        if (s[i] != '\n') {
          s[i] = ' ';
        }
        i++;
      }
      if (i + 1 >= len) {
        if (bad_at) {
          *bad_at = open;
        }
        return IOCD_EPARSE;
      }
      s[i] = ' ';
      s[i + 1] = ' ';
      i++;
    }
  }
  return IOCD_OK;
}

/* cJSON nests at most CJSON_NESTING_LIMIT (1000) deep; the scanner only sees
 * text cJSON accepted, so this bound is a guard, not a rule. */
#define SCAN_MAX_DEPTH 1100

struct scan {
  const char *s;
  size_t len;
  size_t i;
  int depth;
  struct config_posmap *m;
};

/* cJSON treats every byte up to and including the space as whitespace. */
static void skip_ws(struct scan *sc) {
  while (sc->i < sc->len && (unsigned char)sc->s[sc->i] <= 32) {
    sc->i++;
  }
}

static int skip_string(struct scan *sc) {
  sc->i++;
  while (sc->i < sc->len && sc->s[sc->i] != '"') {
    if (sc->s[sc->i] == '\\') {
      sc->i++;
    }
    sc->i++;
  }
  if (sc->i >= sc->len) {
    return IOCD_EPARSE;
  }
  sc->i++;
  return IOCD_OK;
}

static int add_node(struct scan *sc, size_t key, size_t *idx) {
  struct config_posmap *m = sc->m;
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    if (cap > SIZE_MAX / sizeof *m->v) {
      return IOCD_ENOMEM;
    }
    struct config_pos *v = realloc(m->v, cap * sizeof *v);
    if (!v) {
      return IOCD_ENOMEM;
    }
    m->v = v;
    m->cap = cap;
  }
  *idx = m->n;
  m->v[m->n++] = (struct config_pos){key, sc->i, 0};
  return IOCD_OK;
}

static int scan_value(struct scan *sc, size_t key);

/* Scans the members of an object or the items of an array; sc->i is on the
 * opening bracket. */
static int scan_container(struct scan *sc) {
  bool object = sc->s[sc->i] == '{';
  char close = object ? '}' : ']';
  if (++sc->depth > SCAN_MAX_DEPTH) {
    return IOCD_EPARSE;
  }
  sc->i++;
  skip_ws(sc);
  if (sc->i < sc->len && sc->s[sc->i] == close) {
    sc->i++;
    sc->depth--;
    return IOCD_OK;
  }
  for (;;) {
    size_t key = SIZE_MAX;
    if (object) {
      skip_ws(sc);
      if (sc->i >= sc->len || sc->s[sc->i] != '"') {
        return IOCD_EPARSE;
      }
      key = sc->i;
      int rc = skip_string(sc);
      if (rc) {
        return rc;
      }
      skip_ws(sc);
      if (sc->i >= sc->len || sc->s[sc->i] != ':') {
        return IOCD_EPARSE;
      }
      sc->i++;
    }
    int rc = scan_value(sc, key);
    if (rc) {
      return rc;
    }
    skip_ws(sc);
    if (sc->i >= sc->len) {
      return IOCD_EPARSE;
    }
    if (sc->s[sc->i] == ',') {
      sc->i++;
      continue;
    }
    if (sc->s[sc->i] != close) {
      return IOCD_EPARSE;
    }
    sc->i++;
    sc->depth--;
    return IOCD_OK;
  }
}

static int scan_value(struct scan *sc, size_t key) {
  skip_ws(sc);
  if (sc->i >= sc->len) {
    return IOCD_EPARSE;
  }
  size_t idx;
  int rc = add_node(sc, key, &idx);
  if (rc) {
    return rc;
  }
  char c = sc->s[sc->i];
  if (c == '{' || c == '[') {
    rc = scan_container(sc);
  } else if (c == '"') {
    rc = skip_string(sc);
  } else {
    /* A number or literal runs to the next whitespace or punctuation. */
    size_t start = sc->i;
    while (sc->i < sc->len && (unsigned char)sc->s[sc->i] > 32 &&
           !memchr(",:[]{}\"", sc->s[sc->i], 7)) {
      sc->i++;
    }
    if (sc->i == start) {
      rc = IOCD_EPARSE;
    }
  }
  if (rc) {
    return rc;
  }
  sc->m->v[idx].end = sc->m->n;
  return IOCD_OK;
}

int config__scan(const char *s, size_t len, struct config_posmap *map) {
  struct scan sc = {s, len, 0, 0, map};
  /* cJSON skips a UTF-8 byte order mark at the start; so does the scan. */
  if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
    sc.i = 3;
  }
  int rc = scan_value(&sc, SIZE_MAX);
  if (rc) {
    return rc;
  }
  skip_ws(&sc);
  return sc.i == len ? IOCD_OK : IOCD_EPARSE;
}

size_t config__find_nul_escape(const char *s, size_t len) {
  bool in_str = false;
  for (size_t i = 0; i < len; i++) {
    if (!in_str) {
      in_str = s[i] == '"';
      continue;
    }
    if (s[i] == '"') {
      in_str = false;
    } else if (s[i] == '\\' && i + 1 < len) {
      if (len - i >= 6 && memcmp(s + i + 1, "u0000", 5) == 0) {
        return i;
      }
      i++;
    }
  }
  return SIZE_MAX;
}

int config__lines_init(struct config_lines *l, const char *text, size_t len) {
  l->chars = NULL;
  l->text = text;
  l->len = len;
  l->n = 1;
  for (size_t i = 0; i < len; i++) {
    if (text[i] == '\n') {
      l->n++;
    }
  }
  l->start = malloc(l->n * sizeof *l->start);
  if (!l->start) {
    l->n = 0;
    return IOCD_ENOMEM;
  }
  size_t k = 0;
  l->start[k++] = 0;
  for (size_t i = 0; i < len; i++) {
    if (text[i] == '\n') {
      l->start[k++] = i + 1;
    }
  }
  /* chars[b]: characters before byte b * LINES_BLOCK, so that a column on
   * a long line (a generated file on one line) costs one block, not the
   * whole line. */
  l->chars = malloc((len / LINES_BLOCK + 1) * sizeof *l->chars);
  if (!l->chars) {
    config__lines_cleanup(l);
    return IOCD_ENOMEM;
  }
  size_t c = 0;
  for (size_t i = 0; i < len; i++) {
    if (i % LINES_BLOCK == 0) {
      l->chars[i / LINES_BLOCK] = c;
    }
    c += ((unsigned char)text[i] & 0xC0) != 0x80;
  }
  l->chars[len / LINES_BLOCK] =
      len % LINES_BLOCK == 0 ? c : l->chars[len / LINES_BLOCK];
  return IOCD_OK;
}

/* Characters (UTF-8 lead bytes and ASCII) in text[0..off). */
static size_t chars_before(const struct config_lines *l, size_t off) {
  size_t c = l->chars[off / LINES_BLOCK];
  for (size_t i = off - off % LINES_BLOCK; i < off; i++) {
    c += ((unsigned char)l->text[i] & 0xC0) != 0x80;
  }
  return c;
}

void config__lines_cleanup(struct config_lines *l) {
  free(l->start);
  free(l->chars);
  l->start = NULL;
  l->chars = NULL;
  l->n = 0;
}

void config__lines_at(const struct config_lines *l, size_t off, int *line,
                      int *col) {
  if (off > l->len) {
    off = l->len;
  }
  if (l->n == 0) {
    *line = 1;
    *col = 1;
    return;
  }
  size_t lo = 0, hi = l->n; /* the answer is in [lo, hi) */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (l->start[mid] <= off) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  size_t from = l->start[lo];
  if (lo == 0 && l->len >= 3 && memcmp(l->text, "\xEF\xBB\xBF", 3) == 0 &&
      off >= 3) {
    from = 3;
  }
  /* Columns count characters: every byte but UTF-8 continuation bytes. */
  size_t c = 1 + chars_before(l, off) - chars_before(l, from);
  *line = lo + 1 > INT32_MAX ? INT32_MAX : (int)(lo + 1);
  *col = c > INT32_MAX ? INT32_MAX : (int)c;
}
