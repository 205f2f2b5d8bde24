/*
 * The store takes accepted points, encoded as line protocol, and delivers them
 * to the configured outputs (InfluxDB over HTTP with libcurl's multi interface
 * on the loop, and/or a file). It batches by points, bytes and time, retries
 * with backoff, and on shutdown flushes within a time bound.
 */
#ifndef IOCD_STORE_STORE_H
#define IOCD_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "core/err.h"
#include "core/point.h"
#include "core/stats.h"

struct store;

/* Creates the store and its outputs on loop. cfg is borrowed until
 * store_reconfigure or store_close. Registers counters in stats. Returns
 * NULL with err set on failure; outputs already built then close on the
 * loop, so the caller still runs it before uv_loop_close. */
struct store *store_new(uv_loop_t *loop, const struct config *cfg,
                        struct stats *stats, struct iocd_err *err);

/* Encodes and queues the points of pb; source is the subscription index (for
 * per-subscription accounting). Returns IOCD_OK, IOCD_EFULL when the buffer
 * limit would be passed (nothing is queued: the caller decides), or
 * IOCD_EINVAL when a point cannot be encoded or source is not an index of
 * cfg->subs. Also IOCD_ENOMEM, and IOCD_ECLOSED once store_close was
 * called. pb is borrowed for the call. */
int store_append(struct store *s, size_t source, const struct point_batch *pb);

/* The source for points iocd makes itself (alert transitions): counted under
 * the subscription label "iocd:alerts", apart from every subscription. With
 * notifications.history they are queued and written apart from the data,
 * to the history's database (docs/store.md, "The alert history"). */
#define STORE_SOURCE_INTERNAL ((size_t)-1)

/* The source for iocd's self-metrics (store/self_metrics.h): counted under
 * the subscription label "iocd:self" and written with the data, to
 * influxdb.database, journaled like it. */
#define STORE_SOURCE_SELF ((size_t)-2)

/* Applies a new configuration to the outputs (URL, credentials, batching).
 * Requests in flight finish with the old settings. Returns IOCD_EINVAL with
 * err when the new settings are unusable (the old ones stay). The store
 * keeps copies of what it needs: the old cfg may be freed afterwards.
 * Enabling or disabling an output needs a restart. */
int store_reconfigure(struct store *s, const struct config *cfg,
                      struct iocd_err *err);

/* Points accepted and not yet confirmed by every output. */
uint64_t store_pending_points(const struct store *s);

/* How full the data's buffer is, from 0 (empty) to 1 (store_append
 * refuses). The service pauses intake above a high mark and resumes below a
 * low one. The alert history's queue does not count: nothing it holds
 * pauses intake. */
double store_fill(const struct store *s);

/* True when the journal can write and every output is writing; otherwise
 * false with the reason in why (n bytes), for /ready: the journal's first
 * ("journal: no space left on device in DIR ..."), else the first failing
 * output's. */
bool store_healthy(const struct store *s, char *why, size_t n);

typedef void store_closed_fn(void *ud, uint64_t unwritten_points);

/* Stops taking points, flushes what is queued and waits for the answers, at
 * most timeout_ms; then closes every handle and calls cb with the number of
 * points that could not be written (0 on a clean flush). Frees s after cb. */
void store_close(struct store *s, uint64_t timeout_ms, store_closed_fn *cb,
                 void *ud);

#endif
