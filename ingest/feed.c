/*
 * Feed quality per district: what the IOC needs to tell a district that
 * its data is broken, and why (the district drill-down of the wall). Per
 * district of sources.districts, plus "other" for any district not listed:
 *
 *   iocd_district_messages_total{district}            matched a subscription
 *   iocd_district_messages_accepted_total{district}
 *   iocd_district_rejects_total{district,reason}
 *   iocd_district_late_messages_total{district}       timestamp older than
 *                                                     limits.late_after
 *   iocd_district_future_messages_total{district}     further ahead than
 *                                                     limits.future_after
 *   iocd_district_last_message_seconds{district,system}
 *                                                     arrival of the last
 *                                                     accepted message
 *   iocd_district_silent_periods_total{district,system}
 *                                                     accepted messages that
 *                                                     came more than
 *                                                     limits.silent_after
 *                                                     after the previous one
 *   iocd_district_silent_seconds_total{district,system}
 *                                                     the time between them
 *
 * Silences are measured on iocd's clock (arrival), never on the payload's
 * timestamps, and end only with an accepted message: a district that sends
 * nothing usable is silent. A silence still going on shows as the age of
 * last_message_seconds.
 *
 * The district of a message is the topic's capture named
 * sources.district_tag, else the subscription's static tag of that name,
 * else (accepted messages) the first point's tag; the system likewise with
 * sources.system_tag, "other" when it is none of sources.systems.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/utf8.h"
#include "ingest/ingest_int.h"

static const char other[] = "other";

int ingest__feed_init(struct feed *f, const struct config *cfg,
                      struct stats *stats) {
  const struct config_sources *src = &cfg->sources;
  *f = (struct feed){
      .stats = stats,
      .district_tag = src->district_tag ? src->district_tag : "district",
      .system_tag = src->system_tag ? src->system_tag : "system",
      .districts = src->districts,
      .systems = src->systems,
      .nsystems = src->nsystems,
      .ndistricts = src->ndistricts,
  };
  int64_t late_s = cfg->limits.late_after_s > 0 ? cfg->limits.late_after_s
                                                : INGEST_DEFAULT_LATE_AFTER_S;
  int64_t future_s = cfg->limits.future_after_s > 0
                         ? cfg->limits.future_after_s
                         : INGEST_DEFAULT_FUTURE_AFTER_S;
  int64_t silent_s = cfg->limits.silent_after_s > 0
                         ? cfg->limits.silent_after_s
                         : INGEST_DEFAULT_SILENT_AFTER_S;
  f->late_ns = late_s * NS_PER_SEC;
  f->future_ns = future_s * NS_PER_SEC;
  f->silent_after_ns = silent_s * NS_PER_SEC;
  if (src->ndistricts == 0) {
    return IOCD_OK;
  }
  f->d = calloc(src->ndistricts + 1, sizeof *f->d);
  if (!f->d) {
    return IOCD_ENOMEM;
  }
  for (size_t i = 0; i <= src->ndistricts; i++) {
    struct feed_district *d = &f->d[i];
    d->name = i < src->ndistricts ? src->districts[i] : other;
    d->sys = calloc(f->nsystems + 1, sizeof *d->sys);
    if (!d->sys) {
      ingest__feed_cleanup(f);
      return IOCD_ENOMEM;
    }
    d->messages = stats_counter(
        stats, "iocd_district_messages_total",
        "Messages of a district (the topic's district level) that matched a "
        "subscription.",
        "district", d->name, NULL);
    d->accepted = stats_counter(stats, "iocd_district_messages_accepted_total",
                                "Messages of a district accepted.", "district",
                                d->name, NULL);
    d->late = stats_counter(
        stats, "iocd_district_late_messages_total",
        "Messages of a district with a timestamp older than "
        "limits.late_after at arrival (accepted, or rejected as time_past).",
        "district", d->name, NULL);
    d->future = stats_counter(
        stats, "iocd_district_future_messages_total",
        "Messages of a district with a timestamp further ahead than "
        "limits.future_after at arrival (accepted, or rejected as "
        "time_future).",
        "district", d->name, NULL);
  }
  return IOCD_OK;
}

void ingest__feed_cleanup(struct feed *f) {
  for (size_t i = 0; f->d && i <= f->ndistricts; i++) {
    free(f->d[i].sys);
  }
  free(f->d);
  f->d = NULL;
}

/* The value of the capture called name, or NULL. */
static const struct str *capture_of(const struct capture *caps, size_t ncaps,
                                    const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < ncaps; i++) {
    if (caps[i].name.len == n && memcmp(caps[i].name.p, name, n) == 0) {
      return &caps[i].value;
    }
  }
  return NULL;
}

/* Where the message says its district or system is: see the top. */
static bool find_label(const struct config_subscription *sub,
                       const struct capture *caps, size_t ncaps,
                       const struct point_batch *pb, const char *name,
                       struct str *out) {
  const struct str *c = capture_of(caps, ncaps, name);
  if (c) {
    *out = *c;
    return true;
  }
  for (size_t i = 0; i < sub->ntags; i++) {
    if (strcmp(sub->tags[i].key, name) == 0) {
      *out = (struct str){sub->tags[i].value, strlen(sub->tags[i].value)};
      return true;
    }
  }
  if (pb && pb->npoints > 0) {
    const struct str *t = pb_tag_get(pb, &pb->points[0], name);
    if (t) {
      *out = *t;
      return true;
    }
  }
  return false;
}

static size_t find_name(char *const *names, size_t n, const char *p,
                        size_t len) {
  for (size_t i = 0; i < n; i++) {
    if (strlen(names[i]) == len && memcmp(names[i], p, len) == 0) {
      return i;
    }
  }
  return n;
}

/* The index of s in names, n ("other") when it is none of them. A name
 * written with combining accents is looked up again in NFC, as ingest
 * stores it. */
static size_t lookup(char *const *names, size_t n, const struct str *s) {
  size_t i = find_name(names, n, s->p, s->len);
  if (i < n) {
    return i;
  }
  char *nfc = NULL;
  size_t nlen = 0;
  if (utf8_nfc(s->p, s->len, &nfc, &nlen) == IOCD_OK && nfc) {
    i = find_name(names, n, nfc, nlen);
  }
  free(nfc);
  return i;
}

/* The series of system si of district d, made at its first accepted
 * message. When they exist already (made before a reload), the last
 * arrival and the silences so far are taken from them. */
static struct feed_system *system_of(struct feed *f, struct feed_district *d,
                                     size_t si) {
  struct feed_system *s = &d->sys[si];
  if (s->last) {
    return s;
  }
  const char *name = si < f->nsystems ? f->systems[si] : other;
  s->last = stats_gauge(
      f->stats, "iocd_district_last_message_seconds",
      "When the last accepted message of a district and system arrived, "
      "in seconds since the Unix epoch.",
      "district", d->name, "system", name, NULL);
  s->silences = stats_counter(
      f->stats, "iocd_district_silent_periods_total",
      "Silent periods of a district and system: accepted messages that "
      "arrived more than limits.silent_after after the previous one.",
      "district", d->name, "system", name, NULL);
  s->silent_s = stats_counter(
      f->stats, "iocd_district_silent_seconds_total",
      "Seconds of the silent periods of a district and system, each from "
      "the previous accepted message to the one that ended it.",
      "district", d->name, "system", name, NULL);
  double last = s->last->value;
  uint64_t done = s->silent_s->count;
  s->seen_ns = last > 0 && last < 9e9 ? (int64_t)(last * 1e9) : 0;
  s->silent_total_ns = done < (uint64_t)(INT64_MAX / NS_PER_SEC)
                           ? (int64_t)done * NS_PER_SEC
                           : INT64_MAX;
  return s;
}

/* Records an accepted message of s at now_ns, counting the silence it
 * ends: a gap of exactly limits.silent_after is not one. A clock that went
 * back makes no silence. */
static void arrived(const struct feed *f, struct feed_system *s,
                    int64_t now_ns) {
  if (s->seen_ns > 0 && now_ns > s->seen_ns &&
      now_ns - s->seen_ns > f->silent_after_ns) {
    int64_t gap = now_ns - s->seen_ns;
    int64_t before = s->silent_total_ns / NS_PER_SEC;
    s->silent_total_ns = gap < INT64_MAX - s->silent_total_ns
                             ? s->silent_total_ns + gap
                             : INT64_MAX;
    stat_inc(s->silences);
    stat_add(s->silent_s, (uint64_t)(s->silent_total_ns / NS_PER_SEC - before));
  }
  s->seen_ns = now_ns;
  stat_set(s->last, (double)now_ns / 1e9);
}

/* A message is late (or future) when one of its points is. */
static void time_of_points(const struct feed *f, const struct point_batch *pb,
                           int64_t now_ns, bool *late, bool *future) {
  int64_t lo = now_ns - f->late_ns, hi = now_ns + f->future_ns;
  for (size_t i = 0; pb && i < pb->npoints; i++) {
    *late |= pb->points[i].ts_ns < lo;
    *future |= pb->points[i].ts_ns > hi;
  }
}

void ingest__feed_count(struct feed *f, const struct config_subscription *sub,
                        const struct capture *caps, size_t ncaps,
                        const struct point_batch *pb,
                        const struct ingest_result *res, int64_t now_ns) {
  struct str ds;
  bool accepted = res->reason == INGEST_OK;
  if (!f->d || !find_label(sub, caps, ncaps, accepted ? pb : NULL,
                           f->district_tag, &ds)) {
    return;
  }
  struct feed_district *d = &f->d[lookup(f->districts, f->ndistricts, &ds)];
  stat_inc(d->messages);
  bool late = false, future = false;
  if (!accepted) {
    enum ingest_reason r = res->reason;
    if ((unsigned)r >= INGEST_NREASONS) {
      return;
    }
    if (!d->rejects[r]) {
      d->rejects[r] = stats_counter(
          f->stats, "iocd_district_rejects_total",
          "Messages of a district rejected, by reason.", "district", d->name,
          "reason", ingest_reason_id(r), NULL);
    }
    stat_inc(d->rejects[r]);
    late = r == INGEST_TIME_PAST;
    future = r == INGEST_TIME_FUTURE;
  } else {
    stat_inc(d->accepted);
    time_of_points(f, pb, now_ns, &late, &future);
    struct str ss;
    size_t si = f->nsystems;
    if (find_label(sub, caps, ncaps, pb, f->system_tag, &ss)) {
      si = lookup(f->systems, f->nsystems, &ss);
    }
    arrived(f, system_of(f, d, si), now_ns);
  }
  if (late) {
    stat_inc(d->late);
  }
  if (future) {
    stat_inc(d->future);
  }
}
