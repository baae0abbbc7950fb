/*
 * The SQLite store: raw readings, the outbox of MQTT messages, and the seq
 * counter (SPEC §5).  Only this module includes sqlite3.h.
 *
 * Readings are written into an open transaction that store_commit() closes
 * (the daemon calls it every storage.commit_interval_ms).  store_outbox_push()
 * commits at once, readings included, because a message must be durable
 * before it is handed to the broker.
 */
#ifndef COLDGATE_STORE_H
#define COLDGATE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION 3

enum msg_kind { MSG_TELEMETRY = 0, MSG_ALARM = 1, MSG_EVENT = 2 };

/* Flags stored with a reading. */
#define READING_CLOCK_BAD	0x01	/* taken before the clock was synchronised */
/*
 * Bits 8..15 of flags: the reading's enum quality (0 = ok).  A refused
 * value (range, spike) is stored as read; a read that gave no value (crc,
 * timeout, gone, error) is stored as 0 for each quantity the sensor gives.
 */
#define READING_QUALITY_SHIFT	8
#define READING_QUALITY(flags)	(((flags) >> READING_QUALITY_SHIFT) & 0xff)

struct store_opts {
	const char	*path;
	bool		 sync_full;	/* synchronous=FULL, else NORMAL */
	int		 max_size_mb;
	int		 retain_days;
};

struct outbox_msg {
	int64_t		 seq;
	enum msg_kind	 kind;
	const char	*topic;		/* valid only during the callback */
	const void	*payload;
	size_t		 len;
	int		 qos;
	bool		 retain;
	int64_t		 created_ms;
};

struct store_stats {
	int64_t		 last_seq;	/* 0 before the first message */
	int64_t		 pending;	/* undelivered outbox messages */
	int64_t		 oldest_pending_ms; /* created time of the oldest undelivered, 0 if none */
	int64_t		 readings;	/* raw readings kept */
	int64_t		 used_bytes;	/* pages in use (not free) x page size */
	int64_t		 file_bytes;	/* database file plus WAL on disk */
};

/* Counts of rows a prune pass dropped to keep the size cap. */
struct store_drops {
	int64_t		 readings;
	int64_t		 delivered;
	int64_t		 undelivered;
};

/* Whether the store takes writes (store_health). */
struct store_health {
	int		 err;		/* the last commit's negative errno; 0: it worked */
	size_t		 queued;	/* messages kept in memory for the store */
	size_t		 queued_bytes;
	int64_t		 dropped;	/* dropped from that queue since the last call */
};

struct store;

/*
 * Open (creating if absent) the store at o->path and migrate it to the
 * current schema.  An unreadable, corrupt or newer-schema file is never
 * modified: returns a negative errno and logs an error naming the path.
 * read_only opens an existing store for coldgatectl.
 */
int	 store_open(struct store **out, const struct store_opts *o, bool read_only);
void	 store_close(struct store *);	/* commits pending readings; accepts NULL */

/* Stable small integer for a sensor id (created on first use). */
int	 store_sensor_key(struct store *, const char *sensor, const char *zone);

int	 store_add_reading(struct store *, int sensor_key, int quantity, double value,
	     int64_t ts_ms, int flags);
/* Commit the open transaction, if any. */
int	 store_commit(struct store *);
bool	 store_in_transaction(const struct store *);

/* The seq the next pushed message will get. */
int64_t	 store_next_seq(const struct store *);
/*
 * Append a message whose payload already carries seq == store_next_seq(),
 * and commit it durably (synchronous=FULL even with sync = "normal").
 * When the commit fails (a full disk, a read-only file) the message is
 * kept in a bounded memory queue with its seq and stored, in seq order, by
 * the next commit that works; nothing is handed to the broker before it is
 * stored.  Returns the seq (> 0), stored or kept, or a negative errno
 * (read-only store, out of memory: the message is lost and its seq shows
 * as a gap).
 */
int64_t	 store_outbox_push(struct store *, enum msg_kind, const char *topic,
	     const void *payload, size_t len, int qos, bool retain, int64_t now_ms);
/*
 * Call cb for up to limit undelivered messages with seq > after, in seq
 * order.  cb returns 0 to go on, non-zero to stop.  Returns the number of
 * messages visited or a negative errno.
 */
int	 store_outbox_fetch(struct store *, int64_t after, int limit,
	     int (*cb)(const struct outbox_msg *, void *), void *arg);
/* Mark delivered (on PUBACK); joins the open transaction. */
int	 store_outbox_delivered(struct store *, int64_t seq, int64_t now_ms);

/*
 * One small batch of retention work: readings older than retain_days,
 * delivered messages older than retain_days, and, while the used size is
 * above max_size_mb, the SPEC §5 drop order (oldest readings, then oldest
 * delivered, then oldest undelivered telemetry; alarms never).  Adds what it
 * dropped for the cap to *drops.  Returns rows deleted (0 when nothing is
 * left to do) or a negative errno.
 */
int	 store_prune(struct store *, int64_t now_ms, struct store_drops *drops);

/* How the store's writes go; takes the dropped count (the next call says 0). */
void	 store_health(struct store *, struct store_health *);

int	 store_stats(struct store *, struct store_stats *);

/*
 * Small named values the daemon leaves for coldgatectl (e.g. "mqtt" =
 * "connected"), kept in the meta table; set joins the open transaction.
 * get copies into buf and returns 0, or -ENOENT.
 */
int	 store_set_state(struct store *, const char *key, const char *value);
int	 store_get_state(struct store *, const char *key, char *buf, size_t len);

/*
 * Readings for coldgatectl, in time order.  sensor may be NULL for all.
 * cb gets sensor id, zone, quantity, value, ts_ms, flags.
 */
int	 store_readings(struct store *, const char *sensor, int64_t since_ms, int64_t until_ms,
	     int (*cb)(const char *sensor, const char *zone, int quantity, double value,
	     int64_t ts_ms, int flags, void *arg), void *arg);

/*
 * Alarm instances, persisted so a restart neither forgets an active alarm
 * nor raises it twice.  data is the instance's record as
 * alarm_record_encode() gives it (opaque here but to the schema 2 -> 3
 * migration).  Strings and data are valid only during the callback.
 */
struct store_alarm {
	const char	*id;
	const char	*state;		/* "active", "acked", "cleared" */
	int64_t		 updated_ms;
	const void	*data;
	size_t		 len;
};

/* Insert or replace by id; joins the open transaction. */
int	 store_alarm_put(struct store *, const struct store_alarm *);
/* Every stored alarm, by id.  cb returns non-zero to stop. */
int	 store_alarm_each(struct store *, int (*cb)(const struct store_alarm *, void *), void *);

struct audit_row;

/*
 * Append a row to the audit trail (hash chained to the row before; see
 * audit.h) and commit it with everything pending.  Returns the row number
 * or a negative errno.
 */
int64_t	 store_audit_append(struct store *, int64_t ts_ms, const char *kind, const char *detail);
/* Rows from number `from` on, in order.  cb returns non-zero to stop. */
int	 store_audit_each(struct store *, int64_t from,
	     int (*cb)(const struct audit_row *, void *), void *);

/*
 * For coldgatectl export.  store_readings_zone: as store_readings, for the
 * sensors the store has in zone (an id; NULL for all), in time order;
 * returns the number of readings or a negative errno.  store_audit_range:
 * the audit rows with since_ms <= ts < until_ms, by ts then row number.
 */
int	 store_readings_zone(struct store *, const char *zone, int64_t since_ms,
	     int64_t until_ms, int (*cb)(const char *sensor, const char *zone, int quantity,
	     double value, int64_t ts_ms, int flags, void *arg), void *arg);
int	 store_audit_range(struct store *, int64_t since_ms, int64_t until_ms,
	     int (*cb)(const struct audit_row *, void *), void *);

#endif
