/*
 * Fuzz target: the configuration as `iocd check` validates it, on
 * arbitrary bytes: config_load_text, then service_check (topic patterns,
 * dead-letter loops, the rules engine). A refused text must say why. An
 * accepted one must be usable as it stands, because these are the only
 * gates before iocd runs on it:
 *
 *   - no string held a \u0000 escape (a C string ends there, so
 *     "ab\u0000cd" would silently become "ab");
 *   - the names a point or a topic is made of (measurements, fields, tag
 *     keys and values, topics, the dead-letter topic) hold no control
 *     character and are not empty, and a point made of a subscription's
 *     measurement, static tags and field passes the store's line-protocol
 *     check (else every point of it would be refused);
 *   - topics fit MQTT's 65,535 bytes, and the dead-letter topic, which is
 *     published to, holds no wildcard;
 *   - config_diff of the configuration with itself finds nothing changed.
 */
#include <stdlib.h>
#include <string.h>

#include "app/service.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/lp.h"
#include "core/utf8.h"
#include "fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  log_set_level(LOG_ERROR);
  return 0;
}

/* The offset of the first \u0000 inside a string of the JSON-with-comments
 * text s, or SIZE_MAX: comments are skipped, and a backslash escapes the
 * byte after it, as cJSON reads strings. */
static size_t nul_escape(const char *s, size_t n) {
  bool in_str = false;
  for (size_t i = 0; i < n; i++) {
    if (in_str) {
      if (s[i] == '\\' && i + 1 < n) {
        if (n - i >= 6 && !memcmp(s + i, "\\u0000", 6)) {
          return i;
        }
        i++;
      } else if (s[i] == '"') {
        in_str = false;
      }
    } else if (s[i] == '"') {
      in_str = true;
    } else if (s[i] == '/' && i + 1 < n && s[i + 1] == '/') {
      while (i < n && s[i] != '\n') {
        i++;
      }
    } else if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
      for (i += 2; i + 1 < n && !(s[i] == '*' && s[i + 1] == '/'); i++) {
      }
      i++;
    }
  }
  return SIZE_MAX;
}

/* A control character: C0, DEL, or C1 (U+0080..U+009F, C2 80..C2 9F). */
static bool has_control(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p < 0x20 || *p == 0x7f ||
        (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)) {
      return true;
    }
  }
  return false;
}

/* A name of subscription i (what says which): set, it must be a name. */
static void check_name(size_t i, const char *what, const char *s) {
  if (!s) {
    return;
  }
  if (!*s) {
    fuzz_fail("subscriptions[%zu].%s: accepted empty", i, what);
  }
  if (!utf8_valid(s, strlen(s), NULL)) {
    fuzz_fail("subscriptions[%zu].%s: accepted, not UTF-8", i, what);
  }
  if (has_control(s)) {
    fuzz_fail("subscriptions[%zu].%s: accepted with a control character", i,
              what);
  }
}

static void check_topic(size_t i, const char *what, const char *s,
                        bool publish) {
  if (s && strlen(s) > 65535) {
    fuzz_fail("subscriptions[%zu].%s: accepted with %zu bytes", i, what,
              strlen(s));
  }
  if (s && publish && strpbrk(s, "+#")) {
    fuzz_fail("subscriptions[%zu].%s: accepted with a wildcard", i, what);
  }
}

/* The point every message of sub makes at least: its fixed measurement,
 * its static tags and its default field. */
static void check_point(size_t i, const struct config_subscription *sub) {
  if (!sub->measurement) {
    return;
  }
  struct point_batch pb;
  pb_init(&pb);
  struct point *p =
      pb_point_new(&pb, sub->measurement, strlen(sub->measurement));
  int rc = p ? IOCD_OK : IOCD_ENOMEM;
  for (size_t k = 0; k < sub->ntags && !rc; k++) {
    const struct config_kv *kv = &sub->tags[k];
    if (kv->key && kv->value) {
      rc = pb_tag(&pb, p, kv->key, strlen(kv->key), kv->value,
                  strlen(kv->value), false);
    }
  }
  const char *field = sub->field ? sub->field : "value";
  if (!rc) {
    rc = pb_field_float(&pb, p, field, strlen(field), 1.0);
  }
  struct iocd_err err = {{0}};
  if (!rc && lp_check_point(&pb, p, &err)) {
    fuzz_fail(
        "subscriptions[%zu]: accepted, and the store refuses its points: "
        "%s",
        i, err.msg);
  }
  pb_cleanup(&pb);
}

static void check_accepted(const char *text, size_t len,
                           const struct config *cfg) {
  size_t at = nul_escape(text, len);
  if (at != SIZE_MAX) {
    fuzz_fail("accepted a \\u0000 escape at byte %zu", at + 1);
  }
  for (size_t i = 0; i < cfg->nsubs; i++) {
    const struct config_subscription *s = &cfg->subs[i];
    check_name(i, "name", s->name);
    check_name(i, "topic", s->topic);
    check_name(i, "measurement", s->measurement);
    check_name(i, "field", s->field);
    check_name(i, "time_key", s->time_key);
    check_name(i, "measurement_key", s->measurement_key);
    check_name(i, "dead_letter", s->dead_letter);
    for (size_t k = 0; k < s->ntag_keys; k++) {
      check_name(i, "tag_keys[]", s->tag_keys[k]);
    }
    for (size_t k = 0; k < s->ntags; k++) {
      check_name(i, "tags key", s->tags[k].key);
      check_name(i, "tags value", s->tags[k].value);
    }
    for (size_t k = 0; k < s->ntypes; k++) {
      check_name(i, "types measurement", s->types[k].measurement);
      check_name(i, "types field", s->types[k].field);
    }
    check_topic(i, "topic", s->topic, false);
    check_topic(i, "dead_letter", s->dead_letter, true);
    check_point(i, s);
  }
  struct buf diff;
  buf_init(&diff, 0);
  if (!config_diff(cfg, cfg, &diff) &&
      strcmp(diff.data ? diff.data : "", "nothing changed") != 0) {
    fuzz_fail("config_diff of a configuration with itself: %s", diff.data);
  }
  buf_cleanup(&diff);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  struct config *cfg = NULL;
  struct buf errors;
  buf_init(&errors, 0);
  int rc = config_load_text("fuzz.jsonc", text, size, &cfg, &errors);
  if (rc == IOCD_OK) {
    if (!cfg) {
      fuzz_fail("accepted without a configuration");
    }
    struct iocd_err err = {{0}};
    if (service_check(cfg, &err) == IOCD_OK) {
      check_accepted(text, size, cfg);
    } else if (!err.msg[0]) {
      fuzz_fail("refused by service_check without saying why");
    }
  } else {
    if (cfg) {
      fuzz_fail("refused (%s) with a configuration", iocd_strerror(rc));
    }
    if (rc != IOCD_ENOMEM && errors.len == 0) {
      fuzz_fail("refused (%s) without saying why", iocd_strerror(rc));
    }
  }
  config_free(cfg);
  buf_cleanup(&errors);
  return 0;
}
