/*
 * Acknowledgements: the audit line every action leaves (read back with
 * cJSON, as a tool reading acks.jsonl would), and the current acks
 * rebuilt from those lines at start, torn last line included.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "alerts/ack.h"
#include "core/clock.h"

/* 2026-12-08 09:15 +07:00 */
#define T0 (INT64_C(1796696100) * NS_PER_SEC)

static struct notice_labels lbl(const char *district) {
  struct notice_labels ls = {0};
  notice_labels_set(&ls, "alertname", "online_share_low");
  notice_labels_set(&ls, "district", district);
  notice_labels_set(&ls, "severity", "warning");
  return ls;
}

/* Line i (0-based) of text, parsed. */
static cJSON *line(const struct buf *b, int i) {
  const char *p = b->data;
  for (; i > 0; i--) {
    p = strchr(p, '\n');
    cr_assert_not_null(p);
    p++;
  }
  const char *e = strchr(p, '\n');
  cr_assert_not_null(e, "every line ends with a newline");
  cJSON *o = cJSON_ParseWithLength(p, (size_t)(e - p));
  cr_assert_not_null(o);
  return o;
}

static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

Test(ack, every_action_leaves_an_audit_line) {
  struct ack_set *s = ack_set_new();
  struct notice_labels ls = lbl("Krông Búk");
  uint64_t id = notice_labels_fingerprint(&ls);
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(ack_put(s, id, &ls, "an.nguyen", "ops-duty",
                       "gọi huyện \"ngay\"", T0, &b),
               IOCD_OK);
  cr_assert_eq(
      ack_remove(s, id, "binh.tran", "anonymous", NULL, T0 + NS_PER_SEC, &b),
      IOCD_OK);
  cr_assert_eq(
      ack_put(s, id, &ls, "an.nguyen", NULL, NULL, T0 + 2 * NS_PER_SEC, &b),
      IOCD_OK);
  cr_assert_eq(ack_expire(s, id, T0 + 3 * NS_PER_SEC, &b), IOCD_OK);
  cJSON *a = line(&b, 0);
  char idt[17];
  snprintf(idt, sizeof idt, "%016llx", (unsigned long long)id);
  cr_assert_str_eq(str(a, "id"), idt);
  cr_assert_str_eq(str(a, "alertname"), "online_share_low");
  cr_assert_str_eq(str(a, "action"), "ack");
  cr_assert_str_eq(str(a, "by"), "an.nguyen");
  cr_assert_str_eq(str(a, "principal"), "ops-duty",
                   "who made the request, beside whom it names");
  cr_assert_str_eq(str(a, "comment"), "gọi huyện \"ngay\"");
  cr_assert_eq(cJSON_GetObjectItem(a, "at")->valuedouble,
               (double)(T0 / NS_PER_MS));
  const cJSON *labels = cJSON_GetObjectItem(a, "labels");
  cr_assert_str_eq(str(labels, "district"), "Krông Búk");
  cJSON *u = line(&b, 1);
  cr_assert_str_eq(str(u, "action"), "unack");
  cr_assert_str_eq(str(u, "by"), "binh.tran");
  cr_assert_str_eq(str(u, "principal"), "anonymous");
  cJSON *p = line(&b, 2);
  cr_assert(cJSON_IsNull(cJSON_GetObjectItem(p, "principal")),
            "a principal not known is null, not left out");
  cJSON_Delete(p);
  cr_assert(cJSON_IsNull(cJSON_GetObjectItem(u, "comment")));
  cJSON *x = line(&b, 3);
  cr_assert_str_eq(str(x, "action"), "expire");
  cr_assert(cJSON_IsNull(cJSON_GetObjectItem(x, "by")));
  cr_assert(cJSON_IsNull(cJSON_GetObjectItem(x, "principal")));
  cr_assert_str_eq(str(cJSON_GetObjectItem(x, "labels"), "district"),
                   "Krông Búk");
  cJSON_Delete(a);
  cJSON_Delete(u);
  cJSON_Delete(x);
  cr_assert_null(ack_find(s, id));
  buf_cleanup(&b);
  notice_labels_cleanup(&ls);
  ack_set_free(s);
}

Test(ack, refuses_what_it_cannot_do) {
  struct ack_set *s = ack_set_new();
  struct notice_labels ls = lbl("Lắk");
  cr_assert_eq(ack_put(s, 1, &ls, "", "ops-duty", NULL, T0, NULL), IOCD_EINVAL);
  cr_assert_eq(ack_put(s, 1, &ls, NULL, "ops-duty", NULL, T0, NULL),
               IOCD_EINVAL, "a principal does not stand in for by");
  cr_assert_eq(ack_remove(s, 1, "an", "ops-duty", NULL, T0, NULL),
               IOCD_ENOTFOUND);
  cr_assert_eq(ack_expire(s, 1, T0, NULL), IOCD_ENOTFOUND);
  cr_assert_eq(ack_count(s), 0);
  notice_labels_cleanup(&ls);
  ack_set_free(s);
}

Test(ack, acking_again_replaces_who_and_when) {
  struct ack_set *s = ack_set_new();
  struct notice_labels ls = lbl("Lắk");
  cr_assert_eq(ack_put(s, 7, &ls, "an", "ops-duty", "một", T0, NULL), IOCD_OK);
  cr_assert_eq(ack_put(s, 7, &ls, "binh", "admin", NULL, T0 + NS_PER_SEC, NULL),
               IOCD_OK);
  cr_assert_eq(ack_count(s), 1);
  const struct ack *k = ack_find(s, 7);
  cr_assert_str_eq(k->by, "binh");
  cr_assert_str_eq(k->principal, "admin");
  cr_assert_null(k->comment);
  cr_assert_eq(k->at_ns, T0 + NS_PER_SEC);
  cr_assert_str_eq(k->alertname, "online_share_low");
  cr_assert_eq(ack_at(s, 0), k);
  notice_labels_cleanup(&ls);
  ack_set_free(s);
}

Test(ack, loading_the_trail_restores_the_current_acks) {
  struct ack_set *s = ack_set_new();
  struct notice_labels a = lbl("Krông Búk"), b = lbl("Lắk"), c = lbl("Ea Súp");
  struct buf trail;
  buf_init(&trail, 0);
  ack_put(s, 1, &a, "an", "ops-duty", "x", T0, &trail);
  ack_put(s, 2, &b, "binh", "ops-duty", NULL, T0 + NS_PER_SEC, &trail);
  ack_remove(s, 1, "an", "ops-duty", NULL, T0 + 2 * NS_PER_SEC, &trail);
  ack_put(s, 3, &c, "chi", "anonymous", NULL, T0 + 3 * NS_PER_SEC, &trail);
  ack_expire(s, 3, T0 + 4 * NS_PER_SEC, &trail);
  buf_puts(&trail, "\n   \n{\"id\":\"00000000000000"); /* torn last line */
  struct ack_set *r = ack_set_new();
  size_t bad = 0;
  cr_assert_eq(ack_load(r, trail.data, trail.len, &bad), IOCD_OK);
  cr_assert_eq(bad, 1);
  cr_assert_eq(ack_count(r), 1);
  const struct ack *k = ack_find(r, 2);
  cr_assert_not_null(k);
  cr_assert_str_eq(k->by, "binh");
  cr_assert_str_eq(k->principal, "ops-duty");
  cr_assert_eq(k->at_ns, T0 + NS_PER_SEC);
  cr_assert_str_eq(notice_label_get(&k->labels, "district"), "Lắk");
  cr_assert_null(ack_find(r, 1));
  cr_assert_null(ack_find(r, 3));
  buf_cleanup(&trail);
  notice_labels_cleanup(&a);
  notice_labels_cleanup(&b);
  notice_labels_cleanup(&c);
  ack_set_free(s);
  ack_set_free(r);
}

Test(ack, a_trail_written_before_the_principal_existed_is_replayed) {
  /* Lines as an older iocd wrote them: no "principal" member. */
  static const char trail[] =
      "{\"id\":\"0000000000000001\",\"alertname\":\"feed_silent\","
      "\"labels\":{\"alertname\":\"feed_silent\",\"district\":\"Lắk\"},"
      "\"action\":\"ack\",\"by\":\"an.nguyen\",\"at\":1796696100000,"
      "\"comment\":null}\n"
      "{\"id\":\"0000000000000002\",\"alertname\":\"feed_silent\","
      "\"labels\":{\"alertname\":\"feed_silent\",\"district\":\"Ea Súp\"},"
      "\"action\":\"ack\",\"by\":\"binh\",\"at\":1796696101000,"
      "\"comment\":\"x\"}\n"
      "{\"id\":\"0000000000000002\",\"alertname\":\"feed_silent\","
      "\"labels\":{},\"action\":\"unack\",\"by\":\"binh\","
      "\"at\":1796696102000,\"comment\":null}\n"
      /* and one from now on, beside them */
      "{\"id\":\"0000000000000003\",\"alertname\":\"feed_silent\","
      "\"labels\":{\"district\":\"Krông Búk\"},\"action\":\"ack\","
      "\"by\":\"chi\",\"principal\":\"ops-duty\",\"at\":1796696103000,"
      "\"comment\":null}\n";
  struct ack_set *s = ack_set_new();
  size_t bad = 9;
  cr_assert_eq(ack_load(s, trail, sizeof trail - 1, &bad), IOCD_OK);
  cr_assert_eq(bad, 0, "a line without principal is not a bad line");
  cr_assert_eq(ack_count(s), 2);
  const struct ack *old = ack_find(s, 1);
  cr_assert_not_null(old);
  cr_assert_str_eq(old->by, "an.nguyen");
  cr_assert_null(old->principal);
  cr_assert_eq(old->at_ns, T0);
  cr_assert_null(ack_find(s, 2), "taken back");
  const struct ack *now = ack_find(s, 3);
  cr_assert_not_null(now);
  cr_assert_str_eq(now->principal, "ops-duty");
  ack_set_free(s);
}
