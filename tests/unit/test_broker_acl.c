/*
 * The broker's ACL from a configuration (config/broker_acl.c): account
 * names that mosquitto's files can hold, subscription patterns turned into
 * one district's topics, and the whole file for a configuration with three
 * districts whose names have diacritics, spaces and apostrophes.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "config/broker_acl.h"
#include "config/config.h"

struct name_case {
  const char *name;
  const char *problem; /* NULL: valid; else a part of the message */
};

static const struct name_case names[] = {
    {"Buôn Ma Thuột", NULL},
    {"Cư M'gar", NULL},
    {"M'Đrắk", NULL},
    {"Ea  Kar", NULL},
    {"iocd", NULL},
    {"", "empty"},
    {"Ea:Kar", "':' separates"},
    {"Ea/Kar", "'/' cannot be part of a topic level"},
    {"Ea+Kar", "'+' cannot"},
    {"Ea#Kar", "'#' cannot"},
    {" Lắk", "a space at the start or the end"},
    {"Lắk ", "a space at the start or the end"},
    {"Lắk\nuser x", "control character at byte 6"},
    {"Lắk\tx", "control character"},
    {"L\xc2\x85k", "control character"},
    {"L\xe1\xba", "invalid UTF-8"},
};

Test(broker_acl, accepts_names_mosquitto_can_hold_and_refuses_the_rest) {
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    struct iocd_err err = {{0}};
    int rc = broker_acl_check_name(names[i].name, &err);
    if (!names[i].problem) {
      cr_expect_eq(rc, IOCD_OK, "\"%s\": %s", names[i].name, err.msg);
    } else {
      cr_expect_eq(rc, IOCD_EINVAL, "\"%s\" accepted", names[i].name);
      cr_expect(strstr(err.msg, names[i].problem) != NULL,
                "\"%s\": \"%s\" does not say \"%s\"", names[i].name, err.msg,
                names[i].problem);
    }
  }
}

struct topic_case {
  const char *pattern;
  const char *district;
  const char *want;
};

static const struct topic_case topics[] = {
    {"ioc/{district}/igate", "Cư M'gar", "ioc/Cư M'gar/igate"},
    {"ioc/{district}/sensors/{field}", "Lắk", "ioc/Lắk/sensors/+"},
    {"ioc/{district}/{system}/{measurement}", "Lắk", "ioc/Lắk/+/+"},
    {"ioc/{district}/#", "Lắk", "ioc/Lắk/#"},
    {"ioc/{district}/+/x", "Lắk", "ioc/Lắk/+/x"},
    {"{district}", "Buôn Ma Thuột", "Buôn Ma Thuột"},
    {"a/{district}/b/{district}", "Lắk", "a/Lắk/b/Lắk"},
    {"ioc//{district}/", "Lắk", "ioc//Lắk/"},
    {"ioc/{districts}/x", "Lắk", "ioc/+/x"},
    {"fixed/topic", "Lắk", "fixed/topic"},
    /* iocd's filter: no district. */
    {"ioc/{district}/sensors/{field}", NULL, "ioc/+/sensors/+"},
};

Test(broker_acl, turns_a_pattern_into_one_districts_topic) {
  for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
    struct buf out;
    buf_init(&out, 0);
    cr_assert_eq(
        broker_acl_district_topic(topics[i].pattern, topics[i].district, &out),
        IOCD_OK);
    cr_expect_str_eq(out.data ? out.data : "", topics[i].want, "%s",
                     topics[i].pattern);
    buf_cleanup(&out);
  }
}

static struct config *load(const char *text) {
  struct buf e;
  buf_init(&e, 0);
  struct config *cfg = NULL;
  int rc = config_load_text("iocd.jsonc", text, strlen(text), &cfg, &e);
  cr_assert_eq(rc, IOCD_OK, "%s", e.data ? e.data : "");
  buf_cleanup(&e);
  return cfg;
}

#define THREE_DISTRICTS                                                 \
  "\"sources\": {\"districts\": [\"Buôn Ma Thuột\", \"Cư M'gar\", " \
  "\"M'Đrắk\"]},\n"

static const char three[] =
    "{\"file\": {\"path\": \"-\"},\n" THREE_DISTRICTS
    " \"subscriptions\": [\n"
    "  {\"name\": \"igate\", \"topic\": \"ioc/{district}/igate\","
    "   \"dead_letter\": \"iocd/rejected/igate\"},\n"
    "  {\"name\": \"sensors\", \"topic\": "
    "\"ioc/{district}/sensors/{field}\"},\n"
    "  {\"name\": \"again\", \"topic\": \"ioc/{district}/igate\"},\n"
    "  {\"name\": \"shared\", \"topic\": \"ioc/weather/{field}\"}],\n"
    " \"notifications\": {\n"
    "  \"receivers\": [{\"name\": \"bus\", \"type\": \"mqtt\"},\n"
    "                {\"name\": \"bus2\", \"type\": \"mqtt\","
    "                 \"topic_prefix\": \"ops/alerts\"}],\n"
    "  \"route\": {\"receiver\": \"bus\"}}}\n";

Test(broker_acl, renders_a_block_per_district_and_one_for_iocd) {
  struct config *cfg = load(three);
  struct buf out;
  buf_init(&out, 0);
  struct iocd_err err = {{0}};
  cr_assert_eq(broker_acl_render(cfg, "iocd", &out, &err), IOCD_OK, "%s",
               err.msg);
  /* The header is comments only: nothing applies to anonymous clients. */
  const char *body = strstr(out.data, "\n\n# District Buôn Ma Thuột\n");
  cr_assert_not_null(body, "%s", out.data);
  for (const char *p = out.data; p < body; p = strchr(p, '\n') + 1) {
    cr_assert_eq(*p, '#', "a line before the first user: %s", p);
  }
  cr_assert_str_eq(body,
                   "\n\n# District Buôn Ma Thuột\n"
                   "user Buôn Ma Thuột\n"
                   "topic write ioc/Buôn Ma Thuột/igate\n"
                   "topic write ioc/Buôn Ma Thuột/sensors/+\n"
                   "\n# District Cư M'gar\n"
                   "user Cư M'gar\n"
                   "topic write ioc/Cư M'gar/igate\n"
                   "topic write ioc/Cư M'gar/sensors/+\n"
                   "\n# District M'Đrắk\n"
                   "user M'Đrắk\n"
                   "topic write ioc/M'Đrắk/igate\n"
                   "topic write ioc/M'Đrắk/sensors/+\n"
                   "\n# iocd: reads every subscription, writes its dead "
                   "letters and MQTT alerts\n"
                   "user iocd\n"
                   "topic read ioc/+/igate\n"
                   "topic read ioc/+/sensors/+\n"
                   "topic read ioc/weather/+\n"
                   "topic write iocd/rejected/igate\n"
                   "topic write ioc/alerts/#\n"
                   "topic write ops/alerts/#\n");
  buf_cleanup(&out);
  config_free(cfg);
}

struct refusal {
  const char *text;
  const char *user;
  const char *problem;
};

static const struct refusal refusals[] = {
    {"{\"file\": {\"path\": \"-\"}, \"subscriptions\": [{\"topic\": "
     "\"ioc/{district}/x\"}]}",
     "iocd", "sources.districts is empty"},
    {"{\"file\": {\"path\": \"-\"}, " THREE_DISTRICTS
     "\"subscriptions\": [{\"topic\": \"ioc/{district}/x\"}]}",
     "Cư M'gar",
     "iocd's account \"Cư M'gar\" is also the name of sources.districts[1]"},
    {"{\"file\": {\"path\": \"-\"}, " THREE_DISTRICTS
     "\"subscriptions\": [{\"topic\": \"ioc/{district}/x\"}]}",
     "io:cd", "iocd's account \"io:cd\": ':' separates"},
    {"{\"file\": {\"path\": \"-\"}, \"sources\": {\"districts\": [\"Lắk\", "
     "\"Ea/Kar\"]}, \"subscriptions\": [{\"topic\": \"ioc/{district}/x\"}]}",
     "iocd",
     "sources.districts[1] \"Ea/Kar\" cannot be an account: '/' cannot"},
};

Test(broker_acl, refuses_what_cannot_be_expressed) {
  for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
    struct config *cfg = load(refusals[i].text);
    struct buf out;
    buf_init(&out, 0);
    struct iocd_err err = {{0}};
    cr_expect_eq(broker_acl_render(cfg, refusals[i].user, &out, &err),
                 IOCD_EINVAL, "case %zu rendered", i);
    cr_expect(strstr(err.msg, refusals[i].problem) != NULL,
              "case %zu: \"%s\" does not say \"%s\"", i, err.msg,
              refusals[i].problem);
    buf_cleanup(&out);
    config_free(cfg);
  }
}
