/*
 * Reading quality in the real daemon, on scripted sim sensors:
 *  - a one-read spike is refused (quality "spike") and a real step is
 *    accepted on its second read; an implausible value (200 C) is refused
 *    as "range" even with the spike filter off;
 *  - refused values never reach telemetry or alarms, while the same script
 *    with the filter off does reach both (so the check can fail);
 *  - failed reads are on record with their reason ("timeout");
 *  - a door's changes become door_open / door_close events.
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

/*
 * Reads every second at t = 0, 1, 2, ... s after start.  60 C stands for
 * one read (t = 4), 200 C for one (t = 9); from t = 13 the room really is
 * at 20 C.
 */
#define SPIKE_SCRIPT \
	"script = ( (0, 5), (3.6, 5), (3.601, 60), (4.4, 60), (4.401, 5), (8.6, 5), (8.601, 200), " \
	"(9.4, 200), (9.401, 5), (13, 5), (13.001, 20), (600, 20) );"

static const char cfg_text[] =
	HARNESS_CFG_HEAD
	"publish = { interval = 1; };\n"
	"zones = ( { id = \"cold-1\"; name = \"冷库 1\"; } );\n"
	"sensors = (\n"
	"  { id = \"c1-filtered\"; zone = \"cold-1\"; driver = \"sim\"; quantity = \"temperature\"; interval = 1;\n"
	"    " SPIKE_SCRIPT " },\n"
	"  { id = \"c1-raw\"; zone = \"cold-1\"; driver = \"sim\"; quantity = \"temperature\"; interval = 1;\n"
	"    spike_filter = false; " SPIKE_SCRIPT " },\n"
	"  { id = \"c1-fail\"; zone = \"cold-1\"; driver = \"sim\"; quantity = \"temperature\"; interval = 0.5;\n"
	"    script = ( (0, 3), (600, 3) ); fail = ( (2, 4) ); },\n"
	"  { id = \"c1-door\"; zone = \"cold-1\"; driver = \"sim\"; quantity = \"door\"; interval = 0.25;\n"
	"    script = ( (0, 0), (2.5, 0), (2.501, 1), (5.5, 1), (5.501, 0), (600, 0) ); }\n"
	");\n"
	"alarms = (\n"
	"  { sensor = \"c1-filtered\"; quantity = \"temperature\"; high = 30; },\n"
	"  { sensor = \"c1-raw\"; quantity = \"temperature\"; high = 30; }\n"
	");\n";

static bool
filtered_at_20(const struct harness_msg *m, const void *arg)
{
	(void)arg;
	return harness_reading_stat(m, "c1-filtered", NULL, "last") == 20.0;
}

static bool
is_event(const struct harness_msg *m, const void *type)
{
	const char *t = harness_json_str(m->json, "type");
	const char *s = harness_json_str(m->json, "sensor");

	return t != NULL && s != NULL && strcmp(t, type) == 0 && strcmp(s, "c1-door") == 0;
}

/* Lines of CSV text that contain every one of the needles (NULL-terminated). */
static int
count_lines(const char *text, const char *const *needles)
{
	int n = 0;

	for (const char *l = text; l != NULL && *l != '\0';) {
		const char *end = strchr(l, '\n');
		size_t len = end ? (size_t)(end - l) : strlen(l);
		char *line = strndup(l, len);
		bool all = true;

		for (size_t k = 0; needles[k] != NULL; k++)
			if (strstr(line, needles[k]) == NULL)
				all = false;
		n += all;
		free(line);
		l = end ? end + 1 : NULL;
	}
	return n;
}

static char *
readings_csv(struct harness *h, const char *cfg, const char *sensor)
{
	const char *argv[] = { h->coldgatectl, "-c", cfg, "readings", "--sensor", sensor,
	    "--format", "csv", NULL };
	char *out = NULL, *err = NULL;
	int rc;

	rc = harness_run(h, argv, &out, &err, HARNESS_TIMEOUT);
	if (rc != 0)
		fail_msg("coldgatectl readings --sensor %s exited %d:\n%s", sensor, rc, err);
	free(err);
	return out;
}

static void
test_refused_readings_are_kept_but_never_used(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	char *cfg, *csv;
	double raw_max = -INFINITY;
	long open_i, close_i;
	int64_t open_ts, close_ts;

	cfg = harness_write_config(h, "coldgate.cfg", cfg_text);
	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);

	if (harness_sub_wait(sub, 0, "telemetry", filtered_at_20, NULL, HARNESS_TIMEOUT) < 0)
		fail_msg("the filtered sensor never reported the real step to 20 C");
	/* One more window, so that every read up to the step is committed. */
	harness_sleep(1.5);

	for (size_t k = 0; k < harness_sub_count(sub); k++) {
		const struct harness_msg *m = harness_sub_get(sub, k);
		double v;

		if (strstr(m->topic, "/telemetry") != NULL) {
			if ((v = harness_reading_stat(m, "c1-filtered", NULL, "max")) > 20.0)
				fail_msg("a refused value reached telemetry: %s", m->payload);
			if ((v = harness_reading_stat(m, "c1-raw", NULL, "max")) >= 200.0)
				fail_msg("an implausible value reached telemetry: %s", m->payload);
			if (v > raw_max)
				raw_max = v;
		}
		if (strstr(m->topic, "/alarm/") != NULL && strstr(m->payload, "c1-filtered") != NULL)
			fail_msg("the refused spike raised an alarm: %s", m->payload);
	}
	/* Without the filter the spike goes through: the check above could fail. */
	if (raw_max != 60.0)
		fail_msg("with spike_filter = false the 60 C read should be published; max %g",
		    raw_max);
	if (harness_sub_find(sub, 0, "alarm/", NULL, NULL) < 0)
		fail_msg("the unfiltered spike raised no alarm");

	csv = readings_csv(h, cfg, "c1-filtered");
	if (count_lines(csv, (const char *const[]){ ",60,spike", NULL }) != 1 ||
	    count_lines(csv, (const char *const[]){ ",200,range", NULL }) != 1 ||
	    count_lines(csv, (const char *const[]){ ",20,spike", NULL }) != 1 ||
	    count_lines(csv, (const char *const[]){ ",20,ok", NULL }) < 1)
		fail_msg("c1-filtered's records should hold one 60 spike, one 200 range, one 20 "
		    "spike then 20 ok:\n%s", csv);
	free(csv);
	csv = readings_csv(h, cfg, "c1-raw");
	if (count_lines(csv, (const char *const[]){ ",60,ok", NULL }) != 1 ||
	    count_lines(csv, (const char *const[]){ ",200,range", NULL }) != 1 ||
	    count_lines(csv, (const char *const[]){ "spike", NULL }) != 0)
		fail_msg("c1-raw's records should hold 60 ok and 200 range, no spike:\n%s", csv);
	free(csv);
	csv = readings_csv(h, cfg, "c1-fail");
	if (count_lines(csv, (const char *const[]){ ",,timeout", NULL }) < 2 ||
	    count_lines(csv, (const char *const[]){ ",3,ok", NULL }) < 2)
		fail_msg("c1-fail's failed reads should be on record as timeouts:\n%s", csv);
	free(csv);

	open_i = harness_sub_wait(sub, 0, "event", is_event, "door_open", HARNESS_TIMEOUT);
	close_i = harness_sub_wait(sub, 0, "event", is_event, "door_close", HARNESS_TIMEOUT);
	if (open_i < 0 || close_i < 0 || close_i < open_i)
		fail_msg("want door_open then door_close events for c1-door (%ld, %ld)", open_i,
		    close_i);
	assert_true(harness_json_int(harness_sub_get(sub, (size_t)open_i)->json, "ts", &open_ts));
	assert_true(harness_json_int(harness_sub_get(sub, (size_t)close_i)->json, "ts", &close_ts));
	/* Three seconds apart in the script; allow for reads every 0.25 s. */
	if (close_ts - open_ts < 2000 || close_ts - open_ts > 4500)
		fail_msg("door open for %lld ms; the script holds it open 3 s",
		    (long long)(close_ts - open_ts));
	if (harness_sub_find(sub, (size_t)open_i + 1, "event", is_event, "door_open") >= 0)
		fail_msg("the door opened once but two door_open events came");

	assert_int_equal(harness_daemon_stop(h), 0);
	free(cfg);
	harness_pass(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refused_readings_are_kept_but_never_used,
		    harness_setup, harness_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
