/*
 * iocd-sim: the province's districts and systems publishing their KPIs over
 * MQTT, for demos, tests and benchmarks (docs/simulator.md). This file is
 * the command line and the publisher: it paces the model of sim.c against
 * the monotonic clock (or not at all in a dry run), publishes with
 * libmosquitto, and rides out a broker that goes away: it reconnects with
 * backoff while the simulated clock keeps going, and libmosquitto keeps
 * the QoS 1/2 messages of the outage (up to --queue) to send on reconnect.
 * Only this file exits the process.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <mosquitto.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/timefmt.h"
#include "sim/sim.h"

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static void usage(FILE *out) {
  fprintf(
      out,
      "Usage: iocd-sim -c FILE [options]\n"
      "Publishes the KPIs of the districts of FILE (sources.districts) "
      "over MQTT:\n"
      "iGate dossiers, public services at levels 3 and 4, iDesk documents,\n"
      "digital signatures and iMail accounts, growing in the office hours of\n"
      "FILE's calendar, with scenarios that make the default rules fire.\n"
      "\n"
      "Options:\n"
      "  -c, --config FILE      iocd configuration: districts, calendar, "
      "broker\n"
      "  -H, --host HOST        broker host (default: FILE's mqtt.host)\n"
      "  -p, --port PORT        broker port (default: FILE's mqtt.port)\n"
      "      --client-id ID     default: iocd-sim-<pid>\n"
      "      --qos N            0, 1 (default) or 2\n"
      "  -u, --username NAME    with the password in $IOCD_SIM_PASSWORD\n"
      "      --queue N          messages kept while the broker is away "
      "(100000)\n"
      "  -s, --seed N           random seed (default 1); the same seed, "
      "options\n"
      "                         and scenarios give the same messages\n"
      "      --start TIME       simulated start: RFC 3339, \"now\" or "
      "\"now-DUR\"\n"
      "                         (default: now, or now minus --duration "
      "when\n"
      "                         --speed > 1 without --no-time, so the run "
      "ends\n"
      "                         at the present)\n"
      "      --speed X          simulated seconds per real second "
      "(default 1;\n"
      "                         1440: a simulated day per real minute)\n"
      "      --interval DUR     simulated time between two reports of a "
      "feed\n"
      "                         (default 1m)\n"
      "      --duration DUR     simulated time to run (default: until "
      "stopped;\n"
      "                         1d with --dry-run or --out)\n"
      "  -f, --format F         json (default), value, line or senml\n"
      "      --no-time          no time in the payloads: iocd stamps each\n"
      "                         message on arrival (compressed time for rules\n"
      "                         on iocd's clock; the demo)\n"
      "      --online-share P   the province's online share, levels 3+4 "
      "(40%%;\n"
      "                         the seed's 2020 figure is 16.61%%)\n"
      "      --scenario SPEC    NAME[:key=value,...], repeatable:\n"
      "                           online-drop  district, at (2h), for (6h), "
      "share (10%%)\n"
      "                           feed-silent  district, system (igate), at "
      "(1h), for (1h)\n"
      "                           backlog      district, at (1h), for (4h), "
      "rate (100/h)\n"
      "                           bad-payloads rate (5%%), at, for\n"
      "                           broker-restart at (1h), exec=COMMAND "
      "(last)\n"
      "                           load         rate (1000/s), series "
      "(1000), at, for\n"
      "                         district: a name of sources.districts "
      "(default\n"
      "                         the first) or all; at/for: simulated time\n"
      "      --scenario-file F  one SPEC per line, # comments\n"
      "      --dry-run          write the messages to stdout, do not "
      "connect\n"
      "      --out FILE         write the messages to FILE, do not connect\n"
      "  -q, --quiet            no summary on stderr\n"
      "  -h, --help             this help\n"
      "  -V, --version          print the version\n"
      "\n"
      "Written messages are one per line: TOPIC, a tab, the payload with "
      "\\\\,\n"
      "\\n, \\r and \\t escaped; a broker-restart step is a line \"# "
      "action ...\".\n"
      "SIGINT/SIGTERM stop after the messages in flight are sent.\n"
      "Documentation: docs/simulator.md.\n");
}

struct cli {
  const char *config, *host, *client_id, *username, *out_path;
  const char *start, *scenario_file;
  const char **scenarios;
  size_t nscenarios;
  int port, qos;
  long queue;
  bool dry_run, quiet;
  int64_t duration_ns;
  struct sim_opts o;
};

static int parse_dur(const char *v, int64_t *out) {
  int64_t ms;
  if (config_parse_duration(v, &ms) || ms > INT64_MAX / NS_PER_MS) {
    return -1;
  }
  *out = ms * NS_PER_MS;
  return 0;
}

static int parse_num(const char *v, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (end == v || errno || !isfinite(d) || d < lo || d > hi) {
    return -1;
  }
  if (*end == '%' && end[1] == '\0') {
    d /= 100;
  } else if (*end) {
    return -1;
  }
  *out = d;
  return 0;
}

/* --start: RFC 3339, "now", or "now-DUR". */
static int parse_start(const char *v, int64_t now, int64_t *out) {
  if (strcmp(v, "now") == 0) {
    *out = now;
    return 0;
  }
  if (strncmp(v, "now-", 4) == 0) {
    int64_t d;
    if (parse_dur(v + 4, &d)) {
      return -1;
    }
    *out = now - d;
    return 0;
  }
  return time_parse_rfc3339(v, strlen(v), out, NULL) ? -1 : 0;
}

/* Returns 0 to run, 1 for a usage error, 2 when --help or --version was
 * answered. */
static int parse_args(int argc, char **argv, struct cli *c) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 2;
    }
    if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
      printf("iocd-sim %s\n", IOCD_VERSION);
      return 2;
    }
    if (strcmp(a, "--dry-run") == 0) {
      c->dry_run = true;
      continue;
    }
    if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
      c->quiet = true;
      continue;
    }
    if (strcmp(a, "--no-time") == 0) {
      c->o.no_time = true;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "iocd-sim: %s: unknown option or missing value\n", a);
      return 1;
    }
    const char *v = argv[++i];
    double d;
    bool bad = false;
    if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
      c->config = v;
    } else if (strcmp(a, "-H") == 0 || strcmp(a, "--host") == 0) {
      c->host = v;
    } else if (strcmp(a, "-p") == 0 || strcmp(a, "--port") == 0) {
      bad = parse_num(v, 1, 65535, &d) || d != floor(d);
      c->port = bad ? 0 : (int)d;
    } else if (strcmp(a, "--client-id") == 0) {
      c->client_id = v;
    } else if (strcmp(a, "--qos") == 0) {
      bad = parse_num(v, 0, 2, &d) || d != floor(d);
      c->qos = bad ? 1 : (int)d;
    } else if (strcmp(a, "-u") == 0 || strcmp(a, "--username") == 0) {
      c->username = v;
    } else if (strcmp(a, "--queue") == 0) {
      bad = parse_num(v, 0, 1e8, &d) || d != floor(d);
      c->queue = bad ? 0 : (long)d;
    } else if (strcmp(a, "-s") == 0 || strcmp(a, "--seed") == 0) {
      char *end;
      errno = 0;
      unsigned long long s = strtoull(v, &end, 10);
      bad = end == v || *end || errno || v[0] == '-';
      c->o.seed = (uint64_t)s;
    } else if (strcmp(a, "--start") == 0) {
      c->start = v;
    } else if (strcmp(a, "--speed") == 0) {
      bad = parse_num(v, 1e-3, 1e7, &c->o.speed);
    } else if (strcmp(a, "--interval") == 0) {
      bad = parse_dur(v, &c->o.interval_ns) != 0;
    } else if (strcmp(a, "--duration") == 0) {
      bad = parse_dur(v, &c->duration_ns) != 0;
    } else if (strcmp(a, "-f") == 0 || strcmp(a, "--format") == 0) {
      bad = sim_format_parse(v, &c->o.format) != IOCD_OK;
    } else if (strcmp(a, "--online-share") == 0) {
      bad = parse_num(v, 0, 1, &c->o.online_share) || c->o.online_share <= 0;
    } else if (strcmp(a, "--scenario") == 0) {
      c->scenarios[c->nscenarios++] = v;
    } else if (strcmp(a, "--scenario-file") == 0) {
      c->scenario_file = v;
    } else if (strcmp(a, "--out") == 0) {
      c->out_path = v;
    } else {
      fprintf(stderr, "iocd-sim: %s: unknown option (see --help)\n", a);
      return 1;
    }
    if (bad) {
      fprintf(stderr, "iocd-sim: %s: invalid value \"%s\" (see --help)\n", a,
              v);
      return 1;
    }
  }
  if (!c->config) {
    fprintf(stderr,
            "iocd-sim: -c FILE is required (the iocd configuration "
            "whose districts to simulate)\n");
    return 1;
  }
  return 0;
}

/* ---- writing instead of publishing ------------------------------------ */

struct writer {
  FILE *f;
  struct buf line;
};

static int write_msg(void *ud, const struct sim_msg *m) {
  struct writer *w = ud;
  buf_reset(&w->line);
  int rc = IOCD_OK;
  if (m->kind == SIM_MSG_ACTION) {
    rc = buf_printf(&w->line, "# action %s %.*s\n", m->topic, (int)m->len,
                    m->payload);
  } else {
    rc = buf_printf(&w->line, "%s\t", m->topic);
    for (size_t i = 0; !rc && i < m->len; i++) {
      char ch = m->payload[i];
      const char *esc = ch == '\\'   ? "\\\\"
                        : ch == '\n' ? "\\n"
                        : ch == '\r' ? "\\r"
                        : ch == '\t' ? "\\t"
                                     : NULL;
      rc = esc ? buf_puts(&w->line, esc) : buf_putc(&w->line, ch);
    }
    rc = rc ? rc : buf_putc(&w->line, '\n');
  }
  if (rc) {
    return rc;
  }
  return fwrite(w->line.data, 1, w->line.len, w->f) == w->line.len ? IOCD_OK
                                                                   : IOCD_EIO;
}

/* ---- publishing -------------------------------------------------------- */

struct pub {
  struct mosquitto *mosq;
  const char *host;
  int port, qos;
  bool connected, stopping;
  long queue, queued; /* the cap, and messages published while away */
  uint64_t dropped, actions;
  int64_t retry_at, backoff;
};

static void on_connect(struct mosquitto *mosq, void *ud, int rc) {
  (void)mosq;
  struct pub *p = ud;
  if (rc == 0) {
    p->connected = true;
    p->queued = 0;
    p->backoff = 500 * NS_PER_MS;
    fprintf(stderr, "iocd-sim: connected to %s:%d\n", p->host, p->port);
  }
}

static void on_disconnect(struct mosquitto *mosq, void *ud, int rc) {
  (void)mosq;
  struct pub *p = ud;
  if (p->connected && !p->stopping) {
    fprintf(stderr, "iocd-sim: lost the broker (%s); reconnecting\n",
            mosquitto_strerror(rc));
  }
  p->connected = false;
}

static void lost(struct pub *p) {
  p->connected = false;
  p->retry_at = clock_mono_ns() + p->backoff;
  p->backoff = p->backoff * 2 > 10 * NS_PER_S ? 10 * NS_PER_S : p->backoff * 2;
}

/* Reconnects when the backoff allows it (blocking connect). */
static void try_connect(struct pub *p, bool first) {
  if (p->connected || clock_mono_ns() < p->retry_at) {
    return;
  }
  int rc = first ? mosquitto_connect(p->mosq, p->host, p->port, 30)
                 : mosquitto_reconnect(p->mosq);
  if (rc != MOSQ_ERR_SUCCESS) {
    if (first || p->backoff == 500 * NS_PER_MS) {
      fprintf(stderr, "iocd-sim: cannot connect to %s:%d: %s; retrying\n",
              p->host, p->port,
              rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
    }
    lost(p);
    return;
  }
  /* CONNACK arrives in the loop; publishes until then are queued. */
  p->connected = true;
  p->queued = 0;
}

static int publish_msg(void *ud, const struct sim_msg *m) {
  struct pub *p = ud;
  if (m->kind == SIM_MSG_ACTION) {
    p->actions++;
    fprintf(stderr, "iocd-sim: scenario %s%s%.*s\n", m->topic,
            m->len ? ": running " : " (restart the broker now)", (int)m->len,
            m->payload);
    if (m->len) {
      fflush(stderr);
      int st = system(m->payload);
      if (st != 0) {
        fprintf(stderr, "iocd-sim: the command exited with status %d\n", st);
      }
    }
    return IOCD_OK;
  }
  if (!p->connected && (p->qos == 0 || p->queued >= p->queue)) {
    p->dropped++;
    return IOCD_OK;
  }
  int rc = mosquitto_publish(p->mosq, NULL, m->topic, (int)m->len, m->payload,
                             p->qos, false);
  if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST) {
    /* QoS 1/2 messages stay in libmosquitto's queue for the reconnect. */
    if (p->qos == 0) {
      p->dropped++;
    } else {
      p->queued++;
    }
    if (p->connected) {
      lost(p);
    }
  } else if (rc != MOSQ_ERR_SUCCESS) {
    p->dropped++;
  } else if (!p->connected) {
    p->queued++;
  }
  return IOCD_OK;
}

static void service(struct pub *p, int timeout_ms) {
  if (!p->connected) {
    try_connect(p, false);
    if (!p->connected) {
      struct timespec ts = {0, (long)timeout_ms * 1000000L};
      nanosleep(&ts, NULL);
      return;
    }
  }
  int rc = mosquitto_loop(p->mosq, timeout_ms, 1);
  if (rc != MOSQ_ERR_SUCCESS) {
    on_disconnect(p->mosq, p, rc);
    lost(p);
  }
}

/* ---- the run ----------------------------------------------------------- */

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    return NULL;
  }
  struct buf b;
  buf_init(&b, 1 << 20);
  char chunk[4096];
  size_t n;
  int rc = IOCD_OK;
  while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    rc = buf_append(&b, chunk, n);
  }
  rc = rc ? rc : buf_putc(&b, '\0');
  fclose(f);
  if (rc) {
    buf_cleanup(&b);
    return NULL;
  }
  return buf_detach(&b, NULL);
}

static int run_written(struct sim *s, struct cli *c, int64_t end_real) {
  struct writer w = {.f = stdout};
  if (c->out_path) {
    w.f = fopen(c->out_path, "wb");
    if (!w.f) {
      fprintf(stderr, "iocd-sim: %s: %s\n", c->out_path, strerror(errno));
      return 1;
    }
  }
  buf_init(&w.line, 1 << 22);
  int rc = IOCD_OK;
  while (!rc && !stop_requested && sim_next_ns(s) < end_real) {
    rc = sim_run_until(s, sim_next_ns(s), write_msg, &w);
  }
  buf_cleanup(&w.line);
  if (fflush(w.f) != 0) {
    rc = IOCD_EIO;
  }
  if (c->out_path && fclose(w.f) != 0) {
    rc = IOCD_EIO;
  }
  if (rc) {
    fprintf(stderr, "iocd-sim: writing the messages: %s\n", iocd_strerror(rc));
    return 1;
  }
  return 0;
}

static int run_live(struct sim *s, struct cli *c, const struct config *cfg,
                    int64_t end_real) {
  char id[64];
  if (!c->client_id) {
    snprintf(id, sizeof id, "iocd-sim-%ld", (long)getpid());
  }
  struct pub p = {.host = c->host ? c->host : cfg->mqtt.host,
                  .port = c->port ? c->port : cfg->mqtt.port,
                  .qos = c->qos,
                  .queue = c->queue,
                  .backoff = 500 * NS_PER_MS};
  if (!p.host) {
    p.host = "127.0.0.1";
  }
  if (!p.port) {
    p.port = 1883;
  }
  mosquitto_lib_init();
  p.mosq = mosquitto_new(c->client_id ? c->client_id : id, true, &p);
  if (!p.mosq) {
    fprintf(stderr, "iocd-sim: cannot create the MQTT client\n");
    mosquitto_lib_cleanup();
    return 1;
  }
  mosquitto_connect_callback_set(p.mosq, on_connect);
  mosquitto_disconnect_callback_set(p.mosq, on_disconnect);
  if (c->username) {
    mosquitto_username_pw_set(p.mosq, c->username, getenv("IOCD_SIM_PASSWORD"));
  }
  try_connect(&p, true);
  int64_t t0 = clock_mono_ns();
  int rc = IOCD_OK;
  while (!rc && !stop_requested) {
    int64_t now = clock_mono_ns() - t0;
    int64_t next = sim_next_ns(s);
    if (next >= end_real && now >= end_real) {
      break;
    }
    if (next <= now) {
      rc = sim_run_until(s, now < end_real ? now : end_real - 1, publish_msg,
                         &p);
      service(&p, 0);
      continue;
    }
    int64_t wait = (next < end_real ? next : end_real) - now;
    int wait_ms = (int)(wait / NS_PER_MS);
    service(&p, wait_ms < 1 ? 1 : wait_ms > 100 ? 100 : wait_ms);
  }
  /* Send what is in flight, at most 5 s. */
  int64_t until = clock_mono_ns() + 5 * NS_PER_S;
  while (p.connected && mosquitto_want_write(p.mosq) &&
         clock_mono_ns() < until) {
    service(&p, 50);
  }
  for (int i = 0; p.connected && i < 5; i++) {
    service(&p, 20);
  }
  p.stopping = true;
  mosquitto_disconnect(p.mosq);
  mosquitto_destroy(p.mosq);
  mosquitto_lib_cleanup();
  if (!c->quiet) {
    fprintf(stderr,
            "iocd-sim: %" PRIu64
            " dropped while the broker was "
            "away\n",
            p.dropped);
  }
  return rc ? 1 : 0;
}

int main(int argc, char **argv) {
  const char **specs = calloc((size_t)argc + 1, sizeof *specs);
  if (!specs) {
    return 1;
  }
  struct cli c = {.qos = 1, .queue = 100000, .scenarios = specs};
  c.o.seed = 1;
  int prc = parse_args(argc, argv, &c);
  if (prc) {
    free(specs);
    return prc == 2 ? 0 : 2;
  }
  struct buf errors;
  buf_init(&errors, 1 << 20);
  struct config *cfg = NULL;
  if (config_load(c.config, &cfg, &errors)) {
    fprintf(stderr, "%s", errors.len ? errors.data : "iocd-sim: bad config\n");
    buf_cleanup(&errors);
    free(specs);
    return 1;
  }
  buf_cleanup(&errors);
  bool written = c.dry_run || c.out_path;
  if (written && c.duration_ns == 0) {
    c.duration_ns = INT64_C(86400) * NS_PER_S;
  }
  double speed = c.o.speed == 0 ? 1 : c.o.speed;
  int64_t now = clock_realtime_ns();
  c.o.start_ns = now;
  c.o.wall_ns = written ? 0 : now;
  if (!c.start && speed > 1 && c.duration_ns && !c.o.no_time) {
    c.o.start_ns = now - c.duration_ns;
  }
  int status = 1;
  struct sim *s = NULL;
  char *text = NULL;
  if (c.start && parse_start(c.start, now, &c.o.start_ns)) {
    fprintf(stderr,
            "iocd-sim: --start \"%s\": expected RFC 3339, now or "
            "now-DURATION\n",
            c.start);
    goto out;
  }
  c.o.cfg = cfg;
  struct iocd_err err = {0};
  s = sim_new(&c.o, &err);
  if (!s) {
    fprintf(stderr, "iocd-sim: %s\n", err.msg);
    goto out;
  }
  for (size_t i = 0; i < c.nscenarios; i++) {
    if (sim_add_scenario(s, c.scenarios[i], &err)) {
      fprintf(stderr, "iocd-sim: %s\n", err.msg);
      goto out;
    }
  }
  if (c.scenario_file) {
    text = read_text(c.scenario_file);
    if (!text) {
      fprintf(stderr, "iocd-sim: %s: %s\n", c.scenario_file, strerror(errno));
      goto out;
    }
    if (sim_add_scenarios(s, c.scenario_file, text, &err)) {
      fprintf(stderr, "iocd-sim: %s\n", err.msg);
      goto out;
    }
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);
  int64_t end_real =
      c.duration_ns ? sim_real_at(s, c.o.start_ns + c.duration_ns) : INT64_MAX;
  status =
      written ? run_written(s, &c, end_real) : run_live(s, &c, cfg, end_real);
  struct sim_counts n = sim_counts(s);
  if (!c.quiet) {
    fprintf(stderr,
            "iocd-sim: %" PRIu64 " messages (%" PRIu64
            " malformed on "
            "purpose, %" PRIu64 " load) in %" PRIu64 " rounds\n",
            n.messages, n.bad, n.load, n.ticks);
  }
out:
  free(text);
  sim_free(s);
  config_free(cfg);
  free(specs);
  return status;
}
