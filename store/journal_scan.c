/*
 * The journal's scan at start: the segment files in the directory are
 * listed in order, every record is read with its checksum, damaged records
 * are reported and skipped, and each output (reader) is placed after its
 * checkpoint, whose file is read here. The counts found for reader 0 go to
 * the store's books through the hooks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "store/journal_int.h"

/* ---- Checkpoint files --------------------------------------------------- */

/* Reads a checkpoint file. Returns 1 with *seq, 0 when there is none, -1
 * when it is not one (reported by the caller). */
static int read_checkpoint(const char *path, uint64_t *seq) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno == ENOENT ? 0 : -1;
  }
  char text[40];
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) {
    return -1;
  }
  text[n] = '\0';
  if (text[0] < '0' || text[0] > '9') {
    return -1;
  }
  errno = 0;
  char *end;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno || (*end != '\n' && *end != '\0')) {
    return -1;
  }
  *seq = (uint64_t)v;
  return 1;
}

/* ---- Segment files ------------------------------------------------------ */

static bool seg_file_name(const char *name, uint64_t *seq) {
  size_t n = strlen(name);
  if (n != SEG_DIGITS + strlen(SEG_SUFFIX) ||
      strcmp(name + SEG_DIGITS, SEG_SUFFIX) != 0) {
    return false;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < SEG_DIGITS; i++) {
    if (name[i] < '0' || name[i] > '9') {
      return false;
    }
    v = v * 10 + (uint64_t)(name[i] - '0');
  }
  *seq = v;
  return true;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The sequence numbers of the segment files in dir, sorted. Leftover
 * temporary checkpoint files are removed on the way. */
static int list_segments(struct journal *j, uint64_t **out, size_t *n,
                         struct iocd_err *err) {
  DIR *d = opendir(j->dir);
  if (!d) {
    return iocd_err_set(err, IOCD_EIO, "journal: cannot read %s: %s", j->dir,
                        strerror(errno));
  }
  uint64_t *v = NULL;
  size_t cnt = 0, cap = 0;
  int rc = IOCD_OK;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    uint64_t seq;
    size_t len = strlen(e->d_name);
    if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0 &&
        strncmp(e->d_name, "checkpoint.", 11) == 0) {
      char *p = journal__path_join(j->dir, e->d_name);
      if (p) {
        unlink(p);
      }
      free(p);
      continue;
    }
    if (!seg_file_name(e->d_name, &seq)) {
      continue;
    }
    if (cnt == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      uint64_t *nv = journal__regrow(v, cnt, ncap, sizeof *nv);
      if (!nv) {
        rc = iocd_err_set(err, IOCD_ENOMEM, "journal: out of memory");
        break;
      }
      v = nv;
      cap = ncap;
    }
    v[cnt++] = seq;
  }
  closedir(d);
  if (rc) {
    free(v);
    return rc;
  }
  if (cnt > 1) {
    qsort(v, cnt, sizeof *v, cmp_u64);
  }
  *out = v;
  *n = cnt;
  return IOCD_OK;
}

/* Per-source points found for reader 0, reported to the hooks at the end. */
struct found {
  uint64_t *v;
  size_t n;
};

static int found_add(struct found *f, uint32_t id, uint64_t points) {
  if (journal__counts_fit(&f->v, &f->n, id) != IOCD_OK) {
    return IOCD_ENOMEM;
  }
  f->v[id] += points;
  return IOCD_OK;
}

static void report_damage(struct jseg *g, uint64_t off, enum jdecode d,
                          uint64_t to, uint64_t end, uint64_t skipped) {
  char name[64];
  journal__seg_name(g, name, sizeof name);
  if (to < end && d == JREC_SHORT) {
    d = JREC_LENGTH;
  }
  if (to >= end && d == JREC_SHORT) {
    log_error("journal",
              "journal %s offset %" PRIu64 ": truncated record (%" PRIu64
              " bytes at the end of the file); ignored",
              name, off, end - off);
  } else if (to >= end) {
    log_error("journal",
              "journal %s offset %" PRIu64
              ": %s; skipped the rest of the "
              "segment (%" PRIu64 " bytes)",
              name, off, journal__decode_text(d), end - off);
  } else {
    log_error("journal",
              "journal %s offset %" PRIu64 ": %s; skipped %" PRIu64
              " record%s (resynchronised at offset %" PRIu64 ")",
              name, off, journal__decode_text(d), skipped,
              skipped == 1 ? "" : "s", to);
  }
}

/* Reads every record of g: counts, where each reader resumes, damage. */
static int scan_segment(struct journal *j, struct jseg *g, uint64_t end,
                        const uint64_t *conf, bool *placed, struct found *found,
                        uint64_t *last_seq) {
  uint64_t off = 0;
  uint64_t expected = g->first_seq;
  while (off < end) {
    struct jview v;
    enum jdecode d = journal__read_at(j, g, off, end, &v);
    if (d == JREC_OK && v.seq < expected) {
      d = JREC_LENGTH;
    }
    if (d != JREC_OK) {
      struct jview nv;
      uint64_t to = journal__resync(j, g, off, end, &nv);
      uint64_t skipped = 1;
      if (to < end && nv.seq > expected) {
        skipped = nv.seq - expected;
      }
      report_damage(g, off, d, to, end, skipped);
      stat_add(j->m_corrupt, skipped);
      if (journal__seg_add_bad(g, off, to) != IOCD_OK) {
        return IOCD_ENOMEM;
      }
      off = to;
      continue;
    }
    uint32_t src;
    int rc = journal__name_to_id(j, v.name, v.name_len, &src);
    if (!rc) {
      rc = journal__seg_src(g, src);
    }
    if (rc) {
      return rc;
    }
    if (g->points == 0) {
      g->first_wall_ms = v.wall_ms;
    }
    g->last_wall_ms = v.wall_ms;
    g->points += v.npoints;
    g->end_seq = v.seq + 1;
    for (unsigned i = 0; i < j->nreaders; i++) {
      if (v.seq < conf[i]) {
        continue;
      }
      if (!placed[i]) {
        placed[i] = true;
        j->rd[i].back.seg = g;
        j->rd[i].back.off = off;
      }
      journal__count_add(&g->utk[i], v.npoints, v.lp_len);
      journal__count_add(&j->rd[i].utk, v.npoints, v.lp_len);
      j->rd[i].pending += v.npoints;
      j->rd[i].pending_bytes += v.lp_len;
      if (i == 0) {
        g->src_utk[src] += v.npoints;
        if (found_add(found, src, v.npoints) != IOCD_OK) {
          return IOCD_ENOMEM;
        }
      }
    }
    if (v.seq > *last_seq) {
      *last_seq = v.seq;
    }
    expected = v.seq + 1;
    off += v.size;
  }
  return IOCD_OK;
}

int journal__scan(struct journal *j, struct iocd_err *err) {
  uint64_t conf[STORE_MAX_OUTPUTS];
  uint64_t min_conf = UINT64_MAX, max_conf = 0;
  for (unsigned i = 0; i < j->nreaders; i++) {
    char *path = journal__ckpt_path(j, &j->rd[i]);
    if (!path) {
      return iocd_err_set(err, IOCD_ENOMEM, "journal: out of memory");
    }
    uint64_t seq = 0;
    int got = read_checkpoint(path, &seq);
    if (got < 0) {
      log_warn("journal",
               "%s is not a checkpoint: %s resumes at the oldest record", path,
               j->rd[i].name);
      seq = 0;
    }
    free(path);
    conf[i] = seq;
    if (seq < min_conf) {
      min_conf = seq;
    }
    if (seq > max_conf) {
      max_conf = seq;
    }
  }
  uint64_t *names = NULL;
  size_t nnames = 0;
  int rc = list_segments(j, &names, &nnames, err);
  if (rc) {
    return rc;
  }
  bool placed[STORE_MAX_OUTPUTS] = {false};
  struct found found = {0};
  uint64_t last_seq = 0;
  uint64_t next = 1;
  for (size_t k = 0; k < nnames && !rc; k++) {
    struct jseg *g = journal__seg_new(names[k]);
    if (!g) {
      rc = iocd_err_set(err, IOCD_ENOMEM, "journal: out of memory");
      break;
    }
    if (names[k] + 1 > next) {
      next = names[k] + 1;
    }
    char *path = journal__seg_path(j, g);
    struct stat sb;
    if (!path || stat(path, &sb) != 0) {
      free(path);
      journal__seg_free(g);
      continue;
    }
    /* Every record of a segment followed by one that starts at or before
     * every checkpoint was confirmed: no need to read it. */
    bool done = k + 1 < nnames && names[k + 1] <= min_conf;
    if (done || sb.st_size == 0) {
      unlink(path);
      free(path);
      journal__seg_free(g);
      continue;
    }
    free(path);
    g->bytes = (uint64_t)sb.st_size;
    journal__seg_link(j, g);
    rc = scan_segment(j, g, g->bytes, conf, placed, &found, &last_seq);
    if (rc) {
      iocd_err_set(err, rc, "journal: out of memory");
    }
  }
  free(names);
  if (rc) {
    free(found.v);
    return rc;
  }
  journal__rb_forget(j);
  if (last_seq + 1 > next) {
    next = last_seq + 1;
  }
  if (max_conf > next) {
    next = max_conf;
  }
  j->next_seq = next;
  j->cache_first = next;
  j->flushed_seq = next;
  uint64_t oldest = j->head ? j->head->first_seq : next;
  for (unsigned i = 0; i < j->nreaders; i++) {
    struct jreader *r = &j->rd[i];
    uint64_t c = conf[i] < oldest ? oldest : conf[i];
    if (c > next) {
      c = next;
    }
    r->back.seq = c;
    r->conf = c;
    if (!placed[i]) {
      r->back.seg = NULL;
      r->back.off = 0;
    }
    journal__set_backlog(r);
  }
  for (size_t s = 0; s < found.n; s++) {
    if (found.v[s]) {
      j->hooks.found(j->hooks.ud, (uint32_t)s, found.v[s]);
    }
  }
  free(found.v);
  return IOCD_OK;
}
