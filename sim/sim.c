/*
 * The simulator's model: each configured district's KPI counters, grown in
 * the working calendar's office hours at the rates of the seed (Đắk Lắk,
 * 1 January to 30 September 2020), reported every interval of simulated
 * time on the topics of the example configuration, and the scenarios that
 * bend them.
 *
 * Counters are cumulative since 1 January (local), as iGate's are, and
 * reset when the simulated clock crosses a new year. A district's weight
 * (its share of the province's activity), online share, resolved ratio and
 * usual backlog are drawn once from the seed; the dossiers received in a
 * round vary around the rate, and the online and resolved counts follow
 * them exactly, so the shares the rules compute are the district's own.
 *
 * Determinism: one splitmix64 stream, drawn in a fixed order, and no clock:
 * real offsets are computed from the round number and the speed.
 */
#include "sim/sim.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/timefmt.h"
#include "rules/calendar.h"
#include "sim/sim_int.h"

#define NS_PER_S INT64_C(1000000000)
#define NS_PER_H (INT64_C(3600) * NS_PER_S)
#define NS_PER_DAY (INT64_C(86400) * NS_PER_S)

/* The seed's figures for the province, 1 January to 30 September 2020. */
#define SEED_RECEIVED 221942.0
#define SEED_RESOLVED_RATIO (197552.0 / 221942.0)
#define SEED_L3_SHARE 0.1061
#define SEED_L4_SHARE 0.06
#define SEED_DOCUMENTS 1410312.0
#define SEED_IMAIL 46016.0
#define SEED_SIG_INDIVIDUALS 3402.0
#define SEED_SIG_ORGANISATIONS 725.0
#define SEED_SIG_SIM_PKI 655.0
#define SEED_SERVICES_TOTAL 1626
#define SEED_SERVICES_L3 595
#define SEED_SERVICES_L4 351
/* Working hours of the seed's period in the example calendar, used when the
 * configured calendar has none in 2020. */
#define SEED_HOURS_FALLBACK 1372.0

/* The level-3 part of the online share (10.61 of 16.61 points). */
#define L3_PART (SEED_L3_SHARE / (SEED_L3_SHARE + SEED_L4_SHARE))

int sim_format_parse(const char *s, enum sim_format *out) {
  static const char *const names[] = {"json", "value", "line", "senml"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (strcmp(s, names[i]) == 0) {
      *out = (enum sim_format)i;
      return IOCD_OK;
    }
  }
  return IOCD_EINVAL;
}

uint64_t sim__rand(uint64_t *state) {
  uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

double sim__uniform(uint64_t *state) {
  return (double)(sim__rand(state) >> 11) * 0x1.0p-53;
}

/* ---- the calendar ------------------------------------------------------ */

static struct calendar *make_calendar(const struct config_calendar *c,
                                      struct iocd_err *err) {
  struct cal_span *spans = calloc(c->noffice_hours + 1, sizeof *spans);
  struct cal_dates *hol = calloc(c->nholidays + 1, sizeof *hol);
  struct cal_dates *work = calloc(c->nworkdays + 1, sizeof *work);
  struct calendar *cal = NULL;
  if (!spans || !hol || !work) {
    iocd_err_set(err, IOCD_ENOMEM, "sim: out of memory");
    goto out;
  }
  for (size_t i = 0; i < c->noffice_hours; i++) {
    spans[i] =
        (struct cal_span){c->office_hours[i].start, c->office_hours[i].end};
  }
  for (size_t i = 0; i < c->nholidays; i++) {
    hol[i] = (struct cal_dates){c->holidays[i].first, c->holidays[i].last};
  }
  for (size_t i = 0; i < c->nworkdays; i++) {
    work[i] = (struct cal_dates){c->workdays[i].first, c->workdays[i].last};
  }
  struct calendar_def def = {
      .name = "office_hours",
      .utc_offset_s = c->utc_offset_s,
      .utc_offset_set = true,
      .hours = spans,
      .nhours = c->noffice_hours,
      .weekdays = c->weekdays,
      .holidays = hol,
      .nholidays = c->nholidays,
      .workdays = work,
      .nworkdays = c->nworkdays,
  };
  cal = calendar_new(&def, err); /* copies what it keeps */
out:
  free(spans);
  free(hol);
  free(work);
  return cal;
}

/* Local midnight of 1 January of the year that holds t. */
static int64_t year_start(const struct sim *s, int64_t t, int64_t *year) {
  int64_t local = t + (int64_t)s->utc_offset_s * NS_PER_S;
  int64_t days = local / NS_PER_DAY - (local % NS_PER_DAY < 0);
  int64_t y;
  unsigned m, d;
  time_civil_from_days(days, &y, &m, &d);
  if (year) {
    *year = y;
  }
  return time_days_from_civil(y, 1, 1) * NS_PER_DAY -
         (int64_t)s->utc_offset_s * NS_PER_S;
}

static double working_hours(const struct sim *s, int64_t from, int64_t to) {
  return (double)calendar_working_ns(s->cal, from, to) / (double)NS_PER_H;
}

/* ---- the districts ----------------------------------------------------- */

/* Grows d's counters by h working hours. */
static void grow(struct sim *s, struct sim_district *d, double h, double share,
                 bool noisy) {
  if (h <= 0) {
    return;
  }
  double jitter = noisy ? 0.6 + 0.8 * sim__uniform(&s->rng) : 1.0;
  double inc = s->rate_received * d->weight * h * jitter;
  d->received += inc;
  d->resolved += inc * d->resolved_ratio;
  d->online_l3 += inc * share * L3_PART;
  d->online_l4 += inc * share * (1.0 - L3_PART);
  double docs = s->rate_documents * d->weight * h;
  d->documents_sent += docs * (noisy ? 0.8 + 0.4 * sim__uniform(&s->rng) : 1);
  d->documents_received +=
      docs * (noisy ? 0.8 + 0.4 * sim__uniform(&s->rng) : 1);
  d->sig_individuals += s->rate_sig_individuals * d->weight * h;
  d->sig_organisations += s->rate_sig_organisations * d->weight * h;
  d->sig_sim_pki += s->rate_sig_sim_pki * d->weight * h;
  d->imail += s->rate_imail * d->weight * h;
}

/* The counters as they stand at t, from 1 January: the values a district
 * publishes first, or after the new year's reset. */
static void reset_counters(struct sim *s, struct sim_district *d, int64_t t,
                           bool new_year) {
  double imail = d->imail;
  d->received = d->resolved = d->online_l3 = d->online_l4 = 0;
  d->documents_sent = d->documents_received = 0;
  d->sig_individuals = d->sig_organisations = d->sig_sim_pki = 0;
  d->imail = new_year ? imail : SEED_IMAIL * d->weight;
  grow(s, d, working_hours(s, year_start(s, t, NULL), t), d->online_share,
       false);
}

int sim_district_index(const struct sim *s, const char *name) {
  for (size_t i = 0; i < s->nd; i++) {
    if (strcmp(s->d[i].name, name) == 0) {
      return (int)i;
    }
  }
  return -1;
}

struct sim *sim_new(const struct sim_opts *o, struct iocd_err *err) {
  if (!o || !o->cfg || o->cfg->sources.ndistricts == 0) {
    iocd_err_set(err, IOCD_EINVAL,
                 "sim: the configuration names no districts "
                 "(sources.districts)");
    return NULL;
  }
  double speed = o->speed == 0 ? 1.0 : o->speed;
  double share = o->online_share == 0 ? 0.40 : o->online_share;
  int64_t interval = o->interval_ns == 0 ? 60 * NS_PER_S : o->interval_ns;
  if (!(speed > 0 && speed <= 1e7) || !(share > 0 && share < 1) ||
      interval < 1000000 || interval > NS_PER_DAY) {
    iocd_err_set(err, IOCD_EINVAL,
                 "sim: speed must be in (0, 1e7], the online share in "
                 "(0, 1) and the interval between 1ms and 1d");
    return NULL;
  }
  struct sim *s = calloc(1, sizeof *s);
  if (!s) {
    iocd_err_set(err, IOCD_ENOMEM, "sim: out of memory");
    return NULL;
  }
  s->cfg = o->cfg;
  s->format = o->format;
  s->no_time = o->no_time;
  s->speed = speed;
  s->interval = interval;
  s->start = o->start_ns;
  s->wall = o->wall_ns;
  s->rng = o->seed;
  s->utc_offset_s = o->cfg->calendar.utc_offset_s;
  buf_init(&s->topic, 4096);
  buf_init(&s->payload, 1 << 20);
  s->cal = make_calendar(&o->cfg->calendar, err);
  s->nd = o->cfg->sources.ndistricts;
  s->d = calloc(s->nd, sizeof *s->d);
  if (!s->cal || !s->d) {
    if (s->cal) {
      iocd_err_set(err, IOCD_ENOMEM, "sim: out of memory");
    }
    sim_free(s);
    return NULL;
  }
  /* The seed's rates per working hour of the province. */
  int64_t y0 = time_days_from_civil(2020, 1, 1) * NS_PER_DAY -
               (int64_t)s->utc_offset_s * NS_PER_S;
  int64_t y1 = time_days_from_civil(2020, 10, 1) * NS_PER_DAY -
               (int64_t)s->utc_offset_s * NS_PER_S;
  double hours = working_hours(s, y0, y1);
  if (hours < 100) {
    hours = SEED_HOURS_FALLBACK;
  }
  s->rate_received = SEED_RECEIVED / hours;
  s->rate_documents = SEED_DOCUMENTS / hours;
  s->rate_sig_individuals = SEED_SIG_INDIVIDUALS / hours;
  s->rate_sig_organisations = SEED_SIG_ORGANISATIONS / hours;
  s->rate_sig_sim_pki = SEED_SIG_SIM_PKI / hours;
  s->rate_imail = SEED_IMAIL * 0.05 / hours; /* 5% more accounts a year */
  double wsum = 0;
  for (size_t i = 0; i < s->nd; i++) {
    struct sim_district *d = &s->d[i];
    d->name = o->cfg->sources.districts[i];
    d->weight = 0.5 + sim__uniform(&s->rng);
    wsum += d->weight;
    /* Between 3 points under and 7 over the province's share, and a
     * resolved ratio of 87% to 92% around the seed's 89%. */
    d->online_share = share - 0.03 + 0.10 * sim__uniform(&s->rng);
    d->resolved_ratio =
        SEED_RESOLVED_RATIO - 0.02 + 0.05 * sim__uniform(&s->rng);
    d->overdue_base = 20 + 80 * sim__uniform(&s->rng);
    d->overdue = d->overdue_base;
  }
  for (size_t i = 0; i < s->nd; i++) {
    s->d[i].weight /= wsum;
    reset_counters(s, &s->d[i], s->start, false);
  }
  return s;
}

void sim_free(struct sim *s) {
  if (!s) {
    return;
  }
  for (size_t i = 0; i < s->nsc; i++) {
    free(s->sc[i].exec);
  }
  free(s->sc);
  free(s->d);
  calendar_free(s->cal);
  buf_cleanup(&s->topic);
  buf_cleanup(&s->payload);
  free(s);
}

/* ---- time -------------------------------------------------------------- */

int64_t sim_clock(const struct sim *s, int64_t real_ns) {
  return s->start + (int64_t)((double)real_ns * s->speed);
}

int64_t sim_real_at(const struct sim *s, int64_t sim_ns) {
  double off = (double)(sim_ns - s->start) / s->speed;
  return off <= 0 ? 0 : (int64_t)ceil(off);
}

static int64_t tick_real(const struct sim *s, uint64_t k) {
  return sim_real_at(s, s->start + (int64_t)k * s->interval);
}

int64_t sim_next_ns(const struct sim *s) {
  int64_t next = tick_real(s, s->next_tick);
  for (size_t i = 0; i < s->nsc; i++) {
    const struct sim_scenario *c = &s->sc[i];
    if (c->kind == SIM_SC_LOAD && !c->done && c->load_next < next) {
      next = c->load_next;
    }
    if (c->kind == SIM_SC_BROKER && !c->done) {
      int64_t at = sim_real_at(s, s->start + c->at);
      next = at < next ? at : next;
    }
  }
  return next;
}

struct sim_counts sim_counts(const struct sim *s) {
  return s->counts;
}

/* ---- one round of reports ---------------------------------------------- */

bool sim__active(const struct sim *s, const struct sim_scenario *c, int64_t t) {
  int64_t off = t - s->start;
  return off >= c->at && (c->dur == 0 || off < c->at + c->dur);
}

/* The online share of district i at t, under the online-drop scenarios. */
static double online_share(const struct sim *s, size_t i, int64_t t) {
  double share = s->d[i].online_share;
  for (size_t k = 0; k < s->nsc; k++) {
    const struct sim_scenario *c = &s->sc[k];
    if (c->kind == SIM_SC_ONLINE_DROP &&
        (c->district < 0 || (size_t)c->district == i) && sim__active(s, c, t)) {
      share = c->value;
    }
  }
  return share;
}

/* Moves the overdue backlog over [from, to): a small walk around the
 * district's usual level in office hours, steady growth under backlog, and
 * a return towards the usual level afterwards. */
static void move_overdue(struct sim *s, size_t i, int64_t from, int64_t to,
                         double h) {
  struct sim_district *d = &s->d[i];
  double hours = (double)(to - from) / (double)NS_PER_H;
  bool growing = false;
  for (size_t k = 0; k < s->nsc; k++) {
    const struct sim_scenario *c = &s->sc[k];
    if (c->kind == SIM_SC_BACKLOG &&
        (c->district < 0 || (size_t)c->district == i) &&
        sim__active(s, c, to)) {
      d->overdue += c->value * hours;
      growing = true;
    }
  }
  double u = sim__uniform(&s->rng);
  if (!growing) {
    double pull = hours * 0.5 > 1 ? 1 : hours * 0.5;
    d->overdue += (d->overdue_base - d->overdue) * pull;
    d->overdue += (u - 0.5) * 4.0 * h;
  }
  if (d->overdue < 0) {
    d->overdue = 0;
  }
}

/* True when feed `system` of district i is silenced at t. */
bool sim__silent(const struct sim *s, size_t i, const char *system, int64_t t) {
  for (size_t k = 0; k < s->nsc; k++) {
    const struct sim_scenario *c = &s->sc[k];
    if (c->kind == SIM_SC_FEED_SILENT &&
        (c->district < 0 || (size_t)c->district == i) &&
        (!c->system[0] || strcmp(c->system, system) == 0) &&
        sim__active(s, c, t)) {
      return true;
    }
  }
  return false;
}

static double bad_rate(const struct sim *s, int64_t t) {
  double r = 0;
  for (size_t k = 0; k < s->nsc; k++) {
    const struct sim_scenario *c = &s->sc[k];
    if (c->kind == SIM_SC_BAD && sim__active(s, c, t)) {
      r += c->value;
    }
  }
  return r > 1 ? 1 : r;
}

static int tick(struct sim *s, sim_emit_fn *emit, void *ud) {
  uint64_t k = s->next_tick++;
  int64_t t = s->start + (int64_t)k * s->interval;
  int64_t real = tick_real(s, k);
  int64_t prev = t - s->interval;
  s->counts.ticks++;
  if (k > 0) {
    int64_t y_prev, y_now;
    int64_t ys = year_start(s, t, &y_now);
    year_start(s, prev, &y_prev);
    for (size_t i = 0; i < s->nd; i++) {
      struct sim_district *d = &s->d[i];
      int64_t from = prev;
      if (y_now != y_prev) {
        reset_counters(s, d, ys, true);
        from = ys;
      }
      double h = working_hours(s, from, t);
      grow(s, d, h, online_share(s, i, t), true);
      move_overdue(s, i, prev, t, h);
    }
  }
  /* The province's figures once per simulated hour (and at the start). */
  bool hourly = k == 0 || (t / NS_PER_H) != (prev / NS_PER_H);
  if (hourly) {
    int rc = sim__emit_province(s, t, real, SEED_SERVICES_TOTAL,
                                SEED_SERVICES_L3, SEED_SERVICES_L4, emit, ud);
    if (rc) {
      return rc;
    }
  }
  double bad = bad_rate(s, t);
  for (size_t i = 0; i < s->nd; i++) {
    int rc = sim__emit_district(s, i, t, real, emit, ud);
    if (rc) {
      return rc;
    }
    if (bad > 0 && sim__uniform(&s->rng) < bad) {
      rc = sim__emit_bad(s, i, t, real, emit, ud);
      if (rc) {
        return rc;
      }
    }
  }
  return IOCD_OK;
}

int sim_run_until(struct sim *s, int64_t real_ns, sim_emit_fn *emit, void *ud) {
  for (;;) {
    int64_t next_tick = tick_real(s, s->next_tick);
    /* Scenario steps due before the next round go first. */
    struct sim_scenario *first = NULL;
    int64_t first_at = next_tick;
    for (size_t i = 0; i < s->nsc; i++) {
      struct sim_scenario *c = &s->sc[i];
      if (c->done) {
        continue;
      }
      int64_t at = c->kind == SIM_SC_LOAD     ? c->load_next
                   : c->kind == SIM_SC_BROKER ? sim_real_at(s, s->start + c->at)
                                              : INT64_MAX;
      if (at < first_at) {
        first = c;
        first_at = at;
      }
    }
    if (first_at > real_ns) {
      return IOCD_OK;
    }
    int rc;
    if (!first) {
      rc = tick(s, emit, ud);
    } else if (first->kind == SIM_SC_BROKER) {
      first->done = true;
      struct sim_msg m = {.kind = SIM_MSG_ACTION,
                          .topic = "broker-restart",
                          .payload = first->exec ? first->exec : "",
                          .len = first->exec ? strlen(first->exec) : 0,
                          .sim_ns = s->start + first->at,
                          .real_ns = first_at};
      rc = emit(ud, &m); /* main.c's on_msg or the caller's recorder */
    } else {
      rc = sim__emit_load(s, first, first_at, emit, ud);
    }
    if (rc) {
      return rc;
    }
  }
}
