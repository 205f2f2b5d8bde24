/*
 * Fuzz target: what ingest accepts, the store can write and InfluxDB reads
 * back as it was. An input is one message (fuzz.h: the topic on the first
 * line, the payload after it); the topic's first level picks the format
 * (json, value, line, senml). Every point of an accepted message must
 *
 *   1. pass the store's own line-protocol check (lp_check_point, which
 *      store_append runs through lp_append_point: a point it refuses after
 *      ingest accepted it is counted as refused with reason "error" and
 *      lost), and
 *   2. once encoded by lp_append_point and published again in the `line`
 *      format, come out of the pipeline as the same point: measurement,
 *      tags, field keys, types and values (floats bit for bit) and time.
 *
 * The second pipeline takes the encoded lines on a subscription with no
 * topic tags, so nothing is added on the way back.
 */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/lp.h"
#include "fuzz/fuzz.h"

static const char config_text[] =
    "{\"file\": {},\n"
    " \"limits\": {\"max_past\": \"36600d\", \"max_future\": \"366d\"},\n"
    " \"subscriptions\": [\n"
    "  {\"name\": \"jk\", \"topic\": \"json/k/{district}\", \"format\": "
    "\"json\",\n"
    "   \"measurement_key\": \"m\", \"tag_keys\": [\"site\"],\n"
    "   \"allow_strings\": true, \"tags\": {\"source\": \"fuzz\"}},\n"
    "  {\"name\": \"jm\", \"topic\": \"json/{district}/{measurement}\",\n"
    "   \"format\": \"json\", \"allow_strings\": true},\n"
    "  {\"name\": \"v\", \"topic\": "
    "\"value/{district}/{measurement}/{field}\",\n"
    "   \"format\": \"value\"},\n"
    "  {\"name\": \"l\", \"topic\": \"line/{district}\", \"format\": "
    "\"line\"},\n"
    "  {\"name\": \"s\", \"topic\": \"senml/{district}/{measurement}\",\n"
    "   \"format\": \"senml\"},\n"
    "  {\"name\": \"any\", \"topic\": \"#\", \"format\": \"json\",\n"
    "   \"measurement\": \"fuzz\", \"allow_strings\": true}\n"
    " ]}\n";

/* The way back: the encoded lines as a `line` payload, with room for the
 * escapes the encoder adds. */
static const char back_text[] =
    "{\"file\": {},\n"
    " \"limits\": {\"max_past\": \"36600d\", \"max_future\": \"366d\",\n"
    "            \"max_payload\": \"256MiB\"},\n"
    " \"subscriptions\": [{\"name\": \"back\", \"topic\": \"back\",\n"
    "                    \"format\": \"line\"}]}\n";

static struct config *cfg, *back_cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  log_set_level(LOG_ERROR);
  cfg = fuzz_config(config_text);
  back_cfg = fuzz_config(back_text);
  return 0;
}

/* A name or value for a failure message, cut to a readable length. */
static const char *shown(const struct str *s, char *out, size_t n) {
  snprintf(out, n, "%.*s", s->len > 200 ? 200 : (int)s->len, s->p);
  return out;
}

static bool str_same(const struct str *a, const struct str *b) {
  return a->len == b->len && (a->len == 0 || !memcmp(a->p, b->p, a->len));
}

static bool field_same(const struct field *a, const struct field *b) {
  if (!str_same(&a->key, &b->key) || a->type != b->type) {
    return false;
  }
  switch (a->type) {
    case FIELD_FLOAT:
      return !memcmp(&a->v.f, &b->v.f, sizeof a->v.f);
    case FIELD_INT:
      return a->v.i == b->v.i;
    case FIELD_BOOL:
      return a->v.b == b->v.b;
    case FIELD_STRING:
      return str_same(&a->v.s, &b->v.s);
    default:
      return false;
  }
}

struct trip {
  const struct point_batch *sent; /* what the first pipeline accepted */
  const char *lines;              /* its encoding */
};

static void point_differs(const struct trip *t, size_t i, const char *what) {
  fuzz_fail("point %zu: %s differs after the round trip; encoded as:\n%s",
            i + 1, what, t->lines);
}

/* The second pipeline's sink: every point must be the one sent. */
static int compare_sink(void *ud, size_t sub, const struct point_batch *got) {
  (void)sub;
  const struct trip *t = ud;
  const struct point_batch *sent = t->sent;
  if (got->npoints != sent->npoints) {
    fuzz_fail("%zu points sent, %zu read back from:\n%s", sent->npoints,
              got->npoints, t->lines);
  }
  for (size_t i = 0; i < sent->npoints; i++) {
    const struct point *a = &sent->points[i], *b = &got->points[i];
    if (!str_same(&a->measurement, &b->measurement)) {
      point_differs(t, i, "the measurement");
    }
    if (a->ts_ns != b->ts_ns) {
      point_differs(t, i, "the time");
    }
    if (a->ntags != b->ntags) {
      point_differs(t, i, "the number of tags");
    }
    const struct tag *ta = pb_tags(sent, a), *tb = pb_tags(got, b);
    for (size_t k = 0; k < a->ntags; k++) {
      if (!str_same(&ta[k].key, &tb[k].key) ||
          !str_same(&ta[k].value, &tb[k].value)) {
        point_differs(t, i, "a tag");
      }
    }
    if (a->nfields != b->nfields) {
      point_differs(t, i, "the number of fields");
    }
    const struct field *fa = pb_fields(sent, a), *fb = pb_fields(got, b);
    for (size_t k = 0; k < a->nfields; k++) {
      if (!field_same(&fa[k], &fb[k])) {
        point_differs(t, i, "a field");
      }
    }
  }
  return 0;
}

/* The first pipeline's sink: encode as the store does, then the way back. */
static int roundtrip_sink(void *ud, size_t sub, const struct point_batch *pb) {
  (void)ud;
  (void)sub;
  struct buf lines;
  buf_init(&lines, 0);
  for (size_t i = 0; i < pb->npoints; i++) {
    const struct point *p = &pb->points[i];
    struct iocd_err err = {{0}};
    if (lp_check_point(pb, p, &err)) {
      char m[256];
      fuzz_fail(
          "ingest accepted point %zu (measurement \"%s\"), which the store "
          "refuses: %s",
          i + 1, shown(&p->measurement, m, sizeof m), err.msg);
    }
    int rc = lp_append_point(&lines, pb, p);
    if (rc == IOCD_ENOMEM) {
      buf_cleanup(&lines);
      return 0;
    }
    if (rc) {
      fuzz_fail("lp_append_point: %s after lp_check_point passed",
                iocd_strerror(rc));
    }
  }
  struct trip t = {.sent = pb, .lines = lines.data};
  struct fuzz_msg back = {.payload = lines.data, .len = lines.len};
  char topic[] = "back";
  back.topic = topic;
  struct ingest_result res;
  int rc = fuzz_ingest(back_cfg, &back, compare_sink, &t, &res);
  if (rc == IOCD_EINVAL) {
    fuzz_fail("the line format refuses what the encoder wrote (%s: %s):\n%s",
              ingest_reason_id(res.reason), res.detail, lines.data);
  }
  buf_cleanup(&lines);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fuzz_msg m;
  if (fuzz_msg_split(data, size, &m)) {
    return 0;
  }
  struct ingest_result res;
  fuzz_ingest(cfg, &m, roundtrip_sink, NULL, &res);
  fuzz_msg_free(&m);
  return 0;
}
