/*
 * The Grafana dashboards of grafana/ proved without Grafana (it is not
 * packaged for Debian): every dashboard parses, has its fixed uid, and uses
 * only the provisioned datasource (uid iocd-influxdb); then, after iocd-sim
 * ran a simulated day through mosquitto and iocd into a real influxd (in
 * compressed time, as in test_sim.c, with bad payloads mixed in and the
 * self-metrics every second) and an operator acknowledged a firing alert
 * through iocd's API (the `alert_acks` panels), every panel query,
 * annotation query and template variable query is expanded as Grafana
 * expands InfluxQL macros and variables, and run: an error or an empty
 * answer fails the test, naming the dashboard, the panel and the query.
 *
 * Grafana's expansion, as done here (its InfluxDB datasource):
 *   $timeFilter, $__timeFilter  time >= now() - RANGE and time <= now(),
 *                               RANGE the panel's timeFrom, else the
 *                               dashboard's time.from (now-24h -> 24h);
 *   $__interval, $interval      RANGE / 1000 points, rounded as Grafana's
 *                               roundInterval does, at least the
 *                               datasource's timeInterval (10s);
 *   $district                   a variable that is multi-value or has All:
 *                               each value regex-escaped; one value alone,
 *                               several as (a|b); All is the variable's
 *                               allValue (.*) unescaped.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
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

#define DS_UID "iocd-influxdb"
#define DASH_DIR IOCD_SOURCE_DIR "/grafana/dashboards"
#define NDASH 4

/* The dashboards and their uids: links (notifications point at
 * /d/iocd-district?var-district=...) and bookmarks depend on them. */
static const char *const uids[NDASH] = {"iocd-wall", "iocd-district",
                                        "iocd-alerts", "iocd-health"};

static char *slurp(const char *path) {
  char *text = h_read_file(path, NULL);
  cr_assert_not_null(text, "%s", path);
  return text;
}

static cJSON *load_dashboard(const char *uid) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s.json", DASH_DIR, uid);
  char *text = slurp(path);
  cJSON *d = cJSON_Parse(text);
  free(text);
  cr_assert_not_null(d, "%s does not parse", path);
  return d;
}

/* ---- Grafana's expansion ---- */

/* Seconds of a Grafana duration "24h", "7d", "30d", "now-1h"; 0 when it is
 * not one. */
static long duration_s(const char *s) {
  if (strncmp(s, "now-", 4) == 0) {
    s += 4;
  }
  char *end;
  long n = strtol(s, &end, 10);
  static const struct {
    char unit;
    long s;
  } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 604800}};
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (end != s && end[0] == units[i].unit && end[1] == '\0') {
      return n * units[i].s;
    }
  }
  return 0;
}

/* Grafana's roundInterval (in ms), from 1 s up. */
static long round_interval_ms(long ms) {
  static const long steps[][2] = {
      {1500, 1000},         {3500, 2000},         {7500, 5000},
      {12500, 10000},       {17500, 15000},       {25000, 20000},
      {45000, 30000},       {90000, 60000},       {180000, 120000},
      {450000, 300000},     {1050000, 600000},    {2100000, 1200000},
      {2700000, 1800000},   {5400000, 3600000},   {9000000, 7200000},
      {16200000, 10800000}, {27000000, 21600000}, {86400000, 43200000},
  };
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    if (ms < steps[i][0]) {
      return steps[i][1];
    }
  }
  return 86400000;
}

/* $__interval for a range of range_s seconds, as "10s", "1m", "2h". */
static void grafana_interval(long range_s, char *out, size_t n) {
  long s = round_interval_ms(range_s * 1000 / 1000) / 1000;
  if (s < 10) {
    s = 10; /* the datasource's timeInterval */
  }
  if (s % 3600 == 0) {
    snprintf(out, n, "%ldh", s / 3600);
  } else if (s % 60 == 0) {
    snprintf(out, n, "%ldm", s / 60);
  } else {
    snprintf(out, n, "%lds", s);
  }
}

/* Appends v regex-escaped as Grafana's kbn.regexEscape does. */
static void regex_escape(struct buf *b, const char *v) {
  for (const char *p = v; *p; p++) {
    if (strchr("\\^$*+?.()|[]{}/", *p)) {
      cr_assert_eq(buf_putc(b, '\\'), IOCD_OK);
    }
    cr_assert_eq(buf_putc(b, *p), IOCD_OK);
  }
}

/* The text of a multi-value variable with the values chosen (NULL: All,
 * which is all_value). Caller frees. */
static char *variable_text(const char *const *values, size_t n,
                           const char *all_value) {
  struct buf b;
  buf_init(&b, 0);
  if (!values) {
    cr_assert_eq(buf_puts(&b, all_value), IOCD_OK);
  } else if (n == 1) {
    regex_escape(&b, values[0]);
  } else {
    cr_assert_eq(buf_putc(&b, '('), IOCD_OK);
    for (size_t i = 0; i < n; i++) {
      if (i) {
        cr_assert_eq(buf_putc(&b, '|'), IOCD_OK);
      }
      regex_escape(&b, values[i]);
    }
    cr_assert_eq(buf_putc(&b, ')'), IOCD_OK);
  }
  cr_assert_eq(buf_putc(&b, '\0'), IOCD_OK);
  return buf_detach(&b, NULL);
}

/* q with the macros for a range of range_s seconds and $district (and
 * ${district}) replaced by district (NULL: left as is). Caller frees. */
static char *expand(const char *q, long range_s, const char *district) {
  char tf[96], iv[32];
  snprintf(tf, sizeof tf, "time >= now() - %lds and time <= now()", range_s);
  grafana_interval(range_s, iv, sizeof iv);
  const struct {
    const char *name, *value;
  } macros[] = {{"$__timeFilter", tf},     {"$timeFilter", tf},
                {"$__interval", iv},       {"$interval", iv},
                {"${district}", district}, {"$district", district}};
  struct buf b;
  buf_init(&b, 0);
  for (const char *p = q; *p;) {
    bool done = false;
    for (size_t i = 0; i < sizeof macros / sizeof macros[0] && !done; i++) {
      size_t len = strlen(macros[i].name);
      if (macros[i].value && strncmp(p, macros[i].name, len) == 0) {
        cr_assert_eq(buf_puts(&b, macros[i].value), IOCD_OK);
        p += len;
        done = true;
      }
    }
    if (!done) {
      cr_assert_eq(buf_putc(&b, *p++), IOCD_OK);
    }
  }
  cr_assert_eq(buf_putc(&b, '\0'), IOCD_OK);
  return buf_detach(&b, NULL);
}

Test(dashboards, expand_influxql_macros_and_variables_as_grafana_does) {
  static const struct {
    const char *values[3];
    size_t n;
    const char *want;
  } vars[] = {
      {{"Ea H'Leo"}, 1, "Ea H'Leo"},
      {{"Ea H'Leo", "Lắk"}, 2, "(Ea H'Leo|Lắk)"},
      {{"M'Đrắk", "Buôn Ma Thuột", "Krông Búk"},
       3,
       "(M'Đrắk|Buôn Ma Thuột|Krông Búk)"},
      {{"a.b", "c(d)", "e/f|g"}, 3, "(a\\.b|c\\(d\\)|e\\/f\\|g)"},
      {{"x*+?^$[]{}\\"}, 1, "x\\*\\+\\?\\^\\$\\[\\]\\{\\}\\\\"},
  };
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    char *t = variable_text(vars[i].values, vars[i].n, ".*");
    cr_expect_str_eq(t, vars[i].want);
    free(t);
  }
  char *all = variable_text(NULL, 0, ".*");
  cr_expect_str_eq(all, ".*");
  free(all);

  static const struct {
    long range_s;
    const char *want;
  } ivs[] = {{3600, "10s"},
             {6 * 3600, "20s"},
             {86400, "1m"},
             {7 * 86400, "10m"},
             {30 * 86400, "30m"}};
  for (size_t i = 0; i < sizeof ivs / sizeof ivs[0]; i++) {
    char iv[32];
    grafana_interval(ivs[i].range_s, iv, sizeof iv);
    cr_expect_str_eq(iv, ivs[i].want, "range %lds", ivs[i].range_s);
  }
  cr_expect_eq(duration_s("now-24h"), 86400);
  cr_expect_eq(duration_s("30d"), 30 * 86400);
  cr_expect_eq(duration_s("now/d"), 0);

  char *q = expand(
      "SELECT last(\"x\") FROM \"m\" WHERE \"district\" =~ "
      "/^$district$/ AND $timeFilter GROUP BY "
      "time($__interval), \"district\"",
      86400, "(Ea H'Leo|Lắk)");
  cr_expect_str_eq(q,
                   "SELECT last(\"x\") FROM \"m\" WHERE \"district\" =~ "
                   "/^(Ea H'Leo|Lắk)$/ AND time >= now() - 86400s and "
                   "time <= now() GROUP BY time(1m), \"district\"");
  free(q);
}

/* ---- What a dashboard must be ---- */

/* Appends to fails every "datasource" under node that is not the
 * provisioned one, with the path to it. */
static void check_datasources(const cJSON *node, const char *where,
                              struct buf *fails) {
  const cJSON *c;
  cJSON_ArrayForEach(c, node) {
    if (c->string && strcmp(c->string, "datasource") == 0) {
      const cJSON *uid = cJSON_GetObjectItemCaseSensitive(c, "uid");
      const cJSON *type = cJSON_GetObjectItemCaseSensitive(c, "type");
      if (!cJSON_IsString(uid) || strcmp(uid->valuestring, DS_UID) != 0 ||
          !cJSON_IsString(type) || strcmp(type->valuestring, "influxdb")) {
        char *s = cJSON_PrintUnformatted(c);
        buf_printf(fails, "%s: datasource %s is not {uid %s, influxdb}\n",
                   where, s ? s : "?", DS_UID);
        free(s);
      }
    }
    const cJSON *title = cJSON_GetObjectItemCaseSensitive(c, "title");
    char sub[512];
    snprintf(sub, sizeof sub, "%s / %s", where,
             cJSON_IsString(title) ? title->valuestring
                                   : (c->string ? c->string : "[]"));
    if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
      check_datasources(c, sub, fails);
    }
  }
}

Test(dashboards, have_stable_unique_uids_and_only_the_provisioned_datasource) {
  /* Exactly the four files, each named after its uid. */
  DIR *dir = opendir(DASH_DIR);
  cr_assert_not_null(dir);
  int files = 0;
  struct dirent *de;
  while ((de = readdir(dir))) {
    if (de->d_name[0] == '.') {
      continue;
    }
    bool known = false;
    for (size_t i = 0; i < NDASH; i++) {
      char name[64];
      snprintf(name, sizeof name, "%s.json", uids[i]);
      known = known || strcmp(de->d_name, name) == 0;
    }
    cr_expect(known, "%s/%s is not one of the dashboards", DASH_DIR,
              de->d_name);
    files++;
  }
  closedir(dir);
  cr_expect_eq(files, NDASH);

  struct buf fails;
  buf_init(&fails, 0);
  for (size_t i = 0; i < NDASH; i++) {
    cJSON *d = load_dashboard(uids[i]);
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(d, "uid");
    cr_expect(cJSON_IsString(uid) && strcmp(uid->valuestring, uids[i]) == 0,
              "%s.json: uid", uids[i]);
    check_datasources(d, uids[i], &fails);
    const cJSON *panels = cJSON_GetObjectItemCaseSensitive(d, "panels");
    cr_expect(cJSON_GetArraySize(panels) > 0, "%s: no panels", uids[i]);
    const cJSON *p;
    int ids[64] = {0};
    int nid = 0;
    cJSON_ArrayForEach(p, panels) {
      const char *title =
          cJSON_GetObjectItemCaseSensitive(p, "title")->valuestring;
      int id = cJSON_GetObjectItemCaseSensitive(p, "id")->valueint;
      for (int k = 0; k < nid; k++) {
        if (ids[k] == id) {
          buf_printf(&fails, "%s / %s: panel id %d twice\n", uids[i], title,
                     id);
        }
      }
      if (nid < 64) {
        ids[nid++] = id;
      }
      const cJSON *g = cJSON_GetObjectItemCaseSensitive(p, "gridPos");
      int x = cJSON_GetObjectItemCaseSensitive(g, "x")->valueint;
      int w = cJSON_GetObjectItemCaseSensitive(g, "w")->valueint;
      if (x < 0 || w <= 0 || x + w > 24) {
        buf_printf(&fails, "%s / %s: gridPos outside 24 columns\n", uids[i],
                   title);
      }
      const cJSON *targets = cJSON_GetObjectItemCaseSensitive(p, "targets");
      if (cJSON_GetArraySize(targets) == 0) {
        buf_printf(&fails, "%s / %s: no query\n", uids[i], title);
      }
      const cJSON *t;
      cJSON_ArrayForEach(t, targets) {
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(t, "query");
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "rawQuery")) ||
            !cJSON_IsString(q) || !q->valuestring[0]) {
          buf_printf(&fails, "%s / %s: a target is not a raw InfluxQL query\n",
                     uids[i], title);
        }
      }
    }
    cJSON_Delete(d);
  }
  cr_assert_eq(fails.len, 0, "%s", fails.data);
  buf_cleanup(&fails);

  /* The drill-down's variable, which the alerts' links set. */
  cJSON *d = load_dashboard("iocd-district");
  const cJSON *v = cJSON_GetArrayItem(
      cJSON_GetObjectItemCaseSensitive(
          cJSON_GetObjectItemCaseSensitive(d, "templating"), "list"),
      0);
  cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(v, "name")->valuestring,
                   "district");
  cr_expect(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "multi")));
  cr_expect(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "includeAll")));
  cJSON_Delete(d);

  /* The provisioning names the same uid and the database iocd writes. */
  char *ds = slurp(IOCD_SOURCE_DIR
                   "/grafana/provisioning/datasources/"
                   "iocd.yaml");
  cr_expect_not_null(strstr(ds, "uid: " DS_UID "\n"));
  cr_expect_not_null(strstr(ds, "database: ioc\n"));
  cr_expect_not_null(strstr(ds, "type: influxdb\n"));
  free(ds);
}

Test(dashboards, map_has_a_place_for_every_configured_district) {
  char *text = slurp(IOCD_SOURCE_DIR "/grafana/districts.json");
  cJSON *places = cJSON_Parse(text);
  free(text);
  cr_assert_not_null(places);
  char *cfg = slurp(IOCD_SOURCE_DIR "/config/iocd.example.jsonc");
  const char *list = strstr(cfg, "\"districts\": [");
  cr_assert_not_null(list);
  const char *end = strchr(list, ']');
  int n = 0;
  const cJSON *p;
  cJSON_ArrayForEach(p, places) {
    const char *key = cJSON_GetObjectItemCaseSensitive(p, "key")->valuestring;
    double lat = cJSON_GetObjectItemCaseSensitive(p, "latitude")->valuedouble;
    double lon = cJSON_GetObjectItemCaseSensitive(p, "longitude")->valuedouble;
    char quoted[128];
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    const char *at = strstr(list, quoted);
    cr_expect(at && at < end, "%s is not a configured district", key);
    /* Đắk Lắk lies within 12.1-13.5 N, 107.4-108.9 E. */
    cr_expect(lat > 12.1 && lat < 13.5 && lon > 107.4 && lon < 108.9,
              "%s: %f, %f", key, lat, lon);
    n++;
  }
  int configured = 0;
  for (const char *q = list; q < end; q++) {
    configured += *q == '"';
  }
  cr_expect_eq(n * 2, configured - 2, "districts.json has %d of %d", n,
               (configured - 2) / 2);
  free(cfg);
  cJSON_Delete(places);
}

/* ---- The queries against real data ---- */

/* The example configuration and rules adapted as in test_sim.c (servers,
 * office hours all day, fast rules), with self-metrics every second and
 * silent periods of the feed quality from 3 s on. */
static char *adapted_config(const struct h_env *e) {
  struct h_example_opts o = {.rule_for = "2s",
                             .silent_after = "4s",
                             .evaluation_interval = "1s",
                             .self_metrics_interval = "1s",
                             .limits_silent_after = "3s",
                             .always_office = true};
  char *cfg = h_example_config(e, &o);
  cr_assert_not_null(cfg, "the example configuration was not adapted");
  return cfg;
}

/* A simulated day in a real minute, ending now: Ea H'Leo's online share
 * drops, Lắk's iGate is silent for 8 simulated hours (20 s) and Ea H'Leo's
 * iDesk for 4 (10 s), so that each district alone has a silent period, bad
 * payloads are mixed in. Returns its exit status. */
static int run_sim(const struct h_env *e, const char *config_path) {
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
                  "7",
                  "--client-id",
                  "iocd-sim-dashboards",
                  "--scenario",
                  "online-drop:district=Ea H'Leo,at=0s,for=1d",
                  "--scenario",
                  "feed-silent:district=Lắk,system=igate,at=1h,for=8h",
                  "--scenario",
                  "feed-silent:district=Ea H'Leo,system=idesk,at=12h,for=4h",
                  "--scenario",
                  "bad-payloads",
                  NULL};
  pid_t pid;
  int rc = posix_spawn(&pid, IOCD_SIM_PATH, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  cr_assert_eq(rc, 0);
  int status = 0;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Runs q and appends to fails why it is no answer Grafana could draw: an
 * error, or no series. Returns the number of series. */
static int run_query(const struct h_env *e, const char *where, const char *q,
                     struct buf *fails) {
  char *json = NULL;
  if (h_influx_query(&e->db, "ioc", q, &json) != 0) {
    buf_printf(fails, "%s: the query fails: %s\n", where, q);
    return 0;
  }
  cJSON *doc = cJSON_Parse(json);
  const cJSON *r0 =
      cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "results"), 0);
  const cJSON *err = cJSON_GetObjectItemCaseSensitive(r0, "error");
  const cJSON *series = cJSON_GetObjectItemCaseSensitive(r0, "series");
  int n = cJSON_GetArraySize(series);
  if (!r0 || err) {
    buf_printf(fails, "%s: error %s\n    %s\n", where,
               err ? err->valuestring : json, q);
  } else if (n == 0) {
    buf_printf(fails, "%s: empty answer\n    %s\n", where, q);
  }
  cJSON_Delete(doc);
  free(json);
  return n;
}

/* Runs a query of a dashboard in every form its variables take: a district
 * alone, two, and All. Returns the number of runs. */
static int run_panel_query(const struct h_env *e, const char *where,
                           const char *q, long range_s, struct buf *fails) {
  if (!strstr(q, "$district") && !strstr(q, "${district}")) {
    char *x = expand(q, range_s, NULL);
    run_query(e, where, x, fails);
    free(x);
    return 1;
  }
  static const char *const one[] = {"Ea H'Leo"};
  static const char *const two[] = {"Ea H'Leo", "Lắk"};
  char *forms[3] = {variable_text(one, 1, ".*"), variable_text(two, 2, ".*"),
                    variable_text(NULL, 0, ".*")};
  for (size_t i = 0; i < 3; i++) {
    char w[600];
    snprintf(w, sizeof w, "%s [district = %s]", where, forms[i]);
    char *x = expand(q, range_s, forms[i]);
    run_query(e, w, x, fails);
    free(x);
    free(forms[i]);
  }
  return 3;
}

/* Every query of dashboard d; returns how many ran. */
static int run_dashboard(const struct h_env *e, const cJSON *d,
                         struct buf *fails) {
  const char *uid = cJSON_GetObjectItemCaseSensitive(d, "uid")->valuestring;
  const cJSON *time = cJSON_GetObjectItemCaseSensitive(d, "time");
  long range_s =
      duration_s(cJSON_GetObjectItemCaseSensitive(time, "from")->valuestring);
  cr_assert_gt(range_s, 0, "%s: time.from", uid);
  int runs = 0;
  char where[512];

  const cJSON *p;
  cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(d, "panels")) {
    const char *title =
        cJSON_GetObjectItemCaseSensitive(p, "title")->valuestring;
    const cJSON *tf = cJSON_GetObjectItemCaseSensitive(p, "timeFrom");
    long r = cJSON_IsString(tf) ? duration_s(tf->valuestring) : range_s;
    cr_assert_gt(r, 0, "%s / %s: timeFrom", uid, title);
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(p, "targets")) {
      snprintf(where, sizeof where, "%s / %s / %s", uid, title,
               cJSON_GetObjectItemCaseSensitive(t, "refId")->valuestring);
      runs += run_panel_query(
          e, where, cJSON_GetObjectItemCaseSensitive(t, "query")->valuestring,
          r, fails);
    }
  }
  const cJSON *a;
  cJSON_ArrayForEach(
      a, cJSON_GetObjectItemCaseSensitive(
             cJSON_GetObjectItemCaseSensitive(d, "annotations"), "list")) {
    snprintf(where, sizeof where, "%s / annotation %s", uid,
             cJSON_GetObjectItemCaseSensitive(a, "name")->valuestring);
    runs += run_panel_query(
        e, where, cJSON_GetObjectItemCaseSensitive(a, "query")->valuestring,
        range_s, fails);
  }
  const cJSON *v;
  cJSON_ArrayForEach(
      v, cJSON_GetObjectItemCaseSensitive(
             cJSON_GetObjectItemCaseSensitive(d, "templating"), "list")) {
    snprintf(where, sizeof where, "%s / variable $%s", uid,
             cJSON_GetObjectItemCaseSensitive(v, "name")->valuestring);
    const char *q = cJSON_GetObjectItemCaseSensitive(v, "query")->valuestring;
    char *json = NULL;
    cr_assert_eq(h_influx_query(&e->db, "ioc", q, &json), 0, "%s", where);
    /* Every district, with its exact name, is a value. */
    cr_expect_not_null(strstr(json, "\"Ea H'Leo\""), "%s: %s", where, json);
    cr_expect_not_null(strstr(json, "\"M'Đrắk\""), "%s: %s", where, json);
    free(json);
    runs += run_query(e, where, q, fails) > 0;
  }
  return runs;
}

/* cfg's "notifications" section (the example's, off, with receivers that
 * are not there) replaced by one receiver on a closed port that waits an
 * hour before its first notification: alerts can be acknowledged, and
 * nothing is sent while the test runs. The section is the file's last. */
static void notifications_on(char **cfg) {
  const char *from = strstr(*cfg, "\"notifications\": {");
  cr_assert_not_null(from, "the example has no notifications section");
  const char *close = strstr(from, "\n  }\n}");
  cr_assert(close && strspn(close + 7, " \n") == strlen(close + 7),
            "the notifications section is not the example's last");
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(buf_append(&b, *cfg, (size_t)(from - *cfg)), IOCD_OK);
  cr_assert_eq(
      buf_printf(&b,
                 "\"notifications\": {\"receivers\": [{\"name\": \"ops\", "
                 "\"type\": \"webhook\", \"url\": "
                 "\"http://127.0.0.1:%d/hook\"}],\n"
                 "  \"route\": {\"receiver\": \"ops\", \"group_wait\": "
                 "\"1h\"}}\n}\n",
                 h_free_port()),
      IOCD_OK);
  cr_assert_eq(buf_putc(&b, '\0'), IOCD_OK);
  free(*cfg);
  *cfg = buf_detach(&b, NULL);
}

/* The id of an alert GET /api/v1/alerts lists as firing, in id (16 hex
 * digits); false when none is. */
static bool firing_alert(int port, char id[17]) {
  struct buf b;
  buf_init(&b, 16u << 20);
  id[0] = '\0';
  if (h_http_get(port, "/api/v1/alerts", &b) == 200 &&
      buf_putc(&b, '\0') == IOCD_OK) {
    cJSON *doc = cJSON_Parse(b.data);
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(doc, "alerts")) {
      const cJSON *state = cJSON_GetObjectItemCaseSensitive(a, "state");
      const cJSON *aid = cJSON_GetObjectItemCaseSensitive(a, "id");
      if (cJSON_IsString(state) && strcmp(state->valuestring, "firing") == 0 &&
          cJSON_IsString(aid) && strlen(aid->valuestring) == 16) {
        snprintf(id, 17, "%s", aid->valuestring);
        break;
      }
    }
    cJSON_Delete(doc);
  }
  buf_cleanup(&b);
  return id[0] != '\0';
}

struct firing_wait {
  int port;
  char id[17];
};

static bool some_alert_fires(void *ud) {
  struct firing_wait *w = ud;
  return firing_alert(w->port, w->id);
}

/* Acknowledges an alert that fires through iocd's API, as an operator
 * does, for the panels of the `alert_acks` measurement. Returns the HTTP
 * status (0: no alert fired within 20 s, or no answer), the answer in
 * out. */
static long acknowledge_one(const struct h_env *e, struct buf *out) {
  struct firing_wait w = {.port = e->api_port};
  if (h_wait_until(some_alert_fires, &w, 20000) != 0) {
    return 0;
  }
  char path[64];
  snprintf(path, sizeof path, "/api/v1/alerts/%s/ack", w.id);
  return h_http_request(e->api_port, "POST", path,
                        "{\"by\": \"an.nguyen\", \"comment\": \"đã gọi Văn "
                        "phòng HĐND-UBND huyện\"}",
                        out);
}

Test(dashboards, every_query_answers_with_data_after_a_simulated_day,
     .timeout = 300) {
  struct h_env e = {0};
  cr_assert_eq(h_env_start(&e), 0);
  char *cfg = adapted_config(&e);
  notifications_on(&cfg);
  cr_assert_eq(h_iocd_start(&e.iocd, e.dir, cfg), 0);
  free(cfg);
  cr_assert_eq(h_iocd_wait_log(&e.iocd, "subscribed", 20000), 0);
  int sim_rc = run_sim(&e, e.iocd.config);

  /* Lắk's feed came back, so its alert resolved; the self-metrics carry
   * the rejects of the bad payloads. */
  int resolved = h_env_wait_count(
      &e,
      "SELECT count(\"active\") FROM \"alerts\" WHERE \"state\" = "
      "'resolved'",
      1, 20000);
  int rejects =
      h_env_wait_count(&e,
                       "SELECT count(\"iocd_district_rejects_total\") FROM "
                       "\"iocd_internal\"",
                       3, 20000);
  /* An operator acknowledged an alert: the `alert_acks` panels. */
  struct buf answer;
  buf_init(&answer, 1 << 20);
  long ack_status = acknowledge_one(&e, &answer);
  int acked = h_env_wait_count(
      &e, "SELECT count(\"alert_id\") FROM \"alert_acks\"", 1, 20000);

  struct buf fails;
  buf_init(&fails, 0);
  int runs = 0;
  for (size_t i = 0; i < NDASH; i++) {
    cJSON *d = load_dashboard(uids[i]);
    runs += run_dashboard(&e, d, &fails);
    cJSON_Delete(d);
  }
  h_env_stop(&e);

  cr_assert_eq(sim_rc, 0, "iocd-sim failed");
  cr_assert_eq(resolved, 0, "no alert resolved");
  cr_assert_eq(rejects, 0, "no district rejects in iocd_internal");
  cr_assert_eq(ack_status, 200, "no alert acknowledged: %s",
               answer.data ? answer.data : "no alert fired");
  cr_assert_eq(acked, 0, "no alert_acks point");
  buf_cleanup(&answer);
  cr_assert_gt(runs, 40, "only %d queries ran", runs);
  cr_assert_eq(fails.len, 0, "%zu-byte report:\n%s", fails.len, fails.data);
  buf_cleanup(&fails);
}
