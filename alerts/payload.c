/*
 * The receivers' bodies and the meaning of their answers. JSON is built
 * with cJSON (it escapes, and leaves UTF-8 as it is, so district names
 * arrive byte for byte); the e-mail is written by hand because it is text
 * with exact rules (RFC 5322, 2045, 2046, 2047).
 */
#include "alerts/payload.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base64.h"
#include "core/clock.h"

/* ---- JSON helpers -------------------------------------------------------- */

static bool add_str(cJSON *o, const char *k, const char *v) {
  return cJSON_AddStringToObject(o, k, v ? v : "") != NULL;
}

/* A string, or null when v is NULL. */
static bool add_str_or_null(cJSON *o, const char *k, const char *v) {
  return v ? add_str(o, k, v) : cJSON_AddNullToObject(o, k) != NULL;
}

static bool add_num_or_null(cJSON *o, const char *k, bool has, double v) {
  return has ? cJSON_AddNumberToObject(o, k, v) != NULL
             : cJSON_AddNullToObject(o, k) != NULL;
}

static bool add_labels(cJSON *o, const char *k,
                       const struct notice_labels *ls) {
  cJSON *m = cJSON_AddObjectToObject(o, k);
  for (size_t i = 0; m && i < ls->n; i++) {
    if (!add_str(m, ls->v[i].name, ls->v[i].value)) {
      return false;
    }
  }
  return m != NULL;
}

static bool add_time(cJSON *o, const char *k, int64_t t, int32_t off) {
  struct buf b;
  buf_init(&b, 64);
  bool ok =
      template_format_rfc3339(t, off, &b) == IOCD_OK && add_str(o, k, b.data);
  buf_cleanup(&b);
  return ok;
}

static bool add_hex(cJSON *o, const char *k, uint64_t v) {
  char h[17];
  snprintf(h, sizeof h, "%016" PRIx64, v);
  return add_str(o, k, h);
}

/* Adds a string rendered by fn into a scratch buffer. */
typedef int render_fn(const struct template_set *ts, const struct notice *n,
                      int64_t now, struct buf *out);

static bool add_rendered(cJSON *o, const char *k, render_fn *fn,
                         const struct template_set *ts, const struct notice *n,
                         int64_t now) {
  struct buf b;
  buf_init(&b, 0);
  bool ok = fn(ts, n, now, &b) == IOCD_OK && add_str(o, k, b.data);
  buf_cleanup(&b);
  return ok;
}

static bool add_link(cJSON *o, const char *k, const struct template_set *ts,
                     const struct notice_alert *a, bool null_if_none) {
  struct buf b;
  buf_init(&b, 0);
  bool ok = template_alert_link(ts, a, &b) == IOCD_OK;
  if (ok && !b.len && null_if_none) {
    ok = cJSON_AddNullToObject(o, k) != NULL;
  } else if (ok) {
    ok = add_str(o, k, b.data);
  }
  buf_cleanup(&b);
  return ok;
}

/* Prints root into out and frees it. ok false: memory ran out building. */
static int finish(cJSON *root, bool ok, struct buf *out) {
  int rc = IOCD_ENOMEM;
  if (root && ok) {
    char *s = cJSON_PrintUnformatted(root);
    if (s) {
      rc = buf_puts(out, s);
      cJSON_free(s);
    }
  }
  cJSON_Delete(root);
  return rc;
}

/* ---- webhook ------------------------------------------------------------- */

/* The labels (or annotations) every alert of n has, with the same value. */
static bool add_common(cJSON *o, const char *k, const struct notice *n,
                       bool annotations) {
  cJSON *m = cJSON_AddObjectToObject(o, k);
  if (!m || n->nalerts == 0) {
    return m != NULL;
  }
  const struct notice_labels *first =
      annotations ? &n->alerts[0].annotations : &n->alerts[0].labels;
  for (size_t i = 0; i < first->n; i++) {
    bool common = true;
    for (size_t j = 1; j < n->nalerts && common; j++) {
      const struct notice_labels *ls =
          annotations ? &n->alerts[j].annotations : &n->alerts[j].labels;
      const char *v = notice_label_get(ls, first->v[i].name);
      common = v && strcmp(v, first->v[i].value) == 0;
    }
    if (common && !add_str(m, first->v[i].name, first->v[i].value)) {
      return false;
    }
  }
  return true;
}

static bool add_am_alert(cJSON *arr, const struct template_set *ts,
                         const struct notice_alert *a) {
  int32_t off = template_set_utc_offset(ts);
  cJSON *o = cJSON_CreateObject();
  if (!o || !cJSON_AddItemToArray(arr, o)) {
    cJSON_Delete(o);
    return false;
  }
  bool ok = add_str(o, "status", notice_status_name(a->status)) &&
            add_labels(o, "labels", &a->labels) &&
            add_labels(o, "annotations", &a->annotations) &&
            add_time(o, "startsAt", a->starts_ns, off);
  if (ok && a->status == NOTICE_RESOLVED) {
    ok = add_time(o, "endsAt", a->ends_ns, off);
  } else if (ok) {
    ok = add_str(o, "endsAt", "0001-01-01T00:00:00Z");
  }
  return ok && add_link(o, "generatorURL", ts, a, false) &&
         add_hex(o, "fingerprint", a->fingerprint);
}

static bool add_iocd_alert(cJSON *arr, const struct template_set *ts,
                           const struct notice_alert *a) {
  cJSON *o = cJSON_CreateObject();
  if (!o || !cJSON_AddItemToArray(arr, o)) {
    cJSON_Delete(o);
    return false;
  }
  bool ok = add_hex(o, "fingerprint", a->fingerprint) &&
            add_num_or_null(o, "value", a->has_value, a->value) &&
            add_num_or_null(o, "threshold", a->has_threshold, a->threshold) &&
            add_str_or_null(o, "acked_by", a->acked_by);
  if (ok && a->acked_by && a->acked_ns) {
    ok = add_time(o, "acked_at", a->acked_ns, template_set_utc_offset(ts));
  } else if (ok) {
    ok = cJSON_AddNullToObject(o, "acked_at") != NULL;
  }
  return ok && add_str_or_null(o, "ack_comment", a->ack_comment);
}

int payload_webhook(const struct template_set *ts, const struct notice *n,
                    const char *external_url, int64_t now_ns, struct buf *out) {
  cJSON *root = cJSON_CreateObject();
  bool firing = false;
  for (size_t i = 0; i < n->nalerts; i++) {
    firing |= n->alerts[i].status == NOTICE_FIRING;
  }
  bool ok = root && add_str(root, "version", "4") &&
            add_str(root, "groupKey", n->group_key) &&
            cJSON_AddNumberToObject(root, "truncatedAlerts", 0) &&
            add_str(root, "status", firing ? "firing" : "resolved") &&
            add_str(root, "receiver", n->receiver) &&
            add_labels(root, "groupLabels", &n->group_labels) &&
            add_common(root, "commonLabels", n, false) &&
            add_common(root, "commonAnnotations", n, true) &&
            add_str(root, "externalURL", external_url);
  cJSON *alerts = ok ? cJSON_AddArrayToObject(root, "alerts") : NULL;
  ok = alerts != NULL;
  for (size_t i = 0; ok && i < n->nalerts; i++) {
    ok = add_am_alert(alerts, ts, &n->alerts[i]);
  }
  cJSON *x = ok ? cJSON_AddObjectToObject(root, "iocd") : NULL;
  ok = x && add_hex(x, "notice_id", n->id) &&
       add_str(x, "kind", notice_kind_name(n->kind)) &&
       cJSON_AddNumberToObject(x, "tier", n->tier) &&
       add_rendered(x, "subject", template_render_subject, ts, n, now_ns) &&
       add_rendered(x, "text", template_render_text, ts, n, now_ns);
  cJSON *xa = ok ? cJSON_AddArrayToObject(x, "alerts") : NULL;
  ok = xa != NULL;
  for (size_t i = 0; ok && i < n->nalerts; i++) {
    ok = add_iocd_alert(xa, ts, &n->alerts[i]);
  }
  return finish(root, ok, out);
}

int payload_alertmanager(const struct template_set *ts, const struct notice *n,
                         int64_t firing_ends_ns, struct buf *out) {
  int32_t off = template_set_utc_offset(ts);
  cJSON *root = cJSON_CreateArray();
  bool ok = root != NULL;
  for (size_t i = 0; ok && i < n->nalerts; i++) {
    const struct notice_alert *a = &n->alerts[i];
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(root, o)) {
      cJSON_Delete(o);
      ok = false;
      break;
    }
    ok = add_labels(o, "labels", &a->labels) &&
         add_labels(o, "annotations", &a->annotations) &&
         add_time(o, "startsAt", a->starts_ns, off);
    if (ok && a->status == NOTICE_RESOLVED) {
      ok = add_time(o, "endsAt", a->ends_ns, off);
    } else if (ok && firing_ends_ns) {
      ok = add_time(o, "endsAt", firing_ends_ns, off);
    }
    struct buf link;
    buf_init(&link, 0);
    if (ok) {
      ok = template_alert_link(ts, a, &link) == IOCD_OK &&
           (!link.len || add_str(o, "generatorURL", link.data));
    }
    buf_cleanup(&link);
  }
  return finish(root, ok, out);
}

/* ---- answers ------------------------------------------------------------- */

/* Sets the verdict and a message; the message is cut to fit. */
static void answer(struct payload_answer *ans, enum payload_verdict v,
                   const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void answer(struct payload_answer *ans, enum payload_verdict v,
                   const char *fmt, ...) {
  ans->verdict = v;
  va_list ap;
  va_start(ap, fmt);
  int r = vsnprintf(ans->message, sizeof ans->message, fmt, ap);
  va_end(ap);
  if (r >= (int)sizeof ans->message) {
    /* Cut: drop a character the cut left incomplete. */
    size_t n = strlen(ans->message), i = n;
    while (i > 0 && ((unsigned char)ans->message[i - 1] & 0xC0) == 0x80) {
      i--;
    }
    unsigned char lead = i > 0 ? (unsigned char)ans->message[i - 1] : 0;
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (lead >= 0xC0 && n - (i - 1) < need) {
      ans->message[i - 1] = '\0';
    }
  }
}

/* The start of an answer's body on one line, for a message: at most 120
 * bytes, cut on a character boundary, control characters as spaces. */
static void excerpt(const char *body, size_t len, char *dst, size_t cap) {
  size_t n = len < 120 ? len : 120;
  if (n + 1 > cap) {
    n = cap - 1;
  }
  if (n < len) {
    while (n > 0 && ((unsigned char)body[n] & 0xC0) == 0x80) {
      n--;
    }
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)body[i];
    dst[i] = c < 0x20 || c == 0x7F ? ' ' : (char)c;
  }
  dst[n] = '\0';
}

void payload_http_answer(long status, const char *body, size_t len,
                         struct payload_answer *ans) {
  memset(ans, 0, sizeof *ans);
  char ex[128];
  excerpt(body ? body : "", body ? len : 0, ex, sizeof ex);
  if (status >= 200 && status < 300) {
    answer(ans, PAYLOAD_OK, "HTTP %ld", status);
  } else if (status == 0) {
    answer(ans, PAYLOAD_RETRY, "no HTTP answer");
  } else if (status == 408 || status == 429 || status >= 500) {
    answer(ans, PAYLOAD_RETRY, "HTTP %ld%s%s", status, *ex ? ": " : "", ex);
  } else {
    answer(ans, PAYLOAD_FAIL, "HTTP %ld%s%s", status, *ex ? ": " : "", ex);
  }
}

static cJSON *parse_object(const char *body, size_t len) {
  if (!body || !len) {
    return NULL;
  }
  cJSON *j = cJSON_ParseWithLength(body, len);
  if (j && !cJSON_IsObject(j)) {
    cJSON_Delete(j);
    j = NULL;
  }
  return j;
}

static const char *json_string(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

void payload_telegram_answer(long status, const char *body, size_t len,
                             struct payload_answer *ans) {
  memset(ans, 0, sizeof *ans);
  cJSON *j = parse_object(body, len);
  const char *desc = j ? json_string(j, "description") : NULL;
  const cJSON *okv = j ? cJSON_GetObjectItemCaseSensitive(j, "ok") : NULL;
  const cJSON *params =
      j ? cJSON_GetObjectItemCaseSensitive(j, "parameters") : NULL;
  const cJSON *ra = cJSON_GetObjectItemCaseSensitive(params, "retry_after");
  const cJSON *mig =
      cJSON_GetObjectItemCaseSensitive(params, "migrate_to_chat_id");
  char ex[128];
  if (!desc) {
    excerpt(body ? body : "", body ? len : 0, ex, sizeof ex);
    desc = ex;
  }
  const char *sep = *desc ? ": " : "";
  if (status >= 200 && status < 300) {
    if (cJSON_IsFalse(okv)) {
      answer(ans, PAYLOAD_FAIL, "HTTP %ld, ok false%s%s", status, sep, desc);
    } else {
      answer(ans, PAYLOAD_OK, "HTTP %ld", status);
    }
  } else if (status == 0) {
    answer(ans, PAYLOAD_RETRY, "no HTTP answer");
  } else if (status == 429) {
    answer(ans, PAYLOAD_RETRY, "HTTP 429%s%s", sep, desc);
    if (cJSON_IsNumber(ra) && ra->valuedouble > 0 &&
        ra->valuedouble < 86400.0) {
      ans->retry_after_ms = (int64_t)(ra->valuedouble * 1000.0);
    }
  } else if (status >= 500) {
    answer(ans, PAYLOAD_RETRY, "HTTP %ld%s%s", status, sep, desc);
  } else if (cJSON_IsNumber(mig)) {
    answer(ans, PAYLOAD_FAIL, "HTTP %ld%s%s (the group is now chat_id %.0f)",
           status, sep, desc, mig->valuedouble);
  } else {
    answer(ans, PAYLOAD_FAIL, "HTTP %ld%s%s", status, sep, desc);
  }
  cJSON_Delete(j);
}

/* Zalo's codes that say "later" rather than "never": -32, the app's
 * request rate limit; -100, an unknown error that Zalo's table says to try
 * again later. Every other negative code is a request that cannot succeed
 * as it is (a bad or expired access token, a user who does not follow the
 * OA, no quota left for the month). */
static enum payload_verdict zalo_verdict(long code) {
  return code == -32 || code == -100 ? PAYLOAD_RETRY : PAYLOAD_FAIL;
}

static const char *zalo_hint(long code) {
  switch (code) {
    case -32:
      return " (request rate limit)";
    case -124:
    case -216:
      return " (access token: check token_file)";
    default:
      return "";
  }
}

void payload_zalo_answer(long status, const char *body, size_t len,
                         struct payload_answer *ans) {
  memset(ans, 0, sizeof *ans);
  if (status == 0) {
    answer(ans, PAYLOAD_RETRY, "no HTTP answer");
    return;
  }
  char ex[128];
  excerpt(body ? body : "", body ? len : 0, ex, sizeof ex);
  if (status == 429 || status == 408 || status >= 500) {
    answer(ans, PAYLOAD_RETRY, "HTTP %ld%s%s", status, *ex ? ": " : "", ex);
    return;
  }
  if (status < 200 || status >= 300) {
    answer(ans, PAYLOAD_FAIL, "HTTP %ld%s%s", status, *ex ? ": " : "", ex);
    return;
  }
  cJSON *j = parse_object(body, len);
  const cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
  if (!cJSON_IsNumber(e)) {
    answer(ans, PAYLOAD_RETRY, "HTTP %ld without Zalo's \"error\"%s%s", status,
           *ex ? ": " : "", ex);
  } else if (e->valuedouble == 0) {
    answer(ans, PAYLOAD_OK, "Zalo error 0");
  } else {
    long code = (long)e->valuedouble;
    const char *msg = json_string(j, "message");
    answer(ans, zalo_verdict(code), "Zalo error %ld%s%s%s", code,
           msg ? ": " : "", msg ? msg : "", zalo_hint(code));
  }
  cJSON_Delete(j);
}

/* ---- Telegram and Zalo --------------------------------------------------- */

/* The UTF-16 length of the UTF-8 character starting with byte c. */
static size_t utf16_units(unsigned char c) {
  return c >= 0xF0 ? 2 : 1;
}

/* The byte length of the longest start of s[0..n) of at most max UTF-16
 * code units, cut between characters. */
static size_t fit_units(const char *s, size_t n, size_t max, size_t *units) {
  size_t u = 0, i = 0;
  while (i < n) {
    size_t w = utf16_units((unsigned char)s[i]);
    if (u + w > max) {
      break;
    }
    u += w;
    i++;
    while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) {
      i++;
    }
  }
  *units = u;
  return i;
}

/* Writes head, a blank line and body into out, keeping the whole within
 * max UTF-16 units: the body is cut first, then the head, with "…".
 * Sets *head_len to the bytes of head kept. */
static int join_cut(const char *head, const char *body, size_t max,
                    struct buf *out, size_t *head_len) {
  size_t hn = strlen(head), bn = strlen(body), hu, bu;
  size_t hk = fit_units(head, hn, max, &hu);
  int rc = IOCD_OK;
  if (hk < hn) {
    /* The head alone is too long: keep room for the ellipsis. */
    hk = fit_units(head, hn, max - 1, &hu);
    *head_len = hk + strlen("…");
    rc = buf_append(out, head, hk);
    return rc ? rc : buf_puts(out, "…");
  }
  *head_len = hk;
  rc = buf_append(out, head, hk);
  if (rc || !bn || hu + 2 >= max) {
    return rc;
  }
  size_t room = max - hu - 2;
  size_t bk = fit_units(body, bn, room, &bu);
  rc = buf_puts(out, "\n\n");
  if (!rc && bk < bn) {
    bk = fit_units(body, bn, room - 1, &bu);
    rc = buf_append(out, body, bk);
    return rc ? rc : buf_puts(out, "…");
  }
  return rc ? rc : buf_append(out, body, bk);
}

/* The subject and text of n, rendered. */
static int render_both(const struct template_set *ts, const struct notice *n,
                       int64_t now_ns, struct buf *subj, struct buf *text) {
  int rc = template_render_subject(ts, n, now_ns, subj);
  if (!rc) {
    rc = template_render_text(ts, n, now_ns, text);
  }
  /* A text's last line break shows as nothing; drop it. */
  while (!rc && text->len && text->data[text->len - 1] == '\n') {
    text->data[--text->len] = '\0';
  }
  return rc;
}

int payload_telegram(const struct template_set *ts, const struct notice *n,
                     const char *chat_id, int64_t now_ns, struct buf *out) {
  struct buf subj, text, plain, html;
  buf_init(&subj, 0);
  buf_init(&text, 0);
  buf_init(&plain, 0);
  buf_init(&html, 0);
  size_t hk = 0;
  int rc = render_both(ts, n, now_ns, &subj, &text);
  if (!rc) {
    rc = join_cut(subj.data ? subj.data : "", text.data ? text.data : "",
                  PAYLOAD_TELEGRAM_MAX, &plain, &hk);
  }
  /* The subject in bold; everything escaped, so the text cannot open a
   * tag of its own. */
  if (!rc) {
    rc = buf_puts(&html, "<b>");
  }
  if (!rc) {
    rc = template_html_escape(plain.data ? plain.data : "", hk, &html);
  }
  if (!rc) {
    rc = buf_puts(&html, "</b>");
  }
  if (!rc && plain.len > hk) {
    rc = template_html_escape(plain.data + hk, plain.len - hk, &html);
  }
  if (!rc) {
    cJSON *root = cJSON_CreateObject();
    bool ok = root && add_str(root, "chat_id", chat_id) &&
              add_str(root, "text", html.data) &&
              add_str(root, "parse_mode", "HTML") &&
              cJSON_AddTrueToObject(root, "disable_web_page_preview");
    rc = finish(root, ok, out);
  }
  buf_cleanup(&subj);
  buf_cleanup(&text);
  buf_cleanup(&plain);
  buf_cleanup(&html);
  return rc;
}

int payload_zalo(const struct template_set *ts, const struct notice *n,
                 const char *user_id, int64_t now_ns, struct buf *out) {
  struct buf subj, text, plain;
  buf_init(&subj, 0);
  buf_init(&text, 0);
  buf_init(&plain, 0);
  size_t hk = 0;
  int rc = render_both(ts, n, now_ns, &subj, &text);
  if (!rc) {
    rc = join_cut(subj.data ? subj.data : "", text.data ? text.data : "",
                  PAYLOAD_ZALO_MAX, &plain, &hk);
  }
  if (!rc) {
    cJSON *root = cJSON_CreateObject();
    cJSON *rcp = root ? cJSON_AddObjectToObject(root, "recipient") : NULL;
    cJSON *msg = rcp ? cJSON_AddObjectToObject(root, "message") : NULL;
    bool ok = msg && add_str(rcp, "user_id", user_id) &&
              add_str(msg, "text", plain.data ? plain.data : "");
    rc = finish(root, ok, out);
  }
  buf_cleanup(&subj);
  buf_cleanup(&text);
  buf_cleanup(&plain);
  return rc;
}

/* ---- e-mail -------------------------------------------------------------- */

#define CRLF "\r\n"
/* RFC 2047: an encoded-word is at most 75 characters, a line holding one at
 * most 76. "=?UTF-8?B?" and "?=" take 12. */
#define EW_MAX 75
#define EW_LINE 76
#define EW_OVERHEAD 12

/* Appends s as encoded-words, folding before a word that would pass the
 * line; *col is the column the first word starts at, updated to the
 * column after the last. */
static int put_encoded_words(struct buf *out, const char *s, size_t *col) {
  size_t n = strlen(s), i = 0;
  int rc = IOCD_OK;
  while (!rc && i < n) {
    size_t room = *col < EW_LINE ? EW_LINE - *col : 0;
    if (room > EW_MAX) {
      room = EW_MAX;
    }
    size_t bytes = room > EW_OVERHEAD ? (room - EW_OVERHEAD) / 4 * 3 : 0;
    size_t k = bytes < n - i ? bytes : n - i;
    /* Back to the start of a character, never inside one. */
    while (k > 0 && i + k < n && ((unsigned char)s[i + k] & 0xC0) == 0x80) {
      k--;
    }
    if (k == 0) {
      /* No room left on this line (a fresh line holds 45 bytes, more
       * than any character). */
      rc = buf_puts(out, CRLF " ");
      *col = 1;
      continue;
    }
    size_t start = out->len;
    rc = buf_puts(out, "=?UTF-8?B?");
    if (!rc) {
      rc = base64_encode(out, s + i, k);
    }
    if (!rc) {
      rc = buf_puts(out, "?=");
    }
    *col += out->len - start;
    i += k;
    if (!rc && i < n) {
      rc = buf_puts(out, CRLF " ");
      *col = 1;
    }
  }
  return rc;
}

static bool is_ascii_printable(const char *s) {
  for (; *s; s++) {
    if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7E) {
      return false;
    }
  }
  return true;
}

/* RFC 5322 atext, and space: a display name of these needs no quotes. */
static bool is_plain_phrase(const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
          (c >= '0' && c <= '9') || c == ' ' ||
          strchr("!#$%&'*+-/=?^_`{|}~", c))) {
      return false;
    }
  }
  return true;
}

/* Splits a mailbox into its display name and address (both malloc'd; the
 * name may be empty). Returns IOCD_OK, IOCD_EINVAL or IOCD_ENOMEM. */
static int split_mailbox(const char *mb, char **name, char **addr) {
  *name = *addr = NULL;
  const char *lt = strrchr(mb, '<');
  const char *gt = lt ? strchr(lt, '>') : NULL;
  const char *a = mb, *ae = mb + strlen(mb);
  const char *d = mb, *de = mb;
  if (lt && gt) {
    a = lt + 1;
    ae = gt;
    de = lt;
  }
  while (a < ae && (*a == ' ' || *a == '\t')) {
    a++;
  }
  while (ae > a && (ae[-1] == ' ' || ae[-1] == '\t')) {
    ae--;
  }
  while (d < de && (*d == ' ' || *d == '\t')) {
    d++;
  }
  while (de > d && (de[-1] == ' ' || de[-1] == '\t')) {
    de--;
  }
  if (de - d >= 2 && *d == '"' && de[-1] == '"') {
    d++;
    de--;
  }
  if (ae == a || memchr(a, '@', (size_t)(ae - a)) == NULL) {
    return IOCD_EINVAL;
  }
  /* Printable ASCII without spaces: nothing can break the header line or
   * the SMTP command (addresses in UTF-8, SMTPUTF8, are not sent). */
  for (const char *p = a; p < ae; p++) {
    if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7F) {
      return IOCD_EINVAL;
    }
  }
  *addr = malloc((size_t)(ae - a) + 1);
  *name = malloc((size_t)(de - d) + 1);
  if (!*addr || !*name) {
    free(*addr);
    free(*name);
    *addr = *name = NULL;
    return IOCD_ENOMEM;
  }
  memcpy(*addr, a, (size_t)(ae - a));
  (*addr)[ae - a] = '\0';
  memcpy(*name, d, (size_t)(de - d));
  (*name)[de - d] = '\0';
  return IOCD_OK;
}

int payload_email_address(const char *mailbox, struct buf *out) {
  char *name, *addr;
  int rc = split_mailbox(mailbox ? mailbox : "", &name, &addr);
  if (!rc) {
    rc = buf_puts(out, addr);
  }
  free(name);
  free(addr);
  return rc;
}

/* Appends a mailbox for a header at column *col. */
static int put_mailbox(struct buf *out, const char *mb, size_t *col) {
  char *name, *addr;
  int rc = split_mailbox(mb, &name, &addr);
  if (rc) {
    return rc;
  }
  size_t start = out->len;
  if (!*name) {
    rc = buf_puts(out, addr);
  } else if (!is_ascii_printable(name)) {
    rc = put_encoded_words(out, name, col);
    start = out->len;
    if (!rc) {
      rc = buf_printf(out, " <%s>", addr);
    }
  } else if (is_plain_phrase(name)) {
    rc = buf_printf(out, "%s <%s>", name, addr);
  } else {
    rc = buf_putc(out, '"');
    for (const char *p = name; !rc && *p; p++) {
      if (*p == '"' || *p == '\\') {
        rc = buf_putc(out, '\\');
      }
      if (!rc) {
        rc = buf_putc(out, *p);
      }
    }
    if (!rc) {
      rc = buf_printf(out, "\" <%s>", addr);
    }
  }
  *col += out->len - start;
  free(name);
  free(addr);
  return rc;
}

/* "Tue, 08 Dec 2026 09:15:00 +0700" */
static int put_rfc5322_date(struct buf *out, int64_t t_ns, int32_t off) {
  static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
                                     "Thu", "Fri", "Sat"};
  static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};
  int64_t s = t_ns / NS_PER_SEC - (t_ns % NS_PER_SEC < 0);
  time_t tt = (time_t)(s + off);
  struct tm tm;
  if (!gmtime_r(&tt, &tm)) {
    return IOCD_EINVAL;
  }
  int32_t o = off < 0 ? -off : off;
  return buf_printf(out, "%s, %02d %s %04d %02d:%02d:%02d %c%02d%02d",
                    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
                    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
                    off < 0 ? '-' : '+', (int)(o / 3600), (int)(o % 3600 / 60));
}

/* Appends the part's headers and its body in base64, the text's line
 * breaks made CRLF first (the canonical form of text, RFC 2046 4.1.1). */
static int put_part(struct buf *out, const char *type, const char *text) {
  struct buf canon;
  buf_init(&canon, 0);
  int rc = IOCD_OK;
  for (const char *p = text; !rc && *p; p++) {
    if (*p == '\n' && (p == text || p[-1] != '\r')) {
      rc = buf_putc(&canon, '\r');
    }
    if (!rc) {
      rc = buf_putc(&canon, *p);
    }
  }
  if (!rc) {
    rc = buf_printf(out,
                    "Content-Type: %s; charset=UTF-8" CRLF
                    "Content-Transfer-Encoding: base64" CRLF CRLF,
                    type);
  }
  if (!rc) {
    rc = base64_encode_lines(out, canon.data ? canon.data : "", canon.len, 76,
                             CRLF);
  }
  buf_cleanup(&canon);
  return rc;
}

static const char *mail_domain(const char *from) {
  const char *gt = strrchr(from, '>');
  const char *at = strrchr(from, '@');
  if (!at || (gt && gt < at)) {
    return NULL;
  }
  return at + 1;
}

int payload_email(const struct template_set *ts, const struct notice *n,
                  const struct config_receiver *r, int64_t now_ns,
                  struct buf *out) {
  if (!r->from || !*r->from || r->nto == 0) {
    return IOCD_EINVAL;
  }
  struct buf subj, text, html;
  buf_init(&subj, 0);
  buf_init(&text, 0);
  buf_init(&html, 0);
  int rc = template_render_subject(ts, n, now_ns, &subj);
  if (!rc) {
    rc = template_render_text(ts, n, now_ns, &text);
  }
  if (!rc && r->html) {
    rc = template_render_html(ts, n, now_ns, &html);
  }
  size_t col = strlen("From: ");
  if (!rc) {
    rc = buf_puts(out, "From: ");
  }
  if (!rc) {
    rc = put_mailbox(out, r->from, &col);
  }
  if (!rc) {
    rc = buf_puts(out, CRLF "To: ");
    col = strlen("To: ");
  }
  for (size_t i = 0; !rc && i < r->nto; i++) {
    if (i) {
      rc = buf_puts(out, "," CRLF " ");
      col = 1;
    }
    if (!rc) {
      rc = put_mailbox(out, r->to[i], &col);
    }
  }
  if (!rc) {
    rc = buf_puts(out, CRLF "Subject: ");
    col = strlen("Subject: ");
  }
  const char *s = subj.data ? subj.data : "";
  if (!rc && is_ascii_printable(s) && col + subj.len <= 78 &&
      !strstr(s, "=?")) {
    rc = buf_puts(out, s);
  } else if (!rc) {
    rc = put_encoded_words(out, s, &col);
  }
  if (!rc) {
    rc = buf_puts(out, CRLF "Date: ");
  }
  if (!rc) {
    rc = put_rfc5322_date(out, now_ns, template_set_utc_offset(ts));
  }
  const char *dom = mail_domain(r->from);
  int dlen = 4;
  if (!dom) {
    dom = "iocd";
  } else {
    size_t l = strcspn(dom, "> \t");
    dlen = l < 255 ? (int)l : 255;
  }
  if (!rc) {
    rc = buf_printf(out,
                    CRLF "Message-ID: <%016" PRIx64 ".%" PRIx64 "@%.*s>" CRLF
                         "MIME-Version: 1.0" CRLF
                         "Auto-Submitted: auto-generated" CRLF,
                    n->id, (uint64_t)n->created_ns, dlen, dom);
  }
  /* '=' and '_' are not base64 characters, and "=_" cannot start a
   * quoted-printable line either: the boundary cannot occur in a part. */
  char boundary[48];
  snprintf(boundary, sizeof boundary, "=_iocd_%016" PRIx64 "_=", n->id);
  if (!rc && r->html) {
    rc = buf_printf(
        out,
        "Content-Type: multipart/alternative; boundary=\"%s\"" CRLF CRLF
        "--%s" CRLF,
        boundary, boundary);
    if (!rc) {
      rc = put_part(out, "text/plain", text.data ? text.data : "");
    }
    if (!rc) {
      rc = buf_printf(out, "--%s" CRLF, boundary);
    }
    if (!rc) {
      rc = put_part(out, "text/html", html.data ? html.data : "");
    }
    if (!rc) {
      rc = buf_printf(out, "--%s--" CRLF, boundary);
    }
  } else if (!rc) {
    rc = put_part(out, "text/plain", text.data ? text.data : "");
  }
  buf_cleanup(&subj);
  buf_cleanup(&text);
  buf_cleanup(&html);
  return rc;
}

/* ---- MQTT ---------------------------------------------------------------- */

/* One topic level: the value with '%', '+', '#' and '/' escaped. */
static int put_level(struct buf *out, const char *v) {
  if (!v || !*v) {
    return buf_putc(out, '_');
  }
  int rc = IOCD_OK;
  for (const char *p = v; *p && !rc; p++) {
    switch (*p) {
      case '%':
        rc = buf_puts(out, "%25");
        break;
      case '+':
        rc = buf_puts(out, "%2B");
        break;
      case '#':
        rc = buf_puts(out, "%23");
        break;
      case '/':
        rc = buf_puts(out, "%2F");
        break;
      default:
        rc = buf_putc(out, *p);
    }
  }
  return rc;
}

int payload_mqtt_topic(const struct template_set *ts, const char *prefix,
                       const struct notice_alert *a, struct buf *out) {
  size_t pn = prefix ? strlen(prefix) : 0;
  while (pn > 0 && prefix[pn - 1] == '/') {
    pn--;
  }
  int rc = buf_append(out, prefix ? prefix : "", pn);
  if (!rc && pn) {
    rc = buf_putc(out, '/');
  }
  if (!rc) {
    rc = put_level(out, notice_label_get(&a->labels, "alertname"));
  }
  if (!rc) {
    rc = buf_putc(out, '/');
  }
  if (!rc) {
    rc = put_level(
        out, notice_label_get(&a->labels, template_set_district_label(ts)));
  }
  const char *sys = notice_label_get(&a->labels, template_set_system_label(ts));
  if (!rc && sys) {
    rc = buf_putc(out, '/');
    if (!rc) {
      rc = put_level(out, sys);
    }
  }
  return rc;
}

int payload_mqtt_body(const struct template_set *ts, const struct notice *n,
                      const struct notice_alert *a, struct buf *out) {
  int32_t off = template_set_utc_offset(ts);
  cJSON *root = cJSON_CreateObject();
  bool ok =
      root && add_hex(root, "id", a->fingerprint) &&
      add_hex(root, "notice_id", n->id) &&
      add_str(root, "kind", notice_kind_name(n->kind)) &&
      add_str(root, "status", notice_status_name(a->status)) &&
      add_labels(root, "labels", &a->labels) &&
      add_labels(root, "annotations", &a->annotations) &&
      add_num_or_null(root, "value", a->has_value, a->value) &&
      add_num_or_null(root, "threshold", a->has_threshold, a->threshold) &&
      add_time(root, "startsAt", a->starts_ns, off);
  if (ok && a->status == NOTICE_RESOLVED) {
    ok = add_time(root, "endsAt", a->ends_ns, off);
  } else if (ok) {
    ok = cJSON_AddNullToObject(root, "endsAt") != NULL;
  }
  ok = ok && add_str_or_null(root, "acked_by", a->acked_by);
  if (ok && a->acked_by && a->acked_ns) {
    ok = add_time(root, "acked_at", a->acked_ns, off);
  } else if (ok) {
    ok = cJSON_AddNullToObject(root, "acked_at") != NULL;
  }
  ok = ok && add_str_or_null(root, "ack_comment", a->ack_comment);
  if (ok) {
    struct buf line;
    buf_init(&line, 0);
    ok = template_render_alert_line(ts, n, a, &line) == IOCD_OK &&
         add_str(root, "text", line.data);
    buf_cleanup(&line);
  }
  ok = ok && add_link(root, "link", ts, a, true);
  return finish(root, ok, out);
}
