/*
 * The records of an alert transition: the log line an operator reads in the
 * journal of the service, and the `alerts` point InfluxDB keeps for
 * Grafana's annotations and tables of active alerts. Both are built from
 * the event alone, so the same transition always reads the same way. And
 * the `alert_acks` point of an acknowledgement, for the time to
 * acknowledge on the alert history's dashboard.
 */
#include "alerts/records.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
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

/* Tag and field names of an ack point; a label may not take one. */
static bool ack_name_reserved(const char *k) {
  static const char *const names[] = {"rule",      "action",        "by",
                                      "principal", "comment",       "alert_id",
                                      "fired_at",  "seconds_to_ack"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (strcmp(k, names[i]) == 0) {
      return true;
    }
  }
  return false;
}

static int add_string(struct point_batch *pb, struct point *p, const char *k,
                      const char *v) {
  return v ? pb_field_string(pb, p, k, strlen(k), v, strlen(v)) : IOCD_OK;
}

int alert_ack_record_point(struct point_batch *pb,
                           const struct notify_ack_action *act) {
  pb_reset(pb);
  static const char meas[] = "alert_acks";
  struct point *p = pb_point_new(pb, meas, sizeof meas - 1);
  if (!p) {
    return IOCD_ENOMEM;
  }
  p->ts_ns = act->at_ns;
  p->has_ts = true;
  const struct notice_labels *ls = act->labels;
  int rc = add_tag(pb, p, "rule", notice_label_get(ls, "alertname"));
  if (!rc) {
    rc = add_tag(pb, p, "action", act->action);
  }
  for (size_t i = 0; !rc && ls && i < ls->n; i++) {
    const struct notice_label *l = &ls->v[i];
    if (strcmp(l->name, "alertname") != 0 && !ack_name_reserved(l->name)) {
      rc = add_tag(pb, p, l->name, l->value);
    }
  }
  if (!rc) {
    rc = add_string(pb, p, "by", act->by);
  }
  if (!rc) {
    rc = add_string(pb, p, "principal", act->principal);
  }
  if (!rc) {
    rc = add_string(pb, p, "comment", act->comment);
  }
  char id[17];
  snprintf(id, sizeof id, "%016llx", (unsigned long long)act->id);
  if (!rc) {
    rc = pb_field_string(pb, p, "alert_id", 8, id, 16);
  }
  if (!rc && act->fired_ns > 0) {
    rc = pb_field_int(pb, p, "fired_at", 8, act->fired_ns / NS_PER_MS);
  }
  if (!rc && act->fired_ns > 0 && strcmp(act->action, "ack") == 0) {
    rc = pb_field_float(pb, p, "seconds_to_ack", 14,
                        (double)(act->at_ns - act->fired_ns) / 1e9);
  }
  if (!rc) {
    pb_point_sort_tags(pb, p);
  }
  return rc;
}
