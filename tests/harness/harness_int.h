/*
 * What the harness's files share (harness.c, receivers.c): process
 * spawning tied to the test process and waiting for ports. Test code
 * only.
 */
#ifndef IOCD_TESTS_HARNESS_INT_H
#define IOCD_TESTS_HARNESS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Forks and execs argv[0] with stdin from /dev/null and stdout+stderr
 * appended to log; the child dies with the test process. Returns the pid
 * or -1. */
pid_t h__spawn(char *const argv[], const char *log);
/* SIGTERM, then SIGKILL after grace_ms; *pid becomes 0. */
void h__stop_child(pid_t *pid, int grace_ms);
bool h__child_alive(pid_t pid);
/* True when 127.0.0.1:port accepts a TCP connection now. */
bool h__port_accepts(int port);
/* Monotonic milliseconds. */
int64_t h__now_ms(void);

#endif
