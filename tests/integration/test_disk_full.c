/*
 * A full disk under the journal, as a user sees it, with a real mosquitto
 * and a real influxd and the iocd binary run as a black box: data_dir is a
 * 2 MiB tmpfs mounted by the test (it needs root, and is skipped with the
 * reason otherwise). InfluxDB is stopped and messages are published until
 * the journal fills the disk; /ready must then name the disk. Once InfluxDB
 * is back, with no operator action, every accepted point must reach it, the
 * confirmed segments must go (the checkpoints, which need space of their
 * own, cannot be written first), /ready must turn 200, and messages
 * published afterwards must be written too: intake resumed and MQTT is
 * connected, although the pause lasted longer than twice the keepalive
 * (libmosquitto closes a connection whose PINGRESP is not read, and
 * nothing is read while intake is paused).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/buf.h"
#include "tests/harness/harness.h"

#define T0_MS 1601460000000LL
#define NDISTRICTS 15
#define FULL_MSGS 2500 /* of about 1.1 KiB each: more than the 2 MiB disk */
#define LATER_MSGS 200
#define COUNT_SEQ "SELECT count(seq) FROM igate"
#define SUB "{subscription=\"igate\""

static const char *const districts[NDISTRICTS] = {
    "Buôn Ma Thuột", "Buôn Hồ",   "Ea H'Leo",   "Ea Súp",    "Krông Năng",
    "Krông Búk",     "Cư M'gar",  "Buôn Đôn",   "Krông Pắc", "Ea Kar",
    "M'Đrắk",        "Krông Ana", "Krông Bông", "Lắk",       "Cư Kuin",
};

/* What the fini undoes when an assertion ends the test early. */
static struct h_env env;
static bool env_started;
static char data_dir[300];
static bool mounted;

static void cleanup(void) {
  if (env_started && env.iocd.pid > 0) {
    h_iocd_stop(&env.iocd, SIGKILL, 5000);
  }
  if (mounted) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "umount -l '%s'", data_dir);
    if (system(cmd) != 0) {
      fprintf(stderr, "disk_full: could not unmount %s\n", data_dir);
    }
    mounted = false;
  }
  if (env_started) {
    h_env_stop(&env);
    env_started = false;
  }
}

/* ---- /metrics and /ready ------------------------------------------------- */

/* The sum of the series whose line starts with prefix, -1 when none. */
static double mval(const struct buf *m, const char *prefix) {
  double sum = 0;
  bool found = false;
  size_t n = strlen(prefix);
  for (const char *p = m->data; p && *p;) {
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    bool whole = len > n && (p[n] == ' ' || p[n] == '{' || p[n - 1] == '{' ||
                             p[n - 1] == ',');
    if (p[0] != '#' && whole && strncmp(p, prefix, n) == 0) {
      const char *sp = p + len;
      while (sp > p && sp[-1] != ' ') {
        sp--;
      }
      sum += strtod(sp, NULL);
      found = true;
    }
    p = eol ? eol + 1 : NULL;
  }
  return found ? sum : -1;
}

static double metric(const char *prefix) {
  struct buf b;
  buf_init(&b, 16u << 20);
  double v = -1;
  if (h_http_get(env.api_port, "/metrics", &b) == 200 && b.data) {
    v = mval(&b, prefix);
  }
  buf_cleanup(&b);
  return v;
}

/* /ready's status, and its body in why. */
static long ready(char *why, size_t n) {
  struct buf b;
  buf_init(&b, 1u << 16);
  long status = h_http_get(env.api_port, "/ready", &b);
  snprintf(why, n, "%s", b.data ? b.data : "");
  buf_cleanup(&b);
  return status;
}

static bool ready_names_the_disk(void *ud) {
  (void)ud;
  char why[1024];
  return ready(why, sizeof why) == 503 &&
         strstr(why, "journal: no space left on device") != NULL;
}

static bool is_ready(void *ud) {
  (void)ud;
  char why[1024];
  return ready(why, sizeof why) == 200;
}

/* The books of the subscription balance, and nothing was refused. */
static void check_books(void) {
  struct buf m;
  buf_init(&m, 16u << 20);
  cr_assert_eq(h_http_get(env.api_port, "/metrics", &m), 200);
  double accepted = mval(&m, "iocd_points_accepted_total" SUB "}");
  double replayed = mval(&m, "iocd_journal_replayed_points_total" SUB "}");
  double written = mval(&m, "iocd_source_points_written_total" SUB "}");
  double waiting = mval(&m, "iocd_source_points_waiting" SUB "}");
  double dropped = mval(&m, "iocd_source_points_dropped_total" SUB "}");
  double jdropped = mval(&m, "iocd_journal_dropped_points_total" SUB ",");
  cr_assert_eq(accepted + replayed, written + waiting + dropped + jdropped,
               "points: accepted %.0f + found at start %.0f != written %.0f "
               "+ waiting %.0f + dropped %.0f + deleted (full) %.0f",
               accepted, replayed, written, waiting, dropped, jdropped);
  double received = mval(&m, "iocd_messages_total" SUB "}");
  double macc = mval(&m, "iocd_messages_accepted_total" SUB "}");
  double rejects = mval(&m, "iocd_rejects_total" SUB ",");
  double refused = mval(&m, "iocd_source_messages_refused_total" SUB ",");
  cr_assert_eq(received, macc + rejects + refused,
               "messages: received %.0f != accepted %.0f + rejected %.0f + "
               "refused %.0f",
               received, macc, rejects, refused);
  cr_expect_eq(refused, 0, "%.0f accepted messages were lost", refused);
  buf_cleanup(&m);
}

/* ---- Publishing ---------------------------------------------------------- */

/* Messages from..to-1: district i % 15, its own time, seq = i, and a note
 * of 1000 characters. */
static void publish(int from, int to) {
  static char note[1001];
  memset(note, 'x', sizeof note - 1);
  struct h_pub *p = h_pub_open(env.mq.port, NULL);
  cr_assert_not_null(p);
  for (int i = from; i < to; i++) {
    char topic[128], payload[1200];
    snprintf(topic, sizeof topic, "ioc/%s/igate", districts[i % NDISTRICTS]);
    int len = snprintf(payload, sizeof payload,
                       "{\"seq\": %d, \"note\": \"%s\", \"time\": %lld}", i,
                       note, T0_MS + i);
    cr_assert_eq(h_pub_send(p, topic, payload, (size_t)len, 1), 0);
  }
  cr_assert_eq(h_pub_flush(p), 0);
  h_pub_close(p);
}

static double used_share(void) {
  struct statvfs sv;
  cr_assert_eq(statvfs(data_dir, &sv), 0);
  return 1.0 - (double)sv.f_bfree / (double)sv.f_blocks;
}

/* ---- The test ------------------------------------------------------------ */

Test(disk_full, a_full_journal_disk_frees_itself_once_influxdb_is_back,
     .fini = cleanup) {
  if (geteuid() != 0) {
    cr_skip_test("needs root to mount a tmpfs for data_dir");
  }
  cr_assert_eq(h_env_start(&env), 0);
  env_started = true;
  snprintf(data_dir, sizeof data_dir, "%s/data", env.dir);
  cr_assert_eq(mkdir(data_dir, 0755), 0);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=2m tmpfs '%s' 2>&1",
           data_dir);
  if (system(cmd) != 0) {
    cr_skip_test("mount -t tmpfs was refused here");
  }
  mounted = true;
  int k = snprintf(
      env.config, sizeof env.config,
      "{\n"
      "  \"data_dir\": \"%s\",\n"
      "  \"log\": {\"level\": \"info\"},\n"
      "  \"shutdown_timeout\": \"5s\",\n"
      "  \"stats_interval\": \"0s\",\n"
      "  \"limits\": {\"max_past\": \"36600d\"},\n"
      "  \"mqtt\": {\"host\": \"127.0.0.1\", \"port\": %d,\n"
      "           \"client_id\": \"disk-full\", \"keepalive\": \"5s\",\n"
      "           \"reconnect_min\": \"100ms\", \"reconnect_max\": "
      "\"500ms\"},\n"
      "  \"influxdb\": {\"url\": \"%s\", \"database\": \"ioc\",\n"
      "               \"flush_interval\": \"100ms\",\n"
      "               \"retry_min\": \"100ms\", \"retry_max\": \"1s\"},\n"
      "  \"journal\": {\"segment_bytes\": \"256KiB\"},\n"
      "  \"api\": {\"listen\": \"127.0.0.1:%d\"},\n"
      "  \"subscriptions\": [\n"
      "    {\"name\": \"igate\", \"topic\": \"ioc/{district}/igate\",\n"
      "     \"measurement\": \"igate\", \"qos\": 1,\n"
      "     \"time_unit_numbers\": \"ms\",\n"
      "     \"types\": {\"seq\": \"integer\", \"note\": \"string\"}}\n"
      "  ]\n"
      "}\n",
      data_dir, env.mq.port, env.db.url, env.api_port);
  cr_assert(k > 0 && (size_t)k < sizeof env.config);
  cr_assert_eq(h_env_iocd_start(&env), 0, "iocd did not subscribe; see %s",
               env.iocd.log);

  /* InfluxDB away: the journal takes everything until the disk is full. */
  h_influxd_stop(&env.db);
  publish(0, FULL_MSGS);
  char why[1024];
  cr_assert_eq(h_wait_until(ready_names_the_disk, NULL, 30000), 0,
               "/ready does not name the disk: %ld %s", ready(why, sizeof why),
               why);
  cr_expect(h_iocd_log_contains(&env.iocd, "No space left on device"),
            "the full disk is not in the log while it happens");
  cr_expect(h_iocd_log_contains(&env.iocd, "intake paused"));
  cr_expect_geq(metric("iocd_journal_no_space_total"), 1);
  cr_expect_gt(used_share(), 0.95);
  /* Longer than twice the keepalive: the broker connection may go
   * meanwhile, and /ready still names the cause. */
  h_sleep_ms(12000);
  cr_expect(ready_names_the_disk(NULL), "/ready now says: %s", why);

  /* InfluxDB back: no operator does anything from here on. */
  cr_assert_eq(h_influxd_restart(&env.db), 0);
  cr_assert_eq(h_env_wait_count(&env, COUNT_SEQ, FULL_MSGS, 120000), 0,
               "%g of %d points in InfluxDB", h_env_count(&env, COUNT_SEQ),
               FULL_MSGS);
  cr_assert_eq(h_wait_until(is_ready, NULL, 30000), 0, "/ready stays %ld: %s",
               ready(why, sizeof why), why);
  cr_expect(h_iocd_log_contains(&env.iocd, "intake resumed"));
  cr_expect_lt(used_share(), 0.5, "the journal still takes %.0f%% of the disk",
               100 * used_share());
  cr_expect_leq(metric("iocd_journal_segments"), 2);

  /* Intake goes on: new messages are written too. */
  publish(FULL_MSGS, FULL_MSGS + LATER_MSGS);
  cr_assert_eq(h_env_wait_count(&env, COUNT_SEQ, FULL_MSGS + LATER_MSGS, 60000),
               0, "%g of %d points in InfluxDB", h_env_count(&env, COUNT_SEQ),
               FULL_MSGS + LATER_MSGS);
  cr_expect_eq(h_env_count(&env, COUNT_SEQ), FULL_MSGS + LATER_MSGS);
  cr_expect_eq(metric("iocd_mqtt_connected"), 1);
  fprintf(stderr,
          "disk_full: %.0f MQTT disconnects while intake was paused, %.0f "
          "writes refused for lack of space\n",
          metric("iocd_mqtt_disconnects_total"),
          metric("iocd_journal_no_space_total"));
  check_books();
  cr_assert_eq(h_iocd_stop(&env.iocd, SIGTERM, 15000), 0);
}
