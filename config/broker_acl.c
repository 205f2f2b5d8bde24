/*
 * mosquitto's ACL file from iocd's configuration. The file's grammar, as
 * mosquitto 2.0 reads it: a "user NAME" line takes the rest of the line as
 * the name, and "topic ACCESS TOPIC" the rest after ACCESS as the topic, so
 * names and topics with spaces need no quoting (there is none); lines
 * before the first "user" line would apply to anonymous clients, so the
 * file starts with comments only. Each district's block lists the topics
 * it may publish, iocd's block what it reads and writes.
 */
#include "config/broker_acl.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/utf8.h"

/* MQTT strings (user names, topics) are at most 65535 bytes. */
#define MQTT_STRING_MAX 65535u

int broker_acl_check_name(const char *name, struct iocd_err *err) {
  size_t n = name ? strlen(name) : 0;
  size_t bad;
  if (n == 0) {
    return iocd_err_set(err, IOCD_EINVAL, "the name is empty");
  }
  if (n > MQTT_STRING_MAX) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "%zu bytes; an MQTT user name has at most 65535", n);
  }
  if (!utf8_valid(name, n, &bad)) {
    return iocd_err_set(err, IOCD_EINVAL, "invalid UTF-8 at byte %zu", bad + 1);
  }
  if (name[0] == ' ' || name[n - 1] == ' ') {
    return iocd_err_set(err, IOCD_EINVAL,
                        "a space at the start or the end is lost in "
                        "mosquitto's files (its login is refused)");
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)name[i];
    if (c < 0x20 || c == 0x7f ||
        (c == 0xC2 && i + 1 < n && (unsigned char)name[i + 1] >= 0x80 &&
         (unsigned char)name[i + 1] <= 0x9F)) {
      return iocd_err_set(err, IOCD_EINVAL,
                          "control character at byte %zu: the files are "
                          "one account per line",
                          i + 1);
    }
    if (c == ':') {
      return iocd_err_set(err, IOCD_EINVAL,
                          "':' separates the name from the password hash "
                          "in mosquitto's password file");
    }
    if (c == '/' || c == '+' || c == '#') {
      return iocd_err_set(err, IOCD_EINVAL,
                          "'%c' cannot be part of a topic level", c);
    }
  }
  return IOCD_OK;
}

/* Appends pattern with {district} as district (NULL: '+' like the other
 * captures). */
static int render_topic(const char *pattern, const char *district,
                        struct buf *out) {
  int rc = IOCD_OK;
  for (const char *p = pattern; p && !rc;) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (n >= 2 && p[0] == '{' && p[n - 1] == '}') {
      bool is_district = n == 10 && memcmp(p, "{district}", 10) == 0;
      rc = buf_puts(out, is_district && district ? district : "+");
    } else {
      rc = buf_append(out, p, n);
    }
    if (!rc && slash) {
      rc = buf_putc(out, '/');
    }
    p = slash ? slash + 1 : NULL;
  }
  return rc;
}

int broker_acl_district_topic(const char *pattern, const char *district,
                              struct buf *out) {
  return render_topic(pattern, district, out);
}

static bool has_district_level(const char *pattern) {
  for (const char *p = pattern; p;) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (n == 10 && memcmp(p, "{district}", 10) == 0) {
      return true;
    }
    p = slash ? slash + 1 : NULL;
  }
  return false;
}

/* The lines of one user's block, without repeats: two subscriptions may
 * give the same topic. */
struct block {
  char **lines;
  size_t n, cap;
};

static int block_add(struct block *b, const char *access, const char *topic,
                     size_t tlen) {
  struct buf line;
  buf_init(&line, (size_t)MQTT_STRING_MAX + 64);
  int rc = buf_printf(&line, "topic %s ", access);
  if (!rc) {
    rc = buf_append(&line, topic, tlen);
  }
  if (rc) {
    buf_cleanup(&line);
    return rc;
  }
  for (size_t i = 0; i < b->n; i++) {
    if (strcmp(b->lines[i], line.data) == 0) {
      buf_cleanup(&line);
      return IOCD_OK;
    }
  }
  rc = mem_grow((void **)&b->lines, &b->cap, b->n, sizeof *b->lines);
  if (rc) {
    buf_cleanup(&line);
    return rc;
  }
  b->lines[b->n++] = buf_detach(&line, NULL);
  return IOCD_OK;
}

static int block_flush(struct block *b, struct buf *out) {
  int rc = IOCD_OK;
  for (size_t i = 0; i < b->n; i++) {
    if (!rc) {
      rc = buf_printf(out, "%s\n", b->lines[i]);
    }
    free(b->lines[i]);
  }
  free(b->lines);
  *b = (struct block){0};
  return rc;
}

/* One district's block: "user NAME" and its topics. */
static int district_block(const struct config *cfg, const char *district,
                          struct buf *out) {
  struct block b = {0};
  struct buf topic;
  buf_init(&topic, (size_t)MQTT_STRING_MAX * 2);
  int rc = IOCD_OK;
  for (size_t i = 0; i < cfg->nsubs && !rc; i++) {
    if (!has_district_level(cfg->subs[i].topic)) {
      continue;
    }
    buf_reset(&topic);
    rc = render_topic(cfg->subs[i].topic, district, &topic);
    if (!rc) {
      rc = block_add(&b, "write", topic.data, topic.len);
    }
  }
  if (!rc) {
    rc = buf_printf(out, "\n# District %s\nuser %s\n", district, district);
  }
  int frc = block_flush(&b, out);
  buf_cleanup(&topic);
  return rc ? rc : frc;
}

static int iocd_block(const struct config *cfg, const char *user,
                      struct buf *out) {
  struct block b = {0};
  struct buf topic;
  buf_init(&topic, (size_t)MQTT_STRING_MAX * 2);
  int rc = IOCD_OK;
  for (size_t i = 0; i < cfg->nsubs && !rc; i++) {
    buf_reset(&topic);
    rc = render_topic(cfg->subs[i].topic, NULL, &topic);
    if (!rc) {
      rc = block_add(&b, "read", topic.data, topic.len);
    }
  }
  for (size_t i = 0; i < cfg->nsubs && !rc; i++) {
    const char *dl = cfg->subs[i].dead_letter;
    if (dl) {
      rc = block_add(&b, "write", dl, strlen(dl));
    }
  }
  for (size_t i = 0; i < cfg->notify.nreceivers && !rc; i++) {
    const struct config_receiver *r = &cfg->notify.receivers[i];
    if (r->type != CONFIG_RECV_MQTT || !r->topic_prefix) {
      continue;
    }
    buf_reset(&topic);
    rc = buf_printf(&topic, "%s/#", r->topic_prefix);
    if (!rc) {
      rc = block_add(&b, "write", topic.data, topic.len);
    }
  }
  if (!rc) {
    rc = buf_printf(out,
                    "\n# iocd: reads every subscription, writes its dead "
                    "letters and MQTT alerts\nuser %s\n",
                    user);
  }
  int frc = block_flush(&b, out);
  buf_cleanup(&topic);
  return rc ? rc : frc;
}

int broker_acl_render(const struct config *cfg, const char *iocd_user,
                      struct buf *out, struct iocd_err *err) {
  const struct config_sources *src = &cfg->sources;
  if (src->ndistricts == 0) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "sources.districts is empty: there is no district "
                        "to make an account for");
  }
  for (size_t i = 0; i < src->ndistricts; i++) {
    if (broker_acl_check_name(src->districts[i], err)) {
      iocd_err_prefix(err,
                      "sources.districts[%zu] \"%s\" cannot be an "
                      "account",
                      i, src->districts[i]);
      return IOCD_EINVAL;
    }
    if (strcmp(src->districts[i], iocd_user) == 0) {
      return iocd_err_set(err, IOCD_EINVAL,
                          "iocd's account \"%s\" is also the name of "
                          "sources.districts[%zu]; choose another with "
                          "--iocd-user",
                          iocd_user, i);
    }
  }
  if (broker_acl_check_name(iocd_user, err)) {
    iocd_err_prefix(err, "iocd's account \"%s\"", iocd_user);
    return IOCD_EINVAL;
  }
  int rc = buf_printf(out,
                      "# mosquitto acl_file for iocd, written by `iocd "
                      "broker-accounts` from %s.\n"
                      "# Regenerate it after changing the subscriptions or "
                      "sources.districts\n"
                      "# instead of editing it. Each district may publish "
                      "only its own topics;\n"
                      "# iocd reads them all. No line grants anything to "
                      "anonymous clients.\n",
                      cfg->path ? cfg->path : "the configuration");
  for (size_t i = 0; i < src->ndistricts && !rc; i++) {
    rc = district_block(cfg, src->districts[i], out);
  }
  if (!rc) {
    rc = iocd_block(cfg, iocd_user, out);
  }
  if (rc) {
    return iocd_err_set(err, rc, "the ACL: %s", iocd_strerror(rc));
  }
  return IOCD_OK;
}
