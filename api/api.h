/*
 * The HTTP API, served by libmicrohttpd on the service's libuv loop (no
 * thread of its own). This stage serves iocd's own health:
 *   GET /health   200 "ok" while the process runs
 *   GET /ready    200 when connected to the broker and the outputs are
 *                 writing, 503 with the reason otherwise (JSON)
 *   GET /metrics  the counters in the Prometheus text format
 *   GET /api/v1/alerts  the active alert instances (JSON)
 *   GET /api/v1/rules   the rules, their expressions and instance counts
 * and, through the handler api_set_handler installs, everything else under
 * /api/v1/ (acknowledgements, silences, notifications: api_alerting.h).
 * A request body is read up to API_BODY_MAX bytes (413 past it).
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

/* The largest request body read; a longer one is answered 413. */
#define API_BODY_MAX 65536u

/* A request for the handler: method, the decoded path, the query's
 * arguments and the body (not NUL-terminated; NULL when empty). Borrowed
 * for the call. */
struct api_request {
  const char *method;
  const char *path;
  const char *body;
  size_t body_len;
  void *conn; /* for api_request_arg */
};

/* The value of the query argument name ("?state=firing"), decoded; NULL
 * when absent. */
const char *api_request_arg(const struct api_request *req, const char *name);

/* The handler's answer besides its body: the status, and for 405 the
 * methods the path takes (a static string, sent as Allow). */
struct api_reply {
  unsigned status;
  const char *allow;
};

/* Answers req: fills rep and appends a JSON body to out. Returns IOCD_OK,
 * or IOCD_ENOTFOUND when the path is not the handler's (404), or another
 * error (500). */
typedef int api_handle_fn(void *ud, const struct api_request *req,
                          struct api_reply *rep, struct buf *out);

/* Hands every request under /api/v1/ that is not GET /api/v1/alerts or
 * GET /api/v1/rules (and also those two when no renderer is set) to fn. */
void api_set_handler(struct api *a, api_handle_fn *fn, void *ud);

/* Stops the server, closes its handles, calls cb and frees a. */
typedef void api_closed_fn(void *ud);
void api_close(struct api *a, api_closed_fn *cb, void *ud);

#endif
