/*
 * The ingest pipeline: one MQTT message in, one verdict out. The message
 * goes to the first subscription whose pattern matches its topic, passes
 * the size and UTF-8 checks, is decoded by the subscription's format into a
 * point batch, gets the topic's and the subscription's tags and its
 * timestamps fixed, and is checked for names, limits, field types and
 * series cardinality. Only then does the sink see it, once, with every
 * point; any failure rejects the whole message with one reason.
 *
 * The pipeline owns one point batch and some scratch buffers that are
 * reset, not freed, between messages, so that a steady stream of messages
 * allocates nothing here (cJSON allocates its tree).
 */
#include "ingest/ingest.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/lp.h"
#include "core/utf8.h"
#include "ingest/ingest_int.h"

/* clang-format off */
static const char *const reason_ids[] = {
    "ok",
#define REASON_ID(name, id, text) id,
    INGEST_REASONS(REASON_ID)
#undef REASON_ID
};

static const char *const reason_texts[] = {
    "accepted",
#define REASON_TEXT(name, id, text) text,
    INGEST_REASONS(REASON_TEXT)
#undef REASON_TEXT
};
/* clang-format on */

const char *ingest_reason_id(enum ingest_reason r) {
  return (unsigned)r < INGEST_NREASONS ? reason_ids[r] : "unknown";
}

const char *ingest_reason_text(enum ingest_reason r) {
  return (unsigned)r < INGEST_NREASONS ? reason_texts[r] : "unknown";
}

/* ---- limits ---------------------------------------------------------- */

static int64_t seconds_to_ns(int64_t s) {
  return s > INT64_MAX / NS_PER_SEC ? INT64_MAX : s * NS_PER_SEC;
}

void ingest__limits_resolve(const struct config_limits *cl,
                            struct ingest_limits *out) {
  out->max_payload_bytes = cl->max_payload_bytes
                               ? cl->max_payload_bytes
                               : INGEST_DEFAULT_MAX_PAYLOAD_BYTES;
  if (out->max_payload_bytes > INGEST_MAX_PAYLOAD_CEILING) {
    out->max_payload_bytes = INGEST_MAX_PAYLOAD_CEILING;
  }
  out->max_series = cl->max_series ? cl->max_series : INGEST_DEFAULT_MAX_SERIES;
  out->max_field_types = INGEST_DEFAULT_MAX_FIELD_TYPES;
  out->max_json_depth = cl->max_json_depth > 0 ? cl->max_json_depth
                                               : INGEST_DEFAULT_MAX_JSON_DEPTH;
  /* cJSON refuses deeper input by itself. */
  if (out->max_json_depth > 1000) {
    out->max_json_depth = 1000;
  }
  out->max_fields = cl->max_fields ? cl->max_fields : INGEST_DEFAULT_MAX_FIELDS;
  out->max_points = INGEST_DEFAULT_MAX_POINTS;
  out->max_future_ns = seconds_to_ns(
      cl->max_future_s > 0 ? cl->max_future_s : INGEST_DEFAULT_MAX_FUTURE_S);
  out->max_past_ns = seconds_to_ns(
      cl->max_past_s > 0 ? cl->max_past_s : INGEST_DEFAULT_MAX_PAST_S);
  out->log_burst =
      (uint32_t)(cl->log_burst > 0 ? cl->log_burst : INGEST_DEFAULT_LOG_BURST);
  out->log_window_ms =
      (int64_t)(cl->log_window_s > 0 ? cl->log_window_s
                                     : INGEST_DEFAULT_LOG_WINDOW_S) *
      1000;
}

/* ---- helpers shared with the decoders --------------------------------- */

int ingest__reject(struct ingest_result *res, enum ingest_reason reason,
                   const char *fmt, ...) {
  res->reason = reason;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->detail, sizeof res->detail, fmt, ap);
  va_end(ap);
  return IOCD_EINVAL;
}

static bool is_reserved_capture(const struct capture *c) {
  return (c->name.len == 11 && memcmp(c->name.p, "measurement", 11) == 0) ||
         (c->name.len == 5 && memcmp(c->name.p, "field", 5) == 0);
}

/* The topic's tags go first and pb_tag keeps the first value of a key: the
 * topic is what the broker's ACL authenticates, the payload is not, and a
 * district must not be able to write another district's tag. */
int ingest__point_new(struct decode_ctx *ctx, struct point_batch *pb,
                      const char *meas, size_t len, struct point **out) {
  if (pb->npoints >= ctx->lim->max_points) {
    return ingest__reject(ctx->res, INGEST_TOO_MANY,
                          "more than %zu points in one message",
                          ctx->lim->max_points);
  }
  struct point *p = pb_point_new(pb, meas, len);
  if (!p) {
    return IOCD_ENOMEM;
  }
  int rc = IOCD_OK;
  for (size_t i = 0; i < ctx->ncaps && !rc; i++) {
    const struct capture *c = &ctx->caps[i];
    if (!is_reserved_capture(c)) {
      rc = pb_tag(pb, p, c->name.p, c->name.len, c->value.p, c->value.len,
                  false);
    }
  }
  for (size_t i = 0; i < ctx->sub->ntags && !rc; i++) {
    const struct config_kv *kv = &ctx->sub->tags[i];
    if (kv->key && kv->value) {
      rc = pb_tag(pb, p, kv->key, strlen(kv->key), kv->value, strlen(kv->value),
                  false);
    }
  }
  *out = p;
  return rc;
}

/* Length of the UTF-8 sequence that starts with c, 0 when c cannot start
 * one. */
static size_t seq_len(unsigned char c) {
  if (c >= 0xC2 && c <= 0xDF) {
    return 2;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    return 4;
  }
  return 0;
}

const char *ingest__quote(char *dst, size_t n, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  dst[o++] = '"';
  /* Room kept at the end for `..."` and the NUL. */
  size_t room = n - 5;
  for (size_t i = 0; i < len;) {
    unsigned char c = (unsigned char)s[i];
    size_t l = c < 0x80 ? 1 : seq_len(c);
    bool valid =
        l > 0 && i + l <= len && (l == 1 || utf8_valid(s + i, l, NULL));
    size_t need = !valid || c < 0x20 || c == 0x7f ? 4
                  : c == '"' || c == '\\'         ? 2
                                                  : l;
    if (o + need > room) {
      memcpy(dst + o, "...", 3);
      o += 3;
      break;
    }
    if (!valid || c < 0x20 || c == 0x7f) {
      dst[o++] = '\\';
      dst[o++] = 'x';
      dst[o++] = hex[c >> 4];
      dst[o++] = hex[c & 15];
      i++;
    } else if (c == '"' || c == '\\') {
      dst[o++] = '\\';
      dst[o++] = (char)c;
      i++;
    } else {
      memcpy(dst + o, s + i, l);
      o += l;
      i += l;
    }
  }
  dst[o++] = '"';
  dst[o] = '\0';
  return dst;
}

int ingest__parse_i64(const char *s, size_t n, int64_t *out) {
  size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i == n) {
    return IOCD_EPARSE;
  }
  for (size_t k = i; k < n; k++) {
    if (s[k] < '0' || s[k] > '9') {
      return IOCD_EPARSE;
    }
  }
  char text[64];
  if (n >= sizeof text) {
    return IOCD_ERANGE; /* far more digits than an int64 has */
  }
  memcpy(text, s, n);
  text[n] = '\0';
  char *end;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno == ERANGE) {
    return IOCD_ERANGE;
  }
  if (end != text + n) {
    return IOCD_EPARSE;
  }
  *out = (int64_t)v;
  return IOCD_OK;
}

/* The auto format's table: MQTT 5 content type to decoder. */
static const struct {
  const char *type;
  const struct decoder_ops *ops;
} content_types[] = {
    {"application/json", &ingest__decoder_json},
    {"application/senml+json", &ingest__decoder_senml},
    {"text/plain", &ingest__decoder_value},
    {"text/vnd.influx.line-protocol", &ingest__decoder_line},
    {"application/x-influx-line-protocol", &ingest__decoder_line},
};

const struct decoder_ops *ingest__decoder_for_content_type(const char *ct) {
  if (!ct) {
    return NULL;
  }
  while (*ct == ' ' || *ct == '\t') {
    ct++;
  }
  size_t n = strcspn(ct, ";");
  while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) {
    n--;
  }
  for (size_t i = 0; i < sizeof content_types / sizeof content_types[0]; i++) {
    if (strlen(content_types[i].type) == n &&
        strncasecmp(ct, content_types[i].type, n) == 0) {
      return content_types[i].ops;
    }
  }
  return NULL;
}

static const struct decoder_ops *format_ops(enum payload_format f) {
  switch (f) {
    case FORMAT_JSON:
      return &ingest__decoder_json;
    case FORMAT_VALUE:
      return &ingest__decoder_value;
    case FORMAT_LINE:
      return &ingest__decoder_line;
    case FORMAT_SENML:
      return &ingest__decoder_senml;
    default:
      return NULL;
  }
}

static const struct decoder_ops *decoder_for(
    const struct config_subscription *sub, const char *content_type) {
  const struct decoder_ops *ops = NULL;
  if (sub->format == FORMAT_AUTO) {
    ops = ingest__decoder_for_content_type(content_type);
    if (!ops) {
      ops = format_ops(sub->fallback);
    }
  } else {
    ops = format_ops(sub->format);
  }
  return ops ? ops : &ingest__decoder_json;
}

/* ---- the pipeline ----------------------------------------------------- */

struct sub_state {
  struct pattern pat;
  const char *label; /* the subscription's name, else its topic */
  struct metric *messages, *accepted, *points;
  struct metric *rejects[INGEST_NREASONS];
};

struct ingest {
  const struct config *cfg;
  struct stats *stats;
  struct stats *own_stats; /* when the caller passed none */
  ingest_sink_fn *sink;
  void *sink_ud;
  struct sub_state *subs;
  size_t nsubs;
  struct metric *nosub_messages, *nosub_rejects, *series;
  struct ingest_limits lim;
  struct point_batch pb; /* reset for every message */
  struct ingest_scratch scratch;
  struct schema schema;
  struct log_limit loglim[INGEST_NREASONS];
  struct feed feed; /* feed quality per district (feed.c) */
};

static void free_subs(struct sub_state *subs, size_t n) {
  for (size_t i = 0; i < n && subs; i++) {
    ingest__pattern_cleanup(&subs[i].pat);
  }
  free(subs);
}

static const char *sub_label(const struct config_subscription *sub) {
  if (sub->name) {
    return sub->name;
  }
  return sub->topic ? sub->topic : "";
}

static int build_subs(const struct config *cfg, struct stats *stats,
                      struct sub_state **out, struct iocd_err *err) {
  struct sub_state *subs = calloc(cfg->nsubs ? cfg->nsubs : 1, sizeof *subs);
  if (!subs) {
    return iocd_err_set(err, IOCD_ENOMEM, "ingest: out of memory");
  }
  for (size_t i = 0; i < cfg->nsubs; i++) {
    const struct config_subscription *sub = &cfg->subs[i];
    struct sub_state *ss = &subs[i];
    const char *label = sub_label(sub);
    size_t col = 0;
    int rc = ingest__pattern_parse(&ss->pat, sub->topic, &col, err);
    if (rc) {
      const struct config_place *at = &sub->topic_place;
      if (at->file && col > 0 && sub->topic) {
        /* col counts the pattern's characters; the string starts after
         * its quote. */
        iocd_err_prefix(err, "%s:%d:%zu: subscriptions[%zu].topic", at->file,
                        at->line, (size_t)at->col + col, i);
      } else {
        iocd_err_prefix(err, "subscription %s", label);
      }
      free_subs(subs, i);
      return rc;
    }
    ss->label = label;
    ss->messages =
        stats_counter(stats, "iocd_messages_total", "MQTT messages received.",
                      "subscription", label, NULL);
    ss->accepted = stats_counter(stats, "iocd_messages_accepted_total",
                                 "Messages accepted, with all their points.",
                                 "subscription", label, NULL);
    ss->points = stats_counter(stats, "iocd_points_accepted_total",
                               "Points handed to the store.", "subscription",
                               label, NULL);
    for (int r = INGEST_NO_SUBSCRIPTION + 1; r < INGEST_NREASONS; r++) {
      ss->rejects[r] = stats_counter(
          stats, "iocd_rejects_total", "Messages rejected, by reason.",
          "subscription", label, "reason",
          ingest_reason_id((enum ingest_reason)r), NULL);
    }
  }
  *out = subs;
  return IOCD_OK;
}

struct ingest *ingest_new(const struct config *cfg, struct stats *stats,
                          ingest_sink_fn *sink, void *sink_ud,
                          struct iocd_err *err) {
  struct ingest *in = calloc(1, sizeof *in);
  if (!in) {
    iocd_err_set(err, IOCD_ENOMEM, "ingest: out of memory");
    return NULL;
  }
  pb_init(&in->pb);
  pb_init(&in->scratch.lp);
  buf_init(&in->scratch.key, INGEST_MAX_PAYLOAD_CEILING + 64);
  ingest__schema_init(&in->schema);
  if (!stats) {
    in->own_stats = stats_new();
    if (!in->own_stats) {
      iocd_err_set(err, IOCD_ENOMEM, "ingest: out of memory");
      goto fail;
    }
    stats = in->own_stats;
  }
  in->stats = stats;
  in->sink = sink;
  in->sink_ud = sink_ud;
  /* Registered first so that the no-subscription series lead the
   * families in /metrics order. */
  in->nosub_messages =
      stats_counter(stats, "iocd_messages_total", "MQTT messages received.",
                    "subscription", "", NULL);
  if (build_subs(cfg, stats, &in->subs, err)) {
    goto fail;
  }
  in->nsubs = cfg->nsubs;
  if (ingest__feed_init(&in->feed, cfg, stats)) {
    iocd_err_set(err, IOCD_ENOMEM, "ingest: out of memory");
    goto fail;
  }
  in->nosub_rejects =
      stats_counter(stats, "iocd_rejects_total",
                    "Messages rejected, by reason.", "subscription", "",
                    "reason", ingest_reason_id(INGEST_NO_SUBSCRIPTION), NULL);
  in->series =
      stats_gauge(stats, "iocd_series",
                  "Distinct series (measurement and tag set) seen.", NULL);
  in->cfg = cfg;
  ingest__limits_resolve(&cfg->limits, &in->lim);
  return in;
fail:
  ingest_free(in);
  return NULL;
}

void ingest_free(struct ingest *in) {
  if (!in) {
    return;
  }
  free_subs(in->subs, in->nsubs);
  pb_cleanup(&in->pb);
  pb_cleanup(&in->scratch.lp);
  free(in->scratch.nums);
  buf_cleanup(&in->scratch.key);
  ingest__schema_cleanup(&in->schema);
  ingest__feed_cleanup(&in->feed);
  stats_free(in->own_stats);
  free(in);
}

int ingest_reconfigure(struct ingest *in, const struct config *cfg,
                       struct iocd_err *err) {
  struct sub_state *subs;
  int rc = build_subs(cfg, in->stats, &subs, err);
  if (rc) {
    return rc;
  }
  struct feed feed;
  if (ingest__feed_init(&feed, cfg, in->stats)) {
    free_subs(subs, cfg->nsubs);
    return iocd_err_set(err, IOCD_ENOMEM, "ingest: out of memory");
  }
  ingest__feed_cleanup(&in->feed);
  in->feed = feed;
  free_subs(in->subs, in->nsubs);
  in->subs = subs;
  in->nsubs = cfg->nsubs;
  in->cfg = cfg;
  ingest__limits_resolve(&cfg->limits, &in->lim);
  return IOCD_OK;
}

int ingest_match(const struct ingest *in, const char *topic) {
  struct capture caps[INGEST_MAX_CAPTURES];
  size_t tlen = strlen(topic);
  for (size_t i = 0; i < in->nsubs; i++) {
    if (ingest__pattern_match(&in->subs[i].pat, topic, tlen, caps) >= 0) {
      return (int)i;
    }
  }
  return -1;
}

size_t ingest_series_count(const struct ingest *in) {
  return ingest__schema_series(&in->schema);
}

/* Counts and logs a reject (rate-limited per reason). */
static int finish_reject(struct ingest *in, const struct sub_state *ss,
                         const char *topic, size_t tlen,
                         struct ingest_result *res, int64_t now_ns) {
  stat_inc(ss ? ss->rejects[res->reason] : in->nosub_rejects);
  uint32_t suppressed = 0;
  if (!log_limit_allow(&in->loglim[res->reason], now_ns / NS_PER_MS,
                       in->lim.log_burst, in->lim.log_window_ms, &suppressed)) {
    return IOCD_EINVAL;
  }
  char qt[256], sub[160] = "", more[96] = "";
  ingest__quote(qt, sizeof qt, topic, tlen);
  if (ss) {
    snprintf(sub, sizeof sub, " (subscription %s)", ss->label);
  }
  if (suppressed) {
    snprintf(more, sizeof more, " (%u more %s rejects not logged)", suppressed,
             ingest_reason_id(res->reason));
  }
  log_warn("ingest", "rejected message on %s%s: %s: %s%s", qt, sub,
           ingest_reason_id(res->reason), res->detail, more);
  return IOCD_EINVAL;
}

/* A C1 control character (U+0080..U+009F) is C2 80..C2 9F in UTF-8. */
static bool has_control(const struct str *s) {
  for (size_t i = 0; i < s->len; i++) {
    unsigned char c = (unsigned char)s->p[i];
    if (c < 0x20 || c == 0x7f) {
      return true;
    }
    if (c == 0xC2 && i + 1 < s->len && (unsigned char)s->p[i + 1] >= 0x80 &&
        (unsigned char)s->p[i + 1] <= 0x9F) {
      return true;
    }
  }
  return false;
}

/* Checks a measurement, tag key, tag value or field key. what names it for
 * the message ("measurement", "tag key", "tag \"k\" value", ...). */
static int check_name(struct ingest_result *res, const char *pre,
                      const char *what, const struct str *s, bool tag_value) {
  char q[INGEST_QUOTE_SIZE];
  if (s->len == 0) {
    return ingest__reject(res, INGEST_BAD_NAME, "%s%s is empty", pre, what);
  }
  if (!utf8_valid(s->p, s->len, NULL)) {
    return ingest__reject(res, INGEST_BAD_NAME, "%s%s %s is not valid UTF-8",
                          pre, what, ingest__quote(q, sizeof q, s->p, s->len));
  }
  if (has_control(s)) {
    return ingest__reject(res, INGEST_BAD_NAME,
                          "%s%s %s contains a control character", pre, what,
                          ingest__quote(q, sizeof q, s->p, s->len));
  }
  if (tag_value && s->p[s->len - 1] == '\\') {
    /* InfluxDB 1.x cannot parse a tag value that ends in a backslash. */
    return ingest__reject(res, INGEST_BAD_NAME, "%s%s %s ends in a backslash",
                          pre, what, ingest__quote(q, sizeof q, s->p, s->len));
  }
  return IOCD_OK;
}

/* The fast path of check_name: true when s passes every check, without
 * building any message. */
static bool name_ok(const struct str *s, bool tag_value) {
  return s->len > 0 && utf8_valid(s->p, s->len, NULL) && !has_control(s) &&
         !(tag_value && s->p[s->len - 1] == '\\');
}

static bool is_time_key(const struct str *s) {
  return s->len == 4 && memcmp(s->p, "time", 4) == 0;
}

/* Puts the name s in Unicode NFC (core/utf8.h), copying the normalized
 * form into the batch's arena when it differs: a district that publishes
 * "Buôn Ma Thuột" with combining accents writes the same series as one that
 * publishes it precomposed. Text that is not valid UTF-8 is left for
 * check_name to refuse. */
static int nfc_name(struct point_batch *pb, struct str *s) {
  size_t i = 0;
  while (i < s->len && (unsigned char)s->p[i] < 0x80) {
    i++;
  }
  if (i == s->len) {
    return IOCD_OK;
  }
  char *out = NULL;
  size_t n = 0;
  int rc = utf8_nfc(s->p, s->len, &out, &n);
  if (rc == IOCD_EINVAL) {
    return IOCD_OK;
  }
  if (!rc && out) {
    const char *copy = pb_strdup(pb, out, n);
    if (copy) {
      s->p = copy;
      s->len = n;
    } else {
      rc = IOCD_ENOMEM;
    }
  }
  free(out);
  return rc;
}

static int nfc_point(struct point_batch *pb, struct point *p) {
  int rc = nfc_name(pb, &p->measurement);
  struct tag *tags = pb_tags(pb, p);
  for (size_t i = 0; i < p->ntags && !rc; i++) {
    rc = nfc_name(pb, &tags[i].key);
    if (!rc) {
      rc = nfc_name(pb, &tags[i].value);
    }
  }
  struct field *f = pb_fields(pb, p);
  for (size_t i = 0; i < p->nfields && !rc; i++) {
    rc = nfc_name(pb, &f[i].key);
  }
  return rc;
}

static int check_point(struct decode_ctx *ctx, struct point_batch *pb,
                       struct point *p, const char *pre) {
  struct ingest_result *res = ctx->res;
  char q[INGEST_QUOTE_SIZE], what[INGEST_QUOTE_SIZE + 16];
  if (!p->has_ts) {
    p->ts_ns = ctx->now_ns;
    p->has_ts = true;
  } else if (ingest__time_check(res, p->ts_ns, ctx->now_ns, ctx->lim)) {
    if (*pre) {
      /* pre + detail, cut to the detail's size. */
      char d[sizeof res->detail];
      size_t pn = strnlen(pre, sizeof d - 1);
      size_t dn = strnlen(res->detail, sizeof d - 1 - pn);
      memcpy(d, pre, pn);
      memcpy(d + pn, res->detail, dn);
      d[pn + dn] = '\0';
      memcpy(res->detail, d, sizeof d);
    }
    return IOCD_EINVAL;
  }
  int rc = nfc_point(pb, p);
  if (rc) {
    return rc;
  }
  rc = check_name(res, pre, "measurement", &p->measurement, false);
  if (rc) {
    return rc;
  }
  const struct tag *tags = pb_tags(pb, p);
  for (size_t i = 0; i < p->ntags; i++) {
    rc = check_name(res, pre, "tag key", &tags[i].key, false);
    if (rc) {
      return rc;
    }
    if (is_time_key(&tags[i].key)) {
      return ingest__reject(res, INGEST_BAD_NAME,
                            "%stag key \"time\" is "
                            "reserved",
                            pre);
    }
    if (!name_ok(&tags[i].value, true)) {
      snprintf(what, sizeof what, "tag %s value",
               ingest__quote(q, sizeof q, tags[i].key.p, tags[i].key.len));
      return check_name(res, pre, what, &tags[i].value, true);
    }
  }
  if (p->nfields == 0) {
    return ingest__reject(res, INGEST_NO_FIELDS, "%sno fields", pre);
  }
  if (p->nfields > ctx->lim->max_fields) {
    return ingest__reject(res, INGEST_TOO_MANY, "%s%zu fields (limit %zu)", pre,
                          p->nfields, ctx->lim->max_fields);
  }
  const struct field *f = pb_fields(pb, p);
  for (size_t i = 0; i < p->nfields; i++) {
    rc = check_name(res, pre, "field key", &f[i].key, false);
    if (rc) {
      return rc;
    }
    if (is_time_key(&f[i].key)) {
      return ingest__reject(res, INGEST_BAD_NAME,
                            "%sfield key \"time\" is reserved", pre);
    }
    if (f[i].type == FIELD_FLOAT && !isfinite(f[i].v.f)) {
      return ingest__reject(
          res, INGEST_NOT_FINITE, "%sfield %s is not finite", pre,
          ingest__quote(q, sizeof q, f[i].key.p, f[i].key.len));
    }
    if (f[i].type == FIELD_STRING &&
        !utf8_valid(f[i].v.s.p, f[i].v.s.len, NULL)) {
      return ingest__reject(
          res, INGEST_INVALID_UTF8,
          "%sfield %s: string value is not valid UTF-8", pre,
          ingest__quote(q, sizeof q, f[i].key.p, f[i].key.len));
    }
    for (size_t j = 0; j < i; j++) {
      if (f[j].key.len == f[i].key.len &&
          memcmp(f[j].key.p, f[i].key.p, f[i].key.len) == 0) {
        return ingest__reject(
            res, INGEST_MALFORMED, "%sfield %s appears twice", pre,
            ingest__quote(q, sizeof q, f[i].key.p, f[i].key.len));
      }
    }
  }
  /* Last, the store's own check (core/lp.h), so that nothing ingest
   * accepts is refused when it is written: escapes InfluxDB cannot read
   * back, such as a field key "a\\,b", are rejected here, with a reason. */
  struct iocd_err lerr;
  if (lp_check_point(pb, p, &lerr) != IOCD_OK) {
    return ingest__reject(res, INGEST_BAD_NAME, "%s%s", pre, lerr.msg);
  }
  pb_point_sort_tags(pb, p);
  return IOCD_OK;
}

/* The identity check: every user property named sub->identity.user_property
 * must equal the topic's {district} level, and there must be one. Byte for
 * byte, as the broker's ACL compares topics. Returns IOCD_OK or IOCD_EINVAL
 * after ingest__reject. */
static int check_identity(const struct config_subscription *sub,
                          const struct ingest_meta *meta,
                          const struct capture *caps, size_t ncaps,
                          struct ingest_result *res) {
  const char *want = sub->identity.user_property;
  struct str district = {NULL, 0};
  for (size_t i = 0; i < ncaps; i++) {
    if (caps[i].name.len == 8 && memcmp(caps[i].name.p, "district", 8) == 0) {
      district = caps[i].value;
    }
  }
  char qn[INGEST_QUOTE_SIZE], qd[INGEST_QUOTE_SIZE], qv[INGEST_QUOTE_SIZE];
  ingest__quote(qn, sizeof qn, want, strlen(want));
  ingest__quote(qd, sizeof qd, district.p ? district.p : "", district.len);
  bool found = false;
  for (size_t i = 0; meta && i < meta->nuser_props; i++) {
    const struct ingest_user_prop *up = &meta->user_props[i];
    if (!up->name || strcmp(up->name, want) != 0) {
      continue;
    }
    found = true;
    const char *v = up->value ? up->value : "";
    size_t vn = strlen(v);
    if (vn != district.len || memcmp(v, district.p, vn) != 0) {
      return ingest__reject(res, INGEST_IDENTITY,
                            "user property %s is %s, the topic's district "
                            "is %s",
                            qn, ingest__quote(qv, sizeof qv, v, vn), qd);
    }
  }
  if (!found) {
    return ingest__reject(res, INGEST_IDENTITY,
                          "no user property %s (the topic's district is %s)",
                          qn, qd);
  }
  return IOCD_OK;
}

/* Everything after the subscription is known. Returns IOCD_OK, IOCD_EINVAL
 * with res->reason set, or another error (memory, the sink's). */
static int process(struct ingest *in, size_t si, const char *topic, size_t tlen,
                   const char *payload, size_t len,
                   const struct ingest_meta *meta, int64_t now_ns,
                   const struct capture *caps, size_t ncaps,
                   struct ingest_result *res) {
  const struct config_subscription *sub = &in->cfg->subs[si];
  const struct ingest_limits *lim = &in->lim;
  const char *content_type = meta ? meta->content_type : NULL;
  size_t bad;
  /* First: a message from the wrong publisher is not read at all. */
  if (sub->identity.user_property &&
      check_identity(sub, meta, caps, ncaps, res) != IOCD_OK) {
    return IOCD_EINVAL;
  }
  if (len > lim->max_payload_bytes) {
    return ingest__reject(res, INGEST_TOO_BIG,
                          "payload of %zu bytes is over the limit of %zu", len,
                          lim->max_payload_bytes);
  }
  if (!utf8_valid(topic, tlen, &bad)) {
    return ingest__reject(res, INGEST_INVALID_UTF8,
                          "topic: invalid UTF-8 at byte %zu", bad + 1);
  }
  if (!utf8_valid(payload, len, &bad)) {
    return ingest__reject(res, INGEST_INVALID_UTF8,
                          "payload: invalid UTF-8 at byte %zu", bad + 1);
  }
  const char *nul = len ? memchr(payload, '\0', len) : NULL;
  if (nul) {
    return ingest__reject(res, INGEST_MALFORMED,
                          "payload: NUL character at byte %zu",
                          (size_t)(nul - payload) + 1);
  }
  struct decode_ctx ctx = {
      .sub = sub,
      .lim = lim,
      .topic = topic,
      .payload = payload,
      .len = len,
      .caps = caps,
      .ncaps = ncaps,
      .now_ns = now_ns,
      .scratch = &in->scratch,
      .res = res,
  };
  const char *m = sub->measurement ? sub->measurement : in->subs[si].label;
  ctx.measurement.p = m;
  ctx.measurement.len = strlen(m);
  for (size_t i = 0; i < ncaps; i++) {
    if (caps[i].name.len == 11 &&
        memcmp(caps[i].name.p, "measurement", 11) == 0) {
      ctx.measurement = caps[i].value;
    } else if (caps[i].name.len == 5 &&
               memcmp(caps[i].name.p, "field", 5) == 0) {
      ctx.field = caps[i].value;
    }
  }
  struct point_batch *pb = &in->pb;
  pb_reset(pb);
  int rc = decoder_for(sub, content_type)->decode(&ctx, pb);
  if (rc) {
    return rc;
  }
  if (pb->npoints == 0) {
    return ingest__reject(res, INGEST_NO_FIELDS, "no points");
  }
  for (size_t i = 0; i < pb->npoints; i++) {
    char pre[40] = "";
    if (pb->npoints > 1) {
      snprintf(pre, sizeof pre, "point %zu: ", i + 1);
    }
    rc = check_point(&ctx, pb, &pb->points[i], pre);
    if (rc) {
      return rc;
    }
  }
  rc = ingest__schema_check(&in->schema, sub, lim, pb, res);
  if (rc) {
    return rc;
  }
  if (in->sink) {
    rc = in->sink(in->sink_ud, si, pb);
    if (rc) {
      snprintf(res->detail, sizeof res->detail, "sink: %s", iocd_strerror(rc));
      return rc;
    }
  }
  ingest__schema_commit(&in->schema);
  res->npoints = pb->npoints;
  return IOCD_OK;
}

int ingest_message(struct ingest *in, const char *topic, const void *payload,
                   size_t len, const char *content_type, int64_t now_ns,
                   struct ingest_result *res) {
  struct ingest_meta meta = {.content_type = content_type};
  return ingest_message_meta(in, topic, payload, len, &meta, now_ns, res);
}

int ingest_message_meta(struct ingest *in, const char *topic,
                        const void *payload, size_t len,
                        const struct ingest_meta *meta, int64_t now_ns,
                        struct ingest_result *res) {
  struct ingest_result local;
  if (!res) {
    res = &local;
  }
  res->reason = INGEST_OK;
  res->sub = -1;
  res->npoints = 0;
  res->detail[0] = '\0';
  if (!topic) {
    topic = "";
  }
  size_t tlen = strlen(topic);
  struct capture caps[INGEST_MAX_CAPTURES];
  int ncaps = -1;
  size_t si = 0;
  for (; si < in->nsubs && ncaps < 0; si++) {
    ncaps = ingest__pattern_match(&in->subs[si].pat, topic, tlen, caps);
  }
  if (ncaps < 0) {
    stat_inc(in->nosub_messages);
    ingest__reject(res, INGEST_NO_SUBSCRIPTION,
                   "no subscription pattern matches the topic");
    return finish_reject(in, NULL, topic, tlen, res, now_ns);
  }
  si--;
  struct sub_state *ss = &in->subs[si];
  res->sub = (int)si;
  stat_inc(ss->messages);
  int rc = process(in, si, topic, tlen, payload, len, meta, now_ns, caps,
                   (size_t)ncaps, res);
  const struct config_subscription *sub = &in->cfg->subs[si];
  if (res->reason != INGEST_OK) {
    ingest__feed_count(&in->feed, sub, caps, (size_t)ncaps, NULL, res, now_ns);
    return finish_reject(in, ss, topic, tlen, res, now_ns);
  }
  if (rc) {
    if (rc == IOCD_ENOMEM) {
      log_error("ingest", "message on subscription %s dropped: out of memory",
                ss->label);
    }
    return rc;
  }
  stat_inc(ss->accepted);
  stat_add(ss->points, res->npoints);
  ingest__feed_count(&in->feed, sub, caps, (size_t)ncaps, &in->pb, res, now_ns);
  stat_set(in->series, (double)ingest_series_count(in));
  return IOCD_OK;
}
