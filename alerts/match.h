/*
 * Label matchers, as routes, inhibition rules and silences use them:
 * NAME=VALUE, NAME!=VALUE, NAME=~REGEX, NAME!~REGEX. A regular expression
 * is POSIX extended and anchored at both ends (Alertmanager's meaning:
 * "Krông.*" matches "Krông Búk" but not "Huyện Krông Búk"). A label that
 * is absent reads as the empty string, so "district!=" matches only alerts
 * that have a district.
 *
 * Pure: no I/O. A compiled set owns its regexes and copies of the text.
 */
#ifndef IOCD_ALERTS_MATCH_H
#define IOCD_ALERTS_MATCH_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "alerts/notice.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"

/* One compiled matcher; re is valid for CONFIG_MATCH_RE and _NRE. */
struct match {
  char *name;
  enum config_match_op op;
  char *value;
  regex_t re;
};

/* Matchers that must all match; none matches every label set. Caller
 * storage: {0} is the empty set. */
struct match_set {
  struct match *v;
  size_t n;
};

/* Compiles n matchers from m (borrowed) into *out, which must be {0} or
 * cleaned up. Returns IOCD_OK, IOCD_ENOMEM, or IOCD_EINVAL with err saying
 * which one is wrong ("matchers[1]: district=~(Krông: the regular
 * expression does not compile: ..."). On failure *out is left empty. */
int match_compile(struct match_set *out, const struct config_matcher *m,
                  size_t n, struct iocd_err *err);

/* Frees what match_compile made and leaves s empty. */
void match_set_cleanup(struct match_set *s);

/* Whether every matcher of s matches ls (borrowed). */
bool match_labels(const struct match_set *s, const struct notice_labels *ls);

/* Whether the one matcher m matches value (NULL reads as ""). */
bool match_one(const struct match *m, const char *value);

/* Parses one matcher as the API and the configuration write it:
 * NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX, NAME a label name
 * ([A-Za-z_][A-Za-z0-9_]*). Spaces before the name and around the operator
 * are skipped. The value may be written in double quotes (\" and \\ escaped
 * inside), which keeps spaces at its ends; otherwise it is the rest of the
 * text as is. A regex is checked by compiling it. On
 * success *out owns malloc'd copies (free with match_matcher_cleanup) and
 * IOCD_OK is returned; else IOCD_EPARSE with err saying what is wrong
 * ("\"district~Krông\": expected NAME=VALUE, NAME!=VALUE, NAME=~REGEX or
 * NAME!~REGEX"), or IOCD_ENOMEM. */
int match_parse(const char *s, struct config_matcher *out,
                struct iocd_err *err);

/* Frees the strings of a matcher match_parse filled in. */
void match_matcher_cleanup(struct config_matcher *m);

/* The operator as written: "=", "!=", "=~" or "!~". */
const char *match_op_text(enum config_match_op op);

/* Appends m as NAME<op>"VALUE" (quotes and backslashes escaped) to out,
 * the form route keys use. Returns IOCD_OK, IOCD_ENOMEM or IOCD_ETOOBIG. */
int match_format(struct buf *out, const char *name, enum config_match_op op,
                 const char *value);

#endif
