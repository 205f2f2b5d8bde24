/*
 * The gate every API connection passes before libmicrohttpd reads it.
 * libmicrohttpd 0.9.75 cannot bound the time a request head takes (each
 * byte restarts its idle timeout), refuses a connection past its limits
 * rather than making room, so 64 clients trickling a byte at a time kept
 * /health unreachable, and answers malformed heads with HTML. So iocd
 * accepts connections itself and reads each request head with MSG_PEEK:
 * the bytes stay in the socket for libmicrohttpd. The gate
 *
 *  - closes a connection whose head is not complete API_HEAD_TIMEOUT_MS
 *    after its accept, however it trickles, answering 408;
 *  - keeps at most API_CONNS_PER_ADDR connections per client address and
 *    API_CONNS_MAX in all by closing the oldest one (of that address, else
 *    of all) when a new one comes: a new connection always gets in, so a
 *    health check answers while slow clients hold every other place;
 *  - answers the heads it refuses itself (request_head.c), as JSON;
 *  - passes a complete, acceptable head to libmicrohttpd, which owns the
 *    socket from then on and reports its end through api__gate_ended;
 *  - keeps the API to its share of the loop (api.loop_share_percent): while
 *    the time libmicrohttpd and the handlers ran exceeds it, complete heads
 *    wait here in the order they came, so that no number of clients can
 *    take the loop from ingest; /health and /ready never wait.
 *
 * With TLS the head is encrypted: the gate passes each connection on as
 * soon as it has accepted it and made room for it, so only the limits on
 * connections are its own; libmicrohttpd's idle timeout (10 s without
 * progress) stands in for the head's deadline.
 *
 * Heads are watched through an epoll set of the gate's own, edge-triggered
 * (bytes only peeked keep a socket readable), itself watched by one
 * uv_poll_t; one uv_timer_t follows the earliest deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/api_int.h"
#include "config/config.h"
#include "core/container.h"
#include "core/log.h"

enum conn_state {
  CONN_HEAD,    /* the gate reads its request head */
  CONN_SERVED,  /* libmicrohttpd owns the socket */
  CONN_CLOSING, /* answered by the gate; waits for the client to close */
  CONN_DEAD,    /* closed; freed once no event read can name it */
};

struct api_conn {
  struct api_conn *prev, *next;
  int fd;
  enum conn_state state;
  bool counted;   /* held against the limits (not yet made to close) */
  bool waiting;   /* its head is complete; it waits for the API's share */
  uint64_t since; /* accepted (HEAD), answered (CLOSING), in loop ms */
  struct sockaddr_storage addr;
  socklen_t addrlen;
};

static void unlink_conn(struct api_gate *g, struct api_conn *c) {
  if (c->prev) {
    c->prev->next = c->next;
  } else {
    g->first = c->next;
  }
  if (c->next) {
    c->next->prev = c->prev;
  } else {
    g->last = c->prev;
  }
  if (c->counted) {
    g->counted--;
  }
  if (c->waiting) {
    c->waiting = false;
    g->waiting--;
  }
}

/* Closes a connection the gate holds (HEAD or CLOSING). An event already
 * read may still point to it, so it is freed later, by reap. */
static void drop(struct api_gate *g, struct api_conn *c) {
  unlink_conn(g, c);
  close(c->fd); /* also leaves the epoll set */
  c->state = CONN_DEAD;
  c->next = g->dead;
  g->dead = c;
}

static void reap(struct api_gate *g) {
  while (g->dead) {
    struct api_conn *c = g->dead;
    g->dead = c->next;
    free(c);
  }
}

/* Reads and discards what the client sent; returns false when it closed
 * its side or the connection failed. */
static bool drain(struct api_gate *g, int fd) {
  for (;;) {
    ssize_t n = recv(fd, g->buf, sizeof g->buf, 0);
    if (n > 0) {
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
}

/* Sends the gate's answer {"error": msg} (best effort: it is small and the
 * socket's buffer is empty). */
static void answer(int fd, unsigned status, const char *msg, bool no_body) {
  char body[256], out[640], date[64] = "";
  int bn = snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", msg);
  time_t now = time(NULL);
  struct tm tm;
  if (gmtime_r(&now, &tm)) {
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  }
  int n = snprintf(out, sizeof out,
                   "HTTP/1.1 %u %s\r\n"
                   "Date: %s\r\n"
                   "Content-Type: application/json\r\n"
                   "Cache-Control: no-store\r\n"
                   "Connection: close\r\n"
                   "%s"
                   "Content-Length: %d\r\n\r\n%s",
                   status, api__reason(status), date,
                   status == 405 ? "Allow: GET, HEAD, POST, DELETE\r\n" : "",
                   bn, no_body ? "" : body);
  if (n > 0 && (size_t)n < sizeof out) {
    ssize_t w;
    do {
      w = send(fd, out, (size_t)n, MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
  }
}

/* Answers a connection whose head the gate refused (or that ran out of
 * time) and lets the client read the answer before the socket closes. */
static void refuse(struct api_gate *g, struct api_conn *c, unsigned status,
                   const char *msg, bool no_body) {
  if (c->waiting) {
    c->waiting = false;
    g->waiting--;
  }
  bool open = drain(g, c->fd);
  answer(c->fd, status, msg, no_body);
  if (!open || shutdown(c->fd, SHUT_WR) != 0) {
    drop(g, c);
    return;
  }
  c->state = CONN_CLOSING;
  c->since = uv_now(g->loop);
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Adds to the API's share what the time since the last refill earned. */
static void refill(struct api_gate *g) {
  int64_t now = mono_ns();
  int64_t earned = (now - g->refilled_ns) / 100 * g->share_pct;
  g->refilled_ns = now;
  g->budget_ns += earned;
  if (g->share_pct >= 100 || g->budget_ns > (int64_t)API_BURST_MS * 1000000) {
    g->budget_ns = (int64_t)API_BURST_MS * 1000000;
  }
}

void api__gate_set_share(struct api_gate *g, int pct) {
  g->share_pct = pct <= 0    ? CONFIG_API_LOOP_SHARE_DEFAULT
                 : pct > 100 ? 100
                             : pct;
}

void api__gate_charge(struct api_gate *g, int64_t ns) {
  g->budget_ns -= ns;
  /* /health and /ready run in debt too: the debt is bounded as the credit
   * is, or a flood of probes would make every other request wait long
   * after it ended. */
  if (g->budget_ns < -(int64_t)API_BURST_MS * 1000000) {
    g->budget_ns = -(int64_t)API_BURST_MS * 1000000;
  }
  stat_observe(g->busy, (double)ns / 1e9);
}

/* Whether the request line that starts buf asks for /health or /ready,
 * which never wait for the API's share. */
static bool is_probe(const char *buf, size_t n) {
  const char *sp = memchr(buf, ' ', n < 16 ? n : 16);
  if (!sp) {
    return false;
  }
  size_t rest = n - (size_t)(sp + 1 - buf);
  static const char *const paths[] = {"/health", "/ready"};
  for (size_t i = 0; i < 2; i++) {
    size_t k = strlen(paths[i]);
    if (rest > k && memcmp(sp + 1, paths[i], k) == 0 &&
        (sp[1 + k] == ' ' || sp[1 + k] == '?')) {
      return true;
    }
  }
  return false;
}

/* Makes an older connection close to make room for a new one. */
static void evict(struct api_gate *g, struct api_conn *c) {
  stat_inc(g->evicted);
  if (c->state == CONN_SERVED) {
    /* libmicrohttpd sees the end and closes it; api__gate_ended frees c */
    shutdown(c->fd, SHUT_RDWR);
    c->counted = false;
    g->counted--;
  } else if (c->state == CONN_HEAD) {
    drain(g, c->fd);
    answer(c->fd, 503, "too many connections: an older one was closed", false);
    drop(g, c);
  } else {
    drop(g, c);
  }
}

static bool same_addr(const struct api_conn *a, const struct api_conn *b) {
  if (a->addr.ss_family != b->addr.ss_family) {
    return false;
  }
  if (a->addr.ss_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)&a->addr;
    const struct sockaddr_in *y = (const struct sockaddr_in *)&b->addr;
    return x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->addr.ss_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->addr;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->addr;
    return memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
  }
  return true;
}

/* The connection to close to make room among those of c's address (all
 * when mine is false): one already answered by the gate, else the oldest
 * of those waiting for the API's share (the load itself), else the oldest.
 * A health check whose request has not arrived yet is thus not the one
 * closed while requests wait. */
static struct api_conn *victim(struct api_gate *g, const struct api_conn *c,
                               bool mine) {
  struct api_conn *oldest = NULL, *waiting = NULL;
  for (struct api_conn *o = g->first; o; o = o->next) {
    if (!o->counted || (mine && !same_addr(o, c))) {
      continue;
    }
    if (o->state == CONN_CLOSING) {
      return o;
    }
    if (!waiting && o->waiting) {
      waiting = o;
    }
    if (!oldest) {
      oldest = o;
    }
  }
  return waiting ? waiting : oldest;
}

/* Makes room for c when its address holds its share or the gate is full. */
static void make_room(struct api_gate *g, const struct api_conn *c) {
  size_t mine = 0;
  for (struct api_conn *o = g->first; o; o = o->next) {
    mine += o->counted && same_addr(o, c);
  }
  if (mine >= API_CONNS_PER_ADDR) {
    evict(g, victim(g, c, true));
  } else if (g->counted >= API_CONNS_MAX) {
    evict(g, victim(g, c, false));
  }
}

static void on_timer(uv_timer_t *t);
static bool pass(struct api_gate *g, struct api_conn *c);

/* Passes on the heads that waited, in order, while the API has its share
 * left; each is run at once, so that its cost is charged before the
 * next. */
static void pass_waiting(struct api_gate *g) {
  struct api_conn *next;
  for (struct api_conn *c = g->first; c && g->waiting; c = next) {
    next = c->next;
    if (!c->waiting) {
      continue;
    }
    refill(g);
    if (g->budget_ns <= 0) {
      return;
    }
    c->waiting = false;
    g->waiting--;
    if (pass(g, c)) {
      g->run(g->ud);
    }
    /* what the run closed is unlinked: start again from the first */
    next = g->first;
  }
}

/* Arms the timer for the earliest deadline of the connections held. */
static void arm(struct api_gate *g) {
  uint64_t next = UINT64_MAX;
  for (struct api_conn *c = g->first; c; c = c->next) {
    uint64_t at = c->state == CONN_HEAD      ? c->since + API_HEAD_TIMEOUT_MS
                  : c->state == CONN_CLOSING ? c->since + API_LINGER_MS
                                             : UINT64_MAX;
    if (at < next) {
      next = at;
    }
  }
  if (g->waiting) {
    /* When the share is earned back (at least 1 ms from now). */
    refill(g);
    int64_t debt = g->budget_ns < 0 ? -g->budget_ns : 0;
    uint64_t at = uv_now(g->loop) + 1 + (uint64_t)(debt / 10000 / g->share_pct);
    if (at < next) {
      next = at;
    }
  }
  if (next == UINT64_MAX) {
    uv_timer_stop(&g->timer);
    return;
  }
  uint64_t now = uv_now(g->loop);
  uv_timer_start(&g->timer, on_timer, next > now ? next - now : 0, 0);
}

static void on_timer(uv_timer_t *t) {
  struct api_gate *g = container_of(t, struct api_gate, timer);
  uint64_t now = uv_now(g->loop);
  struct api_conn *next;
  for (struct api_conn *c = g->first; c; c = next) {
    next = c->next;
    if (c->waiting && now >= c->since + API_HEAD_TIMEOUT_MS) {
      stat_inc(g->deadline);
      refuse(g, c, 503,
             "the API is busy: request not served within " API_STR(
                 API_HEAD_TIMEOUT_S) " s",
             false);
    } else if (c->state == CONN_HEAD && now >= c->since + API_HEAD_TIMEOUT_MS) {
      stat_inc(g->deadline);
      refuse(g, c, 408,
             "request not complete within " API_STR(API_HEAD_TIMEOUT_S) " s",
             false);
    } else if (c->state == CONN_CLOSING && now >= c->since + API_LINGER_MS) {
      drop(g, c);
    }
  }
  pass_waiting(g);
  reap(g);
  arm(g);
}

/* Hands c to libmicrohttpd. Returns true when it was passed. */
static bool pass(struct api_gate *g, struct api_conn *c) {
  if (!g->at_once) {
    epoll_ctl(g->epfd, EPOLL_CTL_DEL, c->fd, NULL);
  }
  c->state = CONN_SERVED;
  g->adding = c;
  bool ok =
      g->pass(g->ud, c->fd, (const struct sockaddr *)&c->addr, c->addrlen);
  g->adding = NULL;
  if (!ok) {
    unlink_conn(g, c); /* libmicrohttpd closed the socket */
    free(c);
  }
  return ok;
}

/* Whether the socket holds all of the body the accepted head h announced.
 * A client that ended its side before that can never complete the request,
 * and libmicrohttpd would not notice: an end of stream that came with the
 * last bytes it reads gives its edge-triggered epoll no further event, so
 * it would wait for the rest until its idle timeout. */
static bool body_complete(int fd, const struct api_head *h) {
  int avail = 0;
  return ioctl(fd, FIONREAD, &avail) == 0 && avail >= 0 &&
         (size_t)avail >= h->len + h->body_len;
}

/* Something happened on a connection the gate holds. A head passed on to
 * libmicrohttpd is run at once. */
static void on_conn(struct api_gate *g, struct api_conn *c, uint32_t events) {
  if (c->state == CONN_DEAD || c->state == CONN_SERVED) {
    return; /* closed or passed since the event was read */
  }
  if (c->state == CONN_CLOSING) {
    if (!drain(g, c->fd)) {
      drop(g, c);
    }
    return;
  }
  ssize_t n;
  do {
    n = recv(c->fd, g->buf, sizeof g->buf, MSG_PEEK);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    return;
  }
  if (n <= 0) {
    drop(g, c);
    return;
  }
  struct api_head h;
  switch (api__head_check(g->buf, (size_t)n, &h)) {
    case API_HEAD_ACCEPTED:
      if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) &&
          !body_complete(c->fd, &h)) {
        refuse(g, c, 400, "the request ended before its body", false);
        return;
      }
      if (c->waiting) {
        return; /* more of its body came; it still waits */
      }
      refill(g);
      if (g->budget_ns > 0 || is_probe(g->buf, (size_t)n)) {
        /* Run at once, so that its cost is charged before the next. */
        if (pass(g, c)) {
          g->run(g->ud);
        }
        return;
      }
      c->waiting = true;
      g->waiting++;
      stat_inc(g->deferred);
      return;
    case API_HEAD_REFUSED:
      refuse(g, c, h.status, h.error, h.head_method);
      return;
    case API_HEAD_INCOMPLETE:
      if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        refuse(g, c, 400, "the request ended before its empty line",
               h.head_method);
      }
      return;
  }
  return;
}

/* Accepts up to API_ACCEPT_BATCH pending connections (the listening socket
 * is level-triggered: the rest come in the next round), so that the heads
 * of those accepted are read before more come in to make room among them.
 * Returns true when one was passed on at once (TLS). */
static bool on_listen(struct api_gate *g) {
  bool passed = false;
  for (int k = 0; k < API_ACCEPT_BATCH; k++) {
    struct api_conn *c = calloc(1, sizeof *c);
    if (!c) {
      log_warn("api", "out of memory: a connection waits in the backlog");
      return passed;
    }
    c->addrlen = sizeof c->addr;
    c->fd = accept(g->listen_fd, (struct sockaddr *)&c->addr, &c->addrlen);
    if (c->fd < 0) {
      int e = errno;
      free(c);
      if (e == EINTR || e == ECONNABORTED) {
        continue;
      }
      if (e != EAGAIN && e != EWOULDBLOCK) {
        log_warn("api", "cannot accept a connection: %s", strerror(e));
      }
      return passed;
    }
    int fl = fcntl(c->fd, F_GETFL);
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        fcntl(c->fd, F_SETFD, FD_CLOEXEC) != 0) {
      close(c->fd);
      free(c);
      continue;
    }
    make_room(g, c);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET,
                             .data.ptr = c};
    if (!g->at_once && epoll_ctl(g->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
      log_warn("api", "cannot watch a connection: %s", strerror(errno));
      close(c->fd);
      free(c);
      continue;
    }
    c->state = CONN_HEAD;
    c->counted = true;
    c->since = uv_now(g->loop);
    c->prev = g->last;
    if (g->last) {
      g->last->next = c;
    } else {
      g->first = c;
    }
    g->last = c;
    g->counted++;
    if (g->at_once) {
      refill(g);
      if (g->budget_ns > 0) {
        passed |= pass(g, c);
      } else {
        c->waiting = true;
        g->waiting++;
        stat_inc(g->deferred);
      }
    }
  }
  return passed;
}

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  struct api_gate *g = container_of(p, struct api_gate, poll);
  struct epoll_event ev[64];
  bool passed = false;
  int n;
  /* Accepted sockets are added to the set while it is read, so a few
   * rounds see them too; readiness left over makes uv_poll call again. */
  for (int round = 0; round < 4; round++) {
    do {
      n = epoll_wait(g->epfd, ev, (int)(sizeof ev / sizeof ev[0]), 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      break;
    }
    for (int i = 0; i < n; i++) {
      if (ev[i].data.ptr == NULL) {
        passed |= on_listen(g);
      } else {
        on_conn(g, ev[i].data.ptr, ev[i].events);
      }
    }
  }
  reap(g);
  if (passed) {
    g->run(g->ud);
  }
  arm(g);
}

void api__gate_started(struct api_gate *g, void **socket_context) {
  *socket_context = g->adding;
}

void api__gate_ended(struct api_gate *g, void *socket_context) {
  struct api_conn *c = socket_context;
  if (c && c != g->adding) { /* pass() frees the one being added */
    /* libmicrohttpd closed its socket. An event read before may still
     * name c: freed by reap, as a dropped one. */
    unlink_conn(g, c);
    c->state = CONN_DEAD;
    c->next = g->dead;
    g->dead = c;
  }
}

int api__gate_start(struct api_gate *g, uv_loop_t *loop, int listen_fd,
                    struct stats *stats, bool at_once, api_pass_fn *pass_cb,
                    api_run_fn *run, void *ud, struct iocd_err *err) {
  memset(g, 0, sizeof *g);
  g->loop = loop;
  g->at_once = at_once;
  g->listen_fd = listen_fd;
  g->pass = pass_cb;
  g->run = run;
  g->ud = ud;
  g->stats = stats;
  static const char name[] = "iocd_api_connections_closed_total";
  static const char help[] =
      "API connections iocd closed: reason=\"deadline\" when the request "
      "head was not complete in time, \"room\" to make room for a newer one.";
  g->deadline = stats_counter(stats, name, help, "reason", "deadline", NULL);
  g->evicted = stats_counter(stats, name, help, "reason", "room", NULL);
  g->deferred = stats_counter(
      stats, "iocd_api_deferred_total",
      "API requests that waited for the API's share of the loop "
      "(api.loop_share_percent) because other requests had used it.",
      NULL);
  static const double bounds[] = {0.0001, 0.0005, 0.001, 0.005,
                                  0.01,   0.05,   0.1,   0.5};
  g->busy = stats_histogram(
      stats, "iocd_api_loop_seconds",
      "Time the API ran on the loop at a time (libmicrohttpd and the "
      "handlers); its sum over time is the API's share of the loop.",
      bounds, sizeof bounds / sizeof bounds[0], NULL);
  g->share_pct = 100; /* until api__gate_set_share */
  g->budget_ns = (int64_t)API_BURST_MS * 1000000;
  g->refilled_ns = mono_ns();
  g->epfd = epoll_create1(EPOLL_CLOEXEC);
  /* Level-triggered: on_listen takes a few at a time and leaves the rest
   * for the next round. */
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (g->epfd < 0 || epoll_ctl(g->epfd, EPOLL_CTL_ADD, listen_fd, &ev) != 0) {
    iocd_err_set(err, IOCD_EIO, "api: cannot watch the listening socket: %s",
                 strerror(errno));
    if (g->epfd >= 0) {
      close(g->epfd);
    }
    close(listen_fd);
    return IOCD_EIO;
  }
  uv_poll_init(loop, &g->poll, g->epfd);
  uv_poll_start(&g->poll, UV_READABLE, on_poll);
  uv_timer_init(loop, &g->timer);
  return IOCD_OK;
}

void api__gate_close(struct api_gate *g, uv_close_cb cb) {
  uv_poll_stop(&g->poll);
  uv_timer_stop(&g->timer);
  uv_close((uv_handle_t *)&g->poll, cb);
  uv_close((uv_handle_t *)&g->timer, cb);
}

void api__gate_cleanup(struct api_gate *g) {
  while (g->first) {
    struct api_conn *c = g->first;
    if (c->state == CONN_SERVED) {
      unlink_conn(g, c); /* libmicrohttpd closed its socket */
      free(c);
    } else {
      drop(g, c);
    }
  }
  reap(g);
  close(g->epfd);
  close(g->listen_fd);
}
