/*
 * The active alerts on /metrics: one gauge series per rule, state and
 * severity, with the district as a label when the rule groups by it, so
 * that monitoring (Prometheus, Grafana) can count and graph what is firing
 * where without reading the alerts API.
 *
 *   iocd_alerts_active{rule="online_share_low",state="firing",
 *                      severity="warning",district="Lắk"} 1
 */
#ifndef IOCD_ALERTS_ALERT_METRICS_H
#define IOCD_ALERTS_ALERT_METRICS_H

#include <stddef.h>

#include "core/stats.h"
#include "rules/engine.h"

struct alert_metrics;

/* Creates the gauges' owner. stats and district_tag are borrowed and must
 * outlive it. At most max_series distinct label sets are created; past
 * that, instances are counted under district="(other)" so that the
 * registry stays bounded. Returns NULL when memory runs out. */
struct alert_metrics *alert_metrics_new(struct stats *stats,
                                        const char *district_tag,
                                        size_t max_series);

/* Recounts the active instances of e (pending, firing, nodata,
 * insufficient) into the gauges; a label set with no instance any more
 * reads 0. Cheap to call often: it recounts only when events differs from
 * the value it saw last (pass the count of alert transitions so far). */
void alert_metrics_update(struct alert_metrics *m, const struct engine *e,
                          uint64_t events);

/* Sets the district tag after a reload (borrowed, as above). */
void alert_metrics_set_district_tag(struct alert_metrics *m,
                                    const char *district_tag);

void alert_metrics_free(struct alert_metrics *m);

#endif
