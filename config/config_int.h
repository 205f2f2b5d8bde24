/*
 * Helpers shared inside config/: the JSON-with-comments text layer (comment
 * blanking, the position scanner, line:col lookup) and the value syntaxes
 * (durations, sizes, ${NAME} substitution, "did you mean" distance). They are
 * not part of the public interface; the unit tests use them directly.
 */
#ifndef IOCD_CONFIG_CONFIG_INT_H
#define IOCD_CONFIG_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* Overwrites // and block comments in s[0..len) with spaces, keeping every
 * newline and byte offset, and leaving string contents alone. Returns
 * IOCD_OK, or IOCD_EPARSE with *bad_at set to the offset of the "/" that
 * opens an unterminated block comment. */
int config__blank_comments(char *s, size_t len, size_t *bad_at);

/* Where one JSON value sits in the text. The scanner emits the nodes of the
 * document in pre-order, so the children of node i start at i + 1 and the
 * next sibling of a node is at its `end`. The order matches cJSON's child
 * lists, duplicates included, which is how a cJSON item finds its node. */
struct config_pos {
  size_t key;   /* offset of the key's opening quote; SIZE_MAX if none */
  size_t value; /* offset of the value's first byte */
  size_t end;   /* index of the first node after this subtree */
};

struct config_posmap {
  struct config_pos *v;
  size_t n, cap;
};

/* Records the position of every key and value of the comment-blanked text
 * s[0..len), which cJSON has already accepted. Returns IOCD_OK, IOCD_ENOMEM,
 * or IOCD_EPARSE when the text is not the JSON it should be. The caller frees
 * map->v. */
int config__scan(const char *s, size_t len, struct config_posmap *map);

/* Line starts of a text, to turn byte offsets into 1-based line:column
 * (columns count characters, not bytes, as editors do). */
struct config_lines {
  const char *text;
  size_t len;
  size_t *start;
  size_t n;
};

int config__lines_init(struct config_lines *l, const char *text, size_t len);
void config__lines_cleanup(struct config_lines *l);
void config__lines_at(const struct config_lines *l, size_t off, int *line,
                      int *col);

/* Parses a duration: an unsigned integer followed by ms, s, m, h or d.
 * Returns IOCD_OK with *ms, IOCD_EPARSE when s is not a duration, or
 * IOCD_ERANGE when it does not fit in int64 milliseconds. */
int config__parse_duration(const char *s, int64_t *ms);

/* Parses a size: an unsigned integer, optionally followed by B, KiB, MiB or
 * GiB. Same returns as config__parse_duration. */
int config__parse_size(const char *s, int64_t *bytes);

/* Write the shortest exact form of a duration ("90s", "5m", "1d") or size
 * ("64KiB", "1000B") into out. */
void config__format_duration(int64_t ms, char *out, size_t n);
void config__format_size(int64_t bytes, char *out, size_t n);

/* Replaces ${NAME} by the environment variable NAME and $${ by a literal ${.
 * Returns IOCD_OK with *out (malloc'd, caller frees), IOCD_ENOMEM, or
 * IOCD_EPARSE with the reason in err (an unset variable, a bad reference). */
int config__expand_env(const char *s, char **out, struct iocd_err *err);

/* Edit distance with adjacent transpositions, for "did you mean". Strings
 * longer than 64 bytes get a distance larger than any threshold. */
size_t config__distance(const char *a, const char *b);

/* Appends s to b as a double-quoted, escaped string of at most max bytes of
 * s (cut at a character boundary, then "..."). */
int config__quote(struct buf *b, const char *s, size_t max);

/* The rules sections (rules_config.c). The loader hands over the main
 * file as parsed: its comment-blanked text, lines and positions, and the
 * cJSON root. Problems go to sink, each a complete line
 * "FILE:LINE:COL: PATH: what", with order, a byte offset in the main file,
 * placing it among the loader's own (problems in a rule file are ordered at
 * the rule_files entry that names it). */
struct config__doc {
  const char *name;
  const char *text;
  size_t len;
  const struct config_lines *lines;
  const struct config_posmap *pm;
};

typedef void config__sink_fn(void *ud, size_t order, const char *msg);

struct cJSON;
struct config;

/* Reads "calendar", "sources", "rule_engine", "params", "rules" and
 * "rule_files" of root into cfg (defaults when absent), loads the rule
 * files relative to the main file's directory, and checks every expression,
 * parameter, calendar name and duplicate. Returns IOCD_OK (problems, if
 * any, went to sink) or IOCD_ENOMEM. */
int config__load_rules(const struct config__doc *doc, const struct cJSON *root,
                       struct config *cfg, config__sink_fn *sink, void *ud);

/* Frees what config__load_rules put in cfg. */
void config__free_rules(struct config *cfg);

/* Dates for the calendar: "YYYY-MM-DD" to days since 1970-01-01, and back
 * (out holds 11 bytes). Returns IOCD_OK or IOCD_EPARSE. */
int config__parse_date(const char *s, size_t n, int32_t *days);
void config__format_date(int32_t days, char *out, size_t n);

/* Resolves a time zone: a name from iocd's table of zones without daylight
 * saving time ("Asia/Ho_Chi_Minh"), "UTC", or "+07:00"/"-03:30". Returns
 * IOCD_OK with *offset_s, or IOCD_ENOTFOUND. */
int config__timezone_offset(const char *tz, int32_t *offset_s);

#endif
