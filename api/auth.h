/*
 * Who may do what on the API: the role each method and path needs, the
 * bearer token of a request's Authorization header, and the decision.
 * Roles are ordered (config/config.h): viewer reads (every GET and HEAD),
 * operator also acknowledges and silences, admin may do everything, which
 * includes POST /api/v1/reload and any method or path not named here (so an
 * endpoint added later is the admin's until it is listed). /health and
 * /ready are open to every client. Tokens are compared in constant time,
 * each against every configured one; nothing here logs or keeps a token
 * that a request presented.
 */
#ifndef IOCD_API_AUTH_H
#define IOCD_API_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

/* The role that method on path needs: CONFIG_ROLE_NONE for /health and
 * /ready, CONFIG_ROLE_VIEWER for GET and HEAD, CONFIG_ROLE_OPERATOR for
 * POST and DELETE of /api/v1/alerts/{id}/ack, POST /api/v1/silences and
 * DELETE /api/v1/silences/{id}, CONFIG_ROLE_ADMIN for everything else. */
enum config_api_role auth_role_needed(const char *method, const char *path);

/* Whether a (an bytes) and b (bn bytes) are equal, in a time that depends
 * on the longer length only: every byte up to it is compared, without an
 * early exit at the first difference. Both point to at least one readable
 * byte (a C string's NUL will do). */
bool auth_token_equal(const char *a, size_t an, const char *b, size_t bn);

enum auth_header {
  AUTH_HEADER_ABSENT,   /* no Authorization field */
  AUTH_HEADER_BEARER,   /* "Bearer <token>" */
  AUTH_HEADER_MALFORMED /* another scheme, no token, or a malformed one */
};

/* Parses the value of an Authorization field (NULL when absent): the
 * scheme "Bearer" in any case, one or more spaces or tabs, and a token of
 * RFC 6750's characters (letters, digits, "-._~+/", then any "="), spaces
 * or tabs after it allowed. On AUTH_HEADER_BEARER, *token and *len point
 * into value. */
enum auth_header auth_parse_header(const char *value, const char **token,
                                   size_t *len);

/* The configured tokens, copied (owned by struct auth, scrubbed when it is
 * freed), and the anonymous role. */
struct auth;

/* Copies what cfg says. Returns NULL on ENOMEM. */
struct auth *auth_new(const struct config_api *cfg);
void auth_free(struct auth *a);

/* Whether any token is configured. */
bool auth_has_tokens(const struct auth *a);

enum auth_outcome {
  AUTH_OK,        /* allowed */
  AUTH_MISSING,   /* 401: no token, and the anonymous role is too low */
  AUTH_MALFORMED, /* 401: an Authorization field that is not a bearer
                     token, or more than one field */
  AUTH_INVALID,   /* 401: a token that is not a configured one */
  AUTH_FORBIDDEN  /* 403: a known token whose role is too low */
};

struct auth_result {
  enum auth_outcome outcome;
  enum config_api_role needed; /* what the request needs */
  enum config_api_role role;   /* what its principal has */
  /* The token's name, or "anonymous"; borrowed from a, valid until a is
   * freed (AUTH_OK and AUTH_FORBIDDEN). */
  const char *principal;
};

/* Decides on a request: method and path as received, authorization the
 * value of its Authorization field (NULL when absent) and nfields the
 * number of such fields. A presented token that is malformed or unknown
 * is refused even when the anonymous role would do. */
void auth_check(const struct auth *a, const char *method, const char *path,
                const char *authorization, unsigned nfields,
                struct auth_result *r);

/* The label of an outcome for iocd_api_auth_failures_total{reason}:
 * "missing", "malformed", "invalid", "forbidden" ("" for AUTH_OK). */
const char *auth_reason(enum auth_outcome o);

/* The sentence of a refusal (r->outcome is not AUTH_OK) into out (n
 * bytes), naming the role needed for a 403 and never the token: "role
 * viewer may not POST /api/v1/silences; operator needed". */
void auth_message(const struct auth_result *r, const char *method,
                  const char *path, char *out, size_t n);

#endif
