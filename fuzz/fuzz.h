/*
 * What the libFuzzer targets of fuzz/ share: the entry points libFuzzer
 * calls (declared here for -Wmissing-prototypes), a way to stop on a broken
 * invariant, and the ingest pipeline run on one input. Each target is one
 * file that builds one fuzz_<name> binary; scripts/fuzz runs them and
 * fuzz/corpus/<name>/ holds their seeds.
 *
 * An input of the ingest targets (decode_*, lp_roundtrip) is one MQTT
 * message: the topic up to the first newline, the payload after it.
 */
#ifndef IOCD_FUZZ_FUZZ_H
#define IOCD_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/point.h"
#include "ingest/ingest.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The arrival time of every message: 2026-01-01T00:00:00Z. */
#define FUZZ_NOW_NS INT64_C(1767225600000000000)

/* Prints "fuzz: " and the message to stderr and aborts, so that libFuzzer
 * saves the input as a crash. */
void fuzz_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* Loads a configuration the target builds in code; fails the run when it is
 * not valid. The caller owns the result. */
struct config *fuzz_config(const char *text);

/* One message of an ingest target: the topic (NUL-terminated copy, owned)
 * and the payload (borrowed from the input). */
struct fuzz_msg {
  char *topic;
  const char *payload;
  size_t len;
};

/* Splits data at its first newline. Returns 0, or -1 when out of memory. */
int fuzz_msg_split(const uint8_t *data, size_t size, struct fuzz_msg *m);
void fuzz_msg_free(struct fuzz_msg *m);

/* Runs one message through a fresh pipeline on cfg (fresh, so that a saved
 * input replays alone as it ran) and checks the verdict: accepted exactly
 * when the result says so, a known reason and a detail for every reject,
 * the sink called once with every accepted point complete (a time, a
 * measurement, fields, sorted non-empty tags). sink (may be NULL) then sees
 * the points. Returns the result of ingest_message. */
int fuzz_ingest(const struct config *cfg, const struct fuzz_msg *m,
                ingest_sink_fn *sink, void *ud, struct ingest_result *res);

/* The whole of a payload decoder's target: fuzz_decoder_init loads the
 * target's configuration once (errors only in the log); fuzz_decoder_one
 * runs one input as topic, newline, payload through fuzz_ingest. Both
 * return 0, as libFuzzer wants. */
int fuzz_decoder_init(const char *config_text);
int fuzz_decoder_one(const uint8_t *data, size_t size);

#endif
