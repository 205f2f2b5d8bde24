/*
 * Files that must survive a crash or a power loss: a directory created
 * with its parents, a file replaced atomically and durably, a directory's
 * entries made durable. Each call is a plain blocking system call sequence,
 * safe on any thread (the journal calls them from libuv's thread pool), and
 * returns 0 or an errno value for the caller to put into its own message.
 */
#ifndef IOCD_CORE_FILE_H
#define IOCD_CORE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/err.h"

/* Creates dir and its missing parents with mode 0755. Returns 0 when dir
 * exists as a directory afterwards, ENOTDIR when something else is there,
 * or the errno of the mkdir that failed. */
int file_mkdirs(const char *dir);

/* Makes the entries of dir (files created, renamed or removed in it)
 * durable: open it and fsync it. Returns 0 or an errno value. */
int file_sync_dir(const char *dir);

/* Writes all n bytes of p to fd, retrying after EINTR and short writes.
 * Returns 0 or an errno value. */
int file_write_all(int fd, const void *p, size_t n);

/* Replaces path with the n bytes of data so that a reader, or the file
 * after a crash, is the old content or the new one, never a mix: the bytes
 * go to "path.tmp", which is fsynced, closed and renamed over path, and
 * then path's directory is fsynced so that the rename itself survives a
 * power loss. With sync false both fsyncs are skipped (atomic, not
 * durable). On failure the temporary file is removed and path is left as
 * it was. Returns 0 or an errno value. */
int file_write_atomic(const char *path, const void *data, size_t n, bool sync);

/* As file_write_atomic, the file created with mode less the umask (0600
 * for a secret): the temporary file is made anew with it before the first
 * byte is written, so the secret is never readable by others, not even
 * for a moment. */
int file_write_atomic_mode(const char *path, const void *data, size_t n,
                           bool sync, mode_t mode);

/* Reads the whole regular file at path into b, whose cap (b->max) bounds
 * its size. The file is opened without blocking and checked before any
 * read, so a FIFO, a device or a directory is refused at once instead of
 * waiting for a writer. Returns IOCD_OK; or IOCD_EIO, IOCD_ETOOBIG or
 * IOCD_ENOMEM with err (may be NULL) saying why: "cannot open: REASON",
 * "is a directory, not a file", "is a FIFO (named pipe), not a regular
 * file", "the file is larger than N MiB", "out of memory" or "cannot read:
 * REASON". b holds what was read either way; the caller cleans it up. */
int file_read(const char *path, struct buf *b, struct iocd_err *err);

/* The length of a secret read from a file (a token, a password): its n
 * bytes without one trailing "\n" or "\r\n", which editors add. The loader
 * and the senders that re-read a token file both read them so. */
size_t file_secret_len(const char *s, size_t n);

#endif
