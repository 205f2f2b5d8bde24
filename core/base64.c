/*
 * Base64 encoding, three bytes to four characters. The lined form counts
 * whole groups per line so that no group straddles a line break.
 */
#include "core/base64.h"

#include <stdint.h>
#include <string.h>

#include "core/err.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_len(size_t n) {
  return (n + 2) / 3 * 4;
}

/* Writes the base64 of s[0..n) to dst, which has room for base64_len(n). */
static void encode(char *dst, const unsigned char *s, size_t n) {
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
    *dst++ = alphabet[v >> 18 & 63];
    *dst++ = alphabet[v >> 12 & 63];
    *dst++ = alphabet[v >> 6 & 63];
    *dst++ = alphabet[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)s[i] << 16;
    if (i + 1 < n) {
      v |= (uint32_t)s[i + 1] << 8;
    }
    *dst++ = alphabet[v >> 18 & 63];
    *dst++ = alphabet[v >> 12 & 63];
    *dst++ = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
    *dst = '=';
  }
}

int base64_encode(struct buf *out, const void *p, size_t n) {
  if (n > (SIZE_MAX / 2) / 4 * 3) {
    return IOCD_ETOOBIG;
  }
  size_t len = base64_len(n);
  int rc = buf_reserve(out, len);
  if (rc) {
    return rc;
  }
  encode(out->data + out->len, p, n);
  out->len += len;
  out->data[out->len] = '\0';
  return IOCD_OK;
}

int base64_encode_lines(struct buf *out, const void *p, size_t n,
                        size_t line_len, const char *eol) {
  size_t groups = line_len / 4 ? line_len / 4 : 1;
  size_t chunk = groups * 3; /* input bytes per line */
  size_t eol_len = strlen(eol);
  if (n > (SIZE_MAX / 4) / 4 * 3) {
    return IOCD_ETOOBIG;
  }
  size_t lines = (n + chunk - 1) / chunk;
  size_t total = base64_len(n) + lines * eol_len;
  int rc = buf_reserve(out, total);
  if (rc) {
    return rc;
  }
  const unsigned char *s = p;
  char *dst = out->data + out->len;
  for (size_t off = 0; off < n; off += chunk) {
    size_t k = n - off < chunk ? n - off : chunk;
    encode(dst, s + off, k);
    dst += base64_len(k);
    memcpy(dst, eol, eol_len);
    dst += eol_len;
  }
  out->len += total;
  out->data[out->len] = '\0';
  return IOCD_OK;
}
