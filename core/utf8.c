/*
 * UTF-8 validation by the table in RFC 3629 section 4; normalization and
 * loose comparison of names through utf8proc.
 */
#include "core/utf8.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/err.h"

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

/* True when every code point of the valid UTF-8 s is below U+0300 or in
 * Latin Extended Additional (U+1E00..U+1EFF): such text is in NFC, since
 * none of those is a composition exclusion or a singleton and none can be
 * the second of a composed pair. Vietnamese written precomposed, as
 * districts publish it, passes here without being normalized. */
static bool surely_nfc(const unsigned char *s, size_t len) {
  for (size_t i = 0; i < len;) {
    unsigned char c = s[i];
    if (c < 0x80) {
      i++;
    } else if (c < 0xCC) {
      i += 2; /* U+0080..U+02FF */
    } else if (c == 0xE1 && i + 1 < len && (s[i + 1] == 0xB8 ||
                                             s[i + 1] == 0xB9 ||
                                             s[i + 1] == 0xBA ||
                                             s[i + 1] == 0xBB)) {
      i += 3; /* U+1E00..U+1EFF */
    } else {
      return false;
    }
  }
  return true;
}

int utf8_nfc(const char *s, size_t len, char **out, size_t *outlen) {
  *out = NULL;
  *outlen = len;
  if (surely_nfc((const unsigned char *)s, len)) {
    return IOCD_OK;
  }
  utf8proc_uint8_t *dst = NULL;
  utf8proc_ssize_t n =
      utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &dst,
                   UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  if (n < 0) {
    return n == UTF8PROC_ERROR_NOMEM ? IOCD_ENOMEM : IOCD_EINVAL;
  }
  if ((size_t)n == len && memcmp(dst, s, len) == 0) {
    free(dst);
    return IOCD_OK;
  }
  *out = (char *)dst;
  *outlen = (size_t)n;
  return IOCD_OK;
}

/* Replaces each occurrence of from (UTF-8) in s by the shorter or equally
 * long to, in place. */
static void replace_all(char *s, const char *from, const char *to) {
  size_t fn = strlen(from), tn = strlen(to);
  char *w = s;
  for (char *r = s; *r;) {
    if (strncmp(r, from, fn) == 0) {
      memcpy(w, to, tn);
      w += tn;
      r += fn;
    } else {
      *w++ = *r++;
    }
  }
  *w = '\0';
}

char *utf8_fold(const char *s) {
  utf8proc_uint8_t *dst = NULL;
  utf8proc_ssize_t n = utf8proc_map(
      (const utf8proc_uint8_t *)s, 0, &dst,
      UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_DECOMPOSE |
          UTF8PROC_STRIPMARK | UTF8PROC_CASEFOLD);
  if (n < 0) {
    return NULL;
  }
  char *f = (char *)dst;
  /* Đ has no decomposition: its stroke is part of the letter. Casefolding
   * already made it đ (U+0111). */
  replace_all(f, "\xC4\x91", "d");
  replace_all(f, "\xE2\x80\x99", "'"); /* U+2019 */
  replace_all(f, "\xCA\xBC", "'");     /* U+02BC */
  return f;
}
