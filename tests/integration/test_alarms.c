/*
 * Alarms end to end (SPEC §4, §6) with the sim driver's script and a real
 * mosquitto: a cold room warms above 4 C -> nothing before `delay` ->
 * retained active -> ack over MQTT -> acked -> cools -> cleared; a bad ack
 * changes nothing and is answered on cmd/result; a restart mid-alarm
 * leaves exactly one active, and so does an upgrade from a store with the
 * old raw alarm records; coldgatectl acks through the control socket.
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

#include "lib/alarm_v1.h"
#include "lib/harness.h"

#define ALARM_ID	"c1-probe-temperature-high"
#define ALARM_TOPIC	"alarm/" ALARM_ID

/* The probe: 2 C, warms to 9 C between 2 s and 4 s, holds, cools at @COOL@ s. */
static const char cfg_text[] =
	HARNESS_CFG_HEAD
	"publish = { interval = 1; };\n"
	"zones = ( { id = \"cold-1\"; name = \"冷库 1\"; } );\n"
	"sensors = (\n"
	"  { id = \"c1-probe\"; zone = \"cold-1\"; driver = \"sim\"; quantity = \"temperature\";\n"
	"    script = ( (0, 2.0), (2, 2.0), (4, 9.0), (@COOL@, 9.0), (@COOL2@, 1.0) ); interval = 0.25; }\n"
	");\n"
	"alarms = (\n"
	"  { zone = \"cold-1\"; quantity = \"temperature\"; high = 4.0; hysteresis = 0.5; delay = 3; }\n"
	");\n";

static char *
config_with_cooling(struct harness *h, int cool)
{
	char a[16], b[16], *t1, *t2, *cfg;

	snprintf(a, sizeof(a), "%d", cool);
	snprintf(b, sizeof(b), "%d", cool + 2);
	t1 = harness_replace(cfg_text, "@COOL@", a);
	t2 = harness_replace(t1, "@COOL2@", b);
	cfg = harness_write_config(h, "coldgate.cfg", t2);
	free(t1);
	free(t2);
	return cfg;
}

static bool
is_ok_result(const struct harness_msg *m, const void *want_ok)
{
	json_object *ok = harness_json_get(m->json, "ok");

	return ok != NULL && json_object_get_boolean(ok) == *(const bool *)want_ok;
}

static size_t
count_state(struct harness_sub *sub, const char *state)
{
	size_t n = 0;

	for (long i = 0; (i = harness_sub_find(sub, (size_t)i, ALARM_TOPIC, harness_match_state,
	    state)) >= 0; i++)
		n++;
	return n;
}

static void
test_warm_cold_room_alarm_ack_and_clear(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	const struct harness_msg *m;
	int64_t since, ts, started;
	bool yes = true, no = false;
	char *cfg, why[1024];
	long i, r;
	size_t mark;

	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	cfg = config_with_cooling(h, 14);
	started = harness_wall_ms();
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);

	i = harness_sub_wait(sub, 0, ALARM_TOPIC, harness_match_state, "active", HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("no active alarm on " HARNESS_BASE ALARM_TOPIC);
	m = harness_sub_get(sub, (size_t)i);
	/* Above 4 C from about 2.6 s; with delay = 3 it may not fire before 5.6 s. */
	if (!harness_json_int(m->json, "since", &since) || !harness_json_int(m->json, "ts", &ts))
		fail_msg("alarm without since/ts: %s", m->payload);
	if (ts - since < 3000)
		fail_msg("fired %lld ms after the limit was crossed; delay is 3 s: %s",
		    (long long)(ts - since), m->payload);
	if (since < started)
		fail_msg("since before the daemon started: %s", m->payload);
	if (strcmp(harness_json_str(m->json, "zone"), "cold-1") != 0 ||
	    strcmp(harness_json_str(m->json, "sensor"), "c1-probe") != 0 ||
	    strcmp(harness_json_str(m->json, "rule"), "high") != 0)
		fail_msg("alarm payload: %s", m->payload);

	/* A retained message: a late subscriber sees the alarm. */
	{
		struct harness_sub *late = harness_sub_start(h, HARNESS_BASE ALARM_TOPIC, false);

		assert_non_null(late);
		if (harness_sub_wait(late, 0, ALARM_TOPIC, harness_match_state, "active",
		    HARNESS_TIMEOUT) < 0)
			fail_msg("the active alarm is not retained");
		harness_sub_stop(late);
	}

	/* Bad acks: each answered with ok:false, none changes the alarm. */
	mark = harness_sub_count(sub);
	harness_sub_publish(sub, HARNESS_BASE "cmd/ack", "{\"alarm\":\"no-such-alarm\"}");
	harness_sub_publish(sub, HARNESS_BASE "cmd/ack", "not json at all");
	harness_sub_publish(sub, HARNESS_BASE "cmd/ack", "{\"alarm\":\"" ALARM_ID "\",\"x\":1}");
	harness_sub_publish(sub, HARNESS_BASE "cmd/reboot", "{}");
	r = (long)mark;
	for (int k = 0; k < 4; k++) {
		r = harness_sub_wait(sub, (size_t)r, "cmd/result", is_ok_result, &no,
		    HARNESS_TIMEOUT);
		if (r < 0)
			fail_msg("bad command %d was not answered with ok:false on cmd/result", k);
		r++;
	}
	if (harness_sub_find(sub, mark, ALARM_TOPIC, harness_match_state, "acked") >= 0)
		fail_msg("a bad ack changed the alarm");
	if (!harness_daemon_running(h))
		fail_msg("a bad command stopped the daemon");

	/* The real ack. */
	harness_sub_publish(sub, HARNESS_BASE "cmd/ack",
	    "{\"alarm\":\"" ALARM_ID "\",\"by\":\"王师傅\"}");
	if (harness_sub_wait(sub, mark, "cmd/result", is_ok_result, &yes, HARNESS_TIMEOUT) < 0)
		fail_msg("the ack was not answered with ok:true");
	i = harness_sub_wait(sub, mark, ALARM_TOPIC, harness_match_state, "acked", HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("no acked state after the ack");
	m = harness_sub_get(sub, (size_t)i);
	if (harness_json_str(m->json, "by") == NULL ||
	    strcmp(harness_json_str(m->json, "by"), "王师傅") != 0)
		fail_msg("acked without who: %s", m->payload);

	/* The room cools: cleared. */
	if (harness_sub_wait(sub, (size_t)i, ALARM_TOPIC, harness_match_state, "cleared",
	    HARNESS_TIMEOUT) < 0)
		fail_msg("the alarm did not clear when the room cooled");
	if (count_state(sub, "active") != 1)
		fail_msg("the alarm went active %zu times", count_state(sub, "active"));
	if (!harness_check_seqs(sub, 0, 1, why, sizeof(why)))
		fail_msg("seq: %s", why);

	assert_int_equal(harness_daemon_stop(h), 0);
	free(cfg);
	harness_pass(h);
}

/*
 * One transition only: a message in flight at a kill may come again (the
 * same seq), but no second "active" and no "cleared".
 */
static void
assert_raised_once(struct harness_sub *sub)
{
	int64_t first = -1, seq;
	size_t n = harness_sub_count(sub);

	for (size_t k = 0; k < n; k++) {
		const struct harness_msg *m = harness_sub_get(sub, k);

		if (strcmp(m->topic, HARNESS_BASE ALARM_TOPIC) != 0)
			continue;
		if (!harness_match_state(m, "active"))
			fail_msg("after the restart: %s", m->payload);
		if (!harness_json_int(m->json, "seq", &seq))
			fail_msg("alarm without seq: %s", m->payload);
		if (first < 0)
			first = seq;
		else if (seq != first)
			fail_msg("the restart raised the alarm again (seq %lld after %lld)",
			    (long long)seq, (long long)first);
	}
}

/*
 * The probe warm from the start and for the whole test, before and after a
 * restart: the alarm goes active, then the daemon is killed.  Returns the
 * configuration's path (free it).
 */
static char *
raise_then_crash(struct harness *h, struct harness_sub *sub)
{
	char *t, *cfg;

	t = harness_replace(cfg_text, "(0, 2.0), (2, 2.0), (4, 9.0), (@COOL@, 9.0), (@COOL2@, 1.0)",
	    "(0, 9.0), (3600, 9.0)");
	cfg = harness_write_config(h, "coldgate.cfg", t);
	free(t);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	if (harness_sub_wait(sub, 0, ALARM_TOPIC, harness_match_state, "active",
	    HARNESS_TIMEOUT) < 0)
		fail_msg("no active alarm");
	harness_daemon_signal(h, SIGKILL);
	harness_daemon_wait(h, HARNESS_TIMEOUT);
	return cfg;
}

/*
 * Start again and run well past the 3 s delay (on the telemetry clock):
 * still raised once.  Returns the count of messages before the start.
 */
static size_t
restart_still_raised(struct harness *h, struct harness_sub *sub, const char *cfg)
{
	size_t mark = harness_sub_count(sub);

	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	if (harness_sub_wait_n(sub, mark, "telemetry", NULL, NULL, 10, HARNESS_TIMEOUT) < 10)
		fail_msg("no telemetry after the restart");
	assert_raised_once(sub);
	return mark;
}

static void
test_restart_mid_alarm_keeps_exactly_one_active(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	char *cfg, *out, *err;
	size_t mark;
	int rc;

	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	cfg = raise_then_crash(h, sub);
	/* A restart: the probe is still warm, well past its delay again. */
	mark = restart_still_raised(h, sub, cfg);

	/* Still active for the operator, and coldgatectl can ack it through the socket. */
	{
		const char *list[] = { h->coldgatectl, "-c", cfg, "alarms", NULL };
		const char *ack[] = { h->coldgatectl, "-c", cfg, "ack", ALARM_ID, "--by", "li", NULL };

		rc = harness_run(h, list, &out, &err, HARNESS_TIMEOUT);
		if (rc != 0 || strstr(out, "active") == NULL || strstr(out, ALARM_ID) == NULL ||
		    strstr(out, "冷库 1") == NULL)
			fail_msg("coldgatectl alarms (%d):\n%s%s", rc, out, err);
		free(out);
		free(err);
		rc = harness_run(h, ack, &out, &err, HARNESS_TIMEOUT);
		if (rc != 0)
			fail_msg("coldgatectl ack exited %d:\n%s%s", rc, out, err);
		free(out);
		free(err);
		if (harness_sub_wait(sub, mark, ALARM_TOPIC, harness_match_state, "acked",
		    HARNESS_TIMEOUT) < 0)
			fail_msg("coldgatectl ack did not reach MQTT");
		rc = harness_run(h, ack, &out, &err, HARNESS_TIMEOUT);
		if (rc != 1 || strstr(err, "already acknowledged") == NULL)
			fail_msg("a second coldgatectl ack exited %d:\n%s%s", rc, out, err);
		free(out);
		free(err);
	}
	assert_int_equal(harness_daemon_stop(h), 0);
	free(cfg);
	harness_pass(h);
}

/*
 * A zone's profile gives its rules (both tiers, the critical one with an
 * id of its own), and a fault rule follows the sim's failing window.
 */
/*
 * A gateway upgraded in place mid-alarm: the old coldgate left the active
 * alarm in a schema 2 store as a raw struct.  The new one migrates the
 * record and carries the alarm on, neither forgetting nor raising it again.
 */
static void
test_upgrade_from_raw_alarm_records_keeps_the_alarm(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	const char *list[] = { h->coldgatectl, "-c", NULL, "alarms", NULL };
	char *cfg, *out, *err;
	int rc;

	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	cfg = raise_then_crash(h, sub);
	assert_int_equal(alarm_v1_downgrade_store(h->store), 0);
	restart_still_raised(h, sub, cfg);
	if (!harness_daemon_log_wait(h, "migrated to schema version 3", HARNESS_TIMEOUT))
		fail_msg("the schema 2 store was not migrated");
	list[2] = cfg;
	rc = harness_run(h, list, &out, &err, HARNESS_TIMEOUT);
	if (rc != 0 || strstr(out, "active") == NULL || strstr(out, ALARM_ID) == NULL ||
	    strstr(err, "stored record") != NULL)
		fail_msg("coldgatectl alarms (%d):\n%s%s", rc, out, err);
	free(out);
	free(err);
	assert_int_equal(harness_daemon_stop(h), 0);
	free(cfg);
	harness_pass(h);
}

static void
test_profile_tiers_and_fault_alarm(void **state)
{
	static const char text[] =
		HARNESS_CFG_HEAD
		"publish = { interval = 1; };\n"
		"zones = ( { id = \"cold-1\"; name = \"冷库 1\"; profile = \"fast-chilled\"; } );\n"
		"sensors = (\n"
		"  { id = \"c1-probe\"; zone = \"cold-1\"; driver = \"sim\"; quantity = \"temperature\";\n"
		"    script = ( (0, 9.5), (3600, 9.5) ); fail = ( (4, 7) ); interval = 0.25; }\n"
		");\n"
		"alarms = (\n"
		"  { sensor = \"c1-probe\"; type = \"fault\"; fault_count = 2; severity = \"critical\"; }\n"
		");\n";
	struct harness *h = *state;
	struct harness_sub *sub;
	char *t, *cfg, dir[1024];
	const struct harness_msg *m;
	long i;

	snprintf(dir, sizeof(dir), "%s/tests/fixtures/profiles", getenv("COLDGATE_TOP"));
	{
		char line[1200];

		snprintf(line, sizeof(line), "  state_dir = \"@STATE_DIR@\"; profiles_dir = \"%s\";\n",
		    dir);
		t = harness_replace(text, "  state_dir = \"@STATE_DIR@\";\n", line);
	}
	cfg = harness_write_config(h, "coldgate.cfg", t);
	free(t);
	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);

	if (harness_sub_wait(sub, 0, "alarm/c1-probe-temperature-high", harness_match_state, "active",
	    HARNESS_TIMEOUT) < 0)
		fail_msg("the profile's warning tier did not fire");
	i = harness_sub_wait(sub, 0, "alarm/c1-probe-temperature-high-critical", harness_match_state,
	    "active", HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("the profile's critical tier did not fire");
	m = harness_sub_get(sub, (size_t)i);
	if (strcmp(harness_json_str(m->json, "severity"), "critical") != 0)
		fail_msg("critical tier: %s", m->payload);
	i = harness_sub_wait(sub, 0, "alarm/c1-probe-fault", harness_match_state, "active",
	    HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("no fault alarm while the sensor failed");
	if (harness_sub_wait(sub, (size_t)i, "alarm/c1-probe-fault", harness_match_state, "cleared",
	    HARNESS_TIMEOUT) < 0)
		fail_msg("the fault alarm did not clear when the sensor answered again");
	assert_int_equal(harness_daemon_stop(h), 0);
	free(cfg);
	harness_pass(h);
}

static bool
is_full_summary(const struct harness_msg *m, const void *arg)
{
	json_object *q = harness_json_get(m->json, "quantities");
	const char *type = harness_json_str(m->json, "type");
	double covered;

	(void)arg;
	if (type == NULL || strcmp(type, "summary") != 0 || q == NULL ||
	    json_object_array_length(q) != 1)
		return false;
	/* A whole period: both sensors had readings from its start to its end. */
	return harness_json_num(json_object_array_get_idx(q, 0), "covered_s", &covered) &&
	    covered == 2.0;
}

/*
 * The per-zone summary (here every 2 s instead of every day): two sensors
 * at 20 and 30 C for equal time give the time-weighted mean 25 C and the
 * mean kinetic temperature 26.2599 C (dH/R = 10000 K: -ln of the mean of
 * exp(-10000/293.15) and exp(-10000/303.15) is 33.39903; 10000/33.39903
 * = 299.40989 K), and the 30 C sensor is out of the zone's 25 C limit the
 * whole time.
 */
static void
test_zone_summary_has_mean_kinetic_temperature(void **state)
{
	static const char text[] =
		HARNESS_CFG_HEAD
		"publish = { interval = 60; summary_period = 2; };\n"
		"zones = ( { id = \"house-1\"; name = \"香菇出菇房 1\"; } );\n"
		"sensors = (\n"
		"  { id = \"a\"; zone = \"house-1\"; driver = \"sim\"; quantity = \"temperature\";\n"
		"    script = ( (0, 20.0), (3600, 20.0) ); interval = 0.2; },\n"
		"  { id = \"b\"; zone = \"house-1\"; driver = \"sim\"; quantity = \"temperature\";\n"
		"    script = ( (0, 30.0), (3600, 30.0) ); interval = 0.2; }\n"
		");\n"
		"alarms = ( { zone = \"house-1\"; quantity = \"temperature\"; high = 25.0; delay = 3600; } );\n";
	struct harness *h = *state;
	struct harness_sub *sub;
	const struct harness_msg *m;
	json_object *q;
	double mkt, mean, out, covered;
	char *cfg;
	long i;

	cfg = harness_write_config(h, "coldgate.cfg", text);
	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	i = harness_sub_wait(sub, 0, "event", is_full_summary, NULL, HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("no summary of a whole period");
	m = harness_sub_get(sub, (size_t)i);
	q = json_object_array_get_idx(harness_json_get(m->json, "quantities"), 0);
	if (strcmp(harness_json_str(m->json, "zone_name"), "香菇出菇房 1") != 0 ||
	    !harness_json_num(q, "mkt", &mkt) || !harness_json_num(q, "mean", &mean) ||
	    !harness_json_num(q, "out_of_range_s", &out) ||
	    !harness_json_num(q, "covered_s", &covered))
		fail_msg("summary payload: %s", m->payload);
	/* The payload rounds to 3 decimals; sampling edges may move the mean a little. */
	if (mean < 24.9 || mean > 25.1 || mkt < 26.15 || mkt > 26.37 || mkt <= mean)
		fail_msg("mean %g (want 25) and MKT %g (want 26.26): %s", mean, mkt, m->payload);
	if (out != covered)
		fail_msg("out of range %g s of %g s covered; sensor b was above 25 C throughout",
		    out, covered);
	assert_int_equal(harness_daemon_stop(h), 0);
	{
		const char *list[] = { h->coldgatectl, "-c", cfg, "audit", NULL };
		char *o, *e;

		if (harness_run(h, list, &o, &e, HARNESS_TIMEOUT) != 0 || strstr(o, " summary ") == NULL)
			fail_msg("no summary row in the audit trail:\n%s%s", o, e);
		free(o);
		free(e);
	}
	free(cfg);
	harness_pass(h);
}

static bool
is_summary_from(const struct harness_msg *m, const void *start)
{
	const char *type = harness_json_str(m->json, "type");
	int64_t s;

	return type != NULL && strcmp(type, "summary") == 0 &&
	    harness_json_int(m->json, "start", &s) &&
	    (start == NULL || s == *(const int64_t *)start);
}

/*
 * A restart in the middle of a summary period does not cut the period's
 * record short: the summary of the period that spans the restart counts
 * exactly the good readings the store holds for it, those taken before
 * the restart included (rebuilt from the store at start).
 */
static void
test_summary_spanning_a_restart_counts_every_reading(void **state)
{
	static const char text[] =
		HARNESS_CFG_HEAD
		"publish = { interval = 60; summary_period = 20; };\n"
		"zones = ( { id = \"house-1\"; } );\n"
		"sensors = (\n"
		"  { id = \"a\"; zone = \"house-1\"; driver = \"sim\"; quantity = \"temperature\";\n"
		"    script = ( (0, 5.0), (3600, 5.0) ); interval = 0.5; }\n"
		");\n";
	struct harness *h = *state;
	struct harness_sub *sub;
	json_object *q;
	char *cfg, *out = NULL, *err = NULL, since[32], until[32];
	int64_t start, end, n, rows = 0;
	long i;

	cfg = harness_write_config(h, "coldgate.cfg", text);
	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	/* The first (partial) period ends: the next one starts there. */
	i = harness_sub_wait(sub, 0, "event", is_summary_from, NULL, HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("no summary event");
	assert_true(harness_json_int(harness_sub_get(sub, (size_t)i)->json, "end", &start));
	end = start + 20000;
	/* Restart 8 s into that period. */
	while (harness_wall_ms() < start + 8000)
		harness_sleep(0.1);
	assert_int_equal(harness_daemon_stop(h), 0);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	i = harness_sub_wait(sub, (size_t)i + 1, "event", is_summary_from, &start, HARNESS_TIMEOUT);
	if (i < 0)
		fail_msg("no summary of the period spanning the restart");
	q = json_object_array_get_idx(harness_json_get(harness_sub_get(sub, (size_t)i)->json,
	    "quantities"), 0);
	if (!harness_json_int(q, "n", &n))
		fail_msg("summary without n: %s", harness_sub_get(sub, (size_t)i)->payload);
	assert_int_equal(harness_daemon_stop(h), 0);

	snprintf(since, sizeof(since), "%lld", (long long)(start / 1000));
	snprintf(until, sizeof(until), "%lld", (long long)(end / 1000));
	{
		const char *argv[] = { h->coldgatectl, "-c", cfg, "readings", "--sensor", "a",
		    "--since", since, "--until", until, "--format", "csv", NULL };

		if (harness_run(h, argv, &out, &err, HARNESS_TIMEOUT) != 0)
			fail_msg("coldgatectl readings: %s", err);
	}
	for (char *l = strtok(out, "\n"); l != NULL; l = strtok(NULL, "\n")) {
		long long ts;

		/* Rows in [start, end): the same half-open period the summary covers. */
		if (sscanf(l, "%lld,", &ts) == 1 && ts >= start && ts < end &&
		    strstr(l, ",ok") != NULL)
			rows++;
	}
	if (n != rows || rows < 30)
		fail_msg("the summary of the period across the restart counts %lld readings; the "
		    "store holds %lld for it", (long long)n, (long long)rows);
	free(out);
	free(err);
	free(cfg);
	harness_pass(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_warm_cold_room_alarm_ack_and_clear,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_restart_mid_alarm_keeps_exactly_one_active,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_from_raw_alarm_records_keeps_the_alarm,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_profile_tiers_and_fault_alarm,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_zone_summary_has_mean_kinetic_temperature,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_summary_spanning_a_restart_counts_every_reading,
		    harness_setup, harness_teardown),
	};

	return cmocka_run_group_tests_name("integration: alarms", tests, NULL, NULL);
}
