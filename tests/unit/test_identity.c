/*
 * The district identity check of a subscription ("identity":
 * {"user_property": NAME}): the configuration it needs (a {district} level,
 * MQTT 5), and the pipeline rejecting, with reason "identity" and both
 * values in the detail, a message whose user property is absent or names
 * another district, before its payload is read.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/stats.h"
#include "ingest/ingest.h"

#define NOW INT64_C(1601460000000000000)

static struct config *load(const char *text, struct buf *e) {
  buf_reset(e);
  struct config *cfg = NULL;
  config_load_text("iocd.jsonc", text, strlen(text), &cfg, e);
  return cfg;
}

static const char with_identity[] =
    "{\"file\": {\"path\": \"-\"},\n"
    " \"subscriptions\": [\n"
    "  {\"name\": \"igate\", \"topic\": \"ioc/{district}/igate\",\n"
    "   \"identity\": {\"user_property\": \"district\"}},\n"
    "  {\"name\": \"open\", \"topic\": \"open/{district}/x\"}]}\n";

struct config_case {
  const char *text;
  const char *error; /* NULL: loads */
};

static const struct config_case config_cases[] = {
    {with_identity, NULL},
    {"{\"file\": {}, \"subscriptions\": [{\"topic\": \"ioc/{site}/x\",\n"
     " \"identity\": {\"user_property\": \"district\"}}]}",
     "iocd.jsonc:2:14: subscriptions[0].identity: the topic has no "
     "{district} level"},
    {"{\"file\": {}, \"mqtt\": {\"protocol\": \"3.1.1\"},\n"
     " \"subscriptions\": [{\"topic\": \"ioc/{district}/x\"},\n"
     " {\"topic\": \"b/{district}\",\n"
     "  \"identity\": {\"user_property\": \"district\"}}]}",
     "iocd.jsonc:4:15: subscriptions[1].identity: needs MQTT 5 user "
     "properties, but mqtt.protocol is \"3.1.1\""},
    {"{\"file\": {}, \"subscriptions\": [{\"topic\": \"ioc/{district}/x\",\n"
     " \"identity\": {}}]}",
     "subscriptions[0].identity.user_property: required"},
    {"{\"file\": {}, \"subscriptions\": [{\"topic\": \"ioc/{district}/x\",\n"
     " \"identity\": {\"user_property\": \"d\", \"header\": \"x\"}}]}",
     "subscriptions[0].identity.header: unknown key"},
};

Test(identity_config, needs_a_district_level_and_mqtt_5) {
  struct buf e;
  buf_init(&e, 0);
  for (size_t i = 0; i < sizeof config_cases / sizeof config_cases[0]; i++) {
    struct config *cfg = load(config_cases[i].text, &e);
    if (!config_cases[i].error) {
      cr_expect_not_null(cfg, "case %zu: %s", i, e.data);
      if (cfg) {
        cr_expect_str_eq(cfg->subs[0].identity.user_property, "district");
        cr_expect_null(cfg->subs[1].identity.user_property);
      }
    } else {
      cr_expect_null(cfg, "case %zu loaded", i);
      cr_expect(e.data && strstr(e.data, config_cases[i].error), "case %zu: %s",
                i, e.data ? e.data : "(nothing)");
    }
    config_free(cfg);
  }
  buf_cleanup(&e);
}

struct msg_case {
  const char *topic;
  struct ingest_user_prop props[3];
  size_t nprops;
  const char *payload;
  enum ingest_reason reason;
  const char *detail; /* for rejects */
};

static const struct msg_case msgs[] = {
    {"ioc/Cư M'gar/igate",
     {{"district", "Cư M'gar"}},
     1,
     "{\"a\": 1}",
     INGEST_OK,
     NULL},
    /* Other properties around it do not matter. */
    {"ioc/Lắk/igate",
     {{"site", "x"}, {"district", "Lắk"}, {"Đ", "y"}},
     3,
     "{\"a\": 1}",
     INGEST_OK,
     NULL},
    {"ioc/Lắk/igate",
     {{0}},
     0,
     "{\"a\": 1}",
     INGEST_IDENTITY,
     "no user property \"district\" (the topic's district is \"Lắk\")"},
    {"ioc/Lắk/igate",
     {{"District", "Lắk"}},
     1,
     "{\"a\": 1}",
     INGEST_IDENTITY,
     "no user property \"district\""},
    {"ioc/Lắk/igate",
     {{"district", "Cư M'gar"}},
     1,
     "{\"a\": 1}",
     INGEST_IDENTITY,
     "user property \"district\" is \"Cư M'gar\", the topic's district is "
     "\"Lắk\""},
    /* Every occurrence must agree. */
    {"ioc/Lắk/igate",
     {{"district", "Lắk"}, {"district", "Ea Kar"}},
     2,
     "{\"a\": 1}",
     INGEST_IDENTITY,
     "is \"Ea Kar\""},
    /* Byte for byte, as the broker compares topics: no case folding. */
    {"ioc/Lắk/igate",
     {{"district", "lắk"}},
     1,
     "{\"a\": 1}",
     INGEST_IDENTITY,
     "is \"lắk\""},
    /* Checked before the payload is read. */
    {"ioc/Lắk/igate",
     {{"district", "Ea Kar"}},
     1,
     "not json",
     INGEST_IDENTITY,
     "is \"Ea Kar\""},
    /* A subscription without the check takes anything. */
    {"open/Lắk/x", {{"district", "Ea Kar"}}, 1, "{\"a\": 1}", INGEST_OK, NULL},
};

static int take(void *ud, size_t sub, const struct point_batch *pb) {
  (void)sub;
  (void)pb;
  (*(int *)ud)++;
  return 0;
}

Test(identity,
     rejects_a_message_whose_user_property_is_not_the_topics_district) {
  struct buf e;
  buf_init(&e, 0);
  struct config *cfg = load(with_identity, &e);
  cr_assert_not_null(cfg, "%s", e.data);
  struct stats *st = stats_new();
  int taken = 0;
  struct iocd_err err = {{0}};
  struct ingest *in = ingest_new(cfg, st, take, &taken, &err);
  cr_assert_not_null(in, "%s", err.msg);
  uint64_t rejects = 0;
  for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
    const struct msg_case *m = &msgs[i];
    struct ingest_meta meta = {.user_props = m->props,
                               .nuser_props = m->nprops};
    struct ingest_result res;
    int before = taken;
    int rc = ingest_message_meta(in, m->topic, m->payload, strlen(m->payload),
                                 &meta, NOW, &res);
    cr_expect_eq(res.reason, m->reason, "case %zu: %s: %s", i,
                 ingest_reason_id(res.reason), res.detail);
    if (m->reason == INGEST_OK) {
      cr_expect_eq(rc, IOCD_OK, "case %zu", i);
      cr_expect_eq(taken, before + 1, "case %zu: not handed on", i);
    } else {
      rejects++;
      cr_expect_eq(rc, IOCD_EINVAL, "case %zu", i);
      cr_expect_eq(taken, before, "case %zu: handed on", i);
      cr_expect(strstr(res.detail, m->detail) != NULL,
                "case %zu: \"%s\" does not say \"%s\"", i, res.detail,
                m->detail);
    }
  }
  cr_expect_eq(stats_sum(st, "iocd_rejects_total", "subscription", "igate",
                         "reason", "identity", NULL),
               rejects);
  /* ingest_message has no properties: the check finds none. */
  struct ingest_result res;
  cr_expect_eq(
      ingest_message(in, "ioc/Lắk/igate", "{\"a\": 1}", 8, NULL, NOW, &res),
      IOCD_EINVAL);
  cr_expect_eq(res.reason, INGEST_IDENTITY);
  ingest_free(in);
  stats_free(st);
  config_free(cfg);
  buf_cleanup(&e);
}
