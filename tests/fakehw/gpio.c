/*
 * Fake GPIO chips for the real daemon in integration tests: the libgpiod
 * calls sensors/gpio.c makes, answered from a directory of files instead of
 * /dev/gpiochipN (the layout is in tests/fakehw/README.md, "GPIO").
 *
 * Levels in the files are the wire's (0 low, 1 high); like the kernel, the
 * fake applies a request's active_low to the values it returns and takes,
 * and to the kind of both-edge events (rising = became logically active).
 * An edge read from L.events also writes L, as a real edge is a change of
 * level; it is stamped with CLOCK_MONOTONIC when the daemon reads it.
 *
 * The line's event fd is the FIFO's read end itself, so the daemon's epoll
 * set wakes when a test writes to it; the fake keeps a writer of its own
 * open so that a test closing its end is no hang-up.  Events are read from
 * the FIFO a byte at a time, so what the daemon has not asked for yet stays
 * in the FIFO and keeps it readable.
 *
 * Without COLDGATE_FAKEHW_GPIO every call goes to the real libgpiod.  One
 * thread (the daemon's main loop) makes all the calls, as with libgpiod.
 */
// WRAP: gpiod_chip_open_lookup gpiod_chip_open_by_number gpiod_chip_close
// WRAP: gpiod_chip_name gpiod_chip_label gpiod_chip_num_lines gpiod_chip_get_line
// WRAP: gpiod_line_request_both_edges_events_flags gpiod_line_request_output_flags
// WRAP: gpiod_line_event_get_fd gpiod_line_event_read_multiple
// WRAP: gpiod_line_get_value gpiod_line_set_value gpiod_line_release
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gpiod.h>

#include "fakehw/fake_gpio.h"

/* The real libgpiod, for runs without the environment variable. */
struct gpiod_chip *__real_gpiod_chip_open_lookup(const char *);
struct gpiod_chip *__real_gpiod_chip_open_by_number(unsigned int);
void __real_gpiod_chip_close(struct gpiod_chip *);
const char *__real_gpiod_chip_name(struct gpiod_chip *);
const char *__real_gpiod_chip_label(struct gpiod_chip *);
unsigned int __real_gpiod_chip_num_lines(struct gpiod_chip *);
struct gpiod_line *__real_gpiod_chip_get_line(struct gpiod_chip *, unsigned int);
int __real_gpiod_line_request_both_edges_events_flags(struct gpiod_line *, const char *, int);
int __real_gpiod_line_request_output_flags(struct gpiod_line *, const char *, int, int);
int __real_gpiod_line_event_get_fd(struct gpiod_line *);
int __real_gpiod_line_event_read_multiple(struct gpiod_line *, struct gpiod_line_event *,
    unsigned int);
int __real_gpiod_line_get_value(struct gpiod_line *);
int __real_gpiod_line_set_value(struct gpiod_line *, int);
void __real_gpiod_line_release(struct gpiod_line *);

enum fake_state { FAKE_FREE, FAKE_EVENTS, FAKE_OUTPUT };

/* The fake's own definitions of libgpiod's opaque types. */
struct gpiod_line {
	struct gpiod_chip	*chip;
	unsigned int		 offset;
	enum fake_state		 state;
	bool			 active_low;
	int			 value;		/* output: the logical value set */
	int			 rfd, wfd;	/* the FIFO: ours to read, our writer */
	char			 buf[64];	/* a partial line from the FIFO */
	size_t			 len;
};

struct gpiod_chip {
	char			*dir;		/* {DIR}/gpiochipN */
	char			 name[32];
	char			 label[64];
	struct gpiod_line	*lines[FAKE_GPIO_LINES];
};

/* The directory of fake chips, or NULL: use the real libgpiod. */
static const char *
fake_root(void)
{
	static const char *root;
	static bool looked;

	if (!looked) {
		root = getenv(FAKE_GPIO_ENV);
		if (root != NULL && *root == '\0')
			root = NULL;
		looked = true;
	}
	return root;
}

/* {chip dir}/{offset}{suffix} */
static void
fake_path(const struct gpiod_line *l, const char *suffix, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%u%s", l->chip->dir, l->offset, suffix);
}

static bool
fake_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* The chip's directory is gone: the device was unplugged. */
static bool
fake_gone(const struct gpiod_line *l)
{
	struct stat st;

	if (stat(l->chip->dir, &st) == 0 && S_ISDIR(st.st_mode))
		return false;
	errno = ENODEV;
	return true;
}

/* A level file: "1..." is high; anything else, or no file, is low. */
static int
fake_read_level(const char *path)
{
	char c = '0';
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	if (read(fd, &c, 1) != 1)
		c = '0';
	close(fd);
	return c == '1';
}

/* Write "0\n" or "1\n" through a temp file and rename: never half-written. */
static int
fake_write_level(const char *path, int level)
{
	char tmp[PATH_MAX];
	int fd, saved;

	snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return -1;
	if (write(fd, level ? "1\n" : "0\n", 2) != 2) {
		saved = errno ? errno : EIO;
		close(fd);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	return 0;
}

static struct gpiod_chip *
fake_chip_open(unsigned int num)
{
	struct gpiod_chip *chip;
	struct stat st;
	char path[PATH_MAX];
	int fd;
	ssize_t n;

	if ((chip = calloc(1, sizeof(*chip))) == NULL)
		return NULL;
	snprintf(chip->name, sizeof(chip->name), "gpiochip%u", num);
	if (asprintf(&chip->dir, "%s/%s", fake_root(), chip->name) < 0) {
		free(chip);
		errno = ENOMEM;
		return NULL;
	}
	if (stat(chip->dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		free(chip->dir);
		free(chip);
		errno = ENOENT;
		return NULL;
	}
	snprintf(chip->label, sizeof(chip->label), "fake-%s", chip->name);
	snprintf(path, sizeof(path), "%s/label", chip->dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		if ((n = read(fd, chip->label, sizeof(chip->label) - 1)) > 0) {
			chip->label[n] = '\0';
			chip->label[strcspn(chip->label, "\r\n")] = '\0';
		}
		close(fd);
	}
	return chip;
}

/* "N", "gpiochipN" or "/dev/gpiochipN"; no labels. */
struct gpiod_chip *
__wrap_gpiod_chip_open_lookup(const char *descr)
{
	const char *p = descr;
	char *end;
	unsigned long num;

	if (fake_root() == NULL)
		return __real_gpiod_chip_open_lookup(descr);
	if (strncmp(p, "/dev/", 5) == 0)
		p += 5;
	if (strncmp(p, "gpiochip", 8) == 0)
		p += 8;
	errno = 0;
	num = strtoul(p, &end, 10);
	if (*p < '0' || *p > '9' || *end != '\0' || errno != 0 || num > 9999) {
		errno = ENOENT;
		return NULL;
	}
	return fake_chip_open((unsigned int)num);
}

struct gpiod_chip *
__wrap_gpiod_chip_open_by_number(unsigned int num)
{
	if (fake_root() == NULL)
		return __real_gpiod_chip_open_by_number(num);
	return fake_chip_open(num);
}

const char *
__wrap_gpiod_chip_name(struct gpiod_chip *chip)
{
	if (fake_root() == NULL)
		return __real_gpiod_chip_name(chip);
	return chip->name;
}

const char *
__wrap_gpiod_chip_label(struct gpiod_chip *chip)
{
	if (fake_root() == NULL)
		return __real_gpiod_chip_label(chip);
	return chip->label;
}

unsigned int
__wrap_gpiod_chip_num_lines(struct gpiod_chip *chip)
{
	if (fake_root() == NULL)
		return __real_gpiod_chip_num_lines(chip);
	return FAKE_GPIO_LINES;
}

struct gpiod_line *
__wrap_gpiod_chip_get_line(struct gpiod_chip *chip, unsigned int offset)
{
	struct gpiod_line *l;

	if (fake_root() == NULL)
		return __real_gpiod_chip_get_line(chip, offset);
	if (offset >= FAKE_GPIO_LINES) {
		errno = EINVAL;
		return NULL;
	}
	if ((l = chip->lines[offset]) == NULL) {
		if ((l = calloc(1, sizeof(*l))) == NULL)
			return NULL;
		l->chip = chip;
		l->offset = offset;
		l->rfd = l->wfd = -1;
		chip->lines[offset] = l;
	}
	return l;
}

/* Taken by us, or by "another consumer" (a file L.busy). */
static int
fake_take(struct gpiod_line *l, int flags)
{
	char path[PATH_MAX];

	if (fake_gone(l))
		return -1;
	fake_path(l, ".busy", path, sizeof(path));
	if (l->state != FAKE_FREE || fake_exists(path)) {
		errno = EBUSY;
		return -1;
	}
	l->active_low = (flags & GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) != 0;
	return 0;
}

int
__wrap_gpiod_line_request_both_edges_events_flags(struct gpiod_line *l,
    const char *consumer, int flags)
{
	char path[PATH_MAX];
	struct stat st;
	int saved;

	if (fake_root() == NULL)
		return __real_gpiod_line_request_both_edges_events_flags(l, consumer, flags);
	if (fake_take(l, flags) < 0)
		return -1;
	fake_path(l, ".events", path, sizeof(path));
	if (lstat(path, &st) == 0 && !S_ISFIFO(st.st_mode))
		unlink(path);
	if (mkfifo(path, 0600) < 0 && errno != EEXIST)
		return -1;
	/* Read end first: a non-blocking writer needs a reader. */
	if ((l->rfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
		return -1;
	if ((l->wfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		saved = errno;
		close(l->rfd);
		l->rfd = -1;
		errno = saved;
		return -1;
	}
	l->len = 0;
	l->state = FAKE_EVENTS;
	return 0;
}

int
__wrap_gpiod_line_request_output_flags(struct gpiod_line *l, const char *consumer,
    int flags, int default_val)
{
	char path[PATH_MAX];

	if (fake_root() == NULL)
		return __real_gpiod_line_request_output_flags(l, consumer, flags, default_val);
	if (fake_take(l, flags) < 0)
		return -1;
	l->value = default_val != 0;
	fake_path(l, ".out", path, sizeof(path));
	if (fake_write_level(path, l->value ^ l->active_low) < 0)
		return -1;
	l->state = FAKE_OUTPUT;
	return 0;
}

int
__wrap_gpiod_line_event_get_fd(struct gpiod_line *l)
{
	if (fake_root() == NULL)
		return __real_gpiod_line_event_get_fd(l);
	if (l->state != FAKE_EVENTS) {
		errno = EPERM;
		return -1;
	}
	return l->rfd;
}

/* One line from the FIFO: 1 and *ev, or 0 (not an edge; said on stderr). */
static int
fake_edge(struct gpiod_line *l, struct gpiod_line_event *ev)
{
	char path[PATH_MAX];
	struct timespec now;
	int level;

	l->buf[l->len] = '\0';
	l->buf[strcspn(l->buf, " \t\r")] = '\0';
	if (strcmp(l->buf, "rising") == 0)
		level = 1;
	else if (strcmp(l->buf, "falling") == 0)
		level = 0;
	else {
		if (l->buf[0] != '\0')
			fprintf(stderr, "fakehw gpio: %s/%u.events: not an edge: \"%s\"\n",
			    l->chip->dir, l->offset, l->buf);
		return 0;
	}
	fake_path(l, "", path, sizeof(path));
	if (fake_write_level(path, level) < 0)
		fprintf(stderr, "fakehw gpio: %s: %s\n", path, strerror(errno));
	clock_gettime(CLOCK_MONOTONIC, &now);
	ev->ts = now;
	ev->event_type = (level ^ l->active_low) ? GPIOD_LINE_EVENT_RISING_EDGE :
	    GPIOD_LINE_EVENT_FALLING_EDGE;
	return 1;
}

int
__wrap_gpiod_line_event_read_multiple(struct gpiod_line *l, struct gpiod_line_event *events,
    unsigned int num_events)
{
	unsigned int n = 0;
	ssize_t r;
	char c;

	if (fake_root() == NULL)
		return __real_gpiod_line_event_read_multiple(l, events, num_events);
	if (l->state != FAKE_EVENTS) {
		errno = EPERM;
		return -1;
	}
	if (fake_gone(l))
		return -1;
	if (num_events > 16)	/* as libgpiod 1.6 */
		num_events = 16;
	while (n < num_events) {
		if ((r = read(l->rfd, &c, 1)) < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			break;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		if (c == '\n') {
			n += (unsigned int)fake_edge(l, &events[n]);
			l->len = 0;
		} else if (l->len + 1 < sizeof(l->buf)) {
			l->buf[l->len++] = c;
		}
	}
	if (n == 0) {
		errno = EAGAIN;		/* the real one would have waited */
		return -1;
	}
	return (int)n;
}

int
__wrap_gpiod_line_get_value(struct gpiod_line *l)
{
	char path[PATH_MAX];

	if (fake_root() == NULL)
		return __real_gpiod_line_get_value(l);
	if (fake_gone(l))
		return -1;
	if (l->state == FAKE_OUTPUT)
		return l->value;
	if (l->state != FAKE_EVENTS) {
		errno = EPERM;
		return -1;
	}
	fake_path(l, "", path, sizeof(path));
	return fake_read_level(path) ^ l->active_low;
}

int
__wrap_gpiod_line_set_value(struct gpiod_line *l, int value)
{
	char path[PATH_MAX];

	if (fake_root() == NULL)
		return __real_gpiod_line_set_value(l, value);
	if (fake_gone(l))
		return -1;
	if (l->state != FAKE_OUTPUT) {
		errno = EPERM;
		return -1;
	}
	fake_path(l, ".out", path, sizeof(path));
	if (fake_write_level(path, (value != 0) ^ l->active_low) < 0)
		return -1;
	l->value = value != 0;
	return 0;
}

static void
fake_release(struct gpiod_line *l)
{
	if (l->rfd >= 0)
		close(l->rfd);
	if (l->wfd >= 0)
		close(l->wfd);
	l->rfd = l->wfd = -1;
	l->len = 0;
	l->state = FAKE_FREE;
}

void
__wrap_gpiod_line_release(struct gpiod_line *l)
{
	if (fake_root() == NULL) {
		__real_gpiod_line_release(l);
		return;
	}
	fake_release(l);
}

/* As libgpiod 1.6: closing a chip releases and frees its lines. */
void
__wrap_gpiod_chip_close(struct gpiod_chip *chip)
{
	if (fake_root() == NULL) {
		__real_gpiod_chip_close(chip);
		return;
	}
	for (unsigned int i = 0; i < FAKE_GPIO_LINES; i++) {
		if (chip->lines[i] != NULL) {
			fake_release(chip->lines[i]);
			free(chip->lines[i]);
		}
	}
	free(chip->dir);
	free(chip);
}
