/*
 * What one alert transition leaves behind for people and for the wall: the
 * log line (module "rules") and the point of the `alerts` measurement.
 * Internal to alerts/: alerts.c calls both for every event of the engine.
 */
#ifndef IOCD_ALERTS_RECORDS_H
#define IOCD_ALERTS_RECORDS_H

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

#endif
