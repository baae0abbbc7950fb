/*
 * The I2C drivers (sht3x, sht4x, scd4x in sensors/i2c.c) against recorded
 * frames.  open, close, ioctl and nanosleep are wrapped: "/dev/i2c-fake" is
 * a fake bus node (a real fd on /dev/null), any other /dev/i2c-* refuses to
 * open (a unit test never touches a real bus), everything else passes
 * through.  Each test queues the transfers it expects, in order: the
 * address, direction, length and (for writes) the exact command bytes the
 * driver must send, the least time it must have slept before the transfer,
 * and the bytes the fake part answers or the errno it fails with.  The
 * fake asserts each transfer against the queue; the teardown asserts the
 * queue was used up.  Sleeps are recorded, not slept.
 *
 * Frame bytes and CRCs are written out by hand (the CRCs computed apart
 * from the driver), and the expected values are computed in the test from
 * the datasheet formulas, never taken from the driver.
 */
// WRAP: open close ioctl nanosleep
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/i2c.h>
#include <linux/i2c-dev.h>

#include "config.h"
#include "sensor.h"

extern const struct sensor_driver sht3x_driver;
extern const struct sensor_driver sht4x_driver;
extern const struct sensor_driver scd4x_driver;

int	__real_open(const char *, int, ...);
int	__wrap_open(const char *, int, ...);
int	__real_close(int);
int	__wrap_close(int);
int	__real_ioctl(int, unsigned long, ...);
int	__wrap_ioctl(int, unsigned long, ...);
int	__wrap_nanosleep(const struct timespec *, struct timespec *);

#define FAKE_NODE	"/dev/i2c-fake"
#define TOL		1e-6

struct step {
	uint16_t	addr;
	int		rd;		/* a read (I2C_M_RD) or a write */
	uint8_t		bytes[16];	/* write: expected; read: answered */
	size_t		len;
	long		min_wait_us;	/* slept at least this long since the last transfer */
	int		err;		/* fail the transfer with this errno */
};

static struct {
	int		fd;		/* the open fake node, or -1 */
	int		open_errno;	/* opening the fake node fails with it */
	int		opens, closes;	/* of the fake node */
	int		last_flags;	/* open flags of the fake node */
	struct step	steps[64];
	size_t		nsteps, next;
	long		slept_us;	/* since the last transfer */
} fake;

int
__wrap_open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;
	int fd;

	va_start(ap, flags);
	if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE)
		mode = (mode_t)va_arg(ap, int);
	va_end(ap);
	if (strncmp(path, "/dev/i2c-", 9) != 0)
		return __real_open(path, flags, mode);
	if (strcmp(path, FAKE_NODE) != 0) {
		errno = ENOENT;
		return -1;
	}
	fake.opens++;
	fake.last_flags = flags;
	if (fake.open_errno != 0) {
		errno = fake.open_errno;
		return -1;
	}
	assert_int_equal(fake.fd, -1);	/* one fake node open at a time */
	fd = __real_open("/dev/null", O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	fake.fd = fd;
	return fd;
}

int
__wrap_close(int fd)
{
	if (fd >= 0 && fd == fake.fd) {
		fake.closes++;
		fake.fd = -1;
	}
	return __real_close(fd);
}

int
__wrap_nanosleep(const struct timespec *req, struct timespec *rem)
{
	fake.slept_us += (long)req->tv_sec * 1000000 + req->tv_nsec / 1000;
	if (rem != NULL)
		*rem = (struct timespec){ 0, 0 };
	return 0;
}

int
__wrap_ioctl(int fd, unsigned long req, ...)
{
	struct i2c_rdwr_ioctl_data *data;
	struct i2c_msg *m;
	struct step *st;
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fd < 0 || fd != fake.fd)
		return __real_ioctl(fd, req, arg);
	assert_int_equal(req, I2C_RDWR);
	data = arg;
	assert_int_equal(data->nmsgs, 1);
	m = &data->msgs[0];
	assert_true(fake.next < fake.nsteps);	/* a transfer nobody expected */
	st = &fake.steps[fake.next++];
	assert_int_equal(m->addr, st->addr);
	assert_int_equal(m->flags, st->rd ? I2C_M_RD : 0);
	assert_int_equal(m->len, st->len);
	if (!st->rd)
		assert_memory_equal(m->buf, st->bytes, st->len);
	assert_true(fake.slept_us >= st->min_wait_us);
	fake.slept_us = 0;
	if (st->err != 0) {
		errno = st->err;
		return -1;
	}
	if (st->rd)
		memcpy(m->buf, st->bytes, st->len);
	return 1;
}

static void
expect(uint16_t addr, int rd, long min_wait_us, int err, const uint8_t *b, size_t n)
{
	struct step *st;

	assert_true(fake.nsteps < sizeof(fake.steps) / sizeof(fake.steps[0]));
	assert_true(n <= sizeof(st->bytes));
	st = &fake.steps[fake.nsteps++];
	*st = (struct step){ .addr = addr, .rd = rd, .len = n, .min_wait_us = min_wait_us, .err = err };
	memcpy(st->bytes, b, n);
}

#define BYTES(...)	(const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ })
/* The driver writes these bytes to addr; err: the write fails with it. */
#define WRITE(addr, err, ...)		expect(addr, 0, 0, err, BYTES(__VA_ARGS__))
/* After sleeping wait_us, the driver reads; the part answers these bytes. */
#define READ(addr, wait_us, ...)	expect(addr, 1, wait_us, 0, BYTES(__VA_ARGS__))
/* The driver reads n bytes and the transfer fails with err. */
static void
read_fails(uint16_t addr, size_t n, int err)
{
	uint8_t zero[16] = { 0 };

	expect(addr, 1, 0, err, zero, n);
}

/* cmocka 1.1 compares floats only; values here need doubles. */
#define assert_near(a, b, tol)	near((a), (b), (tol), __FILE__, __LINE__)

static void
near(double a, double b, double tol, const char *file, int line)
{
	if (!(fabs(a - b) <= tol)) {
		print_error("%.9f is not %.9f (+-%g)\n", a, b, tol);
		_fail(file, line);
	}
}

static int
setup(void **st)
{
	(void)st;
	memset(&fake, 0, sizeof(fake));
	fake.fd = -1;
	return 0;
}

static int
teardown(void **st)
{
	(void)st;
	assert_int_equal(fake.next, fake.nsteps);	/* every expected transfer happened */
	assert_int_equal(fake.fd, -1);			/* and the node was closed */
	return 0;
}

/* Open drv on node at address (-1: default); asserts success. */
static void *
open_at(const struct sensor_driver *drv, const char *node, int address)
{
	struct config conf;
	struct sensor_cfg sc;
	void *state = NULL;

	memset(&conf, 0, sizeof(conf));
	memset(&sc, 0, sizeof(sc));
	sc.id = "s1";
	sc.driver = drv->name;
	sc.dev.device = node;
	sc.dev.address = address;
	sc.interval = 10;
	assert_int_equal(drv->open(&conf, &sc, &state), 0);
	assert_non_null(state);
	return state;
}

/* One read at elapsed seconds; a failed read must leave out untouched. */
static int
read_at(const struct sensor_driver *drv, void *state, double elapsed, struct reading *out)
{
	struct sensor_clock clk = { 1700000000000, elapsed };
	int rc;

	for (int i = 0; i < SENSOR_MAX_READINGS; i++)
		out[i] = (struct reading){ (enum quantity)-1, -999 };
	rc = drv->read(state, &clk, out, SENSOR_MAX_READINGS);
	if (rc <= 0)
		for (int i = 0; i < SENSOR_MAX_READINGS; i++)
			assert_true(out[i].value == -999);
	return rc;
}

static double
sht_t(unsigned raw)
{
	return -45.0 + 175.0 * raw / 65535.0;
}

static double
scd_t(unsigned raw)
{
	return -45.0 + 175.0 * raw / 65536.0;
}

/* The single-shot measurement the SHT3x driver must send at addr. */
static void
sht3x_measure(uint16_t addr)
{
	WRITE(addr, 0, 0x24, 0x00);
}

/* 0x6666 -> 25.000 C, 0x9999 -> 60.000 %RH, at the default address 0x44. */
static void
sht3x_good(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	void *s;

	(void)st;
	s = open_at(&sht3x_driver, FAKE_NODE, -1);
	assert_int_equal(fake.opens, 1);	/* the node is opened at open() ... */
	assert_int_equal(fake.last_flags & O_ACCMODE, O_RDWR);
	assert_true(fake.last_flags & O_CLOEXEC);
	assert_int_equal(fake.next, 0);		/* ... without a transfer */
	sht3x_measure(0x44);
	READ(0x44, 15500, 0x66, 0x66, 0x93, 0x99, 0x99, 0xBE);
	assert_int_equal(read_at(&sht3x_driver, s, 0, r), 2);
	assert_int_equal(r[0].q, Q_TEMPERATURE);
	assert_near(r[0].value, 25.0, TOL);
	assert_near(r[0].value, sht_t(0x6666), TOL);
	assert_int_equal(r[1].q, Q_HUMIDITY);
	assert_near(r[1].value, 60.0, TOL);
	/* The node stays open between reads. */
	sht3x_measure(0x44);
	READ(0x44, 15500, 0x12, 0x34, 0x37, 0x56, 0x78, 0x7D);
	assert_int_equal(read_at(&sht3x_driver, s, 10, r), 2);
	assert_near(r[0].value, sht_t(0x1234), TOL);
	assert_near(r[1].value, 100.0 * 0x5678 / 65535.0, TOL);
	assert_int_equal(fake.opens, 1);
	sht3x_driver.close(s);
	assert_int_equal(fake.closes, 1);
}

/* The datasheets' CRC example: CRC(0xBEEF) = 0x92 is accepted, 0x93 is not. */
static void
crc_datasheet_example(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	void *s;

	(void)st;
	s = open_at(&sht3x_driver, FAKE_NODE, 0x45);
	sht3x_measure(0x45);
	READ(0x45, 15500, 0xBE, 0xEF, 0x92, 0xBE, 0xEF, 0x92);
	assert_int_equal(read_at(&sht3x_driver, s, 0, r), 2);
	assert_near(r[0].value, sht_t(0xBEEF), TOL);
	assert_near(r[1].value, 100.0 * 0xBEEF / 65535.0, TOL);
	sht3x_measure(0x45);
	READ(0x45, 15500, 0xBE, 0xEF, 0x93, 0xBE, 0xEF, 0x92);
	assert_int_equal(read_at(&sht3x_driver, s, 0, r), -EBADMSG);
	sht3x_driver.close(s);
}

/* A wrong CRC on either word fails the read with no readings. */
static void
sht3x_bad_crc(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	void *s;

	(void)st;
	s = open_at(&sht3x_driver, FAKE_NODE, -1);
	sht3x_measure(0x44);
	READ(0x44, 15500, 0x66, 0x66, 0x92, 0x99, 0x99, 0xBE);
	assert_int_equal(read_at(&sht3x_driver, s, 0, r), -EBADMSG);
	sht3x_measure(0x44);
	READ(0x44, 15500, 0x66, 0x66, 0x93, 0x99, 0x99, 0xBF);
	assert_int_equal(read_at(&sht3x_driver, s, 0, r), -EBADMSG);
	sht3x_driver.close(s);
}

/* A NACK on the command or on the read header, whatever errno the adapter uses: -ETIMEDOUT. */
static void
sht3x_nack(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	void *s;

	(void)st;
	s = open_at(&sht3x_driver, FAKE_NODE, -1);
	WRITE(0x44, EREMOTEIO, 0x24, 0x00);	/* no read after a failed write */
	assert_int_equal(read_at(&sht3x_driver, s, 0, r), -ETIMEDOUT);
	sht3x_measure(0x44);
	read_fails(0x44, 6, ENXIO);
	assert_int_equal(read_at(&sht3x_driver, s, 0, r), -ETIMEDOUT);
	WRITE(0x44, EIO, 0x24, 0x00);
	assert_int_equal(read_at(&sht3x_driver, s, 0, r), -ETIMEDOUT);
	/* An SMBus-only adapter refuses I2C_RDWR. */
	WRITE(0x44, EOPNOTSUPP, 0x24, 0x00);
	assert_int_equal(read_at(&sht3x_driver, s, 0, r), -EOPNOTSUPP);
	assert_int_equal(fake.closes, 0);	/* none of these loses the node */
	sht3x_driver.close(s);
}

/* The adapter goes away (ENODEV): -ENODEV, the node is closed, and reopened once it is back. */
static void
sht3x_gone_and_back(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	void *s;

	(void)st;
	s = open_at(&sht3x_driver, FAKE_NODE, -1);
	WRITE(0x44, ENODEV, 0x24, 0x00);
	assert_int_equal(read_at(&sht3x_driver, s, 0, r), -ENODEV);
	assert_int_equal(fake.closes, 1);
	/* Not back yet: no node, no transfer. */
	fake.open_errno = ENOENT;
	assert_int_equal(read_at(&sht3x_driver, s, 10, r), -ENODEV);
	assert_int_equal(fake.opens, 2);
	fake.open_errno = ENODEV;
	assert_int_equal(read_at(&sht3x_driver, s, 20, r), -ENODEV);
	assert_int_equal(fake.opens, 3);
	/* Back. */
	fake.open_errno = 0;
	sht3x_measure(0x44);
	READ(0x44, 15500, 0x66, 0x66, 0x93, 0x99, 0x99, 0xBE);
	assert_int_equal(read_at(&sht3x_driver, s, 30, r), 2);
	assert_int_equal(fake.opens, 4);
	assert_near(r[0].value, 25.0, TOL);
	assert_near(r[1].value, 60.0, TOL);
	sht3x_driver.close(s);
	assert_int_equal(fake.closes, 2);
}

/* A node missing at open() is not an error there: reads say -ENODEV until it appears. */
static void
node_missing_at_open(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	void *s;

	(void)st;
	fake.open_errno = ENOENT;
	s = open_at(&sht3x_driver, FAKE_NODE, -1);
	assert_int_equal(read_at(&sht3x_driver, s, 0, r), -ENODEV);
	fake.open_errno = EACCES;
	assert_int_equal(read_at(&sht3x_driver, s, 1, r), -EACCES);
	fake.open_errno = 0;
	sht3x_measure(0x44);
	READ(0x44, 15500, 0x66, 0x66, 0x93, 0x99, 0x99, 0xBE);
	assert_int_equal(read_at(&sht3x_driver, s, 2, r), 2);
	assert_int_equal(fake.opens, 4);
	sht3x_driver.close(s);
	/* Closing a sensor whose node never opened closes nothing. */
	fake.open_errno = ENOENT;
	s = open_at(&sht4x_driver, FAKE_NODE, -1);
	sht4x_driver.close(s);
	s = open_at(&scd4x_driver, FAKE_NODE, -1);
	scd4x_driver.close(s);
	assert_int_equal(fake.closes, 1);
}

/* -40 C and 125 C are the SHT3x's limits: -40.0011 and -45 are refused, -39.9985 is not. */
static void
sht3x_range(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	void *s;

	(void)st;
	s = open_at(&sht3x_driver, FAKE_NODE, -1);
	sht3x_measure(0x44);
	READ(0x44, 15500, 0x07, 0x50, 0x51, 0x99, 0x99, 0xBE);
	assert_int_equal(read_at(&sht3x_driver, s, 0, r), -ERANGE);
	sht3x_measure(0x44);
	READ(0x44, 15500, 0x00, 0x00, 0x81, 0x00, 0x00, 0x81);	/* all zeros: -45 C */
	assert_int_equal(read_at(&sht3x_driver, s, 0, r), -ERANGE);
	sht3x_measure(0x44);
	READ(0x44, 15500, 0xFF, 0xFF, 0xAC, 0xFF, 0xFF, 0xAC);	/* all ones: 130 C */
	assert_int_equal(read_at(&sht3x_driver, s, 0, r), -ERANGE);
	sht3x_measure(0x44);
	READ(0x44, 15500, 0x07, 0x51, 0x60, 0xFF, 0xFF, 0xAC);	/* 100 %RH is fine */
	assert_int_equal(read_at(&sht3x_driver, s, 0, r), 2);
	assert_near(r[0].value, sht_t(0x0751), TOL);
	assert_true(r[0].value > -40.0);
	assert_near(r[1].value, 100.0, TOL);
	sht3x_driver.close(s);
}

/* SHT4x: the one-byte 0xFD, >= 8.3 ms, RH = -6 + 125 * S / 65535. */
static void
sht4x_good(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	void *s;

	(void)st;
	s = open_at(&sht4x_driver, FAKE_NODE, -1);
	WRITE(0x44, 0, 0xFD);
	READ(0x44, 8300, 0x66, 0x66, 0x93, 0x80, 0x00, 0xA2);
	assert_int_equal(read_at(&sht4x_driver, s, 0, r), 2);
	assert_int_equal(r[0].q, Q_TEMPERATURE);
	assert_near(r[0].value, 25.0, TOL);
	assert_int_equal(r[1].q, Q_HUMIDITY);
	assert_near(r[1].value, -6.0 + 125.0 * 0x8000 / 65535.0, TOL);
	assert_near(r[1].value, 56.500954, 1e-5);
	sht4x_driver.close(s);
	assert_int_equal(fake.closes, 1);
}

/* SHT4x RH outside 0..100 is cropped, not refused; the CRC is still checked. */
static void
sht4x_clamp_and_crc(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	void *s;

	(void)st;
	s = open_at(&sht4x_driver, FAKE_NODE, 0x46);
	WRITE(0x46, 0, 0xFD);
	READ(0x46, 8300, 0x66, 0x66, 0x93, 0xFF, 0xFF, 0xAC);	/* 119 %RH */
	assert_int_equal(read_at(&sht4x_driver, s, 0, r), 2);
	assert_near(r[1].value, 100.0, TOL);
	WRITE(0x46, 0, 0xFD);
	READ(0x46, 8300, 0x66, 0x66, 0x93, 0x00, 0x00, 0x81);	/* -6 %RH */
	assert_int_equal(read_at(&sht4x_driver, s, 0, r), 2);
	assert_near(r[1].value, 0.0, TOL);
	WRITE(0x46, 0, 0xFD);
	READ(0x46, 8300, 0x66, 0x66, 0x93, 0xFF, 0xFF, 0xAD);
	assert_int_equal(read_at(&sht4x_driver, s, 0, r), -EBADMSG);
	WRITE(0x46, 0, 0xFD);
	READ(0x46, 8300, 0x66, 0x67, 0x93, 0xFF, 0xFF, 0xAC);
	assert_int_equal(read_at(&sht4x_driver, s, 0, r), -EBADMSG);
	WRITE(0x46, 0, 0xFD);
	READ(0x46, 8300, 0xFF, 0xFF, 0xAC, 0x80, 0x00, 0xA2);	/* 130 C */
	assert_int_equal(read_at(&sht4x_driver, s, 0, r), -ERANGE);
	WRITE(0x46, EREMOTEIO, 0xFD);
	assert_int_equal(read_at(&sht4x_driver, s, 0, r), -ETIMEDOUT);
	sht4x_driver.close(s);
}

/* start_periodic_measurement, then get_data_ready_status 1 ms later answering (msb, lsb, crc). */
static void
scd4x_start_ready(uint8_t msb, uint8_t lsb, uint8_t crc)
{
	WRITE(0x62, 0, 0x21, 0xB1);
	expect(0x62, 0, 1000, 0, BYTES(0xE4, 0xB8));
	READ(0x62, 1000, msb, lsb, crc);
}

/* get_data_ready_status answering word (msb, lsb, crc). */
static void
scd4x_ready(uint8_t msb, uint8_t lsb, uint8_t crc)
{
	WRITE(0x62, 0, 0xE4, 0xB8);
	READ(0x62, 1000, msb, lsb, crc);
}

/* The datasheet's read_measurement example: 500 ppm, 25.0016 C, 37.0010 %RH. */
static void
scd4x_measurement_example(void)
{
	WRITE(0x62, 0, 0xEC, 0x05);
	READ(0x62, 1000, 0x01, 0xF4, 0x33, 0x66, 0x67, 0xA2, 0x5E, 0xB9, 0x3C);
}

/*
 * open() is silent; the first read starts periodic measurement; 0x8000
 * (high bit set, low 11 bits 0) is "no data": 0 readings; later reads do
 * not start again; data ready -> CO2, T, RH; close stops.
 */
static void
scd4x_protocol(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	void *s;

	(void)st;
	s = open_at(&scd4x_driver, FAKE_NODE, -1);
	assert_int_equal(fake.next, 0);
	scd4x_start_ready(0x80, 0x00, 0xA2);
	assert_int_equal(read_at(&scd4x_driver, s, 0, r), 0);
	scd4x_ready(0x80, 0x06, 0x04);
	scd4x_measurement_example();
	assert_int_equal(read_at(&scd4x_driver, s, 5, r), 3);
	assert_int_equal(r[0].q, Q_CO2);
	assert_near(r[0].value, 500.0, TOL);
	assert_int_equal(r[1].q, Q_TEMPERATURE);
	assert_near(r[1].value, scd_t(0x6667), TOL);
	assert_near(r[1].value, 25.001602, 1e-5);
	assert_int_equal(r[2].q, Q_HUMIDITY);
	assert_near(r[2].value, 100.0 * 0x5EB9 / 65536.0, TOL);
	assert_near(r[2].value, 37.001038, 1e-5);
	scd4x_ready(0x00, 0x00, 0x81);
	assert_int_equal(read_at(&scd4x_driver, s, 7, r), 0);
	WRITE(0x62, 0, 0x3F, 0x86);
	scd4x_driver.close(s);
	assert_int_equal(fake.closes, 1);
}

/* A start NACKed by a part that is already measuring is fine; it is not sent again. */
static void
scd4x_already_measuring(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	void *s;

	(void)st;
	s = open_at(&scd4x_driver, FAKE_NODE, 0x62);
	WRITE(0x62, EREMOTEIO, 0x21, 0xB1);
	scd4x_ready(0x80, 0x06, 0x04);
	scd4x_measurement_example();
	assert_int_equal(read_at(&scd4x_driver, s, 0, r), 3);
	assert_near(r[0].value, 500.0, TOL);
	scd4x_ready(0x80, 0x00, 0xA2);
	assert_int_equal(read_at(&scd4x_driver, s, 1, r), 0);
	WRITE(0x62, 0, 0x3F, 0x86);
	scd4x_driver.close(s);
}

/* Nobody at 0x62: -ETIMEDOUT, and every read tries start again; closing sends no stop. */
static void
scd4x_absent(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	void *s;

	(void)st;
	s = open_at(&scd4x_driver, FAKE_NODE, -1);
	WRITE(0x62, EREMOTEIO, 0x21, 0xB1);
	WRITE(0x62, EREMOTEIO, 0xE4, 0xB8);
	assert_int_equal(read_at(&scd4x_driver, s, 0, r), -ETIMEDOUT);
	WRITE(0x62, ENXIO, 0x21, 0xB1);
	WRITE(0x62, 0, 0xE4, 0xB8);
	read_fails(0x62, 3, ENXIO);
	assert_int_equal(read_at(&scd4x_driver, s, 10, r), -ETIMEDOUT);
	scd4x_driver.close(s);
}

/* Data-ready saying "no" for 15 s: the next read sends start again (a part that lost power). */
static void
scd4x_restarts_after_silence(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	void *s;

	(void)st;
	s = open_at(&scd4x_driver, FAKE_NODE, -1);
	scd4x_start_ready(0x80, 0x00, 0xA2);
	assert_int_equal(read_at(&scd4x_driver, s, 100, r), 0);
	scd4x_ready(0x80, 0x00, 0xA2);
	assert_int_equal(read_at(&scd4x_driver, s, 110, r), 0);
	scd4x_ready(0x80, 0x00, 0xA2);
	assert_int_equal(read_at(&scd4x_driver, s, 114.9, r), 0);
	scd4x_ready(0x80, 0x00, 0xA2);
	assert_int_equal(read_at(&scd4x_driver, s, 115, r), 0);
	scd4x_start_ready(0x80, 0x06, 0x04);
	scd4x_measurement_example();
	assert_int_equal(read_at(&scd4x_driver, s, 116, r), 3);
	/* New data restarts the clock each time. */
	for (int t = 121; t <= 136; t += 5) {
		scd4x_ready(0x80, 0x06, 0x04);
		scd4x_measurement_example();
		assert_int_equal(read_at(&scd4x_driver, s, t, r), 3);
	}
	scd4x_ready(0x80, 0x00, 0xA2);
	assert_int_equal(read_at(&scd4x_driver, s, 140, r), 0);
	scd4x_ready(0x80, 0x00, 0xA2);
	assert_int_equal(read_at(&scd4x_driver, s, 141, r), 0);
	WRITE(0x62, 0, 0x3F, 0x86);
	scd4x_driver.close(s);
}

/* A wrong CRC on any of the three words, or on data-ready: -EBADMSG, no readings. */
static void
scd4x_bad_crc(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	void *s;

	(void)st;
	s = open_at(&scd4x_driver, FAKE_NODE, -1);
	scd4x_start_ready(0x80, 0x06, 0x04);
	WRITE(0x62, 0, 0xEC, 0x05);
	READ(0x62, 1000, 0x01, 0xF4, 0x34, 0x66, 0x67, 0xA2, 0x5E, 0xB9, 0x3C);
	assert_int_equal(read_at(&scd4x_driver, s, 0, r), -EBADMSG);
	scd4x_ready(0x80, 0x06, 0x04);
	WRITE(0x62, 0, 0xEC, 0x05);
	READ(0x62, 1000, 0x01, 0xF4, 0x33, 0x66, 0x67, 0xA2, 0x5E, 0xB9, 0x3D);
	assert_int_equal(read_at(&scd4x_driver, s, 5, r), -EBADMSG);
	scd4x_ready(0x80, 0x06, 0x05);
	assert_int_equal(read_at(&scd4x_driver, s, 10, r), -EBADMSG);
	/* A CRC error is an answer: still measuring, no new start. */
	scd4x_ready(0x80, 0x06, 0x04);
	scd4x_measurement_example();
	assert_int_equal(read_at(&scd4x_driver, s, 15, r), 3);
	WRITE(0x62, 0, 0x3F, 0x86);
	scd4x_driver.close(s);
}

/* CO2 1..40000 ppm and -10..60 C; 0 ppm is an invalid sample. */
static void
scd4x_range(void **st)
{
	static const uint8_t frames[][9] = {
		{ 0x9C, 0x41, 0x74, 0x66, 0x67, 0xA2, 0x5E, 0xB9, 0x3C },	/* 40001 ppm */
		{ 0x00, 0x00, 0x81, 0x66, 0x67, 0xA2, 0x5E, 0xB9, 0x3C },	/* 0 ppm */
		{ 0x01, 0xF4, 0x33, 0x9B, 0x00, 0xD6, 0x5E, 0xB9, 0x3C },	/* 60.957 C */
		{ 0x01, 0xF4, 0x33, 0x30, 0x00, 0x33, 0x5E, 0xB9, 0x3C },	/* -12.19 C */
	};
	struct reading r[SENSOR_MAX_READINGS];
	void *s;

	(void)st;
	s = open_at(&scd4x_driver, FAKE_NODE, -1);
	scd4x_start_ready(0x80, 0x00, 0xA2);
	assert_int_equal(read_at(&scd4x_driver, s, 0, r), 0);
	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		scd4x_ready(0x80, 0x06, 0x04);
		WRITE(0x62, 0, 0xEC, 0x05);
		expect(0x62, 1, 1000, 0, frames[i], 9);
		assert_int_equal(read_at(&scd4x_driver, s, (double)i, r), -ERANGE);
	}
	scd4x_ready(0x80, 0x06, 0x04);
	WRITE(0x62, 0, 0xEC, 0x05);
	READ(0x62, 1000, 0x9C, 0x40, 0x45, 0x66, 0x67, 0xA2, 0xFF, 0xFF, 0xAC);
	assert_int_equal(read_at(&scd4x_driver, s, 9, r), 3);
	assert_near(r[0].value, 40000.0, TOL);
	assert_near(r[2].value, 100.0 * 0xFFFF / 65536.0, TOL);
	WRITE(0x62, 0, 0x3F, 0x86);
	scd4x_driver.close(s);
}

/* The adapter gone under an SCD4x: -ENODEV; when it is back, start is sent again. */
static void
scd4x_gone_and_back(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	void *s;

	(void)st;
	s = open_at(&scd4x_driver, FAKE_NODE, -1);
	scd4x_start_ready(0x80, 0x00, 0xA2);
	assert_int_equal(read_at(&scd4x_driver, s, 0, r), 0);
	WRITE(0x62, ENODEV, 0xE4, 0xB8);
	assert_int_equal(read_at(&scd4x_driver, s, 1, r), -ENODEV);
	assert_int_equal(fake.closes, 1);
	scd4x_start_ready(0x80, 0x00, 0xA2);
	assert_int_equal(read_at(&scd4x_driver, s, 2, r), 0);
	assert_int_equal(fake.opens, 2);
	WRITE(0x62, 0, 0x3F, 0x86);
	scd4x_driver.close(s);
}

/* No device, an empty one, or an address outside 0x03..0x77: -EINVAL, nothing opened. */
static void
bad_config(void **st)
{
	static const int bad_addrs[] = { 0x00, 0x02, 0x78, 0x80, 0x7F, 255, -2 };
	const struct sensor_driver *drivers[] = { &sht3x_driver, &sht4x_driver, &scd4x_driver };
	struct config conf;
	struct sensor_cfg sc;
	void *state = NULL;

	(void)st;
	memset(&conf, 0, sizeof(conf));
	for (size_t i = 0; i < 3; i++) {
		memset(&sc, 0, sizeof(sc));
		sc.dev.address = -1;
		sc.dev.device = NULL;
		assert_int_equal(drivers[i]->open(&conf, &sc, &state), -EINVAL);
		sc.dev.device = (char *)"";
		assert_int_equal(drivers[i]->open(&conf, &sc, &state), -EINVAL);
		sc.dev.device = (char *)FAKE_NODE;
		for (size_t k = 0; k < sizeof(bad_addrs) / sizeof(bad_addrs[0]); k++) {
			sc.dev.address = bad_addrs[k];
			assert_int_equal(drivers[i]->open(&conf, &sc, &state), -EINVAL);
		}
		drivers[i]->close(NULL);
	}
	assert_int_equal(fake.opens, 0);
	/* The ends of the range are fine. */
	drivers[0]->close(open_at(&sht3x_driver, FAKE_NODE, 0x03));
	drivers[0]->close(open_at(&sht3x_driver, FAKE_NODE, 0x77));
	assert_int_equal(fake.opens, 2);
}

/* Too small an output array: -ENOBUFS before any transfer. */
static void
small_buffer(void **st)
{
	struct sensor_clock clk = { 0, 0 };
	struct reading r[3];
	void *s;

	(void)st;
	s = open_at(&sht3x_driver, FAKE_NODE, -1);
	assert_int_equal(sht3x_driver.read(s, &clk, r, 1), -ENOBUFS);
	sht3x_driver.close(s);
	s = open_at(&sht4x_driver, FAKE_NODE, -1);
	assert_int_equal(sht4x_driver.read(s, &clk, r, 1), -ENOBUFS);
	sht4x_driver.close(s);
	s = open_at(&scd4x_driver, FAKE_NODE, -1);
	assert_int_equal(scd4x_driver.read(s, &clk, r, 2), -ENOBUFS);
	scd4x_driver.close(s);
}

/* The descriptors: names, blocking, and scan on sht3x only. */
static void
descriptors(void **st)
{
	(void)st;
	assert_string_equal(sht3x_driver.name, "sht3x");
	assert_string_equal(sht4x_driver.name, "sht4x");
	assert_string_equal(scd4x_driver.name, "scd4x");
	assert_true(sht3x_driver.blocks == sensor_blocks_always);
	assert_true(sht4x_driver.blocks == sensor_blocks_always);
	assert_true(scd4x_driver.blocks == sensor_blocks_always);
	assert_non_null(sht3x_driver.scan);
	assert_null(sht4x_driver.scan);
	assert_null(scd4x_driver.scan);
	assert_null(sht3x_driver.event_fd);
}

/* Run sht3x_driver.scan on conf; returns its count, the text in *text (free it). */
static int
scan(const struct config *conf, char **text)
{
	size_t size;
	FILE *f = open_memstream(text, &size);
	int rc;

	assert_non_null(f);
	rc = sht3x_driver.scan(conf, f);
	fclose(f);
	return rc;
}

/*
 * Two buses named by I2C sensors (the fake one twice, and one that does not
 * open); a hwmon sensor's device is not a bus.  On the fake: an SHT3x at
 * 0x44 answers its status, nobody at 0x45 answers the SHT3x probe but an
 * SHT4x there answers its serial, and a measuring SCD4x NACKs the serial
 * request but answers data-ready.
 */
static void
scan_buses(void **st)
{
	struct sensor_cfg sensors[4];
	struct config conf;
	char *text = NULL;

	(void)st;
	memset(&conf, 0, sizeof(conf));
	memset(sensors, 0, sizeof(sensors));
	sensors[0].driver = (char *)"sht3x";
	sensors[0].dev.device = (char *)FAKE_NODE;
	sensors[1].driver = (char *)"hwmon";
	sensors[1].dev.device = (char *)"sht3x";
	sensors[2].driver = (char *)"scd4x";
	sensors[2].dev.device = (char *)FAKE_NODE;
	sensors[3].driver = (char *)"sht4x";
	sensors[3].dev.device = (char *)"/dev/i2c-9";
	conf.sensors = sensors;
	conf.nsensors = 4;

	WRITE(0x44, 0, 0xF3, 0x2D);
	READ(0x44, 0, 0x80, 0x10, 0xE1);
	WRITE(0x45, EREMOTEIO, 0xF3, 0x2D);
	WRITE(0x45, 0, 0x89);
	READ(0x45, 1000, 0x12, 0x34, 0x37, 0x56, 0x78, 0x7D);
	WRITE(0x62, EREMOTEIO, 0x36, 0x82);
	WRITE(0x62, 0, 0xE4, 0xB8);
	READ(0x62, 1000, 0x80, 0x00, 0xA2);
	assert_int_equal(scan(&conf, &text), 3);
	assert_string_equal(text,
	    "# /dev/i2c-fake 0x44: SHT3x, status 0x8010\n"
	    "{ id = \"sht3x-i2c-fake-44\"; zone = \"CHANGE-ME\"; driver = \"sht3x\"; "
	    "device = \"/dev/i2c-fake\"; address = 0x44; interval = 10; },\n"
	    "# /dev/i2c-fake 0x45: SHT4x, serial 12345678\n"
	    "{ id = \"sht4x-i2c-fake-45\"; zone = \"CHANGE-ME\"; driver = \"sht4x\"; "
	    "device = \"/dev/i2c-fake\"; address = 0x45; interval = 10; },\n"
	    "# /dev/i2c-fake 0x62: SCD4x, answers (busy measuring)\n"
	    "{ id = \"scd4x-i2c-fake-62\"; zone = \"CHANGE-ME\"; driver = \"scd4x\"; "
	    "device = \"/dev/i2c-fake\"; address = 0x62; interval = 10; },\n"
	    "# /dev/i2c-9: cannot open: No such file or directory\n");
	assert_int_equal(fake.opens, 1);
	assert_int_equal(fake.closes, 1);
	free(text);
}

/*
 * No I2C sensor configured: /dev/i2c-1 (refused here).  An idle SCD4x gives
 * its serial; a bad CRC is not an answer; nothing found is said so.
 */
static void
scan_default_and_serials(void **st)
{
	struct sensor_cfg sc;
	struct config conf;
	char *text = NULL;

	(void)st;
	assert_int_equal(scan(NULL, &text), 0);
	assert_string_equal(text, "# /dev/i2c-1: cannot open: No such file or directory\n");
	free(text);

	memset(&conf, 0, sizeof(conf));
	memset(&sc, 0, sizeof(sc));
	sc.driver = (char *)"scd4x";
	sc.dev.device = (char *)FAKE_NODE;
	conf.sensors = &sc;
	conf.nsensors = 1;
	/* The datasheet's serial example. */
	WRITE(0x44, EREMOTEIO, 0xF3, 0x2D);
	WRITE(0x45, EREMOTEIO, 0xF3, 0x2D);
	WRITE(0x44, EREMOTEIO, 0x89);
	WRITE(0x45, 0, 0x89);
	read_fails(0x45, 6, EREMOTEIO);
	WRITE(0x62, 0, 0x36, 0x82);
	READ(0x62, 1000, 0xF8, 0x96, 0x31, 0x9F, 0x07, 0xC2, 0x3B, 0xB3, 0xC5);
	assert_int_equal(scan(&conf, &text), 1);
	assert_string_equal(text,
	    "# /dev/i2c-fake 0x62: SCD4x, serial f8969f073bb3\n"
	    "{ id = \"scd4x-62\"; zone = \"CHANGE-ME\"; driver = \"scd4x\"; "
	    "device = \"/dev/i2c-fake\"; address = 0x62; interval = 10; },\n");
	free(text);

	WRITE(0x44, 0, 0xF3, 0x2D);
	READ(0x44, 0, 0x80, 0x10, 0xE2);	/* bad CRC: not an SHT3x */
	WRITE(0x45, EREMOTEIO, 0xF3, 0x2D);
	WRITE(0x44, EREMOTEIO, 0x89);
	WRITE(0x45, EREMOTEIO, 0x89);
	WRITE(0x62, EREMOTEIO, 0x36, 0x82);
	WRITE(0x62, EREMOTEIO, 0xE4, 0xB8);
	assert_int_equal(scan(&conf, &text), 0);
	assert_string_equal(text, "# /dev/i2c-fake: no SHT3x, SHT4x or SCD4x at 0x44, 0x45, 0x62\n");
	free(text);
	assert_int_equal(fake.closes, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(sht3x_good, setup, teardown),
		cmocka_unit_test_setup_teardown(crc_datasheet_example, setup, teardown),
		cmocka_unit_test_setup_teardown(sht3x_bad_crc, setup, teardown),
		cmocka_unit_test_setup_teardown(sht3x_nack, setup, teardown),
		cmocka_unit_test_setup_teardown(sht3x_gone_and_back, setup, teardown),
		cmocka_unit_test_setup_teardown(node_missing_at_open, setup, teardown),
		cmocka_unit_test_setup_teardown(sht3x_range, setup, teardown),
		cmocka_unit_test_setup_teardown(sht4x_good, setup, teardown),
		cmocka_unit_test_setup_teardown(sht4x_clamp_and_crc, setup, teardown),
		cmocka_unit_test_setup_teardown(scd4x_protocol, setup, teardown),
		cmocka_unit_test_setup_teardown(scd4x_already_measuring, setup, teardown),
		cmocka_unit_test_setup_teardown(scd4x_absent, setup, teardown),
		cmocka_unit_test_setup_teardown(scd4x_restarts_after_silence, setup, teardown),
		cmocka_unit_test_setup_teardown(scd4x_bad_crc, setup, teardown),
		cmocka_unit_test_setup_teardown(scd4x_range, setup, teardown),
		cmocka_unit_test_setup_teardown(scd4x_gone_and_back, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_config, setup, teardown),
		cmocka_unit_test_setup_teardown(small_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(descriptors, setup, teardown),
		cmocka_unit_test_setup_teardown(scan_buses, setup, teardown),
		cmocka_unit_test_setup_teardown(scan_default_and_serials, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
