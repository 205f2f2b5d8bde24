/*
 * The retry policy of the InfluxDB writer, as pure functions: what an answer
 * means (write, retry, split, drop), how long to back off, and what a
 * Retry-After header asks for. docs/store.md has the table.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "store/store_int.h"

enum write_action store__classify(long status, bool transport_ok,
                                  size_t nlines) {
  if (!transport_ok) {
    return ACT_RETRY;
  }
  if (status >= 200 && status <= 299) {
    return ACT_WRITTEN;
  }
  switch (status) {
    case 400: /* bad line protocol; 1.x may have stored the good lines */
    case 413: /* body too large */
    case 422: /* 2.x: points outside the retention or otherwise refused */
      return nlines > 1 ? ACT_SPLIT : ACT_DROP;
    case 408: /* request timeout */
    case 429: /* too many requests */
      return ACT_RETRY;
    default:
      break;
  }
  if (status >= 500 && status <= 599) {
    return ACT_RETRY;
  }
  /* 401, 403, 404 and whatever else a proxy may answer: the data is fine,
   * the server or the config is not. */
  return ACT_RETRY_FIX;
}

const char *store__status_class(long status, bool transport_ok) {
  if (!transport_ok) {
    return "network";
  }
  if (status >= 500) {
    return "5xx";
  }
  if (status >= 400) {
    return "4xx";
  }
  if (status >= 300) {
    return "3xx";
  }
  if (status >= 200) {
    return "2xx";
  }
  return "1xx";
}

int64_t store__backoff_ms(int64_t min_ms, int64_t max_ms, unsigned attempt,
                          uint64_t rnd) {
  if (min_ms < 0) {
    min_ms = 0;
  }
  if (max_ms < min_ms) {
    max_ms = min_ms;
  }
  int64_t ceiling = min_ms;
  for (unsigned i = 0; i < attempt && ceiling < max_ms; i++) {
    ceiling = ceiling > max_ms / 2 ? max_ms : ceiling * 2;
  }
  if (ceiling > max_ms) {
    ceiling = max_ms;
  }
  uint64_t span = (uint64_t)(ceiling - min_ms) + 1;
  return min_ms + (int64_t)(rnd % span);
}

uint64_t store__rand(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * UINT64_C(2685821657736338717);
}
