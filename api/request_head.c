/*
 * The check of a request head before libmicrohttpd reads it. libmicrohttpd
 * 0.9.75 answers the heads it cannot take with HTML pages (400, 413, 414,
 * 431, 505; no way to replace them), answers some twice over (a bad
 * Content-Length) and others not at all (a request line without a space,
 * a query that fills its memory). So the gate refuses, as JSON, every head
 * libmicrohttpd would not take, and passes only heads it parses as iocd's
 * endpoints expect: this check is stricter than libmicrohttpd's parser, and
 * its limits fit libmicrohttpd's memory (API_MHD_MEMORY).
 */
#include <string.h>

#include "api/api.h"
#include "api/api_int.h"

_Static_assert(API_BODY_MAX_BYTES == API_BODY_MAX,
               "the refusal's text must state the limit");

const char *api__reason(unsigned status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "";
  }
}

static enum api_head_result refuse(struct api_head *h, unsigned status,
                                   const char *error) {
  h->status = status;
  h->error = error;
  return API_HEAD_REFUSED;
}

/* RFC 9110 tchar: the characters of a method and of a field name. */
static bool is_tchar(unsigned char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
         (ch >= 'A' && ch <= 'Z') || (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch));
}

/* The end of the line that starts at p: the offset of its LF, or n when
 * the line is not complete. A CR is allowed only right before the LF. */
static size_t line_end(const char *buf, size_t p, size_t n) {
  const char *lf = memchr(buf + p, '\n', n - p);
  return lf ? (size_t)(lf - buf) : n;
}

/* The length of the line [p, lf) without its CR. */
static size_t line_len(const char *buf, size_t p, size_t lf) {
  return lf > p && buf[lf - 1] == '\r' ? lf - 1 - p : lf - p;
}

static bool name_is(const char *name, size_t n, const char *want) {
  size_t wn = strlen(want);
  if (n != wn) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    char a = name[i], b = want[i];
    if (a >= 'A' && a <= 'Z') {
      a = (char)(a - 'A' + 'a');
    }
    if (a != b) {
      return false;
    }
  }
  return true;
}

/* What the request line said, for the checks at the end of the head. */
struct line {
  bool get_or_head;
  bool takes_body; /* POST, DELETE: a body up to API_BODY_MAX */
  bool http11;     /* HTTP/1.1 or a later 1.x: Host is required */
};

static enum api_head_result check_request_line(const char *s, size_t n,
                                               struct api_head *h,
                                               struct line *rl) {
  static const char bad[] = "malformed request line";
  size_t m = 0;
  while (m < n && is_tchar((unsigned char)s[m])) {
    m++;
  }
  if (m == 0 || m == n || s[m] != ' ') {
    return refuse(h, 400, bad);
  }
  h->head_method = m == 4 && memcmp(s, "HEAD", 4) == 0;
  rl->get_or_head = h->head_method || (m == 3 && memcmp(s, "GET", 3) == 0);
  rl->takes_body = (m == 4 && memcmp(s, "POST", 4) == 0) ||
                   (m == 6 && memcmp(s, "DELETE", 6) == 0);
  size_t t = m + 1, te = t;
  while (te < n && s[te] != ' ') {
    unsigned char ch = (unsigned char)s[te];
    if (ch < 0x21 || ch == 0x7f) {
      return refuse(h, 400, bad);
    }
    te++;
  }
  if (te == t || s[t] != '/') {
    return refuse(h, 400, "the request target must be a path");
  }
  size_t params = 0;
  const char *q = memchr(s + t, '?', te - t);
  if (q && q + 1 < s + te) {
    params = 1;
    for (const char *p = q + 1; p < s + te; p++) {
      params += *p == '&';
    }
  }
  if (params > API_PARAMS_MAX) {
    return refuse(
        h, 414,
        "too many query parameters (at most " API_STR(API_PARAMS_MAX) ")");
  }
  const char *v = s + te + 1;
  size_t vn = te < n ? n - te - 1 : 0;
  if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' ||
      v[6] != '.' || v[7] < '0' || v[7] > '9') {
    return refuse(h, 400, bad);
  }
  if (v[5] != '1') {
    return refuse(h, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
  }
  rl->http11 = v[7] != '0';
  return API_HEAD_INCOMPLETE;
}

/* What the header fields said, for the checks at the end of the head. */
struct fields {
  size_t count;
  size_t hosts;
  size_t lengths;
  bool body;
  bool too_long; /* Content-Length over API_BODY_MAX */
  size_t length; /* Content-Length, when not too_long */
  bool chunked;  /* Transfer-Encoding: the body's length is not said */
};

static enum api_head_result check_field(const char *s, size_t n,
                                        struct api_head *h, struct fields *f) {
  static const char bad[] = "malformed header field";
  if (s[0] == ' ' || s[0] == '\t') {
    return refuse(h, 400, "folded header lines are not accepted");
  }
  size_t m = 0;
  while (m < n && is_tchar((unsigned char)s[m])) {
    m++;
  }
  if (m == 0 || m == n || s[m] != ':') {
    return refuse(h, 400, bad);
  }
  size_t cookies = 0;
  for (size_t i = m + 1; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
      return refuse(h, 400, bad);
    }
    cookies += ch == ';' || ch == ',';
  }
  f->count++;
  if (name_is(s, m, "cookie")) {
    f->count += cookies;
  }
  if (f->count > API_FIELDS_MAX) {
    return refuse(
        h, 431, "too many header fields (at most " API_STR(API_FIELDS_MAX) ")");
  }
  const char *v = s + m + 1;
  size_t vn = n - m - 1;
  while (vn && (*v == ' ' || *v == '\t')) {
    v++;
    vn--;
  }
  while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t')) {
    vn--;
  }
  if (name_is(s, m, "host")) {
    f->hosts++;
  } else if (name_is(s, m, "transfer-encoding")) {
    f->body = true;
    f->chunked = true;
  } else if (name_is(s, m, "content-length")) {
    if (vn == 0 || ++f->lengths > 1) {
      return refuse(h, 400, "malformed Content-Length");
    }
    unsigned long long len = 0;
    for (size_t i = 0; i < vn; i++) {
      if (v[i] < '0' || v[i] > '9') {
        return refuse(h, 400, "malformed Content-Length");
      }
      f->body |= v[i] != '0';
      if (len <= API_BODY_MAX) {
        len = len * 10 + (unsigned)(v[i] - '0');
      }
    }
    f->too_long = len > API_BODY_MAX;
    f->length = f->too_long ? 0 : (size_t)len;
  }
  return API_HEAD_INCOMPLETE;
}

enum api_head_result api__head_check(const char *buf, size_t n,
                                     struct api_head *h) {
  static const char too_large[] =
      "request head too large (at most " API_STR(API_HEAD_MAX) " bytes)";
  memset(h, 0, sizeof *h);
  if (memchr(buf, '\0', n)) {
    return refuse(h, 400, "the request contains a NUL byte");
  }
  size_t p = 0;
  /* Empty lines before the request line are ignored (RFC 9112 2.2). */
  while (p < n && (buf[p] == '\n' ||
                   (buf[p] == '\r' && p + 1 < n && buf[p + 1] == '\n'))) {
    p += buf[p] == '\r' ? 2 : 1;
  }
  size_t lf = line_end(buf, p, n);
  size_t len = line_len(buf, p, lf);
  if (lf == n) {
    len = n - p;
  }
  if (len > API_LINE_MAX) {
    return refuse(
        h, 414,
        "request line too long (at most " API_STR(API_LINE_MAX) " bytes)");
  }
  if (lf == n) {
    return n > API_HEAD_MAX ? refuse(h, 431, too_large) : API_HEAD_INCOMPLETE;
  }
  if (memchr(buf + p, '\r', len)) {
    return refuse(h, 400, "malformed request line");
  }
  struct line rl = {0};
  if (check_request_line(buf + p, len, h, &rl) == API_HEAD_REFUSED) {
    return API_HEAD_REFUSED;
  }
  struct fields f = {0};
  for (p = lf + 1;; p = lf + 1) {
    lf = line_end(buf, p, n);
    if (lf == n || lf + 1 > API_HEAD_MAX) {
      return n > API_HEAD_MAX || lf + 1 > API_HEAD_MAX
                 ? refuse(h, 431, too_large)
                 : API_HEAD_INCOMPLETE;
    }
    len = line_len(buf, p, lf);
    if (memchr(buf + p, '\r', len)) {
      return refuse(h, 400, "malformed header field");
    }
    if (len == 0) {
      break;
    }
    if (check_field(buf + p, len, h, &f) == API_HEAD_REFUSED) {
      return API_HEAD_REFUSED;
    }
  }
  h->len = lf + 1;
  if (rl.http11 && f.hosts != 1) {
    return refuse(h, 400, "an HTTP/1.1 request needs one Host field");
  }
  if (f.body && rl.get_or_head) {
    return refuse(h, 413, "GET and HEAD take no request body");
  }
  if (f.body && !rl.takes_body) {
    return refuse(h, 405, "method not allowed");
  }
  if (f.chunked) {
    /* libmicrohttpd answers a bad chunk with a page of its own: a body is
     * taken only when its length is said up front. */
    return refuse(h, 411, "a request body needs a Content-Length");
  }
  if (f.too_long) {
    return refuse(h, 413,
                  "request body too large (at most " API_STR(
                      API_BODY_MAX_BYTES) " bytes)");
  }
  h->body_len = f.length;
  return API_HEAD_ACCEPTED;
}
