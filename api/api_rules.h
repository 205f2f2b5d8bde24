/*
 * The JSON documents of GET /api/v1/alerts and GET /api/v1/rules, rendered
 * from the rules engine (and the rules' configuration, for where each rule
 * is defined). The service's handler answers both paths through
 * api_rules_handle; the documents are also what a test or a tool reads.
 */
#ifndef IOCD_API_API_RULES_H
#define IOCD_API_API_RULES_H

#include "alerts/notify.h"
#include "api/api.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"
#include "rules/engine.h"

/* The filters of GET /api/v1/alerts, combined with AND; each zero or NULL
 * lets every alert through. */
struct api_alerts_filter {
  unsigned states;          /* bits 1u << enum alert_state */
  unsigned severities;      /* bits 1u << enum config_severity */
  const char *district;     /* the value of the district label */
  const char *district_tag; /* that label's name; NULL: "district" */
  const char *rule;         /* a rule's name */
};

/* Reads the query parameters state, severity, district and rule (each NULL
 * when absent; borrowed, and f points into them) into f. state and
 * severity are one value or several separated by commas (any of them);
 * rule must name a rule of cfg (or the broker alert); the district label
 * is cfg's sources.district_tag. Returns IOCD_OK, or IOCD_EINVAL with err
 * naming the parameter, the value and the values allowed. */
int api_alerts_filter_parse(const char *state, const char *severity,
                            const char *district, const char *rule,
                            const struct config *cfg,
                            struct api_alerts_filter *f, struct iocd_err *err);

/* {"alerts": [...]}: every instance that is not inactive, as engine_list
 * reports them: id (notify_event_id: what POST /api/v1/alerts/{id}/ack
 * takes), acknowledged (by, at, comment; null when not, or when n is NULL:
 * notifications off), rule, labels (the group's and the rule's), state,
 * severity, since (RFC 3339, UTC), active_since and firing_since, value
 * and threshold (null when unknown), trigger, why, annotations. Appends to
 * out; returns IOCD_OK or a buf_* error. */
int api_rules_alerts_json(const struct engine *e, struct notify *n,
                          struct buf *out);

/* The same, only the alerts that pass f (NULL: all). */
int api_rules_alerts_json_filtered(const struct engine *e, struct notify *n,
                                   const struct api_alerts_filter *f,
                                   struct buf *out);

/* {"rules": [...]}: each rule of cfg with its expressions, by, timing,
 * policies, definition hash, where it is defined, how many of its
 * instances are pending, firing, nodata and insufficient, and its groups
 * (every instance, inactive ones too): labels, state, severity, since,
 * value and threshold of the last evaluation and when it was. */
int api_rules_rules_json(const struct engine *e, const struct config *cfg,
                         struct buf *out);

/* Answers GET (and HEAD) /api/v1/alerts, with the filters above read from
 * the query (400 naming the parameter when one is wrong), and
 * /api/v1/rules (?rule=NAME: that rule only, 404 when there is none);
 * another method is 405. n may be NULL (notifications off). Returns as
 * api_handle_fn: IOCD_ENOTFOUND for any other path. */
int api_rules_handle(const struct engine *e, struct notify *n,
                     const struct config *cfg, const struct api_request *req,
                     struct api_reply *rep, struct buf *out);

#endif
