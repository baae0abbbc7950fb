/*
 * Fake I2C buses for the real daemon in integration tests: the open, close
 * and ioctl(I2C_RDWR) calls the I2C drivers (sensors/i2c.c) make on
 * /dev/i2c-N, answered by emulated SHT3x, SHT4x and SCD4x parts described
 * in files (the layout is in tests/fakehw/README.md, "I2C").
 *
 * With COLDGATE_FAKEHW_I2C naming a directory DIR, opening /dev/i2c-N
 * gives a real fd (on /dev/null) remembered as bus N if DIR/i2c-N is a
 * directory, and fails with ENOENT if not.  A message to address A on bus
 * N is served by the part DIR/i2c-N/0xAA (two lowercase hex digits) says
 * it is, re-read at every message; no file is no part: NACK, which an
 * I2C_RDWR reports as EREMOTEIO.  DIR/i2c-N gone under an open fd is an
 * unplugged adapter: ENODEV.
 *
 * The parts follow their command protocols as the datasheets describe
 * them, with their timing: a result read before the part's measurement
 * time is up is NACKed; an unknown command or a command of the wrong
 * length is NACKed.  Values are encoded into raw words exactly as the part
 * would (rounded to the nearest step, clamped to 0..65535) with correct
 * CRCs, except that "badcrc" in the file corrupts the CRC of the first
 * word of every answer.
 *
 * A part's state (the command it awaits a read for; the SCD4x's periodic
 * measurement) lives in this process and is lost when its file goes away
 * (unplugged: it comes back idle).  Everything else (other paths, other
 * fds, other ioctls on other fds) goes to the real libc, and so does
 * everything when COLDGATE_FAKEHW_I2C is not set.  The drivers run on
 * worker threads: one mutex guards the tables.
 */
// WRAP: open close ioctl
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <linux/i2c.h>
#include <linux/i2c-dev.h>

#include "fakehw/fake_i2c.h"

int	__real_open(const char *, int, ...);
int	__real_close(int);
int	__real_ioctl(int, unsigned long, ...);

#define FI2C_NODE		"/dev/i2c-"
#define FI2C_MAX_FDS		64
#define FI2C_MAX_PARTS		64
#define FI2C_MAX_LEN		8192		/* i2c-dev's limit on a message */
#define FI2C_MS			INT64_C(1000000)
#define FI2C_US			INT64_C(1000)
#define FI2C_SCD4X_PERIOD_MS	5000
#define FI2C_SCD4X_STOP_MS	500

enum fi2c_kind { FI2C_NONE, FI2C_SHT3X, FI2C_SHT4X, FI2C_SCD4X };

/* What a part file says. */
struct fi2c_file {
	enum fi2c_kind	 kind;
	double		 v[3];		/* T RH, or CO2 T RH */
	bool		 badcrc;
};

/* What a part remembers between messages. */
struct fi2c_part {
	bool		 used;
	int		 bus;
	uint16_t	 addr;
	enum fi2c_kind	 kind;
	unsigned	 pending;	/* the command whose answer is to be read, 0: none */
	int64_t		 ready_ns;	/* the answer is there from then */
	bool		 measuring;	/* SCD4x: periodic measurement running */
	int64_t		 started_ns;
	int64_t		 taken;		/* SCD4x: the last sample read out */
	int64_t		 busy_ns;	/* SCD4x: deaf until then after a stop */
};

static pthread_mutex_t fi2c_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	bool	used;
	int	fd;
	int	bus;
} fi2c_fds[FI2C_MAX_FDS];
static struct fi2c_part fi2c_parts[FI2C_MAX_PARTS];

static const char *
fi2c_dir(void)
{
	const char *d = getenv(FAKE_I2C_ENV);

	return d != NULL && *d != '\0' ? d : NULL;
}

static int64_t
fi2c_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint8_t
fi2c_crc8(const uint8_t *p)
{
	uint8_t crc = 0xFF;

	for (int i = 0; i < 2; i++) {
		crc ^= p[i];
		for (int b = 0; b < 8; b++)
			crc = crc & 0x80 ? (uint8_t)((crc << 1) ^ 0x31) : (uint8_t)(crc << 1);
	}
	return crc;
}

/* A raw word: x rounded, clamped to 0..65535 as the part's ADC would. */
static uint16_t
fi2c_raw(double x)
{
	if (!(x > 0.0))
		return 0;
	if (x >= 65535.0)
		return 65535;
	return (uint16_t)lround(x);
}

/* Bus N of "/dev/i2c-N", or -1. */
static int
fi2c_bus_number(const char *path)
{
	const char *s = path + strlen(FI2C_NODE);
	char *e;
	long n;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtol(s, &e, 10);
	return errno == 0 && *e == '\0' && n <= 0xFFFFF ? (int)n : -1;
}

static bool
fi2c_bus_exists(const char *dir, int bus)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/i2c-%d", dir, bus);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Parse DIR/i2c-N/0xAA: 0, -ENOENT (no part) or -EINVAL (garbled). */
static int
fi2c_read_file(const char *dir, int bus, uint16_t addr, struct fi2c_file *f)
{
	char path[4096], line[256], *tok, *save, *e;
	size_t nv, want;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/i2c-%d/0x%02x", dir, bus, addr);
	if ((fp = fopen(path, "re")) == NULL)
		return -ENOENT;
	if (fgets(line, sizeof(line), fp) == NULL)
		line[0] = '\0';
	fclose(fp);
	memset(f, 0, sizeof(*f));
	if ((tok = strtok_r(line, " \t\r\n", &save)) == NULL)
		goto garbled;
	if (strcmp(tok, "sht3x") == 0)
		f->kind = FI2C_SHT3X;
	else if (strcmp(tok, "sht4x") == 0)
		f->kind = FI2C_SHT4X;
	else if (strcmp(tok, "scd4x") == 0)
		f->kind = FI2C_SCD4X;
	else
		goto garbled;
	want = f->kind == FI2C_SCD4X ? 3 : 2;
	for (nv = 0; nv < want; nv++) {
		if ((tok = strtok_r(NULL, " \t\r\n", &save)) == NULL)
			goto garbled;
		f->v[nv] = strtod(tok, &e);
		if (e == tok || *e != '\0')
			goto garbled;
	}
	if ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
		if (strcmp(tok, "badcrc") != 0 || strtok_r(NULL, " \t\r\n", &save) != NULL)
			goto garbled;
		f->badcrc = true;
	}
	return 0;
garbled:
	fprintf(stderr, "fakehw i2c: %s: want \"sht3x|sht4x T RH\" or "
	    "\"scd4x CO2 T RH\", then optionally \"badcrc\"\n", path);
	return -EINVAL;
}

/* The state of the part at bus/addr, made if new; NULL if the table is full. */
static struct fi2c_part *
fi2c_part(int bus, uint16_t addr)
{
	struct fi2c_part *free_slot = NULL;

	for (size_t i = 0; i < FI2C_MAX_PARTS; i++) {
		struct fi2c_part *p = &fi2c_parts[i];

		if (p->used && p->bus == bus && p->addr == addr)
			return p;
		if (!p->used && free_slot == NULL)
			free_slot = p;
	}
	if (free_slot != NULL)
		*free_slot = (struct fi2c_part){ .used = true, .bus = bus, .addr = addr };
	return free_slot;
}

/* Powered up anew: idle, nothing pending. */
static void
fi2c_reset(struct fi2c_part *p, enum fi2c_kind kind)
{
	*p = (struct fi2c_part){ .used = true, .bus = p->bus, .addr = p->addr, .kind = kind };
}

/* The SCD4x sample index now (0: none yet since the start). */
static int64_t
fi2c_sample(const struct fi2c_part *p, int64_t now)
{
	const char *s = getenv(FAKE_I2C_PERIOD_ENV);
	long period = s != NULL ? atol(s) : 0;

	if (period <= 0)
		period = FI2C_SCD4X_PERIOD_MS;
	return (now - p->started_ns) / (period * FI2C_MS);
}

/* A write of len bytes to the part: 0 (ACK) or -1 (NACK). */
static int
fi2c_write(struct fi2c_part *p, const uint8_t *buf, size_t len, int64_t now)
{
	unsigned cmd;
	int64_t wait = 0;

	if (now < p->busy_ns)
		return -1;
	if (len == 0)			/* an address-only probe */
		return 0;
	if (len != (p->kind == FI2C_SHT4X ? 1u : 2u))
		return -1;
	cmd = len == 1 ? buf[0] : (unsigned)(buf[0] << 8 | buf[1]);
	p->pending = 0;
	switch (p->kind) {
	case FI2C_SHT3X:
		switch (cmd) {
		case 0x2400: wait = 15000 * FI2C_US; break;	/* high repeatability */
		case 0x240B: wait = 6000 * FI2C_US; break;	/* medium */
		case 0x2416: wait = 4000 * FI2C_US; break;	/* low */
		case 0x2C06: case 0x2C0D: case 0x2C10:		/* clock stretching */
		case 0xF32D:					/* status */
			break;
		case 0x30A2: case 0x3041:			/* reset, clear status */
			return 0;
		default:
			return -1;
		}
		break;
	case FI2C_SHT4X:
		switch (cmd) {
		case 0xFD: wait = 8300 * FI2C_US; break;	/* high precision */
		case 0xF6: wait = 4500 * FI2C_US; break;	/* medium */
		case 0xE0: wait = 1700 * FI2C_US; break;	/* low */
		case 0x89: wait = 1000 * FI2C_US; break;	/* serial number */
		case 0x94:					/* soft reset */
			return 0;
		default:
			return -1;
		}
		break;
	case FI2C_SCD4X:
		switch (cmd) {
		case 0x21B1:	/* start_periodic_measurement: idle only */
			if (p->measuring)
				return -1;
			p->measuring = true;
			p->started_ns = now;
			p->taken = 0;
			return 0;
		case 0x3F86:	/* stop_periodic_measurement */
			if (!p->measuring)
				return -1;
			p->measuring = false;
			p->busy_ns = now + FI2C_SCD4X_STOP_MS * FI2C_MS;
			return 0;
		case 0x3682:	/* get_serial_number: idle only */
			if (p->measuring)
				return -1;
			break;
		case 0xE4B8:	/* get_data_ready_status */
		case 0xEC05:	/* read_measurement */
			break;
		default:
			return -1;
		}
		wait = 1000 * FI2C_US;
		break;
	case FI2C_NONE:
		return -1;
	}
	p->pending = cmd;
	p->ready_ns = now + wait;
	return 0;
}

/* A read of len bytes from the part into buf: 0, or -1 (NACK). */
static int
fi2c_read(struct fi2c_part *p, const struct fi2c_file *f, uint8_t *buf, size_t len, int64_t now)
{
	uint8_t out[9];
	uint16_t w[3];
	size_t n = 0;

	if (now < p->busy_ns || p->pending == 0)
		return -1;
	if (now < p->ready_ns)		/* still measuring: the read header is NACKed */
		return -1;
	switch (p->pending) {
	case 0x2400: case 0x240B: case 0x2416: case 0x2C06: case 0x2C0D: case 0x2C10:
		w[0] = fi2c_raw((f->v[0] + 45.0) * 65535.0 / 175.0);
		w[1] = fi2c_raw(f->v[1] * 65535.0 / 100.0);
		n = 2;
		break;
	case 0xF32D:
		w[0] = 0x8010;		/* alert pending, reset detected: as after power-up */
		n = 1;
		break;
	case 0xFD: case 0xF6: case 0xE0:
		w[0] = fi2c_raw((f->v[0] + 45.0) * 65535.0 / 175.0);
		w[1] = fi2c_raw((f->v[1] + 6.0) * 65535.0 / 125.0);
		n = 2;
		break;
	case 0x89:
		w[0] = 0x1234;
		w[1] = 0x5678;
		n = 2;
		break;
	case 0xE4B8:
		w[0] = p->measuring && fi2c_sample(p, now) > p->taken ? 0x8006 : 0x8000;
		n = 1;
		break;
	case 0xEC05:
		if (!p->measuring || fi2c_sample(p, now) <= p->taken) {
			p->pending = 0;		/* no new data: NACK */
			return -1;
		}
		p->taken = fi2c_sample(p, now);
		w[0] = fi2c_raw(f->v[0]);
		w[1] = fi2c_raw((f->v[1] + 45.0) * 65536.0 / 175.0);
		w[2] = fi2c_raw(f->v[2] * 65536.0 / 100.0);
		n = 3;
		break;
	case 0x3682:
		w[0] = 0xF896;		/* the datasheet's example serial */
		w[1] = 0x9F07;
		w[2] = 0x3BB3;
		n = 3;
		break;
	default:
		return -1;
	}
	p->pending = 0;
	for (size_t i = 0; i < n; i++) {
		out[3 * i] = (uint8_t)(w[i] >> 8);
		out[3 * i + 1] = (uint8_t)w[i];
		out[3 * i + 2] = fi2c_crc8(out + 3 * i);
	}
	if (f->badcrc)
		out[2] ^= 0xFF;
	/* A master may stop early; past the answer the bus reads 0xFF. */
	for (size_t i = 0; i < len; i++)
		buf[i] = i < 3 * n ? out[i] : 0xFF;
	return 0;
}

/* One I2C_RDWR on bus: what the ioctl returns. */
static int
fi2c_rdwr(const char *dir, int bus, struct i2c_rdwr_ioctl_data *data)
{
	int64_t now = fi2c_now();
	int err = 0;

	if (data == NULL || data->msgs == NULL || data->nmsgs == 0 ||
	    data->nmsgs > I2C_RDWR_IOCTL_MAX_MSGS) {
		errno = EINVAL;
		return -1;
	}
	if (!fi2c_bus_exists(dir, bus)) {
		errno = ENODEV;
		return -1;
	}
	pthread_mutex_lock(&fi2c_lock);
	for (uint32_t i = 0; i < data->nmsgs && err == 0; i++) {
		struct i2c_msg *m = &data->msgs[i];
		struct fi2c_part *p;
		struct fi2c_file f;

		if (m->len > FI2C_MAX_LEN || (m->flags & I2C_M_TEN) || m->addr > 0x7F ||
		    (m->len > 0 && m->buf == NULL)) {
			err = EINVAL;
			break;
		}
		if ((p = fi2c_part(bus, m->addr)) == NULL) {
			err = EIO;
			break;
		}
		if (fi2c_read_file(dir, bus, m->addr, &f) < 0) {
			fi2c_reset(p, FI2C_NONE);	/* unplugged: loses its state */
			err = EREMOTEIO;
			break;
		}
		if (p->kind != f.kind)
			fi2c_reset(p, f.kind);
		if ((m->flags & I2C_M_RD ? fi2c_read(p, &f, m->buf, m->len, now) :
		    fi2c_write(p, m->buf, m->len, now)) < 0)
			err = EREMOTEIO;
	}
	pthread_mutex_unlock(&fi2c_lock);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return (int)data->nmsgs;
}

/* Forget fd as a bus (closed, or reused by a real open). */
static void
fi2c_forget(int fd)
{
	pthread_mutex_lock(&fi2c_lock);
	for (size_t i = 0; i < FI2C_MAX_FDS; i++)
		if (fi2c_fds[i].used && fi2c_fds[i].fd == fd)
			fi2c_fds[i].used = false;
	pthread_mutex_unlock(&fi2c_lock);
}

/* The bus fd is, or -1. */
static int
fi2c_bus_of(int fd)
{
	int bus = -1;

	pthread_mutex_lock(&fi2c_lock);
	for (size_t i = 0; i < FI2C_MAX_FDS; i++)
		if (fi2c_fds[i].used && fi2c_fds[i].fd == fd)
			bus = fi2c_fds[i].bus;
	pthread_mutex_unlock(&fi2c_lock);
	return bus;
}

int
__wrap_open(const char *path, int flags, ...)
{
	const char *dir = fi2c_dir();
	mode_t mode = 0;
	va_list ap;
	int fd, bus;
	bool added = false;

	va_start(ap, flags);
	if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE)
		mode = (mode_t)va_arg(ap, int);
	va_end(ap);
	if (dir == NULL || path == NULL || strncmp(path, FI2C_NODE, strlen(FI2C_NODE)) != 0) {
		if ((fd = __real_open(path, flags, mode)) >= 0)
			fi2c_forget(fd);	/* a number we missed the close of */
		return fd;
	}
	if ((bus = fi2c_bus_number(path)) < 0 || !fi2c_bus_exists(dir, bus)) {
		errno = ENOENT;
		return -1;
	}
	if ((fd = __real_open("/dev/null", O_RDWR | (flags & O_CLOEXEC))) < 0)
		return -1;
	fi2c_forget(fd);
	pthread_mutex_lock(&fi2c_lock);
	for (size_t i = 0; i < FI2C_MAX_FDS && !added; i++)
		if (!fi2c_fds[i].used) {
			fi2c_fds[i].used = true;
			fi2c_fds[i].fd = fd;
			fi2c_fds[i].bus = bus;
			added = true;
		}
	pthread_mutex_unlock(&fi2c_lock);
	if (!added) {
		__real_close(fd);
		errno = EMFILE;
		return -1;
	}
	return fd;
}

int
__wrap_close(int fd)
{
	fi2c_forget(fd);
	return __real_close(fd);
}

int
__wrap_ioctl(int fd, unsigned long request, ...)
{
	const char *dir = fi2c_dir();
	va_list ap;
	void *arg;
	int bus;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (dir == NULL || (bus = fi2c_bus_of(fd)) < 0)
		return __real_ioctl(fd, request, arg);
	switch (request) {
	case I2C_RDWR:
		return fi2c_rdwr(dir, bus, arg);
	case I2C_FUNCS:
		*(unsigned long *)arg = I2C_FUNC_I2C;
		return 0;
	case I2C_SLAVE:
	case I2C_SLAVE_FORCE:
	case I2C_TIMEOUT:
	case I2C_RETRIES:
		return 0;
	default:
		errno = ENOTTY;
		return -1;
	}
}
