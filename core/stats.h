/*
 * The one place where iocd keeps its counters, gauges and histograms. Modules
 * register a series once (at start or on first use) and keep the returned
 * pointer; updating it on the hot path is a plain add. The registry renders
 * itself in the Prometheus text format for the API and as a log summary.
 *
 * Everything runs on the loop thread: no atomics.
 */
#ifndef IOCD_CORE_STATS_H
#define IOCD_CORE_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum stat_kind { STAT_COUNTER, STAT_GAUGE, STAT_HISTOGRAM };

#define STAT_MAX_BUCKETS 16

/* One series (struct metric, not "stat": that name is POSIX's). Fields are
 * public so that updates inline; treat them as
 * read-only outside the stat_* helpers. */
struct metric {
  enum stat_kind kind;
  uint64_t count; /* counter value, or histogram observation count */
  double value;   /* gauge value, or histogram sum */
  size_t nbounds; /* histogram only */
  double bounds[STAT_MAX_BUCKETS];
  uint64_t buckets[STAT_MAX_BUCKETS]; /* non-cumulative per-bucket counts */
};

struct stats;

struct stats *stats_new(void);
void stats_free(struct stats *s);

/* Registers (or finds) a series. Labels are given as key, value pairs ending
 * with NULL: stats_counter(s, "iocd_messages_total", "Messages received.",
 * "subscription", "igate", NULL). The name and help are copied; the same
 * name and labels return the same series. Never returns NULL: when memory runs
 * out the series is a private dummy that is never rendered. */
struct metric *stats_counter(struct stats *s, const char *name,
                             const char *help, ...);
struct metric *stats_gauge(struct stats *s, const char *name, const char *help,
                           ...);
/* bounds: upper bounds of the buckets, ascending, at most STAT_MAX_BUCKETS. */
struct metric *stats_histogram(struct stats *s, const char *name,
                               const char *help, const double *bounds,
                               size_t nbounds, ...);

static inline void stat_inc(struct metric *st) {
  st->count++;
}
static inline void stat_add(struct metric *st, uint64_t n) {
  st->count += n;
}
static inline void stat_set(struct metric *st, double v) {
  st->value = v;
}
void stat_observe(struct metric *st, double v);

/* Looks a series up without creating it, for tests and reconciliation.
 * Labels as above. Returns NULL when absent. */
struct metric *stats_find(struct stats *s, const char *name, ...);

/* Sum of the counter values (or gauge values, truncated) of every series of
 * a family whose labels contain the given key=value pairs (NULL-terminated;
 * none means all series of the family). */
uint64_t stats_sum(struct stats *s, const char *name, ...);

/* Registers the process's own series: iocd_build_info{version="..."} 1,
 * iocd_start_time_seconds (started_ns, Unix nanoseconds, as seconds) and
 * iocd_uptime_seconds, which stats_render_prometheus brings up to date at
 * each render (monotonic time since this call). The summary leaves them
 * out. version is copied. */
void stats_process_info(struct stats *s, const char *version,
                        int64_t started_ns);

/* Appends the whole registry in the Prometheus text exposition format 0.0.4.
 * Returns IOCD_OK or the error of buf_*. */
int stats_render_prometheus(struct stats *s, struct buf *out);

/* One series as stats_each shows it, every pointer borrowed for the call. */
#define STATS_MAX_LABELS 16
struct stats_series {
  const char *name; /* the family's */
  enum stat_kind kind;
  const char *labels; /* as in /metrics, escaped: k="v",k2="v2"; or "" */
  const char *keys[STATS_MAX_LABELS];   /* unescaped, in labels' order */
  const char *values[STATS_MAX_LABELS]; /* unescaped */
  size_t nlabels; /* at most STATS_MAX_LABELS; further labels are left out */
  const struct metric *metric;
};

typedef int stats_each_fn(void *ud, const struct stats_series *se);

/* Calls fn for every series in the order of /metrics (families, then their
 * series, in registration order), after bringing iocd_uptime_seconds up to
 * date as a render does. Stops at fn's first non-zero return and returns
 * it; returns IOCD_ENOMEM when memory for the labels runs out, else
 * IOCD_OK. For writers of the registry other than the two renderers
 * (store/self_metrics.c). */
int stats_each(struct stats *s, stats_each_fn *fn, void *ud);

/* Appends one line of "name{labels}=value" pairs for the counters and gauges
 * whose value is not zero, for the periodic log summary. */
int stats_render_summary(struct stats *s, struct buf *out);

#endif
