/*
 * Gauges of active alerts, recounted from the engine's list of active
 * instances after every batch of transitions. The stats registry cannot
 * forget a series, so a label set that no instance has any more stays at
 * 0; the number of label sets is capped.
 */
#include "alerts/alert_metrics.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

#define HELP                                                               \
  "Active alert instances by rule, state and severity (and district when " \
  "the rule groups by it)."

struct alert_metrics {
  struct stats *stats;
  const char *district_tag;
  size_t max_series;
  struct metric **tracked; /* every series created, to reset */
  size_t n, cap;
  uint64_t events_seen;
  bool counted; /* at least once */
  bool nomem;
};

struct alert_metrics *alert_metrics_new(struct stats *stats,
                                        const char *district_tag,
                                        size_t max_series) {
  struct alert_metrics *m = calloc(1, sizeof *m);
  if (m) {
    m->stats = stats;
    m->district_tag = district_tag;
    m->max_series = max_series ? max_series : 1;
  }
  return m;
}

void alert_metrics_set_district_tag(struct alert_metrics *m,
                                    const char *district_tag) {
  m->district_tag = district_tag;
  m->counted = false;
}

void alert_metrics_free(struct alert_metrics *m) {
  if (m) {
    free(m->tracked);
    free(m);
  }
}

static bool track(struct alert_metrics *m, struct metric *g) {
  if (mem_grow((void **)&m->tracked, &m->cap, m->n, sizeof *m->tracked)) {
    return false;
  }
  m->tracked[m->n++] = g;
  return true;
}

/* One active instance. A tracked series was set to -1 before the count,
 * so a series read at 0 here is new. */
static void count(void *ud, const struct alert_event *ev) {
  struct alert_metrics *m = ud;
  const char *district = NULL;
  for (size_t i = 0; ev->group && m->district_tag && i < ev->group->n; i++) {
    if (strcmp(ev->group->keys[i], m->district_tag) == 0) {
      district = ev->group->values[i];
    }
  }
  if (district && m->n >= m->max_series) {
    district = "(other)";
  }
  const char *state = alert_state_name(ev->state);
  const char *sev = ev->severity ? ev->severity : "";
  struct metric *g =
      district ? stats_gauge(m->stats, "iocd_alerts_active", HELP, "rule",
                             ev->rule, "state", state, "severity", sev,
                             "district", district, NULL)
               : stats_gauge(m->stats, "iocd_alerts_active", HELP, "rule",
                             ev->rule, "state", state, "severity", sev, NULL);
  if (g->value < 0) {
    g->value = 1;
  } else if (g->value > 0) {
    g->value += 1;
  } else if (track(m, g)) {
    g->value = 1;
  } else {
    m->nomem = true;
  }
}

void alert_metrics_update(struct alert_metrics *m, const struct engine *e,
                          uint64_t events) {
  if (!m || !e || (m->counted && events == m->events_seen && !m->nomem)) {
    return;
  }
  m->events_seen = events;
  m->counted = true;
  m->nomem = false;
  for (size_t i = 0; i < m->n; i++) {
    m->tracked[i]->value = -1;
  }
  engine_list(e, count, m);
  for (size_t i = 0; i < m->n; i++) {
    if (m->tracked[i]->value < 0) {
      m->tracked[i]->value = 0;
    }
  }
}
