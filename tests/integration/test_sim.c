/*
 * iocd-sim against the real thing: mosquitto, influxd and iocd on the
 * example configuration and its default rules (config/rules/daklak.jsonc),
 * adapted so that a test ends in a minute: the servers' ports and data_dir,
 * office hours all day every day (so the counters grow whenever the test
 * runs), no holidays, evaluation every second, "for" of 30m cut to 2s and
 * the silence threshold of 10m cut to 4s. The simulator runs a simulated
 * day per real minute, ending at the present, with online-drop for
 * Ea H'Leo and feed-silent for Lắk's iGate: both alerts must fire, and the
 * district's rows must be in InfluxDB.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "tests/harness/harness.h"

extern char **environ;

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s", path);
  struct buf b;
  buf_init(&b, 0);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    cr_assert_eq(buf_append(&b, chunk, n), IOCD_OK);
  }
  fclose(f);
  cr_assert_eq(buf_putc(&b, '\0'), IOCD_OK);
  return buf_detach(&b, NULL);
}

/* Replaces the one occurrence of from in *text with to. */
static void replace(char **text, const char *from, const char *to) {
  char *p = strstr(*text, from);
  cr_assert_not_null(p, "not in the example: %s", from);
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(buf_append(&b, *text, (size_t)(p - *text)), IOCD_OK);
  cr_assert_eq(buf_puts(&b, to), IOCD_OK);
  cr_assert_eq(buf_puts(&b, p + strlen(from)), IOCD_OK);
  free(*text);
  *text = buf_detach(&b, NULL);
}

/* Cuts the text between from and to (from included, to kept), putting
 * with in its place. */
static void cut(char **text, const char *from, const char *to,
                const char *with) {
  char *a = strstr(*text, from);
  cr_assert_not_null(a, "%s", from);
  char *z = strstr(a, to);
  cr_assert_not_null(z, "%s", to);
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(buf_append(&b, *text, (size_t)(a - *text)), IOCD_OK);
  cr_assert_eq(buf_puts(&b, with), IOCD_OK);
  cr_assert_eq(buf_puts(&b, z), IOCD_OK);
  free(*text);
  *text = buf_detach(&b, NULL);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "%s", path);
  cr_assert_eq(fputs(text, f) >= 0, true);
  cr_assert_eq(fclose(f), 0);
}

/* The example configuration and rules, adapted as the header says. */
static char *adapted_config(const struct h_env *e) {
  char rules_path[512], tmp[600];
  snprintf(rules_path, sizeof rules_path, "%s/rules.jsonc", e->dir);
  char *rules = slurp(IOCD_SOURCE_DIR "/config/rules/daklak.jsonc");
  while (strstr(rules, "\"for\": \"30m\"")) {
    replace(&rules, "\"for\": \"30m\"", "\"for\": \"2s\"");
  }
  replace(&rules, "age(_source.seen) > 10m", "age(_source.seen) > 4s");
  write_file(rules_path, rules);
  free(rules);

  char *cfg = slurp(IOCD_SOURCE_DIR "/config/iocd.example.jsonc");
  snprintf(tmp, sizeof tmp, "\"data_dir\": \"%s/data\"", e->dir);
  replace(&cfg, "\"data_dir\": \"./var/iocd\"", tmp);
  snprintf(tmp, sizeof tmp, "\"port\": %d,", e->mq.port);
  replace(&cfg, "\"port\": 1883,", tmp);
  snprintf(tmp, sizeof tmp, "\"url\": \"%s\"", e->db.url);
  replace(&cfg, "\"url\": \"http://127.0.0.1:8086\"", tmp);
  snprintf(tmp, sizeof tmp, "\"listen\": \"127.0.0.1:%d\"", e->api_port);
  replace(&cfg, "\"listen\": \"127.0.0.1:8080\"", tmp);
  replace(&cfg, "\"office_hours\": [\"07:30-11:30\", \"13:30-17:00\"]",
          "\"office_hours\": [\"00:00-24:00\"]");
  replace(&cfg, "\"weekdays\": [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]",
          "\"weekdays\": [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", "
          "\"sat\", \"sun\"]");
  cut(&cfg, "\"holidays\": [", "\n    // Make-up", "\"holidays\": [],");
  cut(&cfg, "\"workdays\": [", "\n  },", "\"workdays\": []");
  replace(&cfg, "\"evaluation_interval\": \"15s\"",
          "\"evaluation_interval\": \"1s\"");
  snprintf(tmp, sizeof tmp, "\"rule_files\": [\"%s\"]", rules_path);
  replace(&cfg, "\"rule_files\": [\"rules/daklak.jsonc\"]", tmp);
  return cfg;
}

static pid_t start_sim(const struct h_env *e, const char *config_path) {
  char log[512];
  snprintf(log, sizeof log, "%s/sim.log", e->dir);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  char *argv[] = {(char *)IOCD_SIM_PATH,
                  "-c",
                  (char *)config_path,
                  "--speed",
                  "1440",
                  "--duration",
                  "1d",
                  "--seed",
                  "12",
                  "--client-id",
                  "iocd-sim-test",
                  "--scenario",
                  "online-drop:district=Ea H'Leo,at=0s,for=1d",
                  "--scenario",
                  "feed-silent:district=Lắk,system=igate,at=1h,for=8h",
                  NULL};
  pid_t pid;
  int rc = posix_spawn(&pid, IOCD_SIM_PATH, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  cr_assert_eq(rc, 0);
  return pid;
}

struct alert_wait {
  int port;
  const char *rule, *needle;
};

static bool alert_fires(void *ud) {
  struct alert_wait *w = ud;
  char path[256];
  snprintf(path, sizeof path, "/api/v1/alerts?state=firing&rule=%s", w->rule);
  struct buf b;
  buf_init(&b, 0);
  long st = h_http_get(w->port, path, &b);
  bool ok = st == 200 && b.data && strstr(b.data, w->needle);
  buf_cleanup(&b);
  return ok;
}

/* Each alert seen firing at least once, latched. */
struct both {
  struct alert_wait *drop, *silent;
  bool drop_seen, silent_seen;
};

static bool both_fired(void *ud) {
  struct both *b = ud;
  b->drop_seen = b->drop_seen || alert_fires(b->drop);
  b->silent_seen = b->silent_seen || alert_fires(b->silent);
  return b->drop_seen && b->silent_seen;
}

Test(sim, online_drop_and_feed_silent_fire_their_rules_for_their_districts,
     .timeout = 180) {
  struct h_env e = {0};
  cr_assert_eq(h_env_start(&e), 0);
  char *cfg = adapted_config(&e);
  /* Larger than e.config: started directly, stopped by h_env_stop. */
  cr_assert_eq(h_iocd_start(&e.iocd, e.dir, cfg), 0);
  free(cfg);
  cr_assert_eq(h_iocd_wait_log(&e.iocd, "subscribed", 20000), 0);
  pid_t sim = start_sim(&e, e.iocd.config);

  struct alert_wait drop = {e.api_port, "online_share_low",
                            "\"district\":\"Ea H'Leo\""};
  struct alert_wait silent = {e.api_port, "feed_silent",
                              "\"district\":\"Lắk\""};
  /* Both are watched at once: the silence lasts 20 s of real time, and may
   * begin and end before the drop fires on a slow machine (ASan). */
  struct both both = {&drop, &silent, false, false};
  h_wait_until(both_fired, &both, 60000);
  int drop_rc = both.drop_seen ? 0 : -1;
  int silent_rc = both.silent_seen ? 0 : -1;
  double rows = h_env_count(&e,
                            "SELECT count(received) FROM igate WHERE "
                            "district = 'Ea H\\'Leo'");
  double province = h_env_count(&e, "SELECT count(services_l3) FROM province");

  kill(sim, SIGTERM);
  int status = 0;
  waitpid(sim, &status, 0);
  struct buf other;
  buf_init(&other, 0);
  h_http_get(e.api_port, "/api/v1/alerts?state=firing&rule=online_share_low",
             &other);
  h_env_stop(&e);

  cr_assert_eq(drop_rc, 0, "online_share_low did not fire for Ea H'Leo");
  cr_assert_eq(silent_rc, 0, "feed_silent did not fire for Lắk");
  cr_assert_gt(rows, 10, "Ea H'Leo's igate rows: %f", rows);
  cr_assert_gt(province, 0);
  cr_assert_null(strstr(other.data ? other.data : "", "Krông Búk"),
                 "a district without the scenario fired: %s", other.data);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  buf_cleanup(&other);
}
