/*
 * Silences: what they match and when, the ones from the configuration
 * (stable ids, read only) beside the API's, collection after the
 * retention, and data_dir/silences.json written and read back.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "alerts/silence.h"
#include "core/clock.h"

#define HOUR(n) ((int64_t)(n)*3600 * NS_PER_SEC)
/* 2026-12-08 07:30 +07:00 */
#define T0 (INT64_C(1796689800) * NS_PER_SEC)

static struct config_matcher krong = {"district", CONFIG_MATCH_EQ, "Krông Búk"};

static struct notice_labels lbl(const char *district) {
  struct notice_labels ls = {0};
  notice_labels_set(&ls, "alertname", "feed_silent");
  notice_labels_set(&ls, "district", district);
  return ls;
}

static struct silence_spec spec(int64_t starts, int64_t ends) {
  return (struct silence_spec){.matchers = &krong,
                               .nmatchers = 1,
                               .starts_ns = starts,
                               .ends_ns = ends,
                               .created_by = "admin",
                               .principal = "ops-duty",
                               .comment = "bảo trì"};
}

Test(silence, mutes_matching_alerts_while_it_is_active) {
  struct silence_set *s = silence_set_new();
  struct silence_spec sp = spec(T0 + HOUR(1), T0 + HOUR(3));
  char id[17];
  cr_assert_eq(silence_add(s, &sp, UINT64_C(0xabcdef0123456789), T0, id, NULL),
               IOCD_OK);
  cr_assert_str_eq(id, "abcdef0123456789");
  struct notice_labels kb = lbl("Krông Búk"), lak = lbl("Lắk");
  cr_assert_null(silence_matching(s, &kb, T0), "pending");
  cr_assert_not_null(silence_matching(s, &kb, T0 + HOUR(1)));
  cr_assert_null(silence_matching(s, &lak, T0 + HOUR(1)));
  cr_assert_null(silence_matching(s, &kb, T0 + HOUR(3)), "ends excluded");
  const struct silence *x = silence_get(s, id);
  cr_assert_eq(silence_state_at(x, T0), SILENCE_PENDING);
  cr_assert_eq(silence_state_at(x, T0 + HOUR(2)), SILENCE_ACTIVE);
  cr_assert_str_eq(silence_state_name(silence_state_at(x, T0 + HOUR(4))),
                   "expired");
  cr_assert_str_eq(x->comment, "bảo trì");
  cr_assert_eq(
      silence_add(s, &sp, UINT64_C(0xabcdef0123456789), T0, NULL, NULL),
      IOCD_ESTATE, "the id is taken");
  notice_labels_cleanup(&kb);
  notice_labels_cleanup(&lak);
  silence_set_free(s);
}

Test(silence, refuses_what_would_silence_too_much_or_nothing) {
  struct silence_set *s = silence_set_new();
  struct iocd_err err = {{0}};
  struct config_matcher any = {"district", CONFIG_MATCH_RE, ".*"};
  struct silence_spec sp = spec(T0, T0 + HOUR(1));
  sp.matchers = &any;
  cr_assert_eq(silence_add(s, &sp, 1, T0, NULL, &err), IOCD_EINVAL);
  cr_assert_str_eq(err.msg,
                   "a silence needs a matcher that does not match an empty "
                   "label (it would silence every alert)");
  sp = spec(T0 - HOUR(2), T0 - HOUR(1));
  cr_assert_eq(silence_add(s, &sp, 2, T0, NULL, &err), IOCD_EINVAL);
  cr_assert_str_eq(err.msg, "the silence ends in the past");
  sp = spec(T0 + HOUR(2), T0 + HOUR(1));
  cr_assert_eq(silence_add(s, &sp, 3, T0, NULL, &err), IOCD_EINVAL);
  cr_assert_str_eq(err.msg, "a silence must end after it starts");
  sp = spec(T0, T0 + HOUR(1));
  sp.nmatchers = 0;
  cr_assert_eq(silence_add(s, &sp, 4, T0, NULL, &err), IOCD_EINVAL);
  cr_assert_eq(silence_count(s), 0);
  silence_set_free(s);
}

Test(silence, config_silences_keep_their_id_and_are_read_only) {
  struct config_silence cs[2] = {
      {.matchers = &krong,
       .nmatchers = 1,
       .starts_ms = 0,
       .ends_ms = (T0 + HOUR(8)) / NS_PER_MS,
       .created_by = "admin",
       .comment = "bảo trì"},
  };
  cs[1] = cs[0]; /* written twice: kept once */
  struct silence_set *a = silence_set_new();
  struct silence_set *b = silence_set_new();
  struct silence_spec sp = spec(T0, T0 + HOUR(1));
  cr_assert_eq(silence_add(a, &sp, 99, T0, NULL, NULL), IOCD_OK);
  cr_assert_eq(silence_set_config(a, cs, 2, T0, NULL), IOCD_OK);
  cr_assert_eq(silence_set_config(b, cs, 1, T0 + HOUR(1), NULL), IOCD_OK);
  cr_assert_eq(silence_count(a), 2);
  const struct silence *x = silence_at(a, 0);
  cr_assert(x->from_config);
  cr_assert_eq(x->starts_ns, T0, "starts 0: now");
  cr_assert_str_eq(x->id, silence_at(b, 0)->id, "the same id after a restart");
  char id[17];
  memcpy(id, x->id, sizeof id);
  cr_assert_eq(silence_expire(a, id, "ops-duty", T0), IOCD_ESTATE);
  cr_assert_eq(silence_delete(a, id), IOCD_ESTATE);
  /* A reload without it: the API's silence stays. */
  cr_assert_eq(silence_set_config(a, NULL, 0, T0, NULL), IOCD_OK);
  cr_assert_eq(silence_count(a), 1);
  cr_assert_str_eq(silence_at(a, 0)->id, "0000000000000063");
  /* A bad entry leaves the set as it was. */
  struct config_matcher bad = {"district", CONFIG_MATCH_RE, "(x"};
  cs[1].matchers = &bad;
  struct iocd_err err = {{0}};
  cr_assert_eq(silence_set_config(a, cs, 2, T0, &err), IOCD_EINVAL);
  cr_assert(strncmp(err.msg, "silences[1]: matchers[0]: district=~(x", 37) == 0,
            "%s", err.msg);
  cr_assert_eq(silence_count(a), 1);
  silence_set_free(a);
  silence_set_free(b);
}

Test(silence, expire_ends_it_now_and_gc_collects_after_the_retention) {
  struct silence_set *s = silence_set_new();
  struct silence_spec act = spec(T0, T0 + HOUR(4));
  struct silence_spec pend = spec(T0 + HOUR(2), T0 + HOUR(4));
  cr_assert_eq(silence_add(s, &act, 1, T0, NULL, NULL), IOCD_OK);
  cr_assert_eq(silence_add(s, &pend, 2, T0, NULL, NULL), IOCD_OK);
  cr_assert_null(silence_get(s, "0000000000000001")->expired_by);
  cr_assert_eq(silence_expire(s, "0000000000000001", "ops-duty", T0 + HOUR(1)),
               IOCD_OK);
  cr_assert_eq(silence_expire(s, "0000000000000002", NULL, T0 + HOUR(1)),
               IOCD_OK);
  cr_assert_eq(silence_expire(s, "0000000000000001", "admin", T0 + HOUR(1)),
               IOCD_ESTATE);
  cr_assert_str_eq(silence_get(s, "0000000000000001")->expired_by, "ops-duty",
                   "who ended it, kept by a refused second try");
  cr_assert_null(silence_get(s, "0000000000000002")->expired_by);
  cr_assert_eq(silence_expire(s, "00000000000000ff", "ops-duty", T0),
               IOCD_ENOTFOUND);
  struct notice_labels kb = lbl("Krông Búk");
  cr_assert_null(silence_matching(s, &kb, T0 + HOUR(3)),
                 "the pending one never starts");
  notice_labels_cleanup(&kb);
  cr_assert_eq(silence_get(s, "0000000000000002")->starts_ns, T0 + HOUR(1));
  cr_assert_eq(silence_gc(s, T0 + HOUR(1) + 5 * HOUR(24) - 1, 0), 0);
  cr_assert_eq(silence_gc(s, T0 + HOUR(1) + 5 * HOUR(24), 0), 2);
  cr_assert_eq(silence_count(s), 0);
  cr_assert_eq(silence_add(s, &act, 3, T0, NULL, NULL), IOCD_OK);
  cr_assert_eq(silence_gc(s, T0 + HOUR(5), HOUR(1)), 1, "own retention");
  cr_assert_eq(silence_add(s, &act, 4, T0, NULL, NULL), IOCD_OK);
  cr_assert_eq(silence_delete(s, "0000000000000004"), IOCD_OK);
  cr_assert_eq(silence_delete(s, "0000000000000004"), IOCD_ENOTFOUND);
  silence_set_free(s);
}

Test(silence, the_api_silences_go_to_json_and_back) {
  struct silence_set *s = silence_set_new();
  struct config_matcher ms[2] = {
      {"district", CONFIG_MATCH_EQ, "Krông \"Búk\""},
      {"alertname", CONFIG_MATCH_NRE, "feed_.*"},
  };
  struct silence_spec sp = spec(T0, T0 + HOUR(2));
  sp.matchers = ms;
  sp.nmatchers = 2;
  cr_assert_eq(silence_add(s, &sp, 0x42, T0, NULL, NULL), IOCD_OK);
  sp.principal = NULL;
  cr_assert_eq(silence_add(s, &sp, 0x43, T0, NULL, NULL), IOCD_OK);
  cr_assert_eq(silence_expire(s, "0000000000000043", "admin", T0 + HOUR(1)),
               IOCD_OK);
  struct config_silence cs = {.matchers = &krong,
                              .nmatchers = 1,
                              .ends_ms = (T0 + HOUR(1)) / NS_PER_MS};
  cr_assert_eq(silence_set_config(s, &cs, 1, T0, NULL), IOCD_OK);
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(silence_set_to_json(s, &b), IOCD_OK);
  cr_assert_null(strstr(b.data, "\"from_config\""));
  struct silence_set *r = silence_set_new();
  size_t skipped = 9;
  cr_assert_eq(silence_set_from_json(r, b.data, b.len, &skipped, NULL),
               IOCD_OK);
  cr_assert_eq(skipped, 0);
  cr_assert_eq(silence_count(r), 2, "only the API's silences are written");
  const struct silence *x = silence_at(r, 0);
  cr_assert_str_eq(x->id, "0000000000000042");
  cr_assert_eq(x->nmatchers, 2);
  cr_assert_str_eq(x->matchers[0].value, "Krông \"Búk\"");
  cr_assert_eq(x->matchers[1].op, CONFIG_MATCH_NRE);
  cr_assert_eq(x->starts_ns, T0);
  cr_assert_eq(x->ends_ns, T0 + HOUR(2));
  cr_assert_str_eq(x->created_by, "admin");
  cr_assert_str_eq(x->principal, "ops-duty");
  cr_assert_null(x->expired_by);
  cr_assert_str_eq(x->comment, "bảo trì");
  cr_assert_not(x->from_config);
  const struct silence *y = silence_at(r, 1);
  cr_assert_null(y->principal);
  cr_assert_str_eq(y->expired_by, "admin");
  cr_assert_eq(y->ends_ns, T0 + HOUR(1));
  /* Loading again skips the ids already there. */
  cr_assert_eq(silence_set_from_json(r, b.data, b.len, NULL, NULL), IOCD_OK);
  cr_assert_eq(silence_count(r), 2);
  buf_cleanup(&b);
  silence_set_free(s);
  silence_set_free(r);
}

Test(silence, a_damaged_file_loads_what_it_can) {
  static const char doc[] =
      "{\"silences\":["
      "{\"id\":\"zz\",\"matchers\":[],\"starts_ms\":1,\"ends_ms\":2},"
      "{\"id\":\"0000000000000001\",\"matchers\":[{\"name\":\"district\","
      "\"op\":\"=\",\"value\":\"Lắk\"}],\"starts_ms\":1,\"ends_ms\":2},"
      "{\"id\":\"0000000000000002\",\"matchers\":[{\"name\":\"district\","
      "\"op\":\"~\",\"value\":\"Lắk\"}],\"starts_ms\":1,\"ends_ms\":2}]}";
  struct silence_set *s = silence_set_new();
  size_t skipped = 0;
  struct iocd_err err = {{0}};
  cr_assert_eq(silence_set_from_json(s, doc, strlen(doc), &skipped, &err),
               IOCD_OK);
  cr_assert_eq(skipped, 2);
  cr_assert_str_eq(err.msg, "silences[0].id: expected 16 hex digits");
  cr_assert_eq(silence_count(s), 1);
  cr_assert_eq(silence_set_from_json(s, "[1,2", 4, NULL, &err), IOCD_EPARSE);
  cr_assert_str_eq(err.msg, "expected a JSON object with a \"silences\" array");
  silence_set_free(s);
}

Test(silence, a_file_written_before_the_principal_existed_loads) {
  static const char doc[] =
      "{\"silences\":[{\"id\":\"0000000000000007\",\"matchers\":[{"
      "\"name\":\"district\",\"op\":\"=\",\"value\":\"Lắk\"}],"
      "\"starts_ms\":1796689800000,\"ends_ms\":1796697000000,"
      "\"created_by\":\"an.nguyen\",\"comment\":\"bảo trì\","
      "\"updated_ms\":1796689800000}]}";
  struct silence_set *s = silence_set_new();
  size_t skipped = 9;
  cr_assert_eq(silence_set_from_json(s, doc, strlen(doc), &skipped, NULL),
               IOCD_OK);
  cr_assert_eq(skipped, 0);
  const struct silence *x = silence_get(s, "0000000000000007");
  cr_assert_not_null(x);
  cr_assert_str_eq(x->created_by, "an.nguyen");
  cr_assert_null(x->principal);
  cr_assert_null(x->expired_by);
  /* Written again, the principal not known is null. */
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(silence_set_to_json(s, &b), IOCD_OK);
  buf_putc(&b, '\0');
  cr_assert_not_null(strstr(b.data, "\"principal\":null"), "%s", b.data);
  cr_assert_not_null(strstr(b.data, "\"expired_by\":null"), "%s", b.data);
  buf_cleanup(&b);
  silence_set_free(s);
}
