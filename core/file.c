/*
 * Durable file updates, once for every module: the journal's checkpoints
 * and the rules' state file are both replaced through file_write_atomic,
 * so the write, fsync, rename, fsync-of-the-directory sequence cannot be
 * done right in one place and half right in another.
 */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int file_mkdirs(const char *dir) {
  size_t n = strlen(dir);
  if (n == 0) {
    return ENOENT;
  }
  char *p = malloc(n + 1);
  if (!p) {
    return ENOMEM;
  }
  memcpy(p, dir, n + 1);
  int rc = 0;
  for (size_t i = 1; i <= n && !rc; i++) {
    if (p[i] != '/' && p[i] != '\0') {
      continue;
    }
    char saved = p[i];
    p[i] = '\0';
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
      rc = errno;
    }
    p[i] = saved;
  }
  free(p);
  struct stat sb;
  if (!rc && stat(dir, &sb) != 0) {
    rc = errno;
  } else if (!rc && !S_ISDIR(sb.st_mode)) {
    rc = ENOTDIR;
  }
  return rc;
}

int file_sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return errno;
  }
  int rc = fsync(fd) == 0 ? 0 : errno;
  close(fd);
  return rc;
}

int file_write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* The directory part of path: "." for a bare name, "/" for "/name". */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) {
    return strdup(".");
  }
  size_t n = slash == path ? 1 : (size_t)(slash - path);
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, path, n);
    d[n] = '\0';
  }
  return d;
}

/* fresh: the temporary file is removed first and created anew, so that it
 * has mode (less the umask) from the start; a leftover from a crash would
 * keep its own mode through O_TRUNC. */
static int write_atomic(const char *path, const void *data, size_t n,
                        bool sync, mode_t mode, bool fresh) {
  size_t len = strlen(path);
  char *tmp = malloc(len + 5);
  char *dir = dir_of(path);
  int rc = 0;
  if (!tmp || !dir) {
    rc = ENOMEM;
    goto out;
  }
  memcpy(tmp, path, len);
  memcpy(tmp + len, ".tmp", 5);
  if (fresh && unlink(tmp) != 0 && errno != ENOENT) {
    rc = errno;
    goto out;
  }
  int fd = open(tmp,
                O_WRONLY | O_CREAT | O_CLOEXEC | (fresh ? O_EXCL : O_TRUNC),
                mode);
  if (fd < 0) {
    rc = errno;
    goto out;
  }
  rc = file_write_all(fd, data, n);
  if (!rc && sync && fsync(fd) != 0) {
    rc = errno;
  }
  if (close(fd) != 0 && !rc) {
    rc = errno;
  }
  if (!rc && rename(tmp, path) != 0) {
    rc = errno;
  }
  if (rc) {
    unlink(tmp);
  } else if (sync) {
    rc = file_sync_dir(dir);
  }
out:
  free(tmp);
  free(dir);
  return rc;
}

int file_write_atomic(const char *path, const void *data, size_t n, bool sync) {
  return write_atomic(path, data, n, sync, 0644, false);
}

int file_write_atomic_mode(const char *path, const void *data, size_t n,
                           bool sync, mode_t mode) {
  return write_atomic(path, data, n, sync, mode, true);
}

/* What path is when it is not a regular file, for the message. */
static const char *not_regular(mode_t m) {
  if (S_ISDIR(m)) {
    return "is a directory, not a file";
  }
  if (S_ISFIFO(m)) {
    return "is a FIFO (named pipe), not a regular file";
  }
  if (S_ISSOCK(m)) {
    return "is a socket, not a regular file";
  }
  if (S_ISCHR(m) || S_ISBLK(m)) {
    return "is a device, not a regular file";
  }
  return "is not a regular file";
}

int file_read(const char *path, struct buf *b, struct iocd_err *err) {
  if (!*path) {
    return iocd_err_set(err, IOCD_EIO, "cannot open: the file name is empty");
  }
  /* Opened without blocking and checked before any read: a FIFO or a
   * device would otherwise wait for a writer, with the event loop (or
   * `iocd check`) stuck behind it. */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return iocd_err_set(err, IOCD_EIO, "cannot open: %s", strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return iocd_err_set(err, IOCD_EIO, "cannot read: %s", strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return iocd_err_set(err, IOCD_EIO, "%s", not_regular(st.st_mode));
  }
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    int e = errno;
    close(fd);
    return iocd_err_set(err, IOCD_EIO, "cannot read: %s", strerror(e));
  }
  int rc = IOCD_OK;
  if (b->max && (uintmax_t)st.st_size > b->max) {
    /* Said before reading it all. */
    rc = IOCD_ETOOBIG;
  }
  while (!rc) {
    char chunk[16384];
    size_t n = fread(chunk, 1, sizeof chunk, f);
    if (n) {
      rc = buf_append(b, chunk, n);
    }
    if (n < sizeof chunk) {
      break;
    }
  }
  if (rc == IOCD_ETOOBIG) {
    iocd_err_set(err, rc, "the file is larger than %zu MiB", b->max >> 20);
  } else if (rc == IOCD_ENOMEM) {
    iocd_err_set(err, rc, "%s", iocd_strerror(rc));
  } else if (!rc && ferror(f)) {
    rc = iocd_err_set(err, IOCD_EIO, "cannot read: %s", strerror(errno));
  }
  fclose(f);
  return rc;
}

size_t file_secret_len(const char *s, size_t n) {
  if (n && s[n - 1] == '\n') {
    n--;
    if (n && s[n - 1] == '\r') {
      n--;
    }
  }
  return n;
}
