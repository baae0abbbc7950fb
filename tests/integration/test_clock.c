/*
 * A step of the wall clock (issue "Nothing lost, ever", 6): NTP setting the
 * clock of an RTC-less Pi, or an operator's date -s.  Each step of more
 * than 2 s, back or forward, is reported as one clock_sync event, and the
 * telemetry windows go on: a step back must not leave the window's end an
 * hour ahead, where no timer fires.
 *
 * The daemon runs under libfaketime with only the wall clock faked and its
 * offset read from a file, which the test rewrites to step the clock.
 * libfaketime cannot raise the timerfd's clock-change cancel, so this
 * proves the once-a-second check on its own; the cancel path is the
 * kernel's and ends in the same function.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/harness.h"

static const char cfg_text[] =
	HARNESS_CFG_HEAD
	"publish = { interval = 2; };\n"
	"zones = ( { id = \"cold-1\"; name = \"冷库 1\"; } );\n"
	"sensors = (\n"
	"  { id = \"c1-air\"; zone = \"cold-1\"; driver = \"sim\"; profile = \"cold-room\"; interval = 0.5; }\n"
	");\n";

/* Debian's libfaketime, wherever the architecture puts it; NULL if absent. */
static char *
libfaketime(void)
{
	glob_t g;
	char *path = NULL;

	if (glob("/usr/lib/*/faketime/libfaketime.so.1", 0, NULL, &g) == 0 && g.gl_pathc > 0)
		path = strdup(g.gl_pathv[0]);
	else if (glob("/usr/lib/faketime/libfaketime.so.1", 0, NULL, &g) == 0 && g.gl_pathc > 0)
		path = strdup(g.gl_pathv[0]);
	globfree(&g);
	return path;
}

/* arg: const int64_t *: a clock_sync event whose step_ms is within 10 s of it. */
static bool
match_step(const struct harness_msg *m, const void *arg)
{
	int64_t want = *(const int64_t *)arg, step;
	const char *type = harness_json_str(m->json, "type");

	return type != NULL && strcmp(type, "clock_sync") == 0 &&
	    harness_json_int(m->json, "step_ms", &step) && step > want - 10000 &&
	    step < want + 10000;
}

static bool
match_clock_sync(const struct harness_msg *m, const void *arg)
{
	const char *type = harness_json_str(m->json, "type");

	(void)arg;
	return type != NULL && strcmp(type, "clock_sync") == 0;
}

/* Step the daemon's clock to offset (libfaketime's "+0", "-3600"). */
static void
set_offset(struct harness *h, const char *offset)
{
	char text[32];

	snprintf(text, sizeof(text), "%s\n", offset);
	free(harness_write_file(h, "faketime", text));
}

/* One step: exactly one clock_sync with about step_ms, then windows go on. */
static void
expect_step(struct harness *h, struct harness_sub *sub, const char *offset, int64_t step_ms)
{
	size_t mark = harness_sub_count(sub), n;
	long i;

	set_offset(h, offset);
	i = harness_sub_wait(sub, mark, "event", match_step, &step_ms, HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("no clock_sync event with step_ms about %lld after the clock went to %s",
		    (long long)step_ms, offset);
	n = harness_sub_wait_n(sub, (size_t)i, "telemetry", harness_match_sensor, "c1-air", 3,
	    HARNESS_TIMEOUT);
	if (n < 3)
		fail_msg("telemetry stopped after a step of %lld ms: %zu windows",
		    (long long)step_ms, n);
	if (harness_sub_find(sub, (size_t)i + 1, "event", match_clock_sync, NULL) >= 0)
		fail_msg("one step gave more than one clock_sync event");
}

static void
test_steps_back_and_forward_are_reported_and_windows_go_on(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	char why[1024], *lib, *file, *cfg, *preload;
	int64_t seq;

	if ((lib = libfaketime()) == NULL)
		fail_msg("libfaketime is not installed (scripts/deps installs the faketime package)");
	preload = harness_replace("LD_PRELOAD=@", "@", lib);
	set_offset(h, "+0");
	file = harness_path(h, "faketime");
	{
		char *tsfile = harness_replace("FAKETIME_TIMESTAMP_FILE=@", "@", file);
		const char *env[] = { preload, tsfile, "FAKETIME_NO_CACHE=1",
		    "FAKETIME_DONT_FAKE_MONOTONIC=1",
		    /* Under ASan the preload comes before its runtime: that is fine here. */
		    "ASAN_OPTIONS=verify_asan_link_order=0", NULL };

		sub = harness_sub_start(h, "coldgate/#", false);
		assert_non_null(sub);
		cfg = harness_write_config(h, "coldgate.cfg", cfg_text);
		assert_int_equal(harness_daemon_start(h, cfg, env), 0);
		free(tsfile);
	}
	if (harness_sub_wait_n(sub, 0, "telemetry", harness_match_sensor, "c1-air", 2,
	    HARNESS_TIMEOUT) < 2)
		fail_msg("no telemetry under libfaketime");
	if (harness_sub_find(sub, 0, "event", match_clock_sync, NULL) >= 0)
		fail_msg("a clock_sync event before any step");

	expect_step(h, sub, "-3600", -3600 * 1000LL);
	expect_step(h, sub, "+0", 3600 * 1000LL);

	seq = harness_sub_max_seq(sub);
	if (!harness_check_seqs(sub, 0, 1, why, sizeof(why)))
		fail_msg("seq across clock steps: %s (last %lld)", why, (long long)seq);
	assert_int_equal(harness_daemon_stop(h), 0);
	free(lib);
	free(preload);
	free(file);
	free(cfg);
	harness_pass(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_steps_back_and_forward_are_reported_and_windows_go_on,
		    harness_setup, harness_teardown),
	};

	return cmocka_run_group_tests_name("integration: clock steps", tests, NULL, NULL);
}
