/*
 * Tests of the rules sections of the configuration (calendar, sources,
 * params, rules, rule_files, rule_engine): every kind of problem with its
 * exact FILE:LINE:COL: PATH: message (expression errors point into the
 * expression string), defaults, the merge of rule files, the example
 * configuration and its default rules; and `iocd rules test` as a user
 * runs it: exit status and the diff of a failing test.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_int.h"
#include "core/buf.h"
#include "core/err.h"
#include "tests/unit/config_fixture.h"

#ifndef IOCD_BIN_PATH
#error "tests/CMakeLists.txt passes IOCD_BIN_PATH"
#endif

/* One problem per case, each with its exact message. */
static const struct err_case problems[] = {
    {"calendar unknown key", HEAD "\"calendar\": {\"timezones\": \"UTC\"}}\n",
     "iocd.jsonc:2:14: calendar.timezones: unknown key (did you mean "
     "\"timezone\"?)\n"},
    {"timezone unknown",
     HEAD "\"calendar\": {\"timezone\": \"Europe/Paris\"}}\n",
     "iocd.jsonc:2:26: calendar.timezone: unknown time zone \"Europe/Paris\" "
     "(iocd knows zones without daylight saving time, e.g. "
     "\"Asia/Ho_Chi_Minh\"; give others as an offset such as \"+07:00\")\n"},
    {"timezone offset range",
     HEAD "\"calendar\": {\"timezone\": \"+15:00\"}}\n",
     "iocd.jsonc:2:26: calendar.timezone: unknown time zone \"+15:00\" (iocd "
     "knows zones without daylight saving time, e.g. \"Asia/Ho_Chi_Minh\"; "
     "give others as an offset such as \"+07:00\")\n"},
    {"office hours format",
     HEAD "\"calendar\": {\"office_hours\": [\"7:30-11:30\"]}}\n",
     "iocd.jsonc:2:31: calendar.office_hours[0]: expected office hours "
     "\"HH:MM-HH:MM\" with the start before the end, got \"7:30-11:30\"\n"},
    {"office hours backwards",
     HEAD "\"calendar\": {\"office_hours\": [\"13:30-11:00\"]}}\n",
     "iocd.jsonc:2:31: calendar.office_hours[0]: expected office hours "
     "\"HH:MM-HH:MM\" with the start before the end, got \"13:30-11:00\"\n"},
    {"office hours overlap",
     HEAD "\"calendar\": {\"office_hours\": [\"07:30-11:30\", "
          "\"11:00-17:00\"]}}\n",
     "iocd.jsonc:2:46: calendar.office_hours[1]: \"11:00-17:00\" starts before "
     "the end of the span before it (list the spans in order, without "
     "overlap)\n"},
    {"weekdays twice",
     HEAD "\"calendar\": {\"weekdays\": [\"mon\", \"tue\", \"mon\"]}}\n",
     "iocd.jsonc:2:41: calendar.weekdays[2]: \"mon\" is listed twice\n"},
    {"weekdays name", HEAD "\"calendar\": {\"weekdays\": [\"monday\"]}}\n",
     "iocd.jsonc:2:27: calendar.weekdays[0]: expected \"mon\", \"tue\", "
     "\"wed\", \"thu\", \"fri\", \"sat\" or \"sun\", got \"monday\"\n"},
    {"weekdays empty", HEAD "\"calendar\": {\"weekdays\": []}}\n",
     "iocd.jsonc:2:26: calendar.weekdays: at least one working weekday is "
     "required\n"},
    {"holiday not a date",
     HEAD "\"calendar\": {\"holidays\": [\"2021-02-29\"]}}\n",
     "iocd.jsonc:2:27: calendar.holidays[0]: expected a date \"YYYY-MM-DD\" or "
     "a range \"YYYY-MM-DD..YYYY-MM-DD\", got \"2021-02-29\"\n"},
    {"holiday range backwards",
     HEAD "\"calendar\": {\"holidays\": [\"2021-02-16..2021-02-10\"]}}\n",
     "iocd.jsonc:2:27: calendar.holidays[0]: the range "
     "\"2021-02-16..2021-02-10\" ends before it starts\n"},
    {"workday is holiday",
     HEAD "\"calendar\": {\"holidays\": [\"2021-02-10..2021-02-16\"],\n"
          " \"workdays\": [\"2021-02-13\"]}}\n",
     "iocd.jsonc:3:14: calendar.workdays: 2021-02-13 is also a holiday "
     "(holidays[0])\n"},
    {"districts twice",
     HEAD "\"sources\": {\"districts\": [\"Lắk\", \"Ea Kar\", \"Lắk\"]}}\n",
     "iocd.jsonc:2:44: sources.districts[2]: \"Lắk\" is listed twice (first at "
     "[0])\n"},
    {"system tag empty", HEAD "\"sources\": {\"system_tag\": \"\"}}\n",
     "iocd.jsonc:2:27: sources.system_tag: must not be empty\n"},
    {"evaluation interval range",
     HEAD "\"rule_engine\": {\"evaluation_interval\": \"0s\"}}\n",
     "iocd.jsonc:2:40: rule_engine.evaluation_interval: expected a duration "
     "from 1s to 1h, got \"0s\"\n"},
    {"param value", HEAD "\"params\": {\"target\": \"30 %\"}}\n",
     "iocd.jsonc:2:22: params.target: expected a number or a percentage such "
     "as \"30%\", got \"30 %\"\n"},
    {"param name", HEAD "\"params\": {\"on-line\": 1}}\n",
     "iocd.jsonc:2:12: params.on-line: \"on-line\" is not a parameter name "
     "(letters, digits and \"_\", from a letter or \"_\")\n"},
    {"param override district",
     HEAD
     "\"sources\": {\"districts\": [\"Buôn Ma Thuột\"]},\n"
     " \"params\": {\"t\": {\"default\": 1, \"values\": {\"Buon Ma Thuot\": "
     "2}}}}\n",
     "iocd.jsonc:3:44: params.t.values[\"Buon Ma Thuot\"]: not one of "
     "sources.districts (did you mean \"Buôn Ma Thuột\"?)\n"},
    {"param override district without diacritics, other case",
     HEAD
     "\"sources\": {\"districts\": [\"Đắk R'Lấp\", \"Đắk Mil\"]},\n"
     " \"params\": {\"t\": {\"default\": 1, \"values\": {\"dak r'lap\": "
     "2}}}}\n",
     "iocd.jsonc:3:44: params.t.values[\"dak r'lap\"]: not one of "
     "sources.districts (did you mean \"Đắk R'Lấp\"?)\n"},
    {"param override district far from every name",
     HEAD
     "\"sources\": {\"districts\": [\"Đắk R'Lấp\", \"Đắk Mil\"]},\n"
     " \"params\": {\"t\": {\"default\": 1, \"values\": {\"Krông Nô\": "
     "2}}}}\n",
     "iocd.jsonc:3:44: params.t.values[\"Krông Nô\"]: not one of "
     "sources.districts\n"},
    {"param unknown key", HEAD "\"params\": {\"t\": {\"defualt\": 1}}}\n",
     "iocd.jsonc:2:18: params.t.defualt: unknown key (did you mean "
     "\"default\"?)\n"},
    {"rule name missing", HEAD "\"rules\": [{\"expr\": \"1\"}]}\n",
     "iocd.jsonc:2:11: rules[0].name: required key is missing\n"},
    {"rule name bad",
     HEAD "\"rules\": [{\"name\": \"online share\", \"expr\": \"1\"}]}\n",
     "iocd.jsonc:2:20: rules[0].name: \"online share\" is not a rule name "
     "(letters, digits, \"_\", \"-\" and \".\", from a letter or \"_\")\n"},
    {"rule expr missing", HEAD "\"rules\": [{\"name\": \"a\"}]}\n",
     "iocd.jsonc:2:11: rules[0].expr: required key is missing (or give "
     "\"levels\")\n"},
    {"rule expr and levels",
     HEAD "\"rules\": [{\"name\": \"a\", \"expr\": \"1\",\n"
          " \"levels\": [{\"severity\": \"warning\", \"expr\": \"1\"}]}]}\n",
     "iocd.jsonc:3:12: rules[0].levels: give either \"expr\" or \"levels\", "
     "not both\n"},
    {"rule levels order",
     HEAD "\"rules\": [{\"name\": \"a\", \"levels\": [\n"
          " {\"severity\": \"critical\", \"expr\": \"x.y > 2\"},\n"
          " {\"severity\": \"warning\", \"expr\": \"x.y > 1\"}]}]}\n",
     "iocd.jsonc:4:15: rules[0].levels[1].severity: levels go from the lowest "
     "severity to the highest: \"warning\" cannot follow \"critical\"\n"},
    {"rule severity with levels",
     HEAD "\"rules\": [{\"name\": \"a\", \"severity\": \"info\",\n"
          " \"levels\": [{\"severity\": \"warning\", \"expr\": \"1\"}]}]}\n",
     "iocd.jsonc:2:37: rules[0].severity: not used with \"levels\" (each level "
     "has its own)\n"},
    {"rule severity name",
     HEAD "\"rules\": [{\"name\": \"a\", \"expr\": \"1\", \"severity\": "
          "\"high\"}]}\n",
     "iocd.jsonc:2:50: rules[0].severity: expected \"info\", \"warning\" or "
     "\"critical\", got \"high\"\n"},
    {"rule missing name",
     HEAD "\"rules\": [{\"name\": \"a\", \"expr\": \"1\", \"missing\": "
          "\"ignore\"}]}\n",
     "iocd.jsonc:2:49: rules[0].missing: expected \"nodata\", \"keep\" or "
     "\"ok\", got \"ignore\"\n"},
    {"rule for duration",
     HEAD "\"rules\": [{\"name\": \"a\", \"expr\": \"1\", \"for\": "
          "\"15x\"}]}\n",
     "iocd.jsonc:2:45: rules[0].for: \"15x\" is not a duration (use e.g. "
     "\"500ms\", \"10s\", \"5m\")\n"},
    {"rule tolerance without for",
     HEAD "\"rules\": [{\"name\": \"a\", \"expr\": \"1\", \"for_tolerance\": "
          "\"1m\"}]}\n",
     "iocd.jsonc:2:55: rules[0].for_tolerance: has no effect without "
     "\"for\"\n"},
    {"rule expected without by",
     HEAD
     "\"sources\": {\"districts\": [\"Lắk\"]},\n"
     " \"rules\": [{\"name\": \"a\", \"expr\": \"1\", \"expected\": true}]}\n",
     "iocd.jsonc:3:51: rules[0].expected: needs \"by\" made of the source tags "
     "(sources.district_tag and/or sources.system_tag)\n"},
    {"rule expected other label",
     HEAD
     "\"sources\": {\"districts\": [\"Lắk\"]},\n"
     " \"rules\": [{\"name\": \"a\", \"expr\": \"1\", \"by\": [\"agency\"], "
     "\"expected\": true}]}\n",
     "iocd.jsonc:3:69: rules[0].expected: needs \"by\" made of the source tags "
     "(sources.district_tag and/or sources.system_tag)\n"},
    {"rule expected no sources",
     HEAD "\"rules\": [{\"name\": \"a\", \"expr\": \"1\", \"by\": "
          "[\"system\"], \"expected\": true}]}\n",
     "iocd.jsonc:2:68: rules[0].expected: needs sources.systems to list the "
     "sources\n"},
    {"rule by reserved",
     HEAD "\"rules\": [{\"name\": \"a\", \"expr\": \"1\", \"by\": "
          "[\"district\", \"state\"]}]}\n",
     "iocd.jsonc:2:57: rules[0].by[1]: \"state\" is reserved: every alert has "
     "it as a tag\n"},
    {"rule label reserved",
     HEAD "\"rules\": [{\"name\": \"a\", \"expr\": \"1\", \"labels\": "
          "{\"severity\": \"x\"}}]}\n",
     "iocd.jsonc:2:49: rules[0].labels.severity: \"severity\" is reserved: "
     "every alert has it as a tag\n"},
    {"rule label is by",
     HEAD "\"rules\": [{\"name\": \"a\", \"expr\": \"1\", \"by\": "
          "[\"district\"],\n"
          " \"labels\": {\"district\": \"x\"}}]}\n",
     "iocd.jsonc:3:12: rules[0].labels.district: \"district\" is one of the "
     "rule's \"by\" labels, which come from the data\n"},
    {"rule unknown key",
     HEAD "\"rules\": [{\"name\": \"a\", \"expr\": \"1\", \"keep_firing\": "
          "\"5m\"}]}\n",
     "iocd.jsonc:2:38: rules[0].keep_firing: unknown key\n"},
    {"rule duplicate",
     HEAD "\"rules\": [{\"name\": \"a\", \"expr\": \"1\"},\n"
          " {\"name\": \"a\", \"expr\": \"2\"}]}\n",
     "iocd.jsonc:3:11: rules[1].name: rule \"a\" is already defined at "
     "iocd.jsonc:2:20\n"},
    {"expr error after escapes",
     HEAD "\"rules\": [{\"name\": \"a\",\n"
          " \"expr\": \"igate.received{district=\\\"Ea H'Leo\\\"} > 15x\"}]}\n",
     "iocd.jsonc:3:53: rules[0].expr: unknown unit 'x' in 15x (use ms, s, m, "
     "h, d or w)\n"},
    {"expr error after unicode escape",
     HEAD "\"rules\": [{\"name\": \"a\",\n"
          " \"expr\": \"m.f{d=\\\"Bu\\u00f4n\\\"} > (1\"}]}\n",
     "iocd.jsonc:3:36: rules[0].expr: expected ')' to close '(' at column 17, "
     "got the end of the expression\n"},
    {"expr error in level",
     HEAD
     "\"rules\": [{\"name\": \"a\", \"levels\": [\n"
     " {\"severity\": \"warning\", \"expr\": \"avg(igate.received)\"}]}]}\n",
     "iocd.jsonc:3:53: rules[0].levels[0].expr: avg needs a range such as "
     "[15m] after igate.received\n"},
    {"expr unknown param hint",
     HEAD
     "\"params\": {\"online_target\": \"30%\"},\n"
     " \"rules\": [{\"name\": \"a\", \"expr\": \"x.y < $onlne_target\"}]}\n",
     "iocd.jsonc:3:41: rules[0].expr: unknown parameter $onlne_target (did you "
     "mean $online_target?)\n"},
    {"expr unknown param",
     HEAD "\"rules\": [{\"name\": \"a\", \"guard\": \"x.y >= $min\",\n"
          " \"expr\": \"x.y > 1\"}]}\n",
     "iocd.jsonc:2:42: rules[0].guard: unknown parameter $min (define it under "
     "\"params\")\n"},
    {"expr unknown calendar",
     HEAD "\"rules\": [{\"name\": \"a\",\n"
          " \"expr\": \"x.y == 0 and during(\\\"lunch\\\")\"}]}\n",
     "iocd.jsonc:3:31: rules[0].expr: unknown calendar \"lunch\" (the "
     "\"calendar\" section is \"office_hours\")\n"},
    {"template unknown filter",
     HEAD
     "\"rules\": [{\"name\": \"a\", \"expr\": \"1\",\n"
     " \"annotations\": {\"summary\": \"Tỷ lệ {{ value | percent }}\"}}]}\n",
     "iocd.jsonc:3:47: rules[0].annotations.summary: unknown filter 'percent' "
     "(pct or int)\n"},
    {"template unclosed",
     HEAD "\"rules\": [{\"name\": \"a\", \"expr\": \"1\",\n"
          " \"annotations\": {\"summary\": \"{{district}}: {{value\"}}]}\n",
     "iocd.jsonc:3:44: rules[0].annotations.summary: '{{' without a closing "
     "'}}'\n"},
    {"rule files missing", HEAD "\"rule_files\": [\"no-such.jsonc\"]}\n",
     "iocd.jsonc:2:16: rule_files[0]: cannot read \"no-such.jsonc\": No such "
     "file or directory\n"},
};

Test(rules_config, reports_each_problem_with_file_line_col_and_path) {
  CHECK_CASES(problems);
}

Test(rules_config, reports_every_problem_of_a_file_in_file_order) {
  struct load l;
  load_text(&l, HEAD
            "\"rules\": [{\"name\": \"a\", \"expr\": \"x.y >\", \"for\": 5},\n"
            " {\"name\": \"b b\", \"expr\": \"$nope\"}],\n"
            "\"calendar\": {\"timezone\": \"Mars/Base\"}}\n");
  cr_assert_eq(l.rc, IOCD_EPARSE);
  cr_assert_str_eq(
      errors_of(&l),
      "iocd.jsonc:2:39: rules[0].expr: expected a number, a series, a "
      "parameter or '(', got the end of the expression\n"
      "iocd.jsonc:2:49: rules[0].for: expected a duration string such as "
      "\"30s\", got 5\n"
      "iocd.jsonc:3:11: rules[1].name: \"b b\" is not a rule name (letters, "
      "digits, \"_\", \"-\" and \".\", from a letter or \"_\")\n"
      "iocd.jsonc:3:27: rules[1].expr: unknown parameter $nope (define it "
      "under \"params\")\n"
      "iocd.jsonc:4:26: calendar.timezone: unknown time zone \"Mars/Base\" "
      "(iocd knows zones without daylight saving time, e.g. "
      "\"Asia/Ho_Chi_Minh\"; give others as an offset such as \"+07:00\")\n");
  load_done(&l);
}

Test(rules_config, defaults_are_the_vietnamese_office_week) {
  struct config *cfg = load_ok(HEAD
                               "\"rules\": [{\"name\": \"r\", "
                               "\"expr\": \"x.y > 1\"}]}\n");
  const struct config_calendar *c = &cfg->calendar;
  cr_assert_str_eq(c->timezone, "Asia/Ho_Chi_Minh");
  cr_assert_eq(c->utc_offset_s, 7 * 3600);
  cr_assert_eq(c->noffice_hours, 2);
  cr_assert_eq(c->office_hours[0].start, 7 * 60 + 30);
  cr_assert_eq(c->office_hours[0].end, 11 * 60 + 30);
  cr_assert_eq(c->office_hours[1].start, 13 * 60 + 30);
  cr_assert_eq(c->office_hours[1].end, 17 * 60);
  cr_assert_eq(c->weekdays, 0x3Eu, "Monday to Friday");
  cr_assert_eq(c->nholidays, 0);
  cr_assert_str_eq(cfg->sources.district_tag, "district");
  cr_assert_str_eq(cfg->sources.system_tag, "system");
  cr_assert_eq(cfg->rules.evaluation_interval_ms, 15000);
  cr_assert_eq(cfg->rules.save_interval_ms, 10000);
  cr_assert_eq(cfg->rules.freshness_ms, 600000);
  cr_assert_eq(cfg->rules.n, 1);
  const struct config_rule *r = &cfg->rules.v[0];
  cr_assert_str_eq(r->name, "r");
  cr_assert_str_eq(r->expr, "x.y > 1");
  cr_assert_eq(r->severity, CONFIG_SEV_WARNING);
  cr_assert_eq(r->missing, CONFIG_MISSING_NODATA);
  cr_assert_eq(r->for_ms, 0);
  cr_assert_eq(r->broker_dependent, -1, "decided by the engine");
  cr_assert(!r->expected && !r->working_time);
  cr_assert_str_eq(r->place.file, "iocd.jsonc");
  cr_assert_eq(r->place.line, 2);
  config_free(cfg);
}

Test(rules_config, reads_every_key_of_a_rule) {
  struct config *cfg = load_ok(
      HEAD
      "\"sources\": {\"districts\": [\"Lắk\", \"Ea Kar\"], "
      "\"systems\": [\"igate\"], \"district_tag\": \"huyen\"},\n"
      "\"params\": {\"t\": {\"default\": \"30%\", \"values\": {\"Lắk\": "
      "0.35}},\n"
      "  \"n\": 20, \"p\": \"12.5%\"},\n"
      "\"calendar\": {\"timezone\": \"-03:30\", \"weekdays\": [\"sat\", "
      "\"sun\"],\n"
      "  \"holidays\": [\"2021-02-10..2021-02-16\", \"2021-04-21\"],\n"
      "  \"workdays\": [\"2021-02-20\"], \"office_hours\": "
      "[\"08:00-24:00\"]},\n"
      "\"rule_engine\": {\"evaluation_interval\": \"5s\", \"freshness\": "
      "\"1h\"},\n"
      "\"rules\": [{\"name\": \"share.low-1\", \"expr\": \"x.y < $t\",\n"
      "  \"clear\": \"x.y >= $t + 2%\", \"guard\": \"x.z >= $n\",\n"
      "  \"by\": [\"huyen\"], \"severity\": \"critical\", \"for\": \"30m\",\n"
      "  \"for_tolerance\": \"5m\", \"keep_firing_for\": \"10m\",\n"
      "  \"missing\": \"keep\", \"working_time\": true, \"freshness\": "
      "\"2d\",\n"
      "  \"annotations\": {\"summary\": \"{{huyen}} {{value|pct}}\"},\n"
      "  \"labels\": {\"team\": \"ioc\"}, \"expected\": true,\n"
      "  \"depends_on_broker\": false},\n"
      " {\"name\": \"lv\", \"levels\": [{\"severity\": \"warning\", "
      "\"expr\": \"x.y > 1\"},\n"
      "  {\"severity\": \"critical\", \"expr\": \"x.y > 2\", \"clear\": "
      "\"x.y < 1.5\"}]}]}\n");
  const struct config_calendar *c = &cfg->calendar;
  cr_assert_eq(c->utc_offset_s, -(3 * 3600 + 1800));
  cr_assert_eq(c->weekdays, 0x41u);
  cr_assert_eq(c->nholidays, 2);
  int32_t tet;
  cr_assert_eq(config__parse_date("2021-02-10", 10, &tet), IOCD_OK);
  cr_assert_eq(c->holidays[0].first, tet);
  cr_assert_eq(c->holidays[0].last, tet + 6);
  cr_assert_eq(c->holidays[1].first, c->holidays[1].last);
  cr_assert_eq(c->workdays[0].first, tet + 10);
  cr_assert_eq(c->office_hours[0].end, 24 * 60);
  cr_assert_eq(cfg->rules.evaluation_interval_ms, 5000);
  cr_assert_eq(cfg->rules.freshness_ms, 3600000);
  cr_assert_eq(cfg->rules.nparams, 3);
  const struct config_param *t = &cfg->rules.params[0];
  cr_assert_str_eq(t->name, "t");
  cr_assert(t->has_default);
  cr_assert_float_eq(t->def, 0.30, 1e-12);
  cr_assert_str_eq(t->by, "huyen", "defaults to sources.district_tag");
  cr_assert_eq(t->nvalues, 1);
  cr_assert_str_eq(t->values[0].group, "Lắk");
  cr_assert_float_eq(t->values[0].value, 0.35, 1e-12);
  cr_assert_float_eq(cfg->rules.params[1].def, 20, 1e-12);
  cr_assert_float_eq(cfg->rules.params[2].def, 0.125, 1e-12);
  const struct config_rule *r = &cfg->rules.v[0];
  cr_assert_str_eq(r->clear, "x.y >= $t + 2%");
  cr_assert_str_eq(r->guard, "x.z >= $n");
  cr_assert_eq(r->nby, 1);
  cr_assert_eq(r->severity, CONFIG_SEV_CRITICAL);
  cr_assert_eq(r->for_ms, 1800000);
  cr_assert_eq(r->for_tolerance_ms, 300000);
  cr_assert_eq(r->keep_firing_for_ms, 600000);
  cr_assert_eq(r->freshness_ms, 2 * 86400000);
  cr_assert_eq(r->missing, CONFIG_MISSING_KEEP);
  cr_assert(r->working_time && r->expected);
  cr_assert_eq(r->broker_dependent, 0);
  cr_assert_str_eq(r->annotations[0].key, "summary");
  cr_assert_str_eq(r->annotations[0].value, "{{huyen}} {{value|pct}}");
  cr_assert_str_eq(r->labels[0].value, "ioc");
  const struct config_rule *lv = &cfg->rules.v[1];
  cr_assert_null(lv->expr);
  cr_assert_eq(lv->nlevels, 2);
  cr_assert_eq(lv->levels[1].severity, CONFIG_SEV_CRITICAL);
  cr_assert_str_eq(lv->levels[1].clear, "x.y < 1.5");
  cr_assert_null(lv->levels[0].clear);
  config_free(cfg);
}

Test(rules_config, takes_expressions_as_written_without_env_substitution) {
  /* ${...} is not substituted in expressions: columns must match the
   * file, and the language has no such syntax anyway (it is an error). */
  setenv("IOCD_TEST_X", "1", 1);
  struct load l;
  load_text(&l, HEAD
            "\"rules\": [{\"name\": \"a\", \"expr\": "
            "\"${IOCD_TEST_X} > 0\"}]}\n");
  cr_assert_eq(l.rc, IOCD_EPARSE);
  cr_assert_str_eq(errors_of(&l),
                   "iocd.jsonc:2:34: rules[0].expr: expected a parameter "
                   "name after '$'\n");
  load_done(&l);
}

/* Rule files, in a temporary directory. */

struct tree {
  char dir[64];
};

static void tree_init(struct tree *t) {
  snprintf(t->dir, sizeof t->dir, "/tmp/iocd-rulescfg-XXXXXX");
  cr_assert_not_null(mkdtemp(t->dir));
}

static void tree_write(const struct tree *t, const char *name,
                       const char *text) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", t->dir, name);
  char *slash = strrchr(path, '/');
  *slash = '\0';
  mkdir(path, 0755);
  *slash = '/';
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "%s", path);
  fputs(text, f);
  fclose(f);
}

static void tree_done(struct tree *t) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
  cr_assert_eq(system(cmd), 0);
}

static int tree_load(const struct tree *t, struct config **cfg,
                     struct buf *errors) {
  char path[256];
  snprintf(path, sizeof path, "%s/iocd.jsonc", t->dir);
  buf_init(errors, 0);
  return config_load(path, cfg, errors);
}

/* errors with the temporary directory written as DIR. */
static char *relative(const struct tree *t, const struct buf *errors) {
  struct buf b;
  buf_init(&b, 0);
  const char *s = errors->data ? errors->data : "";
  size_t n = strlen(t->dir);
  while (*s) {
    if (strncmp(s, t->dir, n) == 0) {
      buf_puts(&b, "DIR");
      s += n;
    } else {
      buf_putc(&b, *s++);
    }
  }
  return b.data ? buf_detach(&b, NULL) : strdup("");
}

Test(rules_config, merges_rule_files_relative_to_the_including_file) {
  struct tree t;
  tree_init(&t);
  tree_write(&t, "iocd.jsonc",
             HEAD
             "\"params\": {\"target\": \"30%\"},\n"
             "\"rules\": [{\"name\": \"main\", \"expr\": \"x.y < "
             "$limit\"}],\n"
             "\"rule_files\": [\"rules/a.jsonc\", \"rules/b.jsonc\"]}\n");
  tree_write(
      &t, "rules/a.jsonc",
      "// rules of a\n{\"params\": {\"limit\": 5},\n"
      " \"rules\": [{\"name\": \"a1\", \"expr\": \"x.y < $target\"}]}\n");
  tree_write(&t, "rules/b.jsonc",
             "{\"rules\": [{\"name\": \"b1\", \"expr\": \"x.y > $limit\"}]}");
  struct config *cfg = NULL;
  struct buf errors;
  int rc = tree_load(&t, &cfg, &errors);
  cr_assert_eq(rc, IOCD_OK, "%s", errors.data ? errors.data : "");
  cr_assert_eq(cfg->rules.n, 3);
  cr_assert_str_eq(cfg->rules.v[0].name, "main");
  cr_assert_str_eq(cfg->rules.v[1].name, "a1");
  cr_assert_str_eq(cfg->rules.v[2].name, "b1");
  cr_assert_eq(cfg->rules.nparams, 2);
  char want[256];
  snprintf(want, sizeof want, "%s/rules/a.jsonc", t.dir);
  cr_assert_str_eq(cfg->rules.v[1].place.file, want);
  cr_assert_eq(cfg->rules.v[1].place.line, 3);
  cr_assert_eq(cfg->rules.nfiles, 2);
  config_free(cfg);
  buf_cleanup(&errors);
  tree_done(&t);
}

/* A rule file's problems are listed where the file is included. */
Test(rules_config, names_both_places_of_a_duplicate_and_the_rule_file_line) {
  struct tree t;
  tree_init(&t);
  tree_write(&t, "iocd.jsonc",
             HEAD
             "\"params\": {\"limit\": 1},\n"
             "\"rules\": [{\"name\": \"silent\", \"expr\": \"x.y > 1\"}],\n"
             "\"rule_files\": [\"r.jsonc\", \"missing.jsonc\", "
             "\"r.jsonc\"]}\n");
  tree_write(&t, "r.jsonc",
             "{\n"
             "  \"params\": {\"limit\": 2},\n"
             "  \"rules\": [\n"
             "    {\"name\": \"silent\", \"expr\": \"age(x) > 10m\"},\n"
             "    {\"name\": \"ok\", \"expr\": \"x.y >\"}\n"
             "  ],\n"
             "  \"rulez\": []\n"
             "}\n");
  struct config *cfg = NULL;
  struct buf errors;
  cr_assert_eq(tree_load(&t, &cfg, &errors), IOCD_EPARSE);
  cr_assert_null(cfg);
  char *got = relative(&t, &errors);
  cr_assert_str_eq(
      got,
      "DIR/r.jsonc:7:3: rulez: unknown key (did you mean \"rules\"?)\n"
      "DIR/r.jsonc:4:14: rules[0].name: rule \"silent\" is already defined at "
      "DIR/iocd.jsonc:3:20\n"
      "DIR/r.jsonc:2:14: params.limit: parameter \"limit\" is already defined "
      "at DIR/iocd.jsonc:2:12\n"
      "DIR/r.jsonc:5:34: rules[1].expr: expected a number, a series, a "
      "parameter or '(', got the end of the expression\n"
      "DIR/iocd.jsonc:4:27: rule_files[1]: cannot read "
      "\"DIR/missing.jsonc\": No such file or directory\n"
      "DIR/iocd.jsonc:4:44: rule_files[2]: \"r.jsonc\" is listed twice "
      "(first at [0])\n");
  free(got);
  buf_cleanup(&errors);
  tree_done(&t);
}

Test(rules_config, reports_a_syntax_error_in_a_rule_file_at_its_place) {
  struct tree t;
  tree_init(&t);
  tree_write(&t, "iocd.jsonc", HEAD "\"rule_files\": [\"r.jsonc\"]}\n");
  tree_write(&t, "r.jsonc",
             "{\n  /* Tết */ \"rules\": [\n    {\"name\": \"a\",, }\n  ]\n}\n");
  struct config *cfg = NULL;
  struct buf errors;
  cr_assert_eq(tree_load(&t, &cfg, &errors), IOCD_EPARSE);
  char *got = relative(&t, &errors);
  cr_assert_str_eq(got, "DIR/r.jsonc:3:18: syntax error near ', }'\n");
  free(got);
  buf_cleanup(&errors);
  tree_write(&t, "r.jsonc", "[1, 2]\n");
  cr_assert_eq(tree_load(&t, &cfg, &errors), IOCD_EPARSE);
  got = relative(&t, &errors);
  cr_assert_str_eq(got,
                   "DIR/r.jsonc:1:1: expected an object with "
                   "\"params\" and \"rules\", got an array\n");
  free(got);
  buf_cleanup(&errors);
  tree_done(&t);
}

/* The example configuration and its default rules. */

Test(rules_config, example_config_carries_the_province_and_default_rules) {
  struct config *cfg = NULL;
  struct buf errors;
  buf_init(&errors, 0);
  int rc = config_load(EXAMPLE_PATH, &cfg, &errors);
  cr_assert_eq(rc, IOCD_OK, "%s", errors.data ? errors.data : "");
  cr_assert_eq(cfg->sources.ndistricts, 15);
  cr_assert_str_eq(cfg->sources.districts[0], "Buôn Ma Thuột");
  cr_assert_str_eq(cfg->sources.districts[14], "M'Đrắk");
  cr_assert_eq(cfg->sources.nsystems, 2);
  cr_assert_eq(cfg->calendar.utc_offset_s, 25200);
  int32_t first, last;
  cr_assert_eq(config__parse_date("2021-02-10", 10, &first), IOCD_OK);
  cr_assert_eq(config__parse_date("2021-02-16", 10, &last), IOCD_OK);
  bool tet = false;
  for (size_t i = 0; i < cfg->calendar.nholidays; i++) {
    tet = tet || (cfg->calendar.holidays[i].first == first &&
                  cfg->calendar.holidays[i].last == last);
  }
  cr_assert(tet, "Tết 2021 is a holiday");
  static const char *const names[] = {
      "online_share_low",   "services_l3_low",      "services_l4_low",
      "resolved_ratio_low", "overdue_backlog_high", "idesk_stalled",
      "feed_silent"};
  cr_assert_eq(cfg->rules.n, sizeof names / sizeof names[0]);
  for (size_t i = 0; i < cfg->rules.n; i++) {
    cr_assert_str_eq(cfg->rules.v[i].name, names[i]);
    cr_assert(strstr(cfg->rules.v[i].place.file, "rules/daklak.jsonc"));
  }
  const struct config_param *t = &cfg->rules.params[0];
  cr_assert_str_eq(t->name, "online_target");
  cr_assert_float_eq(t->def, 0.30, 1e-12);
  cr_assert_str_eq(t->values[0].group, "Buôn Ma Thuột");
  cr_assert_float_eq(t->values[0].value, 0.35, 1e-12);
  config_free(cfg);
  buf_cleanup(&errors);
}

/* The value syntaxes. */

Test(rules_config, parses_dates_and_rejects_impossible_ones) {
  static const struct {
    const char *s;
    int rc;
    int32_t days;
  } cases[] = {
      {"1970-01-01", IOCD_OK, 0},     {"2021-02-10", IOCD_OK, 18668},
      {"2020-02-29", IOCD_OK, 18321}, {"2000-02-29", IOCD_OK, 11016},
      {"2021-02-29", IOCD_EPARSE, 0}, {"1900-02-29", IOCD_EPARSE, 0},
      {"2021-13-01", IOCD_EPARSE, 0}, {"2021-04-31", IOCD_EPARSE, 0},
      {"2021-4-01", IOCD_EPARSE, 0},  {"1969-12-31", IOCD_EPARSE, 0},
      {"2021/02/10", IOCD_EPARSE, 0}, {"2021-02-1x", IOCD_EPARSE, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int32_t d = -1;
    int rc = config__parse_date(cases[i].s, strlen(cases[i].s), &d);
    cr_expect_eq(rc, cases[i].rc, "%s: rc %d", cases[i].s, rc);
    if (rc == IOCD_OK) {
      cr_expect_eq(d, cases[i].days, "%s: %d", cases[i].s, d);
      char back[16];
      config__format_date(d, back, sizeof back);
      cr_expect_str_eq(back, cases[i].s);
    }
  }
}

Test(rules_config, resolves_fixed_offset_zones_and_refuses_others) {
  static const struct {
    const char *tz;
    int rc;
    int32_t off;
  } cases[] = {
      {"Asia/Ho_Chi_Minh", IOCD_OK, 25200},
      {"Asia/Saigon", IOCD_OK, 25200},
      {"Asia/Bangkok", IOCD_OK, 25200},
      {"Asia/Kolkata", IOCD_OK, 19800},
      {"UTC", IOCD_OK, 0},
      {"+07:00", IOCD_OK, 25200},
      {"-03:30", IOCD_OK, -12600},
      {"+14:00", IOCD_OK, 50400},
      {"+14:01", IOCD_ENOTFOUND, 0},
      {"+7", IOCD_ENOTFOUND, 0},
      {"Europe/Paris", IOCD_ENOTFOUND, 0},
      {"asia/ho_chi_minh", IOCD_ENOTFOUND, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int32_t off = -1;
    int rc = config__timezone_offset(cases[i].tz, &off);
    cr_expect_eq(rc, cases[i].rc, "%s: rc %d", cases[i].tz, rc);
    if (rc == IOCD_OK) {
      cr_expect_eq(off, cases[i].off, "%s: %d", cases[i].tz, off);
    }
  }
}

/* `iocd rules test`, as a user runs it. */

static int run_iocd(const char *args, struct buf *out) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", IOCD_BIN_PATH, args);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, p)) > 0) {
    buf_append(out, chunk, n);
  }
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(rules_test_tool, passes_the_default_rules_tests, .timeout = 60) {
  struct buf out;
  buf_init(&out, 1 << 20);
  int rc = run_iocd(
      "rules test " IOCD_SOURCE_DIR "/tests/rules/daklak.test.jsonc", &out);
  cr_assert_eq(rc, 0, "%s", out.data ? out.data : "");
  cr_assert(strstr(out.data, "PASS ") != NULL, "%s", out.data);
  cr_assert(strstr(out.data, "daklak.test.jsonc: 10 tests") != NULL, "%s",
            out.data);
  buf_cleanup(&out);
}

Test(rules_test_tool, a_failing_test_exits_1_with_a_diff_per_alert,
     .timeout = 60) {
  struct buf out;
  buf_init(&out, 1 << 20);
  int rc = run_iocd(
      "rules test " IOCD_SOURCE_DIR "/tests/rules/failing.test.jsonc", &out);
  cr_assert_eq(rc, 1, "%s", out.data ? out.data : "");
  const char *want =
      "failing.test.jsonc: tests[0] \"fires too early (wrong on purpose)\": "
      "at 20m (2021-03-01T08:20:00+07:00), rule online_share_low\n"
      "  (- expected, + got)\n"
      "  - online_share_low{district=\"Ea H'Leo\"} firing\n"
      "  -     summary: \"Tỷ lệ hồ sơ trực tuyến của Ea H'Leo là 25%, dưới "
      "mục tiêu 30%\"\n"
      "  + online_share_low{district=\"Ea H'Leo\"} pending warning "
      "value=0.2\n"
      "  +     summary: \"Tỷ lệ hồ sơ trực tuyến của Ea H'Leo là 20%, dưới "
      "mục tiêu 30%\"\n";
  cr_assert(strstr(out.data, want) != NULL, "got:\n%s", out.data);
  /* At 40m it fires, as expected there: only the first time is shown. */
  cr_assert(strstr(out.data, "at 40m") == NULL, "%s", out.data);
  cr_assert(strstr(out.data, "failing.test.jsonc: 1 of 1 tests failed") != NULL,
            "%s", out.data);
  buf_cleanup(&out);
}

Test(rules_test_tool, says_what_is_wrong_with_a_test_file, .timeout = 60) {
  struct tree t;
  tree_init(&t);
  static const struct {
    const char *text;
    const char *want;
  } cases[] = {
      {"{\"config\": \"nope.jsonc\", \"tests\": [{}]}",
       "config: the configuration is not valid:\n"},
      {"{\"rules\": [], \"tests\": [{\"start\": \"2021-03-01T08:00:00Z\","
       " \"input\": {\"x.y\": \"1+2\"}, \"expect\": []}]}",
       "tests[0].input[\"x.y\"]: \"1+2\" is not a value (use e.g. 5, "
       "0+10x60, 7x3, _ or _x5)"},
      {"{\"rules\": [], \"tests\": [{\"start\": \"2021-03-01T08:00:00Z\","
       " \"input\": {\"x{a=\\\"b\\\"}\": \"1\"}, \"expect\": []}]}",
       "tests[0].input[\"x{a=\"b\"}\"]: expected measurement.field{labels}"},
      {"{\"rules\": [], \"tests\": [{\"start\": \"yesterday\", "
       "\"expect\": []}]}",
       "tests[0].start: expected a time such as "
       "\"2021-03-01T08:00:00+07:00\""},
      {"{\"rules\": [], \"tests\": [{\"start\": \"2021-03-01T08:00:00Z\","
       " \"expect\": [{\"at\": \"5m\", \"alerts\": [{\"state\": \"on\"}]}]}]}",
       "tests[0].expect[0].alerts[0]: rule: required (or give \"rule\" for "
       "the time)"},
      {"{\"rules\": [{\"name\": \"a\", \"expr\": \"x.y >\"}], "
       "\"tests\": [{}]}",
       "the rules are not valid:\n"},
      {"{\"tests\": [], // nothing\n \"tset\": 1}", "tset: unknown key"},
      {"{\"tests\": [}", ":1:12: syntax error near '}'"},
      {"{\"rules\": [], \"tests\": [{\"start\": \"2262-04-11T23:00:00Z\","
       " \"input\": {\"x.y\": \"0+10x60\"}, \"expect\": []}]}",
       "tests[0].input[\"x.y\"]: step 48 is past the last time iocd can "
       "represent (2262-04-11T23:47:16Z)"},
      {"{\"rules\": [], \"tests\": [{\"start\": \"2021-03-01T08:00:00Z\","
       " \"interval\": \"10000w\", \"input\": {\"x.y\": \"0+10x60\"}, "
       "\"expect\": []}]}",
       "tests[0].input[\"x.y\"]: step 2 is past the last time"},
      {"{\"rules\": [], \"tests\": [{\"start\": \"2262-04-11T23:00:00Z\","
       " \"expect\": [{\"at\": \"1h\", \"alerts\": []}]}]}",
       "tests[0].expect[0].at: past the last time iocd can represent"},
      {"{\"rules\": [], \"evaluation_interval\": \"1ms\", \"tests\": "
       "[{\"start\": \"2021-03-01T08:00:00Z\", \"expect\": [{\"at\": "
       "\"1w\", \"alerts\": []}]}]}",
       "tests[0].expect[0].at: 1w is more than 1000000 evaluations after the "
       "start at an evaluation_interval of 1ms"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tree_write(&t, "t.test.jsonc", cases[i].text);
    char args[256];
    snprintf(args, sizeof args, "rules test '%s/t.test.jsonc'", t.dir);
    struct buf out;
    buf_init(&out, 1 << 20);
    int rc = run_iocd(args, &out);
    cr_expect_eq(rc, 1, "case %zu: %s", i, out.data ? out.data : "");
    cr_expect(out.data && strstr(out.data, cases[i].want) != NULL,
              "case %zu: want %s\ngot:\n%s", i, cases[i].want,
              out.data ? out.data : "");
    cr_expect(out.data && strstr(out.data, "ERROR ") != NULL, "case %zu", i);
    buf_cleanup(&out);
  }
  tree_done(&t);
}

/* "Buôn Ma Thuột" with combining marks (NFD), as some keyboards and file
 * systems write it, and precomposed (NFC), as districts publish it. */
#define BMT_NFD "Buo\xCC\x82n Ma Thuo\xCC\xA3\xCC\x82t"
#define BMT_NFC "Bu\xC3\xB4n Ma Thu\xE1\xBB\x99t"

Test(rules_config, names_written_decomposed_are_taken_in_nfc) {
  struct config *cfg = load_ok(
      HEAD "\"sources\": {\"districts\": [\"" BMT_NFD "\", \"Lắk\"]},\n"
      " \"params\": {\"t\": {\"default\": 1, \"values\": {\"" BMT_NFC
      "\": 2}}},\n"
      " \"rules\": [{\"name\": \"x\", "
      "\"expr\": \"igate.received{district=\\\"" BMT_NFD
      "\\\"} > $t\"}]}\n");
  cr_assert_eq(cfg->sources.ndistricts, 2);
  cr_expect_str_eq(cfg->sources.districts[0], BMT_NFC);
  cr_assert_eq(cfg->rules.nparams, 1);
  cr_assert_eq(cfg->rules.params[0].nvalues, 1);
  cr_expect_str_eq(cfg->rules.params[0].values[0].group, BMT_NFC);
  cr_expect_not_null(strstr(cfg->rules.v[0].expr, BMT_NFC),
                     "the expression kept the decomposed name: %s",
                     cfg->rules.v[0].expr);
  config_free(cfg);
}

Test(rules_config, one_rule_file_by_two_paths_is_listed_twice_not_redefined) {
  struct tree t;
  tree_init(&t);
  tree_write(&t, "iocd.jsonc",
             HEAD "\"rule_files\": [\"rules/a.jsonc\", \"./rules/a.jsonc\",\n"
                  "  \"rules/empty.jsonc\"]}\n");
  tree_write(&t, "rules/a.jsonc",
             "{\"rules\": [{\"name\": \"a\", \"expr\": \"t.v > 1\"},\n"
             "           {\"name\": \"b\", \"expr\": \"t.v > 2\"}]}\n");
  tree_write(&t, "rules/empty.jsonc", "");
  struct config *cfg = NULL;
  struct buf errors;
  cr_expect_eq(tree_load(&t, &cfg, &errors), IOCD_EPARSE);
  char *rel = relative(&t, &errors);
  cr_expect_str_eq(rel,
                   "DIR/iocd.jsonc:2:33: rule_files[1]: \"./rules/a.jsonc\" "
                   "is listed twice (it is the file \"DIR/rules/a.jsonc\")\n"
                   "DIR/rules/empty.jsonc: the file is empty (expected a "
                   "JSON object with \"params\" and \"rules\")\n");
  free(rel);
  buf_cleanup(&errors);
  tree_done(&t);
}

Test(rules_test_tool, an_empty_config_name_is_named_as_such, .timeout = 60) {
  struct buf out;
  buf_init(&out, 1 << 16);
  cr_expect_eq(run_iocd("check -c ''", &out), 1);
  cr_expect_str_eq(out.data ? out.data : "",
                   "iocd: -c was given an empty file name\n");
  buf_cleanup(&out);
}
