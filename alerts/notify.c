/*
 * Alert delivery on the loop (notify.h): the dispatcher (pure) driven by a
 * timer at the instant it asks for, its notices handed to the courier (the
 * outbox and the senders), and the silences and acknowledgements kept in
 * data_dir:
 *
 *   silences.json  the silence set, rewritten (file_write_atomic) after
 *                  every change and when expired ones are collected;
 *   acks.jsonl     the audit trail of acknowledgements, appended and
 *                  synced line by line, replayed at start;
 *   notified.json  the alerts the receivers were told fire and not yet
 *                  that they resolved, {"<id>": true, ...}: an alert
 *                  enters with the first alerts or escalation notice that
 *                  carries it firing and the courier queued, leaves with
 *                  the first that carries it resolved (or when a new
 *                  episode of it starts while the dispatcher holds it as
 *                  never notified). Rewritten (file_write_atomic, synced
 *                  as the outbox's files are) on the thread pool after the
 *                  tick that changed it, one write at a time.
 *
 * At start the rules engine's restored alerts come through notify_restore:
 * one in notified.json is restored as notified (no second firing notice,
 * its resolved one still due), the others as new. notify_restore_done ends
 * the restore: the entries no restored firing alert claimed are dropped.
 *
 * A notice that could not be delivered is raised as an alert of its own,
 * iocd_notification_failed{receiver=...}, through the dispatcher, so it
 * reaches the other receivers its route names; it resolves when a later
 * notice reaches that receiver.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerts/courier.h"
#include "alerts/dispatch.h"
#include "alerts/match.h"
#include "alerts/notify_int.h"
#include "alerts/rules_setup.h"
#include "alerts/template.h"
#include "core/clock.h"
#include "core/container.h"
#include "core/file.h"
#include "core/log.h"
#include "core/timefmt.h"

#define MOD "notify"

/* The dispatcher's timer runs at least this often, for the collection of
 * expired silences and the gauges. */
#define NOTIFY_POLL_MS 10000

/* The alert raised for a notice given up on. */
#define NOTIFY_FAILED_RULE "iocd_notification_failed"

/* The audit trail the API shows: at most this many of its last lines. */
#define NOTIFY_AUDIT_LINES 1000
#define NOTIFY_AUDIT_READ (4u << 20)

/* An alert the receivers were told fires. */
struct notified {
  uint64_t id;
  bool claimed; /* notified since the start, or restored firing */
};

struct notify {
  uv_timer_t timer; /* n is freed in its close callback, after the courier */
  uv_loop_t *loop;
  const struct config *cfg;
  struct calendar *cal;
  struct template_set *tmpl[2]; /* by enum config_language */
  struct dispatch *d;
  struct courier *courier;
  char *silences_path;
  char *acks_path;
  char *notified_path;
  int acks_fd;
  struct notified *notified; /* by id */
  size_t nnotified, capnotified;
  bool notified_dirty; /* notified.json is behind */
  /* notified.json is written on the thread pool, one write at a time, so
   * that no rename holds up the loop (and the next notice's request). */
  uv_work_t notified_work;
  struct buf notified_text;
  bool notified_sync;
  bool notified_busy;
  int notified_errno;
  bool restoring; /* from notify_new to notify_restore_done */
  size_t restored, restored_notified;
  bool stopped;
  bool closing;
  int closes; /* handles and courier still closing */
  notify_closed_fn *closed_cb;
  void *closed_ud;
  notify_ack_fn *on_ack; /* NULL: nobody hears of acknowledgements */
  void *ack_ud;
  struct metric *st_notices, *st_submit_failures, *st_alerts_refused;
  struct metric *st_storm_folded, *st_flapping, *st_silences, *st_acks;
  struct metric *st_groups;
  uint64_t notices_seen, folded_seen, refused_seen, flapping_seen;
};

/* ---- the calendar and the templates of a configuration ---- */

static int make_calendar(const struct config *cfg, struct calendar **out,
                         struct iocd_err *err) {
  struct rules_setup rs;
  int rc = rules_setup_init(&rs, cfg, err);
  if (rc) {
    return rc;
  }
  *out = calendar_new(&rs.cal, err);
  rules_setup_cleanup(&rs);
  return *out ? IOCD_OK : IOCD_EINVAL;
}

static int make_templates(const struct config *cfg, struct template_set *ts[2],
                          struct iocd_err *err) {
  for (int lang = 0; lang < 2; lang++) {
    struct template_opts o = {
        .lang = (enum config_language)lang,
        .utc_offset_s = cfg->calendar.utc_offset_s,
        .district_label = cfg->sources.district_tag,
        .system_label = cfg->sources.system_tag,
    };
    int rc = template_set_new(&cfg->notify, &o, &ts[lang], err);
    if (rc) {
      template_set_free(ts[0]);
      ts[0] = NULL;
      return rc;
    }
  }
  return IOCD_OK;
}

static const struct template_set *templates_for(
    void *ud, const struct config_receiver *r) {
  struct notify *n = ud;
  return n->tmpl[r && r->language == CONFIG_LANG_EN ? 1 : 0];
}

static void noop_emit(void *ud, struct notice *x) {
  (void)ud;
  notice_free(x);
}

int notify_check(const struct config *cfg, struct iocd_err *err) {
  if (!cfg->notify.enabled) {
    return IOCD_OK;
  }
  struct calendar *cal = NULL;
  struct template_set *ts[2] = {NULL, NULL};
  int rc = make_calendar(cfg, &cal, err);
  if (!rc) {
    rc = make_templates(cfg, ts, err);
  }
  if (!rc) {
    struct dispatch_opts o = {
        .cfg = &cfg->notify,
        .cal = cal,
        .emit = noop_emit,
        .now_ns = clock_realtime_ns(),
    };
    struct dispatch *d = dispatch_new(&o, err);
    rc = d ? IOCD_OK : IOCD_EINVAL;
    dispatch_free(d);
  }
  template_set_free(ts[0]);
  template_set_free(ts[1]);
  calendar_free(cal);
  return rc;
}

/* ---- files ---- */

static char *path_in(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p) {
    snprintf(p, n, "%s/%s", dir, name);
  }
  return p;
}

static void save_silences(struct notify *n) {
  struct buf b;
  buf_init(&b, 64u << 20);
  struct iocd_err err = {{0}};
  int rc = silence_set_to_json(dispatch_silences(n->d), &b);
  if (rc) {
    iocd_err_set(&err, rc, "%s", iocd_strerror(rc));
  } else if ((rc = file_write_atomic(n->silences_path, b.data ? b.data : "",
                                     b.len, true)) != 0) {
    iocd_err_set(&err, IOCD_EIO, "%s", strerror(rc));
  }
  if (rc) {
    log_error(MOD, "silences not saved to %s: %s", n->silences_path, err.msg);
  }
  buf_cleanup(&b);
}

/* Reads path into b (cap max); IOCD_ENOTFOUND when there is no file. */
static int read_file(const char *path, size_t max, struct buf *b,
                     struct iocd_err *err) {
  buf_init(b, max);
  if (access(path, F_OK) != 0 && errno == ENOENT) {
    return IOCD_ENOTFOUND;
  }
  return file_read(path, b, err);
}

static void load_silences(struct notify *n, int64_t now) {
  struct buf text;
  struct iocd_err err = {{0}};
  int rc = read_file(n->silences_path, 64u << 20, &text, &err);
  if (rc == IOCD_ENOTFOUND) {
    buf_cleanup(&text);
    return;
  }
  if (!rc) {
    size_t bad = 0;
    rc =
        silence_set_from_json(dispatch_silences(n->d),
                              text.data ? text.data : "", text.len, &bad, &err);
    if (!rc && bad) {
      log_warn(MOD, "%s: %zu silences not restored: %s", n->silences_path, bad,
               err.msg);
    }
  }
  buf_cleanup(&text);
  if (rc) {
    log_error(MOD, "%s: silences not restored: %s", n->silences_path,
              err.msg[0] ? err.msg : iocd_strerror(rc));
    return;
  }
  silence_gc(dispatch_silences(n->d), now, 0);
}

static void on_audit(void *ud, const char *line, size_t len) {
  struct notify *n = ud;
  if (n->acks_fd < 0) {
    n->acks_fd =
        open(n->acks_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  }
  ssize_t w = n->acks_fd >= 0 ? write(n->acks_fd, line, len) : -1;
  if (w != (ssize_t)len || fdatasync(n->acks_fd) != 0) {
    log_error(MOD, "acknowledgement not written to %s: %s", n->acks_path,
              strerror(errno));
  }
}

static void load_acks(struct notify *n) {
  struct buf text;
  struct iocd_err err = {{0}};
  int rc = read_file(n->acks_path, 256u << 20, &text, &err);
  if (rc == IOCD_ENOTFOUND) {
    buf_cleanup(&text);
    return;
  }
  size_t bad = 0;
  if (!rc) {
    rc = dispatch_load_acks(n->d, text.data ? text.data : "", text.len, &bad);
  }
  buf_cleanup(&text);
  if (rc) {
    log_error(MOD, "%s: acknowledgements not restored: %s", n->acks_path,
              err.msg[0] ? err.msg : iocd_strerror(rc));
  } else if (bad) {
    log_warn(MOD, "%s: %zu lines that are not acknowledgements skipped",
             n->acks_path, bad);
  }
}

/* ---- what the receivers were told fires (notified.json) ---- */

static int parse_id(const char *id, uint64_t *out, struct iocd_err *err);

/* Where id is in n->notified, or where it would go. */
static size_t notified_at(const struct notify *n, uint64_t id, bool *found) {
  size_t lo = 0, hi = n->nnotified;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (n->notified[mid].id < id) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  *found = lo < n->nnotified && n->notified[lo].id == id;
  return lo;
}

static bool notified_has(const struct notify *n, uint64_t id) {
  bool found;
  notified_at(n, id, &found);
  return found;
}

/* Adds id (claimed or not); out of memory, the alert is forgotten here and
 * notified again after a restart. */
static void notified_put(struct notify *n, uint64_t id, bool claimed) {
  bool found;
  size_t i = notified_at(n, id, &found);
  if (found) {
    n->notified[i].claimed = n->notified[i].claimed || claimed;
    return;
  }
  if (mem_grow((void **)&n->notified, &n->capnotified, n->nnotified,
               sizeof *n->notified)) {
    log_error(MOD, "alert %016llx: not recorded as notified: out of memory",
              (unsigned long long)id);
    return;
  }
  memmove(&n->notified[i + 1], &n->notified[i],
          (n->nnotified - i) * sizeof *n->notified);
  n->notified[i] = (struct notified){id, claimed};
  n->nnotified++;
  n->notified_dirty = true;
}

static void notified_drop(struct notify *n, uint64_t id) {
  bool found;
  size_t i = notified_at(n, id, &found);
  if (!found) {
    return;
  }
  memmove(&n->notified[i], &n->notified[i + 1],
          (n->nnotified - i - 1) * sizeof *n->notified);
  n->nnotified--;
  n->notified_dirty = true;
}

/* What a notice the courier queued tells its receiver. */
static void notified_note(struct notify *n, const struct notice *x) {
  if (x->kind != NOTICE_ALERTS && x->kind != NOTICE_ESCALATION) {
    return;
  }
  for (size_t i = 0; i < x->nalerts; i++) {
    const struct notice_alert *a = &x->alerts[i];
    if (a->status == NOTICE_FIRING) {
      notified_put(n, a->fingerprint, true);
    } else {
      notified_drop(n, a->fingerprint);
    }
  }
}

static void maybe_free(struct notify *n);

static void write_notified(uv_work_t *w) {
  struct notify *n = container_of(w, struct notify, notified_work);
  n->notified_errno = file_write_atomic(n->notified_path, n->notified_text.data,
                                        n->notified_text.len, n->notified_sync);
}

static void save_notified(struct notify *n);

static void wrote_notified(uv_work_t *w, int status) {
  struct notify *n = container_of(w, struct notify, notified_work);
  n->notified_busy = false;
  if (status == 0 && n->notified_errno) {
    log_error(MOD, "%s not saved: %s", n->notified_path,
              strerror(n->notified_errno));
  }
  if (n->closing) {
    /* The last state, written before the notify is freed. */
    if (n->notified_dirty) {
      save_notified(n);
      return;
    }
    maybe_free(n);
    return;
  }
  if (n->notified_dirty) {
    save_notified(n);
  }
}

/* Writes notified.json on the thread pool; while a write runs the next
 * waits for it. Synced as the outbox is (journal.fsync): a power loss may
 * cost a repeated notice, never a lost one; a crash of iocd loses nothing
 * once the write is done. */
static void save_notified(struct notify *n) {
  if (n->notified_busy) {
    return; /* wrote_notified writes again: notified_dirty is still set */
  }
  struct buf *b = &n->notified_text;
  buf_reset(b);
  int rc = buf_putc(b, '{');
  for (size_t i = 0; !rc && i < n->nnotified; i++) {
    rc = buf_printf(b, "%s\"%016llx\":true", i ? "," : "",
                    (unsigned long long)n->notified[i].id);
  }
  if (!rc) {
    rc = buf_puts(b, "}\n");
  }
  n->notified_dirty = false;
  if (rc) {
    log_error(MOD, "%s not saved: %s", n->notified_path, iocd_strerror(rc));
    return;
  }
  n->notified_sync = n->cfg->journal.fsync == JOURNAL_FSYNC_ALWAYS;
  n->notified_busy = uv_queue_work(n->loop, &n->notified_work, write_notified,
                                   wrote_notified) == 0;
  if (!n->notified_busy) {
    write_notified(&n->notified_work);
    if (n->notified_errno) {
      log_error(MOD, "%s not saved: %s", n->notified_path,
                strerror(n->notified_errno));
    }
  }
}

static void load_notified(struct notify *n) {
  struct buf text;
  struct iocd_err err = {{0}};
  int rc = read_file(n->notified_path, 16u << 20, &text, &err);
  if (rc == IOCD_ENOTFOUND) {
    buf_cleanup(&text);
    return;
  }
  cJSON *doc = rc ? NULL : cJSON_ParseWithLength(text.data, text.len);
  buf_cleanup(&text);
  if (!rc && !cJSON_IsObject(doc)) {
    iocd_err_set(&err, IOCD_EPARSE, "not a JSON object");
    rc = IOCD_EPARSE;
  }
  size_t bad = 0;
  const cJSON *obj = rc ? NULL : doc;
  const cJSON *e;
  cJSON_ArrayForEach(e, obj) {
    uint64_t id;
    if (!cJSON_IsTrue(e) || parse_id(e->string, &id, NULL)) {
      bad++;
    } else {
      notified_put(n, id, false);
    }
  }
  cJSON_Delete(doc);
  if (rc) {
    /* Every restored alert is then notified again: a repeat, not a loss. */
    log_error(MOD, "%s: not read: %s", n->notified_path,
              err.msg[0] ? err.msg : iocd_strerror(rc));
  } else if (bad) {
    log_warn(MOD, "%s: %zu entries that are not alert ids skipped",
             n->notified_path, bad);
  }
  n->notified_dirty = false;
}

/* The end of the restore: what no restored firing alert claimed goes. */
static void restore_end(struct notify *n) {
  if (!n->restoring) {
    return;
  }
  n->restoring = false;
  size_t w = 0;
  for (size_t i = 0; i < n->nnotified; i++) {
    if (n->notified[i].claimed) {
      n->notified[w++] = n->notified[i];
    }
  }
  if (w != n->nnotified) {
    n->nnotified = w;
    n->notified_dirty = true;
  }
  log_info(MOD, "%zu firing alerts restored, %zu of them notified before",
           n->restored, n->restored_notified);
}

/* ---- the dispatcher on the loop ---- */

static void gauges(struct notify *n) {
  struct dispatch_stats st;
  dispatch_get_stats(n->d, &st);
  stat_add(n->st_notices, st.notices - n->notices_seen);
  stat_add(n->st_storm_folded, st.storm_folded - n->folded_seen);
  stat_add(n->st_alerts_refused, st.alerts_refused - n->refused_seen);
  stat_add(n->st_flapping, st.flapping - n->flapping_seen);
  n->notices_seen = st.notices;
  n->folded_seen = st.storm_folded;
  n->refused_seen = st.alerts_refused;
  n->flapping_seen = st.flapping;
  stat_set(n->st_groups, (double)st.groups);
  stat_set(n->st_silences, (double)silence_count(dispatch_silences(n->d)));
  stat_set(n->st_acks, (double)ack_count(dispatch_acks(n->d)));
}

static void on_timer(uv_timer_t *t);

/* Runs what is due and arms the timer for the next instant. */
static void run_due(struct notify *n) {
  if (n->stopped) {
    return;
  }
  int64_t now = clock_realtime_ns();
  size_t before = silence_count(dispatch_silences(n->d));
  dispatch_tick(n->d, now);
  if (silence_count(dispatch_silences(n->d)) != before) {
    save_silences(n);
  }
  if (n->notified_dirty) {
    save_notified(n);
  }
  gauges(n);
  int64_t wake = dispatch_next_wake(n->d);
  uint64_t ms = NOTIFY_POLL_MS;
  if (wake != INT64_MAX && wake - now < (int64_t)ms * NS_PER_MS) {
    ms = wake > now ? (uint64_t)((wake - now + NS_PER_MS - 1) / NS_PER_MS) : 0;
  }
  uv_timer_start(&n->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t *t) {
  struct notify *n = container_of(t, struct notify, timer);
  restore_end(n); /* the restore was over before the loop ran */
  run_due(n);
}

/* ---- what on_ack hears ---- */

/* Hands act to on_ack, with the alert's labels as the dispatcher knows
 * them (else those act has) and, with start, when it started firing. */
static void tell_ack(struct notify *n, struct notify_ack_action *act,
                     bool start) {
  static const struct notice_labels none = {0};
  const struct notice_alert *known = dispatch_find_alert(n->d, act->id);
  if (known) {
    act->labels = &known->labels;
    act->fired_ns = start ? known->starts_ns : 0;
  }
  if (!act->labels) {
    act->labels = &none;
  }
  /* alerts.c: on_ack_action, the `alert_acks` point. */
  n->on_ack(n->ack_ud, act);
}

/* Passes a to the dispatcher (dispatch_restore while restoring, with told)
 * and tells on_ack of the ack that ended with it: the alert resolved, or
 * it fires in a new episode and the ack was for an earlier one (then its
 * start is not the acknowledged episode's, and is left out). */
static int pass_alert(struct notify *n, const struct notice_alert *a,
                      bool restoring, bool told, int64_t now) {
  uint64_t fp =
      a->fingerprint ? a->fingerprint : notice_labels_fingerprint(&a->labels);
  bool acked = n->on_ack && ack_find(dispatch_acks(n->d), fp);
  int rc = restoring ? dispatch_restore(n->d, a, told, now)
                     : dispatch_alert(n->d, a, now);
  if (acked && !ack_find(dispatch_acks(n->d), fp)) {
    struct notify_ack_action act = {
        .action = "expire",
        .id = fp,
        .labels = &a->labels,
        .at_ns = now,
    };
    tell_ack(n, &act, a->status == NOTICE_RESOLVED);
  }
  return rc;
}

static void on_emit(void *ud, struct notice *x) {
  struct notify *n = ud;
  struct iocd_err err = {{0}};
  uint64_t id = 0;
  int rc = courier_submit(n->courier, x, &id, &err);
  if (rc) {
    stat_inc(n->st_submit_failures);
    log_error(MOD, "%s notification to %s not queued: %s",
              notice_kind_name(x->kind), x->receiver, err.msg);
  } else {
    log_info(MOD, "notification %016llx to %s: %s of %zu alerts, group %s",
             (unsigned long long)id, x->receiver, notice_kind_name(x->kind),
             x->nalerts, x->group_key ? x->group_key : "");
    notified_note(n, x);
  }
  notice_free(x);
}

/* A notice reached its receiver: the failure raised for that receiver,
 * if any, is over. */
static void on_sent(void *ud, const struct notice *x) {
  struct notify *n = ud;
  if (n->stopped || !x->receiver || x->kind == NOTICE_DEAD_LETTER) {
    return;
  }
  struct notice_alert a = {0};
  int rc = notice_labels_set(&a.labels, "alertname", NOTIFY_FAILED_RULE);
  if (!rc) {
    rc = notice_labels_set(&a.labels, "receiver", x->receiver);
  }
  if (!rc) {
    rc = notice_labels_set(&a.labels, "severity", "warning");
  }
  if (!rc) {
    a.fingerprint = notice_labels_fingerprint(&a.labels);
    const struct notice_alert *known = dispatch_find_alert(n->d, a.fingerprint);
    if (known && known->status == NOTICE_FIRING) {
      int64_t now = clock_realtime_ns();
      a.status = NOTICE_RESOLVED;
      a.starts_ns = known->starts_ns;
      a.ends_ns = now;
      if (pass_alert(n, &a, false, false, now) == IOCD_OK) {
        log_info(MOD, "notifications reach %s again", x->receiver);
      }
      run_due(n);
    }
  }
  notice_alert_cleanup(&a);
}

/* A notice given up on: an alert of its own, to the other receivers. */
static void on_dead(void *ud, const struct notice *dead_letter,
                    const struct notice *failed, const char *why) {
  struct notify *n = ud;
  if (n->stopped || !failed->receiver) {
    return;
  }
  struct notice_alert a = {0};
  int rc = notice_labels_set(&a.labels, "alertname", NOTIFY_FAILED_RULE);
  if (!rc) {
    rc = notice_labels_set(&a.labels, "receiver", failed->receiver);
  }
  if (!rc) {
    rc = notice_labels_set(&a.labels, "severity", "warning");
  }
  if (!rc && dead_letter && dead_letter->text) {
    rc = notice_labels_set(&a.annotations, "summary", dead_letter->text);
  }
  if (!rc && why) {
    rc = notice_labels_set(&a.annotations, "error", why);
  }
  int64_t now = clock_realtime_ns();
  if (!rc) {
    a.fingerprint = notice_labels_fingerprint(&a.labels);
    a.status = NOTICE_FIRING;
    a.starts_ns = now;
    rc = pass_alert(n, &a, false, false, now);
  }
  if (rc) {
    log_error(MOD, "the failure of notification %016llx to %s not raised: %s",
              (unsigned long long)failed->id, failed->receiver,
              iocd_strerror(rc));
  }
  notice_alert_cleanup(&a);
  run_due(n);
}

void notify_event(struct notify *n, const struct alert_event *ev) {
  if (!n || n->stopped) {
    return;
  }
  restore_end(n);
  if (!notify__event_matters(ev)) {
    return;
  }
  struct notice_alert a;
  int rc = notify__event_alert(ev, &a);
  if (!rc) {
    rc = pass_alert(n, &a, false, false, clock_realtime_ns());
    if (!rc && a.status == NOTICE_FIRING && !notify__active(ev->prev) &&
        notified_has(n, a.fingerprint) &&
        !dispatch_notified(n->d, a.fingerprint)) {
      /* The last episode ended without a resolved notice (receivers
       * without send_resolved): nobody was told of this one yet. */
      notified_drop(n, a.fingerprint);
    }
    notice_alert_cleanup(&a);
  }
  if (rc) {
    log_error(MOD, "alert %s not passed on to the receivers: %s", ev->rule,
              iocd_strerror(rc));
  }
  run_due(n);
}

void notify_restore(struct notify *n, const struct alert_event *ev) {
  if (!n || n->stopped || !notify__active(ev->state)) {
    return;
  }
  struct notice_alert a;
  int rc = notify__event_alert(ev, &a);
  if (!rc) {
    bool told = notified_has(n, a.fingerprint);
    rc = pass_alert(n, &a, true, told, clock_realtime_ns());
    if (!rc) {
      n->restored++;
      n->restored_notified += told;
      if (told) {
        notified_put(n, a.fingerprint, true);
      }
    }
    notice_alert_cleanup(&a);
  }
  if (rc) {
    log_error(MOD, "restored alert %s not passed on to the receivers: %s",
              ev->rule, iocd_strerror(rc));
  }
}

void notify_restore_done(struct notify *n) {
  if (!n || n->stopped) {
    return;
  }
  restore_end(n);
  run_due(n);
}

/* ---- start and stop ---- */

static void register_metrics(struct notify *n, struct stats *stats) {
  n->st_notices = stats_counter(
      stats, "iocd_notify_notices_total",
      "Notifications made by the dispatcher (every kind, every receiver).",
      NULL);
  n->st_submit_failures =
      stats_counter(stats, "iocd_notify_submit_failures_total",
                    "Notifications that could not be put in the outbox.", NULL);
  n->st_alerts_refused = stats_counter(
      stats, "iocd_notify_alerts_refused_total",
      "Alert changes the dispatcher refused at its alert limit.", NULL);
  n->st_storm_folded = stats_counter(
      stats, "iocd_notify_storm_folded_total",
      "Notifications folded into a storm digest by a receiver's rate limit.",
      NULL);
  n->st_flapping = stats_counter(stats, "iocd_notify_flapping_total",
                                 "Flapping episodes detected.", NULL);
  n->st_groups = stats_gauge(stats, "iocd_notify_groups",
                             "Aggregation groups the dispatcher holds.", NULL);
  n->st_silences =
      stats_gauge(stats, "iocd_notify_silences",
                  "Silences known (active, pending, expired).", NULL);
  n->st_acks =
      stats_gauge(stats, "iocd_notify_acks", "Alerts acknowledged now.", NULL);
}

static void on_courier_closed(void *ud);

static void free_notify(struct notify *n) {
  dispatch_free(n->d);
  template_set_free(n->tmpl[0]);
  template_set_free(n->tmpl[1]);
  calendar_free(n->cal);
  if (n->acks_fd >= 0) {
    close(n->acks_fd);
  }
  free(n->silences_path);
  free(n->acks_path);
  free(n->notified_path);
  free(n->notified);
  buf_cleanup(&n->notified_text);
  free(n);
}

int notify_new(const struct notify_opts *opts, struct notify **out,
               struct iocd_err *err) {
  *out = NULL;
  const struct config *cfg = opts->cfg;
  struct notify *n = calloc(1, sizeof *n);
  if (!n) {
    return iocd_err_set(err, IOCD_ENOMEM, "out of memory");
  }
  n->loop = opts->loop;
  n->cfg = cfg;
  n->on_ack = opts->on_ack;
  n->ack_ud = opts->ack_ud;
  n->acks_fd = -1;
  buf_init(&n->notified_text, 64u << 20);
  n->silences_path = path_in(cfg->data_dir, "silences.json");
  n->acks_path = path_in(cfg->data_dir, "acks.jsonl");
  n->notified_path = path_in(cfg->data_dir, "notified.json");
  char *outbox_dir = path_in(cfg->data_dir, "outbox");
  int rc = n->silences_path && n->acks_path && n->notified_path && outbox_dir
               ? IOCD_OK
               : iocd_err_set(err, IOCD_ENOMEM, "out of memory");
  int mk = rc ? 0 : file_mkdirs(cfg->data_dir);
  if (mk) {
    rc = iocd_err_set(err, IOCD_EIO, "data_dir %s: %s", cfg->data_dir,
                      strerror(mk));
  }
  if (!rc) {
    rc = make_calendar(cfg, &n->cal, err);
  }
  if (!rc) {
    rc = make_templates(cfg, n->tmpl, err);
  }
  int64_t now = clock_realtime_ns();
  if (!rc) {
    register_metrics(n, opts->stats);
    struct courier_opts co = {
        .loop = opts->loop,
        .cfg = &cfg->notify,
        .dir = outbox_dir,
        .stats = opts->stats,
        .templates = templates_for,
        .templates_ud = n,
        .publish = (deliver_publish_fn *)opts->publish,
        .publish_ud = opts->publish_ud,
        .external_url = cfg->notify.grafana_url,
        .on_dead = on_dead,
        .on_sent = on_sent,
        .dead_ud = n,
    };
    /* The outbox keeps the journal's promise (docs/durability.md): with
     * fsync "always" each notice is on disk before it is sent; by default
     * it survives a crash of iocd at once and a power loss within
     * fsync_interval, and no fsync holds up the loop. */
    co.outbox.sync_later = cfg->journal.fsync != JOURNAL_FSYNC_ALWAYS;
    co.sync_interval_ms = cfg->journal.fsync == JOURNAL_FSYNC_INTERVAL
                              ? (cfg->journal.fsync_interval_ms > 0
                                     ? cfg->journal.fsync_interval_ms
                                     : 1000)
                              : 0;
    rc = courier_new(&co, &n->courier, err);
  }
  if (!rc) {
    struct dispatch_opts o = {
        .cfg = &cfg->notify,
        .cal = n->cal,
        .emit = on_emit,
        .audit = on_audit,
        .ud = n,
        .first_id = courier_next_id(n->courier),
        .now_ns = now,
    };
    n->d = dispatch_new(&o, err);
    rc = n->d ? IOCD_OK : IOCD_EINVAL;
  }
  free(outbox_dir);
  if (rc) {
    if (n->courier) {
      /* The courier closes its handles on the loop; n goes with it. */
      n->closes = 1;
      n->stopped = true;
      courier_close(n->courier, on_courier_closed, n);
      n->closing = true;
      return rc;
    }
    free_notify(n);
    return rc;
  }
  load_silences(n, now);
  load_acks(n);
  load_notified(n);
  n->restoring = true;
  uv_timer_init(opts->loop, &n->timer);
  run_due(n);
  log_info(MOD, "%zu receivers, %zu silences, %zu acknowledged alerts",
           cfg->notify.nreceivers, silence_count(dispatch_silences(n->d)),
           ack_count(dispatch_acks(n->d)));
  *out = n;
  return IOCD_OK;
}

void notify_stop(struct notify *n) {
  if (!n || n->stopped) {
    return;
  }
  n->stopped = true;
  uv_timer_stop(&n->timer);
}

static void maybe_free(struct notify *n) {
  if (--n->closes > 0) {
    return;
  }
  notify_closed_fn *cb = n->closed_cb;
  void *ud = n->closed_ud;
  free_notify(n);
  if (cb) {
    cb(ud);
  }
}

static void on_courier_closed(void *ud) {
  maybe_free(ud);
}

static void on_timer_closed(uv_handle_t *h) {
  maybe_free(container_of((uv_timer_t *)h, struct notify, timer));
}

void notify_close(struct notify *n, notify_closed_fn *cb, void *ud) {
  if (!n || n->closing) {
    return;
  }
  notify_stop(n);
  n->closing = true;
  n->closed_cb = cb;
  n->closed_ud = ud;
  n->closes = 2;
  if (n->notified_busy) {
    n->closes++; /* wrote_notified writes what is left, then frees */
  } else if (n->notified_dirty) {
    n->closes++;
    save_notified(n);
    if (!n->notified_busy) {
      n->closes--;
    }
  }
  uv_close((uv_handle_t *)&n->timer, on_timer_closed);
  courier_close(n->courier, on_courier_closed, n);
}

int notify_reconfigure(struct notify *n, const struct config *ncfg,
                       struct iocd_err *err) {
  struct calendar *cal = NULL;
  struct template_set *ts[2] = {NULL, NULL};
  int rc = make_calendar(ncfg, &cal, err);
  if (!rc) {
    rc = make_templates(ncfg, ts, err);
  }
  if (!rc) {
    rc = dispatch_reconfigure(n->d, &ncfg->notify, cal, clock_realtime_ns(),
                              err);
  }
  if (rc) {
    template_set_free(ts[0]);
    template_set_free(ts[1]);
    calendar_free(cal);
    return rc;
  }
  courier_set_config(n->courier, &ncfg->notify);
  template_set_free(n->tmpl[0]);
  template_set_free(n->tmpl[1]);
  calendar_free(n->cal);
  n->tmpl[0] = ts[0];
  n->tmpl[1] = ts[1];
  n->cal = cal;
  n->cfg = ncfg;
  save_silences(n);
  run_due(n);
  return IOCD_OK;
}

/* ---- what the API asks ---- */

static int parse_id(const char *id, uint64_t *out, struct iocd_err *err) {
  uint64_t v = 0;
  size_t i = 0;
  for (; id && id[i] && i < 16; i++) {
    char c = id[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) {
      break;
    }
    v = v << 4 | (uint64_t)d;
  }
  if (!id || i != 16 || id[i]) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "an alert id is 16 hexadecimal digits");
  }
  *out = v;
  return IOCD_OK;
}

/* Who made the request, for the log lines of the operators' actions:
 * " (token NAME)", " (no token)" for "anonymous", "" when not known. */
static void principal_note(const char *principal, char *out, size_t n) {
  if (!principal) {
    out[0] = '\0';
  } else if (strcmp(principal, "anonymous") == 0) {
    snprintf(out, n, " (no token)");
  } else {
    snprintf(out, n, " (token %s)", principal);
  }
}

int notify_ack(struct notify *n, const char *id, const char *who,
               const char *principal, const char *comment,
               struct iocd_err *err) {
  uint64_t v;
  if (parse_id(id, &v, err)) {
    return IOCD_EINVAL;
  }
  if (!who || !*who) {
    return iocd_err_set(err, IOCD_EINVAL, "\"by\": who acknowledges");
  }
  int64_t now = clock_realtime_ns();
  int rc = dispatch_ack(n->d, v, who, principal, comment, now);
  char note[160];
  principal_note(principal, note, sizeof note);
  switch (rc) {
    case IOCD_OK:
      log_info(MOD, "alert %s acknowledged by %s%s%s%s", id, who, note,
               comment ? ": " : "", comment ? comment : "");
      if (n->on_ack) {
        struct notify_ack_action act = {
            .action = "ack",
            .id = v,
            .by = who,
            .principal = principal,
            .comment = comment,
            .at_ns = now,
        };
        tell_ack(n, &act, true);
      }
      run_due(n);
      return IOCD_OK;
    case IOCD_ENOTFOUND:
    case IOCD_ESTATE:
      return iocd_err_set(err, IOCD_ENOTFOUND, "alert %s is not firing", id);
    default:
      return iocd_err_set(err, rc, "alert %s: %s", id, iocd_strerror(rc));
  }
}

int notify_unack(struct notify *n, const char *id, const char *who,
                 const char *principal, struct iocd_err *err) {
  uint64_t v;
  if (parse_id(id, &v, err)) {
    return IOCD_EINVAL;
  }
  if (!who || !*who) {
    return iocd_err_set(err, IOCD_EINVAL, "\"by\": who takes the ack back");
  }
  /* The labels of the ack, for an alert the dispatcher no longer knows
   * (an ack restored from the audit trail). */
  struct notice_labels acked = {0};
  const struct ack *k = ack_find(dispatch_acks(n->d), v);
  if (n->on_ack && k) {
    notice_labels_copy(&acked, &k->labels); /* left empty on failure */
  }
  int64_t now = clock_realtime_ns();
  int rc = dispatch_unack(n->d, v, who, principal, NULL, now);
  if (rc == IOCD_ENOTFOUND) {
    notice_labels_cleanup(&acked);
    return iocd_err_set(err, rc, "alert %s is not acknowledged", id);
  }
  if (rc) {
    notice_labels_cleanup(&acked);
    return iocd_err_set(err, rc, "alert %s: %s", id, iocd_strerror(rc));
  }
  char note[160];
  principal_note(principal, note, sizeof note);
  log_info(MOD, "alert %s: acknowledgement taken back by %s%s", id, who, note);
  if (n->on_ack) {
    struct notify_ack_action act = {
        .action = "unack",
        .id = v,
        .labels = &acked,
        .by = who,
        .principal = principal,
        .at_ns = now,
    };
    tell_ack(n, &act, true);
  }
  notice_labels_cleanup(&acked);
  run_due(n);
  return IOCD_OK;
}

bool notify_ack_of(struct notify *n, const char *id, const char **who,
                   int64_t *at_ns, const char **comment) {
  uint64_t v;
  if (!n || parse_id(id, &v, NULL)) {
    return false;
  }
  const struct ack *a = ack_find(dispatch_acks(n->d), v);
  if (!a) {
    return false;
  }
  *who = a->by;
  *at_ns = a->at_ns;
  *comment = a->comment;
  return true;
}

int notify_silence_add(struct notify *n, const char *const *matchers,
                       size_t nmatchers, int64_t starts_ns, int64_t ends_ns,
                       const char *created_by, const char *principal,
                       const char *comment, char id_out[17],
                       struct iocd_err *err) {
  if (nmatchers == 0) {
    return iocd_err_set(err, IOCD_EINVAL,
                        "\"matchers\": at least one, such as "
                        "\"district=Krông Búk\"");
  }
  struct config_matcher *ms = calloc(nmatchers, sizeof *ms);
  if (!ms) {
    return iocd_err_set(err, IOCD_ENOMEM, "out of memory");
  }
  int rc = IOCD_OK;
  size_t parsed = 0;
  for (; parsed < nmatchers && !rc; parsed++) {
    rc = match_parse(matchers[parsed], &ms[parsed], err);
    if (rc) {
      iocd_err_prefix(err, "matchers[%zu]", parsed);
    }
  }
  int64_t now = clock_realtime_ns();
  if (!rc) {
    struct silence_spec spec = {
        .matchers = ms,
        .nmatchers = nmatchers,
        .starts_ns = starts_ns ? starts_ns : now,
        .ends_ns = ends_ns,
        .created_by = created_by,
        .principal = principal,
        .comment = comment,
    };
    rc = silence_add(dispatch_silences(n->d), &spec, 0, now, id_out, err);
  }
  for (size_t i = 0; i < parsed; i++) {
    match_matcher_cleanup(&ms[i]);
  }
  free(ms);
  if (rc) {
    return rc;
  }
  save_silences(n);
  char note[160];
  principal_note(principal, note, sizeof note);
  log_info(MOD, "silence %s added by %s%s", id_out,
           created_by && *created_by ? created_by : "(unnamed)", note);
  run_due(n);
  return IOCD_OK;
}

int notify_silence_delete(struct notify *n, const char *id,
                          const char *principal, struct iocd_err *err) {
  int rc = silence_expire(dispatch_silences(n->d), id, principal,
                          clock_realtime_ns());
  if (rc == IOCD_ENOTFOUND) {
    return iocd_err_set(err, rc, "no silence %s", id);
  }
  if (rc == IOCD_ESTATE) {
    const struct silence *s = silence_get(dispatch_silences(n->d), id);
    return iocd_err_set(err, IOCD_EINVAL,
                        s && s->from_config
                            ? "silence %s comes from the configuration: "
                              "remove it there and reload"
                            : "silence %s has ended already",
                        id);
  }
  if (rc) {
    return iocd_err_set(err, rc, "silence %s: %s", id, iocd_strerror(rc));
  }
  save_silences(n);
  char note[160];
  principal_note(principal, note, sizeof note);
  log_info(MOD, "silence %s ended%s", id, note);
  run_due(n);
  return IOCD_OK;
}

/* ---- JSON for the API ---- */

static cJSON *json_time(int64_t ns) {
  if (!ns) {
    return cJSON_CreateNull();
  }
  char t[48];
  time_format_rfc3339(ns, 0, 3, t, sizeof t);
  return cJSON_CreateString(t);
}

static cJSON *json_labels(const struct notice_labels *ls) {
  cJSON *o = cJSON_CreateObject();
  for (size_t i = 0; o && i < ls->n; i++) {
    if (!cJSON_AddStringToObject(o, ls->v[i].name, ls->v[i].value)) {
      cJSON_Delete(o);
      return NULL;
    }
  }
  return o;
}

static int print_json(cJSON *doc, struct buf *out) {
  char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
  cJSON_Delete(doc);
  if (!text) {
    return IOCD_ENOMEM;
  }
  int rc = buf_puts(out, text);
  if (!rc) {
    rc = buf_putc(out, '\n');
  }
  cJSON_free(text);
  return rc;
}

static bool put(cJSON *o, const char *k, cJSON *v) {
  return v && cJSON_AddItemToObject(o, k, v);
}

static cJSON *json_str_or_null(const char *s) {
  return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

int notify_silences_json(struct notify *n, struct buf *out) {
  const struct silence_set *ss = dispatch_silences(n->d);
  int64_t now = clock_realtime_ns();
  cJSON *doc = cJSON_CreateObject();
  cJSON *list = cJSON_AddArrayToObject(doc, "silences");
  bool ok = list != NULL;
  for (size_t i = 0; ok && i < silence_count(ss); i++) {
    const struct silence *s = silence_at(ss, i);
    cJSON *o = cJSON_CreateObject();
    cJSON *ms = cJSON_CreateArray();
    ok = o && ms && cJSON_AddItemToArray(list, o) &&
         cJSON_AddItemToObject(o, "matchers", ms);
    for (size_t k = 0; ok && k < s->nmatchers; k++) {
      struct buf b;
      buf_init(&b, 1u << 16);
      ok = match_format(&b, s->matchers[k].name, s->matchers[k].op,
                        s->matchers[k].value) == IOCD_OK &&
           buf_putc(&b, '\0') == IOCD_OK &&
           cJSON_AddItemToArray(ms, cJSON_CreateString(b.data));
      buf_cleanup(&b);
    }
    ok = ok && cJSON_AddStringToObject(o, "id", s->id) &&
         cJSON_AddStringToObject(
             o, "state", silence_state_name(silence_state_at(s, now))) &&
         put(o, "starts_at", json_time(s->starts_ns)) &&
         put(o, "ends_at", json_time(s->ends_ns)) &&
         cJSON_AddStringToObject(o, "created_by", s->created_by) &&
         put(o, "principal", json_str_or_null(s->principal)) &&
         put(o, "expired_by", json_str_or_null(s->expired_by)) &&
         cJSON_AddStringToObject(o, "comment", s->comment) &&
         cJSON_AddBoolToObject(o, "from_config", s->from_config) &&
         put(o, "updated_at", json_time(s->updated_ns));
  }
  if (!ok) {
    cJSON_Delete(doc);
    return IOCD_ENOMEM;
  }
  return print_json(doc, out);
}

/* The last lines of the audit trail, oldest first. */
static cJSON *audit_tail(struct notify *n) {
  cJSON *list = cJSON_CreateArray();
  struct buf b;
  if (!list || read_file(n->acks_path, 256u << 20, &b, NULL) || !b.data) {
    buf_cleanup(&b);
    return list;
  }
  const char *text = b.data;
  size_t len = b.len;
  size_t start = len, lines = 0;
  while (start > 0 && lines <= NOTIFY_AUDIT_LINES &&
         len - start < NOTIFY_AUDIT_READ) {
    start--;
    if (start > 0 && text[start - 1] == '\n') {
      lines++;
    }
  }
  for (size_t p = start; p < len;) {
    char *nl = memchr(text + p, '\n', len - p);
    size_t e = nl ? (size_t)(nl - text) : len;
    cJSON *o = cJSON_ParseWithLength(text + p, e - p);
    if (o) {
      cJSON_AddItemToArray(list, o);
    }
    p = e + 1;
  }
  buf_cleanup(&b);
  return list;
}

int notify_acks_json(struct notify *n, struct buf *out) {
  const struct ack_set *as = dispatch_acks(n->d);
  cJSON *doc = cJSON_CreateObject();
  cJSON *cur = cJSON_AddArrayToObject(doc, "acks");
  bool ok = cur != NULL;
  for (size_t i = 0; ok && i < ack_count(as); i++) {
    const struct ack *a = ack_at(as, i);
    char id[17];
    snprintf(id, sizeof id, "%016llx", (unsigned long long)a->id);
    cJSON *o = cJSON_CreateObject();
    ok = o && cJSON_AddItemToArray(cur, o) &&
         cJSON_AddStringToObject(o, "id", id) &&
         put(o, "labels", json_labels(&a->labels)) &&
         cJSON_AddStringToObject(o, "by", a->by) &&
         put(o, "principal", json_str_or_null(a->principal)) &&
         put(o, "at", json_time(a->at_ns)) &&
         put(o, "comment",
             a->comment ? cJSON_CreateString(a->comment) : cJSON_CreateNull());
  }
  ok = ok && put(doc, "audit", audit_tail(n));
  if (!ok) {
    cJSON_Delete(doc);
    return IOCD_ENOMEM;
  }
  return print_json(doc, out);
}

static cJSON *json_notice(const struct notice *x) {
  char id[17];
  snprintf(id, sizeof id, "%016llx", (unsigned long long)x->id);
  cJSON *o = cJSON_CreateObject();
  cJSON *alerts = cJSON_CreateArray();
  bool ok =
      o && alerts && cJSON_AddStringToObject(o, "id", id) &&
      cJSON_AddStringToObject(o, "receiver", x->receiver ? x->receiver : "") &&
      cJSON_AddStringToObject(o, "kind", notice_kind_name(x->kind)) &&
      cJSON_AddNumberToObject(o, "attempts", x->attempts) &&
      put(o, "created_at", json_time(x->created_ns)) &&
      cJSON_AddStringToObject(o, "group_key",
                              x->group_key ? x->group_key : "") &&
      put(o, "group_labels", json_labels(&x->group_labels)) &&
      cJSON_AddItemToObject(o, "alerts", alerts);
  if (!ok) {
    cJSON_Delete(o);
    cJSON_Delete(alerts);
    return NULL;
  }
  for (size_t i = 0; i < x->nalerts; i++) {
    const struct notice_alert *a = &x->alerts[i];
    char aid[17];
    snprintf(aid, sizeof aid, "%016llx", (unsigned long long)a->fingerprint);
    cJSON *ao = cJSON_CreateObject();
    if (!ao || !cJSON_AddItemToArray(alerts, ao) ||
        !cJSON_AddStringToObject(ao, "id", aid) ||
        !cJSON_AddStringToObject(ao, "status", notice_status_name(a->status)) ||
        !put(ao, "labels", json_labels(&a->labels))) {
      cJSON_Delete(o);
      return NULL;
    }
  }
  return o;
}

int notify_outbox_json(struct notify *n, struct buf *out) {
  const struct outbox *ob = courier_outbox(n->courier);
  size_t np = 0, nd = 0;
  const struct outbox_item *pending = outbox_list(ob, &np);
  const struct outbox_dead *dead = outbox_dead_list(ob, &nd);
  cJSON *doc = cJSON_CreateObject();
  cJSON *o = cJSON_AddObjectToObject(doc, "notifications");
  cJSON *pl = o ? cJSON_AddArrayToObject(o, "pending") : NULL;
  cJSON *dl = o ? cJSON_AddArrayToObject(o, "dead") : NULL;
  bool ok = pl && dl;
  for (size_t i = 0; ok && i < np; i++) {
    cJSON *x = json_notice(pending[i].notice);
    ok = x && cJSON_AddItemToArray(pl, x) &&
         put(x, "next_try_at", json_time(pending[i].next_try_ns)) &&
         cJSON_AddBoolToObject(x, "durable", pending[i].durable);
  }
  for (size_t i = 0; ok && i < nd; i++) {
    cJSON *x = json_notice(dead[i].notice);
    ok = x && cJSON_AddItemToArray(dl, x) &&
         cJSON_AddStringToObject(x, "error", dead[i].why ? dead[i].why : "") &&
         put(x, "dead_at", json_time(dead[i].dead_ns));
  }
  if (!ok) {
    cJSON_Delete(doc);
    return IOCD_ENOMEM;
  }
  return print_json(doc, out);
}
