/*
 * The HTTP API, served by libmicrohttpd on the service's libuv loop (no
 * thread of its own). This stage serves iocd's own health:
 *   GET /health   200 "ok" while the process runs
 *   GET /ready    200 when connected to the broker and the outputs are
 *                 writing, 503 with the reason otherwise (JSON)
 *   GET /metrics  the counters in the Prometheus text format
 * Later stages add alerts, rules, silences and acknowledgement here.
 */
#ifndef IOCD_API_API_H
#define IOCD_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "core/err.h"
#include "core/stats.h"

/* Answers readiness: returns true when ready; otherwise writes the reason
 * into why (n bytes). */
typedef bool api_ready_fn(void *ud, char *why, size_t n);

struct api;

/* Starts listening on listen ("HOST:PORT", an IPv4 address or "localhost",
 * or "[v6]:PORT"). stats is borrowed. Returns NULL with err set when the
 * address is invalid or cannot be bound. */
struct api *api_new(uv_loop_t *loop, const char *listen, struct stats *stats,
                    api_ready_fn *ready, void *ud, struct iocd_err *err);

/* Stops the server, closes its handles, calls cb and frees a. */
typedef void api_closed_fn(void *ud);
void api_close(struct api *a, api_closed_fn *cb, void *ud);

#endif
