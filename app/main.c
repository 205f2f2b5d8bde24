/*
 * iocd's command line: run the service, validate a configuration, print
 * help or the version. Only this file exits the process.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/broker_cli.h"
#include "app/rules_cli.h"
#include "app/service.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

#define DEFAULT_CONFIG "/etc/iocd/iocd.jsonc"

static void usage(FILE *out) {
  fprintf(out,
          "Usage: iocd [run] [-c FILE]     run the service\n"
          "       iocd check [-c FILE]     validate FILE and exit 0 (valid) "
          "or 1\n"
          "       iocd rules test FILE...  run rule unit tests; exit 0 when "
          "all pass,\n"
          "                                1 otherwise "
          "(docs/rules-guide.md)\n"
          "       iocd broker-accounts [-c FILE] -o DIR [--iocd-user NAME]\n"
          "                                write mosquitto's accounts and "
          "ACL for the\n"
          "                                districts and iocd "
          "(docs/security.md)\n"
          "       iocd --help | --version\n"
          "\n"
          "Options:\n"
          "  -c, --config FILE   configuration file (JSON with comments);\n"
          "                      default: $IOCD_CONFIG, else " DEFAULT_CONFIG
          "\n"
          "  -h, --help          this help\n"
          "  -V, --version       print the version\n"
          "\n"
          "Signals: SIGINT/SIGTERM stop after flushing buffered points;\n"
          "SIGHUP reloads the configuration (kept only if it is valid).\n"
          "Documentation: README.md and docs/ in the source tree.\n");
}

static int load(const char *path, struct config **cfg) {
  struct buf errors;
  buf_init(&errors, 1 << 20);
  int rc = config_load(path, cfg, &errors);
  if (rc) {
    if (errors.len) {
      fprintf(stderr, "%s%s", errors.data,
              errors.data[errors.len - 1] == '\n' ? "" : "\n");
    } else {
      fprintf(stderr, "%s: %s\n", path, iocd_strerror(rc));
    }
  }
  buf_cleanup(&errors);
  return rc;
}

/* `iocd broker-accounts`: its options from argv[i..argc). */
static int broker_accounts(int argc, char **argv, int i, const char *path) {
  struct broker_cli_opts o = {.config_path = path};
  for (; i < argc; i++) {
    const char *a = argv[i];
    const char **to = NULL;
    if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
      to = &o.config_path;
    } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
      to = &o.out_dir;
    } else if (strcmp(a, "--iocd-user") == 0) {
      to = &o.iocd_user;
    } else if (strcmp(a, "--mosquitto-passwd") == 0) {
      to = &o.mosquitto_passwd;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "iocd: broker-accounts: unknown option '%s'\n", a);
      return 1;
    }
    if (i + 1 >= argc || !*argv[i + 1]) {
      fprintf(stderr, "iocd: broker-accounts: %s needs a value\n", a);
      return 1;
    }
    *to = argv[++i];
  }
  if (!o.out_dir) {
    fprintf(stderr,
            "iocd: usage: iocd broker-accounts [-c FILE] -o DIR "
            "[--iocd-user NAME]\n");
    return 1;
  }
  return broker_cli_accounts(&o, stdout, stderr);
}

/* Whether msg starts with "FILE:LINE:COL: ". */
static bool located(const char *msg) {
  const char *p = strchr(msg, ':');
  for (int part = 0; p && part < 2; part++) {
    if (p[1] < '0' || p[1] > '9') {
      return false;
    }
    p++;
    while (*p >= '0' && *p <= '9') {
      p++;
    }
    if (*p != ':') {
      return false;
    }
  }
  return p && p[1] == ' ';
}

int main(int argc, char **argv) {
  const char *cmd = "run";
  const char *path = getenv("IOCD_CONFIG");
  if (!path || !*path) {
    path = DEFAULT_CONFIG;
  }
  int i = 1;
  if (i < argc && argv[i][0] != '-') {
    cmd = argv[i++];
  }
  if (strcmp(cmd, "rules") == 0) {
    if (i + 1 >= argc || strcmp(argv[i], "test") != 0) {
      fprintf(stderr, "iocd: usage: iocd rules test FILE...\n");
      return 1;
    }
    i++;
    return rules_cli_test((const char *const *)&argv[i], (size_t)(argc - i),
                          stdout, stderr);
  }
  if (strcmp(cmd, "broker-accounts") == 0) {
    return broker_accounts(argc, argv, i, path);
  }
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
      printf("iocd %s\n", IOCD_VERSION);
      return 0;
    }
    if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "iocd: %s needs a file name\n", a);
        return 1;
      }
      path = argv[++i];
      continue;
    }
    if (strncmp(a, "--config=", 9) == 0) {
      path = a + 9;
      continue;
    }
    fprintf(stderr, "iocd: unknown option '%s'\n\n", a);
    usage(stderr);
    return 1;
  }

  if (!*path) {
    fprintf(stderr, "iocd: -c was given an empty file name\n");
    return 1;
  }
  if (strcmp(cmd, "check") == 0) {
    struct config *cfg = NULL;
    if (load(path, &cfg)) {
      return 1;
    }
    struct iocd_err err = {{0}};
    int rc = service_check(cfg, &err);
    if (rc) {
      /* A message about a rule already starts with its FILE:LINE:COL. */
      fprintf(stderr, "%s%s%s\n", located(err.msg) ? "" : path,
              located(err.msg) ? "" : ": ", err.msg);
    } else {
      printf("%s: OK (%zu subscription%s, %zu rule%s, outputs:%s%s)\n", path,
             cfg->nsubs, cfg->nsubs == 1 ? "" : "s", cfg->rules.n,
             cfg->rules.n == 1 ? "" : "s",
             cfg->influx.enabled ? " influxdb" : "",
             cfg->file.enabled ? " file" : "");
    }
    config_free(cfg);
    return rc ? 1 : 0;
  }
  if (strcmp(cmd, "run") != 0) {
    fprintf(stderr, "iocd: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 1;
  }
  /* A reload asked for while iocd is still starting (before the service
   * installs its handler) must not end it: SIGHUP's default action would. */
  signal(SIGHUP, SIG_IGN);
  struct config *cfg = NULL;
  if (load(path, &cfg)) {
    return 1;
  }
  return service_run(cfg);
}
