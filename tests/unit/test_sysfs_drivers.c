/*
 * The sysfs drivers (ds18b20, dht22/dht11, hwmon, iio) and their scans
 * against the fixture tree in tests/fixtures/sysfs (see its README.md for
 * what each device is).  COLDGATE_TOP is the repository top; the hot-plug
 * tests work on a copy of the tree in a temp dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
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

/*
 * The iio driver by its descriptor as well: it goes into the table in
 * sensors/drivers.c separately, and until then sensor_driver_find() does
 * not know it.
 */
extern const struct sensor_driver iio_driver;

static const struct sensor_driver *
find_driver(const char *name)
{
	const struct sensor_driver *drv = sensor_driver_find(name);

	if (drv == NULL && strcmp(name, "iio") == 0)
		drv = &iio_driver;
	return drv;
}

/* Open driver NAME on DEVICE under ROOT; returns the state, asserts success. */
static void *
open_dev(const char *name, const char *root, const char *device, const struct sensor_driver **drvp)
{
	const struct sensor_driver *drv = find_driver(name);
	struct config conf;
	struct sensor_cfg sc;
	void *state = NULL;
	char *root_copy;	/* a config owns its sysfs_root */

	assert_non_null(drv);
	assert_non_null(root_copy = strdup(root));
	memset(&conf, 0, sizeof(conf));
	memset(&sc, 0, sizeof(sc));
	conf.gateway.sysfs_root = root_copy;
	sc.dev.device = device;
	sc.id = "s1";
	assert_int_equal(drv->open(&conf, &sc, &state), 0);
	assert_non_null(state);
	free(root_copy);
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
	static const char *const drivers[] = { "ds18b20", "dht22", "dht11", "hwmon", "iio" };
	struct config conf;
	struct sensor_cfg sc;
	void *state = NULL;

	(void)st;
	memset(&conf, 0, sizeof(conf));
	memset(&sc, 0, sizeof(sc));
	conf.gateway.sysfs_root = fixture_root;
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		const struct sensor_driver *drv = find_driver(drivers[i]);

		assert_non_null(drv);
		sc.dev.device = NULL;
		assert_int_equal(drv->open(&conf, &sc, &state), -EINVAL);
		sc.dev.device = (char *)"";
		assert_int_equal(drv->open(&conf, &sc, &state), -EINVAL);
		drv->close(NULL);
	}
	sc.dev.device = (char *)"../../etc";
	assert_int_equal(sensor_driver_find("ds18b20")->open(&conf, &sc, &state), -EINVAL);
	assert_int_equal(sensor_driver_find("dht22")->open(&conf, &sc, &state), -EINVAL);
	sc.dev.device = (char *)"bme280\nbme280";	/* a name file holds one line */
	assert_int_equal(iio_driver.open(&conf, &sc, &state), -EINVAL);
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

/* |v - want| < 1e-9: for values the kernel's rounded scales make inexact. */
static void
assert_near(double v, double want)
{
	if (!(fabs(v - want) < 1e-9))
		fail_msg("%.15g, want %.15g", v, want);
}

/*
 * A BME280 on the bmp280 driver: processed values only.  Newer kernels
 * print the humidity as IIO_VAL_FRACTIONAL, "%d.%09u"; the pressure is
 * no quantity of ours.
 */
static void
iio_processed(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];

	(void)st;
	assert_int_equal(read_dev("iio", "bme280", r), 2);
	assert_int_equal(r[0].q, Q_TEMPERATURE);
	assert_true(r[0].value == 17.25);	/* 17250 m C */
	assert_int_equal(r[1].q, Q_HUMIDITY);
	/* 92773.437500000 m %RH = 95000/1024 %RH: 92.7734375 exactly, a binary fraction */
	assert_true(r[1].value == 92.7734375);
	assert_true(r[2].value == -999);	/* no third reading */
}

/* An HDC1080 on the hdc100x driver: value = (raw + offset) * scale. */
static void
iio_raw_offset_scale(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];

	(void)st;
	assert_int_equal(read_dev("iio", "hdc100x", r), 2);
	assert_int_equal(r[0].q, Q_TEMPERATURE);
	/*
	 * (24576 + -15887.515151) * 2.517700195 = 21874.999998581845555 m C
	 * (bc -l); the part's own formula, 24576 / 65536 * 165 - 40, is
	 * 21.875 C, less what the kernel's rounded offset and scale lose.
	 * Scale before offset would give 45.99 C; no offset 61.87 C.
	 */
	assert_near(r[0].value, 21.874999998581845555);
	assert_int_equal(r[1].q, Q_HUMIDITY);
	/* 49152 * 1.525878906 = 74999.999987712 m %RH (49152 / 65536 * 100 = 75) */
	assert_near(r[1].value, 74.999999987712);
}

/* An SCD41 on the scd4x driver: CO2 in percent after its scale, made ppm. */
static void
iio_scd4x(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];

	(void)st;
	assert_int_equal(read_dev("iio", "scd41", r), 3);
	assert_int_equal(r[0].q, Q_TEMPERATURE);
	/*
	 * (23031 + -16852.114286) * 2.670288085 = 16499.40490067091769 m C;
	 * Sensirion's -45 + 175 * 23031 / 65536 = 16.4994049072 C.
	 */
	assert_near(r[0].value, 16.49940490067091769);
	assert_int_equal(r[1].q, Q_HUMIDITY);
	/* 60293 * 1.525878906 = 91999.816879458 m %RH */
	assert_near(r[1].value, 91.999816879458);
	assert_int_equal(r[2].q, Q_CO2);
	/* 1815 * 0.000100 = 0.1815 %, * 10000 = 1815 ppm: exactly, done in decimal */
	assert_true(r[2].value == 1815);
}

/*
 * CO2 the two other ways: an SGP30's processed eCO2, which the kernel
 * prints as ppm * 10^-6 (0.000452 for 452 ppm; as percent it would be
 * 4.52 ppm), and an MH-Z19B's raw channel without a scale, in ppm.
 */
static void
iio_co2_input_and_bare_raw(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];

	(void)st;
	assert_int_equal(read_dev("iio", "sgp30", r), 1);
	assert_int_equal(r[0].q, Q_CO2);
	assert_true(r[0].value == 452);
	assert_int_equal(read_dev("iio", "mh-z19b", r), 1);
	assert_int_equal(r[0].q, Q_CO2);
	assert_true(r[0].value == 1139);
}

static void
iio_errors(void **st)
{
	struct reading r[SENSOR_MAX_READINGS];

	(void)st;
	assert_int_equal(read_dev("iio", "htu21", r), -EIO);	/* in_temp_input fails to read */
	assert_int_equal(read_dev("iio", "am2315", r), -EIO);	/* humidity "45x" */
	assert_int_equal(read_dev("iio", "ccs811", r), -ERANGE);	/* 52000 ppm */
	assert_int_equal(read_dev("iio", "tsl2561", r), -ENODEV);	/* a light sensor: none of ours */
	assert_int_equal(read_dev("iio", "sht4x", r), -ENODEV);	/* no such IIO device */
	assert_int_equal(read_dev("iio", "dht11", r), -ENOTUNIQ);	/* four of that name */
}

static void
iio_small_buffer(void **st)
{
	const struct sensor_driver *drv;
	struct sensor_clock clk = { 0, 0 };
	struct reading r[2];
	void *state = open_dev("iio", fixture_root, "scd41", &drv);

	(void)st;
	assert_int_equal(drv->read(state, &clk, r, 2), -ENOBUFS);	/* three quantities */
	drv->close(state);
}

/*
 * The SCD41 goes away, another part takes its number, and it comes back
 * as iio:device14: found again by its name, never read as the other part.
 */
static void
iio_renumbered(void **st)
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
	state = open_dev("iio", root, "scd41", &drv);
	assert_int_equal(drv->read(state, &clk, r, SENSOR_MAX_READINGS), 3);
	assert_true(r[2].value == 1815);

	/* Unplugged. */
	snprintf(a, sizeof(a), "%s/bus/iio/devices/iio:device6", root);
	snprintf(b, sizeof(b), "%s/gone-iio-device6", tmp);
	assert_int_equal(rename(a, b), 0);
	r[0].value = -999;
	assert_int_equal(drv->read(state, &clk, r, SENSOR_MAX_READINGS), -ENODEV);
	assert_true(r[0].value == -999);

	/* A BME680 takes its number: not to be read as the SCD41. */
	run("mkdir '%s' && echo bme680 > '%s/name' && echo 30000 > '%s/in_temp_input' && "
	    "echo 50000 > '%s/in_humidityrelative_input'", a, a, a, a);
	assert_int_equal(drv->read(state, &clk, r, SENSOR_MAX_READINGS), -ENODEV);
	assert_true(r[0].value == -999);

	/* Back after a reboot, as iio:device14. */
	snprintf(a, sizeof(a), "%s/bus/iio/devices/iio:device14", root);
	assert_int_equal(rename(b, a), 0);
	assert_int_equal(drv->read(state, &clk, r, SENSOR_MAX_READINGS), 3);
	assert_near(r[0].value, 16.49940490067091769);
	assert_true(r[2].value == 1815);
	drv->close(state);
	run("rm -rf '%s'", tmp);
}

/* open() looks nothing up: a device that turns up after it is read. */
static void
iio_appears_later(void **st)
{
	char tmp[] = "/tmp/coldgate-sysfs-XXXXXX", root[4096];
	const struct sensor_driver *drv;
	struct sensor_clock clk = { 0, 0 };
	struct reading r[SENSOR_MAX_READINGS];
	void *state;

	(void)st;
	assert_non_null(mkdtemp(tmp));
	snprintf(root, sizeof(root), "%s/sysfs", tmp);
	state = open_dev("iio", root, "bme280", &drv);	/* no IIO bus at all yet */
	assert_int_equal(drv->read(state, &clk, r, SENSOR_MAX_READINGS), -ENODEV);
	run("mkdir -p '%s/bus/iio/devices'", root);
	assert_int_equal(drv->read(state, &clk, r, SENSOR_MAX_READINGS), -ENODEV);
	run("cp -r '%s/bus/iio/devices/iio:device4' '%s/bus/iio/devices/iio:device0'",
	    fixture_root, root);
	assert_int_equal(drv->read(state, &clk, r, SENSOR_MAX_READINGS), 2);
	assert_true(r[0].value == 17.25);
	drv->close(state);
	run("rm -rf '%s'", tmp);
}

/*
 * Every line of a scan is a "#" comment or one snippet in the shape
 * coldgatectl promises; the number of snippets.
 */
static int
snippet_lines(const char *out)
{
	static const char head[] = "{ id = \"", tail[] = "; interval = 10; },";
	int n = 0;

	for (const char *p = out; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t len;

		assert_non_null(nl);	/* every line ends */
		len = (size_t)(nl - p);
		if (*p != '#') {
			if (!(len > sizeof(head) + sizeof(tail) &&
			    strncmp(p, head, sizeof(head) - 1) == 0 &&
			    strncmp(nl - (sizeof(tail) - 1), tail, sizeof(tail) - 1) == 0 &&
			    memchr(p, '#', len) == NULL))
				fail_msg("not a comment or a snippet: %.*s", (int)len, p);
			n++;
		}
		p = nl + 1;
	}
	return n;
}

/* drv's scan of root: the output (free it) and the count it returned. */
static char *
scan_of(const char *name, const char *root, int *count)
{
	const struct sensor_driver *drv = find_driver(name);
	struct config conf;
	char *buf = NULL, *root_copy;	/* a config owns its sysfs_root */
	size_t len = 0;
	FILE *f;

	assert_non_null(drv);
	assert_non_null(drv->scan);
	assert_non_null(root_copy = strdup(root));
	memset(&conf, 0, sizeof(conf));
	conf.gateway.sysfs_root = root_copy;
	assert_non_null(f = open_memstream(&buf, &len));
	*count = drv->scan(&conf, f);
	assert_int_equal(fclose(f), 0);
	free(root_copy);
	assert_int_equal(snippet_lines(buf), *count);
	return buf;
}

static int
occurrences(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void
assert_has(const char *out, const char *want)
{
	if (strstr(out, want) == NULL)
		fail_msg("no \"%s\" in:\n%s", want, out);
}

/* The w1_therm probes, in name order, and not the bus master or a DS2413 switch. */
static void
scan_ds18b20(void **st)
{
	char *out;
	int n;

	(void)st;
	out = scan_of("ds18b20", fixture_root, &n);
	assert_int_equal(n, 8);		/* 28-000000000001..7 and a DS18S20 */
	assert_has(out, "# 8 probes on the 1-Wire bus\n");
	assert_has(out, "{ id = \"t-000001\"; zone = \"CHANGE-ME\"; driver = \"ds18b20\"; "
	    "device = \"28-000000000001\"; interval = 10; },\n");
	assert_has(out, "{ id = \"t-000007\"; zone = \"CHANGE-ME\"; driver = \"ds18b20\"; "
	    "device = \"28-000000000007\"; interval = 10; },\n");
	assert_has(out, "# 10-000802b4c5d6: DS18S20\n");
	assert_has(out, "{ id = \"t-b4c5d6\"; zone = \"CHANGE-ME\"; driver = \"ds18b20\"; "
	    "device = \"10-000802b4c5d6\"; interval = 10; },\n");
	assert_null(strstr(out, "3a-00000001a2b3"));
	assert_null(strstr(out, "w1_bus_master1"));
	assert_true(strstr(out, "10-000802b4c5d6") < strstr(out, "28-000000000001"));
	free(out);
}

/* Two probes whose serials end alike get ids of their whole names. */
static void
scan_ds18b20_ids_unique(void **st)
{
	char tmp[] = "/tmp/coldgate-sysfs-XXXXXX", root[4096], *out;
	int n;

	(void)st;
	assert_non_null(mkdtemp(tmp));
	snprintf(root, sizeof(root), "%s/sysfs", tmp);
	run("mkdir -p '%s/bus/w1/devices/28-00000a000001' '%s/bus/w1/devices/28-00000b000001' "
	    "'%s/bus/w1/devices/28-00000b000002'", root, root, root);
	out = scan_of("ds18b20", root, &n);
	assert_int_equal(n, 3);
	assert_has(out, "# 3 probes on the 1-Wire bus\n");
	assert_has(out, "{ id = \"t-28-00000a000001\";");
	assert_has(out, "{ id = \"t-28-00000b000001\";");
	assert_has(out, "{ id = \"t-000002\";");
	free(out);
	run("rm -rf '%s'", tmp);
}

/* The kernel's dht11 devices, for the dht22 driver; only dht22 scans. */
static void
scan_dht22(void **st)
{
	char *out;
	int n;

	(void)st;
	out = scan_of("dht22", fixture_root, &n);
	assert_int_equal(n, 4);		/* iio:device0..3 say dht11 */
	assert_has(out, "{ id = \"dht-0\"; zone = \"CHANGE-ME\"; driver = \"dht22\"; "
	    "device = \"iio:device0\"; interval = 10; },\n");
	assert_has(out, "{ id = \"dht-3\"; zone = \"CHANGE-ME\"; driver = \"dht22\"; "
	    "device = \"iio:device3\"; interval = 10; },\n");
	assert_has(out, "a DHT11 part wants driver = \"dht11\"\n");
	assert_null(strstr(out, "iio:device4"));	/* the BME280 */
	assert_null(sensor_driver_find("dht11")->scan);	/* or every DHT would be listed twice */
	free(out);
}

static void
scan_hwmon(void **st)
{
	char *out;
	int n;

	(void)st;
	out = scan_of("hwmon", fixture_root, &n);
	assert_int_equal(n, 3);		/* cpu_thermal, sht3x, bme280; not rpi_volt */
	assert_has(out, "# hwmon1: sht3x: temp1_input humidity1_input\n");
	assert_has(out, "{ id = \"hwmon-sht3x\"; zone = \"CHANGE-ME\"; driver = \"hwmon\"; "
	    "device = \"sht3x\"; interval = 10; },\n");
	assert_has(out, "# hwmon2: bme280: temp1_input\n");
	assert_has(out, "device = \"bme280\"");
	assert_has(out, "device = \"cpu_thermal\"");
	assert_has(out, "# hwmon3: rpi_volt: no temp1_input or humidity1_input\n");
	assert_null(strstr(out, "device = \"rpi_volt\""));
	free(out);
}

/* A second sht3x cannot be reached by name: listed, no snippet. */
static void
scan_hwmon_same_name(void **st)
{
	char tmp[] = "/tmp/coldgate-sysfs-XXXXXX", root[4096], *out;
	int n;

	(void)st;
	assert_non_null(mkdtemp(tmp));
	run("cp -r '%s' '%s/sysfs'", fixture_root, tmp);
	snprintf(root, sizeof(root), "%s/sysfs", tmp);
	run("cp -r '%s/class/hwmon/hwmon1' '%s/class/hwmon/hwmon10'", root, root);
	out = scan_of("hwmon", root, &n);
	assert_int_equal(n, 3);
	assert_has(out, "# hwmon10: sht3x: temp1_input humidity1_input; hwmon1 has the same name");
	assert_int_equal(occurrences(out, "device = \"sht3x\""), 1);
	assert_true(strstr(out, "# hwmon3:") < strstr(out, "# hwmon10:"));	/* version order */
	free(out);
	run("rm -rf '%s'", tmp);
}

static void
scan_iio(void **st)
{
	char *out;
	int n;

	(void)st;
	out = scan_of("iio", fixture_root, &n);
	/* iio:device4..11; not the DHTs, the light sensor or the trigger */
	assert_int_equal(n, 8);
	assert_has(out, "# iio:device4: bme280: temperature, humidity\n");
	assert_has(out, "{ id = \"iio-bme280\"; zone = \"CHANGE-ME\"; driver = \"iio\"; "
	    "device = \"bme280\"; interval = 10; },\n");
	assert_has(out, "# iio:device6: scd41: temperature, humidity, co2\n");
	assert_has(out, "{ id = \"iio-scd41\"; zone = \"CHANGE-ME\"; driver = \"iio\"; "
	    "device = \"scd41\"; interval = 10; },\n");
	assert_has(out, "# iio:device7: sgp30: co2\n");
	assert_has(out, "{ id = \"iio-mh-z19b\"; zone = \"CHANGE-ME\"; driver = \"iio\"; "
	    "device = \"mh-z19b\"; interval = 10; },\n");
	assert_has(out, "# iio:device12: tsl2561: no temperature, humidity or CO2 channel\n");
	assert_null(strstr(out, "device = \"tsl2561\""));
	assert_null(strstr(out, "dht11"));
	assert_null(strstr(out, "trigger0"));
	assert_true(strstr(out, "iio:device4:") < strstr(out, "iio:device10:"));	/* version order */
	free(out);
}

/* Two BME280s: neither is readable by name, so neither gets a snippet. */
static void
scan_iio_same_name(void **st)
{
	char tmp[] = "/tmp/coldgate-sysfs-XXXXXX", root[4096], *out;
	struct reading r[SENSOR_MAX_READINGS];
	const struct sensor_driver *drv;
	struct sensor_clock clk = { 0, 0 };
	void *state;
	int n;

	(void)st;
	assert_non_null(mkdtemp(tmp));
	run("cp -r '%s' '%s/sysfs'", fixture_root, tmp);
	snprintf(root, sizeof(root), "%s/sysfs", tmp);
	run("cp -r '%s/bus/iio/devices/iio:device4' '%s/bus/iio/devices/iio:device20'", root, root);
	out = scan_of("iio", root, &n);
	assert_int_equal(n, 7);
	assert_has(out, "# iio:device4: bme280: temperature, humidity; iio:device20 has the same name");
	assert_has(out, "# iio:device20: bme280: temperature, humidity; iio:device4 has the same name");
	assert_null(strstr(out, "device = \"bme280\""));
	free(out);
	state = open_dev("iio", root, "bme280", &drv);
	assert_int_equal(drv->read(state, &clk, r, SENSOR_MAX_READINGS), -ENOTUNIQ);
	drv->close(state);
	run("rm -rf '%s'", tmp);
}

/* On a system with none of the buses: nothing found, and only comments. */
static void
scan_nothing_there(void **st)
{
	static const char *const drivers[] = { "ds18b20", "dht22", "hwmon", "iio" };
	char *out;
	int n;

	(void)st;
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		out = scan_of(drivers[i], "/nonexistent/coldgate-sysfs", &n);
		assert_int_equal(n, 0);
		assert_true(out[0] == '#');
		free(out);
	}
}

/*
 * What the scans print is configuration: every snippet of the fixture
 * tree's scans, pasted into one file, loads (ids unique across drivers,
 * every device key accepted).  The iio snippets join in once "iio" is in
 * the driver table, which config_load() checks driver names against.
 */
static void
scan_snippets_load(void **st)
{
	static const char *const drivers[] = { "ds18b20", "dht22", "hwmon", "iio" };
	char path[] = "/tmp/coldgate-sysfs-cfg-XXXXXX", *errors = NULL, *last, *end;
	char *text = NULL;
	size_t len = 0, total = 0;
	struct config *c;
	FILE *f;
	int fd, n;

	(void)st;
	assert_non_null(f = open_memstream(&text, &len));
	fprintf(f, "gateway = { id = \"gw-1\"; sysfs_root = \"%s\"; };\n"
	    "zones = ( { id = \"CHANGE-ME\"; } );\nsensors = (\n", fixture_root);
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		char *out;

		if (sensor_driver_find(drivers[i]) == NULL)
			continue;
		out = scan_of(drivers[i], fixture_root, &n);
		fputs(out, f);
		total += (size_t)n;
		free(out);
	}
	assert_int_equal(fclose(f), 0);
	/* libconfig wants no comma after the last snippet (comments may follow it). */
	for (last = NULL, end = text; (end = strstr(end, "},")) != NULL; end++)
		last = end;
	assert_non_null(last);
	last[1] = ' ';
	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	fprintf(f, "%s);\n", text);
	fclose(f);
	c = config_load(path, &errors);
	if (c == NULL)
		fail_msg("%s\n%s", errors, text);
	assert_int_equal(c->nsensors, total);
	assert_true(total >= 15);	/* 8 probes, 4 DHTs, 3 hwmon */
	config_free(c);
	unlink(path);
	free(text);
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
		cmocka_unit_test(iio_processed),
		cmocka_unit_test(iio_raw_offset_scale),
		cmocka_unit_test(iio_scd4x),
		cmocka_unit_test(iio_co2_input_and_bare_raw),
		cmocka_unit_test(iio_errors),
		cmocka_unit_test(iio_small_buffer),
		cmocka_unit_test(iio_renumbered),
		cmocka_unit_test(iio_appears_later),
		cmocka_unit_test(scan_ds18b20),
		cmocka_unit_test(scan_ds18b20_ids_unique),
		cmocka_unit_test(scan_dht22),
		cmocka_unit_test(scan_hwmon),
		cmocka_unit_test(scan_hwmon_same_name),
		cmocka_unit_test(scan_iio),
		cmocka_unit_test(scan_iio_same_name),
		cmocka_unit_test(scan_nothing_there),
		cmocka_unit_test(scan_snippets_load),
	};

	return cmocka_run_group_tests(tests, setup_root, NULL);
}
