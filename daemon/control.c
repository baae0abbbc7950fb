/*
 * Commands: cmd/ack from MQTT (uplink.c hands them here) and datagrams
 * from coldgatectl on the local control socket, both carried out by
 * control_command() and answered with the same JSON.  Owns the control
 * socket; changes alarms only through the alarm engine's ack.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "payload.h"

/* Carry out a command (from MQTT or the control socket); the reply goes into b. */
void
control_command(struct daemon *d, const char *name, const void *payload, size_t len,
    const char *via, struct jbuf *b)
{
	struct cmd c;
	char why[160];
	bool parsed, ok = false;
	int rc;

	if (!(parsed = cmd_parse(name, payload, len, &c, why, sizeof(why)) == 0)) {
		log_warnx("command %s via %s refused: %s", name, via, why);
	} else if ((rc = alarm_ack(d->alarms, c.alarm, c.by, now_ms(CLOCK_REALTIME))) < 0) {
		snprintf(why, sizeof(why), "%s", rc == -ENOENT ? "no such alarm" :
		    rc == -EALREADY ? "already acknowledged" :
		    rc == -ESRCH ? "the alarm has cleared; nothing to acknowledge" : strerror(-rc));
		log_warnx("ack of %s via %s refused: %s", c.alarm, via, why);
	} else {
		struct jbuf a = { 0 };

		payload_audit_ack(&a, &(struct payload_audit_ack){ c.alarm, c.by, via });
		records_audit(d, PAYLOAD_AUDIT_ACK, &a);
		log_info("alarm %s acknowledged by \"%s\" via %s", c.alarm, c.by, via);
		alarmio_flush(d);
		ok = true;
	}
	payload_cmd_result(b, &(struct payload_cmd_result){ .gw = d->conf->gateway.id,
	    .cmd = name, .alarm = parsed ? c.alarm : NULL, .ok = ok, .error = ok ? NULL : why,
	    .ts = now_ms(CLOCK_REALTIME) });
}

/*
 * The local control socket: coldgatectl sends one datagram "NAME\nJSON"
 * from an autobound address and gets the JSON reply back.  Mode 0660, in
 * the state directory: who may write there may acknowledge alarms.
 */
int
control_open(struct daemon *d, const char *dir)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/control.sock", dir) >=
	    (int)sizeof(sun.sun_path)) {
		log_warnx("gateway.state_dir %s: too long for the control socket", dir);
		return -ENAMETOOLONG;
	}
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	/* We hold the state directory's lock: a socket left there is a dead daemon's. */
	unlink(sun.sun_path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || chmod(sun.sun_path, 0660) < 0 ||
	    stat(sun.sun_path, &st) < 0) {
		int e = errno;

		log_warn("control socket %s", sun.sun_path);
		close(fd);
		return -e;
	}
	d->fd[FD_CONTROL] = fd;
	d->control_path = strdup(sun.sun_path);
	d->control_dev = st.st_dev;
	d->control_ino = st.st_ino;
	return 0;
}

/* Remove the control socket, but only the file we made: never someone else's. */
void
control_close(struct daemon *d)
{
	struct stat st;

	if (d->control_path == NULL)
		return;
	if (stat(d->control_path, &st) == 0 && st.st_dev == d->control_dev &&
	    st.st_ino == d->control_ino)
		unlink(d->control_path);
	else
		log_info("control socket %s is no longer ours; left alone", d->control_path);
	free(d->control_path);
	d->control_path = NULL;
}

void
control_on_readable(struct daemon *d)
{
	char buf[CMD_MAX_BYTES + 64];
	struct sockaddr_un from;
	socklen_t fromlen = sizeof(from);
	struct jbuf b = { 0 };
	ssize_t n;
	char *nl;

	while ((n = recvfrom(d->fd[FD_CONTROL], buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from,
	    &fromlen)) >= 0) {
		buf[n] = '\0';
		if ((nl = memchr(buf, '\n', (size_t)n)) == NULL) {
			control_command(d, "", "", 0, "local", &b);
		} else {
			*nl = '\0';
			control_command(d, buf, nl + 1, (size_t)(buf + n - (nl + 1)), "local", &b);
		}
		if (jb_text(&b) != NULL && fromlen > sizeof(sa_family_t))
			sendto(d->fd[FD_CONTROL], b.p, b.len, MSG_DONTWAIT, (struct sockaddr *)&from,
			    fromlen);
		fromlen = sizeof(from);
	}
	jb_free(&b);
}

