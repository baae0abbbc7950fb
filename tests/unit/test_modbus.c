/*
 * The modbus driver against a real Modbus slave (tests/lib/modbus_slave.c)
 * served by libmodbus in a thread: RTU over a pseudo-terminal, TCP on
 * 127.0.0.1.  No hardware.  Timeouts are short (200 ms) so that the tests
 * that wait for silence stay quick; no test asserts how long anything took
 * beyond "at least the timeout".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "sensor.h"
#include "lib/modbus_slave.h"

extern const struct sensor_driver modbus_driver;

#define TIMEOUT_MS	200
#define UNSET		(-999.0)

/* The two presets as the configuration parser fills them in. */
static struct modbus_reg holding_rh_t[] = {
	{ Q_HUMIDITY, MODBUS_FN_HOLDING, 0, 0.1, 0, false },
	{ Q_TEMPERATURE, MODBUS_FN_HOLDING, 1, 0.1, 0, true },
};
static struct modbus_reg input_t_rh[] = {
	{ Q_TEMPERATURE, MODBUS_FN_INPUT, 1, 0.1, 0, true },
	{ Q_HUMIDITY, MODBUS_FN_INPUT, 2, 0.1, 0, false },
};
#define NREGS(a)	(sizeof(a) / sizeof((a)[0]))

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* A sensor on the slave's line (RTU or TCP), at unit, with map regs. */
static void
cfg_on(struct sensor_cfg *sc, const struct modbus_slave *s, int unit,
    struct modbus_reg *regs, size_t nregs)
{
	static char ids[256][8];	/* "mb-UNIT": a config's id outlives the call */

	memset(sc, 0, sizeof(*sc));
	snprintf(ids[unit & 255], sizeof(ids[0]), "mb-%d", unit);
	sc->id = ids[unit & 255];
	sc->zone = "room-1";
	sc->driver = "modbus";
	sc->kind = SENSOR_MODBUS;
	sc->interval = 10;
	if (modbus_slave_port(s) > 0) {
		sc->modbus.host = (char *)"127.0.0.1";
		sc->modbus.port = modbus_slave_port(s);
	} else
		sc->modbus.device = modbus_slave_path(s);
	sc->modbus.unit = unit;
	sc->modbus.timeout_ms = TIMEOUT_MS;
	sc->modbus.regs = regs;
	sc->modbus.nregs = nregs;
}

static void *
open_ok(const struct config *conf, const struct sensor_cfg *sc)
{
	void *state = NULL;

	assert_int_equal(modbus_driver.open(conf, sc, &state), 0);
	assert_non_null(state);
	return state;
}

/* One read; a failed read must leave out alone. */
static int
rd(void *state, struct reading *out)
{
	struct sensor_clock clk = { 0, 0 };
	int rc;

	for (int i = 0; i < SENSOR_MAX_READINGS; i++)
		out[i] = (struct reading){ (enum quantity)-1, UNSET };
	rc = modbus_driver.read(state, &clk, out, SENSOR_MAX_READINGS);
	if (rc < 0)
		for (int i = 0; i < SENSOR_MAX_READINGS; i++)
			assert_true(out[i].value == UNSET);
	return rc;
}

static void
expect2(void *state, enum quantity q0, double v0, enum quantity q1, double v1)
{
	struct reading r[SENSOR_MAX_READINGS];

	assert_int_equal(rd(state, r), 2);
	assert_int_equal(r[0].q, q0);
	assert_int_equal(r[1].q, q1);
	if (r[0].value != v0 || r[1].value != v1)
		fail_msg("read %.17g %.17g, want %.17g %.17g", r[0].value, r[1].value, v0, v1);
}

static struct modbus_slave *
slave(bool tcp, const char *link)
{
	struct modbus_slave *s = tcp ? modbus_slave_start_tcp(0) : modbus_slave_start_rtu(link);

	if (s == NULL)
		fail_msg("cannot start the slave: %s", strerror(errno));
	return s;
}

/* Unit 1 as a holding-rh-t transmitter showing RH 55.3, T -2.5. */
static void
set_holding(struct modbus_slave *s, int unit, uint16_t rh, uint16_t t)
{
	assert_int_equal(modbus_slave_add_unit(s, unit), 0);
	assert_int_equal(modbus_slave_set_reg(s, unit, MODBUS_SLAVE_HOLDING, 0, rh), 0);
	assert_int_equal(modbus_slave_set_reg(s, unit, MODBUS_SLAVE_HOLDING, 1, t), 0);
}

static void
set_input(struct modbus_slave *s, int unit, uint16_t t, uint16_t rh)
{
	assert_int_equal(modbus_slave_add_unit(s, unit), 0);
	assert_int_equal(modbus_slave_set_reg(s, unit, MODBUS_SLAVE_INPUT, 1, t), 0);
	assert_int_equal(modbus_slave_set_reg(s, unit, MODBUS_SLAVE_INPUT, 2, rh), 0);
}

/* Poll until the slave has written n answers to unit (a late one). */
static void
wait_replies(struct modbus_slave *s, int unit, unsigned n)
{
	double end = now() + 10;

	while (modbus_slave_replies(s, unit) < n && now() < end)
		sleep_ms(5);
	assert_true(modbus_slave_replies(s, unit) >= n);
}

/* ---- the presets ---- */

static void
preset_holding(bool tcp)
{
	struct modbus_slave *s = slave(tcp, NULL);
	struct config conf = { 0 };
	struct sensor_cfg sc;
	void *st;

	set_holding(s, 1, 553, 0xffe7);
	cfg_on(&sc, s, 1, holding_rh_t, NREGS(holding_rh_t));
	st = open_ok(&conf, &sc);
	expect2(st, Q_HUMIDITY, 55.3, Q_TEMPERATURE, -2.5);
	/* Read again, not cached: the limits of the ranges, exactly. */
	set_holding(s, 1, 1000, 1250);
	expect2(st, Q_HUMIDITY, 100, Q_TEMPERATURE, 125);
	set_holding(s, 1, 0, (uint16_t)-550);
	expect2(st, Q_HUMIDITY, 0, Q_TEMPERATURE, -55);
	modbus_driver.close(st);
	modbus_slave_stop(s);
}

static void
preset_input(bool tcp)
{
	struct modbus_slave *s = slave(tcp, NULL);
	struct config conf = { 0 };
	struct sensor_cfg sc;
	void *st;

	set_input(s, 1, 0xffe7, 553);
	/* Input register 0 and the holding registers must not be what is read. */
	assert_int_equal(modbus_slave_set_reg(s, 1, MODBUS_SLAVE_INPUT, 0, 111), 0);
	set_holding(s, 1, 222, 333);
	cfg_on(&sc, s, 1, input_t_rh, NREGS(input_t_rh));
	st = open_ok(&conf, &sc);
	expect2(st, Q_TEMPERATURE, -2.5, Q_HUMIDITY, 55.3);
	set_input(s, 1, 45, 918);
	expect2(st, Q_TEMPERATURE, 4.5, Q_HUMIDITY, 91.8);
	modbus_driver.close(st);
	modbus_slave_stop(s);
}

static void holding_rh_t_rtu(void **st) { (void)st; preset_holding(false); }
static void holding_rh_t_tcp(void **st) { (void)st; preset_holding(true); }
static void input_t_rh_rtu(void **st) { (void)st; preset_input(false); }
static void input_t_rh_tcp(void **st) { (void)st; preset_input(true); }

/* scale, offset, signedness of a hand-written map; readings in map order. */
static void
explicit_map_scale_offset(void **state)
{
	static struct modbus_reg regs[] = {
		{ Q_CO2, MODBUS_FN_INPUT, 3, 1, 0, false },
		{ Q_TEMPERATURE, MODBUS_FN_HOLDING, 4, 0.01, -40, false },
		{ Q_HUMIDITY, MODBUS_FN_HOLDING, 5, 0.5, 0, false },
		{ Q_DOOR, MODBUS_FN_HOLDING, 6, 0, 0, false },		/* scale 0: 1 */
	};
	struct modbus_slave *s = slave(false, NULL);
	struct config conf = { 0 };
	struct reading r[SENSOR_MAX_READINGS];
	struct sensor_cfg sc;
	void *st;

	(void)state;
	assert_int_equal(modbus_slave_add_unit(s, 9), 0);
	modbus_slave_set_reg(s, 9, MODBUS_SLAVE_INPUT, 3, 40000);
	modbus_slave_set_reg(s, 9, MODBUS_SLAVE_HOLDING, 4, 6025);		/* 60.25 - 40 */
	modbus_slave_set_reg(s, 9, MODBUS_SLAVE_HOLDING, 5, 181);		/* 90.5 */
	modbus_slave_set_reg(s, 9, MODBUS_SLAVE_HOLDING, 6, 1);
	cfg_on(&sc, s, 9, regs, NREGS(regs));
	st = open_ok(&conf, &sc);
	assert_int_equal(rd(st, r), 4);
	assert_int_equal(r[0].q, Q_CO2);
	assert_true(r[0].value == 40000);
	assert_int_equal(r[1].q, Q_TEMPERATURE);
	assert_true(r[1].value == 20.25);
	assert_int_equal(r[2].q, Q_HUMIDITY);
	assert_true(r[2].value == 90.5);
	assert_int_equal(r[3].q, Q_DOOR);
	assert_true(r[3].value == 1);
	/* Too small a buffer is refused before anything is asked. */
	assert_int_equal(modbus_driver.read(st, &(struct sensor_clock){ 0, 0 }, r, 3), -ENOBUFS);
	modbus_driver.close(st);
	modbus_slave_stop(s);
}

/* ---- a shared line ---- */

/* How many of this process's descriptors are open on path. */
static int
fds_on(const char *path)
{
	char link[PATH_MAX], fdpath[300];
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	ssize_t len;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%s", de->d_name);
		if ((len = readlink(fdpath, link, sizeof(link) - 1)) < 0)
			continue;
		link[len] = '\0';
		n += strcmp(link, path) == 0;
	}
	closedir(d);
	return n;
}

/* Two transmitters on one RS485 line, one of each map, read in turn through one descriptor. */
static void
two_units_one_line_rtu(void **state)
{
	struct modbus_slave *s = slave(false, NULL);
	struct config conf = { 0 };
	struct sensor_cfg a, b;
	void *sa, *sb;

	(void)state;
	set_holding(s, 1, 553, 0xffe7);
	set_input(s, 2, 125, 876);
	cfg_on(&a, s, 1, holding_rh_t, NREGS(holding_rh_t));
	cfg_on(&b, s, 2, input_t_rh, NREGS(input_t_rh));
	sa = open_ok(&conf, &a);
	sb = open_ok(&conf, &b);
	assert_int_equal(fds_on(modbus_slave_pty(s)), 1);	/* the slave's own; none opened yet */
	for (int i = 0; i < 3; i++) {
		expect2(sa, Q_HUMIDITY, 55.3, Q_TEMPERATURE, -2.5);
		expect2(sb, Q_TEMPERATURE, 12.5, Q_HUMIDITY, 87.6);
	}
	assert_int_equal(modbus_slave_requests(s, 1), 3);
	assert_int_equal(modbus_slave_requests(s, 2), 3);
	/* The slave's descriptor and ONE of the driver's. */
	assert_int_equal(fds_on(modbus_slave_pty(s)), 2);
	modbus_driver.close(sa);
	expect2(sb, Q_TEMPERATURE, 12.5, Q_HUMIDITY, 87.6);	/* still open for b */
	modbus_driver.close(sb);
	assert_int_equal(fds_on(modbus_slave_pty(s)), 1);	/* the last close closed it */
	modbus_slave_stop(s);
}

static void
two_units_one_connection_tcp(void **state)
{
	struct modbus_slave *s = slave(true, NULL);
	struct config conf = { 0 };
	struct sensor_cfg a, b;
	void *sa, *sb;

	(void)state;
	set_holding(s, 1, 553, 0xffe7);
	set_input(s, 2, 125, 876);
	cfg_on(&a, s, 1, holding_rh_t, NREGS(holding_rh_t));
	cfg_on(&b, s, 2, input_t_rh, NREGS(input_t_rh));
	sa = open_ok(&conf, &a);
	sb = open_ok(&conf, &b);
	assert_int_equal(modbus_slave_connections(s), 0);	/* connects at the first read */
	for (int i = 0; i < 3; i++) {
		expect2(sa, Q_HUMIDITY, 55.3, Q_TEMPERATURE, -2.5);
		expect2(sb, Q_TEMPERATURE, 12.5, Q_HUMIDITY, 87.6);
	}
	assert_int_equal(modbus_slave_connections(s), 1);
	modbus_driver.close(sa);
	modbus_driver.close(sb);
	modbus_slave_stop(s);
}

/* ---- faults ---- */

static void
bad_crc_then_good(bool tcp)
{
	struct modbus_slave *s = slave(tcp, NULL);
	struct config conf = { 0 };
	struct reading r[SENSOR_MAX_READINGS];
	struct sensor_cfg sc;
	void *st;

	set_holding(s, 1, 553, 0xffe7);
	cfg_on(&sc, s, 1, holding_rh_t, NREGS(holding_rh_t));
	st = open_ok(&conf, &sc);
	expect2(st, Q_HUMIDITY, 55.3, Q_TEMPERATURE, -2.5);
	modbus_slave_set_fault(s, 1, MODBUS_SLAVE_BAD_CRC, 0, 1);
	assert_int_equal(rd(st, r), -EBADMSG);
	assert_int_equal(modbus_slave_replies(s, 1), 2);	/* it did answer, badly */
	expect2(st, Q_HUMIDITY, 55.3, Q_TEMPERATURE, -2.5);
	/* Twice in a row, then good. */
	modbus_slave_set_fault(s, 1, MODBUS_SLAVE_BAD_CRC, 0, 2);
	assert_int_equal(rd(st, r), -EBADMSG);
	assert_int_equal(rd(st, r), -EBADMSG);
	expect2(st, Q_HUMIDITY, 55.3, Q_TEMPERATURE, -2.5);
	modbus_driver.close(st);
	modbus_slave_stop(s);
}

static void bad_crc_rtu(void **st) { (void)st; bad_crc_then_good(false); }
/* TCP has no CRC: a frame one byte short; its leftover byte must not spoil the next. */
static void garbled_tcp(void **st) { (void)st; bad_crc_then_good(true); }

static void
exception_answers(bool tcp)
{
	static struct modbus_reg beyond[] = {
		{ Q_TEMPERATURE, MODBUS_FN_HOLDING, 40, 0.1, 0, true },	/* the slave has 0..15 */
	};
	struct modbus_slave *s = slave(tcp, NULL);
	struct config conf = { 0 };
	struct reading r[SENSOR_MAX_READINGS];
	struct sensor_cfg sc, sb;
	void *st, *stb;

	set_holding(s, 1, 553, 0xffe7);
	cfg_on(&sc, s, 1, holding_rh_t, NREGS(holding_rh_t));
	st = open_ok(&conf, &sc);
	modbus_slave_set_fault(s, 1, MODBUS_SLAVE_EXCEPTION, 4, 1);	/* slave device failure */
	assert_int_equal(rd(st, r), -EPROTO);
	expect2(st, Q_HUMIDITY, 55.3, Q_TEMPERATURE, -2.5);
	modbus_slave_set_fault(s, 1, MODBUS_SLAVE_EXCEPTION, 2, 1);	/* illegal data address */
	assert_int_equal(rd(st, r), -EPROTO);
	/* A converter saying its unit did not answer: that is no answer. */
	modbus_slave_set_fault(s, 1, MODBUS_SLAVE_EXCEPTION, 0x0b, 1);
	assert_int_equal(rd(st, r), -ETIMEDOUT);
	expect2(st, Q_HUMIDITY, 55.3, Q_TEMPERATURE, -2.5);
	/* A register the unit does not have: libmodbus' own exception 2. */
	cfg_on(&sb, s, 1, beyond, NREGS(beyond));
	stb = open_ok(&conf, &sb);
	assert_int_equal(rd(stb, r), -EPROTO);
	modbus_driver.close(stb);
	modbus_driver.close(st);
	modbus_slave_stop(s);
}

static void exception_rtu(void **st) { (void)st; exception_answers(false); }
static void exception_tcp(void **st) { (void)st; exception_answers(true); }

static void
silence(bool tcp)
{
	struct modbus_slave *s = slave(tcp, NULL);
	struct config conf = { 0 };
	struct reading r[SENSOR_MAX_READINGS];
	struct sensor_cfg sc;
	double t0, took;
	void *st;

	set_holding(s, 1, 553, 0xffe7);
	cfg_on(&sc, s, 1, holding_rh_t, NREGS(holding_rh_t));
	sc.modbus.timeout_ms = 300;
	st = open_ok(&conf, &sc);
	expect2(st, Q_HUMIDITY, 55.3, Q_TEMPERATURE, -2.5);	/* connected already */
	modbus_slave_set_fault(s, 1, MODBUS_SLAVE_SILENT, 0, -1);
	t0 = now();
	assert_int_equal(rd(st, r), -ETIMEDOUT);
	took = now() - t0;
	if (took < 0.29)
		fail_msg("gave up after %.3f s, before the 0.3 s timeout", took);
	assert_int_equal(rd(st, r), -ETIMEDOUT);
	assert_int_equal(modbus_slave_requests(s, 1), 3);	/* it did ask */
	modbus_slave_set_fault(s, 1, MODBUS_SLAVE_OK, 0, 0);
	expect2(st, Q_HUMIDITY, 55.3, Q_TEMPERATURE, -2.5);
	modbus_driver.close(st);
	modbus_slave_stop(s);
}

static void silence_rtu(void **st) { (void)st; silence(false); }
static void silence_tcp(void **st) { (void)st; silence(true); }

/* A unit id nobody answers to on the line: the request goes out, silence comes back. */
static void
absent_unit(void **state)
{
	struct modbus_slave *s = slave(false, NULL);
	struct config conf = { 0 };
	struct reading r[SENSOR_MAX_READINGS];
	struct sensor_cfg sc;
	void *st;

	(void)state;
	set_holding(s, 1, 553, 0xffe7);
	cfg_on(&sc, s, 7, holding_rh_t, NREGS(holding_rh_t));
	st = open_ok(&conf, &sc);
	assert_int_equal(rd(st, r), -ETIMEDOUT);
	assert_int_equal(modbus_slave_requests(s, 0), 1);	/* heard on the line */
	assert_int_equal(modbus_slave_requests(s, 1), 0);	/* and not taken by unit 1 */
	modbus_driver.close(st);
	modbus_slave_stop(s);
}

/*
 * An answer that comes after the timeout must not be taken for the answer
 * to the next request: it carries the old values, the next read must give
 * the new ones.
 */
static void
late_answer(bool tcp)
{
	struct modbus_slave *s = slave(tcp, NULL);
	struct config conf = { 0 };
	struct reading r[SENSOR_MAX_READINGS];
	struct sensor_cfg sc;
	void *st;

	set_holding(s, 1, 553, 0xffe7);
	cfg_on(&sc, s, 1, holding_rh_t, NREGS(holding_rh_t));
	sc.modbus.timeout_ms = 150;
	st = open_ok(&conf, &sc);
	expect2(st, Q_HUMIDITY, 55.3, Q_TEMPERATURE, -2.5);
	modbus_slave_set_fault(s, 1, MODBUS_SLAVE_LATE, 400, 1);
	assert_int_equal(rd(st, r), -ETIMEDOUT);
	wait_replies(s, 1, 2);
	sleep_ms(100);			/* the late answer reaches the driver's side */
	set_holding(s, 1, 600, 100);
	expect2(st, Q_HUMIDITY, 60, Q_TEMPERATURE, 10);
	expect2(st, Q_HUMIDITY, 60, Q_TEMPERATURE, 10);
	modbus_driver.close(st);
	modbus_slave_stop(s);
}

static void late_answer_rtu(void **st) { (void)st; late_answer(false); }
static void late_answer_tcp(void **st) { (void)st; late_answer(true); }

static void
implausible(void **state)
{
	static struct modbus_reg co2[] = { { Q_CO2, MODBUS_FN_HOLDING, 5, 1, 0, false } };
	struct modbus_slave *s = slave(false, NULL);
	struct config conf = { 0 };
	struct reading r[SENSOR_MAX_READINGS];
	struct sensor_cfg sc, sc2;
	void *st, *st2;

	(void)state;
	set_holding(s, 1, 553, 1251);				/* 125.1 C */
	cfg_on(&sc, s, 1, holding_rh_t, NREGS(holding_rh_t));
	st = open_ok(&conf, &sc);
	assert_int_equal(rd(st, r), -ERANGE);
	set_holding(s, 1, 553, (uint16_t)-551);			/* -55.1 C */
	assert_int_equal(rd(st, r), -ERANGE);
	set_holding(s, 1, 1001, 100);				/* 100.1 %RH */
	assert_int_equal(rd(st, r), -ERANGE);
	set_holding(s, 1, 0xfff6, 100);				/* unsigned: 6553.4 %RH */
	assert_int_equal(rd(st, r), -ERANGE);
	set_holding(s, 1, 553, 100);
	expect2(st, Q_HUMIDITY, 55.3, Q_TEMPERATURE, 10);

	modbus_slave_set_reg(s, 1, MODBUS_SLAVE_HOLDING, 5, 40001);
	cfg_on(&sc2, s, 1, co2, NREGS(co2));
	st2 = open_ok(&conf, &sc2);
	assert_int_equal(rd(st2, r), -ERANGE);
	modbus_slave_set_reg(s, 1, MODBUS_SLAVE_HOLDING, 5, 415);
	assert_int_equal(rd(st2, r), 1);
	assert_int_equal(r[0].q, Q_CO2);
	assert_true(r[0].value == 415);
	modbus_driver.close(st2);
	modbus_driver.close(st);
	modbus_slave_stop(s);
}

/* ---- the port comes and goes ---- */

/* A USB adapter missing at start: open() succeeds, reads fail -ENODEV. */
static void
missing_port_at_start(void **state)
{
	struct modbus_slave *s;
	struct config conf = { 0 };
	struct reading r[SENSOR_MAX_READINGS];
	struct sensor_cfg sc;
	void *st;
	int port;

	(void)state;
	memset(&sc, 0, sizeof(sc));
	sc.modbus.device = (char *)"/nonexistent/ttyUSB9";
	sc.modbus.unit = 1;
	sc.modbus.regs = holding_rh_t;
	sc.modbus.nregs = NREGS(holding_rh_t);
	sc.modbus.timeout_ms = TIMEOUT_MS;
	st = open_ok(&conf, &sc);
	assert_int_equal(rd(st, r), -ENODEV);
	assert_int_equal(rd(st, r), -ENODEV);
	modbus_driver.close(st);

	/* Not a serial port at all. */
	sc.modbus.device = (char *)"/dev/null";
	st = open_ok(&conf, &sc);
	assert_int_equal(rd(st, r), -ENOTTY);
	modbus_driver.close(st);

	/* A converter that refuses the connection: a port nobody listens on. */
	s = slave(true, NULL);
	port = modbus_slave_port(s);
	modbus_slave_stop(s);
	memset(&sc, 0, sizeof(sc));
	sc.modbus.host = (char *)"127.0.0.1";
	sc.modbus.port = port;
	sc.modbus.unit = 1;
	sc.modbus.regs = holding_rh_t;
	sc.modbus.nregs = NREGS(holding_rh_t);
	sc.modbus.timeout_ms = TIMEOUT_MS;
	st = open_ok(&conf, &sc);
	assert_int_equal(rd(st, r), -ETIMEDOUT);
	modbus_driver.close(st);
}

/*
 * The pty's master side closes (the adapter is pulled): an error; a new
 * pty under the same name (plugged back in, same by-id name): reads again,
 * without the sensor being opened again.
 */
static void
port_vanishes_rtu(void **state)
{
	char dir[] = "/tmp/coldgate-modbus-XXXXXX", link[sizeof(dir) + 16];
	struct config conf = { 0 };
	struct reading r[SENSOR_MAX_READINGS];
	struct modbus_slave *s;
	struct sensor_cfg sc;
	void *st;
	int rc;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(link, sizeof(link), "%s/ttyUSB0", dir);
	s = slave(false, link);
	set_holding(s, 1, 553, 0xffe7);
	cfg_on(&sc, s, 1, holding_rh_t, NREGS(holding_rh_t));
	assert_string_equal(sc.modbus.device, link);
	st = open_ok(&conf, &sc);
	expect2(st, Q_HUMIDITY, 55.3, Q_TEMPERATURE, -2.5);

	modbus_slave_stop(s);
	rc = rd(st, r);
	if (rc != -ENODEV)
		fail_msg("read on a vanished port: %d (%s), want -ENODEV", rc, strerror(-rc));
	assert_int_equal(rd(st, r), -ENODEV);	/* the name dangles */

	s = slave(false, link);
	set_holding(s, 1, 700, 35);
	expect2(st, Q_HUMIDITY, 70, Q_TEMPERATURE, 3.5);
	modbus_driver.close(st);
	modbus_slave_stop(s);
	rmdir(dir);
}

/* The converter goes away and comes back on the same port. */
static void
port_vanishes_tcp(void **state)
{
	struct config conf = { 0 };
	struct reading r[SENSOR_MAX_READINGS];
	struct modbus_slave *s = slave(true, NULL);
	struct sensor_cfg sc;
	void *st;
	int port = modbus_slave_port(s);

	(void)state;
	set_holding(s, 1, 553, 0xffe7);
	cfg_on(&sc, s, 1, holding_rh_t, NREGS(holding_rh_t));
	st = open_ok(&conf, &sc);
	expect2(st, Q_HUMIDITY, 55.3, Q_TEMPERATURE, -2.5);

	modbus_slave_stop(s);
	assert_int_equal(rd(st, r), -ETIMEDOUT);	/* connection lost */
	assert_int_equal(rd(st, r), -ETIMEDOUT);	/* connection refused */

	if ((s = modbus_slave_start_tcp(port)) == NULL)
		fail_msg("cannot listen on port %d again: %s", port, strerror(errno));
	set_holding(s, 1, 700, 35);
	expect2(st, Q_HUMIDITY, 70, Q_TEMPERATURE, 3.5);
	assert_int_equal(modbus_slave_connections(s), 1);
	modbus_driver.close(st);
	modbus_slave_stop(s);
}

/* ---- grouping ---- */

/* How many requests one read of map costs, checking its values on the way. */
static unsigned
requests_per_read(struct modbus_slave *s, struct modbus_reg *regs, size_t n, int want)
{
	struct config conf = { 0 };
	struct reading r[SENSOR_MAX_READINGS];
	struct sensor_cfg sc;
	unsigned before;
	void *st;

	cfg_on(&sc, s, 1, regs, n);
	st = open_ok(&conf, &sc);
	before = modbus_slave_requests(s, 1);
	assert_int_equal(rd(st, r), want);
	for (size_t i = 0; i < n; i++)	/* register k holds k*10 + fn, scale 1 */
		assert_true(r[i].value == regs[i].reg * 10 + (regs[i].fn == MODBUS_FN_INPUT));
	modbus_driver.close(st);
	return modbus_slave_requests(s, 1) - before;
}

static void
one_request_per_preset(void **state)
{
	static struct modbus_reg gap8[] = {
		{ Q_CO2, MODBUS_FN_HOLDING, 9, 1, 0, false },
		{ Q_CO2, MODBUS_FN_HOLDING, 0, 1, 0, false },
	};
	static struct modbus_reg gap9[] = {
		{ Q_CO2, MODBUS_FN_HOLDING, 0, 1, 0, false },
		{ Q_CO2, MODBUS_FN_HOLDING, 10, 1, 0, false },
	};
	static struct modbus_reg mixed[] = {
		{ Q_CO2, MODBUS_FN_INPUT, 3, 1, 0, false },
		{ Q_CO2, MODBUS_FN_HOLDING, 3, 1, 0, false },
		{ Q_CO2, MODBUS_FN_INPUT, 2, 1, 0, false },
		{ Q_CO2, MODBUS_FN_HOLDING, 4, 1, 0, false },
	};
	struct modbus_slave *s = slave(false, NULL);
	struct config conf = { 0 };
	struct sensor_cfg sc;
	unsigned before;
	void *st;

	(void)state;
	set_holding(s, 1, 553, 0xffe7);
	set_input(s, 1, 0xffe7, 553);
	cfg_on(&sc, s, 1, holding_rh_t, NREGS(holding_rh_t));
	st = open_ok(&conf, &sc);
	before = modbus_slave_requests(s, 1);
	expect2(st, Q_HUMIDITY, 55.3, Q_TEMPERATURE, -2.5);
	assert_int_equal(modbus_slave_requests(s, 1) - before, 1);
	modbus_driver.close(st);
	cfg_on(&sc, s, 1, input_t_rh, NREGS(input_t_rh));
	st = open_ok(&conf, &sc);
	before = modbus_slave_requests(s, 1);
	expect2(st, Q_TEMPERATURE, -2.5, Q_HUMIDITY, 55.3);
	assert_int_equal(modbus_slave_requests(s, 1) - before, 1);
	modbus_driver.close(st);

	for (int k = 0; k < MODBUS_SLAVE_NREGS; k++) {
		modbus_slave_set_reg(s, 1, MODBUS_SLAVE_HOLDING, k, (uint16_t)(k * 10));
		modbus_slave_set_reg(s, 1, MODBUS_SLAVE_INPUT, k, (uint16_t)(k * 10 + 1));
	}
	assert_int_equal(requests_per_read(s, gap8, NREGS(gap8), 2), 1);
	assert_int_equal(requests_per_read(s, gap9, NREGS(gap9), 2), 2);
	assert_int_equal(requests_per_read(s, mixed, NREGS(mixed), 4), 2);
	modbus_slave_stop(s);
}

/* ---- recorded frames ---- */

static const char *
top(void)
{
	const char *t = getenv("COLDGATE_TOP");

	return t != NULL ? t : ".";
}

/* Hex bytes "01 03 ..." (or "-": none) into buf; the count, or -1. */
static int
parse_hex(const char *s, uint8_t *buf, size_t size)
{
	size_t n = 0;
	unsigned v;
	int k;

	while (*s == ' ')
		s++;
	if (*s == '-')
		return 0;
	while (sscanf(s, " %2x%n", &v, &k) == 1) {
		if (n == size)
			return -1;
		buf[n++] = (uint8_t)v;
		s += k;
	}
	return (int)n;
}

static int
errno_named(const char *s)
{
	static const struct { const char *name; int e; } names[] = {
		{ "EBADMSG", EBADMSG }, { "EPROTO", EPROTO }, { "ETIMEDOUT", ETIMEDOUT },
		{ "ERANGE", ERANGE }, { "ENODEV", ENODEV },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strncmp(s, names[i].name, strlen(names[i].name)) == 0)
			return names[i].e;
	fail_msg("unknown errno name %s", s);
	return 0;
}

/* Each line of tests/fixtures/modbus/frames.txt, over RTU. */
static void
recorded_frames(void **state)
{
	struct modbus_slave *s = slave(false, NULL);
	struct config conf = { 0 };
	char path[4096], line[1024];
	int cases = 0, lineno = 0;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/tests/fixtures/modbus/frames.txt", top());
	if ((f = fopen(path, "r")) == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	for (int u = 1; u <= 247; u++)
		assert_int_equal(modbus_slave_add_unit(s, u), 0);
	while (fgets(line, sizeof(line), f) != NULL) {
		char *field[5], *p = line, *e;
		uint8_t req[64], ans[256], got[64];
		struct reading r[SENSOR_MAX_READINGS];
		struct sensor_cfg sc;
		int nreq, nans, rc, nf = 0;
		size_t ngot;
		void *st;

		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		while (nf < 5 && (field[nf] = strsep(&p, "|")) != NULL)
			nf++;
		if (nf != 5)
			fail_msg("%s:%d: want 5 fields", path, lineno);
		for (int i = 0; i < 5; i++) {
			while (*field[i] == ' ')
				field[i]++;
			for (e = field[i] + strlen(field[i]); e > field[i] && e[-1] == ' '; )
				*--e = '\0';
		}
		nreq = parse_hex(field[2], req, sizeof(req));
		nans = parse_hex(field[3], ans, sizeof(ans));
		if (nreq < 0 || nans < 0)
			fail_msg("%s:%d: bad hex", path, lineno);
		if (strcmp(field[0], "holding-rh-t") == 0)
			cfg_on(&sc, s, atoi(field[1]), holding_rh_t, NREGS(holding_rh_t));
		else if (strcmp(field[0], "input-t-rh") == 0)
			cfg_on(&sc, s, atoi(field[1]), input_t_rh, NREGS(input_t_rh));
		else
			fail_msg("%s:%d: unknown map %s", path, lineno, field[0]);
		if (nans > 0)
			modbus_slave_set_raw(s, sc.modbus.unit, ans, (size_t)nans, 1);
		else
			modbus_slave_set_fault(s, sc.modbus.unit, MODBUS_SLAVE_SILENT, 0, 1);
		st = open_ok(&conf, &sc);
		rc = rd(st, r);
		modbus_driver.close(st);

		ngot = modbus_slave_last_request(s, got, sizeof(got));
		if (ngot != (size_t)nreq || memcmp(got, req, ngot) != 0)
			fail_msg("%s:%d: the driver asked otherwise", path, lineno);
		if (field[4][0] == '-') {
			if (rc != -errno_named(field[4] + 1))
				fail_msg("%s:%d: read gave %d, want %s", path, lineno, rc, field[4]);
		} else {
			char *tok, *save = NULL;
			int n = 0;

			for (tok = strtok_r(field[4], " ", &save); tok != NULL;
			    tok = strtok_r(NULL, " ", &save), n++) {
				char *v = strtok_r(NULL, " ", &save);

				assert_non_null(v);
				if (n >= rc || quantity_from_name(tok) != (int)r[n].q ||
				    strtod(v, NULL) != r[n].value)
					fail_msg("%s:%d: reading %d is not %s %s (read gave %d)",
					    path, lineno, n, tok, v, rc);
			}
			assert_int_equal(rc, n);
		}
		cases++;
	}
	fclose(f);
	assert_true(cases >= 10);
	modbus_slave_stop(s);
}

/* ---- configuration ---- */

static void
bad_config(void **state)
{
	static struct modbus_reg bad_q[] = { { Q_COUNT, MODBUS_FN_HOLDING, 0, 1, 0, false } };
	static struct modbus_reg bad_fn[] = { { Q_CO2, (enum modbus_fn)7, 0, 1, 0, false } };
	static struct modbus_reg bad_reg[] = { { Q_CO2, MODBUS_FN_HOLDING, 65536, 1, 0, false } };
	static struct modbus_reg five[5] = {
		{ Q_CO2, MODBUS_FN_HOLDING, 0, 1, 0, false }, { Q_CO2, MODBUS_FN_HOLDING, 1, 1, 0, false },
		{ Q_CO2, MODBUS_FN_HOLDING, 2, 1, 0, false }, { Q_CO2, MODBUS_FN_HOLDING, 3, 1, 0, false },
		{ Q_CO2, MODBUS_FN_HOLDING, 4, 1, 0, false },
	};
	struct config conf = { 0 };
	struct sensor_cfg good, sc;
	void *st = NULL;

	(void)state;
	memset(&good, 0, sizeof(good));
	good.modbus.device = (char *)"/dev/ttyUSB0";
	good.modbus.unit = 1;
	good.modbus.regs = holding_rh_t;
	good.modbus.nregs = NREGS(holding_rh_t);
	st = open_ok(&conf, &good);		/* the base case is good */
	modbus_driver.close(st);
	st = NULL;

#define BAD(stmt) do {							\
		sc = good;						\
		stmt;							\
		if (modbus_driver.open(&conf, &sc, &st) != -EINVAL)	\
			fail_msg("accepted: %s", #stmt);		\
		assert_null(st);					\
	} while (0)
	BAD(sc.modbus.device = NULL);				/* neither device nor host */
	BAD(sc.modbus.device = (char *)"");
	BAD(sc.modbus.host = (char *)"10.0.0.7");		/* both */
	BAD(sc.modbus.nregs = 0);
	BAD(sc.modbus.regs = NULL);
	BAD(sc.modbus.regs = five; sc.modbus.nregs = 5);		/* more than a read can return */
	BAD(sc.modbus.unit = 0);
	BAD(sc.modbus.unit = 248);
	BAD(sc.modbus.unit = -1);
	BAD(sc.modbus.parity = 'X');
	BAD(sc.modbus.baud = 14400);				/* libmodbus would run it at 9600 */
	BAD(sc.modbus.baud = -9600);
	BAD(sc.modbus.data_bits = 9);
	BAD(sc.modbus.stop_bits = 3);
	BAD(sc.modbus.timeout_ms = -1);
	BAD(sc.modbus.regs = bad_q; sc.modbus.nregs = 1);
	BAD(sc.modbus.regs = bad_fn; sc.modbus.nregs = 1);
	BAD(sc.modbus.regs = bad_reg; sc.modbus.nregs = 1);
	BAD(sc.modbus.device = NULL; sc.modbus.host = (char *)"10.0.0.7"; sc.modbus.port = 65536);
	BAD(sc.modbus.device = NULL; sc.modbus.host = (char *)"10.0.0.7"; sc.modbus.port = -1);
#undef BAD
	modbus_driver.close(NULL);
}

/* Sensors on one device must agree on the line's settings; a new configuration may change them. */
static void
line_settings_must_agree(void **state)
{
	struct config conf = { 0 }, reloaded = { 0 };
	struct sensor_cfg a, b;
	void *sa, *sb, *sx, *st = NULL;

	(void)state;
	memset(&a, 0, sizeof(a));
	a.modbus.device = (char *)"/dev/ttyUSB0";
	a.modbus.unit = 1;
	a.modbus.regs = holding_rh_t;
	a.modbus.nregs = NREGS(holding_rh_t);
	sa = open_ok(&conf, &a);

	b = a;
	b.modbus.unit = 2;
	b.modbus.baud = 19200;
	assert_int_equal(modbus_driver.open(&conf, &b, &st), -EINVAL);
	b.modbus.baud = 0;
	b.modbus.parity = 'E';
	assert_int_equal(modbus_driver.open(&conf, &b, &st), -EINVAL);
	b.modbus.parity = 'N';
	b.modbus.stop_bits = 2;
	assert_int_equal(modbus_driver.open(&conf, &b, &st), -EINVAL);
	/* The defaults spelt out are the same settings. */
	b.modbus.baud = 9600;
	b.modbus.parity = 'N';
	b.modbus.data_bits = 8;
	b.modbus.stop_bits = 1;
	sb = open_ok(&conf, &b);
	/* Another device is another line. */
	b.modbus.device = (char *)"/dev/ttyUSB1";
	b.modbus.baud = 19200;
	sx = open_ok(&conf, &b);
	modbus_driver.close(sx);
	/* A reload opens the new configuration next to the old one. */
	b.modbus.device = (char *)"/dev/ttyUSB0";
	sx = open_ok(&reloaded, &b);
	modbus_driver.close(sx);
	modbus_driver.close(sb);
	/* The line's settings are the first sensor's, while it stays open. */
	assert_int_equal(modbus_driver.open(&conf, &b, &st), -EINVAL);
	modbus_driver.close(sa);
	/* Once all are closed the line is gone and new settings are fine. */
	sb = open_ok(&conf, &b);
	modbus_driver.close(sb);
}

static void
blocks(void **state)
{
	struct sensor_cfg sc;

	(void)state;
	memset(&sc, 0, sizeof(sc));
	assert_string_equal(modbus_driver.name, "modbus");
	assert_non_null(modbus_driver.blocks);
	assert_true(modbus_driver.blocks(&sc));
	assert_non_null(modbus_driver.scan);
}

/* ---- scan ---- */

/* text has line as a whole line; else fail, showing text. */
static void
expect_line(const char *text, const char *line)
{
	const char *p = text;
	size_t n = strlen(line);

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return;
		p++;
	}
	fail_msg("no line\n%s\nin the scan's output:\n%s", line, text);
}

/* The output of the scan in scan_finds_units, or NULL. */
static char *scan_text;

/*
 * The snippets in a scan's output (its lines that are not comments) make a
 * configuration that loads, with its modbus sensors that open.  Skipped
 * while "modbus" is not in the driver table, which the configuration
 * checks driver names against.
 */
static void
scan_snippets_load(void **state)
{
	char path[] = "/tmp/coldgate-modbus-cfg-XXXXXX", *errors = NULL;
	const char *p, *nl, *last = NULL, *text = scan_text;
	struct config *c;
	FILE *f;
	int fd;

	(void)state;
	if (sensor_driver_find("modbus") == NULL) {
		print_message("modbus is not in sensors/drivers.c yet: cannot load the snippets\n");
		skip();
	}
	assert_non_null(text);		/* scan_finds_units ran and scanned */
	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	fprintf(f, "gateway = { id = \"gw-1\"; };\nzones = ( { id = \"CHANGE-ME\"; } );\n"
	    "sensors = (\n");
	for (p = text; *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		if (*p == '{')
			last = p;
	}
	for (p = text; *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		if (*p == '{')		/* the last one without its comma */
			fprintf(f, "  %.*s\n", (int)(nl - p - (p == last)), p);
	}
	fprintf(f, ");\n");
	fclose(f);
	if ((c = config_load(path, &errors)) == NULL)
		fail_msg("the scan's snippets do not load:\n%s\n%s", errors, text);
	unlink(path);
	assert_int_equal(c->nsensors, 3);
	for (size_t i = 0; i < c->nsensors; i++) {
		void *st = open_ok(c, &c->sensors[i]);

		modbus_driver.close(st);
	}
	config_free(c);
}

static void
scan_finds_units(void **state)
{
	struct modbus_slave *rtu = slave(false, NULL), *tcp = slave(true, NULL);
	struct sensor_cfg sensors[4];
	struct config conf = { 0 };
	char *text = NULL, want[512];
	size_t len = 0;
	void *st;
	FILE *f;
	int n;

	(void)state;
	set_holding(rtu, 1, 553, 0xffe7);
	set_input(rtu, 3, 0xffe7, 553);
	set_holding(rtu, 5, 5000, 5000);		/* answers, fits neither map */
	set_input(rtu, 5, 5000, 5000);
	set_holding(tcp, 2, 876, 125);
	cfg_on(&sensors[0], rtu, 1, holding_rh_t, NREGS(holding_rh_t));
	cfg_on(&sensors[1], rtu, 3, input_t_rh, NREGS(input_t_rh));	/* same line: once */
	cfg_on(&sensors[2], tcp, 2, holding_rh_t, NREGS(holding_rh_t));
	cfg_on(&sensors[3], rtu, 1, holding_rh_t, NREGS(holding_rh_t));
	sensors[3].modbus.device = (char *)"/nonexistent/ttyUSB9";
	sensors[0].modbus.parity = sensors[1].modbus.parity = 'E';	/* spelt as the configuration does */
	conf.sensors = sensors;
	conf.nsensors = 4;

	/* A sensor reading the line while the scan runs shares it. */
	st = open_ok(&conf, &sensors[0]);
	expect2(st, Q_HUMIDITY, 55.3, Q_TEMPERATURE, -2.5);

	assert_non_null(f = open_memstream(&text, &len));
	n = modbus_driver.scan(&conf, f);
	fclose(f);
	if (n != 4)
		fail_msg("scan found %d, want 4:\n%s", n, text);
	snprintf(want, sizeof(want), "{ id = \"rs485-1\"; zone = \"CHANGE-ME\"; driver = \"modbus\"; "
	    "device = \"%s\"; baud = 9600; parity = \"even\"; unit = 1; map = \"holding-rh-t\"; "
	    "interval = 10; },",
	    modbus_slave_path(rtu));
	expect_line(text, want);
	snprintf(want, sizeof(want), "{ id = \"rs485-2\"; zone = \"CHANGE-ME\"; driver = \"modbus\"; "
	    "device = \"%s\"; baud = 9600; parity = \"even\"; unit = 3; map = \"input-t-rh\"; "
	    "interval = 10; },",
	    modbus_slave_path(rtu));
	expect_line(text, want);
	snprintf(want, sizeof(want), "# modbus: %s unit 5: fits no preset: list its registers",
	    modbus_slave_path(rtu));
	expect_line(text, want);
	snprintf(want, sizeof(want), "# modbus: %s unit 1: holding 0-1: 553 65511 (0x0229 0xffe7); "
	    "input 1-2: 0 0 (0x0000 0x0000)", modbus_slave_path(rtu));
	expect_line(text, want);
	snprintf(want, sizeof(want), "{ id = \"rs485-3\"; zone = \"CHANGE-ME\"; driver = \"modbus\"; "
	    "host = \"127.0.0.1\"; port = %d; unit = 2; map = \"holding-rh-t\"; interval = 10; },",
	    modbus_slave_port(tcp));
	expect_line(text, want);
	expect_line(text, "# modbus: /nonexistent/ttyUSB9: No such file or directory");
	/* Everything that is not a snippet is a comment. */
	for (const char *p = text; *p != '\0'; p = strchr(p, '\n') + 1) {
		assert_true(*p == '#' || *p == '{');
		assert_non_null(strchr(p, '\n'));
	}
	/* Each unit that is there was asked; 1..16 on each line. */
	assert_int_equal(modbus_slave_requests(rtu, 0), 1 + 2 * 16);
	assert_int_equal(modbus_slave_requests(tcp, 0), 2 * 16);

	/* The sensor's line is still good. */
	expect2(st, Q_HUMIDITY, 55.3, Q_TEMPERATURE, -2.5);
	modbus_driver.close(st);
	scan_text = text;		/* for scan_snippets_load */
	modbus_slave_stop(rtu);
	modbus_slave_stop(tcp);
}

static void
scan_without_lines(void **state)
{
	struct config conf = { 0 };
	struct sensor_cfg sc;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	memset(&sc, 0, sizeof(sc));
	sc.driver = (char *)"ds18b20";
	sc.dev.device = "28-000000000001";
	conf.sensors = &sc;
	conf.nsensors = 1;
	assert_non_null(f = open_memstream(&text, &len));
	assert_int_equal(modbus_driver.scan(&conf, f), 0);
	fclose(f);
	assert_true(text[0] == '#');
	assert_null(strchr(text, '{'));
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(holding_rh_t_rtu),
		cmocka_unit_test(holding_rh_t_tcp),
		cmocka_unit_test(input_t_rh_rtu),
		cmocka_unit_test(input_t_rh_tcp),
		cmocka_unit_test(explicit_map_scale_offset),
		cmocka_unit_test(two_units_one_line_rtu),
		cmocka_unit_test(two_units_one_connection_tcp),
		cmocka_unit_test(bad_crc_rtu),
		cmocka_unit_test(garbled_tcp),
		cmocka_unit_test(exception_rtu),
		cmocka_unit_test(exception_tcp),
		cmocka_unit_test(silence_rtu),
		cmocka_unit_test(silence_tcp),
		cmocka_unit_test(absent_unit),
		cmocka_unit_test(late_answer_rtu),
		cmocka_unit_test(late_answer_tcp),
		cmocka_unit_test(implausible),
		cmocka_unit_test(missing_port_at_start),
		cmocka_unit_test(port_vanishes_rtu),
		cmocka_unit_test(port_vanishes_tcp),
		cmocka_unit_test(one_request_per_preset),
		cmocka_unit_test(recorded_frames),
		cmocka_unit_test(bad_config),
		cmocka_unit_test(line_settings_must_agree),
		cmocka_unit_test(blocks),
		cmocka_unit_test(scan_finds_units),
		cmocka_unit_test(scan_snippets_load),
		cmocka_unit_test(scan_without_lines),
	};

	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	free(scan_text);
	return rc;
}
