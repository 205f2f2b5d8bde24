/*
 * The simulator's scenarios, read from "NAME:key=value,key=value" (the
 * command line's --scenario, or one per line of a --scenario-file). Times
 * are simulated: "at" counts from the start of the run, "for" is how long
 * the scenario lasts (0 or absent: to the end). docs/simulator.md lists the
 * keys and defaults of each.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "sim/sim_int.h"

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_H (INT64_C(3600000) * NS_PER_MS)

static const struct {
  const char *name;
  enum sim_scenario_kind kind;
  int64_t at, dur; /* defaults */
  double value;
} kinds[] = {
    {"online-drop", SIM_SC_ONLINE_DROP, 2 * NS_PER_H, 6 * NS_PER_H, 0.10},
    {"feed-silent", SIM_SC_FEED_SILENT, NS_PER_H, NS_PER_H, 0},
    {"backlog", SIM_SC_BACKLOG, NS_PER_H, 4 * NS_PER_H, 100},
    {"bad-payloads", SIM_SC_BAD, 0, 0, 0.05},
    {"broker-restart", SIM_SC_BROKER, NS_PER_H, 0, 0},
    {"load", SIM_SC_LOAD, 0, 0, 1000},
};

/* A duration as the configuration writes it ("90m", "1d", "0s"). */
static int duration(const char *v, int64_t *out) {
  int64_t ms;
  if (config_parse_duration(v, &ms) || ms > INT64_MAX / NS_PER_MS) {
    return IOCD_EINVAL;
  }
  *out = ms * NS_PER_MS;
  return IOCD_OK;
}

/* A number, or a percentage "10%" as a fraction when pct_ok. */
static int number(const char *v, bool pct_ok, double *out) {
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (end == v || errno || !isfinite(d) || d < 0) {
    return IOCD_EINVAL;
  }
  if (pct_ok && *end == '%') {
    d /= 100;
    end++;
  }
  if (*end) {
    return IOCD_EINVAL;
  }
  *out = d;
  return IOCD_OK;
}

static int set_key(struct sim *s, struct sim_scenario *c, const char *key,
                   const char *v, struct iocd_err *err) {
  if (strcmp(key, "district") == 0) {
    c->district = strcmp(v, "all") == 0 ? -1 : sim_district_index(s, v);
    if (c->district == -1 && strcmp(v, "all") != 0) {
      return iocd_err_set(err, IOCD_EINVAL,
                          "district \"%s\" is not in sources.districts", v);
    }
    return IOCD_OK;
  }
  if (strcmp(key, "system") == 0 && c->kind == SIM_SC_FEED_SILENT) {
    static const char *const feeds[] = {"igate", "idesk", "signatures",
                                        "imail"};
    if (strcmp(v, "all") == 0) {
      c->system[0] = '\0';
      return IOCD_OK;
    }
    for (size_t i = 0; i < sizeof feeds / sizeof feeds[0]; i++) {
      if (strcmp(v, feeds[i]) == 0) {
        memcpy(c->system, v, strlen(v) + 1);
        return IOCD_OK;
      }
    }
    return iocd_err_set(err, IOCD_EINVAL,
                        "system \"%s\": expected igate, idesk, signatures, "
                        "imail or all",
                        v);
  }
  if (strcmp(key, "at") == 0 || strcmp(key, "for") == 0) {
    if (duration(v, key[0] == 'a' ? &c->at : &c->dur)) {
      return iocd_err_set(err, IOCD_EINVAL,
                          "%s: \"%s\" is not a duration (\"90m\", \"1d\")", key,
                          v);
    }
    return IOCD_OK;
  }
  bool share = strcmp(key, "share") == 0 && c->kind == SIM_SC_ONLINE_DROP;
  bool rate = strcmp(key, "rate") == 0 &&
              (c->kind == SIM_SC_BACKLOG || c->kind == SIM_SC_BAD ||
               c->kind == SIM_SC_LOAD);
  if (share || rate) {
    double d;
    if (number(v, share || c->kind == SIM_SC_BAD, &d) ||
        ((share || c->kind == SIM_SC_BAD) && d > 1) ||
        (c->kind == SIM_SC_LOAD && (d <= 0 || d > 1e7))) {
      return iocd_err_set(err, IOCD_EINVAL, "%s: \"%s\" is out of range", key,
                          v);
    }
    c->value = d;
    return IOCD_OK;
  }
  if (strcmp(key, "series") == 0 && c->kind == SIM_SC_LOAD) {
    double d;
    if (number(v, false, &d) || d < 1 || d > 1e7 || d != floor(d)) {
      return iocd_err_set(err, IOCD_EINVAL,
                          "series: \"%s\" is not a count from 1", v);
    }
    c->series = (uint64_t)d;
    return IOCD_OK;
  }
  return iocd_err_set(err, IOCD_EINVAL, "unknown key \"%s\"", key);
}

static int parse(struct sim *s, const char *spec, struct sim_scenario *c,
                 char *work, struct iocd_err *err) {
  char *colon = strchr(work, ':');
  if (colon) {
    *colon = '\0';
  }
  size_t k = 0;
  while (k < sizeof kinds / sizeof kinds[0] &&
         strcmp(kinds[k].name, work) != 0) {
    k++;
  }
  if (k == sizeof kinds / sizeof kinds[0]) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "scenario \"%s\": unknown (online-drop, feed-silent, "
                        "backlog, bad-payloads, broker-restart, load)",
                        work);
  }
  *c = (struct sim_scenario){.kind = kinds[k].kind,
                             .district = 0,
                             .system = "igate",
                             .at = kinds[k].at,
                             .dur = kinds[k].dur,
                             .value = kinds[k].value,
                             .series = 1000};
  if (c->kind == SIM_SC_BAD || c->kind == SIM_SC_LOAD ||
      c->kind == SIM_SC_BROKER) {
    c->district = -1;
  }
  char *p = colon ? colon + 1 : NULL;
  while (p && *p) {
    char *eq = strchr(p, '=');
    if (!eq) {
      return iocd_err_set(err, IOCD_EINVAL,
                          "scenario \"%s\": expected key=value at \"%s\"", spec,
                          p);
    }
    *eq = '\0';
    char *v = eq + 1;
    if (strcmp(p, "exec") == 0 && c->kind == SIM_SC_BROKER) {
      /* The command is the rest of the spec, commas and all. */
      c->exec = mem_strdup(v);
      if (!c->exec) {
        return iocd_err_set(err, IOCD_ENOMEM, "out of memory");
      }
      break;
    }
    char *comma = strchr(v, ',');
    if (comma) {
      *comma = '\0';
    }
    int rc = set_key(s, c, p, v, err);
    if (rc) {
      iocd_err_prefix(err, "scenario \"%s\": ", spec);
      return rc;
    }
    p = comma ? comma + 1 : NULL;
  }
  return IOCD_OK;
}

int sim_add_scenario(struct sim *s, const char *spec, struct iocd_err *err) {
  char *work = mem_strdup(spec);
  struct sim_scenario c = {0};
  if (!work) {
    return iocd_err_set(err, IOCD_ENOMEM, "out of memory");
  }
  int rc = parse(s, spec, &c, work, err);
  free(work);
  if (rc) {
    free(c.exec);
    return rc;
  }
  if (c.kind == SIM_SC_LOAD) {
    c.load_start = sim_real_at(s, s->start + c.at);
    c.load_next = c.load_start;
  }
  struct sim_scenario *v = realloc(s->sc, (s->nsc + 1) * sizeof *v);
  if (!v) {
    free(c.exec);
    return iocd_err_set(err, IOCD_ENOMEM, "out of memory");
  }
  s->sc = v;
  s->sc[s->nsc++] = c;
  return IOCD_OK;
}

int sim_add_scenarios(struct sim *s, const char *name, const char *text,
                      struct iocd_err *err) {
  int lineno = 0;
  const char *p = text;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    lineno++;
    while (n && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t')) {
      n--;
    }
    size_t lead = 0;
    while (lead < n && (p[lead] == ' ' || p[lead] == '\t')) {
      lead++;
    }
    if (n > lead && p[lead] != '#') {
      char *line = malloc(n - lead + 1);
      if (!line) {
        return iocd_err_set(err, IOCD_ENOMEM, "out of memory");
      }
      memcpy(line, p + lead, n - lead);
      line[n - lead] = '\0';
      int rc = sim_add_scenario(s, line, err);
      free(line);
      if (rc) {
        iocd_err_prefix(err, "%s:%d: ", name, lineno);
        return rc;
      }
    }
    p = nl ? nl + 1 : p + n;
  }
  return IOCD_OK;
}
