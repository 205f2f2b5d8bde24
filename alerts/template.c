/*
 * Notification texts: the built-in Vietnamese and English wording, the
 * formatting of numbers, times and durations as people read them, and the
 * small {{...}} language of the overriding templates (compiled once per
 * set, checked with a column for `iocd check`).
 *
 * The built-in texts are written in C rather than as templates because
 * they have lines that appear only sometimes (the acknowledgement, the
 * link), which the template language deliberately cannot express.
 */
#include "alerts/template.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerts/template_int.h"
#include "core/clock.h"
#include "core/mem.h"
#include "core/numfmt.h"

/* ---- words --------------------------------------------------------------- */

enum word {
  W_TAG_INFO,
  W_TAG_WARNING,
  W_TAG_CRITICAL,
  W_TAG_RESOLVED,
  W_TAG_FLAPPING,
  W_TAG_STORM,
  W_TAG_DIGEST,
  W_TAG_DEAD,
  W_DISTRICT,
  W_SYSTEM,
  W_SEVERITY,
  W_VALUE,
  W_VALUE_RESOLVED,
  W_THRESHOLD,
  W_THRESHOLD_LC,
  W_TIME,
  W_ACK,
  W_LINK,
  W_ID,
  W_SINCE,
  W_FOR,
  W_FROM,
  W_TO,
  W_AT,
  W_SEV_INFO,
  W_SEV_WARNING,
  W_SEV_CRITICAL,
  W_NOT_ACKED,
  W_NO_ALERTS,
  W_NONE_FIRING,
  W_DEAD_DEFAULT,
  W_SEE_GRAFANA,
  W_COUNT
};

/* [word][language]: CONFIG_LANG_VI, CONFIG_LANG_EN. */
static const char *const words[W_COUNT][2] = {
    [W_TAG_INFO] = {"[THÔNG TIN]", "[INFO]"},
    [W_TAG_WARNING] = {"[CẢNH BÁO]", "[WARNING]"},
    [W_TAG_CRITICAL] = {"[NGHIÊM TRỌNG]", "[CRITICAL]"},
    [W_TAG_RESOLVED] = {"[ĐÃ KHẮC PHỤC]", "[RESOLVED]"},
    [W_TAG_FLAPPING] = {"[DAO ĐỘNG]", "[FLAPPING]"},
    [W_TAG_STORM] = {"[TỔNG HỢP]", "[SUMMARY]"},
    [W_TAG_DIGEST] = {"[BÁO CÁO]", "[REPORT]"},
    [W_TAG_DEAD] = {"[LỖI GỬI THÔNG BÁO]", "[DELIVERY FAILED]"},
    [W_DISTRICT] = {"Địa bàn", "District"},
    [W_SYSTEM] = {"Hệ thống", "System"},
    [W_SEVERITY] = {"Mức độ", "Severity"},
    [W_VALUE] = {"Giá trị", "Value"},
    [W_VALUE_RESOLVED] = {"Giá trị khi khắc phục", "Value when resolved"},
    [W_THRESHOLD] = {"Ngưỡng", "Threshold"},
    [W_THRESHOLD_LC] = {"ngưỡng", "threshold"},
    [W_TIME] = {"Thời gian", "Time"},
    [W_ACK] = {"Xác nhận", "Acknowledged"},
    [W_LINK] = {"Chi tiết", "Details"},
    [W_ID] = {"Mã cảnh báo", "Alert id"},
    [W_SINCE] = {"từ", "since"},
    [W_FOR] = {"đã", "for"},
    [W_FROM] = {"từ", "from"},
    [W_TO] = {"đến", "to"},
    [W_AT] = {"lúc", "at"},
    [W_SEV_INFO] = {"thông tin", "info"},
    [W_SEV_WARNING] = {"cảnh báo", "warning"},
    [W_SEV_CRITICAL] = {"nghiêm trọng", "critical"},
    [W_NOT_ACKED] = {"chưa được xác nhận sau", "not acknowledged after"},
    [W_NO_ALERTS] = {"không có cảnh báo", "no alerts"},
    [W_NONE_FIRING] = {"Không có cảnh báo nào đang hoạt động.",
                       "No alerts are firing."},
    [W_DEAD_DEFAULT] = {"không gửi được thông báo",
                        "a notification could not be delivered"},
    [W_SEE_GRAFANA] = {"Xem trên Grafana", "Open in Grafana"},
};

static const char *word(enum config_language lang, enum word w) {
  return words[w][lang == CONFIG_LANG_EN ? 1 : 0];
}

static bool en(enum config_language lang) {
  return lang == CONFIG_LANG_EN;
}

/* At most this many alerts are listed one per line in a digest. */
#define LIST_MAX 100
/* At most this many districts are named in a subject. */
#define SUBJECT_NAMES 4

/* ---- the set ------------------------------------------------------------- */

struct esc_tier {
  char *receiver;
  int tier; /* 1 for the first */
  int64_t after_ms;
};

struct template_set {
  enum config_language lang;
  int32_t utc_offset_s;
  char *district_label;
  char *system_label;
  char *grafana_url; /* without a trailing '/'; NULL: no links */
  struct tpl subject, text, html;
  bool has_subject, has_text, has_html;
  struct esc_tier *esc;
  size_t nesc, capesc;
  int flap_transitions;
  int64_t flap_window_ms;
};

static int collect_escalation(struct template_set *ts,
                              const struct config_route *r) {
  for (size_t i = 0; i < r->nescalation; i++) {
    int rc =
        mem_grow((void **)&ts->esc, &ts->capesc, ts->nesc, sizeof *ts->esc);
    if (rc) {
      return rc;
    }
    struct esc_tier *e = &ts->esc[ts->nesc];
    e->receiver = mem_strdup(r->escalation[i].receiver);
    if (r->escalation[i].receiver && !e->receiver) {
      return IOCD_ENOMEM;
    }
    e->tier = (int)i + 1;
    e->after_ms = r->escalation[i].after_ms;
    ts->nesc++;
  }
  for (size_t i = 0; i < r->nroutes; i++) {
    int rc = collect_escalation(ts, &r->routes[i]);
    if (rc) {
      return rc;
    }
  }
  return IOCD_OK;
}

static int compile_override(const char *text, const struct config_place *pl,
                            const char *name, struct tpl *t, bool *has,
                            struct iocd_err *err) {
  if (!text) {
    return IOCD_OK;
  }
  struct tpl_error pe = {0};
  int rc = template__compile(text, t, &pe);
  if (rc == IOCD_EPARSE) {
    return template__report(text, &pe, pl, name, err);
  }
  if (rc) {
    return iocd_err_set(err, rc, "%s: out of memory", name);
  }
  *has = true;
  return IOCD_OK;
}

void template_set_free(struct template_set *ts) {
  if (!ts) {
    return;
  }
  free(ts->district_label);
  free(ts->system_label);
  free(ts->grafana_url);
  template__cleanup(&ts->subject);
  template__cleanup(&ts->text);
  template__cleanup(&ts->html);
  for (size_t i = 0; i < ts->nesc; i++) {
    free(ts->esc[i].receiver);
  }
  free(ts->esc);
  free(ts);
}

/* Copies what the texts need from cfg. Returns IOCD_OK or IOCD_ENOMEM. */
static int copy_config(struct template_set *ts,
                       const struct config_notify *cfg) {
  if (cfg->grafana_url && *cfg->grafana_url) {
    ts->grafana_url = mem_strdup(cfg->grafana_url);
    if (!ts->grafana_url) {
      return IOCD_ENOMEM;
    }
    size_t n = strlen(ts->grafana_url);
    while (n > 0 && ts->grafana_url[n - 1] == '/') {
      ts->grafana_url[--n] = '\0';
    }
  }
  if (cfg->flap_transitions > 0) {
    ts->flap_transitions = cfg->flap_transitions;
  }
  if (cfg->flap_window_ms > 0) {
    ts->flap_window_ms = cfg->flap_window_ms;
  }
  return collect_escalation(ts, &cfg->route);
}

int template_set_new(const struct config_notify *cfg,
                     const struct template_opts *opts,
                     struct template_set **out, struct iocd_err *err) {
  *out = NULL;
  struct template_set *ts = calloc(1, sizeof *ts);
  if (!ts) {
    return iocd_err_set(err, IOCD_ENOMEM, "templates: out of memory");
  }
  ts->lang = opts ? opts->lang : CONFIG_LANG_VI;
  ts->utc_offset_s = opts ? opts->utc_offset_s : 0;
  ts->district_label = mem_strdup(
      opts && opts->district_label ? opts->district_label : "district");
  ts->system_label =
      mem_strdup(opts && opts->system_label ? opts->system_label : "system");
  ts->flap_transitions = 4;
  ts->flap_window_ms = 3600 * 1000;
  int rc = ts->district_label && ts->system_label ? IOCD_OK : IOCD_ENOMEM;
  if (!rc && cfg) {
    rc = copy_config(ts, cfg);
  }
  if (rc) {
    iocd_err_set(err, rc, "templates: out of memory");
    goto fail;
  }
  if (cfg) {
    const struct config_notify_templates *tp = &cfg->templates;
    rc = compile_override(tp->subject, &tp->subject_place,
                          "notifications.templates.subject", &ts->subject,
                          &ts->has_subject, err);
    if (!rc) {
      rc = compile_override(tp->text, &tp->text_place,
                            "notifications.templates.text", &ts->text,
                            &ts->has_text, err);
    }
    if (!rc) {
      rc = compile_override(tp->html, &tp->html_place,
                            "notifications.templates.html", &ts->html,
                            &ts->has_html, err);
    }
    if (rc) {
      goto fail;
    }
  }
  *out = ts;
  return IOCD_OK;
fail:
  template_set_free(ts);
  return rc;
}

enum config_language template_set_lang(const struct template_set *ts) {
  return ts->lang;
}

int32_t template_set_utc_offset(const struct template_set *ts) {
  return ts->utc_offset_s;
}

const char *template_set_district_label(const struct template_set *ts) {
  return ts->district_label;
}

const char *template_set_system_label(const struct template_set *ts) {
  return ts->system_label;
}

/* ---- what a notice says -------------------------------------------------- */

/* What one rendering needs: the set, the notice, the time, the format. */
struct rctx {
  const struct template_set *ts;
  const struct notice *n;
  int64_t now;
  bool html;
};

static const char *label(const struct notice_alert *a, const char *name) {
  return a ? notice_label_get(&a->labels, name) : NULL;
}

static const char *annotation(const struct notice_alert *a, const char *name) {
  return a ? notice_label_get(&a->annotations, name) : NULL;
}

static int severity_rank(const char *sev) {
  if (sev && strcmp(sev, "critical") == 0) {
    return 2;
  }
  if (sev && strcmp(sev, "info") == 0) {
    return 0;
  }
  return 1;
}

static enum word alert_tag(const struct notice_alert *a) {
  if (a->status == NOTICE_RESOLVED) {
    return W_TAG_RESOLVED;
  }
  int r = severity_rank(label(a, "severity"));
  return r == 2 ? W_TAG_CRITICAL : r == 0 ? W_TAG_INFO : W_TAG_WARNING;
}

static size_t count_status(const struct notice *n, enum notice_status s) {
  size_t c = 0;
  for (size_t i = 0; i < n->nalerts; i++) {
    c += n->alerts[i].status == s;
  }
  return c;
}

static enum word notice_tag(const struct notice *n) {
  switch (n->kind) {
    case NOTICE_FLAPPING:
      return W_TAG_FLAPPING;
    case NOTICE_STORM:
      return W_TAG_STORM;
    case NOTICE_DIGEST:
      return W_TAG_DIGEST;
    case NOTICE_DEAD_LETTER:
      return W_TAG_DEAD;
    case NOTICE_ALERTS:
    case NOTICE_ESCALATION:
      break;
  }
  int worst = -1;
  for (size_t i = 0; i < n->nalerts; i++) {
    const struct notice_alert *a = &n->alerts[i];
    if (a->status == NOTICE_FIRING) {
      int r = severity_rank(label(a, "severity"));
      worst = r > worst ? r : worst;
    }
  }
  return worst == 2   ? W_TAG_CRITICAL
         : worst == 1 ? W_TAG_WARNING
         : worst == 0 ? W_TAG_INFO
                      : W_TAG_RESOLVED;
}

/* The headline of an alert: its summary, else its name, with the district
 * when the summary does not name it already. */
static int put_headline(const struct rctx *c, const struct notice_alert *a,
                        struct buf *out) {
  const char *s = annotation(a, "summary");
  if (!s || !*s) {
    s = label(a, "alertname");
  }
  if (!s) {
    s = "?";
  }
  const char *d = label(a, c->ts->district_label);
  int rc = buf_puts(out, s);
  if (!rc && d && *d && !strstr(s, d)) {
    rc = buf_printf(out, " — %s", d);
  }
  return rc;
}

/* How long an escalation waited: the tier's delay in the route tree, else
 * since the first alert started. */
static int put_escalation(const struct rctx *c, struct buf *out) {
  const struct template_set *ts = c->ts;
  int64_t from = c->now, to = c->now;
  bool found = false;
  for (size_t i = 0; i < ts->nesc && !found; i++) {
    if (ts->esc[i].tier == c->n->tier && ts->esc[i].receiver &&
        c->n->receiver && strcmp(ts->esc[i].receiver, c->n->receiver) == 0) {
      from = 0;
      to = ts->esc[i].after_ms * NS_PER_MS;
      found = true;
    }
  }
  if (!found && c->n->nalerts) {
    from = c->n->alerts[0].starts_ns;
  }
  int rc = buf_printf(out, "%s ", word(ts->lang, W_NOT_ACKED));
  return rc ? rc : template_format_duration(from, to, ts->lang, out);
}

int template_alert_link(const struct template_set *ts,
                        const struct notice_alert *a, struct buf *out) {
  const char *d = label(a, ts->district_label);
  if (!ts->grafana_url || !d || !*d) {
    return IOCD_OK;
  }
  int rc = buf_printf(out, "%s/d/iocd-district?var-district=", ts->grafana_url);
  return rc ? rc : template_url_encode(d, out);
}

/* Appends a field of the notification itself. */
static int put_notice_field(const struct rctx *c, enum tpl_field f,
                            struct buf *out) {
  const struct notice *n = c->n;
  switch (f) {
    case F_TAG:
      return buf_puts(out, word(c->ts->lang, notice_tag(n)));
    case F_RECEIVER:
      return n->receiver ? buf_puts(out, n->receiver) : IOCD_OK;
    case F_COUNT:
      return buf_printf(out, "%zu", n->nalerts);
    case F_FIRING_COUNT:
      return buf_printf(out, "%zu", count_status(n, NOTICE_FIRING));
    case F_RESOLVED_COUNT:
      return buf_printf(out, "%zu", count_status(n, NOTICE_RESOLVED));
    case F_ESCALATION:
      return n->kind == NOTICE_ESCALATION ? put_escalation(c, out) : IOCD_OK;
    case F_NOTICE_TEXT:
      return n->text ? buf_puts(out, n->text) : IOCD_OK;
    case F_NOTICE_ID:
      return buf_printf(out, "%016" PRIx64, n->id);
    default:
      return IOCD_OK;
  }
}

/* Appends the field of node nd for alert a (NULL: alert fields are empty),
 * unescaped. */
static int put_field(const struct rctx *c, const struct notice_alert *a,
                     const struct tpl_node *nd, struct buf *out) {
  if (nd->field >= F_TAG && nd->field <= F_NOTICE_ID) {
    return put_notice_field(c, nd->field, out);
  }
  if (!a) {
    return IOCD_OK;
  }
  const struct template_set *ts = c->ts;
  enum config_language lang = ts->lang;
  const char *s = NULL;
  bool resolved = a->status == NOTICE_RESOLVED;
  switch (nd->field) {
    case F_ALERTNAME:
      s = label(a, "alertname");
      break;
    case F_DISTRICT:
      s = label(a, ts->district_label);
      break;
    case F_SYSTEM:
      s = label(a, ts->system_label);
      break;
    case F_SEVERITY:
      s = label(a, "severity");
      break;
    case F_STATUS:
      s = notice_status_name(a->status);
      break;
    case F_VALUE:
      return template_format_value(a, a->has_value, a->value, lang, out);
    case F_THRESHOLD:
      return template_format_value(a, a->has_threshold, a->threshold, lang,
                                   out);
    case F_VALUE_PCT:
      return a->has_value
                 ? numfmt_pct(a->value, template__numfmt_lang(lang), out)
                 : buf_putc(out, '-');
    case F_THRESHOLD_PCT:
      return a->has_threshold
                 ? numfmt_pct(a->threshold, template__numfmt_lang(lang), out)
                 : buf_putc(out, '-');
    case F_SINCE:
      return template_format_time(a->starts_ns, ts->utc_offset_s, lang, out);
    case F_SINCE_RFC3339:
      return template_format_rfc3339(a->starts_ns, ts->utc_offset_s, out);
    case F_UNTIL:
      return resolved
                 ? template_format_time(a->ends_ns, ts->utc_offset_s, lang, out)
                 : IOCD_OK;
    case F_DURATION:
      return template_format_duration(
          a->starts_ns, resolved ? a->ends_ns : c->now, lang, out);
    case F_SUMMARY:
      s = annotation(a, "summary");
      break;
    case F_DESCRIPTION:
      s = annotation(a, "description");
      break;
    case F_LINK:
      return template_alert_link(ts, a, out);
    case F_ACKED_BY:
      s = a->acked_by;
      break;
    case F_ACK_COMMENT:
      s = a->ack_comment;
      break;
    case F_ID:
      return buf_printf(out, "%016" PRIx64, a->fingerprint);
    case F_REASON:
      s = a->reason;
      break;
    case F_LABEL:
      s = label(a, nd->s);
      break;
    case F_ANNOTATION:
      s = annotation(a, nd->s);
      break;
    default:
      break;
  }
  return s ? buf_puts(out, s) : IOCD_OK;
}

/* Appends s[0..n), HTML-escaped when rendering HTML. */
static int put_text(const struct rctx *c, const char *s, size_t n,
                    struct buf *out) {
  return c->html ? template_html_escape(s, n, out) : buf_append(out, s, n);
}

static bool in_block(enum tpl_block b, const struct notice_alert *a) {
  return b == B_ALERTS || (b == B_FIRING && a->status == NOTICE_FIRING) ||
         (b == B_RESOLVED && a->status == NOTICE_RESOLVED);
}

/* Runs nodes [from, to) of t for alert a. */
static int run(const struct rctx *c, const struct tpl *t, size_t from,
               size_t to, const struct notice_alert *a, struct buf *out) {
  int rc = IOCD_OK;
  for (size_t i = from; i < to && !rc; i++) {
    const struct tpl_node *nd = &t->v[i];
    switch (nd->kind) {
      case N_TEXT:
        rc = buf_append(out, nd->s, nd->n);
        break;
      case N_FIELD: {
        struct buf tmp;
        buf_init(&tmp, out->max);
        rc = put_field(c, a, nd, &tmp);
        if (!rc && tmp.len) {
          rc = put_text(c, tmp.data, tmp.len, out);
        }
        buf_cleanup(&tmp);
        break;
      }
      case N_OPEN:
        for (size_t k = 0; k < c->n->nalerts && !rc; k++) {
          if (in_block(nd->block, &c->n->alerts[k])) {
            rc = run(c, t, i + 1, nd->end, &c->n->alerts[k], out);
          }
        }
        i = nd->end;
        break;
      case N_CLOSE:
        break;
    }
  }
  return rc;
}

/* A text or HTML override: once with its blocks, or once per alert. */
static int run_override(const struct rctx *c, const struct tpl *t,
                        struct buf *out) {
  const struct notice *n = c->n;
  if (t->has_block || n->nalerts == 0) {
    return run(c, t, 0, t->n, n->nalerts ? &n->alerts[0] : NULL, out);
  }
  int rc = IOCD_OK;
  for (size_t i = 0; i < n->nalerts && !rc; i++) {
    if (i) {
      rc = buf_puts(out, c->html ? "\n" : "\n\n");
    }
    if (!rc) {
      rc = run(c, t, 0, t->n, &n->alerts[i], out);
    }
  }
  return rc;
}

static bool overridable(const struct notice *n) {
  return n->kind == NOTICE_ALERTS || n->kind == NOTICE_ESCALATION;
}

/* ---- the built-in subject ------------------------------------------------ */

/* "3 cảnh báo", "3 alerts", "1 alert" */
static int put_count(enum config_language lang, size_t n, struct buf *out) {
  return buf_printf(out,
                    !en(lang) ? "%zu cảnh báo"
                    : n == 1  ? "%zu alert"
                              : "%zu alerts",
                    n);
}

/* "3 cảnh báo, 1 đã khắc phục: Ea H'Leo, Krông Búk" */
static int put_group_headline(const struct rctx *c, struct buf *out) {
  const struct notice *n = c->n;
  enum config_language lang = c->ts->lang;
  size_t nf = count_status(n, NOTICE_FIRING), nr = n->nalerts - nf;
  int rc;
  if (nf && nr) {
    rc = buf_printf(out,
                    !en(lang) ? "%zu cảnh báo, %zu đã khắc phục"
                    : nf == 1 ? "%zu alert, %zu resolved"
                              : "%zu alerts, %zu resolved",
                    nf, nr);
  } else {
    rc = put_count(lang, n->nalerts, out);
  }
  /* Name the districts, else the alert names, each once. */
  const char *key = c->ts->district_label;
  bool any = false;
  for (size_t i = 0; i < n->nalerts && !any; i++) {
    any = label(&n->alerts[i], key) != NULL;
  }
  if (!any) {
    key = "alertname";
  }
  size_t named = 0;
  for (size_t i = 0; i < n->nalerts && !rc; i++) {
    const char *v = label(&n->alerts[i], key);
    bool seen = !v;
    for (size_t j = 0; j < i && !seen; j++) {
      const char *w = label(&n->alerts[j], key);
      seen = w && strcmp(v, w) == 0;
    }
    if (seen) {
      continue;
    }
    if (named == SUBJECT_NAMES) {
      rc = buf_puts(out, ", …");
      break;
    }
    rc = buf_printf(out, "%s%s", named ? ", " : ": ", v);
    named++;
  }
  return rc;
}

static int put_first_line(const char *s, struct buf *out) {
  const char *e = strchr(s, '\n');
  return buf_append(out, s, e ? (size_t)(e - s) : strlen(s));
}

static int default_subject(const struct rctx *c, struct buf *out) {
  const struct notice *n = c->n;
  enum config_language lang = c->ts->lang;
  int rc = buf_printf(out, "%s ", word(lang, notice_tag(n)));
  if (rc) {
    return rc;
  }
  switch (n->kind) {
    case NOTICE_ALERTS:
    case NOTICE_ESCALATION:
      if (n->nalerts == 1) {
        rc = put_headline(c, &n->alerts[0], out);
      } else if (n->nalerts == 0) {
        rc = buf_puts(out, word(lang, W_NO_ALERTS));
      } else {
        rc = put_group_headline(c, out);
      }
      if (!rc && n->kind == NOTICE_ESCALATION) {
        rc = buf_puts(out, " — ");
        if (!rc) {
          rc = put_escalation(c, out);
        }
      }
      return rc;
    case NOTICE_FLAPPING:
      return n->nalerts ? put_headline(c, &n->alerts[0], out)
                        : buf_puts(out, word(lang, W_NO_ALERTS));
    case NOTICE_STORM:
      return put_count(lang, n->nalerts, out);
    case NOTICE_DIGEST: {
      if (n->text && *n->text) {
        rc = put_first_line(n->text, out);
      } else {
        rc =
            template_digest_text(lang, c->ts->utc_offset_s, n->created_ns, out);
      }
      size_t nf = count_status(n, NOTICE_FIRING);
      if (!rc && nf) {
        rc = buf_printf(out, en(lang) ? ": %zu firing" : ": %zu đang cảnh báo",
                        nf);
      } else if (!rc) {
        rc =
            buf_printf(out, ": %s",
                       en(lang) ? "no alerts firing" : "không có cảnh báo nào");
      }
      return rc;
    }
    case NOTICE_DEAD_LETTER:
      return n->text && *n->text ? put_first_line(n->text, out)
                                 : buf_puts(out, word(lang, W_DEAD_DEFAULT));
  }
  return rc;
}

/* ---- the built-in body: text and HTML from the same rows ----------------- */

/* Writes paragraphs and "label: value" rows as text lines, or as HTML
 * paragraphs and a table. */
struct sink {
  const struct rctx *c;
  struct buf *out;
  bool in_table;
};

static int sink_end_table(struct sink *k) {
  if (!k->in_table) {
    return IOCD_OK;
  }
  k->in_table = false;
  return buf_puts(k->out, "</table>\n");
}

/* A paragraph: text with its line breaks. */
static int sink_para(struct sink *k, const char *s) {
  if (!k->c->html) {
    int rc = buf_puts(k->out, s);
    return rc ? rc : buf_putc(k->out, '\n');
  }
  int rc = sink_end_table(k);
  if (!rc) {
    rc = buf_puts(k->out, "<p>");
  }
  while (!rc && *s) {
    const char *e = strchr(s, '\n');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    rc = template_html_escape(s, len, k->out);
    if (!rc && e) {
      rc = buf_puts(k->out, "<br>\n");
    }
    s += len + (e ? 1 : 0);
  }
  return rc ? rc : buf_puts(k->out, "</p>\n");
}

static int sink_row(struct sink *k, enum word w, const char *value, bool link) {
  const char *name = word(k->c->ts->lang, w);
  if (!k->c->html) {
    return buf_printf(k->out, "%s: %s\n", name, value);
  }
  int rc = IOCD_OK;
  if (!k->in_table) {
    k->in_table = true;
    rc = buf_puts(k->out, "<table cellpadding=\"4\">\n");
  }
  if (!rc) {
    rc = buf_printf(k->out, "<tr><th align=\"left\">%s</th><td>", name);
  }
  if (!rc && link) {
    rc = buf_puts(k->out, "<a href=\"");
    if (!rc) {
      rc = template_html_escape(value, strlen(value), k->out);
    }
    if (!rc) {
      rc = buf_printf(k->out, "\">%s</a>", word(k->c->ts->lang, W_SEE_GRAFANA));
    }
  } else if (!rc) {
    rc = template_html_escape(value, strlen(value), k->out);
  }
  return rc ? rc : buf_puts(k->out, "</td></tr>\n");
}

static const char *severity_word(enum config_language lang, const char *s) {
  int r = severity_rank(s);
  if (!s || (r == 1 && strcmp(s, "warning") != 0)) {
    return s;
  }
  return word(lang, r == 2   ? W_SEV_CRITICAL
                    : r == 0 ? W_SEV_INFO
                             : W_SEV_WARNING);
}

/* "từ 09:15 ngày 08/12/2026, đã 2 giờ 15 phút" or "từ ... đến ... (...)" */
static int put_span(const struct rctx *c, const struct notice_alert *a,
                    struct buf *v) {
  enum config_language lang = c->ts->lang;
  int32_t off = c->ts->utc_offset_s;
  bool resolved = a->status == NOTICE_RESOLVED;
  int rc = buf_printf(v, "%s ", word(lang, resolved ? W_FROM : W_SINCE));
  if (!rc) {
    rc = template_format_time(a->starts_ns, off, lang, v);
  }
  if (!rc && resolved) {
    rc = buf_printf(v, " %s ", word(lang, W_TO));
    if (!rc) {
      rc = template_format_time(a->ends_ns, off, lang, v);
    }
    if (!rc) {
      rc = buf_puts(v, " (");
    }
    if (!rc) {
      rc = template_format_duration(a->starts_ns, a->ends_ns, lang, v);
    }
    if (!rc) {
      rc = buf_putc(v, ')');
    }
  } else if (!rc) {
    rc = buf_printf(v, ", %s ", word(lang, W_FOR));
    if (!rc) {
      rc = template_format_duration(a->starts_ns, c->now, lang, v);
    }
  }
  return rc;
}

/* "10,61% (ngưỡng: 30%)" */
static int put_value_threshold(const struct rctx *c,
                               const struct notice_alert *a, struct buf *v) {
  enum config_language lang = c->ts->lang;
  int rc = template_format_value(a, a->has_value, a->value, lang, v);
  if (!rc && a->has_threshold) {
    rc = buf_printf(v, " (%s: ", word(lang, W_THRESHOLD_LC));
    if (!rc) {
      rc = template_format_value(a, true, a->threshold, lang, v);
    }
    if (!rc) {
      rc = buf_putc(v, ')');
    }
  }
  return rc;
}

/* The rows of one alert (the headline is written by the caller). */
static int alert_rows(struct sink *k, const struct notice_alert *a) {
  const struct rctx *c = k->c;
  enum config_language lang = c->ts->lang;
  struct buf v;
  buf_init(&v, 1 << 20);
  int rc = IOCD_OK;
  const char *desc = annotation(a, "description");
  if (desc && *desc) {
    rc = sink_para(k, desc);
  }
  const char *d = label(a, c->ts->district_label);
  if (!rc && d) {
    rc = sink_row(k, W_DISTRICT, d, false);
  }
  const char *sys = label(a, c->ts->system_label);
  if (!rc && sys) {
    rc = sink_row(k, W_SYSTEM, sys, false);
  }
  const char *sev = severity_word(lang, label(a, "severity"));
  if (!rc && sev) {
    rc = sink_row(k, W_SEVERITY, sev, false);
  }
  if (!rc && (a->has_value || a->has_threshold)) {
    buf_reset(&v);
    if (a->has_value) {
      rc = put_value_threshold(c, a, &v);
    } else {
      rc = template_format_value(a, true, a->threshold, lang, &v);
    }
    if (!rc) {
      /* A resolved alert keeps the words of its firing (its summary said
       * what was wrong), so its value is named as the recovery's. */
      enum word w = !a->has_value                  ? W_THRESHOLD
                    : a->status == NOTICE_RESOLVED ? W_VALUE_RESOLVED
                                                   : W_VALUE;
      rc = sink_row(k, w, v.data, false);
    }
  }
  if (!rc) {
    buf_reset(&v);
    rc = put_span(c, a, &v);
    if (!rc) {
      rc = sink_row(k, W_TIME, v.data, false);
    }
  }
  if (!rc && a->acked_by) {
    buf_reset(&v);
    rc = buf_puts(&v, a->acked_by);
    if (!rc && a->acked_ns) {
      rc = buf_printf(&v, " %s ", word(lang, W_AT));
      if (!rc) {
        rc = template_format_time(a->acked_ns, c->ts->utc_offset_s, lang, &v);
      }
    }
    if (!rc && a->ack_comment && *a->ack_comment) {
      rc = buf_printf(&v, ": %s", a->ack_comment);
    }
    if (!rc) {
      rc = sink_row(k, W_ACK, v.data, false);
    }
  }
  if (!rc) {
    buf_reset(&v);
    rc = template_alert_link(c->ts, a, &v);
    if (!rc && v.len) {
      rc = sink_row(k, W_LINK, v.data, true);
    }
  }
  if (!rc) {
    buf_reset(&v);
    rc = buf_printf(&v, "%016" PRIx64, a->fingerprint);
    if (!rc) {
      rc = sink_row(k, W_ID, v.data, false);
    }
  }
  if (!rc) {
    rc = sink_end_table(k);
  }
  buf_cleanup(&v);
  return rc;
}

int template_render_alert_line(const struct template_set *ts,
                               const struct notice *n,
                               const struct notice_alert *a, struct buf *out) {
  struct rctx c = {.ts = ts, .n = n};
  int rc = buf_printf(out, "%s ", word(ts->lang, alert_tag(a)));
  return rc ? rc : put_headline(&c, a, out);
}

/* The alerts one by one: with a numbered heading when there are several. */
static int alert_blocks(struct sink *k) {
  const struct notice *n = k->c->n;
  struct buf h;
  buf_init(&h, 1 << 20);
  int rc = IOCD_OK;
  for (size_t i = 0; i < n->nalerts && !rc; i++) {
    const struct notice_alert *a = &n->alerts[i];
    if (n->nalerts > 1) {
      buf_reset(&h);
      rc = buf_printf(&h, "%zu. ", i + 1);
      if (!rc) {
        rc = template_render_alert_line(k->c->ts, n, a, &h);
      }
      if (!rc && k->c->html) {
        rc = buf_puts(k->out, "<h3>");
        if (!rc) {
          rc = template_html_escape(h.data, h.len, k->out);
        }
        if (!rc) {
          rc = buf_puts(k->out, "</h3>\n");
        }
      } else if (!rc) {
        rc = buf_printf(k->out, "%s%s\n", i ? "\n" : "", h.data);
      }
    }
    if (!rc) {
      rc = alert_rows(k, a);
    }
  }
  buf_cleanup(&h);
  return rc;
}

/* One line per alert, for digests: "[CẢNH BÁO] headline — 10,61%
 * (ngưỡng: 30%), từ 09:15 ngày 08/12/2026". */
static int alert_list(struct sink *k) {
  const struct rctx *c = k->c;
  const struct notice *n = c->n;
  enum config_language lang = c->ts->lang;
  struct buf v;
  buf_init(&v, 1 << 20);
  int rc = IOCD_OK;
  if (c->html && n->nalerts) {
    rc = buf_puts(k->out, "<ul>\n");
  }
  for (size_t i = 0; i < n->nalerts && !rc; i++) {
    const struct notice_alert *a = &n->alerts[i];
    buf_reset(&v);
    if (i == LIST_MAX) {
      rc =
          buf_printf(&v, en(lang) ? "… and %zu more" : "… và %zu cảnh báo khác",
                     n->nalerts - i);
    } else {
      rc = template_render_alert_line(c->ts, n, a, &v);
      if (!rc && a->has_value) {
        rc = buf_puts(&v, " — ");
        if (!rc) {
          rc = put_value_threshold(c, a, &v);
        }
      }
      if (!rc) {
        rc = buf_puts(&v, ", ");
      }
      if (!rc) {
        rc = put_span(c, a, &v);
      }
    }
    if (!rc && c->html) {
      rc = buf_puts(k->out, "<li>");
      if (!rc) {
        rc = template_html_escape(v.data, v.len, k->out);
      }
      if (!rc) {
        rc = buf_puts(k->out, "</li>\n");
      }
    } else if (!rc) {
      rc = buf_printf(k->out, "• %s\n", v.data);
    }
    if (i == LIST_MAX) {
      break;
    }
  }
  if (!rc && c->html && n->nalerts) {
    rc = buf_puts(k->out, "</ul>\n");
  }
  buf_cleanup(&v);
  return rc;
}

/* The sentence that opens an escalation or a flapping notice. */
static int lead_sentence(const struct rctx *c, struct buf *v) {
  const struct notice *n = c->n;
  enum config_language lang = c->ts->lang;
  if (n->kind == NOTICE_ESCALATION) {
    int rc = buf_puts(v, en(lang) ? "Escalation: " : "Chuyển cấp: ");
    if (!rc) {
      rc = put_escalation(c, v);
    }
    return rc ? rc
              : buf_printf(v, en(lang) ? " (tier %d)." : " (cấp %d).", n->tier);
  }
  struct buf w;
  buf_init(&w, 256);
  int rc =
      template_format_duration(0, c->ts->flap_window_ms * NS_PER_MS, lang, &w);
  if (!rc && en(lang)) {
    rc = buf_printf(v,
                    "The alert keeps changing state (%d or more changes "
                    "within %s). Notifications about it are held until it "
                    "settles.",
                    c->ts->flap_transitions, w.data);
  } else if (!rc) {
    rc = buf_printf(
        v,
        "Cảnh báo thay đổi trạng thái liên tục (%d lần trở lên trong "
        "%s). Tạm ngừng gửi thông báo về cảnh báo này cho đến "
        "khi ổn định.",
        c->ts->flap_transitions, w.data);
  }
  buf_cleanup(&w);
  return rc;
}

static int default_body(struct sink *k) {
  const struct rctx *c = k->c;
  const struct notice *n = c->n;
  int rc = IOCD_OK;
  switch (n->kind) {
    case NOTICE_ESCALATION:
    case NOTICE_FLAPPING: {
      struct buf v;
      buf_init(&v, 1 << 16);
      rc = lead_sentence(c, &v);
      if (!rc) {
        rc = sink_para(k, v.data);
      }
      if (!rc && !c->html) {
        rc = buf_putc(k->out, '\n');
      }
      buf_cleanup(&v);
      return rc ? rc : alert_blocks(k);
    }
    case NOTICE_ALERTS:
      return alert_blocks(k);
    case NOTICE_STORM:
    case NOTICE_DIGEST:
    case NOTICE_DEAD_LETTER:
      if (n->text && *n->text) {
        rc = sink_para(k, n->text);
        if (!rc && !c->html && n->nalerts) {
          rc = buf_putc(k->out, '\n');
        }
      }
      if (!rc && n->nalerts == 0 && n->kind == NOTICE_DIGEST) {
        rc = sink_para(k, word(c->ts->lang, W_NONE_FIRING));
      }
      return rc ? rc : alert_list(k);
  }
  return rc;
}

/* ---- entry points -------------------------------------------------------- */

int template_render_subject(const struct template_set *ts,
                            const struct notice *n, int64_t now_ns,
                            struct buf *out) {
  struct rctx c = {.ts = ts, .n = n, .now = now_ns};
  size_t start = out->len;
  int rc;
  if (ts->has_subject && overridable(n)) {
    rc = run(&c, &ts->subject, 0, ts->subject.n,
             n->nalerts ? &n->alerts[0] : NULL, out);
  } else {
    rc = default_subject(&c, out);
  }
  /* One line: a header must not break. */
  for (size_t i = start; !rc && i < out->len; i++) {
    if (out->data[i] == '\r' || out->data[i] == '\n' || out->data[i] == '\t') {
      out->data[i] = ' ';
    }
  }
  return rc;
}

int template_render_text(const struct template_set *ts, const struct notice *n,
                         int64_t now_ns, struct buf *out) {
  struct rctx c = {.ts = ts, .n = n, .now = now_ns};
  if (ts->has_text && overridable(n)) {
    return run_override(&c, &ts->text, out);
  }
  struct sink k = {.c = &c, .out = out};
  return default_body(&k);
}

static const char *tag_color(enum word w) {
  switch (w) {
    case W_TAG_CRITICAL:
    case W_TAG_DEAD:
      return "#b00020";
    case W_TAG_WARNING:
    case W_TAG_FLAPPING:
      return "#b45f06";
    case W_TAG_RESOLVED:
      return "#2e7d32";
    default:
      return "#1f3a5f";
  }
}

int template_render_html(const struct template_set *ts, const struct notice *n,
                         int64_t now_ns, struct buf *out) {
  struct rctx c = {.ts = ts, .n = n, .now = now_ns, .html = true};
  if (ts->has_html && overridable(n)) {
    return run_override(&c, &ts->html, out);
  }
  struct buf subj;
  buf_init(&subj, out->max);
  int rc = template_render_subject(ts, n, now_ns, &subj);
  if (!rc) {
    rc = buf_printf(out,
                    "<!DOCTYPE html>\n<html lang=\"%s\">\n<head><meta "
                    "charset=\"utf-8\"><title>",
                    en(ts->lang) ? "en" : "vi");
  }
  if (!rc) {
    rc = template_html_escape(subj.data, subj.len, out);
  }
  if (!rc) {
    rc = buf_printf(out,
                    "</title></head>\n<body style=\"font-family: Arial, "
                    "sans-serif; font-size: 14px\">\n<h2 style=\"color: "
                    "%s\">",
                    tag_color(notice_tag(n)));
  }
  if (!rc) {
    rc = template_html_escape(subj.data, subj.len, out);
  }
  if (!rc) {
    rc = buf_puts(out, "</h2>\n");
  }
  if (!rc) {
    struct sink k = {.c = &c, .out = out};
    rc = default_body(&k);
  }
  if (!rc) {
    rc = buf_puts(out, "</body>\n</html>\n");
  }
  buf_cleanup(&subj);
  return rc;
}

/* ---- texts of summing notices -------------------------------------------- */

int template_storm_text(enum config_language lang, const char *receiver,
                        int rate_per_hour, size_t nheld, struct buf *out) {
  if (!receiver) {
    receiver = "?";
  }
  if (en(lang)) {
    return buf_printf(out,
                      "Receiver %s reached its limit of %d messages an "
                      "hour: %zu alerts are summed up here.",
                      receiver, rate_per_hour, nheld);
  }
  return buf_printf(out,
                    "Người nhận %s đã đạt giới hạn %d tin mỗi giờ: %zu cảnh "
                    "báo được gộp trong bản tổng hợp này.",
                    receiver, rate_per_hour, nheld);
}

int template_digest_text(enum config_language lang, int32_t utc_offset_s,
                         int64_t at_ns, struct buf *out) {
  int rc = buf_puts(out, en(lang) ? "Alerts at " : "Tình hình cảnh báo lúc ");
  return rc ? rc : template_format_time(at_ns, utc_offset_s, lang, out);
}

int template_dead_letter_text(enum config_language lang,
                              const struct notice *failed, const char *error,
                              struct buf *out) {
  const char *r = failed->receiver ? failed->receiver : "?";
  int rc;
  if (en(lang)) {
    rc = buf_printf(out,
                    "Notification %016" PRIx64
                    " could not be delivered to %s after %d attempts",
                    failed->id, r, failed->attempts);
  } else {
    rc = buf_printf(
        out, "Không gửi được thông báo %016" PRIx64 " tới %s sau %d lần thử",
        failed->id, r, failed->attempts);
  }
  if (!rc && error && *error) {
    rc = buf_printf(out, ": %s", error);
  }
  return rc ? rc : buf_putc(out, '.');
}
