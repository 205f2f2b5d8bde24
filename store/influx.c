/*
 * The InfluxDB output: line protocol POSTed to /write (1.x) or /api/v2/write
 * (2.x) with libcurl's multi interface driven by the uv loop
 * (core/curl_loop.h).
 *
 * Batches are taken from the queue when they are due (points, bytes or age)
 * and a request slot is free; the outbox sends them in queue order, splits
 * them on 400/413/422 until a rejected line is alone (then drops it), and
 * retries the rest with backoff, holding later data back until a failed
 * part is through. docs/store.md has the policy table.
 *
 * While writes fail because InfluxDB may be away, a recovery probe asks
 * GET {url}/ping every influxdb.probe_interval, and when InfluxDB answers
 * again after it was seen away the backoff waits are cut short
 * (store__probe_answer has the rule).
 *
 * Two instances may run: the data's writer ("influxdb") and the alert
 * history's ("influxdb_history", store__history_settings), each on the
 * queue of its own lane, with its own requests, probe and series.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/clock.h"
#include "core/container.h"
#include "core/curl_loop.h"
#include "core/err.h"
#include "core/log.h"
#include "store/store_int.h"

/* The part of an answer body kept for the log: InfluxDB's errors are one
 * short JSON object. */
#define RESP_MAX 4096
/* A rejected line is logged up to this many bytes. */
#define LOG_LINE_MAX 200
#define LOG_BURST 5
#define LOG_WINDOW_MS 10000
/* A /ping gets at most the output's timeout, and at most the probe
 * interval (but a second at least): a server that hangs must not hold the
 * next probe back for long. */
#define PROBE_TIMEOUT_MIN_MS 1000

struct influx;

enum req_kind { REQ_WRITE, REQ_CREATE_DB, REQ_PING };

struct request {
  struct request *prev, *next;
  struct influx *ix;
  enum req_kind kind;
  CURL *easy;
  struct curl_slist *headers;
  struct buf body; /* gzip'd points, or the CREATE DATABASE form */
  struct curl_answer ans;
  struct part *part; /* REQ_WRITE */
  int64_t start_ns;
};

enum {
  CLASS_1XX,
  CLASS_2XX,
  CLASS_3XX,
  CLASS_4XX,
  CLASS_5XX,
  CLASS_NET,
  NCLASSES
};

struct influx {
  struct output base;
  uv_loop_t *loop;
  bool history;    /* the alert history's writer */
  const char *who; /* "InfluxDB" or "InfluxDB (alert history)", for logs */
  struct influx_settings st;
  struct buf write_url;
  struct buf query_url;
  struct buf ping_url;
  struct buf auth; /* "Authorization: Token ..." (2.x) */
  struct curl_loop *curl;
  uv_timer_t wake_timer;  /* batch age and retry delays */
  uv_timer_t probe_timer; /* the next /ping while writes fail */
  unsigned open_handles;  /* both timers and curl, not closed yet */
  struct request *reqs;
  struct outbox box;

  bool db_ready; /* CREATE DATABASE done (or not wanted) */
  bool ddl_inflight;
  unsigned ddl_attempts;
  unsigned ddl_close_fails;
  int64_t ddl_not_before;

  /* The alert history's writer sends nothing before this loop time: it
   * paces itself by the duration of its last request. */
  int64_t quiet_until_ms;

  struct probe_state probe;
  bool probe_inflight;

  uint64_t failures; /* failed requests since the last success */
  uint64_t rng;
  struct log_limit fail_lim;
  struct log_limit reject_lim;

  bool draining;
  bool closing;
  int64_t deadline_ms;

  struct metric *written;
  struct metric *retries;
  struct metric *up;
  struct metric *latency;
  struct metric *requests[NCLASSES];
  struct metric *probes[NPROBE_OUTCOMES];
  struct metric *resumes;
};

static void pump(struct influx *ix);
static void check_drained(struct influx *ix);
static void set_pace(struct influx *ix);
static void probe_schedule(struct influx *ix);

static int64_t now_ms(const struct influx *ix) {
  return store__now_ms(ix->base.store);
}

static bool need_db(const struct influx *ix) {
  return ix->st.api == INFLUX_V1 && ix->st.create_database && !ix->db_ready;
}

/* Points of this writer's lane not written yet. */
static size_t pending_points(const struct influx *ix) {
  uint64_t points, bytes;
  ix->base.q->ops->totals(ix->base.q, &points, &bytes);
  return (size_t)points;
}

/* ---- closing ---- */

static void final_free(struct influx *ix) {
  struct store *s = ix->base.store;
  buf_cleanup(&ix->write_url);
  buf_cleanup(&ix->query_url);
  buf_cleanup(&ix->ping_url);
  buf_cleanup(&ix->auth);
  store__influx_settings_cleanup(&ix->st);
  free(ix);
  curl_global_cleanup();
  store__output_closed(s);
}

static void one_closed(struct influx *ix) {
  if (--ix->open_handles == 0 && ix->closing) {
    final_free(ix);
  }
}

static void on_handle_closed(uv_handle_t *h) {
  one_closed(h->data);
}

static void on_curl_closed(void *ud) {
  one_closed(ud);
}

/* ---- requests ---- */

static void request_free(struct request *r) {
  if (!r) {
    return;
  }
  struct influx *ix = r->ix;
  if (r->prev) {
    r->prev->next = r->next;
  } else if (ix->reqs == r) {
    ix->reqs = r->next;
  }
  if (r->next) {
    r->next->prev = r->prev;
  }
  if (r->easy) {
    curl_easy_cleanup(r->easy);
  }
  curl_slist_free_all(r->headers);
  buf_cleanup(&r->body);
  curl_answer_cleanup(&r->ans);
  free(r);
}

static struct request *request_new(struct influx *ix, enum req_kind kind) {
  struct request *r = calloc(1, sizeof *r);
  if (!r) {
    return NULL;
  }
  r->ix = ix;
  r->kind = kind;
  buf_init(&r->body, 0);
  curl_answer_init(&r->ans, RESP_MAX);
  r->easy = curl_easy_init();
  if (!r->easy) {
    free(r);
    return NULL;
  }
  return r;
}

static int add_header(struct request *r, const char *h) {
  struct curl_slist *l = curl_slist_append(r->headers, h);
  if (!l) {
    return IOCD_ENOMEM;
  }
  r->headers = l;
  return IOCD_OK;
}

static void on_request_done(void *ud, CURL *e, CURLcode res);

/* How long a /ping may take. */
static int64_t probe_timeout_ms(const struct influx_settings *st) {
  int64_t t =
      st->probe_ms > PROBE_TIMEOUT_MIN_MS ? st->probe_ms : PROBE_TIMEOUT_MIN_MS;
  return t < st->timeout_ms ? t : st->timeout_ms;
}

/* Sets the options every request shares and hands it to the curl loop: a
 * POST of body (which must outlive the transfer: curl does not copy
 * POSTFIELDS), or a GET when body is NULL. */
static int request_start(struct influx *ix, struct request *r, const char *url,
                         const char *body, size_t len) {
  CURL *e = r->easy;
  const struct influx_settings *st = &ix->st;
  int64_t timeout = r->kind == REQ_PING ? probe_timeout_ms(st) : st->timeout_ms;
  bool bad = false;
  bad |= curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK;
  if (body) {
    bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, body) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) !=
           CURLE_OK;
  } else {
    bad |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) != CURLE_OK;
  }
  bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout) != CURLE_OK;
  bad |= !curl_answer_setup(e, &r->ans, "iocd/" IOCD_VERSION);
  if (st->api == INFLUX_V1 && st->username && *st->username) {
    bad |=
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERNAME, st->username) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PASSWORD,
                            st->password ? st->password : "") != CURLE_OK;
  }
  if (st->ca_file && *st->ca_file) {
    bad |= curl_easy_setopt(e, CURLOPT_CAINFO, st->ca_file) != CURLE_OK;
  }
  if (!st->tls_verify) {
    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK;
  }
  if (bad) {
    return IOCD_ENOMEM;
  }
  r->start_ns = clock_mono_ns();
  int rc = curl_loop_add(ix->curl, e, on_request_done, r);
  if (rc) {
    return rc;
  }
  r->next = ix->reqs;
  if (ix->reqs) {
    ix->reqs->prev = r;
  }
  ix->reqs = r;
  return IOCD_OK;
}

static int64_t backoff(struct influx *ix, unsigned attempt) {
  return store__backoff_ms(ix->st.retry_min_ms, ix->st.retry_max_ms, attempt,
                           store__rand(&ix->rng));
}

/* ---- CREATE DATABASE ---- */

static void start_create_db(struct influx *ix) {
  struct request *r = request_new(ix, REQ_CREATE_DB);
  int rc = r ? IOCD_OK : IOCD_ENOMEM;
  if (!rc) {
    rc = store__create_db_body(&r->body, ix->st.database);
  }
  if (!rc) {
    rc = add_header(r, "Content-Type: application/x-www-form-urlencoded");
  }
  if (!rc) {
    rc = add_header(r, "Expect:");
  }
  if (!rc) {
    rc = request_start(ix, r, ix->query_url.data, r->body.data, r->body.len);
  }
  if (rc) {
    request_free(r);
    log_error("store", "influxdb: out of memory; will try again");
    ix->ddl_not_before = now_ms(ix) + ix->st.retry_min_ms;
    return;
  }
  ix->ddl_inflight = true;
}

static void recovered(struct influx *ix) {
  stat_set(ix->up, 1);
  store__probe_reset(&ix->probe);
  probe_schedule(ix);
  if (ix->failures > 0) {
    log_info("store",
             "%s writes recovered after %llu failures, %zu points waiting",
             ix->who, (unsigned long long)ix->failures, pending_points(ix));
    ix->failures = 0;
  }
}

static void ddl_done(struct influx *ix, struct request *r, CURLcode res,
                     long status) {
  ix->ddl_inflight = false;
  char text[256];
  bool refused =
      store__error_text(r->ans.body.data, r->ans.body.len, text, sizeof text);
  bool transport_ok = res == CURLE_OK;
  enum write_action act = store__classify(status, transport_ok, 1);
  if (act == ACT_WRITTEN && !refused) {
    ix->db_ready = true;
    ix->ddl_attempts = 0;
    recovered(ix);
    log_info("store", "InfluxDB database \"%s\" is there (CREATE DATABASE)",
             ix->st.database);
    return;
  }
  if (act != ACT_RETRY) {
    /* The server answered and refused (no admin rights, ...). The
     * database may exist all the same: the writes will tell. */
    stat_set(ix->up, 1);
    ix->db_ready = true;
    store__probe_reset(&ix->probe);
    probe_schedule(ix);
    log_error("store",
              "InfluxDB: CREATE DATABASE \"%s\" failed: HTTP %ld: %s; "
              "writing anyway: create the database by hand or give "
              "influxdb.username admin rights",
              ix->st.database, status, text[0] ? text : "(no message)");
    return;
  }
  stat_set(ix->up, 0);
  ix->failures++;
  int64_t now = now_ms(ix);
  store__probe_failed(&ix->probe, status, res, now);
  probe_schedule(ix);
  int64_t delay = backoff(ix, ix->ddl_attempts++);
  if (ix->draining) {
    if (++ix->ddl_close_fails >= 2) {
      ix->db_ready = true;
      return;
    }
    delay = ix->st.retry_min_ms;
  }
  ix->ddl_not_before = now + delay;
  uint32_t held = 0;
  if (log_limit_allow(&ix->fail_lim, now, LOG_BURST, LOG_WINDOW_MS, &held)) {
    log_warn("store",
             "InfluxDB: CREATE DATABASE \"%s\" failed: %s; retry in %.1f s%s",
             ix->st.database,
             transport_ok ? text : (curl_answer_error(&r->ans, res)),
             (double)delay / 1000.0, SUPPRESSED(held));
  }
}

/* ---- writes ---- */

static void finish_part(struct influx *ix, struct part *p) {
  struct sbatch *b = store__outbox_finish(&ix->box, p);
  if (b) {
    store__confirm(ix->base.store, &ix->base, b);
  }
}

static void log_rejected(struct influx *ix, const struct part *p, long status,
                         const char *text) {
  uint32_t held = 0;
  if (!log_limit_allow(&ix->reject_lim, now_ms(ix), LOG_BURST, LOG_WINDOW_MS,
                       &held)) {
    return;
  }
  const struct sbatch *b = p->batch;
  const char *line = b->body + b->line_off[p->l0];
  size_t len = b->line_off[p->l0 + 1] - b->line_off[p->l0];
  while (len > 0 && line[len - 1] == '\n') {
    len--;
  }
  bool cut = len > LOG_LINE_MAX;
  if (cut) {
    len = LOG_LINE_MAX;
    /* Do not cut a UTF-8 sequence in half. */
    while (len > 0 && ((unsigned char)line[len] & 0xC0) == 0x80) {
      len--;
    }
  }
  log_error("store",
            "InfluxDB rejected a point, dropped: HTTP %ld: %s: %.*s%s%s",
            status, text[0] ? text : "(no message)", (int)len, line,
            cut ? "..." : "", SUPPRESSED(held));
}

static void log_failure(struct influx *ix, const struct request *r,
                        CURLcode res, long status, const char *text,
                        size_t npoints, int64_t delay) {
  uint32_t held = 0;
  if (!log_limit_allow(&ix->fail_lim, now_ms(ix), LOG_BURST, LOG_WINDOW_MS,
                       &held)) {
    return;
  }
  double secs = (double)delay / 1000.0;
  const char *msg = text[0] ? text : "(no message)";
  if (res != CURLE_OK) {
    log_warn("store",
             "%s write to %s failed: %s; %zu points kept, retry in %.1f s%s",
             ix->who, ix->st.url, curl_answer_error(&r->ans, res), npoints,
             secs, SUPPRESSED(held));
  } else if (status == 401 || status == 403) {
    log_error("store",
              "%s refused the write: HTTP %ld: %s: check %s and that "
              "this user may write; %zu points kept, retry in %.1f s%s",
              ix->who, status, msg,
              ix->st.api == INFLUX_V2
                  ? "influxdb.token"
                  : "influxdb.username and influxdb.password",
              npoints, secs, SUPPRESSED(held));
  } else if (status == 404 && ix->st.api == INFLUX_V1) {
    log_error("store",
              "%s: database \"%s\" not found (HTTP 404: %s): %s; %zu "
              "points kept, retry in %.1f s%s",
              ix->who, ix->st.database, msg,
              ix->st.create_database
                  ? "running CREATE DATABASE again"
                  : "create it, or set influxdb.create_database",
              npoints, secs, SUPPRESSED(held));
  } else if (status == 404) {
    log_error("store",
              "%s: org \"%s\" or bucket \"%s\" not found (HTTP 404: "
              "%s): create them or fix influxdb.org and influxdb.bucket; "
              "%zu points kept, retry in %.1f s%s",
              ix->who, ix->st.org, ix->st.bucket, msg, npoints, secs,
              SUPPRESSED(held));
  } else if (status >= 500 || status == 429 || status == 408) {
    log_warn("store",
             "%s write failed: HTTP %ld: %s; %zu points kept, retry "
             "in %.1f s%s",
             ix->who, status, msg, npoints, secs, SUPPRESSED(held));
  } else {
    log_error("store",
              "%s answered HTTP %ld: %s: check influxdb.url (%s); %zu "
              "points kept, retry in %.1f s%s",
              ix->who, status, msg, ix->st.url, npoints, secs,
              SUPPRESSED(held));
  }
}

/* A retryable failure of p: back off, at least as long as Retry-After
 * asks; at shutdown try once more if the deadline allows, then give up. */
static void write_failed(struct influx *ix, struct part *p,
                         const struct request *r, CURLcode res, long status,
                         const char *text) {
  stat_set(ix->up, 0);
  ix->failures++;
  int64_t now = now_ms(ix);
  if (r) {
    store__probe_failed(&ix->probe, status, res, now);
    probe_schedule(ix);
  }
  int64_t delay = backoff(ix, p->attempts);
  int64_t asked;
  if (r && r->ans.retry_after[0] &&
      curl_retry_after_parse(r->ans.retry_after,
                             clock_realtime_ns() / NS_PER_SEC,
                             STORE_RETRY_AFTER_CAP_MS, &asked) == IOCD_OK &&
      asked > delay) {
    delay = asked;
  }
  if (status == 404 && res == CURLE_OK && ix->st.api == INFLUX_V1 &&
      ix->st.create_database) {
    ix->db_ready = false;
    ix->ddl_not_before = now;
  }
  size_t npoints = p->l1 - p->l0;
  if (ix->draining) {
    delay = ix->st.retry_min_ms;
    if (++p->close_fails >= 2 || now + delay >= ix->deadline_ms) {
      store__outbox_abandon(&ix->box, p);
      log_warn("store", "%s write failed at shutdown: %zu points not written",
               ix->who, npoints);
      return;
    }
  }
  stat_inc(ix->retries);
  if (r) {
    log_failure(ix, r, res, status, text, npoints, delay);
  }
  store__outbox_retry(&ix->box, p, now + delay);
}

static void count_request(struct influx *ix, long status, bool ok) {
  int k = CLASS_NET;
  if (ok) {
    k = status >= 500   ? CLASS_5XX
        : status >= 400 ? CLASS_4XX
        : status >= 300 ? CLASS_3XX
        : status >= 200 ? CLASS_2XX
                        : CLASS_1XX;
  }
  stat_inc(ix->requests[k]);
}

static void write_done(struct influx *ix, struct request *r, CURLcode res,
                       long status) {
  struct part *p = r->part;
  struct store *s = ix->base.store;
  bool transport_ok = res == CURLE_OK;
  size_t nlines = p->l1 - p->l0;
  int64_t took_ns = clock_mono_ns() - r->start_ns;
  stat_observe(ix->latency, (double)took_ns / (double)NS_PER_SEC);
  if (ix->history) {
    /* InfluxDB works on a burst of new alert series for about as long as
     * it takes to answer, and a while after: the history leaves it alone
     * STORE_HISTORY_PACE times as long, so that the data's writes are
     * never queued behind alert points for long. */
    ix->quiet_until_ms = now_ms(ix) + took_ns / NS_PER_MS * STORE_HISTORY_PACE;
  }
  count_request(ix, status, transport_ok);
  char text[256];
  store__error_text(r->ans.body.data, r->ans.body.len, text, sizeof text);

  switch (store__classify(status, transport_ok, nlines)) {
    case ACT_WRITTEN:
      recovered(ix);
      stat_add(ix->written, nlines);
      store__count_written(s, &ix->base, p->batch, p->l0, p->l1);
      finish_part(ix, p);
      break;
    case ACT_SPLIT:
      recovered(ix);
      log_debug("store",
                "InfluxDB refused a batch of %zu points (HTTP %ld: %s): "
                "sending it in halves",
                nlines, status, text);
      if (store__outbox_split(&ix->box, p) != IOCD_OK) {
        log_error("store", "influxdb: out of memory; will try again");
        write_failed(ix, p, NULL, res, status, text);
      }
      break;
    case ACT_DROP:
      recovered(ix);
      log_rejected(ix, p, status, text);
      store__count_dropped(s, &ix->base, p->batch, p->l0, p->l1, "rejected");
      finish_part(ix, p);
      break;
    case ACT_RETRY:
    case ACT_RETRY_FIX:
      write_failed(ix, p, r, res, status, text);
      break;
  }
}

static void send_part(struct influx *ix, struct part *p) {
  const struct sbatch *b = p->batch;
  const char *body = b->body + b->line_off[p->l0];
  size_t len = b->line_off[p->l1] - b->line_off[p->l0];
  struct request *r = request_new(ix, REQ_WRITE);
  int rc = r ? IOCD_OK : IOCD_ENOMEM;
  if (!rc && ix->st.gzip) {
    rc = store__gzip(&r->body, body, len);
    if (!rc) {
      body = r->body.data;
      len = r->body.len;
      rc = add_header(r, "Content-Encoding: gzip");
    }
  }
  if (!rc) {
    rc = add_header(r, "Content-Type: text/plain; charset=utf-8");
  }
  if (!rc) {
    /* No "Expect: 100-continue" round trip before large bodies. */
    rc = add_header(r, "Expect:");
  }
  if (!rc && ix->auth.len) {
    rc = add_header(r, ix->auth.data);
  }
  if (!rc) {
    r->part = p;
    rc = request_start(ix, r, ix->write_url.data, body, len);
  }
  if (rc) {
    request_free(r);
    log_error("store", "influxdb: cannot start a request: %s; will try again",
              iocd_strerror(rc));
    store__outbox_sent(&ix->box, p);
    write_failed(ix, p, NULL, CURLE_OUT_OF_MEMORY, 0, "");
    return;
  }
  store__outbox_sent(&ix->box, p);
}

/* ---- the recovery probe ---- */

/* InfluxDB answers /ping after it was seen away: everything that waits for
 * its backoff is due now. */
static void resume(struct influx *ix) {
  int64_t now = now_ms(ix);
  stat_inc(ix->resumes);
  log_info("store",
           "%s answers /ping again after %.1f s: writing resumes, %zu "
           "points waiting",
           ix->who, (double)(now - ix->probe.since_ms) / 1000.0,
           pending_points(ix));
  store__outbox_wake_all(&ix->box, now);
  if (need_db(ix) && !ix->ddl_inflight) {
    ix->ddl_not_before = now;
  }
  /* The alert history's pause follows its last request, which failed: no
   * reason to keep InfluxDB waiting for it. */
  ix->quiet_until_ms = now;
}

static void ping_done(struct influx *ix, CURLcode res, long status) {
  ix->probe_inflight = false;
  enum probe_outcome o = store__probe_outcome(status, res);
  stat_inc(ix->probes[o]);
  if (store__probe_answer(&ix->probe, o)) {
    resume(ix);
  }
  probe_schedule(ix);
}

static void start_ping(struct influx *ix) {
  struct request *r = request_new(ix, REQ_PING);
  int rc = r ? IOCD_OK : IOCD_ENOMEM;
  if (!rc && ix->auth.len) {
    rc = add_header(r, ix->auth.data);
  }
  if (!rc) {
    rc = request_start(ix, r, ix->ping_url.data, NULL, 0);
  }
  if (rc) {
    request_free(r);
    log_error("store", "influxdb: cannot start a /ping: %s; will try again",
              iocd_strerror(rc));
    return;
  }
  ix->probe_inflight = true;
}

static void on_probe_timer(uv_timer_t *t) {
  struct influx *ix = container_of(t, struct influx, probe_timer);
  if (!ix->probe_inflight && ix->probe.active && !ix->draining &&
      !ix->closing) {
    start_ping(ix);
  }
  probe_schedule(ix);
}

/* Keeps the probe timer running while writes fail in a way the probe can
 * see through and no /ping is out; stops it otherwise. */
static void probe_schedule(struct influx *ix) {
  if (ix->closing) {
    return;
  }
  bool want = ix->st.probe_ms > 0 && ix->probe.active && !ix->draining &&
              !ix->probe_inflight;
  if (!want) {
    uv_timer_stop(&ix->probe_timer);
  } else if (!uv_is_active((uv_handle_t *)&ix->probe_timer)) {
    uv_timer_start(&ix->probe_timer, on_probe_timer, (uint64_t)ix->st.probe_ms,
                   0);
  }
}

/* A request ended (core/curl_loop.h calls this on the loop). */
static void on_request_done(void *ud, CURL *e, CURLcode res) {
  struct request *r = ud;
  struct influx *ix = r->ix;
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  switch (r->kind) {
    case REQ_WRITE:
      write_done(ix, r, res, status);
      break;
    case REQ_CREATE_DB:
      ddl_done(ix, r, res, status);
      break;
    case REQ_PING:
      ping_done(ix, res, status);
      break;
  }
  request_free(r);
  pump(ix);
  check_drained(ix);
}

/* Takes the next batch when it is due. Returns true when one was added. */
static bool take_batch(struct influx *ix, int64_t now, int64_t *wake) {
  struct queue *q = ix->base.q;
  struct qlevel lv;
  q->ops->level(q, ix->base.reader, &lv);
  if (lv.points == 0) {
    return false;
  }
  if (lv.not_before_ms > now) {
    /* The journal paces a backlog (journal.replay_rate). */
    if (lv.not_before_ms < *wake) {
      *wake = lv.not_before_ms;
    }
    return false;
  }
  int64_t due;
  if (!ix->draining &&
      !store__batch_due(&lv, ix->st.batch_points, ix->st.batch_bytes,
                        ix->st.flush_ms, now, &due)) {
    if (due < *wake) {
      *wake = due;
    }
    return false;
  }
  struct part *p = malloc(sizeof *p);
  struct sbatch *b = NULL;
  if (!p ||
      q->ops->take(q, ix->base.reader, ix->st.batch_points, ix->st.batch_bytes,
                   &b) != IOCD_OK ||
      !b) {
    free(p);
    if (now + ix->st.retry_min_ms < *wake) {
      *wake = now + ix->st.retry_min_ms;
    }
    return false;
  }
  store__outbox_push(&ix->box, p, b);
  return true;
}

static void on_wake(uv_timer_t *t) {
  struct influx *ix = container_of(t, struct influx, wake_timer);
  pump(ix);
  check_drained(ix);
}

static void pump(struct influx *ix) {
  if (ix->closing) {
    return;
  }
  int64_t now = now_ms(ix);
  int64_t wake = INT64_MAX;
  if (need_db(ix)) {
    if (!ix->ddl_inflight) {
      if (now >= ix->ddl_not_before) {
        start_create_db(ix);
      } else {
        wake = ix->ddl_not_before;
      }
    }
  } else if (ix->history && !ix->draining && now < ix->quiet_until_ms) {
    wake = ix->quiet_until_ms;
  } else {
    while (ix->box.ninflight < ix->st.max_in_flight) {
      bool gated;
      struct part *p = store__outbox_next(&ix->box, now, &wake, &gated);
      if (!p) {
        if (gated || !take_batch(ix, now, &wake)) {
          break;
        }
        continue;
      }
      send_part(ix, p);
    }
  }
  if (wake == INT64_MAX) {
    uv_timer_stop(&ix->wake_timer);
  } else {
    uv_timer_start(&ix->wake_timer, on_wake,
                   (uint64_t)(wake > now ? wake - now : 0), 0);
  }
}

static void check_drained(struct influx *ix) {
  if (!ix->draining || ix->closing || ix->base.drained) {
    return;
  }
  if (ix->box.ninflight > 0 || ix->ddl_inflight ||
      !store__outbox_idle(&ix->box)) {
    return;
  }
  struct queue *q = ix->base.q;
  struct qlevel lv;
  q->ops->level(q, ix->base.reader, &lv);
  if (lv.records == 0) {
    store__output_drained(ix->base.store, &ix->base);
  }
}

/* ---- the output ---- */

/* The settings, URLs and header of the data's writer, or with history of
 * the alert history's, from cfg. */
static int build(const struct config *cfg, bool history,
                 struct influx_settings *st, struct buf *wurl, struct buf *qurl,
                 struct buf *purl, struct buf *auth, struct iocd_err *err) {
  if (history) {
    store__history_settings(cfg, st);
  } else {
    store__influx_settings(&cfg->influx, st);
  }
  int rc = store__influx_validate(st, err);
  if (rc) {
    return rc;
  }
  rc = store__influx_settings_own(st);
  if (!rc) {
    rc = store__influx_url(wurl, st);
  }
  if (!rc) {
    rc = store__influx_query_url(qurl, st);
  }
  if (!rc) {
    rc = store__influx_ping_url(purl, st);
  }
  if (!rc && st->api == INFLUX_V2 && st->token && *st->token) {
    rc = buf_printf(auth, "Authorization: Token %s", st->token);
  }
  if (rc) {
    store__influx_settings_cleanup(st);
    return iocd_err_set(err, rc, "store: influxdb: %s", iocd_strerror(rc));
  }
  return IOCD_OK;
}

static struct output *create(struct store *s, struct queue *q, unsigned reader,
                             const struct config *cfg, bool history,
                             struct iocd_err *err) {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    iocd_err_set(err, IOCD_EIO, "store: influxdb: curl_global_init failed");
    return NULL;
  }
  struct influx *ix = calloc(1, sizeof *ix);
  if (!ix) {
    curl_global_cleanup();
    iocd_err_set(err, IOCD_ENOMEM, "store: out of memory");
    return NULL;
  }
  ix->base.ops = history ? &store__influx_history_ops : &store__influx_ops;
  ix->base.store = s;
  ix->base.q = q;
  ix->base.reader = reader;
  ix->history = history;
  ix->who = history ? "InfluxDB (alert history)" : "InfluxDB";
  ix->loop = s->loop;
  buf_init(&ix->write_url, 0);
  buf_init(&ix->query_url, 0);
  buf_init(&ix->ping_url, 0);
  buf_init(&ix->auth, 0);
  store__outbox_init(&ix->box);
  ix->rng = (uint64_t)clock_mono_ns() ^ ((uint64_t)(uintptr_t)ix << 16) ^
            UINT64_C(0x9E3779B97F4A7C15);
  if (ix->rng == 0) {
    ix->rng = 1;
  }
  if (build(cfg, history, &ix->st, &ix->write_url, &ix->query_url,
            &ix->ping_url, &ix->auth, err) != IOCD_OK) {
    buf_cleanup(&ix->write_url);
    buf_cleanup(&ix->query_url);
    buf_cleanup(&ix->ping_url);
    buf_cleanup(&ix->auth);
    free(ix);
    curl_global_cleanup();
    return NULL;
  }
  ix->curl = curl_loop_new(ix->loop);
  if (!ix->curl) {
    store__influx_settings_cleanup(&ix->st);
    buf_cleanup(&ix->write_url);
    buf_cleanup(&ix->query_url);
    buf_cleanup(&ix->ping_url);
    buf_cleanup(&ix->auth);
    free(ix);
    curl_global_cleanup();
    iocd_err_set(err, IOCD_ENOMEM, "store: out of memory");
    return NULL;
  }
  uv_timer_init(ix->loop, &ix->wake_timer);
  ix->wake_timer.data = ix;
  uv_timer_init(ix->loop, &ix->probe_timer);
  ix->probe_timer.data = ix;
  ix->open_handles = 3;

  struct stats *st = s->stats;
  const char *out = ix->base.ops->name;
  ix->written =
      stats_counter(st, "iocd_points_written_total",
                    "Points written, by output.", "output", out, NULL);
  /* Registered now so that the series shows 0 before the first drop;
   * store__count_dropped counts it. */
  (void)stats_counter(st, "iocd_points_dropped_total",
                      "Points an output gave up on, by reason.", "output", out,
                      "reason", "rejected", NULL);
  ix->retries = stats_counter(st, "iocd_write_retries_total",
                              "Write requests scheduled again after a "
                              "failure.",
                              "output", out, NULL);
  /* The data's writer without a label, as before there was a history's;
   * the history's with its output label. */
  ix->up = stats_gauge(st, "iocd_influxdb_up",
                       "1 when the last InfluxDB request got an answer "
                       "that was not a failure.",
                       history ? "output" : NULL, out, NULL);
  static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                  0.5,   1,    2.5,   5,    10,  30};
  ix->latency = stats_histogram(
      st, "iocd_write_batch_seconds", "Duration of InfluxDB write requests.",
      bounds, sizeof bounds / sizeof bounds[0], "output", out, NULL);
  static const char *const classes[NCLASSES] = {"1xx", "2xx", "3xx",
                                                "4xx", "5xx", "network"};
  for (int i = 0; i < NCLASSES; i++) {
    ix->requests[i] = stats_counter(st, "iocd_write_requests_total",
                                    "Write requests, by output and outcome.",
                                    "output", out, "status", classes[i], NULL);
  }
  for (int i = 0; i < NPROBE_OUTCOMES; i++) {
    ix->probes[i] = stats_counter(
        st, "iocd_influx_probes_total",
        "GET /ping requests of the recovery probe while writes fail, by "
        "output and outcome.",
        "output", out, "outcome", store__probe_outcome_name(i), NULL);
  }
  ix->resumes = stats_counter(st, "iocd_influx_probe_resumes_total",
                              "Backoff waits cut short because InfluxDB "
                              "answered /ping again.",
                              "output", out, NULL);
  ix->db_ready = !(ix->st.api == INFLUX_V1 && ix->st.create_database);
  set_pace(ix);
  return &ix->base;
}

static struct output *influx_create(struct store *s, struct queue *q,
                                    unsigned reader, const struct config *cfg,
                                    struct iocd_err *err) {
  return create(s, q, reader, cfg, false, err);
}

static struct output *history_create(struct store *s, struct queue *q,
                                     unsigned reader, const struct config *cfg,
                                     struct iocd_err *err) {
  return create(s, q, reader, cfg, true, err);
}

/* Tells the queue how this output batches (the journal interleaves a
 * backlog with live records that are due by these rules). */
static void set_pace(struct influx *ix) {
  struct queue *q = ix->base.q;
  if (q && q->ops->pace) {
    struct qpace p = {
        .batch_points = ix->st.batch_points,
        .batch_bytes = ix->st.batch_bytes,
        .flush_ms = ix->st.flush_ms,
    };
    q->ops->pace(q, ix->base.reader, &p);
  }
}

static void influx_notify(struct output *o) {
  pump(container_of(o, struct influx, base));
}

static bool influx_healthy(const struct output *o, char *why, size_t n) {
  const struct influx *ix = container_of(o, struct influx, base);
  if (ix->failures == 0) {
    return true;
  }
  snprintf(why, n,
           "%s writes failing (%llu failed requests in a row, %zu "
           "points waiting)",
           ix->who, (unsigned long long)ix->failures, pending_points(ix));
  return false;
}

static int influx_reconfigure(struct output *o, const struct config *cfg,
                              struct iocd_err *err) {
  struct influx *ix = container_of(o, struct influx, base);
  if (!cfg->influx.enabled) {
    return IOCD_OK;
  }
  struct influx_settings st;
  struct buf wurl, qurl, purl, auth;
  buf_init(&wurl, 0);
  buf_init(&qurl, 0);
  buf_init(&purl, 0);
  buf_init(&auth, 0);
  int rc = build(cfg, ix->history, &st, &wurl, &qurl, &purl, &auth, err);
  if (rc) {
    buf_cleanup(&wurl);
    buf_cleanup(&qurl);
    buf_cleanup(&purl);
    buf_cleanup(&auth);
    return rc;
  }
  bool moved = strcmp(wurl.data, ix->write_url.data) != 0;
  bool had = ix->st.api == INFLUX_V1 && ix->st.create_database;
  bool want = st.api == INFLUX_V1 && st.create_database;
  buf_cleanup(&ix->write_url);
  buf_cleanup(&ix->query_url);
  buf_cleanup(&ix->ping_url);
  buf_cleanup(&ix->auth);
  store__influx_settings_cleanup(&ix->st);
  ix->write_url = wurl;
  ix->query_url = qurl;
  ix->ping_url = purl;
  ix->auth = auth;
  ix->st = st;
  if (!want) {
    ix->db_ready = true;
  } else if (moved || !had) {
    /* Another server or database: make sure it exists there too. */
    ix->db_ready = false;
    ix->ddl_not_before = 0;
  }
  set_pace(ix);
  /* A new probe_interval applies from the next /ping on. */
  uv_timer_stop(&ix->probe_timer);
  probe_schedule(ix);
  pump(ix);
  return IOCD_OK;
}

static void influx_drain(struct output *o, int64_t deadline_ms) {
  struct influx *ix = container_of(o, struct influx, base);
  ix->draining = true;
  ix->deadline_ms = deadline_ms;
  probe_schedule(ix);
  int64_t now = now_ms(ix);
  store__outbox_wake_all(&ix->box, now);
  ix->ddl_not_before = now;
  pump(ix);
  check_drained(ix);
}

static void influx_close(struct output *o) {
  struct influx *ix = container_of(o, struct influx, base);
  ix->closing = true;
  uv_timer_stop(&ix->wake_timer);
  uv_timer_stop(&ix->probe_timer);
  size_t aborted = 0;
  while (ix->reqs) {
    struct request *r = ix->reqs;
    curl_loop_remove(ix->curl, r->easy);
    if (r->kind == REQ_WRITE) {
      aborted++;
    }
    request_free(r);
  }
  if (aborted) {
    log_warn("store", "%s: %zu requests aborted at shutdown", ix->who, aborted);
  }
  store__outbox_cleanup(&ix->box);
  curl_loop_close(ix->curl, on_curl_closed, ix);
  ix->curl = NULL;
  uv_close((uv_handle_t *)&ix->wake_timer, on_handle_closed);
  uv_close((uv_handle_t *)&ix->probe_timer, on_handle_closed);
}

const struct output_ops store__influx_ops = {
    .name = "influxdb",
    .create = influx_create,
    .notify = influx_notify,
    .reconfigure = influx_reconfigure,
    .healthy = influx_healthy,
    .drain = influx_drain,
    .close = influx_close,
};

const struct output_ops store__influx_history_ops = {
    .name = "influxdb_history",
    .create = history_create,
    .notify = influx_notify,
    .reconfigure = influx_reconfigure,
    .healthy = influx_healthy,
    .drain = influx_drain,
    .close = influx_close,
};
