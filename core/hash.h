/*
 * 64-bit FNV-1a, the one hash iocd uses for its tables (series, schemas,
 * rule instances) and for fingerprints of definitions. Inline, because the
 * ingest and rules hot paths hash every point's names.
 */
#ifndef IOCD_CORE_HASH_H
#define IOCD_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The FNV-1a offset basis: the value to start a hash from. */
#define HASH_START UINT64_C(0xcbf29ce484222325)

/* Continues hash h over n bytes at p. */
static inline uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) {
    h = (h ^ s[i]) * UINT64_C(0x100000001b3);
  }
  return h;
}

/* Continues hash h over one byte, e.g. a separator between parts. */
static inline uint64_t hash_byte(uint64_t h, unsigned char c) {
  return (h ^ c) * UINT64_C(0x100000001b3);
}

/* Continues hash h over the NUL-terminated s, its NUL included, so that
 * ("ab", "c") and ("a", "bc") differ. */
static inline uint64_t hash_str(uint64_t h, const char *s) {
  return hash_bytes(h, s, strlen(s) + 1);
}

#endif
