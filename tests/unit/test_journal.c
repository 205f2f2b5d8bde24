/*
 * Tests of the on-disk journal (store/journal.c) through its queue
 * interface, each on a fresh uv loop and temporary directory: the record
 * format, append/take/confirm with checkpoints and segment deletion,
 * reopening after a close, damaged segments (truncated tail, a flipped byte
 * in the middle), out-of-order confirmations, rotation, the size limit under
 * both policies, a full disk (a small tmpfs), and the backlog policy.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/stats.h"
#include "store/journal_int.h"
#include "store/store_int.h"

/* ---- A journal on its own loop ------------------------------------------ */

#define MAX_NAMES 8

struct jt {
  uv_loop_t loop;
  char dir[256];
  char jdir[300];
  struct stats *stats;
  struct queue *q;
  struct journal_settings st;
  unsigned nreaders;
  char *names[MAX_NAMES];
  size_t nnames;
  uint64_t found[MAX_NAMES];
  uint64_t dropped[MAX_NAMES];
};

static const char *hook_name(void *ud, uint32_t id) {
  struct jt *t = ud;
  return id < t->nnames ? t->names[id] : "";
}

static int hook_id(void *ud, const char *name, size_t len, uint32_t *id) {
  struct jt *t = ud;
  for (size_t i = 0; i < t->nnames; i++) {
    if (strlen(t->names[i]) == len && memcmp(t->names[i], name, len) == 0) {
      *id = (uint32_t)i;
      return IOCD_OK;
    }
  }
  cr_assert_lt(t->nnames, MAX_NAMES);
  t->names[t->nnames] = strndup(name, len);
  *id = (uint32_t)t->nnames++;
  return IOCD_OK;
}

static void hook_found(void *ud, uint32_t id, uint64_t points) {
  struct jt *t = ud;
  t->found[id] += points;
}

static void hook_dropped(void *ud, uint32_t id, uint64_t points) {
  struct jt *t = ud;
  t->dropped[id] += points;
}

static void jt_init(struct jt *t) {
  memset(t, 0, sizeof *t);
  cr_assert_eq(uv_loop_init(&t->loop), 0);
  snprintf(t->dir, sizeof t->dir, "/tmp/iocd-jtest-XXXXXX");
  cr_assert_not_null(mkdtemp(t->dir));
  snprintf(t->jdir, sizeof t->jdir, "%s/journal", t->dir);
  t->st = (struct journal_settings){
      .dir = t->jdir,
      .segment_bytes = 16 << 10,
      .max_bytes = 1 << 20,
      .memory_bytes = 1 << 20,
      .fsync = JOURNAL_FSYNC_INTERVAL,
      .fsync_interval_ms = 100,
      .when_full = JOURNAL_FULL_PAUSE,
  };
  t->nreaders = 1;
  /* Source ids as the store hands them out: by name, in order. */
  uint32_t id;
  hook_id(t, "igate", 5, &id);
  hook_id(t, "idesk", 5, &id);
}

static void jt_open(struct jt *t) {
  static const char *const outs[] = {"influxdb", "file"};
  struct journal_hooks hooks = {
      .ud = t,
      .source_name = hook_name,
      .source_id = hook_id,
      .found = hook_found,
      .dropped = hook_dropped,
  };
  memset(t->found, 0, sizeof t->found);
  memset(t->dropped, 0, sizeof t->dropped);
  t->stats = stats_new();
  cr_assert_not_null(t->stats);
  struct iocd_err err = {{0}};
  t->q = store__journal_open(&t->loop, &t->st, outs, t->nreaders, &hooks,
                             t->stats, &err);
  cr_assert_not_null(t->q, "open: %s", err.msg);
}

/* Frees the journal and runs its handles and disk work to the end. */
static void jt_close(struct jt *t) {
  t->q->ops->free(t->q);
  t->q = NULL;
  uv_run(&t->loop, UV_RUN_DEFAULT);
  stats_free(t->stats);
  t->stats = NULL;
}

static void rm_rf(const char *path) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  cr_expect_eq(system(cmd), 0);
}

static void jt_done(struct jt *t) {
  if (t->q) {
    jt_close(t);
  }
  cr_assert_eq(uv_loop_close(&t->loop), 0, "handles left open on the loop");
  for (size_t i = 0; i < t->nnames; i++) {
    free(t->names[i]);
  }
  rm_rf(t->dir);
}

static uint64_t counter(struct jt *t, const char *name) {
  struct metric *m = stats_find(t->stats, name, NULL);
  cr_assert_not_null(m, "%s", name);
  return m->count;
}

static int64_t mono_ms(void) {
  return clock_mono_ns() / NS_PER_MS;
}

/* Runs the loop for about ms (the journal's timer wakes it). */
static void run_for(struct jt *t, int ms) {
  int64_t end = mono_ms() + ms;
  while (mono_ms() < end) {
    uv_run(&t->loop, UV_RUN_ONCE);
  }
}

/* Appends message k of source src: npoints lines whose integer field is k
 * (so a record can be recognised when it comes back), and whose string
 * field holds a raw newline. */
static int append_msg(struct jt *t, uint32_t src, unsigned k,
                      uint32_t npoints) {
  char lp[4096];
  uint32_t ends[64];
  size_t len = 0;
  cr_assert_leq(npoints, 64);
  for (uint32_t i = 0; i < npoints; i++) {
    int n =
        snprintf(lp + len, sizeof lp - len,
                 "m,src=%u k=%ui,p=%ui,s=\"a\nb\" %u\n", src, k, i, 1000 + k);
    len += (size_t)n;
    ends[i] = (uint32_t)len;
  }
  return t->q->ops->append(t->q, lp, len, ends, npoints, src,
                           (int64_t)uv_now(&t->loop));
}

/* The k of every line of b, in order. */
static size_t ks_of(const struct sbatch *b, unsigned *out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < b->npoints && n < max; i++) {
    const char *line = b->body + b->line_off[i];
    const char *k = strstr(line, " k=");
    cr_assert_not_null(k);
    out[n++] = (unsigned)strtoul(k + 3, NULL, 10);
  }
  return n;
}

/* Takes everything reader has not taken; confirms it when confirm. Returns
 * the message numbers seen (one per point) in *ks. */
static size_t take_all(struct jt *t, unsigned reader, size_t max_points,
                       bool confirm, unsigned *ks, size_t max) {
  size_t n = 0;
  for (;;) {
    struct sbatch *b = NULL;
    cr_assert_eq(t->q->ops->take(t->q, reader, max_points, 1 << 20, &b),
                 IOCD_OK);
    if (!b) {
      struct qlevel lv;
      t->q->ops->level(t->q, reader, &lv);
      if (lv.points == 0) {
        break;
      }
      continue;
    }
    n += ks_of(b, ks + n, max - n);
    if (confirm) {
      t->q->ops->confirm(t->q, reader, b);
    }
    store__batch_free(b);
  }
  return n;
}

static size_t count_files(const char *dir, const char *suffix) {
  DIR *d = opendir(dir);
  cr_assert_not_null(d, "%s", dir);
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    size_t sl = strlen(suffix);
    if (len > sl && strcmp(e->d_name + len - sl, suffix) == 0) {
      n++;
    }
  }
  closedir(d);
  return n;
}

/* The path of the newest (or oldest) segment file. */
static void segment_path(struct jt *t, bool newest, char *out, size_t n) {
  DIR *d = opendir(t->jdir);
  cr_assert_not_null(d);
  char best[300] = "";
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strstr(e->d_name, ".seg")) {
      continue;
    }
    if (!best[0] ||
        (newest ? strcmp(e->d_name, best) > 0 : strcmp(e->d_name, best) < 0)) {
      snprintf(best, sizeof best, "%s", e->d_name);
    }
  }
  closedir(d);
  cr_assert(best[0], "no segment in %s", t->jdir);
  int k = snprintf(out, n, "%s/%s", t->jdir, best);
  cr_assert(k > 0 && (size_t)k < n, "path too long");
}

static uint64_t read_ckpt(struct jt *t, const char *output) {
  char path[400];
  snprintf(path, sizeof path, "%s/checkpoint.%s", t->jdir, output);
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "%s", path);
  unsigned long long v = 0;
  char text[32] = "";
  cr_assert_not_null(fgets(text, sizeof text, f));
  fclose(f);
  v = strtoull(text, NULL, 10);
  return (uint64_t)v;
}

/* ---- The record format ----------------------------------------------------
 */

Test(journal_record, round_trip_keeps_every_field) {
  static const struct {
    const char *name;
    const char *lp;
    uint32_t ends[4];
    uint32_t npoints;
  } cases[] = {
      {"igate", "a v=1i 1\n", {9}, 1},
      {"Buôn Ma Thuột", "a,d=Buôn\\ Ma v=1 1\nb s=\"x\ny\" 2\n", {19, 32}, 2},
      {"", "x v=1 1\n", {8}, 1},
      {"s", "a v=1 1\nb v=2 2\nc v=3 3\nd v=4 4\n", {8, 16, 24, 32}, 4},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct buf b;
    buf_init(&b, 0);
    uint64_t seq = UINT64_C(0x0102030405060708) + i;
    int64_t wall = INT64_C(1601460000123) + (int64_t)i;
    size_t lp_len = strlen(cases[i].lp);
    cr_assert_eq(
        journal__encode(&b, seq, wall, cases[i].name, strlen(cases[i].name),
                        cases[i].ends, cases[i].npoints, cases[i].lp, lp_len),
        IOCD_OK);
    cr_assert_eq(b.len, JOURNAL_HDR + strlen(cases[i].name) +
                            4 * cases[i].npoints + lp_len);
    cr_assert_eq(memcmp(b.data, "IOCJ", 4), 0);
    struct jview v;
    cr_assert_eq(journal__decode(b.data, b.len, &v), JREC_OK, "case %zu", i);
    cr_expect_eq(v.seq, seq);
    cr_expect_eq(v.wall_ms, wall);
    cr_expect_eq(v.npoints, cases[i].npoints);
    cr_expect_eq(v.name_len, strlen(cases[i].name));
    cr_expect_eq(memcmp(v.name, cases[i].name, v.name_len), 0);
    cr_expect_eq(v.lp_len, lp_len);
    cr_expect_eq(memcmp(v.lp, cases[i].lp, lp_len), 0);
    cr_expect_eq(v.size, b.len);
    for (uint32_t k = 0; k < cases[i].npoints; k++) {
      cr_expect_eq(journal__end(&v, k), cases[i].ends[k]);
    }
    /* Every prefix is short, never mistaken for a record. */
    for (size_t cut = 0; cut < b.len; cut++) {
      cr_expect_eq(journal__decode(b.data, cut, &v), JREC_SHORT,
                   "case %zu cut at %zu", i, cut);
    }
    buf_cleanup(&b);
  }
}

Test(journal_record, any_flipped_byte_is_detected) {
  struct buf b;
  buf_init(&b, 0);
  const char *lp = "m,d=Lak v=1i,s=\"x\" 1601460000000000000\n";
  uint32_t end = (uint32_t)strlen(lp);
  cr_assert_eq(
      journal__encode(&b, 7, 1601460000000, "igate", 5, &end, 1, lp, end),
      IOCD_OK);
  for (size_t i = 0; i < b.len; i++) {
    for (int bit = 0; bit < 8; bit++) {
      b.data[i] ^= (char)(1 << bit);
      struct jview v;
      enum jdecode d = journal__decode(b.data, b.len, &v);
      cr_expect_neq(d, JREC_OK, "byte %zu bit %d flipped went unnoticed", i,
                    bit);
      b.data[i] ^= (char)(1 << bit);
    }
  }
  buf_cleanup(&b);
}

Test(journal_record, refuses_what_does_not_fit) {
  struct buf b;
  buf_init(&b, 0);
  uint32_t end = 1;
  cr_expect_eq(journal__encode(&b, 1, 0, "a", 1, &end, 0, "x", 1), IOCD_EINVAL);
  char *name = calloc(1, JOURNAL_NAME_MAX + 2);
  memset(name, 'n', JOURNAL_NAME_MAX + 1);
  cr_expect_eq(
      journal__encode(&b, 1, 0, name, JOURNAL_NAME_MAX + 1, &end, 1, "x", 1),
      IOCD_ETOOBIG);
  free(name);
  cr_expect_eq(b.len, 0);
  buf_cleanup(&b);
}

/* ---- Append, take, confirm ------------------------------------------------
 */

Test(journal_queue, takes_in_order_and_checkpoints_what_was_confirmed) {
  struct jt t;
  jt_init(&t);
  jt_open(&t);
  for (unsigned k = 1; k <= 10; k++) {
    cr_assert_eq(append_msg(&t, k % 2, k, 2), IOCD_OK);
  }
  struct qlevel lv;
  t.q->ops->level(t.q, 0, &lv);
  cr_expect_eq(lv.points, 20);
  cr_expect_eq(lv.records, 10);
  /* One loop iteration writes the buffer (the check handle). */
  uv_run(&t.loop, UV_RUN_NOWAIT);
  char seg[512];
  segment_path(&t, true, seg, sizeof seg);
  struct stat sb;
  cr_assert_eq(stat(seg, &sb), 0);
  cr_expect_gt(sb.st_size, 10 * JOURNAL_HDR);

  struct sbatch *b = NULL;
  cr_assert_eq(t.q->ops->take(t.q, 0, 6, 1 << 20, &b), IOCD_OK);
  cr_assert_not_null(b);
  unsigned ks[64];
  cr_assert_eq(ks_of(b, ks, 64), 6);
  cr_expect_eq(ks[0], 1);
  cr_expect_eq(ks[5], 3);
  cr_expect_eq(b->line_src[0], 1);
  cr_expect_eq(b->line_src[2], 0);
  cr_expect_eq(b->first_seq, 1);
  cr_expect_eq(b->nrecords, 3);
  cr_expect_eq(store__journal_checkpoint(t.q, 0), 1);
  t.q->ops->confirm(t.q, 0, b);
  store__batch_free(b);
  cr_expect_eq(store__journal_checkpoint(t.q, 0), 4);
  uint64_t points, bytes;
  t.q->ops->totals(t.q, &points, &bytes);
  cr_expect_eq(points, 14);
  /* The checkpoint file follows within a second, and the interval policy
   * (100 ms here) synced the segment on the thread pool. */
  run_for(&t, 1300);
  cr_expect_eq(read_ckpt(&t, "influxdb"), 4);
  cr_expect_geq(counter(&t, "iocd_journal_fsyncs_total"), 1);
  jt_done(&t);
}

Test(journal_queue, fsync_policies_sync_as_documented) {
  static const struct {
    enum journal_fsync policy;
    uint64_t min, max; /* fdatasyncs after 3 writes and 300 ms */
  } cases[] = {
      {JOURNAL_FSYNC_ALWAYS, 3, 3},
      {JOURNAL_FSYNC_NEVER, 0, 0},
      {JOURNAL_FSYNC_INTERVAL, 1, 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct jt t;
    jt_init(&t);
    t.st.fsync = cases[i].policy;
    jt_open(&t);
    for (unsigned k = 1; k <= 3; k++) {
      cr_assert_eq(append_msg(&t, 0, k, 1), IOCD_OK);
      uv_run(&t.loop, UV_RUN_NOWAIT);
    }
    run_for(&t, 300);
    uint64_t n = counter(&t, "iocd_journal_fsyncs_total");
    cr_expect(n >= cases[i].min && n <= cases[i].max,
              "policy %d: %llu fdatasyncs", (int)cases[i].policy,
              (unsigned long long)n);
    jt_done(&t);
  }
}

Test(journal_queue, deletes_a_segment_once_every_reader_is_past_it) {
  struct jt t;
  jt_init(&t);
  t.st.segment_bytes = 4 << 10;
  t.nreaders = 2;
  jt_open(&t);
  for (unsigned k = 1; k <= 300; k++) {
    cr_assert_eq(append_msg(&t, 0, k, 1), IOCD_OK);
  }
  cr_assert_eq(store__journal_flush(t.q), IOCD_OK);
  size_t before = count_files(t.jdir, ".seg");
  cr_assert_gt(before, 3, "300 records of ~85 bytes in 4 KiB segments");
  unsigned ks[512];
  cr_assert_eq(take_all(&t, 0, 7, true, ks, 512), 300);
  run_for(&t, 1300);
  /* The file output has confirmed nothing: every segment stays. */
  cr_expect_eq(count_files(t.jdir, ".seg"), before);
  cr_assert_eq(take_all(&t, 1, 1000, true, ks, 512), 300);
  run_for(&t, 1300);
  /* Only the segment still being written is left. */
  cr_expect_eq(count_files(t.jdir, ".seg"), 1);
  cr_expect_eq(store__journal_segments(t.q), 1);
  cr_expect_eq(read_ckpt(&t, "influxdb"), 301);
  cr_expect_eq(read_ckpt(&t, "file"), 301);
  jt_done(&t);
}

Test(journal_queue, reopening_replays_exactly_the_unconfirmed_in_order) {
  struct jt t;
  jt_init(&t);
  jt_open(&t);
  for (unsigned k = 1; k <= 20; k++) {
    cr_assert_eq(append_msg(&t, k <= 12 ? 0 : 1, k, 3), IOCD_OK);
  }
  /* Confirm messages 1..8 (24 points in batches of 6), take 9..11 without
   * confirming them: they were in flight when iocd stopped. */
  for (int i = 0; i < 4; i++) {
    struct sbatch *b = NULL;
    cr_assert_eq(t.q->ops->take(t.q, 0, 6, 1 << 20, &b), IOCD_OK);
    t.q->ops->confirm(t.q, 0, b);
    store__batch_free(b);
  }
  struct sbatch *inflight = NULL;
  cr_assert_eq(t.q->ops->take(t.q, 0, 9, 1 << 20, &inflight), IOCD_OK);
  store__batch_free(inflight);
  jt_close(&t);

  jt_open(&t);
  cr_expect_eq(t.found[0], 4 * 3, "messages 9..12 of igate");
  cr_expect_eq(t.found[1], 8 * 3, "messages 13..20 of idesk");
  unsigned ks[128];
  size_t n = take_all(&t, 0, 5, true, ks, 128);
  cr_assert_eq(n, 36);
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq(ks[i], 9 + i / 3, "point %zu is of message %u", i, ks[i]);
  }
  jt_close(&t);
  /* Everything confirmed: nothing comes back. */
  jt_open(&t);
  cr_expect_eq(t.found[0] + t.found[1], 0);
  cr_expect_eq(take_all(&t, 0, 5, true, ks, 128), 0);
  /* New records go on from the sequence numbers already used. */
  cr_assert_eq(append_msg(&t, 0, 99, 1), IOCD_OK);
  struct sbatch *b = NULL;
  cr_assert_eq(t.q->ops->take(t.q, 0, 5, 1 << 20, &b), IOCD_OK);
  cr_expect_eq(b->first_seq, 21);
  store__batch_free(b);
  jt_done(&t);
}

Test(journal_queue, out_of_order_confirmations_checkpoint_the_prefix) {
  struct jt t;
  jt_init(&t);
  jt_open(&t);
  for (unsigned k = 1; k <= 9; k++) {
    cr_assert_eq(append_msg(&t, 0, k, 1), IOCD_OK);
  }
  struct sbatch *b[3];
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(t.q->ops->take(t.q, 0, 3, 1 << 20, &b[i]), IOCD_OK);
    cr_assert_eq(b[i]->first_seq, 1 + 3 * (uint64_t)i);
  }
  t.q->ops->confirm(t.q, 0, b[2]);
  cr_expect_eq(store__journal_checkpoint(t.q, 0), 1);
  t.q->ops->confirm(t.q, 0, b[1]);
  cr_expect_eq(store__journal_checkpoint(t.q, 0), 1);
  t.q->ops->confirm(t.q, 0, b[0]);
  cr_expect_eq(store__journal_checkpoint(t.q, 0), 10);
  for (int i = 0; i < 3; i++) {
    store__batch_free(b[i]);
  }
  jt_done(&t);
}

Test(journal_queue, rotates_into_segments_named_by_their_first_record) {
  struct jt t;
  jt_init(&t);
  t.st.segment_bytes = 4 << 10;
  jt_open(&t);
  for (unsigned k = 1; k <= 120; k++) {
    cr_assert_eq(append_msg(&t, 0, k, 1), IOCD_OK);
    if (k % 10 == 0) {
      uv_run(&t.loop, UV_RUN_NOWAIT);
    }
  }
  cr_assert_eq(store__journal_flush(t.q), IOCD_OK);
  DIR *d = opendir(t.jdir);
  cr_assert_not_null(d);
  struct dirent *e;
  size_t nseg = 0;
  while ((e = readdir(d)) != NULL) {
    if (!strstr(e->d_name, ".seg")) {
      continue;
    }
    nseg++;
    cr_assert_eq(strlen(e->d_name), 20, "%s", e->d_name);
    unsigned long long first = strtoull(e->d_name, NULL, 10);
    char path[600];
    snprintf(path, sizeof path, "%s/%s", t.jdir, e->d_name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    unsigned char hdr[JOURNAL_HDR];
    cr_assert_eq(fread(hdr, 1, sizeof hdr, f), sizeof hdr);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    uint64_t seq = 0;
    for (int i = 7; i >= 0; i--) {
      seq = (seq << 8) | hdr[16 + i];
    }
    cr_expect_eq(seq, first, "%s starts with record %llu", e->d_name,
                 (unsigned long long)seq);
    cr_expect_leq(size, 4 << 10, "%s is %ld bytes", e->d_name, size);
  }
  closedir(d);
  cr_expect_gt(nseg, 2);
  cr_expect_eq(nseg, store__journal_segments(t.q));
  jt_done(&t);
}

/* ---- Damage ----------------------------------------------------------------
 */

/* Writes 30 one-point records of igate and closes the journal without
 * confirming anything. */
static void thirty_records(struct jt *t) {
  jt_open(t);
  for (unsigned k = 1; k <= 30; k++) {
    cr_assert_eq(append_msg(t, 0, k, 1), IOCD_OK);
  }
  jt_close(t);
}

Test(journal_damage, a_truncated_tail_loses_only_the_cut_record) {
  struct jt t;
  jt_init(&t);
  thirty_records(&t);
  char seg[512];
  segment_path(&t, true, seg, sizeof seg);
  struct stat sb;
  cr_assert_eq(stat(seg, &sb), 0);
  cr_assert_eq(truncate(seg, sb.st_size - 7), 0);

  jt_open(&t);
  cr_expect_eq(counter(&t, "iocd_journal_corrupt_records_total"), 1);
  cr_expect_eq(t.found[0], 29);
  /* New records never go after a damaged tail. */
  cr_assert_eq(append_msg(&t, 0, 31, 1), IOCD_OK);
  cr_assert_eq(store__journal_flush(t.q), IOCD_OK);
  char newest[512];
  segment_path(&t, true, newest, sizeof newest);
  cr_expect_str_neq(newest, seg);
  cr_expect_eq(stat(seg, &sb), 0);
  unsigned ks[64];
  size_t n = take_all(&t, 0, 4, true, ks, 64);
  cr_assert_eq(n, 30);
  for (unsigned i = 0; i < 29; i++) {
    cr_expect_eq(ks[i], i + 1);
  }
  cr_expect_eq(ks[29], 31);
  jt_done(&t);
}

Test(journal_damage, a_corrupt_record_in_the_middle_is_skipped_alone) {
  struct jt t;
  jt_init(&t);
  thirty_records(&t);
  char seg[512];
  segment_path(&t, true, seg, sizeof seg);
  /* Flip a byte in the line protocol of the record of message 12. */
  FILE *f = fopen(seg, "r+b");
  cr_assert_not_null(f);
  static char data[1 << 16];
  size_t len = fread(data, 1, sizeof data, f);
  size_t off = 0;
  struct jview v;
  while (journal__decode(data + off, len - off, &v) == JREC_OK && v.seq != 12) {
    off += v.size;
  }
  cr_assert_eq(v.seq, 12);
  long at = (long)(off + v.size - 5);
  cr_assert_eq(fseek(f, at, SEEK_SET), 0);
  fputc(data[at] ^ 0x20, f);
  fclose(f);

  jt_open(&t);
  cr_expect_eq(counter(&t, "iocd_journal_corrupt_records_total"), 1);
  cr_expect_eq(t.found[0], 29);
  unsigned ks[64];
  size_t n = take_all(&t, 0, 4, true, ks, 64);
  cr_assert_eq(n, 29);
  for (size_t i = 0, k = 1; i < n; i++, k++) {
    if (k == 12) {
      k++;
    }
    cr_expect_eq(ks[i], k, "point %zu", i);
  }
  /* The lost record is confirmed with the rest: nothing comes back. */
  jt_close(&t);
  jt_open(&t);
  cr_expect_eq(t.found[0], 0);
  jt_done(&t);
}

Test(journal_damage, garbage_between_records_is_skipped) {
  struct jt t;
  jt_init(&t);
  thirty_records(&t);
  char seg[512];
  segment_path(&t, true, seg, sizeof seg);
  /* A second segment that starts with garbage, then valid records. */
  jt_open(&t);
  for (unsigned k = 31; k <= 35; k++) {
    cr_assert_eq(append_msg(&t, 1, k, 1), IOCD_OK);
  }
  jt_close(&t);
  char newest[512];
  segment_path(&t, true, newest, sizeof newest);
  cr_assert_str_neq(newest, seg);
  FILE *f = fopen(newest, "r+b");
  cr_assert_not_null(f);
  fputs("IOCJ-garbage", f);
  fclose(f);
  jt_open(&t);
  cr_expect_geq(counter(&t, "iocd_journal_corrupt_records_total"), 1);
  unsigned ks[64];
  size_t n = take_all(&t, 0, 100, true, ks, 64);
  cr_expect_eq(n, 34, "30 + 4 intact records of 5");
  cr_expect_eq(ks[29], 30);
  cr_expect_eq(ks[30], 32);
  jt_done(&t);
}

/* ---- Limits ----------------------------------------------------------------
 */

Test(journal_limit, pause_refuses_past_max_and_takes_again_once_written) {
  struct jt t;
  jt_init(&t);
  t.st.segment_bytes = 8 << 10;
  t.st.max_bytes = 32 << 10;
  jt_open(&t);
  unsigned k = 0;
  double fill_before = 0;
  int rc = IOCD_OK;
  while (rc == IOCD_OK && k < 10000) {
    fill_before = t.q->ops->fill(t.q);
    rc = append_msg(&t, 0, ++k, 1);
  }
  cr_assert_eq(rc, IOCD_EFULL);
  cr_expect_gt(fill_before, 0.95);
  cr_expect_eq(t.dropped[0], 0);
  unsigned *ks = calloc(10000, sizeof *ks);
  size_t n = take_all(&t, 0, 50, true, ks, 10000);
  cr_expect_eq(n, k - 1, "every stored record comes back");
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq(ks[i], i + 1);
  }
  run_for(&t, 1300);
  cr_expect_lt(t.q->ops->fill(t.q), 0.5, "written segments are deleted");
  cr_expect_eq(append_msg(&t, 0, k, 1), IOCD_OK);
  free(ks);
  jt_done(&t);
}

Test(journal_limit, drop_oldest_deletes_and_counts_what_was_not_taken) {
  struct jt t;
  jt_init(&t);
  t.st.segment_bytes = 8 << 10;
  t.st.max_bytes = 32 << 10;
  t.st.when_full = JOURNAL_FULL_DROP_OLDEST;
  jt_open(&t);
  const unsigned total = 2000;
  for (unsigned k = 1; k <= total; k++) {
    cr_assert_eq(append_msg(&t, k % 2, k, 1), IOCD_OK, "message %u", k);
    if (k % 50 == 0) {
      uv_run(&t.loop, UV_RUN_NOWAIT);
    }
  }
  cr_expect_lt(t.q->ops->fill(t.q), 0.1, "drop_oldest never asks to pause");
  unsigned *ks = calloc(total, sizeof *ks);
  size_t n = take_all(&t, 0, 100, true, ks, total);
  uint64_t dropped = t.dropped[0] + t.dropped[1];
  cr_expect_gt(dropped, 0);
  cr_expect_eq(n + dropped, total, "%zu taken + %llu dropped", n,
               (unsigned long long)dropped);
  /* What is left is the newest, in order. */
  cr_expect_eq(ks[n - 1], total);
  for (size_t i = 1; i < n; i++) {
    cr_assert_eq(ks[i], ks[i - 1] + 1);
  }
  cr_expect_eq(ks[0], dropped + 1);
  struct metric *m = stats_find(t.stats, "iocd_points_dropped_total", "output",
                                "influxdb", "reason", "journal_full", NULL);
  cr_assert_not_null(m);
  cr_expect_eq(m->count, dropped);
  cr_expect_leq(store__journal_segments(t.q) * (8 << 10), (32 << 10) + 8192);
  free(ks);
  jt_done(&t);
}

/* ---- A full disk -----------------------------------------------------------
 */

Test(journal_disk, a_full_disk_keeps_records_in_memory_and_recovers) {
  struct jt t;
  jt_init(&t);
  char mnt[270];
  snprintf(mnt, sizeof mnt, "%s/mnt", t.dir);
  cr_assert_eq(mkdir(mnt, 0755), 0);
  char cmd[700];
  snprintf(cmd, sizeof cmd,
           "mount -t tmpfs -o size=256k tmpfs '%s' 2>/dev/null", mnt);
  if (system(cmd) != 0) {
    jt_done(&t);
    cr_skip_test("cannot mount a tmpfs here (needs root)");
  }
  snprintf(t.jdir, sizeof t.jdir, "%s/journal", mnt);
  t.st.dir = t.jdir;
  /* A filler takes most of the space; deleting it is "space returns". */
  char filler[400];
  snprintf(filler, sizeof filler, "%s/filler", mnt);
  FILE *f = fopen(filler, "wb");
  cr_assert_not_null(f);
  static char block[4096];
  for (int i = 0; i < 40; i++) {
    fwrite(block, 1, sizeof block, f);
  }
  fclose(f);
  jt_open(&t);
  unsigned k = 0;
  int frc = IOCD_OK;
  while (frc == IOCD_OK && k < 5000) {
    cr_assert_eq(append_msg(&t, 0, ++k, 4), IOCD_OK);
    frc = store__journal_flush(t.q);
  }
  cr_assert_eq(frc, IOCD_EIO, "the disk never filled");
  cr_expect_eq(t.q->ops->fill(t.q), 1.0);
  cr_expect_geq(counter(&t, "iocd_journal_write_errors_total"), 1);
  /* Records keep coming while the disk is full; they wait in memory. */
  for (int i = 0; i < 5; i++) {
    cr_assert_eq(append_msg(&t, 0, ++k, 4), IOCD_OK);
  }
  cr_assert_eq(unlink(filler), 0);
  /* The timer retries every second. */
  run_for(&t, 1300);
  cr_expect_lt(t.q->ops->fill(t.q), 1.0);
  cr_assert_eq(append_msg(&t, 0, ++k, 4), IOCD_OK);
  jt_close(&t);

  jt_open(&t);
  unsigned *ks = calloc(4 * k, sizeof *ks);
  size_t n = take_all(&t, 0, 100, true, ks, 4 * k);
  cr_expect_eq(n, 4 * k, "every record accepted is in the journal");
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq(ks[i], 1 + i / 4);
  }
  free(ks);
  jt_close(&t);
  snprintf(cmd, sizeof cmd, "umount '%s'", mnt);
  cr_expect_eq(system(cmd), 0);
  jt_done(&t);
}

Test(journal_disk, a_directory_in_use_by_another_journal_is_refused) {
  struct jt t;
  jt_init(&t);
  /* Locks belong to the process: the other holder is a child. */
  jt_open(&t);
  jt_close(&t);
  int ready[2];
  cr_assert_eq(pipe(ready), 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    char path[400];
    snprintf(path, sizeof path, "%s/lock", t.jdir);
    int fd = open(path, O_RDWR);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int ok = fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0;
    if (write(ready[1], ok ? "y" : "n", 1) != 1) {
      _exit(1);
    }
    sleep(5);
    _exit(0);
  }
  char c = 0;
  cr_assert_eq(read(ready[0], &c, 1), 1);
  cr_assert_eq(c, 'y');
  struct journal_hooks hooks = {
      .ud = &t,
      .source_name = hook_name,
      .source_id = hook_id,
      .found = hook_found,
      .dropped = hook_dropped,
  };
  static const char *const outs[] = {"influxdb"};
  struct stats *st = stats_new();
  struct iocd_err err = {{0}};
  struct queue *q =
      store__journal_open(&t.loop, &t.st, outs, 1, &hooks, st, &err);
  cr_expect_null(q);
  cr_expect(strstr(err.msg, "in use by another iocd") != NULL, "%s", err.msg);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  close(ready[0]);
  close(ready[1]);
  stats_free(st);
  jt_done(&t);
}

/* ---- The backlog policy -----------------------------------------------------
 */

Test(journal_replay, a_large_backlog_drains_in_order_alongside_live_records) {
  struct jt t;
  jt_init(&t);
  jt_open(&t);
  struct qpace pace = {
      .batch_points = 10, .batch_bytes = 1 << 20, .flush_ms = 0};
  t.q->ops->pace(t.q, 0, &pace);
  /* The backlog: 200 messages InfluxDB has not seen yet. */
  for (unsigned k = 1; k <= 200; k++) {
    cr_assert_eq(append_msg(&t, 0, k, 1), IOCD_OK);
  }
  /* The first take sees the backlog and starts draining it. */
  struct sbatch *b = NULL;
  cr_assert_eq(t.q->ops->take(t.q, 0, 10, 1 << 20, &b), IOCD_OK);
  unsigned ks[16];
  cr_assert_eq(ks_of(b, ks, 16), 10);
  cr_expect_eq(ks[0], 1);
  t.q->ops->confirm(t.q, 0, b);
  store__batch_free(b);
  /* Live data arrives; it goes out before the backlog is done, while the
   * backlog keeps its own order. */
  unsigned next_live = 1001, next_back = 11, live_batches = 0;
  for (int round = 0; round < 60; round++) {
    cr_assert_eq(append_msg(&t, 1, next_live++, 1), IOCD_OK);
    b = NULL;
    cr_assert_eq(t.q->ops->take(t.q, 0, 10, 1 << 20, &b), IOCD_OK);
    if (!b) {
      continue;
    }
    size_t n = ks_of(b, ks, 16);
    if (ks[0] > 1000) {
      live_batches++;
    } else {
      for (size_t i = 0; i < n; i++) {
        cr_assert_eq(ks[i], next_back, "backlog out of order");
        next_back++;
      }
    }
    t.q->ops->confirm(t.q, 0, b);
    store__batch_free(b);
  }
  cr_expect_gt(live_batches, 10, "live records waited for the backlog");
  cr_expect_gt(next_back, 200, "the backlog did not drain");
  /* Once it is through, the checkpoint covers everything. */
  unsigned rest[128];
  take_all(&t, 0, 10, true, rest, 128);
  cr_expect_eq(store__journal_checkpoint(t.q, 0), 261);
  jt_done(&t);
}

Test(journal_replay, replay_rate_paces_the_backlog) {
  struct jt t;
  jt_init(&t);
  t.st.replay_rate = 100;
  jt_open(&t);
  struct qpace pace = {
      .batch_points = 10, .batch_bytes = 1 << 20, .flush_ms = 1000};
  t.q->ops->pace(t.q, 0, &pace);
  for (unsigned k = 1; k <= 200; k++) {
    cr_assert_eq(append_msg(&t, 0, k, 1), IOCD_OK);
  }
  uv_update_time(&t.loop);
  int64_t t0 = (int64_t)uv_now(&t.loop);
  int64_t guard = mono_ms() + 20000;
  size_t taken = 0;
  while (mono_ms() < guard && taken < 200) {
    uv_update_time(&t.loop);
    struct qlevel lv;
    t.q->ops->level(t.q, 0, &lv);
    int64_t now = (int64_t)uv_now(&t.loop);
    if (lv.not_before_ms > now) {
      run_for(&t, (int)(lv.not_before_ms - now));
      continue;
    }
    struct sbatch *b = NULL;
    cr_assert_eq(t.q->ops->take(t.q, 0, 10, 1 << 20, &b), IOCD_OK);
    if (b) {
      taken += b->npoints;
      t.q->ops->confirm(t.q, 0, b);
      store__batch_free(b);
    }
    if (taken >= 100) {
      break;
    }
  }
  uv_update_time(&t.loop);
  int64_t took = (int64_t)uv_now(&t.loop) - t0;
  /* 100 points at 100 points/s, with a first burst of one batch. */
  cr_expect_geq(taken, 100);
  cr_expect_geq(took, 800, "100 points in %lld ms", (long long)took);
  cr_expect_leq(took, 2500, "100 points in %lld ms", (long long)took);
  jt_done(&t);
}
