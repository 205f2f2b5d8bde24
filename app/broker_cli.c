/*
 * `iocd broker-accounts`: reads iocd's configuration with its own loader,
 * renders the ACL (config/broker_acl.c), and keeps the accounts' passwords
 * in DIR/credentials across runs. Passwords are 24 characters from
 * [A-Za-z0-9] drawn from /dev/urandom (about 143 bits). mosquitto's
 * password file is made the way its documentation says: a plain
 * "NAME:PASSWORD" file converted in place by `mosquitto_passwd -U`, which
 * writes a salted SHA-512 hash (PBKDF2 in mosquitto 2.0) per line.
 */
#include "app/broker_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/broker_acl.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/file.h"
#include "core/mem.h"

extern char **environ;

#define PASSWORD_LEN 24
#define CREDENTIALS_MAX (16u << 20)

enum acc_state {
  ACC_ADDED,   /* not in the credentials file: a new password */
  ACC_KEPT,    /* its password from the credentials file */
  ACC_CHANGED, /* iocd's: its configured password replaces the file's */
  ACC_REMOVED, /* (summary only) in the file, no longer configured */
};

struct account {
  const char *name; /* borrowed from the configuration or the options */
  char *password;   /* owned */
  enum acc_state state;
};

/* A line of the credentials file. */
struct cred {
  char *name;
  char *password;
  bool used;
};

struct run {
  const struct broker_cli_opts *o;
  FILE *out, *errs;
  struct config *cfg;
  struct cred *creds;
  size_t ncreds, cap_creds;
  struct account *acc;
  size_t nacc;
  char path[4096];
};

static void creds_free(struct run *r) {
  for (size_t i = 0; i < r->ncreds; i++) {
    free(r->creds[i].name);
    free(r->creds[i].password);
  }
  free(r->creds);
}

/* A password must fit one line of the files and survive mosquitto_passwd,
 * which ends the password at a second ':'. */
static const char *password_problem(const char *p) {
  if (!*p) {
    return "it is empty";
  }
  for (const char *c = p; *c; c++) {
    if ((unsigned char)*c < 0x20 || *c == 0x7f) {
      return "it holds a control character";
    }
    if (*c == ':') {
      return "it holds ':', which mosquitto_passwd -U cuts it at";
    }
  }
  return NULL;
}

static const char *dir_file(struct run *r, const char *name) {
  snprintf(r->path, sizeof r->path, "%s/%s", r->o->out_dir, name);
  return r->path;
}

/* Reads DIR/credentials when it exists: "NAME:PASSWORD" lines, '#'
 * comments and blank lines. Returns 0, or 1 after a message. */
static int read_credentials(struct run *r) {
  const char *path = dir_file(r, "credentials");
  struct stat st;
  if (stat(path, &st) != 0 && errno == ENOENT) {
    return 0;
  }
  struct buf text;
  buf_init(&text, CREDENTIALS_MAX);
  struct iocd_err err = {{0}};
  int rc = file_read(path, &text, &err);
  if (rc) {
    fprintf(r->errs, "%s: %s\n", path, err.msg);
    buf_cleanup(&text);
    return 1;
  }
  int status = 0;
  size_t lineno = 0;
  for (size_t at = 0; at < text.len && !status;) {
    const char *line = text.data + at;
    const char *nl = memchr(line, '\n', text.len - at);
    size_t n = nl ? (size_t)(nl - line) : text.len - at;
    at += n + 1;
    lineno++;
    if (n && line[n - 1] == '\r') {
      n--;
    }
    if (n == 0 || line[0] == '#') {
      continue;
    }
    const char *colon = memchr(line, ':', n);
    if (!colon || colon == line || colon + 1 == line + n) {
      fprintf(r->errs,
              "%s:%zu: expected NAME:PASSWORD (the file is left as it is)\n",
              path, lineno);
      status = 1;
      break;
    }
    if (mem_grow((void **)&r->creds, &r->cap_creds, r->ncreds,
                 sizeof *r->creds)) {
      fprintf(r->errs, "iocd: out of memory\n");
      status = 1;
      break;
    }
    struct cred *c = &r->creds[r->ncreds];
    size_t nn = (size_t)(colon - line);
    c->name = malloc(nn + 1);
    c->password = malloc(n - nn);
    c->used = false;
    if (!c->name || !c->password) {
      free(c->name);
      free(c->password);
      fprintf(r->errs, "iocd: out of memory\n");
      status = 1;
      break;
    }
    memcpy(c->name, line, nn);
    c->name[nn] = '\0';
    memcpy(c->password, colon + 1, n - nn - 1);
    c->password[n - nn - 1] = '\0';
    r->ncreds++;
    const char *why = password_problem(c->password);
    if (why || memchr(c->name, '\0', nn) ||
        memchr(c->password, '\0', n - nn - 1)) {
      fprintf(r->errs, "%s:%zu: the password of \"%s\" cannot be used: %s\n",
              path, lineno, c->name, why ? why : "it holds a NUL byte");
      status = 1;
    }
  }
  buf_cleanup(&text);
  return status;
}

/* PASSWORD_LEN characters of [A-Za-z0-9] from /dev/urandom, without
 * modulo bias (bytes of 248 and above are drawn again). */
static char *new_password(FILE *errs) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  char *pw = malloc(PASSWORD_LEN + 1);
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (!pw || fd < 0) {
    fprintf(errs, "iocd: %s\n",
            pw ? "cannot open /dev/urandom" : "out of memory");
    free(pw);
    if (fd >= 0) {
      close(fd);
    }
    return NULL;
  }
  size_t have = 0;
  while (have < PASSWORD_LEN) {
    unsigned char b[64];
    ssize_t got = read(fd, b, sizeof b);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      fprintf(errs, "iocd: cannot read /dev/urandom\n");
      free(pw);
      close(fd);
      return NULL;
    }
    for (ssize_t i = 0; i < got && have < PASSWORD_LEN; i++) {
      if (b[i] < 248) {
        pw[have++] = alphabet[b[i] % 62];
      }
    }
  }
  close(fd);
  pw[PASSWORD_LEN] = '\0';
  return pw;
}

static struct cred *find_cred(struct run *r, const char *name) {
  for (size_t i = 0; i < r->ncreds; i++) {
    if (strcmp(r->creds[i].name, name) == 0) {
      return &r->creds[i];
    }
  }
  return NULL;
}

/* One account: the password in the credentials file, else (for iocd's
 * account) the one iocd's configuration logs in with, else a new one. */
static int add_account(struct run *r, const char *name, const char *config_pw) {
  struct account *a = &r->acc[r->nacc];
  a->name = name;
  struct cred *c = find_cred(r, name);
  if (c) {
    c->used = true;
  }
  const char *pw = config_pw ? config_pw : c ? c->password : NULL;
  a->state = !c                             ? ACC_ADDED
             : strcmp(c->password, pw) == 0 ? ACC_KEPT
                                            : ACC_CHANGED;
  a->password = pw ? mem_strdup(pw) : new_password(r->errs);
  if (!a->password) {
    return 1;
  }
  r->nacc++;
  return 0;
}

static int write_file(struct run *r, const char *name, const struct buf *b,
                      mode_t mode) {
  const char *path = dir_file(r, name);
  int e =
      file_write_atomic_mode(path, b->data ? b->data : "", b->len, true, mode);
  if (e) {
    fprintf(r->errs, "%s: cannot write: %s\n", path, strerror(e));
    return 1;
  }
  return 0;
}

static int write_credentials(struct run *r) {
  struct buf b;
  buf_init(&b, CREDENTIALS_MAX);
  int rc = buf_printf(&b,
                      "# MQTT accounts of the broker, written by `iocd "
                      "broker-accounts` from %s.\n"
                      "# NAME:PASSWORD per line. Secret: hand each district "
                      "its own line only.\n"
                      "# Kept on every run; a password changed here is used "
                      "by the next run.\n",
                      r->cfg->path);
  for (size_t i = 0; i < r->nacc && !rc; i++) {
    rc = buf_printf(&b, "%s:%s\n", r->acc[i].name, r->acc[i].password);
  }
  int status = rc ? 1 : write_file(r, "credentials", &b, 0600);
  if (rc) {
    fprintf(r->errs, "iocd: %s\n", iocd_strerror(rc));
  }
  buf_cleanup(&b);
  return status;
}

/* Runs `mosquitto_passwd -U path`; returns 0 when it exits 0. */
static int run_mosquitto_passwd(struct run *r, const char *path) {
  const char *prog =
      r->o->mosquitto_passwd ? r->o->mosquitto_passwd : "mosquitto_passwd";
  char *argv[] = {(char *)prog, "-U", (char *)path, NULL};
  pid_t pid;
  int e = posix_spawnp(&pid, prog, NULL, NULL, argv, environ);
  if (e) {
    fprintf(r->errs,
            "iocd: cannot run %s: %s (it comes with mosquitto; "
            "--mosquitto-passwd names another)\n",
            prog, strerror(e));
    return 1;
  }
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      fprintf(r->errs, "iocd: waiting for %s: %s\n", prog, strerror(errno));
      return 1;
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(r->errs, "iocd: %s -U %s failed (status %d)\n", prog, path,
            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 1;
  }
  return 0;
}

/* The plain file goes to DIR/passwd.new (0600), is hashed in place and
 * renamed over DIR/passwd, so mosquitto never reads a plain password. */
static int write_passwd(struct run *r) {
  struct buf b;
  buf_init(&b, CREDENTIALS_MAX);
  int rc = IOCD_OK;
  for (size_t i = 0; i < r->nacc && !rc; i++) {
    rc = buf_printf(&b, "%s:%s\n", r->acc[i].name, r->acc[i].password);
  }
  if (rc) {
    fprintf(r->errs, "iocd: %s\n", iocd_strerror(rc));
    buf_cleanup(&b);
    return 1;
  }
  int status = write_file(r, "passwd.new", &b, 0600);
  buf_cleanup(&b);
  if (status) {
    return 1;
  }
  char plain[sizeof r->path];
  snprintf(plain, sizeof plain, "%s", r->path);
  status = run_mosquitto_passwd(r, plain);
  /* mosquitto reads the file after dropping to its own user: group
   * readable, for `chgrp mosquitto` (deploy/mosquitto/README.md). */
  if (!status && chmod(plain, 0640) != 0) {
    fprintf(r->errs, "%s: chmod: %s\n", plain, strerror(errno));
    status = 1;
  }
  const char *final = dir_file(r, "passwd");
  if (!status && rename(plain, final) != 0) {
    fprintf(r->errs, "%s: cannot rename to %s: %s\n", plain, final,
            strerror(errno));
    status = 1;
  }
  if (status) {
    unlink(plain);
  }
  return status;
}

/* One line of the summary: how many accounts are in state (or, for
 * ACC_REMOVED, how many credentials lines no account used), and their
 * names unless they were kept. */
static void summary_line(struct run *r, const char *what, enum acc_state st) {
  size_t n = 0;
  for (size_t i = 0; st != ACC_REMOVED && i < r->nacc; i++) {
    n += r->acc[i].state == st;
  }
  for (size_t i = 0; st == ACC_REMOVED && i < r->ncreds; i++) {
    n += !r->creds[i].used;
  }
  fprintf(r->out, "  %s: %zu", what, n);
  if (st == ACC_KEPT || n == 0) {
    fputc('\n', r->out);
    return;
  }
  const char *sep = " (";
  for (size_t i = 0; st != ACC_REMOVED && i < r->nacc; i++) {
    if (r->acc[i].state == st) {
      fprintf(r->out, "%s%s", sep, r->acc[i].name);
      sep = ", ";
    }
  }
  for (size_t i = 0; st == ACC_REMOVED && i < r->ncreds; i++) {
    if (!r->creds[i].used) {
      fprintf(r->out, "%s%s", sep, r->creds[i].name);
      sep = ", ";
    }
  }
  fputs(")\n", r->out);
}

static int load_config(struct run *r) {
  struct buf errors;
  buf_init(&errors, 1 << 20);
  int rc = config_load(r->o->config_path, &r->cfg, &errors);
  if (rc) {
    if (errors.len) {
      fprintf(r->errs, "%s%s", errors.data,
              errors.data[errors.len - 1] == '\n' ? "" : "\n");
    } else {
      fprintf(r->errs, "%s: %s\n", r->o->config_path, iocd_strerror(rc));
    }
  }
  buf_cleanup(&errors);
  return rc ? 1 : 0;
}

int broker_cli_accounts(const struct broker_cli_opts *o, FILE *out,
                        FILE *errs) {
  struct run r = {.o = o, .out = out, .errs = errs};
  struct buf acl;
  buf_init(&acl, 256u << 20);
  int status = load_config(&r);
  if (status) {
    goto out;
  }
  const struct config_mqtt *mq = &r.cfg->mqtt;
  const char *user = o->iocd_user   ? o->iocd_user
                     : mq->username ? mq->username
                                    : "iocd";
  struct iocd_err err = {{0}};
  if (broker_acl_render(r.cfg, user, &acl, &err)) {
    fprintf(errs, "%s: %s\n", o->config_path, err.msg);
    status = 1;
    goto out;
  }
  /* iocd logs in with its configured password when the account is the
   * one it logs in as: the files then agree with the configuration. */
  const char *config_pw =
      mq->username && mq->password && strcmp(mq->username, user) == 0
          ? mq->password
          : NULL;
  const char *why = config_pw ? password_problem(config_pw) : NULL;
  if (why) {
    fprintf(errs, "%s: mqtt.password cannot be iocd's broker password: %s\n",
            o->config_path, why);
    status = 1;
    goto out;
  }
  int e = file_mkdirs(o->out_dir);
  if (e) {
    fprintf(errs, "%s: cannot create: %s\n", o->out_dir, strerror(e));
    status = 1;
    goto out;
  }
  status = read_credentials(&r);
  if (status) {
    goto out;
  }
  const struct config_sources *src = &r.cfg->sources;
  r.acc = calloc(src->ndistricts + 1, sizeof *r.acc);
  if (!r.acc) {
    fprintf(errs, "iocd: out of memory\n");
    status = 1;
    goto out;
  }
  for (size_t i = 0; i < src->ndistricts && !status; i++) {
    status = add_account(&r, src->districts[i], NULL);
  }
  if (!status) {
    status = add_account(&r, user, config_pw);
  }
  if (!status) {
    status = write_credentials(&r);
  }
  if (!status) {
    status = write_passwd(&r);
  }
  if (!status) {
    status = write_file(&r, "acl", &acl, 0644);
  }
  if (status) {
    goto out;
  }
  fprintf(out, "%s: %zu accounts (%zu districts and iocd's \"%s\")\n",
          o->out_dir, r.nacc, r.nacc - 1, user);
  summary_line(&r, "added", ACC_ADDED);
  summary_line(&r, "kept", ACC_KEPT);
  summary_line(&r, "changed to mqtt.password", ACC_CHANGED);
  summary_line(&r, "removed", ACC_REMOVED);
  fprintf(out,
          "Wrote %s/credentials (0600: hand each district its line), "
          "%s/passwd (hashed) and %s/acl.\n",
          o->out_dir, o->out_dir, o->out_dir);
  if (!config_pw) {
    fprintf(out,
            "iocd logs in as \"%s\" with the password on its line of "
            "%s/credentials (mqtt.username, mqtt.password).\n",
            user, o->out_dir);
  }
out:
  for (size_t i = 0; i < r.nacc; i++) {
    free(r.acc[i].password);
  }
  free(r.acc);
  creds_free(&r);
  config_free(r.cfg);
  buf_cleanup(&acl);
  return status;
}
