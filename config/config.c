/*
 * Loading and validating iocd's configuration. The keys of every object are
 * described by tables (name, type, bounds, default, where the value goes),
 * and the walker (walk.c) checks any object against its table, so unknown
 * keys, wrong types, ranges and defaults are handled the same way
 * everywhere. Problems are collected rather than returned at the first one,
 * and each one names its place as FILE:LINE:COL: JSON.PATH, so `iocd check`
 * shows them all.
 */
#include "config/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_int.h"
#include "core/file.h"

#define CONFIG_MAX_FILE (16u << 20)
#define MAX_ERRORS 100
#define MAX_SUBS 10000

/* Durations in the tables are in milliseconds. */
#define D_MS INT64_C(1)
#define D_S INT64_C(1000)
#define D_M (60 * D_S)
#define D_H (60 * D_M)
#define D_D (24 * D_H)
#define Z_KIB (INT64_C(1) << 10)
#define Z_MIB (INT64_C(1) << 20)
#define Z_GIB (INT64_C(1) << 30)

/* Enums are stored through an int lvalue; these keep that honest. */
_Static_assert(sizeof(enum mqtt_protocol) == sizeof(int), "enum size");
_Static_assert(sizeof(enum payload_format) == sizeof(int), "enum size");
_Static_assert(sizeof(enum time_unit) == sizeof(int), "enum size");
_Static_assert(sizeof(enum influx_api) == sizeof(int), "enum size");
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum log_format) == sizeof(int), "enum size");
_Static_assert(sizeof(enum field_type) == sizeof(int), "enum size");
_Static_assert(sizeof(enum journal_fsync) == sizeof(int), "enum size");
_Static_assert(sizeof(enum journal_when_full) == sizeof(int), "enum size");

/* The problems of one load, collected from the walker and the rules
 * sections, handed to the caller in file order at the end. */
struct errrec {
  size_t off;
  size_t seq;
  char *msg;
};

struct problems {
  const char *name; /* file name for "N more problems" */
  struct errrec *v;
  size_t n, cap;
  size_t total; /* problems found, including those past MAX_ERRORS */
  bool nomem;
};

/* The walker's sink: keeps the first MAX_ERRORS problems; order places each
 * one among the others (a byte offset in the main file). */
static void collect(void *ud, size_t order, const char *msg) {
  struct problems *pb = ud;
  pb->total++;
  if (pb->n >= MAX_ERRORS) {
    return;
  }
  char *m = NULL;
  if (!cw_grow((void **)&pb->v, sizeof *pb->v, pb->n, &pb->cap) ||
      !(m = strdup(msg))) {
    pb->nomem = true;
    return;
  }
  pb->v[pb->n] = (struct errrec){order, pb->n, m};
  pb->n++;
}

static int cmp_err(const void *a, const void *b) {
  const struct errrec *x = a, *y = b;
  if (x->off != y->off) {
    return x->off < y->off ? -1 : 1;
  }
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Hands the problems to the caller in file order. */
static void flush_errors(struct problems *pb, struct buf *errors) {
  if (pb->n > 1) {
    qsort(pb->v, pb->n, sizeof *pb->v, cmp_err);
  }
  for (size_t i = 0; i < pb->n; i++) {
    if (errors) {
      buf_printf(errors, "%s\n", pb->v[i].msg);
    }
    free(pb->v[i].msg);
  }
  if (errors && pb->total > pb->n) {
    buf_printf(errors, "%s: %zu more problems not shown\n", pb->name,
               pb->total - pb->n);
  }
  free(pb->v);
  pb->v = NULL;
  pb->n = pb->cap = 0;
}

/* The tables. */

static const struct cw_enum log_level_names[] = {
    {"error", LOG_ERROR}, {"warn", LOG_WARN}, {"info", LOG_INFO},
    {"debug", LOG_DEBUG}, {NULL, 0},
};

static const struct cw_enum log_format_names[] = {
    {"text", LOG_FMT_TEXT},
    {"json", LOG_FMT_JSON},
    {NULL, 0},
};

static const struct cw_enum language_names[] = {
    {"vi", CONFIG_LANG_VI},
    {"en", CONFIG_LANG_EN},
    {NULL, 0},
};

static const struct cw_enum protocol_names[] = {
    {"5", MQTT_PROTO_V5},
    {"3.1.1", MQTT_PROTO_V311},
    {NULL, 0},
};

static const struct cw_enum format_names[] = {
    {"json", FORMAT_JSON},   {"value", FORMAT_VALUE}, {"line", FORMAT_LINE},
    {"senml", FORMAT_SENML}, {"auto", FORMAT_AUTO},   {NULL, 0},
};

/* What "auto" falls back to cannot itself be "auto". */
static const struct cw_enum fallback_names[] = {
    {"json", FORMAT_JSON},
    {"value", FORMAT_VALUE},
    {"line", FORMAT_LINE},
    {"senml", FORMAT_SENML},
    {NULL, 0},
};

static const struct cw_enum time_unit_names[] = {
    {"auto", TIME_AUTO}, {"s", TIME_S},   {"ms", TIME_MS},
    {"us", TIME_US},     {"ns", TIME_NS}, {"rfc3339", TIME_RFC3339},
    {NULL, 0},
};

static const struct cw_enum number_unit_names[] = {
    {"s", TIME_S}, {"ms", TIME_MS}, {"us", TIME_US}, {"ns", TIME_NS}, {NULL, 0},
};

static const struct cw_enum fsync_names[] = {
    {"interval", JOURNAL_FSYNC_INTERVAL},
    {"never", JOURNAL_FSYNC_NEVER},
    {"always", JOURNAL_FSYNC_ALWAYS},
    {NULL, 0},
};

static const struct cw_enum when_full_names[] = {
    {"pause", JOURNAL_FULL_PAUSE},
    {"drop_oldest", JOURNAL_FULL_DROP_OLDEST},
    {NULL, 0},
};

static const struct cw_enum field_type_names[] = {
    {"float", FIELD_FLOAT},
    {"integer", FIELD_INT},
    {"boolean", FIELD_BOOL},
    {"string", FIELD_STRING},
    {NULL, 0},
};

#define KSTR(n, t, f, d) \
  { .name = n, .type = CW_STR, .off = offsetof(t, f), .def_str = d }
#define KREQ(n, t, f) \
  { .name = n, .type = CW_STR, .off = offsetof(t, f), .flags = CW_REQ }
/* A name: a string without control characters. */
#define KNAME(n, t, f, d)                                           \
  {                                                                 \
    .name = n, .type = CW_STR, .off = offsetof(t, f), .def_str = d, \
    .flags = CW_NAME                                                \
  }
#define KREQNAME(n, t, f)                             \
  {                                                   \
    .name = n, .type = CW_STR, .off = offsetof(t, f), \
    .flags = CW_REQ | CW_NAME                         \
  }
#define KBOOL(n, t, f, d) \
  { .name = n, .type = CW_BOOL, .off = offsetof(t, f), .def = d }
#define KINT(n, t, f, st, lo, hi, d)                                          \
  {                                                                           \
    .name = n, .type = CW_INT, .off = offsetof(t, f), .store = st, .min = lo, \
    .max = hi, .def = d                                                       \
  }
#define KDUR(n, t, f, st, u, lo, hi, d)                                       \
  {                                                                           \
    .name = n, .type = CW_DUR, .off = offsetof(t, f), .store = st, .unit = u, \
    .min = lo, .max = hi, .def = d                                            \
  }
#define KSIZE(n, t, f, lo, hi, d)                                            \
  {                                                                          \
    .name = n, .type = CW_SIZE, .off = offsetof(t, f), .min = lo, .max = hi, \
    .def = d                                                                 \
  }
#define KENUM(n, t, f, e, d) \
  { .name = n, .type = CW_ENUM, .off = offsetof(t, f), .names = e, .def = d }
#define KOBJ(n, t, f, o) \
  { .name = n, .type = CW_OBJ, .off = offsetof(t, f), .obj = o }
#define KFN(n, fn) \
  { .name = n, .type = CW_FN, .set = fn }

/* A section that can be switched off is on as soon as it is present, unless
 * it says "enabled": false. */
static void tls_begin(void *base) {
  ((struct config_tls *)base)->enabled = true;
}

static void influx_begin(void *base) {
  ((struct config_influx *)base)->enabled = true;
}

static void file_begin(void *base) {
  ((struct config_file_output *)base)->enabled = true;
}

static void self_metrics_begin(void *base) {
  ((struct config_self_metrics *)base)->enabled = true;
}

static void tls_check(struct cw *c, struct cw_val v, void *base);
static void mqtt_check(struct cw *c, struct cw_val v, void *base);
static void influx_check(struct cw *c, struct cw_val v, void *base);
static void journal_check(struct cw *c, struct cw_val v, void *base);
static void set_subs(struct cw *c, struct cw_val v, void *base);
static void set_tag_keys(struct cw *c, struct cw_val v, void *base);
static void sub_check(struct cw *c, struct cw_val v, void *base);
static void set_tags(struct cw *c, struct cw_val v, void *base);
static void set_types(struct cw *c, struct cw_val v, void *base);

#define T struct config_tls
static const struct cw_key tls_keys[] = {
    KBOOL("enabled", T, enabled, false),
    KSTR("ca_file", T, ca_file, NULL),
    KSTR("ca_path", T, ca_path, NULL),
    KSTR("cert_file", T, cert_file, NULL),
    KSTR("key_file", T, key_file, NULL),
    KBOOL("verify_hostname", T, verify_hostname, true),
};
#undef T
static const struct cw_object tls_object =
    CW_OBJECT(tls_keys, tls_begin, tls_check);

#define T struct config_mqtt
static const struct cw_key mqtt_keys[] = {
    KSTR("host", T, host, "127.0.0.1"),
    /* 0 until the end of the load, which picks 1883 or 8883. */
    KINT("port", T, port, CW_AS_INT, 1, 65535, 0),
    KSTR("client_id", T, client_id, NULL),
    KENUM("protocol", T, protocol, protocol_names, MQTT_PROTO_V5),
    KSTR("username", T, username, NULL),
    KSTR("password", T, password, NULL),
    KDUR("keepalive", T, keepalive_s, CW_AS_INT, D_S, 5 * D_S, D_H, 30 * D_S),
    KBOOL("clean_start", T, clean_start, false),
    KDUR("session_expiry", T, session_expiry_s, CW_AS_U32, D_S, 0,
         INT64_C(4294967295) * D_S, D_D),
    KDUR("reconnect_min", T, reconnect_min_ms, CW_AS_INT, D_MS, 10, D_H, 500),
    KDUR("reconnect_max", T, reconnect_max_ms, CW_AS_INT, D_MS, 100, D_D,
         30 * D_S),
    KDUR("idle_timeout", T, idle_timeout_s, CW_AS_INT, D_S, 0, D_D, 5 * D_M),
    KOBJ("tls", T, tls, &tls_object),
};
#undef T
static const struct cw_object mqtt_object =
    CW_OBJECT(mqtt_keys, NULL, mqtt_check);

#define T struct config
static const struct cw_key log_keys[] = {
    KENUM("level", T, log_level, log_level_names, LOG_INFO),
    KENUM("format", T, log_format, log_format_names, LOG_FMT_TEXT),
};
#undef T
static const struct cw_object log_object = CW_OBJECT(log_keys, NULL, NULL);

#define T struct config_limits
static const struct cw_key limits_keys[] = {
    KSIZE("max_payload", T, max_payload_bytes, 16, 256 * Z_MIB, 64 * Z_KIB),
    KINT("max_series", T, max_series, CW_AS_SIZE, 1, 100000000, 100000),
    KINT("max_json_depth", T, max_json_depth, CW_AS_INT, 1, 64, 8),
    KINT("max_fields", T, max_fields, CW_AS_SIZE, 1, 100000, 256),
    KDUR("max_future", T, max_future_s, CW_AS_I64, D_S, 0, 366 * D_D, 10 * D_M),
    KDUR("max_past", T, max_past_s, CW_AS_I64, D_S, D_S, 36600 * D_D,
         366 * D_D),
    KINT("log_burst", T, log_burst, CW_AS_INT, 1, 100000, 10),
    KDUR("log_window", T, log_window_s, CW_AS_INT, D_S, D_S, D_H, 10 * D_S),
    KDUR("late_after", T, late_after_s, CW_AS_I64, D_S, D_S, 366 * D_D,
         5 * D_M),
    KDUR("future_after", T, future_after_s, CW_AS_I64, D_S, D_S, 366 * D_D,
         D_M),
    KDUR("silent_after", T, silent_after_s, CW_AS_I64, D_S, D_S, 366 * D_D,
         10 * D_M),
};
#undef T
static const struct cw_object limits_object =
    CW_OBJECT(limits_keys, NULL, NULL);

#define T struct config_identity
static const struct cw_key identity_keys[] = {
    KREQNAME("user_property", T, user_property),
};
#undef T
static const struct cw_object identity_object =
    CW_OBJECT(identity_keys, NULL, NULL);

#define T struct config_subscription
static const struct cw_key sub_keys[] = {
    KNAME("name", T, name, NULL),
    KREQNAME("topic", T, topic),
    KINT("qos", T, qos, CW_AS_INT, 0, 2, 1),
    KENUM("format", T, format, format_names, FORMAT_JSON),
    KENUM("fallback_format", T, fallback, fallback_names, FORMAT_JSON),
    KNAME("measurement", T, measurement, NULL),
    KNAME("field", T, field, "value"),
    KNAME("time_key", T, time_key, "time"),
    KENUM("time_unit", T, time_unit, time_unit_names, TIME_AUTO),
    KENUM("time_unit_numbers", T, time_unit_numbers, number_unit_names, TIME_S),
    KNAME("measurement_key", T, measurement_key, NULL),
    KFN("tag_keys", set_tag_keys),
    CW_FN_OF("tags", set_tags, CW_MAP, NULL),
    CW_FN_OF("types", set_types, CW_MAP, NULL),
    KBOOL("allow_strings", T, allow_strings, false),
    KNAME("dead_letter", T, dead_letter, NULL),
    KOBJ("identity", T, identity, &identity_object),
};
#undef T
static const struct cw_object sub_object = CW_OBJECT(sub_keys, NULL, sub_check);

#define T struct config_influx
static const struct cw_key influx_keys[] = {
    KBOOL("enabled", T, enabled, false),
    KSTR("url", T, url, "http://127.0.0.1:8086"),
    KINT("api", T, api, CW_AS_INT, 1, 2, INFLUX_V1),
    KSTR("database", T, database, NULL),
    KSTR("retention_policy", T, retention_policy, NULL),
    KSTR("username", T, username, NULL),
    KSTR("password", T, password, NULL),
    KBOOL("create_database", T, create_database, true),
    KSTR("org", T, org, NULL),
    KSTR("bucket", T, bucket, NULL),
    KSTR("token", T, token, NULL),
    KBOOL("gzip", T, gzip, true),
    KDUR("timeout", T, timeout_ms, CW_AS_INT, D_MS, 100, 10 * D_M, 10 * D_S),
    KINT("batch_points", T, batch_points, CW_AS_INT, 1, 1000000, 5000),
    KSIZE("batch_bytes", T, batch_bytes, Z_KIB, 256 * Z_MIB, Z_MIB),
    KDUR("flush_interval", T, flush_interval_ms, CW_AS_INT, D_MS, 10, D_H, D_S),
    KDUR("retry_min", T, retry_min_ms, CW_AS_INT, D_MS, 10, D_H, 500),
    KDUR("retry_max", T, retry_max_ms, CW_AS_INT, D_MS, 100, D_D, 60 * D_S),
    KINT("max_in_flight", T, max_in_flight, CW_AS_INT, 1, 64, 2),
    KSIZE("buffer", T, buffer_bytes, Z_MIB, 64 * Z_GIB, 64 * Z_MIB),
    KSTR("ca_file", T, ca_file, NULL),
    KBOOL("tls_verify", T, tls_verify, true),
    KDUR("probe_interval", T, probe_interval_ms, CW_AS_INT, D_MS, 0, D_H,
         2 * D_S),
};
#undef T
static const struct cw_object influx_object =
    CW_OBJECT(influx_keys, influx_begin, influx_check);

#define T struct config_file_output
static const struct cw_key file_keys[] = {
    KBOOL("enabled", T, enabled, false),
    KSTR("path", T, path, "-"),
};
#undef T
static const struct cw_object file_object =
    CW_OBJECT(file_keys, file_begin, NULL);

#define T struct config_journal
static const struct cw_key journal_keys[] = {
    KBOOL("enabled", T, enabled, true),
    KSIZE("segment_bytes", T, segment_bytes, 4 * Z_KIB, Z_GIB, 16 * Z_MIB),
    KSIZE("max_bytes", T, max_bytes, 64 * Z_KIB, 65536 * Z_GIB, Z_GIB),
    KSIZE("memory", T, memory_bytes, 64 * Z_KIB, 64 * Z_GIB, 64 * Z_MIB),
    KENUM("fsync", T, fsync, fsync_names, JOURNAL_FSYNC_INTERVAL),
    KDUR("fsync_interval", T, fsync_interval_ms, CW_AS_INT, D_MS, 10, D_H, D_S),
    KENUM("when_full", T, when_full, when_full_names, JOURNAL_FULL_PAUSE),
    KINT("replay_rate", T, replay_rate, CW_AS_I64, 0, 1000000000, 0),
};
#undef T
static const struct cw_object journal_object =
    CW_OBJECT(journal_keys, NULL, journal_check);

#define T struct config_self_metrics
static const struct cw_key self_metrics_keys[] = {
    KBOOL("enabled", T, enabled, false),
    KDUR("interval", T, interval_ms, CW_AS_INT, D_MS, D_S, D_H, 10 * D_S),
    KNAME("measurement", T, measurement, "iocd_internal"),
    KNAME("host", T, host, NULL),
};
#undef T
static const struct cw_object self_metrics_object =
    CW_OBJECT(self_metrics_keys, self_metrics_begin, NULL);

#define T struct config
static const struct cw_key root_keys[] = {
    KSTR("data_dir", T, data_dir, "./var/iocd"),
    KENUM("language", T, language, language_names, CONFIG_LANG_VI),
    /* log.level and log.format live in struct config itself. */
    {.name = "log", .type = CW_OBJ, .off = 0, .obj = &log_object},
    KDUR("stats_interval", T, stats_interval_s, CW_AS_INT, D_S, 0, D_D,
         60 * D_S),
    KDUR("shutdown_timeout", T, shutdown_timeout_ms, CW_AS_INT, D_MS, 0, D_H,
         10 * D_S),
    KOBJ("mqtt", T, mqtt, &mqtt_object),
    CW_FN_OF("subscriptions", set_subs, CW_LIST, &sub_object),
    KOBJ("limits", T, limits, &limits_object),
    KOBJ("influxdb", T, influx, &influx_object),
    KOBJ("file", T, file, &file_object),
    KOBJ("api", T, api, &config__api_obj),
    KOBJ("journal", T, journal, &journal_object),
    KOBJ("self_metrics", T, self_metrics, &self_metrics_object),
    /* The rules sections need every rule file and the whole main file (a
     * rule may use a parameter defined after it), so config__load_rules
     * reads them after the walk; here they are only known keys. */
    KFN("calendar", cw_skip),
    KFN("sources", cw_skip),
    KFN("rule_engine", cw_skip),
    KFN("params", cw_skip),
    KFN("rules", cw_skip),
    KFN("rule_files", cw_skip),
    /* Read after the walk too (config__load_notify): a receiver's language
     * defaults to the top-level "language", wherever it is written. */
    KFN("notifications", cw_skip),
};
#undef T
static const struct cw_object root_object = CW_OBJECT(root_keys, NULL, NULL);

/* The schema, from the same tables. A section read after the walk is
 * only named in root_keys (cw_skip); its table is the one in
 * config__rules_sections or config__notify_section. */
static void schema_walk(const struct cw_object *o, const char *prefix,
                        config_schema_fn *fn, void *ud) {
  static const struct cw_object *const later[] = {&config__rules_sections,
                                                  &config__notify_section};
  for (size_t i = 0; i < o->nkeys; i++) {
    const struct cw_key *k = &o->keys[i];
    for (size_t s = 0; k->set == cw_skip && s < 2; s++) {
      for (size_t r = 0; r < later[s]->nkeys; r++) {
        if (strcmp(later[s]->keys[r].name, k->name) == 0) {
          k = &later[s]->keys[r];
          break;
        }
      }
    }
    char path[256];
    int n = snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "",
                     k->name);
    if (n < 0 || (size_t)n >= sizeof path) {
      continue; /* the tables nest a few levels of short names */
    }
    enum config_schema_kind kind = CONFIG_SCHEMA_VALUE;
    const char *items = NULL;
    if (k->type == CW_OBJ) {
      kind = CONFIG_SCHEMA_OBJECT;
      items = "";
    } else if (k->type == CW_FN && (k->flags & CW_LIST)) {
      kind = CONFIG_SCHEMA_LIST;
      items = "[]";
    } else if (k->type == CW_FN && (k->flags & CW_MAP)) {
      kind = CONFIG_SCHEMA_MAP;
      items = ".*";
    }
    fn(ud, path, kind);
    char inner[sizeof path + 4];
    if (items && k->obj) {
      snprintf(inner, sizeof inner, "%s%s", path, items);
      schema_walk(k->obj, inner, fn, ud);
    }
  }
}

void config_schema_each(config_schema_fn *fn, void *ud) {
  schema_walk(&root_object, "", fn, ud);
}

/* Cross-field checks. Each points at the value that is wrong, or at the
 * object when the problem is something missing from it. */

static void tls_check(struct cw *c, struct cw_val v, void *base) {
  struct config_tls *t = base;
  if (t->cert_file && !t->key_file) {
    cw_report_key(c, "key_file", cw_voff(c, v),
                  "required when mqtt.tls.cert_file is set");
  }
  if (t->key_file && !t->cert_file) {
    cw_report_key(c, "cert_file", cw_voff(c, v),
                  "required when mqtt.tls.key_file is set");
  }
}

/* Reports "min_key: X is more than PREFIX.max_key (Y)" at min_key's value,
 * or at max_key's when min_key kept its default. */
static void check_order(struct cw *c, struct cw_val v, const char *prefix,
                        const char *min_key, int64_t min_ms,
                        const char *max_key, int64_t max_ms) {
  if (min_ms <= max_ms) {
    return;
  }
  struct cw_val cv;
  size_t off = cw_find_child(c, v, min_key, &cv) ? cw_voff(c, cv)
                                                 : cw_child_off(c, v, max_key);
  char a[32], b[32];
  config__format_duration(min_ms, a, sizeof a);
  config__format_duration(max_ms, b, sizeof b);
  cw_report_key(c, min_key, off, "%s is more than %s.%s (%s)", a, prefix,
                max_key, b);
}

static void mqtt_check(struct cw *c, struct cw_val v, void *base) {
  struct config_mqtt *m = base;
  check_order(c, v, "mqtt", "reconnect_min", m->reconnect_min_ms,
              "reconnect_max", m->reconnect_max_ms);
}

static void influx_check(struct cw *c, struct cw_val v, void *base) {
  struct config_influx *in = base;
  if (!in->enabled) {
    return;
  }
  /* With a bad "api" the default would stand in for it; what it requires
   * would then be noise next to the real mistake. */
  struct cw_val av;
  int64_t api = in->api;
  if (cw_find_child(c, v, "api", &av) && !cw_get_int(av.j, &api)) {
    api = 0;
  }
  if (api == INFLUX_V1 && !in->database) {
    cw_report_key(c, "database", cw_voff(c, v),
                  "required when influxdb.api is 1");
  }
  if (api == INFLUX_V2) {
    static const char *const need[] = {"org", "bucket", "token"};
    const char *have[] = {in->org, in->bucket, in->token};
    for (size_t i = 0; i < 3; i++) {
      if (!have[i]) {
        cw_report_key(c, need[i], cw_voff(c, v),
                      "required when influxdb.api is 2");
      }
    }
  }
  if (in->url && strncmp(in->url, "http://", 7) != 0 &&
      strncmp(in->url, "https://", 8) != 0) {
    struct cw_desc d;
    cw_quoted(c, in->url, &d);
    cw_report_key(c, "url", cw_child_off(c, v, "url"),
                  "expected an http:// or https:// URL, got %s", cw_qs(&d));
    cw_desc_done(&d);
  }
  check_order(c, v, "influxdb", "retry_min", in->retry_min_ms, "retry_max",
              in->retry_max_ms);
  if (in->probe_interval_ms > 0 && in->probe_interval_ms < 100) {
    cw_report_key(c, "probe_interval", cw_child_off(c, v, "probe_interval"),
                  "%dms is too often: at least 100ms, or \"0s\" to turn "
                  "the probe off",
                  in->probe_interval_ms);
  }
  if (in->batch_bytes > in->buffer_bytes) {
    char a[32], b[32];
    config__format_size((int64_t)in->buffer_bytes, a, sizeof a);
    config__format_size((int64_t)in->batch_bytes, b, sizeof b);
    cw_report_key(c, "buffer", cw_child_off(c, v, "buffer"),
                  "%s is less than influxdb.batch_bytes (%s)", a, b);
  }
}

/* Rotation must leave room for at least one closed segment besides the one
 * being written, or drop_oldest would have nothing to drop. */
static void journal_check(struct cw *c, struct cw_val v, void *base) {
  struct config_journal *jn = base;
  if (jn->max_bytes / 2 < jn->segment_bytes) {
    char a[32], b[32];
    config__format_size((int64_t)jn->max_bytes, a, sizeof a);
    config__format_size((int64_t)jn->segment_bytes, b, sizeof b);
    struct cw_val mv;
    size_t off = cw_find_child(c, v, "max_bytes", &mv)
                     ? cw_voff(c, mv)
                     : cw_child_off(c, v, "segment_bytes");
    cw_report_key(c, "max_bytes", off,
                  "%s is less than twice journal.segment_bytes (%s)", a, b);
  }
}

/* Subscriptions and their free-form parts. */

/* MQTT (3.1.1 and 5) carries a topic in at most 65,535 bytes, and a topic
 * that is published to holds no wildcard. */
#define MQTT_TOPIC_MAX 65535u

/* Whether topic has the level {district}, which the identity check
 * compares the user property with. */
static bool has_district_level(const char *topic) {
  static const char want[] = "{district}";
  size_t wn = sizeof want - 1;
  for (const char *p = topic; p;) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (n == wn && memcmp(p, want, wn) == 0) {
      return true;
    }
    p = slash ? slash + 1 : NULL;
  }
  return false;
}

static void sub_check(struct cw *c, struct cw_val v, void *base) {
  struct config_subscription *s = base;
  if (s->identity.user_property && s->topic &&
      !has_district_level(s->topic)) {
    cw_report_key(c, "identity", cw_child_off(c, v, "identity"),
                  "the topic has no {district} level to check the user "
                  "property against");
  }
  size_t n = s->topic ? strlen(s->topic) : 0;
  if (n > MQTT_TOPIC_MAX) {
    cw_report_key(c, "topic", cw_child_off(c, v, "topic"),
                  "%zu bytes; an MQTT topic has at most 65535", n);
  }
  n = s->dead_letter ? strlen(s->dead_letter) : 0;
  if (n > MQTT_TOPIC_MAX) {
    cw_report_key(c, "dead_letter", cw_child_off(c, v, "dead_letter"),
                  "%zu bytes; an MQTT topic has at most 65535", n);
  } else if (n && strpbrk(s->dead_letter, "+#")) {
    cw_report_key(c, "dead_letter", cw_child_off(c, v, "dead_letter"),
                  "a topic to publish to cannot hold the wildcards '+' or "
                  "'#'");
  }
}

static void set_tag_keys(struct cw *c, struct cw_val v, void *base) {
  struct config_subscription *s = base;
  s->tag_keys = cw_get_names(c, v, &s->ntag_keys);
}

/* "tags" and "types" are objects whose keys are names chosen by the user,
 * each with a string value. */
static bool add_tag(struct cw *c, const char *key, struct cw_val cv,
                    void *base) {
  struct config_subscription *s = base;
  if (!cw_name_ok(c, cw_koff(c, cv), key)) {
    return true;
  }
  char *value = cw_get_name(c, cv, "a string");
  if (!value) {
    return true;
  }
  char *k = strdup(key);
  if (!k) {
    c->nomem = true;
    free(value);
    return true;
  }
  s->tags[s->ntags].key = k;
  s->tags[s->ntags].value = value;
  s->ntags++;
  return true;
}

static void set_tags(struct cw *c, struct cw_val v, void *base) {
  struct config_subscription *s = base;
  if (cw_member_room(c, v, sizeof *s->tags, (void **)&s->tags)) {
    cw_walk_map(c, v, "an object of tag names and values", false, add_tag,
                base);
  }
}

static bool add_type(struct cw *c, const char *key, struct cw_val cv,
                     void *base) {
  struct config_subscription *s = base;
  int t;
  if (!cw_name_ok(c, cw_koff(c, cv), key) ||
      !cw_get_enum(c, cv, field_type_names, true, &t)) {
    return true;
  }
  char *k = strdup(key);
  if (!k) {
    c->nomem = true;
    return true;
  }
  s->types[s->ntypes].measurement = NULL;
  s->types[s->ntypes].field = k;
  s->types[s->ntypes].type = (enum field_type)t;
  s->ntypes++;
  return true;
}

static void set_types(struct cw *c, struct cw_val v, void *base) {
  struct config_subscription *s = base;
  if (cw_member_room(c, v, sizeof *s->types, (void **)&s->types)) {
    cw_walk_map(c, v, "an object of field names and types", false, add_type,
                base);
  }
}

/* Names label counters and logs, so two subscriptions may not share one. */
static void check_names(struct cw *c, struct config *cfg,
                        const struct cw_val *items) {
  struct cw_nref *refs = malloc(cfg->nsubs * sizeof *refs);
  size_t *first = malloc(cfg->nsubs * sizeof *first);
  if (!refs || !first) {
    c->nomem = true;
    free(refs);
    free(first);
    return;
  }
  size_t n = 0;
  for (size_t i = 0; i < cfg->nsubs; i++) {
    first[i] = SIZE_MAX;
    if (cfg->subs[i].name) {
      refs[n++] = (struct cw_nref){cfg->subs[i].name, i};
    }
  }
  cw_find_repeats(refs, n, first);
  for (size_t i = 0; i < n; i++) {
    size_t idx = refs[i].idx;
    if (first[idx] == SIZE_MAX) {
      continue;
    }
    struct cw_val nv;
    bool named = cw_find_child(c, items[idx], "name", &nv);
    const char *key = named ? "name" : "topic";
    struct cw_desc d;
    cw_quoted(c, refs[i].name, &d);
    size_t mark = cw_path_index(c, idx);
    cw_report_key(c, key, cw_child_off(c, items[idx], key),
                  "%s is already the name of subscriptions[%zu]%s", cw_qs(&d),
                  first[idx],
                  named ? "" : " (give this one a unique \"name\")");
    cw_path_pop(c, mark);
    cw_desc_done(&d);
  }
  free(refs);
  free(first);
}

static void set_subs(struct cw *c, struct cw_val v, void *base) {
  struct config *cfg = base;
  if (!cJSON_IsArray(v.j)) {
    cw_report_type(c, v, "an array of subscriptions");
    return;
  }
  size_t n;
  struct cw_val *items = cw_children(c, v, &n);
  if (!items) {
    return;
  }
  if (n == 0) {
    cw_report(c, cw_voff(c, v), "at least one subscription is required");
    goto out;
  }
  if (n > MAX_SUBS) {
    cw_report(c, cw_voff(c, v), "at most %d subscriptions are allowed, got %zu",
              MAX_SUBS, n);
    goto out;
  }
  cfg->subs = calloc(n, sizeof *cfg->subs);
  if (!cfg->subs) {
    c->nomem = true;
    goto out;
  }
  cfg->nsubs = n;
  for (size_t i = 0; i < n; i++) {
    struct config_subscription *s = &cfg->subs[i];
    size_t mark = cw_path_index(c, i);
    cw_defaults(c, &sub_object, s);
    cw_walk(c, items[i], &sub_object, s);
    s->fingerprint = cw_fingerprint(c, items[i]);
    struct cw_val tv;
    if (s->topic && cw_find_child(c, items[i], "topic", &tv)) {
      cw_place(c, cw_voff(c, tv), &s->topic_place);
    }
    if (!s->name && s->topic) {
      s->name = strdup(s->topic);
      c->nomem = c->nomem || !s->name;
    }
    cw_path_pop(c, mark);
  }
  check_names(c, cfg, items);
out:
  free(items);
}

/* Loading. */

/* The fingerprint of every top-level section that is not a list of named
 * items (those have one per item), for config_diff. */
static void section_prints(struct cw *c, struct cw_val root,
                           struct config *cfg) {
  static const char *const itemized[] = {"subscriptions", "params", "rules",
                                         "rule_files"};
  size_t n;
  struct cw_val *kids = cw_children(c, root, &n);
  if (!kids) {
    return;
  }
  cfg->prints = calloc(n ? n : 1, sizeof *cfg->prints);
  c->nomem = c->nomem || !cfg->prints;
  for (size_t i = 0; cfg->prints && i < n; i++) {
    const char *k = kids[i].j->string;
    bool skip = false;
    for (size_t j = 0; j < sizeof itemized / sizeof itemized[0]; j++) {
      skip = skip || strcmp(k, itemized[j]) == 0;
    }
    if (skip) {
      continue;
    }
    struct config_section_print *sp = &cfg->prints[cfg->nprints];
    sp->name = strdup(k);
    c->nomem = c->nomem || !sp->name;
    sp->fingerprint = cw_fingerprint(c, kids[i]);
    cfg->nprints++;
  }
  free(kids);
}

static void default_client_id(struct cw *c, struct config_mqtt *m) {
  char host[256];
  if (gethostname(host, sizeof host) != 0 || !host[0]) {
    snprintf(host, sizeof host, "localhost");
  }
  host[sizeof host - 1] = '\0';
  char id[300];
  snprintf(id, sizeof id, "iocd-%s", host);
  m->client_id = strdup(id);
  c->nomem = c->nomem || !m->client_id;
}

/* Defaults that depend on other settings, and checks on the whole file. */
static void finish(struct cw *c, struct cw_val root, struct config *cfg) {
  if (cfg->mqtt.port == 0) {
    cfg->mqtt.port = cfg->mqtt.tls.enabled ? 8883 : 1883;
  }
  if (!cfg->mqtt.client_id) {
    default_client_id(c, &cfg->mqtt);
  }
  struct cw_val sv;
  if (!cw_find_child(c, root, "subscriptions", &sv)) {
    cw_report_key(c, "subscriptions", cw_voff(c, root),
                  "at least one subscription is required");
  }
  /* MQTT 3.1.1 has no properties: every message would be rejected. */
  size_t nitems = 0;
  struct cw_val *items = NULL;
  for (size_t i = 0; i < cfg->nsubs && cfg->mqtt.protocol == MQTT_PROTO_V311;
       i++) {
    if (!cfg->subs[i].identity.user_property) {
      continue;
    }
    if (!items && cw_find_child(c, root, "subscriptions", &sv)) {
      items = cw_children(c, sv, &nitems);
    }
    if (!items || i >= nitems) {
      break;
    }
    size_t mark = cw_path_key(c, "subscriptions");
    cw_path_index(c, i);
    cw_report_key(c, "identity", cw_child_off(c, items[i], "identity"),
                  "needs MQTT 5 user properties, but mqtt.protocol is "
                  "\"3.1.1\"");
    cw_path_pop(c, mark);
  }
  free(items);
  if (!cfg->influx.enabled && !cfg->file.enabled) {
    cw_report(c, cw_voff(c, root),
              "no output is enabled (add an \"influxdb\" section or enable "
              "\"file\")");
  }
}

int config_load_text(const char *name, const char *text, size_t len,
                     struct config **out, struct buf *errors) {
  struct problems pb = {.name = name ? name : "<config>"};
  struct cw c;
  cw_init(&c, collect, &pb);
  struct cw_file f = {.doc = {.name = pb.name, .order = SIZE_MAX}};
  c.doc = &f.doc;
  struct config *cfg = NULL;
  int rc = IOCD_OK;
  if (out) {
    *out = NULL;
  }
  if (len > CONFIG_MAX_FILE) {
    cw_report(&c, SIZE_MAX, "the file is larger than %u MiB",
              CONFIG_MAX_FILE >> 20);
    goto out;
  }
  rc = cw_file_load(&c, &f, text, len,
                    "the file is empty (expected a JSON object)");
  if (rc) {
    rc = rc == IOCD_EPARSE ? IOCD_OK : rc;
    goto out;
  }
  rc = config__scan(f.copy, len, &f.pm);
  if (rc == IOCD_EPARSE) {
    cw_report(&c, SIZE_MAX, "cannot locate the values in the file");
  }
  if (rc) {
    goto out;
  }
  struct cw_val root = {f.json, 0};
  if (!cJSON_IsObject(f.json)) {
    cw_report_type(&c, root, "an object at the top level");
    goto out;
  }
  cfg = calloc(1, sizeof *cfg);
  if (!cfg) {
    rc = IOCD_ENOMEM;
    goto out;
  }
  cfg->path = strdup(pb.name);
  c.nomem = c.nomem || !cfg->path;
  cw_defaults(&c, &root_object, cfg);
  cw_walk(&c, root, &root_object, cfg);
  finish(&c, root, cfg);
  config__load_notify(&c, root, cfg);
  section_prints(&c, root, cfg);
  if (config__load_rules(&f.doc, f.json, cfg, collect, &pb) != IOCD_OK) {
    c.nomem = true;
  }
out:
  if (!rc && (c.nomem || pb.nomem)) {
    rc = IOCD_ENOMEM;
  }
  if (!rc && pb.total) {
    rc = IOCD_EPARSE;
  }
  flush_errors(&pb, errors);
  cw_file_cleanup(&f);
  cw_cleanup(&c);
  if (rc) {
    config_free(cfg);
  } else if (out) {
    *out = cfg;
  } else {
    config_free(cfg);
  }
  return rc;
}

char *config_path_join(const char *base, const char *rel) {
  const char *slash = strrchr(base, '/');
  if (rel[0] == '/' || !slash) {
    return strdup(rel);
  }
  size_t dn = (size_t)(slash - base) + 1;
  size_t rn = strlen(rel);
  char *p = malloc(dn + rn + 1);
  if (p) {
    memcpy(p, base, dn);
    memcpy(p + dn, rel, rn + 1);
  }
  return p;
}

int config_load(const char *path, struct config **out, struct buf *errors) {
  if (out) {
    *out = NULL;
  }
  struct buf text;
  buf_init(&text, CONFIG_MAX_FILE);
  struct iocd_err err;
  int rc = file_read(path, &text, &err);
  if (rc == IOCD_ENOMEM) {
    goto out;
  }
  if (rc) {
    if (errors) {
      buf_printf(errors, "%s: %s\n", path, err.msg);
    }
    rc = IOCD_EIO;
    goto out;
  }
  rc =
      config_load_text(path, text.data ? text.data : "", text.len, out, errors);
out:
  buf_cleanup(&text);
  return rc;
}

/* Collects the one message of config_parse_jsonc. */
static void first_message(void *ud, size_t order, const char *msg) {
  (void)order;
  struct buf *b = ud;
  if (b && !b->len) {
    buf_printf(b, "%s\n", msg);
  }
}

int config_parse_jsonc(const char *name, const char *text, size_t len,
                       struct cJSON **out, struct buf *errors) {
  *out = NULL;
  struct cw c;
  cw_init(&c, first_message, errors);
  struct cw_file f = {.doc = {.name = name, .order = SIZE_MAX}};
  int rc = cw_file_load(&c, &f, text, len, NULL);
  if (!rc) {
    *out = f.json;
    f.json = NULL;
  }
  cw_file_cleanup(&f);
  cw_cleanup(&c);
  return c.nomem ? IOCD_ENOMEM : rc;
}

static void free_sub(struct config_subscription *s) {
  cw_free_strings(&sub_object, s);
  cw_free_list(s->tag_keys, s->ntag_keys);
  cw_free_kv(s->tags, s->ntags);
  for (size_t i = 0; i < s->ntypes; i++) {
    free(s->types[i].measurement);
    free(s->types[i].field);
  }
  free(s->types);
  free(s->topic_place.file);
}

void config_free(struct config *cfg) {
  if (!cfg) {
    return;
  }
  for (size_t i = 0; i < cfg->nprints; i++) {
    free(cfg->prints[i].name);
  }
  free(cfg->prints);
  for (size_t i = 0; i < cfg->nsubs; i++) {
    free_sub(&cfg->subs[i]);
  }
  free(cfg->subs);
  cw_free_strings(&root_object, cfg);
  config__free_rules(cfg);
  config__free_notify(&cfg->notify);
  config__free_api(&cfg->api);
  free(cfg->path);
  free(cfg);
}

const char *config_format_name(enum payload_format f) {
  return cw_enum_name(format_names, (int)f);
}
