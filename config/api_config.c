/*
 * The "api" section: where the HTTP API listens, who may use it (bearer
 * tokens, each with a role, and the role of a request without one) and
 * HTTPS. A token is a secret like a receiver's: written with ${NAME} or
 * read from token_file at each load (so a reload re-reads it), and never
 * quoted in a message. Listening beyond the loopback with no token and no
 * explicit "anonymous" is refused: anyone on the network could acknowledge,
 * silence and reload.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "config/config_int.h"
#include "core/file.h"
#include "core/log.h"

/* A token's least length, and how many there may be. */
#define TOKEN_MIN 16u
#define TOKENS_MAX 100
/* A certificate chain or a key in PEM is a few KiB. */
#define PEM_MAX (1u << 20)

_Static_assert(sizeof(enum config_api_role) == sizeof(int), "enum size");

/* "anonymous" takes "none"; a token's role does not. */
static const struct cw_enum anonymous_names[] = {
    {"none", CONFIG_ROLE_NONE},
    {"viewer", CONFIG_ROLE_VIEWER},
    {"operator", CONFIG_ROLE_OPERATOR},
    {"admin", CONFIG_ROLE_ADMIN},
    {NULL, 0},
};

static const struct cw_enum role_names[] = {
    {"viewer", CONFIG_ROLE_VIEWER},
    {"operator", CONFIG_ROLE_OPERATOR},
    {"admin", CONFIG_ROLE_ADMIN},
    {NULL, 0},
};

const char *config_api_role_name(enum config_api_role r) {
  return cw_enum_name(anonymous_names, (int)r);
}

static void set_token(struct cw *c, struct cw_val v, void *base) {
  struct config_api_token *t = base;
  free(t->token);
  t->token = config__get_secret(c, v);
}

/* "token" or "token_file", one of them. */
static void token_check(struct cw *c, struct cw_val v, void *base) {
  struct config_api_token *t = base;
  struct cw_val tv, fv;
  bool has_token = cw_find_child(c, v, "token", &tv);
  bool has_file = cw_find_child(c, v, "token_file", &fv);
  if (has_token && has_file) {
    cw_report_key(c, "token_file", cw_voff(c, fv),
                  "give either \"token\" or \"token_file\", not both");
  } else if (!has_token && !has_file) {
    cw_report_key(c, "token", cw_voff(c, v),
                  "required (or \"token_file\", a file holding it)");
  }
  config__resolve_path(c, &t->token_file);
}

#define T struct config_api_token
static const struct cw_key token_keys[] = {
    {.name = "name",
     .type = CW_STR,
     .off = offsetof(T, name),
     .flags = CW_REQ | CW_NAME},
    {.name = "role",
     .type = CW_ENUM,
     .off = offsetof(T, role),
     .names = role_names,
     .flags = CW_REQ | CW_RAW},
    {.name = "token", .type = CW_FN, .set = set_token},
    {.name = "token_file", .type = CW_STR, .off = offsetof(T, token_file)},
};
#undef T
static const struct cw_object token_object =
    CW_OBJECT(token_keys, NULL, token_check);

static void token_init(struct cw *c, void *item) {
  cw_defaults(c, &token_object, item);
}

static void set_tokens(struct cw *c, struct cw_val v, void *base) {
  struct config_api *a = base;
  struct cw_val *items;
  a->tokens =
      cw_get_objects(c, v, &token_object, sizeof *a->tokens, TOKENS_MAX,
                     "an array of tokens", token_init, &a->ntokens, &items);
  free(items);
}

#define T struct config_api_tls
static const struct cw_key tls_keys[] = {
    {.name = "cert_file", .type = CW_STR, .off = offsetof(T, cert_file)},
    {.name = "key_file", .type = CW_STR, .off = offsetof(T, key_file)},
};
#undef T
static const struct cw_object tls_object = CW_OBJECT(tls_keys, NULL, NULL);

static void api_check(struct cw *c, struct cw_val v, void *base);

#define T struct config_api
static const struct cw_key api_keys[] = {
    {.name = "enabled", .type = CW_BOOL, .off = offsetof(T, enabled), .def = 1},
    {.name = "listen",
     .type = CW_STR,
     .off = offsetof(T, listen),
     .def_str = "127.0.0.1:8080"},
    CW_FN_OF("tokens", set_tokens, CW_LIST, &token_object),
    {.name = "anonymous",
     .type = CW_ENUM,
     .off = offsetof(T, anonymous),
     .names = anonymous_names,
     .def = CONFIG_ROLE_ADMIN,
     .flags = CW_RAW},
    {.name = "tls",
     .type = CW_OBJ,
     .off = offsetof(T, tls),
     .obj = &tls_object},
    {.name = "loop_share_percent",
     .type = CW_INT,
     .off = offsetof(T, loop_share_pct),
     .store = CW_AS_INT,
     .min = 5,
     .max = 100,
     .def = CONFIG_API_LOOP_SHARE_DEFAULT},
};
#undef T
const struct cw_object config__api_obj = CW_OBJECT(api_keys, NULL, api_check);

/* "HOST:PORT" with a port from 1 to 65535, as api_new accepts it. */
static bool listen_ok(const char *s) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || colon[1] < '0' || colon[1] > '9') {
    return false;
  }
  char *end;
  long port = strtol(colon + 1, &end, 10);
  return *end == '\0' && port >= 1 && port <= 65535;
}

/* Whether listen's host is a loopback address (127.0.0.0/8, ::1,
 * "localhost"): only local processes can connect. */
static bool listen_loopback(const char *listen) {
  const char *colon = strrchr(listen, ':');
  char host[128];
  size_t n = (size_t)(colon - listen);
  if (listen[0] == '[' && n >= 2 && listen[n - 1] == ']') {
    listen++;
    n -= 2;
  }
  if (n >= sizeof host) {
    return false;
  }
  memcpy(host, listen, n);
  host[n] = '\0';
  struct in_addr a4;
  struct in6_addr a6;
  if (strcmp(host, "localhost") == 0) {
    return true;
  }
  if (inet_pton(AF_INET, host, &a4) == 1) {
    return (ntohl(a4.s_addr) >> 24) == 127;
  }
  return inet_pton(AF_INET6, host, &a6) == 1 &&
         memcmp(&a6, &in6addr_loopback, sizeof a6) == 0;
}

/* The characters of a bearer token (RFC 6750 b64token): letters, digits,
 * "-._~+/", then any number of "=". Returns true when s (n bytes) is one. */
static bool token_chars_ok(const char *s, size_t n) {
  size_t i = 0;
  for (; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9');
    if (!alnum && !strchr("-._~+/", ch)) {
      break;
    }
  }
  while (i < n && s[i] == '=') {
    i++;
  }
  return i == n && n > 0;
}

/* Whether s (n bytes) is text with a PEM block ("-----BEGIN ..."). */
static bool is_pem(const char *s, size_t n) {
  static const char begin[] = "-----BEGIN ";
  size_t bn = sizeof begin - 1;
  bool found = false;
  for (size_t i = 0; s && i < n; i++) {
    if (s[i] == '\0') {
      return false;
    }
    found = found || (n - i >= bn && memcmp(s + i, begin, bn) == 0);
  }
  return found;
}

/* Reads a PEM file of "api.tls" (key: the file at key of tls object v)
 * into *dst. Problems name the file, never its content. */
static void read_pem(struct cw *c, struct cw_val v, const char *key,
                     const char *path, bool secret, char **dst) {
  struct cw_val fv;
  if (!path || !cw_find_child(c, v, key, &fv)) {
    return;
  }
  struct buf b;
  buf_init(&b, PEM_MAX);
  struct iocd_err err;
  struct cw_desc d;
  cw_quoted(c, path, &d);
  size_t mark = cw_path_key(c, key);
  int rc = file_read(path, &b, &err);
  if (rc == IOCD_ENOMEM) {
    c->nomem = true;
  } else if (rc == IOCD_ETOOBIG) {
    cw_report(c, cw_voff(c, fv), "cannot read %s: larger than %u MiB",
              cw_qs(&d), PEM_MAX >> 20);
  } else if (rc) {
    cw_report(c, cw_voff(c, fv), "cannot read %s: %s", cw_qs(&d), err.msg);
  } else if (!is_pem(b.data, b.len)) {
    cw_report(c, cw_voff(c, fv), "%s is not in PEM (\"-----BEGIN ...\")",
              cw_qs(&d));
  } else {
    free(*dst);
    *dst = strndup(b.data, b.len);
    c->nomem = c->nomem || !*dst;
    struct stat st;
    if (secret && stat(path, &st) == 0 && (st.st_mode & S_IROTH)) {
      log_warn("config",
               "%s: %s can be read by every user of this machine "
               "(chmod o-r it)",
               c->doc->name, path);
    }
  }
  cw_path_pop(c, mark);
  cw_desc_done(&d);
  if (b.data) {
    memset(b.data, 0, b.len);
  }
  buf_cleanup(&b);
}

static void tls_check(struct cw *c, struct cw_val v, struct config_api *a) {
  struct cw_val tv;
  struct config_api_tls *t = &a->tls;
  if (!cw_find_child(c, v, "tls", &tv) || !cJSON_IsObject(tv.j)) {
    return;
  }
  size_t mark = cw_path_key(c, "tls");
  if (t->cert_file && !t->key_file) {
    cw_report_key(c, "key_file", cw_voff(c, tv),
                  "required when api.tls.cert_file is set");
  } else if (t->key_file && !t->cert_file) {
    cw_report_key(c, "cert_file", cw_voff(c, tv),
                  "required when api.tls.key_file is set");
  }
  config__resolve_path(c, &t->cert_file);
  config__resolve_path(c, &t->key_file);
  if (a->enabled && t->cert_file && t->key_file) {
    read_pem(c, tv, "cert_file", t->cert_file, false, &t->cert_pem);
    read_pem(c, tv, "key_file", t->key_file, true, &t->key_pem);
  }
  cw_path_pop(c, mark);
}

/* Each token: its file read (while the API is enabled), its length and
 * characters checked, and names and values unique. Messages say which
 * tokens[i] and where, never what a token holds. */
static void tokens_check(struct cw *c, struct cw_val v, struct config_api *a) {
  struct cw_val lv;
  size_t k;
  struct cw_val *items;
  if (!cw_find_child(c, v, "tokens", &lv) ||
      !(items = cw_children(c, lv, &k))) {
    return;
  }
  if (k != a->ntokens) {
    free(items);
    return;
  }
  size_t m1 = cw_path_key(c, "tokens");
  const char **names = malloc((k ? k : 1) * sizeof *names);
  c->nomem = c->nomem || !names;
  for (size_t i = 0; i < k; i++) {
    struct config_api_token *t = &a->tokens[i];
    size_t m2 = cw_path_index(c, i);
    struct cw_val tv;
    bool in_file = !cw_find_child(c, items[i], "token", &tv);
    if (a->enabled && cJSON_IsObject(items[i].j) && in_file) {
      config__read_secret_file(c, items[i], "token_file", &t->token_file,
                               &t->token);
    }
    const char *key = in_file ? "token_file" : "token";
    size_t off = cw_child_off(c, items[i], key);
    size_t n = t->token ? strlen(t->token) : 0;
    if (t->token && n < TOKEN_MIN) {
      cw_report_key(c, key, off,
                    "the token has %zu bytes; at least %u are needed (e.g. "
                    "the output of `openssl rand -hex 32`)",
                    n, TOKEN_MIN);
    } else if (t->token && !token_chars_ok(t->token, n)) {
      cw_report_key(c, key, off,
                    "a token holds only letters, digits and \"-._~+/\", "
                    "then any \"=\" (as in `Authorization: Bearer ...`)");
    }
    for (size_t j = 0; t->token && j < i; j++) {
      if (a->tokens[j].token && strcmp(a->tokens[j].token, t->token) == 0) {
        cw_report_key(c, key, off, "the same token as tokens[%zu]", j);
        break;
      }
    }
    if (t->name && strcmp(t->name, "anonymous") == 0) {
      cw_report_key(c, "name", cw_child_off(c, items[i], "name"),
                    "\"anonymous\" names requests without a token; choose "
                    "another name");
    }
    cw_path_pop(c, m2);
    if (names) {
      names[i] = t->name;
    }
  }
  if (names) {
    cw_check_unique(c, lv, "tokens", names, k);
  }
  cw_path_pop(c, m1);
  free(names);
  free(items);
}

static void api_check(struct cw *c, struct cw_val v, void *base) {
  struct config_api *a = base;
  if (a->listen && !listen_ok(a->listen)) {
    struct cw_desc d;
    cw_quoted(c, a->listen, &d);
    cw_report_key(c, "listen", cw_child_off(c, v, "listen"),
                  "expected \"HOST:PORT\" with a port from 1 to 65535, got %s",
                  cw_qs(&d));
    cw_desc_done(&d);
  }
  tokens_check(c, v, a);
  tls_check(c, v, a);
  struct cw_val av;
  a->anonymous_set = cw_find_child(c, v, "anonymous", &av);
  if (!a->anonymous_set) {
    a->anonymous = a->ntokens ? CONFIG_ROLE_NONE : CONFIG_ROLE_ADMIN;
  }
  if (a->enabled && a->listen && listen_ok(a->listen) &&
      !listen_loopback(a->listen) && !a->ntokens && !a->anonymous_set) {
    cw_report_key(c, "listen", cw_child_off(c, v, "listen"),
                  "not a loopback address, and no tokens are set: anyone on "
                  "the network could acknowledge alerts, silence them and "
                  "reload the configuration; add \"tokens\" (docs/api.md, "
                  "Authentication and roles), or set \"anonymous\" to the "
                  "role a request without a token has");
  }
}

/* Overwrites a secret before its memory is freed. */
static void scrub_free(char *s) {
  if (s) {
    volatile char *p = s;
    while (*p) {
      *p++ = '\0';
    }
    free(s);
  }
}

void config__free_api(struct config_api *a) {
  for (size_t i = 0; i < a->ntokens; i++) {
    free(a->tokens[i].name);
    scrub_free(a->tokens[i].token);
    free(a->tokens[i].token_file);
  }
  free(a->tokens);
  a->tokens = NULL;
  a->ntokens = 0;
  free(a->tls.cert_pem);
  scrub_free(a->tls.key_pem);
  a->tls.cert_pem = a->tls.key_pem = NULL;
}
