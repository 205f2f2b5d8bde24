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

/* Sends len bytes of req to 127.0.0.1:port and reads until the server
 * closes, at most timeout_ms. */
static void raw_request(int port, const char *req, size_t len, struct answer *a,
                        int timeout_ms) {
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
      break;
    }
    have += (size_t)n;
    got[have] = '\0';
    if (answer_complete(got, have)) {
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
  a->status = atoi(got + 9);
  a->body_len = have - hn - 2;
  memcpy(a->body, sep + 4, a->body_len);
}

static void request(int port, const char *req, struct answer *a) {
  raw_request(port, req, strlen(req), a, 5000);
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
