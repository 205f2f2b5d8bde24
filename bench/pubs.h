/*
 * Background load for the benchmarks: P district publishers, each a thread
 * with its own libmosquitto client (MQTT 5, QoS 1, up to 1000 messages
 * unacknowledged, as bench_ingest's), publishing their share of n JSON
 * iGate records to ioc/<district>/igate as fast as the broker takes them.
 * They connect first and are released together by pubs_go, so the clock
 * starts with every one ready. The records break none of the province's
 * default rules: cumulative counters with 50% of the dossiers online, 90%
 * resolved and a small overdue backlog, each record with a timestamp of
 * its own.
 */
#ifndef IOCD_BENCH_PUBS_H
#define IOCD_BENCH_PUBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The province's districts, one per publisher (k < PUBS_NDISTRICTS). */
#define PUBS_NDISTRICTS 15
const char *pubs_district(size_t k);

struct pubs_opts {
  int port;       /* the broker's, on 127.0.0.1 */
  int publishers; /* 1..PUBS_NDISTRICTS */
  long n;         /* messages in all */
  /* Record j carries the timestamp ts_base_ms + j and counters grown by
   * j0 + j: a batch with j0 past the records of the batch before continues
   * its counters (a drop would read as a counter reset). */
  int64_t ts_base_ms;
  long j0;
};

struct pubs;

/* Starts the publisher threads, which connect and wait for pubs_go.
 * Returns the set (free it with pubs_join), or NULL with a message on
 * stderr. */
struct pubs *pubs_start(const struct pubs_opts *o);

/* Waits until every publisher is connected (or failed to), releases them
 * and returns the instant (CLOCK_MONOTONIC, ns). */
int64_t pubs_go(struct pubs *ps);

/* True when every publisher has finished (each message acknowledged, or
 * given up). Safe from any thread. */
bool pubs_finished(struct pubs *ps);

/* Releases the publishers if pubs_go was not called (they then stop at
 * once), joins them and frees ps. Returns 0, or -1 when any failed (with
 * a message on stderr). */
int pubs_join(struct pubs *ps);

#endif
