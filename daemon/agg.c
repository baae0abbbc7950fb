/*
 * The telemetry window's arithmetic (see agg.h).  Owns the cells of one
 * window; must not touch the clock, the store or the outbox: the caller
 * passes time in and publishes what comes out (uplink.c).
 */
#include "agg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int64_t
agg_window_start(int64_t t_ms, int64_t interval_ms)
{
	int64_t r = t_ms % interval_ms;

	return t_ms - (r < 0 ? r + interval_ms : r);
}

int
agg_init(struct agg *a, size_t nsensors, int interval_s, int64_t now_ms)
{
	memset(a, 0, sizeof(*a));
	if (nsensors > 0 && (a->cells = calloc(nsensors * Q_COUNT, sizeof(*a->cells))) == NULL)
		return -ENOMEM;
	a->nsensors = nsensors;
	a->interval_ms = (int64_t)interval_s * 1000;
	a->start_ms = agg_window_start(now_ms, a->interval_ms);
	return 0;
}

void
agg_free(struct agg *a)
{
	free(a->cells);
	a->cells = NULL;
	a->nsensors = 0;
}

void
agg_add(struct agg *a, size_t sensor, enum quantity q, double v, bool clock_ok)
{
	struct agg_cell *c;

	if (sensor >= a->nsensors || (unsigned)q >= Q_COUNT)
		return;
	c = &a->cells[sensor * Q_COUNT + q];
	if (c->n == 0 || v < c->min)
		c->min = v;
	if (c->n == 0 || v > c->max)
		c->max = v;
	c->sum += v;
	c->last = v;
	c->n++;
	if (!clock_ok)
		c->clock_bad = true;
}

const struct agg_cell *
agg_cell(const struct agg *a, size_t sensor, enum quantity q)
{
	if (sensor >= a->nsensors || (unsigned)q >= Q_COUNT)
		return NULL;
	return &a->cells[sensor * Q_COUNT + q];
}

double
agg_mean(const struct agg_cell *c)
{
	return c->n ? c->sum / c->n : 0.0;
}

void
agg_next(struct agg *a, int64_t now_ms)
{
	if (a->cells)
		memset(a->cells, 0, a->nsensors * Q_COUNT * sizeof(*a->cells));
	a->start_ms = agg_window_start(now_ms, a->interval_ms);
}

void
agg_carry(struct agg *to, const struct agg *from, const int *map)
{
	/* A changed interval starts a fresh window; the same one keeps counting. */
	if (to->interval_ms != from->interval_ms)
		return;
	to->start_ms = from->start_ms;
	for (size_t i = 0; i < to->nsensors; i++)
		if (map[i] >= 0 && (size_t)map[i] < from->nsensors)
			memcpy(&to->cells[i * Q_COUNT], &from->cells[(size_t)map[i] * Q_COUNT],
			    Q_COUNT * sizeof(*to->cells));
}
