/*
 * The drivers' configuration key tables (config.h struct cfg_key, sensor.h
 * and output.h .keys), walked for every sensor and output driver in the
 * tables of sensors/drivers.c: each key's default lies in its range, a key
 * two drivers share has one type, every key given out of range is an error
 * naming file, line and key, and the Modbus baud rates the configuration
 * takes are exactly those the driver can open through libmodbus.
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
#include <termios.h>
#include <unistd.h>

#include <modbus.h>

#include "config.h"
#include "output.h"
#include "sensor.h"

#define MAX_TABLES	32

/*
 * A kind of configuration group whose keys are partly every group's and
 * partly its driver's.  A driver's table must not take over the common
 * keys; its fields lie within the group's struct.
 */
struct kind {
	const char	*list;		/* the group's list: "sensors" */
	const char *const *common;	/* NULL-terminated */
	size_t		 size;		/* sizeof the struct the keys fill */
	const char	*head;		/* an entry's keys before "driver", for a test file */
};

static const char *const sensor_common[] = {
	"id", "zone", "driver", "interval", "spike_filter", NULL
};
static const char *const output_common[] = { "id", "driver", "role", "severity", "zones", NULL };

static const struct kind sensors = {
	"sensors", sensor_common, sizeof(struct sensor_cfg), "id = \"s\"; zone = \"z\";"
};
static const struct kind outputs = {
	"outputs", output_common, sizeof(struct output_cfg), "id = \"o\"; role = \"lamp\";"
};

/* A driver's key table. */
struct table {
	const struct kind *kind;
	const char	*driver;
	const struct cfg_key *keys;
};

/* Every driver's table, the sensor drivers' then the output drivers'; the count. */
static size_t
all_tables(struct table *t)
{
	const struct sensor_driver *sd;
	const struct output_driver *od;
	size_t n = 0;

	for (size_t i = 0; (sd = sensor_driver_at(i)) != NULL; i++) {
		assert_true(n < MAX_TABLES);
		t[n++] = (struct table){ &sensors, sd->name, sd->keys };
	}
	for (size_t i = 0; (od = output_driver_at(i)) != NULL; i++) {
		assert_true(n < MAX_TABLES);
		t[n++] = (struct table){ &outputs, od->name, od->keys };
	}
	return n;
}

static bool
in_values(const int *values, int v)
{
	for (; *values != 0; values++)
		if (*values == v)
			return true;
	return false;
}

static size_t
count_names(const char *const *names)
{
	size_t n = 0;

	while (names[n] != NULL)
		n++;
	return n;
}

/* Whether v is what one of an enum key's names stores. */
static bool
enum_has_code(const struct cfg_key *k, double v)
{
	for (size_t i = 0; i < count_names(k->names); i++)
		if ((k->codes != NULL ? k->codes[i] : (int)i) == v)
			return true;
	return false;
}

static const struct cfg_key *
key_of(const struct cfg_key *keys, const char *name)
{
	for (const struct cfg_key *k = keys; k != NULL && k->name != NULL; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

/*
 * Load a configuration with one group of that kind, of driver drv, whose
 * line 5 is "key = value;".  Returns the errors (caller frees), NULL if it
 * loaded; *path gets the file's name for messages (caller frees).
 */
static char *
load_group(const struct kind *kind, const char *drv, const char *key, const char *value,
    char **path)
{
	char tmpl[] = "/tmp/test_driverkeys.XXXXXX";
	struct config *c;
	char *errors;
	FILE *fp;
	int fd;

	if ((fd = mkstemp(tmpl)) == -1 || (fp = fdopen(fd, "w")) == NULL)
		fail_msg("mkstemp: %s", strerror(errno));
	fprintf(fp, "gateway = { id = \"gw-1\"; };\n"
	    "zones = ( { id = \"z\"; } );\n"
	    "%s = (\n"
	    "  { %s driver = \"%s\";\n"
	    "    %s = %s;\n"
	    "  }\n"
	    ");\n", kind->list, kind->head, drv, key, value);
	fclose(fp);
	c = config_load(tmpl, &errors);
	config_free(c);
	unlink(tmpl);
	if ((*path = strdup(tmpl)) == NULL)
		fail_msg("out of memory");
	return errors;
}

static char *
load_sensor(const char *drv, const char *key, const char *value, char **path)
{
	return load_group(&sensors, drv, key, value, path);
}

/* Every key: a name, a field the size of its type, a default within its range. */
static void
every_key_has_a_default_within_its_range(void **state)
{
	struct table t[MAX_TABLES];
	size_t nt = all_tables(t), nkeys = 0, noutput = 0;

	(void)state;
	for (size_t i = 0; i < nt; i++) {
		for (const struct cfg_key *k = t[i].keys; k != NULL && k->name != NULL; k++) {
			const char *what = NULL;

			nkeys++;
			noutput += t[i].kind == &outputs;
			for (const char *const *c = t[i].kind->common; *c != NULL; c++)
				if (strcmp(k->name, *c) == 0)
					what = "is a key every group of its kind has";
			if (key_of(t[i].keys, k->name) != k)
				what = "is in the table twice";
			if (k->type != CFG_HOOK && (k->size != config_key_size(k->type) ||
			    k->off + k->size > t[i].kind->size))
				what = "fills a field not of its type's size";
			/* A required key has no default: absent is an error. */
			switch (k->required ? CFG_HOOK : k->type) {
			case CFG_INT:
				if (k->values != NULL ? !in_values(k->values, (int)k->def) :
				    k->def < k->min || k->def > k->max || k->def != (int)k->def)
					what = "has a default out of its range";
				if (k->min > k->max)
					what = "has an empty range";
				break;
			case CFG_DOUBLE:
				if (!(k->def >= k->min && k->def <= k->max))
					what = "has a default out of its range";
				break;
			case CFG_ENUM:
				if (k->names == NULL || count_names(k->names) == 0)
					what = "has no names";
				else if (!enum_has_code(k, k->def))
					what = "has a default that is none of its names";
				break;
			case CFG_QUANTITY:
				if (k->def < 0 || k->def >= Q_COUNT)
					what = "has a default that is no quantity";
				break;
			case CFG_BOOL:
				if (k->def != 0 && k->def != 1)
					what = "has a default that is not true or false";
				break;
			case CFG_STRING:
			case CFG_HOOK:
				break;
			}
			if (what != NULL)
				fail_msg("driver \"%s\": key \"%s\" %s", t[i].driver, k->name, what);
		}
	}
	assert_true(nkeys >= 20);	/* the walk saw the tables */
	assert_true(noutput >= 3);	/* ... the output drivers' too */
}

/*
 * "device" means a string for every driver that has one; so does every
 * shared key, sensor driver's or output driver's ("chip", "line").
 */
static void
shared_keys_have_one_type(void **state)
{
	struct table t[MAX_TABLES];
	size_t nt = all_tables(t), shared = 0, across = 0;
	const struct cfg_key *kb;

	(void)state;
	for (size_t i = 0; i < nt; i++)
		for (size_t j = i + 1; j < nt; j++)
			for (const struct cfg_key *k = t[i].keys; k != NULL && k->name != NULL; k++) {
				if ((kb = key_of(t[j].keys, k->name)) == NULL)
					continue;
				shared++;
				across += t[i].kind != t[j].kind;
				if (kb->type != k->type)
					fail_msg("key \"%s\": driver \"%s\" says type %d, \"%s\" %d",
					    k->name, t[i].driver, k->type, t[j].driver, kb->type);
			}
	assert_true(shared > 0);
	assert_true(across > 0);
}

/* A value of k's type that it refuses, in configuration syntax. */
static void
bad_value(const struct cfg_key *k, char *buf, size_t size)
{
	int v;

	switch (k->type) {
	case CFG_INT:
		if (k->values != NULL) {
			for (v = k->values[0] + 1; in_values(k->values, v); v++)
				;
			snprintf(buf, size, "%d", v);
		} else
			snprintf(buf, size, "%lld", (long long)k->max + 1);
		break;
	case CFG_DOUBLE:
		snprintf(buf, size, "%g", isinf(k->max) ? k->min - 1 : k->max + 1);
		break;
	case CFG_STRING:
		snprintf(buf, size, "\"\"");
		break;
	case CFG_BOOL:
		snprintf(buf, size, "2");
		break;
	case CFG_ENUM:
	case CFG_QUANTITY:
		snprintf(buf, size, "\"no-such-thing\"");
		break;
	case CFG_HOOK:
		buf[0] = '\0';
		break;
	}
}

/*
 * Each key of each driver, given a value it refuses: "FILE:5: sensors[0].KEY: ..."
 * (or outputs[0]).
 */
static void
every_key_out_of_range_is_an_error_naming_it(void **state)
{
	struct table t[MAX_TABLES];
	size_t nt = all_tables(t), tried = 0, noutput = 0;
	char value[64], want[512], *path, *errors;

	(void)state;
	for (size_t i = 0; i < nt; i++)
		for (const struct cfg_key *k = t[i].keys; k != NULL && k->name != NULL; k++) {
			if (k->type == CFG_HOOK)
				continue;
			bad_value(k, value, sizeof(value));
			errors = load_group(t[i].kind, t[i].driver, k->name, value, &path);
			snprintf(want, sizeof(want), "%s:5: %s[0].%s: ", path, t[i].kind->list,
			    k->name);
			if (errors == NULL || strstr(errors, want) == NULL)
				fail_msg("driver \"%s\", %s = %s: want \"%s...\" in:\n%s", t[i].driver,
				    k->name, value, want, errors != NULL ? errors : "(loaded)");
			/* ... and that error is not that the key is unknown or foreign. */
			assert_null(strstr(strstr(errors, want), "unknown key"));
			assert_null(strstr(strstr(errors, want), "not used by driver"));
			free(errors);
			free(path);
			tried++;
			noutput += t[i].kind == &outputs;
		}
	assert_true(tried >= 20);
	assert_true(noutput >= 3);
}

/* A key of one driver on another is an error naming both. */
static void
another_drivers_key_names_the_driver(void **state)
{
	char *path, *errors, want[512];

	(void)state;
	errors = load_sensor("ds18b20", "baud", "9600", &path);
	snprintf(want, sizeof(want), "%s:5: sensors[0].baud: not used by driver \"ds18b20\"\n",
	    path);
	assert_non_null(errors);
	assert_non_null(strstr(errors, want));
	free(errors);
	free(path);
	errors = load_sensor("ds18b20", "colour", "1", &path);
	snprintf(want, sizeof(want), "%s:5: sensors[0].colour: unknown key\n", path);
	assert_non_null(strstr(errors, want));
	free(errors);
	free(path);
}

/*
 * An output's keys are the output drivers': a sensor driver's key there
 * is no key of any output driver, and an unknown output driver's message
 * names every one in the table.
 */
static void
output_keys_are_the_output_drivers(void **state)
{
	const struct output_driver *d;
	char *path, *errors, want[512];

	(void)state;
	errors = load_group(&outputs, "gpio-output", "debounce_ms", "50", &path);
	snprintf(want, sizeof(want), "%s:5: outputs[0].debounce_ms: unknown key\n", path);
	assert_non_null(errors);
	assert_non_null(strstr(errors, want));
	free(errors);
	free(path);

	errors = load_group(&outputs, "pwm", "chip", "\"gpiochip0\"", &path);
	snprintf(want, sizeof(want), "%s:4: outputs[0].driver: unknown output driver \"pwm\" (want ",
	    path);
	assert_non_null(errors);
	assert_non_null(strstr(errors, want));
	for (size_t i = 0; (d = output_driver_at(i)) != NULL; i++)
		if (strstr(strstr(errors, want), d->name) == NULL)
			fail_msg("output driver \"%s\" not named in:\n%s", d->name, errors);
	/* Unknown driver: the keys it would have are not asked for. */
	assert_null(strstr(errors, "missing"));
	free(errors);
	free(path);
}

/* The termios speed libmodbus sets for an RTU line at baud, read back from a pty. */
static speed_t
libmodbus_speed(int baud)
{
	struct termios t;
	modbus_t *ctx;
	speed_t sp;
	int m;

	if ((m = posix_openpt(O_RDWR | O_NOCTTY)) < 0 || grantpt(m) < 0 || unlockpt(m) < 0)
		fail_msg("pty: %s", strerror(errno));
	if ((ctx = modbus_new_rtu(ptsname(m), baud, 'N', 8, 1)) == NULL ||
	    modbus_connect(ctx) < 0)
		fail_msg("libmodbus on %s: %s", ptsname(m), modbus_strerror(errno));
	if (tcgetattr(modbus_get_socket(ctx), &t) < 0)
		fail_msg("tcgetattr: %s", strerror(errno));
	sp = cfgetospeed(&t);
	modbus_close(ctx);
	modbus_free(ctx);
	close(m);
	return sp;
}

/* The driver opening a Modbus RTU sensor at baud: 0 or its -errno. */
static int
driver_opens(int baud)
{
	const struct sensor_driver *d = sensor_driver_find("modbus");
	struct modbus_reg reg = { .quantity = Q_TEMPERATURE, .scale = 1 };
	struct sensor_cfg sc = {
		.id = "s", .driver = "modbus", .kind = SENSOR_MODBUS,
		.modbus = { .device = "/dev/null", .baud = baud, .parity = 'N', .data_bits = 8,
		    .stop_bits = 1, .unit = 1, .timeout_ms = 500, .regs = &reg, .nregs = 1 },
	};
	struct config conf = { .sensors = &sc, .nsensors = 1 };
	void *st = NULL;
	int rc;

	if ((rc = d->open(&conf, &sc, &st)) == 0)
		d->close(st);
	return rc;
}

/*
 * The configuration takes a baud rate exactly when the driver can open it:
 * each rate of the "baud" key loads, opens, and libmodbus really sets it
 * (it runs an unknown rate at 9600 without a word); rates it cannot set
 * are refused at configuration time, naming the key, and by the driver.
 */
static void
baud_rates_are_what_the_driver_can_open(void **state)
{
	static const int refused[] = { 14400, 2000000, 1800, 50 };
	const struct cfg_key *baud = key_of(sensor_driver_find("modbus")->keys, "baud");
	char value[96], want[512], *path, *errors;

	(void)state;
	assert_non_null(baud);
	assert_non_null(baud->values);
	for (size_t i = 0; baud->values[i] != 0; i++) {
		int b = baud->values[i];

		snprintf(value, sizeof(value), "%d; device = \"/dev/ttyUSB0\"; map = \"input-t-rh\"",
		    b);
		if ((errors = load_sensor("modbus", "baud", value, &path)) != NULL)
			fail_msg("baud %d refused:\n%s", b, errors);
		free(path);
		assert_int_equal(driver_opens(b), 0);
		if (b != 9600 && libmodbus_speed(b) == B9600)
			fail_msg("baud %d: libmodbus runs it at 9600", b);
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		snprintf(value, sizeof(value), "%d; device = \"/dev/ttyUSB0\"; map = \"input-t-rh\"",
		    refused[i]);
		errors = load_sensor("modbus", "baud", value, &path);
		snprintf(want, sizeof(want), "%s:5: sensors[0].baud: %d is not ", path, refused[i]);
		if (errors == NULL || strstr(errors, want) == NULL)
			fail_msg("baud %d: want \"%s...\" in:\n%s", refused[i], want,
			    errors != NULL ? errors : "(loaded)");
		free(errors);
		free(path);
		assert_int_equal(driver_opens(refused[i]), -EINVAL);
		assert_int_equal(libmodbus_speed(refused[i]), B9600);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_key_has_a_default_within_its_range),
		cmocka_unit_test(shared_keys_have_one_type),
		cmocka_unit_test(every_key_out_of_range_is_an_error_naming_it),
		cmocka_unit_test(another_drivers_key_names_the_driver),
		cmocka_unit_test(output_keys_are_the_output_drivers),
		cmocka_unit_test(baud_rates_are_what_the_driver_can_open),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
