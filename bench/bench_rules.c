/*
 * Rules benchmark: what evaluating rules costs on the path every message
 * takes, in-process and without a network. Messages (JSON, as districts
 * publish them) go through the ingest pipeline, whose sink hands each point
 * to the rules engine at its arrival time, with a tick every 15 s of
 * virtual time, as the service does. The figures are ratios within one run:
 *
 * 1. cost: throughput with the default rules (config/rules/daklak.jsonc)
 *    plus 100 extra rules, against throughput with no rule, at 15 districts
 *    and at 10,000 groups (target: under 20% at both);
 * 2. memory per rule instance: the process's RSS growth over the instances
 *    created, and the engine's own accounting (engine_get_stats);
 * 3. evaluations per point with 1, 10 and 100 rules that read other
 *    series: flat, because a point only evaluates the rules that read it.
 *
 * The extra rules read measurements no message carries (extra_N.value), as
 * rules for other systems would: they must cost nothing on this path.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alerts/rules_setup.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/stats.h"
#include "ingest/ingest.h"
#include "rules/engine.h"

#ifndef IOCD_SOURCE_DIR
#error "bench/CMakeLists.txt passes IOCD_SOURCE_DIR"
#endif

#define TICK_NS (INT64_C(15) * NS_PER_SEC)
/* Each group publishes once a minute (virtual time), as iGate and iDesk
 * adapters do: so a [1d] window holds up to 1,440 samples per series, not
 * whatever a tight loop would cram into it. */
#define GROUP_PERIOD_NS (INT64_C(60) * NS_PER_SEC)

static const char *const daklak[15] = {
    "Buôn Ma Thuột", "Buôn Hồ",    "Buôn Đôn",  "Cư Kuin",   "Cư M'gar",
    "Ea H'Leo",      "Ea Kar",     "Ea Súp",    "Krông Ana", "Krông Bông",
    "Krông Búk",     "Krông Năng", "Krông Pắc", "Lắk",       "M'Đrắk"};

struct msg {
  char topic[96];
  char payload[192];
  size_t len;
};

struct run {
  int64_t step_ns; /* virtual time between two messages */
  struct config *cfg;
  const struct config *cfgp;
  struct ingest *ingest;
  struct engine *engine;
  struct stats *stats;
  int64_t now;
  uint64_t points;
};

static double now_s(void) {
  return (double)clock_mono_ns() / 1e9;
}

/* Resident set size in bytes, from /proc/self/statm. */
static long rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) {
      rss = 0;
    }
    fclose(f);
  }
  return rss * sysconf(_SC_PAGESIZE);
}

/* The 15 districts, then numbered communes (the default rules' overrides
 * name Buôn Ma Thuột, so it is always there). */
static void group_name(size_t groups, size_t i, char *out, size_t n) {
  (void)groups;
  if (i < 15) {
    snprintf(out, n, "%s", daklak[i]);
  } else {
    snprintf(out, n, "Xã %05zu", i);
  }
}

/* The configuration: two subscriptions as in the example, the sources,
 * and optionally the default rules and extra rules that read other
 * measurements. */
static struct config *make_config(size_t groups, bool defaults, size_t extra) {
  struct buf b;
  buf_init(&b, 64u << 20);
  buf_puts(&b,
           "{\"file\": {\"path\": \"/dev/null\"},\n"
           " \"limits\": {\"max_series\": 10000000},\n"
           " \"subscriptions\": [\n"
           "  {\"name\": \"igate\", \"topic\": \"ioc/{district}/igate\",\n"
           "   \"measurement\": \"igate\", \"tags\": {\"system\": \"igate\"},\n"
           "   \"types\": {\"received\": \"integer\", \"resolved\": "
           "\"integer\", \"online_l3\": \"integer\", \"online_l4\": "
           "\"integer\", \"overdue\": \"integer\"}},\n"
           "  {\"name\": \"idesk\", \"topic\": \"ioc/{district}/idesk\",\n"
           "   \"measurement\": \"idesk\", \"tags\": {\"system\": \"idesk\"},\n"
           "   \"types\": {\"documents_sent\": \"integer\"}}],\n"
           " \"sources\": {\"systems\": [\"igate\", \"idesk\"], "
           "\"districts\": [");
  for (size_t i = 0; i < groups; i++) {
    char name[64];
    group_name(groups, i, name, sizeof name);
    buf_printf(&b, "%s\"%s\"", i ? ", " : "", name);
  }
  buf_puts(&b, "]}");
  if (defaults) {
    buf_puts(&b, ",\n \"rule_files\": [\"" IOCD_SOURCE_DIR
                 "/config/rules/daklak.jsonc\"]");
  }
  if (extra) {
    buf_puts(&b, ",\n \"rules\": [");
    for (size_t i = 0; i < extra; i++) {
      buf_printf(&b,
                 "%s{\"name\": \"extra_%zu\", \"expr\": \"extra_%zu.value > "
                 "%zu\", \"by\": [\"district\"], \"for\": \"5m\"}",
                 i ? ",\n  " : "", i, i, i);
    }
    buf_puts(&b, "]");
  }
  buf_puts(&b, "}\n");
  struct config *cfg = NULL;
  struct buf errors;
  buf_init(&errors, 1 << 20);
  if (config_load_text("bench.jsonc", b.data, b.len, &cfg, &errors)) {
    fprintf(stderr, "bench: config: %s\n", errors.data ? errors.data : "");
    exit(1);
  }
  buf_cleanup(&errors);
  buf_cleanup(&b);
  return cfg;
}

static int sink(void *ud, size_t sub, const struct point_batch *pb) {
  struct run *r = ud;
  (void)sub;
  for (size_t i = 0; i < pb->npoints; i++) {
    if (r->engine) {
      engine_add_point(r->engine, pb, &pb->points[i], r->now);
    }
    r->points++;
  }
  return IOCD_OK;
}

/* with_engine false: ingest alone (the reference for the engine's own
 * cost at zero rules). only >= 0: the engine gets that rule alone. */
static void run_open_only(struct run *r, size_t groups, bool defaults,
                          size_t extra, bool with_engine, long only) {
  memset(r, 0, sizeof *r);
  r->step_ns = GROUP_PERIOD_NS / (int64_t)groups;
  r->cfg = make_config(groups, defaults, extra);
  r->cfgp = r->cfg;
  r->stats = stats_new();
  struct iocd_err err = {{0}};
  r->ingest = ingest_new(r->cfg, r->stats, sink, r, &err);
  if (!r->stats || !r->ingest) {
    fprintf(stderr, "bench: ingest: %s\n", err.msg);
    exit(1);
  }
  r->now = INT64_C(1614560400) * NS_PER_SEC; /* 2021-03-01 08:00 +07 */
  if (!with_engine) {
    return;
  }
  struct rules_setup s;
  struct engine_opts opts;
  if (rules_setup_init(&s, r->cfg, &err)) {
    fprintf(stderr, "bench: rules: %s\n", err.msg);
    exit(1);
  }
  rules_setup_opts(&s, &opts, &r->cfgp, NULL, NULL, r->now);
  if (only >= 0) {
    s.defs += only;
    s.ndefs = 1;
  }
  int rc = rules_setup_engine(&s, &opts, &r->engine, &err);
  if (only >= 0) {
    s.defs -= only;
  }
  if (rc) {
    fprintf(stderr, "bench: engine: %s\n", err.msg);
    exit(1);
  }
  rules_setup_cleanup(&s);
}

static void run_open(struct run *r, size_t groups, bool defaults, size_t extra,
                     bool with_engine) {
  run_open_only(r, groups, defaults, extra, with_engine, -1);
}

static void run_close(struct run *r) {
  engine_free(r->engine);
  ingest_free(r->ingest);
  stats_free(r->stats);
  config_free(r->cfg);
}

/* The messages, round-robin over the groups: an iGate figure, and every
 * fourth time an iDesk one; counters grow as a day's would. */
static struct msg *make_msgs(size_t groups, size_t n) {
  struct msg *m = calloc(n, sizeof *m);
  if (!m) {
    fprintf(stderr, "bench: out of memory\n");
    exit(1);
  }
  for (size_t i = 0; i < n; i++) {
    size_t g = i % groups;
    uint64_t k = i / groups;
    char name[64];
    group_name(groups, g, name, sizeof name);
    int len;
    if (k % 4 == 3) {
      snprintf(m[i].topic, sizeof m[i].topic, "ioc/%s/idesk", name);
      len = snprintf(m[i].payload, sizeof m[i].payload,
                     "{\"documents_sent\": %llu}", (unsigned long long)(k * 3));
    } else {
      snprintf(m[i].topic, sizeof m[i].topic, "ioc/%s/igate", name);
      len = snprintf(m[i].payload, sizeof m[i].payload,
                     "{\"received\": %llu, \"resolved\": %llu, "
                     "\"online_l3\": %llu, \"online_l4\": %llu, "
                     "\"overdue\": %llu}",
                     (unsigned long long)(k * 10 + 100),
                     (unsigned long long)(k * 9 + 90),
                     (unsigned long long)(k * 2), (unsigned long long)k,
                     (unsigned long long)(k % 300));
    }
    m[i].len = (size_t)len;
  }
  return m;
}

/* Feeds the messages; returns messages per second. */
static double feed(struct run *r, const struct msg *m, size_t n) {
  int64_t next_tick = r->now + TICK_NS;
  double t0 = now_s();
  for (size_t i = 0; i < n; i++) {
    struct ingest_result res;
    r->now += r->step_ns;
    ingest_message(r->ingest, m[i].topic, m[i].payload, m[i].len, NULL, r->now,
                   &res);
    if (r->engine && r->now >= next_tick) {
      engine_tick(r->engine, r->now);
      next_tick += TICK_NS;
    }
  }
  double t = now_s() - t0;
  return (double)n / (t > 0 ? t : 1e-9);
}

static double best_rate(size_t groups, bool defaults, size_t extra,
                        bool with_engine, const struct msg *m, size_t n,
                        int repeat) {
  double best = 0;
  for (int k = 0; k < repeat; k++) {
    struct run r;
    run_open(&r, groups, defaults, extra, with_engine);
    /* A first pass warms the series and instances up; the second is
     * timed, with time going on. */
    feed(&r, m, n);
    double rate = feed(&r, m, n);
    best = rate > best ? rate : best;
    run_close(&r);
  }
  return best;
}

/* The cost of each default rule alone, at 15 districts. */
/* One timed pass (after a warm-up pass) with rule `only` alone (-1: no
 * rule), at 15 districts. */
static double rate_only(const struct msg *m, size_t n, long only) {
  struct run r;
  run_open_only(&r, 15, only >= 0, 0, true, only);
  feed(&r, m, n);
  double rate = feed(&r, m, n);
  run_close(&r);
  return rate;
}

/* The cost of each default rule alone, at 15 districts. The rounds
 * interleave the configurations, so that a busy moment of the machine
 * does not fall on one of them only. */
static void breakdown(size_t n, int repeat) {
  struct msg *m = make_msgs(15, n);
  struct config *cfg = make_config(15, true, 0);
  double none = 0;
  double *best = calloc(cfg->rules.n, sizeof *best);
  if (!best) {
    fprintf(stderr, "bench: out of memory\n");
    exit(1);
  }
  for (int k = 0; k < repeat; k++) {
    double rate = rate_only(m, n, -1);
    none = rate > none ? rate : none;
    for (size_t i = 0; i < cfg->rules.n; i++) {
      rate = rate_only(m, n, (long)i);
      best[i] = rate > best[i] ? rate : best[i];
    }
  }
  printf("  %-22s        %9.0f msg/s\n", "(no rule)", none);
  for (size_t i = 0; i < cfg->rules.n; i++) {
    printf("  %-22s alone: %9.0f msg/s, cost %5.1f%%\n", cfg->rules.v[i].name,
           best[i], 100.0 * (1.0 - best[i] / none));
  }
  free(best);
  config_free(cfg);
  free(m);
}

static void cost(size_t groups, size_t n, int repeat) {
  struct msg *m = make_msgs(groups, n);
  double ingest = 0, none = 0, all = 0;
  /* Interleaved rounds: a busy moment of the machine hits all three. */
  for (int k = 0; k < repeat; k++) {
    double r = best_rate(groups, false, 0, false, m, n, 1);
    ingest = r > ingest ? r : ingest;
    r = best_rate(groups, false, 0, true, m, n, 1);
    none = r > none ? r : none;
    r = best_rate(groups, true, 100, true, m, n, 1);
    all = r > all ? r : all;
  }
  printf(
      "%6zu groups: ingest alone %9.0f msg/s | no rules %9.0f msg/s | "
      "default + 100 rules %9.0f msg/s | cost %5.1f%%\n",
      groups, ingest, none, all, 100.0 * (1.0 - all / none));
  free(m);
}

/* The RSS growth of a fresh process that builds the pipeline for groups
 * (with the default rules and 100 more, or none) and feeds 8 messages per
 * group; the engine's stats of that run in *st. Runs in a child process,
 * so that memory freed by other phases (and kept by malloc) does not hide
 * the growth. Returns the growth in bytes, or -1. */
static long rss_growth(size_t groups, bool rules, struct engine_stats *st,
                       struct series_store_stats *ss) {
  int fds[2];
  if (pipe(fds) != 0) {
    return -1;
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    close(fds[0]);
    size_t n = groups * 8;
    struct msg *m = make_msgs(groups, n);
    long before = rss_bytes();
    struct run r;
    run_open(&r, groups, rules, rules ? 100 : 0, true);
    feed(&r, m, n);
    struct {
      long growth;
      struct engine_stats st;
      struct series_store_stats ss;
    } out;
    out.growth = rss_bytes() - before;
    engine_get_stats(r.engine, &out.st);
    series_store_get_stats(engine_store(r.engine), &out.ss);
    ssize_t w = write(fds[1], &out, sizeof out);
    _exit(w == (ssize_t)sizeof out ? 0 : 1);
  }
  close(fds[1]);
  struct {
    long growth;
    struct engine_stats st;
    struct series_store_stats ss;
  } in;
  ssize_t got = read(fds[0], &in, sizeof in);
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  if (got != (ssize_t)sizeof in) {
    return -1;
  }
  *st = in.st;
  *ss = in.ss;
  return in.growth;
}

static void memory(size_t groups) {
  struct engine_stats st0, st;
  struct series_store_stats ss0, ss;
  long base = rss_growth(groups, false, &st0, &ss0);
  long with = rss_growth(groups, true, &st, &ss);
  if (base < 0 || with < 0) {
    fprintf(stderr, "bench: memory: the measuring process failed\n");
    return;
  }
  size_t inst = st.instances > st0.instances ? st.instances - st0.instances : 1;
  printf(
      "%6zu groups: %zu rules, %zu instances, %zu series: RSS +%.1f MiB "
      "with the rules, +%.1f MiB without: %.0f B per instance (store "
      "included); engine's accounting %.0f B per instance, store's %.0f "
      "B per series\n",
      groups, st.rules, st.instances, ss.series, (double)with / (1 << 20),
      (double)base / (1 << 20), (double)(with - base) / (double)inst,
      (double)st.bytes / (double)(st.instances ? st.instances : 1),
      ss.series ? (double)ss.bytes / (double)ss.series : 0.0);
}

static void flat(size_t n) {
  struct msg *m = make_msgs(15, n);
  static const size_t counts[] = {0, 1, 10, 100};
  for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
    struct run r;
    run_open(&r, 15, true, counts[i], true);
    feed(&r, m, n);
    struct engine_stats st;
    engine_get_stats(r.engine, &st);
    printf(
        "default + %3zu unrelated rules (%3zu rules): %.3f evaluations "
        "per point on arrival, %.3f by ticks\n",
        counts[i], st.rules, (double)st.evals_on_sample / (double)r.points,
        (double)st.evals_on_tick / (double)r.points);
    run_close(&r);
  }
  free(m);
}

/* A positive integer argument, or -1. */
static long arg_count(const char *s) {
  char *end;
  errno = 0;
  long x = strtol(s, &end, 10);
  return errno || *end || x <= 0 ? -1 : x;
}

int main(int argc, char **argv) {
  long n = 200000;
  long repeat = 3;
  long groups = -1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-n") == 0 && i + 1 < argc &&
        (n = arg_count(argv[++i])) > 0) {
      continue;
    }
    if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc &&
        (repeat = arg_count(argv[++i])) > 0) {
      continue;
    }
    if (strcmp(argv[i], "--groups") == 0 && i + 1 < argc &&
        (groups = arg_count(argv[++i])) > 0) {
      continue;
    }
    {
      fprintf(stderr, "usage: bench_rules [-n MESSAGES] [--repeat N] "
                      "[--groups G]\n");
      return 2;
    }
  }
  log_set_level(LOG_ERROR);
  if (groups > 0) {
    /* Only the cost at G groups: for profiling one configuration. */
    printf("== cost of rule evaluation (%ld messages, best of %ld)\n", n,
           repeat);
    cost((size_t)groups, (size_t)n, (int)repeat);
    return 0;
  }
  printf("== memory per rule instance (default + 100 rules)\n");
  memory(15);
  memory(10000);
  printf("== cost of rule evaluation (%ld messages, best of %ld)\n", n, repeat);
  cost(15, (size_t)n, (int)repeat);
  cost(10000, (size_t)n, (int)repeat);
  printf("== each default rule alone (15 districts)\n");
  breakdown((size_t)n, (int)repeat);
  printf("== evaluations per point (15 districts, %ld messages)\n", n);
  flat((size_t)n);
  return 0;
}
