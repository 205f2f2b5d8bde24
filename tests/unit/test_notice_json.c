/*
 * The notice's JSON form (alerts/notice_json.c): what the outbox writes
 * reads back as the same notice, every field, byte for byte (Vietnamese
 * text, 64-bit ids and nanosecond times, doubles to the last bit, NaN and
 * the infinities), and a wrong file is refused with the member named.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "alerts/notice.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"

static void set(struct notice_labels *ls, const char *k, const char *v) {
  cr_assert_eq(notice_labels_set(ls, k, v), IOCD_OK);
}

/* A notice with every field set, two alerts (one acknowledged, one
 * resolved without a value). */
static struct notice *full_notice(void) {
  struct notice *n = notice_new();
  cr_assert_not_null(n);
  n->id = UINT64_C(0xfedcba9876543210);
  n->receiver = mem_strdup("giám đốc \"sở\"\\n");
  n->kind = NOTICE_ESCALATION;
  n->tier = 2;
  n->group_key =
      mem_strdup("{}/{severity=\"critical\"}:{district=\"Krông Búk\"}");
  set(&n->group_labels, "district", "Krông Búk");
  set(&n->group_labels, "alertname", "online_share_low");
  n->created_ns = INT64_C(1796700000123456789);
  n->text = mem_strdup("Dòng 1\nDòng 2\t\x01 😀 </script>");
  n->attempts = 7;
  n->nalerts = 2;
  n->alerts = calloc(2, sizeof *n->alerts);
  cr_assert_not_null(n->alerts);
  struct notice_alert *a = &n->alerts[0];
  set(&a->labels, "alertname", "online_share_low");
  set(&a->labels, "district", "Ea H'Leo");
  set(&a->labels, "severity", "critical");
  set(&a->annotations, "summary", "Tỷ lệ trực tuyến 10,61% < 15%");
  a->fingerprint = notice_labels_fingerprint(&a->labels);
  a->status = NOTICE_FIRING;
  a->starts_ns = INT64_C(1796690000999999999);
  a->has_value = true;
  a->value = 0.1061;
  a->has_threshold = true;
  a->threshold = 0.1 + 0.2;
  a->reason = mem_strdup("tỷ lệ dưới ngưỡng 15 phút");
  a->acked_by = mem_strdup("Nguyễn Văn A");
  a->acked_ns = INT64_C(1796695000000000001);
  a->ack_comment = mem_strdup("đang xử lý");
  a = &n->alerts[1];
  set(&a->labels, "alertname", "feed_silent");
  set(&a->labels, "system", "igate");
  a->fingerprint = UINT64_MAX;
  a->status = NOTICE_RESOLVED;
  a->starts_ns = INT64_MIN;
  a->ends_ns = INT64_MAX;
  return n;
}

static void assert_labels_eq(const struct notice_labels *a,
                             const struct notice_labels *b) {
  cr_assert_eq(a->n, b->n);
  for (size_t i = 0; i < a->n; i++) {
    cr_assert_str_eq(a->v[i].name, b->v[i].name);
    cr_assert_str_eq(a->v[i].value, b->v[i].value);
  }
}

static void assert_opt_str_eq(const char *a, const char *b) {
  if (!a || !b) {
    cr_assert(a == b, "one is NULL: %s / %s", a ? a : "(null)",
              b ? b : "(null)");
    return;
  }
  cr_assert_str_eq(a, b);
}

/* Bits, so that -0 differs from 0; any NaN is NaN (JSON has one). */
static void assert_same_double(double a, double b) {
  if (isnan(a) && isnan(b)) {
    return;
  }
  cr_assert(memcmp(&a, &b, sizeof a) == 0, "%.17g != %.17g", a, b);
}

static void assert_notice_eq(const struct notice *a, const struct notice *b) {
  cr_assert_eq(a->id, b->id);
  assert_opt_str_eq(a->receiver, b->receiver);
  cr_assert_eq(a->kind, b->kind);
  cr_assert_eq(a->tier, b->tier);
  assert_opt_str_eq(a->group_key, b->group_key);
  assert_labels_eq(&a->group_labels, &b->group_labels);
  cr_assert_eq(a->created_ns, b->created_ns);
  assert_opt_str_eq(a->text, b->text);
  cr_assert_eq(a->attempts, b->attempts);
  cr_assert_eq(a->nalerts, b->nalerts);
  for (size_t i = 0; i < a->nalerts; i++) {
    const struct notice_alert *x = &a->alerts[i], *y = &b->alerts[i];
    cr_assert_eq(x->fingerprint, y->fingerprint);
    assert_labels_eq(&x->labels, &y->labels);
    assert_labels_eq(&x->annotations, &y->annotations);
    cr_assert_eq(x->status, y->status);
    cr_assert_eq(x->starts_ns, y->starts_ns);
    cr_assert_eq(x->ends_ns, y->ends_ns);
    cr_assert_eq(x->has_value, y->has_value);
    assert_same_double(x->value, y->value);
    cr_assert_eq(x->has_threshold, y->has_threshold);
    assert_same_double(x->threshold, y->threshold);
    assert_opt_str_eq(x->reason, y->reason);
    assert_opt_str_eq(x->acked_by, y->acked_by);
    cr_assert_eq(x->acked_ns, y->acked_ns);
    assert_opt_str_eq(x->ack_comment, y->ack_comment);
  }
}

/* Writes n, reads it back, checks equality and that writing the copy gives
 * the same bytes; returns the copy. */
static struct notice *round_trip(const struct notice *n) {
  struct buf b, b2;
  buf_init(&b, 0);
  buf_init(&b2, 0);
  cr_assert_eq(notice_to_json(n, &b), IOCD_OK);
  struct notice *back = NULL;
  struct iocd_err err = {{0}};
  int rc = notice_from_json(b.data, b.len, &back, &err);
  cr_assert_eq(rc, IOCD_OK, "%s in %s", err.msg, b.data);
  assert_notice_eq(n, back);
  cr_assert_eq(notice_to_json(back, &b2), IOCD_OK);
  cr_assert_str_eq(b.data, b2.data);
  buf_cleanup(&b);
  buf_cleanup(&b2);
  return back;
}

Test(notice_json, every_field_round_trips_exactly) {
  struct notice *n = full_notice();
  notice_free(round_trip(n));
  notice_free(n);
}

Test(notice_json, an_empty_notice_round_trips_with_nulls_kept) {
  struct notice *n = notice_new();
  notice_free(round_trip(n));
  notice_free(n);
}

Test(notice_json, every_kind_and_status_round_trips) {
  static const enum notice_kind kinds[] = {NOTICE_ALERTS,   NOTICE_ESCALATION,
                                           NOTICE_FLAPPING, NOTICE_STORM,
                                           NOTICE_DIGEST,   NOTICE_DEAD_LETTER};
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    struct notice *n = full_notice();
    n->kind = kinds[i];
    n->alerts[0].status = i % 2 ? NOTICE_RESOLVED : NOTICE_FIRING;
    struct notice *back = round_trip(n);
    cr_assert_eq(back->kind, kinds[i]);
    notice_free(back);
    notice_free(n);
  }
}

Test(notice_json, doubles_keep_every_bit) {
  static const double values[] = {
      0.1061,
      0.1 + 0.2,
      1.0 / 3.0,
      -0.0,
      0.0,
      5e-324,
      DBL_MIN,
      DBL_MAX,
      -DBL_MAX,
      1e21,
      1410312,
      123456789.123456789,
      (double)NAN,
      (double)INFINITY,
      -(double)INFINITY,
      2.5e-8,
      -7.0,
      9007199254740993.0,
  };
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    struct notice *n = full_notice();
    n->alerts[0].value = values[i];
    n->alerts[0].threshold = -values[i];
    notice_free(round_trip(n));
    notice_free(n);
  }
}

Test(notice_json, utf8_text_is_written_as_is_not_escaped) {
  struct notice *n = full_notice();
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(notice_to_json(n, &b), IOCD_OK);
  cr_assert_not_null(strstr(b.data, "\"district\":\"Ea H'Leo\""));
  cr_assert_not_null(strstr(b.data, "Tỷ lệ trực tuyến 10,61% < 15%"));
  cr_assert_not_null(strstr(b.data, "\"id\":\"fedcba9876543210\""));
  cr_assert_not_null(strstr(b.data, "\"created_ns\":\"1796700000123456789\""));
  cr_assert_not_null(strstr(b.data, "\"value\":0.1061"));
  buf_cleanup(&b);
  notice_free(n);
}

Test(notice_json, labels_read_in_any_order_come_out_sorted) {
  const char *json =
      "{\"id\":\"000000000000002a\",\"receiver\":\"ops\",\"kind\":\"alerts\","
      "\"group_labels\":{\"z\":\"1\",\"a\":\"2\",\"m\":\"3\"}}";
  struct notice *n = NULL;
  struct iocd_err err = {{0}};
  cr_assert_eq(notice_from_json(json, strlen(json), &n, &err), IOCD_OK, "%s",
               err.msg);
  cr_assert_eq(n->id, 42);
  cr_assert_eq(n->group_labels.n, 3);
  cr_assert_str_eq(n->group_labels.v[0].name, "a");
  cr_assert_str_eq(n->group_labels.v[2].name, "z");
  notice_free(n);
}

struct bad_case {
  const char *json;
  const char *want; /* in the error message */
};

Test(notice_json, a_wrong_member_is_named_in_the_error) {
  static const struct bad_case cases[] = {
      {"", "not JSON"},
      {"{\"id\":", "not JSON"},
      {"[]", "expected a JSON object"},
      {"{}", "notice: id: expected a string of 16 hex digits"},
      {"{\"id\":42}", "id: expected a string of 16 hex digits"},
      {"{\"id\":\"2a\"}", "id: expected a string of 16 hex digits"},
      {"{\"id\":\"000000000000002g\"}", "id: expected"},
      {"{\"id\":\"000000000000002a\",\"receiver\":1}",
       "receiver: expected a string"},
      {"{\"id\":\"000000000000002a\",\"kind\":\"alert\"}", "kind: expected"},
      {"{\"id\":\"000000000000002a\",\"kind\":\"alerts\",\"tier\":1.5}",
       "tier: expected an integer"},
      {"{\"id\":\"000000000000002a\",\"kind\":\"alerts\",\"created_ns\":"
       "\"12x\"}",
       "created_ns: expected an integer"},
      {"{\"id\":\"000000000000002a\",\"kind\":\"alerts\",\"created_ns\":"
       "\"99999999999999999999\"}",
       "created_ns: expected an integer"},
      {"{\"id\":\"000000000000002a\",\"kind\":\"alerts\",\"group_labels\":"
       "{\"a\":1}}",
       "group_labels.a: expected a string"},
      {"{\"id\":\"000000000000002a\",\"kind\":\"alerts\",\"group_labels\":"
       "{\"a\":\"1\",\"a\":\"2\"}}",
       "group_labels.a: given twice"},
      {"{\"id\":\"000000000000002a\",\"kind\":\"alerts\",\"alerts\":{}}",
       "alerts: expected an array"},
      {"{\"id\":\"000000000000002a\",\"kind\":\"alerts\",\"alerts\":[1]}",
       "alerts[0]: expected an object"},
      {"{\"id\":\"000000000000002a\",\"kind\":\"alerts\",\"alerts\":[{"
       "\"fingerprint\":\"0000000000000001\",\"status\":\"firing\","
       "\"starts_ns\":\"1\"},{\"fingerprint\":\"0000000000000001\","
       "\"status\":\"up\"}]}",
       "alerts[1].status: expected \"firing\" or \"resolved\""},
      {"{\"id\":\"000000000000002a\",\"kind\":\"alerts\",\"alerts\":[{"
       "\"fingerprint\":\"0000000000000001\",\"status\":\"firing\"}]}",
       "alerts[0].starts_ns: expected an integer"},
      {"{\"id\":\"000000000000002a\",\"kind\":\"alerts\",\"alerts\":[{"
       "\"fingerprint\":\"0000000000000001\",\"status\":\"firing\","
       "\"starts_ns\":\"1\",\"labels\":{\"district\":null}}]}",
       "alerts[0].labels.district: expected a string"},
      {"{\"id\":\"000000000000002a\",\"kind\":\"alerts\",\"alerts\":[{"
       "\"fingerprint\":\"0000000000000001\",\"status\":\"firing\","
       "\"starts_ns\":\"1\",\"value\":\"x\"}]}",
       "alerts[0].value: expected a number"},
      {"{\"id\":\"000000000000002a\",\"kind\":\"alerts\",\"alerts\":[{"
       "\"fingerprint\":\"0000000000000001\",\"status\":\"firing\","
       "\"starts_ns\":\"1\",\"acked_by\":[]}]}",
       "alerts[0].acked_by: expected a string"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct notice *n = (struct notice *)1;
    struct iocd_err err = {{0}};
    int rc = notice_from_json(cases[i].json, strlen(cases[i].json), &n, &err);
    cr_assert_eq(rc, IOCD_EPARSE, "case %zu: %s", i, cases[i].json);
    cr_assert_null(n, "case %zu", i);
    cr_assert_not_null(strstr(err.msg, cases[i].want),
                       "case %zu: got \"%s\", want \"%s\"", i, err.msg,
                       cases[i].want);
  }
}

Test(notice_json, the_length_bounds_the_text_read) {
  const char *json = "{\"id\":\"000000000000002a\",\"kind\":\"alerts\"}GARBAGE";
  struct notice *n = NULL;
  struct iocd_err err = {{0}};
  cr_assert_eq(notice_from_json(json, strlen(json) - 7, &n, &err), IOCD_OK,
               "%s", err.msg);
  notice_free(n);
}
