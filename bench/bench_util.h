/*
 * Helpers shared by the benchmarks that drive a real iocd: clocks, the CPU
 * time of a process, iocd's /metrics read over HTTP, percentiles and
 * medians, an MQTT session ended, integer options and the header every report
 * starts with (date, machine, load, commit). Blocking, for benchmark programs
 * only.
 */
#ifndef IOCD_BENCH_UTIL_H
#define IOCD_BENCH_UTIL_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

/* CLOCK_MONOTONIC and CLOCK_REALTIME, in ns. */
int64_t bench_mono_ns(void);
int64_t bench_real_ns(void);

/* Sleeps ms milliseconds (restarting after signals). */
void bench_sleep_ms(int ms);

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
 * is gone. Best effort: returns nothing. */
void bench_drop_session(int port, const char *client_id);

/* Nearest-rank percentiles of a series of latencies. */
struct bench_pct {
  long n;
  double p50, p99, max;
};

/* Sorts v[0..n) in place and returns its percentiles (all 0 when n is
 * 0). */
struct bench_pct bench_percentiles(double *v, long n);

/* The median of v[0..n) (sorted in place); n > 0. */
double bench_median(double *v, int n);

/* Parses s as an integer in lo..hi for option opt into *out. Returns 0, or
 * -1 with a message naming prog and opt on stderr (s NULL: the value is
 * missing). */
int bench_parse_long(const char *prog, const char *opt, const char *s, long lo,
                     long hi, long *out);

/* Prints the report's first lines: "<title>, <date UTC>", the machine (CPUs,
 * model, load average now) and the commit of source_dir (`git describe
 * --always --dirty`, "?" without git). */
void bench_print_header(const char *title, const char *source_dir);

/* Prints "reproduce:" and the command line. */
void bench_print_command(int argc, char **argv);

#endif
