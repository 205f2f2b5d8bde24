/*
 * Allocation helpers, once for every module: a NULL-safe strdup and the
 * doubling growth of an array. Each reports failure instead of exiting;
 * the caller decides what running out of memory means for its data.
 */
#ifndef IOCD_CORE_MEM_H
#define IOCD_CORE_MEM_H

#include <stddef.h>

/* A malloc'd copy of s, or NULL when s is NULL or memory runs out. */
char *mem_strdup(const char *s);

/* Makes room for one more element in the array *arr of *cap elements of
 * elsize bytes, len of them used: when len == *cap, *arr is reallocated to
 * twice the size (8 at first) and *cap updated. Returns IOCD_OK, or
 * IOCD_ENOMEM with *arr and *cap unchanged. */
int mem_grow(void **arr, size_t *cap, size_t len, size_t elsize);

#endif
