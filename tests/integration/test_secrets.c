/*
 * No secret in any output, as an auditor checks it: iocd is run with every
 * kind of secret it takes, inline, from ${ENV} and from files (the broker's
 * and InfluxDB's passwords, the API's tokens of each role, a webhook's
 * Authorization header, the Telegram bot token, the Zalo access token, the
 * SMTP password), is made to use each of them and to fail with most (an
 * alert delivered to receivers that refuse it, requests with wrong
 * tokens, a reload with changed secrets, `iocd check` of a broken file),
 * and then every output of the run is searched for every secret: iocd's
 * log, what `iocd check` printed, every answer of the API, the requests
 * the receivers got (apart from the header or URL the secret is meant
 * for), and every file iocd wrote in its data directory.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/file.h"
#include "tests/harness/harness.h"

#define S_BROKER "brkPw-5nQ8wZr2Lx"
#define S_INFLUX "infPw-7Gd3kMv9Ts"
#define S_VIEWER "view-Kp4Xa9Rt2Wq8Zm1"
#define S_OPERATOR "oper-Hb6Nc3Yu7Je5Vd0"
#define S_ADMIN "admn-Qs1Lf8Ei4Oz6Bg2"
#define S_WRONG "nope-Ux9Cw2Ir5Pk7Tm3"
#define S_HOOK "hook-Mz5Vb8Nd2Qx4Ka7"
#define S_TELEGRAM "123456:tgTok-Fh3Rj6Wn9Sa1"
#define S_ZALO "zalo-Yt2Ge7Lc4Ip9Do5"
#define S_SMTP "smtpPw-Ax3Bv6Ce9Dm"

static const char *const secrets[] = {
    S_BROKER, S_INFLUX, S_VIEWER,   S_OPERATOR, S_ADMIN,
    S_WRONG,  S_HOOK,   S_TELEGRAM, S_ZALO,     S_SMTP,
};

/* Everything iocd said to anyone but the secret's own recipient. */
static struct buf seen;

static void write_file(const char *dir, const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "%s", path);
  fputs(text, f);
  fclose(f);
  chmod(path, 0600);
}

/* Appends the file at path to seen (a missing file adds nothing). */
static void see_file(const char *path) {
  struct buf b;
  buf_init(&b, 256u << 20);
  struct iocd_err err = {0};
  if (file_read(path, &b, &err) == IOCD_OK) {
    buf_printf(&seen, "\n== %s\n", path);
    buf_append(&seen, b.data ? b.data : "", b.len);
  }
  buf_cleanup(&b);
}

/* Appends every regular file under dir, recursively. */
static void see_tree(const char *dir) {
  char cmd[1100];
  snprintf(cmd, sizeof cmd, "find '%s' -type f", dir);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  char line[1024];
  while (fgets(line, sizeof line, p)) {
    line[strcspn(line, "\n")] = '\0';
    see_file(line);
  }
  pclose(p);
}

/* An API request with curl: its status line, headers and body go to
 * seen. token may be NULL. Returns the HTTP status. */
static long api(const struct h_env *e, const char *method, const char *path,
                const char *token, const char *body) {
  char out[600], cmd[4096];
  snprintf(out, sizeof out, "%s/answer.txt", e->dir);
  snprintf(cmd, sizeof cmd,
           "curl -s -i -o '%s' -w '%%{http_code}' -X %s %s%s%s %s%s%s "
           "'http://127.0.0.1:%d%s'",
           out, method, token ? "-H 'Authorization: Bearer " : "",
           token ? token : "", token ? "'" : "",
           body ? "-H 'Content-Type: application/json' --data-binary '" : "",
           body ? body : "", body ? "'" : "", e->api_port, path);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  char code[16] = "";
  cr_assert_not_null(fgets(code, sizeof code, p));
  pclose(p);
  see_file(out);
  return strtol(code, NULL, 10);
}

/* Runs `iocd check -c path`, its stdout and stderr to seen. Returns its
 * exit status. */
static int check(const struct h_env *e, const char *path) {
  char out[600], cmd[2048];
  snprintf(out, sizeof out, "%s/check.txt", e->dir);
  snprintf(cmd, sizeof cmd, "'%s' check -c '%s' > '%s' 2>&1", h_iocd_bin(),
           path, out);
  int st = system(cmd);
  see_file(out);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The configuration: every secret iocd takes, each through one of the
 * three ways (inline, ${ENV}, *_file). hook takes the webhook's requests,
 * refuser stands in for Telegram and Zalo; smtp_port has no server. */
static void config(struct h_env *e, const char *hook, const char *refuser,
                   int smtp_port) {
  cr_assert_eq(
      h_env_config(
          e, "iocd-secrets",
          "  \"subscriptions\": [\n"
          "    {\"name\": \"igate\", \"topic\": \"ioc/{district}/igate\",\n"
          "     \"measurement\": \"igate\"}],\n"
          "  \"rule_engine\": {\"evaluation_interval\": \"1s\"},\n"
          "  \"rules\": [{\"name\": \"online_share_low\",\n"
          "     \"expr\": \"igate.online / igate.received < 0.3\",\n"
          "     \"by\": [\"district\"]}],\n"
          "  \"notifications\": {\n"
          "    \"receivers\": [\n"
          "      {\"name\": \"ops\", \"type\": \"webhook\", \"url\": \"%s\",\n"
          "       \"headers\": {\"Authorization\": \"Bearer "
          "${IOCD_T_HOOK}\"}},\n"
          "      {\"name\": \"tg\", \"type\": \"telegram\", \"base_url\": "
          "\"%s\",\n"
          "       \"token\": \"" S_TELEGRAM "\", \"chat_id\": \"-100\",\n"
          "       \"max_attempts\": 2, \"retry_min\": \"100ms\"},\n"
          "      {\"name\": \"zalo\", \"type\": \"zalo\", \"base_url\": "
          "\"%s\",\n"
          "       \"token_file\": \"%s/zalo.token\", \"user_ids\": [\"1\"],\n"
          "       \"max_attempts\": 2, \"retry_min\": \"100ms\"},\n"
          "      {\"name\": \"mail\", \"type\": \"email\",\n"
          "       \"smtp_url\": \"smtp://127.0.0.1:%d\", \"smtp_tls\": "
          "\"none\",\n"
          "       \"username\": \"iocd\", \"password_file\": "
          "\"%s/smtp.pass\",\n"
          "       \"from\": \"ioc@daklak.gov.vn\", \"to\": "
          "[\"gd@daklak.gov.vn\"],\n"
          "       \"max_attempts\": 2, \"retry_min\": \"100ms\"}],\n"
          "    \"route\": {\"receiver\": \"ops\", \"group_wait\": \"0s\",\n"
          "      \"routes\": [{\"receiver\": \"ops\", \"continue\": true},\n"
          "                   {\"receiver\": \"tg\", \"continue\": true},\n"
          "                   {\"receiver\": \"zalo\", \"continue\": true},\n"
          "                   {\"receiver\": \"mail\", \"continue\": "
          "true}]}}\n",
          hook, refuser, refuser, e->dir, smtp_port, e->dir),
      0);
  /* The broker's and InfluxDB's credentials, and the API's tokens. */
  char *cfg = malloc(sizeof e->config);
  cr_assert_not_null(cfg);
  const char *mq = strstr(e->config, "\"client_id\"");
  const char *api = strstr(e->config, "  \"api\": {");
  cr_assert(mq && api);
  const char *api_end = strstr(api, "},\n") + 3;
  int n = snprintf(
      cfg, sizeof e->config,
      "%.*s\"username\": \"iocd\", \"password\": \"" S_BROKER
      "\",\n"
      "           %.*s"
      "  \"api\": {\"listen\": \"127.0.0.1:%d\", \"tokens\": [\n"
      "    {\"name\": \"wall\", \"role\": \"viewer\", \"token\": \"" S_VIEWER
      "\"},\n"
      "    {\"name\": \"duty\", \"role\": \"operator\", \"token\": "
      "\"${IOCD_T_OPERATOR}\"},\n"
      "    {\"name\": \"root\", \"role\": \"admin\", \"token_file\": "
      "\"%s/admin.token\"}]},\n%s",
      (int)(mq - e->config), e->config, (int)(api - mq), mq, e->api_port,
      e->dir, api_end);
  cr_assert(n > 0 && (size_t)n < sizeof e->config);
  memcpy(e->config, cfg, (size_t)n + 1);
  free(cfg);
  char *db = strstr(e->config, "\"database\": \"ioc\",");
  cr_assert_not_null(db);
  char tail[sizeof e->config];
  snprintf(tail, sizeof tail, "%s", db);
  snprintf(db, sizeof e->config - (size_t)(db - e->config),
           "\"username\": \"iocd\", \"password\": \"" S_INFLUX "\", %s", tail);
}

Test(secrets, no_secret_appears_in_any_output_of_a_whole_run, .timeout = 180) {
  buf_init(&seen, 512u << 20);
  setenv("IOCD_T_HOOK", S_HOOK, 1);
  setenv("IOCD_T_OPERATOR", S_OPERATOR, 1);
  struct h_env e;
  cr_assert_eq(h_env_start(&e), 0);
  /* The webhook takes it; Telegram and Zalo refuse (401). */
  struct h_recorder *rec = h_recorder_start(0);
  struct h_recorder *refuser = h_recorder_start(0);
  cr_assert(rec && refuser);
  h_recorder_default(refuser, 401,
                     "{\"ok\": false, \"error_code\": 401, "
                     "\"description\": \"Unauthorized\"}");
  write_file(e.dir, "zalo.token", S_ZALO "\n");
  write_file(e.dir, "smtp.pass", S_SMTP "\n");
  write_file(e.dir, "admin.token", S_ADMIN "\n");
  config(&e, h_recorder_url(rec), h_recorder_url(refuser), h_free_port());
  cr_assert_eq(h_env_iocd_start(&e), 0, "iocd did not start; see %s",
               e.iocd.log);

  /* iocd check of the running file, and of a broken copy. */
  cr_assert_eq(check(&e, e.iocd.config), 0);
  char broken[600];
  snprintf(broken, sizeof broken, "%s/broken.jsonc", e.dir);
  char *text = strdup(e.config);
  char *role = strstr(text, "\"role\": \"viewer\"");
  cr_assert_not_null(role);
  memcpy(role, "\"role\": \"vewer\" ", 16);
  write_file(e.dir, "broken.jsonc", text);
  free(text);
  cr_assert_neq(check(&e, broken), 0);

  /* An alert to all four receivers. */
  static const char breach[] = "{\"received\": 1000, \"online\": 50}";
  cr_assert_eq(
      h_publish(e.mq.port, "ioc/Lắk/igate", breach, sizeof breach - 1, 1, NULL),
      0);
  cr_assert_eq(h_recorder_wait(rec, 1, 20000), 0, "no notification; see %s",
               e.iocd.log);

  /* Every endpoint, with each token, a wrong one and none. */
  static const char *const gets[] = {
      "/health",        "/ready",         "/metrics",
      "/api/v1/alerts", "/api/v1/rules",  "/api/v1/silences",
      "/api/v1/acks",   "/api/v1/status", "/api/v1/notifications",
      "/api/v1/latest",
  };
  const char *const tokens[] = {NULL, S_WRONG, S_VIEWER, S_OPERATOR, S_ADMIN};
  for (size_t t = 0; t < 5; t++) {
    for (size_t i = 0; i < sizeof gets / sizeof gets[0]; i++) {
      long st = api(&e, "GET", gets[i], tokens[t], NULL);
      cr_assert(st == 200 || st == 401 || st == 403 || st == 503, "GET %s: %ld",
                gets[i], st);
    }
    api(&e, "POST", "/api/v1/silences", tokens[t],
        "{\"matchers\": [{\"name\": \"district\", \"value\": \"Lắk\"}], "
        "\"duration\": \"1h\", \"comment\": \"bảo trì\"}");
    api(&e, "POST", "/api/v1/alerts/0000000000000000/ack", tokens[t],
        "{\"comment\": \"đã biết\"}");
    api(&e, "POST", "/api/v1/reload", tokens[t], NULL);
  }
  cr_assert_eq(api(&e, "GET", "/api/v1/status", S_ADMIN, NULL), 200);

  /* A reload with changed secrets: the log says what changed, not to
   * what. */
  char *reloaded = strdup(e.config);
  char *at = strstr(reloaded, S_BROKER);
  cr_assert_not_null(at);
  at[0] = 'B';
  FILE *f = fopen(e.iocd.config, "w");
  cr_assert_not_null(f);
  fputs(reloaded, f);
  fclose(f);
  free(reloaded);
  cr_assert_eq(kill(e.iocd.pid, SIGHUP), 0);
  h_sleep_ms(1500);
  /* The dead letters of Telegram and Zalo are there by now. */
  h_sleep_ms(1000);
  api(&e, "GET", "/api/v1/notifications", S_VIEWER, NULL);

  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 20000), 0);
  see_file(e.iocd.log);
  char data[600];
  snprintf(data, sizeof data, "%s/data", e.dir);
  see_tree(data);

  /* What the receivers got, but for the header and URL meant to carry a
   * secret. */
  struct h_recorder *const recs[] = {rec, refuser};
  for (size_t r = 0; r < 2; r++) {
    size_t n = h_recorder_count(recs[r]);
    for (size_t i = 0; i < n; i++) {
      struct h_request q;
      if (!h_recorder_get(recs[r], i, &q)) {
        continue;
      }
      buf_printf(&seen, "\n== request %zu body\n%s", i, q.body ? q.body : "");
      h_request_cleanup(&q);
    }
  }
  cr_assert_gt(h_recorder_count(refuser), 0,
               "Telegram and Zalo were not tried");
  h_recorder_stop(rec);
  h_recorder_stop(refuser);

  cr_assert_gt(seen.len, 10000, "too little output to be a real run");
  for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
    const char *hit = NULL;
    for (size_t off = 0; off + strlen(secrets[i]) <= seen.len; off++) {
      if (memcmp(seen.data + off, secrets[i], strlen(secrets[i])) == 0) {
        hit = seen.data + off;
        break;
      }
    }
    if (hit) {
      size_t from =
          (size_t)(hit - seen.data) > 300 ? (size_t)(hit - seen.data) - 300 : 0;
      cr_assert_fail("the secret %s appears in the output:\n%.*s", secrets[i],
                     600, seen.data + from);
    }
  }
  buf_cleanup(&seen);
  h_env_stop(&e);
}
