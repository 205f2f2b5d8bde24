/*
 * Helpers shared inside config/: the JSON-with-comments text layer (comment
 * blanking, the position scanner, line:col lookup), the value syntaxes
 * (durations, sizes, ${NAME} substitution, "did you mean" distance) and the
 * walker that reads a document against tables of keys. They are not part of
 * the public interface; the unit tests use them directly.
 */
#ifndef IOCD_CONFIG_CONFIG_INT_H
#define IOCD_CONFIG_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
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
  size_t *chars; /* characters before each 256-byte block of text */
};

int config__lines_init(struct config_lines *l, const char *text, size_t len);

/* The offset of the first \u0000 escape inside a JSON string of text, or
 * SIZE_MAX. */
size_t config__find_nul_escape(const char *text, size_t len);
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

/* One JSONC document as the walker reads it. order places its problems
 * among the others: SIZE_MAX sorts each problem at its own byte offset (the
 * main file); any other value sorts all of them there (a rule file's, at
 * the rule_files entry that names it). */
struct config__doc {
  const char *name;
  const char *text; /* comment-blanked */
  size_t len;
  const struct config_lines *lines;
  const struct config_posmap *pm;
  size_t order;
};

/* Takes one complete problem "FILE:LINE:COL: PATH: what" (or "FILE: what"
 * for the file as a whole); order sorts it among the others. */
typedef void config__sink_fn(void *ud, size_t order, const char *msg);

struct cJSON;
struct config;
struct config_kv;

/*
 * The walker (walk.c), shared by the loader and the rules sections: the
 * document being walked, the JSON path to the value at hand, and where
 * problems go. Objects are checked against tables of keys (name, type,
 * bounds, default, where the value goes); every problem names its place as
 * FILE:LINE:COL: PATH. cw_ stands for "config walker".
 */
struct cw {
  const struct config__doc *doc;
  struct buf path;
  config__sink_fn *sink;
  void *ud;
  bool nomem;
};

/* A JSON value and the index of its position node in the document. */
struct cw_val {
  const struct cJSON *j;
  size_t pi;
};

void cw_init(struct cw *c, config__sink_fn *sink, void *ud);
void cw_cleanup(struct cw *c);

/* Sends "FILE:LINE:COL: PATH: message" about the byte at off of the current
 * document to the sink; off SIZE_MAX: "FILE: PATH: message". */
void cw_report(struct cw *c, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same about key, a member of the value at hand (key is added to the
 * path for this one message). */
void cw_report_key(struct cw *c, const char *key, size_t off, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

/* Where a value starts, and where its key starts (the value when it has
 * none). */
size_t cw_voff(const struct cw *c, struct cw_val v);
/* A fingerprint of v's JSON text (core/hash.h), for config_diff. */
uint64_t cw_fingerprint(struct cw *c, struct cw_val v);
/* Records where offset off of the current document is (file, line, col). */
void cw_place(struct cw *c, size_t off, struct config_place *p);
size_t cw_koff(const struct cw *c, struct cw_val v);

/* The members of an object or the items of an array with their positions,
 * in order: a malloc'd array (possibly of 0 items), or NULL on ENOMEM (*n is
 * then 0). */
struct cw_val *cw_children(struct cw *c, struct cw_val v, size_t *n);

/* The first member named key of object v; false when absent or null. */
bool cw_find_child(struct cw *c, struct cw_val v, const char *key,
                   struct cw_val *out);

/* Where key's value is in object v, or v itself when it is absent. */
size_t cw_child_off(struct cw *c, struct cw_val v, const char *key);

/* The JSON path: append ".key" (["key"] for keys that are not plain names)
 * or "[i]", returning the mark that cw_path_pop restores; or replace it. */
size_t cw_path_key(struct cw *c, const char *key);
size_t cw_path_index(struct cw *c, size_t i);
void cw_path_pop(struct cw *c, size_t mark);
void cw_path_set(struct cw *c, const char *s);

/* Describing values in messages. cw_describe says what a value is, for
 * "got ...": a number as written, a quoted string, true, false, "an
 * object", "an array" or "null"; cw_quoted quotes a string, read back with
 * cw_qs. Either is released with cw_desc_done. */
struct cw_desc {
  struct buf b;
};

const char *cw_describe(struct cw *c, struct cw_val v, struct cw_desc *d);
void cw_quoted(struct cw *c, const char *s, struct cw_desc *d);
const char *cw_qs(const struct cw_desc *d);
void cw_desc_done(struct cw_desc *d);

/* Reports "expected EXPECTED, got <what v is>". */
void cw_report_type(struct cw *c, struct cw_val v, const char *expected);

/* Reading values. Each reports its problem and returns NULL or false. */

/* A string, its UTF-8 checked; ${NAME} substituted when env. Returns a new
 * string (the caller frees it). */
char *cw_get_str(struct cw *c, struct cw_val v, const char *expected, bool env);

/* The same, with ${NAME}, and not empty. */
char *cw_get_name(struct cw *c, struct cw_val v, const char *expected);

/* An integral JSON number that fits int64_t; reports nothing. */
bool cw_get_int(const struct cJSON *j, int64_t *out);

/* A number, or a percentage string such as "30%" (0.30). */
bool cw_get_number(struct cw *c, struct cw_val v, double *out);

/* Names of an enum, ending with {NULL, 0}. */
struct cw_enum {
  const char *name;
  int value;
};

/* One of the names of e, its value in *out; with ${NAME} when env. */
bool cw_get_enum(struct cw *c, struct cw_val v, const struct cw_enum *e,
                 bool env, int *out);

/* The name of value in e, or "unknown". */
const char *cw_enum_name(const struct cw_enum *e, int value);

/* An array of non-empty strings: a malloc'd array of *n, NULL where an
 * item is not one (reported); the caller frees it with cw_free_list. NULL
 * after reporting that v is not an array, or on ENOMEM. */
char **cw_get_names(struct cw *c, struct cw_val v, size_t *n);

/* An array of non-empty, distinct strings into *out (the caller frees it
 * with cw_free_list); repeats are reported and left out. */
void cw_get_string_list(struct cw *c, struct cw_val v, char ***out,
                        size_t *nout);
void cw_free_list(char **list, size_t n);
void cw_free_kv(struct config_kv *kv, size_t n);

/* Tables of keys. A key's value goes at off in the object's struct; min,
 * max and def are in the key's own terms: plain integers, milliseconds for
 * durations (stored divided by unit), bytes for sizes. */
enum cw_type {
  CW_STR,  /* a string with ${NAME}; "" is the same as absent */
  CW_EXPR, /* a non-empty string taken as written (an expression) */
  CW_BOOL,
  CW_INT,
  CW_DUR,
  CW_SIZE,
  CW_ENUM,
  CW_OBJ, /* a nested object, with its own table */
  CW_FN   /* read by the key's own function */
};

/* How an integer, duration or size is stored. */
enum cw_store { CW_AS_INT = 0, CW_AS_U32, CW_AS_I64, CW_AS_SIZE };

#define CW_REQ 1u      /* must be present */
#define CW_NONEMPTY 2u /* CW_STR: "" is a mistake, not "absent" */
#define CW_RAW 4u      /* CW_ENUM: taken as written, without ${NAME} */
/* CW_FN: what the key's function reads, for config_schema_each (the walker
 * does not use them): an array, or an object of names the user chooses,
 * whose items obj describes when they are objects. */
#define CW_LIST 8u
#define CW_MAP 16u
/* CW_STR: a name (a measurement, a tag, a topic): no control characters,
 * which would make every point carrying it unwritable. */
#define CW_NAME 32u

struct cw_object;
typedef void cw_set_fn(struct cw *c, struct cw_val v, void *base);

struct cw_key {
  const char *name;
  enum cw_type type;
  size_t off;
  unsigned flags;
  enum cw_store store;
  int64_t min, max;
  int64_t unit;
  int64_t def;
  const char *def_str;
  const struct cw_enum *names;
  const struct cw_object *obj;
  cw_set_fn *set;
};

/* At most this many keys in one table. */
#define CW_MAX_KEYS 32

struct cw_object {
  const struct cw_key *keys;
  size_t nkeys;
  /* Runs when the object is present, before its keys are read. */
  void (*begin)(void *base);
  /* Cross-field checks, after its keys are read. */
  cw_set_fn *check;
  /* Said after "unknown key" when no key is close: "unknown key (HINT)". */
  const char *unknown_hint;
};

#define CW_OBJECT(keys, begin, check) \
  { keys, sizeof(keys) / sizeof(keys[0]), begin, check, NULL }

/* A key read by its own function fn that holds a CW_LIST or a CW_MAP (fl)
 * of objects described by o, or of plain values (o NULL). */
#define CW_FN_OF(n, fn, fl, o) \
  { .name = n, .type = CW_FN, .flags = fl, .obj = o, .set = fn }

/* The rules sections as keys of the main file (rules_config.c), each with
 * the table its values are read with; the root's own table only names them,
 * since they are read after the walk. */
extern const struct cw_object config__rules_sections;

/* The "calendar" section's table and its defaults (calendar_config.c):
 * Asia/Ho_Chi_Minh, office hours 07:30-11:30 and 13:30-17:00, Monday to
 * Friday. */
extern const struct cw_object config__calendar_obj;
void config__calendar_defaults(struct cw *c, struct config_calendar *cal);

/* Sets the defaults of o's keys in base (nested objects too). */
void cw_defaults(struct cw *c, const struct cw_object *o, void *base);

/* Frees the strings of o's keys in base (nested objects too). */
void cw_free_strings(const struct cw_object *o, void *base);

/* Checks object v against o and stores what it finds in base: unknown,
 * repeated and missing keys, each value's type and bounds; null leaves the
 * default. Returns false when v is not an object (reported) or on ENOMEM. */
bool cw_walk(struct cw *c, struct cw_val v, const struct cw_object *o,
             void *base);

/* A cw_set_fn for keys that are known here and read elsewhere. */
void cw_skip(struct cw *c, struct cw_val v, void *base);

/* An object whose keys are names the user chose: checks that v is one
 * (else "expected EXPECTED"), reports keys that are not UTF-8 or repeat, and
 * calls fn with each other member's key on the path until it returns false.
 * Empty keys are reported as "empty name", unless empty_ok hands them to
 * fn. */
typedef bool cw_member_fn(struct cw *c, const char *key, struct cw_val v,
                          void *base);

/* Makes *room a zeroed array with an element of elem bytes for each member
 * of v (at least one) when v is an object, for cw_walk_map to fill. Returns
 * false on ENOMEM. */
bool cw_member_room(struct cw *c, struct cw_val v, size_t elem, void **room);
/* False, with a report at offset off, when the name s holds a control
 * character (C0, DEL or C1): such a name can be neither written to
 * InfluxDB nor shown. */
bool cw_name_ok(struct cw *c, size_t off, const char *s);
void cw_walk_map(struct cw *c, struct cw_val v, const char *expected,
                 bool empty_ok, cw_member_fn *fn, void *base);

/* Reads array v of objects (at most max) with table o into a new array of
 * *n elements of elem bytes, init preparing each before its walk (with the
 * path at the item); returns the array (the caller owns it) and, in
 * *items, the values of the items (the caller frees them). NULL, with *n 0
 * and *items NULL, after reporting that v is not such an array, or on
 * ENOMEM. */
void *cw_get_objects(struct cw *c, struct cw_val v, const struct cw_object *o,
                     size_t elem, size_t max, const char *expected,
                     void (*init)(struct cw *c, void *item), size_t *n,
                     struct cw_val **items);

/* Records in p where item is said to be: its key's value, or the item. */
void cw_place_at(struct cw *c, struct cw_val item, const char *key,
                 struct config_place *p);

/* Reports repeats among names[0..n), the "name" keys of the n items of
 * array list (NULL for an item without one): "X is already the name of
 * WHAT[i]", at the repeat's "name" (the path is the list's). */
void cw_check_unique(struct cw *c, struct cw_val list, const char *what,
                     const char *const *names, size_t n);

/* The closest of names to key for "did you mean", or NULL when none is
 * close. */
const char *cw_suggest(const char *const *names, size_t n, const char *key);
const char *cw_suggest_key(const struct cw_object *o, const char *key);

/* A name and where it came from, for finding repeats by sorting (lists can
 * hold thousands of districts). cw_find_repeats sorts refs[0..n) by name
 * and index and sets first[idx] for each to the index of the first ref
 * with the same name, or SIZE_MAX for that first one; first has room for
 * the largest idx + 1. */
struct cw_nref {
  const char *name;
  size_t idx;
};

void cw_find_repeats(struct cw_nref *refs, size_t n, size_t *first);

/* Makes room for item n of *arr (elements of elem bytes, *cap of them),
 * doubling. Returns false on ENOMEM. */
bool cw_grow(void **arr, size_t elem, size_t n, size_t *cap);

/* A document read from text, with the storage behind its config__doc. */
struct cw_file {
  struct config__doc doc;
  char *copy;                /* the comment-blanked copy that cJSON parsed */
  struct config_lines lines; /* over the text as given */
  struct config_posmap pm;   /* filled by the caller with config__scan */
  struct cJSON *json;
};

/* Makes f->doc the current document of c and reads text into it (the
 * caller has set f->doc.name and f->doc.order; text must outlive f, whose
 * columns are counted in it): copies it, blanks its comments and parses it.
 * A NUL byte, an unterminated comment, a blank text (when empty is not NULL:
 * that message) or a syntax error is reported. Returns IOCD_OK with
 * f->json, IOCD_EPARSE or IOCD_ENOMEM. */
int cw_file_load(struct cw *c, struct cw_file *f, const char *text, size_t len,
                 const char *empty);
void cw_file_cleanup(struct cw_file *f);

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

/* "07:30" to minutes after midnight in *min; "24:00" is allowed (as the
 * end of a span). Returns false when s does not start with HH:MM. */
bool config__parse_hhmm(const char *s, int *min);

/* The byte offset in text t (of len bytes) of character col (1-based) of
 * the JSON string whose opening quote is at offset q: escapes count as the
 * one character they stand for. Past the end: the closing quote. For
 * messages that point into a string (an expression, a regex). */
size_t config__string_char_off(const char *t, size_t len, size_t q, int col);

/* The "notifications" section (notify_config.c). Its table as a key of the
 * main file, for config_schema_each (the root's own table only names it:
 * the section is read after the walk, since a receiver's language defaults
 * to the top-level one). */
extern const struct cw_object config__notify_section;

/* Reads "notifications" of root into cfg->notify, or its defaults when it
 * is absent, with c (whose document is the main file). Names, references,
 * matchers and regexes are checked; when notifications are enabled, the
 * secrets of token_file and password_file are read. Problems go to c's
 * sink; ENOMEM sets c->nomem. */
void config__load_notify(struct cw *c, struct cw_val root, struct config *cfg);

/* Frees what config__load_notify put in n and zeroes it. */
void config__free_notify(struct config_notify *n);

/* The receivers of the "notifications" section (notify_receivers.c), for
 * notify_config.c: their table (for the schema), the reader of the
 * "receivers" key (base: struct config_notify), the checks that need the
 * whole section (language defaults, names unique, the secret files read
 * when enabled), and the freeing of one. */
extern const struct cw_object config__receiver_obj;
void config__set_receivers(struct cw *c, struct cw_val v, void *base);
void config__check_receivers(struct cw *c, struct cw_val v,
                             struct config_notify *n,
                             enum config_language language);
void config__free_receiver(struct config_receiver *r);

/* Secrets (notify_receivers.c), read alike by the receivers and the API's
 * tokens. A message about one says where it is and what is wrong, never
 * what it holds.
 *
 * config__get_secret: a secret written in the file, a non-empty string
 * without control characters, with ${NAME} substituted. Returns a new
 * string (the caller frees it), or NULL after a report.
 *
 * config__resolve_path: makes *path (a file named in the main file, NULL
 * for none) relative to the main file's directory, as rule files are.
 *
 * config__read_secret_file: reads the secret of the *_file key of object
 * item, whose resolved path is *path (NULL: nothing to read), into *dst
 * (replacing what it held): the file without one trailing newline, at most
 * 64 KiB, UTF-8 without control characters; warns in the log when every
 * user of the machine can read it. */
char *config__get_secret(struct cw *c, struct cw_val v);
void config__resolve_path(struct cw *c, char **path);
void config__read_secret_file(struct cw *c, struct cw_val item, const char *key,
                              char **path, char **dst);

/* The "api" section (api_config.c): its table, whose check reads the token
 * and TLS files while the API is enabled, and the freeing of what it put in
 * a (the key material scrubbed). */
extern const struct cw_object config__api_obj;
void config__free_api(struct config_api *a);

/* Reports at key of obj when url is not an http:// or https:// URL with a
 * host. Only the scheme is quoted (a URL may carry a password). */
void config__check_http_url(struct cw *c, struct cw_val obj, const char *key,
                            const char *url);

/* Resolves a time zone: a name from iocd's table of zones without daylight
 * saving time ("Asia/Ho_Chi_Minh"), "UTC", or "+07:00"/"-03:30". Returns
 * IOCD_OK with *offset_s, or IOCD_ENOTFOUND. */
int config__timezone_offset(const char *tz, int32_t *offset_s);

#endif
