/*
 * container_of: recovers the owner of an embedded member (a uv handle
 * embedded in its module's struct), as libuv's own sources do.
 */
#ifndef IOCD_CORE_CONTAINER_H
#define IOCD_CORE_CONTAINER_H

#include <stddef.h>

#define container_of(ptr, type, member) \
  ((type *)((char *)(ptr) - offsetof(type, member)))

#endif
