/*
 * libcurl's multi interface on a libuv loop (integration.md section 2):
 * CURLMOPT_SOCKETFUNCTION gives each socket curl opens a uv_poll_t,
 * CURLMOPT_TIMERFUNCTION arms one uv_timer_t, both call
 * curl_multi_socket_action, and the transfers that ended are read with
 * curl_multi_info_read after each call and handed to their owners.
 *
 * A socket's uv_poll_t is closed when curl says CURL_POLL_REMOVE (curl
 * closes the socket right after); the memory of the curl_loop lives until
 * the last handle's close callback, so a done callback may close it.
 */
#include "core/curl_loop.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/container.h"
#include "core/err.h"

struct curl_loop;

/* One socket curl watches. */
struct csock {
  uv_poll_t poll;
  curl_socket_t fd;
  struct curl_loop *cl;
  struct csock *prev, *next;
  bool closing;
};

/* One running transfer; easy's CURLOPT_PRIVATE points here. */
struct xfer {
  CURL *easy;
  curl_loop_done_fn *done;
  void *ud;
  struct xfer *prev, *next;
};

struct curl_loop {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer; /* curl's own timeouts */
  struct csock *socks;
  struct xfer *xfers;
  unsigned nxfers;
  unsigned open_handles; /* the timer and the sockets' polls not closed */
  bool closing;
  curl_loop_closed_fn *closed;
  void *closed_ud;
};

static void handle_closed(struct curl_loop *cl) {
  if (--cl->open_handles > 0 || !cl->closing) {
    return;
  }
  curl_loop_closed_fn *closed = cl->closed;
  void *ud = cl->closed_ud;
  free(cl);
  curl_global_cleanup();
  if (closed) {
    closed(ud);
  }
}

static void on_sock_closed(uv_handle_t *h) {
  struct csock *c = container_of((uv_poll_t *)h, struct csock, poll);
  struct curl_loop *cl = c->cl;
  if (c->prev) {
    c->prev->next = c->next;
  } else {
    cl->socks = c->next;
  }
  if (c->next) {
    c->next->prev = c->prev;
  }
  free(c);
  handle_closed(cl);
}

static void on_timer_closed(uv_handle_t *h) {
  handle_closed(container_of((uv_timer_t *)h, struct curl_loop, timer));
}

static void sock_close(struct csock *c) {
  if (c->closing) {
    return;
  }
  c->closing = true;
  uv_poll_stop(&c->poll);
  uv_close((uv_handle_t *)&c->poll, on_sock_closed);
}

static void xfer_unlink(struct curl_loop *cl, struct xfer *x) {
  if (x->prev) {
    x->prev->next = x->next;
  } else {
    cl->xfers = x->next;
  }
  if (x->next) {
    x->next->prev = x->prev;
  }
  cl->nxfers--;
}

/* Hands every transfer that ended to its owner. A callback may add
 * transfers, remove others, or close the curl_loop (then the rest waits
 * for curl_loop_close, which aborts them). */
static void check_done(struct curl_loop *cl) {
  CURLMsg *m;
  int left;
  while (!cl->closing && (m = curl_multi_info_read(cl->multi, &left))) {
    if (m->msg != CURLMSG_DONE) {
      continue;
    }
    /* m is invalid once the handle is removed: read it first. */
    CURL *e = m->easy_handle;
    CURLcode rc = m->data.result;
    char *priv = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
    curl_multi_remove_handle(cl->multi, e);
    struct xfer *x = (struct xfer *)(void *)priv;
    if (!x) {
      continue;
    }
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)NULL);
    xfer_unlink(cl, x);
    curl_loop_done_fn *done = x->done;
    void *ud = x->ud;
    free(x);
    done(ud, e, rc);
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  struct csock *c = container_of(h, struct csock, poll);
  struct curl_loop *cl = c->cl;
  if (cl->closing || c->closing) {
    return;
  }
  int flags = 0;
  if (status < 0) {
    flags = CURL_CSELECT_ERR;
  }
  if (events & UV_READABLE) {
    flags |= CURL_CSELECT_IN;
  }
  if (events & UV_WRITABLE) {
    flags |= CURL_CSELECT_OUT;
  }
  int running;
  curl_multi_socket_action(cl->multi, c->fd, flags, &running);
  check_done(cl);
}

static void on_timeout(uv_timer_t *t) {
  struct curl_loop *cl = container_of(t, struct curl_loop, timer);
  if (cl->closing) {
    return;
  }
  int running;
  curl_multi_socket_action(cl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(cl);
}

/* CURLMOPT_TIMERFUNCTION: only (re)arms the uv timer; calling back into
 * curl from here is not allowed. */
static int on_timer_set(CURLM *m, long ms, void *userp) {
  (void)m;
  struct curl_loop *cl = userp;
  if (cl->closing) {
    return 0;
  }
  if (ms < 0) {
    uv_timer_stop(&cl->timer);
  } else {
    uv_timer_start(&cl->timer, on_timeout, (uint64_t)ms, 0);
  }
  return 0;
}

/* CURLMOPT_SOCKETFUNCTION: one uv_poll_t per socket, created on first use
 * and closed on CURL_POLL_REMOVE. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp,
                     void *sockp) {
  (void)e;
  struct curl_loop *cl = userp;
  struct csock *c = sockp;
  if (what == CURL_POLL_REMOVE) {
    if (c) {
      sock_close(c);
    }
    return 0;
  }
  if (cl->closing) {
    return -1;
  }
  if (!c) {
    c = calloc(1, sizeof *c);
    if (!c) {
      return -1;
    }
    if (uv_poll_init_socket(cl->loop, &c->poll, fd) != 0) {
      free(c);
      return -1;
    }
    c->fd = fd;
    c->cl = cl;
    c->next = cl->socks;
    if (cl->socks) {
      cl->socks->prev = c;
    }
    cl->socks = c;
    cl->open_handles++;
    curl_multi_assign(cl->multi, fd, c);
  }
  int events = 0;
  if (what & CURL_POLL_IN) {
    events |= UV_READABLE;
  }
  if (what & CURL_POLL_OUT) {
    events |= UV_WRITABLE;
  }
  uv_poll_start(&c->poll, events, on_poll);
  return 0;
}

struct curl_loop *curl_loop_new(uv_loop_t *loop) {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    return NULL;
  }
  struct curl_loop *cl = calloc(1, sizeof *cl);
  if (!cl) {
    curl_global_cleanup();
    return NULL;
  }
  cl->loop = loop;
  cl->multi = curl_multi_init();
  if (!cl->multi || uv_timer_init(loop, &cl->timer) != 0) {
    if (cl->multi) {
      curl_multi_cleanup(cl->multi);
    }
    free(cl);
    curl_global_cleanup();
    return NULL;
  }
  cl->open_handles = 1;
  curl_multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, (void *)cl);
  curl_multi_setopt(cl->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
  curl_multi_setopt(cl->multi, CURLMOPT_TIMERDATA, (void *)cl);
  return cl;
}

int curl_loop_add(struct curl_loop *cl, CURL *easy, curl_loop_done_fn *done,
                  void *ud) {
  if (cl->closing) {
    return IOCD_ECLOSED;
  }
  struct xfer *x = calloc(1, sizeof *x);
  if (!x) {
    return IOCD_ENOMEM;
  }
  x->easy = easy;
  x->done = done;
  x->ud = ud;
  if (curl_easy_setopt(easy, CURLOPT_PRIVATE, (void *)x) != CURLE_OK ||
      curl_multi_add_handle(cl->multi, easy) != CURLM_OK) {
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (void *)NULL);
    free(x);
    return IOCD_ENOMEM;
  }
  x->next = cl->xfers;
  if (cl->xfers) {
    cl->xfers->prev = x;
  }
  cl->xfers = x;
  cl->nxfers++;
  return IOCD_OK;
}

void curl_loop_remove(struct curl_loop *cl, CURL *easy) {
  char *priv = NULL;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
  struct xfer *x = (struct xfer *)(void *)priv;
  if (!x || x->easy != easy) {
    return;
  }
  if (cl->multi) {
    curl_multi_remove_handle(cl->multi, easy);
  }
  curl_easy_setopt(easy, CURLOPT_PRIVATE, (void *)NULL);
  xfer_unlink(cl, x);
  free(x);
}

unsigned curl_loop_running(const struct curl_loop *cl) {
  return cl->nxfers;
}

void curl_loop_close(struct curl_loop *cl, curl_loop_closed_fn *closed,
                     void *ud) {
  if (cl->closing) {
    return;
  }
  cl->closing = true;
  cl->closed = closed;
  cl->closed_ud = ud;
  uv_timer_stop(&cl->timer);
  while (cl->xfers) {
    struct xfer *x = cl->xfers;
    CURL *e = x->easy;
    curl_multi_remove_handle(cl->multi, e);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)NULL);
    xfer_unlink(cl, x);
    curl_loop_done_fn *done = x->done;
    void *xud = x->ud;
    free(x);
    done(xud, e, CURLE_ABORTED_BY_CALLBACK);
  }
  curl_multi_cleanup(cl->multi);
  cl->multi = NULL;
  for (struct csock *c = cl->socks; c; c = c->next) {
    sock_close(c);
  }
  uv_close((uv_handle_t *)&cl->timer, on_timer_closed);
}

/* ---- answers ---- */

void curl_answer_init(struct curl_answer *a, size_t body_max) {
  buf_init(&a->body, body_max);
  a->retry_after[0] = '\0';
  a->errbuf[0] = '\0';
}

void curl_answer_cleanup(struct curl_answer *a) {
  buf_cleanup(&a->body);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  struct curl_answer *a = ud;
  size_t len = size * n;
  /* Past the cap the rest of the answer is read and ignored. */
  (void)buf_append(&a->body, p, len);
  return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  struct curl_answer *a = ud;
  size_t len = size * n;
  static const char name[] = "retry-after:";
  if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
    a->retry_after[0] = '\0';
  } else if (len > sizeof name - 1 &&
             strncasecmp(p, name, sizeof name - 1) == 0) {
    size_t vlen = len - (sizeof name - 1);
    if (vlen >= sizeof a->retry_after) {
      vlen = sizeof a->retry_after - 1;
    }
    memcpy(a->retry_after, p + sizeof name - 1, vlen);
    a->retry_after[vlen] = '\0';
  }
  return len;
}

bool curl_answer_setup(CURL *e, struct curl_answer *a, const char *ua) {
  bool bad = curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
  /* A timeout during name resolution must not wait for the resolver's
   * thread (getaddrinfo gives up after 20 s and more with a dead name
   * server): the thread finishes and frees itself on its own. */
  bad |= curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)a) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)a) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, a->errbuf) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, ua) != CURLE_OK;
  return !bad;
}

const char *curl_answer_error(const struct curl_answer *a, CURLcode rc) {
  return a->errbuf[0] ? a->errbuf : curl_easy_strerror(rc);
}

int curl_retry_after_parse(const char *value, int64_t now_s, int64_t cap_ms,
                           int64_t *delay_ms) {
  while (*value == ' ' || *value == '\t') {
    value++;
  }
  size_t n = strlen(value);
  while (n > 0 && isspace((unsigned char)value[n - 1])) {
    n--;
  }
  if (n == 0 || n >= 64) {
    return IOCD_EPARSE;
  }
  char v[64];
  memcpy(v, value, n);
  v[n] = '\0';

  int64_t secs;
  if (isdigit((unsigned char)v[0])) {
    bool digits = true;
    for (size_t i = 0; i < n; i++) {
      digits = digits && isdigit((unsigned char)v[i]);
    }
    if (digits) {
      errno = 0;
      char *end;
      long long x = strtoll(v, &end, 10);
      if (*end != '\0') {
        return IOCD_EPARSE;
      }
      if (errno == ERANGE || x > cap_ms / 1000) {
        x = cap_ms / 1000;
      }
      *delay_ms = (int64_t)x * 1000;
      return IOCD_OK;
    }
  }
  /* An HTTP-date: IMF-fixdate, RFC 850 or asctime; curl_getdate reads all
   * three (RFC 9110 section 5.6.7). */
  time_t t = curl_getdate(v, NULL);
  if (t == (time_t)-1) {
    return IOCD_EPARSE;
  }
  secs = (int64_t)t - now_s;
  if (secs < 0) {
    secs = 0;
  }
  if (secs > cap_ms / 1000) {
    secs = cap_ms / 1000;
  }
  *delay_ms = secs * 1000;
  return IOCD_OK;
}
