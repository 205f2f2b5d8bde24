/*
 * From the configuration to the rules engine: the calendar definition, the
 * rule definitions (with the expected groups of silent-feed rules, the
 * product of the configured districts and systems), and the parameter hook
 * that answers $online_target for a group. Shared by the service,
 * `iocd rules test` and the benchmark, so all three run the same rules.
 */
#ifndef IOCD_ALERTS_RULES_SETUP_H
#define IOCD_ALERTS_RULES_SETUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/err.h"
#include "rules/engine.h"

/* The engine's view of a configuration. Every pointer inside refers to the
 * config given to rules_setup_init or to arrays owned here; the config must
 * outlive the setup. */
struct rules_setup {
  struct calendar_def cal;
  struct cal_span *spans;
  struct cal_dates *holidays, *workdays;
  struct rule_def *defs;
  size_t ndefs;
  struct rule_level *levels;
  struct alert_kv *kvs;
  const char **expected;
  const struct config *cfg;
};

/* Builds the definitions for cfg. Returns IOCD_OK, or IOCD_ENOMEM / an
 * error with err. Free with rules_setup_cleanup. */
int rules_setup_init(struct rules_setup *s, const struct config *cfg,
                     struct iocd_err *err);
void rules_setup_cleanup(struct rules_setup *s);

/* The parameter hook of the engine (expr_param_fn): ud is a
 * `const struct config *const *` that the caller keeps pointing at the
 * live configuration, so a reload changes the parameters in place. Answers
 * the group's override, else the default; false when neither exists. */
bool rules_setup_param(void *ud, const char *name, const struct group *g,
                       double *out);

/* Fills opts for an engine over s: the calendar, the parameter hook with
 * hook_ud (see rules_setup_param), the default freshness and the events'
 * callback. */
void rules_setup_opts(const struct rules_setup *s, struct engine_opts *opts,
                      void *hook_ud, engine_event_fn *on_event, void *event_ud,
                      int64_t start_ns);

/* Creates the engine for s. On failure returns the error with err saying
 * where, as "FILE:LINE:COL: rules NAME: what" (the rule's place in the
 * configuration). */
int rules_setup_engine(const struct rules_setup *s,
                       const struct engine_opts *opts, struct engine **out,
                       struct iocd_err *err);

/* Applies s to a running engine (a reload). Errors as rules_setup_engine;
 * the engine is unchanged then. */
int rules_setup_reconfigure(const struct rules_setup *s, struct engine *e,
                            int64_t now, struct iocd_err *err);

#endif
