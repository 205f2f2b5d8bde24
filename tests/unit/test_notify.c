/*
 * What `iocd check` finds in alert delivery beyond the loader: a template
 * that does not compile, reported at the file, line and column of the
 * mistake, and an engine event's id, the one the API and notifications
 * show for an alert.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "alerts/alerts.h"
#include "alerts/notify.h"
#include "tests/unit/config_fixture.h"

#define RECEIVERS                                                       \
  " \"notifications\": {\"receivers\": [{\"name\": \"ops\", \"type\": " \
  "\"webhook\", \"url\": \"http://127.0.0.1:9/hook\"}],\n"              \
  "  \"route\": {\"receiver\": \"ops\"},\n"

Test(notify_check, names_the_place_of_a_template_mistake) {
  static const struct {
    const char *templates;
    const char *want;
  } cases[] = {
      {"  \"templates\": {\"subject\": \"[{{severity}}] {{districtt}}\"}}}\n",
       "iocd.jsonc:4:44: notifications.templates.subject: unknown field "
       "{{districtt}}"},
      {"  \"templates\": {\"text\": \"{{#alerts}}{{district}}\"}}}\n",
       "iocd.jsonc:4:26: notifications.templates.text: {{#alerts}} is not "
       "closed"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[1024];
    snprintf(text, sizeof text, HEAD RECEIVERS "%s", cases[i].templates);
    struct config *cfg = load_ok(text);
    struct iocd_err err = {{0}};
    cr_expect_neq(alerts_check(cfg, &err), IOCD_OK, "case %zu", i);
    cr_expect(strncmp(err.msg, cases[i].want, strlen(cases[i].want)) == 0,
              "case %zu: got %s\nwant %s", i, err.msg, cases[i].want);
    config_free(cfg);
  }
}

Test(notify_check, accepts_the_default_texts_and_a_valid_override) {
  struct config *cfg = load_ok(
      HEAD RECEIVERS
      "  \"templates\": {\"subject\": \"[{{severity}}] {{district}}\"}}}\n");
  struct iocd_err err = {{0}};
  cr_expect_eq(alerts_check(cfg, &err), IOCD_OK, "%s", err.msg);
  config_free(cfg);
}
