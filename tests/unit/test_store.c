/*
 * The SQLite store: schema and refusal of foreign files, batching of
 * readings, the outbox and its seq, retention, the size cap and its drop
 * order, and a full disk.
 *
 * sqlite3.h is used here only to look at the files from outside (header
 * fields, row counts) and, for the full-disk test, to swap the unix VFS's
 * write system calls for ones that fail with ENOSPC (the seam SQLite's own
 * src/test_syscall.c uses).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alarm.h"
#include "lib/alarm_v1.h"
#include "log.h"
#include "quantity.h"
#include "audit.h"
#include "store.h"

#define T0	((int64_t)1764400000000)	/* 2025-11-29, epoch ms */
#define DAY	((int64_t)86400000)

struct fx {
	char	 dir[64];
	char	 path[128];
};

static int
fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/coldgate-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/coldgate.db", f->dir);
	*state = f;
	return 0;
}

static int
rm_one(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb, (void)type, (void)ftw;
	return remove(p);
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;

	chmod(f->dir, 0700);
	nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static struct store_opts
opts(const struct fx *f)
{
	return (struct store_opts){ .path = f->path, .sync_full = true,
	    .max_size_mb = 256, .retain_days = 30 };
}

static struct store *
open_rw(const struct fx *f)
{
	struct store_opts o = opts(f);
	struct store *s = NULL;

	assert_int_equal(store_open(&s, &o, false), 0);
	assert_non_null(s);
	return s;
}

static struct store *
open_ro(const struct fx *f)
{
	struct store_opts o = opts(f);
	struct store *s = NULL;

	assert_int_equal(store_open(&s, &o, true), 0);
	assert_non_null(s);
	return s;
}

/* One integer from the file, through a connection of our own. */
static int64_t
sql_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void
sql_exec(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = malloc(n > 0 ? (size_t)n : 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static void
spit(const char *path, const void *buf, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, len, fp), len);
	fclose(fp);
}

static bool
exists(const char *path, const char *suffix)
{
	char p[256];

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	return access(p, F_OK) == 0;
}

/* Opening, both ways, fails with err and leaves the file byte for byte. */
static void
assert_refused_unchanged(const struct fx *f, int err)
{
	struct store_opts o = opts(f);
	struct store *s = (struct store *)&s;	/* must be set to NULL */
	size_t n0, n1;
	char *b0 = slurp(f->path, &n0), *b1;

	assert_int_equal(store_open(&s, &o, false), err);
	assert_null(s);
	s = (struct store *)&s;
	assert_int_equal(store_open(&s, &o, true), err);
	assert_null(s);
	b1 = slurp(f->path, &n1);
	assert_int_equal(n0, n1);
	assert_memory_equal(b0, b1, n0);
	assert_false(exists(f->path, "-journal"));
	free(b0);
	free(b1);
}

static int64_t
push(struct store *s, enum msg_kind kind, int64_t created, size_t len)
{
	char payload[2048];
	int64_t seq = store_next_seq(s);
	int n;

	assert_true(len < sizeof(payload));
	n = snprintf(payload, sizeof(payload), "{\"seq\":%lld,\"pad\":\"", (long long)seq);
	while ((size_t)n < len - 2)
		payload[n++] = 'x';
	payload[n++] = '"';
	payload[n++] = '}';
	assert_int_equal(store_outbox_push(s, kind, kind == MSG_ALARM ? "cg/gw/alarm/a1" :
	    "cg/gw/telemetry", payload, (size_t)n, 1, kind == MSG_ALARM, created), seq);
	return seq;
}

static int64_t
readings_kept(struct store *s)
{
	struct store_stats st;

	assert_int_equal(store_stats(s, &st), 0);
	return st.readings;
}

/* ---- opening ---- */

static void
test_fresh_open_creates_current_schema(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f);
	struct store_stats st;

	assert_int_equal(store_next_seq(s), 1);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.last_seq, 0);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.readings, 0);
	assert_true(st.file_bytes > 0);
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(sql_int(f->path, "PRAGMA application_id"), 0x636f6c64);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name IN "
	    "('sensors', 'readings', 'outbox', 'meta', 'outbox_pending', 'outbox_delivered', "
	    "'alarms', 'audit')"), 8);
	store_close(s);
	assert_int_equal(sql_int(f->path, "SELECT value FROM meta WHERE key = 'last_seq'"), 0);
}

static void
test_store_is_in_wal_mode(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f);
	sqlite3 *db;
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);
	store_close(s);
}

static void
test_reopen_keeps_data(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f);
	struct store_stats st;
	int k1, k2;

	k1 = store_sensor_key(s, "h1-air", "house-1");
	k2 = store_sensor_key(s, "c1-t", "cold-1");
	assert_true(k1 > 0 && k2 > 0 && k1 != k2);
	for (int i = 0; i < 10; i++)
		assert_int_equal(store_add_reading(s, k1, Q_TEMPERATURE, 20.0 + i, T0 + i * 1000, 0), 0);
	push(s, MSG_TELEMETRY, T0, 300);
	push(s, MSG_EVENT, T0, 100);
	store_close(s);

	s = open_rw(f);
	assert_int_equal(store_sensor_key(s, "h1-air", "house-1"), k1);
	assert_int_equal(store_sensor_key(s, "c1-t", "cold-1"), k2);
	assert_int_equal(store_next_seq(s), 3);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.readings, 10);
	assert_int_equal(st.pending, 2);
	assert_int_equal(st.last_seq, 2);
	assert_int_equal(st.oldest_pending_ms, T0);
	store_close(s);
}

static void
test_garbage_file_refused_unchanged(void **state)
{
	struct fx *f = *state;
	unsigned char junk[8192];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 7919 + 13);
	spit(f->path, junk, sizeof(junk));
	assert_refused_unchanged(f, -EBADMSG);

	/* The right magic, then rubbish: still not opened, still not touched. */
	memcpy(junk, "SQLite format 3", 16);
	spit(f->path, junk, sizeof(junk));
	assert_refused_unchanged(f, -EBADMSG);

	spit(f->path, "hello\n", 6);
	assert_refused_unchanged(f, -EBADMSG);
}

static void
test_foreign_database_refused_unchanged(void **state)
{
	struct fx *f = *state;

	sql_exec(f->path, "CREATE TABLE recipes(name TEXT); INSERT INTO recipes VALUES ('soup');");
	assert_refused_unchanged(f, -EBADMSG);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM recipes"), 1);
}

static void
test_newer_schema_refused_unchanged(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f);

	push(s, MSG_TELEMETRY, T0, 200);
	store_close(s);
	sql_exec(f->path, "PRAGMA user_version = 99");
	assert_refused_unchanged(f, -EPROTO);
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"), 99);

	/* Another program's file with a high version is refused the same way. */
	unlink(f->path);
	sql_exec(f->path, "PRAGMA user_version = 99");
	assert_refused_unchanged(f, -EPROTO);
}

static void
test_read_only_open_of_missing_file_fails_and_creates_nothing(void **state)
{
	struct fx *f = *state;
	struct store_opts o = opts(f);
	struct store *s;

	assert_int_equal(store_open(&s, &o, true), -ENOENT);
	assert_null(s);
	assert_false(exists(f->path, ""));
	store_close(NULL);
}

static void
test_missing_directory_is_an_error(void **state)
{
	struct fx *f = *state;
	struct store_opts o = opts(f);
	char path[256];
	struct store *s;

	snprintf(path, sizeof(path), "%s/no/such/dir/coldgate.db", f->dir);
	o.path = path;
	assert_int_equal(store_open(&s, &o, false), -ENOENT);
	assert_null(s);
}

static void
test_unwritable_file_and_directory_refused(void **state)
{
	struct fx *f = *state;
	struct store_opts o = opts(f);
	struct store *s = open_rw(f);
	size_t n0, n1;
	char *b0, *b1;

	store_close(s);
	if (geteuid() == 0) {
		/* root reads and writes through any mode bits: nothing to observe. */
		print_message("running as root, where chmod stops nothing: skipped; "
		    "run this test as another user to check it\n");
		skip();
	}
	b0 = slurp(f->path, &n0);
	chmod(f->path, 0);
	assert_int_equal(store_open(&s, &o, false), -EACCES);
	assert_null(s);
	assert_int_equal(store_open(&s, &o, true), -EACCES);
	chmod(f->path, 0400);
	assert_int_equal(store_open(&s, &o, false), -EACCES);
	chmod(f->path, 0600);
	b1 = slurp(f->path, &n1);
	assert_int_equal(n0, n1);
	assert_memory_equal(b0, b1, n0);
	free(b1);

	/* A store in a directory it cannot write: no room for the WAL. */
	chmod(f->dir, 0500);
	assert_int_equal(store_open(&s, &o, false), -EACCES);
	assert_null(s);
	b1 = slurp(f->path, &n1);
	assert_int_equal(n0, n1);
	assert_memory_equal(b0, b1, n0);
	free(b1);

	chmod(f->dir, 0700);
	unlink(f->path);
	chmod(f->dir, 0500);
	assert_int_equal(store_open(&s, &o, false), -EACCES);
	assert_null(s);
	chmod(f->dir, 0700);
	free(b0);
}

/* ---- readings ---- */

static void
test_readings_invisible_to_readers_until_commit(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f), *r;
	int k = store_sensor_key(s, "h1-air", "house-1");

	r = open_ro(f);
	assert_false(store_in_transaction(s));
	for (int i = 0; i < 50; i++)
		assert_int_equal(store_add_reading(s, k, Q_HUMIDITY, 90.0, T0 + i, 0), 0);
	assert_true(store_in_transaction(s));
	assert_int_equal(readings_kept(r), 0);
	assert_int_equal(store_commit(s), 0);
	assert_false(store_in_transaction(s));
	assert_int_equal(readings_kept(r), 50);

	/* A message commits the readings before it. */
	assert_int_equal(store_add_reading(s, k, Q_HUMIDITY, 91.0, T0 + 50, 0), 0);
	assert_int_equal(readings_kept(r), 50);
	push(s, MSG_TELEMETRY, T0, 300);
	assert_false(store_in_transaction(s));
	assert_int_equal(readings_kept(r), 51);
	store_close(r);
	store_close(s);
}

static void
test_a_big_batch_commits_by_itself(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f), *r;
	int k = store_sensor_key(s, "h1-air", "house-1");

	r = open_ro(f);
	for (int i = 0; i < 5000; i++)
		assert_int_equal(store_add_reading(s, k, Q_CO2, 800, T0 + i, 0), 0);
	/* The buffer is bounded: most of them are already durable. */
	assert_true(readings_kept(r) >= 4000);
	store_close(s);
	assert_int_equal(readings_kept(r), 5000);
	store_close(r);
}

struct rcollect {
	int	 n;
	char	 sensor[8][16];
	int64_t	 ts[8];
	double	 value[8];
	int	 flags[8];
	int	 stop_after;
};

static int
rcollect_cb(const char *sensor, const char *zone, int quantity, double value, int64_t ts,
    int flags, void *arg)
{
	struct rcollect *c = arg;

	(void)zone, (void)quantity;
	if (c->n < 8) {
		snprintf(c->sensor[c->n], sizeof(c->sensor[0]), "%s", sensor);
		c->ts[c->n] = ts;
		c->value[c->n] = value;
		c->flags[c->n] = flags;
	}
	c->n++;
	return c->stop_after && c->n >= c->stop_after;
}

static void
test_readings_query_filters_and_orders(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f), *r;
	int a = store_sensor_key(s, "a", "z1"), b = store_sensor_key(s, "b", "z2");
	struct rcollect c;

	/* Added out of time order on purpose. */
	store_add_reading(s, a, Q_TEMPERATURE, 3.0, T0 + 3000, 0);
	store_add_reading(s, b, Q_TEMPERATURE, 1.5, T0 + 1500, READING_CLOCK_BAD);
	store_add_reading(s, a, Q_TEMPERATURE, 1.0, T0 + 1000, 0);
	store_add_reading(s, a, Q_TEMPERATURE, 2.0, T0 + 2000, 0);
	store_close(s);
	r = open_ro(f);

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_readings(r, NULL, INT64_MIN, INT64_MAX, rcollect_cb, &c), 4);
	assert_int_equal(c.ts[0], T0 + 1000);
	assert_int_equal(c.ts[1], T0 + 1500);
	assert_string_equal(c.sensor[1], "b");
	assert_int_equal(c.flags[1], READING_CLOCK_BAD);
	assert_int_equal(c.ts[3], T0 + 3000);

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_readings(r, "a", T0 + 1000, T0 + 3000, rcollect_cb, &c), 2);
	assert_true(c.value[0] == 1.0 && c.value[1] == 2.0);	/* [since, until) */

	memset(&c, 0, sizeof(c));
	c.stop_after = 1;
	assert_int_equal(store_readings(r, NULL, INT64_MIN, INT64_MAX, rcollect_cb, &c), 1);

	assert_int_equal(store_readings(r, "nope", INT64_MIN, INT64_MAX, rcollect_cb, &c),
	    -ENOENT);
	store_close(r);
}

static void
test_sensor_keys_are_stable_and_follow_zone_moves(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f), *r;
	int k = store_sensor_key(s, "h1-air", "house-1");
	struct rcollect c = { 0 };
	char zone[32] = "";

	assert_true(k > 0);
	assert_int_equal(store_sensor_key(s, "h1-air", "house-1"), k);
	assert_int_equal(store_sensor_key(s, "h1-air", "house-2"), k);
	store_add_reading(s, k, Q_TEMPERATURE, 18.0, T0, 0);
	store_close(s);
	r = open_ro(f);
	assert_int_equal(store_sensor_key(r, "h1-air", "house-2"), k);
	assert_int_equal(store_sensor_key(r, "new", "house-2"), -ENOENT);
	assert_int_equal(store_readings(r, "h1-air", INT64_MIN, INT64_MAX, rcollect_cb, &c), 1);
	(void)zone;
	store_close(r);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sensors WHERE zone = 'house-2'"), 1);
}

/* ---- the outbox ---- */

struct mcollect {
	int	 n;
	int64_t	 seq[64];
	int	 stop_after;
	struct outbox_msg first;
	char	 topic[64];
	char	 payload[512];
};

static int
mcollect_cb(const struct outbox_msg *m, void *arg)
{
	struct mcollect *c = arg;

	if (c->n == 0) {
		c->first = *m;
		snprintf(c->topic, sizeof(c->topic), "%s", m->topic);
		memcpy(c->payload, m->payload, m->len < sizeof(c->payload) ? m->len : 0);
		c->first.topic = c->topic;
		c->first.payload = c->payload;
	}
	if (c->n < 64)
		c->seq[c->n] = m->seq;
	c->n++;
	return c->stop_after && c->n >= c->stop_after;
}

static void
test_outbox_seq_counts_from_one(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f);

	for (int64_t i = 1; i <= 5; i++) {
		assert_int_equal(store_next_seq(s), i);
		assert_int_equal(push(s, i % 2 ? MSG_TELEMETRY : MSG_EVENT, T0 + i, 120), i);
	}
	store_close(s);
}

static void
test_seq_survives_reopen_and_pruning_everything(void **state)
{
	struct fx *f = *state;
	struct store_opts o = opts(f);
	struct store *s = open_rw(f);
	struct store_drops d = { 0 };
	struct store_stats st;

	for (int i = 0; i < 3; i++)
		push(s, MSG_TELEMETRY, T0, 200);
	for (int64_t seq = 1; seq <= 3; seq++)
		assert_int_equal(store_outbox_delivered(s, seq, T0 + 1000), 1);
	assert_int_equal(store_commit(s), 0);
	o.retain_days = 1;
	store_close(s);

	assert_int_equal(store_open(&s, &o, false), 0);
	while (store_prune(s, T0 + 2 * DAY, &d) > 0)
		;
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM outbox"), 0);
	assert_int_equal(store_next_seq(s), 4);
	store_close(s);

	assert_int_equal(store_open(&s, &o, false), 0);
	assert_int_equal(store_next_seq(s), 4);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.last_seq, 3);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.oldest_pending_ms, 0);
	assert_int_equal(push(s, MSG_EVENT, T0 + 3 * DAY, 100), 4);
	store_close(s);
}

/*
 * PUBACKs are batched into range updates: out-of-order and repeated acks,
 * gaps between ranges, and a replay from the start before the batch is
 * committed must all come out exactly as if each were marked at once.
 */
static void
test_delivered_marks_batch_into_ranges(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f), *r;
	static const int64_t acked[] = { 4, 2, 1, 3, 10, 6, 9, 8, 12, 11 };
	struct mcollect c;
	struct store_stats st;

	for (int i = 0; i < 12; i++)
		push(s, MSG_TELEMETRY, T0 + i, 100);
	for (size_t i = 0; i < sizeof(acked) / sizeof(acked[0]); i++)
		assert_int_equal(store_outbox_delivered(s, acked[i], T0 + 100 + (int64_t)i), 1);
	assert_int_equal(store_outbox_delivered(s, 9, T0 + 200), 0);

	/* A reconnect replays from seq 0 before any commit: only 5 and 7 are due. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_outbox_fetch(s, 0, 20, mcollect_cb, &c), 2);
	assert_int_equal(c.seq[0], 5);
	assert_int_equal(c.seq[1], 7);
	assert_int_equal(store_commit(s), 0);

	/* And a second reader sees the same once it is committed. */
	r = open_ro(f);
	assert_int_equal(store_stats(r, &st), 0);
	assert_int_equal(st.pending, 2);
	assert_int_equal(st.oldest_pending_ms, T0 + 4);
	store_close(r);

	/* More PUBACKs than one batch holds. */
	for (int i = 0; i < 600; i++)
		push(s, MSG_TELEMETRY, T0 + 1000 + i, 50);
	for (int64_t seq = 13; seq <= 612; seq++)
		assert_int_equal(store_outbox_delivered(s, seq, T0 + 5000), 1);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.pending, 2);
	store_close(s);
}


/* The tables of the first release (schema 1), as it made them. */
#define SCHEMA_V1_TABLES \
	"CREATE TABLE sensors (key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, zone TEXT NOT NULL);" \
	"CREATE TABLE readings (ts INTEGER NOT NULL, sensor INTEGER NOT NULL," \
	"  quantity INTEGER NOT NULL, value REAL NOT NULL, flags INTEGER NOT NULL DEFAULT 0);" \
	"CREATE TABLE outbox (seq INTEGER PRIMARY KEY, kind INTEGER NOT NULL, topic TEXT NOT NULL," \
	"  payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL," \
	"  created INTEGER NOT NULL, delivered INTEGER);" \
	"CREATE INDEX outbox_pending ON outbox(seq) WHERE delivered IS NULL;" \
	"CREATE INDEX outbox_delivered ON outbox(delivered) WHERE delivered IS NOT NULL;" \
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;"

/* A store written by the first release (schema 1) is migrated forward with its data. */
static void
test_v1_store_migrates_forward_keeping_data(void **state)
{
	struct fx *f = *state;
	struct store *s;
	struct store_opts o = { .path = f->path, .sync_full = true, .max_size_mb = 64,
	    .retain_days = 30 };
	struct store_stats st;

	sql_exec(f->path, SCHEMA_V1_TABLES
	    "INSERT INTO meta(key, value) VALUES ('last_seq', 7);"
	    "INSERT INTO outbox VALUES (7, 0, 'cg/gw/telemetry', x'7b7d', 1, 0, 1, NULL);"
	    "PRAGMA application_id = 1668246628;"
	    "PRAGMA user_version = 1;");
	assert_int_equal(store_open(&s, &o, false), 0);
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(store_next_seq(s), 8);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.pending, 1);
	assert_true(store_audit_append(s, T0, "start", "{}") == 1);
	store_close(s);
}

/* An empty schema 2 store, as that release made it. */
static void
write_v2_store(const char *path)
{
	sql_exec(path, SCHEMA_V1_TABLES
	    "INSERT INTO meta(key, value) VALUES ('last_seq', 0);"
	    "CREATE TABLE alarms (id TEXT PRIMARY KEY, state TEXT NOT NULL,"
	    "  updated INTEGER NOT NULL, data BLOB NOT NULL) WITHOUT ROWID;"
	    "CREATE TABLE audit (n INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL,"
	    "  detail TEXT NOT NULL, hash BLOB NOT NULL);"
	    "PRAGMA application_id = 1668246628;"
	    "PRAGMA user_version = 2;");
}

/* An alarms row with data as given, the way the old code's store_alarm_put() wrote it. */
static void
put_raw_alarm(const char *path, const char *id, const char *st_name, const void *data,
    size_t len)
{
	sqlite3 *db;
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO alarms VALUES (?1, ?2, ?3, ?4)", -1,
	    &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, st_name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, T0);
	sqlite3_bind_blob(st, 4, data, (int)len, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

struct alarms_read {
	size_t			 n;
	struct alarm_record	 rec[4];
	char			 state[4][16];
};

static int
alarms_read_cb(const struct store_alarm *a, void *arg)
{
	struct alarms_read *r = arg;
	const char *why = "";

	assert_true(r->n < 4);
	if (alarm_record_decode(a->id, a->data, a->len, &r->rec[r->n], &why) != 0)
		fail_msg("alarm %s: record %s", a->id, why);
	snprintf(r->state[r->n], sizeof(r->state[0]), "%s", a->state);
	r->n++;
	return 0;
}

/* Open the store at path with stderr caught; the log is returned (free it). */
static char *
open_logged(const struct fx *f, struct store **s, size_t *loglen)
{
	char logpath[160];
	int fd, saved;

	snprintf(logpath, sizeof(logpath), "%s/log", f->dir);
	fflush(stderr);
	assert_true((saved = dup(2)) >= 0);
	assert_true((fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
	assert_true(dup2(fd, 2) == 2);
	close(fd);
	*s = open_rw(f);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	return slurp(logpath, loglen);
}

/*
 * A gateway upgraded in place keeps its alarms: the schema 2 raw records
 * are rewritten in the portable format, every field intact, and a row the
 * migration cannot read is dropped with a line naming it.
 */
static void
test_v2_store_alarms_migrate_to_the_portable_record(void **state)
{
	struct fx *f = *state;
	struct alarm_blob_v1 rows[2];
	struct alarm_blob_v1 wrong;
	struct alarms_read got = { 0 };
	struct store *s;
	char *log;
	size_t loglen;

	memset(rows, 0, sizeof(rows));
	rows[0].version = 1;
	snprintf(rows[0].rec.id, sizeof(rows[0].rec.id), "c1-probe-temperature-excursion");
	rows[0].rec.kind = ALARM_EXCURSION;
	rows[0].rec.severity = ALARM_CRITICAL;
	rows[0].rec.zone = 2;
	rows[0].rec.sensor = 5;
	rows[0].rec.state = ALARM_ACKED;
	rows[0].rec.value = 1800.5;
	rows[0].rec.limit = -3.25;
	rows[0].rec.since = T0 - 1;
	rows[0].rec.changed = T0;
	snprintf(rows[0].rec.acked_by, sizeof(rows[0].rec.acked_by), "Zoë");
	rows[0].rec.acked_at = T0 + 7;
	rows[0].rec.pending = -1;
	rows[0].rec.nspans = ALARM_SPANS_MAX;
	for (size_t i = 0; i < ALARM_SPANS_MAX; i++)
		rows[0].rec.spans[i] = (struct alarm_span){ T0 + 10 * (int64_t)i,
		    T0 + 10 * (int64_t)i + 5 };
	rows[1].version = 1;
	snprintf(rows[1].rec.id, sizeof(rows[1].rec.id), "gateway-uplink-down");
	rows[1].rec.kind = ALARM_UPLINK_DOWN;
	rows[1].rec.zone = -1;
	rows[1].rec.sensor = -1;
	rows[1].rec.state = ALARM_CLEARED;
	rows[1].rec.pending = T0 - 60000;

	write_v2_store(f->path);
	for (size_t i = 0; i < 2; i++)
		put_raw_alarm(f->path, rows[i].rec.id, alarm_state_name(rows[i].rec.state), &rows[i],
		    sizeof(rows[i]));
	put_raw_alarm(f->path, "c2-door-open", "active", "not a record", 12);
	/* One more of the right size but out of range: it must not be read as an alarm. */
	wrong = rows[1];
	snprintf(wrong.rec.id, sizeof(wrong.rec.id), "c3-probe-stale");
	wrong.rec.nspans = 1000;
	put_raw_alarm(f->path, wrong.rec.id, "active", &wrong, sizeof(wrong));

	log = open_logged(f, &s, &loglen);
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	if (memmem(log, loglen, "alarm c2-door-open: stored record", 33) == NULL ||
	    memmem(log, loglen, "alarm c3-probe-stale: stored record", 35) == NULL)
		fail_msg("no log line names the dropped rows:\n%.*s", (int)loglen, log);
	free(log);
	assert_int_equal(store_alarm_each(s, alarms_read_cb, &got), 0);
	store_close(s);

	assert_int_equal(got.n, 2);	/* by id: the excursion, then the gateway's */
	for (size_t i = 0; i < 2; i++) {
		const struct alarm_record_v1 *o = &rows[i].rec;
		const struct alarm_record *r = &got.rec[i];

		assert_string_equal(r->id, o->id);
		assert_string_equal(got.state[i], alarm_state_name(o->state));
		assert_int_equal(r->kind, o->kind);
		assert_int_equal(r->severity, o->severity);
		assert_int_equal(r->zone, o->zone);
		assert_int_equal(r->sensor, o->sensor);
		assert_int_equal(r->state, o->state);
		assert_true(r->value == o->value && r->limit == o->limit);
		assert_true(r->since == o->since && r->changed == o->changed);
		assert_string_equal(r->acked_by, o->acked_by);
		assert_true(r->acked_at == o->acked_at && r->pending == o->pending);
		assert_int_equal(r->nspans, o->nspans);
		assert_memory_equal(r->spans, o->spans, o->nspans * sizeof(o->spans[0]));
	}

	/* Opened again: nothing left to migrate, nothing more dropped. */
	s = open_rw(f);
	memset(&got, 0, sizeof(got));
	assert_int_equal(store_alarm_each(s, alarms_read_cb, &got), 0);
	assert_int_equal(got.n, 2);
	store_close(s);
}

/* coldgatectl opens read-only: it leaves a schema 2 store to the daemon to migrate. */
static void
test_v2_store_is_not_migrated_read_only(void **state)
{
	struct fx *f = *state;
	struct store_opts o = opts(f);
	struct store *s = NULL;

	write_v2_store(f->path);
	put_raw_alarm(f->path, "c2-door-open", "active", "xyz", 3);
	assert_int_equal(store_open(&s, &o, true), -EPROTO);
	assert_null(s);
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"), 2);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM alarms"), 1);
}

struct alarm_seen {
	int		 n;
	char		 id[80], state[16];
	char		 data[64];
	int64_t		 updated;
};

static int
alarm_seen_cb(const struct store_alarm *a, void *arg)
{
	struct alarm_seen *seen = arg;

	seen->n++;
	snprintf(seen->id, sizeof(seen->id), "%s", a->id);
	snprintf(seen->state, sizeof(seen->state), "%s", a->state);
	snprintf(seen->data, sizeof(seen->data), "%.*s", (int)a->len, (const char *)a->data);
	seen->updated = a->updated_ms;
	return 0;
}

static void
test_alarms_persist_by_id(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f);
	struct store_alarm a = { .id = "c1-probe-temperature-high", .state = "active",
	    .updated_ms = T0, .data = "first", .len = 5 };
	struct alarm_seen seen = { 0 };

	assert_int_equal(store_alarm_put(s, &a), 0);
	a.state = "acked";
	a.data = "second";
	a.len = 6;
	a.updated_ms = T0 + 5;
	assert_int_equal(store_alarm_put(s, &a), 0);
	assert_int_equal(store_commit(s), 0);
	store_close(s);

	s = open_rw(f);
	assert_int_equal(store_alarm_each(s, alarm_seen_cb, &seen), 0);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.id, "c1-probe-temperature-high");
	assert_string_equal(seen.state, "acked");
	assert_string_equal(seen.data, "second");
	assert_int_equal(seen.updated, T0 + 5);
	store_close(s);
}

static int
audit_check_cb(const struct audit_row *r, void *arg)
{
	return audit_check_row(arg, r) ? 0 : 1;
}

/* Verify the chain in the file at path; returns the first bad row, 0 if good. */
static int64_t
audit_first_bad(const struct fx *f, char *why, size_t len)
{
	struct store *r = open_ro(f);
	struct audit_check c;

	audit_check_init(&c);
	assert_int_equal(store_audit_each(r, 1, audit_check_cb, &c), 0);
	store_close(r);
	snprintf(why, len, "%s", c.why);
	return c.bad_n;
}

static void
test_audit_chain_finds_edited_deleted_and_reordered_rows(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f);
	char why[128];

	assert_true(store_audit_append(s, T0, "start", "{\"version\":\"1\"}") == 1);
	assert_true(store_audit_append(s, T0 + 1, "config", "{\"sha256\":\"ab\"}") == 2);
	assert_true(store_audit_append(s, T0 + 2, "alarm", "{\"id\":\"x\",\"state\":\"active\"}") == 3);
	assert_true(store_audit_append(s, T0 + 3, "ack", "{\"id\":\"x\",\"by\":\"王\"}") == 4);
	assert_true(store_audit_append(s, T0 + 4, "alarm", "{\"id\":\"x\",\"state\":\"cleared\"}") == 5);
	store_close(s);
	assert_int_equal(audit_first_bad(f, why, sizeof(why)), 0);

	/* An edited detail. */
	sql_exec(f->path, "UPDATE audit SET detail = '{\"id\":\"x\",\"by\":\"李\"}' WHERE n = 4");
	assert_int_equal(audit_first_bad(f, why, sizeof(why)), 4);
	assert_non_null(strstr(why, "hash"));
	sql_exec(f->path, "UPDATE audit SET detail = '{\"id\":\"x\",\"by\":\"王\"}' WHERE n = 4");
	assert_int_equal(audit_first_bad(f, why, sizeof(why)), 0);

	/* An edited time. */
	sql_exec(f->path, "UPDATE audit SET ts = ts + 1 WHERE n = 2");
	assert_int_equal(audit_first_bad(f, why, sizeof(why)), 2);
	sql_exec(f->path, "UPDATE audit SET ts = ts - 1 WHERE n = 2");

	/* Two rows swapped, numbers and all. */
	sql_exec(f->path, "UPDATE audit SET n = -3 WHERE n = 3; UPDATE audit SET n = 3 WHERE n = 5;"
	    "UPDATE audit SET n = 5 WHERE n = -3;");
	assert_int_equal(audit_first_bad(f, why, sizeof(why)), 3);
	sql_exec(f->path, "UPDATE audit SET n = -3 WHERE n = 3; UPDATE audit SET n = 3 WHERE n = 5;"
	    "UPDATE audit SET n = 5 WHERE n = -3;");
	assert_int_equal(audit_first_bad(f, why, sizeof(why)), 0);

	/* A deleted row, and a re-hashed replacement that does not chain. */
	sql_exec(f->path, "DELETE FROM audit WHERE n = 2");
	assert_int_equal(audit_first_bad(f, why, sizeof(why)), 3);
	assert_non_null(strstr(why, "missing"));
	sql_exec(f->path, "UPDATE audit SET n = n - 1 WHERE n > 2");
	assert_int_equal(audit_first_bad(f, why, sizeof(why)), 2);

	/* Appending goes on from the last row. */
	s = open_rw(f);
	assert_true(store_audit_append(s, T0 + 9, "stop", "{}") == 5);
	store_close(s);
}

static void
test_fetch_gives_undelivered_in_seq_order(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f);
	struct mcollect c;

	push(s, MSG_TELEMETRY, T0 + 1, 300);
	push(s, MSG_ALARM, T0 + 2, 150);
	push(s, MSG_TELEMETRY, T0 + 3, 300);
	push(s, MSG_EVENT, T0 + 4, 90);
	push(s, MSG_TELEMETRY, T0 + 5, 300);
	assert_int_equal(store_outbox_delivered(s, 3, T0 + 10), 1);
	assert_int_equal(store_outbox_delivered(s, 3, T0 + 11), 0);	/* a second PUBACK */
	assert_int_equal(store_outbox_delivered(s, 99, T0 + 11), 0);

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_outbox_fetch(s, 0, 10, mcollect_cb, &c), 4);
	assert_int_equal(c.seq[0], 1);
	assert_int_equal(c.seq[1], 2);
	assert_int_equal(c.seq[2], 4);
	assert_int_equal(c.seq[3], 5);
	assert_int_equal(c.first.kind, MSG_TELEMETRY);
	assert_string_equal(c.first.topic, "cg/gw/telemetry");
	assert_int_equal(c.first.len, 300);
	assert_memory_equal(c.first.payload, "{\"seq\":1,", 9);
	assert_int_equal(c.first.qos, 1);
	assert_false(c.first.retain);
	assert_int_equal(c.first.created_ms, T0 + 1);

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_outbox_fetch(s, 1, 10, mcollect_cb, &c), 3);
	assert_int_equal(c.first.kind, MSG_ALARM);
	assert_true(c.first.retain);

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_outbox_fetch(s, 2, 1, mcollect_cb, &c), 1);
	assert_int_equal(c.seq[0], 4);

	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	assert_int_equal(store_outbox_fetch(s, 0, 10, mcollect_cb, &c), 2);

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_outbox_fetch(s, 5, 10, mcollect_cb, &c), 0);
	assert_int_equal(store_outbox_fetch(s, 0, 0, mcollect_cb, &c), 0);

	/* Delivered marks join the transaction and last past a restart. */
	assert_true(store_in_transaction(s));
	store_close(s);
	s = open_rw(f);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_outbox_fetch(s, 0, 10, mcollect_cb, &c), 4);
	store_close(s);
}

static void
test_state_values_reach_readers_after_commit(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f), *r;
	char buf[64];

	r = open_ro(f);
	assert_int_equal(store_get_state(r, "mqtt", buf, sizeof(buf)), -ENOENT);
	assert_int_equal(store_set_state(s, "mqtt", "connected"), 0);
	assert_int_equal(store_get_state(s, "mqtt", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "connected");
	assert_int_equal(store_get_state(r, "mqtt", buf, sizeof(buf)), -ENOENT);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(store_get_state(r, "mqtt", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "connected");
	assert_int_equal(store_set_state(s, "mqtt", "disconnected since 1764400000000"), 0);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(store_get_state(r, "mqtt", buf, 8), 0);
	assert_string_equal(buf, "disconn");	/* truncated, terminated */
	/* A state key cannot clobber the seq. */
	assert_int_equal(store_set_state(s, "last_seq", "0"), 0);
	push(s, MSG_EVENT, T0, 50);
	assert_int_equal(store_next_seq(s), 2);
	store_close(s);
	s = open_rw(f);
	assert_int_equal(store_next_seq(s), 2);
	store_close(s);
	store_close(r);
}

/* ---- retention and the size cap ---- */

static void
test_retention_prunes_old_rows_in_batches(void **state)
{
	struct fx *f = *state;
	struct store_opts o = opts(f);
	struct store *s;
	struct store_drops d = { 0 };
	struct store_stats st;
	int k, n;

	o.retain_days = 7;
	assert_int_equal(store_open(&s, &o, false), 0);
	k = store_sensor_key(s, "c1-t", "cold-1");
	for (int i = 0; i < 2500; i++)
		store_add_reading(s, k, Q_TEMPERATURE, 2.0, T0 - 10 * DAY + i, 0);
	for (int i = 0; i < 100; i++)
		store_add_reading(s, k, Q_TEMPERATURE, 3.0, T0 - DAY + i, 0);
	for (int i = 0; i < 5; i++)
		push(s, MSG_TELEMETRY, T0 - 10 * DAY, 200);	/* 1-5 */
	push(s, MSG_TELEMETRY, T0 - 10 * DAY, 200);		/* 6: never delivered */
	push(s, MSG_TELEMETRY, T0 - DAY, 200);			/* 7 */
	for (int64_t seq = 1; seq <= 5; seq++)
		store_outbox_delivered(s, seq, T0 - 9 * DAY);
	store_outbox_delivered(s, 7, T0 - DAY);
	assert_int_equal(store_commit(s), 0);

	assert_int_equal(store_prune(s, T0, &d), 1000);
	assert_int_equal(store_prune(s, T0, &d), 1000);
	n = store_prune(s, T0, &d);
	assert_int_equal(n, 500 + 5);
	assert_int_equal(store_prune(s, T0, &d), 0);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(d.readings + d.delivered + d.undelivered, 0);

	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.readings, 100);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM readings WHERE ts < "
	    "1764400000000 - 7 * 86400000"), 0);
	assert_int_equal(sql_int(f->path, "SELECT group_concat(seq) = '6,7' FROM outbox"), 1);
	store_close(s);
}

static void
fill_over_cap(struct store *s, int nreadings, int ndelivered, int nundelivered)
{
	int k = store_sensor_key(s, "h1-air", "house-1");
	int64_t first = store_next_seq(s);

	/* An alarm older than anything it could be dropped for. */
	push(s, MSG_ALARM, T0, 200);
	for (int i = 0; i < nreadings; i++)
		assert_int_equal(store_add_reading(s, k, Q_TEMPERATURE, 18.0 + i % 7, T0 + i, 0), 0);
	for (int i = 0; i < ndelivered; i++)
		push(s, MSG_TELEMETRY, T0 + i, 400);
	for (int i = 0; i < ndelivered; i++)
		assert_int_equal(store_outbox_delivered(s, first + 1 + i, T0 + i), 1);
	push(s, MSG_EVENT, T0, 150);
	for (int i = 0; i < nundelivered; i++)
		push(s, MSG_TELEMETRY, T0 + i, 400);
	assert_int_equal(store_commit(s), 0);
}

static void
test_size_cap_drops_in_spec_order_and_keeps_alarms(void **state)
{
	struct fx *f = *state;
	struct store_opts o = opts(f);
	struct store *s;
	struct store_drops d = { 0 }, prev = { 0 };
	struct store_stats st;
	int phase = 0, n, calls = 0;
	int64_t npending;

	o.max_size_mb = 1;
	o.retain_days = 3650;
	assert_int_equal(store_open(&s, &o, false), 0);
	fill_over_cap(s, 20000, 800, 3000);
	assert_int_equal(store_stats(s, &st), 0);
	assert_true(st.used_bytes > 2 * (1 << 20));
	npending = st.pending;

	while ((n = store_prune(s, T0 + 3 * DAY, &d)) > 0) {
		int now;

		assert_true(n <= 1000);
		calls++;
		/* Which kind this call dropped; it may never go back to an earlier one. */
		if (d.readings > prev.readings)
			now = 0;
		else if (d.delivered > prev.delivered)
			now = 1;
		else {
			assert_true(d.undelivered > prev.undelivered);
			now = 2;
		}
		assert_true(now >= phase);
		phase = now;
		prev = d;
	}
	assert_true(n == 0);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(phase, 2);
	assert_int_equal(d.readings, 20000);
	assert_int_equal(d.delivered, 800);
	assert_true(d.undelivered > 0 && d.undelivered < 3000);

	assert_int_equal(store_stats(s, &st), 0);
	assert_true(st.used_bytes <= 1 << 20);
	assert_int_equal(st.readings, 0);
	assert_int_equal(st.pending, npending - d.undelivered);
	/* The oldest undelivered telemetry went; the alarm (seq 1) and the event stay. */
	assert_int_equal(sql_int(f->path, "SELECT kind FROM outbox ORDER BY seq LIMIT 1"),
	    MSG_ALARM);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM outbox WHERE kind = 2"), 1);
	assert_int_equal(sql_int(f->path, "SELECT min(seq) FROM outbox WHERE kind = 0"),
	    1 + 800 + 1 + d.undelivered + 1);
	assert_int_equal(store_next_seq(s), 1 + 800 + 1 + 3000 + 1);
	store_close(s);
}

static void
test_cap_never_drops_alarms(void **state)
{
	struct fx *f = *state;
	struct store_opts o = opts(f);
	struct store *s;
	struct store_drops d = { 0 };
	struct store_stats st;

	o.max_size_mb = 1;
	assert_int_equal(store_open(&s, &o, false), 0);
	for (int i = 0; i < 2000; i++)
		push(s, MSG_ALARM, T0 + i, 800);
	while (store_prune(s, T0, &d) > 0)
		;
	assert_int_equal(d.readings + d.delivered + d.undelivered, 0);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.pending, 2000);
	assert_true(st.used_bytes > 1 << 20);
	store_close(s);
}

/* A message of len bytes whose payload carries its seq. */
static int64_t
push_big(struct store *s, size_t len)
{
	char *payload = malloc(len);
	int64_t seq = store_next_seq(s);
	int n;

	assert_non_null(payload);
	n = snprintf(payload, len, "{\"seq\":%lld,\"pad\":\"", (long long)seq);
	memset(payload + n, 'x', len - (size_t)n - 2);
	memcpy(payload + len - 2, "\"}", 2);
	assert_int_equal(store_outbox_push(s, MSG_TELEMETRY, "cg/gw/telemetry", payload, len, 1,
	    false, T0), seq);
	free(payload);
	return seq;
}

/*
 * Just over the cap with a backlog of big windows (the case: 2 MiB
 * cap, 63 undelivered messages of ~34 KiB, 4 % over): one prune step drops
 * the oldest few that bring it back under, not the whole backlog.
 */
static void
test_cap_drops_only_as_much_as_it_needs(void **state)
{
	struct fx *f = *state;
	struct store_opts o = opts(f);
	struct store *s;
	struct store_drops d = { 0 };
	struct store_stats st;
	int64_t cap = 2 << 20, first = 0, n = 0;

	o.max_size_mb = 2;
	assert_int_equal(store_open(&s, &o, false), 0);
	do {
		int64_t seq = push_big(s, 34 << 10);

		if (first == 0)
			first = seq;
		n++;
		assert_int_equal(store_stats(s, &st), 0);
	} while (st.used_bytes <= cap + cap / 25);
	assert_true(n > 50);
	assert_true(store_prune(s, T0, &d) > 0);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(store_stats(s, &st), 0);
	assert_true(st.used_bytes <= cap);
	/* 4 % of 2 MiB is 82 KiB: three windows of 34 KiB, and never a dozen. */
	assert_true(d.undelivered >= 1 && d.undelivered <= 4);
	assert_int_equal(st.pending, n - d.undelivered);
	/* Oldest first. */
	assert_int_equal(sql_int(f->path, "SELECT min(seq) FROM outbox"), first + d.undelivered);
	assert_int_equal(store_prune(s, T0, &d), 0);
	store_close(s);
}

static void
test_file_stays_near_cap_in_steady_state(void **state)
{
	struct fx *f = *state;
	struct store_opts o = opts(f);
	struct store *s;
	struct store_drops d = { 0 };
	struct stat sb;
	int k;

	o.max_size_mb = 1;
	assert_int_equal(store_open(&s, &o, false), 0);
	k = store_sensor_key(s, "h1-air", "house-1");
	for (int round = 0; round < 200; round++) {
		for (int i = 0; i < 1000; i++)
			store_add_reading(s, k, Q_TEMPERATURE, 18.5, T0 + round * 1000 + i, 0);
		assert_int_equal(store_commit(s), 0);
		while (store_prune(s, T0 + round * 1000, &d) > 0)
			;
		assert_int_equal(store_commit(s), 0);
	}
	/* 200k readings went through: several MiB without the cap. */
	assert_true(d.readings > 100000);
	store_close(s);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_true(sb.st_size <= (1 << 20) + (128 << 10));
}

/* ---- a full disk ---- */

static int disk_full;
static sqlite3_syscall_ptr real_pwrite64, real_write;

static ssize_t
full_pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	if (disk_full) {
		errno = ENOSPC;
		return -1;
	}
	return ((ssize_t (*)(int, const void *, size_t, off_t))real_pwrite64)(fd, buf, n, off);
}

static ssize_t
full_write(int fd, const void *buf, size_t n)
{
	if (disk_full) {
		errno = ENOSPC;
		return -1;
	}
	return ((ssize_t (*)(int, const void *, size_t))real_write)(fd, buf, n);
}

static void
disk_seam(bool on)
{
	sqlite3_vfs *vfs = sqlite3_vfs_find("unix");

	assert_non_null(vfs);
	if (on) {
		real_pwrite64 = vfs->xGetSystemCall(vfs, "pwrite64");
		real_write = vfs->xGetSystemCall(vfs, "write");
		assert_non_null(real_pwrite64);
		vfs->xSetSystemCall(vfs, "pwrite64", (sqlite3_syscall_ptr)full_pwrite64);
		vfs->xSetSystemCall(vfs, "write", (sqlite3_syscall_ptr)full_write);
	} else
		vfs->xSetSystemCall(vfs, NULL, NULL);	/* restores every default */
}

/*
 * A message pushed while the disk is full is kept with its seq and stored
 * when a commit works again, in seq order, each with its own payload; the
 * store says it is failing and why.
 */
static void
test_full_disk_keeps_messages_with_their_seqs(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f), *r;
	int k = store_sensor_key(s, "h1-air", "house-1");
	struct store_health h;
	struct mcollect c = { 0 };

	push(s, MSG_TELEMETRY, T0, 300);
	r = open_ro(f);
	disk_seam(true);

	disk_full = 1;
	for (int i = 0; i < 300; i++)
		assert_int_equal(store_add_reading(s, k, Q_TEMPERATURE, 5.0, T0 + i, 0), 0);
	assert_int_equal(store_commit(s), -ENOSPC);
	assert_true(store_in_transaction(s));
	/* Accepted with the seq its payload carries, and the next one goes on. */
	assert_int_equal(push(s, MSG_TELEMETRY, T0 + 1, 300), 2);
	assert_int_equal(push(s, MSG_ALARM, T0 + 2, 200), 3);
	assert_int_equal(store_next_seq(s), 4);
	store_health(s, &h);
	assert_int_equal(h.err, -ENOSPC);
	assert_int_equal(h.queued, 2);
	assert_int_equal(h.dropped, 0);
	assert_int_equal(store_commit(s), -ENOSPC);
	/* Nothing unsaved is visible, so nothing unsaved is ever sent. */
	assert_int_equal(store_outbox_fetch(r, 0, 10, mcollect_cb, &c), 1);
	disk_full = 0;

	assert_int_equal(store_commit(s), 0);
	store_health(s, &h);
	assert_int_equal(h.err, 0);
	assert_int_equal(h.queued, 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_outbox_fetch(r, 1, 10, mcollect_cb, &c), 2);
	assert_int_equal(c.seq[0], 2);
	assert_int_equal(c.seq[1], 3);
	assert_non_null(strstr(c.payload, "\"seq\":2,"));
	assert_int_equal(readings_kept(r), 300);
	assert_int_equal(push(s, MSG_EVENT, T0 + 3, 100), 4);
	disk_seam(false);
	store_close(r);
	store_close(s);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM pragma_integrity_check "
	    "WHERE integrity_check = 'ok'"), 1);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM outbox"), 4);
	assert_int_equal(sql_int(f->path, "SELECT kind FROM outbox WHERE seq = 3"), MSG_ALARM);
	assert_int_equal(sql_int(f->path, "SELECT value FROM meta WHERE key = 'last_seq'"), 4);
}

/*
 * A long outage: the queue stays bounded by dropping the oldest telemetry,
 * never an alarm, and a dropped seq is never given again (a gap shows it).
 */
static void
test_full_disk_message_queue_is_bounded_and_keeps_alarms(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f);
	struct store_health h;
	int64_t alarm, last = 0, dropped = 0;

	disk_seam(true);
	disk_full = 1;
	alarm = push(s, MSG_ALARM, T0, 200);
	for (int i = 0; i < 2000; i++) {
		last = push(s, MSG_TELEMETRY, T0 + i, 1000);
		store_health(s, &h);
		dropped += h.dropped;
		assert_true(h.queued_bytes <= 512 << 10);
		assert_true(h.queued <= 1024);
	}
	assert_true(dropped > 0);
	disk_full = 0;
	disk_seam(false);
	assert_int_equal(store_commit(s), 0);
	store_close(s);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM outbox WHERE kind = 1"), 1);
	assert_int_equal(sql_int(f->path, "SELECT min(seq) FROM outbox"), alarm);
	assert_int_equal(sql_int(f->path, "SELECT max(seq) FROM outbox"), last);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM outbox"), 1 + 2000 - dropped);
	/* The newest are the ones kept. */
	assert_int_equal(sql_int(f->path, "SELECT min(seq) FROM outbox WHERE kind = 0"),
	    alarm + 1 + dropped);
	assert_int_equal(sql_int(f->path, "SELECT value FROM meta WHERE key = 'last_seq'"), last);
}

/* A read-only file (EROFS, EPERM from an immutable file): the same path. */
static int write_errno;

static ssize_t
ro_pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	if (write_errno) {
		errno = write_errno;
		return -1;
	}
	return ((ssize_t (*)(int, const void *, size_t, off_t))real_pwrite64)(fd, buf, n, off);
}

static void
test_unwritable_store_keeps_messages_until_it_is_writable(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f);
	sqlite3_vfs *vfs = sqlite3_vfs_find("unix");
	struct store_health h;

	push(s, MSG_TELEMETRY, T0, 300);
	real_pwrite64 = vfs->xGetSystemCall(vfs, "pwrite64");
	vfs->xSetSystemCall(vfs, "pwrite64", (sqlite3_syscall_ptr)ro_pwrite64);
	write_errno = EROFS;
	assert_int_equal(push(s, MSG_TELEMETRY, T0 + 1, 300), 2);
	write_errno = EPERM;
	assert_int_equal(push(s, MSG_EVENT, T0 + 2, 100), 3);
	store_health(s, &h);
	assert_true(h.err < 0);
	assert_int_equal(h.queued, 2);
	write_errno = 0;
	vfs->xSetSystemCall(vfs, NULL, NULL);
	assert_int_equal(push(s, MSG_TELEMETRY, T0 + 3, 300), 4);
	store_health(s, &h);
	assert_int_equal(h.err, 0);
	assert_int_equal(h.queued, 0);
	store_close(s);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM outbox"), 4);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM pragma_integrity_check "
	    "WHERE integrity_check = 'ok'"), 1);
}

static void
test_full_disk_buffer_is_bounded(void **state)
{
	struct fx *f = *state;
	struct store *s = open_rw(f);
	int k = store_sensor_key(s, "h1-air", "house-1");

	disk_seam(true);
	disk_full = 1;
	for (int i = 0; i < 20000; i++)
		assert_int_equal(store_add_reading(s, k, Q_TEMPERATURE, 5.0, T0 + i, 0), 0);
	assert_int_equal(store_commit(s), -ENOSPC);
	disk_full = 0;
	disk_seam(false);
	assert_int_equal(store_commit(s), 0);
	store_close(s);
	/* What is kept is bounded, and it is the newest. */
	assert_true(sql_int(f->path, "SELECT count(*) FROM readings") < 20000);
	assert_true(sql_int(f->path, "SELECT count(*) FROM readings") >= 1000);
	assert_int_equal(sql_int(f->path, "SELECT max(ts) FROM readings"), T0 + 19999);
}

/*
 * sync = "normal": a VFS shim over "unix" that notes, for the WAL, whether
 * bytes were written since its last xSync - what a power cut would take.
 */
struct shim_file {
	sqlite3_file	 base;
	sqlite3_file	*real;		/* follows this struct in the same block */
	bool		 wal;
};

static sqlite3_vfs shim_vfs, *unix_vfs;
static sqlite3_io_methods shim_io;
static bool wal_unsynced;	/* WAL bytes written and not yet synced */
static int wal_syncs;

#define REAL(f)	(((struct shim_file *)(f))->real)

static int
shim_close(sqlite3_file *f)
{
	int rc = REAL(f)->pMethods->xClose(REAL(f));

	return rc;
}

static int
shim_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int
shim_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	if (((struct shim_file *)f)->wal)
		wal_unsynced = true;
	return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int
shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int
shim_sync(sqlite3_file *f, int flags)
{
	int rc = REAL(f)->pMethods->xSync(REAL(f), flags);

	if (rc == SQLITE_OK && ((struct shim_file *)f)->wal) {
		wal_unsynced = false;
		wal_syncs++;
	}
	return rc;
}

static int
shim_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int
shim_lock(sqlite3_file *f, int lock)
{
	return REAL(f)->pMethods->xLock(REAL(f), lock);
}

static int
shim_unlock(sqlite3_file *f, int lock)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}

static int
shim_check_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int
shim_file_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int
shim_sector_size(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int
shim_device_characteristics(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int
shim_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int
shim_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void
shim_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int
shim_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int
shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	struct shim_file *sf = (struct shim_file *)f;
	size_t len = name != NULL ? strlen(name) : 0;
	int rc;

	(void)vfs;
	sf->real = (sqlite3_file *)(sf + 1);
	sf->wal = len > 4 && strcmp(name + len - 4, "-wal") == 0;
	rc = unix_vfs->xOpen(unix_vfs, name, sf->real, flags, out_flags);
	/* SQLite calls xClose even after a failed open when pMethods is set. */
	f->pMethods = sf->real->pMethods != NULL ? &shim_io : NULL;
	return rc;
}

static void
shim_register(void)
{
	unix_vfs = sqlite3_vfs_find("unix");
	assert_non_null(unix_vfs);
	shim_io = (sqlite3_io_methods){
		.iVersion = 2, .xClose = shim_close, .xRead = shim_read,
		.xWrite = shim_write, .xTruncate = shim_truncate, .xSync = shim_sync,
		.xFileSize = shim_file_size, .xLock = shim_lock, .xUnlock = shim_unlock,
		.xCheckReservedLock = shim_check_reserved,
		.xFileControl = shim_file_control, .xSectorSize = shim_sector_size,
		.xDeviceCharacteristics = shim_device_characteristics,
		.xShmMap = shim_shm_map, .xShmLock = shim_shm_lock,
		.xShmBarrier = shim_shm_barrier, .xShmUnmap = shim_shm_unmap,
	};
	shim_vfs = *unix_vfs;
	shim_vfs.zName = "powercut-shim";
	shim_vfs.szOsFile = (int)sizeof(struct shim_file) + unix_vfs->szOsFile;
	shim_vfs.xOpen = shim_open;
	shim_vfs.pNext = NULL;
	assert_int_equal(sqlite3_vfs_register(&shim_vfs, 1), SQLITE_OK);
}

static void
shim_unregister(void)
{
	sqlite3_vfs_unregister(&shim_vfs);
	sqlite3_vfs_register(unix_vfs, 1);
}

/*
 * With sync = "normal", readings may wait for the disk (that is the point
 * of the mode), but a message must be on the disk before it is handed to
 * the broker: a power cut after it went out would give its seq again.
 */
static void
test_normal_sync_makes_messages_durable_before_handing_them_over(void **state)
{
	struct fx *f = *state;
	struct store_opts o = opts(f);
	struct store *s;
	int k;

	shim_register();
	o.sync_full = false;
	assert_int_equal(store_open(&s, &o, false), 0);
	k = store_sensor_key(s, "h1-air", "house-1");
	push(s, MSG_TELEMETRY, T0, 300);
	assert_false(wal_unsynced);

	/* Readings alone: committed, not synced (the shim sees the difference). */
	for (int i = 0; i < 100; i++)
		assert_int_equal(store_add_reading(s, k, Q_TEMPERATURE, 5.0, T0 + i, 0), 0);
	assert_int_equal(store_commit(s), 0);
	assert_true(wal_unsynced);

	/* A message: synced before push returns, with the readings before it. */
	push(s, MSG_EVENT, T0 + 1, 120);
	assert_false(wal_unsynced);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(store_add_reading(s, k, Q_TEMPERATURE, 5.0, T0 + i, 0), 0);
		assert_true(store_outbox_delivered(s, 1, T0 + i) >= 0);
		/* A prune (and its open transaction) between the two. */
		assert_true(store_prune(s, T0 + i, NULL) >= 0);
		push(s, MSG_TELEMETRY, T0 + i, 300);
		assert_false(wal_unsynced);
	}
	/* And readings go back to not waiting. */
	assert_int_equal(store_add_reading(s, k, Q_TEMPERATURE, 5.0, T0, 0), 0);
	assert_int_equal(store_commit(s), 0);
	assert_true(wal_unsynced);
	store_close(s);
	shim_unregister();
	assert_true(wal_syncs > 0);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_fresh_open_creates_current_schema),
		T(test_store_is_in_wal_mode),
		T(test_reopen_keeps_data),
		T(test_garbage_file_refused_unchanged),
		T(test_foreign_database_refused_unchanged),
		T(test_newer_schema_refused_unchanged),
		T(test_read_only_open_of_missing_file_fails_and_creates_nothing),
		T(test_missing_directory_is_an_error),
		T(test_unwritable_file_and_directory_refused),
		T(test_readings_invisible_to_readers_until_commit),
		T(test_a_big_batch_commits_by_itself),
		T(test_readings_query_filters_and_orders),
		T(test_sensor_keys_are_stable_and_follow_zone_moves),
		T(test_outbox_seq_counts_from_one),
		T(test_seq_survives_reopen_and_pruning_everything),
		T(test_fetch_gives_undelivered_in_seq_order),
		T(test_delivered_marks_batch_into_ranges),
		T(test_v1_store_migrates_forward_keeping_data),
		T(test_v2_store_alarms_migrate_to_the_portable_record),
		T(test_v2_store_is_not_migrated_read_only),
		T(test_alarms_persist_by_id),
		T(test_audit_chain_finds_edited_deleted_and_reordered_rows),
		T(test_state_values_reach_readers_after_commit),
		T(test_retention_prunes_old_rows_in_batches),
		T(test_size_cap_drops_in_spec_order_and_keeps_alarms),
		T(test_cap_never_drops_alarms),
		T(test_cap_drops_only_as_much_as_it_needs),
		T(test_file_stays_near_cap_in_steady_state),
		T(test_full_disk_keeps_messages_with_their_seqs),
		T(test_full_disk_message_queue_is_bounded_and_keeps_alarms),
		T(test_unwritable_store_keeps_messages_until_it_is_writable),
		T(test_full_disk_buffer_is_bounded),
		T(test_normal_sync_makes_messages_durable_before_handing_them_over),
	};
#undef T

	log_init(0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
