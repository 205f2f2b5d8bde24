/*
 * Batches and the outbox: when the lines waiting in the queue are sealed
 * into a batch, and in which order the parts of the taken batches are sent,
 * split and retried. Pure bookkeeping (time is passed in), so the ordering
 * and splitting rules are unit tested without a server.
 */
#include <stdlib.h>

#include "core/err.h"
#include "store/store_int.h"

void store__batch_free(struct sbatch *b) {
  if (!b) {
    return;
  }
  free(b->body);
  free(b->line_off);
  free(b->line_src);
  free(b);
}

bool store__batch_due(const struct qlevel *lv, size_t batch_points,
                      size_t batch_bytes, int64_t flush_ms, int64_t now_ms,
                      int64_t *due_ms) {
  *due_ms = INT64_MAX;
  if (lv->points == 0) {
    return false;
  }
  if (lv->points >= batch_points || lv->bytes >= batch_bytes) {
    return true;
  }
  int64_t at = lv->oldest_ms + flush_ms;
  if (now_ms >= at) {
    return true;
  }
  *due_ms = at;
  return false;
}

void store__outbox_init(struct outbox *ob) {
  ob->head = ob->tail = NULL;
  ob->nparts = 0;
  ob->ninflight = 0;
}

static void link_after(struct outbox *ob, struct part *after, struct part *p) {
  p->prev = after;
  p->next = after ? after->next : ob->head;
  if (p->next) {
    p->next->prev = p;
  } else {
    ob->tail = p;
  }
  if (after) {
    after->next = p;
  } else {
    ob->head = p;
  }
  ob->nparts++;
}

static void unlink_part(struct outbox *ob, struct part *p) {
  if (p->prev) {
    p->prev->next = p->next;
  } else {
    ob->head = p->next;
  }
  if (p->next) {
    p->next->prev = p->prev;
  } else {
    ob->tail = p->prev;
  }
  ob->nparts--;
}

/* The request of p came back (whatever the answer). */
static void landed(struct outbox *ob, struct part *p) {
  if (p->state == PART_INFLIGHT) {
    ob->ninflight--;
  }
}

void store__outbox_push(struct outbox *ob, struct part *p, struct sbatch *b) {
  *p =
      (struct part){.batch = b, .l0 = 0, .l1 = b->npoints, .state = PART_READY};
  b->parts++;
  link_after(ob, ob->tail, p);
}

struct part *store__outbox_next(struct outbox *ob, int64_t now_ms,
                                int64_t *wake_ms, bool *gated) {
  *gated = false;
  for (struct part *p = ob->head; p; p = p->next) {
    switch (p->state) {
      case PART_READY:
        return p;
      case PART_WAIT:
        if (now_ms >= p->not_before_ms) {
          return p;
        }
        if (p->not_before_ms < *wake_ms) {
          *wake_ms = p->not_before_ms;
        }
        *gated = true;
        return NULL;
      case PART_INFLIGHT:
        if (p->failed) {
          /* A retry is out: later data waits for its answer. */
          *gated = true;
          return NULL;
        }
        break;
      case PART_ABANDONED:
        break;
    }
  }
  return NULL;
}

void store__outbox_sent(struct outbox *ob, struct part *p) {
  if (p->state != PART_INFLIGHT) {
    p->state = PART_INFLIGHT;
    ob->ninflight++;
  }
}

struct sbatch *store__outbox_finish(struct outbox *ob, struct part *p) {
  landed(ob, p);
  unlink_part(ob, p);
  struct sbatch *b = p->batch;
  free(p);
  b->parts--;
  return b->parts == 0 ? b : NULL;
}

void store__outbox_retry(struct outbox *ob, struct part *p,
                         int64_t not_before_ms) {
  landed(ob, p);
  p->state = PART_WAIT;
  p->failed = true;
  p->attempts++;
  p->not_before_ms = not_before_ms;
}

int store__outbox_split(struct outbox *ob, struct part *p) {
  landed(ob, p);
  p->state = PART_READY;
  if (p->l1 - p->l0 < 2) {
    return IOCD_EINVAL;
  }
  struct part *q = calloc(1, sizeof *q);
  if (!q) {
    return IOCD_ENOMEM;
  }
  size_t mid = p->l0 + (p->l1 - p->l0) / 2;
  q->batch = p->batch;
  q->l0 = mid;
  q->l1 = p->l1;
  q->state = PART_READY;
  p->l1 = mid;
  /* The server answered: whatever failed before is resolved. */
  p->failed = false;
  p->attempts = 0;
  p->batch->parts++;
  link_after(ob, p, q);
  return IOCD_OK;
}

void store__outbox_abandon(struct outbox *ob, struct part *p) {
  landed(ob, p);
  p->state = PART_ABANDONED;
  p->failed = false;
}

void store__outbox_wake_all(struct outbox *ob, int64_t now_ms) {
  for (struct part *p = ob->head; p; p = p->next) {
    if (p->state == PART_WAIT) {
      p->not_before_ms = now_ms;
    }
  }
}

bool store__outbox_idle(const struct outbox *ob) {
  for (const struct part *p = ob->head; p; p = p->next) {
    if (p->state != PART_ABANDONED) {
      return false;
    }
  }
  return true;
}

void store__outbox_cleanup(struct outbox *ob) {
  struct part *p = ob->head;
  while (p) {
    struct part *next = p->next;
    struct sbatch *b = p->batch;
    free(p);
    if (--b->parts == 0) {
      store__batch_free(b);
    }
    p = next;
  }
  store__outbox_init(ob);
}
