/*
 * A flood of adversarial messages, as a user sees it: a real mosquitto and
 * a real influxd, the iocd binary as a black box, and one publisher that
 * interleaves a sequence-numbered valid stream with generated bad payloads
 * in every format (invalid UTF-8, over the size limit, nested too deep,
 * NaN, wrong types, control characters, escapes InfluxDB cannot read back,
 * bad timestamps, random bytes, ...). Afterwards:
 *
 *   - iocd did not crash: /health answers and SIGTERM exits 0;
 *   - every valid message is in InfluxDB exactly once: as many rows as
 *     messages, and as many distinct sequence numbers;
 *   - every bad message is a reject counted by its reason: the
 *     iocd_rejects_total series add up, reason by reason, to what the
 *     ingest pipeline (run in the test on the same configuration and the
 *     same messages, in the same order) says of each message;
 *   - nothing accepted was refused by the store without a reason:
 *     iocd_source_messages_refused_total{reason="error"} stays 0.
 *
 * The generator is seeded, so a failure replays with the same messages.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "ingest/ingest.h"
#include "tests/harness/harness.h"

#define NVALID 2000
#define BAD_EVERY 2 /* one bad message after every second valid one */
#define NBAD (NVALID / BAD_EVERY)
#define HUGE 70000 /* over the default max_payload of 64 KiB */

/* The valid stream goes to flood/valid ({"seq": N, "time": ms}); the bad
 * messages to the other subscriptions, one per payload format, and to
 * flood/valid itself. */
static const char subscriptions[] =
    "  \"shutdown_timeout\": \"10s\",\n"
    "  \"stats_interval\": \"0s\",\n"
    "  \"subscriptions\": [\n"
    "    {\"name\": \"valid\", \"topic\": \"flood/valid\",\n"
    "     \"measurement\": \"valid\", \"time_unit_numbers\": \"ms\",\n"
    "     \"types\": {\"seq\": \"integer\"}},\n"
    "    {\"name\": \"json\", \"topic\": "
    "\"flood/json/{district}/{measurement}\",\n"
    "     \"measurement_key\": \"m\", \"tag_keys\": [\"site\"]},\n"
    "    {\"name\": \"line\", \"topic\": \"flood/line/{district}\",\n"
    "     \"format\": \"line\"},\n"
    "    {\"name\": \"value\",\n"
    "     \"topic\": \"flood/value/{district}/{measurement}/{field}\",\n"
    "     \"format\": \"value\"},\n"
    "    {\"name\": \"senml\", \"topic\": \"flood/senml/{district}\",\n"
    "     \"format\": \"senml\"}\n"
    "  ]\n";

/* xorshift64*: the same sequence on every run. */
static uint64_t rnd(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * UINT64_C(2685821657736338717);
}

static size_t pick(uint64_t *s, size_t n) {
  return (size_t)(rnd(s) % n);
}

struct msg {
  char topic[128];
  char *payload; /* HUGE + 64 bytes */
  size_t len;
};

static void set(struct msg *m, const char *topic, const char *payload) {
  snprintf(m->topic, sizeof m->topic, "%s", topic);
  m->len = strlen(payload);
  memcpy(m->payload, payload, m->len);
}

static const char *const json_topics[] = {
    "flood/json/Ea H'Leo/igate", "flood/json/Lắk/idesk", "flood/valid"};

/* Message k of the flood, meant to be rejected (the test asks the
 * pipeline for the reason). Returns true when it is random text that may
 * happen to be valid, false when it must be rejected. */
static bool make_bad(uint64_t *s, int k, struct msg *m) {
  const char *jt = json_topics[pick(s, 3)];
  char *p = m->payload;
  bool random_text = false;
  switch (k % 16) {
    case 0: { /* invalid UTF-8 somewhere in a JSON text */
      size_t n = (size_t)snprintf(p, 64, "{\"v\": \"abcdefghij\", \"w\": 1}");
      p[7 + pick(s, 10)] = (char)(0x80 + pick(s, 0x80));
      snprintf(m->topic, sizeof m->topic, "%s", jt);
      m->len = n;
      break;
    }
    case 1: /* over the size limit */
      memset(p, ' ', HUGE);
      memcpy(p, "{\"v\": 1}", 8);
      snprintf(m->topic, sizeof m->topic, "%s", jt);
      m->len = HUGE - pick(s, 4000);
      break;
    case 2: { /* nested deeper than max_json_depth (8) */
      int depth = 9 + (int)pick(s, 40);
      char open[64];
      size_t n = 0;
      for (int i = 0; i < depth; i++) {
        open[i] = pick(s, 2) ? '[' : '{';
        p[n++] = open[i];
        if (open[i] == '{') {
          memcpy(p + n, "\"a\":", 4);
          n += 4;
        }
      }
      p[n++] = '1';
      for (int i = depth - 1; i >= 0; i--) {
        p[n++] = open[i] == '[' ? ']' : '}';
      }
      snprintf(m->topic, sizeof m->topic, "%s", jt);
      m->len = n;
      break;
    }
    case 3: { /* NaN and infinities, in every format */
      static const char *const cases[][2] = {
          {"flood/json/x/m", "{\"v\": NaN}"},
          {"flood/json/x/m", "{\"v\": 1e999}"},
          {"flood/json/x/m", "{\"v\": -Infinity}"},
          {"flood/value/x/m/f", "NaN"},
          {"flood/value/x/m/f", "-inf"},
          {"flood/line/x", "m v=NaN"},
          {"flood/line/x", "m v=1e400"},
          {"flood/senml/x", "[{\"n\": \"a\", \"v\": 1e400}]"},
      };
      size_t i = pick(s, sizeof cases / sizeof cases[0]);
      set(m, cases[i][0], cases[i][1]);
      break;
    }
    case 4: { /* wrong types */
      static const char *const cases[][2] = {
          {"flood/json/x/m", "{\"v\": [1, 2]}"},
          {"flood/json/x/m", "{\"v\": null}"},
          {"flood/json/x/m", "{\"v\": \"many\"}"},
          {"flood/json/x/m", "{\"m\": 5, \"v\": 1}"},
          {"flood/json/x/m", "[1, 2, 3]"},
          {"flood/valid", "\"just a string\""},
          {"flood/valid", "{\"seq\": 1.5}"},
          {"flood/valid", "{\"seq\": true}"},
      };
      size_t i = pick(s, sizeof cases / sizeof cases[0]);
      set(m, cases[i][0], cases[i][1]);
      break;
    }
    case 5: { /* control characters in names */
      static const char *const cases[][2] = {
          {"flood/json/x/m", "{\"a\\u0001b\": 1}"},
          {"flood/json/x/m", "{\"m\": \"x\\u0007y\", \"v\": 1}"},
          {"flood/json/x/m", "{\"site\": \"a\\u0085b\", \"v\": 1}"},
          {"flood/json/x/m", "{\"a\\nb\": 1}"},
          {"flood/line/x", "m\x01 v=1"},
          {"flood/line/x", "m,t=a\x1f v=1"},
      };
      size_t i = pick(s, sizeof cases / sizeof cases[0]);
      set(m, cases[i][0], cases[i][1]);
      break;
    }
    case 6: { /* escapes InfluxDB cannot read back as written */
      static const char *const cases[][2] = {
          {"flood/json/x/m", "{\"a\\\\,b\": 1}"},
          {"flood/json/x/m", "{\"a\\\\\": 1}"},
          {"flood/json/x/m", "{\"m\": \"a\\\\,b\", \"v\": 1}"},
          {"flood/json/x/m", "{\"site\": \"x\\\\\", \"v\": 1}"},
          {"flood/json/x/igate\\", "{\"v\": 1}"},
          {"flood/json/x\\/m", "{\"v\": 1}"},
          {"flood/line/x", "m a\\\\,b=1"},
          {"flood/value/x/m\\/f", "1"},
          {"flood/value/x/m/a\\\\,b", "1"},
      };
      size_t i = pick(s, sizeof cases / sizeof cases[0]);
      set(m, cases[i][0], cases[i][1]);
      break;
    }
    case 7: { /* bad timestamps */
      static const char *const cases[][2] = {
          {"flood/json/x/m", "{\"v\": 1, \"time\": \"2021-02-30T25:00:00Z\"}"},
          {"flood/json/x/m", "{\"v\": 1, \"time\": \"yesterday\"}"},
          {"flood/json/x/m", "{\"v\": 1, \"time\": 1}"},
          {"flood/json/x/m", "{\"v\": 1, \"time\": 4102444800}"},
          {"flood/json/x/m", "{\"v\": 1, \"time\": 1e300}"},
          {"flood/json/x/m", "{\"v\": 1, \"time\": true}"},
          {"flood/valid", "{\"seq\": -1, \"time\": -5}"},
          {"flood/line/x", "m v=1 1"},
          {"flood/line/x", "m v=1 99999999999999999999"},
          {"flood/senml/x", "[{\"n\": \"a\", \"v\": 1, \"bt\": 1e30}]"},
      };
      size_t i = pick(s, sizeof cases / sizeof cases[0]);
      set(m, cases[i][0], cases[i][1]);
      break;
    }
    case 8: { /* random bytes after one that cannot start UTF-8 */
      size_t n = 1 + pick(s, 300);
      p[0] = (char)0xFF;
      for (size_t i = 1; i < n; i++) {
        p[i] = (char)rnd(s);
      }
      static const char *const topics[] = {"flood/json/x/m", "flood/line/x",
                                           "flood/value/x/m/f", "flood/senml/x",
                                           "flood/valid"};
      snprintf(m->topic, sizeof m->topic, "%s", topics[pick(s, 5)]);
      m->len = n;
      break;
    }
    case 9: { /* random text made of the formats' own characters */
      static const char chars[] = "{}[]\":,= .-+eE019aim\\\nt#";
      size_t n = 1 + pick(s, 80);
      for (size_t i = 0; i < n; i++) {
        p[i] = chars[pick(s, sizeof chars - 1)];
      }
      static const char *const topics[] = {"flood/json/x/m", "flood/line/x",
                                           "flood/value/x/m/f",
                                           "flood/senml/x"};
      snprintf(m->topic, sizeof m->topic, "%s", topics[pick(s, 4)]);
      m->len = n;
      random_text = true;
      break;
    }
    case 10: /* a NUL inside the payload */
      memcpy(p, "{\"v\": 1}\0{}", 11);
      snprintf(m->topic, sizeof m->topic, "%s", jt);
      m->len = 11;
      break;
    case 11: { /* nothing at all, or blanks */
      static const char *const topics[] = {"flood/json/x/m", "flood/line/x",
                                           "flood/value/x/m/f",
                                           "flood/senml/x"};
      set(m, topics[pick(s, 4)], pick(s, 2) ? "" : " \n\t ");
      break;
    }
    case 12: { /* more fields than max_fields (256) */
      size_t n = 0;
      p[n++] = '{';
      for (int i = 0; i < 300; i++) {
        n += (size_t)snprintf(p + n, 32, "%s\"f%d\": %d", i ? ", " : "", i, i);
      }
      p[n++] = '}';
      snprintf(m->topic, sizeof m->topic, "%s", jt);
      m->len = n;
      break;
    }
    case 13: { /* reserved and repeated keys */
      static const char *const cases[][2] = {
          {"flood/json/x/m", "{\"site\": \"a\", \"v\": 1, \"v\": 2}"},
          {"flood/line/x", "m,time=1 v=1"},
          {"flood/line/x", "m v=1,v=2"},
          {"flood/line/x", "m,t=1,t=2 v=1"},
          {"flood/value/x/m/time", "1"},
      };
      size_t i = pick(s, sizeof cases / sizeof cases[0]);
      set(m, cases[i][0], cases[i][1]);
      break;
    }
    case 14: { /* SenML that is not a pack of records */
      static const char *const cases[] = {
          "[{\"n\": \"a\", \"vd\": \"aGk=\"}]", "[{\"bn\": \"a,b\", \"v\": 1}]",
          "{\"n\": \"a\", \"v\": 1}",           "[{\"n\": \"a\"}]",
          "[{\"n\": \"\", \"v\": 1}]",          "[]"};
      set(m, "flood/senml/x", cases[pick(s, sizeof cases / sizeof cases[0])]);
      break;
    }
    default: { /* line protocol that is not */
      static const char *const cases[] = {
          "m,t= v=1",  "m v=1i1",   "m v=\"unterminated",
          "m v=1 1 1", "m v=1\r\n", ",t=1 v=1",
          "m v=1u",    "m  ",       "m v=tru"};
      set(m, "flood/line/x", cases[pick(s, sizeof cases / sizeof cases[0])]);
      break;
    }
  }
  return random_text;
}

/* The sum of the values of the series of family name on the /metrics text,
 * keeping those whose labels contain label (NULL: all). */
static double metric_sum(const char *text, const char *name,
                         const char *label) {
  double sum = 0;
  size_t n = strlen(name);
  const char *l = text;
  while (l && *l) {
    const char *end = strchr(l, '\n');
    bool ours = strncmp(l, name, n) == 0 && (l[n] == '{' || l[n] == ' ');
    const char *value = !ours ? NULL : l[n] == ' ' ? l + n : strstr(l, "} ");
    if (value && (!end || value < end)) {
      const char *at = label ? strstr(l, label) : NULL;
      if (!label || (at && at < value)) {
        sum += strtod(value + (*value == '}' ? 2 : 1), NULL);
      }
    }
    l = end ? end + 1 : NULL;
  }
  return sum;
}

static bool get_metrics(int port, struct buf *b) {
  buf_reset(b);
  return h_http_get(port, "/metrics", b) == 200 && b->data;
}

/* The test's pipeline only judges: its sink refuses every message that
 * passes, so that it learns no field type and no series from a message
 * iocd does not get, and its verdicts stay iocd's. */
static int refuse(void *ud, size_t sub, const struct point_batch *pb) {
  (void)ud;
  (void)sub;
  (void)pb;
  return IOCD_EFULL;
}

Test(
    flood,
    adversarial_payloads_are_counted_by_reason_and_the_valid_stream_is_written_once,
    .timeout = 180) {
  log_set_level(LOG_ERROR);
  struct h_env e;
  cr_assert_eq(h_env_start(&e), 0);
  cr_assert_eq(h_env_config(&e, "flood", "%s", subscriptions), 0);

  /* The verdict on each message, from the pipeline iocd runs, on the same
   * configuration. Bad messages are far outside any time window, so the
   * seconds between here and iocd do not change a verdict. */
  struct config *cfg = NULL;
  struct buf errors;
  buf_init(&errors, 0);
  cr_assert_eq(
      config_load_text("iocd.jsonc", e.config, strlen(e.config), &cfg, &errors),
      IOCD_OK, "%s", errors.data ? errors.data : "");
  buf_cleanup(&errors);
  struct iocd_err err = {{0}};
  struct ingest *in = ingest_new(cfg, NULL, refuse, NULL, &err);
  cr_assert_not_null(in, "%s", err.msg);

  cr_assert_eq(h_env_iocd_start(&e), 0, "iocd did not subscribe; see %s",
               e.iocd.log);
  struct h_pub *pub = h_pub_open(e.mq.port, "flood-publisher");
  cr_assert_not_null(pub);

  uint64_t seed = UINT64_C(0x10c0ffee2026);
  double expected[INGEST_NREASONS] = {0};
  int nbad = 0;
  struct msg m;
  m.payload = malloc(HUGE + 64);
  cr_assert_not_null(m.payload);
  int64_t t0_ms = clock_realtime_ns() / NS_PER_MS - 3600 * 1000;
  int64_t start = clock_mono_ns();
  for (int i = 0, k = 0; i < NVALID; i++) {
    char payload[96];
    int len = snprintf(payload, sizeof payload, "{\"seq\": %d, \"time\": %lld}",
                       i, (long long)(t0_ms + i));
    struct ingest_result res;
    cr_assert_eq(ingest_message(in, "flood/valid", payload, (size_t)len, NULL,
                                clock_realtime_ns(), &res),
                 IOCD_EFULL, "valid message %d: %s", i, res.detail);
    cr_assert_eq(h_pub_send(pub, "flood/valid", payload, (size_t)len, 1), 0);
    if (i % BAD_EVERY != 0) {
      continue;
    }
    /* Random text that the pipeline would accept (its sink's refusal) is
     * not sent. Every other generated message is sent: one that passes
     * here is a bug, which the counts below show. */
    int rc;
    for (;;) {
      bool random_text = make_bad(&seed, k++, &m);
      rc = ingest_message(in, m.topic, m.payload, m.len, NULL,
                          clock_realtime_ns(), &res);
      cr_assert(rc == IOCD_EINVAL || rc == IOCD_EFULL, "%s: %s", m.topic,
                iocd_strerror(rc));
      if (rc == IOCD_EINVAL || !random_text) {
        break;
      }
    }
    if (rc == IOCD_EINVAL) {
      expected[res.reason]++;
    } else {
      cr_log_warn("flood: accepted: %s: %.*s", m.topic, (int)m.len, m.payload);
    }
    nbad++;
    cr_assert_eq(h_pub_send(pub, m.topic, m.payload, m.len, 1), 0,
                 "publish to %s", m.topic);
  }
  cr_assert_eq(h_pub_flush(pub), 0);
  h_pub_close(pub);
  free(m.payload);
  ingest_free(in);
  config_free(cfg);
  cr_log_info("flood: %d valid and %d bad messages published in %lld ms",
              NVALID, nbad, (long long)((clock_mono_ns() - start) / NS_PER_MS));
  for (int r = INGEST_OK + 1; r < INGEST_NREASONS; r++) {
    if (expected[r] > 0) {
      cr_log_info("flood: %g %s", expected[r],
                  ingest_reason_id((enum ingest_reason)r));
    }
  }

  const char *count = "SELECT count(seq) FROM valid";
  cr_assert_eq(h_env_wait_count(&e, count, NVALID, 60000), 0,
               "%g of %d valid messages written; see %s",
               h_env_count(&e, count), NVALID, e.iocd.log);
  cr_assert_eq(h_env_count(&e, count), NVALID);
  cr_assert_eq(h_env_count(&e, "SELECT count(distinct(seq)) FROM valid"),
               NVALID, "a sequence number is missing or written twice");

  /* Every message was received once the counter says so; the last ones
   * may still be on their way after the last valid row. */
  struct buf b;
  buf_init(&b, 16u << 20);
  double received = -1;
  for (int tries = 0; tries < 200 && received < NVALID + nbad; tries++) {
    if (tries) {
      h_sleep_ms(100);
    }
    cr_assert(get_metrics(e.api_port, &b), "no /metrics: did iocd crash?");
    received = metric_sum(b.data, "iocd_messages_total", NULL);
  }
  cr_assert_eq(received, NVALID + nbad);
  cr_assert_eq(metric_sum(b.data, "iocd_source_messages_refused_total",
                          "reason=\"error\""),
               0,
               "the store refused accepted messages, counted as reason "
               "\"error\": ingest accepted what the store cannot write");
  cr_assert_eq(metric_sum(b.data, "iocd_source_messages_refused_total",
                          "reason=\"full\""),
               0);
  double rejects = metric_sum(b.data, "iocd_rejects_total", NULL);
  cr_assert_eq(rejects, nbad, "%g rejects counted for %d bad messages", rejects,
               nbad);
  for (int r = INGEST_OK + 1; r < INGEST_NREASONS; r++) {
    char label[64];
    snprintf(label, sizeof label, "reason=\"%s\"",
             ingest_reason_id((enum ingest_reason)r));
    cr_expect_eq(metric_sum(b.data, "iocd_rejects_total", label), expected[r],
                 "%s: %g counted, %g expected", label,
                 metric_sum(b.data, "iocd_rejects_total", label), expected[r]);
  }

  buf_reset(&b);
  cr_assert_eq(h_http_get(e.api_port, "/health", &b), 200);
  buf_cleanup(&b);
  cr_assert_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0, "see %s", e.iocd.log);
  h_env_stop(&e);
}
