/*
 * The `line` payload format: InfluxDB line protocol, one point per line,
 * for publishers that already speak it (Telegraf, existing scripts). The
 * parsing itself is core/lp.c's; this file adds the limits and the
 * timestamp precision of the subscription.
 *
 * lp_parse builds whole points, and a batch takes tags only on its last
 * point, so the payload is parsed into a scratch batch and each point is
 * copied into the message's batch behind the topic's tags, which win.
 */
#include <string.h>

#include "core/lp.h"
#include "ingest/ingest_int.h"

/* Counts the lines lp_parse would turn into points (blank lines and
 * comments are skipped), so that the point limit is enforced before any
 * parsing. */
static size_t count_lines(const char *s, size_t n) {
  size_t count = 0;
  size_t i = 0;
  while (i < n) {
    const char *nl = memchr(s + i, '\n', n - i);
    size_t e = nl ? (size_t)(nl - s) : n;
    size_t b = i;
    while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) {
      b++;
    }
    if (b < e && s[b] != '#') {
      count++;
    }
    i = e + 1;
  }
  return count;
}

static int64_t precision(const struct config_subscription *sub) {
  switch (sub->time_unit) {
    case TIME_S:
      return INT64_C(1000000000);
    case TIME_MS:
      return INT64_C(1000000);
    case TIME_US:
      return INT64_C(1000);
    default:
      return 1;
  }
}

static int line_decode(struct decode_ctx *ctx, struct point_batch *pb) {
  /* Lines are an upper bound of the points (a string field may hold a
   * newline): only the parser counts points exactly, and it stops one past
   * the limit. */
  if (count_lines(ctx->payload, ctx->len) == 0) {
    return ingest__reject(ctx->res, INGEST_NO_FIELDS, "no points");
  }
  struct point_batch *src = &ctx->scratch->lp;
  pb_reset(src);
  src->max_points = ctx->lim->max_points;
  struct iocd_err err = {{0}};
  int rc = lp_parse(src, ctx->payload, ctx->len, precision(ctx->sub), &err);
  src->max_points = 0;
  if (rc == IOCD_ENOMEM) {
    return rc;
  }
  if (rc == IOCD_ELIMIT) {
    return ingest__reject(ctx->res, INGEST_TOO_MANY,
                          "more than %zu points in one message",
                          ctx->lim->max_points);
  }
  if (rc) {
    return ingest__reject(ctx->res, INGEST_MALFORMED, "%s",
                          err.msg[0] ? err.msg : iocd_strerror(rc));
  }
  for (size_t pi = 0; pi < src->npoints && !rc; pi++) {
    const struct point *sp = &src->points[pi];
    struct point *p;
    rc = ingest__point_new(ctx, pb, sp->measurement.p, sp->measurement.len, &p);
    if (rc) {
      return rc;
    }
    p->ts_ns = sp->ts_ns;
    p->has_ts = sp->has_ts;
    const struct tag *t = pb_tags(src, sp);
    for (size_t i = 0; i < sp->ntags && !rc; i++) {
      rc = pb_tag(pb, p, t[i].key.p, t[i].key.len, t[i].value.p, t[i].value.len,
                  false);
    }
    const struct field *f = pb_fields(src, sp);
    for (size_t i = 0; i < sp->nfields && !rc; i++) {
      const struct str *k = &f[i].key;
      switch (f[i].type) {
        case FIELD_FLOAT:
          rc = pb_field_float(pb, p, k->p, k->len, f[i].v.f);
          break;
        case FIELD_INT:
          rc = pb_field_int(pb, p, k->p, k->len, f[i].v.i);
          break;
        case FIELD_BOOL:
          rc = pb_field_bool(pb, p, k->p, k->len, f[i].v.b);
          break;
        case FIELD_STRING:
          rc = pb_field_string(pb, p, k->p, k->len, f[i].v.s.p, f[i].v.s.len);
          break;
        default:
          break;
      }
    }
  }
  return rc;
}

const struct decoder_ops ingest__decoder_line = {
    .name = "line",
    .decode = line_decode,
};
