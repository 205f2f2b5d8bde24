/*
 * The journal's space: deleting the segments every output has confirmed,
 * freeing the disk after a failed write (a full disk), drop_oldest when the
 * journal reaches max_bytes, and what the store asks about fill, totals and
 * health.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/container.h"
#include "core/log.h"
#include "store/journal_int.h"

bool journal__no_space(int err) {
  return err == ENOSPC || err == EDQUOT;
}

/* ---- Deletion ----------------------------------------------------------- */

static void delete_seg(struct journal *j, struct jseg *g) {
  for (unsigned i = 0; i < j->nreaders; i++) {
    struct jreader *r = &j->rd[i];
    if (r->back.seg == g) {
      r->back.seg = g->next;
      r->back.off = 0;
    }
    if (r->live.seg == g) {
      r->live.seg = g->next;
      r->live.off = 0;
    }
  }
  if (j->rfd_seg == g->first_seq) {
    journal__rb_forget(j);
  }
  char *path = journal__seg_path(j, g);
  if (path && unlink(path) != 0 && errno != ENOENT) {
    log_warn("journal", "cannot delete %s: %s", path, strerror(errno));
  }
  free(path);
  if (g->prev) {
    g->prev->next = g->next;
  } else {
    j->head = g->next;
  }
  if (g->next) {
    g->next->prev = g->prev;
  } else {
    j->tail = g->prev;
  }
  j->nsegs--;
  j->bytes -= g->bytes;
  journal__seg_free(g);
}

/* The first record some reader has not confirmed. */
static uint64_t min_conf(const struct journal *j) {
  uint64_t m = UINT64_MAX;
  for (unsigned i = 0; i < j->nreaders; i++) {
    if (j->rd[i].conf < m) {
      m = j->rd[i].conf;
    }
  }
  return m;
}

/* Deletes the segments every reader has confirmed, whether or not their
 * checkpoints are on disk yet: a checkpoint only spares a restart sending
 * confirmed records again, and a reader whose checkpoint is older than the
 * oldest segment resumes at that segment. So a full disk, on which no
 * checkpoint can be written, frees itself as the outputs confirm. */
void journal__delete_done(struct journal *j) {
  uint64_t m = min_conf(j);
  journal__evict(j);
  while (j->head && j->head != j->active && j->head->end_seq <= m &&
         j->head->end_seq <= journal__min_cursor(j) &&
         j->cache_first >= j->head->end_seq) {
    delete_seg(j, j->head);
  }
  journal__set_gauges(j);
}

/* Moves the records still in memory off the segment being written onto a
 * new one (its file is created by the next write) when a write failed and
 * every record already in the file is confirmed, so that delete_done can
 * delete that file: a disk that the active segment fills alone frees
 * itself too. Every record of the file is then taken by every reader, so
 * what the segment's counts hold belongs to the records that move. */
static void move_tail(struct journal *j) {
  struct jseg *g = j->active;
  if (!g || g->fd < 0 || j->torn || j->wbuf.len < JOURNAL_HDR ||
      g->bytes == j->wbuf.len) {
    return;
  }
  const unsigned char *h = (const unsigned char *)j->wbuf.data;
  uint64_t first = journal__get64(h + 16);
  if (min_conf(j) < first) {
    return;
  }
  struct jseg *n = journal__seg_new(first);
  if (!n) {
    return;
  }
  uint64_t infile = g->bytes - j->wbuf.len;
  n->first_wall_ms = (int64_t)journal__get64(h + 24);
  for (size_t off = 0; off + JOURNAL_HDR <= j->wbuf.len;
       off += JOURNAL_HDR + journal__get32(h + off + 8)) {
    n->points += journal__get32(h + off + 32);
  }
  n->end_seq = g->end_seq;
  n->bytes = j->wbuf.len;
  n->last_wall_ms = g->last_wall_ms;
  memcpy(n->utk, g->utk, sizeof n->utk);
  memcpy(n->live, g->live, sizeof n->live);
  memset(g->utk, 0, sizeof g->utk);
  memset(g->live, 0, sizeof g->live);
  n->src_utk = g->src_utk;
  n->nsrc = g->nsrc;
  g->src_utk = NULL;
  g->nsrc = 0;
  g->end_seq = first;
  g->points -= n->points;
  g->bytes = infile;
  j->bytes -= n->bytes;
  for (uint64_t seq = first > j->cache_first ? first : j->cache_first;
       seq < j->next_seq; seq++) {
    struct jrec *r = journal__rec_at(j, seq);
    r->seg = n;
    r->off -= infile;
  }
  for (unsigned i = 0; i < j->nreaders; i++) {
    struct jcur *cs[2] = {&j->rd[i].back, &j->rd[i].live};
    for (int c = 0; c < 2; c++) {
      if (cs[c]->seg == g) {
        cs[c]->seg = n;
        cs[c]->off = cs[c]->off > infile ? cs[c]->off - infile : 0;
      }
    }
  }
  /* Deleting the file frees its blocks only once no descriptor is left. */
  close(g->fd);
  g->fd = -1;
  j->dirty = false;
  journal__seg_link(j, n);
  j->active = n;
  char gname[64], nname[64];
  journal__seg_name(g, gname, sizeof gname);
  journal__seg_name(n, nname, sizeof nname);
  uint64_t moved = n->end_seq - n->first_seq;
  log_warn(
      "journal",
      "%s: every record in %s is confirmed: it is deleted, and the %" PRIu64
      " record%s still in memory go%s to %s",
      j->dir, gname, moved, moved == 1 ? "" : "s", moved == 1 ? "es" : "",
      nname);
  journal__delete_done(j);
}

/* A write failed: free what the outputs have confirmed. */
void journal__make_room(struct journal *j) {
  journal__delete_done(j);
  move_tail(j);
}

/* ---- When full ---------------------------------------------------------- */

/* Drops the oldest closed segment to make room (drop_oldest): what the
 * readers had not taken from it is lost, counted and logged. */
void journal__drop_oldest(struct journal *j) {
  struct jseg *g = j->head;
  char name[64];
  journal__seg_name(g, name, sizeof name);
  journal__evict(j);
  for (unsigned i = 0; i < j->nreaders; i++) {
    struct jreader *r = &j->rd[i];
    struct jcount lost = g->utk[i];
    stat_add(r->m_dropped, lost.points);
    r->utk.points -= lost.points;
    r->utk.bytes -= lost.bytes;
    r->utk.records -= lost.records;
    r->lutk.points -= g->live[i].points;
    r->lutk.bytes -= g->live[i].bytes;
    r->lutk.records -= g->live[i].records;
    r->pending -= lost.points;
    r->pending_bytes -= lost.bytes;
    if (i == 0) {
      for (size_t s = 0; s < g->nsrc; s++) {
        if (g->src_utk[s]) {
          j->hooks.dropped(j->hooks.ud, (uint32_t)s, g->src_utk[s]);
        }
      }
    }
    if (r->back.seq < g->end_seq) {
      uint64_t to = g->end_seq;
      if (r->split && r->live_from < to) {
        to = r->live_from;
      }
      (void)journal__add_out(r, r->back.seq, to, 0, true);
      r->back.seq = g->end_seq;
      r->back.seg = g->next;
      r->back.off = 0;
    }
    if (r->split && r->live.seq < g->end_seq) {
      (void)journal__add_out(r, r->live.seq, g->end_seq, 0, true);
      r->live.seq = g->end_seq;
      r->live.seg = g->next;
      r->live.off = 0;
    }
    if (r->split && r->back.seq >= r->live_from) {
      r->back = r->live;
      r->split = false;
      r->lutk = (struct jcount){0};
      for (struct jseg *s = j->head; s; s = s->next) {
        s->live[i] = (struct jcount){0};
      }
    }
    journal__advance_conf(r);
    journal__set_backlog(r);
  }
  uint32_t held = 0;
  if (log_limit_allow(&j->full_lim, journal__loop_ms(j), LOG_BURST,
                      LOG_WINDOW_MS, &held)) {
    int64_t now = journal__wall_ms();
    log_error("journal",
              "journal full (max_bytes %" PRIu64 "): deleted %s with %" PRIu64
              " points not yet written to %s, "
              "received %.0f to %.0f s ago%s",
              j->st.max_bytes, name, g->utk[0].points, j->rd[0].name,
              (double)(now - g->first_wall_ms) / 1000.0,
              (double)(now - g->last_wall_ms) / 1000.0, SUPPRESSED(held));
  }
  journal__evict(j);
  /* The readers are past it now; nothing in memory refers to it. */
  delete_seg(j, g);
  journal__set_gauges(j);
}

void journal__totals(const struct queue *q, uint64_t *points, uint64_t *bytes) {
  const struct journal *j = container_of(q, const struct journal, base);
  /* What waits for the slowest output, in points and in bytes of line
   * protocol, as the in-memory queue counts them; the segment files, which
   * also hold confirmed records until a whole segment is, are
   * iocd_journal_bytes. */
  uint64_t p = 0, b = 0;
  for (unsigned i = 0; i < j->nreaders; i++) {
    if (j->rd[i].pending > p) {
      p = j->rd[i].pending;
    }
    if (j->rd[i].pending_bytes > b) {
      b = j->rd[i].pending_bytes;
    }
  }
  *points = p;
  *bytes = b;
}

double journal__fill(const struct queue *q) {
  const struct journal *j = container_of(q, const struct journal, base);
  if (j->werr) {
    return 1;
  }
  double f = 0;
  if (j->st.when_full == JOURNAL_FULL_PAUSE && j->st.max_bytes) {
    f = (double)j->bytes / (double)j->st.max_bytes;
  }
  double m = (double)j->wbuf.len / (double)j->st.memory_bytes;
  if (m > f) {
    f = m;
  }
  return f > 1 ? 1 : f;
}

bool journal__healthy(const struct queue *q, char *why, size_t n) {
  const struct journal *j = container_of(q, const struct journal, base);
  if (!j->werr) {
    return true;
  }
  if (journal__no_space(j->werr_errno)) {
    snprintf(why, n,
             "journal: %s in %s (%zu bytes of records wait in memory; "
             "intake is paused until there is space)",
             j->werr_errno == ENOSPC ? "no space left on device"
                                     : "disk quota exceeded",
             j->dir, j->wbuf.len);
  } else {
    snprintf(why, n, "journal: writing in %s fails: %s", j->dir,
             strerror(j->werr_errno));
  }
  return false;
}
