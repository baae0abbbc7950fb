/*
 * The sysfs drivers inside the real daemon: coldgated with a DS18B20 probe,
 * a DHT22 on the kernel's IIO driver, an SHT3x on hwmon and a BME280 on
 * IIO by name, all pointed at
 * the fixture tree (gateway.sysfs_root), publishes their values to a real
 * mosquitto; a probe answering with a bad CRC gives a sensor_fault event
 * and never a reading.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/harness.h"

static const char cfg_text[] =
	HARNESS_CFG_HEAD
	"publish = { interval = 1; };\n"
	"zones = ( { id = \"cold-1\"; name = \"冷库 1\"; }, { id = \"house-1\"; name = \"香菇出菇房 1\"; } );\n"
	"sensors = (\n"
	"  { id = \"c1-probe\"; zone = \"cold-1\"; driver = \"ds18b20\"; device = \"28-000000000001\"; interval = 0.5; },\n"
	"  { id = \"c1-bad\"; zone = \"cold-1\"; driver = \"ds18b20\"; device = \"28-000000000002\"; interval = 0.5; },\n"
	"  { id = \"h1-dht\"; zone = \"house-1\"; driver = \"dht22\"; device = \"iio:device0\"; interval = 2; },\n"
	"  { id = \"c1-sht\"; zone = \"cold-1\"; driver = \"hwmon\"; device = \"sht3x\"; interval = 0.5; },\n"
	"  { id = \"h1-bme\"; zone = \"house-1\"; driver = \"iio\"; device = \"bme280\"; interval = 0.5; }\n"
	");\n";

/* The mean of sensor/quantity in a telemetry message, or NAN. */
static double
mean_of(const struct harness_msg *m, const char *sensor, const char *quantity)
{
	return harness_reading_stat(m, sensor, quantity, "mean");
}

static bool
has_all(const struct harness_msg *m, const void *arg)
{
	(void)arg;
	return !isnan(mean_of(m, "c1-probe", "temperature")) &&
	    !isnan(mean_of(m, "h1-dht", "humidity")) && !isnan(mean_of(m, "c1-sht", "humidity")) &&
	    !isnan(mean_of(m, "h1-bme", "humidity"));
}

static bool
is_fault_of_bad(const struct harness_msg *m, const void *arg)
{
	const char *type = harness_json_str(m->json, "type");
	const char *sensor = harness_json_str(m->json, "sensor");

	(void)arg;
	return type != NULL && sensor != NULL && strcmp(type, "sensor_fault") == 0 &&
	    strcmp(sensor, "c1-bad") == 0;
}

static void
test_sysfs_drivers_reach_mqtt(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	const struct harness_msg *m;
	char *t, *cfg, line[1200];
	long i;

	snprintf(line, sizeof(line), "  state_dir = \"@STATE_DIR@\"; sysfs_root = \"%s/tests/fixtures/sysfs\";\n",
	    getenv("COLDGATE_TOP"));
	t = harness_replace(cfg_text, "  state_dir = \"@STATE_DIR@\";\n", line);
	cfg = harness_write_config(h, "coldgate.cfg", t);
	free(t);
	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);

	i = harness_sub_wait(sub, 0, "telemetry", has_all, NULL, HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("no telemetry with the probe, the DHT22 and the SHT3x");
	m = harness_sub_get(sub, (size_t)i);
	if (mean_of(m, "c1-probe", "temperature") != 21.375 ||
	    mean_of(m, "h1-dht", "temperature") != 4.5 || mean_of(m, "h1-dht", "humidity") != 91.5 ||
	    mean_of(m, "c1-sht", "temperature") != 2.5 || mean_of(m, "c1-sht", "humidity") != 87.25 ||
	    mean_of(m, "h1-bme", "temperature") != 17.25 || mean_of(m, "h1-bme", "humidity") != 92.773)
		fail_msg("values differ from the fixture files: %s", m->payload);
	if (harness_sub_wait(sub, 0, "event", is_fault_of_bad, NULL, HARNESS_TIMEOUT) < 0)
		fail_msg("no sensor_fault for the probe with a bad CRC");
	/* A refused read never becomes a reading. */
	for (size_t k = 0; k < harness_sub_count(sub); k++) {
		m = harness_sub_get(sub, k);
		if (strstr(m->topic, "telemetry") != NULL && strstr(m->payload, "\"c1-bad\"") != NULL)
			fail_msg("a reading of the bad-CRC probe was published: %s", m->payload);
	}
	assert_int_equal(harness_daemon_stop(h), 0);
	free(cfg);
	harness_pass(h);
}

/*
 * A sensor whose every read takes 3 s (a slow bus) is read on a worker: a
 * fast sensor next to it still reads in every one-second window, and the
 * slow one's readings arrive too.  Read on the main loop, the fast sensor
 * would miss the windows the slow reads span.
 */
static void
test_blocking_reads_do_not_stall_the_loop(void **state)
{
	static const char text[] =
		HARNESS_CFG_HEAD
		"publish = { interval = 1; };\n"
		"zones = ( { id = \"cold-1\"; } );\n"
		"sensors = (\n"
		"  { id = \"slow\"; zone = \"cold-1\"; driver = \"sim\"; quantity = \"temperature\";\n"
		"    script = ( (0, 3.0), (3600, 3.0) ); read_delay = 3.0; interval = 1; },\n"
		"  { id = \"fast\"; zone = \"cold-1\"; driver = \"sim\"; quantity = \"humidity\";\n"
		"    script = ( (0, 90.0), (3600, 90.0) ); interval = 0.1; }\n"
		");\n";
	struct harness *h = *state;
	struct harness_sub *sub;
	char *cfg;
	size_t windows = 0, with_slow = 0;
	int64_t s1 = 1, prev_end = -1;

	cfg = harness_write_config(h, "coldgate.cfg", text);
	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	/* Eight windows after the first (which may be partial). */
	if (harness_sub_wait(sub, 0, "telemetry", harness_match_seq_above, &s1, HARNESS_TIMEOUT) < 0 ||
	    harness_sub_wait_n(sub, 0, "telemetry", NULL, NULL, 9, HARNESS_TIMEOUT) < 9)
		fail_msg("too few telemetry windows");
	assert_int_equal(harness_daemon_stop(h), 0);
	for (size_t k = 0; k < harness_sub_count(sub); k++) {
		const struct harness_msg *m = harness_sub_get(sub, k);
		int64_t seq;

		if (strstr(m->topic, "telemetry") == NULL || !harness_json_int(m->json, "seq", &seq) ||
		    seq == 1)
			continue;
		windows++;
		if (isnan(mean_of(m, "fast", "humidity")))
			fail_msg("window without the fast sensor (the loop stalled): %s", m->payload);
		/* A stalled loop skips windows and reads the 10 Hz sensor once per stall. */
		{
			json_object *r = harness_json_get(m->json, "readings");
			int64_t start, n = 0;

			for (size_t e = 0; e < json_object_array_length(r); e++) {
				json_object *x = json_object_array_get_idx(r, e);

				if (strcmp(harness_json_str(x, "sensor"), "fast") == 0)
					harness_json_int(x, "n", &n);
			}
			if (n < 2)
				fail_msg("the fast sensor read %lld times in a second: %s",
				    (long long)n, m->payload);
			if (!harness_json_int(m->json, "start", &start) ||
			    (prev_end >= 0 && start != prev_end))
				fail_msg("windows missing before %s", m->payload);
			harness_json_int(m->json, "end", &prev_end);
		}
		if (!isnan(mean_of(m, "slow", "temperature")))
			with_slow++;
	}
	if (windows < 6 || with_slow < 1)
		fail_msg("%zu windows, %zu with the slow sensor", windows, with_slow);
	free(cfg);
	harness_pass(h);
}

/*
 * coldgatectl sensors --scan on the fixture tree: the probes and devices
 * there are listed as snippets, and "sensors" without --scan lists the
 * configured ones.
 */
static void
test_scan_lists_what_is_attached(void **state)
{
	struct harness *h = *state;
	char root[4200], *cfg, *out = NULL, *err = NULL;
	int rc;

	snprintf(root, sizeof(root), "%s/tests/fixtures/sysfs", getenv("COLDGATE_TOP"));
	cfg = harness_write_config(h, "coldgate.cfg", cfg_text);
	{
		const char *argv[] = { h->coldgatectl, "-c", cfg, "sensors", "--scan", "--sysfs-root",
		    root, NULL };

		rc = harness_run(h, argv, &out, &err, HARNESS_TIMEOUT);
		if (rc != 0)
			fail_msg("coldgatectl sensors --scan exited %d:\n%s", rc, err);
		if (strstr(out, "driver = \"ds18b20\"; device = \"28-000000000001\"") == NULL ||
		    strstr(out, "driver = \"dht22\"; device = \"iio:device0\"") == NULL ||
		    strstr(out, "driver = \"hwmon\"; device = \"sht3x\"") == NULL ||
		    strstr(out, "driver = \"iio\"; device = \"bme280\"") == NULL)
			fail_msg("the scan missed devices of the fixture tree:\n%s", out);
		free(out);
		free(err);
	}
	{
		const char *argv[] = { h->coldgatectl, "-c", cfg, "sensors", NULL };

		rc = harness_run(h, argv, &out, &err, HARNESS_TIMEOUT);
		if (rc != 0 || strstr(out, "c1-probe") == NULL || strstr(out, "h1-dht") == NULL)
			fail_msg("coldgatectl sensors (%d) should list the configured sensors:\n%s%s",
			    rc, out, err);
		free(out);
		free(err);
	}
	free(cfg);
	harness_pass(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scan_lists_what_is_attached,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_sysfs_drivers_reach_mqtt, harness_setup,
		    harness_teardown),
		cmocka_unit_test_setup_teardown(test_blocking_reads_do_not_stall_the_loop,
		    harness_setup, harness_teardown),
	};

	return cmocka_run_group_tests_name("integration: sysfs drivers", tests, NULL, NULL);
}
