/*
 * The helpers of fuzz.h: failing a run, the configurations the targets
 * build, and one message through the ingest pipeline with the checks every
 * ingest target makes on its verdict.
 */
#include "fuzz/fuzz.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/log.h"

void fuzz_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("fuzz: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

struct config *fuzz_config(const char *text) {
  struct config *cfg = NULL;
  struct buf errors;
  buf_init(&errors, 0);
  if (config_load_text("fuzz.jsonc", text, strlen(text), &cfg, &errors)) {
    fuzz_fail("the target's configuration is not valid:\n%s",
              errors.data ? errors.data : "");
  }
  buf_cleanup(&errors);
  return cfg;
}

int fuzz_msg_split(const uint8_t *data, size_t size, struct fuzz_msg *m) {
  const char *s = (const char *)data;
  const char *nl = size ? memchr(s, '\n', size) : NULL;
  size_t tlen = nl ? (size_t)(nl - s) : size;
  m->topic = malloc(tlen + 1);
  if (!m->topic) {
    return -1;
  }
  if (tlen) {
    memcpy(m->topic, s, tlen);
  }
  m->topic[tlen] = '\0';
  m->payload = nl ? nl + 1 : s + size;
  m->len = nl ? size - tlen - 1 : 0;
  return 0;
}

void fuzz_msg_free(struct fuzz_msg *m) {
  free(m->topic);
  m->topic = NULL;
}

struct run {
  ingest_sink_fn *sink;
  void *ud;
  int calls;
  size_t npoints;
};

static bool str_ok(const struct str *s) {
  return s->p && s->len > 0;
}

static int check_sink(void *ud, size_t sub, const struct point_batch *pb) {
  struct run *r = ud;
  r->calls++;
  r->npoints = pb->npoints;
  if (pb->npoints == 0) {
    fuzz_fail("the sink was called with no point");
  }
  for (size_t i = 0; i < pb->npoints; i++) {
    const struct point *p = &pb->points[i];
    if (!p->has_ts) {
      fuzz_fail("point %zu has no time", i + 1);
    }
    if (!str_ok(&p->measurement)) {
      fuzz_fail("point %zu has an empty measurement", i + 1);
    }
    if (p->nfields == 0) {
      fuzz_fail("point %zu has no fields", i + 1);
    }
    const struct tag *t = pb_tags(pb, p);
    for (size_t k = 0; k < p->ntags; k++) {
      if (!str_ok(&t[k].key) || !str_ok(&t[k].value)) {
        fuzz_fail("point %zu: tag %zu has an empty key or value", i + 1, k + 1);
      }
      if (k > 0) {
        size_t n =
            t[k - 1].key.len < t[k].key.len ? t[k - 1].key.len : t[k].key.len;
        int c = memcmp(t[k - 1].key.p, t[k].key.p, n);
        if (c > 0 || (c == 0 && t[k - 1].key.len >= t[k].key.len)) {
          fuzz_fail("point %zu: tags not sorted or repeated at %zu", i + 1,
                    k + 1);
        }
      }
    }
    const struct field *f = pb_fields(pb, p);
    for (size_t k = 0; k < p->nfields; k++) {
      if (!str_ok(&f[k].key)) {
        fuzz_fail("point %zu: field %zu has an empty key", i + 1, k + 1);
      }
      if (f[k].type < FIELD_FLOAT || f[k].type > FIELD_STRING) {
        fuzz_fail("point %zu: field %zu has no type", i + 1, k + 1);
      }
    }
  }
  return r->sink ? r->sink(r->ud, sub, pb) : 0;
}

int fuzz_ingest(const struct config *cfg, const struct fuzz_msg *m,
                ingest_sink_fn *sink, void *ud, struct ingest_result *res) {
  struct run r = {.sink = sink, .ud = ud};
  struct iocd_err err = {{0}};
  struct ingest *in = ingest_new(cfg, NULL, check_sink, &r, &err);
  if (!in) {
    if (strstr(err.msg, "out of memory")) {
      return IOCD_ENOMEM;
    }
    fuzz_fail("ingest_new: %s", err.msg);
  }
  int rc =
      ingest_message(in, m->topic, m->payload, m->len, NULL, FUZZ_NOW_NS, res);
  if (rc == IOCD_OK) {
    if (res->reason != INGEST_OK || r.calls != 1 || res->npoints != r.npoints) {
      fuzz_fail("accepted with reason %s, %d sink calls, %zu of %zu points",
                ingest_reason_id(res->reason), r.calls, res->npoints,
                r.npoints);
    }
  } else if (rc == IOCD_EINVAL) {
    if (res->reason == INGEST_OK || res->reason >= INGEST_NREASONS) {
      fuzz_fail("rejected without a reason (reason %d)", (int)res->reason);
    }
    if (!res->detail[0]) {
      fuzz_fail("rejected as %s without a detail",
                ingest_reason_id(res->reason));
    }
    if (r.calls != 0) {
      fuzz_fail("rejected as %s after the sink took the points",
                ingest_reason_id(res->reason));
    }
  } else if (rc != IOCD_ENOMEM) {
    fuzz_fail("ingest_message returned %s", iocd_strerror(rc));
  }
  ingest_free(in);
  return rc;
}

static struct config *decoder_cfg;

int fuzz_decoder_init(const char *config_text) {
  log_set_level(LOG_ERROR);
  decoder_cfg = fuzz_config(config_text);
  return 0;
}

int fuzz_decoder_one(const uint8_t *data, size_t size) {
  struct fuzz_msg m;
  if (fuzz_msg_split(data, size, &m)) {
    return 0;
  }
  struct ingest_result res;
  fuzz_ingest(decoder_cfg, &m, NULL, NULL, &res);
  fuzz_msg_free(&m);
  return 0;
}
