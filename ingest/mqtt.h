/*
 * The MQTT client: libmosquitto driven by the libuv loop (no thread of
 * libmosquitto's). Connects in the background (the blocking name resolution
 * and TCP connect of libmosquitto run on libuv's thread pool), reconnects with
 * exponential backoff and jitter, keeps a persistent session, re-subscribes on
 * every connect, and hands each message to a callback.
 */
#ifndef IOCD_INGEST_MQTT_H
#define IOCD_INGEST_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "config/config.h"
#include "core/err.h"
#include "core/stats.h"

struct mqtt;

/* One received message; every pointer is borrowed for the call. */
struct mqtt_msg {
  const char *topic;
  const void *payload;
  size_t len;
  const char *content_type; /* MQTT 5 property, or NULL */
  int qos;
  bool retain;
};

typedef void mqtt_message_fn(void *ud, const struct mqtt_msg *msg);

/* Creates a client for cfg (borrowed until mqtt_reconfigure/mqtt_close).
 * Nothing connects before mqtt_start. Returns NULL with err set. */
struct mqtt *mqtt_new(uv_loop_t *loop, const struct config_mqtt *cfg,
                      struct stats *stats, mqtt_message_fn *on_message,
                      void *ud, struct iocd_err *err);

/* Sets the topic filters to subscribe to (copied). Sent at once when
 * connected, and again on every connect; filters that are no longer listed
 * are unsubscribed. */
int mqtt_set_subscriptions(struct mqtt *m, const char *const *filters,
                           const int *qos, size_t n);

/* Starts connecting (and reconnecting) in the background. */
int mqtt_start(struct mqtt *m);

/* Publishes (for the dead-letter topic). Returns IOCD_OK, IOCD_ECONN when not
 * connected, or IOCD_EINVAL. */
int mqtt_publish(struct mqtt *m, const char *topic, const void *payload,
                 size_t len, int qos);

/* Stops and resumes reading from the broker (back-pressure): while paused,
 * the broker queues messages for the persistent session. */
void mqtt_pause(struct mqtt *m);
void mqtt_resume(struct mqtt *m);

bool mqtt_connected(const struct mqtt *m);

/* Applies a new configuration: when the connection settings changed, the
 * client disconnects and connects again with the new ones. */
int mqtt_reconfigure(struct mqtt *m, const struct config_mqtt *cfg,
                     struct iocd_err *err);

typedef void mqtt_closed_fn(void *ud);

/* Disconnects cleanly, closes every handle, calls cb, then frees m. */
void mqtt_close(struct mqtt *m, mqtt_closed_fn *cb, void *ud);

#endif
