/*
 * bench_startup: how iocd's start-up grows with the configuration. Writes
 * configurations of N subscriptions and N rules (N = 1,000 up to the
 * documented maximum of 10,000), once pretty-printed and once on a single
 * line (as a generator writes them), and times `iocd check` on each, which
 * loads, validates and builds the pipeline and the rules engine as a start
 * does. Linear start-up shows as a time per item that stays flat as N
 * grows; the ratio t(10,000) / t(1,000) is printed (10 is linear, 100
 * quadratic).
 *
 *   bench_startup [--max N] [--repeat K]
 *
 * IOCD_BIN runs another iocd binary.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"

static double now_s(void) {
  return (double)clock_mono_ns() / 1e9;
}

/* A configuration of n subscriptions and n rules, each rule reading its own
 * subscription's measurement, grouped by district. */
static int write_config(const char *path, int n, bool one_line) {
  struct buf b;
  buf_init(&b, 0);
  const char *nl = one_line ? "" : "\n";
  int rc = buf_printf(&b, "{\"file\": {}, %s\"subscriptions\": [", nl);
  for (int i = 0; !rc && i < n; i++) {
    rc = buf_printf(&b,
                    "%s%s  {\"name\": \"s%d\", \"topic\": "
                    "\"ioc/{district}/sys%d\", \"measurement\": \"m%d\"}",
                    i ? "," : "", nl, i, i, i);
  }
  rc = rc ? rc : buf_printf(&b, "],%s\"rules\": [", nl);
  for (int i = 0; !rc && i < n; i++) {
    rc = buf_printf(&b,
                    "%s%s  {\"name\": \"r%d\", \"expr\": \"m%d.value > %d\", "
                    "\"by\": [\"district\"]}",
                    i ? "," : "", nl, i, i, i);
  }
  rc = rc ? rc : buf_printf(&b, "]}\n");
  FILE *f = rc ? NULL : fopen(path, "w");
  if (f) {
    fwrite(b.data, 1, b.len, f);
    rc = fclose(f) ? -1 : 0;
  } else {
    rc = -1;
  }
  buf_cleanup(&b);
  return rc;
}

/* Seconds `iocd check -c path` takes, or -1 when it fails. */
static double time_check(const char *bin, const char *path) {
  double t0 = now_s();
  pid_t pid = fork();
  if (pid < 0) {
    return -1;
  }
  if (pid == 0) {
    int fd = open("/dev/null", 1);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execl(bin, bin, "check", "-c", path, (char *)NULL);
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  double t = now_s() - t0;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? t : -1;
}

int main(int argc, char **argv) {
  int max = 10000, repeat = 3;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--max") == 0 && i + 1 < argc) {
      max = (int)strtol(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
      repeat = (int)strtol(argv[++i], NULL, 10);
    } else {
      fprintf(stderr, "usage: bench_startup [--max N] [--repeat K]\n");
      return 2;
    }
  }
  const char *bin = getenv("IOCD_BIN");
  if (!bin || !*bin) {
    bin = IOCD_BIN_PATH;
  }
  char dir[] = "/tmp/iocd-bench-startup-XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  char path[64];
  snprintf(path, sizeof path, "%s/iocd.jsonc", dir);
  printf("iocd check: subscriptions and rules N each, best of %d\n", repeat);
  printf("%-8s %-10s %10s %14s\n", "N", "layout", "seconds", "us per item");
  int status = 0;
  for (int layout = 0; layout < 2; layout++) {
    double first = 0, last = 0;
    for (int n = 1000; n <= max; n *= 2) {
      int size = n > max / 2 && n < max ? max : n;
      if (write_config(path, size, layout == 1)) {
        fprintf(stderr, "cannot write %s\n", path);
        status = 1;
        break;
      }
      double best = -1;
      for (int k = 0; k < repeat; k++) {
        double t = time_check(bin, path);
        if (t >= 0 && (best < 0 || t < best)) {
          best = t;
        }
      }
      if (best < 0) {
        fprintf(stderr, "iocd check failed on N=%d\n", size);
        status = 1;
        break;
      }
      printf("%-8d %-10s %10.3f %14.1f\n", size, layout ? "one line" : "pretty",
             best, best * 1e6 / (2.0 * size));
      if (!first) {
        first = best;
      }
      last = best;
      if (size == max) {
        break;
      }
      n = size;
    }
    if (first > 0 && last > 0) {
      printf("ratio t(%d) / t(1000), %s: %.1f (10 is linear)\n", max,
             layout ? "one line" : "pretty", last / first);
    }
  }
  unlink(path);
  rmdir(dir);
  return status;
}
