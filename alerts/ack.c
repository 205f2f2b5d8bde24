/*
 * Acknowledgements and their audit trail: the set of current acks by alert
 * id, the JSON line each action leaves (cJSON, so labels in any script are
 * escaped right), and the replay of those lines at start.
 */
#include "alerts/ack.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"

struct ack_set {
  struct ack *v;
  size_t n;
  size_t cap;
};

struct ack_set *ack_set_new(void) {
  return calloc(1, sizeof(struct ack_set));
}

static void ack_cleanup(struct ack *a) {
  free(a->alertname);
  notice_labels_cleanup(&a->labels);
  free(a->by);
  free(a->principal);
  free(a->comment);
  memset(a, 0, sizeof *a);
}

void ack_set_free(struct ack_set *s) {
  if (!s) {
    return;
  }
  for (size_t i = 0; i < s->n; i++) {
    ack_cleanup(&s->v[i]);
  }
  free(s->v);
  free(s);
}

static struct ack *find(const struct ack_set *s, uint64_t id) {
  for (size_t i = 0; s && i < s->n; i++) {
    if (s->v[i].id == id) {
      return &s->v[i];
    }
  }
  return NULL;
}

const struct ack *ack_find(const struct ack_set *s, uint64_t id) {
  return find(s, id);
}

size_t ack_count(const struct ack_set *s) {
  return s ? s->n : 0;
}

const struct ack *ack_at(const struct ack_set *s, size_t i) {
  return s && i < s->n ? &s->v[i] : NULL;
}

static int64_t ms_of(int64_t ns) {
  return ns / NS_PER_MS - (ns % NS_PER_MS < 0);
}

/* Appends the audit line of one action to audit (NULL: nothing). */
static int audit_line(struct buf *audit, uint64_t id, const char *alertname,
                      const struct notice_labels *labels, const char *action,
                      const char *by, const char *principal, int64_t at_ns,
                      const char *comment) {
  if (!audit) {
    return IOCD_OK;
  }
  char idt[17];
  snprintf(idt, sizeof idt, "%016" PRIx64, id);
  cJSON *o = cJSON_CreateObject();
  cJSON *ls = cJSON_CreateObject();
  bool ok = o && ls && cJSON_AddStringToObject(o, "id", idt) &&
            (alertname ? cJSON_AddStringToObject(o, "alertname", alertname)
                       : cJSON_AddNullToObject(o, "alertname"));
  for (size_t i = 0; ok && labels && i < labels->n; i++) {
    ok = cJSON_AddStringToObject(ls, labels->v[i].name, labels->v[i].value);
  }
  if (ok) {
    ok = cJSON_AddItemToObject(o, "labels", ls);
    ls = ok ? NULL : ls;
  }
  ok = ok && cJSON_AddStringToObject(o, "action", action) &&
       (by ? cJSON_AddStringToObject(o, "by", by)
           : cJSON_AddNullToObject(o, "by")) &&
       (principal ? cJSON_AddStringToObject(o, "principal", principal)
                  : cJSON_AddNullToObject(o, "principal")) &&
       cJSON_AddNumberToObject(o, "at", (double)ms_of(at_ns)) &&
       (comment ? cJSON_AddStringToObject(o, "comment", comment)
                : cJSON_AddNullToObject(o, "comment"));
  char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  cJSON_Delete(ls);
  if (!text) {
    return IOCD_ENOMEM;
  }
  size_t before = audit->len;
  int rc = buf_puts(audit, text);
  if (!rc) {
    rc = buf_putc(audit, '\n');
  }
  if (rc) {
    buf_truncate(audit, before);
  }
  cJSON_free(text);
  return rc;
}

/* Fills a from the arguments (a zeroed). */
static int fill(struct ack *a, uint64_t id, const struct notice_labels *labels,
                const char *by, const char *principal, const char *comment,
                int64_t now_ns) {
  a->id = id;
  a->at_ns = now_ns;
  const char *name = notice_label_get(labels, "alertname");
  if (notice_labels_copy(&a->labels, labels) || !(a->by = mem_strdup(by)) ||
      (name && !(a->alertname = mem_strdup(name))) ||
      (principal && !(a->principal = mem_strdup(principal))) ||
      (comment && !(a->comment = mem_strdup(comment)))) {
    ack_cleanup(a);
    return IOCD_ENOMEM;
  }
  return IOCD_OK;
}

int ack_put(struct ack_set *s, uint64_t id, const struct notice_labels *labels,
            const char *by, const char *principal, const char *comment,
            int64_t now_ns, struct buf *audit) {
  if (!by || !by[0]) {
    return IOCD_EINVAL;
  }
  struct ack *old = find(s, id);
  if (!old && s->n >= ACK_MAX) {
    return IOCD_ELIMIT;
  }
  struct ack a = {0};
  int rc = fill(&a, id, labels, by, principal, comment, now_ns);
  if (rc) {
    return rc;
  }
  if (!old && mem_grow((void **)&s->v, &s->cap, s->n, sizeof *s->v)) {
    ack_cleanup(&a);
    return IOCD_ENOMEM;
  }
  rc = audit_line(audit, id, a.alertname, &a.labels, "ack", by, principal,
                  now_ns, comment);
  if (rc) {
    ack_cleanup(&a);
    return rc;
  }
  if (old) {
    ack_cleanup(old);
    *old = a;
  } else {
    s->v[s->n++] = a;
  }
  return IOCD_OK;
}

static void remove_at(struct ack_set *s, struct ack *a) {
  size_t i = (size_t)(a - s->v);
  ack_cleanup(a);
  memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
  s->n--;
}

int ack_remove(struct ack_set *s, uint64_t id, const char *by,
               const char *principal, const char *comment, int64_t now_ns,
               struct buf *audit) {
  if (!by || !by[0]) {
    return IOCD_EINVAL;
  }
  struct ack *a = find(s, id);
  if (!a) {
    return IOCD_ENOTFOUND;
  }
  int rc = audit_line(audit, id, a->alertname, &a->labels, "unack", by,
                      principal, now_ns, comment);
  if (rc) {
    return rc;
  }
  remove_at(s, a);
  return IOCD_OK;
}

int ack_expire(struct ack_set *s, uint64_t id, int64_t now_ns,
               struct buf *audit) {
  struct ack *a = find(s, id);
  if (!a) {
    return IOCD_ENOTFOUND;
  }
  int rc = audit_line(audit, id, a->alertname, &a->labels, "expire", NULL, NULL,
                      now_ns, NULL);
  if (rc) {
    return rc;
  }
  remove_at(s, a);
  return IOCD_OK;
}

static bool parse_id(const char *t, uint64_t *id) {
  if (!t || strlen(t) != 16) {
    return false;
  }
  uint64_t v = 0;
  for (const char *p = t; *p; p++) {
    int d;
    if (*p >= '0' && *p <= '9') {
      d = *p - '0';
    } else if (*p >= 'a' && *p <= 'f') {
      d = *p - 'a' + 10;
    } else {
      return false;
    }
    v = v << 4 | (uint64_t)d;
  }
  *id = v;
  return true;
}

/* Replays one line; *bad when it is not an audit object or could not be
 * applied. Returns IOCD_OK or IOCD_ENOMEM. */
static int replay(struct ack_set *s, const char *line, size_t n, bool *bad) {
  *bad = true;
  cJSON *o = cJSON_ParseWithLength(line, n);
  const cJSON *act = cJSON_GetObjectItemCaseSensitive(o, "action");
  const cJSON *at = cJSON_GetObjectItemCaseSensitive(o, "at");
  const cJSON *by = cJSON_GetObjectItemCaseSensitive(o, "by");
  const cJSON *pr = cJSON_GetObjectItemCaseSensitive(o, "principal");
  const cJSON *cm = cJSON_GetObjectItemCaseSensitive(o, "comment");
  const cJSON *lo = cJSON_GetObjectItemCaseSensitive(o, "labels");
  const cJSON *idj = cJSON_GetObjectItemCaseSensitive(o, "id");
  uint64_t id;
  if (!cJSON_IsString(act) || !cJSON_IsNumber(at) ||
      !parse_id(cJSON_IsString(idj) ? idj->valuestring : NULL, &id) ||
      fabs(at->valuedouble) > 9.0e15) {
    cJSON_Delete(o);
    return IOCD_OK;
  }
  int64_t at_ns = (int64_t)at->valuedouble * NS_PER_MS;
  int rc = IOCD_OK;
  if (strcmp(act->valuestring, "ack") == 0 && cJSON_IsString(by) &&
      cJSON_IsObject(lo)) {
    struct notice_labels ls = {0};
    const cJSON *it;
    cJSON_ArrayForEach(it, lo) {
      if (!rc && cJSON_IsString(it)) {
        rc = notice_labels_set(&ls, it->string, it->valuestring);
      }
    }
    if (!rc) {
      rc = ack_put(s, id, &ls, by->valuestring,
                   cJSON_IsString(pr) ? pr->valuestring : NULL,
                   cJSON_IsString(cm) ? cm->valuestring : NULL, at_ns, NULL);
      *bad = rc != IOCD_OK;
      rc = rc == IOCD_ENOMEM ? rc : IOCD_OK;
    }
    notice_labels_cleanup(&ls);
  } else if (strcmp(act->valuestring, "unack") == 0 ||
             strcmp(act->valuestring, "expire") == 0) {
    struct ack *a = find(s, id);
    if (a) {
      remove_at(s, a);
    }
    *bad = false;
  }
  cJSON_Delete(o);
  return rc;
}

int ack_load(struct ack_set *s, const char *text, size_t len, size_t *bad) {
  size_t nbad = 0;
  int rc = IOCD_OK;
  size_t i = 0;
  while (!rc && i < len) {
    const char *nl = memchr(text + i, '\n', len - i);
    size_t end = nl ? (size_t)(nl - text) : len;
    bool blank = true;
    for (size_t k = i; k < end; k++) {
      blank = blank && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r');
    }
    if (!blank) {
      bool b;
      rc = replay(s, text + i, end - i, &b);
      nbad += b;
    }
    i = end + 1;
  }
  if (bad) {
    *bad = nbad;
  }
  return rc;
}
