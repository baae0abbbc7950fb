/*
 * A full disk under the store (issue "Nothing lost, ever", 2).  The state
 * directory is a small tmpfs of its own, filled to the last byte by a file
 * of ours while the daemon runs.  The windows made meanwhile must not be
 * lost: they wait in memory with their own seqs and reach the broker once
 * the file is gone, with no gap and no window missing; the daemon says so
 * at once in its retained status (outside the outbox), and in one
 * store_error event and the gateway-store-error alarm once they can be
 * stored; it keeps running throughout.
 *
 * Mounting needs root (CI and scripts/check run as root, or through sudo);
 * without it the test is skipped, saying why.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/harness.h"

static const char cfg_text[] =
	HARNESS_CFG_HEAD
	"publish = { interval = 1; };\n"
	"zones = ( { id = \"cold-1\"; name = \"冷库 1\"; } );\n"
	"sensors = (\n"
	"  { id = \"c1-air\"; zone = \"cold-1\"; driver = \"sim\"; profile = \"cold-room\"; interval = 0.2; }\n"
	");\n";

#define ALARM_TOPIC	"alarm/gateway-store-error"

static bool mounted;

static int
setup(void **state)
{
	struct harness *h;

	if (harness_setup(state) != 0)
		return -1;
	h = *state;
	if (mkdir(h->state_dir, 0700) == -1 && errno != EEXIST)
		return -1;
	/* Room for the store and its WAL to start; the filler takes the rest. */
	mounted = mount("coldgate-test", h->state_dir, "tmpfs", MS_NOSUID | MS_NODEV,
	    "size=8m,mode=0700") == 0;
	return 0;
}

static int
teardown(void **state)
{
	struct harness *h = *state;

	if (mounted) {
		/* The daemon must be gone first; teardown stops it again harmlessly. */
		harness_daemon_stop(h);
		umount2(h->state_dir, MNT_DETACH);
		mounted = false;
	}
	return harness_teardown(state);
}

/* Write path until the file system says ENOSPC; returns the bytes written. */
static long long
fill(const char *path)
{
	static char block[64 << 10];
	long long total = 0;
	ssize_t n;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd == -1)
		fail_msg("open %s: %s", path, strerror(errno));
	memset(block, 0xa5, sizeof(block));
	for (size_t len = sizeof(block); len > 0; ) {
		if ((n = write(fd, block, len)) > 0) {
			total += n;
			continue;
		}
		if (n == -1 && errno != ENOSPC)
			fail_msg("write %s: %s", path, strerror(errno));
		len /= 2;	/* the last few pages one by one */
	}
	close(fd);
	return total;
}

/* Telemetry, in seq order, must tile time: each window starts where the last ended. */
static void
assert_windows_tile(struct harness_sub *sub)
{
	int64_t prev_seq = 0, prev_end = 0, seq, start, end;

	for (size_t k = 0; k < harness_sub_count(sub); k++) {
		const struct harness_msg *m = harness_sub_get(sub, k);
		const char *t = strrchr(m->topic, '/');

		if (t == NULL || strcmp(t, "/telemetry") != 0 || m->json == NULL ||
		    !harness_json_int(m->json, "seq", &seq) || seq <= prev_seq)
			continue;
		if (!harness_json_int(m->json, "start", &start) ||
		    !harness_json_int(m->json, "end", &end))
			fail_msg("telemetry seq %lld without start/end", (long long)seq);
		if (prev_end != 0 && start != prev_end)
			fail_msg("telemetry seq %lld starts at %lld, the one before ended at %lld: "
			    "a window is missing", (long long)seq, (long long)start,
			    (long long)prev_end);
		prev_seq = seq;
		prev_end = end;
	}
}

static bool
match_store_error(const struct harness_msg *m, const void *arg)
{
	const char *type = harness_json_str(m->json, "type");

	(void)arg;
	return type != NULL && strcmp(type, "store_error") == 0;
}

/* arg: bool *: a retained online status with (true) or without a store_error. */
static bool
match_status_store(const struct harness_msg *m, const void *arg)
{
	const char *state = harness_json_str(m->json, "state");

	return state != NULL && strcmp(state, "online") == 0 &&
	    (harness_json_str(m->json, "store_error") != NULL) == *(const bool *)arg;
}

static void
test_full_disk_keeps_windows_in_memory_and_stores_them_later(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	char why[1024], *cfg, *filler;
	size_t mark, n;
	long i, j;
	long long filled;
	int64_t before, after;

	if (!mounted)
		skip();		/* not root: no tmpfs of our own to fill */
	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	cfg = harness_write_config(h, "coldgate.cfg", cfg_text);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	if (harness_sub_wait_n(sub, 0, "telemetry", harness_match_sensor, "c1-air", 2,
	    HARNESS_TIMEOUT) < 2)
		fail_msg("no telemetry before the disk filled");

	filler = harness_path(h, "state/filler");
	filled = fill(filler);
	if (!harness_daemon_log_wait(h, "cannot be written", HARNESS_TIMEOUT))
		fail_msg("the disk is full (%lld bytes of filler) and the daemon did not say "
		    "the store cannot be written", filled);
	/* The status, outside the outbox, says so at once. */
	{
		bool with = true;

		if (harness_sub_wait(sub, 0, "status", match_status_store, &with,
		    HARNESS_TIMEOUT) < 0)
			fail_msg("no online status with store_error while the disk is full");
	}
	/* Several windows while full; nothing new can reach the broker meanwhile. */
	harness_sleep(3.0);
	/* A reload meanwhile must keep what waits in memory. */
	harness_daemon_signal(h, SIGHUP);
	if (!harness_daemon_log_wait(h, "reloaded:", HARNESS_TIMEOUT))
		fail_msg("no reload logged after SIGHUP");
	harness_sleep(2.0);
	before = harness_sub_max_seq(sub);
	if (!harness_daemon_running(h))
		fail_msg("coldgated stopped on a full disk");

	mark = harness_sub_count(sub);
	if (unlink(filler) == -1)
		fail_msg("unlink %s: %s", filler, strerror(errno));
	if (!harness_daemon_log_wait(h, "takes writes again", HARNESS_TIMEOUT))
		fail_msg("space came back and the store did not take writes again");
	i = harness_sub_wait(sub, 0, "event", match_store_error, NULL, HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("no store_error event");
	{
		bool with = false;

		if (harness_sub_wait(sub, mark, "status", match_status_store, &with,
		    HARNESS_TIMEOUT) < 0)
			fail_msg("the status still says store_error after the store took writes");
	}
	if (harness_sub_find(sub, (size_t)i + 1, "event", match_store_error, NULL) >= 0)
		fail_msg("more than one store_error event for one full disk");
	j = harness_sub_wait(sub, 0, ALARM_TOPIC, harness_match_state, "active",
	    HARNESS_TIMEOUT);
	if (j < 0)
		fail_msg("no active " ALARM_TOPIC);
	if (harness_sub_wait(sub, (size_t)j + 1, ALARM_TOPIC, harness_match_state, "cleared",
	    HARNESS_TIMEOUT) < 0)
		fail_msg(ALARM_TOPIC " did not clear once the store took writes");
	n = harness_sub_wait_n(sub, mark, "telemetry", harness_match_sensor, "c1-air", 8,
	    HARNESS_TIMEOUT);
	if (n < 8)
		fail_msg("%zu windows after the disk had room again; the ones kept in memory "
		    "and the new ones should be at least 8", n);
	after = harness_sub_max_seq(sub);
	if (after < before + 8)
		fail_msg("seq went from %lld to %lld only", (long long)before, (long long)after);

	assert_int_equal(harness_daemon_stop(h), 0);
	if (!harness_check_seqs(sub, 0, 1, why, sizeof(why)))
		fail_msg("seq across a full disk: %s", why);
	assert_windows_tile(sub);
	free(filler);
	free(cfg);
	harness_pass(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_full_disk_keeps_windows_in_memory_and_stores_them_later,
		    setup, teardown),
	};

	return cmocka_run_group_tests_name("integration: full disk", tests, NULL, NULL);
}
