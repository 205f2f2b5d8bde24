/*
 * What `iocd check` finds in alert delivery beyond the loader: a template
 * that does not compile, reported at the file, line and column of the
 * mistake, and an engine event's id, the one the API and notifications
 * show for an alert. And what the notifications tell of acknowledgements
 * (notify_opts.on_ack), on a loop of their own with data_dir in a
 * temporary directory.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/alerts.h"
#include "alerts/notify.h"
#include "alerts/route.h"
#include "core/clock.h"
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

/* ---- what on_ack hears ---- */

/* The last action on_ack heard, copied, and how many. */
struct heard {
  size_t n;
  char action[16];
  char id[17];
  char rule[64];
  char district[64];
  char by[64]; /* "" for none */
  char principal[64];
  char comment[64];
  int64_t at_ns, fired_ns;
};

static void copy_or_empty(char *out, size_t n, const char *s) {
  snprintf(out, n, "%s", s ? s : "");
}

static void on_ack(void *ud, const struct notify_ack_action *act) {
  struct heard *h = ud;
  h->n++;
  copy_or_empty(h->action, sizeof h->action, act->action);
  snprintf(h->id, sizeof h->id, "%016llx", (unsigned long long)act->id);
  copy_or_empty(h->rule, sizeof h->rule,
                notice_label_get(act->labels, "alertname"));
  copy_or_empty(h->district, sizeof h->district,
                notice_label_get(act->labels, "district"));
  copy_or_empty(h->by, sizeof h->by, act->by);
  copy_or_empty(h->principal, sizeof h->principal, act->principal);
  copy_or_empty(h->comment, sizeof h->comment, act->comment);
  h->at_ns = act->at_ns;
  h->fired_ns = act->fired_ns;
}

static void on_closed(void *ud) {
  *(bool *)ud = true;
}

Test(notify_ack, tells_the_hook_of_each_ack_unack_and_expire) {
  char dir[] = "/tmp/iocd-notify-ack-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char text[1024];
  /* group_wait of an hour: nothing is sent while the test runs. */
  snprintf(text, sizeof text,
           HEAD
           "\"data_dir\": \"%s\",\n"
           "\"notifications\": {\"receivers\": [{\"name\": \"ops\", "
           "\"type\": \"webhook\", \"url\": \"http://127.0.0.1:9/h\"}],\n"
           " \"route\": {\"receiver\": \"ops\", \"group_wait\": \"1h\"}}}\n",
           dir);
  struct config *cfg = load_ok(text);
  uv_loop_t loop;
  cr_assert_eq(uv_loop_init(&loop), 0);
  struct stats *stats = stats_new();
  cr_assert_not_null(stats);
  struct heard h = {0};
  struct notify_opts o = {.loop = &loop,
                          .cfg = cfg,
                          .stats = stats,
                          .on_ack = on_ack,
                          .ack_ud = &h};
  struct notify *n = NULL;
  struct iocd_err err = {{0}};
  cr_assert_eq(notify_new(&o, &n, &err), IOCD_OK, "%s", err.msg);
  notify_restore_done(n);

  int64_t now = clock_realtime_ns();
  int64_t fired = now - 90 * NS_PER_SEC;
  static const struct alert_kv labels[] = {{"district", "Ea H'Leo"}};
  struct alert_event ev = {
      .rule = "online_share_low",
      .labels = labels,
      .nlabels = 1,
      .prev = ALERT_PENDING,
      .state = ALERT_FIRING,
      .severity = "warning",
      .t_ns = fired,
      .active_since_ns = fired - 60 * NS_PER_SEC,
      .firing_since_ns = fired,
      .reason = "test",
  };
  notify_event(n, &ev);
  char id[17];
  notify_event_id(&ev, id);
  cr_expect_eq(h.n, 0, "a firing alert is no action on an ack");

  /* Refused: nothing heard. */
  cr_expect_eq(notify_ack(n, "0123456789abcdef", "x", NULL, NULL, &err),
               IOCD_ENOTFOUND);
  cr_expect_eq(notify_unack(n, id, "x", NULL, &err), IOCD_ENOTFOUND);
  cr_expect_eq(h.n, 0);

  cr_assert_eq(notify_ack(n, id, "an.nguyen", "ops-duty", "đang xử lý", &err),
               IOCD_OK, "%s", err.msg);
  cr_expect_eq(h.n, 1);
  cr_expect_str_eq(h.action, "ack");
  cr_expect_str_eq(h.id, id);
  cr_expect_str_eq(h.rule, "online_share_low");
  cr_expect_str_eq(h.district, "Ea H'Leo");
  cr_expect_str_eq(h.by, "an.nguyen");
  cr_expect_str_eq(h.principal, "ops-duty");
  cr_expect_str_eq(h.comment, "đang xử lý");
  cr_expect_eq(h.fired_ns, fired);
  cr_expect_geq(h.at_ns, now);

  cr_assert_eq(notify_unack(n, id, "bình", "anonymous", &err), IOCD_OK, "%s",
               err.msg);
  cr_expect_eq(h.n, 2);
  cr_expect_str_eq(h.action, "unack");
  cr_expect_str_eq(h.by, "bình");
  cr_expect_str_eq(h.principal, "anonymous");
  cr_expect_str_eq(h.comment, "");
  cr_expect_str_eq(h.district, "Ea H'Leo");
  cr_expect_eq(h.fired_ns, fired);

  /* Acknowledged again, then the alert resolves: the ack ends. */
  cr_assert_eq(notify_ack(n, id, "an.nguyen", NULL, NULL, &err), IOCD_OK);
  cr_expect_eq(h.n, 3);
  ev.prev = ALERT_FIRING;
  ev.state = ALERT_RESOLVED;
  ev.t_ns = clock_realtime_ns();
  notify_event(n, &ev);
  cr_expect_eq(h.n, 4);
  cr_expect_str_eq(h.action, "expire");
  cr_expect_str_eq(h.id, id);
  cr_expect_str_eq(h.by, "");
  cr_expect_str_eq(h.principal, "");
  cr_expect_str_eq(h.district, "Ea H'Leo");
  cr_expect_eq(h.fired_ns, fired, "the episode that resolved");
  /* Resolved once more: no ack left to end. */
  notify_event(n, &ev);
  cr_expect_eq(h.n, 4);

  bool closed = false;
  notify_close(n, on_closed, &closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_expect(closed);
  cr_expect_eq(uv_loop_close(&loop), 0);
  stats_free(stats);
  config_free(cfg);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_expect_eq(system(cmd), 0);
}
