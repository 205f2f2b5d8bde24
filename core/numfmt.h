/*
 * Numbers as people read them in Vietnamese or English: 1.410.312 and
 * 10,61% (English: 1,410,312 and 10.61%). One formatting for every text
 * iocd writes for a person: the notifications' words (alerts/template.c)
 * and the rules' annotations ({{value}}, {{value|pct}} in
 * rules/engine_event.c). Pure functions.
 */
#ifndef IOCD_CORE_NUMFMT_H
#define IOCD_CORE_NUMFMT_H

#include "core/buf.h"

/* Which separators: Vietnamese groups thousands with '.' and writes the
 * decimal comma; English the other way round. */
enum numfmt_lang {
  NUMFMT_VI = 0, /* 1.410.312,5 */
  NUMFMT_EN,     /* 1,410,312.5 */
};

/* Appends v to out: vi "1.410.312", "10,61", "-3,5"; en "1,410,312",
 * "10.61". Integers have no decimals, other values at most two (rounded
 * half away from zero on the number as written with 15 significant digits,
 * so 2.345 is "2,35"; trailing zeros dropped, -0 is "0"), or three
 * significant digits below 0.01 ("0,00123"); from 1e18 on and below 1e-6,
 * scientific ("1,5e+21", "1e-09"); NaN "NaN", infinities "+Inf" and "-Inf".
 * Returns IOCD_OK or a buf_* error (out may then hold part of the text). */
int numfmt_number(double v, enum numfmt_lang lang, struct buf *out);

/* Appends ratio as a percentage, ratio * 100 formatted as numfmt_number
 * does followed by "%": 0.1061 is "10,61%" (en "10.61%"), 0.3 "30%",
 * 12.5 "1.250%". NaN and infinities have no "%" ("NaN", "+Inf"). Returns
 * as numfmt_number. */
int numfmt_pct(double ratio, enum numfmt_lang lang, struct buf *out);

#endif
