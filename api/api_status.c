/*
 * The status document and the reload endpoint. The configuration summary
 * is built member by member from what may be shown, so that a secret
 * added to struct config later stays out of it unless someone adds it
 * here on purpose.
 */
#include "api/api_status.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "api/api_reply.h"
#include "core/err.h"
#include "core/timefmt.h"
#include "core/url.h"

/* Adds item to obj under key; false when either is NULL (no memory). */
static bool put(cJSON *obj, const char *key, cJSON *item) {
  return item && cJSON_AddItemToObject(obj, key, item);
}

static bool push(cJSON *arr, cJSON *item) {
  return item && cJSON_AddItemToArray(arr, item);
}

static cJSON *str_or_null(const char *s) {
  return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

/* "2026-12-07T13:27:41.369Z", or null for 0. */
static cJSON *json_time(int64_t ns) {
  if (ns == 0) {
    return cJSON_CreateNull();
  }
  char out[48];
  time_format_rfc3339(ns, 0, 3, out, sizeof out);
  return cJSON_CreateString(out);
}

static cJSON *origin(const char *url) {
  char o[512];
  return url_origin(url, o, sizeof o) ? cJSON_CreateString(o)
                                      : cJSON_CreateNull();
}

static bool add_broker(cJSON *c, const struct config *cfg) {
  cJSON *b = cJSON_CreateObject();
  return put(c, "broker", b) &&
         put(b, "host", cJSON_CreateString(cfg->mqtt.host)) &&
         put(b, "port", cJSON_CreateNumber(cfg->mqtt.port)) &&
         put(b, "tls", cJSON_CreateBool(cfg->mqtt.tls.enabled)) &&
         put(b, "protocol",
             cJSON_CreateString(cfg->mqtt.protocol == MQTT_PROTO_V311 ? "3.1.1"
                                                                      : "5")) &&
         put(b, "client_id", str_or_null(cfg->mqtt.client_id));
}

static bool add_subscriptions(cJSON *c, const struct config *cfg) {
  cJSON *s = cJSON_CreateObject();
  cJSON *list = cJSON_CreateArray();
  bool ok = put(c, "subscriptions", s) &&
            put(s, "count", cJSON_CreateNumber((double)cfg->nsubs)) &&
            put(s, "topics", list);
  for (size_t i = 0; ok && i < cfg->nsubs; i++) {
    const struct config_subscription *sub = &cfg->subs[i];
    cJSON *o = cJSON_CreateObject();
    ok = push(list, o) && put(o, "name", str_or_null(sub->name)) &&
         put(o, "topic", cJSON_CreateString(sub->topic)) &&
         put(o, "qos", cJSON_CreateNumber(sub->qos)) &&
         put(o, "format", cJSON_CreateString(config_format_name(sub->format)));
  }
  return ok;
}

static bool add_outputs(cJSON *c, const struct config *cfg) {
  cJSON *o = cJSON_CreateObject();
  cJSON *influx = cJSON_CreateObject();
  cJSON *file = cJSON_CreateObject();
  const struct config_influx *in = &cfg->influx;
  bool ok = put(c, "outputs", o) && put(o, "influxdb", influx) &&
            put(influx, "enabled", cJSON_CreateBool(in->enabled));
  if (ok && in->enabled) {
    bool v2 = in->api == INFLUX_V2;
    ok = put(influx, "url", origin(in->url)) &&
         put(influx, "api", cJSON_CreateNumber(v2 ? 2 : 1)) &&
         (v2 ? put(influx, "org", str_or_null(in->org)) &&
                   put(influx, "bucket", str_or_null(in->bucket))
             : put(influx, "database", str_or_null(in->database)));
  }
  ok = ok && put(o, "file", file) &&
       put(file, "enabled", cJSON_CreateBool(cfg->file.enabled));
  if (ok && cfg->file.enabled) {
    ok = put(file, "path", str_or_null(cfg->file.path));
  }
  cJSON *j = ok ? cJSON_CreateObject() : NULL;
  return ok && put(c, "journal", j) &&
         put(j, "enabled", cJSON_CreateBool(cfg->journal.enabled));
}

static bool add_rules_and_receivers(cJSON *c, const struct config *cfg) {
  cJSON *r = cJSON_CreateObject();
  bool ok = put(c, "rules", r) &&
            put(r, "count", cJSON_CreateNumber((double)cfg->rules.n)) &&
            put(r, "files", cJSON_CreateNumber((double)cfg->rules.nfiles));
  cJSON *n = ok ? cJSON_CreateObject() : NULL;
  cJSON *list = ok ? cJSON_CreateArray() : NULL;
  ok = ok && put(c, "notifications", n) &&
       put(n, "enabled",
           cJSON_CreateBool(cfg->notify.enabled && cfg->notify.nreceivers)) &&
       put(n, "receivers", list);
  for (size_t i = 0; ok && i < cfg->notify.nreceivers; i++) {
    const struct config_receiver *rc = &cfg->notify.receivers[i];
    cJSON *o = cJSON_CreateObject();
    ok =
        push(list, o) && put(o, "name", cJSON_CreateString(rc->name)) &&
        put(o, "type", cJSON_CreateString(config_receiver_type_name(rc->type)));
  }
  return ok;
}

static bool add_api(cJSON *c, const struct config *cfg) {
  const struct config_api *a = &cfg->api;
  cJSON *o = cJSON_CreateObject();
  cJSON *tokens = cJSON_CreateArray();
  bool ok = put(c, "api", o) && put(o, "listen", str_or_null(a->listen)) &&
            put(o, "tls", cJSON_CreateBool(a->tls.cert_file != NULL)) &&
            put(o, "anonymous",
                cJSON_CreateString(config_api_role_name(a->anonymous))) &&
            put(o, "tokens", tokens);
  for (size_t i = 0; ok && i < a->ntokens; i++) {
    cJSON *t = cJSON_CreateObject();
    ok = push(tokens, t) &&
         put(t, "name", cJSON_CreateString(a->tokens[i].name)) &&
         put(t, "role",
             cJSON_CreateString(config_api_role_name(a->tokens[i].role)));
  }
  return ok;
}

int api_status_json(const struct api_status *st, struct buf *out) {
  const struct config *cfg = st->cfg;
  cJSON *doc = cJSON_CreateObject();
  double up = (double)(st->now_ns - st->started_ns) / 1e9;
  bool ok = doc && put(doc, "version", cJSON_CreateString(st->version)) &&
            put(doc, "started_at", json_time(st->started_ns)) &&
            put(doc, "uptime_s", cJSON_CreateNumber(up > 0 ? up : 0)) &&
            put(doc, "pid", cJSON_CreateNumber((double)st->pid));
  cJSON *c = ok ? cJSON_CreateObject() : NULL;
  ok = ok && put(doc, "config", c) && put(c, "path", str_or_null(cfg->path)) &&
       put(c, "loaded_at", json_time(st->config_loaded_ns)) &&
       put(c, "data_dir", str_or_null(cfg->data_dir)) && add_broker(c, cfg) &&
       add_subscriptions(c, cfg) && add_outputs(c, cfg) &&
       add_rules_and_receivers(c, cfg) && add_api(c, cfg);
  ok = ok && put(doc, "reloading", cJSON_CreateBool(st->reloading));
  if (ok && st->reload_at_ns) {
    cJSON *r = cJSON_CreateObject();
    ok =
        put(doc, "last_reload", r) &&
        put(r, "at", json_time(st->reload_at_ns)) &&
        put(r, "ok", cJSON_CreateBool(st->reload_ok)) &&
        put(r, "error", str_or_null(st->reload_ok ? NULL : st->reload_error)) &&
        put(r, "by", str_or_null(st->reload_by));
  } else if (ok) {
    ok = put(doc, "last_reload", cJSON_CreateNull());
  }
  char *text = ok ? cJSON_PrintUnformatted(doc) : NULL;
  cJSON_Delete(doc);
  if (!text) {
    return IOCD_ENOMEM;
  }
  int rc = buf_puts(out, text);
  if (!rc) {
    rc = buf_putc(out, '\n');
  }
  cJSON_free(text);
  return rc;
}

int api_status_handle(const struct api_status_hooks *h,
                      const struct api_request *req, struct api_reply *rep,
                      struct buf *out) {
  if (strcmp(req->path, "/api/v1/status") == 0) {
    if (!api_is_get(req)) {
      return api_reply_not_allowed(rep, out, "GET, HEAD");
    }
    struct api_status st = {0};
    h->fill(h->ud, &st);
    rep->status = 200;
    return api_status_json(&st, out);
  }
  if (strcmp(req->path, "/api/v1/reload") != 0) {
    return IOCD_ENOTFOUND;
  }
  if (strcmp(req->method, "POST") != 0) {
    return api_reply_not_allowed(rep, out, "POST");
  }
  int rc = h->reload(h->ud, req->principal ? req->principal : "anonymous");
  if (rc == IOCD_ESTATE) {
    return api_reply_error(rep, out, 409,
                           "a reload is running; GET /api/v1/status says "
                           "how it ended (\"last_reload\")");
  }
  if (rc) {
    char msg[128];
    snprintf(msg, sizeof msg, "the reload could not start: %s",
             iocd_strerror(rc));
    return api_reply_error(rep, out, 500, msg);
  }
  rep->status = 202;
  return buf_puts(out, "{\"reload\":\"started\"}\n");
}
