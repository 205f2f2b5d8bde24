/*
 * The silence set: silences from the configuration and from the API, their
 * states on the virtual clock, matching, collection of expired ones, and
 * the JSON form of data_dir/silences.json (cJSON; the caller does the file
 * I/O).
 */
#include "alerts/silence.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/mem.h"

struct silence_set {
  struct silence *v;
  size_t n;
  size_t cap;
};

struct silence_set *silence_set_new(void) {
  return calloc(1, sizeof(struct silence_set));
}

static void silence_cleanup(struct silence *x) {
  for (size_t i = 0; i < x->nmatchers; i++) {
    match_matcher_cleanup(&x->matchers[i]);
  }
  free(x->matchers);
  match_set_cleanup(&x->compiled);
  free(x->created_by);
  free(x->principal);
  free(x->expired_by);
  free(x->comment);
  memset(x, 0, sizeof *x);
}

void silence_set_free(struct silence_set *s) {
  if (!s) {
    return;
  }
  for (size_t i = 0; i < s->n; i++) {
    silence_cleanup(&s->v[i]);
  }
  free(s->v);
  free(s);
}

static void id_text(uint64_t id, char out[17]) {
  snprintf(out, 17, "%016" PRIx64, id);
}

/* The id of what spec says (and of salt: now for API silences without an
 * id, 0 for the configuration's), never 0. */
static uint64_t content_id(const struct silence_spec *spec, int64_t salt) {
  uint64_t h = HASH_START;
  for (size_t i = 0; i < spec->nmatchers; i++) {
    const struct config_matcher *m = &spec->matchers[i];
    h = hash_str(h, m->name ? m->name : "");
    h = hash_str(h, match_op_text(m->op));
    h = hash_str(h, m->value ? m->value : "");
  }
  int64_t nums[3] = {spec->starts_ns, spec->ends_ns, salt};
  h = hash_bytes(h, nums, sizeof nums);
  h = hash_str(h, spec->created_by ? spec->created_by : "");
  h = hash_str(h, spec->comment ? spec->comment : "");
  return h ? h : 1;
}

static struct silence *find(const struct silence_set *s, const char *id) {
  for (size_t i = 0; s && id && i < s->n; i++) {
    if (strcmp(s->v[i].id, id) == 0) {
      return &s->v[i];
    }
  }
  return NULL;
}

/* Checks spec and makes *x from it. */
static int build(struct silence *x, const struct silence_spec *spec,
                 struct iocd_err *err) {
  memset(x, 0, sizeof *x);
  if (spec->nmatchers == 0) {
    return iocd_err_set(err, IOCD_EINVAL, "a silence needs a matcher");
  }
  if (spec->ends_ns <= spec->starts_ns) {
    return iocd_err_set(err, IOCD_EINVAL, "a silence must end after it starts");
  }
  int rc = match_compile(&x->compiled, spec->matchers, spec->nmatchers, err);
  if (rc) {
    return rc;
  }
  bool selective = false;
  for (size_t i = 0; i < x->compiled.n; i++) {
    selective = selective || !match_one(&x->compiled.v[i], "");
  }
  if (!selective) {
    silence_cleanup(x);
    return iocd_err_set(err, IOCD_EINVAL,
                        "a silence needs a matcher that does not match an "
                        "empty label (it would silence every alert)");
  }
  x->matchers = calloc(spec->nmatchers, sizeof *x->matchers);
  x->created_by = mem_strdup(spec->created_by ? spec->created_by : "");
  x->comment = mem_strdup(spec->comment ? spec->comment : "");
  x->principal = spec->principal ? mem_strdup(spec->principal) : NULL;
  if (!x->matchers || !x->created_by || !x->comment ||
      (spec->principal && !x->principal)) {
    silence_cleanup(x);
    return IOCD_ENOMEM;
  }
  for (size_t i = 0; i < spec->nmatchers; i++) {
    struct config_matcher *m = &x->matchers[i];
    m->op = spec->matchers[i].op;
    m->name = mem_strdup(spec->matchers[i].name);
    m->value =
        mem_strdup(spec->matchers[i].value ? spec->matchers[i].value : "");
    x->nmatchers = i + 1;
    if (!m->name || !m->value) {
      silence_cleanup(x);
      return IOCD_ENOMEM;
    }
  }
  x->starts_ns = spec->starts_ns;
  x->ends_ns = spec->ends_ns;
  return IOCD_OK;
}

/* Appends x (moved in) to s. */
static int push(struct silence_set *s, struct silence *x) {
  if (s->n >= SILENCE_MAX) {
    return IOCD_ELIMIT;
  }
  if (mem_grow((void **)&s->v, &s->cap, s->n, sizeof *s->v)) {
    return IOCD_ENOMEM;
  }
  s->v[s->n++] = *x;
  return IOCD_OK;
}

int silence_add(struct silence_set *s, const struct silence_spec *spec,
                uint64_t id, int64_t now_ns, char out_id[17],
                struct iocd_err *err) {
  if (spec->ends_ns <= now_ns) {
    return iocd_err_set(err, IOCD_EINVAL, "the silence ends in the past");
  }
  char text[17];
  id_text(id ? id : content_id(spec, now_ns), text);
  if (find(s, text)) {
    return iocd_err_set(err, IOCD_ESTATE, "silence %s exists already", text);
  }
  struct silence x;
  int rc = build(&x, spec, err);
  if (rc) {
    return rc;
  }
  memcpy(x.id, text, sizeof x.id);
  x.updated_ns = now_ns;
  rc = push(s, &x);
  if (rc) {
    silence_cleanup(&x);
    return iocd_err_set(
        err, rc, "%s",
        rc == IOCD_ELIMIT ? "too many silences" : "out of memory");
  }
  if (out_id) {
    memcpy(out_id, text, 17);
  }
  return IOCD_OK;
}

int silence_set_config(struct silence_set *s, const struct config_silence *v,
                       size_t n, int64_t now_ns, struct iocd_err *err) {
  /* Built aside first, so that a bad entry leaves s as it was. */
  struct silence *made = n ? calloc(n, sizeof *made) : NULL;
  size_t nmade = 0;
  int rc = n && !made ? IOCD_ENOMEM : IOCD_OK;
  for (size_t i = 0; !rc && i < n; i++) {
    struct silence_spec spec = {
        .matchers = v[i].matchers,
        .nmatchers = v[i].nmatchers,
        .starts_ns = v[i].starts_ms * NS_PER_MS,
        .ends_ns = v[i].ends_ms * NS_PER_MS,
        .created_by = v[i].created_by,
        .comment = v[i].comment,
    };
    char text[17];
    id_text(content_id(&spec, 0), text);
    if (spec.starts_ns == 0) {
      /* From now; one that has ended already by then is kept as expired
       * (the configuration is valid, only stale). */
      spec.starts_ns = now_ns < spec.ends_ns ? now_ns : spec.ends_ns - 1;
    }
    bool dup = false;
    for (size_t j = 0; j < nmade; j++) {
      dup = dup || strcmp(made[j].id, text) == 0;
    }
    if (dup) {
      continue;
    }
    rc = build(&made[nmade], &spec, err);
    if (rc) {
      if (rc == IOCD_EINVAL) {
        iocd_err_prefix(err, "silences[%zu]", i);
      }
      break;
    }
    memcpy(made[nmade].id, text, 17);
    made[nmade].from_config = true;
    made[nmade].updated_ns = now_ns;
    nmade++;
  }
  size_t keep = 0;
  for (size_t i = 0; i < s->n; i++) {
    keep += !s->v[i].from_config;
  }
  if (!rc && keep + nmade > SILENCE_MAX) {
    rc = iocd_err_set(err, IOCD_EINVAL, "silences: more than %d", SILENCE_MAX);
  }
  if (!rc && keep + nmade > s->cap) {
    struct silence *nv = realloc(s->v, (keep + nmade) * sizeof *nv);
    if (!nv) {
      rc = IOCD_ENOMEM;
    } else {
      s->v = nv;
      s->cap = keep + nmade;
    }
  }
  if (rc) {
    for (size_t j = 0; j < nmade; j++) {
      silence_cleanup(&made[j]);
    }
    free(made);
    return rc;
  }
  /* The configuration's silences go first, in the order written. */
  size_t w = 0;
  for (size_t i = 0; i < s->n; i++) {
    if (s->v[i].from_config) {
      silence_cleanup(&s->v[i]);
    } else {
      s->v[w++] = s->v[i];
    }
  }
  if (w > 0 && nmade > 0) {
    memmove(&s->v[nmade], &s->v[0], w * sizeof *s->v);
  }
  for (size_t j = 0; j < nmade; j++) {
    s->v[j] = made[j];
  }
  s->n = w + nmade;
  free(made);
  return IOCD_OK;
}

int silence_expire(struct silence_set *s, const char *id, const char *by,
                   int64_t now_ns) {
  struct silence *x = find(s, id);
  if (!x) {
    return IOCD_ENOTFOUND;
  }
  if (x->from_config || silence_state_at(x, now_ns) == SILENCE_EXPIRED) {
    return IOCD_ESTATE;
  }
  char *who = by ? mem_strdup(by) : NULL;
  if (by && !who) {
    return IOCD_ENOMEM;
  }
  free(x->expired_by);
  x->expired_by = who;
  if (x->starts_ns > now_ns) {
    x->starts_ns = now_ns;
  }
  x->ends_ns = now_ns;
  x->updated_ns = now_ns;
  return IOCD_OK;
}

static void remove_at(struct silence_set *s, size_t i) {
  silence_cleanup(&s->v[i]);
  memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
  s->n--;
}

int silence_delete(struct silence_set *s, const char *id) {
  struct silence *x = find(s, id);
  if (!x) {
    return IOCD_ENOTFOUND;
  }
  if (x->from_config) {
    return IOCD_ESTATE;
  }
  remove_at(s, (size_t)(x - s->v));
  return IOCD_OK;
}

size_t silence_gc(struct silence_set *s, int64_t now_ns, int64_t retention_ns) {
  if (retention_ns <= 0) {
    retention_ns = SILENCE_RETENTION_NS;
  }
  size_t removed = 0;
  for (size_t i = 0; i < s->n;) {
    if (s->v[i].ends_ns <= now_ns - retention_ns) {
      remove_at(s, i);
      removed++;
    } else {
      i++;
    }
  }
  return removed;
}

enum silence_state silence_state_at(const struct silence *x, int64_t now_ns) {
  if (now_ns < x->starts_ns) {
    return SILENCE_PENDING;
  }
  return now_ns < x->ends_ns ? SILENCE_ACTIVE : SILENCE_EXPIRED;
}

const char *silence_state_name(enum silence_state st) {
  switch (st) {
    case SILENCE_PENDING:
      return "pending";
    case SILENCE_ACTIVE:
      return "active";
    case SILENCE_EXPIRED:
      return "expired";
  }
  return "unknown";
}

const struct silence *silence_matching(const struct silence_set *s,
                                       const struct notice_labels *ls,
                                       int64_t now_ns) {
  for (size_t i = 0; s && i < s->n; i++) {
    const struct silence *x = &s->v[i];
    if (silence_state_at(x, now_ns) == SILENCE_ACTIVE &&
        match_labels(&x->compiled, ls)) {
      return x;
    }
  }
  return NULL;
}

size_t silence_count(const struct silence_set *s) {
  return s ? s->n : 0;
}

const struct silence *silence_at(const struct silence_set *s, size_t i) {
  return s && i < s->n ? &s->v[i] : NULL;
}

const struct silence *silence_get(const struct silence_set *s, const char *id) {
  return find(s, id);
}

/* ---- JSON ---------------------------------------------------------------- */

static int64_t ms_of(int64_t ns) {
  /* Floor, so that a silence written and read back never ends later. */
  return ns / NS_PER_MS - (ns % NS_PER_MS < 0);
}

static bool add_str_or_null(cJSON *o, const char *key, const char *v) {
  return v ? cJSON_AddStringToObject(o, key, v) != NULL
           : cJSON_AddNullToObject(o, key) != NULL;
}

int silence_set_to_json(const struct silence_set *s, struct buf *out) {
  cJSON *doc = cJSON_CreateObject();
  cJSON *arr = doc ? cJSON_AddArrayToObject(doc, "silences") : NULL;
  bool ok = arr != NULL;
  for (size_t i = 0; ok && i < s->n; i++) {
    const struct silence *x = &s->v[i];
    if (x->from_config) {
      continue;
    }
    cJSON *o = cJSON_CreateObject();
    ok = o && cJSON_AddItemToArray(arr, o);
    if (o && !ok) {
      cJSON_Delete(o);
    }
    cJSON *ms = ok ? cJSON_AddArrayToObject(o, "matchers") : NULL;
    ok = ok && cJSON_AddStringToObject(o, "id", x->id) && ms;
    for (size_t j = 0; ok && j < x->nmatchers; j++) {
      cJSON *m = cJSON_CreateObject();
      ok = m && cJSON_AddItemToArray(ms, m);
      if (m && !ok) {
        cJSON_Delete(m);
      }
      ok = ok && cJSON_AddStringToObject(m, "name", x->matchers[j].name) &&
           cJSON_AddStringToObject(m, "op", match_op_text(x->matchers[j].op)) &&
           cJSON_AddStringToObject(m, "value", x->matchers[j].value);
    }
    ok = ok &&
         cJSON_AddNumberToObject(o, "starts_ms", (double)ms_of(x->starts_ns)) &&
         cJSON_AddNumberToObject(o, "ends_ms", (double)ms_of(x->ends_ns)) &&
         cJSON_AddStringToObject(o, "created_by", x->created_by) &&
         add_str_or_null(o, "principal", x->principal) &&
         add_str_or_null(o, "expired_by", x->expired_by) &&
         cJSON_AddStringToObject(o, "comment", x->comment) &&
         cJSON_AddNumberToObject(o, "updated_ms", (double)ms_of(x->updated_ns));
  }
  char *text = ok ? cJSON_PrintUnformatted(doc) : NULL;
  cJSON_Delete(doc);
  if (!text) {
    return IOCD_ENOMEM;
  }
  int rc = buf_puts(out, text);
  cJSON_free(text);
  return rc;
}

/* A whole number of milliseconds in member key of o, as ns. */
static bool get_ms(const cJSON *o, const char *key, int64_t *ns) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
      fabs(v->valuedouble) > 9.0e15) {
    return false;
  }
  *ns = (int64_t)v->valuedouble * NS_PER_MS;
  return true;
}

static const char *get_str(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool parse_op(const char *t, enum config_match_op *op) {
  static const enum config_match_op ops[] = {CONFIG_MATCH_EQ, CONFIG_MATCH_NE,
                                             CONFIG_MATCH_RE, CONFIG_MATCH_NRE};
  for (size_t i = 0; t && i < sizeof ops / sizeof ops[0]; i++) {
    if (strcmp(t, match_op_text(ops[i])) == 0) {
      *op = ops[i];
      return true;
    }
  }
  return false;
}

static bool is_id(const char *t) {
  if (!t || strlen(t) != 16) {
    return false;
  }
  for (const char *p = t; *p; p++) {
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
      return false;
    }
  }
  return true;
}

/* Adds the one entry o of the document; IOCD_EPARSE with err for a bad one. */
static int load_one(struct silence_set *s, const cJSON *o, size_t i,
                    struct iocd_err *err) {
  const char *id = get_str(o, "id");
  const cJSON *ms = cJSON_GetObjectItemCaseSensitive(o, "matchers");
  int64_t starts, ends, updated = 0;
  if (!is_id(id)) {
    return iocd_err_set(err, IOCD_EPARSE,
                        "silences[%zu].id: expected 16 hex digits", i);
  }
  if (!cJSON_IsArray(ms) || !get_ms(o, "starts_ms", &starts) ||
      !get_ms(o, "ends_ms", &ends)) {
    return iocd_err_set(err, IOCD_EPARSE,
                        "silences[%zu]: expected matchers, starts_ms and "
                        "ends_ms",
                        i);
  }
  get_ms(o, "updated_ms", &updated);
  if (find(s, id)) {
    return IOCD_OK;
  }
  size_t n = (size_t)cJSON_GetArraySize(ms);
  struct config_matcher *m = n ? calloc(n, sizeof *m) : NULL;
  if (n && !m) {
    return IOCD_ENOMEM;
  }
  size_t j = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, ms) {
    m[j].name = (char *)get_str(it, "name");
    m[j].value = (char *)get_str(it, "value");
    if (!m[j].name || !m[j].value || !parse_op(get_str(it, "op"), &m[j].op)) {
      free(m);
      return iocd_err_set(err, IOCD_EPARSE,
                          "silences[%zu].matchers[%zu]: expected name, op "
                          "and value",
                          i, j);
    }
    j++;
  }
  struct silence_spec spec = {
      .matchers = m,
      .nmatchers = n,
      .starts_ns = starts,
      .ends_ns = ends,
      .created_by = get_str(o, "created_by"),
      .principal = get_str(o, "principal"),
      .comment = get_str(o, "comment"),
  };
  struct silence x;
  int rc = build(&x, &spec, err);
  free(m);
  if (rc) {
    if (rc == IOCD_EINVAL) {
      iocd_err_prefix(err, "silences[%zu]", i);
      rc = IOCD_EPARSE;
    }
    return rc;
  }
  const char *expired_by = get_str(o, "expired_by");
  if (expired_by && !(x.expired_by = mem_strdup(expired_by))) {
    silence_cleanup(&x);
    return IOCD_ENOMEM;
  }
  memcpy(x.id, id, 17);
  x.updated_ns = updated;
  rc = push(s, &x);
  if (rc) {
    silence_cleanup(&x);
    if (rc == IOCD_ELIMIT) {
      rc = iocd_err_set(err, IOCD_EPARSE, "silences[%zu]: more than %d", i,
                        SILENCE_MAX);
    }
  }
  return rc;
}

int silence_set_from_json(struct silence_set *s, const char *json, size_t len,
                          size_t *skipped, struct iocd_err *err) {
  if (skipped) {
    *skipped = 0;
  }
  cJSON *doc = cJSON_ParseWithLength(json, len);
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "silences");
  if (!cJSON_IsArray(arr)) {
    cJSON_Delete(doc);
    return iocd_err_set(err, IOCD_EPARSE,
                        "expected a JSON object with a \"silences\" array");
  }
  size_t i = 0, bad = 0;
  int rc = IOCD_OK;
  struct iocd_err first = {{0}};
  const cJSON *o;
  cJSON_ArrayForEach(o, arr) {
    struct iocd_err e = {{0}};
    rc = load_one(s, o, i++, &e);
    if (rc == IOCD_ENOMEM) {
      break;
    }
    if (rc) {
      if (bad++ == 0) {
        first = e;
      }
      rc = IOCD_OK;
    }
  }
  cJSON_Delete(doc);
  if (skipped) {
    *skipped = bad;
  }
  if (bad && err) {
    *err = first;
  }
  return rc;
}
