/*
 * The receivers' transports (deliver.h). One attempt at a notice is a job:
 * one HTTP request (webhook, Alertmanager, Telegram), one per recipient
 * still waiting (Zalo), one SMTP transaction (e-mail), or one publish per
 * alert (MQTT). Each part ends in a payload_answer (payload.c classifies
 * the HTTP answers; SMTP and MQTT are classified here) and the job's
 * outcome is the worst of them: a refusal fails the notice, a temporary
 * failure retries it, and only a job whose every part went through is
 * sent.
 *
 * Zalo sends one message per recipient: those that already have the
 * notice are remembered (struct zprog) so that a retry sends only to the
 * others. The memory is lost at a restart, where a retry goes to all.
 *
 * A job's completion is always reported from a loop callback (a transfer,
 * a publish acknowledgement, or the job's timer at 0 ms for what failed
 * before anything was sent), never from deliver_send itself, so that the
 * caller's done may send again at once.
 */
#include "alerts/deliver.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alerts/payload.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/container.h"
#include "core/file.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/url.h"

#define LOG_MOD "alerts"
/* The part of an answer kept: receivers' answers are short JSON. */
#define RESP_MAX 16384
/* A token or password file is small. */
#define SECRET_MAX (64u << 10)
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_ATTEMPTS 10
#define DEFAULT_RETRY_MIN_MS 1000
#define DEFAULT_RETRY_MAX_MS 300000
#define DEFAULT_REPEAT_MS (INT64_C(4) * 3600 * 1000)
/* A receiver's own delay is taken up to this. */
#define RETRY_AFTER_CAP_MS (INT64_C(3600) * 1000)

struct deliver;
struct job;

/* One HTTP request or SMTP transaction of a job. */
struct req {
  struct job *job;
  struct req *next;
  CURL *easy;
  struct curl_slist *headers;
  struct curl_slist *rcpts;
  struct buf body;
  size_t uploaded; /* e-mail: bytes of body read by curl */
  struct curl_answer ans;
  size_t user; /* Zalo: the recipient's index */
};

/* One MQTT publish waiting for its acknowledgement. job is NULL once the
 * job stopped waiting (timeout, close): the acknowledgement then only
 * frees it. */
struct pub {
  struct job *job;
  struct pub *prev, *next;
};

enum { Z_PENDING = 0, Z_SENT, Z_FAILED };

/* Zalo: which recipients have notice id, across attempts. */
struct zprog {
  struct zprog *next;
  uint64_t id;
  size_t n;
  unsigned char *state;
  char why[IOCD_ERR_SIZE]; /* the first refusal */
};

struct job {
  uv_timer_t timer; /* completion at 0 ms, or the MQTT acknowledgement
                       timeout */
  struct deliver *dl;
  struct job *prev, *next;
  uint64_t id;
  int attempt;
  int max_attempts;
  int64_t retry_min_ms, retry_max_ms;
  int timeout_ms;
  char *receiver;
  enum config_receiver_type type;
  char *where;  /* for the log: the URL without secrets, or the topic */
  char *secret; /* removed from any message that might echo it */
  deliver_done_fn *done;
  void *ud;
  int64_t start_ns; /* monotonic */
  unsigned pending; /* parts out */
  bool starting;    /* parts are being started: do not finish yet */
  bool finished;
  bool any_retry, any_fail;
  int64_t retry_after_ms;
  char retry_why[IOCD_ERR_SIZE];
  char fail_why[IOCD_ERR_SIZE];
  struct zprog *zp;
  struct req *reqs;
  struct pub *pubs;
};

struct deliver {
  uv_loop_t *loop;
  struct curl_loop *curl;
  const struct config_notify *cfg;
  struct stats *stats;
  deliver_templates_fn *templates;
  void *templates_ud;
  deliver_publish_fn *publish;
  void *publish_ud;
  char *external_url;
  struct job *jobs;
  size_t njobs;
  struct zprog *zprogs;
  uint64_t rng;
  uv_timer_t close_timer; /* only closed: the last handle to go */
  unsigned open_handles;  /* close_timer and the jobs' timers */
  bool closing;
  deliver_closed_fn *closed;
  void *closed_ud;
};

const char *deliver_outcome_name(enum deliver_outcome o) {
  switch (o) {
    case DELIVER_SENT:
      return "sent";
    case DELIVER_RETRY:
      return "retry";
    case DELIVER_FAILED:
      return "failed";
    case DELIVER_DEAD:
      return "dead";
  }
  return "unknown";
}

/* Formats into a message field, cut to fit (a message is for the log). */
static void msgf(char *dst, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void msgf(char *dst, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(dst, n, fmt, ap);
  va_end(ap);
}

/* ---- small helpers ---- */

static uint64_t next_rand(struct deliver *dl) {
  uint64_t x = dl->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  dl->rng = x;
  return x * UINT64_C(2685821657736338717);
}

/* Full jitter: uniform in [0, min(max, min * 2^(attempt-1))]. */
static int64_t backoff_ms(struct deliver *dl, int attempt, int64_t min_ms,
                          int64_t max_ms) {
  if (min_ms < 1) {
    min_ms = 1;
  }
  if (max_ms < min_ms) {
    max_ms = min_ms;
  }
  int64_t ceiling = min_ms;
  for (int i = 1; i < attempt && ceiling < max_ms; i++) {
    ceiling = ceiling > max_ms / 2 ? max_ms : ceiling * 2;
  }
  return (int64_t)(next_rand(dl) % ((uint64_t)ceiling + 1));
}

/* Replaces every occurrence of secret in s (of size n) by "***". */
static void scrub(char *s, size_t n, const char *secret) {
  size_t k = secret ? strlen(secret) : 0;
  if (k < 4) {
    return;
  }
  char *p;
  while ((p = strstr(s, secret)) != NULL) {
    size_t tail = strlen(p + k) + 1;
    memcpy(p, "***", 3);
    memmove(p + 3, p + k, tail);
  }
  s[n - 1] = '\0';
}

/* url as the log shows it: the scheme, host and port only, "/..." for the
 * rest (a webhook's path or query may be its secret, and credentials may
 * be written before the host). keep_path keeps the path of a URL whose
 * path is known to hold no secret. */
static char *redact_url(const char *url, bool keep_path) {
  struct buf b;
  buf_init(&b, 0);
  char origin[512];
  const char *rest = url_rest(url);
  int rc;
  if (!rest || !url_origin(url, origin, sizeof origin)) {
    rc = buf_puts(&b, "(no URL)");
  } else {
    rc = buf_puts(&b, origin);
    if (!rc && *rest) {
      rc = keep_path ? buf_append(&b, rest, strcspn(rest, "?#"))
                     : buf_puts(&b, "/...");
    }
  }
  if (rc) {
    buf_cleanup(&b);
    return NULL;
  }
  return buf_detach(&b, NULL);
}

/* base without trailing '/' (NULL: dflt) followed by the printf rest. */
static int url_join(struct buf *out, const char *base, const char *dflt,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int url_join(struct buf *out, const char *base, const char *dflt,
                    const char *fmt, ...) {
  if (!base || !*base) {
    base = dflt;
  }
  size_t n = strlen(base);
  while (n > 0 && base[n - 1] == '/') {
    n--;
  }
  int rc = buf_append(out, base, n);
  if (rc) {
    return rc;
  }
  va_list ap;
  va_start(ap, fmt);
  rc = buf_vprintf(out, fmt, ap);
  va_end(ap);
  return rc;
}

/* The secret in value, or else the first line of file (re-read each time:
 * tokens are refreshed by another process). Returns IOCD_OK and *out
 * (malloc'd), IOCD_ENOTFOUND when there is neither, or IOCD_EIO with err
 * naming the file. */
static int read_secret(const char *value, const char *file, char **out,
                       struct iocd_err *err) {
  *out = NULL;
  if (file && *file) {
    struct buf b;
    buf_init(&b, SECRET_MAX);
    int rc = file_read(file, &b, err);
    if (rc) {
      buf_cleanup(&b);
      return iocd_err_set(err, IOCD_EIO, "cannot read %s", file);
    }
    /* Read as the loader reads it: one trailing newline dropped, and
     * nothing else taken away from the secret. */
    size_t n = b.data ? file_secret_len(b.data, b.len) : 0;
    if (n > 0 && (memchr(b.data, '\n', n) || memchr(b.data, '\r', n))) {
      buf_cleanup(&b);
      return iocd_err_set(err, IOCD_EIO, "%s holds more than one line", file);
    }
    if (n > 0) {
      *out = malloc(n + 1);
      if (*out) {
        memcpy(*out, b.data, n);
        (*out)[n] = '\0';
      }
    }
    buf_cleanup(&b);
    if (n == 0) {
      return iocd_err_set(err, IOCD_EIO, "%s is empty", file);
    }
    return *out ? IOCD_OK : iocd_err_set(err, IOCD_ENOMEM, "out of memory");
  }
  if (value && *value) {
    *out = mem_strdup(value);
    return *out ? IOCD_OK : iocd_err_set(err, IOCD_ENOMEM, "out of memory");
  }
  return IOCD_ENOTFOUND;
}

/* ---- jobs ---- */

static void handle_closed(struct deliver *dl) {
  if (--dl->open_handles > 0 || !dl->closing) {
    return;
  }
  deliver_closed_fn *closed = dl->closed;
  void *ud = dl->closed_ud;
  for (struct zprog *z = dl->zprogs, *next; z; z = next) {
    next = z->next;
    free(z->state);
    free(z);
  }
  free(dl->external_url);
  free(dl);
  if (closed) {
    closed(ud);
  }
}

static void req_free(struct req *r) {
  if (r->easy) {
    curl_easy_cleanup(r->easy);
  }
  curl_slist_free_all(r->headers);
  curl_slist_free_all(r->rcpts);
  buf_cleanup(&r->body);
  curl_answer_cleanup(&r->ans);
  free(r);
}

static void on_job_closed(uv_handle_t *h) {
  struct job *j = container_of((uv_timer_t *)h, struct job, timer);
  struct deliver *dl = j->dl;
  while (j->reqs) {
    struct req *r = j->reqs;
    j->reqs = r->next;
    req_free(r);
  }
  free(j->receiver);
  free(j->where);
  free(j->secret);
  free(j);
  handle_closed(dl);
}

static void job_unlink(struct job *j) {
  struct deliver *dl = j->dl;
  if (j->prev) {
    j->prev->next = j->next;
  } else {
    dl->jobs = j->next;
  }
  if (j->next) {
    j->next->prev = j->prev;
  }
  j->prev = j->next = NULL;
  dl->njobs--;
}

/* The acknowledgements still to come no longer concern j. */
static void orphan_pubs(struct job *j) {
  for (struct pub *p = j->pubs; p; p = p->next) {
    p->job = NULL;
  }
  j->pubs = NULL;
}

static void count(struct deliver *dl, const char *receiver,
                  enum deliver_outcome o, double secs) {
  if (!dl->stats) {
    return;
  }
  stat_inc(stats_counter(dl->stats, "iocd_notifications_total",
                         "Notification attempts, by receiver and outcome.",
                         "receiver", receiver, "outcome",
                         deliver_outcome_name(o), NULL));
  static const double bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                  1,    2.5,   5,    10,  30,   60};
  stat_observe(stats_histogram(dl->stats, "iocd_notification_duration_seconds",
                               "Duration of notification attempts.", bounds,
                               sizeof bounds / sizeof bounds[0], "receiver",
                               receiver, NULL),
               secs);
}

static struct zprog *zprog_find(struct deliver *dl, uint64_t id,
                                struct zprog ***link) {
  struct zprog **pp = &dl->zprogs;
  for (; *pp; pp = &(*pp)->next) {
    if ((*pp)->id == id) {
      break;
    }
  }
  if (link) {
    *link = pp;
  }
  return *pp;
}

static void zprog_drop(struct deliver *dl, uint64_t id) {
  struct zprog **pp;
  struct zprog *z = zprog_find(dl, id, &pp);
  if (z) {
    *pp = z->next;
    free(z->state);
    free(z);
  }
}

/* Every part is in: the outcome, its log line and counter, the caller's
 * done, and the job closed. */
static void finish(struct job *j) {
  if (j->finished) {
    return;
  }
  j->finished = true;
  struct deliver *dl = j->dl;
  uv_timer_stop(&j->timer);
  orphan_pubs(j);
  bool retry = j->any_retry, fail = j->any_fail;
  const char *why = fail ? j->fail_why : j->retry_why;
  if (j->zp) {
    /* Zalo: the recipients' states across attempts decide. */
    bool pending = false, failed = false;
    for (size_t i = 0; i < j->zp->n; i++) {
      pending = pending || j->zp->state[i] == Z_PENDING;
      failed = failed || j->zp->state[i] == Z_FAILED;
    }
    retry = pending;
    fail = !pending && failed;
    /* The zprog may go below: keep the words in the job. */
    if (!pending) {
      memcpy(j->fail_why, j->zp->why, sizeof j->fail_why);
    }
    why = pending ? j->retry_why : j->fail_why;
  }
  enum deliver_outcome o = fail    ? DELIVER_FAILED
                           : retry ? DELIVER_RETRY
                                   : DELIVER_SENT;
  int64_t next_try = 0, delay = 0;
  if (o == DELIVER_RETRY && j->attempt >= j->max_attempts) {
    o = DELIVER_DEAD;
  } else if (o == DELIVER_RETRY) {
    delay = backoff_ms(dl, j->attempt, j->retry_min_ms, j->retry_max_ms);
    if (j->retry_after_ms > delay) {
      delay = j->retry_after_ms;
    }
    next_try = clock_realtime_ns() + delay * NS_PER_MS;
  }
  if (o != DELIVER_RETRY && j->zp) {
    zprog_drop(dl, j->id);
    j->zp = NULL;
  }
  int64_t took_ns = clock_mono_ns() - j->start_ns;
  const char *type = config_receiver_type_name(j->type);
  switch (o) {
    case DELIVER_SENT:
      log_info(LOG_MOD,
               "notification %016" PRIx64 " to %s (%s): sent in %lld ms", j->id,
               j->receiver, type, (long long)(took_ns / NS_PER_MS));
      break;
    case DELIVER_RETRY:
      log_warn(LOG_MOD,
               "notification %016" PRIx64
               " to %s (%s): retry %d/%d in %.1f s: "
               "%s (%s)",
               j->id, j->receiver, type, j->attempt, j->max_attempts,
               (double)delay / 1000.0, why, j->where ? j->where : "");
      break;
    case DELIVER_FAILED:
      log_error(LOG_MOD,
                "notification %016" PRIx64
                " to %s (%s): failed at attempt "
                "%d: %s (%s)",
                j->id, j->receiver, type, j->attempt, why,
                j->where ? j->where : "");
      break;
    case DELIVER_DEAD:
      log_error(LOG_MOD,
                "notification %016" PRIx64
                " to %s (%s): dead after %d "
                "attempts: %s (%s)",
                j->id, j->receiver, type, j->attempt, why,
                j->where ? j->where : "");
      break;
  }
  count(dl, j->receiver, o, (double)took_ns / (double)NS_PER_SEC);
  job_unlink(j);
  if (j->done) {
    j->done(j->ud, j->id, o, next_try, o == DELIVER_SENT ? NULL : why);
  }
  uv_close((uv_handle_t *)&j->timer, on_job_closed);
}

/* One part's answer. user is the Zalo recipient's index. */
static void part_done(struct job *j, struct payload_answer *ans, size_t user) {
  scrub(ans->message, sizeof ans->message, j->secret);
  switch (ans->verdict) {
    case PAYLOAD_OK:
      if (j->zp && user < j->zp->n) {
        j->zp->state[user] = Z_SENT;
      }
      break;
    case PAYLOAD_RETRY:
      if (!j->any_retry) {
        msgf(j->retry_why, sizeof j->retry_why, "%s", ans->message);
      }
      j->any_retry = true;
      if (ans->retry_after_ms > j->retry_after_ms) {
        j->retry_after_ms = ans->retry_after_ms;
      }
      break;
    case PAYLOAD_FAIL:
      if (!j->any_fail) {
        msgf(j->fail_why, sizeof j->fail_why, "%s", ans->message);
      }
      j->any_fail = true;
      if (j->zp && user < j->zp->n) {
        j->zp->state[user] = Z_FAILED;
        if (!j->zp->why[0]) {
          msgf(j->zp->why, sizeof j->zp->why, "%s", ans->message);
        }
      }
      break;
  }
  if (j->pending > 0) {
    j->pending--;
  }
  if (j->pending == 0 && !j->starting) {
    finish(j);
  }
}

/* A part that could not even start. */
static void part_error(struct job *j, enum payload_verdict v, size_t user,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void part_error(struct job *j, enum payload_verdict v, size_t user,
                       const char *fmt, ...) {
  struct payload_answer ans = {.verdict = v};
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ans.message, sizeof ans.message, fmt, ap);
  va_end(ap);
  j->pending++;
  part_done(j, &ans, user);
}

static void on_job_timer(uv_timer_t *t) {
  struct job *j = container_of(t, struct job, timer);
  if (j->pending > 0) {
    /* MQTT: the acknowledgements did not come in time. */
    orphan_pubs(j);
    struct payload_answer ans = {.verdict = PAYLOAD_RETRY};
    msgf(ans.message, sizeof ans.message,
         "the broker did not acknowledge within %d ms", j->timeout_ms);
    j->pending = 1;
    part_done(j, &ans, 0);
    return;
  }
  finish(j);
}

/* ---- HTTP and SMTP ---- */

/* CURLOPT_READFUNCTION of the e-mail upload. */
static size_t on_upload(char *p, size_t size, size_t n, void *ud) {
  struct req *r = ud;
  size_t room = size * n;
  size_t left = r->body.len - r->uploaded;
  size_t k = left < room ? left : room;
  memcpy(p, r->body.data + r->uploaded, k);
  r->uploaded += k;
  return k;
}

/* The SMTP transaction's result: a 5xx reply, a refused login or a server
 * without the STARTTLS that was required fail; the rest is retried. */
static void smtp_answer(CURLcode rc, long code, const char *errbuf,
                        struct payload_answer *ans) {
  memset(ans, 0, sizeof *ans);
  if (rc == CURLE_OK) {
    ans->verdict = PAYLOAD_OK;
    return;
  }
  const char *text = errbuf && errbuf[0] ? errbuf : curl_easy_strerror(rc);
  if (code > 0) {
    msgf(ans->message, sizeof ans->message, "SMTP %ld: %s", code, text);
  } else {
    msgf(ans->message, sizeof ans->message, "%s", text);
  }
  bool permanent = (code >= 500 && code < 600) || rc == CURLE_LOGIN_DENIED ||
                   rc == CURLE_USE_SSL_FAILED ||
                   rc == CURLE_UNSUPPORTED_PROTOCOL ||
                   rc == CURLE_URL_MALFORMAT;
  ans->verdict = permanent ? PAYLOAD_FAIL : PAYLOAD_RETRY;
}

/* A transfer ended (core/curl_loop.h calls this on the loop). */
static void on_req_done(void *ud, CURL *e, CURLcode rc) {
  struct req *r = ud;
  struct job *j = r->job;
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  struct payload_answer ans = {.verdict = PAYLOAD_RETRY};
  const char *body = r->ans.body.data ? r->ans.body.data : "";
  if (j->type == CONFIG_RECV_EMAIL) {
    smtp_answer(rc, status, r->ans.errbuf, &ans);
  } else if (rc != CURLE_OK) {
    msgf(ans.message, sizeof ans.message, "%s", curl_answer_error(&r->ans, rc));
  } else if (j->type == CONFIG_RECV_TELEGRAM) {
    payload_telegram_answer(status, body, r->ans.body.len, &ans);
  } else if (j->type == CONFIG_RECV_ZALO) {
    payload_zalo_answer(status, body, r->ans.body.len, &ans);
  } else {
    payload_http_answer(status, body, r->ans.body.len, &ans);
  }
  if (ans.verdict == PAYLOAD_RETRY && r->ans.retry_after[0]) {
    int64_t ms;
    if (curl_retry_after_parse(r->ans.retry_after,
                               clock_realtime_ns() / NS_PER_SEC,
                               RETRY_AFTER_CAP_MS, &ms) == IOCD_OK &&
        ms > ans.retry_after_ms) {
      ans.retry_after_ms = ms;
    }
  }
  size_t user = r->user;
  struct req **pp = &j->reqs;
  while (*pp != r) {
    pp = &(*pp)->next;
  }
  *pp = r->next;
  req_free(r);
  part_done(j, &ans, user);
}

static struct req *req_new(struct job *j) {
  struct req *r = calloc(1, sizeof *r);
  if (!r) {
    return NULL;
  }
  r->job = j;
  buf_init(&r->body, 0);
  curl_answer_init(&r->ans, RESP_MAX);
  r->easy = curl_easy_init();
  if (!r->easy) {
    free(r);
    return NULL;
  }
  return r;
}

static int add_header(struct curl_slist **l, const char *h) {
  struct curl_slist *n = curl_slist_append(*l, h);
  if (!n) {
    return IOCD_ENOMEM;
  }
  *l = n;
  return IOCD_OK;
}

/* Sets the options every transfer shares, then hands r to the curl loop;
 * on failure r is freed and the part recorded. */
static void req_start(struct job *j, struct req *r, const char *url,
                      const struct config_receiver *rcv) {
  CURL *e = r->easy;
  bool bad = false;
  bad |= curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK;
  bad |=
      curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)j->timeout_ms) != CURLE_OK;
  bad |= !curl_answer_setup(e, &r->ans, "iocd/" IOCD_VERSION);
  /* Only the protocols of the receiver's type, whatever the URL says. */
  bad |=
      curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR,
                       j->type == CONFIG_RECV_EMAIL ? "smtp,smtps"
                                                    : "http,https") != CURLE_OK;
  if (rcv->ca_file && *rcv->ca_file) {
    bad |= curl_easy_setopt(e, CURLOPT_CAINFO, rcv->ca_file) != CURLE_OK;
  }
  if (!rcv->tls_verify) {
    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK;
  }
  if (r->headers) {
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK;
  }
  size_t user = r->user;
  int rc =
      bad ? IOCD_ENOMEM : curl_loop_add(j->dl->curl, e, on_req_done, (void *)r);
  if (rc) {
    req_free(r);
    part_error(j, PAYLOAD_RETRY, user, "cannot start the request: %s",
               iocd_strerror(rc));
    return;
  }
  r->next = j->reqs;
  j->reqs = r;
  j->pending++;
}

/* A JSON POST of body (taken over) to url. */
static void post_json(struct job *j, const struct config_receiver *rcv,
                      const char *url, struct buf *body, const char *header,
                      size_t user) {
  struct req *r = req_new(j);
  if (!r) {
    buf_cleanup(body);
    part_error(j, PAYLOAD_RETRY, user, "out of memory");
    return;
  }
  r->user = user;
  r->body = *body;
  buf_init(body, 0);
  int rc = add_header(&r->headers, "Content-Type: application/json");
  if (!rc) {
    /* No "Expect: 100-continue" round trip. */
    rc = add_header(&r->headers, "Expect:");
  }
  for (size_t i = 0;
       !rc && rcv->type == CONFIG_RECV_WEBHOOK && i < rcv->nheaders; i++) {
    struct buf h;
    buf_init(&h, 0);
    rc = buf_printf(&h, "%s: %s", rcv->headers[i].key,
                    rcv->headers[i].value ? rcv->headers[i].value : "");
    if (!rc) {
      rc = add_header(&r->headers, h.data);
    }
    buf_cleanup(&h);
  }
  if (!rc && header) {
    rc = add_header(&r->headers, header);
  }
  if (!rc) {
    bool bad = curl_easy_setopt(r->easy, CURLOPT_POST, 1L) != CURLE_OK;
    bad |=
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body.data) != CURLE_OK;
    bad |= curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                            (curl_off_t)r->body.len) != CURLE_OK;
    rc = bad ? IOCD_ENOMEM : IOCD_OK;
  }
  if (rc) {
    req_free(r);
    part_error(j, PAYLOAD_RETRY, user, "out of memory");
    return;
  }
  req_start(j, r, url, rcv);
}

/* ---- the receiver types ---- */

static void start_webhook(struct job *j, const struct config_receiver *r,
                          const struct template_set *ts,
                          const struct notice *n) {
  struct buf body;
  buf_init(&body, 0);
  int rc =
      payload_webhook(ts, n, j->dl->external_url, clock_realtime_ns(), &body);
  if (rc || !r->url) {
    buf_cleanup(&body);
    part_error(j, PAYLOAD_FAIL, 0, "%s",
               rc ? iocd_strerror(rc) : "the receiver has no url");
    return;
  }
  post_json(j, r, r->url, &body, NULL, 0);
}

static void start_alertmanager(struct job *j, const struct config_receiver *r,
                               const struct template_set *ts,
                               const struct notice *n) {
  /* A firing alert stays active in Alertmanager until it is pushed again
   * or resolved: twice the repeat interval covers the dispatcher's next
   * reminder. */
  int64_t repeat = j->dl->cfg && j->dl->cfg->route.repeat_interval_ms > 0
                       ? j->dl->cfg->route.repeat_interval_ms
                       : DEFAULT_REPEAT_MS;
  int64_t ends = clock_realtime_ns() + 2 * repeat * NS_PER_MS;
  struct buf body, url;
  buf_init(&body, 0);
  buf_init(&url, 0);
  int rc = payload_alertmanager(ts, n, ends, &body);
  if (!rc && r->url) {
    rc = url_join(&url, r->url, NULL, "/api/v2/alerts");
  }
  if (rc || !r->url) {
    buf_cleanup(&body);
    buf_cleanup(&url);
    part_error(j, PAYLOAD_FAIL, 0, "%s",
               rc ? iocd_strerror(rc) : "the receiver has no url");
    return;
  }
  post_json(j, r, url.data, &body, NULL, 0);
  buf_cleanup(&url);
}

static void start_telegram(struct job *j, const struct config_receiver *r,
                           const struct template_set *ts,
                           const struct notice *n) {
  struct iocd_err err = {{0}};
  int rc = read_secret(r->token, r->token_file, &j->secret, &err);
  if (rc) {
    part_error(j, rc == IOCD_EIO ? PAYLOAD_RETRY : PAYLOAD_FAIL, 0, "%s",
               rc == IOCD_ENOTFOUND ? "no bot token" : err.msg);
    return;
  }
  struct buf body, url;
  buf_init(&body, 0);
  buf_init(&url, 0);
  rc = payload_telegram(ts, n, r->chat_id ? r->chat_id : "",
                        clock_realtime_ns(), &body);
  if (!rc) {
    rc = url_join(&url, r->base_url, "https://api.telegram.org",
                  "/bot%s/sendMessage", j->secret);
  }
  if (rc) {
    buf_cleanup(&body);
    buf_cleanup(&url);
    part_error(j, PAYLOAD_FAIL, 0, "%s", iocd_strerror(rc));
    return;
  }
  post_json(j, r, url.data, &body, NULL, 0);
  buf_cleanup(&url);
}

static void start_zalo(struct job *j, const struct config_receiver *r,
                       const struct template_set *ts, const struct notice *n) {
  struct deliver *dl = j->dl;
  if (r->nuser_ids == 0) {
    part_error(j, PAYLOAD_FAIL, 0, "no user_ids");
    return;
  }
  struct iocd_err err = {{0}};
  int rc = read_secret(r->token, r->token_file, &j->secret, &err);
  if (rc) {
    part_error(j, rc == IOCD_EIO ? PAYLOAD_RETRY : PAYLOAD_FAIL, 0, "%s",
               rc == IOCD_ENOTFOUND ? "no access token" : err.msg);
    return;
  }
  struct zprog *z = zprog_find(dl, j->id, NULL);
  if (z && z->n != r->nuser_ids) {
    /* The recipients changed with a reload: start over. */
    zprog_drop(dl, j->id);
    z = NULL;
  }
  if (!z) {
    z = calloc(1, sizeof *z);
    unsigned char *st = calloc(r->nuser_ids, 1);
    if (!z || !st) {
      free(z);
      free(st);
      part_error(j, PAYLOAD_RETRY, 0, "out of memory");
      return;
    }
    z->id = j->id;
    z->n = r->nuser_ids;
    z->state = st;
    z->next = dl->zprogs;
    dl->zprogs = z;
  }
  j->zp = z;
  struct buf url, header;
  buf_init(&url, 0);
  buf_init(&header, 0);
  rc = url_join(&url, r->base_url, "https://openapi.zalo.me",
                "/v3.0/oa/message/%s",
                r->zalo_api && *r->zalo_api ? r->zalo_api : "transaction");
  if (!rc) {
    rc = buf_printf(&header, "access_token: %s", j->secret);
  }
  for (size_t i = 0; !rc && i < z->n; i++) {
    if (z->state[i] != Z_PENDING) {
      continue;
    }
    struct buf body;
    buf_init(&body, 0);
    int brc = payload_zalo(ts, n, r->user_ids[i], clock_realtime_ns(), &body);
    if (brc) {
      buf_cleanup(&body);
      part_error(j, PAYLOAD_FAIL, i, "%s", iocd_strerror(brc));
      continue;
    }
    post_json(j, r, url.data, &body, header.data, i);
  }
  if (rc) {
    part_error(j, PAYLOAD_RETRY, SIZE_MAX, "%s", iocd_strerror(rc));
  }
  buf_cleanup(&url);
  buf_cleanup(&header);
}

static void start_email(struct job *j, const struct config_receiver *r,
                        const struct template_set *ts, const struct notice *n) {
  if (!r->smtp_url || !r->from || r->nto == 0) {
    part_error(j, PAYLOAD_FAIL, 0, "the receiver needs smtp_url, from and to");
    return;
  }
  struct iocd_err err = {{0}};
  int src = read_secret(r->password, r->password_file, &j->secret, &err);
  if (src && src != IOCD_ENOTFOUND) {
    part_error(j, PAYLOAD_RETRY, 0, "%s", err.msg);
    return;
  }
  struct req *q = req_new(j);
  if (!q) {
    part_error(j, PAYLOAD_RETRY, 0, "out of memory");
    return;
  }
  struct buf addr;
  buf_init(&addr, 0);
  int rc = payload_email(ts, n, r, clock_realtime_ns(), &q->body);
  if (!rc) {
    rc = payload_email_address(r->from, &addr);
  }
  bool bad = rc != IOCD_OK;
  if (!bad) {
    bad |= curl_easy_setopt(q->easy, CURLOPT_MAIL_FROM, addr.data) != CURLE_OK;
  }
  for (size_t i = 0; !bad && i < r->nto; i++) {
    buf_reset(&addr);
    rc = payload_email_address(r->to[i], &addr);
    bad = rc != IOCD_OK || add_header(&q->rcpts, addr.data) != IOCD_OK;
  }
  buf_cleanup(&addr);
  if (!bad) {
    CURL *e = q->easy;
    long ssl = r->smtp_tls == CONFIG_SMTP_TLS_STARTTLS ? (long)CURLUSESSL_ALL
               : r->smtp_tls == CONFIG_SMTP_TLS_NONE   ? (long)CURLUSESSL_NONE
                                                       : (long)CURLUSESSL_TRY;
    bad |= curl_easy_setopt(e, CURLOPT_MAIL_RCPT, q->rcpts) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_UPLOAD, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_READFUNCTION, on_upload) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_READDATA, (void *)q) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
                            (curl_off_t)q->body.len) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USE_SSL, ssl) != CURLE_OK;
    if (r->username && *r->username) {
      bad |= curl_easy_setopt(e, CURLOPT_USERNAME, r->username) != CURLE_OK;
      bad |= curl_easy_setopt(e, CURLOPT_PASSWORD,
                              j->secret ? j->secret : "") != CURLE_OK;
    }
  }
  if (bad) {
    req_free(q);
    part_error(j, rc == IOCD_EINVAL ? PAYLOAD_FAIL : PAYLOAD_RETRY, 0,
               "cannot build the message: %s",
               iocd_strerror(rc ? rc : IOCD_ENOMEM));
    return;
  }
  req_start(j, q, r->smtp_url, r);
}

/* ---- MQTT ---- */

static void on_published(void *ud, int rc) {
  struct pub *p = ud;
  struct job *j = p->job;
  if (j) {
    if (p->prev) {
      p->prev->next = p->next;
    } else {
      j->pubs = p->next;
    }
    if (p->next) {
      p->next->prev = p->prev;
    }
  }
  free(p);
  if (!j) {
    return;
  }
  struct payload_answer ans = {.verdict = PAYLOAD_OK};
  if (rc != IOCD_OK) {
    ans.verdict = PAYLOAD_RETRY;
    msgf(ans.message, sizeof ans.message, "the broker did not take it: %s",
         iocd_strerror(rc));
  }
  part_done(j, &ans, 0);
}

/* Publishes one message for j. Returns the publish callback's result. */
static int publish_one(struct job *j, const char *topic, const char *payload,
                       size_t len, int qos, bool retain) {
  struct deliver *dl = j->dl;
  struct pub *p = calloc(1, sizeof *p);
  if (!p) {
    return IOCD_ENOMEM;
  }
  p->job = j;
  p->next = j->pubs;
  if (j->pubs) {
    j->pubs->prev = p;
  }
  j->pubs = p;
  j->pending++;
  int rc = dl->publish(dl->publish_ud, topic, payload, len, qos, retain,
                       on_published, p);
  if (rc != IOCD_OK) {
    /* Not taken: done will not come. */
    if (p->prev) {
      p->prev->next = p->next;
    } else {
      j->pubs = p->next;
    }
    if (p->next) {
      p->next->prev = p->prev;
    }
    free(p);
    j->pending--;
  }
  return rc;
}

static void start_mqtt(struct job *j, const struct config_receiver *r,
                       const struct template_set *ts, const struct notice *n) {
  struct deliver *dl = j->dl;
  if (!dl->publish) {
    part_error(j, PAYLOAD_FAIL, 0, "no MQTT connection to publish on");
    return;
  }
  const char *prefix =
      r->topic_prefix && *r->topic_prefix ? r->topic_prefix : "ioc/alerts";
  struct buf topic, body;
  buf_init(&topic, 0);
  buf_init(&body, 0);
  for (size_t i = 0; i < n->nalerts; i++) {
    const struct notice_alert *a = &n->alerts[i];
    buf_reset(&topic);
    buf_reset(&body);
    int rc = payload_mqtt_topic(ts, prefix, a, &topic);
    if (!rc) {
      rc = payload_mqtt_body(ts, n, a, &body);
    }
    if (rc) {
      part_error(j, PAYLOAD_RETRY, 0, "%s", iocd_strerror(rc));
      break;
    }
    rc = publish_one(j, topic.data, body.data, body.len, r->qos, r->retain);
    if (!rc && a->status == NOTICE_RESOLVED && r->retain) {
      /* The wall that subscribes later sees only what still fires. */
      rc = publish_one(j, topic.data, "", 0, r->qos, true);
    }
    if (rc) {
      part_error(j, PAYLOAD_RETRY, 0, "cannot publish on %s: %s", topic.data,
                 iocd_strerror(rc));
      break;
    }
  }
  buf_cleanup(&topic);
  buf_cleanup(&body);
}

/* ---- the API ---- */

int deliver_new(const struct deliver_opts *opts, struct deliver **out,
                struct iocd_err *err) {
  *out = NULL;
  if (!opts->loop || !opts->curl || !opts->templates) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "deliver: a loop, a curl loop and templates are "
                        "needed");
  }
  struct deliver *dl = calloc(1, sizeof *dl);
  if (!dl) {
    return iocd_err_set(err, IOCD_ENOMEM, "deliver: out of memory");
  }
  dl->loop = opts->loop;
  dl->curl = opts->curl;
  dl->cfg = opts->cfg;
  dl->stats = opts->stats;
  dl->templates = opts->templates;
  dl->templates_ud = opts->templates_ud;
  dl->publish = opts->publish;
  dl->publish_ud = opts->publish_ud;
  dl->external_url = mem_strdup(opts->external_url ? opts->external_url : "");
  if (!dl->external_url) {
    free(dl);
    return iocd_err_set(err, IOCD_ENOMEM, "deliver: out of memory");
  }
  dl->rng = (uint64_t)clock_mono_ns() ^ ((uint64_t)(uintptr_t)dl << 16) ^
            UINT64_C(0x9E3779B97F4A7C15);
  if (dl->rng == 0) {
    dl->rng = 1;
  }
  uv_timer_init(dl->loop, &dl->close_timer);
  dl->open_handles = 1;
  *out = dl;
  return IOCD_OK;
}

void deliver_set_config(struct deliver *dl, const struct config_notify *cfg) {
  dl->cfg = cfg;
}

const struct config_receiver *deliver_receiver(const struct deliver *dl,
                                               const char *name) {
  for (size_t i = 0; dl->cfg && name && i < dl->cfg->nreceivers; i++) {
    if (strcmp(dl->cfg->receivers[i].name, name) == 0) {
      return &dl->cfg->receivers[i];
    }
  }
  return NULL;
}

static int intdef(int v, int dflt) {
  return v > 0 ? v : dflt;
}

int deliver_send(struct deliver *dl, const struct notice *n,
                 deliver_done_fn *done, void *ud) {
  if (dl->closing) {
    return IOCD_ECLOSED;
  }
  const struct config_receiver *r = deliver_receiver(dl, n->receiver);
  struct job *j = calloc(1, sizeof *j);
  if (!j) {
    return IOCD_ENOMEM;
  }
  j->receiver = mem_strdup(n->receiver ? n->receiver : "?");
  if (!j->receiver) {
    free(j);
    return IOCD_ENOMEM;
  }
  j->dl = dl;
  j->id = n->id;
  j->attempt = n->attempts + 1;
  j->done = done;
  j->ud = ud;
  j->start_ns = clock_mono_ns();
  j->type = r ? r->type : CONFIG_RECV_WEBHOOK;
  j->max_attempts = intdef(r ? r->max_attempts : 0, DEFAULT_MAX_ATTEMPTS);
  j->retry_min_ms = intdef(r ? r->retry_min_ms : 0, DEFAULT_RETRY_MIN_MS);
  j->retry_max_ms = intdef(r ? r->retry_max_ms : 0, DEFAULT_RETRY_MAX_MS);
  j->timeout_ms = intdef(r ? r->timeout_ms : 0, DEFAULT_TIMEOUT_MS);
  uv_timer_init(dl->loop, &j->timer);
  dl->open_handles++;
  j->next = dl->jobs;
  if (dl->jobs) {
    dl->jobs->prev = j;
  }
  dl->jobs = j;
  dl->njobs++;

  j->starting = true;
  const struct template_set *ts = r ? dl->templates(dl->templates_ud, r) : NULL;
  if (!r) {
    part_error(j, PAYLOAD_FAIL, 0, "no receiver \"%s\" in the configuration",
               j->receiver);
  } else if (!ts) {
    part_error(j, PAYLOAD_FAIL, 0, "no templates for the receiver");
  } else {
    switch (r->type) {
      case CONFIG_RECV_WEBHOOK:
        j->where = redact_url(r->url, false);
        start_webhook(j, r, ts, n);
        break;
      case CONFIG_RECV_ALERTMANAGER:
        j->where = redact_url(r->url, false);
        start_alertmanager(j, r, ts, n);
        break;
      case CONFIG_RECV_TELEGRAM: {
        struct buf w;
        buf_init(&w, 0);
        if (url_join(&w, r->base_url, "https://api.telegram.org",
                     "/bot***/sendMessage") == IOCD_OK) {
          j->where = redact_url(w.data, true);
        }
        buf_cleanup(&w);
        start_telegram(j, r, ts, n);
        break;
      }
      case CONFIG_RECV_ZALO: {
        struct buf w;
        buf_init(&w, 0);
        if (url_join(&w, r->base_url, "https://openapi.zalo.me",
                     "/v3.0/oa/message/%s",
                     r->zalo_api && *r->zalo_api ? r->zalo_api
                                                 : "transaction") == IOCD_OK) {
          j->where = redact_url(w.data, true);
        }
        buf_cleanup(&w);
        start_zalo(j, r, ts, n);
        break;
      }
      case CONFIG_RECV_EMAIL:
        j->where = redact_url(r->smtp_url, false);
        start_email(j, r, ts, n);
        break;
      case CONFIG_RECV_MQTT:
        j->where =
            mem_strdup(r->topic_prefix && *r->topic_prefix ? r->topic_prefix
                                                           : "ioc/alerts");
        start_mqtt(j, r, ts, n);
        break;
    }
  }
  j->starting = false;
  if (j->pending == 0) {
    /* Nothing out (nothing to publish, or it failed at once): the outcome
     * comes from the timer, not from within this call. */
    uv_timer_start(&j->timer, on_job_timer, 0, 0);
  } else if (j->type == CONFIG_RECV_MQTT && j->pubs) {
    uv_timer_start(&j->timer, on_job_timer, (uint64_t)j->timeout_ms, 0);
  }
  return IOCD_OK;
}

void deliver_forget(struct deliver *dl, uint64_t id) {
  for (struct job *j = dl->jobs; j; j = j->next) {
    if (j->id == id) {
      j->zp = NULL;
    }
  }
  zprog_drop(dl, id);
}

size_t deliver_inflight(const struct deliver *dl) {
  return dl->njobs;
}

static void on_close_timer_closed(uv_handle_t *h) {
  handle_closed(container_of((uv_timer_t *)h, struct deliver, close_timer));
}

void deliver_close(struct deliver *dl, deliver_closed_fn *closed, void *ud) {
  if (dl->closing) {
    return;
  }
  dl->closing = true;
  dl->closed = closed;
  dl->closed_ud = ud;
  while (dl->jobs) {
    struct job *j = dl->jobs;
    j->finished = true;
    for (struct req *r = j->reqs; r; r = r->next) {
      curl_loop_remove(dl->curl, r->easy);
    }
    orphan_pubs(j);
    uv_timer_stop(&j->timer);
    job_unlink(j);
    uv_close((uv_handle_t *)&j->timer, on_job_closed);
  }
  uv_close((uv_handle_t *)&dl->close_timer, on_close_timer_closed);
}
