/*
 * libcurl's multi interface driven by a libuv loop, once for every module
 * that speaks HTTP or SMTP (the InfluxDB writer, the alert receivers): one
 * uv_poll_t per socket curl opens, one uv_timer_t for curl's own timeouts,
 * and a callback per transfer when it ends. The caller builds each easy
 * handle (URL, body, headers, timeouts) and keeps owning it; this module
 * only runs it.
 *
 * Everything runs on the loop's thread.
 */
#ifndef IOCD_CORE_CURL_LOOP_H
#define IOCD_CORE_CURL_LOOP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"

struct curl_loop;

/* A transfer ended: rc is curl's result (CURLE_OK when an answer came,
 * whatever its HTTP status; CURLE_ABORTED_BY_CALLBACK when the curl_loop
 * was closed first). easy is no longer part of the multi handle: the
 * callback may read it (curl_easy_getinfo), clean it up or add it again. */
typedef void curl_loop_done_fn(void *ud, CURL *easy, CURLcode rc);

/* The curl_loop is closed: every handle is closed and its memory freed. */
typedef void curl_loop_closed_fn(void *ud);

/* Creates a multi handle on loop (borrowed; it must outlive the curl_loop)
 * and initializes libcurl's globals for it. Returns NULL when memory runs
 * out or libcurl cannot be initialized. */
struct curl_loop *curl_loop_new(uv_loop_t *loop);

/* Starts the transfer of easy, which stays the caller's and must stay
 * valid, with what its options point to (body, header list), until done is
 * called or curl_loop_remove took it back. The curl_loop uses easy's
 * CURLOPT_PRIVATE while it runs it: the caller must not. done runs on a
 * later loop iteration, never from within this call. Returns IOCD_OK,
 * IOCD_ENOMEM, or IOCD_ECLOSED from a done callback that curl_loop_close
 * runs. */
int curl_loop_add(struct curl_loop *cl, CURL *easy, curl_loop_done_fn *done,
                  void *ud);

/* Aborts the transfer of easy (added and not done yet) without calling its
 * done callback; easy is the caller's again. Does nothing when easy is not
 * running. */
void curl_loop_remove(struct curl_loop *cl, CURL *easy);

/* The number of transfers running. */
unsigned curl_loop_running(const struct curl_loop *cl);

/* Closes the curl_loop: every transfer still running is aborted and its
 * done callback called, before this returns, with
 * CURLE_ABORTED_BY_CALLBACK; then the handles are closed and closed (may be
 * NULL) is called with ud once the memory is freed, on a later loop
 * iteration. cl must not be used afterwards. May be called from a done
 * callback. */
void curl_loop_close(struct curl_loop *cl, curl_loop_closed_fn *closed,
                     void *ud);

/* What a transfer's answer leaves for its caller: the body (up to the
 * cap given to curl_answer_init; the rest is read and dropped), the last
 * response's Retry-After value ("" without one; a new status line, after
 * a 100 Continue or a redirect, clears it) and curl's error text. */
struct curl_answer {
  struct buf body;
  char retry_after[64];
  char errbuf[CURL_ERROR_SIZE];
};

void curl_answer_init(struct curl_answer *a, size_t body_max);
void curl_answer_cleanup(struct curl_answer *a);

/* Sets on easy what every iocd transfer has: no signals, no wait for the
 * resolver's thread on a timeout (CURLOPT_QUICK_EXIT), the answer kept in
 * a (borrowed: it must outlive the transfer), curl's error text, and the
 * User-Agent ua. Returns false when curl refused an option. */
bool curl_answer_setup(CURL *easy, struct curl_answer *a, const char *ua);

/* The error of a transfer in words: curl's error text, else rc's. */
const char *curl_answer_error(const struct curl_answer *a, CURLcode rc);

/* Parses a Retry-After value, delta-seconds or an HTTP-date (IMF-fixdate,
 * RFC 850 or asctime, compared with now_s, seconds since the epoch), into
 * a delay in ms: 0 for a date in the past, at most cap_ms. Returns IOCD_OK
 * or IOCD_EPARSE. */
int curl_retry_after_parse(const char *value, int64_t now_s, int64_t cap_ms,
                           int64_t *delay_ms);

#endif
