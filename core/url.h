/*
 * What of a URL may be shown: its origin (scheme, host and port), without
 * the user and password that may be written before the host, the path,
 * the query and the fragment, any of which may hold a secret (a webhook's
 * token, a bot token). For the log lines and the status of the API.
 */
#ifndef IOCD_CORE_URL_H
#define IOCD_CORE_URL_H

#include <stdbool.h>
#include <stddef.h>

/* Writes "scheme://host[:port]" of url into out (n bytes): for
 * "https://user:p@ss@influx.example:8086/write?db=x" that is
 * "https://influx.example:8086" (the user and password end at the
 * authority's last '@'). Returns false, out "", when url has no
 * "scheme://" or the origin does not fit. */
bool url_origin(const char *url, char *out, size_t n);

/* What follows url's authority: its path, query and fragment ("" when it
 * has none), or NULL when url has no "scheme://". Points into url. */
const char *url_rest(const char *url);

#endif
