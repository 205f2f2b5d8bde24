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

#endif
