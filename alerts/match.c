/*
 * Label matchers: compiling Alertmanager-style matchers to POSIX regexes
 * (anchored "^(re)$", REG_EXTENDED | REG_NOSUB), matching label sets, and
 * reading the one-string form "district=~Krông.*" the API and the
 * configuration accept.
 */
#include "alerts/match.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

const char *match_op_text(enum config_match_op op) {
  switch (op) {
    case CONFIG_MATCH_EQ:
      return "=";
    case CONFIG_MATCH_NE:
      return "!=";
    case CONFIG_MATCH_RE:
      return "=~";
    case CONFIG_MATCH_NRE:
      return "!~";
  }
  return "?";
}

static bool op_is_re(enum config_match_op op) {
  return op == CONFIG_MATCH_RE || op == CONFIG_MATCH_NRE;
}

/* Compiles "^(value)$" into *re. Returns 0 or regcomp's code; errbuf gets
 * regerror's words on failure. */
static int re_compile(regex_t *re, const char *value, char *errbuf,
                      size_t errlen) {
  size_t n = strlen(value);
  char *pat = malloc(n + 5);
  if (!pat) {
    snprintf(errbuf, errlen, "out of memory");
    return REG_ESPACE;
  }
  memcpy(pat, "^(", 2);
  memcpy(pat + 2, value, n);
  memcpy(pat + 2 + n, ")$", 3);
  int rc = regcomp(re, pat, REG_EXTENDED | REG_NOSUB);
  free(pat);
  if (rc != 0) {
    regerror(rc, re, errbuf, errlen);
  }
  return rc;
}

void match_set_cleanup(struct match_set *s) {
  if (!s) {
    return;
  }
  for (size_t i = 0; i < s->n; i++) {
    if (op_is_re(s->v[i].op)) {
      regfree(&s->v[i].re);
    }
    free(s->v[i].name);
    free(s->v[i].value);
  }
  free(s->v);
  s->v = NULL;
  s->n = 0;
}

int match_compile(struct match_set *out, const struct config_matcher *m,
                  size_t n, struct iocd_err *err) {
  out->v = NULL;
  out->n = 0;
  if (n == 0) {
    return IOCD_OK;
  }
  out->v = calloc(n, sizeof *out->v);
  if (!out->v) {
    return IOCD_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    struct match *x = &out->v[i];
    if (!m[i].name || !m[i].name[0]) {
      match_set_cleanup(out);
      return iocd_err_set(err, IOCD_EINVAL, "matchers[%zu]: no label name", i);
    }
    const char *value = m[i].value ? m[i].value : "";
    x->name = mem_strdup(m[i].name);
    x->value = mem_strdup(value);
    x->op = CONFIG_MATCH_EQ; /* no regex to free until it compiled */
    out->n = i + 1;
    if (!x->name || !x->value) {
      match_set_cleanup(out);
      return IOCD_ENOMEM;
    }
    if (op_is_re(m[i].op)) {
      char why[128];
      if (re_compile(&x->re, value, why, sizeof why) != 0) {
        iocd_err_set(err, IOCD_EINVAL,
                     "matchers[%zu]: %s%s%s: the regular expression does "
                     "not compile: %s",
                     i, m[i].name, match_op_text(m[i].op), value, why);
        match_set_cleanup(out);
        return IOCD_EINVAL;
      }
    }
    x->op = m[i].op;
  }
  return IOCD_OK;
}

bool match_one(const struct match *m, const char *value) {
  if (!value) {
    value = "";
  }
  switch (m->op) {
    case CONFIG_MATCH_EQ:
      return strcmp(value, m->value) == 0;
    case CONFIG_MATCH_NE:
      return strcmp(value, m->value) != 0;
    case CONFIG_MATCH_RE:
      return regexec(&m->re, value, 0, NULL, 0) == 0;
    case CONFIG_MATCH_NRE:
      return regexec(&m->re, value, 0, NULL, 0) != 0;
  }
  return false;
}

bool match_labels(const struct match_set *s, const struct notice_labels *ls) {
  for (size_t i = 0; s && i < s->n; i++) {
    if (!match_one(&s->v[i], notice_label_get(ls, s->v[i].name))) {
      return false;
    }
  }
  return true;
}

void match_matcher_cleanup(struct config_matcher *m) {
  if (!m) {
    return;
  }
  free(m->name);
  free(m->value);
  m->name = m->value = NULL;
}

static bool name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool name_char(char c) {
  return name_start(c) || (c >= '0' && c <= '9');
}

/* Unquotes the value "..." at s into a malloc'd string; NULL with *bad set
 * when the quotes are not closed or text follows them. */
static char *unquote(const char *s, bool *bad) {
  size_t n = strlen(s);
  char *out = malloc(n + 1);
  if (!out) {
    *bad = false;
    return NULL;
  }
  size_t o = 0;
  const char *p = s + 1;
  for (; *p && *p != '"'; p++) {
    if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) {
      p++;
    }
    out[o++] = *p;
  }
  if (*p != '"' || p[1] != '\0') {
    free(out);
    *bad = true;
    return NULL;
  }
  out[o] = '\0';
  return out;
}

int match_parse(const char *s, struct config_matcher *out,
                struct iocd_err *err) {
  static const char *const expected =
      "expected NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX";
  out->name = out->value = NULL;
  out->op = CONFIG_MATCH_EQ;
  if (!s) {
    return iocd_err_set(err, IOCD_EPARSE, "no matcher: %s", expected);
  }
  const char *p = s;
  while (*p == ' ') {
    p++;
  }
  const char *name = p;
  if (!name_start(*p)) {
    return iocd_err_set(err, IOCD_EPARSE,
                        "\"%s\": a matcher starts with a label name: %s", s,
                        expected);
  }
  while (name_char(*p)) {
    p++;
  }
  size_t name_len = (size_t)(p - name);
  while (*p == ' ') {
    p++;
  }
  enum config_match_op op;
  if (p[0] == '=' && p[1] == '~') {
    op = CONFIG_MATCH_RE;
    p += 2;
  } else if (p[0] == '!' && p[1] == '~') {
    op = CONFIG_MATCH_NRE;
    p += 2;
  } else if (p[0] == '!' && p[1] == '=') {
    op = CONFIG_MATCH_NE;
    p += 2;
  } else if (p[0] == '=') {
    op = CONFIG_MATCH_EQ;
    p += 1;
  } else {
    return iocd_err_set(err, IOCD_EPARSE, "\"%s\": %s", s, expected);
  }
  while (*p == ' ') {
    p++;
  }
  char *value;
  if (*p == '"') {
    bool bad = false;
    value = unquote(p, &bad);
    if (!value && bad) {
      return iocd_err_set(err, IOCD_EPARSE,
                          "\"%s\": the quoted value is not closed, or text "
                          "follows its closing quote",
                          s);
    }
  } else {
    value = mem_strdup(p);
  }
  char *nm = malloc(name_len + 1);
  if (!value || !nm) {
    free(value);
    free(nm);
    return IOCD_ENOMEM;
  }
  memcpy(nm, name, name_len);
  nm[name_len] = '\0';
  if (op_is_re(op)) {
    regex_t re;
    char why[128];
    int rc = re_compile(&re, value, why, sizeof why);
    if (rc == REG_ESPACE) {
      free(value);
      free(nm);
      return IOCD_ENOMEM;
    }
    if (rc != 0) {
      iocd_err_set(err, IOCD_EPARSE,
                   "\"%s\": the regular expression does not compile: %s", s,
                   why);
      free(value);
      free(nm);
      return IOCD_EPARSE;
    }
    regfree(&re);
  }
  out->name = nm;
  out->op = op;
  out->value = value;
  return IOCD_OK;
}

int match_format(struct buf *out, const char *name, enum config_match_op op,
                 const char *value) {
  int rc = buf_puts(out, name);
  if (!rc) {
    rc = buf_puts(out, match_op_text(op));
  }
  if (!rc) {
    rc = buf_putc(out, '"');
  }
  for (const char *p = value ? value : ""; !rc && *p; p++) {
    if (*p == '"' || *p == '\\') {
      rc = buf_putc(out, '\\');
    }
    if (!rc) {
      rc = buf_putc(out, *p);
    }
  }
  if (!rc) {
    rc = buf_putc(out, '"');
  }
  return rc;
}
