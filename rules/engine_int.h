/*
 * What the engine's files (engine.c and engine_*.c), state_io.c and
 * words.c share inside rules/: the layout of the engine, its rules and
 * instances, so that each part and the saving and restoring of state read
 * and write them directly, and the functions one part calls in another.
 */
#ifndef IOCD_RULES_ENGINE_INT_H
#define IOCD_RULES_ENGINE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules/alert.h"
#include "rules/calendar.h"
#include "rules/engine.h"
#include "rules/expr.h"
#include "rules/series.h"

#define MAX_BY 16
#define MAX_ANNOTATIONS 64
#define EVENT_TEXT_MAX (64 * 1024)

struct rlevel {
  char *severity;
  struct expr *fire;
  struct expr *clear; /* NULL: none */
};

struct kv {
  char *key;
  char *value;
};

struct inst {
  struct rule *rule;
  struct inst *hnext; /* in the rule's table */
  uint64_t hash;
  uint64_t seq;       /* creation order, for ties in the wake heap */
  struct group group; /* keys: the rule's by; values: values[] */
  const char **values;
  uint64_t *hashes;   /* series_group_hash of each by label and value */
  char *text;         /* the strings of values[] */
  struct alert a;
  size_t heap_idx;    /* SIZE_MAX: not scheduled */
  int64_t wake;       /* when it is due: INT64_MAX, never */
  int64_t hkey;       /* key in the wake heap, <= wake (engine__schedule) */
  uint64_t mark;      /* arrival batch that last touched it */
  /* The last evaluation's number and threshold (expr_eval_sides). */
  bool has_value, has_threshold;
  double value, threshold;
  /* The last transition: why, when, what set it off. */
  char *reason;
  int64_t reason_ns;
  enum alert_trigger by;
};

struct rule {
  char *name;
  size_t index; /* position in the engine's rule array */
  bool builtin; /* the broker alert */
  struct rlevel levels[ALERT_MAX_LEVELS];
  size_t nlevels;
  struct expr *guard;
  char **by;
  size_t nby;
  struct alert_params params; /* warmup_until is set per evaluation */
  const struct calendar *cal; /* working time and [2wh] ranges */
  bool working_only;
  int64_t freshness_ns; /* 0: the hook's, else the engine's */
  struct kv *annotations;
  size_t nannotations;
  struct kv *labels;
  size_t nlabels;
  struct alert_kv *label_view; /* labels as alert_kv, for events */
  char **expected; /* nexpected * nby values */
  size_t nexpected;
  bool inhibited;
  uint64_t mark; /* the engine's arrival batch that last touched it */
  uint32_t nfams; /* (measurement, field) pairs it reads, at most 4; 0:
                     not counted yet */
  char *canonical;
  char hash[17];
  /* Instances, in creation order, and a table over their values. */
  struct inst **insts;
  size_t ninsts, cap_insts;
  struct inst **table;
  size_t table_size;
};

/* Finds rule name (not the broker alert); NULL when absent. */
struct rule *engine__rule(const struct engine *e, const char *name);

/* Number of rules (the broker alert excluded) and the i-th. */
size_t engine__nrules(const struct engine *e);
struct rule *engine__rule_at(const struct engine *e, size_t i);

/* Finds or creates the instance of r for values[0..r->nby). Returns NULL
 * when memory runs out or max_instances is reached. */
struct inst *engine__instance(struct engine *e, struct rule *r,
                              const char *const *values);

/* Sets inst's last transition reason (copied). Returns IOCD_OK or
 * IOCD_ENOMEM. */
int engine__set_reason(struct inst *in, const char *reason);

/* The engine's words (words.c), by language. */
enum engine__word {
  ENGINE__W_SAMPLE,
  ENGINE__W_TICK,
  ENGINE__W_BROKER,
  ENGINE__W_RESTORE,
  ENGINE__W_RELOAD,
  ENGINE__W_AT,
  ENGINE__W_NO_DATA,
  ENGINE__W_INSUFFICIENT, /* then the guard, then ENGINE__W_NOT_MET */
  ENGINE__W_NOT_MET,
  ENGINE__W_VS,
  ENGINE__W_CONDITION_TRUE,
  ENGINE__W_CONDITION_FALSE,
  ENGINE__W_VALUE,
  ENGINE__W_THRESHOLD,
  ENGINE__W_SEVERITY,
  ENGINE__W_BROKER_DOWN,
  ENGINE__W_BROKER_UP,
  ENGINE__W_BROKER_SUMMARY,
  ENGINE__W_RULE_GONE,
  ENGINE__W_WHY_NONE, /* then one per enum expr_why, in its order */
  ENGINE__W_WHY_NO_SERIES,
  ENGINE__W_WHY_STALE,
  ENGINE__W_WHY_EMPTY_WINDOW,
  ENGINE__W_WHY_TOO_FEW,
  ENGINE__W_WHY_NO_PARAM,
  ENGINE__W_WHY_DIV_ZERO,
  ENGINE__W_WHY_NO_CALENDAR,
  ENGINE__WORD_COUNT
};

/* A word in lang; never NULL. */
const char *engine__word(enum engine_lang lang, enum engine__word w);
/* What set off a transition, as the reason says it ("mẫu", "tick"). */
const char *engine__trigger_word(enum engine_lang lang, enum alert_trigger by);
/* Why a value is missing, as the reason says it. */
const char *engine__why_word(enum engine_lang lang, enum expr_why why);

/* Schedules inst's next evaluation at the engine's listening time or its
 * deadline, whichever comes first (after a restore). */
void engine__schedule_restored(struct engine *e, struct inst *in);

/* Runs body with x bound to every expression of rule r: each level's fire
 * and clear conditions, then the guard. */
#define FOR_EACH_EXPR(r, x, body)                     \
  do {                                                \
    for (size_t li_ = 0; li_ < (r)->nlevels; li_++) { \
      const struct expr *x = (r)->levels[li_].fire;   \
      body;                                           \
      x = (r)->levels[li_].clear;                     \
      if (x) {                                        \
        body;                                         \
      }                                               \
    }                                                 \
    if ((r)->guard) {                                 \
      const struct expr *x = (r)->guard;              \
      body;                                           \
    }                                                 \
  } while (0)

/* An entry of the read index; its layout is engine_arrival.c's. */
struct reader;

/* One instance touched by the point being added, and the sample that
 * touched it first (for the reason of a transition). */
struct touch {
  struct inst *inst;
  const struct series *series;
  const char *measurement;
  const char *field;
  int64_t ts;
};

struct engine {
  struct engine_opts opts;
  struct calendar **cals;
  size_t ncals;
  struct rule **rules;
  size_t nrules;
  struct rule *broker; /* the built-in alert */
  struct reader **index;
  size_t index_size;
  struct series_store *store;
  uint64_t known_gen; /* struct known */
  size_t known_bytes; /* held by struct known */
  /* Scheduling. */
  struct inst **heap;
  size_t nheap, cap_heap;
  uint64_t seq;
  size_t ninsts;
  size_t max_insts;
  /* Arrival batch. */
  uint64_t mark;
  struct touch *touched;
  size_t ntouched, cap_touched;
  bool reads_heartbeat; /* some rule reads _source */
  /* Listening. */
  bool broker_down;
  int64_t listen_since; /* engine start or broker back; 0: none */
  struct engine_stats st;
};

/* The trigger of an evaluation, for the reason of a transition. */
struct trigger {
  enum alert_trigger by;
  const struct touch *touch; /* BY_SAMPLE */
};

/* ---- engine_rule.c: rules and calendars from definitions ---------------- */

/* Fills re (when not NULL) with what is wrong with field where of rule idx
 * (named name), at column col of an expression (0: none), and returns rc. */
int engine__rerr(struct rule_error *re, size_t idx, const char *name,
                 const char *where, int col, int rc, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* The calendar named name among cals[0..n); NULL when absent. */
const struct calendar *engine__find_cal(const struct calendar *const *cals,
                                        size_t n, const char *name);
/* The calendar of reasons when a rule has none: office_hours, else the
 * first; NULL when the engine has none. */
const struct calendar *engine__default_cal(const struct engine *e);

/* Builds the calendars of defs[0..n) (one default calendar when n is 0)
 * into a new array *out of *nout, owned by the caller (engine__cals_free).
 * Returns IOCD_OK, IOCD_EINVAL (re says why) or IOCD_ENOMEM. */
int engine__cals_build(const struct calendar_def *defs, size_t n,
                       struct calendar ***out, size_t *nout,
                       struct rule_error *re);
void engine__cals_free(struct calendar **c, size_t n);

/* Builds every rule of defs[0..n) against cals into a new array *out of n,
 * owned by the caller (engine__rules_free). Returns IOCD_OK, or the error
 * of the first rule that is wrong (re says which and why). */
int engine__rules_build(const struct rule_def *defs, size_t n,
                        const struct calendar *const *cals, size_t ncals,
                        struct rule ***out, struct rule_error *re);
void engine__rules_free(struct rule **v, size_t n);
/* Frees r, its instances included; NULL is a no-op. */
void engine__rule_free(struct rule *r);

/* Copies in[0..n) into a new array *out (NULL when n is 0). On
 * IOCD_ENOMEM *out may hold a partial copy: free it with engine__kv_free
 * with n. */
int engine__copy_kvs(const struct alert_kv *in, size_t n, struct kv **out);
void engine__kv_free(struct kv *v, size_t n);

/* ---- engine_inst.c: instances ------------------------------------------- */

/* Frees in (not attached to a rule any more); NULL is a no-op. */
void engine__inst_free(struct inst *in);
/* Gives in (made for r's by labels) to r's table and array. Returns IOCD_OK
 * or IOCD_ENOMEM (in is then not attached). */
int engine__inst_attach(struct rule *r, struct inst *in);
/* Creates the instances of r's expected groups that do not exist yet, due
 * at the engine's listening time. Returns IOCD_OK or IOCD_ENOMEM. */
int engine__make_expected(struct engine *e, struct rule *r);

/* ---- engine_arrival.c: the read index ----------------------------------- */

/* Rebuilds the index of the rules' reads and registers every read with the
 * store. Returns IOCD_OK or IOCD_ENOMEM. */
int engine__index_build(struct engine *e);
void engine__index_free(struct engine *e);
/* The store's user_free for what the engine keeps with a point's labels. */
void engine__known_free(void *p);

/* ---- engine_sched.c: the wake heap -------------------------------------- */

/* Schedules in at wake (INT64_MAX: not at all). */
void engine__schedule(struct engine *e, struct inst *in, int64_t wake);
/* Takes in out of the heap, if it is in it. */
void engine__heap_remove(struct engine *e, struct inst *in);
/* Moves the i-th entry of the heap down to its place. */
void engine__heap_down(struct engine *e, size_t i);

/* ---- engine_broker.c: the broker alert ---------------------------------- */

/* Makes the broker alert and its one instance (e->broker). Returns IOCD_OK
 * or IOCD_ENOMEM. */
int engine__make_broker(struct engine *e);

/* ---- engine_eval.c: evaluation ------------------------------------------ */

/* Evaluates in at now, set off by trg, delivers the transition, if any, and
 * schedules its next evaluation. */
void engine__evaluate(struct engine *e, struct inst *in, int64_t now,
                      const struct trigger *trg);
/* ISO 8601 local time of t in calendar c (or UTC), to the second, with the
 * offset, into out. */
void engine__fmt_time(const struct calendar *c, int64_t t, char out[40]);

/* ---- engine_event.c: events and templates ------------------------------- */

/* Checks a template: every {{ closes, names are words, filters known.
 * Returns IOCD_OK or IOCD_EPARSE (err says where). */
int engine__check_template(const char *t, struct iocd_err *err);
/* The severity of level of r ("critical" for the broker alert). */
const char *engine__severity_of(const struct rule *r, int level);
/* Fills ev with in's current state; ev borrows from in and its rule. */
void engine__fill_event(const struct engine *e, const struct inst *in,
                        struct alert_event *ev);
/* Renders r's annotations for ev and hands ev to the on_event hook. */
void engine__deliver(struct engine *e, const struct inst *in,
                     struct alert_event *ev);

#endif
