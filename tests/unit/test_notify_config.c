/*
 * Tests of the "notifications" section of the configuration: a complete
 * section loads with the values written and the documented defaults, child
 * routes carry the "inherit" markers; every kind of problem gives its exact
 * FILE:LINE:COL: PATH: message (a bad regex at its column inside the
 * string, an unknown receiver with "did you mean"); token_file and
 * password_file are read at load, and a secret never appears in a message;
 * config_diff names the section; the example configuration's section.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_int.h"
#include "core/buf.h"
#include "core/err.h"
#include "tests/unit/config_fixture.h"

#define NOTIFY(body) HEAD "\"notifications\": " body "}\n"

/* The design's section, whole. */
static const char full_section[] = NOTIFY(
    "{\n"
    " \"enabled\": true, \"grafana_url\": \"http://grafana.ioc.local:3000\",\n"
    " \"receivers\": [\n"
    "  {\"name\": \"operators\", \"type\": \"webhook\",\n"
    "   \"url\": \"http://127.0.0.1:9095/hook\", \"headers\": {\"X-Org\": "
    "\"IOC\"},\n"
    "   \"timeout\": \"5s\", \"max_attempts\": 3, \"retry_min\": \"2s\",\n"
    "   \"retry_max\": \"1m\", \"send_resolved\": false, \"rate_per_hour\": "
    "-1,\n"
    "   \"language\": \"en\"},\n"
    "  {\"name\": \"am\", \"type\": \"alertmanager\", \"url\": "
    "\"http://127.0.0.1:9093\"},\n"
    "  {\"name\": \"director\", \"type\": \"email\",\n"
    "   \"smtp_url\": \"smtp://mail.daklak.gov.vn:587\", \"smtp_tls\": "
    "\"starttls\",\n"
    "   \"username\": \"iocd\", \"password\": \"pw\",\n"
    "   \"from\": \"IOC Đắk Lắk <ioc@daklak.gov.vn>\",\n"
    "   \"to\": [\"giamdoc.stttt@daklak.gov.vn\"], \"html\": false,\n"
    "   \"ca_file\": \"/etc/ssl/ioc.pem\", \"tls_verify\": false},\n"
    "  {\"name\": \"wall\", \"type\": \"mqtt\", \"qos\": 2, \"retain\": "
    "false},\n"
    "  {\"name\": \"vice_chair\", \"type\": \"telegram\", \"token\": "
    "\"123:abc\",\n"
    "   \"chat_id\": -100123},\n"
    "  {\"name\": \"leaders_zalo\", \"type\": \"zalo\", \"token\": \"zt\",\n"
    "   \"user_ids\": [\"123\", \"456\"], \"zalo_api\": \"cs\"}\n"
    " ],\n"
    " \"route\": {\n"
    "  \"receiver\": \"operators\", \"group_by\": [\"alertname\", "
    "\"district\"],\n"
    "  \"group_wait\": \"10s\", \"group_interval\": \"2m\", "
    "\"repeat_interval\": \"1h\",\n"
    "  \"mute_time_intervals\": [\"outside_working_time\"], "
    "\"critical_any_time\": false,\n"
    "  \"escalation\": [{\"after\": \"15m\", \"receiver\": \"director\"},\n"
    "                 {\"after\": \"1h\", \"receiver\": \"vice_chair\"}],\n"
    "  \"routes\": [\n"
    "   {\"matchers\": [\"severity=critical\"], \"receiver\": \"vice_chair\", "
    "\"continue\": true},\n"
    "   {\"matchers\": {\"alertname\": \"feed_silent\"}, \"group_by\": "
    "[\"alertname\"],\n"
    "    \"active_time_intervals\": [\"night\"],\n"
    "    \"routes\": [{\"matchers\": [\"district!~Krông.*\", \"system != "
    "idesk\"],\n"
    "                \"receiver\": \"am\", \"critical_any_time\": true}]}\n"
    "  ]\n"
    " },\n"
    " \"time_intervals\": [{\"name\": \"night\", \"days\": \"all\", "
    "\"times\": [\"22:00-06:00\"]},\n"
    "                    {\"name\": \"weekend_and_holidays\", \"days\": "
    "\"non_working\"}],\n"
    " \"inhibit_rules\": [\n"
    "  {\"source_matchers\": [\"alertname=feed_silent\"],\n"
    "   \"target_matchers\": [\"alertname=~online_share.*\"], \"equal\": "
    "[\"district\"]},\n"
    "  {\"source_matchers\": [\"severity=critical\"], \"target_matchers\": "
    "[\"severity=\\\"warning\\\"\"]}\n"
    " ],\n"
    " \"silences\": [{\"matchers\": [\"district=Krông Búk\"],\n"
    "   \"starts_at\": \"2026-12-08T07:30:00+07:00\", \"ends_at\": "
    "\"2026-12-08T10:00:00Z\",\n"
    "   \"created_by\": \"admin\", \"comment\": \"bảo trì\"}],\n"
    " \"templates\": {\"subject\": \"[{{severity}}] {{alertname}}\", "
    "\"text\": \"t\"},\n"
    " \"flapping\": {\"transitions\": 6, \"window\": \"30m\"},\n"
    " \"digest\": {\"receiver\": \"director\", \"at\": [\"07:30\", "
    "\"16:30\"]},\n"
    " \"history\": {\"database\": \"iocd_alerts\", \"retention_policy\": "
    "\"\"}\n"
    "}");

static const struct config_matcher *matcher(const struct config_matcher *m,
                                            size_t n, size_t i) {
  cr_assert_lt(i, n);
  return &m[i];
}

static void expect_matcher(const struct config_matcher *m, const char *name,
                           enum config_match_op op, const char *value) {
  cr_expect_str_eq(m->name, name);
  cr_expect_eq(m->op, op, "%s", name);
  cr_expect_str_eq(m->value, value);
}

Test(notify_config, a_complete_section_loads_as_written) {
  struct config *cfg = load_ok(full_section);
  const struct config_notify *n = &cfg->notify;
  cr_expect(n->enabled);
  cr_expect_str_eq(n->grafana_url, "http://grafana.ioc.local:3000");
  cr_assert_eq(n->nreceivers, 6);

  const struct config_receiver *op = &n->receivers[0];
  cr_expect_str_eq(op->name, "operators");
  cr_expect_eq(op->type, CONFIG_RECV_WEBHOOK);
  cr_expect_str_eq(op->url, "http://127.0.0.1:9095/hook");
  cr_assert_eq(op->nheaders, 1);
  cr_expect_str_eq(op->headers[0].key, "X-Org");
  cr_expect_str_eq(op->headers[0].value, "IOC");
  cr_expect_eq(op->timeout_ms, 5000);
  cr_expect_eq(op->max_attempts, 3);
  cr_expect_eq(op->retry_min_ms, 2000);
  cr_expect_eq(op->retry_max_ms, 60000);
  cr_expect_not(op->send_resolved);
  cr_expect_eq(op->rate_per_hour, -1);
  cr_expect_eq(op->language, CONFIG_LANG_EN);
  cr_expect_str_eq(op->place.file, "iocd.jsonc");
  cr_expect_eq(op->place.line, 5);
  cr_expect_eq(op->place.col, 12);

  const struct config_receiver *am = &n->receivers[1];
  cr_expect_eq(am->type, CONFIG_RECV_ALERTMANAGER);
  cr_expect_str_eq(am->url, "http://127.0.0.1:9093");
  cr_expect_eq(am->language, CONFIG_LANG_VI, "the top-level language");

  const struct config_receiver *em = &n->receivers[2];
  cr_expect_eq(em->type, CONFIG_RECV_EMAIL);
  cr_expect_str_eq(em->smtp_url, "smtp://mail.daklak.gov.vn:587");
  cr_expect_eq(em->smtp_tls, CONFIG_SMTP_TLS_STARTTLS);
  cr_expect_str_eq(em->username, "iocd");
  cr_expect_str_eq(em->password, "pw");
  cr_expect_str_eq(em->from, "IOC Đắk Lắk <ioc@daklak.gov.vn>");
  cr_assert_eq(em->nto, 1);
  cr_expect_str_eq(em->to[0], "giamdoc.stttt@daklak.gov.vn");
  cr_expect_not(em->html);
  cr_expect_str_eq(em->ca_file, "/etc/ssl/ioc.pem");
  cr_expect_not(em->tls_verify);

  const struct config_receiver *wall = &n->receivers[3];
  cr_expect_eq(wall->type, CONFIG_RECV_MQTT);
  cr_expect_str_eq(wall->topic_prefix, "ioc/alerts");
  cr_expect_eq(wall->qos, 2);
  cr_expect_not(wall->retain);

  const struct config_receiver *tg = &n->receivers[4];
  cr_expect_eq(tg->type, CONFIG_RECV_TELEGRAM);
  cr_expect_str_eq(tg->base_url, "https://api.telegram.org");
  cr_expect_str_eq(tg->token, "123:abc");
  cr_expect_null(tg->token_file);
  cr_expect_str_eq(tg->chat_id, "-100123");

  const struct config_receiver *za = &n->receivers[5];
  cr_expect_eq(za->type, CONFIG_RECV_ZALO);
  cr_expect_str_eq(za->base_url, "https://openapi.zalo.me");
  cr_expect_str_eq(za->token, "zt");
  cr_assert_eq(za->nuser_ids, 2);
  cr_expect_str_eq(za->user_ids[1], "456");
  cr_expect_str_eq(za->zalo_api, "cs");

  cr_assert(n->has_route);
  const struct config_route *root = &n->route;
  cr_expect_str_eq(root->receiver, "operators");
  cr_assert_eq(root->ngroup_by, 2);
  cr_expect(root->group_by_set);
  cr_expect_str_eq(root->group_by[1], "district");
  cr_expect_eq(root->group_wait_ms, 10000);
  cr_expect_eq(root->group_interval_ms, 120000);
  cr_expect_eq(root->repeat_interval_ms, 3600000);
  cr_assert_eq(root->nmute, 1);
  cr_expect(root->mute_set);
  cr_expect_str_eq(root->mute_time_intervals[0], "outside_working_time");
  cr_expect_eq(root->critical_any_time, 0);
  cr_assert_eq(root->nescalation, 2);
  cr_expect(root->escalation_set);
  cr_expect_eq(root->escalation[0].after_ms, 15 * 60000);
  cr_expect_str_eq(root->escalation[0].receiver, "director");
  cr_expect_eq(root->escalation[1].after_ms, 3600000);
  cr_expect_str_eq(root->escalation[1].receiver, "vice_chair");
  cr_expect_eq(root->place.line, 23);
  cr_expect_eq(root->place.col, 11);
  cr_assert_eq(root->nroutes, 2);

  const struct config_route *c0 = &root->routes[0];
  cr_expect_str_eq(c0->receiver, "vice_chair");
  expect_matcher(matcher(c0->matchers, c0->nmatchers, 0), "severity",
                 CONFIG_MATCH_EQ, "critical");
  cr_expect(c0->cont);
  /* What a child does not say, it inherits. */
  cr_expect_eq(c0->group_wait_ms, -1);
  cr_expect_eq(c0->group_interval_ms, -1);
  cr_expect_eq(c0->repeat_interval_ms, -1);
  cr_expect_eq(c0->critical_any_time, -1);
  cr_expect_not(c0->group_by_set);
  cr_expect_null(c0->group_by);
  cr_expect_not(c0->mute_set);
  cr_expect_not(c0->active_set);
  cr_expect_not(c0->escalation_set);

  const struct config_route *c1 = &root->routes[1];
  cr_expect_null(c1->receiver);
  expect_matcher(matcher(c1->matchers, c1->nmatchers, 0), "alertname",
                 CONFIG_MATCH_EQ, "feed_silent");
  cr_expect_not(c1->cont);
  cr_expect(c1->group_by_set);
  cr_assert_eq(c1->ngroup_by, 1);
  cr_expect(c1->active_set);
  cr_expect_str_eq(c1->active_time_intervals[0], "night");
  cr_assert_eq(c1->nroutes, 1);
  const struct config_route *g = &c1->routes[0];
  cr_assert_eq(g->nmatchers, 2);
  expect_matcher(&g->matchers[0], "district", CONFIG_MATCH_NRE, "Krông.*");
  expect_matcher(&g->matchers[1], "system", CONFIG_MATCH_NE, "idesk");
  cr_expect_str_eq(g->receiver, "am");
  cr_expect_eq(g->critical_any_time, 1);

  cr_assert_eq(n->nintervals, 2);
  cr_expect_str_eq(n->intervals[0].name, "night");
  cr_expect_eq(n->intervals[0].days, CONFIG_DAYS_ALL);
  cr_assert_eq(n->intervals[0].ntimes, 1);
  cr_expect_eq(n->intervals[0].times[0].start, 22 * 60);
  cr_expect_eq(n->intervals[0].times[0].end, 6 * 60);
  cr_expect_eq(n->intervals[1].days, CONFIG_DAYS_NON_WORKING);
  cr_expect_eq(n->intervals[1].ntimes, 0);

  cr_assert_eq(n->ninhibit, 2);
  expect_matcher(matcher(n->inhibit[0].source, n->inhibit[0].nsource, 0),
                 "alertname", CONFIG_MATCH_EQ, "feed_silent");
  expect_matcher(matcher(n->inhibit[0].target, n->inhibit[0].ntarget, 0),
                 "alertname", CONFIG_MATCH_RE, "online_share.*");
  cr_assert_eq(n->inhibit[0].nequal, 1);
  cr_expect_str_eq(n->inhibit[0].equal[0], "district");
  expect_matcher(matcher(n->inhibit[1].target, n->inhibit[1].ntarget, 0),
                 "severity", CONFIG_MATCH_EQ, "warning");
  cr_expect_eq(n->inhibit[1].nequal, 0);

  cr_assert_eq(n->nsilences, 1);
  const struct config_silence *s = &n->silences[0];
  expect_matcher(matcher(s->matchers, s->nmatchers, 0), "district",
                 CONFIG_MATCH_EQ, "Krông Búk");
  /* 2026-12-08T00:30:00Z and 10:00Z. */
  cr_expect_eq(s->starts_ms, INT64_C(1796689800000));
  cr_expect_eq(s->ends_ms, INT64_C(1796724000000));
  cr_expect_str_eq(s->created_by, "admin");
  cr_expect_str_eq(s->comment, "bảo trì");

  cr_expect_str_eq(n->templates.subject, "[{{severity}}] {{alertname}}");
  cr_expect_str_eq(n->templates.text, "t");
  cr_expect_null(n->templates.html);
  /* The first character of the template, after its quote. */
  cr_expect_str_eq(n->templates.subject_place.file, "iocd.jsonc");
  cr_expect_eq(n->templates.subject_place.line, 47);
  cr_expect_eq(n->templates.subject_place.col, 28);

  cr_expect_eq(n->flap_transitions, 6);
  cr_expect_eq(n->flap_window_ms, 30 * 60000);
  cr_expect_str_eq(n->digest_receiver, "director");
  cr_assert_eq(n->ndigest_at, 2);
  cr_expect_eq(n->digest_at[0].start, 7 * 60 + 30);
  cr_expect_eq(n->digest_at[1].start, 16 * 60 + 30);
  cr_expect_str_eq(n->history_database, "iocd_alerts");
  cr_expect_null(n->history_retention_policy);
  config_free(cfg);
}

Test(notify_config, defaults_fill_what_is_not_written) {
  struct config *cfg = load_ok(NOTIFY(
      "{\"receivers\": [{\"name\": \"a\", \"type\": \"webhook\", \"url\": "
      "\"http://h/\"},\n"
      " {\"name\": \"m\", \"type\": \"mqtt\"},\n"
      " {\"name\": \"z\", \"type\": \"zalo\", \"token\": \"t\", "
      "\"user_ids\": [\"1\"]}],\n"
      " \"route\": {\"receiver\": \"a\"}}"));
  const struct config_notify *n = &cfg->notify;
  cr_expect(n->enabled, "on when there are receivers");
  cr_expect_null(n->grafana_url);
  const struct config_receiver *r = &n->receivers[0];
  cr_expect_eq(r->timeout_ms, 10000);
  cr_expect_eq(r->max_attempts, 10);
  cr_expect_eq(r->retry_min_ms, 1000);
  cr_expect_eq(r->retry_max_ms, 300000);
  cr_expect_eq(r->rate_per_hour, 30);
  cr_expect(r->send_resolved);
  cr_expect(r->html);
  cr_expect(r->tls_verify);
  cr_expect_eq(r->language, CONFIG_LANG_VI);
  cr_expect_null(r->base_url);
  cr_expect_null(r->topic_prefix);
  const struct config_receiver *m = &n->receivers[1];
  cr_expect_str_eq(m->topic_prefix, "ioc/alerts");
  cr_expect_eq(m->qos, 1);
  cr_expect(m->retain);
  cr_expect_str_eq(n->receivers[2].zalo_api, "transaction");
  cr_expect_str_eq(n->receivers[2].base_url, "https://openapi.zalo.me");
  const struct config_route *root = &n->route;
  cr_expect_eq(root->group_wait_ms, 30000);
  cr_expect_eq(root->group_interval_ms, 300000);
  cr_expect_eq(root->repeat_interval_ms, 4 * 3600000);
  cr_expect_eq(root->critical_any_time, 1);
  cr_expect_not(root->group_by_set);
  cr_expect_eq(n->flap_transitions, 4);
  cr_expect_eq(n->flap_window_ms, 3600000);
  cr_expect_null(n->digest_receiver);
  cr_expect_null(n->history_database);
  config_free(cfg);
}

Test(notify_config, receivers_take_the_top_level_language_wherever_it_is) {
  struct config *cfg =
      load_ok(HEAD
              "\"notifications\": {\"receivers\": [{\"name\": \"a\", \"type\": "
              "\"mqtt\"}], \"route\": {\"receiver\": \"a\"}},\n"
              "\"language\": \"en\"}\n");
  cr_expect_eq(cfg->notify.receivers[0].language, CONFIG_LANG_EN);
  config_free(cfg);
}

Test(notify_config, absent_or_without_receivers_is_off) {
  struct config *cfg = load_ok(HEAD "\"api\": {}}\n");
  cr_expect_not(cfg->notify.enabled);
  cr_expect_eq(cfg->notify.nreceivers, 0);
  cr_expect_not(cfg->notify.has_route);
  cr_expect_eq(cfg->notify.route.group_wait_ms, 30000);
  cr_expect_eq(cfg->notify.flap_transitions, 4);
  config_free(cfg);
  cfg = load_ok(NOTIFY("{\"grafana_url\": \"https://g\"}"));
  cr_expect_not(cfg->notify.enabled);
  config_free(cfg);
}

/* A receiver that is fine, and the route to it, for cases about other
 * parts. */
#define OPS \
  "{\"name\": \"operators\", \"type\": \"webhook\", \"url\": \"http://h/\"}"
#define ROUTE "\"route\": {\"receiver\": \"operators\"}"

static const struct err_case problems[] = {
    {"unknown key", NOTIFY("{\"recievers\": []}"),
     "iocd.jsonc:2:19: notifications.recievers: unknown key (did you mean "
     "\"receivers\"?)\n"},
    {"receiver unknown key",
     NOTIFY("{\"receivers\": [{\"name\": \"a\", \"type\": \"webhook\", "
            "\"url\": \"http://h/\", \"tiemout\": \"5s\"}], \"route\": "
            "{\"receiver\": \"a\"}}"),
     "iocd.jsonc:2:86: notifications.receivers[0].tiemout: unknown key (did "
     "you mean \"timeout\"?)\n"},
    {"unknown type",
     NOTIFY("{\"receivers\": [{\"name\": \"a\", \"type\": \"slack\"}]," ROUTE
            "}"),
     "iocd.jsonc:2:55: notifications.receivers[0].type: expected \"webhook\", "
     "\"alertmanager\", \"email\", \"mqtt\", \"telegram\" or \"zalo\", got "
     "\"slack\"\n"
     "iocd.jsonc:2:87: notifications.route.receiver: unknown receiver "
     "\"operators\" (not one of notifications.receivers)\n"},
    {"name and type missing", NOTIFY("{\"receivers\": [{}]}"),
     "iocd.jsonc:2:18: notifications.route: required when there are receivers "
     "(the root route's receiver takes every alert no other route takes)\n"
     "iocd.jsonc:2:33: notifications.receivers[0].name: required key is "
     "missing\n"
     "iocd.jsonc:2:33: notifications.receivers[0].type: required key is "
     "missing\n"},
    {"webhook without url",
     NOTIFY("{\"receivers\": [{\"name\": \"operators\", \"type\": "
            "\"webhook\"}], " ROUTE "}"),
     "iocd.jsonc:2:33: notifications.receivers[0].url: required for a "
     "\"webhook\" receiver\n"},
    {"url scheme",
     NOTIFY("{\"receivers\": [{\"name\": \"operators\", \"type\": "
            "\"webhook\",\n \"url\": \"ftp://h/\"}], " ROUTE "}"),
     "iocd.jsonc:3:9: notifications.receivers[0].url: expected an http:// or "
     "https:// URL, got one with ftp://\n"},
    {"url without scheme",
     NOTIFY("{\"receivers\": [{\"name\": \"operators\", \"type\": "
            "\"alertmanager\",\n \"url\": \"127.0.0.1:9093\"}], " ROUTE "}"),
     "iocd.jsonc:3:9: notifications.receivers[0].url: expected an http:// or "
     "https:// URL (the scheme is missing)\n"},
    {"url without host",
     NOTIFY("{\"receivers\": [{\"name\": \"operators\", \"type\": "
            "\"webhook\",\n \"url\": \"http:///hook\"}], " ROUTE "}"),
     "iocd.jsonc:3:9: notifications.receivers[0].url: the URL names no host\n"},
    {"email requirements",
     NOTIFY("{\"receivers\": [{\"name\": \"operators\", \"type\": "
            "\"email\"}], " ROUTE "}"),
     "iocd.jsonc:2:33: notifications.receivers[0].smtp_url: required for an "
     "\"email\" receiver\n"
     "iocd.jsonc:2:33: notifications.receivers[0].from: required for an "
     "\"email\" receiver\n"
     "iocd.jsonc:2:33: notifications.receivers[0].to: required for an "
     "\"email\" receiver\n"},
    {"smtp scheme and tls",
     NOTIFY("{\"receivers\": [{\"name\": \"operators\", \"type\": \"email\",\n"
            " \"smtp_url\": \"http://mail\", \"from\": \"a@b\", \"to\": "
            "[\"c@d\"]},\n"
            " {\"name\": \"x\", \"type\": \"email\", \"smtp_url\": "
            "\"smtps://mail:465\",\n"
            "  \"smtp_tls\": \"starttls\", \"from\": \"a@b\", \"to\": "
            "[\"c@d\"]}], " ROUTE "}"),
     "iocd.jsonc:3:14: notifications.receivers[0].smtp_url: expected an "
     "smtp:// or smtps:// URL, got one with http://\n"
     "iocd.jsonc:5:15: notifications.receivers[1].smtp_tls: \"starttls\" is "
     "for smtp:// URLs (smtps:// is TLS from the first byte)\n"},
    {"email addresses",
     NOTIFY("{\"receivers\": [{\"name\": \"operators\", \"type\": \"email\",\n"
            " \"smtp_url\": \"smtp://mail\", \"from\": \"IOC\", \"to\": "
            "[\"c@d\", \"director\"]}], " ROUTE "}"),
     "iocd.jsonc:3:37: notifications.receivers[0].from: expected an address "
     "such as \"IOC Đắk Lắk <ioc@daklak.gov.vn>\", got \"IOC\"\n"
     "iocd.jsonc:3:58: notifications.receivers[0].to[1]: expected an e-mail "
     "address such as \"ioc@daklak.gov.vn\", got \"director\"\n"},
    {"telegram requirements",
     NOTIFY("{\"receivers\": [{\"name\": \"operators\", \"type\": "
            "\"telegram\"}], " ROUTE "}"),
     "iocd.jsonc:2:33: notifications.receivers[0].token: required for a "
     "\"telegram\" receiver (or \"token_file\")\n"
     "iocd.jsonc:2:33: notifications.receivers[0].chat_id: required for a "
     "\"telegram\" receiver\n"},
    {"token and token_file",
     NOTIFY(
         "{\"receivers\": [{\"name\": \"operators\", \"type\": \"zalo\",\n"
         " \"token\": \"t\", \"token_file\": \"/x\", \"user_ids\": []}], " ROUTE
         "}"),
     "iocd.jsonc:3:16: notifications.receivers[0].token_file: give either "
     "\"token\" or \"token_file\", not both\n"
     "iocd.jsonc:3:48: notifications.receivers[0].user_ids: at least one user "
     "id is required\n"},
    {"key of another type",
     NOTIFY("{\"receivers\": [{\"name\": \"operators\", \"type\": "
            "\"webhook\",\n \"url\": \"http://h/\", \"chat_id\": 1, "
            "\"ca_file\": \"/c\", \"qos\": 0}], " ROUTE "}"),
     "iocd.jsonc:3:22: notifications.receivers[0].chat_id: not used by a "
     "\"webhook\" receiver (only by \"telegram\")\n"
     "iocd.jsonc:3:53: notifications.receivers[0].qos: not used by a "
     "\"webhook\" receiver (only by \"mqtt\")\n"},
    {"receiver names repeat",
     NOTIFY("{\"receivers\": [" OPS ",\n " OPS "], " ROUTE "}"),
     "iocd.jsonc:3:11: notifications.receivers[1].name: \"operators\" is "
     "already the name of receivers[0]\n"},
    {"receiver numbers",
     NOTIFY("{\"receivers\": [{\"name\": \"operators\", \"type\": "
            "\"webhook\",\n \"url\": \"http://h/\", \"rate_per_hour\": 0, "
            "\"retry_min\": \"10m\", \"retry_max\": \"1m\",\n \"timeout\": "
            "\"1h\", \"max_attempts\": 0}], " ROUTE "}"),
     "iocd.jsonc:3:39: notifications.receivers[0].rate_per_hour: expected -1 "
     "(no limit) or an integer from 1 to 100000, got 0\n"
     "iocd.jsonc:3:55: notifications.receivers[0].retry_min: 10m is more than "
     "retry_max (1m)\n"
     "iocd.jsonc:4:13: notifications.receivers[0].timeout: expected a duration "
     "from 100ms to 10m, got \"1h\"\n"
     "iocd.jsonc:4:35: notifications.receivers[0].max_attempts: expected an "
     "integer from 1 to 1000, got 0\n"},
    {"zalo api, topic prefix, header",
     NOTIFY("{\"receivers\": [{\"name\": \"operators\", \"type\": \"zalo\",\n"
            " \"token\": \"t\", \"user_ids\": [\"1\"], \"zalo_api\": "
            "\"promotion\"},\n {\"name\": \"w\", \"type\": \"mqtt\", "
            "\"topic_prefix\": \"ioc/#\"},\n {\"name\": \"h\", \"type\": "
            "\"webhook\", \"url\": \"http://h/\",\n \"headers\": {\"X Org\": "
            "\"a\"}}], " ROUTE "}"),
     "iocd.jsonc:3:47: notifications.receivers[0].zalo_api: expected "
     "\"transaction\" or \"cs\", got \"promotion\"\n"
     "iocd.jsonc:4:48: notifications.receivers[1].topic_prefix: a topic to "
     "publish to cannot hold the wildcards '+' or '#'\n"
     "iocd.jsonc:6:14: notifications.receivers[2].headers[\"X Org\"]: not an "
     "HTTP header name (letters, digits and !#$%&'*+-.^_`|~)\n"},
    {"unknown route receiver, close",
     NOTIFY("{\"receivers\": [" OPS "],\n"
            " \"route\": {\"receiver\": \"operator\"}}"),
     "iocd.jsonc:3:24: notifications.route.receiver: unknown receiver "
     "\"operator\" (did you mean \"operators\"?)\n"},
    {"unknown receivers down the tree",
     NOTIFY("{\"receivers\": [" OPS "],\n"
            " \"route\": {\"receiver\": \"operators\",\n"
            "  \"escalation\": [{\"after\": \"1h\", \"receiver\": "
            "\"director\"},\n"
            "                 {\"after\": \"15m\", \"receiver\": "
            "\"operators\"}],\n"
            "  \"routes\": [{\"receiver\": \"vice_chair\", \"routes\": "
            "[{\"receiver\": \"operatrs\"}]}]},\n"
            " \"digest\": {\"receiver\": \"leaders\", \"at\": [\"07:30\"]}}"),
     "iocd.jsonc:4:46: notifications.route.escalation[0].receiver: unknown "
     "receiver \"director\" (not one of notifications.receivers)\n"
     "iocd.jsonc:5:28: notifications.route.escalation[1].after: 15m is not "
     "after the tier before it (1h): list the tiers in order\n"
     "iocd.jsonc:6:27: notifications.route.routes[0].receiver: unknown "
     "receiver \"vice_chair\" (not one of notifications.receivers)\n"
     "iocd.jsonc:6:65: notifications.route.routes[0].routes[0].receiver: "
     "unknown receiver \"operatrs\" (did you mean \"operators\"?)\n"
     "iocd.jsonc:7:25: notifications.digest.receiver: unknown receiver "
     "\"leaders\" (not one of notifications.receivers)\n"},
    {"route missing", NOTIFY("{\"receivers\": [" OPS "]}"),
     "iocd.jsonc:2:18: notifications.route: required when there are receivers "
     "(the root route's receiver takes every alert no other route takes)\n"},
    {"root route without receiver",
     NOTIFY("{\"receivers\": [" OPS "],\n"
            " \"route\": {\"group_by\": [\"district\"]}}"),
     "iocd.jsonc:3:11: notifications.route.receiver: required key is "
     "missing\n"},
    {"root route with matchers",
     NOTIFY("{\"receivers\": [" OPS "],\n"
            " \"route\": {\"receiver\": \"operators\", \"matchers\": "
            "[\"a=b\"]}}"),
     "iocd.jsonc:3:37: notifications.route.matchers: unknown key (the root "
     "route takes every alert: \"matchers\" and \"continue\" belong to the "
     "routes under it)\n"},
    {"route durations and group_by",
     NOTIFY("{\"receivers\": [" OPS "],\n"
            " \"route\": {\"receiver\": \"operators\", \"group_wait\": "
            "\"30x\",\n"
            "  \"repeat_interval\": \"0s\", \"group_by\": [\"...\", "
            "\"district\"],\n"
            "  \"critical_any_time\": \"yes\"}}"),
     "iocd.jsonc:3:51: notifications.route.group_wait: \"30x\" is not a "
     "duration (use e.g. \"500ms\", \"10s\", \"5m\")\n"
     "iocd.jsonc:4:22: notifications.route.repeat_interval: expected a "
     "duration from 1s to 30d, got \"0s\"\n"
     "iocd.jsonc:4:40: notifications.route.group_by: \"...\" (every label) "
     "stands alone, without other labels\n"
     "iocd.jsonc:5:24: notifications.route.critical_any_time: expected true or "
     "false, got \"yes\"\n"},
    {"unknown time intervals",
     NOTIFY("{\"receivers\": [" OPS "],\n"
            " \"route\": {\"receiver\": \"operators\",\n"
            "  \"mute_time_intervals\": [\"outside_working_hours\", "
            "\"night\"],\n"
            "  \"routes\": [{\"active_time_intervals\": [\"nigth\", "
            "\"lunch\"]}]},\n"
            " \"time_intervals\": [{\"name\": \"night\", \"times\": "
            "[\"22:00-06:00\"]}]}"),
     "iocd.jsonc:4:27: notifications.route.mute_time_intervals[0]: unknown "
     "time interval \"outside_working_hours\" (define it in "
     "notifications.time_intervals, or use \"working_time\", "
     "\"outside_working_time\" or \"non_working_days\")\n"
     "iocd.jsonc:5:41: notifications.route.routes[0].active_time_intervals[0]: "
     "unknown time interval \"nigth\" (did you mean \"night\"?)\n"
     "iocd.jsonc:5:50: notifications.route.routes[0].active_time_intervals[1]: "
     "unknown time interval \"lunch\" (define it in "
     "notifications.time_intervals, or use \"working_time\", "
     "\"outside_working_time\" or \"non_working_days\")\n"},
    {"time interval names and spans",
     NOTIFY("{\"time_intervals\": [{\"name\": \"working_time\"},\n"
            " {\"name\": \"a\", \"days\": \"weekend\", \"times\": "
            "[\"25:00-06:00\", \"06:00-06:00\", \"6:00-7:00\"]},\n"
            " {\"name\": \"a\"}, {\"days\": \"all\"}]}"),
     "iocd.jsonc:2:47: notifications.time_intervals[0].name: \"working_time\" "
     "is built in (working_time, outside_working_time and non_working_days "
     "come from the calendar)\n"
     "iocd.jsonc:3:24: notifications.time_intervals[1].days: expected \"all\", "
     "\"working\" or \"non_working\", got \"weekend\"\n"
     "iocd.jsonc:3:45: notifications.time_intervals[1].times[0]: expected "
     "\"HH:MM-HH:MM\" with two different times (an end before the start runs "
     "past midnight), got \"25:00-06:00\"\n"
     "iocd.jsonc:3:60: notifications.time_intervals[1].times[1]: expected "
     "\"HH:MM-HH:MM\" with two different times (an end before the start runs "
     "past midnight), got \"06:00-06:00\"\n"
     "iocd.jsonc:3:75: notifications.time_intervals[1].times[2]: expected "
     "\"HH:MM-HH:MM\" with two different times (an end before the start runs "
     "past midnight), got \"6:00-7:00\"\n"
     "iocd.jsonc:4:11: notifications.time_intervals[2].name: \"a\" is already "
     "the name of time_intervals[1]\n"
     "iocd.jsonc:4:17: notifications.time_intervals[3].name: required key is "
     "missing\n"},
    {"matcher syntax",
     NOTIFY("{\"receivers\": [" OPS "],\n"
            " \"route\": {\"receiver\": \"operators\", \"routes\": [\n"
            "  {\"matchers\": [\"severity\", \"1x=a\", 3, \"a==b\"]},\n"
            "  {\"matchers\": {\"sev-erity\": \"x\", \"a\": 1}},\n"
            "  {\"matchers\": \"severity=critical\"}]}}"),
     "iocd.jsonc:4:17: notifications.route.routes[0].matchers[0]: expected a "
     "matcher such as \"severity=critical\" (NAME=VALUE, NAME!=VALUE, "
     "NAME=~REGEX or NAME!~REGEX), got \"severity\"\n"
     "iocd.jsonc:4:29: notifications.route.routes[0].matchers[1]: expected a "
     "matcher such as \"severity=critical\" (NAME=VALUE, NAME!=VALUE, "
     "NAME=~REGEX or NAME!~REGEX), got \"1x=a\"\n"
     "iocd.jsonc:4:37: notifications.route.routes[0].matchers[2]: expected a "
     "matcher such as \"severity=critical\" (NAME=VALUE, NAME!=VALUE, "
     "NAME=~REGEX or NAME!~REGEX), got 3\n"
     "iocd.jsonc:5:17: notifications.route.routes[1].matchers.sev-erity: not a "
     "label name (letters, digits and \"_\", from a letter or \"_\")\n"
     "iocd.jsonc:5:40: notifications.route.routes[1].matchers.a: expected a "
     "string, got 1\n"
     "iocd.jsonc:6:16: notifications.route.routes[2].matchers: expected an "
     "array of matchers such as [\"severity=critical\"] or an object of label "
     "names and values, got \"severity=critical\"\n"},
    {"regex that does not compile",
     NOTIFY("{\"inhibit_rules\": [{\"source_matchers\": [\"a=b\"],\n"
            " \"target_matchers\": [\"alertname=~online_share[\", "
            "\"district !~ (Krông\"]}]}"),
     "iocd.jsonc:3:34: notifications.inhibit_rules[0].target_matchers[0]: "
     "\"online_share[\" is not a POSIX extended regular expression: Invalid "
     "regular expression\n"
     "iocd.jsonc:3:63: notifications.inhibit_rules[0].target_matchers[1]: "
     "\"(Krông\" is not a POSIX extended regular expression: Unmatched ( or "
     "\\(\n"},
    {"regex escaping its anchors",
     NOTIFY("{\"inhibit_rules\": [{\"source_matchers\": [\"a=b\"],\n"
            " \"target_matchers\": [\"x=~\\u00e9)|(b\"]}]}"),
     "iocd.jsonc:3:26: notifications.inhibit_rules[0].target_matchers[0]: "
     "\"é)|(b\" is not a POSIX extended regular expression: Unmatched ( or "
     "\\(\n"},
    {"inhibit rules",
     NOTIFY("{\"inhibit_rules\": [{\"source_matchers\": []},\n"
            " {\"source_matchers\": [\"a=b\"], \"target_matchers\": {}, "
            "\"equal\": [\"d\", \"d\"]}]}"),
     "iocd.jsonc:2:37: notifications.inhibit_rules[0].target_matchers: "
     "required key is missing\n"
     "iocd.jsonc:2:57: notifications.inhibit_rules[0].source_matchers: at "
     "least one matcher is required\n"
     "iocd.jsonc:3:50: notifications.inhibit_rules[1].target_matchers: at "
     "least one matcher is required\n"
     "iocd.jsonc:3:69: notifications.inhibit_rules[1].equal[1]: \"d\" is "
     "listed twice (first at [0])\n"},
    {"silences",
     NOTIFY("{\"silences\": [{\"matchers\": [\"a=b\"], \"starts_at\": "
            "\"2026-12-08T17:00:00+07:00\",\n"
            "  \"ends_at\": \"2026-12-08T07:30:00+07:00\"},\n"
            " {\"matchers\": [], \"ends_at\": \"2026-12-08 07:30\"},\n"
            " {\"starts_at\": \"2026-02-30T00:00:00Z\"}]}"),
     "iocd.jsonc:3:14: notifications.silences[0].ends_at: is not after "
     "starts_at\n"
     "iocd.jsonc:4:15: notifications.silences[1].matchers: at least one "
     "matcher is required\n"
     "iocd.jsonc:4:30: notifications.silences[1].ends_at: expected an RFC 3339 "
     "time with its offset, such as \"2026-12-08T07:30:00+07:00\", got "
     "\"2026-12-08 07:30\"\n"
     "iocd.jsonc:5:2: notifications.silences[2].matchers: required key is "
     "missing\n"
     "iocd.jsonc:5:2: notifications.silences[2].ends_at: required key is "
     "missing\n"
     "iocd.jsonc:5:16: notifications.silences[2].starts_at: expected an RFC "
     "3339 time with its offset, such as \"2026-12-08T07:30:00+07:00\", got "
     "\"2026-02-30T00:00:00Z\"\n"},
    {"digest",
     NOTIFY("{\"receivers\": [" OPS "], " ROUTE ",\n"
            " \"digest\": {\"receiver\": \"operators\", \"at\": [\"16:30\", "
            "\"07:30\", \"24:00\"]}}"),
     "iocd.jsonc:3:54: notifications.digest.at[1]: \"07:30\" is not after the "
     "time before it (list the times in order, each once)\n"
     "iocd.jsonc:3:63: notifications.digest.at[2]: expected a time of day "
     "\"HH:MM\" (00:00 to 23:59), got \"24:00\"\n"},
    {"digest requirements", NOTIFY("{\"digest\": {}}"),
     "iocd.jsonc:2:29: notifications.digest.receiver: required key is missing\n"
     "iocd.jsonc:2:29: notifications.digest.at: required key is missing\n"},
    {"flapping and templates",
     NOTIFY("{\"flapping\": {\"transitions\": 1, \"window\": \"10s\"},\n"
            " \"templates\": {\"subject\": \"\", \"body\": \"x\"}}"),
     "iocd.jsonc:2:47: notifications.flapping.transitions: expected an integer "
     "from 2 to 1000, got 1\n"
     "iocd.jsonc:2:60: notifications.flapping.window: expected a duration from "
     "1m to 7d, got \"10s\"\n"
     "iocd.jsonc:3:27: notifications.templates.subject: must not be empty\n"
     "iocd.jsonc:3:31: notifications.templates.body: unknown key\n"},
    {"grafana url and enabled",
     NOTIFY("{\"enabled\": true, \"grafana_url\": \"grafana:3000\"}"),
     "iocd.jsonc:2:30: notifications.enabled: notifications are enabled but "
     "there is no receiver\n"
     "iocd.jsonc:2:51: notifications.grafana_url: expected an http:// or "
     "https:// URL (the scheme is missing)\n"},
    {"not an object", NOTIFY("[]"),
     "iocd.jsonc:2:18: notifications: expected an object, got an array\n"},
};

Test(notify_config, each_problem_is_reported_where_it_is) {
  CHECK_CASES(problems);
}

/* Secrets. */

/* A scratch directory with files for one test; removed by dir_done. */
struct dir {
  char path[64];
  char files[8][128];
  size_t n;
};

static void dir_init(struct dir *d) {
  snprintf(d->path, sizeof d->path, "/tmp/iocd-notify-XXXXXX");
  cr_assert_not_null(mkdtemp(d->path));
  d->n = 0;
}

static const char *dir_file(struct dir *d, const char *name, const char *text,
                            mode_t mode) {
  cr_assert_lt(d->n, 8);
  char joined[sizeof d->files[0]];
  snprintf(joined, sizeof joined, "%s/%s", d->path, name);
  char *p = d->files[d->n++];
  memcpy(p, joined, sizeof joined);
  FILE *f = fopen(p, "wb");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
  chmod(p, mode);
  return p;
}

static void dir_done(struct dir *d) {
  for (size_t i = 0; i < d->n; i++) {
    unlink(d->files[i]);
  }
  rmdir(d->path);
}

static struct config *load_file_ok(const char *path) {
  struct buf e;
  buf_init(&e, 0);
  struct config *cfg = NULL;
  int rc = config_load(path, &cfg, &e);
  cr_assert_eq(rc, IOCD_OK, "%s", e.data ? e.data : "");
  buf_cleanup(&e);
  return cfg;
}

Test(notify_config, secret_files_are_read_at_load_without_their_newline) {
  struct dir d;
  dir_init(&d);
  dir_file(&d, "telegram.token", "123456:ABC-def\n", 0600);
  dir_file(&d, "smtp.pass", "pa ss\r\n", 0600);
  dir_file(&d, "zalo.token", "zalo-token", 0600);
  char text[2048];
  snprintf(text, sizeof text,
           HEAD
           "\"notifications\": {\"receivers\": [\n"
           " {\"name\": \"t\", \"type\": \"telegram\", \"token_file\": "
           "\"telegram.token\", \"chat_id\": \"@ioc\"},\n"
           " {\"name\": \"e\", \"type\": \"email\", \"smtp_url\": "
           "\"smtp://127.0.0.1:2525\",\n"
           "  \"smtp_tls\": \"none\", \"username\": \"u\", "
           "\"password_file\": \"%s/smtp.pass\",\n"
           "  \"from\": \"a@b\", \"to\": [\"c@d\"]},\n"
           " {\"name\": \"z\", \"type\": \"zalo\", \"token_file\": "
           "\"./zalo.token\", \"user_ids\": [\"1\"]}],\n"
           " \"route\": {\"receiver\": \"t\"}}}\n",
           d.path);
  const char *main_file = dir_file(&d, "iocd.jsonc", text, 0600);
  struct config *cfg = load_file_ok(main_file);
  const struct config_notify *n = &cfg->notify;
  cr_assert_eq(n->nreceivers, 3);
  /* Relative names are the main file's neighbours, kept resolved (Zalo's
   * token is read again at each send). */
  char want[256];
  snprintf(want, sizeof want, "%s/telegram.token", d.path);
  cr_expect_str_eq(n->receivers[0].token_file, want);
  cr_expect_str_eq(n->receivers[0].token, "123456:ABC-def");
  cr_expect_str_eq(n->receivers[1].password, "pa ss");
  snprintf(want, sizeof want, "%s/./zalo.token", d.path);
  cr_expect_str_eq(n->receivers[2].token_file, want);
  cr_expect_str_eq(n->receivers[2].token, "zalo-token");
  config_free(cfg);
  dir_done(&d);
}

Test(notify_config, secret_files_are_not_read_while_notifications_are_off) {
  struct config *cfg = load_ok(
      NOTIFY("{\"enabled\": false, \"receivers\": [{\"name\": \"t\", \"type\": "
             "\"telegram\",\n \"token_file\": \"/nonexistent/telegram.token\", "
             "\"chat_id\": \"1\"}],\n \"route\": {\"receiver\": \"t\"}}"));
  cr_expect_not(cfg->notify.enabled);
  cr_expect_str_eq(cfg->notify.receivers[0].token_file,
                   "/nonexistent/telegram.token");
  cr_expect_null(cfg->notify.receivers[0].token);
  config_free(cfg);
}

Test(notify_config, a_secret_file_that_cannot_be_read_is_named_with_why) {
  struct dir d;
  dir_init(&d);
  const char *empty = dir_file(&d, "empty", "\n", 0600);
  const char *ctl = dir_file(&d, "ctl", "S3cr3t\001x\n", 0600);
  char text[2048];
  snprintf(text, sizeof text,
           NOTIFY("{\"receivers\": [\n"
                  "{\"name\": \"a\", \"type\": \"telegram\", \"chat_id\": "
                  "\"1\", \"token_file\": \"/nonexistent/t\"},\n"
                  "{\"name\": \"b\", \"type\": \"telegram\", \"chat_id\": "
                  "\"1\", \"token_file\": \"/tmp\"},\n"
                  "{\"name\": \"c\", \"type\": \"telegram\", \"chat_id\": "
                  "\"1\", \"token_file\": \"%s\"},\n"
                  "{\"name\": \"d\", \"type\": \"zalo\", \"user_ids\": "
                  "[\"1\"], \"token_file\": \"%s\"}],\n"
                  " \"route\": {\"receiver\": \"a\"}}"),
           empty, ctl);
  char want[2048];
  snprintf(want, sizeof want,
           "iocd.jsonc:3:65: notifications.receivers[0].token_file: cannot "
           "read \"/nonexistent/t\": No such file or directory\n"
           "iocd.jsonc:4:65: notifications.receivers[1].token_file: cannot "
           "read \"/tmp\": is a directory, not a file\n"
           "iocd.jsonc:5:65: notifications.receivers[2].token_file: \"%s\" "
           "is empty\n"
           "iocd.jsonc:6:64: notifications.receivers[3].token_file: character "
           "7 of the secret in \"%s\" is a control character, which it "
           "cannot hold\n",
           empty, ctl);
  struct load l;
  load_text(&l, text);
  cr_expect_eq(l.rc, IOCD_EPARSE);
  cr_expect_str_eq(errors_of(&l), want);
  cr_expect_null(strstr(errors_of(&l), "S3cr3t"));
  load_done(&l);
  dir_done(&d);
}

/* Texts with a problem at or near a secret ("S3cr3t..."): each is refused,
 * and no message shows the secret. */
static const char *const secret_cases[] = {
    NOTIFY("{\"receivers\": [{\"name\": \"t\", \"type\": \"telegram\", "
           "\"chat_id\": \"1\", \"token\": 73512345}]}"),
    NOTIFY("{\"receivers\": [{\"name\": \"t\", \"type\": \"telegram\", "
           "\"chat_id\": \"1\", \"token\": \"S3cr3t\\u0001\"}]}"),
    NOTIFY("{\"receivers\": [{\"name\": \"t\", \"type\": \"telegram\", "
           "\"chat_id\": \"1\", \"token\": \"S3cr3t${x-S3cr3t}\"}]}"),
    NOTIFY("{\"receivers\": [{\"name\": \"t\", \"type\": \"webhook\", "
           "\"url\": \"http://h\", \"token\": \"S3cr3t\"}]}"),
    NOTIFY("{\"receivers\": [{\"name\": \"t\", \"type\": \"telegram\", "
           "\"token\": \"S3cr3t\" \"chat_id\": \"1\"}]}"),
    NOTIFY("{\"receivers\": [{\"name\": \"t\", \"type\": \"telegram\", "
           "\"token\": \"S3cr3t\\q\", \"chat_id\": \"1\"}]}"),
    NOTIFY("{\"receivers\": [{\"name\": \"t\", \"type\": \"webhook\", "
           "\"url\": \"http://h\",\n \"headers\": {\"Authorization\": "
           "\"Bearer S3cr3t\\u0007\"}}]}"),
    NOTIFY("{\"receivers\": [{\"name\": \"t\", \"type\": \"email\", "
           "\"smtp_url\": \"smtp://h\", \"from\": \"a@b\", \"to\": [\"c@d\"],\n"
           " \"password\": \"S3cr3t\", \"password\": \"S3cr3t2\", "
           "\"password_file\": \"/x\"}]}"),
    NOTIFY("{\"receivers\": [{\"name\": \"t\", \"type\": \"webhook\", "
           "\"url\": \"ftp://u:S3cr3t@h/\"}]}"),
    NOTIFY("{\"receivers\": [{\"name\": \"t\", \"type\": \"email\", "
           "\"smtp_url\": \"smtp://h\", \"from\": \"a@b\", \"to\": [\"c@d\"],\n"
           " \"password\": \"S3cr3t\"}], \"route\": {\"receiver\": \"t\"}, "
           "\"flapping\": 3}"),
};

Test(notify_config, no_message_shows_a_secret) {
  for (size_t i = 0; i < sizeof secret_cases / sizeof secret_cases[0]; i++) {
    struct load l;
    load_text(&l, secret_cases[i]);
    cr_expect_eq(l.rc, IOCD_EPARSE, "case %zu: rc %d", i, l.rc);
    cr_expect_gt(l.errors.len, 0, "case %zu", i);
    cr_expect_null(strstr(errors_of(&l), "S3cr3t"), "case %zu: %s", i,
                   errors_of(&l));
    cr_expect_null(strstr(errors_of(&l), "73512345"), "case %zu: %s", i,
                   errors_of(&l));
    load_done(&l);
  }
}

Test(notify_config, secrets_keep_their_bytes_and_matchers_are_nfc) {
  /* "é" written decomposed (e + U+0301). */
  struct config *cfg = load_ok(
      NOTIFY("{\"receivers\": [{\"name\": \"t\", \"type\": \"telegram\", "
             "\"chat_id\": \"1\", \"token\": \"e\\u0301\"}],\n"
             " \"route\": {\"receiver\": \"t\", \"routes\": [{\"matchers\": "
             "[\"district=Kro\\u0302ng\"]}]}}"));
  cr_expect_str_eq(cfg->notify.receivers[0].token, "e\xcc\x81");
  cr_expect_str_eq(cfg->notify.route.routes[0].matchers[0].value,
                   "Kr\xc3\xb4ng");
  config_free(cfg);
}

Test(notify_config, a_reload_names_the_section_and_never_a_secret) {
  static const char a[] = NOTIFY(
      "{\"receivers\": [{\"name\": \"t\", \"type\": \"telegram\", "
      "\"chat_id\": \"1\", \"token\": \"S3cr3t-one\"}],\n"
      " \"route\": {\"receiver\": \"t\"}}");
  static const char b[] = NOTIFY(
      "{\"receivers\": [{\"name\": \"t\", \"type\": \"telegram\", "
      "\"chat_id\": \"1\", \"token\": \"S3cr3t-two\"}],\n"
      " \"route\": {\"receiver\": \"t\"}}");
  struct config *old = load_ok(a);
  struct config *same = load_ok(a);
  struct config *changed = load_ok(b);
  struct config *none =
      load_ok("{\"file\": {}, \"subscriptions\": [{\"topic\": \"t\"}]}\n");
  struct buf out;
  buf_init(&out, 0);
  cr_assert_eq(config_diff(old, same, &out), IOCD_OK);
  cr_expect_str_eq(out.data, "nothing changed");
  buf_reset(&out);
  cr_assert_eq(config_diff(old, changed, &out), IOCD_OK);
  cr_expect_str_eq(out.data, "sections changed: notifications");
  buf_reset(&out);
  cr_assert_eq(config_diff(none, old, &out), IOCD_OK);
  cr_expect_str_eq(out.data, "sections changed: notifications");
  buf_cleanup(&out);
  config_free(old);
  config_free(same);
  config_free(changed);
  config_free(none);
}

/* The schema lists the section's keys, so that the documentation test
 * asks for a row for each. */
struct seen {
  const char *want;
  enum config_schema_kind kind;
  bool found;
};

static void find_key(void *ud, const char *path, enum config_schema_kind kind) {
  struct seen *s = ud;
  for (; s->want; s++) {
    if (strcmp(s->want, path) == 0) {
      cr_expect_eq(kind, s->kind, "%s", path);
      s->found = true;
    }
  }
}

Test(notify_config, the_schema_lists_every_key_of_the_section) {
  struct seen keys[] = {
      {"notifications", CONFIG_SCHEMA_OBJECT, false},
      {"notifications.receivers", CONFIG_SCHEMA_LIST, false},
      {"notifications.receivers[].token_file", CONFIG_SCHEMA_VALUE, false},
      {"notifications.receivers[].headers", CONFIG_SCHEMA_MAP, false},
      {"notifications.route", CONFIG_SCHEMA_OBJECT, false},
      {"notifications.route.escalation[].after", CONFIG_SCHEMA_VALUE, false},
      {"notifications.route.routes[].matchers", CONFIG_SCHEMA_VALUE, false},
      {"notifications.route.routes[].continue", CONFIG_SCHEMA_VALUE, false},
      {"notifications.route.routes[].routes", CONFIG_SCHEMA_LIST, false},
      {"notifications.time_intervals[].times", CONFIG_SCHEMA_VALUE, false},
      {"notifications.inhibit_rules[].equal", CONFIG_SCHEMA_VALUE, false},
      {"notifications.silences[].ends_at", CONFIG_SCHEMA_VALUE, false},
      {"notifications.templates.html", CONFIG_SCHEMA_VALUE, false},
      {"notifications.flapping.window", CONFIG_SCHEMA_VALUE, false},
      {"notifications.digest.at", CONFIG_SCHEMA_VALUE, false},
      {"notifications.history.retention_policy", CONFIG_SCHEMA_VALUE, false},
      {NULL, CONFIG_SCHEMA_VALUE, false},
  };
  config_schema_each(find_key, keys);
  for (size_t i = 0; keys[i].want; i++) {
    cr_expect(keys[i].found, "%s is not listed", keys[i].want);
  }
}

/* The example configuration: the province's setup, switched off. */
Test(notify_config, the_example_sets_up_the_province_switched_off) {
  struct config *cfg = load_file_ok(EXAMPLE_PATH);
  const struct config_notify *n = &cfg->notify;
  cr_expect_not(n->enabled);
  cr_assert_geq(n->nreceivers, 5);
  static const struct {
    const char *name;
    enum config_receiver_type type;
  } want[] = {
      {"operators", CONFIG_RECV_WEBHOOK},   {"director", CONFIG_RECV_EMAIL},
      {"vice_chair", CONFIG_RECV_TELEGRAM}, {"leaders_zalo", CONFIG_RECV_ZALO},
      {"wall", CONFIG_RECV_MQTT},
  };
  for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
    const struct config_receiver *r = NULL;
    for (size_t i = 0; i < n->nreceivers; i++) {
      if (strcmp(n->receivers[i].name, want[k].name) == 0) {
        r = &n->receivers[i];
      }
    }
    cr_assert_not_null(r, "%s", want[k].name);
    cr_expect_eq(r->type, want[k].type, "%s", want[k].name);
    if (r->type == CONFIG_RECV_TELEGRAM) {
      cr_expect_not_null(r->token_file);
      cr_expect_null(r->token, "not read while notifications are off");
    }
  }
  cr_assert(n->has_route);
  cr_expect_str_eq(n->route.receiver, "operators");
  cr_expect_eq(n->route.critical_any_time, 1);
  cr_assert_eq(n->route.nmute, 1);
  cr_expect_str_eq(n->route.mute_time_intervals[0], "outside_working_time");
  cr_expect_geq(n->route.nescalation, 2);
  cr_expect_eq(n->ninhibit, 3);
  /* Every alertname an inhibit rule names exactly is a rule of the
   * example (or the built-in broker alert). */
  for (size_t i = 0; i < n->ninhibit; i++) {
    const struct config_inhibit *in = &n->inhibit[i];
    const struct config_matcher *all[2] = {in->source, in->target};
    size_t alln[2] = {in->nsource, in->ntarget};
    for (size_t s = 0; s < 2; s++) {
      for (size_t m = 0; m < alln[s]; m++) {
        const struct config_matcher *mt = &all[s][m];
        if (strcmp(mt->name, "alertname") != 0 || mt->op != CONFIG_MATCH_EQ ||
            strcmp(mt->value, "iocd_broker_unreachable") == 0) {
          continue;
        }
        bool known = false;
        for (size_t r = 0; r < cfg->rules.n; r++) {
          known = known || strcmp(cfg->rules.v[r].name, mt->value) == 0;
        }
        cr_expect(known, "inhibit_rules[%zu]: no rule %s", i, mt->value);
      }
    }
  }
  cr_expect_str_eq(n->digest_receiver, "director");
  cr_expect_gt(n->ndigest_at, 0);
  config_free(cfg);
}

/* The example's calendar reaches 2026 and 2027: Tết Bính Ngọ (9 days from
 * 14 February 2026), the make-up Saturdays 10 January and 22 August 2026,
 * Giỗ Tổ Hùng Vương 2027 (10/3 lunar = 16 April). */
Test(notify_config, the_example_calendar_carries_2026_and_2027) {
  struct config *cfg = load_file_ok(EXAMPLE_PATH);
  const struct config_calendar *cal = &cfg->calendar;
  static const char *const off[] = {
      "2026-01-02", "2026-02-14", "2026-02-20", "2026-02-22", "2026-04-27",
      "2026-05-01", "2026-08-31", "2026-09-02", "2027-01-01", "2027-02-08",
      "2027-04-16", "2027-05-03", "2021-02-10"};
  for (size_t k = 0; k < sizeof off / sizeof off[0]; k++) {
    int32_t day;
    cr_assert_eq(config__parse_date(off[k], 10, &day), IOCD_OK);
    bool found = false;
    for (size_t i = 0; i < cal->nholidays; i++) {
      found = found ||
              (cal->holidays[i].first <= day && day <= cal->holidays[i].last);
    }
    cr_expect(found, "%s is a holiday", off[k]);
  }
  static const char *const worked[] = {"2026-01-10", "2026-08-22"};
  for (size_t k = 0; k < 2; k++) {
    int32_t day;
    cr_assert_eq(config__parse_date(worked[k], 10, &day), IOCD_OK);
    bool found = false;
    for (size_t i = 0; i < cal->nworkdays; i++) {
      found = found ||
              (cal->workdays[i].first <= day && day <= cal->workdays[i].last);
    }
    cr_expect(found, "%s is a make-up working day", worked[k]);
  }
  config_free(cfg);
}
