/*
 * The durable outbox (outbox.h). Each pending notice is one file holding
 * its JSON form (notice_json.c) with two more members the outbox owns:
 * "next_try_ns" (when a retry is due) and, in dead/, "dead_reason" and
 * "dead_ns". Files are replaced with file_write_atomic (write, rename),
 * so a file is always a whole notice; a crash between the write and the
 * send sends it after the restart, which is the only way a receiver may
 * see a notification twice. The fsyncs that make a change survive a power
 * loss come with each change, or (sync_later) in outbox_sync for every
 * change since the last one: the files written, then the directories.
 *
 * Ids come from a counter whose high-water mark is kept in next_id a block
 * at a time (one fsync per block), so a delivered notice whose file is gone
 * does not give its id to a later one after a restart.
 */
#include "alerts/outbox.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/log.h"
#include "core/mem.h"

#define LOG_MOD "alerts"
/* A notice file larger than this is not one the outbox wrote. */
#define FILE_MAX ((size_t)16 << 20)
/* Ids reserved in next_id per write. */
#define ID_BLOCK 1024
/* "0123456789abcdef.json" */
#define NAME_LEN 21

struct outbox {
  char *dir;
  char *dead_dir;
  char *bad_dir;
  char *mark_path;
  struct outbox_opts opts;
  struct outbox_item *items; /* pending, by id */
  size_t n, cap;
  size_t bytes;
  struct outbox_dead *dead; /* by id */
  size_t ndead, cap_dead;
  uint64_t next_id;  /* the next id to hand out */
  uint64_t reserved; /* ids below it are covered by next_id on disk */
  uint64_t evicted;
  /* sync_later: pending files written and directories changed since the
   * last outbox_sync. */
  uint64_t *unsynced;
  size_t nunsynced, cap_unsynced;
  bool dir_unsynced, dead_unsynced;
};

/* A change to be made durable: at once, or at the next outbox_sync. */
static void dir_changed(struct outbox *ob, const char *dir) {
  if (!ob->opts.sync_later) {
    file_sync_dir(dir);
  } else if (dir == ob->dead_dir) {
    ob->dead_unsynced = true;
  } else {
    ob->dir_unsynced = true;
  }
}

/* ---- names and files ---- */

static char *join(const char *dir, const char *name) {
  struct buf b;
  buf_init(&b, 0);
  if (buf_printf(&b, "%s/%s", dir, name) != IOCD_OK) {
    buf_cleanup(&b);
    return NULL;
  }
  return buf_detach(&b, NULL);
}

/* dir/<id>.json into out. */
static int id_path(const char *dir, uint64_t id, struct buf *out) {
  buf_reset(out);
  return buf_printf(out, "%s/%016" PRIx64 ".json", dir, id);
}

/* True when name is 16 lowercase hex digits and ".json"; *id is the id. */
static bool parse_name(const char *name, uint64_t *id) {
  if (strlen(name) != NAME_LEN || strcmp(name + 16, ".json") != 0) {
    return false;
  }
  uint64_t x = 0;
  for (int i = 0; i < 16; i++) {
    char c = name[i];
    unsigned d;
    if (c >= '0' && c <= '9') {
      d = (unsigned)(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = (unsigned)(c - 'a' + 10);
    } else {
      return false;
    }
    x = x << 4 | d;
  }
  *id = x;
  return true;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The file form: the notice's JSON with the outbox's own members added
 * before its closing brace, and a newline. */
static int encode(const struct notice *n, int64_t next_try_ns, const char *why,
                  int64_t dead_ns, struct buf *out) {
  buf_reset(out);
  int rc = notice_to_json(n, out);
  if (rc) {
    return rc;
  }
  if (out->len == 0 || out->data[out->len - 1] != '}') {
    return IOCD_EINVAL;
  }
  buf_truncate(out, out->len - 1);
  if (next_try_ns) {
    rc = buf_printf(out, ",\"next_try_ns\":\"%" PRId64 "\"", next_try_ns);
  }
  if (!rc && why) {
    cJSON *s = cJSON_CreateString(why);
    char *text = s ? cJSON_PrintUnformatted(s) : NULL;
    cJSON_Delete(s);
    if (!text) {
      return IOCD_ENOMEM;
    }
    rc = buf_printf(out, ",\"dead_reason\":%s,\"dead_ns\":\"%" PRId64 "\"",
                    text, dead_ns);
    cJSON_free(text);
  }
  if (!rc) {
    rc = buf_puts(out, "}\n");
  }
  return rc;
}

/* The outbox's members of a file (notice_from_json ignores them). */
static int64_t extra_i64(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  if (!cJSON_IsString(v)) {
    return 0;
  }
  errno = 0;
  char *end;
  long long x = strtoll(v->valuestring, &end, 10);
  return *end == '\0' && errno == 0 ? (int64_t)x : 0;
}

/* Reads path as a notice with id want. On success *n is the notice and
 * *next_try_ns, *why (malloc'd, NULL when absent) and *dead_ns the outbox's
 * members (why and dead_ns may be NULL when not wanted); *bytes the size.
 * Returns IOCD_OK, IOCD_ENOMEM, or another code with err saying why the
 * file is no notice. */
static int decode_file(const char *path, uint64_t want, struct notice **n,
                       int64_t *next_try_ns, char **why, int64_t *dead_ns,
                       size_t *bytes, struct iocd_err *err) {
  struct buf b;
  buf_init(&b, FILE_MAX);
  int rc = file_read(path, &b, err);
  if (!rc) {
    rc = notice_from_json(b.data ? b.data : "", b.len, n, err);
  }
  if (!rc && (*n)->id != want) {
    rc = iocd_err_set(err, IOCD_ECORRUPT,
                      "notice: id %016" PRIx64 " is not the file's name",
                      (*n)->id);
  }
  if (!rc && !(*n)->receiver) {
    rc = iocd_err_set(err, IOCD_ECORRUPT, "notice: no receiver");
  }
  if (!rc) {
    cJSON *o = cJSON_ParseWithLength(b.data, b.len);
    if (!o) {
      rc = iocd_err_set(err, IOCD_ENOMEM, "out of memory");
    } else {
      *next_try_ns = extra_i64(o, "next_try_ns");
      if (dead_ns) {
        *dead_ns = extra_i64(o, "dead_ns");
      }
      const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "dead_reason");
      if (why && cJSON_IsString(r)) {
        *why = mem_strdup(r->valuestring);
        if (!*why) {
          rc = iocd_err_set(err, IOCD_ENOMEM, "out of memory");
        }
      }
      cJSON_Delete(o);
    }
  }
  if (rc) {
    notice_free(*n);
    *n = NULL;
  }
  *bytes = b.len;
  buf_cleanup(&b);
  return rc;
}

/* Moves dir/name to bad/, under a name not taken there yet. */
static void move_bad(struct outbox *ob, const char *dir, const char *name,
                     const char *why) {
  char *from = join(dir, name);
  struct buf to;
  buf_init(&to, 0);
  if (!from || buf_printf(&to, "%s/%s", ob->bad_dir, name) != IOCD_OK) {
    log_error(LOG_MOD, "outbox: %s/%s: %s; left there (out of memory)", dir,
              name, why);
    free(from);
    buf_cleanup(&to);
    return;
  }
  struct stat st;
  for (int k = 1; lstat(to.data, &st) == 0 && k < 1000; k++) {
    buf_reset(&to);
    buf_printf(&to, "%s/%s.%d", ob->bad_dir, name, k);
  }
  if (rename(from, to.data) != 0) {
    log_error(LOG_MOD, "outbox: %s: %s; cannot move it to %s: %s", from, why,
              ob->bad_dir, strerror(errno));
  } else {
    file_sync_dir(ob->bad_dir);
    file_sync_dir(dir);
    log_warn(LOG_MOD, "outbox: %s: %s; moved to %s", from, why, to.data);
  }
  free(from);
  buf_cleanup(&to);
}

/* ---- the arrays ---- */

/* The index of id among items, or where it would go (*found false). */
static size_t find(const struct outbox *ob, uint64_t id, bool *found) {
  size_t lo = 0, hi = ob->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    uint64_t x = ob->items[mid].notice->id;
    if (x == id) {
      *found = true;
      return mid;
    }
    if (x < id) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  *found = false;
  return lo;
}

static int insert_item(struct outbox *ob, const struct outbox_item *it) {
  bool found;
  size_t i = find(ob, it->notice->id, &found);
  if (found) {
    return IOCD_EINVAL;
  }
  if (mem_grow((void **)&ob->items, &ob->cap, ob->n, sizeof *ob->items)) {
    return IOCD_ENOMEM;
  }
  memmove(&ob->items[i + 1], &ob->items[i], (ob->n - i) * sizeof *ob->items);
  ob->items[i] = *it;
  ob->n++;
  ob->bytes += it->bytes;
  return IOCD_OK;
}

/* Takes items[i] out of the array; the caller owns its notice. */
static struct outbox_item take_item(struct outbox *ob, size_t i) {
  struct outbox_item it = ob->items[i];
  memmove(&ob->items[i], &ob->items[i + 1],
          (ob->n - i - 1) * sizeof *ob->items);
  ob->n--;
  ob->bytes -= it.bytes;
  return it;
}

static int dead_cmp(const void *a, const void *b) {
  uint64_t x = ((const struct outbox_dead *)a)->notice->id;
  uint64_t y = ((const struct outbox_dead *)b)->notice->id;
  return x < y ? -1 : x > y;
}

static int item_cmp(const void *a, const void *b) {
  uint64_t x = ((const struct outbox_item *)a)->notice->id;
  uint64_t y = ((const struct outbox_item *)b)->notice->id;
  return x < y ? -1 : x > y;
}

/* Removes dead letters past max_dead, oldest first. */
static void prune_dead(struct outbox *ob) {
  size_t over =
      ob->ndead > ob->opts.max_dead ? ob->ndead - ob->opts.max_dead : 0;
  if (over == 0) {
    return;
  }
  struct buf path;
  buf_init(&path, 0);
  for (size_t i = 0; i < over; i++) {
    struct outbox_dead *d = &ob->dead[i];
    if (id_path(ob->dead_dir, d->notice->id, &path) == IOCD_OK &&
        unlink(path.data) != 0 && errno != ENOENT) {
      log_error(LOG_MOD, "outbox: cannot remove %s: %s", path.data,
                strerror(errno));
    }
    log_info(LOG_MOD,
             "outbox: dead letter %016" PRIx64
             " removed: more than %zu are kept",
             d->notice->id, ob->opts.max_dead);
    notice_free(d->notice);
    free(d->why);
  }
  memmove(ob->dead, ob->dead + over, (ob->ndead - over) * sizeof *ob->dead);
  ob->ndead -= over;
  file_sync_dir(ob->dead_dir);
  buf_cleanup(&path);
}

/* ---- loading ---- */

static void load_one(struct outbox *ob, const char *dir, const char *name,
                     bool dead, uint64_t id) {
  char *path = join(dir, name);
  if (!path) {
    return;
  }
  struct iocd_err err = {{0}};
  struct notice *n = NULL;
  int64_t next_try = 0, dead_ns = 0;
  char *why = NULL;
  size_t bytes = 0;
  int rc = decode_file(path, id, &n, &next_try, dead ? &why : NULL,
                       dead ? &dead_ns : NULL, &bytes, &err);
  free(path);
  if (rc == IOCD_ENOMEM) {
    log_error(LOG_MOD, "outbox: %s/%s: out of memory; left for the next run",
              dir, name);
    return;
  }
  if (rc) {
    move_bad(ob, dir, name, err.msg);
    return;
  }
  if (id >= ob->next_id) {
    ob->next_id = id + 1;
  }
  if (dead) {
    if (mem_grow((void **)&ob->dead, &ob->cap_dead, ob->ndead,
                 sizeof *ob->dead) == IOCD_OK) {
      ob->dead[ob->ndead++] = (struct outbox_dead){n, why, dead_ns};
      return;
    }
  } else {
    struct outbox_item it = {n, next_try, bytes, true};
    if (mem_grow((void **)&ob->items, &ob->cap, ob->n, sizeof *ob->items) ==
        IOCD_OK) {
      ob->items[ob->n++] = it;
      ob->bytes += bytes;
      return;
    }
  }
  log_error(LOG_MOD, "outbox: %s/%s: out of memory; left for the next run", dir,
            name);
  notice_free(n);
  free(why);
}

/* Loads every notice file of dir. */
static int load_dir(struct outbox *ob, const char *dir, bool dead,
                    struct iocd_err *err) {
  DIR *d = opendir(dir);
  if (!d) {
    return iocd_err_set(err, IOCD_EIO, "outbox %s: cannot read: %s", dir,
                        strerror(errno));
  }
  struct dirent *e;
  bool removed = false;
  while ((e = readdir(d)) != NULL) {
    const char *name = e->d_name;
    if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]))) {
      continue;
    }
    char *path = join(dir, name);
    struct stat st;
    if (!path || lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
      free(path);
      continue;
    }
    uint64_t id;
    if (parse_name(name, &id)) {
      load_one(ob, dir, name, dead, id);
    } else if (ends_with(name, ".tmp")) {
      /* An interrupted write: its notice was never put, so never sent. */
      if (unlink(path) == 0) {
        removed = true;
        log_info(LOG_MOD, "outbox: %s removed (an interrupted write)", path);
      }
    } else if (dead || strcmp(name, "next_id") != 0) {
      log_warn(LOG_MOD, "outbox: %s is not a notice file; left alone", path);
    }
    free(path);
  }
  closedir(d);
  if (removed) {
    file_sync_dir(dir);
  }
  return IOCD_OK;
}

/* Reads next_id's mark; a file that is not one goes to bad/. */
static void load_mark(struct outbox *ob) {
  struct buf b;
  buf_init(&b, 64);
  struct iocd_err err = {{0}};
  struct stat st;
  if (lstat(ob->mark_path, &st) != 0) {
    buf_cleanup(&b);
    return;
  }
  int rc = file_read(ob->mark_path, &b, &err);
  uint64_t mark = 0;
  bool ok = false;
  if (!rc && b.len == 17 && b.data[16] == '\n') {
    char name[NAME_LEN + 1];
    memcpy(name, b.data, 16);
    memcpy(name + 16, ".json", 6);
    ok = parse_name(name, &mark);
  }
  buf_cleanup(&b);
  if (!ok) {
    move_bad(ob, ob->dir, "next_id",
             rc ? err.msg : "not 16 hex digits and a newline");
    return;
  }
  ob->reserved = mark;
  if (mark > ob->next_id) {
    ob->next_id = mark;
  }
}

struct outbox *outbox_open(const char *dir, const struct outbox_opts *opts,
                           struct iocd_err *err) {
  struct outbox *ob = calloc(1, sizeof *ob);
  if (!ob) {
    iocd_err_set(err, IOCD_ENOMEM, "outbox %s: out of memory", dir);
    return NULL;
  }
  if (opts) {
    ob->opts = *opts;
  }
  if (!ob->opts.max_files) {
    ob->opts.max_files = OUTBOX_DEFAULT_MAX_FILES;
  }
  if (!ob->opts.max_bytes) {
    ob->opts.max_bytes = OUTBOX_DEFAULT_MAX_BYTES;
  }
  if (!ob->opts.max_dead) {
    ob->opts.max_dead = OUTBOX_DEFAULT_MAX_DEAD;
  }
  ob->next_id = 1;
  ob->dir = mem_strdup(dir);
  ob->dead_dir = join(dir, "dead");
  ob->bad_dir = join(dir, "bad");
  ob->mark_path = join(dir, "next_id");
  if (!ob->dir || !ob->dead_dir || !ob->bad_dir || !ob->mark_path) {
    outbox_close(ob);
    iocd_err_set(err, IOCD_ENOMEM, "outbox %s: out of memory", dir);
    return NULL;
  }
  const char *dirs[] = {ob->dead_dir, ob->bad_dir};
  for (size_t i = 0; i < 2; i++) {
    int e = file_mkdirs(dirs[i]);
    if (e) {
      iocd_err_set(err, IOCD_EIO, "outbox %s: cannot create it: %s", dirs[i],
                   strerror(e));
      outbox_close(ob);
      return NULL;
    }
  }
  if (load_dir(ob, ob->dir, false, err) ||
      load_dir(ob, ob->dead_dir, true, err)) {
    outbox_close(ob);
    return NULL;
  }
  load_mark(ob);
  if (ob->n > 1) {
    qsort(ob->items, ob->n, sizeof *ob->items, item_cmp);
  }
  if (ob->ndead > 1) {
    qsort(ob->dead, ob->ndead, sizeof *ob->dead, dead_cmp);
  }
  prune_dead(ob);
  return ob;
}

void outbox_close(struct outbox *ob) {
  if (!ob) {
    return;
  }
  for (size_t i = 0; i < ob->n; i++) {
    notice_free(ob->items[i].notice);
  }
  for (size_t i = 0; i < ob->ndead; i++) {
    notice_free(ob->dead[i].notice);
    free(ob->dead[i].why);
  }
  free(ob->items);
  free(ob->dead);
  free(ob->dir);
  free(ob->dead_dir);
  free(ob->bad_dir);
  free(ob->mark_path);
  free(ob->unsynced);
  free(ob);
}

/* Makes sure next_id on disk is past id: a block further when it is not. */
static void reserve(struct outbox *ob, uint64_t id) {
  if (id >= ob->next_id) {
    ob->next_id = id + 1;
  }
  if (id >= ob->reserved) {
    uint64_t mark = id + ID_BLOCK;
    char text[18];
    snprintf(text, sizeof text, "%016" PRIx64 "\n", mark);
    int e = file_write_atomic(ob->mark_path, text, 17, true);
    if (e) {
      log_error(LOG_MOD,
                "outbox: cannot write %s: %s; notification ids may repeat "
                "after a restart",
                ob->mark_path, strerror(e));
    } else {
      ob->reserved = mark;
    }
  }
}

uint64_t outbox_next_id(struct outbox *ob) {
  uint64_t id = ob->next_id;
  reserve(ob, id);
  return id;
}

/* ---- changes ---- */

/* Writes items[i]'s pending file. */
static int write_item(struct outbox *ob, struct outbox_item *it,
                      struct iocd_err *err) {
  struct buf text, path;
  buf_init(&text, 0);
  buf_init(&path, 0);
  int rc = encode(it->notice, it->next_try_ns, NULL, 0, &text);
  if (!rc) {
    rc = id_path(ob->dir, it->notice->id, &path);
  }
  if (rc) {
    rc = iocd_err_set(err, rc, "outbox: notice %016" PRIx64 ": %s",
                      it->notice->id, iocd_strerror(rc));
  } else {
    int e =
        file_write_atomic(path.data, text.data, text.len, !ob->opts.sync_later);
    if (e) {
      rc = iocd_err_set(err, IOCD_EIO, "outbox: cannot write %s: %s", path.data,
                        strerror(e));
    } else if (ob->opts.sync_later) {
      ob->dir_unsynced = true;
      if (mem_grow((void **)&ob->unsynced, &ob->cap_unsynced, ob->nunsynced,
                   sizeof *ob->unsynced) == IOCD_OK) {
        ob->unsynced[ob->nunsynced++] = it->notice->id;
      } else {
        /* Without memory to note it, the file is made durable now. */
        int fd = open(path.data, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
          fsync(fd);
          close(fd);
        }
      }
    }
  }
  if (!rc) {
    ob->bytes = ob->bytes - it->bytes + text.len;
    it->bytes = text.len;
    it->durable = true;
  }
  buf_cleanup(&text);
  buf_cleanup(&path);
  return rc;
}

/* Moves items[i] to dead/ and the dead list. */
static int move_dead(struct outbox *ob, size_t i, const char *why,
                     struct iocd_err *err) {
  struct outbox_item it = take_item(ob, i);
  struct notice *n = it.notice;
  int64_t now = clock_realtime_ns();
  struct buf text, path;
  buf_init(&text, 0);
  buf_init(&path, 0);
  char *owned_why = mem_strdup(why);
  int rc = owned_why ? encode(n, 0, why, now, &text) : IOCD_ENOMEM;
  if (!rc) {
    rc = id_path(ob->dead_dir, n->id, &path);
  }
  if (rc) {
    rc = iocd_err_set(err, rc, "outbox: notice %016" PRIx64 ": %s", n->id,
                      iocd_strerror(rc));
  } else {
    int e =
        file_write_atomic(path.data, text.data, text.len, !ob->opts.sync_later);
    if (!e && ob->opts.sync_later) {
      ob->dead_unsynced = true;
    }
    if (e) {
      /* The pending file stays: the next run finds it at its last attempt
       * and gives up on it again. */
      rc = iocd_err_set(err, IOCD_EIO, "outbox: cannot write %s: %s", path.data,
                        strerror(e));
    } else if (id_path(ob->dir, n->id, &path) == IOCD_OK &&
               unlink(path.data) != 0 && errno != ENOENT) {
      rc = iocd_err_set(err, IOCD_EIO, "outbox: cannot remove %s: %s",
                        path.data, strerror(errno));
    } else {
      dir_changed(ob, ob->dir);
    }
  }
  buf_cleanup(&text);
  buf_cleanup(&path);
  if (rc || mem_grow((void **)&ob->dead, &ob->cap_dead, ob->ndead,
                     sizeof *ob->dead) != IOCD_OK) {
    notice_free(n);
    free(owned_why);
    return rc ? rc : IOCD_ENOMEM;
  }
  /* Ids grow, so the dead list stays in id order but for an old notice
   * given up on after a newer one: insert in place. */
  size_t k = ob->ndead;
  while (k > 0 && ob->dead[k - 1].notice->id > n->id) {
    k--;
  }
  memmove(&ob->dead[k + 1], &ob->dead[k], (ob->ndead - k) * sizeof *ob->dead);
  ob->dead[k] = (struct outbox_dead){n, owned_why, now};
  ob->ndead++;
  prune_dead(ob);
  return IOCD_OK;
}

int outbox_put(struct outbox *ob, const struct notice *n,
               struct iocd_err *err) {
  bool found;
  if (n->id == 0 || !n->receiver) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "outbox: a notice needs an id and a receiver");
  }
  find(ob, n->id, &found);
  if (found) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "outbox: notice %016" PRIx64 " is pending already",
                        n->id);
  }
  /* Ids may come from a counter of the caller's (started at
   * outbox_next_id): they are reserved all the same. */
  reserve(ob, n->id);
  struct outbox_item it = {notice_dup(n), 0, 0, false};
  struct buf text;
  buf_init(&text, 0);
  int rc = it.notice ? encode(it.notice, 0, NULL, 0, &text) : IOCD_ENOMEM;
  if (rc) {
    notice_free(it.notice);
    buf_cleanup(&text);
    return iocd_err_set(err, rc, "outbox: %s", iocd_strerror(rc));
  }
  size_t need = text.len;
  buf_cleanup(&text);
  if (need > ob->opts.max_bytes) {
    notice_free(it.notice);
    return iocd_err_set(err, IOCD_ETOOBIG,
                        "outbox: notice %016" PRIx64
                        " is larger (%zu bytes) than the outbox (%zu)",
                        n->id, need, ob->opts.max_bytes);
  }
  while (ob->n > 0 && (ob->n + 1 > ob->opts.max_files ||
                       ob->bytes + need > ob->opts.max_bytes)) {
    struct notice *old = notice_dup(ob->items[0].notice);
    struct iocd_err derr = {{0}};
    uint64_t old_id = ob->items[0].notice->id;
    if (move_dead(ob, 0, "outbox full", &derr) != IOCD_OK) {
      log_error(LOG_MOD, "outbox: notice %016" PRIx64 " dropped: %s", old_id,
                derr.msg);
    }
    ob->evicted++;
    if (ob->n + 1 > ob->opts.max_files) {
      log_warn(LOG_MOD,
               "outbox full (%zu notifications, the most it keeps): "
               "notification %016" PRIx64 " to %s given up",
               ob->opts.max_files, old_id,
               old && old->receiver ? old->receiver : "?");
    } else {
      log_warn(LOG_MOD,
               "outbox full (%zu bytes, the most it keeps): notification "
               "%016" PRIx64 " to %s given up",
               ob->opts.max_bytes, old_id,
               old && old->receiver ? old->receiver : "?");
    }
    if (old && ob->opts.on_evict) {
      ob->opts.on_evict(ob->opts.ud, old, "outbox full");
    }
    notice_free(old);
  }
  rc = insert_item(ob, &it);
  if (rc) {
    notice_free(it.notice);
    return iocd_err_set(err, rc, "outbox: %s", iocd_strerror(rc));
  }
  bool at;
  struct outbox_item *p = &ob->items[find(ob, n->id, &at)];
  return write_item(ob, p, err);
}

const struct outbox_item *outbox_get(const struct outbox *ob, uint64_t id) {
  bool found;
  size_t i = find(ob, id, &found);
  return found ? &ob->items[i] : NULL;
}

int outbox_done(struct outbox *ob, uint64_t id, struct iocd_err *err) {
  bool found;
  size_t i = find(ob, id, &found);
  if (!found) {
    return IOCD_ENOTFOUND;
  }
  struct outbox_item it = take_item(ob, i);
  notice_free(it.notice);
  struct buf path;
  buf_init(&path, 0);
  int rc = id_path(ob->dir, id, &path);
  if (!rc) {
    if (unlink(path.data) != 0 && errno != ENOENT) {
      rc = iocd_err_set(err, IOCD_EIO, "outbox: cannot remove %s: %s",
                        path.data, strerror(errno));
    } else if (ob->opts.sync_later) {
      ob->dir_unsynced = true;
    } else {
      int e = file_sync_dir(ob->dir);
      if (e) {
        rc = iocd_err_set(err, IOCD_EIO, "outbox %s: fsync: %s", ob->dir,
                          strerror(e));
      }
    }
  } else {
    rc = iocd_err_set(err, rc, "outbox: %s", iocd_strerror(rc));
  }
  buf_cleanup(&path);
  return rc;
}

int outbox_attempt(struct outbox *ob, uint64_t id, int attempts,
                   int64_t next_try_ns, struct iocd_err *err) {
  bool found;
  size_t i = find(ob, id, &found);
  if (!found) {
    return IOCD_ENOTFOUND;
  }
  struct outbox_item *it = &ob->items[i];
  it->notice->attempts = attempts;
  it->next_try_ns = next_try_ns;
  return write_item(ob, it, err);
}

int outbox_dead(struct outbox *ob, uint64_t id, const char *why,
                struct iocd_err *err) {
  bool found;
  size_t i = find(ob, id, &found);
  if (!found) {
    return IOCD_ENOTFOUND;
  }
  return move_dead(ob, i, why ? why : "", err);
}

const struct outbox_item *outbox_list(const struct outbox *ob, size_t *n) {
  *n = ob->n;
  return ob->items;
}

const struct outbox_dead *outbox_dead_list(const struct outbox *ob, size_t *n) {
  *n = ob->ndead;
  return ob->dead;
}

size_t outbox_bytes(const struct outbox *ob) {
  return ob->bytes;
}

uint64_t outbox_evicted(const struct outbox *ob) {
  return ob->evicted;
}

bool outbox_dirty(const struct outbox *ob) {
  return ob->nunsynced > 0 || ob->dir_unsynced || ob->dead_unsynced;
}

int outbox_sync(struct outbox *ob, struct iocd_err *err) {
  int rc = IOCD_OK;
  struct buf path;
  buf_init(&path, 0);
  size_t keep = 0;
  for (size_t i = 0; i < ob->nunsynced; i++) {
    bool found;
    find(ob, ob->unsynced[i], &found);
    if (!found || id_path(ob->dir, ob->unsynced[i], &path) != IOCD_OK) {
      continue; /* delivered or given up on since: nothing to keep */
    }
    int fd = open(path.data, O_RDONLY | O_CLOEXEC);
    if (fd < 0 ? errno != ENOENT : fsync(fd) != 0) {
      rc = iocd_err_set(err, IOCD_EIO, "outbox: fsync %s: %s", path.data,
                        strerror(errno));
      ob->unsynced[keep++] = ob->unsynced[i];
    }
    if (fd >= 0) {
      close(fd);
    }
  }
  ob->nunsynced = keep;
  buf_cleanup(&path);
  if (ob->dir_unsynced) {
    int e = file_sync_dir(ob->dir);
    if (e) {
      rc = iocd_err_set(err, IOCD_EIO, "outbox %s: fsync: %s", ob->dir,
                        strerror(e));
    } else {
      ob->dir_unsynced = false;
    }
  }
  if (ob->dead_unsynced) {
    int e = file_sync_dir(ob->dead_dir);
    if (e) {
      rc = iocd_err_set(err, IOCD_EIO, "outbox %s: fsync: %s", ob->dead_dir,
                        strerror(e));
    } else {
      ob->dead_unsynced = false;
    }
  }
  return rc;
}
