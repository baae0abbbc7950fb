/*
 * The wire format: every MQTT payload of SPEC §4 and every row of the audit
 * trail is built here, from plain values, into a struct jbuf; the ones that
 * come back (cmd/ack, cmd/result, audit rows) are parsed here.  So a key is
 * spelled once, for the side that writes it and the side that reads it.
 *
 * Builders reset b and leave the whole payload in it (jb_text() gives it,
 * NULL if memory ran out), except where a begin/end pair says otherwise.
 * Strings are borrowed for the call; NULL only where a field says so.
 * Numbers print as json.c prints them: up to three decimals, NaN as null.
 */
#ifndef COLDGATE_PAYLOAD_H
#define COLDGATE_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alarm.h"
#include "config.h"
#include "json.h"
#include "quantity.h"

/* ---- {B}/{G}/status (retained; offline is also the Last Will) ---- */

struct payload_status {
	bool			 online;
	const char		*version;
	int64_t			 ts;
	/* Online only: */
	const char		*site;		/* NULL: not configured */
	const struct zone_cfg	*zones;
	size_t			 nzones;
	const char		*store_error;	/* NULL: the store takes writes */
};

void	 payload_status(struct jbuf *, const struct payload_status *);

/* ---- {B}/{G}/telemetry: one window, begin, a reading per cell, end ---- */

struct payload_window {
	const char	*gw;
	int64_t		 seq;
	int64_t		 start, end;	/* epoch ms, [start, end) */
};

struct payload_reading {
	const char	*sensor, *zone;
	enum quantity	 quantity;
	int64_t		 n;
	double		 min, max, mean, last;
	bool		 clock_ok;	/* false: some reading was taken on an unsynchronised clock */
};

void	 payload_telemetry_begin(struct jbuf *, const struct payload_window *);
void	 payload_telemetry_reading(struct jbuf *, const struct payload_reading *);
void	 payload_telemetry_end(struct jbuf *);

/* ---- {B}/{G}/event ---- */

enum payload_event_type {
	PAYLOAD_DOOR_OPEN,		/* sensor */
	PAYLOAD_DOOR_CLOSE,		/* sensor */
	PAYLOAD_SENSOR_FAULT,		/* sensor, with error */
	PAYLOAD_SENSOR_RECOVERED,	/* sensor */
	PAYLOAD_CLOCK_SYNC,		/* step_ms */
	PAYLOAD_BUFFER_OVERFLOW,	/* overflow */
	PAYLOAD_STORE_ERROR,		/* store */
	PAYLOAD_SUMMARY,		/* summary: see payload_summary_item() */
	PAYLOAD_EVENT_COUNT
};

/* A zone's summary period, as in the summary event and its audit row. */
struct payload_summary {
	const char	*zone, *zone_name;
	int64_t		 start, end;	/* epoch ms, [start, end) */
};

struct payload_summary_item {
	enum quantity	 quantity;
	int64_t		 n;
	double		 min, max, mean;
	double		 mkt;		/* written for temperature only */
	double		 covered_s, out_of_range_s;
};

struct payload_event {
	const char		*gw;
	int64_t			 seq;
	enum payload_event_type	 type;
	int64_t			 ts;		/* when it happened, epoch ms */
	union {
		struct {
			const char	*sensor, *zone;
			const char	*error;		/* sensor_fault only */
		} sensor;
		int64_t		 step_ms;		/* clock_sync */
		struct {
			int64_t		 readings, delivered, undelivered;
			int64_t		 max_size_mb;
		} overflow;
		struct {
			const char	*error;
			int64_t		 queued;
		} store;
		struct payload_summary summary;
	};
};

/*
 * The whole event, except a summary: that one is left open for its
 * quantities, one payload_summary_item() each, then payload_summary_end().
 */
void	 payload_event(struct jbuf *, const struct payload_event *);
void	 payload_summary_item(struct jbuf *, const struct payload_summary_item *);
void	 payload_summary_end(struct jbuf *);
const char *payload_event_name(enum payload_event_type);

/* ---- {B}/{G}/alarm/{ID} (retained) ---- */

struct payload_alarm {
	const char		*gw;
	int64_t			 seq;
	const char		*id;
	const char		*zone;		/* NULL: "gateway" */
	const char		*sensor;	/* NULL: "gateway" (a zone's or the gateway's alarm) */
	enum alarm_kind		 rule;
	enum alarm_severity	 severity;
	enum alarm_state	 state;
	double			 value, limit;
	int64_t			 since, ts;
	const char		*by;		/* who acknowledged; NULL or "": left out */
	bool			 retired;	/* no rule makes it any more */
};

void	 payload_alarm(struct jbuf *, const struct payload_alarm *);

/* ---- {B}/{G}/cmd/ack and the control socket's ack, and their answer ---- */

#define PAYLOAD_CMD_MAX		1024		/* bytes of a command's JSON */
#define PAYLOAD_NAME_MAX	64		/* bytes of UTF-8 in "by" */

struct payload_ack {
	char		 alarm[ALARM_ID_MAX + 1];	/* [A-Za-z0-9_-]{1,64} */
	char		 by[PAYLOAD_NAME_MAX + 1];	/* "" when not given */
};

void	 payload_ack(struct jbuf *, const char *alarm, const char *by);
/*
 * An ack's JSON of len bytes (not NUL-terminated).  0 and *out filled, or
 * -EINVAL with a short reason in why: larger than PAYLOAD_CMD_MAX, not a
 * JSON object of UTF-8, a field we do not know or of the wrong type, an
 * alarm id that cannot exist, a name too long or not printable.
 */
int	 payload_ack_parse(const void *text, size_t len, struct payload_ack *out, char *why,
	     size_t whylen);

/* {B}/{G}/cmd/result, also the control socket's answer. */
struct payload_cmd_result {
	const char	*gw;
	const char	*cmd;		/* the command's name as asked */
	const char	*alarm;		/* NULL: the command did not parse */
	bool		 ok;
	const char	*error;		/* when !ok: why */
	int64_t		 ts;
};

void	 payload_cmd_result(struct jbuf *, const struct payload_cmd_result *);
/*
 * An answer the daemon gave (coldgatectl): *ok, and the error text into
 * err when it failed.  0, or -EINVAL when it is not an answer.
 */
int	 payload_cmd_result_parse(const char *text, size_t len, bool *ok, char *err,
	     size_t errlen);

/* ---- the audit trail's rows: a kind and a JSON object (payload.c says each) ---- */

enum payload_audit_kind {
	PAYLOAD_AUDIT_START,		/* config */
	PAYLOAD_AUDIT_RELOAD,		/* config */
	PAYLOAD_AUDIT_STOP,		/* nothing */
	PAYLOAD_AUDIT_CLOCK_SYNC,	/* step_ms */
	PAYLOAD_AUDIT_DROPPED,		/* dropped */
	PAYLOAD_AUDIT_ALARM,		/* alarm */
	PAYLOAD_AUDIT_ACK,		/* ack */
	PAYLOAD_AUDIT_SUMMARY,		/* summary */
	PAYLOAD_AUDIT_OTHER		/* a kind this build does not know */
};

/* The longest row detail that parses: a configuration path is at most PATH_MAX. */
#define PAYLOAD_AUDIT_MAX	8192

struct payload_audit_config {
	const char	*version;
	const char	*config;	/* the file's path */
	const char	*sha256;	/* of the file, hex; NULL: it could not be read */
};

struct payload_audit_alarm {
	const char		*id;
	enum alarm_state	 state;
	double			 value, limit;	/* NaN: null */
	const char		*by;		/* NULL or "": left out */
};

struct payload_audit_ack {
	const char	*id, *by;
	const char	*via;		/* "mqtt" or "local" */
};

struct payload_audit_dropped {
	int64_t		 readings, delivered, undelivered;
};

struct payload_audit {
	enum payload_audit_kind kind;
	union {
		struct payload_audit_config config;
		int64_t		 step_ms;
		struct payload_audit_dropped dropped;
		struct payload_audit_alarm alarm;
		struct payload_audit_ack ack;
		struct {
			struct payload_summary		 zone;
			struct payload_summary_item	 item;
		} summary;
	};
	char	 text[PAYLOAD_AUDIT_MAX + 1];	/* parsed strings point here */
};

const char *payload_audit_kind_name(enum payload_audit_kind);
enum payload_audit_kind payload_audit_kind_of(const char *name);

/* Each writes the row's detail into b; the kind goes beside it. */
void	 payload_audit_config(struct jbuf *, const struct payload_audit_config *);
void	 payload_audit_stop(struct jbuf *);
void	 payload_audit_clock_sync(struct jbuf *, int64_t step_ms);
void	 payload_audit_dropped(struct jbuf *, const struct payload_audit_dropped *);
void	 payload_audit_alarm(struct jbuf *, const struct payload_audit_alarm *);
void	 payload_audit_ack(struct jbuf *, const struct payload_audit_ack *);
void	 payload_audit_summary(struct jbuf *, const struct payload_summary *,
	     const struct payload_summary_item *);

/*
 * A row read back: 0 and *out filled (its strings point into out->text),
 * or -EINVAL with the reason in why: the detail is not a JSON object of
 * UTF-8, longer than PAYLOAD_AUDIT_MAX, or lacks a field its kind has or
 * has one of the wrong type.  A kind this build does not know parses as
 * PAYLOAD_AUDIT_OTHER when its detail is a JSON object.
 */
int	 payload_audit_parse(const char *kind, const char *detail, struct payload_audit *out,
	     char *why, size_t whylen);

#endif
