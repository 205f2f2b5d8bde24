/*
 * Topic patterns: MQTT topic filters whose levels may also be {name}
 * captures. A capture matches one level, like `+`, and hands the level's
 * text to the pipeline as a tag (or as the measurement or field name for the
 * reserved captures {measurement} and {field}). Parsing validates the
 * pattern once, at configuration time; matching walks the topic and the
 * parsed levels side by side and never allocates.
 */
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "ingest/ingest_int.h"

static int perr(struct iocd_err *err, size_t *col_out, const char *src,
                size_t col, const char *what) {
  char q[INGEST_QUOTE_SIZE];
  /* col is a byte offset + 1; people and editors count characters. */
  size_t chars = 1;
  for (size_t i = 0; i + 1 < col && src[i]; i++) {
    chars += ((unsigned char)src[i] & 0xC0) != 0x80;
  }
  col = chars;
  if (col_out) {
    *col_out = col;
  }
  return iocd_err_set(err, IOCD_EPARSE, "topic pattern %s, column %zu: %s",
                      ingest__quote(q, sizeof q, src, strlen(src)), col, what);
}

/* Checks one level [b, e) of src and classifies it. Columns passed to
 * perr are 1-based byte offsets into src; messages count characters. */
static int parse_level(const char *src, size_t b, size_t e,
                       struct pattern_level *lv, size_t *col,
                       struct iocd_err *err) {
  const char *s = src + b;
  size_t n = e - b;
  if (n == 1 && s[0] == '+') {
    lv->kind = LEVEL_PLUS;
    lv->text = s;
    lv->len = 1;
    return IOCD_OK;
  }
  if (n == 1 && s[0] == '#') {
    lv->kind = LEVEL_HASH;
    lv->text = s;
    lv->len = 1;
    return IOCD_OK;
  }
  const char *open = memchr(s, '{', n);
  if (open) {
    size_t at = (size_t)(open - s);
    if (at != 0) {
      return perr(err, col, src, b + at + 1, "a capture must be a whole level");
    }
    const char *close = memchr(s, '}', n);
    if (!close) {
      return perr(err, col, src, b + 1, "unclosed '{'");
    }
    size_t cl = (size_t)(close - s);
    if (cl == 1) {
      return perr(err, col, src, b + 1, "empty capture name");
    }
    const char *inner = memchr(s + 1, '{', cl - 1);
    if (inner) {
      return perr(err, col, src, b + (size_t)(inner - s) + 1,
                  "'{' inside a capture name");
    }
    if (cl != n - 1) {
      return perr(err, col, src, b + cl + 2, "a capture must be a whole level");
    }
    for (size_t i = 1; i < cl; i++) {
      unsigned char c = (unsigned char)s[i];
      if (c == '+' || c == '#' || c < 0x20 || c == 0x7f) {
        return perr(err, col, src, b + i + 1,
                    "a capture name may not hold '+', '#' or control "
                    "characters");
      }
    }
    lv->kind = LEVEL_CAPTURE;
    lv->text = s + 1;
    lv->len = cl - 1;
    return IOCD_OK;
  }
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '}') {
      return perr(err, col, src, b + i + 1, "'}' without '{'");
    }
    if (s[i] == '+' || s[i] == '#') {
      return perr(err, col, src, b + i + 1,
                  s[i] == '+' ? "'+' must be a whole level"
                              : "'#' must be a whole level");
    }
  }
  lv->kind = LEVEL_LITERAL;
  lv->text = s;
  lv->len = n;
  return IOCD_OK;
}

int ingest__pattern_parse(struct pattern *pat, const char *src, size_t *col,
                          struct iocd_err *err) {
  memset(pat, 0, sizeof *pat);
  if (col) {
    *col = 0;
  }
  if (!src || !*src) {
    return iocd_err_set(err, IOCD_EPARSE, "topic pattern is empty");
  }
  size_t len = strlen(src);
  size_t bad;
  if (!utf8_valid(src, len, &bad)) {
    return perr(err, col, src, bad + 1, "invalid UTF-8");
  }
  size_t nlevels = 1;
  for (size_t i = 0; i < len; i++) {
    nlevels += src[i] == '/';
  }
  int rc = IOCD_ENOMEM;
  pat->src = malloc(len + 1);
  pat->levels = calloc(nlevels, sizeof *pat->levels);
  if (!pat->src || !pat->levels) {
    iocd_err_set(err, rc, "topic pattern: out of memory");
    goto out;
  }
  memcpy(pat->src, src, len + 1);
  pat->nlevels = nlevels;
  size_t b = 0;
  for (size_t k = 0; k < nlevels; k++) {
    const char *slash = memchr(pat->src + b, '/', len - b);
    size_t e = slash ? (size_t)(slash - pat->src) : len;
    struct pattern_level *lv = &pat->levels[k];
    rc = parse_level(pat->src, b, e, lv, col, err);
    if (rc) {
      goto out;
    }
    if (lv->kind == LEVEL_HASH && k != nlevels - 1) {
      rc = perr(err, col, src, b + 1, "'#' must be the last level");
      goto out;
    }
    if (lv->kind == LEVEL_CAPTURE) {
      for (size_t j = 0; j < k; j++) {
        const struct pattern_level *o = &pat->levels[j];
        if (o->kind == LEVEL_CAPTURE && o->len == lv->len &&
            memcmp(o->text, lv->text, lv->len) == 0) {
          rc = perr(err, col, src, b + 1, "duplicate capture name");
          goto out;
        }
      }
      if (pat->ncaptures == INGEST_MAX_CAPTURES) {
        rc = perr(err, col, src, b + 1, "too many captures (at most 16)");
        goto out;
      }
      pat->ncaptures++;
    }
    b = e + 1;
  }
  rc = IOCD_OK;
out:
  if (rc) {
    ingest__pattern_cleanup(pat);
  }
  return rc;
}

void ingest__pattern_cleanup(struct pattern *pat) {
  free(pat->src);
  free(pat->levels);
  memset(pat, 0, sizeof *pat);
}

int ingest__pattern_match(const struct pattern *pat, const char *topic,
                          size_t len, struct capture *caps) {
  int ncaps = 0;
  size_t pos = 0;
  /* MQTT: wildcards at the first level do not match topics that start with
   * '$' (broker-internal topics such as $SYS). */
  bool dollar = len > 0 && topic[0] == '$';
  for (size_t k = 0; k < pat->nlevels; k++) {
    const struct pattern_level *lv = &pat->levels[k];
    if (lv->kind == LEVEL_HASH) {
      /* '#' also matches the parent level: "a/#" matches "a". */
      return (k == 0 && dollar) ? -1 : ncaps;
    }
    if (pos > len) {
      return -1; /* the topic has fewer levels than the pattern */
    }
    const char *slash = memchr(topic + pos, '/', len - pos);
    size_t e = slash ? (size_t)(slash - topic) : len;
    const char *s = topic + pos;
    size_t n = e - pos;
    switch (lv->kind) {
      case LEVEL_LITERAL:
        if (n != lv->len || memcmp(s, lv->text, n) != 0) {
          return -1;
        }
        break;
      case LEVEL_CAPTURE:
        caps[ncaps].name.p = lv->text;
        caps[ncaps].name.len = lv->len;
        caps[ncaps].value.p = s;
        caps[ncaps].value.len = n;
        ncaps++;
        /* fall through */
      case LEVEL_PLUS:
        if (k == 0 && dollar) {
          return -1;
        }
        break;
      case LEVEL_HASH:
        break;
    }
    pos = e + 1;
  }
  return pos == len + 1 ? ncaps : -1;
}

int ingest_topic_filter(const char *pattern, char *out, size_t n,
                        struct iocd_err *err) {
  struct pattern pat;
  int rc = ingest__pattern_parse(&pat, pattern, NULL, err);
  if (rc) {
    return rc;
  }
  size_t need = strlen(pattern) + 1;
  if (!out || n < need) {
    ingest__pattern_cleanup(&pat);
    return iocd_err_set(err, IOCD_EINVAL,
                        "topic filter: buffer of %zu bytes, need %zu", n, need);
  }
  size_t o = 0;
  for (size_t k = 0; k < pat.nlevels; k++) {
    const struct pattern_level *lv = &pat.levels[k];
    if (k > 0) {
      out[o++] = '/';
    }
    if (lv->kind == LEVEL_CAPTURE) {
      out[o++] = '+';
    } else {
      memcpy(out + o, lv->text, lv->len);
      o += lv->len;
    }
  }
  out[o] = '\0';
  ingest__pattern_cleanup(&pat);
  return IOCD_OK;
}
