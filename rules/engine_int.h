/*
 * What engine.c and state_io.c share inside rules/: the layout of the
 * engine's rules and instances, so that saving and restoring state reads
 * and writes them directly.
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
  int64_t hkey;       /* its key in the wake heap, <= wake (see schedule) */
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

#endif
