/*
 * Alert events: made from an instance, their annotation templates
 * ({{value|pct}}, {{$labels.district}}) checked and rendered in the
 * engine's language, and handed to the engine's on_event hook.
 */
#include <math.h>
#include <string.h>

#include "core/numfmt.h"
#include "rules/engine_int.h"

#define MAX_TEMPLATE 4096

const char *engine__severity_of(const struct rule *r, int level) {
  if (r->nlevels == 0) {
    return "critical";
  }
  if (level < 1 || (size_t)level > r->nlevels) {
    level = 1;
  }
  return r->levels[level - 1].severity;
}

/* ---- templates ----------------------------------------------------------- */

/* Checks a template: every {{ closes, names are words, filters known. */
int engine__check_template(const char *t, struct iocd_err *err) {
  size_t n = strlen(t);
  if (n > MAX_TEMPLATE) {
    return iocd_err_set(err, IOCD_EPARSE, "longer than %d bytes", MAX_TEMPLATE);
  }
  for (const char *p = strstr(t, "{{"); p; p = strstr(p, "{{")) {
    const char *end = strstr(p + 2, "}}");
    if (!end) {
      return iocd_err_set(err, IOCD_EPARSE,
                          "column %d: '{{' without a closing '}}'",
                          (int)(p - t) + 1);
    }
    const char *bar = memchr(p + 2, '|', (size_t)(end - p - 2));
    if (bar) {
      const char *f = bar + 1;
      while (*f == ' ') {
        f++;
      }
      size_t fn = (size_t)(end - f);
      while (fn > 0 && f[fn - 1] == ' ') {
        fn--;
      }
      if (!(fn == 3 && memcmp(f, "pct", 3) == 0) &&
          !(fn == 3 && memcmp(f, "int", 3) == 0)) {
        return iocd_err_set(err, IOCD_EPARSE,
                            "column %d: unknown filter '%.*s' (pct or int)",
                            (int)(f - t) + 1, (int)fn, f);
      }
    }
    p = end + 2;
  }
  return IOCD_OK;
}

static const char *label_value(const struct alert_event *ev, const char *k,
                               size_t kn) {
  for (size_t i = 0; ev->group && i < ev->group->n; i++) {
    if (strlen(ev->group->keys[i]) == kn &&
        memcmp(ev->group->keys[i], k, kn) == 0) {
      return ev->group->values[i];
    }
  }
  for (size_t i = 0; i < ev->nlabels; i++) {
    if (strlen(ev->labels[i].key) == kn &&
        memcmp(ev->labels[i].key, k, kn) == 0) {
      return ev->labels[i].value;
    }
  }
  return NULL;
}

static bool word_is(const char *k, size_t kn, const char *w) {
  return strlen(w) == kn && memcmp(k, w, kn) == 0;
}

int engine_render(const char *tmpl, const struct alert_event *ev,
                  enum engine_lang lang, struct buf *out,
                  struct iocd_err *err) {
  enum numfmt_lang nl = lang == ENGINE_LANG_EN ? NUMFMT_EN : NUMFMT_VI;
  int rc = engine__check_template(tmpl, err);
  if (rc) {
    return rc;
  }
  const char *p = tmpl;
  for (;;) {
    const char *open = strstr(p, "{{");
    if (!open) {
      return buf_puts(out, p);
    }
    rc = buf_append(out, p, (size_t)(open - p));
    if (rc) {
      return rc;
    }
    const char *close = strstr(open + 2, "}}");
    const char *k = open + 2;
    const char *kend = close;
    const char *bar = memchr(k, '|', (size_t)(close - k));
    bool pct = false, whole = false;
    if (bar) {
      kend = bar;
      const char *f = bar + 1;
      while (*f == ' ') {
        f++;
      }
      pct = *f == 'p';
      whole = *f == 'i';
    }
    while (k < kend && *k == ' ') {
      k++;
    }
    while (kend > k && kend[-1] == ' ') {
      kend--;
    }
    size_t kn = (size_t)(kend - k);
    if (kn > 8 && memcmp(k, "$labels.", 8) == 0) {
      k += 8;
      kn -= 8;
    }
    bool num = false, have = false;
    double v = 0;
    if (word_is(k, kn, "value")) {
      num = true;
      have = ev->has_value;
      v = ev->value;
    } else if (word_is(k, kn, "threshold")) {
      num = true;
      have = ev->has_threshold;
      v = ev->threshold;
    }
    if (num) {
      if (!have) {
        rc = buf_puts(out, "-");
      } else if (pct) {
        rc = numfmt_pct(v, nl, out);
      } else if (whole) {
        rc = numfmt_number(round(v), nl, out);
      } else {
        rc = numfmt_number(v, nl, out);
      }
    } else {
      const char *s = NULL;
      if (word_is(k, kn, "rule")) {
        s = ev->rule;
      } else if (word_is(k, kn, "severity")) {
        s = ev->severity;
      } else if (word_is(k, kn, "state")) {
        s = alert_state_name(ev->state);
      } else {
        s = label_value(ev, k, kn);
      }
      rc = s ? buf_puts(out, s) : IOCD_OK;
    }
    if (rc) {
      return rc;
    }
    p = close + 2;
  }
}

/* ---- events -------------------------------------------------------------- */

void engine__fill_event(const struct engine *e, const struct inst *in,
                        struct alert_event *ev) {
  (void)e;
  const struct rule *r = in->rule;
  *ev = (struct alert_event){
      .rule = r->name,
      .group = &in->group,
      .labels = r->label_view,
      .nlabels = r->nlabels,
      .prev = in->a.state,
      .state = in->a.state,
      .severity = engine__severity_of(r, in->a.level),
      .t_ns = in->a.since_ns,
      .active_since_ns = in->a.pending_since_ns,
      .firing_since_ns = in->a.firing_since_ns,
      .has_value = in->has_value,
      .value = in->value,
      .has_threshold = in->has_threshold,
      .threshold = in->threshold,
      .by = in->by,
      .reason = in->reason ? in->reason : "",
  };
}

/* Renders the annotations of ev into texts (one buffer, NUL-separated) and
 * delivers it. */
void engine__deliver(struct engine *e, const struct inst *in,
                     struct alert_event *ev) {
  const struct rule *r = in->rule;
  struct alert_kv views[MAX_ANNOTATIONS];
  size_t nv = r->nannotations;
  struct buf b;
  buf_init(&b, EVENT_TEXT_MAX);
  size_t offs[MAX_ANNOTATIONS];
  for (size_t i = 0; i < nv; i++) {
    offs[i] = b.len;
    if (engine_render(r->annotations[i].value, ev, e->opts.lang, &b, NULL) ||
        buf_putc(&b, '\0')) {
      nv = i;
      break;
    }
  }
  for (size_t i = 0; i < nv; i++) {
    views[i] = (struct alert_kv){.key = r->annotations[i].key,
                                 .value = b.data + offs[i]};
  }
  ev->annotations = views;
  ev->nannotations = nv;
  e->st.events++;
  if (e->opts.on_event) {
    e->opts.on_event(e->opts.event_ud, ev);
  }
  buf_cleanup(&b);
}
