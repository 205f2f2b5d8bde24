/*
 * UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF). District names such as "Buôn Ma Thuột" must pass untouched;
 * anything else is rejected before it can reach InfluxDB or a notification.
 */
#ifndef IOCD_CORE_UTF8_H
#define IOCD_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Returns true when s[0..len) is valid UTF-8. When it is not and bad_at is not
 * NULL, *bad_at receives the offset of the first invalid byte. */
bool utf8_valid(const char *s, size_t len, size_t *bad_at);

/* Unicode normalization form C (UAX #15) of the valid UTF-8 s[0..len): the
 * form every name takes inside iocd, so that "Buôn Ma Thuột" typed with
 * combining accents (NFD, as some keyboards and macOS file names produce
 * it) is the same district as the precomposed name. Returns IOCD_OK with
 * *out NULL when s is already NFC (the common case, checked without
 * allocating), or with *out a malloc'd NUL-terminated copy in NFC and
 * *outlen its length; IOCD_ENOMEM or IOCD_EINVAL (not valid UTF-8)
 * otherwise. */
int utf8_nfc(const char *s, size_t len, char **out, size_t *outlen);

/* A key for comparing names loosely, for "did you mean": NFC-independent,
 * without diacritics (đ and Đ become d), case-folded, with typographic
 * apostrophes as '. "Buôn Ma Thuột", "buon ma thuot" and "BUÔN MA THUỘT"
 * give the same key. Returns a malloc'd string, or NULL (no memory, or s
 * is not valid UTF-8). */
char *utf8_fold(const char *s);

#endif
