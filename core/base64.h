/*
 * Base64 (RFC 4648 section 4, the standard alphabet with '=' padding): the
 * MIME bodies and encoded-word headers of the e-mail receiver. None of the
 * libraries iocd links offers a public encoder (libcurl's is internal), so
 * this is the one copy.
 */
#ifndef IOCD_CORE_BASE64_H
#define IOCD_CORE_BASE64_H

#include <stddef.h>

#include "core/buf.h"

/* The length of the padded base64 text of n bytes: 4 * ceil(n / 3). */
size_t base64_len(size_t n);

/* Appends the base64 text of p[0..n) to out, on one line. Returns IOCD_OK,
 * or IOCD_ETOOBIG / IOCD_ENOMEM with out unchanged. */
int base64_encode(struct buf *out, const void *p, size_t n);

/* Appends the base64 text of p[0..n) to out in lines of at most line_len
 * characters (rounded down to a multiple of 4, at least 4), each one
 * followed by eol (MIME: 76 and "\r\n", RFC 2045 section 6.8). Nothing is
 * appended for n == 0. Returns as base64_encode. */
int base64_encode_lines(struct buf *out, const void *p, size_t n,
                        size_t line_len, const char *eol);

#endif
