/*
 * Inside the template module: the compiled form of a {{...}} template,
 * shared by the parser (template_syntax.c) and the renderer (template.c).
 */
#ifndef IOCD_ALERTS_TEMPLATE_INT_H
#define IOCD_ALERTS_TEMPLATE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "alerts/template.h"
#include "core/numfmt.h"

/* The separators of numbers in lang. */
static inline enum numfmt_lang template__numfmt_lang(
    enum config_language lang) {
  return lang == CONFIG_LANG_EN ? NUMFMT_EN : NUMFMT_VI;
}

/* What a {{name}} stands for (template.h lists them). */
enum tpl_field {
  F_ALERTNAME,
  F_DISTRICT,
  F_SYSTEM,
  F_SEVERITY,
  F_STATUS,
  F_VALUE,
  F_THRESHOLD,
  F_VALUE_PCT,
  F_THRESHOLD_PCT,
  F_SINCE,
  F_SINCE_RFC3339,
  F_UNTIL,
  F_DURATION,
  F_SUMMARY,
  F_DESCRIPTION,
  F_LINK,
  F_ACKED_BY,
  F_ACK_COMMENT,
  F_ID,
  F_REASON,
  /* The notification's own fields, F_TAG to F_NOTICE_ID. */
  F_TAG,
  F_RECEIVER,
  F_COUNT,
  F_FIRING_COUNT,
  F_RESOLVED_COUNT,
  F_ESCALATION,
  F_NOTICE_TEXT,
  F_NOTICE_ID,
  F_LABEL,      /* labels.NAME */
  F_ANNOTATION, /* annotations.NAME */
};

/* {{#alerts}}: every alert; {{#firing}}, {{#resolved}}: those only. */
enum tpl_block {
  B_ALERTS,
  B_FIRING,
  B_RESOLVED,
};

/* The names of the blocks, by enum tpl_block. */
extern const char *const template__block_names[3];

/* A template is a list of nodes; a block is the nodes between its N_OPEN
 * and N_CLOSE. */
enum tpl_node_kind {
  N_TEXT,
  N_FIELD,
  N_OPEN,
  N_CLOSE,
};

struct tpl_node {
  enum tpl_node_kind kind;
  enum tpl_field field;
  enum tpl_block block;
  const char *s; /* N_TEXT: the text; F_LABEL, F_ANNOTATION: the name */
  size_t n;      /* N_TEXT: its length */
  size_t end;    /* N_OPEN: the index of its N_CLOSE */
  size_t off;    /* N_OPEN: where its "{{" is in the source */
};

/* A compiled template. */
struct tpl {
  char *src; /* owned copy; nodes point into it */
  struct tpl_node *v;
  size_t n, cap;
  bool has_block;
};

/* Where a template is wrong: the byte offset of the "{{" at fault. */
struct tpl_error {
  size_t off;
  char msg[160];
};

/* Compiles text into *t (free with template__cleanup). Returns IOCD_OK,
 * IOCD_EPARSE with *pe, or IOCD_ENOMEM; on error *t holds nothing. */
int template__compile(const char *text, struct tpl *t, struct tpl_error *pe);

void template__cleanup(struct tpl *t);

/* Words pe for iocd_err: "FILE:LINE:COL: NAME: ..." with place, else
 * "NAME: column N: ...". Returns IOCD_EPARSE. */
int template__report(const char *text, const struct tpl_error *pe,
                     const struct config_place *place, const char *name,
                     struct iocd_err *err);

#endif
