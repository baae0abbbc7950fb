/*
 * coldgatectl export end to end (SPEC §2): the real coldgated on sim
 * sensors raises an alarm in a cold room, it is acknowledged over MQTT, the
 * daemon stops, and the export of the period is one CSV: UTF-8 with a BOM,
 * the documented header, readings with the zones' Chinese names, the alarm's
 * active and acked transitions, the ack with who gave it, the daemon's start
 * and stop, all in time order and quoted per RFC 4180.  Then --zone,
 * --what and the errors; and, on a store written here directly, readings
 * taken with a bad clock and the merge order of audit rows between readings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/harness.h"

#include "alarm.h"
#include "store.h"

#define ALARM_ID	"c1-probe-temperature-high"
#define ALARM_TOPIC	"alarm/" ALARM_ID
#define BOM		"\xEF\xBB\xBF"
#define HEADER		"record,time,ts,zone,zone_name,sensor,quantity,unit,value,alarm,state," \
			"limit,by,detail"

/*
 * Three zones: a cold room whose probe warms above 4 C after 2 s (the alarm,
 * delay 1 s), a mushroom house whose name holds a comma and quotes, and a
 * freezer whose name a spreadsheet would take for a formula.
 */
static const char cfg_text[] =
	HARNESS_CFG_HEAD
	"publish = { interval = 1; };\n"
	"zones = (\n"
	"  { id = \"cold-1\"; name = \"冷库 1\"; },\n"
	"  { id = \"house-1\"; name = \"菇房 A, \\\"东\\\"\"; },\n"
	"  { id = \"freezer-1\"; name = \"-18℃ 冷冻库\"; }\n"
	");\n"
	"sensors = (\n"
	"  { id = \"c1-probe\"; zone = \"cold-1\"; driver = \"sim\"; quantity = \"temperature\";\n"
	"    script = ( (0, 2.0), (2, 2.0), (3, 9.0), (3600, 9.0) ); interval = 0.25; },\n"
	"  { id = \"h1-air\"; zone = \"house-1\"; driver = \"sim\"; profile = \"mushroom-house\"; interval = 0.5; },\n"
	"  { id = \"f1-probe\"; zone = \"freezer-1\"; driver = \"sim\"; quantity = \"temperature\";\n"
	"    script = ( (0, -18.5), (3600, -18.5) ); interval = 0.5; }\n"
	");\n"
	"alarms = (\n"
	"  { zone = \"cold-1\"; quantity = \"temperature\"; high = 4.0; delay = 1; }\n"
	");\n";

enum {
	C_RECORD, C_TIME, C_TS, C_ZONE, C_ZONE_NAME, C_SENSOR, C_QUANTITY, C_UNIT, C_VALUE,
	C_ALARM, C_STATE, C_LIMIT, C_BY, C_DETAIL, NCOLS
};

struct csv {
	char		*(*rows)[NCOLS];
	size_t		 n;
};

static void
csv_free(struct csv *c)
{
	for (size_t i = 0; i < c->n; i++)
		for (int j = 0; j < NCOLS; j++)
			free(c->rows[i][j]);
	free(c->rows);
	c->rows = NULL;
	c->n = 0;
}

/*
 * RFC 4180 with CRLF line ends, after the BOM and the header line (which
 * must be exactly HEADER).  Fails the test on anything else.
 */
static void
csv_parse(const char *text, struct csv *c)
{
	const char *p = text;

	memset(c, 0, sizeof(*c));
	if (strncmp(p, BOM, 3) != 0)
		fail_msg("the export does not start with the UTF-8 BOM:\n%.200s", text);
	p += 3;
	if (strncmp(p, HEADER "\r\n", strlen(HEADER) + 2) != 0)
		fail_msg("the header line is not\n%s\\r\\n:\n%.300s", HEADER, p);
	p += strlen(HEADER) + 2;
	while (*p != '\0') {
		int nf = 0;

		c->rows = realloc(c->rows, (c->n + 1) * sizeof(*c->rows));
		assert_non_null(c->rows);
		memset(c->rows[c->n], 0, sizeof(c->rows[c->n]));
		c->n++;
		for (;;) {
			char *f = malloc(strlen(p) + 1);
			size_t len = 0;

			assert_non_null(f);
			if (*p == '"') {
				for (p++;; p++) {
					if (*p == '\0')
						fail_msg("unterminated quoted field in row %zu", c->n);
					if (*p == '"' && p[1] == '"')
						f[len++] = *p++;
					else if (*p == '"')
						break;
					else
						f[len++] = *p;
				}
				p++;
			} else {
				while (*p != ',' && *p != '\r' && *p != '\n' && *p != '\0') {
					if (*p == '"')
						fail_msg("a quote in an unquoted field in row %zu", c->n);
					f[len++] = *p++;
				}
			}
			f[len] = '\0';
			if (nf >= NCOLS)
				fail_msg("row %zu has more than %d fields", c->n, NCOLS);
			c->rows[c->n - 1][nf++] = f;
			if (*p == ',') {
				p++;
				continue;
			}
			if (p[0] != '\r' || p[1] != '\n')
				fail_msg("row %zu does not end with CRLF", c->n);
			p += 2;
			break;
		}
		if (nf != NCOLS)
			fail_msg("row %zu has %d fields, not %d", c->n, nf, NCOLS);
	}
}

static char *
run_ctl(struct harness *h, const char *const *argv, int want_rc, char **err_out)
{
	char *out, *err;
	int rc = harness_run(h, argv, &out, &err, HARNESS_TIMEOUT);

	if (rc != want_rc) {
		fprintf(stderr, "argv:");
		for (int i = 0; argv[i] != NULL; i++)
			fprintf(stderr, " %s", argv[i]);
		fail_msg("\ncoldgatectl exited %d, want %d:\n%.2000s\n%s", rc, want_rc, out, err);
	}
	if (err_out != NULL)
		*err_out = err;
	else
		free(err);
	return out;
}

static int64_t
ts_of(struct csv *c, size_t i)
{
	return strtoll(c->rows[i][C_TS], NULL, 10);
}

static size_t
count_record(struct csv *c, const char *record)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n; i++)
		n += strcmp(c->rows[i][C_RECORD], record) == 0;
	return n;
}

static bool
is_ok_result(const struct harness_msg *m, const void *unused)
{
	json_object *ok = harness_json_get(m->json, "ok");

	(void)unused;
	return ok != NULL && json_object_get_boolean(ok);
}

static void
test_export_period(void **state)
{
	struct harness *h = *state;
	struct harness_sub *sub;
	struct csv c;
	char *cfg, *out, *err, since[32], until[32];
	int64_t started = harness_wall_ms(), prev = INT64_MIN;
	bool active = false, acked = false, ack = false, start = false, stop = false;
	size_t cold = 0, house = 0, freezer = 0;

	cfg = harness_write_config(h, "coldgate.cfg", cfg_text);
	sub = harness_sub_start(h, "coldgate/#", false);
	assert_non_null(sub);
	assert_int_equal(harness_daemon_start(h, cfg, NULL), 0);
	if (harness_sub_wait(sub, 0, ALARM_TOPIC, harness_match_state, "active",
	    HARNESS_TIMEOUT) < 0)
		fail_msg("no active alarm");
	harness_sub_publish(sub, HARNESS_BASE "cmd/ack",
	    "{\"alarm\":\"" ALARM_ID "\",\"by\":\"王师傅\"}");
	if (harness_sub_wait(sub, 0, "cmd/result", is_ok_result, NULL, HARNESS_TIMEOUT) < 0 ||
	    harness_sub_wait(sub, 0, ALARM_TOPIC, harness_match_state, "acked",
	    HARNESS_TIMEOUT) < 0)
		fail_msg("the ack did not take");
	/* Some readings after the ack too. */
	harness_sleep(1.0);
	assert_int_equal(harness_daemon_stop(h), 0);

	/* The parser takes epoch seconds, and relative times only into the past. */
	snprintf(since, sizeof(since), "%" PRId64, started / 1000 - 3600);
	snprintf(until, sizeof(until), "%" PRId64, harness_wall_ms() / 1000 + 3600);
	{
		const char *argv[] = { h->coldgatectl, "-c", cfg, "export", "--since", since,
		    "--until", until, NULL };

		out = run_ctl(h, argv, 0, NULL);
	}
	csv_parse(out, &c);
	/* RFC 4180: a field with a comma is quoted, its quotes doubled. */
	if (strstr(out, ",\"菇房 A, \"\"东\"\"\",") == NULL)
		fail_msg("the zone name with a comma and quotes is not quoted per RFC 4180");
	/* The start row's JSON detail has commas: quoted too. */
	if (strstr(out, ",\"{\"\"version\"\":") == NULL)
		fail_msg("the start event's JSON detail is not quoted");
	free(out);

	for (size_t i = 0; i < c.n; i++) {
		char **f = c.rows[i];
		int64_t ts = ts_of(&c, i);
		char want[40];
		time_t t = (time_t)(ts / 1000);
		struct tm tm;

		if (ts < prev)
			fail_msg("row %zu (ts %" PRId64 ") comes after ts %" PRId64, i + 1, ts, prev);
		prev = ts;
		/* Local ISO 8601 with the offset as +hh:mm. */
		localtime_r(&t, &tm);
		strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
		if (strncmp(f[C_TIME], want, strlen(want)) != 0 ||
		    strlen(f[C_TIME]) != strlen(want) + 6 || f[C_TIME][strlen(want) + 3] != ':' ||
		    (f[C_TIME][strlen(want)] != '+' && f[C_TIME][strlen(want)] != '-'))
			fail_msg("row %zu: time %s for ts %" PRId64, i + 1, f[C_TIME], ts);

		if (strcmp(f[C_RECORD], "reading") == 0) {
			if (f[C_DETAIL][0] != '\0')
				fail_msg("row %zu: a reading on a good clock with detail %s", i + 1,
				    f[C_DETAIL]);
			if (strcmp(f[C_SENSOR], "c1-probe") == 0) {
				cold++;
				if (strcmp(f[C_ZONE], "cold-1") != 0 ||
				    strcmp(f[C_ZONE_NAME], "冷库 1") != 0 ||
				    strcmp(f[C_QUANTITY], "temperature") != 0 ||
				    strcmp(f[C_UNIT], "C") != 0)
					fail_msg("row %zu: c1-probe reading %s,%s,%s,%s", i + 1,
					    f[C_ZONE], f[C_ZONE_NAME], f[C_QUANTITY], f[C_UNIT]);
			} else if (strcmp(f[C_SENSOR], "h1-air") == 0) {
				house++;
				if (strcmp(f[C_ZONE_NAME], "菇房 A, \"东\"") != 0)
					fail_msg("row %zu: zone name %s", i + 1, f[C_ZONE_NAME]);
			} else if (strcmp(f[C_SENSOR], "f1-probe") == 0) {
				freezer++;
				/* A leading '-' would be a formula to a spreadsheet. */
				if (strcmp(f[C_ZONE_NAME], "'-18℃ 冷冻库") != 0 ||
				    strcmp(f[C_VALUE], "-18.5") != 0)
					fail_msg("row %zu: freezer reading %s %s", i + 1,
					    f[C_ZONE_NAME], f[C_VALUE]);
			} else {
				fail_msg("row %zu: reading of sensor %s", i + 1, f[C_SENSOR]);
			}
		} else if (strcmp(f[C_RECORD], "alarm") == 0) {
			if (strcmp(f[C_ALARM], ALARM_ID) != 0 || strcmp(f[C_ZONE], "cold-1") != 0 ||
			    strcmp(f[C_ZONE_NAME], "冷库 1") != 0 ||
			    strcmp(f[C_SENSOR], "c1-probe") != 0 || strcmp(f[C_UNIT], "C") != 0 ||
			    strcmp(f[C_LIMIT], "4") != 0 || strtod(f[C_VALUE], NULL) <= 4.0)
				fail_msg("row %zu: alarm row %s %s %s %s %s %s %s", i + 1, f[C_ALARM],
				    f[C_ZONE], f[C_ZONE_NAME], f[C_SENSOR], f[C_UNIT], f[C_VALUE],
				    f[C_LIMIT]);
			if (strcmp(f[C_STATE], "active") == 0) {
				if (active || acked)
					fail_msg("row %zu: a second or late active row", i + 1);
				active = true;
			} else if (strcmp(f[C_STATE], "acked") == 0) {
				if (!active || strcmp(f[C_BY], "王师傅") != 0)
					fail_msg("row %zu: acked row by '%s'", i + 1, f[C_BY]);
				acked = true;
			} else {
				fail_msg("row %zu: alarm state %s", i + 1, f[C_STATE]);
			}
		} else if (strcmp(f[C_RECORD], "ack") == 0) {
			if (strcmp(f[C_ALARM], ALARM_ID) != 0 || strcmp(f[C_BY], "王师傅") != 0 ||
			    strcmp(f[C_ZONE_NAME], "冷库 1") != 0 ||
			    strstr(f[C_DETAIL], "\"via\":\"mqtt\"") == NULL || !active)
				fail_msg("row %zu: ack row %s by %s, %s, %s", i + 1, f[C_ALARM],
				    f[C_BY], f[C_ZONE_NAME], f[C_DETAIL]);
			ack = true;
		} else if (strcmp(f[C_RECORD], "event") == 0) {
			if (f[C_DETAIL][0] != '{')
				fail_msg("row %zu: event detail %s", i + 1, f[C_DETAIL]);
			if (strcmp(f[C_STATE], "start") == 0) {
				if (start || i != 0)
					fail_msg("row %zu: start is not the first row", i + 1);
				start = true;
			} else if (strcmp(f[C_STATE], "stop") == 0) {
				if (stop || i != c.n - 1)
					fail_msg("row %zu: stop is not the last row", i + 1);
				stop = true;
			}
		} else {
			fail_msg("row %zu: record %s", i + 1, f[C_RECORD]);
		}
	}
	if (!active || !acked || !ack || !start || !stop)
		fail_msg("missing rows: active %d acked %d ack %d start %d stop %d", active, acked,
		    ack, start, stop);
	if (cold < 10 || house < 3 || freezer < 3)
		fail_msg("readings: %zu cold room, %zu house, %zu freezer", cold, house, freezer);
	csv_free(&c);

	/* --zone house-1: that zone's readings and the gateway's events; not the cold room's alarm. */
	{
		const char *argv[] = { h->coldgatectl, "-c", cfg, "export", "--since", since,
		    "--until", until, "--zone", "house-1", NULL };

		out = run_ctl(h, argv, 0, NULL);
		csv_parse(out, &c);
		free(out);
		for (size_t i = 0; i < c.n; i++)
			if (strcmp(c.rows[i][C_RECORD], "reading") == 0 ?
			    strcmp(c.rows[i][C_ZONE], "house-1") != 0 :
			    strcmp(c.rows[i][C_RECORD], "event") != 0)
				fail_msg("--zone house-1: row %zu is %s of zone %s", i + 1,
				    c.rows[i][C_RECORD], c.rows[i][C_ZONE]);
		if (count_record(&c, "reading") != house || count_record(&c, "event") < 2)
			fail_msg("--zone house-1: %zu readings (want %zu), %zu events",
			    count_record(&c, "reading"), house, count_record(&c, "event"));
		csv_free(&c);
	}
	/* --zone cold-1 --what readings,alarms: its readings and the alarm's rows only. */
	{
		const char *argv[] = { h->coldgatectl, "-c", cfg, "export", "--since", since,
		    "--until", until, "--zone", "cold-1", "--what", "readings,alarms", NULL };

		out = run_ctl(h, argv, 0, NULL);
		csv_parse(out, &c);
		free(out);
		for (size_t i = 0; i < c.n; i++)
			if (strcmp(c.rows[i][C_ZONE], "cold-1") != 0 ||
			    (strcmp(c.rows[i][C_RECORD], "reading") != 0 &&
			    strcmp(c.rows[i][C_RECORD], "alarm") != 0))
				fail_msg("--zone cold-1 --what readings,alarms: row %zu is %s of %s",
				    i + 1, c.rows[i][C_RECORD], c.rows[i][C_ZONE]);
		if (count_record(&c, "reading") != cold || count_record(&c, "alarm") != 2)
			fail_msg("--zone cold-1: %zu readings (want %zu), %zu alarm rows",
			    count_record(&c, "reading"), cold, count_record(&c, "alarm"));
		csv_free(&c);
	}
	/* --what acks,audit: no reading at all. */
	{
		const char *argv[] = { h->coldgatectl, "-c", cfg, "export", "--since", since,
		    "--until", until, "--what", "acks,audit", NULL };

		out = run_ctl(h, argv, 0, NULL);
		csv_parse(out, &c);
		free(out);
		if (count_record(&c, "ack") != 1 || count_record(&c, "event") != c.n - 1)
			fail_msg("--what acks,audit: %zu rows, %zu acks", c.n, count_record(&c, "ack"));
		csv_free(&c);
	}
	/* A period with nothing in it: the BOM and the header only. */
	{
		const char *argv[] = { h->coldgatectl, "-c", cfg, "export", "--since", "1000000000",
		    "--until", "1000003600", NULL };

		out = run_ctl(h, argv, 0, NULL);
		if (strcmp(out, BOM HEADER "\r\n") != 0)
			fail_msg("an empty period gave:\n%s", out);
		free(out);
	}

	/* Usage errors: exit 2 with a message naming what is wrong, nothing on stdout. */
	{
		static const struct {
			const char	*args[6];
			const char	*says;
		} bad[] = {
			{ { "--until", "2000000000", NULL }, "--since" },
			{ { "--since", "1000000000", NULL }, "--until" },
			{ { "--since", "yesterday", "--until", "2000000000", NULL }, "yesterday" },
			{ { "--since", "2000000000", "--until", "1000000000", NULL }, "before" },
			{ { "--since", "1000000000", "--until", "2000000000", "--zone", "cold-9" },
			    "cold-9" },
			{ { "--since", "1000000000", "--until", "2000000000", "--what", "bogus" },
			    "bogus" },
		};

		for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			const char *argv[12] = { h->coldgatectl, "-c", cfg, "export" };
			int n = 4;

			for (int j = 0; j < 6 && bad[k].args[j] != NULL; j++)
				argv[n++] = bad[k].args[j];
			argv[n] = NULL;
			out = run_ctl(h, argv, 2, &err);
			if (out[0] != '\0' || strstr(err, bad[k].says) == NULL)
				fail_msg("bad export %zu: stdout '%s', stderr '%s' (should name %s)", k,
				    out, err, bad[k].says);
			free(out);
			free(err);
		}
	}

	/* No store where the configuration says: exit 1 naming the path. */
	{
		char *t = harness_replace(cfg_text, "  state_dir = \"@STATE_DIR@\";\n",
		    "  state_dir = \"@DIR@/nowhere\";\n");
		char *cfg2 = harness_write_config(h, "nowhere.cfg", t);
		char *path = harness_path(h, "nowhere/coldgate.db");
		const char *argv[] = { h->coldgatectl, "-c", cfg2, "export", "--since", since,
		    "--until", until, NULL };

		out = run_ctl(h, argv, 1, &err);
		if (out[0] != '\0' || strstr(err, path) == NULL)
			fail_msg("export without a store: stdout '%s', stderr '%s'", out, err);
		free(out);
		free(err);
		free(path);
		free(cfg2);
		free(t);
	}
	free(cfg);
	harness_pass(h);
}

/* An alarm in the store as the daemon keeps it. */
static void
put_alarm(struct store *s, const struct alarm_record *rec, int64_t updated_ms)
{
	uint8_t buf[ALARM_RECORD_MAX];

	assert_int_equal(store_alarm_put(s, &(struct store_alarm){ .id = rec->id,
	    .state = alarm_state_name(rec->state), .updated_ms = updated_ms, .data = buf,
	    .len = alarm_record_encode(rec, buf) }), 0);
}

/*
 * A store written here: readings with the clock-bad flag, audit rows at the
 * same ms as a reading and between readings, an alarm of a zone that the
 * configuration no longer has, an ack by a name a spreadsheet would run.
 */
static void
test_export_flags_and_merge(void **state)
{
	static const char text[] =
		HARNESS_CFG_HEAD
		"zones = ( { id = \"cold-1\"; name = \"冷库 1\"; } );\n"
		"sensors = (\n"
		"  { id = \"c1-probe\"; zone = \"cold-1\"; driver = \"sim\"; quantity = \"temperature\";\n"
		"    script = ( (0, 2.0) ); interval = 1; }\n"
		");\n";
	struct harness *h = *state;
	struct store *s;
	struct store_opts o = { .sync_full = false, .max_size_mb = 16, .retain_days = 3650 };
	struct csv c;
	char *cfg, *out, *dir;
	const int64_t t0 = 1764000000000;	/* 2025-11-24: before the clock was sane */
	const int64_t t1 = 1795000000000;	/* 2026-11-18 */
	int key;

	/* No broker in this test: any valid port. */
	{
		char *t = harness_replace(text, "@PORT@", "1883");

		cfg = harness_write_config(h, "coldgate.cfg", t);
		free(t);
	}
	dir = harness_path(h, "state");
	assert_int_equal(mkdir(dir, 0700), 0);
	o.path = h->store;
	assert_int_equal(store_open(&s, &o, false), 0);
	key = store_sensor_key(s, "c1-probe", "cold-1");
	assert_true(key > 0);
	assert_int_equal(store_add_reading(s, key, 0, 2.0, t0, READING_CLOCK_BAD), 0);
	assert_int_equal(store_add_reading(s, key, 0, 2.25, t1, 0), 0);
	assert_int_equal(store_add_reading(s, key, 0, 1.0 / 3, t1 + 1000, 0), 0);
	assert_int_equal(store_add_reading(s, key, 0, 5.5, t1 + 2000, 0), 0);
	assert_int_equal(store_commit(s), 0);
	assert_true(store_audit_append(s, t0 - 1, "start", "{\"version\":\"x\"}") > 0);
	assert_true(store_audit_append(s, t1 + 500, "clock_sync", "{\"step_ms\":31000000000}") > 0);
	/* The same ms as a reading: before it (as a start before its first readings). */
	assert_true(store_audit_append(s, t1 + 2000, "alarm",
	    "{\"id\":\"c1-probe-temperature-high\",\"state\":\"active\",\"value\":5.5,"
	    "\"limit\":4}") > 0);
	assert_true(store_audit_append(s, t1 + 2500, "ack",
	    "{\"id\":\"c1-probe-temperature-high\",\"by\":\"=HYPERLINK(\\\"x\\\")\","
	    "\"via\":\"control\"}") > 0);
	assert_true(store_audit_append(s, t1 + 2600, "alarm",
	    "{\"id\":\"old-probe-temperature-low\",\"state\":\"cleared\",\"value\":1,"
	    "\"limit\":0}") > 0);
	put_alarm(s, &(struct alarm_record){ .id = "c1-probe-temperature-high",
	    .kind = ALARM_HIGH, .zone = 0, .sensor = 0, .state = ALARM_ACKED }, t1 + 2500);
	/* A zone index the configuration no longer has. */
	put_alarm(s, &(struct alarm_record){ .id = "old-probe-temperature-low",
	    .kind = ALARM_LOW, .zone = 7, .sensor = 7, .state = ALARM_CLEARED }, t1 + 2600);
	assert_int_equal(store_commit(s), 0);
	store_close(s);

	{
		const char *argv[] = { h->coldgatectl, "-c", cfg, "export", "--since", "1700000000",
		    "--until", "1800000000", NULL };
		static const struct {
			const char *record, *state, *value, *detail_start;
		} want[] = {
			{ "event", "start", "", "{" },
			{ "reading", "", "2", "clock not synchronised" },
			{ "reading", "", "2.25", "" },
			{ "event", "clock_sync", "", "{" },
			{ "reading", "", "0.333", "" },
			{ "alarm", "active", "5.5", "{" },
			{ "reading", "", "5.5", "" },
			{ "ack", "", "", "{" },
			{ "alarm", "cleared", "1", "{" },
		};

		out = run_ctl(h, argv, 0, NULL);
		csv_parse(out, &c);
		if (c.n != sizeof(want) / sizeof(want[0]))
			fail_msg("%zu rows, want %zu:\n%s", c.n, sizeof(want) / sizeof(want[0]), out);
		for (size_t i = 0; i < c.n; i++)
			if (strcmp(c.rows[i][C_RECORD], want[i].record) != 0 ||
			    strcmp(c.rows[i][C_STATE], want[i].state) != 0 ||
			    strcmp(c.rows[i][C_VALUE], want[i].value) != 0 ||
			    strncmp(c.rows[i][C_DETAIL], want[i].detail_start,
			    strlen(want[i].detail_start)) != 0)
				fail_msg("row %zu: %s,%s,%s,%s; want %s,%s,%s,%s...\n%s", i + 1,
				    c.rows[i][C_RECORD], c.rows[i][C_STATE], c.rows[i][C_VALUE],
				    c.rows[i][C_DETAIL], want[i].record, want[i].state, want[i].value,
				    want[i].detail_start, out);
		/* The ack: zone from the stored alarm, a formula-looking name defused. */
		if (strcmp(c.rows[7][C_ZONE], "cold-1") != 0 ||
		    strcmp(c.rows[7][C_SENSOR], "c1-probe") != 0 || c.rows[7][C_UNIT][0] != '\0' ||
		    strcmp(c.rows[7][C_BY], "'=HYPERLINK(\"x\")") != 0)
			fail_msg("ack row: zone %s by %s", c.rows[7][C_ZONE], c.rows[7][C_BY]);
		/* An alarm whose zone the configuration no longer has: no zone, no sensor. */
		if (c.rows[8][C_ZONE][0] != '\0' || c.rows[8][C_SENSOR][0] != '\0')
			fail_msg("alarm of an unknown zone: zone %s sensor %s", c.rows[8][C_ZONE],
			    c.rows[8][C_SENSOR]);
		csv_free(&c);
		free(out);
	}
	/* --zone cold-1 leaves out the alarm it cannot place. */
	{
		const char *argv[] = { h->coldgatectl, "-c", cfg, "export", "--since", "1700000000",
		    "--until", "1800000000", "--zone", "cold-1", NULL };

		out = run_ctl(h, argv, 0, NULL);
		csv_parse(out, &c);
		if (c.n != 8 || count_record(&c, "alarm") != 1)
			fail_msg("--zone cold-1: %zu rows:\n%s", c.n, out);
		csv_free(&c);
		free(out);
	}
	free(dir);
	free(cfg);
	harness_pass(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_export_period, harness_setup, harness_teardown),
		cmocka_unit_test_setup_teardown(test_export_flags_and_merge,
		    harness_setup_nobroker, harness_teardown),
	};

	return cmocka_run_group_tests_name("integration: export", tests, NULL, NULL);
}
