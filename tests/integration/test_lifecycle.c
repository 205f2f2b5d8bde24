/*
 * Starting iocd as an administrator does: what the log says when a part
 * cannot start. A start that failed names the address and the system's
 * reason, and never claims that iocd started. What iocd leaves on disk
 * at a stop survives a power loss.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "tests/harness/harness.h"

/* A socket listening on 127.0.0.1:port, as another program would hold it. */
static int hold_port(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert(fd >= 0);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  cr_assert_eq(listen(fd, 4), 0);
  return fd;
}

/* The start of a config for an iocd in dir with the file output, a broker
 * port nobody listens on, one subscription, and the API on api_port (0:
 * off), ending after a comma so that a test adds its own members. */
static void config_head(char *out, size_t n, const char *dir, int api_port) {
  char api[64] = "\"enabled\": false";
  if (api_port) {
    snprintf(api, sizeof api, "\"listen\": \"127.0.0.1:%d\"", api_port);
  }
  int k = snprintf(out, n,
                   "{\"data_dir\": \"%s/var\", \"file\": {\"path\": "
                   "\"%s/out.lp\"},\n"
                   " \"mqtt\": {\"port\": %d}, \"api\": {%s},\n"
                   " \"subscriptions\": [{\"topic\": \"t/{district}\"}],\n",
                   dir, dir, h_free_port(), api);
  cr_assert(k > 0 && (size_t)k < n, "config too long");
}

#define ONE_RULE " \"rules\": [{\"name\": \"x\", \"expr\": \"t.value > 5\"}]}\n"

Test(lifecycle, a_busy_api_port_is_named_and_nothing_is_called_started) {
  char dir[256];
  cr_assert_eq(h_tmpdir(dir, sizeof dir), 0);
  int api_port = h_free_port();
  int fd = hold_port(api_port);
  char head[1024], cfg[1100];
  config_head(head, sizeof head, dir, api_port);
  snprintf(cfg, sizeof cfg, "%s \"log\": {\"level\": \"info\"}}\n", head);
  struct h_iocd p;
  cr_assert_eq(h_iocd_start(&p, dir, cfg), 0);
  int status = h_iocd_stop(&p, 0, 10000);
  close(fd);
  cr_expect_eq(status, 1, "exit status %d", status);
  char want[128];
  snprintf(want, sizeof want,
           "cannot listen on 127.0.0.1:%d: Address already in use", api_port);
  cr_expect(h_iocd_log_contains(&p, want), "the log does not say \"%s\"", want);
  cr_expect(!h_iocd_log_contains(&p, "port 0"),
            "the log names port 0, not the configured port");
  cr_expect(!h_iocd_log_contains(&p, " started"),
            "the log says iocd started although it did not");
  h_rmtree(dir);
}

/* The number after "= " at the end of a traced system call, or -1. */
static long result_of(const char *line) {
  const char *paren = strrchr(line, ')');
  const char *eq = paren ? strstr(paren, "= ") : NULL;
  return eq ? strtol(eq + 2, NULL, 10) : -1;
}

Test(lifecycle, the_alert_state_file_is_renamed_and_its_directory_synced) {
  if (access("/usr/bin/strace", X_OK) != 0) {
    cr_skip_test("strace is not installed (scripts/deps installs it)");
  }
  char dir[256];
  cr_assert_eq(h_tmpdir(dir, sizeof dir), 0);
  char head[1024], cfg[1100];
  config_head(head, sizeof head, dir, 0);
  snprintf(cfg, sizeof cfg, "%s" ONE_RULE, head);
  char trace[512], pidfile[512];
  snprintf(trace, sizeof trace, "%s/trace", dir);
  snprintf(pidfile, sizeof pidfile, "%s/pid", dir);
  /* sh records its pid and becomes iocd, so the test signals iocd itself
   * rather than strace. */
  char script[600];
  snprintf(script, sizeof script, "echo $$ > '%s'; exec \"$@\"", pidfile);
  /* LeakSanitizer cannot run under ptrace: an ASan build leaves it off
   * here (the other tests check for leaks). */
  const char *const wrapper[] = {"/usr/bin/env",
                                 "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1",
                                 "/usr/bin/strace",
                                 "-f",
                                 "-qq",
                                 "-o",
                                 trace,
                                 "-e",
                                 "trace=openat,fsync,rename,renameat,renameat2",
                                 "/bin/sh",
                                 "-c",
                                 script,
                                 "sh",
                                 NULL};
  struct h_iocd p;
  cr_assert_eq(h_iocd_start_via(&p, dir, cfg, wrapper), 0);
  cr_assert_eq(h_iocd_wait_log(&p, " started: ", 20000), 0);
  FILE *f = fopen(pidfile, "r");
  cr_assert_not_null(f);
  long pid = 0;
  cr_assert_eq(fscanf(f, "%ld", &pid), 1);
  fclose(f);
  kill((pid_t)pid, SIGTERM);
  cr_assert_eq(h_iocd_stop(&p, 0, 20000), 0);

  /* After the rename of rules-state.json.tmp, data_dir is opened as a
   * directory and that descriptor is fsynced. */
  char var[300];
  snprintf(var, sizeof var, "\"%s/var\"", dir);
  f = fopen(trace, "r");
  cr_assert_not_null(f);
  char line[2048];
  bool renamed = false, synced = false;
  long dirfd = -1;
  while (fgets(line, sizeof line, f) && !synced) {
    if (strstr(line, "rename") && strstr(line, "rules-state.json.tmp")) {
      renamed = result_of(line) == 0;
      dirfd = -1;
    } else if (renamed && strstr(line, "openat(") && strstr(line, var) &&
               strstr(line, "O_DIRECTORY")) {
      dirfd = result_of(line);
    } else if (renamed && dirfd >= 0 && strstr(line, "fsync(")) {
      synced = strtol(strstr(line, "fsync(") + 6, NULL, 10) == dirfd &&
               result_of(line) == 0;
    }
  }
  fclose(f);
  cr_expect(renamed, "rules-state.json.tmp was never renamed (see %s)", trace);
  cr_expect(synced, "%s was not fsynced after the rename (see %s)", var, trace);
  if (renamed && synced) {
    h_rmtree(dir);
  }
}

/* Rewrites the config of a running iocd. */
static void rewrite(const struct h_iocd *p, const char *text) {
  FILE *f = fopen(p->config, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
}

Test(lifecycle, a_reload_says_what_changed_and_each_problem_on_its_own_line) {
  char dir[256];
  cr_assert_eq(h_tmpdir(dir, sizeof dir), 0);
  char head[1024];
  config_head(head, sizeof head, dir, 0);
  char cfg[2048];
  snprintf(cfg, sizeof cfg,
           "%s \"rules\": [{\"name\": \"r1\", \"expr\": \"t.value > 5\"}]}\n",
           head);
  struct h_iocd p;
  cr_assert_eq(h_iocd_start(&p, dir, cfg), 0);
  cr_assert_eq(h_iocd_wait_log(&p, " started: ", 20000), 0);

  snprintf(cfg, sizeof cfg,
           "%s \"limits\": {\"max_fields\": 10},\n"
           " \"rules\": [{\"name\": \"r1\", \"expr\": \"t.value > 5\"},\n"
           "           {\"name\": \"r2\", \"expr\": \"t.value > 9\"}]}\n",
           head);
  rewrite(&p, cfg);
  kill(p.pid, SIGHUP);
  cr_expect_eq(h_iocd_wait_log(&p,
                               "configuration reloaded: rules added: r2; "
                               "sections changed: limits",
                               20000),
               0, "the reload did not say what changed");

  /* Two problems: each is a line of its own, without a literal \n. */
  snprintf(cfg, sizeof cfg,
           "%s \"limits\": {\"max_fields\": 0, \"log_burst\": -1},\n"
           " \"rules\": []}\n",
           head);
  rewrite(&p, cfg);
  kill(p.pid, SIGHUP);
  cr_expect_eq(h_iocd_wait_log(&p, "(problem 2 of 2)", 20000), 0,
               "the second problem has no line of its own");
  cr_expect(h_iocd_log_contains(&p, "(problem 1 of 2)"));
  cr_expect(!h_iocd_log_contains(&p, "\\n"),
            "a log line carries a literal \\n");
  cr_expect_eq(h_iocd_stop(&p, SIGTERM, 20000), 0);
  h_rmtree(dir);
}

Test(lifecycle, a_fifo_in_rule_files_is_refused_and_never_blocks_the_loop) {
  char dir[256];
  cr_assert_eq(h_tmpdir(dir, sizeof dir), 0);
  char fifo[300];
  snprintf(fifo, sizeof fifo, "%s/rules.jsonc", dir);
  cr_assert_eq(mkfifo(fifo, 0644), 0);
  int api_port = h_free_port();
  char head[1024];
  config_head(head, sizeof head, dir, api_port);
  char cfg[2048];
  snprintf(cfg, sizeof cfg, "%s \"log\": {\"level\": \"info\"}}\n", head);
  struct h_iocd p;
  cr_assert_eq(h_iocd_start(&p, dir, cfg), 0);
  cr_assert_eq(h_iocd_wait_log(&p, "listening on", 20000), 0);

  snprintf(cfg, sizeof cfg, "%s \"rule_files\": [\"rules.jsonc\"]}\n", head);
  rewrite(&p, cfg);
  kill(p.pid, SIGHUP);
  cr_expect_eq(h_iocd_wait_log(&p,
                               "is a FIFO (named pipe), not a regular "
                               "file",
                               5000),
               0, "the FIFO was not refused");
  struct buf body;
  buf_init(&body, 1 << 16);
  cr_expect_eq(h_http_get(api_port, "/health", &body), 200,
               "the API does not answer after the reload");
  buf_cleanup(&body);
  cr_expect_eq(h_iocd_stop(&p, SIGTERM, 20000), 0);
  h_rmtree(dir);
}

Test(lifecycle, a_state_file_that_is_a_directory_is_named_as_one) {
  char dir[256];
  cr_assert_eq(h_tmpdir(dir, sizeof dir), 0);
  char state[400];
  snprintf(state, sizeof state, "%s/var/rules-state.json", dir);
  char var[300];
  snprintf(var, sizeof var, "%s/var", dir);
  cr_assert_eq(mkdir(var, 0755), 0);
  cr_assert_eq(mkdir(state, 0755), 0);
  char head[1024], cfg[1100];
  config_head(head, sizeof head, dir, 0);
  snprintf(cfg, sizeof cfg, "%s" ONE_RULE, head);
  struct h_iocd p;
  cr_assert_eq(h_iocd_start(&p, dir, cfg), 0);
  cr_expect_eq(h_iocd_wait_log(&p,
                               "rules-state.json: not restored: is a "
                               "directory, not a file",
                               20000),
               0, "see %s", p.log);
  cr_expect(!h_iocd_log_contains(&p, "not JSON"));
  h_iocd_stop(&p, SIGTERM, 20000);
  h_rmtree(dir);
}

Test(lifecycle, a_sighup_while_starting_does_not_end_iocd) {
  char dir[256];
  cr_assert_eq(h_tmpdir(dir, sizeof dir), 0);
  char head[1024];
  config_head(head, sizeof head, dir, 0);
  /* Enough rules that building them takes a while after the journal
   * opens, before the service's signal handlers are set. */
  struct buf cfg;
  buf_init(&cfg, 0);
  buf_printf(&cfg, "%s \"rules\": [", head);
  for (int i = 0; i < 5000; i++) {
    buf_printf(&cfg, "%s{\"name\": \"r%d\", \"expr\": \"t.value > %d\"}",
               i ? ",\n" : "", i, i);
  }
  buf_puts(&cfg, "]}\n");
  struct h_iocd p;
  cr_assert_eq(h_iocd_start(&p, dir, cfg.data), 0);
  buf_cleanup(&cfg);
  cr_assert_eq(h_iocd_wait_log(&p, "mod=journal", 20000), 0);
  kill(p.pid, SIGHUP);
  cr_expect_eq(h_iocd_wait_log(&p, " started: ", 20000), 0,
               "iocd did not start after an early SIGHUP; see %s", p.log);
  cr_expect_eq(h_iocd_stop(&p, SIGTERM, 20000), 0);
  h_rmtree(dir);
}
