/*
 * systemd's notify protocol as systemd would see it (sd_notify(3), our
 * Type=notify unit with WatchdogSec and NotifyAccess=main): the test binds
 * the AF_UNIX datagram socket named by NOTIFY_SOCKET and reads what the
 * daemon sends, with the sender's credentials.
 *
 * READY=1 once, when the store is open (the file exists by then);
 * WATCHDOG=1 again and again when WATCHDOG_USEC is set; STOPPING=1 on
 * SIGTERM; all from the main process.  With WATCHDOG_PID naming another
 * process the watchdog is not ours, so no WATCHDOG=1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/harness.h"

static const char cfg_text[] =
	HARNESS_CFG_HEAD
	"publish = { interval = 1; };\n"
	"zones = ( { id = \"house-1\"; name = \"香菇出菇房 1\"; } );\n"
	"sensors = (\n"
	"  { id = \"h1-air\"; zone = \"house-1\"; driver = \"sim\"; profile = \"mushroom-house\"; interval = 0.5; }\n"
	");\n";

#define MAX_NOTES 1024

/* Every line of every datagram, in order, with its sender's pid. */
struct notes {
	int	 fd;
	char	*path;
	size_t	 n;
	char	*line[MAX_NOTES];
	pid_t	 pid[MAX_NOTES];
};

static void
notes_open(struct harness *h, struct notes *nt)
{
	struct sockaddr_un sa;
	int one = 1;

	memset(nt, 0, sizeof(*nt));
	nt->path = harness_path(h, "notify.sock");
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(nt->path) >= sizeof(sa.sun_path))
		fail_msg("%s is too long for a unix socket (set a shorter TMPDIR)", nt->path);
	strcpy(sa.sun_path, nt->path);
	nt->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(nt->fd >= 0);
	if (bind(nt->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		fail_msg("bind %s: %s", nt->path, strerror(errno));
	/* Credentials of the sender, as systemd checks them. */
	assert_int_equal(setsockopt(nt->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
}

static void
notes_close(struct notes *nt)
{
	close(nt->fd);
	for (size_t i = 0; i < nt->n; i++)
		free(nt->line[i]);
	free(nt->path);
}

/* Read one datagram if one comes within timeout; false if none. */
static bool
notes_read(struct notes *nt, double timeout)
{
	struct pollfd pfd = { .fd = nt->fd, .events = POLLIN };
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	char buf[4096];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	pid_t pid = -1;
	ssize_t len;
	int rc;

	rc = poll(&pfd, 1, (int)(timeout * 1000));
	if (rc <= 0)
		return false;
	len = recvmsg(nt->fd, &mh, MSG_DONTWAIT);
	if (len < 0)
		return false;
	buf[len] = '\0';
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred cred;

			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			pid = cred.pid;
		}
	}
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l != NULL;
	    l = strtok_r(NULL, "\n", &save)) {
		if (nt->n == MAX_NOTES)
			fail_msg("more than %d notify lines", MAX_NOTES);
		nt->line[nt->n] = strdup(l);
		assert_non_null(nt->line[nt->n]);
		nt->pid[nt->n] = pid;
		nt->n++;
	}
	return true;
}

/* Index of the first line equal to want at or after from, or -1. */
static long
notes_find(struct notes *nt, size_t from, const char *want)
{
	for (size_t i = from; i < nt->n; i++)
		if (strcmp(nt->line[i], want) == 0)
			return (long)i;
	return -1;
}

static size_t
notes_count(struct notes *nt, size_t from, const char *want)
{
	size_t c = 0;

	for (size_t i = from; i < nt->n; i++)
		c += strcmp(nt->line[i], want) == 0;
	return c;
}

/* Read until count lines equal to want exist at or after from. */
static bool
notes_wait(struct notes *nt, size_t from, const char *want, size_t count, double timeout)
{
	double end = harness_now() + timeout;

	while (notes_count(nt, from, want) < count) {
		double left = end - harness_now();

		if (left <= 0)
			return false;
		notes_read(nt, left < 0.2 ? left : 0.2);
	}
	return true;
}

static void
notes_dump(struct notes *nt)
{
	fprintf(stderr, "[test] %zu notify lines:\n", nt->n);
	for (size_t i = 0; i < nt->n; i++)
		fprintf(stderr, "  %zu pid %ld: %s\n", i, (long)nt->pid[i], nt->line[i]);
}

static void
test_ready_watchdog_and_stopping_reach_systemd(void **state)
{
	struct harness *h = *state;
	struct notes nt;
	char *cfg, *sock_env;
	long ready;
	pid_t pid;

	notes_open(h, &nt);
	sock_env = harness_replace("NOTIFY_SOCKET=@", "@", nt.path);
	{
		const char *env[] = { sock_env, "WATCHDOG_USEC=1000000", "WATCHDOG_PID=@PID@", NULL };

		cfg = harness_write_config(h, "coldgate.cfg", cfg_text);
		assert_int_equal(harness_daemon_start(h, cfg, env), 0);
	}
	pid = h->daemon.pid;

	if (!notes_wait(&nt, 0, "READY=1", 1, HARNESS_TIMEOUT)) {
		notes_dump(&nt);
		fail_msg("no READY=1");
	}
	/* READY=1 means the store is open. */
	if (!harness_exists(h->store))
		fail_msg("READY=1 came before the store %s existed", h->store);
	ready = notes_find(&nt, 0, "READY=1");

	/* Watchdog pings every WATCHDOG_USEC/2 = 0.5 s. */
	if (!notes_wait(&nt, (size_t)ready, "WATCHDOG=1", 3, HARNESS_TIMEOUT)) {
		notes_dump(&nt);
		fail_msg("fewer than 3 WATCHDOG=1 after READY=1");
	}

	harness_daemon_signal(h, SIGTERM);
	if (!notes_wait(&nt, (size_t)ready, "STOPPING=1", 1, HARNESS_TIMEOUT)) {
		notes_dump(&nt);
		fail_msg("no STOPPING=1 after SIGTERM");
	}
	assert_int_equal(harness_daemon_wait(h, HARNESS_TIMEOUT), 0);
	while (notes_read(&nt, 0.1))
		;

	if (notes_count(&nt, 0, "READY=1") != 1) {
		notes_dump(&nt);
		fail_msg("READY=1 sent %zu times, want once", notes_count(&nt, 0, "READY=1"));
	}
	/* NotifyAccess=main: systemd drops messages from any other process. */
	for (size_t i = 0; i < nt.n; i++)
		if (nt.pid[i] != pid) {
			notes_dump(&nt);
			fail_msg("\"%s\" came from pid %ld, not the main process %ld", nt.line[i],
			    (long)nt.pid[i], (long)pid);
		}

	notes_close(&nt);
	free(sock_env);
	free(cfg);
	harness_pass(h);
}

static void
test_watchdog_of_another_pid_is_not_pinged(void **state)
{
	struct harness *h = *state;
	struct notes nt;
	char *cfg, *sock_env;
	long ready;
	double until;

	notes_open(h, &nt);
	sock_env = harness_replace("NOTIFY_SOCKET=@", "@", nt.path);
	{
		/* pid 1 is never the daemon: the watchdog is meant for another. */
		const char *env[] = { sock_env, "WATCHDOG_USEC=1000000", "WATCHDOG_PID=1", NULL };

		cfg = harness_write_config(h, "coldgate.cfg", cfg_text);
		assert_int_equal(harness_daemon_start(h, cfg, env), 0);
	}
	if (!notes_wait(&nt, 0, "READY=1", 1, HARNESS_TIMEOUT)) {
		notes_dump(&nt);
		fail_msg("no READY=1");
	}
	ready = notes_find(&nt, 0, "READY=1");
	/* Six ping periods' worth of listening. */
	until = harness_now() + 3.0;
	while (harness_now() < until)
		notes_read(&nt, 0.2);
	if (notes_count(&nt, (size_t)ready, "WATCHDOG=1") != 0) {
		notes_dump(&nt);
		fail_msg("WATCHDOG=1 sent although WATCHDOG_PID names another process");
	}
	assert_int_equal(harness_daemon_stop(h), 0);

	notes_close(&nt);
	free(sock_env);
	free(cfg);
	harness_pass(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ready_watchdog_and_stopping_reach_systemd,
		    harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_watchdog_of_another_pid_is_not_pinged,
		    harness_setup, harness_teardown),
	};

	return cmocka_run_group_tests_name("integration: systemd notify", tests, NULL, NULL);
}
