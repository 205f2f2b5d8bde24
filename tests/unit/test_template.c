/*
 * The words of notifications (alerts/template.h): values by the rule's
 * unit (the digits themselves are core/numfmt's, tested in test_core.c),
 * local times and durations, the built-in Vietnamese and English texts of
 * every kind of notice with the exact district names, the overriding
 * templates and the FILE:LINE:COL of their mistakes, and HTML escaping.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/notice.h"
#include "alerts/template.h"
#include "core/buf.h"
#include "core/err.h"
#include "notice_fixture.h"

#define NOW (FX_T0 + 135 * FX_MIN) /* 11:30, 2 h 15 min after the start */
#define GRAFANA "http://grafana.ioc.local:3000"

Test(template_format, formats_values_by_the_rules_unit) {
  struct notice *n = fx_notice(NOTICE_ALERTS, "operators");
  fx_alert(n, "overdue_backlog_high", "Lắk", "warning", NOTICE_FIRING);
  fx_share(n, "Lắk", NOTICE_FIRING);
  fx_annotation(fx_alert(n, "cpu", "Lắk", "warning", NOTICE_FIRING), "unit",
                "percent");
  /* As config/rules/daklak.jsonc says it: an annotation, not a label. */
  fx_annotation(
      fx_alert(n, "resolved_ratio_low", "Lắk", "warning", NOTICE_FIRING),
      "unit", "ratio");
  static const struct {
    int which;
    bool has;
    double v;
    const char *want;
  } cases[] = {
      {0, true, 1410312, "1.410.312"},
      {0, true, 0.1061, "0,11"},
      {1, true, 0.1061, "10,61%"},
      {1, true, 0.3, "30%"},
      {2, true, 10.61, "10,61%"},
      {3, true, 0.1061, "10,61%"},
      {3, true, 0.8, "80%"},
      {0, false, 1, "-"},
      {1, false, 1, "-"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct buf b;
    buf_init(&b, 0);
    cr_assert_eq(template_format_value(&n->alerts[cases[i].which], cases[i].has,
                                       cases[i].v, CONFIG_LANG_VI, &b),
                 IOCD_OK);
    cr_expect_str_eq(b.data, cases[i].want, "case %zu", i);
    buf_cleanup(&b);
  }
  notice_free(n);
}

Test(template_format, writes_local_times_and_durations) {
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(template_format_time(FX_T0, FX_OFFSET, CONFIG_LANG_VI, &b), 0);
  cr_expect_str_eq(b.data, "09:15 ngày 08/12/2026");
  buf_reset(&b);
  cr_assert_eq(template_format_time(FX_T0, FX_OFFSET, CONFIG_LANG_EN, &b), 0);
  cr_expect_str_eq(b.data, "09:15 on 2026-12-08");
  buf_reset(&b);
  /* 23:30 UTC is already the next day in Đắk Lắk. */
  cr_assert_eq(template_format_time(FX_T0 + (21 * 60 + 15) * FX_MIN, FX_OFFSET,
                                    CONFIG_LANG_VI, &b),
               0);
  cr_expect_str_eq(b.data, "06:30 ngày 09/12/2026");
  static const struct {
    int64_t d;
    const char *vi, *en;
  } cases[] = {
      {0, "0 giây", "0 s"},
      {-5 * FX_SEC, "0 giây", "0 s"},
      {40 * FX_SEC, "40 giây", "40 s"},
      {15 * FX_MIN, "15 phút", "15 min"},
      {135 * FX_MIN, "2 giờ 15 phút", "2 h 15 min"},
      {120 * FX_MIN + 59 * FX_SEC, "2 giờ", "2 h"},
      {(3 * 24 * 60 + 125) * FX_MIN, "3 ngày 2 giờ", "3 d 2 h"},
      {24 * 60 * FX_MIN, "1 ngày", "1 d"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    buf_reset(&b);
    cr_assert_eq(
        template_format_duration(FX_T0, FX_T0 + cases[i].d, CONFIG_LANG_VI, &b),
        0);
    cr_expect_str_eq(b.data, cases[i].vi, "case %zu", i);
    buf_reset(&b);
    cr_assert_eq(
        template_format_duration(FX_T0, FX_T0 + cases[i].d, CONFIG_LANG_EN, &b),
        0);
    cr_expect_str_eq(b.data, cases[i].en, "case %zu", i);
  }
  buf_cleanup(&b);
}

Test(template_format, writes_rfc3339_in_local_time) {
  static const struct {
    int64_t t;
    int32_t off;
    const char *want;
  } cases[] = {
      {FX_T0, FX_OFFSET, "2026-12-08T09:15:00+07:00"},
      {FX_T0 + 250000000, FX_OFFSET, "2026-12-08T09:15:00.25+07:00"},
      {FX_T0, 0, "2026-12-08T02:15:00Z"},
      {FX_T0, -3 * 3600 - 1800, "2026-12-07T22:45:00-03:30"},
      {0, 0, "1970-01-01T00:00:00Z"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct buf b;
    buf_init(&b, 0);
    cr_assert_eq(template_format_rfc3339(cases[i].t, cases[i].off, &b), 0);
    cr_expect_str_eq(b.data, cases[i].want, "case %zu", i);
    buf_cleanup(&b);
  }
}

Test(template_format, escapes_html_and_urls) {
  static const struct {
    const char *in, *html, *url;
  } cases[] = {
      {"Ea H'Leo", "Ea H&#39;Leo", "Ea%20H%27Leo"},
      {"Krông Búk", "Krông Búk", "Kr%C3%B4ng%20B%C3%BAk"},
      {"M'Đrắk", "M&#39;Đrắk", "M%27%C4%90r%E1%BA%AFk"},
      {"<a href=\"x\">&</a>", "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;",
       "%3Ca%20href%3D%22x%22%3E%26%3C%2Fa%3E"},
      {"a-b.c_d~e", "a-b.c_d~e", "a-b.c_d~e"},
      {"", "", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct buf h, u;
    buf_init(&h, 0);
    buf_init(&u, 0);
    cr_assert_eq(template_html_escape(cases[i].in, strlen(cases[i].in), &h), 0);
    cr_assert_eq(template_url_encode(cases[i].in, &u), 0);
    cr_expect_str_eq(h.data ? h.data : "", cases[i].html, "case %zu", i);
    cr_expect_str_eq(u.data ? u.data : "", cases[i].url, "case %zu", i);
    buf_cleanup(&h);
    buf_cleanup(&u);
  }
}

/* ---- built-in texts ------------------------------------------------------ */

static const char summary_ea[] =
    "Tỷ lệ hồ sơ trực tuyến của Ea H'Leo là 10.6%, dưới mục tiêu 30.0%";

static struct config_notify grafana_cfg(void) {
  return (struct config_notify){.grafana_url = GRAFANA "/"};
}

Test(template_default,
     firing_text_in_vietnamese_has_district_value_target_and_since) {
  struct config_notify cfg = grafana_cfg();
  struct template_set *ts = fx_set(&cfg, CONFIG_LANG_VI);
  struct notice *n = fx_notice(NOTICE_ALERTS, "leaders");
  struct notice_alert *a = fx_share(n, "Ea H'Leo", NOTICE_FIRING);
  fx_annotation(a, "summary", summary_ea);
  char *subj = fx_render(template_render_subject, ts, n, NOW);
  cr_expect_str_eq(subj,
                   "[CẢNH BÁO] Tỷ lệ hồ sơ trực tuyến của Ea H'Leo là "
                   "10.6%, dưới mục tiêu 30.0%");
  char *text = fx_render(template_render_text, ts, n, NOW);
  char want[1024];
  snprintf(want, sizeof want,
           "Địa bàn: Ea H'Leo\n"
           "Mức độ: cảnh báo\n"
           "Giá trị: 10,61%% (ngưỡng: 30%%)\n"
           "Thời gian: từ 09:15 ngày 08/12/2026, đã 2 giờ 15 phút\n"
           "Chi tiết: " GRAFANA
           "/d/iocd-district?var-district=Ea%%20H%%27Leo\n"
           "Mã cảnh báo: %016" PRIx64 "\n",
           a->fingerprint);
  cr_expect_str_eq(text, want);
  free(subj);
  free(text);
  notice_free(n);
  template_set_free(ts);
}

Test(template_default, resolved_text_says_from_when_to_when) {
  struct template_set *ts = fx_set(NULL, CONFIG_LANG_VI);
  struct notice *n = fx_notice(NOTICE_ALERTS, "leaders");
  fx_share(n, "Krông Búk", NOTICE_RESOLVED);
  char *subj = fx_render(template_render_subject, ts, n, NOW + 5 * FX_MIN);
  char *text = fx_render(template_render_text, ts, n, NOW + 5 * FX_MIN);
  /* No summary: the rule's name and the district. */
  cr_expect_str_eq(subj, "[ĐÃ KHẮC PHỤC] online_share_low — Krông Búk");
  cr_expect(strstr(text, "Địa bàn: Krông Búk\n") != NULL, "%s", text);
  /* The value is the recovery's, and says so. */
  cr_expect(
      strstr(text, "Giá trị khi khắc phục: 10,61% (ngưỡng: 30%)\n") != NULL,
      "%s", text);
  cr_expect(strstr(text,
                   "Thời gian: từ 09:15 ngày 08/12/2026 đến 11:30 "
                   "ngày 08/12/2026 (2 giờ 15 phút)\n") != NULL,
            "%s", text);
  /* No grafana_url: no link. */
  cr_expect(strstr(text, "Chi tiết") == NULL, "%s", text);
  free(subj);
  free(text);
  notice_free(n);
  template_set_free(ts);
}

Test(template_default, escalation_says_not_acknowledged_after_the_tiers_delay) {
  struct config_escalation esc[] = {{15 * 60 * 1000, "director"},
                                    {60 * 60 * 1000, "vice_chair"}};
  struct config_notify cfg = {
      .route = {.receiver = "operators", .escalation = esc, .nescalation = 2}};
  struct template_set *ts = fx_set(&cfg, CONFIG_LANG_VI);
  struct notice *n = fx_notice(NOTICE_ESCALATION, "vice_chair");
  n->tier = 2;
  struct notice_alert *a =
      fx_alert(n, "feed_silent", "Ea H'Leo", "critical", NOTICE_FIRING);
  fx_label(a, "system", "iGate");
  fx_annotation(a, "summary",
                "Không nhận được dữ liệu iGate của Ea H'Leo trong hơn 10 "
                "phút");
  char *subj = fx_render(template_render_subject, ts, n, NOW);
  char *text = fx_render(template_render_text, ts, n, NOW);
  cr_expect_str_eq(subj,
                   "[NGHIÊM TRỌNG] Không nhận được dữ liệu iGate của "
                   "Ea H'Leo trong hơn 10 phút — chưa được xác nhận "
                   "sau 1 giờ");
  cr_expect(strncmp(text,
                    "Chuyển cấp: chưa được xác nhận sau 1 giờ (cấp 2).\n\n"
                    "Địa bàn: Ea H'Leo\nHệ thống: iGate\n"
                    "Mức độ: nghiêm trọng\n",
                    strlen("Chuyển cấp: chưa được xác nhận sau 1 giờ (cấp "
                           "2).\n\nĐịa bàn: Ea H'Leo\nHệ thống: iGate\n"
                           "Mức độ: nghiêm trọng\n")) == 0,
            "%s", text);
  free(subj);
  free(text);
  /* A tier the configuration does not know: counted from the start. */
  n->tier = 1;
  free(n->receiver);
  n->receiver = mem_strdup("someone_else");
  subj = fx_render(template_render_subject, ts, n, NOW);
  cr_expect(strstr(subj, "— chưa được xác nhận sau 2 giờ 15 phút") != NULL,
            "%s", subj);
  free(subj);
  notice_free(n);
  template_set_free(ts);
}

Test(template_default, acknowledged_alert_says_by_whom_and_when) {
  struct template_set *ts = fx_set(NULL, CONFIG_LANG_VI);
  struct notice *n = fx_notice(NOTICE_ALERTS, "leaders");
  struct notice_alert *a = fx_share(n, "Cư M'gar", NOTICE_FIRING);
  a->acked_by = mem_strdup("Nguyễn Văn A");
  a->acked_ns = FX_T0 + 25 * FX_MIN;
  a->ack_comment = mem_strdup("đang xử lý");
  char *text = fx_render(template_render_text, ts, n, NOW);
  cr_expect(strstr(text,
                   "Xác nhận: Nguyễn Văn A lúc 09:40 ngày 08/12/2026: "
                   "đang xử lý\n") != NULL,
            "%s", text);
  free(text);
  notice_free(n);
  template_set_free(ts);
}

Test(template_default, english_receivers_read_english_numbers_and_words) {
  struct config_notify cfg = grafana_cfg();
  struct template_set *ts = fx_set(&cfg, CONFIG_LANG_EN);
  struct notice *n = fx_notice(NOTICE_ALERTS, "partners");
  struct notice_alert *a = fx_share(n, "Ea H'Leo", NOTICE_FIRING);
  a->value = 1410312;         /* a count now, whatever the unit says */
  free(a->labels.v[3].value); /* "unit" after alertname, district, severity */
  cr_assert_str_eq(a->labels.v[3].name, "unit");
  a->labels.v[3].value = mem_strdup("count");
  a->threshold = 200;
  char *subj = fx_render(template_render_subject, ts, n, NOW);
  char *text = fx_render(template_render_text, ts, n, NOW);
  cr_expect_str_eq(subj, "[WARNING] online_share_low — Ea H'Leo");
  cr_expect(strstr(text,
                   "District: Ea H'Leo\nSeverity: warning\n"
                   "Value: 1,410,312 (threshold: 200)\n"
                   "Time: since 09:15 on 2026-12-08, for 2 h 15 min\n"
                   "Details: " GRAFANA
                   "/d/iocd-district?var-district=Ea%20H%27Leo\n") != NULL,
            "%s", text);
  free(subj);
  free(text);
  notice_free(n);
  template_set_free(ts);
}

Test(template_default, group_subject_counts_and_names_the_districts) {
  struct template_set *ts = fx_set(NULL, CONFIG_LANG_VI);
  struct notice *n = fx_notice(NOTICE_ALERTS, "operators");
  fx_share(n, "Ea H'Leo", NOTICE_FIRING);
  fx_alert(n, "feed_silent", "Krông Búk", "critical", NOTICE_FIRING);
  fx_share(n, "Lắk", NOTICE_RESOLVED);
  fx_share(n, "Krông Búk", NOTICE_FIRING);
  char *subj = fx_render(template_render_subject, ts, n, NOW);
  cr_expect_str_eq(subj,
                   "[NGHIÊM TRỌNG] 3 cảnh báo, 1 đã khắc phục: "
                   "Ea H'Leo, Krông Búk, Lắk");
  char *text = fx_render(template_render_text, ts, n, NOW);
  cr_expect(strncmp(text,
                    "1. [CẢNH BÁO] online_share_low — Ea H'Leo\n"
                    "Địa bàn: Ea H'Leo\n",
                    strlen("1. [CẢNH BÁO] online_share_low — Ea H'Leo\n"
                           "Địa bàn: Ea H'Leo\n")) == 0,
            "%s", text);
  cr_expect(
      strstr(text, "\n\n2. [NGHIÊM TRỌNG] feed_silent — Krông Búk\n") != NULL,
      "%s", text);
  cr_expect(
      strstr(text, "\n\n3. [ĐÃ KHẮC PHỤC] online_share_low — Lắk\n") != NULL,
      "%s", text);
  free(subj);
  free(text);
  notice_free(n);
  template_set_free(ts);
}

Test(template_default, flapping_storm_digest_and_dead_letter_texts) {
  struct config_notify cfg = {.flap_transitions = 6,
                              .flap_window_ms = 2 * 3600 * 1000};
  struct template_set *ts = fx_set(&cfg, CONFIG_LANG_VI);

  struct notice *f = fx_notice(NOTICE_FLAPPING, "operators");
  fx_share(f, "Ea Súp", NOTICE_FIRING);
  char *subj = fx_render(template_render_subject, ts, f, NOW);
  char *text = fx_render(template_render_text, ts, f, NOW);
  cr_expect_str_eq(subj, "[DAO ĐỘNG] online_share_low — Ea Súp");
  cr_expect(strstr(text, "(6 lần trở lên trong 2 giờ)") != NULL, "%s", text);
  free(subj);
  free(text);
  notice_free(f);

  struct notice *s = fx_notice(NOTICE_STORM, "operators");
  fx_share(s, "Ea H'Leo", NOTICE_FIRING);
  fx_share(s, "Krông Búk", NOTICE_RESOLVED);
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(template_storm_text(CONFIG_LANG_VI, "operators", 30, 2, &b), 0);
  s->text = b.data;
  subj = fx_render(template_render_subject, ts, s, NOW);
  text = fx_render(template_render_text, ts, s, NOW);
  cr_expect_str_eq(subj, "[TỔNG HỢP] 2 cảnh báo");
  cr_expect_str_eq(text,
                   "Người nhận operators đã đạt giới hạn 30 tin mỗi giờ: 2 "
                   "cảnh báo được gộp trong bản tổng hợp này.\n\n"
                   "• [CẢNH BÁO] online_share_low — Ea H'Leo — 10,61% "
                   "(ngưỡng: 30%), từ 09:15 ngày 08/12/2026, đã 2 giờ 15 "
                   "phút\n"
                   "• [ĐÃ KHẮC PHỤC] online_share_low — Krông Búk — 10,61% "
                   "(ngưỡng: 30%), từ 09:15 ngày 08/12/2026 đến 11:30 ngày "
                   "08/12/2026 (2 giờ 15 phút)\n");
  free(subj);
  free(text);
  notice_free(s);

  struct notice *d = fx_notice(NOTICE_DIGEST, "director");
  subj = fx_render(template_render_subject, ts, d, NOW);
  text = fx_render(template_render_text, ts, d, NOW);
  cr_expect_str_eq(subj,
                   "[BÁO CÁO] Tình hình cảnh báo lúc 11:30 ngày "
                   "08/12/2026: không có cảnh báo nào");
  cr_expect_str_eq(text, "Không có cảnh báo nào đang hoạt động.\n");
  free(subj);
  free(text);
  notice_free(d);

  struct notice *failed = fx_notice(NOTICE_ALERTS, "director");
  failed->attempts = 10;
  struct notice *dl = fx_notice(NOTICE_DEAD_LETTER, "operators");
  buf_init(&b, 0);
  cr_assert_eq(
      template_dead_letter_text(CONFIG_LANG_VI, failed, "HTTP 503", &b), 0);
  dl->text = b.data;
  subj = fx_render(template_render_subject, ts, dl, NOW);
  cr_expect_str_eq(subj,
                   "[LỖI GỬI THÔNG BÁO] Không gửi được thông báo "
                   "00000000000002a1 tới director sau 10 lần thử: "
                   "HTTP 503.");
  free(subj);
  notice_free(dl);
  notice_free(failed);
  template_set_free(ts);
}

Test(template_default, html_is_a_document_with_escaped_names) {
  struct config_notify cfg = grafana_cfg();
  struct template_set *ts = fx_set(&cfg, CONFIG_LANG_VI);
  struct notice *n = fx_notice(NOTICE_ALERTS, "leaders");
  struct notice_alert *a = fx_share(n, "Ea H'Leo", NOTICE_FIRING);
  fx_annotation(a, "description", "Hồ sơ <mức 3> & <mức 4>");
  char *html = fx_render(template_render_html, ts, n, NOW);
  cr_expect(strncmp(html, "<!DOCTYPE html>\n<html lang=\"vi\">", 31) == 0, "%s",
            html);
  cr_expect(strstr(html,
                   "<title>[CẢNH BÁO] online_share_low — Ea "
                   "H&#39;Leo</title>") != NULL,
            "%s", html);
  cr_expect(
      strstr(html, "<p>Hồ sơ &lt;mức 3&gt; &amp; &lt;mức 4&gt;</p>") != NULL,
      "%s", html);
  cr_expect(strstr(html,
                   "<tr><th align=\"left\">Địa bàn</th><td>Ea "
                   "H&#39;Leo</td></tr>") != NULL,
            "%s", html);
  cr_expect(
      strstr(html, "<a href=\"" GRAFANA
                   "/d/iocd-district?var-district=Ea%20H%27Leo\">") != NULL,
      "%s", html);
  cr_expect(strstr(html, "</body>\n</html>\n") != NULL, "%s", html);
  free(html);
  notice_free(n);
  template_set_free(ts);
}

/* ---- overrides ----------------------------------------------------------- */

static struct template_set *override_set(const char *subject, const char *text,
                                         const char *html,
                                         enum config_language lang) {
  struct config_notify cfg = grafana_cfg();
  cfg.templates.subject = (char *)subject;
  cfg.templates.text = (char *)text;
  cfg.templates.html = (char *)html;
  return fx_set(&cfg, lang);
}

Test(template_override, renders_fields_labels_and_annotations) {
  struct template_set *ts = override_set(
      "{{tag}} {{ district }}: {{value}} / {{threshold}}",
      "{{alertname}}|{{labels.unit}}|{{annotations.summary}}|{{value_pct}}|"
      "{{threshold_pct}}|{{since}}|{{since_rfc3339}}|{{duration}}|{{until}}|"
      "{{status}}|{{severity}}|{{link}}|{{acked_by}}|{{count}}|"
      "{{firing_count}}|{{resolved_count}}|{{receiver}}|{{labels.none}}",
      NULL, CONFIG_LANG_VI);
  struct notice *n = fx_notice(NOTICE_ALERTS, "leaders");
  struct notice_alert *a = fx_share(n, "Ea H'Leo", NOTICE_FIRING);
  fx_annotation(a, "summary", "tóm tắt");
  a->acked_by = mem_strdup("Trần B");
  char *subj = fx_render(template_render_subject, ts, n, NOW);
  char *text = fx_render(template_render_text, ts, n, NOW);
  cr_expect_str_eq(subj, "[CẢNH BÁO] Ea H'Leo: 10,61% / 30%");
  cr_expect_str_eq(text,
                   "online_share_low|ratio|tóm tắt|10,61%|30%|09:15 ngày "
                   "08/12/2026|2026-12-08T09:15:00+07:00|2 giờ 15 phút||"
                   "firing|warning|" GRAFANA
                   "/d/iocd-district?var-district=Ea%20H%27Leo|Trần B|1|1|0|"
                   "leaders|");
  free(subj);
  free(text);
  notice_free(n);
  template_set_free(ts);
}

Test(template_override, text_without_a_block_repeats_per_alert) {
  struct template_set *ts =
      override_set(NULL, "{{district}}: {{value}}", NULL, CONFIG_LANG_VI);
  struct notice *n = fx_notice(NOTICE_ALERTS, "leaders");
  fx_share(n, "Ea H'Leo", NOTICE_FIRING);
  fx_share(n, "Krông Búk", NOTICE_RESOLVED);
  char *text = fx_render(template_render_text, ts, n, NOW);
  cr_expect_str_eq(text, "Ea H'Leo: 10,61%\n\nKrông Búk: 10,61%");
  free(text);
  notice_free(n);
  template_set_free(ts);
}

Test(template_override, blocks_iterate_all_firing_or_resolved_alerts) {
  struct template_set *ts = override_set(
      "{{firing_count}} đang cảnh báo{{#firing}}, {{district}}{{/firing}}",
      "Đang cảnh báo:\n{{#firing}}- {{district}} {{value}}\n{{/firing}}"
      "Đã khắc phục:\n{{#resolved}}- {{district}}\n{{/resolved}}"
      "Tất cả:{{#alerts}} {{id}}{{/alerts}}",
      NULL, CONFIG_LANG_VI);
  struct notice *n = fx_notice(NOTICE_ALERTS, "leaders");
  fx_share(n, "Ea H'Leo", NOTICE_FIRING);
  fx_share(n, "Krông Búk", NOTICE_RESOLVED);
  fx_share(n, "M'Đrắk", NOTICE_FIRING);
  char *subj = fx_render(template_render_subject, ts, n, NOW);
  char *text = fx_render(template_render_text, ts, n, NOW);
  cr_expect_str_eq(subj, "2 đang cảnh báo, Ea H'Leo, M'Đrắk");
  char want[512];
  snprintf(want, sizeof want,
           "Đang cảnh báo:\n- Ea H'Leo 10,61%%\n- M'Đrắk 10,61%%\n"
           "Đã khắc phục:\n- Krông Búk\n"
           "Tất cả: %016" PRIx64 " %016" PRIx64 " %016" PRIx64,
           n->alerts[0].fingerprint, n->alerts[1].fingerprint,
           n->alerts[2].fingerprint);
  cr_expect_str_eq(text, want);
  free(subj);
  free(text);
  notice_free(n);
  template_set_free(ts);
}

Test(template_override, html_escapes_fields_not_the_template) {
  struct template_set *ts = override_set(
      "{{summary}}\n{{district}}", NULL,
      "<p class=\"x\"><b>{{summary}}</b> {{district}}</p>", CONFIG_LANG_VI);
  struct notice *n = fx_notice(NOTICE_ALERTS, "leaders");
  struct notice_alert *a = fx_share(n, "Ea H'Leo", NOTICE_FIRING);
  fx_annotation(a, "summary", "a<b>&\"'");
  char *html = fx_render(template_render_html, ts, n, NOW);
  char *subj = fx_render(template_render_subject, ts, n, NOW);
  cr_expect_str_eq(html,
                   "<p class=\"x\"><b>a&lt;b&gt;&amp;&quot;&#39;</b> "
                   "Ea H&#39;Leo</p>");
  /* A subject is one line, and not escaped. */
  cr_expect_str_eq(subj, "a<b>&\"' Ea H'Leo");
  free(html);
  free(subj);
  notice_free(n);
  template_set_free(ts);
}

Test(template_override, does_not_apply_to_digests) {
  struct template_set *ts =
      override_set("{{district}}", "{{district}}", NULL, CONFIG_LANG_VI);
  struct notice *n = fx_notice(NOTICE_DIGEST, "director");
  fx_share(n, "Ea H'Leo", NOTICE_FIRING);
  char *subj = fx_render(template_render_subject, ts, n, NOW);
  cr_expect(strncmp(subj, "[BÁO CÁO] ", strlen("[BÁO CÁO] ")) == 0, "%s", subj);
  free(subj);
  notice_free(n);
  template_set_free(ts);
}

/* ---- template_check ------------------------------------------------------ */

Test(template_check, reports_mistakes_at_file_line_and_column) {
  /* The string's first character is at column 15 of line 40 (its opening
   * quote at 14). Columns count characters, not bytes. */
  struct config_place place = {.file = "iocd.jsonc", .line = 40, .col = 15};
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"{{distric}}", "iocd.jsonc:40:15: T: unknown field {{distric}}"},
      {"Địa bàn {{distric}}", "iocd.jsonc:40:23: T: unknown field {{distric}}"},
      {"Đắk Lắk {{ value|pct }}",
       "iocd.jsonc:40:23: T: unknown field {{value|pct}}"},
      {"abc {{district}", "iocd.jsonc:40:19: T: {{ is not closed by }}"},
      {"{{#alerts}}x",
       "iocd.jsonc:40:15: T: {{#alerts}} is not closed by {{/alerts}}"},
      {"{{#alerts}}{{/alerts}} {{#firing}}",
       "iocd.jsonc:40:38: T: {{#firing}} is not closed by {{/firing}}"},
      {"x{{/alerts}}", "iocd.jsonc:40:16: T: {{/alerts}} without {{#alerts}}"},
      {"{{#alerts}}{{/firing}}",
       "iocd.jsonc:40:26: T: {{/firing}} without {{#firing}}"},
      {"{{#alerts}}{{#firing}}{{/firing}}{{/alerts}}",
       "iocd.jsonc:40:26: T: blocks do not nest: {{#firing}} inside "
       "{{#alerts}}"},
      {"ở {{}}", "iocd.jsonc:40:17: T: empty {{}}"},
      {"{{#foo}}",
       "iocd.jsonc:40:15: T: unknown block {{#foo}} (alerts, firing or "
       "resolved)"},
      {"{{labels.}}", "iocd.jsonc:40:15: T: {{labels.}} names nothing"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct iocd_err err = {{0}};
    cr_expect_eq(template_check(cases[i].text, &place, "T", &err), IOCD_EPARSE,
                 "case %zu", i);
    cr_expect_str_eq(err.msg, cases[i].want, "case %zu", i);
  }
  static const char *const good[] = {
      "",
      "no fields",
      "{{ district }} {{labels.system}} {{annotations.summary}}",
      "{{#alerts}}{{id}}{{/alerts}}{{#firing}}{{/firing}}",
      "}} stray closers are text }}",
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    struct iocd_err err = {{0}};
    cr_expect_eq(template_check(good[i], &place, "T", &err), IOCD_OK,
                 "good %zu: %s", i, err.msg);
  }
}

Test(template_check, without_a_place_counts_columns_in_the_text) {
  struct iocd_err err = {{0}};
  cr_assert_eq(
      template_check("abcd{{x}}", NULL, "notifications.templates.text", &err),
      IOCD_EPARSE);
  cr_expect_str_eq(err.msg,
                   "notifications.templates.text: column 5: unknown field "
                   "{{x}}");
}

Test(template_check, a_bad_override_fails_the_set_with_its_place) {
  struct config_notify cfg = {0};
  cfg.templates.html = "<p>{{ditrict}}</p>";
  cfg.templates.html_place = (struct config_place){"n.jsonc", 7, 14};
  struct template_opts o = {.lang = CONFIG_LANG_VI};
  struct template_set *ts = (struct template_set *)1;
  struct iocd_err err = {{0}};
  cr_assert_eq(template_set_new(&cfg, &o, &ts, &err), IOCD_EPARSE);
  cr_expect_null(ts);
  cr_expect_str_eq(err.msg,
                   "n.jsonc:7:17: notifications.templates.html: "
                   "unknown field {{ditrict}}");
}

Test(template_check, columns_match_the_configuration_file) {
  /* The loader records where each template's text starts; a mistake is
   * reported at its own character in the file. */
  static const char text[] =
      "{\"file\": {}, \"subscriptions\": [{\"topic\": \"t\"}],\n"
      " \"notifications\": {\"templates\": {\n"
      "   \"subject\": \"{{tag}} {{district}}\",\n"
      "   \"text\": \"Địa bàn {{distric}}: {{value}}\"}}}\n";
  struct config *cfg = NULL;
  struct buf errors;
  buf_init(&errors, 0);
  int rc = config_load_text("iocd.jsonc", text, strlen(text), &cfg, &errors);
  cr_assert_eq(rc, IOCD_OK, "%s", errors.data ? errors.data : "");
  struct template_opts o = {.lang = CONFIG_LANG_VI};
  struct template_set *ts = NULL;
  struct iocd_err err = {{0}};
  cr_expect_eq(template_set_new(&cfg->notify, &o, &ts, &err), IOCD_EPARSE);
  /* Line 4: `   "text": "Địa bàn {{distric}}` - the quote at column 12,
   * "Đ" at 13, "{{" at 21. */
  cr_expect_str_eq(err.msg,
                   "iocd.jsonc:4:21: notifications.templates.text: "
                   "unknown field {{distric}}");
  template_set_free(ts);
  config_free(cfg);
  buf_cleanup(&errors);
}
