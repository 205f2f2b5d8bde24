/*
 * The store's queue gauges as a user reads them on /metrics, with the
 * journal on: iocd_queue_points and iocd_queue_bytes describe the same
 * points (those not yet confirmed by the slowest output), and the disk the
 * journal takes is iocd_journal_bytes. The store runs on its own loop with
 * the file output, which confirms what it wrote.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/point.h"
#include "core/stats.h"
#include "store/store.h"

struct t {
  uv_loop_t loop;
  char dir[64];
  char path[128];
  struct stats *stats;
  struct config cfg;
  struct config_subscription subs[1];
  struct store *s;
  bool closed;
};

static void t_start(struct t *t) {
  memset(t, 0, sizeof *t);
  cr_assert_eq(uv_loop_init(&t->loop), 0);
  snprintf(t->dir, sizeof t->dir, "/tmp/iocd-gauges-XXXXXX");
  cr_assert_not_null(mkdtemp(t->dir));
  snprintf(t->path, sizeof t->path, "%s/points.lp", t->dir);
  t->stats = stats_new();
  cr_assert_not_null(t->stats);
  t->subs[0].name = "igate";
  t->subs[0].topic = "ioc/+/igate";
  t->cfg.subs = t->subs;
  t->cfg.nsubs = 1;
  t->cfg.data_dir = t->dir;
  t->cfg.journal.enabled = true;
  t->cfg.file.enabled = true;
  t->cfg.file.path = t->path;
  struct iocd_err err = {{0}};
  t->s = store_new(&t->loop, &t->cfg, t->stats, &err);
  cr_assert_not_null(t->s, "store_new: %s", err.msg);
}

static void on_closed(void *ud, uint64_t unwritten) {
  (void)unwritten;
  struct t *t = ud;
  t->closed = true;
}

static void t_finish(struct t *t) {
  store_close(t->s, 2000, on_closed, t);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  cr_assert(t->closed);
  cr_assert_eq(uv_loop_close(&t->loop), 0, "handles left open on the loop");
  stats_free(t->stats);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
  cr_expect_eq(system(cmd), 0);
}

static double gauge(struct t *t, const char *name) {
  struct metric *m = stats_find(t->stats, name, NULL);
  cr_assert_not_null(m, "%s", name);
  return m->value;
}

/* One message of 5 points "m,k=a,i=<j> v=<j> <ts>", 34 bytes of line
 * protocol each. */
static void append_five(struct t *t) {
  struct point_batch pb;
  pb_init(&pb);
  for (int j = 0; j < 5; j++) {
    struct point *p = pb_point_new(&pb, "m", 1);
    cr_assert_not_null(p);
    p->ts_ns = INT64_C(1700000000000000000) + j;
    p->has_ts = true;
    char i[4];
    snprintf(i, sizeof i, "%d", j);
    cr_assert_eq(pb_tag(&pb, p, "k", 1, "a", 1, true), 0);
    cr_assert_eq(pb_tag(&pb, p, "i", 1, i, strlen(i), true), 0);
    cr_assert_eq(pb_field_float(&pb, p, "v", 1, j), 0);
  }
  cr_assert_eq(store_append(t->s, 0, &pb), 0);
  pb_cleanup(&pb);
}

Test(store_gauges, queue_bytes_are_the_bytes_of_the_points_that_wait) {
  struct t t;
  t_start(&t);
  append_five(&t);
  cr_expect_eq(gauge(&t, "iocd_queue_points"), 5.0);
  cr_expect_eq(gauge(&t, "iocd_queue_bytes"), 170.0,
               "5 points of 34 bytes wait, the gauge says %.0f bytes",
               gauge(&t, "iocd_queue_bytes"));
  int64_t end = clock_mono_ns() / NS_PER_MS + 5000;
  while (store_pending_points(t.s) > 0 && clock_mono_ns() / NS_PER_MS < end) {
    uv_run(&t.loop, UV_RUN_ONCE);
  }
  cr_assert_eq(store_pending_points(t.s), 0, "the file output did not write");
  /* The journal's own gauges follow every second. */
  end = clock_mono_ns() / NS_PER_MS + 1200;
  while (clock_mono_ns() / NS_PER_MS < end) {
    uv_run(&t.loop, UV_RUN_ONCE);
  }
  /* Written and confirmed: nothing waits, though the record stays in the
   * segment still being written, which iocd_journal_bytes shows. */
  cr_expect_eq(gauge(&t, "iocd_queue_points"), 0.0);
  cr_expect_eq(gauge(&t, "iocd_queue_bytes"), 0.0,
               "no point waits, the gauge says %.0f bytes",
               gauge(&t, "iocd_queue_bytes"));
  cr_expect_gt(gauge(&t, "iocd_journal_bytes"), 170.0);
  t_finish(&t);
}
