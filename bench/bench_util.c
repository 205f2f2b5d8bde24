/*
 * Helpers shared by the benchmarks (bench_util.h).
 */
#include "bench/bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "tests/harness/harness.h"

#define MOSQUITTO_SUB_BIN "/usr/bin/mosquitto_sub"

/* /metrics answers are at most this large. */
#define METRICS_MAX (16u << 20)

double bench_proc_cpu_s(pid_t pid) {
  char path[64], text[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  FILE *f = fopen(path, "r");
  if (!f) {
    return -1;
  }
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  /* Fields are counted from the last ')' (the name may hold spaces):
   * utime and stime are the 14th and 15th. */
  char *p = strrchr(text, ')');
  if (!p) {
    return -1;
  }
  p++;
  for (int field = 3; field < 14; field++) {
    p = strchr(p + 1, ' ');
    if (!p) {
      return -1;
    }
  }
  char *end;
  errno = 0;
  unsigned long long ut = strtoull(p, &end, 10);
  if (errno || end == p) {
    return -1;
  }
  p = end;
  unsigned long long st = strtoull(p, &end, 10);
  if (errno || end == p) {
    return -1;
  }
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

void bench_settle(const pid_t *pids, int n, int max_ms) {
  int64_t t0 = clock_mono_ns();
  for (int quiet = 0;
       quiet < 2 && clock_mono_ns() - t0 < (int64_t)max_ms * 1000000;) {
    double before[8], after[8];
    int k = n < 8 ? n : 8;
    for (int i = 0; i < k; i++) {
      before[i] = bench_proc_cpu_s(pids[i]);
    }
    h_sleep_ms(500);
    bool idle = true;
    for (int i = 0; i < k; i++) {
      after[i] = bench_proc_cpu_s(pids[i]);
      idle = idle && after[i] - before[i] < 0.025;
    }
    quiet = idle ? quiet + 1 : 0;
  }
}

/* ---- iocd's /metrics ---- */

int bench_metrics_init(struct bench_metrics *m, const char *token) {
  memset(m, 0, sizeof *m);
  buf_init(&m->body, METRICS_MAX);
  m->curl = curl_easy_init();
  if (!m->curl) {
    return -1;
  }
  if (token) {
    char field[512];
    snprintf(field, sizeof field, "Authorization: Bearer %s", token);
    m->headers = curl_slist_append(NULL, field);
    if (!m->headers) {
      return -1;
    }
  }
  return 0;
}

void bench_metrics_cleanup(struct bench_metrics *m) {
  if (m->curl) {
    curl_easy_cleanup(m->curl);
  }
  curl_slist_free_all(m->headers);
  buf_cleanup(&m->body);
  memset(m, 0, sizeof *m);
}

static size_t collect(char *ptr, size_t size, size_t nmemb, void *ud) {
  return buf_append(ud, ptr, size * nmemb) == 0 ? size * nmemb : 0;
}

long bench_metrics_get(struct bench_metrics *m, int port) {
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
  buf_reset(&m->body);
  curl_easy_setopt(m->curl, CURLOPT_URL, url);
  curl_easy_setopt(m->curl, CURLOPT_HTTPHEADER, m->headers);
  curl_easy_setopt(m->curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(m->curl, CURLOPT_WRITEDATA, &m->body);
  curl_easy_setopt(m->curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(m->curl, CURLOPT_NOSIGNAL, 1L);
  long code = -1;
  if (curl_easy_perform(m->curl) == CURLE_OK) {
    curl_easy_getinfo(m->curl, CURLINFO_RESPONSE_CODE, &code);
  }
  return code;
}

double bench_metrics_value(const struct bench_metrics *m, const char *series) {
  if (!m->body.data || m->body.len == 0) {
    return -1;
  }
  size_t n = strlen(series);
  for (const char *p = m->body.data; (p = strstr(p, series)) != NULL; p += n) {
    if ((p == m->body.data || p[-1] == '\n') && p[n] == ' ') {
      char *end;
      double v = strtod(p + n + 1, &end);
      return end == p + n + 1 ? -1 : v;
    }
  }
  return -1;
}

/* ---- the broker ---- */

static void on_drop_connect(struct mosquitto *m, void *ud, int rc, int flags,
                            const mosquitto_property *props) {
  (void)m;
  (void)flags;
  (void)props;
  *(int *)ud = rc;
}

int bench_drop_session(int port, const char *client_id) {
  int connack = -1;
  struct mosquitto *m = mosquitto_new(client_id, true, &connack);
  if (m) {
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_connect_v5_callback_set(m, on_drop_connect);
    if (mosquitto_connect(m, "127.0.0.1", port, 30) == MOSQ_ERR_SUCCESS) {
      int64_t end = clock_mono_ns() + 5 * NS_PER_SEC;
      while (connack < 0 && clock_mono_ns() < end &&
             mosquitto_loop(m, 50, 1) == MOSQ_ERR_SUCCESS) {
      }
      mosquitto_disconnect(m);
      mosquitto_loop(m, 0, 1);
    }
    mosquitto_destroy(m);
  }
  if (connack != 0) {
    fprintf(stderr, "bench: could not end the session of %s\n", client_id);
    return -1;
  }
  return 0;
}

pid_t bench_spawn_sub(int port, int qos, const char *client_id, long count,
                      const char *errlog) {
  char port_s[16], qos_s[8], count_s[32], id[64];
  snprintf(port_s, sizeof port_s, "%d", port);
  snprintf(qos_s, sizeof qos_s, "%d", qos);
  snprintf(count_s, sizeof count_s, "%ld", count);
  snprintf(id, sizeof id, "%s", client_id);
  /* MQTT 5 like iocd. At QoS 2, mosquitto_sub 2.0.11 stops in a burst
   * with "A network protocol error occurred" (so does libmosquitto in
   * iocd) unless its receive maximum is far above the number in flight:
   * 20 (the default), 100 and 1000 all failed at 20000 messages. */
  char *argv[24] = {MOSQUITTO_SUB_BIN,
                    "-h",
                    "127.0.0.1",
                    "-p",
                    port_s,
                    "-V",
                    "5",
                    "-q",
                    qos_s,
                    "-i",
                    id,
                    "-t",
                    "ioc/#",
                    "-C",
                    count_s};
  if (qos == 2) {
    char *more[] = {"-D", "connect", "receive-maximum", "65535"};
    memcpy(&argv[15], more, sizeof more);
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) {
    return pid;
  }
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
    _exit(126);
  }
  int in = open("/dev/null", O_RDONLY);
  int out = open("/dev/null", O_WRONLY);
  int err = open(errlog, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
      dup2(err, 2) < 0) {
    _exit(126);
  }
  execv(argv[0], argv);
  _exit(127);
}

bool bench_broker_saw_subscribe(const char *broker_dir, const char *client_id,
                                int qos) {
  char path[512], needle[128], line[1024];
  snprintf(path, sizeof path, "%s/mosquitto.log", broker_dir);
  snprintf(needle, sizeof needle, " %s %d ioc/#", client_id, qos);
  FILE *f = fopen(path, "r");
  if (!f) {
    return false;
  }
  bool found = false;
  while (!found && fgets(line, sizeof line, f)) {
    found = strstr(line, needle) != NULL;
  }
  fclose(f);
  return found;
}

/* ---- figures ---- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

struct bench_pct bench_percentiles(double *v, long n) {
  struct bench_pct r = {.n = n};
  if (n <= 0) {
    return r;
  }
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  long i50 = (n * 50 + 99) / 100, i99 = (n * 99 + 99) / 100;
  r.p50 = v[i50 > 0 ? i50 - 1 : 0];
  r.p99 = v[i99 > 0 ? i99 - 1 : 0];
  r.max = v[n - 1];
  return r;
}

double bench_median(double *v, int n) {
  if (n <= 0) {
    return 0;
  }
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

int bench_parse_long(const char *prog, const char *opt, const char *s, long lo,
                     long hi, long *out) {
  char *end;
  errno = 0;
  long v = s ? strtol(s, &end, 10) : 0;
  if (!s || errno || end == s || *end || v < lo || v > hi) {
    fprintf(stderr, "%s: %s: expected an integer in %ld..%ld, got \"%s\"\n",
            prog, opt, lo, hi, s ? s : "");
    return -1;
  }
  *out = v;
  return 0;
}

/* ---- the report's header ---- */

/* The value after "key:" on the first line of path starting with key, or
 * the first line when key is NULL; "?" when there is none. */
static void first_line_of(const char *path, const char *key, char *out,
                          size_t n) {
  snprintf(out, n, "?");
  FILE *f = fopen(path, "r");
  if (!f) {
    return;
  }
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (!key || strncmp(line, key, strlen(key)) == 0) {
      char *p = key ? strchr(line, ':') : line;
      p = p ? p + (key ? 1 : 0) : line;
      while (*p == ' ' || *p == '\t') {
        p++;
      }
      p[strcspn(p, "\n")] = '\0';
      snprintf(out, n, "%.200s", p);
      break;
    }
  }
  fclose(f);
}

/* The first line that cmd prints, or "?". */
static void command_line_of(const char *cmd, char *out, size_t n) {
  snprintf(out, n, "?");
  FILE *p = popen(cmd, "r");
  if (!p) {
    return;
  }
  char line[256];
  if (fgets(line, sizeof line, p)) {
    line[strcspn(line, "\n")] = '\0';
    if (line[0]) {
      snprintf(out, n, "%.200s", line);
    }
  }
  pclose(p);
}

void bench_print_header(const char *title, const char *source_dir) {
  char date[64], cpu[256], load[256], commit[256], cmd[1200];
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
  first_line_of("/proc/cpuinfo", "model name", cpu, sizeof cpu);
  first_line_of("/proc/loadavg", NULL, load, sizeof load);
  /* The first three fields: 1, 5 and 15 minute averages. */
  char *sp = load;
  for (int i = 0; i < 3 && sp; i++) {
    sp = strchr(sp + 1, ' ');
  }
  if (sp) {
    *sp = '\0';
  }
  printf("%s, %s\n", title, date);
  printf("machine:    %ld CPUs, %s, load average %s at start\n",
         sysconf(_SC_NPROCESSORS_ONLN), cpu, load);
  if (source_dir) {
    snprintf(cmd, sizeof cmd,
             "git -C '%s' describe --always --dirty --abbrev=7 2>/dev/null",
             source_dir);
    command_line_of(cmd, commit, sizeof commit);
    printf("commit:     %s (%s)\n", commit, source_dir);
  }
}

void bench_print_command(int argc, char **argv) {
  printf("reproduce: ");
  for (int i = 0; i < argc; i++) {
    printf(" %s", argv[i]);
  }
  printf("\n");
  fflush(stdout);
}
