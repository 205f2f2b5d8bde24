/*
 * The receivers of the "notifications" section (notify_config.c reads the
 * rest): webhook, Alertmanager, e-mail, MQTT, Telegram and Zalo, each with
 * the keys of its type (a key of another type is a mistake, said as such),
 * their defaults and URLs; and their secrets. "token" and "password" are
 * read as written (with ${NAME}); token_file and password_file are read at
 * load while notifications are enabled. A secret's value never appears in
 * a message: a problem with one says where it is and what is wrong, not
 * what it holds.
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "config/config_int.h"
#include "core/file.h"
#include "core/log.h"
#include "core/utf8.h"

#define MS_S INT64_C(1000)
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)

#define MAX_RECEIVERS 100
#define SECRET_FILE_MAX (64u << 10)

_Static_assert(sizeof(enum config_receiver_type) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_smtp_tls) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_language) == sizeof(int), "enum size");

static const struct cw_enum type_names[] = {
    {"webhook", CONFIG_RECV_WEBHOOK},
    {"alertmanager", CONFIG_RECV_ALERTMANAGER},
    {"email", CONFIG_RECV_EMAIL},
    {"mqtt", CONFIG_RECV_MQTT},
    {"telegram", CONFIG_RECV_TELEGRAM},
    {"zalo", CONFIG_RECV_ZALO},
    {NULL, 0},
};

const char *config_receiver_type_name(enum config_receiver_type t) {
  for (const struct cw_enum *e = type_names; e->name; e++) {
    if (e->value == (int)t) {
      return e->name;
    }
  }
  return "unknown";
}

static const struct cw_enum smtp_tls_names[] = {
    {"auto", CONFIG_SMTP_TLS_AUTO},
    {"starttls", CONFIG_SMTP_TLS_STARTTLS},
    {"none", CONFIG_SMTP_TLS_NONE},
    {NULL, 0},
};

static const struct cw_enum language_names[] = {
    {"vi", CONFIG_LANG_VI},
    {"en", CONFIG_LANG_EN},
    {NULL, 0},
};

/* Zalo OA's message APIs: /v3.0/oa/message/<name>. */
static const struct cw_enum zalo_api_names[] = {
    {"transaction", 0},
    {"cs", 1},
    {NULL, 0},
};

/* Tables of keys: durations are kept in milliseconds, enums are taken as
 * written. */
#define NSTR(n, t, f, d) \
  { .name = n, .type = CW_STR, .off = offsetof(t, f), .def_str = d }
#define NNAME(n, t, f, fl) \
  { .name = n, .type = CW_STR, .off = offsetof(t, f), .flags = CW_NAME | (fl) }
#define NBOOL(n, t, f, d) \
  { .name = n, .type = CW_BOOL, .off = offsetof(t, f), .def = d }
#define NINT(n, t, f, lo, hi, d)                                          \
  {                                                                       \
    .name = n, .type = CW_INT, .off = offsetof(t, f), .store = CW_AS_INT, \
    .min = lo, .max = hi, .def = d                                        \
  }
#define NDUR(n, t, f, st, lo, hi, d, fl)                                      \
  {                                                                           \
    .name = n, .type = CW_DUR, .off = offsetof(t, f), .store = st, .unit = 1, \
    .min = lo, .max = hi, .def = d, .flags = fl                               \
  }
#define NENUM(n, t, f, e, d, fl)                                             \
  {                                                                          \
    .name = n, .type = CW_ENUM, .off = offsetof(t, f), .names = e, .def = d, \
    .flags = CW_RAW | (fl)                                                   \
  }
#define NFN(n, fn, fl) \
  { .name = n, .type = CW_FN, .set = fn, .flags = fl }

/* Reports "expected EXPECTED" at v without saying what v is: for values
 * that may be secrets. */
static void report_secret_type(struct cw *c, struct cw_val v,
                               const char *expected) {
  cw_report(c, cw_voff(c, v), "expected %s", expected);
}

/* Whether s (n bytes) is free of control characters; otherwise reports at
 * off which character is one, not what s holds. Tabs are allowed when tab. */
static bool no_controls(struct cw *c, size_t off, const char *s, size_t n,
                        const char *what, bool tab) {
  size_t chars = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    chars += (ch & 0xC0) != 0x80;
    bool c1 = ch == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
              (unsigned char)s[i + 1] <= 0x9F;
    if ((ch < 0x20 && !(tab && ch == '\t')) || ch == 0x7F || c1) {
      cw_report(c, off,
                "character %zu of %s is a control character, which it "
                "cannot hold",
                chars, what);
      return false;
    }
  }
  return true;
}

/* Shared with the API's tokens (config_int.h). */
char *config__get_secret(struct cw *c, struct cw_val v) {
  if (!cJSON_IsString(v.j)) {
    report_secret_type(c, v, "a string");
    return NULL;
  }
  const char *s = v.j->valuestring;
  if (!utf8_valid(s, strlen(s), NULL)) {
    cw_report(c, cw_voff(c, v), "not valid UTF-8");
    return NULL;
  }
  char *out = NULL;
  struct iocd_err err;
  int rc = config__expand_env(s, &out, &err);
  if (rc == IOCD_ENOMEM) {
    c->nomem = true;
    return NULL;
  }
  if (rc) {
    /* The other messages quote part of the string. */
    bool unset = strncmp(err.msg, "environment variable ", 21) == 0;
    cw_report(c, cw_voff(c, v), "%s",
              unset ? err.msg
                    : "holds a \"${\" that is not a variable reference "
                      "(write $${ for a literal ${)");
    return NULL;
  }
  if (!*out) {
    cw_report(c, cw_voff(c, v), "must not be empty");
  } else if (no_controls(c, cw_voff(c, v), out, strlen(out), "the secret",
                         false)) {
    return out;
  }
  free(out);
  return NULL;
}

static void set_token(struct cw *c, struct cw_val v, void *base) {
  struct config_receiver *r = base;
  free(r->token);
  r->token = config__get_secret(c, v);
}

static void set_password(struct cw *c, struct cw_val v, void *base) {
  struct config_receiver *r = base;
  free(r->password);
  r->password = config__get_secret(c, v);
}

/* Telegram chat ids are numbers ("-100123") or "@channel" names; both are
 * accepted, a number written as one too. */
static void set_chat_id(struct cw *c, struct cw_val v, void *base) {
  struct config_receiver *r = base;
  int64_t x;
  char *s = NULL;
  if (cJSON_IsNumber(v.j) && cw_get_int(v.j, &x)) {
    char num[32];
    snprintf(num, sizeof num, "%" PRId64, x);
    s = strdup(num);
    c->nomem = c->nomem || !s;
  } else if (cJSON_IsNumber(v.j)) {
    cw_report_type(c, v, "a chat id (an integer or a string)");
  } else {
    s = cw_get_name(c, v, "a chat id (an integer or a string)");
  }
  if (s) {
    free(r->chat_id);
    r->chat_id = s;
  }
}

static void set_user_ids(struct cw *c, struct cw_val v, void *base) {
  struct config_receiver *r = base;
  size_t mark = c->path.len;
  cw_get_string_list(c, v, &r->user_ids, &r->nuser_ids);
  cw_path_pop(c, mark);
}

static void set_zalo_api(struct cw *c, struct cw_val v, void *base) {
  struct config_receiver *r = base;
  int x;
  if (cw_get_enum(c, v, zalo_api_names, false, &x)) {
    free(r->zalo_api);
    r->zalo_api = strdup(cw_enum_name(zalo_api_names, x));
    c->nomem = c->nomem || !r->zalo_api;
  }
}

/* An address: "ioc@daklak.gov.vn" or "IOC Đắk Lắk <ioc@daklak.gov.vn>". */
static bool address_ok(const char *s) {
  const char *lt = strchr(s, '<');
  const char *at = strchr(s, '@');
  if (!at || at == s) {
    return false;
  }
  if (lt) {
    size_t n = strlen(s);
    return s[n - 1] == '>' && at > lt + 1 && at < s + n - 2;
  }
  return at[1] != '\0' && !strchr(s, ' ');
}

static void set_to(struct cw *c, struct cw_val v, void *base) {
  struct config_receiver *r = base;
  size_t mark = c->path.len;
  cw_get_string_list(c, v, &r->to, &r->nto);
  cw_path_pop(c, mark);
  size_t n;
  struct cw_val *items = r->to ? cw_children(c, v, &n) : NULL;
  for (size_t i = 0; items && i < n; i++) {
    if (cJSON_IsString(items[i].j) && *items[i].j->valuestring &&
        !address_ok(items[i].j->valuestring)) {
      struct cw_desc d;
      size_t m = cw_path_index(c, i);
      cw_report(c, cw_voff(c, items[i]),
                "expected an e-mail address such as \"ioc@daklak.gov.vn\", "
                "got %s",
                cw_describe(c, items[i], &d));
      cw_desc_done(&d);
      cw_path_pop(c, m);
    }
  }
  free(items);
}

/* Header names are HTTP tokens; values may be secrets (Authorization), so
 * a problem with one never quotes it. */
static bool add_header(struct cw *c, const char *key, struct cw_val v,
                       void *base) {
  struct config_receiver *r = base;
  for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
    bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                 (*p >= '0' && *p <= '9');
    if (!alnum && !strchr("!#$%&'*+-.^_`|~", *p)) {
      cw_report(c, cw_koff(c, v),
                "not an HTTP header name (letters, digits and "
                "!#$%%&'*+-.^_`|~)");
      return true;
    }
  }
  char *value = config__get_secret(c, v);
  char *k = value ? strdup(key) : NULL;
  if (value && !k) {
    c->nomem = true;
  }
  if (!k) {
    free(value);
    return true;
  }
  r->headers[r->nheaders].key = k;
  r->headers[r->nheaders].value = value;
  r->nheaders++;
  return true;
}

static void set_headers(struct cw *c, struct cw_val v, void *base) {
  struct config_receiver *r = base;
  if (cw_member_room(c, v, sizeof *r->headers, (void **)&r->headers)) {
    cw_walk_map(c, v, "an object of header names and values", false, add_header,
                base);
  }
}

#define R_W (1u << CONFIG_RECV_WEBHOOK)
#define R_A (1u << CONFIG_RECV_ALERTMANAGER)
#define R_E (1u << CONFIG_RECV_EMAIL)
#define R_M (1u << CONFIG_RECV_MQTT)
#define R_T (1u << CONFIG_RECV_TELEGRAM)
#define R_Z (1u << CONFIG_RECV_ZALO)

/* The keys that only some types of receiver use; the others are for all. */
static const struct {
  const char *key;
  unsigned types;
} receiver_scope[] = {
    {"url", R_W | R_A},
    {"headers", R_W},
    {"base_url", R_T | R_Z},
    {"token", R_T | R_Z},
    {"token_file", R_T | R_Z},
    {"chat_id", R_T},
    {"user_ids", R_Z},
    {"zalo_api", R_Z},
    {"smtp_url", R_E},
    {"smtp_tls", R_E},
    {"username", R_E},
    {"password", R_E},
    {"password_file", R_E},
    {"from", R_E},
    {"to", R_E},
    {"html", R_E},
    {"ca_file", R_W | R_A | R_E | R_T | R_Z},
    {"tls_verify", R_W | R_A | R_E | R_T | R_Z},
    {"topic_prefix", R_M},
    {"qos", R_M},
    {"retain", R_M},
};

static void receiver_check(struct cw *c, struct cw_val v, void *base);

#define T struct config_receiver
static const struct cw_key receiver_keys[] = {
    NNAME("name", T, name, CW_REQ),
    NENUM("type", T, type, type_names, CONFIG_RECV_WEBHOOK, CW_REQ),
    NBOOL("send_resolved", T, send_resolved, true),
    NDUR("timeout", T, timeout_ms, CW_AS_INT, 100, 10 * MS_M, 10 * MS_S, 0),
    NINT("max_attempts", T, max_attempts, 1, 1000, 10),
    NDUR("retry_min", T, retry_min_ms, CW_AS_INT, 10, MS_H, MS_S, 0),
    NDUR("retry_max", T, retry_max_ms, CW_AS_INT, 100, MS_D, 5 * MS_M, 0),
    NINT("rate_per_hour", T, rate_per_hour, -1, 100000, 30),
    NENUM("language", T, language, language_names, CONFIG_LANG_VI, 0),
    NSTR("url", T, url, NULL),
    CW_FN_OF("headers", set_headers, CW_MAP, NULL),
    NSTR("base_url", T, base_url, NULL),
    NFN("token", set_token, 0),
    NSTR("token_file", T, token_file, NULL),
    NFN("chat_id", set_chat_id, 0),
    NFN("user_ids", set_user_ids, 0),
    NFN("zalo_api", set_zalo_api, 0),
    NSTR("smtp_url", T, smtp_url, NULL),
    NENUM("smtp_tls", T, smtp_tls, smtp_tls_names, CONFIG_SMTP_TLS_AUTO, 0),
    NNAME("username", T, username, 0),
    NFN("password", set_password, 0),
    NSTR("password_file", T, password_file, NULL),
    NNAME("from", T, from, 0),
    NFN("to", set_to, 0),
    NBOOL("html", T, html, true),
    NSTR("ca_file", T, ca_file, NULL),
    NBOOL("tls_verify", T, tls_verify, true),
    NNAME("topic_prefix", T, topic_prefix, 0),
    NINT("qos", T, qos, 0, 2, 1),
    NBOOL("retain", T, retain, true),
};
#undef T
const struct cw_object config__receiver_obj =
    CW_OBJECT(receiver_keys, NULL, receiver_check);

/* The type of receiver object v when it names a valid one. */
static bool receiver_type(struct cw *c, struct cw_val v, int *type) {
  struct cw_val tv;
  if (!cw_find_child(c, v, "type", &tv) || !cJSON_IsString(tv.j)) {
    return false;
  }
  for (size_t i = 0; type_names[i].name; i++) {
    if (strcmp(tv.j->valuestring, type_names[i].name) == 0) {
      *type = type_names[i].value;
      return true;
    }
  }
  return false;
}

/* "url" must start with one of schemes[0..n) ("http", "https") and name
 * a host. The URL is not quoted (it may carry a password): only its
 * scheme. */
static void check_scheme(struct cw *c, struct cw_val obj, const char *key,
                         const char *url, const char *const *schemes,
                         size_t n) {
  if (!url) {
    return;
  }
  const char *sep = strstr(url, "://");
  bool ok = false;
  for (size_t i = 0; sep && i < n; i++) {
    size_t k = strlen(schemes[i]);
    ok = ok || ((size_t)(sep - url) == k && strncmp(url, schemes[i], k) == 0);
  }
  char want[64];
  snprintf(want, sizeof want, "an %s:// or %s://", schemes[0], schemes[1]);
  size_t off = cw_child_off(c, obj, key);
  if (!sep) {
    cw_report_key(c, key, off, "expected %s URL (the scheme is missing)", want);
  } else if (!ok) {
    size_t sn = (size_t)(sep - url);
    cw_report_key(c, key, off, "expected %s URL, got one with %.*s://", want,
                  sn > 16 ? 16 : (int)sn, url);
  } else if (sep[3] == '\0' || sep[3] == '/') {
    cw_report_key(c, key, off, "the URL names no host");
  }
}

static const char *const http_schemes[] = {"http", "https"};
static const char *const smtp_schemes[] = {"smtp", "smtps"};

void config__check_http_url(struct cw *c, struct cw_val obj, const char *key,
                            const char *url) {
  check_scheme(c, obj, key, url, http_schemes, 2);
}

/* "a" before "webhook", "an" before "email". */
static const char *type_article(int type) {
  return strchr("aeiou", cw_enum_name(type_names, type)[0]) ? "an" : "a";
}

/* Keys a receiver of this type does not use. */
static void check_scope(struct cw *c, struct cw_val v, int type) {
  size_t n;
  struct cw_val *kids = cw_children(c, v, &n);
  for (size_t i = 0; kids && i < n; i++) {
    const char *key = kids[i].j->string;
    for (size_t k = 0; k < sizeof receiver_scope / sizeof receiver_scope[0];
         k++) {
      unsigned t = receiver_scope[k].types;
      if (strcmp(key, receiver_scope[k].key) != 0 || (t & (1u << type))) {
        continue;
      }
      char users[128] = "";
      size_t used = 0;
      for (size_t e = 0; type_names[e].name; e++) {
        if (t & (1u << type_names[e].value)) {
          int w = snprintf(users + used, sizeof users - used, "%s\"%s\"",
                           used ? ", " : "", type_names[e].name);
          used += w > 0 ? (size_t)w : 0;
          used = used < sizeof users ? used : sizeof users - 1;
        }
      }
      cw_report_key(c, key, cw_koff(c, kids[i]),
                    "not used by %s \"%s\" receiver (only by %s)",
                    type_article(type), cw_enum_name(type_names, type), users);
    }
  }
  free(kids);
}

static void report_required(struct cw *c, struct cw_val v, const char *key,
                            int type, const char *or_key) {
  if (or_key) {
    cw_report_key(c, key, cw_voff(c, v),
                  "required for %s \"%s\" receiver (or \"%s\")",
                  type_article(type), cw_enum_name(type_names, type), or_key);
  } else {
    cw_report_key(c, key, cw_voff(c, v), "required for %s \"%s\" receiver",
                  type_article(type), cw_enum_name(type_names, type));
  }
}

/* A secret given both inline and as a file. */
static void check_either(struct cw *c, struct cw_val v, const char *key,
                         const char *file_key) {
  struct cw_val a, b;
  if (cw_find_child(c, v, key, &a) && cw_find_child(c, v, file_key, &b)) {
    cw_report_key(c, file_key, cw_koff(c, b),
                  "give either \"%s\" or \"%s\", not both", key, file_key);
  }
}

static bool dup_default(struct cw *c, char **dst, const char *def) {
  if (*dst) {
    return true;
  }
  *dst = strdup(def);
  c->nomem = c->nomem || !*dst;
  return *dst != NULL;
}

static void receiver_check(struct cw *c, struct cw_val v, void *base) {
  struct config_receiver *r = base;
  int type;
  if (!receiver_type(c, v, &type)) {
    return; /* reported by the walk */
  }
  check_scope(c, v, type);
  struct cw_val tmp;
  switch ((enum config_receiver_type)type) {
    case CONFIG_RECV_WEBHOOK:
    case CONFIG_RECV_ALERTMANAGER:
      if (!cw_find_child(c, v, "url", &tmp)) {
        report_required(c, v, "url", type, NULL);
      }
      check_scheme(c, v, "url", r->url, http_schemes, 2);
      break;
    case CONFIG_RECV_EMAIL:
      if (!cw_find_child(c, v, "smtp_url", &tmp)) {
        report_required(c, v, "smtp_url", type, NULL);
      }
      if (!cw_find_child(c, v, "from", &tmp)) {
        report_required(c, v, "from", type, NULL);
      } else if (r->from && !address_ok(r->from)) {
        struct cw_desc d;
        cw_report_key(c, "from", cw_voff(c, tmp),
                      "expected an address such as \"IOC Đắk Lắk "
                      "<ioc@daklak.gov.vn>\", got %s",
                      cw_describe(c, tmp, &d));
        cw_desc_done(&d);
      }
      if (!cw_find_child(c, v, "to", &tmp)) {
        report_required(c, v, "to", type, NULL);
      } else if (cJSON_IsArray(tmp.j) && cJSON_GetArraySize(tmp.j) == 0) {
        cw_report_key(c, "to", cw_voff(c, tmp),
                      "at least one address is required");
      }
      check_scheme(c, v, "smtp_url", r->smtp_url, smtp_schemes, 2);
      check_either(c, v, "password", "password_file");
      if (r->smtp_url && strncmp(r->smtp_url, "smtps://", 8) == 0 &&
          r->smtp_tls != CONFIG_SMTP_TLS_AUTO) {
        cw_report_key(c, "smtp_tls", cw_child_off(c, v, "smtp_tls"),
                      "\"%s\" is for smtp:// URLs (smtps:// is TLS from the "
                      "first byte)",
                      cw_enum_name(smtp_tls_names, (int)r->smtp_tls));
      }
      break;
    case CONFIG_RECV_TELEGRAM:
    case CONFIG_RECV_ZALO: {
      bool tg = type == CONFIG_RECV_TELEGRAM;
      struct cw_val fv;
      if (!cw_find_child(c, v, "token", &tmp) &&
          !cw_find_child(c, v, "token_file", &fv)) {
        report_required(c, v, "token", type, "token_file");
      }
      check_either(c, v, "token", "token_file");
      const char *who = tg ? "chat_id" : "user_ids";
      if (!cw_find_child(c, v, who, &tmp)) {
        report_required(c, v, who, type, NULL);
      } else if (!tg && cJSON_IsArray(tmp.j) &&
                 cJSON_GetArraySize(tmp.j) == 0) {
        cw_report_key(c, who, cw_voff(c, tmp),
                      "at least one user id is required");
      }
      dup_default(c, &r->base_url,
                  tg ? "https://api.telegram.org" : "https://openapi.zalo.me");
      check_scheme(c, v, "base_url", r->base_url, http_schemes, 2);
      if (!tg) {
        dup_default(c, &r->zalo_api, "transaction");
      }
      break;
    }
    case CONFIG_RECV_MQTT:
      if (dup_default(c, &r->topic_prefix, "ioc/alerts") &&
          strpbrk(r->topic_prefix, "+#")) {
        cw_report_key(c, "topic_prefix", cw_child_off(c, v, "topic_prefix"),
                      "a topic to publish to cannot hold the wildcards '+' "
                      "or '#'");
      }
      break;
  }
  struct cw_val rv;
  if (cw_find_child(c, v, "rate_per_hour", &rv) && r->rate_per_hour == 0) {
    cw_report_key(c, "rate_per_hour", cw_voff(c, rv),
                  "expected -1 (no limit) or an integer from 1 to 100000, "
                  "got 0");
  }
  if (r->retry_min_ms > r->retry_max_ms) {
    char a[32], b[32];
    config__format_duration(r->retry_min_ms, a, sizeof a);
    config__format_duration(r->retry_max_ms, b, sizeof b);
    cw_report_key(c, "retry_min", cw_child_off(c, v, "retry_min"),
                  "%s is more than retry_max (%s)", a, b);
  }
}

static void receiver_init(struct cw *c, void *item) {
  cw_defaults(c, &config__receiver_obj, item);
}

void config__set_receivers(struct cw *c, struct cw_val v, void *base) {
  struct config_notify *n = base;
  struct cw_val *items;
  n->receivers = cw_get_objects(
      c, v, &config__receiver_obj, sizeof *n->receivers, MAX_RECEIVERS,
      "an array of receivers", receiver_init, &n->nreceivers, &items);
  for (size_t i = 0; i < n->nreceivers; i++) {
    cw_place_at(c, items[i], "name", &n->receivers[i].place);
  }
  free(items);
}

/* Zalo re-reads a token file at each send, from the path resolved here. */
void config__read_secret_file(struct cw *c, struct cw_val item, const char *key,
                              char **path, char **dst) {
  struct cw_val fv;
  if (!*path || !cw_find_child(c, item, key, &fv)) {
    return;
  }
  size_t off = cw_voff(c, fv);
  size_t mark = cw_path_key(c, key);
  struct buf b;
  buf_init(&b, SECRET_FILE_MAX);
  struct iocd_err err;
  struct cw_desc d;
  cw_quoted(c, *path, &d);
  int rc = file_read(*path, &b, &err);
  if (rc == IOCD_ENOMEM) {
    c->nomem = true;
  } else if (rc == IOCD_ETOOBIG) {
    cw_report(c, off,
              "cannot read %s: larger than %u KiB, which a secret "
              "is not",
              cw_qs(&d), SECRET_FILE_MAX >> 10);
  } else if (rc) {
    const char *why = err.msg;
    if (strncmp(why, "cannot open: ", 13) == 0 ||
        strncmp(why, "cannot read: ", 13) == 0) {
      why += 13;
    }
    cw_report(c, off, "cannot read %s: %s", cw_qs(&d), why);
  } else {
    const char *s = b.data ? b.data : "";
    size_t n = file_secret_len(s, b.len);
    char what[300];
    snprintf(what, sizeof what, "the secret in %s", cw_qs(&d));
    if (n == 0) {
      cw_report(c, off, "%s is empty", cw_qs(&d));
    } else if (!utf8_valid(s, n, NULL)) {
      cw_report(c, off, "the secret in %s is not UTF-8 text", cw_qs(&d));
    } else if (no_controls(c, off, s, n, what, false)) {
      free(*dst);
      *dst = strndup(s, n);
      c->nomem = c->nomem || !*dst;
      struct stat st;
      if (stat(*path, &st) == 0 && (st.st_mode & S_IROTH)) {
        log_warn("config",
                 "%s: %s can be read by every user of this machine "
                 "(chmod o-r it)",
                 c->doc->name, *path);
      }
    }
  }
  cw_desc_done(&d);
  buf_cleanup(&b);
  cw_path_pop(c, mark);
}

/* Secret files are named relative to the main file, as rule files are. */
void config__resolve_path(struct cw *c, char **path) {
  if (!*path) {
    return;
  }
  char *p = config_path_join(c->doc->name, *path);
  if (!p) {
    c->nomem = true;
    return;
  }
  free(*path);
  *path = p;
}

void config__check_receivers(struct cw *c, struct cw_val v,
                             struct config_notify *n,
                             enum config_language language) {
  struct cw_val lv;
  size_t k;
  struct cw_val *items;
  if (!cw_find_child(c, v, "receivers", &lv) ||
      !(items = cw_children(c, lv, &k))) {
    return;
  }
  if (k != n->nreceivers) {
    free(items);
    return;
  }
  size_t m1 = cw_path_key(c, "receivers");
  const char **names = malloc((k ? k : 1) * sizeof *names);
  c->nomem = c->nomem || !names;
  for (size_t i = 0; i < k; i++) {
    struct config_receiver *r = &n->receivers[i];
    struct cw_val tmp;
    if (!cJSON_IsObject(items[i].j) ||
        !cw_find_child(c, items[i], "language", &tmp)) {
      r->language = language;
    }
    config__resolve_path(c, &r->token_file);
    config__resolve_path(c, &r->password_file);
    size_t m2 = cw_path_index(c, i);
    /* A secret given twice was reported; the file is not read then. */
    if (n->enabled && cJSON_IsObject(items[i].j) && !r->token) {
      config__read_secret_file(c, items[i], "token_file", &r->token_file,
                               &r->token);
    }
    if (n->enabled && cJSON_IsObject(items[i].j) && !r->password) {
      config__read_secret_file(c, items[i], "password_file", &r->password_file,
                               &r->password);
    }
    cw_path_pop(c, m2);
    if (names) {
      names[i] = r->name;
    }
  }
  if (names) {
    cw_check_unique(c, lv, "receivers", names, k);
  }
  cw_path_pop(c, m1);
  free(names);
  free(items);
}

void config__free_receiver(struct config_receiver *r) {
  cw_free_strings(&config__receiver_obj, r);
  cw_free_kv(r->headers, r->nheaders);
  free(r->token);
  free(r->chat_id);
  cw_free_list(r->user_ids, r->nuser_ids);
  free(r->zalo_api);
  free(r->password);
  cw_free_list(r->to, r->nto);
  free(r->place.file);
}
