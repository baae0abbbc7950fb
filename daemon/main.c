/*
 * coldgated -- reads the sensors, keeps every reading in the store, and
 * forwards per-window aggregates and events over MQTT (SPEC §2-5).
 *
 * This file is the loop and the lifecycle only.  One thread owns
 * everything and runs one epoll loop over: a signalfd, the MQTT socket
 * (registered again after each reconnect, since it changes), a timerfd per
 * schedule (sensor reads, store commits, the end of the aggregation
 * window, a one-second housekeeping tick, the systemd watchdog), the
 * control socket, workers' result fds and sensors' event fds.  Start and
 * reload share one bring_up(): everything a configuration needs is built
 * first, and swapped in at one point that cannot fail.  What the loop
 * dispatches to lives in the rooms listed in daemon.h.
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "mqtt.h"
#include "notify.h"
#include "payload.h"
#include "statedir.h"
#include "summary.h"

int64_t
now_ms(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
timer_set(int fd, int64_t first_ms, int64_t period_ms)
{
	struct itimerspec it = {
		.it_value = { first_ms / 1000, (first_ms % 1000) * 1000000 },
		.it_interval = { period_ms / 1000, (period_ms % 1000) * 1000000 },
	};

	/* A zero it_value disarms the timer: a due time in the past must still fire. */
	if (it.it_value.tv_sec == 0 && it.it_value.tv_nsec == 0)
		it.it_value.tv_nsec = 1;
	if (timerfd_settime(fd, 0, &it, NULL) < 0)
		log_warn("timerfd_settime");
}

static void
timer_drain(int fd)
{
	uint64_t n;

	(void)!read(fd, &n, sizeof(n));
}

/* ---- bring-up: start and reload ---- */

/* Everything one configuration needs, built before any of it is in use. */
struct next {
	struct config		*conf;
	struct topics		 t;
	struct sensor_rt	*sensors;
	struct output_rt	*outputs;	/* not open yet */
	struct alarm_engine	*alarms;
	struct summary		*sum;		/* NULL: no daily summaries (no memory) */
	struct mqtt		*mqtt;		/* NULL: the running link serves it */
	struct inflight		*inflight;
	int			 capinflight;
	struct agg		 agg;
	int			*map;		/* new sensor i was old sensor map[i], or -1 */
	char			*store_path;	/* the running store's, on a reload */
};

static void
next_free(struct next *n)
{
	sampling_discard(n->sensors, n->conf->nsensors);
	free(n->outputs);
	alarm_free(n->alarms);
	summary_free(n->sum);
	mqtt_free(n->mqtt);
	free(n->inflight);
	agg_free(&n->agg);
	free(n->map);
	free(n->store_path);
}

/*
 * Build what conf needs next to what is running (nothing, at start).  0,
 * or -errno with nothing built and nothing running touched: the sensors
 * are opened, but a line or a bus the running set still holds is only
 * retried later, so the running set is not disturbed.
 */
static int
prepare(struct daemon *d, struct config *conf, struct next *n)
{
	const struct config *old = d->conf;
	int64_t now = now_ms(CLOCK_REALTIME);
	int rc;

	*n = (struct next){ .conf = conf };
	/*
	 * The new in-flight table holds what is in flight now as well as the
	 * new window: PUBACKs for messages sent before the reload must still
	 * find them, or those slots are never freed and delivery stalls.
	 */
	n->capinflight = conf->mqtt.max_inflight > d->ninflight ? conf->mqtt.max_inflight :
	    d->ninflight;
	if ((rc = uplink_topics(&n->t, conf)) < 0)
		return rc;
	if ((n->map = calloc(conf->nsensors + 1, sizeof(*n->map))) == NULL ||
	    (n->inflight = calloc((size_t)n->capinflight, sizeof(*n->inflight))) == NULL ||
	    (n->outputs = calloc(conf->noutputs + 1, sizeof(*n->outputs))) == NULL ||
	    (old != NULL && (n->store_path = strdup(old->storage.path)) == NULL) ||
	    agg_init(&n->agg, conf->nsensors, conf->publish.interval, now) < 0) {
		rc = -ENOMEM;
		goto err;
	}
	for (size_t i = 0; i < conf->nsensors; i++)
		n->map[i] = old != NULL ? config_sensor_index(old, conf->sensors[i].id) : -1;
	if ((rc = sampling_open(d, conf, &n->sensors)) < 0)
		goto err;
	if ((rc = alarmio_new(d, conf, &n->alarms)) < 0)
		goto err;
	if (old == NULL || !uplink_same(old, conf))
		if ((rc = uplink_new(d, conf, &n->t, &n->mqtt)) < 0)
			goto err;
	if (records_summary_new(conf, now, &n->sum) < 0)
		log_warnx("no daily summaries: out of memory");
	return 0;
err:
	next_free(n);
	return rc;
}

/*
 * The commit point: the running parts go, n's come in.  Nothing here can
 * fail; what can go wrong is only logged (a sensor or an output that will
 * not open is retried, a summary not read back starts now).
 */
static void
swap_in(struct daemon *d, struct next *n)
{
	struct config *old = d->conf;

	if (old != NULL) {
		/* The running window closes with the sensors that filled it. */
		if (n->agg.interval_ms != d->agg.interval_ms)
			uplink_window_publish(d);	/* ends early rather than vanish */
		else
			agg_carry(&n->agg, &d->agg, n->map);
		/* The alarms carry over by id: persisted from the old engine, restored below. */
		alarmio_persist_all(d);
	}
	sampling_stop(d);
	/* The old outputs go off and let go of their lines before the new ones take them. */
	outputs_close(d);
	alarm_free(d->alarms);
	d->alarms = NULL;
	summary_free(d->sum);
	d->sum = NULL;
	agg_free(&d->agg);

	if (n->store_path != NULL) {
		/* storage keys apply at restart: keep the running store's path. */
		free(n->conf->storage.path);
		n->conf->storage.path = n->store_path;
	}
	d->conf = n->conf;
	d->t = n->t;
	d->agg = n->agg;
	d->sensors = n->sensors;
	d->nsensors = n->conf->nsensors;
	sampling_start(d);
	outputs_open(d, n->conf, n->outputs);
	if (n->mqtt != NULL) {
		if (d->mqtt != NULL) {
			mqtt_disconnect(d->mqtt);
			mqtt_free(d->mqtt);
		}
		d->mqtt = n->mqtt;
		d->ninflight = 0;
		d->next_connect = 0;
		d->backoff = n->conf->mqtt.reconnect_min;
	}
	/*
	 * Messages awaiting PUBACK stay awaited on the same connection; a
	 * smaller window simply sends nothing new until enough have come back.
	 */
	assert(d->ninflight <= n->capinflight);
	if (d->ninflight > 0)
		memcpy(n->inflight, d->inflight, (size_t)d->ninflight * sizeof(*n->inflight));
	free(d->inflight);
	d->inflight = n->inflight;
	d->capinflight = n->capinflight;
	d->window = n->conf->mqtt.max_inflight;
	d->alarms = n->alarms;
	alarmio_restore(d);
	d->sum = n->sum;
	d->sum_zone = -1;
	records_summary_replay(d);
	/* Restored alarms that are still active sound again at once. */
	outputs_update(d, false);
	free(n->map);
	config_free(old);
	*n = (struct next){ 0 };
}

/*
 * Bring up conf: at start (nothing running) and at each reload.  0 with
 * conf in force (d owns it), or -errno with the running configuration
 * untouched (the caller still owns conf).
 */
static int
bring_up(struct daemon *d, struct config *conf)
{
	struct next n;
	int rc;

	if ((rc = prepare(d, conf, &n)) < 0)
		return rc;
	swap_in(d, &n);
	timer_set(d->fd[FD_COMMIT], conf->storage.commit_interval_ms,
	    conf->storage.commit_interval_ms);
	uplink_window_timer(d);
	timer_set(d->fd[FD_SENSORS], 0, 0);
	return 0;
}

/* SIGHUP: load the file again; swap it in only if all of it is good. */
static void
reload(struct daemon *d)
{
	struct config *n;
	char *errors = NULL;

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
	if (bring_up(d, n) < 0) {
		log_warnx("reload failed; keeping the running configuration");
		config_free(n);
		return;
	}
	records_audit_config(d, PAYLOAD_AUDIT_RELOAD);
	/* Zone names or the site may have changed: say so (no-op while disconnected). */
	uplink_status_online(d);
	log_info("reloaded: %zu zones, %zu sensors", n->nzones, n->nsensors);
}

/* ---- the loop ---- */

static void
tick(struct daemon *d)
{
	upkeep_clock(d);
	upkeep_store_health(d);
	mqtt_tick(d->mqtt);
	uplink_try_connect(d);
	alarm_tick(d->alarms, now_ms(CLOCK_REALTIME));
	outputs_update(d, true);
	records_summary_tick(d, now_ms(CLOCK_REALTIME));
	upkeep_store_space(d);
}

static void
on_window_timer(struct daemon *d)
{
	uint64_t n;

	if (read(d->fd[FD_WINDOW], &n, sizeof(n)) < 0 && errno == ECANCELED)
		upkeep_clock(d);
	uplink_window_roll(d, now_ms(CLOCK_REALTIME));
	/*
	 * Early (the clock went back a little) or on time: the timer is
	 * one-shot and must be armed again either way.
	 */
	uplink_window_timer(d);
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
			sampling_run(d);
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
			control_on_readable(d);
			break;
		default:
			if (id >= EV_BASE)
				sampling_on_events(d, id - EV_BASE);
			else if (id >= FD_COUNT)
				sampling_on_worker(d, id - FD_COUNT);
			break;
		case FD_MQTT:
			if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				mqtt_on_readable(d->mqtt);
			if (ev[i].events & EPOLLOUT)
				mqtt_on_writable(d->mqtt);
			break;
		}
	}
	alarmio_flush(d);
	if (d->pump)
		uplink_pump(d);
	uplink_sync(d);
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
	struct daemon d = { .mqtt_regfd = -1, .ep = -1, .lock_fd = -1, .sum_zone = -1 };
	struct store_opts so = {
		.path = conf->storage.path, .sync_full = conf->storage.sync == STORE_SYNC_FULL,
		.max_size_mb = conf->storage.max_size_mb, .retain_days = conf->storage.retain_days,
	};
	uint64_t wd;
	pid_t holder;
	int rc;

	for (int i = 0; i < FD_COUNT; i++)
		d.fd[i] = -1;
	d.clock_offset = upkeep_clock_offset();
	if (statedir_ensure(conf->gateway.state_dir) < 0)
		goto fail;
	/* Two daemons on one store would both hand out the same seqs. */
	if ((d.lock_fd = statedir_lock(conf->gateway.state_dir, &holder)) < 0) {
		if (d.lock_fd == -EWOULDBLOCK && holder > 0)
			log_warnx("gateway.state_dir %s is in use by another coldgated (pid %ld); "
			    "stopping", conf->gateway.state_dir, (long)holder);
		else if (d.lock_fd == -EWOULDBLOCK)
			log_warnx("gateway.state_dir %s is in use by another coldgated; stopping",
			    conf->gateway.state_dir);
		goto fail;
	}
	if (store_open(&d.store, &so, false) < 0) {
		log_warnx("cannot use the store %s; stopping", conf->storage.path);
		goto fail;
	}
	if ((rc = setup_fds(&d)) < 0) {
		errno = -rc;
		log_warn("event loop setup");
		goto fail;
	}
	if (bring_up(&d, conf) < 0) {
		log_warnx("start-up failed");
		goto fail;
	}
	conf = NULL;	/* d owns it now */
	if (control_open(&d, d.conf->gateway.state_dir) == 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = FD_CONTROL };

		if (epoll_ctl(d.ep, EPOLL_CTL_ADD, d.fd[FD_CONTROL], &ev) < 0)
			log_warn("epoll_ctl control socket");
	} else {
		log_warnx("no control socket: coldgatectl ack will not reach this daemon");
	}
	/*
	 * Sensor time (the sim driver's scripts) starts with the first read,
	 * not before the store opened: under valgrind that took half a second
	 * and shifted every scripted value off its read.
	 */
	d.started_mono = now_ms(CLOCK_MONOTONIC);
	timer_set(d.fd[FD_TICK], 1000, 1000);
	if ((wd = notify_watchdog_usec()) > 0)
		timer_set(d.fd[FD_WATCHDOG], (int64_t)(wd / 2000), (int64_t)(wd / 2000));
	uplink_try_connect(&d);
	uplink_sync(&d);
	d.running = true;
	log_info("coldgated %s running: gateway %s, %zu zones, %zu sensors, store %s",
	    COLDGATE_VERSION, d.conf->gateway.id, d.conf->nzones, d.conf->nsensors,
	    d.conf->storage.path);
	records_audit_config(&d, PAYLOAD_AUDIT_START);
	/*
	 * Parsing the configuration and opening the store leave freed holes
	 * in the heap; hand their pages back so they do not count against
	 * the gateway's memory.
	 */
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

		payload_audit_stop(&b);
		records_audit(&d, PAYLOAD_AUDIT_STOP, &b);
	}
	uplink_goodbye(&d, loop_once);
	goto out;
fail:
	d.exit_code = 1;
out:
	if (d.store != NULL)
		alarmio_persist_all(&d);
	sampling_stop(&d);
	alarm_free(d.alarms);
	summary_free(d.sum);
	free(d.dirty);
	control_close(&d);
	if (d.store != NULL)
		store_set_state(d.store, "mqtt", "stopped");
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
	config_free(conf);
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

