/*
 * The drivers of real hardware inside the real daemon, faked only at the
 * OS edge: coldgated-fakehw is coldgated linked with tests/fakehw (libgpiod
 * calls answered from files, see tests/fakehw/README.md), so the GPIO
 * driver code that runs on a Pi runs here.
 *
 *  - A door contact: a bouncing edge burst gives one door_open event and
 *    door readings in telemetry; the door's close gives door_close.
 *  - Local outputs: the buzzer and the lamp are off (safe) at start, both
 *    come on with an alarm of their zone, an acknowledgement silences the
 *    buzzer but leaves the lamp lit until the alarm clears, and a stop
 *    puts both off.
 *  - A GPIO chip that is not there at start: the daemon runs without it
 *    and finds the door contact and the output once the chip appears.
 *  - SCD4x, SHT3x and SHT4x on fake i2c-dev buses (ioctl I2C_RDWR
 *    answered by emulated parts).
 *  - Modbus RTU units on a pseudo-terminal and a Modbus TCP unit, served
 *    by a real slave (tests/lib/modbus_slave.c): no fake needed.
 */
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
#include <sys/stat.h>
#include <unistd.h>

#include "lib/harness.h"
#include "lib/modbus_slave.h"

static const char cfg_gpio[] =
	HARNESS_CFG_HEAD
	"publish = { interval = 1; };\n"
	"zones = ( { id = \"cold-1\"; name = \"冷库 1\"; }, { id = \"house-1\"; } );\n"
	"sensors = (\n"
	"  { id = \"c1-door\"; zone = \"cold-1\"; driver = \"gpio-contact\"; chip = \"gpiochip0\"; line = 17;\n"
	"    debounce_ms = 30; interval = 0.5; },\n"
	"  { id = \"c1-t\"; zone = \"cold-1\"; driver = \"sim\"; quantity = \"temperature\"; interval = 0.25;\n"
	"    script = ( (0, 2), (@T1@, 2), (@T1B@, 9), (@T2@, 9), (@T2B@, 2), (@T3@, 2), (@T3B@, 9),\n"
	"      (9000, 9) ); }\n"
	");\n"
	"alarms = ( { zone = \"cold-1\"; quantity = \"temperature\"; high = 4; } );\n"
	"outputs = (\n"
	"  { id = \"buzzer\"; driver = \"gpio-output\"; chip = \"gpiochip0\"; line = 27; role = \"buzzer\";\n"
	"    zones = [ \"cold-1\" ]; },\n"
	"  { id = \"lamp\"; driver = \"gpio-output\"; chip = \"gpiochip0\"; line = 22; role = \"lamp\"; },\n"
	"  { id = \"house-buzzer\"; driver = \"gpio-output\"; chip = \"gpiochip0\"; line = 5; role = \"buzzer\";\n"
	"    zones = [ \"house-1\" ]; }\n"
	");\n";

struct out_want {
	char		*path;
	const char	*level;		/* "0" or "1" */
};

static bool
out_is(void *arg)
{
	struct out_want *w = arg;
	char *t = harness_read_file(w->path, NULL);
	bool ok = t != NULL && t[0] == w->level[0] && t[1] == '\n';

	free(t);
	return ok;
}

/* Wait until the output file reads level; fail naming what if it never does. */
static void
want_out(struct harness *h, const char *name, const char *level, const char *what)
{
	struct out_want w = { .path = harness_path(h, name), .level = level };
	char *t;

	if (!harness_wait(HARNESS_TIMEOUT, out_is, &w)) {
		t = harness_read_file(w.path, NULL);
		fail_msg("%s: %s should read %s, reads %s", what, name, level, t ? t : "(no file)");
	}
	free(w.path);
}

/* The output file reads level now. */
static bool
out_now(struct harness *h, const char *name, const char *level)
{
	struct out_want w = { .path = harness_path(h, name), .level = level };
	bool ok = out_is(&w);

	free(w.path);
	return ok;
}

static bool
is_door_event(const struct harness_msg *m, const void *type)
{
	const char *t = harness_json_str(m->json, "type");
	const char *s = harness_json_str(m->json, "sensor");

	return t != NULL && s != NULL && strcmp(t, type) == 0 && strcmp(s, "c1-door") == 0;
}

static bool
is_active(const struct harness_msg *m, const void *arg)
{
	const char *st = harness_json_str(m->json, "state");

	(void)arg;
	return st != NULL && strcmp(st, "active") == 0;
}

static bool
is_acked(const struct harness_msg *m, const void *arg)
{
	const char *st = harness_json_str(m->json, "state");

	(void)arg;
	return st != NULL && strcmp(st, "acked") == 0;
}

static bool
is_cleared(const struct harness_msg *m, const void *arg)
{
	const char *st = harness_json_str(m->json, "state");

	(void)arg;
	return st != NULL && strcmp(st, "cleared") == 0;
}

/* A telemetry message with door readings of c1-door whose max is *want. */
static bool
door_max_is(const struct harness_msg *m, const void *want)
{
	json_object *r = harness_json_get(m->json, "readings");
	double v;

	for (size_t i = 0; r != NULL && i < json_object_array_length(r); i++) {
		json_object *e = json_object_array_get_idx(r, i);

		if (strcmp(harness_json_str(e, "sensor"), "c1-door") == 0 &&
		    harness_json_num(e, "max", &v) && v == *(const double *)want)
			return true;
	}
	return false;
}

/* Write text into the FIFO once the fake has made it (the daemon opened the line). */
static void
edges(struct harness *h, const char *text)
{
	char *p = harness_path(h, "gpio/gpiochip0/17.events");
	double until = harness_now() + HARNESS_TIMEOUT;
	struct stat st;
	int fd = -1;

	while (harness_now() < until) {
		if (stat(p, &st) == 0 && S_ISFIFO(st.st_mode) &&
		    (fd = open(p, O_WRONLY | O_NONBLOCK)) >= 0)
			break;
		harness_sleep(0.05);
	}
	if (fd < 0)
		fail_msg("the fake never made %s (the daemon did not request the line)", p);
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		fail_msg("write %s: %s", p, strerror(errno));
	close(fd);
	free(p);
}

/*
 * The cold room's probe warms to 9 C at t1 s, cools to 2 C at t2 s and
 * warms again at t3 s.
 */
static char *
gpio_config(struct harness *h, double t1, double t2, double t3)
{
	const char *names[] = { "@T1B@", "@T1@", "@T2B@", "@T2@", "@T3B@", "@T3@" };
	double at[] = { t1 + 0.01, t1, t2 + 0.01, t2, t3 + 0.01, t3 };
	char num[32], *t = strdup(cfg_gpio), *u, *cfg;

	for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
		snprintf(num, sizeof(num), "%g", at[k]);
		u = harness_replace(t, names[k], num);
		free(t);
		t = u;
	}
	cfg = harness_write_config(h, "coldgate.cfg", t);
	free(t);
	return cfg;
}

static const char *const *
fake_env(struct harness *h, char *buf, size_t len)
{
	static const char *env[2];

	snprintf(buf, len, "COLDGATE_FAKEHW_GPIO=%s/gpio", h->dir);
	env[0] = buf;
	env[1] = NULL;
	return env;
}

static void
test_door_contact_and_outputs(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	char *cfg, envbuf[4200], *p, *id, topic[300], payload[400];
	double one = 1, zero = 0;
	long i, opened, closed;

	if (getenv("COLDGATED_FAKEHW") == NULL)
		fail_msg("COLDGATED_FAKEHW is not set (run through make check)");
	h->coldgated = getenv("COLDGATED_FAKEHW");
	p = harness_path(h, "gpio");
	mkdir(p, 0755);
	free(p);
	p = harness_path(h, "gpio/gpiochip0");
	mkdir(p, 0755);
	free(p);
	free(harness_write_file(h, "gpio/gpiochip0/17", "0\n"));	/* door shut */

	cfg = gpio_config(h, 4, 25, 35);
	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	assert_int_equal(harness_daemon_start(h, cfg, fake_env(h, envbuf, sizeof(envbuf))), 0);

	/* Safe state at start, before any alarm. */
	want_out(h, "gpio/gpiochip0/27.out", "0", "buzzer at start");
	want_out(h, "gpio/gpiochip0/22.out", "0", "lamp at start");

	/* A bouncing contact: one door_open once it has been quiet for 30 ms. */
	edges(h, "rising\nfalling\nrising\nfalling\nrising\n");
	opened = harness_sub_wait(sub, 0, "event", is_door_event, "door_open", HARNESS_TIMEOUT);
	if (opened < 0)
		fail_msg("no door_open event after the edge burst");
	if (harness_sub_wait(sub, 0, "telemetry", door_max_is, &one, HARNESS_TIMEOUT) < 0)
		fail_msg("no telemetry with the door open");
	edges(h, "falling\nrising\nfalling\n");
	closed = harness_sub_wait(sub, (size_t)opened, "event", is_door_event, "door_close",
	    HARNESS_TIMEOUT);
	if (closed < 0)
		fail_msg("no door_close event");
	if (harness_sub_find(sub, (size_t)opened + 1, "event", is_door_event, "door_open") >= 0)
		fail_msg("the bounces gave more than one door_open");
	if (harness_sub_wait(sub, (size_t)closed, "telemetry", door_max_is, &zero,
	    HARNESS_TIMEOUT) < 0)
		fail_msg("no telemetry with the door shut again");

	/* The cold room warms: buzzer and lamp on; the other zone's buzzer stays off. */
	i = harness_sub_wait(sub, 0, "alarm/", is_active, NULL, HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("the temperature alarm never fired");
	want_out(h, "gpio/gpiochip0/27.out", "1", "buzzer with an active alarm");
	want_out(h, "gpio/gpiochip0/22.out", "1", "lamp with an active alarm");
	if (!out_now(h, "gpio/gpiochip0/5.out", "0"))
		fail_msg("house-1's buzzer sounds for a cold-1 alarm");

	/* Acknowledged: the buzzer stops, the lamp stays lit until the alarm clears. */
	id = strdup(harness_json_str(harness_sub_get(sub, (size_t)i)->json, "id"));
	snprintf(topic, sizeof(topic), HARNESS_BASE "cmd/ack");
	snprintf(payload, sizeof(payload), "{\"alarm\":\"%s\",\"by\":\"test\"}", id);
	assert_int_equal(harness_sub_publish(sub, topic, payload), 0);
	if (harness_sub_wait(sub, (size_t)i, "alarm/", is_acked, NULL, HARNESS_TIMEOUT) < 0)
		fail_msg("the ack was not taken");
	want_out(h, "gpio/gpiochip0/27.out", "0", "buzzer after the ack");
	harness_sleep(1.0);
	if (!out_now(h, "gpio/gpiochip0/22.out", "1"))
		fail_msg("the lamp went out at the ack; it should stay lit until the alarm clears");

	/* The room cools (25 s after start): cleared, and only then the lamp goes out. */
	if (harness_sub_wait(sub, (size_t)i, "alarm/", is_cleared, NULL, HARNESS_TIMEOUT) < 0)
		fail_msg("the alarm never cleared");
	want_out(h, "gpio/gpiochip0/22.out", "0", "lamp once the alarm cleared");

	/* It warms again (35 s): the alarm fires anew and the buzzer sounds again. */
	want_out(h, "gpio/gpiochip0/27.out", "1", "buzzer when the alarm fires again");
	want_out(h, "gpio/gpiochip0/22.out", "1", "lamp when the alarm fires again");

	/* A stop leaves every output in its safe state. */
	assert_int_equal(harness_daemon_stop(h), 0);
	if (!out_now(h, "gpio/gpiochip0/22.out", "0") || !out_now(h, "gpio/gpiochip0/27.out", "0"))
		fail_msg("outputs not off after the daemon stopped");
	free(id);
	free(cfg);
	harness_pass(h);
}

static void
test_chip_found_after_start(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	char *cfg, envbuf[4200], *p;
	double one = 1;

	if (getenv("COLDGATED_FAKEHW") == NULL)
		fail_msg("COLDGATED_FAKEHW is not set (run through make check)");
	h->coldgated = getenv("COLDGATED_FAKEHW");
	p = harness_path(h, "gpio");
	mkdir(p, 0755);
	free(p);

	/* No chip at all: the daemon still starts and reads the rest. */
	cfg = gpio_config(h, 3000, 3600, 4000);
	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	assert_int_equal(harness_daemon_start(h, cfg, fake_env(h, envbuf, sizeof(envbuf))), 0);
	if (harness_sub_wait(sub, 0, "telemetry", harness_match_sensor, "c1-t", HARNESS_TIMEOUT) < 0)
		fail_msg("no telemetry while the GPIO chip is missing");
	if (!harness_daemon_running(h))
		fail_msg("the daemon stopped because a GPIO chip was missing");

	/* The chip turns up with the door open: the contact and the outputs are found. */
	p = harness_path(h, "gpio/gpiochip0");
	mkdir(p, 0755);
	free(p);
	free(harness_write_file(h, "gpio/gpiochip0/17", "1\n"));
	if (harness_sub_wait(sub, 0, "telemetry", door_max_is, &one, HARNESS_TIMEOUT) < 0)
		fail_msg("the door contact was not found once its chip appeared");
	want_out(h, "gpio/gpiochip0/27.out", "0", "buzzer opened late");
	assert_int_equal(harness_daemon_stop(h), 0);
	free(cfg);
	harness_pass(h);
}

static const char cfg_i2c[] =
	HARNESS_CFG_HEAD
	"publish = { interval = 1; };\n"
	"zones = ( { id = \"house-1\"; name = \"香菇出菇房 1\"; }, { id = \"cold-1\"; } );\n"
	"sensors = (\n"
	"  { id = \"h1-co2\"; zone = \"house-1\"; driver = \"scd4x\"; device = \"/dev/i2c-1\"; interval = 0.5; },\n"
	"  { id = \"c1-sht\"; zone = \"cold-1\"; driver = \"sht3x\"; device = \"/dev/i2c-1\"; interval = 0.5; },\n"
	"  { id = \"c1-sht4\"; zone = \"cold-1\"; driver = \"sht4x\"; device = \"/dev/i2c-3\"; interval = 0.5; },\n"
	"  { id = \"c1-bad\"; zone = \"cold-1\"; driver = \"sht3x\"; device = \"/dev/i2c-1\"; address = 0x45;\n"
	"    interval = 0.5; }\n"
	");\n";

/* The mean of sensor/quantity in a telemetry message, or NAN. */
static double
mean_of(const struct harness_msg *m, const char *sensor, const char *quantity)
{
	return harness_reading_stat(m, sensor, quantity, "mean");
}

static bool
has_i2c_all(const struct harness_msg *m, const void *arg)
{
	(void)arg;
	return !isnan(mean_of(m, "h1-co2", "co2")) && !isnan(mean_of(m, "c1-sht", "humidity")) &&
	    !isnan(mean_of(m, "c1-sht4", "temperature"));
}

static bool
is_fault_of_bad(const struct harness_msg *m, const void *arg)
{
	const char *t = harness_json_str(m->json, "type");
	const char *s = harness_json_str(m->json, "sensor");

	(void)arg;
	return t != NULL && s != NULL && strcmp(t, "sensor_fault") == 0 &&
	    strcmp(s, "c1-bad") == 0;
}

/*
 * I2C parts on the fake i2c-dev bus: an SCD41 (CO2, T, RH), an SHT31 and
 * an SHT40 on another bus reach mosquitto with the values the fake parts
 * hold; an SHT31 answering with bad CRCs gives a sensor_fault and never a
 * reading.
 */
static void
test_i2c_sensors_reach_mqtt(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	const struct harness_msg *m;
	char *cfg, *p, envi2c[4200], *env[3];
	long i;

	if (getenv("COLDGATED_FAKEHW") == NULL)
		fail_msg("COLDGATED_FAKEHW is not set (run through make check)");
	h->coldgated = getenv("COLDGATED_FAKEHW");
	p = harness_path(h, "i2c");
	mkdir(p, 0755);
	free(p);
	p = harness_path(h, "i2c/i2c-1");
	mkdir(p, 0755);
	free(p);
	p = harness_path(h, "i2c/i2c-3");
	mkdir(p, 0755);
	free(p);
	free(harness_write_file(h, "i2c/i2c-1/0x62", "scd4x 850 22.5 88\n"));
	free(harness_write_file(h, "i2c/i2c-1/0x44", "sht3x 3.5 91.25\n"));
	free(harness_write_file(h, "i2c/i2c-1/0x45", "sht3x 3.5 91.25 badcrc\n"));
	free(harness_write_file(h, "i2c/i2c-3/0x44", "sht4x -18.5 60\n"));
	snprintf(envi2c, sizeof(envi2c), "COLDGATE_FAKEHW_I2C=%s/i2c", h->dir);
	env[0] = envi2c;
	env[1] = "COLDGATE_FAKEHW_I2C_PERIOD_MS=400";
	env[2] = NULL;

	cfg = harness_write_config(h, "coldgate.cfg", cfg_i2c);
	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	assert_int_equal(harness_daemon_start(h, cfg, (const char *const *)env), 0);

	i = harness_sub_wait(sub, 0, "telemetry", has_i2c_all, NULL, HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("no telemetry with the SCD41, the SHT31 and the SHT40");
	m = harness_sub_get(sub, (size_t)i);
	/* Within half a raw step of what the fake parts hold (tests/fakehw/README.md). */
	if (mean_of(m, "h1-co2", "co2") != 850 ||
	    fabs(mean_of(m, "h1-co2", "temperature") - 22.5) > 0.003 ||
	    fabs(mean_of(m, "h1-co2", "humidity") - 88) > 0.003 ||
	    fabs(mean_of(m, "c1-sht", "temperature") - 3.5) > 0.003 ||
	    fabs(mean_of(m, "c1-sht", "humidity") - 91.25) > 0.003 ||
	    fabs(mean_of(m, "c1-sht4", "temperature") + 18.5) > 0.003 ||
	    fabs(mean_of(m, "c1-sht4", "humidity") - 60) > 0.003)
		fail_msg("values differ from the fake parts': %s", m->payload);
	if (harness_sub_wait(sub, 0, "event", is_fault_of_bad, NULL, HARNESS_TIMEOUT) < 0)
		fail_msg("no sensor_fault for the SHT31 with bad CRCs");
	for (size_t k = 0; k < harness_sub_count(sub); k++) {
		m = harness_sub_get(sub, k);
		if (strstr(m->topic, "telemetry") != NULL && strstr(m->payload, "\"c1-bad\"") != NULL)
			fail_msg("a reading of the bad-CRC part was published: %s", m->payload);
	}
	assert_int_equal(harness_daemon_stop(h), 0);
	free(cfg);
	harness_pass(h);
}

/* Readings of sensor in a telemetry message (its "n" for any quantity), 0 if none. */
static int64_t
n_of(const struct harness_msg *m, const char *sensor)
{
	json_object *r = harness_json_get(m->json, "readings");
	int64_t n;

	for (size_t i = 0; r != NULL && i < json_object_array_length(r); i++) {
		json_object *e = json_object_array_get_idx(r, i);

		if (strcmp(harness_json_str(e, "sensor"), sensor) == 0 &&
		    harness_json_int(e, "n", &n))
			return n;
	}
	return 0;
}

static bool
has_modbus_all(const struct harness_msg *m, const void *arg)
{
	(void)arg;
	return !isnan(mean_of(m, "mb-1", "humidity")) && !isnan(mean_of(m, "mb-2", "humidity")) &&
	    !isnan(mean_of(m, "mb-tcp", "humidity"));
}

static bool
is_event_of(const struct harness_msg *m, const void *want)
{
	const char *const *w = want;	/* { type, sensor } */
	const char *t = harness_json_str(m->json, "type");
	const char *s = harness_json_str(m->json, "sensor");

	return t != NULL && s != NULL && strcmp(t, w[0]) == 0 && strcmp(s, w[1]) == 0;
}

/*
 * RS485 and TCP Modbus transmitters, served by a real libmodbus-framed
 * slave on a pseudo-terminal and on a loopback port: both register maps
 * give the transmitters' values; a CRC-garbling unit gives a sensor_fault
 * and, once mended, sensor_recovered.  Ten units on the same line never
 * answer (200 ms timeouts each), yet a sensor on another bus is read in
 * every window: the loop never waits on a bus.
 */
static void
test_modbus_sensors_reach_mqtt(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	struct modbus_slave *rtu, *tcp;
	const struct harness_msg *m;
	char *link, *cfg, *text, *t1, sensors[4096], port[16];
	const char *fault_mb2[] = { "sensor_fault", "mb-2" };
	const char *back_mb2[] = { "sensor_recovered", "mb-2" };
	const char *fault_dead[] = { "sensor_fault", "dead-3" };
	size_t len = 0;
	long i, first;
	int windows = 0;

	link = harness_path(h, "ttyUSB0");
	assert_non_null(rtu = modbus_slave_start_rtu(link));
	assert_non_null(tcp = modbus_slave_start_tcp(0));
	/* Unit 1, holding 0 = RH x 10, 1 = T x 10; unit 2, input 1 = T x 10, 2 = RH x 10. */
	assert_int_equal(modbus_slave_add_unit(rtu, 1), 0);
	assert_int_equal(modbus_slave_set_reg(rtu, 1, MODBUS_SLAVE_HOLDING, 0, 553), 0);
	assert_int_equal(modbus_slave_set_reg(rtu, 1, MODBUS_SLAVE_HOLDING, 1, 0xFFE7), 0);
	assert_int_equal(modbus_slave_add_unit(rtu, 2), 0);
	assert_int_equal(modbus_slave_set_reg(rtu, 2, MODBUS_SLAVE_INPUT, 1, 35), 0);
	assert_int_equal(modbus_slave_set_reg(rtu, 2, MODBUS_SLAVE_INPUT, 2, 912), 0);
	assert_int_equal(modbus_slave_add_unit(tcp, 1), 0);
	assert_int_equal(modbus_slave_set_reg(tcp, 1, MODBUS_SLAVE_HOLDING, 0, 800), 0);
	assert_int_equal(modbus_slave_set_reg(tcp, 1, MODBUS_SLAVE_HOLDING, 1, 125), 0);

	len += (size_t)snprintf(sensors + len, sizeof(sensors) - len,
	    "  { id = \"mb-1\"; zone = \"house-1\"; driver = \"modbus\"; device = \"%s\"; unit = 1;\n"
	    "    map = \"holding-rh-t\"; timeout_ms = 200; interval = 0.5; },\n"
	    "  { id = \"mb-2\"; zone = \"house-1\"; driver = \"modbus\"; device = \"%s\"; unit = 2;\n"
	    "    map = \"input-t-rh\"; timeout_ms = 200; interval = 0.5; },\n"
	    "  { id = \"mb-tcp\"; zone = \"cold-1\"; driver = \"modbus\"; host = \"127.0.0.1\"; port = @MBPORT@;\n"
	    "    unit = 1; map = \"holding-rh-t\"; interval = 0.5; },\n"
	    "  { id = \"fast\"; zone = \"cold-1\"; driver = \"sim\"; quantity = \"temperature\"; interval = 0.2;\n"
	    "    script = ( (0, 2), (3600, 2) ); }", link, link);
	for (int u = 3; u <= 12; u++)
		len += (size_t)snprintf(sensors + len, sizeof(sensors) - len,
		    ",\n  { id = \"dead-%d\"; zone = \"house-1\"; driver = \"modbus\"; device = \"%s\";"
		    " unit = %d; map = \"holding-rh-t\"; timeout_ms = 200; interval = 0.5; }", u, link, u);
	snprintf(port, sizeof(port), "%d", modbus_slave_port(tcp));
	if (asprintf(&text, "%s%s%s%s", HARNESS_CFG_HEAD "publish = { interval = 1; };\n"
	    "zones = ( { id = \"house-1\"; }, { id = \"cold-1\"; } );\n", "sensors = (\n", sensors,
	    "\n);\n") < 0)
		fail_msg("out of memory");
	t1 = harness_replace(text, "@MBPORT@", port);
	cfg = harness_write_config(h, "coldgate.cfg", t1);
	free(t1);
	free(text);

	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);

	i = harness_sub_wait(sub, 0, "telemetry", has_modbus_all, NULL, HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("no telemetry with both RTU units and the TCP unit");
	m = harness_sub_get(sub, (size_t)i);
	if (mean_of(m, "mb-1", "humidity") != 55.3 || mean_of(m, "mb-1", "temperature") != -2.5 ||
	    mean_of(m, "mb-2", "temperature") != 3.5 || mean_of(m, "mb-2", "humidity") != 91.2 ||
	    mean_of(m, "mb-tcp", "humidity") != 80 || mean_of(m, "mb-tcp", "temperature") != 12.5)
		fail_msg("values differ from the slaves' registers: %s", m->payload);
	if (harness_sub_wait(sub, 0, "event", is_event_of, fault_dead, HARNESS_TIMEOUT) < 0)
		fail_msg("no sensor_fault for a unit that never answers");

	/* The sensor on another bus was read in every window while the dead units timed out. */
	first = harness_sub_find(sub, 0, "telemetry", harness_match_sensor, "fast");
	/* Its first window may have begun before the daemon did: judge the ones after it. */
	for (size_t k = (size_t)(first < 0 ? 0 : first + 1); first >= 0 &&
	    k < harness_sub_count(sub); k++) {
		m = harness_sub_get(sub, k);
		if (strstr(m->topic, "/telemetry") == NULL)
			continue;
		if (n_of(m, "fast") < 2)
			fail_msg("window %zu has %lld reads of the 5-per-second sensor: the loop "
			    "stalled behind the Modbus line: %s", k, (long long)n_of(m, "fast"),
			    m->payload);
		windows++;
	}
	if (windows < 2)
		fail_msg("too few windows to judge (%d)", windows);

	/* A unit whose frames arrive garbled: one fault event, then recovery once mended. */
	i = (long)harness_sub_count(sub);
	assert_int_equal(modbus_slave_set_fault(rtu, 2, MODBUS_SLAVE_BAD_CRC, 0, -1), 0);
	if (harness_sub_wait(sub, (size_t)i, "event", is_event_of, fault_mb2, HARNESS_TIMEOUT) < 0)
		fail_msg("no sensor_fault for the unit answering with bad CRCs");
	assert_int_equal(modbus_slave_set_fault(rtu, 2, MODBUS_SLAVE_OK, 0, 0), 0);
	if (harness_sub_wait(sub, (size_t)i, "event", is_event_of, back_mb2, HARNESS_TIMEOUT) < 0)
		fail_msg("no sensor_recovered once the unit answered properly again");

	assert_int_equal(harness_daemon_stop(h), 0);
	modbus_slave_stop(rtu);
	modbus_slave_stop(tcp);
	free(link);
	free(cfg);
	harness_pass(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_door_contact_and_outputs, harness_setup,
		    harness_teardown),
		cmocka_unit_test_setup_teardown(test_chip_found_after_start, harness_setup,
		    harness_teardown),
		cmocka_unit_test_setup_teardown(test_i2c_sensors_reach_mqtt, harness_setup,
		    harness_teardown),
		cmocka_unit_test_setup_teardown(test_modbus_sensors_reach_mqtt, harness_setup,
		    harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
