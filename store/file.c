/*
 * The file output: every accepted point as line protocol, appended to a file
 * (O_APPEND, created 0644) or written to stdout for "-". Writes go through
 * uv_fs_write on the loop's thread pool, one at a time so that the file keeps
 * the queue's order; whatever queued up meanwhile goes in the next write.
 * A failed write is logged and its points are counted as dropped: a full
 * disk must not stop the other outputs.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/container.h"
#include "core/err.h"
#include "core/log.h"
#include "store/store_int.h"

struct file_out {
  struct output base;
  uv_loop_t *loop;
  char *path;
  uv_file fd;
  uv_file old_fd; /* replaced by a reload while a write was out; or -1 */
  uv_fs_t req;
  bool inflight;
  struct sbatch *cur; /* the batch being written */
  size_t off;         /* bytes of cur written */
  bool draining;
  bool closing;
  struct log_limit lim;
  struct metric *written;
  struct metric *req_ok;
  struct metric *req_err;
};

static bool is_stdout(const char *path) {
  return strcmp(path, "-") == 0;
}

static int open_path(uv_loop_t *loop, const char *path, uv_file *fd,
                     struct iocd_err *err) {
  if (is_stdout(path)) {
    *fd = STDOUT_FILENO;
    return IOCD_OK;
  }
  uv_fs_t req;
  int r = uv_fs_open(loop, &req, path,
                     O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644, NULL);
  uv_fs_req_cleanup(&req);
  if (r < 0) {
    return iocd_err_set(err, IOCD_EIO, "file.path: %s: %s", path,
                        uv_strerror(r));
  }
  *fd = r;
  return IOCD_OK;
}

static void close_fd(uv_loop_t *loop, uv_file fd) {
  if (fd < 0 || fd == STDOUT_FILENO) {
    return;
  }
  uv_fs_t req;
  uv_fs_close(loop, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
}

static void pump(struct file_out *f);

static void finish_close(struct file_out *f) {
  struct store *s = f->base.store;
  store__batch_free(f->cur);
  close_fd(f->loop, f->fd);
  close_fd(f->loop, f->old_fd);
  free(f->path);
  free(f);
  store__output_closed(s);
}

/* The points of cur that are fully on disk. */
static size_t lines_written(const struct sbatch *b, size_t off) {
  size_t n = 0;
  while (n < b->npoints && b->line_off[n + 1] <= off) {
    n++;
  }
  return n;
}

static void batch_done(struct file_out *f) {
  struct store *s = f->base.store;
  struct sbatch *b = f->cur;
  f->cur = NULL;
  size_t ok = lines_written(b, f->off);
  stat_add(f->written, ok);
  store__count_written(s, &f->base, b, 0, ok);
  if (ok < b->npoints) {
    store__count_dropped(s, &f->base, b, ok, b->npoints, "error");
  }
  store__confirm(s, &f->base, b);
}

static void write_some(struct file_out *f);

static void on_write(uv_fs_t *req) {
  struct file_out *f = container_of(req, struct file_out, req);
  ssize_t r = req->result;
  uv_fs_req_cleanup(req);
  f->inflight = false;
  if (f->old_fd >= 0) {
    close_fd(f->loop, f->old_fd);
    f->old_fd = -1;
  }
  if (r < 0) {
    stat_inc(f->req_err);
    uint32_t held = 0;
    if (log_limit_allow(&f->lim, store__now_ms(f->base.store), 5, 10000,
                        &held)) {
      log_error(
          "store", "file output: writing %s failed: %s; %zu points dropped%s",
          f->path, uv_strerror((int)r),
          f->cur->npoints - lines_written(f->cur, f->off), SUPPRESSED(held));
    }
    batch_done(f);
  } else {
    f->off += (size_t)r;
    if (f->off < f->cur->len && r > 0) {
      write_some(f);
      return;
    }
    stat_inc(f->req_ok);
    batch_done(f);
  }
  if (f->closing) {
    finish_close(f);
    return;
  }
  pump(f);
}

static void write_some(struct file_out *f) {
  uv_buf_t b =
      uv_buf_init(f->cur->body + f->off, (unsigned)(f->cur->len - f->off));
  int r = uv_fs_write(f->loop, &f->req, f->fd, &b, 1, -1, on_write);
  if (r < 0) {
    /* Not even queued: treat it as a failed write. */
    f->req.result = r;
    f->inflight = true;
    on_write(&f->req);
    return;
  }
  f->inflight = true;
}

static void pump(struct file_out *f) {
  struct store *s = f->base.store;
  struct queue *q = f->base.q;
  if (f->inflight || f->closing) {
    return;
  }
  struct sbatch *b = NULL;
  if (q->ops->take(q, f->base.reader, SIZE_MAX, STORE_FILE_CHUNK_BYTES, &b) !=
      IOCD_OK) {
    log_error("store", "file output: out of memory; will try again");
    return;
  }
  if (!b) {
    if (f->draining) {
      store__output_drained(s, &f->base);
    }
    return;
  }
  f->cur = b;
  f->off = 0;
  write_some(f);
}

static struct output *file_create(struct store *s, struct queue *q,
                                  unsigned reader, const struct config *cfg,
                                  struct iocd_err *err) {
  struct file_out *f = calloc(1, sizeof *f);
  if (!f) {
    iocd_err_set(err, IOCD_ENOMEM, "store: out of memory");
    return NULL;
  }
  f->base.ops = &store__file_ops;
  f->base.store = s;
  f->base.q = q;
  f->base.reader = reader;
  f->loop = s->loop;
  f->old_fd = -1;
  f->path = strdup(cfg->file.path);
  if (!f->path) {
    free(f);
    iocd_err_set(err, IOCD_ENOMEM, "store: out of memory");
    return NULL;
  }
  if (open_path(f->loop, f->path, &f->fd, err) != IOCD_OK) {
    free(f->path);
    free(f);
    return NULL;
  }
  f->written =
      stats_counter(s->stats, "iocd_points_written_total",
                    "Points written, by output.", "output", "file", NULL);
  f->req_ok = stats_counter(s->stats, "iocd_write_requests_total",
                            "Write requests, by output and outcome.", "output",
                            "file", "status", "ok", NULL);
  f->req_err = stats_counter(s->stats, "iocd_write_requests_total",
                             "Write requests, by output and outcome.", "output",
                             "file", "status", "error", NULL);
  return &f->base;
}

static void file_notify(struct output *o) {
  pump(container_of(o, struct file_out, base));
}

static int file_reconfigure(struct output *o, const struct config *cfg,
                            struct iocd_err *err) {
  struct file_out *f = container_of(o, struct file_out, base);
  if (!cfg->file.enabled || strcmp(cfg->file.path, f->path) == 0) {
    return IOCD_OK;
  }
  uv_file fd;
  char *path = strdup(cfg->file.path);
  if (!path) {
    return iocd_err_set(err, IOCD_ENOMEM, "store: out of memory");
  }
  int rc = open_path(f->loop, path, &fd, err);
  if (rc) {
    free(path);
    return rc;
  }
  /* A write in flight still uses the old descriptor: close it after. */
  if (f->inflight) {
    close_fd(f->loop, f->old_fd);
    f->old_fd = f->fd;
  } else {
    close_fd(f->loop, f->fd);
  }
  f->fd = fd;
  free(f->path);
  f->path = path;
  log_info("store", "file output now writes to %s", path);
  return IOCD_OK;
}

static void file_drain(struct output *o, int64_t deadline_ms) {
  (void)deadline_ms;
  struct file_out *f = container_of(o, struct file_out, base);
  f->draining = true;
  pump(f);
}

static void file_close(struct output *o) {
  struct file_out *f = container_of(o, struct file_out, base);
  f->closing = true;
  /* A write handed to the thread pool cannot be taken back: its callback
   * finishes the close. */
  if (!f->inflight) {
    finish_close(f);
  }
}

const struct output_ops store__file_ops = {
    .name = "file",
    .create = file_create,
    .notify = file_notify,
    .reconfigure = file_reconfigure,
    .drain = file_drain,
    .close = file_close,
};
