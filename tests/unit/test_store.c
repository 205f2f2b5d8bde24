/*
 * Tests of the store's pure parts: Retry-After parsing, backoff bounds and
 * jitter, the retry policy table, batch sealing by points, bytes and age in
 * the memory queue, the outbox's ordering and splitting, the InfluxDB URLs
 * with their escaping, gzip bodies, and error texts of answers. The loop
 * and the servers are in tests/integration/test_store_influx.c.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/curl_loop.h"
#include "core/err.h"
#include "store/store_int.h"

/* ---- Retry-After ------------------------------------------------------- */

/* 2015-10-21T07:28:00Z */
#define OCT21 INT64_C(1445412480)

Test(store_retry_after, reads_delta_seconds_and_all_three_http_dates) {
  static const struct {
    const char *value;
    int64_t now_s;
    int64_t want_ms;
  } cases[] = {
      {"120", OCT21, 120000},
      {"0", OCT21, 0},
      {" 5 ", OCT21, 5000},
      {"7\r\n", OCT21, 7000},
      {"Wed, 21 Oct 2015 07:28:00 GMT", OCT21 - 30, 30000},
      {"Wednesday, 21-Oct-15 07:28:00 GMT", OCT21 - 2, 2000},
      {"Wed Oct 21 07:28:00 2015", OCT21 - 90, 90000},
      /* A date already past means "now". */
      {"Wed, 21 Oct 2015 07:28:00 GMT", OCT21 + 100, 0},
      /* Absurd values are capped. */
      {"99999999999999999999999", OCT21, STORE_RETRY_AFTER_CAP_MS},
      {"86400", OCT21, STORE_RETRY_AFTER_CAP_MS},
      {"Wed, 21 Oct 2099 07:28:00 GMT", OCT21, STORE_RETRY_AFTER_CAP_MS},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int64_t got = -1;
    int rc = curl_retry_after_parse(cases[i].value, cases[i].now_s,
                                    STORE_RETRY_AFTER_CAP_MS, &got);
    cr_assert_eq(rc, IOCD_OK, "\"%s\": rc %d", cases[i].value, rc);
    cr_assert_eq(got, cases[i].want_ms, "\"%s\": %lld ms, want %lld",
                 cases[i].value, (long long)got, (long long)cases[i].want_ms);
  }
}

Test(store_retry_after, rejects_what_is_neither_seconds_nor_a_date) {
  static const char *const bad[] = {"", "   ", "soon", "12abc", "-5", "1.5"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t got = -1;
    cr_assert_eq(
        curl_retry_after_parse(bad[i], OCT21, STORE_RETRY_AFTER_CAP_MS, &got),
        IOCD_EPARSE, "\"%s\" was accepted as %lld ms", bad[i], (long long)got);
  }
}

/* ---- Backoff ----------------------------------------------------------- */

Test(store_backoff, stays_between_min_and_the_doubling_ceiling) {
  uint64_t rng = 42;
  for (unsigned attempt = 0; attempt < 40; attempt++) {
    int64_t ceiling = 500;
    for (unsigned i = 0; i < attempt && ceiling < 60000; i++) {
      ceiling *= 2;
    }
    if (ceiling > 60000) {
      ceiling = 60000;
    }
    for (int k = 0; k < 2000; k++) {
      int64_t d = store__backoff_ms(500, 60000, attempt, store__rand(&rng));
      cr_assert(d >= 500 && d <= ceiling,
                "attempt %u: %lld ms outside [500, %lld]", attempt,
                (long long)d, (long long)ceiling);
    }
  }
}

Test(store_backoff, first_retry_waits_exactly_the_minimum) {
  uint64_t rng = 7;
  for (int k = 0; k < 100; k++) {
    cr_assert_eq(store__backoff_ms(250, 10000, 0, store__rand(&rng)), 250);
  }
}

Test(store_backoff, jitter_spreads_over_the_whole_range) {
  /* Full jitter: draws must land near both ends and in every tenth of the
   * range, not cluster at one value. */
  uint64_t rng = 12345;
  int64_t lo = INT64_MAX, hi = 0;
  int deciles[10] = {0};
  for (int k = 0; k < 20000; k++) {
    int64_t d = store__backoff_ms(1000, 8000, 3, store__rand(&rng));
    lo = d < lo ? d : lo;
    hi = d > hi ? d : hi;
    deciles[(d - 1000) * 10 / 7001]++;
  }
  cr_assert_lt(lo, 1100, "lowest draw %lld", (long long)lo);
  cr_assert_gt(hi, 7900, "highest draw %lld", (long long)hi);
  for (int i = 0; i < 10; i++) {
    cr_assert_gt(deciles[i], 1500, "decile %d has %d of 20000", i, deciles[i]);
  }
}

Test(store_backoff, the_random_value_picks_the_point_in_the_range) {
  cr_assert_eq(store__backoff_ms(100, 1000, 2, 0), 100);
  cr_assert_eq(store__backoff_ms(100, 1000, 2, 300), 400);
  cr_assert_eq(store__backoff_ms(100, 1000, 2, 301), 100);
  /* Huge attempt counts neither overflow nor pass the maximum. */
  cr_assert_eq(store__backoff_ms(100, 1000, 4000000000u, 900), 1000);
}

/* ---- Retry policy ------------------------------------------------------ */

Test(store_policy, maps_each_answer_to_its_action) {
  static const struct {
    long status;
    bool ok;
    size_t nlines;
    enum write_action want;
    const char *cls;
  } cases[] = {
      {204, true, 10, ACT_WRITTEN, "2xx"},
      {200, true, 1, ACT_WRITTEN, "2xx"},
      {0, false, 10, ACT_RETRY, "network"},
      {500, true, 10, ACT_RETRY, "5xx"},
      {503, true, 1, ACT_RETRY, "5xx"},
      {429, true, 10, ACT_RETRY, "4xx"},
      {408, true, 10, ACT_RETRY, "4xx"},
      {401, true, 10, ACT_RETRY_FIX, "4xx"},
      {403, true, 1, ACT_RETRY_FIX, "4xx"},
      {404, true, 10, ACT_RETRY_FIX, "4xx"},
      {405, true, 10, ACT_RETRY_FIX, "4xx"},
      {301, true, 10, ACT_RETRY_FIX, "3xx"},
      {400, true, 10, ACT_SPLIT, "4xx"},
      {400, true, 2, ACT_SPLIT, "4xx"},
      {400, true, 1, ACT_DROP, "4xx"},
      {422, true, 7, ACT_SPLIT, "4xx"},
      {422, true, 1, ACT_DROP, "4xx"},
      {413, true, 5000, ACT_SPLIT, "4xx"},
      {413, true, 1, ACT_DROP, "4xx"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_assert_eq(store__classify(cases[i].status, cases[i].ok, cases[i].nlines),
                 cases[i].want, "HTTP %ld (ok=%d, %zu lines)", cases[i].status,
                 cases[i].ok, cases[i].nlines);
    cr_assert_str_eq(store__status_class(cases[i].status, cases[i].ok),
                     cases[i].cls);
  }
}

/* ---- Memory queue and batch sealing ------------------------------------ */

/* Appends a record of n lines "m v=<tag>i <k>\n" for k in 0..n-1. */
static void append_lines(struct queue *q, const char *tag, uint32_t n,
                         uint32_t source, int64_t now_ms) {
  struct buf b;
  buf_init(&b, 0);
  uint32_t ends[64];
  cr_assert(n <= 64);
  for (uint32_t k = 0; k < n; k++) {
    cr_assert_eq(buf_printf(&b, "m,src=%s v=%ui %u\n", tag, k, k), IOCD_OK);
    ends[k] = (uint32_t)b.len;
  }
  cr_assert_eq(q->ops->append(q, b.data, b.len, ends, n, source, now_ms),
               IOCD_OK);
  buf_cleanup(&b);
}

static void assert_lines(const struct sbatch *b, const char *const *want,
                         size_t n) {
  cr_assert_eq(b->npoints, n, "batch has %zu lines, want %zu", b->npoints, n);
  for (size_t i = 0; i < n; i++) {
    size_t len = b->line_off[i + 1] - b->line_off[i];
    cr_assert_eq(len, strlen(want[i]), "line %zu: %.*s", i, (int)len,
                 b->body + b->line_off[i]);
    cr_assert(memcmp(b->body + b->line_off[i], want[i], len) == 0,
              "line %zu: %.*s, want %s", i, (int)len, b->body + b->line_off[i],
              want[i]);
  }
  cr_assert_eq(b->line_off[n], b->len);
}

Test(store_queue, takes_whole_records_up_to_the_point_limit) {
  struct queue *q = store__memq_new(1 << 20, 1);
  cr_assert_not_null(q);
  append_lines(q, "a", 3, 0, 0);
  append_lines(q, "b", 3, 1, 0);
  append_lines(q, "c", 3, 2, 0);
  struct sbatch *b = NULL;
  cr_assert_eq(q->ops->take(q, 0, 7, SIZE_MAX, &b), IOCD_OK);
  static const char *const want[] = {
      "m,src=a v=0i 0\n", "m,src=a v=1i 1\n", "m,src=a v=2i 2\n",
      "m,src=b v=0i 0\n", "m,src=b v=1i 1\n", "m,src=b v=2i 2\n",
  };
  assert_lines(b, want, 6);
  cr_assert_eq(b->line_src[0], 0);
  cr_assert_eq(b->line_src[3], 1);
  cr_assert_eq(b->nrecords, 2);
  struct qlevel lv;
  q->ops->level(q, 0, &lv);
  cr_assert_eq(lv.points, 3);
  cr_assert_eq(lv.records, 1);
  store__batch_free(b);
  q->ops->free(q);
}

Test(store_queue, takes_up_to_the_byte_limit_but_always_one_record) {
  struct queue *q = store__memq_new(1 << 20, 1);
  append_lines(q, "a", 2, 0, 0); /* 2 x 15 bytes */
  append_lines(q, "b", 2, 0, 0);
  struct sbatch *b = NULL;
  cr_assert_eq(q->ops->take(q, 0, SIZE_MAX, 45, &b), IOCD_OK);
  cr_assert_eq(b->len, 30);
  cr_assert_eq(b->npoints, 2);
  store__batch_free(b);
  /* A record larger than the limit still goes, alone. */
  cr_assert_eq(q->ops->take(q, 0, 1, 10, &b), IOCD_OK);
  cr_assert_eq(b->npoints, 2);
  cr_assert_eq(b->len, 30);
  store__batch_free(b);
  cr_assert_eq(q->ops->take(q, 0, 1, 10, &b), IOCD_OK);
  cr_assert_null(b);
  q->ops->free(q);
}

Test(store_queue, refuses_a_record_past_the_cap_and_queues_nothing) {
  struct queue *q = store__memq_new(40, 1);
  append_lines(q, "a", 2, 0, 0); /* 30 bytes */
  uint32_t ends[1] = {15};
  cr_assert_eq(q->ops->append(q, "m,src=z v=0i 0\n", 15, ends, 1, 0, 0),
               IOCD_EFULL);
  uint64_t points, bytes;
  q->ops->totals(q, &points, &bytes);
  cr_assert_eq(points, 2);
  cr_assert_eq(bytes, 30);
  q->ops->free(q);
}

Test(store_queue, frees_a_record_only_when_every_reader_confirmed_it) {
  struct queue *q = store__memq_new(1 << 20, 2);
  append_lines(q, "a", 1, 0, 0);
  append_lines(q, "b", 1, 0, 0);
  struct sbatch *r0 = NULL, *r1 = NULL;
  cr_assert_eq(q->ops->take(q, 0, SIZE_MAX, SIZE_MAX, &r0), IOCD_OK);
  cr_assert_eq(q->ops->take(q, 1, 1, SIZE_MAX, &r1), IOCD_OK);
  cr_assert_eq(r0->npoints, 2);
  cr_assert_eq(r1->npoints, 1);
  uint64_t points, bytes;
  q->ops->confirm(q, 0, r0);
  q->ops->totals(q, &points, &bytes);
  cr_assert_eq(points, 2, "reader 1 has not confirmed yet");
  q->ops->confirm(q, 1, r1);
  q->ops->totals(q, &points, &bytes);
  cr_assert_eq(points, 1);
  /* The queue keeps working after the ring wrapped and grew. */
  for (int i = 0; i < 200; i++) {
    append_lines(q, "c", 1, 0, 0);
  }
  q->ops->totals(q, &points, &bytes);
  cr_assert_eq(points, 201);
  store__batch_free(r0);
  store__batch_free(r1);
  q->ops->free(q);
}

Test(store_queue, out_of_order_confirms_free_records_in_order) {
  struct queue *q = store__memq_new(1 << 20, 1);
  append_lines(q, "a", 1, 0, 0);
  append_lines(q, "b", 1, 0, 0);
  struct sbatch *first = NULL, *second = NULL;
  q->ops->take(q, 0, 1, SIZE_MAX, &first);
  q->ops->take(q, 0, 1, SIZE_MAX, &second);
  uint64_t points, bytes;
  q->ops->confirm(q, 0, second);
  q->ops->totals(q, &points, &bytes);
  cr_assert_eq(points, 2, "the older record still holds the queue");
  q->ops->confirm(q, 0, first);
  q->ops->totals(q, &points, &bytes);
  cr_assert_eq(points, 0);
  store__batch_free(first);
  store__batch_free(second);
  q->ops->free(q);
}

Test(store_batch, seals_at_the_point_or_byte_limit_or_after_the_interval) {
  static const struct {
    size_t points, bytes;
    int64_t oldest, now;
    bool due;
    int64_t due_ms;
  } cases[] = {
      {0, 0, 0, 99999, false, INT64_MAX}, /* nothing to send */
      {10, 100, 1000, 1200, false, 2000}, /* waits for the interval */
      {5000, 100, 1000, 1001, true, 0},   /* point limit */
      {6000, 100, 1000, 1001, true, 0},   /* past the point limit */
      {10, 65536, 1000, 1001, true, 0},   /* byte limit */
      {1, 10, 1000, 2000, true, 0},       /* interval over */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct qlevel lv = {.points = cases[i].points,
                        .bytes = cases[i].bytes,
                        .records = cases[i].points ? 1 : 0,
                        .oldest_ms = cases[i].oldest};
    int64_t due_ms = 0;
    bool due = store__batch_due(&lv, 5000, 65536, 1000, cases[i].now, &due_ms);
    cr_assert_eq(due, cases[i].due, "case %zu", i);
    if (!due) {
      cr_assert_eq(due_ms, cases[i].due_ms, "case %zu: due at %lld", i,
                   (long long)due_ms);
    }
  }
}

Test(store_batch, the_oldest_untaken_record_sets_the_flush_time) {
  struct queue *q = store__memq_new(1 << 20, 1);
  append_lines(q, "a", 1, 0, 100);
  append_lines(q, "b", 1, 0, 700);
  struct qlevel lv;
  q->ops->level(q, 0, &lv);
  cr_assert_eq(lv.oldest_ms, 100);
  struct sbatch *b = NULL;
  q->ops->take(q, 0, 1, SIZE_MAX, &b);
  q->ops->level(q, 0, &lv);
  cr_assert_eq(lv.oldest_ms, 700);
  store__batch_free(b);
  q->ops->free(q);
}

/* ---- Outbox: order and splitting --------------------------------------- */

static struct sbatch *batch_of(size_t n) {
  struct queue *q = store__memq_new(1 << 20, 1);
  struct buf body;
  buf_init(&body, 0);
  uint32_t ends[64];
  cr_assert(n <= 64);
  for (size_t k = 0; k < n; k++) {
    buf_printf(&body, "m v=%zui\n", k);
    ends[k] = (uint32_t)body.len;
  }
  q->ops->append(q, body.data, body.len, ends, (uint32_t)n, 0, 0);
  struct sbatch *b = NULL;
  q->ops->take(q, 0, SIZE_MAX, SIZE_MAX, &b);
  buf_cleanup(&body);
  q->ops->free(q);
  return b;
}

static void push(struct outbox *ob, struct sbatch *b) {
  struct part *p = malloc(sizeof *p);
  cr_assert_not_null(p);
  store__outbox_push(ob, p, b);
}

Test(store_split, isolates_each_rejected_line_and_sends_the_rest) {
  /* A fake server that rejects any request holding line 5 or line 11 of
   * 16, the way InfluxDB answers 400 to a batch with a bad point. Every
   * other line must be accepted exactly in the end, the bad ones dropped
   * alone, and the requests stay within 2 log2(n) per bad line. */
  struct outbox ob;
  store__outbox_init(&ob);
  struct sbatch *b = batch_of(16);
  push(&ob, b);
  bool accepted[16] = {false};
  bool dropped[16] = {false};
  size_t requests = 0, last_accepted_end = 0;
  for (;;) {
    int64_t wake = INT64_MAX;
    bool gated;
    struct part *p = store__outbox_next(&ob, 0, &wake, &gated);
    if (!p) {
      break;
    }
    cr_assert(!gated);
    store__outbox_sent(&ob, p);
    requests++;
    bool bad = (p->l0 <= 5 && 5 < p->l1) || (p->l0 <= 11 && 11 < p->l1);
    enum write_action act =
        store__classify(bad ? 400 : 204, true, p->l1 - p->l0);
    if (act == ACT_SPLIT) {
      cr_assert_eq(store__outbox_split(&ob, p), IOCD_OK);
      continue;
    }
    for (size_t i = p->l0; i < p->l1; i++) {
      if (act == ACT_WRITTEN) {
        accepted[i] = true;
      } else {
        cr_assert_eq(act, ACT_DROP);
        dropped[i] = true;
      }
    }
    /* One request at a time: parts resolve in line order. */
    cr_assert_eq(p->l0, last_accepted_end, "part [%zu,%zu) out of order", p->l0,
                 p->l1);
    last_accepted_end = p->l1;
    struct sbatch *done = store__outbox_finish(&ob, p);
    if (done) {
      cr_assert_eq(done, b);
      cr_assert_eq(last_accepted_end, 16);
      store__batch_free(done);
    }
  }
  for (size_t i = 0; i < 16; i++) {
    cr_assert_eq(dropped[i], i == 5 || i == 11, "line %zu dropped=%d", i,
                 dropped[i]);
    cr_assert_eq(accepted[i], !(i == 5 || i == 11), "line %zu accepted=%d", i,
                 accepted[i]);
  }
  cr_assert_leq(requests, 1 + 2 * 2 * 4, "%zu requests", requests);
  cr_assert_eq(ob.nparts, 0);
  cr_assert_eq(ob.ninflight, 0);
}

Test(store_split, halves_keep_line_order_and_cover_the_range) {
  struct outbox ob;
  store__outbox_init(&ob);
  struct sbatch *b = batch_of(7);
  push(&ob, b);
  store__outbox_sent(&ob, ob.head);
  cr_assert_eq(store__outbox_split(&ob, ob.head), IOCD_OK);
  cr_assert_eq(ob.nparts, 2);
  cr_assert_eq(ob.ninflight, 0);
  cr_assert_eq(ob.head->l0, 0);
  cr_assert_eq(ob.head->l1, 3);
  cr_assert_eq(ob.tail->l0, 3);
  cr_assert_eq(ob.tail->l1, 7);
  cr_assert_eq(b->parts, 2);
  store__outbox_cleanup(&ob);
}

Test(store_order, a_failed_part_holds_back_later_data_until_it_is_through) {
  struct outbox ob;
  store__outbox_init(&ob);
  push(&ob, batch_of(2));
  push(&ob, batch_of(3));
  push(&ob, batch_of(4));
  int64_t wake = INT64_MAX;
  bool gated;
  /* Two requests in flight at once. */
  struct part *a = store__outbox_next(&ob, 0, &wake, &gated);
  store__outbox_sent(&ob, a);
  struct part *b = store__outbox_next(&ob, 0, &wake, &gated);
  cr_assert_neq(a, b);
  store__outbox_sent(&ob, b);
  cr_assert_eq(ob.ninflight, 2);
  /* a fails: nothing after it goes out before its retry is through. */
  store__outbox_retry(&ob, a, 1000);
  cr_assert_null(store__outbox_next(&ob, 10, &wake, &gated));
  cr_assert(gated);
  cr_assert_eq(wake, 1000);
  /* b (already out) may still succeed. */
  store__batch_free(store__outbox_finish(&ob, b));
  /* At 1000 the retry of a is due, and only a. */
  wake = INT64_MAX;
  struct part *p = store__outbox_next(&ob, 1000, &wake, &gated);
  cr_assert_eq(p, a);
  store__outbox_sent(&ob, a);
  cr_assert_null(store__outbox_next(&ob, 1000, &wake, &gated));
  cr_assert(gated, "a retry in flight still holds the rest");
  store__batch_free(store__outbox_finish(&ob, a));
  p = store__outbox_next(&ob, 1000, &wake, &gated);
  cr_assert_not_null(p);
  cr_assert_eq(p->batch->npoints, 4);
  store__outbox_cleanup(&ob);
}

Test(store_order, an_abandoned_part_neither_gates_nor_counts_as_work) {
  struct outbox ob;
  store__outbox_init(&ob);
  push(&ob, batch_of(1));
  push(&ob, batch_of(1));
  int64_t wake = INT64_MAX;
  bool gated;
  struct part *a = store__outbox_next(&ob, 0, &wake, &gated);
  store__outbox_sent(&ob, a);
  store__outbox_retry(&ob, a, 5000);
  store__outbox_wake_all(&ob, 10);
  cr_assert_eq(store__outbox_next(&ob, 10, &wake, &gated), a,
               "shutdown ignores the backoff");
  store__outbox_sent(&ob, a);
  store__outbox_abandon(&ob, a);
  struct part *b = store__outbox_next(&ob, 10, &wake, &gated);
  cr_assert_not_null(b);
  cr_assert_neq(a, b);
  cr_assert(!store__outbox_idle(&ob));
  store__batch_free(store__outbox_finish(&ob, b));
  cr_assert(store__outbox_idle(&ob));
  store__outbox_cleanup(&ob);
}

/* ---- URLs -------------------------------------------------------------- */

Test(store_url, builds_write_urls_with_percent_encoded_parameters) {
  static const struct {
    enum influx_api api;
    const char *url, *db, *rp, *org, *bucket;
    const char *want;
  } cases[] = {
      {INFLUX_V1, "http://127.0.0.1:8086", "iot", NULL, NULL, NULL,
       "http://127.0.0.1:8086/write?db=iot&precision=ns"},
      {INFLUX_V1, "http://h:8086/", "a b&c", NULL, NULL, NULL,
       "http://h:8086/write?db=a%20b%26c&precision=ns"},
      {INFLUX_V1, "https://h/influx//", "db", "one week/x=1", NULL, NULL,
       "https://h/influx/write?db=db&rp=one%20week%2Fx%3D1&precision=ns"},
      {INFLUX_V1, "http://h", "Đắk Lắk", "", NULL, NULL,
       "http://h/write?db=%C4%90%E1%BA%AFk%20L%E1%BA%AFk&precision=ns"},
      {INFLUX_V2, "http://h:8086", NULL, NULL, "Sở TT&TT", "iot/raw?x",
       "http://h:8086/api/v2/write?org=S%E1%BB%9F%20TT%26TT&bucket=iot%2Fraw"
       "%3Fx&precision=ns"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct config_influx ci = {.enabled = true,
                               .api = cases[i].api,
                               .url = (char *)cases[i].url,
                               .database = (char *)cases[i].db,
                               .retention_policy = (char *)cases[i].rp,
                               .org = (char *)cases[i].org,
                               .bucket = (char *)cases[i].bucket};
    struct influx_settings st;
    store__influx_settings(&ci, &st);
    cr_assert_eq(store__influx_validate(&st, NULL), IOCD_OK, "case %zu", i);
    struct buf b;
    buf_init(&b, 0);
    cr_assert_eq(store__influx_url(&b, &st), IOCD_OK);
    cr_assert_str_eq(b.data, cases[i].want);
    buf_cleanup(&b);
  }
}

Test(store_url, query_url_and_create_database_form) {
  struct config_influx ci = {.url = "http://h:1/", .database = "x"};
  struct influx_settings st;
  store__influx_settings(&ci, &st);
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(store__influx_query_url(&b, &st), IOCD_OK);
  cr_assert_str_eq(b.data, "http://h:1/query");
  buf_reset(&b);
  cr_assert_eq(store__create_db_body(&b, "my \"db\"\\1"), IOCD_OK);
  /* q=CREATE DATABASE "my \"db\"\\1" */
  cr_assert_str_eq(b.data,
                   "q=CREATE%20DATABASE%20%22my%20%5C%22db%5C%22%5C%5C1%22");
  buf_cleanup(&b);
}

Test(store_url, zero_fields_take_the_documented_defaults) {
  struct config_influx ci = {.database = "d"};
  struct influx_settings st;
  store__influx_settings(&ci, &st);
  cr_assert_str_eq(st.url, "http://127.0.0.1:8086");
  cr_assert_eq(st.api, INFLUX_V1);
  cr_assert_eq(st.timeout_ms, 10000);
  cr_assert_eq(st.batch_points, 5000);
  cr_assert_eq(st.batch_bytes, (size_t)1 << 20);
  cr_assert_eq(st.flush_ms, 1000);
  cr_assert_eq(st.retry_min_ms, 500);
  cr_assert_eq(st.retry_max_ms, 60000);
  cr_assert_eq(st.max_in_flight, 2);
  cr_assert_eq(st.buffer_bytes, (size_t)64 << 20);
}

Test(store_url, validation_names_the_missing_key) {
  static const struct {
    struct config_influx ci;
    const char *want;
  } cases[] = {
      {{.api = INFLUX_V1}, "influxdb.database"},
      {{.api = INFLUX_V2, .org = "o"}, "influxdb.org, influxdb.bucket"},
      {{.url = "ftp://x", .database = "d"}, "influxdb.url"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct influx_settings st;
    store__influx_settings(&cases[i].ci, &st);
    struct iocd_err err = {{0}};
    cr_assert_eq(store__influx_validate(&st, &err), IOCD_EINVAL);
    cr_assert(strncmp(err.msg, cases[i].want, strlen(cases[i].want)) == 0, "%s",
              err.msg);
  }
}

/* ---- gzip -------------------------------------------------------------- */

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
    cr_assert(rc == Z_OK || rc == Z_STREAM_END, "inflate: %d", rc);
    buf_append(out, chunk, sizeof chunk - z.avail_out);
  } while (rc != Z_STREAM_END);
  cr_assert_eq(z.avail_in, 0, "trailing bytes after the gzip stream");
  inflateEnd(&z);
}

Test(store_gzip, bodies_inflate_back_to_the_same_bytes) {
  struct buf in;
  buf_init(&in, 0);
  for (int i = 0; i < 3000; i++) {
    buf_printf(&in,
               "dossiers,district=Bu\xc3\xb4n\\ Ma\\ Thu\xe1\xbb\x99t "
               "received=%di,online=%d.5 %d\n",
               i, i, 1700000000 + i);
  }
  const char *const bodies[] = {"", "x", in.data};
  size_t lens[] = {0, 1, in.len};
  for (size_t i = 0; i < 3; i++) {
    struct buf z, back;
    buf_init(&z, 0);
    buf_init(&back, 0);
    cr_assert_eq(store__gzip(&z, bodies[i], lens[i]), IOCD_OK);
    cr_assert_eq((unsigned char)z.data[0], 0x1f, "gzip magic");
    cr_assert_eq((unsigned char)z.data[1], 0x8b, "gzip magic");
    gunzip(z.data, z.len, &back);
    cr_assert_eq(back.len, lens[i]);
    cr_assert(lens[i] == 0 || memcmp(back.data, bodies[i], lens[i]) == 0);
    if (i == 2) {
      cr_assert_lt(z.len, in.len / 4, "repetitive text compresses");
    }
    buf_cleanup(&z);
    buf_cleanup(&back);
  }
  buf_cleanup(&in);
}

Test(store_gzip, respects_the_output_cap) {
  struct buf z;
  buf_init(&z, 8);
  cr_assert_eq(store__gzip(&z, "hello", 5), IOCD_ETOOBIG);
  cr_assert_eq(z.len, 0);
  buf_cleanup(&z);
}

/* ---- Error texts ------------------------------------------------------- */

Test(store_error_text, extracts_influxdb_messages) {
  static const struct {
    const char *body;
    bool found;
    const char *want;
  } cases[] = {
      {"{\"error\":\"database not found: \\\"x\\\"\"}\n", true,
       "database not found: \"x\""},
      {"{\"results\":[{\"statement_id\":0,\"error\":\"requires admin "
       "privilege\"}]}",
       true, "requires admin privilege"},
      {"{\"code\":\"not found\",\"message\":\"bucket \\\"b\\\" not found\"}",
       true, "bucket \"b\" not found"},
      {"{\"results\":[{\"statement_id\":0}]}", false,
       "{\"results\":[{\"statement_id\":0}]}"},
      {"<html>Bad Gateway</html>\r\n", false, "<html>Bad Gateway</html>"},
      {"line1\nline2", false, "line1 line2"},
      {"", false, ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char out[256];
    bool found = store__error_text(cases[i].body, strlen(cases[i].body), out,
                                   sizeof out);
    cr_assert_eq(found, cases[i].found, "case %zu", i);
    cr_assert_str_eq(out, cases[i].want);
  }
  char small[8];
  store__error_text("{\"error\":\"a long message\"}", 26, small, sizeof small);
  cr_assert_str_eq(small, "a long ");
}
