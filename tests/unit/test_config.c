/*
 * The configuration module: config_load() against the fixtures in
 * tests/fixtures/config/ and the shipped config/demo.cfg and
 * config/coldgate.cfg.
 *
 * Error lines are "FILE:LINE: key: what is wrong", FILE as given to
 * config_load, keys dotted with 0-based list indexes ("sensors[2].zone").
 * Every tests/fixtures/config/bad/NAME.cfg starts with a line
 * "# expect: NAME.cfg:LINE: key: message" that must occur in its errors.
 *
 * Linker wraps of the allocation functions config.c calls fail the Nth.
 */
// WRAP: malloc calloc strdup strndup asprintf
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "sensor.h"

/*
 * Fail the alloc_fail_at-th allocation counted from when it is set (0: none).
 * Only calls made from our own objects are wrapped; libconfig's are not.
 */
static int alloc_fail_at, alloc_count;

void	*__real_malloc(size_t);
void	*__real_calloc(size_t, size_t);
char	*__real_strdup(const char *);
char	*__real_strndup(const char *, size_t);
void	*__wrap_malloc(size_t);
void	*__wrap_calloc(size_t, size_t);
char	*__wrap_strdup(const char *);
char	*__wrap_strndup(const char *, size_t);
int	 __wrap_asprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

static int
alloc_fails(void)
{
	if (alloc_fail_at == 0 || ++alloc_count != alloc_fail_at)
		return 0;
	errno = ENOMEM;
	return 1;
}

void *
__wrap_malloc(size_t n)
{
	return alloc_fails() ? NULL : __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t size)
{
	return alloc_fails() ? NULL : __real_calloc(n, size);
}

char *
__wrap_strdup(const char *s)
{
	return alloc_fails() ? NULL : __real_strdup(s);
}

char *
__wrap_strndup(const char *s, size_t n)
{
	return alloc_fails() ? NULL : __real_strndup(s, n);
}

int
__wrap_asprintf(char **out, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (alloc_fails())
		return -1;
	va_start(ap, fmt);
	n = vasprintf(out, fmt, ap);
	va_end(ap);
	return n;
}

static const char *
top(void)
{
	const char *t = getenv("COLDGATE_TOP");

	return t != NULL ? t : ".";
}

/* PATH under the repository top, in a static buffer. */
static const char *
at_top(const char *path)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf), "%s/%s", top(), path);
	return buf;
}

/* Load a file that must be good; fail the test with its errors if not. */
static struct config *
load_good(const char *path)
{
	struct config *c;
	char *errors = (char *)1;

	c = config_load(path, &errors);
	if (c == NULL)
		fail_msg("%s should load, but:\n%s", path, errors ? errors : "(no text)");
	assert_null(errors);
	return c;
}

/* Load a file that must be bad; returns the malloc'd errors. */
static char *
load_bad(const char *path)
{
	struct config *c;
	char *errors = NULL;

	c = config_load(path, &errors);
	if (c != NULL) {
		config_free(c);
		fail_msg("%s should be rejected, but it loaded", path);
	}
	assert_non_null(errors);
	/* Every line ends in a newline, including the last. */
	assert_int_equal(errors[strlen(errors) - 1], '\n');
	return errors;
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (*s == '\n')
			n++;
	return n;
}

static void
valid_ids_are_1_to_64_of_alnum_dash_underscore(void **state)
{
	char id[CONFIG_ID_MAX + 2];

	(void)state;
	assert_true(config_valid_id("xc-fungus-01"));
	assert_true(config_valid_id("A_z-09"));
	assert_true(config_valid_id("x"));
	memset(id, 'a', CONFIG_ID_MAX);
	id[CONFIG_ID_MAX] = '\0';
	assert_true(config_valid_id(id));
	id[CONFIG_ID_MAX] = 'a';
	id[CONFIG_ID_MAX + 1] = '\0';
	assert_false(config_valid_id(id));		/* 65 */
	assert_false(config_valid_id(""));
	assert_false(config_valid_id(NULL));
	assert_false(config_valid_id("a b"));
	assert_false(config_valid_id("a/b"));		/* a topic separator */
	assert_false(config_valid_id("a+"));
	assert_false(config_valid_id("a#"));
	assert_false(config_valid_id("a.b"));
	assert_false(config_valid_id("香菇"));
}

static void
full_config_gives_every_value(void **state)
{
	struct config *c;
	const struct sensor_cfg *s;
	const struct alarm_cfg *a;
	char want[4096];

	(void)state;
	c = load_good(at_top("tests/fixtures/config/good/full.cfg"));
	assert_string_equal(c->path, at_top("tests/fixtures/config/good/full.cfg"));

	assert_string_equal(c->gateway.id, "xc-fungus-01");
	assert_string_equal(c->gateway.site, "西峡香菇产业园");
	assert_string_equal(c->gateway.state_dir, "/tmp/coldgate-test");
	assert_string_equal(c->gateway.sysfs_root, "/tmp/coldgate-test/sys");

	assert_string_equal(c->mqtt.host, "broker.park.example");
	assert_int_equal(c->mqtt.port, 8883);
	assert_int_equal(c->mqtt.keepalive, 45);
	assert_string_equal(c->mqtt.base_topic, "park/coldgate");
	assert_string_equal(c->mqtt.client_id, "xc-fungus-01-main");
	assert_string_equal(c->mqtt.username, "xc-fungus-01");
	/* Relative to the configuration's directory. */
	snprintf(want, sizeof(want), "%s/tests/fixtures/config/good/password.txt", top());
	assert_string_equal(c->mqtt.password_file, want);
	snprintf(want, sizeof(want), "%s/tests/fixtures/config/good/ca.pem", top());
	assert_string_equal(c->mqtt.tls_ca_file, want);
	snprintf(want, sizeof(want), "%s/tests/fixtures/config/good/cert.pem", top());
	assert_string_equal(c->mqtt.tls_cert_file, want);
	snprintf(want, sizeof(want), "%s/tests/fixtures/config/good/key.pem", top());
	assert_string_equal(c->mqtt.tls_key_file, want);
	assert_int_equal(c->mqtt.max_inflight, 50);
	assert_int_equal(c->mqtt.reconnect_min, 2);
	assert_int_equal(c->mqtt.reconnect_max, 120);

	/* Relative to state_dir. */
	assert_string_equal(c->storage.path, "/tmp/coldgate-test/data/readings.db");
	assert_int_equal(c->storage.max_size_mb, 512);
	assert_int_equal(c->storage.retain_days, 90);
	assert_int_equal(c->storage.sync, STORE_SYNC_NORMAL);
	assert_int_equal(c->storage.commit_interval_ms, 500);
	assert_int_equal(c->publish.interval, 30);

	assert_int_equal(c->nzones, 3);
	assert_string_equal(c->zones[0].id, "house-1");
	assert_string_equal(c->zones[0].name, "香菇出菇房 1");	/* byte for byte */
	assert_string_equal(c->zones[0].profile, "shiitake-fruiting");
	assert_int_equal(c->zones[0].line, 41);
	assert_string_equal(c->zones[1].name, "冷库 1");
	assert_string_equal(c->zones[1].profile, "cold-store");
	assert_string_equal(c->zones[2].id, "spare_2");
	assert_string_equal(c->zones[2].name, "spare_2");	/* name defaults to id */
	assert_null(c->zones[2].profile);

	assert_int_equal(c->nsensors, 2);
	s = &c->sensors[0];
	assert_string_equal(s->id, "h1-air");
	assert_string_equal(s->zone, "house-1");
	assert_int_equal(s->zone_idx, 0);
	assert_string_equal(s->driver, "sim");
	assert_int_equal(s->kind, SENSOR_SIM);
	assert_string_equal(s->sim.profile, "mushroom-house");
	assert_null(s->sim.script);
	assert_int_equal(s->sim.nscript, 0);
	assert_int_equal(s->sim.nfail, 0);
	assert_true(s->interval == 5.0);
	assert_int_equal(s->line, 47);
	assert_null(sensor_device(s));

	s = &c->sensors[1];
	assert_string_equal(s->id, "c1-probe");
	assert_int_equal(s->zone_idx, 1);
	assert_null(s->sim.profile);
	assert_int_equal(s->sim.quantity, Q_TEMPERATURE);
	assert_true(s->interval == 2.5);
	assert_int_equal(s->sim.nscript, 3);
	assert_true(s->sim.script[0].t == 0 && s->sim.script[0].v == 2.0);
	assert_true(s->sim.script[1].t == 30 && s->sim.script[1].v == 9.0);	/* ints as numbers */
	assert_true(s->sim.script[2].t == 120.5 && s->sim.script[2].v == 2.0);
	assert_int_equal(s->sim.nfail, 2);
	assert_true(s->sim.fail[0].from == 40 && s->sim.fail[0].to == 60);
	assert_true(s->sim.fail[1].from == 200.5 && s->sim.fail[1].to == 210);
	assert_null(sensor_device(s));
	assert_false(s->spike_filter);
	assert_true(c->sensors[0].spike_filter);		/* default */

	assert_int_equal(c->nalarms, 4);
	a = &c->alarms[0];
	assert_string_equal(a->zone, "cold-1");
	assert_true(a->has_quantity);
	assert_int_equal(a->quantity, Q_TEMPERATURE);
	assert_int_equal(a->type, ALARM_TYPE_THRESHOLD);
	assert_true(a->has_high && a->has_low);
	assert_true(a->high == 4.0 && a->low == 0.0);
	assert_true(a->hysteresis == 0.5);
	assert_int_equal(a->delay, 300);
	assert_int_equal(a->line, 56);
	a = &c->alarms[1];
	assert_true(a->has_quantity);
	assert_int_equal(a->quantity, Q_CO2);
	assert_true(a->has_high && !a->has_low);
	assert_true(a->high == 1000.0);
	assert_true(a->hysteresis == 0.0);			/* default */
	assert_int_equal(a->delay, 0);				/* default */
	a = &c->alarms[2];
	assert_true(!a->has_high && a->has_low);
	assert_true(a->low == 80.5);
	assert_null(a->from_profile);
	/*
	 * Then house-1's profile (shiitake-fruiting) adds its temperature rule;
	 * its co2 and humidity rules step aside for the explicit ones above,
	 * and cold-1's explicit temperature rule replaces all of cold-store's.
	 */
	a = &c->alarms[3];
	assert_string_equal(a->from_profile, "shiitake-fruiting");
	assert_string_equal(a->zone, "house-1");
	assert_true(a->has_quantity);
	assert_int_equal(a->quantity, Q_TEMPERATURE);
	assert_int_equal(a->type, ALARM_TYPE_THRESHOLD);
	assert_true(a->has_high && a->has_low);

	assert_int_equal(config_zone_index(c, "cold-1"), 1);
	assert_int_equal(config_zone_index(c, "cold-9"), -1);
	assert_int_equal(config_sensor_index(c, "c1-probe"), 1);
	assert_int_equal(config_sensor_index(c, "nope"), -1);
	config_free(c);
}

static void
minimal_config_takes_the_defaults(void **state)
{
	struct config *c;

	(void)state;
	c = load_good(at_top("tests/fixtures/config/good/minimal.cfg"));
	assert_string_equal(c->gateway.id, "gw-min");
	assert_null(c->gateway.site);
	assert_string_equal(c->gateway.state_dir, "/var/lib/coldgate");
	assert_string_equal(c->gateway.sysfs_root, "/sys");
	assert_string_equal(c->mqtt.host, "127.0.0.1");
	assert_int_equal(c->mqtt.port, 1883);
	assert_int_equal(c->mqtt.keepalive, 30);
	assert_string_equal(c->mqtt.base_topic, "coldgate");
	assert_string_equal(c->mqtt.client_id, "coldgate-gw-min");
	assert_null(c->mqtt.username);
	assert_null(c->mqtt.password_file);
	assert_null(c->mqtt.tls_ca_file);
	assert_null(c->mqtt.tls_cert_file);
	assert_null(c->mqtt.tls_key_file);
	assert_int_equal(c->mqtt.max_inflight, 20);
	assert_int_equal(c->mqtt.reconnect_min, 1);
	assert_int_equal(c->mqtt.reconnect_max, 60);
	assert_string_equal(c->storage.path, "/var/lib/coldgate/coldgate.db");
	assert_int_equal(c->storage.max_size_mb, 256);
	assert_int_equal(c->storage.retain_days, 30);
	assert_int_equal(c->storage.sync, STORE_SYNC_FULL);
	assert_int_equal(c->storage.commit_interval_ms, 1000);
	assert_int_equal(c->publish.interval, 60);
	assert_int_equal(c->watchdog_sec, 0);
	assert_int_equal(c->nzones, 0);
	assert_null(c->zones);
	assert_int_equal(c->nsensors, 0);
	assert_int_equal(c->nalarms, 0);
	config_free(c);
}

static void
hardware_keys_are_stored_and_paths_joined(void **state)
{
	struct config *c;

	(void)state;
	c = load_good(at_top("tests/fixtures/config/good/hardware.cfg"));
	/* state_dir ends in '/': no doubled slash. */
	assert_string_equal(c->storage.path, "/srv/coldgate/cg.db");
	assert_int_equal(c->nsensors, 2);
	assert_string_equal(c->sensors[0].driver, "gpio-contact");
	assert_int_equal(c->sensors[0].kind, SENSOR_GPIO);
	assert_string_equal(c->sensors[0].gpio.chip, "gpiochip0");
	assert_int_equal(c->sensors[0].gpio.line, 17);
	assert_true(c->sensors[0].gpio.active_low);
	assert_int_equal(c->sensors[0].gpio.debounce_ms, 50);	/* default */
	assert_null(sensor_device(&c->sensors[0]));
	assert_true(c->sensors[0].interval == 10.0);	/* default */
	assert_int_equal(c->sensors[1].kind, SENSOR_DEVICE);
	assert_string_equal(sensor_device(&c->sensors[1]), "28-00000a1b2c3d");
	assert_int_equal(c->sensors[1].dev.address, -1);	/* default */
	config_free(c);
}

static void
include_is_relative_to_the_config_file(void **state)
{
	struct config *c;
	char *errors;

	(void)state;
	c = load_good(at_top("tests/fixtures/config/good/include.cfg"));
	/* An absolute storage.path is kept as it is. */
	assert_string_equal(c->storage.path, "/data/cg.db");
	assert_int_equal(c->nzones, 1);
	assert_string_equal(c->zones[0].name, "香菇出菇房 1");
	assert_int_equal(c->sensors[0].zone_idx, 0);
	config_free(c);

	/* An error inside an included file names that file and its line. */
	errors = load_bad(at_top("tests/fixtures/config/multi/include-error.cfg"));
	assert_non_null(strstr(errors, "include-error.inc:3: zones[0].id: \"house 1\" is not a valid id"));
	free(errors);
}

/*
 * Each bad fixture names the one error it is about; a file whose errors do
 * not contain it fails with the file name and what it said instead.
 */
static void
every_bad_fixture_reports_its_error(void **state)
{
	char dir[4096], path[8192], line[1024], prefix[512];
	char tail[8192];
	struct dirent *de;
	size_t n = 0, len;
	FILE *fp;
	DIR *d;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/tests/fixtures/config/bad", top());
	if ((d = opendir(dir)) == NULL)
		fail_msg("%s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		const char *want;
		char *errors;

		len = strlen(de->d_name);
		if (len < 5 || strcmp(de->d_name + len - 4, ".cfg") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if ((fp = fopen(path, "r")) == NULL)
			fail_msg("%s: %s", path, strerror(errno));
		if (fgets(line, sizeof(line), fp) == NULL ||
		    strncmp(line, "# expect: ", 10) != 0)
			fail_msg("%s: first line is not \"# expect: ...\"", path);
		fclose(fp);
		line[strcspn(line, "\n")] = '\0';
		want = line + 10;
		/* The expectation is about this very file: "NAME.cfg:..." */
		snprintf(prefix, sizeof(prefix), "%s:", de->d_name);
		if (strncmp(want, prefix, strlen(prefix)) != 0)
			fail_msg("%s: expectation does not start with \"%s\"", path, prefix);

		errors = load_bad(path);
		/* Errors carry the path as given; the expectation is its tail. */
		snprintf(tail, sizeof(tail), "/%s", want);
		if (strstr(errors, tail) == NULL)
			fail_msg("%s:\n  want: %s\n  got:  %s", de->d_name, want, errors);
		free(errors);
		n++;
	}
	closedir(d);
	print_message("checked %zu bad configuration files\n", n);
	assert_true(n >= 25);
}

static void
missing_file_names_the_path_and_the_reason(void **state)
{
	char *errors = NULL;

	(void)state;
	assert_null(config_load("/nonexistent/coldgate.cfg", &errors));
	assert_string_equal(errors, "/nonexistent/coldgate.cfg: cannot read: No such file or directory\n");
	free(errors);

	assert_null(config_load(at_top("tests/fixtures/config"), &errors));
	assert_non_null(strstr(errors, "tests/fixtures/config: cannot read: Is a directory\n"));
	free(errors);
}

/* FILE in messages is the path exactly as the caller spelled it. */
static void
errors_use_the_path_as_given(void **state)
{
	char path[4096];
	char *errors;

	(void)state;
	snprintf(path, sizeof(path), "%s/tests/fixtures/config/./bad/port-range.cfg", top());
	errors = load_bad(path);
	assert_int_equal(strncmp(errors, path, strlen(path)), 0);
	assert_string_equal(errors + strlen(path), ":4: mqtt.port: 70000 is out of range 1..65535\n");
	free(errors);
}

static void
every_error_in_a_file_is_reported_in_line_order(void **state)
{
	static const char *const want[] = {
		"errors.cfg:2: gateway.id: \"gw 1\" is not a valid id",
		"errors.cfg:4: mqtt.port: 70000 is out of range 1..65535",
		"errors.cfg:5: mqtt.base_topic: must not contain a wildcard",
		"errors.cfg:6: mqtt.colour: unknown key",
		"errors.cfg:8: storage.sync: \"fast\" is not one of full, normal",
		"errors.cfg:11: zones[1].id: duplicate id \"house-1\" (first at line 10)",
		"errors.cfg:14: sensors[0].zone: unknown zone \"cold-9\"",
		"errors.cfg:15: sensors[1].driver: unknown driver \"xyz\"",
		"errors.cfg:18: alarms[0].low: 8 is not below high 2",
	};
	const char *prev = NULL, *at;
	char *errors;
	size_t i;

	(void)state;
	errors = load_bad(at_top("tests/fixtures/config/multi/errors.cfg"));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if ((at = strstr(errors, want[i])) == NULL)
			fail_msg("missing \"%s\" in:\n%s", want[i], errors);
		if (prev != NULL && at < prev)
			fail_msg("\"%s\" is out of line order in:\n%s", want[i], errors);
		prev = at;
	}
	assert_int_equal(count_lines(errors), sizeof(want) / sizeof(want[0]));
	free(errors);
}

/* A file of nothing but mistakes gives a bounded report. */
static void
too_many_errors_are_capped(void **state)
{
	char path[] = "/tmp/test_config.XXXXXX";
	char *errors;
	FILE *fp;
	int fd, i;

	(void)state;
	if ((fd = mkstemp(path)) == -1 || (fp = fdopen(fd, "w")) == NULL)
		fail_msg("mkstemp: %s", strerror(errno));
	fprintf(fp, "gateway = { id = \"gw-1\"; };\n");
	for (i = 0; i < 120; i++)
		fprintf(fp, "junk%d = %d;\n", i, i);
	fclose(fp);
	errors = load_bad(path);
	unlink(path);
	assert_int_equal(count_lines(errors), 51);
	assert_non_null(strstr(errors, ":2: junk0: unknown key\n"));
	assert_non_null(strstr(errors, ":51: junk49: unknown key\n"));
	assert_null(strstr(errors, "junk50:"));
	assert_non_null(strstr(errors, ": 70 more errors not shown\n"));
	free(errors);
}

static void
shipped_configs_load(void **state)
{
	struct config *c;
	const struct sensor_cfg *s;
	int i;

	(void)state;
	c = load_good(at_top("config/coldgate.cfg"));
	assert_true(c->nzones > 0 && c->nsensors > 0 && c->nalarms > 0);
	config_free(c);

	/* The README's wiring examples: every driver of real hardware and outputs. */
	c = load_good(at_top("config/examples/cold-room.cfg"));
	assert_int_equal(c->nsensors, 5);
	assert_int_equal(c->noutputs, 2);
	assert_true((i = config_sensor_index(c, "c2-air")) >= 0);
	s = &c->sensors[i];
	assert_int_equal(s->kind, SENSOR_MODBUS);
	assert_string_equal(s->modbus.host, "192.168.10.50");
	assert_int_equal(s->modbus.unit, 3);
	assert_int_equal(s->modbus.nregs, 2);			/* map = "input-t-rh" */
	assert_int_equal(s->modbus.regs[0].quantity, Q_TEMPERATURE);
	assert_int_equal(s->modbus.regs[0].fn, MODBUS_FN_INPUT);
	assert_int_equal(s->modbus.regs[0].reg, 1);
	assert_true(s->modbus.regs[0].scale == 0.1 && s->modbus.regs[0].is_signed);
	assert_int_equal(s->modbus.regs[1].quantity, Q_HUMIDITY);
	assert_int_equal(s->modbus.regs[1].reg, 2);
	assert_true((i = config_sensor_index(c, "c1-air")) >= 0);
	assert_int_equal(c->sensors[i].dev.address, 0x44);
	assert_true((i = config_sensor_index(c, "c1-door")) >= 0);
	assert_int_equal(c->sensors[i].gpio.line, 27);
	assert_int_equal(c->sensors[i].gpio.debounce_ms, 50);
	assert_int_equal(c->outputs[0].role, OUTPUT_BUZZER);
	assert_int_equal(c->outputs[0].nzones, 1);
	assert_string_equal(c->outputs[0].zones[0], "cold-1");
	assert_int_equal(c->outputs[1].role, OUTPUT_LAMP);
	assert_true(c->outputs[1].active_low);
	assert_int_equal(c->outputs[1].nzones, 0);
	config_free(c);
	c = load_good(at_top("config/examples/mushroom-house.cfg"));
	assert_true((i = config_sensor_index(c, "h1-far")) >= 0);
	s = &c->sensors[i];
	assert_string_equal(s->modbus.device, "/dev/ttyUSB0");
	assert_int_equal(s->modbus.baud, 9600);
	assert_int_equal(s->modbus.parity, 'N');
	assert_int_equal(s->modbus.regs[0].quantity, Q_HUMIDITY);	/* map = "holding-rh-t" */
	assert_int_equal(s->modbus.regs[0].fn, MODBUS_FN_HOLDING);
	assert_int_equal(s->modbus.regs[0].reg, 0);
	assert_int_equal(s->modbus.regs[1].reg, 1);
	assert_true(s->modbus.regs[1].is_signed);
	config_free(c);

	c = load_good(at_top("config/demo.cfg"));
	assert_string_equal(c->gateway.id, "demo-gw");
	assert_string_equal(c->gateway.site, "示范园区");
	assert_string_equal(c->mqtt.host, "127.0.0.1");
	assert_int_equal(c->mqtt.port, 1883);
	assert_int_equal(c->publish.interval, 10);
	assert_int_equal(c->nzones, 2);
	assert_string_equal(c->zones[0].name, "香菇出菇房 1");
	assert_string_equal(c->zones[1].name, "冷库 1");
	assert_int_equal(c->nsensors, 3);
	assert_true((i = config_sensor_index(c, "c1-probe")) >= 0);
	s = &c->sensors[i];
	assert_int_equal(s->sim.nscript, 5);
	assert_true(s->sim.script[2].t == 90 && s->sim.script[2].v == 9.0);
	assert_int_equal(s->sim.nfail, 1);
	assert_true(s->sim.fail[0].from == 120 && s->sim.fail[0].to == 140);
	/* Three of its own, then what the zones' profiles add. */
	assert_true(c->nalarms > 3);
	assert_true(c->alarms[0].high == 4.0 && c->alarms[0].low == 0.0);
	assert_int_equal(c->alarms[0].delay, 30);
	assert_null(c->alarms[2].from_profile);
	assert_non_null(c->alarms[3].from_profile);
	config_free(c);
}

/* A mistake inside a profile file is reported against that file. */
static void
profile_errors_name_the_profile_file(void **state)
{
	char *errors = NULL;
	struct config *c;

	(void)state;
	c = config_load(at_top("tests/fixtures/config/profile/uses-broken.cfg"), &errors);
	assert_null(c);
	assert_non_null(errors);
	if (strstr(errors, "bad/profiles-bad/broken.cfg:5: profile.alarms[0].colour: unknown key") ==
	    NULL)
		fail_msg("errors:\n%s", errors);
	free(errors);
}

/*
 * Fail each allocation of config_load in turn, on a good file and on a bad
 * one: every failure must end in NULL and "FILE: out of memory", never in
 * a config with a hole in it (and, under valgrind or ASan, never in a leak).
 */
static void
every_failed_allocation_is_reported(void **state)
{
	static const char *const files[] = {
		"tests/fixtures/config/good/full.cfg",
		"tests/fixtures/config/multi/errors.cfg",
	};
	char path[4096], want[4200];
	struct config *c;
	char *errors;
	size_t f;
	int n, injected;

	(void)state;
	for (f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		snprintf(path, sizeof(path), "%s", at_top(files[f]));
		snprintf(want, sizeof(want), "%s: out of memory\n", path);
		for (n = 1;; n++) {
			alloc_count = 0;
			alloc_fail_at = n;
			c = config_load(path, &errors);
			injected = alloc_count >= n;
			alloc_fail_at = 0;
			if (!injected)
				break;
			if (c != NULL)
				fail_msg("%s: allocation %d failed, yet it loaded", path, n);
			if (errors == NULL || strcmp(errors, want) != 0)
				fail_msg("%s: allocation %d failed, but errors say:\n%s",
				    path, n, errors ? errors : "(NULL)");
			free(errors);
		}
		/* With nothing failing, the ordinary outcome. */
		if (f == 0) {
			assert_non_null(c);
			config_free(c);
		} else {
			assert_null(c);
			assert_int_equal(count_lines(errors), 9);
			free(errors);
		}
		assert_true(n > 10);
	}
}

static void
free_accepts_null(void **state)
{
	(void)state;
	config_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(profile_errors_name_the_profile_file),
		cmocka_unit_test(valid_ids_are_1_to_64_of_alnum_dash_underscore),
		cmocka_unit_test(full_config_gives_every_value),
		cmocka_unit_test(minimal_config_takes_the_defaults),
		cmocka_unit_test(hardware_keys_are_stored_and_paths_joined),
		cmocka_unit_test(include_is_relative_to_the_config_file),
		cmocka_unit_test(every_bad_fixture_reports_its_error),
		cmocka_unit_test(missing_file_names_the_path_and_the_reason),
		cmocka_unit_test(errors_use_the_path_as_given),
		cmocka_unit_test(every_error_in_a_file_is_reported_in_line_order),
		cmocka_unit_test(too_many_errors_are_capped),
		cmocka_unit_test(shipped_configs_load),
		cmocka_unit_test(every_failed_allocation_is_reported),
		cmocka_unit_test(free_accepts_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
