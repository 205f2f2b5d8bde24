/*
 * The HTTP API, served by libmicrohttpd on the service's libuv loop (no
 * thread of its own). This stage serves iocd's own health:
 *   GET /health   200 "ok" while the process runs
 *   GET /ready    200 when connected to the broker and the outputs are
 *                 writing, 503 with the reason otherwise (JSON)
 *   GET /metrics  the counters in the Prometheus text format
 *   GET /api/v1/alerts  the active alert instances (JSON)
 *   GET /api/v1/rules   the rules, their expressions and instance counts
 * Later stages add silences and acknowledgement here.
 */
#ifndef IOCD_API_API_H
#define IOCD_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "core/buf.h"
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

/* Appends a JSON document to out. Returns IOCD_OK, or a buf_* error
 * (IOCD_ETOOBIG past out's cap). */
typedef int api_render_fn(void *ud, struct buf *out);

/* Serves GET /api/v1/alerts and GET /api/v1/rules with what alerts and
 * rules render (the service renders from the rules engine, see
 * api/api_rules.h); NULL answers 404. */
void api_set_rules(struct api *a, api_render_fn *alerts, api_render_fn *rules,
                   void *ud);

/* Stops the server, closes its handles, calls cb and frees a. */
typedef void api_closed_fn(void *ud);
void api_close(struct api *a, api_closed_fn *cb, void *ud);

#endif
