/*
 * The notice data model's small operations: label sets kept sorted, the
 * alert identity (a fingerprint of the labels without "severity", so an
 * alert that climbs from warning to critical stays the same alert), and
 * deep copies, so that a notice owns everything it points to.
 */
#include "alerts/notice.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hash.h"
#include "core/mem.h"

const char *notice_kind_name(enum notice_kind k) {
  switch (k) {
    case NOTICE_ALERTS:
      return "alerts";
    case NOTICE_ESCALATION:
      return "escalation";
    case NOTICE_FLAPPING:
      return "flapping";
    case NOTICE_STORM:
      return "storm";
    case NOTICE_DIGEST:
      return "digest";
    case NOTICE_DEAD_LETTER:
      return "dead_letter";
  }
  return "unknown";
}

const char *notice_status_name(enum notice_status s) {
  switch (s) {
    case NOTICE_FIRING:
      return "firing";
    case NOTICE_RESOLVED:
      return "resolved";
  }
  return "unknown";
}

/* The index of name in ls, or where it would be inserted (*found false). */
static size_t label_find(const struct notice_labels *ls, const char *name,
                         bool *found) {
  size_t lo = 0, hi = ls->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(ls->v[mid].name, name);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  *found = false;
  return lo;
}

const char *notice_label_get(const struct notice_labels *ls, const char *name) {
  if (!ls || !name || ls->n == 0) {
    return NULL;
  }
  bool found;
  size_t i = label_find(ls, name, &found);
  return found ? ls->v[i].value : NULL;
}

int notice_labels_set(struct notice_labels *ls, const char *name,
                      const char *value) {
  if (!name || !value) {
    return IOCD_EINVAL;
  }
  bool found;
  size_t i = label_find(ls, name, &found);
  char *v = mem_strdup(value);
  if (!v) {
    return IOCD_ENOMEM;
  }
  if (found) {
    free(ls->v[i].value);
    ls->v[i].value = v;
    return IOCD_OK;
  }
  char *k = mem_strdup(name);
  /* The array holds exactly n entries, so every insertion grows it by one:
   * label sets are small and built once. */
  struct notice_label *nv =
      k ? realloc(ls->v, (ls->n + 1) * sizeof *ls->v) : NULL;
  if (!nv) {
    free(k);
    free(v);
    return IOCD_ENOMEM;
  }
  memmove(&nv[i + 1], &nv[i], (ls->n - i) * sizeof *nv);
  nv[i].name = k;
  nv[i].value = v;
  ls->v = nv;
  ls->n++;
  return IOCD_OK;
}

void notice_labels_cleanup(struct notice_labels *ls) {
  if (!ls) {
    return;
  }
  for (size_t i = 0; i < ls->n; i++) {
    free(ls->v[i].name);
    free(ls->v[i].value);
  }
  free(ls->v);
  ls->v = NULL;
  ls->n = 0;
}

int notice_labels_copy(struct notice_labels *dst,
                       const struct notice_labels *src) {
  dst->v = NULL;
  dst->n = 0;
  if (!src || src->n == 0) {
    return IOCD_OK;
  }
  dst->v = calloc(src->n, sizeof *dst->v);
  if (!dst->v) {
    return IOCD_ENOMEM;
  }
  for (size_t i = 0; i < src->n; i++) {
    dst->v[i].name = mem_strdup(src->v[i].name);
    dst->v[i].value = mem_strdup(src->v[i].value);
    dst->n = i + 1;
    if (!dst->v[i].name || !dst->v[i].value) {
      notice_labels_cleanup(dst);
      return IOCD_ENOMEM;
    }
  }
  return IOCD_OK;
}

uint64_t notice_labels_fingerprint(const struct notice_labels *ls) {
  uint64_t h = HASH_START;
  for (size_t i = 0; ls && i < ls->n; i++) {
    if (strcmp(ls->v[i].name, "severity") == 0) {
      continue;
    }
    /* hash_str takes each NUL along, which separates name from value; the
     * 0xff byte (never in UTF-8) separates one pair from the next. */
    h = hash_str(h, ls->v[i].name);
    h = hash_str(h, ls->v[i].value);
    h = hash_byte(h, 0xff);
  }
  return h;
}

/* Copies s into *dst; NULL stays NULL. Returns false when memory runs out. */
static bool dup_opt(char **dst, const char *s) {
  *dst = NULL;
  if (!s) {
    return true;
  }
  *dst = mem_strdup(s);
  return *dst != NULL;
}

int notice_alert_copy(struct notice_alert *dst,
                      const struct notice_alert *src) {
  *dst = *src;
  dst->labels = (struct notice_labels){0};
  dst->annotations = (struct notice_labels){0};
  dst->reason = dst->acked_by = dst->ack_comment = NULL;
  if (notice_labels_copy(&dst->labels, &src->labels) ||
      notice_labels_copy(&dst->annotations, &src->annotations) ||
      !dup_opt(&dst->reason, src->reason) ||
      !dup_opt(&dst->acked_by, src->acked_by) ||
      !dup_opt(&dst->ack_comment, src->ack_comment)) {
    notice_alert_cleanup(dst);
    return IOCD_ENOMEM;
  }
  return IOCD_OK;
}

void notice_alert_cleanup(struct notice_alert *a) {
  if (!a) {
    return;
  }
  notice_labels_cleanup(&a->labels);
  notice_labels_cleanup(&a->annotations);
  free(a->reason);
  free(a->acked_by);
  free(a->ack_comment);
  a->reason = a->acked_by = a->ack_comment = NULL;
}

struct notice *notice_new(void) {
  return calloc(1, sizeof(struct notice));
}

struct notice *notice_dup(const struct notice *n) {
  struct notice *d = notice_new();
  if (!d) {
    return NULL;
  }
  d->id = n->id;
  d->kind = n->kind;
  d->tier = n->tier;
  d->created_ns = n->created_ns;
  d->attempts = n->attempts;
  if (!dup_opt(&d->receiver, n->receiver) ||
      !dup_opt(&d->group_key, n->group_key) || !dup_opt(&d->text, n->text) ||
      notice_labels_copy(&d->group_labels, &n->group_labels)) {
    notice_free(d);
    return NULL;
  }
  if (n->nalerts > 0) {
    d->alerts = calloc(n->nalerts, sizeof *d->alerts);
    if (!d->alerts) {
      notice_free(d);
      return NULL;
    }
    for (size_t i = 0; i < n->nalerts; i++) {
      if (notice_alert_copy(&d->alerts[i], &n->alerts[i])) {
        notice_free(d);
        return NULL;
      }
      d->nalerts = i + 1;
    }
  }
  return d;
}

void notice_free(struct notice *n) {
  if (!n) {
    return;
  }
  free(n->receiver);
  free(n->group_key);
  free(n->text);
  notice_labels_cleanup(&n->group_labels);
  for (size_t i = 0; i < n->nalerts; i++) {
    notice_alert_cleanup(&n->alerts[i]);
  }
  free(n->alerts);
  free(n);
}
