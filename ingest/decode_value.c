/*
 * The `value` payload format: the whole payload is one bare value, such as
 * `12`, `0.5` or `true`, the simplest thing a shell script or a sensor can
 * publish. The topic supplies everything else: the field name comes from a
 * {field} capture, else the subscription's `field`, else "value".
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingest/ingest_int.h"

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Words that strtod would read as NaN or infinity. */
static bool is_non_finite_word(const char *s, size_t n) {
  if (n > 0 && (s[0] == '+' || s[0] == '-')) {
    s++;
    n--;
  }
  static const char *const words[] = {"nan", "inf", "infinity"};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    if (strlen(words[i]) == n && strncasecmp(s, words[i], n) == 0) {
      return true;
    }
  }
  return false;
}

static bool is_integer_literal(const char *s, size_t n) {
  size_t i = (n > 0 && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  if (i == n) {
    return false;
  }
  for (; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
  }
  return true;
}

/* A decimal float: digits with at most one '.', an optional exponent; no
 * hexadecimal floats, which strtod would also take. */
static bool is_float_literal(const char *s, size_t n) {
  size_t i = (n > 0 && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  size_t nd = 0;
  bool dot = false;
  for (; i < n; i++) {
    if (s[i] >= '0' && s[i] <= '9') {
      nd++;
    } else if (s[i] == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (nd == 0) {
    return false;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
      i++;
    }
    size_t ne = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
      ne++;
    }
    if (ne == 0) {
      return false;
    }
  }
  return i == n;
}

static int value_decode(struct decode_ctx *ctx, struct point_batch *pb) {
  const char *s = ctx->payload;
  size_t n = ctx->len;
  while (n > 0 && is_space(s[0])) {
    s++;
    n--;
  }
  while (n > 0 && is_space(s[n - 1])) {
    n--;
  }
  if (n == 0) {
    return ingest__reject(ctx->res, INGEST_MALFORMED, "empty payload");
  }
  const char *fname = "value";
  size_t flen = 5;
  if (ctx->field.p) {
    fname = ctx->field.p;
    flen = ctx->field.len;
  } else if (ctx->sub->field) {
    fname = ctx->sub->field;
    flen = strlen(fname);
  }
  char q[INGEST_QUOTE_SIZE];
  struct point *p;
  int rc =
      ingest__point_new(ctx, pb, ctx->measurement.p, ctx->measurement.len, &p);
  if (rc) {
    return rc;
  }
  if (n == 4 && memcmp(s, "true", 4) == 0) {
    return pb_field_bool(pb, p, fname, flen, true);
  }
  if (n == 5 && memcmp(s, "false", 5) == 0) {
    return pb_field_bool(pb, p, fname, flen, false);
  }
  if (is_non_finite_word(s, n)) {
    return ingest__reject(ctx->res, INGEST_NOT_FINITE, "%s is not finite",
                          ingest__quote(q, sizeof q, s, n));
  }
  if (is_integer_literal(s, n)) {
    int64_t v;
    if (ingest__parse_i64(s, n, &v)) {
      return ingest__reject(ctx->res, INGEST_WRONG_TYPE,
                            "integer %s is out of the int64 range",
                            ingest__quote(q, sizeof q, s, n));
    }
    return pb_field_int(pb, p, fname, flen, v);
  }
  if (is_float_literal(s, n) && n < 512) {
    char text[512];
    memcpy(text, s, n);
    text[n] = '\0';
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end != text + n) {
      return ingest__reject(ctx->res, INGEST_MALFORMED,
                            "expected a number, true or false, got %s",
                            ingest__quote(q, sizeof q, s, n));
    }
    /* ERANGE on overflow gives an infinity, refused here; on underflow a
     * denormal or zero, which is the closest double and kept. */
    if (errno == ERANGE && !isfinite(v)) {
      return ingest__reject(ctx->res, INGEST_NOT_FINITE, "%s is not finite",
                            ingest__quote(q, sizeof q, s, n));
    }
    return pb_field_float(pb, p, fname, flen, v);
  }
  return ingest__reject(ctx->res, INGEST_MALFORMED,
                        "expected a number, true or false, got %s",
                        ingest__quote(q, sizeof q, s, n));
}

const struct decoder_ops ingest__decoder_value = {
    .name = "value",
    .decode = value_decode,
};
