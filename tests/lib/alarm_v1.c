#include "lib/alarm_v1.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

static void
blob_from(struct alarm_blob_v1 *b, const struct alarm_record *r)
{
	memset(b, 0, sizeof(*b));
	b->version = 1;
	memcpy(b->rec.id, r->id, sizeof(b->rec.id));
	b->rec.kind = r->kind;
	b->rec.severity = r->severity;
	b->rec.zone = r->zone;
	b->rec.sensor = r->sensor;
	b->rec.state = r->state;
	b->rec.value = r->value;
	b->rec.limit = r->limit;
	b->rec.since = r->since;
	b->rec.changed = r->changed;
	memcpy(b->rec.acked_by, r->acked_by, sizeof(b->rec.acked_by));
	b->rec.acked_at = r->acked_at;
	b->rec.pending = r->pending;
	b->rec.nspans = r->nspans;
	memcpy(b->rec.spans, r->spans, sizeof(b->rec.spans));
}

/* SQL to_v1(id, data): a current record as the raw struct; an error if it cannot be read. */
static void
to_v1(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *id = (const char *)sqlite3_value_text(argv[0]), *why = "";
	struct alarm_record rec;
	struct alarm_blob_v1 b;
	char msg[200];

	(void)argc;
	if (alarm_record_decode(id, sqlite3_value_blob(argv[1]),
	    (size_t)sqlite3_value_bytes(argv[1]), &rec, &why) < 0) {
		snprintf(msg, sizeof(msg), "alarm %s: record %s", id ? id : "(null)", why);
		sqlite3_result_error(ctx, msg, -1);
		return;
	}
	blob_from(&b, &rec);
	sqlite3_result_blob(ctx, &b, sizeof(b), SQLITE_TRANSIENT);
}

int
alarm_v1_downgrade_store(const char *path)
{
	sqlite3 *db;
	char *err = NULL;
	int rc = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_create_function(db, "to_v1", 2, SQLITE_UTF8, NULL, to_v1, NULL,
	    NULL) == SQLITE_OK &&
	    sqlite3_exec(db, "BEGIN; UPDATE alarms SET data = to_v1(id, data);"
	    "PRAGMA user_version = 2; COMMIT", NULL, NULL, &err) == SQLITE_OK)
		rc = 0;
	else
		fprintf(stderr, "alarm_v1_downgrade_store: %s: %s\n", path,
		    err ? err : sqlite3_errmsg(db));
	sqlite3_free(err);
	sqlite3_close(db);
	return rc;
}
