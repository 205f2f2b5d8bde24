/*
 * Shared inside sim/: the simulation's state (sim.c), the scenarios
 * (scenario.c) and the payloads in each format (emit.c).
 */
#ifndef IOCD_SIM_SIM_INT_H
#define IOCD_SIM_SIM_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "sim/sim.h"

struct calendar;

enum sim_scenario_kind {
  SIM_SC_ONLINE_DROP,
  SIM_SC_FEED_SILENT,
  SIM_SC_BACKLOG,
  SIM_SC_BAD,
  SIM_SC_BROKER,
  SIM_SC_LOAD,
};

/* One scenario. Times are simulated offsets from the start of the run. */
struct sim_scenario {
  enum sim_scenario_kind kind;
  int district;       /* index in the districts; -1: all of them */
  char system[32];    /* feed-silent: the feed; "": every feed */
  int64_t at;         /* when it begins */
  int64_t dur;        /* how long it lasts; 0: to the end of the run */
  double value;       /* online-drop: the share; backlog: dossiers an hour;
                         bad-payloads: the fraction; load: messages a second */
  uint64_t series;    /* load: distinct series */
  char *exec;         /* broker-restart: the command (owned), or NULL */
  bool done;          /* broker-restart ran, load ended */
  int64_t load_start; /* load: real offset of its first message */
  int64_t load_next;  /* load: real offset of its next message */
  uint64_t load_seq;  /* load: messages so far */
};

/* A district and its counters (fractional, published rounded down). */
struct sim_district {
  const char *name; /* borrowed from the configuration */
  double weight;    /* share of the province's activity; they sum to 1 */
  double online_share, resolved_ratio, overdue_base;
  double received, resolved, online_l3, online_l4, overdue;
  double documents_sent, documents_received;
  double sig_individuals, sig_organisations, sig_sim_pki;
  double imail;
};

struct sim {
  const struct config *cfg;
  struct calendar *cal;
  enum sim_format format;
  bool no_time; /* payloads without a time: iocd stamps arrival */
  double speed;
  int64_t interval, start;
  int64_t wall; /* the wall clock at real offset 0, or 0 */
  int32_t utc_offset_s;
  uint64_t rng;
  uint64_t next_tick; /* the next round of reports */
  double rate_received, rate_documents, rate_imail;
  double rate_sig_individuals, rate_sig_organisations, rate_sig_sim_pki;
  struct sim_district *d;
  size_t nd;
  struct sim_scenario *sc;
  size_t nsc;
  struct buf topic, payload; /* the message being built */
  struct sim_counts counts;
};

/* splitmix64: the next 64 random bits, and a double in [0, 1). */
uint64_t sim__rand(uint64_t *state);
double sim__uniform(uint64_t *state);

/* True when scenario c covers simulated time t; true when feed `system`
 * of district i is silenced at t. */
bool sim__active(const struct sim *s, const struct sim_scenario *c, int64_t t);
bool sim__silent(const struct sim *s, size_t i, const char *system, int64_t t);

/* The index of the district named name, or -1. */
int sim_district_index(const struct sim *s, const char *name);

/* emit.c: the reports of district i at t (its feeds that are not silent),
 * the province's services, one malformed message, one load message. Each
 * returns IOCD_OK, IOCD_ENOMEM, or what emit returned. */
int sim__emit_district(struct sim *s, size_t i, int64_t t, int64_t real,
                       sim_emit_fn *emit, void *ud);
int sim__emit_province(struct sim *s, int64_t t, int64_t real, int total,
                       int l3, int l4, sim_emit_fn *emit, void *ud);
int sim__emit_bad(struct sim *s, size_t i, int64_t t, int64_t real,
                  sim_emit_fn *emit, void *ud);
int sim__emit_load(struct sim *s, struct sim_scenario *c, int64_t real,
                   sim_emit_fn *emit, void *ud);

#endif
