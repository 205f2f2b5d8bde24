/*
 * Test harness for integration tests: real mosquitto and influxd servers on
 * free loopback ports, each with its own temporary directory, and the iocd
 * binary run as a black box. Every function is blocking and meant for tests
 * only. Functions return 0 on success and -1 on failure (with a message on
 * stderr), so tests can cr_assert_eq(h_..., 0).
 */
#ifndef IOCD_TESTS_HARNESS_H
#define IOCD_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Creates a fresh directory /tmp/iocd-test-XXXXXX; out holds at least 64. */
int h_tmpdir(char *out, size_t n);

/* Removes a directory tree (for cleanup at the end of a test). */
void h_rmtree(const char *path);

/* A free TCP port on 127.0.0.1 (bound to port 0, read back, released). */
int h_free_port(void);

struct h_mosquitto {
  pid_t pid;
  int port;
  char dir[256]; /* its config, persistence and log */
};

/* Starts mosquitto on a free port with persistence in its own directory
 * (dir NULL: a new temporary one) and waits until it accepts connections.
 * extra_conf lines are appended to its config (may be NULL).
 * The broker runs as root, saves its state every second and at exit (so
 * sessions and queued QoS 1/2 messages survive a restart), queues up to
 * 100000 messages per session, and logs to DIR/mosquitto.log connections,
 * subscriptions ("<client id> <qos> <filter>") and unsubscriptions
 * ("<client id> <filter>"), which tests may wait for. */
int h_mosquitto_start(struct h_mosquitto *m, const char *dir,
                      const char *extra_conf);
/* SIGTERM and wait; keeps the directory (a restart reuses it). */
void h_mosquitto_stop(struct h_mosquitto *m);
/* Stops and starts again on the same port and directory. */
int h_mosquitto_restart(struct h_mosquitto *m);

struct h_influxd {
  pid_t pid;
  int port;
  int rpc_port;
  char dir[256];
  char url[64]; /* http://127.0.0.1:PORT */
};

/* Starts influxd on free ports with its data in its own directory and waits
 * for /ping to answer 204. */
int h_influxd_start(struct h_influxd *d, const char *dir);
void h_influxd_stop(struct h_influxd *d);
int h_influxd_restart(struct h_influxd *d);

/* Runs an InfluxQL statement (POST /query) and returns the JSON answer in
 * *json (malloc'd, caller frees). db may be NULL. */
int h_influx_query(const struct h_influxd *d, const char *db, const char *q,
                   char **json);

/* Runs q and returns the first value of the first series as a double
 * (for SELECT count(...) and the like). Returns -1 if absent. */
int h_influx_scalar(const struct h_influxd *d, const char *db, const char *q,
                    double *out);

/* Publishes one message with libmosquitto (blocking, waits for the
 * acknowledgement at QoS 1 and 2). content_type may be NULL (MQTT 5). */
int h_publish(int port, const char *topic, const void *payload, size_t len,
              int qos, const char *content_type);

/* Publishes payload at QoS 1 with the retain flag set (blocking); an empty
 * payload clears the retained message of topic. */
int h_publish_retained(int port, const char *topic, const char *payload);

/* A persistent publisher for tests that send many messages: one MQTT 5
 * connection, publishes pipelined. h_pub_open connects (blocking) and returns
 * NULL on failure; h_pub_send queues one message (waiting only when too many
 * are unacknowledged); h_pub_flush waits until every message sent so far is
 * acknowledged (QoS 1 and 2) or written (QoS 0); h_pub_close disconnects and
 * frees p (NULL is allowed). */
struct h_pub;
struct h_pub *h_pub_open(int port, const char *client_id);
int h_pub_send(struct h_pub *p, const char *topic, const void *payload,
               size_t len, int qos);
int h_pub_flush(struct h_pub *p);
void h_pub_close(struct h_pub *p);

/* Waits until 127.0.0.1:port accepts a TCP connection, at most timeout_ms
 * (for a second listener given in extra_conf). */
int h_wait_port(int port, int timeout_ms);

struct h_iocd {
  pid_t pid;
  char config[512]; /* the config file path */
  char log[512];    /* its stderr */
};

/* Writes the config text to DIR/iocd.jsonc and starts the iocd binary on it,
 * with stderr to DIR/iocd.log. Does not wait for readiness. */
int h_iocd_start(struct h_iocd *p, const char *dir, const char *config_text);
/* As h_iocd_start, with iocd run by a wrapper command: wrapper is a
 * NULL-terminated argv (e.g. strace and its options) to which the iocd
 * binary, "-c" and the config path are appended. p->pid is the wrapper's. */
int h_iocd_start_via(struct h_iocd *p, const char *dir, const char *config_text,
                     const char *const *wrapper);
/* Sends sig and waits up to timeout_ms; returns the exit status (or 128+sig
 * when killed by a signal), or -1 on timeout (then SIGKILLs). */
int h_iocd_stop(struct h_iocd *p, int sig, int timeout_ms);
/* True when the iocd log contains needle. */
bool h_iocd_log_contains(const struct h_iocd *p, const char *needle);
/* Waits until the log contains needle, at most timeout_ms. */
int h_iocd_wait_log(const struct h_iocd *p, const char *needle, int timeout_ms);

/* Polls pred every 50 ms until it returns true or timeout_ms passes. */
int h_wait_until(bool (*pred)(void *ud), void *ud, int timeout_ms);

struct buf;

/* Sleeps ms milliseconds (restarting after signals). */
void h_sleep_ms(long ms);

/* GET http://127.0.0.1:PORT/path, appending the body to out (core/buf.h).
 * Returns the HTTP status, or 0 when no answer came within 5 s. */
long h_http_get(int port, const char *path, struct buf *out);

/* method (GET, POST, DELETE, ...) of path on 127.0.0.1:port, with body
 * (NULL: none; else sent as application/json): the HTTP status (0: no
 * answer within 5 s), the answer appended to out (out->data a string). */
long h_http_request(int port, const char *method, const char *path,
                    const char *body, struct buf *out);

/* The value of one series on iocd's /metrics at port (the exact name and
 * labels as rendered, e.g. iocd_rejects_total{subscription="igate",...}),
 * or -1 when absent or /metrics does not answer. */
double h_metric(int port, const char *series);

/* Writes a throwaway PKI into dir with openssl: a CA (ca.crt, ca.key), a
 * server certificate for localhost and 127.0.0.1 (server.crt, server.key)
 * and a client certificate (client.crt, client.key, CN=iocd) signed by it,
 * and an unrelated CA (other.crt). openssl's output goes to
 * dir/openssl.log. Returns 0, or -1 when a step failed. */
int h_make_pki(const char *dir);

/* Path of the iocd binary under test (from the build). */
const char *h_iocd_bin(void);

/* ---- Files and text, for tests that adapt the shipped files ---- */

/* The whole file at path, NUL-terminated and malloc'd (caller frees);
 * *len (may be NULL) gets its length without the NUL. NULL when it cannot
 * be read. */
char *h_read_file(const char *path, size_t *len);

/* Writes text to path, created or truncated. */
int h_write_file(const char *path, const char *text);

/* Replaces the first occurrence of from in *text (malloc'd, reallocated
 * here) with to. -1, *text unchanged, when from is not in it. */
int h_text_replace(char **text, const char *from, const char *to);

/* Replaces the first from in *text, and everything after it up to (not
 * including) the first to that follows it, with with. -1, *text
 * unchanged, when either is missing. */
int h_text_cut(char **text, const char *from, const char *to, const char *with);

struct h_env;

/* How h_example_config adapts the example to a test that ends in a minute.
 * Caller storage; {0} keeps the example's values. */
struct h_example_opts {
  /* Every rule's "for" (online_share_low's 30m, overdue_backlog_high's
   * 15m, resolved_ratio_low's 1h); NULL: as written. */
  const char *rule_for;
  /* feed_silent's silence (age(_source.seen) > 10m); NULL: 10m. */
  const char *silent_after;
  /* rule_engine.evaluation_interval; NULL: as written (15s). */
  const char *evaluation_interval;
  /* self_metrics.interval; NULL: as written (10s). */
  const char *self_metrics_interval;
  /* limits.silent_after, the silent periods of the feed quality; NULL: as
   * written (10m). */
  const char *limits_silent_after;
  /* Office hours all day every day, no holidays and no make-up days, so
   * that simulated counters grow whenever a test runs. */
  bool always_office;
};

/* The example configuration (config/iocd.example.jsonc) with e's servers
 * (mqtt.port, influxdb.url, api.listen), data_dir in e->dir, and its rule
 * file config/rules/daklak.jsonc copied to e->dir/rules.jsonc; both adapted
 * as o says (o may be NULL). Returns the configuration's text, malloc'd
 * (caller frees; h_iocd_start takes it), or NULL when a file cannot be
 * read or written or the example no longer holds a text that is adapted
 * (named on stderr). */
char *h_example_config(const struct h_env *e, const struct h_example_opts *o);

/* Everything an end-to-end test runs against: a temporary directory for
 * iocd (its config, logs and data_dir), mosquitto and influxd on free ports,
 * a free port for iocd's API, and iocd once started. Caller storage;
 * h_env_start fills it, h_env_stop releases it. */
struct h_env {
  char dir[256];
  struct h_mosquitto mq;
  struct h_influxd db;
  struct h_iocd iocd;
  int api_port;
  int runs; /* iocd starts so far (the earlier logs are iocd.log.N) */
  /* Read by h_env_config, set after h_env_start: the InfluxDB URL iocd
   * writes to (NULL: db's) and more members of its "influxdb" section, such
   * as "\"batch_points\": 1000" (NULL: none). Borrowed. */
  const char *influx_url;
  const char *influx_extra;
  char config[16384]; /* the text h_env_iocd_start runs iocd on */
};

/* Creates the directory, starts both servers and picks the API port. On
 * failure what was started is stopped and removed again. */
int h_env_start(struct h_env *e);

/* Kills iocd if it still runs, stops the servers and removes their
 * directories and iocd's (all kept when IOCD_TEST_KEEP is set, to look at
 * the logs and the journal). */
void h_env_stop(struct h_env *e);

/* Writes e->config: data_dir in e->dir, log level info, mqtt at e->mq with
 * client_id and reconnects between 100 ms and 500 ms, influxdb (database
 * "ioc", flushed every 100 ms, retried between 100 ms and 1 s), the API on
 * e->api_port, then the members that the printf-style rest adds (one or
 * more, separated by commas, without the closing brace). Returns -1 when the
 * text does not fit. */
int h_env_config(struct h_env *e, const char *client_id, const char *rest, ...)
    __attribute__((format(printf, 3, 4)));

/* Starts iocd on e->config and waits up to 20 s until its log says
 * "subscribed". The log of an earlier run is kept as DIR/iocd.log.N, so the
 * log that is searched is this run's. */
int h_env_iocd_start(struct h_env *e);

/* The first value of query q (e.g. SELECT count(...)) in database "ioc":
 * 0 when it answers no rows, -1 when the query fails. */
double h_env_count(const struct h_env *e, const char *q);

/* Waits until h_env_count(e, q) reaches want, at most timeout_ms. */
int h_env_wait_count(const struct h_env *e, const char *q, double want,
                     int timeout_ms);

/* ---- Alert receivers (receivers.c) ---- */

struct h_alertmanager {
  pid_t pid;
  int port;
  char dir[256]; /* am.yml, its storage and its log */
  char url[64];  /* http://127.0.0.1:PORT */
};

/* Starts prometheus-alertmanager on a free port with its own am.yml (one
 * receiver that notifies nobody, group_wait 0s), its storage in its own
 * temporary directory and no cluster port, and waits until /-/ready
 * answers 200. */
int h_alertmanager_start(struct h_alertmanager *a);
/* Stops it and removes its directory (kept when IOCD_TEST_KEEP is set). */
void h_alertmanager_stop(struct h_alertmanager *a);
/* GET /api/v2/alerts: the JSON array in *json (malloc'd, caller frees). */
int h_alertmanager_alerts(const struct h_alertmanager *a, char **json);

struct h_smtp {
  pid_t pid;
  int port;
  char dir[256];     /* its log and the maildir */
  char maildir[300]; /* DIR/maildir with cur/, new/, tmp/ */
  char url[64];      /* smtp://127.0.0.1:PORT */
};

/* Starts an SMTP server that keeps every message it accepts as a file in a
 * maildir: Debian's aiosmtpd, run by /usr/bin/python3 (the python3 on PATH
 * may lack it), on a free port; waits until it accepts connections. */
int h_smtp_start(struct h_smtp *s);
/* Stops it and removes its directory (kept when IOCD_TEST_KEEP is set). */
void h_smtp_stop(struct h_smtp *s);
/* The number of messages in the maildir, or -1. */
int h_smtp_count(const struct h_smtp *s);
/* Waits until the maildir holds at least n messages. */
int h_smtp_wait(const struct h_smtp *s, int n, int timeout_ms);
/* The messages, as Python's email package reads them: a JSON array in
 * arrival order of {"subject", "from", "to", "message_id", "mail_from",
 * "rcpt_to", "content_type", "text", "html"}, the headers decoded from
 * RFC 2047 encoded-words, the bodies from their transfer encoding and
 * charset (null when the message has no such part); mail_from and rcpt_to
 * are the SMTP envelope. *json is malloc'd (caller frees). */
int h_smtp_messages(const struct h_smtp *s, char **json);

/* An HTTP server in the test process (libmicrohttpd, on a thread of its
 * own) that records each request and answers from a script. */
struct h_recorder;

/* One recorded request; a copy, freed with h_request_cleanup. */
struct h_request {
  char *method;
  char *path; /* the URL path as the server decoded it, without query */
  size_t nheaders;
  char **names; /* as sent */
  char **values;
  char *body; /* NUL-terminated */
  size_t body_len;
  /* When the whole request was in (CLOCK_REALTIME, ns), for latencies
   * measured from a publish. */
  int64_t arrived_ns;
};

/* Starts the recorder on 127.0.0.1:port (0: a free port). It answers 200
 * with "{}" until told otherwise. Returns NULL on failure. */
struct h_recorder *h_recorder_start(int port);
int h_recorder_port(const struct h_recorder *r);
/* "http://127.0.0.1:PORT" */
const char *h_recorder_url(const struct h_recorder *r);
/* The answer once the script is used up. */
void h_recorder_default(struct h_recorder *r, int status, const char *body);
/* Appends to the script: the next `times` requests are answered status and
 * body, with header ("Retry-After: 1", or NULL) added. "500 twice then
 * 200" is h_recorder_script(r, 2, 500, "", NULL) with the default 200. */
void h_recorder_script(struct h_recorder *r, int times, int status,
                       const char *body, const char *header);
/* Requests recorded so far. */
size_t h_recorder_count(struct h_recorder *r);
/* Waits until at least n requests were recorded. */
int h_recorder_wait(struct h_recorder *r, size_t n, int timeout_ms);
/* Copies request i (0: the first). Returns false when there is none. */
bool h_recorder_get(struct h_recorder *r, size_t i, struct h_request *out);
/* The value of header name (any case) of q, or NULL. */
const char *h_request_header(const struct h_request *q, const char *name);
void h_request_cleanup(struct h_request *q);
/* Stops the server and frees r (NULL is allowed). */
void h_recorder_stop(struct h_recorder *r);

#endif
