/*
 * Configuration as a value (SPEC §2, §3): SIGHUP with a broken file keeps the
 * old configuration running and names file:line; SIGHUP with a good changed
 * file takes effect; --check-config exits 2 naming file:line (0 for a good
 * file); starting with a broken file exits 2 having started nothing.
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

#define PUBLISH	"publish = { interval = 1; };\n"
#define ZONES	"zones = ( { id = \"house-1\"; name = \"香菇出菇房 1\"; } );\n"
#define SENSOR_A \
	"  { id = \"h1-air\"; zone = \"house-1\"; driver = \"sim\"; profile = \"mushroom-house\"; interval = 0.5; }"
#define SENSOR_B \
	"  { id = \"h1-new\"; zone = \"house-1\"; driver = \"sim\"; quantity = \"humidity\";\n" \
	"    script = ( (0, 90.0), (3600, 90.0) ); interval = 0.5; }"

static const char cfg_a[] =
	HARNESS_CFG_HEAD PUBLISH ZONES "sensors = (\n" SENSOR_A "\n);\n";
static const char cfg_ab[] =
	HARNESS_CFG_HEAD PUBLISH ZONES "sensors = (\n" SENSOR_A ",\n" SENSOR_B "\n);\n";
/* The new sensor and an unknown key: none of it may take effect. */
static const char cfg_ab_bad[] =
	HARNESS_CFG_HEAD PUBLISH ZONES "sensors = (\n" SENSOR_A ",\n" SENSOR_B "\n);\n"
	"bogus_key = 1;\n";

/* Replace the file at path atomically, as an editor or config tool would. */
static void
replace_config(struct harness *h, const char *path, const char *text)
{
	char *tmp = harness_write_config(h, "replacement.cfg", text);

	if (rename(tmp, path) == -1)
		fail_msg("rename %s -> %s failed", tmp, path);
	free(tmp);
}

/* "NAME:LINE" for the file name and the line of needle in text. */
static void
where(char *buf, size_t len, const char *name, const char *text, const char *needle)
{
	int line = harness_line_of(text, needle);

	assert_true(line > 0);
	snprintf(buf, len, "%s:%d", name, line);
}

static void
test_sighup_with_bad_config_keeps_old_one_running(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	char at[128], *cfg, *log;
	size_t mark;

	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	cfg = harness_write_config(h, "coldgate.cfg", cfg_a);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	if (harness_sub_wait(sub, 0, "telemetry", harness_match_sensor, "h1-air",
	    HARNESS_TIMEOUT) < 0)
		fail_msg("no telemetry of h1-air");

	replace_config(h, cfg, cfg_ab_bad);
	harness_daemon_signal(h, SIGHUP);
	where(at, sizeof(at), "coldgate.cfg", cfg_ab_bad, "bogus_key");
	if (!harness_daemon_log_wait(h, at, HARNESS_TIMEOUT))
		fail_msg("after SIGHUP with a bad file the log does not name %s", at);
	log = harness_daemon_log(h);
	if (strstr(log, "bogus_key") == NULL)
		fail_msg("the log names the line but not the key bogus_key");
	free(log);

	/* Still running, still publishing, with the old sensors only. */
	mark = harness_sub_count(sub);
	if (harness_sub_wait_n(sub, mark, "telemetry", harness_match_sensor, "h1-air", 3,
	    HARNESS_TIMEOUT) < 3)
		fail_msg("fewer than 3 windows of h1-air after the bad SIGHUP");
	if (harness_sub_find(sub, 0, "telemetry", harness_match_sensor, "h1-new") >= 0)
		fail_msg("h1-new, only in the rejected file, is being published");
	if (!harness_daemon_running(h))
		fail_msg("coldgated exited after SIGHUP with a bad file");

	assert_int_equal(harness_daemon_stop(h), 0);
	free(cfg);
	harness_pass(h);
}

static void
test_sighup_with_good_config_adds_sensor(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	const struct harness_msg *m;
	char why[1024], *cfg;
	size_t mark;
	long i;

	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	cfg = harness_write_config(h, "coldgate.cfg", cfg_a);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	if (harness_sub_wait_n(sub, 0, "telemetry", harness_match_sensor, "h1-air", 2,
	    HARNESS_TIMEOUT) < 2)
		fail_msg("no telemetry of h1-air");
	if (harness_sub_find(sub, 0, "telemetry", harness_match_sensor, "h1-new") >= 0)
		fail_msg("h1-new published before it was configured");

	replace_config(h, cfg, cfg_ab);
	mark = harness_sub_count(sub);
	harness_daemon_signal(h, SIGHUP);

	/* The new sensor shows up, next to the old one. */
	i = harness_sub_wait(sub, mark, "telemetry", harness_match_sensor, "h1-new",
	    HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("no telemetry of h1-new after SIGHUP with it added");
	if (harness_sub_wait(sub, (size_t)i + 1, "telemetry", harness_match_sensor, "h1-new",
	    HARNESS_TIMEOUT) < 0)
		fail_msg("h1-new appeared only once");
	i = harness_sub_find(sub, (size_t)i + 1, "telemetry", harness_match_sensor, "h1-new");
	m = harness_sub_get(sub, (size_t)i);
	if (!harness_match_sensor(m, "h1-air"))
		fail_msg("h1-air is gone after adding h1-new: %s", m->payload);
	{
		json_object *r = harness_json_get(m->json, "readings");

		for (size_t k = 0; k < json_object_array_length(r); k++) {
			json_object *rd = json_object_array_get_idx(r, k);
			const char *unit = harness_json_str(rd, "unit");
			double min, max;

			if (strcmp(harness_json_str(rd, "sensor"), "h1-new") != 0)
				continue;
			if (!harness_json_num(rd, "min", &min) || !harness_json_num(rd, "max", &max) ||
			    min != 90.0 || max != 90.0 || unit == NULL || strcmp(unit, "%RH") != 0)
				fail_msg("h1-new should read 90 %%RH (its script): %s", m->payload);
		}
	}

	/* A reload neither loses nor renumbers messages. */
	if (!harness_check_seqs(sub, 0, 1, why, sizeof(why)))
		fail_msg("seq across SIGHUP: %s", why);

	assert_int_equal(harness_daemon_stop(h), 0);

	/* The audit trail holds start, reload (with the new file's hash) and stop, chained. */
	{
		const char *list[] = { h->coldgatectl, "-c", cfg, "audit", NULL };
		const char *verify[] = { h->coldgatectl, "-c", cfg, "audit", "verify", NULL };
		char *out, *err, *p;
		int rc = harness_run(h, list, &out, &err, HARNESS_TIMEOUT);

		if (rc != 0)
			fail_msg("coldgatectl audit exited %d:\n%s%s", rc, out, err);
		if ((p = strstr(out, " start ")) == NULL || (p = strstr(p, " reload ")) == NULL ||
		    strstr(p, "\"sha256\":\"") == NULL || strstr(p, " stop ") == NULL)
			fail_msg("audit trail lacks start, reload with sha256, stop:\n%s", out);
		free(out);
		free(err);
		rc = harness_run(h, verify, &out, &err, HARNESS_TIMEOUT);
		if (rc != 0 || strstr(out, "chain intact") == NULL)
			fail_msg("coldgatectl audit verify exited %d:\n%s%s", rc, out, err);
		free(out);
		free(err);
	}
	free(cfg);
	harness_pass(h);
}

/* Messages with a seq up to max that an earlier message already had. */
static size_t
count_repeats(struct harness_sub *sub, int64_t max)
{
	size_t n = harness_sub_count(sub), repeats = 0;

	for (size_t i = 0; i < n; i++) {
		const struct harness_msg *m = harness_sub_get(sub, i);

		if (m->seq < 0 || m->seq > max)
			continue;
		for (size_t j = 0; j < i; j++)
			if (harness_sub_get(sub, j)->seq == m->seq) {
				repeats++;
				break;
			}
	}
	return repeats;
}

/* How many times the daemon's log says it connected. */
static int
count_connects(const struct harness *h)
{
	char *log = harness_daemon_log(h), *p = log;
	int n = 0;

	while ((p = strstr(p, "mqtt: connected to")) != NULL) {
		n++;
		p++;
	}
	free(log);
	return n;
}

/*
 * SIGHUP while messages wait for their PUBACK (the broker is stopped, so
 * none comes): once the broker answers, those PUBACKs must still be matched
 * on the same connection, delivery must go on without a reconnect, and no
 * message may arrive twice, not even after a restart (which resends what
 * was never marked delivered).  Run with a window of 1 (every reload finds
 * it full) and of 20 (a reload during a drain).
 */
static void
reload_with_messages_in_flight(struct harness *h, int max_inflight)
{
	struct harness_sub *sub;
	char why[1024], line[64], *tmpl, *cfg;
	int64_t seq;
	size_t mark;

	snprintf(line, sizeof(line), "  keepalive = 10;\n  max_inflight = %d;\n", max_inflight);
	tmpl = harness_replace(cfg_a, "  keepalive = 10;\n", line);
	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	cfg = harness_write_config(h, "coldgate.cfg", tmpl);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	if (harness_sub_wait_n(sub, 0, "telemetry", harness_match_sensor, "h1-air", 2,
	    HARNESS_TIMEOUT) < 2)
		fail_msg("no telemetry of h1-air");

	/* The broker stops answering; the daemon sends and waits for PUBACKs. */
	assert_int_equal(kill(h->broker.pid, SIGSTOP), 0);
	harness_sleep(3.5);
	harness_daemon_signal(h, SIGHUP);
	if (!harness_daemon_log_wait(h, "reloaded:", HARNESS_TIMEOUT))
		fail_msg("no \"reloaded\" in the log after SIGHUP");
	harness_sleep(0.5);
	assert_int_equal(kill(h->broker.pid, SIGCONT), 0);

	/* Delivery goes on: the windows made while the broker was stopped, then new ones. */
	seq = harness_sub_max_seq(sub) + 8;
	mark = harness_sub_count(sub);
	if (harness_sub_wait(sub, mark, "telemetry", harness_match_seq_above, &seq,
	    HARNESS_TIMEOUT) < 0)
		fail_msg("delivery stalled after a reload with messages in flight "
		    "(max_inflight %d): nothing above seq %lld", max_inflight, (long long)seq);
	if (count_connects(h) != 1)
		fail_msg("delivery went on only after a reconnect (%d connects)", count_connects(h));
	if (!harness_check_seqs(sub, 0, 1, why, sizeof(why)))
		fail_msg("seq across the reload: %s", why);
	if (count_repeats(sub, INT64_MAX) != 0)
		fail_msg("%zu messages arrived twice across the reload",
		    count_repeats(sub, INT64_MAX));

	/* Everything up to here was acknowledged: a restart must not send it again. */
	seq = harness_sub_max_seq(sub);
	assert_int_equal(harness_daemon_stop(h), 0);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	{
		int64_t later = seq + 3;

		if (harness_sub_wait(sub, 0, "telemetry", harness_match_seq_above, &later,
		    HARNESS_TIMEOUT) < 0)
			fail_msg("no telemetry after the restart");
	}
	if (count_repeats(sub, seq) != 0)
		fail_msg("%zu messages acknowledged before the restart were sent again: their "
		    "PUBACKs after the reload were never recorded", count_repeats(sub, seq));
	if (!harness_check_seqs(sub, 0, 1, why, sizeof(why)))
		fail_msg("seq across the restart: %s", why);
	assert_int_equal(harness_daemon_stop(h), 0);
	free(tmpl);
	free(cfg);
	harness_pass(h);
}

static void
test_sighup_with_window_of_one_in_flight_keeps_delivering(void **state)
{
	reload_with_messages_in_flight(*state, 1);
}

static void
test_sighup_during_drain_keeps_delivering_without_repeats(void **state)
{
	reload_with_messages_in_flight(*state, 20);
}

static void
expect_check_config(struct harness *h, const char *name, const char *text,
    const char *needle, int want_rc)
{
	char *path = harness_write_config(h, name, text), *out, *err;
	const char *argv[] = { h->coldgated, "--check-config", "-c", path, NULL };
	int rc = harness_run(h, argv, &out, &err, HARNESS_TIMEOUT);

	if (rc != want_rc)
		fail_msg("coldgated --check-config %s exited %d, want %d:\n%s%s", name, rc,
		    want_rc, out, err);
	if (needle != NULL) {
		int line = harness_line_of(text, needle);
		char at[128];

		assert_true(line > 0);
		snprintf(at, sizeof(at), "%s:%d", name, line);
		if (strstr(out, at) == NULL && strstr(err, at) == NULL)
			fail_msg("coldgated --check-config does not name %s:\n%s%s", at, out, err);
	}
	free(out);
	free(err);
	free(path);
}

static void
test_check_config_names_file_and_line(void **state)
{
	struct harness *h = *state;
	char *missing;

	expect_check_config(h, "good.cfg", cfg_ab, NULL, 0);
	expect_check_config(h, "unknown-key.cfg", cfg_ab_bad, "bogus_key", 2);
	expect_check_config(h, "missing-zone.cfg",
	    HARNESS_CFG_HEAD PUBLISH ZONES "sensors = (\n" SENSOR_A ",\n"
	    "  { id = \"x1\"; zone = \"house-9\"; driver = \"sim\"; profile = \"cold-room\"; }\n"
	    ");\n", "house-9", 2);
	expect_check_config(h, "wrong-type.cfg",
	    HARNESS_CFG_HEAD "publish = { interval = \"often\"; };\n" ZONES
	    "sensors = (\n" SENSOR_A "\n);\n", "often", 2);
	expect_check_config(h, "out-of-range.cfg",
	    HARNESS_CFG_HEAD "publish = { interval = 0; };\n" ZONES
	    "sensors = (\n" SENSOR_A "\n);\n", "interval = 0", 2);
	expect_check_config(h, "syntax.cfg",
	    HARNESS_CFG_HEAD PUBLISH ZONES "sensors = (\n" SENSOR_A "\n;\n", NULL, 2);

	/* Checking starts nothing: no store appears. */
	if (harness_exists(h->store) || harness_exists(h->state_dir))
		fail_msg("--check-config created %s", h->state_dir);

	/* A file that is not there is a configuration error too. */
	missing = harness_path(h, "no-such.cfg");
	{
		const char *argv[] = { h->coldgated, "--check-config", "-c", missing, NULL };
		char *out, *err;
		int rc = harness_run(h, argv, &out, &err, HARNESS_TIMEOUT);

		if (rc != 2)
			fail_msg("--check-config of a missing file exited %d, want 2", rc);
		if (strstr(out, "no-such.cfg") == NULL && strstr(err, "no-such.cfg") == NULL)
			fail_msg("--check-config of a missing file does not name it:\n%s%s", out, err);
		free(out);
		free(err);
	}
	free(missing);
	harness_pass(h);
}

static void
test_bad_config_at_start_exits_2_and_publishes_nothing(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	char at[128], *cfg, *log;
	int rc;

	sub = harness_sub_start(h, "#", false);
	assert_non_null(sub);
	cfg = harness_write_config(h, "bad.cfg", cfg_ab_bad);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	rc = harness_daemon_wait(h, HARNESS_TIMEOUT);
	if (rc != 2)
		fail_msg("coldgated with a bad config exited %d, want 2", rc);

	where(at, sizeof(at), "bad.cfg", cfg_ab_bad, "bogus_key");
	log = harness_daemon_log(h);
	if (strstr(log, at) == NULL)
		fail_msg("its stderr does not name %s", at);
	free(log);

	/* Give anything it might have sent time to come through. */
	harness_sleep(1.0);
	if (harness_sub_count(sub) != 0)
		fail_msg("coldgated with a bad config published %zu messages, first on %s",
		    harness_sub_count(sub), harness_sub_get(sub, 0)->topic);
	if (harness_exists(h->store))
		fail_msg("coldgated with a bad config created its store %s", h->store);

	free(cfg);
	harness_pass(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sighup_with_bad_config_keeps_old_one_running,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_sighup_with_good_config_adds_sensor,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_sighup_with_window_of_one_in_flight_keeps_delivering,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_sighup_during_drain_keeps_delivering_without_repeats,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_check_config_names_file_and_line,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_bad_config_at_start_exits_2_and_publishes_nothing,
		    harness_setup, harness_teardown),
	};

	return cmocka_run_group_tests_name("integration: configuration and reload", tests,
	    NULL, NULL);
}
