/*
 * iocd-sim against the real thing: mosquitto, influxd and iocd on the
 * example configuration and its default rules (config/rules/daklak.jsonc),
 * adapted by the harness (h_example_config) so that a test ends in a
 * minute: the servers' ports and data_dir, office hours all day every day
 * (so the counters grow whenever the test runs), no holidays, evaluation
 * every second, every rule's "for" cut to 2s and the silence threshold of
 * 10m cut to 4s. The simulator runs in compressed time (1440: a simulated
 * day per real minute), ending at the present unless a test says
 * otherwise, and each scenario of docs/simulator.md must produce what it
 * is meant to:
 *
 *   online-drop, feed-silent  online_share_low and feed_silent fire for
 *                             their districts;
 *   backlog                   overdue_backlog_high fires for its district
 *                             and no other;
 *   bad-payloads              iocd rejects each malformed message, counted
 *                             by district and reason, and every good one
 *                             of the run lands in InfluxDB;
 *   broker-restart            the scenario's command stops the broker,
 *                             iocd_broker_unreachable fires, and once the
 *                             broker is back (restarted by the test on its
 *                             port and persistence) iocd and the simulator
 *                             reconnect and nothing of the run is lost;
 *   load                      the messages the simulator says it sent are
 *                             the messages iocd accepted and the rows in
 *                             InfluxDB, at the rate asked for.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/timefmt.h"
#include "tests/harness/harness.h"

#define NS_PER_S INT64_C(1000000000)
#define NS_PER_H (INT64_C(3600) * NS_PER_S)
#define SPEED 1440
#define NDISTRICTS 15

extern char **environ;

/* The example configuration and rules, adapted as the header says. */
static char *adapted_config(const struct h_env *e) {
  struct h_example_opts o = {.rule_for = "2s",
                             .silent_after = "4s",
                             .evaluation_interval = "1s",
                             .always_office = true};
  char *cfg = h_example_config(e, &o);
  cr_assert_not_null(cfg, "the example configuration was not adapted");
  return cfg;
}

/* Starts the servers and iocd on the adapted example, and waits until iocd
 * subscribed. The configuration is larger than e->config: iocd is started
 * directly, and stopped by h_env_stop. */
static void start_iocd(struct h_env *e) {
  cr_assert_eq(h_env_start(e), 0);
  char *cfg = adapted_config(e);
  cr_assert_eq(h_iocd_start(&e->iocd, e->dir, cfg), 0);
  free(cfg);
  cr_assert_eq(h_iocd_wait_log(&e->iocd, "subscribed", 20000), 0, "see %s",
               e->iocd.log);
}

/* Starts iocd-sim on iocd's configuration, seed 12, with args (NULL-
 * terminated) after them; its output goes to DIR/sim.log. */
static pid_t start_sim(const struct h_env *e, const char *const *args) {
  char log[512];
  snprintf(log, sizeof log, "%s/sim.log", e->dir);
  char *argv[32] = {(char *)IOCD_SIM_PATH,
                    "-c",
                    (char *)e->iocd.config,
                    "--seed",
                    "12",
                    "--client-id",
                    "iocd-sim-test"};
  size_t n = 7;
  for (size_t i = 0; args[i]; i++) {
    cr_assert_lt(n + 1, sizeof argv / sizeof argv[0]);
    argv[n++] = (char *)args[i];
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  int rc = posix_spawn(&pid, IOCD_SIM_PATH, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  cr_assert_eq(rc, 0);
  return pid;
}

/* Waits for the simulator to end; its exit status, or 128 + the signal. */
static int wait_sim(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  cr_assert_eq(r, pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The simulator's log (caller frees). */
static char *sim_log(const struct h_env *e) {
  char path[512];
  snprintf(path, sizeof path, "%s/sim.log", e->dir);
  char *text = h_read_file(path, NULL);
  cr_assert_not_null(text);
  return text;
}

/* The summary the simulator writes at its end: "iocd-sim: N messages
 * (B malformed on purpose, L load) in R rounds". */
struct summary {
  double messages, bad, load, rounds;
};

static struct summary summary_of(const struct h_env *e) {
  static const char *const after[] = {" messages (", " malformed on purpose, ",
                                      " load) in ", " rounds"};
  char *log = sim_log(e);
  struct summary s;
  double *v[] = {&s.messages, &s.bad, &s.load, &s.rounds};
  for (const char *p = log; (p = strstr(p, "iocd-sim: ")) != NULL; p++) {
    const char *q = p + strlen("iocd-sim: ");
    size_t k = 0;
    for (; k < 4; k++) {
      char *end;
      *v[k] = strtod(q, &end);
      if (end == q || strncmp(end, after[k], strlen(after[k])) != 0) {
        break;
      }
      q = end + strlen(after[k]);
    }
    if (k == 4) {
      free(log);
      return s;
    }
  }
  cr_assert_fail("no summary in the simulator's log:\n%s", log);
  return s;
}

/* The sum of the series of family on iocd's /metrics whose labels hold
 * label (NULL: all of them); -1 when /metrics does not answer. */
static double metric_sum(int port, const char *family, const char *label) {
  struct buf b;
  buf_init(&b, 16u << 20);
  double sum = -1;
  if (h_http_get(port, "/metrics", &b) == 200 && b.data) {
    sum = 0;
    size_t n = strlen(family);
    for (const char *p = b.data; *p;) {
      const char *nl = strchr(p, '\n');
      const char *end = nl ? nl : p + strlen(p);
      if (strncmp(p, family, n) == 0 && (p[n] == '{' || p[n] == ' ')) {
        const char *sp = end;
        while (sp > p && sp[-1] != ' ') {
          sp--;
        }
        const char *close = p[n] == '{' ? strstr(p, "} ") : NULL;
        bool match = !label || (close && close < end && strstr(p, label) &&
                                strstr(p, label) < close);
        if (match) {
          sum += strtod(sp, NULL);
        }
      }
      p = nl ? nl + 1 : end;
    }
  }
  buf_cleanup(&b);
  return sum;
}

struct metric_wait {
  int port;
  const char *family, *label;
  double want;
};

static bool metric_reached(void *ud) {
  struct metric_wait *w = ud;
  return metric_sum(w->port, w->family, w->label) >= w->want;
}

/* One rule's alert for one district (needle in its JSON; NULL: any),
 * latched once seen in the state of path's query. */
struct alert_wait {
  int port;
  const char *rule, *needle;
  bool seen;
};

static bool alert_listed(const struct alert_wait *w, const char *state) {
  char path[256];
  snprintf(path, sizeof path, "/api/v1/alerts?state=%s&rule=%s", state,
           w->rule);
  struct buf b;
  buf_init(&b, 0);
  long st = h_http_get(w->port, path, &b);
  bool ok = st == 200 && b.data &&
            strstr(b.data, w->needle ? w->needle : "\"rule\":\"");
  buf_cleanup(&b);
  return ok;
}

static bool alert_fired(void *ud) {
  struct alert_wait *w = ud;
  w->seen = w->seen || alert_listed(w, "firing");
  return w->seen;
}

static bool alert_gone(void *ud) {
  struct alert_wait *w = ud;
  return !alert_listed(w, "pending,firing");
}

/* Each alert seen firing at least once, latched. */
struct both {
  struct alert_wait *drop, *silent;
};

static bool both_fired(void *ud) {
  struct both *b = ud;
  alert_fired(b->drop);
  alert_fired(b->silent);
  return b->drop->seen && b->silent->seen;
}

Test(sim, online_drop_and_feed_silent_fire_their_rules_for_their_districts,
     .timeout = 180) {
  struct h_env e;
  start_iocd(&e);
  const char *args[] = {
      "--speed",    "1440",
      "--duration", "1d",
      "--scenario", "online-drop:district=Ea H'Leo,at=0s,for=1d",
      "--scenario", "feed-silent:district=Lắk,system=igate,at=1h,for=8h",
      NULL};
  pid_t sim = start_sim(&e, args);

  struct alert_wait drop = {e.api_port, "online_share_low",
                            "\"district\":\"Ea H'Leo\"", false};
  struct alert_wait silent = {e.api_port, "feed_silent", "\"district\":\"Lắk\"",
                              false};
  /* Both are watched at once: the silence lasts 20 s of real time, and may
   * begin and end before the drop fires on a slow machine (ASan). */
  struct both both = {&drop, &silent};
  h_wait_until(both_fired, &both, 60000);
  double rows = h_env_count(&e,
                            "SELECT count(received) FROM igate WHERE "
                            "district = 'Ea H\\'Leo'");
  double province = h_env_count(&e, "SELECT count(services_l3) FROM province");

  kill(sim, SIGTERM);
  int status = wait_sim(sim);
  struct buf other;
  buf_init(&other, 0);
  h_http_get(e.api_port, "/api/v1/alerts?state=firing&rule=online_share_low",
             &other);
  h_env_stop(&e);

  cr_assert(drop.seen, "online_share_low did not fire for Ea H'Leo");
  cr_assert(silent.seen, "feed_silent did not fire for Lắk");
  cr_assert_gt(rows, 10, "Ea H'Leo's igate rows: %f", rows);
  cr_assert_gt(province, 0);
  cr_assert_null(strstr(other.data ? other.data : "", "Krông Búk"),
                 "a district without the scenario fired: %s", other.data);
  cr_assert_eq(status, 0);
  buf_cleanup(&other);
}

/* Six simulated hours in 15 s: Krông Ana's overdue dossiers grow by 100 an
 * hour from the first hour for four (the scenario's defaults), from its
 * usual 20 to 100 to 400 more, past the limit of 200. The rules read only
 * samples fresher than 10 minutes on iocd's clock, the last seconds of a
 * compressed run that ends at the present: an hour after the backlog the
 * district is still above the limit, on its way back. */
Test(sim, backlog_fires_overdue_backlog_high_for_its_district_only,
     .timeout = 120) {
  struct h_env e;
  start_iocd(&e);
  const char *args[] = {"--speed", "1440",       "--duration",
                        "6h",      "--scenario", "backlog:district=Krông Ana",
                        NULL};
  pid_t sim = start_sim(&e, args);
  struct alert_wait w = {e.api_port, "overdue_backlog_high",
                         "\"district\":\"Krông Ana\"", false};
  h_wait_until(alert_fired, &w, 40000);
  int status = wait_sim(sim);
  double peak = h_env_count(&e,
                            "SELECT max(overdue) FROM igate WHERE "
                            "district = 'Krông Ana'");
  double usual = h_env_count(&e,
                             "SELECT max(overdue) FROM igate WHERE "
                             "district <> 'Krông Ana'");
  int stored = h_env_wait_count(&e,
                                "SELECT count(active) FROM alerts WHERE "
                                "\"rule\" = 'overdue_backlog_high' AND "
                                "\"state\" = 'firing' AND "
                                "district = 'Krông Ana'",
                                1, 10000);
  double others = h_env_count(&e,
                              "SELECT count(active) FROM alerts WHERE "
                              "\"rule\" = 'overdue_backlog_high' AND "
                              "district <> 'Krông Ana'");
  h_env_stop(&e);

  cr_assert(w.seen, "overdue_backlog_high did not fire for Krông Ana");
  cr_assert_eq(status, 0);
  cr_assert_gt(peak, 400, "Krông Ana's overdue peaked at %f", peak);
  cr_assert(usual > 0 && usual < 200, "the others' overdue: %f", usual);
  cr_assert_eq(stored, 0, "no firing point in InfluxDB");
  cr_assert_eq(others, 0, "%f alert points of other districts", others);
}

/* Four simulated hours of two days ago in 10 s, with a malformed message
 * after a fifth of the districts' reports: their stamps a day ahead must
 * be ahead of iocd's clock, not of the simulated one. */
Test(sim, bad_payloads_are_rejected_by_reason_and_the_good_ones_all_land,
     .timeout = 120) {
  struct h_env e;
  start_iocd(&e);
  const char *args[] = {
      "--speed",    "1440", "--start",    "now-2d",
      "--duration", "4h",   "--scenario", "bad-payloads:rate=20%",
      NULL};
  int status = wait_sim(start_sim(&e, args));
  struct summary s = summary_of(&e);
  /* Each round, every district reports iGate once. */
  double igate = s.rounds * NDISTRICTS;
  struct metric_wait rejects = {e.api_port, "iocd_district_rejects_total", NULL,
                                s.bad};
  struct metric_wait accepted = {e.api_port,
                                 "iocd_district_messages_accepted_total", NULL,
                                 s.messages - s.bad};
  h_wait_until(metric_reached, &rejects, 20000);
  h_wait_until(metric_reached, &accepted, 20000);
  h_env_wait_count(&e, "SELECT count(received) FROM igate", igate, 20000);

  double got_rejects =
      metric_sum(e.api_port, "iocd_district_rejects_total", NULL);
  double got_accepted =
      metric_sum(e.api_port, "iocd_district_messages_accepted_total", NULL);
  double rows = h_env_count(&e, "SELECT count(received) FROM igate");
  double ones = h_env_count(&e,
                            "SELECT count(received) FROM igate WHERE "
                            "received = 1");
  /* One district's rejects, by the reason of each kind of bad payload. */
  static const char *const reasons[] = {"malformed", "wrong_type",
                                        "invalid_utf8", "time_future"};
  double by_reason[4];
  for (size_t i = 0; i < 4; i++) {
    char label[128];
    snprintf(label, sizeof label, "district=\"Ea H'Leo\",reason=\"%s\"",
             reasons[i]);
    by_reason[i] = metric_sum(e.api_port, "iocd_district_rejects_total", label);
  }
  h_env_stop(&e);

  cr_assert_eq(status, 0);
  cr_assert_gt(s.bad, s.rounds, "only %f malformed messages", s.bad);
  cr_assert_eq(got_rejects, s.bad, "iocd rejected %f of %f malformed",
               got_rejects, s.bad);
  cr_assert_eq(got_accepted, s.messages - s.bad, "accepted %f of %f good",
               got_accepted, s.messages - s.bad);
  cr_assert_eq(rows, igate, "%f igate rows of %f reports", rows, igate);
  cr_assert_eq(ones, 0, "a malformed message's received=1 was stored");
  for (size_t i = 0; i < 4; i++) {
    cr_assert_gt(by_reason[i], 0, "no %s reject for Ea H'Leo", reasons[i]);
  }
}

/* The broker is gone once its process is reaped (it is the test's child,
 * killed by the simulator's command). */
struct broker_wait {
  pid_t pid;
  bool gone;
};

static bool broker_gone(void *ud) {
  struct broker_wait *w = ud;
  int status;
  w->gone = w->gone || waitpid(w->pid, &status, WNOHANG) == w->pid;
  return w->gone;
}

/* Twelve simulated hours in 30 s, with explicit start; the scenario's
 * command kills the broker after two simulated hours (5 s). The test
 * brings it back on the same port and persistence directory once iocd
 * raised its broker alert, as a demo's script would. */
Test(sim, broker_restart_raises_the_broker_alert_and_nothing_is_lost,
     .timeout = 150) {
  struct h_env e;
  start_iocd(&e);
  int64_t w0 = clock_realtime_ns();
  int64_t start = w0 - 12 * NS_PER_H;
  char start_arg[48], scenario[128];
  time_format_rfc3339(start, 0, 9, start_arg, sizeof start_arg);
  snprintf(scenario, sizeof scenario, "broker-restart:at=2h,exec=kill %ld",
           (long)e.mq.pid);
  const char *args[] = {"--speed", "1440",       "--duration", "12h", "--start",
                        start_arg, "--scenario", scenario,     NULL};
  pid_t sim = start_sim(&e, args);

  struct broker_wait bw = {e.mq.pid, false};
  h_wait_until(broker_gone, &bw, 20000);
  struct alert_wait broker = {e.api_port, "iocd_broker_unreachable", NULL,
                              false};
  int restarted = -1;
  int64_t back = 0;
  if (bw.gone) {
    e.mq.pid = 0;
    h_wait_until(alert_fired, &broker, 20000);
    restarted = h_mosquitto_restart(&e.mq);
    back = clock_realtime_ns();
  }
  int resolved = h_wait_until(alert_gone, &broker, 40000);
  int status = wait_sim(sim);
  struct summary s = summary_of(&e);
  char *log = sim_log(&e);

  /* Everything of the run, and what was made after the broker was back:
   * the simulated clock at wall time T is at most start + (T - w0) * speed
   * (the simulator started after w0), so rounds stamped later were made
   * after the restart. */
  double igate = s.rounds * NDISTRICTS;
  h_env_wait_count(&e, "SELECT count(received) FROM igate", igate, 30000);
  double rows = h_env_count(&e, "SELECT count(received) FROM igate");
  int64_t made_after = back ? start + (back - w0) * SPEED : INT64_MAX;
  double later = 0;
  for (int64_t k = 0; k < (int64_t)s.rounds; k++) {
    later += start + k * 60 * NS_PER_S > made_after ? NDISTRICTS : 0;
  }
  char q[256];
  snprintf(q, sizeof q, "SELECT count(received) FROM igate WHERE time > %lld",
           (long long)made_after);
  double rows_later = h_env_count(&e, q);
  h_env_stop(&e);

  cr_assert(bw.gone, "the scenario's command did not stop the broker:\n%s",
            log);
  cr_assert(broker.seen, "iocd_broker_unreachable did not fire");
  cr_assert_eq(restarted, 0, "the broker did not start again");
  cr_assert_eq(resolved, 0, "iocd_broker_unreachable did not resolve");
  cr_assert_eq(status, 0);
  cr_assert_not_null(strstr(log, "scenario broker-restart: running kill"), "%s",
                     log);
  const char *again = strstr(log, "iocd-sim: lost the broker");
  cr_assert(again && strstr(again, "iocd-sim: connected to"),
            "the simulator did not reconnect:\n%s", log);
  cr_assert_gt(later, 100, "only %f reports after the restart", later);
  cr_assert_eq(rows_later, later, "%f of the %f reports after the restart",
               rows_later, later);
  cr_assert_eq(rows, igate, "%f igate rows of %f reports", rows, igate);
  free(log);
}

/* Five seconds of real time at the scenario's default 1,000 messages a
 * second over 100 series, and the feeds' first round. */
Test(sim, load_sends_what_it_says_and_iocd_takes_every_message,
     .timeout = 120) {
  struct h_env e;
  start_iocd(&e);
  const char *args[] = {"--duration", "5s", "--scenario", "load:series=100",
                        NULL};
  int64_t t0 = clock_mono_ns();
  int status = wait_sim(start_sim(&e, args));
  double secs = (double)(clock_mono_ns() - t0) / 1e9;
  struct summary s = summary_of(&e);
  struct metric_wait accepted = {e.api_port, "iocd_messages_accepted_total",
                                 NULL, s.messages};
  h_wait_until(metric_reached, &accepted, 30000);
  h_env_wait_count(&e, "SELECT count(value) FROM sim_load", s.load, 30000);
  double got = metric_sum(e.api_port, "iocd_messages_accepted_total", NULL);
  double total = metric_sum(e.api_port, "iocd_messages_total", NULL);
  double rows = h_env_count(&e, "SELECT count(value) FROM sim_load");
  double series = h_env_count(&e,
                              "SELECT count(value) FROM (SELECT last(value) "
                              "AS value FROM sim_load GROUP BY \"series\")");
  h_env_stop(&e);

  cr_assert_eq(status, 0);
  cr_assert(s.load >= 4750 && s.load <= 5250,
            "%f load messages in 5 s at 1000/s", s.load);
  cr_assert(secs >= 4.9, "the run took %f s", secs);
  cr_assert_eq(s.messages, s.load + 4 * NDISTRICTS + 1, "%f messages",
               s.messages);
  cr_assert_eq(got, s.messages, "iocd accepted %f of %f", got, s.messages);
  cr_assert_eq(total, s.messages, "iocd received %f of %f", total, s.messages);
  cr_assert_eq(rows, s.load, "%f rows of %f load messages", rows, s.load);
  cr_assert_eq(series, 100, "%f series", series);
}
