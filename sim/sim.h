/*
 * The province simulator's model (iocd-sim): the districts and systems of an
 * iocd configuration publishing the seed's KPIs (iGate dossiers, iDesk
 * documents, digital signatures, iMail accounts, the province's online
 * services) as MQTT messages in the payload formats iocd ingests, with
 * scenarios that make the default rules fire.
 *
 * Pure and deterministic: no I/O, no clock reads, no sockets. Time is a
 * "real" offset since the start of the run (what the caller's clock says,
 * or nothing at all in a dry run) mapped to the simulated clock by the
 * speed; the same options, seed and scenarios give the same messages byte
 * for byte. sim/main.c paces it against the wall clock and publishes.
 */
#ifndef IOCD_SIM_SIM_H
#define IOCD_SIM_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/err.h"

enum sim_format {
  SIM_FORMAT_JSON = 0, /* ioc/{district}/igate, .../idesk, .../signatures */
  SIM_FORMAT_VALUE,    /* a bare number per ioc/{district}/sensors/{field} */
  SIM_FORMAT_LINE,     /* line protocol on ioc/{district}/line */
  SIM_FORMAT_SENML,    /* SenML records on ioc/{district}/senml */
};

/* Parses "json", "value", "line" or "senml". Returns IOCD_OK or
 * IOCD_EINVAL. */
int sim_format_parse(const char *s, enum sim_format *out);

/* Options of a simulation. Caller storage; {0} plus cfg gives the defaults
 * noted on each member. */
struct sim_opts {
  /* The districts (sources.districts), the systems and the working
   * calendar. Borrowed: must outlive the simulation. Required. */
  const struct config *cfg;
  uint64_t seed;       /* the same seed gives the same messages */
  int64_t start_ns;    /* simulated time at real offset 0 (Unix ns) */
  double speed;        /* simulated seconds per real second; 0: 1 */
  int64_t interval_ns; /* simulated time between two reports of a feed;
                          0: one minute */
  enum sim_format format;
  /* true: no time in the payloads (json "time", the line protocol's
   * timestamp, SenML "bt"), so iocd stamps each message on arrival and a
   * compressed run's figures land at the present, where rules that read
   * iocd's clock see them (the demo) */
  bool no_time;
  double online_share; /* the province's share of dossiers submitted
                          online (levels 3 + 4), around which districts
                          vary; 0: 0.40 */
  /* The wall clock at real offset 0 (Unix ns) when the messages go to a
   * receiver, so that bad-payloads' timestamps are a day ahead of its
   * clock whatever the simulated time (a past day replayed, a compressed
   * run ending now); 0: a day ahead of the simulated clock (dry runs). */
  int64_t wall_ns;
};

/* What the model hands out. */
enum sim_msg_kind {
  SIM_MSG_PUBLISH = 0, /* publish payload on topic */
  SIM_MSG_ACTION,      /* a scenario's step for the publisher: topic is the
                          scenario's name ("broker-restart"), payload the
                          command to run (may be empty) */
};

/* One message, borrowed for the call of the emit function. payload is not
 * NUL-terminated for bad payloads; len is its length. */
struct sim_msg {
  enum sim_msg_kind kind;
  const char *topic;
  const char *payload;
  size_t len;
  int64_t sim_ns;  /* the simulated time it describes */
  int64_t real_ns; /* the real offset at which it is due */
  int bad;         /* 1 for a malformed message of bad-payloads */
};

/* Receives each message. A non-zero return stops sim_run_until, which
 * returns it. */
typedef int sim_emit_fn(void *ud, const struct sim_msg *m);

/* Counters of what was made so far. */
struct sim_counts {
  uint64_t messages; /* every SIM_MSG_PUBLISH */
  uint64_t bad;      /* of them, malformed on purpose */
  uint64_t load;     /* of them, from the load scenario */
  uint64_t ticks;    /* report rounds of the feeds */
};

struct sim;

/* Builds a simulation of o->cfg's districts. Returns NULL with err set when
 * an option is out of range, the configuration has no districts, or memory
 * runs out. Free with sim_free. */
struct sim *sim_new(const struct sim_opts *o, struct iocd_err *err);
void sim_free(struct sim *s);

/* Adds a scenario written "NAME" or "NAME:key=value,key=value" (docs/
 * simulator.md): online-drop, feed-silent, backlog, bad-payloads,
 * broker-restart, load. spec is copied. Returns IOCD_OK, or IOCD_EINVAL
 * with err naming the unknown scenario, key, district or bad value, or
 * IOCD_ENOMEM. */
int sim_add_scenario(struct sim *s, const char *spec, struct iocd_err *err);

/* Adds the scenarios of a text, one spec per line; blank lines and lines
 * starting with '#' are skipped. name is used in errors ("FILE:3: ...").
 * Returns as sim_add_scenario. */
int sim_add_scenarios(struct sim *s, const char *name, const char *text,
                      struct iocd_err *err);

/* The real offset (ns since the start of the run) of the next message. */
int64_t sim_next_ns(const struct sim *s);

/* Emits, in order, every message due at or before real offset real_ns.
 * Returns IOCD_OK, IOCD_ENOMEM, or what emit returned. */
int sim_run_until(struct sim *s, int64_t real_ns, sim_emit_fn *emit, void *ud);

/* The simulated time at real offset real_ns. */
int64_t sim_clock(const struct sim *s, int64_t real_ns);

/* The real offset at which the simulated clock reaches sim_ns. */
int64_t sim_real_at(const struct sim *s, int64_t sim_ns);

/* The counters so far. */
struct sim_counts sim_counts(const struct sim *s);

#endif
