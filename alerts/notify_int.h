/*
 * Internal to alerts/notify*.c: the mapping of engine events to notices
 * (notify_map.c).
 */
#ifndef IOCD_ALERTS_NOTIFY_INT_H
#define IOCD_ALERTS_NOTIFY_INT_H

#include <stdbool.h>

#include "alerts/notice.h"
#include "alerts/notify.h"
#include "core/mem.h"
#include "rules/engine.h"

/* Whether receivers count state s as firing (firing, nodata). */
bool notify__active(enum alert_state s);

/* The labels of ev's alert into out (empty, caller storage): alertname,
 * severity, the group's labels, the rule's static labels. IOCD_OK or
 * IOCD_ENOMEM (out left empty). */
int notify__event_labels(const struct alert_event *ev,
                         struct notice_labels *out);

/* The alert of ev as delivery sees it, into a (overwritten; cleaned up by
 * the caller with notice_alert_cleanup). IOCD_OK or IOCD_ENOMEM. */
int notify__event_alert(const struct alert_event *ev, struct notice_alert *a);

/* Whether ev changes what receivers know: the alert starts or stops
 * firing, or fires at another severity. */
bool notify__event_matters(const struct alert_event *ev);

#endif
