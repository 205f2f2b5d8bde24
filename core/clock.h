/*
 * Clock reads live here so that every other module can take time as an
 * argument (rules/ never reads a clock).
 */
#ifndef IOCD_CORE_CLOCK_H
#define IOCD_CORE_CLOCK_H

#include <stdint.h>

#define NS_PER_SEC INT64_C(1000000000)
#define NS_PER_MS INT64_C(1000000)

/* Wall-clock time in nanoseconds since the Unix epoch. */
int64_t clock_realtime_ns(void);

/* Monotonic time in nanoseconds, for durations and timeouts. */
int64_t clock_mono_ns(void);

#endif
