/*
 * Sampling: the configured sensors opened, scheduled and read -- inline,
 * or in a worker thread per bus for drivers that block -- and each result
 * applied: stored with its quality, and good values into the telemetry
 * window, the alarm engine and the day's summary.  The verdicts on a value
 * (quality, door edges, faults, retry back-off) are readings.c's.  Owns
 * the sampling fields of struct daemon (daemon.h); must not touch the
 * MQTT link, outputs or alarm records.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "payload.h"
#include "sensor.h"
#include "worker.h"

/* Stop waiting on sensor i's event fd. */
static void
events_off(struct daemon *d, struct sensor_rt *s)
{
	if (s->evfd >= 0)
		epoll_ctl(d->ep, EPOLL_CTL_DEL, s->evfd, NULL);
	s->evfd = -1;
}

/* Wait on sensor i's event fd, if its driver has one. */
static void
events_on(struct daemon *d, size_t i)
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

void
sampling_discard(struct sensor_rt *rt, size_t n)
{
	if (rt == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		if (rt[i].state != NULL)
			rt[i].drv->close(rt[i].state);
	free(rt);
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
int
sampling_open(struct daemon *d, const struct config *conf, struct sensor_rt **out)
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
		readings_track_init(&rt[i].track);
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
			sampling_discard(rt, i);
			return rc;
		}
	}
	*out = rt;
	return 0;
}

/* A sensor whose open failed: try again.  0 when it is open now. */
static int
reopen(struct daemon *d, size_t i)
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
	events_on(d, i);
	return 0;
}

static void
read_failed(struct daemon *d, struct sensor_rt *s, int err)
{
	if (!readings_failed(&s->track))
		return;
	log_warnx("sensor %s: %d reads failed in a row: %s", s->cfg->id, s->track.fails,
	    strerror(-err));
	uplink_event(d, &(struct payload_event){ .type = PAYLOAD_SENSOR_FAULT,
	    .sensor = { s->cfg->id, s->cfg->zone, strerror(-err) } });
}

static void
read_ok(struct daemon *d, struct sensor_rt *s)
{
	if (!readings_ok(&s->track))
		return;
	log_info("sensor %s: reading again", s->cfg->id);
	uplink_event(d, &(struct payload_event){ .type = PAYLOAD_SENSOR_RECOVERED,
	    .sensor = { s->cfg->id, s->cfg->zone, NULL } });
}

/* One value of sensor i: stored with its quality; only good ones go further. */
static void
take_value(struct daemon *d, size_t i, enum quantity q, double v, int64_t ts)
{
	struct sensor_rt *s = &d->sensors[i];
	bool clock_ok = readings_clock_ok(ts);
	enum quality ql;
	enum readings_door door;

	if ((unsigned)q >= Q_COUNT)
		return;		/* a driver's bug: no quantity we know */
	ql = readings_quality(&s->track, s->cfg->spike_filter, q, v);
	store_add_reading(d->store, s->key, q, v, ts,
	    (clock_ok ? 0 : READING_CLOCK_BAD) | (int)ql << READING_QUALITY_SHIFT);
	if (ql != QUALITY_OK) {
		log_debug("sensor %s: %s %g refused (%s)", s->cfg->id, quantity_name(q), v,
		    quality_name(ql));
		return;
	}
	agg_add(&d->agg, i, q, v, clock_ok);
	alarm_reading(d->alarms, i, q, v, ts);
	records_summary_feed(d, i, q, v, ts);
	if (q == Q_DOOR && (door = readings_door(&s->track, v)) != DOOR_SAME) {
		/* door_open or door_close, at the time it happened */
		uplink_event(d, &(struct payload_event){ .ts = ts, .type = door == DOOR_OPENED ?
		    PAYLOAD_DOOR_OPEN : PAYLOAD_DOOR_CLOSE, .sensor = { s->cfg->id, s->cfg->zone,
		    NULL } });
	}
}

/* What one read of sensor i gave: n readings in r taken at wall_ms, or an error n < 0. */
static void
take_result(struct daemon *d, size_t i, int n, const struct reading *r, int64_t wall_ms)
{
	struct sensor_rt *s = &d->sensors[i];

	if (n < 0) {
		bool clock_ok = readings_clock_ok(wall_ms);
		int flags = (clock_ok ? 0 : READING_CLOCK_BAD) |
		    (int)quality_of_error(n) << READING_QUALITY_SHIFT;

		/* The failed read is on record, for each quantity the sensor gives. */
		for (int q = 0; q < Q_COUNT; q++)
			if (s->track.qmask & (1u << q))
				store_add_reading(d->store, s->key, q, 0, wall_ms, flags);
		read_failed(d, s, n);
		alarm_fault(d->alarms, i, n, wall_ms);
		/*
		 * Try again sooner than the interval, then back off (never below
		 * the part's minimum); sensors_run sets the timer for the new due.
		 */
		s->due = now_ms(CLOCK_MONOTONIC) +
		    readings_retry_delay(&s->track, s->cfg->interval, s->drv->min_interval);
		timer_set(d->fd[FD_SENSORS], 0, 0);
		return;
	}
	read_ok(d, s);
	if (n == 0)
		alarm_fault(d->alarms, i, 0, wall_ms);
	for (int k = 0; k < n; k++)
		take_value(d, i, r[k].q, r[k].value, wall_ms);
}

/* Sensor i's event fd is readable: changes as they happened. */
void
sampling_on_events(struct daemon *d, size_t i)
{
	struct sensor_rt *s;
	struct sensor_event ev[8];
	int n;

	if (i >= d->nsensors || (s = &d->sensors[i])->state == NULL)
		return;
	if ((n = s->drv->events(s->state, ev, sizeof(ev) / sizeof(ev[0]))) < 0) {
		/* The device went away under us: stop waiting; reads will find it again. */
		log_warnx("sensor %s: events: %s", s->cfg->id, strerror(-n));
		events_off(d, s);
		s->drv->close(s->state);
		s->state = NULL;
		s->open_err = n;
		take_result(d, i, n, NULL, now_ms(CLOCK_REALTIME));
		return;
	}
	if (n > 0)
		uplink_window_roll(d, now_ms(CLOCK_REALTIME));
	for (int k = 0; k < n; k++)
		take_value(d, i, ev[k].r.q, ev[k].r.value, ev[k].wall_ms);
}

void
sampling_run(struct daemon *d)
{
	int64_t mono = now_ms(CLOCK_MONOTONIC), next = INT64_MAX;
	struct sensor_clock clk = { .wall_ms = now_ms(CLOCK_REALTIME) };

	clk.elapsed = (double)(mono - d->started_mono) / 1000.0;
	uplink_window_roll(d, clk.wall_ms);
	for (size_t i = 0; i < d->nsensors; i++) {
		struct sensor_rt *s = &d->sensors[i];
		struct reading r[SENSOR_MAX_READINGS];
		int64_t period = readings_period(s->cfg->interval, s->drv->min_interval);

		if (s->due <= mono) {
			/* Keep the cadence; after a stall, skip the missed reads. */
			s->due += period;
			if (s->due <= mono)
				s->due = mono + period;
			if (s->state == NULL && reopen(d, i) < 0) {
				take_result(d, i, s->open_err, r, clk.wall_ms);
			} else if (s->w == NULL) {
				take_result(d, i, s->drv->read(s->state, &clk, r,
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
		timer_set(d->fd[FD_SENSORS], next > mono ? next - mono : 0, 0);
}

/* Results the worker k has finished. */
void
sampling_on_worker(struct daemon *d, size_t k)
{
	struct worker_result res;

	while (k < d->nworkers && worker_collect(d->workers[k], &res) > 0) {
		if (res.sensor >= d->nsensors)
			continue;
		d->sensors[res.sensor].busy = false;
		uplink_window_roll(d, res.wall_ms);
		take_result(d, res.sensor, res.n, res.r, res.wall_ms);
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

void
sampling_start(struct daemon *d)
{
	workers_start(d);
	for (size_t i = 0; i < d->nsensors; i++)
		events_on(d, i);
}

/* The workers first: a read running there still uses its sensor's state. */
void
sampling_stop(struct daemon *d)
{
	workers_stop(d);
	for (size_t i = 0; i < d->nsensors; i++)
		events_off(d, &d->sensors[i]);
	sampling_discard(d->sensors, d->nsensors);
	d->sensors = NULL;
	d->nsensors = 0;
}
