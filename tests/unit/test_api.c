/*
 * The API's JSON documents, rendered from configurations as operators write
 * them: every document must be valid JSON with the fields the docs promise,
 * whatever the rule looks like.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <string.h>

#include "api/api_rules.h"
#include "config_fixture.h"

/* Renders GET /api/v1/rules for cfg without an engine and parses it. */
static cJSON *rules_doc(const struct config *cfg) {
  struct buf out;
  buf_init(&out, 1 << 20);
  int rc = api_rules_rules_json(NULL, cfg, &out);
  cr_assert_eq(rc, IOCD_OK, "rendering failed: %s", iocd_strerror(rc));
  cJSON *doc = cJSON_Parse(out.data);
  cr_assert_not_null(doc, "not JSON: %s", out.data);
  buf_cleanup(&out);
  return doc;
}

Test(api_rules, lists_a_rule_without_by_with_an_empty_by) {
  struct config *cfg = load_ok(
      HEAD "\"rules\": [{\"name\": \"x\", \"expr\": \"igate.overdue > 5\"}]}");
  cJSON *doc = rules_doc(cfg);
  cJSON *rules = cJSON_GetObjectItemCaseSensitive(doc, "rules");
  cr_assert_eq(cJSON_GetArraySize(rules), 1);
  cJSON *r = cJSON_GetArrayItem(rules, 0);
  cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(r, "name")->valuestring,
                   "x");
  cJSON *by = cJSON_GetObjectItemCaseSensitive(r, "by");
  cr_expect(cJSON_IsArray(by) && cJSON_GetArraySize(by) == 0,
            "by is not an empty array");
  cJSON_Delete(doc);
  config_free(cfg);
}

Test(api_rules, lists_every_rule_of_the_example_configuration) {
  struct load l;
  buf_init(&l.errors, 0);
  l.cfg = NULL;
  l.rc = config_load(EXAMPLE_PATH, &l.cfg, &l.errors);
  cr_assert_eq(l.rc, IOCD_OK, "%s", errors_of(&l));
  cJSON *doc = rules_doc(l.cfg);
  cJSON *rules = cJSON_GetObjectItemCaseSensitive(doc, "rules");
  cr_expect_eq((size_t)cJSON_GetArraySize(rules), l.cfg->rules.n);
  cJSON_Delete(doc);
  load_done(&l);
}
