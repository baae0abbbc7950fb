/*
 * Crashes and clean stops (SPEC §2, §4, §5).
 *
 * kill -9 in the middle of a run, then a restart on the same store: the
 * broker publishes the Last Will (offline), and the new process continues
 * the seq (it does not start at 1 again) with no gap; only messages that
 * were in flight may repeat, as the same message.
 *
 * SIGTERM: exit status 0, and the retained status a newcomer gets is
 * offline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/harness.h"

static const char cfg_text[] =
	HARNESS_CFG_HEAD
	"publish = { interval = 1; };\n"
	"zones = ( { id = \"cold-1\"; name = \"冷库 1\"; } );\n"
	"sensors = (\n"
	"  { id = \"c1-air\"; zone = \"cold-1\"; driver = \"sim\"; profile = \"cold-room\"; interval = 0.2; },\n"
	"  { id = \"c1-probe\"; zone = \"cold-1\"; driver = \"sim\"; quantity = \"temperature\";\n"
	"    script = ( (0, 2.0), (3600, 3.0) ); interval = 0.5; }\n"
	");\n";

static void
test_kill9_then_restart_continues_seq_without_gap(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	int64_t before;
	size_t mark;
	char why[1024], *cfg;
	long i;
	int rc;

	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	cfg = harness_write_config(h, "coldgate.cfg", cfg_text);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	if (harness_sub_wait_n(sub, 0, "telemetry", NULL, NULL, 3, HARNESS_TIMEOUT) < 3)
		fail_msg("fewer than 3 telemetry messages before the crash");

	/* Mid-window, with readings in the open batch. */
	harness_sleep(0.3);
	mark = harness_sub_count(sub);
	harness_daemon_signal(h, SIGKILL);
	rc = harness_daemon_wait(h, HARNESS_TIMEOUT);
	assert_int_equal(rc, 128 + SIGKILL);

	/* The broker notices the dropped connection and sends the Will. */
	i = harness_sub_wait(sub, mark, "status", harness_match_state, "offline",
	    HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("no offline status (Last Will) after kill -9");
	harness_sleep(0.5);		/* anything still on its way */
	before = harness_sub_max_seq(sub);
	assert_true(before >= 3);

	mark = harness_sub_count(sub);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	if (harness_sub_wait(sub, mark, "status", harness_match_state, "online",
	    HARNESS_TIMEOUT) < 0)
		fail_msg("no online status after the restart");
	/* Three new messages past the old ones. */
	{
		int64_t want = before + 2;

		if (harness_sub_wait(sub, mark, NULL, harness_match_seq_above, &want,
		    HARNESS_TIMEOUT) < 0)
			fail_msg("no seq above %lld after the restart", (long long)want);
	}

	/* One run of seqs from 1 over both processes: a restart at 1 shows as
	 * a repeat of seq 1 with a different payload, a lost message as a gap. */
	if (!harness_check_seqs(sub, 0, 1, why, sizeof(why)))
		fail_msg("seq across kill -9: %s", why);
	{
		long first_new = harness_sub_find(sub, mark, "telemetry", NULL, NULL);
		const struct harness_msg *m;

		assert_true(first_new >= 0);
		m = harness_sub_get(sub, (size_t)first_new);
		if (m->seq == 1)
			fail_msg("the restarted daemon numbers from 1 again: %s", m->payload);
	}

	assert_int_equal(harness_daemon_stop(h), 0);
	free(cfg);
	harness_pass(h);
}

static void
test_sigterm_exits_0_and_leaves_retained_offline_status(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub, *late;
	const struct harness_msg *m;
	char *cfg;
	int64_t ts;
	long i;

	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	cfg = harness_write_config(h, "coldgate.cfg", cfg_text);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	if (harness_sub_wait(sub, 0, "telemetry", NULL, NULL, HARNESS_TIMEOUT) < 0)
		fail_msg("no telemetry");

	harness_daemon_signal(h, SIGTERM);
	assert_int_equal(harness_daemon_wait(h, HARNESS_TIMEOUT), 0);

	/* A subscriber that comes later gets the retained offline status. */
	late = harness_sub_start(h, HARNESS_BASE "status", false);
	assert_non_null(late);
	i = harness_sub_wait(late, 0, "status", NULL, NULL, HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("no retained status after SIGTERM");
	m = harness_sub_get(late, (size_t)i);
	if (!m->retain)
		fail_msg("the status is not retained: %s", m->payload);
	if (!harness_match_state(m, "offline"))
		fail_msg("retained status after SIGTERM is not offline: %s", m->payload);
	if (harness_json_str(m->json, "version") == NULL || !harness_json_int(m->json, "ts", &ts))
		fail_msg("offline status lacks version or integer ts: %s", m->payload);
	harness_sub_stop(late);

	free(cfg);
	harness_pass(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kill9_then_restart_continues_seq_without_gap,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(
		    test_sigterm_exits_0_and_leaves_retained_offline_status,
		    harness_setup, harness_teardown),
	};

	return cmocka_run_group_tests_name("integration: crash and stop", tests, NULL, NULL);
}
