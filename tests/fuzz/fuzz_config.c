/*
 * libFuzzer target for config_load() (daemon/config.c).  Built and run by
 * scripts/fuzz; not part of `make check`.
 *
 * Each input is written to FUZZ_DIR/fuzz.cfg and loaded.  FUZZ_DIR is a
 * temporary directory made once per process that also holds a few fixed
 * files the input may @include or name, so that the include machinery and
 * the file checks are reached: libconfig resolves an @include against the
 * directory we give it (the input's own directory), even an absolute name.
 *
 *   inc.cfg	top-level settings (a zones list)
 *   frag.cfg	settings that fit inside a sensor group
 *   bad.cfg	settings with errors, so that errors name an included file
 *   pw		a readable file for password_file and the TLS files
 *   fifo	a FIFO, which must be refused without blocking
 *
 * What must hold for every input, besides "no crash, leak, hang or UB":
 *   - exactly one of the config and the error text is non-NULL;
 *   - the error text is non-empty lines, each "FILE:..." where FILE is the
 *     input's path or a file in FUZZ_DIR (an included one), with no control
 *     characters and only valid UTF-8 (messages quote bad bytes as \xNN);
 *   - a config that loads satisfies what config.h promises of it.
 *
 * With FUZZ_VERBOSE set in the environment it prints each outcome.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "output.h"
#include "quantity.h"
#include "sensor.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char fuzz_dir[4096];
static char cfg_path[4200];
static bool verbose;		/* FUZZ_VERBOSE set: print each outcome */

static const struct {
	const char *name, *text;
} fixed_files[] = {
	{ "inc.cfg",
	  "zones = ( { id = \"inc-1\"; name = \"\xe5\x8c\x85\xe5\x90\xab\"; },\n"
	  "          { id = \"house-1\"; profile = \"p\"; } );\n" },
	{ "frag.cfg",
	  "id = \"frag-1\";\nzone = \"house-1\";\ndriver = \"sim\";\n"
	  "profile = \"cold-room\";\ninterval = 5;\n" },
	{ "bad.cfg",
	  "publish = { interval = 0; };\nmqtt = { port = \"x\"; colour = 1; };\n" },
	{ "pw", "secret\n" },
};

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_config: invariant broken: %s\n%s\n", what,
	    detail != NULL ? detail : "");
	abort();
}

static void
remove_dir(void)
{
	char path[4300];
	size_t i;

	unlink(cfg_path);
	snprintf(path, sizeof(path), "%s/fifo", fuzz_dir);
	unlink(path);
	for (i = 0; i < sizeof(fixed_files) / sizeof(fixed_files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", fuzz_dir,
		    fixed_files[i].name);
		unlink(path);
	}
	rmdir(fuzz_dir);
}

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE *fp;

	if ((fp = fopen(path, "we")) == NULL) {
		perror(path);
		abort();
	}
	if (len > 0 && fwrite(data, 1, len, fp) != len) {
		perror(path);
		abort();
	}
	if (fclose(fp) != 0) {
		perror(path);
		abort();
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char path[4300];
	size_t i;
	int fd;

	(void)argc;
	(void)argv;
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/coldgate-fuzz.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(fuzz_dir) == NULL) {
		perror(fuzz_dir);
		abort();
	}
	snprintf(cfg_path, sizeof(cfg_path), "%s/fuzz.cfg", fuzz_dir);
	for (i = 0; i < sizeof(fixed_files) / sizeof(fixed_files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", fuzz_dir,
		    fixed_files[i].name);
		write_file(path, fixed_files[i].text,
		    strlen(fixed_files[i].text));
	}
	snprintf(path, sizeof(path), "%s/fifo", fuzz_dir);
	if (mkfifo(path, 0600) == -1) {
		perror(path);
		abort();
	}
	atexit(remove_dir);
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	/* libconfig's scanner ECHOes stray characters to stdout: mute it. */
	if ((fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) != -1) {
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
	return 0;
}

/* Valid UTF-8 without control characters other than '\n'. */
static bool
clean_text(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t c;
	int i, n;

	while (*u != '\0') {
		if (*u < 0x80) {
			if ((*u < 0x20 && *u != '\n') || *u == 0x7f)
				return false;
			u++;
			continue;
		}
		if ((*u & 0xe0) == 0xc0) {
			c = *u & 0x1f;
			n = 1;
		} else if ((*u & 0xf0) == 0xe0) {
			c = *u & 0x0f;
			n = 2;
		} else if ((*u & 0xf8) == 0xf0) {
			c = *u & 0x07;
			n = 3;
		} else
			return false;
		for (i = 1; i <= n; i++) {
			if ((u[i] & 0xc0) != 0x80)
				return false;
			c = c << 6 | (u[i] & 0x3f);
		}
		if ((n == 1 && c < 0x80) || (n == 2 && c < 0x800) ||
		    (n == 3 && c < 0x10000) || c > 0x10ffff ||
		    (c >= 0xd800 && c <= 0xdfff) || c < 0xa0)
			return false;
		u += n + 1;
	}
	return true;
}

static void
check_errors(const char *errors)
{
	size_t plen = strlen(cfg_path), dlen = strlen(fuzz_dir);
	const char *line, *nl;

	if (errors[0] == '\0')
		die("empty error text", NULL);
	if (errors[strlen(errors) - 1] != '\n')
		die("error text does not end in a newline", errors);
	if (!clean_text(errors))
		die("error text has control characters or bad UTF-8", errors);
	for (line = errors; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		if (nl == line)
			die("empty error line", errors);
		if (strncmp(line, cfg_path, plen) == 0 && line[plen] == ':')
			continue;
		/* An included file: FUZZ_DIR/NAME:LINE: ... */
		if (strncmp(line, fuzz_dir, dlen) == 0 && line[dlen] == '/' &&
		    memchr(line, ':', (size_t)(nl - line)) != NULL)
			continue;
		die("error line does not start with the file", errors);
	}
}

static bool
good_name(const char *s)
{
	return s != NULL && s[0] != '\0' && clean_text(s) &&
	    strchr(s, '\n') == NULL;
}

/* A sim sensor: a profile, or a script with its quantity; ordered times. */
static void
check_sim(const struct sensor_cfg *s)
{
	const struct sim_cfg *m = &s->sim;
	size_t j;

	if ((m->nscript == 0) != (m->script == NULL) ||
	    (m->nfail == 0) != (m->fail == NULL))
		die("sensor script/fail count", s->id);
	for (j = 0; j < m->nscript; j++)
		if (m->script[j].t < 0 ||
		    (j > 0 && m->script[j].t <= m->script[j - 1].t))
			die("script times", s->id);
	for (j = 0; j < m->nfail; j++)
		if (m->fail[j].from < 0 || m->fail[j].from >= m->fail[j].to)
			die("fail window", s->id);
	if (m->profile == NULL && ((unsigned)m->quantity >= Q_COUNT || m->nscript == 0))
		die("sim sensor without profile or script", s->id);
}

/* What config.h promises of a config that loaded. */
static void
check_config(const struct config *c)
{
	size_t i;

	if (c->path == NULL || strcmp(c->path, cfg_path) != 0)
		die("config.path", NULL);
	if (!config_valid_id(c->gateway.id))
		die("gateway.id", c->gateway.id);
	if (c->gateway.state_dir == NULL || c->gateway.sysfs_root == NULL ||
	    c->mqtt.host == NULL || c->mqtt.base_topic == NULL ||
	    c->mqtt.client_id == NULL || c->storage.path == NULL)
		die("a defaulted string is NULL", NULL);
	if (c->mqtt.port < 1 || c->mqtt.port > 65535 ||
	    c->mqtt.keepalive < 5 || c->mqtt.keepalive > 3600 ||
	    c->mqtt.max_inflight < 1 || c->mqtt.max_inflight > 1000 ||
	    c->mqtt.reconnect_min < 1 ||
	    c->mqtt.reconnect_max < c->mqtt.reconnect_min ||
	    c->storage.max_size_mb < 1 || c->storage.retain_days < 1 ||
	    c->storage.commit_interval_ms < 10 ||
	    c->publish.interval < 1 || c->publish.interval > 86400)
		die("a number out of its range", NULL);
	if ((c->nzones == 0) != (c->zones == NULL) ||
	    (c->nsensors == 0) != (c->sensors == NULL) ||
	    (c->nalarms == 0) != (c->alarms == NULL) ||
	    (c->noutputs == 0) != (c->outputs == NULL))
		die("a count disagrees with its array", NULL);
	for (i = 0; i < c->nzones; i++) {
		if (!config_valid_id(c->zones[i].id))
			die("zone id", c->zones[i].id);
		if (!good_name(c->zones[i].name))
			die("zone name", c->zones[i].name);
		if (config_zone_index(c, c->zones[i].id) != (int)i)
			die("duplicate zone id", c->zones[i].id);
	}
	for (i = 0; i < c->nsensors; i++) {
		const struct sensor_cfg *s = &c->sensors[i];

		if (!config_valid_id(s->id) ||
		    config_sensor_index(c, s->id) != (int)i)
			die("sensor id", s->id);
		if (s->zone_idx >= c->nzones ||
		    strcmp(c->zones[s->zone_idx].id, s->zone) != 0)
			die("sensor zone", s->zone);
		if (s->driver == NULL || sensor_driver_find(s->driver) == NULL)
			die("sensor driver", s->driver);
		if (!(s->interval >= 0.01 && s->interval <= 86400))
			die("sensor interval", s->id);
		if (s->kind == SENSOR_SIM)
			check_sim(s);
	}
	for (i = 0; i < c->nalarms; i++) {
		const struct alarm_cfg *a = &c->alarms[i];

		if (a->zone[0] != '\0' && config_zone_index(c, a->zone) < 0)
			die("alarm zone", a->zone);
		if (a->sensor[0] != '\0' && config_sensor_index(c, a->sensor) < 0)
			die("alarm sensor", a->sensor);
		if ((unsigned)a->type >= ALARM_TYPE_COUNT)
			die("alarm type", a->zone);
		if (a->has_quantity && (unsigned)a->quantity >= Q_COUNT)
			die("alarm quantity", a->zone);
		if (a->type == ALARM_TYPE_THRESHOLD && !a->has_high && !a->has_low)
			die("threshold alarm without limits", a->zone);
		if (a->has_high && a->has_low && !(a->low < a->high))
			die("alarm low not below high", a->zone);
		if (a->delay < 0 || a->delay > 86400 || !(a->hysteresis >= 0))
			die("alarm delay/hysteresis", a->zone);
	}
	for (i = 0; i < c->noutputs; i++) {
		const struct output_cfg *o = &c->outputs[i];

		if (!config_valid_id(o->id))
			die("output id", o->id);
		if (o->driver == NULL || output_driver_find(o->driver) == NULL)
			die("output driver", o->driver);
		/* gpio-output, the only output driver: its table's required keys. */
		if (!good_name(o->chip) || o->gpio_line < 0 || o->gpio_line > 65535)
			die("output chip/line", o->id);
		if ((unsigned)o->role >= OUTPUT_ROLE_COUNT)
			die("output role", o->id);
		if ((o->nzones == 0) != (o->zones == NULL))
			die("output zones count", o->id);
		for (size_t j = 0; j < o->nzones; j++)
			if (config_zone_index(c, o->zones[j]) < 0)
				die("output zone", o->zones[j]);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c;
	char *errors = (char *)1;

	write_file(cfg_path, data, size);
	c = config_load(cfg_path, &errors);
	if ((c == NULL) == (errors == NULL))
		die(c == NULL ? "neither config nor errors" :
		    "both config and errors", errors);
	if (verbose)
		fprintf(stderr, "%s", errors != NULL ? errors : "loaded\n");
	if (errors != NULL)
		check_errors(errors);
	else
		check_config(c);
	config_free(c);
	free(errors);
	return 0;
}
