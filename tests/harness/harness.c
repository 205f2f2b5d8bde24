/*
 * Integration-test harness: starts real mosquitto and influxd servers on free
 * loopback ports, each in its own temporary directory, runs the iocd binary as
 * a black box, and offers blocking MQTT and InfluxDB clients to drive and
 * check them. Every child process is tied to the test process with
 * PR_SET_PDEATHSIG, so a crashing test leaves no server behind.
 *
 * Everything here blocks and reports failures on stderr: it is test code,
 * run in Criterion's forked test processes, never on an event loop.
 */
#include "tests/harness/harness.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "tests/harness/harness_int.h"

#ifndef IOCD_BIN_PATH
#define IOCD_BIN_PATH "iocd"
#endif

#define MOSQUITTO_BIN "/usr/sbin/mosquitto"
#define INFLUXD_BIN "/usr/bin/influxd"

/* A start that loses the race for its free port (another test bound it
 * between h_free_port and the server's bind) is retried on new ports. */
#define START_ATTEMPTS 3

/* Log files and query answers are read whole; tests never need more. */
#define READ_MAX (64u << 20)

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("harness: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {.tv_sec = ms / 1000,
                        .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

int h_tmpdir(char *out, size_t n) {
  static const char tmpl[] = "/tmp/iocd-test-XXXXXX";
  if (n < sizeof tmpl) {
    fail("h_tmpdir: buffer too small");
    return -1;
  }
  memcpy(out, tmpl, sizeof tmpl);
  if (!mkdtemp(out)) {
    fail("h_tmpdir: mkdtemp: %s", strerror(errno));
    return -1;
  }
  return 0;
}

/* Recursive removal without following symlinks (lstat), so a link inside
 * the test directory can never lead the removal outside it. */
static void rmtree_at(const char *path, int depth) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    return;
  }
  if (S_ISDIR(st.st_mode) && depth < 32) {
    DIR *d = opendir(path);
    if (d) {
      struct dirent *e;
      while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
          continue;
        }
        char child[4096];
        int k = snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        if (k > 0 && (size_t)k < sizeof child) {
          rmtree_at(child, depth + 1);
        }
      }
      closedir(d);
    }
    rmdir(path);
    return;
  }
  unlink(path);
}

void h_rmtree(const char *path) {
  if (path && *path && strcmp(path, "/") != 0) {
    rmtree_at(path, 0);
  }
}

int h_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    fail("h_free_port: socket: %s", strerror(errno));
    return -1;
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
    fail("h_free_port: %s", strerror(errno));
  } else {
    port = ntohs(sa.sin_port);
  }
  close(fd);
  return port;
}

static bool port_accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return false;
  }
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  close(fd);
  return ok;
}

int h_wait_port(int port, int timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  while (!port_accepts(port)) {
    if (now_ms() > end) {
      fail("port %d: not accepting after %d ms", port, timeout_ms);
      return -1;
    }
    sleep_ms(20);
  }
  return 0;
}

static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) {
    fail("%s: %s", path, strerror(errno));
    return -1;
  }
  size_t n = strlen(text);
  bool ok = fwrite(text, 1, n, f) == n;
  if (fclose(f) != 0) {
    ok = false;
  }
  if (!ok) {
    fail("%s: write failed", path);
    return -1;
  }
  return 0;
}

/* Reads a whole file into a NUL-terminated malloc'd string. */
static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    return NULL;
  }
  size_t cap = 4096, n = 0;
  char *data = malloc(cap);
  while (data) {
    if (n + 1 >= cap) {
      if (cap >= READ_MAX) {
        break;
      }
      char *bigger = realloc(data, cap * 2);
      if (!bigger) {
        free(data);
        data = NULL;
        break;
      }
      data = bigger;
      cap *= 2;
    }
    size_t got = fread(data + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) {
      break;
    }
  }
  fclose(f);
  if (data) {
    data[n] = '\0';
    if (len) {
      *len = n;
    }
  }
  return data;
}

/* Forks and execs argv[0] with stdin from /dev/null and stdout+stderr
 * appended to log. The child asks to be killed when the test process dies,
 * and checks that its parent did not already die before it asked. */
static pid_t spawn(char *const argv[], const char *log) {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    fail("fork: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
      _exit(126);
    }
    int in = open("/dev/null", O_RDONLY);
    int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
        dup2(out, 2) < 0) {
      _exit(126);
    }
    /* The test process holds sockets (Criterion's pipe to its runner, MQTT
     * and HTTP connections) that a server must not keep open after the test
     * ends. No allocation here: the parent may have threads. */
    long maxfd = sysconf(_SC_OPEN_MAX);
    if (maxfd < 0 || maxfd > 65536) {
      maxfd = 65536;
    }
    for (int fd = 3; fd < maxfd; fd++) {
      close(fd);
    }
    /* Criterion may block signals in its workers; servers must see
     * SIGTERM. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    execv(argv[0], argv);
    _exit(127);
  }
  return pid;
}

/* Waits for pid up to timeout_ms. Returns true when it exited (status in
 * *status), false when it is still running. */
static bool wait_exit(pid_t pid, int timeout_ms, int *status) {
  int64_t end = now_ms() + timeout_ms;
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) {
      return true;
    }
    if (now_ms() > end) {
      return false;
    }
    sleep_ms(10);
  }
}

/* SIGTERM, then SIGKILL after grace_ms. */
static void stop_child(pid_t *pid, int grace_ms) {
  if (*pid <= 0) {
    return;
  }
  int status;
  kill(*pid, SIGTERM);
  if (!wait_exit(*pid, grace_ms, &status)) {
    kill(*pid, SIGKILL);
    wait_exit(*pid, 5000, &status);
  }
  *pid = 0;
}

static bool child_alive(pid_t pid) {
  int status;
  return pid > 0 && waitpid(pid, &status, WNOHANG) == 0;
}

/* ---- mosquitto ---- */

static int mosquitto_spawn(struct h_mosquitto *m) {
  char conf[512], log[512];
  snprintf(conf, sizeof conf, "%s/mosquitto.conf", m->dir);
  snprintf(log, sizeof log, "%s/mosquitto.out", m->dir);
  char *argv[] = {MOSQUITTO_BIN, "-c", conf, NULL};
  m->pid = spawn(argv, log);
  if (m->pid < 0) {
    m->pid = 0;
    return -1;
  }
  int64_t end = now_ms() + 10000;
  while (!port_accepts(m->port)) {
    if (!child_alive(m->pid)) {
      m->pid = 0;
      fail("mosquitto on port %d exited at start (see %s/mosquitto.log)",
           m->port, m->dir);
      return -1;
    }
    if (now_ms() > end) {
      fail("mosquitto on port %d: not accepting after 10 s", m->port);
      stop_child(&m->pid, 1000);
      return -1;
    }
    sleep_ms(20);
  }
  return 0;
}

static int mosquitto_write_conf(const struct h_mosquitto *m,
                                const char *extra_conf) {
  /* The broker runs as root (it would otherwise drop to the mosquitto user
   * and lose access to the test directory). Persistence is saved at exit
   * (SIGTERM) and every second, so sessions, subscriptions and queued QoS 1/2
   * messages survive both a restart and a SIGKILL. The queue limit is raised
   * from the default 1000 so tests may queue thousands of messages for a
   * stopped client; extra_conf comes last and may set it back. */
  char conf[4096];
  int k = snprintf(conf, sizeof conf,
                   "listener %d 127.0.0.1\n"
                   "allow_anonymous true\n"
                   "user root\n"
                   "persistence true\n"
                   "persistence_location %s/\n"
                   "autosave_interval 1\n"
                   "max_queued_messages 100000\n"
                   "log_dest file %s/mosquitto.log\n"
                   "log_type error\nlog_type warning\nlog_type notice\n"
                   "log_type information\nlog_type subscribe\n"
                   "log_type unsubscribe\n"
                   "log_timestamp_format %%Y-%%m-%%dT%%H:%%M:%%S\n"
                   "%s\n",
                   m->port, m->dir, m->dir, extra_conf ? extra_conf : "");
  if (k < 0 || (size_t)k >= sizeof conf) {
    fail("mosquitto: config too long");
    return -1;
  }
  char path[512];
  snprintf(path, sizeof path, "%s/mosquitto.conf", m->dir);
  return write_file(path, conf);
}

int h_mosquitto_start(struct h_mosquitto *m, const char *dir,
                      const char *extra_conf) {
  memset(m, 0, sizeof *m);
  if (dir) {
    int k = snprintf(m->dir, sizeof m->dir, "%s", dir);
    if (k < 0 || (size_t)k >= sizeof m->dir) {
      fail("mosquitto: directory name too long");
      return -1;
    }
  } else if (h_tmpdir(m->dir, sizeof m->dir) != 0) {
    return -1;
  }
  for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    m->port = h_free_port();
    if (m->port < 0 || mosquitto_write_conf(m, extra_conf) != 0) {
      return -1;
    }
    if (mosquitto_spawn(m) == 0) {
      return 0;
    }
  }
  return -1;
}

void h_mosquitto_stop(struct h_mosquitto *m) {
  stop_child(&m->pid, 5000);
}

int h_mosquitto_restart(struct h_mosquitto *m) {
  h_mosquitto_stop(m);
  /* The config file names the port: the restart binds the same one, so
   * clients find the broker where it was. */
  return mosquitto_spawn(m);
}

/* ---- influxd ---- */

/* A response body, NUL-terminated, at most READ_MAX bytes. */
struct body {
  char *data;
  size_t len;
};

static size_t collect(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct body *b = ud;
  size_t add = size * nmemb;
  if (b->len + add + 1 > READ_MAX) {
    return 0; /* curl fails the transfer */
  }
  char *bigger = realloc(b->data, b->len + add + 1);
  if (!bigger) {
    return 0;
  }
  memcpy(bigger + b->len, ptr, add);
  b->len += add;
  bigger[b->len] = '\0';
  b->data = bigger;
  return add;
}

/* One blocking HTTP request. body NULL means GET. Returns the HTTP status,
 * or -1 when the transfer failed; *answer (optional) receives the body. */
static long http(const char *url, const char *body, char **answer) {
  CURL *e = curl_easy_init();
  if (!e) {
    return -1;
  }
  struct body resp = {NULL, 0};
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &resp);
  if (body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
  }
  long code = -1;
  CURLcode rc = curl_easy_perform(e);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  }
  curl_easy_cleanup(e);
  if (answer) {
    *answer = resp.data;
  } else {
    free(resp.data);
  }
  return code;
}

static int influxd_spawn(struct h_influxd *d) {
  char conf[512], log[512], url[128];
  snprintf(conf, sizeof conf, "%s/influxdb.conf", d->dir);
  snprintf(log, sizeof log, "%s/influxd.log", d->dir);
  snprintf(url, sizeof url, "%s/ping", d->url);
  char *argv[] = {INFLUXD_BIN, "-config", conf, NULL};
  d->pid = spawn(argv, log);
  if (d->pid < 0) {
    d->pid = 0;
    return -1;
  }
  int64_t end = now_ms() + 20000;
  while (http(url, NULL, NULL) != 204) {
    if (!child_alive(d->pid)) {
      d->pid = 0;
      fail("influxd on port %d exited at start (see %s)", d->port, log);
      return -1;
    }
    if (now_ms() > end) {
      fail("influxd on port %d: no 204 from /ping after 20 s", d->port);
      stop_child(&d->pid, 1000);
      return -1;
    }
    sleep_ms(25);
  }
  return 0;
}

static int influxd_write_conf(const struct h_influxd *d) {
  char conf[2048];
  int k = snprintf(conf, sizeof conf,
                   "reporting-enabled = false\n"
                   "bind-address = \"127.0.0.1:%d\"\n"
                   "[meta]\n"
                   "  dir = \"%s/meta\"\n"
                   "[data]\n"
                   "  dir = \"%s/data\"\n"
                   "  wal-dir = \"%s/wal\"\n"
                   "  query-log-enabled = false\n"
                   "[monitor]\n"
                   "  store-enabled = false\n"
                   "[http]\n"
                   "  bind-address = \"127.0.0.1:%d\"\n"
                   "  log-enabled = false\n"
                   "[logging]\n"
                   "  level = \"warn\"\n"
                   "  suppress-logo = true\n",
                   d->rpc_port, d->dir, d->dir, d->dir, d->port);
  if (k < 0 || (size_t)k >= sizeof conf) {
    fail("influxd: config too long");
    return -1;
  }
  char path[512];
  snprintf(path, sizeof path, "%s/influxdb.conf", d->dir);
  return write_file(path, conf);
}

int h_influxd_start(struct h_influxd *d, const char *dir) {
  memset(d, 0, sizeof *d);
  if (dir) {
    int k = snprintf(d->dir, sizeof d->dir, "%s", dir);
    if (k < 0 || (size_t)k >= sizeof d->dir) {
      fail("influxd: directory name too long");
      return -1;
    }
  } else if (h_tmpdir(d->dir, sizeof d->dir) != 0) {
    return -1;
  }
  for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    d->port = h_free_port();
    d->rpc_port = h_free_port();
    if (d->port < 0 || d->rpc_port < 0 || d->port == d->rpc_port) {
      continue;
    }
    snprintf(d->url, sizeof d->url, "http://127.0.0.1:%d", d->port);
    if (influxd_write_conf(d) != 0) {
      return -1;
    }
    if (influxd_spawn(d) == 0) {
      return 0;
    }
  }
  return -1;
}

void h_influxd_stop(struct h_influxd *d) {
  stop_child(&d->pid, 5000);
}

int h_influxd_restart(struct h_influxd *d) {
  h_influxd_stop(d);
  return influxd_spawn(d);
}

int h_influx_query(const struct h_influxd *d, const char *db, const char *q,
                   char **json) {
  *json = NULL;
  CURL *e = curl_easy_init();
  if (!e) {
    return -1;
  }
  char *eq = curl_easy_escape(e, q, 0);
  char *edb = db ? curl_easy_escape(e, db, 0) : NULL;
  curl_easy_cleanup(e);
  if (!eq || (db && !edb)) {
    curl_free(eq);
    curl_free(edb);
    return -1;
  }
  size_t n = strlen(eq) + (edb ? strlen(edb) : 0) + 32;
  char *body = malloc(n);
  char url[128];
  snprintf(url, sizeof url, "%s/query", d->url);
  int rc = -1;
  if (body) {
    snprintf(body, n, "q=%s&epoch=ns%s%s", eq, edb ? "&db=" : "",
             edb ? edb : "");
    char *answer = NULL;
    long code = http(url, body, &answer);
    if (code == 200 && answer) {
      *json = answer;
      rc = 0;
    } else {
      fail("influx query \"%s\": HTTP %ld %s", q, code, answer ? answer : "");
      free(answer);
    }
  }
  free(body);
  curl_free(eq);
  curl_free(edb);
  return rc;
}

/* The first value of the first series of the first statement of a /query
 * answer: 1 with *out set, 0 when the statement answered no rows, -1 when
 * there is no such number (an error, another shape). */
static int first_value(const char *json, double *out) {
  cJSON *root = cJSON_Parse(json);
  cJSON *res = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "results"), 0);
  cJSON *all = cJSON_GetObjectItem(res, "series");
  cJSON *series = cJSON_GetArrayItem(all, 0);
  cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItem(series, "values"), 0);
  cJSON *val = cJSON_GetArrayItem(row, 1);
  int rc = -1;
  if (cJSON_IsNumber(val)) {
    *out = val->valuedouble;
    rc = 1;
  } else if (res && !all && !cJSON_GetObjectItem(res, "error")) {
    rc = 0;
  }
  cJSON_Delete(root);
  return rc;
}

int h_influx_scalar(const struct h_influxd *d, const char *db, const char *q,
                    double *out) {
  char *json = NULL;
  if (h_influx_query(d, db, q, &json) != 0) {
    return -1;
  }
  int rc = first_value(json, out) == 1 ? 0 : -1;
  free(json);
  return rc;
}

/* ---- MQTT publishing ---- */

/* mosquitto_lib_init is not reference counted in 2.0.11 but is safe to call
 * more than once; the test process never calls cleanup while it runs. */
static void mosq_init_once(void) {
  static bool done;
  if (!done) {
    mosquitto_lib_init();
    done = true;
  }
}

/* Above this many unacknowledged messages h_pub_send drives the connection
 * until some are acknowledged, so the client queue stays bounded. */
#define PUB_WINDOW 1000

struct h_pub {
  struct mosquitto *m;
  int connack; /* -1 until CONNACK, then its reason code */
  long pending;
  bool lost;
};

static void pub_on_connect(struct mosquitto *m, void *ud, int rc, int flags,
                           const mosquitto_property *props) {
  (void)m;
  (void)flags;
  (void)props;
  struct h_pub *p = ud;
  p->connack = rc;
}

static void pub_on_publish(struct mosquitto *m, void *ud, int mid, int rc,
                           const mosquitto_property *props) {
  (void)m;
  (void)mid;
  (void)props;
  struct h_pub *p = ud;
  p->pending--;
  /* Below 0x80 is success (0x10: no subscriber matched). */
  if (rc >= 0x80) {
    fail("publish mid %d: %s", mid, mosquitto_reason_string(rc));
  }
}

static void pub_on_disconnect(struct mosquitto *m, void *ud, int rc,
                              const mosquitto_property *props) {
  (void)m;
  (void)props;
  struct h_pub *p = ud;
  if (rc != 0) {
    p->lost = true;
  }
}

/* Drives the connection for up to timeout_ms or until done(p). */
static int pub_drive(struct h_pub *p, bool (*done)(const struct h_pub *),
                     int timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  while (!done(p)) {
    if (p->lost) {
      fail("publisher: connection lost");
      return -1;
    }
    int rc = mosquitto_loop(p->m, 20, 1);
    if (rc != MOSQ_ERR_SUCCESS) {
      fail("publisher: %s", mosquitto_strerror(rc));
      return -1;
    }
    if (now_ms() > end) {
      fail("publisher: timed out after %d ms", timeout_ms);
      return -1;
    }
  }
  return 0;
}

static bool pub_connected(const struct h_pub *p) {
  return p->connack >= 0;
}

static bool pub_idle(const struct h_pub *p) {
  return p->pending <= 0;
}

static bool pub_window_open(const struct h_pub *p) {
  return p->pending < PUB_WINDOW;
}

struct h_pub *h_pub_open(int port, const char *client_id) {
  mosq_init_once();
  struct h_pub *p = calloc(1, sizeof *p);
  if (!p) {
    return NULL;
  }
  p->connack = -1;
  p->m = mosquitto_new(client_id, true, p);
  if (!p->m) {
    fail("publisher: mosquitto_new failed");
    free(p);
    return NULL;
  }
  mosquitto_int_option(p->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
  mosquitto_connect_v5_callback_set(p->m, pub_on_connect);
  mosquitto_publish_v5_callback_set(p->m, pub_on_publish);
  mosquitto_disconnect_v5_callback_set(p->m, pub_on_disconnect);
  int rc = mosquitto_connect(p->m, "127.0.0.1", port, 30);
  if (rc != MOSQ_ERR_SUCCESS) {
    fail("publisher: connect to port %d: %s", port, mosquitto_strerror(rc));
    goto fail;
  }
  if (pub_drive(p, pub_connected, 10000) != 0) {
    goto fail;
  }
  if (p->connack != 0) {
    fail("publisher: CONNACK %s", mosquitto_reason_string(p->connack));
    goto fail;
  }
  return p;
fail:
  mosquitto_destroy(p->m);
  free(p);
  return NULL;
}

static int pub_send(struct h_pub *p, const char *topic, const void *payload,
                    size_t len, int qos, const char *content_type,
                    bool retain) {
  if (len > INT32_MAX) {
    return -1;
  }
  if (!pub_window_open(p) && pub_drive(p, pub_window_open, 30000) != 0) {
    return -1;
  }
  mosquitto_property *props = NULL;
  if (content_type &&
      mosquitto_property_add_string(&props, MQTT_PROP_CONTENT_TYPE,
                                    content_type) != MOSQ_ERR_SUCCESS) {
    return -1;
  }
  p->pending++;
  int rc = mosquitto_publish_v5(p->m, NULL, topic, (int)len, payload, qos,
                                retain, props);
  mosquitto_property_free_all(&props);
  if (rc != MOSQ_ERR_SUCCESS) {
    p->pending--;
    fail("publish to %s: %s", topic, mosquitto_strerror(rc));
    return -1;
  }
  /* Let acknowledgements in without waiting, so a long burst keeps moving. */
  rc = mosquitto_loop(p->m, 0, 1);
  if (rc != MOSQ_ERR_SUCCESS) {
    fail("publisher: %s", mosquitto_strerror(rc));
    return -1;
  }
  return 0;
}

int h_pub_send(struct h_pub *p, const char *topic, const void *payload,
               size_t len, int qos) {
  return pub_send(p, topic, payload, len, qos, NULL, false);
}

int h_pub_flush(struct h_pub *p) {
  return pub_drive(p, pub_idle, 60000);
}

void h_pub_close(struct h_pub *p) {
  if (!p) {
    return;
  }
  if (!p->lost) {
    mosquitto_disconnect(p->m);
    /* One more round writes the DISCONNECT packet. */
    mosquitto_loop(p->m, 0, 1);
  }
  mosquitto_destroy(p->m);
  free(p);
}

static int publish_once(int port, const char *topic, const void *payload,
                        size_t len, int qos, const char *content_type,
                        bool retain) {
  char id[64];
  static unsigned seq;
  snprintf(id, sizeof id, "h-pub-%ld-%u", (long)getpid(), seq++);
  struct h_pub *p = h_pub_open(port, id);
  if (!p) {
    return -1;
  }
  int rc = pub_send(p, topic, payload, len, qos, content_type, retain);
  if (rc == 0) {
    rc = h_pub_flush(p);
  }
  h_pub_close(p);
  return rc;
}

int h_publish(int port, const char *topic, const void *payload, size_t len,
              int qos, const char *content_type) {
  return publish_once(port, topic, payload, len, qos, content_type, false);
}

int h_publish_retained(int port, const char *topic, const char *payload) {
  return publish_once(port, topic, payload, strlen(payload), 1, NULL, true);
}

/* ---- iocd ---- */

const char *h_iocd_bin(void) {
  const char *env = getenv("IOCD_BIN");
  return env && *env ? env : IOCD_BIN_PATH;
}

int h_iocd_start(struct h_iocd *p, const char *dir, const char *config_text) {
  static const char *const none[] = {NULL};
  return h_iocd_start_via(p, dir, config_text, none);
}

int h_iocd_start_via(struct h_iocd *p, const char *dir, const char *config_text,
                     const char *const *wrapper) {
  memset(p, 0, sizeof *p);
  int k1 = snprintf(p->config, sizeof p->config, "%s/iocd.jsonc", dir);
  int k2 = snprintf(p->log, sizeof p->log, "%s/iocd.log", dir);
  if (k1 < 0 || (size_t)k1 >= sizeof p->config || k2 < 0 ||
      (size_t)k2 >= sizeof p->log) {
    fail("iocd: directory name too long");
    return -1;
  }
  if (write_file(p->config, config_text) != 0) {
    return -1;
  }
  char bin[1024];
  snprintf(bin, sizeof bin, "%s", h_iocd_bin());
  char *argv[64];
  size_t n = 0;
  while (wrapper[n] && n < 60) {
    argv[n] = (char *)wrapper[n];
    n++;
  }
  argv[n++] = bin;
  argv[n++] = "-c";
  argv[n++] = p->config;
  argv[n] = NULL;
  p->pid = spawn(argv, p->log);
  if (p->pid < 0) {
    p->pid = 0;
    return -1;
  }
  return 0;
}

int h_iocd_stop(struct h_iocd *p, int sig, int timeout_ms) {
  if (p->pid <= 0) {
    return -1;
  }
  int status = 0;
  kill(p->pid, sig);
  if (!wait_exit(p->pid, timeout_ms, &status)) {
    fail("iocd (pid %ld) still running %d ms after signal %d; killed",
         (long)p->pid, timeout_ms, sig);
    kill(p->pid, SIGKILL);
    wait_exit(p->pid, 5000, &status);
    p->pid = 0;
    return -1;
  }
  p->pid = 0;
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return -1;
}

bool h_iocd_log_contains(const struct h_iocd *p, const char *needle) {
  size_t len = 0;
  char *text = read_file(p->log, &len);
  if (!text) {
    return false;
  }
  /* The log may hold NUL bytes (a crash mid-line): search past them. */
  bool found = false;
  for (size_t off = 0; off < len && !found;) {
    found = strstr(text + off, needle) != NULL;
    off += strlen(text + off) + 1;
  }
  free(text);
  return found;
}

int h_iocd_wait_log(const struct h_iocd *p, const char *needle,
                    int timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  while (!h_iocd_log_contains(p, needle)) {
    if (now_ms() > end) {
      fail("iocd log %s: no \"%s\" after %d ms", p->log, needle, timeout_ms);
      return -1;
    }
    sleep_ms(50);
  }
  return 0;
}

int h_wait_until(bool (*pred)(void *ud), void *ud, int timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  while (!pred(ud)) {
    if (now_ms() > end) {
      return -1;
    }
    sleep_ms(50);
  }
  return 0;
}

void h_sleep_ms(long ms) {
  sleep_ms((int)ms);
}

static size_t collect_buf(char *p, size_t sz, size_t n, void *ud) {
  return buf_append(ud, p, sz * n) == 0 ? sz * n : 0;
}

long h_http_get(int port, const char *path, struct buf *out) {
  return h_http_request(port, "GET", path, NULL, out);
}

long h_http_request(int port, const char *method, const char *path,
                    const char *body, struct buf *out) {
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  CURL *c = curl_easy_init();
  if (!c) {
    return 0;
  }
  struct curl_slist *hdrs =
      body ? curl_slist_append(NULL, "Content-Type: application/json") : NULL;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (strcmp(method, "POST") == 0 || body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_buf);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
  long status = 0;
  if (curl_easy_perform(c) == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  }
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(c);
  buf_append(out, "", 0); /* data is then a string, even when empty */
  return status;
}

double h_metric(int port, const char *series) {
  struct buf b;
  buf_init(&b, 16u << 20);
  double v = -1;
  if (h_http_get(port, "/metrics", &b) == 200 && b.data) {
    size_t n = strlen(series);
    for (const char *p = b.data; (p = strstr(p, series)) != NULL; p += n) {
      if ((p == b.data || p[-1] == '\n') && p[n] == ' ') {
        v = strtod(p + n + 1, NULL);
        break;
      }
    }
  }
  buf_cleanup(&b);
  return v;
}

/* ---- A whole environment ---- */

int h_env_start(struct h_env *e) {
  memset(e, 0, sizeof *e);
  if (h_tmpdir(e->dir, sizeof e->dir) != 0 ||
      h_mosquitto_start(&e->mq, NULL, NULL) != 0 ||
      h_influxd_start(&e->db, NULL) != 0) {
    h_env_stop(e);
    return -1;
  }
  e->api_port = h_free_port();
  if (e->api_port < 0) {
    h_env_stop(e);
    return -1;
  }
  return 0;
}

void h_env_stop(struct h_env *e) {
  if (e->iocd.pid > 0) {
    h_iocd_stop(&e->iocd, SIGKILL, 5000);
  }
  h_mosquitto_stop(&e->mq);
  h_influxd_stop(&e->db);
  if (getenv("IOCD_TEST_KEEP")) {
    return;
  }
  h_rmtree(e->mq.dir);
  h_rmtree(e->db.dir);
  h_rmtree(e->dir);
}

int h_env_config(struct h_env *e, const char *client_id, const char *rest,
                 ...) {
  int k = snprintf(
      e->config, sizeof e->config,
      "// written by the test harness\n"
      "{\n"
      "  \"data_dir\": \"%s/data\",\n"
      "  \"log\": {\"level\": \"info\"},\n"
      "  \"mqtt\": {\"host\": \"127.0.0.1\", \"port\": %d,\n"
      "           \"client_id\": \"%s\", \"reconnect_min\": \"100ms\",\n"
      "           \"reconnect_max\": \"500ms\"},\n"
      "  \"influxdb\": {\"url\": \"%s\", \"database\": \"ioc\",\n"
      "               \"flush_interval\": \"100ms\",\n"
      "               \"retry_min\": \"100ms\", \"retry_max\": \"1s\"%s%s},\n"
      "  \"api\": {\"listen\": \"127.0.0.1:%d\"},\n",
      e->dir, e->mq.port, client_id, e->influx_url ? e->influx_url : e->db.url,
      e->influx_extra ? ", " : "", e->influx_extra ? e->influx_extra : "",
      e->api_port);
  if (k < 0 || (size_t)k >= sizeof e->config) {
    fail("h_env_config: the config does not fit");
    return -1;
  }
  size_t used = (size_t)k;
  va_list ap;
  va_start(ap, rest);
  k = vsnprintf(e->config + used, sizeof e->config - used, rest, ap);
  va_end(ap);
  if (k < 0 || (size_t)k >= sizeof e->config - used) {
    fail("h_env_config: the config does not fit");
    return -1;
  }
  used += (size_t)k;
  k = snprintf(e->config + used, sizeof e->config - used, "}\n");
  if (k < 0 || (size_t)k >= sizeof e->config - used) {
    fail("h_env_config: the config does not fit");
    return -1;
  }
  return 0;
}

int h_env_iocd_start(struct h_env *e) {
  char log[600], old[620];
  snprintf(log, sizeof log, "%s/iocd.log", e->dir);
  snprintf(old, sizeof old, "%s/iocd.log.%d", e->dir, e->runs++);
  /* The first run has no log to keep yet. */
  (void)rename(log, old);
  if (h_iocd_start(&e->iocd, e->dir, e->config) != 0) {
    return -1;
  }
  return h_iocd_wait_log(&e->iocd, "subscribed", 20000);
}

double h_env_count(const struct h_env *e, const char *q) {
  char *json = NULL;
  if (h_influx_query(&e->db, "ioc", q, &json) != 0) {
    return -1;
  }
  double v = -1;
  if (first_value(json, &v) == 0) {
    v = 0;
  }
  free(json);
  return v;
}

struct count_wait {
  const struct h_env *e;
  const char *q;
  double want;
};

static bool count_reached(void *ud) {
  struct count_wait *w = ud;
  return h_env_count(w->e, w->q) >= w->want;
}

int h_env_wait_count(const struct h_env *e, const char *q, double want,
                     int timeout_ms) {
  struct count_wait w = {e, q, want};
  return h_wait_until(count_reached, &w, timeout_ms);
}

/* ---- For the other harness files (harness_int.h) ---- */

pid_t h__spawn(char *const argv[], const char *log) {
  return spawn(argv, log);
}

void h__stop_child(pid_t *pid, int grace_ms) {
  stop_child(pid, grace_ms);
}

bool h__child_alive(pid_t pid) {
  return child_alive(pid);
}

bool h__port_accepts(int port) {
  return port_accepts(port);
}

int64_t h__now_ms(void) {
  return now_ms();
}

/* ---- Files ---- */

int h_write_file(const char *path, const char *text) {
  return write_file(path, text);
}

char *h_read_file(const char *path, size_t *len) {
  char *text = read_file(path, len);
  if (!text) {
    fail("%s: cannot read it", path);
  }
  return text;
}

int h_make_pki(const char *dir) {
  static const char *const steps[] = {
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
      "-subj /CN=iocd-test-ca -keyout ca.key -out ca.crt",
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
      "-subj /CN=other-ca -keyout other.key -out other.crt",
      "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' >server.ext",
      "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost "
      "-keyout server.key -out server.csr",
      "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key "
      "-CAcreateserial -days 2 -extfile server.ext -out server.crt",
      "openssl req -newkey rsa:2048 -nodes -subj /CN=iocd "
      "-keyout client.key -out client.csr",
      "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key "
      "-CAcreateserial -days 2 -out client.crt",
  };
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd '%s' && %s >>openssl.log 2>&1", dir,
             steps[i]);
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
      fail("h_make_pki: failed: %s", steps[i]);
      return -1;
    }
  }
  return 0;
}
