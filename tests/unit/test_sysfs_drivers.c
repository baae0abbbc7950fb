/*
 * The sysfs drivers (ds18b20, dht22/dht11, hwmon) against the fixture tree
 * in tests/fixtures/sysfs (see its README.md for what each device is).
 * COLDGATE_TOP is the repository top; the hwmon hot-plug test works on a
 * copy of the tree in a temp dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "sensor.h"

static const char *
top(void)
{
	const char *t = getenv("COLDGATE_TOP");

	return t != NULL ? t : ".";
}

static char fixture_root[4096];

/* Open driver NAME on DEVICE under ROOT; returns the state, asserts success. */
static void *
open_dev(const char *name, const char *root, const char *device, const struct sensor_driver **drvp)
{
	const struct sensor_driver *drv = sensor_driver_find(name);
	struct config conf;
	struct sensor_cfg sc;
	void *state = NULL;

	assert_non_null(drv);
	memset(&conf, 0, sizeof(conf));
	memset(&sc, 0, sizeof(sc));
	conf.gateway.sysfs_root = (char *)root;
	sc.device = (char *)device;
	snprintf(sc.id, sizeof(sc.id), "s1");
	assert_int_equal(drv->open(&conf, &sc, &state), 0);
	assert_non_null(state);
	*drvp = drv;
	return state;
}

/* One read of DEVICE with driver NAME in the fixture tree; the rc. */
static int
read_dev(const char *name, const char *device, struct reading *out)
{
	const struct sensor_driver *drv;
	struct sensor_clock clk = { 0, 0 };
	void *state = open_dev(name, fixture_root, device, &drv);
	int rc;

	for (int i = 0; i < SENSOR_MAX_READINGS; i++)
		out[i] = (struct reading){ (enum quantity)-1, -999 };
	rc = drv->read(state, &clk, out, SENSOR_MAX_READINGS);
	drv->close(state);
	if (rc < 0)	/* a failed read never yields a reading */
		assert_true(out[0].value == -999);
	return rc;
}

static int
setup_root(void **st)
{
	(void)st;
	snprintf(fixture_root, sizeof(fixture_root), "%s/tests/fixtures/sysfs", top());
	return 0;
}

static void
ds18b20_good(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];

	(void)st;
	assert_int_equal(read_dev("ds18b20", "28-000000000001", r), 1);
	assert_int_equal(r[0].q, Q_TEMPERATURE);
	assert_true(r[0].value == 21.375);
}

static void
ds18b20_errors(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];

	(void)st;
	assert_int_equal(read_dev("ds18b20", "28-000000000002", r), -EBADMSG);
	assert_int_equal(read_dev("ds18b20", "28-000000000003", r), -ERANGE);
	assert_int_equal(read_dev("ds18b20", "28-000000000004", r), -EIO);
	assert_int_equal(read_dev("ds18b20", "28-000000000006", r), -ERANGE);
	assert_int_equal(read_dev("ds18b20", "28-000000000007", r), -EIO);
	assert_int_equal(read_dev("ds18b20", "28-0000000000ff", r), -ENODEV);
}

static void
ds18b20_temperature_attribute(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];

	(void)st;
	assert_int_equal(read_dev("ds18b20", "28-000000000005", r), 1);
	assert_int_equal(r[0].q, Q_TEMPERATURE);
	assert_true(r[0].value == -3.125);
}

static void
bad_device_config(void **st)
{
	static const char *const drivers[] = { "ds18b20", "dht22", "dht11", "hwmon" };
	struct config conf;
	struct sensor_cfg sc;
	void *state = NULL;

	(void)st;
	memset(&conf, 0, sizeof(conf));
	memset(&sc, 0, sizeof(sc));
	conf.gateway.sysfs_root = fixture_root;
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		const struct sensor_driver *drv = sensor_driver_find(drivers[i]);

		assert_non_null(drv);
		sc.device = NULL;
		assert_int_equal(drv->open(&conf, &sc, &state), -EINVAL);
		sc.device = (char *)"";
		assert_int_equal(drv->open(&conf, &sc, &state), -EINVAL);
		drv->close(NULL);
	}
	sc.device = (char *)"../../etc";
	assert_int_equal(sensor_driver_find("ds18b20")->open(&conf, &sc, &state), -EINVAL);
	assert_int_equal(sensor_driver_find("dht22")->open(&conf, &sc, &state), -EINVAL);
}

static void
dht_good(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];

	(void)st;
	assert_int_equal(read_dev("dht22", "iio:device0", r), 2);
	assert_int_equal(r[0].q, Q_TEMPERATURE);
	assert_true(r[0].value == 4.5);
	assert_int_equal(r[1].q, Q_HUMIDITY);
	assert_true(r[1].value == 91.5);
	assert_int_equal(read_dev("dht11", "iio:device0", r), 2);
}

static void
dht_errors(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];

	(void)st;
	assert_int_equal(read_dev("dht22", "iio:device1", r), -EIO);	/* no humidity file */
	assert_int_equal(read_dev("dht22", "iio:device2", r), -ERANGE);	/* 105 %RH */
	assert_int_equal(read_dev("dht22", "iio:device3", r), -EIO);	/* read fails */
	assert_int_equal(read_dev("dht22", "iio:device9", r), -ENODEV);
}

static void
dht_small_buffer(void **st)
{
	const struct sensor_driver *drv;
	struct sensor_clock clk = { 0, 0 };
	struct reading r[1];
	void *state = open_dev("dht22", fixture_root, "iio:device0", &drv);

	(void)st;
	assert_int_equal(drv->read(state, &clk, r, 1), -ENOBUFS);
	drv->close(state);
}

static void
hwmon_by_name(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];

	(void)st;
	assert_int_equal(read_dev("hwmon", "sht3x", r), 2);
	assert_int_equal(r[0].q, Q_TEMPERATURE);
	assert_true(r[0].value == 2.5);
	assert_int_equal(r[1].q, Q_HUMIDITY);
	assert_true(r[1].value == 87.25);
	assert_int_equal(read_dev("hwmon", "bme280", r), 1);
	assert_int_equal(r[0].q, Q_TEMPERATURE);
	assert_true(r[0].value == -1.5);
	assert_int_equal(read_dev("hwmon", "sht4x", r), -ENODEV);
}

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A shell command that must succeed (paths are from mkdtemp: no quotes). */
static void
run(const char *fmt, ...)
{
	char cmd[16384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

/* The sht3x goes away, comes back as another hwmonN, and its old number is reused. */
static void
hwmon_disappears_and_returns(void **st)
{
	char tmp[] = "/tmp/coldgate-sysfs-XXXXXX", root[4096], a[4200], b[4200];
	const struct sensor_driver *drv;
	struct sensor_clock clk = { 0, 0 };
	struct reading r[SENSOR_MAX_READINGS];
	void *state;

	(void)st;
	assert_non_null(mkdtemp(tmp));
	run("cp -r '%s' '%s/sysfs'", fixture_root, tmp);
	snprintf(root, sizeof(root), "%s/sysfs", tmp);
	state = open_dev("hwmon", root, "sht3x", &drv);
	assert_int_equal(drv->read(state, &clk, r, SENSOR_MAX_READINGS), 2);

	/* Unplugged. */
	snprintf(a, sizeof(a), "%s/class/hwmon/hwmon1", root);
	snprintf(b, sizeof(b), "%s/gone-hwmon1", tmp);
	assert_int_equal(rename(a, b), 0);
	r[0].value = -999;
	assert_int_equal(drv->read(state, &clk, r, SENSOR_MAX_READINGS), -ENODEV);
	assert_true(r[0].value == -999);

	/* Another chip takes its number: not to be read as the sht3x. */
	run("mkdir '%s' && echo lm75 > '%s/name' && echo 30000 > '%s/temp1_input'", a, a, a);
	assert_int_equal(drv->read(state, &clk, r, SENSOR_MAX_READINGS), -ENODEV);

	/* Plugged back in, as hwmon7. */
	snprintf(a, sizeof(a), "%s/class/hwmon/hwmon7", root);
	assert_int_equal(rename(b, a), 0);
	assert_int_equal(drv->read(state, &clk, r, SENSOR_MAX_READINGS), 2);
	assert_true(r[0].value == 2.5);
	assert_true(r[1].value == 87.25);
	drv->close(state);
	run("rm -rf '%s'", tmp);
}

/* device = "auto": the only thermometer on the bus, looked up at each read. */
static void
ds18b20_auto(void **st)
{
	char tmp[] = "/tmp/coldgate-sysfs-XXXXXX", root[4096];
	const struct sensor_driver *drv;
	struct sensor_clock clk = { 0, 0 };
	struct reading r[SENSOR_MAX_READINGS];
	void *state;

	(void)st;
	/* Seven probes in the fixture tree: which one? */
	assert_int_equal(read_dev("ds18b20", "auto", r), -ENOTUNIQ);

	assert_non_null(mkdtemp(tmp));
	snprintf(root, sizeof(root), "%s/sysfs", tmp);
	run("mkdir -p '%s/bus/w1/devices/w1_bus_master1'", root);
	state = open_dev("ds18b20", root, "auto", &drv);
	assert_int_equal(drv->read(state, &clk, r, SENSOR_MAX_READINGS), -ENODEV);
	run("cp -r '%s/bus/w1/devices/28-000000000001' '%s/bus/w1/devices/'", fixture_root, root);
	assert_int_equal(drv->read(state, &clk, r, SENSOR_MAX_READINGS), 1);
	assert_true(r[0].value == 21.375);
	/* The probe is replaced by another one. */
	run("mv '%s/bus/w1/devices/28-000000000001' '%s/bus/w1/devices/28-0000000000aa' && "
	    "echo 4250 > '%s/bus/w1/devices/28-0000000000aa/temperature' && "
	    "rm '%s/bus/w1/devices/28-0000000000aa/w1_slave'", root, root, root, root);
	assert_int_equal(drv->read(state, &clk, r, SENSOR_MAX_READINGS), 1);
	assert_true(r[0].value == 4.25);
	drv->close(state);
	run("rm -rf '%s'", tmp);
}

/* The config accepts the new driver names. */
static void
config_accepts_drivers(void **st)
{
	char path[] = "/tmp/coldgate-sysfs-cfg-XXXXXX", *errors = NULL;
	struct config *c;
	FILE *f;
	int fd;

	(void)st;
	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	fprintf(f,
	    "gateway = { id = \"gw-1\"; sysfs_root = \"%s\"; };\n"
	    "zones = ( { id = \"cold-1\"; } );\n"
	    "sensors = (\n"
	    "  { id = \"a\"; zone = \"cold-1\"; driver = \"ds18b20\"; device = \"28-000000000001\"; },\n"
	    "  { id = \"b\"; zone = \"cold-1\"; driver = \"dht22\"; device = \"iio:device0\"; },\n"
	    "  { id = \"c\"; zone = \"cold-1\"; driver = \"dht11\"; device = \"iio:device0\"; },\n"
	    "  { id = \"d\"; zone = \"cold-1\"; driver = \"hwmon\"; device = \"sht3x\"; }\n"
	    ");\n", fixture_root);
	fclose(f);
	c = config_load(path, &errors);
	if (c == NULL)
		print_error("%s", errors);
	assert_non_null(c);
	assert_null(errors);
	assert_int_equal(c->nsensors, 4);
	for (size_t i = 0; i < c->nsensors; i++) {
		const struct sensor_driver *drv = sensor_driver_find(c->sensors[i].driver);
		struct sensor_clock clk = { 0, 0 };
		struct reading r[SENSOR_MAX_READINGS];
		void *state = NULL;

		assert_non_null(drv);
		assert_int_equal(drv->open(c, &c->sensors[i], &state), 0);
		assert_true(drv->read(state, &clk, r, SENSOR_MAX_READINGS) > 0);
		drv->close(state);
	}
	config_free(c);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ds18b20_good),
		cmocka_unit_test(ds18b20_errors),
		cmocka_unit_test(ds18b20_temperature_attribute),
		cmocka_unit_test(bad_device_config),
		cmocka_unit_test(ds18b20_auto),
		cmocka_unit_test(dht_good),
		cmocka_unit_test(dht_errors),
		cmocka_unit_test(dht_small_buffer),
		cmocka_unit_test(hwmon_by_name),
		cmocka_unit_test(hwmon_disappears_and_returns),
		cmocka_unit_test(config_accepts_drivers),
	};

	return cmocka_run_group_tests(tests, setup_root, NULL);
}
