/*
 * Tests of the configuration loader: every kind of problem with its exact
 * FILE:LINE:COL: PATH: message, defaults, environment substitution, the
 * value syntaxes, the example configuration, and robustness on truncated
 * and corrupted input.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdint.h>
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

Test(config_errors, names_unknown_keys_and_suggests_close_ones) {
  static const struct err_case cases[] = {
      {"transposed letters", HEAD " \"mqtt\": {\n   \"hots\": \"x\"\n }\n}\n",
       "iocd.jsonc:3:4: mqtt.hots: unknown key (did you mean \"host\"?)\n"},
      {"other case", HEAD " \"Data_dir\": \"x\"\n}\n",
       "iocd.jsonc:2:2: Data_dir: unknown key (did you mean \"data_dir\"?)\n"},
      {"nothing close", HEAD " \"colour\": 1\n}\n",
       "iocd.jsonc:2:2: colour: unknown key\n"},
      {"in a subscription",
       "{\"file\": {},\n \"subscriptions\": [{\"topic\": \"t\", \"qso\": "
       "1}]}\n",
       "iocd.jsonc:2:35: subscriptions[0].qso: unknown key "
       "(did you mean \"qos\"?)\n"},
      {"odd key is quoted in the path", HEAD " \"a.b\": 1\n}\n",
       "iocd.jsonc:2:2: [\"a.b\"]: unknown key\n"},
  };
  CHECK_CASES(cases);
}

Test(config_errors, rejects_values_of_the_wrong_type) {
  static const struct err_case cases[] = {
      {"string for integer", HEAD " \"mqtt\": {\"port\": \"1883\"}\n}\n",
       "iocd.jsonc:2:19: mqtt.port: expected an integer from 1 to 65535, "
       "got \"1883\"\n"},
      {"number for string", HEAD " \"mqtt\": {\"host\": 5}\n}\n",
       "iocd.jsonc:2:19: mqtt.host: expected a string, got 5\n"},
      {"string for boolean", HEAD " \"mqtt\": {\"clean_start\": \"yes\"}\n}\n",
       "iocd.jsonc:2:26: mqtt.clean_start: expected true or false, "
       "got \"yes\"\n"},
      {"array for object", HEAD " \"mqtt\": []\n}\n",
       "iocd.jsonc:2:10: mqtt: expected an object, got an array\n"},
      {"fraction for integer", HEAD " \"limits\": {\"max_fields\": 1.5}\n}\n",
       "iocd.jsonc:2:27: limits.max_fields: expected an integer from 1 to "
       "100000, got 1.5\n"},
      {"object for subscriptions",
       "{\"file\": {},\n \"subscriptions\": {\"topic\": \"t\"}}\n",
       "iocd.jsonc:2:19: subscriptions: expected an array of subscriptions, "
       "got an object\n"},
      {"string for a subscription",
       "{\"file\": {},\n \"subscriptions\": [{\"topic\": \"t\"}, \"u\"]}\n",
       "iocd.jsonc:2:36: subscriptions[1]: expected an object, got \"u\"\n"},
      {"string for tag_keys",
       "{\"file\": {},\n \"subscriptions\": [{\"topic\": \"t\",\n"
       "   \"tag_keys\": \"a\"}]}\n",
       "iocd.jsonc:3:16: subscriptions[0].tag_keys: expected an array of "
       "strings, got \"a\"\n"},
      {"number in tag_keys",
       "{\"file\": {},\n \"subscriptions\": [{\"topic\": \"t\",\n"
       "   \"tag_keys\": [\"a\", 3, \"\"]}]}\n",
       "iocd.jsonc:3:22: subscriptions[0].tag_keys[1]: expected a string, "
       "got 3\n"
       "iocd.jsonc:3:25: subscriptions[0].tag_keys[2]: must not be empty\n"},
      {"bad tags",
       "{\"file\": {},\n \"subscriptions\": [{\"topic\": \"t\",\n"
       "   \"tags\": {\"a\": \"\", \"b\": 1, \"\": \"x\"}}]}\n",
       "iocd.jsonc:3:18: subscriptions[0].tags.a: must not be empty\n"
       "iocd.jsonc:3:27: subscriptions[0].tags.b: expected a string, got 1\n"
       "iocd.jsonc:3:30: subscriptions[0].tags: empty name\n"},
      {"empty required string", HEAD " \"mqtt\": {\"host\": \"\"}\n}\n",
       "iocd.jsonc:2:19: mqtt.host: must not be empty\n"},
      {"top level array", "[{\"file\": {}}]\n",
       "iocd.jsonc:1:1: expected an object at the top level, got an array\n"},
      {"empty file", "  // nothing but a comment\n",
       "iocd.jsonc: the file is empty (expected a JSON object)\n"},
  };
  CHECK_CASES(cases);
}

Test(config_errors, rejects_numbers_out_of_range) {
  static const struct err_case cases[] = {
      {"port", HEAD " \"mqtt\": {\"port\": 70000}\n}\n",
       "iocd.jsonc:2:19: mqtt.port: expected an integer from 1 to 65535, "
       "got 70000\n"},
      {"qos of the third subscription",
       "{\"file\": {},\n \"subscriptions\": [\n  {\"topic\": \"a\"},\n"
       "  {\"topic\": \"b\"},\n  {\"topic\": \"c\",\n   \"qos\": 3}]}\n",
       "iocd.jsonc:6:11: subscriptions[2].qos: expected 0, 1 or 2, got 3\n"},
      {"api", HEAD " \"influxdb\": {\"database\": \"ioc\", \"api\": 3}\n}\n",
       "iocd.jsonc:2:41: influxdb.api: expected 1 or 2, got 3\n"},
      {"api without what either version needs",
       HEAD " \"influxdb\": {\"api\": \"2\"}\n}\n",
       "iocd.jsonc:2:22: influxdb.api: expected 1 or 2, got \"2\"\n"},
      {"huge number shown as written",
       HEAD " \"limits\": {\"log_burst\": 123456789012345678901}\n}\n",
       "iocd.jsonc:2:26: limits.log_burst: expected an integer from 1 to "
       "100000, got 123456789012345678901\n"},
  };
  CHECK_CASES(cases);
}

Test(config_errors, reports_missing_keys_at_the_enclosing_object) {
  static const struct err_case cases[] = {
      {"topic", "{\"file\": {},\n \"subscriptions\": [{\"qos\": 1}]}\n",
       "iocd.jsonc:2:20: subscriptions[0].topic: required key is missing\n"},
      {"database for api 1", HEAD " \"influxdb\": {\n   \"api\": 1}\n}\n",
       "iocd.jsonc:2:14: influxdb.database: required when influxdb.api is "
       "1\n"},
      {"org, bucket, token for api 2",
       HEAD " \"influxdb\": {\"api\": 2,\n   \"org\": \"ioc\"}\n}\n",
       "iocd.jsonc:2:14: influxdb.bucket: required when influxdb.api is 2\n"
       "iocd.jsonc:2:14: influxdb.token: required when influxdb.api is 2\n"},
      {"key_file with cert_file",
       HEAD " \"mqtt\": {\"tls\": {\"cert_file\": \"c.pem\"}}\n}\n",
       "iocd.jsonc:2:18: mqtt.tls.key_file: required when "
       "mqtt.tls.cert_file is set\n"},
      {"cert_file with key_file",
       HEAD " \"mqtt\": {\"tls\": {\"key_file\": \"k.pem\"}}\n}\n",
       "iocd.jsonc:2:18: mqtt.tls.cert_file: required when "
       "mqtt.tls.key_file is set\n"},
  };
  CHECK_CASES(cases);
}

Test(config_errors, rejects_bad_durations) {
  static const struct err_case cases[] = {
      {"unknown unit",
       HEAD
       " \"influxdb\": {\"database\": \"ioc\",\n   \"timeout\": \"15x\"}\n}\n",
       "iocd.jsonc:3:15: influxdb.timeout: \"15x\" is not a duration (use "
       "e.g. \"500ms\", \"10s\", \"5m\")\n"},
      {"no unit", HEAD " \"stats_interval\": \"30\"\n}\n",
       "iocd.jsonc:2:20: stats_interval: \"30\" is not a duration (use e.g. "
       "\"500ms\", \"10s\", \"5m\")\n"},
      {"fraction", HEAD " \"stats_interval\": \"1.5s\"\n}\n",
       "iocd.jsonc:2:20: stats_interval: \"1.5s\" is not a duration (use "
       "e.g. \"500ms\", \"10s\", \"5m\")\n"},
      {"a number", HEAD " \"stats_interval\": 30\n}\n",
       "iocd.jsonc:2:20: stats_interval: expected a duration string such as "
       "\"30s\", got 30\n"},
      {"above the bound", HEAD " \"mqtt\": {\"keepalive\": \"2h\"}\n}\n",
       "iocd.jsonc:2:24: mqtt.keepalive: expected a duration from 5s to 1h, "
       "got \"2h\"\n"},
      {"overflow",
       HEAD " \"mqtt\": {\"keepalive\": \"99999999999999999999s\"}"
            "\n}\n",
       "iocd.jsonc:2:24: mqtt.keepalive: expected a duration from 5s to 1h, "
       "got \"99999999999999999999s\"\n"},
      {"not whole seconds", HEAD " \"stats_interval\": \"1500ms\"\n}\n",
       "iocd.jsonc:2:20: stats_interval: \"1500ms\" is not a whole number of "
       "seconds\n"},
  };
  CHECK_CASES(cases);
}

Test(config_errors, rejects_a_bad_limits_silent_after_where_it_is) {
  static const struct err_case cases[] = {
      {"no unit", HEAD " \"limits\": {\"silent_after\": \"10\"}\n}\n",
       "iocd.jsonc:2:29: limits.silent_after: \"10\" is not a duration (use "
       "e.g. \"500ms\", \"10s\", \"5m\")\n"},
      {"zero", HEAD " \"limits\": {\"silent_after\": \"0s\"}\n}\n",
       "iocd.jsonc:2:29: limits.silent_after: expected a duration from 1s to "
       "366d, got \"0s\"\n"},
      {"a number", HEAD " \"limits\": {\"silent_after\": 600}\n}\n",
       "iocd.jsonc:2:29: limits.silent_after: expected a duration string "
       "such as \"30s\", got 600\n"},
  };
  CHECK_CASES(cases);
  struct config *cfg =
      load_ok(HEAD " \"limits\": {\"silent_after\": \"90s\"}\n}\n");
  cr_expect_eq(cfg->limits.silent_after_s, 90);
  config_free(cfg);
}

Test(config_errors, rejects_bad_sizes) {
  static const struct err_case cases[] = {
      {"SI unit", HEAD " \"limits\": {\"max_payload\": \"64KB\"}\n}\n",
       "iocd.jsonc:2:28: limits.max_payload: \"64KB\" is not a size (use a "
       "number of bytes or e.g. \"64KiB\", \"1MiB\", \"2GiB\")\n"},
      {"above the bound", HEAD " \"limits\": {\"max_payload\": \"1GiB\"}\n}\n",
       "iocd.jsonc:2:28: limits.max_payload: expected a size from 16B to "
       "256MiB, got \"1GiB\"\n"},
      {"below the bound", HEAD " \"limits\": {\"max_payload\": 8}\n}\n",
       "iocd.jsonc:2:28: limits.max_payload: expected a size from 16B to "
       "256MiB, got 8\n"},
      {"negative", HEAD " \"limits\": {\"max_payload\": -1}\n}\n",
       "iocd.jsonc:2:28: limits.max_payload: -1 is not a size (use a number "
       "of bytes or e.g. \"64KiB\", \"1MiB\", \"2GiB\")\n"},
      {"boolean", HEAD " \"limits\": {\"max_payload\": true}\n}\n",
       "iocd.jsonc:2:28: limits.max_payload: expected a size (a number of "
       "bytes or e.g. \"64KiB\"), got true\n"},
  };
  CHECK_CASES(cases);
}

Test(config_errors, rejects_names_outside_an_enum) {
  static const struct err_case cases[] = {
      {"log level", HEAD " \"log\": {\"level\": \"verbose\"}\n}\n",
       "iocd.jsonc:2:19: log.level: expected \"error\", \"warn\", \"info\" or "
       "\"debug\", got \"verbose\"\n"},
      {"format",
       "{\"file\": {},\n \"subscriptions\": [{\"topic\": \"t\", "
       "\"format\": \"xml\"}]}\n",
       "iocd.jsonc:2:45: subscriptions[0].format: expected \"json\", "
       "\"value\", \"line\", \"senml\" or \"auto\", got \"xml\"\n"},
      {"fallback cannot be auto",
       "{\"file\": {},\n \"subscriptions\": [{\"topic\": \"t\", \"format\": "
       "\"auto\",\n   \"fallback_format\": \"auto\"}]}\n",
       "iocd.jsonc:3:23: subscriptions[0].fallback_format: expected "
       "\"json\", \"value\", \"line\" or \"senml\", got \"auto\"\n"},
      {"protocol as a number", HEAD " \"mqtt\": {\"protocol\": 5}\n}\n",
       "iocd.jsonc:2:23: mqtt.protocol: expected \"5\" or \"3.1.1\", got 5\n"},
      {"field type",
       "{\"file\": {},\n \"subscriptions\": [{\"topic\": \"t\",\n"
       "   \"types\": {\"n\": \"int\"}}]}\n",
       "iocd.jsonc:3:19: subscriptions[0].types.n: expected \"float\", "
       "\"integer\", \"boolean\" or \"string\", got \"int\"\n"},
  };
  CHECK_CASES(cases);
}

Test(config_errors, rejects_duplicate_keys) {
  static const struct err_case cases[] = {
      {"in an object",
       HEAD " \"mqtt\": {\"host\": \"a\",\n          \"host\": \"b\"}\n}\n",
       "iocd.jsonc:3:11: mqtt.host: duplicate key (first set at line 2)\n"},
      {"at the top", HEAD " \"data_dir\": \"a\",\n \"data_dir\": \"b\"\n}\n",
       "iocd.jsonc:3:2: data_dir: duplicate key (first set at line 2)\n"},
      {"in tags",
       "{\"file\": {},\n \"subscriptions\": [{\"topic\": \"t\",\n"
       "   \"tags\": {\"a\": \"1\", \"a\": \"2\"}}]}\n",
       "iocd.jsonc:3:23: subscriptions[0].tags.a: duplicate key (first set "
       "at line 3)\n"},
  };
  CHECK_CASES(cases);
}

Test(config_errors, reports_syntax_errors_near_the_fault) {
  static const struct err_case cases[] = {
      {"trailing comma", "{\n  \"a\": 1,\n}\n",
       "iocd.jsonc:2:9: a comma after the last member (JSON allows none "
       "before '}')\n"},
      {"trailing comma in a list", "{\"a\": [1, 2, ]}\n",
       "iocd.jsonc:1:12: a comma after the last item (JSON allows none "
       "before ']')\n"},
      {"missing comma between members", "{\"file\": {}\n \"x\": 1}\n",
       "iocd.jsonc:2:2: missing comma before '\"x\": 1}'\n"},
      {"missing comma between items", "{\"a\": [{\"t\": 1} {\"t\": 2}]}\n",
       "iocd.jsonc:1:17: missing comma before '{\"t\": 2}]}'\n"},
      {"double comma", "{\n  \"a\": 1,\n  \"b\": [1, 2,, 3]\n}\n",
       "iocd.jsonc:3:14: syntax error near ', 3]'\n"},
      {"bad literal", "{\"file\": {},\n  \"x\": tru }\n",
       "iocd.jsonc:2:8: syntax error near 'tru }'\n"},
      {"comment blanked, position kept",
       "{ // a comment with \"quotes\" and Đắk Lắk\n  \"a\": /* x */ ]\n}\n",
       "iocd.jsonc:2:16: syntax error near ']'\n"},
      {"unterminated comment", "{\n  \"a\": 1 /* never closed\n}\n",
       "iocd.jsonc:2:10: unterminated /* comment\n"},
  };
  CHECK_CASES(cases);
}

#define H                                                                    \
  "save the file as UTF-8 (this is how a file in a legacy encoding such as " \
  "Windows-1258, TCVN3 or VNI looks)"
Test(config_errors, refuses_a_file_that_is_not_utf8_and_says_how_to_save_it) {
  static const struct err_case cases[] = {
      {"value", HEAD " \"data_dir\": \"a\xff\"\n}\n",
       "iocd.jsonc:2:16: byte 0xFF is not UTF-8: " H "\n"},
      {"overlong form", HEAD " \"data_dir\": \"\xc0\xaf\"\n}\n",
       "iocd.jsonc:2:15: byte 0xC0 is not UTF-8: " H "\n"},
      {"key", HEAD " \"mqtt\": {\"d\xc3\": 1}\n}\n",
       "iocd.jsonc:2:13: byte 0xC3 is not UTF-8: " H "\n"},
      /* "Đắk Lắk" as Windows-1258 writes it: Đ, ă and a combining acute. */
      {"Windows-1258",
       HEAD
       " \"sources\": {\"districts\": [\"\xd0\xe3\xeck L\xe3\xeck\"]}\n}\n",
       "iocd.jsonc:2:29: byte 0xD0 is not UTF-8: " H "\n"},
      {"outside a string", HEAD " \xe9 \"data_dir\": \"a\"\n}\n",
       "iocd.jsonc:2:2: byte 0xE9 is not UTF-8: " H "\n"},
  };
  CHECK_CASES(cases);
}

Test(config_errors, checks_settings_that_depend_on_each_other) {
  static const struct err_case cases[] = {
      {"reconnect_min above reconnect_max",
       HEAD " \"mqtt\": {\"reconnect_min\": \"1m\",\n"
            "          \"reconnect_max\": \"30s\"}\n}\n",
       "iocd.jsonc:2:28: mqtt.reconnect_min: 1m is more than "
       "mqtt.reconnect_max (30s)\n"},
      {"default reconnect_min above reconnect_max",
       HEAD " \"mqtt\": {\"reconnect_max\": \"200ms\"}\n}\n",
       "iocd.jsonc:2:28: mqtt.reconnect_min: 500ms is more than "
       "mqtt.reconnect_max (200ms)\n"},
      {"retry_min above retry_max",
       HEAD " \"influxdb\": {\"database\": \"d\", \"retry_min\": \"2m\", "
            "\"retry_max\": \"1m\"}\n}\n",
       "iocd.jsonc:2:45: influxdb.retry_min: 2m is more than "
       "influxdb.retry_max (1m)\n"},
      {"batch larger than the buffer",
       HEAD " \"influxdb\": {\"database\": \"d\", \"batch_bytes\": \"2MiB\", "
            "\"buffer\": \"1MiB\"}\n}\n",
       "iocd.jsonc:2:65: influxdb.buffer: 1MiB is less than "
       "influxdb.batch_bytes (2MiB)\n"},
      {"url scheme",
       HEAD " \"influxdb\": {\"database\": \"d\", \"url\": \"127.0.0.1:8086\"}"
            "\n}\n",
       "iocd.jsonc:2:39: influxdb.url: expected an http:// or https:// URL, "
       "got \"127.0.0.1:8086\"\n"},
      {"api listen", HEAD " \"api\": {\"listen\": \"8080\"}\n}\n",
       "iocd.jsonc:2:20: api.listen: expected \"HOST:PORT\" with a port from "
       "1 to 65535, got \"8080\"\n"},
      {"no output",
       "{\"subscriptions\": [{\"topic\": \"t\"}],\n"
       " \"file\": {\"enabled\": false}}\n",
       "iocd.jsonc:1:1: no output is enabled (add an \"influxdb\" section or "
       "enable \"file\")\n"},
      {"no subscriptions", "{\"file\": {}}\n",
       "iocd.jsonc:1:1: subscriptions: at least one subscription is "
       "required\n"},
      {"empty subscriptions", "{\"file\": {},\n \"subscriptions\": []}\n",
       "iocd.jsonc:2:19: subscriptions: at least one subscription is "
       "required\n"},
      {"same name twice",
       "{\"file\": {},\n \"subscriptions\": [{\"name\": \"a\", \"topic\": "
       "\"t\"},\n  {\"name\": \"a\", \"topic\": \"u\"}]}\n",
       "iocd.jsonc:3:12: subscriptions[1].name: \"a\" is already the name of "
       "subscriptions[0]\n"},
      {"same topic, no names",
       "{\"file\": {},\n \"subscriptions\": [{\"topic\": \"t\"},\n"
       "  {\"topic\": \"t\"}]}\n",
       "iocd.jsonc:3:13: subscriptions[1].topic: \"t\" is already the name of "
       "subscriptions[0] (give this one a unique \"name\")\n"},
  };
  CHECK_CASES(cases);
}

Test(config_errors, reports_several_problems_together_in_file_order) {
  static const struct err_case cases[] = {
      {"five problems",
       "{\n  \"mqtt\": {\"port\": 0, \"hots\": \"x\"},\n"
       "  \"subscriptions\": [{\"topic\": \"t\", \"qos\": 9}],\n"
       "  \"influxdb\": {\"timeout\": \"15x\"}\n}\n",
       "iocd.jsonc:2:20: mqtt.port: expected an integer from 1 to 65535, "
       "got 0\n"
       "iocd.jsonc:2:23: mqtt.hots: unknown key (did you mean \"host\"?)\n"
       "iocd.jsonc:3:43: subscriptions[0].qos: expected 0, 1 or 2, got 9\n"
       "iocd.jsonc:4:15: influxdb.database: required when influxdb.api is "
       "1\n"
       "iocd.jsonc:4:27: influxdb.timeout: \"15x\" is not a duration (use "
       "e.g. \"500ms\", \"10s\", \"5m\")\n"},
  };
  CHECK_CASES(cases);
}

Test(config_errors, caps_the_list_and_counts_the_rest) {
  struct buf text;
  buf_init(&text, 0);
  cr_assert_eq(buf_puts(&text, HEAD), IOCD_OK);
  for (int i = 0; i < 150; i++) {
    cr_assert_eq(buf_printf(&text, " \"k%d\": 1,\n", i), IOCD_OK);
  }
  cr_assert_eq(buf_puts(&text, " \"k\": 1}\n"), IOCD_OK);
  struct load l;
  load_text(&l, text.data);
  cr_assert_eq(l.rc, IOCD_EPARSE);
  const char *e = errors_of(&l);
  size_t lines = 0;
  for (const char *p = e; *p; p++) {
    lines += *p == '\n';
  }
  cr_expect_eq(lines, 101);
  cr_expect(strstr(e, "iocd.jsonc:2:2: k0: unknown key\n") == e);
  cr_expect_not_null(strstr(e, "\niocd.jsonc: 51 more problems not shown\n"));
  load_done(&l);
  buf_cleanup(&text);
}

Test(config_errors, rejects_a_nul_byte) {
  static const char text[] = "{\"a\":\0 1}";
  struct buf e;
  buf_init(&e, 0);
  struct config *cfg = NULL;
  int rc = config_load_text("iocd.jsonc", text, sizeof text - 1, &cfg, &e);
  cr_assert_eq(rc, IOCD_EPARSE);
  cr_assert_null(cfg);
  cr_assert_str_eq(e.data, "iocd.jsonc:1:6: NUL byte in the file\n");
  buf_cleanup(&e);
}

Test(config_env, substitutes_set_variables_in_any_string) {
  setenv("IOCD_TEST_PASSWORD", "s3cr3t Đắk", 1);
  setenv("IOCD_TEST_TIMEOUT", "15s", 1);
  setenv("IOCD_TEST_EMPTY", "", 1);
  struct config *cfg =
      load_ok(HEAD
              " \"mqtt\": {\"password\": \"${IOCD_TEST_PASSWORD}\",\n"
              "          \"username\": \"${IOCD_TEST_EMPTY}\"},\n"
              " \"influxdb\": {\"database\": \"db-${IOCD_TEST_TIMEOUT}-x\",\n"
              "              \"timeout\": \"${IOCD_TEST_TIMEOUT}\"}\n}\n");
  cr_expect_str_eq(cfg->mqtt.password, "s3cr3t Đắk");
  /* An optional string that comes out empty is not set. */
  cr_expect_null(cfg->mqtt.username);
  cr_expect_str_eq(cfg->influx.database, "db-15s-x");
  cr_expect_eq(cfg->influx.timeout_ms, 15000);
  config_free(cfg);
}

Test(config_env, keeps_an_escaped_dollar_brace_literal) {
  setenv("IOCD_TEST_X", "expanded", 1);
  struct config *cfg = load_ok(
      HEAD
      " \"mqtt\": {\"password\": \"a$${IOCD_TEST_X}b$c$$d${IOCD_TEST_X}\"}"
      "\n}\n");
  cr_expect_str_eq(cfg->mqtt.password, "a${IOCD_TEST_X}b$c$$dexpanded");
  config_free(cfg);
}

Test(config_env, reports_problems_with_the_key_and_the_variable) {
  unsetenv("IOCD_TEST_UNSET");
  setenv("IOCD_TEST_BAD", "\xff", 1);
  setenv("IOCD_TEST_PORT", "1883", 1);
  static const struct err_case cases[] = {
      {"unset", HEAD " \"mqtt\": {\"password\": \"${IOCD_TEST_UNSET}\"}\n}\n",
       "iocd.jsonc:2:23: mqtt.password: environment variable "
       "IOCD_TEST_UNSET is not set\n"},
      {"bad name", HEAD " \"data_dir\": \"${1X}\"\n}\n",
       "iocd.jsonc:2:14: data_dir: \"${1X}\" is not a variable reference (a "
       "name is letters, digits and _, not starting with a digit)\n"},
      {"unclosed", HEAD " \"data_dir\": \"${HOME\"\n}\n",
       "iocd.jsonc:2:14: data_dir: \"${\" without a closing \"}\" (write $${ "
       "for a literal ${)\n"},
      {"value is not UTF-8", HEAD " \"data_dir\": \"${IOCD_TEST_BAD}\"\n}\n",
       "iocd.jsonc:2:14: data_dir: invalid UTF-8 at byte 1 of the string "
       "after ${...} substitution\n"},
      {"only strings are substituted",
       HEAD " \"mqtt\": {\"port\": \"${IOCD_TEST_PORT}\"}\n}\n",
       "iocd.jsonc:2:19: mqtt.port: expected an integer from 1 to 65535, "
       "got \"${IOCD_TEST_PORT}\"\n"},
      {"value still validated",
       HEAD " \"influxdb\": {\"database\": \"d\", \"timeout\": "
            "\"${IOCD_TEST_PORT}\"}\n}\n",
       "iocd.jsonc:2:43: influxdb.timeout: \"1883\" is not a duration (use "
       "e.g. \"500ms\", \"10s\", \"5m\")\n"},
  };
  CHECK_CASES(cases);
}

Test(config_env, expands_references_by_the_rules) {
  setenv("IOCD_TEST_A", "alpha", 1);
  static const struct {
    const char *in;
    const char *out; /* NULL: an error */
  } cases[] = {
      {"", ""},
      {"plain", "plain"},
      {"${IOCD_TEST_A}", "alpha"},
      {"x${IOCD_TEST_A}y${IOCD_TEST_A}", "xalphayalpha"},
      {"$${IOCD_TEST_A}", "${IOCD_TEST_A}"},
      {"$", "$"},
      {"$$", "$$"},
      {"a$b", "a$b"},
      {"${}", NULL},
      {"${A-B}", NULL},
      {"${IOCD_TEST_A", NULL},
      {"${IOCD_TEST_NOT_SET_EVER}", NULL},
  };
  unsetenv("IOCD_TEST_NOT_SET_EVER");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *out = NULL;
    struct iocd_err err = {{0}};
    int rc = config__expand_env(cases[i].in, &out, &err);
    if (cases[i].out) {
      cr_expect_eq(rc, IOCD_OK, "%s: %s", cases[i].in, err.msg);
      cr_expect_str_eq(out ? out : "(null)", cases[i].out, "%s", cases[i].in);
    } else {
      cr_expect_eq(rc, IOCD_EPARSE, "%s", cases[i].in);
      cr_expect_neq(err.msg[0], '\0', "%s", cases[i].in);
    }
    free(out);
  }
}

Test(config_defaults, fills_every_default_from_a_minimal_file) {
  struct config *cfg =
      load_ok("{\"subscriptions\": [{\"topic\": \"t\"}], \"file\": {}}");
  cr_expect_str_eq(cfg->path, "iocd.jsonc");
  cr_expect_str_eq(cfg->data_dir, "./var/iocd");
  cr_expect_eq(cfg->log_level, LOG_INFO);
  cr_expect_eq(cfg->log_format, LOG_FMT_TEXT);
  cr_expect_eq(cfg->stats_interval_s, 60);
  cr_expect_eq(cfg->shutdown_timeout_ms, 10000);

  const struct config_mqtt *m = &cfg->mqtt;
  cr_expect_str_eq(m->host, "127.0.0.1");
  cr_expect_eq(m->port, 1883);
  cr_expect_eq(m->protocol, MQTT_PROTO_V5);
  cr_expect_null(m->username);
  cr_expect_null(m->password);
  cr_expect_eq(m->keepalive_s, 30);
  cr_expect_eq(m->clean_start, false);
  cr_expect_eq(m->session_expiry_s, 86400);
  cr_expect_eq(m->reconnect_min_ms, 500);
  cr_expect_eq(m->reconnect_max_ms, 30000);
  cr_expect_eq(m->idle_timeout_s, 300);
  cr_expect_eq(m->tls.enabled, false);
  cr_expect_eq(m->tls.verify_hostname, true);
  cr_expect_null(m->tls.ca_file);

  cr_assert_eq(cfg->nsubs, 1);
  const struct config_subscription *s = &cfg->subs[0];
  cr_expect_str_eq(s->name, "t");
  cr_expect_eq(s->qos, 1);
  cr_expect_eq(s->format, FORMAT_JSON);
  cr_expect_eq(s->fallback, FORMAT_JSON);
  cr_expect_null(s->measurement);
  cr_expect_str_eq(s->field, "value");
  cr_expect_str_eq(s->time_key, "time");
  cr_expect_eq(s->time_unit, TIME_AUTO);
  cr_expect_eq(s->time_unit_numbers, TIME_S);
  cr_expect_null(s->measurement_key);
  cr_expect_eq(s->ntag_keys, 0);
  cr_expect_eq(s->ntags, 0);
  cr_expect_eq(s->ntypes, 0);
  cr_expect_eq(s->allow_strings, false);
  cr_expect_null(s->dead_letter);

  const struct config_limits *lim = &cfg->limits;
  cr_expect_eq(lim->max_payload_bytes, 65536);
  cr_expect_eq(lim->max_series, 100000);
  cr_expect_eq(lim->max_json_depth, 8);
  cr_expect_eq(lim->max_fields, 256);
  cr_expect_eq(lim->max_future_s, 600);
  cr_expect_eq(lim->max_past_s, 31622400);
  cr_expect_eq(lim->log_burst, 10);
  cr_expect_eq(lim->log_window_s, 10);
  cr_expect_eq(lim->silent_after_s, 600);

  const struct config_influx *in = &cfg->influx;
  cr_expect_eq(in->enabled, false);
  cr_expect_str_eq(in->url, "http://127.0.0.1:8086");
  cr_expect_eq(in->api, INFLUX_V1);
  cr_expect_eq(in->create_database, true);
  cr_expect_eq(in->gzip, true);
  cr_expect_eq(in->timeout_ms, 10000);
  cr_expect_eq(in->batch_points, 5000);
  cr_expect_eq(in->batch_bytes, 1 << 20);
  cr_expect_eq(in->flush_interval_ms, 1000);
  cr_expect_eq(in->retry_min_ms, 500);
  cr_expect_eq(in->retry_max_ms, 60000);
  cr_expect_eq(in->max_in_flight, 2);
  cr_expect_eq(in->buffer_bytes, (size_t)64 << 20);
  cr_expect_eq(in->tls_verify, true);

  cr_expect_eq(cfg->file.enabled, true);
  cr_expect_str_eq(cfg->file.path, "-");
  cr_expect_eq(cfg->api.enabled, true);
  cr_expect_str_eq(cfg->api.listen, "127.0.0.1:8080");
  config_free(cfg);
}

Test(config_defaults, names_the_client_after_the_host) {
  char host[256];
  cr_assert_eq(gethostname(host, sizeof host), 0);
  host[sizeof host - 1] = '\0';
  char want[300];
  snprintf(want, sizeof want, "iocd-%s", host);
  struct config *cfg = load_ok(HEAD "\"mqtt\": {}}");
  cr_expect_str_eq(cfg->mqtt.client_id, want);
  config_free(cfg);
}

Test(config_defaults, uses_port_8883_when_tls_is_on) {
  static const struct {
    const char *text;
    int port;
    bool tls;
  } cases[] = {
      {HEAD "\"mqtt\": {\"tls\": {}}}", 8883, true},
      {HEAD "\"mqtt\": {\"tls\": {\"enabled\": true}}}", 8883, true},
      {HEAD "\"mqtt\": {\"tls\": {\"enabled\": false}}}", 1883, false},
      {HEAD "\"mqtt\": {\"port\": 9999, \"tls\": {}}}", 9999, true},
      {HEAD "\"mqtt\": {}}", 1883, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct config *cfg = load_ok(cases[i].text);
    cr_expect_eq(cfg->mqtt.port, cases[i].port, "%s", cases[i].text);
    cr_expect_eq(cfg->mqtt.tls.enabled, cases[i].tls, "%s", cases[i].text);
    config_free(cfg);
  }
}

Test(config_defaults, enables_a_present_influxdb_section) {
  struct config *cfg = load_ok(
      "{\"subscriptions\": [{\"topic\": \"t\"}],\n"
      " \"influxdb\": {\"database\": \"ioc\"}}");
  cr_expect_eq(cfg->influx.enabled, true);
  cr_expect_eq(cfg->file.enabled, false);
  config_free(cfg);
  /* Switched off, its own requirements no longer apply. */
  cfg = load_ok(HEAD " \"influxdb\": {\"enabled\": false, \"api\": 2}}");
  cr_expect_eq(cfg->influx.enabled, false);
  config_free(cfg);
}

Test(config_defaults, takes_null_as_not_set) {
  struct config *cfg = load_ok(
      HEAD
      " \"data_dir\": null, \"mqtt\": {\"port\": null, \"host\": null},\n"
      " \"influxdb\": {\"database\": \"d\", \"retention_policy\": null}}");
  cr_expect_str_eq(cfg->data_dir, "./var/iocd");
  cr_expect_eq(cfg->mqtt.port, 1883);
  cr_expect_str_eq(cfg->mqtt.host, "127.0.0.1");
  cr_expect_null(cfg->influx.retention_policy);
  config_free(cfg);
}

Test(config_values, reads_every_kind_of_value) {
  struct config *cfg = load_ok(
      "{\n"
      "  \"data_dir\": \"/var/lib/iocd\",\n"
      "  \"log\": {\"level\": \"debug\", \"format\": \"json\"},\n"
      "  \"stats_interval\": \"0s\", \"shutdown_timeout\": \"2500ms\",\n"
      "  \"mqtt\": {\"host\": \"broker\", \"port\": 1884, \"client_id\": "
      "\"c1\",\n"
      "    \"protocol\": \"3.1.1\", \"username\": \"u\", \"password\": "
      "\"p\",\n"
      "    \"keepalive\": \"1m\", \"clean_start\": true,\n"
      "    \"session_expiry\": \"2h\", \"reconnect_min\": \"1s\",\n"
      "    \"reconnect_max\": \"1m\", \"idle_timeout\": \"0s\",\n"
      "    \"tls\": {\"ca_file\": \"ca.pem\", \"ca_path\": \"/etc/ssl\",\n"
      "      \"cert_file\": \"c.pem\", \"key_file\": \"k.pem\",\n"
      "      \"verify_hostname\": false}},\n"
      "  \"limits\": {\"max_payload\": 1024, \"max_series\": 7,\n"
      "    \"max_json_depth\": 3, \"max_fields\": 9, \"max_future\": \"1h\",\n"
      "    \"max_past\": \"7d\", \"log_burst\": 4, \"log_window\": \"1m\"},\n"
      "  \"subscriptions\": [{\"name\": \"n\", \"topic\": \"a/{x}\",\n"
      "    \"qos\": 2, \"format\": \"auto\", \"fallback_format\": \"line\",\n"
      "    \"measurement\": \"m\", \"field\": \"f\", \"time_key\": \"ts\",\n"
      "    \"time_unit\": \"rfc3339\", \"time_unit_numbers\": \"ms\",\n"
      "    \"measurement_key\": \"kind\", \"tag_keys\": [\"site\", \"unit\"],\n"
      "    \"tags\": {\"province\": \"Đắk Lắk\", \"system\": \"igate\"},\n"
      "    \"types\": {\"received\": \"integer\", \"rate\": \"float\",\n"
      "      \"ok\": \"boolean\", \"note\": \"string\"},\n"
      "    \"allow_strings\": true, \"dead_letter\": \"dead/n\"}],\n"
      "  \"influxdb\": {\"url\": \"https://influx:8086\", \"api\": 2,\n"
      "    \"org\": \"o\", \"bucket\": \"b\", \"token\": \"t\",\n"
      "    \"create_database\": false, \"gzip\": false, \"timeout\": \"3s\",\n"
      "    \"batch_points\": 10, \"batch_bytes\": \"2KiB\",\n"
      "    \"flush_interval\": \"250ms\", \"retry_min\": \"1s\",\n"
      "    \"retry_max\": \"2m\", \"max_in_flight\": 4, \"buffer\": \"2GiB\",\n"
      "    \"ca_file\": \"ca2.pem\", \"tls_verify\": false},\n"
      "  \"file\": {\"enabled\": true, \"path\": \"/tmp/points.lp\"},\n"
      "  \"api\": {\"enabled\": false, \"listen\": \"[::1]:9090\"}\n"
      "}\n");
  cr_expect_str_eq(cfg->data_dir, "/var/lib/iocd");
  cr_expect_eq(cfg->log_level, LOG_DEBUG);
  cr_expect_eq(cfg->log_format, LOG_FMT_JSON);
  cr_expect_eq(cfg->stats_interval_s, 0);
  cr_expect_eq(cfg->shutdown_timeout_ms, 2500);
  const struct config_mqtt *m = &cfg->mqtt;
  cr_expect_str_eq(m->host, "broker");
  cr_expect_eq(m->port, 1884);
  cr_expect_str_eq(m->client_id, "c1");
  cr_expect_eq(m->protocol, MQTT_PROTO_V311);
  cr_expect_str_eq(m->username, "u");
  cr_expect_str_eq(m->password, "p");
  cr_expect_eq(m->keepalive_s, 60);
  cr_expect_eq(m->clean_start, true);
  cr_expect_eq(m->session_expiry_s, 7200);
  cr_expect_eq(m->reconnect_min_ms, 1000);
  cr_expect_eq(m->reconnect_max_ms, 60000);
  cr_expect_eq(m->idle_timeout_s, 0);
  cr_expect_eq(m->tls.enabled, true);
  cr_expect_str_eq(m->tls.ca_file, "ca.pem");
  cr_expect_str_eq(m->tls.ca_path, "/etc/ssl");
  cr_expect_str_eq(m->tls.cert_file, "c.pem");
  cr_expect_str_eq(m->tls.key_file, "k.pem");
  cr_expect_eq(m->tls.verify_hostname, false);
  const struct config_limits *lim = &cfg->limits;
  cr_expect_eq(lim->max_payload_bytes, 1024);
  cr_expect_eq(lim->max_series, 7);
  cr_expect_eq(lim->max_json_depth, 3);
  cr_expect_eq(lim->max_fields, 9);
  cr_expect_eq(lim->max_future_s, 3600);
  cr_expect_eq(lim->max_past_s, 7 * 86400);
  cr_expect_eq(lim->log_burst, 4);
  cr_expect_eq(lim->log_window_s, 60);
  cr_assert_eq(cfg->nsubs, 1);
  const struct config_subscription *s = &cfg->subs[0];
  cr_expect_str_eq(s->name, "n");
  cr_expect_str_eq(s->topic, "a/{x}");
  cr_expect_eq(s->qos, 2);
  cr_expect_eq(s->format, FORMAT_AUTO);
  cr_expect_eq(s->fallback, FORMAT_LINE);
  cr_expect_str_eq(s->measurement, "m");
  cr_expect_str_eq(s->field, "f");
  cr_expect_str_eq(s->time_key, "ts");
  cr_expect_eq(s->time_unit, TIME_RFC3339);
  cr_expect_eq(s->time_unit_numbers, TIME_MS);
  cr_expect_str_eq(s->measurement_key, "kind");
  cr_assert_eq(s->ntag_keys, 2);
  cr_expect_str_eq(s->tag_keys[0], "site");
  cr_expect_str_eq(s->tag_keys[1], "unit");
  cr_assert_eq(s->ntags, 2);
  cr_expect_str_eq(s->tags[0].key, "province");
  cr_expect_str_eq(s->tags[0].value, "Đắk Lắk");
  cr_expect_str_eq(s->tags[1].key, "system");
  cr_expect_str_eq(s->tags[1].value, "igate");
  cr_assert_eq(s->ntypes, 4);
  static const struct {
    const char *field;
    enum field_type type;
  } want[] = {{"received", FIELD_INT},
              {"rate", FIELD_FLOAT},
              {"ok", FIELD_BOOL},
              {"note", FIELD_STRING}};
  for (size_t i = 0; i < 4; i++) {
    cr_expect_null(s->types[i].measurement);
    cr_expect_str_eq(s->types[i].field, want[i].field);
    cr_expect_eq(s->types[i].type, want[i].type, "%s", want[i].field);
  }
  cr_expect_eq(s->allow_strings, true);
  cr_expect_str_eq(s->dead_letter, "dead/n");
  const struct config_influx *in = &cfg->influx;
  cr_expect_eq(in->enabled, true);
  cr_expect_str_eq(in->url, "https://influx:8086");
  cr_expect_eq(in->api, INFLUX_V2);
  cr_expect_str_eq(in->org, "o");
  cr_expect_str_eq(in->bucket, "b");
  cr_expect_str_eq(in->token, "t");
  cr_expect_eq(in->create_database, false);
  cr_expect_eq(in->gzip, false);
  cr_expect_eq(in->timeout_ms, 3000);
  cr_expect_eq(in->batch_points, 10);
  cr_expect_eq(in->batch_bytes, 2048);
  cr_expect_eq(in->flush_interval_ms, 250);
  cr_expect_eq(in->retry_min_ms, 1000);
  cr_expect_eq(in->retry_max_ms, 120000);
  cr_expect_eq(in->max_in_flight, 4);
  cr_expect_eq(in->buffer_bytes, (size_t)2 << 30);
  cr_expect_str_eq(in->ca_file, "ca2.pem");
  cr_expect_eq(in->tls_verify, false);
  cr_expect_eq(cfg->file.enabled, true);
  cr_expect_str_eq(cfg->file.path, "/tmp/points.lp");
  cr_expect_eq(cfg->api.enabled, false);
  cr_expect_str_eq(cfg->api.listen, "[::1]:9090");
  config_free(cfg);
}

Test(config_values, leaves_comment_markers_inside_strings_alone) {
  struct config *cfg = load_ok(
      "// leading comment\n"
      "{\"subscriptions\": [{\"topic\": \"a//b\", /* a \"quoted\" note */\n"
      "   \"measurement\": \"/* not a comment */\",\n"
      "   \"field\": \"say \\\"//hi\\\" \\\\\"}],  // trailing\n"
      " \"influxdb\": {\"url\": \"http://x//y\", \"database\": \"d\"}\n"
      "}\n/* after */\n");
  cr_expect_str_eq(cfg->subs[0].topic, "a//b");
  cr_expect_str_eq(cfg->subs[0].measurement, "/* not a comment */");
  cr_expect_str_eq(cfg->subs[0].field, "say \"//hi\" \\");
  cr_expect_str_eq(cfg->influx.url, "http://x//y");
  config_free(cfg);
}

Test(config_values, keeps_vietnamese_strings_exactly) {
  static const char *const names[] = {
      "Buôn Ma Thuột", "Buôn Hồ", "Cư M'gar", "Ea H'Leo",
      "Krông Pắc",     "M'Đrắk",  "Lắk",      "Ea Súp",
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char text[512];
    snprintf(text, sizeof text,
             "{\"file\": {}, \"subscriptions\": [{\"topic\": \"ioc/%s/igate\","
             " \"tags\": {\"huyện\": \"%s\"}}]}",
             names[i], names[i]);
    struct config *cfg = load_ok(text);
    char topic[128];
    snprintf(topic, sizeof topic, "ioc/%s/igate", names[i]);
    cr_expect_str_eq(cfg->subs[0].topic, topic);
    cr_expect_str_eq(cfg->subs[0].name, topic);
    cr_expect_str_eq(cfg->subs[0].tags[0].key, "huyện");
    cr_expect_str_eq(cfg->subs[0].tags[0].value, names[i]);
    config_free(cfg);
  }
  /* \u escapes decode to the same bytes. */
  struct config *cfg =
      load_ok(HEAD " \"data_dir\": \"Bu\\u00f4n Ma Thu\\u1ed9t\"}");
  cr_expect_str_eq(cfg->data_dir, "Buôn Ma Thuột");
  config_free(cfg);
}

Test(config_values, counts_columns_in_characters) {
  struct load l;
  load_text(&l, HEAD " \"data_dir\": \"Đắk Lắk\", \"x\": 1}\n");
  cr_expect_str_eq(errors_of(&l), "iocd.jsonc:2:25: x: unknown key\n");
  load_done(&l);
}

Test(config_values, ignores_a_byte_order_mark) {
  struct config *cfg = load_ok("\xEF\xBB\xBF" HEAD " \"data_dir\": \"d\"}");
  cr_expect_str_eq(cfg->data_dir, "d");
  config_free(cfg);
  struct load l;
  load_text(&l, "\xEF\xBB\xBF{\"x\": 1}");
  cr_expect_str_eq(errors_of(&l),
                   "iocd.jsonc:1:1: subscriptions: at least one subscription "
                   "is required\n"
                   "iocd.jsonc:1:1: no output is enabled (add an \"influxdb\" "
                   "section or enable \"file\")\n"
                   "iocd.jsonc:1:2: x: unknown key\n");
  load_done(&l);
}

Test(config_values, parses_durations) {
  static const struct {
    const char *in;
    int rc;
    int64_t ms;
  } cases[] = {
      {"0s", IOCD_OK, 0},
      {"500ms", IOCD_OK, 500},
      {"30s", IOCD_OK, 30000},
      {"5m", IOCD_OK, 300000},
      {"2h", IOCD_OK, 7200000},
      {"1d", IOCD_OK, 86400000},
      {"366d", IOCD_OK, INT64_C(31622400000)},
      {"", IOCD_EPARSE, 0},
      {"10", IOCD_EPARSE, 0},
      {"s", IOCD_EPARSE, 0},
      {"-1s", IOCD_EPARSE, 0},
      {"+1s", IOCD_EPARSE, 0},
      {" 1s", IOCD_EPARSE, 0},
      {"1s ", IOCD_EPARSE, 0},
      {"1.5s", IOCD_EPARSE, 0},
      {"1S", IOCD_EPARSE, 0},
      {"1sec", IOCD_EPARSE, 0},
      {"1h30m", IOCD_EPARSE, 0},
      {"9223372036854775807ms", IOCD_OK, INT64_MAX},
      {"9223372036854775808ms", IOCD_ERANGE, 0},
      {"9223372036854776s", IOCD_ERANGE, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int64_t ms = -1;
    int rc = config__parse_duration(cases[i].in, &ms);
    cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d", cases[i].in, rc);
    if (cases[i].rc == IOCD_OK) {
      cr_expect_eq(ms, cases[i].ms, "\"%s\"", cases[i].in);
    }
  }
}

Test(config_values, parses_sizes_in_iec_units) {
  static const struct {
    const char *in;
    int rc;
    int64_t bytes;
  } cases[] = {
      {"0", IOCD_OK, 0},          {"1000", IOCD_OK, 1000},
      {"512B", IOCD_OK, 512},     {"64KiB", IOCD_OK, 65536},
      {"1MiB", IOCD_OK, 1048576}, {"2GiB", IOCD_OK, INT64_C(2147483648)},
      {"64KB", IOCD_EPARSE, 0},   {"64kib", IOCD_EPARSE, 0},
      {"1TiB", IOCD_EPARSE, 0},   {"1.5MiB", IOCD_EPARSE, 0},
      {"-1", IOCD_EPARSE, 0},     {"KiB", IOCD_EPARSE, 0},
      {"", IOCD_EPARSE, 0},       {"99999999999GiB", IOCD_ERANGE, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int64_t b = -1;
    int rc = config__parse_size(cases[i].in, &b);
    cr_expect_eq(rc, cases[i].rc, "\"%s\": rc %d", cases[i].in, rc);
    if (cases[i].rc == IOCD_OK) {
      cr_expect_eq(b, cases[i].bytes, "\"%s\"", cases[i].in);
    }
  }
}

Test(config_values, formats_durations_and_sizes_in_their_shortest_form) {
  static const struct {
    int64_t v;
    const char *dur;
    const char *size;
  } cases[] = {
      {0, "0s", "0B"},
      {1, "1ms", "1B"},
      {1000, "1s", "1000B"},
      {1024, "1024ms", "1KiB"},
      {90000, "90s", "90000B"},
      {86400000, "1d", "84375KiB"},
      {86400001, "86400001ms", "86400001B"},
      {1 << 20, "1048576ms", "1MiB"},
      {INT64_C(3) << 30, "3221225472ms", "3GiB"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char d[32], s[32];
    config__format_duration(cases[i].v, d, sizeof d);
    config__format_size(cases[i].v, s, sizeof s);
    cr_expect_str_eq(d, cases[i].dur);
    cr_expect_str_eq(s, cases[i].size);
  }
}

Test(config_values, measures_edit_distance_with_transpositions) {
  static const struct {
    const char *a, *b;
    size_t d;
  } cases[] = {
      {"host", "host", 0}, {"hots", "host", 1},  {"Host", "host", 0},
      {"hst", "host", 1},  {"hosts", "host", 1}, {"port", "host", 2},
      {"", "qos", 3},      {"qso", "qos", 1},    {"abc", "", 3},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_expect_eq(config__distance(cases[i].a, cases[i].b), cases[i].d, "%s/%s",
                 cases[i].a, cases[i].b);
  }
}

Test(config_values, names_payload_formats) {
  cr_expect_str_eq(config_format_name(FORMAT_JSON), "json");
  cr_expect_str_eq(config_format_name(FORMAT_VALUE), "value");
  cr_expect_str_eq(config_format_name(FORMAT_LINE), "line");
  cr_expect_str_eq(config_format_name(FORMAT_SENML), "senml");
  cr_expect_str_eq(config_format_name(FORMAT_AUTO), "auto");
  cr_expect_str_eq(config_format_name((enum payload_format)42), "unknown");
}

static char *read_example(size_t *len) {
  FILE *f = fopen(EXAMPLE_PATH, "rb");
  cr_assert_not_null(f, "cannot open %s", EXAMPLE_PATH);
  struct buf b;
  buf_init(&b, 1 << 20);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    cr_assert_eq(buf_append(&b, chunk, n), IOCD_OK);
  }
  fclose(f);
  return buf_detach(&b, len);
}

Test(config_example, loads_without_error) {
  struct buf e;
  buf_init(&e, 0);
  struct config *cfg = NULL;
  int rc = config_load(EXAMPLE_PATH, &cfg, &e);
  cr_assert_eq(rc, IOCD_OK, "%s", e.data ? e.data : "");
  cr_assert_null(e.data);
  cr_expect_str_eq(cfg->mqtt.host, "127.0.0.1");
  cr_expect_eq(cfg->mqtt.port, 1883);
  cr_expect_eq(cfg->influx.enabled, true);
  cr_expect_eq(cfg->influx.api, INFLUX_V1);
  cr_expect_str_eq(cfg->influx.url, "http://127.0.0.1:8086");
  cr_expect_str_eq(cfg->influx.database, "ioc");
  cr_expect_eq(cfg->file.enabled, false);
  static const struct {
    const char *name, *topic;
    enum payload_format format;
  } subs[] = {
      {"igate", "ioc/{district}/igate", FORMAT_JSON},
      {"idesk", "ioc/{district}/idesk", FORMAT_JSON},
      {"signatures", "ioc/{district}/signatures", FORMAT_JSON},
      {"sensors", "ioc/{district}/sensors/{field}", FORMAT_VALUE},
      {"line", "ioc/{district}/line", FORMAT_LINE},
      {"senml", "ioc/{district}/senml", FORMAT_SENML},
  };
  cr_assert_eq(cfg->nsubs, 6);
  for (size_t i = 0; i < 6; i++) {
    cr_expect_str_eq(cfg->subs[i].name, subs[i].name);
    cr_expect_str_eq(cfg->subs[i].topic, subs[i].topic);
    cr_expect_eq(cfg->subs[i].format, subs[i].format, "%s", subs[i].name);
  }
  const struct config_subscription *ig = &cfg->subs[0];
  static const char *const ints[] = {"received", "resolved", "online_l3",
                                     "online_l4", "overdue"};
  cr_assert_eq(ig->ntypes, 5);
  for (size_t i = 0; i < 5; i++) {
    cr_expect_str_eq(ig->types[i].field, ints[i]);
    cr_expect_eq(ig->types[i].type, FIELD_INT);
  }
  cr_assert_eq(ig->ntags, 1);
  cr_expect_str_eq(ig->tags[0].key, "system");
  cr_expect_str_eq(ig->tags[0].value, "igate");
  const struct config_subscription *id = &cfg->subs[1];
  cr_assert_eq(id->ntypes, 2);
  cr_expect_str_eq(id->types[0].field, "documents_sent");
  cr_expect_eq(id->types[0].type, FIELD_INT);
  cr_expect_str_eq(id->types[1].field, "documents_received");
  cr_expect_eq(id->types[1].type, FIELD_INT);
  cr_expect_str_eq(cfg->subs[3].measurement, "sensors");
  config_free(cfg);
  buf_cleanup(&e);
}

Test(config_example, every_truncation_fails_cleanly) {
  size_t len;
  char *text = read_example(&len);
  /* The document ends at its last '}'; only prefixes that reach it parse. */
  size_t end = len;
  while (end > 0 && text[end - 1] != '}') {
    end--;
  }
  cr_assert_gt(end, 0);
  for (size_t n = 0; n <= len; n++) {
    struct buf e;
    buf_init(&e, 0);
    struct config *cfg = NULL;
    int rc = config_load_text("ex.jsonc", text, n, &cfg, &e);
    if (n < end) {
      cr_assert_eq(rc, IOCD_EPARSE, "prefix %zu: rc %d", n, rc);
      cr_assert_null(cfg, "prefix %zu", n);
      cr_assert(e.len > 0 && strncmp(e.data, "ex.jsonc:", 9) == 0,
                "prefix %zu: %s", n, e.data ? e.data : "(none)");
    } else {
      cr_assert_eq(rc, IOCD_OK, "prefix %zu: %s", n, e.data ? e.data : "");
      cr_assert_not_null(cfg);
    }
    config_free(cfg);
    buf_cleanup(&e);
  }
  free(text);
}

Test(config_example, corrupted_bytes_never_crash) {
  size_t len;
  char *text = read_example(&len);
  char *copy = malloc(len);
  cr_assert_not_null(copy);
  static const char pool[] = "{}[]\",:/*\\\n 0a$\xff\xc3\x80";
  uint64_t x = 0x9E3779B97F4A7C15u;
  for (int round = 0; round < 3000; round++) {
    memcpy(copy, text, len);
    int edits = 1 + round % 3;
    for (int k = 0; k < edits; k++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      size_t at = (size_t)(x % len);
      copy[at] =
          (x >> 32) & 1 ? pool[(x >> 40) % (sizeof pool - 1)] : (char)(x >> 48);
    }
    struct buf e;
    buf_init(&e, 0);
    struct config *cfg = NULL;
    int rc = config_load_text("ex.jsonc", copy, len, &cfg, &e);
    cr_assert(rc == IOCD_OK || rc == IOCD_EPARSE, "round %d: rc %d", round, rc);
    if (rc) {
      cr_assert_null(cfg);
      cr_assert_gt(e.len, 0, "round %d", round);
    } else {
      cr_assert_not_null(cfg);
    }
    config_free(cfg);
    buf_cleanup(&e);
  }
  free(copy);
  free(text);
}

Test(config_file, reports_a_file_that_cannot_be_read) {
  struct buf e;
  buf_init(&e, 0);
  struct config *cfg = NULL;
  int rc = config_load("/nonexistent/iocd.jsonc", &cfg, &e);
  cr_expect_eq(rc, IOCD_EIO);
  cr_expect_null(cfg);
  cr_expect_str_eq(e.data,
                   "/nonexistent/iocd.jsonc: cannot open: No such "
                   "file or directory\n");
  buf_reset(&e);
  rc = config_load("/tmp", &cfg, &e);
  cr_expect_eq(rc, IOCD_EIO);
  cr_expect_str_eq(e.data, "/tmp: is a directory, not a file\n");
  buf_cleanup(&e);
}

Test(config_file, refuses_a_file_over_16_mib) {
  char path[] = "/tmp/iocd-config-test-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  /* Sparse: no 17 MiB actually written. */
  cr_assert_eq(ftruncate(fd, (off_t)17 << 20), 0);
  close(fd);
  struct buf e;
  buf_init(&e, 0);
  struct config *cfg = NULL;
  int rc = config_load(path, &cfg, &e);
  unlink(path);
  cr_expect_eq(rc, IOCD_EIO);
  cr_expect_null(cfg);
  char want[128];
  snprintf(want, sizeof want, "%s: the file is larger than 16 MiB\n", path);
  cr_expect_str_eq(e.data, want);
  buf_cleanup(&e);
}

Test(config_file, loads_a_file_and_names_it_in_messages) {
  char path[] = "/tmp/iocd-config-test-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  static const char text[] = HEAD " \"mqtt\": {\"port\": 0}}\n";
  cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
  close(fd);
  struct buf e;
  buf_init(&e, 0);
  struct config *cfg = NULL;
  int rc = config_load(path, &cfg, &e);
  cr_expect_eq(rc, IOCD_EPARSE);
  char want[256];
  snprintf(want, sizeof want,
           "%s:2:19: mqtt.port: expected an integer from 1 to 65535, got 0\n",
           path);
  cr_expect_str_eq(e.data, want);
  buf_cleanup(&e);

  fd = open(path, O_WRONLY | O_TRUNC);
  cr_assert_geq(fd, 0);
  static const char good[] = HEAD " \"mqtt\": {\"port\": 1}}\n";
  cr_assert_eq(write(fd, good, sizeof good - 1), (ssize_t)(sizeof good - 1));
  close(fd);
  rc = config_load(path, &cfg, NULL);
  unlink(path);
  cr_assert_eq(rc, IOCD_OK);
  cr_expect_str_eq(cfg->path, path);
  cr_expect_eq(cfg->mqtt.port, 1);
  config_free(cfg);
}

/* ---- The journal section ---------------------------------------------- */

Test(config_journal, is_on_by_default_with_the_documented_values) {
  struct config *cfg = load_ok(HEAD "\"mqtt\": {}}");
  const struct config_journal *j = &cfg->journal;
  cr_expect_eq(j->enabled, true);
  cr_expect_eq(j->segment_bytes, (size_t)16 << 20);
  cr_expect_eq(j->max_bytes, (size_t)1 << 30);
  cr_expect_eq(j->memory_bytes, (size_t)64 << 20);
  cr_expect_eq(j->fsync, JOURNAL_FSYNC_INTERVAL);
  cr_expect_eq(j->fsync_interval_ms, 1000);
  cr_expect_eq(j->when_full, JOURNAL_FULL_PAUSE);
  cr_expect_eq(j->replay_rate, 0);
  config_free(cfg);
}

Test(config_journal, reads_every_key) {
  static const struct {
    const char *text;
    bool enabled;
    size_t segment, max, memory;
    enum journal_fsync fsync;
    int interval_ms;
    enum journal_when_full when_full;
    int64_t rate;
  } cases[] = {
      {HEAD "\"journal\": {\"enabled\": false}}", false, 16 << 20,
       (size_t)1 << 30, 64 << 20, JOURNAL_FSYNC_INTERVAL, 1000,
       JOURNAL_FULL_PAUSE, 0},
      {HEAD "\"journal\": {\"segment_bytes\": \"1MiB\", \"max_bytes\": "
            "\"10GiB\", \"memory\": \"8MiB\", \"fsync\": \"always\", "
            "\"fsync_interval\": \"250ms\", \"when_full\": \"drop_oldest\", "
            "\"replay_rate\": 20000}}",
       true, 1 << 20, (size_t)10 << 30, 8 << 20, JOURNAL_FSYNC_ALWAYS, 250,
       JOURNAL_FULL_DROP_OLDEST, 20000},
      {HEAD "\"journal\": {\"fsync\": \"never\", \"max_bytes\": \"64KiB\", "
            "\"segment_bytes\": \"32KiB\"}}",
       true, 32 << 10, 64 << 10, 64 << 20, JOURNAL_FSYNC_NEVER, 1000,
       JOURNAL_FULL_PAUSE, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct config *cfg = load_ok(cases[i].text);
    const struct config_journal *j = &cfg->journal;
    cr_expect_eq(j->enabled, cases[i].enabled, "case %zu", i);
    cr_expect_eq(j->segment_bytes, cases[i].segment, "case %zu", i);
    cr_expect_eq(j->max_bytes, cases[i].max, "case %zu", i);
    cr_expect_eq(j->memory_bytes, cases[i].memory, "case %zu", i);
    cr_expect_eq(j->fsync, cases[i].fsync, "case %zu", i);
    cr_expect_eq(j->fsync_interval_ms, cases[i].interval_ms, "case %zu", i);
    cr_expect_eq(j->when_full, cases[i].when_full, "case %zu", i);
    cr_expect_eq(j->replay_rate, cases[i].rate, "case %zu", i);
    config_free(cfg);
  }
}

Test(config_journal, rejects_bad_values_where_they_are) {
  static const struct err_case cases[] = {
      {"fsync", HEAD "\"journal\": {\"fsync\": \"sometimes\"}}",
       "iocd.jsonc:2:22: journal.fsync: expected \"interval\", \"never\" or "
       "\"always\", got \"sometimes\"\n"},
      {"when_full", HEAD "\"journal\": {\"when_full\": \"drop\"}}",
       "iocd.jsonc:2:26: journal.when_full: expected \"pause\" or "
       "\"drop_oldest\", got \"drop\"\n"},
      {"tiny segments", HEAD "\"journal\": {\"segment_bytes\": \"1KiB\"}}",
       "iocd.jsonc:2:30: journal.segment_bytes: expected a size from 4KiB to "
       "1GiB, got \"1KiB\"\n"},
      {"negative rate", HEAD "\"journal\": {\"replay_rate\": -1}}",
       "iocd.jsonc:2:28: journal.replay_rate: expected an integer from 0 to "
       "1000000000, got -1\n"},
      {"no room for two segments",
       HEAD "\"journal\": {\"segment_bytes\": \"16MiB\", \"max_bytes\": "
            "\"20MiB\"}}",
       "iocd.jsonc:2:52: journal.max_bytes: 20MiB is less than twice "
       "journal.segment_bytes (16MiB)\n"},
      {"default segments, small max",
       HEAD "\"journal\": {\"max_bytes\": \"16MiB\"}}",
       "iocd.jsonc:2:26: journal.max_bytes: 16MiB is less than twice "
       "journal.segment_bytes (16MiB)\n"},
  };
  CHECK_CASES(cases);
}

/* Values that would load and then break every message at run time are
 * refused by the loader, at their place. */
Test(config_errors, refuses_names_that_could_never_be_written) {
  static char long_dl[70300];
  int n = snprintf(long_dl, sizeof long_dl, "%s",
                   "{\"file\": {}, \"subscriptions\": [{\"topic\": \"u\",\n"
                   "  \"dead_letter\": \"");
  cr_assert(n > 0 && n < 200);
  memset(long_dl + n, 'd', 70000);
  snprintf(long_dl + n + 70000, sizeof long_dl - (size_t)n - 70000, "%s",
           "\"}]}\n");
  static const struct err_case cases[] = {
      {"NUL in a measurement",
       "{\"file\": {}, \"subscriptions\": [{\"topic\": \"t\",\n"
       "  \"measurement\": \"ab\\u0000cd\"}]}\n",
       "iocd.jsonc:2:21: \\u0000 (NUL) in a string: iocd's strings cannot "
       "hold it, and everything after it would be lost\n"},
      {"NUL in a tag value",
       "{\"file\": {}, \"subscriptions\": [{\"topic\": \"t\",\n"
       "  \"tags\": {\"k\": \"v\\u0000\"}}]}\n",
       "iocd.jsonc:2:19: \\u0000 (NUL) in a string: iocd's strings cannot "
       "hold it, and everything after it would be lost\n"},
      {"LF in a measurement",
       "{\"file\": {}, \"subscriptions\": [{\"topic\": \"t\",\n"
       "  \"measurement\": \"a\\nb\"}]}\n",
       "iocd.jsonc:2:18: subscriptions[0].measurement: character 2 is the "
       "control character U+000A, which a name cannot hold\n"},
      {"TAB in a field name",
       "{\"file\": {}, \"subscriptions\": [{\"topic\": \"t\",\n"
       "  \"field\": \"\\tv\"}]}\n",
       "iocd.jsonc:2:12: subscriptions[0].field: character 1 is the control "
       "character U+0009, which a name cannot hold\n"},
      {"0x01 in a tag key",
       "{\"file\": {}, \"subscriptions\": [{\"topic\": \"t\",\n"
       "  \"tags\": {\"k\\u0001\": \"v\"}}]}\n",
       "iocd.jsonc:2:12: subscriptions[0].tags[\"k\\u0001\"]: character 2 is "
       "the control character U+0001, which a name cannot hold\n"},
      {"ESC in a district",
       "{\"file\": {}, \"subscriptions\": [{\"topic\": \"t\"}],\n"
       " \"sources\": {\"districts\": [\"L\\u001bk\"]}}\n",
       "iocd.jsonc:2:28: sources.districts[0]: character 2 is the control "
       "character U+001B, which a name cannot hold\n"},
      {"CR in a topic",
       "{\"file\": {}, \"subscriptions\": [{\"topic\": \"t\\r\"}]}\n",
       "iocd.jsonc:1:42: subscriptions[0].topic: character 2 is the control "
       "character U+000D, which a name cannot hold\n"},
      {"a wildcard in the dead letter",
       "{\"file\": {}, \"subscriptions\": [{\"topic\": \"t\",\n"
       "  \"dead_letter\": \"dl/#\"}]}\n",
       "iocd.jsonc:2:18: subscriptions[0].dead_letter: a topic to publish to "
       "cannot hold the wildcards '+' or '#'\n"},
  };
  CHECK_CASES(cases);
  struct load l;
  load_text(&l, long_dl);
  cr_expect_eq(l.rc, IOCD_EPARSE);
  cr_expect_str_eq(errors_of(&l),
                   "iocd.jsonc:2:18: subscriptions[0].dead_letter: 70000 "
                   "bytes; an MQTT topic has at most 65535\n");
  load_done(&l);
  /* An escaped backslash before u0000 is text, not a NUL. */
  struct config *cfg = load_ok(
      "{\"file\": {}, \"subscriptions\": [{\"topic\": \"t\",\n"
      "  \"measurement\": \"ab\\\\u0000\"}]}\n");
  cr_expect_str_eq(cfg->subs[0].measurement, "ab\\u0000");
  config_free(cfg);
}

Test(config, language_is_vietnamese_unless_english_is_chosen) {
  struct config *cfg = load_ok(HEAD "\"data_dir\": \"d\"}\n");
  cr_expect_eq(cfg->language, CONFIG_LANG_VI);
  config_free(cfg);
  cfg = load_ok(HEAD "\"language\": \"en\"}\n");
  cr_expect_eq(cfg->language, CONFIG_LANG_EN);
  config_free(cfg);
  struct load l;
  load_text(&l, HEAD "\"language\": \"fr\"}\n");
  cr_expect_eq(l.rc, IOCD_EPARSE);
  cr_expect(strstr(errors_of(&l), "iocd.jsonc:2:13: language:") != NULL, "%s",
            errors_of(&l));
  load_done(&l);
}

Test(config_diff, names_what_a_reload_adds_removes_and_changes) {
  static const char base[] =
      "{\"file\": {}, \"limits\": {\"max_fields\": 100},\n"
      " \"subscriptions\": [{\"name\": \"a\", \"topic\": \"a/{district}\"},\n"
      "                     {\"name\": \"b\", \"topic\": \"b/{district}\"}],\n"
      " \"params\": {\"t\": 1},\n"
      " \"rules\": [{\"name\": \"r1\", \"expr\": \"a.v > $t\"},\n"
      "           {\"name\": \"r2\", \"expr\": \"b.v > 1\"}]}\n";
  static const struct {
    const char *what, *text, *want;
  } cases[] = {
      {"the same text", base, "nothing changed"},
      {"comments and spacing only",
       "// the same, reformatted\n"
       "{\"file\": {}, \"limits\": {\"max_fields\": 100},\n"
       " \"subscriptions\": [{\"name\": \"a\", \"topic\": \"a/{district}\"}, "
       "{\"name\": \"b\",\n \"topic\": \"b/{district}\"}],\n"
       " \"params\": {\"t\": 1}, /* here */\n"
       " \"rules\": [{\"name\": \"r1\", \"expr\": \"a.v > $t\"},\n"
       "           {\"name\": \"r2\", \"expr\": \"b.v > 1\"}]}\n",
       "nothing changed"},
      {"one of each",
       "{\"file\": {}, \"limits\": {\"max_fields\": 200},\n"
       " \"subscriptions\": [{\"name\": \"a\", \"topic\": \"a/{district}\", "
       "\"qos\": 0},\n"
       "                     {\"name\": \"c\", \"topic\": \"c/{district}\"}],\n"
       " \"params\": {\"t\": 2},\n"
       " \"rules\": [{\"name\": \"r1\", \"expr\": \"a.v > $t\"},\n"
       "           {\"name\": \"r3\", \"expr\": \"c.v > 1\"}]}\n",
       "subscriptions added: c; subscriptions removed: b; subscriptions "
       "changed: a; rules added: r3; rules removed: r2; params changed: t; "
       "sections changed: limits"},
      {"a section added and one left out",
       "{\"file\": {}, \"journal\": {\"enabled\": false},\n"
       " \"subscriptions\": [{\"name\": \"a\", \"topic\": \"a/{district}\"},\n"
       "                     {\"name\": \"b\", \"topic\": \"b/{district}\"}],\n"
       " \"params\": {\"t\": 1},\n"
       " \"rules\": [{\"name\": \"r1\", \"expr\": \"a.v > $t\"},\n"
       "           {\"name\": \"r2\", \"expr\": \"b.v > 1\"}]}\n",
       "sections changed: journal, limits"},
  };
  struct config *old = load_ok(base);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct config *cfg = load_ok(cases[i].text);
    struct buf out;
    buf_init(&out, 0);
    cr_assert_eq(config_diff(old, cfg, &out), IOCD_OK);
    cr_expect_str_eq(out.data, cases[i].want, "%s", cases[i].what);
    buf_cleanup(&out);
    config_free(cfg);
  }
  config_free(old);
}

Test(config_file, refuses_a_fifo_at_once_instead_of_waiting_for_a_writer,
     .timeout = 10) {
  char dir[] = "/tmp/iocd-fifo-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char path[64];
  snprintf(path, sizeof path, "%s/iocd.jsonc", dir);
  cr_assert_eq(mkfifo(path, 0644), 0);
  struct buf errors;
  buf_init(&errors, 0);
  struct config *cfg = NULL;
  cr_expect_eq(config_load(path, &cfg, &errors), IOCD_EIO);
  cr_expect(errors.data && strstr(errors.data,
                                  "is a FIFO (named pipe), not a "
                                  "regular file") != NULL,
            "%s", errors.data ? errors.data : "");
  buf_cleanup(&errors);
  unlink(path);
  rmdir(dir);
}

/* "ô" written decomposed: o and a combining circumflex. */
#define O_NFD "o\xCC\x82"
#define O_NFC "\xC3\xB4"

Test(config, names_are_taken_in_nfc_but_secrets_and_paths_byte_for_byte) {
  struct config *cfg = load_ok(
      "{\"file\": {\"path\": \"/tmp/b" O_NFD "n.lp\"},\n"
      " \"data_dir\": \"/tmp/b" O_NFD "n\",\n"
      " \"mqtt\": {\"username\": \"u" O_NFD "\", \"password\": \"p" O_NFD
      "\"},\n"
      " \"subscriptions\": [{\"topic\": \"ioc/B" O_NFD "n/{x}\",\n"
      "   \"measurement\": \"m" O_NFD "\", \"tags\": {\"k" O_NFD "\": \"v" O_NFD
      "\"}}]}\n");
  cr_expect_str_eq(cfg->file.path, "/tmp/b" O_NFD "n.lp");
  cr_expect_str_eq(cfg->data_dir, "/tmp/b" O_NFD "n");
  cr_expect_str_eq(cfg->mqtt.username, "u" O_NFD);
  cr_expect_str_eq(cfg->mqtt.password, "p" O_NFD);
  cr_expect_str_eq(cfg->subs[0].topic, "ioc/B" O_NFC "n/{x}");
  cr_expect_str_eq(cfg->subs[0].measurement, "m" O_NFC);
  cr_expect_str_eq(cfg->subs[0].tags[0].key, "k" O_NFC);
  cr_expect_str_eq(cfg->subs[0].tags[0].value, "v" O_NFC);
  config_free(cfg);
}
