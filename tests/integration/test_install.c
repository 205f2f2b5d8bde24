/*
 * Installing iocd as a service, as an operator does on the first day:
 * deploy/install into a staged root, then the installed iocd checked and run
 * as an unprivileged service user (as systemd runs it with User= and
 * Group=) against a real mosquitto and influxd. The old install steps (the
 * config root:root 0640) are run too, to show what that user then gets.
 *
 * Changing owners and dropping to another user need root: without it the
 * tests skip. The service user is "nobody", which exists everywhere, so
 * the tests leave no user behind on the machine.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "tests/harness/harness.h"

#ifndef IOCD_SOURCE_DIR
#define IOCD_SOURCE_DIR "."
#endif
#ifndef IOCD_BIN_PATH
#define IOCD_BIN_PATH "iocd"
#endif

#define SERVICE_USER "nobody"
#define SETPRIV "/usr/bin/setpriv"

/* The user and group names the unit would run iocd as. */
struct svc {
  uid_t uid;
  gid_t gid;
  char group[64];
};

static void need_root(struct svc *s) {
  if (geteuid() != 0) {
    cr_skip_test(
        "installing as a service needs root (to set owners and "
        "to run iocd as \"%s\"); run the suite as root",
        SERVICE_USER);
  }
  if (access(SETPRIV, X_OK) != 0) {
    cr_skip_test("%s is missing (Debian: util-linux)", SETPRIV);
  }
  struct passwd *pw = getpwnam(SERVICE_USER);
  cr_assert_not_null(pw, "no user \"%s\" on this machine", SERVICE_USER);
  s->uid = pw->pw_uid;
  s->gid = pw->pw_gid;
  struct group *gr = getgrgid(pw->pw_gid);
  cr_assert_not_null(gr, "no group %ld", (long)pw->pw_gid);
  snprintf(s->group, sizeof s->group, "%s", gr->gr_name);
}

/* Runs a shell command with stdout and stderr in *out (reset first) and
 * returns its exit status, or -1 when it did not exit normally. */
static int sh(struct buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int sh(struct buf *out, const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(cmd, sizeof cmd - 8, fmt, ap);
  va_end(ap);
  cr_assert(k > 0 && (size_t)k < sizeof cmd - 8, "command too long");
  memcpy(cmd + k, " 2>&1", 6);
  buf_reset(out);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p, "popen: %s", cmd);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, p)) > 0) {
    cr_assert_eq(buf_append(out, chunk, n), 0);
  }
  cr_assert_eq(buf_putc(out, '\0'), 0);
  out->len--;
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A staged root the service user may traverse, as / is. */
static void staged_root(char *root, size_t n) {
  cr_assert_eq(h_tmpdir(root, n), 0);
  cr_assert_eq(chmod(root, 0755), 0);
}

static int install(struct buf *out, const char *root) {
  return sh(out,
            "'%s/deploy/install' --root '%s' --user " SERVICE_USER
            " --no-systemctl --bin '%s'",
            IOCD_SOURCE_DIR, root, IOCD_BIN_PATH);
}

/* `iocd check` on the installed config, run as the service user. */
static int check_as_user(struct buf *out, const struct svc *s, const char *bin,
                         const char *root) {
  return sh(out,
            SETPRIV " --reuid=" SERVICE_USER
                    " --regid=%s --init-groups -- "
                    "'%s' check -c '%s/etc/iocd/iocd.jsonc'",
            s->group, bin, root);
}

static void assert_owned(const char *root, const char *rel, uid_t uid,
                         gid_t gid, mode_t mode) {
  char path[512];
  snprintf(path, sizeof path, "%s%s", root, rel);
  struct stat st;
  cr_assert_eq(stat(path, &st), 0, "%s is missing", path);
  cr_assert(
      st.st_uid == uid && st.st_gid == gid && (st.st_mode & 07777) == mode,
      "%s: owner %ld:%ld mode %04o, want %ld:%ld %04o", path, (long)st.st_uid,
      (long)st.st_gid, st.st_mode & 07777, (long)uid, (long)gid, mode);
}

static void assert_user_wrote(const char *root, const char *rel, uid_t uid) {
  char path[512];
  snprintf(path, sizeof path, "%s%s", root, rel);
  struct stat st;
  cr_assert_eq(stat(path, &st), 0, "%s is missing", path);
  cr_assert_eq(st.st_uid, uid, "%s: owner %ld, want %ld", path, (long)st.st_uid,
               (long)uid);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s", path);
  struct buf b;
  buf_init(&b, 1u << 20);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    cr_assert_eq(buf_append(&b, chunk, n), 0);
  }
  fclose(f);
  cr_assert_eq(buf_putc(&b, '\0'), 0);
  return buf_detach(&b, NULL);
}

/* Replaces the first `from` in text with `to` (text is malloc'd). */
static char *replace(char *text, const char *from, const char *to) {
  char *at = strstr(text, from);
  cr_assert_not_null(at, "\"%s\" not in the installed config", from);
  struct buf b;
  buf_init(&b, 1u << 20);
  cr_assert_eq(buf_append(&b, text, (size_t)(at - text)), 0);
  cr_assert_eq(buf_puts(&b, to), 0);
  cr_assert_eq(buf_puts(&b, at + strlen(from)), 0);
  free(text);
  return buf_detach(&b, NULL);
}

/* Rewrites the file in place, so its owner and mode stay the installed
 * ones. */
static void rewrite(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "%s", path);
  cr_assert_eq(fputs(text, f) >= 0, true);
  cr_assert_eq(fclose(f), 0);
}

/* Starts bin -c config as the service user (what systemd's User= and
 * Group= do), with its output in log; fills p for the harness's
 * h_iocd_wait_log and h_iocd_stop. */
static void start_as_user(struct h_iocd *p, const struct svc *s,
                          const char *bin, const char *config,
                          const char *log) {
  char regid[80];
  snprintf(regid, sizeof regid, "--regid=%s", s->group);
  memset(p, 0, sizeof *p);
  snprintf(p->config, sizeof p->config, "%s", config);
  snprintf(p->log, sizeof p->log, "%s", log);
  pid_t parent = getpid();
  pid_t pid = fork();
  cr_assert(pid >= 0, "fork");
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
    for (int fd = 3; fd < 1024; fd++) {
      close(fd);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execl(SETPRIV, SETPRIV, "--reuid=" SERVICE_USER, regid, "--init-groups",
          "--", bin, "-c", config, (char *)NULL);
    _exit(127);
  }
  p->pid = pid;
}

Test(install, staged_install_runs_as_the_service_user_and_writes_data_dir,
     .timeout = 120) {
  struct svc s;
  need_root(&s);
  char root[64];
  staged_root(root, sizeof root);
  struct buf out;
  buf_init(&out, 1u << 20);

  cr_assert_eq(install(&out, root), 0, "deploy/install failed:\n%s", out.data);
  /* root edits, the service's group reads, nobody else. */
  assert_owned(root, "/etc/iocd", 0, s.gid, 0750);
  assert_owned(root, "/etc/iocd/iocd.jsonc", 0, s.gid, 0640);
  assert_owned(root, "/etc/iocd/iocd.env", 0, s.gid, 0640);
  assert_owned(root, "/etc/iocd/rules", 0, s.gid, 0750);
  assert_owned(root, "/etc/iocd/rules/daklak.jsonc", 0, s.gid, 0640);
  assert_owned(root, "/var/lib/iocd", s.uid, s.gid, 0750);
  assert_owned(root, "/usr/local/bin/iocd", 0, 0, 0755);

  char bin[256], config[256], unit[256];
  snprintf(bin, sizeof bin, "%s/usr/local/bin/iocd", root);
  snprintf(config, sizeof config, "%s/etc/iocd/iocd.jsonc", root);
  snprintf(unit, sizeof unit, "%s/etc/systemd/system/iocd.service", root);

  /* The installed config (its rules included) is readable by the user. */
  cr_assert_eq(check_as_user(&out, &s, bin, root), 0, "%s", out.data);
  cr_assert(strstr(out.data, ": OK") != NULL, "%s", out.data);

  /* The staged unit names the staged binary, so systemd can verify it. */
  if (access("/usr/bin/systemd-analyze", X_OK) == 0) {
    int rc = sh(&out, "systemd-analyze verify '%s'", unit);
    cr_assert_eq(rc, 0, "systemd-analyze verify %s:\n%s", unit, out.data);
    for (char *line = out.data; line && *line;) {
      char *end = strchr(line, '\n');
      cr_assert(
          strstr(line, "Special user nobody") != NULL || (end && end == line),
          "systemd-analyze verify %s:\n%s", unit, out.data);
      line = end ? end + 1 : NULL;
    }
  } else {
    cr_log_warn("systemd-analyze is missing: the unit was not verified");
  }

  /* Point the installed config at this test's servers, then run iocd from
   * the staged tree as the service user. */
  struct h_env e;
  cr_assert_eq(h_env_start(&e), 0);
  char *text = slurp(config);
  char want[320], port[64], url[96], listen[96];
  snprintf(want, sizeof want, "\"data_dir\": \"%s/var/lib/iocd\"", root);
  cr_assert(strstr(text, want) != NULL, "no %s in %s", want, config);
  snprintf(port, sizeof port, "\"port\": %d,", e.mq.port);
  snprintf(url, sizeof url, "\"url\": \"%s\"", e.db.url);
  snprintf(listen, sizeof listen, "\"listen\": \"127.0.0.1:%d\"", e.api_port);
  text = replace(text, "\"port\": 1883,", port);
  text = replace(text, "\"url\": \"http://127.0.0.1:8086\"", url);
  text = replace(text, "\"listen\": \"127.0.0.1:8080\"", listen);
  rewrite(config, text);
  free(text);
  assert_owned(root, "/etc/iocd/iocd.jsonc", 0, s.gid, 0640);

  char log[320];
  snprintf(log, sizeof log, "%s/iocd.log", e.dir);
  start_as_user(&e.iocd, &s, bin, config, log);
  cr_assert_eq(h_iocd_wait_log(&e.iocd, "subscribed", 20000), 0, "see %s", log);
  const char *msg = "{\"received\": 1520, \"online_l3\": 161}";
  cr_assert_eq(
      h_publish(e.mq.port, "ioc/Ea H'Leo/igate", msg, strlen(msg), 1, NULL), 0);
  cr_assert_eq(h_env_wait_count(&e,
                                "SELECT count(received) FROM igate WHERE "
                                "district='Ea H\\'Leo'",
                                1, 15000),
               0, "the point did not arrive; see %s", log);
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0, "see %s", log);

  /* Its journal and alert state are in data_dir, written by the user. */
  assert_user_wrote(root, "/var/lib/iocd/journal", s.uid);
  assert_user_wrote(root, "/var/lib/iocd/rules-state.json", s.uid);
  buf_cleanup(&out);
  h_env_stop(&e);
  h_rmtree(root);
}

Test(install, old_steps_deny_the_service_user_and_install_repairs_them,
     .timeout = 60) {
  struct svc s;
  need_root(&s);
  char root[64];
  staged_root(root, sizeof root);
  struct buf out;
  buf_init(&out, 1u << 20);

  /* The steps the README and the unit gave before deploy/install: the
   * config root:root 0640, which only root may read. */
  cr_assert_eq(sh(&out,
                  "install -D -m 0640 '%s/config/iocd.example.jsonc' "
                  "'%s/etc/iocd/iocd.jsonc' && cp -r '%s/config/rules' "
                  "'%s/etc/iocd/' && echo '// edited by the site' >> "
                  "'%s/etc/iocd/iocd.jsonc'",
                  IOCD_SOURCE_DIR, root, IOCD_SOURCE_DIR, root, root),
               0, "%s", out.data);
  cr_assert_neq(check_as_user(&out, &s, IOCD_BIN_PATH, root), 0, "%s",
                out.data);
  cr_assert(strstr(out.data, "Permission denied") != NULL, "%s", out.data);

  /* Running the install over it fixes owners and modes and keeps the
   * site's config. */
  cr_assert_eq(install(&out, root), 0, "deploy/install failed:\n%s", out.data);
  cr_assert(strstr(out.data, "kept") != NULL, "%s", out.data);
  assert_owned(root, "/etc/iocd", 0, s.gid, 0750);
  assert_owned(root, "/etc/iocd/iocd.jsonc", 0, s.gid, 0640);
  assert_owned(root, "/etc/iocd/rules/daklak.jsonc", 0, s.gid, 0640);
  char config[256];
  snprintf(config, sizeof config, "%s/etc/iocd/iocd.jsonc", root);
  char *text = slurp(config);
  cr_assert(strstr(text, "// edited by the site") != NULL,
            "the site's config was replaced");
  free(text);
  cr_assert_eq(check_as_user(&out, &s, IOCD_BIN_PATH, root), 0, "%s", out.data);

  /* A second run changes nothing and succeeds again. */
  cr_assert_eq(install(&out, root), 0, "%s", out.data);
  assert_owned(root, "/etc/iocd/iocd.jsonc", 0, s.gid, 0640);
  buf_cleanup(&out);
  h_rmtree(root);
}

/* The shipped unit as it is, but for the binary's path: systemd-analyze
 * verify fails on an ExecStart that is not there. */
Test(install, shipped_unit_verifies) {
  if (access("/usr/bin/systemd-analyze", X_OK) != 0) {
    cr_skip_test(
        "systemd-analyze is missing (Debian: systemd): "
        "deploy/iocd.service not verified");
  }
  char dir[64];
  cr_assert_eq(h_tmpdir(dir, sizeof dir), 0);
  struct buf out;
  buf_init(&out, 1u << 20);
  cr_assert_eq(sh(&out,
                  "sed 's#/usr/local/bin/iocd#%s#g' '%s/deploy/iocd.service' "
                  "> '%s/iocd.service'",
                  IOCD_BIN_PATH, IOCD_SOURCE_DIR, dir),
               0, "%s", out.data);
  int rc = sh(&out, "systemd-analyze verify '%s/iocd.service'", dir);
  cr_assert_eq(rc, 0, "%s", out.data);
  cr_assert_eq(out.len, 0, "systemd-analyze verify warns:\n%s", out.data);
  buf_cleanup(&out);
  h_rmtree(dir);
}
