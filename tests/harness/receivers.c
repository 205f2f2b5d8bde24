/*
 * The alert receivers integration tests deliver to: a real Alertmanager, a
 * real SMTP server keeping messages in a maildir (read back with Python's
 * own email package, so the test checks what a mail reader decodes), and
 * an HTTP recorder in the test process standing in for webhooks, the
 * Telegram Bot API and the Zalo OA API.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/harness/harness.h"
#include "tests/harness/harness_int.h"

#define ALERTMANAGER_BIN "/usr/bin/prometheus-alertmanager"
/* Debian's interpreter: aiosmtpd is installed for it, maybe not for the
 * python3 on PATH. */
#define PYTHON_BIN "/usr/bin/python3"
#define START_ATTEMPTS 3
#define CAPTURE_MAX (64u << 20)

static void fail(const char *what, const char *detail) {
  fprintf(stderr, "harness: %s%s%s\n", what, detail ? ": " : "",
          detail ? detail : "");
}

static void sleep_ms(long ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ---- small HTTP client ---- */

struct got {
  char *data;
  size_t len;
};

static size_t got_body(char *p, size_t size, size_t n, void *ud) {
  struct got *g = ud;
  size_t add = size * n;
  if (g->len + add + 1 > CAPTURE_MAX) {
    return 0;
  }
  char *bigger = realloc(g->data, g->len + add + 1);
  if (!bigger) {
    return 0;
  }
  memcpy(bigger + g->len, p, add);
  g->len += add;
  bigger[g->len] = '\0';
  g->data = bigger;
  return add;
}

/* GET url; the status (0: no answer) and the body in *body (may be NULL). */
static long http_get(const char *url, char **body) {
  CURL *e = curl_easy_init();
  if (!e) {
    return 0;
  }
  struct got g = {NULL, 0};
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, got_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &g);
  long status = 0;
  if (curl_easy_perform(e) == CURLE_OK) {
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  }
  curl_easy_cleanup(e);
  if (body) {
    *body = g.data ? g.data : calloc(1, 1);
  } else {
    free(g.data);
  }
  return status;
}

/* ---- Alertmanager ---- */

static int am_spawn(struct h_alertmanager *a) {
  char conf[512], storage[512], listen[64], log[512], ready[128];
  snprintf(conf, sizeof conf, "--config.file=%s/am.yml", a->dir);
  snprintf(storage, sizeof storage, "--storage.path=%s/data", a->dir);
  snprintf(listen, sizeof listen, "--web.listen-address=127.0.0.1:%d", a->port);
  snprintf(log, sizeof log, "%s/alertmanager.log", a->dir);
  char *argv[] = {ALERTMANAGER_BIN,
                  conf,
                  storage,
                  listen,
                  "--cluster.listen-address=",
                  NULL};
  a->pid = h__spawn(argv, log);
  if (a->pid < 0) {
    a->pid = 0;
    return -1;
  }
  snprintf(a->url, sizeof a->url, "http://127.0.0.1:%d", a->port);
  snprintf(ready, sizeof ready, "%s/-/ready", a->url);
  int64_t end = h__now_ms() + 20000;
  while (http_get(ready, NULL) != 200) {
    if (!h__child_alive(a->pid)) {
      a->pid = 0;
      fail("alertmanager exited at start, see", log);
      return -1;
    }
    if (h__now_ms() > end) {
      fail("alertmanager: not ready after 20 s, see", log);
      h__stop_child(&a->pid, 2000);
      return -1;
    }
    sleep_ms(50);
  }
  return 0;
}

int h_alertmanager_start(struct h_alertmanager *a) {
  memset(a, 0, sizeof *a);
  if (h_tmpdir(a->dir, sizeof a->dir) != 0) {
    return -1;
  }
  char path[512];
  snprintf(path, sizeof path, "%s/am.yml", a->dir);
  if (h_write_file(path,
                   "route:\n"
                   "  receiver: rec\n"
                   "  group_wait: 0s\n"
                   "receivers:\n"
                   "  - name: rec\n") != 0) {
    return -1;
  }
  for (int i = 0; i < START_ATTEMPTS; i++) {
    a->port = h_free_port();
    if (a->port > 0 && am_spawn(a) == 0) {
      return 0;
    }
  }
  return -1;
}

void h_alertmanager_stop(struct h_alertmanager *a) {
  h__stop_child(&a->pid, 5000);
  if (!getenv("IOCD_TEST_KEEP") && a->dir[0]) {
    h_rmtree(a->dir);
  }
}

int h_alertmanager_alerts(const struct h_alertmanager *a, char **json) {
  char url[128];
  snprintf(url, sizeof url, "%s/api/v2/alerts", a->url);
  *json = NULL;
  long status = http_get(url, json);
  if (status != 200) {
    free(*json);
    *json = NULL;
    return -1;
  }
  return 0;
}

/* ---- SMTP ---- */

static int smtp_spawn(struct h_smtp *s) {
  char listen[64], log[512];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", s->port);
  snprintf(log, sizeof log, "%s/aiosmtpd.log", s->dir);
  char *argv[] = {PYTHON_BIN, "-m",   "aiosmtpd", "-n",
                  "-l",       listen, "-c",       "aiosmtpd.handlers.Mailbox",
                  s->maildir, NULL};
  s->pid = h__spawn(argv, log);
  if (s->pid < 0) {
    s->pid = 0;
    return -1;
  }
  int64_t end = h__now_ms() + 20000;
  while (!h__port_accepts(s->port)) {
    if (!h__child_alive(s->pid)) {
      s->pid = 0;
      fail("aiosmtpd exited at start, see", log);
      return -1;
    }
    if (h__now_ms() > end) {
      fail("aiosmtpd: not accepting after 20 s, see", log);
      h__stop_child(&s->pid, 2000);
      return -1;
    }
    sleep_ms(20);
  }
  snprintf(s->url, sizeof s->url, "smtp://127.0.0.1:%d", s->port);
  return 0;
}

int h_smtp_start(struct h_smtp *s) {
  memset(s, 0, sizeof *s);
  if (h_tmpdir(s->dir, sizeof s->dir) != 0) {
    return -1;
  }
  snprintf(s->maildir, sizeof s->maildir, "%s/maildir", s->dir);
  static const char *const subs[] = {"", "/cur", "/new", "/tmp"};
  for (size_t i = 0; i < 4; i++) {
    char p[400];
    snprintf(p, sizeof p, "%s%s", s->maildir, subs[i]);
    if (mkdir(p, 0755) != 0) {
      fail("maildir", strerror(errno));
      return -1;
    }
  }
  for (int i = 0; i < START_ATTEMPTS; i++) {
    s->port = h_free_port();
    if (s->port > 0 && smtp_spawn(s) == 0) {
      return 0;
    }
  }
  return -1;
}

void h_smtp_stop(struct h_smtp *s) {
  h__stop_child(&s->pid, 5000);
  if (!getenv("IOCD_TEST_KEEP") && s->dir[0]) {
    h_rmtree(s->dir);
  }
}

static int count_dir(const char *path) {
  DIR *d = opendir(path);
  if (!d) {
    return -1;
  }
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    n += e->d_name[0] != '.';
  }
  closedir(d);
  return n;
}

int h_smtp_count(const struct h_smtp *s) {
  char p[400];
  snprintf(p, sizeof p, "%s/new", s->maildir);
  int a = count_dir(p);
  snprintf(p, sizeof p, "%s/cur", s->maildir);
  int b = count_dir(p);
  return a < 0 || b < 0 ? -1 : a + b;
}

int h_smtp_wait(const struct h_smtp *s, int n, int timeout_ms) {
  int64_t end = h__now_ms() + timeout_ms;
  while (h_smtp_count(s) < n) {
    if (h__now_ms() > end) {
      fail("smtp: fewer messages than expected in", s->maildir);
      return -1;
    }
    sleep_ms(50);
  }
  return 0;
}

/* Runs argv and returns its standard output in *out (malloc'd). */
static int run_capture(char *const argv[], char **out) {
  int fds[2];
  if (pipe(fds) != 0) {
    return -1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execv(argv[0], argv);
    _exit(127);
  }
  close(fds[1]);
  struct got g = {NULL, 0};
  char chunk[4096];
  for (;;) {
    ssize_t k = read(fds[0], chunk, sizeof chunk);
    if (k < 0 && errno == EINTR) {
      continue;
    }
    if (k <= 0) {
      break;
    }
    got_body(chunk, 1, (size_t)k, &g);
  }
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !g.data) {
    free(g.data);
    return -1;
  }
  *out = g.data;
  return 0;
}

static const char decode_py[] =
    "import email.header, json, mailbox, sys\n"
    "def dec(v):\n"
    "    if v is None:\n"
    "        return None\n"
    "    return str(email.header.make_header(email.header.decode_header(v)))\n"
    "md = mailbox.Maildir(sys.argv[1], create=False)\n"
    "out = []\n"
    "for key in sorted(md.keys()):\n"
    "    m = md[key]\n"
    "    parts = {}\n"
    "    for p in m.walk():\n"
    "        if p.get_content_maintype() == 'text':\n"
    "            raw = p.get_payload(decode=True)\n"
    "            parts[p.get_content_type()] = raw.decode(\n"
    "                p.get_content_charset() or 'ascii')\n"
    "    out.append({'subject': dec(m['Subject']), 'from': dec(m['From']),\n"
    "                'to': dec(m['To']), 'message_id': m['Message-ID'],\n"
    "                'mail_from': m['X-MailFrom'], 'rcpt_to': m['X-RcptTo'],\n"
    "                'content_type': m.get_content_type(),\n"
    "                'text': parts.get('text/plain'),\n"
    "                'html': parts.get('text/html')})\n"
    "sys.stdout.write(json.dumps(out, ensure_ascii=False))\n";

int h_smtp_messages(const struct h_smtp *s, char **json) {
  char *argv[] = {PYTHON_BIN, "-c", (char *)decode_py, (char *)s->maildir,
                  NULL};
  *json = NULL;
  if (run_capture(argv, json) != 0) {
    fail("smtp: cannot decode the maildir", s->maildir);
    return -1;
  }
  return 0;
}

/* ---- the HTTP recorder ---- */

struct answer {
  int status;
  char *body;
  char *header;
  int times;
};

struct h_recorder {
  struct MHD_Daemon *d;
  int port;
  char url[64];
  pthread_mutex_t mu;
  struct h_request *reqs;
  size_t nreqs, cap;
  struct answer *script;
  size_t nscript;
  struct answer dflt;
};

/* One request being received. */
struct conn {
  struct h_request q;
  size_t cap;
};

static char *dup_str(const char *s) {
  size_t n = strlen(s ? s : "");
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s ? s : "", n + 1);
  }
  return d;
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind,
                                  const char *key, const char *value) {
  (void)kind;
  struct h_request *q = cls;
  char **names = realloc(q->names, (q->nheaders + 1) * sizeof *names);
  if (names) {
    q->names = names;
  }
  char **values = realloc(q->values, (q->nheaders + 1) * sizeof *values);
  if (values) {
    q->values = values;
  }
  if (names && values) {
    q->names[q->nheaders] = dup_str(key);
    q->values[q->nheaders] = dup_str(value);
    q->nheaders++;
  }
  return MHD_YES;
}

void h_request_cleanup(struct h_request *q) {
  for (size_t i = 0; i < q->nheaders; i++) {
    free(q->names[i]);
    free(q->values[i]);
  }
  free(q->names);
  free(q->values);
  free(q->method);
  free(q->path);
  free(q->body);
  memset(q, 0, sizeof *q);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *size, void **con_cls) {
  (void)version;
  struct h_recorder *r = cls;
  struct conn *k = *con_cls;
  if (!k) {
    k = calloc(1, sizeof *k);
    if (!k) {
      return MHD_NO;
    }
    k->q.method = dup_str(method);
    k->q.path = dup_str(url);
    k->q.body = calloc(1, 1);
    MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, &k->q);
    *con_cls = k;
    return MHD_YES;
  }
  if (*size > 0) {
    char *bigger = realloc(k->q.body, k->q.body_len + *size + 1);
    if (bigger) {
      memcpy(bigger + k->q.body_len, data, *size);
      k->q.body_len += *size;
      bigger[k->q.body_len] = '\0';
      k->q.body = bigger;
    }
    *size = 0;
    return MHD_YES;
  }
  /* The whole request is in: record it, take the next answer. */
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  k->q.arrived_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
  pthread_mutex_lock(&r->mu);
  if (r->nreqs == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    struct h_request *bigger = realloc(r->reqs, cap * sizeof *bigger);
    if (bigger) {
      r->reqs = bigger;
      r->cap = cap;
    }
  }
  if (r->nreqs < r->cap) {
    r->reqs[r->nreqs++] = k->q;
    memset(&k->q, 0, sizeof k->q);
  }
  struct answer a = r->dflt;
  bool scripted = r->nscript > 0;
  if (scripted) {
    a = r->script[0];
  }
  struct MHD_Response *rs = MHD_create_response_from_buffer(
      strlen(a.body), a.body, MHD_RESPMEM_MUST_COPY);
  if (rs) {
    MHD_add_response_header(rs, "Content-Type", "application/json");
    if (a.header) {
      const char *colon = strchr(a.header, ':');
      if (colon) {
        char name[128];
        size_t n = (size_t)(colon - a.header);
        n = n < sizeof name - 1 ? n : sizeof name - 1;
        memcpy(name, a.header, n);
        name[n] = '\0';
        const char *v = colon + 1;
        while (*v == ' ') {
          v++;
        }
        MHD_add_response_header(rs, name, v);
      }
    }
  }
  if (scripted && --r->script[0].times <= 0) {
    free(r->script[0].body);
    free(r->script[0].header);
    memmove(r->script, r->script + 1, (r->nscript - 1) * sizeof *r->script);
    r->nscript--;
  }
  pthread_mutex_unlock(&r->mu);
  if (!rs) {
    return MHD_NO;
  }
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)a.status, rs);
  MHD_destroy_response(rs);
  return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  struct conn *k = *con_cls;
  if (k) {
    h_request_cleanup(&k->q);
    free(k);
  }
  *con_cls = NULL;
}

static struct MHD_Daemon *recorder_listen(struct h_recorder *r, int port) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO,
                          (uint16_t)port, NULL, NULL, on_request, r,
                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                          MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
}

struct h_recorder *h_recorder_start(int port) {
  struct h_recorder *r = calloc(1, sizeof *r);
  if (!r) {
    return NULL;
  }
  pthread_mutex_init(&r->mu, NULL);
  r->dflt.status = 200;
  r->dflt.body = dup_str("{}");
  for (int i = 0; i < START_ATTEMPTS && !r->d; i++) {
    r->port = port > 0 ? port : h_free_port();
    if (r->port > 0) {
      r->d = recorder_listen(r, r->port);
    }
    if (!r->d && port > 0) {
      /* The same port again (a receiver coming back): wait for it. */
      sleep_ms(200);
    }
  }
  if (!r->d) {
    fail("recorder: cannot listen", NULL);
    free(r->dflt.body);
    pthread_mutex_destroy(&r->mu);
    free(r);
    return NULL;
  }
  snprintf(r->url, sizeof r->url, "http://127.0.0.1:%d", r->port);
  return r;
}

int h_recorder_port(const struct h_recorder *r) {
  return r->port;
}

const char *h_recorder_url(const struct h_recorder *r) {
  return r->url;
}

void h_recorder_default(struct h_recorder *r, int status, const char *body) {
  pthread_mutex_lock(&r->mu);
  free(r->dflt.body);
  r->dflt.status = status;
  r->dflt.body = dup_str(body);
  pthread_mutex_unlock(&r->mu);
}

void h_recorder_script(struct h_recorder *r, int times, int status,
                       const char *body, const char *header) {
  pthread_mutex_lock(&r->mu);
  struct answer *bigger = realloc(r->script, (r->nscript + 1) * sizeof *bigger);
  if (bigger) {
    r->script = bigger;
    r->script[r->nscript++] = (struct answer){
        status, dup_str(body), header ? dup_str(header) : NULL, times};
  }
  pthread_mutex_unlock(&r->mu);
}

size_t h_recorder_count(struct h_recorder *r) {
  pthread_mutex_lock(&r->mu);
  size_t n = r->nreqs;
  pthread_mutex_unlock(&r->mu);
  return n;
}

int h_recorder_wait(struct h_recorder *r, size_t n, int timeout_ms) {
  int64_t end = h__now_ms() + timeout_ms;
  while (h_recorder_count(r) < n) {
    if (h__now_ms() > end) {
      fail("recorder: fewer requests than expected", NULL);
      return -1;
    }
    sleep_ms(10);
  }
  return 0;
}

bool h_recorder_get(struct h_recorder *r, size_t i, struct h_request *out) {
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&r->mu);
  bool ok = i < r->nreqs;
  if (ok) {
    const struct h_request *q = &r->reqs[i];
    out->method = dup_str(q->method);
    out->path = dup_str(q->path);
    out->arrived_ns = q->arrived_ns;
    out->body = malloc(q->body_len + 1);
    if (out->body) {
      memcpy(out->body, q->body, q->body_len + 1);
      out->body_len = q->body_len;
    }
    out->names = calloc(q->nheaders + 1, sizeof *out->names);
    out->values = calloc(q->nheaders + 1, sizeof *out->values);
    for (size_t k = 0; out->names && out->values && k < q->nheaders; k++) {
      out->names[k] = dup_str(q->names[k]);
      out->values[k] = dup_str(q->values[k]);
      out->nheaders = k + 1;
    }
  }
  pthread_mutex_unlock(&r->mu);
  return ok;
}

const char *h_request_header(const struct h_request *q, const char *name) {
  for (size_t i = 0; i < q->nheaders; i++) {
    if (strcasecmp(q->names[i], name) == 0) {
      return q->values[i];
    }
  }
  return NULL;
}

void h_recorder_stop(struct h_recorder *r) {
  if (!r) {
    return;
  }
  MHD_stop_daemon(r->d);
  for (size_t i = 0; i < r->nreqs; i++) {
    h_request_cleanup(&r->reqs[i]);
  }
  free(r->reqs);
  for (size_t i = 0; i < r->nscript; i++) {
    free(r->script[i].body);
    free(r->script[i].header);
  }
  free(r->script);
  free(r->dflt.body);
  pthread_mutex_destroy(&r->mu);
  free(r);
}
