/*
 * scripts/demo as a new user runs it: from a checkout they may not write
 * to, the mission watched to its summary, then stopped with Ctrl-C; and a
 * second run, with --once as CI runs it, in the same state folder. The
 * demo runs on free ports (its IOCD_DEMO_* variables) with the iocd and
 * iocd-sim binaries of this build, in its own session with SIGINT at its
 * default, as a terminal's foreground job; Ctrl-C is SIGINT to that
 * process group. As root the demo runs as "nobody", whose PATH has no
 * /usr/sbin, so that the read-only tree is read-only for it.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <regex.h>
#include <signal.h>
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
#include "tests/harness/harness.h"

#ifndef IOCD_SOURCE_DIR
#define IOCD_SOURCE_DIR "."
#endif
#ifndef IOCD_BIN_PATH
#define IOCD_BIN_PATH "iocd"
#endif
#ifndef IOCD_SIM_PATH
#define IOCD_SIM_PATH "iocd-sim"
#endif

static bool file_contains(const char *path, const char *needle) {
  char *text = h_read_file(path, NULL);
  bool found = text && strstr(text, needle) != NULL;
  free(text);
  return found;
}

static bool matches(const char *text, const char *pattern) {
  regex_t re;
  cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
  bool ok = regexec(&re, text, 0, NULL, 0) == 0;
  regfree(&re);
  return ok;
}

static void run(const char *cmd) {
  int status = system(cmd);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", cmd);
}

/* Starts the demo as a terminal starts a foreground job: its own process
 * group, SIGINT and SIGQUIT at their defaults, output to out, with arg
 * (may be NULL) as its option. uid/gid -1: as this process. */
static pid_t start_demo(const char *tree, const char *out, char *const env[],
                        uid_t uid, gid_t gid, const char *arg) {
  pid_t parent = getpid();
  pid_t pid = fork();
  cr_assert(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
      _exit(126);
    }
    int in = open("/dev/null", O_RDONLY);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || fd < 0 || dup2(in, 0) < 0 || dup2(fd, 1) < 0 ||
        dup2(fd, 2) < 0) {
      _exit(126);
    }
    for (int i = 3; i < 1024; i++) {
      close(i);
    }
    setsid();
    signal(SIGINT, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char demo[512], reuid[32], regid[32];
    snprintf(demo, sizeof demo, "%s/scripts/demo", tree);
    snprintf(reuid, sizeof reuid, "--reuid=%ld", (long)uid);
    snprintf(regid, sizeof regid, "--regid=%ld", (long)gid);
    char *as_is[] = {demo, (char *)arg, NULL};
    char *as_user[] = {"setpriv", reuid, regid,       "--clear-groups",
                       "--",      demo,  (char *)arg, NULL};
    if (uid == (uid_t)-1) {
      execve(demo, as_is, env);
    } else {
      execve("/usr/bin/setpriv", as_user, env);
    }
    _exit(127);
  }
  return pid;
}

static bool wait_exit(pid_t pid, int timeout_ms, int *status) {
  for (int waited = 0; waited <= timeout_ms; waited += 50) {
    if (waitpid(pid, status, WNOHANG) == pid) {
      return true;
    }
    h_sleep_ms(50);
  }
  return false;
}

static bool port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  close(fd);
  return ok;
}

/* The offset of the first match of pattern in text at or after from; -1
 * when there is none. */
static long find_from(const char *text, long from, const char *pattern) {
  regex_t re;
  cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED), 0, "%s", pattern);
  regmatch_t m[1];
  long at = -1;
  if (from >= 0 && regexec(&re, text + from, 1, m, 0) == 0) {
    at = from + (long)m[0].rm_so;
  }
  regfree(&re);
  return at;
}

/* The number after prefix in text; -1 when absent. */
static long number_after(const char *text, const char *prefix) {
  const char *p = strstr(text, prefix);
  return p ? strtol(p + strlen(prefix), NULL, 10) : -1;
}

/* The mission's steps, in the order the demo must print them. */
static const char *const steps[] = {
    "demo \\[ *[0-9]+s\\] points flowing: [1-9][0-9]* messages accepted, "
    "[1-9][0-9]* points written to InfluxDB, from 15 districts",
    "demo \\[ *[0-9]+s\\] Ea H'Leo dropped below target: online share "
    "[0-9]+\\.[0-9]% of the day's dossiers, target 30\\.0%; online_share_low "
    "is (pending|firing)",
    "demo \\[ *[0-9]+s\\] alert firing: online_share_low\\{district=\"Ea "
    "H'Leo\"\\} id [0-9a-f]{16}",
    "demo \\[ *[0-9]+s\\] notification at the leaders' Telegram",
    "\\[CẢNH BÁO\\] Tỷ lệ hồ sơ trực tuyến của Ea H'Leo là [0-9]+(,[0-9]+)?%, "
    "dưới mục tiêu 30%",
    "demo \\[ *[0-9]+s\\] acknowledged through the API: POST "
    "/api/v1/alerts/[0-9a-f]{16}/ack by \"Trực ban IOC\" -> 200",
    "demo \\[ *[0-9]+s\\] resolved: Ea H'Leo",
    "\\[ĐÃ KHẮC PHỤC\\] Tỷ lệ hồ sơ trực tuyến của Ea H'Leo",
    "== Summary after [0-9]+ s",
    "mission +every step happened",
    "http://127\\.0\\.0\\.1:3000/d/iocd-wall",
};

static void check_mission(const char *text) {
  long at = 0;
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    long next = find_from(text, at, steps[i]);
    cr_assert(next >= 0, "step %zu (%s) missing or out of order in:\n%s", i,
              steps[i], text);
    at = next;
  }
  cr_assert(!matches(text, "FAILED"), "%s", text);
  /* The summary's figures, from iocd's counters and the receiver. */
  long received = number_after(text, "messages   ");
  long accepted = number_after(text, "received by iocd, ");
  cr_assert_gt(received, 1000, "%s", text);
  /* Counters of one moment: never more accepted than received. */
  cr_assert(accepted > 1000 && accepted <= received, "%s", text);
  cr_assert_gt(number_after(text, "points     "), 1000, "%s", text);
  cr_assert_geq(number_after(text, "alerts     "), 1, "%s", text);
  cr_assert_geq(number_after(text, "notices    "), 2, "%s", text);
}

Test(demo,
     runs_the_mission_from_a_read_only_tree_stops_on_ctrl_c_and_runs_again,
     .timeout = 900) {
  const char *need[] = {"/usr/sbin/mosquitto", "/usr/bin/mosquitto_pub",
                        "/usr/bin/influxd",    "/usr/bin/python3",
                        "/usr/bin/curl",       "/usr/bin/setpriv"};
  for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
    if (access(need[i], X_OK) != 0) {
      cr_skip_test("%s is missing: the demo cannot run", need[i]);
    }
  }
  uid_t uid = (uid_t)-1;
  gid_t gid = (gid_t)-1;
  if (geteuid() == 0) {
    struct passwd *pw = getpwnam("nobody");
    cr_assert_not_null(pw, "no user nobody");
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }

  /* A copy of what the demo reads, read-only, and a cache for the user. */
  char dir[64];
  cr_assert_eq(h_tmpdir(dir, sizeof dir), 0);
  cr_assert_eq(chmod(dir, 0755), 0);
  char cmd[2048], tree[128], cache[128], out[128];
  snprintf(tree, sizeof tree, "%s/tree", dir);
  snprintf(cache, sizeof cache, "%s/cache", dir);
  snprintf(out, sizeof out, "%s/demo.out", dir);
  snprintf(cmd, sizeof cmd,
           "mkdir -p '%s' '%s' && cp -r '%s/scripts' '%s/config' '%s/' && "
           "chmod -R a-w '%s'",
           tree, cache, IOCD_SOURCE_DIR, IOCD_SOURCE_DIR, tree, tree);
  run(cmd);
  if (uid != (uid_t)-1) {
    cr_assert_eq(chown(cache, uid, gid), 0);
  }

  int mqtt = h_free_port(), influx = h_free_port(), api = h_free_port();
  cr_assert(mqtt > 0 && influx > 0 && api > 0);
  char e_mqtt[64], e_influx[64], e_api[64], e_bin[600], e_sim[600],
      e_cache[160];
  snprintf(e_mqtt, sizeof e_mqtt, "IOCD_DEMO_MQTT_PORT=%d", mqtt);
  snprintf(e_influx, sizeof e_influx, "IOCD_DEMO_INFLUX_PORT=%d", influx);
  snprintf(e_api, sizeof e_api, "IOCD_DEMO_API_PORT=%d", api);
  snprintf(e_bin, sizeof e_bin, "IOCD_DEMO_BIN=%s", IOCD_BIN_PATH);
  snprintf(e_sim, sizeof e_sim, "IOCD_DEMO_SIM=%s", IOCD_SIM_PATH);
  snprintf(e_cache, sizeof e_cache, "XDG_CACHE_HOME=%s", cache);
  char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin",
                 "HOME=/nonexistent",
                 "LANG=C.UTF-8",
                 e_mqtt,
                 e_influx,
                 e_api,
                 e_bin,
                 e_sim,
                 e_cache,
                 NULL};

  /* The first run, watched to its summary. */
  pid_t pid = start_demo(tree, out, env, uid, gid, NULL);
  bool running = false;
  for (int waited = 0; waited < 400000 && !running; waited += 500) {
    running = file_contains(out, "press Ctrl-C");
    int status;
    if (!running && waitpid(pid, &status, WNOHANG) == pid) {
      char *text = h_read_file(out, NULL);
      cr_assert_fail("the demo exited early:\n%s", text ? text : "");
    }
    h_sleep_ms(500);
  }
  char *text = h_read_file(out, NULL);
  cr_assert_not_null(text);
  cr_assert(running, "the demo did not reach its summary:\n%s", text);
  /* It says where it builds and keeps its state, outside the tree. */
  char where[200];
  snprintf(where, sizeof where, "%s/iocd-demo", cache);
  cr_assert(strstr(text, where) != NULL, "no %s in:\n%s", where, text);
  check_mission(text);
  free(text);
  /* The acknowledgement is in iocd's audit trail, with who gave it. */
  char acks[256];
  snprintf(acks, sizeof acks, "%s/iocd-demo/var/iocd/acks.jsonl", cache);
  cr_assert(file_contains(acks, "\"by\":\"Trực ban IOC\""), "%s", acks);

  /* Ctrl-C. */
  cr_assert_eq(kill(-pid, SIGINT), 0);
  int status = 0;
  cr_assert(wait_exit(pid, 60000, &status), "the demo did not stop");
  text = h_read_file(out, NULL);
  cr_assert_not_null(text);
  /* iocd wrote everything it had accepted before it stopped. */
  cr_assert(strstr(text, "demo: iocd: all accepted points written; stopped"),
            "iocd's last line is missing:\n%s", text);
  char log[256];
  snprintf(log, sizeof log, "%s/iocd-demo/var/iocd/iocd.log", cache);
  cr_assert(file_contains(log, "all accepted points written; stopped"),
            "%s lacks iocd's shutdown line", log);
  free(text);
  /* The servers it started are gone, and the tree is as it was. */
  cr_assert(!port_open(mqtt) && !port_open(influx) && !port_open(api));
  snprintf(cmd, sizeof cmd, "test ! -e '%s/build' && test ! -e '%s/var'", tree,
           tree);
  run(cmd);

  /* The second run, as CI runs it: to the summary, then it stops, with
   * exit status 0 because every step happened. */
  pid = start_demo(tree, out, env, uid, gid, "--once");
  cr_assert(wait_exit(pid, 400000, &status), "the second run did not stop");
  text = h_read_file(out, NULL);
  cr_assert_not_null(text);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "the second run failed (status %d):\n%s", status, text);
  check_mission(text);
  free(text);
  cr_assert(!port_open(mqtt) && !port_open(influx) && !port_open(api));

  snprintf(cmd, sizeof cmd, "chmod -R u+w '%s'", tree);
  run(cmd);
  h_rmtree(dir);
}
