/*
 * The running service: wires config, ingest, store and the MQTT client on one
 * libuv loop, and handles the signals (SIGINT/SIGTERM: graceful stop with a
 * bounded flush; SIGHUP: reload).
 */
#ifndef IOCD_APP_SERVICE_H
#define IOCD_APP_SERVICE_H

#include "config/config.h"

/* Runs iocd with cfg (ownership moves to the service) until a stop signal.
 * Returns the process exit status: 0 after a clean stop with everything
 * written, 1 on a start failure, 2 when points were left unwritten at exit. */
int service_run(struct config *cfg);

/* Validates cfg beyond what the loader checks (topic patterns and the
 * pipeline). Returns IOCD_OK or an error with err set. */
int service_check(const struct config *cfg, struct iocd_err *err);

#endif
