/*
 * Tests of the line-protocol encoder and parser: exact escaping, exact
 * encoding of every field type, the parser's accepted syntax and its error
 * messages, and round trips of awkward names through both.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/lp.h"
#include "core/point.h"

/* ---- Helpers ----------------------------------------------------------- */

static bool str_is(const struct str *s, const char *want) {
  return s && s->len == strlen(want) && memcmp(s->p, want, s->len) == 0;
}

/* Parses a copy of text in a heap block of exactly its length, so that
 * ASan catches any read past len. */
static int parse(struct point_batch *pb, const char *text, int64_t mult,
                 struct iocd_err *err) {
  size_t n = strlen(text);
  char *copy = malloc(n ? n : 1);
  cr_assert_not_null(copy);
  memcpy(copy, text, n);
  int rc = lp_parse(pb, copy, n, mult, err);
  free(copy);
  return rc;
}

static bool same_double(double a, double b) {
  return memcmp(&a, &b, sizeof a) == 0;
}

static bool str_eq(const struct str *a, const struct str *b) {
  return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

/* Compares two points field by field; floats bit for bit, so that -0.0
 * and 0.0 differ. */
static void assert_point_eq(const struct point_batch *pa, const struct point *a,
                            const struct point_batch *pb, const struct point *b,
                            const char *what) {
  cr_assert(str_eq(&a->measurement, &b->measurement), "%s: measurement %s",
            what, b->measurement.p);
  cr_assert_eq(a->ntags, b->ntags, "%s: ntags", what);
  for (size_t i = 0; i < a->ntags; i++) {
    const struct tag *ta = &pb_tags(pa, a)[i];
    const struct tag *tb = &pb_tags(pb, b)[i];
    cr_assert(str_eq(&ta->key, &tb->key), "%s: tag key %zu: %s", what, i,
              tb->key.p);
    cr_assert(str_eq(&ta->value, &tb->value), "%s: tag value %zu: %s", what, i,
              tb->value.p);
  }
  cr_assert_eq(a->nfields, b->nfields, "%s: nfields", what);
  for (size_t i = 0; i < a->nfields; i++) {
    const struct field *fa = &pb_fields(pa, a)[i];
    const struct field *fb = &pb_fields(pb, b)[i];
    cr_assert(str_eq(&fa->key, &fb->key), "%s: field key %zu: %s", what, i,
              fb->key.p);
    cr_assert_eq(fa->type, fb->type, "%s: field type %zu", what, i);
    switch (fa->type) {
      case FIELD_FLOAT:
        cr_assert(same_double(fa->v.f, fb->v.f), "%s: %.17g != %.17g", what,
                  fa->v.f, fb->v.f);
        break;
      case FIELD_INT:
        cr_assert_eq(fa->v.i, fb->v.i, "%s", what);
        break;
      case FIELD_BOOL:
        cr_assert_eq(fa->v.b, fb->v.b, "%s", what);
        break;
      case FIELD_STRING:
        cr_assert(str_eq(&fa->v.s, &fb->v.s), "%s: string %s", what, fb->v.s.p);
        break;
      case FIELD_NONE:
        cr_assert_fail("%s: FIELD_NONE", what);
    }
  }
  cr_assert_eq(a->has_ts, b->has_ts, "%s: has_ts", what);
  if (a->has_ts) {
    cr_assert_eq(a->ts_ns, b->ts_ns, "%s: ts", what);
  }
}

/* A point with measurement m and one float field v = 1. */
static struct point *simple_point(struct point_batch *pb, const char *m) {
  struct point *p = pb_point_new(pb, m, strlen(m));
  cr_assert_not_null(p);
  cr_assert_eq(pb_field_float(pb, p, "v", 1, 1.0), IOCD_OK);
  return p;
}

static void assert_encodes(struct point_batch *pb, struct point *p,
                           const char *want) {
  struct buf out;
  buf_init(&out, 0);
  cr_assert_eq(lp_append_point(&out, pb, p), IOCD_OK, "encoding %s", want);
  cr_assert_str_eq(out.data, want);
  buf_cleanup(&out);
}

/* ---- Escaping ---------------------------------------------------------- */

struct esc_case {
  const char *in;
  const char *want;
};

typedef int escape_fn(struct buf *out, const char *s, size_t n);

static void check_escapes(escape_fn *fn, const struct esc_case *cases,
                          size_t n) {
  for (size_t i = 0; i < n; i++) {
    struct buf out;
    buf_init(&out, 0);
    cr_assert_eq(buf_puts(&out, "<"), IOCD_OK);
    cr_assert_eq(fn(&out, cases[i].in, strlen(cases[i].in)), IOCD_OK);
    cr_assert_eq(buf_puts(&out, ">"), IOCD_OK);
    char want[128];
    snprintf(want, sizeof want, "<%s>", cases[i].want);
    cr_assert_str_eq(out.data, want, "escaping [%s]", cases[i].in);
    buf_cleanup(&out);
  }
}

Test(lp_escape, measurement_escapes_comma_and_space_only) {
  static const struct esc_case cases[] = {
      {"", ""},
      {"cpu", "cpu"},
      {"m with space", "m\\ with\\ space"},
      {"m,comma", "m\\,comma"},
      {"m=eq", "m=eq"},
      {"quote\"inside", "quote\"inside"},
      {"back\\slash", "back\\slash"},
      {"bs\\,comma", "bs\\\\,comma"},
      {"Đắk Lắk", "Đắk\\ Lắk"},
      {",, ", "\\,\\,\\ "},
  };
  check_escapes(lp_escape_measurement, cases, sizeof cases / sizeof *cases);
}

Test(lp_escape, keys_and_tag_values_escape_comma_equals_space_not_backslash) {
  static const struct esc_case cases[] = {
      {"", ""},
      {"district", "district"},
      {"Ea H'Leo", "Ea\\ H'Leo"},
      {"Buôn Ma Thuột", "Buôn\\ Ma\\ Thuột"},
      {"M'Đrắk", "M'Đrắk"},
      {"Cư M'gar", "Cư\\ M'gar"},
      {"a,b=c d", "a\\,b\\=c\\ d"},
      {"quote\"inside", "quote\"inside"},
      {"back\\slash", "back\\slash"},
      {"two\\\\bs", "two\\\\bs"},
      {"bs\\,comma", "bs\\\\,comma"},
      {"bs\\ space", "bs\\\\ space"},
      {"===", "\\=\\=\\="},
  };
  check_escapes(lp_escape_key, cases, sizeof cases / sizeof *cases);
}

Test(lp_escape, strings_escape_backslash_and_quote_only) {
  static const struct esc_case cases[] = {
      {"", ""},
      {"plain text", "plain text"},
      {"a,b=c d", "a,b=c d"},
      {"quote\"inside", "quote\\\"inside"},
      {"back\\slash", "back\\\\slash"},
      {"two\\\\bs", "two\\\\\\\\bs"},
      {"\\\"", "\\\\\\\""},
      {"line\nbreak\ttab", "line\nbreak\ttab"},
      {"Buôn Ma Thuột", "Buôn Ma Thuột"},
  };
  check_escapes(lp_escape_string, cases, sizeof cases / sizeof *cases);
}

Test(lp_escape, leaves_the_buffer_unchanged_when_it_is_full) {
  struct buf out;
  buf_init(&out, 8);
  cr_assert_eq(buf_puts(&out, "abc"), IOCD_OK);
  cr_assert_eq(lp_escape_key(&out, "x y z", 5), IOCD_ETOOBIG);
  cr_assert_eq(out.len, 3);
  cr_assert_str_eq(out.data, "abc");
  buf_cleanup(&out);
}

/* ---- Encoding ---------------------------------------------------------- */

Test(lp_append, writes_measurement_tags_fields_and_timestamp) {
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = pb_point_new(&pb, "igate", 5);
  cr_assert_not_null(p);
  cr_assert_eq(pb_tag(&pb, p, "district", 8, "Ea H'Leo", 8, false), 0);
  cr_assert_eq(pb_tag(&pb, p, "empty", 5, "", 0, false), 0);
  cr_assert_eq(pb_tag(&pb, p, "site", 4, "a,b=c", 5, false), 0);
  cr_assert_eq(pb_field_float(&pb, p, "level", 5, 1.25), 0);
  cr_assert_eq(pb_field_int(&pb, p, "count", 5, -42), 0);
  cr_assert_eq(pb_field_bool(&pb, p, "ok", 2, true), 0);
  cr_assert_eq(pb_field_bool(&pb, p, "bad", 3, false), 0);
  cr_assert_eq(pb_field_string(&pb, p, "note", 4, "say \"hi\"", 8), 0);
  p->ts_ns = 1700000000000000001;
  p->has_ts = true;
  assert_encodes(&pb, p,
                 "igate,district=Ea\\ H'Leo,site=a\\,b\\=c level=1.25,"
                 "count=-42i,ok=true,bad=false,note=\"say \\\"hi\\\"\" "
                 "1700000000000000001\n");
  pb_cleanup(&pb);
}

Test(lp_append, writes_no_timestamp_when_the_point_has_none) {
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = simple_point(&pb, "m");
  assert_encodes(&pb, p, "m v=1\n");
  p->ts_ns = -5;
  p->has_ts = true;
  assert_encodes(&pb, p, "m v=1 -5\n");
  pb_cleanup(&pb);
}

Test(lp_append, writes_floats_in_the_shortest_form_that_reads_back) {
  static const struct {
    double v;
    const char *want;
  } cases[] = {
      {0.1, "0.1"},
      {1e300, "1e+300"},
      {-0.0, "-0"},
      {0.0, "0"},
      {5.0, "5"},
      {1.0 / 3.0, "0.3333333333333333"},
      {0.1 + 0.2, "0.30000000000000004"},
      {2.0 / 3.0, "0.6666666666666666"},
      {-1.5e-7, "-1.5e-07"},
      {123456789012345678.0, "1.2345678901234568e+17"},
      {5e-324, "4.94065645841247e-324"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    struct point_batch pb;
    pb_init(&pb);
    struct point *p = pb_point_new(&pb, "m", 1);
    cr_assert_eq(pb_field_float(&pb, p, "f", 1, cases[i].v), IOCD_OK);
    char want[64];
    snprintf(want, sizeof want, "m f=%s\n", cases[i].want);
    assert_encodes(&pb, p, want);
    pb_cleanup(&pb);
  }
}

Test(lp_append, writes_int64_limits_exactly) {
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = pb_point_new(&pb, "m", 1);
  cr_assert_eq(pb_field_int(&pb, p, "min", 3, INT64_MIN), 0);
  cr_assert_eq(pb_field_int(&pb, p, "max", 3, INT64_MAX), 0);
  cr_assert_eq(pb_field_int(&pb, p, "zero", 4, 0), 0);
  p->ts_ns = INT64_MIN + 2;
  p->has_ts = true;
  assert_encodes(&pb, p,
                 "m min=-9223372036854775808i,max=9223372036854775807i,"
                 "zero=0i -9223372036854775806\n");
  pb_cleanup(&pb);
}

Test(lp_append, rejects_points_influxdb_cannot_store_and_leaves_out_as_is) {
  struct point_batch pb;
  pb_init(&pb);
  static const char *const bad_measurements[] = {
      "",           "#comment", "\tlead", "new\nline", "ends\\",
      "bs\\,comma", "bs\\ sp",  "m\\=x",  "ms\\\"x"};
  for (size_t i = 0; i < sizeof bad_measurements / sizeof *bad_measurements;
       i++) {
    simple_point(&pb, bad_measurements[i]);
  }
  struct point *p = pb_point_new(&pb, "nofields", 8);
  cr_assert_not_null(p);
  p = simple_point(&pb, "m");
  cr_assert_eq(pb_field_float(&pb, p, "nan", 3, (double)NAN), 0);
  p = simple_point(&pb, "m");
  cr_assert_eq(pb_field_float(&pb, p, "inf", 3, -(double)INFINITY), 0);
  p = simple_point(&pb, "m");
  cr_assert_eq(pb_tag(&pb, p, "k", 1, "ends\\", 5, false), 0);
  p = simple_point(&pb, "m");
  cr_assert_eq(pb_tag(&pb, p, "ends\\", 5, "v", 1, false), 0);
  p = simple_point(&pb, "m");
  cr_assert_eq(pb_tag(&pb, p, "", 0, "v", 1, false), 0);
  p = simple_point(&pb, "m");
  cr_assert_eq(pb_tag(&pb, p, "k", 1, "new\nline", 8, false), 0);
  p = simple_point(&pb, "m");
  cr_assert_eq(pb_field_int(&pb, p, "", 0, 1), 0);
  p = simple_point(&pb, "m");
  cr_assert_eq(pb_field_int(&pb, p, "bs\\,comma", 9, 1), 0);
  p = simple_point(&pb, "m");
  cr_assert_eq(pb_field_int(&pb, p, "bs\\=eq", 6, 1), 0);
  p = simple_point(&pb, "m");
  cr_assert_eq(pb_field_int(&pb, p, "ends\\", 5, 1), 0);
  p = simple_point(&pb, "m");
  cr_assert_eq(pb_field_int(&pb, p, "q\\\"x", 4, 1), 0);

  struct buf out;
  buf_init(&out, 0);
  cr_assert_eq(buf_puts(&out, "kept\n"), IOCD_OK);
  for (size_t i = 0; i < pb.npoints; i++) {
    cr_assert_eq(lp_append_point(&out, &pb, &pb.points[i]), IOCD_EINVAL,
                 "point %zu", i);
    cr_assert_str_eq(out.data, "kept\n");
  }
  buf_cleanup(&out);
  pb_cleanup(&pb);
}

Test(lp_check, explains_why_a_point_cannot_be_written) {
  static const struct {
    const char *meas, *tag_key, *tag_value, *field_key;
    double value;
    const char *msg;
  } cases[] = {
      {"#x", "k", "v", "f", 1, "measurement \"#x\": starts with '#'"},
      {"", "k", "v", "f", 1, "measurement \"\": is empty"},
      {"\tm", "k", "v", "f", 1, "measurement \" m\": starts with a tab or NUL"},
      {"m\\=x", "k", "v", "f", 1,
       "measurement \"m\\=x\": has a backslash before ',', ' ', '=' or "
       "'\"'"},
      {"m", "k\\", "v", "f", 1, "tag key \"k\\\": ends in a backslash"},
      {"m", "", "v", "f", 1, "tag key \"\": is empty"},
      {"m", "k", "a\nb", "f", 1, "tag \"k\": value contains a newline"},
      {"m", "k", "", "", 1, "field key \"\": is empty"},
      {"m", "k", "v", "q\\\"x", 1,
       "field key \"q\\\"x\": has a backslash before ',', ' ', '=' or "
       "'\"'"},
      {"m", "k", "v", "f", (double)NAN, "field \"f\": NaN or infinity"},
      {"m", "k", "v", "f", (double)INFINITY, "field \"f\": NaN or infinity"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    struct point_batch pb;
    pb_init(&pb);
    struct point *p = pb_point_new(&pb, cases[i].meas, strlen(cases[i].meas));
    cr_assert_eq(pb_tag(&pb, p, cases[i].tag_key, strlen(cases[i].tag_key),
                        cases[i].tag_value, strlen(cases[i].tag_value), false),
                 0);
    cr_assert_eq(pb_field_float(&pb, p, cases[i].field_key,
                                strlen(cases[i].field_key), cases[i].value),
                 0);
    struct iocd_err err = {{0}};
    cr_assert_eq(lp_check_point(&pb, p, &err), IOCD_EINVAL, "case %zu", i);
    cr_assert_str_eq(err.msg, cases[i].msg, "case %zu", i);
    pb_cleanup(&pb);
  }
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = pb_point_new(&pb, "m", 1);
  struct iocd_err err = {{0}};
  cr_assert_eq(lp_check_point(&pb, p, &err), IOCD_EINVAL);
  cr_assert_str_eq(err.msg, "no fields");
  cr_assert_eq(pb_field_bool(&pb, p, "ok", 2, true), 0);
  cr_assert_eq(lp_check_point(&pb, p, &err), IOCD_OK);
  cr_assert_eq(lp_check_point(&pb, p, NULL), IOCD_OK);
  pb_cleanup(&pb);
}

Test(lp_append, accepts_a_field_key_with_an_inner_backslash) {
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = pb_point_new(&pb, "m", 1);
  cr_assert_eq(pb_field_int(&pb, p, "back\\slash", 10, 1), 0);
  assert_encodes(&pb, p, "m back\\slash=1i\n");
  pb_cleanup(&pb);
}

Test(lp_append, leaves_out_as_it_was_when_the_cap_is_hit) {
  struct point_batch pb;
  pb_init(&pb);
  struct point *p = simple_point(&pb, "measurement");
  cr_assert_eq(pb_field_string(&pb, p, "s", 1, "0123456789", 10), 0);
  struct buf out;
  buf_init(&out, 24);
  cr_assert_eq(buf_puts(&out, "first\n"), IOCD_OK);
  cr_assert_eq(lp_append_point(&out, &pb, p), IOCD_ETOOBIG);
  cr_assert_eq(out.len, 6);
  cr_assert_str_eq(out.data, "first\n");
  buf_cleanup(&out);
  pb_cleanup(&pb);
}

/* ---- Parsing: accepted syntax ------------------------------------------ */

Test(lp_parse, reads_measurement_tags_fields_and_timestamp) {
  struct point_batch pb;
  pb_init(&pb);
  struct iocd_err err = {{0}};
  int rc = parse(&pb,
                 "igate,district=Ea\\ H'Leo,site=a\\,b\\=c level=1.25,"
                 "count=-42i,ok=t,bad=FALSE,note=\"say \\\"hi\\\"\" "
                 "1700000000000000001",
                 1, &err);
  cr_assert_eq(rc, IOCD_OK, "%s", err.msg);
  cr_assert_eq(pb.npoints, 1);
  struct point *p = &pb.points[0];
  cr_assert(str_is(&p->measurement, "igate"));
  cr_assert_eq(p->ntags, 2);
  cr_assert(str_is(pb_tag_get(&pb, p, "district"), "Ea H'Leo"));
  cr_assert(str_is(pb_tag_get(&pb, p, "site"), "a,b=c"));
  cr_assert_eq(p->nfields, 5);
  struct field *f = pb_fields(&pb, p);
  cr_assert(str_is(&f[0].key, "level"));
  cr_assert_eq(f[0].type, FIELD_FLOAT);
  cr_assert(f[0].v.f == 1.25);
  cr_assert_eq(f[1].type, FIELD_INT);
  cr_assert_eq(f[1].v.i, -42);
  cr_assert_eq(f[2].type, FIELD_BOOL);
  cr_assert(f[2].v.b);
  cr_assert_eq(f[3].type, FIELD_BOOL);
  cr_assert_not(f[3].v.b);
  cr_assert_eq(f[4].type, FIELD_STRING);
  cr_assert(str_is(&f[4].v.s, "say \"hi\""));
  cr_assert(p->has_ts);
  cr_assert_eq(p->ts_ns, 1700000000000000001);
  pb_cleanup(&pb);
}

Test(lp_parse, reads_every_field_value_form) {
  static const struct {
    const char *value;
    enum field_type type;
    double f;
    int64_t i;
    bool b;
  } cases[] = {
      {"1", FIELD_FLOAT, 1.0, 0, false},
      {"-1", FIELD_FLOAT, -1.0, 0, false},
      {"1.5", FIELD_FLOAT, 1.5, 0, false},
      {"-1e3", FIELD_FLOAT, -1000.0, 0, false},
      {"1E+3", FIELD_FLOAT, 1000.0, 0, false},
      {"2.5e-3", FIELD_FLOAT, 0.0025, 0, false},
      {".5", FIELD_FLOAT, 0.5, 0, false},
      {"-.5", FIELD_FLOAT, -0.5, 0, false},
      {"1.", FIELD_FLOAT, 1.0, 0, false},
      {"1e-400", FIELD_FLOAT, 0.0, 0, false},
      {"0i", FIELD_INT, 0, 0, false},
      {"-0i", FIELD_INT, 0, 0, false},
      {"007i", FIELD_INT, 0, 7, false},
      {"9223372036854775807i", FIELD_INT, 0, INT64_MAX, false},
      {"-9223372036854775808i", FIELD_INT, 0, INT64_MIN, false},
      {"t", FIELD_BOOL, 0, 0, true},
      {"T", FIELD_BOOL, 0, 0, true},
      {"true", FIELD_BOOL, 0, 0, true},
      {"True", FIELD_BOOL, 0, 0, true},
      {"TRUE", FIELD_BOOL, 0, 0, true},
      {"f", FIELD_BOOL, 0, 0, false},
      {"F", FIELD_BOOL, 0, 0, false},
      {"false", FIELD_BOOL, 0, 0, false},
      {"False", FIELD_BOOL, 0, 0, false},
      {"FALSE", FIELD_BOOL, 0, 0, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    struct point_batch pb;
    pb_init(&pb);
    struct iocd_err err = {{0}};
    char line[64];
    snprintf(line, sizeof line, "m v=%s", cases[i].value);
    cr_assert_eq(parse(&pb, line, 1, &err), IOCD_OK, "%s: %s", line, err.msg);
    struct field *f = pb_fields(&pb, &pb.points[0]);
    cr_assert_eq(f->type, cases[i].type, "%s", line);
    switch (cases[i].type) {
      case FIELD_FLOAT:
        cr_assert(f->v.f == cases[i].f, "%s: %.17g", line, f->v.f);
        break;
      case FIELD_INT:
        cr_assert_eq(f->v.i, cases[i].i, "%s", line);
        break;
      default:
        cr_assert_eq(f->v.b, cases[i].b, "%s", line);
    }
    pb_cleanup(&pb);
  }
}

Test(lp_parse, reads_strings_with_escapes_commas_spaces_and_newlines) {
  static const struct {
    const char *text;
    const char *want;
  } cases[] = {
      {"m s=\"\"", ""},
      {"m s=\"a,b=c d\"", "a,b=c d"},
      {"m s=\"quote\\\"inside\"", "quote\"inside"},
      {"m s=\"back\\\\slash\"", "back\\slash"},
      {"m s=\"kept\\nliteral\"", "kept\\nliteral"},
      {"m s=\"two\nlines\"", "two\nlines"},
      {"m s=\"crlf\r\ninside\"", "crlf\r\ninside"},
      {"m s=\"Buôn Ma Thuột\"", "Buôn Ma Thuột"},
      {"m s=\"ends\\\\\"", "ends\\"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    struct point_batch pb;
    pb_init(&pb);
    struct iocd_err err = {{0}};
    cr_assert_eq(parse(&pb, cases[i].text, 1, &err), IOCD_OK, "%s: %s",
                 cases[i].text, err.msg);
    cr_assert_eq(pb.npoints, 1);
    struct field *f = pb_fields(&pb, &pb.points[0]);
    cr_assert_eq(f->type, FIELD_STRING);
    cr_assert(str_is(&f->v.s, cases[i].want), "%s", cases[i].text);
    pb_cleanup(&pb);
  }
}

Test(lp_parse, keeps_backslashes_that_escape_nothing) {
  struct point_batch pb;
  pb_init(&pb);
  struct iocd_err err = {{0}};
  cr_assert_eq(parse(&pb,
                     "back\\slash,two\\\\bs=bs\\\\\\,comma,"
                     "k\\x=v\\\\ back\\s f=1",
                     1, &err),
               IOCD_OK, "%s", err.msg);
  struct point *p = &pb.points[0];
  cr_assert(str_is(&p->measurement, "back\\slash"));
  cr_assert(str_is(pb_tag_get(&pb, p, "two\\\\bs"), "bs\\\\,comma"));
  cr_assert(str_is(pb_tag_get(&pb, p, "k\\x"), "v\\ back\\s"), "value %s",
            pb_tags(&pb, p)[1].value.p);
  pb_cleanup(&pb);
}

Test(lp_parse, reads_measurement_and_field_key_escapes_as_influxdb_does) {
  /* InfluxDB 1.6.7 stored `m\=x` as measurement `m=x`, `ms\"x` as `ms"x`
   * and field key `q\"x` as `q"x`, but kept the backslash of a tag's `\"`. */
  struct point_batch pb;
  pb_init(&pb);
  struct iocd_err err = {{0}};
  cr_assert_eq(parse(&pb, "m\\=x\\\"y,k\\\"x=v\\\"w q\\\"k=1,a\\=b=2", 1, &err),
               IOCD_OK, "%s", err.msg);
  struct point *p = &pb.points[0];
  cr_assert(str_is(&p->measurement, "m=x\"y"));
  cr_assert(str_is(pb_tag_get(&pb, p, "k\\\"x"), "v\\\"w"));
  cr_assert(str_is(&pb_fields(&pb, p)[0].key, "q\"k"));
  cr_assert(str_is(&pb_fields(&pb, p)[1].key, "a=b"));
  pb_cleanup(&pb);
}

Test(lp_parse, skips_blank_and_comment_lines_and_counts_lines) {
  struct point_batch pb;
  pb_init(&pb);
  struct iocd_err err = {{0}};
  const char *text =
      "# a comment, with = and \"\n"
      "\n"
      "   \t \n"
      "  a v=1\n"
      "\t# indented comment\n"
      "b v=2 10\n"
      "c   v=3    20   \n"
      "d v=4\n";
  cr_assert_eq(parse(&pb, text, 1, &err), IOCD_OK, "%s", err.msg);
  cr_assert_eq(pb.npoints, 4);
  cr_assert(str_is(&pb.points[0].measurement, "a"));
  cr_assert_not(pb.points[0].has_ts);
  cr_assert_eq(pb.points[1].ts_ns, 10);
  cr_assert(str_is(&pb.points[2].measurement, "c"));
  cr_assert_eq(pb.points[2].ts_ns, 20);
  cr_assert(str_is(&pb.points[3].measurement, "d"));
  pb_cleanup(&pb);
}

Test(lp_parse, applies_the_precision_multiplier_with_overflow_checks) {
  static const struct {
    const char *ts;
    int64_t mult;
    int rc;
    int64_t want;
  } cases[] = {
      {"1700000000", 1000000000, IOCD_OK, 1700000000000000000},
      {"-1700000000", 1000000000, IOCD_OK, -1700000000000000000},
      {"1700000000123", 1000000, IOCD_OK, 1700000000123000000},
      {"9223372036", 1000000000, IOCD_OK, 9223372036000000000},
      {"9223372037", 1000000000, IOCD_EPARSE, 0},
      {"-9223372037", 1000000000, IOCD_EPARSE, 0},
      {"9223372036854775806", 1, IOCD_OK, INT64_MAX - 1},
      {"9223372036854775807", 1, IOCD_EPARSE, 0},
      {"-9223372036854775806", 1, IOCD_OK, INT64_MIN + 2},
      {"-9223372036854775807", 1, IOCD_EPARSE, 0},
      {"99999999999999999999", 1, IOCD_EPARSE, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    struct point_batch pb;
    pb_init(&pb);
    struct iocd_err err = {{0}};
    char line[64];
    snprintf(line, sizeof line, "m v=1 %s", cases[i].ts);
    int rc = parse(&pb, line, cases[i].mult, &err);
    cr_assert_eq(rc, cases[i].rc, "%s: %s", line, err.msg);
    if (rc == IOCD_OK) {
      cr_assert_eq(pb.points[0].ts_ns, cases[i].want, "%s", line);
    } else {
      cr_assert_str_eq(err.msg, "line 1, column 7: timestamp out of range");
    }
    pb_cleanup(&pb);
  }
}

Test(lp_parse, rejects_a_non_positive_multiplier) {
  struct point_batch pb;
  pb_init(&pb);
  struct iocd_err err = {{0}};
  cr_assert_eq(parse(&pb, "m v=1 1", 0, &err), IOCD_EINVAL);
  cr_assert_eq(pb.npoints, 0);
  pb_cleanup(&pb);
}

/* ---- Parsing: errors --------------------------------------------------- */

Test(lp_parse, reports_line_column_and_reason) {
  static const struct {
    const char *text;
    const char *msg;
  } cases[] = {
      {",t=1 v=1", "line 1, column 1: missing measurement"},
      {"m", "line 1, column 2: missing fields"},
      {"m ", "line 1, column 3: missing fields"},
      {"m,t=1", "line 1, column 6: missing fields"},
      {"m,t=1 ", "line 1, column 7: missing fields"},
      {"m, v=1", "line 1, column 3: missing tag key"},
      {"m,=x v=1", "line 1, column 3: missing tag key"},
      {"m,t v=1", "line 1, column 4: missing '=' after tag key"},
      {"m,t= v=1", "line 1, column 5: missing tag value"},
      {"m,t=,u=1 v=1", "line 1, column 5: missing tag value"},
      {"m,t=a=b v=1", "line 1, column 6: unescaped '=' in tag value"},
      {"m,t=1,t=2 v=1", "line 1, column 7: duplicate tag \"t\""},
      {"m =1", "line 1, column 3: missing field key"},
      {"m v", "line 1, column 4: missing '=' after field key"},
      {"m v=", "line 1, column 5: missing field value"},
      {"m v= 1", "line 1, column 5: missing field value"},
      {"m v=,w=1", "line 1, column 5: missing field value"},
      {"m v=1,", "line 1, column 7: missing field key"},
      {"m v=1, w=2", "line 1, column 7: missing field key"},
      {"m v=1,v=2", "line 1, column 7: duplicate field \"v\""},
      {"m v=1x", "line 1, column 5: invalid number"},
      {"m v=1.2.3", "line 1, column 5: invalid number"},
      {"m v=-", "line 1, column 5: invalid number"},
      {"m v=.", "line 1, column 5: invalid number"},
      {"m v=1e", "line 1, column 5: invalid number"},
      {"m v=+1", "line 1, column 5: invalid field value"},
      {"m v=1e400", "line 1, column 5: float out of range"},
      {"m v=1.5i", "line 1, column 5: invalid integer"},
      {"m v=i", "line 1, column 5: invalid field value"},
      {"m v=9223372036854775808i", "line 1, column 5: integer out of range"},
      {"m v=-9223372036854775809i", "line 1, column 5: integer out of range"},
      {"m v=1u",
       "line 1, column 5: unsigned integers (u suffix) are not "
       "supported"},
      {"m v=NaN", "line 1, column 5: NaN or infinity"},
      {"m v=-inf", "line 1, column 5: NaN or infinity"},
      {"m v=Infinity", "line 1, column 5: NaN or infinity"},
      {"m v=yes", "line 1, column 5: invalid field value"},
      {"m v=tru", "line 1, column 5: invalid boolean"},
      {"m v=tRUE", "line 1, column 5: invalid boolean"},
      {"m v=\"open", "line 1, column 5: unterminated string"},
      {"m v=\"esc\\\"", "line 1, column 5: unterminated string"},
      {"m v=\"s\"x", "line 1, column 8: expected ',' or ' ' after string"},
      {"m v=1 12a", "line 1, column 7: invalid timestamp"},
      {"m v=1 1.5", "line 1, column 7: invalid timestamp"},
      {"m v=1 -", "line 1, column 7: invalid timestamp"},
      {"m v=1 1 2", "line 1, column 9: trailing characters"},
      {"m v=1\r\n",
       "line 1, column 6: \\r\\n line ending (only \\n is "
       "accepted)"},
      {"m v=1 5\r",
       "line 1, column 8: \\r\\n line ending (only \\n is "
       "accepted)"},
      {"m,t=x\r\n",
       "line 1, column 6: \\r\\n line ending (only \\n is "
       "accepted)"},
      {"\r\n",
       "line 1, column 1: \\r\\n line ending (only \\n is "
       "accepted)"},
      {"a v=1\nb v=2\n\nBuôn\\ Ma\\ Thuột v=",
       "line 4, column 19: "
       "missing field value"},
      {"a s=\"x\ny\" 1\nb v=", "line 3, column 5: missing field value"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    struct point_batch pb;
    pb_init(&pb);
    struct iocd_err err = {{0}};
    cr_assert_eq(parse(&pb, cases[i].text, 1, &err), IOCD_EPARSE,
                 "case %zu should fail", i);
    cr_assert_str_eq(err.msg, cases[i].msg, "case %zu", i);
    pb_cleanup(&pb);
  }
}

Test(lp_parse, keeps_earlier_lines_and_drops_the_bad_one) {
  struct point_batch pb;
  pb_init(&pb);
  struct iocd_err err = {{0}};
  int rc = parse(&pb, "a v=1\nb,t=x v=2\nc,t=y v=oops\nd v=4\n", 1, &err);
  cr_assert_eq(rc, IOCD_EPARSE);
  cr_assert_str_eq(err.msg, "line 3, column 9: invalid field value");
  cr_assert_eq(pb.npoints, 2);
  cr_assert_eq(pb.ntags, 1);
  cr_assert_eq(pb.nfields, 2);
  cr_assert(str_is(&pb.points[1].measurement, "b"));
  pb_cleanup(&pb);
}

Test(lp_parse, appends_to_points_already_in_the_batch) {
  struct point_batch pb;
  pb_init(&pb);
  simple_point(&pb, "before");
  struct iocd_err err = {{0}};
  cr_assert_eq(parse(&pb, "after v=2i", 1, &err), IOCD_OK);
  cr_assert_eq(pb.npoints, 2);
  cr_assert(str_is(&pb.points[0].measurement, "before"));
  cr_assert_eq(pb_fields(&pb, &pb.points[1])->v.i, 2);
  pb_cleanup(&pb);
}

Test(lp_parse, stops_at_max_points_with_a_limit_error) {
  struct point_batch pb;
  pb_init(&pb);
  pb.max_points = 2;
  struct iocd_err err = {{0}};
  int rc = parse(&pb, "a v=1\nb v=2\nc v=3\n", 1, &err);
  cr_assert_eq(rc, IOCD_ELIMIT);
  cr_assert_str_eq(err.msg, "line 3, column 1: too many points (at most 2)");
  cr_assert_eq(pb.npoints, 2);
  pb_cleanup(&pb);
}

Test(lp_parse, accepts_empty_text_and_a_null_err) {
  struct point_batch pb;
  pb_init(&pb);
  cr_assert_eq(lp_parse(&pb, NULL, 0, 1, NULL), IOCD_OK);
  cr_assert_eq(parse(&pb, "m v=", 1, NULL), IOCD_EPARSE);
  cr_assert_eq(pb.npoints, 0);
  pb_cleanup(&pb);
}

Test(lp_parse, never_reads_past_len) {
  /* Every prefix of a line full of escapes, each in a block of exactly its
   * size: ASan fails the test on any read past the end. */
  const char *line =
      "m\\ x,k\\=1=v\\,2 s=\"q\\\"\\\\\",f=1.5e3,i=-3i,b=true 123\n";
  size_t n = strlen(line);
  for (size_t cut = 0; cut <= n; cut++) {
    struct point_batch pb;
    pb_init(&pb);
    char *copy = malloc(cut ? cut : 1);
    cr_assert_not_null(copy);
    memcpy(copy, line, cut);
    struct iocd_err err = {{0}};
    int rc = lp_parse(&pb, copy, cut, 1, &err);
    cr_assert(rc == IOCD_OK || rc == IOCD_EPARSE);
    if (cut >= n - 1) {
      cr_assert_eq(rc, IOCD_OK, "cut %zu: %s", cut, err.msg);
      cr_assert_eq(pb.points[0].ts_ns, 123);
    }
    free(copy);
    pb_cleanup(&pb);
  }
}

/* ---- Round trips ------------------------------------------------------- */

static const char *const awkward[] = {
    "Ea H'Leo",    "Buôn Ma Thuột",
    "M'Đrắk",      "Cư M'gar",
    "a,b=c d",     "quote\"inside",
    "back\\slash", "two\\\\bs",
    "bs\\,comma",  "bs\\ space",
    "bs\\=eq",     " lead space",
    "trail ",      "=",
    ",",           "a  b",
    "x\\y\\z",     "tab\there",
    "\"quoted\"",  "#not a comment",
};

Test(lp_roundtrip, awkward_names_survive_encode_then_parse) {
  enum { N = sizeof awkward / sizeof *awkward };
  for (size_t i = 0; i < N; i++) {
    const char *name = awkward[i];
    size_t n = strlen(name);
    struct point_batch in;
    pb_init(&in);
    /* The name as measurement, tag key, tag value, field key (where
     * InfluxDB can read it) and string value. */
    bool bs_special = strstr(name, "\\,") || strstr(name, "\\ ") ||
                      strstr(name, "\\=") || strstr(name, "\\\"");
    bool meas_ok = name[0] != '#' && !bs_special;
    bool fkey_ok = !bs_special;
    struct point *p = pb_point_new(&in, meas_ok ? name : "m", meas_ok ? n : 1);
    cr_assert_eq(pb_tag(&in, p, name, n, "v", 1, false), 0);
    cr_assert_eq(pb_tag(&in, p, "t", 1, name, n, false), 0);
    if (fkey_ok) {
      cr_assert_eq(pb_field_bool(&in, p, name, n, true), 0);
    }
    cr_assert_eq(pb_field_string(&in, p, "s", 1, name, n), 0);
    p->has_ts = true;
    p->ts_ns = (int64_t)i;

    struct buf out;
    buf_init(&out, 0);
    cr_assert_eq(lp_append_point(&out, &in, p), IOCD_OK, "[%s]", name);
    struct point_batch back;
    pb_init(&back);
    struct iocd_err err = {{0}};
    cr_assert_eq(lp_parse(&back, out.data, out.len, 1, &err), IOCD_OK,
                 "[%s] as %s: %s", name, out.data, err.msg);
    cr_assert_eq(back.npoints, 1);
    assert_point_eq(&in, p, &back, &back.points[0], out.data);
    buf_cleanup(&out);
    pb_cleanup(&back);
    pb_cleanup(&in);
  }
}

Test(lp_roundtrip, values_survive_encode_then_parse) {
  static const double floats[] = {
      0.1,       1e300,      -0.0, 0.0,      5.0,
      1.0 / 3.0, -1.0 / 3.0, 1e-5, 2.5e-310, 1.7976931348623157e308,
      -123.456,  0.1 + 0.2,
  };
  static const int64_t ints[] = {INT64_MIN, INT64_MAX, 0, -1, 1, 1000000};
  struct point_batch in;
  pb_init(&in);
  struct point *p = pb_point_new(&in, "values", 6);
  char key[16];
  for (size_t i = 0; i < sizeof floats / sizeof *floats; i++) {
    int n = snprintf(key, sizeof key, "f%zu", i);
    cr_assert_eq(pb_field_float(&in, p, key, (size_t)n, floats[i]), 0);
  }
  for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
    int n = snprintf(key, sizeof key, "i%zu", i);
    cr_assert_eq(pb_field_int(&in, p, key, (size_t)n, ints[i]), 0);
  }
  cr_assert_eq(pb_field_bool(&in, p, "yes", 3, true), 0);
  cr_assert_eq(pb_field_bool(&in, p, "no", 2, false), 0);
  cr_assert_eq(pb_field_string(&in, p, "empty", 5, "", 0), 0);
  cr_assert_eq(pb_field_string(&in, p, "nl", 2, "a\nb\r\nc", 6), 0);
  /* A second point without timestamp, with the extreme timestamps around. */
  struct buf out;
  buf_init(&out, 0);
  p->has_ts = true;
  p->ts_ns = INT64_MIN + 2;
  cr_assert_eq(lp_append_point(&out, &in, p), IOCD_OK);
  p->ts_ns = INT64_MAX - 1;
  cr_assert_eq(lp_append_point(&out, &in, p), IOCD_OK);
  p->has_ts = false;
  cr_assert_eq(lp_append_point(&out, &in, p), IOCD_OK);

  struct point_batch back;
  pb_init(&back);
  struct iocd_err err = {{0}};
  cr_assert_eq(lp_parse(&back, out.data, out.len, 1, &err), IOCD_OK, "%s",
               err.msg);
  cr_assert_eq(back.npoints, 3);
  p->has_ts = true;
  p->ts_ns = INT64_MIN + 2;
  assert_point_eq(&in, p, &back, &back.points[0], "min ts");
  p->ts_ns = INT64_MAX - 1;
  assert_point_eq(&in, p, &back, &back.points[1], "max ts");
  p->has_ts = false;
  assert_point_eq(&in, p, &back, &back.points[2], "no ts");
  buf_cleanup(&out);
  pb_cleanup(&back);
  pb_cleanup(&in);
}

Test(lp_roundtrip, parse_then_encode_gives_canonical_text) {
  static const struct {
    const char *in;
    const char *out;
  } cases[] = {
      {"m v=1", "m v=1\n"},
      {"  m,b=2,a=1   v=1.50,w=T,x=\"y\"   7  ",
       "m,b=2,a=1 v=1.5,w=true,"
       "x=\"y\" 7\n"},
      {"m v=007i,w=-0.0", "m v=7i,w=-0\n"},
      {"m\\=x,k\\ 1=v\\=1 f\\,1=1e3", "m=x,k\\ 1=v\\=1 f\\,1=1000\n"},
      {"m\\\"x,k\\\"=v\\\" q\\\"k=1", "m\"x,k\\\"=v\\\" q\"k=1\n"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    struct point_batch pb;
    pb_init(&pb);
    struct iocd_err err = {{0}};
    cr_assert_eq(parse(&pb, cases[i].in, 1, &err), IOCD_OK, "%s", err.msg);
    struct buf out;
    buf_init(&out, 0);
    cr_assert_eq(lp_append_point(&out, &pb, &pb.points[0]), IOCD_OK);
    cr_assert_str_eq(out.data, cases[i].out);
    buf_cleanup(&out);
    pb_cleanup(&pb);
  }
}
