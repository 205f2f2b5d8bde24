/*
 * Label matchers: the one-string form the API and the configuration
 * accept (table-driven, with the errors a person reads), anchored regular
 * expressions, and absent labels reading as empty.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "alerts/match.h"

static struct notice_labels labels(const char *district) {
  struct notice_labels ls = {0};
  notice_labels_set(&ls, "alertname", "online_share_low");
  notice_labels_set(&ls, "severity", "warning");
  if (district) {
    notice_labels_set(&ls, "district", district);
  }
  return ls;
}

Test(match, parses_the_four_operators_and_quoted_values) {
  static const struct {
    const char *text;
    const char *name;
    enum config_match_op op;
    const char *value;
  } cases[] = {
      {"district=Krông Búk", "district", CONFIG_MATCH_EQ, "Krông Búk"},
      {"severity!=info", "severity", CONFIG_MATCH_NE, "info"},
      {"alertname=~online_share.*", "alertname", CONFIG_MATCH_RE,
       "online_share.*"},
      {"alertname!~feed_.*", "alertname", CONFIG_MATCH_NRE, "feed_.*"},
      {" district = \"Krông Búk \"", "district", CONFIG_MATCH_EQ, "Krông Búk "},
      {"note=\"say \\\"hi\\\" \\\\ ok\"", "note", CONFIG_MATCH_EQ,
       "say \"hi\" \\ ok"},
      {"district=", "district", CONFIG_MATCH_EQ, ""},
      {"a=b=c", "a", CONFIG_MATCH_EQ, "b=c"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct config_matcher m;
    struct iocd_err err = {{0}};
    cr_assert_eq(match_parse(cases[i].text, &m, &err), IOCD_OK, "%s: %s",
                 cases[i].text, err.msg);
    cr_assert_str_eq(m.name, cases[i].name, "%s", cases[i].text);
    cr_assert_eq(m.op, cases[i].op, "%s", cases[i].text);
    cr_assert_str_eq(m.value, cases[i].value, "%s", cases[i].text);
    match_matcher_cleanup(&m);
  }
}

Test(match, rejects_what_is_not_a_matcher_with_a_clear_error) {
  static const struct {
    const char *text;
    const char *msg;
  } cases[] = {
      {"district~Krông",
       "\"district~Krông\": expected NAME=VALUE, "
       "NAME!=VALUE, NAME=~REGEX or NAME!~REGEX"},
      {"=x",
       "\"=x\": a matcher starts with a label name: expected "
       "NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX"},
      {"9a=b",
       "\"9a=b\": a matcher starts with a label name: expected "
       "NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX"},
      {"district",
       "\"district\": expected NAME=VALUE, NAME!=VALUE, "
       "NAME=~REGEX or NAME!~REGEX"},
      {"a=\"open",
       "\"a=\"open\": the quoted value is not closed, or text "
       "follows its closing quote"},
      {"a=\"x\" y",
       "\"a=\"x\" y\": the quoted value is not closed, or "
       "text follows its closing quote"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct config_matcher m;
    struct iocd_err err = {{0}};
    cr_assert_eq(match_parse(cases[i].text, &m, &err), IOCD_EPARSE, "%s",
                 cases[i].text);
    cr_assert_str_eq(err.msg, cases[i].msg);
    cr_assert_null(m.name);
  }
  struct config_matcher m;
  struct iocd_err err = {{0}};
  cr_assert_eq(match_parse("alertname=~(online", &m, &err), IOCD_EPARSE);
  cr_assert(strncmp(err.msg,
                    "\"alertname=~(online\": the regular expression does "
                    "not compile: ",
                    60) == 0,
            "%s", err.msg);
}

Test(match, regexes_are_anchored_at_both_ends) {
  struct config_matcher cm = {"district", CONFIG_MATCH_RE, "Krông.*"};
  struct match_set s = {0};
  cr_assert_eq(match_compile(&s, &cm, 1, NULL), IOCD_OK);
  struct notice_labels a = labels("Krông Búk");
  struct notice_labels b = labels("Huyện Krông Búk");
  struct notice_labels c = labels("Krông Pắc");
  cr_assert(match_labels(&s, &a));
  cr_assert_not(match_labels(&s, &b));
  cr_assert(match_labels(&s, &c));
  match_set_cleanup(&s);
  struct config_matcher alt = {"district", CONFIG_MATCH_NRE, "Krông Búk|Lắk"};
  cr_assert_eq(match_compile(&s, &alt, 1, NULL), IOCD_OK);
  cr_assert_not(match_labels(&s, &a), "the alternation is inside ^( )$");
  cr_assert(match_labels(&s, &b));
  match_set_cleanup(&s);
  notice_labels_cleanup(&a);
  notice_labels_cleanup(&b);
  notice_labels_cleanup(&c);
}

Test(match, an_absent_label_reads_as_empty) {
  struct config_matcher has = {"district", CONFIG_MATCH_NE, ""};
  struct config_matcher none = {"district", CONFIG_MATCH_EQ, ""};
  struct match_set s1 = {0}, s2 = {0};
  cr_assert_eq(match_compile(&s1, &has, 1, NULL), IOCD_OK);
  cr_assert_eq(match_compile(&s2, &none, 1, NULL), IOCD_OK);
  struct notice_labels with = labels("Lắk");
  struct notice_labels without = labels(NULL);
  cr_assert(match_labels(&s1, &with));
  cr_assert_not(match_labels(&s1, &without));
  cr_assert_not(match_labels(&s2, &with));
  cr_assert(match_labels(&s2, &without));
  match_set_cleanup(&s1);
  match_set_cleanup(&s2);
  notice_labels_cleanup(&with);
  notice_labels_cleanup(&without);
}

Test(match, all_matchers_of_a_set_must_match) {
  struct config_matcher cm[2] = {
      {"alertname", CONFIG_MATCH_EQ, "online_share_low"},
      {"severity", CONFIG_MATCH_EQ, "critical"},
  };
  struct match_set s = {0};
  cr_assert_eq(match_compile(&s, cm, 2, NULL), IOCD_OK);
  struct notice_labels ls = labels("Lắk");
  cr_assert_not(match_labels(&s, &ls));
  notice_labels_set(&ls, "severity", "critical");
  cr_assert(match_labels(&s, &ls));
  match_set_cleanup(&s);
  struct match_set empty = {0};
  cr_assert(match_labels(&empty, &ls), "no matchers match everything");
  notice_labels_cleanup(&ls);
}

Test(match, a_bad_regex_in_a_set_names_the_matcher) {
  struct config_matcher cm[2] = {
      {"alertname", CONFIG_MATCH_EQ, "x"},
      {"district", CONFIG_MATCH_RE, "(Krông"},
  };
  struct match_set s = {0};
  struct iocd_err err = {{0}};
  cr_assert_eq(match_compile(&s, cm, 2, &err), IOCD_EINVAL);
  cr_assert(strncmp(err.msg,
                    "matchers[1]: district=~(Krông: the regular expression "
                    "does not compile",
                    60) == 0,
            "%s", err.msg);
  cr_assert_eq(s.n, 0);
}

Test(match, formats_matchers_with_quotes_escaped) {
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(match_format(&b, "note", CONFIG_MATCH_RE, "a\"b\\c"), IOCD_OK);
  cr_assert_str_eq(b.data, "note=~\"a\\\"b\\\\c\"");
  buf_cleanup(&b);
}

Test(notice, fingerprint_leaves_severity_out_and_separates_pairs) {
  struct notice_labels w = labels("Lắk");
  struct notice_labels c = labels("Lắk");
  notice_labels_set(&c, "severity", "critical");
  cr_assert_eq(notice_labels_fingerprint(&w), notice_labels_fingerprint(&c));
  struct notice_labels x = {0}, y = {0};
  notice_labels_set(&x, "ab", "c");
  notice_labels_set(&y, "a", "bc");
  cr_assert_neq(notice_labels_fingerprint(&x), notice_labels_fingerprint(&y));
  struct notice_labels other = labels("Krông Búk");
  cr_assert_neq(notice_labels_fingerprint(&w),
                notice_labels_fingerprint(&other));
  cr_assert_str_eq(w.v[0].name, "alertname", "kept sorted");
  cr_assert_str_eq(w.v[1].name, "district");
  cr_assert_str_eq(w.v[2].name, "severity");
  notice_labels_cleanup(&w);
  notice_labels_cleanup(&c);
  notice_labels_cleanup(&x);
  notice_labels_cleanup(&y);
  notice_labels_cleanup(&other);
}

Test(notice, dup_copies_everything) {
  struct notice *n = notice_new();
  n->receiver = strdup("operators");
  n->group_key = strdup("{}:{}");
  n->alerts = calloc(1, sizeof *n->alerts);
  n->nalerts = 1;
  n->alerts[0].labels = labels("Lắk");
  n->alerts[0].acked_by = strdup("an");
  struct notice *d = notice_dup(n);
  cr_assert_not_null(d);
  cr_assert_neq(d->alerts[0].labels.v, n->alerts[0].labels.v);
  cr_assert_str_eq(d->alerts[0].acked_by, "an");
  cr_assert_str_eq(notice_label_get(&d->alerts[0].labels, "district"), "Lắk");
  notice_free(n);
  notice_free(d);
  cr_assert_str_eq(notice_kind_name(NOTICE_STORM), "storm");
  cr_assert_str_eq(notice_status_name(NOTICE_RESOLVED), "resolved");
}
