/*
 * The configuration as a value (SPEC §3).  config_load() parses a libconfig
 * file into a fresh struct config and checks every setting in it before
 * anyone sees it: the daemon starts, or swaps a SIGHUP reload in, only with
 * a configuration that is wholly good.
 *
 * Errors are collected rather than stopping at the first one, so that an
 * operator fixes a file in one round instead of one error per restart.
 * Every error is one line "FILE:LINE: key: what is wrong", sorted by line.
 * Keys are written as dotted paths; entries of a list are named by their
 * 0-based index: "mqtt.port", "sensors[2].zone", "sensors[2].script[1]".
 * An error about a setting that is missing altogether names the line of the
 * group that should hold it, or no line when that group is missing too
 * ("FILE: gateway.id: missing").
 *
 * Relative file names: storage.path is relative to gateway.state_dir (the
 * header promises an absolute store path when state_dir is absolute); the
 * MQTT password and TLS files are relative to the directory of the
 * configuration file, as an operator editing /etc/coldgate/coldgate.cfg
 * expects "mqtt.password" to mean /etc/coldgate/mqtt.password.  So are
 * @include names, and an error in an included file names it that way
 * ("/etc/coldgate/zones.inc:3: ...").
 *
 * A sensor's keys beyond id, zone, driver, interval and spike_filter are
 * its driver's: each driver declares them, with their types, ranges and
 * defaults, in a table in its own file (config.h struct cfg_key, sensor.h
 * .keys), and what a table cannot say in hooks there.  So are an output's
 * beyond id, driver, role, severity and zones (output.h .keys).  This file
 * walks those tables and knows no driver.
 *
 * Defaults not written in config.h: a sensor's interval is 10 s; a
 * driver's keys default as its table says.  Out of memory, the only error
 * is "FILE: out of memory".
 *
 * libconfig 1.5 itself truncates integer literals that do not fit in 32
 * bits unless they carry an "L" suffix; that happens before we see the value
 * and cannot be detected here.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "output.h"
#include "quantity.h"
#include "sensor.h"

#define MAX_ERRORS	50		/* beyond this the rest is noise */
#define PRE_MAX		CONFIG_PRE_MAX
#define KEY_MAX		128
#define QUOTE_MAX	CONFIG_QUOTE_MAX

#define SENSOR_INTERVAL_DEFAULT	10.0	/* seconds */

/* What a getter found. */
#define ABSENT		CONFIG_ABSENT
#define PRESENT		CONFIG_PRESENT
#define BAD		CONFIG_BAD

struct cfg_error {
	unsigned int	 line;
	char		*text;		/* one whole line, without the newline */
};

struct parser {
	const char	*path;		/* as given, for messages */
	char		*dir;		/* directory of path, for relative names */
	struct config	*conf;
	struct cfg_error errs[MAX_ERRORS];
	size_t		 nerrs;
	size_t		 dropped;	/* errors beyond MAX_ERRORS */
	bool		 nomem;
};

static const char *const top_keys[] = {
	"gateway", "mqtt", "storage", "publish", "zones", "sensors", "alarms", "outputs", NULL
};
static const char *const gateway_keys[] = {
	"id", "site", "state_dir", "sysfs_root", "profiles_dir", NULL
};
static const char *const mqtt_keys[] = {
	"host", "port", "keepalive", "base_topic", "client_id", "username",
	"password_file", "tls", "max_inflight", "reconnect_min", "reconnect_max",
	NULL
};
static const char *const tls_keys[] = {
	"ca_file", "cert_file", "key_file", NULL
};
static const char *const storage_keys[] = {
	"path", "max_size_mb", "retain_days", "sync", "commit_interval_ms", NULL
};
static const char *const publish_keys[] = {
	"interval", "summary_period", "summary_hold", NULL
};
static const char *const zone_keys[] = {
	"id", "name", "profile", NULL
};
/* The keys every sensor has; the rest are its driver's (sensor.h .keys). */
static const char *const sensor_keys[] = {
	"id", "zone", "driver", "interval", "spike_filter", NULL
};
/* The keys every output has; the rest are its driver's (output.h .keys). */
static const char *const output_keys[] = {
	"id", "driver", "role", "severity", "zones", NULL
};
static const char *const alarm_keys[] = {
	"zone", "sensor", "quantity", "type", "severity", "high", "low", "hysteresis", "delay",
	"total", "window", "rate", "span", "stale_after", "fault_count", "door_open_max",
	"store_full_pct", "uplink_down_max", NULL
};
/* A profile's entries name no zone or sensor: the zone that uses it is theirs. */
static const char *const profile_alarm_keys[] = {
	"quantity", "type", "severity", "high", "low", "hysteresis", "delay",
	"total", "window", "rate", "span", "stale_after", "fault_count", "door_open_max", NULL
};
static const char *const profile_keys[] = { "name", "title", "alarms", NULL };
static const char *const alarm_types[ALARM_TYPE_COUNT] = {
	[ALARM_TYPE_THRESHOLD] = "threshold", [ALARM_TYPE_EXCURSION] = "excursion",
	[ALARM_TYPE_RATE] = "rate", [ALARM_TYPE_STALE] = "stale", [ALARM_TYPE_FAULT] = "fault",
	[ALARM_TYPE_DOOR] = "door", [ALARM_TYPE_STORE_FULL] = "store_full",
	[ALARM_TYPE_UPLINK_DOWN] = "uplink_down",
};
static const char *const output_roles[OUTPUT_ROLE_COUNT] = {
	[OUTPUT_BUZZER] = "buzzer", [OUTPUT_RELAY] = "relay", [OUTPUT_LAMP] = "lamp",
};

static void perr(struct parser *, const config_setting_t *, const char *,
    const char *, ...) __attribute__((format(printf, 4, 5)));
static void perr_at(struct parser *, const char *, unsigned int,
    const char *, const char *, ...) __attribute__((format(printf, 5, 6)));

static bool
in_list(const char *const *list, const char *s)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

/* The alarm type of that name, or -1: the one place alarm type names are compared. */
static int
alarm_type_from_name(const char *s)
{
	for (int t = 0; t < ALARM_TYPE_COUNT; t++)
		if (strcmp(s, alarm_types[t]) == 0)
			return t;
	return -1;
}

const char *
alarm_type_name(enum alarm_type t)
{
	return (unsigned int)t < ALARM_TYPE_COUNT ? alarm_types[t] : "?";
}

const char *
output_role_name(enum output_role r)
{
	return (unsigned int)r < OUTPUT_ROLE_COUNT ? output_roles[r] : "?";
}

/*
 * The name of the file an error is in, as the three parts DIR SEP NAME.
 * INC is NULL for the configuration itself, named by its path as given.
 * libconfig names an included file by what follows @include, but opened
 * it as "<include dir>/NAME" (even when NAME is absolute): say that, so
 * that the name means the file that was read whatever the reader's working
 * directory.
 */
static void
file_name(const struct parser *p, const char *inc, const char **dir,
    const char **sep, const char **name)
{
	*dir = *sep = "";
	*name = inc != NULL ? inc : p->path;
	if (inc == NULL || p->dir == NULL ||
	    (inc[0] != '/' && strcmp(p->dir, ".") == 0))
		return;
	if (strcmp(p->dir, "/") != 0)
		*dir = p->dir;
	if (inc[0] != '/')
		*sep = "/";
}

static void
vperr(struct parser *p, const char *inc, unsigned int line, const char *key,
    const char *fmt, va_list ap)
{
	const char *dir, *sep, *name;
	char msg[512], *text;
	int n;

	if (p->nerrs == MAX_ERRORS) {
		p->dropped++;
		return;
	}
	file_name(p, inc, &dir, &sep, &name);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (line > 0)
		n = asprintf(&text, "%s%s%s:%u: %s: %s", dir, sep, name, line,
		    key, msg);
	else
		n = asprintf(&text, "%s%s%s: %s: %s", dir, sep, name, key, msg);
	if (n < 0) {
		p->nomem = true;
		return;
	}
	p->errs[p->nerrs].line = line;
	p->errs[p->nerrs].text = text;
	p->nerrs++;
}

/* Record one error; s gives the file and line, and may be NULL. */
static void
perr(struct parser *p, const config_setting_t *s, const char *key,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	/* Settings from an @include carry their own file name. */
	vperr(p, s != NULL ? config_setting_source_file(s) : NULL,
	    s != NULL ? config_setting_source_line(s) : 0, key, fmt, ap);
	va_end(ap);
}

/* Record one error at LINE of the file INC (as in file_name). */
static void
perr_at(struct parser *p, const char *inc, unsigned int line, const char *key,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vperr(p, inc, line, key, fmt, ap);
	va_end(ap);
}

static char *
xstrdup(struct parser *p, const char *s)
{
	char *d;

	if ((d = strdup(s)) == NULL)
		p->nomem = true;
	return d;
}

static void *
xcalloc(struct parser *p, size_t n, size_t size)
{
	void *v;

	if (n == 0)
		return NULL;
	if ((v = calloc(n, size)) == NULL)
		p->nomem = true;
	return v;
}

/*
 * The sensors' strings: ids, zone names, driver keys.  A gateway keeps a
 * hundred sensors for as long as it runs; a copy of each short string in
 * a malloc chunk of its own costs 32 bytes or more, here it costs its
 * length.  Blocks are only added, so a string never moves.
 */
#define STR_BLOCK_SIZE	1024

struct str_block {
	struct str_block *next;
	size_t		 used, size;
	char		 text[];
};

static const char *
pool_strdup(struct parser *p, const char *s)
{
	struct str_block *b = p->conf->strings;
	size_t n = strlen(s) + 1;

	if (b == NULL || b->size - b->used < n) {
		size_t size = n > STR_BLOCK_SIZE ? n : STR_BLOCK_SIZE;

		if ((b = malloc(sizeof(*b) + size)) == NULL) {
			p->nomem = true;
			return NULL;
		}
		b->next = p->conf->strings;
		b->used = 0;
		b->size = size;
		p->conf->strings = b;
	}
	memcpy(b->text + b->used, s, n);
	b->used += n;
	return b->text + b->used - n;
}

/* NAME relative to DIR, or NAME itself when absolute. */
static char *
join_path(struct parser *p, const char *dir, const char *name)
{
	size_t len = strlen(dir);
	char *s;

	if (name[0] == '/')
		return xstrdup(p, name);
	if (asprintf(&s, "%s%s%s", dir, len > 0 && dir[len - 1] == '/' ? "" :
	    "/", name) < 0) {
		p->nomem = true;
		return NULL;
	}
	return s;
}

static const char *
keyof(char *buf, const char *prefix, const char *name)
{
	if (prefix[0] == '\0')
		snprintf(buf, KEY_MAX, "%s", name);
	else
		snprintf(buf, KEY_MAX, "%s.%s", prefix, name);
	return buf;
}

/*
 * Why a string is not acceptable text, or NULL.  Names travel to the
 * dashboard in JSON, so they must be valid UTF-8 (no overlong forms, no
 * surrogates) and hold no C0/C1 control characters.
 */
static const char *
text_problem(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t c;
	int i, n;

	while (*u != '\0') {
		if (*u < 0x80) {
			c = *u;
			n = 0;
		} else if ((*u & 0xe0) == 0xc0) {
			c = *u & 0x1f;
			n = 1;
		} else if ((*u & 0xf0) == 0xe0) {
			c = *u & 0x0f;
			n = 2;
		} else if ((*u & 0xf8) == 0xf0) {
			c = *u & 0x07;
			n = 3;
		} else
			return "is not valid UTF-8";
		/* A NUL fails the continuation test, so this stays in bounds. */
		for (i = 1; i <= n; i++) {
			if ((u[i] & 0xc0) != 0x80)
				return "is not valid UTF-8";
			c = c << 6 | (u[i] & 0x3f);
		}
		if ((n == 1 && c < 0x80) || (n == 2 && c < 0x800) ||
		    (n == 3 && c < 0x10000) || c > 0x10ffff ||
		    (c >= 0xd800 && c <= 0xdfff))
			return "is not valid UTF-8";
		if (c < 0x20 || (c >= 0x7f && c < 0xa0))
			return "contains a control character";
		u += n + 1;
	}
	return NULL;
}

/*
 * S in double quotes for a message.  Good text is shown as it is (Chinese
 * stays readable); anything else byte by byte with \xNN escapes, so that an
 * error message never carries the very bytes it complains about.
 */
const char *
config_quote(char buf[CONFIG_QUOTE_MAX], const char *s)
{
	bool raw = text_problem(s) == NULL;
	size_t o = 0;

	buf[o++] = '"';
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (o > QUOTE_MAX - 16) {
			/* Cut at a character boundary. */
			while (raw && o > 1 && ((unsigned char)buf[o - 1] & 0xc0)
			    == 0x80)
				o--;
			if (raw && o > 1 && (unsigned char)buf[o - 1] >= 0xc0)
				o--;
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch >= 0x20 && ch != 0x7f && (ch < 0x80 || raw))
			buf[o++] = (char)ch;
		else
			o += (size_t)snprintf(buf + o, 5, "\\x%02x", ch);
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

static void
check_keys(struct parser *p, const config_setting_t *grp, const char *prefix,
    const char *const *allowed)
{
	char key[KEY_MAX];
	config_setting_t *s;
	int i, n;

	n = config_setting_length(grp);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(grp, (unsigned int)i);
		if (!in_list(allowed, config_setting_name(s)))
			perr(p, s, keyof(key, prefix, config_setting_name(s)),
			    "unknown key");
	}
}

static int
get_group(struct parser *p, const config_setting_t *parent, const char *prefix,
    const char *name, config_setting_t **out)
{
	char key[KEY_MAX];
	config_setting_t *s;

	*out = NULL;
	if ((s = config_setting_get_member(parent, name)) == NULL)
		return ABSENT;
	if (!config_setting_is_group(s)) {
		perr(p, s, keyof(key, prefix, name), "expected a group");
		return BAD;
	}
	*out = s;
	return PRESENT;
}

/* A list of groups; libconfig spells an empty one () or []. */
static int
get_list(struct parser *p, const config_setting_t *parent, const char *name,
    config_setting_t **out)
{
	config_setting_t *s;

	*out = NULL;
	if ((s = config_setting_get_member(parent, name)) == NULL)
		return ABSENT;
	if (!config_setting_is_list(s) && !config_setting_is_array(s)) {
		perr(p, s, name, "expected a list");
		return BAD;
	}
	*out = s;
	return PRESENT;
}

/* A non-empty string that is good text; *out points into libconfig's tree. */
static int
get_string(struct parser *p, const config_setting_t *grp, const char *prefix,
    const char *name, const char **out)
{
	char key[KEY_MAX];
	config_setting_t *s;
	const char *v, *why;

	if ((s = config_setting_get_member(grp, name)) == NULL)
		return ABSENT;
	keyof(key, prefix, name);
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		perr(p, s, key, "expected a string");
		return BAD;
	}
	v = config_setting_get_string(s);
	if (v[0] == '\0') {
		perr(p, s, key, "must not be empty");
		return BAD;
	}
	if ((why = text_problem(v)) != NULL) {
		perr(p, s, key, "%s", why);
		return BAD;
	}
	*out = v;
	return PRESENT;
}

/* As get_string, into a malloc'd copy at *dst. */
static int
take_string(struct parser *p, const config_setting_t *grp, const char *prefix,
    const char *name, char **dst)
{
	const char *v;
	int r;

	if ((r = get_string(p, grp, prefix, name, &v)) != PRESENT)
		return r;
	free(*dst);
	if ((*dst = xstrdup(p, v)) == NULL)
		return BAD;
	return PRESENT;
}

/* As get_string, into the string pool at *dst. */
static int
pool_string(struct parser *p, const config_setting_t *grp, const char *prefix,
    const char *name, const char **dst)
{
	const char *v;
	int r;

	if ((r = get_string(p, grp, prefix, name, &v)) != PRESENT)
		return r;
	if ((*dst = pool_strdup(p, v)) == NULL)
		return BAD;
	return PRESENT;
}

/* A quantity's name: the one place names become enum quantity. */
static int
get_quantity(struct parser *p, const config_setting_t *grp, const char *prefix,
    const char *name, enum quantity *out)
{
	char key[KEY_MAX], q[QUOTE_MAX];
	const char *v;
	int r;

	if ((r = get_string(p, grp, prefix, name, &v)) != PRESENT)
		return r;
	if ((r = quantity_from_name(v)) < 0) {
		perr(p, config_setting_get_member(grp, name), keyof(key, prefix, name),
		    "unknown quantity %s", config_quote(q, v));
		return BAD;
	}
	*out = (enum quantity)r;
	return PRESENT;
}

/* An id ([A-Za-z0-9_-]{1,64}) copied into dst[CONFIG_ID_MAX + 1]. */
static int
get_id(struct parser *p, const config_setting_t *grp, const char *prefix,
    const char *name, char *dst, bool required)
{
	char key[KEY_MAX], q[QUOTE_MAX];
	config_setting_t *s;
	const char *v;

	keyof(key, prefix, name);
	if ((s = config_setting_get_member(grp, name)) == NULL) {
		if (required)
			perr(p, grp, key, "missing");
		return ABSENT;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		perr(p, s, key, "expected a string");
		return BAD;
	}
	v = config_setting_get_string(s);
	if (!config_valid_id(v)) {
		perr(p, s, key, "%s is not a valid id (want [A-Za-z0-9_-]{1,%d})",
		    config_quote(q, v), CONFIG_ID_MAX);
		return BAD;
	}
	memcpy(dst, v, strlen(v) + 1);
	return PRESENT;
}

static int
get_int(struct parser *p, const config_setting_t *grp, const char *prefix,
    const char *name, long long lo, long long hi, int *out)
{
	char key[KEY_MAX];
	config_setting_t *s;
	long long v;

	if ((s = config_setting_get_member(grp, name)) == NULL)
		return ABSENT;
	keyof(key, prefix, name);
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64) {
		perr(p, s, key, "expected an integer");
		return BAD;
	}
	v = config_setting_get_int64(s);
	if (v < lo || v > hi) {
		perr(p, s, key, "%lld is out of range %lld..%lld", v, lo, hi);
		return BAD;
	}
	*out = (int)v;
	return PRESENT;
}

/* A number as a double; libconfig only converts ints with autoconvert on. */
static bool
number_of(const config_setting_t *s, double *out)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		*out = (double)config_setting_get_int64(s);
		return true;
	case CONFIG_TYPE_FLOAT:
		*out = config_setting_get_float(s);
		return true;
	default:
		return false;
	}
}

/* A number in lo..hi; hi may be INFINITY for "no upper bound". */
static int
get_double(struct parser *p, const config_setting_t *grp, const char *prefix,
    const char *name, double lo, double hi, double *out)
{
	char key[KEY_MAX];
	config_setting_t *s;
	double v;

	if ((s = config_setting_get_member(grp, name)) == NULL)
		return ABSENT;
	keyof(key, prefix, name);
	if (!number_of(s, &v)) {
		perr(p, s, key, "expected a number");
		return BAD;
	}
	if (!isfinite(v)) {
		perr(p, s, key, "%g is not a finite number", v);
		return BAD;
	}
	if (v < lo || v > hi) {
		if (isinf(hi))
			perr(p, s, key, "%g is out of range (must be >= %g)", v,
			    lo);
		else
			perr(p, s, key, "%g is out of range %g..%g", v, lo, hi);
		return BAD;
	}
	*out = v;
	return PRESENT;
}

static int
get_bool(struct parser *p, const config_setting_t *grp, const char *prefix,
    const char *name, bool *out)
{
	char key[KEY_MAX];
	config_setting_t *s;

	if ((s = config_setting_get_member(grp, name)) == NULL)
		return ABSENT;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		perr(p, s, keyof(key, prefix, name), "expected true or false");
		return BAD;
	}
	*out = config_setting_get_bool(s) != 0;
	return PRESENT;
}

/*
 * A file the daemon opens later (password, TLS): resolved against the
 * configuration's directory and checked for readability now, so that a
 * typo is a configuration error and not a reconnect loop.
 */
static int
take_file(struct parser *p, const config_setting_t *grp, const char *prefix,
    const char *name, char **dst)
{
	char key[KEY_MAX], q[QUOTE_MAX];
	struct stat st;
	const char *v, *why = NULL;
	int fd, r;

	if ((r = get_string(p, grp, prefix, name, &v)) != PRESENT)
		return r;
	free(*dst);
	if ((*dst = join_path(p, p->dir, v)) == NULL)
		return BAD;
	/*
	 * A directory opens fine and fails only when read.  A FIFO would
	 * block a plain open() here, hanging a reload, and every read later.
	 */
	if ((fd = open(*dst, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1)
		why = strerror(errno);
	else if (S_ISDIR(st.st_mode))
		why = strerror(EISDIR);
	else if (S_ISFIFO(st.st_mode))
		why = "is a FIFO";
	if (fd != -1)
		close(fd);
	if (why != NULL) {
		perr(p, config_setting_get_member(grp, name),
		    keyof(key, prefix, name), "cannot read %s: %s",
		    config_quote(q, *dst), why);
		return BAD;
	}
	return PRESENT;
}

/*
 * A list of (a, b) number pairs, as a malloc'd array of 2 * *n doubles.
 * Returns PRESENT even for an empty list; *out is NULL then.
 */
static int
get_pairs(struct parser *p, const config_setting_t *grp, const char *prefix,
    const char *name, const char *what, double **out, size_t *n)
{
	char key[KEY_MAX], ekey[2 * KEY_MAX];
	config_setting_t *s, *e;
	double *v;
	size_t i, len;
	int bad = 0;

	*out = NULL;
	*n = 0;
	if ((s = config_setting_get_member(grp, name)) == NULL)
		return ABSENT;
	keyof(key, prefix, name);
	if (!config_setting_is_list(s) && !config_setting_is_array(s)) {
		perr(p, s, key, "expected a list of %s pairs", what);
		return BAD;
	}
	if ((len = (size_t)config_setting_length(s)) == 0)
		return PRESENT;
	if ((v = xcalloc(p, len, 2 * sizeof(*v))) == NULL)
		return BAD;
	for (i = 0; i < len; i++) {
		e = config_setting_get_elem(s, (unsigned int)i);
		snprintf(ekey, sizeof(ekey), "%s[%zu]", key, i);
		if ((!config_setting_is_list(e) && !config_setting_is_array(e)) ||
		    config_setting_length(e) != 2 ||
		    !number_of(config_setting_get_elem(e, 0), &v[2 * i]) ||
		    !number_of(config_setting_get_elem(e, 1), &v[2 * i + 1])) {
			perr(p, e, ekey, "expected a %s pair of numbers", what);
			bad = 1;
		} else if (!isfinite(v[2 * i]) || !isfinite(v[2 * i + 1])) {
			perr(p, e, ekey, "is not a pair of finite numbers");
			bad = 1;
		}
	}
	if (bad) {
		free(v);
		return BAD;
	}
	*out = v;
	*n = len;
	return PRESENT;
}

static void
parse_gateway(struct parser *p, const config_setting_t *root)
{
	struct config *c = p->conf;
	config_setting_t *g;
	int r;

	if ((r = get_group(p, root, "", "gateway", &g)) != PRESENT) {
		/* A gateway that is there but not a group is reported already. */
		if (r == ABSENT)
			perr(p, NULL, "gateway.id", "missing");
		return;
	}
	check_keys(p, g, "gateway", gateway_keys);
	get_id(p, g, "gateway", "id", c->gateway.id, true);
	take_string(p, g, "gateway", "site", &c->gateway.site);
	take_string(p, g, "gateway", "state_dir", &c->gateway.state_dir);
	take_string(p, g, "gateway", "sysfs_root", &c->gateway.sysfs_root);
	take_string(p, g, "gateway", "profiles_dir", &c->gateway.profiles_dir);
}

/*
 * The base topic is the first levels of every topic we publish and of the
 * one we subscribe to: wildcards or empty levels would make it match other
 * gateways' topics, and '$' topics belong to the broker.
 */
static void
check_base_topic(struct parser *p, const config_setting_t *g, const char *t)
{
	const config_setting_t *s = config_setting_get_member(g, "base_topic");
	size_t len = strlen(t);

	if (strpbrk(t, "+#") != NULL)
		perr(p, s, "mqtt.base_topic", "must not contain a wildcard (+ or #)");
	else if (t[0] == '/' || t[len - 1] == '/')
		perr(p, s, "mqtt.base_topic", "must not start or end with '/'");
	else if (strstr(t, "//") != NULL)
		perr(p, s, "mqtt.base_topic", "must not have an empty level (//)");
	else if (t[0] == '$')
		perr(p, s, "mqtt.base_topic",
		    "must not start with '$' (reserved for the broker)");
}

static void
parse_tls(struct parser *p, const config_setting_t *mqtt)
{
	struct config *c = p->conf;
	config_setting_t *t;
	int cert, key;

	if (get_group(p, mqtt, "mqtt", "tls", &t) != PRESENT)
		return;
	check_keys(p, t, "mqtt.tls", tls_keys);
	/* libmosquitto needs a CA to verify the broker with. */
	if (take_file(p, t, "mqtt.tls", "ca_file", &c->mqtt.tls_ca_file) == ABSENT)
		perr(p, t, "mqtt.tls.ca_file", "missing");
	cert = take_file(p, t, "mqtt.tls", "cert_file", &c->mqtt.tls_cert_file);
	key = take_file(p, t, "mqtt.tls", "key_file", &c->mqtt.tls_key_file);
	if (cert == PRESENT && key == ABSENT)
		perr(p, t, "mqtt.tls.key_file", "missing (needed with cert_file)");
	if (key == PRESENT && cert == ABSENT)
		perr(p, t, "mqtt.tls.cert_file", "missing (needed with key_file)");
}

static void
parse_mqtt(struct parser *p, const config_setting_t *root)
{
	struct config *c = p->conf;
	config_setting_t *g;
	int rmin, rmax, user, pw;

	if (get_group(p, root, "", "mqtt", &g) != PRESENT)
		return;
	check_keys(p, g, "mqtt", mqtt_keys);
	take_string(p, g, "mqtt", "host", &c->mqtt.host);
	get_int(p, g, "mqtt", "port", 1, 65535, &c->mqtt.port);
	get_int(p, g, "mqtt", "keepalive", 5, 3600, &c->mqtt.keepalive);
	if (take_string(p, g, "mqtt", "base_topic", &c->mqtt.base_topic) ==
	    PRESENT)
		check_base_topic(p, g, c->mqtt.base_topic);
	take_string(p, g, "mqtt", "client_id", &c->mqtt.client_id);
	user = take_string(p, g, "mqtt", "username", &c->mqtt.username);
	pw = take_file(p, g, "mqtt", "password_file", &c->mqtt.password_file);
	if (pw == PRESENT && user == ABSENT)
		perr(p, config_setting_get_member(g, "password_file"),
		    "mqtt.password_file", "needs mqtt.username");
	parse_tls(p, g);
	get_int(p, g, "mqtt", "max_inflight", 1, 1000, &c->mqtt.max_inflight);
	rmin = get_int(p, g, "mqtt", "reconnect_min", 1, 3600,
	    &c->mqtt.reconnect_min);
	rmax = get_int(p, g, "mqtt", "reconnect_max", 1, 3600,
	    &c->mqtt.reconnect_max);
	if (rmin != BAD && rmax != BAD &&
	    c->mqtt.reconnect_max < c->mqtt.reconnect_min) {
		if (rmax == PRESENT)
			perr(p, config_setting_get_member(g, "reconnect_max"),
			    "mqtt.reconnect_max", "%d is below reconnect_min %d",
			    c->mqtt.reconnect_max, c->mqtt.reconnect_min);
		else
			perr(p, config_setting_get_member(g, "reconnect_min"),
			    "mqtt.reconnect_min",
			    "%d is above reconnect_max %d (the default)",
			    c->mqtt.reconnect_min, c->mqtt.reconnect_max);
	}
}

static void
parse_storage(struct parser *p, const config_setting_t *root, char **path)
{
	struct config *c = p->conf;
	config_setting_t *g;
	const char *sync;
	char q[QUOTE_MAX];

	if (get_group(p, root, "", "storage", &g) != PRESENT)
		return;
	check_keys(p, g, "storage", storage_keys);
	take_string(p, g, "storage", "path", path);
	get_int(p, g, "storage", "max_size_mb", 1, 1048576,
	    &c->storage.max_size_mb);
	get_int(p, g, "storage", "retain_days", 1, 3650,
	    &c->storage.retain_days);
	if (get_string(p, g, "storage", "sync", &sync) == PRESENT) {
		if (strcmp(sync, "full") == 0)
			c->storage.sync = STORE_SYNC_FULL;
		else if (strcmp(sync, "normal") == 0)
			c->storage.sync = STORE_SYNC_NORMAL;
		else
			perr(p, config_setting_get_member(g, "sync"),
			    "storage.sync", "%s is not one of full, normal",
			    config_quote(q, sync));
	}
	get_int(p, g, "storage", "commit_interval_ms", 10, 60000,
	    &c->storage.commit_interval_ms);
}

static void
parse_publish(struct parser *p, const config_setting_t *root)
{
	config_setting_t *g;

	if (get_group(p, root, "", "publish", &g) != PRESENT)
		return;
	check_keys(p, g, "publish", publish_keys);
	get_int(p, g, "publish", "interval", 1, 86400,
	    &p->conf->publish.interval);
	get_int(p, g, "publish", "summary_period", 1, 86400,
	    &p->conf->publish.summary_period);
	get_int(p, g, "publish", "summary_hold", 1, 86400,
	    &p->conf->publish.summary_hold);
}

static void
parse_zones(struct parser *p, const config_setting_t *root)
{
	struct config *c = p->conf;
	config_setting_t *list, *g;
	struct zone_cfg *z;
	char pre[PRE_MAX], key[KEY_MAX];
	size_t i, j, n;

	if (get_list(p, root, "zones", &list) != PRESENT)
		return;
	n = (size_t)config_setting_length(list);
	if (n > 0 && (c->zones = xcalloc(p, n, sizeof(*c->zones))) == NULL)
		return;
	c->nzones = n;
	for (i = 0; i < n; i++) {
		z = &c->zones[i];
		g = config_setting_get_elem(list, (unsigned int)i);
		snprintf(pre, sizeof(pre), "zones[%zu]", i);
		z->line = (int)config_setting_source_line(g);
		if (!config_setting_is_group(g)) {
			perr(p, g, pre, "expected a group");
			continue;
		}
		check_keys(p, g, pre, zone_keys);
		if (get_id(p, g, pre, "id", z->id, true) == PRESENT) {
			for (j = 0; j < i; j++)
				if (strcmp(c->zones[j].id, z->id) == 0) {
					perr(p, config_setting_get_member(g, "id"),
					    keyof(key, pre, "id"),
					    "duplicate id \"%s\" (first at line %d)",
					    z->id, c->zones[j].line);
					break;
				}
		}
		take_string(p, g, pre, "name", &z->name);
		take_string(p, g, pre, "profile", &z->profile);
		if (z->name == NULL && z->id[0] != '\0')
			z->name = xstrdup(p, z->id);
	}
}

/*
 * The keys of the drivers' tables (config.h struct cfg_key), walked the
 * same way for every driver: config.c knows their types, not the drivers.
 */

size_t
config_key_size(enum cfg_type t)
{
	switch (t) {
	case CFG_INT:
	case CFG_ENUM:
	case CFG_QUANTITY:
		return sizeof(int);
	case CFG_DOUBLE:
		return sizeof(double);
	case CFG_STRING:
		return sizeof(const char *);
	case CFG_BOOL:
		return sizeof(bool);
	case CFG_HOOK:
		break;
	}
	return 0;
}

/* The key of that name in a { NULL }-terminated table (which may be NULL), or NULL. */
static const struct cfg_key *
key_find(const struct cfg_key *keys, const char *name)
{
	for (; keys != NULL && keys->name != NULL; keys++)
		if (strcmp(keys->name, name) == 0)
			return keys;
	return NULL;
}

/*
 * Add item, the I-th of N, to the list "a, b or c" in buf whose length is
 * *o; false when it does not fit (buf then ends at the item before).
 */
static bool
choice_add(char *buf, size_t size, size_t *o, size_t i, size_t n, const char *item)
{
	const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
	int w = snprintf(buf + *o, size - *o, "%s%s", sep, item);

	if (w < 0 || (size_t)w >= size - *o) {
		buf[*o] = '\0';
		return false;
	}
	*o += (size_t)w;
	return true;
}

/* What a key accepts, for a message: "a, b or c". */
static const char *
key_choices(char *buf, size_t size, const struct cfg_key *k)
{
	char num[16];
	size_t i, n, o = 0;

	for (n = 0; k->names != NULL ? k->names[n] != NULL : k->values[n] != 0; n++)
		;
	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		if (k->names == NULL)
			snprintf(num, sizeof(num), "%d", k->values[i]);
		if (!choice_add(buf, size, &o, i, n, k->names != NULL ? k->names[i] : num))
			break;
	}
	return buf;
}

static void
key_store(const struct cfg_key *k, void *base, const void *v)
{
	assert(k->size == config_key_size(k->type));
	memcpy((char *)base + k->off, v, k->size);
}

static void
key_default(const struct cfg_key *k, void *base)
{
	const char *str = NULL;
	bool b = k->def != 0;
	int i = (int)k->def;

	switch (k->type) {
	case CFG_INT:
	case CFG_ENUM:
	case CFG_QUANTITY:
		key_store(k, base, &i);
		break;
	case CFG_DOUBLE:
		key_store(k, base, &k->def);
		break;
	case CFG_STRING:
		key_store(k, base, &str);
		break;
	case CFG_BOOL:
		key_store(k, base, &b);
		break;
	case CFG_HOOK:
		break;
	}
}

/* One key of a table from the group g into base; ABSENT, PRESENT or BAD. */
static int
parse_key(struct parser *p, const config_setting_t *g, const char *pre,
    const struct cfg_key *k, void *base)
{
	char key[KEY_MAX], q[QUOTE_MAX], choices[512];
	const char *str;
	enum quantity qv;
	double d;
	bool b;
	int i, r;

	switch (k->type) {
	case CFG_INT:
		if (k->values == NULL)
			r = get_int(p, g, pre, k->name, (long long)k->min, (long long)k->max, &i);
		else if ((r = get_int(p, g, pre, k->name, INT_MIN, INT_MAX, &i)) == PRESENT) {
			size_t n;

			for (n = 0; k->values[n] != 0 && k->values[n] != i; n++)
				;
			if (k->values[n] == 0) {
				perr(p, config_setting_get_member(g, k->name), keyof(key, pre, k->name),
				    "%d is not %s", i, key_choices(choices, sizeof(choices), k));
				r = BAD;
			}
		}
		if (r == PRESENT)
			key_store(k, base, &i);
		return r;
	case CFG_DOUBLE:
		if ((r = get_double(p, g, pre, k->name, k->min, k->max, &d)) == PRESENT)
			key_store(k, base, &d);
		return r;
	case CFG_STRING:
		if ((r = pool_string(p, g, pre, k->name, &str)) == PRESENT)
			key_store(k, base, &str);
		return r;
	case CFG_BOOL:
		if ((r = get_bool(p, g, pre, k->name, &b)) == PRESENT)
			key_store(k, base, &b);
		return r;
	case CFG_ENUM:
		if ((r = get_string(p, g, pre, k->name, &str)) != PRESENT)
			return r;
		for (i = 0; k->names[i] != NULL && strcmp(k->names[i], str) != 0; i++)
			;
		if (k->names[i] == NULL) {
			perr(p, config_setting_get_member(g, k->name), keyof(key, pre, k->name),
			    "%s is not %s", config_quote(q, str),
			    key_choices(choices, sizeof(choices), k));
			return BAD;
		}
		if (k->codes != NULL)
			i = k->codes[i];
		key_store(k, base, &i);
		return PRESENT;
	case CFG_QUANTITY:
		if ((r = get_quantity(p, g, pre, k->name, &qv)) == PRESENT) {
			i = (int)qv;
			key_store(k, base, &i);
		}
		return r;
	case CFG_HOOK:
		break;
	}
	return config_setting_get_member(g, k->name) != NULL ? PRESENT : ABSENT;
}

/*
 * Every key of a table: the defaults first, then what the group gives.  A
 * required key that is absent is an error, which names the driver when
 * the table is a driver's.
 */
static void
parse_keys(struct parser *p, const config_setting_t *g, const char *pre,
    const struct cfg_key *keys, void *base, const char *driver)
{
	const struct cfg_key *k;
	char key[KEY_MAX];

	for (k = keys; k != NULL && k->name != NULL; k++)
		key_default(k, base);
	for (k = keys; k != NULL && k->name != NULL; k++) {
		if (parse_key(p, g, pre, k, base) != ABSENT || !k->required)
			continue;
		if (driver != NULL)
			perr(p, g, keyof(key, pre, k->name), "missing (driver \"%s\" needs it)",
			    driver);
		else
			perr(p, g, keyof(key, pre, k->name), "missing");
	}
}

/*
 * A kind of group whose keys are partly every group's and partly its
 * driver's: sensors, outputs.  at(i) names the i-th driver of the kind's
 * table and sets *keys to its key table; NULL past the end.
 */
struct driver_kind {
	const char *const *common;	/* the keys every group of the kind has */
	const char	*(*at)(size_t i, const struct cfg_key **keys);
};

static const char *
sensor_driver_keys(size_t i, const struct cfg_key **keys)
{
	const struct sensor_driver *d = sensor_driver_at(i);

	*keys = d != NULL ? d->keys : NULL;
	return d != NULL ? d->name : NULL;
}

static const char *
output_driver_keys(size_t i, const struct cfg_key **keys)
{
	const struct output_driver *d = output_driver_at(i);

	*keys = d != NULL ? d->keys : NULL;
	return d != NULL ? d->name : NULL;
}

static const struct driver_kind sensor_kind = { sensor_keys, sensor_driver_keys };
static const struct driver_kind output_kind = { output_keys, output_driver_keys };

/* The key of that name in some driver's table of that kind, or NULL. */
static const struct cfg_key *
any_driver_key(const struct driver_kind *kind, const char *name)
{
	const struct cfg_key *keys, *k;

	for (size_t i = 0; kind->at(i, &keys) != NULL; i++)
		if ((k = key_find(keys, name)) != NULL)
			return k;
	return NULL;
}

/*
 * The keys of a group that are neither every group's of its kind nor its
 * driver's (drv with table keys; drv NULL when missing or unknown).  A key
 * of another driver is a mistake the operator wants to hear about ("baud"
 * on a DS18B20); its value is still checked as that driver would, so that
 * a "baud = 14400" there gets both of its errors.
 */
static void
check_driver_keys(struct parser *p, const config_setting_t *g, const char *pre,
    const struct driver_kind *kind, const char *drv, const struct cfg_key *keys)
{
	const struct cfg_key *k;
	union {
		struct sensor_cfg s;
		struct output_cfg o;
	} scratch;
	config_setting_t *s;
	const char *name;
	char key[KEY_MAX];

	for (int i = 0; i < config_setting_length(g); i++) {
		s = config_setting_get_elem(g, (unsigned int)i);
		name = config_setting_name(s);
		if (in_list(kind->common, name) || (drv != NULL && key_find(keys, name) != NULL))
			continue;
		if ((k = any_driver_key(kind, name)) == NULL) {
			perr(p, s, keyof(key, pre, name), "unknown key");
			continue;
		}
		memset(&scratch, 0, sizeof(scratch));
		parse_key(p, g, pre, k, &scratch);
		if (drv != NULL)
			perr(p, s, keyof(key, pre, name), "not used by driver \"%s\"", drv);
	}
}

void
config_error(struct config_ctx *x, const char *name, const char *fmt, ...)
{
	const config_setting_t *s = config_setting_get_member(x->setting, name);
	char key[KEY_MAX];
	va_list ap;

	if (s == NULL)
		s = x->setting;
	va_start(ap, fmt);
	vperr(x->p, config_setting_source_file(s), config_setting_source_line(s),
	    keyof(key, x->pre, name), fmt, ap);
	va_end(ap);
}

void
config_error_at(struct config_ctx *x, const char *name, size_t i, const char *fmt, ...)
{
	const config_setting_t *s = config_setting_get_member(x->setting, name), *e;
	char key[KEY_MAX], ekey[KEY_MAX + 24];
	va_list ap;

	if (s == NULL)
		s = x->setting;
	else if ((e = config_setting_get_elem(s, (unsigned int)i)) != NULL)
		s = e;
	snprintf(ekey, sizeof(ekey), "%s[%zu]", keyof(key, x->pre, name), i);
	va_start(ap, fmt);
	vperr(x->p, config_setting_source_file(s), config_setting_source_line(s), ekey, fmt, ap);
	va_end(ap);
}

bool
config_has(const struct config_ctx *x, const char *name)
{
	return config_setting_get_member(x->setting, name) != NULL;
}

int
config_string(struct config_ctx *x, const char *name, const char **out)
{
	return get_string(x->p, x->setting, x->pre, name, out);
}

int
config_pairs(struct config_ctx *x, const char *name, const char *what, double **out, size_t *n)
{
	return get_pairs(x->p, x->setting, x->pre, name, what, out, n);
}

int
config_list(struct config_ctx *x, const char *name)
{
	const config_setting_t *list = config_setting_get_member(x->setting, name);
	int n;

	if (list == NULL)
		return 0;
	if (!config_setting_is_list(list)) {
		config_error(x, name, "expected a list of groups");
		return -1;
	}
	if ((n = config_setting_length(list)) == 0) {
		config_error(x, name, "must not be empty");
		return -1;
	}
	return n;
}

int
config_entry(struct config_ctx *x, const char *name, size_t i, const struct cfg_key *keys,
    void *base, struct config_ctx *e)
{
	const config_setting_t *list = config_setting_get_member(x->setting, name), *g;
	config_setting_t *s;
	char key[KEY_MAX];
	int n;

	e->p = x->p;
	e->driver = NULL;
	e->setting = g = config_setting_get_elem(list, (unsigned int)i);
	n = snprintf(e->pre, sizeof(e->pre), "%s.%s[%zu]", x->pre, name, i);
	assert(n > 0 && (size_t)n < sizeof(e->pre));
	/* An entry that is no group still gets its defaults: checks read them. */
	for (const struct cfg_key *k = keys; k->name != NULL; k++)
		key_default(k, base);
	if (!config_setting_is_group(g)) {
		perr(x->p, g, e->pre, "expected a group");
		return BAD;
	}
	for (n = 0; n < config_setting_length(g); n++) {
		s = config_setting_get_elem(g, (unsigned int)n);
		if (key_find(keys, config_setting_name(s)) == NULL)
			perr(x->p, s, keyof(key, e->pre, config_setting_name(s)), "unknown key");
	}
	parse_keys(x->p, g, e->pre, keys, base, NULL);
	return PRESENT;
}

void *
config_calloc(struct config_ctx *x, size_t n, size_t size)
{
	return xcalloc(x->p, n, size);
}

static void
parse_sensor(struct parser *p, const config_setting_t *g, size_t i)
{
	struct config *c = p->conf;
	struct sensor_cfg *sc = &c->sensors[i];
	const struct sensor_driver *drv = NULL;
	struct config_ctx x = { .p = p, .setting = g };
	char key[KEY_MAX], q[QUOTE_MAX], id[CONFIG_ID_MAX + 1];
	int r, z;
	size_t j;

	snprintf(x.pre, sizeof(x.pre), "sensors[%zu]", i);
	if (get_id(p, g, x.pre, "id", id, true) == PRESENT &&
	    (sc->id = pool_strdup(p, id)) != NULL) {
		for (j = 0; j < i; j++)
			if (strcmp(c->sensors[j].id, sc->id) == 0) {
				perr(p, config_setting_get_member(g, "id"),
				    keyof(key, x.pre, "id"),
				    "duplicate id \"%s\" (first at line %d)",
				    sc->id, c->sensors[j].line);
				break;
			}
	}
	if (sc->id == NULL)
		sc->id = "";
	/* Whether that zone exists is checked once all zones are known. */
	if (get_id(p, g, x.pre, "zone", id, true) == PRESENT)
		sc->zone = (z = config_zone_index(c, id)) >= 0 ? c->zones[z].id :
		    pool_strdup(p, id);
	if (sc->zone == NULL)
		sc->zone = "";
	if ((r = pool_string(p, g, x.pre, "driver", &sc->driver)) == ABSENT)
		perr(p, g, keyof(key, x.pre, "driver"), "missing");
	else if (r == PRESENT && (drv = sensor_driver_find(sc->driver)) == NULL)
		perr(p, config_setting_get_member(g, "driver"),
		    keyof(key, x.pre, "driver"), "unknown driver %s",
		    config_quote(q, sc->driver));
	get_double(p, g, x.pre, "interval", 0.01, 86400, &sc->interval);
	get_bool(p, g, x.pre, "spike_filter", &sc->spike_filter);
	check_driver_keys(p, g, x.pre, &sensor_kind, drv != NULL ? drv->name : NULL,
	    drv != NULL ? drv->keys : NULL);
	if (drv == NULL)
		return;

	/* A device without an address of its own: the part's default (config.h). */
	sc->kind = drv->kind;
	if (sc->kind == SENSOR_DEVICE)
		sc->dev.address = -1;
	x.driver = drv->name;
	parse_keys(p, g, x.pre, drv->keys, sc, drv->name);
	if (drv->configure != NULL)
		drv->configure(&x, sc);
}

static void
parse_sensors(struct parser *p, const config_setting_t *root)
{
	struct config *c = p->conf;
	config_setting_t *list, *g;
	char pre[PRE_MAX];
	size_t i, n;

	if (get_list(p, root, "sensors", &list) != PRESENT)
		return;
	n = (size_t)config_setting_length(list);
	if (n > 0 && (c->sensors = xcalloc(p, n, sizeof(*c->sensors))) == NULL)
		return;
	c->nsensors = n;
	for (i = 0; i < n; i++) {
		g = config_setting_get_elem(list, (unsigned int)i);
		c->sensors[i].id = "";
		c->sensors[i].zone = "";
		c->sensors[i].line = (int)config_setting_source_line(g);
		c->sensors[i].interval = SENSOR_INTERVAL_DEFAULT;
		c->sensors[i].spike_filter = true;
		if (!config_setting_is_group(g)) {
			snprintf(pre, sizeof(pre), "sensors[%zu]", i);
			perr(p, g, pre, "expected a group");
			continue;
		}
		parse_sensor(p, g, i);
	}
}

/* A key the rule's type does not use is a mistake worth reporting. */
static void
alarm_unused(struct parser *p, const config_setting_t *g, const char *pre,
    enum alarm_type type, const char *const *used)
{
	static const char *const typed[] = {
		"quantity", "high", "low", "hysteresis", "delay", "total", "window", "rate",
		"span", "stale_after", "fault_count", "door_open_max", "store_full_pct",
		"uplink_down_max", NULL
	};
	char key[KEY_MAX];

	for (size_t k = 0; typed[k] != NULL; k++)
		if (!in_list(used, typed[k]) && config_setting_get_member(g, typed[k]) != NULL)
			perr(p, config_setting_get_member(g, typed[k]),
			    keyof(key, pre, typed[k]), "not used by type \"%s\"",
			    alarm_type_name(type));
}

/*
 * One alarm rule.  zone is NULL for the configuration's own list (the
 * entry names its zone or sensor) and the zone's id for a profile's entry.
 */
static void
parse_alarm(struct parser *p, const config_setting_t *g, const char *pre,
    struct alarm_cfg *a, const char *zone)
{
	static const char *const u_threshold[] = { "quantity", "high", "low", "hysteresis",
	    "delay", NULL };
	static const char *const u_excursion[] = { "quantity", "high", "low", "total", "window",
	    NULL };
	static const char *const u_rate[] = { "quantity", "rate", "span", "delay", NULL };
	static const char *const u_stale[] = { "stale_after", NULL };
	static const char *const u_fault[] = { "fault_count", NULL };
	static const char *const u_door[] = { "door_open_max", NULL };
	static const char *const u_store[] = { "store_full_pct", "delay", "hysteresis", NULL };
	static const char *const u_uplink[] = { "uplink_down_max", NULL };
	char key[KEY_MAX], q[QUOTE_MAX];
	const char *zid = NULL, *sid = NULL, *v, *sev;
	enum alarm_type type = ALARM_TYPE_THRESHOLD;
	bool gateway, quantity_needed;
	int r, hi, lo, si = -1;

	check_keys(p, g, pre, zone != NULL ? profile_alarm_keys : alarm_keys);
	/* An unknown type is reported, and the rest checked as a threshold's. */
	if (get_string(p, g, pre, "type", &v) == PRESENT) {
		if ((r = alarm_type_from_name(v)) < 0)
			perr(p, config_setting_get_member(g, "type"), keyof(key, pre, "type"),
			    "unknown type %s (want threshold, excursion, rate, stale, fault, door, "
			    "store_full or uplink_down)", config_quote(q, v));
		else
			type = (enum alarm_type)r;
	}
	a->type = type;
	if (get_string(p, g, pre, "severity", &sev) == PRESENT) {
		if (strcmp(sev, "critical") == 0)
			a->critical = true;
		else if (strcmp(sev, "warning") != 0)
			perr(p, config_setting_get_member(g, "severity"),
			    keyof(key, pre, "severity"), "%s is not warning or critical",
			    config_quote(q, sev));
	}
	gateway = type == ALARM_TYPE_STORE_FULL || type == ALARM_TYPE_UPLINK_DOWN;

	/* Scope: a zone, a sensor (whose zone is implied), or the gateway. */
	if (zone != NULL) {
		memcpy(a->zone, zone, strlen(zone) + 1);
	} else {
		get_string(p, g, pre, "zone", &zid);
		get_string(p, g, pre, "sensor", &sid);
		if (gateway && (zid != NULL || sid != NULL))
			perr(p, g, pre, "type \"%s\" is the gateway's: no zone or sensor",
			    alarm_type_name(type));
		if (sid != NULL) {
			if ((si = config_sensor_index(p->conf, sid)) < 0)
				perr(p, config_setting_get_member(g, "sensor"),
				    keyof(key, pre, "sensor"), "unknown sensor %s", config_quote(q, sid));
			else
				memcpy(a->sensor, sid, strlen(sid) + 1);
		}
		if (zid != NULL) {
			int zi = config_zone_index(p->conf, zid);

			if (zi < 0)
				perr(p, config_setting_get_member(g, "zone"),
				    keyof(key, pre, "zone"), "unknown zone %s", config_quote(q, zid));
			else if (si >= 0 && strcmp(p->conf->sensors[si].zone, zid) != 0)
				perr(p, config_setting_get_member(g, "sensor"),
				    keyof(key, pre, "sensor"), "sensor %s is in zone %s, not %s",
				    config_quote(q, sid), p->conf->sensors[si].zone, zid);
			else
				memcpy(a->zone, zid, strlen(zid) + 1);
		}
		if (!gateway && zid == NULL && sid == NULL)
			perr(p, g, keyof(key, pre, "zone"), "missing (or a sensor)");
	}

	quantity_needed = type == ALARM_TYPE_THRESHOLD || type == ALARM_TYPE_EXCURSION ||
	    type == ALARM_TYPE_RATE;
	if ((r = get_quantity(p, g, pre, "quantity", &a->quantity)) == ABSENT && quantity_needed)
		perr(p, g, keyof(key, pre, "quantity"), "missing");
	a->has_quantity = r == PRESENT;

	hi = get_double(p, g, pre, "high", -INFINITY, INFINITY, &a->high);
	lo = get_double(p, g, pre, "low", -INFINITY, INFINITY, &a->low);
	a->has_high = hi == PRESENT;
	a->has_low = lo == PRESENT;
	get_double(p, g, pre, "hysteresis", 0, INFINITY, &a->hysteresis);
	get_int(p, g, pre, "delay", 0, 86400, &a->delay);

	switch (type) {
	case ALARM_TYPE_THRESHOLD:
		alarm_unused(p, g, pre, type, u_threshold);
		if (hi == ABSENT && lo == ABSENT)
			perr(p, g, pre, "needs high or low (or both)");
		if (a->has_high && a->has_low && a->low >= a->high)
			perr(p, config_setting_get_member(g, "low"), keyof(key, pre, "low"),
			    "%g is not below high %g", a->low, a->high);
		break;
	case ALARM_TYPE_EXCURSION:
		alarm_unused(p, g, pre, type, u_excursion);
		if ((hi == ABSENT) == (lo == ABSENT))
			perr(p, g, pre, "type \"excursion\" needs high or low (one of them)");
		if (get_int(p, g, pre, "window", 60, 31 * 86400, &a->window) == ABSENT)
			perr(p, g, keyof(key, pre, "window"), "missing");
		if (get_int(p, g, pre, "total", 1, 31 * 86400, &a->total) == ABSENT)
			perr(p, g, keyof(key, pre, "total"), "missing");
		else if (a->window > 0 && a->total > a->window)
			perr(p, config_setting_get_member(g, "total"), keyof(key, pre, "total"),
			    "%d s is longer than the window of %d s", a->total, a->window);
		break;
	case ALARM_TYPE_RATE:
		alarm_unused(p, g, pre, type, u_rate);
		if (get_double(p, g, pre, "rate", 1e-9, INFINITY, &a->rate) == ABSENT)
			perr(p, g, keyof(key, pre, "rate"), "missing (units per minute)");
		a->span = 600;
		get_int(p, g, pre, "span", 10, 86400, &a->span);
		break;
	case ALARM_TYPE_STALE:
		alarm_unused(p, g, pre, type, u_stale);
		if (get_int(p, g, pre, "stale_after", 1, 7 * 86400, &a->stale_after) == ABSENT)
			perr(p, g, keyof(key, pre, "stale_after"), "missing");
		break;
	case ALARM_TYPE_FAULT:
		alarm_unused(p, g, pre, type, u_fault);
		a->fault_count = 3;
		get_int(p, g, pre, "fault_count", 1, 1000, &a->fault_count);
		break;
	case ALARM_TYPE_DOOR:
		alarm_unused(p, g, pre, type, u_door);
		if (get_int(p, g, pre, "door_open_max", 1, 86400, &a->door_open_max) == ABSENT)
			perr(p, g, keyof(key, pre, "door_open_max"), "missing");
		break;
	case ALARM_TYPE_STORE_FULL:
		alarm_unused(p, g, pre, type, u_store);
		a->store_full_pct = 90;
		get_int(p, g, pre, "store_full_pct", 1, 100, &a->store_full_pct);
		break;
	case ALARM_TYPE_UPLINK_DOWN:
		alarm_unused(p, g, pre, type, u_uplink);
		if (get_int(p, g, pre, "uplink_down_max", 1, 30 * 86400,
		    &a->uplink_down_max) == ABSENT)
			perr(p, g, keyof(key, pre, "uplink_down_max"), "missing");
		break;
	case ALARM_TYPE_COUNT:
		break;
	}
}

/* Two rules the alarm engine would give the same id. */
static bool
alarm_same(const struct alarm_cfg *a, const struct alarm_cfg *b)
{
	if (a->type != b->type || a->critical != b->critical ||
	    strcmp(a->zone, b->zone) != 0 || strcmp(a->sensor, b->sensor) != 0)
		return false;
	if (a->has_quantity != b->has_quantity ||
	    (a->has_quantity && a->quantity != b->quantity))
		return false;
	/* A threshold with high and one with low make different alarms. */
	if (a->type == ALARM_TYPE_THRESHOLD)
		return (a->has_high && b->has_high) || (a->has_low && b->has_low);
	return true;
}

/* Alarms come after zones and sensors are parsed: they name them. */
static void
parse_alarms(struct parser *p, const config_setting_t *root)
{
	struct config *c = p->conf;
	config_setting_t *list, *g;
	char pre[PRE_MAX];
	size_t i, n;

	if (get_list(p, root, "alarms", &list) != PRESENT)
		return;
	n = (size_t)config_setting_length(list);
	if (n > 0 && (c->alarms = xcalloc(p, n, sizeof(*c->alarms))) == NULL)
		return;
	c->nalarms = n;
	for (i = 0; i < n; i++) {
		g = config_setting_get_elem(list, (unsigned int)i);
		c->alarms[i].line = (int)config_setting_source_line(g);
		snprintf(pre, sizeof(pre), "alarms[%zu]", i);
		if (!config_setting_is_group(g)) {
			perr(p, g, pre, "expected a group");
			continue;
		}
		parse_alarm(p, g, pre, &c->alarms[i], NULL);
		for (size_t j = 0; j < i; j++)
			if (alarm_same(&c->alarms[j], &c->alarms[i])) {
				perr(p, g, pre, "the same alarm as alarms[%zu] (line %d); give one "
				    "another severity", j, c->alarms[j].line);
				break;
			}
	}
}

/* The names of the output drivers, for a message: "a, b or c". */
static const char *
output_driver_names(char *buf, size_t size)
{
	size_t i, n, o = 0;

	for (n = 0; output_driver_at(n) != NULL; n++)
		;
	buf[0] = '\0';
	for (i = 0; i < n && choice_add(buf, size, &o, i, n, output_driver_at(i)->name); i++)
		;
	return buf;
}

/* outputs: buzzers, relays and lamps the alarms drive. */
static void
parse_output(struct parser *p, const config_setting_t *g, const char *pre, size_t i)
{
	struct output_cfg *o = &p->conf->outputs[i];
	const struct output_driver *drv = NULL;
	config_setting_t *zs;
	char key[KEY_MAX], q[QUOTE_MAX], names[256];
	const char *v;
	int r;

	if (get_id(p, g, pre, "id", o->id, true) == PRESENT)
		for (size_t j = 0; j < i; j++)
			if (strcmp(p->conf->outputs[j].id, o->id) == 0) {
				perr(p, config_setting_get_member(g, "id"), keyof(key, pre, "id"),
				    "duplicate id \"%s\" (first at line %d)", o->id,
				    p->conf->outputs[j].line);
				break;
			}
	if ((r = pool_string(p, g, pre, "driver", &o->driver)) == ABSENT)
		perr(p, g, keyof(key, pre, "driver"), "missing");
	else if (r == PRESENT && (drv = output_driver_find(o->driver)) == NULL)
		perr(p, config_setting_get_member(g, "driver"), keyof(key, pre, "driver"),
		    "unknown output driver %s (want %s)", config_quote(q, o->driver),
		    output_driver_names(names, sizeof(names)));
	check_driver_keys(p, g, pre, &output_kind, drv != NULL ? drv->name : NULL,
	    drv != NULL ? drv->keys : NULL);
	if (drv != NULL)
		parse_keys(p, g, pre, drv->keys, o, drv->name);
	if ((r = get_string(p, g, pre, "role", &v)) == ABSENT) {
		perr(p, g, keyof(key, pre, "role"), "missing (buzzer, relay or lamp)");
	} else if (r == PRESENT) {
		size_t k;

		for (k = 0; k < OUTPUT_ROLE_COUNT && strcmp(output_roles[k], v) != 0; k++)
			;
		if (k == OUTPUT_ROLE_COUNT)
			perr(p, config_setting_get_member(g, "role"), keyof(key, pre, "role"),
			    "%s is not buzzer, relay or lamp", config_quote(q, v));
		else
			o->role = (enum output_role)k;
	}
	if (get_string(p, g, pre, "severity", &v) == PRESENT) {
		if (strcmp(v, "critical") == 0)
			o->critical_only = true;
		else if (strcmp(v, "warning") != 0)
			perr(p, config_setting_get_member(g, "severity"),
			    keyof(key, pre, "severity"), "%s is not warning or critical",
			    config_quote(q, v));
	}
	if ((zs = config_setting_get_member(g, "zones")) == NULL)
		return;
	keyof(key, pre, "zones");
	if (!config_setting_is_array(zs) && !config_setting_is_list(zs)) {
		perr(p, zs, key, "expected a list of zone ids, e.g. [\"cold-1\"]");
		return;
	}
	o->nzones = (size_t)config_setting_length(zs);
	if (o->nzones > 0 && (o->zones = xcalloc(p, o->nzones, sizeof(*o->zones))) == NULL) {
		o->nzones = 0;
		return;
	}
	for (size_t k = 0; k < o->nzones; k++) {
		config_setting_t *e = config_setting_get_elem(zs, (unsigned int)k);
		char ekey[KEY_MAX + 32];

		snprintf(ekey, sizeof(ekey), "%s[%zu]", key, k);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			perr(p, e, ekey, "expected a zone id");
			continue;
		}
		v = config_setting_get_string(e);
		if (config_zone_index(p->conf, v) < 0)
			perr(p, e, ekey, "unknown zone %s", config_quote(q, v));
		else
			memcpy(o->zones[k], v, strlen(v) + 1);
	}
}

static void
parse_outputs(struct parser *p, const config_setting_t *root)
{
	struct config *c = p->conf;
	config_setting_t *list, *g;
	char pre[PRE_MAX];
	size_t i, n;

	if (get_list(p, root, "outputs", &list) != PRESENT)
		return;
	n = (size_t)config_setting_length(list);
	if (n > 0 && (c->outputs = xcalloc(p, n, sizeof(*c->outputs))) == NULL)
		return;
	c->noutputs = n;
	for (i = 0; i < n; i++) {
		g = config_setting_get_elem(list, (unsigned int)i);
		c->outputs[i].line = (int)config_setting_source_line(g);
		snprintf(pre, sizeof(pre), "outputs[%zu]", i);
		if (!config_setting_is_group(g)) {
			perr(p, g, pre, "expected a group");
			continue;
		}
		parse_output(p, g, pre, i);
	}
}

/* An explicit rule of zone z for quantity q: the profile's rules for q step aside. */
static bool
explicit_rule(const struct config *c, size_t nexplicit, const char *z, enum quantity q)
{
	for (size_t i = 0; i < nexplicit; i++)
		if (c->alarms[i].has_quantity && c->alarms[i].quantity == q &&
		    strcmp(c->alarms[i].zone, z) == 0 && c->alarms[i].sensor[0] == '\0')
			return true;
	return false;
}

/*
 * Zone profiles: PROFILES_DIR/NAME.cfg holds `profile = { name; title;
 * alarms = ( ... ); }`; each zone that names one gets its rules, except
 * for quantities the configuration gives rules of its own for that zone.
 */
static void
load_profiles(struct parser *p)
{
	struct config *c = p->conf;
	size_t nexplicit = c->nalarms;
	char *saved_dir = p->dir;

	for (size_t zi = 0; zi < c->nzones && !p->nomem; zi++) {
		struct zone_cfg *z = &c->zones[zi];
		config_setting_t *prof, *list, *g;
		const char *name;
		char *path, pre[PRE_MAX], zkey[PRE_MAX];
		config_t pcf;
		size_t n;

		if (z->profile == NULL || z->id[0] == '\0')
			continue;
		snprintf(zkey, sizeof(zkey), "zones[%zu].profile", zi);
		if (!config_valid_id(z->profile)) {
			perr_at(p, NULL, (unsigned int)z->line, zkey, "\"%s\" is not a profile name",
			    z->profile);
			continue;
		}
		if (asprintf(&path, "%s/%s.cfg", c->gateway.profiles_dir, z->profile) < 0) {
			p->nomem = true;
			break;
		}
		if (access(path, R_OK) != 0) {
			perr_at(p, NULL, (unsigned int)z->line, zkey, "no profile \"%s\" (%s: %s)",
			    z->profile, path, strerror(errno));
			free(path);
			continue;
		}
		config_init(&pcf);
		/* Errors in the profile name the profile's file, as given. */
		p->dir = NULL;
		if (!config_read_file(&pcf, path)) {
			perr_at(p, path, (unsigned int)config_error_line(&pcf), "profile",
			    "syntax error: %s", config_error_text(&pcf) ? config_error_text(&pcf) : "?");
			goto next;
		}
		if ((prof = config_setting_get_member(config_root_setting(&pcf), "profile")) == NULL ||
		    !config_setting_is_group(prof)) {
			perr_at(p, path, 0, "profile", "missing, or not a group");
			goto next;
		}
		check_keys(p, prof, "profile", profile_keys);
		if (get_string(p, prof, "profile", "name", &name) == PRESENT &&
		    strcmp(name, z->profile) != 0)
			perr(p, config_setting_get_member(prof, "name"), "profile.name",
			    "\"%s\" does not match the file name", name);
		if (get_list(p, prof, "alarms", &list) != PRESENT)
			goto next;
		n = (size_t)config_setting_length(list);
		for (size_t i = 0; i < n && !p->nomem; i++) {
			struct alarm_cfg *a;
			const char *q;
			int qi;

			g = config_setting_get_elem(list, (unsigned int)i);
			snprintf(pre, sizeof(pre), "profile.alarms[%zu]", i);
			if (!config_setting_is_group(g)) {
				perr(p, g, pre, "expected a group");
				continue;
			}
			if (config_setting_lookup_string(g, "quantity", &q) &&
			    (qi = quantity_from_name(q)) >= 0 &&
			    explicit_rule(c, nexplicit, z->id, (enum quantity)qi))
				continue;
			a = realloc(c->alarms, (c->nalarms + 1) * sizeof(*c->alarms));
			if (a == NULL) {
				p->nomem = true;
				break;
			}
			c->alarms = a;
			a = &c->alarms[c->nalarms++];
			memset(a, 0, sizeof(*a));
			a->line = (int)config_setting_source_line(g);
			a->from_profile = xstrdup(p, z->profile);
			parse_alarm(p, g, pre, a, z->id);
			for (size_t j = nexplicit; j + 1 < c->nalarms; j++)
				if (alarm_same(&c->alarms[j], a)) {
					perr(p, g, pre, "the same alarm as line %d; give one another "
					    "severity", c->alarms[j].line);
					break;
				}
		}
next:
		p->dir = saved_dir;
		config_destroy(&pcf);
		free(path);
	}
	p->dir = saved_dir;
}

/* What a driver checks of its sensors together (units on one serial line). */
static void
check_shared(struct parser *p, const config_setting_t *root)
{
	const struct config *c = p->conf;
	const config_setting_t *list = config_setting_get_member(root, "sensors");
	const struct sensor_driver *drv;
	struct config_ctx x = { .p = p };

	for (size_t i = 0; list != NULL && i < c->nsensors; i++) {
		const struct sensor_cfg *sc = &c->sensors[i];

		if (sc->driver == NULL || (drv = sensor_driver_find(sc->driver)) == NULL ||
		    drv->check_shared == NULL)
			continue;
		x.setting = config_setting_get_elem(list, (unsigned int)i);
		x.driver = drv->name;
		snprintf(x.pre, sizeof(x.pre), "sensors[%zu]", i);
		drv->check_shared(&x, c, i);
	}
}

/* Sensors name zones that may be listed after them. */
static void
link_sensors(struct parser *p, const config_setting_t *root)
{
	struct config *c = p->conf;
	const config_setting_t *list, *g;
	char key[KEY_MAX];
	size_t i;
	int z;

	if ((list = config_setting_get_member(root, "sensors")) == NULL)
		return;
	for (i = 0; i < c->nsensors; i++) {
		if (c->sensors[i].zone[0] == '\0')
			continue;	/* missing or bad: reported already */
		if ((z = config_zone_index(c, c->sensors[i].zone)) >= 0) {
			c->sensors[i].zone_idx = (size_t)z;
			continue;
		}
		g = config_setting_get_elem(list, (unsigned int)i);
		snprintf(key, sizeof(key), "sensors[%zu].zone", i);
		perr(p, config_setting_get_member(g, "zone"), key,
		    "unknown zone \"%s\"", c->sensors[i].zone);
	}
}

static void
set_defaults(struct config *c)
{
	c->mqtt.port = 1883;
	c->mqtt.keepalive = 30;
	c->mqtt.max_inflight = 20;
	c->mqtt.reconnect_min = 1;
	c->mqtt.reconnect_max = 60;
	c->storage.max_size_mb = 256;
	c->storage.retain_days = 30;
	c->storage.sync = STORE_SYNC_FULL;
	c->storage.commit_interval_ms = 1000;
	c->publish.interval = 60;
	c->publish.summary_period = 86400;
	c->publish.summary_hold = 900;
}

static void
default_string(struct parser *p, char **dst, const char *def)
{
	if (*dst == NULL)
		*dst = xstrdup(p, def);
}

/* The string defaults, and those that derive from other settings. */
static void
finish(struct parser *p, char *store_path)
{
	struct config *c = p->conf;

	default_string(p, &c->gateway.state_dir, "/var/lib/coldgate");
	default_string(p, &c->gateway.sysfs_root, "/sys");
	default_string(p, &c->mqtt.host, "127.0.0.1");
	default_string(p, &c->mqtt.base_topic, "coldgate");
	if (c->mqtt.client_id == NULL && asprintf(&c->mqtt.client_id,
	    "coldgate-%s", c->gateway.id) < 0) {
		c->mqtt.client_id = NULL;
		p->nomem = true;
	}
	if (c->gateway.state_dir != NULL)
		c->storage.path = join_path(p, c->gateway.state_dir,
		    store_path != NULL ? store_path : "coldgate.db");
	/* Profiles sit next to the configuration unless it says otherwise. */
	{
		char *dir = c->gateway.profiles_dir;

		c->gateway.profiles_dir = join_path(p, p->dir, dir != NULL ? dir : "profiles");
		free(dir);
	}
}

static void
parse_root(struct parser *p, const config_setting_t *root)
{
	char *store_path = NULL;

	check_keys(p, root, "", top_keys);
	parse_gateway(p, root);
	parse_mqtt(p, root);
	parse_storage(p, root, &store_path);
	parse_publish(p, root);
	parse_zones(p, root);
	parse_sensors(p, root);
	link_sensors(p, root);
	check_shared(p, root);
	parse_alarms(p, root);
	parse_outputs(p, root);
	finish(p, store_path);
	if (p->nerrs == 0 && !p->nomem)
		load_profiles(p);
	free(store_path);
}

/*
 * libconfig reads an @include file through flex, which exit()s the whole
 * process ("input in flex scanner failed") when a read fails -- as it does
 * on a directory, and `@include ""` names the configuration's own
 * directory -- and blocks for ever on a FIFO.  A reload must neither kill
 * nor hang the daemon, so before libconfig sees the file we find its
 * @include lines the way its scanner does and refuse any that names
 * something other than a regular file, or a file that cannot be read.
 *
 * The scanner (libconfig 1.5 scanner.l) opens an include where a line
 * starts with [ \t]*@include[ \t]+" outside a comment and a string; the
 * name runs to the next " with \\ and \" as escapes (a NUL ends a run of
 * plain characters); it opens "<include dir>/NAME" and reads it at once.
 * Its state carries over from the end of an included file to the rest of
 * the including one, and so does ours.  libconfig gives up at the first
 * include it cannot open or that nests too deep, and so do we: it reads
 * nothing after that.
 */
#define INCLUDE_DEPTH_MAX	10	/* libconfig's MAX_INCLUDE_DEPTH */

enum scan_state { SCAN_CODE, SCAN_COMMENT, SCAN_STRING, SCAN_INCLUDE };

struct include_scan {
	enum scan_state	 state;
	char		 name[PATH_MAX];	/* of the @include being read */
	size_t		 len;
	bool		 toolong;
	bool		 stop;		/* libconfig reads no further */
};

static int scan_includes(struct parser *, struct include_scan *, FILE *,
    const char *, int);

static int
peek(FILE *fp)
{
	int ch = getc(fp);

	if (ch != EOF)
		ungetc(ch, fp);
	return ch;
}

/*
 * At the start of a line: consume "[ \t]*@include[ \t]+\"" if it is there.
 * Otherwise put back the character that did not match; those consumed
 * before it (blanks, part of "@include") change no scanner state.
 */
static bool
include_opens(FILE *fp)
{
	const char *w;
	int ch;

	do
		ch = getc(fp);
	while (ch == ' ' || ch == '\t');
	for (w = "@include"; *w != '\0'; w++, ch = getc(fp))
		if (ch != *w)
			goto mismatch;
	if (ch != ' ' && ch != '\t')
		goto mismatch;
	do
		ch = getc(fp);
	while (ch == ' ' || ch == '\t');
	if (ch == '"')
		return true;
mismatch:
	if (ch != EOF)
		ungetc(ch, fp);
	return false;
}

/* The @include just read, at LINE of FILE (NULL: the configuration). */
static void
include_file(struct parser *p, struct include_scan *sc, const char *file,
    unsigned int line, int depth)
{
	char full[PATH_MAX], q[QUOTE_MAX], *inc;
	struct stat st;
	FILE *fp;
	int fd, n, err;

	sc->name[sc->len] = '\0';
	/* libconfig fails on these: too deep, or a name too long to open. */
	if (depth == INCLUDE_DEPTH_MAX || sc->toolong ||
	    (n = snprintf(full, sizeof(full), "%s/%s", p->dir, sc->name)) < 0 ||
	    (size_t)n >= sizeof(full) ||
	    (fd = open(full, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1) {
		sc->stop = true;
		return;
	}
	if (fstat(fd, &st) == -1)
		st.st_mode = 0;		/* say "not a regular file" */
	if (!S_ISREG(st.st_mode)) {
		perr_at(p, file, line, "@include", "cannot read %s: %s",
		    config_quote(q, sc->name), S_ISDIR(st.st_mode) ? strerror(EISDIR) :
		    "not a regular file");
		close(fd);
		sc->stop = true;
		return;
	}
	if ((inc = xstrdup(p, sc->name)) == NULL ||
	    (fp = fdopen(fd, "r")) == NULL) {
		p->nomem = true;
		sc->stop = true;
		free(inc);
		close(fd);
		return;
	}
	if ((err = scan_includes(p, sc, fp, inc, depth + 1)) != 0) {
		perr_at(p, file, line, "@include", "cannot read %s: %s",
		    config_quote(q, inc), strerror(err));
		sc->stop = true;
	}
	fclose(fp);
	free(inc);
}

/*
 * Scan FP, the file FILE (NULL: the configuration), DEPTH includes deep.
 * Returns 0, or the errno of a failed read of FP, which flex too would
 * meet (and exit on).
 */
static int
scan_includes(struct parser *p, struct include_scan *sc, FILE *fp,
    const char *file, int depth)
{
	unsigned int line = 1;
	bool bol = true, cut = false;
	int ch, err = 0;

	for (;;) {
		if (sc->state == SCAN_CODE && bol) {
			bol = false;
			if (include_opens(fp)) {
				sc->state = SCAN_INCLUDE;
				sc->len = 0;
				sc->toolong = false;
				cut = false;
			}
			continue;
		}
		if ((ch = getc(fp)) == EOF) {
			err = errno;
			break;
		}
		if (ch == '\n')
			line++;
		switch (sc->state) {
		case SCAN_CODE:
			if (ch == '\n')
				bol = true;
			else if (ch == '"')
				sc->state = SCAN_STRING;
			else if (ch == '#' || (ch == '/' && peek(fp) == '/')) {
				/* To the end of the line, not the newline. */
				while ((ch = peek(fp)) != EOF && ch != '\n')
					getc(fp);
			} else if (ch == '/' && peek(fp) == '*') {
				getc(fp);
				sc->state = SCAN_COMMENT;
			}
			break;
		case SCAN_COMMENT:
			if (ch == '*' && peek(fp) == '/') {
				getc(fp);
				sc->state = SCAN_CODE;
			}
			break;
		case SCAN_STRING:
			if (ch == '\\') {
				if ((ch = peek(fp)) == '\\' || ch == '"')
					getc(fp);
			} else if (ch == '"')
				sc->state = SCAN_CODE;
			break;
		case SCAN_INCLUDE:
			if (ch == '"') {
				sc->state = SCAN_CODE;
				include_file(p, sc, file, line, depth);
				if (sc->stop)
					return 0;
				break;
			}
			if (ch == '\\') {
				/* Any other character after it starts a new run. */
				cut = false;
				if ((ch = peek(fp)) != '\\' && ch != '"')
					break;
				getc(fp);
			} else if (ch == '\0')
				cut = true;
			if (cut)
				break;
			if (sc->len == sizeof(sc->name) - 1)
				sc->toolong = true;
			else
				sc->name[sc->len++] = (char)ch;
			break;
		}
	}
	return ferror(fp) ? (err != 0 ? err : EIO) : 0;
}

/* The directory part of PATH, "." when it has none. */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/*
 * All errors as one malloc'd text, one per line.  Out of memory, the text
 * says only that; NULL when not even that can be had.
 */
static char *
error_text(struct parser *p)
{
	char *buf = NULL;
	size_t i, len = 0, o = 0;

	if (!p->nomem) {
		/*
		 * Sort by line so the operator reads the file top to bottom;
		 * an insertion sort is stable, so errors on one line keep
		 * the order they were found in.
		 */
		for (i = 1; i < p->nerrs; i++) {
			struct cfg_error e = p->errs[i];
			size_t j = i;

			while (j > 0 && p->errs[j - 1].line > e.line) {
				p->errs[j] = p->errs[j - 1];
				j--;
			}
			p->errs[j] = e;
		}
		for (i = 0; i < p->nerrs; i++)
			len += strlen(p->errs[i].text) + 1;
		len += strlen(p->path) + 64;
		if ((buf = malloc(len)) != NULL) {
			for (i = 0; i < p->nerrs; i++)
				o += (size_t)snprintf(buf + o, len - o, "%s\n",
				    p->errs[i].text);
			if (p->dropped > 0)
				snprintf(buf + o, len - o,
				    "%s: %zu more errors not shown\n", p->path,
				    p->dropped);
		}
	}
	if (buf == NULL && asprintf(&buf, "%s: out of memory\n", p->path) < 0)
		return NULL;
	return buf;
}

struct config *
config_load(const char *path, char **errors)
{
	struct parser p = { .path = path };
	struct config *c = NULL;
	struct stat st;
	config_t cf;
	FILE *fp;
	size_t i;

	*errors = NULL;
	if ((fp = fopen(path, "re")) == NULL)
		goto err_read;
	/* fopen() opens a directory happily; reading it fails later. */
	if (fstat(fileno(fp), &st) == -1)
		goto err_close;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto err_close;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->path = strdup(path)) == NULL || (p.dir = dir_of(path)) == NULL) {
		p.nomem = true;
		goto done;
	}
	p.conf = c;
	set_defaults(c);

	/* A FIFO or the like cannot be read twice: libconfig alone reads it. */
	if (S_ISREG(st.st_mode)) {
		struct include_scan sc = { .state = SCAN_CODE };
		int err;

		if ((err = scan_includes(&p, &sc, fp, NULL, 0)) != 0)
			perr_at(&p, NULL, 0, "cannot read", "%s", strerror(err));
		if (p.nomem || p.nerrs > 0)
			goto done;
		rewind(fp);
	}

	config_init(&cf);
	/* @include names are relative to the file, not to our cwd. */
	config_set_include_dir(&cf, p.dir);
	if (!config_read(&cf, fp)) {
		const char *text = config_error_text(&cf) != NULL ?
		    config_error_text(&cf) : "?";
		const char *dir, *sep, *file;
		char *e;

		/* In an included file, config_error_file() names it. */
		file_name(&p, config_error_file(&cf), &dir, &sep, &file);
		/* libconfig's plain text is "syntax error": don't say it twice. */
		if (asprintf(&e, "%s%s%s:%d: syntax error%s%s", dir, sep, file,
		    config_error_line(&cf), strcmp(text, "syntax error") == 0 ?
		    "" : ": ", strcmp(text, "syntax error") == 0 ? "" : text) < 0)
			p.nomem = true;
		else {
			p.errs[0].line = (unsigned int)config_error_line(&cf);
			p.errs[0].text = e;
			p.nerrs = 1;
		}
	} else
		parse_root(&p, config_root_setting(&cf));
	config_destroy(&cf);

done:
	fclose(fp);
	if (p.nomem || p.nerrs > 0) {
		*errors = error_text(&p);
		config_free(c);
		c = NULL;
	}
	for (i = 0; i < p.nerrs; i++)
		free(p.errs[i].text);
	free(p.dir);
	return c;

err_close:
	i = (size_t)errno;
	fclose(fp);
	errno = (int)i;
err_read:
	if (asprintf(errors, "%s: cannot read: %s\n", path, strerror(errno)) < 0)
		*errors = NULL;
	return NULL;
}

void
config_free(struct config *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->path);
	free(c->gateway.site);
	free(c->gateway.state_dir);
	free(c->gateway.sysfs_root);
	free(c->gateway.profiles_dir);
	free(c->mqtt.host);
	free(c->mqtt.base_topic);
	free(c->mqtt.client_id);
	free(c->mqtt.username);
	free(c->mqtt.password_file);
	free(c->mqtt.tls_ca_file);
	free(c->mqtt.tls_cert_file);
	free(c->mqtt.tls_key_file);
	free(c->storage.path);
	for (i = 0; i < c->nzones; i++) {
		free(c->zones[i].name);
		free(c->zones[i].profile);
	}
	free(c->zones);
	for (i = 0; i < c->nsensors; i++) {
		struct sensor_cfg *s = &c->sensors[i];
		const struct sensor_driver *drv;

		/* Only a sensor whose driver was found has been configured. */
		if (s->driver != NULL && (drv = sensor_driver_find(s->driver)) != NULL &&
		    drv->unconfigure != NULL)
			drv->unconfigure(s);
	}
	free(c->sensors);
	while (c->strings != NULL) {
		struct str_block *b = c->strings;

		c->strings = b->next;
		free(b);
	}
	for (i = 0; i < c->noutputs; i++)
		free(c->outputs[i].zones);
	free(c->outputs);
	for (i = 0; i < c->nalarms; i++) {
		free(c->alarms[i].from_profile);
	}
	free(c->alarms);
	free(c);
}

int
config_zone_index(const struct config *c, const char *id)
{
	for (size_t i = 0; i < c->nzones; i++)
		if (strcmp(c->zones[i].id, id) == 0)
			return (int)i;
	return -1;
}

int
config_sensor_index(const struct config *c, const char *id)
{
	for (size_t i = 0; i < c->nsensors; i++)
		if (strcmp(c->sensors[i].id, id) == 0)
			return (int)i;
	return -1;
}

const char *
sensor_device(const struct sensor_cfg *sc)
{
	switch (sc->kind) {
	case SENSOR_DEVICE:
		return sc->dev.device;
	case SENSOR_MODBUS:
		return sc->modbus.device;
	default:
		return NULL;
	}
}

bool
config_valid_id(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	for (n = 0; s[n] != '\0'; n++) {
		if (n == CONFIG_ID_MAX)
			return false;
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' &&
		    s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') ||
		    s[n] == '_' || s[n] == '-'))
			return false;
	}
	return n > 0;
}
