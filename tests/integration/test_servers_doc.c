/*
 * docs/servers.md, done as the page says against real servers on free
 * loopback ports: mosquitto on the page's iocd.conf (its listener moved to a
 * free port, its files into the test's directory) with a password file made
 * by mosquitto_passwd for the page's accounts and the page's ACL; influxd
 * with the page's [http] auth-enabled and the page's InfluxQL statements run
 * over /query; iocd on the page's "mqtt" and "influxdb" fragments with the
 * passwords in the environment. The text is taken from the page's blocks, so
 * a changed page changes (or fails) the test.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "tests/docs/docmd.h"
#include "tests/harness/harness.h"

#define IOCD_MQTT_PW "iocd-mqtt-secret"
#define EAHLEO_PW "eahleo-secret"
#define ADMIN_PW "admin-secret"
#define IOCD_INFLUX_PW "iocd-influx-secret"

/* ---- the page ---- */

/* The one block of the page with that language under that heading whose
 * text contains needle. */
static const struct md_block *block(const struct md_page *p, const char *lang,
                                    const char *heading, const char *needle) {
  const struct md_block *found = NULL;
  for (size_t i = 0; i < p->nblocks; i++) {
    const struct md_block *b = &p->blocks[i];
    if (strcmp(b->lang, lang) == 0 && strcmp(b->heading, heading) == 0 &&
        strstr(b->text, needle)) {
      cr_assert_null(found, "docs/servers.md: two ```%s blocks with \"%s\"",
                     lang, needle);
      found = b;
    }
  }
  cr_assert_not_null(found,
                     "docs/servers.md: no ```%s block under \"%s\" with \"%s\"",
                     lang, heading, needle);
  return found;
}

/* s with its one occurrence of from replaced by to (malloc'd). */
static char *replace_once(const char *s, const char *from, const char *to) {
  const char *at = strstr(s, from);
  cr_assert_not_null(at, "docs/servers.md: \"%s\" not in\n%s", from, s);
  cr_assert_null(strstr(at + 1, from), "\"%s\" twice in\n%s", from, s);
  size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
  char *out = malloc(n);
  cr_assert_not_null(out);
  snprintf(out, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
  return out;
}

static bool has_line(const char *text, const char *line) {
  size_t n = strlen(line);
  for (const char *at = strstr(text, line); at; at = strstr(at + 1, line)) {
    if ((at == text || at[-1] == '\n') && (at[n] == '\n' || at[n] == '\0')) {
      return true;
    }
  }
  return false;
}

/* The statements of the `influx -execute "..."` (or '...') lines of text, in
 * order, appended to v (at most max). */
static size_t influx_statements(const char *text, char **v, size_t n,
                                size_t max) {
  const char *cmd = "influx -execute ";
  for (const char *at = strstr(text, cmd); at; at = strstr(at, cmd)) {
    at += strlen(cmd);
    char quote = *at++;
    const char *end = strchr(at, quote);
    cr_assert(quote == '"' || quote == '\'');
    cr_assert_not_null(end);
    cr_assert_lt(n, max);
    v[n++] = strndup(at, (size_t)(end - at));
  }
  return n;
}

/* ---- files and commands ---- */

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "%s", path);
  fputs(text, f);
  cr_assert_eq(fclose(f), 0, "%s", path);
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "%s", path);
  struct buf b;
  buf_init(&b, 0);
  char chunk[4096];
  size_t k;
  while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
    cr_assert_eq(buf_append(&b, chunk, k), 0);
  }
  fclose(f);
  cr_assert_eq(buf_append(&b, "", 1), 0);
  return b.data;
}

/* Runs argv (searched in PATH) and returns its exit status. */
static int run(char *const argv[]) {
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    execvp(argv[0], argv);
    _exit(127);
  }
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- MQTT with a login ---- */

struct client {
  struct mosquitto *m;
  bool connacked, acked;
  int connack, puback;
};

static void on_connect(struct mosquitto *m, void *ud, int rc, int flags,
                       const mosquitto_property *props) {
  (void)m, (void)flags, (void)props;
  struct client *c = ud;
  c->connacked = true;
  c->connack = rc;
}

static void on_publish(struct mosquitto *m, void *ud, int mid, int rc,
                       const mosquitto_property *props) {
  (void)m, (void)mid, (void)props;
  struct client *c = ud;
  c->acked = true;
  c->puback = rc;
}

/* Drives the client until *flag is set, at most 10 s; false on timeout or a
 * lost connection. */
static bool drive(struct client *c, const bool *flag) {
  time_t end = time(NULL) + 10;
  while (!*flag && time(NULL) < end) {
    if (mosquitto_loop(c->m, 100, 1) != MOSQ_ERR_SUCCESS) {
      return *flag;
    }
  }
  return *flag;
}

/* Connects with MQTT 5 and returns the CONNACK reason code (0: accepted),
 * or -1 when none came. user NULL: anonymous. */
static int client_connect(struct client *c, int port, const char *id,
                          const char *user, const char *pw) {
  memset(c, 0, sizeof *c);
  mosquitto_lib_init();
  c->m = mosquitto_new(id, true, c);
  cr_assert_not_null(c->m);
  mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
  mosquitto_connect_v5_callback_set(c->m, on_connect);
  mosquitto_publish_v5_callback_set(c->m, on_publish);
  if (user) {
    cr_assert_eq(mosquitto_username_pw_set(c->m, user, pw), MOSQ_ERR_SUCCESS);
  }
  cr_assert_eq(mosquitto_connect(c->m, "127.0.0.1", port, 30),
               MOSQ_ERR_SUCCESS);
  return drive(c, &c->connacked) ? c->connack : -1;
}

/* Publishes at QoS 1 and returns the PUBACK reason code, or -1. */
static int client_publish(struct client *c, const char *topic,
                          const char *payload) {
  c->acked = false;
  cr_assert_eq(mosquitto_publish_v5(c->m, NULL, topic, (int)strlen(payload),
                                    payload, 1, false, NULL),
               MOSQ_ERR_SUCCESS);
  return drive(c, &c->acked) ? c->puback : -1;
}

static void client_close(struct client *c) {
  mosquitto_disconnect(c->m);
  mosquitto_destroy(c->m);
  mosquitto_lib_cleanup();
}

/* ---- InfluxDB with a login ---- */

static size_t collect(char *p, size_t sz, size_t n, void *ud) {
  return buf_append(ud, p, sz * n) == 0 ? sz * n : 0;
}

/* POSTs body to d's path as user (NULL: no login); returns the HTTP status
 * and the answer in *out (malloc'd, may be NULL). */
static long influx_post(const struct h_influxd *d, const char *path,
                        const char *user, const char *pw, const char *body,
                        char **out) {
  CURL *e = curl_easy_init();
  cr_assert_not_null(e);
  char url[256], login[128];
  snprintf(url, sizeof url, "%s%s", d->url, path);
  struct buf b;
  buf_init(&b, 0);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
  if (user) {
    snprintf(login, sizeof login, "%s:%s", user, pw);
    curl_easy_setopt(e, CURLOPT_USERPWD, login);
  }
  long code = 0;
  if (curl_easy_perform(e) == CURLE_OK) {
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  }
  curl_easy_cleanup(e);
  buf_append(&b, "", 1);
  *out = b.data;
  return code;
}

/* Runs one InfluxQL statement (db may be NULL) and returns the HTTP status;
 * *json receives the answer (malloc'd). */
static long influx_query(const struct h_influxd *d, const char *user,
                         const char *pw, const char *db, const char *q,
                         char **json) {
  char *eq = curl_easy_escape(NULL, q, 0);
  cr_assert_not_null(eq);
  char body[2048];
  snprintf(body, sizeof body, "q=%s%s%s", eq, db ? "&db=" : "", db ? db : "");
  curl_free(eq);
  return influx_post(d, "/query", user, pw, body, json);
}

/* The columns and values of the only series of a /query answer, or NULL
 * when it has none. */
static cJSON *only_series(cJSON *root) {
  cJSON *res = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "results"), 0);
  cr_assert_not_null(res);
  cr_assert_null(cJSON_GetObjectItem(res, "error"));
  cJSON *series = cJSON_GetObjectItem(res, "series");
  if (!series) {
    return NULL;
  }
  cr_assert_eq(cJSON_GetArraySize(series), 1);
  return cJSON_GetArrayItem(series, 0);
}

struct rows_ud {
  const struct h_influxd *db;
};

static bool igate_has_row(void *ud) {
  const struct rows_ud *r = ud;
  char *json = NULL;
  long code = influx_query(r->db, "admin", ADMIN_PW, "ioc",
                           "SELECT * FROM igate", &json);
  bool yes = code == 200 && strstr(json, "\"values\"");
  free(json);
  return yes;
}

/* ---- the test ---- */

static bool program_in_path(const char *name) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", name);
  return system(cmd) == 0;
}

Test(servers_doc, the_pages_least_privilege_setup_works, .timeout = 120) {
  if (!program_in_path("mosquitto_passwd")) {
    cr_skip_test(
        "mosquitto_passwd is not installed (package mosquitto): "
        "docs/servers.md makes the password file with it");
  }
  size_t npages;
  struct md_page *pages = md_pages(IOCD_SOURCE_DIR, &npages);
  const struct md_page *page = NULL;
  for (size_t i = 0; i < npages; i++) {
    if (strcmp(pages[i].name, "docs/servers.md") == 0) {
      page = &pages[i];
    }
  }
  cr_assert_not_null(page, "docs/servers.md not found");

  char root[256], mqdir[300], dbdir[300], iocddir[300], path[400];
  cr_assert_eq(h_tmpdir(root, sizeof root), 0);
  snprintf(mqdir, sizeof mqdir, "%s/mosquitto", root);
  snprintf(dbdir, sizeof dbdir, "%s/influxd", root);
  snprintf(iocddir, sizeof iocddir, "%s/iocd", root);
  cr_assert_eq(mkdir(mqdir, 0700), 0);
  cr_assert_eq(mkdir(dbdir, 0700), 0);
  cr_assert_eq(mkdir(iocddir, 0700), 0);

  /* -- mosquitto: the accounts, made as the page makes them -- */
  char passwd[400], acl[400];
  snprintf(passwd, sizeof passwd, "%s/passwd", mqdir);
  snprintf(acl, sizeof acl, "%s/acl", mqdir);
  const struct md_block *pwb =
      block(page, "sh", "mosquitto", "mosquitto_passwd");
  cr_assert(has_line(pwb->text,
                     "mosquitto_passwd -c /etc/mosquitto/passwd "
                     "iocd"),
            "%s", pwb->text);
  cr_assert(has_line(pwb->text,
                     "mosquitto_passwd /etc/mosquitto/passwd "
                     "eahleo"),
            "%s", pwb->text);
  char *mk_iocd[] = {"mosquitto_passwd", "-c", "-b", passwd, "iocd",
                     IOCD_MQTT_PW,       NULL};
  char *mk_eahleo[] = {"mosquitto_passwd", "-b",      passwd,
                       "eahleo",           EAHLEO_PW, NULL};
  cr_assert_eq(run(mk_iocd), 0);
  cr_assert_eq(run(mk_eahleo), 0);

  /* The ACL as it stands on the page. */
  const struct md_block *aclb = block(page, "", "mosquitto", "user eahleo");
  cr_assert(has_line(aclb->text, "user iocd"));
  cr_assert(has_line(aclb->text, "topic read ioc/#"));
  cr_assert(has_line(aclb->text, "topic write iocd/rejected/#"));
  cr_assert(has_line(aclb->text, "topic write ioc/Ea H'Leo/#"));
  write_text(acl, aclb->text);

  /* The page's iocd.conf, listening on a free loopback port and naming the
   * test's files. It comes after the harness's own lines: its
   * allow_anonymous false, password_file and acl_file apply to every
   * listener. */
  const struct md_block *confb = block(page, "", "mosquitto", "listener 1883");
  cr_assert(has_line(confb->text, "allow_anonymous false"));
  cr_assert(has_line(confb->text, "max_queued_messages 100000"));
  cr_assert(has_line(confb->text, "persistent_client_expiration 7d"));
  int mqtt_port = h_free_port();
  cr_assert_gt(mqtt_port, 0);
  char line[600];
  snprintf(line, sizeof line, "\nlistener %d 127.0.0.1\n", mqtt_port);
  char *c1 = replace_once(confb->text, "\nlistener 1883\n", line);
  snprintf(line, sizeof line, "password_file %s\n", passwd);
  char *c2 = replace_once(c1, "password_file /etc/mosquitto/passwd\n", line);
  snprintf(line, sizeof line, "acl_file %s\n", acl);
  char *conf = replace_once(c2, "acl_file /etc/mosquitto/acl\n", line);
  free(c1);
  free(c2);
  struct h_mosquitto mq;
  cr_assert_eq(h_mosquitto_start(&mq, mqdir, conf), 0);
  cr_assert_neq(mq.port, mqtt_port);
  cr_assert_eq(h_wait_port(mqtt_port, 10000), 0,
               "mosquitto does not listen on the page's listener");
  free(conf);

  /* -- influxd: auth-enabled from the page's [http] -- */
  struct h_influxd db;
  cr_assert_eq(h_influxd_start(&db, dbdir), 0);
  h_influxd_stop(&db);
  const struct md_block *tomlb = block(page, "toml", "InfluxDB 1.6", "[http]");
  cr_assert(has_line(tomlb->text, "  auth-enabled = true"));
  snprintf(path, sizeof path, "%s/influxdb.conf", dbdir);
  char *dbconf = read_text(path);
  char *authconf = replace_once(dbconf, "[http]\n", tomlb->text);
  write_text(path, authconf);
  free(dbconf);
  free(authconf);
  cr_assert_eq(h_influxd_restart(&db), 0);

  /* Until there is an administrator every other statement is refused. */
  char *json = NULL;
  influx_query(&db, NULL, NULL, NULL, "CREATE DATABASE ioc", &json);
  cr_assert(strstr(json, "create admin user first or disable authentication"),
            "%s", json);
  free(json);

  /* The page's statements, in its order, passwords filled in: the first
   * (CREATE USER admin) without a login, the others as admin. */
  char *stmts[16];
  size_t nst = 0;
  for (size_t i = 0; i < page->nblocks; i++) {
    const struct md_block *b = &page->blocks[i];
    if (strcmp(b->lang, "sh") == 0 && strcmp(b->heading, "InfluxDB 1.6") == 0) {
      nst = influx_statements(b->text, stmts, nst, 16);
    }
  }
  cr_assert_geq(nst, 4);
  cr_assert_str_eq(stmts[0],
                   "CREATE USER admin WITH PASSWORD '...' WITH ALL PRIVILEGES");
  cr_assert_str_eq(stmts[1], "CREATE DATABASE ioc");
  cr_assert_str_eq(stmts[2], "CREATE USER iocd WITH PASSWORD '...'");
  cr_assert_str_eq(stmts[3], "GRANT WRITE ON ioc TO iocd");
  for (size_t i = 0; i < nst; i++) {
    const char *pw = strstr(stmts[i], "USER admin ")  ? "'" ADMIN_PW "'"
                     : strstr(stmts[i], "USER iocd ") ? "'" IOCD_INFLUX_PW "'"
                                                      : "'other-secret'";
    char *q = strstr(stmts[i], "'...'") ? replace_once(stmts[i], "'...'", pw)
                                        : strdup(stmts[i]);
    long code = influx_query(&db, i ? "admin" : NULL, i ? ADMIN_PW : NULL, NULL,
                             q, &json);
    cr_assert_eq(code, 200, "%s: HTTP %ld %s", q, code, json);
    cr_assert_null(strstr(json, "\"error\""), "%s: %s", q, json);
    free(json);
    free(q);
    free(stmts[i]);
  }

  /* SHOW GRANTS FOR iocd answers the page's table. */
  const struct md_block *grantsb =
      block(page, "", "Checking InfluxDB", "privilege");
  char gdb[64], gpriv[64];
  cr_assert_eq(sscanf(grantsb->text,
                      "database privilege\n-------- "
                      "---------\n%63s %63s",
                      gdb, gpriv),
               2, "%s", grantsb->text);
  cr_assert_eq(
      influx_query(&db, "admin", ADMIN_PW, NULL, "SHOW GRANTS FOR iocd", &json),
      200);
  cJSON *root_json = cJSON_Parse(json);
  cJSON *s = only_series(root_json);
  cr_assert_not_null(s, "%s", json);
  cJSON *cols = cJSON_GetObjectItem(s, "columns");
  cJSON *vals = cJSON_GetObjectItem(s, "values");
  cr_assert_str_eq(cJSON_GetArrayItem(cols, 0)->valuestring, "database");
  cr_assert_str_eq(cJSON_GetArrayItem(cols, 1)->valuestring, "privilege");
  cr_assert_eq(cJSON_GetArraySize(vals), 1, "%s", json);
  cJSON *g = cJSON_GetArrayItem(vals, 0);
  cr_assert_str_eq(cJSON_GetArrayItem(g, 0)->valuestring, gdb);
  cr_assert_str_eq(cJSON_GetArrayItem(g, 1)->valuestring, gpriv);
  cr_assert_str_eq(gdb, "ioc");
  cr_assert_str_eq(gpriv, "WRITE");
  cJSON_Delete(root_json);
  free(json);

  /* The page's check of iocd's password: 204, 401 for a wrong one. */
  cr_assert_eq(influx_post(&db, "/write?db=ioc", "iocd", IOCD_INFLUX_PW,
                           "iocd_check value=1", &json),
               204, "%s", json);
  free(json);
  cr_assert_eq(influx_post(&db, "/write?db=ioc", "iocd", "wrong",
                           "iocd_check value=1", &json),
               401, "%s", json);
  free(json);
  cr_assert_eq(influx_query(&db, "admin", ADMIN_PW, "ioc",
                            "DROP MEASUREMENT iocd_check", &json),
               200, "%s", json);
  free(json);

  /* -- the broker refuses who the page says it refuses -- */
  struct client c;
  cr_assert_neq(client_connect(&c, mqtt_port, "anon", NULL, NULL), 0,
                "an anonymous client was let in");
  client_close(&c);
  cr_assert_neq(client_connect(&c, mqtt_port, "bad", "eahleo", "wrong"), 0,
                "a wrong password was let in");
  client_close(&c);

  /* -- iocd on the page's fragments -- */
  const struct md_block *mqttb = block(page, "jsonc", "mosquitto", "\"mqtt\"");
  const struct md_block *influxb =
      block(page, "jsonc", "InfluxDB 1.6", "\"influxdb\"");
  cr_assert(strstr(mqttb->text, "\"username\": \"iocd\""));
  cr_assert(strstr(mqttb->text, "\"password\": \"${IOCD_MQTT_PASSWORD}\""));
  cr_assert(strstr(influxb->text, "\"username\": \"iocd\""));
  cr_assert(strstr(influxb->text, "\"password\": \"${IOCD_INFLUX_PASSWORD}\""));
  cr_assert(strstr(influxb->text, "\"database\": \"ioc\""));
  cr_assert(strstr(influxb->text, "\"create_database\": false"));
  snprintf(line, sizeof line, "\"host\": \"127.0.0.1\", \"port\": %d",
           mqtt_port);
  char *mqttf = replace_once(
      mqttb->text, "\"host\": \"mqtt.ioc.example\", \"port\": 1883", line);
  snprintf(line, sizeof line, "\"url\": \"%s\"", db.url);
  char *influxf = replace_once(
      influxb->text, "\"url\": \"http://influxdb.ioc.example:8086\"", line);
  int api_port = h_free_port();
  cr_assert_gt(api_port, 0);
  char config[8192];
  snprintf(config, sizeof config,
           "{\n"
           "\"data_dir\": \"%s/data\",\n"
           "\"log\": {\"level\": \"info\"},\n"
           "%s,\n%s,\n"
           "\"api\": {\"listen\": \"127.0.0.1:%d\"},\n"
           "\"subscriptions\": [\n"
           "  {\"name\": \"igate\", \"topic\": \"ioc/{district}/igate\",\n"
           "   \"measurement\": \"igate\", \"format\": \"json\", \"qos\": 1}\n"
           "]\n"
           "}\n",
           iocddir, mqttf, influxf, api_port);
  free(mqttf);
  free(influxf);
  cr_assert_eq(setenv("IOCD_MQTT_PASSWORD", IOCD_MQTT_PW, 1), 0);
  cr_assert_eq(setenv("IOCD_INFLUX_PASSWORD", IOCD_INFLUX_PW, 1), 0);
  struct h_iocd iocd;
  cr_assert_eq(h_iocd_start(&iocd, iocddir, config), 0);
  cr_assert_eq(h_iocd_wait_log(&iocd, "subscribed", 20000), 0,
               "iocd did not subscribe; see %s", iocd.log);
  long ready = 0;
  for (int i = 0; i < 200 && ready != 200; i++) {
    struct buf out;
    buf_init(&out, 0);
    ready = h_http_get(api_port, "/ready", &out);
    buf_cleanup(&out);
    if (ready != 200) {
      h_sleep_ms(50);
    }
  }
  cr_assert_eq(ready, 200, "/ready: %ld; see %s", ready, iocd.log);

  /* -- a district publishes: under its name only -- */
  cr_assert_eq(
      client_connect(&c, mqtt_port, "eahleo-check", "eahleo", EAHLEO_PW), 0);
  /* Refused first, on the same connection: had it passed, it would reach
   * iocd before the allowed one. */
  cr_assert_eq(client_publish(&c, "ioc/Lắk/igate", "{\"received\": 7}"),
               MQTT_RC_NOT_AUTHORIZED);
  cr_assert_eq(client_publish(&c, "ioc/Ea H'Leo/igate", "{\"received\": 1520}"),
               0);
  client_close(&c);
  struct rows_ud ud = {&db};
  cr_assert_eq(h_wait_until(igate_has_row, &ud, 20000), 0,
               "nothing reached InfluxDB; see %s", iocd.log);
  h_sleep_ms(1500); /* more than a flush_interval: anything else lands */
  cr_assert_eq(influx_query(&db, "admin", ADMIN_PW, "ioc",
                            "SELECT received, district FROM igate", &json),
               200);
  root_json = cJSON_Parse(json);
  s = only_series(root_json);
  cr_assert_not_null(s, "%s", json);
  vals = cJSON_GetObjectItem(s, "values");
  cr_assert_eq(cJSON_GetArraySize(vals), 1, "%s", json);
  cJSON *row = cJSON_GetArrayItem(vals, 0);
  cr_assert_eq(cJSON_GetArrayItem(row, 1)->valuedouble, 1520, "%s", json);
  cr_assert_str_eq(cJSON_GetArrayItem(row, 2)->valuestring, "Ea H'Leo");
  cJSON_Delete(root_json);
  free(json);

  /* create_database false: iocd never asked for what needs an admin. */
  cr_assert_not(h_iocd_log_contains(&iocd, "403"), "see %s", iocd.log);
  cr_assert_not(h_iocd_log_contains(&iocd, "CREATE DATABASE"), "see %s",
                iocd.log);

  cr_assert_eq(h_iocd_stop(&iocd, SIGTERM, 15000), 0);
  h_mosquitto_stop(&mq);
  h_influxd_stop(&db);
  if (!getenv("IOCD_TEST_KEEP")) {
    h_rmtree(root);
  }
  md_pages_free(pages, npages);
}
