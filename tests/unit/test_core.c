/*
 * Tests of the small core modules every layer relies on: the bounded buffer,
 * UTF-8 validation, the metrics registry and its Prometheus text, the log
 * rate limiter, the error helpers, RFC 3339 times and numbers as people read
 * them in Vietnamese and English.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/file.h"
#include "core/log.h"
#include "core/numfmt.h"
#include "core/stats.h"
#include "core/timefmt.h"
#include "core/url.h"
#include "core/utf8.h"

/* ---- buf --------------------------------------------------------------- */

Test(buf, appends_bytes_strings_chars_and_formatted_text) {
  struct buf b;
  buf_init(&b, 0);
  cr_assert_null(b.data);
  cr_assert_eq(buf_append(&b, "ab\0c", 4), IOCD_OK);
  cr_assert_eq(buf_puts(&b, "de"), IOCD_OK);
  cr_assert_eq(buf_putc(&b, 'f'), IOCD_OK);
  cr_assert_eq(buf_printf(&b, "-%d-%s", 42, "x"), IOCD_OK);
  cr_assert_eq(b.len, 12);
  cr_assert_eq(memcmp(b.data, "ab\0cdef-42-x", 12), 0);
  cr_assert_eq(b.data[b.len], '\0');
  buf_cleanup(&b);
  cr_assert_null(b.data);
  cr_assert_eq(b.len, 0);
}

Test(buf, grows_past_its_first_allocation) {
  struct buf b;
  buf_init(&b, 0);
  for (int i = 0; i < 1000; i++) {
    cr_assert_eq(buf_printf(&b, "%04d,", i), IOCD_OK);
  }
  cr_assert_eq(b.len, 5000);
  cr_assert_eq(memcmp(b.data + 4995, "0999,", 5), 0);
  char big[300];
  memset(big, 'z', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  buf_reset(&b);
  cr_assert_eq(buf_printf(&b, "<%s>", big), IOCD_OK);
  cr_assert_eq(b.len, 301);
  cr_assert_eq(b.data[300], '>');
  buf_cleanup(&b);
}

Test(buf, refuses_to_grow_past_its_cap_and_stays_unchanged) {
  struct buf b;
  buf_init(&b, 10);
  cr_assert_eq(buf_puts(&b, "0123456"), IOCD_OK);
  cr_assert_eq(buf_puts(&b, "7890"), IOCD_ETOOBIG);
  cr_assert_eq(buf_printf(&b, "%s", "abcd"), IOCD_ETOOBIG);
  cr_assert_eq(b.len, 7);
  cr_assert_str_eq(b.data, "0123456");
  /* Exactly up to the cap is fine. */
  cr_assert_eq(buf_puts(&b, "789"), IOCD_OK);
  cr_assert_eq(b.len, 10);
  cr_assert_eq(buf_putc(&b, 'x'), IOCD_ETOOBIG);
  cr_assert_str_eq(b.data, "0123456789");
  cr_assert_eq(buf_reserve(&b, SIZE_MAX), IOCD_ETOOBIG);
  buf_cleanup(&b);
  cr_assert_eq(b.max, 10, "cleanup keeps the cap");
}

Test(buf, a_cap_of_size_max_cannot_wrap_around) {
  struct buf b;
  buf_init(&b, SIZE_MAX);
  cr_assert_eq(buf_reserve(&b, SIZE_MAX), IOCD_ETOOBIG);
  cr_assert_eq(buf_reserve(&b, SIZE_MAX / 2 + 1), IOCD_ETOOBIG);
  cr_assert_eq(buf_puts(&b, "ok"), IOCD_OK);
  cr_assert_eq(buf_reserve(&b, SIZE_MAX - 2), IOCD_ETOOBIG);
  cr_assert_str_eq(b.data, "ok");
  buf_cleanup(&b);
}

Test(buf, consume_moves_the_rest_to_the_front) {
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(buf_puts(&b, "line1\nline2\n"), IOCD_OK);
  buf_consume(&b, 6);
  cr_assert_eq(b.len, 6);
  cr_assert_str_eq(b.data, "line2\n");
  buf_consume(&b, 0);
  cr_assert_str_eq(b.data, "line2\n");
  buf_consume(&b, 6);
  cr_assert_eq(b.len, 0);
  cr_assert_str_eq(b.data, "");
  cr_assert_eq(buf_puts(&b, "again"), IOCD_OK);
  cr_assert_str_eq(b.data, "again");
  buf_cleanup(&b);
}

Test(buf, truncate_reset_and_detach) {
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(buf_puts(&b, "abcdef"), IOCD_OK);
  buf_truncate(&b, 3);
  cr_assert_str_eq(b.data, "abc");
  buf_truncate(&b, 10);
  cr_assert_eq(b.len, 3);
  char *data = b.data;
  buf_reset(&b);
  cr_assert_eq(b.len, 0);
  cr_assert_eq(b.data, data, "reset keeps the allocation");
  cr_assert_str_eq(b.data, "");
  cr_assert_eq(buf_puts(&b, "kept"), IOCD_OK);
  size_t n = 0;
  char *p = buf_detach(&b, &n);
  cr_assert_eq(n, 4);
  cr_assert_str_eq(p, "kept");
  cr_assert_null(b.data);
  cr_assert_eq(b.len, 0);
  free(p);
  cr_assert_null(buf_detach(&b, &n));
  cr_assert_eq(n, 0);
}

/* ---- utf8 -------------------------------------------------------------- */

Test(utf8, accepts_valid_text_and_finds_the_first_bad_byte) {
  static const struct {
    const char *s;
    size_t len; /* 0: strlen */
    bool valid;
    size_t bad_at;
  } cases[] = {
      {"", 0, true, 0},
      {"plain ascii", 0, true, 0},
      {"Buôn Ma Thuột", 0, true, 0},
      {"Đắk Lắk, M'Đrắk, Cư M'gar, Ea H'Leo", 0, true, 0},
      {"\xF0\x9F\x98\x80 emoji", 0, true, 0},
      {"\xF4\x8F\xBF\xBF", 0, true, 0},     /* U+10FFFF */
      {"\xEF\xBF\xBF", 0, true, 0},         /* U+FFFF */
      {"a\0b", 3, true, 0},                 /* NUL is a character */
      {"\xF4\x90\x80\x80", 0, false, 0},    /* U+110000 */
      {"ok \xF5\x80\x80\x80", 0, false, 3}, /* no 4-byte lead > F4 */
      {"\xC0\x80", 0, false, 0},            /* overlong NUL */
      {"x\xC1\xBF", 0, false, 1},           /* overlong 0x7F */
      {"\xE0\x80\xAF", 0, false, 0},        /* overlong 3-byte */
      {"\xF0\x8F\xBF\xBF", 0, false, 0},    /* overlong 4-byte */
      {"ab\xED\xA0\x80", 0, false, 2},      /* U+D800 */
      {"\xED\xBF\xBF", 0, false, 0},        /* U+DFFF */
      {"\xED\x9F\xBF", 0, true, 0},         /* U+D7FF */
      {"ab\xC3", 0, false, 2},              /* truncated 2-byte */
      {"\xE1\x80", 0, false, 0},            /* truncated 3-byte */
      {"x\xF0\x9F\x98", 0, false, 1},       /* truncated 4-byte */
      {"\xC3(", 0, false, 0},               /* bad continuation */
      {"Thu\xE1\xBB(t", 0, false, 3},       /* bad 3rd byte */
      {"\x80", 0, false, 0},                /* lone continuation */
      {"\xC3\xA9\xBF", 0, false, 2},        /* é then stray byte */
      {"ok\xFF", 0, false, 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    size_t len = cases[i].len ? cases[i].len : strlen(cases[i].s);
    size_t bad = SIZE_MAX;
    bool ok = utf8_valid(cases[i].s, len, &bad);
    cr_assert_eq(ok, cases[i].valid, "case %zu", i);
    if (!ok) {
      cr_assert_eq(bad, cases[i].bad_at, "case %zu: bad at %zu", i, bad);
    }
  }
  cr_assert_not(utf8_valid("\xC3", 1, NULL));
}

Test(utf8, never_reads_past_len) {
  /* A valid 3-byte sequence cut short by len must be invalid even though
   * the bytes after len would complete it. */
  const char *s = "\xE1\xBB\x99";
  char *copy = malloc(2);
  cr_assert_not_null(copy);
  memcpy(copy, s, 2);
  size_t bad = SIZE_MAX;
  cr_assert_not(utf8_valid(copy, 2, &bad));
  cr_assert_eq(bad, 0);
  cr_assert(utf8_valid(s, 3, NULL));
  free(copy);
}

/* ---- stats ------------------------------------------------------------- */

static void assert_render(struct stats *s, const char *want) {
  struct buf out;
  buf_init(&out, 0);
  cr_assert_eq(stats_render_prometheus(s, &out), IOCD_OK);
  cr_assert_str_eq(out.data ? out.data : "", want);
  buf_cleanup(&out);
}

Test(stats, same_name_and_labels_give_the_same_series) {
  struct stats *s = stats_new();
  cr_assert_not_null(s);
  struct metric *a = stats_counter(s, "iocd_messages_total", "Messages.",
                                   "subscription", "igate", NULL);
  struct metric *b = stats_counter(s, "iocd_messages_total", "Messages.",
                                   "subscription", "igate", NULL);
  struct metric *c = stats_counter(s, "iocd_messages_total", "Messages.",
                                   "subscription", "other", NULL);
  struct metric *d = stats_counter(s, "iocd_messages_total", "Messages.", NULL);
  cr_assert_eq(a, b);
  cr_assert_neq(a, c);
  cr_assert_neq(a, d);
  stat_inc(a);
  stat_add(b, 4);
  cr_assert_eq(a->count, 5);
  cr_assert_eq(
      stats_find(s, "iocd_messages_total", "subscription", "igate", NULL), a);
  cr_assert_null(
      stats_find(s, "iocd_messages_total", "subscription", "x", NULL));
  cr_assert_null(stats_find(s, "no_such_total", NULL));
  stats_free(s);
}

Test(stats, renders_counters_and_gauges_in_prometheus_text) {
  struct stats *s = stats_new();
  struct metric *m =
      stats_counter(s, "iocd_messages_total", "Messages received.",
                    "subscription", "igate", "district", "Ea H'Leo", NULL);
  stat_add(m, 3);
  stats_counter(s, "iocd_messages_total", "Messages received.", "subscription",
                "say \"hi\"\\now\nthen", NULL);
  stat_set(stats_gauge(s, "iocd_queue_bytes", "Queued bytes.", NULL), 2.5);
  stat_set(stats_gauge(s, "iocd_temp", "T.", "room", "a", NULL), -1);
  assert_render(s,
                "# HELP iocd_messages_total Messages received.\n"
                "# TYPE iocd_messages_total counter\n"
                "iocd_messages_total{subscription=\"igate\","
                "district=\"Ea H'Leo\"} 3\n"
                "iocd_messages_total{subscription="
                "\"say \\\"hi\\\"\\\\now\\nthen\"} 0\n"
                "# HELP iocd_queue_bytes Queued bytes.\n"
                "# TYPE iocd_queue_bytes gauge\n"
                "iocd_queue_bytes 2.5\n"
                "# HELP iocd_temp T.\n"
                "# TYPE iocd_temp gauge\n"
                "iocd_temp{room=\"a\"} -1\n");
  stats_free(s);
}

Test(stats, escapes_backslash_and_newline_in_help) {
  struct stats *s = stats_new();
  stats_counter(s, "x_total", "Line one\nback\\slash.", NULL);
  assert_render(s,
                "# HELP x_total Line one\\nback\\\\slash.\n"
                "# TYPE x_total counter\n"
                "x_total 0\n");
  stats_free(s);
}

Test(stats, renders_histograms_with_cumulative_buckets) {
  struct stats *s = stats_new();
  static const double bounds[] = {0.25, 1, 10};
  struct metric *h = stats_histogram(s, "iocd_write_seconds", "Write time.",
                                     bounds, 3, "db", "iot", NULL);
  stat_observe(h, 0.0625);
  stat_observe(h, 0.25); /* on a bound: counts in that bucket */
  stat_observe(h, 5);
  stat_observe(h, 50);
  cr_assert_eq(h->count, 4);
  assert_render(s,
                "# HELP iocd_write_seconds Write time.\n"
                "# TYPE iocd_write_seconds histogram\n"
                "iocd_write_seconds_bucket{db=\"iot\",le=\"0.25\"} 2\n"
                "iocd_write_seconds_bucket{db=\"iot\",le=\"1\"} 2\n"
                "iocd_write_seconds_bucket{db=\"iot\",le=\"10\"} 3\n"
                "iocd_write_seconds_bucket{db=\"iot\",le=\"+Inf\"} 4\n"
                "iocd_write_seconds_sum{db=\"iot\"} 55.3125\n"
                "iocd_write_seconds_count{db=\"iot\"} 4\n");
  stats_free(s);
}

Test(stats, histogram_bucket_labels_keep_the_exact_bound) {
  struct stats *s = stats_new();
  static const double bounds[] = {0.1, 2.5e-7, 1234567, 1e21};
  stats_histogram(s, "h", "H.", bounds, 4, NULL);
  assert_render(s,
                "# HELP h H.\n"
                "# TYPE h histogram\n"
                "h_bucket{le=\"0.1\"} 0\n"
                "h_bucket{le=\"2.5e-07\"} 0\n"
                "h_bucket{le=\"1234567\"} 0\n"
                "h_bucket{le=\"1e+21\"} 0\n"
                "h_bucket{le=\"+Inf\"} 0\n"
                "h_sum 0\n"
                "h_count 0\n");
  stats_free(s);
}

Test(stats, histogram_without_labels_renders_only_le) {
  struct stats *s = stats_new();
  static const double bounds[] = {1};
  stat_observe(stats_histogram(s, "h", "H.", bounds, 1, NULL), 0.5);
  assert_render(s,
                "# HELP h H.\n"
                "# TYPE h histogram\n"
                "h_bucket{le=\"1\"} 1\n"
                "h_bucket{le=\"+Inf\"} 1\n"
                "h_sum 0.5\n"
                "h_count 1\n");
  stats_free(s);
}

Test(stats, sums_series_matching_label_filters) {
  struct stats *s = stats_new();
  const char *name = "iocd_points_total";
  stat_add(stats_counter(s, name, "P.", "sub", "a", "status", "ok", NULL), 1);
  stat_add(stats_counter(s, name, "P.", "sub", "a", "status", "bad", NULL), 10);
  stat_add(stats_counter(s, name, "P.", "sub", "b", "status", "ok", NULL), 100);
  stat_add(stats_counter(s, name, "P.", "sub", "x,y", "status", "ok", NULL),
           1000);
  stat_add(stats_counter(s, name, "P.", "sub", "x", NULL), 10000);
  cr_assert_eq(stats_sum(s, name, NULL), 11111);
  cr_assert_eq(stats_sum(s, name, "sub", "a", NULL), 11);
  cr_assert_eq(stats_sum(s, name, "status", "ok", NULL), 1101);
  cr_assert_eq(stats_sum(s, name, "sub", "a", "status", "ok", NULL), 1);
  cr_assert_eq(stats_sum(s, name, "status", "ok", "sub", "b", NULL), 100);
  cr_assert_eq(stats_sum(s, name, "sub", "x,y", NULL), 1000);
  cr_assert_eq(stats_sum(s, name, "sub", "x", NULL), 10000);
  cr_assert_eq(stats_sum(s, name, "sub", "c", NULL), 0);
  cr_assert_eq(stats_sum(s, "no_such_total", NULL), 0);
  stats_free(s);
}

Test(stats, sums_gauges_truncated_and_never_below_zero) {
  struct stats *s = stats_new();
  stat_set(stats_gauge(s, "g", "G.", "k", "a", NULL), 2.9);
  stat_set(stats_gauge(s, "g", "G.", "k", "b", NULL), 4.0);
  cr_assert_eq(stats_sum(s, "g", NULL), 6);
  cr_assert_eq(stats_sum(s, "g", "k", "a", NULL), 2);
  stat_set(stats_gauge(s, "neg", "N.", NULL), -3.5);
  cr_assert_eq(stats_sum(s, "neg", NULL), 0);
  stats_free(s);
}

Test(stats, summary_lists_only_nonzero_counters_and_gauges) {
  struct stats *s = stats_new();
  stats_counter(s, "zero_total", "Z.", NULL);
  stat_add(stats_counter(s, "msgs_total", "M.", "sub", "a", NULL), 7);
  stat_set(stats_gauge(s, "depth", "D.", NULL), 1.5);
  static const double bounds[] = {1};
  stat_observe(stats_histogram(s, "h", "H.", bounds, 1, NULL), 0.5);
  struct buf out;
  buf_init(&out, 0);
  cr_assert_eq(stats_render_summary(s, &out), IOCD_OK);
  cr_assert_str_eq(out.data, "msgs_total{sub=\"a\"}=7 depth=1.5");
  buf_cleanup(&out);
  stats_free(s);
}

/* ---- log_limit --------------------------------------------------------- */

Test(log_limit, allows_a_burst_per_window_and_reports_the_suppressed) {
  struct log_limit l = {0};
  uint32_t sup = 99;
  for (int i = 0; i < 3; i++) {
    cr_assert(log_limit_allow(&l, 1000 + i, 3, 1000, &sup), "line %d", i);
    cr_assert_eq(sup, 0);
  }
  for (int i = 0; i < 5; i++) {
    sup = 99;
    cr_assert_not(log_limit_allow(&l, 1500, 3, 1000, &sup));
    cr_assert_eq(sup, 99, "a refused line does not report");
  }
  cr_assert_not(log_limit_allow(&l, 1999, 3, 1000, &sup));
  cr_assert(log_limit_allow(&l, 2000, 3, 1000, &sup));
  cr_assert_eq(sup, 6);
  cr_assert(log_limit_allow(&l, 2001, 3, 1000, &sup));
  cr_assert_eq(sup, 0, "the count is reported once");
  cr_assert(log_limit_allow(&l, 2002, 3, 1000, NULL));
  cr_assert_not(log_limit_allow(&l, 2003, 3, 1000, NULL));
}

Test(log_limit, starts_a_new_window_when_the_clock_goes_back) {
  struct log_limit l = {0};
  uint32_t sup = 0;
  cr_assert(log_limit_allow(&l, 5000, 1, 1000, &sup));
  cr_assert_not(log_limit_allow(&l, 5001, 1, 1000, &sup));
  cr_assert(log_limit_allow(&l, 100, 1, 1000, &sup));
  cr_assert_eq(sup, 1);
}

Test(log, parses_level_names) {
  static const struct {
    const char *s;
    int rc;
    enum log_level want;
  } cases[] = {
      {"error", IOCD_OK, LOG_ERROR}, {"warn", IOCD_OK, LOG_WARN},
      {"info", IOCD_OK, LOG_INFO},   {"debug", IOCD_OK, LOG_DEBUG},
      {"INFO", IOCD_EINVAL, 0},      {"", IOCD_EINVAL, 0},
      {"warning", IOCD_EINVAL, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    enum log_level got = LOG_DEBUG;
    cr_assert_eq(log_level_parse(cases[i].s, &got), cases[i].rc, "%s",
                 cases[i].s);
    if (cases[i].rc == IOCD_OK) {
      cr_assert_eq(got, cases[i].want, "%s", cases[i].s);
    }
  }
}

/* ---- err --------------------------------------------------------------- */

Test(err, names_every_code) {
  cr_assert_str_eq(iocd_strerror(IOCD_OK), "success");
  cr_assert_str_eq(iocd_strerror(IOCD_ENOMEM), "out of memory");
  cr_assert_str_eq(iocd_strerror(IOCD_EPARSE), "parse error");
  cr_assert_str_eq(iocd_strerror(IOCD_ETOOBIG), "too big");
  cr_assert_str_eq(iocd_strerror(IOCD_ESTATE), "wrong state");
  cr_assert_str_eq(iocd_strerror(1), "unknown error");
  cr_assert_str_eq(iocd_strerror(-1000), "unknown error");
  for (int rc = IOCD_ESTATE; rc <= IOCD_OK; rc++) {
    cr_assert_str_neq(iocd_strerror(rc), "unknown error", "code %d", rc);
  }
}

Test(err, set_formats_the_message_and_returns_the_code) {
  struct iocd_err e = {{0}};
  cr_assert_eq(
      iocd_err_set(&e, IOCD_EPARSE, "%s:%d: bad %s", "f.jsonc", 17, "value"),
      IOCD_EPARSE);
  cr_assert_str_eq(e.msg, "f.jsonc:17: bad value");
  cr_assert_eq(iocd_err_set(NULL, IOCD_EIO, "ignored"), IOCD_EIO);
  char long_text[600];
  memset(long_text, 'x', sizeof long_text - 1);
  long_text[sizeof long_text - 1] = '\0';
  iocd_err_set(&e, IOCD_EINVAL, "%s", long_text);
  cr_assert_eq(strlen(e.msg), IOCD_ERR_SIZE - 1);
}

Test(err, prefix_prepends_where) {
  struct iocd_err e = {{0}};
  iocd_err_set(&e, IOCD_EPARSE, "expected a number");
  iocd_err_prefix(&e, "iocd.jsonc:%d:%d", 17, 9);
  cr_assert_str_eq(e.msg, "iocd.jsonc:17:9: expected a number");
  iocd_err_prefix(NULL, "nothing");
  char long_text[300];
  memset(long_text, 'p', sizeof long_text - 1);
  long_text[sizeof long_text - 1] = '\0';
  iocd_err_prefix(&e, "%s", long_text);
  cr_assert_eq(strlen(e.msg), IOCD_ERR_SIZE - 1);
  cr_assert_eq(e.msg[0], 'p');
}

/* A fresh directory under /tmp for one test. */
static void temp_dir(char *out, size_t n) {
  snprintf(out, n, "/tmp/iocd-core-XXXXXX");
  cr_assert_not_null(mkdtemp(out));
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    return NULL;
  }
  static char text[256];
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  return text;
}

Test(file, write_atomic_replaces_the_content_and_leaves_no_temporary) {
  char dir[64], path[128], tmp[160];
  temp_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/state.json", dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  cr_assert_eq(file_write_atomic(path, "old\n", 4, true), 0);
  cr_assert_eq(file_write_atomic(path, "new\n", 4, true), 0);
  cr_expect_str_eq(slurp(path), "new\n");
  cr_expect_neq(access(tmp, F_OK), 0, "the temporary file was left behind");
  unlink(path);
  rmdir(dir);
}

Test(file, a_failed_write_leaves_the_old_content) {
  char dir[64], path[128];
  temp_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/state.json", dir);
  cr_assert_eq(file_write_atomic(path, "old\n", 4, false), 0);
  /* The temporary file cannot be created where a directory stands. */
  char tmp[160];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  cr_assert_eq(mkdir(tmp, 0755), 0);
  cr_expect_eq(file_write_atomic(path, "new\n", 4, true), EISDIR);
  cr_expect_str_eq(slurp(path), "old\n");
  rmdir(tmp);
  unlink(path);
  rmdir(dir);
}

Test(file, mkdirs_creates_parents_and_refuses_a_file_in_the_way) {
  char dir[64], deep[160], file[160];
  temp_dir(dir, sizeof dir);
  snprintf(deep, sizeof deep, "%s/a/b/c", dir);
  cr_expect_eq(file_mkdirs(deep), 0);
  struct stat sb;
  cr_expect(stat(deep, &sb) == 0 && S_ISDIR(sb.st_mode));
  cr_expect_eq(file_mkdirs(deep), 0, "an existing directory is not an error");
  snprintf(file, sizeof file, "%s/f", dir);
  cr_assert_eq(file_write_atomic(file, "x", 1, false), 0);
  cr_expect_eq(file_mkdirs(file), ENOTDIR);
  char below[200];
  snprintf(below, sizeof below, "%s/g", file);
  cr_expect_eq(file_mkdirs(below), ENOTDIR);
  unlink(file);
  rmdir(deep);
  snprintf(deep, sizeof deep, "%s/a/b", dir);
  rmdir(deep);
  snprintf(deep, sizeof deep, "%s/a", dir);
  rmdir(deep);
  rmdir(dir);
}

/* "Buôn Ma Thuột" precomposed (NFC) and with combining marks (NFD). */
#define BMT_NFC "Bu\xC3\xB4n Ma Thu\xE1\xBB\x99t"
#define BMT_NFD "Buo\xCC\x82n Ma Thuo\xCC\xA3\xCC\x82t"

Test(utf8, nfc_composes_decomposed_names_and_leaves_composed_ones) {
  static const struct {
    const char *in, *want; /* want NULL: already NFC */
  } cases[] = {
      {"igate", NULL},
      {BMT_NFC, NULL},
      {"M'\xC4\x90r\xE1\xBA\xAFk", NULL}, /* M'Đrắk */
      {"\xE2\x84\xAB", "\xC3\x85"},       /* Angstrom sign -> Å */
      {BMT_NFD, BMT_NFC},
      {"La\xCC\x86\xCC\x81k",
       "L\xE1\xBA\xAF"
       "k"}, /* Lắk: a, breve, acute */
      {"e\xCC\x81", "\xC3\xA9"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *out = NULL;
    size_t n = 0;
    cr_assert_eq(utf8_nfc(cases[i].in, strlen(cases[i].in), &out, &n), IOCD_OK);
    if (!cases[i].want) {
      cr_expect_null(out, "case %zu: changed an NFC string", i);
      cr_expect_eq(n, strlen(cases[i].in));
    } else {
      cr_assert_not_null(out, "case %zu: not normalized", i);
      cr_expect_str_eq(out, cases[i].want, "case %zu", i);
      cr_expect_eq(n, strlen(cases[i].want));
    }
    free(out);
  }
}

Test(utf8, fold_ignores_diacritics_case_and_apostrophe_style) {
  static const struct {
    const char *a, *b;
    bool same;
  } cases[] = {
      {BMT_NFC, "Buon Ma Thuot", true},
      {BMT_NFD, "buon ma thuot", true},
      {"\xC4\x90\xE1\xBA\xAF"
       "k R'L\xE1\xBA\xA5p",
       "Dak R'Lap", true},
      {"Ea H'Leo", "Ea H\xE2\x80\x99Leo", true}, /* ’ */
      {"Ea H'Leo", "Ea Kar", false},
      {"Kr\xC3\xB4ng B\xC3\xBA"
       "k",
       "Krong Bong", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *fa = utf8_fold(cases[i].a), *fb = utf8_fold(cases[i].b);
    cr_assert(fa && fb);
    cr_expect_eq(strcmp(fa, fb) == 0, cases[i].same, "case %zu: %s vs %s", i,
                 fa, fb);
    free(fa);
    free(fb);
  }
}

Test(timefmt, writes_rfc3339_in_the_offset_asked_with_the_digits_asked) {
  static const struct {
    int64_t ns;
    int32_t off;
    int digits;
    const char *want;
  } cases[] = {
      {0, 0, -1, "1970-01-01T00:00:00Z"},
      {0, 0, 3, "1970-01-01T00:00:00.000Z"},
      {1606780800123456789, 0, -1, "2020-12-01T00:00:00.123456789Z"},
      {1606780800120000000, 0, -1, "2020-12-01T00:00:00.12Z"},
      {1606780800123456789, 25200, 3, "2020-12-01T07:00:00.123+07:00"},
      {1606780800123456789, 25200, 0, "2020-12-01T07:00:00+07:00"},
      {1606780799000000000, 25200, 0, "2020-12-01T06:59:59+07:00"},
      {1606780800000000000, -12600, 0, "2020-11-30T20:30:00-03:30"},
      {-1, 0, -1, "1969-12-31T23:59:59.999999999Z"},
      {-1, 0, 0, "1969-12-31T23:59:59Z"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char out[48];
    time_format_rfc3339(cases[i].ns, cases[i].off, cases[i].digits, out,
                        sizeof out);
    cr_expect_str_eq(out, cases[i].want, "case %zu", i);
    if (cases[i].digits != 0) {
      int64_t back = 0;
      cr_expect_eq(time_parse_rfc3339(out, strlen(out), &back, NULL), 0);
      if (cases[i].digits < 0) {
        cr_expect_eq(back, cases[i].ns, "%s reads back", out);
      }
    }
  }
}

Test(timefmt, civil_days_round_trip_across_leap_years) {
  for (int64_t z = -800000; z <= 800000; z += 97) {
    int64_t y;
    unsigned m, d;
    time_civil_from_days(z, &y, &m, &d);
    cr_assert_eq(time_days_from_civil(y, m, d), z);
  }
  cr_expect_eq(time_days_from_civil(2024, 2, 29), 19782);
  cr_expect_eq(time_days_from_civil(2026, 2, 17), 20501);
}

/* ---- numfmt ------------------------------------------------------------ */

/* v written by fn in lang, as a string the caller frees. */
static char *numfmt_text(int (*fn)(double, enum numfmt_lang, struct buf *),
                         double v, enum numfmt_lang lang) {
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(fn(v, lang, &b), IOCD_OK);
  cr_assert_not_null(b.data);
  return b.data;
}

Test(numfmt, writes_numbers_as_vietnamese_and_english_read_them) {
  static const struct {
    double v;
    const char *vi, *en;
  } cases[] = {
      {0, "0", "0"},
      {-0.0, "0", "0"},
      {12, "12", "12"},
      {-5, "-5", "-5"},
      {999, "999", "999"},
      {1000, "1.000", "1,000"},
      {1410312, "1.410.312", "1,410,312"},
      {-1410312, "-1.410.312", "-1,410,312"},
      {221942, "221.942", "221,942"},
      {1410312.5, "1.410.312,5", "1,410,312.5"},
      {10.61, "10,61", "10.61"},
      {3.14159, "3,14", "3.14"},
      {2.345, "2,35", "2.35"}, /* half away from zero, as written */
      {-2.345, "-2,35", "-2.35"},
      {0.999, "1", "1"},           /* rounds up into the integer part */
      {999.999, "1.000", "1,000"}, /* and the carry makes a new group */
      {-0.001, "-0,001", "-0.001"},
      {-0.0001, "-0,0001", "-0.0001"},
      {0.1061, "0,11", "0.11"},
      {0.00123, "0,00123", "0.00123"},
      {0.0012345, "0,00123", "0.00123"},
      {1e15, "1.000.000.000.000.000", "1,000,000,000,000,000"},
      {1.5e21, "1,5e+21", "1.5e+21"},
      {1e-9, "1e-09", "1e-09"},
      {(double)NAN, "NaN", "NaN"},
      {(double)INFINITY, "+Inf", "+Inf"},
      {-(double)INFINITY, "-Inf", "-Inf"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *vi = numfmt_text(numfmt_number, cases[i].v, NUMFMT_VI);
    char *en = numfmt_text(numfmt_number, cases[i].v, NUMFMT_EN);
    cr_expect_str_eq(vi, cases[i].vi, "case %zu (%g) vi", i, cases[i].v);
    cr_expect_str_eq(en, cases[i].en, "case %zu (%g) en", i, cases[i].v);
    free(vi);
    free(en);
  }
}

Test(numfmt, writes_ratios_as_percentages_with_two_decimals_at_most) {
  static const struct {
    double v;
    const char *vi, *en;
  } cases[] = {
      {0.1061, "10,61%", "10.61%"}, /* the seed's level-3 share */
      {0.3, "30%", "30%"},
      {0.283, "28,3%", "28.3%"},
      {0.2834, "28,34%", "28.34%"},
      {595.0 / 1626, "36,59%", "36.59%"},
      {0.89, "89%", "89%"},
      {1, "100%", "100%"},
      {0, "0%", "0%"},
      {-0.05, "-5%", "-5%"},
      {12.5, "1.250%", "1,250%"},
      {14103.12, "1.410.312%", "1,410,312%"},
      {0.00001, "0,001%", "0.001%"},
      {(double)NAN, "NaN", "NaN"},
      {(double)INFINITY, "+Inf", "+Inf"},
      {-(double)INFINITY, "-Inf", "-Inf"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *vi = numfmt_text(numfmt_pct, cases[i].v, NUMFMT_VI);
    char *en = numfmt_text(numfmt_pct, cases[i].v, NUMFMT_EN);
    cr_expect_str_eq(vi, cases[i].vi, "case %zu (%g) vi", i, cases[i].v);
    cr_expect_str_eq(en, cases[i].en, "case %zu (%g) en", i, cases[i].v);
    free(vi);
    free(en);
  }
}

Test(numfmt, appends_after_what_the_buffer_holds_and_reports_a_full_one) {
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(buf_puts(&b, "Tỷ lệ "), IOCD_OK);
  cr_assert_eq(numfmt_pct(0.1061, NUMFMT_VI, &b), IOCD_OK);
  cr_assert_eq(buf_puts(&b, ", "), IOCD_OK);
  cr_assert_eq(numfmt_number(1410312, NUMFMT_VI, &b), IOCD_OK);
  cr_expect_str_eq(b.data, "Tỷ lệ 10,61%, 1.410.312");
  buf_cleanup(&b);
  buf_init(&b, 4);
  cr_expect_eq(numfmt_number(1410312, NUMFMT_EN, &b), IOCD_ETOOBIG);
  cr_expect_eq(numfmt_pct(12.5, NUMFMT_EN, &b), IOCD_ETOOBIG);
  buf_cleanup(&b);
}

Test(file, a_secret_loses_one_trailing_newline_and_nothing_else) {
  static const struct {
    const char *s;
    size_t want;
  } cases[] = {
      {"tok", 3},     {"tok\n", 3}, {"tok\r\n", 3}, {"tok\n\n", 4},
      {" tok \n", 5}, {"tok\t", 4}, {"\n", 0},      {"", 0},
      {"a\nb\n", 3},  {"tok\r", 4},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_expect_eq(file_secret_len(cases[i].s, strlen(cases[i].s)), cases[i].want,
                 "case %zu", i);
  }
}

Test(url, origin_drops_credentials_path_query_and_fragment) {
  static const struct {
    const char *url, *want;
  } cases[] = {
      {"http://127.0.0.1:8086", "http://127.0.0.1:8086"},
      {"https://user:pw@influx.example:8086/write?db=x&p=pw",
       "https://influx.example:8086"},
      {"http://a@b@host/x", "http://host"},
      {"http://host?token=abc", "http://host"},
      {"http://host#frag", "http://host"},
      {"[::1]:8086", ""},
      {"", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char o[128];
    url_origin(cases[i].url, o, sizeof o);
    cr_expect_str_eq(o, cases[i].want, "case %zu", i);
  }
}
