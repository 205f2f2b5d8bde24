/*
 * The `senml` payload format: SenML JSON (RFC 8428), the standard pack of
 * sensor records. Base fields (bn, bt, bu, bv, bs) carry over from a record
 * to the ones after it; each record with a value resolves to one point whose
 * field key is the resolved name (bn + n) and whose `unit` tag is the
 * resolved unit. Values are floats (bv + v), strings (vs) or booleans (vb);
 * a sum (bs + s) becomes the field "<name>_sum". Data values (vd) have no
 * place in InfluxDB and are refused.
 *
 * Times are exact: bt and t are read from their decimal text (the number
 * tokens of the JSON pre-scan, see decode_json.c), summed in nanoseconds,
 * and a resolved time below 2^28 s is relative to the arrival time (RFC 8428
 * section 4.5.3).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ingest/ingest_int.h"

/* 2^28 seconds in nanoseconds: resolved times below it are relative. */
#define SENML_RELATIVE_NS (INT64_C(268435456) * INT64_C(1000000000))

struct base {
  const char *bn, *bu;
  int64_t bt;
  double bv, bs;
};

struct record {
  const char *bn, *bu, *n, *u, *vs;
  bool has_bt, has_bv, has_bs;
  bool has_v, has_vs, has_vb, has_s, has_t;
  int64_t bt, t;
  double bv, bs, v, s;
  bool vb;
};

struct swalk {
  struct decode_ctx *ctx;
  size_t nnums, next;
  size_t index; /* 1-based record number, for messages */
};

__attribute__((format(printf, 3, 4))) static int sreject(
    struct swalk *w, enum ingest_reason reason, const char *fmt, ...) {
  char msg[sizeof w->ctx->res->detail];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ingest__reject(w->ctx->res, reason, "record %zu: %s", w->index, msg);
}

static int want(struct swalk *w, const cJSON *m, bool ok, const char *what) {
  if (ok) {
    return IOCD_OK;
  }
  return sreject(w, INGEST_WRONG_TYPE, "\"%s\": expected %s, got %s", m->string,
                 what, ingest__json_type_name(m));
}

static int number(struct swalk *w, const cJSON *m, double *out) {
  int rc = want(w, m, cJSON_IsNumber(m), "a number");
  if (rc) {
    return rc;
  }
  if (!isfinite(m->valuedouble)) {
    return sreject(w, INGEST_NOT_FINITE, "\"%s\" is not finite", m->string);
  }
  *out = m->valuedouble;
  return IOCD_OK;
}

static int time_of(struct swalk *w, const cJSON *m, const struct json_num *num,
                   int64_t *out) {
  int rc = want(w, m, num != NULL, "a number");
  if (rc) {
    return rc;
  }
  const char *text = w->ctx->payload + num->off;
  if (ingest__time_epoch_text(text, num->len, TIME_S, out)) {
    return sreject(w, INGEST_BAD_TIME, "\"%s\": %.*s s is out of range",
                   m->string, num->len > 40 ? 40 : (int)num->len, text);
  }
  return IOCD_OK;
}

static int read_member(struct swalk *w, const cJSON *m,
                       const struct json_num *num, struct record *r) {
  const char *k = m->string;
  int rc = IOCD_OK;
  if (strcmp(k, "bn") == 0 || strcmp(k, "n") == 0 || strcmp(k, "bu") == 0 ||
      strcmp(k, "u") == 0 || strcmp(k, "vs") == 0) {
    rc = want(w, m, cJSON_IsString(m), "a string");
    if (rc) {
      return rc;
    }
    const char **dst = k[0] == 'b'   ? (k[1] == 'n' ? &r->bn : &r->bu)
                       : k[0] == 'n' ? &r->n
                       : k[0] == 'u' ? &r->u
                                     : &r->vs;
    *dst = m->valuestring;
    r->has_vs |= dst == &r->vs;
  } else if (strcmp(k, "bt") == 0) {
    rc = time_of(w, m, num, &r->bt);
    r->has_bt = true;
  } else if (strcmp(k, "t") == 0) {
    rc = time_of(w, m, num, &r->t);
    r->has_t = true;
  } else if (strcmp(k, "bv") == 0) {
    rc = number(w, m, &r->bv);
    r->has_bv = true;
  } else if (strcmp(k, "bs") == 0) {
    rc = number(w, m, &r->bs);
    r->has_bs = true;
  } else if (strcmp(k, "v") == 0) {
    rc = number(w, m, &r->v);
    r->has_v = true;
  } else if (strcmp(k, "s") == 0) {
    rc = number(w, m, &r->s);
    r->has_s = true;
  } else if (strcmp(k, "vb") == 0) {
    rc = want(w, m, cJSON_IsBool(m), "a boolean");
    r->vb = cJSON_IsTrue(m);
    r->has_vb = true;
  } else if (strcmp(k, "vd") == 0) {
    rc = sreject(w, INGEST_WRONG_TYPE, "data values (vd) are not supported");
  } else if (strcmp(k, "bver") == 0) {
    rc = want(w, m, num && num->is_int, "an integer");
    if (!rc && m->valuedouble > 10) {
      rc = sreject(w, INGEST_MALFORMED, "SenML version %.0f is not supported",
                   m->valuedouble);
    }
  } else {
    size_t kl = strlen(k);
    if (kl > 0 && k[kl - 1] == '_') {
      /* RFC 8428 section 4.4: fields ending in '_' must be understood. */
      char q[INGEST_QUOTE_SIZE];
      rc = sreject(w, INGEST_MALFORMED, "unsupported field %s",
                   ingest__quote(q, sizeof q, k, kl));
    }
    /* Other unknown fields (ut, extensions) are ignored. */
    w->next += ingest__json_count_numbers(m) - (num ? 1 : 0);
  }
  return rc;
}

/* RFC 8428 section 4.5.1: A-Z a-z 0-9 - : . / _, starting with a letter or
 * a digit. */
static bool valid_name(const char *s, size_t n) {
  if (n == 0) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                 (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || !strchr("-:./_", c))) {
      return false;
    }
  }
  return true;
}

static int emit(struct swalk *w, struct point_batch *pb, struct base *b,
                const struct record *r) {
  struct decode_ctx *ctx = w->ctx;
  struct buf *name = &ctx->scratch->key;
  buf_reset(name);
  int rc = buf_puts(name, b->bn ? b->bn : "");
  if (!rc) {
    rc = buf_puts(name, r->n ? r->n : "");
  }
  if (rc) {
    return IOCD_ENOMEM;
  }
  char q[INGEST_QUOTE_SIZE];
  if (!valid_name(name->data, name->len)) {
    return sreject(w, INGEST_BAD_NAME, "name %s is not a valid SenML name",
                   ingest__quote(q, sizeof q, name->data, name->len));
  }
  int64_t ts = b->bt;
  if (r->has_t) {
    if ((r->t > 0 && ts > INT64_MAX - r->t) ||
        (r->t < 0 && ts < INT64_MIN - r->t)) {
      return sreject(w, INGEST_BAD_TIME, "time out of range");
    }
    ts += r->t;
  }
  if (ts < SENML_RELATIVE_NS) {
    if ((ts > 0 && ctx->now_ns > INT64_MAX - ts) ||
        (ts < 0 && ctx->now_ns < INT64_MIN - ts)) {
      return sreject(w, INGEST_BAD_TIME, "time out of range");
    }
    ts += ctx->now_ns;
  }
  struct point *p;
  rc = ingest__point_new(ctx, pb, ctx->measurement.p, ctx->measurement.len, &p);
  if (rc) {
    return rc;
  }
  p->ts_ns = ts;
  p->has_ts = true;
  if (r->has_v) {
    double v = b->bv + r->v;
    if (!isfinite(v)) {
      return sreject(w, INGEST_NOT_FINITE, "bv + v is not finite");
    }
    rc = pb_field_float(pb, p, name->data, name->len, v);
  } else if (r->has_vs) {
    rc = pb_field_string(pb, p, name->data, name->len, r->vs, strlen(r->vs));
  } else if (r->has_vb) {
    rc = pb_field_bool(pb, p, name->data, name->len, r->vb);
  }
  if (!rc && r->has_s) {
    double s = b->bs + r->s;
    if (!isfinite(s)) {
      return sreject(w, INGEST_NOT_FINITE, "bs + s is not finite");
    }
    rc = buf_puts(name, "_sum");
    if (!rc) {
      rc = pb_field_float(pb, p, name->data, name->len, s);
    }
  }
  const char *unit = r->u ? r->u : b->bu;
  if (!rc && unit && *unit) {
    rc = pb_tag(pb, p, "unit", 4, unit, strlen(unit), false);
  }
  return rc;
}

static int decode_record(struct swalk *w, struct point_batch *pb,
                         struct base *b, const cJSON *rec) {
  if (!cJSON_IsObject(rec)) {
    return sreject(w, INGEST_WRONG_TYPE, "expected an object, got %s",
                   ingest__json_type_name(rec));
  }
  struct record r = {0};
  for (const cJSON *m = rec->child; m; m = m->next) {
    const struct json_num *num = NULL;
    if (cJSON_IsNumber(m)) {
      if (w->next >= w->nnums) {
        return sreject(w, INGEST_MALFORMED, "number tokens out of step");
      }
      num = &w->ctx->scratch->nums[w->next++];
    }
    int rc = read_member(w, m, num, &r);
    if (rc) {
      return rc;
    }
  }
  /* Base fields apply to their own record and the ones after it. */
  if (r.bn) {
    b->bn = r.bn;
  }
  if (r.bu) {
    b->bu = r.bu;
  }
  if (r.has_bt) {
    b->bt = r.bt;
  }
  if (r.has_bv) {
    b->bv = r.bv;
  }
  if (r.has_bs) {
    b->bs = r.bs;
  }
  int nvalues = r.has_v + r.has_vs + r.has_vb;
  if (nvalues > 1) {
    return sreject(w, INGEST_MALFORMED, "more than one of v, vs and vb");
  }
  if (nvalues == 0 && !r.has_s) {
    if (r.n) {
      return sreject(w, INGEST_MALFORMED, "no value");
    }
    return IOCD_OK; /* a record that only sets base fields */
  }
  return emit(w, pb, b, &r);
}

static int senml_decode(struct decode_ctx *ctx, struct point_batch *pb) {
  cJSON *root;
  struct swalk w = {.ctx = ctx};
  int rc = ingest__json_parse(ctx, &root, &w.nnums);
  if (rc) {
    return rc;
  }
  if (!cJSON_IsArray(root)) {
    rc = ingest__reject(ctx->res, INGEST_WRONG_TYPE,
                        "expected a SenML array of records, got %s",
                        ingest__json_type_name(root));
    goto out;
  }
  size_t n = (size_t)cJSON_GetArraySize(root);
  if (n > ctx->lim->max_points) {
    rc = ingest__reject(ctx->res, INGEST_TOO_MANY,
                        "%zu records in one message (limit %zu)", n,
                        ctx->lim->max_points);
    goto out;
  }
  struct base b = {0};
  for (const cJSON *c = root->child; c && !rc; c = c->next) {
    w.index++;
    rc = decode_record(&w, pb, &b, c);
  }
  if (!rc && w.next != w.nnums) {
    rc =
        ingest__reject(ctx->res, INGEST_MALFORMED, "number tokens out of step");
  }
out:
  cJSON_Delete(root);
  return rc;
}

const struct decoder_ops ingest__decoder_senml = {
    .name = "senml",
    .decode = senml_decode,
};
