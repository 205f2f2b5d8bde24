/*
 * The store against real servers: a real influxd started by the harness for
 * what InfluxDB itself decides (exact escaping and types, partial writes,
 * restarts), and a small libmicrohttpd server inside the test for answers a
 * real influxd will not give on demand (503, 429 with Retry-After, 401, 413,
 * 404 on a missing database), which records what it received.
 *
 * Every test drives its own uv loop with UV_RUN_ONCE under a deadline and
 * ends with uv_loop_close() == 0. No test sets Criterion's .timeout: the
 * deadlines bound them, and with .timeout and parallel jobs the Criterion
 * 2.4.1 runner leaks memory that fails the ASan build.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>
#include <zlib.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/point.h"
#include "core/stats.h"
#include "store/store.h"
#include "tests/harness/harness.h"

#define TS0 INT64_C(1700000000000000000)

static int64_t mono_ms(void) {
  return clock_mono_ns() / NS_PER_MS;
}

/* ---- A store on a private loop ----------------------------------------- */

struct t {
  uv_loop_t loop;
  uv_timer_t tick; /* keeps UV_RUN_ONCE from blocking on an idle loop */
  struct stats *stats;
  struct config cfg;
  struct config_subscription subs[2];
  struct store *s;
  bool closed;
  uint64_t unwritten;
};

static void on_tick(uv_timer_t *h) {
  (void)h;
}

static void t_init(struct t *t) {
  memset(t, 0, sizeof *t);
  cr_assert_eq(uv_loop_init(&t->loop), 0);
  uv_timer_init(&t->loop, &t->tick);
  uv_timer_start(&t->tick, on_tick, 10, 10);
  t->stats = stats_new();
  cr_assert_not_null(t->stats);
  t->subs[0].name = "igate";
  t->subs[0].topic = "ioc/+/igate";
  t->subs[1].name = "idesk";
  t->subs[1].topic = "ioc/+/idesk";
  t->cfg.subs = t->subs;
  t->cfg.nsubs = 2;
}

/* InfluxDB 1.x at url, fast timers so that tests finish quickly. */
static void t_influx(struct t *t, const char *url, const char *db) {
  t->cfg.influx = (struct config_influx){
      .enabled = true,
      .url = (char *)url,
      .api = INFLUX_V1,
      .database = (char *)db,
      .create_database = true,
      .gzip = true,
      .timeout_ms = 5000,
      .flush_interval_ms = 50,
      .retry_min_ms = 50,
      .retry_max_ms = 300,
      .tls_verify = true,
  };
}

static void t_start(struct t *t) {
  struct iocd_err err = {{0}};
  t->s = store_new(&t->loop, &t->cfg, t->stats, &err);
  cr_assert_not_null(t->s, "store_new: %s", err.msg);
}

static bool run_until(struct t *t, bool (*pred)(struct t *), int timeout_ms) {
  int64_t end = mono_ms() + timeout_ms;
  while (!pred(t)) {
    if (mono_ms() > end) {
      return false;
    }
    uv_run(&t->loop, UV_RUN_ONCE);
  }
  return true;
}

static void run_for(struct t *t, int ms) {
  int64_t end = mono_ms() + ms;
  while (mono_ms() < end) {
    uv_run(&t->loop, UV_RUN_ONCE);
  }
}

static bool nothing_pending(struct t *t) {
  return store_pending_points(t->s) == 0;
}

static bool is_closed(struct t *t) {
  return t->closed;
}

static void on_closed(void *ud, uint64_t unwritten) {
  struct t *t = ud;
  t->closed = true;
  t->unwritten = unwritten;
}

static void t_close(struct t *t, uint64_t timeout_ms) {
  t->closed = false;
  store_close(t->s, timeout_ms, on_closed, t);
  cr_assert(run_until(t, is_closed, (int)timeout_ms + 5000),
            "store_close did not call back");
  t->s = NULL;
}

static void t_finish(struct t *t) {
  if (t->s) {
    t_close(t, 2000);
  }
  uv_close((uv_handle_t *)&t->tick, NULL);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&t->loop), 0, "handles left open on the loop");
  stats_free(t->stats);
}

static uint64_t counter(struct t *t, const char *name, const char *k1,
                        const char *v1, const char *k2, const char *v2) {
  struct metric *m = stats_find(t->stats, name, k1, v1, k2, v2, NULL);
  return m ? m->count : 0;
}

static double gauge(struct t *t, const char *name) {
  struct metric *m = stats_find(t->stats, name, NULL);
  return m ? m->value : -1;
}

/* ---- Points ------------------------------------------------------------ */

static struct point *pt(struct point_batch *pb, const char *meas, int64_t ts) {
  struct point *p = pb_point_new(pb, meas, strlen(meas));
  cr_assert_not_null(p);
  p->ts_ns = ts;
  p->has_ts = true;
  return p;
}

static void tag(struct point_batch *pb, struct point *p, const char *k,
                const char *v) {
  cr_assert_eq(pb_tag(pb, p, k, strlen(k), v, strlen(v), true), 0);
}

static void ffloat(struct point_batch *pb, struct point *p, const char *k,
                   double v) {
  cr_assert_eq(pb_field_float(pb, p, k, strlen(k), v), 0);
}

static void fint(struct point_batch *pb, struct point *p, const char *k,
                 int64_t v) {
  cr_assert_eq(pb_field_int(pb, p, k, strlen(k), v), 0);
}

static void fstr(struct point_batch *pb, struct point *p, const char *k,
                 const char *v) {
  cr_assert_eq(pb_field_string(pb, p, k, strlen(k), v, strlen(v)), 0);
}

/* Appends n points "m,k=<key>,i=<j> v=<j>" at TS0 + base + j. */
static void append_series(struct t *t, size_t source, const char *key, int n,
                          int64_t base) {
  struct point_batch pb;
  pb_init(&pb);
  for (int j = 0; j < n; j++) {
    struct point *p = pt(&pb, "m", TS0 + base + j);
    char i[16];
    snprintf(i, sizeof i, "%d", j);
    tag(&pb, p, "k", key);
    tag(&pb, p, "i", i);
    ffloat(&pb, p, "v", j);
  }
  cr_assert_eq(store_append(t->s, source, &pb), 0);
  pb_cleanup(&pb);
}

/* ---- InfluxDB queries -------------------------------------------------- */

static cJSON *query(const struct h_influxd *d, const char *db, const char *q,
                    char **raw) {
  char *json = NULL;
  cr_assert_eq(h_influx_query(d, db, q, &json), 0, "query %s", q);
  cJSON *root = cJSON_Parse(json);
  cr_assert_not_null(root, "unparsable answer: %s", json);
  if (raw) {
    *raw = json;
  } else {
    free(json);
  }
  return root;
}

/* The "values" of the first series, or NULL. */
static cJSON *values_of(cJSON *root, int series) {
  cJSON *res = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "results"), 0);
  cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "series"), series);
  return cJSON_GetObjectItem(s, "values");
}

static const char *str_at(cJSON *row, int i) {
  cJSON *v = cJSON_GetArrayItem(row, i);
  cr_assert(cJSON_IsString(v), "column %d is not a string", i);
  return v->valuestring;
}

struct influx_env {
  struct h_influxd d;
};

static void influx_up(struct influx_env *e) {
  cr_assert_eq(h_influxd_start(&e->d, NULL), 0, "influxd did not start");
}

static void influx_down(struct influx_env *e) {
  h_influxd_stop(&e->d);
  h_rmtree(e->d.dir);
}

/* ---- Real influxd ------------------------------------------------------ */

static const char *const districts[] = {
    "Ea H'Leo", "Buôn Ma Thuột", "M'Đrắk", "Cư M'gar", "a,b=c d", "back\\slash",
};
#define NDISTRICTS (sizeof districts / sizeof districts[0])

static const char *const notes[] = {
    "quote\"inside",     "two\\\\bs",         "tab\tand\nnewline",
    "Đắk Lắk, 15 huyện", "= and , and space", "plain",
};

static void writes_names_exactly(bool gzip) {
  struct influx_env e;
  influx_up(&e);
  struct t t;
  t_init(&t);
  /* A database name that needs escaping in the URL and in InfluxQL. */
  const char *db = "ioc db&x";
  t_influx(&t, e.d.url, db);
  t.cfg.influx.gzip = gzip;
  t_start(&t);

  struct point_batch pb;
  pb_init(&pb);
  for (size_t i = 0; i < NDISTRICTS; i++) {
    struct point *p = pt(&pb, "kpi, tỉnh", TS0 + (int64_t)i);
    tag(&pb, p, "district", districts[i]);
    fstr(&pb, p, "note", notes[i]);
    fint(&pb, p, "n", (int64_t)i - 2);
    ffloat(&pb, p, "v", (double)i + 0.25);
  }
  cr_assert_eq(store_append(t.s, 0, &pb), 0);
  pb_cleanup(&pb);
  cr_assert(run_until(&t, nothing_pending, 15000), "points still pending");

  cJSON *root = query(&e.d, db,
                      "SELECT \"district\",\"note\",\"n\",\"v\" FROM "
                      "\"kpi, tỉnh\"",
                      NULL);
  cJSON *vals = values_of(root, 0);
  cr_assert_eq(cJSON_GetArraySize(vals), (int)NDISTRICTS);
  for (size_t i = 0; i < NDISTRICTS; i++) {
    cJSON *row = cJSON_GetArrayItem(vals, (int)i);
    cr_assert_str_eq(str_at(row, 1), districts[i]);
    cr_assert_str_eq(str_at(row, 2), notes[i]);
    cr_assert_eq(cJSON_GetArrayItem(row, 3)->valuedouble, (double)i - 2);
    cr_assert_eq(cJSON_GetArrayItem(row, 4)->valuedouble, (double)i + 0.25);
  }
  cJSON_Delete(root);
  cr_assert_eq(counter(&t, "iocd_points_written_total", "output", "influxdb",
                       NULL, NULL),
               NDISTRICTS);
  cr_assert_eq(counter(&t, "iocd_source_points_written_total", "subscription",
                       "igate", NULL, NULL),
               NDISTRICTS);
  cr_assert_eq(gauge(&t, "iocd_influxdb_up"), 1.0);
  t_close(&t, 5000);
  cr_assert_eq(t.unwritten, 0);
  t_finish(&t);
  influx_down(&e);
}

Test(store_influx, writes_vietnamese_names_and_escapes_exactly_gzip) {
  writes_names_exactly(true);
}

Test(store_influx, writes_vietnamese_names_and_escapes_exactly_plain) {
  writes_names_exactly(false);
}

Test(store_influx, keeps_integers_as_integers_and_floats_as_floats) {
  struct influx_env e;
  influx_up(&e);
  struct t t;
  t_init(&t);
  t_influx(&t, e.d.url, "types");
  t_start(&t);
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = pt(&pb, "types", TS0 + 123456789);
  fint(&pb, p, "big", INT64_C(9007199254740993));
  fint(&pb, p, "i", 42);
  fint(&pb, p, "neg", -7);
  ffloat(&pb, p, "f", 42.0);
  ffloat(&pb, p, "tenth", 0.1);
  cr_assert_eq(store_append(t.s, 1, &pb), 0);
  pb_cleanup(&pb);
  cr_assert(run_until(&t, nothing_pending, 15000));

  /* Exact values: read the JSON text, a double cannot hold them. */
  char *raw = NULL;
  cJSON *root = query(&e.d, "types",
                      "SELECT \"big\",\"i\",\"neg\",\"f\",\"tenth\" FROM "
                      "\"types\"",
                      &raw);
  cr_assert(strstr(raw, "[1700000000123456789,9007199254740993,42,-7,42,0.1]"),
            "%s", raw);
  cJSON_Delete(root);
  free(raw);
  root = query(&e.d, "types", "SHOW FIELD KEYS FROM \"types\"", &raw);
  cr_assert(strstr(raw, "[\"big\",\"integer\"]"), "%s", raw);
  cr_assert(strstr(raw, "[\"i\",\"integer\"]"), "%s", raw);
  cr_assert(strstr(raw, "[\"neg\",\"integer\"]"), "%s", raw);
  cr_assert(strstr(raw, "[\"f\",\"float\"]"), "%s", raw);
  cr_assert(strstr(raw, "[\"tenth\",\"float\"]"), "%s", raw);
  cJSON_Delete(root);
  free(raw);
  cr_assert_eq(counter(&t, "iocd_source_points_written_total", "subscription",
                       "idesk", NULL, NULL),
               1);
  t_finish(&t);
  influx_down(&e);
}

Test(store_influx, drops_only_the_line_influxdb_rejects) {
  struct influx_env e;
  influx_up(&e);
  /* A first store makes "value" a float field. */
  struct t seed;
  t_init(&seed);
  t_influx(&seed, e.d.url, "conflict");
  t_start(&seed);
  struct point_batch pb;
  pb_init(&pb);
  ffloat(&pb, pt(&pb, "conflict", TS0), "value", 1.5);
  (void)pb_tag(&pb, &pb.points[0], "k", 1, "seed", 4, true);
  cr_assert_eq(store_append(seed.s, 0, &pb), 0);
  pb_cleanup(&pb);
  t_close(&seed, 5000);
  cr_assert_eq(seed.unwritten, 0);
  t_finish(&seed);

  /* A second store sends one batch of 9 where p4 is an integer. */
  struct t t;
  t_init(&t);
  t_influx(&t, e.d.url, "conflict");
  t_start(&t);
  pb_init(&pb);
  for (int i = 0; i < 9; i++) {
    struct point *p = pt(&pb, "conflict", TS0 + 1 + i);
    char k[8];
    snprintf(k, sizeof k, "p%d", i);
    tag(&pb, p, "k", k);
    if (i == 4) {
      fint(&pb, p, "value", 5);
    } else {
      ffloat(&pb, p, "value", i + 0.5);
    }
  }
  cr_assert_eq(store_append(t.s, 1, &pb), 0);
  pb_cleanup(&pb);
  cr_assert(run_until(&t, nothing_pending, 15000));

  cJSON *root =
      query(&e.d, "conflict", "SELECT \"k\",\"value\" FROM \"conflict\"", NULL);
  cJSON *vals = values_of(root, 0);
  cr_assert_eq(cJSON_GetArraySize(vals), 9, "seed + 8 good lines");
  for (int i = 0; i < 9; i++) {
    cr_assert_str_neq(str_at(cJSON_GetArrayItem(vals, i), 1), "p4");
  }
  cJSON_Delete(root);
  cr_assert_eq(counter(&t, "iocd_points_dropped_total", "output", "influxdb",
                       "reason", "rejected"),
               1);
  cr_assert_eq(counter(&t, "iocd_points_written_total", "output", "influxdb",
                       NULL, NULL),
               8);
  cr_assert_eq(counter(&t, "iocd_source_points_written_total", "subscription",
                       "idesk", NULL, NULL),
               8);
  cr_assert_eq(counter(&t, "iocd_source_points_dropped_total", "subscription",
                       "idesk", NULL, NULL),
               1);
  cr_assert_geq(counter(&t, "iocd_write_requests_total", "output", "influxdb",
                        "status", "4xx"),
                3, "the batch was split down to the bad line");
  cr_assert_eq(
      counter(&t, "iocd_write_retries_total", "output", "influxdb", NULL, NULL),
      0, "a rejected line is never retried");
  t_finish(&t);
  influx_down(&e);
}

static bool has_retried(struct t *t) {
  return counter(t, "iocd_write_retries_total", "output", "influxdb", NULL,
                 NULL) >= 2;
}

Test(store_influx, influxd_restart_mid_stream_loses_and_repeats_nothing) {
  struct influx_env e;
  influx_up(&e);
  struct t t;
  t_init(&t);
  t_influx(&t, e.d.url, "restart");
  t_start(&t);
  char key[16];
  int msg = 0;
  for (; msg < 10; msg++) {
    snprintf(key, sizeof key, "b%02d", msg);
    append_series(&t, 0, key, 5, (int64_t)msg * 100);
    run_for(&t, 20);
  }
  cr_assert(run_until(&t, nothing_pending, 15000));

  h_influxd_stop(&e.d);
  for (; msg < 20; msg++) {
    snprintf(key, sizeof key, "b%02d", msg);
    append_series(&t, 0, key, 5, (int64_t)msg * 100);
    run_for(&t, 20);
  }
  cr_assert(run_until(&t, has_retried, 10000), "no retry while down");
  cr_assert_eq(gauge(&t, "iocd_influxdb_up"), 0.0);
  cr_assert_eq(store_pending_points(t.s), 50);
  cr_assert_gt(counter(&t, "iocd_write_requests_total", "output", "influxdb",
                       "status", "network"),
               0);

  cr_assert_eq(h_influxd_restart(&e.d), 0);
  for (; msg < 30; msg++) {
    snprintf(key, sizeof key, "b%02d", msg);
    append_series(&t, 0, key, 5, (int64_t)msg * 100);
    run_for(&t, 20);
  }
  cr_assert(run_until(&t, nothing_pending, 30000), "%llu points pending",
            (unsigned long long)store_pending_points(t.s));
  cr_assert_eq(gauge(&t, "iocd_influxdb_up"), 1.0);

  cJSON *root = query(&e.d, "restart",
                      "SELECT count(\"v\") FROM \"m\" GROUP BY \"k\"", NULL);
  cJSON *series = cJSON_GetObjectItem(
      cJSON_GetArrayItem(cJSON_GetObjectItem(root, "results"), 0), "series");
  cr_assert_eq(cJSON_GetArraySize(series), 30, "one series per message");
  for (int i = 0; i < 30; i++) {
    cJSON *s = cJSON_GetArrayItem(series, i);
    cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "values"), 0);
    const char *k =
        cJSON_GetObjectItem(cJSON_GetObjectItem(s, "tags"), "k")->valuestring;
    snprintf(key, sizeof key, "b%02d", i);
    cr_assert_str_eq(k, key);
    cr_assert_eq(cJSON_GetArrayItem(row, 1)->valuedouble, 5.0, "%s", key);
  }
  cJSON_Delete(root);
  cr_assert_eq(counter(&t, "iocd_source_points_written_total", "subscription",
                       "igate", NULL, NULL),
               150);
  t_finish(&t);
  influx_down(&e);
}

Test(store_influx, close_flushes_what_the_interval_still_held) {
  struct influx_env e;
  influx_up(&e);
  struct t t;
  t_init(&t);
  t_influx(&t, e.d.url, "flush");
  t.cfg.influx.flush_interval_ms = 600000;
  t_start(&t);
  for (int i = 0; i < 10; i++) {
    char key[8];
    snprintf(key, sizeof key, "c%d", i);
    append_series(&t, 0, key, 10, i * 100);
  }
  run_for(&t, 300);
  /* Nothing was due yet: the series does not exist. */
  char *raw = NULL;
  cJSON *root = query(&e.d, "flush", "SELECT count(\"v\") FROM \"m\"", &raw);
  cr_assert_null(values_of(root, 0), "written before the interval: %s", raw);
  cJSON_Delete(root);
  free(raw);

  t_close(&t, 10000);
  cr_assert_eq(t.unwritten, 0);
  double n = 0;
  cr_assert_eq(
      h_influx_scalar(&e.d, "flush", "SELECT count(\"v\") FROM \"m\"", &n), 0);
  cr_assert_eq(n, 100.0);
  t_finish(&t);
  influx_down(&e);
}

Test(store_influx, close_reports_the_points_it_could_not_write) {
  struct t t;
  t_init(&t);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", h_free_port());
  t_influx(&t, url, "nowhere");
  t_start(&t);
  append_series(&t, 0, "x", 7, 0);
  append_series(&t, 1, "y", 3, 0);
  run_for(&t, 200);
  cr_assert_eq(store_pending_points(t.s), 10);
  int64_t start = mono_ms();
  t_close(&t, 3000);
  cr_assert_eq(t.unwritten, 10);
  cr_assert_lt(mono_ms() - start, 4000, "close overran its timeout");
  t_finish(&t);
}

/* ---- File output ------------------------------------------------------- */

static char *slurp(const char *path) {
  char *text = h_read_file(path, NULL);
  cr_assert_not_null(text, "%s cannot be read", path);
  return text;
}

Test(store_file, appends_exact_line_protocol_in_arrival_order) {
  char dir[64], path[128];
  cr_assert_eq(h_tmpdir(dir, sizeof dir), 0);
  snprintf(path, sizeof path, "%s/points.lp", dir);
  FILE *f = fopen(path, "w");
  fputs("# kept\n", f);
  fclose(f);

  struct t t;
  t_init(&t);
  t.cfg.file.enabled = true;
  t.cfg.file.path = path;
  t_start(&t);
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = pt(&pb, "dossiers", TS0);
  tag(&pb, p, "district", "Ea H'Leo");
  fint(&pb, p, "received", 221942);
  ffloat(&pb, p, "online", 10.61);
  p = pt(&pb, "dossiers", TS0 + 1);
  tag(&pb, p, "district", "Buôn Ma Thuột");
  fstr(&pb, p, "note", "say \"hi\"");
  cr_assert_eq(store_append(t.s, 0, &pb), 0);
  pb_reset(&pb);
  p = pt(&pb, "idesk", TS0 + 2);
  tag(&pb, p, "district", "M'Đrắk");
  fint(&pb, p, "documents", 1410312);
  cr_assert_eq(store_append(t.s, 1, &pb), 0);
  pb_cleanup(&pb);
  t_close(&t, 5000);
  cr_assert_eq(t.unwritten, 0);

  char *got = slurp(path);
  cr_assert_str_eq(got,
                   "# kept\n"
                   "dossiers,district=Ea\\ H'Leo received=221942i,"
                   "online=10.61 1700000000000000000\n"
                   "dossiers,district=Buôn\\ Ma\\ Thuột note=\"say "
                   "\\\"hi\\\"\" 1700000000000000001\n"
                   "idesk,district=M'Đrắk documents=1410312i "
                   "1700000000000000002\n");
  free(got);
  cr_assert_eq(
      counter(&t, "iocd_points_written_total", "output", "file", NULL, NULL),
      3);
  cr_assert_eq(counter(&t, "iocd_source_points_written_total", "subscription",
                       "igate", NULL, NULL),
               2, "the only output is the primary one");
  t_finish(&t);
  h_rmtree(dir);
}

Test(store_file, an_unwritable_path_fails_store_new_with_its_name) {
  struct t t;
  t_init(&t);
  /* The InfluxDB output is built first and must be torn down again. */
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", h_free_port());
  t_influx(&t, url, "x");
  t.cfg.file.enabled = true;
  t.cfg.file.path = "/nonexistent-dir/x/points.lp";
  struct iocd_err err = {{0}};
  cr_assert_null(store_new(&t.loop, &t.cfg, t.stats, &err));
  cr_assert(strstr(err.msg, "file.path: /nonexistent-dir/x/points.lp"), "%s",
            err.msg);
  t_finish(&t);
}

Test(store_file, both_outputs_get_every_point_counted_once_per_source) {
  struct influx_env e;
  influx_up(&e);
  char dir[64], path[128];
  cr_assert_eq(h_tmpdir(dir, sizeof dir), 0);
  snprintf(path, sizeof path, "%s/copy.lp", dir);
  struct t t;
  t_init(&t);
  t_influx(&t, e.d.url, "both");
  t.cfg.file.enabled = true;
  t.cfg.file.path = path;
  t_start(&t);
  append_series(&t, 0, "z", 20, 0);
  cr_assert(run_until(&t, nothing_pending, 15000));
  t_close(&t, 5000);
  cr_assert_eq(t.unwritten, 0);
  double n = 0;
  cr_assert_eq(
      h_influx_scalar(&e.d, "both", "SELECT count(\"v\") FROM \"m\"", &n), 0);
  cr_assert_eq(n, 20.0);
  char *got = slurp(path);
  int lines = 0;
  for (char *c = got; *c; c++) {
    lines += *c == '\n';
  }
  free(got);
  cr_assert_eq(lines, 20);
  cr_assert_eq(
      counter(&t, "iocd_points_written_total", "output", "file", NULL, NULL),
      20);
  cr_assert_eq(counter(&t, "iocd_points_written_total", "output", "influxdb",
                       NULL, NULL),
               20);
  cr_assert_eq(counter(&t, "iocd_source_points_written_total", "subscription",
                       "igate", NULL, NULL),
               20);
  t_finish(&t);
  h_rmtree(dir);
  influx_down(&e);
}

Test(store_queue, refuses_points_past_the_buffer_and_queues_nothing) {
  struct t t;
  t_init(&t);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", h_free_port());
  t_influx(&t, url, "x");
  t.cfg.influx.create_database = false;
  t.cfg.influx.buffer_bytes = 200;
  t_start(&t);
  append_series(&t, 0, "a", 5, 0); /* 5 x 34 bytes */
  struct point_batch pb;
  pb_init(&pb);
  for (int j = 0; j < 3; j++) {
    ffloat(&pb, pt(&pb, "m", TS0 + j), "v", j); /* 3 x 26 bytes */
  }
  cr_assert_eq(store_append(t.s, 0, &pb), IOCD_EFULL);
  cr_assert_eq(store_append(t.s, 9, &pb), IOCD_EINVAL, "unknown source");
  pb_cleanup(&pb);
  cr_assert_eq(store_pending_points(t.s), 5);
  cr_assert_eq(gauge(&t, "iocd_queue_points"), 5.0);
  cr_assert_eq(gauge(&t, "iocd_queue_bytes"), 170.0);
  t_close(&t, 500);
  cr_assert_eq(t.unwritten, 5);
  t_finish(&t);
}

/* ---- A scripted HTTP server (libmicrohttpd, its own thread) ------------ */

#define FAKE_MAX 32

struct fake_req {
  int64_t at_ms;
  char path[64];
  char db[64];
  char org[64];
  char bucket[64];
  char precision[8];
  char auth[128];
  bool gzipped;
  char *body; /* inflated when it came gzip'd */
  size_t len;
};

struct fake {
  struct MHD_Daemon *d;
  int port;
  char url[64];
  pthread_mutex_t mu;
  int script[FAKE_MAX]; /* status per request; 204 after the script */
  int nscript;
  const char *retry_after[FAKE_MAX]; /* Retry-After per request, or NULL */
  int nreq;
  struct fake_req req[FAKE_MAX];
};

static void http_date(char *out, size_t n, int secs_ahead) {
  time_t when = time(NULL) + secs_ahead;
  struct tm tm;
  gmtime_r(&when, &tm);
  strftime(out, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* A Retry-After value that the server turns into a date at answer time. */
#define RETRY_IN_2S_DATE "date+2s"

struct conn {
  struct buf body;
};

static void gunzip(const char *in, size_t len, struct buf *out) {
  z_stream z = {0};
  cr_assert_eq(inflateInit2(&z, 15 + 16), Z_OK);
  z.next_in = (Bytef *)(uintptr_t)in;
  z.avail_in = (uInt)len;
  char chunk[4096];
  int rc;
  do {
    z.next_out = (Bytef *)chunk;
    z.avail_out = sizeof chunk;
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      break;
    }
    buf_append(out, chunk, sizeof chunk - z.avail_out);
  } while (rc != Z_STREAM_END);
  inflateEnd(&z);
}

static void copy_arg(struct MHD_Connection *c, enum MHD_ValueKind kind,
                     const char *key, char *out, size_t n) {
  const char *v = MHD_lookup_connection_value(c, kind, key);
  snprintf(out, n, "%s", v ? v : "");
}

static enum MHD_Result fake_handler(void *cls, struct MHD_Connection *c,
                                    const char *url, const char *method,
                                    const char *version,
                                    const char *upload_data,
                                    size_t *upload_data_size, void **con_cls) {
  (void)method;
  (void)version;
  struct fake *f = cls;
  struct conn *cn = *con_cls;
  if (!cn) {
    cn = calloc(1, sizeof *cn);
    if (!cn) {
      return MHD_NO;
    }
    buf_init(&cn->body, 0);
    *con_cls = cn;
    return MHD_YES;
  }
  if (*upload_data_size) {
    buf_append(&cn->body, upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  pthread_mutex_lock(&f->mu);
  int i = f->nreq < FAKE_MAX ? f->nreq++ : FAKE_MAX - 1;
  struct fake_req *r = &f->req[i];
  r->at_ms = mono_ms();
  snprintf(r->path, sizeof r->path, "%s", url);
  copy_arg(c, MHD_GET_ARGUMENT_KIND, "db", r->db, sizeof r->db);
  copy_arg(c, MHD_GET_ARGUMENT_KIND, "org", r->org, sizeof r->org);
  copy_arg(c, MHD_GET_ARGUMENT_KIND, "bucket", r->bucket, sizeof r->bucket);
  copy_arg(c, MHD_GET_ARGUMENT_KIND, "precision", r->precision,
           sizeof r->precision);
  copy_arg(c, MHD_HEADER_KIND, "Authorization", r->auth, sizeof r->auth);
  const char *ce =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
  r->gzipped = ce && strcmp(ce, "gzip") == 0;
  free(r->body);
  if (r->gzipped) {
    struct buf plain;
    buf_init(&plain, 0);
    gunzip(cn->body.data, cn->body.len, &plain);
    buf_putc(&plain, '\0');
    r->body = buf_detach(&plain, &r->len);
    r->len--;
  } else {
    buf_putc(&cn->body, '\0');
    r->body = buf_detach(&cn->body, &r->len);
    r->len--;
  }
  int status = i < f->nscript ? f->script[i] : 204;
  const char *ra = i < f->nscript ? f->retry_after[i] : NULL;
  pthread_mutex_unlock(&f->mu);
  char date[64];
  if (ra && strcmp(ra, RETRY_IN_2S_DATE) == 0) {
    /* An HTTP-date 2 s from now, made at answer time: the client sees a
     * delay of 1 to 2 s whatever the fraction of the current second. */
    http_date(date, sizeof date, 2);
    ra = date;
  }

  const char *text = "";
  if (status == 200) {
    text = "{\"results\":[{\"statement_id\":0}]}";
  } else if (status == 404) {
    text = "{\"error\":\"database not found: \\\"x\\\"\"}";
  } else if (status >= 400) {
    text = "{\"error\":\"scripted failure\"}";
  }
  struct MHD_Response *rs = MHD_create_response_from_buffer(
      strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_PERSISTENT);
  if (ra) {
    MHD_add_response_header(rs, "Retry-After", ra);
  }
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, rs);
  MHD_destroy_response(rs);
  return ret;
}

static void fake_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                           enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  struct conn *cn = *con_cls;
  if (cn) {
    buf_cleanup(&cn->body);
    free(cn);
  }
  *con_cls = NULL;
}

static void fake_start(struct fake *f) {
  pthread_mutex_init(&f->mu, NULL);
  for (int attempt = 0; attempt < 5 && !f->d; attempt++) {
    f->port = h_free_port();
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)f->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                            fake_handler, f, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_NOTIFY_COMPLETED, fake_completed, NULL,
                            MHD_OPTION_END);
  }
  cr_assert_not_null(f->d, "libmicrohttpd did not start");
  snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", f->port);
}

static void fake_stop(struct fake *f) {
  MHD_stop_daemon(f->d);
  for (int i = 0; i < FAKE_MAX; i++) {
    free(f->req[i].body);
  }
  pthread_mutex_destroy(&f->mu);
}

static int fake_count(struct fake *f) {
  pthread_mutex_lock(&f->mu);
  int n = f->nreq;
  pthread_mutex_unlock(&f->mu);
  return n;
}

/* What append_series(t, _, key, n, 0) encodes. */
static void series_text(struct buf *b, const char *key, int n) {
  for (int j = 0; j < n; j++) {
    buf_printf(b, "m,k=%s,i=%d v=%d %lld\n", key, j, j, (long long)(TS0 + j));
  }
}

Test(store_retry, honours_retry_after_on_503_and_429_then_writes) {
  struct fake f = {0};
  f.script[0] = 503;
  f.retry_after[0] = "1";
  f.script[1] = 429;
  f.retry_after[1] = RETRY_IN_2S_DATE;
  f.nscript = 2;
  fake_start(&f);
  struct t t;
  t_init(&t);
  t_influx(&t, f.url, "kpi");
  t.cfg.influx.create_database = false;
  t.cfg.influx.retry_min_ms = 50;
  t.cfg.influx.retry_max_ms = 100;
  t_start(&t);
  append_series(&t, 0, "r", 3, 0);
  cr_assert(run_until(&t, nothing_pending, 20000));
  cr_assert_eq(fake_count(&f), 3);
  /* Backoff alone would wait at most 100 ms. */
  int64_t gap1 = f.req[1].at_ms - f.req[0].at_ms;
  int64_t gap2 = f.req[2].at_ms - f.req[1].at_ms;
  cr_assert_geq(gap1, 950, "Retry-After: 1 honoured? %lld ms", (long long)gap1);
  cr_assert_lt(gap1, 3000, "%lld ms", (long long)gap1);
  cr_assert_geq(gap2, 900, "Retry-After: <date> honoured? %lld ms",
                (long long)gap2);
  cr_assert_lt(gap2, 4000, "%lld ms", (long long)gap2);
  struct buf want;
  buf_init(&want, 0);
  series_text(&want, "r", 3);
  for (int i = 0; i < 3; i++) {
    cr_assert(f.req[i].gzipped, "request %d not gzip'd", i);
    cr_assert_str_eq(f.req[i].body, want.data, "request %d", i);
    cr_assert_str_eq(f.req[i].path, "/write");
    cr_assert_str_eq(f.req[i].db, "kpi");
    cr_assert_str_eq(f.req[i].precision, "ns");
  }
  buf_cleanup(&want);
  cr_assert_eq(
      counter(&t, "iocd_write_retries_total", "output", "influxdb", NULL, NULL),
      2);
  cr_assert_eq(counter(&t, "iocd_write_requests_total", "output", "influxdb",
                       "status", "5xx"),
               1);
  cr_assert_eq(counter(&t, "iocd_write_requests_total", "output", "influxdb",
                       "status", "4xx"),
               1);
  cr_assert_eq(counter(&t, "iocd_write_requests_total", "output", "influxdb",
                       "status", "2xx"),
               1);
  cr_assert_eq(gauge(&t, "iocd_influxdb_up"), 1.0);
  t_finish(&t);
  fake_stop(&f);
}

Test(store_retry, backs_off_exponentially_within_its_bounds) {
  struct fake f = {0};
  f.script[0] = f.script[1] = f.script[2] = f.script[3] = 500;
  f.nscript = 4;
  fake_start(&f);
  struct t t;
  t_init(&t);
  t_influx(&t, f.url, "kpi");
  t.cfg.influx.create_database = false;
  t.cfg.influx.gzip = false;
  t.cfg.influx.retry_min_ms = 200;
  t.cfg.influx.retry_max_ms = 500;
  t_start(&t);
  append_series(&t, 0, "b", 2, 0);
  cr_assert(run_until(&t, nothing_pending, 20000));
  cr_assert_eq(fake_count(&f), 5);
  /* Ceilings 200, 400, 500, 500; a request takes a few ms on top. */
  static const int64_t ceil_ms[] = {200, 400, 500, 500};
  for (int i = 0; i < 4; i++) {
    int64_t gap = f.req[i + 1].at_ms - f.req[i].at_ms;
    cr_assert_geq(gap, 190, "gap %d: %lld ms", i, (long long)gap);
    cr_assert_leq(gap, ceil_ms[i] + 600, "gap %d: %lld ms", i, (long long)gap);
  }
  cr_assert(!f.req[4].gzipped);
  struct buf want;
  buf_init(&want, 0);
  series_text(&want, "b", 2);
  cr_assert_str_eq(f.req[4].body, want.data);
  buf_cleanup(&want);
  t_finish(&t);
  fake_stop(&f);
}

Test(store_retry, keeps_the_data_through_auth_errors) {
  struct fake f = {0};
  f.script[0] = 401;
  f.script[1] = 403;
  f.nscript = 2;
  fake_start(&f);
  struct t t;
  t_init(&t);
  t_influx(&t, f.url, "kpi");
  t.cfg.influx.create_database = false;
  t.cfg.influx.username = "user";
  t.cfg.influx.password = "pass";
  t_start(&t);
  append_series(&t, 0, "a", 4, 0);
  cr_assert(run_until(&t, nothing_pending, 20000));
  cr_assert_eq(fake_count(&f), 3);
  for (int i = 0; i < 3; i++) {
    cr_assert_str_eq(f.req[i].auth, "Basic dXNlcjpwYXNz");
  }
  cr_assert_eq(counter(&t, "iocd_points_written_total", "output", "influxdb",
                       NULL, NULL),
               4);
  cr_assert_eq(counter(&t, "iocd_points_dropped_total", "output", "influxdb",
                       "reason", "rejected"),
               0);
  cr_assert_eq(
      counter(&t, "iocd_write_retries_total", "output", "influxdb", NULL, NULL),
      2);
  t_finish(&t);
  fake_stop(&f);
}

Test(store_retry, splits_a_batch_the_server_finds_too_large) {
  struct fake f = {0};
  f.script[0] = 413;
  f.nscript = 1;
  fake_start(&f);
  struct t t;
  t_init(&t);
  t_influx(&t, f.url, "kpi");
  t.cfg.influx.create_database = false;
  t.cfg.influx.max_in_flight = 1;
  t_start(&t);
  append_series(&t, 0, "s", 4, 0);
  cr_assert(run_until(&t, nothing_pending, 20000));
  cr_assert_eq(fake_count(&f), 3);
  struct buf whole;
  buf_init(&whole, 0);
  buf_puts(&whole, f.req[1].body);
  buf_puts(&whole, f.req[2].body);
  cr_assert_str_eq(whole.data, f.req[0].body, "halves in order");
  cr_assert_neq(f.req[1].len, 0);
  cr_assert_neq(f.req[2].len, 0);
  buf_cleanup(&whole);
  cr_assert_eq(counter(&t, "iocd_points_written_total", "output", "influxdb",
                       NULL, NULL),
               4);
  t_finish(&t);
  fake_stop(&f);
}

Test(store_retry, creates_the_database_first_and_again_after_a_404) {
  struct fake f = {0};
  f.script[0] = 200; /* CREATE DATABASE */
  f.script[1] = 404; /* the write: database gone */
  f.script[2] = 200; /* CREATE DATABASE again */
  f.nscript = 3;
  fake_start(&f);
  struct t t;
  t_init(&t);
  t_influx(&t, f.url, "a b&c");
  t_start(&t);
  append_series(&t, 0, "d", 2, 0);
  cr_assert(run_until(&t, nothing_pending, 20000));
  cr_assert_eq(fake_count(&f), 4);
  cr_assert_str_eq(f.req[0].path, "/query");
  cr_assert_str_eq(f.req[0].body, "q=CREATE%20DATABASE%20%22a%20b%26c%22");
  cr_assert_str_eq(f.req[1].path, "/write");
  cr_assert_str_eq(f.req[1].db, "a b&c");
  cr_assert_str_eq(f.req[2].path, "/query");
  cr_assert_str_eq(f.req[3].path, "/write");
  cr_assert_str_eq(f.req[3].db, "a b&c");
  t_finish(&t);
  fake_stop(&f);
}

Test(store_retry, api_v2_sends_org_bucket_and_token) {
  struct fake f = {0};
  fake_start(&f);
  struct t t;
  t_init(&t);
  t_influx(&t, f.url, NULL);
  t.cfg.influx.api = INFLUX_V2;
  t.cfg.influx.org = "Sở TT&TT";
  t.cfg.influx.bucket = "iot/raw";
  t.cfg.influx.token = "s3cr3t==";
  t_start(&t);
  append_series(&t, 1, "v2", 2, 0);
  cr_assert(run_until(&t, nothing_pending, 20000));
  cr_assert_eq(fake_count(&f), 1, "no CREATE DATABASE with 2.x");
  cr_assert_str_eq(f.req[0].path, "/api/v2/write");
  cr_assert_str_eq(f.req[0].org, "Sở TT&TT");
  cr_assert_str_eq(f.req[0].bucket, "iot/raw");
  cr_assert_str_eq(f.req[0].precision, "ns");
  cr_assert_str_eq(f.req[0].auth, "Token s3cr3t==");
  t_finish(&t);
  fake_stop(&f);
}

Test(store_retry, reconfigure_sends_later_batches_to_the_new_server) {
  struct fake a = {0}, b = {0};
  fake_start(&a);
  fake_start(&b);
  struct t t;
  t_init(&t);
  t_influx(&t, a.url, "kpi");
  t.cfg.influx.create_database = false;
  t_start(&t);
  append_series(&t, 0, "one", 1, 0);
  cr_assert(run_until(&t, nothing_pending, 20000));
  struct config next = t.cfg;
  next.influx.url = b.url;
  next.influx.database = "other";
  struct iocd_err err = {{0}};
  cr_assert_eq(store_reconfigure(t.s, &next, &err), 0, "%s", err.msg);
  append_series(&t, 0, "two", 1, 0);
  cr_assert(run_until(&t, nothing_pending, 20000));
  cr_assert_eq(fake_count(&a), 1);
  cr_assert_eq(fake_count(&b), 1);
  cr_assert_str_eq(b.req[0].db, "other");
  t_finish(&t);
  fake_stop(&a);
  fake_stop(&b);
}
