/*
 * Saving and restoring the alert state. The text is the engine's own
 * (engine_state_save); this file only decides where it lives and makes the
 * write atomic and durable through core/file.h, so that a crash leaves
 * either the old state or the new one.
 */
#include "alerts/state_file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/file.h"
#include "core/log.h"

int state_file_save(const struct engine *e, const char *data_dir) {
  struct buf b;
  buf_init(&b, 256u << 20);
  char path[4096];
  snprintf(path, sizeof path, "%s/rules-state.json", data_dir);
  int rc = engine_state_save(e, &b);
  if (rc) {
    log_error("rules", "cannot save the alert state: %s", iocd_strerror(rc));
    goto out;
  }
  int err = file_mkdirs(data_dir);
  if (err) {
    log_error("rules", "cannot create %s: %s", data_dir, strerror(err));
  }
  err = file_write_atomic(path, b.data ? b.data : "", b.len, true);
  if (err) {
    rc = IOCD_EIO;
    log_error("rules", "cannot write %s: %s", path, strerror(err));
  }
out:
  buf_cleanup(&b);
  return rc;
}

void state_file_restore(struct engine *e, const char *data_dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/rules-state.json", data_dir);
  struct buf b;
  buf_init(&b, 256u << 20);
  struct iocd_err err = {{0}};
  struct stat st;
  if (stat(path, &st) != 0 && errno == ENOENT) {
    buf_cleanup(&b);
    return;
  }
  int rc = file_read(path, &b, &err);
  if (rc) {
    log_error("rules", "%s: not restored: %s", path, err.msg);
    buf_cleanup(&b);
    return;
  }
  struct engine_restore_report rep = {0};
  rc = engine_state_restore(e, b.data ? b.data : "", b.len, &rep, &err);
  if (rc) {
    log_error("rules", "%s: not restored: %s", path,
              err.msg[0] ? err.msg : iocd_strerror(rc));
  } else {
    log_info("rules",
             "alert state restored from %s: %zu instances (%zu of changed "
             "rules and %zu of removed rules dropped)",
             path, rep.restored, rep.changed, rep.unknown);
  }
  buf_cleanup(&b);
}
