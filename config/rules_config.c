/*
 * The rules sections of the configuration: the sources that silent-feed
 * rules expect, per-group parameters, the rules and the rule files they may
 * live in (the working calendar's section is calendar_config.c). The loader (config.c) hands over the
 * parsed main file; this file walks those sections with tables of keys like
 * the loader's own, loads each rule file, merges their parameters and rules,
 * and then checks what needs everything loaded: duplicate names (naming both
 * places), expressions (parsed here, so an error points INTO the expression
 * string at FILE:LINE:COL), unknown $parameters and calendar names.
 *
 * Every document stays loaded until the end, so a late check can still
 * point at the text of any file.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "config/config_int.h"
#include "core/container.h"
#include "core/file.h"
#include "rules/calendar.h"
#include "rules/engine.h"
#include "rules/expr.h"

#define MAX_RULE_FILES 64
#define MAX_RULES 10000
#define MAX_PARAMS 1000
#define RULE_FILE_MAX (16u << 20)
#define NAME_MAX_LEN 128

#define MS_S INT64_C(1000)
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)

/* The calendars an expression's during() may name: the "calendar"
 * section is the one calendar, called "office_hours" as the engine's
 * default is. */
static const char *const calendar_periods[] = {"office_hours", NULL};

/* One JSONC document: the main file (borrowed from the loader) or a rule
 * file, read here from path; its columns are counted in orig, the text as
 * read, and file holds the rest. */
struct rdoc {
  const struct config__doc *doc;
  const cJSON *root;
  char *path;
  char *orig;
  struct cw_file file;
  bool has_id; /* dev and ino name the file, whatever the path */
  dev_t dev;
  ino_t ino;
};

/* Where a rule came from, for the checks after the merge. */
struct rule_src {
  size_t doc;
  size_t index; /* in its file's "rules" */
  struct cw_val v;
};

struct param_src {
  size_t doc;
  struct cw_val v; /* the member: key and value */
};

/* One load of the rules sections: the walker (its doc is the document
 * being walked), every document read so far (docs[0] is the main file),
 * and where each rule and parameter came from. */
struct rctx {
  struct cw w;
  struct rdoc *docs[MAX_RULE_FILES + 1];
  size_t ndocs;
  struct config *cfg;
  struct rule_src *rsrc; /* parallel to cfg->rules.v */
  size_t caprules, caprsrc;
  struct param_src *psrc; /* parallel to cfg->rules.params */
  size_t capparams, cappsrc;
};

static struct rctx *rctx_of(struct cw *c) {
  return container_of(c, struct rctx, w);
}

/* Tables of keys. Here a string may not be empty, durations are kept in
 * milliseconds and enums are taken as written. */
#define RSTR(n, t, f, d)                                            \
  {                                                                 \
    .name = n, .type = CW_STR, .off = offsetof(t, f), .def_str = d, \
    .flags = CW_NONEMPTY                                            \
  }
#define REXPR(n, t, f, fl) \
  { .name = n, .type = CW_EXPR, .off = offsetof(t, f), .flags = fl }
#define RBOOL(n, t, f, d) \
  { .name = n, .type = CW_BOOL, .off = offsetof(t, f), .def = d }
#define RDUR(n, t, f, lo, hi, d)                                          \
  {                                                                       \
    .name = n, .type = CW_DUR, .off = offsetof(t, f), .store = CW_AS_I64, \
    .unit = 1, .min = lo, .max = hi, .def = d                             \
  }
#define RENUM(n, t, f, e, d, fl)                                             \
  {                                                                          \
    .name = n, .type = CW_ENUM, .off = offsetof(t, f), .names = e, .def = d, \
    .flags = CW_RAW | (fl)                                                   \
  }
#define RFN(n, fn) \
  { .name = n, .type = CW_FN, .set = fn }

/* Objects whose keys are the user's names with string values. */

struct kv_list {
  struct config_kv *v;
  size_t n;
};

static bool add_kv(struct cw *c, const char *key, struct cw_val v, void *base) {
  struct kv_list *l = base;
  char *value = cw_get_str(c, v, "a string", true);
  char *k = value ? strdup(key) : NULL;
  if (value && !k) {
    c->nomem = true;
  }
  if (k) {
    l->v[l->n].key = k;
    l->v[l->n].value = value;
    l->n++;
  } else {
    free(value);
  }
  return true;
}

static void get_kv_map(struct cw *c, struct cw_val v, const char *expected,
                       struct config_kv **out, size_t *nout) {
  struct kv_list l = {NULL, 0};
  if (cw_member_room(c, v, sizeof *l.v, (void **)&l.v)) {
    cw_walk_map(c, v, expected, false, add_kv, &l);
  }
  if (l.v) {
    *out = l.v;
    *nout = l.n;
  }
}

/* The sources section. */

static void set_districts(struct cw *c, struct cw_val v, void *base) {
  struct config_sources *s = base;
  cw_get_string_list(c, v, &s->districts, &s->ndistricts);
}

static void set_systems(struct cw *c, struct cw_val v, void *base) {
  struct config_sources *s = base;
  cw_get_string_list(c, v, &s->systems, &s->nsystems);
}

#define T struct config_sources
static const struct cw_key sources_keys[] = {
    RFN("districts", set_districts),
    RFN("systems", set_systems),
    RSTR("district_tag", T, district_tag, "district"),
    RSTR("system_tag", T, system_tag, "system"),
};
#undef T
static const struct cw_object sources_obj = CW_OBJECT(sources_keys, NULL, NULL);

/* The rule_engine section. */

#define T struct config_rules
static const struct cw_key engine_keys[] = {
    RDUR("evaluation_interval", T, evaluation_interval_ms, MS_S, MS_H,
         15 * MS_S),
    RDUR("save_interval", T, save_interval_ms, MS_S, MS_H, 10 * MS_S),
    RDUR("freshness", T, freshness_ms, MS_S, 30 * MS_D, 10 * MS_M),
};
#undef T
static const struct cw_object engine_obj = CW_OBJECT(engine_keys, NULL, NULL);

static void load_calendar(struct cw *c, struct cw_val v) {
  cw_walk(c, v, &config__calendar_obj, &rctx_of(c)->cfg->calendar);
}

static void load_sources(struct cw *c, struct cw_val v) {
  cw_walk(c, v, &sources_obj, &rctx_of(c)->cfg->sources);
}

static void load_engine(struct cw *c, struct cw_val v) {
  cw_walk(c, v, &engine_obj, &rctx_of(c)->cfg->rules);
}

/* Names. */

static bool ident_char(unsigned char ch, bool first) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
         (!first && ch >= '0' && ch <= '9');
}

/* Rule names: letters, digits, "_", "-" and ".", from a letter or "_". */
static bool rule_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > NAME_MAX_LEN || !ident_char((unsigned char)s[0], true)) {
    return false;
  }
  for (size_t i = 1; i < n; i++) {
    if (!ident_char((unsigned char)s[i], false) && s[i] != '-' && s[i] != '.') {
      return false;
    }
  }
  return true;
}

static bool param_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > NAME_MAX_LEN || !ident_char((unsigned char)s[0], true)) {
    return false;
  }
  for (size_t i = 1; i < n; i++) {
    if (!ident_char((unsigned char)s[i], false)) {
      return false;
    }
  }
  return true;
}

/* Tags every alert point carries; a rule's labels may not take them. */
static bool reserved_label(const char *k) {
  return strcmp(k, "rule") == 0 || strcmp(k, "severity") == 0 ||
         strcmp(k, "state") == 0;
}

/* Parameters. */

static bool add_param_value(struct cw *c, const char *key, struct cw_val v,
                            void *base) {
  struct config_param *p = base;
  double x;
  if (!*key) {
    cw_report(c, cw_koff(c, v), "empty name");
  } else if (cw_get_number(c, v, &x)) {
    char *g = strdup(key);
    if (!g) {
      c->nomem = true;
    } else {
      p->values[p->nvalues].group = g;
      p->values[p->nvalues].value = x;
      p->nvalues++;
    }
  }
  return true;
}

static void param_values(struct cw *c, struct cw_val v, void *base) {
  struct config_param *p = base;
  if (cw_member_room(c, v, sizeof *p->values, (void **)&p->values)) {
    cw_walk_map(c, v, "an object of label values and numbers", true,
                add_param_value, p);
  }
}

static void param_by(struct cw *c, struct cw_val v, void *base) {
  struct config_param *p = base;
  char *s = cw_get_name(c, v, "a label name");
  if (s) {
    free(p->by);
    p->by = s;
  }
}

static void param_default(struct cw *c, struct cw_val v, void *base) {
  struct config_param *p = base;
  p->has_default = cw_get_number(c, v, &p->def);
}

static const struct cw_key param_keys[] = {
    RFN("default", param_default),
    RFN("by", param_by),
    CW_FN_OF("values", param_values, CW_MAP, NULL),
};
static const struct cw_object param_obj = CW_OBJECT(param_keys, NULL, NULL);

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* An override for a district the sources do not list would never apply. */
static void check_param_groups(struct cw *c, struct cw_val v,
                               const struct config_param *p) {
  const struct config_sources *src = &rctx_of(c)->cfg->sources;
  struct cw_val vv;
  if (!p->by || !src->district_tag || strcmp(p->by, src->district_tag) != 0 ||
      src->ndistricts == 0 || !cw_find_child(c, v, "values", &vv)) {
    return;
  }
  size_t n;
  struct cw_val *kids = cw_children(c, vv, &n);
  const char **sorted = malloc(src->ndistricts * sizeof *sorted);
  if (!kids || !sorted) {
    c->nomem = true;
    free(kids);
    free(sorted);
    return;
  }
  memcpy(sorted, src->districts, src->ndistricts * sizeof *sorted);
  qsort(sorted, src->ndistricts, sizeof *sorted, cmp_str);
  for (size_t i = 0; i < n; i++) {
    const char *g = kids[i].j->string;
    if (!*g || bsearch(&g, sorted, src->ndistricts, sizeof *sorted, cmp_str)) {
      continue;
    }
    const char *hint =
        cw_suggest((const char *const *)src->districts, src->ndistricts, g);
    size_t m1 = cw_path_key(c, "values");
    size_t m2 = cw_path_key(c, g);
    if (hint) {
      cw_report(c, cw_koff(c, kids[i]),
                "not one of sources.districts (did you mean \"%s\"?)", hint);
    } else {
      cw_report(c, cw_koff(c, kids[i]), "not one of sources.districts");
    }
    cw_path_pop(c, m2);
    cw_path_pop(c, m1);
  }
  free(sorted);
  free(kids);
}

/* "params": {"name": 30 | "30%" | {"default", "by", "values"}}. */
static bool add_param(struct cw *c, const char *name, struct cw_val v,
                      void *base) {
  struct rctx *rx = rctx_of(c);
  struct config_rules *r = base;
  if (!param_name_ok(name)) {
    struct cw_desc d;
    cw_quoted(c, name, &d);
    cw_report(c, cw_koff(c, v),
              "%s is not a parameter name (letters, digits and \"_\", from "
              "a letter or \"_\")",
              cw_qs(&d));
    cw_desc_done(&d);
    return true;
  }
  if (r->nparams >= MAX_PARAMS) {
    cw_report(c, cw_koff(c, v), "at most %d parameters are allowed",
              MAX_PARAMS);
    return false;
  }
  if (!cw_grow((void **)&r->params, sizeof *r->params, r->nparams,
               &rx->capparams) ||
      !cw_grow((void **)&rx->psrc, sizeof *rx->psrc, r->nparams,
               &rx->cappsrc)) {
    c->nomem = true;
    return false;
  }
  struct config_param *p = &r->params[r->nparams];
  memset(p, 0, sizeof *p);
  p->name = strdup(name);
  c->nomem = c->nomem || !p->name;
  cw_place(c, cw_koff(c, v), &p->place);
  p->fingerprint = cw_fingerprint(c, v);
  if (cJSON_IsObject(v.j)) {
    cw_walk(c, v, &param_obj, p);
  } else {
    p->has_default = cw_get_number(c, v, &p->def);
  }
  const char *tag = rx->cfg->sources.district_tag;
  if (!p->by && tag) {
    p->by = strdup(tag);
    c->nomem = c->nomem || !p->by;
  }
  if (cJSON_IsObject(v.j)) {
    check_param_groups(c, v, p);
  }
  rx->psrc[r->nparams] = (struct param_src){rx->ndocs - 1, v};
  r->nparams++;
  return true;
}

static void load_params(struct cw *c, struct cw_val v) {
  cw_walk_map(c, v, "an object of parameters", true, add_param,
              &rctx_of(c)->cfg->rules);
}

/* Rules. */

static const struct cw_enum severity_names[] = {
    {"info", CONFIG_SEV_INFO},
    {"warning", CONFIG_SEV_WARNING},
    {"critical", CONFIG_SEV_CRITICAL},
    {NULL, 0},
};

static const struct cw_enum missing_names[] = {
    {"nodata", CONFIG_MISSING_NODATA},
    {"keep", CONFIG_MISSING_KEEP},
    {"ok", CONFIG_MISSING_OK},
    {NULL, 0},
};

_Static_assert(sizeof(enum config_severity) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_missing) == sizeof(int), "enum size");

const char *config_severity_name(enum config_severity s) {
  return cw_enum_name(severity_names, (int)s);
}

const char *config_missing_name(enum config_missing m) {
  return cw_enum_name(missing_names, (int)m);
}

static void rule_by(struct cw *c, struct cw_val v, void *base) {
  struct config_rule *r = base;
  size_t mark = c->path.len;
  cw_get_string_list(c, v, &r->by, &r->nby);
  cw_path_pop(c, mark);
  struct cw_val *items;
  size_t n;
  if (!r->by || !(items = cw_children(c, v, &n))) {
    return;
  }
  for (size_t i = 0; i < r->nby; i++) {
    if (reserved_label(r->by[i])) {
      for (size_t k = 0; k < n; k++) {
        if (cJSON_IsString(items[k].j) &&
            strcmp(items[k].j->valuestring, r->by[i]) == 0) {
          size_t m = cw_path_index(c, k);
          cw_report(c, cw_voff(c, items[k]),
                    "\"%s\" is reserved: every alert has it as a tag",
                    r->by[i]);
          cw_path_pop(c, m);
          break;
        }
      }
    }
  }
  free(items);
}

static void rule_annotations(struct cw *c, struct cw_val v, void *base) {
  struct config_rule *r = base;
  get_kv_map(c, v, "an object of annotation names and templates",
             &r->annotations, &r->nannotations);
}

static void rule_labels(struct cw *c, struct cw_val v, void *base) {
  struct config_rule *r = base;
  get_kv_map(c, v, "an object of label names and values", &r->labels,
             &r->nlabels);
  size_t n;
  struct cw_val *kids = r->labels ? cw_children(c, v, &n) : NULL;
  for (size_t i = 0; kids && i < n; i++) {
    if (reserved_label(kids[i].j->string)) {
      cw_report_key(c, kids[i].j->string, cw_koff(c, kids[i]),
                    "\"%s\" is reserved: every alert has it as a tag",
                    kids[i].j->string);
    }
  }
  free(kids);
}

static void rule_broker(struct cw *c, struct cw_val v, void *base) {
  struct config_rule *r = base;
  if (cJSON_IsBool(v.j)) {
    r->broker_dependent = cJSON_IsTrue(v.j) ? 1 : 0;
  } else {
    cw_report_type(c, v, "true or false");
  }
}

#define T struct config_rule_level
static const struct cw_key level_keys[] = {
    RENUM("severity", T, severity, severity_names, CONFIG_SEV_WARNING, CW_REQ),
    REXPR("expr", T, expr, CW_REQ),
    REXPR("clear", T, clear, 0),
};
#undef T
static const struct cw_object level_obj = CW_OBJECT(level_keys, NULL, NULL);

static void rule_levels(struct cw *c, struct cw_val v, void *base) {
  struct config_rule *r = base;
  if (!cJSON_IsArray(v.j)) {
    cw_report_type(c, v, "an array of levels");
    return;
  }
  size_t n;
  struct cw_val *items = cw_children(c, v, &n);
  if (!items) {
    return;
  }
  if (n == 0 || n > 3) {
    cw_report(c, cw_voff(c, v), "expected 1 to 3 levels, got %zu", n);
    free(items);
    return;
  }
  r->levels = calloc(n, sizeof *r->levels);
  if (!r->levels) {
    c->nomem = true;
    free(items);
    return;
  }
  r->nlevels = n;
  for (size_t i = 0; i < n; i++) {
    size_t mark = cw_path_index(c, i);
    cw_defaults(c, &level_obj, &r->levels[i]);
    cw_walk(c, items[i], &level_obj, &r->levels[i]);
    struct cw_val sv;
    if (i > 0 && cw_find_child(c, items[i], "severity", &sv) &&
        r->levels[i].severity <= r->levels[i - 1].severity) {
      cw_report_key(c, "severity", cw_voff(c, sv),
                    "levels go from the lowest severity to the highest: \"%s\" "
                    "cannot follow \"%s\"",
                    config_severity_name(r->levels[i].severity),
                    config_severity_name(r->levels[i - 1].severity));
    }
    cw_path_pop(c, mark);
  }
  free(items);
}

#define T struct config_rule
static const struct cw_key rule_keys[] = {
    RSTR("name", T, name, NULL),
    REXPR("expr", T, expr, 0),
    REXPR("clear", T, clear, 0),
    REXPR("guard", T, guard, 0),
    RFN("by", rule_by),
    RENUM("severity", T, severity, severity_names, CONFIG_SEV_WARNING, 0),
    CW_FN_OF("levels", rule_levels, CW_LIST, &level_obj),
    RDUR("for", T, for_ms, 0, 30 * MS_D, 0),
    RDUR("for_tolerance", T, for_tolerance_ms, 0, MS_D, 0),
    RDUR("keep_firing_for", T, keep_firing_for_ms, 0, 30 * MS_D, 0),
    RENUM("missing", T, missing, missing_names, CONFIG_MISSING_NODATA, 0),
    RBOOL("working_time", T, working_time, false),
    CW_FN_OF("annotations", rule_annotations, CW_MAP, NULL),
    CW_FN_OF("labels", rule_labels, CW_MAP, NULL),
    RDUR("freshness", T, freshness_ms, MS_S, 30 * MS_D, 0),
    RBOOL("expected", T, expected, false),
    RFN("depends_on_broker", rule_broker),
};
#undef T
static const struct cw_object rule_obj = CW_OBJECT(rule_keys, NULL, NULL);

/* The sections as the main file's keys with their tables, for
 * config_schema_each; config__load_rules reads them in its own order. */
static const struct cw_key section_keys[] = {
    {.name = "calendar", .type = CW_OBJ, .obj = &config__calendar_obj},
    {.name = "sources", .type = CW_OBJ, .obj = &sources_obj},
    {.name = "rule_engine", .type = CW_OBJ, .obj = &engine_obj},
    CW_FN_OF("params", cw_skip, CW_MAP, &param_obj),
    CW_FN_OF("rules", cw_skip, CW_LIST, &rule_obj),
    RFN("rule_files", cw_skip),
};
const struct cw_object config__rules_sections =
    CW_OBJECT(section_keys, NULL, NULL);

/* Reports msg at key's value in obj, or at obj when key is absent. */
static void report_key_at(struct cw *c, struct cw_val obj, const char *key,
                          const char *msg) {
  cw_report_key(c, key, cw_child_off(c, obj, key), "%s", msg);
}

/* Checks between the keys of one rule. */
static void rule_check(struct cw *c, struct cw_val v, struct config_rule *r) {
  struct cw_val tmp;
  bool has_expr = cw_find_child(c, v, "expr", &tmp);
  bool has_levels = cw_find_child(c, v, "levels", &tmp);
  if (!has_expr && !has_levels) {
    report_key_at(c, v, "expr", "required key is missing (or give \"levels\")");
  }
  if (has_expr && has_levels) {
    report_key_at(c, v, "levels",
                  "give either \"expr\" or \"levels\", not both");
  }
  if (has_levels && cw_find_child(c, v, "severity", &tmp)) {
    report_key_at(c, v, "severity",
                  "not used with \"levels\" (each level has its own)");
  }
  if (has_levels && cw_find_child(c, v, "clear", &tmp)) {
    report_key_at(c, v, "clear",
                  "not used with \"levels\" (each level has its own)");
  }
  if (r->for_tolerance_ms > 0 && r->for_ms == 0) {
    report_key_at(c, v, "for_tolerance", "has no effect without \"for\"");
  }
  const struct config_sources *s = &rctx_of(c)->cfg->sources;
  if (r->expected) {
    bool ok = r->nby > 0;
    for (size_t i = 0; ok && i < r->nby; i++) {
      ok = (s->district_tag && strcmp(r->by[i], s->district_tag) == 0) ||
           (s->system_tag && strcmp(r->by[i], s->system_tag) == 0);
    }
    if (!ok) {
      report_key_at(c, v, "expected",
                    "needs \"by\" made of the source tags "
                    "(sources.district_tag and/or sources.system_tag)");
    } else {
      for (size_t i = 0; i < r->nby; i++) {
        bool district =
            s->district_tag && strcmp(r->by[i], s->district_tag) == 0;
        if ((district && s->ndistricts == 0) ||
            (!district && s->nsystems == 0)) {
          report_key_at(c, v, "expected",
                        district ? "needs sources.districts to list the "
                                   "sources"
                                 : "needs sources.systems to list the "
                                   "sources");
          break;
        }
      }
    }
  }
  for (size_t i = 0; i < r->nlabels; i++) {
    for (size_t k = 0; k < r->nby; k++) {
      if (strcmp(r->labels[i].key, r->by[k]) == 0) {
        struct cw_val lv;
        if (cw_find_child(c, v, "labels", &lv)) {
          size_t m1 = cw_path_key(c, "labels");
          size_t m2 = cw_path_key(c, r->labels[i].key);
          cw_report(
              c, cw_voff(c, lv),
              "\"%s\" is one of the rule's \"by\" labels, which come from "
              "the data",
              r->labels[i].key);
          cw_path_pop(c, m2);
          cw_path_pop(c, m1);
        }
      }
    }
  }
}

static void load_rules(struct cw *c, struct cw_val v) {
  struct rctx *rx = rctx_of(c);
  struct config_rules *rs = &rx->cfg->rules;
  if (!cJSON_IsArray(v.j)) {
    cw_report_type(c, v, "an array of rules");
    return;
  }
  size_t n;
  struct cw_val *items = cw_children(c, v, &n);
  if (!items) {
    return;
  }
  for (size_t i = 0; i < n; i++) {
    size_t mark = cw_path_index(c, i);
    if (rs->n >= MAX_RULES) {
      cw_report(c, cw_voff(c, items[i]), "at most %d rules are allowed",
                MAX_RULES);
      cw_path_pop(c, mark);
      break;
    }
    if (!cw_grow((void **)&rs->v, sizeof *rs->v, rs->n, &rx->caprules) ||
        !cw_grow((void **)&rx->rsrc, sizeof *rx->rsrc, rs->n, &rx->caprsrc)) {
      c->nomem = true;
      cw_path_pop(c, mark);
      break;
    }
    struct config_rule *r = &rs->v[rs->n];
    memset(r, 0, sizeof *r);
    r->broker_dependent = -1;
    cw_defaults(c, &rule_obj, r);
    rx->rsrc[rs->n] = (struct rule_src){rx->ndocs - 1, i, items[i]};
    rs->n++;
    struct cw_val nv = {0};
    bool named =
        cJSON_IsObject(items[i].j) && cw_find_child(c, items[i], "name", &nv);
    cw_place(c, named ? cw_voff(c, nv) : cw_voff(c, items[i]), &r->place);
    r->fingerprint = cw_fingerprint(c, items[i]);
    if (cw_walk(c, items[i], &rule_obj, r)) {
      if (r->name && !rule_name_ok(r->name) &&
          cw_find_child(c, items[i], "name", &nv)) {
        struct cw_desc d;
        cw_quoted(c, r->name, &d);
        cw_report_key(
            c, "name", cw_voff(c, nv),
            "%s is not a rule name (letters, digits, \"_\", \"-\" and "
            "\".\", from a letter or \"_\")",
            cw_qs(&d));
        cw_desc_done(&d);
      } else if (!r->name) {
        struct cw_val dummy;
        if (!cw_find_child(c, items[i], "name", &dummy)) {
          /* walk reported nothing: name is not CW_REQ so that a missing
           * name and a bad one read alike. */
          cw_report_key(c, "name", cw_voff(c, items[i]),
                        "required key is missing");
        }
      }
      rule_check(c, items[i], r);
    }
    cw_path_pop(c, mark);
  }
  free(items);
}

/* Rule files. */

static void doc_free(struct rdoc *d) {
  if (!d) {
    return;
  }
  free(d->path);
  free(d->orig);
  cw_file_cleanup(&d->file);
  free(d);
}

/* Walking a rule file starts at its root, with a path of its own. */
struct saved {
  const struct config__doc *doc;
  struct buf path;
};

static void enter(struct cw *c, const struct config__doc *doc,
                  struct saved *s) {
  s->doc = c->doc;
  s->path = c->path;
  c->doc = doc;
  buf_init(&c->path, 1 << 20);
}

static void leave(struct cw *c, struct saved *s) {
  buf_cleanup(&c->path);
  c->path = s->path;
  c->doc = s->doc;
}

/* Reads path for a rule file. Returns the text (NUL-terminated; the caller
 * frees it), or NULL after reporting at the rule_files entry v. */
static char *read_rule_file(struct cw *c, struct cw_val v, const char *path,
                            size_t *len) {
  struct buf b;
  buf_init(&b, RULE_FILE_MAX);
  struct iocd_err err;
  int rc = file_read(path, &b, &err);
  char *text = NULL;
  if (rc == IOCD_ENOMEM) {
    c->nomem = true;
  } else if (rc) {
    /* The message says "cannot read" already. */
    const char *why = err.msg;
    if (strncmp(why, "cannot open: ", 13) == 0 ||
        strncmp(why, "cannot read: ", 13) == 0) {
      why += 13;
    }
    struct cw_desc d;
    cw_quoted(c, path, &d);
    cw_report(c, cw_voff(c, v), "cannot read %s: %s", cw_qs(&d), why);
    cw_desc_done(&d);
  } else {
    *len = b.len;
    text = b.data ? buf_detach(&b, NULL) : strdup("");
    c->nomem = c->nomem || !text;
  }
  buf_cleanup(&b);
  return text;
}

static const struct cw_key file_keys[] = {
    RFN("params", cw_skip),
    RFN("rules", cw_skip),
};
static const struct cw_object file_obj = {
    .keys = file_keys,
    .nkeys = sizeof file_keys / sizeof file_keys[0],
    .unknown_hint = "a rule file has \"params\" and \"rules\"",
};

/* Loads one rule file named by entry v of the main file's rule_files.
 * Returns the document (kept in the context's docs), or NULL after
 * reporting. */
static struct rdoc *open_rule_file(struct cw *c, struct cw_val v,
                                   const char *rel) {
  struct rctx *rx = rctx_of(c);
  char *path = config_path_join(rx->docs[0]->doc->name, rel);
  if (!path) {
    c->nomem = true;
    return NULL;
  }
  /* The same file reached by two paths ("rules/a.jsonc" and
   * "./rules/a.jsonc", a link) would define every rule twice. */
  struct stat st;
  bool has_id = stat(path, &st) == 0;
  for (size_t i = 1; i < rx->ndocs; i++) {
    const struct rdoc *o = rx->docs[i];
    bool same =
        strcmp(o->path, path) == 0 ||
        (has_id && o->has_id && o->dev == st.st_dev && o->ino == st.st_ino);
    if (same) {
      struct cw_desc d, od;
      cw_quoted(c, rel, &d);
      cw_quoted(c, o->path, &od);
      cw_report(c, cw_voff(c, v), "%s is listed twice (it is the file %s)",
                cw_qs(&d), cw_qs(&od));
      cw_desc_done(&d);
      cw_desc_done(&od);
      free(path);
      return NULL;
    }
  }
  size_t len = 0;
  char *text = read_rule_file(c, v, path, &len);
  if (!text) {
    free(path);
    return NULL;
  }
  struct rdoc *d = calloc(1, sizeof *d);
  if (!d) {
    c->nomem = true;
    free(path);
    free(text);
    return NULL;
  }
  d->path = path;
  d->orig = text;
  d->has_id = has_id;
  d->dev = has_id ? st.st_dev : 0;
  d->ino = has_id ? st.st_ino : 0;
  d->doc = &d->file.doc;
  d->file.doc.name = path;
  d->file.doc.order = cw_voff(c, v);
  rx->docs[rx->ndocs++] = d;
  struct saved sv;
  enter(c, d->doc, &sv);
  /* Columns are counted in the text as read (a comment's characters
   * count as the editor shows them); the blanking keeps every offset. */
  int rc = cw_file_load(c, &d->file, text, len,
                        "the file is empty (expected a JSON object with "
                        "\"params\" and \"rules\")");
  if (!rc) {
    rc = config__scan(d->file.copy, len, &d->file.pm);
    if (rc == IOCD_EPARSE) {
      cw_report(c, 0, "cannot locate the values in the file");
    }
  }
  struct cw_val root = {d->file.json, 0};
  if (!rc && !cJSON_IsObject(root.j)) {
    cw_report_type(c, root, "an object with \"params\" and \"rules\"");
    rc = IOCD_EPARSE;
  }
  c->nomem = c->nomem || rc == IOCD_ENOMEM;
  leave(c, &sv);
  d->root = root.j;
  return rc ? NULL : d;
}

/* Walks the keys of a rule file: only "params" and "rules". */
static void load_rule_file(struct cw *c, struct rdoc *d) {
  struct saved sv;
  enter(c, d->doc, &sv);
  struct cw_val root = {d->root, 0};
  /* The table walk only checks the keys here; the two sections are read
   * below, params first so that rules can be checked against them. */
  cw_walk(c, root, &file_obj, NULL);
  struct cw_val v;
  if (cw_find_child(c, root, "params", &v)) {
    size_t mark = cw_path_key(c, "params");
    load_params(c, v);
    cw_path_pop(c, mark);
  }
  if (cw_find_child(c, root, "rules", &v)) {
    size_t mark = cw_path_key(c, "rules");
    load_rules(c, v);
    cw_path_pop(c, mark);
  }
  leave(c, &sv);
}

static void load_rule_files(struct cw *c, struct cw_val v) {
  struct config_rules *rs = &rctx_of(c)->cfg->rules;
  size_t mark = c->path.len;
  cw_get_string_list(c, v, &rs->files, &rs->nfiles);
  cw_path_pop(c, mark);
  if (!rs->files || !cJSON_IsArray(v.j)) {
    return;
  }
  size_t n;
  struct cw_val *items = cw_children(c, v, &n);
  if (!items) {
    return;
  }
  if (n > MAX_RULE_FILES) {
    cw_report(c, cw_voff(c, v), "at most %d rule files are allowed, got %zu",
              MAX_RULE_FILES, n);
    free(items);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    bool again = false;
    for (size_t k = 0; k < i && cJSON_IsString(items[i].j); k++) {
      again = again ||
              (cJSON_IsString(items[k].j) &&
               strcmp(items[k].j->valuestring, items[i].j->valuestring) == 0);
    }
    /* A repeated name was reported by the list reader. */
    if (again || !cJSON_IsString(items[i].j) || !*items[i].j->valuestring) {
      continue;
    }
    size_t m = cw_path_index(c, i);
    char *rel = cw_get_str(c, items[i], "a file name", true);
    struct rdoc *d = rel ? open_rule_file(c, items[i], rel) : NULL;
    cw_path_pop(c, m);
    free(rel);
    if (d) {
      load_rule_file(c, d);
    }
  }
  free(items);
}

/* Checks after the merge. */

/* Column (1-based, in characters) of byte at in s. */
static int char_col(const char *s, size_t at) {
  int col = 1;
  for (size_t i = 0; i < at && s[i]; i++) {
    if (((unsigned char)s[i] & 0xC0) != 0x80) {
      col++;
    }
  }
  return col;
}

/* Where in an expression text $name is used: its column, or 1. String
 * literals are skipped. */
static int param_col(const char *s, const char *name) {
  size_t n = strlen(name);
  bool in_str = false;
  for (size_t i = 0; s[i]; i++) {
    if (in_str) {
      if (s[i] == '\\' && s[i + 1]) {
        i++;
      } else if (s[i] == '"') {
        in_str = false;
      }
      continue;
    }
    if (s[i] == '"') {
      in_str = true;
    } else if (s[i] == '$' && strncmp(s + i + 1, name, n) == 0 &&
               !ident_char((unsigned char)s[i + 1 + n], false) &&
               (unsigned char)s[i + 1 + n] < 0x80) {
      return char_col(s, i);
    }
  }
  return 1;
}

/* Where the string literal "name" is in an expression text: the column of
 * its opening quote, or 1. */
static int literal_col(const char *s, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; s[i]; i++) {
    if (s[i] != '"') {
      continue;
    }
    size_t j = i + 1;
    size_t k = 0;
    bool match = true;
    while (s[j] && s[j] != '"') {
      char ch = s[j];
      if (ch == '\\' && s[j + 1]) {
        ch = s[++j];
      }
      match = match && k < n && name[k] == ch;
      k++;
      j++;
    }
    if (match && k == n && s[j] == '"') {
      return char_col(s, i);
    }
    if (!s[j]) {
      break;
    }
    i = j;
  }
  return 1;
}

static const struct config_param *find_param(const struct config_rules *rs,
                                             const char *name) {
  for (size_t i = 0; i < rs->nparams; i++) {
    if (rs->params[i].name && strcmp(rs->params[i].name, name) == 0) {
      return &rs->params[i];
    }
  }
  return NULL;
}

/* Parses the expression at key of rule object v and checks its
 * parameters and calendar names. */
static void check_expr(struct cw *c, struct cw_val obj, const char *key,
                       const char *text) {
  struct cw_val v;
  if (!text || !cw_find_child(c, obj, key, &v) || !cJSON_IsString(v.j)) {
    return;
  }
  size_t q = cw_voff(c, v);
  size_t mark = cw_path_key(c, key);
  struct iocd_err err = {{0}};
  int col = 0;
  struct expr *e = expr_parse(text, &err, &col);
  if (!e) {
    if (col == 0) {
      c->nomem = true;
    } else {
      /* The message starts "column N: "; the position says it already. */
      const char *msg = err.msg;
      const char *p = strstr(msg, ": ");
      if (strncmp(msg, "column ", 7) == 0 && p) {
        msg = p + 2;
      }
      cw_report(c, config__string_char_off(c->doc->text, c->doc->len, q, col),
                "%s", msg);
    }
    cw_path_pop(c, mark);
    return;
  }
  const struct config_rules *rs = &rctx_of(c)->cfg->rules;
  size_t n;
  const char *const *params = expr_params(e, &n);
  for (size_t i = 0; i < n; i++) {
    if (find_param(rs, params[i])) {
      continue;
    }
    size_t at = config__string_char_off(c->doc->text, c->doc->len, q,
                                        param_col(text, params[i]));
    const char *names[MAX_PARAMS];
    size_t nn = 0;
    for (size_t k = 0; k < rs->nparams && nn < MAX_PARAMS; k++) {
      if (rs->params[k].name) {
        names[nn++] = rs->params[k].name;
      }
    }
    const char *hint = cw_suggest(names, nn, params[i]);
    if (hint) {
      cw_report(c, at, "unknown parameter $%s (did you mean $%s?)", params[i],
                hint);
    } else {
      cw_report(c, at, "unknown parameter $%s (define it under \"params\")",
                params[i]);
    }
  }
  const char *const *cals = expr_calendars(e, &n);
  for (size_t i = 0; i < n; i++) {
    bool known = false;
    for (size_t k = 0; calendar_periods[k]; k++) {
      known = known || strcmp(calendar_periods[k], cals[i]) == 0;
    }
    if (!known) {
      size_t at = config__string_char_off(c->doc->text, c->doc->len, q,
                                          literal_col(text, cals[i]));
      struct cw_desc d;
      cw_quoted(c, cals[i], &d);
      cw_report(c, at,
                "unknown calendar %s (the \"calendar\" section is "
                "\"office_hours\")",
                cw_qs(&d));
      cw_desc_done(&d);
    }
  }
  expr_free(e);
  cw_path_pop(c, mark);
}

/* Renders the annotation templates of rule object obj once, so that an
 * unclosed {{ or an unknown filter is reported inside the string. The
 * engine's message gives a byte column in the template. */
static void check_templates(struct cw *c, struct cw_val obj) {
  struct cw_val av;
  if (!cw_find_child(c, obj, "annotations", &av) || !cJSON_IsObject(av.j)) {
    return;
  }
  size_t n;
  struct cw_val *kids = cw_children(c, av, &n);
  struct alert_event ev;
  memset(&ev, 0, sizeof ev);
  ev.rule = "";
  for (size_t i = 0; kids && i < n; i++) {
    if (!cJSON_IsString(kids[i].j)) {
      continue;
    }
    const char *t = kids[i].j->valuestring;
    struct buf out;
    buf_init(&out, 1 << 20);
    struct iocd_err err = {{0}};
    int rc = engine_render(t, &ev, ENGINE_LANG_VI, &out, &err);
    buf_cleanup(&out);
    if (rc != IOCD_EPARSE) {
      c->nomem = c->nomem || rc == IOCD_ENOMEM;
      continue;
    }
    const char *msg = err.msg;
    int col = 1;
    const char *sep = strstr(msg, ": ");
    if (strncmp(msg, "column ", 7) == 0 && sep) {
      long byte = strtol(msg + 7, NULL, 10);
      if (byte >= 1 && (size_t)byte <= strlen(t) + 1) {
        col = char_col(t, (size_t)byte - 1);
      }
      msg = sep + 2;
    }
    size_t m1 = cw_path_key(c, "annotations");
    size_t m2 = cw_path_key(c, kids[i].j->string);
    cw_report(c,
              config__string_char_off(c->doc->text, c->doc->len,
                                      cw_voff(c, kids[i]), col),
              "%s", msg);
    cw_path_pop(c, m2);
    cw_path_pop(c, m1);
  }
  free(kids);
}

static void check_rule_exprs(struct rctx *rx, size_t i) {
  struct cw *c = &rx->w;
  const struct rule_src *src = &rx->rsrc[i];
  const struct config_rule *r = &rx->cfg->rules.v[i];
  c->doc = rx->docs[src->doc]->doc;
  cw_path_set(c, "rules");
  cw_path_index(c, src->index);
  check_expr(c, src->v, "expr", r->expr);
  check_expr(c, src->v, "clear", r->clear);
  check_expr(c, src->v, "guard", r->guard);
  check_templates(c, src->v);
  struct cw_val lv;
  if (r->levels && cw_find_child(c, src->v, "levels", &lv)) {
    size_t n;
    struct cw_val *items = cw_children(c, lv, &n);
    size_t m1 = cw_path_key(c, "levels");
    for (size_t k = 0; items && k < n && k < r->nlevels; k++) {
      size_t m2 = cw_path_index(c, k);
      check_expr(c, items[k], "expr", r->levels[k].expr);
      check_expr(c, items[k], "clear", r->levels[k].clear);
      cw_path_pop(c, m2);
    }
    cw_path_pop(c, m1);
    free(items);
  }
}

static void check_duplicates(struct rctx *rx) {
  struct cw *c = &rx->w;
  const struct config_rules *rs = &rx->cfg->rules;
  size_t most = rs->n > rs->nparams ? rs->n : rs->nparams;
  struct cw_nref *refs = malloc((most ? most : 1) * sizeof *refs);
  size_t *first = malloc((most ? most : 1) * sizeof *first);
  if (!refs || !first) {
    c->nomem = true;
    free(refs);
    free(first);
    return;
  }
  size_t nrefs = 0;
  for (size_t i = 0; i < rs->n; i++) {
    first[i] = SIZE_MAX;
    if (rs->v[i].name) {
      refs[nrefs++] = (struct cw_nref){rs->v[i].name, i};
    }
  }
  cw_find_repeats(refs, nrefs, first);
  for (size_t i = 0; i < rs->n; i++) {
    if (first[i] == SIZE_MAX) {
      continue;
    }
    const struct config_rule *o = &rs->v[first[i]];
    const struct rule_src *src = &rx->rsrc[i];
    c->doc = rx->docs[src->doc]->doc;
    cw_path_set(c, "rules");
    cw_path_index(c, src->index);
    cw_path_key(c, "name");
    struct cw_val nv = {0};
    cw_find_child(c, src->v, "name", &nv);
    cw_report(c, cw_voff(c, nv), "rule \"%s\" is already defined at %s:%d:%d",
              rs->v[i].name, o->place.file, o->place.line, o->place.col);
  }
  nrefs = 0;
  for (size_t i = 0; i < rs->nparams; i++) {
    first[i] = SIZE_MAX;
    if (rs->params[i].name) {
      refs[nrefs++] = (struct cw_nref){rs->params[i].name, i};
    }
  }
  cw_find_repeats(refs, nrefs, first);
  for (size_t i = 0; i < rs->nparams; i++) {
    if (first[i] == SIZE_MAX) {
      continue;
    }
    const struct config_param *p = &rs->params[i];
    const struct config_param *o = &rs->params[first[i]];
    c->doc = rx->docs[rx->psrc[i].doc]->doc;
    cw_path_set(c, "params");
    cw_path_key(c, p->name);
    cw_report(c, cw_koff(c, rx->psrc[i].v),
              "parameter \"%s\" is already defined at %s:%d:%d", p->name,
              o->place.file, o->place.line, o->place.col);
  }
  free(refs);
  free(first);
}

int config__load_rules(const struct config__doc *doc, const struct cJSON *root,
                       struct config *cfg, config__sink_fn *sink, void *ud) {
  struct rctx rx = {0};
  struct cw *c = &rx.w;
  cw_init(c, sink, ud);
  rx.cfg = cfg;
  struct rdoc *main_doc = calloc(1, sizeof *main_doc);
  if (!main_doc) {
    cw_cleanup(c);
    return IOCD_ENOMEM;
  }
  main_doc->doc = doc;
  main_doc->root = root;
  rx.docs[rx.ndocs++] = main_doc;
  c->doc = doc;

  config__calendar_defaults(c, &cfg->calendar);
  cw_defaults(c, &sources_obj, &cfg->sources);
  cw_defaults(c, &engine_obj, &cfg->rules);

  /* Each section in turn, params before rules and the main file's before
   * the rule files', so that rules can be checked against them. */
  static const struct {
    const char *key;
    void (*load)(struct cw *c, struct cw_val v);
  } sections[] = {
      {"calendar", load_calendar},  {"sources", load_sources},
      {"rule_engine", load_engine}, {"params", load_params},
      {"rules", load_rules},        {"rule_files", load_rule_files},
  };
  struct cw_val r = {root, 0};
  struct cw_val v;
  for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
    if (cJSON_IsObject(root) && cw_find_child(c, r, sections[i].key, &v)) {
      size_t m = cw_path_key(c, sections[i].key);
      sections[i].load(c, v);
      cw_path_pop(c, m);
    }
  }
  check_duplicates(&rx);
  for (size_t i = 0; i < cfg->rules.n; i++) {
    check_rule_exprs(&rx, i);
  }
  for (size_t i = 0; i < rx.ndocs; i++) {
    doc_free(rx.docs[i]);
  }
  free(rx.rsrc);
  free(rx.psrc);
  cw_cleanup(c);
  return c->nomem ? IOCD_ENOMEM : IOCD_OK;
}

void config__free_rules(struct config *cfg) {
  struct config_calendar *cal = &cfg->calendar;
  free(cal->timezone);
  free(cal->office_hours);
  free(cal->holidays);
  free(cal->workdays);
  memset(cal, 0, sizeof *cal);
  struct config_sources *s = &cfg->sources;
  cw_free_list(s->districts, s->ndistricts);
  cw_free_list(s->systems, s->nsystems);
  free(s->district_tag);
  free(s->system_tag);
  memset(s, 0, sizeof *s);
  struct config_rules *rs = &cfg->rules;
  for (size_t i = 0; i < rs->n; i++) {
    struct config_rule *r = &rs->v[i];
    cw_free_strings(&rule_obj, r);
    cw_free_list(r->by, r->nby);
    for (size_t k = 0; k < r->nlevels; k++) {
      cw_free_strings(&level_obj, &r->levels[k]);
    }
    free(r->levels);
    cw_free_kv(r->annotations, r->nannotations);
    cw_free_kv(r->labels, r->nlabels);
    free(r->place.file);
  }
  free(rs->v);
  for (size_t i = 0; i < rs->nparams; i++) {
    struct config_param *p = &rs->params[i];
    free(p->name);
    free(p->by);
    for (size_t k = 0; k < p->nvalues; k++) {
      free(p->values[k].group);
    }
    free(p->values);
    free(p->place.file);
  }
  free(rs->params);
  cw_free_list(rs->files, rs->nfiles);
  memset(rs, 0, sizeof *rs);
}
