/*
 * libFuzzer target: HTTP request handling, as a client on the network
 * reaches it. One input is the bytes a client sends on one connection:
 * they go over a real TCP connection to the API (the gate, libmicrohttpd,
 * the tokens and roles, and every endpoint's handler: alerts and rules
 * with their filters, status and reload, the latest values,
 * acknowledgements, silences and the outbox), wired as app/service.c
 * wires them, on a configuration with a token of each role. The seeds
 * (fuzz/corpus/http/) are requests to every endpoint with and without
 * tokens, so that mutations start from every path, query, header and body.
 *
 * After each input the client half-closes, and the target checks what came
 * back:
 *   - the connection ends (an answer and a close, or a close) within
 *     ANSWER_MS: no request holds a connection open once its client is
 *     done sending;
 *   - an answer is HTTP/1.x with a three-digit status;
 *   - an input whose head has no Authorization field with one of the
 *     tokens is never let in: a 2xx answer to it is /health's (anonymous
 *     is "none" here, and /ready is never ready);
 *   - no answer carries a token that the input did not send outside its
 *     Authorization fields (a token the client put in a path or a body
 *     may come back in a message about it).
 *
 * Every input starts from the same state, so that a saved input replays
 * alone as it ran: when one changed what the alerts keep (silences,
 * acknowledgements, the outbox), the alerts are closed, their files under
 * the data_dir removed and the alerts started again before the next.
 * The data_dir is removed at exit.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "alerts/alerts.h"
#include "api/api.h"
#include "api/api_alerting.h"
#include "api/api_latest.h"
#include "api/api_rules.h"
#include "api/api_status.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/stats.h"
#include "fuzz/fuzz.h"
#include "store/latest.h"

#define ANSWER_MS 5000
#define ANSWER_MAX (1u << 20)

#define T_VIEWER "fuzz-viewer-token-000001"
#define T_OPERATOR "fuzz-operator-token-0002"
#define T_ADMIN "fuzz-admin-token-0000003"

static const char *const tokens[] = {T_VIEWER, T_OPERATOR, T_ADMIN};

static uv_loop_t loop;
static char data_dir[] = "/tmp/iocd-fuzz-http-XXXXXX";
static struct config *cfg;
static struct stats *stats;
static struct alerts *alerts;
static struct latest *latest;
static struct api *api;
static int port;
static int reloads;
/* What the alerts keep, as the API renders it, right after their start:
 * silences, acknowledgements, the outbox. */
static struct buf initial_state;

static bool ready(void *ud, char *why, size_t n) {
  (void)ud;
  snprintf(why, n, "not connected to the MQTT broker (fuzzing)");
  return false;
}

static void fill_status(void *ud, struct api_status *st) {
  (void)ud;
  *st = (struct api_status){
      .version = "fuzz",
      .started_ns = FUZZ_NOW_NS,
      .now_ns = clock_realtime_ns(),
      .pid = (long)getpid(),
      .cfg = cfg,
      .config_loaded_ns = FUZZ_NOW_NS,
  };
}

/* A reload is counted, not run: the fuzzer must not reread files. */
static int reload(void *ud, const char *principal) {
  (void)ud;
  (void)principal;
  reloads++;
  return IOCD_OK;
}

/* As app/service.c's handler. */
static int handle(void *ud, const struct api_request *req,
                  struct api_reply *rep, struct buf *out) {
  (void)ud;
  const struct api_status_hooks hooks = {fill_status, reload, NULL};
  int rc = api_rules_handle(alerts_engine(alerts), alerts_notify(alerts), cfg,
                            req, rep, out);
  if (rc == IOCD_ENOTFOUND) {
    rc = api_status_handle(&hooks, req, rep, out);
  }
  if (rc == IOCD_ENOTFOUND) {
    rc = api_latest_handle(latest, cfg, req, rep, out);
  }
  if (rc == IOCD_ENOTFOUND) {
    rc = api_alerting_handle(alerts_notify(alerts), req, rep, out);
  }
  return rc;
}

/* A loopback port nobody listens on now. */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
      getsockname(fd, (struct sockaddr *)&a, &len)) {
    fuzz_fail("cannot find a free port: %s", strerror(errno));
  }
  close(fd);
  return ntohs(a.sin_port);
}

/* Removes what path holds, without following links; path itself stays. */
static void empty_dir(const char *path, int depth) {
  DIR *d = opendir(path);
  if (!d) {
    return;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
      continue;
    }
    char child[4096];
    int k = snprintf(child, sizeof child, "%s/%s", path, e->d_name);
    struct stat st;
    if (k <= 0 || (size_t)k >= sizeof child || lstat(child, &st) != 0) {
      continue;
    }
    if (S_ISDIR(st.st_mode) && depth < 16) {
      empty_dir(child, depth + 1);
      rmdir(child);
    } else {
      unlink(child);
    }
  }
  closedir(d);
}

static void remove_data_dir(void) {
  empty_dir(data_dir, 0);
  rmdir(data_dir);
}

/* Appends what the alerts keep to out. */
static void alerts_state(struct buf *out) {
  struct notify *n = alerts_notify(alerts);
  if (notify_silences_json(n, out) || notify_acks_json(n, out) ||
      notify_outbox_json(n, out)) {
    fuzz_fail("cannot render the state of the alerts");
  }
}

static void alerts_start(void) {
  struct iocd_err err = {{0}};
  struct alerts_opts ao = {.loop = &loop, .cfg = cfg, .stats = stats};
  if (alerts_new(&ao, &alerts, &err)) {
    fuzz_fail("cannot start the alerts: %s", err.msg);
  }
  if (!alerts_notify(alerts)) {
    fuzz_fail("the target's configuration has no notifications");
  }
}

static void on_alerts_closed(void *ud) {
  *(bool *)ud = true;
}

/* Brings the alerts back to the state they started in, when the last input
 * changed it. */
static void alerts_reset(void) {
  struct buf now;
  buf_init(&now, 0);
  alerts_state(&now);
  bool same = now.len == initial_state.len &&
              memcmp(now.data, initial_state.data, now.len) == 0;
  buf_cleanup(&now);
  if (same) {
    return;
  }
  bool closed = false;
  alerts_stop(alerts);
  alerts_close(alerts, on_alerts_closed, &closed);
  for (int i = 0; !closed && i < 1000; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
  }
  if (!closed) {
    fuzz_fail("the alerts do not close");
  }
  empty_dir(data_dir, 0);
  alerts_start();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  log_set_level(LOG_ERROR);
  if (!mkdtemp(data_dir)) {
    fuzz_fail("mkdtemp: %s", strerror(errno));
  }
  atexit(remove_data_dir);
  port = free_port();
  char text[4096];
  snprintf(
      text, sizeof text,
      "{\"data_dir\": \"%s\",\n"
      " \"mqtt\": {\"host\": \"127.0.0.1\", \"port\": 1},\n"
      " \"influxdb\": {\"url\": \"http://127.0.0.1:1\", \"database\": \"x\"},\n"
      " \"api\": {\"listen\": \"127.0.0.1:%d\", \"tokens\": [\n"
      "   {\"name\": \"wall\", \"role\": \"viewer\", \"token\": \"" T_VIEWER
      "\"},\n"
      "   {\"name\": \"duty\", \"role\": \"operator\", \"token\": "
      "\"" T_OPERATOR
      "\"},\n"
      "   {\"name\": \"root\", \"role\": \"admin\", \"token\": \"" T_ADMIN
      "\"}]},\n"
      " \"subscriptions\": [{\"name\": \"igate\", \"topic\": "
      "\"ioc/{district}/igate\", \"measurement\": \"igate\"}],\n"
      " \"sources\": {\"districts\": [\"Lắk\", \"Cư M'gar\"]},\n"
      " \"rules\": [{\"name\": \"online_share_low\",\n"
      "   \"expr\": \"igate.online / igate.received < 0.3\",\n"
      "   \"by\": [\"district\"]}],\n"
      " \"notifications\": {\"receivers\": [{\"name\": \"ops\", \"type\": "
      "\"webhook\", \"url\": \"http://127.0.0.1:1/hook\"}],\n"
      "   \"route\": {\"receiver\": \"ops\"}}}\n",
      data_dir, port);
  cfg = fuzz_config(text);
  if (uv_loop_init(&loop)) {
    fuzz_fail("uv_loop_init");
  }
  stats = stats_new();
  latest = latest_new(0, 0, stats);
  if (!stats || !latest) {
    fuzz_fail("out of memory");
  }
  alerts_start();
  buf_init(&initial_state, 0);
  alerts_state(&initial_state);
  struct iocd_err err = {{0}};
  api = api_new(&loop, &cfg->api, stats, ready, NULL, &err);
  if (!api) {
    fuzz_fail("cannot start the API: %s", err.msg);
  }
  api_set_handler(api, handle, NULL);
  return 0;
}

static bool contains(const char *hay, size_t n, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++) {
    if (memcmp(hay + i, needle, k) == 0) {
      return true;
    }
  }
  return false;
}

/* The end of the request head in data: after its first empty line, or
 * size when there is none. */
static size_t head_end(const char *data, size_t size) {
  for (size_t i = 0; i < size; i++) {
    if (data[i] == '\n' &&
        ((i + 1 < size && data[i + 1] == '\n') ||
         (i + 2 < size && data[i + 1] == '\r' && data[i + 2] == '\n'))) {
      return i + 1;
    }
  }
  return size;
}

/* Whether the line of data that holds offset at (within the head, hn
 * bytes) is an Authorization field. */
static bool in_authorization(const char *data, size_t hn, size_t at) {
  static const char name[] = "authorization:";
  if (at >= hn) {
    return false;
  }
  size_t start = at;
  while (start > 0 && data[start - 1] != '\n') {
    start--;
  }
  return at - start >= sizeof name - 1 &&
         strncasecmp(data + start, name, sizeof name - 1) == 0;
}

/* Where token occurs in the input: in an Authorization field of its head
 * (*as_auth), elsewhere (*elsewhere). */
static void token_in_input(const char *data, size_t size, const char *token,
                           bool *as_auth, bool *elsewhere) {
  size_t k = strlen(token), hn = head_end(data, size);
  *as_auth = *elsewhere = false;
  for (size_t i = 0; i + k <= size; i++) {
    if (memcmp(data + i, token, k) == 0) {
      if (in_authorization(data, hn, i)) {
        *as_auth = true;
      } else {
        *elsewhere = true;
      }
    }
  }
}

/* Sends data on a new connection, half-closes it and runs the loop until
 * the server closes it; the answer goes to out. Waits only for the
 * client's socket or the loop, so that the answer comes as soon as the
 * server gives it. */
static void exchange(const uint8_t *data, size_t size, struct buf *out) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0) {
    fuzz_fail("socket: %s", strerror(errno));
  }
  if (connect(fd, (struct sockaddr *)&a, sizeof a) && errno != EINPROGRESS) {
    fuzz_fail("connect: %s", strerror(errno));
  }
  size_t sent = 0;
  bool half_closed = false, ended = false;
  int64_t deadline = clock_mono_ns() + (int64_t)ANSWER_MS * 1000000;
  char chunk[16384];
  while (!ended) {
    uv_run(&loop, UV_RUN_NOWAIT);
    if (!half_closed) {
      while (sent < size) {
        ssize_t w = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
        if (w <= 0) {
          break;
        }
        sent += (size_t)w;
      }
      if (sent == size) {
        shutdown(fd, SHUT_WR);
        half_closed = true;
      }
    }
    for (;;) {
      ssize_t r = recv(fd, chunk, sizeof chunk, 0);
      if (r > 0) {
        if (out->len < ANSWER_MAX) {
          buf_append(out, chunk, (size_t)r);
        }
        continue;
      }
      if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        /* Closed, or reset: a refusal may close before reading all. */
        ended = true;
      }
      break;
    }
    if (ended) {
      break;
    }
    int64_t left = deadline - clock_mono_ns();
    if (left <= 0) {
      fuzz_fail(
          "the connection is still open %d ms after the client "
          "finished sending (%zu of %zu bytes sent)",
          ANSWER_MS, sent, size);
    }
    int wait = uv_backend_timeout(&loop);
    int64_t left_ms = left / 1000000 + 1;
    if (wait < 0 || wait > left_ms) {
      wait = (int)left_ms;
    }
    struct pollfd p[2] = {
        {.fd = fd, .events = (short)(POLLIN | (half_closed ? 0 : POLLOUT))},
        {.fd = uv_backend_fd(&loop), .events = POLLIN},
    };
    poll(p, 2, wait);
  }
  close(fd);
  /* Let the server see the close and free the connection. */
  for (int i = 0; i < 4; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
  }
}

/* A 2xx answer that is /health's: "ok", or its head alone (HEAD). */
static bool is_health(const char *s, size_t n) {
  const char *end = strstr(s, "\r\n\r\n");
  if (!end) {
    return false;
  }
  size_t hn = (size_t)(end + 4 - s);
  if (n - hn == 3 && memcmp(end + 4, "ok\n", 3) == 0) {
    return true;
  }
  return n == hn && strstr(s, "\r\nContent-Length: 3\r\n") &&
         strstr(s, "\r\nContent-Type: text/plain") &&
         strstr(s, "\r\nContent-Type: text/plain") < end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct buf out;
  buf_init(&out, ANSWER_MAX + sizeof(char[16384]));
  exchange(data, size, &out);
  alerts_reset();
  const char *s = out.data ? out.data : "";
  const int shown = (int)(out.len < 2000 ? out.len : 2000);
  const int sent = (int)(size < 2000 ? size : 2000);
  if (out.len == 0) {
    buf_cleanup(&out);
    return 0;
  }
  if (out.len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[8] != ' ' ||
      s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' ||
      s[11] > '9') {
    fuzz_fail("not an HTTP answer: %.*s", (int)(out.len < 200 ? out.len : 200),
              s);
  }
  bool has_token = false;
  for (size_t i = 0; i < 3; i++) {
    bool as_auth, elsewhere;
    token_in_input((const char *)data, size, tokens[i], &as_auth, &elsewhere);
    has_token = has_token || as_auth;
    if (!elsewhere && contains(s, out.len, tokens[i])) {
      fuzz_fail("an answer carries the token of role %zu:\n%.*s\n---\n%.*s", i,
                sent, (const char *)data, shown, s);
    }
  }
  if (!has_token && s[9] == '2' && !is_health(s, out.len)) {
    fuzz_fail("a request without a token was let in:\n%.*s\n---\n%.*s", sent,
              (const char *)data, shown, s);
  }
  buf_cleanup(&out);
  return 0;
}
