/*
 * Self-metrics (store/self_metrics.h): the registry as points, checked as
 * the line protocol the store would write.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/lp.h"
#include "core/point.h"
#include "core/stats.h"
#include "store/self_metrics.h"

#define TS INT64_C(1601460000000000000)

/* The sample as line protocol, one line per point. */
static char *sample(struct stats *st, const char *host, size_t max,
                    size_t *left) {
  struct point_batch pb;
  pb_init(&pb);
  cr_assert_eq(
      self_metrics_collect(st, "iocd_internal", host, TS, max, &pb, left),
      IOCD_OK);
  struct buf b;
  buf_init(&b, 0);
  for (size_t i = 0; i < pb.npoints; i++) {
    cr_assert_eq(lp_append_point(&b, &pb, &pb.points[i]), IOCD_OK);
  }
  pb_cleanup(&pb);
  char *s = buf_detach(&b, NULL);
  return s ? s : strdup("");
}

Test(self_metrics, writes_series_of_one_label_set_as_one_point) {
  struct stats *st = stats_new();
  stat_add(stats_counter(st, "iocd_messages_total", "", "subscription", "igate",
                         NULL),
           7);
  stat_add(stats_counter(st, "iocd_messages_accepted_total", "", "subscription",
                         "igate", NULL),
           5);
  stat_add(stats_counter(st, "iocd_rejects_total", "", "subscription", "igate",
                         "reason", "malformed", NULL),
           2);
  stat_set(stats_gauge(st, "iocd_mqtt_connected", "", NULL), 1);
  char *lp = sample(st, "ioc-1", 100, NULL);
  cr_expect_str_eq(
      lp,
      "iocd_internal,host=ioc-1 iocd_mqtt_connected=1 "
      "1601460000000000000\n"
      "iocd_internal,host=ioc-1,subscription=igate iocd_messages_total=7i,"
      "iocd_messages_accepted_total=5i 1601460000000000000\n"
      "iocd_internal,host=ioc-1,reason=malformed,subscription=igate "
      "iocd_rejects_total=2i 1601460000000000000\n");
  free(lp);
  stats_free(st);
}

Test(self_metrics, leaves_out_counters_at_zero_but_not_gauges) {
  struct stats *st = stats_new();
  stats_counter(st, "iocd_rejects_total", "", "subscription", "igate", "reason",
                "malformed", NULL);
  stats_gauge(st, "iocd_queue_points", "", NULL);
  char *lp = sample(st, "h", 100, NULL);
  cr_expect_str_eq(lp,
                   "iocd_internal,host=h iocd_queue_points=0 "
                   "1601460000000000000\n");
  free(lp);
  stats_free(st);
}

Test(self_metrics, writes_a_histogram_as_sum_and_count_without_buckets) {
  struct stats *st = stats_new();
  static const double bounds[] = {0.1, 1};
  struct metric *h = stats_histogram(st, "iocd_write_seconds", "", bounds, 2,
                                     "output", "influxdb", NULL);
  stat_observe(h, 0.05);
  stat_observe(h, 0.5);
  char *lp = sample(st, "h", 100, NULL);
  cr_expect_str_eq(lp,
                   "iocd_internal,host=h,output=influxdb "
                   "iocd_write_seconds_sum=0.55,iocd_write_seconds_count=2i "
                   "1601460000000000000\n");
  free(lp);
  stats_free(st);
}

Test(self_metrics, an_empty_label_is_no_tag_and_host_wins_over_a_label) {
  struct stats *st = stats_new();
  stat_inc(
      stats_counter(st, "iocd_messages_total", "", "subscription", "", NULL));
  stat_inc(stats_counter(st, "x_total", "", "host", "theirs", NULL));
  char *lp = sample(st, "ours", 100, NULL);
  cr_expect_str_eq(lp,
                   "iocd_internal,host=ours iocd_messages_total=1i "
                   "1601460000000000000\n"
                   "iocd_internal,host=ours x_total=1i "
                   "1601460000000000000\n");
  free(lp);
  stats_free(st);
}

Test(self_metrics, escapes_label_values_as_tags) {
  struct stats *st = stats_new();
  stat_inc(stats_counter(st, "iocd_district_messages_total", "", "district",
                         "Ea H'leo, \"Đắk\"", NULL));
  char *lp = sample(st, "h", 100, NULL);
  cr_expect_str_eq(lp,
                   "iocd_internal,district=Ea\\ H'leo\\,\\ \"Đắk\",host=h "
                   "iocd_district_messages_total=1i 1601460000000000000\n");
  free(lp);
  stats_free(st);
}

Test(self_metrics, stops_at_the_limit_and_counts_the_rest) {
  struct stats *st = stats_new();
  char name[16];
  for (int i = 0; i < 5; i++) {
    snprintf(name, sizeof name, "s%d", i);
    stat_inc(stats_counter(st, "iocd_messages_total", "", "subscription", name,
                           NULL));
  }
  size_t left = 0;
  char *lp = sample(st, "h", 3, &left);
  size_t lines = 0;
  for (const char *p = lp; *p; p++) {
    lines += *p == '\n';
  }
  cr_expect_eq(lines, 3);
  cr_expect_eq(left, 2);
  free(lp);
  stats_free(st);
}

Test(self_metrics, leaves_out_a_gauge_that_is_not_finite) {
  struct stats *st = stats_new();
  stat_set(stats_gauge(st, "a", "", NULL), 0.0 / 0.0);
  stat_set(stats_gauge(st, "b", "", NULL), 2.5);
  char *lp = sample(st, "h", 100, NULL);
  cr_expect_str_eq(lp, "iocd_internal,host=h b=2.5 1601460000000000000\n");
  free(lp);
  stats_free(st);
}
