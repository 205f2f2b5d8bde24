/*
 * The dispatcher's insides, shared by dispatch.c (alerts, routes, groups,
 * flushes, escalation, acks, reconfiguration) and dispatch_aux.c (the
 * index of alerts and groups, the receivers' hourly limit and storm
 * notices, flapping, the digest's records). Internal to alerts/.
 */
#ifndef IOCD_ALERTS_DISPATCH_INT_H
#define IOCD_ALERTS_DISPATCH_INT_H

#include "alerts/ack.h"
#include "alerts/dispatch.h"
#include "alerts/match.h"
#include "alerts/route.h"
#include "alerts/silence.h"
#include "alerts/timeint.h"

#define DISPATCH_MAX_ALERTS 10000
#define DISPATCH_MAX_GROUPS 2000
#define DISPATCH_MAX_GROUP_ALERTS 1000
#define DISPATCH_MAX_RECORDS 2000
#define DISPATCH_MAX_STORM 200
#define DISPATCH_MAX_FLIPS 64
#define DISPATCH_MAX_RATE 100000
#define DISPATCH_RATE_DEFAULT 30
#define DISPATCH_HOUR_NS (INT64_C(3600) * INT64_C(1000000000))

/* An open-addressing map from a 64-bit key to a pointer (NULL: empty). */
struct dispatch_index {
  uint64_t *keys;
  void **vals;
  size_t cap; /* 0 or a power of two */
  size_t n;
};

void *dispatch__index_get(const struct dispatch_index *x, uint64_t k);
int dispatch__index_put(struct dispatch_index *x, uint64_t k, void *v);
void dispatch__index_del(struct dispatch_index *x, uint64_t k);
void dispatch__index_cleanup(struct dispatch_index *x);

struct dgroup;

/* What the dispatcher knows of one alert, across its groups. */
struct dalert {
  uint64_t fp;
  struct notice_alert a;  /* as last told */
  struct dgroup **groups; /* where it is routed now */
  size_t ngroups;
  size_t capgroups;
  int64_t flips[DISPATCH_MAX_FLIPS]; /* status changes, oldest first */
  size_t nflips;
  int64_t last_change_ns;
  bool flapping;    /* until last_change_ns + flap_window */
  bool flap_notify; /* its NOTICE_FLAPPING is still to go out */
  char **escalated; /* receivers it was escalated to in this episode */
  size_t nescalated;
};

/* One alert as a group sees it. */
struct dmember {
  uint64_t fp;
  struct notice_alert a; /* resolved when detached */
  int64_t fired_ns;      /* start of the firing episode */
  bool notified_firing;  /* the receiver was told it fires */
  bool in_last;          /* in the firing set of the group's last notice */
  bool detached;         /* routed elsewhere now: goes as resolved */
  bool held;             /* firing, kept out of the group's last flush by a
                            silence or an inhibition */
  size_t esc_sent;       /* escalation tiers sent in this episode */
  unsigned char cls;     /* scratch of one flush or escalation pass */
};

struct dgroup {
  char *key;
  uint64_t hash; /* of key */
  char *route_key;
  const struct route *route;
  struct notice_labels labels;
  struct dmember *m;
  size_t n;
  size_t cap;
  int64_t next_flush_ns;
  int64_t last_sent_ns; /* 0: never */
  bool overflow;
};

/* One (alertname, district) of a storm notice. */
struct dstorm {
  char *alertname;
  char *district; /* NULL when the alerts had none */
  uint64_t firing;
  uint64_t resolved;
};

/* A receiver's hourly count and storm. */
struct drecv {
  char *name;
  bool send_resolved;
  int rate;      /* < 0: no limit */
  int64_t *sent; /* ring of emission instants, rate entries */
  size_t head;
  size_t count;
  struct dstorm *storm;
  size_t nstorm;
  uint64_t storm_notices;
  int64_t storm_first_ns;
  int64_t storm_due_ns; /* 0: no storm pending */
};

/* A compiled inhibit rule and its firing sources (a cache). */
struct dinhibit {
  struct match_set src;
  struct match_set tgt;
  char **equal;
  size_t nequal;
  struct dalert **srcs;
  size_t nsrcs;
  size_t capsrcs;
};

/* One firing episode, for the digest. */
struct drecord {
  uint64_t fp;
  struct notice_alert a; /* acked_*, ends_ns kept up to date */
};

/* Everything built from one configuration. */
struct dconf {
  struct route_tree *routes;
  struct timeint_set *intervals;
  struct dinhibit *inhibit;
  size_t ninhibit;
  struct drecv *recv;
  size_t nrecv;
  int flap_transitions;
  int64_t flap_window_ns;
  char *digest_receiver; /* NULL: no digest */
  int *digest_at;        /* minutes of the local day, ascending */
  size_t ndigest_at;
};

struct dispatch {
  struct dconf c;
  const struct calendar *cal;
  dispatch_emit_fn *emit;
  dispatch_audit_fn *audit;
  void *ud;
  uint64_t next_id;
  int64_t now_ns;  /* the latest instant seen */
  int64_t tick_ns; /* the latest dispatch_tick (start: opts->now_ns) */
  size_t max_alerts, max_groups, max_group_alerts, max_records;
  int64_t silence_retention_ns;

  struct dispatch_index alert_index; /* fp -> struct dalert */
  struct dalert **alerts;
  size_t nalerts, capalerts;
  struct dispatch_index group_index; /* hash of key -> struct dgroup */
  struct dgroup **groups;            /* in creation order */
  size_t ngroups, capgroups;

  uint64_t gen;         /* bumped at every alert change */
  uint64_t inhibit_gen; /* gen the inhibit sources were found at */

  struct silence_set *silences;
  struct ack_set *acks;

  struct drecord *records;
  size_t nrecords, caprecords;
  uint64_t records_omitted;
  int64_t digest_next_ns; /* INT64_MAX: none */

  bool flap_pending;
  int64_t flap_due_ns;

  struct dispatch_stats stats;
};

/* dispatch.c */
bool dispatch__critical(const struct notice_labels *ls);
bool dispatch__route_muted(const struct dispatch *d, const struct route *r,
                           int64_t now_ns);
/* A notice of kind for receiver, with group key and labels copied; NULL
 * when memory runs out. */
struct notice *dispatch__notice(struct dispatch *d, enum notice_kind kind,
                                const char *receiver, const char *group_key,
                                const struct notice_labels *group_labels,
                                size_t nalerts, int64_t now_ns);
/* Copies a into n->alerts[n->nalerts++] with its ack, when firing. */
int dispatch__notice_add(struct dispatch *d, struct notice *n,
                         const struct notice_alert *a);

/* dispatch_aux.c: receivers, the limit and storms */
struct drecv *dispatch__recv(const struct dconf *c, const char *name);
int dispatch__recv_build(struct dconf *c, const struct config_notify *cfg);
void dispatch__recv_carry(struct dconf *to, struct dconf *from);
void dispatch__recv_cleanup(struct drecv *r);
/* Emits n (owned) or folds it into the receiver's storm. */
void dispatch__emit_limited(struct dispatch *d, struct notice *n,
                            int64_t now_ns);
/* Emits a notice that the limit does not apply to (storm, digest). */
void dispatch__emit(struct dispatch *d, struct notice *n);
void dispatch__storms_tick(struct dispatch *d, int64_t now_ns);

/* dispatch_aux.c: flapping */
/* Records a status change of da at now; true when it starts flapping. */
bool dispatch__flap_change(struct dispatch *d, struct dalert *da,
                           int64_t now_ns);
bool dispatch__flapping(const struct dispatch *d, uint64_t fp, int64_t now_ns);
void dispatch__flap_tick(struct dispatch *d, int64_t now_ns);

/* dispatch_aux.c: the digest */
bool dispatch__digest_on(const struct dispatch *d);
int64_t dispatch__digest_next(const struct dispatch *d, int64_t now_ns);
void dispatch__record_fire(struct dispatch *d, const struct dalert *da,
                           int64_t now_ns);
void dispatch__record_ack(struct dispatch *d, uint64_t fp, const char *by,
                          const char *comment, int64_t at_ns);
void dispatch__record_resolve(struct dispatch *d, uint64_t fp, int64_t ends_ns);
void dispatch__records_cleanup(struct dispatch *d);
void dispatch__digest_tick(struct dispatch *d, int64_t now_ns);

#endif
