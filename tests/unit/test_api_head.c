/*
 * The check of a request head before libmicrohttpd reads it: a head is
 * complete only at its empty line, is refused as soon as its bytes show a
 * fault, and is accepted only as libmicrohttpd parses it.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

static enum api_head_result check(const char *s, struct api_head *h) {
  return api__head_check(s, strlen(s), h);
}

Test(api_head, is_complete_only_at_its_empty_line) {
  static const char full[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  struct api_head h;
  for (size_t n = 1; n < sizeof full - 1; n++) {
    cr_expect_eq(api__head_check(full, n, &h), API_HEAD_INCOMPLETE,
                 "after %zu bytes", n);
  }
  cr_expect_eq(api__head_check(full, sizeof full - 1, &h), API_HEAD_ACCEPTED);
  cr_expect_eq(h.len, sizeof full - 1);
}

Test(api_head, accepts_bare_lf_leading_empty_lines_and_http_1_0) {
  struct api_head h;
  cr_expect_eq(check("GET /health HTTP/1.1\nHost: x\n\n", &h),
               API_HEAD_ACCEPTED);
  cr_expect_eq(check("\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n", &h),
               API_HEAD_ACCEPTED);
  cr_expect_eq(check("GET /health HTTP/1.0\r\n\r\n", &h), API_HEAD_ACCEPTED);
  cr_expect_eq(check("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0"
                     "\r\n\r\n",
                     &h),
               API_HEAD_ACCEPTED);
  cr_expect_eq(
      check("GET /health HTTP/1.1\r\nhost: x\r\n\r\nGET / HTTP/1.1\r\n", &h),
      API_HEAD_ACCEPTED, "bytes after the head are not the head's");
}

static void refused(const char *s, unsigned status) {
  struct api_head h;
  cr_expect_eq(check(s, &h), API_HEAD_REFUSED, "%s: not refused", s);
  cr_expect_eq(h.status, status, "%s: status %u, want %u", s, h.status, status);
  cr_expect(h.error && h.error[0] && !strchr(h.error, '"'), "%s: error", s);
}

Test(api_head, refuses_a_fault_as_soon_as_its_bytes_show_it) {
  refused("GARBAGE\r\n", 400);
  refused("GET  /health HTTP/1.1\r\n", 400);
  refused("GET http://x/health HTTP/1.1\r\n", 400);
  refused("GET /health HTTP/1.1 \r\n", 400);
  refused("GET /he\alth HTTP/1.1\r\n", 400);
  refused("GET /health HTTP/2.0\r\n", 505);
  refused("GET /health HTTP/0.9\r\n", 505);
  refused("GET /health HTTP/1.1\r\nHost: x\r\n\tfolded\r\n", 400);
  refused("GET /health HTTP/1.1\r\nHost : x\r\n", 400);
  refused("GET /health HTTP/1.1\r\nX: a\rb\r\n", 400);
  refused("GET /health HTTP/1.1\r\nX: a\x01\r\n", 400);
  refused("GET /health HTTP/1.1\r\nContent-Length: 1x\r\n", 400);
  refused("GET /health HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n",
          400);
}

Test(api_head, refuses_a_nul_anywhere) {
  static const char s[] = "GET /health HTTP/1.1\r\nX: a\0b\r\n\r\n";
  struct api_head h;
  cr_expect_eq(api__head_check(s, sizeof s - 1, &h), API_HEAD_REFUSED);
  cr_expect_eq(h.status, 400);
}

Test(api_head, refuses_what_only_the_whole_head_shows) {
  refused("GET /health HTTP/1.1\r\n\r\n", 400);
  refused("GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
  refused("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n", 413);
  refused(
      "HEAD /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
      "\r\n\r\n",
      413);
  refused("PUT /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n", 405);
  refused(
      "POST /api/v1/silences HTTP/1.1\r\nHost: x\r\n"
      "Content-Length: 65537\r\n\r\n",
      413);
  refused(
      "GET /health HTTP/1.1\r\nHost: x\r\n"
      "Content-Length: 99999999999999999999999999\r\n\r\n",
      413);
}

Test(api_head, lets_post_and_delete_bring_a_body_up_to_the_limit) {
  struct api_head h;
  cr_expect_eq(check("POST /api/v1/silences HTTP/1.1\r\nHost: x\r\n"
                     "Content-Length: 65536\r\n\r\n",
                     &h),
               API_HEAD_ACCEPTED);
  cr_expect_eq(check("DELETE /api/v1/silences/1 HTTP/1.1\r\nHost: x\r\n"
                     "Content-Length: 2\r\n\r\n",
                     &h),
               API_HEAD_ACCEPTED);
}

Test(api_head, wants_the_length_of_a_body_up_front) {
  refused(
      "POST /api/v1/reload HTTP/1.1\r\nHost: x\r\n"
      "Transfer-Encoding: chunked\r\n\r\n",
      411);
}

Test(api_head, says_when_the_answer_has_no_body) {
  struct api_head h;
  cr_expect_eq(check("HEAD /health HTTP/2.0\r\n", &h), API_HEAD_REFUSED);
  cr_expect(h.head_method);
  cr_expect_eq(check("GET /health HTTP/2.0\r\n", &h), API_HEAD_REFUSED);
  cr_expect(!h.head_method);
}

/* A head of n bytes: GET /health, Host, then X-Pad up to n. */
static char *padded(size_t n, const char *line) {
  char *s = malloc(n + 1);
  cr_assert_not_null(s);
  size_t k = (size_t)snprintf(s, n + 1, "%s\r\nHost: x\r\nX-Pad: ", line);
  cr_assert_lt(k + 4, n);
  memset(s + k, 'p', n - k - 4);
  memcpy(s + n - 4, "\r\n\r\n", 5);
  return s;
}

Test(api_head, holds_the_size_limits_to_the_byte) {
  struct api_head h;
  char *s = padded(API_HEAD_MAX, "GET /health HTTP/1.1");
  cr_expect_eq(api__head_check(s, API_HEAD_MAX, &h), API_HEAD_ACCEPTED);
  free(s);
  s = padded(API_HEAD_MAX + 1, "GET /health HTTP/1.1");
  cr_expect_eq(api__head_check(s, API_HEAD_MAX + 1, &h), API_HEAD_REFUSED);
  cr_expect_eq(h.status, 431);
  /* refused as soon as API_HEAD_MAX bytes have come without its end */
  cr_expect_eq(api__head_check(s, API_HEAD_MAX - 1, &h), API_HEAD_INCOMPLETE);
  cr_expect_eq(api__head_check(s, API_HEAD_MAX, &h), API_HEAD_REFUSED);
  cr_expect_eq(h.status, 431);
  free(s);

  char line[API_LINE_MAX + 64];
  size_t k = (size_t)snprintf(line, sizeof line, "GET /");
  size_t fill = API_LINE_MAX - k - strlen(" HTTP/1.1");
  memset(line + k, 'a', fill);
  memcpy(line + k + fill, " HTTP/1.1", sizeof " HTTP/1.1");
  cr_assert_eq(strlen(line), API_LINE_MAX);
  s = padded(API_HEAD_MAX, line);
  cr_expect_eq(api__head_check(s, API_HEAD_MAX, &h), API_HEAD_ACCEPTED);
  free(s);
  memmove(line + 5, line + 4, strlen(line + 4) + 1); /* one byte more */
  cr_expect_eq(api__head_check(line, strlen(line), &h), API_HEAD_REFUSED);
  cr_expect_eq(h.status, 414);
}

Test(api_head, counts_query_parameters_fields_and_cookies) {
  struct api_head h;
  char s[4096];
  size_t k = (size_t)snprintf(s, sizeof s, "GET /health?a");
  for (int i = 1; i < API_PARAMS_MAX; i++) {
    k += (size_t)snprintf(s + k, sizeof s - k, "&a");
  }
  snprintf(s + k, sizeof s - k, " HTTP/1.1\r\nHost: x\r\n\r\n");
  cr_expect_eq(check(s, &h), API_HEAD_ACCEPTED);
  snprintf(s + k, sizeof s - k, "&a HTTP/1.1\r\nHost: x\r\n\r\n");
  cr_expect_eq(check(s, &h), API_HEAD_REFUSED);
  cr_expect_eq(h.status, 414);

  k = (size_t)snprintf(s, sizeof s, "GET /health HTTP/1.1\r\nHost: x\r\n");
  for (int i = 2; i < API_FIELDS_MAX; i++) {
    k += (size_t)snprintf(s + k, sizeof s - k, "X: 1\r\n");
  }
  snprintf(s + k, sizeof s - k, "Cookie: a=1\r\n\r\n");
  cr_expect_eq(check(s, &h), API_HEAD_ACCEPTED);
  snprintf(s + k, sizeof s - k, "Cookie: a=1; b=2\r\n\r\n");
  cr_expect_eq(check(s, &h), API_HEAD_REFUSED);
  cr_expect_eq(h.status, 431);
}
