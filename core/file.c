/*
 * Durable file updates, once for every module: the journal's checkpoints
 * and the rules' state file are both replaced through file_write_atomic,
 * so the write, fsync, rename, fsync-of-the-directory sequence cannot be
 * done right in one place and half right in another.
 */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
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

int file_write_atomic(const char *path, const void *data, size_t n, bool sync) {
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
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
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
