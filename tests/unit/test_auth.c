/*
 * The API's authentication and roles (api/auth.c) and the "api" section
 * that configures them (config/api_config.c): token comparison, the role
 * each method and path needs, the Authorization header, the decision for
 * each kind of request, and what the loader accepts and refuses, without
 * ever quoting a token.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/auth.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- token comparison ---------------------------------------------------- */

Test(auth_token, compares_equal_only_for_the_same_bytes_and_length) {
  static const struct {
    const char *a, *b;
    bool equal;
  } cases[] = {
      {"0123456789abcdef", "0123456789abcdef", true},
      {"0123456789abcdef", "0123456789abcdeF", false},
      {"0123456789abcdef", "1123456789abcdef", false},
      {"0123456789abcdef", "0123456789abcde", false},
      {"0123456789abcdef", "0123456789abcdef0", false},
      {"0123456789abcdef", "", false},
      {"", "", true},
      {"abc", "abc\0", true}, /* lengths by strlen: the NUL is not part */
      {"a", "b", false},
      {"x", "xx", false},
  };
  for (size_t i = 0; i < N(cases); i++) {
    size_t an = strlen(cases[i].a), bn = strlen(cases[i].b);
    cr_expect_eq(auth_token_equal(cases[i].a, an, cases[i].b, bn),
                 cases[i].equal, "case %zu: \"%s\" vs \"%s\"", i, cases[i].a,
                 cases[i].b);
    cr_expect_eq(auth_token_equal(cases[i].b, bn, cases[i].a, an),
                 cases[i].equal, "case %zu reversed", i);
  }
}

Test(auth_token, a_prefix_of_the_token_is_not_the_token) {
  /* A byte-wise early exit or a comparison over the shorter length would
   * take every prefix for the token. */
  const char *tok = "ops-token-0123456789abcdef";
  for (size_t n = 0; n < strlen(tok); n++) {
    cr_expect_not(auth_token_equal(tok, strlen(tok), tok, n), "prefix %zu", n);
    cr_expect_not(auth_token_equal(tok, n, tok, strlen(tok)), "prefix %zu", n);
  }
}

/* ---- the role each request needs ------------------------------------------
 */

Test(auth_role, each_method_and_path_needs_its_role) {
  static const struct {
    const char *method, *path;
    enum config_api_role role;
  } cases[] = {
      {"GET", "/health", CONFIG_ROLE_NONE},
      {"HEAD", "/health", CONFIG_ROLE_NONE},
      {"POST", "/health", CONFIG_ROLE_NONE},
      {"GET", "/ready", CONFIG_ROLE_NONE},
      {"GET", "/metrics", CONFIG_ROLE_VIEWER},
      {"HEAD", "/metrics", CONFIG_ROLE_VIEWER},
      {"GET", "/api/v1/alerts", CONFIG_ROLE_VIEWER},
      {"GET", "/api/v1/rules", CONFIG_ROLE_VIEWER},
      {"GET", "/api/v1/acks", CONFIG_ROLE_VIEWER},
      {"GET", "/api/v1/silences", CONFIG_ROLE_VIEWER},
      {"GET", "/api/v1/notifications", CONFIG_ROLE_VIEWER},
      {"GET", "/api/v1/status", CONFIG_ROLE_VIEWER},
      {"GET", "/api/v1/latest", CONFIG_ROLE_VIEWER},
      {"GET", "/no/such/path", CONFIG_ROLE_VIEWER},
      {"GET", "/api/v1/alerts/0123456789abcdef/ack", CONFIG_ROLE_VIEWER},
      {"POST", "/api/v1/alerts/0123456789abcdef/ack", CONFIG_ROLE_OPERATOR},
      {"DELETE", "/api/v1/alerts/0123456789abcdef/ack", CONFIG_ROLE_OPERATOR},
      {"POST", "/api/v1/alerts/x/ack", CONFIG_ROLE_OPERATOR},
      {"POST", "/api/v1/silences", CONFIG_ROLE_OPERATOR},
      {"DELETE", "/api/v1/silences/1cce8c7fbaba84db", CONFIG_ROLE_OPERATOR},
      {"POST", "/api/v1/reload", CONFIG_ROLE_ADMIN},
      /* What is not named above is the admin's. */
      {"POST", "/api/v1/alerts//ack", CONFIG_ROLE_ADMIN},
      {"POST", "/api/v1/alerts/a/b/ack", CONFIG_ROLE_ADMIN},
      {"DELETE", "/api/v1/silences", CONFIG_ROLE_ADMIN},
      {"DELETE", "/api/v1/silences/", CONFIG_ROLE_ADMIN},
      {"DELETE", "/api/v1/silences/a/b", CONFIG_ROLE_ADMIN},
      {"POST", "/api/v1/silences/1cce8c7fbaba84db", CONFIG_ROLE_ADMIN},
      {"PUT", "/api/v1/silences", CONFIG_ROLE_ADMIN},
      {"POST", "/metrics", CONFIG_ROLE_ADMIN},
      {"POST", "/api/v1/something_new", CONFIG_ROLE_ADMIN},
      {"OPTIONS", "/api/v1/alerts", CONFIG_ROLE_ADMIN},
      {"get", "/metrics", CONFIG_ROLE_ADMIN}, /* methods are case-sensitive */
  };
  for (size_t i = 0; i < N(cases); i++) {
    enum config_api_role got = auth_role_needed(cases[i].method, cases[i].path);
    cr_expect_eq(got, cases[i].role, "%s %s: %s, want %s", cases[i].method,
                 cases[i].path, config_api_role_name(got),
                 config_api_role_name(cases[i].role));
  }
}

/* ---- the Authorization header ---------------------------------------------
 */

Test(auth_header, parses_bearer_tokens_and_refuses_the_rest) {
  static const struct {
    const char *value; /* NULL: no field */
    enum auth_header want;
    const char *token; /* on AUTH_HEADER_BEARER */
  } cases[] = {
      {NULL, AUTH_HEADER_ABSENT, NULL},
      {"Bearer abc123", AUTH_HEADER_BEARER, "abc123"},
      {"bearer abc123", AUTH_HEADER_BEARER, "abc123"},
      {"BEARER abc123", AUTH_HEADER_BEARER, "abc123"},
      {"Bearer   abc123", AUTH_HEADER_BEARER, "abc123"},
      {"Bearer\tabc123", AUTH_HEADER_BEARER, "abc123"},
      {"Bearer abc123  ", AUTH_HEADER_BEARER, "abc123"},
      {"  Bearer abc123", AUTH_HEADER_BEARER, "abc123"},
      {"Bearer a-b.c_d~e+f/g==", AUTH_HEADER_BEARER, "a-b.c_d~e+f/g=="},
      {"Bearer ==", AUTH_HEADER_BEARER, "=="},
      {"", AUTH_HEADER_MALFORMED, NULL},
      {"Bearer", AUTH_HEADER_MALFORMED, NULL},
      {"Bearer ", AUTH_HEADER_MALFORMED, NULL},
      {"Bearerabc123", AUTH_HEADER_MALFORMED, NULL},
      {"Basic YWRtaW46YWRtaW4=", AUTH_HEADER_MALFORMED, NULL},
      {"Token abc123", AUTH_HEADER_MALFORMED, NULL},
      {"Bearer abc 123", AUTH_HEADER_MALFORMED, NULL},
      {"Bearer abc,123", AUTH_HEADER_MALFORMED, NULL},
      {"Bearer abc=1", AUTH_HEADER_MALFORMED, NULL},
      {"Bearer \"abc123\"", AUTH_HEADER_MALFORMED, NULL},
      {"Bearer abc123, Bearer def456", AUTH_HEADER_MALFORMED, NULL},
      {"Beare abc123", AUTH_HEADER_MALFORMED, NULL},
  };
  for (size_t i = 0; i < N(cases); i++) {
    const char *tok = "x";
    size_t len = 99;
    enum auth_header h = auth_parse_header(cases[i].value, &tok, &len);
    cr_expect_eq(h, cases[i].want, "[%s]: got %d, want %d",
                 cases[i].value ? cases[i].value : "(none)", h, cases[i].want);
    if (cases[i].want == AUTH_HEADER_BEARER && h == AUTH_HEADER_BEARER) {
      cr_expect_eq(len, strlen(cases[i].token), "[%s]", cases[i].value);
      cr_expect_eq(strncmp(tok, cases[i].token, len), 0, "[%s]",
                   cases[i].value);
    } else {
      cr_expect_null(tok, "[%s]", cases[i].value ? cases[i].value : "");
      cr_expect_eq(len, 0);
    }
  }
}

/* ---- decisions -------------------------------------------------------------
 */

#define VIEWER_TOKEN "viewer-0123456789abcdef"
#define OPERATOR_TOKEN "operator-0123456789abcdef"
#define ADMIN_TOKEN "admin-0123456789abcdef"

static struct config_api_token three[] = {
    {.name = "wall-display", .role = CONFIG_ROLE_VIEWER, .token = VIEWER_TOKEN},
    {.name = "ops-duty", .role = CONFIG_ROLE_OPERATOR, .token = OPERATOR_TOKEN},
    {.name = "admin", .role = CONFIG_ROLE_ADMIN, .token = ADMIN_TOKEN},
};

static struct auth *auth_of(struct config_api_token *tokens, size_t n,
                            enum config_api_role anonymous) {
  struct config_api cfg = {.enabled = true,
                           .listen = "127.0.0.1:8080",
                           .tokens = tokens,
                           .ntokens = n,
                           .anonymous = anonymous};
  struct auth *a = auth_new(&cfg);
  cr_assert_not_null(a);
  return a;
}

struct decision_case {
  const char *method, *path;
  const char *authorization; /* NULL: none */
  enum auth_outcome outcome;
  const char *principal;
};

static void check_decisions(const struct auth *a,
                            const struct decision_case *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    struct auth_result r;
    auth_check(a, cases[i].method, cases[i].path, cases[i].authorization,
               cases[i].authorization ? 1 : 0, &r);
    cr_expect_eq(r.outcome, cases[i].outcome, "%s %s [%s]: %s, want %s",
                 cases[i].method, cases[i].path,
                 cases[i].authorization ? cases[i].authorization : "",
                 auth_reason(r.outcome), auth_reason(cases[i].outcome));
    if (cases[i].principal) {
      cr_expect_str_eq(r.principal, cases[i].principal, "%s %s",
                       cases[i].method, cases[i].path);
    }
  }
}

Test(auth_check, every_role_may_do_what_its_rank_allows) {
  struct auth *a = auth_of(three, N(three), CONFIG_ROLE_NONE);
  static const char *const bearer[] = {
      "Bearer " VIEWER_TOKEN, "Bearer " OPERATOR_TOKEN, "Bearer " ADMIN_TOKEN};
  static const char *const names[] = {"wall-display", "ops-duty", "admin"};
  static const struct {
    const char *method, *path;
    int least; /* index of the least role allowed */
  } reqs[] = {
      {"GET", "/metrics", 0},
      {"GET", "/api/v1/alerts", 0},
      {"HEAD", "/api/v1/silences", 0},
      {"POST", "/api/v1/alerts/0123456789abcdef/ack", 1},
      {"DELETE", "/api/v1/alerts/0123456789abcdef/ack", 1},
      {"POST", "/api/v1/silences", 1},
      {"DELETE", "/api/v1/silences/0123456789abcdef", 1},
      {"POST", "/api/v1/reload", 2},
  };
  for (size_t q = 0; q < N(reqs); q++) {
    for (int role = 0; role < 3; role++) {
      struct auth_result r;
      auth_check(a, reqs[q].method, reqs[q].path, bearer[role], 1, &r);
      enum auth_outcome want = role >= reqs[q].least ? AUTH_OK : AUTH_FORBIDDEN;
      cr_expect_eq(r.outcome, want, "%s %s as %s: %s", reqs[q].method,
                   reqs[q].path, names[role], auth_reason(r.outcome));
      cr_expect_str_eq(r.principal, names[role]);
      cr_expect_eq(r.role, (enum config_api_role)(CONFIG_ROLE_VIEWER + role));
    }
  }
  auth_free(a);
}

Test(auth_check, refuses_a_missing_malformed_or_unknown_token_with_401) {
  struct auth *a = auth_of(three, N(three), CONFIG_ROLE_NONE);
  static const struct decision_case cases[] = {
      {"GET", "/metrics", NULL, AUTH_MISSING, "anonymous"},
      {"GET", "/metrics", "Basic YWRtaW46YWRtaW4=", AUTH_MALFORMED, NULL},
      {"GET", "/metrics", "Bearer", AUTH_MALFORMED, NULL},
      {"GET", "/metrics", "Bearer wrong-0123456789abcdef", AUTH_INVALID, NULL},
      {"GET", "/metrics", "Bearer " VIEWER_TOKEN "x", AUTH_INVALID, NULL},
      {"GET", "/metrics", "Bearer viewer-0123456789abcde", AUTH_INVALID, NULL},
      {"POST", "/api/v1/reload", "Bearer " OPERATOR_TOKEN, AUTH_FORBIDDEN,
       "ops-duty"},
      /* /health and /ready are open, whatever is sent. */
      {"GET", "/health", NULL, AUTH_OK, "anonymous"},
      {"GET", "/ready", "Bearer wrong-0123456789abcdef", AUTH_OK, NULL},
      {"GET", "/health", "Basic YWRtaW46YWRtaW4=", AUTH_OK, NULL},
  };
  check_decisions(a, cases, N(cases));
  auth_free(a);
}

Test(auth_check, an_anonymous_role_serves_requests_without_a_token_only) {
  struct auth *a = auth_of(three, N(three), CONFIG_ROLE_VIEWER);
  static const struct decision_case cases[] = {
      {"GET", "/metrics", NULL, AUTH_OK, "anonymous"},
      {"POST", "/api/v1/silences", NULL, AUTH_MISSING, "anonymous"},
      /* A wrong token is refused even though no token would do. */
      {"GET", "/metrics", "Bearer wrong-0123456789abcdef", AUTH_INVALID, NULL},
      {"GET", "/metrics", "Digest x", AUTH_MALFORMED, NULL},
      {"POST", "/api/v1/silences", "Bearer " OPERATOR_TOKEN, AUTH_OK,
       "ops-duty"},
  };
  check_decisions(a, cases, N(cases));
  auth_free(a);
}

Test(auth_check, without_tokens_the_default_admin_role_keeps_the_api_open) {
  struct auth *a = auth_of(NULL, 0, CONFIG_ROLE_ADMIN);
  cr_expect_not(auth_has_tokens(a));
  static const struct decision_case cases[] = {
      {"GET", "/metrics", NULL, AUTH_OK, "anonymous"},
      {"POST", "/api/v1/silences", NULL, AUTH_OK, "anonymous"},
      {"POST", "/api/v1/reload", NULL, AUTH_OK, "anonymous"},
      {"GET", "/metrics", "Bearer any-0123456789abcdef", AUTH_INVALID, NULL},
  };
  check_decisions(a, cases, N(cases));
  auth_free(a);
}

Test(auth_check, two_authorization_fields_are_malformed) {
  struct auth *a = auth_of(three, N(three), CONFIG_ROLE_NONE);
  struct auth_result r;
  auth_check(a, "GET", "/metrics", "Bearer " ADMIN_TOKEN, 2, &r);
  cr_expect_eq(r.outcome, AUTH_MALFORMED);
  auth_free(a);
}

Test(auth_check, the_copy_outlives_the_configuration) {
  struct config_api_token t = {.name = strdup("ops"),
                               .role = CONFIG_ROLE_OPERATOR,
                               .token = strdup(OPERATOR_TOKEN)};
  struct auth *a = auth_of(&t, 1, CONFIG_ROLE_NONE);
  free(t.name);
  free(t.token);
  struct auth_result r;
  auth_check(a, "POST", "/api/v1/silences", "Bearer " OPERATOR_TOKEN, 1, &r);
  cr_expect_eq(r.outcome, AUTH_OK);
  cr_expect_str_eq(r.principal, "ops");
  auth_free(a);
}

Test(auth_message, names_the_role_needed_and_never_the_token) {
  struct auth *a = auth_of(three, N(three), CONFIG_ROLE_NONE);
  static const struct {
    const char *method, *path, *authorization, *want;
  } cases[] = {
      {"POST", "/api/v1/silences", "Bearer " VIEWER_TOKEN,
       "role viewer may not POST /api/v1/silences; operator needed"},
      {"POST", "/api/v1/reload", "Bearer " OPERATOR_TOKEN,
       "role operator may not POST /api/v1/reload; admin needed"},
      {"GET", "/metrics", NULL,
       "authentication required: send \"Authorization: Bearer <token>\" "
       "(viewer needed)"},
      {"GET", "/metrics", "Bearer wrong-0123456789abcdef",
       "the bearer token is not valid"},
      {"GET", "/metrics", "Basic wrong-0123456789abcdef",
       "the Authorization header is not one \"Bearer <token>\""},
  };
  for (size_t i = 0; i < N(cases); i++) {
    struct auth_result r;
    auth_check(a, cases[i].method, cases[i].path, cases[i].authorization,
               cases[i].authorization ? 1 : 0, &r);
    char msg[320];
    auth_message(&r, cases[i].method, cases[i].path, msg, sizeof msg);
    cr_expect_str_eq(msg, cases[i].want);
    cr_expect_null(strstr(msg, "0123456789abcdef"), "%s", msg);
  }
  auth_free(a);
}

/* ---- the "api" section ------------------------------------------------------
 */

#define CFG_HEAD "{\"file\": {}, \"subscriptions\": [{\"topic\": \"t\"}],\n"

/* Loads text from a file in dir (so token_file is found next to it).
 * Returns the rc; *cfg and errors as config_load_text leaves them. */
static int load_in(const char *dir, const char *text, struct config **cfg,
                   struct buf *errors) {
  char path[512];
  snprintf(path, sizeof path, "%s/iocd.jsonc", dir);
  buf_init(errors, 0);
  return config_load_text(path, text, strlen(text), cfg, errors);
}

static void tmpdir(char *out, size_t n) {
  snprintf(out, n, "/tmp/iocd-auth-XXXXXX");
  cr_assert_not_null(mkdtemp(out));
}

static void write_file(const char *dir, const char *name, const char *text,
                       mode_t mode) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
  chmod(path, mode);
}

static void remove_file(const char *dir, const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  unlink(path);
}

Test(api_config, reads_tokens_from_the_file_and_from_files_by_name) {
  char dir[64];
  tmpdir(dir, sizeof dir);
  write_file(dir, "ops.token", "ops-0123456789abcdef\n", 0600);
  setenv("IOCD_TEST_ADMIN_TOKEN", "admin-0123456789abcdef", 1);
  struct config *cfg;
  struct buf errors;
  int rc = load_in(dir,
                   CFG_HEAD
                   "\"api\": {\"tokens\": [\n"
                   " {\"name\": \"wall\", \"role\": \"viewer\", \"token\": "
                   "\"viewer-0123456789abcdef\"},\n"
                   " {\"name\": \"ops\", \"role\": \"operator\", "
                   "\"token_file\": \"ops.token\"},\n"
                   " {\"name\": \"root\", \"role\": \"admin\", \"token\": "
                   "\"${IOCD_TEST_ADMIN_TOKEN}\"}]}}\n",
                   &cfg, &errors);
  cr_assert_eq(rc, IOCD_OK, "%s", errors.data ? errors.data : "");
  cr_assert_eq(cfg->api.ntokens, 3);
  cr_expect_str_eq(cfg->api.tokens[0].token, "viewer-0123456789abcdef");
  cr_expect_str_eq(cfg->api.tokens[1].token, "ops-0123456789abcdef");
  cr_expect_eq(cfg->api.tokens[1].role, CONFIG_ROLE_OPERATOR);
  cr_expect_str_eq(cfg->api.tokens[2].token, "admin-0123456789abcdef");
  cr_expect_eq(cfg->api.anonymous, CONFIG_ROLE_NONE, "tokens: none by default");
  cr_expect_not(cfg->api.anonymous_set);
  config_free(cfg);
  buf_cleanup(&errors);
  remove_file(dir, "ops.token");
  rmdir(dir);
}

Test(api_config, without_tokens_anonymous_requests_are_admin) {
  char dir[64];
  tmpdir(dir, sizeof dir);
  struct config *cfg;
  struct buf errors;
  cr_assert_eq(load_in(dir, CFG_HEAD "\"api\": {}}\n", &cfg, &errors), IOCD_OK);
  cr_expect_eq(cfg->api.anonymous, CONFIG_ROLE_ADMIN);
  cr_expect_eq(cfg->api.ntokens, 0);
  config_free(cfg);
  buf_cleanup(&errors);
  cr_assert_eq(load_in(dir, CFG_HEAD "\"api\": {\"anonymous\": \"viewer\"}}\n",
                       &cfg, &errors),
               IOCD_OK);
  cr_expect_eq(cfg->api.anonymous, CONFIG_ROLE_VIEWER);
  cr_expect(cfg->api.anonymous_set);
  config_free(cfg);
  buf_cleanup(&errors);
  rmdir(dir);
}

Test(api_config, refuses_what_is_wrong_without_quoting_a_token) {
  char dir[64];
  tmpdir(dir, sizeof dir);
  write_file(dir, "short.token", "short-secret\n", 0600);
  static const struct {
    const char *what, *api, *want;
  } cases[] = {
      {"a short token",
       "{\"tokens\": [{\"name\": \"a\", \"role\": \"viewer\", \"token\": "
       "\"tiny-secret\"}]}",
       "api.tokens[0].token: the token has 11 bytes; at least 16 are needed"},
      {"a short token file",
       "{\"tokens\": [{\"name\": \"a\", \"role\": \"viewer\", \"token_file\": "
       "\"short.token\"}]}",
       "api.tokens[0].token_file: the token has 12 bytes"},
      {"a token with a space",
       "{\"tokens\": [{\"name\": \"a\", \"role\": \"viewer\", \"token\": "
       "\"secret with spaces 123\"}]}",
       "api.tokens[0].token: a token holds only letters, digits"},
      {"a token twice",
       "{\"tokens\": [{\"name\": \"a\", \"role\": \"viewer\", \"token\": "
       "\"same-secret-0123456789\"}, {\"name\": \"b\", \"role\": \"admin\", "
       "\"token\": \"same-secret-0123456789\"}]}",
       "api.tokens[1].token: the same token as tokens[0]"},
      {"a name twice",
       "{\"tokens\": [{\"name\": \"a\", \"role\": \"viewer\", \"token\": "
       "\"one-secret-0123456789\"}, {\"name\": \"a\", \"role\": \"admin\", "
       "\"token\": \"two-secret-0123456789\"}]}",
       "\"a\" is already the name of tokens[0]"},
      {"the name anonymous",
       "{\"tokens\": [{\"name\": \"anonymous\", \"role\": \"viewer\", "
       "\"token\": \"one-secret-0123456789\"}]}",
       "api.tokens[0].name: \"anonymous\" names requests without a token"},
      {"an unknown role",
       "{\"tokens\": [{\"name\": \"a\", \"role\": \"root\", \"token\": "
       "\"one-secret-0123456789\"}]}",
       "api.tokens[0].role: expected \"viewer\", \"operator\" or \"admin\""},
      {"none is no role for a token",
       "{\"tokens\": [{\"name\": \"a\", \"role\": \"none\", \"token\": "
       "\"one-secret-0123456789\"}]}",
       "api.tokens[0].role: expected"},
      {"no token", "{\"tokens\": [{\"name\": \"a\", \"role\": \"viewer\"}]}",
       "api.tokens[0].token: required (or \"token_file\""},
      {"token and token_file",
       "{\"tokens\": [{\"name\": \"a\", \"role\": \"viewer\", \"token\": "
       "\"one-secret-0123456789\", \"token_file\": \"short.token\"}]}",
       "api.tokens[0].token_file: give either \"token\" or \"token_file\""},
      {"a missing token file",
       "{\"tokens\": [{\"name\": \"a\", \"role\": \"viewer\", \"token_file\": "
       "\"nope.token\"}]}",
       "nope.token\": No such file"},
      {"an unset variable",
       "{\"tokens\": [{\"name\": \"a\", \"role\": \"viewer\", \"token\": "
       "\"${IOCD_TEST_UNSET_TOKEN}\"}]}",
       "IOCD_TEST_UNSET_TOKEN"},
      {"an anonymous role that is not one", "{\"anonymous\": \"guest\"}",
       "api.anonymous: expected"},
      {"a public address without tokens", "{\"listen\": \"0.0.0.0:8080\"}",
       "api.listen: not a loopback address, and no tokens are set: anyone "
       "on the network could acknowledge alerts, silence them and reload "
       "the configuration"},
      {"a public IPv6 address without tokens", "{\"listen\": \"[::]:8080\"}",
       "api.listen: not a loopback address"},
      {"a certificate without a key", "{\"tls\": {\"cert_file\": \"c.pem\"}}",
       "api.tls.key_file: required when api.tls.cert_file is set"},
      {"a key without a certificate", "{\"tls\": {\"key_file\": \"k.pem\"}}",
       "api.tls.cert_file: required when api.tls.key_file is set"},
      {"certificate files that are not PEM",
       "{\"tls\": {\"cert_file\": \"short.token\", \"key_file\": "
       "\"short.token\"}}",
       "api.tls.cert_file: \"" /* the resolved path follows */},
  };
  for (size_t i = 0; i < N(cases); i++) {
    char text[1024];
    snprintf(text, sizeof text, CFG_HEAD "\"api\": %s}\n", cases[i].api);
    struct config *cfg;
    struct buf errors;
    int rc = load_in(dir, text, &cfg, &errors);
    const char *e = errors.data ? errors.data : "";
    cr_expect_eq(rc, IOCD_EPARSE, "%s: rc %d", cases[i].what, rc);
    cr_expect(strstr(e, cases[i].want) != NULL, "%s:\ngot:  %swant: %s",
              cases[i].what, e, cases[i].want);
    cr_expect_null(strstr(e, "secret"), "%s quotes a token: %s", cases[i].what,
                   e);
    config_free(cfg);
    buf_cleanup(&errors);
  }
  remove_file(dir, "short.token");
  rmdir(dir);
}

Test(api_config, a_public_address_is_accepted_with_tokens_or_a_chosen_role) {
  char dir[64];
  tmpdir(dir, sizeof dir);
  static const char *const apis[] = {
      "{\"listen\": \"0.0.0.0:8080\", \"tokens\": [{\"name\": \"a\", "
      "\"role\": \"viewer\", \"token\": \"one-0123456789abcdef\"}]}",
      "{\"listen\": \"0.0.0.0:8080\", \"anonymous\": \"viewer\"}",
      "{\"listen\": \"0.0.0.0:8080\", \"anonymous\": \"admin\"}",
      "{\"listen\": \"127.0.0.2:8080\"}",
      "{\"listen\": \"localhost:8080\"}",
      "{\"listen\": \"[::1]:8080\"}",
      "{\"listen\": \"0.0.0.0:8080\", \"enabled\": false}",
  };
  for (size_t i = 0; i < N(apis); i++) {
    char text[1024];
    snprintf(text, sizeof text, CFG_HEAD "\"api\": %s}\n", apis[i]);
    struct config *cfg;
    struct buf errors;
    int rc = load_in(dir, text, &cfg, &errors);
    cr_expect_eq(rc, IOCD_OK, "%s: %s", apis[i],
                 errors.data ? errors.data : "");
    config_free(cfg);
    buf_cleanup(&errors);
  }
  rmdir(dir);
}

Test(api_config, a_disabled_api_reads_no_token_file) {
  char dir[64];
  tmpdir(dir, sizeof dir);
  struct config *cfg;
  struct buf errors;
  int rc = load_in(dir,
                   CFG_HEAD
                   "\"api\": {\"enabled\": false, \"tokens\": [{\"name\": "
                   "\"a\", \"role\": \"viewer\", \"token_file\": "
                   "\"absent.token\"}]}}\n",
                   &cfg, &errors);
  cr_expect_eq(rc, IOCD_OK, "%s", errors.data ? errors.data : "");
  config_free(cfg);
  buf_cleanup(&errors);
  rmdir(dir);
}
