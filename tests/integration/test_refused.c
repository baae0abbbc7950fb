/*
 * A broker that refuses the connection (CONNACK "not authorised") loses
 * nothing (issue: bad input): the daemon keeps reading and storing, backs
 * off and retries, and once the broker accepts it again every window from
 * the refused period arrives in seq order with no gap.
 *
 * The subscriber's persistent session is made first and kept across the
 * broker restarts (persistence on), so what the daemon sends before the
 * subscriber is back is queued for it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/harness.h"

static const char cfg_text[] =
	HARNESS_CFG_HEAD
	"publish = { interval = 1; };\n"
	"zones = ( { id = \"cold-1\"; name = \"冷库 1\"; } );\n"
	"sensors = (\n"
	"  { id = \"c1-air\"; zone = \"cold-1\"; driver = \"sim\"; profile = \"cold-room\"; interval = 0.5; }\n"
	");\n";

static void
test_refused_connection_keeps_every_window(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	int64_t refused_from, accepted_at;
	size_t n, during = 0;
	char why[1024], *cfg;

	sub = harness_sub_start(h, "coldgate/#", true);
	assert_non_null(sub);
	/* From now on the broker says "not authorised" to everyone. */
	harness_broker_stop(h);
	h->broker.refuse = true;
	assert_int_equal(harness_broker_start(h), 0);

	cfg = harness_write_config(h, "coldgate.cfg", cfg_text);
	refused_from = harness_wall_ms();
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	if (!harness_daemon_log_wait(h, "refused the connection", HARNESS_TIMEOUT))
		fail_msg("the daemon never logged the refusal");
	harness_sleep(4.0);
	if (!harness_daemon_running(h))
		fail_msg("coldgated exited while the broker refused it");

	harness_broker_stop(h);
	h->broker.refuse = false;
	accepted_at = harness_wall_ms();
	assert_int_equal(harness_broker_start(h), 0);
	if (harness_sub_wait(sub, 0, "telemetry", harness_match_start_from, &accepted_at,
	    HARNESS_TIMEOUT) < 0)
		fail_msg("no telemetry after the broker accepted the daemon again");

	if (!harness_check_seqs(sub, 0, 1, why, sizeof(why)))
		fail_msg("seq across the refusal: %s", why);
	n = harness_sub_count(sub);
	for (size_t i = 0; i < n; i++) {
		const struct harness_msg *m = harness_sub_get(sub, i);
		int64_t start;

		if (strcmp(m->topic, HARNESS_BASE "telemetry") == 0 &&
		    harness_json_int(m->json, "start", &start) &&
		    start >= refused_from && start + 1000 <= accepted_at)
			during++;
	}
	/* About four windows closed while refused; all of them must be here. */
	if (during < 3)
		fail_msg("only %zu windows from the refused period arrived", during);

	assert_int_equal(harness_daemon_stop(h), 0);
	free(cfg);
	harness_pass(h);
}

/* A broker that is not there when the daemon starts: it starts anyway, and
 * once the broker comes every window since the start arrives, from seq 1. */
static void
test_absent_broker_at_start_loses_nothing(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	int64_t up_at;
	char why[1024], *cfg;

	sub = harness_sub_start(h, "coldgate/#", true);
	assert_non_null(sub);
	harness_broker_stop(h);

	cfg = harness_write_config(h, "coldgate.cfg", cfg_text);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	harness_sleep(4.0);
	if (!harness_daemon_running(h))
		fail_msg("coldgated exited without a broker");
	up_at = harness_wall_ms();
	assert_int_equal(harness_broker_start(h), 0);
	if (harness_sub_wait(sub, 0, "telemetry", harness_match_start_from, &up_at,
	    HARNESS_TIMEOUT) < 0)
		fail_msg("no telemetry after the broker appeared");
	if (!harness_check_seqs(sub, 0, 1, why, sizeof(why)))
		fail_msg("seq after a late broker: %s", why);
	if (harness_sub_max_seq(sub) < 4)
		fail_msg("the windows from before the broker came are missing");

	assert_int_equal(harness_daemon_stop(h), 0);
	free(cfg);
	harness_pass(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refused_connection_keeps_every_window,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_absent_broker_at_start_loses_nothing,
		    harness_setup, harness_teardown),
	};

	return cmocka_run_group_tests_name("integration: broker refuses or is absent", tests,
	    NULL, NULL);
}
