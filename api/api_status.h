/*
 * What iocd is and how it runs, for an operator or a script:
 *
 *   GET  /api/v1/status   version, start time, uptime, pid, a summary of
 *                         the running configuration without any secret,
 *                         and how the last reload ended
 *   POST /api/v1/reload   starts the reload SIGHUP starts: 202
 *                         {"reload":"started"}, or 409 while one runs
 *
 * The summary names servers by their URL's origin (scheme, host and port:
 * no user, password, path or query) and never carries a password, a token
 * or a key: not the broker's, not InfluxDB's, not a receiver's, not the
 * API's own (their names and roles only).
 */
#ifndef IOCD_API_API_STATUS_H
#define IOCD_API_API_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "config/config.h"
#include "core/buf.h"

/* The facts of GET /api/v1/status. Caller storage; pointers are borrowed
 * for the call. Times are Unix nanoseconds (realtime). */
struct api_status {
  const char *version;
  int64_t started_ns;
  int64_t now_ns;
  long pid;
  const struct config *cfg; /* the running configuration */
  int64_t config_loaded_ns; /* when it was applied */
  bool reloading;           /* a reload is running now */
  int64_t reload_at_ns;     /* when the last reload ended; 0: none yet */
  bool reload_ok;
  const char *reload_error; /* why it failed (NULL when it did not) */
  const char *reload_by;    /* what started it: "SIGHUP", "api (NAME)" */
};

/* Appends the status document (docs/api.md) to out. Returns IOCD_OK,
 * IOCD_ENOMEM or a buf_* error. */
int api_status_json(const struct api_status *st, struct buf *out);

/* What the service gives the two endpoints: its status, filled on demand,
 * and the start of a reload by principal (the requester's token name),
 * which returns IOCD_OK when one started, IOCD_ESTATE when one is running
 * already, or another error (500). */
typedef void api_status_fill_fn(void *ud, struct api_status *st);
typedef int api_reload_start_fn(void *ud, const char *principal);

struct api_status_hooks {
  api_status_fill_fn *fill;
  api_reload_start_fn *reload;
  void *ud;
};

/* Answers GET/HEAD /api/v1/status and POST /api/v1/reload (405 for
 * another method). Returns as api_handle_fn: IOCD_ENOTFOUND for any other
 * path. */
int api_status_handle(const struct api_status_hooks *h,
                      const struct api_request *req, struct api_reply *rep,
                      struct buf *out);

#endif
