/*
 * What one alert transition leaves behind for people and for the wall: the
 * log line (module "rules") and the point of the `alerts` measurement; and
 * what an acknowledgement leaves: the point of the `alert_acks`
 * measurement. Internal to alerts/: alerts.c calls them for every event of
 * the engine and every action on an ack.
 */
#ifndef IOCD_ALERTS_RECORDS_H
#define IOCD_ALERTS_RECORDS_H

#include "alerts/notify.h"
#include "core/point.h"
#include "rules/engine.h"

/* Logs ev as one warning line:
 *   alert RULE{labels} PREV -> STATE severity=... value=... threshold=...
 *   by=TRIGGER why: REASON
 * ev is borrowed for the call. */
void alert_record_log(const struct alert_event *ev);

/* Resets pb and fills it with the one `alerts` point of ev: tags rule,
 * severity, state, the group's labels and the rule's labels (empty values
 * left out, as InfluxDB refuses them); fields value, threshold, reason,
 * trigger, prev_state, active (1 while pending, firing, nodata or
 * insufficient) and the annotations whose names are not one of these
 * fields; time ev->t_ns. pb stays owned by the caller and the point valid
 * until its next pb_reset. Returns IOCD_OK, or IOCD_ENOMEM (pb then holds
 * a partial point that must not be stored). */
int alert_record_point(struct point_batch *pb, const struct alert_event *ev);

/* Resets pb and fills it with the one `alert_acks` point of act, at
 * act->at_ns: tags rule (the alertname label), action and the alert's
 * other labels (district, system, severity, ...; empty values and labels
 * named like a tag or field of the point left out); fields by, principal
 * and comment when act has them, alert_id (16 lowercase hex digits),
 * fired_at (Unix ms, when act->fired_ns is known) and, for an "ack" with
 * fired_ns known, seconds_to_ack (a float: at_ns - fired_ns in seconds).
 * pb stays owned by the caller and the point valid until its next
 * pb_reset. Returns IOCD_OK, or IOCD_ENOMEM (pb then holds a partial point
 * that must not be stored). */
int alert_ack_record_point(struct point_batch *pb,
                           const struct notify_ack_action *act);

#endif
