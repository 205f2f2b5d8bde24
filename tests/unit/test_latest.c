/*
 * The latest-value table: what GET /api/v1/latest shows of the points the
 * store took, and what its bounds do.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/stats.h"
#include "store/latest.h"

/* Adds one point to pb: measurement, "k=v" tags (NULL-terminated), one
 * float field f=v at ts. */
static struct point *point(struct point_batch *pb, const char *meas,
                           const char *const *tags, const char *f, double v,
                           int64_t ts) {
  struct point *p = pb_point_new(pb, meas, strlen(meas));
  cr_assert_not_null(p);
  for (size_t i = 0; tags && tags[i]; i++) {
    const char *eq = strchr(tags[i], '=');
    cr_assert_eq(pb_tag(pb, p, tags[i], (size_t)(eq - tags[i]), eq + 1,
                        strlen(eq + 1), false),
                 IOCD_OK);
  }
  cr_assert_eq(pb_field_float(pb, p, f, strlen(f), v), IOCD_OK);
  p->ts_ns = ts;
  p->has_ts = true;
  return p;
}

struct seen {
  size_t n;
  char keys[16][128]; /* "meas,k=v,k=v" */
  double first_value[16];
  size_t nfields[16];
  int64_t ts[16];
};

static int collect(void *ud, const struct latest_series *s) {
  struct seen *w = ud;
  cr_assert_lt(w->n, 16);
  int off = snprintf(w->keys[w->n], 128, "%s", s->measurement);
  for (size_t i = 0; i < s->ntags; i++) {
    off += snprintf(w->keys[w->n] + off, 128 - (size_t)off, ",%s=%s",
                    s->tag_keys[i], s->tag_values[i]);
  }
  w->first_value[w->n] = s->nfields ? s->fields[0].v.f : -1;
  w->nfields[w->n] = s->nfields;
  w->ts[w->n] = s->ts_ns;
  w->n++;
  return IOCD_OK;
}

static void each(const struct latest *l, const char *meas,
                 const struct latest_match *m, size_t nm, struct seen *w) {
  memset(w, 0, sizeof *w);
  cr_assert_eq(latest_each(l, meas, m, nm, collect, w), IOCD_OK);
}

Test(latest, keeps_the_newest_value_of_each_series_with_tags_in_key_order) {
  struct latest *l = latest_new(0, 0, NULL);
  struct point_batch pb;
  pb_init(&pb);
  const char *a[] = {"system=igate", "district=A", NULL};
  const char *a2[] = {"district=A", "system=igate", NULL};
  point(&pb, "igate", a, "received", 10, 1000);
  point(&pb, "igate", a2, "received", 12, 2000); /* same series */
  cr_assert_eq(latest_update(l, &pb, 5), IOCD_OK);
  struct seen w;
  each(l, NULL, NULL, 0, &w);
  cr_assert_eq(w.n, 1);
  cr_expect_str_eq(w.keys[0], "igate,district=A,system=igate");
  cr_expect_eq(w.first_value[0], 12);
  cr_expect_eq(w.ts[0], 2000);
  pb_cleanup(&pb);
  latest_free(l);
}

Test(latest, a_late_point_does_not_hide_a_newer_value) {
  struct latest *l = latest_new(0, 0, NULL);
  struct point_batch pb;
  pb_init(&pb);
  const char *a[] = {"district=A", NULL};
  point(&pb, "m", a, "v", 2, 2000);
  point(&pb, "m", a, "v", 1, 1000); /* from a district's buffer, late */
  latest_update(l, &pb, 5);
  struct seen w;
  each(l, NULL, NULL, 0, &w);
  cr_assert_eq(w.n, 1);
  cr_expect_eq(w.first_value[0], 2);
  cr_expect_eq(w.ts[0], 2000);
  pb_cleanup(&pb);
  latest_free(l);
}

Test(latest, filters_by_tags_and_measurement_with_and) {
  struct latest *l = latest_new(0, 0, NULL);
  struct point_batch pb;
  pb_init(&pb);
  const char *ai[] = {"district=A", "system=igate", NULL};
  const char *ad[] = {"district=A", "system=dvc", NULL};
  const char *bi[] = {"district=B", "system=igate", NULL};
  point(&pb, "igate", ai, "v", 1, 1);
  point(&pb, "dvc", ad, "v", 2, 1);
  point(&pb, "igate", bi, "v", 3, 1);
  latest_update(l, &pb, 5);
  struct seen w;
  struct latest_match da[] = {{"district", "A"}};
  each(l, NULL, da, 1, &w);
  cr_assert_eq(w.n, 2);
  cr_expect_str_eq(w.keys[0], "dvc,district=A,system=dvc");
  cr_expect_str_eq(w.keys[1], "igate,district=A,system=igate");
  struct latest_match dasi[] = {{"district", "A"}, {"system", "igate"}};
  each(l, NULL, dasi, 2, &w);
  cr_assert_eq(w.n, 1);
  cr_expect_eq(w.first_value[0], 1);
  each(l, "igate", NULL, 0, &w);
  cr_expect_eq(w.n, 2);
  struct latest_match none[] = {{"district", "C"}};
  each(l, NULL, none, 1, &w);
  cr_expect_eq(w.n, 0);
  pb_cleanup(&pb);
  latest_free(l);
}

Test(latest, evicts_the_least_recently_updated_series_past_its_cap) {
  struct stats *st = stats_new();
  struct latest *l = latest_new(2, 0, st);
  struct point_batch pb;
  pb_init(&pb);
  const char *a[] = {"district=A", NULL};
  const char *b[] = {"district=B", NULL};
  const char *c[] = {"district=C", NULL};
  point(&pb, "m", a, "v", 1, 1);
  point(&pb, "m", b, "v", 2, 1);
  point(&pb, "m", a, "v", 3, 2); /* A is now the most recent */
  point(&pb, "m", c, "v", 4, 1); /* B goes */
  latest_update(l, &pb, 5);
  struct seen w;
  each(l, NULL, NULL, 0, &w);
  cr_assert_eq(w.n, 2);
  cr_expect_str_eq(w.keys[0], "m,district=A");
  cr_expect_str_eq(w.keys[1], "m,district=C");
  struct latest_stats ls;
  latest_get_stats(l, &ls);
  cr_expect_eq(ls.evicted, 1);
  cr_expect_eq(stats_sum(st, "iocd_latest_evicted_total", NULL), 1);
  cr_expect_eq(stats_sum(st, "iocd_latest_series", NULL), 2);
  pb_cleanup(&pb);
  latest_free(l);
  stats_free(st);
}

Test(latest, keeps_within_its_byte_bound) {
  struct latest *l = latest_new(0, 4096, NULL);
  struct point_batch pb;
  pb_init(&pb);
  for (int i = 0; i < 200; i++) {
    char tag[32];
    snprintf(tag, sizeof tag, "district=D%03d", i);
    const char *t[] = {tag, NULL};
    point(&pb, "m", t, "v", i, 1);
  }
  latest_update(l, &pb, 5);
  struct latest_stats ls;
  latest_get_stats(l, &ls);
  cr_expect_leq(ls.bytes, 4096);
  cr_expect_gt(ls.series, 0);
  cr_expect_eq(ls.series + ls.evicted, 200);
  struct seen w;
  struct latest_match last[] = {{"district", "D199"}};
  each(l, NULL, last, 1, &w);
  cr_expect_eq(w.n, 1, "the newest series was evicted");
  pb_cleanup(&pb);
  latest_free(l);
}

Test(latest, merges_fields_and_counts_those_past_the_cap) {
  struct stats *st = stats_new();
  struct latest *l = latest_new(0, 0, st);
  struct point_batch pb;
  pb_init(&pb);
  const char *a[] = {"district=A", NULL};
  for (unsigned i = 0; i < LATEST_FIELDS_MAX + 3; i++) {
    char f[16];
    snprintf(f, sizeof f, "f%u", i);
    point(&pb, "m", a, f, i, 1);
  }
  struct point *p = pb_point_new(&pb, "m", 1);
  cr_assert_eq(pb_tag(&pb, p, "district", 8, "A", 1, false), IOCD_OK);
  cr_assert_eq(pb_field_string(&pb, p, "f0", 2, "text", 4), IOCD_OK);
  p->ts_ns = 2;
  p->has_ts = true;
  latest_update(l, &pb, 5);
  struct seen w;
  each(l, NULL, NULL, 0, &w);
  cr_assert_eq(w.n, 1);
  cr_expect_eq(w.nfields[0], LATEST_FIELDS_MAX);
  cr_expect_eq(
      stats_sum(st, "iocd_latest_dropped_total", "reason", "fields", NULL), 3);
  pb_cleanup(&pb);
  latest_free(l);
  stats_free(st);
}
