/*
 * Topic patterns: parse errors name the column, matching returns the
 * captured levels exactly (Vietnamese names and apostrophes included), and
 * the MQTT filter replaces captures with '+'.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "ingest/ingest.h"
#include "ingest/ingest_int.h"

static const struct {
  const char *pattern;
  size_t column;
  const char *what;
} bad_patterns[] = {
    {"ioc/{district", 5, "unclosed '{'"},
    {"ioc/{}/igate", 5, "empty capture name"},
    {"ioc/x{d}", 6, "a capture must be a whole level"},
    {"ioc/{d}x/igate", 8, "a capture must be a whole level"},
    {"ioc/#/igate", 5, "'#' must be the last level"},
    {"ioc/{d}/{d}", 9, "duplicate capture name"},
    {"ioc/a+/x", 6, "'+' must be a whole level"},
    {"ioc/a#", 6, "'#' must be a whole level"},
    {"ioc/a}/x", 6, "'}' without '{'"},
    {"ioc/{a{b}", 7, "'{' inside a capture name"},
    {"ioc/{a+b}", 7, "a capture name may not hold"},
};

Test(ingest_pattern, rejects_bad_patterns_naming_the_column) {
  for (size_t i = 0; i < sizeof bad_patterns / sizeof bad_patterns[0]; i++) {
    struct pattern pat;
    struct iocd_err err = {{0}};
    int rc = ingest__pattern_parse(&pat, bad_patterns[i].pattern, NULL, &err);
    cr_expect_eq(rc, IOCD_EPARSE, "%s: rc %d", bad_patterns[i].pattern, rc);
    char want[64];
    snprintf(want, sizeof want, "column %zu: ", bad_patterns[i].column);
    cr_expect(strstr(err.msg, want) != NULL, "%s: %s", bad_patterns[i].pattern,
              err.msg);
    cr_expect(strstr(err.msg, bad_patterns[i].what) != NULL, "%s: %s",
              bad_patterns[i].pattern, err.msg);
  }
}

Test(ingest_pattern, error_message_quotes_the_pattern) {
  struct pattern pat;
  struct iocd_err err = {{0}};
  ingest__pattern_parse(&pat, "ioc/x{d}", NULL, &err);
  cr_assert_str_eq(err.msg,
                   "topic pattern \"ioc/x{d}\", column 6: a capture must be a "
                   "whole level");
}

Test(ingest_pattern, rejects_an_empty_pattern) {
  struct pattern pat;
  struct iocd_err err = {{0}};
  cr_assert_eq(ingest__pattern_parse(&pat, "", NULL, &err), IOCD_EPARSE);
  cr_assert_eq(ingest__pattern_parse(&pat, NULL, NULL, &err), IOCD_EPARSE);
}

Test(ingest_pattern, allows_empty_levels) {
  struct pattern pat;
  struct iocd_err err = {{0}};
  cr_assert_eq(ingest__pattern_parse(&pat, "ioc//{d}/", NULL, &err), IOCD_OK, "%s",
               err.msg);
  struct capture caps[INGEST_MAX_CAPTURES];
  const char *t = "ioc//x/";
  cr_assert_eq(ingest__pattern_match(&pat, t, strlen(t), caps), 1);
  cr_assert_eq(caps[0].value.len, 1);
  cr_assert_eq(ingest__pattern_match(&pat, "ioc/x/y/", 8, caps), -1);
  ingest__pattern_cleanup(&pat);
}

static const struct {
  const char *pattern;
  const char *topic;
  int ncaps;        /* -1: no match */
  const char *caps; /* "name=value;name=value" */
} match_cases[] = {
    {"ioc/{district}/igate", "ioc/Buôn Ma Thuột/igate", 1,
     "district=Buôn Ma Thuột"},
    {"ioc/{district}/igate", "ioc/Ea H'Leo/igate", 1, "district=Ea H'Leo"},
    {"ioc/{district}/{system}", "ioc/M'Đrắk/idesk", 2,
     "district=M'Đrắk;system=idesk"},
    {"ioc/{district}/igate", "ioc/Ea H'Leo/idesk", -1, ""},
    {"ioc/{district}/igate", "ioc/Ea H'Leo/igate/extra", -1, ""},
    {"ioc/{district}/igate", "ioc/igate", -1, ""},
    {"ioc/+/igate", "ioc/Lắk/igate", 0, ""},
    {"ioc/+/igate", "ioc//igate", 0, ""},
    {"ioc/#", "ioc/a/b/c", 0, ""},
    {"ioc/#", "ioc", 0, ""},
    {"ioc/{district}/#", "ioc/Cư Kuin/igate/online", 1, "district=Cư Kuin"},
    {"ioc/{district}/#", "other/x/y", -1, ""},
    {"#", "anything/at/all", 0, ""},
    {"#", "$SYS/broker/load", -1, ""},
    {"+/broker/load", "$SYS/broker/load", -1, ""},
    {"$SYS/{what}", "$SYS/uptime", 1, "what=uptime"},
    {"ioc/{measurement}/{field}", "ioc/weather/temp", 2,
     "measurement=weather;field=temp"},
    {"exact/topic", "exact/topic", 0, ""},
    {"exact/topic", "exact/topicx", -1, ""},
    {"exact/topic", "exact", -1, ""},
};

Test(ingest_pattern, matches_topics_and_returns_the_captures) {
  for (size_t i = 0; i < sizeof match_cases / sizeof match_cases[0]; i++) {
    struct pattern pat;
    struct iocd_err err = {{0}};
    cr_assert_eq(ingest__pattern_parse(&pat, match_cases[i].pattern, NULL, &err),
                 IOCD_OK, "%s", err.msg);
    struct capture caps[INGEST_MAX_CAPTURES];
    const char *topic = match_cases[i].topic;
    int n = ingest__pattern_match(&pat, topic, strlen(topic), caps);
    cr_expect_eq(n, match_cases[i].ncaps, "%s vs %s: %d",
                 match_cases[i].pattern, topic, n);
    char got[256] = "";
    size_t o = 0;
    for (int k = 0; k < n; k++) {
      o += (size_t)snprintf(got + o, sizeof got - o, "%s%.*s=%.*s",
                            k ? ";" : "", (int)caps[k].name.len, caps[k].name.p,
                            (int)caps[k].value.len, caps[k].value.p);
    }
    if (n >= 0) {
      cr_expect_str_eq(got, match_cases[i].caps, "%s vs %s",
                       match_cases[i].pattern, topic);
    }
    ingest__pattern_cleanup(&pat);
  }
}

Test(ingest_pattern, capture_slices_point_into_the_topic) {
  struct pattern pat;
  cr_assert_eq(ingest__pattern_parse(&pat, "ioc/{district}/igate", NULL, NULL),
               IOCD_OK);
  const char *topic = "ioc/Ea Kar/igate";
  struct capture caps[INGEST_MAX_CAPTURES];
  cr_assert_eq(ingest__pattern_match(&pat, topic, strlen(topic), caps), 1);
  cr_assert_eq(caps[0].value.p, topic + 4);
  cr_assert_eq(caps[0].value.len, 6);
  ingest__pattern_cleanup(&pat);
}

static const struct {
  const char *pattern;
  const char *filter;
} filter_cases[] = {
    {"ioc/{district}/igate", "ioc/+/igate"},
    {"ioc/{district}/{system}", "ioc/+/+"},
    {"ioc/{district}/#", "ioc/+/#"},
    {"ioc/+/igate", "ioc/+/igate"},
    {"ioc/Buôn Hồ/igate", "ioc/Buôn Hồ/igate"},
    {"{measurement}", "+"},
    {"a//{x}/", "a//+/"},
};

Test(ingest_topic_filter, replaces_captures_with_plus) {
  for (size_t i = 0; i < sizeof filter_cases / sizeof filter_cases[0]; i++) {
    char out[128];
    struct iocd_err err = {{0}};
    const char *p = filter_cases[i].pattern;
    cr_expect_eq(ingest_topic_filter(p, out, strlen(p) + 1, &err), IOCD_OK,
                 "%s: %s", p, err.msg);
    cr_expect_str_eq(out, filter_cases[i].filter, "%s", p);
  }
}

Test(ingest_topic_filter, refuses_invalid_patterns_and_small_buffers) {
  char out[64];
  struct iocd_err err = {{0}};
  cr_assert_eq(ingest_topic_filter("ioc/x{d}", out, sizeof out, &err),
               IOCD_EPARSE);
  cr_assert(strstr(err.msg, "column 6") != NULL, "%s", err.msg);
  cr_assert_eq(ingest_topic_filter("ioc/{d}", out, 5, &err), IOCD_EINVAL);
}
