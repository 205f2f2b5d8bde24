/*
 * The receivers' bodies and answers (alerts/payload.h): Alertmanager's
 * webhook JSON field by field, the v2 alerts array, Telegram and Zalo
 * messages and what their answers mean, an e-mail that Python's email
 * package reads back to the exact subject, names, text and HTML, MQTT
 * topics that stay one level per value, and base64 (core/base64.h).
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alerts/notice.h"
#include "alerts/payload.h"
#include "alerts/template.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/file.h"
#include "core/utf8.h"
#include "notice_fixture.h"

#define NOW (FX_T0 + 135 * FX_MIN)
#define GRAFANA "http://grafana.ioc.local:3000"
#define LINK_EA GRAFANA "/d/iocd-district?var-district=Ea%20H%27Leo"

static struct template_set *grafana_set(enum config_language lang) {
  struct config_notify cfg = {.grafana_url = GRAFANA};
  return fx_set(&cfg, lang);
}

static cJSON *parse(const struct buf *b) {
  cJSON *j = cJSON_ParseWithLength(b->data, b->len);
  cr_assert_not_null(j, "not JSON: %s", b->data);
  return j;
}

static const char *jstr(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  cr_assert(cJSON_IsString(v), "member %s is not a string", k);
  return v->valuestring;
}

/* ---- base64 -------------------------------------------------------------- */

Test(base64, encodes_the_rfc4648_vectors) {
  static const char *const cases[][2] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct buf b;
    buf_init(&b, 0);
    cr_assert_eq(base64_encode(&b, cases[i][0], strlen(cases[i][0])), 0);
    cr_expect_str_eq(b.data, cases[i][1], "case %zu", i);
    cr_expect_eq(b.len, base64_len(strlen(cases[i][0])));
    buf_cleanup(&b);
  }
  /* Bytes above 0x7F and the last two characters of the alphabet. */
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(base64_encode(&b, "\xfb\xff\xbf", 3), 0);
  cr_expect_str_eq(b.data, "+/+/");
  buf_cleanup(&b);
}

Test(base64, breaks_lines_between_groups) {
  char in[100];
  for (size_t i = 0; i < sizeof in; i++) {
    in[i] = (char)('a' + i % 26);
  }
  struct buf one, lined;
  buf_init(&one, 0);
  buf_init(&lined, 0);
  cr_assert_eq(base64_encode(&one, in, sizeof in), 0);
  cr_assert_eq(base64_encode_lines(&lined, in, sizeof in, 76, "\r\n"), 0);
  /* 100 bytes: 136 characters, a line of 76 and one of 60. */
  cr_assert_eq(one.len, 136);
  cr_expect_eq(lined.len, 136 + 4);
  cr_expect(memcmp(lined.data, one.data, 76) == 0);
  cr_expect(memcmp(lined.data + 76, "\r\n", 2) == 0);
  cr_expect(memcmp(lined.data + 78, one.data + 76, 60) == 0);
  cr_expect(memcmp(lined.data + 138, "\r\n", 2) == 0);
  buf_reset(&lined);
  cr_assert_eq(base64_encode_lines(&lined, in, 0, 76, "\r\n"), 0);
  cr_expect_eq(lined.len, 0);
  buf_cleanup(&one);
  buf_cleanup(&lined);
}

/* ---- webhook and Alertmanager -------------------------------------------- */

static struct notice *two_alerts(void) {
  struct notice *n = fx_notice(NOTICE_ALERTS, "operators");
  cr_assert_eq(
      notice_labels_set(&n->group_labels, "alertname", "online_share_low"), 0);
  struct notice_alert *a = fx_share(n, "Ea H'Leo", NOTICE_FIRING);
  fx_annotation(a, "summary", "Tỷ lệ 10,61%");
  fx_annotation(a, "description", "chung");
  struct notice_alert *b = fx_share(n, "Krông Búk", NOTICE_RESOLVED);
  fx_annotation(b, "summary", "Tỷ lệ khác");
  fx_annotation(b, "description", "chung");
  b->acked_by = mem_strdup("Nguyễn Văn A");
  b->acked_ns = FX_T0 + 25 * FX_MIN;
  return n;
}

Test(payload_webhook, is_alertmanagers_version_4_field_by_field) {
  struct template_set *ts = grafana_set(CONFIG_LANG_VI);
  struct notice *n = two_alerts();
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(payload_webhook(ts, n, "http://127.0.0.1:8080", NOW, &b), 0);
  cJSON *j = parse(&b);
  cr_expect_str_eq(jstr(j, "version"), "4");
  cr_expect_str_eq(jstr(j, "groupKey"), "{}:{alertname=\"online_share_low\"}");
  const cJSON *tr = cJSON_GetObjectItemCaseSensitive(j, "truncatedAlerts");
  cr_expect(cJSON_IsNumber(tr) && tr->valuedouble == 0);
  cr_expect_str_eq(jstr(j, "status"), "firing");
  cr_expect_str_eq(jstr(j, "receiver"), "operators");
  cr_expect_str_eq(jstr(j, "externalURL"), "http://127.0.0.1:8080");
  const cJSON *gl = cJSON_GetObjectItemCaseSensitive(j, "groupLabels");
  cr_expect_eq(cJSON_GetArraySize(gl), 1);
  cr_expect_str_eq(jstr(gl, "alertname"), "online_share_low");
  /* Common: the same name and value in every alert. */
  const cJSON *cl = cJSON_GetObjectItemCaseSensitive(j, "commonLabels");
  cr_expect_eq(cJSON_GetArraySize(cl), 3);
  cr_expect_str_eq(jstr(cl, "alertname"), "online_share_low");
  cr_expect_str_eq(jstr(cl, "severity"), "warning");
  cr_expect_str_eq(jstr(cl, "unit"), "ratio");
  const cJSON *ca = cJSON_GetObjectItemCaseSensitive(j, "commonAnnotations");
  cr_expect_eq(cJSON_GetArraySize(ca), 1);
  cr_expect_str_eq(jstr(ca, "description"), "chung");

  const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(j, "alerts");
  cr_assert_eq(cJSON_GetArraySize(alerts), 2);
  const cJSON *a0 = cJSON_GetArrayItem(alerts, 0);
  const cJSON *a1 = cJSON_GetArrayItem(alerts, 1);
  cr_expect_eq(cJSON_GetArraySize(a0), 7);
  cr_expect_str_eq(jstr(a0, "status"), "firing");
  cr_expect_str_eq(
      jstr(cJSON_GetObjectItemCaseSensitive(a0, "labels"), "district"),
      "Ea H'Leo");
  cr_expect_str_eq(
      jstr(cJSON_GetObjectItemCaseSensitive(a0, "annotations"), "summary"),
      "Tỷ lệ 10,61%");
  cr_expect_str_eq(jstr(a0, "startsAt"), "2026-12-08T09:15:00+07:00");
  cr_expect_str_eq(jstr(a0, "endsAt"), "0001-01-01T00:00:00Z");
  cr_expect_str_eq(jstr(a0, "generatorURL"), LINK_EA);
  char fp[17];
  snprintf(fp, sizeof fp, "%016" PRIx64, n->alerts[0].fingerprint);
  cr_expect_str_eq(jstr(a0, "fingerprint"), fp);
  cr_expect_str_eq(jstr(a1, "status"), "resolved");
  cr_expect_str_eq(
      jstr(cJSON_GetObjectItemCaseSensitive(a1, "labels"), "district"),
      "Krông Búk");
  cr_expect_str_eq(jstr(a1, "endsAt"), "2026-12-08T11:30:00+07:00");

  const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "iocd");
  cr_assert(cJSON_IsObject(x));
  cr_expect_str_eq(jstr(x, "notice_id"), "00000000000002a1");
  cr_expect_str_eq(jstr(x, "kind"), "alerts");
  cr_expect_str_eq(jstr(x, "subject"),
                   "[CẢNH BÁO] 1 cảnh báo, 1 đã khắc phục: Ea H'Leo, Krông "
                   "Búk");
  cr_expect(strstr(jstr(x, "text"), "Giá trị: 10,61% (ngưỡng: 30%)") != NULL);
  const cJSON *xa = cJSON_GetObjectItemCaseSensitive(x, "alerts");
  cr_assert_eq(cJSON_GetArraySize(xa), 2);
  const cJSON *v =
      cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(xa, 0), "value");
  cr_expect(cJSON_IsNumber(v) && v->valuedouble == 0.1061);
  cr_expect_str_eq(jstr(cJSON_GetArrayItem(xa, 1), "acked_by"), "Nguyễn Văn A");
  cr_expect_str_eq(jstr(cJSON_GetArrayItem(xa, 1), "acked_at"),
                   "2026-12-08T09:40:00+07:00");
  cJSON_Delete(j);
  buf_cleanup(&b);

  /* Every alert resolved: the group is resolved. */
  n->alerts[0].status = NOTICE_RESOLVED;
  n->alerts[0].ends_ns = NOW;
  buf_init(&b, 0);
  cr_assert_eq(payload_webhook(ts, n, NULL, NOW, &b), 0);
  j = parse(&b);
  cr_expect_str_eq(jstr(j, "status"), "resolved");
  cr_expect_str_eq(jstr(j, "externalURL"), "");
  cJSON_Delete(j);
  buf_cleanup(&b);
  notice_free(n);
  template_set_free(ts);
}

Test(payload_alertmanager, pushes_labels_annotations_and_times) {
  struct template_set *ts = grafana_set(CONFIG_LANG_VI);
  struct notice *n = two_alerts();
  fx_alert(n, "feed_silent", NULL, "critical", NOTICE_FIRING);
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(payload_alertmanager(ts, n, 0, &b), 0);
  cJSON *j = parse(&b);
  cr_assert(cJSON_IsArray(j));
  cr_assert_eq(cJSON_GetArraySize(j), 3);
  const cJSON *a0 = cJSON_GetArrayItem(j, 0);
  cr_expect_str_eq(
      jstr(cJSON_GetObjectItemCaseSensitive(a0, "labels"), "district"),
      "Ea H'Leo");
  cr_expect_str_eq(jstr(a0, "startsAt"), "2026-12-08T09:15:00+07:00");
  cr_expect_null(cJSON_GetObjectItemCaseSensitive(a0, "endsAt"));
  cr_expect_str_eq(jstr(a0, "generatorURL"), LINK_EA);
  cr_expect_null(cJSON_GetObjectItemCaseSensitive(a0, "status"));
  const cJSON *a1 = cJSON_GetArrayItem(j, 1);
  cr_expect_str_eq(jstr(a1, "endsAt"), "2026-12-08T11:30:00+07:00");
  /* No district, no link: no generatorURL at all. */
  const cJSON *a2 = cJSON_GetArrayItem(j, 2);
  cr_expect_null(cJSON_GetObjectItemCaseSensitive(a2, "generatorURL"));
  cJSON_Delete(j);
  buf_reset(&b);
  cr_assert_eq(payload_alertmanager(ts, n, NOW + 10 * FX_MIN, &b), 0);
  j = parse(&b);
  cr_expect_str_eq(jstr(cJSON_GetArrayItem(j, 0), "endsAt"),
                   "2026-12-08T11:40:00+07:00");
  cr_expect_str_eq(jstr(cJSON_GetArrayItem(j, 1), "endsAt"),
                   "2026-12-08T11:30:00+07:00");
  cJSON_Delete(j);
  buf_cleanup(&b);
  notice_free(n);
  template_set_free(ts);
}

struct answer_case {
  long status;
  const char *body;
  enum payload_verdict verdict;
  int64_t retry_after_ms;
  const char *message;
};

static void check_answers(void (*fn)(long, const char *, size_t,
                                     struct payload_answer *),
                          const struct answer_case *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    struct payload_answer ans;
    memset(&ans, 0x55, sizeof ans);
    fn(cases[i].status, cases[i].body,
       cases[i].body ? strlen(cases[i].body) : 0, &ans);
    cr_expect_eq(ans.verdict, cases[i].verdict, "case %zu: verdict %d", i,
                 (int)ans.verdict);
    cr_expect_eq(ans.retry_after_ms, cases[i].retry_after_ms, "case %zu", i);
    cr_expect_str_eq(ans.message, cases[i].message, "case %zu", i);
  }
}

Test(payload_answer, http_statuses_of_webhooks) {
  static const struct answer_case cases[] = {
      {200, "", PAYLOAD_OK, 0, "HTTP 200"},
      {204, NULL, PAYLOAD_OK, 0, "HTTP 204"},
      {0, NULL, PAYLOAD_RETRY, 0, "no HTTP answer"},
      {503, "busy\n", PAYLOAD_RETRY, 0, "HTTP 503: busy "},
      {429, "", PAYLOAD_RETRY, 0, "HTTP 429"},
      {408, "", PAYLOAD_RETRY, 0, "HTTP 408"},
      {400, "{\"error\":\"bad alert\"}", PAYLOAD_FAIL, 0,
       "HTTP 400: {\"error\":\"bad alert\"}"},
      {404, "", PAYLOAD_FAIL, 0, "HTTP 404"},
      {301, "", PAYLOAD_FAIL, 0, "HTTP 301"},
  };
  check_answers(payload_http_answer, cases, sizeof cases / sizeof cases[0]);
}

/* ---- Telegram ------------------------------------------------------------ */

Test(payload_telegram, sends_the_subject_in_bold_and_the_text_escaped) {
  struct template_set *ts = grafana_set(CONFIG_LANG_VI);
  struct notice *n = fx_notice(NOTICE_ALERTS, "vice_chair");
  struct notice_alert *a = fx_share(n, "Ea H'Leo", NOTICE_FIRING);
  fx_annotation(a, "description", "<mức 3> & <mức 4>");
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(payload_telegram(ts, n, "-100123", NOW, &b), 0);
  cJSON *j = parse(&b);
  cr_expect_str_eq(jstr(j, "chat_id"), "-100123");
  cr_expect_str_eq(jstr(j, "parse_mode"), "HTML");
  cr_expect(cJSON_IsTrue(
      cJSON_GetObjectItemCaseSensitive(j, "disable_web_page_preview")));
  const char *text = jstr(j, "text");
  const char *head =
      "<b>[CẢNH BÁO] online_share_low — Ea H&#39;Leo</b>\n\n"
      "&lt;mức 3&gt; &amp; &lt;mức 4&gt;\n"
      "Địa bàn: Ea H&#39;Leo\n";
  cr_expect(strncmp(text, head, strlen(head)) == 0, "%s", text);
  cr_expect(strstr(text, "Giá trị: 10,61% (ngưỡng: 30%)\n") != NULL);
  /* The text's last line break is dropped. */
  cr_expect(text[strlen(text) - 1] != '\n');
  cJSON_Delete(j);
  buf_cleanup(&b);
  notice_free(n);
  template_set_free(ts);
}

/* The number of UTF-16 code units of UTF-8 s. */
static size_t utf16_len(const char *s) {
  size_t u = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p & 0xC0) != 0x80) {
      u += *p >= 0xF0 ? 2 : 1;
    }
  }
  return u;
}

/* Undoes the HTML of a Telegram text: tags out, entities back. */
static char *telegram_plain(const char *s) {
  struct buf b;
  buf_init(&b, 0);
  while (*s) {
    if (*s == '<') {
      s = strchr(s, '>') + 1;
      continue;
    }
    static const char *const ent[][2] = {{"&lt;", "<"},
                                         {"&gt;", ">"},
                                         {"&amp;", "&"},
                                         {"&quot;", "\""},
                                         {"&#39;", "'"}};
    bool done = false;
    for (size_t i = 0; i < 5 && !done; i++) {
      if (strncmp(s, ent[i][0], strlen(ent[i][0])) == 0) {
        buf_puts(&b, ent[i][1]);
        s += strlen(ent[i][0]);
        done = true;
      }
    }
    if (!done) {
      buf_putc(&b, *s++);
    }
  }
  return b.data;
}

Test(payload_telegram, cuts_long_texts_on_a_character_boundary) {
  struct template_set *ts = fx_set(NULL, CONFIG_LANG_VI);
  struct notice *n = fx_notice(NOTICE_ALERTS, "vice_chair");
  struct notice_alert *a = fx_share(n, "Ea H'Leo", NOTICE_FIRING);
  struct buf desc;
  buf_init(&desc, 0);
  /* 3,000 "Đắk <>" runs: far beyond 4096, with entities to expand and a
   * 4-byte character (two UTF-16 units) now and then. */
  for (int i = 0; i < 3000; i++) {
    buf_puts(&desc, i % 7 ? "Đắk <>" : "😀 &");
  }
  fx_annotation(a, "description", desc.data);
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(payload_telegram(ts, n, "@ioc", NOW, &b), 0);
  cJSON *j = parse(&b);
  char *plain = telegram_plain(jstr(j, "text"));
  cr_expect(utf16_len(plain) <= PAYLOAD_TELEGRAM_MAX, "%zu", utf16_len(plain));
  cr_expect(utf16_len(plain) >= PAYLOAD_TELEGRAM_MAX - 1, "%zu",
            utf16_len(plain));
  cr_expect(utf8_valid(plain, strlen(plain), NULL));
  size_t pl = strlen(plain);
  cr_expect(pl > 3 && strcmp(plain + pl - 3, "…") == 0);
  free(plain);
  cJSON_Delete(j);
  buf_cleanup(&b);
  buf_cleanup(&desc);
  notice_free(n);
  template_set_free(ts);
}

Test(payload_answer, long_messages_are_cut_between_characters) {
  /* Descriptions of 3-byte characters shifted by 0 to 2 bytes: one of them
   * is cut inside a character by the message's size. */
  for (int shift = 0; shift < 3; shift++) {
    struct buf body;
    buf_init(&body, 0);
    buf_printf(&body, "{\"ok\":false,\"description\":\"%.*s", shift, "xx");
    for (int i = 0; i < 200; i++) {
      buf_puts(&body, "ắ");
    }
    buf_puts(&body, "\"}");
    struct payload_answer ans;
    payload_telegram_answer(403, body.data, body.len, &ans);
    cr_expect_eq(ans.verdict, PAYLOAD_FAIL);
    cr_expect(utf8_valid(ans.message, strlen(ans.message), NULL),
              "shift %d: %s", shift, ans.message);
    cr_expect(strlen(ans.message) > IOCD_ERR_SIZE - 8);
    buf_cleanup(&body);
  }
}

Test(payload_answer, telegram_answers) {
  static const struct answer_case cases[] = {
      {200, "{\"ok\":true,\"result\":{\"message_id\":7}}", PAYLOAD_OK, 0,
       "HTTP 200"},
      {200, "{\"ok\":false,\"description\":\"odd\"}", PAYLOAD_FAIL, 0,
       "HTTP 200, ok false: odd"},
      {429,
       "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests: "
       "retry after 35\",\"parameters\":{\"retry_after\":35}}",
       PAYLOAD_RETRY, 35000, "HTTP 429: Too Many Requests: retry after 35"},
      {429, "{\"ok\":false}", PAYLOAD_RETRY, 0, "HTTP 429: {\"ok\":false}"},
      {500,
       "{\"ok\":false,\"error_code\":500,\"description\":\"Internal Server "
       "Error\"}",
       PAYLOAD_RETRY, 0, "HTTP 500: Internal Server Error"},
      {502, "<html>Bad gateway</html>", PAYLOAD_RETRY, 0,
       "HTTP 502: <html>Bad gateway</html>"},
      {0, NULL, PAYLOAD_RETRY, 0, "no HTTP answer"},
      {400,
       "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: chat "
       "not found\"}",
       PAYLOAD_FAIL, 0, "HTTP 400: Bad Request: chat not found"},
      {400,
       "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: group "
       "chat was upgraded to a supergroup chat\",\"parameters\":{"
       "\"migrate_to_chat_id\":-1001234567890}}",
       PAYLOAD_FAIL, 0,
       "HTTP 400: Bad Request: group chat was upgraded to a supergroup chat "
       "(the group is now chat_id -1001234567890)"},
      {401,
       "{\"ok\":false,\"error_code\":401,\"description\":\"Unauthorized\"}",
       PAYLOAD_FAIL, 0, "HTTP 401: Unauthorized"},
      {403,
       "{\"ok\":false,\"error_code\":403,\"description\":\"Forbidden: bot was "
       "blocked by the user\"}",
       PAYLOAD_FAIL, 0, "HTTP 403: Forbidden: bot was blocked by the user"},
      {404, "{\"ok\":false,\"error_code\":404,\"description\":\"Not Found\"}",
       PAYLOAD_FAIL, 0, "HTTP 404: Not Found"},
  };
  check_answers(payload_telegram_answer, cases, sizeof cases / sizeof cases[0]);
}

/* ---- Zalo ---------------------------------------------------------------- */

Test(payload_zalo, sends_one_text_to_one_user_within_2000_characters) {
  struct template_set *ts = fx_set(NULL, CONFIG_LANG_VI);
  struct notice *n = fx_notice(NOTICE_ALERTS, "leaders_zalo");
  struct notice_alert *a = fx_share(n, "Krông Búk", NOTICE_FIRING);
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(payload_zalo(ts, n, "123456", NOW, &b), 0);
  cJSON *j = parse(&b);
  cr_expect_str_eq(
      jstr(cJSON_GetObjectItemCaseSensitive(j, "recipient"), "user_id"),
      "123456");
  const char *text =
      jstr(cJSON_GetObjectItemCaseSensitive(j, "message"), "text");
  cr_expect(strncmp(text,
                    "[CẢNH BÁO] online_share_low — Krông Búk\n\n"
                    "Địa bàn: Krông Búk\n",
                    strlen("[CẢNH BÁO] online_share_low — Krông Búk\n\n"
                           "Địa bàn: Krông Búk\n")) == 0,
            "%s", text);
  cJSON_Delete(j);
  buf_reset(&b);

  struct buf desc;
  buf_init(&desc, 0);
  for (int i = 0; i < 2500; i++) {
    buf_puts(&desc, "ắ");
  }
  fx_annotation(a, "description", desc.data);
  cr_assert_eq(payload_zalo(ts, n, "123456", NOW, &b), 0);
  j = parse(&b);
  text = jstr(cJSON_GetObjectItemCaseSensitive(j, "message"), "text");
  cr_expect_eq(utf16_len(text), PAYLOAD_ZALO_MAX);
  cr_expect(utf8_valid(text, strlen(text), NULL));
  cr_expect(strcmp(text + strlen(text) - 3, "…") == 0);
  cJSON_Delete(j);
  buf_cleanup(&b);
  buf_cleanup(&desc);
  notice_free(n);
  template_set_free(ts);
}

Test(payload_answer, zalo_answers_are_judged_by_their_error_member) {
  static const struct answer_case cases[] = {
      {200,
       "{\"error\":0,\"message\":\"Success\",\"data\":{\"message_id\":"
       "\"abc\"}}",
       PAYLOAD_OK, 0, "Zalo error 0"},
      {200, "{\"error\":-216,\"message\":\"Access token is invalid\"}",
       PAYLOAD_FAIL, 0,
       "Zalo error -216: Access token is invalid (access token: check "
       "token_file)"},
      {200, "{\"error\":-213,\"message\":\"User has not followed the OA\"}",
       PAYLOAD_FAIL, 0, "Zalo error -213: User has not followed the OA"},
      {200, "{\"error\":-32,\"message\":\"Exceed limit request\"}",
       PAYLOAD_RETRY, 0,
       "Zalo error -32: Exceed limit request (request rate limit)"},
      {200, "{\"error\":-100}", PAYLOAD_RETRY, 0, "Zalo error -100"},
      {200, "{\"error\":-999,\"message\":\"new\"}", PAYLOAD_FAIL, 0,
       "Zalo error -999: new"},
      {200, "<html>proxy</html>", PAYLOAD_RETRY, 0,
       "HTTP 200 without Zalo's \"error\": <html>proxy</html>"},
      {200, "", PAYLOAD_RETRY, 0, "HTTP 200 without Zalo's \"error\""},
      {200, "[0]", PAYLOAD_RETRY, 0, "HTTP 200 without Zalo's \"error\": [0]"},
      {503, "", PAYLOAD_RETRY, 0, "HTTP 503"},
      {429, "", PAYLOAD_RETRY, 0, "HTTP 429"},
      {404, "nope", PAYLOAD_FAIL, 0, "HTTP 404: nope"},
      {0, NULL, PAYLOAD_RETRY, 0, "no HTTP answer"},
  };
  check_answers(payload_zalo_answer, cases, sizeof cases / sizeof cases[0]);
}

/* ---- e-mail -------------------------------------------------------------- */

static char *slurp(const char *path) {
  struct buf b;
  buf_init(&b, 0);
  struct iocd_err err = {{0}};
  cr_assert_eq(file_read(path, &b, &err), 0, "%s", err.msg);
  return b.data ? b.data : calloc(1, 1);
}

/* Runs Python's email package on the message: the decoded headers and
 * parts land in files named PREFIX.subject, PREFIX.from, PREFIX.to,
 * PREFIX.text_plain, PREFIX.text_html, PREFIX.defects. */
static const char py_script[] =
    "import sys, email, email.header, email.policy\n"
    "raw = open(sys.argv[1], 'rb').read()\n"
    "m = email.message_from_bytes(raw)\n"
    "def dec(v):\n"
    "    return str(email.header.make_header(email.header.decode_header(v)))\n"
    "p = sys.argv[2]\n"
    "def put(k, v):\n"
    "    open(p + '.' + k, 'wb').write(v)\n"
    "put('subject', dec(m['Subject']).encode())\n"
    "put('from_raw', dec(m['From']).encode())\n"
    "put('date', m['Date'].encode())\n"
    "put('msgid', m['Message-ID'].encode())\n"
    "for x in m.walk():\n"
    "    if not x.is_multipart():\n"
    "        k = x.get_content_type().replace('/', '_')\n"
    "        put(k, x.get_payload(decode=True))\n"
    "        put(k + '.charset', (x.get_content_charset() or '').encode())\n"
    "d = email.message_from_bytes(raw, policy=email.policy.default)\n"
    "defects = [str(e) for x in d.walk() for e in x.defects]\n"
    "defects += [str(e) for k, v in d.items() for e in v.defects]\n"
    "put('defects', repr(defects).encode())\n"
    "put('subject_default', str(d['Subject']).encode())\n"
    "put('from', str(d['From']).encode())\n"
    "put('to', str(d['To']).encode())\n";

static void run_python(const char *msg, const char *prefix) {
  if (access("/usr/bin/python3", X_OK) != 0) {
    cr_skip_test("no /usr/bin/python3");
  }
  pid_t pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    execl("/usr/bin/python3", "python3", "-c", py_script, msg, prefix,
          (char *)NULL);
    _exit(127);
  }
  int st = 0;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "python3 failed: %d", st);
}

static char *read_part(const char *prefix, const char *what) {
  char path[256];
  snprintf(path, sizeof path, "%s.%s", prefix, what);
  return slurp(path);
}

/* A tiny base64 decoder for checking single encoded-words. */
static size_t b64_decode(const char *s, size_t n, unsigned char *out) {
  static const char a[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  unsigned v = 0;
  int bits = 0;
  for (size_t i = 0; i < n && s[i] != '='; i++) {
    v = v << 6 | (unsigned)(strchr(a, s[i]) - a);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(v >> bits & 0xFF);
    }
  }
  return o;
}

/* Every line ends with CRLF, no header line passes 78 characters, and
 * every encoded-word is at most 75 and decodes to whole characters. */
static void check_lines(const char *msg) {
  const char *p = msg;
  bool in_headers = true;
  while (*p) {
    const char *e = strstr(p, "\r\n");
    cr_assert_not_null(e, "a line without CRLF: %s", p);
    cr_expect(memchr(p, '\n', (size_t)(e - p)) == NULL, "bare LF");
    if (e == p) {
      in_headers = false;
    }
    if (in_headers) {
      cr_expect(e - p <= 78, "header line of %d: %.*s", (int)(e - p),
                (int)(e - p), p);
      for (const char *w = strstr(p, "=?UTF-8?B?"); w && w < e;
           w = strstr(w + 1, "=?UTF-8?B?")) {
        const char *we = strstr(w + 10, "?=");
        cr_assert(we && we < e);
        cr_expect(we + 2 - w <= 75, "encoded-word of %d", (int)(we + 2 - w));
        unsigned char dec[64];
        size_t dn = b64_decode(w + 10, (size_t)(we - w - 10), dec);
        cr_expect(utf8_valid((const char *)dec, dn, NULL),
                  "an encoded-word splits a character: %.*s", (int)(we + 2 - w),
                  w);
      }
    } else {
      cr_expect(e - p <= 76, "body line of %d", (int)(e - p));
    }
    p = e + 2;
  }
}

static char *crlf(const char *s) {
  struct buf b;
  buf_init(&b, 0);
  for (; *s; s++) {
    if (*s == '\n') {
      buf_putc(&b, '\r');
    }
    buf_putc(&b, *s);
  }
  return b.data ? b.data : calloc(1, 1);
}

Test(payload_email, python_reads_back_the_exact_subject_names_text_and_html) {
  struct template_set *ts = grafana_set(CONFIG_LANG_VI);
  struct notice *n = fx_notice(NOTICE_ALERTS, "director");
  struct notice_alert *a = fx_share(n, "Ea H'Leo", NOTICE_FIRING);
  /* Long enough for several encoded-words, and full of multi-byte
   * characters that must not be split between them. */
  fx_annotation(a, "summary",
                "Tỷ lệ hồ sơ nộp trực tuyến mức độ 3 và 4 của Ea H'Leo là "
                "10,61%, dưới mục tiêu 30% của tỉnh Đắk Lắk 😀 đợt ổn định");
  fx_annotation(a, "description", "Dòng một\nDòng hai <b>&</b>");
  char *to[] = {"giamdoc.stttt@daklak.gov.vn",
                "\"Phó Chủ tịch UBND tỉnh\" <pct@daklak.gov.vn>",
                "Operators, IOC <ops@daklak.gov.vn>"};
  struct config_receiver r = {.name = "director",
                              .type = CONFIG_RECV_EMAIL,
                              .from = "IOC Đắk Lắk <ioc@daklak.gov.vn>",
                              .to = to,
                              .nto = 3,
                              .html = true};
  struct buf msg;
  buf_init(&msg, 0);
  cr_assert_eq(payload_email(ts, n, &r, NOW, &msg), 0);

  check_lines(msg.data);

  char tmpl[] = "/tmp/iocd-mail-XXXXXX";
  int fd = mkstemp(tmpl);
  cr_assert(fd >= 0);
  cr_assert_eq(write(fd, msg.data, msg.len), (ssize_t)msg.len);
  close(fd);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "%s.out", tmpl);
  run_python(tmpl, prefix);

  char *subject = fx_render(template_render_subject, ts, n, NOW);
  char *text = fx_render(template_render_text, ts, n, NOW);
  char *html = fx_render(template_render_html, ts, n, NOW);
  char *want_text = crlf(text);
  char *want_html = crlf(html);
  char *got_subject = read_part(prefix, "subject");
  char *got_subject2 = read_part(prefix, "subject_default");
  char *got_from = read_part(prefix, "from");
  char *got_from_raw = read_part(prefix, "from_raw");
  char *got_to = read_part(prefix, "to");
  char *got_text = read_part(prefix, "text_plain");
  char *got_html = read_part(prefix, "text_html");
  char *got_cs = read_part(prefix, "text_plain.charset");
  char *got_date = read_part(prefix, "date");
  char *got_id = read_part(prefix, "msgid");
  char *defects = read_part(prefix, "defects");
  cr_expect_str_eq(got_subject, subject);
  cr_expect_str_eq(got_subject2, subject);
  cr_expect_str_eq(got_from, "IOC Đắk Lắk <ioc@daklak.gov.vn>");
  cr_expect_str_eq(got_from_raw, "IOC Đắk Lắk <ioc@daklak.gov.vn>");
  cr_expect_str_eq(got_to,
                   "giamdoc.stttt@daklak.gov.vn, Phó Chủ tịch UBND tỉnh "
                   "<pct@daklak.gov.vn>, \"Operators, IOC\" "
                   "<ops@daklak.gov.vn>");
  cr_expect_str_eq(got_text, want_text);
  cr_expect_str_eq(got_html, want_html);
  cr_expect_str_eq(got_cs, "utf-8");
  cr_expect_str_eq(got_date, "Tue, 08 Dec 2026 11:30:00 +0700");
  char want_id[96];
  snprintf(want_id, sizeof want_id,
           "<00000000000002a1.%" PRIx64 "@daklak.gov.vn>",
           (uint64_t)n->created_ns);
  cr_expect_str_eq(got_id, want_id);
  cr_expect_str_eq(defects, "[]");
  cr_expect(strstr(msg.data, "\r\nAuto-Submitted: auto-generated\r\n"));
  cr_expect(strstr(msg.data, "\r\nMIME-Version: 1.0\r\n"));

  const char *exts[] = {"subject",
                        "subject_default",
                        "from",
                        "from_raw",
                        "to",
                        "text_plain",
                        "text_html",
                        "text_plain.charset",
                        "text_html.charset",
                        "date",
                        "msgid",
                        "defects"};
  for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
    char path[256];
    snprintf(path, sizeof path, "%s.%s", prefix, exts[i]);
    unlink(path);
  }
  unlink(tmpl);
  free(subject);
  free(text);
  free(html);
  free(want_text);
  free(want_html);
  free(got_subject);
  free(got_subject2);
  free(got_from);
  free(got_from_raw);
  free(got_to);
  free(got_text);
  free(got_html);
  free(got_cs);
  free(got_date);
  free(got_id);
  free(defects);
  buf_cleanup(&msg);
  notice_free(n);
  template_set_free(ts);
}

Test(payload_email, subject_words_never_split_a_character) {
  /* Shifting the text by 0 to 5 bytes moves every cut between words, so
   * that some would fall inside a 2-, 3- or 4-byte character. */
  struct template_set *ts = fx_set(NULL, CONFIG_LANG_VI);
  char *to[] = {"a@daklak.gov.vn"};
  struct config_receiver r = {
      .from = "Trung tâm IOC <ioc@daklak.gov.vn>", .to = to, .nto = 1};
  for (int shift = 0; shift < 6; shift++) {
    struct notice *n = fx_notice(NOTICE_ALERTS, "director");
    struct notice_alert *a = fx_share(n, "Ea H'Leo", NOTICE_FIRING);
    char summary[512];
    snprintf(summary, sizeof summary,
             "%.*sĐắk Lắk ỷệồơộựếứđộ 😀😀 ỷệồơộựếứđộ Buôn Ma Thuột ỷệồơộựếứđộ "
             "Krông Búk ỷệồơộựếứđộ 😀 Cư M'gar",
             shift, "xxxxx");
    fx_annotation(a, "summary", summary);
    struct buf msg;
    buf_init(&msg, 0);
    cr_assert_eq(payload_email(ts, n, &r, NOW, &msg), 0);
    check_lines(msg.data);
    char tmpl[] = "/tmp/iocd-mail-XXXXXX";
    int fd = mkstemp(tmpl);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, msg.data, msg.len), (ssize_t)msg.len);
    close(fd);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s.out", tmpl);
    run_python(tmpl, prefix);
    char *subject = fx_render(template_render_subject, ts, n, NOW);
    char *got = read_part(prefix, "subject");
    cr_expect_str_eq(got, subject, "shift %d", shift);
    char *from = read_part(prefix, "from");
    cr_expect_str_eq(from, "Trung tâm IOC <ioc@daklak.gov.vn>");
    free(subject);
    free(got);
    free(from);
    static const char *const exts[] = {
        "subject",    "subject_default",    "from", "from_raw", "to",
        "text_plain", "text_plain.charset", "date", "msgid",    "defects"};
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
      char path[256];
      snprintf(path, sizeof path, "%s.%s", prefix, exts[i]);
      unlink(path);
    }
    unlink(tmpl);
    buf_cleanup(&msg);
    notice_free(n);
  }
  template_set_free(ts);
}

Test(payload_email, without_html_is_one_text_part) {
  struct template_set *ts = fx_set(NULL, CONFIG_LANG_EN);
  struct notice *n = fx_notice(NOTICE_ALERTS, "director");
  fx_share(n, "Lắk", NOTICE_RESOLVED);
  char *to[] = {"a@example.org"};
  struct config_receiver r = {.from = "iocd@example.org", .to = to, .nto = 1};
  struct buf msg;
  buf_init(&msg, 0);
  cr_assert_eq(payload_email(ts, n, &r, NOW, &msg), 0);
  cr_expect(strstr(msg.data, "multipart") == NULL);
  cr_expect(strstr(msg.data,
                   "\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                   "Content-Transfer-Encoding: base64\r\n\r\n"));
  cr_expect(strncmp(msg.data, "From: iocd@example.org\r\nTo: a@example.org\r\n",
                    41) == 0,
            "%s", msg.data);
  /* "[RESOLVED] online_share_low — Lắk" is not ASCII: encoded. */
  cr_expect(strstr(msg.data, "\r\nSubject: =?UTF-8?B?"), "%s", msg.data);
  cr_expect(strstr(msg.data, "@example.org>\r\n"));
  buf_cleanup(&msg);
  struct config_receiver bad = {.from = "iocd@example.org"};
  buf_init(&msg, 0);
  cr_expect_eq(payload_email(ts, n, &bad, NOW, &msg), IOCD_EINVAL);
  buf_cleanup(&msg);
  notice_free(n);
  template_set_free(ts);
}

Test(payload_email, finds_the_envelope_address_of_a_mailbox) {
  static const struct {
    const char *in, *want;
    int rc;
  } cases[] = {
      {"IOC Đắk Lắk <ioc@daklak.gov.vn>", "ioc@daklak.gov.vn", IOCD_OK},
      {"ioc@daklak.gov.vn", "ioc@daklak.gov.vn", IOCD_OK},
      {"  ioc@daklak.gov.vn  ", "ioc@daklak.gov.vn", IOCD_OK},
      {"\"A <b>\" <a@b.vn>", "a@b.vn", IOCD_OK},
      {"<a@b.vn>", "a@b.vn", IOCD_OK},
      {"IOC <>", NULL, IOCD_EINVAL},
      {"no address", NULL, IOCD_EINVAL},
      {"A <a@b.vn\r\nBcc: x@y.vn>", NULL, IOCD_EINVAL},
      {"A <đ@b.vn>", NULL, IOCD_EINVAL},
      {"", NULL, IOCD_EINVAL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct buf b;
    buf_init(&b, 0);
    cr_expect_eq(payload_email_address(cases[i].in, &b), cases[i].rc,
                 "case %zu", i);
    if (cases[i].want) {
      cr_expect_str_eq(b.data, cases[i].want, "case %zu", i);
    }
    buf_cleanup(&b);
  }
}

/* ---- MQTT ---------------------------------------------------------------- */

Test(payload_mqtt, topics_keep_each_value_in_one_level) {
  struct template_set *ts = fx_set(NULL, CONFIG_LANG_VI);
  struct notice *n = fx_notice(NOTICE_ALERTS, "wall");
  static const struct {
    const char *prefix, *alertname, *district, *system, *want;
  } cases[] = {
      {"ioc/alerts", "online_share_low", "Ea H'Leo", NULL,
       "ioc/alerts/online_share_low/Ea H'Leo"},
      {"ioc/alerts/", "online_share_low", "Krông Búk", NULL,
       "ioc/alerts/online_share_low/Krông Búk"},
      {"ioc/alerts", "feed_silent", "Krông Búk", "iGate",
       "ioc/alerts/feed_silent/Krông Búk/iGate"},
      {"ioc/alerts", "services_l3_low", NULL, NULL,
       "ioc/alerts/services_l3_low/_"},
      {"ioc/alerts", "x", "", NULL, "ioc/alerts/x/_"},
      {"ioc/alerts", "x", "a/b+c#d%e", "s/1",
       "ioc/alerts/x/a%2Fb%2Bc%23d%25e/s%2F1"},
      {"ioc/alerts", "a+b", "+", NULL, "ioc/alerts/a%2Bb/%2B"},
      {"", "x", "d", NULL, "x/d"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct notice_alert *a = fx_alert(n, cases[i].alertname, cases[i].district,
                                      "warning", NOTICE_FIRING);
    if (cases[i].system) {
      fx_label(a, "system", cases[i].system);
    }
    struct buf b;
    buf_init(&b, 0);
    cr_assert_eq(payload_mqtt_topic(ts, cases[i].prefix, a, &b), 0);
    cr_expect_str_eq(b.data, cases[i].want, "case %zu", i);
    buf_cleanup(&b);
  }
  notice_free(n);
  template_set_free(ts);
}

Test(payload_mqtt, body_is_the_alerts_state) {
  struct template_set *ts = grafana_set(CONFIG_LANG_VI);
  struct notice *n = two_alerts();
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(payload_mqtt_body(ts, n, &n->alerts[0], &b), 0);
  cJSON *j = parse(&b);
  char fp[17];
  snprintf(fp, sizeof fp, "%016" PRIx64, n->alerts[0].fingerprint);
  cr_expect_str_eq(jstr(j, "id"), fp);
  cr_expect_str_eq(jstr(j, "notice_id"), "00000000000002a1");
  cr_expect_str_eq(jstr(j, "kind"), "alerts");
  cr_expect_str_eq(jstr(j, "status"), "firing");
  cr_expect_str_eq(
      jstr(cJSON_GetObjectItemCaseSensitive(j, "labels"), "district"),
      "Ea H'Leo");
  cr_expect_str_eq(
      jstr(cJSON_GetObjectItemCaseSensitive(j, "annotations"), "summary"),
      "Tỷ lệ 10,61%");
  cr_expect_eq(cJSON_GetObjectItemCaseSensitive(j, "value")->valuedouble,
               0.1061);
  cr_expect_eq(cJSON_GetObjectItemCaseSensitive(j, "threshold")->valuedouble,
               0.3);
  cr_expect_str_eq(jstr(j, "startsAt"), "2026-12-08T09:15:00+07:00");
  cr_expect(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "endsAt")));
  cr_expect(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "acked_by")));
  cr_expect_str_eq(jstr(j, "text"), "[CẢNH BÁO] Tỷ lệ 10,61% — Ea H'Leo");
  cr_expect_str_eq(jstr(j, "link"), LINK_EA);
  cJSON_Delete(j);
  buf_reset(&b);
  cr_assert_eq(payload_mqtt_body(ts, n, &n->alerts[1], &b), 0);
  j = parse(&b);
  cr_expect_str_eq(jstr(j, "status"), "resolved");
  cr_expect_str_eq(jstr(j, "endsAt"), "2026-12-08T11:30:00+07:00");
  cr_expect_str_eq(jstr(j, "acked_by"), "Nguyễn Văn A");
  cr_expect_str_eq(jstr(j, "acked_at"), "2026-12-08T09:40:00+07:00");
  cJSON_Delete(j);
  buf_cleanup(&b);
  notice_free(n);
  template_set_free(ts);
}
