/*
 * coldgatectl: the operator's view of a gateway (SPEC §2).  It reads the
 * daemon's store through a read-only connection, so it works whether or not
 * coldgated is running and never disturbs it: WAL readers do not block the
 * writer.
 *
 * Exit status: 0 done, 1 the store could not be read, 2 usage or
 * configuration error; status: 3 when coldgated is not running.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "alarm.h"
#include "audit.h"
#include "cmd.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "payload.h"
#include "quantity.h"
#include "sensor.h"
#include "statedir.h"
#include "store.h"

#ifndef COLDGATE_VERSION
#define COLDGATE_VERSION "0.1"
#endif

#define EXIT_STORE	1
#define EXIT_USAGE	2
#define EXIT_NOT_RUNNING 3	/* status: no coldgated holds the state directory */


static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: coldgatectl [-c FILE] status [--json]\n"
	    "       coldgatectl [-c FILE] readings [--sensor ID] [--since T] [--until T]"
	    " [--format csv|json]\n"
	    "       coldgatectl [-c FILE] audit [verify]\n"
	    "       coldgatectl [-c FILE] alarms [--all]\n"
	    "       coldgatectl [-c FILE] ack ALARM_ID [--by NAME]\n"
	    "       coldgatectl [-c FILE] export --since T --until T [--zone ID]\n"
	    "                   [--what readings,alarms,acks,audit]    (CSV for food-safety records)\n"
	    "       coldgatectl [-c FILE] sensors [--scan [--sysfs-root DIR]]\n"
	    "  -c FILE   configuration; default %s\n"
	    "  T         epoch seconds, 2026-11-29, 2026-11-29T10:00[:SS] (local time),\n"
	    "            or relative to now: -30s, -30m, -2h, -7d\n",
	    CONFIG_DEFAULT_PATH);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ISO 8601 local time with its UTC offset, e.g. 2026-11-29T10:00:05+08:00. */
static const char *
iso_time(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	struct tm tm;
	char off[8];

	if (localtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm) == 0 ||
	    strftime(off, sizeof(off), "%z", &tm) == 0) {
		snprintf(buf, len, "?");
		return buf;
	}
	/* strftime gives +0800; RFC 3339 wants +08:00. */
	if (strlen(off) == 5)
		snprintf(buf + strlen(buf), len - strlen(buf), "%.3s:%s", off, off + 3);
	return buf;
}

static const char *
age(int64_t ms, char *buf, size_t len)
{
	int64_t s = ms / 1000;

	if (s < 0)
		snprintf(buf, len, "in the future");
	else if (s < 60)
		snprintf(buf, len, "%" PRId64 "s ago", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRId64 "m %" PRId64 "s ago", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRId64 "h %" PRId64 "m ago", s / 3600, s / 60 % 60);
	else
		snprintf(buf, len, "%" PRId64 "d %" PRId64 "h ago", s / 86400, s / 3600 % 24);
	return buf;
}

static const char *
mib(int64_t bytes, char *buf, size_t len)
{
	if (bytes < 1 << 20)
		snprintf(buf, len, "%.1f KiB", (double)bytes / (1 << 10));
	else
		snprintf(buf, len, "%.1f MiB", (double)bytes / (1 << 20));
	return buf;
}

/*
 * A time argument, to epoch ms.  Calendar forms are local time, as an
 * operator in the cold room reads the clock; a trailing Z means UTC.
 */
static int
parse_time(const char *s, int64_t now, int64_t *out)
{
	static const char *const formats[] = {
		"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M",
		"%Y-%m-%d", NULL,
	};
	char *end;
	long long v;

	if (*s == '\0')
		return -EINVAL;
	if (*s == '-' && s[1] >= '0' && s[1] <= '9') {
		int64_t unit;

		errno = 0;
		v = strtoll(s + 1, &end, 10);
		if (errno != 0 || end[0] == '\0' || end[1] != '\0')
			return -EINVAL;
		switch (*end) {
		case 's': unit = 1000; break;
		case 'm': unit = 60 * 1000; break;
		case 'h': unit = 3600 * 1000; break;
		case 'd': unit = 86400 * 1000; break;
		default: return -EINVAL;
		}
		if (v > INT64_MAX / unit / 2)
			return -ERANGE;
		*out = now - v * unit;
		return 0;
	}
	if (strcmp(s, "now") == 0) {
		*out = now;
		return 0;
	}
	if (strspn(s, "0123456789") == strlen(s)) {
		errno = 0;
		v = strtoll(s, &end, 10);
		if (errno != 0 || v > INT64_MAX / 1000)
			return -ERANGE;
		*out = (int64_t)v * 1000;
		return 0;
	}
	for (int i = 0; formats[i] != NULL; i++) {
		struct tm tm;
		bool utc = false;
		time_t t;

		memset(&tm, 0, sizeof(tm));
		if ((end = strptime(s, formats[i], &tm)) == NULL)
			continue;
		if (end[0] == 'Z' && end[1] == '\0' && i < 4)
			utc = true;
		else if (*end != '\0')
			continue;
		tm.tm_isdst = -1;
		if ((t = utc ? timegm(&tm) : mktime(&tm)) == (time_t)-1)
			return -ERANGE;
		*out = (int64_t)t * 1000;
		return 0;
	}
	return -EINVAL;
}

/* --since / --until: parse_time, or say what a time may look like. */
static int
time_option(const char *name, const char *arg, int64_t now, int64_t *out)
{
	if (parse_time(arg, now, out) == 0)
		return 0;
	fprintf(stderr, "coldgatectl: --%s '%s' is not a time: use epoch seconds, 2026-11-29, "
	    "2026-11-29T10:00[:SS] (local time), or -30s, -30m, -2h, -7d\n", name, arg);
	return -EINVAL;
}

static struct config *
load_config(const char *path)
{
	struct config *c;
	char *errors = NULL;

	if ((c = config_load(path, &errors)) == NULL) {
		fprintf(stderr, "%s", errors ? errors : "coldgatectl: cannot load the configuration\n");
		if (errors != NULL && errors[0] != '\0' && errors[strlen(errors) - 1] != '\n')
			fputc('\n', stderr);
		free(errors);
		exit(EXIT_USAGE);
	}
	return c;
}

/* Where a sensor is attached, as `coldgatectl sensors` lists it. */
static const char *
sensor_where(const struct sensor_cfg *s)
{
	if (sensor_device(s) != NULL)
		return sensor_device(s);
	if (s->kind == SENSOR_MODBUS && s->modbus.host != NULL)
		return s->modbus.host;
	if (s->kind == SENSOR_GPIO && s->gpio.chip != NULL)
		return s->gpio.chip;
	return "";
}

/*
 * sensors: the configured sensors, one line each; --scan: what is
 * attached (each driver looks in its own way: 1-Wire ids, IIO and hwmon
 * devices under the sysfs root, I2C addresses and Modbus units on the
 * buses the configuration names) and a configuration snippet for it.
 * A scan works without a configuration file: on a Pi being set up there
 * is none yet.
 */
static int
cmd_sensors(const char *path, bool path_given, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "scan", no_argument, NULL, 's' },
		{ "sysfs-root", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct config blank = { 0 }, *c = NULL;
	char *root = NULL;		/* argv's: stands in for the config's own while scanning */
	char *saved_root;
	bool scan = false;
	int ch, found = 0;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			scan = true;
			break;
		case 'r':
			root = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc || (root != NULL && !scan)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (path_given || access(path, F_OK) == 0 || !scan)
		c = load_config(path);
	if (!scan) {
		for (size_t i = 0; i < c->nsensors; i++) {
			const struct sensor_cfg *s = &c->sensors[i];

			printf("%-20s %-16s %-12s %s\n", s->id, s->zone, s->driver, sensor_where(s));
		}
		config_free(c);
		return 0;
	}
	if (c == NULL) {
		blank.gateway.sysfs_root = (char *)"/sys";
		c = &blank;
	}
	saved_root = c->gateway.sysfs_root;
	if (root != NULL)
		c->gateway.sysfs_root = root;
	printf("# coldgate sensor scan, sysfs root %s\n", c->gateway.sysfs_root);
	for (size_t i = 0; sensor_driver_at(i) != NULL; i++) {
		const struct sensor_driver *drv = sensor_driver_at(i);
		int n;

		if (drv->scan == NULL)
			continue;
		printf("\n# --- %s\n", drv->name);
		fflush(stdout);
		if ((n = drv->scan(c, stdout)) < 0)
			printf("# %s: scan failed: %s\n", drv->name, strerror(-n));
		else
			found += n;
	}
	printf("\n# %d device%s found.  Copy the lines you want into sensors = ( ... ) in\n"
	    "# the configuration, give each an id and its zone (no comma after the\n"
	    "# last entry), then check it with coldgated --check-config.\n",
	    found, found == 1 ? "" : "s");
	/* The config's own strings must not be freed by the blank stand-in. */
	if (c != &blank) {
		c->gateway.sysfs_root = saved_root;
		config_free(c);
	}
	return ferror(stdout) ? EXIT_STORE : 0;
}

static struct store *
open_store(const struct config *c)
{
	struct store_opts o = {
		.path = c->storage.path,
		.sync_full = c->storage.sync == STORE_SYNC_FULL,
		.max_size_mb = c->storage.max_size_mb,
		.retain_days = c->storage.retain_days,
	};
	struct store *s;
	int err;

	if ((err = store_open(&s, &o, true)) < 0) {
		fprintf(stderr, "coldgatectl: cannot open the store %s: %s\n", o.path,
		    err == -EBADMSG ? "not a coldgate store, or corrupt" :
		    err == -EPROTO ? "unsupported schema version" : strerror(-err));
		exit(EXIT_STORE);
	}
	return s;
}

static int
finish_output(void)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "coldgatectl: writing the output: %s\n", strerror(errno));
		return EXIT_STORE;
	}
	return 0;
}

/* ---- status ---- */

/*
 * The daemon leaves "connected", "disconnected" or "stopped", possibly
 * followed by " since <epoch ms>"; show that time readably.
 */
static void
describe_mqtt(const char *state, int64_t now, char *buf, size_t len)
{
	const char *since = strstr(state, " since ");
	char when[40], ago[40], *end;
	long long ms;

	if (since != NULL) {
		errno = 0;
		ms = strtoll(since + 7, &end, 10);
		if (errno == 0 && *end == '\0' && end != since + 7) {
			snprintf(buf, len, "%.*s since %s (%s)", (int)(since - state), state,
			    iso_time(ms, when, sizeof(when)), age(now - ms, ago, sizeof(ago)));
			return;
		}
	}
	snprintf(buf, len, "%s", state);
}

static int
cmd_status(const struct config *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct store_stats st;
	struct store *s;
	struct jbuf jb = { 0 };
	char mqtt[128], mqttdesc[256], a[64], b[64], when[40], daemon[64];
	bool json = false, have_mqtt, running;
	int64_t now = now_ms();
	pid_t pid;
	int ch, err;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "coldgatectl: status: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}

	/* The daemon holds its state directory's lock for as long as it runs. */
	running = statedir_holder(c->gateway.state_dir, &pid) == 1;
	if (running && pid > 0)
		snprintf(daemon, sizeof(daemon), "running (pid %ld)", (long)pid);
	else
		snprintf(daemon, sizeof(daemon), "%s", running ? "running" : "not running");
	if (!running && access(c->storage.path, F_OK) < 0 && errno == ENOENT) {
		if (json)
			printf("{\"gateway\":\"%s\",\"running\":false}\n", c->gateway.id);
		else
			printf("coldgated:      not running, and has never run here (no store %s)\n",
			    c->storage.path);
		return EXIT_NOT_RUNNING;
	}
	s = open_store(c);
	if ((err = store_stats(s, &st)) < 0) {
		fprintf(stderr, "coldgatectl: reading the store %s: %s\n", c->storage.path,
		    strerror(-err));
		store_close(s);
		return EXIT_STORE;
	}
	err = store_get_state(s, "mqtt", mqtt, sizeof(mqtt));
	have_mqtt = err == 0;
	store_close(s);
	if (err < 0 && err != -ENOENT) {
		fprintf(stderr, "coldgatectl: reading the store %s: %s\n", c->storage.path,
		    strerror(-err));
		return EXIT_STORE;
	}

	if (json) {
		jb_begin(&jb, '{');
		jb_str(&jb, "gateway", c->gateway.id);
		jb_key(&jb, "running");
		jb_vbool(&jb, running);
		if (running && pid > 0)
			jb_int(&jb, "pid", pid);
		jb_str(&jb, "store", c->storage.path);
		jb_int(&jb, "file_bytes", st.file_bytes);
		jb_int(&jb, "used_bytes", st.used_bytes);
		jb_int(&jb, "max_bytes", (int64_t)c->storage.max_size_mb << 20);
		jb_int(&jb, "last_seq", st.last_seq);
		jb_int(&jb, "pending", st.pending);
		/* json.h has no null; a non-finite number prints as one. */
		jb_key(&jb, "oldest_pending_ms");
		if (st.pending > 0)
			jb_vint(&jb, st.oldest_pending_ms);
		else
			jb_vnum(&jb, NAN);
		jb_int(&jb, "readings", st.readings);
		jb_key(&jb, "mqtt");
		if (have_mqtt && running)
			jb_vstr(&jb, mqtt);
		else
			jb_vnum(&jb, NAN);
		jb_end(&jb, '}');
		if (jb_text(&jb) == NULL) {
			fprintf(stderr, "coldgatectl: out of memory\n");
			return EXIT_STORE;
		}
		printf("%s\n", jb_text(&jb));
		jb_free(&jb);
		err = finish_output();
		return err != 0 ? err : running ? 0 : EXIT_NOT_RUNNING;
	}

	printf("gateway:        %s\n", c->gateway.id);
	printf("coldgated:      %s\n", daemon);
	printf("store:          %s\n", c->storage.path);
	printf("size:           %s on disk (with WAL), %s in use of %d MiB\n",
	    mib(st.file_bytes, a, sizeof(a)), mib(st.used_bytes, b, sizeof(b)),
	    c->storage.max_size_mb);
	printf("last seq:       %" PRId64 "\n", st.last_seq);
	if (st.pending > 0)
		printf("outbox:         %" PRId64 " pending, oldest from %s (%s)\n", st.pending,
		    iso_time(st.oldest_pending_ms, when, sizeof(when)),
		    age(now - st.oldest_pending_ms, a, sizeof(a)));
	else
		printf("outbox:         0 pending\n");
	printf("readings kept:  %" PRId64 "\n", st.readings);
	/* What a stopped daemon last recorded says nothing about now. */
	if (running && have_mqtt)
		describe_mqtt(mqtt, now, mqttdesc, sizeof(mqttdesc));
	printf("mqtt:           %s\n", !running ? "- (coldgated is not running)" :
	    have_mqtt ? mqttdesc : "unknown (coldgated has not recorded it yet)");
	err = finish_output();
	return err != 0 ? err : running ? 0 : EXIT_NOT_RUNNING;
}

/* ---- readings ---- */

struct out {
	bool		 json;
	bool		 started;	/* the CSV header or '[' is out */
	int64_t		 n;
	struct jbuf	 jb;
};

/* Only once the store has answered, so an error leaves stdout empty. */
static void
print_start(struct out *o)
{
	if (o->started)
		return;
	o->started = true;
	if (o->json)
		printf("[");
	else
		printf("ts,time,sensor,zone,quantity,unit,value,quality\n");
}

static int
print_reading(const char *sensor, const char *zone, int quantity, double value, int64_t ts,
    int flags, void *arg)
{
	struct out *o = arg;
	char when[40];

	int ql = READING_QUALITY(flags);
	/* A read that failed has no value: only a refused value (range, spike) is shown. */
	bool has_value = ql == QUALITY_OK || ql == QUALITY_RANGE || ql == QUALITY_SPIKE;

	print_start(o);
	iso_time(ts, when, sizeof(when));
	if (!o->json) {
		char num[40] = "";

		if (has_value)
			snprintf(num, sizeof(num), "%.15g", value);
		printf("%" PRId64 ",%s,%s,%s,%s,%s,%s,%s\n", ts, when, sensor, zone,
		    quantity_name(quantity), quantity_unit(quantity), num,
		    quality_name((enum quality)ql));
	} else {
		jb_reset(&o->jb);
		jb_begin(&o->jb, '{');
		jb_int(&o->jb, "ts", ts);
		jb_str(&o->jb, "time", when);
		jb_str(&o->jb, "sensor", sensor);
		jb_str(&o->jb, "zone", zone);
		jb_str(&o->jb, "quantity", quantity_name(quantity));
		jb_str(&o->jb, "unit", quantity_unit(quantity));
		if (has_value)
			jb_num(&o->jb, "value", value);
		else
			jb_num(&o->jb, "value", NAN);	/* null */
		jb_str(&o->jb, "quality", quality_name((enum quality)ql));
		if (flags & READING_CLOCK_BAD) {
			jb_key(&o->jb, "clock_ok");
			jb_vbool(&o->jb, false);
		}
		jb_end(&o->jb, '}');
		if (jb_text(&o->jb) == NULL)
			return -1;
		printf("%s\n  %s", o->n == 0 ? "" : ",", jb_text(&o->jb));
	}
	o->n++;
	return ferror(stdout) ? -1 : 0;
}

static int
cmd_readings(const struct config *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "sensor", required_argument, NULL, 's' },
		{ "since", required_argument, NULL, 'f' },
		{ "until", required_argument, NULL, 'u' },
		{ "format", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sensor = NULL;
	int64_t since = INT64_MIN, until = INT64_MAX, now = now_ms();
	struct out o = { 0 };
	struct store *s;
	int ch, n;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			sensor = optarg;
			if (!config_valid_id(sensor)) {
				fprintf(stderr, "coldgatectl: --sensor '%s' is not a sensor id "
				    "([A-Za-z0-9_-], 1 to 64 characters)\n", sensor);
				return EXIT_USAGE;
			}
			break;
		case 'f':
		case 'u':
			if (time_option(ch == 'f' ? "since" : "until", optarg, now,
			    ch == 'f' ? &since : &until) < 0)
				return EXIT_USAGE;
			break;
		case 'F':
			if (strcmp(optarg, "csv") == 0)
				o.json = false;
			else if (strcmp(optarg, "json") == 0)
				o.json = true;
			else {
				fprintf(stderr, "coldgatectl: --format '%s': use csv or json\n",
				    optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "coldgatectl: readings: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (since >= until) {
		fprintf(stderr, "coldgatectl: --since must be before --until\n");
		return EXIT_USAGE;
	}

	s = open_store(c);
	n = store_readings(s, sensor, since, until, print_reading, &o);
	store_close(s);
	jb_free(&o.jb);
	if (n == -ENOENT) {
		/* Configured but never read yet is an empty answer, not an error. */
		if (config_sensor_index(c, sensor) < 0) {
			fprintf(stderr, "coldgatectl: no sensor '%s' in the store or in %s\n",
			    sensor, c->path);
			return EXIT_USAGE;
		}
		n = 0;
	}
	if (n < 0 && !ferror(stdout)) {
		fprintf(stderr, "coldgatectl: reading the store %s: %s\n", c->storage.path,
		    strerror(-n));
		return EXIT_STORE;
	}
	print_start(&o);
	if (o.json)
		printf("%s]\n", o.n > 0 ? "\n" : "");
	return finish_output();
}

struct audit_walk {
	struct audit_check	 check;
	bool			 list;
	int64_t			 rows;
	int64_t			 last_ts;
	uint8_t			 head[AUDIT_HASH_LEN];
};

static int
audit_row_cb(const struct audit_row *r, void *arg)
{
	struct audit_walk *w = arg;
	char when[40];

	if (w->list)
		printf("%6" PRId64 "  %s  %-10s %s\n", r->n, iso_time(r->ts, when, sizeof(when)),
		    r->kind, r->detail);
	w->rows++;
	w->last_ts = r->ts;
	memcpy(w->head, r->hash, AUDIT_HASH_LEN);
	/* Listing shows every row; verifying stops at the first bad one. */
	return audit_check_row(&w->check, r) || w->list ? 0 : 1;
}

/*
 * audit: list the trail; audit verify: check the hash chain and name the
 * first row that was edited, deleted or moved.  Exit 1 when it is broken.
 */
static int
cmd_audit(const struct config *c, int argc, char **argv)
{
	struct audit_walk w = { .list = true };
	struct store *s;
	char hex[2 * AUDIT_HASH_LEN + 1], when[40];
	int err;

	if (argc > 2 || (argc == 2 && strcmp(argv[1], "verify") != 0)) {
		fprintf(stderr, "coldgatectl: audit: unknown argument '%s'\n", argv[1]);
		return EXIT_USAGE;
	}
	w.list = argc == 1;
	audit_check_init(&w.check);
	if ((s = open_store(c)) == NULL)
		return EXIT_STORE;
	err = store_audit_each(s, 1, audit_row_cb, &w);
	store_close(s);
	if (err < 0) {
		fprintf(stderr, "coldgatectl: reading the audit trail in %s: %s\n",
		    c->storage.path, strerror(-err));
		return EXIT_STORE;
	}
	if (w.check.bad_n != 0) {
		printf("audit trail BROKEN at row %" PRId64 ": %s\n", w.check.bad_n, w.check.why);
		return 1;
	}
	audit_hex(w.head, hex);
	if (w.rows == 0)
		printf("audit trail: empty\n");
	else
		printf("audit trail: %" PRId64 " rows, chain intact; last row %s, head %s\n",
		    w.rows, iso_time(w.last_ts, when, sizeof(when)), hex);
	return 0;
}

struct alarm_list {
	const struct config	*c;
	bool			 all;
	int			 shown;
};

/* A stored alarm's record; false (said on stderr) for one that cannot be read. */
static bool
stored_alarm(const struct store_alarm *sa, struct alarm_record *rec)
{
	const char *why;

	if (alarm_record_decode(sa->id, sa->data, sa->len, rec, &why) == 0)
		return true;
	fprintf(stderr, "coldgatectl: alarm %s: stored record %s; skipped\n", sa->id, why);
	return false;
}

static int
alarm_list_cb(const struct store_alarm *sa, void *arg)
{
	struct alarm_list *l = arg;
	struct alarm_record rec;
	const struct alarm_record *r = &rec;
	char since[40], acked[40];
	const char *zone = "gateway";

	if (!stored_alarm(sa, &rec) || (!l->all && r->state == ALARM_CLEARED))
		return 0;
	if (r->zone >= 0 && (size_t)r->zone < l->c->nzones)
		zone = l->c->zones[r->zone].name;
	if (l->shown++ == 0)
		printf("%-8s %-9s %-40s %s\n", "STATE", "SEVERITY", "ALARM", "ZONE");
	printf("%-8s %-9s %-40s %s\n", alarm_state_name(r->state),
	    alarm_severity_name(r->severity), r->id, zone);
	printf("         %s %.3f, limit %.3f, since %s\n", alarm_kind_name(r->kind), r->value,
	    r->limit, r->since > 0 ? iso_time(r->since, since, sizeof(since)) : "-");
	if (r->acked_by[0] != '\0' || r->acked_at > 0)
		printf("         acknowledged by %s at %s\n", r->acked_by[0] ? r->acked_by : "(no name)",
		    iso_time(r->acked_at, acked, sizeof(acked)));
	return 0;
}

/* alarms [--all]: the active and acknowledged alarms (with --all, cleared ones too). */
static int
cmd_alarms(const struct config *c, int argc, char **argv)
{
	struct alarm_list l = { .c = c };
	struct store *s;
	int err;

	if (argc == 2 && strcmp(argv[1], "--all") == 0)
		l.all = true;
	else if (argc != 1) {
		fprintf(stderr, "coldgatectl: alarms: unknown argument '%s'\n", argv[1]);
		return EXIT_USAGE;
	}
	if ((s = open_store(c)) == NULL)
		return EXIT_STORE;
	err = store_alarm_each(s, alarm_list_cb, &l);
	store_close(s);
	if (err < 0) {
		fprintf(stderr, "coldgatectl: reading alarms in %s: %s\n", c->storage.path,
		    strerror(-err));
		return EXIT_STORE;
	}
	if (l.shown == 0)
		printf(l.all ? "no alarms recorded\n" : "no active alarms\n");
	return 0;
}

/* Who is acknowledging: --by, else the user behind sudo, else the login. */
static const char *
ack_name(const char *by)
{
	const char *u;
	struct passwd *pw;

	if (by != NULL)
		return by;
	if ((u = getenv("SUDO_USER")) != NULL && *u != '\0')
		return u;
	if ((pw = getpwuid(getuid())) != NULL)
		return pw->pw_name;
	return "";
}

/*
 * ack ALARM_ID [--by NAME]: through the daemon's control socket, which
 * does what an MQTT cmd/ack does and answers the same way.
 */
static int
cmd_ack(const struct config *c, int argc, char **argv)
{
	const char *id = NULL, *by = NULL;
	struct sockaddr_un sun = { .sun_family = AF_UNIX }, me = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	struct jbuf jb = { 0 };
	char msg[CMD_MAX_BYTES + 8], reply[2048], err[256];
	ssize_t n;
	bool ok;
	int fd, len;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--by") == 0 && i + 1 < argc)
			by = argv[++i];
		else if (id == NULL && argv[i][0] != '-')
			id = argv[i];
		else {
			fprintf(stderr, "coldgatectl: ack: unexpected argument '%s'\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (id == NULL) {
		fprintf(stderr, "coldgatectl: ack: which alarm? (see coldgatectl alarms)\n");
		return EXIT_USAGE;
	}
	payload_ack(&jb, id, ack_name(by));
	len = snprintf(msg, sizeof(msg), "ack\n%s", jb_text(&jb) ? jb_text(&jb) : "");
	jb_free(&jb);
	if (len >= (int)sizeof(msg)) {
		fprintf(stderr, "coldgatectl: ack: the name is too long\n");
		return EXIT_USAGE;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/control.sock", c->gateway.state_dir);
	/* An autobound address of our own, so the daemon can answer. */
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&me, sizeof(sa_family_t)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    send(fd, msg, (size_t)len, 0) < 0) {
		fprintf(stderr, "coldgatectl: ack: cannot reach coldgated at %s: %s\n",
		    sun.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_STORE;
	}
	n = recv(fd, reply, sizeof(reply) - 1, 0);
	close(fd);
	if (n < 0) {
		fprintf(stderr, "coldgatectl: ack: no answer from coldgated: %s\n", strerror(errno));
		return EXIT_STORE;
	}
	reply[n] = '\0';
	if (payload_cmd_result_parse(reply, (size_t)n, &ok, err, sizeof(err)) < 0) {
		fprintf(stderr, "coldgatectl: ack: unexpected answer: %s\n", reply);
		return EXIT_STORE;
	}
	if (!ok) {
		fprintf(stderr, "coldgatectl: ack %s: %s\n", id, err);
		return 1;
	}
	printf("%s acknowledged by %s\n", id, ack_name(by));
	return 0;
}

/* ---- export ---- */

/*
 * export --since T --until T [--zone ID] [--what readings,alarms,acks,audit]:
 * one CSV for food-safety and cold-chain audits, every row in time order,
 * a `record` column saying what it is.  UTF-8 with a BOM and CRLF line ends,
 * so a spreadsheet on the operators' Windows PCs shows the Chinese zone
 * names; quoted per RFC 4180.
 *
 * The rows: `reading` (detail "clock not synchronised" when it was taken
 * before the clock was); `alarm`, a state change from the audit trail
 * (alarm, state, value, limit, by); `ack` (alarm, by); `event`, any other
 * audit row (start, reload, stop, clock_sync, dropped), its kind in
 * `state`.  Rows from the audit trail carry its JSON in `detail`, as
 * recorded.  An alarm's zone and sensor come from its record in the alarms
 * table.  --zone keeps that zone's readings, alarms and acks, and the
 * gateway-wide rows: events and the gateway's own alarms.
 *
 * Readings are streamed (a store holds up to storage.max_size_mb of them);
 * the audit rows of the period are few and are read first, then merged in
 * as the readings pass their time.
 */

#define EXPORT_READINGS	0x01
#define EXPORT_ALARMS	0x02	/* audit rows "alarm": state changes */
#define EXPORT_ACKS	0x04	/* audit rows "ack" */
#define EXPORT_AUDIT	0x08	/* the other audit rows (start, reload, stop, ...) */
#define EXPORT_ALL	0x0f

enum csv_col {
	COL_RECORD, COL_TIME, COL_TS, COL_ZONE, COL_ZONE_NAME, COL_SENSOR, COL_QUANTITY,
	COL_UNIT, COL_VALUE, COL_ALARM, COL_STATE, COL_LIMIT, COL_BY, COL_DETAIL, COL_COUNT
};

static const char export_header[] =
    "record,time,ts,zone,zone_name,sensor,quantity,unit,value,alarm,state,limit,by,detail";

/* What the alarms table says of an alarm id. */
struct export_alarm {
	char		 id[ALARM_ID_MAX + 1];
	enum alarm_kind	 kind;
	int		 zone, sensor;	/* indexes in the configuration at the time */
};

struct export_row {
	int64_t		 ts;
	char		*kind;
	char		*detail;
};

struct export {
	const struct config *c;
	const char	*zone;		/* --zone, or NULL */
	unsigned	 what;
	bool		 started;	/* the BOM and the header are out */
	bool		 oom;
	struct export_alarm *alarms;
	size_t		 nalarms, alarmcap;
	struct export_row *rows;	/* the audit rows of the period, by ts */
	size_t		 nrows, rowcap, next;
	const char	*zid_cache;	/* the last reading's zone and its name */
	const char	*zname_cache;
};

/* Numbers as everywhere in coldgate: up to three decimals, no trailing zeros. */
static const char *
num3(double v, char *buf, size_t len)
{
	int n;

	if (!isfinite(v)) {
		buf[0] = '\0';
		return buf;
	}
	if (fabs(v) >= 1e12) {
		snprintf(buf, len, "%.10g", v);
		return buf;
	}
	n = snprintf(buf, len, "%.3f", v);
	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
	if (strcmp(buf, "-0") == 0)
		snprintf(buf, len, "0");
	return buf;
}

/*
 * One field, RFC 4180: quoted when it holds a comma, a quote, CR or LF,
 * with its quotes doubled.  Free text (a zone's name, who acknowledged:
 * anyone allowed to publish cmd/ack chooses that) that a spreadsheet would
 * take for a formula (= + - @ first) gets a leading apostrophe, the usual
 * defence against CSV formula injection.
 */
static void
csv_field(const char *s, bool text)
{
	bool quote;
	const char *q;

	if (s == NULL || *s == '\0')
		return;
	quote = strpbrk(s, ",\"\r\n") != NULL;
	if (quote)
		putchar('"');
	if (text && strchr("=+-@\t\r", s[0]) != NULL)
		putchar('\'');
	if (!quote) {
		fputs(s, stdout);
		return;
	}
	while ((q = strchr(s, '"')) != NULL) {
		fwrite(s, 1, (size_t)(q - s) + 1, stdout);
		putchar('"');
		s = q + 1;
	}
	fputs(s, stdout);
	putchar('"');
}

static void
export_start(struct export *e)
{
	if (e->started)
		return;
	e->started = true;
	printf("\xEF\xBB\xBF%s\r\n", export_header);
}

static void
csv_row(struct export *e, const char *const f[COL_COUNT])
{
	export_start(e);
	for (int i = 0; i < COL_COUNT; i++) {
		if (i > 0)
			putchar(',');
		csv_field(f[i], i == COL_ZONE_NAME || i == COL_BY);
	}
	fputs("\r\n", stdout);
}

static const char *
export_zone_name(struct export *e, const char *zone)
{
	int z;

	if (e->zid_cache != NULL && strcmp(e->zid_cache, zone) == 0)
		return e->zname_cache;
	if ((z = config_zone_index(e->c, zone)) < 0)
		return "";
	e->zid_cache = e->c->zones[z].id;
	e->zname_cache = e->c->zones[z].name ? e->c->zones[z].name : e->c->zones[z].id;
	return e->zname_cache;
}

static int
export_alarm_cb(const struct store_alarm *sa, void *arg)
{
	struct export *e = arg;
	struct alarm_record rec;
	struct export_alarm *a;

	if (!stored_alarm(sa, &rec))
		return 0;
	if (e->nalarms == e->alarmcap) {
		size_t cap = e->alarmcap ? 2 * e->alarmcap : 64;
		void *p = realloc(e->alarms, cap * sizeof(*e->alarms));

		if (p == NULL) {
			e->oom = true;
			return 1;
		}
		e->alarms = p;
		e->alarmcap = cap;
	}
	a = &e->alarms[e->nalarms++];
	snprintf(a->id, sizeof(a->id), "%s", sa->id);
	a->kind = rec.kind;
	a->zone = rec.zone;
	a->sensor = rec.sensor;
	return 0;
}

static unsigned
export_row_what(const char *kind)
{
	switch (payload_audit_kind_of(kind)) {
	case PAYLOAD_AUDIT_ALARM:
		return EXPORT_ALARMS;
	case PAYLOAD_AUDIT_ACK:
		return EXPORT_ACKS;
	default:
		return EXPORT_AUDIT;
	}
}

static int
export_audit_cb(const struct audit_row *r, void *arg)
{
	struct export *e = arg;
	struct export_row *row;

	if ((export_row_what(r->kind) & e->what) == 0)
		return 0;
	if (e->nrows == e->rowcap) {
		size_t cap = e->rowcap ? 2 * e->rowcap : 64;
		void *p = realloc(e->rows, cap * sizeof(*e->rows));

		if (p == NULL) {
			e->oom = true;
			return 1;
		}
		e->rows = p;
		e->rowcap = cap;
	}
	row = &e->rows[e->nrows];
	row->ts = r->ts;
	row->kind = strdup(r->kind);
	row->detail = strdup(r->detail);
	if (row->kind == NULL || row->detail == NULL) {
		free(row->kind);
		free(row->detail);
		e->oom = true;
		return 1;
	}
	e->nrows++;
	return 0;
}

static const struct export_alarm *
export_alarm_find(const struct export *e, const char *id)
{
	for (size_t i = 0; i < e->nalarms; i++)
		if (strcmp(e->alarms[i].id, id) == 0)
			return &e->alarms[i];
	return NULL;
}

/* An audit row as a CSV row; rows of alarms in other zones are left out. */
static void
export_audit_row(struct export *e, const struct export_row *r)
{
	const char *f[COL_COUNT] = { 0 };
	const struct config *c = e->c;
	const struct export_alarm *a = NULL;
	struct payload_audit p;
	char when[40], ts[24], value[40], limit[40], why[96];
	unsigned what = export_row_what(r->kind);

	iso_time(r->ts, when, sizeof(when));
	snprintf(ts, sizeof(ts), "%" PRId64, r->ts);
	f[COL_TIME] = when;
	f[COL_TS] = ts;
	f[COL_DETAIL] = r->detail;
	if (what == EXPORT_AUDIT) {
		/* start, reload, stop, clock_sync, dropped: gateway-wide, in every export. */
		f[COL_RECORD] = "event";
		f[COL_STATE] = r->kind;
		csv_row(e, f);
		return;
	}
	f[COL_RECORD] = what == EXPORT_ALARMS ? "alarm" : "ack";
	if (payload_audit_parse(r->kind, r->detail, &p, why, sizeof(why)) < 0) {
		/* Still exported, as recorded: the detail column says what it was. */
		fprintf(stderr, "coldgatectl: export: the %s row of %s: %s\n", r->kind, when, why);
	} else if (what == EXPORT_ALARMS) {
		f[COL_ALARM] = p.alarm.id;
		f[COL_BY] = p.alarm.by;
		f[COL_STATE] = alarm_state_name(p.alarm.state);
		f[COL_VALUE] = num3(p.alarm.value, value, sizeof(value));
		f[COL_LIMIT] = num3(p.alarm.limit, limit, sizeof(limit));
	} else {
		f[COL_ALARM] = p.ack.id;
		f[COL_BY] = p.ack.by;
	}
	if (f[COL_ALARM] != NULL)
		a = export_alarm_find(e, f[COL_ALARM]);
	if (a != NULL && a->zone == ALARM_GATEWAY) {
		f[COL_ZONE] = "gateway";
	} else if (a != NULL && a->zone >= 0 && (size_t)a->zone < c->nzones) {
		f[COL_ZONE] = c->zones[a->zone].id;
		f[COL_ZONE_NAME] = c->zones[a->zone].name ? c->zones[a->zone].name :
		    c->zones[a->zone].id;
	}
	/* With --zone: that zone's alarms and the gateway's own (they bear on every zone). */
	if (e->zone != NULL && (f[COL_ZONE] == NULL ||
	    (strcmp(f[COL_ZONE], e->zone) != 0 && strcmp(f[COL_ZONE], "gateway") != 0)))
		return;
	/*
	 * The sensor, by its index at the time: only when the id still starts
	 * with that sensor's id, as every sensor alarm's id does.  A high or
	 * low alarm's value and limit are in the quantity's unit.
	 */
	if (a != NULL && a->sensor >= 0 && (size_t)a->sensor < c->nsensors) {
		const char *sid = c->sensors[a->sensor].id;
		size_t len = strlen(sid);

		if (strncmp(a->id, sid, len) == 0 && a->id[len] == '-') {
			f[COL_SENSOR] = sid;
			for (int q = 0; q < Q_COUNT && what == EXPORT_ALARMS &&
			    (a->kind == ALARM_HIGH || a->kind == ALARM_LOW); q++) {
				const char *qn = quantity_name(q);
				size_t ql = strlen(qn);

				if (strncmp(a->id + len + 1, qn, ql) == 0 && a->id[len + 1 + ql] == '-') {
					f[COL_QUANTITY] = qn;
					f[COL_UNIT] = quantity_unit(q);
					break;
				}
			}
		}
	}
	csv_row(e, f);
}

/*
 * The audit rows due before a reading at ts: those of the same ms too, so
 * a start comes before the first readings it took in that ms.
 */
static void
export_audit_until(struct export *e, int64_t ts)
{
	while (e->next < e->nrows && e->rows[e->next].ts <= ts)
		export_audit_row(e, &e->rows[e->next++]);
}

static int
export_reading(const char *sensor, const char *zone, int quantity, double value, int64_t ts,
    int flags, void *arg)
{
	struct export *e = arg;
	const char *f[COL_COUNT] = { 0 };
	char when[40], tsbuf[24], num[40], detail[80];
	int ql;

	export_audit_until(e, ts);
	iso_time(ts, when, sizeof(when));
	snprintf(tsbuf, sizeof(tsbuf), "%" PRId64, ts);
	f[COL_RECORD] = "reading";
	f[COL_TIME] = when;
	f[COL_TS] = tsbuf;
	f[COL_ZONE] = zone;
	f[COL_ZONE_NAME] = export_zone_name(e, zone);
	f[COL_SENSOR] = sensor;
	f[COL_QUANTITY] = quantity_name(quantity);
	f[COL_UNIT] = quantity_unit(quantity);
	ql = READING_QUALITY(flags);
	if (ql == QUALITY_OK || ql == QUALITY_RANGE || ql == QUALITY_SPIKE)
		f[COL_VALUE] = num3(value, num, sizeof(num));
	if (ql != QUALITY_OK) {
		snprintf(detail, sizeof(detail), "refused: %s%s", quality_name((enum quality)ql),
		    flags & READING_CLOCK_BAD ? "; clock not synchronised" : "");
		f[COL_DETAIL] = detail;
	} else if (flags & READING_CLOCK_BAD) {
		f[COL_DETAIL] = "clock not synchronised";
	}
	csv_row(e, f);
	return ferror(stdout) ? -1 : 0;
}

/* --what readings,alarms,acks,audit */
static int
parse_what(const char *arg, unsigned *out)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
		{ "readings", EXPORT_READINGS }, { "alarms", EXPORT_ALARMS },
		{ "acks", EXPORT_ACKS }, { "audit", EXPORT_AUDIT },
	};
	const char *p = arg;
	unsigned what = 0;

	for (;;) {
		size_t len = strcspn(p, ",");
		size_t i;

		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].name) == len && strncmp(p, names[i].name, len) == 0)
				break;
		if (i == sizeof(names) / sizeof(names[0])) {
			fprintf(stderr, "coldgatectl: export: --what '%.*s' is not one of readings, "
			    "alarms, acks, audit\n", (int)len, p);
			return -1;
		}
		what |= names[i].bit;
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	*out = what;
	return 0;
}

static void
export_free(struct export *e)
{
	for (size_t i = 0; i < e->nrows; i++) {
		free(e->rows[i].kind);
		free(e->rows[i].detail);
	}
	free(e->rows);
	free(e->alarms);
}

static int
cmd_export(const struct config *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "since", required_argument, NULL, 'f' },
		{ "until", required_argument, NULL, 'u' },
		{ "zone", required_argument, NULL, 'z' },
		{ "what", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct export e = { .c = c, .what = EXPORT_ALL };
	int64_t since = 0, until = 0, now = now_ms();
	bool have_since = false, have_until = false;
	struct store *s;
	int ch, err = 0, n = 0;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
		case 'u':
			if (time_option(ch == 'f' ? "since" : "until", optarg, now,
			    ch == 'f' ? &since : &until) < 0)
				return EXIT_USAGE;
			*(ch == 'f' ? &have_since : &have_until) = true;
			break;
		case 'z':
			if (config_zone_index(c, optarg) < 0) {
				fprintf(stderr, "coldgatectl: export: no zone '%s' in %s\n", optarg,
				    c->path);
				return EXIT_USAGE;
			}
			e.zone = optarg;
			break;
		case 'w':
			if (parse_what(optarg, &e.what) < 0)
				return EXIT_USAGE;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "coldgatectl: export: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (!have_since || !have_until) {
		fprintf(stderr, "coldgatectl: export: --since and --until are required: the "
		    "period the record covers, e.g. --since 2026-11-01 --until 2026-12-01\n");
		return EXIT_USAGE;
	}
	if (since >= until) {
		fprintf(stderr, "coldgatectl: --since must be before --until\n");
		return EXIT_USAGE;
	}

	s = open_store(c);
	/* The few rows first, so a store that cannot answer leaves stdout empty. */
	if ((e.what & (EXPORT_ALARMS | EXPORT_ACKS)) != 0)
		err = store_alarm_each(s, export_alarm_cb, &e);
	if (err == 0 && !e.oom && (e.what & ~EXPORT_READINGS) != 0)
		err = store_audit_range(s, since, until, export_audit_cb, &e);
	if (err == 0 && !e.oom && (e.what & EXPORT_READINGS) != 0)
		n = store_readings_zone(s, e.zone, since, until, export_reading, &e);
	store_close(s);
	if (e.oom) {
		fprintf(stderr, "coldgatectl: export: out of memory\n");
		export_free(&e);
		return EXIT_STORE;
	}
	if (err < 0 || (n < 0 && !ferror(stdout))) {
		fprintf(stderr, "coldgatectl: reading the store %s: %s\n", c->storage.path,
		    strerror(-(err < 0 ? err : n)));
		export_free(&e);
		return EXIT_STORE;
	}
	export_audit_until(&e, INT64_MAX);
	export_start(&e);
	export_free(&e);
	return finish_output();
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = CONFIG_DEFAULT_PATH, *cmd;
	struct config *c;
	bool path_given = false;
	int ch, rc;

	log_init(0);
	while ((ch = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			path_given = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("coldgatectl %s\n", COLDGATE_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[0];
	if (strcmp(cmd, "sensors") == 0)
		return cmd_sensors(path, path_given, argc, argv);
	if (strcmp(cmd, "status") != 0 && strcmp(cmd, "readings") != 0 &&
	    strcmp(cmd, "audit") != 0 && strcmp(cmd, "alarms") != 0 && strcmp(cmd, "ack") != 0 &&
	    strcmp(cmd, "export") != 0) {
		fprintf(stderr, "coldgatectl: unknown command '%s'\n", cmd);
		usage(stderr);
		return EXIT_USAGE;
	}

	c = load_config(path);
	if (strcmp(cmd, "status") == 0)
		rc = cmd_status(c, argc, argv);
	else if (strcmp(cmd, "audit") == 0)
		rc = cmd_audit(c, argc, argv);
	else if (strcmp(cmd, "alarms") == 0)
		rc = cmd_alarms(c, argc, argv);
	else if (strcmp(cmd, "ack") == 0)
		rc = cmd_ack(c, argc, argv);
	else if (strcmp(cmd, "export") == 0)
		rc = cmd_export(c, argc, argv);
	else
		rc = cmd_readings(c, argc, argv);
	config_free(c);
	return rc;
}
