/*
 * Numbers as people read them (core/numfmt.h): digits rounded on their
 * decimal text, then grouped by three.
 */
#include "core/numfmt.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

/* printf's %.3g with the decimal point as the language writes it. */
static int put_scientific(struct buf *out, double v, char dec) {
  size_t start = out->len;
  int rc = buf_printf(out, "%.3g", v);
  for (size_t i = start; !rc && i < out->len; i++) {
    if (out->data[i] == '.') {
      out->data[i] = dec;
    }
  }
  return rc;
}

int numfmt_number(double v, enum numfmt_lang lang, struct buf *out) {
  if (isnan(v)) {
    return buf_puts(out, "NaN");
  }
  if (isinf(v)) {
    return buf_puts(out, v > 0 ? "+Inf" : "-Inf");
  }
  bool en = lang == NUMFMT_EN;
  char dec = en ? '.' : ',';
  char grp = en ? ',' : '.';
  double a = fabs(v);
  if (a >= 1e18 || (a > 0 && a < 1e-6)) {
    return put_scientific(out, v, dec);
  }
  int d = 0;
  if (a != trunc(a) && a < 1e15) {
    d = a >= 0.01 ? 2 : 2 - (int)floor(log10(a));
  }
  /* The number as written in decimal (15 significant digits, what a
   * double holds for sure), then rounded half up to d decimals on those
   * digits: 2.345 is 2.34499... as a double, and people expect 2,35. */
  int k = a >= 1 ? (int)floor(log10(a)) + 1 : 0;
  int prec = k >= 15 ? 0 : 15 - k;
  char s[352];
  snprintf(s, sizeof s, "%.*f", prec, a);
  char *dot = strchr(s, '.');
  size_t il = dot ? (size_t)(dot - s) : strlen(s);
  /* digits: the integer part then d decimals, with room for a carry. */
  char dig[64];
  size_t nd = 0;
  dig[nd++] = '0';
  for (size_t i = 0; i < il && nd < sizeof dig - 10; i++) {
    dig[nd++] = s[i];
  }
  for (int i = 0; i < d; i++) {
    dig[nd++] = dot && dot[1 + i] ? dot[1 + i] : '0';
  }
  if (dot && (int)strlen(dot + 1) > d && dot[1 + d] >= '5') {
    for (size_t i = nd; i-- > 0;) {
      if (dig[i] == '9') {
        dig[i] = '0';
      } else {
        dig[i]++;
        break;
      }
    }
  }
  size_t ie = nd - (size_t)d; /* end of the integer digits */
  size_t is = 0;
  while (is + 1 < ie && dig[is] == '0') {
    is++;
  }
  size_t fe = nd;
  while (fe > ie && dig[fe - 1] == '0') {
    fe--;
  }
  bool zero = ie - is == 1 && dig[is] == '0' && fe == ie;
  int rc = IOCD_OK;
  if (v < 0 && !zero) {
    rc = buf_putc(out, '-');
  }
  for (size_t i = is; i < ie && !rc; i++) {
    if (i > is && (ie - i) % 3 == 0) {
      rc = buf_putc(out, grp);
    }
    if (!rc) {
      rc = buf_putc(out, dig[i]);
    }
  }
  if (!rc && fe > ie) {
    rc = buf_putc(out, dec);
    if (!rc) {
      rc = buf_append(out, dig + ie, fe - ie);
    }
  }
  return rc;
}

int numfmt_pct(double ratio, enum numfmt_lang lang, struct buf *out) {
  int rc = numfmt_number(ratio * 100.0, lang, out);
  return rc || !isfinite(ratio) ? rc : buf_putc(out, '%');
}
