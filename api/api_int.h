/*
 * What the files of api/ share: the limits on connections and request
 * heads, the check of a request head (request_head.c) and the gate that
 * every connection passes before libmicrohttpd reads it (gate.c).
 */
#ifndef IOCD_API_API_INT_H
#define IOCD_API_API_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "core/err.h"
#include "core/stats.h"

/* A request head: its request line (end of line excluded), the whole head
 * (the empty line included), its query parameters, and its header fields
 * (each cookie of a Cookie field counted as one more). libmicrohttpd's
 * per-connection memory (API_MHD_MEMORY) holds any head within these. */
#define API_LINE_MAX 4096
#define API_HEAD_MAX 8192
#define API_PARAMS_MAX 100
#define API_FIELDS_MAX 100
#define API_MHD_MEMORY (64u * 1024u)

/* Connections: at most API_CONNS_PER_ADDR from one client address and
 * API_CONNS_MAX in all (a new one closes the oldest to make room); a
 * request head must be complete API_HEAD_TIMEOUT_MS after the connection
 * was accepted; a refused connection is closed once the client has read
 * the answer and closed its side, or API_LINGER_MS after the answer. */
#define API_CONNS_PER_ADDR 32
#define API_CONNS_MAX 128
#define API_HEAD_TIMEOUT_S 10
#define API_HEAD_TIMEOUT_MS (API_HEAD_TIMEOUT_S * 1000)
#define API_LINGER_MS 2000
/* Connections accepted at a time, between reads of their heads; the
 * listen backlog (SOMAXCONN) holds the rest meanwhile. */
#define API_ACCEPT_BATCH 16

/* The API's share of the loop, which it shares with ingest: the time
 * libmicrohttpd and the handlers run is charged to a budget that refills
 * at api.loop_share_percent percent of the time that passes (100: no
 * limit), up to API_BURST_MS. While it is spent, complete request heads wait in
 * the gate (first come, first served) instead of being passed on, except those
 * of /health and /ready, which are cheap and must answer; a request that waited
 * API_HEAD_TIMEOUT_MS is answered 503. */
#define API_BURST_MS 200

/* A limit as a string, for the messages that name it. */
/* API_BODY_MAX (api.h) written out, for the refusal's static text. */
#define API_BODY_MAX_BYTES 65536
#define API_STR_(x) #x
#define API_STR(x) API_STR_(x)

enum api_head_result {
  API_HEAD_INCOMPLETE, /* more bytes are needed */
  API_HEAD_ACCEPTED,   /* complete, and libmicrohttpd may read it */
  API_HEAD_REFUSED     /* answered by status and error */
};

struct api_head {
  size_t len;        /* bytes of the head (ACCEPTED) */
  size_t body_len;   /* its Content-Length, 0 without one (ACCEPTED) */
  unsigned status;   /* the refusal's status (REFUSED) */
  const char *error; /* the refusal's message, a static string (REFUSED) */
  bool head_method;  /* HEAD: the answer has no body */
};

/* Checks the request head that starts buf (n bytes, what the client sent so
 * far, possibly more than the head). A head is refused as soon as what has
 * come shows it: a malformed request line or field (400), a version other
 * than HTTP/1.x (505), a request line over API_LINE_MAX or more than
 * API_PARAMS_MAX query parameters (414), a head over API_HEAD_MAX or more
 * than API_FIELDS_MAX fields (431), an HTTP/1.1 request without exactly one
 * Host (400), a body with GET or HEAD (413), a body with a method other
 * than POST and DELETE (405), a Content-Length over API_BODY_MAX (413) and
 * a body sent with Transfer-Encoding instead of Content-Length (411).
 * Fills h; never reads past buf[n-1]. */
enum api_head_result api__head_check(const char *buf, size_t n,
                                     struct api_head *h);

/* The reason phrase of an HTTP status iocd answers with ("" if unknown). */
const char *api__reason(unsigned status);

/* Hands an accepted connection to libmicrohttpd (MHD_add_connection):
 * returns false when it refused it, having closed fd. Must not run
 * libmicrohttpd. */
typedef bool api_pass_fn(void *ud, int fd, const struct sockaddr *addr,
                         socklen_t len);
/* Runs libmicrohttpd after connections were passed. */
typedef void api_run_fn(void *ud);

struct api_conn;

/* The gate: accepts connections on a listening socket, holds each one until
 * its request head is complete (answering refused heads itself, as JSON),
 * then passes it to libmicrohttpd, and keeps the limits above. Caller
 * storage, embedded in struct api. */
struct api_gate {
  uv_loop_t *loop;
  uv_poll_t poll; /* the epoll set below */
  uv_timer_t timer;
  int listen_fd;
  int epfd; /* edge-triggered: peeked bytes keep a socket readable */
  struct api_conn *first, *last; /* in the order they were accepted */
  struct api_conn *dead;         /* closed, freed after the events read */
  size_t counted;                /* connections held against the limits */
  struct api_conn *adding;       /* the one being passed, see gate.c */
  api_pass_fn *pass;
  api_run_fn *run;
  void *ud;
  /* TLS: the head is encrypted, so each connection is passed on as soon
   * as it is accepted (the limits on connections still hold; the head's
   * checks and deadline do not, libmicrohttpd's idle timeout does). */
  bool at_once;
  /* The API's share of the loop (share_pct percent): what it may still
   * spend (negative: in debt), when that was last refilled (monotonic
   * ns), and the complete heads waiting for it. */
  int share_pct;
  int64_t budget_ns;
  int64_t refilled_ns;
  size_t waiting;
  struct metric *deferred; /* requests that waited for the API's share */
  struct metric *busy;     /* seconds the API ran on the loop */
  struct metric *deadline; /* connections closed at the head deadline */
  struct metric *evicted;  /* connections closed to make room */
  struct stats *stats;
  char buf[API_HEAD_MAX + 1];
};

/* Starts accepting on listen_fd (which the gate owns from here on, even on
 * failure). pass and run hand connections to libmicrohttpd, at once after
 * the accept when at_once (TLS), else once the head is complete; stats is
 * borrowed. Returns IOCD_OK, or an error with err set. */
int api__gate_start(struct api_gate *g, uv_loop_t *loop, int listen_fd,
                    struct stats *stats, bool at_once, api_pass_fn *pass,
                    api_run_fn *run, void *ud, struct iocd_err *err);

/* From libmicrohttpd's connection notifications: a passed connection
 * started (stores its handle in *socket_context) or was closed (the handle
 * from socket_context). */
void api__gate_started(struct api_gate *g, void **socket_context);
void api__gate_ended(struct api_gate *g, void *socket_context);

/* Charges ns of loop time spent running libmicrohttpd (and the handlers
 * it called) to the API's share. */
void api__gate_charge(struct api_gate *g, int64_t ns);

/* Sets the API's share of the loop, in percent (100: no limit; 0: the
 * default, CONFIG_API_LOOP_SHARE_DEFAULT). */
void api__gate_set_share(struct api_gate *g, int pct);

/* Stops accepting and closes the gate's two handles, cb called for each. */
void api__gate_close(struct api_gate *g, uv_close_cb cb);

/* After its handles closed and libmicrohttpd stopped: closes the
 * connections the gate still holds, its epoll set and listen_fd. */
void api__gate_cleanup(struct api_gate *g);

#endif
