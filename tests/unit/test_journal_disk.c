/*
 * The journal (store/journal.c) on a disk that fills up, a real tmpfs of
 * 256 KiB mounted for each test (skipped when mounting is refused, as for
 * a user who is not root): once the outputs confirm what the full disk
 * holds, it frees itself, without the checkpoints (which need space of
 * their own) being written first, also when one segment fills the disk
 * alone, and nothing accepted is lost or sent twice on the way.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <uv.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/stats.h"
#include "store/journal_int.h"
#include "store/store_int.h"

/* ---- A journal on its own loop, on a small tmpfs ------------------------ */

struct jt {
  uv_loop_t loop;
  char dir[256];
  char mnt[300];
  char jdir[320];
  struct stats *stats;
  struct queue *q;
  struct journal_settings st;
  char *names[2];
  bool mounted;
};

/* The test's journal, for the fini when an assertion ends it early. */
static struct jt *current;

static void unmount(void) {
  if (current && current->mounted) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "umount -l '%s'; rm -rf '%s'", current->mnt,
             current->dir);
    if (system(cmd) != 0) {
      fprintf(stderr, "could not remove %s\n", current->dir);
    }
    current->mounted = false;
  }
  current = NULL;
}

static const char *hook_name(void *ud, uint32_t id) {
  struct jt *t = ud;
  return id < 2 ? t->names[id] : "";
}

static int hook_id(void *ud, const char *name, size_t len, uint32_t *id) {
  struct jt *t = ud;
  for (uint32_t i = 0; i < 2; i++) {
    if (strlen(t->names[i]) == len && memcmp(t->names[i], name, len) == 0) {
      *id = i;
      return IOCD_OK;
    }
  }
  cr_assert_fail("unknown source %.*s", (int)len, name);
  return IOCD_EINVAL;
}

static void hook_count(void *ud, uint32_t id, uint64_t points) {
  (void)ud;
  (void)id;
  (void)points;
}

/* A journal under a fresh 256 KiB tmpfs; skips the test when it cannot be
 * mounted. */
static void jt_init(struct jt *t, uint64_t segment_bytes) {
  memset(t, 0, sizeof *t);
  t->names[0] = "igate";
  t->names[1] = "idesk";
  cr_assert_eq(uv_loop_init(&t->loop), 0);
  snprintf(t->dir, sizeof t->dir, "/tmp/iocd-jdisk-XXXXXX");
  cr_assert_not_null(mkdtemp(t->dir));
  snprintf(t->mnt, sizeof t->mnt, "%s/mnt", t->dir);
  cr_assert_eq(mkdir(t->mnt, 0755), 0);
  char cmd[700];
  snprintf(cmd, sizeof cmd,
           "mount -t tmpfs -o size=256k tmpfs '%s' 2>/dev/null", t->mnt);
  if (system(cmd) != 0) {
    uv_loop_close(&t->loop);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    cr_expect_eq(system(cmd), 0);
    cr_skip_test("cannot mount a tmpfs here (needs root)");
  }
  t->mounted = true;
  current = t;
  snprintf(t->jdir, sizeof t->jdir, "%s/journal", t->mnt);
  t->st = (struct journal_settings){
      .dir = t->jdir,
      .segment_bytes = segment_bytes,
      .max_bytes = 64 << 20,
      .memory_bytes = 1 << 20,
      .fsync = JOURNAL_FSYNC_INTERVAL,
      .fsync_interval_ms = 100,
      .when_full = JOURNAL_FULL_PAUSE,
  };
}

static void jt_open(struct jt *t) {
  static const char *const outs[] = {"influxdb"};
  struct journal_hooks hooks = {
      .ud = t,
      .source_name = hook_name,
      .source_id = hook_id,
      .found = hook_count,
      .dropped = hook_count,
  };
  t->stats = stats_new();
  cr_assert_not_null(t->stats);
  struct iocd_err err = {{0}};
  t->q = store__journal_open(&t->loop, &t->st, outs, 1, &hooks, t->stats, &err);
  cr_assert_not_null(t->q, "open: %s", err.msg);
}

static void jt_close(struct jt *t) {
  t->q->ops->free(t->q);
  t->q = NULL;
  uv_run(&t->loop, UV_RUN_DEFAULT);
  stats_free(t->stats);
  t->stats = NULL;
}

static void jt_done(struct jt *t) {
  if (t->q) {
    jt_close(t);
  }
  cr_assert_eq(uv_loop_close(&t->loop), 0, "handles left open on the loop");
  char cmd[700];
  snprintf(cmd, sizeof cmd, "umount '%s'", t->mnt);
  cr_expect_eq(system(cmd), 0);
  t->mounted = false;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
  cr_expect_eq(system(cmd), 0);
}

static int64_t mono_ms(void) {
  return clock_mono_ns() / NS_PER_MS;
}

static void run_for(struct jt *t, int ms) {
  int64_t end = mono_ms() + ms;
  while (mono_ms() < end) {
    uv_run(&t->loop, UV_RUN_ONCE);
  }
}

/* Message k: 4 points whose field k says which message they belong to. */
static int append_msg(struct jt *t, unsigned k) {
  char lp[1024];
  uint32_t ends[4];
  size_t len = 0;
  for (uint32_t i = 0; i < 4; i++) {
    len += (size_t)snprintf(lp + len, sizeof lp - len,
                            "m,src=igate,pad=xxxxxxxxxxxxxxxx k=%ui,p=%ui %u\n",
                            k, i, 1000 + k);
    ends[i] = (uint32_t)len;
  }
  return t->q->ops->append(t->q, lp, len, ends, 4, 0,
                           (int64_t)uv_now(&t->loop));
}

/* Takes (and confirms when confirm) at most max_points points in one batch;
 * the message number of each point goes to ks. */
static size_t take(struct jt *t, size_t max_points, bool confirm, unsigned *ks,
                   size_t max) {
  struct sbatch *b = NULL;
  cr_assert_eq(t->q->ops->take(t->q, 0, max_points, 1 << 20, &b), IOCD_OK);
  if (!b) {
    return 0;
  }
  size_t n = 0;
  for (size_t i = 0; i < b->npoints && n < max; i++) {
    const char *k = strstr(b->body + b->line_off[i], " k=");
    cr_assert_not_null(k);
    ks[n++] = (unsigned)strtoul(k + 3, NULL, 10);
  }
  if (confirm) {
    t->q->ops->confirm(t->q, 0, b);
  }
  store__batch_free(b);
  return n;
}

/* Everything not taken yet, confirmed. */
static size_t take_all(struct jt *t, unsigned *ks, size_t max) {
  size_t n = 0, got;
  while ((got = take(t, 1000, true, ks + n, max - n)) > 0) {
    n += got;
  }
  return n;
}

/* Appends and writes messages 1, 2, ... until the disk refuses one; returns
 * the number of the first message that is only in memory. */
static unsigned fill_disk(struct jt *t) {
  unsigned k = 0;
  int rc = IOCD_OK;
  while (rc == IOCD_OK) {
    cr_assert_lt(k, 100000, "the disk never filled");
    cr_assert_eq(append_msg(t, ++k), IOCD_OK);
    rc = store__journal_flush(t->q);
  }
  cr_assert_eq(rc, IOCD_EIO);
  cr_assert_eq(t->q->ops->fill(t->q), 1.0, "a full disk pauses intake");
  return k;
}

static size_t count_segments(const struct jt *t) {
  DIR *d = opendir(t->jdir);
  cr_assert_not_null(d);
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strstr(e->d_name, ".seg")) {
      n++;
    }
  }
  closedir(d);
  return n;
}

static double used_share(const struct jt *t) {
  struct statvfs sv;
  cr_assert_eq(statvfs(t->mnt, &sv), 0);
  return 1.0 - (double)sv.f_bfree / (double)sv.f_blocks;
}

static uint64_t no_space_count(struct jt *t) {
  struct metric *m = stats_find(t->stats, "iocd_journal_no_space_total", NULL);
  if (!m) {
    cr_expect_fail("iocd_journal_no_space_total is not registered");
    return 0;
  }
  return m->count;
}

static uint64_t read_ckpt(const struct jt *t) {
  char path[400];
  snprintf(path, sizeof path, "%s/checkpoint.influxdb", t->jdir);
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "%s", path);
  char text[32] = "";
  cr_assert_not_null(fgets(text, sizeof text, f));
  fclose(f);
  return strtoull(text, NULL, 10);
}

/* ---- Tests ---------------------------------------------------------------
 */

Test(journal_disk, confirmed_segments_go_when_no_checkpoint_can_be_written,
     .fini = unmount) {
  struct jt t;
  jt_init(&t, 16 << 10);
  jt_open(&t);
  unsigned first_in_memory = fill_disk(&t);
  cr_assert_gt(count_segments(&t), 4);
  cr_expect_geq(no_space_count(&t), 1);
  /* Everything is written to InfluxDB and confirmed: the checkpoint, which
   * needs a block of its own, cannot be written on the full disk. */
  unsigned ks[8192];
  size_t n = take_all(&t, ks, 8192);
  cr_assert_eq(n, 4 * first_in_memory);
  run_for(&t, 1300);
  cr_expect_lt(t.q->ops->fill(t.q), 1.0, "intake stays paused");
  cr_expect_leq(count_segments(&t), 1, "%zu segments left", count_segments(&t));
  cr_expect_lt(used_share(&t), 0.5, "the disk stays %.0f%% full",
               100 * used_share(&t));
  /* With the space back, the checkpoint follows. */
  run_for(&t, 1300);
  cr_expect_eq(read_ckpt(&t), first_in_memory + 1);
  cr_assert_eq(append_msg(&t, first_in_memory + 1), IOCD_OK);
  jt_close(&t);
  /* Only the message appended last was not confirmed. */
  jt_open(&t);
  n = take_all(&t, ks, 8192);
  cr_expect_eq(n, 4);
  cr_expect_eq(ks[0], first_in_memory + 1);
  jt_done(&t);
}

Test(journal_disk, a_segment_that_fills_the_disk_alone_is_replaced,
     .fini = unmount) {
  struct jt t;
  /* Segments larger than the disk: the one being written fills it. */
  jt_init(&t, 1 << 20);
  jt_open(&t);
  unsigned first_in_memory = fill_disk(&t);
  cr_assert_eq(count_segments(&t), 1);
  /* More messages wait in memory while the disk is full. */
  for (unsigned k = first_in_memory + 1; k <= first_in_memory + 5; k++) {
    cr_assert_eq(append_msg(&t, k), IOCD_OK);
  }
  /* InfluxDB confirms what is in the file; what is only in memory is not
   * even taken yet. */
  unsigned ks[8192];
  size_t n = take(&t, 4 * (first_in_memory - 1), true, ks, 8192);
  cr_assert_eq(n, 4 * (first_in_memory - 1));
  cr_assert_eq(ks[n - 1], first_in_memory - 1);
  run_for(&t, 1300);
  cr_expect_lt(t.q->ops->fill(t.q), 1.0, "intake stays paused");
  cr_expect_lt(used_share(&t), 0.5, "the disk stays %.0f%% full",
               100 * used_share(&t));
  cr_expect_eq(count_segments(&t), 1);
  /* The messages that waited in memory come next, in order, once. */
  n = take_all(&t, ks, 8192);
  cr_assert_eq(n, 4 * 6);
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq(ks[i], first_in_memory + i / 4);
  }
  /* Three more, not confirmed: after a restart exactly they come back. */
  for (unsigned k = first_in_memory + 6; k <= first_in_memory + 8; k++) {
    cr_assert_eq(append_msg(&t, k), IOCD_OK);
  }
  jt_close(&t);
  jt_open(&t);
  struct metric *corrupt =
      stats_find(t.stats, "iocd_journal_corrupt_records_total", NULL);
  cr_assert_not_null(corrupt);
  cr_expect_eq(corrupt->count, 0);
  n = take_all(&t, ks, 8192);
  cr_assert_eq(n, 4 * 3);
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq(ks[i], first_in_memory + 6 + i / 4);
  }
  jt_done(&t);
}

Test(journal_disk, opens_on_a_full_disk_and_frees_it_once_confirmed,
     .fini = unmount) {
  struct jt t;
  jt_init(&t, 16 << 10);
  jt_open(&t);
  unsigned first_in_memory = fill_disk(&t);
  /* Stopped while the disk is full: the message only in memory is lost
   * (and logged), the checkpoint cannot be saved. */
  jt_close(&t);
  /* Started again on the same full disk. */
  jt_open(&t);
  unsigned ks[8192];
  size_t n = take_all(&t, ks, 8192);
  cr_assert_eq(n, 4 * (first_in_memory - 1));
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq(ks[i], 1 + i / 4);
  }
  run_for(&t, 1300);
  cr_expect_lt(used_share(&t), 0.5, "the disk stays %.0f%% full",
               100 * used_share(&t));
  cr_assert_eq(append_msg(&t, first_in_memory), IOCD_OK);
  cr_expect_eq(store__journal_flush(t.q), IOCD_OK);
  cr_expect_lt(t.q->ops->fill(t.q), 1.0);
  jt_done(&t);
}
