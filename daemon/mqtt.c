/*
 * The MQTT link over libmosquitto, driven by the daemon's loop (see
 * mqtt.h).  Owns the libmosquitto instance, connection attempts and their
 * warnings; must not queue or retry messages itself: the outbox
 * (store.c) and the pump (uplink.c) decide what is sent and when.
 */
#include "mqtt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>

#include "log.h"

struct mqtt {
	struct mosquitto	*mosq;		/* NULL while idle */
	enum mqtt_state		 state;
	struct timespec		 attempt;	/* when the current attempt started */
	struct mqtt_cbs		 cbs;
	void			*arg;

	char			*host, *client_id, *username, *password;
	char			*ca_file, *cert_file, *key_file;
	char			*will_topic, *will_payload;
	int			 port, keepalive, max_inflight;
	bool			 lib_ref;	/* holds a mosquitto_lib_init reference */
	char			 last_fail[128]; /* why the last connect failed, "" after a CONNACK */
};

static int mqtt_lib_refs;

static char *
dup_or_null(const char *s, bool *oom)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*oom = true;
	return d;
}

/* The first line of the file, without its newline. */
static int
read_password(const char *path, char **out)
{
	FILE *f;
	char buf[512];

	if ((f = fopen(path, "r")) == NULL) {
		int e = errno;

		log_warn("mqtt.password_file %s", path);
		return -e;
	}
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	if ((*out = strdup(buf)) == NULL)
		return -ENOMEM;
	return 0;
}

int
mqtt_new(struct mqtt **out, const struct mqtt_opts *o, const struct mqtt_cbs *cbs, void *arg)
{
	struct mqtt *m;
	bool oom = false;
	int rc;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return -ENOMEM;
	m->cbs = *cbs;
	m->arg = arg;
	m->port = o->port;
	m->keepalive = o->keepalive;
	m->max_inflight = o->max_inflight;
	m->host = dup_or_null(o->host, &oom);
	m->client_id = dup_or_null(o->client_id, &oom);
	m->username = dup_or_null(o->username, &oom);
	m->ca_file = dup_or_null(o->tls_ca_file, &oom);
	m->cert_file = dup_or_null(o->tls_cert_file, &oom);
	m->key_file = dup_or_null(o->tls_key_file, &oom);
	m->will_topic = dup_or_null(o->will_topic, &oom);
	m->will_payload = dup_or_null(o->will_payload, &oom);
	if (oom) {
		mqtt_free(m);
		return -ENOMEM;
	}
	if (o->password_file != NULL && (rc = read_password(o->password_file, &m->password)) < 0) {
		mqtt_free(m);
		return rc;
	}
	if (mqtt_lib_refs++ == 0)
		mosquitto_lib_init();
	m->lib_ref = true;
	*out = m;
	return 0;
}

static void
mqtt_drop(struct mqtt *m)
{
	if (m->mosq != NULL) {
		mosquitto_destroy(m->mosq);
		m->mosq = NULL;
	}
	m->state = MQTT_IDLE;
}

void
mqtt_free(struct mqtt *m)
{
	if (m == NULL)
		return;
	mqtt_drop(m);
	if (m->lib_ref && --mqtt_lib_refs == 0)
		mosquitto_lib_cleanup();
	free(m->host);
	free(m->client_id);
	free(m->username);
	if (m->password != NULL) {
		explicit_bzero(m->password, strlen(m->password));
		free(m->password);
	}
	free(m->ca_file);
	free(m->cert_file);
	free(m->key_file);
	free(m->will_topic);
	free(m->will_payload);
	free(m);
}

/* Say why a connection attempt failed: at warning level when the reason is new. */
static void
mqtt_connect_failed(struct mqtt *m, const char *why)
{
	/*
	 * A wrong mqtt.host or port must show without -v; a broker that stays
	 * away for days must not fill the journal.
	 */
	if (strcmp(why, m->last_fail) != 0)
		log_warnx("mqtt: cannot connect to %s:%d (mqtt.host, mqtt.port): %s; retrying",
		    m->host, m->port, why);
	else
		log_debug("mqtt: connect to %s:%d: %s", m->host, m->port, why);
	snprintf(m->last_fail, sizeof(m->last_fail), "%s", why);
}

/* The connection is gone, whichever way: tell the daemon once. */
static void
mqtt_lost(struct mqtt *m, const char *why)
{
	enum mqtt_state was = m->state;

	mqtt_drop(m);
	if (was == MQTT_CONNECTING)
		mqtt_connect_failed(m, why);
	if (was != MQTT_IDLE && m->cbs.disconnected != NULL)
		m->cbs.disconnected(m->arg, why, was == MQTT_CONNECTED);
}

static void
on_connect(struct mosquitto *mosq, void *arg, int rc)
{
	struct mqtt *m = arg;

	(void)mosq;
	if (rc != 0) {
		/* Refused (bad credentials, client id): drop and let the daemon back off. */
		m->state = MQTT_CONNECTING;
		log_warnx("mqtt: broker %s:%d refused the connection: %s", m->host, m->port,
		    mosquitto_connack_string(rc));
		return;
	}
	m->state = MQTT_CONNECTED;
	m->last_fail[0] = '\0';
	if (m->cbs.connected != NULL)
		m->cbs.connected(m->arg);
}

static void
on_publish(struct mosquitto *mosq, void *arg, int mid)
{
	struct mqtt *m = arg;

	(void)mosq;
	if (m->cbs.puback != NULL)
		m->cbs.puback(m->arg, mid);
}

static void
on_message(struct mosquitto *mosq, void *arg, const struct mosquitto_message *msg)
{
	struct mqtt *m = arg;

	(void)mosq;
	if (m->cbs.message != NULL)
		m->cbs.message(m->arg, msg->topic, msg->payload, (size_t)msg->payloadlen);
}

static int
mqtt_setup(struct mqtt *m)
{
	struct mosquitto *mosq;
	int rc;

	if ((mosq = mosquitto_new(m->client_id, true, m)) == NULL)
		return -errno;
	m->mosq = mosq;
	mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	/*
	 * A replayed backlog is one small PUBLISH per PUBACK: with Nagle each
	 * waits for the peer's delayed ACK, which capped a drain at a few
	 * thousand messages a second.
	 */
	mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
	/* Our window is the bound; libmosquitto must not queue behind it. */
	mosquitto_max_inflight_messages_set(mosq, (unsigned)m->max_inflight);
	mosquitto_connect_callback_set(mosq, on_connect);
	mosquitto_publish_callback_set(mosq, on_publish);
	mosquitto_message_callback_set(mosq, on_message);
	if (m->will_topic != NULL &&
	    (rc = mosquitto_will_set(mosq, m->will_topic, (int)strlen(m->will_payload),
	    m->will_payload, 1, true)) != MOSQ_ERR_SUCCESS) {
		log_warnx("mqtt: cannot set the Last Will: %s", mosquitto_strerror(rc));
		return -EINVAL;
	}
	if (m->username != NULL &&
	    (rc = mosquitto_username_pw_set(mosq, m->username, m->password)) != MOSQ_ERR_SUCCESS) {
		log_warnx("mqtt: username: %s", mosquitto_strerror(rc));
		return -EINVAL;
	}
	if (m->ca_file != NULL &&
	    (rc = mosquitto_tls_set(mosq, m->ca_file, NULL, m->cert_file, m->key_file, NULL))
	    != MOSQ_ERR_SUCCESS) {
		log_warnx("mqtt: TLS files (mqtt.tls): %s", mosquitto_strerror(rc));
		return -EINVAL;
	}
	return 0;
}

int
mqtt_connect(struct mqtt *m)
{
	int rc;

	mqtt_drop(m);
	if ((rc = mqtt_setup(m)) < 0) {
		mqtt_drop(m);
		return rc;
	}
	clock_gettime(CLOCK_MONOTONIC, &m->attempt);
	m->state = MQTT_CONNECTING;
	rc = mosquitto_connect_async(m->mosq, m->host, m->port, m->keepalive);
	if (rc != MOSQ_ERR_SUCCESS) {
		int e = rc == MOSQ_ERR_ERRNO ? errno : rc == MOSQ_ERR_EAI ? EHOSTUNREACH : EIO;
		mqtt_connect_failed(m, rc == MOSQ_ERR_ERRNO ? strerror(e) :
		    rc == MOSQ_ERR_EAI ? "cannot resolve the host name" : mosquitto_strerror(rc));
		mqtt_drop(m);
		return -e;
	}
	return 0;
}

void
mqtt_disconnect(struct mqtt *m)
{
	if (m->state == MQTT_CONNECTED) {
		mosquitto_disconnect(m->mosq);
		/* Push the DISCONNECT packet out before the socket goes. */
		mosquitto_loop_write(m->mosq, 1);
	}
	mqtt_drop(m);
}

enum mqtt_state
mqtt_state(const struct mqtt *m)
{
	return m->state;
}

int
mqtt_fd(const struct mqtt *m)
{
	return m->mosq != NULL ? mosquitto_socket(m->mosq) : -1;
}

bool
mqtt_want_write(const struct mqtt *m)
{
	return m->mosq != NULL && mosquitto_want_write(m->mosq);
}

static void
mqtt_check(struct mqtt *m, int rc, const char *what)
{
	char why[128];

	if (rc == MOSQ_ERR_SUCCESS || m->mosq == NULL)
		return;
	snprintf(why, sizeof(why), "%s: %s", what,
	    rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
	mqtt_lost(m, why);
}

void
mqtt_on_readable(struct mqtt *m)
{
	if (m->mosq == NULL)
		return;
	mqtt_check(m, mosquitto_loop_read(m->mosq, m->max_inflight), "read");
	/* A refused CONNACK leaves the socket open: close it here. */
	if (m->mosq != NULL && mosquitto_socket(m->mosq) < 0)
		mqtt_lost(m, "connection closed");
}

void
mqtt_on_writable(struct mqtt *m)
{
	if (m->mosq == NULL)
		return;
	mqtt_check(m, mosquitto_loop_write(m->mosq, 1), "write");
}

void
mqtt_tick(struct mqtt *m)
{
	struct timespec now;

	if (m->mosq == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (m->state == MQTT_CONNECTING && now.tv_sec - m->attempt.tv_sec > m->keepalive) {
		mqtt_lost(m, "no CONNACK from the broker");
		return;
	}
	mqtt_check(m, mosquitto_loop_misc(m->mosq), "keepalive");
	if (m->mosq != NULL && mosquitto_socket(m->mosq) < 0)
		mqtt_lost(m, "connection closed");
}

int
mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos,
    bool retain, int *mid)
{
	int rc;

	/*
	 * libmosquitto accepts a QoS 1 publish while disconnected, answers
	 * MOSQ_ERR_NO_CONN and still sends it after a reconnect; so we
	 * never hand it anything unless the session is up.
	 */
	if (m->state != MQTT_CONNECTED)
		return -ENOTCONN;
	rc = mosquitto_publish(m->mosq, mid, topic, (int)len, payload, qos, retain);
	if (rc == MOSQ_ERR_SUCCESS)
		return 0;
	mqtt_check(m, rc, "publish");
	return rc == MOSQ_ERR_NO_CONN ? -ENOTCONN : -EIO;
}

int
mqtt_subscribe(struct mqtt *m, const char *pattern, int qos)
{
	if (m->state != MQTT_CONNECTED)
		return -ENOTCONN;
	return mosquitto_subscribe(m->mosq, NULL, pattern, qos) == MOSQ_ERR_SUCCESS ? 0 : -EIO;
}
