/*
 * UTF-8 validation by the table in RFC 3629 section 4.
 */
#include "core/utf8.h"

bool utf8_valid(const char *str, size_t len, size_t *bad_at) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < len) {
    unsigned char c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c == 0xE0) {
      n = 2;
      lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      n = 2;
    } else if (c == 0xED) {
      n = 2;
      hi = 0x9F;
    } else if (c == 0xF0) {
      n = 3;
      lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      n = 3;
    } else if (c == 0xF4) {
      n = 3;
      hi = 0x8F;
    } else {
      goto bad;
    }
    if (len - i - 1 < n) {
      goto bad;
    }
    if (s[i + 1] < lo || s[i + 1] > hi) {
      goto bad;
    }
    for (size_t k = 2; k <= n; k++) {
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) {
        goto bad;
      }
    }
    i += n + 1;
  }
  return true;
bad:
  if (bad_at) {
    *bad_at = i;
  }
  return false;
}
