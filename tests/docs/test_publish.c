/*
 * The README's "What a district publishes", run as it is written: the
 * mosquitto_pub lines of its ```sh block are published to a real mosquitto
 * that iocd, on config/iocd.example.jsonc (its servers, ports and data_dir
 * rewritten for the test), reads from, and the rows of the block after it
 * ("<arrival time, ns>" in place of a timestamp) must be what a real
 * influxd then holds: the same measurements, tags, fields and field types,
 * stamped with the time the messages arrived.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/file.h"
#include "core/lp.h"
#include "core/point.h"
#include "tests/docs/docmd.h"
#include "tests/harness/harness.h"

#define SECTION "What a district publishes"
#define ARRIVAL " <arrival time, ns>"

/* One message of the README. */
struct message {
  char *topic;
  char *payload;
  int qos;
};

/* The next line of *s (cut in place), or NULL at the end. */
static char *next_line(char **s) {
  while (**s == '\n') {
    (*s)++;
  }
  if (!**s) {
    return NULL;
  }
  char *line = *s;
  *s += strcspn(*s, "\n");
  if (**s) {
    *(*s)++ = '\0';
  }
  return line;
}

/* Splits a shell command line into words: '...', "..." (with \" \\ \$ \`
 * escapes) and bare words (with \x), as sh does for these examples.
 * Returns false on an unterminated quote. */
static bool shell_words(const char *s, char ***out, size_t *n) {
  *out = NULL;
  *n = 0;
  size_t cap = strlen(s) + 1;
  for (;;) {
    while (*s == ' ' || *s == '\t') {
      s++;
    }
    if (!*s) {
      return true;
    }
    char *w = md_alloc(cap);
    size_t len = 0;
    while (*s && *s != ' ' && *s != '\t') {
      if (*s == '\'') {
        const char *end = strchr(s + 1, '\'');
        if (!end) {
          free(w);
          return false;
        }
        memcpy(w + len, s + 1, (size_t)(end - s - 1));
        len += (size_t)(end - s - 1);
        s = end + 1;
      } else if (*s == '"') {
        for (s++; *s && *s != '"'; s++) {
          if (*s == '\\' && s[1] && strchr("\"\\$`", s[1])) {
            s++;
          }
          w[len++] = *s;
        }
        if (*s != '"') {
          free(w);
          return false;
        }
        s++;
      } else {
        if (*s == '\\' && s[1]) {
          s++;
        }
        w[len++] = *s++;
      }
    }
    w[len] = '\0';
    *out = md_grow(*out, (*n + 1) * sizeof **out);
    (*out)[(*n)++] = w;
  }
}

/* The mosquitto_pub lines of the section's first ```sh block, and the text
 * of the block right after it (the rows). */
static size_t readme_examples(struct message **msgs, char **rows) {
  size_t np;
  struct md_page *pages = md_pages(IOCD_SOURCE_DIR, &np);
  const struct md_page *readme = &pages[0];
  cr_assert_str_eq(readme->name, "README.md");
  const struct md_block *pub = NULL, *out = NULL;
  for (size_t k = 0; k < readme->nblocks; k++) {
    const struct md_block *b = &readme->blocks[k];
    if (strcmp(b->heading, SECTION) == 0 && strcmp(b->lang, "sh") == 0 &&
        strstr(b->text, "mosquitto_pub")) {
      pub = b;
      out = k + 1 < readme->nblocks ? &readme->blocks[k + 1] : NULL;
      break;
    }
  }
  cr_assert_not_null(
      pub, "README.md: no ```sh block of mosquitto_pub in \"" SECTION "\"");
  cr_assert(out && strcmp(out->heading, SECTION) == 0,
            "README.md:%d: no block of rows after the mosquitto_pub lines",
            pub->line);
  *rows = md_strdup(out->text);
  *msgs = NULL;
  size_t n = 0;
  char *text = md_strdup(pub->text);
  int ln = pub->line;
  char *rest = text;
  for (char *line; (line = next_line(&rest)) != NULL;) {
    ln++;
    char **w;
    size_t nw;
    cr_assert(shell_words(line, &w, &nw), "README.md:%d: unbalanced quotes",
              ln);
    if (nw == 0 || strcmp(w[0], "mosquitto_pub") != 0) {
      cr_assert_fail("README.md:%d: not a mosquitto_pub line: %s", ln, line);
    }
    struct message m = {NULL, NULL, 0};
    for (size_t i = 1; i < nw; i++) {
      cr_assert(i + 1 < nw, "README.md:%d: %s needs a value", ln, w[i]);
      if (strcmp(w[i], "-t") == 0) {
        m.topic = md_strdup(w[++i]);
      } else if (strcmp(w[i], "-m") == 0) {
        m.payload = md_strdup(w[++i]);
      } else if (strcmp(w[i], "-q") == 0) {
        char *end;
        m.qos = (int)strtol(w[++i], &end, 10);
        cr_assert(*end == '\0' && m.qos >= 0 && m.qos <= 2,
                  "README.md:%d: -q %s", ln, w[i]);
      } else {
        cr_assert_fail("README.md:%d: option %s is not understood here", ln,
                       w[i]);
      }
    }
    cr_assert(m.topic && m.payload, "README.md:%d: -t and -m are needed", ln);
    *msgs = md_grow(*msgs, (n + 1) * sizeof **msgs);
    (*msgs)[n++] = m;
    for (size_t i = 0; i < nw; i++) {
      free(w[i]);
    }
    free(w);
  }
  free(text);
  md_pages_free(pages, np);
  return n;
}

/* The MQTT filter of a topic pattern: each {capture} level is a "+". */
static void pattern_filter(const char *topic, char *out, size_t n) {
  size_t len = 0;
  for (const char *t = topic; *t && len + 2 < n;) {
    if (*t == '{') {
      out[len++] = '+';
      t += strcspn(t, "}");
      t += *t == '}';
    } else {
      out[len++] = *t++;
    }
  }
  out[len] = '\0';
}

/* The example configuration, on the test's servers and directory; the
 * filters of its subscriptions go to filters (n of them at most), for
 * waiting until iocd has subscribed to every one. */
static size_t example_config(struct h_env *e, char (*filters)[256], size_t n) {
  struct buf b;
  buf_init(&b, 1 << 24);
  struct iocd_err err;
  cr_assert_eq(
      file_read(IOCD_SOURCE_DIR "/config/iocd.example.jsonc", &b, &err),
      IOCD_OK, "%s", err.msg);
  cJSON *root = NULL;
  struct buf errors;
  buf_init(&errors, 1 << 16);
  cr_assert_eq(
      config_parse_jsonc("iocd.example.jsonc", b.data, b.len, &root, &errors),
      IOCD_OK);
  char s[512];
  snprintf(s, sizeof s, "%s/data", e->dir);
  cJSON_ReplaceItemInObjectCaseSensitive(root, "data_dir",
                                         cJSON_CreateString(s));
  cJSON *mqtt = cJSON_GetObjectItemCaseSensitive(root, "mqtt");
  cJSON_ReplaceItemInObjectCaseSensitive(mqtt, "port",
                                         cJSON_CreateNumber(e->mq.port));
  cJSON_ReplaceItemInObjectCaseSensitive(mqtt, "host",
                                         cJSON_CreateString("127.0.0.1"));
  cJSON *influx = cJSON_GetObjectItemCaseSensitive(root, "influxdb");
  cJSON_ReplaceItemInObjectCaseSensitive(influx, "url",
                                         cJSON_CreateString(e->db.url));
  cJSON *api = cJSON_GetObjectItemCaseSensitive(root, "api");
  snprintf(s, sizeof s, "127.0.0.1:%d", e->api_port);
  cJSON_ReplaceItemInObjectCaseSensitive(api, "listen", cJSON_CreateString(s));
  /* The rule files are named relative to the example. */
  cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "rule_files");
  cJSON *f;
  cJSON_ArrayForEach(f, files) {
    snprintf(s, sizeof s, "%s/config/%s", IOCD_SOURCE_DIR, f->valuestring);
    cJSON_SetValuestring(f, s);
  }
  size_t nf = 0;
  cJSON *sub;
  cJSON_ArrayForEach(sub,
                     cJSON_GetObjectItemCaseSensitive(root, "subscriptions")) {
    cJSON *topic = cJSON_GetObjectItemCaseSensitive(sub, "topic");
    cr_assert(nf < n && cJSON_IsString(topic));
    pattern_filter(topic->valuestring, filters[nf++], sizeof filters[0]);
  }
  char *text = cJSON_Print(root);
  cr_assert_not_null(text);
  cr_assert_lt(strlen(text), sizeof e->config);
  snprintf(e->config, sizeof e->config, "%s", text);
  free(text);
  cJSON_Delete(root);
  buf_cleanup(&errors);
  buf_cleanup(&b);
  return nf;
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static bool str_is(struct str s, const char *z) {
  return s.len == strlen(z) && memcmp(s.p, z, s.len) == 0;
}

static const char *type_name(enum field_type t) {
  return field_type_name(t);
}

/* The rows InfluxDB holds for measurement m in [t0, t1]: the "series"
 * object of SELECT *, or NULL (the caller frees root). */
static cJSON *select_rows(const struct h_env *e, struct str m, int64_t t0,
                          int64_t t1, cJSON **root) {
  char q[512];
  snprintf(q, sizeof q,
           "SELECT * FROM \"%.*s\" WHERE time >= %lld AND time <= %lld",
           (int)m.len, m.p, (long long)t0, (long long)t1);
  char *json = NULL;
  if (h_influx_query(&e->db, "ioc", q, &json) != 0) {
    return NULL;
  }
  *root = cJSON_Parse(json);
  free(json);
  cJSON *res =
      cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(*root, "results"), 0);
  return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(res, "series"), 0);
}

/* The type InfluxDB gave field f of m ("integer", "float", ...). */
static char *field_type(const struct h_env *e, struct str m, struct str f) {
  char q[512];
  snprintf(q, sizeof q, "SHOW FIELD KEYS FROM \"%.*s\"", (int)m.len, m.p);
  char *json = NULL;
  cr_assert_eq(h_influx_query(&e->db, "ioc", q, &json), 0);
  cJSON *root = cJSON_Parse(json);
  free(json);
  cJSON *series = cJSON_GetArrayItem(
      cJSON_GetObjectItemCaseSensitive(
          cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "results"),
                             0),
          "series"),
      0);
  char *type = NULL;
  cJSON *row;
  cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(series, "values")) {
    if (str_is(f, cJSON_GetArrayItem(row, 0)->valuestring)) {
      type = md_strdup(cJSON_GetArrayItem(row, 1)->valuestring);
    }
  }
  cJSON_Delete(root);
  return type;
}

/* Compares one row of InfluxDB's answer with point p: every column but
 * time is one of p's tags or fields, with its value, and every tag and
 * field is there. Returns NULL, or what differs (malloc'd). */
static char *row_differs(const struct point_batch *pb, const struct point *p,
                         const cJSON *columns, const cJSON *values) {
  struct buf why;
  buf_init(&why, 1 << 16);
  size_t matched = 0;
  int i = 0;
  const cJSON *col;
  cJSON_ArrayForEach(col, columns) {
    const cJSON *v = cJSON_GetArrayItem(values, i++);
    const char *name = col->valuestring;
    if (strcmp(name, "time") == 0 || cJSON_IsNull(v)) {
      continue;
    }
    bool known = false;
    for (size_t t = p->tag0; t < p->tag0 + p->ntags; t++) {
      if (str_is(pb->tags[t].key, name)) {
        known = true;
        if (!cJSON_IsString(v) || !str_is(pb->tags[t].value, v->valuestring)) {
          buf_printf(&why, " tag %s differs;", name);
        }
      }
    }
    for (size_t k = p->field0; k < p->field0 + p->nfields; k++) {
      const struct field *fd = &pb->fields[k];
      if (!str_is(fd->key, name)) {
        continue;
      }
      known = true;
      bool same = false;
      switch (fd->type) {
        case FIELD_INT:
          same = cJSON_IsNumber(v) && v->valuedouble == (double)fd->v.i;
          break;
        case FIELD_FLOAT:
          same = cJSON_IsNumber(v) && v->valuedouble == fd->v.f;
          break;
        case FIELD_BOOL:
          same = cJSON_IsBool(v) && cJSON_IsTrue(v) == fd->v.b;
          break;
        case FIELD_STRING:
          same = cJSON_IsString(v) && str_is(fd->v.s, v->valuestring);
          break;
        default:
          break;
      }
      if (!same) {
        char *got = cJSON_PrintUnformatted(v);
        buf_printf(&why, " field %s is %s;", name, got ? got : "?");
        free(got);
      }
    }
    if (known) {
      matched++;
    } else {
      buf_printf(&why, " %s is not in the README's row;", name);
    }
  }
  if (matched != p->ntags + p->nfields) {
    buf_printf(&why, " %zu of the row's %zu tags and fields are there;",
               matched, p->ntags + p->nfields);
  }
  char *r = why.len ? buf_detach(&why, NULL) : NULL;
  buf_cleanup(&why);
  return r;
}

Test(docs_publish, the_readme_rows_are_what_influxdb_receives, .timeout = 240) {
  struct message *msgs;
  char *rows;
  size_t nmsgs = readme_examples(&msgs, &rows);
  cr_assert_gt(nmsgs, 0);

  /* The rows, as line protocol with the arrival time left out. */
  struct point_batch pb;
  pb_init(&pb);
  char *lp = md_alloc(strlen(rows) + 1);
  size_t lpn = 0;
  char *rest = rows;
  for (char *line; (line = next_line(&rest)) != NULL;) {
    size_t n = strlen(line), an = strlen(ARRIVAL);
    cr_assert(n > an && strcmp(line + n - an, ARRIVAL) == 0,
              "README.md: a row ends with \"" ARRIVAL "\": %s", line);
    memcpy(lp + lpn, line, n - an);
    lpn += n - an;
    lp[lpn++] = '\n';
  }
  struct iocd_err err;
  cr_assert_eq(lp_parse(&pb, lp, lpn, 1, &err), IOCD_OK,
               "README.md: a row is not line protocol: %s", err.msg);
  cr_assert_gt(pb.npoints, 0, "README.md: no rows shown");

  struct h_env e;
  cr_assert_eq(h_env_start(&e), 0);
  char filters[64][256];
  size_t nf = example_config(&e, filters, 64);
  cr_assert_eq(h_env_iocd_start(&e), 0, "iocd did not subscribe; see %s",
               e.iocd.log);
  for (size_t i = 0; i < nf; i++) {
    char line[300];
    snprintf(line, sizeof line, "subscribed to %s (", filters[i]);
    cr_assert_eq(h_iocd_wait_log(&e.iocd, line, 20000), 0,
                 "iocd did not subscribe to %s; see %s", filters[i],
                 e.iocd.log);
  }
  int64_t t0 = now_ns();
  for (size_t i = 0; i < nmsgs; i++) {
    cr_assert_eq(
        h_publish(e.mq.port, msgs[i].topic, msgs[i].payload,
                  strlen(msgs[i].payload), msgs[i].qos ? msgs[i].qos : 1, NULL),
        0);
  }

  /* Each row of the README is a row of InfluxDB, arrived since t0. */
  for (size_t i = 0; i < pb.npoints; i++) {
    const struct point *p = &pb.points[i];
    char *why = NULL;
    for (int tries = 0; tries < 200; tries++) {
      cJSON *root = NULL;
      cJSON *series = select_rows(&e, p->measurement, t0, now_ns(), &root);
      const cJSON *values = cJSON_GetObjectItemCaseSensitive(series, "values");
      free(why);
      why = md_strdup(" no row yet;");
      const cJSON *v;
      cJSON_ArrayForEach(v, values) {
        free(why);
        why = row_differs(
            &pb, p, cJSON_GetObjectItemCaseSensitive(series, "columns"), v);
        if (!why) {
          break;
        }
      }
      size_t want = 0;
      for (size_t k = 0; k < pb.npoints; k++) {
        want += pb.points[k].measurement.len == p->measurement.len &&
                memcmp(pb.points[k].measurement.p, p->measurement.p,
                       p->measurement.len) == 0;
      }
      if (!why && (size_t)cJSON_GetArraySize(values) != want) {
        why = md_strdup(" InfluxDB has another number of rows;");
      }
      cJSON_Delete(root);
      if (!why) {
        break;
      }
      h_sleep_ms(100);
    }
    cr_expect_null(why, "README.md: row %zu (%.*s) is not in InfluxDB:%s",
                   i + 1, (int)p->measurement.len, p->measurement.p,
                   why ? why : "");
    free(why);
    for (size_t k = p->field0; k < p->field0 + p->nfields; k++) {
      const struct field *fd = &pb.fields[k];
      char *type = field_type(&e, p->measurement, fd->key);
      cr_expect(type && strcmp(type, type_name(fd->type)) == 0,
                "README.md: row %zu: field %.*s is %s in InfluxDB, not %s",
                i + 1, (int)fd->key.len, fd->key.p, type ? type : "absent",
                type_name(fd->type));
      free(type);
    }
  }
  cr_expect_eq(h_iocd_stop(&e.iocd, SIGTERM, 15000), 0);
  h_env_stop(&e);
  pb_cleanup(&pb);
  free(lp);
  free(rows);
  for (size_t i = 0; i < nmsgs; i++) {
    free(msgs[i].topic);
    free(msgs[i].payload);
  }
  free(msgs);
}
