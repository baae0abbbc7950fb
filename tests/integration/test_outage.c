/*
 * Store and forward across a broker outage (SPEC §5): the broker goes away
 * for 8 s and comes back on the same port.  Every window of the outage must
 * then arrive, in seq order with no gap; only messages in flight at the
 * fault may repeat, and a repeat is the same message.
 *
 * The broker keeps the subscriber's persistent session across its restart
 * (persistence on, clean_session off), as a dashboard's broker would, so a
 * message the daemon delivers before the subscriber has reconnected is
 * queued for it rather than lost on the way to the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/harness.h"

#define OUTAGE	8.0			/* seconds the broker is away */

static const char cfg_text[] =
	HARNESS_CFG_HEAD
	"publish = { interval = 1; };\n"
	"zones = ( { id = \"house-1\"; name = \"香菇出菇房 1\"; } );\n"
	"sensors = (\n"
	"  { id = \"h1-air\"; zone = \"house-1\"; driver = \"sim\"; profile = \"mushroom-house\"; interval = 0.5; },\n"
	"  { id = \"h1-probe\"; zone = \"house-1\"; driver = \"sim\"; quantity = \"temperature\";\n"
	"    script = ( (0, 15.0), (3600, 16.0) ); interval = 0.5; }\n"
	");\n";

static void
test_outage_windows_arrive_after_reconnect_without_gap(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	int64_t down_ms, up_ms, prev_start = -1;
	size_t n, outage_windows = 0;
	char why[1024], *cfg;

	sub = harness_sub_start(h, "coldgate/#", true);
	assert_non_null(sub);
	cfg = harness_write_config(h, "coldgate.cfg", cfg_text);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	if (harness_sub_wait_n(sub, 0, "telemetry", NULL, NULL, 3, HARNESS_TIMEOUT) < 3)
		fail_msg("fewer than 3 telemetry messages before the outage");

	down_ms = harness_wall_ms();
	harness_broker_stop(h);
	harness_sleep(OUTAGE);
	if (!harness_daemon_running(h))
		fail_msg("coldgated exited while the broker was away");
	up_ms = harness_wall_ms();
	assert_int_equal(harness_broker_start(h), 0);

	/* Wait for a window that began after the broker came back: everything
	 * before it has been delivered by then, since delivery is in order. */
	if (harness_sub_wait(sub, 0, "telemetry", harness_match_start_from, &up_ms,
	    HARNESS_TIMEOUT) < 0)
		fail_msg("no telemetry window after the broker came back");
	if (harness_sub_connects(sub) < 2)
		fail_msg("the subscriber did not reconnect");

	if (!harness_check_seqs(sub, 0, 1, why, sizeof(why)))
		fail_msg("seq across the outage: %s", why);

	/* Every window: each one first seen starts where the previous ended. */
	n = harness_sub_count(sub);
	for (size_t i = 0; i < n; i++) {
		const struct harness_msg *m = harness_sub_get(sub, i);
		int64_t start, end;

		if (strcmp(m->topic, HARNESS_BASE "telemetry") != 0)
			continue;
		if (!harness_json_int(m->json, "start", &start) ||
		    !harness_json_int(m->json, "end", &end))
			fail_msg("telemetry without integer start/end: %s", m->payload);
		if (start <= prev_start)
			continue;	/* a redelivery, checked by harness_check_seqs */
		if (prev_start >= 0 && start != prev_start + 1000)
			fail_msg("window at %lld follows the window at %lld: windows lost",
			    (long long)start, (long long)prev_start);
		prev_start = start;
		if (start >= down_ms && end <= up_ms)
			outage_windows++;
	}
	/* The broker was away for OUTAGE s of wall time: its windows must be
	 * there (the check above proves none is missing; this that they came). */
	if (outage_windows < 1)
		fail_msg("no window from the outage [%lld, %lld] was delivered",
		    (long long)down_ms, (long long)up_ms);

	assert_int_equal(harness_daemon_stop(h), 0);
	free(cfg);
	harness_pass(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_outage_windows_arrive_after_reconnect_without_gap,
		    harness_setup, harness_teardown),
	};

	return cmocka_run_group_tests_name("integration: broker outage", tests, NULL, NULL);
}
