/*
 * `iocd broker-accounts -c iocd.jsonc -o DIR [--iocd-user NAME]`: the
 * broker's accounts for the districts and for iocd, from iocd's own
 * configuration. Writes DIR/credentials (mode 0600: "NAME:PASSWORD" per
 * account, for the administrator to hand out), DIR/passwd (hashed with
 * `mosquitto_passwd -U`, mosquitto's password_file) and DIR/acl
 * (mosquitto's acl_file, config/broker_acl.h). Run again, it keeps every
 * existing account's password, adds accounts for new districts and drops
 * those of districts no longer configured. deploy/mosquitto/README.md and
 * docs/security.md describe its use.
 */
#ifndef IOCD_APP_BROKER_CLI_H
#define IOCD_APP_BROKER_CLI_H

#include <stdio.h>

/* The options of the command; every string is borrowed. */
struct broker_cli_opts {
  const char *config_path;      /* iocd's configuration */
  const char *out_dir;          /* created when missing */
  const char *iocd_user;        /* NULL: mqtt.username, else "iocd" */
  const char *mosquitto_passwd; /* the program; NULL: "mosquitto_passwd"
                                   found on PATH */
};

/* Runs the command. What was written goes to out, problems to errs.
 * Returns the exit status: 0 when every file was written, 1 otherwise
 * (then no file was left half-written: each is replaced atomically, the
 * credentials first, so a password once handed out is never lost). */
int broker_cli_accounts(const struct broker_cli_opts *o, FILE *out, FILE *errs);

#endif
