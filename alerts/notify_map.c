/*
 * From the rules engine's view of an alert to delivery's: the labels of an
 * alert event (alertname, severity, the rule's `by` labels, the rule's
 * static labels), its annotations, value and threshold, and whether the
 * transition is one receivers hear of.
 *
 * Receivers hear of an alert while it fires and when it stops: the engine's
 * firing and nodata states are "firing" for them (no data from a district
 * is news for its leaders), and leaving either is "resolved". Pending and
 * insufficient are the engine's business: the API and the wall show them.
 */
#include <stdio.h>
#include <string.h>

#include "alerts/notify_int.h"
#include "core/err.h"

bool notify__active(enum alert_state s) {
  return s == ALERT_FIRING || s == ALERT_NODATA;
}

int notify__event_labels(const struct alert_event *ev,
                         struct notice_labels *out) {
  int rc = notice_labels_set(out, "alertname", ev->rule);
  if (!rc && ev->severity) {
    rc = notice_labels_set(out, "severity", ev->severity);
  }
  for (size_t i = 0; !rc && ev->group && i < ev->group->n; i++) {
    if (ev->group->values[i] && ev->group->values[i][0]) {
      rc = notice_labels_set(out, ev->group->keys[i], ev->group->values[i]);
    }
  }
  for (size_t i = 0; !rc && i < ev->nlabels; i++) {
    /* The rule's own labels never hide the group's or the identity's. */
    if (ev->labels[i].value && ev->labels[i].value[0] &&
        !notice_label_get(out, ev->labels[i].key)) {
      rc = notice_labels_set(out, ev->labels[i].key, ev->labels[i].value);
    }
  }
  if (rc) {
    notice_labels_cleanup(out);
  }
  return rc;
}

void notify_event_id(const struct alert_event *ev, char out[17]) {
  struct notice_labels ls = {0};
  uint64_t fp = 0;
  if (notify__event_labels(ev, &ls) == IOCD_OK) {
    fp = notice_labels_fingerprint(&ls);
  }
  notice_labels_cleanup(&ls);
  snprintf(out, 17, "%016llx", (unsigned long long)fp);
}

int notify__event_alert(const struct alert_event *ev, struct notice_alert *a) {
  memset(a, 0, sizeof *a);
  int rc = notify__event_labels(ev, &a->labels);
  for (size_t i = 0; !rc && i < ev->nannotations; i++) {
    if (ev->annotations[i].value && ev->annotations[i].value[0]) {
      rc = notice_labels_set(&a->annotations, ev->annotations[i].key,
                             ev->annotations[i].value);
    }
  }
  if (!rc && ev->reason) {
    a->reason = mem_strdup(ev->reason);
    rc = a->reason ? IOCD_OK : IOCD_ENOMEM;
  }
  if (rc) {
    notice_alert_cleanup(a);
    return rc;
  }
  a->fingerprint = notice_labels_fingerprint(&a->labels);
  bool firing = notify__active(ev->state);
  a->status = firing ? NOTICE_FIRING : NOTICE_RESOLVED;
  /* The engine's firing_since is when it fired; nodata has none, so its
   * episode starts when it entered nodata. */
  a->starts_ns = ev->firing_since_ns   ? ev->firing_since_ns
                 : ev->active_since_ns ? ev->active_since_ns
                                       : ev->t_ns;
  a->ends_ns = firing ? 0 : ev->t_ns;
  a->has_value = ev->has_value;
  a->value = ev->value;
  a->has_threshold = ev->has_threshold;
  a->threshold = ev->threshold;
  return IOCD_OK;
}

bool notify__event_matters(const struct alert_event *ev) {
  bool was = notify__active(ev->prev);
  bool is = notify__active(ev->state);
  /* Firing at another level, or nodata turned firing: still the same
   * alert, now with other labels or values for the receivers. */
  return was != is || (is && (ev->severity_changed || ev->prev != ev->state));
}
