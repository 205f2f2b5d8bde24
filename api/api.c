/*
 * libmicrohttpd driven by libuv: MHD runs in "external select" mode with
 * epoll; its epoll fd is watched by one uv_poll_t, and a uv_timer_t follows
 * MHD_get_timeout. MHD has no listening socket: the gate (gate.c) accepts
 * each connection, checks its request head and passes it on with
 * MHD_add_connection. Every request is answered synchronously from state
 * in memory, so no connection is ever suspended, and every answer closes
 * its connection, so that each request passes the gate. Authentication
 * (auth.h) is decided at the first call for a request, on its head, so a
 * refused request's body is never read. With TLS the gate cannot read the
 * head and passes each connection on at once.
 */
#include "api/api.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/api_int.h"
#include "api/auth.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/container.h"
#include "core/log.h"

struct api {
  uv_loop_t *loop;
  struct MHD_Daemon *mhd;
  uv_poll_t poll;
  uv_timer_t timer;
  struct stats *stats;
  api_ready_fn *ready;
  void *ud;
  api_handle_fn *handle;
  void *handle_ud;
  int open_handles;
  api_closed_fn *closed_cb;
  void *closed_ud;
  struct auth *auth;
  /* iocd_api_auth_failures_total by reason: missing, malformed, invalid,
   * forbidden (enum auth_outcome - 1). */
  struct metric *auth_failures[4];
  /* What api_new started with, to tell a reload that changes it. */
  char *listen;
  char *cert_file, *key_file;
  /* The certificate and key libmicrohttpd was given (kept while it runs;
   * the key scrubbed at the end). */
  char *cert_pem, *key_pem;
  struct api_gate gate;
};

static void on_timer(uv_timer_t *t);

/* Runs MHD, then re-arms the timer from MHD's next timeout. */
static void drive(struct api *a) {
  MHD_UNSIGNED_LONG_LONG ms;
  int64_t t0 = clock_mono_ns();
  MHD_run(a->mhd);
  api__gate_charge(&a->gate, clock_mono_ns() - t0);
  if (MHD_get_timeout(a->mhd, &ms) == MHD_YES) {
    uv_timer_start(&a->timer, on_timer, (uint64_t)ms, 0);
  } else {
    uv_timer_stop(&a->timer);
  }
}

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  drive(container_of(p, struct api, poll));
}

static void on_timer(uv_timer_t *t) {
  drive(container_of(t, struct api, timer));
}

/* Queues an answer; name and value, when not NULL, add one more header. */
static enum MHD_Result reply_with(struct MHD_Connection *c, unsigned status,
                                  const char *type, const char *body,
                                  size_t len, const char *name,
                                  const char *value) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!r) {
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", type);
  MHD_add_response_header(r, "Cache-Control", "no-store");
  MHD_add_response_header(r, "Connection", "close");
  if (name) {
    MHD_add_response_header(r, name, value);
  }
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
                             const char *type, const char *body, size_t len) {
  return reply_with(c, status, type, body, len, NULL, NULL);
}

/* The /ready answer, {"ready": bool, "reason": "..."}, built by cJSON so
 * that any reason (a broker host with a quote) stays valid JSON. */
static enum MHD_Result reply_ready(struct MHD_Connection *c, bool ok,
                                   const char *why) {
  static const char oom[] = "{\"error\":\"out of memory\"}\n";
  cJSON *doc = cJSON_CreateObject();
  char *text = NULL;
  if (doc && cJSON_AddBoolToObject(doc, "ready", ok) &&
      cJSON_AddStringToObject(doc, "reason", why)) {
    text = cJSON_PrintUnformatted(doc);
  }
  cJSON_Delete(doc);
  if (!text) {
    return reply(c, 500, "application/json", oom, sizeof oom - 1);
  }
  size_t n = strlen(text);
  text[n] = '\n'; /* replaces the NUL: the body is sent by length */
  enum MHD_Result ret =
      reply(c, ok ? 200 : 503, "application/json", text, n + 1);
  cJSON_free(text);
  return ret;
}

/* A request's body, read across the handler's calls, and who sent it
 * (decided at the first call). */
struct request_body {
  struct buf b;
  bool too_big;
  char *principal;
  enum config_api_role role;
};

const char *api_request_arg(const struct api_request *req, const char *name) {
  return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  struct request_body *rb = *con_cls;
  if (rb) {
    buf_cleanup(&rb->b);
    free(rb->principal);
    free(rb);
    *con_cls = NULL;
  }
}

/* Answers {"error": msg}; name and value, when not NULL, add a header. */
static enum MHD_Result json_error_with(struct MHD_Connection *c,
                                       unsigned status, const char *msg,
                                       const char *name, const char *value) {
  cJSON *doc = cJSON_CreateObject();
  char *text = NULL;
  if (doc && cJSON_AddStringToObject(doc, "error", msg)) {
    text = cJSON_PrintUnformatted(doc);
  }
  cJSON_Delete(doc);
  if (!text) {
    static const char oom[] = "{\"error\":\"out of memory\"}\n";
    return reply(c, 500, "application/json", oom, sizeof oom - 1);
  }
  size_t n = strlen(text);
  text[n] = '\n';
  enum MHD_Result ret =
      reply_with(c, status, "application/json", text, n + 1, name, value);
  cJSON_free(text);
  return ret;
}

static enum MHD_Result json_error(struct MHD_Connection *c, unsigned status,
                                  const char *msg) {
  return json_error_with(c, status, msg, NULL, NULL);
}

/* Counts the Authorization fields of a request head. */
static enum MHD_Result count_authorization(void *cls, enum MHD_ValueKind kind,
                                           const char *key, const char *value) {
  unsigned *n = cls;
  (void)kind;
  (void)value;
  if (strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION) == 0) {
    (*n)++;
  }
  return MHD_YES;
}

/* Decides who sent the request and whether it may: true when it may, with
 * its principal in rb; otherwise the refusal is queued in *ret (401 with
 * WWW-Authenticate, or 403), counted, and logged without any token. */
static bool authorize(struct api *a, struct MHD_Connection *c, const char *url,
                      const char *method, struct request_body *rb,
                      enum MHD_Result *ret) {
  unsigned nfields = 0;
  MHD_get_connection_values(c, MHD_HEADER_KIND, count_authorization, &nfields);
  const char *value = MHD_lookup_connection_value(
      c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  struct auth_result r;
  auth_check(a->auth, method, url, value, nfields, &r);
  if (r.outcome == AUTH_OK) {
    rb->principal = strdup(r.principal);
    rb->role = r.role;
    if (!rb->principal) {
      *ret = MHD_NO;
      return false;
    }
    return true;
  }
  stat_inc(a->auth_failures[r.outcome - 1]);
  char msg[320];
  auth_message(&r, method, url, msg, sizeof msg);
  if (r.outcome == AUTH_FORBIDDEN) {
    log_info("api", "403 for %s %.200s: token \"%s\" has role %s", method, url,
             r.principal, config_api_role_name(r.role));
    *ret = json_error(c, 403, msg);
  } else {
    log_debug("api", "401 for %s %.200s: %s token", method, url,
              auth_reason(r.outcome));
    *ret = json_error_with(c, 401, msg, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                           "Bearer realm=\"iocd\"");
  }
  return false;
}

/* Everything under /api/v1/ but the two renderers: the service's handler. */
static enum MHD_Result handle_call(struct api *a, struct MHD_Connection *c,
                                   const char *url, const char *method,
                                   const struct request_body *rb) {
  struct api_request req = {
      .method = method,
      .path = url,
      .body = rb->b.len ? rb->b.data : NULL,
      .body_len = rb->b.len,
      .conn = c,
      .principal = rb->principal,
      .role = (int)rb->role,
  };
  struct buf out;
  buf_init(&out, 64u << 20);
  struct api_reply rep = {500, NULL};
  int rc = a->handle(a->handle_ud, &req, &rep, &out);
  enum MHD_Result ret;
  if (rc == IOCD_ENOTFOUND) {
    ret = json_error(c, 404, "not found");
  } else if (rc) {
    ret = json_error(c, 500, "cannot render the answer");
  } else {
    ret = reply_with(
        c, rep.status, "application/json", out.data ? out.data : "", out.len,
        rep.status == 405 && rep.allow ? "Allow" : NULL, rep.allow);
  }
  buf_cleanup(&out);
  return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *data,
                               size_t *size, void **con_cls) {
  struct api *a = cls;
  (void)version;
  if (*con_cls == NULL) {
    /* First call: headers only. */
    struct request_body *nrb = calloc(1, sizeof *nrb);
    if (!nrb) {
      return MHD_NO;
    }
    buf_init(&nrb->b, API_BODY_MAX);
    *con_cls = nrb;
    enum MHD_Result ret = MHD_YES;
    if (!authorize(a, c, url, method, nrb, &ret)) {
      return ret;
    }
    return MHD_YES;
  }
  struct request_body *rb = *con_cls;
  if (*size) {
    if (!rb->too_big && buf_append(&rb->b, data, *size) != IOCD_OK) {
      rb->too_big = true;
    }
    *size = 0;
    return MHD_YES;
  }
  if (rb->too_big) {
    char msg[80];
    snprintf(msg, sizeof msg, "request body larger than %u bytes",
             API_BODY_MAX);
    return json_error(c, 413, msg);
  }
  bool is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
  /* /api/v1/ is the service handler's. */
  if (a->handle && strncmp(url, "/api/v1/", 8) == 0) {
    return handle_call(a, c, url, method, rb);
  }
  if (!is_get) {
    static const char msg[] = "{\"error\":\"method not allowed\"}\n";
    return reply_with(c, 405, "application/json", msg, sizeof msg - 1, "Allow",
                      "GET, HEAD");
  }
  if (strcmp(url, "/health") == 0) {
    return reply(c, 200, "text/plain; charset=utf-8", "ok\n", 3);
  }
  if (strcmp(url, "/ready") == 0) {
    char why[256] = "";
    bool ok = a->ready ? a->ready(a->ud, why, sizeof why) : true;
    return reply_ready(c, ok, ok ? "" : why);
  }
  if (strcmp(url, "/metrics") == 0) {
    struct buf b;
    buf_init(&b, 64u << 20);
    enum MHD_Result ret;
    if (stats_render_prometheus(a->stats, &b) != IOCD_OK) {
      static const char big[] = "{\"error\":\"metrics too large\"}\n";
      ret = reply(c, 500, "application/json", big, sizeof big - 1);
    } else {
      ret = reply(c, 200, "text/plain; version=0.0.4; charset=utf-8",
                  b.data ? b.data : "", b.len);
    }
    buf_cleanup(&b);
    return ret;
  }
  static const char nf[] = "{\"error\":\"not found\"}\n";
  return reply(c, 404, "application/json", nf, sizeof nf - 1);
}

static int hex_digit(char ch) {
  if (ch >= '0' && ch <= '9') {
    return ch - '0';
  }
  if (ch >= 'a' && ch <= 'f') {
    return ch - 'a' + 10;
  }
  if (ch >= 'A' && ch <= 'F') {
    return ch - 'A' + 10;
  }
  return -1;
}

/* Decodes %XX in place as libmicrohttpd does, except that "%00" stays as
 * it is: a decoded NUL would cut the path the handler sees, and
 * "/health%00x" would answer as /health. Returns the new length. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s) {
  (void)cls;
  (void)c;
  char *w = s;
  for (const char *r = s; *r;) {
    int hi = r[0] == '%' ? hex_digit(r[1]) : -1;
    int lo = hi >= 0 ? hex_digit(r[2]) : -1;
    if (lo >= 0 && (hi | lo) != 0) {
      *w++ = (char)(hi * 16 + lo);
      r += 3;
    } else {
      *w++ = *r++;
    }
  }
  *w = '\0';
  return (size_t)(w - s);
}

/* Parses HOST:PORT into a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss,
                        struct iocd_err *err) {
  memset(ss, 0, sizeof *ss);
  const char *colon = strrchr(listen, ':');
  if (!colon || colon == listen || !colon[1]) {
    return iocd_err_set(err, IOCD_EINVAL, "api.listen: \"%s\" is not HOST:PORT",
                        listen);
  }
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 1 || port > 65535) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "api.listen: \"%s\": port must be 1..65535", listen);
  }
  char host[128];
  size_t hn = (size_t)(colon - listen);
  if (listen[0] == '[' && hn >= 2 && listen[hn - 1] == ']') {
    listen++;
    hn -= 2;
  }
  if (hn >= sizeof host) {
    return iocd_err_set(err, IOCD_EINVAL, "api.listen: host too long");
  }
  memcpy(host, listen, hn);
  host[hn] = '\0';
  if (strcmp(host, "localhost") == 0) {
    memcpy(host, "127.0.0.1", 10);
  }
  struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
  } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
  } else {
    return iocd_err_set(err, IOCD_EINVAL,
                        "api.listen: \"%s\" is not an IP address", host);
  }
  return IOCD_OK;
}

/* libmicrohttpd's own messages (a client that broke the protocol, a
 * resource it ran out of) go to iocd's log rather than to raw stderr. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
    msg[--n] = '\0';
  }
  log_write(LOG_WARN, "api", "%s", msg);
}

/* The listening socket is bound here rather than by libmicrohttpd, so that
 * a failure names the address and the system's reason ("Address already in
 * use") instead of libmicrohttpd's "Failed to bind to port 0". Returns the
 * socket, or -1 with err set. */
static int listen_on(const struct sockaddr_storage *ss, const char *where,
                     struct iocd_err *err) {
  socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                            : sizeof(struct sockaddr_in);
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    iocd_err_set(err, IOCD_EIO, "api.listen: cannot listen on %s: %s", where,
                 strerror(errno));
    return -1;
  }
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (ss->ss_family == AF_INET6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  }
  if (bind(fd, (const struct sockaddr *)ss, len) != 0 ||
      listen(fd, SOMAXCONN) != 0) {
    iocd_err_set(err, IOCD_EIO, "api.listen: cannot listen on %s: %s", where,
                 strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

/* The gate passes a connection whose request head it accepted. */
static bool pass(void *ud, int fd, const struct sockaddr *addr, socklen_t len) {
  struct api *a = ud;
  return MHD_add_connection(a->mhd, fd, addr, len) == MHD_YES;
}

/* After the gate passed connections: libmicrohttpd has no thread that
 * would notice them, so it runs now. */
static void run(void *ud) {
  drive(ud);
}

/* Tells the gate when libmicrohttpd takes and ends a connection. */
static void on_connection(void *cls, struct MHD_Connection *c,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  struct api *a = cls;
  (void)c;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    api__gate_started(&a->gate, socket_context);
  } else {
    api__gate_ended(&a->gate, *socket_context);
  }
}

/* Overwrites a secret before its memory is freed. */
static void scrub_free(char *s) {
  if (s) {
    volatile char *p = s;
    while (*p) {
      *p++ = '\0';
    }
    free(s);
  }
}

static char *dup_or_null(const char *s, bool *nomem) {
  char *d = s ? strdup(s) : NULL;
  *nomem = *nomem || (s && !d);
  return d;
}

/* Frees what api_new allocated besides libmicrohttpd and the gate. */
static void api_free(struct api *a) {
  auth_free(a->auth);
  free(a->listen);
  free(a->cert_file);
  free(a->key_file);
  free(a->cert_pem);
  scrub_free(a->key_pem);
  free(a);
}

/* The counters of refused requests, one per reason. */
static void count_failures(struct api *a) {
  static const char name[] = "iocd_api_auth_failures_total";
  static const char help[] =
      "API requests refused: reason=\"missing\" without a token (401), "
      "\"malformed\" with an Authorization header that is not one bearer "
      "token (401), \"invalid\" with a token that is not configured (401), "
      "\"forbidden\" with a token whose role is too low (403).";
  static const enum auth_outcome outcomes[] = {AUTH_MISSING, AUTH_MALFORMED,
                                               AUTH_INVALID, AUTH_FORBIDDEN};
  for (size_t i = 0; i < 4; i++) {
    a->auth_failures[outcomes[i] - 1] = stats_counter(
        a->stats, name, help, "reason", auth_reason(outcomes[i]), NULL);
  }
}

/* Starts libmicrohttpd without a listening socket (the gate accepts), with
 * TLS when a has a certificate. Returns NULL when it cannot. */
static struct MHD_Daemon *start_mhd(struct api *a) {
  unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET;
  /* The connection limit leaves room for the connections the gate made
   * close, until libmicrohttpd has seen them end. The memory limit holds
   * any request head the gate passes (api_int.h). The certificate and key
   * come last: without TLS the list ends before them. */
#define API_MHD_OPTIONS                                                    \
  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_UNESCAPE_CALLBACK, \
      unescape, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, a,      \
      MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,                     \
      MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_LIMIT,     \
      2u * API_CONNS_MAX, MHD_OPTION_CONNECTION_MEMORY_LIMIT,              \
      (size_t)API_MHD_MEMORY
  if (a->cert_pem) {
    return MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, handler, a,
                            API_MHD_OPTIONS, MHD_OPTION_HTTPS_MEM_CERT,
                            a->cert_pem, MHD_OPTION_HTTPS_MEM_KEY, a->key_pem,
                            MHD_OPTION_END);
  }
  return MHD_start_daemon(flags, 0, NULL, NULL, handler, a, API_MHD_OPTIONS,
                          MHD_OPTION_END);
#undef API_MHD_OPTIONS
}

struct api *api_new(uv_loop_t *loop, const struct config_api *cfg,
                    struct stats *stats, api_ready_fn *ready, void *ud,
                    struct iocd_err *err) {
  const char *listen = cfg->listen ? cfg->listen : "127.0.0.1:8080";
  bool tls = cfg->tls.cert_pem && cfg->tls.key_pem;
  if (tls && !MHD_is_feature_supported(MHD_FEATURE_TLS)) {
    iocd_err_set(err, IOCD_EINVAL,
                 "api.tls: this libmicrohttpd was built without TLS");
    return NULL;
  }
  struct sockaddr_storage ss;
  if (parse_listen(listen, &ss, err)) {
    return NULL;
  }
  struct api *a = calloc(1, sizeof *a);
  if (!a) {
    iocd_err_set(err, IOCD_ENOMEM, "out of memory");
    return NULL;
  }
  a->loop = loop;
  a->stats = stats;
  a->ready = ready;
  a->ud = ud;
  bool nomem = false;
  a->auth = auth_new(cfg);
  a->listen = dup_or_null(listen, &nomem);
  a->cert_file = dup_or_null(cfg->tls.cert_file, &nomem);
  a->key_file = dup_or_null(cfg->tls.key_file, &nomem);
  a->cert_pem = dup_or_null(tls ? cfg->tls.cert_pem : NULL, &nomem);
  a->key_pem = dup_or_null(tls ? cfg->tls.key_pem : NULL, &nomem);
  if (nomem || !a->auth) {
    api_free(a);
    iocd_err_set(err, IOCD_ENOMEM, "out of memory");
    return NULL;
  }
  count_failures(a);
  int fd = listen_on(&ss, listen, err);
  if (fd < 0) {
    api_free(a);
    return NULL;
  }
  a->mhd = start_mhd(a);
  if (!a->mhd) {
    if (tls) {
      iocd_err_set(err, IOCD_EINVAL,
                   "api.tls: cannot serve HTTPS on %s with %s and %s (is each "
                   "PEM, and does the key belong to the certificate?)",
                   listen, a->cert_file, a->key_file);
    } else {
      iocd_err_set(err, IOCD_EIO, "api.listen: cannot serve on %s", listen);
    }
    close(fd);
    api_free(a);
    return NULL;
  }
  if (api__gate_start(&a->gate, loop, fd, stats, tls, pass, run, a, err)) {
    MHD_stop_daemon(a->mhd);
    api_free(a);
    return NULL;
  }
  api__gate_set_share(&a->gate, cfg->loop_share_pct);
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_EPOLL_FD);
  uv_poll_init(loop, &a->poll, info->epoll_fd);
  uv_poll_start(&a->poll, UV_READABLE, on_poll);
  uv_timer_init(loop, &a->timer);
  a->open_handles = 4;
  drive(a);
  log_info("api",
           "listening on %s://%s (/health, /ready, /metrics, /api/v1/); "
           "%zu tokens, anonymous requests: %s",
           tls ? "https" : "http", listen, cfg->ntokens,
           config_api_role_name(cfg->anonymous));
  return a;
}

int api_set_auth(struct api *a, const struct config_api *cfg) {
  struct auth *n = auth_new(cfg);
  if (!n) {
    return IOCD_ENOMEM;
  }
  auth_free(a->auth);
  a->auth = n;
  api__gate_set_share(&a->gate, cfg->loop_share_pct);
  const char *listen = cfg->listen ? cfg->listen : "127.0.0.1:8080";
  bool same_tls = (!a->cert_pem) == (!cfg->tls.cert_pem);
  same_tls = same_tls && (!a->cert_file || !cfg->tls.cert_file ||
                          (strcmp(a->cert_file, cfg->tls.cert_file) == 0 &&
                           strcmp(a->cert_pem, cfg->tls.cert_pem) == 0));
  if (strcmp(a->listen, listen) != 0 || !same_tls) {
    log_warn("api",
             "api.listen or api.tls changed: the API keeps serving on %s://%s "
             "until iocd restarts",
             a->cert_pem ? "https" : "http", a->listen);
  }
  log_info("api", "%zu tokens, anonymous requests: %s", cfg->ntokens,
           config_api_role_name(cfg->anonymous));
  return IOCD_OK;
}

static void on_handle_closed(uv_handle_t *h) {
  struct api *a = h->data;
  if (--a->open_handles == 0) {
    MHD_stop_daemon(a->mhd); /* ends the connections it was passed */
    api__gate_cleanup(&a->gate);
    api_closed_fn *cb = a->closed_cb;
    void *ud = a->closed_ud;
    api_free(a);
    if (cb) {
      cb(ud);
    }
  }
}

void api_set_handler(struct api *a, api_handle_fn *fn, void *ud) {
  a->handle = fn;
  a->handle_ud = ud;
}

void api_close(struct api *a, api_closed_fn *cb, void *ud) {
  a->closed_cb = cb;
  a->closed_ud = ud;
  a->poll.data = a;
  a->timer.data = a;
  uv_poll_stop(&a->poll);
  uv_timer_stop(&a->timer);
  uv_close((uv_handle_t *)&a->poll, on_handle_closed);
  uv_close((uv_handle_t *)&a->timer, on_handle_closed);
  a->gate.poll.data = a;
  a->gate.timer.data = a;
  api__gate_close(&a->gate, on_handle_closed);
}
