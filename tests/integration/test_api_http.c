/*
 * The operator API as a client sees it on the wire: each request is sent
 * as raw bytes over a real socket to a running iocd, and the answer's
 * status line, headers and body are checked. Every answer a client can get
 * is either the endpoint's own or a JSON document {"error": "..."}.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tests/harness/harness.h"

struct srv {
  char dir[256];
  int port;
  struct h_iocd p;
};

/* Starts iocd with a file output, an MQTT broker at mqtt_host on a port
 * nobody listens on, and the API on a free port; waits until it listens. */
static void start(struct srv *s, const char *mqtt_host) {
  cr_assert_eq(h_tmpdir(s->dir, sizeof s->dir), 0);
  s->port = h_free_port();
  char cfg[2048];
  snprintf(cfg, sizeof cfg,
           "{\"data_dir\": \"%s/var\", \"file\": {\"path\": \"%s/out.lp\"},\n"
           " \"mqtt\": {\"host\": \"%s\", \"port\": %d},\n"
           " \"subscriptions\": [{\"topic\": \"t/{district}\"}],\n"
           " \"api\": {\"listen\": \"127.0.0.1:%d\"}}\n",
           s->dir, s->dir, mqtt_host, h_free_port(), s->port);
  cr_assert_eq(h_iocd_start(&s->p, s->dir, cfg), 0);
  cr_assert_eq(h_iocd_wait_log(&s->p, "listening on", 20000), 0);
}

static void stop(struct srv *s) {
  int status = h_iocd_stop(&s->p, SIGTERM, 20000);
  cr_expect_eq(status, 0, "iocd exited with %d (see %s)", status, s->p.log);
  if (status == 0) {
    h_rmtree(s->dir);
  }
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An answer as received: the status code (0 when no status line came),
 * the header block and the body. */
struct answer {
  int status;
  char head[8192];
  char body[65536];
  size_t body_len;
  bool closed; /* the server closed the connection */
};

/* True when got holds a header block and as many body bytes as its
 * Content-Length says. */
static bool answer_complete(const char *got, size_t have) {
  const char *sep = strstr(got, "\r\n\r\n");
  if (!sep) {
    return false;
  }
  for (const char *p = strstr(got, "\r\n"); p && p < sep;
       p = strstr(p + 2, "\r\n")) {
    if (strncasecmp(p + 2, "Content-Length:", 15) == 0) {
      size_t want = (size_t)strtoul(p + 17, NULL, 10);
      return have >= (size_t)(sep + 4 - got) + want;
    }
  }
  return false;
}

/* Sends len bytes of req to 127.0.0.1:port and reads until the answer is
 * complete (or, with until_close, until the server closes), at most
 * timeout_ms. */
static void raw_request(int port, const char *req, size_t len, struct answer *a,
                        int timeout_ms, bool until_close) {
  memset(a, 0, sizeof *a);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert(fd >= 0);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "%s",
               strerror(errno));
  for (size_t off = 0; off < len;) {
    ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
    if (n <= 0) {
      break; /* the server may answer and close before reading it all */
    }
    off += (size_t)n;
  }
  static char got[sizeof a->head + sizeof a->body];
  size_t have = 0;
  long long end = now_ms() + timeout_ms;
  while (have < sizeof got - 1) {
    long long left = end - now_ms();
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
      break;
    }
    ssize_t n = recv(fd, got + have, sizeof got - 1 - have, 0);
    if (n <= 0) {
      a->closed = n == 0;
      break;
    }
    have += (size_t)n;
    got[have] = '\0';
    if (!until_close && answer_complete(got, have)) {
      break; /* a kept-alive connection would not close */
    }
  }
  close(fd);
  got[have] = '\0';
  const char *sep = strstr(got, "\r\n\r\n");
  if (!sep || strncmp(got, "HTTP/1.", 7) != 0) {
    return;
  }
  size_t hn = (size_t)(sep - got) + 2;
  cr_assert_lt(hn, sizeof a->head);
  memcpy(a->head, got, hn);
  a->status = (int)strtol(got + 9, NULL, 10);
  a->body_len = have - hn - 2;
  memcpy(a->body, sep + 4, a->body_len);
}

static void request(int port, const char *req, struct answer *a) {
  raw_request(port, req, strlen(req), a, 5000, false);
}

/* The value of header name in a's header block ("" when absent). */
static const char *header(const struct answer *a, const char *name, char *out,
                          size_t n) {
  out[0] = '\0';
  size_t nl = strlen(name);
  for (const char *p = strstr(a->head, "\r\n"); p && p[2];
       p = strstr(p + 2, "\r\n")) {
    const char *line = p + 2;
    if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
      const char *v = line + nl + 1;
      while (*v == ' ') {
        v++;
      }
      size_t vl = strcspn(v, "\r");
      if (vl >= n) {
        vl = n - 1;
      }
      memcpy(out, v, vl);
      out[vl] = '\0';
      break;
    }
  }
  return out;
}

/* Checks that a is a JSON answer with status want and returns its parsed
 * body (caller deletes). */
static cJSON *json_answer(const struct answer *a, int want) {
  cr_assert_eq(a->status, want, "status %d, want %d; answer:\n%s%s", a->status,
               want, a->head, a->body);
  char v[256];
  cr_expect(strncmp(header(a, "Content-Type", v, sizeof v), "application/json",
                    16) == 0,
            "Content-Type is \"%s\"", v);
  cJSON *doc = cJSON_ParseWithLength(a->body, a->body_len);
  cr_assert_not_null(doc, "the body is not JSON: %s", a->body);
  return doc;
}

/* Checks that a is {"error": "..."} with status want. */
static void expect_json_error(const struct answer *a, int want) {
  cJSON *doc = json_answer(a, want);
  cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "error");
  cr_expect(cJSON_IsString(e) && e->valuestring[0], "no \"error\" string in %s",
            a->body);
  cJSON_Delete(doc);
}

Test(api_http, ready_is_json_when_the_broker_host_has_a_quote) {
  struct srv s;
  start(&s, "bro\\\"ker");
  struct answer a;
  long long end = now_ms() + 10000;
  for (;;) {
    request(s.port, "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n", &a);
    if (strstr(a.body, "broker") || now_ms() > end) {
      break;
    }
    h_sleep_ms(100);
  }
  cJSON *doc = json_answer(&a, 503);
  cr_expect(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(doc, "ready")));
  cJSON *why = cJSON_GetObjectItemCaseSensitive(doc, "reason");
  cr_assert(cJSON_IsString(why), "no reason in %s", a.body);
  cr_expect(strstr(why->valuestring, "bro\"ker:") != NULL,
            "the reason does not name the host: %s", why->valuestring);
  cJSON_Delete(doc);
  stop(&s);
}

Test(api_http, a_path_with_a_nul_or_anything_after_the_endpoint_is_not_found) {
  struct srv s;
  start(&s, "127.0.0.1");
  static const char *const paths[] = {"/health%00x", "/health%00", "/ready%00",
                                      "/health/", "/healthx"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", paths[i]);
    struct answer a;
    request(s.port, req, &a);
    cr_expect_eq(a.status, 404, "%s: status %d", paths[i], a.status);
    if (a.status == 404) {
      expect_json_error(&a, 404);
    }
  }
  struct answer a;
  request(s.port, "GET /health?probe=1 HTTP/1.1\r\nHost: x\r\n\r\n", &a);
  cr_expect_eq(a.status, 200, "a query is ignored: status %d", a.status);
  stop(&s);
}

Test(api_http, a_method_other_than_get_or_head_names_the_allowed_ones) {
  struct srv s;
  start(&s, "127.0.0.1");
  static const char *const reqs[] = {
      "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
      "DELETE /api/v1/alerts HTTP/1.1\r\nHost: x\r\n\r\n",
      "OPTIONS /metrics HTTP/1.1\r\nHost: x\r\n\r\n"};
  for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
    struct answer a;
    request(s.port, reqs[i], &a);
    expect_json_error(&a, 405);
    char v[64];
    cr_expect_str_eq(header(&a, "Allow", v, sizeof v), "GET, HEAD", "%s",
                     reqs[i]);
  }
  stop(&s);
}

/* A request of a few parts joined, for the ones too long to write out. */
static char *build(const char *head, char fill, size_t n, const char *tail) {
  size_t hn = strlen(head), tn = strlen(tail);
  char *s = malloc(hn + n + tn + 1);
  cr_assert_not_null(s);
  memcpy(s, head, hn);
  memset(s + hn, fill, n);
  memcpy(s + hn + n, tail, tn + 1);
  return s;
}

Test(api_http, every_malformed_request_gets_a_json_error) {
  struct srv s;
  start(&s, "127.0.0.1");
  char *long_target = build("GET /", 'a', 5000, " HTTP/1.1\r\nHost: x\r\n\r\n");
  char *big_field = build("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ", 'a',
                          10000, "\r\n\r\n");
  const struct {
    const char *req;
    int status;
  } cases[] = {
      {"GARBAGE\r\n\r\n", 400},
      {"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505},
      {"GET /health HTTP/0.9\r\n\r\n", 505},
      {long_target, 414},
      {big_field, 431},
      {"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400},
      {"GET /health HTTP/1.1\r\nHost: x\r\n"
       "Content-Length: 99999999999999999999999\r\n\r\n",
       413},
      {"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
       413},
      {"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
       "ZZ\r\n",
       411},
      {"PUT /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
       "ZZ\r\n",
       405},
      {"POST /api/v1/silences HTTP/1.1\r\nHost: x\r\n"
       "Content-Length: 70000\r\n\r\n",
       413},
      {"GET /health HTTP/1.1\r\n\r\n", 400},
      {"GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400},
      {"GET /health HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", 400},
      {"GET health HTTP/1.1\r\nHost: x\r\n\r\n", 400},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct answer a;
    request(s.port, cases[i].req, &a);
    cr_expect_eq(a.status, cases[i].status, "%.60s: status %d, want %d",
                 cases[i].req, a.status, cases[i].status);
    if (a.status == cases[i].status) {
      expect_json_error(&a, cases[i].status);
    }
  }
  free(long_target);
  free(big_field);
  stop(&s);
}

Test(api_http, an_error_to_a_head_request_has_no_body) {
  struct srv s;
  start(&s, "127.0.0.1");
  struct answer a;
  request(s.port, "HEAD /health HTTP/2.0\r\nHost: x\r\n\r\n", &a);
  cr_expect_eq(a.status, 505);
  cr_expect_eq(a.body_len, 0, "a body came: %s", a.body);
  stop(&s);
}

/* GET /health with params query parameters and fields header fields (Host
 * included), padded with an X-Pad field to head bytes in all. */
static char *head_of(int params, int fields, size_t head) {
  char *s = malloc(head + 1);
  cr_assert_not_null(s);
  int n = snprintf(s, head + 1, "GET /health?");
  for (int i = 1; i <= params; i++) {
    n += snprintf(s + n, head + 1 - (size_t)n, "%sp%d=%d", i > 1 ? "&" : "", i,
                  i);
  }
  n += snprintf(s + n, head + 1 - (size_t)n, " HTTP/1.1\r\nHost: x\r\n");
  for (int i = 2; i < fields; i++) {
    n += snprintf(s + n, head + 1 - (size_t)n, "X-F%d: %d\r\n", i, i);
  }
  size_t pad = head - (size_t)n - strlen("X-Pad: \r\n\r\n");
  cr_assert_lt(pad, head, "the fields do not fit in %zu bytes", head);
  n += snprintf(s + n, head + 1 - (size_t)n, "X-Pad: ");
  memset(s + n, 'p', pad);
  memcpy(s + (size_t)n + pad, "\r\n\r\n", 5);
  cr_assert_eq(strlen(s), head);
  return s;
}

Test(api_http, a_query_with_500_parameters_gets_a_json_414) {
  struct srv s;
  start(&s, "127.0.0.1");
  char *req = head_of(500, 2, 6000);
  struct answer a;
  request(s.port, req, &a);
  expect_json_error(&a, 414);
  free(req);
  stop(&s);
}

Test(api_http, the_largest_head_accepted_is_answered) {
  struct srv s;
  start(&s, "127.0.0.1");
  char *req = head_of(100, 100, 8192);
  struct answer a;
  request(s.port, req, &a);
  cr_expect_eq(a.status, 200, "status %d:\n%s%s", a.status, a.head, a.body);
  free(req);
  /* 100 fields again, 98 of them cookies of one long Cookie field */
  char *cookies = malloc(8192 + 1);
  cr_assert_not_null(cookies);
  int n = snprintf(cookies, 8193,
                   "GET /health?a HTTP/1.1\r\nHost: x\r\n"
                   "Cookie: c0=0");
  for (int i = 1; i <= 98; i++) {
    n += snprintf(cookies + n, 8193 - (size_t)n, "; c%d=%d", i, i);
  }
  memset(cookies + n, 'v', 8192 - (size_t)n - 4);
  memcpy(cookies + 8192 - 4, "\r\n\r\n", 5);
  request(s.port, cookies, &a);
  cr_expect_eq(a.status, 200, "status %d:\n%s%s", a.status, a.head, a.body);
  free(cookies);
  req = head_of(101, 2, 2000);
  request(s.port, req, &a);
  expect_json_error(&a, 414);
  free(req);
  req = head_of(1, 101, 4000);
  request(s.port, req, &a);
  expect_json_error(&a, 431);
  free(req);
  req = head_of(1, 2, 8193);
  request(s.port, req, &a);
  expect_json_error(&a, 431);
  free(req);
  stop(&s);
}

Test(api_http, an_answer_closes_the_connection) {
  struct srv s;
  start(&s, "127.0.0.1");
  struct answer a;
  /* Two requests in one write: only the first is answered, and the
   * connection closes after it. */
  static const char two[] =
      "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
  raw_request(s.port, two, sizeof two - 1, &a, 3000, true);
  cr_expect_eq(a.status, 200);
  cr_expect(a.closed, "the connection stayed open");
  cr_expect_str_eq(a.body, "ok\n", "more than one answer came: %s", a.body);
  char v[64];
  cr_expect_str_eq(header(&a, "Connection", v, sizeof v), "close");
  stop(&s);
}

/* A connection to 127.0.0.1:port, non-blocking, or -1. */
static int open_conn(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return -1;
  }
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

/* What came on a non-blocking connection so far, appended to got (n
 * bytes, kept NUL-terminated); returns true when the server closed it. */
static bool read_some(int fd, char *got, size_t n) {
  size_t have = strlen(got);
  for (;;) {
    ssize_t r = recv(fd, got + have, n - 1 - have, 0);
    if (r > 0) {
      have += (size_t)r;
      got[have] = '\0';
      continue;
    }
    return r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
  }
}

static const char slow_head[] = "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ";

Test(api_http, a_trickled_head_is_answered_408_at_its_deadline) {
  struct srv s;
  start(&s, "127.0.0.1");
  long long t0 = now_ms();
  int fd = open_conn(s.port);
  cr_assert(fd >= 0);
  cr_assert_eq(send(fd, slow_head, sizeof slow_head - 1, MSG_NOSIGNAL),
               (ssize_t)sizeof slow_head - 1);
  char got[4096] = "";
  bool closed = false;
  while (!closed && now_ms() - t0 < 14000) {
    h_sleep_ms(1000);
    send(fd, "a", 1, MSG_NOSIGNAL); /* one byte a second, never the end */
    closed = read_some(fd, got, sizeof got);
  }
  long long took = now_ms() - t0;
  close(fd);
  cr_expect(closed, "still open after %lld ms of trickling", took);
  cr_expect(took >= 9000 && took <= 12500, "closed after %lld ms", took);
  cr_expect(strncmp(got, "HTTP/1.1 408 ", 13) == 0, "answer: %s", got);
  const char *body = strstr(got, "\r\n\r\n");
  cJSON *doc = body ? cJSON_Parse(body + 4) : NULL;
  cr_expect(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "error")),
            "not a JSON error: %s", got);
  cJSON_Delete(doc);
  stop(&s);
}

Test(api_http, an_address_keeps_its_32_newest_connections) {
  struct srv s;
  start(&s, "127.0.0.1");
  int fds[40];
  for (int i = 0; i < 40; i++) {
    fds[i] = open_conn(s.port);
    cr_assert(fds[i] >= 0);
    h_sleep_ms(5); /* accepted in this order */
  }
  h_sleep_ms(500);
  for (int i = 0; i < 40; i++) {
    char got[1024] = "";
    bool closed = read_some(fds[i], got, sizeof got);
    if (i < 8) {
      cr_expect(closed, "connection %d of 40 is still open", i + 1);
      cr_expect(strncmp(got, "HTTP/1.1 503 ", 13) == 0,
                "connection %d: answer: %s", i + 1, got);
    } else {
      cr_expect(!closed, "connection %d of 40 was closed: %s", i + 1, got);
    }
    close(fds[i]);
  }
  stop(&s);
}

Test(api_http, health_answers_while_70_connections_trickle_their_heads) {
  struct srv s;
  start(&s, "127.0.0.1");
  enum { SLOW = 70 };
  int fds[SLOW];
  for (int i = 0; i < SLOW; i++) {
    fds[i] = -1;
  }
  long long t0 = now_ms();
  int probes = 0;
  while (now_ms() - t0 < 6000) {
    /* Every slow connection sends one more byte of its head, and one that
     * was closed is opened again, as an attacker would. */
    for (int i = 0; i < SLOW; i++) {
      char got[1024] = "";
      if (fds[i] >= 0 && read_some(fds[i], got, sizeof got)) {
        close(fds[i]);
        fds[i] = -1;
      }
      if (fds[i] < 0) {
        fds[i] = open_conn(s.port);
        cr_assert(fds[i] >= 0);
        send(fds[i], slow_head, sizeof slow_head - 1, MSG_NOSIGNAL);
      } else {
        send(fds[i], "a", 1, MSG_NOSIGNAL);
      }
    }
    if (now_ms() - t0 >= 2000) {
      long long asked = now_ms();
      struct answer a;
      raw_request(s.port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
                  strlen("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"), &a, 2000,
                  false);
      cr_expect_eq(a.status, 200, "probe %d: status %d after %lld ms", probes,
                   a.status, now_ms() - asked);
      request(s.port, "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n", &a);
      cJSON_Delete(json_answer(&a, 503));
      probes++;
    }
    h_sleep_ms(1000);
  }
  cr_expect_geq(probes, 3);
  for (int i = 0; i < SLOW; i++) {
    if (fds[i] >= 0) {
      close(fds[i]);
    }
  }
  stop(&s);
}
