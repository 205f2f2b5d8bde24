/*
 * Error codes shared by every iocd module, and the error record that carries
 * the sentence a person reads. Fallible functions return an int that is either
 * IOCD_OK or one of the negative codes below; the human explanation, when there
 * is one, goes into a caller-provided struct iocd_err.
 */
#ifndef IOCD_CORE_ERR_H
#define IOCD_CORE_ERR_H

#include <stdarg.h>

#define IOCD_ERRMAP(X)                                         \
  X(OK, 0, "success")                                          \
  X(ENOMEM, -1, "out of memory")                               \
  X(EINVAL, -2, "invalid argument")                            \
  X(EPARSE, -3, "parse error")                                 \
  X(ERANGE, -4, "value out of range")                          \
  X(ETOOBIG, -5, "too big")                                    \
  X(EIO, -6, "input/output error")                             \
  X(ENOTFOUND, -7, "not found")                                \
  X(EAGAIN, -8, "try again")                                   \
  X(ETYPE, -9, "wrong type")                                   \
  X(EFULL, -10, "full")                                        \
  X(ECONN, -11, "connection error")                            \
  X(ECLOSED, -12, "closed")                                    \
  X(ELIMIT, -13, "limit reached")                              \
  X(ECORRUPT, -14, "corrupt data")                             \
  X(ESTATE, -15, "wrong state")

enum iocd_rc {
#define IOCD_ERR_ENUM(name, code, text) IOCD_##name = (code),
  IOCD_ERRMAP(IOCD_ERR_ENUM)
#undef IOCD_ERR_ENUM
};

#define IOCD_ERR_SIZE 256

/* The sentence that explains a failure, in the form "where: what". */
struct iocd_err {
  char msg[IOCD_ERR_SIZE];
};

/* Returns a static, human-readable name for rc; never NULL. */
const char *iocd_strerror(int rc);

/* Formats into err->msg (truncating at IOCD_ERR_SIZE) and returns rc, so a
 * caller can write `return iocd_err_set(err, IOCD_EPARSE, "...")`. err may be
 * NULL, in which case only rc is returned. */
int iocd_err_set(struct iocd_err *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to the message already in err. */
void iocd_err_prefix(struct iocd_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
