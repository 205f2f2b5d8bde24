/*
 * The MQTT client: libmosquitto 2.0 driven by the libuv loop, with no thread
 * of libmosquitto's own (see docs/mqtt.md and integration.md section 1).
 *
 * One uv_poll_t watches the socket of the current connection (re-created
 * after every connect, since a new socket may reuse the old fd number), a 1 s
 * timer runs libmosquitto's keepalive and our idle check, and a second timer
 * paces reconnects. libmosquitto's connect resolves the name and connects
 * TCP synchronously, so it runs on libuv's thread pool; while it runs, the
 * worker owns the mosquitto object and the loop touches it nowhere.
 *
 * libmosquitto calls back (on_connect, on_message, on_disconnect, ...) from
 * inside mosquitto_loop_read/write/misc. Anything those callbacks or the
 * user's on_message ask for that needs libmosquitto or could free state
 * (close, reconfigure, a new connect) is deferred to kick(), which runs once
 * the outermost libmosquitto call has returned.
 */
#include "ingest/mqtt.h"

#include <errno.h>
#include <limits.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/container.h"
#include "core/log.h"
#include "core/mem.h"

#define MOD "mqtt"
#define TICK_MS 1000
/* Connect failures repeat with every retry: at most this many lines per
 * window, the rest counted and reported with the next line. */
#define FAIL_LOG_BURST 5
#define FAIL_LOG_WINDOW_MS 60000
/* Used when TLS is on and neither ca_file nor ca_path is configured:
 * libmosquitto needs one of them, and this is Debian's system store. */
#define SYSTEM_CA_PATH "/etc/ssl/certs"

enum conn_state {
  CS_IDLE,       /* no socket, nothing scheduled (not started, or paused) */
  CS_CONNECTING, /* the worker owns the mosquitto object */
  CS_HANDSHAKE,  /* socket open (TLS handshake, CONNECT), no CONNACK yet */
  CS_CONNECTED,  /* CONNACK accepted */
  CS_BACKOFF,    /* the retry timer will connect again */
};

struct sub {
  char *filter;
  int qos;
  int mid;    /* of the SUBSCRIBE in flight; 0 when none */
  bool acked; /* granted by the broker in the current session */
};

/* The poll handle of one connection. It is heap-allocated because it is
 * replaced on every connect while the previous one may still be closing. */
struct conn_poll {
  uv_poll_t handle;
  struct mqtt *m;
};

/* A published message whose fate its sender waits for. mid is written by
 * libmosquitto before it sends the message, so handle_publish finds the
 * wait even when the message goes out within mosquitto_publish_v5. */
struct pub_wait {
  struct pub_wait *next;
  int mid;
  bool finished;
  int rc;
  mqtt_published_fn *done;
  void *ud;
};

struct mqtt {
  uv_loop_t *loop;
  const struct config_mqtt *cfg;
  mqtt_message_fn *on_message;
  void *ud;
  struct mosquitto *mosq;
  struct mosquitto *next_mosq; /* built by mqtt_reconfigure, swapped in by
                                  kick() */

  uv_timer_t tick;
  uv_timer_t retry;
  uv_timer_t published; /* calls the done callbacks of finished waits */
  struct pub_wait *waits;
  uv_work_t work;
  struct conn_poll *poll;
  int poll_events;
  int open_handles; /* handles whose close callback has not run yet */

  enum conn_state state;
  bool started;
  bool paused;
  bool closing;
  bool close_started;
  bool finished;
  bool reconf_pending;
  bool dropping;     /* our own disconnect: on_disconnect must not retry */
  bool work_busy;    /* a connect runs on the thread pool */
  bool fail_counted; /* the current attempt's failure is already counted */
  int dispatch;      /* depth of libmosquitto calls that may call back */

  /* The endpoint of the current attempt, copied so that the worker and the
   * logs never read a configuration a reload has freed. */
  char *host;
  int port;
  int keepalive;
  mosquitto_property *props;
  int work_rc;
  int work_errno;
  char lib_err[256]; /* errors libmosquitto logged in this attempt */
  char refused[128]; /* the reason of a refused CONNACK */

  unsigned attempt; /* failed attempts since the last CONNACK */
  uint64_t rng;
  uint64_t idle_since_ms;

  struct sub *subs;
  size_t nsubs;
  char **unsubs; /* removed while disconnected: sent on the next connect */
  size_t nunsubs;

  struct log_limit fail_limit;

  mqtt_closed_fn *closed_cb;
  void *closed_ud;

  struct metric *st_connected;
  struct metric *st_connects;
  struct metric *st_disconnects;
  struct metric *st_failures;
  struct metric *st_messages;
  struct metric *st_idle;
  struct metric *st_sub_failures;
  struct metric dummy[7]; /* series when no registry is given */
};

static void kick(struct mqtt *m);
static void on_poll(uv_poll_t *h, int status, int events);
static void schedule_retry(struct mqtt *m);

static bool str_eq(const char *a, const char *b) {
  if (!a || !b) {
    return a == b;
  }
  return strcmp(a, b) == 0;
}

/* xorshift64*: the jitter only needs to spread clients apart. */
static uint64_t next_rand(struct mqtt *m) {
  uint64_t x = m->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  m->rng = x;
  return x * UINT64_C(2685821657736338717);
}

static bool is_v5(const struct mqtt *m) {
  return m->cfg->protocol != MQTT_PROTO_V311;
}

/* ---- libmosquitto object ---- */

static void handle_connack(struct mosquitto *mosq, void *ud, int rc, int flags,
                           const mosquitto_property *props);
static void handle_disconnect(struct mosquitto *mosq, void *ud, int rc,
                              const mosquitto_property *props);
static void handle_message(struct mosquitto *mosq, void *ud,
                           const struct mosquitto_message *msg,
                           const mosquitto_property *props);
static void handle_suback(struct mosquitto *mosq, void *ud, int mid, int n,
                          const int *granted, const mosquitto_property *props);
static void handle_log(struct mosquitto *mosq, void *ud, int level,
                       const char *str);
static void handle_publish(struct mosquitto *mosq, void *ud, int mid,
                           int reason, const mosquitto_property *props);

/* Builds a mosquitto object for cfg with every option and callback set.
 * Returns IOCD_OK and *out, or an error with err set. */
static int mosq_create(struct mqtt *m, const struct config_mqtt *cfg,
                       struct mosquitto **out, struct iocd_err *err) {
  *out = NULL;
  const char *id = cfg->client_id;
  char fallback[96];
  if (!id || !*id) {
    char host[64] = "host";
    if (gethostname(host, sizeof host) != 0) {
      memcpy(host, "host", 5);
    }
    host[sizeof host - 1] = '\0';
    snprintf(fallback, sizeof fallback, "iocd-%s", host);
    id = fallback;
  }
  struct mosquitto *mosq = mosquitto_new(id, cfg->clean_start, m);
  if (!mosq) {
    return iocd_err_set(err, errno == ENOMEM ? IOCD_ENOMEM : IOCD_EINVAL,
                        "mqtt: cannot create the client \"%s\": %s", id,
                        strerror(errno));
  }
  int rc = mosquitto_int_option(
      mosq, MOSQ_OPT_PROTOCOL_VERSION,
      cfg->protocol == MQTT_PROTO_V311 ? MQTT_PROTOCOL_V311 : MQTT_PROTOCOL_V5);
  const char *what = "protocol version";
  /* libmosquitto 2.0.11 counts its MQTT 5 receive quota down for every
   * QoS 2 PUBLISH and, under a burst, fails the connection with a protocol
   * error once the default quota (20) is spent. The largest quota the
   * protocol allows keeps QoS 2 subscriptions working; the broker's own
   * max_inflight_messages still bounds what it sends. */
  if (!rc && cfg->protocol != MQTT_PROTO_V311) {
    what = "receive maximum";
    rc = mosquitto_int_option(mosq, MOSQ_OPT_RECEIVE_MAXIMUM, 65535);
  }
  if (!rc && (cfg->username || cfg->password)) {
    what = "username/password";
    rc = mosquitto_username_pw_set(mosq, cfg->username, cfg->password);
  }
  if (!rc && cfg->tls.enabled) {
    const struct config_tls *t = &cfg->tls;
    const char *ca_path = t->ca_path;
    if (!t->ca_file && !t->ca_path) {
      ca_path = SYSTEM_CA_PATH;
    }
    what = "TLS files (ca_file/ca_path, cert_file with key_file)";
    rc = mosquitto_tls_set(mosq, t->ca_file, ca_path, t->cert_file, t->key_file,
                           NULL);
    if (!rc) {
      what = "TLS host name verification";
      rc = mosquitto_tls_insecure_set(mosq, !t->verify_hostname);
    }
  }
  if (rc) {
    mosquitto_destroy(mosq);
    return iocd_err_set(err, rc == MOSQ_ERR_NOMEM ? IOCD_ENOMEM : IOCD_EINVAL,
                        "mqtt: %s: %s", what, mosquitto_strerror(rc));
  }
  mosquitto_connect_v5_callback_set(mosq, handle_connack);
  mosquitto_disconnect_v5_callback_set(mosq, handle_disconnect);
  mosquitto_message_v5_callback_set(mosq, handle_message);
  mosquitto_subscribe_v5_callback_set(mosq, handle_suback);
  mosquitto_publish_v5_callback_set(mosq, handle_publish);
  mosquitto_log_callback_set(mosq, handle_log);
  *out = mosq;
  return IOCD_OK;
}

/* ---- the poll handle ---- */

static void poll_closed(uv_handle_t *h) {
  struct conn_poll *c = container_of((uv_poll_t *)h, struct conn_poll, handle);
  struct mqtt *m = c->m;
  free(c);
  m->open_handles--;
  kick(m);
}

static void poll_detach(struct mqtt *m) {
  if (!m->poll) {
    return;
  }
  uv_close((uv_handle_t *)&m->poll->handle, poll_closed);
  m->poll = NULL;
  m->poll_events = 0;
}

static int poll_attach(struct mqtt *m) {
  int fd = mosquitto_socket(m->mosq);
  if (fd < 0) {
    return IOCD_ECONN;
  }
  struct conn_poll *c = malloc(sizeof *c);
  if (!c) {
    return IOCD_ENOMEM;
  }
  c->m = m;
  int rc = uv_poll_init_socket(m->loop, &c->handle, fd);
  if (rc) {
    free(c);
    log_error(MOD, "cannot watch the socket: %s", uv_strerror(rc));
    return IOCD_EIO;
  }
  m->poll = c;
  m->poll_events = 0;
  m->open_handles++;
  return IOCD_OK;
}

/* ---- connection state ---- */

static const char *endpoint(const struct mqtt *m, char *out, size_t n) {
  snprintf(out, n, "%s:%d", m->host ? m->host : m->cfg->host,
           m->host ? m->port : m->cfg->port);
  return out;
}

static void log_failure(struct mqtt *m, const char *what, const char *reason,
                        uint64_t retry_ms) {
  uint32_t suppressed = 0;
  if (!log_limit_allow(&m->fail_limit, (int64_t)uv_now(m->loop), FAIL_LOG_BURST,
                       FAIL_LOG_WINDOW_MS, &suppressed)) {
    return;
  }
  char ep[300];
  endpoint(m, ep, sizeof ep);
  char retry[64] = "";
  if (retry_ms > 0) {
    snprintf(retry, sizeof retry, "; retrying in %llu ms",
             (unsigned long long)retry_ms);
  }
  char more[64] = "";
  if (suppressed) {
    snprintf(more, sizeof more, " (%u similar lines suppressed)", suppressed);
  }
  log_warn(MOD, "%s %s: %s%s%s", what, ep, reason, retry, more);
}

static uint64_t backoff_ms(struct mqtt *m) {
  uint64_t lo =
      m->cfg->reconnect_min_ms > 0 ? (uint64_t)m->cfg->reconnect_min_ms : 1;
  uint64_t hi =
      m->cfg->reconnect_max_ms > 0 ? (uint64_t)m->cfg->reconnect_max_ms : lo;
  if (hi < lo) {
    hi = lo;
  }
  uint64_t ceiling = lo;
  for (unsigned i = 0; i < m->attempt && ceiling < hi; i++) {
    ceiling *= 2;
  }
  if (ceiling > hi) {
    ceiling = hi;
  }
  if (m->attempt < UINT_MAX) {
    m->attempt++;
  }
  return lo + next_rand(m) % (ceiling - lo + 1);
}

static void on_retry(uv_timer_t *t);

/* Waits before the next attempt. Never connects directly: this may run
 * inside a libmosquitto callback, and the connect hands the object to a
 * worker thread. While paused, nothing is scheduled: mqtt_resume connects. */
static void schedule_retry(struct mqtt *m) {
  if (m->closing || !m->started) {
    m->state = CS_IDLE;
    return;
  }
  if (m->paused) {
    m->state = CS_IDLE;
    return;
  }
  m->state = CS_BACKOFF;
  uv_timer_start(&m->retry, on_retry, backoff_ms(m), 0);
}

/* Formats why an attempt failed, preferring what libmosquitto logged (the
 * OpenSSL error of a TLS failure, for example). */
static void failure_reason(const struct mqtt *m, int rc, int eno, char *out,
                           size_t n) {
  if (m->refused[0]) {
    /* What follows a refusal (a protocol error for MQTT 5 reason codes)
     * says nothing more. */
    snprintf(out, n, "refused by the broker: %s", m->refused);
    return;
  }
  if (rc == MOSQ_ERR_ERRNO) {
    snprintf(out, n, "%s", strerror(eno));
  } else if (rc == MOSQ_ERR_KEEPALIVE) {
    /* libmosquitto 2.0 has no text for it ("Unknown error."). */
    snprintf(out, n, "%s",
             m->paused ? "no answer to the keepalive ping: intake is paused "
                         "and the answer waits behind unread messages; iocd "
                         "reconnects when intake resumes"
                       : "the broker did not answer the keepalive ping in "
                         "time");
  } else if (rc == MOSQ_ERR_EAI) {
    snprintf(out, n, "cannot resolve the host name: %s", gai_strerror(eno));
  } else {
    snprintf(out, n, "%s", mosquitto_strerror(rc));
  }
  if (m->lib_err[0]) {
    size_t len = strlen(out);
    snprintf(out + len, n - len, " (%s)", m->lib_err);
  }
  /* OpenSSL's words for a broker with require_certificate: say what to
   * configure. */
  const struct config_tls *t = &m->cfg->tls;
  if (t->enabled && !t->cert_file &&
      strstr(m->lib_err, "certificate required")) {
    size_t len = strlen(out);
    snprintf(out + len, n - len,
             ": the broker requires a client certificate; set "
             "mqtt.tls.cert_file and mqtt.tls.key_file");
  }
}

static void connect_failed(struct mqtt *m, const char *reason) {
  if (!m->fail_counted) {
    stat_inc(m->st_failures);
    m->fail_counted = true;
  }
  schedule_retry(m);
  uint64_t delay = m->state == CS_BACKOFF ? uv_timer_get_due_in(&m->retry) : 0;
  log_failure(m, "cannot connect to", reason, delay);
}

/* The connection is gone: libmosquitto has closed the socket (and called
 * on_disconnect, unless a TLS handshake failed, which closes silently). */
/* ---- publish acknowledgements ---- */

static void on_published(uv_timer_t *t) {
  struct mqtt *m = t->data;
  struct pub_wait **pp = &m->waits;
  while (*pp) {
    struct pub_wait *w = *pp;
    if (!w->finished) {
      pp = &w->next;
      continue;
    }
    *pp = w->next;
    if (w->done) {
      w->done(w->ud, w->rc);
    }
    free(w);
  }
}

static void wait_finish(struct mqtt *m, struct pub_wait *w, int rc) {
  w->finished = true;
  w->rc = rc;
  if (!uv_is_closing((uv_handle_t *)&m->published)) {
    uv_timer_start(&m->published, on_published, 0, 0);
  }
}

/* The connection is gone: no acknowledgement will come for what waits. */
static void waits_fail(struct mqtt *m) {
  for (struct pub_wait *w = m->waits; w; w = w->next) {
    if (!w->finished) {
      wait_finish(m, w, IOCD_ECONN);
    }
  }
}

static void handle_publish(struct mosquitto *mosq, void *ud, int mid,
                           int reason, const mosquitto_property *props) {
  (void)mosq;
  (void)props;
  struct mqtt *m = ud;
  for (struct pub_wait *w = m->waits; w; w = w->next) {
    if (!w->finished && w->mid == mid) {
      wait_finish(m, w, reason < 0x80 ? IOCD_OK : IOCD_EIO);
      return;
    }
  }
}

static void conn_lost(struct mqtt *m, int rc) {
  enum conn_state prev = m->state;
  if (prev != CS_HANDSHAKE && prev != CS_CONNECTED) {
    return; /* libmosquitto reports a lost connection more than once */
  }
  poll_detach(m);
  m->state = CS_IDLE;
  waits_fail(m);
  char reason[512];
  if (rc == MOSQ_ERR_SUCCESS) {
    snprintf(reason, sizeof reason, "closed by iocd");
  } else {
    failure_reason(m, rc, errno, reason, sizeof reason);
  }
  if (prev == CS_CONNECTED) {
    char ep[300];
    stat_set(m->st_connected, 0.0);
    stat_inc(m->st_disconnects);
    endpoint(m, ep, sizeof ep);
    if (rc == MOSQ_ERR_SUCCESS) {
      log_info(MOD, "disconnected from %s: %s", ep, reason);
    } else {
      log_warn(MOD, "disconnected from %s: %s", ep, reason);
    }
    for (size_t i = 0; i < m->nsubs; i++) {
      m->subs[i].mid = 0;
    }
    m->attempt = 0;
    if (!m->dropping) {
      schedule_retry(m);
    }
    return;
  }
  if (m->dropping) {
    return;
  }
  connect_failed(m, reason);
}

/* Matches the poll to what libmosquitto wants; notices a socket that
 * libmosquitto closed without a callback. Call after every libmosquitto
 * call made outside a callback. */
static void sync_poll(struct mqtt *m) {
  if (!m->poll) {
    return;
  }
  if (mosquitto_socket(m->mosq) < 0) {
    /* Only a failed TLS handshake closes the socket silently. */
    conn_lost(m, m->state == CS_HANDSHAKE && m->cfg->tls.enabled
                     ? MOSQ_ERR_TLS
                     : MOSQ_ERR_CONN_LOST);
    return;
  }
  int ev = 0;
  /* The CONNACK must be read even when paused, or the connection times
   * out in the handshake. */
  if (!m->paused || m->state == CS_HANDSHAKE) {
    ev |= UV_READABLE;
  }
  if (mosquitto_want_write(m->mosq)) {
    ev |= UV_WRITABLE;
  }
  if (ev == m->poll_events) {
    return;
  }
  m->poll_events = ev;
  if (ev) {
    uv_poll_start(&m->poll->handle, ev, on_poll);
  } else {
    uv_poll_stop(&m->poll->handle);
  }
}

/* ---- connecting on the thread pool ---- */

static void connect_work(uv_work_t *w) {
  struct mqtt *m = container_of(w, struct mqtt, work);
  errno = 0;
  m->work_rc = mosquitto_connect_bind_v5(m->mosq, m->host, m->port,
                                         m->keepalive, NULL, m->props);
  m->work_errno = errno;
}

static void connect_done(uv_work_t *w, int status) {
  struct mqtt *m = container_of(w, struct mqtt, work);
  m->work_busy = false;
  mosquitto_property_free_all(&m->props);
  if (m->closing || m->reconf_pending) {
    /* kick() disconnects the socket, if one was opened, and goes on. */
    m->state = CS_IDLE;
    kick(m);
    return;
  }
  if (status != 0 || m->work_rc != MOSQ_ERR_SUCCESS) {
    char reason[512];
    if (status != 0) {
      snprintf(reason, sizeof reason, "%s", uv_strerror(status));
    } else {
      failure_reason(m, m->work_rc, m->work_errno, reason, sizeof reason);
    }
    m->state = CS_IDLE;
    connect_failed(m, reason);
    return;
  }
  int rc = poll_attach(m);
  if (rc) {
    m->state = CS_IDLE;
    m->dropping = true;
    m->dispatch++;
    mosquitto_disconnect(m->mosq);
    m->dispatch--;
    m->dropping = false;
    connect_failed(m, iocd_strerror(rc));
    return;
  }
  m->state = CS_HANDSHAKE;
  kick(m);
}

static void start_connect(struct mqtt *m) {
  const struct config_mqtt *cfg = m->cfg;
  char *host = mem_strdup(cfg->host);
  mosquitto_property *props = NULL;
  int rc = host ? MOSQ_ERR_SUCCESS : MOSQ_ERR_NOMEM;
  /* Without a session expiry a v5 broker drops the session at disconnect,
   * whatever clean start says. */
  if (!rc && is_v5(m) && !cfg->clean_start) {
    rc = mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                      cfg->session_expiry_s);
  }
  if (rc) {
    free(host);
    mosquitto_property_free_all(&props);
    m->state = CS_IDLE;
    connect_failed(m, mosquitto_strerror(rc));
    return;
  }
  free(m->host);
  m->host = host;
  m->port = cfg->port;
  m->keepalive = cfg->keepalive_s;
  m->props = props;
  m->lib_err[0] = '\0';
  m->refused[0] = '\0';
  m->fail_counted = false;
  m->state = CS_CONNECTING;
  mosquitto_log_callback_set(m->mosq, handle_log);
  m->work_busy = true;
  log_debug(MOD, "connecting to %s:%d", m->host, m->port);
  int urc = uv_queue_work(m->loop, &m->work, connect_work, connect_done);
  if (urc) {
    m->work_busy = false;
    mosquitto_property_free_all(&m->props);
    m->state = CS_IDLE;
    connect_failed(m, uv_strerror(urc));
  }
}

static void on_retry(uv_timer_t *t) {
  struct mqtt *m = container_of(t, struct mqtt, retry);
  if (m->paused && m->state == CS_BACKOFF) {
    m->state = CS_IDLE; /* mqtt_resume connects */
    return;
  }
  if (m->closing || m->paused || !m->started || m->work_busy ||
      m->reconf_pending || (m->state != CS_BACKOFF && m->state != CS_IDLE)) {
    kick(m);
    return;
  }
  start_connect(m);
}

/* ---- subscriptions ---- */

static void subscribe_one(struct mqtt *m, struct sub *s) {
  /* Retain handling 1 (v5): retained messages only for a subscription that
   * is new to the broker, so a re-subscribe on a present session does not
   * replay them. libmosquitto drops the option for 3.1.1. */
  int mid = 0;
  int rc = mosquitto_subscribe_v5(m->mosq, &mid, s->filter, s->qos,
                                  MQTT_SUB_OPT_SEND_RETAIN_NEW, NULL);
  if (rc) {
    stat_inc(m->st_sub_failures);
    log_warn(MOD, "cannot subscribe to %s: %s", s->filter,
             mosquitto_strerror(rc));
    return;
  }
  s->mid = mid;
}

static void unsubscribe_one(struct mqtt *m, const char *filter) {
  int rc = mosquitto_unsubscribe(m->mosq, NULL, filter);
  if (rc) {
    log_warn(MOD, "cannot unsubscribe from %s: %s", filter,
             mosquitto_strerror(rc));
  } else {
    log_info(MOD, "unsubscribing from %s", filter);
  }
}

static void send_subscriptions(struct mqtt *m, bool session_present) {
  for (size_t i = 0; i < m->nunsubs; i++) {
    unsubscribe_one(m, m->unsubs[i]);
    free(m->unsubs[i]);
  }
  m->nunsubs = 0;
  for (size_t i = 0; i < m->nsubs; i++) {
    struct sub *s = &m->subs[i];
    if (!session_present) {
      s->acked = false;
    }
    /* MQTT 3.1.1 has no retain handling: a subscription the present session
     * already holds is not sent again, so retained messages are not
     * replayed on every reconnect. */
    if (!is_v5(m) && session_present && s->acked) {
      continue;
    }
    subscribe_one(m, s);
  }
}

static void handle_suback(struct mosquitto *mosq, void *ud, int mid, int n,
                          const int *granted, const mosquitto_property *props) {
  (void)mosq;
  (void)props;
  struct mqtt *m = ud;
  for (size_t i = 0; i < m->nsubs; i++) {
    struct sub *s = &m->subs[i];
    if (s->mid != mid) {
      continue;
    }
    s->mid = 0;
    int code = n > 0 ? granted[0] : 0x80;
    if (code >= 0x80) {
      s->acked = false;
      stat_inc(m->st_sub_failures);
      log_warn(MOD, "subscription to %s refused by the broker: %s", s->filter,
               is_v5(m) ? mosquitto_reason_string(code) : "failure (0x80)");
    } else {
      s->acked = true;
      log_info(MOD, "subscribed to %s (granted QoS %d)", s->filter, code);
    }
    return;
  }
}

/* ---- libmosquitto callbacks ---- */

static void handle_connack(struct mosquitto *mosq, void *ud, int rc, int flags,
                           const mosquitto_property *props) {
  (void)mosq;
  (void)props;
  struct mqtt *m = ud;
  char ep[300];
  endpoint(m, ep, sizeof ep);
  if (rc != 0) {
    /* on_disconnect follows and schedules the retry. */
    const char *why =
        is_v5(m) ? mosquitto_reason_string(rc) : mosquitto_connack_string(rc);
    snprintf(m->refused, sizeof m->refused, "%s", why);
    stat_inc(m->st_failures);
    m->fail_counted = true;
    return;
  }
  bool session_present = flags & 1;
  /* libmosquitto formats a log line for every packet; once connected only
   * debug logging wants them (start_connect sets the callback again). */
  if (!log_enabled(LOG_DEBUG)) {
    mosquitto_log_callback_set(mosq, NULL);
  }
  m->state = CS_CONNECTED;
  m->attempt = 0;
  m->lib_err[0] = '\0';
  m->idle_since_ms = uv_now(m->loop);
  stat_set(m->st_connected, 1.0);
  stat_inc(m->st_connects);
  log_info(MOD, "connected to %s as %s (MQTT %s, %s)", ep,
           m->cfg->client_id ? m->cfg->client_id : "(generated id)",
           is_v5(m) ? "5" : "3.1.1",
           session_present ? "session present" : "new session");
  send_subscriptions(m, session_present);
}

static void handle_disconnect(struct mosquitto *mosq, void *ud, int rc,
                              const mosquitto_property *props) {
  (void)mosq;
  (void)props;
  conn_lost(ud, rc);
}

static void handle_message(struct mosquitto *mosq, void *ud,
                           const struct mosquitto_message *msg,
                           const mosquitto_property *props) {
  (void)mosq;
  struct mqtt *m = ud;
  stat_inc(m->st_messages);
  m->idle_since_ms = uv_now(m->loop);
  if (m->closing) {
    return;
  }
  char *ct = NULL;
  mosquitto_property_read_string(props, MQTT_PROP_CONTENT_TYPE, &ct, false);
  /* libmosquitto copies each pair it reads; most messages carry none, and
   * then nothing is allocated. */
  struct ingest_user_prop up[MQTT_MAX_USER_PROPS];
  char *owned[2 * MQTT_MAX_USER_PROPS];
  size_t nup = 0;
  const mosquitto_property *p = props;
  bool skip = false;
  while (nup < MQTT_MAX_USER_PROPS) {
    char *name = NULL, *value = NULL;
    p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name,
                                            &value, skip);
    if (!p) {
      break;
    }
    skip = true;
    owned[2 * nup] = name;
    owned[2 * nup + 1] = value;
    up[nup].name = name;
    up[nup].value = value;
    nup++;
  }
  struct mqtt_msg mm = {
      .topic = msg->topic,
      .payload = msg->payload ? msg->payload : "",
      .len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0,
      .content_type = ct,
      .user_props = up,
      .nuser_props = nup,
      .qos = msg->qos,
      .retain = msg->retain,
  };
  m->on_message(m->ud, &mm);
  free(ct);
  for (size_t i = 0; i < 2 * nup; i++) {
    free(owned[i]);
  }
}

/* Runs on the worker thread during a connect, and on the loop otherwise.
 * Only the object in use may write lib_err: a replacement built by
 * mqtt_reconfigure logs from the loop while the worker may be running. */
static void handle_log(struct mosquitto *mosq, void *ud, int level,
                       const char *str) {
  struct mqtt *m = ud;
  if (mosq != m->mosq) {
    return;
  }
  if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)) {
    /* Kept in order: a TLS failure logs the host name check, then the
     * OpenSSL error. */
    size_t len = strlen(m->lib_err);
    if (len + 3 < sizeof m->lib_err) {
      snprintf(m->lib_err + len, sizeof m->lib_err - len, "%s%s",
               len ? "; " : "", str);
    }
  }
  if (!m->work_busy) {
    log_debug(MOD, "libmosquitto: %s", str);
  }
}

/* ---- loop callbacks ---- */

/* loop_read handles one packet per call and returns MOSQ_ERR_SUCCESS with
 * errno EAGAIN once the socket is drained. Reading on until then (bounded,
 * so one busy connection cannot hold the loop) costs one readiness event per
 * burst of messages instead of one per message. Stops early when the
 * connection goes, the poll handle is replaced, or intake is paused. */
#define READ_BURST_MAX 64

static void read_burst(struct mqtt *m, struct conn_poll *c) {
  for (int i = 0; i < READ_BURST_MAX; i++) {
    errno = 0;
    int rc = mosquitto_loop_read(m->mosq, 1);
    if (rc != MOSQ_ERR_SUCCESS || errno == EAGAIN || errno == EWOULDBLOCK ||
        m->poll != c || m->paused || mosquitto_socket(m->mosq) < 0) {
      return;
    }
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  struct conn_poll *c = container_of(h, struct conn_poll, handle);
  struct mqtt *m = c->m;
  if (m->poll != c) {
    return;
  }
  m->dispatch++;
  /* A TLS handshake that wants to write makes progress only in
   * loop_read (loop_write waits for it), so read on writability too until
   * the CONNACK. On a poll error, the read reports it. */
  if (status < 0 || (events & UV_READABLE) ||
      (m->state == CS_HANDSHAKE && (events & UV_WRITABLE))) {
    read_burst(m, c);
  }
  /* A second on_disconnect fires if loop_write runs on a closed socket. */
  if ((events & UV_WRITABLE) && m->poll == c &&
      mosquitto_socket(m->mosq) >= 0) {
    mosquitto_loop_write(m->mosq, 1);
  }
  m->dispatch--;
  kick(m);
}

static void check_idle(struct mqtt *m) {
  int idle_s = m->cfg->idle_timeout_s;
  /* While paused the silence is ours, not the feed's. */
  if (idle_s <= 0 || m->state != CS_CONNECTED || m->nsubs == 0 || m->paused) {
    return;
  }
  uint64_t now = uv_now(m->loop);
  if (now - m->idle_since_ms < (uint64_t)idle_s * 1000) {
    return;
  }
  /* One warning per full idle period, so the counter keeps rising while
   * the feed stays silent. */
  m->idle_since_ms = now;
  stat_inc(m->st_idle);
  char ep[300];
  log_warn(MOD, "connected to %s but no message for %d s",
           endpoint(m, ep, sizeof ep), idle_s);
}

static void on_tick(uv_timer_t *t) {
  struct mqtt *m = container_of(t, struct mqtt, tick);
  if (m->poll && !m->work_busy && mosquitto_socket(m->mosq) >= 0) {
    m->dispatch++;
    mosquitto_loop_misc(m->mosq);
    m->dispatch--;
  }
  check_idle(m);
  kick(m);
}

/* ---- deferred work: close and reconfigure ---- */

/* Ends the current connection on our own initiative (close, new
 * settings): DISCONNECT if a socket is open, no retry. */
static void drop_connection(struct mqtt *m) {
  uv_timer_stop(&m->retry);
  m->dropping = true;
  if (mosquitto_socket(m->mosq) >= 0) {
    m->dispatch++;
    mosquitto_disconnect(m->mosq);
    m->dispatch--;
  }
  /* A connect that the worker just finished has no poll yet, and a
   * DISCONNECT that could not be written leaves the socket to
   * mosquitto_destroy. */
  if (m->state == CS_HANDSHAKE || m->state == CS_CONNECTED) {
    conn_lost(m, MOSQ_ERR_SUCCESS);
  }
  poll_detach(m);
  m->dropping = false;
  m->state = CS_IDLE;
}

static void maybe_finish(struct mqtt *m) {
  if (!m->close_started || m->finished || m->open_handles > 0 || m->work_busy) {
    return;
  }
  m->finished = true;
  while (m->waits) {
    struct pub_wait *w = m->waits;
    m->waits = w->next;
    if (w->done) {
      w->done(w->ud, w->finished ? w->rc : IOCD_ECONN);
    }
    free(w);
  }
  mosquitto_destroy(m->mosq);
  if (m->next_mosq) {
    mosquitto_destroy(m->next_mosq);
  }
  mosquitto_property_free_all(&m->props);
  mosquitto_lib_cleanup();
  for (size_t i = 0; i < m->nsubs; i++) {
    free(m->subs[i].filter);
  }
  free(m->subs);
  for (size_t i = 0; i < m->nunsubs; i++) {
    free(m->unsubs[i]);
  }
  free(m->unsubs);
  free(m->host);
  if (m->closed_cb) {
    m->closed_cb(m->closed_ud);
  }
  free(m);
}

static void timer_closed(uv_handle_t *h) {
  struct mqtt *m = h->data;
  m->open_handles--;
  maybe_finish(m);
}

static void close_step(struct mqtt *m) {
  if (m->close_started) {
    maybe_finish(m);
    return;
  }
  if (m->work_busy) {
    return; /* connect_done calls kick() again */
  }
  m->close_started = true;
  drop_connection(m);
  uv_close((uv_handle_t *)&m->tick, timer_closed);
  uv_close((uv_handle_t *)&m->retry, timer_closed);
  uv_close((uv_handle_t *)&m->published, timer_closed);
}

static void apply_new_settings(struct mqtt *m) {
  m->reconf_pending = false;
  drop_connection(m);
  if (m->next_mosq) {
    mosquitto_destroy(m->mosq);
    m->mosq = m->next_mosq;
    m->next_mosq = NULL;
  }
  /* A new client id, broker or clean start may mean another session. */
  for (size_t i = 0; i < m->nsubs; i++) {
    m->subs[i].acked = false;
    m->subs[i].mid = 0;
  }
  m->attempt = 0;
  if (m->started && !m->paused) {
    m->state = CS_BACKOFF;
    uv_timer_start(&m->retry, on_retry, 0, 0);
  }
}

/* Carries out what was deferred, then re-syncs the poll. Does nothing while
 * a libmosquitto call is still on the stack. */
static void kick(struct mqtt *m) {
  if (m->dispatch > 0 || m->finished) {
    return;
  }
  if (m->closing) {
    close_step(m);
    return;
  }
  if (m->reconf_pending && !m->work_busy) {
    apply_new_settings(m);
    return;
  }
  sync_poll(m);
}

/* ---- public interface ---- */

static int check_config(const struct config_mqtt *cfg, struct iocd_err *err) {
  if (!cfg->host || !*cfg->host) {
    return iocd_err_set(err, IOCD_EINVAL, "mqtt.host: empty");
  }
  if (cfg->port < 1 || cfg->port > 65535) {
    return iocd_err_set(err, IOCD_EINVAL, "mqtt.port: %d is not a TCP port",
                        cfg->port);
  }
  if (cfg->keepalive_s < 5 || cfg->keepalive_s > 65535) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "mqtt.keepalive_s: %d is outside 5..65535",
                        cfg->keepalive_s);
  }
  return IOCD_OK;
}

static struct metric *series(struct stats *st, struct metric *dummy, bool gauge,
                             const char *name, const char *help) {
  if (!st) {
    return dummy;
  }
  return gauge ? stats_gauge(st, name, help, NULL)
               : stats_counter(st, name, help, NULL);
}

struct mqtt *mqtt_new(uv_loop_t *loop, const struct config_mqtt *cfg,
                      struct stats *stats, mqtt_message_fn *on_message,
                      void *ud, struct iocd_err *err) {
  if (!loop || !cfg || !on_message) {
    iocd_err_set(err, IOCD_EINVAL, "mqtt: missing loop, config or callback");
    return NULL;
  }
  if (check_config(cfg, err)) {
    return NULL;
  }
  struct mqtt *m = calloc(1, sizeof *m);
  if (!m) {
    iocd_err_set(err, IOCD_ENOMEM, "mqtt: out of memory");
    return NULL;
  }
  m->loop = loop;
  m->cfg = cfg;
  m->on_message = on_message;
  m->ud = ud;
  m->state = CS_IDLE;
  m->rng = (uint64_t)clock_mono_ns() ^ ((uint64_t)getpid() << 32) ^
           (uint64_t)(uintptr_t)m;
  if (!m->rng) {
    m->rng = 1;
  }
  /* Reference counted by libmosquitto itself; the matching cleanup is in
   * maybe_finish, so a process may hold several clients. */
  mosquitto_lib_init();
  if (mosq_create(m, cfg, &m->mosq, err) != IOCD_OK) {
    mosquitto_lib_cleanup();
    free(m);
    return NULL;
  }
  m->st_connected = series(stats, &m->dummy[0], true, "iocd_mqtt_connected",
                           "1 while connected to the MQTT broker, else 0.");
  m->st_connects =
      series(stats, &m->dummy[1], false, "iocd_mqtt_connects_total",
             "Connections the broker accepted (CONNACK success).");
  m->st_disconnects =
      series(stats, &m->dummy[2], false, "iocd_mqtt_disconnects_total",
             "Established connections that ended.");
  m->st_failures =
      series(stats, &m->dummy[3], false, "iocd_mqtt_connect_failures_total",
             "Connection attempts that failed (network, TLS or refused "
             "CONNACK).");
  m->st_messages =
      series(stats, &m->dummy[4], false, "iocd_mqtt_messages_total",
             "Messages received from the broker.");
  m->st_idle = series(stats, &m->dummy[5], false, "iocd_mqtt_idle_total",
                      "Periods of idle_timeout_s while connected and "
                      "subscribed without any message.");
  m->st_sub_failures =
      series(stats, &m->dummy[6], false, "iocd_mqtt_subscribe_failures_total",
             "Subscriptions that could not be sent or that the broker "
             "refused.");
  stat_set(m->st_connected, 0.0);
  uv_timer_init(loop, &m->tick);
  uv_timer_init(loop, &m->retry);
  uv_timer_init(loop, &m->published);
  m->tick.data = m;
  m->retry.data = m;
  m->published.data = m;
  m->open_handles = 3;
  return m;
}

static struct sub *find_sub(struct sub *subs, size_t n, const char *filter) {
  for (size_t i = 0; i < n; i++) {
    if (strcmp(subs[i].filter, filter) == 0) {
      return &subs[i];
    }
  }
  return NULL;
}

static void drop_pending_unsub(struct mqtt *m, const char *filter) {
  for (size_t i = 0; i < m->nunsubs; i++) {
    if (strcmp(m->unsubs[i], filter) == 0) {
      free(m->unsubs[i]);
      m->unsubs[i] = m->unsubs[--m->nunsubs];
      return;
    }
  }
}

int mqtt_set_subscriptions(struct mqtt *m, const char *const *filters,
                           const int *qos, size_t n) {
  if (!m || (n > 0 && (!filters || !qos)) || m->closing) {
    return IOCD_EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    if (!filters[i] || qos[i] < 0 || qos[i] > 2 ||
        mosquitto_sub_topic_check(filters[i]) != MOSQ_ERR_SUCCESS) {
      return IOCD_EINVAL;
    }
  }
  int rc = IOCD_OK;
  struct sub *subs = calloc(n ? n : 1, sizeof *subs);
  size_t nsubs = 0;
  char **unsubs = NULL;
  if (!subs) {
    return IOCD_ENOMEM;
  }
  /* Duplicates (two patterns with the same filter) become one
   * subscription at the highest QoS asked for. */
  for (size_t i = 0; i < n; i++) {
    struct sub *dup = find_sub(subs, nsubs, filters[i]);
    if (dup) {
      if (qos[i] > dup->qos) {
        dup->qos = qos[i];
      }
      continue;
    }
    struct sub *s = &subs[nsubs];
    s->filter = mem_strdup(filters[i]);
    if (!s->filter) {
      rc = IOCD_ENOMEM;
      goto out;
    }
    s->qos = qos[i];
    nsubs++;
  }
  /* Room for every removed filter, so nothing below can fail. */
  unsubs = malloc((m->nunsubs + m->nsubs + 1) * sizeof *unsubs);
  if (!unsubs) {
    rc = IOCD_ENOMEM;
    goto out;
  }
  if (m->nunsubs) {
    memcpy(unsubs, m->unsubs, m->nunsubs * sizeof *unsubs);
  }
  free(m->unsubs);
  m->unsubs = unsubs;
  unsubs = NULL;

  /* Connected: (un)subscribe now; inside a callback libmosquitto queues
   * the packets and kick() arms the poll for writing. Otherwise the next
   * connect sends them. */
  bool live = m->state == CS_CONNECTED && mosquitto_socket(m->mosq) >= 0;
  for (size_t i = 0; i < m->nsubs; i++) {
    struct sub *old = &m->subs[i];
    struct sub *now = find_sub(subs, nsubs, old->filter);
    if (now) {
      if (now->qos == old->qos) {
        now->acked = old->acked;
        now->mid = old->mid;
      }
      free(old->filter);
      continue;
    }
    if (live) {
      unsubscribe_one(m, old->filter);
      free(old->filter);
    } else {
      m->unsubs[m->nunsubs++] = old->filter;
    }
  }
  free(m->subs);
  m->subs = subs;
  m->nsubs = nsubs;
  subs = NULL;
  for (size_t i = 0; i < m->nsubs; i++) {
    struct sub *s = &m->subs[i];
    drop_pending_unsub(m, s->filter);
    if (live && !s->acked && s->mid == 0) {
      subscribe_one(m, s);
    }
  }
  kick(m);
out:
  if (subs) {
    for (size_t i = 0; i < nsubs; i++) {
      free(subs[i].filter);
    }
    free(subs);
  }
  return rc;
}

int mqtt_start(struct mqtt *m) {
  if (!m || m->closing) {
    return IOCD_ESTATE;
  }
  if (m->started) {
    return IOCD_OK;
  }
  m->started = true;
  uv_timer_start(&m->tick, on_tick, TICK_MS, TICK_MS);
  if (!m->paused && !m->reconf_pending) {
    start_connect(m);
  } else {
    kick(m);
  }
  return IOCD_OK;
}

int mqtt_publish(struct mqtt *m, const char *topic, const void *payload,
                 size_t len, int qos, bool retain, mqtt_published_fn *done,
                 void *ud) {
  if (!m || !topic || (len > 0 && !payload) || len > INT_MAX || qos < 0 ||
      qos > 2) {
    return IOCD_EINVAL;
  }
  if (m->state != CS_CONNECTED || m->closing || mosquitto_socket(m->mosq) < 0) {
    return IOCD_ECONN;
  }
  struct pub_wait *w = calloc(1, sizeof *w);
  if (!w) {
    return IOCD_ENOMEM;
  }
  w->done = done;
  w->ud = ud;
  w->next = m->waits;
  m->waits = w;
  m->dispatch++;
  int rc = mosquitto_publish_v5(m->mosq, &w->mid, topic, (int)len, payload, qos,
                                retain, NULL);
  m->dispatch--;
  if (rc != MOSQ_ERR_SUCCESS) {
    /* Not sent: the caller is told by the return value alone. */
    for (struct pub_wait **pp = &m->waits; *pp; pp = &(*pp)->next) {
      if (*pp == w) {
        *pp = w->next;
        break;
      }
    }
    free(w);
  }
  kick(m);
  switch (rc) {
    case MOSQ_ERR_SUCCESS:
      return IOCD_OK;
    case MOSQ_ERR_NOMEM:
      return IOCD_ENOMEM;
    case MOSQ_ERR_NO_CONN:
    case MOSQ_ERR_CONN_LOST:
      return IOCD_ECONN;
    case MOSQ_ERR_INVAL:
    case MOSQ_ERR_PAYLOAD_SIZE:
    case MOSQ_ERR_MALFORMED_UTF8:
    case MOSQ_ERR_OVERSIZE_PACKET:
    case MOSQ_ERR_QOS_NOT_SUPPORTED:
      return IOCD_EINVAL;
    default:
      return IOCD_EIO;
  }
}

void mqtt_pause(struct mqtt *m) {
  if (!m || m->paused) {
    return;
  }
  m->paused = true;
  kick(m);
}

void mqtt_resume(struct mqtt *m) {
  if (!m || !m->paused) {
    return;
  }
  m->paused = false;
  m->idle_since_ms = uv_now(m->loop);
  /* A connection lost while paused was not retried: connect now, from the
   * timer, since this may be called inside on_message. */
  if (m->started && !m->closing && m->state == CS_IDLE && !m->work_busy) {
    m->state = CS_BACKOFF;
    uv_timer_start(&m->retry, on_retry, 0, 0);
  }
  kick(m);
}

bool mqtt_connected(const struct mqtt *m) {
  return m && m->state == CS_CONNECTED;
}

static bool tls_differs(const struct config_tls *a,
                        const struct config_tls *b) {
  return a->enabled != b->enabled || !str_eq(a->ca_file, b->ca_file) ||
         !str_eq(a->ca_path, b->ca_path) ||
         !str_eq(a->cert_file, b->cert_file) ||
         !str_eq(a->key_file, b->key_file) ||
         a->verify_hostname != b->verify_hostname;
}

static bool connection_differs(const struct config_mqtt *a,
                               const struct config_mqtt *b) {
  return !str_eq(a->host, b->host) || a->port != b->port ||
         !str_eq(a->client_id, b->client_id) || a->protocol != b->protocol ||
         !str_eq(a->username, b->username) ||
         !str_eq(a->password, b->password) ||
         a->keepalive_s != b->keepalive_s || a->clean_start != b->clean_start ||
         a->session_expiry_s != b->session_expiry_s ||
         tls_differs(&a->tls, &b->tls);
}

int mqtt_reconfigure(struct mqtt *m, const struct config_mqtt *cfg,
                     struct iocd_err *err) {
  if (!m || !cfg || m->closing) {
    return iocd_err_set(err, IOCD_EINVAL, "mqtt: nothing to reconfigure");
  }
  int rc = check_config(cfg, err);
  if (rc) {
    return rc;
  }
  if (!connection_differs(m->cfg, cfg)) {
    m->cfg = cfg;
    return IOCD_OK;
  }
  /* Built now, so that a bad setting (a missing CA file) is reported and
   * the running connection stays as it is. */
  struct mosquitto *next = NULL;
  rc = mosq_create(m, cfg, &next, err);
  if (rc) {
    return rc;
  }
  if (m->next_mosq) {
    mosquitto_destroy(m->next_mosq);
  }
  m->next_mosq = next;
  m->cfg = cfg;
  m->reconf_pending = true;
  log_info(MOD, "connection settings changed: reconnecting to %s:%d", cfg->host,
           cfg->port);
  kick(m);
  return IOCD_OK;
}

void mqtt_close(struct mqtt *m, mqtt_closed_fn *cb, void *ud) {
  if (!m || m->closing) {
    return;
  }
  m->closing = true;
  m->closed_cb = cb;
  m->closed_ud = ud;
  uv_timer_stop(&m->retry);
  if (m->work_busy) {
    /* Succeeds only if the connect has not started; connect_done runs
     * either way and continues the close. */
    uv_cancel((uv_req_t *)&m->work);
  }
  kick(m);
}
