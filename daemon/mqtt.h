/*
 * The MQTT connection, driven by the daemon's own loop (no libmosquitto
 * thread).  Only this module includes mosquitto.h.
 *
 * Every connection attempt uses a fresh libmosquitto instance, so nothing
 * it queued for an old connection is ever resent behind our back: the
 * store's outbox is the only queue, and the daemon hands messages over
 * only while connected and only up to its window.
 */
#ifndef COLDGATE_MQTT_H
#define COLDGATE_MQTT_H

#include <stdbool.h>
#include <stddef.h>

struct mqtt_opts {
	const char	*host;
	int		 port;
	int		 keepalive;
	const char	*client_id;
	const char	*username;		/* NULL for none */
	const char	*password_file;		/* first line is the password */
	const char	*tls_ca_file;		/* NULL: no TLS */
	const char	*tls_cert_file, *tls_key_file;
	int		 max_inflight;
	const char	*will_topic;		/* retained QoS 1 Last Will */
	const char	*will_payload;
};

struct mqtt_cbs {
	void	(*connected)(void *arg);
	/* was_connected: false when an attempt failed before its CONNACK. */
	void	(*disconnected)(void *arg, const char *why, bool was_connected);
	void	(*puback)(void *arg, int mid);
	void	(*message)(void *arg, const char *topic, const void *payload, size_t len);
};

enum mqtt_state { MQTT_IDLE, MQTT_CONNECTING, MQTT_CONNECTED };

struct mqtt;

/* The options are copied.  0 or -errno (bad password file, out of memory). */
int	 mqtt_new(struct mqtt **out, const struct mqtt_opts *, const struct mqtt_cbs *, void *arg);
void	 mqtt_free(struct mqtt *);		/* drops any connection; accepts NULL */

/* Start a connection attempt.  0, or -errno when it failed at once. */
int	 mqtt_connect(struct mqtt *);
/* Close cleanly: a DISCONNECT, so the broker does not send the Will (say offline first). */
void	 mqtt_disconnect(struct mqtt *);
enum mqtt_state mqtt_state(const struct mqtt *);

/* The socket to poll, or -1.  It changes across connections. */
int	 mqtt_fd(const struct mqtt *);
bool	 mqtt_want_write(const struct mqtt *);
void	 mqtt_on_readable(struct mqtt *);
void	 mqtt_on_writable(struct mqtt *);
/* Keepalive pings and connect timeouts; call about once a second. */
void	 mqtt_tick(struct mqtt *);

/* 0 with *mid set, or -ENOTCONN / -EIO.  Never queues while disconnected. */
int	 mqtt_publish(struct mqtt *, const char *topic, const void *payload, size_t len,
	     int qos, bool retain, int *mid);
int	 mqtt_subscribe(struct mqtt *, const char *pattern, int qos);

#endif
