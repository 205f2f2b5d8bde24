/*
 * The `alert_acks` point of an acknowledgement (alerts/records.c), as the
 * line InfluxDB receives: one table of actions (ack, unack, expire) on
 * alerts of districts whose names have diacritics, spaces and apostrophes,
 * each with the exact line expected, so that a tag, a field or its type
 * that changes fails here before the dashboard's queries go empty.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "alerts/records.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/lp.h"

/* 2026-12-07T11:28:22.874Z, the time of the acks in docs/alerts.md. */
#define AT INT64_C(1796642902874000000)

struct ack_case {
  const char *what;
  const char *labels[12]; /* name, value, ...; NULL ends */
  struct notify_ack_action act;
  const char *want; /* the line, '\n' included */
};

static void labels_of(const char *const *kv, struct notice_labels *out) {
  *out = (struct notice_labels){0};
  for (size_t i = 0; kv[i]; i += 2) {
    cr_assert_eq(notice_labels_set(out, kv[i], kv[i + 1]), IOCD_OK);
  }
}

static const struct ack_case ack_cases[] = {
    /* The example of docs/alerts.md. */
    {"an ack: who, the token, the comment, and the time it took",
     {"alertname", "online_share_low", "district", "Ea H'Leo", "severity",
      "warning", NULL},
     {.action = "ack",
      .id = UINT64_C(0xb72f4714748c5f61),
      .by = "an.nguyen",
      .principal = "anonymous",
      .comment = "đã gọi Văn phòng HĐND-UBND huyện",
      .at_ns = AT,
      .fired_ns = AT - INT64_C(754500) * NS_PER_MS},
     "alert_acks,action=ack,district=Ea\\ H'Leo,rule=online_share_low,"
     "severity=warning by=\"an.nguyen\",principal=\"anonymous\","
     "comment=\"đã gọi Văn phòng HĐND-UBND huyện\","
     "alert_id=\"b72f4714748c5f61\",fired_at=1796642148374i,"
     "seconds_to_ack=754.5 1796642902874000000\n"},
    {"an ack without a token or a comment, within a second of firing",
     {"alertname", "feed_silent", "district", "M'Đrắk", "severity", "critical",
      "system", "igate", NULL},
     {.action = "ack",
      .id = UINT64_C(0x0123456789abcdef),
      .by = "bình",
      .at_ns = AT,
      .fired_ns = AT - 250 * NS_PER_MS},
     "alert_acks,action=ack,district=M'Đrắk,rule=feed_silent,"
     "severity=critical,system=igate by=\"bình\","
     "alert_id=\"0123456789abcdef\",fired_at=1796642902624i,"
     "seconds_to_ack=0.25 1796642902874000000\n"},
    {"taken back: when it fired, but no time to acknowledge",
     {"alertname", "online_share_low", "district", "Buôn Ma Thuột", "severity",
      "warning", NULL},
     {.action = "unack",
      .id = UINT64_C(0xfedcba9876543210),
      .by = "an.nguyen",
      .principal = "anonymous",
      .at_ns = AT,
      .fired_ns = AT - 60 * NS_PER_SEC},
     "alert_acks,action=unack,district=Buôn\\ Ma\\ Thuột,"
     "rule=online_share_low,severity=warning by=\"an.nguyen\","
     "principal=\"anonymous\",alert_id=\"fedcba9876543210\","
     "fired_at=1796642842874i 1796642902874000000\n"},
    {"ended as the alert resolved: nobody did it",
     {"alertname", "online_share_low", "district", "Ea H'Leo", "severity",
      "warning", NULL},
     {.action = "expire",
      .id = UINT64_C(0xb72f4714748c5f61),
      .at_ns = AT,
      .fired_ns = AT - 3600 * NS_PER_SEC},
     "alert_acks,action=expire,district=Ea\\ H'Leo,rule=online_share_low,"
     "severity=warning alert_id=\"b72f4714748c5f61\","
     "fired_at=1796639302874i 1796642902874000000\n"},
    {"an episode not known: only the id",
     {"alertname", "online_share_low", "district", "Krông Búk", NULL},
     {.action = "expire", .id = 1, .at_ns = AT},
     "alert_acks,action=expire,district=Krông\\ Búk,rule=online_share_low "
     "alert_id=\"0000000000000001\" 1796642902874000000\n"},
    {"empty labels and labels named like the point's own are left out; "
     "quotes and commas escaped",
     {"alertname", "x", "by", "someone", "action", "a", "district",
      "Ea Súp, \"mới\"", "team", "", NULL},
     {.action = "ack",
      .id = 2,
      .by = "c\\d",
      .comment = "\"gấp\", xem ngay",
      .at_ns = AT,
      .fired_ns = AT - NS_PER_SEC},
     "alert_acks,action=ack,district=Ea\\ Súp\\,\\ \"mới\",rule=x "
     "by=\"c\\\\d\",comment=\"\\\"gấp\\\", xem ngay\","
     "alert_id=\"0000000000000002\",fired_at=1796642901874i,"
     "seconds_to_ack=1 1796642902874000000\n"},
};

Test(alert_ack_record_point, writes_each_action_as_its_exact_line) {
  struct point_batch pb;
  pb_init(&pb);
  for (size_t i = 0; i < sizeof ack_cases / sizeof ack_cases[0]; i++) {
    const struct ack_case *c = &ack_cases[i];
    struct notice_labels ls;
    labels_of(c->labels, &ls);
    struct notify_ack_action act = c->act;
    act.labels = &ls;
    cr_assert_eq(alert_ack_record_point(&pb, &act), IOCD_OK, "%s", c->what);
    /* The batch is reused: one point each time. */
    cr_assert_eq(pb.npoints, 1, "%s", c->what);
    struct buf line;
    buf_init(&line, 0);
    cr_assert_eq(lp_append_point(&line, &pb, &pb.points[0]), IOCD_OK, "%s",
                 c->what);
    cr_assert_eq(buf_putc(&line, '\0'), IOCD_OK);
    cr_expect_str_eq(line.data, c->want, "%s", c->what);
    buf_cleanup(&line);
    notice_labels_cleanup(&ls);
  }
  pb_cleanup(&pb);
}

Test(alert_ack_record_point, takes_the_rule_tag_only_from_alertname) {
  struct point_batch pb;
  pb_init(&pb);
  static const struct notice_labels none = {0};
  struct notify_ack_action act = {
      .action = "unack", .id = 3, .labels = &none, .by = "x", .at_ns = AT};
  cr_assert_eq(alert_ack_record_point(&pb, &act), IOCD_OK);
  const struct point *p = &pb.points[0];
  cr_expect_null(pb_tag_get(&pb, p, "rule"));
  cr_expect_not_null(pb_tag_get(&pb, p, "action"));
  cr_expect_eq(p->ntags, 1);
  pb_cleanup(&pb);
}
