/*
 * iocd's configuration: one JSON-with-comments file, loaded and validated as a
 * whole into a read-only struct config. Every module receives a const pointer
 * to the part it needs. Reload builds a fresh struct config and swaps it in
 * only when it validates.
 *
 * The file format, every key, its type, bounds and default are described in
 * docs/configuration.md and in config/iocd.example.jsonc.
 */
#ifndef IOCD_CONFIG_CONFIG_H
#define IOCD_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/point.h"

enum mqtt_protocol { MQTT_PROTO_V5 = 5, MQTT_PROTO_V311 = 4 };

struct config_tls {
  bool enabled;
  char *ca_file;   /* NULL: the system's CA store (ca_path) */
  char *ca_path;
  char *cert_file; /* client certificate, with key_file */
  char *key_file;
  bool verify_hostname; /* default true */
};

struct config_mqtt {
  char *host;      /* default "127.0.0.1" */
  int port;        /* default 1883 (8883 with TLS) */
  char *client_id; /* default "iocd-<hostname>" */
  enum mqtt_protocol protocol; /* "5" (default) or "3.1.1" */
  char *username;
  char *password;
  int keepalive_s;        /* default 30, 5..3600 */
  bool clean_start;       /* default false: persistent session */
  uint32_t session_expiry_s; /* MQTT 5; default 86400 */
  int reconnect_min_ms;   /* default 500 */
  int reconnect_max_ms;   /* default 30000 */
  int idle_timeout_s;     /* connected but silent this long: logged and
                             counted; 0 disables; default 300 */
  struct config_tls tls;
};

enum payload_format {
  FORMAT_JSON = 0,
  FORMAT_VALUE,
  FORMAT_LINE,
  FORMAT_SENML,
  FORMAT_AUTO, /* from the MQTT 5 content-type, else `fallback` */
};

enum time_unit {
  TIME_S = 0,
  TIME_MS,
  TIME_US,
  TIME_NS,
  TIME_RFC3339, /* only RFC 3339 strings accepted */
  TIME_AUTO,    /* RFC 3339 strings, numbers in `unit_numbers` */
};

struct config_kv {
  char *key;
  char *value;
};

struct config_field_type {
  char *measurement; /* NULL: any measurement of the subscription */
  char *field;
  enum field_type type;
};

/* Where a value was written (1-based line and column in characters), for
 * messages that are found after loading: a duplicate rule, a bad topic
 * pattern. */
struct config_place {
  char *file;
  int line, col;
};

/* A subscription's district identity check (docs/security.md): the MQTT 5
 * user property named user_property must equal the topic's {district}
 * level. A claim the publisher makes, checked against the topic; only the
 * broker's ACL is an authority. */
struct config_identity {
  char *user_property; /* NULL: no check */
};

struct config_subscription {
  char *name;    /* unique; labels the counters; default: the topic */
  char *topic;   /* pattern: literal levels, {name} captures, + and # */
  int qos;       /* 0, 1, 2; default 1 */
  enum payload_format format;
  enum payload_format fallback; /* for FORMAT_AUTO without content-type */
  char *measurement;            /* fixed measurement, unless the pattern has
                                   {measurement} or the payload names it */
  char *field;                  /* `value` format: field name when the
                                   pattern has no {field}; default "value" */
  char *time_key;               /* json: the timestamp member; default "time" */
  enum time_unit time_unit;     /* default TIME_AUTO */
  enum time_unit time_unit_numbers; /* for TIME_AUTO numbers; default TIME_S */
  char *measurement_key;        /* json: member naming the measurement; NULL */
  char **tag_keys;              /* json: string members taken as tags */
  size_t ntag_keys;
  struct config_kv *tags;       /* static tags added to every point */
  size_t ntags;
  struct config_field_type *types; /* declared field types */
  size_t ntypes;
  bool allow_strings;           /* json: string members become string fields;
                                   default false (rejected as wrong type) */
  char *dead_letter;            /* topic to republish rejects to; NULL */
  struct config_identity identity; /* "identity": who may publish here */
  struct config_place topic_place; /* where "topic" is written (its quote) */
  uint64_t fingerprint; /* of the item as written, for config_diff */
};

struct config_limits {
  size_t max_payload_bytes;  /* default 65536 */
  size_t max_series;         /* cardinality limit; default 100000 */
  int max_json_depth;        /* default 8 */
  size_t max_fields;         /* per point; default 256 */
  int64_t max_future_s;      /* default 600 */
  int64_t max_past_s;        /* default 31622400 (366 days) */
  int log_burst;             /* rejected-message log lines per window; 10 */
  int log_window_s;          /* default 10 */
  /* Feed quality per district (docs/ingest.md): a point older than
   * late_after at arrival makes its message late, one further ahead than
   * future_after makes it future. Accepted either way; max_past and
   * max_future are what reject. An accepted message of a district and
   * system arriving more than silent_after after the previous one ends a
   * silent period. 0: the default. */
  int64_t late_after_s;      /* default 300 */
  int64_t future_after_s;    /* default 60 */
  int64_t silent_after_s;    /* default 600 */
};

enum influx_api { INFLUX_V1 = 1, INFLUX_V2 = 2 };

struct config_influx {
  bool enabled;
  char *url;          /* default "http://127.0.0.1:8086" */
  enum influx_api api;/* 1 (default) or 2 */
  /* 1.x */
  char *database;     /* required for 1.x */
  char *retention_policy;
  char *username;
  char *password;
  bool create_database; /* 1.x: CREATE DATABASE at start; default true */
  /* 2.x */
  char *org;
  char *bucket;
  char *token;
  /* both */
  bool gzip;             /* default true */
  int timeout_ms;        /* per request; default 10000 */
  int batch_points;      /* default 5000 */
  size_t batch_bytes;    /* default 1 MiB */
  int flush_interval_ms; /* default 1000 */
  int retry_min_ms;      /* default 500 */
  int retry_max_ms;      /* default 60000 */
  int max_in_flight;     /* concurrent requests; default 2 */
  size_t buffer_bytes;   /* in-memory queue limit; default 64 MiB */
  char *ca_file;         /* https */
  bool tls_verify;       /* default true */
  /* While writes fail: GET {url}/ping this often, and write at once when
   * it answers again; default 2000, 0 disables. */
  int probe_interval_ms;
};

struct config_file_output {
  bool enabled;
  char *path; /* "-" for stdout */
};

/* The API's roles, ordered: each may do what the ones below it may. */
enum config_api_role {
  CONFIG_ROLE_NONE = 0, /* "none": may do nothing but /health and /ready */
  CONFIG_ROLE_VIEWER,   /* every GET and HEAD */
  CONFIG_ROLE_OPERATOR, /* + acknowledgements and silences */
  CONFIG_ROLE_ADMIN,    /* + POST /api/v1/reload, and everything else */
};

/* A bearer token of "api.tokens" (config/api_config.c). */
struct config_api_token {
  char *name;       /* unique; the principal handlers and the audit see */
  enum config_api_role role; /* viewer, operator or admin */
  char *token;      /* the secret: "token" (with ${NAME}) or read from
                       token_file at load; at least 16 bytes */
  char *token_file; /* resolved against the main file's directory; NULL */
};

/* "api.tls": HTTPS with this certificate and key (PEM). The files are read
 * at load while the API is enabled. */
struct config_api_tls {
  char *cert_file; /* NULL: plain HTTP */
  char *key_file;  /* required with cert_file */
  char *cert_pem;  /* cert_file's content */
  char *key_pem;   /* key_file's content (a secret) */
};

/* The API's share of iocd's loop by default, in percent. */
#define CONFIG_API_LOOP_SHARE_DEFAULT 25

struct config_api {
  bool enabled;  /* default true */
  char *listen;  /* "HOST:PORT"; default "127.0.0.1:8080" */
  struct config_api_token *tokens; /* "tokens"; none by default */
  size_t ntokens;
  /* The role of a request without Authorization: "anonymous", or by
   * default admin without tokens and none with them. */
  enum config_api_role anonymous;
  bool anonymous_set; /* "anonymous" was written */
  struct config_api_tls tls;
  /* "loop_share_percent": the share of iocd's loop the API may take from
   * ingest, 5 to 100 (default 25; 100: no limit); api/gate.c. */
  int loop_share_pct;
};

enum journal_fsync {
  JOURNAL_FSYNC_INTERVAL = 0, /* fdatasync every fsync_interval (default) */
  JOURNAL_FSYNC_NEVER,        /* leave it to the kernel */
  JOURNAL_FSYNC_ALWAYS,       /* fdatasync after every loop iteration's write */
};

enum journal_when_full {
  JOURNAL_FULL_PAUSE = 0,   /* stop reading from the broker (default) */
  JOURNAL_FULL_DROP_OLDEST, /* delete the oldest segments, counted */
};

/* The on-disk write-ahead journal under data_dir/journal (docs/durability.md).
 * The loader turns it on by default; a zeroed struct (enabled false) means
 * the in-memory queue, and zero numbers mean the documented defaults. */
struct config_journal {
  bool enabled;          /* default true */
  size_t segment_bytes;  /* a segment file is closed past this; 16 MiB */
  size_t max_bytes;      /* all segments together; default 1 GiB */
  size_t memory_bytes;   /* recent records also kept in memory; 64 MiB */
  enum journal_fsync fsync;
  int fsync_interval_ms; /* default 1000 */
  enum journal_when_full when_full;
  int64_t replay_rate;   /* backlog points per second; 0: unlimited */
};

/* "self_metrics": iocd's own counters and gauges written as points through
 * the store, every interval (docs/store.md, "Self-metrics"). On as soon as
 * the section is present, unless it says "enabled": false. */
struct config_self_metrics {
  bool enabled;      /* default false (section absent) */
  int interval_ms;   /* default 10000 */
  char *measurement; /* default "iocd_internal" */
  char *host;        /* the "host" tag; NULL: the machine's host name */
};

/* The working calendar shared by rules and notifications
 * (docs/rules-guide.md). Dates are days since 1970-01-01 in local time. */
struct config_day_range {
  int32_t first, last; /* inclusive */
};

struct config_minutes {
  int start, end; /* minutes after local midnight, [start, end) */
};

struct config_calendar {
  char *timezone;       /* as written; default "Asia/Ho_Chi_Minh" */
  int32_t utc_offset_s; /* resolved from timezone: 25200 for +07:00 */
  struct config_minutes *office_hours; /* ascending, disjoint; default
                                          07:30-11:30 and 13:30-17:00 */
  size_t noffice_hours;
  unsigned weekdays; /* bit d: day d (0 = Sunday, as tm_wday) is a working
                        weekday; default Monday to Friday (0x3E) */
  struct config_day_range *holidays; /* days off, lunar ones included */
  size_t nholidays;
  struct config_day_range *workdays; /* make-up working days */
  size_t nworkdays;
};

/* The sources a silent-feed rule expects to hear from. */
struct config_sources {
  char **districts;
  size_t ndistricts;
  char **systems;
  size_t nsystems;
  char *district_tag; /* the tag carrying the district; default "district" */
  char *system_tag;   /* the tag carrying the system; default "system" */
};


struct config_param_value {
  char *group; /* the value of the `by` label */
  double value;
};

/* A per-group parameter ($online_target): a default and overrides for some
 * values of one label. */
struct config_param {
  char *name;
  bool has_default;
  double def;
  char *by; /* the label the overrides are keyed by; default
               sources.district_tag */
  struct config_param_value *values;
  size_t nvalues;
  struct config_place place;
  uint64_t fingerprint; /* of the parameter as written, for config_diff */
};

enum config_missing {
  CONFIG_MISSING_NODATA = 0, /* the alert enters its no-data state */
  CONFIG_MISSING_KEEP,       /* the state stays as it is */
  CONFIG_MISSING_OK,         /* treated as the condition being false */
};

enum config_severity {
  CONFIG_SEV_INFO = 0,
  CONFIG_SEV_WARNING,
  CONFIG_SEV_CRITICAL,
};

/* One severity of a rule with levels: its own condition (and clear). */
struct config_rule_level {
  enum config_severity severity;
  char *expr;
  char *clear; /* NULL: not expr */
};

/* A rule as written; expressions are text, parsed and checked at load. */
struct config_rule {
  char *name;
  char *expr;  /* NULL when the rule has levels */
  char *clear; /* hysteresis: the condition to leave firing; NULL: not expr */
  char *guard; /* minimum denominator; NULL: none */
  char **by;   /* the labels of one instance (group) */
  size_t nby;
  enum config_severity severity;    /* default warning */
  struct config_rule_level *levels; /* ascending severity; NULL: expr */
  size_t nlevels;
  int64_t for_ms;             /* default 0: fire at once */
  int64_t for_tolerance_ms;   /* default 0 */
  int64_t keep_firing_for_ms; /* default 0 */
  int64_t freshness_ms;       /* 0: rule_engine.freshness */
  enum config_missing missing;
  bool working_time; /* evaluated in the calendar's working time only */
  struct config_kv *annotations; /* templates, in file order */
  size_t nannotations;
  struct config_kv *labels; /* added to every alert of the rule */
  size_t nlabels;
  bool expected;        /* an instance for every configured source, even one
                           that never published */
  int broker_dependent; /* held back while the broker is unreachable:
                           1 yes, 0 no, -1 (default) when it reads age()
                           or absent() */
  struct config_place place;
  uint64_t fingerprint; /* of the rule as written, for config_diff */
};

/* The "rule_engine" section and every rule and parameter, merged from the
 * main file and its rule_files. */
struct config_rules {
  struct config_rule *v;
  size_t n;
  struct config_param *params;
  size_t nparams;
  char **files; /* rule_files as written */
  size_t nfiles;
  int64_t evaluation_interval_ms; /* the tick; default 15s */
  int64_t save_interval_ms;       /* state file write debounce; default 10s */
  int64_t freshness_ms;           /* default freshness; default 10m */
};

/* The language of iocd's own texts for people (why an alert changed, the
 * built-in alerts); rules' annotations are written by their authors. */
enum config_language {
  CONFIG_LANG_VI = 0, /* "vi", the default */
  CONFIG_LANG_EN,     /* "en" */
};

/* Alert notifications (docs/alerts.md): receivers, the route tree, time
 * intervals on the working calendar, inhibition, silences from config, the
 * outbox, templates. Durations are milliseconds; 0 means the documented
 * default unless said otherwise. */

/* One label matcher: NAME=VALUE, NAME!=VALUE, NAME=~REGEX, NAME!~REGEX
 * (POSIX extended regex, anchored). Written as a string "district=~Krông.*"
 * or as an object {"district": "Krông Búk"} (equality). */
enum config_match_op {
  CONFIG_MATCH_EQ = 0,
  CONFIG_MATCH_NE,
  CONFIG_MATCH_RE,
  CONFIG_MATCH_NRE,
};

struct config_matcher {
  char *name;
  enum config_match_op op;
  char *value;
};

enum config_receiver_type {
  CONFIG_RECV_WEBHOOK = 0, /* Alertmanager's webhook JSON, version 4 */
  CONFIG_RECV_ALERTMANAGER, /* POST <url>/api/v2/alerts */
  CONFIG_RECV_EMAIL,        /* SMTP through libcurl */
  CONFIG_RECV_MQTT,         /* iocd's own broker connection */
  CONFIG_RECV_TELEGRAM,     /* POST <base_url>/bot<token>/sendMessage */
  CONFIG_RECV_ZALO,         /* POST <base_url>/v3.0/oa/message/<zalo_api> */
};

enum config_smtp_tls {
  CONFIG_SMTP_TLS_AUTO = 0, /* smtps:// implicit TLS; smtp:// STARTTLS if
                               offered */
  CONFIG_SMTP_TLS_STARTTLS, /* smtp:// with STARTTLS required */
  CONFIG_SMTP_TLS_NONE,     /* plain (a relay on localhost) */
};

struct config_receiver {
  char *name; /* unique; routes name it */
  enum config_receiver_type type;
  bool send_resolved;   /* default true */
  int timeout_ms;       /* per attempt; default 10000 */
  int max_attempts;     /* before dead letter; default 10 */
  int retry_min_ms;     /* backoff, with jitter; default 1000 */
  int retry_max_ms;     /* default 300000 */
  int rate_per_hour;    /* past this many messages in an hour one digest
                           replaces the rest; 0: default 30; -1: no limit */
  enum config_language language; /* default: the top-level language */
  /* webhook, alertmanager: the endpoint (alertmanager: its base URL) */
  char *url;
  struct config_kv *headers; /* webhook: extra request headers */
  size_t nheaders;
  /* telegram, zalo: base URL (default https://api.telegram.org,
   * https://openapi.zalo.me); the token (bot token, OA access token) from
   * token or token_file (re-read at each send for Zalo's refreshed tokens) */
  char *base_url;
  char *token;
  char *token_file;
  char *chat_id;     /* telegram */
  char **user_ids;   /* zalo recipients */
  size_t nuser_ids;
  char *zalo_api;    /* "transaction" (default) or "cs" */
  /* email */
  char *smtp_url;    /* smtp://host:587 or smtps://host:465 */
  enum config_smtp_tls smtp_tls;
  char *username;
  char *password;
  char *password_file;
  char *from;
  char **to;
  size_t nto;
  bool html;         /* a text/html part beside text/plain; default true */
  char *ca_file;
  bool tls_verify;   /* default true */
  /* mqtt */
  char *topic_prefix; /* default "ioc/alerts" */
  int qos;            /* default 1 */
  bool retain;        /* retained current state; default true */
  struct config_place place;
};

/* Escalation: past `after` without acknowledgement, notify `receiver`. */
struct config_escalation {
  int64_t after_ms;
  char *receiver;
};

struct config_route {
  char *receiver;  /* NULL: the parent's */
  struct config_matcher *matchers; /* all must match; none: everything */
  size_t nmatchers;
  bool cont;       /* "continue": go on to the next sibling after a match */
  char **group_by; /* NULL (ngroup_by 0, group_by_set false): the parent's;
                      ["..."]: every label */
  size_t ngroup_by;
  bool group_by_set;
  int64_t group_wait_ms;      /* -1: the parent's; root default 30s */
  int64_t group_interval_ms;  /* -1: the parent's; root default 5m */
  int64_t repeat_interval_ms; /* -1: the parent's; root default 4h */
  char **mute_time_intervals; /* names; NULL: the parent's */
  size_t nmute;
  bool mute_set;
  char **active_time_intervals;
  size_t nactive;
  bool active_set;
  int critical_any_time; /* -1: the parent's; root default 1: critical
                            alerts pass mute intervals */
  struct config_escalation *escalation; /* ascending after; NULL: parent's */
  size_t nescalation;
  bool escalation_set;
  struct config_route *routes; /* children, in order */
  size_t nroutes;
  struct config_place place;
};

enum config_days {
  CONFIG_DAYS_ALL = 0,
  CONFIG_DAYS_WORKING,     /* working days of the calendar */
  CONFIG_DAYS_NON_WORKING, /* weekends, holidays (make-up days excluded) */
};

/* A named time interval on the working calendar. Built-in names that need
 * no entry: "working_time", "outside_working_time", "non_working_days". */
struct config_time_interval {
  char *name;
  enum config_days days;
  struct config_minutes *times; /* [start, end) local; end < start wraps
                                   past midnight; none: the whole day */
  size_t ntimes;
  struct config_place place;
};

struct config_inhibit {
  struct config_matcher *source;
  size_t nsource;
  struct config_matcher *target;
  size_t ntarget;
  char **equal; /* labels that must be equal in source and target */
  size_t nequal;
  struct config_place place;
};

struct config_silence {
  struct config_matcher *matchers;
  size_t nmatchers;
  int64_t starts_ms; /* Unix ms; 0: now */
  int64_t ends_ms;   /* Unix ms */
  char *created_by;
  char *comment;
  struct config_place place;
};

/* Templates overriding the defaults (docs/alerts.md: the fields). */
struct config_notify_templates {
  char *subject; /* email subject, Telegram/Zalo first line */
  char *text;    /* one alert, plain text */
  char *html;    /* one alert, HTML (email) */
  struct config_place subject_place, text_place, html_place;
};

struct config_notify {
  bool enabled;       /* default true when there are receivers */
  char *grafana_url;  /* links: <grafana_url>/d/iocd-district?var-district= */
  struct config_receiver *receivers;
  size_t nreceivers;
  struct config_route route; /* the root; its receiver is required */
  bool has_route;
  struct config_time_interval *intervals;
  size_t nintervals;
  struct config_inhibit *inhibit;
  size_t ninhibit;
  struct config_silence *silences;
  size_t nsilences;
  struct config_notify_templates templates;
  int flap_transitions;   /* firing/resolved changes within flap_window
                             that make an alert flapping; default 4 */
  int64_t flap_window_ms; /* default 1h */
  char *digest_receiver;  /* the leaders' digest; NULL: none */
  struct config_minutes *digest_at; /* local times of day, e.g. 07:30 */
  size_t ndigest_at;
  char *history_database;         /* `alerts` points' own database; NULL:
                                     influxdb.database */
  char *history_retention_policy; /* NULL: the database's default */
};

/* A top-level section of the main file ("mqtt", "influxdb", ...) and the
 * fingerprint of its text, for config_diff. */
struct config_section_print {
  char *name;
  uint64_t fingerprint;
};

struct config {
  char *path;      /* the file this was loaded from */
  char *data_dir;  /* default "./var/iocd" */
  enum config_language language; /* default CONFIG_LANG_VI */
  enum log_level log_level;
  enum log_format log_format;
  int stats_interval_s;    /* periodic counter log; 0 disables; default 60 */
  int shutdown_timeout_ms; /* flush bound at exit; default 10000 */
  struct config_mqtt mqtt;
  struct config_subscription *subs;
  size_t nsubs;
  struct config_limits limits;
  struct config_influx influx;
  struct config_file_output file;
  struct config_api api; /* "api" */
  struct config_journal journal;
  struct config_self_metrics self_metrics; /* "self_metrics" */
  struct config_calendar calendar; /* "calendar" */
  struct config_sources sources;   /* "sources" */
  struct config_rules rules;       /* "rule_engine", "params", "rules",
                                      "rule_files" */
  struct config_notify notify;     /* "notifications" */
  struct config_section_print *prints; /* every other top-level key */
  size_t nprints;
};

/* Loads and validates path. On success returns IOCD_OK and *out (owned by the
 * caller, freed with config_free). On failure returns IOCD_EPARSE, IOCD_EIO or
 * IOCD_ENOMEM, *out is NULL, and errors (when not NULL) receives every problem
 * found, one per line, each as "FILE:LINE:COL: PATH: what was expected", for
 * example "iocd.jsonc:17:9: subscriptions[2].qos: expected 0, 1 or 2, got 3".
 * ${NAME} in string values is replaced by the environment variable NAME; an
 * unset variable is an error. */
int config_load(const char *path, struct config **out, struct buf *errors);

/* Same as config_load, from text in memory; name is used in messages. */
int config_load_text(const char *name, const char *text, size_t len,
                     struct config **out, struct buf *errors);

void config_free(struct config *cfg);

/* Parses a duration as the configuration writes them: an unsigned integer
 * followed by ms, s, m, h or d ("90m"). Returns IOCD_OK with *ms,
 * IOCD_EPARSE or IOCD_ERANGE. For the API's durations. */
int config_parse_duration(const char *s, int64_t *ms);

/* What changed from old to new, for the log line of a reload: appends to
 * out a summary such as "subscriptions added: senml2; rules changed:
 * online_share_low, feed_silent; sections changed: influxdb", or "nothing
 * changed". Items are matched by name and compared by the fingerprint of
 * their text, so an edit of any key (or of its comment-free spelling)
 * counts. Returns IOCD_OK or a buf_* error. */
int config_diff(const struct config *old, const struct config *new_cfg,
                struct buf *out);

/* Helpers for the enums, for logs and messages. */
const char *config_format_name(enum payload_format f);
/* Parses a JSON-with-comments document with the config file's syntax (for
 * other files iocd reads, such as rule test files). Returns IOCD_OK with
 * *out (a cJSON tree; free with cJSON_Delete), or IOCD_EPARSE with one line
 * "NAME:LINE:COL: syntax error near '...'" (or another problem of the text)
 * appended to errors, or IOCD_ENOMEM. */
struct cJSON;
int config_parse_jsonc(const char *name, const char *text, size_t len,
                       struct cJSON **out, struct buf *errors);


/* A file named by rel in a file found at base: rel joined to base's
 * directory, or rel as it is when absolute or when base has no directory.
 * Returns a malloc'd string (the caller frees it), or NULL on ENOMEM. */
char *config_path_join(const char *base, const char *rel);

/* "none", "viewer", "operator", "admin" (a static string). */
const char *config_api_role_name(enum config_api_role r);

/* The name of a receiver type as the config writes it ("webhook",
 * "telegram", ...). */
const char *config_receiver_type_name(enum config_receiver_type t);

/* "info", "warning", "critical"; "keep", "ok", "nodata". */
const char *config_severity_name(enum config_severity s);
const char *config_missing_name(enum config_missing m);

/* What a key of the file holds, for config_schema_each. */
enum config_schema_kind {
  CONFIG_SCHEMA_VALUE,  /* a value, or an array of values */
  CONFIG_SCHEMA_OBJECT, /* an object: its keys follow as PATH.key */
  CONFIG_SCHEMA_LIST,   /* an array of objects: their keys follow as
                           PATH[].key */
  CONFIG_SCHEMA_MAP     /* an object of names the user chooses; when its
                           values may be objects, their keys follow as
                           PATH.*.key */
};

/* path is borrowed for the call. */
typedef void config_schema_fn(void *ud, const char *path,
                              enum config_schema_kind kind);

/* Calls fn for every key the file accepts, parents before their keys, in
 * the order of the loader's tables: "mqtt", "mqtt.tls", "mqtt.tls.ca_file",
 * "subscriptions", "subscriptions[].topic", "params", "params.*.default",
 * "rules[].levels[].expr", ... The keys come from the tables the loader
 * checks every file against, so a key it accepts is listed here too. */
void config_schema_each(config_schema_fn *fn, void *ud);

#endif
