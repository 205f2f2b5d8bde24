/*
 * The HTTP API, served by libmicrohttpd on the service's libuv loop (no
 * thread of its own). It answers iocd's own health itself:
 *   GET /health   200 "ok" while the process runs
 *   GET /ready    200 when connected to the broker and the outputs are
 *                 writing, 503 with the reason otherwise (JSON)
 *   GET /metrics  the counters in the Prometheus text format
 * and hands everything under /api/v1/ to the handler api_set_handler
 * installs (the service's: alerts and rules, status and reload, the latest
 * values, acknowledgements, silences and the outbox; docs/api.md).
 * A request body is read up to API_BODY_MAX bytes (413 past it).
 *
 * Every request but /health and /ready needs a role (api/auth.h): that of
 * its bearer token, or the anonymous role of "api". A refusal is 401 with
 * WWW-Authenticate (no token, or one that is not valid) or 403 naming the
 * role needed, before the body is read. With "api.tls" the API answers
 * HTTPS only.
 */
#ifndef IOCD_API_API_H
#define IOCD_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/stats.h"

/* Answers readiness: returns true when ready; otherwise writes the reason
 * into why (n bytes). */
typedef bool api_ready_fn(void *ud, char *why, size_t n);

struct api;

/* Starts listening on cfg->listen ("HOST:PORT", an IPv4 address or
 * "localhost", or "[v6]:PORT"), with cfg's tokens and anonymous role, and
 * HTTPS when cfg->tls has a certificate and key (cert_pem, key_pem). cfg
 * is read during the call only; stats is borrowed. Returns NULL with err
 * set when the address is invalid or cannot be bound, or the certificate
 * or key is not usable. */
struct api *api_new(uv_loop_t *loop, const struct config_api *cfg,
                    struct stats *stats, api_ready_fn *ready, void *ud,
                    struct iocd_err *err);

/* Replaces the tokens and the anonymous role with cfg's (a reload; cfg is
 * read during the call only). Requests already past their check keep the
 * principal they had. A changed "listen" or "tls" is only logged: it takes
 * effect at the next start. Returns IOCD_OK, or IOCD_ENOMEM with the
 * previous tokens kept. */
int api_set_auth(struct api *a, const struct config_api *cfg);

/* The largest request body read; a longer one is answered 413. */
#define API_BODY_MAX 65536u

/* A request for the handler: method, the decoded path, the query's
 * arguments and the body (not NUL-terminated; NULL when empty), and who
 * sent it. Borrowed for the call. */
struct api_request {
  const char *method;
  const char *path;
  const char *body;
  size_t body_len;
  void *conn; /* for api_request_arg */
  /* The name of the request's token, or "anonymous" without one. */
  const char *principal;
  int role; /* enum config_api_role: its token's, or the anonymous role */
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

/* Hands every request under /api/v1/ to fn, once its role was checked. */
void api_set_handler(struct api *a, api_handle_fn *fn, void *ud);

/* Stops the server, closes its handles, calls cb and frees a. */
typedef void api_closed_fn(void *ud);
void api_close(struct api *a, api_closed_fn *cb, void *ud);

#endif
