/*
 * One daemon per state directory (issue "Nothing lost, ever", 4): a second
 * coldgated started on the same state_dir exits 1 naming the running one's
 * pid and leaves it undisturbed (no duplicate seqs, its control socket
 * still there); no exit removes a control socket it did not create; and
 * coldgatectl status says whether coldgated is running (exit 3 when not).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/harness.h"

static const char cfg_text[] =
	HARNESS_CFG_HEAD
	"publish = { interval = 1; };\n"
	"zones = ( { id = \"cold-1\"; name = \"冷库 1\"; } );\n"
	"sensors = (\n"
	"  { id = \"c1-air\"; zone = \"cold-1\"; driver = \"sim\"; profile = \"cold-room\"; interval = 0.5; }\n"
	");\n";

/* coldgatectl -c cfg status [--json]: its exit code, stdout into *out. */
static int
ctl_status(struct harness *h, const char *cfg, bool json, char **out)
{
	const char *argv[] = { h->coldgatectl, "-c", cfg, "status", json ? "--json" : NULL, NULL };
	char *err;
	int rc = harness_run(h, argv, out, &err, HARNESS_TIMEOUT);

	free(err);
	return rc;
}

static void
test_second_daemon_exits_1_naming_the_first(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	char why[1024], pid[64], *cfg, *out, *err, *sock;
	int64_t seq;
	int rc;

	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	cfg = harness_write_config(h, "coldgate.cfg", cfg_text);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	if (harness_sub_wait_n(sub, 0, "telemetry", harness_match_sensor, "c1-air", 2,
	    HARNESS_TIMEOUT) < 2)
		fail_msg("no telemetry from the first daemon");

	/* The same configuration again: it must refuse, not run beside the first. */
	{
		const char *args[] = { h->coldgated, "-f", "-c", cfg, NULL };

		rc = harness_run(h, args, &out, &err, HARNESS_TIMEOUT);
	}
	if (rc != 1)
		fail_msg("a second coldgated on the same state_dir exited %d, want 1:\n%s%s", rc,
		    out ? out : "", err ? err : "");
	snprintf(pid, sizeof(pid), "pid %ld", (long)h->daemon.pid);
	if (strstr(err, pid) == NULL || strstr(err, h->state_dir) == NULL)
		fail_msg("the second coldgated's message names neither \"%s\" nor %s:\n%s", pid,
		    h->state_dir, err);
	free(out);
	free(err);

	/* The first one is undisturbed: running, its socket there, numbering on. */
	if (!harness_daemon_running(h))
		fail_msg("the first coldgated stopped");
	sock = harness_replace("@/control.sock", "@", h->state_dir);
	if (!harness_exists(sock))
		fail_msg("the second coldgated's exit removed the first one's %s", sock);
	seq = harness_sub_max_seq(sub) + 2;
	if (harness_sub_wait(sub, 0, "telemetry", harness_match_seq_above, &seq,
	    HARNESS_TIMEOUT) < 0)
		fail_msg("the first coldgated stopped publishing");
	if (!harness_check_seqs(sub, 0, 1, why, sizeof(why)))
		fail_msg("seq with a second daemon tried: %s", why);

	/* status names the running daemon, then says it is gone (exit 3). */
	rc = ctl_status(h, cfg, false, &out);
	if (rc != 0 || strstr(out, "running") == NULL || strstr(out, pid) == NULL)
		fail_msg("coldgatectl status with coldgated running exited %d, want 0 and "
		    "\"running (%s)\":\n%s", rc, pid, out);
	free(out);
	rc = ctl_status(h, cfg, true, &out);
	if (rc != 0 || strstr(out, "\"running\":true") == NULL)
		fail_msg("coldgatectl status --json with coldgated running exited %d:\n%s", rc, out);
	free(out);

	assert_int_equal(harness_daemon_stop(h), 0);
	rc = ctl_status(h, cfg, false, &out);
	if (rc != 3 || strstr(out, "not running") == NULL)
		fail_msg("coldgatectl status after the stop exited %d, want 3 and \"not running\":\n%s",
		    rc, out);
	if (strstr(out, "mqtt:") != NULL && strstr(out, "stopped") != NULL)
		fail_msg("coldgatectl status still reports a stale mqtt state:\n%s", out);
	free(out);
	rc = ctl_status(h, cfg, true, &out);
	if (rc != 3 || strstr(out, "\"running\":false") == NULL)
		fail_msg("coldgatectl status --json after the stop exited %d:\n%s", rc, out);
	free(out);

	/* And after it, the state directory is free again: a new daemon starts. */
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	seq = harness_sub_max_seq(sub) + 2;
	if (harness_sub_wait(sub, 0, "telemetry", harness_match_seq_above, &seq,
	    HARNESS_TIMEOUT) < 0)
		fail_msg("no telemetry from a daemon started after the first stopped");
	assert_int_equal(harness_daemon_stop(h), 0);
	free(sock);
	free(cfg);
	harness_pass(h);
}

static void
test_exit_leaves_a_socket_it_did_not_create(void **state)
{
	struct harness *h = *state;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char *cfg, *sock;
	int fd;

	cfg = harness_write_config(h, "coldgate.cfg", cfg_text);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	sock = harness_replace("@/control.sock", "@", h->state_dir);
	if (!harness_daemon_log_wait(h, "running:", HARNESS_TIMEOUT) || !harness_exists(sock))
		fail_msg("the daemon did not start with its control socket %s", sock);

	/* Someone else's socket now stands at that path. */
	assert_int_equal(unlink(sock), 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);

	assert_int_equal(harness_daemon_stop(h), 0);
	if (!harness_exists(sock))
		fail_msg("coldgated's exit removed %s, a socket it did not create", sock);
	close(fd);
	unlink(sock);
	free(sock);
	free(cfg);
	harness_pass(h);
}

/* A wrong mqtt.port shows in the log at warning level without -v, with the reason. */
static void
test_connect_failure_is_a_warning_with_the_reason(void **state)
{
	struct harness *h = *state;
	const char *env[] = { "JOURNAL_STREAM=1:1", NULL };
	char port[32], want[128], *tmpl, *cfg;

	snprintf(port, sizeof(port), "port = %d;", harness_free_port());
	tmpl = harness_replace(cfg_text, "port = @PORT@;", port);
	cfg = harness_write_config(h, "coldgate.cfg", tmpl);
	assert_int_equal(harness_daemon_start(h, cfg, env), 0);
	snprintf(want, sizeof(want), "<4>mqtt: cannot connect to 127.0.0.1:%s", port + 7);
	want[strlen(want) - 1] = '\0';	/* the ';' of "port = N;" */
	if (!harness_daemon_log_wait(h, want, HARNESS_TIMEOUT))
		fail_msg("no warning \"%s...\" in the log", want);
	if (!harness_daemon_log_wait(h, "Connection refused", HARNESS_TIMEOUT))
		fail_msg("the warning does not give the reason (Connection refused)");
	/* Said once, not at every retry. */
	harness_sleep(3.5);
	{
		char *log = harness_daemon_log(h), *p = log;
		int n = 0;

		while ((p = strstr(p, "<4>mqtt: cannot connect")) != NULL) {
			n++;
			p++;
		}
		if (n != 1)
			fail_msg("the same connect failure was warned %d times:\n%s", n, log);
		free(log);
	}
	assert_int_equal(harness_daemon_stop(h), 0);
	free(tmpl);
	free(cfg);
	harness_pass(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_second_daemon_exits_1_naming_the_first,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_exit_leaves_a_socket_it_did_not_create,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_connect_failure_is_a_warning_with_the_reason,
		    harness_setup, harness_teardown),
	};

	return cmocka_run_group_tests_name("integration: one daemon per state directory", tests,
	    NULL, NULL);
}
