/*
 * The Markdown of README.md and of the pages in docs/ as the documentation
 * tests read it: fenced code blocks with their info strings, and table rows
 * with the header and the heading above them. Only what the tests need is
 * parsed:
 * ``` fences (indented ones too, as inside a list item), ATX headings and
 * pipe tables. Everything is allocated once per page and freed with it;
 * out of memory aborts (these are tests).
 */
#ifndef IOCD_TESTS_DOCS_DOCMD_H
#define IOCD_TESTS_DOCS_DOCMD_H

#include <stddef.h>

/* A fenced code block. */
struct md_block {
  int line;           /* of the opening fence, 1-based */
  const char *lang;   /* the first word of the info string, or "" */
  const char **words; /* the other words of the info string */
  size_t nwords;
  const char *text;    /* the lines inside, the fence's indentation removed */
  const char *heading; /* the nearest heading above, without its #s */
};

/* A row of a pipe table (not its header or separator). */
struct md_row {
  int line;
  const char *heading;
  const char **head; /* the header's cells, trimmed */
  size_t nhead;
  const char **cells; /* this row's cells, trimmed */
  size_t ncells;
};

struct md_page {
  char *name; /* relative to the source tree: "README.md", "docs/rules.md" */
  char *path; /* the file */
  struct md_block *blocks;
  size_t nblocks;
  struct md_row *rows;
  size_t nrows;
  void *arena;
};

/* The pages: README.md, then the .md files of docs/ in name order. Returns a
 * malloc'd array of *n pages (free with md_pages_free). */
struct md_page *md_pages(const char *srcdir, size_t *n);
void md_pages_free(struct md_page *pages, size_t n);

/* The word of b's info string that starts with prefix ("file="), after the
 * prefix, or NULL. */
const char *md_word(const struct md_block *b, const char *prefix);

/* A code span of a cell or heading: its text and where it starts. */
struct md_span {
  char *text; /* malloc'd */
  size_t at;  /* offset of the opening backtick in the string */
};

/* The `code spans` of s, in order: a malloc'd array of *n (free with
 * md_spans_free). */
struct md_span *md_spans(const char *s, size_t *n);
void md_spans_free(struct md_span *v, size_t n);

/* malloc, calloc, realloc and strdup that abort on failure. */
void *md_alloc(size_t n);
void *md_grow(void *p, size_t n);
char *md_strdup(const char *s);

#endif
