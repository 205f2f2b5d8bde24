/*
 * The documentation checked against the code, so that it cannot drift
 * again. Everything is extracted from README.md and the pages of docs/
 * (nothing is listed here by hand), following the conventions of
 * docs/README.md:
 *
 * - a ```json or ```jsonc block is iocd configuration. A whole file (one
 *   object with "subscriptions", the key every file needs) must load
 *   without a problem; any other block is a fragment whose keys must all
 *   be keys of the schema, at the root or inside one object of it.
 *   ```json payload marks an MQTT payload (only parsed as JSON), and
 *   file=PATH a file the page's commands read (checked by them);
 * - every key of the schema (config_schema_each) has a row in a key table
 *   (first header cell "key") of configuration.md, or of rules*.md for the
 *   rules sections, and every row of a key table is a key of the schema; a
 *   key table's object is the `path` in the heading above it ("Top level":
 *   the root);
 * - a table whose first header cell is "rule" names default rules
 *   (config/iocd.example.jsonc's); with an "expression" column, its first
 *   code span is the rule's expr, and one after "guard" its guard;
 * - `$ iocd ...` lines of ```sh blocks are run (with the iocd of this
 *   build) in a copy of the source tree holding the page's file=PATH
 *   blocks; the lines after one, up to the next `$` or a line "...", are
 *   the first lines of its output (stdout and stderr), and "# exit N" at
 *   its end the exit status (default 0).
 *
 * The README's publish examples run against real servers in
 * test_docs_publish.c.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/buf.h"
#include "tests/docs/docmd.h"

#define MAX_PROBLEMS (1u << 20)

/* The problems one test found, all reported at the end. */
struct problems {
  struct buf b;
  size_t n;
};

static void problems_init(struct problems *p) {
  buf_init(&p->b, MAX_PROBLEMS);
  p->n = 0;
}

static void problem(struct problems *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void problem(struct problems *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(&p->b, fmt, ap);
  va_end(ap);
  buf_putc(&p->b, '\n');
  p->n++;
}

static void problems_check(struct problems *p, const char *what) {
  buf_putc(&p->b, '\0');
  cr_expect_eq(p->n, 0, "%zu %s:\n%s", p->n, what, p->b.data);
  buf_cleanup(&p->b);
}

/* ---- the schema ---------------------------------------------------------- */

struct skey {
  char *path;
  enum config_schema_kind kind;
};

struct schema {
  struct skey *v;
  size_t n;
};

static void schema_add(void *ud, const char *path,
                       enum config_schema_kind kind) {
  struct schema *s = ud;
  s->v = md_grow(s->v, (s->n + 1) * sizeof *s->v);
  s->v[s->n].path = md_strdup(path);
  s->v[s->n].kind = kind;
  s->n++;
}

static void schema_load(struct schema *s) {
  memset(s, 0, sizeof *s);
  config_schema_each(schema_add, s);
  cr_assert_gt(s->n, 100, "config_schema_each listed %zu keys", s->n);
}

static void schema_free(struct schema *s) {
  for (size_t i = 0; i < s->n; i++) {
    free(s->v[i].path);
  }
  free(s->v);
}

static const struct skey *schema_find(const struct schema *s,
                                      const char *path) {
  for (size_t i = 0; i < s->n; i++) {
    if (strcmp(s->v[i].path, path) == 0) {
      return &s->v[i];
    }
  }
  return NULL;
}

/* Whether the keys under prefix ("params.*") are described. */
static bool schema_has_under(const struct schema *s, const char *prefix) {
  size_t n = strlen(prefix);
  for (size_t i = 0; i < s->n; i++) {
    if (strncmp(s->v[i].path, prefix, n) == 0 && s->v[i].path[n] == '.') {
      return true;
    }
  }
  return false;
}

static char *join(const char *a, const char *sep, const char *b) {
  size_t n = strlen(a) + strlen(sep) + strlen(b) + 1;
  char *s = md_alloc(n);
  snprintf(s, n, "%s%s%s", a, *a ? sep : "", b);
  return s;
}

/* A path as the key tables write it: "params.*.default" is
 * "params.default" (the table of `params` describes each parameter). */
static char *table_path(const char *path) {
  char *s = md_strdup(path);
  char *p;
  while ((p = strstr(s, ".*")) != NULL) {
    memmove(p, p + 2, strlen(p + 2) + 1);
  }
  return s;
}

/* ---- configuration blocks ------------------------------------------------ */

/* Counts the keys of object j, placed at path at of the schema, that the
 * schema does not have, and lists them in out. */
static size_t unknown_keys(const struct schema *s, const char *at,
                           const cJSON *j, struct buf *out) {
  size_t bad = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, j) {
    char *path = join(at, ".", c->string);
    const struct skey *k = schema_find(s, path);
    if (!k) {
      buf_printf(out, " %s", path);
      bad++;
    } else if (k->kind == CONFIG_SCHEMA_OBJECT && cJSON_IsObject(c)) {
      bad += unknown_keys(s, path, c, out);
    } else if (k->kind == CONFIG_SCHEMA_LIST && cJSON_IsArray(c)) {
      char *items = join(path, "", "[]");
      const cJSON *item;
      cJSON_ArrayForEach(item, c) {
        if (cJSON_IsObject(item)) {
          bad += unknown_keys(s, items, item, out);
        }
      }
      free(items);
    } else if (k->kind == CONFIG_SCHEMA_MAP && cJSON_IsObject(c)) {
      char *items = join(path, "", ".*");
      const cJSON *item;
      cJSON_ArrayForEach(item, c) {
        if (cJSON_IsObject(item) && schema_has_under(s, items)) {
          bad += unknown_keys(s, items, item, out);
        }
      }
      free(items);
    }
    free(path);
  }
  return bad;
}

/* Finds a place in the schema (the root, an object, the items of a list or
 * a map) where every key of object j is known. Returns true, or false with
 * the unknown keys of the closest place in why. */
static bool fragment_fits(const struct schema *s, const cJSON *j,
                          struct buf *why) {
  struct buf tmp;
  buf_init(&tmp, 1 << 16);
  size_t best = SIZE_MAX;
  for (size_t i = 0; i <= s->n && best > 0; i++) {
    char *at = NULL;
    if (i == s->n) {
      at = md_strdup("");
    } else if (s->v[i].kind == CONFIG_SCHEMA_OBJECT) {
      at = md_strdup(s->v[i].path);
    } else if (s->v[i].kind == CONFIG_SCHEMA_LIST) {
      at = join(s->v[i].path, "", "[]");
    } else if (s->v[i].kind == CONFIG_SCHEMA_MAP) {
      at = join(s->v[i].path, "", ".*");
    } else {
      continue;
    }
    buf_reset(&tmp);
    size_t bad = unknown_keys(s, at, j, &tmp);
    if (bad < best) {
      best = bad;
      buf_reset(why);
      buf_printf(why, "at %s:%.*s", *at ? at : "the root", (int)tmp.len,
                 tmp.data ? tmp.data : "");
    }
    free(at);
  }
  buf_cleanup(&tmp);
  return best == 0;
}

/* Parses a block as JSON with comments; a list of members ("a": 1, "b": 2)
 * is read as the object it belongs in. */
static cJSON *parse_block(const struct md_block *b, struct buf *err) {
  cJSON *j = NULL;
  if (config_parse_jsonc("block", b->text, strlen(b->text), &j, err) ==
      IOCD_OK) {
    return j;
  }
  size_t n = strlen(b->text) + 5;
  char *wrapped = md_alloc(n);
  snprintf(wrapped, n, "{\n%s\n}", b->text);
  struct buf ignored;
  buf_init(&ignored, 1 << 16);
  if (config_parse_jsonc("block", wrapped, strlen(wrapped), &j, &ignored) !=
      IOCD_OK) {
    j = NULL;
  }
  buf_cleanup(&ignored);
  free(wrapped);
  return j;
}

static bool is_json(const struct md_block *b) {
  return strcmp(b->lang, "json") == 0 || strcmp(b->lang, "jsonc") == 0;
}

/* The info string's words after the language: only the documented ones. */
static void check_words(struct problems *p, const struct md_page *pg,
                        const struct md_block *b) {
  for (size_t i = 0; i < b->nwords; i++) {
    const char *w = b->words[i];
    bool ok = (strncmp(w, "file=", 5) == 0 && w[5]) ||
              (strcmp(w, "payload") == 0 && is_json(b));
    if (!ok) {
      problem(p,
              "%s:%d: unknown marker \"%s\" after ```%s (docs/README.md "
              "lists them)",
              pg->name, b->line, w, b->lang);
    }
  }
}

Test(docs, every_configuration_block_is_valid_configuration) {
  size_t np;
  struct md_page *pages = md_pages(IOCD_SOURCE_DIR, &np);
  struct schema s;
  schema_load(&s);
  struct problems p;
  problems_init(&p);
  size_t whole = 0, fragments = 0;
  for (size_t i = 0; i < np; i++) {
    const struct md_page *pg = &pages[i];
    for (size_t k = 0; k < pg->nblocks; k++) {
      const struct md_block *b = &pg->blocks[k];
      check_words(&p, pg, b);
      if (!is_json(b) || md_word(b, "file=")) {
        continue;
      }
      if (md_word(b, "payload")) {
        cJSON *j = cJSON_Parse(b->text);
        if (!j) {
          problem(&p, "%s:%d: the payload is not JSON", pg->name, b->line);
        }
        cJSON_Delete(j);
        continue;
      }
      struct buf err;
      buf_init(&err, 1 << 16);
      cJSON *j = parse_block(b, &err);
      if (!j) {
        buf_putc(&err, '\0');
        problem(&p, "%s:%d: not JSON with comments: %s", pg->name, b->line,
                err.data);
      } else if (cJSON_IsObject(j) &&
                 cJSON_GetObjectItemCaseSensitive(j, "subscriptions")) {
        /* A whole file, read as if it were beside the example. */
        whole++;
        char name[512];
        snprintf(name, sizeof name, "%s/config/%s-%d.jsonc", IOCD_SOURCE_DIR,
                 strrchr(pg->name, '/') ? strrchr(pg->name, '/') + 1 : pg->name,
                 b->line);
        struct config *cfg = NULL;
        struct buf errors;
        buf_init(&errors, 1 << 20);
        if (config_load_text(name, b->text, strlen(b->text), &cfg, &errors) !=
            IOCD_OK) {
          buf_putc(&errors, '\0');
          problem(&p, "%s:%d: this configuration does not load:\n%s", pg->name,
                  b->line, errors.data);
        }
        config_free(cfg);
        buf_cleanup(&errors);
      } else {
        fragments++;
        const cJSON *objs = cJSON_IsArray(j) ? j : NULL;
        const cJSON *o = objs ? objs->child : j;
        for (; o; o = objs ? o->next : NULL) {
          struct buf why;
          buf_init(&why, 1 << 16);
          if (cJSON_IsObject(o) && !fragment_fits(&s, o, &why)) {
            buf_putc(&why, '\0');
            problem(&p, "%s:%d: keys not in the configuration: %s", pg->name,
                    b->line, why.data);
          }
          buf_cleanup(&why);
        }
      }
      cJSON_Delete(j);
      buf_cleanup(&err);
    }
  }
  problems_check(&p, "configuration blocks are wrong");
  cr_expect_gt(whole, 0, "no whole configuration found in the docs");
  cr_expect_gt(fragments, 0, "no configuration fragment found in the docs");
  schema_free(&s);
  md_pages_free(pages, np);
}

/* ---- key tables ---------------------------------------------------------- */

/* The object a key table describes: the first code span of its heading,
 * "" for "Top level", or NULL. */
static char *table_object(const char *heading) {
  if (strcmp(heading, "Top level") == 0) {
    return md_strdup("");
  }
  size_t n;
  struct md_span *sp = md_spans(heading, &n);
  char *path = n ? md_strdup(sp[0].text) : NULL;
  md_spans_free(sp, n);
  return path;
}

static bool rules_section(const char *path) {
  static const char *const sections[] = {"calendar", "sources", "rule_engine",
                                         "params",   "rules",   "rule_files"};
  for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
    size_t n = strlen(sections[i]);
    if (strncmp(path, sections[i], n) == 0 &&
        (path[n] == '\0' || path[n] == '.' || path[n] == '[')) {
      return true;
    }
  }
  return false;
}

static bool is_rules_page(const char *name) {
  return strncmp(name, "docs/rules", 10) == 0;
}

Test(docs, every_key_is_documented_and_every_documented_key_exists) {
  size_t np;
  struct md_page *pages = md_pages(IOCD_SOURCE_DIR, &np);
  struct schema s;
  schema_load(&s);
  struct problems p;
  problems_init(&p);
  /* The documented paths, with the page that documents each. */
  char **doc = NULL;
  const char **doc_page = NULL;
  size_t ndoc = 0;
  for (size_t i = 0; i < np; i++) {
    const struct md_page *pg = &pages[i];
    for (size_t k = 0; k < pg->nrows; k++) {
      const struct md_row *r = &pg->rows[k];
      if (r->nhead == 0 || strcmp(r->head[0], "key") != 0) {
        continue;
      }
      char *obj = table_object(r->heading);
      size_t n;
      struct md_span *sp = md_spans(r->cells[0], &n);
      if (!obj) {
        problem(&p,
                "%s:%d: the heading above this key table (\"%s\") names no "
                "object in backticks",
                pg->name, r->line, r->heading);
      } else if (n != 1 || sp[0].at != 0 ||
                 strlen(sp[0].text) + 2 != strlen(r->cells[0])) {
        problem(&p, "%s:%d: a key table's first cell is one `key`, not \"%s\"",
                pg->name, r->line, r->cells[0]);
      } else {
        char *path = join(obj, ".", sp[0].text);
        bool known = false;
        for (size_t q = 0; q < s.n && !known; q++) {
          char *tp = table_path(s.v[q].path);
          known = strcmp(tp, path) == 0;
          free(tp);
        }
        if (!known) {
          problem(&p, "%s:%d: `%s` is not a key of the configuration", pg->name,
                  r->line, path);
        }
        doc = md_grow(doc, (ndoc + 1) * sizeof *doc);
        doc_page = md_grow(doc_page, (ndoc + 1) * sizeof *doc_page);
        doc[ndoc] = path;
        doc_page[ndoc++] = pg->name;
      }
      md_spans_free(sp, n);
      free(obj);
    }
  }
  for (size_t q = 0; q < s.n; q++) {
    char *tp = table_path(s.v[q].path);
    bool found = false;
    for (size_t d = 0; d < ndoc && !found; d++) {
      found = strcmp(doc[d], tp) == 0 &&
              (strcmp(doc_page[d], "docs/configuration.md") == 0 ||
               (rules_section(tp) && is_rules_page(doc_page[d])));
    }
    if (!found) {
      problem(&p, "`%s` has no row in a key table of docs/configuration.md%s",
              s.v[q].path, rules_section(tp) ? " or docs/rules*.md" : "");
    }
    free(tp);
  }
  problems_check(&p, "keys are not documented as they are");
  for (size_t d = 0; d < ndoc; d++) {
    free(doc[d]);
  }
  free(doc);
  free(doc_page);
  schema_free(&s);
  md_pages_free(pages, np);
}

/* ---- the default rules --------------------------------------------------- */

static const struct config_rule *find_rule(const struct config *cfg,
                                           const char *name) {
  for (size_t i = 0; i < cfg->rules.n; i++) {
    if (strcmp(cfg->rules.v[i].name, name) == 0) {
      return &cfg->rules.v[i];
    }
  }
  return NULL;
}

/* Whether the text of cell before offset at ends with word. */
static bool after_word(const char *cell, size_t at, const char *word) {
  size_t n = strlen(word);
  while (at > 0 && cell[at - 1] == ' ') {
    at--;
  }
  return at >= n && strncmp(cell + at - n, word, n) == 0;
}

Test(docs, tables_of_rules_name_the_default_rules_as_they_are) {
  size_t np;
  struct md_page *pages = md_pages(IOCD_SOURCE_DIR, &np);
  struct config *cfg = NULL;
  struct buf errors;
  buf_init(&errors, 1 << 20);
  int rc =
      config_load(IOCD_SOURCE_DIR "/config/iocd.example.jsonc", &cfg, &errors);
  buf_putc(&errors, '\0');
  cr_assert_eq(rc, IOCD_OK, "%s", errors.data);
  struct problems p;
  problems_init(&p);
  size_t checked = 0;
  for (size_t i = 0; i < np; i++) {
    const struct md_page *pg = &pages[i];
    for (size_t k = 0; k < pg->nrows; k++) {
      const struct md_row *r = &pg->rows[k];
      if (r->nhead == 0 || strcmp(r->head[0], "rule") != 0 || r->ncells == 0) {
        continue;
      }
      size_t n;
      struct md_span *names = md_spans(r->cells[0], &n);
      for (size_t q = 0; q < n; q++) {
        const struct config_rule *rule = find_rule(cfg, names[q].text);
        if (!rule) {
          problem(&p, "%s:%d: `%s` is not one of the default rules", pg->name,
                  r->line, names[q].text);
          continue;
        }
        if (r->nhead < 2 || strcmp(r->head[1], "expression") != 0 ||
            r->ncells < 2) {
          continue;
        }
        size_t ns;
        struct md_span *sp = md_spans(r->cells[1], &ns);
        const char *expr = rule->expr      ? rule->expr
                           : rule->nlevels ? rule->levels[0].expr
                                           : "";
        if (ns == 0 || strcmp(sp[0].text, expr) != 0) {
          problem(&p, "%s:%d: %s: the expression is \"%s\", not \"%s\"",
                  pg->name, r->line, rule->name, expr, ns ? sp[0].text : "");
        }
        for (size_t g = 1; g < ns; g++) {
          if (after_word(r->cells[1], sp[g].at, "guard") &&
              (!rule->guard || strcmp(sp[g].text, rule->guard) != 0)) {
            problem(&p, "%s:%d: %s: the guard is \"%s\", not \"%s\"", pg->name,
                    r->line, rule->name, rule->guard ? rule->guard : "(none)",
                    sp[g].text);
          }
        }
        md_spans_free(sp, ns);
        checked++;
      }
      md_spans_free(names, n);
    }
  }
  problems_check(&p, "default rules are shown wrong");
  cr_expect_gt(checked, 0, "no rule table with an expression found");
  config_free(cfg);
  buf_cleanup(&errors);
  md_pages_free(pages, np);
}

/* ---- commands ------------------------------------------------------------ */

/* A scratch copy of the source tree: a directory of symbolic links to its
 * top-level entries, where a page's files are written (replacing a link
 * on their way by a directory of links, so nothing is ever written into
 * the tree), and .bin/iocd, the binary under test. */
static void ws_link_entries(const char *from, const char *to) {
  DIR *d = opendir(from);
  cr_assert_not_null(d, "%s: %s", from, strerror(errno));
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
        strcmp(de->d_name, ".git") == 0) {
      continue;
    }
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/%s", from, de->d_name);
    snprintf(b, sizeof b, "%s/%s", to, de->d_name);
    cr_assert_eq(symlink(a, b), 0, "symlink %s: %s", b, strerror(errno));
  }
  closedir(d);
}

static void ws_init(char *dir, size_t n) {
  snprintf(dir, n, "/tmp/iocd-docs-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  ws_link_entries(IOCD_SOURCE_DIR, dir);
  char bin[4096];
  snprintf(bin, sizeof bin, "%s/.bin", dir);
  cr_assert_eq(mkdir(bin, 0755), 0);
  snprintf(bin, sizeof bin, "%s/.bin/iocd", dir);
  cr_assert_eq(symlink(IOCD_BIN_PATH, bin), 0);
}

/* Removes the workspace: links are removed, never followed. */
static void ws_remove(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    unlink(path);
    return;
  }
  DIR *d = opendir(path);
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
      char sub[4096];
      snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
      ws_remove(sub);
    }
  }
  if (d) {
    closedir(d);
  }
  rmdir(path);
}

/* Writes text to rel in the workspace. */
static bool ws_write(const char *dir, const char *rel, const char *text) {
  if (rel[0] == '/' || strstr(rel, "..")) {
    return false;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  for (char *sl = strchr(path + strlen(dir) + 1, '/'); sl;
       sl = strchr(sl + 1, '/')) {
    *sl = '\0';
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t tn = readlink(path, target, sizeof target - 1);
      cr_assert_gt(tn, 0);
      target[tn] = '\0';
      cr_assert_eq(unlink(path), 0);
      cr_assert_eq(mkdir(path, 0755), 0);
      ws_link_entries(target, path);
    } else if (lstat(path, &st) != 0) {
      cr_assert_eq(mkdir(path, 0755), 0, "%s: %s", path, strerror(errno));
    }
    *sl = '/';
  }
  unlink(path); /* a link into the tree is replaced, never written through */
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "%s: %s", path, strerror(errno));
  fputs(text, f);
  fclose(f);
  return true;
}

/* Runs cmd with sh in dir, iocd on the PATH being the build's; its output
 * (stdout and stderr together) goes to out. Returns the exit status, or -1
 * when it did not finish within 60 s. */
static int run(const char *dir, const char *cmd, struct buf *out) {
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  pid_t pid = fork();
  cr_assert_neq(pid, -1);
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    if (chdir(dir) != 0) {
      _exit(127);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/.bin:/usr/local/bin:/usr/bin:/bin", dir);
    setenv("PATH", path, 1);
    unsetenv("IOCD_CONFIG");
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  bool timeout = false;
  for (;;) {
    struct pollfd pfd = {fds[0], POLLIN, 0};
    int r = poll(&pfd, 1, 1000);
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (t.tv_sec - t0.tv_sec > 60) {
      timeout = true;
      kill(pid, SIGKILL);
      break;
    }
    if (r <= 0) {
      continue;
    }
    char chunk[4096];
    ssize_t got = read(fds[0], chunk, sizeof chunk);
    if (got <= 0) {
      break;
    }
    buf_append(out, chunk, (size_t)got);
  }
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  if (timeout) {
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A command of a page and what the page says it gives. */
struct shown {
  char *cmd;
  int status;
  char **lines; /* the output lines shown, up to "..." */
  size_t nlines;
  bool more; /* the page cut the output short with "..." */
  int line;  /* in the page */
};

static void shown_free(struct shown *c) {
  for (size_t i = 0; i < c->nlines; i++) {
    free(c->lines[i]);
  }
  free(c->lines);
  free(c->cmd);
}

/* Reads "$ iocd ARGS [# exit N]"; false when the line is not one. */
static bool parse_command(const char *line, struct shown *c) {
  if (strncmp(line, "$ ", 2) != 0) {
    return false;
  }
  c->cmd = md_strdup(line + 2);
  c->status = 0;
  char *hash = strstr(c->cmd, "# exit ");
  if (hash) {
    char *end;
    errno = 0;
    long v = strtol(hash + 7, &end, 10);
    if (!errno && end != hash + 7 && *end == '\0' && v >= 0 && v < 256) {
      c->status = (int)v;
      while (hash > c->cmd && hash[-1] == ' ') {
        hash--;
      }
      *hash = '\0';
    }
  }
  return true;
}

/* Runs one command and compares with what the page shows. */
static void check_command(struct problems *p, const char *ws,
                          const struct md_page *pg, const struct shown *c) {
  struct buf out;
  buf_init(&out, 1 << 20);
  int st = run(ws, c->cmd, &out);
  buf_putc(&out, '\0');
  if (st != c->status) {
    problem(p, "%s:%d: `%s` exits %d, not %d; it prints:\n%s", pg->name,
            c->line, c->cmd, st, c->status, out.data);
  }
  const char *o = out.data;
  for (size_t i = 0; i < c->nlines; i++) {
    const char *nl = strchr(o, '\n');
    size_t len = nl ? (size_t)(nl - o) : strlen(o);
    if ((!nl && !*o) || strlen(c->lines[i]) != len ||
        strncmp(c->lines[i], o, len) != 0) {
      problem(p,
              "%s:%d: `%s`: output line %zu is\n  %.*s\nnot\n  %s\n"
              "(all of it:\n%s)",
              pg->name, c->line + (int)i + 1, c->cmd, i + 1, (int)len, o,
              c->lines[i], out.data);
      break;
    }
    o = nl ? nl + 1 : o + len;
  }
  if (c->nlines == 0 && !c->more && out.data[0]) {
    problem(p, "%s:%d: `%s` prints what the page does not show:\n%s", pg->name,
            c->line, c->cmd, out.data);
  }
  buf_cleanup(&out);
}

/* Runs the commands of one block (it starts with "$ "); returns how many
 * there were. */
static size_t run_block(struct problems *p, const char *ws,
                        const struct md_page *pg, const struct md_block *b) {
  char *text = md_strdup(b->text);
  size_t ncmds = 0;
  struct shown c = {0};
  bool have = false;
  int ln = b->line;
  char *line = text;
  for (;;) {
    bool end = *line == '\0';
    char *next = line;
    if (!end) {
      ln++;
      next = line + strcspn(line, "\n");
      if (*next) {
        *next++ = '\0';
      }
    }
    if (end || strncmp(line, "$ ", 2) == 0) {
      if (have) {
        check_command(p, ws, pg, &c);
        ncmds++;
      }
      shown_free(&c);
      memset(&c, 0, sizeof c);
      have = false;
      if (end) {
        break;
      }
      parse_command(line, &c);
      c.line = ln;
      have = strncmp(c.cmd, "iocd ", 5) == 0;
      if (!have) {
        problem(p,
                "%s:%d: only iocd commands follow a \"$ \" (write others "
                "without it): %s",
                pg->name, ln, c.cmd);
      }
    } else if (have && !c.more) {
      if (strcmp(line, "...") == 0) {
        c.more = true;
      } else {
        c.lines = md_grow(c.lines, (c.nlines + 1) * sizeof *c.lines);
        c.lines[c.nlines++] = md_strdup(line);
      }
    }
    line = next;
  }
  free(text);
  return ncmds;
}

Test(docs, every_iocd_command_shown_gives_the_output_shown) {
  size_t np;
  struct md_page *pages = md_pages(IOCD_SOURCE_DIR, &np);
  struct problems p;
  problems_init(&p);
  size_t ncmds = 0;
  for (size_t i = 0; i < np; i++) {
    const struct md_page *pg = &pages[i];
    char ws[64] = "";
    for (size_t k = 0; k < pg->nblocks; k++) {
      const struct md_block *b = &pg->blocks[k];
      bool cmds =
          (strcmp(b->lang, "sh") == 0 || strcmp(b->lang, "console") == 0) &&
          strncmp(b->text, "$ ", 2) == 0;
      if (!cmds || ws[0]) {
        continue;
      }
      /* The page has commands: its files first. */
      ws_init(ws, sizeof ws);
      for (size_t f = 0; f < pg->nblocks; f++) {
        const char *name = md_word(&pg->blocks[f], "file=");
        if (name && !ws_write(ws, name, pg->blocks[f].text)) {
          problem(&p,
                  "%s:%d: file=%s: a path inside the source tree, "
                  "please",
                  pg->name, pg->blocks[f].line, name);
        }
      }
    }
    for (size_t k = 0; ws[0] && k < pg->nblocks; k++) {
      const struct md_block *b = &pg->blocks[k];
      if (strcmp(b->lang, "sh") != 0 && strcmp(b->lang, "console") != 0) {
        continue;
      }
      if (strncmp(b->text, "$ ", 2) == 0) {
        ncmds += run_block(&p, ws, pg, b);
      } else if (strstr(b->text, "\n$ ")) {
        problem(&p, "%s:%d: a block with \"$ \" commands starts with one",
                pg->name, b->line);
      }
    }
    if (ws[0]) {
      ws_remove(ws);
    }
  }
  problems_check(&p, "commands do not do what the docs show");
  cr_expect_gt(ncmds, 0, "no `$ iocd` command found in the docs");
  md_pages_free(pages, np);
}
