/*
 * Broker security as a user sets it up (docs/security.md): iocd reading a
 * mosquitto TLS listener into a real influxd; the accounts and ACL that
 * `iocd broker-accounts` writes, loaded by a real mosquitto 2.0 (districts
 * whose names have diacritics, spaces and apostrophes; one district
 * publishing into another's topic; anonymous clients; a second run that
 * keeps the passwords); and the district identity check of a subscription
 * seen from outside (rows, the reject counter, the log line).
 *
 * Publishers are the mosquitto_pub and mosquitto_sub programs, run without
 * a shell so that names need no quoting.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "tests/harness/harness.h"

extern char **environ;

#define IGATE_SUB                                                     \
  "  \"subscriptions\": [{\"name\": \"igate\", \"topic\": "           \
  "\"ioc/{district}/igate\", \"measurement\": \"igate\", \"types\": " \
  "{\"received\": \"integer\"}%s}]\n"

#define A "Buôn Ma Thuột"
#define B "Cư M'gar"
#define C "M'Đrắk"
#define D "Ea H'Leo"

/* Runs argv without a shell, its output (both streams) to out_path when
 * not NULL. Returns the exit status, or -1. */
static int run(char *const argv[], const char *out_path) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (out_path) {
    posix_spawn_file_actions_addopen(&fa, 1, out_path,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  }
  pid_t pid;
  int e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (e) {
    return -1;
  }
  int st;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) {
      return -1;
    }
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    return NULL;
  }
  struct buf b;
  buf_init(&b, 1 << 20);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    cr_assert_eq(buf_append(&b, chunk, n), 0);
  }
  fclose(f);
  cr_assert_eq(buf_putc(&b, '\0'), 0);
  return buf_detach(&b, NULL);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "%s", path);
  fputs(text, f);
  fclose(f);
}

/* Replaces the first from in e->config with to. */
static void config_replace(struct h_env *e, const char *from, const char *to) {
  char *at = strstr(e->config, from);
  cr_assert_not_null(at, "%s not in the config", from);
  char cfg[sizeof e->config];
  int k = snprintf(cfg, sizeof cfg, "%.*s%s%s", (int)(at - e->config),
                   e->config, to, at + strlen(from));
  cr_assert(k > 0 && (size_t)k < sizeof cfg);
  memcpy(e->config, cfg, sizeof cfg);
}

/* Moves e's broker to a new one with extra_conf (the harness's h_env
 * starts an open one). */
static void broker_restart_with(struct h_env *e, const char *extra_conf) {
  char old_port[32], new_port[32];
  snprintf(old_port, sizeof old_port, "\"port\": %d,", e->mq.port);
  h_mosquitto_stop(&e->mq);
  h_rmtree(e->mq.dir);
  cr_assert_eq(h_mosquitto_start(&e->mq, NULL, extra_conf), 0);
  snprintf(new_port, sizeof new_port, "\"port\": %d,", e->mq.port);
  if (strstr(e->config, old_port)) {
    config_replace(e, old_port, new_port);
  }
}

static double count_where(const struct h_env *e, const char *district) {
  char q[256];
  /* InfluxQL strings escape ' as \'. */
  char esc[128];
  size_t k = 0;
  for (const char *p = district; *p && k + 2 < sizeof esc; p++) {
    if (*p == '\'') {
      esc[k++] = '\\';
    }
    esc[k++] = *p;
  }
  esc[k] = '\0';
  snprintf(q, sizeof q,
           "SELECT count(received) FROM igate WHERE district = '%s'", esc);
  return h_env_count(e, q);
}

static int wait_where(const struct h_env *e, const char *district,
                      double want) {
  for (int i = 0; i < 200; i++) {
    if (count_where(e, district) >= want) {
      return 0;
    }
    h_sleep_ms(100);
  }
  return -1;
}

Test(broker_tls, a_message_published_over_tls_lands_in_influxdb) {
  struct h_env e;
  cr_assert_eq(h_env_start(&e), 0);
  cr_assert_eq(h_make_pki(e.dir), 0, "see %s/openssl.log", e.dir);
  int tls_port = h_free_port();
  char extra[1024];
  snprintf(extra, sizeof extra,
           "listener %d 127.0.0.1\n"
           "cafile %s/ca.crt\ncertfile %s/server.crt\nkeyfile %s/server.key\n"
           "require_certificate true\n",
           tls_port, e.dir, e.dir, e.dir);
  cr_assert_eq(h_env_config(&e, "iocd-tls", IGATE_SUB, ""), 0);
  broker_restart_with(&e, extra);
  cr_assert_eq(h_wait_port(tls_port, 10000), 0);
  /* iocd on the TLS listener only, host name checked. */
  char plain[96], mqtt[1024];
  snprintf(plain, sizeof plain, "\"host\": \"127.0.0.1\", \"port\": %d,",
           e.mq.port);
  snprintf(mqtt, sizeof mqtt,
           "\"host\": \"localhost\", \"port\": %d, \"tls\": "
           "{\"ca_file\": \"%s/ca.crt\", \"cert_file\": \"%s/client.crt\", "
           "\"key_file\": \"%s/client.key\"},",
           tls_port, e.dir, e.dir, e.dir);
  config_replace(&e, plain, mqtt);
  cr_assert_eq(h_env_iocd_start(&e), 0, "iocd did not subscribe; see %s",
               e.iocd.log);
  cr_assert(h_iocd_log_contains(&e.iocd, "connected to localhost"));

  char port[16], ca[320], cert[320], key[320];
  snprintf(port, sizeof port, "%d", tls_port);
  snprintf(ca, sizeof ca, "%s/ca.crt", e.dir);
  snprintf(cert, sizeof cert, "%s/client.crt", e.dir);
  snprintf(key, sizeof key, "%s/client.key", e.dir);
  char *pub[] = {"mosquitto_pub",
                 "-h",
                 "localhost",
                 "-p",
                 port,
                 "--cafile",
                 ca,
                 "--cert",
                 cert,
                 "--key",
                 key,
                 "-q",
                 "1",
                 "-t",
                 "ioc/" B "/igate",
                 "-m",
                 "{\"received\": 42}",
                 NULL};
  cr_assert_eq(run(pub, NULL), 0);
  cr_assert_eq(wait_where(&e, B, 1), 0, "no row; see %s", e.iocd.log);
  cr_assert_eq(h_env_count(&e, "SELECT sum(received) FROM igate"), 42);
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  h_env_stop(&e);
}

/* ---- accounts and ACL --------------------------------------------- */

static const char gen3[] =
    "{\"file\": {\"path\": \"-\"},\n"
    " \"sources\": {\"districts\": [\"" A "\", \"" B "\", \"" C
    "\"]},\n"
    " \"subscriptions\": [{\"topic\": \"ioc/{district}/igate\"},\n"
    "                   {\"topic\": \"ioc/{district}/sensors/{field}\"}]}\n";

static const char gen4[] =
    "{\"file\": {\"path\": \"-\"},\n"
    " \"sources\": {\"districts\": [\"" A "\", \"" B "\", \"" C "\", \"" D
    "\"]},\n"
    " \"subscriptions\": [{\"topic\": \"ioc/{district}/igate\"},\n"
    "                   {\"topic\": \"ioc/{district}/sensors/{field}\"}]}\n";

/* The password of name in DIR/credentials, copied to out. */
static void password_of(const char *dir, const char *name, char *out,
                        size_t n) {
  char path[512];
  snprintf(path, sizeof path, "%s/credentials", dir);
  char *text = read_all(path);
  cr_assert_not_null(text, "%s", path);
  size_t nl = strlen(name);
  for (char *line = text; line && *line;) {
    char *end = strchr(line, '\n');
    if (strncmp(line, name, nl) == 0 && line[nl] == ':') {
      snprintf(
          out, n, "%.*s",
          (int)(end ? end - line - (long)nl - 1 : (long)strlen(line + nl + 1)),
          line + nl + 1);
      free(text);
      return;
    }
    line = end ? end + 1 : NULL;
  }
  free(text);
  cr_assert_fail("no account %s in %s", name, path);
}

static int accounts(const struct h_env *e, const char *config_text,
                    const char *out_dir, const char *log) {
  char cfg[512];
  snprintf(cfg, sizeof cfg, "%s/gen.jsonc", e->dir);
  write_text(cfg, config_text);
  char *argv[] = {(char *)h_iocd_bin(),
                  "broker-accounts",
                  "-c",
                  cfg,
                  "-o",
                  (char *)out_dir,
                  NULL};
  return run(argv, log);
}

/* mosquitto_pub as user (NULL: anonymous); returns its exit status. */
static int publish_as(const struct h_env *e, const char *user,
                      const char *password, const char *topic,
                      const char *payload, const char *out) {
  char port[16];
  snprintf(port, sizeof port, "%d", e->mq.port);
  char *argv[] = {"mosquitto_pub",
                  "-p",
                  port,
                  "-V",
                  "5",
                  "-q",
                  "1",
                  "-t",
                  (char *)topic,
                  "-m",
                  (char *)payload,
                  "-u",
                  (char *)user,
                  "-P",
                  (char *)password,
                  NULL};
  if (!user) {
    argv[11] = NULL;
  }
  return run(argv, out);
}

Test(broker_accounts, districts_publish_only_their_own_topics) {
  struct h_env e;
  cr_assert_eq(h_env_start(&e), 0);
  char dir[300], log[320], text_path[340];
  snprintf(dir, sizeof dir, "%s/accounts", e.dir);
  snprintf(log, sizeof log, "%s/accounts.log", e.dir);
  cr_assert_eq(accounts(&e, gen3, dir, log), 0, "see %s", log);
  char *out = read_all(log);
  cr_assert(strstr(out, "added: 4 (" A ", " B ", " C ", iocd)"), "%s", out);
  free(out);
  snprintf(text_path, sizeof text_path, "%s/credentials", dir);
  struct stat st;
  cr_assert_eq(stat(text_path, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0600, "credentials mode %o",
               (unsigned)(st.st_mode & 0777));
  char pw_a[64], pw_b[64], pw_c[64], pw_iocd[64];
  password_of(dir, A, pw_a, sizeof pw_a);
  password_of(dir, B, pw_b, sizeof pw_b);
  password_of(dir, C, pw_c, sizeof pw_c);
  password_of(dir, "iocd", pw_iocd, sizeof pw_iocd);
  cr_assert_eq(strlen(pw_a), 24);
  cr_assert_str_neq(pw_a, pw_b);
  /* mosquitto's password file holds hashes only. */
  snprintf(text_path, sizeof text_path, "%s/passwd", dir);
  char *passwd = read_all(text_path);
  cr_assert_not_null(passwd);
  cr_assert_null(strstr(passwd, pw_a));
  cr_assert(strstr(passwd, A ":$7$"), "%s", passwd);
  free(passwd);

  char extra[1024];
  snprintf(extra, sizeof extra,
           "allow_anonymous false\npassword_file %s/passwd\n"
           "acl_file %s/acl\n",
           dir, dir);
  cr_assert_eq(h_env_config(&e, "iocd-acl", IGATE_SUB, ""), 0);
  broker_restart_with(&e, extra);
  char login[256];
  snprintf(login, sizeof login,
           "\"mqtt\": {\"username\": \"iocd\", \"password\": \"%s\", ",
           pw_iocd);
  config_replace(&e, "\"mqtt\": {", login);
  /* iocd's account subscribes and reads. */
  cr_assert_eq(h_env_iocd_start(&e), 0, "iocd did not subscribe; see %s",
               e.iocd.log);

  /* Anonymous clients are refused at the door, publishing and
   * subscribing. */
  char anon[320];
  snprintf(anon, sizeof anon, "%s/anon.log", e.dir);
  cr_assert_neq(
      publish_as(&e, NULL, NULL, "ioc/" A "/igate", "{\"received\": 7}", anon),
      0);
  char *said = read_all(anon);
  cr_assert(strstr(said, "ot authori"), "%s", said);
  free(said);
  char port[16];
  snprintf(port, sizeof port, "%d", e.mq.port);
  char *sub[] = {"mosquitto_sub", "-p", port, "-t", "#", "-W", "3", NULL};
  int rc = run(sub, anon);
  said = read_all(anon);
  cr_assert(rc != 0 && rc != 27, "anonymous subscriber: exit %d: %s", rc, said);
  cr_assert(strstr(said, "ot authori"), "%s", said);
  free(said);
  /* A wrong password is refused too. */
  cr_assert_neq(publish_as(&e, A, "not-the-password", "ioc/" A "/igate",
                           "{\"received\": 8}", anon),
                0);

  /* A into B's topic: dropped by the broker. Then A's own, through the
   * same broker, in order: once it is in InfluxDB the other would be. */
  publish_as(&e, A, pw_a, "ioc/" B "/igate", "{\"received\": 666}", NULL);
  publish_as(&e, A, pw_a, "ioc/" C "/sensors/x", "{\"received\": 667}", NULL);
  cr_assert_eq(
      publish_as(&e, A, pw_a, "ioc/" A "/igate", "{\"received\": 1}", NULL), 0);
  cr_assert_eq(wait_where(&e, A, 1), 0, "A's own message missing; see %s",
               e.iocd.log);
  cr_assert_eq(
      publish_as(&e, B, pw_b, "ioc/" B "/igate", "{\"received\": 2}", NULL), 0);
  cr_assert_eq(wait_where(&e, B, 1), 0, "B's own message missing");
  cr_assert_eq(count_where(&e, B), 1);
  cr_assert_eq(h_env_count(&e, "SELECT count(received) FROM igate"), 2);
  cr_assert_eq(h_env_count(&e, "SELECT max(received) FROM igate"), 2);
  /* iocd never saw the forged ones. */
  cr_assert_eq(
      h_metric(e.api_port, "iocd_messages_total{subscription=\"igate\"}"), 2);

  /* A second run, with a fourth district: the three keep their
   * passwords, the broker reloads the files on SIGHUP. */
  cr_assert_eq(accounts(&e, gen4, dir, log), 0, "see %s", log);
  out = read_all(log);
  cr_assert(strstr(out, "added: 1 (" D ")"), "%s", out);
  cr_assert(strstr(out, "kept: 4"), "%s", out);
  free(out);
  char again[64];
  password_of(dir, A, again, sizeof again);
  cr_assert_str_eq(again, pw_a);
  password_of(dir, B, again, sizeof again);
  cr_assert_str_eq(again, pw_b);
  password_of(dir, C, again, sizeof again);
  cr_assert_str_eq(again, pw_c);
  password_of(dir, "iocd", again, sizeof again);
  cr_assert_str_eq(again, pw_iocd);
  char pw_d[64];
  password_of(dir, D, pw_d, sizeof pw_d);
  cr_assert_eq(kill(e.mq.pid, SIGHUP), 0);
  h_sleep_ms(500);
  cr_assert_eq(
      publish_as(&e, D, pw_d, "ioc/" D "/igate", "{\"received\": 3}", NULL), 0);
  cr_assert_eq(wait_where(&e, D, 1), 0, "the new district's message missing");
  cr_assert_eq(
      publish_as(&e, A, pw_a, "ioc/" A "/igate", "{\"received\": 4}", NULL), 0);
  cr_assert_eq(wait_where(&e, A, 2), 0, "A's old password no longer works");

  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  h_env_stop(&e);
}

/* ---- the identity check ------------------------------------------- */

static int publish_claiming(const struct h_env *e, const char *topic,
                            const char *claim) {
  char port[16];
  snprintf(port, sizeof port, "%d", e->mq.port);
  char *argv[] = {"mosquitto_pub",
                  "-p",
                  port,
                  "-V",
                  "5",
                  "-q",
                  "1",
                  "-t",
                  (char *)topic,
                  "-m",
                  "{\"received\": 1}",
                  "-D",
                  "publish",
                  "user-property",
                  "district",
                  (char *)claim,
                  NULL};
  if (!claim) {
    argv[11] = NULL;
  }
  return run(argv, NULL);
}

Test(identity, a_claim_that_is_not_the_topics_district_is_rejected) {
  struct h_env e;
  cr_assert_eq(h_env_start(&e), 0);
  cr_assert_eq(h_env_config(&e, "iocd-identity", IGATE_SUB,
                            ", \"identity\": {\"user_property\": "
                            "\"district\"}"),
               0);
  cr_assert_eq(h_env_iocd_start(&e), 0, "see %s", e.iocd.log);
  cr_assert_eq(publish_claiming(&e, "ioc/" B "/igate", C), 0);
  cr_assert_eq(publish_claiming(&e, "ioc/" B "/igate", NULL), 0);
  cr_assert_eq(publish_claiming(&e, "ioc/" B "/igate", B), 0);
  cr_assert_eq(wait_where(&e, B, 1), 0, "see %s", e.iocd.log);
  cr_assert_eq(h_env_count(&e, "SELECT count(received) FROM igate"), 1);
  cr_assert_eq(h_metric(e.api_port,
                        "iocd_rejects_total{subscription=\"igate\","
                        "reason=\"identity\"}"),
               2);
  cr_assert(h_iocd_log_contains(
                &e.iocd, "rejected message on \\\"ioc/" B
                         "/igate\\\" (subscription igate): identity: user "
                         "property \\\"district\\\" is \\\"" C
                         "\\\", the topic's district is \\\"" B "\\\""),
            "see %s", e.iocd.log);
  cr_assert(h_iocd_log_contains(&e.iocd,
                                "identity: no user property \\\"district\\\""),
            "see %s", e.iocd.log);
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  h_env_stop(&e);
}
