/*
 * The verdicts on one sensor's readings (see readings.h).  Owns the spike
 * filter, door edges, fault counting and the retry back-off; must not
 * touch the store, the outbox, the clock or any file: sampling.c does.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "readings.h"

void
readings_track_init(struct readings_track *t)
{
	memset(t, 0, sizeof(*t));
	t->door = -1;
}

/*
 * The spike filter: a value more than the quantity's step away from the
 * last accepted one is held as a suspect and refused; a second read close
 * to the suspect confirms the jump and is accepted.  So a real step change
 * costs one read, and a single garbled value never reaches an alarm.
 */
static bool
is_spike(struct readings_track *t, bool spike_filter, enum quantity q, double v)
{
	double step = quantity_spike_step(q);
	unsigned bit = 1u << q;

	if (!spike_filter || step <= 0)
		return false;
	if ((t->has_last & bit) && fabs(v - t->last[q]) > step &&
	    !((t->has_suspect & bit) && fabs(v - t->suspect[q]) <= step)) {
		t->suspect[q] = v;
		t->has_suspect |= bit;
		return true;
	}
	t->last[q] = v;
	t->has_last |= bit;
	t->has_suspect &= ~bit;
	return false;
}

enum quality
readings_quality(struct readings_track *t, bool spike_filter, enum quantity q, double v)
{
	assert((unsigned)q < Q_COUNT);
	t->qmask |= 1u << q;
	if (!quantity_plausible(q, v))
		return QUALITY_RANGE;
	if (is_spike(t, spike_filter, q, v))
		return QUALITY_SPIKE;
	return QUALITY_OK;
}

enum readings_door
readings_door(struct readings_track *t, double v)
{
	int open = v >= 0.5, was = t->door;

	t->door = open;
	if (was < 0 || open == was)
		return DOOR_SAME;
	return open ? DOOR_OPENED : DOOR_CLOSED;
}

bool
readings_failed(struct readings_track *t)
{
	t->has_last = t->has_suspect = 0;
	if (++t->fails != READINGS_FAULT_AFTER)
		return false;
	t->faulted = true;
	return true;
}

bool
readings_ok(struct readings_track *t)
{
	bool was = t->faulted;

	t->fails = 0;
	t->faulted = false;
	return was;
}

int64_t
readings_period(double interval_s, double min_interval_s)
{
	int64_t period = (int64_t)(interval_s * 1000.0);

	/* Some parts must not be read faster than they can measure (DHT: 2 s). */
	if (period < (int64_t)(min_interval_s * 1000.0))
		period = (int64_t)(min_interval_s * 1000.0);
	return period < 1 ? 1 : period;
}

int64_t
readings_retry_delay(const struct readings_track *t, double interval_s, double min_interval_s)
{
	int64_t period = (int64_t)(interval_s * 1000.0), min = READINGS_RETRY_MIN_MS, delay;

	assert(t->fails >= 1);
	if (min_interval_s > 0 && (int64_t)(min_interval_s * 1000.0) > min)
		min = (int64_t)(min_interval_s * 1000.0);
	delay = min << (t->fails > 6 ? 5 : t->fails - 1);
	if (delay > READINGS_RETRY_MAX_MS)
		delay = READINGS_RETRY_MAX_MS;
	if (delay > period && period >= min)
		delay = period;
	return delay < min ? min : delay;
}
