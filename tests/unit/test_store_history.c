/*
 * The alert history's lane of the store (store_int.h, "The alert history"):
 * when notifications.history gives the `alerts` points a destination of
 * their own, where they are written (database, retention policy, bucket),
 * the history journal's place and limits, and, on a loop with an InfluxDB
 * that does not answer, that the alert points wait in their own journal
 * (not the data's, not counted in the data's fill), survive a restart, and
 * are still sent when the history is no longer configured.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/point.h"
#include "core/stats.h"
#include "store/journal_int.h"
#include "store/store.h"
#include "store/store_int.h"

/* ---- Destination ------------------------------------------------------- */

struct dest_case {
  enum influx_api api;
  const char *db, *rp;   /* influxdb.database, .retention_policy */
  const char *hdb, *hrp; /* notifications.history */
  const char *want;      /* the history writer's URL */
};

static void config_of(const struct dest_case *c, struct config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->influx.enabled = true;
  cfg->influx.api = c->api;
  cfg->influx.url = "http://h:8086";
  cfg->influx.database = (char *)c->db;
  cfg->influx.retention_policy = (char *)c->rp;
  cfg->influx.org = "org";
  cfg->influx.bucket = "iot";
  cfg->notify.history_database = (char *)c->hdb;
  cfg->notify.history_retention_policy = (char *)c->hrp;
}

Test(store_history, writes_to_the_history_database_and_policy) {
  static const struct dest_case cases[] = {
      /* A database of its own, under that database's default policy: the
       * data's policy belongs to the data's database. */
      {INFLUX_V1, "ioc", NULL, "ioc_alerts", NULL,
       "http://h:8086/write?db=ioc_alerts&precision=ns"},
      {INFLUX_V1, "ioc", "raw_30d", "ioc_alerts", NULL,
       "http://h:8086/write?db=ioc_alerts&precision=ns"},
      {INFLUX_V1, "ioc", "raw_30d", "ioc_alerts", "",
       "http://h:8086/write?db=ioc_alerts&precision=ns"},
      {INFLUX_V1, "ioc", NULL, "ioc_alerts", "alerts_1y",
       "http://h:8086/write?db=ioc_alerts&rp=alerts_1y&precision=ns"},
      /* A retention policy of its own in the data's database. */
      {INFLUX_V1, "ioc", "raw_30d", NULL, "alerts_1y",
       "http://h:8086/write?db=ioc&rp=alerts_1y&precision=ns"},
      {INFLUX_V1, "ioc", NULL, "", "alerts_1y",
       "http://h:8086/write?db=ioc&rp=alerts_1y&precision=ns"},
      /* Parameters are percent-encoded like the data's. */
      {INFLUX_V1, "ioc", NULL, "cảnh báo&x", "1 năm",
       "http://h:8086/write?db=c%E1%BA%A3nh%20b%C3%A1o%26x&rp=1%20n%C4%83m"
       "&precision=ns"},
      /* No history: the data's destination (what a leftover history
       * journal is written to). */
      {INFLUX_V1, "ioc", "raw_30d", NULL, NULL,
       "http://h:8086/write?db=ioc&rp=raw_30d&precision=ns"},
      {INFLUX_V1, "ioc", "raw_30d", "", "",
       "http://h:8086/write?db=ioc&rp=raw_30d&precision=ns"},
      /* api 2: the history's database is the bucket. */
      {INFLUX_V2, NULL, NULL, "alerts", NULL,
       "http://h:8086/api/v2/write?org=org&bucket=alerts&precision=ns"},
      {INFLUX_V2, NULL, NULL, NULL, NULL,
       "http://h:8086/api/v2/write?org=org&bucket=iot&precision=ns"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct config cfg;
    config_of(&cases[i], &cfg);
    struct iocd_err err = {{0}};
    cr_assert_eq(store__history_validate(&cfg, &err), IOCD_OK, "case %zu: %s",
                 i, err.msg);
    struct influx_settings st;
    store__history_settings(&cfg, &st);
    cr_expect_eq(st.max_in_flight, STORE_HISTORY_MAX_IN_FLIGHT, "case %zu", i);
    struct buf b;
    buf_init(&b, 0);
    cr_assert_eq(store__influx_url(&b, &st), IOCD_OK);
    cr_expect_str_eq(b.data, cases[i].want, "case %zu", i);
    buf_cleanup(&b);
  }
}

Test(store_history, the_data_writer_keeps_its_own_destination) {
  static const struct dest_case c = {INFLUX_V1,    "ioc",       "raw_30d",
                                     "ioc_alerts", "alerts_1y", NULL};
  struct config cfg;
  config_of(&c, &cfg);
  struct influx_settings st;
  store__influx_settings(&cfg.influx, &st);
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(store__influx_url(&b, &st), IOCD_OK);
  cr_expect_str_eq(b.data,
                   "http://h:8086/write?db=ioc&rp=raw_30d&precision=ns");
  cr_expect_eq(st.max_in_flight, STORE_DEFAULT_MAX_IN_FLIGHT);
  buf_cleanup(&b);
}

Test(store_history, its_writer_sends_smaller_batches_one_at_a_time) {
  static const struct dest_case c = {INFLUX_V1,    "ioc", NULL,
                                     "ioc_alerts", NULL,  NULL};
  struct config cfg;
  config_of(&c, &cfg);
  struct influx_settings st;
  store__history_settings(&cfg, &st);
  cr_expect_eq(st.batch_points, STORE_HISTORY_BATCH_POINTS);
  cr_expect_eq(st.max_in_flight, 1);
  /* What else the data's writer has, it has too. */
  cfg.influx.batch_points = 200;
  cfg.influx.max_in_flight = 8;
  cfg.influx.timeout_ms = 3000;
  cfg.influx.username = "iocd";
  store__history_settings(&cfg, &st);
  cr_expect_eq(st.batch_points, 200);
  cr_expect_eq(st.max_in_flight, 1);
  cr_expect_eq(st.timeout_ms, 3000);
  cr_expect_str_eq(st.username, "iocd");
}

Test(store_history, a_lane_needs_influxdb_and_a_database_or_policy) {
  static const struct {
    bool influx;
    const char *hdb, *hrp;
    bool want;
  } cases[] = {
      {true, "ioc_alerts", NULL, true},
      {true, NULL, "alerts_1y", true},
      {true, "", "alerts_1y", true},
      {true, NULL, NULL, false},
      {true, "", "", false},
      {false, "ioc_alerts", "x", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.influx.enabled = cases[i].influx;
    cfg.notify.history_database = (char *)cases[i].hdb;
    cfg.notify.history_retention_policy = (char *)cases[i].hrp;
    cr_expect_eq(store__history_wanted(&cfg), cases[i].want, "case %zu", i);
  }
}

Test(store_history, validation_names_the_key_at_fault) {
  static const struct {
    struct dest_case c;
    const char *url;
    const char *want;
  } cases[] = {
      {{INFLUX_V2, NULL, NULL, NULL, "alerts_1y", NULL},
       NULL,
       "notifications.history.retention_policy"},
      {{INFLUX_V1, "ioc", NULL, "ioc_alerts", NULL, NULL},
       "ftp://h",
       "influxdb.url"},
      {{INFLUX_V1, NULL, NULL, NULL, "alerts_1y", NULL},
       NULL,
       "influxdb.database"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct config cfg;
    config_of(&cases[i].c, &cfg);
    if (cases[i].url) {
      cfg.influx.url = (char *)cases[i].url;
    }
    struct iocd_err err = {{0}};
    cr_assert_eq(store__history_validate(&cfg, &err), IOCD_EINVAL, "case %zu",
                 i);
    cr_expect(strncmp(err.msg, cases[i].want, strlen(cases[i].want)) == 0,
              "case %zu: %s", i, err.msg);
  }
}

Test(store_history,
     its_journal_sits_beside_the_data_journal_with_capped_limits) {
  struct config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.data_dir = "/var/lib/iocd//";
  char dir[256], hdir[256];
  struct journal_settings js, hs;
  store__journal_settings(&cfg, dir, sizeof dir, &js);
  store__journal_history_settings(&cfg, hdir, sizeof hdir, &hs);
  cr_expect_str_eq(js.dir, "/var/lib/iocd/journal");
  cr_expect_str_eq(hs.dir, "/var/lib/iocd/" STORE_HISTORY_DIR);
  cr_expect_null(js.label);
  cr_expect_str_eq(hs.label, "history");
  /* The defaults (64 MiB, 1 GiB, 16 MiB) are capped. */
  cr_expect_eq(hs.memory_bytes, STORE_HISTORY_MEMORY);
  cr_expect_eq(hs.max_bytes, STORE_HISTORY_MAX_BYTES);
  cr_expect_eq(hs.segment_bytes, STORE_HISTORY_SEGMENT);
  /* Whatever the data's policy, the history keeps the newest. */
  cr_expect_eq(js.when_full, JOURNAL_FULL_PAUSE);
  cr_expect_eq(hs.when_full, JOURNAL_FULL_DROP_OLDEST);
  /* Smaller limits are kept as they are. */
  cfg.journal.memory_bytes = 1 << 20;
  cfg.journal.max_bytes = 1 << 20;
  cfg.journal.segment_bytes = 256 << 10;
  cfg.journal.fsync = JOURNAL_FSYNC_ALWAYS;
  store__journal_history_settings(&cfg, hdir, sizeof hdir, &hs);
  cr_expect_eq(hs.memory_bytes, (size_t)1 << 20);
  cr_expect_eq(hs.max_bytes, (uint64_t)1 << 20);
  cr_expect_eq(hs.segment_bytes, (uint64_t)256 << 10);
  cr_expect_eq(hs.fsync, JOURNAL_FSYNC_ALWAYS);
}

/* ---- The lane on a loop ------------------------------------------------ */

/* A store whose InfluxDB refuses connections (port 1): nothing is written,
 * everything waits in the journals. */
struct t {
  uv_loop_t loop;
  char dir[64];
  struct stats *stats;
  struct config cfg;
  struct config_subscription subs[1];
  struct store *s;
  bool closed;
  uint64_t unwritten;
};

static void t_config(struct t *t, const char *history_db) {
  memset(&t->cfg, 0, sizeof t->cfg);
  t->subs[0].name = "igate";
  t->subs[0].topic = "ioc/+/igate";
  t->cfg.subs = t->subs;
  t->cfg.nsubs = 1;
  t->cfg.data_dir = t->dir;
  t->cfg.journal.enabled = true;
  t->cfg.influx.enabled = true;
  t->cfg.influx.url = "http://127.0.0.1:1";
  t->cfg.influx.database = "ioc";
  t->cfg.influx.create_database = false;
  t->cfg.influx.retry_min_ms = 50;
  t->cfg.influx.retry_max_ms = 100;
  t->cfg.notify.history_database = (char *)history_db;
}

static void t_open(struct t *t, const char *history_db) {
  cr_assert_eq(uv_loop_init(&t->loop), 0);
  t->stats = stats_new();
  cr_assert_not_null(t->stats);
  t_config(t, history_db);
  struct iocd_err err = {{0}};
  t->s = store_new(&t->loop, &t->cfg, t->stats, &err);
  cr_assert_not_null(t->s, "store_new: %s", err.msg);
  t->closed = false;
}

static void on_closed(void *ud, uint64_t unwritten) {
  struct t *t = ud;
  t->closed = true;
  t->unwritten = unwritten;
}

static void t_close(struct t *t) {
  store_close(t->s, 100, on_closed, t);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  cr_assert(t->closed);
  cr_assert_eq(uv_loop_close(&t->loop), 0, "handles left open on the loop");
  stats_free(t->stats);
}

static void t_run_ms(struct t *t, int64_t ms) {
  int64_t end = clock_mono_ns() / NS_PER_MS + ms;
  while (clock_mono_ns() / NS_PER_MS < end) {
    uv_run(&t->loop, UV_RUN_NOWAIT);
  }
}

static void append(struct t *t, size_t source, const char *meas, int n) {
  struct point_batch pb;
  pb_init(&pb);
  for (int j = 0; j < n; j++) {
    struct point *p = pb_point_new(&pb, meas, strlen(meas));
    cr_assert_not_null(p);
    p->ts_ns = INT64_C(1700000000000000000) + j;
    p->has_ts = true;
    char i[16];
    snprintf(i, sizeof i, "%d", j);
    cr_assert_eq(pb_tag(&pb, p, "district", 8, i, strlen(i), true), 0);
    cr_assert_eq(pb_field_float(&pb, p, "v", 1, j), 0);
  }
  cr_assert_eq(store_append(t->s, source, &pb), IOCD_OK);
  pb_cleanup(&pb);
}

static double series(struct t *t, const char *name, const char *k,
                     const char *v) {
  struct metric *m = stats_find(t->stats, name, k, v, NULL);
  cr_assert_not_null(m, "%s{%s=\"%s\"}", name, k, v);
  return m->kind == STAT_GAUGE ? m->value : (double)m->count;
}

static bool exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

static void t_tmpdir(struct t *t) {
  memset(t, 0, sizeof *t);
  snprintf(t->dir, sizeof t->dir, "/tmp/iocd-history-XXXXXX");
  cr_assert_not_null(mkdtemp(t->dir));
}

static void t_rmdir(struct t *t) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
  cr_expect_eq(system(cmd), 0);
}

Test(store_history, alert_points_wait_in_their_own_journal_across_a_restart) {
  struct t t;
  t_tmpdir(&t);
  t_open(&t, "ioc_alerts");
  append(&t, 0, "igate", 3);
  double fill = store_fill(t.s);
  append(&t, STORE_SOURCE_INTERNAL, "alerts", 1);
  append(&t, STORE_SOURCE_INTERNAL, "alerts", 1);
  /* The alert points are not in the data's journal, and do not count in
   * the fill that pauses intake. */
  cr_expect_eq(store_fill(t.s), fill);
  cr_expect_eq(store_pending_points(t.s), 5);
  cr_expect_eq(series(&t, "iocd_journal_backlog_points", "output", "influxdb"),
               3.0);
  cr_expect_eq(
      series(&t, "iocd_journal_backlog_points", "output", "influxdb_history"),
      2.0);
  /* Each writer tries on its own (and fails: nothing listens). */
  t_run_ms(&t, 1200);
  struct metric *hreq =
      stats_find(t.stats, "iocd_write_requests_total", "output",
                 "influxdb_history", "status", "network", NULL);
  struct metric *dreq =
      stats_find(t.stats, "iocd_write_requests_total", "output", "influxdb",
                 "status", "network", NULL);
  cr_assert_not_null(hreq);
  cr_assert_not_null(dreq);
  cr_expect_gt(hreq->count, 0);
  cr_expect_gt(dreq->count, 0);
  cr_expect_gt(
      stats_sum(t.stats, "iocd_journal_bytes", "journal", "history", NULL), 0);
  t_close(&t);
  cr_expect_eq(t.unwritten, 5);
  char hdir[160];
  snprintf(hdir, sizeof hdir, "%s/" STORE_HISTORY_DIR, t.dir);
  cr_expect(exists(hdir));

  /* After a restart both journals send what they kept. */
  t_open(&t, "ioc_alerts");
  cr_expect_eq(series(&t, "iocd_journal_replayed_points_total", "subscription",
                      "iocd:alerts"),
               2.0);
  cr_expect_eq(
      series(&t, "iocd_journal_replayed_points_total", "subscription", "igate"),
      3.0);
  cr_expect_eq(
      series(&t, "iocd_journal_backlog_points", "output", "influxdb_history"),
      2.0);
  t_close(&t);
  t_rmdir(&t);
}

Test(store_history, a_leftover_history_journal_is_sent_then_removed) {
  struct t t;
  t_tmpdir(&t);
  t_open(&t, "ioc_alerts");
  append(&t, STORE_SOURCE_INTERNAL, "alerts", 2);
  t_close(&t);

  /* The history is no longer configured: what its journal holds is still
   * sent (to the data's database), and new alert points go with the
   * data. */
  t_open(&t, NULL);
  cr_expect_eq(
      series(&t, "iocd_journal_backlog_points", "output", "influxdb_history"),
      2.0);
  append(&t, STORE_SOURCE_INTERNAL, "alerts", 1);
  cr_expect_eq(
      series(&t, "iocd_journal_backlog_points", "output", "influxdb_history"),
      2.0);
  cr_expect_eq(series(&t, "iocd_journal_backlog_points", "output", "influxdb"),
               1.0);
  t_close(&t);
  char hdir[160];
  snprintf(hdir, sizeof hdir, "%s/" STORE_HISTORY_DIR, t.dir);
  cr_expect(exists(hdir), "points are left in it: it stays");
  t_rmdir(&t);
}

Test(store_history, an_empty_leftover_history_journal_is_removed_at_start) {
  struct t t;
  t_tmpdir(&t);
  t_open(&t, "ioc_alerts");
  t_close(&t);
  char hdir[160];
  snprintf(hdir, sizeof hdir, "%s/" STORE_HISTORY_DIR, t.dir);
  cr_assert(exists(hdir));
  t_open(&t, NULL);
  cr_expect_not(exists(hdir));
  append(&t, STORE_SOURCE_INTERNAL, "alerts", 1);
  cr_expect_eq(series(&t, "iocd_journal_backlog_points", "output", "influxdb"),
               1.0);
  t_close(&t);
  t_rmdir(&t);
}

Test(store_history, without_the_journal_alert_points_wait_in_their_own_queue) {
  struct t t;
  t_tmpdir(&t);
  cr_assert_eq(uv_loop_init(&t.loop), 0);
  t.stats = stats_new();
  t_config(&t, "ioc_alerts");
  t.cfg.journal.enabled = false;
  t.cfg.influx.buffer_bytes = 1 << 20;
  struct iocd_err err = {{0}};
  t.s = store_new(&t.loop, &t.cfg, t.stats, &err);
  cr_assert_not_null(t.s, "%s", err.msg);
  append(&t, 0, "igate", 2);
  double fill = store_fill(t.s);
  cr_expect_gt(fill, 0.0);
  append(&t, STORE_SOURCE_INTERNAL, "alerts", 3);
  cr_expect_eq(store_fill(t.s), fill);
  cr_expect_eq(store_pending_points(t.s), 5);
  t_close(&t);
  cr_expect_eq(t.unwritten, 5);
  char hdir[160];
  snprintf(hdir, sizeof hdir, "%s/" STORE_HISTORY_DIR, t.dir);
  cr_expect_not(exists(hdir));
  t_rmdir(&t);
}
