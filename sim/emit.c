/*
 * The simulator's messages in each payload format, on the topics of the
 * example configuration (config/iocd.example.jsonc):
 *
 *   json   ioc/{district}/igate, .../idesk, .../signatures: one JSON object
 *          with "time" (RFC 3339, the calendar's offset) and the counters;
 *   value  ioc/{district}/sensors/{measurement}_{field}: a bare number (no
 *          timestamp: iocd stamps it with the arrival time);
 *   line   ioc/{district}/line: one line of line protocol per feed, with a
 *          system tag and the time in nanoseconds;
 *   senml  ioc/{district}/senml: SenML records named {measurement}_{field}.
 *
 * With no_time the json "time", the line protocol's timestamp and SenML's
 * "bt" are left out, and iocd stamps each message on arrival.
 *
 * The example configuration has no JSON subscription for iMail or for the
 * province's services, so in the json format those go as line protocol on
 * ioc/{district}/line and ioc/province/line, where the default rules read
 * province.services_*.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/timefmt.h"
#include "sim/sim_int.h"

#define NS_PER_S INT64_C(1000000000)
#define FEED_MAX_FIELDS 5

/* One report: a measurement's counters for one source. */
struct feed {
  const char *source;      /* the {district} level of the topic */
  const char *system;      /* the system tag and topic level; NULL: none */
  const char *measurement; /* igate, idesk, signatures, imail, province */
  const char *names[FEED_MAX_FIELDS];
  int64_t v[FEED_MAX_FIELDS];
  size_t n;
};

static int send(struct sim *s, int64_t t, int64_t real, int bad,
                sim_emit_fn *emit, void *ud) {
  struct sim_msg m = {.kind = SIM_MSG_PUBLISH,
                      .topic = s->topic.data,
                      .payload = s->payload.data ? s->payload.data : "",
                      .len = s->payload.len,
                      .sim_ns = t,
                      .real_ns = real,
                      .bad = bad};
  s->counts.messages++;
  s->counts.bad += bad != 0;
  return emit(ud, &m); /* main.c's on_msg, or a test's recorder */
}

/* "time":"2020-10-06T08:00:00+07:00" in the calendar's offset. */
static int put_time_json(struct sim *s, int64_t t) {
  char ts[48];
  time_format_rfc3339(t, s->utc_offset_s, -1, ts, sizeof ts);
  return buf_printf(&s->payload, "\"time\":\"%s\"", ts);
}

/* SenML base time: seconds, with milliseconds when not whole. */
static int put_senml_time(struct sim *s, int64_t t) {
  int64_t sec = t / NS_PER_S, ms = (t % NS_PER_S) / 1000000;
  if (ms) {
    return buf_printf(&s->payload, "%" PRId64 ".%03" PRId64, sec, ms);
  }
  return buf_printf(&s->payload, "%" PRId64, sec);
}

static int line_of(struct sim *s, const struct feed *f, int64_t t) {
  int rc = buf_puts(&s->payload, f->measurement);
  if (!rc && f->system) {
    rc = buf_printf(&s->payload, ",system=%s", f->system);
  }
  for (size_t k = 0; !rc && k < f->n; k++) {
    rc = buf_printf(&s->payload, "%c%s=%" PRId64 "i", k ? ',' : ' ',
                    f->names[k], f->v[k]);
  }
  return rc || s->no_time ? rc : buf_printf(&s->payload, " %" PRId64, t);
}

/* Sends feed f in the simulation's format (json falls back to line
 * protocol when line_only). */
static int send_feed(struct sim *s, const struct feed *f, int64_t t,
                     int64_t real, bool line_only, sim_emit_fn *emit,
                     void *ud) {
  enum sim_format fmt = s->format;
  if (fmt == SIM_FORMAT_JSON && line_only) {
    fmt = SIM_FORMAT_LINE;
  }
  int rc = IOCD_OK;
  buf_reset(&s->topic);
  buf_reset(&s->payload);
  switch (fmt) {
    case SIM_FORMAT_JSON:
      rc = buf_printf(&s->topic, "ioc/%s/%s", f->source, f->system);
      rc = rc ? rc : buf_putc(&s->payload, '{');
      rc = rc || s->no_time ? rc : put_time_json(s, t);
      for (size_t k = 0; !rc && k < f->n; k++) {
        rc = buf_printf(&s->payload, "%s\"%s\":%" PRId64,
                        k || !s->no_time ? "," : "", f->names[k], f->v[k]);
      }
      rc = rc ? rc : buf_putc(&s->payload, '}');
      break;
    case SIM_FORMAT_VALUE:
      for (size_t k = 0; k < f->n; k++) {
        buf_reset(&s->topic);
        buf_reset(&s->payload);
        rc = buf_printf(&s->topic, "ioc/%s/sensors/%s_%s", f->source,
                        f->measurement, f->names[k]);
        rc = rc ? rc : buf_printf(&s->payload, "%" PRId64, f->v[k]);
        rc = rc ? rc : send(s, t, real, 0, emit, ud);
        if (rc) {
          return rc;
        }
      }
      return IOCD_OK;
    case SIM_FORMAT_LINE:
      rc = buf_printf(&s->topic, "ioc/%s/line", f->source);
      rc = rc ? rc : line_of(s, f, t);
      break;
    case SIM_FORMAT_SENML:
      rc = buf_printf(&s->topic, "ioc/%s/senml", f->source);
      rc =
          rc ? rc : buf_printf(&s->payload, "[{\"bn\":\"%s_\"", f->measurement);
      rc = rc || s->no_time ? rc : buf_puts(&s->payload, ",\"bt\":");
      rc = rc || s->no_time ? rc : put_senml_time(s, t);
      for (size_t k = 0; !rc && k < f->n; k++) {
        rc = buf_printf(&s->payload, "%s\"n\":\"%s\",\"v\":%" PRId64 "}",
                        k ? ",{" : ",", f->names[k], f->v[k]);
      }
      rc = rc ? rc : buf_putc(&s->payload, ']');
      break;
  }
  return rc ? rc : send(s, t, real, 0, emit, ud);
}

int sim__emit_district(struct sim *s, size_t i, int64_t t, int64_t real,
                       sim_emit_fn *emit, void *ud) {
  const struct sim_district *d = &s->d[i];
  const struct feed feeds[] = {
      {d->name,
       "igate",
       "igate",
       {"received", "resolved", "online_l3", "online_l4", "overdue"},
       {(int64_t)d->received, (int64_t)d->resolved, (int64_t)d->online_l3,
        (int64_t)d->online_l4, (int64_t)d->overdue},
       5},
      {d->name,
       "idesk",
       "idesk",
       {"documents_sent", "documents_received"},
       {(int64_t)d->documents_sent, (int64_t)d->documents_received},
       2},
      {d->name,
       "signatures",
       "signatures",
       {"individuals", "organisations", "sim_pki"},
       {(int64_t)d->sig_individuals, (int64_t)d->sig_organisations,
        (int64_t)d->sig_sim_pki},
       3},
      {d->name, "imail", "imail", {"accounts"}, {(int64_t)d->imail}, 1},
  };
  for (size_t k = 0; k < sizeof feeds / sizeof feeds[0]; k++) {
    if (sim__silent(s, i, feeds[k].system, t)) {
      continue;
    }
    bool line_only = strcmp(feeds[k].system, "imail") == 0;
    int rc = send_feed(s, &feeds[k], t, real, line_only, emit, ud);
    if (rc) {
      return rc;
    }
  }
  return IOCD_OK;
}

int sim__emit_province(struct sim *s, int64_t t, int64_t real, int total,
                       int l3, int l4, sim_emit_fn *emit, void *ud) {
  const struct feed f = {
      "province",      NULL,
      "province",      {"services_total", "services_l3", "services_l4"},
      {total, l3, l4}, 3};
  return send_feed(s, &f, t, real, true, emit, ud);
}

/* Malformed messages of each format, as districts' scripts get them wrong:
 * cut short, a word for a number, broken UTF-8, a clock a day ahead (of
 * the receiver's clock when it is known: the simulated one may be far
 * behind it). */
int sim__emit_bad(struct sim *s, size_t i, int64_t t, int64_t real,
                  sim_emit_fn *emit, void *ud) {
  const char *name = s->d[i].name;
  unsigned variant = (unsigned)(sim__rand(&s->rng) % 4);
  int64_t ahead = (s->wall ? s->wall + real : t) + INT64_C(86400) * NS_PER_S;
  char ts[48];
  time_format_rfc3339(ahead, s->utc_offset_s, -1, ts, sizeof ts);
  int rc = IOCD_OK;
  buf_reset(&s->topic);
  buf_reset(&s->payload);
  switch (s->format) {
    case SIM_FORMAT_JSON: {
      rc = buf_printf(&s->topic, "ioc/%s/igate", name);
      static const char *const bad[] = {
          "{\"received\":12", "{\"received\":\"nhi\xe1\xbb\x81u\"}",
          "{\"received\":1,\"x\":\"\xff\xfe\"}", NULL};
      rc = rc            ? rc
           : variant < 3 ? buf_puts(&s->payload, bad[variant])
                         : buf_printf(&s->payload,
                                      "{\"time\":\"%s\",\"received\":1}", ts);
      break;
    }
    case SIM_FORMAT_VALUE: {
      rc = buf_printf(&s->topic, "ioc/%s/sensors/igate_received", name);
      static const char *const bad[] = {"m\xe1\xbb\x99t", "NaN", "\xff",
                                        "12 13"};
      rc = rc ? rc : buf_puts(&s->payload, bad[variant]);
      break;
    }
    case SIM_FORMAT_LINE: {
      rc = buf_printf(&s->topic, "ioc/%s/line", name);
      static const char *const bad[] = {
          "igate,system=igate received=", "igate,system=igate received=1x",
          "igate,system=igate re\xffived=1i", NULL};
      rc = rc ? rc
           : variant < 3
               ? buf_puts(&s->payload, bad[variant])
               : buf_printf(&s->payload,
                            "igate,system=igate received=1i %" PRId64, ahead);
      break;
    }
    case SIM_FORMAT_SENML: {
      rc = buf_printf(&s->topic, "ioc/%s/senml", name);
      static const char *const bad[] = {
          "[{\"n\":\"igate_received\"}]",
          "[{\"n\":\"igate_received\",\"v\":\"x\"}]",
          "[{\"n\":\"\xff\",\"v\":1}]", "[{\"n\":\"igate_received\",\"v\":"};
      rc = rc ? rc : buf_puts(&s->payload, bad[variant]);
      break;
    }
  }
  return rc ? rc : send(s, t, real, 1, emit, ud);
}

int sim__emit_load(struct sim *s, struct sim_scenario *c, int64_t real,
                   sim_emit_fn *emit, void *ud) {
  uint64_t n = c->load_seq++;
  uint64_t series = n % c->series;
  int64_t t = sim_clock(s, real);
  buf_reset(&s->topic);
  buf_reset(&s->payload);
  int rc = buf_printf(&s->topic, "ioc/%s/line", s->d[series % s->nd].name);
  rc = rc ? rc
          : buf_printf(&s->payload,
                       "sim_load,series=s%06" PRIu64 " value=%.3f %" PRId64,
                       series, 100.0 * sim__uniform(&s->rng), t);
  c->load_next =
      c->load_start + (int64_t)((double)(n + 1) * 1e9 / c->value + 0.5);
  if (c->dur && sim_clock(s, c->load_next) >= s->start + c->at + c->dur) {
    c->done = true;
  }
  s->counts.load++;
  return rc ? rc : send(s, t, real, 0, emit, ud);
}
