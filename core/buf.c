/*
 * Bounded growable buffer. Growth doubles the capacity up to the cap so that
 * appends are amortized O(1); the cap is checked before any allocation.
 */
#include "core/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

void buf_init(struct buf *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  /* Above SIZE_MAX / 2, len + n + 1 in buf_reserve could wrap around. */
  b->max = max && max <= SIZE_MAX / 2 ? max : SIZE_MAX / 2;
}

void buf_cleanup(struct buf *b) {
  free(b->data);
  buf_init(b, b->max);
}

void buf_reset(struct buf *b) {
  b->len = 0;
  if (b->data) {
    b->data[0] = '\0';
  }
}

int buf_reserve(struct buf *b, size_t n) {
  if (n > b->max || b->len > b->max - n) {
    return IOCD_ETOOBIG;
  }
  size_t need = b->len + n + 1; /* room for the terminating NUL */
  if (need <= b->cap) {
    return IOCD_OK;
  }
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) {
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  }
  char *p = realloc(b->data, cap);
  if (!p) {
    return IOCD_ENOMEM;
  }
  b->data = p;
  b->cap = cap;
  return IOCD_OK;
}

int buf_append(struct buf *b, const void *p, size_t n) {
  int rc = buf_reserve(b, n);
  if (rc) {
    return rc;
  }
  if (n) {
    memcpy(b->data + b->len, p, n);
  }
  b->len += n;
  b->data[b->len] = '\0';
  return IOCD_OK;
}

int buf_puts(struct buf *b, const char *s) {
  return buf_append(b, s, strlen(s));
}

int buf_putc(struct buf *b, char c) {
  return buf_append(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) {
    return IOCD_EINVAL;
  }
  int rc = buf_reserve(b, (size_t)n);
  if (rc) {
    return rc;
  }
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return IOCD_OK;
}

int buf_printf(struct buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

void buf_consume(struct buf *b, size_t n) {
  if (n >= b->len) {
    buf_reset(b);
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
  b->data[b->len] = '\0';
}

void buf_truncate(struct buf *b, size_t n) {
  if (n < b->len) {
    b->len = n;
    b->data[n] = '\0';
  }
}

char *buf_detach(struct buf *b, size_t *len) {
  char *p = b->data;
  if (len) {
    *len = b->len;
  }
  buf_init(b, b->max);
  return p;
}
