/*
 * core/curl_loop.c on a fresh uv loop: a transfer's end reaches its done
 * callback with curl's result, a closed loop aborts what runs and calls
 * each done once, a done callback may close it, a removed transfer is never
 * reported, and every handle is closed at the end (uv_loop_close is 0).
 * The peers are local sockets: a port nothing listens on, and one that
 * accepts connections and never answers.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "core/curl_loop.h"
#include "core/err.h"

struct done_log {
  int calls;
  CURLcode rc[8];
  struct curl_loop *close_from_done;
  bool closed;
};

static void on_done(void *ud, CURL *e, CURLcode rc) {
  struct done_log *d = ud;
  cr_assert_not_null(e);
  d->rc[d->calls++ % 8] = rc;
  if (d->close_from_done) {
    curl_loop_close(d->close_from_done, NULL, NULL);
    d->close_from_done = NULL;
  }
}

static void on_closed(void *ud) {
  ((struct done_log *)ud)->closed = true;
}

/* A listening socket on 127.0.0.1 that never accepts: connections complete
 * (the backlog) and then nothing is ever said. Returns the fd; *port. */
static int silent_listener(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_geq(fd, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  cr_assert_eq(listen(fd, 16), 0);
  socklen_t sl = sizeof sa;
  cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  *port = ntohs(sa.sin_port);
  return fd;
}

/* A port nothing listens on (bound, read back, released). */
static int dead_port(void) {
  int port;
  int fd = silent_listener(&port);
  close(fd);
  return port;
}

static CURL *get(const char *url, long timeout_ms) {
  CURL *e = curl_easy_init();
  cr_assert_not_null(e);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  return e;
}

Test(curl_loop, a_transfer_ends_in_its_done_callback_with_curls_result) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct curl_loop *cl = curl_loop_new(&loop);
  cr_assert_not_null(cl);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", dead_port());
  CURL *e = get(url, 5000);
  struct done_log d = {0};
  cr_assert_eq(curl_loop_add(cl, e, on_done, &d), IOCD_OK);
  cr_assert_eq(d.calls, 0, "never from within curl_loop_add");
  cr_assert_eq(curl_loop_running(cl), 1);
  while (d.calls == 0) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  cr_assert_eq(d.rc[0], CURLE_COULDNT_CONNECT);
  cr_assert_eq(curl_loop_running(cl), 0);
  curl_easy_cleanup(e);
  curl_loop_close(cl, on_closed, &d);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert(d.closed);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(curl_loop, a_timeout_comes_from_the_loop_timer) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct curl_loop *cl = curl_loop_new(&loop);
  int port;
  int fd = silent_listener(&port);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
  CURL *e = get(url, 300);
  struct done_log d = {0};
  cr_assert_eq(curl_loop_add(cl, e, on_done, &d), IOCD_OK);
  while (d.calls == 0) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  cr_assert_eq(d.rc[0], CURLE_OPERATION_TIMEDOUT);
  curl_easy_cleanup(e);
  curl_loop_close(cl, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&loop), 0);
  close(fd);
}

Test(curl_loop, closing_aborts_what_runs_and_reports_each_once) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct curl_loop *cl = curl_loop_new(&loop);
  int port;
  int fd = silent_listener(&port);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
  CURL *e1 = get(url, 30000), *e2 = get(url, 30000);
  struct done_log d = {0};
  cr_assert_eq(curl_loop_add(cl, e1, on_done, &d), IOCD_OK);
  cr_assert_eq(curl_loop_add(cl, e2, on_done, &d), IOCD_OK);
  for (int i = 0; i < 20; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
  }
  cr_assert_eq(d.calls, 0);
  curl_loop_close(cl, on_closed, &d);
  cr_assert_eq(d.calls, 2, "both reported before close returns");
  cr_assert_eq(d.rc[0], CURLE_ABORTED_BY_CALLBACK);
  cr_assert_eq(d.rc[1], CURLE_ABORTED_BY_CALLBACK);
  cr_assert_not(d.closed, "closed comes from the loop");
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert(d.closed);
  cr_assert_eq(d.calls, 2);
  curl_easy_cleanup(e1);
  curl_easy_cleanup(e2);
  cr_assert_eq(uv_loop_close(&loop), 0);
  close(fd);
}

Test(curl_loop, a_done_callback_may_close_the_loop) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct curl_loop *cl = curl_loop_new(&loop);
  int port;
  int fd = silent_listener(&port);
  char dead[64], silent[64];
  snprintf(dead, sizeof dead, "http://127.0.0.1:%d/", dead_port());
  snprintf(silent, sizeof silent, "http://127.0.0.1:%d/", port);
  CURL *e1 = get(dead, 5000), *e2 = get(silent, 30000);
  struct done_log d = {.close_from_done = cl};
  cr_assert_eq(curl_loop_add(cl, e1, on_done, &d), IOCD_OK);
  cr_assert_eq(curl_loop_add(cl, e2, on_done, &d), IOCD_OK);
  uv_run(&loop, UV_RUN_DEFAULT);
  /* The first done closed it; the other was aborted by that close. */
  cr_assert_eq(d.calls, 2);
  cr_assert_eq(d.rc[0], CURLE_COULDNT_CONNECT);
  cr_assert_eq(d.rc[1], CURLE_ABORTED_BY_CALLBACK);
  curl_easy_cleanup(e1);
  curl_easy_cleanup(e2);
  cr_assert_eq(uv_loop_close(&loop), 0);
  close(fd);
}

Test(curl_loop, a_removed_transfer_is_never_reported) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct curl_loop *cl = curl_loop_new(&loop);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", dead_port());
  CURL *e = get(url, 5000);
  struct done_log d = {0};
  cr_assert_eq(curl_loop_add(cl, e, on_done, &d), IOCD_OK);
  curl_loop_remove(cl, e);
  cr_assert_eq(curl_loop_running(cl), 0);
  /* Removing again, or what never ran, does nothing. */
  curl_loop_remove(cl, e);
  for (int i = 0; i < 20; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
  }
  cr_assert_eq(d.calls, 0);
  curl_loop_close(cl, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(d.calls, 0);
  curl_easy_cleanup(e);
  cr_assert_eq(uv_loop_close(&loop), 0);
}
