/*
 * Alert state to and from text, so that a restart neither re-notifies nor
 * forgets: every instance that is not inactive is written with its rule's
 * definition hash, and restored only into a rule whose hash still matches
 * (a changed rule starts afresh). Pure: the caller reads and writes the
 * file.
 *
 * The text is one JSON object:
 *
 *   {"version": 1, "alerts": [{"rule": "online_share",
 *     "hash": "9f2c...", "group": {"district": "Lắk"},
 *     "state": "firing", "level": 1, "severity": "warning",
 *     "since": "1614565200000000000", ...}]}
 *
 * Times are nanoseconds since the epoch written as decimal strings: a JSON
 * number is a double and would lose the last digits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "rules/engine.h"
#include "rules/engine_int.h"

#define STATE_VERSION 1
#define STATE_MAX_BYTES (256u * 1024u * 1024u)

static int put_json_string(struct buf *b, const char *s) {
  int rc = buf_putc(b, '"');
  for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
    switch (*p) {
      case '"':
        rc = buf_puts(b, "\\\"");
        break;
      case '\\':
        rc = buf_puts(b, "\\\\");
        break;
      case '\n':
        rc = buf_puts(b, "\\n");
        break;
      case '\r':
        rc = buf_puts(b, "\\r");
        break;
      case '\t':
        rc = buf_puts(b, "\\t");
        break;
      default:
        if (*p < 0x20) {
          rc = buf_printf(b, "\\u%04x", *p);
        } else {
          rc = buf_putc(b, (char)*p);
        }
    }
  }
  return rc ? rc : buf_putc(b, '"');
}

static int put_time(struct buf *b, const char *key, int64_t t) {
  return buf_printf(b, ",\"%s\":\"%lld\"", key, (long long)t);
}

static int put_double(struct buf *b, const char *key, double v) {
  /* 17 significant digits read back to the same double. */
  return buf_printf(b, ",\"%s\":%.17g", key, v);
}

static int save_inst(struct buf *b, const struct rule *r,
                     const struct inst *in, bool first) {
  int rc = buf_puts(b, first ? "\n{\"rule\":" : ",\n{\"rule\":");
  if (!rc) {
    rc = put_json_string(b, r->name);
  }
  if (!rc) {
    rc = buf_printf(b, ",\"hash\":\"%s\",\"group\":{", r->hash);
  }
  for (size_t i = 0; i < r->nby && !rc; i++) {
    if (i) {
      rc = buf_putc(b, ',');
    }
    if (!rc) {
      rc = put_json_string(b, r->by[i]);
    }
    if (!rc) {
      rc = buf_putc(b, ':');
    }
    if (!rc) {
      rc = put_json_string(b, in->values[i]);
    }
  }
  if (!rc) {
    rc = buf_printf(b, "},\"state\":\"%s\",\"level\":%d",
                    alert_state_name(in->a.state), in->a.level);
  }
  if (!rc && in->a.level > 0 && (size_t)in->a.level <= r->nlevels) {
    rc = buf_puts(b, ",\"severity\":");
    if (!rc) {
      rc = put_json_string(b, r->levels[in->a.level - 1].severity);
    }
  }
  if (!rc) {
    rc = put_time(b, "since", in->a.since_ns);
  }
  if (!rc) {
    rc = put_time(b, "pending_since", in->a.pending_since_ns);
  }
  if (!rc) {
    rc = put_time(b, "firing_since", in->a.firing_since_ns);
  }
  if (!rc) {
    rc = put_time(b, "false_since", in->a.false_since_ns);
  }
  if (!rc) {
    rc = put_time(b, "keep_firing_since", in->a.keep_since_ns);
  }
  if (!rc) {
    rc = put_time(b, "last_eval", in->a.last_eval_ns);
  }
  if (!rc && in->has_value) {
    rc = put_double(b, "value", in->value);
  }
  if (!rc && in->has_threshold) {
    rc = put_double(b, "threshold", in->threshold);
  }
  if (!rc) {
    rc = buf_printf(b, ",\"by\":\"%s\",\"reason\":",
                    alert_trigger_name(in->by));
  }
  if (!rc) {
    rc = put_json_string(b, in->reason ? in->reason : "");
  }
  if (!rc) {
    rc = put_time(b, "reason_at", in->reason_ns);
  }
  return rc ? rc : buf_putc(b, '}');
}

int engine_state_save(const struct engine *e, struct buf *out) {
  int rc = buf_printf(out, "{\"version\":%d,\"alerts\":[", STATE_VERSION);
  bool first = true;
  size_t n = engine__nrules(e);
  for (size_t i = 0; i < n && !rc; i++) {
    const struct rule *r = engine__rule_at(e, i);
    for (size_t k = 0; k < r->ninsts && !rc; k++) {
      const struct inst *in = r->insts[k];
      if (in->a.state == ALERT_INACTIVE) {
        continue;
      }
      rc = save_inst(out, r, in, first);
      first = false;
    }
  }
  return rc ? rc : buf_puts(out, "\n]}\n");
}

/* ---- restore ------------------------------------------------------------- */

static int corrupt(struct iocd_err *err, size_t i, const char *key,
                   const char *what) {
  return iocd_err_set(err, IOCD_ECORRUPT, "state: alerts[%zu].%s: %s", i, key,
                      what);
}

static int get_time(const cJSON *o, const char *key, size_t i, int64_t *out,
                    struct iocd_err *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  *out = 0;
  if (!v) {
    return IOCD_OK;
  }
  if (!cJSON_IsString(v)) {
    return corrupt(err, i, key, "expected a time in a string");
  }
  errno = 0;
  char *end;
  long long x = strtoll(v->valuestring, &end, 10);
  if (errno || end == v->valuestring || *end || x < 0) {
    return corrupt(err, i, key, "not a time in nanoseconds");
  }
  *out = (int64_t)x;
  return IOCD_OK;
}

static const char *get_str(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One parsed entry, checked before anything is restored. */
struct entry {
  const char *rule;
  const char *hash;
  const cJSON *group;
  struct alert a;
  bool has_value, has_threshold;
  double value, threshold;
  const char *reason;
  int64_t reason_ns;
  enum alert_trigger by;
};

static int parse_entry(const cJSON *o, size_t i, struct entry *en,
                       struct iocd_err *err) {
  memset(en, 0, sizeof *en);
  if (!cJSON_IsObject(o)) {
    return iocd_err_set(err, IOCD_ECORRUPT, "state: alerts[%zu]: not an object",
                        i);
  }
  en->rule = get_str(o, "rule");
  if (!en->rule) {
    return corrupt(err, i, "rule", "missing");
  }
  en->hash = get_str(o, "hash");
  if (!en->hash) {
    return corrupt(err, i, "hash", "missing");
  }
  en->group = cJSON_GetObjectItemCaseSensitive(o, "group");
  if (!cJSON_IsObject(en->group)) {
    return corrupt(err, i, "group", "expected an object of labels");
  }
  const char *st = get_str(o, "state");
  if (!st || alert_state_parse(st, &en->a.state) ||
      en->a.state == ALERT_RESOLVED) {
    char what[96];
    snprintf(what, sizeof what, "\"%.40s\" is not a state",
             st ? st : "(missing)");
    return corrupt(err, i, "state", what);
  }
  const cJSON *lv = cJSON_GetObjectItemCaseSensitive(o, "level");
  if (!cJSON_IsNumber(lv) || lv->valuedouble < 0 ||
      lv->valuedouble > ALERT_MAX_LEVELS ||
      lv->valuedouble != (double)lv->valueint) {
    return corrupt(err, i, "level", "not a level");
  }
  en->a.level = lv->valueint;
  bool active = en->a.state == ALERT_PENDING || en->a.state == ALERT_FIRING;
  if (active != (en->a.level > 0)) {
    return corrupt(err, i, "level", "does not match the state");
  }
  int rc = get_time(o, "since", i, &en->a.since_ns, err);
  if (!rc) {
    rc = get_time(o, "pending_since", i, &en->a.pending_since_ns, err);
  }
  if (!rc) {
    rc = get_time(o, "firing_since", i, &en->a.firing_since_ns, err);
  }
  if (!rc) {
    rc = get_time(o, "false_since", i, &en->a.false_since_ns, err);
  }
  if (!rc) {
    rc = get_time(o, "keep_firing_since", i, &en->a.keep_since_ns, err);
  }
  if (!rc) {
    rc = get_time(o, "last_eval", i, &en->a.last_eval_ns, err);
  }
  if (!rc) {
    rc = get_time(o, "reason_at", i, &en->reason_ns, err);
  }
  if (rc) {
    return rc;
  }
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
  if (cJSON_IsNumber(v)) {
    en->has_value = true;
    en->value = v->valuedouble;
  }
  v = cJSON_GetObjectItemCaseSensitive(o, "threshold");
  if (cJSON_IsNumber(v)) {
    en->has_threshold = true;
    en->threshold = v->valuedouble;
  }
  en->reason = get_str(o, "reason");
  en->by = ALERT_BY_RESTORE;
  return IOCD_OK;
}

int engine_state_restore(struct engine *e, const char *text, size_t len,
                         struct engine_restore_report *report,
                         struct iocd_err *err) {
  struct engine_restore_report rep = {0};
  if (report) {
    *report = rep;
  }
  if (!e || !text) {
    return iocd_err_set(err, IOCD_EINVAL, "state: nothing to restore");
  }
  if (len > STATE_MAX_BYTES) {
    return iocd_err_set(err, IOCD_ECORRUPT, "state: larger than %u bytes",
                        STATE_MAX_BYTES);
  }
  cJSON *root = cJSON_ParseWithLength(text, len);
  if (!root) {
    return iocd_err_set(err, IOCD_ECORRUPT, "state: not JSON");
  }
  int rc = IOCD_OK;
  struct entry *entries = NULL;
  const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
  const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(root, "alerts");
  if (!cJSON_IsNumber(ver) || ver->valueint != STATE_VERSION) {
    rc = iocd_err_set(err, IOCD_ECORRUPT, "state: version: expected %d",
                      STATE_VERSION);
    goto out;
  }
  if (!cJSON_IsArray(alerts)) {
    rc = iocd_err_set(err, IOCD_ECORRUPT, "state: alerts: expected a list");
    goto out;
  }
  size_t n = (size_t)cJSON_GetArraySize(alerts);
  entries = calloc(n ? n : 1, sizeof *entries);
  if (!entries) {
    rc = iocd_err_set(err, IOCD_ENOMEM, "state: out of memory");
    goto out;
  }
  /* Check every entry first: a damaged file restores nothing. */
  size_t i = 0;
  const cJSON *o;
  cJSON_ArrayForEach(o, alerts) {
    rc = parse_entry(o, i, &entries[i], err);
    if (rc) {
      goto out;
    }
    i++;
  }
  for (i = 0; i < n; i++) {
    struct entry *en = &entries[i];
    struct rule *r = engine__rule(e, en->rule);
    if (!r) {
      rep.unknown++;
      continue;
    }
    if (strcmp(r->hash, en->hash) != 0) {
      rep.changed++;
      continue;
    }
    const char *vals[16];
    size_t k = 0;
    for (; k < r->nby && k < 16; k++) {
      vals[k] = get_str(en->group, r->by[k]);
      if (!vals[k] || !*vals[k]) {
        break;
      }
    }
    if (k < r->nby || (size_t)en->a.level > r->nlevels) {
      rep.changed++;
      continue;
    }
    struct inst *in = engine__instance(e, r, vals);
    if (!in) {
      rc = iocd_err_set(err, IOCD_ENOMEM, "state: out of memory");
      goto out;
    }
    in->a = en->a;
    in->has_value = en->has_value;
    in->value = en->value;
    in->has_threshold = en->has_threshold;
    in->threshold = en->threshold;
    in->reason_ns = en->reason_ns;
    in->by = en->by;
    if (engine__set_reason(in, en->reason)) {
      rc = iocd_err_set(err, IOCD_ENOMEM, "state: out of memory");
      goto out;
    }
    engine__schedule_restored(e, in);
    rep.restored++;
  }
out:
  free(entries);
  cJSON_Delete(root);
  if (report) {
    *report = rep;
  }
  return rc;
}
