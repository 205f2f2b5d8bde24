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
#include "ingest/ingest.h"

struct mqtt;

/* At most this many user properties of a message are handed on; the rest
 * are dropped (an identity check then finds its property absent only if
 * the publisher sent it after this many others). */
#define MQTT_MAX_USER_PROPS 16

/* One received message; every pointer is borrowed for the call. */
struct mqtt_msg {
  const char *topic;
  const void *payload;
  size_t len;
  const char *content_type;                  /* MQTT 5 property, or NULL */
  const struct ingest_user_prop *user_props; /* MQTT 5, in the order sent */
  size_t nuser_props;
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

/* Told once what became of a message given to mqtt_publish: IOCD_OK when
 * the broker acknowledged it (PUBACK for QoS 1, PUBCOMP for QoS 2; for QoS 0
 * as soon as it is written to the connection's queue), IOCD_ECONN when the
 * connection was lost or closed first (the broker may or may not have it),
 * IOCD_EIO when the broker answered with a failure reason code. */
typedef void mqtt_published_fn(void *ud, int rc);

/* Publishes payload on topic (dead letters, the alerts' MQTT receiver),
 * retained when retain is true; an empty payload with retain clears the
 * topic's retained message. done (may be NULL) is called later, from the
 * loop, never from within this call. Returns IOCD_OK, IOCD_ECONN when not
 * connected, IOCD_ENOMEM or IOCD_EINVAL; done is not called then. */
int mqtt_publish(struct mqtt *m, const char *topic, const void *payload,
                 size_t len, int qos, bool retain, mqtt_published_fn *done,
                 void *ud);

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
