/*
 * What the InfluxDB writer sends and reads besides the points: its settings
 * with defaults applied, the write and query URLs (parameters percent-encoded
 * by curl_easy_escape), the CREATE DATABASE form, gzip bodies, and the error
 * text of an answer.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "core/err.h"
#include "store/store_int.h"

void store__influx_settings(const struct config_influx *ci,
                            struct influx_settings *out) {
  *out = (struct influx_settings){
      .url = ci->url && *ci->url ? ci->url : STORE_DEFAULT_URL,
      .api = ci->api == INFLUX_V2 ? INFLUX_V2 : INFLUX_V1,
      .database = ci->database,
      .retention_policy = ci->retention_policy,
      .username = ci->username,
      .password = ci->password,
      .create_database = ci->create_database,
      .org = ci->org,
      .bucket = ci->bucket,
      .token = ci->token,
      .gzip = ci->gzip,
      .timeout_ms =
          ci->timeout_ms > 0 ? ci->timeout_ms : STORE_DEFAULT_TIMEOUT_MS,
      .batch_points = ci->batch_points > 0 ? (size_t)ci->batch_points
                                           : STORE_DEFAULT_BATCH_POINTS,
      .batch_bytes =
          ci->batch_bytes ? ci->batch_bytes : STORE_DEFAULT_BATCH_BYTES,
      .flush_ms = ci->flush_interval_ms > 0 ? ci->flush_interval_ms
                                            : STORE_DEFAULT_FLUSH_MS,
      .retry_min_ms =
          ci->retry_min_ms > 0 ? ci->retry_min_ms : STORE_DEFAULT_RETRY_MIN_MS,
      .retry_max_ms =
          ci->retry_max_ms > 0 ? ci->retry_max_ms : STORE_DEFAULT_RETRY_MAX_MS,
      .max_in_flight = ci->max_in_flight > 0 ? (unsigned)ci->max_in_flight
                                             : STORE_DEFAULT_MAX_IN_FLIGHT,
      .buffer_bytes =
          ci->buffer_bytes ? ci->buffer_bytes : STORE_DEFAULT_BUFFER_BYTES,
      .ca_file = ci->ca_file,
      .tls_verify = ci->tls_verify,
      .probe_ms = ci->probe_interval_ms > 0 ? ci->probe_interval_ms : 0,
  };
  if (out->retry_max_ms < out->retry_min_ms) {
    out->retry_max_ms = out->retry_min_ms;
  }
}

int store__influx_settings_own(struct influx_settings *st) {
  const char **fields[] = {&st->url,      &st->database, &st->retention_policy,
                           &st->username, &st->password, &st->org,
                           &st->bucket,   &st->token,    &st->ca_file};
  size_t nf = sizeof fields / sizeof fields[0];
  size_t total = 0;
  for (size_t i = 0; i < nf; i++) {
    total += *fields[i] ? strlen(*fields[i]) + 1 : 0;
  }
  char *block = malloc(total ? total : 1);
  if (!block) {
    return IOCD_ENOMEM;
  }
  char *p = block;
  for (size_t i = 0; i < nf; i++) {
    if (*fields[i]) {
      size_t n = strlen(*fields[i]) + 1;
      memcpy(p, *fields[i], n);
      *fields[i] = p;
      p += n;
    }
  }
  st->owned = block;
  return IOCD_OK;
}

void store__influx_settings_cleanup(struct influx_settings *st) {
  free(st->owned);
  st->owned = NULL;
}

static bool empty(const char *s) {
  return !s || !*s;
}

int store__influx_validate(const struct influx_settings *st,
                           struct iocd_err *err) {
  if (strncasecmp(st->url, "http://", 7) != 0 &&
      strncasecmp(st->url, "https://", 8) != 0) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "influxdb.url: expected http:// or https://, got "
                        "\"%s\"",
                        st->url);
  }
  if (st->api == INFLUX_V1 && empty(st->database)) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "influxdb.database: required with api 1");
  }
  if (st->api == INFLUX_V2 && (empty(st->org) || empty(st->bucket))) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "influxdb.org, influxdb.bucket: required with api 2");
  }
  return IOCD_OK;
}

bool store__history_wanted(const struct config *cfg) {
  const struct config_notify *n = &cfg->notify;
  return cfg->influx.enabled &&
         (!empty(n->history_database) || !empty(n->history_retention_policy));
}

void store__history_settings(const struct config *cfg,
                             struct influx_settings *out) {
  const struct config_notify *n = &cfg->notify;
  store__influx_settings(&cfg->influx, out);
  out->max_in_flight = STORE_HISTORY_MAX_IN_FLIGHT;
  if (out->batch_points > STORE_HISTORY_BATCH_POINTS) {
    out->batch_points = STORE_HISTORY_BATCH_POINTS;
  }
  if (out->api == INFLUX_V2) {
    if (!empty(n->history_database)) {
      out->bucket = n->history_database;
    }
    return;
  }
  if (!empty(n->history_database)) {
    out->database = n->history_database;
    out->retention_policy = n->history_retention_policy;
  }
  if (!empty(n->history_retention_policy)) {
    out->retention_policy = n->history_retention_policy;
  }
}

int store__history_validate(const struct config *cfg, struct iocd_err *err) {
  const struct config_notify *n = &cfg->notify;
  struct influx_settings st;
  store__history_settings(cfg, &st);
  if (st.api == INFLUX_V2 && empty(n->history_database) &&
      !empty(n->history_retention_policy)) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "notifications.history.retention_policy: not used "
                        "with influxdb.api 2 (a bucket has its own "
                        "retention): name the bucket in "
                        "notifications.history.database");
  }
  return store__influx_validate(&st, err);
}

/* Appends s percent-encoded. */
static int put_escaped(struct buf *out, CURL *h, const char *s) {
  size_t n = strlen(s);
  if (n > INT32_MAX) {
    return IOCD_ETOOBIG;
  }
  char *e = curl_easy_escape(h, s, (int)n);
  if (!e) {
    return IOCD_ENOMEM;
  }
  int rc = buf_puts(out, e);
  curl_free(e);
  return rc;
}

/* Appends the base URL without its trailing slashes. */
static int put_base(struct buf *out, const char *url) {
  size_t n = strlen(url);
  while (n > 0 && url[n - 1] == '/') {
    n--;
  }
  return buf_append(out, url, n);
}

int store__influx_url(struct buf *out, const struct influx_settings *st) {
  CURL *h = curl_easy_init();
  if (!h) {
    return IOCD_ENOMEM;
  }
  int rc = put_base(out, st->url);
  if (st->api == INFLUX_V2) {
    if (!rc) {
      rc = buf_puts(out, "/api/v2/write?org=");
    }
    if (!rc) {
      rc = put_escaped(out, h, st->org ? st->org : "");
    }
    if (!rc) {
      rc = buf_puts(out, "&bucket=");
    }
    if (!rc) {
      rc = put_escaped(out, h, st->bucket ? st->bucket : "");
    }
  } else {
    if (!rc) {
      rc = buf_puts(out, "/write?db=");
    }
    if (!rc) {
      rc = put_escaped(out, h, st->database ? st->database : "");
    }
    if (!rc && !empty(st->retention_policy)) {
      rc = buf_puts(out, "&rp=");
      if (!rc) {
        rc = put_escaped(out, h, st->retention_policy);
      }
    }
  }
  if (!rc) {
    rc = buf_puts(out, "&precision=ns");
  }
  curl_easy_cleanup(h);
  return rc;
}

int store__influx_query_url(struct buf *out, const struct influx_settings *st) {
  int rc = put_base(out, st->url);
  return rc ? rc : buf_puts(out, "/query");
}

int store__influx_ping_url(struct buf *out, const struct influx_settings *st) {
  int rc = put_base(out, st->url);
  return rc ? rc : buf_puts(out, "/ping");
}

int store__create_db_body(struct buf *out, const char *db) {
  struct buf q;
  buf_init(&q, 0);
  int rc = buf_puts(&q, "CREATE DATABASE \"");
  for (const char *p = db; !rc && *p; p++) {
    if (*p == '"' || *p == '\\') {
      rc = buf_putc(&q, '\\');
    }
    if (!rc) {
      rc = buf_putc(&q, *p);
    }
  }
  if (!rc) {
    rc = buf_putc(&q, '"');
  }
  CURL *h = NULL;
  if (!rc) {
    h = curl_easy_init();
    rc = h ? buf_puts(out, "q=") : IOCD_ENOMEM;
  }
  if (!rc) {
    rc = put_escaped(out, h, q.data);
  }
  if (h) {
    curl_easy_cleanup(h);
  }
  buf_cleanup(&q);
  return rc;
}

/* Level 1: line protocol compresses well even at the fastest level (the
 * benchmark measured level 6 at 4.6 times the CPU for bodies 26% smaller),
 * and the writer's CPU is on the loop that also reads MQTT. */
#define GZIP_LEVEL 1

int store__gzip(struct buf *out, const char *in, size_t len) {
  if (len > UINT32_MAX / 2) {
    return IOCD_ETOOBIG;
  }
  /* compressBound is for zlib framing; the gzip header and trailer add 18
   * bytes more. */
  size_t cap = (size_t)compressBound((uLong)len) + 32;
  int rc = buf_reserve(out, cap);
  if (rc) {
    return rc;
  }
  z_stream z = {0};
  /* windowBits 15 + 16: a gzip header instead of a zlib one. */
  if (deflateInit2(&z, GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    return IOCD_ENOMEM;
  }
  z.next_in = (Bytef *)(uintptr_t)in;
  z.avail_in = (uInt)len;
  z.next_out = (Bytef *)(out->data + out->len);
  z.avail_out = (uInt)cap;
  int zrc = deflate(&z, Z_FINISH);
  size_t produced = (size_t)z.total_out;
  deflateEnd(&z);
  if (zrc != Z_STREAM_END) {
    return IOCD_EIO;
  }
  out->len += produced;
  out->data[out->len] = '\0';
  return IOCD_OK;
}

static void copy_clean(const char *s, size_t len, char *out, size_t n) {
  if (n == 0) {
    return;
  }
  while (len > 0 &&
         (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ')) {
    len--;
  }
  size_t k = len < n - 1 ? len : n - 1;
  for (size_t i = 0; i < k; i++) {
    unsigned char c = (unsigned char)s[i];
    out[i] = c < 0x20 ? ' ' : (char)c;
  }
  out[k] = '\0';
}

bool store__error_text(const char *body, size_t len, char *out, size_t n) {
  if (n == 0) {
    return false;
  }
  out[0] = '\0';
  if (!body || len == 0) {
    return false;
  }
  cJSON *j = cJSON_ParseWithLength(body, len);
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
  if (!cJSON_IsString(e)) {
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "results");
    const cJSON *r0 = cJSON_IsArray(res) ? cJSON_GetArrayItem(res, 0) : NULL;
    e = cJSON_GetObjectItemCaseSensitive(r0, "error");
  }
  if (!cJSON_IsString(e)) {
    /* 2.x answers {"code":"...","message":"..."}. */
    e = cJSON_GetObjectItemCaseSensitive(j, "message");
  }
  bool found = cJSON_IsString(e) && e->valuestring;
  if (found) {
    copy_clean(e->valuestring, strlen(e->valuestring), out, n);
  } else {
    copy_clean(body, len, out, n);
  }
  cJSON_Delete(j);
  return found;
}
