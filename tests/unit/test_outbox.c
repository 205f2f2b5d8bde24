/*
 * The durable outbox (alerts/outbox.c) in a temporary directory: what is
 * put is on disk when outbox_put returns (a process that dies right after
 * leaves it for the next one), delivered notices leave, attempts survive a
 * restart, given-up ones move to dead/, unreadable files to bad/ (never
 * deleted), ids never repeat across restarts, and a full outbox gives up
 * its oldest notice.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alerts/notice.h"
#include "alerts/outbox.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/file.h"
#include "core/mem.h"

static char tmp[64];
static char dir[128];

static void setup(void) {
  snprintf(tmp, sizeof tmp, "%s", "/tmp/iocd-outbox-XXXXXX");
  cr_assert_not_null(mkdtemp(tmp));
  snprintf(dir, sizeof dir, "%s/outbox", tmp);
}

static void rm_rf(const char *path) {
  DIR *d = opendir(path);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        rm_rf(p);
      }
    }
    closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

static void teardown(void) {
  rm_rf(tmp);
}

TestSuite(outbox, .init = setup, .fini = teardown);

static struct outbox *open_ok(const struct outbox_opts *o) {
  struct iocd_err err = {{0}};
  struct outbox *ob = outbox_open(dir, o, &err);
  cr_assert_not_null(ob, "%s", err.msg);
  return ob;
}

/* A notice for receiver with one firing alert in district. */
static struct notice *make(struct outbox *ob, const char *receiver,
                           const char *district) {
  struct notice *n = notice_new();
  cr_assert_not_null(n);
  n->id = outbox_next_id(ob);
  n->receiver = mem_strdup(receiver);
  n->kind = NOTICE_ALERTS;
  n->created_ns = INT64_C(1796700000123456789);
  n->alerts = calloc(1, sizeof *n->alerts);
  n->nalerts = 1;
  struct notice_alert *a = &n->alerts[0];
  notice_labels_set(&a->labels, "alertname", "online_share_low");
  notice_labels_set(&a->labels, "district", district);
  a->fingerprint = notice_labels_fingerprint(&a->labels);
  a->starts_ns = INT64_C(1796690000000000007);
  a->has_value = true;
  a->value = 0.1061;
  return n;
}

static uint64_t put(struct outbox *ob, const char *receiver,
                    const char *district) {
  struct notice *n = make(ob, receiver, district);
  struct iocd_err err = {{0}};
  cr_assert_eq(outbox_put(ob, n, &err), IOCD_OK, "%s", err.msg);
  uint64_t id = n->id;
  notice_free(n);
  return id;
}

static bool exists(const char *sub, uint64_t id) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s%s%016llx.json", dir, sub, *sub ? "/" : "",
           (unsigned long long)id);
  struct stat st;
  return stat(p, &st) == 0;
}

static size_t count_files(const char *sub) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", dir, sub);
  DIR *d = opendir(p);
  cr_assert_not_null(d, "%s", p);
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    n += e->d_name[0] != '.';
  }
  closedir(d);
  return n;
}

static void write_text(const char *name, const char *text) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  cr_assert_eq(file_write_atomic(p, text, strlen(text), false), 0);
}

Test(outbox, a_put_notice_is_on_disk_when_put_returns_and_survives_a_crash) {
  /* The child puts and dies without closing anything; the parent opens the
   * directory as the next run would. */
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    struct outbox *ob = outbox_open(dir, NULL, NULL);
    if (!ob) {
      _exit(2);
    }
    struct notice *n = make(ob, "director", "Ea H'Leo");
    int rc = outbox_put(ob, n, NULL);
    _exit(rc == IOCD_OK ? 0 : 1);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  struct outbox *ob = open_ok(NULL);
  size_t n;
  const struct outbox_item *it = outbox_list(ob, &n);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(it[0].notice->receiver, "director");
  cr_assert_str_eq(
      notice_label_get(&it[0].notice->alerts[0].labels, "district"),
      "Ea H'Leo");
  cr_assert_eq(it[0].notice->alerts[0].value, 0.1061);
  cr_assert_eq(it[0].notice->alerts[0].starts_ns, INT64_C(1796690000000000007));
  cr_assert(it[0].durable);
  cr_assert_gt(outbox_bytes(ob), 0);
  outbox_close(ob);
}

Test(outbox, pending_notices_reload_in_id_order) {
  struct outbox *ob = open_ok(NULL);
  uint64_t a = put(ob, "ops", "Krông Búk");
  uint64_t b = put(ob, "ops", "Lắk");
  uint64_t c = put(ob, "director", "Buôn Ma Thuột");
  cr_assert(a < b && b < c);
  outbox_close(ob);

  ob = open_ok(NULL);
  size_t n;
  const struct outbox_item *it = outbox_list(ob, &n);
  cr_assert_eq(n, 3);
  cr_assert_eq(it[0].notice->id, a);
  cr_assert_eq(it[1].notice->id, b);
  cr_assert_eq(it[2].notice->id, c);
  cr_assert_str_eq(
      notice_label_get(&it[2].notice->alerts[0].labels, "district"),
      "Buôn Ma Thuột");
  cr_assert_not_null(outbox_get(ob, b));
  cr_assert_null(outbox_get(ob, c + 1));
  outbox_close(ob);
}

Test(outbox, a_delivered_notice_leaves_the_disk) {
  struct outbox *ob = open_ok(NULL);
  uint64_t a = put(ob, "ops", "Lắk");
  uint64_t b = put(ob, "ops", "Cư M'gar");
  cr_assert(exists("", a));
  struct iocd_err err = {{0}};
  cr_assert_eq(outbox_done(ob, a, &err), IOCD_OK, "%s", err.msg);
  cr_assert_not(exists("", a));
  cr_assert_eq(outbox_done(ob, a, &err), IOCD_ENOTFOUND);
  outbox_close(ob);

  ob = open_ok(NULL);
  size_t n;
  const struct outbox_item *it = outbox_list(ob, &n);
  cr_assert_eq(n, 1);
  cr_assert_eq(it[0].notice->id, b);
  outbox_close(ob);
}

Test(outbox, attempts_and_the_next_try_survive_a_restart) {
  struct outbox *ob = open_ok(NULL);
  uint64_t a = put(ob, "ops", "Lắk");
  struct iocd_err err = {{0}};
  cr_assert_eq(outbox_attempt(ob, a, 3, INT64_C(1796700009000000000), &err),
               IOCD_OK, "%s", err.msg);
  cr_assert_eq(outbox_get(ob, a)->notice->attempts, 3);
  cr_assert_eq(outbox_attempt(ob, a + 100, 1, 0, &err), IOCD_ENOTFOUND);
  outbox_close(ob);

  ob = open_ok(NULL);
  const struct outbox_item *it = outbox_get(ob, a);
  cr_assert_not_null(it);
  cr_assert_eq(it->notice->attempts, 3);
  cr_assert_eq(it->next_try_ns, INT64_C(1796700009000000000));
  outbox_close(ob);
}

Test(outbox, a_dead_letter_moves_to_dead_and_is_listed_after_a_restart) {
  struct outbox *ob = open_ok(NULL);
  uint64_t a = put(ob, "zalo", "Krông Pắc");
  struct iocd_err err = {{0}};
  cr_assert_eq(outbox_dead(ob, a,
                           "HTTP 200: error -216: Access token is "
                           "invalid",
                           &err),
               IOCD_OK, "%s", err.msg);
  cr_assert_not(exists("", a));
  cr_assert(exists("dead", a));
  size_t n;
  outbox_list(ob, &n);
  cr_assert_eq(n, 0);
  const struct outbox_dead *d = outbox_dead_list(ob, &n);
  cr_assert_eq(n, 1);
  cr_assert_eq(d[0].notice->id, a);
  outbox_close(ob);

  ob = open_ok(NULL);
  d = outbox_dead_list(ob, &n);
  cr_assert_eq(n, 1);
  cr_assert_eq(d[0].notice->id, a);
  cr_assert_str_eq(d[0].why, "HTTP 200: error -216: Access token is invalid");
  cr_assert_gt(d[0].dead_ns, 0);
  cr_assert_str_eq(notice_label_get(&d[0].notice->alerts[0].labels, "district"),
                   "Krông Pắc");
  outbox_list(ob, &n);
  cr_assert_eq(n, 0);
  outbox_close(ob);
}

Test(outbox, an_unreadable_file_moves_to_bad_and_the_others_load) {
  struct outbox *ob = open_ok(NULL);
  uint64_t good = put(ob, "ops", "Lắk");
  outbox_close(ob);
  write_text("00000000000000f1.json", "{not json");
  /* A notice whose id is not its name. */
  write_text("00000000000000f2.json",
             "{\"id\":\"00000000000000f3\",\"receiver\":\"ops\",\"kind\":"
             "\"alerts\"}");
  write_text("00000000000000f4.json", "");
  /* Not a notice file at all: left alone. */
  write_text("README", "hello");
  /* An interrupted write. */
  write_text("00000000000000f5.json.tmp", "{\"id\":");

  ob = open_ok(NULL);
  size_t n;
  const struct outbox_item *it = outbox_list(ob, &n);
  cr_assert_eq(n, 1);
  cr_assert_eq(it[0].notice->id, good);
  cr_assert_eq(count_files("bad"), 3);
  struct buf b;
  buf_init(&b, 0);
  char p[256];
  snprintf(p, sizeof p, "%s/bad/00000000000000f1.json", dir);
  cr_assert_eq(file_read(p, &b, NULL), IOCD_OK);
  cr_assert_str_eq(b.data, "{not json");
  buf_cleanup(&b);
  snprintf(p, sizeof p, "%s/README", dir);
  struct stat st;
  cr_assert_eq(stat(p, &st), 0);
  snprintf(p, sizeof p, "%s/00000000000000f5.json.tmp", dir);
  cr_assert_neq(stat(p, &st), 0);
  /* Ids seen in bad files are not handed out again either. */
  cr_assert_gt(outbox_next_id(ob), good);
  outbox_close(ob);

  /* A second corrupt file of the same name does not replace the first. */
  write_text("00000000000000f1.json", "[]");
  ob = open_ok(NULL);
  cr_assert_eq(count_files("bad"), 4);
  outbox_close(ob);
}

Test(outbox, ids_never_repeat_after_a_restart_even_when_all_were_sent) {
  struct outbox *ob = open_ok(NULL);
  uint64_t last = 0;
  for (int i = 0; i < 5; i++) {
    last = put(ob, "ops", "Lắk");
    cr_assert_eq(outbox_done(ob, last, NULL), IOCD_OK);
  }
  outbox_close(ob);
  ob = open_ok(NULL);
  size_t n;
  outbox_list(ob, &n);
  cr_assert_eq(n, 0);
  uint64_t next = outbox_next_id(ob);
  cr_assert_gt(next, last);
  outbox_close(ob);

  /* Without next_id, the files found still push the ids up. */
  ob = open_ok(NULL);
  uint64_t kept = put(ob, "ops", "Lắk");
  outbox_close(ob);
  char p[256];
  snprintf(p, sizeof p, "%s/next_id", dir);
  cr_assert_eq(unlink(p), 0);
  ob = open_ok(NULL);
  cr_assert_gt(outbox_next_id(ob), kept);
  outbox_close(ob);
}

Test(outbox, ids_counted_by_the_caller_are_not_handed_out_again) {
  struct outbox *ob = open_ok(NULL);
  uint64_t first = outbox_next_id(ob);
  uint64_t last = first + 3000;
  for (uint64_t id = first; id <= last; id += 500) {
    struct notice *n = make(ob, "ops", "Lắk");
    n->id = id;
    cr_assert_eq(outbox_put(ob, n, NULL), IOCD_OK);
    cr_assert_eq(outbox_done(ob, id, NULL), IOCD_OK);
    notice_free(n);
  }
  outbox_close(ob);
  ob = open_ok(NULL);
  cr_assert_gt(outbox_next_id(ob), last);
  outbox_close(ob);
}

struct evicted {
  uint64_t ids[8];
  size_t n;
  char why[64];
};

static void on_evict(void *ud, const struct notice *n, const char *why) {
  struct evicted *e = ud;
  e->ids[e->n++] = n->id;
  snprintf(e->why, sizeof e->why, "%s", why);
}

Test(outbox, a_full_outbox_gives_up_its_oldest_notice) {
  struct evicted ev = {{0}, 0, ""};
  struct outbox_opts o = {.max_files = 3, .on_evict = on_evict, .ud = &ev};
  struct outbox *ob = open_ok(&o);
  uint64_t a = put(ob, "ops", "1");
  uint64_t b = put(ob, "ops", "2");
  uint64_t c = put(ob, "ops", "3");
  cr_assert_eq(ev.n, 0);
  uint64_t d = put(ob, "ops", "4");
  cr_assert_eq(ev.n, 1);
  cr_assert_eq(ev.ids[0], a);
  cr_assert_str_eq(ev.why, "outbox full");
  cr_assert_eq(outbox_evicted(ob), 1);
  size_t n;
  const struct outbox_item *it = outbox_list(ob, &n);
  cr_assert_eq(n, 3);
  cr_assert_eq(it[0].notice->id, b);
  cr_assert_eq(it[2].notice->id, d);
  const struct outbox_dead *dl = outbox_dead_list(ob, &n);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(dl[0].why, "outbox full");
  cr_assert(exists("dead", a));
  cr_assert_not(exists("", a));
  (void)c;
  outbox_close(ob);
}

Test(outbox, the_byte_bound_counts_the_files) {
  struct evicted ev = {{0}, 0, ""};
  struct outbox_opts o = {.on_evict = on_evict, .ud = &ev};
  struct outbox *ob = open_ok(&o);
  put(ob, "ops", "1");
  size_t one = outbox_bytes(ob);
  outbox_close(ob);

  o.max_bytes = one * 2 + one / 2;
  ob = open_ok(&o);
  cr_assert_eq(outbox_bytes(ob), one);
  put(ob, "ops", "2");
  cr_assert_eq(ev.n, 0);
  put(ob, "ops", "3");
  cr_assert_eq(ev.n, 1);
  cr_assert_leq(outbox_bytes(ob), o.max_bytes);

  /* One notice larger than the whole outbox is refused, nothing given up. */
  o.max_bytes = one / 2;
  outbox_close(ob);
  ob = open_ok(&o);
  struct notice *n = make(ob, "ops", "Lắk");
  struct iocd_err err = {{0}};
  cr_assert_eq(outbox_put(ob, n, &err), IOCD_ETOOBIG);
  cr_assert_eq(ev.n, 1);
  notice_free(n);
  outbox_close(ob);
}

Test(outbox, a_notice_without_id_or_receiver_or_twice_is_refused) {
  struct outbox *ob = open_ok(NULL);
  struct notice *n = make(ob, "ops", "Lắk");
  struct iocd_err err = {{0}};
  cr_assert_eq(outbox_put(ob, n, &err), IOCD_OK);
  cr_assert_eq(outbox_put(ob, n, &err), IOCD_EINVAL);
  cr_assert_not_null(strstr(err.msg, "pending already"));
  n->id = 0;
  cr_assert_eq(outbox_put(ob, n, &err), IOCD_EINVAL);
  n->id = outbox_next_id(ob);
  free(n->receiver);
  n->receiver = NULL;
  cr_assert_eq(outbox_put(ob, n, &err), IOCD_EINVAL);
  notice_free(n);
  outbox_close(ob);
}

Test(outbox, only_the_newest_dead_letters_are_kept) {
  struct outbox_opts o = {.max_dead = 2};
  struct outbox *ob = open_ok(&o);
  uint64_t ids[3];
  for (int i = 0; i < 3; i++) {
    ids[i] = put(ob, "ops", "Lắk");
    cr_assert_eq(outbox_dead(ob, ids[i], "HTTP 400", NULL), IOCD_OK);
  }
  size_t n;
  const struct outbox_dead *d = outbox_dead_list(ob, &n);
  cr_assert_eq(n, 2);
  cr_assert_eq(d[0].notice->id, ids[1]);
  cr_assert_not(exists("dead", ids[0]));
  cr_assert(exists("dead", ids[2]));
  outbox_close(ob);
}

/* sync_later: a notice is on disk at once for the next run even when the
 * process dies before any fsync (the kernel keeps the page cache), and the
 * fsyncs come in outbox_sync, for every change since the last one. */
Test(outbox,
     with_sync_later_a_crash_loses_nothing_and_sync_collects_the_fsyncs) {
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    struct outbox_opts o = {.sync_later = true};
    struct outbox *ob = outbox_open(dir, &o, NULL);
    if (!ob) {
      _exit(2);
    }
    struct notice *n = make(ob, "ops", "Krông Búk");
    int rc = outbox_put(ob, n, NULL);
    _exit(rc == IOCD_OK && outbox_dirty(ob) ? 0 : 1);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  struct outbox_opts o = {.sync_later = true};
  struct outbox *ob = open_ok(&o);
  size_t n;
  const struct outbox_item *it = outbox_list(ob, &n);
  cr_assert_eq(n, 1, "the notice of the killed run is pending");
  cr_assert_not(outbox_dirty(ob));
  uint64_t first = it[0].notice->id;
  uint64_t b = put(ob, "ops", "Lắk");
  cr_assert(outbox_dirty(ob));
  struct iocd_err err = {{0}};
  cr_assert_eq(outbox_sync(ob, &err), IOCD_OK, "%s", err.msg);
  cr_assert_not(outbox_dirty(ob));
  cr_assert_eq(outbox_done(ob, first, &err), IOCD_OK, "%s", err.msg);
  cr_assert(outbox_dirty(ob), "a removal is a change of the directory");
  cr_assert_not(exists("", first));
  cr_assert_eq(outbox_dead(ob, b, "refused", &err), IOCD_OK, "%s", err.msg);
  cr_assert_eq(outbox_sync(ob, &err), IOCD_OK, "%s", err.msg);
  cr_assert_not(outbox_dirty(ob));
  cr_assert(exists("dead", b));
  outbox_close(ob);
}
