/*
 * The uplink: the MQTT link, the outbox pump and its in-flight window, and
 * the messages it carries -- the retained status, the telemetry windows,
 * events -- built into the daemon's one message buffer and queued through
 * the store (SPEC §4-5).  Owns the uplink fields of struct daemon (see
 * daemon.h); must not touch sensors, outputs or the alarm engine's
 * records, and never writes the store except through the outbox.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "mqtt.h"
#include "payload.h"
#include "sensor.h"

static void on_message(void *, const char *, const void *, size_t);

void
uplink_queue(struct daemon *d, enum msg_kind kind, const char *topic, bool retain)
{
	const char *text = jb_text(&d->jb);
	int64_t seq;

	if (text == NULL) {
		log_warnx("out of memory building a message for %s", topic);
		return;
	}
	seq = store_outbox_push(d->store, kind, topic, text, d->jb.len, 1, retain,
	    now_ms(CLOCK_REALTIME));
	if (seq < 0)
		log_warnx("could not store a message for %s; it is lost", topic);
	d->pump = true;
}

static int
outbox_send(const struct outbox_msg *m, void *arg)
{
	struct daemon *d = arg;
	int mid, rc;

	/* The outbox hands messages over once per connection, in seq order, within the window. */
	assert(m->seq > d->cursor);
	assert(d->ninflight < d->window && d->ninflight < d->capinflight);
	rc = mqtt_publish(d->mqtt, m->topic, m->payload, m->len, m->qos, m->retain, &mid);
	if (rc < 0)
		return 1;
	d->inflight[d->ninflight++] = (struct inflight){ mid, m->seq };
	d->cursor = m->seq;
	return 0;
}

/* Hand the broker the next undelivered messages, up to the window. */
void
uplink_pump(struct daemon *d)
{
	d->pump = false;
	while (mqtt_state(d->mqtt) == MQTT_CONNECTED && d->ninflight < d->window) {
		int n = store_outbox_fetch(d->store, d->cursor, d->window - d->ninflight,
		    outbox_send, d);

		if (n <= 0 || mqtt_state(d->mqtt) != MQTT_CONNECTED)
			break;
	}
	if (!d->caught_up && d->ninflight == 0 && mqtt_state(d->mqtt) == MQTT_CONNECTED) {
		d->caught_up = true;
		if (d->acked > 0)
			log_info("mqtt: outbox caught up: %lld messages delivered in %.3f s",
			    (long long)d->acked,
			    (double)(now_ms(CLOCK_MONOTONIC) - d->connected_at) / 1000.0);
	}
}

/* ---- messages ---- */

void
uplink_event(struct daemon *d, struct payload_event *e)
{
	e->gw = d->conf->gateway.id;
	e->seq = store_next_seq(d->store);
	if (e->ts == 0)
		e->ts = now_ms(CLOCK_REALTIME);
	payload_event(&d->jb, e);
	if (e->type != PAYLOAD_SUMMARY)
		uplink_event_queue(d);
}

void
uplink_event_queue(struct daemon *d)
{
	uplink_queue(d, MSG_EVENT, d->t.event, false);
}

/*
 * The retained status.  Online also carries the site and the zones with
 * their names (SPEC §3: names pass through to payloads), so a dashboard
 * learns what "house-1" is called from the one message it reads first;
 * and the store's error, which is outside the outbox, so the park hears
 * of a store that takes no writes now.
 */
static void
status_payload(const struct config *c, int store_err, bool online, struct jbuf *b)
{
	payload_status(b, &(struct payload_status){ .online = online,
	    .version = COLDGATE_VERSION, .ts = now_ms(CLOCK_REALTIME),
	    .site = online ? c->gateway.site : NULL, .zones = online ? c->zones : NULL,
	    .nzones = online ? c->nzones : 0,
	    .store_error = online && store_err != 0 ? strerror(-store_err) : NULL });
}

void
uplink_status_online(struct daemon *d)
{
	struct jbuf b = { 0 };
	int mid;

	status_payload(d->conf, d->store_err, true, &b);
	if (jb_text(&b) != NULL)
		mqtt_publish(d->mqtt, d->t.status, b.p, b.len, 1, true, &mid);
	jb_free(&b);
}

void
uplink_window_publish(struct daemon *d)
{
	struct agg *a = &d->agg;
	struct jbuf *b = &d->jb;

	/* Windows line up across the park: each starts at a multiple of its length. */
	assert(a->interval_ms > 0 && a->start_ms % a->interval_ms == 0);
	payload_telemetry_begin(b, &(struct payload_window){ .gw = d->conf->gateway.id,
	    .seq = store_next_seq(d->store), .start = a->start_ms, .end = agg_end(a) });
	for (size_t i = 0; i < d->nsensors; i++) {
		const struct sensor_cfg *sc = d->sensors[i].cfg;

		for (int q = 0; q < Q_COUNT; q++) {
			const struct agg_cell *c = agg_cell(a, i, q);

			if (c == NULL || c->n == 0)
				continue;
			payload_telemetry_reading(b, &(struct payload_reading){ .sensor = sc->id,
			    .zone = sc->zone, .quantity = q, .n = c->n, .min = c->min,
			    .max = c->max, .mean = agg_mean(c), .last = c->last,
			    .clock_ok = !c->clock_bad });
		}
	}
	payload_telemetry_end(b);
	uplink_queue(d, MSG_TELEMETRY, d->t.telemetry, false);
	/* A large window's buffer is not worth keeping for the next minute. */
	if (b->cap > 16 * 1024)
		jb_free(b);
}

/*
 * The window timer runs on the wall clock, so windows line up across the
 * park; CANCEL_ON_SET wakes us when someone steps that clock (NTP at boot
 * on a Pi without an RTC), since an absolute expiry set before a step
 * backwards would otherwise not come for hours.
 */
void
uplink_window_timer(struct daemon *d)
{
	int64_t t = agg_end(&d->agg);
	struct itimerspec it = { .it_value = { t / 1000, (t % 1000) * 1000000 } };

	if (timerfd_settime(d->fd[FD_WINDOW], TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &it,
	    NULL) < 0)
		log_warn("timerfd_settime (window)");
}

/* Close every window that has ended by wall time `now` and start the current one. */
void
uplink_window_roll(struct daemon *d, int64_t now)
{
	if (now < agg_end(&d->agg))
		return;
	uplink_window_publish(d);
	agg_next(&d->agg, now);
	uplink_window_timer(d);
}

static void
on_connected(void *arg)
{
	struct daemon *d = arg;

	log_info("mqtt: connected to %s:%d", d->conf->mqtt.host, d->conf->mqtt.port);
	d->backoff = d->conf->mqtt.reconnect_min;
	d->cursor = 0;
	d->ninflight = 0;
	d->connected_at = now_ms(CLOCK_MONOTONIC);
	d->acked = 0;
	d->caught_up = false;
	uplink_status_online(d);
	{
		char pattern[TOPIC_MAX + 2];

		snprintf(pattern, sizeof(pattern), "%s#", d->t.cmd);
		if (mqtt_subscribe(d->mqtt, pattern, 1) < 0)
			log_warnx("mqtt: cannot subscribe to %s", pattern);
	}
	alarm_uplink(d->alarms, true, now_ms(CLOCK_REALTIME));
	store_set_state(d->store, "mqtt", "connected");
	d->pump = true;
}

/* Schedule the next connect attempt after the current backoff, then double it (capped). */
static void
backoff_next(struct daemon *d)
{
	d->next_connect = now_ms(CLOCK_MONOTONIC) + (int64_t)d->backoff * 1000;
	d->backoff = d->backoff * 2 > d->conf->mqtt.reconnect_max ?
	    d->conf->mqtt.reconnect_max : d->backoff * 2;
}

static void
on_disconnected(void *arg, const char *why, bool was_connected)
{
	struct daemon *d = arg;

	/* A failed attempt was logged by mqtt.c, once per reason. */
	if (was_connected)
		log_warnx("mqtt: connection to %s:%d lost (%s); retrying in %d s",
		    d->conf->mqtt.host, d->conf->mqtt.port, why, d->backoff);
	else
		log_debug("mqtt: retrying in %d s", d->backoff);
	d->ninflight = 0;
	backoff_next(d);
	alarm_uplink(d->alarms, false, now_ms(CLOCK_REALTIME));
	store_set_state(d->store, "mqtt", "disconnected");
}

static void
on_puback(void *arg, int mid)
{
	struct daemon *d = arg;

	if (mid == d->status_mid)
		d->status_acked = true;
	for (int i = 0; i < d->ninflight; i++) {
		if (d->inflight[i].mid != mid)
			continue;
		store_outbox_delivered(d->store, d->inflight[i].seq, now_ms(CLOCK_REALTIME));
		d->inflight[i] = d->inflight[--d->ninflight];
		d->acked++;
		d->pump = true;
		return;
	}
}

static void
on_message(void *arg, const char *topic, const void *payload, size_t len)
{
	struct daemon *d = arg;
	size_t n = strlen(d->t.cmd);
	struct jbuf b = { 0 };
	char rtopic[TOPIC_MAX + 8];
	int mid;

	if (strncmp(topic, d->t.cmd, n) != 0 || strcmp(topic + n, "result") == 0)
		return;
	control_command(d, topic + n, payload, len, "mqtt", &b);
	snprintf(rtopic, sizeof(rtopic), "%sresult", d->t.cmd);
	if (jb_text(&b) != NULL)
		mqtt_publish(d->mqtt, rtopic, b.p, b.len, 1, false, &mid);
	jb_free(&b);
}

void
uplink_try_connect(struct daemon *d)
{
	if (mqtt_state(d->mqtt) != MQTT_IDLE || now_ms(CLOCK_MONOTONIC) < d->next_connect)
		return;
	if (mqtt_connect(d->mqtt) < 0) {
		/* Refused at once (no broker listening): same backoff as a lost link. */
		log_debug("mqtt: retrying in %d s", d->backoff);
		backoff_next(d);
	}
}

/* Keep the epoll registration in step with libmosquitto's socket and wishes. */
void
uplink_sync(struct daemon *d)
{
	int fd = mqtt_fd(d->mqtt);
	uint32_t want = fd < 0 ? 0 : EPOLLIN | (mqtt_want_write(d->mqtt) ? EPOLLOUT : 0);
	struct epoll_event ev = { .events = want, .data.u32 = FD_MQTT };

	if (fd == d->mqtt_regfd && want == d->mqtt_events)
		return;
	if (d->mqtt_regfd >= 0 && fd != d->mqtt_regfd) {
		/* The old socket may already be closed (and removed from epoll with it). */
		epoll_ctl(d->ep, EPOLL_CTL_DEL, d->mqtt_regfd, NULL);
		d->mqtt_regfd = -1;
		d->mqtt_events = 0;
	}
	if (fd < 0)
		return;
	if (epoll_ctl(d->ep, d->mqtt_regfd < 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) < 0) {
		log_warn("epoll_ctl mqtt socket");
		return;
	}
	d->mqtt_regfd = fd;
	d->mqtt_events = want;
}

int
uplink_topics(struct topics *t, const struct config *c)
{
	int n1 = snprintf(t->status, TOPIC_MAX, "%s/%s/status", c->mqtt.base_topic, c->gateway.id);
	int n2 = snprintf(t->telemetry, TOPIC_MAX, "%s/%s/telemetry", c->mqtt.base_topic,
	    c->gateway.id);
	int n3 = snprintf(t->event, TOPIC_MAX, "%s/%s/event", c->mqtt.base_topic, c->gateway.id);
	/* Room is left for an alarm id (64) or a command name after the prefix. */
	int n4 = snprintf(t->alarm, TOPIC_MAX - 70, "%s/%s/alarm/", c->mqtt.base_topic,
	    c->gateway.id);
	int n5 = snprintf(t->cmd, TOPIC_MAX - 70, "%s/%s/cmd/", c->mqtt.base_topic,
	    c->gateway.id);

	return n1 >= TOPIC_MAX || n2 >= TOPIC_MAX || n3 >= TOPIC_MAX || n4 >= TOPIC_MAX - 70 ||
	    n5 >= TOPIC_MAX - 70 ? -ENAMETOOLONG : 0;
}

int
uplink_new(struct daemon *d, const struct config *c, const struct topics *t, struct mqtt **out)
{
	static const struct mqtt_cbs cbs = {
		.connected = on_connected, .disconnected = on_disconnected, .puback = on_puback,
		.message = on_message,
	};
	struct jbuf will = { 0 };
	struct mqtt_opts o = {
		.host = c->mqtt.host, .port = c->mqtt.port, .keepalive = c->mqtt.keepalive,
		.client_id = c->mqtt.client_id, .username = c->mqtt.username,
		.password_file = c->mqtt.password_file, .tls_ca_file = c->mqtt.tls_ca_file,
		.tls_cert_file = c->mqtt.tls_cert_file, .tls_key_file = c->mqtt.tls_key_file,
		.max_inflight = c->mqtt.max_inflight, .will_topic = t->status,
	};
	int rc;

	status_payload(c, 0, false, &will);
	if ((o.will_payload = jb_text(&will)) == NULL)
		return -ENOMEM;
	rc = mqtt_new(out, &o, &cbs, d);
	jb_free(&will);
	return rc;
}

bool
uplink_same(const struct config *a, const struct config *b)
{
#define SAME_STR(f) ((a->f == NULL && b->f == NULL) || (a->f && b->f && strcmp(a->f, b->f) == 0))
	return SAME_STR(mqtt.host) && a->mqtt.port == b->mqtt.port &&
	    a->mqtt.keepalive == b->mqtt.keepalive && SAME_STR(mqtt.base_topic) &&
	    SAME_STR(mqtt.client_id) && SAME_STR(mqtt.username) && SAME_STR(mqtt.password_file) &&
	    SAME_STR(mqtt.tls_ca_file) && SAME_STR(mqtt.tls_cert_file) &&
	    SAME_STR(mqtt.tls_key_file) && a->mqtt.max_inflight == b->mqtt.max_inflight &&
	    strcmp(a->gateway.id, b->gateway.id) == 0;
#undef SAME_STR
}

/* Say goodbye: a retained offline status, sent and acknowledged if the broker is there. */
void
uplink_goodbye(struct daemon *d, void (*loop_once)(struct daemon *, int))
{
	struct jbuf b = { 0 };
	int64_t until = now_ms(CLOCK_MONOTONIC) + 2000;

	if (mqtt_state(d->mqtt) == MQTT_CONNECTED) {
		status_payload(d->conf, d->store_err, false, &b);
		d->status_mid = -1;
		d->status_acked = false;
		if (jb_text(&b) != NULL &&
		    mqtt_publish(d->mqtt, d->t.status, b.p, b.len, 1, true, &d->status_mid) == 0)
			while (!d->status_acked && mqtt_state(d->mqtt) == MQTT_CONNECTED &&
			    now_ms(CLOCK_MONOTONIC) < until)
				loop_once(d, 100);
		jb_free(&b);
	}
	mqtt_disconnect(d->mqtt);
}

