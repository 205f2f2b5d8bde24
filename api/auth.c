/*
 * The API's authentication and roles (auth.h). A presented token is
 * compared with every configured one, each comparison over the longer of
 * the two lengths, and the match is picked with masks rather than a branch
 * or an early exit, so the time taken says nothing about how much of a
 * token was right, nor which token matched.
 */
#include "api/auth.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct auth_token {
  char *name;
  char *token;
  size_t len;
  enum config_api_role role;
};

struct auth {
  struct auth_token *tokens;
  size_t n;
  enum config_api_role anonymous;
};

static bool is_path(const char *path, const char *want) {
  return strcmp(path, want) == 0;
}

/* path is prefix followed by one non-empty segment, then suffix. */
static bool one_segment(const char *path, const char *prefix,
                        const char *suffix) {
  size_t np = strlen(prefix), ns = strlen(suffix), n = strlen(path);
  if (n <= np + ns || strncmp(path, prefix, np) != 0 ||
      strcmp(path + n - ns, suffix) != 0) {
    return false;
  }
  return memchr(path + np, '/', n - np - ns) == NULL;
}

enum config_api_role auth_role_needed(const char *method, const char *path) {
  if (is_path(path, "/health") || is_path(path, "/ready")) {
    return CONFIG_ROLE_NONE;
  }
  bool post = strcmp(method, "POST") == 0;
  bool del = strcmp(method, "DELETE") == 0;
  if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
    return CONFIG_ROLE_VIEWER;
  }
  if (((post || del) && one_segment(path, "/api/v1/alerts/", "/ack")) ||
      (post && is_path(path, "/api/v1/silences")) ||
      (del && one_segment(path, "/api/v1/silences/", ""))) {
    return CONFIG_ROLE_OPERATOR;
  }
  return CONFIG_ROLE_ADMIN;
}

/* 1 when x < y, without a branch; both below SIZE_MAX / 2. */
static size_t lt(size_t x, size_t y) {
  return (x - y) >> (sizeof(size_t) * 8 - 1);
}

bool auth_token_equal(const char *a, size_t an, const char *b, size_t bn) {
  size_t n = an > bn ? an : bn;
  unsigned diff = 0;
  for (size_t i = 0; i < n; i++) {
    /* Past its end, a side reads its byte 0 and masks it to 0. */
    size_t ma = (size_t)0 - lt(i, an);
    size_t mb = (size_t)0 - lt(i, bn);
    unsigned ca = (unsigned char)a[i & ma] & (unsigned)(ma & 0xFF);
    unsigned cb = (unsigned char)b[i & mb] & (unsigned)(mb & 0xFF);
    diff |= ca ^ cb;
  }
  size_t d = (an ^ bn) | diff;
  return d == 0;
}

static bool is_space(char ch) {
  return ch == ' ' || ch == '\t';
}

static bool is_token_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         (ch >= '0' && ch <= '9') || (ch && strchr("-._~+/", ch));
}

enum auth_header auth_parse_header(const char *value, const char **token,
                                   size_t *len) {
  *token = NULL;
  *len = 0;
  if (!value) {
    return AUTH_HEADER_ABSENT;
  }
  const char *p = value;
  while (is_space(*p)) {
    p++;
  }
  static const char scheme[] = "bearer";
  for (size_t i = 0; i < sizeof scheme - 1; i++, p++) {
    char ch = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
    if (ch != scheme[i]) {
      return AUTH_HEADER_MALFORMED;
    }
  }
  if (!is_space(*p)) {
    return AUTH_HEADER_MALFORMED;
  }
  while (is_space(*p)) {
    p++;
  }
  const char *start = p;
  while (is_token_char(*p)) {
    p++;
  }
  while (*p == '=') {
    p++;
  }
  const char *end = p;
  while (is_space(*p)) {
    p++;
  }
  if (end == start || *p) {
    return AUTH_HEADER_MALFORMED;
  }
  *token = start;
  *len = (size_t)(end - start);
  return AUTH_HEADER_BEARER;
}

/* Overwrites a token before its memory is freed. */
static void scrub_free(char *s, size_t n) {
  if (s) {
    volatile char *p = s;
    for (size_t i = 0; i < n; i++) {
      p[i] = '\0';
    }
    free(s);
  }
}

struct auth *auth_new(const struct config_api *cfg) {
  struct auth *a = calloc(1, sizeof *a);
  if (!a) {
    return NULL;
  }
  a->anonymous = cfg->anonymous;
  a->tokens = calloc(cfg->ntokens ? cfg->ntokens : 1, sizeof *a->tokens);
  if (!a->tokens) {
    free(a);
    return NULL;
  }
  for (size_t i = 0; i < cfg->ntokens; i++) {
    const struct config_api_token *t = &cfg->tokens[i];
    if (!t->name || !t->token) {
      continue; /* the loader reported it; a failed load is not used */
    }
    struct auth_token *o = &a->tokens[a->n];
    o->name = strdup(t->name);
    o->token = strdup(t->token);
    o->len = strlen(t->token);
    o->role = t->role;
    a->n++;
    if (!o->name || !o->token) {
      auth_free(a);
      return NULL;
    }
  }
  return a;
}

void auth_free(struct auth *a) {
  if (!a) {
    return;
  }
  for (size_t i = 0; i < a->n; i++) {
    free(a->tokens[i].name);
    scrub_free(a->tokens[i].token, a->tokens[i].len);
  }
  free(a->tokens);
  free(a);
}

bool auth_has_tokens(const struct auth *a) {
  return a->n > 0;
}

/* The configured token equal to t, or NULL: every one is compared, and the
 * match is kept by a mask. */
static const struct auth_token *find_token(const struct auth *a, const char *t,
                                           size_t n) {
  size_t found = SIZE_MAX;
  for (size_t i = 0; i < a->n; i++) {
    size_t eq = auth_token_equal(a->tokens[i].token, a->tokens[i].len, t, n);
    size_t m = (size_t)0 - eq;
    found = (i & m) | (found & ~m);
  }
  return found == SIZE_MAX ? NULL : &a->tokens[found];
}

void auth_check(const struct auth *a, const char *method, const char *path,
                const char *authorization, unsigned nfields,
                struct auth_result *r) {
  r->needed = auth_role_needed(method, path);
  r->role = CONFIG_ROLE_NONE;
  r->principal = "anonymous";
  const char *tok;
  size_t n;
  enum auth_header h = auth_parse_header(authorization, &tok, &n);
  if (nfields > 1) {
    h = AUTH_HEADER_MALFORMED;
  }
  if (h == AUTH_HEADER_ABSENT) {
    r->role = a->anonymous;
    r->outcome = r->role >= r->needed ? AUTH_OK : AUTH_MISSING;
    return;
  }
  if (r->needed == CONFIG_ROLE_NONE) {
    r->outcome = AUTH_OK; /* /health and /ready read no credentials */
    return;
  }
  if (h == AUTH_HEADER_MALFORMED) {
    r->outcome = AUTH_MALFORMED;
    return;
  }
  const struct auth_token *t = find_token(a, tok, n);
  if (!t) {
    r->outcome = AUTH_INVALID;
    return;
  }
  r->role = t->role;
  r->principal = t->name;
  r->outcome = t->role >= r->needed ? AUTH_OK : AUTH_FORBIDDEN;
}

const char *auth_reason(enum auth_outcome o) {
  switch (o) {
    case AUTH_MISSING:
      return "missing";
    case AUTH_MALFORMED:
      return "malformed";
    case AUTH_INVALID:
      return "invalid";
    case AUTH_FORBIDDEN:
      return "forbidden";
    case AUTH_OK:
      break;
  }
  return "";
}

void auth_message(const struct auth_result *r, const char *method,
                  const char *path, char *out, size_t n) {
  switch (r->outcome) {
    case AUTH_MISSING:
      snprintf(out, n,
               "authentication required: send \"Authorization: Bearer "
               "<token>\" (%s needed)",
               config_api_role_name(r->needed));
      break;
    case AUTH_MALFORMED:
      snprintf(out, n,
               "the Authorization header is not one \"Bearer <token>\"");
      break;
    case AUTH_INVALID:
      snprintf(out, n, "the bearer token is not valid");
      break;
    case AUTH_FORBIDDEN:
      snprintf(out, n, "role %s may not %s %.200s; %s needed",
               config_api_role_name(r->role), method, path,
               config_api_role_name(r->needed));
      break;
    case AUTH_OK:
      snprintf(out, n, "allowed");
      break;
  }
}
