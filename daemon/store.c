/*
 * The SQLite store (SPEC §5): raw readings, the outbox of MQTT messages and
 * the seq counter, in one database file in WAL mode.
 *
 * Schema v3 (PRAGMA user_version = 3, application_id = STORE_APP_ID; the
 * migrations below take a v0, v1 or v2 file forward):
 *
 *	sensors(key INTEGER PRIMARY KEY, id TEXT UNIQUE, zone TEXT)
 *	readings(ts, sensor, quantity, value, flags)	rowid table, no index
 *	outbox(seq INTEGER PRIMARY KEY, kind, topic, payload, qos, retain,
 *	    created, delivered)				delivered NULL = pending
 *	    + partial index outbox_pending(seq) WHERE delivered IS NULL
 *	    + partial index outbox_delivered(delivered) WHERE delivered IS NOT NULL
 *	meta(key TEXT PRIMARY KEY, value)		"last_seq", "state.*"
 *	alarms(id TEXT PRIMARY KEY, state, updated, data)	one row per alarm instance (v2);
 *	    data is the record of alarmrec.c (v3; a raw C struct in v2)
 *	audit(n INTEGER PRIMARY KEY, ts, kind, detail, hash)	the hash-chained trail (v2)
 *
 * readings has no index at all: every index costs write throughput, and the
 * only readers (retention, the size cap, coldgatectl) either walk the table
 * from its oldest rowid or scan it.  Rowids grow with insertion, which is
 * time order, so "oldest" is "smallest rowid" and is found in O(log n).
 *
 * The outbox is small by comparison (a message a window per gateway) and
 * its two partial indexes make every question asked of it an index range:
 * what is pending, in seq order; what was delivered, oldest first.
 *
 * last_seq lives in meta and is written in the same transaction as the
 * outbox row, so seq never goes back even when every outbox row is pruned.
 *
 * The size cap counts pages in use, (page_count - freelist_count) *
 * page_size.  Deleted rows free pages onto the freelist and later inserts
 * reuse them, so the file settles at about max_size_mb plus the WAL, which
 * journal_size_limit trims back to 4 MiB after checkpoints.  We never
 * VACUUM: it rewrites the whole file.
 *
 * A full disk (SQLITE_FULL, and the other commit failures).  SQLite itself
 * rolls the whole transaction back when a write to the WAL fails with ENOSPC,
 * at COMMIT or when a page spills from the cache mid-transaction, so
 * "keep the transaction open and retry the commit later" is not on offer.
 * What we do instead:
 *   - Readings are not written into SQLite as they come: they wait in a
 *     small buffer here (RBUF_BATCH entries, a commit is forced when it is
 *     full) and are inserted and committed together at store_commit().  A
 *     failed commit rolls back the whole transaction and keeps the buffer,
 *     so the next store_commit() retries with nothing lost; while commits
 *     keep failing the buffer grows to RBUF_MAX and then drops its oldest
 *     readings, counted and logged.
 *   - A message store_outbox_push() cannot commit keeps the seq it was
 *     given and waits in a memory queue (MQ_MAX messages, MQ_MAX_BYTES of
 *     payload; past that the oldest telemetry, then the oldest event goes,
 *     never an alarm, and its seq shows as a gap).  The next commit that
 *     works, a push or store_commit(), stores the queue in seq order.
 *     Nothing unsaved is ever handed to the broker.
 *   - Every commit that stores messages is made with synchronous=FULL, even
 *     with sync = "normal" (store_durable()): a message the broker may hold
 *     must never be taken back by a power cut.
 *   - Delivered marks, prune deletes and state values that joined the lost
 *     transaction are gone.  That is safe: an unmarked message is sent
 *     again (at least once), a prune is simply redone.
 * Once the store sits at its cap, pruning frees pages inside the file that
 * the retried commit reuses, so a full disk does not stop a store that has
 * already reached its size.  Nothing in this path can corrupt the file:
 * SQLite's rollback leaves the last committed state.
 *
 * Opening never writes to a file we did not recognise: page 1 is read
 * (which is where a file that is not a database fails, SQLITE_NOTADB) and
 * the header's application_id and user_version checked before any pragma
 * that writes, such as journal_mode=WAL.  PRAGMA quick_check is not run:
 * it reads every page, seconds on a 256 MB store on an SD card at every
 * start; corruption deeper in the file is reported by the operation that
 * meets it (-EBADMSG).
 */
#include "store.h"
#include "alarm.h"
#include "audit.h"
#include "log.h"

#include <sqlite3.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_APP_ID	0x636f6c64	/* "cold", PRAGMA application_id */

#define RBUF_BATCH	1000		/* buffered readings that force a commit */
#define RBUF_MAX	4096		/* most kept while commits fail (96 KiB) */
#define PRUNE_BATCH	1000		/* rows one store_prune() call may delete */
#define DROP_MSG_BATCH	100		/* most messages one prune step may drop */
#define DROP_READING_CHUNK 100		/* readings dropped between two size checks */
#define MQ_MAX		1024		/* messages kept in memory while commits fail */
#define MQ_MAX_BYTES	(512 << 10)	/* and their payloads' bytes */
#define BUSY_MS		1000		/* coldgatectl may hold a read lock briefly */

#define DAY_MS		(86400 * (int64_t)1000)
#define STATE_PREFIX	"state."

/*
 * Forward migrations: migrations[v] takes a store from user_version v to
 * v + 1, in one transaction with the user_version bump.
 */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
	/* 0 -> 1: the first schema. */
	"CREATE TABLE sensors ("
	"  key INTEGER PRIMARY KEY,"
	"  id TEXT NOT NULL UNIQUE,"
	"  zone TEXT NOT NULL);"
	"CREATE TABLE readings ("
	"  ts INTEGER NOT NULL,"
	"  sensor INTEGER NOT NULL,"
	"  quantity INTEGER NOT NULL,"
	"  value REAL NOT NULL,"
	"  flags INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE outbox ("
	"  seq INTEGER PRIMARY KEY,"
	"  kind INTEGER NOT NULL,"
	"  topic TEXT NOT NULL,"
	"  payload BLOB NOT NULL,"
	"  qos INTEGER NOT NULL,"
	"  retain INTEGER NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  delivered INTEGER);"
	"CREATE INDEX outbox_pending ON outbox(seq) WHERE delivered IS NULL;"
	"CREATE INDEX outbox_delivered ON outbox(delivered) WHERE delivered IS NOT NULL;"
	"CREATE TABLE meta ("
	"  key TEXT PRIMARY KEY,"
	"  value) WITHOUT ROWID;"
	"INSERT INTO meta(key, value) VALUES ('last_seq', 0);"
	"PRAGMA application_id = 1668246628;",	/* STORE_APP_ID */
	/* 1 -> 2: alarm instances and the audit trail. */
	"CREATE TABLE alarms ("
	"  id TEXT PRIMARY KEY,"
	"  state TEXT NOT NULL,"
	"  updated INTEGER NOT NULL,"
	"  data BLOB NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE audit ("
	"  n INTEGER PRIMARY KEY,"
	"  ts INTEGER NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  detail TEXT NOT NULL,"
	"  hash BLOB NOT NULL);",
	/*
	 * 2 -> 3: alarm records from the raw struct to the portable format
	 * (alarm_record_v1_to_v2() below; a row it cannot read is dropped).
	 */
	"UPDATE alarms SET data = coalesce(coldgate_alarm_record_v1_to_v2(id, data), x'');"
	"DELETE FROM alarms WHERE length(data) = 0;",
};

enum stmt_id {
	ST_READING_INSERT,
	ST_OUTBOX_INSERT,
	ST_LAST_SEQ_SET,
	ST_LAST_SEQ_GET,
	ST_OUTBOX_MAX_SEQ,
	ST_OUTBOX_FETCH,
	ST_OUTBOX_DELIVERED,
	ST_OUTBOX_DELIVERED_RANGE,
	ST_SENSOR_GET,
	ST_SENSOR_INSERT,
	ST_SENSOR_ZONE,
	ST_PRUNE_READINGS,
	ST_PRUNE_DELIVERED,
	ST_DROP_READINGS,
	ST_DROP_DELIVERED,
	ST_DROP_TELEMETRY,
	ST_PAGES,
	ST_PENDING,
	ST_OLDEST_PENDING,
	ST_READINGS_SPAN,
	ST_STATE_SET,
	ST_STATE_GET,
	ST_READINGS,
	ST_ALARM_PUT,
	ST_ALARM_EACH,
	ST_AUDIT_LAST,
	ST_AUDIT_APPEND,
	ST_AUDIT_EACH,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_READING_INSERT] =
	    "INSERT INTO readings(ts, sensor, quantity, value, flags) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_OUTBOX_INSERT] =
	    "INSERT INTO outbox(seq, kind, topic, payload, qos, retain, created) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_LAST_SEQ_SET] =
	    "INSERT OR REPLACE INTO meta(key, value) VALUES ('last_seq', ?1)",
	[ST_LAST_SEQ_GET] =
	    "SELECT value FROM meta WHERE key = 'last_seq'",
	[ST_OUTBOX_MAX_SEQ] =
	    "SELECT max(seq) FROM outbox",
	[ST_OUTBOX_FETCH] =
	    "SELECT seq, kind, topic, payload, qos, retain, created FROM outbox "
	    "WHERE delivered IS NULL AND seq > ?1 ORDER BY seq LIMIT ?2",
	[ST_OUTBOX_DELIVERED] =
	    "UPDATE outbox SET delivered = ?2 WHERE seq = ?1 AND delivered IS NULL",
	[ST_OUTBOX_DELIVERED_RANGE] =
	    "UPDATE outbox SET delivered = ?3 WHERE seq BETWEEN ?1 AND ?2 AND delivered IS NULL",
	[ST_SENSOR_GET] =
	    "SELECT key, zone FROM sensors WHERE id = ?1",
	[ST_SENSOR_INSERT] =
	    "INSERT INTO sensors(id, zone) VALUES (?1, ?2)",
	[ST_SENSOR_ZONE] =
	    "UPDATE sensors SET zone = ?2 WHERE key = ?1",
	/*
	 * Retention of readings looks only at the oldest ?2 rows by rowid, so
	 * a call costs O(batch) however big the table is.  A row stamped in
	 * the future (a clock that was wrong) stays until its time comes, and
	 * does not stop the older rows behind it from going.
	 */
	[ST_PRUNE_READINGS] =
	    "DELETE FROM readings WHERE rowid IN (SELECT r FROM "
	    "(SELECT rowid AS r, ts FROM readings ORDER BY rowid LIMIT ?2) WHERE ts < ?1)",
	[ST_PRUNE_DELIVERED] =
	    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox "
	    "WHERE delivered IS NOT NULL AND delivered < ?1 ORDER BY delivered LIMIT ?2)",
	[ST_DROP_READINGS] =
	    "DELETE FROM readings WHERE rowid IN "
	    "(SELECT rowid FROM readings ORDER BY rowid LIMIT ?1)",
	[ST_DROP_DELIVERED] =
	    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox "
	    "WHERE delivered IS NOT NULL ORDER BY delivered, seq LIMIT ?1)",
	[ST_DROP_TELEMETRY] =
	    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox "
	    "WHERE delivered IS NULL AND kind = 0 ORDER BY seq LIMIT ?1)",
	[ST_PAGES] =
	    "SELECT * FROM pragma_page_count, pragma_freelist_count, pragma_page_size",
	[ST_PENDING] =
	    "SELECT count(*) FROM outbox WHERE delivered IS NULL",
	[ST_OLDEST_PENDING] =
	    "SELECT created FROM outbox WHERE delivered IS NULL ORDER BY seq LIMIT 1",
	/*
	 * count(*) reads the whole table, seconds on a big store on an SD
	 * card.  Readings go from the oldest end only, so the rowid span is
	 * the count, give or take rows retention took from the middle.
	 */
	[ST_READINGS_SPAN] =
	    "SELECT coalesce((SELECT max(rowid) FROM readings) - "
	    "(SELECT min(rowid) FROM readings) + 1, 0)",
	[ST_STATE_SET] =
	    "INSERT OR REPLACE INTO meta(key, value) VALUES ('" STATE_PREFIX "' || ?1, ?2)",
	[ST_STATE_GET] =
	    "SELECT value FROM meta WHERE key = '" STATE_PREFIX "' || ?1",
	/* Readings outer: the planner must never scan readings per sensor. */
	[ST_READINGS] =
	    "SELECT s.id, s.zone, r.quantity, r.value, r.ts, r.flags "
	    "FROM readings AS r CROSS JOIN sensors AS s ON s.key = r.sensor "
	    "WHERE r.ts >= ?1 AND r.ts < ?2 AND (?3 IS NULL OR r.sensor = ?3) "
	    "ORDER BY r.ts, r.rowid",
	[ST_ALARM_PUT] =
	    "INSERT OR REPLACE INTO alarms(id, state, updated, data) VALUES (?1, ?2, ?3, ?4)",
	[ST_ALARM_EACH] =
	    "SELECT id, state, updated, data FROM alarms ORDER BY id",
	[ST_AUDIT_LAST] =
	    "SELECT n, hash FROM audit ORDER BY n DESC LIMIT 1",
	[ST_AUDIT_APPEND] =
	    "INSERT INTO audit(n, ts, kind, detail, hash) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_AUDIT_EACH] =
	    "SELECT n, ts, kind, detail, hash FROM audit WHERE n >= ?1 ORDER BY n",
};

/*
 * PUBACKs waiting to be written as delivered marks.  They arrive in seq
 * order almost always, so a batch becomes a few range UPDATEs instead of
 * one statement per message: that statement was most of the store's cost
 * of draining a backlog.
 */
#define DELIV_BATCH	256

struct pending_delivered {
	int64_t		 seq;
	int64_t		 ms;
};

/*
 * A message the store could not take (a full disk, a read-only file): it
 * keeps the seq it was given and waits here, in seq order, for a commit
 * that works.  Nothing here has been handed to the broker.
 */
struct pending_msg {
	int64_t		 seq;
	int64_t		 created;
	const char	*topic;
	const void	*payload;
	size_t		 len;
	char		*buf;		/* topic and payload, when kept here */
	uint8_t		 kind;
	uint8_t		 qos;
	bool		 retain;
};

struct pending_reading {
	int64_t		 ts;
	double		 value;
	int32_t		 sensor;
	int16_t		 quantity;
	int16_t		 flags;
};

struct store {
	sqlite3		*db;
	char		*path;
	bool		 ro;
	bool		 sync_full;
	int		 max_size_mb;
	int		 retain_days;
	int64_t		 last_seq;	/* highest seq committed */
	int64_t		 seq_hi;	/* highest seq given out, stored or not */
	sqlite3_stmt	*stmt[ST_COUNT];
	bool		 fetching;	/* ST_OUTBOX_FETCH is stepping */

	struct pending_reading *rbuf;
	size_t		 nrbuf, rbufcap;

	struct pending_delivered deliv[DELIV_BATCH];
	size_t		 ndeliv;
	int64_t		 deliv_max;	/* highest seq in deliv */

	struct pending_msg *mq;		/* messages waiting for the store */
	size_t		 nmq, mqcap, mq_bytes;
	int64_t		 mq_dropped;	/* telemetry dropped from mq, not yet reported */
	bool		 mq_full_said;	/* the log said mq drops, this failing spell */

	int		 failing;	/* commits failed in a row */
	int		 last_err;	/* the last failed commit's errno, 0 once one works */
	int64_t		 lost_readings;	/* dropped from rbuf while failing */
	bool		 cap_stuck;	/* over the cap with nothing droppable */
};

static int store_flush_delivered(struct store *);

static int
sqlite_errno(sqlite3 *db, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_CANTOPEN:
		if (db != NULL && sqlite3_system_errno(db) > 0)
			return -sqlite3_system_errno(db);
		return -EACCES;
	default:
		return -EIO;
	}
}

/* Log a failed operation and turn the SQLite code into a negative errno. */
static int
store_err(struct store *s, int rc, const char *op)
{
	/* While commits keep failing, say so once, not once a second. */
	if (s->failing > 0)
		log_debug("store %s: %s: %s", s->path, op, sqlite3_errmsg(s->db));
	else
		log_warnx("store %s: %s: %s", s->path, op, sqlite3_errmsg(s->db));
	return sqlite_errno(s->db, rc);
}

static int
store_exec(struct store *s, const char *sql, const char *op)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : store_err(s, rc, op);
}

static sqlite3_stmt *
store_stmt(struct store *s, enum stmt_id id, int *err)
{
	int rc;

	if (s->stmt[id] == NULL) {
		rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
		    &s->stmt[id], NULL);
		if (rc != SQLITE_OK) {
			*err = store_err(s, rc, "prepare");
			s->stmt[id] = NULL;
			return NULL;
		}
	}
	return s->stmt[id];
}

/* Step a statement that returns no rows; returns sqlite3_changes() or -errno. */
static int
store_run(struct store *s, sqlite3_stmt *st, const char *op)
{
	int rc = sqlite3_step(st), err;

	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		err = store_err(s, rc, op);
		sqlite3_reset(st);
		return err;
	}
	sqlite3_reset(st);
	return sqlite3_changes(s->db);
}

/* A single integer from a statement without parameters; NULL and no row give 0. */
static int
store_int64(struct store *s, enum stmt_id id, const char *op, int64_t *v)
{
	sqlite3_stmt *st;
	int rc, err = 0;

	*v = 0;
	if ((st = store_stmt(s, id, &err)) == NULL)
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		err = store_err(s, rc, op);
	sqlite3_reset(st);
	return err;
}

static bool
store_txn_open(const struct store *s)
{
	return sqlite3_get_autocommit(s->db) == 0;
}

/*
 * Open the write transaction if none is.  IMMEDIATE takes the write lock at
 * once, so a busy store fails here rather than halfway through a batch.
 */
static int
store_begin(struct store *s)
{
	if (store_txn_open(s))
		return 0;
	return store_exec(s, "BEGIN IMMEDIATE", "begin");
}

/* Insert the buffered readings into the open transaction. */
static int
store_flush_readings(struct store *s)
{
	sqlite3_stmt *st;
	int err = 0;

	if (s->nrbuf == 0)
		return 0;
	if ((st = store_stmt(s, ST_READING_INSERT, &err)) == NULL)
		return err;
	for (size_t i = 0; i < s->nrbuf; i++) {
		const struct pending_reading *r = &s->rbuf[i];

		sqlite3_bind_int64(st, 1, r->ts);
		sqlite3_bind_int(st, 2, r->sensor);
		sqlite3_bind_int(st, 3, r->quantity);
		sqlite3_bind_double(st, 4, r->value);
		sqlite3_bind_int(st, 5, r->flags);
		if ((err = store_run(s, st, "insert reading")) < 0)
			return err;
	}
	return 0;
}

static void
mq_free(struct store *s)
{
	for (size_t i = 0; i < s->nmq; i++)
		free(s->mq[i].buf);
	s->nmq = 0;
	s->mq_bytes = 0;
}

static void
store_commit_ok(struct store *s)
{
	if (s->failing > 0) {
		log_info("store %s: committing again after %d failed commits%s", s->path,
		    s->failing, s->nmq > 0 ? "; the messages kept in memory are stored" : "");
		if (s->lost_readings > 0)
			log_warnx("store %s: %" PRId64 " readings dropped while commits failed",
			    s->path, s->lost_readings);
	}
	s->failing = 0;
	s->last_err = 0;
	s->mq_full_said = false;
	s->lost_readings = 0;
	s->nrbuf = 0;
	mq_free(s);
	s->last_seq = s->seq_hi;
}

/*
 * A commit failed: undo whatever SQLite left of the transaction so the next
 * attempt starts clean.  The reading buffer and the messages are kept for
 * that attempt.
 */
static void
store_commit_failed(struct store *s, int err)
{
	if (store_txn_open(s))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->last_err = err;
	if (s->failing++ == 0)
		log_warnx("store %s: commit failed (%s); %zu readings, and any message that "
		    "cannot be stored, are kept in memory; will retry", s->path,
		    strerror(-err), s->nrbuf);
}

static int
store_commit_txn(struct store *s)
{
	int rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : store_err(s, rc, "commit");
}

/*
 * With sync = "normal" a commit does not wait for the disk, and a power
 * cut can take it back.  A message must not go back: the broker may have
 * it already, and its seq would be given again to a different payload,
 * which no consumer can tell from a repeat.  So the commits that store
 * messages run at synchronous=FULL, whose fsync of the WAL makes every
 * earlier commit durable too; readings alone stay at NORMAL.  SQLite
 * refuses to change the level inside a transaction.
 */
static void
store_durable(struct store *s, bool on)
{
	if (!s->sync_full && !store_txn_open(s))
		(void)store_exec(s, on ? "PRAGMA synchronous = FULL" :
		    "PRAGMA synchronous = NORMAL", "synchronous");
}

static int
store_insert_msg(struct store *s, const struct pending_msg *m)
{
	sqlite3_stmt *st;
	int err = 0;

	if ((st = store_stmt(s, ST_OUTBOX_INSERT, &err)) == NULL)
		return err;
	sqlite3_bind_int64(st, 1, m->seq);
	sqlite3_bind_int(st, 2, m->kind);
	sqlite3_bind_text(st, 3, m->topic, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(st, 4, m->len ? m->payload : "", m->len, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, m->qos);
	sqlite3_bind_int(st, 6, m->retain);
	sqlite3_bind_int64(st, 7, m->created);
	err = store_run(s, st, "insert message");
	sqlite3_clear_bindings(st);
	return err;
}

/*
 * One durable commit of the messages kept in memory, then m (NULL: none),
 * with the readings and delivered marks that wait, and last_seq.
 */
static int
store_commit_msgs(struct store *s, const struct pending_msg *m)
{
	sqlite3_stmt *st;
	int err = 0;

	/* What the open transaction holds (prune deletes, marks) goes first. */
	if (!s->sync_full && store_txn_open(s) && (err = store_commit_txn(s)) < 0)
		goto fail;
	store_durable(s, true);
	if ((err = store_begin(s)) < 0 || (err = store_flush_readings(s)) < 0 ||
	    (err = store_flush_delivered(s)) < 0)
		goto fail;
	for (size_t i = 0; i < s->nmq; i++)
		if ((err = store_insert_msg(s, &s->mq[i])) < 0)
			goto fail;
	if (m != NULL && (err = store_insert_msg(s, m)) < 0)
		goto fail;
	if ((st = store_stmt(s, ST_LAST_SEQ_SET, &err)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, s->seq_hi);
	if ((err = store_run(s, st, "update last_seq")) < 0 ||
	    (err = store_commit_txn(s)) < 0)
		goto fail;
	store_durable(s, false);
	store_commit_ok(s);
	return 0;

fail:
	store_commit_failed(s, err);
	store_durable(s, false);
	return err;
}

int
store_commit(struct store *s)
{
	int err;

	if (s == NULL || s->ro)
		return 0;
	if (s->nmq > 0)
		return store_commit_msgs(s, NULL);
	if (s->nrbuf == 0 && s->ndeliv == 0 && !store_txn_open(s))
		return 0;
	if ((err = store_begin(s)) < 0 ||
	    (err = store_flush_readings(s)) < 0 ||
	    (err = store_flush_delivered(s)) < 0 ||
	    (err = store_commit_txn(s)) < 0) {
		store_commit_failed(s, err);
		return err;
	}
	store_commit_ok(s);
	return 0;
}

bool
store_in_transaction(const struct store *s)
{
	return s->nrbuf > 0 || s->nmq > 0 || store_txn_open(s);
}

int
store_add_reading(struct store *s, int sensor_key, int quantity, double value,
    int64_t ts_ms, int flags)
{
	struct pending_reading *r;

	if (s->ro)
		return -EROFS;
	if (s->nrbuf >= RBUF_BATCH && s->failing == 0)
		(void)store_commit(s);
	if (s->nrbuf >= RBUF_MAX) {
		/* Commits keep failing: the oldest reading goes first (SPEC §5). */
		memmove(s->rbuf, s->rbuf + 1, (s->nrbuf - 1) * sizeof(*s->rbuf));
		s->nrbuf--;
		s->lost_readings++;
	}
	if (s->nrbuf == s->rbufcap) {
		size_t ncap = s->rbufcap ? s->rbufcap * 2 : 64;

		if (ncap > RBUF_MAX)
			ncap = RBUF_MAX;
		if ((r = reallocarray(s->rbuf, ncap, sizeof(*r))) == NULL)
			return -ENOMEM;
		s->rbuf = r;
		s->rbufcap = ncap;
	}
	s->rbuf[s->nrbuf++] = (struct pending_reading){
		.ts = ts_ms, .value = value, .sensor = sensor_key,
		.quantity = (int16_t)quantity, .flags = (int16_t)flags,
	};
	return 0;
}

int64_t
store_next_seq(const struct store *s)
{
	return s->seq_hi + 1;
}

/*
 * Make room in the memory queue: the oldest telemetry goes, else the
 * oldest event; alarms never (there are few, each small).  Its seq is
 * never given again, so the loss shows as a gap.  false: only alarms.
 */
static bool
mq_drop_one(struct store *s)
{
	static const enum msg_kind order[] = { MSG_TELEMETRY, MSG_EVENT };

	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++)
		for (size_t i = 0; i < s->nmq; i++) {
			if (s->mq[i].kind != order[k])
				continue;
			s->mq_dropped++;
			if (!s->mq_full_said)
				log_warnx("store %s: %zu messages (%zu KiB) wait in memory, the "
				    "most kept; dropping the oldest (seq %" PRId64 ")",
				    s->path, s->nmq, s->mq_bytes >> 10, s->mq[i].seq);
			s->mq_full_said = true;
			s->mq_bytes -= s->mq[i].len;
			free(s->mq[i].buf);
			memmove(s->mq + i, s->mq + i + 1, (s->nmq - i - 1) * sizeof(*s->mq));
			s->nmq--;
			return true;
		}
	return false;
}

/* Keep a copy of m until a commit works. */
static int
mq_add(struct store *s, const struct pending_msg *m)
{
	struct pending_msg *q;
	size_t tlen = strlen(m->topic) + 1;

	while ((s->nmq >= MQ_MAX || s->mq_bytes + m->len > MQ_MAX_BYTES) && mq_drop_one(s))
		;
	if (s->nmq == s->mqcap) {
		size_t ncap = s->mqcap ? s->mqcap * 2 : 8;

		if ((q = reallocarray(s->mq, ncap, sizeof(*q))) == NULL)
			return -ENOMEM;
		s->mq = q;
		s->mqcap = ncap;
	}
	q = &s->mq[s->nmq];
	*q = *m;
	if ((q->buf = malloc(tlen + m->len)) == NULL)
		return -ENOMEM;
	memcpy(q->buf, m->topic, tlen);
	if (m->len > 0)
		memcpy(q->buf + tlen, m->payload, m->len);
	q->topic = q->buf;
	q->payload = q->buf + tlen;
	s->mq_bytes += m->len;
	s->nmq++;
	return 0;
}

int64_t
store_outbox_push(struct store *s, enum msg_kind kind, const char *topic,
    const void *payload, size_t len, int qos, bool retain, int64_t now_ms)
{
	struct pending_msg m = {
		.seq = s->seq_hi + 1, .created = now_ms, .topic = topic,
		.payload = payload, .len = len, .kind = (uint8_t)kind,
		.qos = (uint8_t)qos, .retain = retain,
	};
	int err;

	if (s->ro)
		return -EROFS;
	/* Given out now, stored or kept: never given again. */
	s->seq_hi = m.seq;
	if (store_commit_msgs(s, &m) == 0)
		return m.seq;
	if ((err = mq_add(s, &m)) < 0) {
		log_warnx("store %s: out of memory keeping message seq %" PRId64 " for %s; "
		    "it is lost", s->path, m.seq, topic);
		return err;
	}
	return m.seq;
}

void
store_health(struct store *s, struct store_health *h)
{
	h->err = s->last_err;
	h->queued = s->nmq;
	h->queued_bytes = s->mq_bytes;
	h->dropped = s->mq_dropped;
	s->mq_dropped = 0;
}

int
store_outbox_fetch(struct store *s, int64_t after, int limit,
    int (*cb)(const struct outbox_msg *, void *), void *arg)
{
	sqlite3_stmt *st;
	struct outbox_msg m;
	int rc, n = 0, err = 0;

	if (limit <= 0)
		return 0;
	if (s->fetching)
		return -EBUSY;	/* cb called us again: the statement is in use */
	/* A replay from an older cursor must not resend what was just acknowledged. */
	if (after < s->deliv_max && (err = store_flush_delivered(s)) < 0)
		return err;
	if ((st = store_stmt(s, ST_OUTBOX_FETCH, &err)) == NULL)
		return err;
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int(st, 2, limit);
	s->fetching = true;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		m.seq = sqlite3_column_int64(st, 0);
		m.kind = sqlite3_column_int(st, 1);
		m.topic = (const char *)sqlite3_column_text(st, 2);
		m.payload = sqlite3_column_blob(st, 3);
		m.len = (size_t)sqlite3_column_bytes(st, 3);
		m.qos = sqlite3_column_int(st, 4);
		m.retain = sqlite3_column_int(st, 5) != 0;
		m.created_ms = sqlite3_column_int64(st, 6);
		if (m.topic == NULL)
			m.topic = "";
		if (m.payload == NULL)
			m.payload = "";
		n++;
		if (cb(&m, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		err = store_err(s, rc, "fetch messages");
	sqlite3_reset(st);
	s->fetching = false;
	return err < 0 ? err : n;
}

static int
deliv_cmp(const void *a, const void *b)
{
	const struct pending_delivered *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Write the buffered delivered marks into the open transaction. */
static int
store_flush_delivered(struct store *s)
{
	sqlite3_stmt *st;
	size_t i, j;
	int err = 0;

	if (s->ndeliv == 0)
		return 0;
	if ((err = store_begin(s)) < 0 ||
	    (st = store_stmt(s, ST_OUTBOX_DELIVERED_RANGE, &err)) == NULL)
		return err;
	qsort(s->deliv, s->ndeliv, sizeof(s->deliv[0]), deliv_cmp);
	for (i = 0; i < s->ndeliv && err >= 0; i = j) {
		int64_t ms = s->deliv[i].ms;

		for (j = i + 1; j < s->ndeliv && s->deliv[j].seq <= s->deliv[j - 1].seq + 1; j++)
			if (s->deliv[j].ms > ms)
				ms = s->deliv[j].ms;
		sqlite3_bind_int64(st, 1, s->deliv[i].seq);
		sqlite3_bind_int64(st, 2, s->deliv[j - 1].seq);
		sqlite3_bind_int64(st, 3, ms);
		err = store_run(s, st, "mark delivered");
	}
	/* Marks lost with a failed transaction only mean a message is sent again. */
	s->ndeliv = 0;
	s->deliv_max = 0;
	return err < 0 ? err : 0;
}

/*
 * Returns 1 if the message is taken as delivered, 0 if it is unknown or
 * was already marked (a second PUBACK).  The mark joins the open
 * transaction with the next batch.
 */
int
store_outbox_delivered(struct store *s, int64_t seq, int64_t now_ms)
{
	if (s->ro)
		return -EROFS;
	if (seq <= 0 || seq > s->last_seq)
		return 0;
	for (size_t i = s->ndeliv; i-- > 0;)
		if (s->deliv[i].seq == seq)
			return 0;
	if (s->ndeliv == DELIV_BATCH) {
		int err = store_flush_delivered(s);

		if (err < 0)
			return err;
	}
	s->deliv[s->ndeliv++] = (struct pending_delivered){ seq, now_ms };
	if (seq > s->deliv_max)
		s->deliv_max = seq;
	return 1;
}

int
store_sensor_key(struct store *s, const char *sensor, const char *zone)
{
	sqlite3_stmt *st;
	int64_t key = 0;
	bool same_zone = true;
	int rc, err = 0;

	if ((st = store_stmt(s, ST_SENSOR_GET, &err)) == NULL)
		return err;
	sqlite3_bind_text(st, 1, sensor, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *z = (const char *)sqlite3_column_text(st, 1);

		key = sqlite3_column_int64(st, 0);
		same_zone = z != NULL && strcmp(z, zone) == 0;
	} else if (rc != SQLITE_DONE)
		err = store_err(s, rc, "look up sensor");
	sqlite3_reset(st);
	if (err < 0)
		return err;
	if (key > 0 && same_zone)
		return (int)key;
	if (s->ro)
		return -ENOENT;

	/* A sensor moved to another zone keeps its key and its history. */
	if (key > 0) {
		if ((st = store_stmt(s, ST_SENSOR_ZONE, &err)) == NULL)
			return err;
		sqlite3_bind_int64(st, 1, key);
		sqlite3_bind_text(st, 2, zone, -1, SQLITE_STATIC);
		err = store_run(s, st, "update sensor zone");
		return err < 0 ? err : (int)key;
	}
	if ((st = store_stmt(s, ST_SENSOR_INSERT, &err)) == NULL)
		return err;
	sqlite3_bind_text(st, 1, sensor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, zone, -1, SQLITE_STATIC);
	if ((err = store_run(s, st, "add sensor")) < 0)
		return err;
	key = sqlite3_last_insert_rowid(s->db);
	if (key > INT32_MAX)
		return -EOVERFLOW;
	return (int)key;
}

static int
store_used_bytes(struct store *s, int64_t *used, int64_t *page_size)
{
	sqlite3_stmt *st;
	int rc, err = 0;

	*used = 0;
	if ((st = store_stmt(s, ST_PAGES, &err)) == NULL)
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*page_size = sqlite3_column_int64(st, 2);
		*used = (sqlite3_column_int64(st, 0) - sqlite3_column_int64(st, 1)) * *page_size;
	} else
		err = store_err(s, rc, "page count");
	sqlite3_reset(st);
	return err;
}

/* Delete with one statement taking (limit) or (cutoff, limit). */
static int
store_delete(struct store *s, enum stmt_id id, const int64_t *cutoff, int limit,
    const char *op)
{
	sqlite3_stmt *st;
	int err = 0, i = 1;

	if ((st = store_stmt(s, id, &err)) == NULL)
		return err;
	if (cutoff != NULL)
		sqlite3_bind_int64(st, i++, *cutoff);
	sqlite3_bind_int(st, i, limit);
	return store_run(s, st, op);
}

/*
 * Drop with statement id (LIMIT ?1, oldest first) in steps of chunk rows,
 * at most max, until the used size is back under cap.  A message can be
 * tens of KiB while the cap is passed by a page or two at a time: a fixed
 * batch threw away a whole backlog for 4 % over.  Deleted pages go to the
 * freelist inside the transaction, so the size seen here is current.
 */
static int
store_drop_until(struct store *s, enum stmt_id id, int64_t cap, int chunk, int max,
    const char *op)
{
	int64_t used, page_size;
	int n = 0, k, err;

	while (n < max) {
		if ((k = store_delete(s, id, NULL, chunk, op)) < 0)
			return k;
		if (k == 0)
			break;
		n += k;
		if ((err = store_used_bytes(s, &used, &page_size)) < 0)
			return err;
		if (used <= cap)
			break;
	}
	return n;
}

/*
 * The deletes join the open transaction like the delivered marks; the next
 * store_commit() makes them durable, and inserts in the same transaction
 * already reuse the pages they free.
 */
int
store_prune(struct store *s, int64_t now_ms, struct store_drops *drops)
{
	struct store_drops ignored;
	int64_t cutoff, used, cap, page_size;
	int n = 0, k, err;

	if (s->ro)
		return -EROFS;
	if (drops == NULL)
		drops = &ignored;
	if ((err = store_begin(s)) < 0 || (err = store_flush_delivered(s)) < 0)
		return err;

	if (s->retain_days > 0) {
		cutoff = now_ms - s->retain_days * DAY_MS;
		if ((k = store_delete(s, ST_PRUNE_READINGS, &cutoff, PRUNE_BATCH,
		    "prune old readings")) < 0)
			return k;
		n += k;
		if (n < PRUNE_BATCH) {
			if ((k = store_delete(s, ST_PRUNE_DELIVERED, &cutoff, PRUNE_BATCH - n,
			    "prune old messages")) < 0)
				return k;
			n += k;
		}
		if (n > 0)
			return n;
	}

	if (s->max_size_mb <= 0)
		return n;
	cap = (int64_t)s->max_size_mb << 20;
	if ((err = store_used_bytes(s, &used, &page_size)) < 0)
		return err;
	if (used <= cap) {
		s->cap_stuck = false;
		return 0;
	}

	/*
	 * SPEC §5 order: oldest readings, oldest delivered, oldest undelivered
	 * telemetry, each only as much as brings the store back under its cap.
	 */
	if ((k = store_drop_until(s, ST_DROP_READINGS, cap, DROP_READING_CHUNK, PRUNE_BATCH,
	    "drop readings")) < 0)
		return k;
	if (k > 0) {
		drops->readings += k;
		return k;
	}
	if ((k = store_drop_until(s, ST_DROP_DELIVERED, cap, 1, DROP_MSG_BATCH,
	    "drop delivered messages")) < 0)
		return k;
	if (k > 0) {
		drops->delivered += k;
		return k;
	}
	if ((k = store_drop_until(s, ST_DROP_TELEMETRY, cap, 1, DROP_MSG_BATCH,
	    "drop undelivered telemetry")) < 0)
		return k;
	if (k > 0) {
		drops->undelivered += k;
		return k;
	}
	if (!s->cap_stuck)
		log_warnx("store %s: %" PRId64 " KiB used, above storage.max_size_mb = %d, "
		    "and only alarms and events are left: keeping them", s->path, used >> 10,
		    s->max_size_mb);
	s->cap_stuck = true;
	return 0;
}

static int64_t
file_size(const char *path, const char *suffix)
{
	char buf[4096];
	struct stat st;

	if ((size_t)snprintf(buf, sizeof(buf), "%s%s", path, suffix) >= sizeof(buf))
		return 0;
	return stat(buf, &st) == 0 ? (int64_t)st.st_size : 0;
}

int
store_stats(struct store *s, struct store_stats *out)
{
	int64_t page_size;
	bool txn = false;
	int err;

	memset(out, 0, sizeof(*out));
	if (!s->ro && (err = store_flush_delivered(s)) < 0)
		return err;
	/* One read transaction, so the figures agree with one another. */
	if (!store_txn_open(s)) {
		if ((err = store_exec(s, "BEGIN", "begin read")) < 0)
			return err;
		txn = true;
	}
	if ((err = store_int64(s, ST_LAST_SEQ_GET, "read last_seq", &out->last_seq)) < 0 ||
	    (err = store_int64(s, ST_PENDING, "count pending", &out->pending)) < 0 ||
	    (err = store_int64(s, ST_OLDEST_PENDING, "oldest pending",
	    &out->oldest_pending_ms)) < 0 ||
	    (err = store_int64(s, ST_READINGS_SPAN, "count readings", &out->readings)) < 0 ||
	    (err = store_used_bytes(s, &out->used_bytes, &page_size)) < 0)
		goto out;
	if (!s->ro && s->last_seq > out->last_seq)
		out->last_seq = s->last_seq;
	out->file_bytes = file_size(s->path, "") + file_size(s->path, "-wal");
out:
	if (txn)
		sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	return err;
}

int
store_set_state(struct store *s, const char *key, const char *value)
{
	sqlite3_stmt *st;
	int err = 0;

	if (s->ro)
		return -EROFS;
	if ((err = store_begin(s)) < 0)
		return err;
	if ((st = store_stmt(s, ST_STATE_SET, &err)) == NULL)
		return err;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	err = store_run(s, st, "set state");
	sqlite3_clear_bindings(st);
	return err < 0 ? err : 0;
}

int
store_get_state(struct store *s, const char *key, char *buf, size_t len)
{
	sqlite3_stmt *st;
	int rc, err = 0;

	if (len > 0)
		buf[0] = '\0';
	if ((st = store_stmt(s, ST_STATE_GET, &err)) == NULL)
		return err;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);

		if (len > 0)
			snprintf(buf, len, "%s", v ? v : "");
	} else if (rc == SQLITE_DONE)
		err = -ENOENT;
	else
		err = store_err(s, rc, "get state");
	sqlite3_reset(st);
	return err;
}

/*
 * Step a statement selecting sensor id, zone, quantity, value, ts, flags;
 * cb per row, non-zero stops.  Rows visited, or a negative errno.
 */
static int
readings_walk(struct store *s, sqlite3_stmt *st, int (*cb)(const char *sensor,
    const char *zone, int quantity, double value, int64_t ts_ms, int flags, void *arg),
    void *arg)
{
	int rc, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		const char *zone = (const char *)sqlite3_column_text(st, 1);

		n++;
		if (cb(id ? id : "", zone ? zone : "", sqlite3_column_int(st, 2),
		    sqlite3_column_double(st, 3), sqlite3_column_int64(st, 4),
		    sqlite3_column_int(st, 5), arg) != 0)
			return n;
	}
	return rc == SQLITE_DONE ? n : store_err(s, rc, "read readings");
}

int
store_readings(struct store *s, const char *sensor, int64_t since_ms, int64_t until_ms,
    int (*cb)(const char *sensor, const char *zone, int quantity, double value,
    int64_t ts_ms, int flags, void *arg), void *arg)
{
	sqlite3_stmt *st;
	int64_t key = 0;
	int rc, n = 0, err = 0;

	if (sensor != NULL) {
		if ((st = store_stmt(s, ST_SENSOR_GET, &err)) == NULL)
			return err;
		sqlite3_bind_text(st, 1, sensor, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			key = sqlite3_column_int64(st, 0);
		else if (rc != SQLITE_DONE)
			err = store_err(s, rc, "look up sensor");
		sqlite3_reset(st);
		if (err < 0)
			return err;
		if (key == 0)
			return -ENOENT;
	}
	if ((st = store_stmt(s, ST_READINGS, &err)) == NULL)
		return err;
	sqlite3_bind_int64(st, 1, since_ms);
	sqlite3_bind_int64(st, 2, until_ms);
	if (sensor != NULL)
		sqlite3_bind_int64(st, 3, key);
	else
		sqlite3_bind_null(st, 3);
	n = readings_walk(s, st, cb, arg);
	sqlite3_reset(st);
	return n;
}

/* ---- opening ---- */

/*
 * Before the first connection: no lookaside (up to 120 KiB per connection by
 * default, against a 1 MB budget for the whole daemon) and no memory
 * statistics (a global mutex on every malloc for nothing we read).  No
 * page-cache slab either: with pMem NULL and N non-zero (the default N is
 * 20) each connection's page cache starts with one bulk allocation of N
 * pages, made when the schema is first read, before store_pragmas() has
 * set cache_size, and kept until the connection closes; N = 0 makes each
 * page its own sqlite3_malloc(), so the cache holds only the pages
 * cache_size allows (87 KiB of slab against 64 KiB of cache, measured).
 * It is too late if the library is already in use; SQLite then refuses,
 * harmlessly.
 */
static void
store_global_init(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0);
	sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
	sqlite3_initialize();
}

/*
 * The store needs its directory as much as its file: SQLite creates the
 * -wal and -shm files next to it.  Returns 0 if the directory is usable,
 * else logs why not and returns a negative errno.
 */
static int
store_dir_problem(const struct store *s)
{
	char dir[4096], *slash;
	struct stat sb;
	int err;

	snprintf(dir, sizeof(dir), "%s", s->path);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (stat(dir, &sb) == -1)
		err = -errno;
	else if (access(dir, W_OK | X_OK) == -1)
		err = -errno;
	else
		return 0;
	log_warnx("store %s: directory %s: %s (the store, its -wal and -shm files live there)",
	    s->path, dir, strerror(-err));
	return err;
}

/*
 * Read page 1 and decide what the file is.  Returns the schema version to
 * migrate from, or a negative errno for a file we must not touch.
 */
static int
store_check(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int64_t nobj = 0, app = 0, version = 0;
	int rc, err = 0;

	rc = sqlite3_prepare_v2(s->db, "SELECT (SELECT count(*) FROM sqlite_master), "
	    "(SELECT application_id FROM pragma_application_id), "
	    "(SELECT user_version FROM pragma_user_version)", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			nobj = sqlite3_column_int64(st, 0);
			app = sqlite3_column_int64(st, 1);
			version = sqlite3_column_int64(st, 2);
			rc = SQLITE_OK;
		}
	}
	if (rc != SQLITE_OK && (rc & 0xff) == SQLITE_READONLY && !s->ro &&
	    (err = store_dir_problem(s)) < 0) {
		sqlite3_finalize(st);
		return err;
	}
	if (rc != SQLITE_OK) {
		err = sqlite_errno(s->db, rc);
		if (err == -EBADMSG)
			log_warnx("store %s: not a database, or corrupt (%s); leaving it alone",
			    s->path, sqlite3_errmsg(s->db));
		else
			log_warnx("store %s: cannot read: %s", s->path, sqlite3_errmsg(s->db));
	}
	sqlite3_finalize(st);
	if (err < 0)
		return err;

	if (version > STORE_SCHEMA_VERSION) {
		log_warnx("store %s: schema version %" PRId64 " is newer than this coldgate's %d "
		    "(made by a newer coldgate?); leaving it alone", s->path, version,
		    STORE_SCHEMA_VERSION);
		return -EPROTO;
	}
	if (app == STORE_APP_ID && version >= 1)
		return (int)version;
	if (app == 0 && version == 0 && nobj == 0) {
		if (s->ro) {
			log_warnx("store %s: empty, coldgated has not created the store yet",
			    s->path);
			return -ENOENT;
		}
		return 0;
	}
	log_warnx("store %s: not a coldgate store (application_id %#" PRIx64 ", user_version %"
	    PRId64 ", %" PRId64 " schema objects); leaving it alone", s->path, app, version, nobj);
	return -EBADMSG;
}

static int
store_pragmas(struct store *s)
{
	sqlite3_stmt *st = NULL;
	const char *mode;
	char sql[512];
	int rc, err = 0;

	if (s->ro)
		return store_exec(s, "PRAGMA query_only = ON", "pragmas");

	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		mode = (const char *)sqlite3_column_text(st, 0);
		if (mode == NULL || strcmp(mode, "wal") != 0) {
			log_warnx("store %s: cannot switch to WAL mode (journal_mode %s); "
			    "is the directory writable?", s->path, mode ? mode : "?");
			err = -EACCES;
		}
	} else
		err = store_err(s, rc, "journal_mode");
	sqlite3_finalize(st);
	if (err < 0)
		return err;

	/*
	 * secure_delete: Debian builds it on, which zeroes every freed page and
	 * doubles the writes of each prune.  journal_size_limit trims the WAL
	 * back after a checkpoint.  The cache is small: the whole daemon has a
	 * 1 MB budget, and inserts append at the right edge of each tree while
	 * prunes take from the left, a handful of pages each (measured: the
	 * insert rate is the same with 64 KiB as with 2 MiB).
	 */
	snprintf(sql, sizeof(sql),
	    "PRAGMA synchronous = %s;"
	    "PRAGMA cache_size = -64;"
	    "PRAGMA secure_delete = OFF;"
	    "PRAGMA journal_size_limit = 4194304;"
	    "PRAGMA foreign_keys = OFF;"
	    "PRAGMA temp_store = MEMORY;",
	    s->sync_full ? "FULL" : "NORMAL");
	return store_exec(s, sql, "pragmas");
}

/*
 * The alarm record as schema 2 stored it: the version word 1, then
 * struct alarm_record as it was, byte for byte in this build's layout.
 * Frozen here, the one place left that reads it: the enums were int-sized,
 * nspans a size_t.  Only a store written on this kind of machine reads
 * back; anything else fails the size or range checks and is dropped.
 */
struct alarm_record_v1 {
	char		 id[ALARM_ID_MAX + 1];
	unsigned	 kind, severity;
	int		 zone, sensor;
	unsigned	 state;
	double		 value, limit;
	int64_t		 since, changed;
	char		 acked_by[ALARM_BY_MAX + 1];
	int64_t		 acked_at, pending;
	size_t		 nspans;
	struct alarm_span spans[ALARM_SPANS_MAX];
};

struct alarm_blob_v1 {
	uint32_t		 version;
	struct alarm_record_v1	 rec;
};

/* A schema 2 alarm record (id's row) into *out; NULL, or why not. */
static const char *
alarm_v1_decode(const char *id, const void *data, size_t len, struct alarm_record *out)
{
	struct alarm_blob_v1 b;
	const struct alarm_record_v1 *r = &b.rec;

	if (len != sizeof(b))
		return "is not of this machine's schema 2 layout";
	memcpy(&b, data, sizeof(b));
	if (b.version != 1)
		return "has an unknown version";
	if (memchr(r->id, '\0', sizeof(r->id)) == NULL ||
	    memchr(r->acked_by, '\0', sizeof(r->acked_by)) == NULL || strcmp(r->id, id) != 0)
		return "is another alarm's or garbled";
	if (r->kind >= ALARM_KIND_COUNT || r->severity > ALARM_CRITICAL || r->state > ALARM_ACKED ||
	    r->nspans > ALARM_SPANS_MAX)
		return "has a field out of range";
	memset(out, 0, sizeof(*out));
	memcpy(out->id, r->id, sizeof(out->id));
	out->kind = (enum alarm_kind)r->kind;
	out->severity = (enum alarm_severity)r->severity;
	out->zone = r->zone;
	out->sensor = r->sensor;
	out->state = (enum alarm_state)r->state;
	out->value = r->value;
	out->limit = r->limit;
	out->since = r->since;
	out->changed = r->changed;
	memcpy(out->acked_by, r->acked_by, sizeof(out->acked_by));
	out->acked_at = r->acked_at;
	out->pending = r->pending;
	out->nspans = r->nspans;
	memcpy(out->spans, r->spans, r->nspans * sizeof(*r->spans));
	return NULL;
}

/*
 * SQL coldgate_alarm_record_v1_to_v2(id, data): a schema 2 row's data in the
 * current record format, or NULL (logged) for a row it cannot read.
 */
static void
alarm_record_v1_to_v2(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const struct store *s = sqlite3_user_data(ctx);
	const char *id = (const char *)sqlite3_value_text(argv[0]), *why;
	struct alarm_record rec;
	uint8_t buf[ALARM_RECORD_MAX];

	(void)argc;
	if (id == NULL)
		id = "(no id)";
	why = alarm_v1_decode(id, sqlite3_value_blob(argv[1]),
	    (size_t)sqlite3_value_bytes(argv[1]), &rec);
	if (why != NULL) {
		log_warnx("store %s: alarm %s: stored record %s; dropped (it is raised again if "
		    "its condition still holds)", s->path, id, why);
		sqlite3_result_null(ctx);
		return;
	}
	sqlite3_result_blob(ctx, buf, (int)alarm_record_encode(&rec, buf), SQLITE_TRANSIENT);
}

static int
store_migrate(struct store *s, int from)
{
	char sql[64];
	int rc, err;

	rc = sqlite3_create_function(s->db, "coldgate_alarm_record_v1_to_v2", 2,
	    SQLITE_UTF8 | SQLITE_DIRECTONLY, s, alarm_record_v1_to_v2, NULL, NULL);
	if (rc != SQLITE_OK)
		return store_err(s, rc, "migrate");
	for (int v = from; v < STORE_SCHEMA_VERSION; v++) {
		if ((err = store_exec(s, "BEGIN IMMEDIATE", "migrate")) < 0)
			return err;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if ((err = store_exec(s, migrations[v], "migrate")) < 0 ||
		    (err = store_exec(s, sql, "migrate")) < 0 ||
		    (err = store_exec(s, "COMMIT", "migrate")) < 0) {
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return err;
		}
		if (from > 0)
			log_info("store %s: migrated to schema version %d", s->path, v + 1);
	}
	return 0;
}

static int
store_load_seq(struct store *s)
{
	int64_t meta, max;
	int err;

	if ((err = store_int64(s, ST_LAST_SEQ_GET, "read last_seq", &meta)) < 0 ||
	    (err = store_int64(s, ST_OUTBOX_MAX_SEQ, "read max seq", &max)) < 0)
		return err;
	s->last_seq = meta > max ? meta : max;
	s->seq_hi = s->last_seq;
	return 0;
}

/*
 * SQLite reports the errno of its last attempt, which for a file it could
 * not create in a read-only directory is the ENOENT of its read-only retry.
 * Say what the operator has to fix.
 */
static int
store_open_failed(struct store *s, int rc)
{
	struct stat sb;
	int err = sqlite_errno(s->db, rc), derr;

	if (!s->ro && stat(s->path, &sb) == -1 && errno == ENOENT &&
	    (derr = store_dir_problem(s)) < 0)
		return derr;
	log_warnx("store %s: cannot open: %s%s%s", s->path,
	    s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc),
	    err != -EIO ? ": " : "", err != -EIO ? strerror(-err) : "");
	return err;
}

int
store_open(struct store **out, const struct store_opts *o, bool read_only)
{
	struct store *s;
	struct stat sb;
	int flags, rc, err, version;

	*out = NULL;
	store_global_init();
	if (read_only && stat(o->path, &sb) == -1) {
		err = -errno;
		log_warnx("store %s: %s", o->path, strerror(errno));
		return err;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->path = strdup(o->path)) == NULL) {
		free(s);
		return -ENOMEM;
	}
	s->ro = read_only;
	s->sync_full = o->sync_full;
	s->max_size_mb = o->max_size_mb;
	s->retain_days = o->retain_days;

	flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(s->path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		err = store_open_failed(s, rc);
		goto err_close;
	}
	if (!read_only && sqlite3_db_readonly(s->db, "main") == 1) {
		log_warnx("store %s: not writable", s->path);
		err = -EACCES;
		goto err_close;
	}
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 0, 0);
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_MS);

	if ((version = store_check(s)) < 0) {
		err = version;
		goto err_close;
	}
	if ((err = store_pragmas(s)) < 0)
		goto err_close;
	if (version < STORE_SCHEMA_VERSION) {
		if (read_only) {
			log_warnx("store %s: schema version %d is older than %d; "
			    "start coldgated once to upgrade it", s->path, version,
			    STORE_SCHEMA_VERSION);
			err = -EPROTO;
			goto err_close;
		}
		if ((err = store_migrate(s, version)) < 0)
			goto err_close;
	}
	if ((err = store_load_seq(s)) < 0)
		goto err_close;
	*out = s;
	return 0;

err_close:
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	free(s->path);
	free(s);
	return err;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	if (!s->ro && store_commit(s) < 0) {
		log_warnx("store %s: closing with %zu readings not committed; they are lost",
		    s->path, s->nrbuf);
		if (s->nmq > 0)
			log_warnx("store %s: and %zu messages (seq %" PRId64 "..%" PRId64 ") "
			    "that could not be stored are lost; they never reached the broker, "
			    "and the next start gives their seqs again", s->path,
			    s->nmq, s->mq[0].seq, s->mq[s->nmq - 1].seq);
		if (store_txn_open(s))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	}
	mq_free(s);
	free(s->mq);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	if (sqlite3_close(s->db) != SQLITE_OK)
		log_warnx("store %s: close: %s", s->path, sqlite3_errmsg(s->db));
	free(s->rbuf);
	free(s->path);
	free(s);
}

int
store_alarm_put(struct store *s, const struct store_alarm *a)
{
	sqlite3_stmt *st;
	int err = 0;

	if (s->ro)
		return -EROFS;
	if ((err = store_begin(s)) < 0 || (st = store_stmt(s, ST_ALARM_PUT, &err)) == NULL)
		return err;
	sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, a->updated_ms);
	sqlite3_bind_blob(st, 4, a->data, (int)a->len, SQLITE_STATIC);
	err = store_run(s, st, "store alarm");
	sqlite3_clear_bindings(st);
	return err < 0 ? err : 0;
}

int
store_alarm_each(struct store *s, int (*cb)(const struct store_alarm *, void *), void *arg)
{
	sqlite3_stmt *st;
	struct store_alarm a;
	int rc, err = 0;

	if ((st = store_stmt(s, ST_ALARM_EACH, &err)) == NULL)
		return err;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		a.id = (const char *)sqlite3_column_text(st, 0);
		a.state = (const char *)sqlite3_column_text(st, 1);
		a.updated_ms = sqlite3_column_int64(st, 2);
		a.data = sqlite3_column_blob(st, 3);
		a.len = (size_t)sqlite3_column_bytes(st, 3);
		if (a.id == NULL || a.state == NULL)
			continue;
		if (cb(&a, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		err = store_err(s, rc, "read alarms");
	sqlite3_reset(st);
	return err;
}

/* The last audit row's number and hash; 0 and zeros for an empty trail. */
static int
store_audit_last(struct store *s, int64_t *n, uint8_t hash[AUDIT_HASH_LEN])
{
	sqlite3_stmt *st;
	int rc, err = 0;

	*n = 0;
	memset(hash, 0, AUDIT_HASH_LEN);
	if ((st = store_stmt(s, ST_AUDIT_LAST, &err)) == NULL)
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*n = sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) == AUDIT_HASH_LEN)
			memcpy(hash, sqlite3_column_blob(st, 1), AUDIT_HASH_LEN);
	} else if (rc != SQLITE_DONE)
		err = store_err(s, rc, "read the audit trail");
	sqlite3_reset(st);
	return err;
}

int64_t
store_audit_append(struct store *s, int64_t ts_ms, const char *kind, const char *detail)
{
	uint8_t prev[AUDIT_HASH_LEN], hash[AUDIT_HASH_LEN];
	sqlite3_stmt *st;
	int64_t n;
	int err = 0;

	if (s->ro)
		return -EROFS;
	if ((err = store_begin(s)) < 0 || (err = store_audit_last(s, &n, prev)) < 0)
		return err;
	n++;
	if ((err = audit_hash(prev, n, ts_ms, kind, detail, hash)) < 0)
		return err;
	if ((st = store_stmt(s, ST_AUDIT_APPEND, &err)) == NULL)
		return err;
	sqlite3_bind_int64(st, 1, n);
	sqlite3_bind_int64(st, 2, ts_ms);
	sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, detail, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, hash, AUDIT_HASH_LEN, SQLITE_STATIC);
	err = store_run(s, st, "append to the audit trail");
	sqlite3_clear_bindings(st);
	if (err < 0)
		return err;
	/* A record that may be needed in court is worth its own fsync. */
	if ((err = store_commit(s)) < 0)
		return err;
	return n;
}

/* Step a statement selecting n, ts, kind, detail, hash; cb per row, non-zero stops. */
static int
audit_walk(struct store *s, sqlite3_stmt *st, int (*cb)(const struct audit_row *, void *),
    void *arg)
{
	static const uint8_t nohash[AUDIT_HASH_LEN];
	struct audit_row r;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r.n = sqlite3_column_int64(st, 0);
		r.ts = sqlite3_column_int64(st, 1);
		r.kind = (const char *)sqlite3_column_text(st, 2);
		r.detail = (const char *)sqlite3_column_text(st, 3);
		/* An edited row may have lost its hash or changed its type: still a row. */
		r.hash = sqlite3_column_bytes(st, 4) == AUDIT_HASH_LEN ?
		    sqlite3_column_blob(st, 4) : nohash;
		if (r.kind == NULL)
			r.kind = "";
		if (r.detail == NULL)
			r.detail = "";
		if (cb(&r, arg) != 0)
			return 0;
	}
	return rc == SQLITE_DONE ? 0 : store_err(s, rc, "read the audit trail");
}

int
store_audit_each(struct store *s, int64_t from, int (*cb)(const struct audit_row *, void *),
    void *arg)
{
	sqlite3_stmt *st;
	int err = 0;

	if ((st = store_stmt(s, ST_AUDIT_EACH, &err)) == NULL)
		return err;
	sqlite3_bind_int64(st, 1, from);
	err = audit_walk(s, st, cb, arg);
	sqlite3_reset(st);
	return err;
}

/* ---- for coldgatectl export ---- */

/*
 * Statements prepared per call, not kept: coldgatectl runs these once.
 * Readings outer, as in ST_READINGS; the zone test is on the joined
 * sensor row, so SQLite sorts only that zone's readings.
 */
int
store_readings_zone(struct store *s, const char *zone, int64_t since_ms, int64_t until_ms,
    int (*cb)(const char *sensor, const char *zone, int quantity, double value,
    int64_t ts_ms, int flags, void *arg), void *arg)
{
	static const char sql[] =
	    "SELECT s.id, s.zone, r.quantity, r.value, r.ts, r.flags "
	    "FROM readings AS r CROSS JOIN sensors AS s ON s.key = r.sensor "
	    "WHERE r.ts >= ?1 AND r.ts < ?2 AND s.zone = ?3 "
	    "ORDER BY r.ts, r.rowid";
	sqlite3_stmt *st = NULL;
	int rc, n;

	if (zone == NULL)
		return store_readings(s, NULL, since_ms, until_ms, cb, arg);
	if ((rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL)) != SQLITE_OK)
		return store_err(s, rc, "prepare");
	sqlite3_bind_int64(st, 1, since_ms);
	sqlite3_bind_int64(st, 2, until_ms);
	sqlite3_bind_text(st, 3, zone, -1, SQLITE_STATIC);
	n = readings_walk(s, st, cb, arg);
	sqlite3_finalize(st);
	return n;
}

int
store_audit_range(struct store *s, int64_t since_ms, int64_t until_ms,
    int (*cb)(const struct audit_row *, void *), void *arg)
{
	static const char sql[] =
	    "SELECT n, ts, kind, detail, hash FROM audit WHERE ts >= ?1 AND ts < ?2 "
	    "ORDER BY ts, n";
	sqlite3_stmt *st = NULL;
	int rc, err;

	if ((rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL)) != SQLITE_OK)
		return store_err(s, rc, "prepare");
	sqlite3_bind_int64(st, 1, since_ms);
	sqlite3_bind_int64(st, 2, until_ms);
	err = audit_walk(s, st, cb, arg);
	sqlite3_finalize(st);
	return err;
}
