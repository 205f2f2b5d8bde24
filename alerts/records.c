/*
 * The records of an alert transition: the log line an operator reads in the
 * journal of the service, and the `alerts` point InfluxDB keeps for
 * Grafana's annotations and tables of active alerts. Both are built from
 * the event alone, so the same transition always reads the same way.
 */
#include "alerts/records.h"

#include <stdbool.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

static void put_labels(struct buf *b, const struct alert_event *ev) {
  buf_putc(b, '{');
  size_t n = 0;
  for (size_t i = 0; ev->group && i < ev->group->n; i++, n++) {
    buf_printf(b, "%s%s=\"%s\"", n ? "," : "", ev->group->keys[i],
               ev->group->values[i]);
  }
  for (size_t i = 0; i < ev->nlabels; i++, n++) {
    buf_printf(b, "%s%s=\"%s\"", n ? "," : "", ev->labels[i].key,
               ev->labels[i].value);
  }
  buf_putc(b, '}');
}

void alert_record_log(const struct alert_event *ev) {
  struct buf b;
  buf_init(&b, 1 << 16);
  buf_puts(&b, ev->rule);
  put_labels(&b, ev);
  buf_printf(&b, " %s -> %s", alert_state_name(ev->prev),
             alert_state_name(ev->state));
  if (ev->severity_changed && ev->prev_severity) {
    buf_printf(&b, " severity=%s->%s", ev->prev_severity,
               ev->severity ? ev->severity : "");
  } else if (ev->severity) {
    buf_printf(&b, " severity=%s", ev->severity);
  }
  if (ev->has_value) {
    buf_printf(&b, " value=%.6g", ev->value);
  }
  if (ev->has_threshold) {
    buf_printf(&b, " threshold=%.6g", ev->threshold);
  }
  buf_printf(&b, " by=%s why: %s", alert_trigger_name(ev->by),
             ev->reason ? ev->reason : "");
  /* On a buffer that could not grow, the rule's name alone. */
  log_warn("rules", "alert %s", b.data ? b.data : ev->rule);
  buf_cleanup(&b);
}

/* Field names of an alert point; an annotation may not take one. */
static bool alert_field_reserved(const char *k) {
  static const char *const names[] = {"value",   "threshold",  "reason",
                                      "trigger", "prev_state", "active"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (strcmp(k, names[i]) == 0) {
      return true;
    }
  }
  return false;
}

static int add_tag(struct point_batch *pb, struct point *p, const char *k,
                   const char *v) {
  if (!v || !*v) {
    return IOCD_OK; /* InfluxDB refuses empty tag values */
  }
  return pb_tag(pb, p, k, strlen(k), v, strlen(v), false);
}

int alert_record_point(struct point_batch *pb, const struct alert_event *ev) {
  pb_reset(pb);
  static const char meas[] = "alerts";
  struct point *p = pb_point_new(pb, meas, sizeof meas - 1);
  if (!p) {
    return IOCD_ENOMEM;
  }
  p->ts_ns = ev->t_ns;
  p->has_ts = true;
  const char *state = alert_state_name(ev->state);
  int rc = add_tag(pb, p, "rule", ev->rule);
  if (!rc) {
    rc = add_tag(pb, p, "severity", ev->severity);
  }
  if (!rc) {
    rc = add_tag(pb, p, "state", state);
  }
  for (size_t i = 0; !rc && ev->group && i < ev->group->n; i++) {
    rc = add_tag(pb, p, ev->group->keys[i], ev->group->values[i]);
  }
  for (size_t i = 0; !rc && i < ev->nlabels; i++) {
    rc = add_tag(pb, p, ev->labels[i].key, ev->labels[i].value);
  }
  if (!rc && ev->has_value) {
    rc = pb_field_float(pb, p, "value", 5, ev->value);
  }
  if (!rc && ev->has_threshold) {
    rc = pb_field_float(pb, p, "threshold", 9, ev->threshold);
  }
  if (!rc && ev->reason) {
    rc = pb_field_string(pb, p, "reason", 6, ev->reason, strlen(ev->reason));
  }
  const char *by = alert_trigger_name(ev->by);
  if (!rc) {
    rc = pb_field_string(pb, p, "trigger", 7, by, strlen(by));
  }
  const char *prev = alert_state_name(ev->prev);
  if (!rc) {
    rc = pb_field_string(pb, p, "prev_state", 10, prev, strlen(prev));
  }
  bool active = ev->state != ALERT_RESOLVED && ev->state != ALERT_INACTIVE;
  if (!rc) {
    rc = pb_field_int(pb, p, "active", 6, active ? 1 : 0);
  }
  for (size_t i = 0; !rc && i < ev->nannotations; i++) {
    const struct alert_kv *a = &ev->annotations[i];
    if (!alert_field_reserved(a->key)) {
      rc = pb_field_string(pb, p, a->key, strlen(a->key), a->value,
                           strlen(a->value));
    }
  }
  if (!rc) {
    pb_point_sort_tags(pb, p);
  }
  return rc;
}
