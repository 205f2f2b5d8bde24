/*
 * Names of iocd's error codes and the helpers that fill struct iocd_err.
 */
#include "core/err.h"

#include <stdio.h>
#include <string.h>

const char *iocd_strerror(int rc) {
  switch (rc) {
#define IOCD_ERR_CASE(name, code, text) \
  case IOCD_##name:                     \
    return text;
    IOCD_ERRMAP(IOCD_ERR_CASE)
#undef IOCD_ERR_CASE
  }
  return "unknown error";
}

int iocd_err_set(struct iocd_err *err, int rc, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return rc;
}

void iocd_err_prefix(struct iocd_err *err, const char *fmt, ...) {
  if (!err) {
    return;
  }
  char prefix[IOCD_ERR_SIZE];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  if (n < 0) {
    return;
  }
  char joined[2 * IOCD_ERR_SIZE + 2];
  snprintf(joined, sizeof joined, "%s: %s", prefix, err->msg);
  snprintf(err->msg, sizeof err->msg, "%.*s", IOCD_ERR_SIZE - 1, joined);
}
