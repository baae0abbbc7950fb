/*
 * A store that cannot be used is a runtime failure (SPEC §2: exit status 1)
 * with a message naming the path, and the daemon never writes to a store
 * file it does not understand (store.h: "never modified") - it may hold the
 * only copy of the readings a food-safety audit needs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/harness.h"

static const char cfg_text[] =
	HARNESS_CFG_HEAD
	"publish = { interval = 1; };\n"
	"zones = ( { id = \"cold-1\"; name = \"冷库 1\"; } );\n"
	"sensors = (\n"
	"  { id = \"c1-air\"; zone = \"cold-1\"; driver = \"sim\"; profile = \"cold-room\"; interval = 0.5; }\n"
	");\n";

/* Deterministic garbage: the same bytes on every run. */
static void
garbage(unsigned char *buf, size_t len, uint32_t seed)
{
	uint32_t x = seed;

	for (size_t i = 0; i < len; i++) {
		x = x * 1664525u + 1013904223u;
		buf[i] = (unsigned char)(x >> 24);
	}
}

/* Runs the daemon on a store holding bytes; it must exit 1, untouched. */
static void
expect_refused(struct harness *h, const unsigned char *bytes, size_t len, const char *what)
{
	char *cfg, *log, *after;
	size_t after_len;
	int rc;

	if (mkdir(h->state_dir, 0700) == -1 && errno != EEXIST)
		fail_msg("mkdir %s: %s", h->state_dir, strerror(errno));
	assert_int_equal(harness_write_bytes(h->store, bytes, len), 0);
	cfg = harness_write_config(h, "coldgate.cfg", cfg_text);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	rc = harness_daemon_wait(h, HARNESS_TIMEOUT);
	if (rc != 1)
		fail_msg("store of %s: coldgated exited %d, want 1", what, rc);

	log = harness_daemon_log(h);
	if (strstr(log, h->store) == NULL)
		fail_msg("store of %s: the daemon's stderr does not name %s", what, h->store);
	free(log);

	after = harness_read_file(h->store, &after_len);
	if (after == NULL)
		fail_msg("store of %s: %s is gone", what, h->store);
	if (after_len != len || memcmp(after, bytes, len) != 0)
		fail_msg("store of %s: the daemon changed %s (%zu bytes, was %zu)", what,
		    h->store, after_len, len);
	free(after);
	free(cfg);
}

static void
test_corrupt_store_exits_1_and_is_left_alone(void **state)
{
	struct harness *h = *state;
	static unsigned char bytes[64 * 1024];

	garbage(bytes, sizeof(bytes), 42);
	expect_refused(h, bytes, sizeof(bytes), "random bytes");
	harness_pass(h);
}

static void
test_store_with_sqlite_header_but_corrupt_exits_1_and_is_left_alone(void **state)
{
	struct harness *h = *state;
	static unsigned char bytes[64 * 1024];

	/* Looks like SQLite to a quick glance, but the rest is noise. */
	garbage(bytes, sizeof(bytes), 7);
	memcpy(bytes, "SQLite format 3", 16);
	expect_refused(h, bytes, sizeof(bytes), "an SQLite header and noise");
	harness_pass(h);
}

static void
test_state_dir_that_cannot_be_created_exits_1_naming_it(void **state)
{
	struct harness *h = *state;
	char *blocker, *dir, *tmpl, *cfg, *log;
	int rc;

	/* A regular file where a parent directory should be: not even root
	 * can make a directory under it. */
	blocker = harness_write_file(h, "blocker", "not a directory\n");
	dir = harness_replace("@/state", "@", blocker);
	tmpl = harness_replace(cfg_text, "@STATE_DIR@", dir);
	cfg = harness_write_config(h, "coldgate.cfg", tmpl);

	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	rc = harness_daemon_wait(h, HARNESS_TIMEOUT);
	if (rc != 1)
		fail_msg("state_dir under a regular file: coldgated exited %d, want 1", rc);
	log = harness_daemon_log(h);
	if (strstr(log, dir) == NULL)
		fail_msg("its stderr does not name the state_dir %s", dir);
	free(log);

	free(blocker);
	free(dir);
	free(tmpl);
	free(cfg);
	harness_pass(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_corrupt_store_exits_1_and_is_left_alone,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_with_sqlite_header_but_corrupt_exits_1_and_is_left_alone,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_state_dir_that_cannot_be_created_exits_1_naming_it,
		    harness_setup, harness_teardown),
	};

	return cmocka_run_group_tests_name("integration: store errors", tests, NULL, NULL);
}
