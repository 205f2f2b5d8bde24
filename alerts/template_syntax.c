/*
 * The {{...}} language of notification templates: parsing into nodes (text,
 * field, block open, block close) and the messages `iocd check` prints for
 * a template that is wrong, with a column counted in characters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/template_int.h"
#include "core/mem.h"

static const struct {
  const char *name;
  enum tpl_field f;
} field_names[] = {
    {"alertname", F_ALERTNAME},
    {"district", F_DISTRICT},
    {"system", F_SYSTEM},
    {"severity", F_SEVERITY},
    {"status", F_STATUS},
    {"value", F_VALUE},
    {"threshold", F_THRESHOLD},
    {"value_pct", F_VALUE_PCT},
    {"threshold_pct", F_THRESHOLD_PCT},
    {"since", F_SINCE},
    {"since_rfc3339", F_SINCE_RFC3339},
    {"until", F_UNTIL},
    {"duration", F_DURATION},
    {"summary", F_SUMMARY},
    {"description", F_DESCRIPTION},
    {"link", F_LINK},
    {"acked_by", F_ACKED_BY},
    {"ack_comment", F_ACK_COMMENT},
    {"id", F_ID},
    {"reason", F_REASON},
    {"tag", F_TAG},
    {"receiver", F_RECEIVER},
    {"count", F_COUNT},
    {"firing_count", F_FIRING_COUNT},
    {"resolved_count", F_RESOLVED_COUNT},
    {"escalation", F_ESCALATION},
    {"notice_text", F_NOTICE_TEXT},
    {"notice_id", F_NOTICE_ID},
};

const char *const template__block_names[3] = {"alerts", "firing", "resolved"};

void template__cleanup(struct tpl *t) {
  free(t->src);
  free(t->v);
  memset(t, 0, sizeof *t);
}

static int tmpl_push(struct tpl *t, struct tpl_node nd) {
  int rc = mem_grow((void **)&t->v, &t->cap, t->n, sizeof *t->v);
  if (rc) {
    return rc;
  }
  t->v[t->n++] = nd;
  return IOCD_OK;
}

/* The first bytes of name[0..n), cut on a character boundary, for a
 * message. */
static int quote_len(const char *name, size_t n) {
  size_t max = 40;
  if (n <= max) {
    return (int)n;
  }
  while (max > 0 && ((unsigned char)name[max] & 0xC0) == 0x80) {
    max--;
  }
  return (int)max;
}

static bool field_lookup(const char *name, size_t n, enum tpl_field *f) {
  for (size_t i = 0; i < sizeof field_names / sizeof field_names[0]; i++) {
    if (strlen(field_names[i].name) == n &&
        memcmp(field_names[i].name, name, n) == 0) {
      *f = field_names[i].f;
      return true;
    }
  }
  return false;
}

static bool block_lookup(const char *name, size_t n, enum tpl_block *b) {
  for (size_t i = 0;
       i < sizeof template__block_names / sizeof template__block_names[0];
       i++) {
    if (strlen(template__block_names[i]) == n &&
        memcmp(template__block_names[i], name, n) == 0) {
      *b = (enum tpl_block)i;
      return true;
    }
  }
  return false;
}

/* Parses one tag, name[0..n) (trimmed), written at offset off. */
static int parse_tag(struct tpl *t, char *name, size_t n, size_t off,
                     size_t *open_at, struct tpl_error *pe) {
  pe->off = off;
  int q = quote_len(name, n);
  if (n == 0) {
    snprintf(pe->msg, sizeof pe->msg, "empty {{}}");
    return IOCD_EPARSE;
  }
  if (name[0] == '#' || name[0] == '/') {
    enum tpl_block b;
    if (!block_lookup(name + 1, n - 1, &b)) {
      snprintf(pe->msg, sizeof pe->msg,
               "unknown block {{%.*s}} (alerts, firing or resolved)", q, name);
      return IOCD_EPARSE;
    }
    if (name[0] == '#') {
      if (*open_at != SIZE_MAX) {
        snprintf(pe->msg, sizeof pe->msg,
                 "blocks do not nest: {{#%s}} inside {{#%s}}",
                 template__block_names[b],
                 template__block_names[t->v[*open_at].block]);
        return IOCD_EPARSE;
      }
      *open_at = t->n;
      t->has_block = true;
      return tmpl_push(
          t, (struct tpl_node){.kind = N_OPEN, .block = b, .off = off});
    }
    if (*open_at == SIZE_MAX || t->v[*open_at].block != b) {
      snprintf(pe->msg, sizeof pe->msg, "{{/%s}} without {{#%s}}",
               template__block_names[b], template__block_names[b]);
      return IOCD_EPARSE;
    }
    t->v[*open_at].end = t->n;
    *open_at = SIZE_MAX;
    return tmpl_push(t, (struct tpl_node){.kind = N_CLOSE, .block = b});
  }
  static const char lp[] = "labels.", ap[] = "annotations.";
  enum tpl_field f;
  size_t skip = 0;
  if (n >= sizeof lp - 1 && memcmp(name, lp, sizeof lp - 1) == 0) {
    f = F_LABEL;
    skip = sizeof lp - 1;
  } else if (n >= sizeof ap - 1 && memcmp(name, ap, sizeof ap - 1) == 0) {
    f = F_ANNOTATION;
    skip = sizeof ap - 1;
  } else if (!field_lookup(name, n, &f)) {
    snprintf(pe->msg, sizeof pe->msg, "unknown field {{%.*s}}", q, name);
    return IOCD_EPARSE;
  }
  if (skip && n == skip) {
    snprintf(pe->msg, sizeof pe->msg, "{{%.*s}} names nothing", q, name);
    return IOCD_EPARSE;
  }
  /* The byte after the name is a space or the first '}' of the tag,
   * never part of a text node: the name can end there. */
  name[n] = '\0';
  return tmpl_push(
      t, (struct tpl_node){.kind = N_FIELD, .field = f, .s = name + skip});
}

/* Compiles text into *t. Returns IOCD_OK, IOCD_EPARSE with *pe, or
 * IOCD_ENOMEM. */
int template__compile(const char *text, struct tpl *t, struct tpl_error *pe) {
  memset(t, 0, sizeof *t);
  t->src = mem_strdup(text);
  if (!t->src) {
    return IOCD_ENOMEM;
  }
  char *p = t->src;
  size_t open_at = SIZE_MAX;
  int rc = IOCD_OK;
  while (!rc) {
    char *o = strstr(p, "{{");
    size_t tn = o ? (size_t)(o - p) : strlen(p);
    if (tn) {
      rc = tmpl_push(t, (struct tpl_node){.kind = N_TEXT, .s = p, .n = tn});
    }
    if (rc || !o) {
      break;
    }
    char *c = strstr(o + 2, "}}");
    if (!c) {
      pe->off = (size_t)(o - t->src);
      snprintf(pe->msg, sizeof pe->msg, "{{ is not closed by }}");
      rc = IOCD_EPARSE;
      break;
    }
    char *k = o + 2, *ke = c;
    while (k < ke && (*k == ' ' || *k == '\t')) {
      k++;
    }
    while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t')) {
      ke--;
    }
    rc = parse_tag(t, k, (size_t)(ke - k), (size_t)(o - t->src), &open_at, pe);
    p = c + 2;
  }
  if (!rc && open_at != SIZE_MAX) {
    pe->off = t->v[open_at].off;
    snprintf(pe->msg, sizeof pe->msg, "{{#%s}} is not closed by {{/%s}}",
             template__block_names[t->v[open_at].block],
             template__block_names[t->v[open_at].block]);
    rc = IOCD_EPARSE;
  }
  if (rc) {
    template__cleanup(t);
  }
  return rc;
}

/* The number of UTF-8 characters in s[0..n). */
static size_t utf8_chars(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++) {
    c += ((unsigned char)s[i] & 0xC0) != 0x80;
  }
  return c;
}

int template__report(const char *text, const struct tpl_error *pe,
                     const struct config_place *place, const char *name,
                     struct iocd_err *err) {
  size_t chars = utf8_chars(text, pe->off);
  if (!name) {
    name = "template";
  }
  if (place && place->file) {
    /* place is the text's first character, after the opening quote. */
    return iocd_err_set(err, IOCD_EPARSE, "%s:%d:%zu: %s: %s", place->file,
                        place->line, (size_t)place->col + chars, name, pe->msg);
  }
  return iocd_err_set(err, IOCD_EPARSE, "%s: column %zu: %s", name, chars + 1,
                      pe->msg);
}

int template_check(const char *text, const struct config_place *place,
                   const char *name, struct iocd_err *err) {
  struct tpl t;
  struct tpl_error pe = {0};
  int rc = template__compile(text, &t, &pe);
  if (rc == IOCD_EPARSE) {
    return template__report(text, &pe, place, name, err);
  }
  if (rc) {
    return iocd_err_set(err, rc, "%s: out of memory", name ? name : "template");
  }
  template__cleanup(&t);
  return IOCD_OK;
}
