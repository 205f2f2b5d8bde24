/*
 * The pipeline around the decoders: routing to the first matching
 * subscription, counters, learned and declared field types with their
 * coercions, series cardinality, all-or-nothing acceptance, static and topic
 * tags, the sink's verdict, reconfiguration and the rate-limited reject log.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/lp.h"
#include "ingest/ingest.h"
#include "ingest/ingest_int.h"

#define NOW INT64_C(1601460000000000000) /* 2020-09-30T10:00:00Z */
#define SEC INT64_C(1000000000)

struct sink_cap {
  struct buf text;
  int calls;
  size_t sub;
  int fail; /* returned instead of taking the points */
};

static int capture_sink(void *ud, size_t sub, const struct point_batch *pb) {
  struct sink_cap *c = ud;
  c->calls++;
  c->sub = sub;
  if (c->fail) {
    return c->fail;
  }
  buf_reset(&c->text);
  for (size_t i = 0; i < pb->npoints; i++) {
    cr_assert_eq(lp_append_point(&c->text, pb, &pb->points[i]), IOCD_OK);
  }
  return 0;
}

/* A pipeline with one json subscription "igate" on ioc/{district}/igate. */
struct fixture {
  struct config_subscription subs[2];
  struct config cfg;
  struct stats *stats;
  struct sink_cap cap;
  struct ingest *in;
};

static void fx_init(struct fixture *fx) {
  memset(fx, 0, sizeof *fx);
  fx->subs[0].name = "igate";
  fx->subs[0].topic = "ioc/{district}/igate";
  fx->subs[0].format = FORMAT_JSON;
  fx->subs[0].time_unit = TIME_AUTO;
  fx->cfg.subs = fx->subs;
  fx->cfg.nsubs = 1;
  fx->stats = stats_new();
  buf_init(&fx->cap.text, 0);
}

static void fx_start(struct fixture *fx) {
  struct iocd_err err = {{0}};
  fx->in = ingest_new(&fx->cfg, fx->stats, capture_sink, &fx->cap, &err);
  cr_assert_not_null(fx->in, "%s", err.msg);
}

static void fx_done(struct fixture *fx) {
  ingest_free(fx->in);
  stats_free(fx->stats);
  buf_cleanup(&fx->cap.text);
}

static int send(struct fixture *fx, const char *topic, const char *payload,
                struct ingest_result *res) {
  return ingest_message(fx->in, topic, payload, strlen(payload), NULL, NOW,
                        res);
}

static uint64_t counter(struct fixture *fx, const char *name, const char *sub) {
  return stats_sum(fx->stats, name, "subscription", sub, NULL);
}

static uint64_t rejects(struct fixture *fx, const char *sub,
                        const char *reason) {
  return stats_sum(fx->stats, "iocd_rejects_total", "subscription", sub,
                   "reason", reason, NULL);
}

Test(ingest_pipeline, routes_to_the_first_matching_subscription) {
  struct fixture fx;
  fx_init(&fx);
  fx.subs[1].name = "rest";
  fx.subs[1].topic = "ioc/#";
  fx.subs[1].format = FORMAT_VALUE;
  fx.subs[1].measurement = "other";
  fx.cfg.nsubs = 2;
  fx_start(&fx);
  struct ingest_result res;
  cr_assert_eq(send(&fx, "ioc/Lắk/igate", "{\"v\":1}", &res), IOCD_OK);
  cr_assert_eq(res.sub, 0);
  cr_assert_eq(fx.cap.sub, 0);
  cr_assert_eq(send(&fx, "ioc/Lắk/idesk", "5", &res), IOCD_OK);
  cr_assert_eq(res.sub, 1);
  cr_assert_eq(fx.cap.sub, 1);
  cr_assert_str_eq(fx.cap.text.data, "other value=5i 1601460000000000000\n");
  cr_assert_eq(res.npoints, 1);
  fx_done(&fx);
}

Test(ingest_pipeline, counts_a_topic_without_subscription) {
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx);
  struct ingest_result res;
  cr_assert_eq(send(&fx, "other/topic", "{\"v\":1}", &res), IOCD_EINVAL);
  cr_assert_eq(res.reason, INGEST_NO_SUBSCRIPTION);
  cr_assert_eq(res.sub, -1);
  cr_assert_eq(fx.cap.calls, 0);
  cr_assert_eq(rejects(&fx, "", "no_subscription"), 1);
  cr_assert_eq(counter(&fx, "iocd_messages_total", ""), 1);
  cr_assert_eq(counter(&fx, "iocd_messages_total", "igate"), 0);
  fx_done(&fx);
}

Test(ingest_pipeline, registers_every_counter_at_start) {
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx);
  struct buf out;
  buf_init(&out, 0);
  cr_assert_eq(stats_render_prometheus(fx.stats, &out), IOCD_OK);
  static const char *const want[] = {
      "iocd_messages_total{subscription=\"igate\"} 0",
      "iocd_messages_total{subscription=\"\"} 0",
      "iocd_messages_accepted_total{subscription=\"igate\"} 0",
      "iocd_points_accepted_total{subscription=\"igate\"} 0",
      "iocd_rejects_total{subscription=\"\",reason=\"no_subscription\"} 0",
      "iocd_series 0",
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    cr_expect(strstr(out.data, want[i]) != NULL, "missing %s", want[i]);
  }
  for (int r = INGEST_NO_SUBSCRIPTION + 1; r < INGEST_NREASONS; r++) {
    char line[160];
    snprintf(line, sizeof line,
             "iocd_rejects_total{subscription=\"igate\",reason=\"%s\"} 0",
             ingest_reason_id((enum ingest_reason)r));
    cr_expect(strstr(out.data, line) != NULL, "missing %s", line);
  }
  buf_cleanup(&out);
  fx_done(&fx);
}

Test(ingest_pipeline, counts_messages_points_and_rejects) {
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx);
  struct ingest_result res;
  send(&fx, "ioc/A/igate", "[{\"v\":1},{\"v\":2}]", &res);
  send(&fx, "ioc/A/igate", "{\"received\":\"x\"}", &res);
  send(&fx, "ioc/A/igate", "{\"v\":", &res);
  send(&fx, "ioc/B/igate", "{\"v\":3}", &res);
  send(&fx, "nowhere", "{\"v\":3}", &res);
  cr_assert_eq(counter(&fx, "iocd_messages_total", "igate"), 4);
  cr_assert_eq(counter(&fx, "iocd_messages_accepted_total", "igate"), 2);
  cr_assert_eq(counter(&fx, "iocd_points_accepted_total", "igate"), 3);
  cr_assert_eq(rejects(&fx, "igate", "wrong_type"), 1);
  cr_assert_eq(rejects(&fx, "igate", "malformed"), 1);
  cr_assert_eq(rejects(&fx, "", "no_subscription"), 1);
  struct metric *series = stats_find(fx.stats, "iocd_series", NULL);
  cr_assert_not_null(series);
  cr_assert_float_eq(series->value, 2.0, 1e-9);
  cr_assert_eq(ingest_series_count(fx.in), 2);
  fx_done(&fx);
}

Test(ingest_pipeline, handles_the_next_message_after_a_bad_one_normally) {
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx);
  struct ingest_result res;
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"a\":{\"b\":[", &res), IOCD_EINVAL);
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"a\":1e999}", &res), IOCD_EINVAL);
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"a\":{\"b\":1}}", &res), IOCD_OK);
  cr_assert_eq(res.reason, INGEST_OK);
  cr_assert_str_eq(res.detail, "");
  cr_assert_str_eq(fx.cap.text.data,
                   "igate,district=A a_b=1i 1601460000000000000\n");
  fx_done(&fx);
}

/* What the store would refuse is refused here, with a reason: names whose
 * escapes InfluxDB 1.6 cannot read back as written. */
Test(ingest_pipeline, refuses_what_the_store_could_not_write_with_a_reason) {
  static const struct {
    const char *what, *topic, *payload, *detail;
  } cases[] = {
      {"field key with an escaped comma", "m/x", "{\"a\\\\,b\": 1}",
       "field key \"a\\,b\""},
      {"field key ending in a backslash", "m/x", "{\"ab\\\\\": 1}",
       "field key \"ab\\\""},
      {"measurement level ending in a backslash", "m/x\\", "{\"v\": 1}",
       "measurement \"x\\\""},
      {"measurement_key value with an escaped comma", "m/x",
       "{\"m\": \"a\\\\,b\", \"v\": 1}", "measurement \"a\\,b\""},
  };
  struct fixture fx;
  fx_init(&fx);
  fx.subs[0].topic = "m/{measurement}";
  fx.subs[0].measurement_key = "m";
  fx_start(&fx);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ingest_result res;
    cr_expect_eq(send(&fx, cases[i].topic, cases[i].payload, &res),
                 IOCD_EINVAL, "%s: accepted", cases[i].what);
    cr_expect_eq(res.reason, INGEST_BAD_NAME, "%s: reason %s", cases[i].what,
                 ingest_reason_id(res.reason));
    cr_expect(strstr(res.detail, cases[i].detail) != NULL,
              "%s: detail \"%s\"", cases[i].what, res.detail);
  }
  cr_expect_eq(rejects(&fx, "igate", "bad_name"), 4);
  cr_expect_eq(fx.cap.calls, 0, "a refused point reached the sink");
  fx_done(&fx);
}

/* ---- field types ------------------------------------------------------- */

static const struct {
  const char *first; /* teaches the type */
  const char *then;
  enum ingest_reason reason;
  const char *want; /* line protocol of `then`, or the detail */
} learned_cases[] = {
    {"{\"v\":1}", "{\"v\":2}", INGEST_OK,
     "igate,district=A v=2i 1601460000000000000\n"},
    {"{\"v\":1.5}", "{\"v\":2}", INGEST_OK,
     "igate,district=A v=2 1601460000000000000\n"},
    {"{\"v\":1}", "{\"v\":3.0}", INGEST_OK,
     "igate,district=A v=3i 1601460000000000000\n"},
    {"{\"v\":1}", "{\"v\":-2e3}", INGEST_OK,
     "igate,district=A v=-2000i 1601460000000000000\n"},
    {"{\"v\":1}", "{\"v\":3.5}", INGEST_TYPE_CONFLICT,
     "field \"v\" of \"igate\" is integer, got float 3.5"},
    {"{\"v\":1}", "{\"v\":1e19}", INGEST_TYPE_CONFLICT,
     "field \"v\" of \"igate\" is integer, got float 1e+19"},
    {"{\"v\":1}", "{\"v\":true}", INGEST_TYPE_CONFLICT,
     "field \"v\" of \"igate\" is integer, got boolean true"},
    {"{\"v\":false}", "{\"v\":0}", INGEST_TYPE_CONFLICT,
     "field \"v\" of \"igate\" is boolean, got integer 0"},
    {"{\"v\":0.1}", "{\"v\":\"x\"}", INGEST_TYPE_CONFLICT,
     "field \"v\" of \"igate\" is float, got string"},
};

Test(ingest_types, learns_from_the_first_value_and_coerces) {
  for (size_t i = 0; i < sizeof learned_cases / sizeof learned_cases[0]; i++) {
    struct fixture fx;
    fx_init(&fx);
    fx.subs[0].allow_strings = true;
    fx_start(&fx);
    struct ingest_result res;
    cr_assert_eq(send(&fx, "ioc/A/igate", learned_cases[i].first, &res),
                 IOCD_OK, "%s: %s", learned_cases[i].first, res.detail);
    send(&fx, "ioc/A/igate", learned_cases[i].then, &res);
    cr_expect_eq(res.reason, learned_cases[i].reason, "%s then %s: %s",
                 learned_cases[i].first, learned_cases[i].then, res.detail);
    const char *got = res.reason == INGEST_OK ? fx.cap.text.data : res.detail;
    cr_expect_str_eq(got, learned_cases[i].want, "%s then %s",
                     learned_cases[i].first, learned_cases[i].then);
    fx_done(&fx);
  }
}

Test(ingest_types, types_are_per_measurement) {
  struct fixture fx;
  fx_init(&fx);
  fx.subs[0].measurement_key = "m";
  fx_start(&fx);
  struct ingest_result res;
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"m\":\"a\",\"v\":true}", &res),
               IOCD_OK);
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"m\":\"b\",\"v\":1.5}", &res),
               IOCD_OK, "%s", res.detail);
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"m\":\"a\",\"v\":1.5}", &res),
               IOCD_EINVAL);
  cr_assert_str_eq(res.detail,
                   "field \"v\" of \"a\" is boolean, got float 1.5");
  fx_done(&fx);
}

Test(ingest_types, a_conflict_inside_one_message_is_caught) {
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx);
  struct ingest_result res;
  cr_assert_eq(send(&fx, "ioc/A/igate", "[{\"v\":1},{\"v\":true}]", &res),
               IOCD_EINVAL);
  cr_assert_eq(res.reason, INGEST_TYPE_CONFLICT);
  cr_assert_str_eq(res.detail,
                   "field \"v\" of \"igate\" is integer, got boolean true");
  fx_done(&fx);
}

static struct config_field_type declared[] = {
    {NULL, "share", FIELD_FLOAT}, {NULL, "count", FIELD_INT},
    {"igate", "ok", FIELD_BOOL},  {"other", "ok", FIELD_STRING},
    {NULL, "note", FIELD_STRING},
};

Test(ingest_types, declared_types_win_over_the_first_value) {
  struct fixture fx;
  fx_init(&fx);
  fx.subs[0].types = declared;
  fx.subs[0].ntypes = sizeof declared / sizeof declared[0];
  fx_start(&fx);
  struct ingest_result res;
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"share\":1,\"count\":2.0}", &res),
               IOCD_OK, "%s", res.detail);
  cr_assert_str_eq(fx.cap.text.data,
                   "igate,district=A share=1,count=2i 1601460000000000000\n");
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"count\":2.5}", &res), IOCD_EINVAL);
  cr_assert_str_eq(res.detail,
                   "field \"count\" of \"igate\" is integer, got float 2.5");
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"ok\":1}", &res), IOCD_EINVAL);
  cr_assert_str_eq(res.detail,
                   "field \"ok\" of \"igate\" is boolean, got integer 1");
  /* A declared string field is accepted even without allow_strings. */
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"note\":\"trễ hạn\"}", &res),
               IOCD_OK, "%s", res.detail);
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"other\":\"x\"}", &res),
               IOCD_EINVAL);
  cr_assert_eq(res.reason, INGEST_WRONG_TYPE);
  fx_done(&fx);
}

Test(ingest_types, rejected_message_registers_no_type_and_no_series) {
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx);
  struct ingest_result res;
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"b\":1}", &res), IOCD_OK);
  cr_assert_eq(ingest_series_count(fx.in), 1);
  /* "a" would be learned as float and district B would be a new series,
   * but "b" conflicts, so the whole message is rejected. */
  cr_assert_eq(send(&fx, "ioc/B/igate", "{\"a\":1.5,\"b\":true}", &res),
               IOCD_EINVAL);
  cr_assert_eq(res.reason, INGEST_TYPE_CONFLICT);
  cr_assert_eq(ingest_series_count(fx.in), 1);
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"a\":1}", &res), IOCD_OK);
  cr_assert_str_eq(fx.cap.text.data,
                   "igate,district=A a=1i 1601460000000000000\n");
  fx_done(&fx);
}

/* ---- cardinality ------------------------------------------------------ */

Test(ingest_cardinality, refuses_new_series_past_the_limit) {
  struct fixture fx;
  fx_init(&fx);
  fx.cfg.limits.max_series = 2;
  fx_start(&fx);
  struct ingest_result res;
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"v\":1}", &res), IOCD_OK);
  cr_assert_eq(send(&fx, "ioc/B/igate", "{\"v\":1}", &res), IOCD_OK);
  cr_assert_eq(send(&fx, "ioc/Buôn Hồ/igate", "{\"v\":1}", &res), IOCD_EINVAL);
  cr_assert_eq(res.reason, INGEST_CARDINALITY);
  cr_assert_str_eq(res.detail,
                   "limit of 2 series reached; new series "
                   "\"igate,district=Buôn Hồ\"");
  /* Known series still pass. */
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"v\":2}", &res), IOCD_OK);
  cr_assert_eq(ingest_series_count(fx.in), 2);
  cr_assert_eq(rejects(&fx, "igate", "cardinality"), 1);
  fx_done(&fx);
}

Test(ingest_cardinality, counts_a_message_as_a_whole) {
  struct fixture fx;
  fx_init(&fx);
  fx.cfg.limits.max_series = 3;
  fx.subs[0].measurement_key = "m";
  fx_start(&fx);
  struct ingest_result res;
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"v\":1}", &res), IOCD_OK);
  /* Two new series and one known; only two slots are left for three. */
  cr_assert_eq(send(&fx, "ioc/A/igate",
                    "[{\"m\":\"x\",\"v\":1},{\"m\":\"x\",\"v\":2},"
                    "{\"v\":3},{\"m\":\"y\",\"v\":1},{\"m\":\"z\",\"v\":1}]",
                    &res),
               IOCD_EINVAL);
  cr_assert_eq(res.reason, INGEST_CARDINALITY);
  cr_assert_eq(ingest_series_count(fx.in), 1);
  cr_assert_eq(send(&fx, "ioc/A/igate",
                    "[{\"m\":\"x\",\"v\":1},{\"m\":\"x\",\"v\":2},"
                    "{\"v\":3},{\"m\":\"y\",\"v\":1}]",
                    &res),
               IOCD_OK, "%s", res.detail);
  cr_assert_eq(ingest_series_count(fx.in), 3);
  fx_done(&fx);
}

Test(ingest_cardinality, tag_order_does_not_make_a_new_series) {
  struct fixture fx;
  fx_init(&fx);
  static char *tag_keys[] = {"a", "b"};
  fx.subs[0].tag_keys = tag_keys;
  fx.subs[0].ntag_keys = 2;
  fx_start(&fx);
  struct ingest_result res;
  send(&fx, "ioc/A/igate", "{\"a\":\"1\",\"b\":\"2\",\"v\":1}", &res);
  send(&fx, "ioc/A/igate", "{\"b\":\"2\",\"a\":\"1\",\"v\":1}", &res);
  cr_assert_eq(ingest_series_count(fx.in), 1);
  cr_assert_str_eq(fx.cap.text.data,
                   "igate,a=1,b=2,district=A v=1i 1601460000000000000\n");
  send(&fx, "ioc/A/igate", "{\"a\":\"2\",\"b\":\"1\",\"v\":1}", &res);
  cr_assert_eq(ingest_series_count(fx.in), 2);
  fx_done(&fx);
}

/* ---- tags and the sink -------------------------------------------------- */

Test(ingest_pipeline, topic_tags_win_over_static_and_payload_tags) {
  struct fixture fx;
  fx_init(&fx);
  static char *tag_keys[] = {"source", "district", "kind"};
  static struct config_kv statics[] = {{"source", "iocd"},
                                       {"district", "static"}};
  fx.subs[0].tag_keys = tag_keys;
  fx.subs[0].ntag_keys = 3;
  fx.subs[0].tags = statics;
  fx.subs[0].ntags = 2;
  fx_start(&fx);
  struct ingest_result res;
  cr_assert_eq(send(&fx, "ioc/Cư M'gar/igate",
                    "{\"source\":\"me\",\"district\":\"Lắk\",\"kind\":\"k\","
                    "\"v\":1}",
                    &res),
               IOCD_OK, "%s", res.detail);
  cr_assert_str_eq(fx.cap.text.data,
                   "igate,district=Cư\\ M'gar,kind=k,source=iocd v=1i "
                   "1601460000000000000\n");
  fx_done(&fx);
}

/* "Buôn Ma Thuột" with combining marks (NFD) and precomposed (NFC). */
#define BMT_NFD "Buo\xCC\x82n Ma Thuo\xCC\xA3\xCC\x82t"
#define BMT_NFC "Bu\xC3\xB4n Ma Thu\xE1\xBB\x99t"
#define BMT_LP "Bu\xC3\xB4n\\ Ma\\ Thu\xE1\xBB\x99t"

Test(ingest_pipeline, names_arriving_decomposed_are_written_in_nfc) {
  static const struct {
    const char *what, *topic, *payload, *want;
  } cases[] = {
      {"topic level", "ioc/" BMT_NFD "/igate", "{\"v\": 1}",
       "igate,district=" BMT_LP " v=1i 1601460000000000000\n"},
      {"payload tag", "ioc/x/igate", "{\"kind\": \"" BMT_NFD "\", \"v\": 1}",
       "igate,district=x,kind=" BMT_LP " v=1i 1601460000000000000\n"},
      {"field key", "ioc/x/igate", "{\"" BMT_NFD "\": 1}",
       "igate,district=x " BMT_LP "=1i 1601460000000000000\n"},
      {"already composed", "ioc/" BMT_NFC "/igate", "{\"v\": 1}",
       "igate,district=" BMT_LP " v=1i 1601460000000000000\n"},
  };
  struct fixture fx;
  fx_init(&fx);
  static char *tag_keys[] = {"kind"};
  fx.subs[0].tag_keys = tag_keys;
  fx.subs[0].ntag_keys = 1;
  fx_start(&fx);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ingest_result res;
    cr_assert_eq(send(&fx, cases[i].topic, cases[i].payload, &res), IOCD_OK,
                 "%s: %s", cases[i].what, res.detail);
    cr_expect_str_eq(fx.cap.text.data, cases[i].want, "%s", cases[i].what);
  }
  fx_done(&fx);
}

Test(ingest_pipeline, a_sink_refusal_is_not_an_acceptance) {
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx);
  fx.cap.fail = IOCD_EFULL;
  struct ingest_result res;
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"v\":1.5}", &res), IOCD_EFULL);
  cr_assert_eq(res.reason, INGEST_OK);
  cr_assert_eq(res.npoints, 0);
  cr_assert_eq(fx.cap.calls, 1);
  cr_assert_eq(counter(&fx, "iocd_messages_accepted_total", "igate"), 0);
  cr_assert_eq(stats_sum(fx.stats, "iocd_rejects_total", NULL), 0);
  cr_assert_eq(ingest_series_count(fx.in), 0);
  /* Nothing was learned: an integer now teaches integer. */
  fx.cap.fail = 0;
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"v\":1}", &res), IOCD_OK);
  cr_assert_str_eq(fx.cap.text.data,
                   "igate,district=A v=1i 1601460000000000000\n");
  cr_assert_eq(counter(&fx, "iocd_messages_accepted_total", "igate"), 1);
  fx_done(&fx);
}

Test(ingest_pipeline, measurement_precedence) {
  struct fixture fx;
  fx_init(&fx);
  fx.subs[0].topic = "ioc/{district}/{measurement}";
  fx.subs[0].measurement = "fixed";
  fx.subs[0].measurement_key = "m";
  fx_start(&fx);
  struct ingest_result res;
  send(&fx, "ioc/A/cap", "{\"m\":\"payload\",\"v\":1}", &res);
  cr_assert_str_eq(fx.cap.text.data,
                   "payload,district=A v=1i 1601460000000000000\n");
  send(&fx, "ioc/A/cap", "{\"v\":1}", &res);
  cr_assert_str_eq(fx.cap.text.data,
                   "cap,district=A v=1i 1601460000000000000\n");
  fx_done(&fx);
  fx_init(&fx);
  fx.subs[0].measurement = "fixed";
  fx_start(&fx);
  send(&fx, "ioc/A/igate", "{\"v\":1}", &res);
  cr_assert_str_eq(fx.cap.text.data,
                   "fixed,district=A v=1i 1601460000000000000\n");
  fx_done(&fx);
  /* Without a name the subscription is labelled by its topic. */
  fx_init(&fx);
  fx.subs[0].name = NULL;
  fx.subs[0].topic = "kpi/{district}";
  fx_start(&fx);
  send(&fx, "kpi/A", "{\"v\":1}", &res);
  cr_assert_str_eq(fx.cap.text.data,
                   "kpi/{district},district=A v=1i 1601460000000000000\n");
  cr_assert_eq(counter(&fx, "iocd_messages_total", "kpi/{district}"), 1);
  fx_done(&fx);
}

/* ---- configuration -------------------------------------------------- */

Test(ingest_config, refuses_an_invalid_pattern_naming_the_subscription) {
  struct fixture fx;
  fx_init(&fx);
  fx.subs[0].topic = "ioc/x{d}";
  struct iocd_err err = {{0}};
  cr_assert_null(ingest_new(&fx.cfg, fx.stats, NULL, NULL, &err));
  cr_assert_str_eq(err.msg,
                   "subscription igate: topic pattern \"ioc/x{d}\", column 6: "
                   "a capture must be a whole level");
  stats_free(fx.stats);
  buf_cleanup(&fx.cap.text);
}

Test(ingest_config, names_the_file_line_and_column_of_a_bad_pattern) {
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"{\"file\": {},\n \"subscriptions\": [{\"topic\": \"t/{dis\"}]}\n",
       "iocd.jsonc:2:33: subscriptions[0].topic: topic pattern \"t/{dis\", "
       "column 3: unclosed '{'"},
      {"{\"file\": {}, \"subscriptions\": [{\"topic\": \"a\"},\n"
       "  {\"topic\": \"ioc/L\xe1\xba\xaf" "k/x+\"}]}\n",
       "iocd.jsonc:2:23: subscriptions[1].topic: topic pattern "
       "\"ioc/L\xe1\xba\xaf" "k/x+\", column 10: '+' must be a whole level"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct buf errors;
    buf_init(&errors, 0);
    struct config *cfg = NULL;
    cr_assert_eq(config_load_text("iocd.jsonc", cases[i].text,
                                  strlen(cases[i].text), &cfg, &errors),
                 IOCD_OK);
    struct stats *stats = stats_new();
    struct iocd_err err = {{0}};
    struct ingest *in = ingest_new(cfg, stats, NULL, NULL, &err);
    cr_expect_null(in);
    cr_expect_str_eq(err.msg, cases[i].want);
    ingest_free(in);
    stats_free(stats);
    config_free(cfg);
    buf_cleanup(&errors);
  }
}

Test(ingest_config, reconfigure_keeps_types_and_series) {
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx);
  struct ingest_result res;
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"v\":1}", &res), IOCD_OK);
  struct config_subscription next_subs[1] = {{0}};
  next_subs[0].name = "igate2";
  next_subs[0].topic = "district/{district}";
  next_subs[0].measurement = "igate";
  struct config next = {0};
  next.subs = next_subs;
  next.nsubs = 1;
  struct iocd_err err = {{0}};
  /* A bad configuration leaves the running one in place. */
  next_subs[0].topic = "district/{";
  cr_assert_eq(ingest_reconfigure(fx.in, &next, &err), IOCD_EPARSE);
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"v\":2}", &res), IOCD_OK);
  next_subs[0].topic = "district/{district}";
  cr_assert_eq(ingest_reconfigure(fx.in, &next, &err), IOCD_OK, "%s", err.msg);
  cr_assert_eq(send(&fx, "ioc/A/igate", "{\"v\":2}", &res), IOCD_EINVAL);
  cr_assert_eq(res.reason, INGEST_NO_SUBSCRIPTION);
  cr_assert_eq(send(&fx, "district/A", "{\"v\":2.5}", &res), IOCD_EINVAL);
  cr_assert_eq(res.reason, INGEST_TYPE_CONFLICT);
  cr_assert_eq(send(&fx, "district/A", "{\"v\":3}", &res), IOCD_OK);
  cr_assert_eq(ingest_series_count(fx.in), 1);
  cr_assert_eq(counter(&fx, "iocd_messages_total", "igate2"), 2);
  fx_done(&fx);
}

Test(ingest_config, zero_limits_mean_the_documented_defaults) {
  struct config_limits cl = {0};
  struct ingest_limits lim;
  ingest__limits_resolve(&cl, &lim);
  cr_assert_eq(lim.max_payload_bytes, 65536);
  cr_assert_eq(lim.max_series, 100000);
  cr_assert_eq(lim.max_json_depth, 8);
  cr_assert_eq(lim.max_fields, 256);
  cr_assert_eq(lim.max_points, 1000);
  cr_assert_eq(lim.max_future_ns, 600 * SEC);
  cr_assert_eq(lim.max_past_ns, 31622400 * SEC);
  cr_assert_eq(lim.log_burst, 10);
  cr_assert_eq(lim.log_window_ms, 10000);
}

Test(ingest_config, names_every_reason) {
  cr_assert_str_eq(ingest_reason_id(INGEST_WRONG_TYPE), "wrong_type");
  cr_assert_str_eq(ingest_reason_id(INGEST_TOO_MANY), "too_many");
  cr_assert_str_eq(ingest_reason_text(INGEST_CARDINALITY),
                   "series limit reached");
  cr_assert_str_eq(ingest_reason_id(INGEST_OK), "ok");
  cr_assert_str_eq(ingest_reason_id(INGEST_NREASONS), "unknown");
}

/* ---- the reject log ---------------------------------------------------- */

/* Sends stderr to a temporary file for the rest of the test (each test is
 * its own process) and returns the file's descriptor. */
static int capture_stderr(void) {
  char path[] = "/tmp/iocd-test-log-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  unlink(path);
  cr_assert_geq(dup2(fd, STDERR_FILENO), 0);
  return fd;
}

static char *read_all(int fd) {
  static char text[65536];
  ssize_t n = pread(fd, text, sizeof text - 1, 0);
  cr_assert_geq(n, 0);
  text[n] = '\0';
  return text;
}

static size_t count(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++) {
    n++;
  }
  return n;
}

Test(ingest_log, names_topic_subscription_reason_and_detail) {
  int fd = capture_stderr();
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx);
  struct ingest_result res;
  send(&fx, "ioc/Ea H'Leo/igate", "{\"received\":\"12\"}", &res);
  const char *log = read_all(fd);
  cr_assert(strstr(log,
                   "level=warn mod=ingest msg=\"rejected message on "
                   "\\\"ioc/Ea H'Leo/igate\\\" (subscription igate): "
                   "wrong_type: field \\\"received\\\": expected a "
                   "number or boolean, got string\"") != NULL,
            "%s", log);
  fx_done(&fx);
  close(fd);
}

Test(ingest_log, rate_limits_rejects_per_reason) {
  int fd = capture_stderr();
  struct fixture fx;
  fx_init(&fx);
  fx.cfg.limits.log_burst = 3;
  fx.cfg.limits.log_window_s = 10;
  fx_start(&fx);
  struct ingest_result res;
  for (int i = 0; i < 8; i++) {
    ingest_message(fx.in, "ioc/A/igate", "{", 1, NULL, NOW, &res);
  }
  /* Another reason has its own budget. */
  ingest_message(fx.in, "nowhere", "{", 1, NULL, NOW, &res);
  const char *log = read_all(fd);
  cr_assert_eq(count(log, "malformed:"), 3, "%s", log);
  cr_assert_eq(count(log, "no_subscription:"), 1, "%s", log);
  ingest_message(fx.in, "ioc/A/igate", "{", 1, NULL, NOW + 11 * SEC, &res);
  log = read_all(fd);
  cr_assert_eq(count(log, "malformed:"), 4, "%s", log);
  cr_assert(strstr(log, "(5 more malformed rejects not logged)") != NULL, "%s",
            log);
  cr_assert_eq(rejects(&fx, "igate", "malformed"), 9);
  fx_done(&fx);
  close(fd);
}

Test(ingest_log, escapes_what_the_topic_and_payload_hold) {
  int fd = capture_stderr();
  struct fixture fx;
  fx_init(&fx);
  fx_start(&fx);
  struct ingest_result res;
  const char topic[] = "ioc/\x01\xff/igate";
  ingest_message(fx.in, topic, "{}", 2, NULL, NOW, &res);
  cr_assert_eq(res.reason, INGEST_INVALID_UTF8);
  const char *log = read_all(fd);
  cr_assert(strstr(log, "ioc/\\\\x01\\\\xff/igate") != NULL, "%s", log);
  fx_done(&fx);
  close(fd);
}
