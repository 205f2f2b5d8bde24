/*
 * The broker's accounts, derived from iocd's configuration: one MQTT
 * account per district of sources.districts, named exactly as the district
 * (mosquitto 2.0 takes such names, spaces and diacritics included, in its
 * password and ACL files), and one for iocd itself. broker_acl_render
 * writes mosquitto's acl_file: each district may publish only the topics
 * the subscriptions expect from it, iocd's account may read every
 * subscription and publish its dead letters and MQTT alerts, and nobody
 * else may do anything. Pure: the command that writes the files is
 * app/broker_cli.c (`iocd broker-accounts`); docs/security.md explains the
 * scheme.
 */
#ifndef IOCD_CONFIG_BROKER_ACL_H
#define IOCD_CONFIG_BROKER_ACL_H

#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"

/* Whether name can be an account: a user name in mosquitto's password file
 * ("NAME:HASH" lines) and ACL file ("user NAME"), and a topic level. It
 * must be non-empty valid UTF-8 of at most 65535 bytes, without control
 * characters, ':', '/', '+' or '#', and without a space at either end.
 * Returns IOCD_OK, or IOCD_EINVAL with err saying which rule it breaks. */
int broker_acl_check_name(const char *name, struct iocd_err *err);

/* A subscription's topic pattern as the topic one district publishes to,
 * for the ACL: the {district} level becomes district, any other {name}
 * capture '+', and literal levels, '+' and '#' stay. Appends it to out.
 * Returns IOCD_OK or a buf_* error. */
int broker_acl_district_topic(const char *pattern, const char *district,
                              struct buf *out);

/* Appends to out the ACL file for cfg: a "user" block per district of
 * cfg->sources.districts granting "topic write" on each subscription topic
 * that has a {district} level (broker_acl_district_topic), then a block
 * for iocd_user (borrowed) granting "topic read" on every subscription's
 * filter ({name} captures as '+') and "topic write" on every dead_letter
 * topic and on TOPIC_PREFIX/# of every "mqtt" receiver. Returns IOCD_OK;
 * IOCD_EINVAL with err when there are no districts, a name is not a valid
 * account (broker_acl_check_name) or iocd_user is also a district; or
 * IOCD_ENOMEM. */
int broker_acl_render(const struct config *cfg, const char *iocd_user,
                      struct buf *out, struct iocd_err *err);

#endif
