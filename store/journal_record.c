/*
 * The journal's record format (journal_int.h describes the layout): encoding
 * a record, decoding and checking one (CRC-32 from zlib), and the
 * little-endian byte helpers. Pure functions, exercised directly by the unit
 * tests.
 */
#include <string.h>
#include <zlib.h>

#include "store/journal_int.h"

/* ---- The record format -------------------------------------------------- */

static void put16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) {
    p[i] = (unsigned char)(v >> (8 * i));
  }
}

static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) {
    p[i] = (unsigned char)(v >> (8 * i));
  }
}

static uint16_t get16(const unsigned char *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t record_crc(const unsigned char *hdr,
                           const unsigned char *payload, size_t len) {
  uLong c = crc32(0L, Z_NULL, 0);
  c = crc32(c, hdr, 12);
  c = crc32(c, hdr + 16, JOURNAL_HDR - 16);
  if (len > 0) {
    c = crc32(c, payload, (uInt)len);
  }
  return (uint32_t)c;
}

int journal__encode(struct buf *out, uint64_t seq, int64_t wall_ms,
                    const char *name, size_t name_len, const uint32_t *ends,
                    uint32_t npoints, const char *lp, size_t lp_len) {
  if (npoints == 0) {
    return IOCD_EINVAL;
  }
  if (name_len > JOURNAL_NAME_MAX || lp_len > JOURNAL_RECORD_MAX ||
      npoints > JOURNAL_RECORD_MAX / 4) {
    return IOCD_ETOOBIG;
  }
  size_t payload = name_len + (size_t)npoints * 4 + lp_len;
  if (payload > JOURNAL_RECORD_MAX) {
    return IOCD_ETOOBIG;
  }
  int rc = buf_reserve(out, JOURNAL_HDR + payload);
  if (rc) {
    return rc;
  }
  unsigned char *h = (unsigned char *)out->data + out->len;
  memcpy(h, JOURNAL_MAGIC, 4);
  put16(h + 4, JOURNAL_VERSION);
  put16(h + 6, (uint16_t)name_len);
  put32(h + 8, (uint32_t)payload);
  put64(h + 16, seq);
  put64(h + 24, (uint64_t)wall_ms);
  put32(h + 32, npoints);
  put32(h + 36, (uint32_t)lp_len);
  unsigned char *p = h + JOURNAL_HDR;
  if (name_len) {
    memcpy(p, name, name_len);
  }
  for (uint32_t i = 0; i < npoints; i++) {
    put32(p + name_len + 4 * (size_t)i, ends[i]);
  }
  if (lp_len) {
    memcpy(p + name_len + 4 * (size_t)npoints, lp, lp_len);
  }
  put32(h + 12, record_crc(h, p, payload));
  out->len += JOURNAL_HDR + payload;
  out->data[out->len] = '\0';
  return IOCD_OK;
}

enum jdecode journal__decode(const void *ptr, size_t avail, struct jview *v) {
  const unsigned char *h = ptr;
  if (avail < JOURNAL_HDR) {
    if (avail >= 4 && memcmp(h, JOURNAL_MAGIC, 4) != 0) {
      return JREC_MAGIC;
    }
    return JREC_SHORT;
  }
  if (memcmp(h, JOURNAL_MAGIC, 4) != 0 || get16(h + 4) != JOURNAL_VERSION) {
    return JREC_MAGIC;
  }
  size_t name_len = get16(h + 6);
  size_t payload = journal__get32(h + 8);
  uint32_t npoints = journal__get32(h + 32);
  size_t lp_len = journal__get32(h + 36);
  if (payload > JOURNAL_RECORD_MAX || npoints == 0 ||
      npoints > JOURNAL_RECORD_MAX / 4 ||
      name_len + (size_t)npoints * 4 + lp_len != payload) {
    return JREC_LENGTH;
  }
  if (avail - JOURNAL_HDR < payload) {
    return JREC_SHORT;
  }
  const unsigned char *p = h + JOURNAL_HDR;
  if (record_crc(h, p, payload) != journal__get32(h + 12)) {
    return JREC_CHECKSUM;
  }
  v->seq = journal__get64(h + 16);
  v->wall_ms = (int64_t)journal__get64(h + 24);
  v->npoints = npoints;
  v->name = (const char *)p;
  v->name_len = name_len;
  v->ends = p + name_len;
  v->lp = (const char *)(p + name_len + 4 * (size_t)npoints);
  v->lp_len = lp_len;
  v->size = JOURNAL_HDR + payload;
  /* The checksum held, so lines that do not tile the line protocol were
   * written that way: still refuse them, the outputs rely on it. */
  uint32_t prev = 0;
  for (uint32_t i = 0; i < npoints; i++) {
    uint32_t e = journal__get32(v->ends + 4 * (size_t)i);
    if (e <= prev || e > lp_len) {
      return JREC_LENGTH;
    }
    prev = e;
  }
  if (prev != lp_len) {
    return JREC_LENGTH;
  }
  return JREC_OK;
}

uint32_t journal__end(const struct jview *v, uint32_t i) {
  return journal__get32(v->ends + 4 * (size_t)i);
}

const char *journal__decode_text(enum jdecode d) {
  switch (d) {
    case JREC_OK:
      return "ok";
    case JREC_SHORT:
      return "truncated record";
    case JREC_MAGIC:
      return "no record header";
    case JREC_LENGTH:
      return "bad record length";
    case JREC_CHECKSUM:
      return "bad checksum";
  }
  return "damaged record";
}
