/*
 * The alarm engine (SPEC §6).  Pure: rules, readings and time in,
 * transitions out through a callback; no I/O, no globals, no clock.
 * Times are Unix epoch milliseconds passed by the caller.
 *
 * An alarm instance is one rule applied to one sensor (or to the gateway).
 * Its id is a stable MQTT topic level built from the sensor id and the
 * rule: "<sensor>-<quantity>-high", "-low", "-excursion", "-rate" (each
 * followed by "-<tag>" when the rule has a tag),
 * "<sensor>-stale", "-fault", "-door-open", "gateway-store-full",
 * "gateway-uplink-down".  An id that would be longer than ALARM_ID_MAX, or
 * a sensor id with characters outside [A-Za-z0-9_-], becomes
 * "<first characters>_<8 hex of FNV-1a of the sensor id><suffix>".
 *
 * States: cleared -> active -> acked -> cleared, and cleared -> active
 * again with the same id when the condition returns.  An acked alarm stays
 * acked while its condition holds; active or acked, it clears when the
 * condition is gone.
 *
 * Restart and reload: alarm_export() gives each instance's durable state,
 * alarm_import() puts it into a fresh engine without a transition.  See
 * struct alarm_record for what survives.
 */
#ifndef COLDGATE_ALARM_H
#define COLDGATE_ALARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quantity.h"

#define ALARM_ID_MAX		64	/* an MQTT topic level, [A-Za-z0-9_-]{1,64} */
#define ALARM_BY_MAX		64	/* bytes of the acknowledger's name kept */
#define ALARM_SPANS_MAX		32	/* excursion intervals kept per instance */
#define ALARM_FAULT_COUNT	3	/* default failed reads in a row */
#define ALARM_STORE_FRACTION	0.9	/* default store usage that raises store-full */

/* Zone arguments of the output queries besides a zone index. */
#define ALARM_GATEWAY		(-1)	/* the gateway's own alarms */
#define ALARM_ANY_ZONE		(-2)	/* every alarm */

enum alarm_kind {
	ALARM_HIGH,		/* value above high for delay s */
	ALARM_LOW,		/* value below low for delay s */
	ALARM_EXCURSION,	/* time above high / below low within window s reaches budget s */
	ALARM_RATE,		/* |change| per minute over span s at or above rate, for delay s */
	ALARM_STALE,		/* no good read for stale_after s */
	ALARM_FAULT,		/* fault_count failed reads in a row */
	ALARM_DOOR_OPEN,	/* door open for door_open_max s */
	ALARM_STORE_FULL,	/* store usage above store_fraction for delay s */
	ALARM_UPLINK_DOWN,	/* uplink down for uplink_down_max s */
	ALARM_STORE_ERROR,	/* the store takes no writes (full disk, read-only) */
	ALARM_KIND_COUNT
};

enum alarm_severity { ALARM_WARNING, ALARM_CRITICAL };

enum alarm_state { ALARM_CLEARED, ALARM_ACTIVE, ALARM_ACKED };

/*
 * One rule: plain values, no pointers (the engine keeps a copy).  Scope:
 * sensor >= 0 is a sensor rule for that sensor; otherwise zone >= 0 is a
 * zone rule for every sensor of the zone (instances appear with the first
 * reading of the quantity, or at once for STALE).  STORE_FULL and
 * UPLINK_DOWN are the gateway's and ignore both.  A sensor rule overrides
 * a zone rule that would make the same id for that sensor; two rules of
 * one scope that make the same id are refused.  Durations are seconds.
 */
struct alarm_rule {
	enum alarm_kind	 kind;
	enum alarm_severity severity;
	int		 zone;		/* zone index, or -1 */
	int		 sensor;	/* sensor index, or -1 */
	enum quantity	 quantity;	/* HIGH, LOW, EXCURSION, RATE; DOOR_OPEN is Q_DOOR */

	bool		 has_high, has_low;	/* HIGH needs high, LOW low, EXCURSION either */
	double		 high, low;
	double		 hysteresis;	/* HIGH, LOW, STORE_FULL: clear only this far inside */
	int		 delay;		/* HIGH, LOW, RATE, STORE_FULL: s beyond before firing */
	int		 window;	/* EXCURSION: rolling window */
	int		 budget;	/* EXCURSION: total time beyond allowed in the window */
	double		 rate;		/* RATE: quantity units per minute */
	int		 span;		/* RATE: s the change is measured over */
	int		 stale_after;	/* STALE */
	int		 fault_count;	/* FAULT; 0 means ALARM_FAULT_COUNT */
	int		 door_open_max;	/* DOOR_OPEN */
	double		 store_fraction; /* STORE_FULL, 0..1; 0 means ALARM_STORE_FRACTION */
	int		 uplink_down_max; /* UPLINK_DOWN */
	/*
	 * HIGH, LOW, EXCURSION, RATE: appended to the id as "-<tag>" when not
	 * empty, so tiers of one limit (a warning above 4 C, a critical one
	 * above 8 C) are alarms of their own.  [a-z]{0,15}.
	 */
	char		 tag[16];
};

/* A sensor as the engine knows it: the id is copied. */
struct alarm_sensor {
	const char	*id;
	int		 zone;		/* zone index */
};

/*
 * A change of state, given to the callback.  The pointers are valid only
 * during the call.  value and limit by kind: HIGH, LOW, STORE_FULL: the
 * reading (usage fraction) and the limit; RATE: the signed change per
 * minute and the rate; EXCURSION: seconds beyond in the window and the
 * budget; STALE, DOOR_OPEN, UPLINK_DOWN: seconds since `since` and the
 * allowed seconds; FAULT: failed reads in a row and fault_count.  since
 * is when the condition began: the first reading beyond the limit, the
 * last good read, the door opening, the first failure in the run; for
 * EXCURSION, when the total reached the budget.
 */
struct alarm_transition {
	const char	*id;
	enum alarm_kind	 kind;
	enum alarm_severity severity;
	int		 zone;		/* zone index, -1 for the gateway */
	int		 sensor;	/* sensor index, -1 for the gateway */
	enum quantity	 quantity;	/* Q_COUNT for STALE, FAULT and the gateway */
	enum alarm_state state, old;
	double		 value, limit;
	int64_t		 since;		/* ms the condition began; kept until it fires again */
	int64_t		 t;		/* ms of this change */
	const char	*acked_by;	/* NULL unless acked in this episode */
	int64_t		 acked_at;	/* 0 unless acked */
};

/* An interval of an excursion, [from, to) in ms. */
struct alarm_span {
	int64_t		 from, to;
};

/*
 * The durable state of one instance.  What survives a restart: the state,
 * since, the acknowledgement, a delay timer that was running (pending), and
 * the excursion intervals of the window.  What starts afresh: the stale
 * timer (from the new engine's start), the count of failed reads and the
 * rate history.  Time the daemon was down adds nothing to an excursion
 * total; a running delay timer counts it once an input shows the condition
 * still holds.  kind, severity, zone, sensor and limit are for the
 * caller's listing; alarm_import() goes by id and the new engine's rules.
 * To keep it, encode it with alarm_record_encode(): the struct's own layout
 * differs between builds and machines.
 */
struct alarm_record {
	char		 id[ALARM_ID_MAX + 1];
	enum alarm_kind	 kind;
	enum alarm_severity severity;
	int		 zone, sensor;
	enum alarm_state state;
	double		 value, limit;
	int64_t		 since;		/* as in the transition; 0 if it never fired */
	int64_t		 changed;	/* ms of the last transition; 0 if none */
	char		 acked_by[ALARM_BY_MAX + 1];	/* "" unless acked */
	int64_t		 acked_at;
	int64_t		 pending;	/* ms a not yet fired condition began, or -1 */
	size_t		 nspans;	/* EXCURSION */
	struct alarm_span spans[ALARM_SPANS_MAX];
};

/*
 * The record as the store keeps it, the same bytes on every machine; the
 * format is written down in alarmrec.c.  The version changes, with a store
 * migration, whenever the layout does.
 */
#define ALARM_RECORD_VERSION	2
#define ALARM_RECORD_MAX	(66 + 16 * ALARM_SPANS_MAX + ALARM_ID_MAX + ALARM_BY_MAX)

/* rec into buf; returns its length.  rec is one the engine gave (asserted). */
size_t	 alarm_record_encode(const struct alarm_record *rec, uint8_t buf[ALARM_RECORD_MAX]);
/*
 * len bytes at buf into *out.  id, unless NULL, is the alarm the record must
 * be of (its row's id).  0; or -EPROTONOSUPPORT (another version) or
 * -EBADMSG (cut short, too long, out of range, another alarm's), with *why
 * (if why is not NULL) saying which in words that follow "record ", and
 * *out untouched.
 */
int	 alarm_record_decode(const char *id, const void *buf, size_t len, struct alarm_record *out,
	     const char **why);

struct alarm_engine;

/*
 * Build an engine in *out (free with alarm_free).  rules and sensors are
 * copied.  now_ms starts the stale timers.  cb (may be NULL) gets every
 * transition, synchronously, and must not call into the engine.
 * 0, -EINVAL (a rule out of range; *out is NULL), -EEXIST (two rules of
 * one scope make the same id), or -ENOMEM.
 */
int	 alarm_new(struct alarm_engine **out, const struct alarm_rule *rules, size_t nrules,
	    const struct alarm_sensor *sensors, size_t nsensors, int64_t now_ms,
	    void (*cb)(const struct alarm_transition *, void *arg), void *arg);
void	 alarm_free(struct alarm_engine *);	/* accepts NULL */

/*
 * A good reading of sensor s: evaluates its rules for that quantity and
 * counts as a good read (stale, fault).  0, -EINVAL (s or q out of range,
 * value not finite), or -ENOMEM when a new instance could not be made (the
 * rest is still evaluated).
 */
int	 alarm_reading(struct alarm_engine *, size_t s, enum quantity, double value, int64_t t_ms);

/*
 * The outcome of a read of sensor s: err < 0 a refused read (-EBADMSG,
 * -ETIMEDOUT, ...), 0 a good read that gave no reading.  0, -EINVAL, -ENOMEM.
 */
int	 alarm_fault(struct alarm_engine *, size_t s, int err, int64_t t_ms);

/* Gateway health: store usage as a fraction of the cap; the uplink. */
void	 alarm_store_usage(struct alarm_engine *, double fraction, int64_t t_ms);
void	 alarm_uplink(struct alarm_engine *, bool up, int64_t t_ms);
/* Commits of the store fail (failing), with queued messages waiting in memory. */
void	 alarm_store_error(struct alarm_engine *, bool failing, double queued, int64_t t_ms);

/*
 * Time-based conditions without a new input: delays running out, stale
 * sensors, doors, the uplink, excursion totals growing or leaving the
 * window.  Call it about once a second.
 */
void	 alarm_tick(struct alarm_engine *, int64_t t_ms);

/* The wall clock was stepped by step_ms: shift every stored time with it. */
void	 alarm_clock_step(struct alarm_engine *, int64_t step_ms);

/*
 * Acknowledge alarm id as `by` (copied, cut to ALARM_BY_MAX bytes on a
 * UTF-8 boundary; NULL is "").  Gives an active -> acked transition.
 * 0, -ENOENT (no such alarm), -EALREADY (already acked), -ESRCH (cleared:
 * nothing to acknowledge).
 */
int	 alarm_ack(struct alarm_engine *, const char *id, const char *by, int64_t t_ms);

/*
 * Local outputs.  zone is a zone index, ALARM_GATEWAY or ALARM_ANY_ZONE.
 * unacked: an active, unacknowledged alarm of at least that severity (the
 * buzzer); raised: an active or acked alarm of at least that severity (the
 * lamp).
 */
bool	 alarm_zone_unacked(const struct alarm_engine *, int zone, enum alarm_severity min);
bool	 alarm_zone_raised(const struct alarm_engine *, int zone, enum alarm_severity min);

/*
 * Export instance i (0, 1, ... in creation order) into *out; an open
 * excursion is closed at now_ms.  0, or -ENOENT past the last one.
 */
int	 alarm_export(const struct alarm_engine *, size_t i, int64_t now_ms, struct alarm_record *out);
/* The same for alarm id (to persist it after a transition): 0 or -ENOENT. */
int	 alarm_get(const struct alarm_engine *, const char *id, int64_t now_ms, struct alarm_record *out);

/*
 * Restore a record before the first input (start-up, reload).  No
 * transition: an active alarm whose condition still holds stays as it is,
 * one whose condition is gone clears with the next input that shows it.  A
 * pending delay timer carries on from rec->pending once an input shows the
 * condition again.  0, -ENOENT (no rule here makes that id: the caller
 * retires it), -EINVAL (a bad state or span), -ENOMEM.
 */
int	 alarm_import(struct alarm_engine *, const struct alarm_record *rec);

/* "high", "door_open", ...; "active", "acked", "cleared"; "warning", "critical". */
const char	*alarm_kind_name(enum alarm_kind);
const char	*alarm_state_name(enum alarm_state);
const char	*alarm_severity_name(enum alarm_severity);

#endif
