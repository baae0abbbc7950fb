/*
 * The SQLite ceiling for scripts/bench-pipeline: the fastest a plain loop
 * can store readings with the same table and the same durability as
 * coldgate's store (WAL, synchronous=FULL, one transaction per 1000 rows, a
 * prepared statement).  It also turns secure_delete off as the store does
 * (Debian builds it on): a ceiling must not lose to the thing it bounds
 * over a setting that has nothing to do with the code being measured.
 * Whatever the daemon does on top of this is the cost being measured.
 *
 * usage: sqlite_ceiling DBFILE [ROWS] [BATCH] [full|normal]
 * prints: sqlite_ceiling rows=N batch=B sync=full seconds=S rows_per_s=R
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
check(sqlite3 *db, int rc, const char *what)
{
	if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
		fprintf(stderr, "sqlite_ceiling: %s: %s\n", what, sqlite3_errmsg(db));
		exit(1);
	}
}

static void
exec(sqlite3 *db, const char *sql)
{
	check(db, sqlite3_exec(db, sql, NULL, NULL, NULL), sql);
}

int
main(int argc, char *argv[])
{
	const char *path;
	long rows = 200000, batch = 1000;
	const char *sync = "full";
	char sql[128];
	sqlite3 *db;
	sqlite3_stmt *st;
	double t0, t1;

	if (argc < 2) {
		fprintf(stderr, "usage: sqlite_ceiling DBFILE [ROWS] [BATCH] [full|normal]\n");
		return 2;
	}
	path = argv[1];
	if (argc > 2)
		rows = atol(argv[2]);
	if (argc > 3)
		batch = atol(argv[3]);
	if (argc > 4)
		sync = argv[4];
	if (rows <= 0 || batch <= 0) {
		fprintf(stderr, "sqlite_ceiling: ROWS and BATCH must be positive\n");
		return 2;
	}
	unlink(path);
	check(NULL, sqlite3_open(path, &db), "open");
	exec(db, "PRAGMA journal_mode = WAL");
	snprintf(sql, sizeof(sql), "PRAGMA synchronous = %s", sync);
	exec(db, sql);
	exec(db, "PRAGMA secure_delete = OFF");
	exec(db, "CREATE TABLE readings (ts INTEGER NOT NULL, sensor INTEGER NOT NULL, "
	    "quantity INTEGER NOT NULL, value REAL NOT NULL, flags INTEGER NOT NULL DEFAULT 0)");
	check(db, sqlite3_prepare_v2(db, "INSERT INTO readings(ts, sensor, quantity, value, flags) "
	    "VALUES (?1, ?2, ?3, ?4, ?5)", -1, &st, NULL), "prepare");

	t0 = now_s();
	for (long i = 0; i < rows; i++) {
		if (i % batch == 0)
			exec(db, "BEGIN");
		sqlite3_bind_int64(st, 1, 1764400000000LL + i * 100);
		sqlite3_bind_int(st, 2, (int)(i % 8) + 1);
		sqlite3_bind_int(st, 3, (int)(i % 4));
		sqlite3_bind_double(st, 4, 18.0 + (double)(i % 100) / 10);
		sqlite3_bind_int(st, 5, 0);
		check(db, sqlite3_step(st), "insert");
		sqlite3_reset(st);
		if (i % batch == batch - 1 || i == rows - 1)
			exec(db, "COMMIT");
	}
	t1 = now_s();
	sqlite3_finalize(st);
	sqlite3_close(db);
	printf("sqlite_ceiling rows=%ld batch=%ld sync=%s seconds=%.3f rows_per_s=%.0f\n",
	    rows, batch, sync, t1 - t0, rows / (t1 - t0));
	return 0;
}
