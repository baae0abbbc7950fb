/*
 * What one sensor's readings mean, before they go anywhere: the quality of
 * a value (plausible, or a spike not yet confirmed), door edges, counting
 * failed reads into a fault and back, and when to read again after a
 * failure.  Pure: a value, a time and a sensor's track in, a verdict out;
 * no I/O, no clock, no daemon state.  sampling.c applies the verdicts.
 */
#ifndef COLDGATE_READINGS_H
#define COLDGATE_READINGS_H

#include <stdbool.h>
#include <stdint.h>

#include "quantity.h"

/* A clock reading before this (2026-01-01) cannot be right: the RTC-less Pi before NTP. */
#define READINGS_CLOCK_SANE_MS	1767225600000LL
/* Consecutive failed reads before a sensor_fault event. */
#define READINGS_FAULT_AFTER	3
/* Failed reads are retried sooner than the interval, then less and less often, up to this. */
#define READINGS_RETRY_MIN_MS	1000
#define READINGS_RETRY_MAX_MS	30000

/* One sensor's running track.  Zero it, then readings_track_init(). */
struct readings_track {
	int		 fails;			/* consecutive failed reads */
	bool		 faulted;		/* a sensor_fault event is out */
	unsigned	 qmask;			/* quantities it has given */
	unsigned	 has_last, has_suspect;	/* bit per quantity */
	double		 last[Q_COUNT];		/* the spike filter's reference */
	double		 suspect[Q_COUNT];	/* a jump waiting for a second read */
	int		 door;			/* last door state, -1 unknown */
};

/* What a door value did to the door. */
enum readings_door { DOOR_SAME, DOOR_OPENED, DOOR_CLOSED };

void		 readings_track_init(struct readings_track *);

/* Was the wall clock plausibly set when a reading was taken at ts (epoch ms)? */
static inline bool readings_clock_ok(int64_t ts) { return ts >= READINGS_CLOCK_SANE_MS; }

/*
 * The quality of value v of quantity q: QUALITY_RANGE when no sensor could
 * give it, QUALITY_SPIKE when it jumps from the last accepted value by more
 * than the quantity's step and no second read confirms the jump (only with
 * spike_filter), else QUALITY_OK.  Records q as a quantity the sensor gives.
 */
enum quality	 readings_quality(struct readings_track *, bool spike_filter, enum quantity q,
		    double v);

/* A door value (>= 0.5 is open): an edge, or DOOR_SAME (also for the first value). */
enum readings_door readings_door(struct readings_track *, double v);

/*
 * A read failed.  True when this failure makes the sensor faulted (the
 * READINGS_FAULT_AFTER-th in a row): the caller says so once.  The spike
 * filter forgets: after a gap the last value says nothing about the next.
 */
bool		 readings_failed(struct readings_track *);

/* A read worked.  True when the sensor was faulted and has recovered. */
bool		 readings_ok(struct readings_track *);

/*
 * Milliseconds until the next read after t->fails failures in a row, for
 * a sensor read every interval_s whose part needs min_interval_s between
 * reads: sooner than the interval at first, doubling, at most
 * READINGS_RETRY_MAX_MS and at most the interval, never below the minimum.
 */
int64_t		 readings_retry_delay(const struct readings_track *, double interval_s,
		    double min_interval_s);

/* The cadence of a sensor in ms: its interval, but never faster than its part allows. */
int64_t		 readings_period(double interval_s, double min_interval_s);

#endif
