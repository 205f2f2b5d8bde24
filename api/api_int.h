/*
 * What the files of api/ share: the limits on request heads and the check
 * of a request head (request_head.c).
 */
#ifndef IOCD_API_API_INT_H
#define IOCD_API_API_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A request head: its request line (end of line excluded), the whole head
 * (the empty line included), its query parameters, and its header fields
 * (each cookie of a Cookie field counted as one more). libmicrohttpd's
 * per-connection memory (API_MHD_MEMORY) holds any head within these. */
#define API_LINE_MAX 4096
#define API_HEAD_MAX 8192
#define API_PARAMS_MAX 100
#define API_FIELDS_MAX 100
#define API_MHD_MEMORY (64u * 1024u)

/* A limit as a string, for the messages that name it. */
#define API_STR_(x) #x
#define API_STR(x) API_STR_(x)

enum api_head_result {
  API_HEAD_INCOMPLETE, /* more bytes are needed */
  API_HEAD_ACCEPTED,   /* complete, and libmicrohttpd may read it */
  API_HEAD_REFUSED     /* answered by status and error */
};

struct api_head {
  size_t len;        /* bytes of the head (ACCEPTED) */
  unsigned status;   /* the refusal's status (REFUSED) */
  const char *error; /* the refusal's message, a static string (REFUSED) */
  bool head_method;  /* HEAD: the answer has no body */
};

/* Checks the request head that starts buf (n bytes, what the client sent so
 * far, possibly more than the head). A head is refused as soon as what has
 * come shows it: a malformed request line or field (400), a version other
 * than HTTP/1.x (505), a request line over API_LINE_MAX or more than
 * API_PARAMS_MAX query parameters (414), a head over API_HEAD_MAX or more
 * than API_FIELDS_MAX fields (431), an HTTP/1.1 request without exactly one
 * Host (400), and a body (405 for a method other than GET and HEAD, 413
 * otherwise: no endpoint takes one). Fills h; never reads past buf[n-1]. */
enum api_head_result api__head_check(const char *buf, size_t n,
                                     struct api_head *h);

/* The reason phrase of an HTTP status iocd answers with ("" if unknown). */
const char *api__reason(unsigned status);

#endif
