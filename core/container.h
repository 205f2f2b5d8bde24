/*
 * container_of: recovers the owner of an embedded member (a uv handle
 * embedded in its module's struct), as libuv's own sources do.
 */
#ifndef IOCD_CORE_CONTAINER_H
#define IOCD_CORE_CONTAINER_H

#include <stddef.h>

/* Through void *: the member's address is the owner's plus its offset, so
 * the owner's alignment holds, which a cast from char * cannot show to
 * -Wcast-align. */
#define container_of(ptr, type, member) \
  ((type *)(void *)(((char *)(ptr)) - offsetof(type, member)))

#endif
