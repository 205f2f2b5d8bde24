/*
 * The documents of the operators' read endpoints, rendered without a
 * server: the alerts' filters, the rules' groups, the status (never a
 * secret) and the latest values.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "api/api_latest.h"
#include "api/api_rules.h"
#include "api/api_status.h"
#include "config/config.h"
#include "core/err.h"
#include "rules/engine.h"

static struct config *load(const char *text) {
  struct buf errors;
  buf_init(&errors, 0);
  struct config *cfg = NULL;
  int rc = config_load_text("iocd.jsonc", text, strlen(text), &cfg, &errors);
  cr_assert_eq(rc, IOCD_OK, "%s", errors.data ? errors.data : "");
  buf_cleanup(&errors);
  return cfg;
}

#define HEAD "{\"file\": {}, \"subscriptions\": [{\"topic\": \"t\"}],\n"
#define RULES                                                      \
  "\"rules\": [{\"name\": \"hi\", \"expr\": \"m.v > 5\", \"by\": " \
  "[\"district\"]}, {\"name\": \"lo\", \"expr\": \"m.v < 0\"}]"

struct filter_case {
  const char *state, *severity, *rule;
  int rc;
  const char *msg; /* a part of the error */
};

Test(alerts_filter, refuses_unknown_values_naming_the_parameter_and_allowed) {
  struct config *cfg = load(HEAD RULES "}");
  static const struct filter_case cases[] = {
      {"firing", NULL, NULL, IOCD_OK, NULL},
      {"firing,pending", "warning", "hi", IOCD_OK, NULL},
      {NULL, "critical,info", NULL, IOCD_OK, NULL},
      {NULL, NULL, "iocd_broker_unreachable", IOCD_OK, NULL},
      {"fire", NULL, NULL, IOCD_EINVAL,
       "state: \"fire\" is not a state; allowed: pending, firing, nodata, "
       "insufficient"},
      {"firing,", NULL, NULL, IOCD_EINVAL, "state: \"\""},
      {"", NULL, NULL, IOCD_EINVAL, "state: \"\""},
      {"resolved", NULL, NULL, IOCD_EINVAL, "state: \"resolved\""},
      {NULL, "high", NULL, IOCD_EINVAL,
       "severity: \"high\" is not a severity; allowed: info, warning, "
       "critical"},
      {NULL, NULL, "nope", IOCD_EINVAL, "rule: no rule is named \"nope\""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct filter_case *c = &cases[i];
    struct api_alerts_filter f;
    struct iocd_err err = {{0}};
    int rc = api_alerts_filter_parse(c->state, c->severity, NULL, c->rule, cfg,
                                     &f, &err);
    cr_expect_eq(rc, c->rc, "case %zu: rc %d (%s)", i, rc, err.msg);
    if (c->msg) {
      cr_expect(strstr(err.msg, c->msg) != NULL, "case %zu: \"%s\"", i,
                err.msg);
    }
  }
  config_free(cfg);
}

/* An engine with the rules of RULES, district A at 7 (firing) and B at 1
 * (inactive). */
static struct engine *two_districts(void) {
  static const char *const by[] = {"district"};
  const struct rule_def defs[] = {
      {.name = "hi", .expr = "m.v > 5", .by = by, .nby = 1},
      {.name = "lo", .expr = "m.v < 0"},
  };
  struct engine_opts o = {0};
  struct engine *e = NULL;
  struct rule_error re;
  cr_assert_eq(engine_new(&o, defs, 2, &e, &re), IOCD_OK, "%s", re.err.msg);
  int64_t t = INT64_C(1800000000) * 1000000000;
  struct series_label a = {"district", "A"}, b = {"district", "B"};
  cr_assert_eq(engine_add_sample(e, "m", "v", &a, 1, t, 7, t), IOCD_OK);
  cr_assert_eq(engine_add_sample(e, "m", "v", &b, 1, t, 1, t), IOCD_OK);
  return e;
}

static cJSON *parse(struct buf *out) {
  cJSON *doc = cJSON_ParseWithLength(out->data, out->len);
  cr_assert_not_null(doc, "not JSON: %.*s", (int)out->len, out->data);
  return doc;
}

Test(alerts_filter, keeps_only_the_alerts_that_pass_every_filter) {
  struct config *cfg = load(HEAD RULES "}");
  struct engine *e = two_districts();
  struct api_alerts_filter f;
  struct iocd_err err;
  struct {
    const char *state, *severity, *district;
    int want;
  } cases[] = {
      {NULL, NULL, NULL, 1},         {"firing", NULL, "A", 1},
      {"pending", NULL, NULL, 0},    {NULL, "warning", NULL, 1},
      {NULL, "critical", NULL, 0},   {NULL, NULL, "B", 0},
      {"firing", "warning", "A", 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_assert_eq(
        api_alerts_filter_parse(cases[i].state, cases[i].severity,
                                cases[i].district, NULL, cfg, &f, &err),
        IOCD_OK);
    struct buf out;
    buf_init(&out, 1 << 20);
    cr_assert_eq(api_rules_alerts_json_filtered(e, NULL, &f, &out), IOCD_OK);
    cJSON *doc = parse(&out);
    cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "alerts");
    cr_expect_eq(cJSON_GetArraySize(list), cases[i].want, "case %zu: %s", i,
                 out.data);
    cJSON_Delete(doc);
    buf_cleanup(&out);
  }
  engine_free(e);
  config_free(cfg);
}

Test(rules_groups, lists_every_group_with_its_state_and_last_value) {
  struct config *cfg = load(HEAD RULES "}");
  struct engine *e = two_districts();
  struct buf out;
  buf_init(&out, 1 << 20);
  cr_assert_eq(api_rules_rules_json(e, cfg, &out), IOCD_OK);
  cJSON *doc = parse(&out);
  cJSON *hi = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "rules"), 0);
  cJSON *groups = cJSON_GetObjectItem(hi, "groups");
  cr_assert_eq(cJSON_GetArraySize(groups), 2, "%s", out.data);
  const char *district[] = {"A", "B"}, *state[] = {"firing", "inactive"};
  double value[] = {7, 1};
  for (int i = 0; i < 2; i++) {
    cJSON *g = cJSON_GetArrayItem(groups, i);
    cr_expect_str_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(g, "labels"), "district")
            ->valuestring,
        district[i]);
    cr_expect_str_eq(cJSON_GetObjectItem(g, "state")->valuestring, state[i]);
    cr_expect_eq(cJSON_GetObjectItem(g, "value")->valuedouble, value[i]);
    cr_expect_eq(cJSON_GetObjectItem(g, "threshold")->valuedouble, 5);
    cr_expect_str_eq(cJSON_GetObjectItem(g, "evaluated_at")->valuestring,
                     "2027-01-15T08:00:00.000Z");
  }
  cr_expect_str_eq(
      cJSON_GetObjectItem(cJSON_GetArrayItem(groups, 0), "severity")
          ->valuestring,
      "warning");
  cr_expect(cJSON_IsNull(
      cJSON_GetObjectItem(cJSON_GetArrayItem(groups, 1), "severity")));
  cJSON_Delete(doc);
  buf_cleanup(&out);
  engine_free(e);
  config_free(cfg);
}

#define SECRETS_CONFIG                                                         \
  "{\"file\": {}, \"subscriptions\": [{\"topic\": \"t/{district}\"}],\n"       \
  " \"mqtt\": {\"host\": \"broker.example\", \"port\": 8883, \"username\": "   \
  "\"iocd\", \"password\": \"mqtt-pw-S3CRET\", \"tls\": {\"enabled\": "        \
  "true}},\n"                                                                  \
  " \"influxdb\": {\"url\": \"https://writer:influx-pw-S3CRET@influx.example:" \
  "8086/\", \"database\": \"ioc\", \"password\": \"influx-pw2-S3CRET\"},\n"    \
  " \"api\": {\"tokens\": [{\"name\": \"wall\", \"role\": \"viewer\", "        \
  "\"token\": \"api-token-0123456789-S3CRET\"}], \"anonymous\": \"none\"},\n"  \
  " \"notifications\": {\"receivers\": [\n"                                    \
  "   {\"name\": \"tg\", \"type\": \"telegram\", \"token\": "                  \
  "\"123:telegram-S3CRET\", \"chat_id\": \"-100\"},\n"                         \
  "   {\"name\": \"hook\", \"type\": \"webhook\", \"url\": "                   \
  "\"https://hooks.example/x?key=hook-S3CRET\"},\n"                            \
  "   {\"name\": \"mail\", \"type\": \"email\", \"smtp_url\": "                \
  "\"smtp://mail.example:587\", \"username\": \"u\", \"password\": "           \
  "\"smtp-pw-S3CRET\", \"from\": \"iocd@example\", \"to\": "                   \
  "[\"ops@example\"]}],\n"                                                     \
  "  \"route\": {\"receiver\": \"tg\"}}}\n"

Test(status, summarises_the_configuration_without_any_secret) {
  struct config *cfg = load(SECRETS_CONFIG);
  struct api_status st = {
      .version = "9.9.9",
      .started_ns = INT64_C(1800000000) * 1000000000,
      .now_ns = INT64_C(1800000060) * 1000000000,
      .pid = 42,
      .cfg = cfg,
      .config_loaded_ns = INT64_C(1800000000) * 1000000000,
      .reload_at_ns = INT64_C(1800000030) * 1000000000,
      .reload_ok = false,
      .reload_error = "iocd.jsonc:3:5: rules[0].expr: column 1: ...",
      .reload_by = "api (admin)",
  };
  struct buf out;
  buf_init(&out, 1 << 20);
  cr_assert_eq(api_status_json(&st, &out), IOCD_OK);
  cr_expect_null(strstr(out.data, "S3CRET"), "a secret in: %s", out.data);
  cJSON *doc = parse(&out);
  cr_expect_str_eq(cJSON_GetObjectItem(doc, "version")->valuestring, "9.9.9");
  cr_expect_eq(cJSON_GetObjectItem(doc, "uptime_s")->valuedouble, 60);
  cr_expect_eq(cJSON_GetObjectItem(doc, "pid")->valuedouble, 42);
  cJSON *c = cJSON_GetObjectItem(doc, "config");
  cJSON *broker = cJSON_GetObjectItem(c, "broker");
  cr_expect_str_eq(cJSON_GetObjectItem(broker, "host")->valuestring,
                   "broker.example");
  cr_expect_eq(cJSON_GetObjectItem(broker, "port")->valuedouble, 8883);
  cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(broker, "tls")));
  cJSON *influx =
      cJSON_GetObjectItem(cJSON_GetObjectItem(c, "outputs"), "influxdb");
  cr_expect_str_eq(cJSON_GetObjectItem(influx, "url")->valuestring,
                   "https://influx.example:8086");
  cJSON *recv =
      cJSON_GetObjectItem(cJSON_GetObjectItem(c, "notifications"), "receivers");
  cr_assert_eq(cJSON_GetArraySize(recv), 3);
  cr_expect_str_eq(
      cJSON_GetObjectItem(cJSON_GetArrayItem(recv, 0), "type")->valuestring,
      "telegram");
  cJSON *tok = cJSON_GetArrayItem(
      cJSON_GetObjectItem(cJSON_GetObjectItem(c, "api"), "tokens"), 0);
  cr_expect_str_eq(cJSON_GetObjectItem(tok, "name")->valuestring, "wall");
  cr_expect_str_eq(cJSON_GetObjectItem(tok, "role")->valuestring, "viewer");
  cr_expect_eq(cJSON_GetArraySize(tok), 2,
               "a token shows its name and role "
               "only");
  cJSON *lr = cJSON_GetObjectItem(doc, "last_reload");
  cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(lr, "ok")));
  cr_expect_str_eq(cJSON_GetObjectItem(lr, "by")->valuestring, "api (admin)");
  cr_expect_str_eq(cJSON_GetObjectItem(lr, "at")->valuestring,
                   "2027-01-15T08:00:30.000Z");
  cJSON_Delete(doc);
  buf_cleanup(&out);
  config_free(cfg);
}

Test(latest_json, writes_each_type_and_the_time_as_rfc3339) {
  struct latest *l = latest_new(0, 0, NULL);
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = pb_point_new(&pb, "igate", 5);
  cr_assert_eq(pb_tag(&pb, p, "district", 8, "Krông Búk", 11, false), IOCD_OK);
  cr_assert_eq(pb_field_int(&pb, p, "received", 8, INT64_C(9007199254740993)),
               IOCD_OK);
  cr_assert_eq(pb_field_float(&pb, p, "share", 5, 0.25), IOCD_OK);
  cr_assert_eq(pb_field_float(&pb, p, "bad", 3, (double)NAN), IOCD_OK);
  cr_assert_eq(pb_field_bool(&pb, p, "up", 2, true), IOCD_OK);
  cr_assert_eq(pb_field_string(&pb, p, "note", 4, "a \"q\"", 5), IOCD_OK);
  p->ts_ns = INT64_C(1800000000) * 1000000000 + 5000000;
  p->has_ts = true;
  cr_assert_eq(latest_update(l, &pb, 1), IOCD_OK);
  struct buf out;
  buf_init(&out, 1 << 20);
  cr_assert_eq(api_latest_json(l, NULL, NULL, 0, &out), IOCD_OK);
  cr_expect(strstr(out.data, "\"received\":9007199254740993") != NULL, "%s",
            out.data);
  cJSON *doc = parse(&out);
  cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "series"), 0);
  cr_expect_str_eq(cJSON_GetObjectItem(s, "measurement")->valuestring, "igate");
  cr_expect_str_eq(
      cJSON_GetObjectItem(cJSON_GetObjectItem(s, "tags"), "district")
          ->valuestring,
      "Krông Búk");
  cJSON *f = cJSON_GetObjectItem(s, "fields");
  cr_expect_eq(cJSON_GetObjectItem(f, "share")->valuedouble, 0.25);
  cr_expect(cJSON_IsNull(cJSON_GetObjectItem(f, "bad")));
  cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(f, "up")));
  cr_expect_str_eq(cJSON_GetObjectItem(f, "note")->valuestring, "a \"q\"");
  cr_expect_str_eq(cJSON_GetObjectItem(s, "time")->valuestring,
                   "2027-01-15T08:00:00.005Z");
  cJSON_Delete(doc);
  buf_cleanup(&out);
  pb_cleanup(&pb);
  latest_free(l);
}
