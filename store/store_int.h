/*
 * What the files of store/ share: resolved settings, the queue interface (the
 * on-disk journal, or the in-memory queue), batches and the outbox
 * that schedules their requests, the output interface, and the pure helpers
 * (retry policy, backoff, URLs, gzip) that the unit tests exercise directly.
 *
 * Nothing here is public: the rest of iocd sees only store/store.h.
 */
#ifndef IOCD_STORE_STORE_INT_H
#define IOCD_STORE_STORE_INT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/stats.h"
#include "store/store.h"

/* ---- Defaults: the one place where a zero in struct config_influx becomes
 * the documented value (booleans are taken as they are). ---- */

#define STORE_DEFAULT_URL "http://127.0.0.1:8086"
#define STORE_DEFAULT_TIMEOUT_MS 10000
#define STORE_DEFAULT_BATCH_POINTS 5000
#define STORE_DEFAULT_BATCH_BYTES ((size_t)1 << 20)
#define STORE_DEFAULT_FLUSH_MS 1000
#define STORE_DEFAULT_RETRY_MIN_MS 500
#define STORE_DEFAULT_RETRY_MAX_MS 60000
#define STORE_DEFAULT_MAX_IN_FLIGHT 2
#define STORE_DEFAULT_BUFFER_BYTES ((size_t)64 << 20)

/* A Retry-After longer than this is taken as this: a misconfigured proxy
 * must not park the writer for days. */
#define STORE_RETRY_AFTER_CAP_MS (INT64_C(3600) * 1000)

/* The file output writes at most this much per uv_fs_write. */
#define STORE_FILE_CHUNK_BYTES ((size_t)1 << 20)

/* Outputs a store can have (influx, file); a bit per reader in the queue. */
#define STORE_MAX_OUTPUTS 4

/* The InfluxDB settings with defaults applied. Strings are borrowed from the
 * struct config they came from. */
struct influx_settings {
  const char *url; /* without trailing '/' handling: see store__influx_url */
  enum influx_api api;
  const char *database;
  const char *retention_policy;
  const char *username;
  const char *password;
  bool create_database;
  const char *org;
  const char *bucket;
  const char *token;
  bool gzip;
  int64_t timeout_ms;
  size_t batch_points;
  size_t batch_bytes;
  int64_t flush_ms;
  int64_t retry_min_ms;
  int64_t retry_max_ms;
  unsigned max_in_flight;
  size_t buffer_bytes;
  const char *ca_file;
  bool tls_verify;
  int64_t probe_ms; /* taken as it is: 0 turns the recovery probe off */
  char *owned;      /* after store__influx_settings_own: the strings' storage */
};

/* Fills out from ci; the strings are borrowed from ci. */
void store__influx_settings(const struct config_influx *ci,
                            struct influx_settings *out);

/* Copies the strings of st into storage of its own, so that st outlives
 * the config it came from. Returns IOCD_OK or IOCD_ENOMEM. */
int store__influx_settings_own(struct influx_settings *st);
void store__influx_settings_cleanup(struct influx_settings *st);

/* Checks what the writer cannot work without (a database for 1.x, an org and
 * a bucket for 2.x, an http(s) URL). Returns IOCD_OK or IOCD_EINVAL with err
 * naming the config key. */
int store__influx_validate(const struct influx_settings *st,
                           struct iocd_err *err);

/* ---- The alert history: a lane of its own ----
 *
 * When notifications.history names a database or a retention policy, the
 * `alerts` points (STORE_SOURCE_INTERNAL) are queued apart from the data, in
 * a journal of their own (STORE_HISTORY_DIR under data_dir; in memory with
 * journal.enabled false), and written by an InfluxDB writer of their own
 * (store__influx_history_ops) to that destination, one request at a time.
 * The data's writer never waits for it, and the service's intake pause
 * looks at the data's queue only. */

#define STORE_HISTORY_DIR "journal-history"
/* The history's writer: one request at a time, of at most this many points,
 * each followed by a pause of STORE_HISTORY_PACE times its duration. */
#define STORE_HISTORY_MAX_IN_FLIGHT 1
#define STORE_HISTORY_BATCH_POINTS 500
#define STORE_HISTORY_PACE 3
/* The history's queue takes the journal's (or influxdb.buffer's) limits, at
 * most these. */
#define STORE_HISTORY_MEMORY ((size_t)8 << 20)
#define STORE_HISTORY_MAX_BYTES ((uint64_t)128 << 20)
#define STORE_HISTORY_SEGMENT ((uint64_t)4 << 20)

/* True when InfluxDB is enabled and cfg's notifications.history gives the
 * `alerts` points a database or a retention policy of their own. */
bool store__history_wanted(const struct config *cfg);

/* The settings of the alert history's writer: influxdb's, written to
 * notifications.history.database (default influxdb.database) under
 * notifications.history.retention_policy (default: the database's default
 * policy when the history names a database, influxdb.retention_policy when
 * it does not); with api 2, history.database is the bucket. Without a
 * history in cfg, the data's destination. Requests are paced
 * (STORE_HISTORY_MAX_IN_FLIGHT, STORE_HISTORY_BATCH_POINTS). Strings are
 * borrowed from cfg. */
void store__history_settings(const struct config *cfg,
                             struct influx_settings *out);

/* store__influx_validate for the history's settings, and with api 2 a
 * retention policy without a database (a bucket has its own). Returns
 * IOCD_OK or IOCD_EINVAL with err naming the config key. */
int store__history_validate(const struct config *cfg, struct iocd_err *err);

/* ---- Batches ---- */

/* A run of consecutive queue records taken by one reader, laid out as one
 * request body. Each line is one point; line_off has npoints + 1 entries (the
 * last is len), so any range of lines is a contiguous slice of body.
 * line_src gives each line's source id (for per-subscription counts). The
 * batch owns all three arrays. first_seq and nrecords identify the records
 * for the queue's confirm. parts counts the outbox parts still open on it. */
struct sbatch {
  char *body;
  size_t len;
  size_t npoints;
  size_t *line_off;
  uint32_t *line_src;
  uint64_t first_seq;
  size_t nrecords;
  unsigned parts;
};

void store__batch_free(struct sbatch *b);

/* ---- The queue: encoded records in arrival order, read by several readers
 * (one per output) at their own pace. A record leaves the queue when every
 * reader has confirmed it. Two implementations: the on-disk journal
 * (journal.c, journal_int.h) and the in-memory queue (queue.c). ---- */

/* How much one reader has not taken yet. oldest_ms is the append time of the
 * oldest record not taken (meaningless when points is 0). not_before_ms,
 * when not 0, asks the reader not to take before that loop time (the
 * journal paces a backlog); 0 means no such limit. */
struct qlevel {
  size_t points;
  size_t bytes;
  size_t records;
  int64_t oldest_ms;
  int64_t not_before_ms;
};

/* How a reader batches, told to the queue so that the journal can send a
 * backlog alongside live records that are due by the same rules. */
struct qpace {
  size_t batch_points;
  size_t batch_bytes;
  int64_t flush_ms;
};

struct queue;

struct queue_ops {
  /* Appends one record: len bytes of line protocol, npoints lines whose end
   * offsets (relative to data) are line_end[0..npoints-1]. Returns IOCD_OK,
   * IOCD_EFULL (nothing queued) or IOCD_ENOMEM. */
  int (*append)(struct queue *q, const char *data, size_t len,
                const uint32_t *line_end, uint32_t npoints, uint32_t source,
                int64_t now_ms);
  void (*level)(struct queue *q, unsigned reader, struct qlevel *out);
  /* Takes the next records for reader as one batch: as many whole records
   * as fit in max_points and max_bytes, and always at least one. *out is
   * NULL when nothing is left. Returns IOCD_OK or IOCD_ENOMEM (nothing
   * taken). */
  int (*take)(struct queue *q, unsigned reader, size_t max_points,
              size_t max_bytes, struct sbatch **out);
  /* The reader is done with the records of b (written or dropped): they
   * leave the queue once every reader is. b stays the caller's. */
  void (*confirm)(struct queue *q, unsigned reader, const struct sbatch *b);
  /* Points and bytes of every record still held. */
  void (*totals)(const struct queue *q, uint64_t *points, uint64_t *bytes);
  void (*set_limit)(struct queue *q, size_t max_bytes);
  void (*free)(struct queue *q);
  /* Optional (NULL in the memory queue): how reader batches. */
  void (*pace)(struct queue *q, unsigned reader, const struct qpace *p);
  /* Optional: how full the queue is, 0..1 (store_fill); without it the
   * store divides the bytes held by the limit. */
  double (*fill)(const struct queue *q);
  /* Optional: false, with the reason in why (n bytes), while the queue
   * cannot keep what it is given (the journal's disk is full), for
   * /ready. */
  bool (*healthy)(const struct queue *q, char *why, size_t n);
};

struct queue {
  const struct queue_ops *ops;
};

/* The in-memory queue: at most max_bytes of line protocol, nreaders readers
 * (1..STORE_MAX_OUTPUTS). Returns NULL when memory runs out. */
struct queue *store__memq_new(size_t max_bytes, unsigned nreaders);

/* True when the lines not taken yet should be sealed into a batch now: at
 * least batch_points points, batch_bytes bytes, or the oldest one waited
 * flush_ms. Otherwise *due_ms is when it will be (INT64_MAX if never). */
bool store__batch_due(const struct qlevel *lv, size_t batch_points,
                      size_t batch_bytes, int64_t flush_ms, int64_t now_ms,
                      int64_t *due_ms);

/* ---- The outbox: the batches an output has taken, cut into parts (ranges
 * of lines sent as one request), in queue order. A part that failed and
 * waits for a retry holds back every later part that has not been sent yet,
 * so that data reaches the server in the order it arrived. ---- */

enum part_state {
  PART_READY,     /* to send */
  PART_INFLIGHT,  /* a request is out */
  PART_WAIT,      /* failed, retried at not_before_ms */
  PART_ABANDONED, /* given up at shutdown; its batch stays unconfirmed */
};

struct part {
  struct part *prev, *next;
  struct sbatch *batch;
  size_t l0, l1; /* lines [l0, l1) of batch */
  enum part_state state;
  bool failed;          /* a retryable failure is not resolved yet */
  unsigned attempts;    /* failed attempts so far */
  unsigned close_fails; /* failures since shutdown began */
  int64_t not_before_ms;
};

struct outbox {
  struct part *head, *tail;
  size_t nparts;
  size_t ninflight;
};

void store__outbox_init(struct outbox *ob);

/* Appends batch b as one part covering all its lines, using storage p
 * (allocated by the caller beforehand, so that taking a batch from the queue
 * can never fail after the fact). */
void store__outbox_push(struct outbox *ob, struct part *p, struct sbatch *b);

/* The next part to send at now_ms, or NULL. *gated is set when a failed part
 * holds back the rest; *wake_ms is lowered to when a waiting part is due. */
struct part *store__outbox_next(struct outbox *ob, int64_t now_ms,
                                int64_t *wake_ms, bool *gated);

/* p's request is out. */
void store__outbox_sent(struct outbox *ob, struct part *p);

/* p is resolved (written or dropped) and removed. Returns its batch when no
 * part of it is left (the caller confirms and frees it), else NULL. */
struct sbatch *store__outbox_finish(struct outbox *ob, struct part *p);

/* p failed and is retried at not_before_ms. */
void store__outbox_retry(struct outbox *ob, struct part *p,
                         int64_t not_before_ms);

/* Cuts p (at least two lines) into halves, both ready, in order. Returns
 * IOCD_OK or IOCD_ENOMEM (p unchanged but no longer in flight). */
int store__outbox_split(struct outbox *ob, struct part *p);

/* p is given up (shutdown): it neither gates nor gets sent again. */
void store__outbox_abandon(struct outbox *ob, struct part *p);

/* Makes every waiting part due at now_ms (shutdown ignores backoff). */
void store__outbox_wake_all(struct outbox *ob, int64_t now_ms);

/* True when no part is ready, waiting or in flight. */
bool store__outbox_idle(const struct outbox *ob);

/* Frees every part and each batch once. */
void store__outbox_cleanup(struct outbox *ob);

/* ---- Retry policy ---- */

enum write_action {
  ACT_WRITTEN,   /* 2xx */
  ACT_RETRY,     /* network, timeout, 408, 429, 5xx: backoff */
  ACT_RETRY_FIX, /* 401, 403, 404, other 3xx/4xx: backoff, an admin fixes */
  ACT_SPLIT,     /* 400, 413, 422 with several lines: halves */
  ACT_DROP,      /* 400, 413, 422 with one line: rejected */
};

/* status is the HTTP status (ignored when !transport_ok). */
enum write_action store__classify(long status, bool transport_ok,
                                  size_t nlines);

/* "2xx", "4xx", "5xx", "3xx", "1xx" or "network". */
const char *store__status_class(long status, bool transport_ok);

/* Exponential backoff with full jitter: the ceiling is min_ms * 2^attempt,
 * capped at max_ms, and the delay is uniform in [min_ms, ceiling], drawn
 * from rnd. attempt 0 is the first retry. */
int64_t store__backoff_ms(int64_t min_ms, int64_t max_ms, unsigned attempt,
                          uint64_t rnd);

/* A xorshift64* step; *state must not be 0. */
uint64_t store__rand(uint64_t *state);

/* ---- The recovery probe ----
 *
 * While writes fail in a way that says InfluxDB may be away (a network
 * error, a timeout, 5xx), the writer asks GET {url}/ping every
 * probe_interval, one request at a time. When /ping answers 2xx after
 * InfluxDB was seen away since the last resume (a probe without an answer
 * or with 5xx, or a write that could not connect at all), the backoff
 * waits are cut short and what waits is sent at once. A /ping that answers
 * all along says nothing the failing writes do not (an overloaded server
 * answers /ping and times out writes): the backoff stands then, so a
 * server that is there is never hammered. An answer that refuses the write
 * (408, 429, 4xx) ends the probing: the server is there. */

enum probe_outcome {
  PROBE_UP,    /* 2xx: InfluxDB answers */
  PROBE_DOWN,  /* no answer (refused, timeout, ...) or 5xx */
  PROBE_OTHER, /* any other status: says nothing either way */
  NPROBE_OUTCOMES
};

struct probe_state {
  bool failing;     /* a request failed since the last success */
  bool active;      /* the last failure is one the probe can see through */
  bool seen_down;   /* InfluxDB was seen away since the last resume */
  int64_t since_ms; /* when the requests started failing */
};

/* The `outcome` label of o: "up", "down", "other". */
const char *store__probe_outcome_name(enum probe_outcome o);

/* What a /ping answer means: status is the HTTP status, res curl's
 * result. */
enum probe_outcome store__probe_outcome(long status, CURLcode res);

/* True when a failed request shows by itself that InfluxDB is away: curl
 * could not connect, or not resolve the host. */
bool store__probe_shows_down(CURLcode res);

/* A write (or CREATE DATABASE) failed at now_ms with status and res:
 * probing starts (network error or 5xx) or stops (any other answer). */
void store__probe_failed(struct probe_state *ps, long status, CURLcode res,
                         int64_t now_ms);

/* A /ping ended with o. Returns true when the writer should stop waiting
 * and send now (InfluxDB answers after it was seen away); the evidence is
 * used up then, so the next resume needs InfluxDB seen away again. */
bool store__probe_answer(struct probe_state *ps, enum probe_outcome o);

/* A request worked (or got an answer about its data): nothing to probe. */
void store__probe_reset(struct probe_state *ps);

/* ---- HTTP helpers ---- */

/* {url}/write?db=..[&rp=..]&precision=ns for 1.x, {url}/api/v2/write?org=..
 * &bucket=..&precision=ns for 2.x, parameters percent-encoded with
 * curl_easy_escape. A trailing '/' of url is dropped. Returns IOCD_OK or a
 * buf/ENOMEM error. */
int store__influx_url(struct buf *out, const struct influx_settings *st);

/* {url}/query (1.x), for CREATE DATABASE. */
int store__influx_query_url(struct buf *out, const struct influx_settings *st);

/* {url}/ping (1.x and 2.x), for the recovery probe. */
int store__influx_ping_url(struct buf *out, const struct influx_settings *st);

/* The form body `q=CREATE DATABASE "db"`, percent-encoded, with `"` and `\`
 * in the name escaped for InfluxQL. */
int store__create_db_body(struct buf *out, const char *db);

/* gzip (RFC 1952) of in into out (appended). Returns IOCD_OK, IOCD_ENOMEM,
 * IOCD_ETOOBIG or IOCD_EIO. */
int store__gzip(struct buf *out, const char *in, size_t len);

/* The human part of an InfluxDB answer: the "error" member of a JSON body
 * (also inside "results"; "message" for 2.x), else the body itself;
 * truncated to fit out, with control characters replaced by spaces. Returns
 * true when the body carried such an error member. */
bool store__error_text(const char *body, size_t len, char *out, size_t n);

/* ---- Outputs ---- */

struct store;
struct output;

struct output_ops {
  /* the `output` label: "influxdb", "influxdb_history", "file"; also the
   * name of its journal checkpoint */
  const char *name;
  /* Creates the output as reader `reader` of q (the queue of its lane,
   * borrowed: it outlives the output). */
  struct output *(*create)(struct store *s, struct queue *q, unsigned reader,
                           const struct config *cfg, struct iocd_err *err);
  /* New records were queued. */
  void (*notify)(struct output *o);
  /* Applies new settings to future requests. */
  int (*reconfigure)(struct output *o, const struct config *cfg,
                     struct iocd_err *err);
  /* Optional: false (with the reason in why) while the output is failing,
   * for /ready. */
  bool (*healthy)(const struct output *o, char *why, size_t n);
  /* Shutdown, first step: send everything now; call store__output_drained
   * once nothing is left to try. */
  void (*drain)(struct output *o, int64_t deadline_ms);
  /* Shutdown, last step: abort what is in flight, close every handle, free
   * o, then call store__output_closed (possibly before returning). */
  void (*close)(struct output *o);
};

extern const struct output_ops store__influx_ops;
/* The alert history's InfluxDB writer (store__history_settings). */
extern const struct output_ops store__influx_history_ops;
extern const struct output_ops store__file_ops;

struct output {
  const struct output_ops *ops;
  struct store *store;
  struct queue *q; /* the queue it reads */
  unsigned reader;
  bool primary; /* the first reader of q: its writes count per subscription */
  bool drained;
};

/* A subscription, by name, as the store has seen it: the counters of points
 * written and dropped for it. Ids are indices into store->sources and never
 * change, so records queued before a reload keep their meaning. */
struct source {
  char *name;
  struct metric *written;
  struct metric *dropped;
  struct metric *waiting;  /* gauge: not yet confirmed by the primary */
  struct metric *replayed; /* found in the journal at start */
  struct metric *jdropped; /* deleted from a full journal (drop_oldest) */
  struct metric *refused_full;
  struct metric *refused_error;
  uint64_t nwaiting;
};

struct store {
  uv_loop_t *loop;
  const struct config *cfg;
  struct stats *stats;
  struct queue *q; /* the data's queue */
  bool journal;    /* q (and hq) are on-disk journals */
  /* The alert history's queue, read by its own InfluxDB writer; NULL
   * without a history lane. With route_history false it only drains what
   * an earlier run journaled for a history no longer configured, and the
   * `alerts` points go to q. */
  struct queue *hq;
  bool route_history;
  /* Every output of both lanes; each knows its queue. */
  struct output *outs[STORE_MAX_OUTPUTS];
  unsigned nouts;

  struct source *sources;
  size_t nsources;
  uint32_t *src_map; /* subscription index -> source id */
  size_t nsrc_map;
  uint32_t internal_src; /* the source of STORE_SOURCE_INTERNAL points */
  /* The source of STORE_SOURCE_SELF points, made at their first append so
   * that a configuration without self-metrics has no series for it. */
  uint32_t self_src;
  bool has_self_src;

  struct buf scratch; /* one message's line protocol */
  uint32_t *line_end; /* one message's line ends */
  size_t cap_line_end;

  uv_timer_t timer; /* shutdown deadline; its close frees the store */
  bool closing;
  bool finishing;
  unsigned nopen; /* outputs not closed yet */
  store_closed_fn *close_cb;
  void *close_ud;
  uint64_t unwritten;

  struct metric *queue_points;
  struct metric *queue_bytes;
};

/* Called by outputs. */
void store__count_written(struct store *s, struct output *o,
                          const struct sbatch *b, size_t l0, size_t l1);
void store__count_dropped(struct store *s, struct output *o,
                          const struct sbatch *b, size_t l0, size_t l1,
                          const char *reason);
/* Confirms b to the queue for o and frees it. */
void store__confirm(struct store *s, struct output *o, struct sbatch *b);
void store__output_drained(struct store *s, struct output *o);
void store__output_closed(struct store *s);

/* Writes " (N similar messages suppressed)" into buf when held > 0, else
 * an empty string; returns buf. For rate-limited log lines. */
const char *store__suppressed(char *buf, size_t n, uint32_t held);
/* The same on a buffer that lives as long as the enclosing block. */
#define SUPPRESSED(held) store__suppressed((char[48]){0}, 48, (held))

/* Milliseconds of the loop clock. */
int64_t store__now_ms(const struct store *s);

#endif
