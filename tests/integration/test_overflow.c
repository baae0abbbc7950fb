/*
 * storage.max_size_mb holds (SPEC §5): sensors that write far more than a
 * 1 MB store can keep make the daemon drop the oldest raw readings, say so
 * in a buffer_overflow event, and carry on publishing telemetry with no
 * seq gap; the database file stays near the cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/harness.h"

static bool
is_overflow(const struct harness_msg *m, const void *arg)
{
	const char *type = harness_json_str(m->json, "type");

	(void)arg;
	return type != NULL && strcmp(type, "buffer_overflow") == 0;
}

static void
test_size_cap_drops_readings_and_says_so(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	const struct harness_msg *ev;
	char *text, *cfg, *db, why[1024];
	int64_t dropped, seq;
	struct stat st;
	long at;
	size_t len = 0, cap = 16384;

	/* 40 sensors x 2 quantities every 10 ms: about 8000 readings a second. */
	text = malloc(cap);
	assert_non_null(text);
	len += (size_t)snprintf(text + len, cap - len, "%s",
	    HARNESS_CFG_HEAD
	    "publish = { interval = 1; };\n"
	    "zones = ( { id = \"cold-1\"; name = \"冷库 1\"; } );\n"
	    "sensors = (\n");
	for (int i = 0; i < 40; i++)
		len += (size_t)snprintf(text + len, cap - len, "  { id = \"s%d\"; zone = \"cold-1\"; "
		    "driver = \"sim\"; profile = \"cold-room\"; interval = 0.01; }%s\n", i,
		    i < 39 ? "," : "");
	snprintf(text + len, cap - len, ");\n");
	/* The head's storage group has no max_size_mb: add it to that group. */
	cfg = harness_replace(text, "  commit_interval_ms = 200;\n",
	    "  commit_interval_ms = 200;\n  max_size_mb = 1;\n");
	free(text);
	text = cfg;
	cfg = harness_write_config(h, "coldgate.cfg", text);
	free(text);

	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	at = harness_sub_wait(sub, 0, "event", is_overflow, NULL, HARNESS_TIMEOUT);
	if (at < 0)
		fail_msg("no buffer_overflow event");
	ev = harness_sub_get(sub, (size_t)at);
	if (!harness_json_int(ev->json, "dropped_readings", &dropped) || dropped <= 0)
		fail_msg("buffer_overflow without dropped readings: %s", ev->payload);
	if (!harness_json_int(ev->json, "dropped_undelivered", &dropped) || dropped != 0)
		fail_msg("undelivered messages dropped while readings could go: %s", ev->payload);

	/* Telemetry goes on after the drop, with no gap in seq. */
	seq = harness_sub_max_seq(sub);
	if (harness_sub_wait(sub, 0, "telemetry", harness_match_seq_above, &seq,
	    HARNESS_TIMEOUT) < 0)
		fail_msg("no telemetry after the overflow");
	if (!harness_check_seqs(sub, 0, 1, why, sizeof(why)))
		fail_msg("seq: %s", why);

	assert_int_equal(harness_daemon_stop(h), 0);
	db = harness_path(h, "state/coldgate.db");
	assert_int_equal(stat(db, &st), 0);
	/* The cap counts pages in use; the file may hold a few free ones more. */
	if (st.st_size > 2 * 1024 * 1024)
		fail_msg("store is %lld bytes with max_size_mb = 1", (long long)st.st_size);
	free(db);
	free(cfg);
	harness_pass(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_size_cap_drops_readings_and_says_so,
		    harness_setup, harness_teardown),
	};

	return cmocka_run_group_tests_name("integration: store size cap", tests, NULL, NULL);
}
