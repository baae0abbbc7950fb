/*
 * gpio-contact and gpio-output (sensors/gpio.c) against a fake libgpiod:
 * every gpiod call the driver makes is wrapped.  The fake chips have lines
 * whose level (the wire: 0 low, 1 high) and queued edges the tests set; a
 * line's event fd is a real pipe with one byte per queued edge, so the
 * driver's epoll set works as with the kernel's fd.  Like the kernel, the
 * fake applies active_low to values and to the kind of both-edge events.
 *
 * Debouncing runs on the real monotonic clock.  Edges carry timestamps the
 * tests choose (a little in the past), and the tests assert order, counts
 * and lower bounds of time (a timer never fires early), never how soon
 * something happened.
 */
// WRAP: gpiod_chip_open_lookup gpiod_chip_open_by_number gpiod_chip_close
// WRAP: gpiod_chip_name gpiod_chip_label gpiod_chip_num_lines gpiod_chip_get_line
// WRAP: gpiod_line_request_both_edges_events_flags gpiod_line_request_output_flags
// WRAP: gpiod_line_event_get_fd gpiod_line_event_read_multiple
// WRAP: gpiod_line_get_value gpiod_line_set_value gpiod_line_release
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gpiod.h>

#include "config.h"
#include "output.h"
#include "sensor.h"

extern const struct sensor_driver gpio_contact_driver;
extern const struct output_driver gpio_output_driver;

#define FAKE_CHIPS	3
#define FAKE_LINES	8
#define FAKE_QUEUE	64
#define MS		INT64_C(1000000)

/* The fake's own definitions of libgpiod's opaque types. */
struct gpiod_line {
	unsigned int	 offset;
	int		 phys;		/* the wire */
	bool		 requested, events, output, active_low, busy;
	char		 consumer[32];
	int		 flags;
	int		 default_val;	/* output: as passed to the request */
	int		 value;		/* output: the logical value last set */
	int		 pipe[2];
	struct gpiod_line_event queue[FAKE_QUEUE];
	size_t		 nqueue;
	int		 get_errno, set_errno, read_errno;
};

struct gpiod_chip {
	unsigned int	 num;
	char		 name[16], label[16];
	struct gpiod_line lines[FAKE_LINES];
};

static struct {
	struct gpiod_chip chips[FAKE_CHIPS];
	bool		 present[FAKE_CHIPS];
	int		 open_errno[FAKE_CHIPS];	/* present but will not open */
	int		 lookup_errno;			/* every lookup fails so */
	char		 lookup_arg[64];
	int		 opens, closes, requests, releases;
	int		 empty_reads;	/* reads of an empty queue: would block */
	char		 trace[512];	/* output: "req0 set1 set0 release close" */
} fake;

struct gpiod_chip *__wrap_gpiod_chip_open_lookup(const char *);
struct gpiod_chip *__wrap_gpiod_chip_open_by_number(unsigned int);
void __wrap_gpiod_chip_close(struct gpiod_chip *);
const char *__wrap_gpiod_chip_name(struct gpiod_chip *);
const char *__wrap_gpiod_chip_label(struct gpiod_chip *);
unsigned int __wrap_gpiod_chip_num_lines(struct gpiod_chip *);
struct gpiod_line *__wrap_gpiod_chip_get_line(struct gpiod_chip *, unsigned int);
int __wrap_gpiod_line_request_both_edges_events_flags(struct gpiod_line *, const char *, int);
int __wrap_gpiod_line_request_output_flags(struct gpiod_line *, const char *, int, int);
int __wrap_gpiod_line_event_get_fd(struct gpiod_line *);
int __wrap_gpiod_line_event_read_multiple(struct gpiod_line *, struct gpiod_line_event *,
    unsigned int);
int __wrap_gpiod_line_get_value(struct gpiod_line *);
int __wrap_gpiod_line_set_value(struct gpiod_line *, int);
void __wrap_gpiod_line_release(struct gpiod_line *);

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
trace(const char *fmt, ...)
{
	size_t len = strlen(fake.trace);
	va_list ap;

	if (len > 0 && len + 1 < sizeof(fake.trace))
		fake.trace[len++] = ' ';
	va_start(ap, fmt);
	vsnprintf(fake.trace + len, sizeof(fake.trace) - len, fmt, ap);
	va_end(ap);
}

static struct gpiod_chip *
fake_open(unsigned int num)
{
	if (num >= FAKE_CHIPS || !fake.present[num]) {
		errno = ENOENT;
		return NULL;
	}
	if (fake.open_errno[num] != 0) {
		errno = fake.open_errno[num];
		return NULL;
	}
	fake.opens++;
	return &fake.chips[num];
}

struct gpiod_chip *
__wrap_gpiod_chip_open_lookup(const char *descr)
{
	const char *p = descr;
	char *end;
	unsigned long num;

	snprintf(fake.lookup_arg, sizeof(fake.lookup_arg), "%s", descr);
	if (fake.lookup_errno != 0) {
		errno = fake.lookup_errno;
		return NULL;
	}
	if (strncmp(p, "/dev/", 5) == 0)
		p += 5;
	if (strncmp(p, "gpiochip", 8) == 0)
		p += 8;
	num = strtoul(p, &end, 10);
	if (end == p || *end != '\0') {
		errno = ENOENT;
		return NULL;
	}
	return fake_open((unsigned int)num);
}

struct gpiod_chip *
__wrap_gpiod_chip_open_by_number(unsigned int num)
{
	return fake_open(num);
}

void
__wrap_gpiod_chip_close(struct gpiod_chip *chip)
{
	assert_non_null(chip);
	fake.closes++;
	trace("close");
}

const char *
__wrap_gpiod_chip_name(struct gpiod_chip *chip)
{
	return chip->name;
}

const char *
__wrap_gpiod_chip_label(struct gpiod_chip *chip)
{
	return chip->label;
}

unsigned int
__wrap_gpiod_chip_num_lines(struct gpiod_chip *chip)
{
	(void)chip;
	return FAKE_LINES;
}

struct gpiod_line *
__wrap_gpiod_chip_get_line(struct gpiod_chip *chip, unsigned int offset)
{
	if (offset >= FAKE_LINES) {
		errno = EINVAL;
		return NULL;
	}
	return &chip->lines[offset];
}

static int
fake_request(struct gpiod_line *line, const char *consumer, int flags)
{
	if (line->busy || line->requested) {
		errno = EBUSY;
		return -1;
	}
	line->requested = true;
	line->flags = flags;
	line->active_low = (flags & GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) != 0;
	snprintf(line->consumer, sizeof(line->consumer), "%s", consumer);
	fake.requests++;
	return 0;
}

int
__wrap_gpiod_line_request_both_edges_events_flags(struct gpiod_line *line,
    const char *consumer, int flags)
{
	if (fake_request(line, consumer, flags) < 0)
		return -1;
	line->events = true;
	assert_int_equal(pipe2(line->pipe, O_CLOEXEC), 0);	/* blocking, as the kernel's */
	return 0;
}

int
__wrap_gpiod_line_request_output_flags(struct gpiod_line *line, const char *consumer,
    int flags, int default_val)
{
	if (fake_request(line, consumer, flags) < 0)
		return -1;
	line->output = true;
	line->default_val = default_val;
	line->value = default_val != 0;
	line->phys = line->value ^ line->active_low;
	trace("req%d", default_val);
	return 0;
}

int
__wrap_gpiod_line_event_get_fd(struct gpiod_line *line)
{
	if (!line->events) {
		errno = EPERM;
		return -1;
	}
	return line->pipe[0];
}

int
__wrap_gpiod_line_event_read_multiple(struct gpiod_line *line, struct gpiod_line_event *ev,
    unsigned int num)
{
	char buf[FAKE_QUEUE];
	size_t n;

	assert_true(line->events);
	if (line->read_errno != 0) {
		errno = line->read_errno;
		return -1;
	}
	if (line->nqueue == 0) {
		fake.empty_reads++;	/* libgpiod's read() would wait here */
		errno = EAGAIN;
		return -1;
	}
	assert_true(num >= 1 && num <= 16);	/* libgpiod reads at most 16 */
	n = line->nqueue < num ? line->nqueue : num;
	memcpy(ev, line->queue, n * sizeof(*ev));
	memmove(line->queue, line->queue + n, (line->nqueue - n) * sizeof(*ev));
	line->nqueue -= n;
	assert_int_equal(read(line->pipe[0], buf, n), (ssize_t)n);
	return (int)n;
}

int
__wrap_gpiod_line_get_value(struct gpiod_line *line)
{
	assert_true(line->requested);
	if (line->get_errno != 0) {
		errno = line->get_errno;
		return -1;
	}
	return line->output ? line->value : line->phys ^ line->active_low;
}

int
__wrap_gpiod_line_set_value(struct gpiod_line *line, int value)
{
	assert_true(line->requested && line->output);
	if (line->set_errno != 0) {
		trace("set-fail");
		errno = line->set_errno;
		return -1;
	}
	line->value = value != 0;
	line->phys = line->value ^ line->active_low;
	trace("set%d", value);
	return 0;
}

void
__wrap_gpiod_line_release(struct gpiod_line *line)
{
	assert_true(line->requested);
	if (line->events) {
		close(line->pipe[0]);
		close(line->pipe[1]);
	}
	line->requested = line->events = line->output = false;
	line->nqueue = 0;
	fake.releases++;
	trace("release");
}

static int64_t
now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * The wire goes to PHYS at TS (ns on the monotonic clock, or on the
 * realtime clock as kernels before 5.7 stamp): the level changes and an
 * edge is queued, of the kind the kernel reports for a both-edge request
 * (rising = became logically active).
 */
static void
edge(struct gpiod_line *l, int phys, int64_t ts)
{
	struct gpiod_line_event *e;

	assert_true(l->events && l->nqueue < FAKE_QUEUE);
	l->phys = phys;
	e = &l->queue[l->nqueue++];
	e->ts.tv_sec = (time_t)(ts / 1000000000);
	e->ts.tv_nsec = (long)(ts % 1000000000);
	e->event_type = (phys ^ l->active_low) ? GPIOD_LINE_EVENT_RISING_EDGE :
	    GPIOD_LINE_EVENT_FALLING_EDGE;
	assert_int_equal(write(l->pipe[1], "e", 1), 1);
}

static int
setup(void **st)
{
	(void)st;
	memset(&fake, 0, sizeof(fake));
	for (unsigned int i = 0; i < FAKE_CHIPS; i++) {
		fake.chips[i].num = i;
		snprintf(fake.chips[i].name, sizeof(fake.chips[i].name), "gpiochip%u", i);
		snprintf(fake.chips[i].label, sizeof(fake.chips[i].label), "fake-%u", i);
		for (unsigned int j = 0; j < FAKE_LINES; j++)
			fake.chips[i].lines[j].offset = j;
	}
	fake.present[0] = true;
	return 0;
}

/* Every test: nothing left open, and never a read that would have waited. */
static int
teardown(void **st)
{
	(void)st;
	assert_int_equal(fake.opens, fake.closes);
	assert_int_equal(fake.requests, fake.releases);
	assert_int_equal(fake.empty_reads, 0);
	return 0;
}

static struct gpiod_line *
line_of(unsigned int chip, unsigned int offset)
{
	return &fake.chips[chip].lines[offset];
}

/* The bias contact_open() asks for. */
static enum gpio_bias contact_bias = GPIO_BIAS_AS_IS;

static int
contact_open(const char *chip, int line, bool active_low, int debounce_ms, void **state)
{
	struct config conf;
	struct sensor_cfg sc;

	memset(&conf, 0, sizeof(conf));
	memset(&sc, 0, sizeof(sc));
	sc.id = "door";
	sc.driver = "gpio-contact";
	sc.kind = SENSOR_GPIO;
	sc.gpio.chip = chip;
	sc.gpio.line = line;
	sc.gpio.active_low = active_low;
	sc.gpio.debounce_ms = debounce_ms;
	sc.gpio.bias = contact_bias;
	*state = NULL;
	return gpio_contact_driver.open(&conf, &sc, state);
}

static void *
contact(int line, bool active_low, int debounce_ms)
{
	void *state;

	assert_int_equal(contact_open("gpiochip0", line, active_low, debounce_ms, &state), 0);
	assert_non_null(state);
	return state;
}

/* The door as read() reports it; asserts the read succeeds. */
static int
door(void *state)
{
	struct sensor_clock clk = { 0, 0 };
	struct reading r[SENSOR_MAX_READINGS];

	assert_int_equal(gpio_contact_driver.read(state, &clk, r, SENSOR_MAX_READINGS), 1);
	assert_int_equal(r[0].q, Q_DOOR);
	assert_true(r[0].value == 0 || r[0].value == 1);
	return (int)r[0].value;
}

/* Whether the event fd becomes readable within ms. */
static bool
readable(void *state, int ms)
{
	struct pollfd pfd = { .fd = gpio_contact_driver.event_fd(state), .events = POLLIN };
	int n;

	assert_true(pfd.fd >= 0);
	while ((n = poll(&pfd, 1, ms)) < 0 && errno == EINTR)
		;
	assert_true(n >= 0);
	return n > 0;
}

static int
events(void *state, struct sensor_event *ev, size_t max)
{
	for (size_t i = 0; i < max; i++)
		ev[i] = (struct sensor_event){ { (enum quantity)-1, -999 }, -1 };
	return gpio_contact_driver.events(state, ev, max);
}

static void
contact_bad_config(void **st)
{
	void *state = NULL;

	(void)st;
	assert_int_equal(contact_open(NULL, 17, false, 50, &state), -EINVAL);
	assert_int_equal(contact_open("", 17, false, 50, &state), -EINVAL);
	assert_int_equal(contact_open("gpiochip0", -1, false, 50, &state), -EINVAL);
	assert_int_equal(contact_open("gpiochip0", 3, false, -1, &state), -EINVAL);
	assert_int_equal(contact_open("gpiochip0", 3, false, 10001, &state), -EINVAL);
	assert_null(state);
	assert_int_equal(fake.opens, 0);	/* refused before touching the chip */
	gpio_contact_driver.close(NULL);
	/* The limits themselves are good. */
	gpio_contact_driver.close(contact(3, false, 0));
	gpio_contact_driver.close(contact(3, false, 10000));
}

static void
contact_open_errors(void **st)
{
	void *state = NULL;

	(void)st;
	assert_int_equal(contact_open("gpiochip7", 3, false, 50, &state), -ENOENT);
	fake.lookup_errno = ENODEV;
	assert_int_equal(contact_open("gpiochip0", 3, false, 50, &state), -ENODEV);
	fake.lookup_errno = 0;
	assert_int_equal(contact_open("gpiochip0", FAKE_LINES, false, 50, &state), -EINVAL);
	line_of(0, 3)->busy = true;
	assert_int_equal(contact_open("gpiochip0", 3, false, 50, &state), -EBUSY);
	line_of(0, 3)->busy = false;
	line_of(0, 4)->get_errno = EIO;
	assert_int_equal(contact_open("gpiochip0", 4, false, 50, &state), -EIO);
	assert_null(state);
	assert_true(fake.opens > 0);	/* the teardown checks each was closed */
}

/* The chip string goes to libgpiod's lookup as it is: number, name, path. */
static void
contact_chip_names(void **st)
{
	static const char *const names[] = { "0", "gpiochip0", "/dev/gpiochip0" };

	(void)st;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		void *state;

		assert_int_equal(contact_open(names[i], 2, false, 50, &state), 0);
		assert_string_equal(fake.lookup_arg, names[i]);
		gpio_contact_driver.close(state);
	}
}

static void
contact_request_flags(void **st)
{
	struct gpiod_line *l = line_of(0, 5);
	void *state;

	(void)st;
	state = contact(5, false, 50);
	assert_true(l->events);
	assert_string_equal(l->consumer, "coldgate");
	assert_int_equal(l->flags, 0);
	gpio_contact_driver.close(state);

	state = contact(5, true, 50);
	assert_int_equal(l->flags, GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW);
	gpio_contact_driver.close(state);

	/* bias: the kernel's pull resistor for a bare reed switch. */
	contact_bias = GPIO_BIAS_PULL_UP;
	state = contact(5, true, 50);
	assert_int_equal(l->flags, GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW |
	    GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP);
	gpio_contact_driver.close(state);
	contact_bias = GPIO_BIAS_PULL_DOWN;
	state = contact(5, false, 50);
	assert_int_equal(l->flags, GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN);
	gpio_contact_driver.close(state);
	contact_bias = GPIO_BIAS_DISABLE;
	state = contact(5, false, 50);
	assert_int_equal(l->flags, GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE);
	gpio_contact_driver.close(state);
	contact_bias = GPIO_BIAS_AS_IS;
}

/* The usual wiring (high = open) and the other (active_low: low = open). */
static void
contact_door_value(void **st)
{
	struct gpiod_line *l = line_of(0, 6);
	void *state;

	(void)st;
	l->phys = 1;
	state = contact(6, false, 50);
	assert_int_equal(door(state), 1);
	gpio_contact_driver.close(state);

	l->phys = 0;
	state = contact(6, false, 50);
	assert_int_equal(door(state), 0);
	gpio_contact_driver.close(state);

	l->phys = 0;
	state = contact(6, true, 50);
	assert_int_equal(door(state), 1);
	gpio_contact_driver.close(state);

	l->phys = 1;
	state = contact(6, true, 50);
	assert_int_equal(door(state), 0);
	gpio_contact_driver.close(state);
}

/* read() gives the settled state while an edge is being debounced. */
static void
contact_read_settled(void **st)
{
	struct gpiod_line *l = line_of(0, 1);
	struct sensor_event ev[4];
	void *state = contact(1, false, 200);

	(void)st;
	assert_int_equal(door(state), 0);
	edge(l, 1, now_ns(CLOCK_MONOTONIC));
	assert_int_equal(door(state), 0);	/* not drained yet */
	assert_true(readable(state, 0));
	assert_int_equal(events(state, ev, 4), 0);
	assert_int_equal(door(state), 0);	/* drained, not settled */
	assert_true(readable(state, 2000));
	assert_int_equal(events(state, ev, 4), 1);
	assert_true(ev[0].r.q == Q_DOOR && ev[0].r.value == 1);
	assert_int_equal(door(state), 1);
	gpio_contact_driver.close(state);
}

/*
 * A bouncing opening: five edges over 40 ms, ending high, debounce 50 ms.
 * Exactly one event, door = 1, no sooner than 50 ms after the LAST edge
 * (a timer from the first would fire 40 ms earlier), stamped with the last
 * edge's time.
 */
static void
contact_bounce_one_event(void **st)
{
	struct gpiod_line *l = line_of(0, 2);
	struct sensor_event ev[8];
	void *state = contact(2, false, 50);
	int64_t t0 = now_ns(CLOCK_MONOTONIC), last = t0 - 1 * MS;
	int64_t wall_last = now_ns(CLOCK_REALTIME) / MS - 1;
	int n, total = 0, calls = 0;

	(void)st;
	edge(l, 1, t0 - 40 * MS);
	edge(l, 0, t0 - 30 * MS);
	edge(l, 1, t0 - 20 * MS);
	edge(l, 0, t0 - 10 * MS);
	edge(l, 1, last);
	n = events(state, ev, 8);
	if (now_ns(CLOCK_MONOTONIC) < last + 45 * MS)	/* not descheduled meanwhile */
		assert_int_equal(n, 0);
	while (total == 0 && calls++ < 100) {
		assert_true(readable(state, 2000));
		n = events(state, ev, 8);
		assert_true(n >= 0);
		if (n > 0)
			assert_true(now_ns(CLOCK_MONOTONIC) >= last + 50 * MS);
		total += n;
	}
	assert_int_equal(total, 1);
	assert_true(ev[0].r.q == Q_DOOR && ev[0].r.value == 1);
	assert_true(ev[0].wall_ms >= wall_last - 3 && ev[0].wall_ms <= wall_last + 3);
	/* and nothing more */
	assert_false(readable(state, 100));
	assert_int_equal(events(state, ev, 8), 0);
	assert_int_equal(door(state), 1);
	gpio_contact_driver.close(state);
}

/* A burst that ends where it started is no event. */
static void
contact_bounce_back(void **st)
{
	struct gpiod_line *l = line_of(0, 2);
	struct sensor_event ev[8];
	void *state = contact(2, false, 30);
	int64_t t0 = now_ns(CLOCK_MONOTONIC);

	(void)st;
	edge(l, 1, t0 - 4 * MS);
	edge(l, 0, t0 - 3 * MS);
	edge(l, 1, t0 - 2 * MS);
	edge(l, 0, t0 - 1 * MS);
	assert_int_equal(events(state, ev, 8), 0);
	assert_true(readable(state, 2000));	/* the timer */
	assert_int_equal(events(state, ev, 8), 0);
	assert_false(readable(state, 100));
	assert_int_equal(door(state), 0);
	gpio_contact_driver.close(state);
}

/* Debounce 0: every edge that changes the state is an event, in order. */
static void
contact_no_debounce(void **st)
{
	struct gpiod_line *l = line_of(0, 0);
	struct sensor_event ev[8];
	void *state = contact(0, false, 0);
	int64_t t = now_ns(CLOCK_MONOTONIC);

	(void)st;
	edge(l, 1, t - 9 * MS);
	assert_true(readable(state, 0));
	assert_int_equal(events(state, ev, 8), 1);
	assert_true(ev[0].r.q == Q_DOOR && ev[0].r.value == 1);
	assert_int_equal(door(state), 1);

	edge(l, 0, t - 8 * MS);
	edge(l, 1, t - 4 * MS);
	edge(l, 1, t - 3 * MS);		/* no change: no event */
	assert_int_equal(events(state, ev, 8), 2);
	assert_true(ev[0].r.value == 0 && ev[1].r.value == 1);
	assert_true(ev[0].wall_ms < ev[1].wall_ms);

	/* More changes than room: none lost, the rest on the next call. */
	edge(l, 0, t - 2 * MS);
	edge(l, 1, t - 1 * MS);
	assert_int_equal(events(state, ev, 1), 1);
	assert_true(ev[0].r.value == 0);
	assert_true(readable(state, 0));
	assert_int_equal(events(state, ev, 1), 1);
	assert_true(ev[0].r.value == 1);
	assert_false(readable(state, 50));
	gpio_contact_driver.close(state);
}

/*
 * An event's wall_ms is its edge's kernel stamp on the realtime clock, for
 * a monotonic stamp (Linux >= 5.7) and a realtime one (older kernels).
 */
static void
contact_event_time(void **st)
{
	struct gpiod_line *l = line_of(0, 0);
	struct sensor_event ev[2];
	void *state = contact(0, false, 0);
	int64_t want;

	(void)st;
	want = now_ns(CLOCK_REALTIME) / MS - 200;
	edge(l, 1, now_ns(CLOCK_MONOTONIC) - 200 * MS);
	assert_int_equal(events(state, ev, 2), 1);
	assert_true(ev[0].wall_ms >= want - 3 && ev[0].wall_ms <= want + 3);

	want = now_ns(CLOCK_REALTIME) / MS - 300;
	edge(l, 0, now_ns(CLOCK_REALTIME) - 300 * MS);
	assert_int_equal(events(state, ev, 2), 1);
	assert_true(ev[0].r.value == 0);
	assert_true(ev[0].wall_ms >= want - 3 && ev[0].wall_ms <= want + 3);
	gpio_contact_driver.close(state);
}

/* Edges the kernel lost: read() finds the new level and debounces it. */
static void
contact_level_without_edge(void **st)
{
	struct gpiod_line *l = line_of(0, 7);
	struct sensor_event ev[2];
	void *state = contact(7, false, 30);
	int64_t before;

	(void)st;
	l->phys = 1;
	assert_false(readable(state, 50));
	before = now_ns(CLOCK_REALTIME) / MS;
	assert_int_equal(door(state), 0);	/* still the settled state */
	assert_true(readable(state, 2000));
	assert_int_equal(events(state, ev, 2), 1);
	assert_true(ev[0].r.value == 1);
	assert_true(ev[0].wall_ms >= before - 3);
	assert_int_equal(door(state), 1);
	gpio_contact_driver.close(state);
}

/*
 * The kernel's kind of the last edge is a sample of the line; when it
 * disagrees with the level after the quiet time, the level wins.
 */
static void
contact_level_decides(void **st)
{
	struct gpiod_line *l = line_of(0, 7);
	struct sensor_event ev[2];
	void *state = contact(7, false, 20);

	(void)st;
	edge(l, 1, now_ns(CLOCK_MONOTONIC));
	l->phys = 0;		/* the falling edge after it was dropped */
	assert_int_equal(events(state, ev, 2), 0);
	assert_true(readable(state, 2000));
	assert_int_equal(events(state, ev, 2), 0);
	assert_int_equal(door(state), 0);
	gpio_contact_driver.close(state);
}

static void
contact_errors(void **st)
{
	struct gpiod_line *l = line_of(0, 3);
	struct sensor_clock clk = { 0, 0 };
	struct reading r[2] = { { (enum quantity)-1, -999 }, { (enum quantity)-1, -999 } };
	struct sensor_event ev[2];
	void *state = contact(3, false, 50);

	(void)st;
	assert_int_equal(gpio_contact_driver.read(state, &clk, r, 0), -ENOBUFS);
	assert_int_equal(gpio_contact_driver.events(state, ev, 0), -ENOBUFS);
	l->get_errno = ENODEV;
	assert_int_equal(gpio_contact_driver.read(state, &clk, r, 2), -ENODEV);
	assert_true(r[0].value == -999);	/* a failed read yields no reading */
	l->get_errno = 0;
	edge(l, 1, now_ns(CLOCK_MONOTONIC));
	l->read_errno = EIO;
	assert_int_equal(events(state, ev, 2), -EIO);
	l->read_errno = 0;
	gpio_contact_driver.close(state);
}

/* close() releases the line, then closes the chip and the driver's fds. */
static void
contact_close_all(void **st)
{
	void *state = contact(4, false, 50);
	int fd = gpio_contact_driver.event_fd(state);

	(void)st;
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) >= 0);
	fake.trace[0] = '\0';
	gpio_contact_driver.close(state);
	assert_string_equal(fake.trace, "release close");
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	gpio_contact_driver.close(NULL);
}

static char *
scan(int *count)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	assert_non_null(out);
	*count = gpio_contact_driver.scan(NULL, out);
	fclose(out);
	for (char *p = text; *p != '\0'; p = strchr(p, '\n') + 1) {
		assert_true(*p == '#');		/* nothing is configuration */
		assert_non_null(strchr(p, '\n'));
	}
	return text;
}

static void
contact_scan_chips(void **st)
{
	char *text;
	int n;

	(void)st;
	fake.present[0] = fake.present[1] = fake.present[2] = true;
	fake.open_errno[1] = EACCES;
	text = scan(&n);
	assert_int_equal(n, 2);
	assert_non_null(strstr(text, "# gpiochip0: label \"fake-0\", 8 lines\n"));
	assert_non_null(strstr(text, "# /dev/gpiochip1: Permission denied\n"));
	assert_non_null(strstr(text, "# gpiochip2: label \"fake-2\", 8 lines\n"));
	assert_non_null(strstr(text, "driver = \"gpio-contact\"; chip = \"gpiochip0\"; line = "));
	assert_null(strstr(text, "chip = \"gpiochip2\";"));
	free(text);

	fake.present[0] = fake.present[1] = fake.present[2] = false;
	text = scan(&n);
	assert_int_equal(n, 0);
	assert_null(strstr(text, "driver ="));
	free(text);
}

static int
output_open(const char *chip, int line, bool active_low, void **state)
{
	struct config conf;
	struct output_cfg oc;
	char *chip_copy = NULL;	/* freed after open: the driver must not keep it */
	int rc;

	if (chip != NULL)
		assert_non_null(chip_copy = strdup(chip));
	memset(&conf, 0, sizeof(conf));
	memset(&oc, 0, sizeof(oc));
	snprintf(oc.id, sizeof(oc.id), "buzzer");
	oc.driver = "gpio-output";
	oc.chip = chip_copy;
	oc.gpio_line = line;
	oc.active_low = active_low;
	*state = NULL;
	rc = gpio_output_driver.open(&conf, &oc, state);
	free(chip_copy);
	return rc;
}

static void
output_open_off(void **st)
{
	struct gpiod_line *l = line_of(0, 5);
	void *state;

	(void)st;
	assert_int_equal(output_open("gpiochip0", 5, false, &state), 0);
	assert_true(l->output);
	assert_string_equal(l->consumer, "coldgate");
	assert_int_equal(l->flags, 0);
	assert_int_equal(l->default_val, 0);
	assert_int_equal(l->phys, 0);
	assert_string_equal(fake.trace, "req0");	/* no set() needed: off at request */
	gpio_output_driver.close(state);

	/* active_low: off (logical 0) is the high level. */
	fake.trace[0] = '\0';
	assert_int_equal(output_open("gpiochip0", 5, true, &state), 0);
	assert_int_equal(l->flags, GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW);
	assert_int_equal(l->default_val, 0);
	assert_int_equal(l->phys, 1);
	assert_int_equal(gpio_output_driver.set(state, true), 0);
	assert_int_equal(l->phys, 0);
	gpio_output_driver.close(state);
}

static void
output_open_errors(void **st)
{
	void *state = NULL;

	(void)st;
	assert_int_equal(output_open(NULL, 5, false, &state), -EINVAL);
	assert_int_equal(output_open("", 5, false, &state), -EINVAL);
	assert_int_equal(output_open("gpiochip0", -1, false, &state), -EINVAL);
	assert_int_equal(fake.opens, 0);
	assert_int_equal(output_open("gpiochip2", 5, false, &state), -ENOENT);
	assert_int_equal(output_open("gpiochip0", FAKE_LINES, false, &state), -EINVAL);
	line_of(0, 5)->busy = true;
	assert_int_equal(output_open("gpiochip0", 5, false, &state), -EBUSY);
	assert_null(state);
	assert_int_equal(fake.requests, 0);
	gpio_output_driver.close(NULL);
}

/* set() always writes, even the value it wrote last. */
static void
output_set_values(void **st)
{
	struct gpiod_line *l = line_of(0, 5);
	void *state;

	(void)st;
	assert_int_equal(output_open("gpiochip0", 5, false, &state), 0);
	assert_int_equal(gpio_output_driver.set(state, true), 0);
	assert_int_equal(l->value, 1);
	assert_int_equal(gpio_output_driver.set(state, true), 0);
	assert_int_equal(gpio_output_driver.set(state, false), 0);
	assert_int_equal(l->value, 0);
	assert_string_equal(fake.trace, "req0 set1 set1 set0");
	l->set_errno = EIO;
	assert_int_equal(gpio_output_driver.set(state, true), -EIO);
	l->set_errno = 0;
	gpio_output_driver.close(state);
}

/* close() turns it off, then releases the line, then closes the chip. */
static void
output_close_off(void **st)
{
	struct gpiod_line *l = line_of(0, 5);
	void *state;

	(void)st;
	assert_int_equal(output_open("gpiochip0", 5, false, &state), 0);
	assert_int_equal(gpio_output_driver.set(state, true), 0);
	fake.trace[0] = '\0';
	gpio_output_driver.close(state);
	assert_string_equal(fake.trace, "set0 release close");
	assert_int_equal(l->phys, 0);

	/* A failed off still lets go of everything. */
	assert_int_equal(output_open("gpiochip0", 5, false, &state), 0);
	l->set_errno = EIO;
	fake.trace[0] = '\0';
	gpio_output_driver.close(state);
	assert_string_equal(fake.trace, "set-fail release close");
	l->set_errno = 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(contact_bad_config, setup, teardown),
		cmocka_unit_test_setup_teardown(contact_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(contact_chip_names, setup, teardown),
		cmocka_unit_test_setup_teardown(contact_request_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(contact_door_value, setup, teardown),
		cmocka_unit_test_setup_teardown(contact_read_settled, setup, teardown),
		cmocka_unit_test_setup_teardown(contact_bounce_one_event, setup, teardown),
		cmocka_unit_test_setup_teardown(contact_bounce_back, setup, teardown),
		cmocka_unit_test_setup_teardown(contact_no_debounce, setup, teardown),
		cmocka_unit_test_setup_teardown(contact_event_time, setup, teardown),
		cmocka_unit_test_setup_teardown(contact_level_without_edge, setup, teardown),
		cmocka_unit_test_setup_teardown(contact_level_decides, setup, teardown),
		cmocka_unit_test_setup_teardown(contact_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(contact_close_all, setup, teardown),
		cmocka_unit_test_setup_teardown(contact_scan_chips, setup, teardown),
		cmocka_unit_test_setup_teardown(output_open_off, setup, teardown),
		cmocka_unit_test_setup_teardown(output_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(output_set_values, setup, teardown),
		cmocka_unit_test_setup_teardown(output_close_off, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
