/*
 * Notices for the tests of the texts and payloads (test_template.c,
 * test_payload.c): the province's own alerts, built field by field, at a
 * fixed time in Đắk Lắk (+07:00). Static inline, so that a test file that
 * uses only part of it compiles without warnings.
 */
#ifndef IOCD_TESTS_UNIT_NOTICE_FIXTURE_H
#define IOCD_TESTS_UNIT_NOTICE_FIXTURE_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/notice.h"
#include "alerts/template.h"
#include "core/buf.h"
#include "core/mem.h"

#define FX_SEC INT64_C(1000000000)
#define FX_MIN (60 * FX_SEC)
/* 2026-12-08 09:15:00 +07:00, a Tuesday. */
#define FX_T0 (INT64_C(1796696100) * FX_SEC)
#define FX_OFFSET (7 * 3600)

static inline struct notice *fx_notice(enum notice_kind kind,
                                       const char *receiver) {
  struct notice *n = notice_new();
  cr_assert_not_null(n);
  n->id = UINT64_C(0x00000000000002a1);
  n->kind = kind;
  n->receiver = mem_strdup(receiver);
  n->group_key = mem_strdup("{}:{alertname=\"online_share_low\"}");
  n->created_ns = FX_T0 + 135 * FX_MIN;
  return n;
}

/* Adds an alert to n: labels alertname, severity and district (when not
 * NULL), firing since FX_T0 (resolved 135 minutes later). The pointer is
 * good until the next alert is added (n->alerts moves). */
static inline struct notice_alert *fx_alert(struct notice *n,
                                            const char *alertname,
                                            const char *district,
                                            const char *severity,
                                            enum notice_status status) {
  struct notice_alert *v =
      realloc(n->alerts, (n->nalerts + 1) * sizeof *n->alerts);
  cr_assert_not_null(v);
  n->alerts = v;
  struct notice_alert *a = &v[n->nalerts++];
  memset(a, 0, sizeof *a);
  cr_assert_eq(notice_labels_set(&a->labels, "alertname", alertname), 0);
  cr_assert_eq(notice_labels_set(&a->labels, "severity", severity), 0);
  if (district) {
    cr_assert_eq(notice_labels_set(&a->labels, "district", district), 0);
  }
  a->fingerprint = notice_labels_fingerprint(&a->labels);
  a->status = status;
  a->starts_ns = FX_T0;
  a->ends_ns = status == NOTICE_RESOLVED ? FX_T0 + 135 * FX_MIN : 0;
  return a;
}

static inline void fx_label(struct notice_alert *a, const char *k,
                            const char *v) {
  cr_assert_eq(notice_labels_set(&a->labels, k, v), 0);
}

static inline void fx_annotation(struct notice_alert *a, const char *k,
                                 const char *v) {
  cr_assert_eq(notice_labels_set(&a->annotations, k, v), 0);
}

/* The share alert of the seed's figures: 10.61% online in a district whose
 * target is 30%, the rule marked "unit": "ratio". */
static inline struct notice_alert *fx_share(struct notice *n,
                                            const char *district,
                                            enum notice_status status) {
  struct notice_alert *a =
      fx_alert(n, "online_share_low", district, "warning", status);
  fx_label(a, "unit", "ratio");
  a->fingerprint = notice_labels_fingerprint(&a->labels);
  a->has_value = true;
  a->value = 0.1061;
  a->has_threshold = true;
  a->threshold = 0.3;
  return a;
}

/* A template set with defaults only (cfg NULL) or cfg's. */
static inline struct template_set *fx_set(const struct config_notify *cfg,
                                          enum config_language lang) {
  struct template_opts o = {.lang = lang, .utc_offset_s = FX_OFFSET};
  struct template_set *ts = NULL;
  struct iocd_err err = {{0}};
  cr_assert_eq(template_set_new(cfg, &o, &ts, &err), IOCD_OK, "%s", err.msg);
  return ts;
}

/* The output of one render function, as a malloc'd string. */
typedef int fx_render_fn(const struct template_set *ts, const struct notice *n,
                         int64_t now_ns, struct buf *out);

static inline char *fx_render(fx_render_fn *fn, const struct template_set *ts,
                              const struct notice *n, int64_t now_ns) {
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(fn(ts, n, now_ns, &b), IOCD_OK);
  char *s = b.data ? b.data : mem_strdup("");
  cr_assert_not_null(s);
  return s;
}

#endif
