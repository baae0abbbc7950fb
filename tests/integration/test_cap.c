/*
 * The size cap with a backlog of big windows (issue "Nothing lost, ever",
 * 3): the broker is down, so only the cap ever takes a message out of the
 * outbox.  Once the store is at storage.max_size_mb it must drop the
 * oldest undelivered telemetry about as fast as new windows come, a few at
 * a time, and keep the rest of the backlog, instead of throwing the whole
 * backlog away in one step (which 04ee9f5 did: 100 messages per step).
 *
 * The outbox is watched from outside, through a read-only connection to
 * the store file, as coldgatectl reads it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/harness.h"

#define NSENSORS	200	/* windows of ~60 KiB: the 1 MiB cap holds about 15 */

/* The configuration: NSENSORS sim sensors, a window a second, a 1 MiB cap. */
static char *
cfg_text(void)
{
	static const char head[] =
	    HARNESS_CFG_HEAD
	    "publish = { interval = 1; };\n"
	    "zones = ( { id = \"cold-1\"; name = \"冷库 1\"; } );\n"
	    "sensors = (\n";
	size_t cap = sizeof(head) + NSENSORS * 128 + 8, len;
	char *s = malloc(cap), *t;

	assert_non_null(s);
	len = (size_t)snprintf(s, cap, "%s", head);
	for (int i = 0; i < NSENSORS; i++)
		len += (size_t)snprintf(s + len, cap - len,
		    "  { id = \"c1-air-%03d\"; zone = \"cold-1\"; driver = \"sim\"; "
		    "profile = \"cold-room\"; interval = 1; }%s\n", i, i + 1 < NSENSORS ? "," : "");
	snprintf(s + len, cap - len, ");\n");
	/* HARNESS_CFG_HEAD has a storage group already. */
	t = harness_replace(s, "commit_interval_ms = 200;", "commit_interval_ms = 200; max_size_mb = 1;");
	assert_non_null(t);
	assert_non_null(strstr(t, "max_size_mb = 1;"));
	free(s);
	return t;
}

/* Undelivered messages and the highest seq, from the store as it is now. */
static bool
outbox_now(const char *path, int64_t *pending, int64_t *max_seq)
{
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	bool ok = false;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		goto out;
	sqlite3_busy_timeout(db, 2000);
	if (sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM outbox WHERE delivered IS NULL), "
	    "(SELECT value FROM meta WHERE key = 'last_seq')", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*pending = sqlite3_column_int64(st, 0);
		*max_seq = sqlite3_column_int64(st, 1);
		ok = true;
	}
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ok;
}

static void
test_cap_drops_a_backlog_a_few_windows_at_a_time(void **state)
{
	struct harness *h = *state;
	char *cfg, *text = cfg_text();
	int64_t pending, seq, prev = -1, peak = 0, worst = 0, dropped = 0;
	double until = 0;

	harness_broker_stop(h);	/* nothing is delivered: only the cap removes */
	cfg = harness_write_config(h, "coldgate.cfg", text);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	/* Watch until 10 s after the cap first took a message, at most 3 min. */
	for (double end = harness_now() + 180; harness_now() < end; harness_sleep(0.25)) {
		if (!harness_daemon_running(h))
			fail_msg("coldgated stopped");
		if (!outbox_now(h->store, &pending, &seq))
			continue;	/* not created yet, or busy */
		if (prev >= 0 && prev - pending > worst)
			worst = prev - pending;
		prev = pending;
		if (pending > peak)
			peak = pending;
		dropped = seq - pending;
		if (dropped > 0 && until == 0)
			until = harness_now() + 10;
		if (until > 0 && harness_now() >= until)
			break;
	}
	printf("cap: peak %lld pending, %lld left, %lld dropped, at most %lld at once\n",
	    (long long)peak, (long long)pending, (long long)dropped, (long long)worst);
	if (dropped == 0)
		fail_msg("the cap never dropped a message (peak %lld pending)", (long long)peak);
	/*
	 * About a window a second comes, so about one goes at a time; between
	 * two looks a quarter of a second apart a handful at most, never the
	 * backlog.
	 */
	if (worst > 5)
		fail_msg("the backlog fell by %lld messages at once (peak %lld, %lld dropped "
		    "in all): the cap threw away more than it needed", (long long)worst,
		    (long long)peak, (long long)dropped);
	if (pending < peak / 2)
		fail_msg("%lld of a peak of %lld pending are left", (long long)pending,
		    (long long)peak);
	assert_int_equal(harness_daemon_stop(h), 0);
	free(text);
	free(cfg);
	harness_pass(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cap_drops_a_backlog_a_few_windows_at_a_time,
		    harness_setup, harness_teardown),
	};

	return cmocka_run_group_tests_name("integration: size cap", tests, NULL, NULL);
}
