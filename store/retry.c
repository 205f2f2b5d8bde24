/*
 * The retry policy of the InfluxDB writer, as pure functions: what an answer
 * means (write, retry, split, drop), how long to back off, what a
 * Retry-After header asks for, and when the recovery probe's /ping cuts a
 * backoff short. docs/store.md has the table.
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

/* ---- The recovery probe ---- */

const char *store__probe_outcome_name(enum probe_outcome o) {
  switch (o) {
    case PROBE_UP:
      return "up";
    case PROBE_DOWN:
      return "down";
    default:
      return "other";
  }
}

enum probe_outcome store__probe_outcome(long status, CURLcode res) {
  if (res != CURLE_OK || (status >= 500 && status <= 599)) {
    return PROBE_DOWN;
  }
  if (status >= 200 && status <= 299) {
    return PROBE_UP;
  }
  /* 401 with ping-auth-enabled, 404 behind a proxy that does not route
   * /ping, ...: the server is there, but this is not InfluxDB's answer. */
  return PROBE_OTHER;
}

bool store__probe_shows_down(CURLcode res) {
  return res == CURLE_COULDNT_CONNECT || res == CURLE_COULDNT_RESOLVE_HOST ||
         res == CURLE_COULDNT_RESOLVE_PROXY;
}

void store__probe_failed(struct probe_state *ps, long status, CURLcode res,
                         int64_t now_ms) {
  if (!ps->failing) {
    ps->failing = true;
    ps->since_ms = now_ms;
  }
  bool transport_ok = res == CURLE_OK;
  if (transport_ok && !(status >= 500 && status <= 599)) {
    /* 408, 429, 401, 404...: InfluxDB is there and said no; /ping would
     * only say it is there. The backoff (and Retry-After) stands. */
    ps->active = false;
    ps->seen_down = false;
    return;
  }
  ps->active = true;
  if (store__probe_shows_down(res)) {
    ps->seen_down = true;
  }
}

bool store__probe_answer(struct probe_state *ps, enum probe_outcome o) {
  if (!ps->active) {
    return false;
  }
  switch (o) {
    case PROBE_DOWN:
      ps->seen_down = true;
      return false;
    case PROBE_UP:
      if (!ps->seen_down) {
        return false;
      }
      ps->seen_down = false;
      return true;
    default:
      return false;
  }
}

void store__probe_reset(struct probe_state *ps) {
  *ps = (struct probe_state){0};
}
