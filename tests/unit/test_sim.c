/*
 * The simulator's model (sim/): the office-hours shape of its counters over
 * a week with a public holiday, the reset on 1 January, determinism for a
 * seed, the scenarios' effects, and every format's messages going through
 * iocd's own ingest with the example configuration: the simulator's output
 * is valid input, and its malformed messages are rejected.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/stats.h"
#include "core/timefmt.h"
#include "ingest/ingest.h"
#include "sim/sim.h"

#define SEC INT64_C(1000000000)
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

static struct config *example(void) {
  struct config *cfg = NULL;
  struct buf e;
  buf_init(&e, 0);
  int rc = config_load(IOCD_SOURCE_DIR "/config/iocd.example.jsonc", &cfg, &e);
  cr_assert_eq(rc, IOCD_OK, "%s", e.data ? e.data : "");
  buf_cleanup(&e);
  return cfg;
}

static int64_t at(const char *rfc3339) {
  int64_t ns;
  cr_assert_eq(time_parse_rfc3339(rfc3339, strlen(rfc3339), &ns, NULL),
               IOCD_OK);
  return ns;
}

/* Every message as "TOPIC\tPAYLOAD\n" (bad ones too), for comparisons. */
static int record(void *ud, const struct sim_msg *m) {
  struct buf *b = ud;
  cr_assert_eq(buf_printf(b, "%d %s\t", (int)m->kind, m->topic), IOCD_OK);
  cr_assert_eq(buf_append(b, m->payload, m->len), IOCD_OK);
  cr_assert_eq(buf_putc(b, '\n'), IOCD_OK);
  return 0;
}

static struct sim *make(const struct config *cfg, uint64_t seed, int64_t start,
                        int64_t interval, enum sim_format f) {
  struct sim_opts o = {.cfg = cfg,
                       .seed = seed,
                       .start_ns = start,
                       .speed = 60,
                       .interval_ns = interval,
                       .format = f};
  struct iocd_err err = {0};
  struct sim *s = sim_new(&o, &err);
  cr_assert_not_null(s, "%s", err.msg);
  return s;
}

/* Runs s for dur of simulated time. */
static void run(struct sim *s, int64_t start, int64_t dur, sim_emit_fn *emit,
                void *ud) {
  int64_t end = sim_real_at(s, start + dur);
  cr_assert_eq(sim_run_until(s, end - 1, emit, ud), IOCD_OK);
}

/* The igate counters of one district, per round. */
struct series {
  const char *topic;
  const char *field;
  int64_t t[2048];
  double v[2048];
  size_t n;
};

static int collect(void *ud, const struct sim_msg *m) {
  struct series *s = ud;
  if (m->kind != SIM_MSG_PUBLISH || m->bad || strcmp(m->topic, s->topic)) {
    return 0;
  }
  cJSON *j = cJSON_ParseWithLength(m->payload, m->len);
  cr_assert_not_null(j, "%.*s", (int)m->len, m->payload);
  const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, s->field);
  cr_assert(cJSON_IsNumber(f));
  cr_assert_lt(s->n, 2048);
  s->t[s->n] = m->sim_ns;
  s->v[s->n++] = f->valuedouble;
  cJSON_Delete(j);
  return 0;
}

/* Office hours of the example calendar: Monday to Friday 07:30-11:30 and
 * 13:30-17:00 (+07:00), but not on the holiday 2020-09-02. */
static bool office(int64_t t) {
  int64_t local = t / SEC + 7 * 3600;
  int64_t days = local / 86400;
  int mins = (int)(local % 86400 / 60);
  int wday = (int)((days + 4) % 7); /* 1970-01-01 was a Thursday */
  int64_t y;
  unsigned m, d;
  time_civil_from_days(days, &y, &m, &d);
  if (wday == 0 || wday == 6 || (y == 2020 && m == 9 && d == 2)) {
    return false;
  }
  return (mins >= 450 && mins < 690) || (mins >= 810 && mins < 1020);
}

Test(sim, counters_grow_in_office_hours_and_rest_at_night_weekends_holidays) {
  struct config *cfg = example();
  /* Monday 31 August 2020 to Sunday 6 September; Wednesday 2 September is
   * Quốc khánh in the example calendar. */
  int64_t start = at("2020-08-31T00:00:00+07:00");
  const char *fields[] = {"documents_sent", "received"};
  const char *topics[] = {"ioc/Buôn Ma Thuột/idesk", "ioc/Ea H'Leo/igate"};
  for (size_t k = 0; k < 2; k++) {
    struct sim *s = make(cfg, 7, start, 15 * MIN, SIM_FORMAT_JSON);
    struct series sr = {.topic = topics[k], .field = fields[k]};
    run(s, start, 7 * DAY, collect, &sr);
    cr_assert_eq(sr.n, 7 * 96);
    double per_day[7] = {0};
    for (size_t i = 1; i < sr.n; i++) {
      double delta = sr.v[i] - sr.v[i - 1];
      int64_t mid = sr.t[i] - 1; /* the round covers [t - 15m, t) */
      cr_assert_geq(delta, 0);
      if (!office(mid)) {
        cr_assert_eq(delta, 0, "%s grew outside office hours at round %zu",
                     fields[k], i);
      } else if (k == 0) {
        cr_assert_gt(delta, 0, "documents stalled in office hours (%zu)", i);
      }
      per_day[(sr.t[i] - 1 - start) / DAY] += delta;
    }
    cr_assert_gt(per_day[0], 0);              /* Monday */
    cr_assert_gt(per_day[1], 0);              /* Tuesday */
    cr_assert_eq(per_day[2], 0);              /* Quốc khánh */
    cr_assert_gt(per_day[3], 0);              /* Thursday */
    cr_assert_gt(per_day[4], 0);              /* Friday */
    cr_assert_eq(per_day[5] + per_day[6], 0); /* the weekend */
    sim_free(s);
  }
  config_free(cfg);
}

Test(sim, counters_restart_on_the_first_of_january) {
  struct config *cfg = example();
  int64_t start = at("2020-12-31T12:00:00+07:00");
  struct sim *s = make(cfg, 1, start, HOUR, SIM_FORMAT_JSON);
  struct series sr = {.topic = "ioc/Lắk/igate", .field = "received"};
  run(s, start, 2 * DAY, collect, &sr);
  cr_assert_gt(sr.v[0], 1000); /* a year of dossiers */
  cr_assert_eq(sr.v[sr.n - 1], 0, "1 January is a holiday, 2 a Saturday");
  sim_free(s);
  config_free(cfg);
}

static void run_all(const struct config *cfg, uint64_t seed, struct buf *out) {
  int64_t start = at("2020-09-28T06:00:00+07:00");
  struct sim *s = make(cfg, seed, start, 5 * MIN, SIM_FORMAT_JSON);
  const char *specs[] = {"online-drop:district=Ea H'Leo,at=1h,for=3h",
                         "feed-silent:district=Lắk,system=idesk",
                         "backlog:district=M'Đrắk",
                         "bad-payloads:rate=20%",
                         "load:rate=50,series=30,for=10m",
                         "broker-restart:at=2h,exec=echo a, b"};
  struct iocd_err err = {0};
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
    cr_assert_eq(sim_add_scenario(s, specs[i], &err), IOCD_OK, "%s", err.msg);
  }
  run(s, start, 12 * HOUR, record, out);
  sim_free(s);
}

Test(sim, the_same_seed_gives_the_same_messages_byte_for_byte) {
  struct config *cfg = example();
  struct buf a, b, c;
  buf_init(&a, 0);
  buf_init(&b, 0);
  buf_init(&c, 0);
  run_all(cfg, 42, &a);
  run_all(cfg, 42, &b);
  run_all(cfg, 43, &c);
  cr_assert_gt(a.len, 100000);
  cr_assert_eq(a.len, b.len);
  cr_assert_eq(memcmp(a.data, b.data, a.len), 0);
  cr_assert(a.len != c.len || memcmp(a.data, c.data, a.len) != 0);
  cr_assert_not_null(strstr(a.data, "1 broker-restart\techo a, b\n"));
  cr_assert_not_null(strstr(a.data, "ioc/Cư Kuin/line\tsim_load,series="));
  buf_cleanup(&a);
  buf_cleanup(&b);
  buf_cleanup(&c);
  config_free(cfg);
}

/* The online share of a day, and silent feeds, from the recorded igate and
 * idesk messages of a district. */
struct share {
  const char *district;
  char igate[128], idesk[128];
  double first[3], last[3]; /* received, online_l3, online_l4 */
  int nigate, nidesk;
};

static int share_of(void *ud, const struct sim_msg *m) {
  struct share *sh = ud;
  if (m->kind != SIM_MSG_PUBLISH || m->bad) {
    return 0;
  }
  if (strcmp(m->topic, sh->idesk) == 0) {
    sh->nidesk++;
  }
  if (strcmp(m->topic, sh->igate) != 0) {
    return 0;
  }
  cJSON *j = cJSON_ParseWithLength(m->payload, m->len);
  const char *f[] = {"received", "online_l3", "online_l4"};
  for (int k = 0; k < 3; k++) {
    double v = cJSON_GetObjectItemCaseSensitive(j, f[k])->valuedouble;
    if (sh->nigate == 0) {
      sh->first[k] = v;
    }
    sh->last[k] = v;
  }
  sh->nigate++;
  cJSON_Delete(j);
  return 0;
}

static double day_share(const char *district, const char *spec, int *nidesk) {
  struct config *cfg = example();
  int64_t start = at("2020-09-29T00:00:00+07:00");
  struct sim *s = make(cfg, 3, start, 10 * MIN, SIM_FORMAT_JSON);
  struct iocd_err err = {0};
  if (spec) {
    cr_assert_eq(sim_add_scenario(s, spec, &err), IOCD_OK, "%s", err.msg);
  }
  struct share sh = {.district = district};
  snprintf(sh.igate, sizeof sh.igate, "ioc/%s/igate", district);
  snprintf(sh.idesk, sizeof sh.idesk, "ioc/%s/idesk", district);
  run(s, start, DAY, share_of, &sh);
  sim_free(s);
  config_free(cfg);
  *nidesk = sh.nidesk;
  double rec = sh.last[0] - sh.first[0];
  cr_assert_gt(rec, 20);
  return (sh.last[1] - sh.first[1] + sh.last[2] - sh.first[2]) / rec;
}

Test(sim, online_drop_takes_the_district_below_target_and_others_stay) {
  int n;
  double normal = day_share("Ea H'Leo", NULL, &n);
  cr_assert(normal > 0.35 && normal < 0.49, "%f", normal);
  double dropped = day_share("Ea H'Leo",
                             "online-drop:district=Ea H'Leo,at=0s,"
                             "for=1d,share=12%",
                             &n);
  cr_assert(dropped > 0.10 && dropped < 0.13, "%f", dropped);
  double other =
      day_share("Krông Búk", "online-drop:district=Ea H'Leo,at=0s", &n);
  cr_assert(other > 0.35, "%f", other);
}

Test(sim, feed_silent_stops_one_feed_for_its_time) {
  int all, quiet;
  day_share("Krông Pắc", NULL, &all);
  day_share("Krông Pắc",
            "feed-silent:district=Krông Pắc,system=idesk,at=2h,"
            "for=3h",
            &quiet);
  cr_assert_eq(all, 144);
  cr_assert_eq(quiet, 144 - 18);
}

Test(sim, scenarios_that_are_wrong_are_refused_with_the_reason) {
  struct config *cfg = example();
  struct sim *s =
      make(cfg, 1, at("2020-09-28T00:00:00Z"), MIN, SIM_FORMAT_JSON);
  static const struct {
    const char *spec, *why;
  } cases[] = {
      {"online-dip", "unknown"},
      {"online-drop:district=Ea Hleo", "not in sources.districts"},
      {"online-drop:share=150%", "out of range"},
      {"feed-silent:system=vilis", "expected igate"},
      {"backlog:at=soon", "not a duration"},
      {"load:series=0", "count from 1"},
      {"load:rate", "expected key=value"},
      {"bad-payloads:share=1%", "unknown key"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct iocd_err err = {0};
    cr_assert_eq(sim_add_scenario(s, cases[i].spec, &err), IOCD_EINVAL, "%s",
                 cases[i].spec);
    cr_assert_not_null(strstr(err.msg, cases[i].why), "%s: %s", cases[i].spec,
                       err.msg);
  }
  struct iocd_err err = {0};
  cr_assert_eq(
      sim_add_scenarios(s, "s.txt", "# a comment\n\n  backlog:rate=50\nnope\n",
                        &err),
      IOCD_EINVAL);
  cr_assert_not_null(strstr(err.msg, "s.txt:4: "), "%s", err.msg);
  sim_free(s);
  config_free(cfg);
}

/* Each message through iocd's ingest, as iocd would take it at its
 * simulated time. */
struct feed_check {
  struct ingest *in;
  const struct config *cfg;
  size_t good, bad, rejected_good, accepted_bad;
  size_t per_sub[16];
  char first_fail[512];
};

static int no_sink(void *ud, size_t sub, const struct point_batch *pb) {
  (void)ud;
  (void)sub;
  (void)pb;
  return 0;
}

static int ingest_one(void *ud, const struct sim_msg *m) {
  struct feed_check *fc = ud;
  if (m->kind != SIM_MSG_PUBLISH) {
    return 0;
  }
  struct ingest_result res;
  int rc = ingest_message(fc->in, m->topic, m->payload, m->len, NULL, m->sim_ns,
                          &res);
  if (m->bad) {
    fc->bad++;
    fc->accepted_bad += rc == IOCD_OK;
    if (rc == IOCD_OK && !fc->first_fail[0]) {
      snprintf(fc->first_fail, sizeof fc->first_fail, "accepted %s %.*s",
               m->topic, (int)m->len, m->payload);
    }
    return 0;
  }
  fc->good++;
  if (rc != IOCD_OK) {
    fc->rejected_good++;
    if (!fc->first_fail[0]) {
      snprintf(fc->first_fail, sizeof fc->first_fail, "%s %.*s: %s", m->topic,
               (int)m->len, m->payload, res.detail);
    }
  } else if (res.sub >= 0 && res.sub < 16) {
    fc->per_sub[res.sub]++;
  }
  return 0;
}

static size_t sub_index(const struct config *cfg, const char *name) {
  for (size_t i = 0; i < cfg->nsubs; i++) {
    if (strcmp(cfg->subs[i].name, name) == 0) {
      return i;
    }
  }
  cr_assert_fail("no subscription %s", name);
  return 0;
}

static void check_format(enum sim_format f, const char *const *subs) {
  struct config *cfg = example();
  struct stats *st = stats_new();
  struct iocd_err err = {0};
  struct feed_check fc = {.cfg = cfg};
  fc.in = ingest_new(cfg, st, no_sink, NULL, &err);
  cr_assert_not_null(fc.in, "%s", err.msg);
  int64_t start = at("2020-09-28T07:00:00+07:00");
  struct sim *s = make(cfg, 5, start, 30 * MIN, f);
  cr_assert_eq(sim_add_scenario(s, "bad-payloads:rate=30%", &err), IOCD_OK);
  run(s, start, 12 * HOUR, ingest_one, &fc);
  cr_assert_gt(fc.good, 100);
  cr_assert_gt(fc.bad, 5);
  cr_assert_eq(fc.rejected_good, 0, "%s", fc.first_fail);
  cr_assert_eq(fc.accepted_bad, 0, "%s", fc.first_fail);
  for (size_t i = 0; subs[i]; i++) {
    cr_assert_gt(fc.per_sub[sub_index(cfg, subs[i])], 0, "%s", subs[i]);
  }
  sim_free(s);
  ingest_free(fc.in);
  stats_free(st);
  config_free(cfg);
}

Test(sim, json_messages_are_accepted_by_the_example_configuration) {
  const char *subs[] = {"igate", "idesk", "signatures", "line", NULL};
  check_format(SIM_FORMAT_JSON, subs);
}

Test(sim, value_messages_are_accepted_by_the_example_configuration) {
  const char *subs[] = {"sensors", NULL};
  check_format(SIM_FORMAT_VALUE, subs);
}

Test(sim, line_messages_are_accepted_by_the_example_configuration) {
  const char *subs[] = {"line", NULL};
  check_format(SIM_FORMAT_LINE, subs);
}

Test(sim, senml_messages_are_accepted_by_the_example_configuration) {
  const char *subs[] = {"senml", NULL};
  check_format(SIM_FORMAT_SENML, subs);
}

/* Every point of a run with no_time: stamped with the arrival time that
 * ingest was given, never the simulated time. */
struct arrival_check {
  struct ingest *in;
  int64_t arrival;
  size_t points, stamped_elsewhere, rejected;
};

static int arrival_sink(void *ud, size_t sub, const struct point_batch *pb) {
  struct arrival_check *ac = ud;
  (void)sub;
  for (size_t i = 0; i < pb->npoints; i++) {
    ac->points++;
    const struct point *p = &pb->points[i];
    ac->stamped_elsewhere += p->has_ts && p->ts_ns != ac->arrival;
  }
  return 0;
}

static int ingest_at_arrival(void *ud, const struct sim_msg *m) {
  struct arrival_check *ac = ud;
  if (m->kind != SIM_MSG_PUBLISH) {
    return 0;
  }
  cr_assert(strstr(m->payload, "\"time\"") == NULL, "%.*s", (int)m->len,
            m->payload);
  cr_assert(strstr(m->payload, "\"bt\"") == NULL, "%.*s", (int)m->len,
            m->payload);
  struct ingest_result res;
  ac->rejected += ingest_message(ac->in, m->topic, m->payload, m->len, NULL,
                                 ac->arrival, &res) != IOCD_OK;
  return 0;
}

Test(sim, no_time_leaves_the_stamp_to_iocds_arrival_time_in_every_format) {
  const enum sim_format formats[] = {SIM_FORMAT_JSON, SIM_FORMAT_VALUE,
                                     SIM_FORMAT_LINE, SIM_FORMAT_SENML};
  for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
    struct config *cfg = example();
    struct stats *st = stats_new();
    struct iocd_err err = {0};
    /* Years after the simulated day: a timestamp left in a payload would
     * differ from it. */
    struct arrival_check ac = {.arrival = at("2031-03-04T10:00:00+07:00")};
    ac.in = ingest_new(cfg, st, arrival_sink, &ac, &err);
    cr_assert_not_null(ac.in, "%s", err.msg);
    int64_t start = at("2020-09-28T07:00:00+07:00");
    struct sim_opts o = {.cfg = cfg,
                         .seed = 3,
                         .start_ns = start,
                         .speed = 60,
                         .interval_ns = 30 * MIN,
                         .format = formats[k],
                         .no_time = true};
    struct sim *s = sim_new(&o, &err);
    cr_assert_not_null(s, "%s", err.msg);
    run(s, start, 6 * HOUR, ingest_at_arrival, &ac);
    cr_assert_gt(ac.points, 50, "format %zu", k);
    cr_assert_eq(ac.rejected, 0, "format %zu", k);
    cr_assert_eq(ac.stamped_elsewhere, 0, "format %zu", k);
    sim_free(s);
    ingest_free(ac.in);
    stats_free(st);
    config_free(cfg);
  }
}

/* The bad payloads of a run whose simulated clock is years behind the
 * receiver's (a past day replayed): each reaches ingest at the wall clock
 * it was sent at, and the stamp a day ahead is ahead of that one. */
struct wall_check {
  struct ingest *in;
  int64_t wall;
  size_t bad, accepted_bad, future;
  char first_fail[512];
};

static int ingest_at_wall(void *ud, const struct sim_msg *m) {
  struct wall_check *wc = ud;
  if (m->kind != SIM_MSG_PUBLISH || !m->bad) {
    return 0;
  }
  struct ingest_result res;
  int rc = ingest_message(wc->in, m->topic, m->payload, m->len, NULL,
                          wc->wall + m->real_ns, &res);
  wc->bad++;
  wc->future += rc != IOCD_OK && res.reason == INGEST_TIME_FUTURE;
  if (rc == IOCD_OK && wc->accepted_bad++ == 0) {
    snprintf(wc->first_fail, sizeof wc->first_fail, "accepted %s %.*s",
             m->topic, (int)m->len, m->payload);
  }
  return 0;
}

Test(sim, bad_timestamps_are_a_day_ahead_of_the_wall_clock_in_a_replay) {
  const enum sim_format formats[] = {SIM_FORMAT_JSON, SIM_FORMAT_LINE};
  for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
    struct config *cfg = example();
    struct stats *st = stats_new();
    struct iocd_err err = {0};
    struct wall_check wc = {.wall = at("2026-12-07T09:00:00+07:00")};
    wc.in = ingest_new(cfg, st, no_sink, NULL, &err);
    cr_assert_not_null(wc.in, "%s", err.msg);
    int64_t start = at("2020-09-28T07:00:00+07:00");
    struct sim_opts o = {.cfg = cfg,
                         .seed = 9,
                         .start_ns = start,
                         .speed = 60,
                         .interval_ns = 30 * MIN,
                         .format = formats[k],
                         .wall_ns = wc.wall};
    struct sim *s = sim_new(&o, &err);
    cr_assert_not_null(s, "%s", err.msg);
    cr_assert_eq(sim_add_scenario(s, "bad-payloads:rate=100%", &err), IOCD_OK);
    run(s, start, 6 * HOUR, ingest_at_wall, &wc);
    cr_assert_gt(wc.bad, 100, "format %zu", k);
    cr_assert_eq(wc.accepted_bad, 0, "format %zu: %s", k, wc.first_fail);
    cr_assert_gt(wc.future, 10, "format %zu", k);
    sim_free(s);
    ingest_free(wc.in);
    stats_free(st);
    config_free(cfg);
  }
}
