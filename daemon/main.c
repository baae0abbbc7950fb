/*
 * coldgated — reads the sensors, keeps every reading in the store, and
 * forwards per-window aggregates and events over MQTT (SPEC §2-5).
 *
 * One thread owns everything and runs one epoll loop over: a signalfd, the
 * MQTT socket (registered again after each reconnect, since it changes),
 * and a timerfd per schedule: sensor reads, store commits, the end of the
 * aggregation window, a one-second housekeeping tick, and the systemd
 * watchdog.
 */
#include <errno.h>
#include <math.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agg.h"
#include "alarm.h"
#include "audit.h"
#include "cmd.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "mqtt.h"
#include "notify.h"
#include "rules.h"
#include "sensor.h"
#include "statedir.h"
#include "store.h"
#include "summary.h"
#include "output.h"
#include "worker.h"

/* A clock reading before this (2026-01-01) cannot be right: the RTC-less Pi before NTP. */
#define CLOCK_SANE_MS		1767225600000LL
/* A change of wall minus monotonic time bigger than this is a step of the clock. */
#define CLOCK_STEP_MS		2000
/* Consecutive failed reads before a sensor_fault event. */
#define FAULT_AFTER		3
#define TOPIC_MAX		256
/* Store pruning batches per housekeeping tick (each at most 1000 rows). */
#define PRUNE_BATCHES		20
/* Worker threads for blocking reads: one per bus (or per driver). */
#define MAX_WORKERS		16
/* Failed reads are retried sooner than the interval, then less and less often, up to this. */
#define RETRY_MIN_MS		1000
#define RETRY_MAX_MS		30000
/* The epoll ids of sensors' event fds: EV_BASE + sensor index. */
#define EV_BASE			(FD_COUNT + MAX_WORKERS)

enum { FD_SIGNAL, FD_SENSORS, FD_COMMIT, FD_WINDOW, FD_TICK, FD_WATCHDOG, FD_CONTROL, FD_MQTT,
    FD_COUNT };

struct sensor_rt {
	const struct sensor_cfg		*cfg;
	const struct sensor_driver	*drv;
	void				*state;
	int				 key;		/* store's sensor key */
	int64_t				 due;		/* monotonic ms of the next read */
	int				 fails;		/* consecutive failed reads */
	bool				 faulted;	/* a sensor_fault event is out */
	struct worker			*w;		/* reads run there, or NULL: inline */
	bool				 busy;		/* a read is with the worker */
	int				 open_err;	/* state is NULL: why open failed */
	int				 evfd;		/* its event fd in the loop, or -1 */
	unsigned			 qmask;		/* quantities it has given */
	unsigned			 has_last, has_suspect;	/* bit per quantity */
	double				 last[Q_COUNT];	/* the spike filter's reference */
	double				 suspect[Q_COUNT]; /* a jump waiting for a second read */
	int				 door;		/* last door state, -1 unknown */
};

struct output_rt {
	const struct output_cfg		*cfg;
	const struct output_driver	*drv;
	void				*state;		/* NULL: not open (retried) */
	int				 on;		/* as last set, -1 unknown */
};

struct inflight {
	int		 mid;
	int64_t		 seq;
};

struct daemon {
	struct config	*conf;
	struct store	*store;
	struct mqtt	*mqtt;
	int		 ep;
	int		 fd[FD_COUNT];
	uint32_t	 mqtt_events;		/* what FD_MQTT is registered for, 0 if not */
	int		 mqtt_regfd;

	struct sensor_rt *sensors;
	size_t		 nsensors;
	struct output_rt *outputs;
	size_t		 noutputs;
	struct worker	*workers[MAX_WORKERS];
	size_t		 nworkers;
	struct agg	 agg;
	struct jbuf	 jb;
	int64_t		 started_mono;

	char		 t_status[TOPIC_MAX], t_telemetry[TOPIC_MAX], t_event[TOPIC_MAX];
	char		 t_alarm[TOPIC_MAX];	/* "{B}/{G}/alarm/": the id follows */
	char		 t_cmd[TOPIC_MAX];	/* "{B}/{G}/cmd/": the command follows */

	struct alarm_engine *alarms;
	struct summary	*sum;			/* the day's per-zone summary */
	long		 sum_zone;		/* zone of the summary event being built, or -1 */
	char		(*dirty)[ALARM_ID_MAX + 1];	/* alarms to persist */
	size_t		 ndirty, capdirty;
	int64_t		 next_usage;		/* monotonic ms of the next store usage check */
	char		*control_path;		/* the control socket, unlinked at stop */
	dev_t		 control_dev;		/* ... if the path is still that file */
	ino_t		 control_ino;
	int		 lock_fd;		/* the state directory's lock */

	/* Outbox delivery: messages up to cursor were handed over on this connection. */
	int64_t		 cursor;
	struct inflight	*inflight;
	int		 ninflight, window;
	bool		 pump;			/* PUBACKs came in: refill the window */
	int		 backoff;		/* seconds before the next connect attempt */
	int64_t		 next_connect;		/* monotonic ms */
	int64_t		 connected_at;		/* monotonic ms of the last CONNACK */
	int64_t		 acked;			/* PUBACKs on this connection */
	bool		 caught_up;		/* the outbox has been empty on this connection */
	int		 status_mid;		/* the offline goodbye we wait for at stop */
	bool		 status_acked;

	struct store_drops drops;		/* dropped for the cap, not yet reported */
	int		 store_err;		/* the store's commits fail with this errno */
	int64_t		 clock_offset;		/* wall minus monotonic ms, to measure steps */
	int64_t		 next_overflow_event;	/* monotonic ms */
	bool		 running;
	int		 exit_code;
};

static int64_t
now_ms(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
timer_set(int fd, int64_t first_ms, int64_t period_ms, bool absolute)
{
	struct itimerspec it = {
		.it_value = { first_ms / 1000, (first_ms % 1000) * 1000000 },
		.it_interval = { period_ms / 1000, (period_ms % 1000) * 1000000 },
	};

	/* A zero it_value disarms the timer: a due time in the past must still fire. */
	if (it.it_value.tv_sec == 0 && it.it_value.tv_nsec == 0)
		it.it_value.tv_nsec = 1;
	if (timerfd_settime(fd, absolute ? TFD_TIMER_ABSTIME : 0, &it, NULL) < 0)
		log_warn("timerfd_settime");
}

static void
timer_drain(int fd)
{
	uint64_t n;

	(void)!read(fd, &n, sizeof(n));
}

/*
 * The window timer runs on the wall clock, so windows line up across the
 * park; CANCEL_ON_SET wakes us when someone steps that clock (NTP at boot
 * on a Pi without an RTC), since an absolute expiry set before a step
 * backwards would otherwise not come for hours.
 */
static void
window_timer_set(struct daemon *d)
{
	int64_t t = agg_end(&d->agg);
	struct itimerspec it = { .it_value = { t / 1000, (t % 1000) * 1000000 } };

	if (timerfd_settime(d->fd[FD_WINDOW], TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &it,
	    NULL) < 0)
		log_warn("timerfd_settime (window)");
}

/* ---- the outbox ---- */

static void
outbox_queue(struct daemon *d, enum msg_kind kind, const char *topic, bool retain)
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

	rc = mqtt_publish(d->mqtt, m->topic, m->payload, m->len, m->qos, m->retain, &mid);
	if (rc < 0)
		return 1;
	d->inflight[d->ninflight++] = (struct inflight){ mid, m->seq };
	d->cursor = m->seq;
	return 0;
}

/* Hand the broker the next undelivered messages, up to the window. */
static void
outbox_pump(struct daemon *d)
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

/* An event that happened at ts (epoch ms). */
static void
event_begin_at(struct daemon *d, const char *type, int64_t ts)
{
	jb_reset(&d->jb);
	jb_begin(&d->jb, '{');
	jb_str(&d->jb, "gw", d->conf->gateway.id);
	jb_int(&d->jb, "seq", store_next_seq(d->store));
	jb_str(&d->jb, "type", type);
	jb_int(&d->jb, "ts", ts);
}

static void
event_begin(struct daemon *d, const char *type)
{
	event_begin_at(d, type, now_ms(CLOCK_REALTIME));
}

static void
event_end(struct daemon *d)
{
	jb_end(&d->jb, '}');
	outbox_queue(d, MSG_EVENT, d->t_event, false);
}

/*
 * The retained status.  Online also carries the site and the zones with
 * their names (SPEC §3: names pass through to payloads), so a dashboard
 * learns what "house-1" is called from the one message it reads first.
 */
/*
 * A row in the audit trail.  detail is a JSON object's members without the
 * braces, built by the caller in b (a buffer of its own: d->jb may hold a
 * message being built).  Failing to write it is logged, never fatal.
 */
static void
audit_add(struct daemon *d, const char *kind, struct jbuf *b)
{
	const char *text;

	jb_end(b, '}');
	if ((text = jb_text(b)) == NULL ||
	    store_audit_append(d->store, now_ms(CLOCK_REALTIME), kind, text) < 0)
		log_warnx("could not write a \"%s\" row to the audit trail", kind);
	jb_free(b);
}

/* The configuration in force, by the hash of its file, for the audit trail. */
static void
audit_config(struct daemon *d, const char *kind)
{
	struct jbuf b = { 0 };
	char hex[2 * AUDIT_HASH_LEN + 1];

	jb_begin(&b, '{');
	jb_str(&b, "version", COLDGATE_VERSION);
	jb_str(&b, "config", d->conf->path);
	if (audit_file_sha256(d->conf->path, hex) == 0)
		jb_str(&b, "sha256", hex);
	audit_add(d, kind, &b);
}

static void
status_payload(struct daemon *d, const char *state, struct jbuf *b)
{
	const struct config *c = d->conf;

	jb_reset(b);
	jb_begin(b, '{');
	jb_str(b, "state", state);
	jb_str(b, "version", COLDGATE_VERSION);
	jb_int(b, "ts", now_ms(CLOCK_REALTIME));
	if (strcmp(state, "online") == 0) {
		if (c->gateway.site != NULL)
			jb_str(b, "site", c->gateway.site);
		jb_key(b, "zones");
		jb_begin(b, '[');
		for (size_t i = 0; i < c->nzones; i++) {
			jb_begin(b, '{');
			jb_str(b, "id", c->zones[i].id);
			jb_str(b, "name", c->zones[i].name);
			if (c->zones[i].profile != NULL)
				jb_str(b, "profile", c->zones[i].profile);
			jb_end(b, '}');
		}
		jb_end(b, ']');
		/* Not in the outbox, so the park hears of a store that takes no writes now. */
		if (d->store_err != 0)
			jb_str(b, "store_error", strerror(-d->store_err));
	}
	jb_end(b, '}');
}

static void
telemetry_publish(struct daemon *d)
{
	struct agg *a = &d->agg;
	struct jbuf *b = &d->jb;

	jb_reset(b);
	jb_begin(b, '{');
	jb_str(b, "gw", d->conf->gateway.id);
	jb_int(b, "seq", store_next_seq(d->store));
	jb_int(b, "start", a->start_ms);
	jb_int(b, "end", agg_end(a));
	jb_key(b, "readings");
	jb_begin(b, '[');
	for (size_t i = 0; i < d->nsensors; i++) {
		const struct sensor_cfg *sc = d->sensors[i].cfg;

		for (int q = 0; q < Q_COUNT; q++) {
			const struct agg_cell *c = agg_cell(a, i, q);

			if (c == NULL || c->n == 0)
				continue;
			jb_begin(b, '{');
			jb_str(b, "sensor", sc->id);
			jb_str(b, "zone", sc->zone);
			jb_str(b, "quantity", quantity_name(q));
			jb_str(b, "unit", quantity_unit(q));
			jb_int(b, "n", c->n);
			jb_num(b, "min", c->min);
			jb_num(b, "max", c->max);
			jb_num(b, "mean", agg_mean(c));
			jb_num(b, "last", c->last);
			if (c->clock_bad) {
				jb_key(b, "clock_ok");
				jb_vbool(b, false);
			}
			jb_end(b, '}');
		}
	}
	jb_end(b, ']');
	jb_end(b, '}');
	outbox_queue(d, MSG_TELEMETRY, d->t_telemetry, false);
	/* A large window's buffer is not worth keeping for the next minute. */
	if (b->cap > 16 * 1024)
		jb_free(b);
}

/* Close every window that has ended by wall time `now` and start the current one. */
static void
window_roll(struct daemon *d, int64_t now)
{
	if (now < agg_end(&d->agg))
		return;
	telemetry_publish(d);
	agg_next(&d->agg, now);
	window_timer_set(d);
}

static void summary_feed(struct daemon *, size_t, enum quantity, double, int64_t);

/* ---- sensors ---- */

/* Stop waiting on sensor i's event fd. */
static void
sensor_events_off(struct daemon *d, struct sensor_rt *s)
{
	if (s->evfd >= 0)
		epoll_ctl(d->ep, EPOLL_CTL_DEL, s->evfd, NULL);
	s->evfd = -1;
}

/* Wait on sensor i's event fd, if its driver has one. */
static void
sensor_events_on(struct daemon *d, size_t i)
{
	struct sensor_rt *s = &d->sensors[i];
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)(EV_BASE + i) };
	int fd;

	if (s->state == NULL || s->drv->event_fd == NULL || (fd = s->drv->event_fd(s->state)) < 0)
		return;
	if (epoll_ctl(d->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_warn("sensor %s: cannot wait for its events", s->cfg->id);
		return;
	}
	s->evfd = fd;
}

static void
sensors_close(struct daemon *d)
{
	for (size_t i = 0; i < d->nsensors; i++) {
		sensor_events_off(d, &d->sensors[i]);
		if (d->sensors[i].state != NULL)
			d->sensors[i].drv->close(d->sensors[i].state);
	}
	free(d->sensors);
	d->sensors = NULL;
	d->nsensors = 0;
}

/*
 * Open the configured sensors.  A configuration the driver refuses
 * (EINVAL) or no memory fails the whole set, and nothing is left open.
 * Any other failure -- a chip, an adapter or a bus that is not there yet,
 * a GPIO line still held by the configuration being replaced -- leaves
 * that sensor closed: it reads as failed (gone) and opening is tried again
 * at each of its due times, so hardware that turns up later is found
 * without a restart.
 */
static int
sensors_open(struct daemon *d, const struct config *conf, struct sensor_rt **out)
{
	struct sensor_rt *rt;
	int64_t now = now_ms(CLOCK_MONOTONIC);
	int rc;

	if ((rt = calloc(conf->nsensors ? conf->nsensors : 1, sizeof(*rt))) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < conf->nsensors; i++) {
		const struct sensor_cfg *sc = &conf->sensors[i];

		rt[i].cfg = sc;
		rt[i].drv = sensor_driver_find(sc->driver);
		rt[i].due = now;
		rt[i].evfd = -1;
		rt[i].door = -1;
		if ((rc = rt[i].key = store_sensor_key(d->store, sc->id, sc->zone)) >= 0)
			rc = rt[i].drv->open(conf, sc, &rt[i].state);
		if (rc < 0 && rc != -EINVAL && rc != -ENOMEM && rt[i].key >= 0) {
			log_warnx("sensor %s (%s): cannot open: %s; trying again at each read",
			    sc->id, sc->driver, strerror(-rc));
			rt[i].state = NULL;
			rt[i].open_err = rc;
			continue;
		}
		if (rc < 0) {
			log_warnx("sensor %s (%s): cannot open: %s", sc->id, sc->driver, strerror(-rc));
			for (size_t j = 0; j < i; j++)
				if (rt[j].state != NULL)
					rt[j].drv->close(rt[j].state);
			free(rt);
			return rc;
		}
	}
	*out = rt;
	return 0;
}

/* A sensor whose open failed: try again.  0 when it is open now. */
static int
sensor_reopen(struct daemon *d, size_t i)
{
	struct sensor_rt *s = &d->sensors[i];
	int rc;

	if ((rc = s->drv->open(d->conf, s->cfg, &s->state)) < 0) {
		s->state = NULL;
		s->open_err = rc;
		return rc;
	}
	log_info("sensor %s (%s): opened", s->cfg->id, s->cfg->driver);
	s->open_err = 0;
	sensor_events_on(d, i);
	return 0;
}

static void
sensor_failed(struct daemon *d, struct sensor_rt *s, int err)
{
	if (++s->fails != FAULT_AFTER)
		return;
	s->faulted = true;
	log_warnx("sensor %s: %d reads failed in a row: %s", s->cfg->id, s->fails, strerror(-err));
	event_begin(d, "sensor_fault");
	jb_str(&d->jb, "sensor", s->cfg->id);
	jb_str(&d->jb, "zone", s->cfg->zone);
	jb_str(&d->jb, "error", strerror(-err));
	event_end(d);
}

static void
sensor_ok(struct daemon *d, struct sensor_rt *s)
{
	s->fails = 0;
	if (!s->faulted)
		return;
	s->faulted = false;
	log_info("sensor %s: reading again", s->cfg->id);
	event_begin(d, "sensor_recovered");
	jb_str(&d->jb, "sensor", s->cfg->id);
	jb_str(&d->jb, "zone", s->cfg->zone);
	event_end(d);
}

/*
 * The spike filter: a value more than the quantity's step away from the
 * last accepted one is held as a suspect and refused; a second read close
 * to the suspect confirms the jump and is accepted.  So a real step change
 * costs one read, and a single garbled value never reaches an alarm.
 */
static bool
is_spike(struct sensor_rt *s, enum quantity q, double v)
{
	double step = quantity_spike_step(q);
	unsigned bit = 1u << q;

	if (!s->cfg->spike_filter || step <= 0)
		return false;
	if ((s->has_last & bit) && fabs(v - s->last[q]) > step &&
	    !((s->has_suspect & bit) && fabs(v - s->suspect[q]) <= step)) {
		s->suspect[q] = v;
		s->has_suspect |= bit;
		return true;
	}
	s->last[q] = v;
	s->has_last |= bit;
	s->has_suspect &= ~bit;
	return false;
}

/* A door sensor's value changed: door_open or door_close, at the time it happened. */
static void
door_change(struct daemon *d, struct sensor_rt *s, double v, int64_t ts)
{
	int open = v >= 0.5;

	if (s->door >= 0 && open != s->door) {
		event_begin_at(d, open ? "door_open" : "door_close", ts);
		jb_str(&d->jb, "sensor", s->cfg->id);
		jb_str(&d->jb, "zone", s->cfg->zone);
		event_end(d);
	}
	s->door = open;
}

/* One value of sensor i: stored with its quality; only good ones go further. */
static void
sensor_value(struct daemon *d, size_t i, enum quantity q, double v, int64_t ts)
{
	struct sensor_rt *s = &d->sensors[i];
	bool clock_ok = ts >= CLOCK_SANE_MS;
	enum quality ql = QUALITY_OK;

	if ((unsigned)q >= Q_COUNT)
		return;
	if (!quantity_plausible(q, v))
		ql = QUALITY_RANGE;
	else if (is_spike(s, q, v))
		ql = QUALITY_SPIKE;
	s->qmask |= 1u << q;
	store_add_reading(d->store, s->key, q, v, ts,
	    (clock_ok ? 0 : READING_CLOCK_BAD) | (int)ql << READING_QUALITY_SHIFT);
	if (ql != QUALITY_OK) {
		log_debug("sensor %s: %s %g refused (%s)", s->cfg->id, quantity_name(q), v,
		    quality_name(ql));
		return;
	}
	agg_add(&d->agg, i, q, v, clock_ok);
	alarm_reading(d->alarms, i, q, v, ts);
	summary_feed(d, i, q, v, ts);
	if (q == Q_DOOR)
		door_change(d, s, v, ts);
}

/* When to read sensor s again after its fails-th failure in a row. */
static int64_t
retry_delay(const struct sensor_rt *s)
{
	int64_t period = (int64_t)(s->cfg->interval * 1000.0), min = RETRY_MIN_MS, delay;

	if (s->drv->min_interval > 0 && (int64_t)(s->drv->min_interval * 1000.0) > min)
		min = (int64_t)(s->drv->min_interval * 1000.0);
	delay = min << (s->fails > 6 ? 5 : s->fails - 1);
	if (delay > RETRY_MAX_MS)
		delay = RETRY_MAX_MS;
	if (delay > period && period >= min)
		delay = period;
	return delay < min ? min : delay;
}

/* What one read of sensor i gave: n readings in r taken at wall_ms, or an error n < 0. */
static void
sensor_result(struct daemon *d, size_t i, int n, const struct reading *r, int64_t wall_ms)
{
	struct sensor_rt *s = &d->sensors[i];

	if (n < 0) {
		bool clock_ok = wall_ms >= CLOCK_SANE_MS;
		int flags = (clock_ok ? 0 : READING_CLOCK_BAD) |
		    (int)quality_of_error(n) << READING_QUALITY_SHIFT;

		/* The failed read is on record, for each quantity the sensor gives. */
		for (int q = 0; q < Q_COUNT; q++)
			if (s->qmask & (1u << q))
				store_add_reading(d->store, s->key, q, 0, wall_ms, flags);
		sensor_failed(d, s, n);
		alarm_fault(d->alarms, i, n, wall_ms);
		/* After a gap the last value says nothing about the next one. */
		s->has_last = s->has_suspect = 0;
		/*
		 * Try again sooner than the interval, then back off (never below
		 * the part's minimum); sensors_run sets the timer for the new due.
		 */
		s->due = now_ms(CLOCK_MONOTONIC) + retry_delay(s);
		timer_set(d->fd[FD_SENSORS], 0, 0, false);
		return;
	}
	sensor_ok(d, s);
	if (n == 0)
		alarm_fault(d->alarms, i, 0, wall_ms);
	for (int k = 0; k < n; k++)
		sensor_value(d, i, r[k].q, r[k].value, wall_ms);
}

/* Sensor i's event fd is readable: changes as they happened. */
static void
on_sensor_events(struct daemon *d, size_t i)
{
	struct sensor_rt *s;
	struct sensor_event ev[8];
	int n;

	if (i >= d->nsensors || (s = &d->sensors[i])->state == NULL)
		return;
	if ((n = s->drv->events(s->state, ev, sizeof(ev) / sizeof(ev[0]))) < 0) {
		/* The device went away under us: stop waiting; reads will find it again. */
		log_warnx("sensor %s: events: %s", s->cfg->id, strerror(-n));
		sensor_events_off(d, s);
		s->drv->close(s->state);
		s->state = NULL;
		s->open_err = n;
		sensor_result(d, i, n, NULL, now_ms(CLOCK_REALTIME));
		return;
	}
	if (n > 0)
		window_roll(d, now_ms(CLOCK_REALTIME));
	for (int k = 0; k < n; k++)
		sensor_value(d, i, ev[k].r.q, ev[k].r.value, ev[k].wall_ms);
}

static void
sensors_run(struct daemon *d)
{
	int64_t mono = now_ms(CLOCK_MONOTONIC), next = INT64_MAX;
	struct sensor_clock clk = { .wall_ms = now_ms(CLOCK_REALTIME) };

	clk.elapsed = (double)(mono - d->started_mono) / 1000.0;
	window_roll(d, clk.wall_ms);
	for (size_t i = 0; i < d->nsensors; i++) {
		struct sensor_rt *s = &d->sensors[i];
		struct reading r[SENSOR_MAX_READINGS];
		int64_t period = (int64_t)(s->cfg->interval * 1000.0);

		/* Some parts must not be read faster than they can measure (DHT: 2 s). */
		if (period < (int64_t)(s->drv->min_interval * 1000.0))
			period = (int64_t)(s->drv->min_interval * 1000.0);
		if (period < 1)
			period = 1;
		if (s->due <= mono) {
			/* Keep the cadence; after a stall, skip the missed reads. */
			s->due += period;
			if (s->due <= mono)
				s->due = mono + period;
			if (s->state == NULL && sensor_reopen(d, i) < 0) {
				sensor_result(d, i, s->open_err, r, clk.wall_ms);
			} else if (s->w == NULL) {
				sensor_result(d, i, s->drv->read(s->state, &clk, r,
				    SENSOR_MAX_READINGS), r, clk.wall_ms);
			} else if (!s->busy) {
				struct worker_job job = { .sensor = i, .drv = s->drv,
				    .state = s->state, .clk = clk };

				/* A read still running when the next is due: that one is skipped. */
				if (worker_submit(s->w, &job) == 0)
					s->busy = true;
			}
		}
		if (s->due < next)
			next = s->due;
	}
	/*
	 * Relative, not TFD_TIMER_ABSTIME: the same instant, and libfaketime
	 * (tests/integration/test_clock.c) shifts every absolute timer by
	 * its wall-clock offset, monotonic ones too.
	 */
	if (next != INT64_MAX)
		timer_set(d->fd[FD_SENSORS], next > mono ? next - mono : 0, 0, false);
}

/* ---- local outputs (SPEC §6) ---- */

/* Whether output o should be on now: see struct output_cfg. */
static bool
output_wanted(const struct daemon *d, const struct output_cfg *o)
{
	enum alarm_severity min = o->critical_only ? ALARM_CRITICAL : ALARM_WARNING;

	for (size_t k = 0; k == 0 || k < o->nzones; k++) {
		int z = o->nzones == 0 ? ALARM_ANY_ZONE : config_zone_index(d->conf, o->zones[k]);

		if (o->role == OUTPUT_LAMP ? alarm_zone_raised(d->alarms, z, min) :
		    alarm_zone_unacked(d->alarms, z, min))
			return true;
	}
	return false;
}

/*
 * Open conf's outputs into rt (calloc'd for conf->noutputs), each in its
 * safe state (off).  One that fails to open is retried at each tick.
 */
static void
outputs_open(struct daemon *d, const struct config *conf, struct output_rt *rt)
{
	int rc;

	for (size_t i = 0; i < conf->noutputs; i++) {
		rt[i].cfg = &conf->outputs[i];
		rt[i].drv = output_driver_find(conf->outputs[i].driver);
		rt[i].on = -1;
		if ((rc = rt[i].drv->open(conf, rt[i].cfg, &rt[i].state)) < 0) {
			log_warnx("output %s: cannot open %s line %d: %s; trying again", rt[i].cfg->id,
			    rt[i].cfg->chip, rt[i].cfg->gpio_line, strerror(-rc));
			rt[i].state = NULL;
		} else {
			rt[i].on = 0;
		}
	}
	d->outputs = rt;
	d->noutputs = conf->noutputs;
}

/* Each back to its safe state (off), then let go. */
static void
outputs_close(struct daemon *d)
{
	for (size_t i = 0; i < d->noutputs; i++)
		if (d->outputs[i].state != NULL)
			d->outputs[i].drv->close(d->outputs[i].state);
	free(d->outputs);
	d->outputs = NULL;
	d->noutputs = 0;
}

/* Drive every output from the alarms' state; retry opening those that failed when retry is set. */
static void
outputs_update(struct daemon *d, bool retry)
{
	for (size_t i = 0; i < d->noutputs; i++) {
		struct output_rt *o = &d->outputs[i];
		bool want;
		int rc;

		if (o->state == NULL) {
			if (!retry || o->drv->open(d->conf, o->cfg, &o->state) < 0) {
				o->state = NULL;
				continue;
			}
			log_info("output %s: opened", o->cfg->id);
			o->on = 0;
		}
		want = d->alarms != NULL && output_wanted(d, o->cfg);
		if (o->on == (int)want)
			continue;
		if ((rc = o->drv->set(o->state, want)) < 0) {
			if (o->on != -1)
				log_warnx("output %s: cannot switch %s: %s", o->cfg->id,
				    want ? "on" : "off", strerror(-rc));
			o->on = -1;	/* try again at the next change or tick */
			continue;
		}
		o->on = want;
		log_info("output %s (%s): %s", o->cfg->id, output_role_name(o->cfg->role),
		    want ? "on" : "off");
	}
}

/* Results the worker k has finished. */
static void
on_worker(struct daemon *d, size_t k)
{
	struct worker_result res;

	while (k < d->nworkers && worker_collect(d->workers[k], &res) > 0) {
		if (res.sensor >= d->nsensors)
			continue;
		d->sensors[res.sensor].busy = false;
		window_roll(d, res.wall_ms);
		sensor_result(d, res.sensor, res.n, res.r, res.wall_ms);
	}
}

/* A worker per bus (or per driver) whose reads block, for the current sensor set. */
static void
workers_start(struct daemon *d)
{
	for (size_t i = 0; i < d->nsensors; i++) {
		struct sensor_rt *s = &d->sensors[i];
		char name[128];
		size_t k;

		if (s->drv->blocks == NULL || !s->drv->blocks(s->cfg))
			continue;
		/* One worker per bus (a serial line, an I2C adapter), whatever the drivers on it. */
		if (s->drv->bus != NULL && s->drv->bus(s->cfg) != NULL)
			snprintf(name, sizeof(name), "%s", s->drv->bus(s->cfg));
		else
			snprintf(name, sizeof(name), "%s", s->drv->name);
		for (k = 0; k < d->nworkers; k++)
			if (strcmp(worker_name(d->workers[k]), name) == 0)
				break;
		if (k == d->nworkers) {
			struct epoll_event ev = { .events = EPOLLIN, .data.u32 = FD_COUNT + (uint32_t)k };

			if (k == MAX_WORKERS || worker_start(&d->workers[k], name) < 0) {
				log_warnx("sensor %s: no worker thread; reading it on the main loop",
				    s->cfg->id);
				continue;
			}
			if (epoll_ctl(d->ep, EPOLL_CTL_ADD, worker_fd(d->workers[k]), &ev) < 0)
				log_warn("epoll_ctl worker %s", s->drv->name);
			d->nworkers++;
		}
		s->w = d->workers[k];
	}
}

/* Stop them, each after its current read; results not collected are dropped. */
static void
workers_stop(struct daemon *d)
{
	for (size_t k = 0; k < d->nworkers; k++) {
		epoll_ctl(d->ep, EPOLL_CTL_DEL, worker_fd(d->workers[k]), NULL);
		worker_stop(d->workers[k]);
		d->workers[k] = NULL;
	}
	d->nworkers = 0;
	for (size_t i = 0; i < d->nsensors; i++) {
		d->sensors[i].w = NULL;
		d->sensors[i].busy = false;
	}
}

/* ---- alarms ---- */

static void
alarm_mark_dirty(struct daemon *d, const char *id)
{
	for (size_t i = 0; i < d->ndirty; i++)
		if (strcmp(d->dirty[i], id) == 0)
			return;
	if (d->ndirty == d->capdirty) {
		size_t cap = d->capdirty ? 2 * d->capdirty : 8;
		void *p = realloc(d->dirty, cap * sizeof(*d->dirty));

		if (p == NULL) {
			log_warnx("out of memory: alarm %s not persisted now", id);
			return;
		}
		d->dirty = p;
		d->capdirty = cap;
	}
	snprintf(d->dirty[d->ndirty++], ALARM_ID_MAX + 1, "%s", id);
}

static int
alarm_persist(struct daemon *d, const char *id)
{
	struct alarm_record rec;
	uint8_t buf[ALARM_RECORD_MAX];
	struct store_alarm sa;

	if (alarm_get(d->alarms, id, now_ms(CLOCK_REALTIME), &rec) < 0)
		return -ENOENT;
	sa = (struct store_alarm){ .id = rec.id, .state = alarm_state_name(rec.state),
	    .updated_ms = now_ms(CLOCK_REALTIME), .data = buf,
	    .len = alarm_record_encode(&rec, buf) };
	return store_alarm_put(d->store, &sa);
}

/*
 * Transitions are persisted after the engine call that made them returns
 * (the callback must not call back into the engine), and committed at once:
 * a restart must neither forget an alarm nor raise it twice.
 */
static void
alarms_flush(struct daemon *d)
{
	if (d->ndirty == 0)
		return;
	for (size_t i = 0; i < d->ndirty; i++)
		alarm_persist(d, d->dirty[i]);
	d->ndirty = 0;
	store_commit(d->store);
	/* Every transition (fired, acked, cleared) passes here: the outputs follow it. */
	outputs_update(d, false);
}

/* Every instance, with running timers and excursion time: at stop and reload. */
static void
alarms_persist_all(struct daemon *d)
{
	struct alarm_record rec;

	if (d->alarms == NULL)
		return;
	for (size_t i = 0; alarm_export(d->alarms, i, now_ms(CLOCK_REALTIME), &rec) == 0; i++)
		alarm_mark_dirty(d, rec.id);
	alarms_flush(d);
}

static const char *
alarm_zone_id(const struct daemon *d, int zone)
{
	return zone >= 0 && (size_t)zone < d->conf->nzones ? d->conf->zones[zone].id : "gateway";
}

static const char *
alarm_sensor_id(const struct daemon *d, int sensor)
{
	return sensor >= 0 && (size_t)sensor < d->conf->nsensors ? d->conf->sensors[sensor].id :
	    NULL;
}

/* The SPEC §4 alarm message, retained on {B}/{G}/alarm/{ID}, through the outbox. */
static void
alarm_publish(struct daemon *d, const char *id, int zone, int sensor, enum alarm_kind kind,
    enum alarm_severity severity, enum alarm_state state, double value, double limit,
    int64_t since, int64_t t, const char *by, bool retired)
{
	struct jbuf *b = &d->jb;
	struct jbuf a = { 0 };
	char topic[TOPIC_MAX + ALARM_ID_MAX];
	const char *sid = alarm_sensor_id(d, sensor);

	snprintf(topic, sizeof(topic), "%s%s", d->t_alarm, id);
	jb_reset(b);
	jb_begin(b, '{');
	jb_str(b, "gw", d->conf->gateway.id);
	jb_int(b, "seq", store_next_seq(d->store));
	jb_str(b, "id", id);
	jb_str(b, "zone", alarm_zone_id(d, zone));
	jb_key(b, "sensor");
	if (sid != NULL)
		jb_vstr(b, sid);
	else
		jb_vstr(b, "gateway");
	jb_str(b, "rule", alarm_kind_name(kind));
	jb_str(b, "severity", alarm_severity_name(severity));
	jb_str(b, "state", alarm_state_name(state));
	jb_num(b, "value", value);
	jb_num(b, "limit", limit);
	jb_int(b, "since", since);
	jb_int(b, "ts", t);
	if (by != NULL && *by != '\0')
		jb_str(b, "by", by);
	if (retired) {
		jb_key(b, "retired");
		jb_vbool(b, true);
	}
	jb_end(b, '}');
	outbox_queue(d, MSG_ALARM, topic, true);

	jb_begin(&a, '{');
	jb_str(&a, "id", id);
	jb_str(&a, "state", alarm_state_name(state));
	jb_num(&a, "value", value);
	jb_num(&a, "limit", limit);
	if (by != NULL && *by != '\0')
		jb_str(&a, "by", by);
	audit_add(d, "alarm", &a);
}

static void
on_alarm(const struct alarm_transition *t, void *arg)
{
	struct daemon *d = arg;

	if (t->state == ALARM_ACTIVE)
		log_warnx("ALARM %s (%s, %s): %s %.3f, limit %.3f", t->id,
		    alarm_severity_name(t->severity), alarm_zone_id(d, t->zone),
		    alarm_kind_name(t->kind), t->value, t->limit);
	else
		log_info("alarm %s %s", t->id, alarm_state_name(t->state));
	alarm_publish(d, t->id, t->zone, t->sensor, t->kind, t->severity, t->state, t->value,
	    t->limit, t->since, t->t, t->acked_by, false);
	alarm_mark_dirty(d, t->id);
}

struct alarm_restore {
	struct daemon		*d;
	struct alarm_engine	*e;
};

static int
alarm_restore_cb(const struct store_alarm *sa, void *arg)
{
	struct alarm_restore *r = arg;
	struct daemon *d = r->d;
	struct alarm_record rec;
	uint8_t buf[ALARM_RECORD_MAX];
	const char *why;
	int rc;

	if (alarm_record_decode(sa->id, sa->data, sa->len, &rec, &why) < 0) {
		log_warnx("alarm %s: stored record %s; not restored", sa->id, why);
		return 0;
	}
	rc = alarm_import(r->e, &rec);
	if (rc == -ENOENT && rec.state != ALARM_CLEARED) {
		/* Its rule is gone: clear it for the dashboard, once. */
		log_info("alarm %s: no rule makes it any more; cleared", rec.id);
		alarm_publish(d, rec.id, rec.zone, -1, rec.kind, rec.severity,
		    ALARM_CLEARED, rec.value, rec.limit, rec.since, now_ms(CLOCK_REALTIME),
		    NULL, true);
		rec.state = ALARM_CLEARED;
		store_alarm_put(d->store, &(struct store_alarm){ .id = rec.id, .state = "cleared",
		    .updated_ms = now_ms(CLOCK_REALTIME), .data = buf,
		    .len = alarm_record_encode(&rec, buf) });
	} else if (rc < 0 && rc != -ENOENT) {
		log_warnx("alarm %s: cannot restore it: %s", rec.id, strerror(-rc));
	}
	return 0;
}

/* A new engine for conf, with the stored alarms restored into it. */
static int
alarms_open(struct daemon *d, const struct config *conf, struct alarm_engine **out)
{
	struct alarm_rule *rules;
	struct alarm_sensor *sensors;
	struct alarm_restore r = { .d = d };
	size_t nrules;
	int rc;

	if ((rc = rules_build(conf, &rules, &nrules, &sensors)) < 0)
		return rc;
	rc = alarm_new(&r.e, rules, nrules, sensors, conf->nsensors, now_ms(CLOCK_REALTIME),
	    on_alarm, d);
	free(rules);
	free(sensors);
	if (rc < 0) {
		log_warnx("alarm rules: %s", rc == -EEXIST ?
		    "two rules give the same alarm (same zone or sensor, quantity, type and severity)" :
		    strerror(-rc));
		return rc;
	}
	alarm_uplink(r.e, mqtt_state(d->mqtt) == MQTT_CONNECTED, now_ms(CLOCK_REALTIME));
	store_alarm_each(d->store, alarm_restore_cb, &r);
	store_commit(d->store);
	*out = r.e;
	return 0;
}

/* Carry out a command (from MQTT or the control socket); the reply goes into b. */
static void
command_run(struct daemon *d, const char *name, const void *payload, size_t len,
    const char *via, struct jbuf *b)
{
	struct cmd c;
	char why[160];
	int rc;

	jb_reset(b);
	jb_begin(b, '{');
	jb_str(b, "gw", d->conf->gateway.id);
	jb_str(b, "cmd", name);
	if (cmd_parse(name, payload, len, &c, why, sizeof(why)) < 0) {
		log_warnx("command %s via %s refused: %s", name, via, why);
		goto fail;
	}
	jb_str(b, "alarm", c.alarm);
	rc = alarm_ack(d->alarms, c.alarm, c.by, now_ms(CLOCK_REALTIME));
	if (rc < 0) {
		snprintf(why, sizeof(why), "%s", rc == -ENOENT ? "no such alarm" :
		    rc == -EALREADY ? "already acknowledged" :
		    rc == -ESRCH ? "the alarm has cleared; nothing to acknowledge" : strerror(-rc));
		log_warnx("ack of %s via %s refused: %s", c.alarm, via, why);
		goto fail;
	}
	{
		struct jbuf a = { 0 };

		jb_begin(&a, '{');
		jb_str(&a, "id", c.alarm);
		jb_str(&a, "by", c.by);
		jb_str(&a, "via", via);
		audit_add(d, "ack", &a);
	}
	log_info("alarm %s acknowledged by \"%s\" via %s", c.alarm, c.by, via);
	alarms_flush(d);
	jb_key(b, "ok");
	jb_vbool(b, true);
	goto out;
fail:
	jb_key(b, "ok");
	jb_vbool(b, false);
	jb_str(b, "error", why);
out:
	jb_int(b, "ts", now_ms(CLOCK_REALTIME));
	jb_end(b, '}');
}

static void
on_message(void *arg, const char *topic, const void *payload, size_t len)
{
	struct daemon *d = arg;
	size_t n = strlen(d->t_cmd);
	struct jbuf b = { 0 };
	char rtopic[TOPIC_MAX + 8];
	int mid;

	if (strncmp(topic, d->t_cmd, n) != 0 || strcmp(topic + n, "result") == 0)
		return;
	command_run(d, topic + n, payload, len, "mqtt", &b);
	snprintf(rtopic, sizeof(rtopic), "%sresult", d->t_cmd);
	if (jb_text(&b) != NULL)
		mqtt_publish(d->mqtt, rtopic, b.p, b.len, 1, false, &mid);
	jb_free(&b);
}

/*
 * The local control socket: coldgatectl sends one datagram "NAME\nJSON"
 * from an autobound address and gets the JSON reply back.  Mode 0660, in
 * the state directory: who may write there may acknowledge alarms.
 */
static int
control_open(struct daemon *d, const char *dir)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/control.sock", dir) >=
	    (int)sizeof(sun.sun_path)) {
		log_warnx("gateway.state_dir %s: too long for the control socket", dir);
		return -ENAMETOOLONG;
	}
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	/* We hold the state directory's lock: a socket left there is a dead daemon's. */
	unlink(sun.sun_path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || chmod(sun.sun_path, 0660) < 0 ||
	    stat(sun.sun_path, &st) < 0) {
		int e = errno;

		log_warn("control socket %s", sun.sun_path);
		close(fd);
		return -e;
	}
	d->fd[FD_CONTROL] = fd;
	d->control_path = strdup(sun.sun_path);
	d->control_dev = st.st_dev;
	d->control_ino = st.st_ino;
	return 0;
}

/* Remove the control socket, but only the file we made: never someone else's. */
static void
control_close(struct daemon *d)
{
	struct stat st;

	if (d->control_path == NULL)
		return;
	if (stat(d->control_path, &st) == 0 && st.st_dev == d->control_dev &&
	    st.st_ino == d->control_ino)
		unlink(d->control_path);
	else
		log_info("control socket %s is no longer ours; left alone", d->control_path);
	free(d->control_path);
	d->control_path = NULL;
}

static void
on_control(struct daemon *d)
{
	char buf[CMD_MAX_BYTES + 64];
	struct sockaddr_un from;
	socklen_t fromlen = sizeof(from);
	struct jbuf b = { 0 };
	ssize_t n;
	char *nl;

	while ((n = recvfrom(d->fd[FD_CONTROL], buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from,
	    &fromlen)) >= 0) {
		buf[n] = '\0';
		if ((nl = memchr(buf, '\n', (size_t)n)) == NULL) {
			command_run(d, "", "", 0, "local", &b);
		} else {
			*nl = '\0';
			command_run(d, buf, nl + 1, (size_t)(buf + n - (nl + 1)), "local", &b);
		}
		if (jb_text(&b) != NULL && fromlen > sizeof(sa_family_t))
			sendto(d->fd[FD_CONTROL], b.p, b.len, MSG_DONTWAIT, (struct sockaddr *)&from,
			    fromlen);
		fromlen = sizeof(from);
	}
	jb_free(&b);
}

/* ---- daily summaries ---- */

/*
 * The summary period holding t: a local calendar day by default (what a
 * food-safety record means by "a day"), else epoch-aligned periods.
 */
static void
summary_bounds(const struct config *c, int64_t t, int64_t *start, int64_t *end)
{
	int64_t period = (int64_t)c->publish.summary_period * 1000;

	if (c->publish.summary_period == 86400) {
		time_t secs = (time_t)(t / 1000);
		struct tm tm;

		localtime_r(&secs, &tm);
		tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		tm.tm_isdst = -1;
		*start = (int64_t)mktime(&tm) * 1000;
		tm.tm_mday++;
		tm.tm_isdst = -1;
		*end = (int64_t)mktime(&tm) * 1000;
		if (*end > *start && *start <= t)
			return;
	}
	*start = agg_window_start(t, period);
	*end = *start + period;
}

/* One zone's summary as JSON members (the quantities array) into b. */
static void
summary_json_open(struct daemon *d, struct jbuf *b, const struct summary_result *r)
{
	const struct zone_cfg *z = &d->conf->zones[r->zone];

	jb_str(b, "zone", z->id);
	jb_str(b, "zone_name", z->name);
	jb_int(b, "start", r->day_start_ms);
	jb_int(b, "end", r->day_end_ms);
	jb_key(b, "quantities");
	jb_begin(b, '[');
}

static void
summary_json_item(struct jbuf *b, const struct summary_result *r)
{
	jb_begin(b, '{');
	jb_str(b, "quantity", quantity_name(r->quantity));
	jb_str(b, "unit", quantity_unit(r->quantity));
	jb_int(b, "n", r->n);
	jb_num(b, "min", r->min);
	jb_num(b, "max", r->max);
	jb_num(b, "mean", r->mean);
	if (r->quantity == Q_TEMPERATURE)
		jb_num(b, "mkt", r->mkt);
	jb_num(b, "covered_s", r->covered_s);
	jb_num(b, "out_of_range_s", r->out_of_range_s);
	jb_end(b, '}');
}

static void
summary_flush_zone(struct daemon *d)
{
	if (d->sum_zone < 0)
		return;
	jb_end(&d->jb, ']');
	event_end(d);
	d->sum_zone = -1;
}

/*
 * Each zone's day becomes one "summary" event (through the outbox, so it
 * is stored and delivered like everything else) and an audit-trail row.
 */
static void
on_summary(const struct summary_result *r, void *arg)
{
	struct daemon *d = arg;
	struct jbuf a = { 0 };

	if ((long)r->zone != d->sum_zone) {
		summary_flush_zone(d);
		event_begin(d, "summary");
		summary_json_open(d, &d->jb, r);
		d->sum_zone = (long)r->zone;
	}
	summary_json_item(&d->jb, r);

	jb_begin(&a, '{');
	summary_json_open(d, &a, r);
	summary_json_item(&a, r);
	jb_end(&a, ']');
	audit_add(d, "summary", &a);
}

/* Close the open period and open the one holding now (never going back). */
static void
summary_close(struct daemon *d, int64_t now)
{
	int64_t start, end, old_end = summary_day_end(d->sum);

	summary_bounds(d->conf, now, &start, &end);
	if (start < old_end)
		summary_bounds(d->conf, old_end, &start, &end);
	d->sum_zone = -1;
	if (summary_day(d->sum, start, end, on_summary, d) < 0)
		log_warnx("summary: cannot close the period ending %lld", (long long)old_end);
	summary_flush_zone(d);
}

static void
summary_feed(struct daemon *d, size_t sensor, enum quantity q, double v, int64_t t)
{
	if (d->sum == NULL)
		return;
	if (summary_add(d->sum, sensor, q, v, t) == -ERANGE) {
		summary_close(d, t);
		summary_add(d->sum, sensor, q, v, t);
	}
}

struct summary_replay {
	const struct config	*c;
	struct summary		*sum;
	int			 last;		/* index of the last sensor looked up */
	int64_t			 rows;
};

static int
summary_replay_cb(const char *sensor, const char *zone, int quantity, double value, int64_t ts,
    int flags, void *arg)
{
	struct summary_replay *r = arg;
	int i = r->last;

	(void)zone;
	if (READING_QUALITY(flags) != QUALITY_OK)
		return 0;	/* refused readings never enter a summary */
	if (i < 0 || strcmp(r->c->sensors[i].id, sensor) != 0)
		i = config_sensor_index(r->c, sensor);
	if (i < 0)
		return 0;	/* a sensor no longer configured */
	r->last = i;
	r->rows++;
	summary_add(r->sum, (size_t)i, (enum quantity)quantity, value, ts);
	return 0;
}

/*
 * The running period's readings so far, from the store: a restart or a
 * reload must not cut a day's record short.  A day of 100 sensors read
 * every second is 17 million rows and takes seconds; typical gateways
 * read a few sensors a minute.
 */
static void
summary_replay(struct daemon *d, const struct config *c, struct summary *sum)
{
	struct summary_replay r = { .c = c, .sum = sum, .last = -1 };
	int64_t now = now_ms(CLOCK_REALTIME);

	store_commit(d->store);
	if (store_readings(d->store, NULL, summary_day_start(sum), now, summary_replay_cb, &r) < 0)
		log_warnx("summary: could not read back today's readings; the day's summary "
		    "starts now");
	else if (r.rows > 0)
		log_info("summary: %lld readings of the running period read back from the store",
		    (long long)r.rows);
}

/* A summary for conf's zones, with each zone's first warning threshold as its range. */
static int
summary_open(const struct config *c, int64_t now, struct summary **out)
{
	int *map;
	int64_t start, end;
	int rc;

	if ((map = calloc(c->nsensors + 1, sizeof(*map))) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < c->nsensors; i++)
		map[i] = (int)c->sensors[i].zone_idx;
	summary_bounds(c, now, &start, &end);
	rc = summary_new(out, c->nzones, map, c->nsensors,
	    (int64_t)c->publish.summary_hold * 1000, 0, start, end);
	free(map);
	if (rc < 0)
		return rc;
	for (size_t i = c->nalarms; i-- > 0;) {
		/* Backwards, so the first rule of a zone and quantity is set last and wins. */
		const struct alarm_cfg *a = &c->alarms[i];
		int z = config_zone_index(c, a->zone);

		if (a->type != ALARM_TYPE_THRESHOLD || a->critical || a->sensor[0] != '\0' ||
		    z < 0 || !a->has_quantity)
			continue;
		summary_limits(*out, (size_t)z, a->quantity, a->has_low, a->low, a->has_high,
		    a->high);
	}
	return 0;
}

/* ---- MQTT callbacks ---- */

/* Retained, outside the outbox: it describes now, so an old one is worth nothing. */
static void
status_online(struct daemon *d)
{
	struct jbuf b = { 0 };
	int mid;

	status_payload(d, "online", &b);
	if (jb_text(&b) != NULL)
		mqtt_publish(d->mqtt, d->t_status, b.p, b.len, 1, true, &mid);
	jb_free(&b);
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
	status_online(d);
	{
		char pattern[TOPIC_MAX + 2];

		snprintf(pattern, sizeof(pattern), "%s#", d->t_cmd);
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
mqtt_try_connect(struct daemon *d)
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
static void
mqtt_sync(struct daemon *d)
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

/* ---- configuration ---- */

static int
topics_set(struct daemon *d, const struct config *c)
{
	int n1 = snprintf(d->t_status, TOPIC_MAX, "%s/%s/status", c->mqtt.base_topic, c->gateway.id);
	int n2 = snprintf(d->t_telemetry, TOPIC_MAX, "%s/%s/telemetry", c->mqtt.base_topic,
	    c->gateway.id);
	int n3 = snprintf(d->t_event, TOPIC_MAX, "%s/%s/event", c->mqtt.base_topic, c->gateway.id);
	/* Room is left for an alarm id (64) or a command name after the prefix. */
	int n4 = snprintf(d->t_alarm, TOPIC_MAX - 70, "%s/%s/alarm/", c->mqtt.base_topic,
	    c->gateway.id);
	int n5 = snprintf(d->t_cmd, TOPIC_MAX - 70, "%s/%s/cmd/", c->mqtt.base_topic,
	    c->gateway.id);

	return n1 >= TOPIC_MAX || n2 >= TOPIC_MAX || n3 >= TOPIC_MAX || n4 >= TOPIC_MAX - 70 ||
	    n5 >= TOPIC_MAX - 70 ? -ENAMETOOLONG : 0;
}

static int
mqtt_make(struct daemon *d, const struct config *c, struct mqtt **out)
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
		.max_inflight = c->mqtt.max_inflight, .will_topic = d->t_status,
	};
	int rc;

	status_payload(d, "offline", &will);
	if ((o.will_payload = jb_text(&will)) == NULL)
		return -ENOMEM;
	rc = mqtt_new(out, &o, &cbs, d);
	jb_free(&will);
	return rc;
}

static bool
mqtt_same(const struct config *a, const struct config *b)
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

/* Would the engine take this configuration's rules?  0 or -errno. */
static int
alarms_check(const struct config *c)
{
	struct alarm_rule *rules;
	struct alarm_sensor *sensors;
	struct alarm_engine *e;
	size_t nrules;
	int rc;

	if ((rc = rules_build(c, &rules, &nrules, &sensors)) < 0)
		return rc;
	rc = alarm_new(&e, rules, nrules, sensors, c->nsensors, 0, NULL, NULL);
	if (rc == 0)
		alarm_free(e);
	else
		log_warnx("reload: the alarm rules are not usable: %s", rc == -EEXIST ?
		    "two rules give the same alarm" : strerror(-rc));
	free(rules);
	free(sensors);
	return rc;
}

/* SIGHUP: load the file again; swap it in only if all of it is good. */
static void
reload(struct daemon *d)
{
	struct config *n;
	struct sensor_rt *rt = NULL;
	struct output_rt *ort;
	struct mqtt *m = NULL;
	struct inflight *inf = NULL;
	char *errors = NULL;
	int *map = NULL, rc;
	bool new_mqtt;

	log_info("reloading %s", d->conf->path);
	if ((n = config_load(d->conf->path, &errors)) == NULL) {
		log_warnx("reload: %s has errors; keeping the running configuration:\n%s",
		    d->conf->path, errors ? errors : "out of memory");
		free(errors);
		return;
	}
	if (strcmp(n->storage.path, d->conf->storage.path) != 0)
		log_warnx("reload: storage.path changes only at restart; still using %s",
		    d->conf->storage.path);
	new_mqtt = !mqtt_same(d->conf, n);
	/*
	 * The new in-flight table holds what is in flight now as well as the
	 * new window: PUBACKs for messages sent before the reload must still
	 * find them, or those slots are never freed and delivery stalls.
	 */
	if ((map = calloc(n->nsensors ? n->nsensors : 1, sizeof(*map))) == NULL ||
	    (inf = calloc((size_t)(n->mqtt.max_inflight > d->ninflight ? n->mqtt.max_inflight :
	    d->ninflight), sizeof(*inf))) == NULL)
		goto err;
	for (size_t i = 0; i < n->nsensors; i++)
		map[i] = config_sensor_index(d->conf, n->sensors[i].id);
	if (sensors_open(d, n, &rt) < 0)
		goto err;
	if (alarms_check(n) < 0)
		goto err_rt;
	if (new_mqtt) {
		char old[TOPIC_MAX];

		/* The Will names the new status topic. */
		memcpy(old, d->t_status, sizeof(old));
		topics_set(d, n);
		rc = mqtt_make(d, n, &m);
		memcpy(d->t_status, old, sizeof(old));
		if (rc < 0)
			goto err_rt;
	}
	if (n->publish.interval != d->conf->publish.interval)
		telemetry_publish(d);	/* the old window ends early rather than vanish */
	if (agg_remap(&d->agg, n->nsensors, map, n->publish.interval, now_ms(CLOCK_REALTIME)) < 0) {
		mqtt_free(m);
		goto err_rt;
	}

	if ((ort = calloc(n->noutputs + 1, sizeof(*ort))) == NULL) {
		mqtt_free(m);
		goto err_rt;
	}

	/* Commit point: nothing below can fail. */
	workers_stop(d);
	sensors_close(d);
	/* The old outputs go off and let go of their lines before the new ones take them. */
	outputs_close(d);
	outputs_open(d, n, ort);
	d->sensors = rt;
	d->nsensors = n->nsensors;
	workers_start(d);
	for (size_t i = 0; i < d->nsensors; i++)
		sensor_events_on(d, i);
	topics_set(d, n);
	if (new_mqtt) {
		mqtt_disconnect(d->mqtt);
		mqtt_free(d->mqtt);
		d->mqtt = m;
		d->ninflight = 0;
		d->next_connect = 0;
		d->backoff = n->mqtt.reconnect_min;
	}
	/*
	 * Messages awaiting PUBACK stay awaited on the same connection; a
	 * smaller window simply sends nothing new until enough have come back.
	 */
	memcpy(inf, d->inflight, (size_t)d->ninflight * sizeof(*inf));
	free(d->inflight);
	d->inflight = inf;
	d->window = n->mqtt.max_inflight;
	/* storage keys apply at restart: keep the running store's path. */
	free(n->storage.path);
	n->storage.path = strdup(d->conf->storage.path);
	/* The alarms carry over by id: persisted from the old engine, restored into the new. */
	alarms_persist_all(d);
	alarm_free(d->alarms);
	d->alarms = NULL;
	config_free(d->conf);
	d->conf = n;
	if (alarms_open(d, n, &d->alarms) < 0)
		fatalx("reload: the alarm engine cannot be rebuilt");
	/* Zones and limits may have changed: rebuild the summary from the stored readings. */
	summary_free(d->sum);
	d->sum = NULL;
	if (summary_open(n, now_ms(CLOCK_REALTIME), &d->sum) < 0)
		log_warnx("no daily summaries: out of memory");
	else
		summary_replay(d, n, d->sum);
	timer_set(d->fd[FD_COMMIT], n->storage.commit_interval_ms, n->storage.commit_interval_ms,
	    false);
	window_timer_set(d);
	timer_set(d->fd[FD_SENSORS], 0, 0, false);
	free(map);
	audit_config(d, "reload");
	/* Zone names or the site may have changed: say so (no-op while disconnected). */
	status_online(d);
	log_info("reloaded: %zu zones, %zu sensors", n->nzones, n->nsensors);
	return;

err_rt:
	topics_set(d, d->conf);
	for (size_t i = 0; i < n->nsensors; i++)
		if (rt[i].state != NULL)
			rt[i].drv->close(rt[i].state);
	free(rt);
err:
	log_warnx("reload failed; keeping the running configuration");
	free(map);
	free(inf);
	config_free(n);
}

/* ---- the loop ---- */

/*
 * The store stopped taking writes (a full disk, a read-only file) or takes
 * them again.  Messages wait in the store's memory queue meanwhile, so the
 * store_error event and the alarm reach the broker once it writes again;
 * the alarm's local outputs (buzzer, lamp) follow it at once.
 */
static void
store_watch(struct daemon *d)
{
	struct store_health h;
	int64_t now = now_ms(CLOCK_REALTIME);
	bool was;

	store_health(d->store, &h);
	/* What the memory queue had to drop is a loss of undelivered telemetry. */
	d->drops.undelivered += h.dropped;
	alarm_store_error(d->alarms, h.err != 0, (double)h.queued, now);
	was = d->store_err != 0;
	d->store_err = h.err;		/* status_payload() reads it */
	if ((h.err != 0) == was)
		return;
	if (h.err != 0) {
		log_warnx("store %s cannot be written (%s): keeping messages in memory "
		    "until it can; free space on its disk or make it writable",
		    d->conf->storage.path, strerror(-h.err));
		event_begin(d, "store_error");
		jb_str(&d->jb, "error", strerror(-h.err));
		jb_int(&d->jb, "queued", (int64_t)h.queued);
		event_end(d);
	} else
		log_info("store %s takes writes again", d->conf->storage.path);
	if (mqtt_state(d->mqtt) == MQTT_CONNECTED)
		status_online(d);
}

/* Wall clock minus monotonic clock: changes only when the wall clock is stepped. */
static int64_t
clock_offset(void)
{
	return now_ms(CLOCK_REALTIME) - now_ms(CLOCK_MONOTONIC);
}

/*
 * Has the wall clock been stepped since the last look?  Called every
 * second and when the window timer is cancelled by a clock change (which
 * not every way of setting the clock raises).  Wall minus monotonic moves
 * only by a step, or by NTP's slewing at well under a millisecond a second,
 * so a change of more than CLOCK_STEP_MS is a step.
 */
static void
clock_check(struct daemon *d)
{
	int64_t now, step = clock_offset() - d->clock_offset;

	if (step >= -CLOCK_STEP_MS && step <= CLOCK_STEP_MS) {
		d->clock_offset += step;	/* follow the slewing */
		return;
	}
	d->clock_offset += step;
	now = now_ms(CLOCK_REALTIME);
	log_info("the system clock was stepped by %+.3f s", (double)step / 1000.0);
	event_begin(d, "clock_sync");
	jb_int(&d->jb, "step_ms", step);
	event_end(d);
	{
		struct jbuf b = { 0 };

		jb_begin(&b, '{');
		jb_int(&b, "step_ms", step);
		audit_add(d, "clock_sync", &b);
	}
	alarm_clock_step(d->alarms, step);
	if (now < d->agg.start_ms) {
		/* Back before the running window: close it as measured, start anew. */
		telemetry_publish(d);
		agg_next(&d->agg, now);
	}
	window_roll(d, now);
	/* The timer was set for the old clock: an end far ahead would never come. */
	window_timer_set(d);
}

static void
tick(struct daemon *d)
{
	int64_t mono = now_ms(CLOCK_MONOTONIC);

	clock_check(d);
	store_watch(d);
	mqtt_tick(d->mqtt);
	mqtt_try_connect(d);
	alarm_tick(d->alarms, now_ms(CLOCK_REALTIME));
	outputs_update(d, true);
	if (d->sum != NULL && now_ms(CLOCK_REALTIME) >= summary_day_end(d->sum))
		summary_close(d, now_ms(CLOCK_REALTIME));
	if (mono >= d->next_usage) {
		struct store_stats st;

		if (store_stats(d->store, &st) == 0)
			alarm_store_usage(d->alarms, (double)st.used_bytes /
			    ((double)d->conf->storage.max_size_mb * 1048576.0), now_ms(CLOCK_REALTIME));
		d->next_usage = mono + 10000;
	}
	/*
	 * Retention and the size cap, every second: small batches keep each
	 * step short, and up to PRUNE_BATCHES of them keep up with the
	 * fastest sensors we allow, so the store never runs far past its cap.
	 */
	for (int i = 0; i < PRUNE_BATCHES; i++)
		if (store_prune(d->store, now_ms(CLOCK_REALTIME), &d->drops) <= 0)
			break;
	/* Drops are reported as they start, then at most once a minute. */
	if (d->drops.readings + d->drops.delivered + d->drops.undelivered > 0 &&
	    mono >= d->next_overflow_event) {
		log_warnx("store above storage.max_size_mb: dropped %lld readings, "
		    "%lld delivered and %lld undelivered messages",
		    (long long)d->drops.readings, (long long)d->drops.delivered,
		    (long long)d->drops.undelivered);
		event_begin(d, "buffer_overflow");
		jb_int(&d->jb, "dropped_readings", d->drops.readings);
		jb_int(&d->jb, "dropped_delivered", d->drops.delivered);
		jb_int(&d->jb, "dropped_undelivered", d->drops.undelivered);
		jb_int(&d->jb, "max_size_mb", d->conf->storage.max_size_mb);
		event_end(d);
		{
			struct jbuf b = { 0 };

			jb_begin(&b, '{');
			jb_int(&b, "readings", d->drops.readings);
			jb_int(&b, "delivered", d->drops.delivered);
			jb_int(&b, "undelivered", d->drops.undelivered);
			audit_add(d, "dropped", &b);
		}
		memset(&d->drops, 0, sizeof(d->drops));
		d->next_overflow_event = mono + 60000;
	}
}

static void
on_window_timer(struct daemon *d)
{
	uint64_t n;

	if (read(d->fd[FD_WINDOW], &n, sizeof(n)) < 0 && errno == ECANCELED)
		clock_check(d);
	window_roll(d, now_ms(CLOCK_REALTIME));
	/*
	 * Early (the clock went back a little) or on time: the timer is
	 * one-shot and must be armed again either way.
	 */
	window_timer_set(d);
}

static void
on_signal(struct daemon *d)
{
	struct signalfd_siginfo si;

	while (read(d->fd[FD_SIGNAL], &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			notify_send("RELOADING=1");
			reload(d);
			notify_send("READY=1");
			break;
		case SIGTERM:
		case SIGINT:
			log_info("stopping on signal %d", si.ssi_signo);
			d->running = false;
			break;
		}
	}
}

static void
loop_once(struct daemon *d, int timeout_ms)
{
	struct epoll_event ev[FD_COUNT + MAX_WORKERS];
	int n = epoll_wait(d->ep, ev, FD_COUNT + MAX_WORKERS, timeout_ms);

	if (n < 0 && errno != EINTR)
		fatal("epoll_wait");
	for (int i = 0; i < n; i++) {
		uint32_t id = ev[i].data.u32;

		switch (id) {
		case FD_SIGNAL:
			on_signal(d);
			break;
		case FD_SENSORS:
			timer_drain(d->fd[id]);
			sensors_run(d);
			break;
		case FD_COMMIT:
			timer_drain(d->fd[id]);
			store_commit(d->store);
			break;
		case FD_WINDOW:
			on_window_timer(d);
			break;
		case FD_TICK:
			timer_drain(d->fd[id]);
			tick(d);
			break;
		case FD_WATCHDOG:
			timer_drain(d->fd[id]);
			notify_send("WATCHDOG=1");
			break;
		case FD_CONTROL:
			on_control(d);
			break;
		default:
			if (id >= EV_BASE)
				on_sensor_events(d, id - EV_BASE);
			else if (id >= FD_COUNT)
				on_worker(d, id - FD_COUNT);
			break;
		case FD_MQTT:
			if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				mqtt_on_readable(d->mqtt);
			if (ev[i].events & EPOLLOUT)
				mqtt_on_writable(d->mqtt);
			break;
		}
	}
	alarms_flush(d);
	if (d->pump)
		outbox_pump(d);
	mqtt_sync(d);
}

/* Say goodbye: a retained offline status, sent and acknowledged if the broker is there. */
static void
shutdown_mqtt(struct daemon *d)
{
	struct jbuf b = { 0 };
	int64_t until = now_ms(CLOCK_MONOTONIC) + 2000;

	if (mqtt_state(d->mqtt) == MQTT_CONNECTED) {
		status_payload(d, "offline", &b);
		d->status_mid = -1;
		d->status_acked = false;
		if (jb_text(&b) != NULL &&
		    mqtt_publish(d->mqtt, d->t_status, b.p, b.len, 1, true, &d->status_mid) == 0)
			while (!d->status_acked && mqtt_state(d->mqtt) == MQTT_CONNECTED &&
			    now_ms(CLOCK_MONOTONIC) < until)
				loop_once(d, 100);
		jb_free(&b);
	}
	mqtt_disconnect(d->mqtt);
}

static int
setup_fds(struct daemon *d)
{
	static const clockid_t clocks[FD_COUNT] = {
		[FD_SENSORS] = CLOCK_MONOTONIC, [FD_COMMIT] = CLOCK_MONOTONIC,
		[FD_WINDOW] = CLOCK_REALTIME, [FD_TICK] = CLOCK_MONOTONIC,
		[FD_WATCHDOG] = CLOCK_MONOTONIC,
	};
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	if ((d->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -errno;
	if ((d->fd[FD_SIGNAL] = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		return -errno;
	for (int i = FD_SENSORS; i <= FD_WATCHDOG; i++)
		if ((d->fd[i] = timerfd_create(clocks[i], TFD_NONBLOCK | TFD_CLOEXEC)) < 0)
			return -errno;
	for (int i = FD_SIGNAL; i <= FD_WATCHDOG; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };

		if (epoll_ctl(d->ep, EPOLL_CTL_ADD, d->fd[i], &ev) < 0)
			return -errno;
	}
	return 0;
}

static int
run(struct config *conf)
{
	struct daemon d = { .conf = conf, .mqtt_regfd = -1, .ep = -1, .lock_fd = -1 };
	struct output_rt *ort;
	struct store_opts so = {
		.path = conf->storage.path, .sync_full = conf->storage.sync == STORE_SYNC_FULL,
		.max_size_mb = conf->storage.max_size_mb, .retain_days = conf->storage.retain_days,
	};
	uint64_t wd;
	pid_t holder;
	int rc;

	for (int i = 0; i < FD_COUNT; i++)
		d.fd[i] = -1;
	d.clock_offset = clock_offset();
	if (statedir_ensure(conf->gateway.state_dir) < 0) {
		d.exit_code = 1;
		goto out;
	}
	/* Two daemons on one store would both hand out the same seqs. */
	if ((d.lock_fd = statedir_lock(conf->gateway.state_dir, &holder)) < 0) {
		if (d.lock_fd == -EWOULDBLOCK && holder > 0)
			log_warnx("gateway.state_dir %s is in use by another coldgated (pid %ld); "
			    "stopping", conf->gateway.state_dir, (long)holder);
		else if (d.lock_fd == -EWOULDBLOCK)
			log_warnx("gateway.state_dir %s is in use by another coldgated; stopping",
			    conf->gateway.state_dir);
		d.exit_code = 1;
		goto out;
	}
	if (store_open(&d.store, &so, false) < 0) {
		log_warnx("cannot use the store %s; stopping", conf->storage.path);
		d.exit_code = 1;
		goto out;
	}
	if ((rc = setup_fds(&d)) < 0) {
		errno = -rc;
		log_warn("event loop setup");
		d.exit_code = 1;
		goto out;
	}
	if (topics_set(&d, conf) < 0 || agg_init(&d.agg, conf->nsensors, conf->publish.interval,
	    now_ms(CLOCK_REALTIME)) < 0 || mqtt_make(&d, conf, &d.mqtt) < 0 ||
	    (d.inflight = calloc((size_t)conf->mqtt.max_inflight, sizeof(*d.inflight))) == NULL ||
	    sensors_open(&d, conf, &d.sensors) < 0) {
		log_warnx("start-up failed");
		d.exit_code = 1;
		goto out;
	}
	d.nsensors = conf->nsensors;
	workers_start(&d);
	for (size_t i = 0; i < d.nsensors; i++)
		sensor_events_on(&d, i);
	if (alarms_open(&d, conf, &d.alarms) < 0) {
		log_warnx("start-up failed: alarm rules");
		d.exit_code = 1;
		goto out;
	}
	if (summary_open(conf, now_ms(CLOCK_REALTIME), &d.sum) < 0)
		log_warnx("no daily summaries: out of memory");
	else
		summary_replay(&d, conf, d.sum);
	d.sum_zone = -1;
	if ((ort = calloc(conf->noutputs + 1, sizeof(*ort))) == NULL) {
		log_warnx("start-up failed: out of memory");
		d.exit_code = 1;
		goto out;
	}
	outputs_open(&d, conf, ort);
	/* Restored alarms that are still active sound again at once. */
	outputs_update(&d, false);
	if (control_open(&d, conf->gateway.state_dir) == 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = FD_CONTROL };

		if (epoll_ctl(d.ep, EPOLL_CTL_ADD, d.fd[FD_CONTROL], &ev) < 0)
			log_warn("epoll_ctl control socket");
	} else {
		log_warnx("no control socket: coldgatectl ack will not reach this daemon");
	}
	d.window = conf->mqtt.max_inflight;
	d.backoff = conf->mqtt.reconnect_min;

	/*
	 * Sensor time (the sim driver's scripts) starts with the first read,
	 * not before the store opened: under valgrind that took half a second
	 * and shifted every scripted value off its read.
	 */
	d.started_mono = now_ms(CLOCK_MONOTONIC);
	timer_set(d.fd[FD_SENSORS], 0, 0, false);
	timer_set(d.fd[FD_COMMIT], conf->storage.commit_interval_ms,
	    conf->storage.commit_interval_ms, false);
	window_timer_set(&d);
	timer_set(d.fd[FD_TICK], 1000, 1000, false);
	if ((wd = notify_watchdog_usec()) > 0)
		timer_set(d.fd[FD_WATCHDOG], (int64_t)(wd / 2000), (int64_t)(wd / 2000), false);
	mqtt_try_connect(&d);
	mqtt_sync(&d);
	d.running = true;
	log_info("coldgated %s running: gateway %s, %zu zones, %zu sensors, store %s",
	    COLDGATE_VERSION, conf->gateway.id, conf->nzones, conf->nsensors, conf->storage.path);
	/*
	 * Parsing the configuration and opening the store leave freed holes
	 * in the heap; hand their pages back so they do not count against
	 * the gateway's memory.
	 */
	audit_config(&d, "start");
	malloc_trim(0);
	/*
	 * Big short-lived buffers (a window's telemetry, libmosquitto's copy
	 * of it) come from mmap and go back whole when freed; and little free
	 * space is kept at the top of the heap.  Together these keep the
	 * private memory of a 100-sensor gateway under a megabyte.
	 */
	mallopt(M_MMAP_THRESHOLD, 16 * 1024);
	mallopt(M_TRIM_THRESHOLD, 32 * 1024);
	mallopt(M_TOP_PAD, 0);
	notify_send("READY=1");

	while (d.running)
		loop_once(&d, -1);

	notify_send("STOPPING=1");
	{
		struct jbuf b = { 0 };

		jb_begin(&b, '{');
		audit_add(&d, "stop", &b);
	}
	shutdown_mqtt(&d);
out:
	if (d.store != NULL)
		alarms_persist_all(&d);
	workers_stop(&d);
	alarm_free(d.alarms);
	summary_free(d.sum);
	free(d.dirty);
	control_close(&d);
	if (d.store != NULL)
		store_set_state(d.store, "mqtt", "stopped");
	sensors_close(&d);
	outputs_close(&d);
	mqtt_free(d.mqtt);
	store_close(d.store);
	agg_free(&d.agg);
	jb_free(&d.jb);
	free(d.inflight);
	for (int i = 0; i < FD_COUNT; i++)
		if (d.fd[i] >= 0)
			close(d.fd[i]);
	if (d.ep >= 0)
		close(d.ep);
	/* Last: the next daemon may start as soon as this goes. */
	if (d.lock_fd >= 0)
		close(d.lock_fd);
	config_free(d.conf);
	return d.exit_code;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: coldgated [-c FILE] [-f] [-v] [--check-config] [--version] [--help]\n"
	    "  -c FILE          configuration (default " CONFIG_DEFAULT_PATH ")\n"
	    "  -f               stay in the foreground, log to stderr\n"
	    "  -v               log debug messages too\n"
	    "  --check-config   validate FILE, print what is wrong with file:line, exit\n"
	    "exit status: 0 clean stop, 1 runtime failure, 2 usage or configuration error\n");
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "check-config", no_argument, NULL, 'C' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = CONFIG_DEFAULT_PATH;
	bool foreground = false, check = false;
	int verbose = 0, ch;
	struct config *conf;
	char *errors = NULL;

	while ((ch = getopt_long(argc, argv, "c:fvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'f': foreground = true; break;
		case 'v': verbose++; break;
		case 'C': check = true; break;
		case 'V': printf("coldgated %s\n", COLDGATE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	log_init(verbose);
	if ((conf = config_load(path, &errors)) == NULL) {
		fprintf(stderr, "%s", errors ? errors : "out of memory\n");
		if (errors != NULL && errors[strlen(errors) - 1] != '\n')
			fputc('\n', stderr);
		free(errors);
		return 2;
	}
	if (check) {
		printf("%s: configuration is valid (%zu zones, %zu sensors)\n", path, conf->nzones,
		    conf->nsensors);
		config_free(conf);
		return 0;
	}
	if (!foreground && daemon(0, 1) < 0)
		fatal("daemon");
	return run(conf);
}
