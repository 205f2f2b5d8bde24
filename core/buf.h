/*
 * A growable byte buffer with a hard cap. Every buffer that grows on input
 * (payloads, batches, HTTP bodies) is a struct buf, so "too big" is one clear
 * error in one place instead of an unbounded allocation.
 */
#ifndef IOCD_CORE_BUF_H
#define IOCD_CORE_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct buf {
  char *data; /* NUL-terminated when len > 0 or after any append */
  size_t len;
  size_t cap;
  size_t max; /* hard cap on len; 0 means SIZE_MAX/2 */
};

/* Initializes caller storage; no allocation happens until the first append. */
void buf_init(struct buf *b, size_t max);

/* Frees the storage and returns b to the state buf_init left it in. */
void buf_cleanup(struct buf *b);

/* Forgets the contents, keeps the allocation. */
void buf_reset(struct buf *b);

/* Makes room for n more bytes. Returns IOCD_OK, IOCD_ETOOBIG past b->max, or
 * IOCD_ENOMEM. */
int buf_reserve(struct buf *b, size_t n);

/* Appends bytes, a C string, one byte, or formatted text. Each returns IOCD_OK,
 * IOCD_ETOOBIG or IOCD_ENOMEM and leaves b unchanged on failure. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Removes the first n bytes (n <= len), moving the rest to the front. */
void buf_consume(struct buf *b, size_t n);

/* Shortens the contents to n bytes (n <= len). */
void buf_truncate(struct buf *b, size_t n);

/* Hands the storage to the caller (who frees it) and resets b. Returns NULL
 * when b is empty and was never allocated. */
char *buf_detach(struct buf *b, size_t *len);

#endif
