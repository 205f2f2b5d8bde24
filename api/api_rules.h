/*
 * The JSON documents of GET /api/v1/alerts and GET /api/v1/rules, rendered
 * from the rules engine (and the rules' configuration, for where each rule
 * is defined). The API serves them through api_set_rules; they are also
 * what a test or a tool reads.
 */
#ifndef IOCD_API_API_RULES_H
#define IOCD_API_API_RULES_H

#include "alerts/notify.h"
#include "config/config.h"
#include "core/buf.h"
#include "rules/engine.h"

/* {"alerts": [...]}: every instance that is not inactive, as engine_list
 * reports them: id (notify_event_id: what POST /api/v1/alerts/{id}/ack
 * takes), acknowledged (by, at, comment; null when not, or when n is NULL:
 * notifications off), rule, labels (the group's and the rule's), state,
 * severity, since (RFC 3339, UTC), active_since and firing_since, value
 * and threshold (null when unknown), trigger, why, annotations. Appends to
 * out; returns IOCD_OK or a buf_* error. */
int api_rules_alerts_json(const struct engine *e, struct notify *n,
                          struct buf *out);

/* {"rules": [...]}: each rule of cfg with its expressions, by, timing,
 * policies, definition hash, where it is defined, and how many of its
 * instances are pending, firing, nodata and insufficient. */
int api_rules_rules_json(const struct engine *e, const struct config *cfg,
                         struct buf *out);

#endif
