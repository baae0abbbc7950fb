/*
 * The integration test harness (see harness.h): temp dirs, a private
 * mosquitto per test, the daemon under test as a child process, and a
 * recording subscriber.
 *
 * Children are started with fork/execve and get PR_SET_PDEATHSIG, so a test
 * that crashes leaves no broker or daemon behind.  Everything they need is
 * prepared before fork(): after it the child only calls async-signal-safe
 * functions (the subscriber's thread may hold locks at that moment).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <mosquitto.h>

#include "lib/harness.h"

extern char **environ;

#define MAX_SUBS	8

struct harness_sub {
	struct harness	*h;
	struct mosquitto *mosq;
	char		*pattern;
	pthread_mutex_t	 lock;
	struct harness_msg **msgs;
	size_t		 n, cap;
	int		 connects;
	int		 subacks;
};

/* Subscribers a harness started, stopped by harness_teardown. */
static struct harness_sub *subs[MAX_SUBS];
static int run_counter;

static void
hlog(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("[harness] ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL) {
		hlog("out of memory");
		abort();
	}
	return p;
}

static char *
xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = xmalloc(n);

	memcpy(p, s, n);
	return p;
}

static char *
xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		hlog("out of memory");
		abort();
	}
	va_end(ap);
	return s;
}

/* --- time --------------------------------------------------------------- */

double
harness_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t
harness_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
harness_sleep(double seconds)
{
	struct timespec ts;

	if (seconds <= 0)
		return;
	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

bool
harness_wait(double timeout, bool (*pred)(void *), void *arg)
{
	double end = harness_now() + timeout;

	for (;;) {
		if (pred(arg))
			return true;
		if (harness_now() > end)
			return false;
		harness_sleep(0.05);
	}
}

/* --- files -------------------------------------------------------------- */

char *
harness_path(const struct harness *h, const char *name)
{
	return xasprintf("%s/%s", h->dir, name);
}

int
harness_write_bytes(const char *path, const void *buf, size_t len)
{
	const char *p = buf;
	int fd, err = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1)
		return -errno;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) == -1 && err == 0)
		err = -errno;
	return err;
}

char *
harness_write_file(const struct harness *h, const char *name, const char *text)
{
	char *path = harness_path(h, name);
	int err = harness_write_bytes(path, text, strlen(text));

	if (err < 0)
		hlog("write %s: %s", path, strerror(-err));
	return path;
}

char *
harness_read_file(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t len = 0, cap = 4096, n;

	if (f == NULL)
		return NULL;
	buf = xmalloc(cap);
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len - 1 == 0) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (buf == NULL)
				abort();
		}
	}
	fclose(f);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
}

bool
harness_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

char *
harness_replace(const char *s, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to), count = 0;
	const char *p;
	char *out, *o;

	for (p = s; (p = strstr(p, from)) != NULL; p += fl)
		count++;
	out = xmalloc(strlen(s) + count * tl + 1);
	o = out;
	for (p = s;;) {
		const char *q = strstr(p, from);

		if (q == NULL) {
			strcpy(o, p);
			break;
		}
		memcpy(o, p, (size_t)(q - p));
		o += q - p;
		memcpy(o, to, tl);
		o += tl;
		p = q + fl;
	}
	return out;
}

char *
harness_write_config(const struct harness *h, const char *name, const char *tmpl)
{
	char port[16], *a, *b, *c, *path;

	snprintf(port, sizeof(port), "%d", h->broker.port);
	a = harness_replace(tmpl, "@PORT@", port);
	b = harness_replace(a, "@STATE_DIR@", h->state_dir);
	c = harness_replace(b, "@DIR@", h->dir);
	path = harness_write_file(h, name, c);
	free(a);
	free(b);
	free(c);
	return path;
}

int
harness_line_of(const char *text, const char *needle)
{
	const char *hit = strstr(text, needle);
	int line = 1;

	if (hit == NULL)
		return -1;
	for (const char *p = text; p < hit; p++)
		if (*p == '\n')
			line++;
	return line;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) == -1)
		hlog("remove %s: %s", path, strerror(errno));
	return 0;
}

static void
rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Print the last max_lines lines of a file to stderr, each prefixed. */
static void
print_tail(const char *title, const char *path, int max_lines)
{
	char *text = harness_read_file(path, NULL);
	const char *p;
	int lines = 0;

	if (text == NULL) {
		hlog("%s: %s: (unreadable)", title, path);
		return;
	}
	for (p = text + strlen(text); p > text; p--)
		if (p[-1] == '\n' && p[0] != '\0' && ++lines >= max_lines)
			break;
	hlog("---- %s (%s)%s ----", title, path, p > text ? ", last lines" : "");
	fputs(p, stderr);
	if (*p != '\0' && p[strlen(p) - 1] != '\n')
		fputc('\n', stderr);
	hlog("---- end of %s ----", title);
	free(text);
}

/* --- processes ---------------------------------------------------------- */

/* Variables the daemon must not inherit from whatever ran the tests. */
static const char *const env_drop[] = {
	"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID",
	"LISTEN_FDNAMES", "JOURNAL_STREAM", "INVOCATION_ID", NULL
};

static bool
env_name_eq(const char *a, const char *b)
{
	while (*a != '\0' && *a != '=' && *a == *b)
		a++, b++;
	return (*a == '=' || *a == '\0') && (*b == '=' || *b == '\0');
}

/* environ minus env_drop and add's names, plus add.  Array is malloc'd. */
static const char **
make_env(const char *const *add)
{
	size_t n = 0, na = 0, k = 0;
	const char **env;

	for (char **e = environ; *e != NULL; e++)
		n++;
	if (add != NULL)
		while (add[na] != NULL)
			na++;
	env = xmalloc((n + na + 1) * sizeof(*env));
	for (char **e = environ; *e != NULL; e++) {
		bool drop = false;

		for (const char *const *d = env_drop; *d != NULL && !drop; d++)
			drop = env_name_eq(*e, *d);
		for (size_t i = 0; i < na && !drop; i++)
			drop = env_name_eq(*e, add[i]);
		if (!drop)
			env[k++] = *e;
	}
	for (size_t i = 0; i < na; i++)
		env[k++] = add[i];
	env[k] = NULL;
	return env;
}

/* Async-signal-safe decimal formatting for the child. */
static void
fmt_pid(char *buf, size_t size, const char *prefix, long v)
{
	char digits[24];
	size_t nd = 0, o = 0;

	do {
		digits[nd++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && nd < sizeof(digits));
	while (*prefix != '\0' && o + 1 < size)
		buf[o++] = *prefix++;
	while (nd > 0 && o + 1 < size)
		buf[o++] = digits[--nd];
	buf[o] = '\0';
}

/*
 * execve() takes char *const[] for C's sake only: POSIX (its RATIONALE)
 * says it changes neither the arrays nor the strings, so handing it const
 * strings is sound.  The one place the harness drops const, and why.
 */
static char *const *
exec_vec(const char *const *v)
{
	union { const char *const *c; char *const *m; } u = { .c = v };

	return u.m;
}

/*
 * fork + execve argv[0] with stdin from /dev/null and stdout/stderr to the
 * given files (appended).  An env entry "NAME=@PID@" becomes the child's pid.
 * Returns the pid or -1.
 */
static pid_t
spawn(const char *const *argv, const char *const *add_env, const char *out_path,
    const char *err_path)
{
	const char **env = make_env(add_env);
	char pidvar[128] = "";
	int pid_slot = -1;
	int in, out, err;
	pid_t parent = getpid(), pid;

	for (int i = 0; env[i] != NULL; i++) {
		const char *eq = strchr(env[i], '=');

		if (eq != NULL && strcmp(eq + 1, "@PID@") == 0 &&
		    (size_t)(eq - env[i]) + 1 < sizeof(pidvar) - 24) {
			memcpy(pidvar, env[i], (size_t)(eq - env[i]) + 1);
			pidvar[eq - env[i] + 1] = '\0';
			pid_slot = i;
		}
	}
	in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	out = open(out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	err = open(err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (in == -1 || out == -1 || err == -1) {
		hlog("spawn %s: open: %s", argv[0], strerror(errno));
		pid = -1;
		goto out;
	}
	fflush(NULL);
	pid = fork();
	if (pid == -1) {
		hlog("fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		static char pidbuf[160];
		sigset_t all;

		/* Die with the test, whatever kills it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (pid_slot >= 0) {
			fmt_pid(pidbuf, sizeof(pidbuf), pidvar, (long)getpid());
			env[pid_slot] = pidbuf;
		}
		if (dup2(in, 0) == -1 || dup2(out, 1) == -1 || dup2(err, 2) == -1)
			_exit(127);
		execve(argv[0], exec_vec(argv), exec_vec(env));
		_exit(127);
	}
out:
	if (in != -1)
		close(in);
	if (out != -1)
		close(out);
	if (err != -1)
		close(err);
	free(env);
	return pid;
}

static int
decode_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

/* Wait for pid up to timeout; returns decoded status or -1 (still running). */
static int
wait_pid(pid_t pid, double timeout, int *statusp)
{
	double end = harness_now() + timeout;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid) {
			if (statusp != NULL)
				*statusp = status;
			return decode_status(status);
		}
		if (r == -1 && errno != EINTR) {
			hlog("waitpid %ld: %s", (long)pid, strerror(errno));
			return -2;
		}
		if (harness_now() > end)
			return -1;
		harness_sleep(0.02);
	}
}

/* --- mosquitto ---------------------------------------------------------- */

int
harness_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd, port = -1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = 0;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static bool
port_accepts(int port)
{
	struct sockaddr_in sa;
	int fd, ok;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return false;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* One attempt on b->port: 0 when it accepts connections, -1 if it died. */
static int
broker_try(struct harness_broker *b)
{
	FILE *f;
	const char *argv[] = { "/usr/sbin/mosquitto", "-c", b->conf, NULL };
	double end;

	f = fopen(b->conf, "w");
	if (f == NULL) {
		hlog("%s: %s", b->conf, strerror(errno));
		return -1;
	}
	fprintf(f, "# written by the coldgate test harness\n"
	    "listener %d 127.0.0.1\n"
	    "allow_anonymous %s\n"
	    "persistence true\n"
	    "persistence_location %s/\n"
	    "persistence_file mosquitto.db\n"
	    "log_dest stderr\n"
	    "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
	    "connection_messages true\n"
	    "log_timestamp_format %%H:%%M:%%S\n", b->port, b->refuse ? "false" : "true", b->dir);
	/* As root mosquitto would switch to user "mosquitto", who cannot write
	 * the persistence file into our temp dir. */
	if (geteuid() == 0)
		fprintf(f, "user root\n");
	fclose(f);
	if (access(argv[0], X_OK) != 0)
		argv[0] = "/usr/bin/mosquitto";
	b->pid = spawn(argv, NULL, b->log, b->log);
	if (b->pid <= 0) {
		b->pid = 0;
		return -1;
	}
	end = harness_now() + HARNESS_TIMEOUT;
	while (harness_now() < end) {
		if (wait_pid(b->pid, 0, NULL) >= 0) {
			b->pid = 0;
			return -1;
		}
		if (port_accepts(b->port)) {
			/* A mosquitto that lost the port to another listener
			 * exits at once: make sure the one answering is ours. */
			harness_sleep(0.05);
			if (wait_pid(b->pid, 0, NULL) >= 0) {
				b->pid = 0;
				return -1;
			}
			return 0;
		}
		harness_sleep(0.02);
	}
	hlog("mosquitto on port %d did not accept connections", b->port);
	kill(b->pid, SIGKILL);
	wait_pid(b->pid, 10, NULL);
	b->pid = 0;
	return -1;
}

int
harness_broker_start(struct harness *h)
{
	struct harness_broker *b = &h->broker;
	bool fixed = b->port != 0;

	if (b->pid != 0)
		return 0;
	if (b->dir == NULL) {
		b->dir = harness_path(h, "broker");
		b->conf = harness_path(h, "broker/mosquitto.conf");
		b->log = harness_path(h, "broker/mosquitto.log");
		if (mkdir(b->dir, 0700) == -1 && errno != EEXIST) {
			hlog("mkdir %s: %s", b->dir, strerror(errno));
			return -1;
		}
	}
	for (int attempt = 0; attempt < 20; attempt++) {
		if (!fixed)
			b->port = harness_free_port();
		if (b->port > 0 && broker_try(b) == 0)
			return 0;
		/* Another process took the port: a new one, or, for a restart on
		 * the same port, wait a little and try again. */
		harness_sleep(fixed ? 0.5 : 0.05);
	}
	hlog("could not start mosquitto");
	print_tail("mosquitto log", b->log, 40);
	return -1;
}

void
harness_broker_stop(struct harness *h)
{
	struct harness_broker *b = &h->broker;

	if (b->pid == 0)
		return;
	kill(b->pid, SIGTERM);
	if (wait_pid(b->pid, HARNESS_TIMEOUT, NULL) == -1) {
		hlog("mosquitto ignored SIGTERM; killing it");
		kill(b->pid, SIGKILL);
		wait_pid(b->pid, HARNESS_TIMEOUT, NULL);
	}
	b->pid = 0;
}

/* --- coldgated ---------------------------------------------------------- */

int
harness_daemon_start(struct harness *h, const char *cfg, const char *const *env)
{
	const char *argv[] = { h->coldgated, "-f", "-v", "-c", cfg, NULL };
	FILE *f;

	if (h->daemon.pid != 0) {
		hlog("coldgated is already running");
		return -1;
	}
	f = fopen(h->log, "a");
	if (f != NULL) {
		fprintf(f, "==== harness: %s -f -v -c %s\n", h->coldgated, cfg);
		fclose(f);
	}
	h->daemon.pid = spawn(argv, env, h->log, h->log);
	if (h->daemon.pid <= 0) {
		h->daemon.pid = 0;
		return -1;
	}
	return 0;
}

void
harness_daemon_signal(struct harness *h, int sig)
{
	if (h->daemon.pid != 0)
		kill(h->daemon.pid, sig);
}

int
harness_daemon_wait(struct harness *h, double timeout)
{
	int rc;

	if (h->daemon.pid == 0)
		return decode_status(h->daemon.status);
	rc = wait_pid(h->daemon.pid, timeout, &h->daemon.status);
	if (rc == -1)
		return -1;
	h->daemon.pid = 0;
	{
		FILE *f = fopen(h->log, "a");

		if (f != NULL) {
			fprintf(f, "==== harness: coldgated exited: status %d\n", rc);
			fclose(f);
		}
	}
	return rc;
}

bool
harness_daemon_running(struct harness *h)
{
	return h->daemon.pid != 0 && harness_daemon_wait(h, 0) == -1;
}

int
harness_daemon_stop(struct harness *h)
{
	int rc;

	if (h->daemon.pid == 0)
		return decode_status(h->daemon.status);
	harness_daemon_signal(h, SIGTERM);
	rc = harness_daemon_wait(h, HARNESS_TIMEOUT);
	if (rc == -1) {
		hlog("coldgated ignored SIGTERM for %.0f s; killing it", HARNESS_TIMEOUT);
		harness_daemon_signal(h, SIGKILL);
		harness_daemon_wait(h, HARNESS_TIMEOUT);
	}
	return rc;
}

char *
harness_daemon_log(const struct harness *h)
{
	char *s = harness_read_file(h->log, NULL);

	return s != NULL ? s : xstrdup("");
}

struct log_wait {
	const struct harness *h;
	const char *needle;
};

static bool
log_has(void *arg)
{
	struct log_wait *w = arg;
	char *log = harness_daemon_log(w->h);
	bool hit = strstr(log, w->needle) != NULL;

	free(log);
	return hit;
}

bool
harness_daemon_log_wait(const struct harness *h, const char *needle, double timeout)
{
	struct log_wait w = { h, needle };

	return harness_wait(timeout, log_has, &w);
}

int
harness_run(struct harness *h, const char *const *argv, char **out, char **err,
    double timeout)
{
	int n = ++run_counter, rc;
	char *op = xasprintf("%s/run-%d.out", h->dir, n);
	char *ep = xasprintf("%s/run-%d.err", h->dir, n);
	pid_t pid;

	unlink(op);
	unlink(ep);
	pid = spawn(argv, NULL, op, ep);
	if (pid <= 0) {
		rc = -1;
	} else {
		rc = wait_pid(pid, timeout, NULL);
		if (rc == -1) {
			hlog("%s did not finish in %.0f s; killing it", argv[0], timeout);
			kill(pid, SIGKILL);
			wait_pid(pid, HARNESS_TIMEOUT, NULL);
		}
	}
	if (out != NULL) {
		*out = harness_read_file(op, NULL);
		if (*out == NULL)
			*out = xstrdup("");
	}
	if (err != NULL) {
		*err = harness_read_file(ep, NULL);
		if (*err == NULL)
			*err = xstrdup("");
	}
	free(op);
	free(ep);
	return rc;
}

/* --- the subscriber ----------------------------------------------------- */

static void
on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct harness_sub *s = obj;

	if (rc != 0)
		return;
	pthread_mutex_lock(&s->lock);
	s->connects++;
	pthread_mutex_unlock(&s->lock);
	/* Again after every reconnect: the broker may have lost the session. */
	mosquitto_subscribe(mosq, NULL, s->pattern, 1);
}

static void
on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count, const int *granted)
{
	struct harness_sub *s = obj;

	(void)mosq;
	(void)mid;
	if (qos_count < 1 || granted[0] > 2)
		return;
	pthread_mutex_lock(&s->lock);
	s->subacks++;
	pthread_mutex_unlock(&s->lock);
}

/* The payload as JSON, only if all of it is one JSON value. */
static json_object *
parse_strict(const char *text, int len)
{
	json_tokener *tok = json_tokener_new();
	json_object *obj;
	size_t end;

	if (tok == NULL)
		return NULL;
	obj = json_tokener_parse_ex(tok, text, len);
	if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(obj);
		json_tokener_free(tok);
		return NULL;
	}
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (end != (size_t)len) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

static void
on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m)
{
	struct harness_sub *s = obj;
	struct harness_msg *msg = xmalloc(sizeof(*msg));
	int64_t seq;

	(void)mosq;
	msg->topic = xstrdup(m->topic);
	msg->len = m->payloadlen;
	msg->payload = xmalloc((size_t)m->payloadlen + 1);
	memcpy(msg->payload, m->payload, (size_t)m->payloadlen);
	msg->payload[m->payloadlen] = '\0';
	msg->retain = m->retain;
	msg->json = parse_strict(msg->payload, msg->len);
	msg->seq = harness_json_int(msg->json, "seq", &seq) ? seq : -1;

	pthread_mutex_lock(&s->lock);
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct harness_msg **a = realloc(s->msgs, cap * sizeof(*a));

		if (a == NULL)
			abort();
		s->msgs = a;
		s->cap = cap;
	}
	s->msgs[s->n++] = msg;
	pthread_mutex_unlock(&s->lock);
}

static void
lib_init(void)
{
	static bool done;

	if (!done) {
		mosquitto_lib_init();
		done = true;
	}
}

struct harness_sub *
harness_sub_start(struct harness *h, const char *pattern, bool persistent)
{
	static int counter;
	struct harness_sub *s;
	char id[64];
	double end;
	int rc, slot = -1;

	lib_init();
	for (int i = 0; i < MAX_SUBS && slot < 0; i++)
		if (subs[i] == NULL)
			slot = i;
	if (slot < 0) {
		hlog("too many subscribers");
		return NULL;
	}
	s = xmalloc(sizeof(*s));
	memset(s, 0, sizeof(*s));
	s->h = h;
	s->pattern = xstrdup(pattern);
	pthread_mutex_init(&s->lock, NULL);
	snprintf(id, sizeof(id), "harness-%ld-%d", (long)getpid(), ++counter);
	s->mosq = mosquitto_new(id, !persistent, s);
	if (s->mosq == NULL) {
		hlog("mosquitto_new: %s", strerror(errno));
		goto err_free;
	}
	mosquitto_connect_callback_set(s->mosq, on_connect);
	mosquitto_subscribe_callback_set(s->mosq, on_subscribe);
	mosquitto_message_callback_set(s->mosq, on_message);
	mosquitto_reconnect_delay_set(s->mosq, 1, 1, false);
	rc = mosquitto_connect(s->mosq, "127.0.0.1", h->broker.port, 10);
	if (rc != MOSQ_ERR_SUCCESS) {
		hlog("subscriber connect to port %d: %s", h->broker.port, mosquitto_strerror(rc));
		goto err_destroy;
	}
	rc = mosquitto_loop_start(s->mosq);
	if (rc != MOSQ_ERR_SUCCESS) {
		hlog("mosquitto_loop_start: %s", mosquitto_strerror(rc));
		goto err_destroy;
	}
	subs[slot] = s;
	if (h->sub == NULL)
		h->sub = s;
	end = harness_now() + HARNESS_TIMEOUT;
	for (;;) {
		int acks;

		pthread_mutex_lock(&s->lock);
		acks = s->subacks;
		pthread_mutex_unlock(&s->lock);
		if (acks > 0)
			return s;
		if (harness_now() > end) {
			hlog("no SUBACK for %s in %.0f s", pattern, HARNESS_TIMEOUT);
			return s;	/* teardown stops it; the test's waits fail */
		}
		harness_sleep(0.02);
	}

err_destroy:
	mosquitto_destroy(s->mosq);
err_free:
	pthread_mutex_destroy(&s->lock);
	free(s->pattern);
	free(s);
	return NULL;
}

void
harness_sub_stop(struct harness_sub *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < MAX_SUBS; i++)
		if (subs[i] == s)
			subs[i] = NULL;
	if (s->h != NULL && s->h->sub == s)
		s->h->sub = NULL;
	mosquitto_disconnect(s->mosq);
	mosquitto_loop_stop(s->mosq, false);
	mosquitto_destroy(s->mosq);
	for (size_t i = 0; i < s->n; i++) {
		free(s->msgs[i]->topic);
		free(s->msgs[i]->payload);
		json_object_put(s->msgs[i]->json);
		free(s->msgs[i]);
	}
	free(s->msgs);
	pthread_mutex_destroy(&s->lock);
	free(s->pattern);
	free(s);
}

size_t
harness_sub_count(struct harness_sub *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

const struct harness_msg *
harness_sub_get(struct harness_sub *s, size_t i)
{
	const struct harness_msg *m = NULL;

	pthread_mutex_lock(&s->lock);
	if (i < s->n)
		m = s->msgs[i];
	pthread_mutex_unlock(&s->lock);
	return m;
}

int
harness_sub_connects(struct harness_sub *s)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->connects;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static bool
topic_matches(const char *topic, const char *suffix)
{
	size_t bl = strlen(HARNESS_BASE), sl;

	if (suffix == NULL)
		return true;
	if (strncmp(topic, HARNESS_BASE, bl) != 0)
		return false;
	topic += bl;
	sl = strlen(suffix);
	if (sl > 0 && suffix[sl - 1] == '/')
		return strncmp(topic, suffix, sl) == 0 && topic[sl] != '\0';
	return strcmp(topic, suffix) == 0;
}

long
harness_sub_find(struct harness_sub *s, size_t from, const char *suffix,
    bool (*match)(const struct harness_msg *, const void *), const void *arg)
{
	size_t n = harness_sub_count(s);

	for (size_t i = from; i < n; i++) {
		const struct harness_msg *m = harness_sub_get(s, i);

		if (topic_matches(m->topic, suffix) && (match == NULL || match(m, arg)))
			return (long)i;
	}
	return -1;
}

int
harness_sub_publish(struct harness_sub *s, const char *topic, const char *payload)
{
	return mosquitto_publish(s->mosq, NULL, topic, (int)strlen(payload), payload, 1, false) ==
	    MOSQ_ERR_SUCCESS ? 0 : -1;
}

long
harness_sub_wait(struct harness_sub *s, size_t from, const char *suffix,
    bool (*match)(const struct harness_msg *, const void *), const void *arg,
    double timeout)
{
	double end = harness_now() + timeout;
	size_t scanned = from;

	for (;;) {
		size_t n = harness_sub_count(s);
		long i = harness_sub_find(s, scanned, suffix, match, arg);

		if (i >= 0)
			return i;
		scanned = n > from ? n : from;
		if (harness_now() > end)
			return -1;
		harness_sleep(0.05);
	}
}

size_t
harness_sub_wait_n(struct harness_sub *s, size_t from, const char *suffix,
    bool (*match)(const struct harness_msg *, const void *), const void *arg, size_t want,
    double timeout)
{
	double end = harness_now() + timeout;
	size_t seen = 0, scanned = from;

	for (;;) {
		size_t n = harness_sub_count(s);

		for (size_t i = scanned; i < n; i++) {
			const struct harness_msg *m = harness_sub_get(s, i);

			if (topic_matches(m->topic, suffix) && (match == NULL || match(m, arg)))
				seen++;
		}
		scanned = n;
		if (seen >= want || harness_now() > end)
			return seen;
		harness_sleep(0.05);
	}
}

int64_t
harness_sub_max_seq(struct harness_sub *s)
{
	size_t n = harness_sub_count(s);
	int64_t max = 0;

	for (size_t i = 0; i < n; i++) {
		const struct harness_msg *m = harness_sub_get(s, i);

		if (m->seq > max)
			max = m->seq;
	}
	return max;
}

bool
harness_check_seqs(struct harness_sub *s, size_t from, int64_t first_seq, char *why,
    size_t whylen)
{
	size_t n = harness_sub_count(s), nseen = 0;
	const struct harness_msg **first = NULL;
	int64_t lo = -1, max = -1;
	bool ok = true;

	why[0] = '\0';
	for (size_t i = from; i < n && ok; i++) {
		const struct harness_msg *m = harness_sub_get(s, i);

		if (m->seq < 0)
			continue;
		if (lo < 0) {
			if (first_seq > 0 && m->seq != first_seq) {
				snprintf(why, whylen, "message %zu (%s): first seq is %lld, want %lld",
				    i, m->topic, (long long)m->seq, (long long)first_seq);
				ok = false;
				break;
			}
			lo = m->seq;
			max = m->seq - 1;
			nseen = 1024;
			first = calloc(nseen, sizeof(*first));
			if (first == NULL)
				abort();
		}
		if (m->seq < lo) {
			snprintf(why, whylen, "message %zu (%s): seq %lld is below the first seq %lld",
			    i, m->topic, (long long)m->seq, (long long)lo);
			ok = false;
		} else if (m->seq > max + 1) {
			snprintf(why, whylen, "message %zu (%s): seq %lld after %lld: a gap "
			    "(or out of order)", i, m->topic, (long long)m->seq, (long long)max);
			ok = false;
		} else if (m->seq == max + 1) {
			size_t k = (size_t)(m->seq - lo);

			if (k >= nseen) {
				size_t nn = nseen * 2 > k + 1 ? nseen * 2 : k + 1;
				const struct harness_msg **a = realloc(first, nn * sizeof(*a));

				if (a == NULL)
					abort();
				memset(a + nseen, 0, (nn - nseen) * sizeof(*a));
				first = a;
				nseen = nn;
			}
			first[k] = m;
			max = m->seq;
		} else {
			const struct harness_msg *f = first[m->seq - lo];

			if (f->len != m->len || memcmp(f->payload, m->payload, (size_t)m->len) != 0 ||
			    strcmp(f->topic, m->topic) != 0) {
				snprintf(why, whylen, "message %zu: seq %lld repeats with a different "
				    "message:\n  first: %s %s\n  now:   %s %s", i, (long long)m->seq,
				    f->topic, f->payload, m->topic, m->payload);
				ok = false;
			}
		}
	}
	if (ok && lo < 0) {
		snprintf(why, whylen, "no message with a seq");
		ok = false;
	}
	free(first);
	return ok;
}

void
harness_sub_dump(struct harness_sub *s, size_t max)
{
	size_t n = harness_sub_count(s);
	size_t i = n > max ? n - max : 0;

	hlog("---- %zu messages received%s ----", n, i > 0 ? ", the last ones" : "");
	for (; i < n; i++) {
		const struct harness_msg *m = harness_sub_get(s, i);

		fprintf(stderr, "  %4zu %s %s %.400s%s\n", i, m->retain ? "R" : "-", m->topic,
		    m->payload, m->len > 400 ? "..." : "");
	}
	hlog("---- end of messages ----");
}

bool
harness_match_state(const struct harness_msg *m, const void *state)
{
	const char *st = harness_json_str(m->json, "state");

	return st != NULL && strcmp(st, state) == 0;
}

bool
harness_match_sensor(const struct harness_msg *m, const void *sensor)
{
	json_object *r = harness_json_get(m->json, "readings");

	if (r == NULL || !json_object_is_type(r, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(r); i++) {
		const char *id = harness_json_str(json_object_array_get_idx(r, i), "sensor");

		if (id != NULL && strcmp(id, sensor) == 0)
			return true;
	}
	return false;
}

bool
harness_match_seq_above(const struct harness_msg *m, const void *seq)
{
	return m->seq > *(const int64_t *)seq;
}

bool
harness_match_start_from(const struct harness_msg *m, const void *ms)
{
	int64_t start;

	return harness_json_int(m->json, "start", &start) && start >= *(const int64_t *)ms;
}

/* --- JSON --------------------------------------------------------------- */

json_object *
harness_json_get(json_object *obj, const char *key)
{
	json_object *v;

	if (obj == NULL || !json_object_is_type(obj, json_type_object))
		return NULL;
	return json_object_object_get_ex(obj, key, &v) ? v : NULL;
}

const char *
harness_json_str(json_object *obj, const char *key)
{
	json_object *v = harness_json_get(obj, key);

	return v != NULL && json_object_is_type(v, json_type_string) ?
	    json_object_get_string(v) : NULL;
}

bool
harness_json_int(json_object *obj, const char *key, int64_t *out)
{
	json_object *v = harness_json_get(obj, key);

	if (v == NULL || !json_object_is_type(v, json_type_int))
		return false;
	*out = json_object_get_int64(v);
	return true;
}

bool
harness_json_num(json_object *obj, const char *key, double *out)
{
	json_object *v = harness_json_get(obj, key);

	if (v == NULL || (!json_object_is_type(v, json_type_int) &&
	    !json_object_is_type(v, json_type_double)))
		return false;
	*out = json_object_get_double(v);
	return true;
}

double
harness_reading_stat(const struct harness_msg *m, const char *sensor, const char *quantity,
    const char *stat)
{
	json_object *r = harness_json_get(m->json, "readings");
	double v;

	for (size_t i = 0; r != NULL && i < json_object_array_length(r); i++) {
		json_object *e = json_object_array_get_idx(r, i);
		const char *s = harness_json_str(e, "sensor"), *q = harness_json_str(e, "quantity");

		if (s != NULL && strcmp(s, sensor) == 0 &&
		    (quantity == NULL || (q != NULL && strcmp(q, quantity) == 0)) &&
		    harness_json_num(e, stat, &v))
			return v;
	}
	return NAN;
}

/* --- the test's frame --------------------------------------------------- */

static const char *
env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : fallback;
}

static int
setup(void **state, bool broker)
{
	struct harness *h = xmalloc(sizeof(*h));
	const char *tmp = env_or("TMPDIR", "/tmp");
	char *tmpl;

	memset(h, 0, sizeof(*h));
	*state = h;
	signal(SIGPIPE, SIG_IGN);
	lib_init();
	h->top = env_or("COLDGATE_TOP", ".");
	h->coldgated = getenv("COLDGATED");
	h->coldgatectl = getenv("COLDGATECTL");
	if (h->coldgated == NULL || h->coldgatectl == NULL) {
		static char d[PATH_MAX], c[PATH_MAX];

		snprintf(d, sizeof(d), "%s/build/coldgated", h->top);
		snprintf(c, sizeof(c), "%s/build/coldgatectl", h->top);
		if (h->coldgated == NULL)
			h->coldgated = d;
		if (h->coldgatectl == NULL)
			h->coldgatectl = c;
	}
	if (access(h->coldgated, X_OK) != 0) {
		hlog("COLDGATED=%s: not an executable (run through make integration)", h->coldgated);
		return -1;
	}
	tmpl = xasprintf("%s/coldgate-it.XXXXXX", tmp);
	if (mkdtemp(tmpl) == NULL) {
		hlog("mkdtemp %s: %s", tmpl, strerror(errno));
		free(tmpl);
		return -1;
	}
	h->dir = tmpl;
	h->state_dir = harness_path(h, "state");
	h->store = harness_path(h, "state/coldgate.db");
	h->log = harness_path(h, "coldgated.log");
	if (broker && harness_broker_start(h) != 0)
		return -1;	/* cmocka still calls teardown */
	return 0;
}

int
harness_setup(void **state)
{
	return setup(state, true);
}

int
harness_setup_nobroker(void **state)
{
	return setup(state, false);
}

void
harness_pass(struct harness *h)
{
	h->passed = true;
}

int
harness_teardown(void **state)
{
	struct harness *h = *state;
	bool keep;

	if (h == NULL)
		return 0;
	if (h->daemon.pid != 0) {
		int rc = harness_daemon_stop(h);

		if (h->passed && rc != 0)
			hlog("coldgated exited with status %d at teardown", rc);
	}
	keep = !h->passed || getenv("HARNESS_KEEP") != NULL;
	if (keep && h->dir != NULL) {
		hlog("%s; its files are kept in %s", h->passed ? "HARNESS_KEEP is set" :
		    "the test failed", h->dir);
		if (harness_exists(h->log))
			print_tail("coldgated log", h->log, 150);
		for (int i = 0; i < MAX_SUBS; i++)
			if (subs[i] != NULL && subs[i]->h == h)
				harness_sub_dump(subs[i], 60);
		if (h->broker.log != NULL)
			print_tail("mosquitto log", h->broker.log, 30);
	}
	for (int i = 0; i < MAX_SUBS; i++)
		if (subs[i] != NULL && subs[i]->h == h)
			harness_sub_stop(subs[i]);
	harness_broker_stop(h);
	if (!keep && h->dir != NULL)
		rm_tree(h->dir);
	free(h->broker.dir);
	free(h->broker.conf);
	free(h->broker.log);
	free(h->dir);
	free(h->state_dir);
	free(h->store);
	free(h->log);
	free(h);
	*state = NULL;
	return 0;
}
