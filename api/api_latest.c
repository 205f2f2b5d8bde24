/*
 * The latest values as JSON. An integer field is written with all its
 * digits (cJSON would round a 64-bit integer through a double); a float
 * that JSON cannot carry (NaN, an infinity) is null.
 */
#include "api/api_latest.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/api_reply.h"
#include "core/err.h"
#include "core/timefmt.h"

static bool put(cJSON *obj, const char *key, cJSON *item) {
  return item && cJSON_AddItemToObject(obj, key, item);
}

static cJSON *value_json(const struct latest_field *f) {
  char num[32];
  switch (f->type) {
    case FIELD_FLOAT:
      if (f->v.f != f->v.f || f->v.f - f->v.f != 0) {
        return cJSON_CreateNull();
      }
      return cJSON_CreateNumber(f->v.f);
    case FIELD_INT:
      snprintf(num, sizeof num, "%" PRId64, f->v.i);
      return cJSON_CreateRaw(num);
    case FIELD_BOOL:
      return cJSON_CreateBool(f->v.b);
    case FIELD_STRING:
      return cJSON_CreateString(f->v.s);
    default:
      return cJSON_CreateNull();
  }
}

static int add_series(void *ud, const struct latest_series *s) {
  cJSON *list = ud;
  cJSON *o = cJSON_CreateObject();
  if (!o || !cJSON_AddItemToArray(list, o)) {
    cJSON_Delete(o);
    return IOCD_ENOMEM;
  }
  cJSON *tags = cJSON_CreateObject();
  bool ok = put(o, "measurement", cJSON_CreateString(s->measurement)) &&
            put(o, "tags", tags);
  for (size_t i = 0; ok && i < s->ntags; i++) {
    ok = put(tags, s->tag_keys[i], cJSON_CreateString(s->tag_values[i]));
  }
  cJSON *fields = ok ? cJSON_CreateObject() : NULL;
  ok = ok && put(o, "fields", fields);
  for (size_t i = 0; ok && i < s->nfields; i++) {
    ok = put(fields, s->fields[i].key, value_json(&s->fields[i]));
  }
  char t[48];
  time_format_rfc3339(s->ts_ns, 0, -1, t, sizeof t);
  ok = ok && put(o, "time", cJSON_CreateString(t));
  return ok ? IOCD_OK : IOCD_ENOMEM;
}

int api_latest_json(const struct latest *l, const char *measurement,
                    const struct latest_match *match, size_t nmatch,
                    struct buf *out) {
  cJSON *doc = cJSON_CreateObject();
  cJSON *list = doc ? cJSON_AddArrayToObject(doc, "series") : NULL;
  if (!list) {
    cJSON_Delete(doc);
    return IOCD_ENOMEM;
  }
  int rc = latest_each(l, measurement, match, nmatch, add_series, list);
  struct latest_stats st;
  latest_get_stats(l, &st);
  cJSON *t = cJSON_CreateObject();
  bool ok = !rc && put(doc, "table", t) &&
            put(t, "series", cJSON_CreateNumber((double)st.series)) &&
            put(t, "max_series", cJSON_CreateNumber((double)st.max_series)) &&
            put(t, "evicted", cJSON_CreateNumber((double)st.evicted));
  if (!rc && !ok) {
    rc = IOCD_ENOMEM;
  }
  char *text = rc ? NULL : cJSON_PrintUnformatted(doc);
  cJSON_Delete(doc);
  if (!text) {
    return rc ? rc : IOCD_ENOMEM;
  }
  rc = buf_puts(out, text);
  if (!rc) {
    rc = buf_putc(out, '\n');
  }
  cJSON_free(text);
  return rc;
}

int api_latest_handle(const struct latest *l, const struct config *cfg,
                      const struct api_request *req, struct api_reply *rep,
                      struct buf *out) {
  if (strcmp(req->path, "/api/v1/latest") != 0) {
    return IOCD_ENOTFOUND;
  }
  if (!api_is_get(req)) {
    return api_reply_not_allowed(rep, out, "GET, HEAD");
  }
  if (!l) {
    return api_reply_error(rep, out, 503, "the latest values are not kept");
  }
  struct latest_match m[2];
  size_t n = 0;
  const char *district = api_request_arg(req, "district");
  const char *system = api_request_arg(req, "system");
  if (district) {
    m[n++] = (struct latest_match){
        cfg->sources.district_tag ? cfg->sources.district_tag : "district",
        district};
  }
  if (system) {
    m[n++] = (struct latest_match){
        cfg->sources.system_tag ? cfg->sources.system_tag : "system", system};
  }
  int rc = api_latest_json(l, api_request_arg(req, "measurement"), m, n, out);
  if (!rc) {
    rep->status = 200;
  }
  return rc;
}
