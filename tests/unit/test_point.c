/*
 * Tests of the point batch: arena strings, tag replace semantics, dropping a
 * half-built point, tag sorting, max_points, and reuse after pb_reset.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/point.h"

static struct point *new_point(struct point_batch *pb, const char *m) {
  struct point *p = pb_point_new(pb, m, strlen(m));
  cr_assert_not_null(p);
  return p;
}

static void add_tag(struct point_batch *pb, struct point *p, const char *k,
                    const char *v, bool replace) {
  cr_assert_eq(pb_tag(pb, p, k, strlen(k), v, strlen(v), replace), IOCD_OK);
}

static bool str_is(const struct str *s, const char *want) {
  return s && s->len == strlen(want) && memcmp(s->p, want, s->len) == 0;
}

Test(point_types, names_and_parses_every_field_type) {
  static const struct {
    enum field_type t;
    const char *name;
  } cases[] = {
      {FIELD_FLOAT, "float"},
      {FIELD_INT, "integer"},
      {FIELD_BOOL, "boolean"},
      {FIELD_STRING, "string"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_assert_str_eq(field_type_name(cases[i].t), cases[i].name);
    cr_assert_eq(field_type_parse(cases[i].name), cases[i].t);
  }
  cr_assert_str_eq(field_type_name(FIELD_NONE), "none");
  cr_assert_eq(field_type_parse("int"), FIELD_NONE);
  cr_assert_eq(field_type_parse("Float"), FIELD_NONE);
  cr_assert_eq(field_type_parse(""), FIELD_NONE);
  cr_assert_eq(field_type_parse(NULL), FIELD_NONE);
}

Test(point_batch, copies_strings_into_the_arena_nul_terminated) {
  struct point_batch pb;
  pb_init(&pb);
  char src[] = "Buôn Ma Thuột plus tail";
  const char *s = pb_strdup(&pb, src, strlen("Buôn Ma Thuột"));
  cr_assert_not_null(s);
  cr_assert_str_eq(s, "Buôn Ma Thuột");
  memset(src, 'x', sizeof src - 1);
  cr_assert_str_eq(s, "Buôn Ma Thuột");
  const char *e = pb_strdup(&pb, NULL, 0);
  cr_assert_not_null(e);
  cr_assert_str_eq(e, "");
  pb_cleanup(&pb);
}

Test(point_batch, arena_strings_never_move_while_the_batch_grows) {
  struct point_batch pb;
  pb_init(&pb);
  enum { N = 5000 };
  static const char *ptrs[N];
  char tmp[32];
  for (int i = 0; i < N; i++) {
    int n = snprintf(tmp, sizeof tmp, "string-%d", i);
    ptrs[i] = pb_strdup(&pb, tmp, (size_t)n);
    cr_assert_not_null(ptrs[i]);
  }
  /* A string larger than any chunk, between small ones. */
  static char big[200000];
  memset(big, 'b', sizeof big);
  const char *bp = pb_strdup(&pb, big, sizeof big);
  cr_assert_not_null(bp);
  const char *after = pb_strdup(&pb, "after", 5);
  for (int i = 0; i < N; i++) {
    snprintf(tmp, sizeof tmp, "string-%d", i);
    cr_assert_str_eq(ptrs[i], tmp);
  }
  cr_assert_eq(memcmp(bp, big, sizeof big), 0);
  cr_assert_eq(bp[sizeof big], '\0');
  cr_assert_str_eq(after, "after");
  pb_cleanup(&pb);
}

Test(point_batch, builds_points_with_tags_and_typed_fields) {
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = new_point(&pb, "igate");
  add_tag(&pb, p, "district", "Ea H'Leo", false);
  cr_assert_eq(pb_field_float(&pb, p, "level", 5, 1.5), IOCD_OK);
  cr_assert_eq(pb_field_int(&pb, p, "count", 5, INT64_MIN), IOCD_OK);
  cr_assert_eq(pb_field_bool(&pb, p, "ok", 2, true), IOCD_OK);
  cr_assert_eq(pb_field_string(&pb, p, "note", 4, "a\"b", 3), IOCD_OK);
  p->ts_ns = 42;
  p->has_ts = true;

  struct point *q = new_point(&pb, "second");
  add_tag(&pb, q, "k", "v", false);
  cr_assert_eq(pb_field_int(&pb, q, "n", 1, 7), IOCD_OK);

  cr_assert_eq(pb.npoints, 2);
  p = &pb.points[0];
  cr_assert(str_is(&p->measurement, "igate"));
  cr_assert_eq(p->ntags, 1);
  cr_assert_eq(p->nfields, 4);
  cr_assert(p->has_ts);
  cr_assert_eq(p->ts_ns, 42);
  struct field *f = pb_fields(&pb, p);
  cr_assert_eq(f[0].type, FIELD_FLOAT);
  cr_assert(f[0].v.f == 1.5);
  cr_assert_eq(f[1].type, FIELD_INT);
  cr_assert_eq(f[1].v.i, INT64_MIN);
  cr_assert_eq(f[2].type, FIELD_BOOL);
  cr_assert(f[2].v.b);
  cr_assert_eq(f[3].type, FIELD_STRING);
  cr_assert(str_is(&f[3].v.s, "a\"b"));
  cr_assert(str_is(&f[3].key, "note"));

  q = &pb.points[1];
  cr_assert_not(q->has_ts);
  cr_assert_eq(q->tag0, 1);
  cr_assert_eq(q->field0, 4);
  cr_assert(str_is(pb_tag_get(&pb, q, "k"), "v"));
  cr_assert_null(pb_tag_get(&pb, q, "district"));
  cr_assert(str_is(pb_tag_get(&pb, p, "district"), "Ea H'Leo"));
  pb_cleanup(&pb);
}

Test(point_batch, tag_replaces_value_only_when_asked) {
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = new_point(&pb, "m");
  add_tag(&pb, p, "site", "first", false);
  add_tag(&pb, p, "site", "ignored", false);
  cr_assert_eq(p->ntags, 1);
  cr_assert(str_is(pb_tag_get(&pb, p, "site"), "first"));
  add_tag(&pb, p, "site", "second", true);
  cr_assert_eq(p->ntags, 1);
  cr_assert(str_is(pb_tag_get(&pb, p, "site"), "second"));
  /* A key that is a prefix of another is a different key. */
  add_tag(&pb, p, "sit", "short", false);
  cr_assert_eq(p->ntags, 2);
  cr_assert(str_is(pb_tag_get(&pb, p, "sit"), "short"));
  cr_assert(str_is(pb_tag_get(&pb, p, "site"), "second"));
  pb_cleanup(&pb);
}

Test(point_batch, drop_last_forgets_the_point_with_its_tags_and_fields) {
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = new_point(&pb, "keep");
  add_tag(&pb, p, "a", "1", false);
  cr_assert_eq(pb_field_int(&pb, p, "f", 1, 1), IOCD_OK);
  p = new_point(&pb, "drop");
  add_tag(&pb, p, "b", "2", false);
  add_tag(&pb, p, "c", "3", false);
  cr_assert_eq(pb_field_int(&pb, p, "g", 1, 2), IOCD_OK);
  pb_point_drop_last(&pb);
  cr_assert_eq(pb.npoints, 1);
  cr_assert_eq(pb.ntags, 1);
  cr_assert_eq(pb.nfields, 1);

  p = new_point(&pb, "next");
  add_tag(&pb, p, "d", "4", false);
  cr_assert_eq(p->tag0, 1);
  cr_assert_eq(p->field0, 1);
  cr_assert(str_is(pb_tag_get(&pb, p, "d"), "4"));
  cr_assert_null(pb_tag_get(&pb, p, "b"));

  pb_point_drop_last(&pb);
  pb_point_drop_last(&pb);
  pb_point_drop_last(&pb); /* on an empty batch: nothing happens */
  cr_assert_eq(pb.npoints, 0);
  cr_assert_eq(pb.ntags, 0);
  cr_assert_eq(pb.nfields, 0);
  pb_cleanup(&pb);
}

Test(point_batch, sorts_tags_bytewise_and_stably) {
  struct point_batch pb;
  pb_init(&pb);
  /* A first point whose tags must not be touched by sorting the second. */
  struct point *p0 = new_point(&pb, "other");
  add_tag(&pb, p0, "z", "0", false);
  add_tag(&pb, p0, "a", "0", false);
  struct point *p = new_point(&pb, "m");
  static const char *keys[] = {"zone", "b",     "Z", "ab", "a",
                               "đ",    "a\x01", "d", "",   "aa"};
  static const char *want[] = {"",   "Z", "a", "a\x01", "aa",
                               "ab", "b", "d", "zone",  "đ"};
  enum { N = sizeof keys / sizeof keys[0] };
  for (size_t i = 0; i < N; i++) {
    add_tag(&pb, p, keys[i], keys[i], false);
  }
  pb_point_sort_tags(&pb, p);
  struct tag *t = pb_tags(&pb, p);
  for (size_t i = 0; i < N; i++) {
    cr_assert(str_is(&t[i].key, want[i]), "position %zu: %s", i, t[i].key.p);
    cr_assert(str_is(&t[i].value, want[i]));
  }
  cr_assert(str_is(&pb.tags[0].key, "z"));
  cr_assert(str_is(&pb.tags[1].key, "a"));
  pb_cleanup(&pb);
}

Test(point_batch, sort_keeps_the_order_of_equal_keys) {
  /* pb_tag never adds duplicates, so build the equal keys by hand. */
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = new_point(&pb, "m");
  add_tag(&pb, p, "k1", "first", false);
  add_tag(&pb, p, "a", "x", false);
  add_tag(&pb, p, "k2", "second", false);
  add_tag(&pb, p, "k3", "third", false);
  struct tag *t = pb_tags(&pb, p);
  t[2].key = t[0].key;
  t[3].key = t[0].key;
  pb_point_sort_tags(&pb, p);
  cr_assert(str_is(&t[0].key, "a"));
  cr_assert(str_is(&t[1].value, "first"));
  cr_assert(str_is(&t[2].value, "second"));
  cr_assert(str_is(&t[3].value, "third"));
  pb_cleanup(&pb);
}

Test(point_batch, refuses_points_past_max_points) {
  struct point_batch pb;
  pb_init(&pb);
  pb.max_points = 3;
  for (int i = 0; i < 3; i++) {
    cr_assert_not_null(pb_point_new(&pb, "m", 1));
  }
  cr_assert_null(pb_point_new(&pb, "m", 1));
  cr_assert_eq(pb.npoints, 3);
  pb_reset(&pb);
  cr_assert_not_null(pb_point_new(&pb, "m", 1));
  pb_cleanup(&pb);
  cr_assert_eq(pb.max_points, 3);
}

Test(point_batch, reset_keeps_allocations_and_forgets_points) {
  struct point_batch pb;
  pb_init(&pb);
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 100; i++) {
      struct point *p = new_point(&pb, "meas");
      add_tag(&pb, p, "k", "v", false);
      cr_assert_eq(pb_field_int(&pb, p, "f", 1, i), IOCD_OK);
    }
    cr_assert_eq(pb.npoints, 100);
    struct point *points = pb.points;
    struct tag *tags = pb.tags;
    size_t cap = pb.cap_points;
    pb_reset(&pb);
    cr_assert_eq(pb.npoints, 0);
    cr_assert_eq(pb.ntags, 0);
    cr_assert_eq(pb.nfields, 0);
    cr_assert_eq(pb.points, points);
    cr_assert_eq(pb.tags, tags);
    cr_assert_eq(pb.cap_points, cap);
    cr_assert_not_null(pb.chunks);
  }
  /* After a reset the kept chunk is reused from its start. */
  const char *a = pb_strdup(&pb, "x", 1);
  pb_reset(&pb);
  const char *b = pb_strdup(&pb, "y", 1);
  cr_assert_eq(a, b);
  cr_assert_str_eq(b, "y");
  pb_cleanup(&pb);
}

Test(point_batch, reset_after_a_huge_string_keeps_the_small_chunk) {
  struct point_batch pb;
  pb_init(&pb);
  static char big[1 << 20];
  memset(big, 'q', sizeof big);
  const char *a = pb_strdup(&pb, "small", 5);
  cr_assert_not_null(a);
  cr_assert_not_null(pb_strdup(&pb, big, sizeof big));
  pb_reset(&pb);
  /* The huge chunk is released; small strings go back to the first chunk. */
  const char *b = pb_strdup(&pb, "again", 5);
  cr_assert_eq(a, b);
  cr_assert_str_eq(b, "again");
  pb_cleanup(&pb);
}
