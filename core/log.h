/*
 * Logging to stderr, one line per event, in logfmt ("ts=... level=warn
 * mod=ingest msg=...") or JSON, so that journald, a terminal and a log shipper
 * all read the same lines. A rate limiter keeps bad input from flooding it.
 */
#ifndef IOCD_CORE_LOG_H
#define IOCD_CORE_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum log_format { LOG_FMT_TEXT = 0, LOG_FMT_JSON };

void log_set_level(enum log_level level);
void log_set_format(enum log_format fmt);
enum log_level log_get_level(void);

/* Parses "error", "warn", "info" or "debug". Returns IOCD_OK or IOCD_EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

bool log_enabled(enum log_level level);

/* Writes one event. mod names the module ("ingest", "store", ...). */
void log_write(enum log_level level, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(mod, ...) log_write(LOG_ERROR, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_write(LOG_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...) \
  do { \
    if (log_enabled(LOG_INFO)) log_write(LOG_INFO, mod, __VA_ARGS__); \
  } while (0)
#define log_debug(mod, ...) \
  do { \
    if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, mod, __VA_ARGS__); \
  } while (0)

/* A token bucket for one kind of noisy log line: at most `burst` lines per
 * `window_ms`; the lines held back are counted and reported with the next one
 * that is allowed. Caller storage, zero-initialized. */
struct log_limit {
  int64_t window_start_ms;
  uint32_t used;
  uint32_t suppressed;
};

/* Returns true when a line may be written now. *suppressed receives how many
 * were held back since the last allowed line (then reset). */
bool log_limit_allow(struct log_limit *l, int64_t now_ms, uint32_t burst,
                     int64_t window_ms, uint32_t *suppressed);

#endif
