/*
 * Telemetry end to end (SPEC §4): the real coldgated on sim sensors, a real
 * mosquitto, and a subscriber that checks every payload against the
 * contract: the online status is retained, each window is one message with
 * exactly the documented keys, windows are aligned and back to back, seq
 * starts at 1 on a fresh store and grows by exactly 1, aggregates are
 * consistent, and scripted sensors give the values their script says.  Then
 * coldgatectl reads the same store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/harness.h"

#define INTERVAL 2			/* publish.interval, seconds */
#define WINDOWS	 4			/* telemetry messages to look at */

static const char cfg_text[] =
	HARNESS_CFG_HEAD
	"publish = { interval = 2; };\n"
	"zones = (\n"
	"  { id = \"house-1\"; name = \"香菇出菇房 1\"; },\n"
	"  { id = \"cold-1\"; name = \"Cold room 1\"; }\n"
	");\n"
	"sensors = (\n"
	"  { id = \"h1-air\"; zone = \"house-1\"; driver = \"sim\"; profile = \"mushroom-house\"; interval = 0.5; },\n"
	"  { id = \"c1-air\"; zone = \"cold-1\"; driver = \"sim\"; profile = \"cold-room\"; interval = 0.5; },\n"
	"  { id = \"c1-flat\"; zone = \"cold-1\"; driver = \"sim\"; quantity = \"temperature\";\n"
	"    script = ( (0, 5.0), (3600, 5.0) ); interval = 0.5; },\n"
	"  { id = \"c1-ramp\"; zone = \"cold-1\"; driver = \"sim\"; quantity = \"temperature\";\n"
	"    script = ( (0, 0.0), (600, 60.0) ); interval = 0.25; }\n"
	");\n";

/* What each sensor must report: its zone and its quantities. */
static const struct {
	const char	*sensor, *zone;
	const char	*quantities[4];
} expect[] = {
	{ "h1-air",  "house-1", { "temperature", "humidity", "co2", NULL } },
	{ "c1-air",  "cold-1",  { "temperature", "humidity", NULL } },
	{ "c1-flat", "cold-1",  { "temperature", NULL } },
	{ "c1-ramp", "cold-1",  { "temperature", NULL } },
};
#define NEXPECT (sizeof(expect) / sizeof(expect[0]))

static const char *
unit_of(const char *quantity)
{
	if (strcmp(quantity, "temperature") == 0)
		return "C";
	if (strcmp(quantity, "humidity") == 0)
		return "%RH";
	if (strcmp(quantity, "co2") == 0)
		return "ppm";
	if (strcmp(quantity, "door") == 0)
		return "0/1";
	return NULL;
}

static bool
has_only_keys(json_object *obj, const char *const *allowed, char *bad, size_t badlen)
{
	json_object_object_foreach(obj, key, val) {
		bool ok = false;

		(void)val;
		for (const char *const *a = allowed; *a != NULL && !ok; a++)
			ok = strcmp(key, *a) == 0;
		if (!ok) {
			snprintf(bad, badlen, "%s", key);
			return false;
		}
	}
	return true;
}

static double
num(json_object *obj, const char *key, const char *payload)
{
	double v;

	if (!harness_json_num(obj, key, &v))
		fail_msg("\"%s\" is missing or not a number in %s", key, payload);
	if (!isfinite(v))
		fail_msg("\"%s\" is not finite in %s", key, payload);
	return v;
}

static int64_t
integer(json_object *obj, const char *key, const char *payload)
{
	int64_t v;

	if (!harness_json_int(obj, key, &v))
		fail_msg("\"%s\" is missing or not an integer in %s", key, payload);
	return v;
}

/* One reading of a telemetry payload against SPEC §4. */
static void
check_reading(json_object *r, const char *payload, bool seen[NEXPECT])
{
	static const char *const keys[] = {
		"sensor", "zone", "quantity", "unit", "n", "min", "max", "mean", "last",
		"clock_ok", NULL
	};
	const char *sensor, *zone, *quantity, *unit;
	double min, max, mean, last;
	json_object *clock_ok;
	char bad[128];
	size_t k;
	bool qok = false;

	if (!json_object_is_type(r, json_type_object))
		fail_msg("a reading is not an object in %s", payload);
	if (!has_only_keys(r, keys, bad, sizeof(bad)))
		fail_msg("reading has an undocumented key \"%s\" in %s", bad, payload);
	sensor = harness_json_str(r, "sensor");
	zone = harness_json_str(r, "zone");
	quantity = harness_json_str(r, "quantity");
	unit = harness_json_str(r, "unit");
	if (sensor == NULL || zone == NULL || quantity == NULL || unit == NULL)
		fail_msg("reading lacks sensor/zone/quantity/unit strings in %s", payload);
	for (k = 0; k < NEXPECT; k++)
		if (strcmp(expect[k].sensor, sensor) == 0)
			break;
	if (k == NEXPECT)
		fail_msg("reading of an unconfigured sensor \"%s\" in %s", sensor, payload);
	seen[k] = true;
	if (strcmp(zone, expect[k].zone) != 0)
		fail_msg("sensor %s has zone \"%s\", want \"%s\"", sensor, zone, expect[k].zone);
	for (const char *const *q = expect[k].quantities; *q != NULL && !qok; q++)
		qok = strcmp(*q, quantity) == 0;
	if (!qok)
		fail_msg("sensor %s reports quantity \"%s\" it should not have", sensor, quantity);
	if (unit_of(quantity) == NULL || strcmp(unit, unit_of(quantity)) != 0)
		fail_msg("quantity %s has unit \"%s\", want \"%s\"", quantity, unit,
		    unit_of(quantity) ? unit_of(quantity) : "?");
	if (integer(r, "n", payload) < 1)
		fail_msg("n < 1 in %s", payload);
	clock_ok = harness_json_get(r, "clock_ok");
	if (clock_ok != NULL && !(json_object_is_type(clock_ok, json_type_boolean) &&
	    !json_object_get_boolean(clock_ok)))
		fail_msg("clock_ok, when present, must be false: %s", payload);

	min = num(r, "min", payload);
	max = num(r, "max", payload);
	mean = num(r, "mean", payload);
	last = num(r, "last", payload);
	if (!(min <= mean && mean <= max))
		fail_msg("%s %s: not min <= mean <= max: %g %g %g", sensor, quantity, min, mean, max);
	if (!(min <= last && last <= max))
		fail_msg("%s %s: last %g outside [%g, %g]", sensor, quantity, last, min, max);

	/* Plausible values for the sim profiles. */
	if (strcmp(quantity, "humidity") == 0 && (min < 0 || max > 100))
		fail_msg("%s: humidity outside 0..100 %%RH: %s", sensor, payload);
	if (strcmp(quantity, "co2") == 0 && min <= 0)
		fail_msg("%s: CO2 <= 0 ppm: %s", sensor, payload);
	if (strcmp(quantity, "temperature") == 0 && (min < -40 || max > 70))
		fail_msg("%s: temperature outside -40..70 C: %s", sensor, payload);

	/* The script ((0, 5.0), (3600, 5.0)) is 5.0 throughout. */
	if (strcmp(sensor, "c1-flat") == 0 &&
	    (min != 5.0 || max != 5.0 || mean != 5.0 || last != 5.0))
		fail_msg("c1-flat follows (0,5.0),(3600,5.0): want min=max=mean=last=5: %s",
		    payload);
}

static void
test_telemetry_windows_follow_spec(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub, *late;
	const struct harness_msg *m;
	int64_t prev_end = -1, prev_seq = 0, now = harness_wall_ms();
	double prev_ramp_max = -1;
	bool seen[NEXPECT] = { false };
	size_t n, telemetry = 0;
	char why[1024], *cfg;
	long i;

	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	cfg = harness_write_config(h, "coldgate.cfg", cfg_text);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);

	/* The online status: live first, then retained for a late subscriber. */
	i = harness_sub_wait(sub, 0, "status", harness_match_state, "online", HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("no {\"state\":\"online\"} on " HARNESS_BASE "status");
	late = harness_sub_start(h, HARNESS_BASE "status", false);
	assert_non_null(late);
	i = harness_sub_wait(late, 0, "status", NULL, NULL, HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("a new subscriber got no retained status");
	m = harness_sub_get(late, (size_t)i);
	{
		static const char *const keys[] = { "state", "version", "ts", "site", "zones", NULL };
		const char *version = harness_json_str(m->json, "version");
		json_object *zones = harness_json_get(m->json, "zones"), *z0;
		int64_t ts;
		char bad[64];

		if (!m->retain)
			fail_msg("the status message is not retained");
		if (!harness_match_state(m, "online"))
			fail_msg("retained status is not online: %s", m->payload);
		if (!has_only_keys(m->json, keys, bad, sizeof(bad)))
			fail_msg("status has an undocumented key \"%s\": %s", bad, m->payload);
		if (version == NULL || *version == '\0')
			fail_msg("status lacks a version: %s", m->payload);
		/* Zone names pass through intact, Chinese included (SPEC §3). */
		if (zones == NULL || !json_object_is_type(zones, json_type_array) ||
		    json_object_array_length(zones) != 2)
			fail_msg("online status lacks the two zones: %s", m->payload);
		z0 = json_object_array_get_idx(zones, 0);
		if (harness_json_str(z0, "id") == NULL ||
		    strcmp(harness_json_str(z0, "id"), "house-1") != 0 ||
		    harness_json_str(z0, "name") == NULL ||
		    strcmp(harness_json_str(z0, "name"), "香菇出菇房 1") != 0)
			fail_msg("zone house-1 and its name did not pass through: %s", m->payload);
		if (harness_json_str(m->json, "site") == NULL ||
		    strcmp(harness_json_str(m->json, "site"), "integration test") != 0)
			fail_msg("online status lacks the site: %s", m->payload);
		if (!harness_json_int(m->json, "ts", &ts))
			fail_msg("status ts is not an integer: %s", m->payload);
		/* Epoch milliseconds, not seconds or microseconds. */
		if (ts < now - 3600 * 1000 || ts > now + 3600 * 1000)
			fail_msg("status ts %lld is not epoch ms near %lld", (long long)ts,
			    (long long)now);
	}
	harness_sub_stop(late);

	/* WINDOWS telemetry messages after the first (which may be partial). */
	if (harness_sub_wait_n(sub, 0, "telemetry", NULL, NULL, WINDOWS + 1, HARNESS_TIMEOUT) <
	    WINDOWS + 1)
		fail_msg("fewer than %d telemetry messages", WINDOWS + 1);

	n = harness_sub_count(sub);
	for (size_t k = 0; k < n; k++) {
		static const char *const keys[] = { "gw", "seq", "start", "end", "readings", NULL };
		json_object *readings;
		int64_t start, end, seq;
		const char *gw;
		char bad[64];

		m = harness_sub_get(sub, k);
		if (strcmp(m->topic, HARNESS_BASE "telemetry") != 0)
			continue;
		if (m->json == NULL || !json_object_is_type(m->json, json_type_object))
			fail_msg("telemetry payload is not a JSON object: %s", m->payload);
		if (!has_only_keys(m->json, keys, bad, sizeof(bad)))
			fail_msg("telemetry has an undocumented key \"%s\": %s", bad, m->payload);
		gw = harness_json_str(m->json, "gw");
		if (gw == NULL || strcmp(gw, HARNESS_GW) != 0)
			fail_msg("telemetry gw is not \"" HARNESS_GW "\": %s", m->payload);
		seq = integer(m->json, "seq", m->payload);
		start = integer(m->json, "start", m->payload);
		end = integer(m->json, "end", m->payload);
		if (end - start != INTERVAL * 1000)
			fail_msg("window end - start = %lld, want %d: %s", (long long)(end - start),
			    INTERVAL * 1000, m->payload);
		if (start % (INTERVAL * 1000) != 0)
			fail_msg("window start %lld is not a multiple of the interval",
			    (long long)start);
		if (seq <= prev_seq)
			fail_msg("telemetry seq %lld after %lld", (long long)seq, (long long)prev_seq);
		/* One message per window, back to back. */
		if (prev_end >= 0 && start != prev_end)
			fail_msg("window [%lld, %lld) follows one that ended at %lld",
			    (long long)start, (long long)end, (long long)prev_end);
		prev_seq = seq;
		prev_end = end;
		telemetry++;

		readings = harness_json_get(m->json, "readings");
		if (readings == NULL || !json_object_is_type(readings, json_type_array))
			fail_msg("readings is not an array: %s", m->payload);
		for (size_t r = 0; r < json_object_array_length(readings); r++)
			check_reading(json_object_array_get_idx(readings, r), m->payload, seen);

		/* The ramp (0,0)..(600,60) rises: within a window the last value
		 * is the highest, and each window starts above the last one. */
		for (size_t r = 0; r < json_object_array_length(readings); r++) {
			json_object *rd = json_object_array_get_idx(readings, r);
			double min, max, last;

			if (strcmp(harness_json_str(rd, "sensor"), "c1-ramp") != 0)
				continue;
			min = num(rd, "min", m->payload);
			max = num(rd, "max", m->payload);
			last = num(rd, "last", m->payload);
			if (last != max)
				fail_msg("c1-ramp rises, so last == max: %s", m->payload);
			if (min < prev_ramp_max)
				fail_msg("c1-ramp: window min %g below the previous window's max %g",
				    min, prev_ramp_max);
			if (min < 0 || max > 60)
				fail_msg("c1-ramp outside its script's 0..60: %s", m->payload);
			prev_ramp_max = max;
		}
	}
	assert_true(telemetry >= WINDOWS + 1);
	for (size_t k = 0; k < NEXPECT; k++)
		if (!seen[k])
			fail_msg("no reading of sensor %s in %zu windows", expect[k].sensor, telemetry);

	/* A fresh store numbers from 1, by exactly 1, over every message kind. */
	if (!harness_check_seqs(sub, 0, 1, why, sizeof(why)))
		fail_msg("seq: %s", why);

	assert_true(harness_daemon_running(h));
	free(cfg);
	harness_pass(h);
}

/* The first number after "seq" on a line of text, or -1. */
static long long
seq_in(const char *text)
{
	for (const char *p = text; (p = strcasestr(p, "seq")) != NULL; p += 3) {
		const char *q = p + 3;

		while (*q != '\0' && *q != '\n' && !isdigit((unsigned char)*q))
			q++;
		if (isdigit((unsigned char)*q))
			return strtoll(q, NULL, 10);
	}
	return -1;
}

/* A CSV field or JSON number that is 5 (the flat script's value). */
static bool
field_is_five(const char *f, size_t len)
{
	char buf[64], *end;
	double v;

	while (len > 0 && (*f == ' ' || *f == '"'))
		f++, len--;
	while (len > 0 && (f[len - 1] == ' ' || f[len - 1] == '"' || f[len - 1] == '\r'))
		len--;
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, f, len);
	buf[len] = '\0';
	v = strtod(buf, &end);
	return *end == '\0' && v == 5.0;
}

static void
test_coldgatectl_reads_the_store(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	char *cfg, *out, *err;
	size_t rows = 0, counted = 0;
	int64_t last;
	long long shown;
	json_object *arr;
	int rc;

	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	cfg = harness_write_config(h, "coldgate.cfg", cfg_text);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	if (harness_sub_wait_n(sub, 0, "telemetry", harness_match_sensor, "c1-flat", 3,
	    HARNESS_TIMEOUT) < 3)
		fail_msg("fewer than 3 windows with c1-flat");

	/* status works while the daemon runs (it has the store open). */
	{
		const char *argv[] = { h->coldgatectl, "-c", cfg, "status", NULL };

		rc = harness_run(h, argv, &out, &err, HARNESS_TIMEOUT);
		if (rc != 0)
			fail_msg("coldgatectl status (daemon running) exited %d:\n%s%s", rc, out, err);
		free(out);
		free(err);
	}

	assert_int_equal(harness_daemon_stop(h), 0);
	harness_sleep(0.5);		/* whatever it sent while stopping */
	last = harness_sub_max_seq(sub);
	/* Every reading a window counted is in the store. */
	for (size_t k = 0; k < harness_sub_count(sub); k++) {
		const struct harness_msg *m = harness_sub_get(sub, k);
		json_object *r = harness_json_get(m->json, "readings");
		int64_t n;

		if (strcmp(m->topic, HARNESS_BASE "telemetry") != 0 || r == NULL)
			continue;
		for (size_t j = 0; j < json_object_array_length(r); j++) {
			json_object *rd = json_object_array_get_idx(r, j);
			const char *sensor = harness_json_str(rd, "sensor");

			if (sensor != NULL && strcmp(sensor, "c1-flat") == 0 &&
			    harness_json_int(rd, "n", &n))
				counted += (size_t)n;
		}
	}

	{
		const char *argv[] = { h->coldgatectl, "-c", cfg, "status", NULL };

		/* 3: coldgated is not running; the store is still read. */
		rc = harness_run(h, argv, &out, &err, HARNESS_TIMEOUT);
		if (rc != 3 || strstr(out, "not running") == NULL)
			fail_msg("coldgatectl status (daemon stopped) exited %d, want 3 and \"not running\":\n%s%s",
			    rc, out, err);
		shown = seq_in(out);
		/* The store may hold a message or two queued while stopping. */
		if (shown < last || shown > last + 2)
			fail_msg("coldgatectl status shows last seq %lld; the broker got up to %lld:\n%s",
			    shown, (long long)last, out);
		free(out);
		free(err);
	}

	{
		const char *argv[] = { h->coldgatectl, "-c", cfg, "readings", "--sensor", "c1-flat",
		    "--format", "csv", NULL };

		rc = harness_run(h, argv, &out, &err, HARNESS_TIMEOUT);
		if (rc != 0)
			fail_msg("coldgatectl readings --format csv exited %d:\n%s", rc, err);
		for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
			bool five = false;

			if (strstr(line, "h1-air") != NULL || strstr(line, "c1-air") != NULL ||
			    strstr(line, "c1-ramp") != NULL)
				fail_msg("--sensor c1-flat printed another sensor's row: %s", line);
			if (strstr(line, "c1-flat") == NULL)
				continue;	/* the header */
			for (char *f = line, *c;; f = c + 1) {
				c = strchr(f, ',');
				if (field_is_five(f, c ? (size_t)(c - f) : strlen(f)))
					five = true;
				if (c == NULL)
					break;
			}
			if (!five)
				fail_msg("c1-flat row without its value 5: %s", line);
			rows++;
		}
		if (rows < counted || rows == 0)
			fail_msg("%zu CSV rows for c1-flat; its published windows counted %zu readings",
			    rows, counted);
		free(out);
		free(err);
	}

	{
		const char *argv[] = { h->coldgatectl, "-c", cfg, "readings", "--sensor", "c1-flat",
		    "--format", "json", NULL };
		json_tokener *tok = json_tokener_new();
		size_t len;

		rc = harness_run(h, argv, &out, &err, HARNESS_TIMEOUT);
		if (rc != 0)
			fail_msg("coldgatectl readings --format json exited %d:\n%s", rc, err);
		len = strlen(out);
		while (len > 0 && isspace((unsigned char)out[len - 1]))
			len--;
		arr = json_tokener_parse_ex(tok, out, (int)len);
		if (arr == NULL || json_tokener_get_parse_end(tok) != len)
			fail_msg("--format json is not one JSON value: %.300s", out);
		json_tokener_free(tok);
		if (!json_object_is_type(arr, json_type_array))
			fail_msg("--format json is not an array: %.300s", out);
		if (json_object_array_length(arr) < rows)
			fail_msg("json has %zu rows, csv had %zu", json_object_array_length(arr), rows);
		for (size_t k = 0; k < json_object_array_length(arr); k++) {
			json_object *row = json_object_array_get_idx(arr, k);
			const char *sensor = harness_json_str(row, "sensor");
			bool five = false;

			if (!json_object_is_type(row, json_type_object))
				fail_msg("json row %zu is not an object", k);
			if (sensor == NULL || strcmp(sensor, "c1-flat") != 0)
				fail_msg("json row %zu is not of sensor c1-flat: %s", k,
				    json_object_to_json_string(row));
			json_object_object_foreach(row, key, val) {
				(void)key;
				if ((json_object_is_type(val, json_type_double) ||
				    json_object_is_type(val, json_type_int)) &&
				    json_object_get_double(val) == 5.0)
					five = true;
			}
			if (!five)
				fail_msg("json row without the value 5: %s",
				    json_object_to_json_string(row));
		}
		json_object_put(arr);
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
		cmocka_unit_test_setup_teardown(test_telemetry_windows_follow_spec,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_coldgatectl_reads_the_store,
		    harness_setup, harness_teardown),
	};

	return cmocka_run_group_tests_name("integration: telemetry", tests, NULL, NULL);
}
