/*
 * Allocation helpers (core/mem.h).
 */
#include "core/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

char *mem_strdup(const char *s) {
  if (!s) {
    return NULL;
  }
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) {
    memcpy(d, s, n);
  }
  return d;
}

int mem_grow(void **arr, size_t *cap, size_t len, size_t elsize) {
  if (len < *cap) {
    return IOCD_OK;
  }
  size_t ncap = *cap ? *cap * 2 : 8;
  if (ncap < *cap || ncap > SIZE_MAX / elsize) {
    return IOCD_ENOMEM;
  }
  void *p = realloc(*arr, ncap * elsize);
  if (!p) {
    return IOCD_ENOMEM;
  }
  *arr = p;
  *cap = ncap;
  return IOCD_OK;
}
