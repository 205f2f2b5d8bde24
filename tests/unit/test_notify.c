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
#include "alerts/route.h"
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

/* The receivers the example configuration's route tree picks for labels
 * ("name=value" pairs), in order, joined by spaces. */
static void receivers_for(const struct route_tree *t, const char *const *kv,
                          size_t n, char *out, size_t cap) {
  struct notice_labels ls = {0};
  for (size_t i = 0; i < n; i += 2) {
    cr_assert_eq(notice_labels_set(&ls, kv[i], kv[i + 1]), IOCD_OK);
  }
  const struct route *hits[16];
  size_t nh = route_match(t, &ls, hits, 16);
  out[0] = '\0';
  for (size_t i = 0; i < nh; i++) {
    size_t used = strlen(out);
    snprintf(out + used, cap - used, "%s%s", i ? " " : "", hits[i]->receiver);
  }
  notice_labels_cleanup(&ls);
}

Test(notify_check, the_example_routes_every_alert_to_the_operators_too) {
  struct load l;
  buf_init(&l.errors, 0);
  l.cfg = NULL;
  cr_assert_eq(config_load(EXAMPLE_PATH, &l.cfg, &l.errors), IOCD_OK, "%s",
               errors_of(&l));
  struct iocd_err err = {{0}};
  struct route_tree *t = route_tree_new(&l.cfg->notify.route, &err);
  cr_assert_not_null(t, "%s", err.msg);
  char got[256];
  static const char *const warning[] = {"alertname", "online_share_low",
                                        "severity",  "warning",
                                        "district",  "Ea H'Leo"};
  receivers_for(t, warning, 6, got, sizeof got);
  cr_expect_str_eq(got, "wall operators");
  static const char *const critical[] = {"alertname", "online_share_low",
                                         "severity",  "critical",
                                         "district",  "Lắk"};
  receivers_for(t, critical, 6, got, sizeof got);
  cr_expect_str_eq(got, "wall vice_chair operators");
  static const char *const silent[] = {"alertname", "feed_silent", "severity",
                                       "warning",   "system",      "igate"};
  receivers_for(t, silent, 6, got, sizeof got);
  cr_expect_str_eq(got, "wall operators");
  route_tree_free(t);
  load_done(&l);
}
