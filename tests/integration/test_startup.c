/*
 * Starting iocd as an administrator does: what the log says when a part
 * cannot start. A start that failed names the address and the system's
 * reason, and never claims that iocd started.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/harness/harness.h"

/* A socket listening on 127.0.0.1:port, as another program would hold it. */
static int hold_port(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert(fd >= 0);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  cr_assert_eq(listen(fd, 4), 0);
  return fd;
}

Test(startup, a_busy_api_port_is_named_and_nothing_is_called_started) {
  char dir[256];
  cr_assert_eq(h_tmpdir(dir, sizeof dir), 0);
  int api_port = h_free_port();
  int fd = hold_port(api_port);
  char cfg[1024];
  snprintf(cfg, sizeof cfg,
           "{\"data_dir\": \"%s/var\", \"file\": {\"path\": \"%s/out.lp\"},\n"
           " \"mqtt\": {\"port\": %d},\n"
           " \"subscriptions\": [{\"topic\": \"t/{district}\"}],\n"
           " \"api\": {\"listen\": \"127.0.0.1:%d\"}}\n",
           dir, dir, h_free_port(), api_port);
  struct h_iocd p;
  cr_assert_eq(h_iocd_start(&p, dir, cfg), 0);
  int status = h_iocd_stop(&p, 0, 10000);
  close(fd);
  cr_expect_eq(status, 1, "exit status %d", status);
  char want[128];
  snprintf(want, sizeof want,
           "cannot listen on 127.0.0.1:%d: Address already in use", api_port);
  cr_expect(h_iocd_log_contains(&p, want), "the log does not say \"%s\"",
            want);
  cr_expect(!h_iocd_log_contains(&p, "port 0"),
            "the log names port 0, not the configured port");
  cr_expect(!h_iocd_log_contains(&p, " started"),
            "the log says iocd started although it did not");
  h_rmtree(dir);
}
