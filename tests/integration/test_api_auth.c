/*
 * The API's tokens, roles and HTTPS, against the iocd binary: every
 * endpoint asked by every role (allowed, or refused with 401 or 403), the
 * Authorization headers a client can get wrong, a token file re-read at a
 * reload, `iocd check` refusing an open API on a public address, HTTPS with
 * a self-signed certificate, no token ever in iocd's output or in an
 * answer, and the token that acknowledged, silenced or ended a silence
 * recorded as its principal whoever the body names.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "tests/harness/harness.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define VIEWER_TOKEN "wall-7c1f0a9d3e5b4c2a8f6e"
#define OPERATOR_TOKEN "ops-4b8e2d6f1a3c5e7g9h0j"
#define ADMIN_TOKEN "admin-9f8e7d6c5b4a39281706"
#define OPERATOR_TOKEN_2 "ops-NEW-1a2b3c4d5e6f7a8b9c0d"
#define WRONG_TOKEN "wrong-0000000000000000000"

struct srv {
  char dir[256];
  int port;
  struct h_iocd p;
};

static void expect_log_has_no_token(const struct srv *s);

/* Stops iocd, checks that its output holds no token, and removes the
 * directory (kept when iocd did not exit cleanly). */
static void stop(struct srv *s) {
  int status = h_iocd_stop(&s->p, SIGTERM, 20000);
  expect_log_has_no_token(s);
  cr_expect_eq(status, 0, "iocd exited with %d (see %s)", status, s->p.log);
  if (status == 0) {
    h_rmtree(s->dir);
  }
}

static void write_file(const char *dir, const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "%s", path);
  fputs(text, f);
  fclose(f);
  chmod(path, 0600);
}

/* An answer: status (0 when none came), body, WWW-Authenticate. */
struct answer {
  long status;
  struct buf body;
  char www[256];
};

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  struct answer *a = ud;
  buf_append(&a->body, p, size * n);
  return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  struct answer *a = ud;
  static const char name[] = "WWW-Authenticate:";
  size_t len = size * n;
  if (len > sizeof name && strncasecmp(p, name, sizeof name - 1) == 0) {
    size_t v = len - (sizeof name - 1);
    v = v < sizeof a->www - 1 ? v : sizeof a->www - 1;
    memcpy(a->www, p + sizeof name - 1, v);
    a->www[v] = '\0';
    while (v && (a->www[v - 1] == '\r' || a->www[v - 1] == '\n')) {
      a->www[--v] = '\0';
    }
  }
  return len;
}

/* One request. headers: NULL-terminated extra header lines (or NULL);
 * cafile: HTTPS with this CA (the URL is https://). The answer is a's
 * (answer_done frees it); also appended to all when not NULL. */
static void call(int port, const char *cafile, const char *method,
                 const char *path, const char *const *headers, const char *body,
                 struct answer *a, struct buf *all) {
  memset(a, 0, sizeof *a);
  buf_init(&a->body, 1 << 22);
  CURL *h = curl_easy_init();
  cr_assert_not_null(h);
  char url[512];
  snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", cafile ? "https" : "http",
           port, path);
  struct curl_slist *hl = NULL;
  for (size_t i = 0; headers && headers[i]; i++) {
    hl = curl_slist_append(hl, headers[i]);
  }
  if (body) {
    hl = curl_slist_append(hl, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  }
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
  if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  }
  if (cafile) {
    curl_easy_setopt(h, CURLOPT_CAINFO, cafile);
  }
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
  if (curl_easy_perform(h) == CURLE_OK) {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
  }
  curl_slist_free_all(hl);
  curl_easy_cleanup(h);
  buf_putc(&a->body, '\0');
  a->body.len--;
  if (all) {
    buf_append(all, a->body.data, a->body.len);
  }
}

static void answer_done(struct answer *a) {
  buf_cleanup(&a->body);
}

/* The answer's body is {"error": "..."} holding want (when not NULL). */
static void expect_error(const struct answer *a, const char *want,
                         const char *what) {
  cr_expect(strncmp(a->body.data, "{\"error\":\"", 10) == 0, "%s: %s", what,
            a->body.data);
  if (want) {
    cr_expect(strstr(a->body.data, want) != NULL, "%s: %s, want %s", what,
              a->body.data, want);
  }
}

static const char three_tokens[] =
    "{\"listen\": \"127.0.0.1:%d\", \"tokens\": [\n"
    "  {\"name\": \"wall-display\", \"role\": \"viewer\", \"token\": "
    "\"" VIEWER_TOKEN
    "\"},\n"
    "  {\"name\": \"ops-duty\", \"role\": \"operator\", \"token_file\": "
    "\"ops.token\"},\n"
    "  {\"name\": \"admin\", \"role\": \"admin\", \"token\": "
    "\"${IOCD_TEST_API_ADMIN_TOKEN}\"}]}";

/* Starts iocd with the file output, a broker nobody listens on, alert
 * delivery on (a webhook nobody answers: there is nothing to send), and
 * three_tokens: the operator's in a file, the admin's from the
 * environment. */
static void start_three(struct srv *s) {
  setenv("IOCD_TEST_API_ADMIN_TOKEN", ADMIN_TOKEN, 1);
  memset(s, 0, sizeof *s);
  cr_assert_eq(h_tmpdir(s->dir, sizeof s->dir), 0);
  write_file(s->dir, "ops.token", OPERATOR_TOKEN "\n");
  s->port = h_free_port();
  char api_text[2048];
  snprintf(api_text, sizeof api_text, three_tokens, s->port);
  char cfg[4096];
  snprintf(cfg, sizeof cfg,
           "{\"data_dir\": \"%s/var\", \"file\": {\"path\": \"%s/out.lp\"},\n"
           " \"log\": {\"level\": \"debug\"},\n"
           " \"mqtt\": {\"host\": \"127.0.0.1\", \"port\": %d},\n"
           " \"subscriptions\": [{\"topic\": \"t/{district}\"}],\n"
           " \"notifications\": {\"receivers\": [{\"name\": \"ops\", "
           "\"type\": \"webhook\", \"url\": \"http://127.0.0.1:9/hook\"}],\n"
           "   \"route\": {\"receiver\": \"ops\"}},\n"
           " \"api\": %s}\n",
           s->dir, s->dir, h_free_port(), api_text);
  cr_assert_eq(h_iocd_start(&s->p, s->dir, cfg), 0);
  cr_assert_eq(h_iocd_wait_log(&s->p, "listening on", 20000), 0, "see %s",
               s->p.log);
}

/* No token may appear in what iocd wrote or answered. */
static void expect_no_token(const char *text, const char *what) {
  static const char *const tokens[] = {
      VIEWER_TOKEN, OPERATOR_TOKEN, ADMIN_TOKEN, OPERATOR_TOKEN_2, WRONG_TOKEN};
  for (size_t i = 0; i < N(tokens); i++) {
    cr_expect_null(strstr(text, tokens[i]), "%s holds a token (%s)", what,
                   tokens[i]);
  }
}

static void expect_log_has_no_token(const struct srv *s) {
  FILE *f = fopen(s->p.log, "r");
  cr_assert_not_null(f);
  struct buf b;
  buf_init(&b, 1 << 26);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    buf_append(&b, chunk, n);
  }
  fclose(f);
  buf_putc(&b, '\0');
  expect_no_token(b.data, "iocd's output");
  buf_cleanup(&b);
}

/* The least role of each request: 0 open, 1 viewer, 2 operator, 3 admin. */
static const struct {
  const char *method, *path, *body;
  int least;
} endpoints[] = {
    {"GET", "/health", NULL, 0},
    {"HEAD", "/health", NULL, 0},
    {"GET", "/ready", NULL, 0},
    {"GET", "/metrics", NULL, 1},
    {"HEAD", "/metrics", NULL, 1},
    {"GET", "/api/v1/alerts", NULL, 1},
    {"GET", "/api/v1/rules", NULL, 1},
    {"GET", "/api/v1/acks", NULL, 1},
    {"GET", "/api/v1/silences", NULL, 1},
    {"GET", "/api/v1/notifications", NULL, 1},
    {"GET", "/api/v1/status", NULL, 1},
    {"GET", "/api/v1/latest?district=x", NULL, 1},
    {"GET", "/no/such/path", NULL, 1},
    {"POST", "/api/v1/alerts/0123456789abcdef/ack", "{\"comment\": \"x\"}", 2},
    {"DELETE", "/api/v1/alerts/0123456789abcdef/ack", "{}", 2},
    {"POST", "/api/v1/silences",
     "{\"matchers\": [\"district=Lắk\"], \"duration\": \"1h\"}", 2},
    {"DELETE", "/api/v1/silences/0123456789abcdef", NULL, 2},
    {"POST", "/api/v1/reload", NULL, 3},
    {"POST", "/metrics", "{}", 3},
    {"PUT", "/api/v1/silences", NULL, 3},
};

Test(api_auth, every_endpoint_answers_each_role_as_its_rank_allows,
     .timeout = 120) {
  struct srv s;
  start_three(&s);
  static const char *const who[] = {"anonymous", "viewer", "operator", "admin"};
  static const char *const hdr[] = {NULL, "Authorization: Bearer " VIEWER_TOKEN,
                                    "Authorization: Bearer " OPERATOR_TOKEN,
                                    "Authorization: Bearer " ADMIN_TOKEN};
  struct buf all;
  buf_init(&all, 1 << 26);
  double refused[2] = {0, 0}; /* 401, 403 */
  for (size_t e = 0; e < N(endpoints); e++) {
    for (int r = 0; r < 4; r++) {
      const char *headers[] = {hdr[r], NULL};
      struct answer a;
      call(s.port, NULL, endpoints[e].method, endpoints[e].path,
           hdr[r] ? headers : NULL, endpoints[e].body, &a, &all);
      char what[256];
      snprintf(what, sizeof what, "%s %s as %s", endpoints[e].method,
               endpoints[e].path, who[r]);
      cr_assert_neq(a.status, 0, "%s: no answer", what);
      bool head = strcmp(endpoints[e].method, "HEAD") == 0;
      if (r >= endpoints[e].least) {
        cr_expect(a.status != 401 && a.status != 403, "%s: %ld %s", what,
                  a.status, a.body.data);
      } else if (r == 0) {
        refused[0]++;
        cr_expect_eq(a.status, 401, "%s: %ld", what, a.status);
        cr_expect_str_eq(a.www, " Bearer realm=\"iocd\"", "%s", what);
        if (!head) {
          expect_error(&a, "authentication required", what);
        }
      } else {
        refused[1]++;
        cr_expect_eq(a.status, 403, "%s: %ld %s", what, a.status, a.body.data);
        cr_expect_str_eq(a.www, "", "%s: a 403 asks for no token", what);
        if (!head) {
          char want[128];
          snprintf(want, sizeof want, "role %s may not %s", who[r],
                   endpoints[e].method);
          expect_error(&a, want, what);
          expect_error(&a, who[endpoints[e].least], what);
        }
      }
      answer_done(&a);
    }
  }
  /* The silence the operator made is its: created_by defaults to the
   * token's name. */
  const char *viewer[] = {hdr[1], NULL};
  struct answer a;
  call(s.port, NULL, "GET", "/api/v1/silences", viewer, NULL, &a, &all);
  cr_expect(strstr(a.body.data, "\"created_by\":\"ops-duty\"") != NULL, "%s",
            a.body.data);
  cr_expect(strstr(a.body.data, "\"created_by\":\"admin\"") != NULL, "%s",
            a.body.data);
  answer_done(&a);
  call(s.port, NULL, "GET", "/metrics", viewer, NULL, &a, &all);
  char series[128];
  snprintf(series, sizeof series,
           "iocd_api_auth_failures_total{reason=\"missing\"} %.0f\n",
           refused[0]);
  cr_expect(strstr(a.body.data, series) != NULL, "want %s", series);
  snprintf(series, sizeof series,
           "iocd_api_auth_failures_total{reason=\"forbidden\"} %.0f\n",
           refused[1]);
  cr_expect(strstr(a.body.data, series) != NULL, "want %s", series);
  cr_expect(strstr(a.body.data, "# HELP iocd_api_auth_failures_total ") !=
            NULL);
  answer_done(&a);
  buf_putc(&all, '\0');
  expect_no_token(all.data, "the answers");
  buf_cleanup(&all);
  stop(&s);
}

Test(api_auth, a_missing_malformed_or_unknown_authorization_is_401,
     .timeout = 60) {
  struct srv s;
  start_three(&s);
  static const struct {
    const char *h1, *h2, *want, *reason;
  } cases[] = {
      {NULL, NULL, "authentication required", "missing"},
      {"Authorization: Bearer " WRONG_TOKEN, NULL, "not valid", "invalid"},
      {"Authorization: Bearer " VIEWER_TOKEN "x", NULL, "not valid", "invalid"},
      {"Authorization: Bearer wall-7c1f0a9d3e5b4c2a8f6", NULL, "not valid",
       "invalid"},
      {"Authorization: bearer " WRONG_TOKEN, NULL, "not valid", "invalid"},
      {"Authorization: Basic YWRtaW46YWRtaW4=", NULL, "not one", "malformed"},
      {"Authorization: Token " VIEWER_TOKEN, NULL, "not one", "malformed"},
      {"Authorization: Bearer", NULL, "not one", "malformed"},
      {"Authorization: Bearer " VIEWER_TOKEN " extra", NULL, "not one",
       "malformed"},
      {"Authorization: " VIEWER_TOKEN, NULL, "not one", "malformed"},
      /* Two fields, even with a valid token in each. */
      {"Authorization: Bearer " VIEWER_TOKEN,
       "Authorization: Bearer " ADMIN_TOKEN, "not one", "malformed"},
  };
  struct buf all;
  buf_init(&all, 1 << 22);
  for (size_t i = 0; i < N(cases); i++) {
    const char *headers[] = {cases[i].h1, cases[i].h2, NULL};
    struct answer a;
    call(s.port, NULL, "GET", "/api/v1/alerts", cases[i].h1 ? headers : NULL,
         NULL, &a, &all);
    cr_expect_eq(a.status, 401, "case %zu: %ld", i, a.status);
    cr_expect_str_eq(a.www, " Bearer realm=\"iocd\"", "case %zu", i);
    expect_error(&a, cases[i].want, cases[i].reason);
    answer_done(&a);
  }
  /* A refused request is answered on its head, whatever its body. */
  struct buf big;
  buf_init(&big, 1 << 20);
  buf_puts(&big, "{\"comment\": \"");
  for (int i = 0; i < 60000; i++) {
    buf_putc(&big, 'x');
  }
  buf_puts(&big, "\"}");
  buf_putc(&big, '\0');
  const char *wrong[] = {"Authorization: Bearer " WRONG_TOKEN, NULL};
  struct answer a;
  call(s.port, NULL, "POST", "/api/v1/silences", wrong, big.data, &a, &all);
  cr_expect_eq(a.status, 401, "%ld", a.status);
  answer_done(&a);
  buf_cleanup(&big);
  cr_expect_eq(h_metric(s.port,
                        "iocd_api_auth_failures_total{reason="
                        "\"missing\"}"),
               -1, "/metrics itself needs a token");
  buf_putc(&all, '\0');
  expect_no_token(all.data, "the answers");
  buf_cleanup(&all);
  stop(&s);
}

Test(api_auth, a_token_file_is_read_again_at_a_reload, .timeout = 60) {
  struct srv s;
  start_three(&s);
  const char *old_op[] = {"Authorization: Bearer " OPERATOR_TOKEN, NULL};
  const char *new_op[] = {"Authorization: Bearer " OPERATOR_TOKEN_2, NULL};
  struct answer a;
  call(s.port, NULL, "GET", "/api/v1/acks", old_op, NULL, &a, NULL);
  cr_expect_eq(a.status, 200, "%ld %s", a.status, a.body.data);
  answer_done(&a);
  call(s.port, NULL, "GET", "/api/v1/acks", new_op, NULL, &a, NULL);
  cr_expect_eq(a.status, 401);
  answer_done(&a);
  write_file(s.dir, "ops.token", OPERATOR_TOKEN_2 "\n");
  kill(s.p.pid, SIGHUP);
  cr_assert_eq(h_iocd_wait_log(&s.p, "configuration reloaded", 20000), 0,
               "see %s", s.p.log);
  call(s.port, NULL, "GET", "/api/v1/acks", old_op, NULL, &a, NULL);
  cr_expect_eq(a.status, 401, "the old token still works");
  answer_done(&a);
  call(s.port, NULL, "POST", "/api/v1/silences", new_op,
       "{\"matchers\": [\"district=Lắk\"], \"duration\": \"1h\", "
       "\"comment\": \"after the reload\"}",
       &a, NULL);
  cr_expect_eq(a.status, 201, "%ld %s", a.status, a.body.data);
  answer_done(&a);
  stop(&s);
}

/* Starts iocd as start_three does, with a real broker at mq_port, a rule
 * that fires for a district whose online share is below 30% and the
 * figures' subscription, and waits until it has subscribed. A restart
 * (again true) keeps the directory and its data_dir. */
static void start_three_with_rule(struct srv *s, int mq_port, bool again) {
  setenv("IOCD_TEST_API_ADMIN_TOKEN", ADMIN_TOKEN, 1);
  if (!again) {
    memset(s, 0, sizeof *s);
    cr_assert_eq(h_tmpdir(s->dir, sizeof s->dir), 0);
    write_file(s->dir, "ops.token", OPERATOR_TOKEN "\n");
    s->port = h_free_port();
  } else {
    /* The first run's log aside, so that the waits below read this run's. */
    char old[600];
    snprintf(old, sizeof old, "%s.1", s->p.log);
    cr_assert_eq(rename(s->p.log, old), 0, "%s", s->p.log);
  }
  char api_text[2048];
  snprintf(api_text, sizeof api_text, three_tokens, s->port);
  char cfg[8192];
  snprintf(cfg, sizeof cfg,
           "{\"data_dir\": \"%s/var\", \"file\": {\"path\": \"%s/out.lp\"},\n"
           " \"log\": {\"level\": \"debug\"},\n"
           " \"mqtt\": {\"host\": \"127.0.0.1\", \"port\": %d, "
           "\"client_id\": \"api-auth-audit\"},\n"
           " \"subscriptions\": [{\"name\": \"igate\", \"topic\": "
           "\"ioc/{district}/igate\", \"measurement\": \"igate\"}],\n"
           " \"sources\": {\"districts\": [\"Lắk\", \"Krông Búk\"]},\n"
           " \"rule_engine\": {\"evaluation_interval\": \"1s\"},\n"
           " \"rules\": [{\"name\": \"online_share_low\",\n"
           "   \"expr\": \"igate.online / igate.received < 0.3\",\n"
           "   \"by\": [\"district\"]}],\n"
           " \"notifications\": {\"receivers\": [{\"name\": \"ops\", "
           "\"type\": \"webhook\", \"url\": \"http://127.0.0.1:9/hook\"}],\n"
           "   \"route\": {\"receiver\": \"ops\"}},\n"
           " \"api\": %s}\n",
           s->dir, s->dir, mq_port, api_text);
  cr_assert_eq(h_iocd_start(&s->p, s->dir, cfg), 0);
  cr_assert_eq(h_iocd_wait_log(&s->p, "listening on", 20000), 0, "see %s",
               s->p.log);
  cr_assert_eq(h_iocd_wait_log(&s->p, "subscribed", 20000), 0, "see %s",
               s->p.log);
}

/* The answer's body parsed (the caller frees it). */
static cJSON *answer_json(const struct answer *a) {
  cr_assert(a->status == 200 || a->status == 201, "%ld %s", a->status,
            a->body.data);
  cJSON *doc = cJSON_Parse(a->body.data);
  cr_assert_not_null(doc, "not JSON: %s", a->body.data);
  return doc;
}

static const char *jstr(const cJSON *o, const char *name) {
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(m) ? m->valuestring : NULL;
}

/* The element of array name in doc whose "id" is id; NULL when none. */
static const cJSON *by_id(const cJSON *doc, const char *name, const char *id) {
  const cJSON *it;
  cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, name)) {
    const char *v = jstr(it, "id");
    if (v && strcmp(v, id) == 0) {
      return it;
    }
  }
  return NULL;
}

/* The last element of the array under name in doc. */
static const cJSON *last_of(const cJSON *doc, const char *name) {
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, name);
  int n = cJSON_GetArraySize(arr);
  cr_assert_gt(n, 0, "no %s", name);
  return cJSON_GetArrayItem(arr, n - 1);
}

/* Polls GET /api/v1/alerts as the viewer until an alert fires; its id. */
static void firing_id(int port, char id[17]) {
  const char *viewer[] = {"Authorization: Bearer " VIEWER_TOKEN, NULL};
  id[0] = '\0';
  for (int i = 0; i < 200 && !id[0]; i++) {
    struct answer a;
    call(port, NULL, "GET", "/api/v1/alerts", viewer, NULL, &a, NULL);
    cJSON *doc = cJSON_Parse(a.body.data);
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "alerts")) {
      const char *st = jstr(it, "state");
      const char *v = jstr(it, "id");
      if (st && v && strcmp(st, "firing") == 0 && strlen(v) == 16) {
        snprintf(id, 17, "%s", v);
      }
    }
    cJSON_Delete(doc);
    answer_done(&a);
    if (!id[0]) {
      h_sleep_ms(100);
    }
  }
  cr_assert_eq(strlen(id), 16, "no alert fired");
}

Test(api_auth, the_token_that_acted_is_recorded_whoever_the_body_names,
     .timeout = 120) {
  struct h_mosquitto mq;
  cr_assert_eq(h_mosquitto_start(&mq, NULL, NULL), 0);
  struct srv s;
  start_three_with_rule(&s, mq.port, false);
  const char *viewer[] = {"Authorization: Bearer " VIEWER_TOKEN, NULL};
  const char *op[] = {"Authorization: Bearer " OPERATOR_TOKEN, NULL};
  const char *admin[] = {"Authorization: Bearer " ADMIN_TOKEN, NULL};
  struct buf all;
  buf_init(&all, 1 << 24);
  struct answer a;

  /* A silence: created_by as the body says, principal the token's name. */
  call(s.port, NULL, "POST", "/api/v1/silences", op,
       "{\"matchers\": [\"district=Krông Búk\"], \"duration\": \"2h\", "
       "\"created_by\": \"someone else\", \"comment\": \"bảo trì\"}",
       &a, &all);
  cr_assert_eq(a.status, 201, "%ld %s", a.status, a.body.data);
  cJSON *doc = answer_json(&a);
  char sid[17];
  snprintf(sid, sizeof sid, "%s", jstr(doc, "id") ? jstr(doc, "id") : "");
  cJSON_Delete(doc);
  answer_done(&a);
  call(s.port, NULL, "GET", "/api/v1/silences", viewer, NULL, &a, &all);
  doc = answer_json(&a);
  const cJSON *x = by_id(doc, "silences", sid);
  cr_assert_not_null(x, "silence %s not listed: %s", sid, a.body.data);
  cr_expect_str_eq(jstr(x, "created_by"), "someone else");
  cr_expect_str_eq(jstr(x, "principal"), "ops-duty");
  cr_expect(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(x, "expired_by")),
            "%s", a.body.data);
  cJSON_Delete(doc);
  answer_done(&a);

  /* An ack naming someone else: the token is in the answer, the current
   * acks and the audit trail. */
  static const char figures[] = "{\"received\": 1000, \"online\": 100}";
  cr_assert_eq(
      h_publish(mq.port, "ioc/Lắk/igate", figures, sizeof figures - 1, 1, NULL),
      0);
  char aid[17];
  firing_id(s.port, aid);
  char path[64];
  snprintf(path, sizeof path, "/api/v1/alerts/%s/ack", aid);
  for (int i = 0; i < 50; i++) {
    call(s.port, NULL, "POST", path, op,
         "{\"by\": \"an.nguyen\", \"comment\": \"đang xử lý\"}", &a, &all);
    if (a.status != 404) {
      break;
    }
    answer_done(&a);
    h_sleep_ms(100);
  }
  cr_assert_eq(a.status, 200, "%ld %s", a.status, a.body.data);
  doc = answer_json(&a);
  cr_expect_str_eq(jstr(doc, "by"), "an.nguyen");
  cr_expect_str_eq(jstr(doc, "principal"), "ops-duty");
  cJSON_Delete(doc);
  answer_done(&a);

  /* Both survive a restart: silences.json and acks.jsonl keep them. */
  cr_assert_eq(h_iocd_stop(&s.p, SIGTERM, 20000), 0, "see %s", s.p.log);
  start_three_with_rule(&s, mq.port, true);
  call(s.port, NULL, "GET", "/api/v1/silences", viewer, NULL, &a, &all);
  doc = answer_json(&a);
  x = by_id(doc, "silences", sid);
  cr_assert_not_null(x, "%s", a.body.data);
  cr_expect_str_eq(jstr(x, "principal"), "ops-duty", "%s", a.body.data);
  cJSON_Delete(doc);
  answer_done(&a);
  call(s.port, NULL, "GET", "/api/v1/acks", viewer, NULL, &a, &all);
  doc = answer_json(&a);
  x = by_id(doc, "acks", aid);
  cr_assert_not_null(x, "%s", a.body.data);
  cr_expect_str_eq(jstr(x, "by"), "an.nguyen");
  cr_expect_str_eq(jstr(x, "principal"), "ops-duty");
  const cJSON *line = last_of(doc, "audit");
  cr_expect_str_eq(jstr(line, "action"), "ack");
  cr_expect_str_eq(jstr(line, "by"), "an.nguyen");
  cr_expect_str_eq(jstr(line, "principal"), "ops-duty");
  cJSON_Delete(doc);
  answer_done(&a);

  /* Taken back and ended by the admin token: recorded as the admin's. */
  call(s.port, NULL, "DELETE", path, admin, "{\"by\": \"binh.tran\"}", &a,
       &all);
  cr_expect_eq(a.status, 200, "%ld %s", a.status, a.body.data);
  answer_done(&a);
  call(s.port, NULL, "GET", "/api/v1/acks", viewer, NULL, &a, &all);
  doc = answer_json(&a);
  cr_expect_null(by_id(doc, "acks", aid), "%s", a.body.data);
  line = last_of(doc, "audit");
  cr_expect_str_eq(jstr(line, "action"), "unack");
  cr_expect_str_eq(jstr(line, "by"), "binh.tran");
  cr_expect_str_eq(jstr(line, "principal"), "admin");
  cJSON_Delete(doc);
  answer_done(&a);
  char del[64];
  snprintf(del, sizeof del, "/api/v1/silences/%s", sid);
  call(s.port, NULL, "DELETE", del, admin, NULL, &a, &all);
  cr_expect_eq(a.status, 200, "%ld %s", a.status, a.body.data);
  answer_done(&a);
  call(s.port, NULL, "GET", "/api/v1/silences", viewer, NULL, &a, &all);
  doc = answer_json(&a);
  x = by_id(doc, "silences", sid);
  cr_assert_not_null(x, "%s", a.body.data);
  cr_expect_str_eq(jstr(x, "state"), "expired");
  cr_expect_str_eq(jstr(x, "principal"), "ops-duty");
  cr_expect_str_eq(jstr(x, "expired_by"), "admin");
  cJSON_Delete(doc);
  answer_done(&a);
  char want[96];
  snprintf(want, sizeof want, "silence %s ended (token admin)", sid);
  cr_expect(h_iocd_log_contains(&s.p, want), "no \"%s\" in %s", want, s.p.log);
  buf_putc(&all, '\0');
  expect_no_token(all.data, "the answers");
  buf_cleanup(&all);
  stop(&s);
  h_mosquitto_stop(&mq);
  h_rmtree(mq.dir);
}

/* Runs `iocd check -c path`; returns its exit status and its output in
 * out. */
static int run_check(const char *path, struct buf *out) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "'%s' check -c '%s' 2>&1", h_iocd_bin(), path);
  FILE *f = popen(cmd, "r");
  cr_assert_not_null(f);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    buf_append(out, chunk, n);
  }
  buf_putc(out, '\0');
  int st = pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(api_auth, check_refuses_an_open_api_on_a_public_address, .timeout = 60) {
  char dir[256];
  cr_assert_eq(h_tmpdir(dir, sizeof dir), 0);
  static const char head[] =
      "{\"file\": {}, \"subscriptions\": [{\"topic\": \"t\"}],\n";
  char path[512], text[1024];
  snprintf(path, sizeof path, "%s/open.jsonc", dir);
  snprintf(text, sizeof text, "%s\"api\": {\"listen\": \"0.0.0.0:8080\"}}\n",
           head);
  write_file(dir, "open.jsonc", text);
  struct buf out;
  buf_init(&out, 1 << 20);
  cr_expect_eq(run_check(path, &out), 1, "%s", out.data);
  cr_expect(strstr(out.data,
                   "open.jsonc:2:19: api.listen: not a loopback "
                   "address, and no tokens are set: anyone on the "
                   "network could acknowledge alerts") != NULL,
            "%s", out.data);
  /* With a token (too short, and another one right), check names the
   * problem and neither token. */
  buf_reset(&out);
  snprintf(text, sizeof text,
           "%s\"api\": {\"listen\": \"0.0.0.0:8080\", \"tokens\": ["
           "{\"name\": \"a\", \"role\": \"viewer\", \"token\": \"shorty\"},"
           "{\"name\": \"b\", \"role\": \"admin\", \"token\": \"" ADMIN_TOKEN
           "\"}]}}\n",
           head);
  write_file(dir, "short.jsonc", text);
  snprintf(path, sizeof path, "%s/short.jsonc", dir);
  cr_expect_eq(run_check(path, &out), 1, "%s", out.data);
  cr_expect(
      strstr(out.data, "api.tokens[0].token: the token has 6 bytes") != NULL,
      "%s", out.data);
  cr_expect_null(strstr(out.data, "shorty"), "%s", out.data);
  expect_no_token(out.data, "iocd check");
  /* Tokens or an explicit anonymous role make it valid. */
  buf_reset(&out);
  snprintf(text, sizeof text,
           "%s\"api\": {\"listen\": \"0.0.0.0:8080\", \"tokens\": ["
           "{\"name\": \"b\", \"role\": \"admin\", \"token\": \"" ADMIN_TOKEN
           "\"}]}}\n",
           head);
  write_file(dir, "tokens.jsonc", text);
  snprintf(path, sizeof path, "%s/tokens.jsonc", dir);
  cr_expect_eq(run_check(path, &out), 0, "%s", out.data);
  expect_no_token(out.data, "iocd check");
  buf_reset(&out);
  snprintf(text, sizeof text,
           "%s\"api\": {\"listen\": \"0.0.0.0:8080\", \"anonymous\": "
           "\"viewer\"}}\n",
           head);
  write_file(dir, "anon.jsonc", text);
  snprintf(path, sizeof path, "%s/anon.jsonc", dir);
  cr_expect_eq(run_check(path, &out), 0, "%s", out.data);
  buf_cleanup(&out);
  h_rmtree(dir);
}

/* Runs a shell command; returns its exit status. */
static int sh(const char *cmd) {
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(api_auth, https_serves_with_a_self_signed_certificate, .timeout = 120) {
  struct srv s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(h_tmpdir(s.dir, sizeof s.dir), 0);
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -keyout "
           "key.pem -out cert.pem -days 2 -subj /CN=localhost -addext "
           "'subjectAltName=DNS:localhost,IP:127.0.0.1' >openssl.log 2>&1 && "
           "chmod 600 key.pem",
           s.dir);
  cr_assert_eq(sh(cmd), 0, "openssl failed, see %s/openssl.log", s.dir);
  s.port = h_free_port();
  char cfg[4096];
  snprintf(cfg, sizeof cfg,
           "{\"data_dir\": \"%s/var\", \"file\": {\"path\": \"%s/out.lp\"},\n"
           " \"log\": {\"level\": \"debug\"},\n"
           " \"mqtt\": {\"host\": \"127.0.0.1\", \"port\": %d},\n"
           " \"subscriptions\": [{\"topic\": \"t/{district}\"}],\n"
           " \"api\": {\"listen\": \"127.0.0.1:%d\",\n"
           "   \"tls\": {\"cert_file\": \"cert.pem\", \"key_file\": "
           "\"key.pem\"},\n"
           "   \"tokens\": [{\"name\": \"wall-display\", \"role\": "
           "\"viewer\", \"token\": \"" VIEWER_TOKEN "\"}]}}\n",
           s.dir, s.dir, h_free_port(), s.port);
  cr_assert_eq(h_iocd_start(&s.p, s.dir, cfg), 0);
  cr_assert_eq(h_iocd_wait_log(&s.p, "listening on https://127.0.0.1:", 20000),
               0, "see %s", s.p.log);
  /* curl with --cacert, as docs/api.md shows it. */
  char out[512];
  snprintf(
      cmd, sizeof cmd,
      "curl -s --cacert '%s/cert.pem' -H 'Authorization: Bearer " VIEWER_TOKEN
      "' https://127.0.0.1:%d/api/v1/alerts > '%s/alerts.json'",
      s.dir, s.port, s.dir);
  cr_expect_eq(sh(cmd), 0, "curl over HTTPS failed");
  snprintf(out, sizeof out, "%s/alerts.json", s.dir);
  FILE *f = fopen(out, "r");
  cr_assert_not_null(f);
  char body[256] = "";
  size_t n = fread(body, 1, sizeof body - 1, f);
  body[n] = '\0';
  fclose(f);
  cr_expect_str_eq(body, "{\"alerts\":[]}\n");
  /* Roles hold over HTTPS too. */
  char ca[512];
  snprintf(ca, sizeof ca, "%s/cert.pem", s.dir);
  struct answer a;
  call(s.port, ca, "GET", "/health", NULL, NULL, &a, NULL);
  cr_expect_eq(a.status, 200);
  answer_done(&a);
  call(s.port, ca, "GET", "/metrics", NULL, NULL, &a, NULL);
  cr_expect_eq(a.status, 401);
  answer_done(&a);
  const char *viewer[] = {"Authorization: Bearer " VIEWER_TOKEN, NULL};
  call(s.port, ca, "POST", "/api/v1/silences", viewer, "{}", &a, NULL);
  cr_expect_eq(a.status, 403, "%ld %s", a.status, a.body.data);
  answer_done(&a);
  /* Without the CA the certificate is not trusted; plain HTTP to the TLS
   * port gets no HTTP answer. */
  snprintf(cmd, sizeof cmd, "curl -s -o /dev/null https://127.0.0.1:%d/health",
           s.port);
  cr_expect_neq(sh(cmd), 0, "an untrusted certificate was accepted");
  call(s.port, NULL, "GET", "/health", NULL, NULL, &a, NULL);
  cr_expect_eq(a.status, 0, "plain HTTP answered %ld", a.status);
  answer_done(&a);
  /* Many connections at once still get through (the gate passes them on
   * at once and keeps its limits). */
  for (int i = 0; i < 20; i++) {
    call(s.port, ca, "GET", "/health", NULL, NULL, &a, NULL);
    cr_expect_eq(a.status, 200, "request %d", i);
    answer_done(&a);
  }
  stop(&s);
}

Test(api_auth, a_certificate_that_is_not_usable_stops_the_start,
     .timeout = 60) {
  struct srv s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(h_tmpdir(s.dir, sizeof s.dir), 0);
  write_file(s.dir, "cert.pem",
             "-----BEGIN CERTIFICATE-----\nnot a certificate\n"
             "-----END CERTIFICATE-----\n");
  write_file(s.dir, "key.pem",
             "-----BEGIN PRIVATE KEY-----\nnot a key\n"
             "-----END PRIVATE KEY-----\n");
  s.port = h_free_port();
  char cfg[2048];
  snprintf(cfg, sizeof cfg,
           "{\"data_dir\": \"%s/var\", \"file\": {\"path\": \"%s/out.lp\"},\n"
           " \"mqtt\": {\"host\": \"127.0.0.1\", \"port\": %d},\n"
           " \"subscriptions\": [{\"topic\": \"t/{district}\"}],\n"
           " \"api\": {\"listen\": \"127.0.0.1:%d\", \"tls\": {\"cert_file\": "
           "\"cert.pem\", \"key_file\": \"key.pem\"}}}\n",
           s.dir, s.dir, h_free_port(), s.port);
  cr_assert_eq(h_iocd_start(&s.p, s.dir, cfg), 0);
  cr_expect_eq(h_iocd_wait_log(&s.p, "api.tls: cannot serve HTTPS", 20000), 0,
               "see %s", s.p.log);
  cr_expect_eq(h_iocd_stop(&s.p, 0, 20000), 1, "iocd did not stop at once");
  cr_expect_not(h_iocd_log_contains(&s.p, "not a key"));
  h_rmtree(s.dir);
}
