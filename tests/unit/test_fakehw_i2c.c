/*
 * The fake I2C buses of tests/fakehw/i2c.c (compiled in here: the unit
 * test rule links only tests/lib), first frame by frame against the bytes
 * the datasheets give, then with the real sht3x, sht4x and scd4x drivers
 * on top, as the daemon built as coldgated-fakehw runs them.  Each test
 * makes its own fake directory (COLDGATE_FAKEHW_I2C) under /tmp.
 */
// WRAP: open close ioctl
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

#include "../fakehw/i2c.c"

#include "config.h"
#include "sensor.h"

extern const struct sensor_driver sht3x_driver;
extern const struct sensor_driver sht4x_driver;
extern const struct sensor_driver scd4x_driver;

static char dir[64];

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A shell command that must succeed (paths come from mkdtemp: no quotes). */
static void
run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

/* Write DIR/i2c-bus/0xaddr: the part there. */
static void
part(int bus, unsigned addr, const char *line)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/i2c-%d/0x%02x", dir, bus, addr);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "%s\n", line);
	fclose(f);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int
setup(void **st)
{
	(void)st;
	snprintf(dir, sizeof(dir), "/tmp/coldgate-fakei2c-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	setenv(FAKE_I2C_ENV, dir, 1);
	setenv(FAKE_I2C_PERIOD_ENV, "300", 1);
	run("mkdir '%s/i2c-1'", dir);
	memset(fi2c_parts, 0, sizeof(fi2c_parts));
	return 0;
}

static int
teardown(void **st)
{
	int left = 0;

	(void)st;
	/* Close what a failed test left open, so the next one starts clean. */
	for (size_t i = 0; i < FI2C_MAX_FDS; i++)
		if (fi2c_fds[i].used) {
			close(fi2c_fds[i].fd);
			left++;
		}
	run("rm -rf '%s'", dir);
	unsetenv(FAKE_I2C_ENV);
	unsetenv(FAKE_I2C_PERIOD_ENV);
	assert_int_equal(left, 0);		/* every fake fd was closed */
	return 0;
}

/* One message; 0 or the errno it failed with. */
static int
xfer(int fd, uint16_t addr, uint16_t flags, uint8_t *buf, uint16_t len)
{
	struct i2c_msg m = { .addr = addr, .flags = flags, .len = len, .buf = buf };
	struct i2c_rdwr_ioctl_data d = { .msgs = &m, .nmsgs = 1 };
	int rc = ioctl(fd, I2C_RDWR, &d);

	if (rc < 0)
		return errno;
	assert_int_equal(rc, 1);
	return 0;
}

#define CMD(fd, addr, ...)	xfer(fd, addr, 0, (uint8_t[]){ __VA_ARGS__ }, \
				    sizeof((uint8_t[]){ __VA_ARGS__ }))
/* Read sizeof(want) bytes and compare them with want. */
#define ANSWER(fd, addr, ...) do {						\
	const uint8_t want_[] = { __VA_ARGS__ };				\
	uint8_t got_[sizeof(want_)];						\
	assert_int_equal(xfer(fd, addr, I2C_M_RD, got_, sizeof(got_)), 0);	\
	assert_memory_equal(got_, want_, sizeof(want_));			\
} while (0)

/*
 * A read of n bytes after_ms after a command given at t0 is NACKed while the
 * part is busy (busy_ms): asserted when the read came soon enough to tell
 * (a loaded machine may take longer to get there).
 */
/*
 * A read while the part still measures is NACKed.  On a loaded machine the
 * read may come after the measurement is done and take the answer; then
 * the measurement (cmd) is started again, so the caller's ANSWER after its
 * own wait still has one to read.
 */
static void
early_read(int fd, uint16_t addr, size_t n, int64_t t0, long after_ms, long busy_ms,
    const uint8_t *cmd, uint16_t ncmd)
{
	uint8_t buf[9], again[4];
	int rc;

	assert_true(ncmd <= sizeof(again));
	memcpy(again, cmd, ncmd);
	sleep_ms(after_ms);
	rc = xfer(fd, addr, I2C_M_RD, buf, (uint16_t)n);
	if (fi2c_now() - t0 < busy_ms * FI2C_MS)
		assert_int_equal(rc, EREMOTEIO);
	else if (rc == 0)
		assert_int_equal(xfer(fd, addr, 0, again, ncmd), 0);
}

static int
open_bus(const char *node)
{
	int fd = open(node, O_RDWR | O_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

/* /dev/i2c-N opens while DIR/i2c-N exists; other paths are untouched. */
static void
nodes(void **st)
{
	char path[256];
	unsigned long funcs = 0;
	int fd, other;

	(void)st;
	fd = open_bus("/dev/i2c-1");
	assert_int_equal(fi2c_bus_of(fd), 1);
	assert_int_equal(ioctl(fd, I2C_FUNCS, &funcs), 0);
	assert_true(funcs & I2C_FUNC_I2C);
	errno = 0;
	assert_int_equal(open("/dev/i2c-2", O_RDWR), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(open("/dev/i2c-x", O_RDWR), -1);
	assert_int_equal(open("/dev/i2c-1x", O_RDWR), -1);
	/* Any other path is a real open, with its mode. */
	snprintf(path, sizeof(path), "%s/plain", dir);
	other = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(other >= 0);
	assert_int_equal(fi2c_bus_of(other), -1);
	assert_int_equal(write(other, "x", 1), 1);
	assert_int_equal(close(other), 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(fi2c_bus_of(fd), -1);
	/* Without the variable nothing is faked. */
	unsetenv(FAKE_I2C_ENV);
	fd = open("/dev/i2c-1", O_RDWR);
	if (fd >= 0) {			/* a real bus on this machine */
		assert_int_equal(fi2c_bus_of(fd), -1);
		close(fd);
	}
}

/* SHT3x: 25.0 C / 60.0 %RH are 0x6666 / 0x9999; NACK until 15 ms have passed; read once. */
static void
sht3x_frames(void **st)
{
	int64_t t0;
	int fd;

	(void)st;
	part(1, 0x44, "sht3x 25.0 60.0");
	fd = open_bus("/dev/i2c-1");
	t0 = fi2c_now();
	assert_int_equal(CMD(fd, 0x44, 0x24, 0x00), 0);
	early_read(fd, 0x44, 6, t0, 12, 15, (const uint8_t[]){ 0x24, 0x00 }, 2);
	sleep_ms(16);
	ANSWER(fd, 0x44, 0x66, 0x66, 0x93, 0x99, 0x99, 0xBE);
	assert_int_equal(xfer(fd, 0x44, I2C_M_RD, (uint8_t[6]){ 0 }, 6), EREMOTEIO);
	/* Status (past the answer the bus reads 0xFF), and a master stopping after the first word. */
	assert_int_equal(CMD(fd, 0x44, 0xF3, 0x2D), 0);
	ANSWER(fd, 0x44, 0x80, 0x10, 0xE1, 0xFF);
	assert_int_equal(CMD(fd, 0x44, 0x24, 0x00), 0);
	sleep_ms(16);
	ANSWER(fd, 0x44, 0x66, 0x66, 0x93);
	/* Unknown commands and one-byte ones are NACKed; nobody at 0x45. */
	assert_int_equal(CMD(fd, 0x44, 0x12, 0x34), EREMOTEIO);
	assert_int_equal(CMD(fd, 0x44, 0x89), EREMOTEIO);
	assert_int_equal(CMD(fd, 0x44, 0x24, 0x00, 0x00), EREMOTEIO);
	assert_int_equal(CMD(fd, 0x45, 0x24, 0x00), EREMOTEIO);
	/* badcrc corrupts the first word's CRC only. */
	part(1, 0x44, "sht3x 25.0 60.0 badcrc");
	assert_int_equal(CMD(fd, 0x44, 0x24, 0x00), 0);
	sleep_ms(16);
	ANSWER(fd, 0x44, 0x66, 0x66, 0x6C, 0x99, 0x99, 0xBE);
	/* A garbled file is no part. */
	part(1, 0x44, "sht3x 25.0");
	assert_int_equal(CMD(fd, 0x44, 0x24, 0x00), EREMOTEIO);
	part(1, 0x44, "sht3x 25.0 60.0 crc");
	assert_int_equal(CMD(fd, 0x44, 0x24, 0x00), EREMOTEIO);
	close(fd);
}

/* SHT4x: one-byte commands, RH = -6 + 125 S / 65535, 8.3 ms. */
static void
sht4x_frames(void **st)
{
	int64_t t0;
	int fd;

	(void)st;
	part(1, 0x45, "sht4x 25.0 56.5");
	fd = open_bus("/dev/i2c-1");
	t0 = fi2c_now();
	assert_int_equal(CMD(fd, 0x45, 0xFD), 0);
	early_read(fd, 0x45, 6, t0, 6, 8, (const uint8_t[]){ 0xFD }, 1);
	sleep_ms(9);
	ANSWER(fd, 0x45, 0x66, 0x66, 0x93, 0x80, 0x00, 0xA2);
	assert_int_equal(CMD(fd, 0x45, 0x89), 0);
	sleep_ms(2);
	ANSWER(fd, 0x45, 0x12, 0x34, 0x37, 0x56, 0x78, 0x7D);
	assert_int_equal(CMD(fd, 0x45, 0xF3, 0x2D), EREMOTEIO);
	/* Values beyond the raw range are clamped as the ADC would. */
	part(1, 0x45, "sht4x 200 -10");
	assert_int_equal(CMD(fd, 0x45, 0xFD), 0);
	sleep_ms(9);
	ANSWER(fd, 0x45, 0xFF, 0xFF, 0xAC, 0x00, 0x00, 0x81);
	close(fd);
}

/*
 * SCD4x: start, then data every period (300 ms here); read_measurement
 * gives the datasheet's example frame; start and serial are NACKed while
 * measuring; after stop it is deaf for 500 ms.
 */
static void
scd4x_frames(void **st)
{
	int64_t t0;
	int fd;

	(void)st;
	part(1, 0x62, "scd4x 500 25.0016 37.001");
	fd = open_bus("/dev/i2c-1");
	assert_int_equal(CMD(fd, 0x62, 0x36, 0x82), 0);		/* idle: serial */
	sleep_ms(1);
	ANSWER(fd, 0x62, 0xF8, 0x96, 0x31, 0x9F, 0x07, 0xC2, 0x3B, 0xB3, 0xC5);
	assert_int_equal(CMD(fd, 0x62, 0xE4, 0xB8), 0);		/* idle: no data */
	sleep_ms(1);
	ANSWER(fd, 0x62, 0x80, 0x00, 0xA2);
	assert_int_equal(CMD(fd, 0x62, 0x3F, 0x86), EREMOTEIO);	/* stop when idle */
	assert_int_equal(CMD(fd, 0x62, 0x21, 0xB1), 0);
	assert_int_equal(CMD(fd, 0x62, 0x21, 0xB1), EREMOTEIO);
	assert_int_equal(CMD(fd, 0x62, 0x36, 0x82), EREMOTEIO);
	t0 = fi2c_now();
	assert_int_equal(CMD(fd, 0x62, 0xE4, 0xB8), 0);
	early_read(fd, 0x62, 3, t0, 0, 1, (const uint8_t[]){ 0xE4, 0xB8 }, 2);
	sleep_ms(1);
	ANSWER(fd, 0x62, 0x80, 0x00, 0xA2);
	assert_int_equal(CMD(fd, 0x62, 0xEC, 0x05), 0);
	sleep_ms(1);
	assert_int_equal(xfer(fd, 0x62, I2C_M_RD, (uint8_t[9]){ 0 }, 9), EREMOTEIO);
	sleep_ms(310);
	assert_int_equal(CMD(fd, 0x62, 0xE4, 0xB8), 0);
	sleep_ms(1);
	ANSWER(fd, 0x62, 0x80, 0x06, 0x04);
	assert_int_equal(CMD(fd, 0x62, 0xEC, 0x05), 0);
	sleep_ms(1);
	ANSWER(fd, 0x62, 0x01, 0xF4, 0x33, 0x66, 0x67, 0xA2, 0x5E, 0xB9, 0x3C);
	/* Read out: no new data until the next period. */
	assert_int_equal(CMD(fd, 0x62, 0xE4, 0xB8), 0);
	sleep_ms(1);
	ANSWER(fd, 0x62, 0x80, 0x00, 0xA2);
	/* T and RH divide by 2^16: 40000 and 60000 exactly. */
	part(1, 0x62, "scd4x 40000 61.8115234375 91.552734375");
	sleep_ms(310);
	assert_int_equal(CMD(fd, 0x62, 0xEC, 0x05), 0);
	sleep_ms(1);
	ANSWER(fd, 0x62, 0x9C, 0x40, 0x45, 0x9C, 0x40, 0x45, 0xEA, 0x60, 0xA2);
	assert_int_equal(CMD(fd, 0x62, 0x3F, 0x86), 0);
	assert_int_equal(CMD(fd, 0x62, 0xE4, 0xB8), EREMOTEIO);
	assert_int_equal(CMD(fd, 0x62, 0x21, 0xB1), EREMOTEIO);
	sleep_ms(510);
	assert_int_equal(CMD(fd, 0x62, 0x21, 0xB1), 0);
	close(fd);
}

/* An adapter unplugged under an open fd: ENODEV; malformed requests: EINVAL. */
static void
bus_gone(void **st)
{
	struct i2c_rdwr_ioctl_data d = { .msgs = NULL, .nmsgs = 0 };
	int fd;

	(void)st;
	part(1, 0x44, "sht3x 25.0 60.0");
	fd = open_bus("/dev/i2c-1");
	assert_int_equal(ioctl(fd, I2C_RDWR, &d), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(xfer(fd, 0x80, 0, (uint8_t[2]){ 0x24, 0x00 }, 2), EINVAL);
	run("mv '%s/i2c-1' '%s/gone'", dir, dir);
	assert_int_equal(CMD(fd, 0x44, 0x24, 0x00), ENODEV);
	run("mv '%s/gone' '%s/i2c-1'", dir, dir);
	assert_int_equal(CMD(fd, 0x44, 0x24, 0x00), 0);
	close(fd);
}

static void *
drv_open(const struct sensor_driver *drv, const char *node, int address)
{
	struct config conf;
	struct sensor_cfg sc;
	void *state = NULL;

	memset(&conf, 0, sizeof(conf));
	memset(&sc, 0, sizeof(sc));
	sc.dev.device = node;
	sc.dev.address = address;
	assert_int_equal(drv->open(&conf, &sc, &state), 0);
	return state;
}

static int
drv_read(const struct sensor_driver *drv, void *state, double elapsed, struct reading *r)
{
	struct sensor_clock clk = { 0, elapsed };

	return drv->read(state, &clk, r, SENSOR_MAX_READINGS);
}

/* Half a step of the raw word: what the encoding may round away. */
#define T_STEP		(175.0 / 65535.0)
#define RH_STEP		(125.0 / 65535.0)

/* The real SHT drivers read back what the files say, to within half a step. */
static void
drivers_sht(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	void *a, *b;

	(void)st;
	part(1, 0x44, "sht3x 21.5 55.0");
	part(1, 0x45, "sht4x 4.0 90.0");
	a = drv_open(&sht3x_driver, "/dev/i2c-1", -1);
	b = drv_open(&sht4x_driver, "/dev/i2c-1", 0x45);
	assert_int_equal(drv_read(&sht3x_driver, a, 0, r), 2);
	assert_true(fabs(r[0].value - 21.5) <= T_STEP / 2);
	assert_true(fabs(r[1].value - 55.0) <= RH_STEP / 2);
	assert_int_equal(drv_read(&sht4x_driver, b, 0, r), 2);
	assert_true(fabs(r[0].value - 4.0) <= T_STEP / 2);
	assert_true(fabs(r[1].value - 90.0) <= RH_STEP / 2);
	/* Saturated: the SHT4x crops RH; -42 C is beyond the SHT3x's range. */
	part(1, 0x44, "sht3x -42 50");
	part(1, 0x45, "sht4x 4.0 105");
	assert_int_equal(drv_read(&sht3x_driver, a, 1, r), -ERANGE);
	assert_int_equal(drv_read(&sht4x_driver, b, 1, r), 2);
	assert_true(r[1].value == 100.0);
	/* badcrc, unplugged part, unplugged adapter and back. */
	part(1, 0x44, "sht3x 21.5 55.0 badcrc");
	assert_int_equal(drv_read(&sht3x_driver, a, 2, r), -EBADMSG);
	run("rm '%s/i2c-1/0x44'", dir);
	assert_int_equal(drv_read(&sht3x_driver, a, 3, r), -ETIMEDOUT);
	part(1, 0x44, "sht3x 21.5 55.0");
	run("mv '%s/i2c-1' '%s/gone'", dir, dir);
	assert_int_equal(drv_read(&sht3x_driver, a, 4, r), -ENODEV);
	assert_int_equal(drv_read(&sht3x_driver, a, 5, r), -ENODEV);
	run("mv '%s/gone' '%s/i2c-1'", dir, dir);
	assert_int_equal(drv_read(&sht3x_driver, a, 6, r), 2);
	assert_true(fabs(r[0].value - 21.5) <= T_STEP / 2);
	sht3x_driver.close(a);
	sht4x_driver.close(b);
}

/*
 * The real SCD4x driver: nothing for the first period, then the file's
 * values; a part unplugged and back comes back idle and is started again;
 * a driver reopened at once after a close finds the part deaf (the stop's
 * 500 ms) and gets it going on a later read.
 */
static void
drivers_scd4x(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	void *s;

	(void)st;
	part(1, 0x62, "scd4x 850 22.0 88.0");
	s = drv_open(&scd4x_driver, "/dev/i2c-1", -1);
	assert_int_equal(drv_read(&scd4x_driver, s, 0, r), 0);
	sleep_ms(310);
	assert_int_equal(drv_read(&scd4x_driver, s, 0.31, r), 3);
	assert_int_equal(r[0].q, Q_CO2);
	assert_true(r[0].value == 850.0);
	assert_int_equal(r[1].q, Q_TEMPERATURE);
	assert_true(fabs(r[1].value - 22.0) <= 175.0 / 65536.0 / 2);
	assert_int_equal(r[2].q, Q_HUMIDITY);
	assert_true(fabs(r[2].value - 88.0) <= 100.0 / 65536.0 / 2);
	assert_int_equal(drv_read(&scd4x_driver, s, 0.32, r), 0);
	part(1, 0x62, "scd4x 850 22.0 88.0 badcrc");
	sleep_ms(310);
	assert_int_equal(drv_read(&scd4x_driver, s, 0.63, r), -EBADMSG);	/* data-ready's CRC */
	/* Unplugged: no answer; plugged back: started again, data after a period. */
	run("rm '%s/i2c-1/0x62'", dir);
	assert_int_equal(drv_read(&scd4x_driver, s, 0.64, r), -ETIMEDOUT);
	part(1, 0x62, "scd4x 900 20.0 80.0");
	assert_int_equal(drv_read(&scd4x_driver, s, 0.65, r), 0);
	sleep_ms(310);
	assert_int_equal(drv_read(&scd4x_driver, s, 0.96, r), 3);
	assert_true(r[0].value == 900.0);
	/* Closed (stop) and reopened at once: deaf for 500 ms, then fine. */
	scd4x_driver.close(s);
	s = drv_open(&scd4x_driver, "/dev/i2c-1", -1);
	assert_int_equal(drv_read(&scd4x_driver, s, 0.97, r), -ETIMEDOUT);
	sleep_ms(510);
	assert_int_equal(drv_read(&scd4x_driver, s, 1.48, r), 0);
	sleep_ms(310);
	assert_int_equal(drv_read(&scd4x_driver, s, 1.79, r), 3);
	scd4x_driver.close(s);
}

/* Scan finds the three parts on the fake bus; a measuring SCD4x is "busy". */
static void
drivers_scan(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];
	struct sensor_cfg sc;
	struct config conf;
	char *text = NULL;
	size_t size;
	FILE *f;
	void *s;

	(void)st;
	part(1, 0x44, "sht3x 21.5 55.0");
	part(1, 0x45, "sht4x 4.0 90.0");
	part(1, 0x62, "scd4x 850 22.0 88.0");
	assert_non_null(f = open_memstream(&text, &size));
	assert_int_equal(sht3x_driver.scan(NULL, f), 3);
	fclose(f);
	assert_string_equal(text,
	    "# /dev/i2c-1 0x44: SHT3x, status 0x8010\n"
	    "{ id = \"sht3x-44\"; zone = \"CHANGE-ME\"; driver = \"sht3x\"; "
	    "device = \"/dev/i2c-1\"; address = 0x44; interval = 10; },\n"
	    "# /dev/i2c-1 0x45: SHT4x, serial 12345678\n"
	    "{ id = \"sht4x-45\"; zone = \"CHANGE-ME\"; driver = \"sht4x\"; "
	    "device = \"/dev/i2c-1\"; address = 0x45; interval = 10; },\n"
	    "# /dev/i2c-1 0x62: SCD4x, serial f8969f073bb3\n"
	    "{ id = \"scd4x-62\"; zone = \"CHANGE-ME\"; driver = \"scd4x\"; "
	    "device = \"/dev/i2c-1\"; address = 0x62; interval = 10; },\n");
	free(text);

	/* The SCD4x measuring; the bus named by a configured sensor. */
	s = drv_open(&scd4x_driver, "/dev/i2c-1", -1);
	assert_int_equal(drv_read(&scd4x_driver, s, 0, r), 0);
	memset(&conf, 0, sizeof(conf));
	memset(&sc, 0, sizeof(sc));
	sc.driver = (char *)"scd4x";
	sc.dev.device = (char *)"/dev/i2c-1";
	conf.sensors = &sc;
	conf.nsensors = 1;
	assert_non_null(f = open_memstream(&text, &size));
	assert_int_equal(sht3x_driver.scan(&conf, f), 3);
	fclose(f);
	assert_non_null(strstr(text, "# /dev/i2c-1 0x62: SCD4x, answers (busy measuring)\n"));
	free(text);
	scd4x_driver.close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(nodes, setup, teardown),
		cmocka_unit_test_setup_teardown(sht3x_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(sht4x_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(scd4x_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(bus_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(drivers_sht, setup, teardown),
		cmocka_unit_test_setup_teardown(drivers_scd4x, setup, teardown),
		cmocka_unit_test_setup_teardown(drivers_scan, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
