/*
 * The origin of a URL: scheme, host and port, found by their delimiters
 * (RFC 3986, section 3.2: the authority ends at the first '/', '?' or '#',
 * and the user information ends at its last '@').
 */
#include "core/url.h"

#include <stdio.h>
#include <string.h>

const char *url_rest(const char *url) {
  const char *sep = url ? strstr(url, "://") : NULL;
  if (!sep || sep == url) {
    return NULL;
  }
  const char *host = sep + 3;
  return host + strcspn(host, "/?#");
}

bool url_origin(const char *url, char *out, size_t n) {
  if (n) {
    out[0] = '\0';
  }
  const char *rest = url_rest(url);
  if (!rest || !n) {
    return false;
  }
  const char *sep = strstr(url, "://");
  const char *host = sep + 3;
  size_t alen = (size_t)(rest - host);
  for (size_t i = alen; i > 0; i--) {
    if (host[i - 1] == '@') {
      host += i;
      alen -= i;
      break;
    }
  }
  int w =
      snprintf(out, n, "%.*s://%.*s", (int)(sep - url), url, (int)alen, host);
  if (w < 0 || (size_t)w >= n) {
    out[0] = '\0';
    return false;
  }
  return true;
}
