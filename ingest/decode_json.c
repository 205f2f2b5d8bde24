/*
 * The `json` payload format: a JSON object is one point, an array of
 * objects several. Numbers, booleans and (when allowed) strings become
 * fields, nested objects are flattened with '_', and configured members
 * name the timestamp, the measurement and the tags.
 *
 * cJSON keeps every number as a double, which cannot tell 5 from 5.0 and
 * loses integers above 2^53. So before cJSON parses anything, a pre-scan
 * lists the number tokens of the text in document order (and measures the
 * nesting depth, refusing deep input before cJSON recurses into it). The
 * walk below visits cJSON's items in the same document order and pairs the
 * k-th number item with the k-th token: integers are read exactly from the
 * token text. Every number item, even one that is skipped, takes its token,
 * or the pairing would slip.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timefmt.h"
#include "ingest/ingest_int.h"

/* ---- pre-scan and parse (shared with senml) --------------------------- */

static int push_num(struct ingest_scratch *sc, size_t k, size_t off, size_t len,
                    bool is_int) {
  if (k == sc->cap_nums) {
    size_t cap = sc->cap_nums ? sc->cap_nums * 2 : 64;
    struct json_num *p = realloc(sc->nums, cap * sizeof *p);
    if (!p) {
      return IOCD_ENOMEM;
    }
    sc->nums = p;
    sc->cap_nums = cap;
  }
  sc->nums[k].off = (uint32_t)off;
  sc->nums[k].len = (uint32_t)len;
  sc->nums[k].is_int = is_int;
  return IOCD_OK;
}

static bool is_num_char(char c) {
  return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' ||
         c == 'e' || c == 'E';
}

/* Lists the number tokens outside strings and enforces the depth limit.
 * The scan never fails on malformed text: cJSON judges that next. */
static int scan(struct decode_ctx *ctx, size_t *nnums) {
  const char *s = ctx->payload;
  size_t n = ctx->len;
  int depth = 0;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '"') {
      for (i++; i < n && s[i] != '"'; i++) {
        if (s[i] != '\\') {
          continue;
        }
        /* cJSON decodes \u0000 into a NUL that would silently cut the
         * string short. */
        if (n - i >= 6 && memcmp(s + i, "\\u0000", 6) == 0) {
          return ingest__reject(ctx->res, INGEST_MALFORMED,
                                "\\u0000 in a string at byte %zu", i + 1);
        }
        i++;
      }
    } else if (c == '{' || c == '[') {
      if (++depth > ctx->lim->max_json_depth) {
        return ingest__reject(ctx->res, INGEST_TOO_DEEP,
                              "nesting deeper than %d levels at byte %zu",
                              ctx->lim->max_json_depth, i + 1);
      }
    } else if (c == '}' || c == ']') {
      depth--;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t b = i;
      bool is_int = true;
      for (; i < n && is_num_char(s[i]); i++) {
        if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') {
          is_int = false;
        }
      }
      int rc = push_num(ctx->scratch, k++, b, i - b, is_int);
      if (rc) {
        return rc;
      }
      i--;
    }
  }
  *nnums = k;
  return IOCD_OK;
}

static void line_col(const char *s, size_t off, size_t *line, size_t *col) {
  *line = 1;
  *col = 1;
  for (size_t i = 0; i < off; i++) {
    if (s[i] == '\n') {
      (*line)++;
      *col = 1;
    } else {
      (*col)++;
    }
  }
}

int ingest__json_parse(struct decode_ctx *ctx, struct cJSON **root,
                       size_t *nnums) {
  *root = NULL;
  if (ctx->len == 0) {
    return ingest__reject(ctx->res, INGEST_MALFORMED, "empty payload");
  }
  int rc = scan(ctx, nnums);
  if (rc) {
    return rc;
  }
  const char *end = NULL;
  cJSON *r = cJSON_ParseWithLengthOpts(ctx->payload, ctx->len, &end, 0);
  size_t line, col;
  if (!r) {
    size_t off = end ? (size_t)(end - ctx->payload) : 0;
    line_col(ctx->payload, off, &line, &col);
    return ingest__reject(ctx->res, INGEST_MALFORMED,
                          "invalid JSON near line %zu, column %zu", line, col);
  }
  size_t off = (size_t)(end - ctx->payload);
  while (off < ctx->len &&
         (ctx->payload[off] == ' ' || ctx->payload[off] == '\t' ||
          ctx->payload[off] == '\n' || ctx->payload[off] == '\r')) {
    off++;
  }
  if (off < ctx->len) {
    cJSON_Delete(r);
    line_col(ctx->payload, off, &line, &col);
    return ingest__reject(ctx->res, INGEST_MALFORMED,
                          "unexpected text after the JSON value at line %zu, "
                          "column %zu",
                          line, col);
  }
  *root = r;
  return IOCD_OK;
}

const char *ingest__json_type_name(const struct cJSON *item) {
  if (cJSON_IsString(item)) {
    return "string";
  }
  if (cJSON_IsNumber(item)) {
    return "number";
  }
  if (cJSON_IsBool(item)) {
    return "boolean";
  }
  if (cJSON_IsNull(item)) {
    return "null";
  }
  if (cJSON_IsObject(item)) {
    return "object";
  }
  if (cJSON_IsArray(item)) {
    return "array";
  }
  return "invalid value";
}

/* ---- the json decoder ----------------------------------------------- */

struct jwalk {
  struct decode_ctx *ctx;
  struct point_batch *pb;
  struct point *p;
  size_t nnums, next;
  size_t elem; /* 1-based index in a top-level array; 0 for one object */
};

/* Rejects with "element N: " in front when the payload is an array. */
__attribute__((format(printf, 3, 4))) static int jreject(
    struct jwalk *w, enum ingest_reason reason, const char *fmt, ...) {
  char msg[sizeof w->ctx->res->detail];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (w->elem) {
    return ingest__reject(w->ctx->res, reason, "element %zu: %s", w->elem, msg);
  }
  return ingest__reject(w->ctx->res, reason, "%s", msg);
}

static int take_number(struct jwalk *w, const struct json_num **out) {
  if (w->next >= w->nnums) {
    return jreject(w, INGEST_MALFORMED, "number tokens out of step");
  }
  *out = &w->ctx->scratch->nums[w->next++];
  return IOCD_OK;
}

size_t ingest__json_count_numbers(const struct cJSON *item) {
  if (cJSON_IsNumber(item)) {
    return 1;
  }
  size_t n = 0;
  if (cJSON_IsObject(item) || cJSON_IsArray(item)) {
    for (const cJSON *c = item->child; c; c = c->next) {
      n += ingest__json_count_numbers(c);
    }
  }
  return n;
}

static bool str_is(const char *conf, const char *s) {
  return conf && strcmp(conf, s) == 0;
}

static bool is_tag_key(const struct config_subscription *sub,
                       const char *name) {
  for (size_t i = 0; i < sub->ntag_keys; i++) {
    if (str_is(sub->tag_keys[i], name)) {
      return true;
    }
  }
  return false;
}

static const char *unit_name(enum time_unit u) {
  switch (u) {
    case TIME_S:
      return "seconds";
    case TIME_MS:
      return "milliseconds";
    case TIME_US:
      return "microseconds";
    default:
      return "nanoseconds";
  }
}

static int time_member(struct jwalk *w, const cJSON *m,
                       const struct json_num *num) {
  char q[INGEST_QUOTE_SIZE], qv[INGEST_QUOTE_SIZE];
  ingest__quote(q, sizeof q, m->string, strlen(m->string));
  int64_t ts;
  if (cJSON_IsNull(m)) {
    return IOCD_OK;
  }
  if (cJSON_IsString(m)) {
    const char *why;
    size_t n = strlen(m->valuestring);
    if (time_parse_rfc3339(m->valuestring, n, &ts, &why)) {
      return jreject(w, INGEST_BAD_TIME, "%s: %s: %s", q,
                     ingest__quote(qv, sizeof qv, m->valuestring, n), why);
    }
  } else if (num) {
    enum time_unit unit = ingest__number_unit(w->ctx->sub);
    const char *text = w->ctx->payload + num->off;
    int tlen = num->len > 40 ? 40 : (int)num->len;
    if (unit == TIME_RFC3339) {
      return jreject(w, INGEST_BAD_TIME,
                     "%s: expected an RFC 3339 string, got number %.*s", q,
                     tlen, text);
    }
    int rc = ingest__time_epoch_text(text, num->len, unit, &ts);
    if (rc == IOCD_ETYPE) {
      return jreject(w, INGEST_BAD_TIME, "%s: %.*s is not a whole number of %s",
                     q, tlen, text, unit_name(unit));
    }
    if (rc) {
      return jreject(w, INGEST_BAD_TIME, "%s: %.*s %s is out of range", q, tlen,
                     text, unit_name(unit));
    }
  } else {
    return jreject(w, INGEST_BAD_TIME, "%s: expected a timestamp, got %s", q,
                   ingest__json_type_name(m));
  }
  w->p->ts_ns = ts;
  w->p->has_ts = true;
  return IOCD_OK;
}

static int tag_member(struct jwalk *w, const cJSON *m,
                      const struct json_num *num) {
  const char *k = m->string;
  const char *v;
  size_t vn;
  if (cJSON_IsNull(m)) {
    return IOCD_OK;
  }
  if (cJSON_IsString(m)) {
    v = m->valuestring;
    vn = strlen(v);
  } else if (num) {
    v = w->ctx->payload + num->off; /* the number as written */
    vn = num->len;
  } else if (cJSON_IsBool(m)) {
    v = cJSON_IsTrue(m) ? "true" : "false";
    vn = strlen(v);
  } else {
    char q[INGEST_QUOTE_SIZE];
    return jreject(w, INGEST_WRONG_TYPE, "tag %s: expected a string, got %s",
                   ingest__quote(q, sizeof q, k, strlen(k)),
                   ingest__json_type_name(m));
  }
  return pb_tag(w->pb, w->p, k, strlen(k), v, vn, false);
}

static int member(struct jwalk *w, const cJSON *m, bool top);

/* Adds the field named by the key buffer. */
static int value_member(struct jwalk *w, const cJSON *m,
                        const struct json_num *num) {
  struct decode_ctx *ctx = w->ctx;
  const struct buf *kb = &ctx->scratch->key;
  const char *key = kb->data;
  size_t klen = kb->len;
  char q[INGEST_QUOTE_SIZE];
  if (num && num->is_int) {
    int64_t v;
    const char *text = ctx->payload + num->off;
    int rc = ingest__parse_i64(text, num->len, &v);
    if (rc) {
      return jreject(w, INGEST_WRONG_TYPE,
                     "field %s: integer %.*s is out of the int64 range",
                     ingest__quote(q, sizeof q, key, klen),
                     num->len > 40 ? 40 : (int)num->len, text);
    }
    return pb_field_int(w->pb, w->p, key, klen, v);
  }
  if (num) {
    if (!isfinite(m->valuedouble)) {
      return jreject(w, INGEST_NOT_FINITE, "field %s: %.*s is not finite",
                     ingest__quote(q, sizeof q, key, klen),
                     num->len > 40 ? 40 : (int)num->len,
                     ctx->payload + num->off);
    }
    return pb_field_float(w->pb, w->p, key, klen, m->valuedouble);
  }
  if (cJSON_IsBool(m)) {
    return pb_field_bool(w->pb, w->p, key, klen, cJSON_IsTrue(m));
  }
  if (cJSON_IsString(m)) {
    if (!ctx->sub->allow_strings &&
        ingest__declared_type(ctx->sub, w->p->measurement.p,
                              w->p->measurement.len, key,
                              klen) != FIELD_STRING) {
      return jreject(w, INGEST_WRONG_TYPE,
                     "field %s: expected a number or boolean, got string",
                     ingest__quote(q, sizeof q, key, klen));
    }
    return pb_field_string(w->pb, w->p, key, klen, m->valuestring,
                           strlen(m->valuestring));
  }
  if (cJSON_IsNull(m)) {
    return IOCD_OK;
  }
  return jreject(w, INGEST_WRONG_TYPE,
                 "field %s: expected a number, boolean or object, got %s",
                 ingest__quote(q, sizeof q, key, klen),
                 ingest__json_type_name(m));
}

static int member(struct jwalk *w, const cJSON *m, bool top) {
  const struct config_subscription *sub = w->ctx->sub;
  const struct json_num *num = NULL;
  int rc;
  if (cJSON_IsNumber(m)) {
    rc = take_number(w, &num);
    if (rc) {
      return rc;
    }
  }
  const char *name = m->string;
  if (top) {
    if (strcmp(name, sub->time_key ? sub->time_key : "time") == 0) {
      return time_member(w, m, num);
    }
    if (str_is(sub->measurement_key, name)) {
      w->next += ingest__json_count_numbers(m) - (num ? 1 : 0);
      return IOCD_OK; /* read before the point was started */
    }
    if (is_tag_key(sub, name)) {
      return tag_member(w, m, num);
    }
  }
  struct buf *kb = &w->ctx->scratch->key;
  size_t mark = kb->len;
  rc = buf_puts(kb, name);
  if (rc) {
    return rc == IOCD_ETOOBIG ? IOCD_ENOMEM : rc;
  }
  if (cJSON_IsObject(m)) {
    rc = buf_putc(kb, '_');
    for (const cJSON *c = m->child; c && !rc; c = c->next) {
      rc = member(w, c, false);
    }
  } else {
    rc = value_member(w, m, num);
  }
  buf_truncate(kb, mark);
  return rc;
}

static int decode_object(struct jwalk *w, const cJSON *obj) {
  struct decode_ctx *ctx = w->ctx;
  struct str meas = ctx->measurement;
  const char *mkey = ctx->sub->measurement_key;
  if (mkey) {
    const cJSON *mk = cJSON_GetObjectItemCaseSensitive(obj, mkey);
    if (mk && !cJSON_IsNull(mk)) {
      char q[INGEST_QUOTE_SIZE];
      if (!cJSON_IsString(mk)) {
        return jreject(w, INGEST_WRONG_TYPE,
                       "%s: expected a string naming the measurement, got %s",
                       ingest__quote(q, sizeof q, mkey, strlen(mkey)),
                       ingest__json_type_name(mk));
      }
      meas.p = mk->valuestring;
      meas.len = strlen(mk->valuestring);
    }
  }
  int rc = ingest__point_new(ctx, w->pb, meas.p, meas.len, &w->p);
  if (rc) {
    return rc;
  }
  buf_reset(&ctx->scratch->key);
  for (const cJSON *c = obj->child; c && !rc; c = c->next) {
    rc = member(w, c, true);
  }
  return rc;
}

static int json_decode(struct decode_ctx *ctx, struct point_batch *pb) {
  cJSON *root;
  struct jwalk w = {.ctx = ctx, .pb = pb};
  int rc = ingest__json_parse(ctx, &root, &w.nnums);
  if (rc) {
    return rc;
  }
  if (cJSON_IsObject(root)) {
    rc = decode_object(&w, root);
  } else if (cJSON_IsArray(root)) {
    size_t n = (size_t)cJSON_GetArraySize(root);
    if (n > ctx->lim->max_points) {
      rc = ingest__reject(ctx->res, INGEST_TOO_MANY,
                          "%zu points in one message (limit %zu)", n,
                          ctx->lim->max_points);
      goto out;
    }
    for (const cJSON *c = root->child; c && !rc; c = c->next) {
      w.elem++;
      if (!cJSON_IsObject(c)) {
        rc = jreject(&w, INGEST_WRONG_TYPE, "expected an object, got %s",
                     ingest__json_type_name(c));
      } else {
        rc = decode_object(&w, c);
      }
    }
  } else {
    rc = ingest__reject(ctx->res, INGEST_WRONG_TYPE,
                        "expected a JSON object or an array of objects, "
                        "got %s",
                        ingest__json_type_name(root));
  }
  if (!rc && w.next != w.nnums) {
    rc =
        ingest__reject(ctx->res, INGEST_MALFORMED, "number tokens out of step");
  }
out:
  cJSON_Delete(root);
  return rc;
}

const struct decoder_ops ingest__decoder_json = {
    .name = "json",
    .decode = json_decode,
};
