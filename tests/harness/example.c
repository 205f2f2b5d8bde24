/*
 * The example configuration (config/iocd.example.jsonc) and its default
 * rules (config/rules/daklak.jsonc) adapted for a test: the test's servers
 * and directory, and, as the test asks, rules that decide in seconds and a
 * calendar that works around the clock. Tests that run iocd-sim against
 * them (test_sim.c, test_dashboards.c) see what an operator of the example
 * would, in a minute. The adaptations replace texts of the example: when
 * the example changes so that one is no longer there, the test fails
 * naming it instead of running on a configuration it did not mean.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "tests/harness/harness.h"

/* Builds head + with + tail into *text; -1 on no memory (*text kept). */
static int splice(char **text, size_t head, const char *with,
                  const char *tail) {
  struct buf b;
  buf_init(&b, 0);
  if (buf_append(&b, *text, head) || buf_puts(&b, with) || buf_puts(&b, tail)) {
    buf_cleanup(&b);
    fprintf(stderr, "harness: out of memory\n");
    return -1;
  }
  free(*text);
  *text = buf_detach(&b, NULL);
  return 0;
}

int h_text_replace(char **text, const char *from, const char *to) {
  char *p = strstr(*text, from);
  if (!p) {
    fprintf(stderr, "harness: not in the text: %s\n", from);
    return -1;
  }
  return splice(text, (size_t)(p - *text), to, p + strlen(from));
}

int h_text_cut(char **text, const char *from, const char *to,
               const char *with) {
  char *a = strstr(*text, from);
  char *z = a ? strstr(a + strlen(from), to) : NULL;
  if (!z) {
    fprintf(stderr, "harness: not in the text: %s ... %s\n", from, to);
    return -1;
  }
  return splice(text, (size_t)(a - *text), with, z);
}

/* Sets the value of every "key": "..." in *text to value. Returns how many
 * it set, or -1 on no memory. */
static int set_every(char **text, const char *key, const char *value) {
  char pat[64], with[128];
  snprintf(pat, sizeof pat, "\"%s\": \"", key);
  snprintf(with, sizeof with, "%s%s", pat, value);
  int n = 0;
  size_t off = 0;
  char *p;
  while ((p = strstr(*text + off, pat)) != NULL) {
    const char *end = strchr(p + strlen(pat), '"');
    if (!end) {
      break;
    }
    size_t at = (size_t)(p - *text);
    if (splice(text, at, with, end) != 0) {
      return -1;
    }
    off = at + strlen(with);
    n++;
  }
  return n;
}

/* The rules file, adapted, written to e->dir/rules.jsonc (path). */
static int write_rules(const char *path, const struct h_example_opts *o) {
  char *rules = h_read_file(IOCD_SOURCE_DIR "/config/rules/daklak.jsonc", NULL);
  if (!rules) {
    return -1;
  }
  int rc = 0;
  if (o->rule_for && set_every(&rules, "for", o->rule_for) < 3) {
    fprintf(stderr, "harness: the example rules have no \"for\" to set\n");
    rc = -1;
  }
  if (!rc && o->silent_after) {
    char to[64];
    snprintf(to, sizeof to, "age(_source.seen) > %s", o->silent_after);
    rc = h_text_replace(&rules, "age(_source.seen) > 10m", to);
  }
  rc = rc ? rc : h_write_file(path, rules);
  free(rules);
  return rc;
}

char *h_example_config(const struct h_env *e, const struct h_example_opts *o) {
  static const struct h_example_opts as_written = {0};
  o = o ? o : &as_written;
  char rules_path[512], tmp[600];
  snprintf(rules_path, sizeof rules_path, "%s/rules.jsonc", e->dir);
  if (write_rules(rules_path, o) != 0) {
    return NULL;
  }
  char *cfg = h_read_file(IOCD_SOURCE_DIR "/config/iocd.example.jsonc", NULL);
  if (!cfg) {
    return NULL;
  }
  int rc = 0;
  snprintf(tmp, sizeof tmp, "\"data_dir\": \"%s/data\"", e->dir);
  rc = rc ? rc : h_text_replace(&cfg, "\"data_dir\": \"./var/iocd\"", tmp);
  snprintf(tmp, sizeof tmp, "\"port\": %d,", e->mq.port);
  rc = rc ? rc : h_text_replace(&cfg, "\"port\": 1883,", tmp);
  snprintf(tmp, sizeof tmp, "\"url\": \"%s\"", e->db.url);
  rc =
      rc ? rc : h_text_replace(&cfg, "\"url\": \"http://127.0.0.1:8086\"", tmp);
  snprintf(tmp, sizeof tmp, "\"listen\": \"127.0.0.1:%d\"", e->api_port);
  rc = rc ? rc : h_text_replace(&cfg, "\"listen\": \"127.0.0.1:8080\"", tmp);
  snprintf(tmp, sizeof tmp, "\"rule_files\": [\"%s\"]", rules_path);
  rc = rc ? rc
          : h_text_replace(&cfg, "\"rule_files\": [\"rules/daklak.jsonc\"]",
                           tmp);
  if (o->always_office) {
    rc = rc ? rc
            : h_text_replace(
                  &cfg, "\"office_hours\": [\"07:30-11:30\", \"13:30-17:00\"]",
                  "\"office_hours\": [\"00:00-24:00\"]");
    rc = rc ? rc
            : h_text_replace(&cfg,
                             "\"weekdays\": [\"mon\", \"tue\", \"wed\", "
                             "\"thu\", \"fri\"]",
                             "\"weekdays\": [\"mon\", \"tue\", \"wed\", "
                             "\"thu\", \"fri\", \"sat\", \"sun\"]");
    rc = rc ? rc
            : h_text_cut(&cfg, "\"holidays\": [", "\n    // Make-up",
                         "\"holidays\": [],");
    rc = rc ? rc
            : h_text_cut(&cfg, "\"workdays\": [", "\n  },", "\"workdays\": []");
  }
  if (o->evaluation_interval) {
    snprintf(tmp, sizeof tmp, "\"evaluation_interval\": \"%s\"",
             o->evaluation_interval);
    rc =
        rc ? rc : h_text_replace(&cfg, "\"evaluation_interval\": \"15s\"", tmp);
  }
  if (o->self_metrics_interval) {
    snprintf(tmp, sizeof tmp, "\"interval\": \"%s\"", o->self_metrics_interval);
    rc = rc ? rc : h_text_replace(&cfg, "\"interval\": \"10s\"", tmp);
  }
  if (o->limits_silent_after) {
    snprintf(tmp, sizeof tmp, "\"silent_after\": \"%s\"",
             o->limits_silent_after);
    rc = rc ? rc : h_text_replace(&cfg, "\"silent_after\": \"10m\"", tmp);
  }
  if (rc) {
    fprintf(stderr, "harness: the example configuration was not adapted\n");
    free(cfg);
    return NULL;
  }
  return cfg;
}
