/*
 * Self-metrics: iocd's own counters and gauges (the core/stats.h registry,
 * what /metrics shows) written as points into its own outputs every
 * interval, like Telegraf's `internal` input, so that a Grafana on the same
 * InfluxDB watches iocd without a Prometheus. The points go through
 * store_append as the source STORE_SOURCE_SELF: journaled, retried and
 * written like the data (docs/store.md, "Self-metrics").
 *
 * The shape, the one of Telegraf's prometheus input (metric_version 2): one
 * measurement; each label of a series is a tag, plus "host"; each series
 * is a field named after its family. The series that share a label set
 * share a point. Counters are integer fields, gauges float fields; a
 * histogram writes NAME_sum (float) and NAME_count (integer), never its
 * buckets. A counter still at zero is left out.
 */
#ifndef IOCD_STORE_SELF_METRICS_H
#define IOCD_STORE_SELF_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "core/err.h"
#include "core/point.h"
#include "core/stats.h"
#include "store/store.h"

/* At most this many points per sample; the label sets past it are left
 * out (and counted), so that a registry grown huge cannot flood the
 * outputs. */
#define SELF_METRICS_MAX_POINTS 10000

/* Appends to pb one point per label set of the registry, all at ts_ns, in
 * measurement with the tag host=host (a label named "host" gives way to
 * it; an empty label is no tag). At most max_points points; *left_out
 * (when not NULL) receives how many label sets did not fit or could not be
 * written as line protocol. pb is the caller's; measurement and host are
 * copied. Returns IOCD_OK or IOCD_ENOMEM (pb then holds what was added
 * before). */
int self_metrics_collect(struct stats *stats, const char *measurement,
                         const char *host, int64_t ts_ns, size_t max_points,
                         struct point_batch *pb, size_t *left_out);

struct self_metrics;

/* Creates the writer on loop, appending to store every cfg->interval_ms
 * while cfg->enabled. stats and store are borrowed and must outlive it;
 * cfg is copied. Registers iocd_self_metrics_left_out_total in stats.
 * Returns NULL on ENOMEM (err set). */
struct self_metrics *self_metrics_new(uv_loop_t *loop, struct store *store,
                                      struct stats *stats,
                                      const struct config_self_metrics *cfg,
                                      struct iocd_err *err);

/* Applies a new section: the timer restarts with the new interval, or stops
 * when disabled. Returns IOCD_OK or IOCD_ENOMEM (the old settings stay). */
int self_metrics_reconfigure(struct self_metrics *sm,
                             const struct config_self_metrics *cfg,
                             struct iocd_err *err);

/* Writes one sample now (when enabled) and stops the timer: called when the
 * service stops, before the store flushes, so that the last counts are
 * written too. */
void self_metrics_stop(struct self_metrics *sm);

/* Stops and closes the timer; sm is freed in its close callback. NULL is
 * accepted. */
void self_metrics_close(struct self_metrics *sm);

#endif
