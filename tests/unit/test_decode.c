/*
 * The payload formats, end to end through ingest_message: each case is a
 * topic and a payload, and the expectation is either the exact line
 * protocol of the accepted points or the exact reject reason and detail.
 * Each case gets a fresh pipeline, so learned types never leak between
 * cases. A last test feeds truncated and mutated payloads to every format
 * (run it under ASan) and checks the verdicts stay consistent.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/lp.h"
#include "ingest/ingest.h"
#include "ingest/ingest_int.h"

#define NOW INT64_C(1601460000000000000) /* 2020-09-30T10:00:00Z */

struct sink_cap {
  struct buf text;
  int calls;
};

/* Renders the accepted points as line protocol. */
static int capture_sink(void *ud, size_t sub, const struct point_batch *pb) {
  (void)sub;
  struct sink_cap *c = ud;
  c->calls++;
  buf_reset(&c->text);
  for (size_t i = 0; i < pb->npoints; i++) {
    int rc = lp_append_point(&c->text, pb, &pb->points[i]);
    cr_assert_eq(rc, IOCD_OK, "lp_append_point: %d", rc);
  }
  return 0;
}

struct dcase {
  const char *topic;
  const char *payload;
  const char *content_type;
  enum ingest_reason reason;
  const char *want; /* line protocol when accepted, else the detail */
};

/* Runs every case against a fresh pipeline built for sub. */
static void run_cases(const struct config_subscription *sub,
                      const struct config_limits *limits,
                      const struct dcase *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const struct dcase *c = &cases[i];
    struct config cfg = {0};
    cfg.subs = (struct config_subscription *)sub;
    cfg.nsubs = 1;
    if (limits) {
      cfg.limits = *limits;
    }
    struct sink_cap cap = {0};
    buf_init(&cap.text, 0);
    struct iocd_err err = {{0}};
    struct ingest *in = ingest_new(&cfg, NULL, capture_sink, &cap, &err);
    cr_assert_not_null(in, "%s", err.msg);
    struct ingest_result res;
    int rc = ingest_message(in, c->topic, c->payload, strlen(c->payload),
                            c->content_type, NOW, &res);
    cr_expect_eq(res.reason, c->reason, "payload %s: reason %s (%s)",
                 c->payload, ingest_reason_id(res.reason), res.detail);
    if (c->reason == INGEST_OK) {
      cr_expect_eq(rc, IOCD_OK, "payload %s: rc %d", c->payload, rc);
      cr_expect_eq(cap.calls, 1, "payload %s", c->payload);
      cr_expect_str_eq(cap.text.data ? cap.text.data : "", c->want,
                       "payload %s: got %s", c->payload,
                       cap.text.data ? cap.text.data : "");
    } else {
      cr_expect_eq(rc, IOCD_EINVAL, "payload %s: rc %d", c->payload, rc);
      cr_expect_eq(cap.calls, 0, "payload %s", c->payload);
      cr_expect_str_eq(res.detail, c->want, "payload %s: got %s", c->payload,
                       res.detail);
    }
    ingest_free(in);
    buf_cleanup(&cap.text);
  }
}

#define RUN(sub, limits, cases) \
  run_cases(sub, limits, cases, sizeof cases / sizeof cases[0])

/* ---- json -------------------------------------------------------------- */

static char *json_tag_keys[] = {"station", "district"};
static struct config_field_type json_types[] = {
    {NULL, "note", FIELD_STRING},
};

static struct config_subscription json_sub(void) {
  struct config_subscription s = {0};
  s.name = "igate";
  s.topic = "ioc/{district}/{system}";
  s.format = FORMAT_JSON;
  s.time_unit = TIME_AUTO;
  s.measurement_key = "m";
  s.tag_keys = json_tag_keys;
  s.ntag_keys = 2;
  s.types = json_types;
  s.ntypes = 1;
  return s;
}

#define EA "ioc/Ea H'Leo/igate"
#define EA_LP "igate,district=Ea\\ H'Leo,system=igate "

static const struct dcase json_good[] = {
    {EA, "{\"online_l3\":12,\"share\":0.5}", NULL, INGEST_OK,
     EA_LP "online_l3=12i,share=0.5 1601460000000000000\n"},
    {EA, "{\"a\":1,\"b\":1.0,\"c\":1e2,\"d\":-0,\"e\":9007199254740993}", NULL,
     INGEST_OK,
     EA_LP "a=1i,b=1,c=100,d=0i,e=9007199254740993i "
           "1601460000000000000\n"},
    {EA, "{\"ok\":true,\"down\":false}", NULL, INGEST_OK,
     EA_LP "ok=true,down=false 1601460000000000000\n"},
    {EA, "{\"a\":{\"b\":1,\"c\":{\"d\":2.5}},\"e\":3}", NULL, INGEST_OK,
     EA_LP "a_b=1i,a_c_d=2.5,e=3i 1601460000000000000\n"},
    {EA, "{\"a\":null,\"b\":1}", NULL, INGEST_OK,
     EA_LP "b=1i 1601460000000000000\n"},
    {EA, " {\"v\":1,\"time\":\"2020-09-30T16:59:00+07:00\"}\n", NULL, INGEST_OK,
     EA_LP "v=1i 1601459940000000000\n"},
    {EA, "{\"v\":1,\"time\":1601459940}", NULL, INGEST_OK,
     EA_LP "v=1i 1601459940000000000\n"},
    {EA, "{\"time\":1601459940.123456789,\"v\":1}", NULL, INGEST_OK,
     EA_LP "v=1i 1601459940123456789\n"},
    {EA, "{\"v\":1,\"time\":null}", NULL, INGEST_OK,
     EA_LP "v=1i 1601460000000000000\n"},
    {EA, "{\"m\":\"weather\",\"temp\":27.5}", NULL, INGEST_OK,
     "weather,district=Ea\\ H'Leo,system=igate temp=27.5 "
     "1601460000000000000\n"},
    {EA, "{\"station\":\"A1\",\"v\":1}", NULL, INGEST_OK,
     "igate,district=Ea\\ H'Leo,station=A1,system=igate v=1i "
     "1601460000000000000\n"},
    /* The topic is authenticated by the broker, the payload is not. */
    {EA, "{\"district\":\"Buôn Hồ\",\"v\":1}", NULL, INGEST_OK,
     EA_LP "v=1i 1601460000000000000\n"},
    {EA, "{\"station\":12,\"v\":1}", NULL, INGEST_OK,
     "igate,district=Ea\\ H'Leo,station=12,system=igate v=1i "
     "1601460000000000000\n"},
    {EA, "[{\"v\":1},{\"v\":2,\"time\":\"2020-09-30T09:59:00Z\"}]", NULL,
     INGEST_OK,
     EA_LP "v=1i 1601460000000000000\n" EA_LP "v=2i 1601459940000000000\n"},
    {EA, "{\"note\":\"hồ sơ \\\"trễ\\\"\",\"v\":1}", NULL, INGEST_OK,
     EA_LP "note=\"hồ sơ \\\"trễ\\\"\",v=1i 1601460000000000000\n"},
    {EA, "{\"nhiệt độ\":27.5}", NULL, INGEST_OK,
     EA_LP "nhiệt\\ độ=27.5 1601460000000000000\n"},
    {"ioc/Buôn Ma Thuột/idesk", "{\"documents\":1410312}", NULL, INGEST_OK,
     "igate,district=Buôn\\ Ma\\ Thuột,system=idesk documents=1410312i "
     "1601460000000000000\n"},
};

Test(ingest_json, decodes_objects_and_arrays_into_exact_points) {
  struct config_subscription sub = json_sub();
  RUN(&sub, NULL, json_good);
}

static const struct dcase json_bad[] = {
    {EA, "{\"a\":1", NULL, INGEST_MALFORMED,
     "invalid JSON near line 1, column 6"},
    {EA, "{\"a\":1} x", NULL, INGEST_MALFORMED,
     "unexpected text after the JSON value at line 1, column 9"},
    {EA, "", NULL, INGEST_MALFORMED, "empty payload"},
    {EA, "{\"a\":\"x\\u0000y\"}", NULL, INGEST_MALFORMED,
     "\\u0000 in a string at byte 8"},
    {EA, "{\"a\":1,\"a\":2}", NULL, INGEST_MALFORMED,
     "field \"a\" appears twice"},
    {EA, "{\"received\":\"12\"}", NULL, INGEST_WRONG_TYPE,
     "field \"received\": expected a number or boolean, got string"},
    {EA, "{\"a\":[1,2]}", NULL, INGEST_WRONG_TYPE,
     "field \"a\": expected a number, boolean or object, got array"},
    {EA, "42", NULL, INGEST_WRONG_TYPE,
     "expected a JSON object or an array of objects, got number"},
    {EA, "[{\"v\":1},3]", NULL, INGEST_WRONG_TYPE,
     "element 2: expected an object, got number"},
    {EA, "{\"m\":5,\"v\":1}", NULL, INGEST_WRONG_TYPE,
     "\"m\": expected a string naming the measurement, got number"},
    {EA, "{\"station\":{\"x\":1},\"v\":1}", NULL, INGEST_WRONG_TYPE,
     "tag \"station\": expected a string, got object"},
    {EA, "{\"a\":99999999999999999999}", NULL, INGEST_WRONG_TYPE,
     "field \"a\": integer 99999999999999999999 is out of the int64 range"},
    {EA, "{\"a\":1e999}", NULL, INGEST_NOT_FINITE,
     "field \"a\": 1e999 is not finite"},
    {EA, "{\"a\":-1e999}", NULL, INGEST_NOT_FINITE,
     "field \"a\": -1e999 is not finite"},
    {EA, "{\"a\":NaN}", NULL, INGEST_MALFORMED,
     "invalid JSON near line 1, column 6"},
    {EA,
     "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{\"i\":1}}}}}}}}"
     "}",
     NULL, INGEST_TOO_DEEP, "nesting deeper than 8 levels at byte 41"},
    {EA, "{\"v\":1,\"time\":\"2020-02-30T00:00:00Z\"}", NULL, INGEST_BAD_TIME,
     "\"time\": \"2020-02-30T00:00:00Z\": day out of range"},
    {EA, "{\"v\":1,\"time\":\"2020-09-30T10:00:00\"}", NULL, INGEST_BAD_TIME,
     "\"time\": \"2020-09-30T10:00:00\": no offset (Z or +hh:mm)"},
    {EA, "{\"v\":1,\"time\":true}", NULL, INGEST_BAD_TIME,
     "\"time\": expected a timestamp, got boolean"},
    {EA, "{\"v\":1,\"time\":1e30}", NULL, INGEST_BAD_TIME,
     "\"time\": 1e30 seconds is out of range"},
    {EA, "{\"v\":1,\"time\":\"2020-09-30T11:00:00Z\"}", NULL,
     INGEST_TIME_FUTURE,
     "timestamp 2020-09-30T11:00:00Z is more than 600 s in the future"},
    {EA, "{\"v\":1,\"time\":\"2019-01-01T00:00:00Z\"}", NULL, INGEST_TIME_PAST,
     "timestamp 2019-01-01T00:00:00Z is more than 31622400 s in the past"},
    {EA, "[{\"v\":1},{\"v\":1,\"time\":\"2019-01-01T00:00:00Z\"}]", NULL,
     INGEST_TIME_PAST,
     "point 2: timestamp 2019-01-01T00:00:00Z is more than 31622400 s in "
     "the past"},
    {EA, "{}", NULL, INGEST_NO_FIELDS, "no fields"},
    {EA, "{\"a\":null,\"time\":\"2020-09-30T10:00:00Z\"}", NULL,
     INGEST_NO_FIELDS, "no fields"},
    {EA, "[]", NULL, INGEST_NO_FIELDS, "no points"},
    {EA, "{\"station\":\"x\\\\\",\"v\":1}", NULL, INGEST_BAD_NAME,
     "tag \"station\" value \"x\\\\\" ends in a backslash"},
    {EA, "{\"station\":\"\",\"v\":1}", NULL, INGEST_BAD_NAME,
     "tag \"station\" value is empty"},
    {EA, "{\"a\\u0001\":1}", NULL, INGEST_BAD_NAME,
     "field key \"a\\x01\" contains a control character"},
    {EA, "{\"m\":\"\",\"v\":1}", NULL, INGEST_BAD_NAME, "measurement is empty"},
    {"ioc//igate", "{\"v\":1}", NULL, INGEST_BAD_NAME,
     "tag \"district\" value is empty"},
    {EA, "{\"v\":1,\"x\":\"\xff\"}", NULL, INGEST_INVALID_UTF8,
     "payload: invalid UTF-8 at byte 13"},
    {"ioc/Ea H\xc3'Leo/igate", "{\"v\":1}", NULL, INGEST_INVALID_UTF8,
     "topic: invalid UTF-8 at byte 9"},
};

Test(ingest_json, rejects_bad_payloads_with_reason_and_detail) {
  struct config_subscription sub = json_sub();
  RUN(&sub, NULL, json_bad);
}

Test(ingest_json, string_members_become_fields_when_allowed) {
  struct config_subscription sub = json_sub();
  sub.allow_strings = true;
  static const struct dcase cases[] = {
      {EA, "{\"state\":\"open\",\"v\":1}", NULL, INGEST_OK,
       EA_LP "state=\"open\",v=1i 1601460000000000000\n"},
  };
  RUN(&sub, NULL, cases);
}

Test(ingest_json, time_key_and_units_follow_the_subscription) {
  struct config_subscription sub = json_sub();
  sub.time_key = "ts";
  sub.time_unit = TIME_MS;
  static const struct dcase ms[] = {
      {EA, "{\"ts\":1601459940000,\"v\":1}", NULL, INGEST_OK,
       EA_LP "v=1i 1601459940000000000\n"},
      {EA, "{\"ts\":1601459940000.5,\"v\":1}", NULL, INGEST_OK,
       EA_LP "v=1i 1601459940000500000\n"},
      {EA, "{\"ts\":\"2020-09-30T09:59:00Z\",\"v\":1}", NULL, INGEST_OK,
       EA_LP "v=1i 1601459940000000000\n"},
      /* With time_key "ts", a member named "time" would be a field, and
       * InfluxDB refuses a field called time. */
      {EA, "{\"time\":5}", NULL, INGEST_BAD_NAME,
       "field key \"time\" is reserved"},
  };
  RUN(&sub, NULL, ms);
  sub.time_unit = TIME_NS;
  static const struct dcase ns[] = {
      {EA, "{\"ts\":1601459940000000001,\"v\":1}", NULL, INGEST_OK,
       EA_LP "v=1i 1601459940000000001\n"},
      {EA, "{\"ts\":1601459940000000000.5,\"v\":1}", NULL, INGEST_BAD_TIME,
       "\"ts\": 1601459940000000000.5 is not a whole number of nanoseconds"},
  };
  RUN(&sub, NULL, ns);
  sub.time_unit = TIME_RFC3339;
  static const struct dcase rfc[] = {
      {EA, "{\"ts\":1601459940,\"v\":1}", NULL, INGEST_BAD_TIME,
       "\"ts\": expected an RFC 3339 string, got number 1601459940"},
  };
  RUN(&sub, NULL, rfc);
}

Test(ingest_json, enforces_the_configured_limits) {
  struct config_subscription sub = json_sub();
  struct config_limits lim = {0};
  lim.max_payload_bytes = 16;
  lim.max_fields = 2;
  lim.max_json_depth = 2;
  static const struct dcase cases[] = {
      {EA, "{\"a\":1,\"b\":2}", NULL, INGEST_OK,
       EA_LP "a=1i,b=2i 1601460000000000000\n"},
      {EA, "{\"a\":1,\"b\":2,\"c\":3}", NULL, INGEST_TOO_BIG,
       "payload of 19 bytes is over the limit of 16"},
      {EA, "{\"a\":1,\"b\":2,\"c\"", NULL, INGEST_MALFORMED,
       "invalid JSON near line 1, column 16"},
      {EA, "{\"a\":{\"b\":{}}}", NULL, INGEST_TOO_DEEP,
       "nesting deeper than 2 levels at byte 11"},
      {EA, "[[[1]]]", NULL, INGEST_TOO_DEEP,
       "nesting deeper than 2 levels at byte 3"},
  };
  RUN(&sub, &lim, cases);
  lim.max_payload_bytes = 0;
  static const struct dcase fields[] = {
      {EA, "{\"a\":1,\"b\":2,\"c\":3}", NULL, INGEST_TOO_MANY,
       "3 fields (limit 2)"},
  };
  RUN(&sub, &lim, fields);
}

Test(ingest_json, refuses_more_points_than_the_limit) {
  struct config_subscription sub = json_sub();
  struct buf b;
  buf_init(&b, 0);
  buf_putc(&b, '[');
  for (size_t i = 0; i < INGEST_DEFAULT_MAX_POINTS + 1; i++) {
    buf_puts(&b, i ? ",{\"v\":1}" : "{\"v\":1}");
  }
  buf_putc(&b, ']');
  struct dcase c = {EA, b.data, NULL, INGEST_TOO_MANY,
                    "1001 points in one message (limit 1000)"};
  struct config_limits lim = {0};
  lim.max_payload_bytes = 1 << 20;
  run_cases(&sub, &lim, &c, 1);
  buf_cleanup(&b);
}

/* ---- value ------------------------------------------------------------- */

static struct config_subscription value_sub(void) {
  struct config_subscription s = {0};
  s.name = "kpi";
  s.topic = "ioc/{district}/{field}";
  s.format = FORMAT_VALUE;
  return s;
}

#define LAK "ioc/Lắk/online"
#define LAK_LP "kpi,district=Lắk "

static const struct dcase value_cases[] = {
    {LAK, "12", NULL, INGEST_OK, LAK_LP "online=12i 1601460000000000000\n"},
    {LAK, " 0.5\n", NULL, INGEST_OK, LAK_LP "online=0.5 1601460000000000000\n"},
    {LAK, "-7", NULL, INGEST_OK, LAK_LP "online=-7i 1601460000000000000\n"},
    {LAK, "+3", NULL, INGEST_OK, LAK_LP "online=3i 1601460000000000000\n"},
    {LAK, "1e3", NULL, INGEST_OK, LAK_LP "online=1000 1601460000000000000\n"},
    {LAK, "10.61", NULL, INGEST_OK,
     LAK_LP "online=10.61 1601460000000000000\n"},
    {LAK, "true", NULL, INGEST_OK, LAK_LP "online=true 1601460000000000000\n"},
    {LAK, "false\r\n", NULL, INGEST_OK,
     LAK_LP "online=false 1601460000000000000\n"},
    {LAK, "nan", NULL, INGEST_NOT_FINITE, "\"nan\" is not finite"},
    {LAK, "-Infinity", NULL, INGEST_NOT_FINITE, "\"-Infinity\" is not finite"},
    {LAK, "inf", NULL, INGEST_NOT_FINITE, "\"inf\" is not finite"},
    {LAK, "1e999", NULL, INGEST_NOT_FINITE, "\"1e999\" is not finite"},
    {LAK, "99999999999999999999", NULL, INGEST_WRONG_TYPE,
     "integer \"99999999999999999999\" is out of the int64 range"},
    {LAK, "abc", NULL, INGEST_MALFORMED,
     "expected a number, true or false, got \"abc\""},
    {LAK, "0x10", NULL, INGEST_MALFORMED,
     "expected a number, true or false, got \"0x10\""},
    {LAK, "12 13", NULL, INGEST_MALFORMED,
     "expected a number, true or false, got \"12 13\""},
    {LAK, "TRUE", NULL, INGEST_MALFORMED,
     "expected a number, true or false, got \"TRUE\""},
    {LAK, "  ", NULL, INGEST_MALFORMED, "empty payload"},
};

Test(ingest_value, decodes_bare_numbers_and_booleans) {
  struct config_subscription sub = value_sub();
  RUN(&sub, NULL, value_cases);
}

Test(ingest_value, field_name_comes_from_capture_then_config_then_value) {
  struct config_subscription sub = value_sub();
  sub.topic = "ioc/{district}/temp";
  static const struct dcase dflt[] = {
      {"ioc/Lắk/temp", "27.5", NULL, INGEST_OK,
       LAK_LP "value=27.5 1601460000000000000\n"},
  };
  RUN(&sub, NULL, dflt);
  sub.field = "celsius";
  sub.measurement = "weather";
  static const struct dcase named[] = {
      {"ioc/Lắk/temp", "27.5", NULL, INGEST_OK,
       "weather,district=Lắk celsius=27.5 1601460000000000000\n"},
  };
  RUN(&sub, NULL, named);
  sub.topic = "ioc/{district}/{measurement}/{field}";
  static const struct dcase captured[] = {
      {"ioc/Lắk/air/pm25", "12", NULL, INGEST_OK,
       "air,district=Lắk pm25=12i 1601460000000000000\n"},
  };
  RUN(&sub, NULL, captured);
}

/* ---- line protocol ------------------------------------------------------ */

static struct config_subscription line_sub(void) {
  struct config_subscription s = {0};
  s.name = "lp";
  s.topic = "ioc/{district}/lp";
  s.format = FORMAT_LINE;
  s.time_unit = TIME_AUTO;
  return s;
}

#define KA "ioc/Krông Ana/lp"

static const struct dcase line_cases[] = {
    {KA, "weather,station=A temp=27.5,hum=81i 1601460000000000000\n", NULL,
     INGEST_OK,
     "weather,district=Krông\\ Ana,station=A temp=27.5,hum=81i "
     "1601460000000000000\n"},
    {KA, "weather,district=Lắk temp=27.5", NULL, INGEST_OK,
     "weather,district=Krông\\ Ana temp=27.5 1601460000000000000\n"},
    {KA, "a v=1i\n# comment\n\nb s=\"x y\",ok=true 1601459999000000000\n", NULL,
     INGEST_OK,
     "a,district=Krông\\ Ana v=1i 1601460000000000000\n"
     "b,district=Krông\\ Ana s=\"x y\",ok=true 1601459999000000000\n"},
    {KA, "# only a comment\n", NULL, INGEST_NO_FIELDS, "no points"},
    {KA, "a v=1 1501460000000000000", NULL, INGEST_TIME_PAST,
     "timestamp 2017-07-31T00:13:20Z is more than 31622400 s in the past"},
};

Test(ingest_line, decodes_line_protocol_with_topic_tags_winning) {
  struct config_subscription sub = line_sub();
  RUN(&sub, NULL, line_cases);
}

Test(ingest_line, rejects_malformed_lines_naming_the_line) {
  struct config_subscription sub = line_sub();
  struct config cfg = {0};
  cfg.subs = &sub;
  cfg.nsubs = 1;
  struct ingest *in = ingest_new(&cfg, NULL, NULL, NULL, NULL);
  cr_assert_not_null(in);
  struct ingest_result res;
  const char *p = "a v=1\nweather temp=\n";
  cr_assert_eq(ingest_message(in, KA, p, strlen(p), NULL, NOW, &res),
               IOCD_EINVAL);
  cr_assert_eq(res.reason, INGEST_MALFORMED);
  cr_assert(strstr(res.detail, "2") != NULL, "%s", res.detail);
  ingest_free(in);
}

/* The limit counts points, not lines: a string field may hold newlines. */
Test(ingest_line, counts_points_not_the_lines_of_a_string) {
  struct config_subscription sub = line_sub();
  struct buf one, many;
  buf_init(&one, 0);
  buf_init(&many, 0);
  buf_puts(&one, "notes text=\"");
  for (size_t i = 0; i < INGEST_DEFAULT_MAX_POINTS + 1; i++) {
    buf_puts(&one, "line\n");
    buf_puts(&many, "m v=1i 1601460000000000000\n");
  }
  buf_puts(&one, "\" 1601460000000000000\n");
  struct dcase c[] = {
      {KA, many.data, NULL, INGEST_TOO_MANY,
       "more than 1000 points in one message"},
  };
  run_cases(&sub, NULL, c, 1);
  struct config cfg = {0};
  cfg.subs = &sub;
  cfg.nsubs = 1;
  struct ingest *in = ingest_new(&cfg, NULL, NULL, NULL, NULL);
  cr_assert_not_null(in);
  struct ingest_result res;
  cr_expect_eq(ingest_message(in, KA, one.data, one.len, NULL, NOW, &res),
               IOCD_OK, "%s: %s", ingest_reason_id(res.reason), res.detail);
  ingest_free(in);
  buf_cleanup(&one);
  buf_cleanup(&many);
}

Test(ingest_line, timestamp_precision_follows_time_unit) {
  struct config_subscription sub = line_sub();
  sub.time_unit = TIME_S;
  static const struct dcase cases[] = {
      {KA, "a v=1 1601459999", NULL, INGEST_OK,
       "a,district=Krông\\ Ana v=1 1601459999000000000\n"},
  };
  RUN(&sub, NULL, cases);
}

/* ---- senml ------------------------------------------------------------- */

static struct config_subscription senml_sub(void) {
  struct config_subscription s = {0};
  s.name = "senml";
  s.topic = "ioc/{district}/senml";
  s.format = FORMAT_SENML;
  s.measurement = "sensor";
  return s;
}

#define CK "ioc/Cư Kuin/senml"
#define CK_LP "sensor,district=Cư\\ Kuin"

static const struct dcase senml_cases[] = {
    {CK,
     "[{\"bn\":\"urn:dev:ow:10e2073a01080063:\",\"bt\":1.60146e9,"
     "\"bu\":\"Cel\",\"n\":\"temp\",\"v\":23.1},"
     "{\"n\":\"hum\",\"u\":\"%RH\",\"v\":67,\"t\":-60}]",
     NULL, INGEST_OK,
     CK_LP ",unit=Cel urn:dev:ow:10e2073a01080063:temp=23.1 "
           "1601460000000000000\n" CK_LP
           ",unit=%RH urn:dev:ow:10e2073a01080063:hum=67 "
           "1601459940000000000\n"},
    {CK, "[{\"n\":\"temp\",\"v\":20,\"t\":-5}]", NULL, INGEST_OK,
     CK_LP " temp=20 1601459995000000000\n"},
    {CK, "[{\"n\":\"temp\",\"v\":20}]", NULL, INGEST_OK,
     CK_LP " temp=20 1601460000000000000\n"},
    {CK, "[{\"n\":\"temp\",\"v\":20,\"t\":1601459999.123456789}]", NULL,
     INGEST_OK, CK_LP " temp=20 1601459999123456789\n"},
    {CK, "[{\"n\":\"status\",\"vs\":\"ok\"},{\"n\":\"door\",\"vb\":true}]",
     NULL, INGEST_OK,
     CK_LP " status=\"ok\" 1601460000000000000\n" CK_LP
           " door=true 1601460000000000000\n"},
    {CK,
     "[{\"bn\":\"d1/\",\"bv\":100,\"n\":\"a\",\"v\":1},"
     "{\"n\":\"b\",\"v\":2.5}]",
     NULL, INGEST_OK,
     CK_LP " d1/a=101 1601460000000000000\n" CK_LP
           " d1/b=102.5 1601460000000000000\n"},
    {CK, "[{\"n\":\"energy\",\"s\":12.5,\"u\":\"kWh\"}]", NULL, INGEST_OK,
     CK_LP ",unit=kWh energy_sum=12.5 1601460000000000000\n"},
    {CK, "[{\"bn\":\"x:\",\"bver\":10},{\"n\":\"a\",\"v\":1,\"ut\":60}]", NULL,
     INGEST_OK, CK_LP " x:a=1 1601460000000000000\n"},
    {CK, "[{\"n\":\"a\",\"vd\":\"aGk\"}]", NULL, INGEST_WRONG_TYPE,
     "record 1: data values (vd) are not supported"},
    {CK, "[{\"n\":\"a\",\"v\":\"1\"}]", NULL, INGEST_WRONG_TYPE,
     "record 1: \"v\": expected a number, got string"},
    {CK, "[{\"v\":1}]", NULL, INGEST_BAD_NAME,
     "record 1: name \"\" is not a valid SenML name"},
    {CK, "[{\"n\":\"a\",\"v\":1},{\"n\":\"-x\",\"v\":1}]", NULL,
     INGEST_BAD_NAME, "record 2: name \"-x\" is not a valid SenML name"},
    {CK, "{\"n\":\"a\",\"v\":1}", NULL, INGEST_WRONG_TYPE,
     "expected a SenML array of records, got object"},
    {CK, "[{\"n\":\"a\"}]", NULL, INGEST_MALFORMED, "record 1: no value"},
    {CK, "[{\"n\":\"a\",\"v\":1,\"vb\":true}]", NULL, INGEST_MALFORMED,
     "record 1: more than one of v, vs and vb"},
    {CK, "[{\"n\":\"a\",\"v\":1,\"foo_\":1}]", NULL, INGEST_MALFORMED,
     "record 1: unsupported field \"foo_\""},
    {CK, "[{\"bver\":11,\"n\":\"a\",\"v\":1}]", NULL, INGEST_MALFORMED,
     "record 1: SenML version 11 is not supported"},
    {CK, "[{\"n\":\"a\",\"v\":1e999}]", NULL, INGEST_NOT_FINITE,
     "record 1: \"v\" is not finite"},
    {CK, "[{\"n\":\"a\",\"v\":1,\"t\":1e30}]", NULL, INGEST_BAD_TIME,
     "record 1: \"t\": 1e30 s is out of range"},
    {CK, "[{\"n\":\"a\",\"v\":1,\"t\":1262304000}]", NULL, INGEST_TIME_PAST,
     "timestamp 2010-01-01T00:00:00Z is more than 31622400 s in the past"},
    {CK, "[{\"bn\":\"only-base\"}]", NULL, INGEST_NO_FIELDS, "no points"},
};

Test(ingest_senml, resolves_records_into_exact_points) {
  struct config_subscription sub = senml_sub();
  RUN(&sub, NULL, senml_cases);
}

/* ---- auto -------------------------------------------------------------- */

Test(ingest_auto, content_type_picks_the_decoder_else_fallback) {
  struct config_subscription sub = {0};
  sub.name = "auto";
  sub.topic = "ioc/{district}/auto";
  sub.format = FORMAT_AUTO;
  sub.fallback = FORMAT_VALUE;
  sub.measurement = "m";
  sub.time_unit = TIME_AUTO;
#define EK "ioc/Ea Kar/auto"
#define EK_LP "m,district=Ea\\ Kar "
  static const struct dcase cases[] = {
      {EK, "{\"v\":1}", "application/json", INGEST_OK,
       EK_LP "v=1i 1601460000000000000\n"},
      {EK, "{\"v\":1}", "Application/JSON; charset=utf-8", INGEST_OK,
       EK_LP "v=1i 1601460000000000000\n"},
      {EK, "[{\"n\":\"t\",\"v\":1}]", "application/senml+json", INGEST_OK,
       EK_LP "t=1 1601460000000000000\n"},
      {EK, "5", "text/plain; charset=utf-8", INGEST_OK,
       EK_LP "value=5i 1601460000000000000\n"},
      {EK, "x v=1", "application/x-influx-line-protocol", INGEST_OK,
       "x,district=Ea\\ Kar v=1 1601460000000000000\n"},
      {EK, "x v=1", "text/vnd.influx.line-protocol", INGEST_OK,
       "x,district=Ea\\ Kar v=1 1601460000000000000\n"},
      {EK, "5", NULL, INGEST_OK, EK_LP "value=5i 1601460000000000000\n"},
      {EK, "5", "application/octet-stream", INGEST_OK,
       EK_LP "value=5i 1601460000000000000\n"},
      {EK, "{\"v\":1}", NULL, INGEST_MALFORMED,
       "expected a number, true or false, got \"{\\\"v\\\":1}\""},
  };
  RUN(&sub, NULL, cases);
}

Test(ingest_auto, maps_content_types_to_decoders) {
  cr_assert_eq(ingest__decoder_for_content_type("application/json"),
               &ingest__decoder_json);
  cr_assert_eq(ingest__decoder_for_content_type(" text/plain ; x=y"),
               &ingest__decoder_value);
  cr_assert_eq(ingest__decoder_for_content_type("application/senml+json"),
               &ingest__decoder_senml);
  cr_assert_null(ingest__decoder_for_content_type("application/jsonx"));
  cr_assert_null(ingest__decoder_for_content_type(NULL));
}

/* ---- robustness ---------------------------------------------------------- */

static const char *const seeds[] = {
    "{\"online_l3\":12,\"share\":0.5,\"time\":\"2020-09-30T17:00:00+07:00\"}",
    "[{\"a\":{\"b\":[1,2,{\"c\":\"d\"}]},\"station\":\"A\"},{\"v\":1e5}]",
    "[{\"bn\":\"urn:dev:\",\"bt\":1.60146e9,\"n\":\"t\",\"v\":23.1},"
    "{\"n\":\"h\",\"vs\":\"x\",\"t\":-1},{\"n\":\"s\",\"s\":2,\"vb\":false}]",
    "weather,station=A\\ B temp=27.5,hum=81i,s=\"q\\\"x\" "
    "1601460000000000000\nb v=1\n",
    "-12.5e-3",
    "Buôn Ma Thuột \"\\u00e9\\ud83d\\ude00\" {[ ]} 0.1e+2",
};

/* A small deterministic generator, so a failure can be replayed. */
static uint32_t next_rand(uint32_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

Test(ingest_robustness, survives_truncated_and_mutated_payloads) {
  static char *tag_keys[] = {"station"};
  enum payload_format formats[] = {FORMAT_JSON, FORMAT_VALUE, FORMAT_LINE,
                                   FORMAT_SENML, FORMAT_AUTO};
  struct config_subscription subs[5] = {{0}};
  static const char *const topics[] = {
      "f/json/{d}", "f/value/{d}", "f/line/{d}", "f/senml/{d}", "f/auto/{d}"};
  for (size_t i = 0; i < 5; i++) {
    subs[i].topic = (char *)topics[i];
    subs[i].format = formats[i];
    subs[i].fallback = FORMAT_SENML;
    subs[i].tag_keys = tag_keys;
    subs[i].ntag_keys = 1;
    subs[i].allow_strings = i == 0;
    subs[i].time_unit = TIME_AUTO;
  }
  struct config cfg = {0};
  cfg.subs = subs;
  cfg.nsubs = 5;
  cfg.limits.max_series = 50;
  struct stats *st = stats_new();
  struct sink_cap cap = {0};
  buf_init(&cap.text, 0);
  struct ingest *in = ingest_new(&cfg, st, capture_sink, &cap, NULL);
  cr_assert_not_null(in);
  static const char *const cts[] = {NULL, "application/json",
                                    "application/senml+json", "text/plain",
                                    "application/x-influx-line-protocol"};
  uint32_t seed = 12345;
  char buf[512];
  uint64_t messages = 0;
  for (size_t f = 0; f < 5; f++) {
    char topic[32];
    snprintf(topic, sizeof topic, "f/%s/x",
             f == 0   ? "json"
             : f == 1 ? "value"
             : f == 2 ? "line"
             : f == 3 ? "senml"
                      : "auto");
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
      size_t n = strlen(seeds[s]);
      /* Every prefix, then random byte flips, inserts and deletes. */
      for (size_t k = 0; k <= n; k++) {
        struct ingest_result res;
        int rc = ingest_message(in, topic, seeds[s], k, cts[k % 5], NOW, &res);
        cr_assert(rc == IOCD_OK || rc == IOCD_EINVAL, "rc %d", rc);
        cr_assert_eq(rc == IOCD_EINVAL, res.reason != INGEST_OK);
        messages++;
      }
      for (int round = 0; round < 400; round++) {
        size_t len = n;
        memcpy(buf, seeds[s], n);
        int edits = 1 + (int)(next_rand(&seed) % 4);
        for (int e = 0; e < edits && len > 0; e++) {
          size_t at = next_rand(&seed) % len;
          uint32_t op = next_rand(&seed) % 3;
          char c = (char)(next_rand(&seed) & 0xff);
          if (op == 0) {
            buf[at] = c;
          } else if (op == 1 && len + 1 < sizeof buf) {
            memmove(buf + at + 1, buf + at, len - at);
            buf[at] = "{}[]\",:\\0123456789.eE-+ntf"[next_rand(&seed) % 27];
            len++;
          } else {
            memmove(buf + at, buf + at + 1, len - at - 1);
            len--;
          }
        }
        struct ingest_result res;
        int rc = ingest_message(in, topic, buf, len, cts[round % 5], NOW, &res);
        cr_assert(rc == IOCD_OK || rc == IOCD_EINVAL, "rc %d", rc);
        cr_assert_eq(rc == IOCD_EINVAL, res.reason != INGEST_OK);
        if (rc == IOCD_OK) {
          cr_assert_gt(res.npoints, 0);
        }
        messages++;
      }
    }
  }
  /* Every message was counted once, as accepted or as one reject. */
  cr_assert_eq(stats_sum(st, "iocd_messages_total", NULL), messages);
  cr_assert_eq(stats_sum(st, "iocd_messages_accepted_total", NULL) +
                   stats_sum(st, "iocd_rejects_total", NULL),
               messages);
  cr_assert_leq(ingest_series_count(in), 50);
  ingest_free(in);
  stats_free(st);
  buf_cleanup(&cap.text);
}
