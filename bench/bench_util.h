/*
 * Helpers shared by the benchmarks that drive a real iocd: the CPU time of a
 * process and waiting for processes to go idle, iocd's /metrics read over
 * HTTP, percentiles and medians, an MQTT session ended, integer options and
 * the header every report starts with (date, machine, load, commit).
 * Blocking, for benchmark programs only; clocks are core/clock.h's and
 * sleeps the test harness's (h_sleep_ms).
 */
#ifndef IOCD_BENCH_UTIL_H
#define IOCD_BENCH_UTIL_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

/* utime + stime of pid in seconds, or -1 when it cannot be read. */
double bench_proc_cpu_s(pid_t pid);

/* Waits until the processes pids[0..n) (n <= 8) are idle (twice in a row
 * under 25 ms of CPU each in 500 ms), at most max_ms. */
void bench_settle(const pid_t *pids, int n, int max_ms);

/* A reader of iocd's /metrics: one libcurl handle (connections reused) and
 * the last answer's body. Caller storage: bench_metrics_init, then
 * bench_metrics_cleanup. */
struct bench_metrics {
  CURL *curl;
  struct curl_slist *headers; /* Authorization, when a token is given */
  struct buf body;
};

/* Prepares m; token (may be NULL) is sent as "Authorization: Bearer
 * <token>". Returns 0, or -1 when out of memory. */
int bench_metrics_init(struct bench_metrics *m, const char *token);
void bench_metrics_cleanup(struct bench_metrics *m);

/* GET http://127.0.0.1:port/metrics into m->body (5 s at most). Returns
 * the HTTP status, or -1 when no answer came. */
long bench_metrics_get(struct bench_metrics *m, int port);

/* The value of one series (its exact name and labels as rendered) in the
 * last answer, or -1 when absent. */
double bench_metrics_value(const struct bench_metrics *m, const char *series);

/* Ends the persistent session of client_id at the broker on 127.0.0.1:port
 * (connects with a clean start, then disconnects), so that the phases after
 * an iocd run do not pay for the broker queueing messages to a client that
 * is gone. Returns 0, or -1 with a message on stderr when the broker did not
 * accept the connection (the session may then still be there). */
int bench_drop_session(int port, const char *client_id);

/* Starts mosquitto_sub (MQTT 5) as a consumer that does nothing: it
 * subscribes to ioc/# at qos on the broker at 127.0.0.1:port as client_id,
 * writes the messages to /dev/null and its errors to errlog, and exits after
 * count messages. It dies with this process. Returns its pid, or -1 when
 * fork failed (errno set). */
pid_t bench_spawn_sub(int port, int qos, const char *client_id, long count,
                      const char *errlog);

/* True when the log of the broker in broker_dir (the harness's
 * mosquitto.log) shows client_id's subscription to ioc/# at qos. */
bool bench_broker_saw_subscribe(const char *broker_dir, const char *client_id,
                                int qos);

/* Nearest-rank percentiles of a series of latencies. */
struct bench_pct {
  long n;
  double p50, p99, max;
};

/* Sorts v[0..n) in place and returns its percentiles (all 0 when n is
 * 0). */
struct bench_pct bench_percentiles(double *v, long n);

/* The median of v[0..n) (sorted in place), 0 when n is 0. */
double bench_median(double *v, int n);

/* Parses s as an integer in lo..hi for option opt into *out. Returns 0, or
 * -1 with a message naming prog, opt and s on stderr (s NULL: the value is
 * missing). */
int bench_parse_long(const char *prog, const char *opt, const char *s, long lo,
                     long hi, long *out);

/* Prints the report's first lines: "<title>, <date UTC>", the machine (CPUs,
 * model, load average now) and, unless source_dir is NULL, the commit of
 * source_dir (`git describe --always --dirty`, "?" without git). */
void bench_print_header(const char *title, const char *source_dir);

/* Prints "reproduce:" and the command line. */
void bench_print_command(int argc, char **argv);

#endif
