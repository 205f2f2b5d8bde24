/*
 * Reading the documentation's Markdown for the documentation tests (see
 * docmd.h). Line based: a fence opens with ``` (indented by at most three
 * spaces; four make an indented code block, which is not read) and an
 * optional info string, and closes with ``` alone on a line; headings and
 * tables count only outside fences.
 */
#include "tests/docs/docmd.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *md_alloc(size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (!p) {
    abort();
  }
  return p;
}

void *md_grow(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    abort();
  }
  return q;
}

char *md_strdup(const char *s) {
  char *d = strdup(s);
  if (!d) {
    abort();
  }
  return d;
}

/* Everything a page allocates, freed with it. */
struct arena {
  void **v;
  size_t n;
};

static void *keep(struct md_page *pg, void *p) {
  struct arena *a = pg->arena;
  a->v = md_grow(a->v, (a->n + 1) * sizeof *a->v);
  a->v[a->n++] = p;
  return p;
}

static char *keep_str(struct md_page *pg, const char *s, size_t n) {
  char *d = md_alloc(n + 1);
  memcpy(d, s, n);
  return keep(pg, d);
}

static const char *skip_ws(const char *s) {
  while (*s == ' ' || *s == '\t') {
    s++;
  }
  return s;
}

static char *trimmed(struct md_page *pg, const char *s, size_t n) {
  while (n > 0 && (*s == ' ' || *s == '\t')) {
    s++;
    n--;
  }
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) {
    n--;
  }
  return keep_str(pg, s, n);
}

/* The cells of a table line "| a | b |": split at the pipes that are not
 * escaped (GFM: a "\|" is a pipe inside a cell, code spans included). */
static const char **split_cells(struct md_page *pg, const char *line,
                                size_t *n) {
  const char *s = skip_ws(line);
  size_t len = strlen(s);
  while (len > 0 && strchr(" \t\r", s[len - 1])) {
    len--;
  }
  if (len > 0 && *s == '|') {
    s++;
    len--;
  }
  if (len > 0 && s[len - 1] == '|' && !(len > 1 && s[len - 2] == '\\')) {
    len--;
  }
  const char **cells = NULL;
  *n = 0;
  char *cell = md_alloc(len + 1);
  size_t cl = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i < len && s[i] == '\\' && i + 1 < len && s[i + 1] == '|') {
      cell[cl++] = '|';
      i++;
    } else if (i == len || s[i] == '|') {
      cells = md_grow(cells, (*n + 1) * sizeof *cells);
      cells[(*n)++] = trimmed(pg, cell, cl);
      cl = 0;
    } else {
      cell[cl++] = s[i];
    }
  }
  free(cell);
  return keep(pg, cells);
}

static bool is_separator(const char *line) {
  const char *s = skip_ws(line);
  if (*s != '|') {
    return false;
  }
  for (; *s; s++) {
    if (!strchr("|-: \t\r", *s)) {
      return false;
    }
  }
  return true;
}

/* Splits text into lines in place; returns them (malloc'd) and their count. */
static char **split_lines(char *text, size_t *n) {
  char **lines = NULL;
  *n = 0;
  char *s = text;
  while (*s) {
    char *nl = strchr(s, '\n');
    lines = md_grow(lines, (*n + 1) * sizeof *lines);
    lines[(*n)++] = s;
    if (!nl) {
      break;
    }
    *nl = '\0';
    s = nl + 1;
  }
  return lines;
}

static void add_block(struct md_page *pg, int line, const char *info,
                      const char *text, const char *heading) {
  pg->blocks = md_grow(pg->blocks, (pg->nblocks + 1) * sizeof *pg->blocks);
  struct md_block *b = &pg->blocks[pg->nblocks++];
  memset(b, 0, sizeof *b);
  b->line = line;
  b->text = text;
  b->heading = heading;
  const char *s = skip_ws(info);
  const char *end = s + strcspn(s, " \t\r");
  b->lang = keep_str(pg, s, (size_t)(end - s));
  for (s = skip_ws(end); *s && *s != '\r'; s = skip_ws(end)) {
    end = s + strcspn(s, " \t\r");
    b->words = md_grow(b->words, (b->nwords + 1) * sizeof *b->words);
    b->words[b->nwords++] = keep_str(pg, s, (size_t)(end - s));
  }
  keep(pg, b->words);
}

static void parse_page(struct md_page *pg, char *text) {
  size_t n;
  char **lines = split_lines(text, &n);
  const char *heading = "";
  bool in_fence = false;
  size_t indent = 0;
  int fence_line = 0;
  const char *fence_info = "";
  char *body = NULL;
  size_t blen = 0;
  const char **head = NULL;
  size_t nhead = 0;
  for (size_t i = 0; i < n; i++) {
    const char *line = lines[i];
    const char *s = skip_ws(line);
    if (in_fence) {
      if (strncmp(s, "```", 3) == 0 && *skip_ws(s + 3) == '\0') {
        in_fence = false;
        add_block(pg, fence_line, fence_info, keep_str(pg, body, blen),
                  heading);
        free(body);
        body = NULL;
        continue;
      }
      size_t ws = (size_t)(s - line);
      const char *content = line + (ws < indent ? ws : indent);
      size_t cl = strlen(content);
      body = md_grow(body, blen + cl + 2);
      memcpy(body + blen, content, cl);
      blen += cl;
      body[blen++] = '\n';
      body[blen] = '\0';
      continue;
    }
    if (strncmp(s, "```", 3) == 0 && s - line < 4) {
      in_fence = true;
      indent = (size_t)(s - line);
      fence_line = (int)i + 1;
      fence_info = keep_str(pg, s + 3, strlen(s + 3));
      body = md_alloc(1);
      blen = 0;
      head = NULL;
      continue;
    }
    if (*line == '#') {
      const char *h = line;
      while (*h == '#') {
        h++;
      }
      if (*h == ' ') {
        heading = trimmed(pg, h, strlen(h));
        head = NULL;
        continue;
      }
    }
    if (*s != '|') {
      head = NULL;
      continue;
    }
    if (!head && i + 1 < n && is_separator(lines[i + 1])) {
      head = split_cells(pg, line, &nhead);
      i++;
      continue;
    }
    if (head) {
      pg->rows = md_grow(pg->rows, (pg->nrows + 1) * sizeof *pg->rows);
      struct md_row *r = &pg->rows[pg->nrows++];
      r->line = (int)i + 1;
      r->heading = heading;
      r->head = head;
      r->nhead = nhead;
      r->cells = split_cells(pg, line, &r->ncells);
    }
  }
  free(body);
  free(lines);
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    return NULL;
  }
  char *s = NULL;
  size_t len = 0;
  char chunk[65536];
  size_t got;
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
    s = md_grow(s, len + got + 1);
    memcpy(s + len, chunk, got);
    len += got;
  }
  fclose(f);
  if (!s) {
    s = md_alloc(1);
  }
  s[len] = '\0';
  return s;
}

static void load_page(struct md_page *pg, const char *srcdir,
                      const char *name) {
  memset(pg, 0, sizeof *pg);
  pg->arena = md_alloc(sizeof(struct arena));
  pg->name = md_strdup(name);
  size_t plen = strlen(srcdir) + strlen(name) + 2;
  pg->path = md_alloc(plen);
  snprintf(pg->path, plen, "%s/%s", srcdir, name);
  char *text = read_all(pg->path);
  if (!text) {
    fprintf(stderr, "cannot read %s\n", pg->path);
    abort();
  }
  keep(pg, text);
  parse_page(pg, text);
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

struct md_page *md_pages(const char *srcdir, size_t *n) {
  char **names = md_alloc(sizeof *names);
  size_t nn = 0;
  names[nn++] = md_strdup("README.md");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/docs", srcdir);
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "cannot open %s\n", dir);
    abort();
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    if (len > 3 && strcmp(de->d_name + len - 3, ".md") == 0) {
      names = md_grow(names, (nn + 1) * sizeof *names);
      names[nn] = md_alloc(len + 6);
      snprintf(names[nn++], len + 6, "docs/%s", de->d_name);
    }
  }
  closedir(d);
  qsort(names + 1, nn - 1, sizeof *names, cmp_names);
  struct md_page *pages = md_alloc(nn * sizeof *pages);
  for (size_t i = 0; i < nn; i++) {
    load_page(&pages[i], srcdir, names[i]);
    free(names[i]);
  }
  free(names);
  *n = nn;
  return pages;
}

void md_pages_free(struct md_page *pages, size_t n) {
  for (size_t i = 0; i < n; i++) {
    struct arena *a = pages[i].arena;
    for (size_t k = 0; k < a->n; k++) {
      free(a->v[k]);
    }
    free(a->v);
    free(a);
    free(pages[i].blocks);
    free(pages[i].rows);
    free(pages[i].name);
    free(pages[i].path);
  }
  free(pages);
}

const char *md_word(const struct md_block *b, const char *prefix) {
  size_t pl = strlen(prefix);
  for (size_t i = 0; i < b->nwords; i++) {
    if (strncmp(b->words[i], prefix, pl) == 0) {
      return b->words[i] + pl;
    }
  }
  return NULL;
}

struct md_span *md_spans(const char *s, size_t *n) {
  struct md_span *v = NULL;
  *n = 0;
  for (const char *p = s; (p = strchr(p, '`')) != NULL;) {
    const char *end = strchr(p + 1, '`');
    if (!end) {
      break;
    }
    v = md_grow(v, (*n + 1) * sizeof *v);
    size_t len = (size_t)(end - p - 1);
    v[*n].text = md_alloc(len + 1);
    memcpy(v[*n].text, p + 1, len);
    v[*n].at = (size_t)(p - s);
    (*n)++;
    p = end + 1;
  }
  return v;
}

void md_spans_free(struct md_span *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(v[i].text);
  }
  free(v);
}
