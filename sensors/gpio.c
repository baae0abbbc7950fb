/*
 * gpio-contact, gpio-output — a door contact (a reed switch) on a GPIO input
 * line, and a buzzer, relay or warning lamp on a GPIO output line, through
 * the kernel's GPIO character device (/dev/gpiochipN) and libgpiod 1.6.
 *
 * Device: a line of a GPIO chip.  chip names the chip as libgpiod's
 * gpiod_chip_open_lookup() takes it: a number ("0"), a name ("gpiochip0"),
 * a path ("/dev/gpiochip0") or the chip's label ("pinctrl-bcm2711"; a label
 * survives the renumbering of chips between kernels).  line is the offset on
 * that chip (on a Raspberry Pi's main chip, the BCM GPIO number).  Lines are
 * requested with the consumer name "coldgate", which gpioinfo shows.
 *
 * Door contact wiring.  Q_DOOR is 1 while the line is logically active
 * (after active_low) and means "door open"; 0 is "door closed".  The rule:
 * active_low = false when the line is HIGH with the door open, true when it
 * is LOW with the door open.
 *
 *   The usual wiring: the reed switch between the GPIO and GND, a pull-up to
 *   3.3 V, the magnet on the door, and a contact that is closed while the
 *   magnet is near (most alarm door contacts; vendors call this "NC", closed
 *   in the armed, door-shut state).  Door closed: contact closed, line pulled
 *   to GND, low.  Door open: contact open, the pull-up takes the line high.
 *   High = open, so active_low = false.  A cut wire also reads high, as an
 *   open door: the failure is the safe one.
 *
 *   The other way round: a contact that closes when the door opens (a switch
 *   that is open while the magnet is near) between GPIO and GND with a
 *   pull-up reads low with the door open; so does a contact that is closed
 *   with the door shut wired to 3.3 V with a pull-down.  Low = open: set
 *   active_low = true.  A cut wire then reads as a closed door.
 *
 * The driver leaves the line's bias as it is: the pull-up (or pull-down)
 * comes from an external resistor or the board's configuration (on a
 * Raspberry Pi, e.g. "gpio=17=ip,pu" in config.txt).  A floating input
 * bounces between open and closed at random.
 *
 * Timing.  A reed switch bounces for a few ms when it opens or closes.  The
 * kernel timestamps each edge (CLOCK_MONOTONIC since Linux 5.7, commit
 * f8850206e160 "gpio: Switch timestamps to ktime_get_ns()"; CLOCK_REALTIME
 * before: a stamp far ahead of the monotonic clock is taken for a realtime
 * one) and queues up to 16 of them; when that queue is full it drops the
 * newest.  The line's event fd and a timerfd of this driver sit in an epoll
 * set of the driver's own, whose fd is the sensor's event_fd for the
 * daemon's loop.  events() drains the edges (only while the line fd is
 * readable, so it never blocks), and arms the timer for debounce_ms
 * (0..10000, default 50) after the last one.  When the timer fires, the line
 * has been quiet for debounce_ms: the driver reads the level, and if it
 * differs from the settled state, that level is the new settled state and
 * events() returns one event, stamped with the time of that last edge.  The
 * level decides, not the kind of the last edge: the kernel's uAPI v1 tells
 * rising from falling by sampling the line in its interrupt thread, which in
 * a burst of bounces may come late, and a full queue loses the last edges.
 * A burst that ends at the settled level yields no event.  With
 * debounce_ms = 0 every edge that changes the settled state is an event at
 * once, of the kind the kernel gave it.
 *
 * read() reports the settled state, never a level in the middle of a
 * bounce; the line is read all the same, to find a line that has gone
 * (-ENODEV and the like, as libgpiod reports them) and a level that changed
 * with no edge seen: then the driver starts a debounce from that moment, as
 * if an edge had come.  Before any edge the settled state is the level read
 * at open().  An event's wall_ms is the edge's kernel timestamp on the
 * realtime clock: now_realtime - (now_monotonic - stamp).
 *
 * Outputs: the line is requested as an output at logical 0 (off; with
 * active_low the line's inactive level is high), so it is never on between
 * the request and the first set().  set() always writes the value, even when
 * it is the one last written: it costs an ioctl and puts back a line that
 * something else changed.  close() writes off, then releases the line: what
 * a released line does is up to the chip's kernel driver (most leave it as
 * it was, some make it an input), so off first; a relay that must be off
 * while the daemon is not running needs a pull resistor to its off level.
 *
 * Errors: a bad chip, line or debounce -> -EINVAL; what libgpiod reports
 * otherwise as -errno: no such chip -ENOENT (or -ENODEV), a line beyond the
 * chip -EINVAL, a line in use -EBUSY, no permission -EACCES.
 *
 * libgpiod is thread-aware, not thread-safe: everything here runs on the
 * main thread, and nothing blocks (.blocks = NULL).
 *
 * Configuration keys of gpio-contact (contact_keys, at the bottom): chip and
 * line (0..65535), required; active_low (false); debounce_ms 0..10000 (50);
 * bias as-is, disable, pull-up or pull-down (as-is).  Of gpio-output, in
 * an output group (output_keys): chip and line (0..65535), required;
 * active_low (false).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <gpiod.h>

#include "config.h"
#include "log.h"
#include "output.h"
#include "sensor.h"

#define GPIO_CONSUMER		"coldgate"
#define GPIO_DEBOUNCE_MAX	10000		/* ms */
#define GPIO_EVENT_BATCH	16		/* the kernel's queue holds 16 */
#define GPIO_EVENT_BATCHES	4		/* per events() call: do not hog the loop */
#define GPIO_SCAN_CHIPS		32		/* /dev/gpiochip0..31 */
#define NS_PER_S		INT64_C(1000000000)
#define NS_PER_MS		INT64_C(1000000)

struct gpio_contact {
	struct gpiod_chip	*chip;
	struct gpiod_line	*line;
	int			 line_fd;	/* the line's event fd: libgpiod's */
	int			 timer_fd;	/* debounce, CLOCK_MONOTONIC */
	int			 epoll_fd;	/* line_fd and timer_fd: event_fd() */
	int			 debounce_ms;
	int			 settled;	/* 0 or 1 */
	bool			 pending;	/* edges seen, timer armed */
	int64_t			 edge_ns;	/* the last edge, CLOCK_MONOTONIC */
};

struct gpio_output {
	char			 id[CONFIG_ID_MAX + 1];
	struct gpiod_chip	*chip;
	struct gpiod_line	*line;
};

/* -errno after a failed libgpiod call; some paths fail without setting errno. */
static int
gpio_err(void)
{
	return errno > 0 ? -errno : -EIO;
}

/*
 * Open chip (a number, name, path or label) and get its line at offset.
 * 0, or -errno; either way *chipp, when not NULL, is the caller's to close.
 */
static int
gpio_lookup(const char *chip, int offset, struct gpiod_chip **chipp, struct gpiod_line **linep)
{
	errno = 0;
	if ((*chipp = gpiod_chip_open_lookup(chip)) == NULL)
		return errno > 0 ? -errno : -ENODEV;
	errno = 0;
	if ((*linep = gpiod_chip_get_line(*chipp, (unsigned int)offset)) == NULL)
		return gpio_err();
	return 0;
}

static int64_t
gpio_now(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/*
 * An edge's kernel timestamp on the monotonic clock.  Kernels before 5.7
 * stamp with CLOCK_REALTIME: a stamp more than a second ahead of the
 * monotonic clock can only be one of those (the monotonic clock would need
 * decades of uptime to reach the realtime clock's values).
 */
static int64_t
contact_edge_time(const struct timespec *ts)
{
	int64_t t = (int64_t)ts->tv_sec * NS_PER_S + ts->tv_nsec;
	int64_t mono = gpio_now(CLOCK_MONOTONIC);

	if (t > mono + NS_PER_S)
		t -= gpio_now(CLOCK_REALTIME) - mono;
	return t < mono ? t : mono;
}

/* A monotonic time in epoch ms. */
static int64_t
contact_wall_ms(int64_t mono_ns)
{
	int64_t mono = gpio_now(CLOCK_MONOTONIC);
	int64_t real = gpio_now(CLOCK_REALTIME);

	return (real - (mono - mono_ns)) / NS_PER_MS;
}

/* Settle debounce_ms after the edge at edge_ns (monotonic). */
static int
contact_arm(struct gpio_contact *c, int64_t edge_ns)
{
	int64_t at = edge_ns + (int64_t)c->debounce_ms * NS_PER_MS;
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	if (at <= 0)
		at = 1;		/* zero would disarm it */
	its.it_value.tv_sec = (time_t)(at / NS_PER_S);
	its.it_value.tv_nsec = (long)(at % NS_PER_S);
	if (timerfd_settime(c->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return -errno;
	c->edge_ns = edge_ns;
	c->pending = true;
	return 0;
}

static void
contact_close(void *state)
{
	struct gpio_contact *c = state;

	if (c == NULL)
		return;
	if (c->epoll_fd >= 0)
		close(c->epoll_fd);
	if (c->timer_fd >= 0)
		close(c->timer_fd);
	/* libgpiod 1.6 frees the line with its chip: release it first. */
	if (c->line != NULL)
		gpiod_line_release(c->line);
	if (c->chip != NULL)
		gpiod_chip_close(c->chip);
	free(c);
}

static int
contact_watch(int epoll_fd, int fd)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.fd = fd;
	return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int
contact_open(const struct config *conf, const struct sensor_cfg *sc, void **state)
{
	struct gpio_contact *c;
	int flags, v, rc;

	(void)conf;
	if (sc->gpio.chip == NULL || *sc->gpio.chip == '\0' || sc->gpio.line < 0 ||
	    sc->gpio.debounce_ms < 0 || sc->gpio.debounce_ms > GPIO_DEBOUNCE_MAX)
		return -EINVAL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	c->line_fd = c->timer_fd = c->epoll_fd = -1;
	c->debounce_ms = sc->gpio.debounce_ms;

	if ((rc = gpio_lookup(sc->gpio.chip, sc->gpio.line, &c->chip, &c->line)) < 0)
		goto err;
	flags = sc->gpio.active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
	/* The pull resistor: a reed switch to GND needs a pull-up (the kernel >= 5.5 sets it). */
	if (sc->gpio.bias == GPIO_BIAS_DISABLE)
		flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE;
	else if (sc->gpio.bias == GPIO_BIAS_PULL_UP)
		flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP;
	else if (sc->gpio.bias == GPIO_BIAS_PULL_DOWN)
		flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN;
	errno = 0;
	if (gpiod_line_request_both_edges_events_flags(c->line, GPIO_CONSUMER, flags) < 0) {
		rc = gpio_err();
		c->line = NULL;		/* not ours to release */
		goto err;
	}
	errno = 0;
	if ((c->line_fd = gpiod_line_event_get_fd(c->line)) < 0) {
		rc = gpio_err();
		goto err;
	}
	/*
	 * libgpiod 1.6 reads events with a plain read(): on an empty queue
	 * that waits.  events() only reads when poll() says there is
	 * something; non-blocking is the second guard.
	 */
	if ((v = fcntl(c->line_fd, F_GETFL)) < 0 ||
	    fcntl(c->line_fd, F_SETFL, v | O_NONBLOCK) < 0) {
		rc = -errno;
		goto err;
	}
	/* Requested before read: an edge in between is queued, not lost. */
	errno = 0;
	if ((v = gpiod_line_get_value(c->line)) < 0) {
		rc = gpio_err();
		goto err;
	}
	c->settled = v != 0;
	if ((c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0 ||
	    (c->epoll_fd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		rc = -errno;
		goto err;
	}
	if ((rc = contact_watch(c->epoll_fd, c->line_fd)) < 0 ||
	    (rc = contact_watch(c->epoll_fd, c->timer_fd)) < 0)
		goto err;
	*state = c;
	return 0;

err:
	contact_close(c);
	return rc;
}

static int
contact_read(void *state, const struct sensor_clock *clk, struct reading *out, size_t max)
{
	struct gpio_contact *c = state;
	int v, rc;

	(void)clk;
	if (max < 1)
		return -ENOBUFS;
	errno = 0;
	if ((v = gpiod_line_get_value(c->line)) < 0)
		return gpio_err();
	/* A change with no edge seen (or not yet drained): debounce it from now. */
	if ((v != 0) != c->settled && !c->pending &&
	    (rc = contact_arm(c, gpio_now(CLOCK_MONOTONIC))) < 0)
		return rc;
	out[0] = (struct reading){ Q_DOOR, c->settled };
	return 1;
}

static int
contact_event_fd(void *state)
{
	struct gpio_contact *c = state;

	return c->epoll_fd;
}

/* Whether the line has edges queued: 1, 0, or -errno. */
static int
contact_edges_queued(struct gpio_contact *c)
{
	struct pollfd pfd = { .fd = c->line_fd, .events = POLLIN };
	int n;

	while ((n = poll(&pfd, 1, 0)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	if (pfd.revents & POLLIN)
		return 1;
	return -ENODEV;		/* POLLERR, POLLHUP: the chip went away */
}

/* One edge: with no debounce, an event when it changes the settled state. */
static int
contact_edge(struct gpio_contact *c, const struct gpiod_line_event *e, struct sensor_event *out)
{
	int v = e->event_type == GPIOD_LINE_EVENT_RISING_EDGE;
	int64_t t = contact_edge_time(&e->ts);

	c->edge_ns = t;
	if (c->debounce_ms > 0 || v == c->settled)
		return 0;
	c->settled = v;
	out->r = (struct reading){ Q_DOOR, v };
	out->wall_ms = contact_wall_ms(t);
	return 1;
}

/* The timer fired: the line has been quiet for debounce_ms. */
static int
contact_settle(struct gpio_contact *c, struct sensor_event *out)
{
	uint64_t expirations;
	ssize_t n;
	int v;

	while ((n = read(c->timer_fd, &expirations, sizeof(expirations))) < 0 && errno == EINTR)
		;
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n < 0)
		return -errno;
	c->pending = false;
	errno = 0;
	if ((v = gpiod_line_get_value(c->line)) < 0)
		return gpio_err();
	if ((v != 0) == c->settled)
		return 0;	/* bounced back */
	c->settled = v != 0;
	out->r = (struct reading){ Q_DOOR, c->settled };
	out->wall_ms = contact_wall_ms(c->edge_ns);
	return 1;
}

static int
contact_events(void *state, struct sensor_event *out, size_t max)
{
	struct gpio_contact *c = state;
	struct gpiod_line_event ev[GPIO_EVENT_BATCH];
	bool edges = false;
	size_t n = 0;
	int rc, got;

	if (max < 1)
		return -ENOBUFS;
	for (int batch = 0; batch < GPIO_EVENT_BATCHES && n < max; batch++) {
		unsigned int want = GPIO_EVENT_BATCH;

		if ((rc = contact_edges_queued(c)) < 0)
			return rc;
		if (rc == 0)
			break;
		/* With no debounce each edge may be an event: read no more than fit. */
		if (c->debounce_ms == 0 && max - n < want)
			want = (unsigned int)(max - n);
		errno = 0;
		if ((got = gpiod_line_event_read_multiple(c->line, ev, want)) < 0) {
			if (errno == EAGAIN)
				break;
			return gpio_err();
		}
		for (int i = 0; i < got; i++)
			n += (size_t)contact_edge(c, &ev[i], &out[n]);
		edges = edges || got > 0;
	}
	if (edges && c->debounce_ms > 0 && (rc = contact_arm(c, c->edge_ns)) < 0)
		return rc;
	/* Armed by this call or earlier (or by read() with no debounce). */
	if (c->pending && n < max) {
		if ((rc = contact_settle(c, &out[n])) < 0)
			return rc;
		n += (size_t)rc;
	}
	return (int)n;
}

/*
 * coldgatectl sensors --scan: the chips under /dev, and a door contact on
 * the first one as an example (which line a contact is on, no scan can
 * tell).  A missing /dev/gpiochipN is silent; one that will not open says
 * why.
 */
static int
contact_scan(const struct config *conf, FILE *out)
{
	char first[64] = "", label[64] = "";
	int found = 0;

	(void)conf;
	for (unsigned int i = 0; i < GPIO_SCAN_CHIPS; i++) {
		struct gpiod_chip *chip;
		const char *name, *lab;

		errno = 0;
		if ((chip = gpiod_chip_open_by_number(i)) == NULL) {
			if (errno != ENOENT && errno != 0)
				fprintf(out, "# /dev/gpiochip%u: %s\n", i, strerror(errno));
			continue;
		}
		name = gpiod_chip_name(chip);
		lab = gpiod_chip_label(chip);
		fprintf(out, "# %s: label \"%s\", %u lines\n", name ? name : "?",
		    lab ? lab : "", gpiod_chip_num_lines(chip));
		if (found++ == 0) {
			snprintf(first, sizeof(first), "gpiochip%u", i);
			snprintf(label, sizeof(label), "%s", lab ? lab : "");
		}
		gpiod_chip_close(chip);
	}
	if (found == 0) {
		fprintf(out, "# no GPIO chips under /dev\n");
		return 0;
	}
	fprintf(out,
	    "# A door contact on %s (set line to the one it is wired to;\n"
	    "# active_low = false when the line is high with the door open, as with\n"
	    "# a reed switch to GND and a pull-up; true when it is low).  chip may\n"
	    "# also be the label, \"%s\", which survives a renumbering of the chips.\n"
	    "# { id = \"door-1\"; zone = \"ZONE\"; driver = \"gpio-contact\"; chip = \"%s\";"
	    " line = 17; active_low = false; debounce_ms = 50; },\n",
	    first, label, first);
	return found;
}

static void
output_close(void *state)
{
	struct gpio_output *o = state;

	if (o == NULL)
		return;
	if (o->line != NULL) {
		if (gpiod_line_set_value(o->line, 0) < 0)
			log_warn("output %s: cannot turn it off before release", o->id);
		gpiod_line_release(o->line);
	}
	if (o->chip != NULL)
		gpiod_chip_close(o->chip);
	free(o);
}

static int
output_open(const struct config *conf, const struct output_cfg *oc, void **state)
{
	struct gpio_output *o;
	int flags, rc;

	(void)conf;
	if (oc->chip == NULL || *oc->chip == '\0' || oc->gpio_line < 0)
		return -EINVAL;
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return -ENOMEM;
	snprintf(o->id, sizeof(o->id), "%s", oc->id);
	if ((rc = gpio_lookup(oc->chip, oc->gpio_line, &o->chip, &o->line)) < 0)
		goto err;
	/* Off from the moment it is ours: the default value is logical 0. */
	flags = oc->active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
	errno = 0;
	if (gpiod_line_request_output_flags(o->line, GPIO_CONSUMER, flags, 0) < 0) {
		rc = gpio_err();
		o->line = NULL;		/* not ours to set or release */
		goto err;
	}
	*state = o;
	return 0;

err:
	output_close(o);
	return rc;
}

static int
output_set(void *state, bool on)
{
	struct gpio_output *o = state;

	errno = 0;
	return gpiod_line_set_value(o->line, on ? 1 : 0) < 0 ? gpio_err() : 0;
}

/*
 * Configuration of a door contact: its chip and line, which the driver
 * cannot do without, the level that means open, the debounce and the bias.
 */
static const char *const contact_biases[] = { "as-is", "disable", "pull-up", "pull-down", NULL };
static const int contact_bias_codes[] = {
	GPIO_BIAS_AS_IS, GPIO_BIAS_DISABLE, GPIO_BIAS_PULL_UP, GPIO_BIAS_PULL_DOWN
};

#define CONTACT_KEY(member) CFG_FIELD(struct sensor_cfg, gpio.member)
static const struct cfg_key contact_keys[] = {
	{ "chip", CFG_STRING, CONTACT_KEY(chip), .required = true },
	{ "line", CFG_INT, CONTACT_KEY(line), .min = 0, .max = 65535, .def = -1, .required = true },
	{ "active_low", CFG_BOOL, CONTACT_KEY(active_low) },
	{ "debounce_ms", CFG_INT, CONTACT_KEY(debounce_ms), .min = 0, .max = GPIO_DEBOUNCE_MAX,
	    .def = 50 },
	{ "bias", CFG_ENUM, CONTACT_KEY(bias), .def = GPIO_BIAS_AS_IS, .names = contact_biases,
	    .codes = contact_bias_codes },
	{ .name = NULL },
};
#undef CONTACT_KEY

const struct sensor_driver gpio_contact_driver = {
	.name = "gpio-contact",
	.open = contact_open,
	.read = contact_read,
	.close = contact_close,
	.blocks = NULL,		/* ioctls on the main thread: they do not wait */
	.event_fd = contact_event_fd,
	.events = contact_events,
	.scan = contact_scan,
	.kind = SENSOR_GPIO,
	.keys = contact_keys,
};

/*
 * Configuration of an output: its chip and line, which the driver cannot
 * do without, and the level that means on.
 */
#define OUTPUT_KEY(member) CFG_FIELD(struct output_cfg, member)
static const struct cfg_key output_keys[] = {
	{ "chip", CFG_STRING, OUTPUT_KEY(chip), .required = true },
	{ "line", CFG_INT, OUTPUT_KEY(gpio_line), .min = 0, .max = 65535, .def = -1,
	    .required = true },
	{ "active_low", CFG_BOOL, OUTPUT_KEY(active_low) },
	{ .name = NULL },
};
#undef OUTPUT_KEY

const struct output_driver gpio_output_driver = {
	.name = "gpio-output",
	.open = output_open,
	.set = output_set,
	.close = output_close,
	.keys = output_keys,
};
