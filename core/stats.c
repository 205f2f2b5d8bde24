/*
 * Metrics registry: families (one name, help and kind) in registration order,
 * each with its series in registration order, so /metrics output is stable.
 * A series is found through one hash table over (name, labels), so that
 * registering the counters of 10,000 subscriptions stays linear; families
 * are few and found by a walk of their list.
 */
#include "core/stats.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"

struct family;

struct series {
  struct series *next;  /* in its family, in registration order */
  struct series *hnext; /* in its hash bucket */
  const struct family *fam;
  uint64_t hash; /* of the family's name and labels */
  char *labels;  /* rendered: k="v",k2="v2" (escaped), or "" */
  struct metric st;
};

struct family {
  struct family *next;
  char *name;
  char *help;
  enum stat_kind kind;
  bool quiet; /* left out of the summary */
  struct series *head, *tail;
};

struct stats {
  struct family *head, *tail;
  struct series **buckets; /* nbuckets, a power of two; NULL when empty */
  size_t nbuckets, nseries;
  struct metric *uptime; /* stats_process_info; NULL before */
  int64_t start_mono_ns;
};

static struct metric dummy;

struct stats *stats_new(void) {
  return calloc(1, sizeof(struct stats));
}

void stats_free(struct stats *s) {
  if (!s) {
    return;
  }
  struct family *f = s->head;
  while (f) {
    struct family *fn = f->next;
    struct series *se = f->head;
    while (se) {
      struct series *sn = se->next;
      free(se->labels);
      free(se);
      se = sn;
    }
    free(f->name);
    free(f->help);
    free(f);
    f = fn;
  }
  free(s->buckets);
  free(s);
}

/* Renders NULL-terminated key/value pairs as Prometheus label text. */
static int render_labels(struct buf *b, va_list ap) {
  const char *k;
  bool first = true;
  while ((k = va_arg(ap, const char *)) != NULL) {
    const char *v = va_arg(ap, const char *);
    if (!v) {
      v = "";
    }
    int rc = buf_printf(b, "%s%s=\"", first ? "" : ",", k);
    if (rc) {
      return rc;
    }
    for (const char *p = v; *p; p++) {
      if (*p == '\\' || *p == '"') {
        rc = buf_putc(b, '\\');
        if (!rc) {
          rc = buf_putc(b, *p);
        }
      } else if (*p == '\n') {
        rc = buf_puts(b, "\\n");
      } else {
        rc = buf_putc(b, *p);
      }
      if (rc) {
        return rc;
      }
    }
    rc = buf_putc(b, '"');
    if (rc) {
      return rc;
    }
    first = false;
  }
  return buf_putc(b, '\0') ? IOCD_ENOMEM : IOCD_OK;
}

static struct family *find_family(struct stats *s, const char *name) {
  for (struct family *f = s->head; f; f = f->next) {
    if (strcmp(f->name, name) == 0) {
      return f;
    }
  }
  return NULL;
}

static uint64_t series_hash(const char *name, const char *labels) {
  return hash_str(hash_str(HASH_START, name), labels);
}

static struct series *find_series(const struct stats *s, struct family *f,
                                  const char *labels) {
  if (!s->buckets) {
    return NULL;
  }
  uint64_t h = series_hash(f->name, labels);
  for (struct series *se = s->buckets[h & (s->nbuckets - 1)]; se;
       se = se->hnext) {
    if (se->hash == h && se->fam == f && strcmp(se->labels, labels) == 0) {
      return se;
    }
  }
  return NULL;
}

/* Adds se to the table, doubling it when it holds as many series as
 * buckets. Returns false when memory runs out (se is not added). */
static bool index_series(struct stats *s, struct series *se) {
  if (s->nseries >= s->nbuckets) {
    size_t n = s->nbuckets ? s->nbuckets * 2 : 64;
    struct series **b = calloc(n, sizeof *b);
    if (!b) {
      return false;
    }
    for (size_t i = 0; i < s->nbuckets; i++) {
      for (struct series *x = s->buckets[i], *xn; x; x = xn) {
        xn = x->hnext;
        x->hnext = b[x->hash & (n - 1)];
        b[x->hash & (n - 1)] = x;
      }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
  }
  struct series **slot = &s->buckets[se->hash & (s->nbuckets - 1)];
  se->hnext = *slot;
  *slot = se;
  s->nseries++;
  return true;
}

static struct metric *reg(struct stats *s, enum stat_kind kind,
                          const char *name, const char *help,
                          const double *bounds, size_t nb, va_list ap) {
  struct buf lb;
  buf_init(&lb, 4096);
  if (render_labels(&lb, ap)) {
    buf_cleanup(&lb);
    return &dummy;
  }
  struct family *f = find_family(s, name);
  if (!f) {
    f = calloc(1, sizeof *f);
    if (!f) {
      goto fail;
    }
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->kind = kind;
    if (!f->name || !f->help) {
      free(f->name);
      free(f->help);
      free(f);
      goto fail;
    }
    if (s->tail) {
      s->tail->next = f;
    } else {
      s->head = f;
    }
    s->tail = f;
  }
  struct series *se = find_series(s, f, lb.data);
  if (se) {
    buf_cleanup(&lb);
    return &se->st;
  }
  se = calloc(1, sizeof *se);
  if (!se) {
    goto fail;
  }
  se->fam = f;
  se->hash = series_hash(f->name, lb.data);
  if (!index_series(s, se)) {
    free(se);
    goto fail;
  }
  se->labels = buf_detach(&lb, NULL);
  se->st.kind = f->kind;
  if (nb > STAT_MAX_BUCKETS) {
    nb = STAT_MAX_BUCKETS;
  }
  se->st.nbounds = bounds ? nb : 0;
  for (size_t i = 0; i < se->st.nbounds; i++) {
    se->st.bounds[i] = bounds[i];
  }
  if (f->tail) {
    f->tail->next = se;
  } else {
    f->head = se;
  }
  f->tail = se;
  return &se->st;
fail:
  buf_cleanup(&lb);
  return &dummy;
}

struct metric *stats_counter(struct stats *s, const char *name,
                             const char *help, ...) {
  va_list ap;
  va_start(ap, help);
  struct metric *st = reg(s, STAT_COUNTER, name, help, NULL, 0, ap);
  va_end(ap);
  return st;
}

struct metric *stats_gauge(struct stats *s, const char *name, const char *help,
                           ...) {
  va_list ap;
  va_start(ap, help);
  struct metric *st = reg(s, STAT_GAUGE, name, help, NULL, 0, ap);
  va_end(ap);
  return st;
}

struct metric *stats_histogram(struct stats *s, const char *name,
                               const char *help, const double *bounds,
                               size_t nbounds, ...) {
  va_list ap;
  va_start(ap, nbounds);
  struct metric *st = reg(s, STAT_HISTOGRAM, name, help, bounds, nbounds, ap);
  va_end(ap);
  return st;
}

void stat_observe(struct metric *st, double v) {
  st->count++;
  st->value += v;
  for (size_t i = 0; i < st->nbounds; i++) {
    if (v <= st->bounds[i]) {
      st->buckets[i]++;
      break;
    }
  }
}

struct metric *stats_find(struct stats *s, const char *name, ...) {
  struct family *f = find_family(s, name);
  if (!f) {
    return NULL;
  }
  struct buf lb;
  buf_init(&lb, 4096);
  va_list ap;
  va_start(ap, name);
  int rc = render_labels(&lb, ap);
  va_end(ap);
  struct series *se = rc ? NULL : find_series(s, f, lb.data);
  buf_cleanup(&lb);
  return se ? &se->st : NULL;
}

/* True when every k="v" of want (comma separated) appears in have. */
static bool labels_contain(const char *have, const char *want) {
  const char *p = want;
  while (*p) {
    const char *end = p;
    bool in_q = false;
    while (*end && (in_q || *end != ',')) {
      if (*end == '\\' && end[1]) {
        end++;
      } else if (*end == '"') {
        in_q = !in_q;
      }
      end++;
    }
    size_t n = (size_t)(end - p);
    bool found = false;
    for (const char *h = have; *h;) {
      const char *he = h;
      bool q = false;
      while (*he && (q || *he != ',')) {
        if (*he == '\\' && he[1]) {
          he++;
        } else if (*he == '"') {
          q = !q;
        }
        he++;
      }
      if ((size_t)(he - h) == n && memcmp(h, p, n) == 0) {
        found = true;
        break;
      }
      h = *he ? he + 1 : he;
    }
    if (!found) {
      return false;
    }
    p = *end ? end + 1 : end;
  }
  return true;
}

/* Converting a negative, NaN or too large double to uint64_t is undefined
 * behaviour, so clamp before truncating. */
static uint64_t gauge_count(double v) {
  if (!(v > 0)) {
    return 0;
  }
  if (v >= 18446744073709551616.0) {
    return UINT64_MAX;
  }
  return (uint64_t)v;
}

uint64_t stats_sum(struct stats *s, const char *name, ...) {
  struct family *f = find_family(s, name);
  if (!f) {
    return 0;
  }
  struct buf lb;
  buf_init(&lb, 4096);
  va_list ap;
  va_start(ap, name);
  int rc = render_labels(&lb, ap);
  va_end(ap);
  uint64_t sum = 0;
  if (!rc) {
    for (struct series *se = f->head; se; se = se->next) {
      if (labels_contain(se->labels, lb.data)) {
        sum += f->kind == STAT_GAUGE ? gauge_count(se->st.value) : se->st.count;
      }
    }
  }
  buf_cleanup(&lb);
  return sum;
}

static const char *kind_name(enum stat_kind k) {
  switch (k) {
    case STAT_COUNTER:
      return "counter";
    case STAT_GAUGE:
      return "gauge";
    case STAT_HISTOGRAM:
      return "histogram";
  }
  return "untyped";
}

static int render_series(struct buf *out, const char *name, const char *suffix,
                         const char *labels, const char *extra) {
  bool any = labels[0] || (extra && extra[0]);
  return buf_printf(out, "%s%s%s%s%s%s%s", name, suffix, any ? "{" : "", labels,
                    labels[0] && extra && extra[0] ? "," : "",
                    extra ? extra : "", any ? "}" : "");
}

/* Writes le="bound" with the bound in the shortest form that reads back
 * as the same double: %g keeps only 6 digits, so a bound of 1234567 would
 * be labelled le="1.23457e+06", a different number. */
static void fmt_bound(char *le, size_t size, double bound) {
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(le, size, "le=\"%.*g\"", prec, bound);
    if (prec == 17 || strtod(le + 4, NULL) == bound) {
      return;
    }
  }
}

/* The exposition format escapes backslash and newline in HELP text; an
 * unescaped newline would end the line and corrupt the whole scrape. */
static int put_help(struct buf *out, const char *help) {
  int rc = IOCD_OK;
  for (const char *p = help; *p && !rc; p++) {
    if (*p == '\\') {
      rc = buf_puts(out, "\\\\");
    } else if (*p == '\n') {
      rc = buf_puts(out, "\\n");
    } else {
      rc = buf_putc(out, *p);
    }
  }
  return rc;
}

void stats_process_info(struct stats *s, const char *version,
                        int64_t started_ns) {
  static const char *const names[] = {
      "iocd_build_info", "iocd_start_time_seconds", "iocd_uptime_seconds"};
  stat_set(
      stats_gauge(s, names[0], "Always 1; the version of iocd in its label.",
                  "version", version, NULL),
      1);
  stat_set(
      stats_gauge(s, names[1],
                  "When iocd started, in seconds since the Unix epoch.", NULL),
      (double)started_ns / 1e9);
  s->uptime = stats_gauge(s, names[2], "Seconds since iocd started.", NULL);
  s->start_mono_ns = clock_mono_ns();
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    struct family *f = find_family(s, names[i]);
    if (f) {
      f->quiet = true;
    }
  }
}

int stats_render_prometheus(struct stats *s, struct buf *out) {
  int rc = IOCD_OK;
  if (s->uptime) {
    stat_set(s->uptime, (double)(clock_mono_ns() - s->start_mono_ns) / 1e9);
  }
  for (struct family *f = s->head; f && !rc; f = f->next) {
    rc = buf_printf(out, "# HELP %s ", f->name);
    if (!rc) {
      rc = put_help(out, f->help);
    }
    if (!rc) {
      rc = buf_printf(out, "\n# TYPE %s %s\n", f->name, kind_name(f->kind));
    }
    for (struct series *se = f->head; se && !rc; se = se->next) {
      const struct metric *st = &se->st;
      if (f->kind == STAT_COUNTER) {
        rc = render_series(out, f->name, "", se->labels, NULL);
        if (!rc) {
          rc = buf_printf(out, " %llu\n", (unsigned long long)st->count);
        }
      } else if (f->kind == STAT_GAUGE) {
        rc = render_series(out, f->name, "", se->labels, NULL);
        if (!rc) {
          rc = buf_printf(out, " %.17g\n", st->value);
        }
      } else {
        uint64_t cum = 0;
        for (size_t i = 0; i < st->nbounds && !rc; i++) {
          char le[64];
          fmt_bound(le, sizeof le, st->bounds[i]);
          cum += st->buckets[i];
          rc = render_series(out, f->name, "_bucket", se->labels, le);
          if (!rc) {
            rc = buf_printf(out, " %llu\n", (unsigned long long)cum);
          }
        }
        if (!rc) {
          rc =
              render_series(out, f->name, "_bucket", se->labels, "le=\"+Inf\"");
        }
        if (!rc) {
          rc = buf_printf(out, " %llu\n", (unsigned long long)st->count);
        }
        if (!rc) {
          rc = render_series(out, f->name, "_sum", se->labels, NULL);
        }
        if (!rc) {
          rc = buf_printf(out, " %.17g\n", st->value);
        }
        if (!rc) {
          rc = render_series(out, f->name, "_count", se->labels, NULL);
        }
        if (!rc) {
          rc = buf_printf(out, " %llu\n", (unsigned long long)st->count);
        }
      }
    }
  }
  return rc;
}

/* Splits rendered labels (k="v",k2="v2", as render_labels writes them) into
 * se's keys and values, unescaped into b, which must not move afterwards:
 * its capacity is reserved first. */
static int split_labels(const char *labels, struct buf *b,
                        struct stats_series *se) {
  buf_reset(b);
  size_t n = strlen(labels) + 1;
  if (buf_reserve(b, n)) {
    return IOCD_ENOMEM;
  }
  char *w = b->data;
  se->nlabels = 0;
  for (const char *p = labels; *p;) {
    const char *eq = strchr(p, '=');
    if (!eq || eq[1] != '"') {
      break; /* never: render_labels wrote it */
    }
    char *key = w;
    memcpy(w, p, (size_t)(eq - p));
    w += eq - p;
    *w++ = '\0';
    char *val = w;
    p = eq + 2;
    while (*p && *p != '"') {
      if (*p == '\\' && p[1]) {
        p++;
        *w++ = *p == 'n' ? '\n' : *p;
      } else {
        *w++ = *p;
      }
      p++;
    }
    *w++ = '\0';
    if (*p == '"') {
      p++;
    }
    if (*p == ',') {
      p++;
    }
    if (se->nlabels < STATS_MAX_LABELS) {
      se->keys[se->nlabels] = key;
      se->values[se->nlabels] = val;
      se->nlabels++;
    }
  }
  return IOCD_OK;
}

int stats_each(struct stats *s, stats_each_fn *fn, void *ud) {
  if (s->uptime) {
    stat_set(s->uptime, (double)(clock_mono_ns() - s->start_mono_ns) / 1e9);
  }
  struct buf b;
  buf_init(&b, 1 << 20);
  int rc = IOCD_OK;
  for (struct family *f = s->head; f && !rc; f = f->next) {
    for (struct series *se = f->head; se && !rc; se = se->next) {
      struct stats_series out = {
          .name = f->name,
          .kind = f->kind,
          .labels = se->labels,
          .metric = &se->st,
      };
      rc = split_labels(se->labels, &b, &out);
      if (!rc) {
        rc = fn(ud, &out);
      }
    }
  }
  buf_cleanup(&b);
  return rc;
}

int stats_render_summary(struct stats *s, struct buf *out) {
  int rc = IOCD_OK;
  bool first = true;
  for (struct family *f = s->head; f && !rc; f = f->next) {
    if (f->kind == STAT_HISTOGRAM || f->quiet) {
      continue;
    }
    for (struct series *se = f->head; se && !rc; se = se->next) {
      if (f->kind == STAT_COUNTER && se->st.count == 0) {
        continue;
      }
      if (f->kind == STAT_GAUGE && se->st.value == 0) {
        continue;
      }
      if (!first) {
        rc = buf_putc(out, ' ');
      }
      first = false;
      if (!rc) {
        rc = render_series(out, f->name, "", se->labels, NULL);
      }
      if (!rc) {
        rc = f->kind == STAT_COUNTER
                 ? buf_printf(out, "=%llu", (unsigned long long)se->st.count)
                 : buf_printf(out, "=%g", se->st.value);
      }
    }
  }
  return rc;
}
