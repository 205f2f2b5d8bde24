/*
 * Installing iocd as a service, as an operator does on the first day:
 * deploy/install (cmake --install, then owners and modes) into a staged
 * root, then the installed iocd checked and run as an unprivileged user
 * against a real mosquitto and influxd, with what systemd gives the
 * service: the environment of iocd.env (read as root) and a copy of the
 * credentials only that user reads. The unit runs with DynamicUser=yes; its
 * stand-in here is "nobody" with no supplementary group, a user with no
 * right to any file of the install but those every user has.
 *
 * The unit as `cmake --install` writes it is checked with systemd-analyze:
 * verify, and its security exposure, which must stay in the "OK" band and
 * be the figure docs/operations.md gives.
 *
 * Changing owners and dropping to another user need root: without it the
 * install tests skip. Without systemd-analyze the unit test skips.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
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
#ifndef IOCD_BUILD_DIR
#define IOCD_BUILD_DIR "build"
#endif
#ifndef IOCD_CMAKE
#define IOCD_CMAKE "cmake"
#endif

#define SERVICE_USER "nobody"
#define SETPRIV "/usr/bin/setpriv"
#define ANALYZE "/usr/bin/systemd-analyze"
/* The highest exposure systemd-analyze security rates "OK". */
#define EXPOSURE_MAX 2.0

#define BIN "/usr/local/bin/iocd"
#define UNIT "/usr/local/lib/systemd/system/iocd.service"
#define DROPIN "/etc/systemd/system/iocd.service.d/credentials.conf"

/* The unprivileged user iocd is run as. */
struct svc {
  uid_t uid;
  gid_t gid;
};

/* setpriv's option for the user's own group (set by need_root). */
static char regid[32];

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
  snprintf(regid, sizeof regid, "--regid=%ld", (long)s->gid);
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
  return sh(out, "'%s/deploy/install' --root '%s' --build '%s' --no-systemctl",
            IOCD_SOURCE_DIR, root, IOCD_BUILD_DIR);
}

/* `iocd check` on the installed config, run as the service user with no
 * supplementary group; env is "NAME=value ..." or "". bin: the installed
 * binary unless given. */
static int check_with(struct buf *out, const char *bin, const char *root,
                      const char *env) {
  return sh(out,
            "env -i PATH=/usr/bin:/bin %s " SETPRIV " --reuid=" SERVICE_USER
            " %s --clear-groups -- '%s%s' check -c '%s/etc/iocd/iocd.jsonc'",
            env, regid, bin ? "" : root, bin ? bin : BIN, root);
}

static int check_as_user(struct buf *out, const char *root, const char *env) {
  return check_with(out, NULL, root, env);
}

/* True when the service user can read the file root/rel. */
static bool user_reads(const char *root, const char *rel) {
  struct buf out;
  buf_init(&out, 1u << 16);
  int rc = sh(&out,
              SETPRIV " --reuid=" SERVICE_USER
                      " %s --clear-groups -- cat '%s%s' >/dev/null",
              regid, root, rel);
  buf_cleanup(&out);
  return rc == 0;
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
  char *text = h_read_file(path, NULL);
  cr_assert_not_null(text, "%s cannot be read", path);
  return text;
}

/* Replaces every `from` in text with `to` (text is malloc'd); there must
 * be one at least. */
static char *replace(char *text, const char *from, const char *to) {
  cr_assert_not_null(strstr(text, from), "\"%s\" not in the installed config",
                     from);
  struct buf b;
  buf_init(&b, 1u << 20);
  const char *p = text;
  for (const char *at; (at = strstr(p, from)) != NULL; p = at + strlen(from)) {
    cr_assert_eq(buf_append(&b, p, (size_t)(at - p)), 0);
    cr_assert_eq(buf_puts(&b, to), 0);
  }
  cr_assert_eq(buf_puts(&b, p), 0);
  free(text);
  return buf_detach(&b, NULL);
}

/* Rewrites the file in place, so its owner and mode stay the installed
 * ones. */
static void rewrite(const char *path, const char *text, const char *mode) {
  FILE *f = fopen(path, mode);
  cr_assert_not_null(f, "%s", path);
  cr_assert_eq(fputs(text, f) >= 0, true);
  cr_assert_eq(fclose(f), 0);
}

/* The environment systemd gives the service: NAME=value lines of
 * iocd.env (read here as root, as systemd reads it), then extra (NULL or
 * one NAME=value). Fills env (NULL-terminated) from storage in b. */
static void service_env(const char *root, const char *extra, struct buf *b,
                        char **env, size_t max) {
  char path[512];
  snprintf(path, sizeof path, "%s/etc/iocd/iocd.env", root);
  char *text = slurp(path);
  buf_reset(b);
  size_t n = 0;
  cr_assert_eq(buf_puts(b, "PATH=/usr/bin:/bin"), 0);
  cr_assert_eq(buf_putc(b, '\0'), 0);
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    if (*line && *line != '#' && strchr(line, '=')) {
      cr_assert_eq(buf_puts(b, line), 0);
      cr_assert_eq(buf_putc(b, '\0'), 0);
    }
  }
  if (extra) {
    cr_assert_eq(buf_puts(b, extra), 0);
    cr_assert_eq(buf_putc(b, '\0'), 0);
  }
  free(text);
  for (size_t off = 0; off < b->len; off += strlen(b->data + off) + 1) {
    cr_assert(n + 1 < max, "too many variables");
    env[n++] = b->data + off;
  }
  env[n] = NULL;
}

/* Starts bin -c config as the service user with the environment env, as
 * systemd starts the unit, with its output in log; fills p for the
 * harness's h_iocd_wait_log and h_iocd_stop. */
static void start_as_user(struct h_iocd *p, const char *bin, const char *config,
                          const char *log, char **env) {
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
    char *argv[] = {SETPRIV, "--reuid=" SERVICE_USER,
                    regid,   "--clear-groups",
                    "--",    (char *)bin,
                    "-c",    (char *)config,
                    NULL};
    execve(SETPRIV, argv, env);
    _exit(127);
  }
  p->pid = pid;
}

/* The installed layout: binary, unit, config root:root and readable, the
 * secrets root's alone. */
static void assert_layout(const char *root) {
  assert_owned(root, BIN, 0, 0, 0755);
  assert_owned(root, UNIT, 0, 0, 0644);
  assert_owned(root, "/etc/iocd", 0, 0, 0755);
  assert_owned(root, "/etc/iocd/iocd.jsonc", 0, 0, 0644);
  assert_owned(root, "/etc/iocd/rules", 0, 0, 0755);
  assert_owned(root, "/etc/iocd/rules/daklak.jsonc", 0, 0, 0644);
  assert_owned(root, "/etc/iocd/iocd.env", 0, 0, 0600);
  assert_owned(root, "/etc/iocd/credentials", 0, 0, 0700);
  assert_owned(root, "/usr/local/share/doc/iocd/docs/operations.md", 0, 0,
               0644);
}

Test(install, staged_install_runs_as_an_unprivileged_user_with_iocd_env,
     .timeout = 180) {
  struct svc s;
  need_root(&s);
  char root[64];
  staged_root(root, sizeof root);
  struct buf out;
  buf_init(&out, 1u << 20);

  cr_assert_eq(install(&out, root), 0, "deploy/install failed:\n%s", out.data);
  assert_layout(root);
  char path[320];
  snprintf(path, sizeof path, "%s/var/lib/iocd", root);
  cr_assert(access(path, F_OK) != 0,
            "%s exists: systemd creates the state directory, not the install",
            path);
  /* The unit names the real paths of the install. */
  snprintf(path, sizeof path, "%s" UNIT, root);
  char *unit = slurp(path);
  cr_assert(strstr(unit, "\nExecStart=" BIN " -c /etc/iocd/iocd.jsonc\n"), "%s",
            unit);
  cr_assert(strstr(unit, "\nDynamicUser=yes\n"), "%s", unit);
  free(unit);

  /* The user reads the config (and the rules it includes), not iocd.env. */
  cr_assert_eq(check_as_user(&out, root, ""), 0, "%s", out.data);
  cr_assert(strstr(out.data, ": OK") != NULL, "%s", out.data);
  cr_assert(!user_reads(root, "/etc/iocd/iocd.env"),
            "the service user reads iocd.env");

  /* Point the installed config at this test's servers, the API's address
   * taken from iocd.env as ${IOCD_API_LISTEN}, and data_dir at the staged
   * state directory, made as systemd makes it (owned by the user, 0700). */
  struct h_env e;
  cr_assert_eq(h_env_start(&e), 0);
  char config[256], state[256];
  snprintf(config, sizeof config, "%s/etc/iocd/iocd.jsonc", root);
  snprintf(state, sizeof state, "%s/var/lib/iocd", root);
  char *text = slurp(config);
  char port[64], url[96], dd[320], line[96];
  snprintf(port, sizeof port, "\"port\": %d,", e.mq.port);
  snprintf(url, sizeof url, "\"url\": \"%s\"", e.db.url);
  snprintf(dd, sizeof dd, "\"data_dir\": \"%s\"", state);
  text = replace(text, "\"port\": 1883,", port);
  text = replace(text, "\"url\": \"http://127.0.0.1:8086\"", url);
  text = replace(text, "\"listen\": \"127.0.0.1:8080\"",
                 "\"listen\": \"${IOCD_API_LISTEN}\"");
  text = replace(text, "\"data_dir\": \"/var/lib/iocd\"", dd);
  rewrite(config, text, "w");
  free(text);
  snprintf(path, sizeof path, "%s/etc/iocd/iocd.env", root);
  snprintf(line, sizeof line, "IOCD_API_LISTEN=127.0.0.1:%d\n", e.api_port);
  rewrite(path, line, "a");
  cr_assert_eq(sh(&out, "install -d -m 0700 -o %ld -g %ld '%s'", (long)s.uid,
                  (long)s.gid, state),
               0, "%s", out.data);

  /* Without the environment the check fails; deploy/install, run again,
   * keeps the site's config and checks it with iocd.env's values. */
  cr_assert_neq(check_as_user(&out, root, ""), 0, "%s", out.data);
  cr_assert(strstr(out.data, "IOCD_API_LISTEN") != NULL, "%s", out.data);
  cr_assert_eq(install(&out, root), 0, "deploy/install failed:\n%s", out.data);
  cr_assert(strstr(out.data, "Kept: /etc/iocd/iocd.jsonc") != NULL, "%s",
            out.data);
  cr_assert(strstr(out.data, ": OK") != NULL, "%s", out.data);
  assert_layout(root);

  char log[320], bin[256];
  struct buf envb;
  buf_init(&envb, 1u << 16);
  char *env[64];
  service_env(root, "STATE_DIRECTORY=/var/lib/iocd", &envb, env, 64);
  snprintf(log, sizeof log, "%s/iocd.log", e.dir);
  snprintf(bin, sizeof bin, "%s" BIN, root);
  start_as_user(&e.iocd, bin, config, log, env);
  cr_assert_eq(h_iocd_wait_log(&e.iocd, "subscribed", 20000), 0, "see %s", log);
  cr_assert_eq(h_wait_port(e.api_port, 10000), 0,
               "the API is not on the port iocd.env gave; see %s", log);
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
  buf_cleanup(&envb);
  buf_cleanup(&out);
  h_env_stop(&e);
  h_rmtree(root);
}

Test(install, file_secrets_reach_iocd_as_credentials, .timeout = 120) {
  struct svc s;
  need_root(&s);
  char root[64];
  staged_root(root, sizeof root);
  struct buf out;
  buf_init(&out, 1u << 20);
  cr_assert_eq(install(&out, root), 0, "deploy/install failed:\n%s", out.data);
  cr_assert_eq(check_as_user(&out, root, ""), 0, "%s", out.data);

  /* The receivers' secret files as credentials (written world-readable, as
   * a careless copy would leave them), the notifications switched on. */
  static const char *const names[] = {"smtp.pass", "telegram.token",
                                      "zalo.token"};
  char config[256], path[320];
  snprintf(config, sizeof config, "%s/etc/iocd/iocd.jsonc", root);
  char *text = slurp(config);
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char from[64], to[96];
    snprintf(path, sizeof path, "%s/etc/iocd/credentials/%s", root, names[i]);
    rewrite(path, "s3cret-value-for-the-test\n", "w");
    cr_assert_eq(chmod(path, 0644), 0);
    snprintf(from, sizeof from, "\"/etc/iocd/%s\"", names[i]);
    snprintf(to, sizeof to, "\"${CREDENTIALS_DIRECTORY}/%s\"", names[i]);
    text = replace(text, from, to);
  }
  text = replace(text, "\"enabled\": false,  // default: true when there are",
                 "\"enabled\": true,  // default: true when there are");
  rewrite(config, text, "w");
  free(text);

  /* deploy/install passes each with LoadCredential= and checks the config
   * with a copy only the user reads. */
  cr_assert_eq(install(&out, root), 0, "deploy/install failed:\n%s", out.data);
  cr_assert(strstr(out.data, "passed 3 credential(s)") != NULL, "%s", out.data);
  snprintf(path, sizeof path, "%s" DROPIN, root);
  char *dropin = slurp(path);
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char want[160];
    snprintf(want, sizeof want,
             "\nLoadCredential=%s:/etc/iocd/credentials/%s\n", names[i],
             names[i]);
    cr_assert(strstr(dropin, want) != NULL, "no %s in:\n%s", want + 1, dropin);
    snprintf(path, sizeof path, "/etc/iocd/credentials/%s", names[i]);
    assert_owned(root, path, 0, 0, 0600);
    cr_assert(!user_reads(root, path), "the service user reads %s", path);
  }
  free(dropin);

  /* The config reads them from $CREDENTIALS_DIRECTORY: without it, the
   * check fails naming it. */
  cr_assert_neq(check_as_user(&out, root, ""), 0, "%s", out.data);
  cr_assert(strstr(out.data, "CREDENTIALS_DIRECTORY") != NULL, "%s", out.data);
  cr_assert(strstr(out.data, "s3cret") == NULL, "a secret in:\n%s", out.data);

  /* Without credentials the drop-in goes away again. */
  cr_assert_eq(sh(&out,
                  "rm -f '%s'/etc/iocd/credentials/* && cp '%s'/etc/"
                  "iocd/iocd.jsonc.new '%s'/etc/iocd/iocd.jsonc",
                  root, root, root),
               0, "%s", out.data);
  cr_assert_eq(install(&out, root), 0, "deploy/install failed:\n%s", out.data);
  snprintf(path, sizeof path, "%s" DROPIN, root);
  cr_assert(access(path, F_OK) != 0, "%s is still there", path);
  buf_cleanup(&out);
  h_rmtree(root);
}

Test(install, static_user_install_is_converted_and_literal_secrets_refused,
     .timeout = 120) {
  struct svc s;
  need_root(&s);
  char root[64];
  staged_root(root, sizeof root);
  struct buf out;
  buf_init(&out, 1u << 20);

  /* What deploy/install left before DynamicUser: the config root:iocd
   * (here a group number no user has), 0750 and 0640, the unit in
   * /etc/systemd/system. */
  const long old_gid = 64123;
  cr_assert_eq(
      sh(&out,
         "install -d -m 0750 -g %ld '%s/etc/iocd' '%s/etc/iocd/rules' && "
         "install -m 0640 -g %ld '%s/config/iocd.example.jsonc' "
         "'%s/etc/iocd/iocd.jsonc' && install -m 0640 -g %ld "
         "'%s'/config/rules/*.jsonc '%s/etc/iocd/rules/' && "
         "install -m 0640 -g %ld /dev/null '%s/etc/iocd/iocd.env' && "
         "echo '// edited by the site' >> '%s/etc/iocd/iocd.jsonc' && "
         "install -d '%s/etc/systemd/system' && printf '# Installed by "
         "deploy/install from iocd.\\n[Unit]\\n' > "
         "'%s/etc/systemd/system/iocd.service'",
         old_gid, root, root, old_gid, IOCD_SOURCE_DIR, root, old_gid,
         IOCD_SOURCE_DIR, root, old_gid, root, root, root, root),
      0, "%s", out.data);
  /* A user of no group (the dynamic user) cannot read it. */
  cr_assert_neq(check_with(&out, IOCD_BUILD_DIR "/app/iocd", root, ""), 0, "%s",
                out.data);
  cr_assert(strstr(out.data, "Permission denied") != NULL, "%s", out.data);

  cr_assert_eq(install(&out, root), 0, "deploy/install failed:\n%s", out.data);
  cr_assert(strstr(out.data, "Kept: /etc/iocd/iocd.jsonc") != NULL, "%s",
            out.data);
  cr_assert(strstr(out.data, "removed the unit of an earlier install") != NULL,
            "%s", out.data);
  assert_layout(root);
  char path[320];
  snprintf(path, sizeof path, "%s/etc/systemd/system/iocd.service", root);
  cr_assert(access(path, F_OK) != 0, "%s is still there", path);
  snprintf(path, sizeof path, "%s/etc/iocd/iocd.jsonc", root);
  char *text = slurp(path);
  cr_assert(strstr(text, "// edited by the site") != NULL,
            "the site's config was replaced");
  cr_assert_eq(check_as_user(&out, root, ""), 0, "%s", out.data);

  /* A password written in the config would become world-readable: the
   * install stops and leaves the file's mode alone. */
  text = replace(text, "  \"mqtt\": {\n",
                 "  \"mqtt\": {\n    \"password\": \"hunter2-literal\",\n");
  rewrite(path, text, "w");
  free(text);
  cr_assert_eq(chmod(path, 0640), 0);
  cr_assert_neq(install(&out, root), 0, "%s", out.data);
  cr_assert(strstr(out.data, "literal secret") != NULL, "%s", out.data);
  cr_assert(strstr(out.data, "hunter2") == NULL, "the secret in:\n%s",
            out.data);
  assert_owned(root, "/etc/iocd/iocd.jsonc", 0, 0, 0640);
  buf_cleanup(&out);
  h_rmtree(root);
}

/* The figure docs/operations.md gives for systemd version ver, or -1. */
static double documented_exposure(const char *ver) {
  char *doc = slurp(IOCD_SOURCE_DIR "/docs/operations.md");
  char needle[64];
  snprintf(needle, sizeof needle, "exposure level (systemd %s): **", ver);
  char *at = strstr(doc, needle);
  double v = at ? strtod(at + strlen(needle), NULL) : -1;
  free(doc);
  return v;
}

/* Needs no root: cmake --install into a scratch prefix, whose paths the
 * unit then names. */
Test(install, installed_unit_verifies_and_its_exposure_is_ok, .timeout = 120) {
  if (access(ANALYZE, X_OK) != 0) {
    cr_skip_test("%s is missing (Debian: systemd): the unit was not verified",
                 ANALYZE);
  }
  char dir[64], unit[160];
  cr_assert_eq(h_tmpdir(dir, sizeof dir), 0);
  struct buf out;
  buf_init(&out, 1u << 20);
  cr_assert_eq(sh(&out, "'%s' --install '%s' --prefix '%s'", IOCD_CMAKE,
                  IOCD_BUILD_DIR, dir),
               0, "%s", out.data);
  snprintf(unit, sizeof unit, "%s/lib/systemd/system/iocd.service", dir);
  char *text = slurp(unit);
  char want[200];
  snprintf(want, sizeof want, "\nExecStart=%s/bin/iocd -c %s/etc/iocd/", dir,
           dir);
  cr_assert(strstr(text, want) != NULL, "no %s in:\n%s", want + 1, text);
  free(text);

  /* verify loads the unit as systemd would (no PID 1 needed) and checks
   * that its commands exist; any line it prints is a complaint. */
  int rc = sh(&out, ANALYZE " verify --man=no '%s'", unit);
  cr_assert_eq(rc, 0, "systemd-analyze verify %s:\n%s", unit, out.data);
  cr_assert_eq(out.len, 0, "systemd-analyze verify warns:\n%s", out.data);

  rc = sh(&out, ANALYZE " security --offline=yes --no-pager '%s'", unit);
  const char *tag = "Overall exposure level for iocd.service: ";
  char *at = strstr(out.data, tag);
  if (!at && strstr(out.data, "--offline")) {
    cr_skip_test("this systemd-analyze has no --offline (systemd < 252)");
  }
  cr_assert_not_null(at, "systemd-analyze security:\n%s", out.data);
  double score = strtod(at + strlen(tag), NULL);
  cr_log_info("systemd-analyze security: exposure %.1f", score);
  cr_assert(score <= EXPOSURE_MAX,
            "exposure %.1f is above %.1f; the unit lost its hardening:\n%s",
            score, EXPOSURE_MAX, out.data);

  /* docs/operations.md gives the figure of the systemd it was measured
   * with; with that version, it must still be true. */
  cr_assert_eq(sh(&out, ANALYZE " --version | sed -n '1s/^systemd \\([0-9]*\\)"
                                ".*/\\1/p'"),
               0);
  char ver[16];
  snprintf(ver, sizeof ver, "%.*s", (int)strcspn(out.data, "\n"), out.data);
  double doc = documented_exposure(ver);
  if (doc >= 0) {
    cr_assert(doc > score - 0.05 && doc < score + 0.05,
              "docs/operations.md gives exposure %.1f for systemd %s; it "
              "is %.1f now: update the page",
              doc, ver, score);
  } else {
    cr_log_warn("docs/operations.md gives no exposure for systemd %s (%.1f)",
                ver, score);
  }
  buf_cleanup(&out);
  h_rmtree(dir);
}
