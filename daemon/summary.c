/*
 * The daily record's arithmetic: per-zone min/max/mean, mean kinetic
 * temperature and time out of range (see summary.h).  Pure; must not
 * touch the store or the outbox: records.c replays and publishes.
 */
#include "summary.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * A sensor's latest reading of one quantity.  value is NaN until one is
 * seen: summary_add takes finite values only, and a flag would pad each
 * of the nsensors * Q_COUNT entries from 16 bytes to 24.
 */
struct summary_held {
	double		 value;
	int64_t		 t_ms;		/* when it was taken; its cap counts from here */
};

/* A zone and quantity over the open day. */
struct summary_cell {
	bool		 has_low, has_high;
	double		 low, high;
	/* Holds are counted up to here; the zone's readings move it forward. */
	int64_t		 swept_ms;
	uint32_t	 n;
	bool		 seen;		/* min and max are set */
	double		 min, max;
	double		 sum_wv;	/* value * ms */
	int64_t		 held_ms, covered_ms, out_ms;
	/*
	 * sum(w * exp(x)) kept as exp(mkt_ref) * mkt_sum, where mkt_ref is
	 * the largest x = -(dH/R) / T so far: exp(x) alone is 3e-18 at
	 * -25 C with dH/R = 10000 K and underflows to 0 for a larger dH/R.
	 */
	double		 mkt_ref, mkt_sum;
};

struct summary {
	size_t		 nzones, nsensors;
	int64_t		 max_hold_ms;
	double		 dhr;
	int64_t		 day_start_ms, day_end_ms;
	int		*sensor_zone;
	/* Zone z's sensors are members[first[z]] .. members[first[z + 1] - 1]. */
	size_t		*members;
	size_t		*first;
	struct summary_held *held;	/* nsensors * Q_COUNT */
	struct summary_cell *cells;	/* nzones * Q_COUNT */
};

static bool
summary_span_ok(int64_t start, int64_t end)
{
	/* end - start must not overflow: every weight is a part of it. */
	return end > start && (uint64_t)end - (uint64_t)start <= (uint64_t)INT64_MAX;
}

static struct summary_cell *
summary_cell(struct summary *s, size_t zone, enum quantity q)
{
	return &s->cells[zone * Q_COUNT + q];
}

static void
summary_cell_reset(struct summary_cell *c, int64_t start_ms)
{
	bool has_low = c->has_low, has_high = c->has_high;
	double low = c->low, high = c->high;

	memset(c, 0, sizeof(*c));
	c->has_low = has_low;
	c->has_high = has_high;
	c->low = low;
	c->high = high;
	c->swept_ms = start_ms;
}

int
summary_new(struct summary **out, size_t nzones, const int *sensor_zone, size_t nsensors,
    int64_t max_hold_ms, double dhr_kelvin, int64_t day_start_ms, int64_t day_end_ms)
{
	struct summary *s;
	size_t *fill;

	*out = NULL;
	if (max_hold_ms <= 0 || !isfinite(dhr_kelvin) || dhr_kelvin < 0 ||
	    !summary_span_ok(day_start_ms, day_end_ms) || (nsensors > 0 && sensor_zone == NULL))
		return -EINVAL;
	for (size_t i = 0; i < nsensors; i++)
		if (sensor_zone[i] < -1 || (sensor_zone[i] >= 0 && (size_t)sensor_zone[i] >= nzones))
			return -EINVAL;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	s->nzones = nzones;
	s->nsensors = nsensors;
	s->max_hold_ms = max_hold_ms;
	s->dhr = dhr_kelvin == 0 ? SUMMARY_DHR_DEFAULT : dhr_kelvin;
	s->day_start_ms = day_start_ms;
	s->day_end_ms = day_end_ms;
	/* +1 each so that no size is 0: calloc(0) may return NULL. */
	if ((s->sensor_zone = calloc(nsensors + 1, sizeof(*s->sensor_zone))) == NULL ||
	    (s->members = calloc(nsensors + 1, sizeof(*s->members))) == NULL ||
	    (s->first = calloc(nzones + 2, sizeof(*s->first))) == NULL ||
	    (s->held = calloc(nsensors + 1, Q_COUNT * sizeof(*s->held))) == NULL ||
	    (s->cells = calloc(nzones + 1, Q_COUNT * sizeof(*s->cells))) == NULL)
		goto err_free;
	if (nsensors > 0)
		memcpy(s->sensor_zone, sensor_zone, nsensors * sizeof(*sensor_zone));
	for (size_t i = 0; i < (nsensors + 1) * Q_COUNT; i++)
		s->held[i].value = NAN;

	/* Group the sensors by zone (a counting sort), so a sweep visits only its own. */
	for (size_t i = 0; i < nsensors; i++)
		if (sensor_zone[i] >= 0)
			s->first[sensor_zone[i] + 2]++;
	for (size_t z = 2; z < nzones + 2; z++)
		s->first[z] += s->first[z - 1];
	fill = s->first + 1;
	for (size_t i = 0; i < nsensors; i++)
		if (sensor_zone[i] >= 0)
			s->members[fill[sensor_zone[i]]++] = i;

	for (size_t i = 0; i < nzones * Q_COUNT; i++)
		summary_cell_reset(&s->cells[i], day_start_ms);
	*out = s;
	return 0;

err_free:
	summary_free(s);
	return -ENOMEM;
}

void
summary_free(struct summary *s)
{
	if (s == NULL)
		return;
	free(s->sensor_zone);
	free(s->members);
	free(s->first);
	free(s->held);
	free(s->cells);
	free(s);
}

int
summary_limits(struct summary *s, size_t zone, enum quantity q,
    bool has_low, double low, bool has_high, double high)
{
	struct summary_cell *c;

	if (zone >= s->nzones || (unsigned)q >= Q_COUNT ||
	    (has_low && !isfinite(low)) || (has_high && !isfinite(high)) ||
	    (has_low && has_high && low > high))
		return -EINVAL;
	c = summary_cell(s, zone, q);
	c->has_low = has_low;
	c->low = has_low ? low : 0;
	c->has_high = has_high;
	c->high = has_high ? high : 0;
	return 0;
}

int64_t
summary_day_start(const struct summary *s)
{
	return s->day_start_ms;
}

int64_t
summary_day_end(const struct summary *s)
{
	return s->day_end_ms;
}

static void
summary_note(struct summary_cell *c, double v)
{
	if (!c->seen || v < c->min)
		c->min = v;
	if (!c->seen || v > c->max)
		c->max = v;
	c->seen = true;
}

/* Value v stood for w_ms > 0 of the day. */
static void
summary_weigh(const struct summary *s, struct summary_cell *c, enum quantity q,
    double v, int64_t w_ms)
{
	double w = (double)w_ms, x;
	bool first = c->held_ms == 0;

	summary_note(c, v);
	c->held_ms += w_ms;
	c->sum_wv += w * v;
	if (q != Q_TEMPERATURE)
		return;
	x = -s->dhr / (v + SUMMARY_KELVIN);
	if (first) {
		c->mkt_ref = x;
		c->mkt_sum = w;
	} else if (x > c->mkt_ref) {
		/* Rescale so that the largest term stays near w, never 0. */
		c->mkt_sum = c->mkt_sum * exp(c->mkt_ref - x) + w;
		c->mkt_ref = x;
	} else
		c->mkt_sum += w * exp(x - c->mkt_ref);
}

/* The end of a reading's hold, by its cap alone. */
static int64_t
summary_expiry(const struct summary *s, const struct summary_held *h)
{
	return h->t_ms > INT64_MAX - s->max_hold_ms ? INT64_MAX : h->t_ms + s->max_hold_ms;
}

/*
 * Count zone z's holds of quantity q from where the last sweep stopped up
 * to to_ms.  Every sensor's latest reading started at or before that
 * point, so each holds over [from, its expiry) within the stretch; the
 * union of those is the covered time, and of the ones out of range the
 * time out of range.
 */
static void
summary_sweep(struct summary *s, size_t z, enum quantity q, int64_t to_ms)
{
	struct summary_cell *c = summary_cell(s, z, q);
	int64_t from = c->swept_ms, cover = from, out = from, end;
	const struct summary_held *h;

	if (to_ms <= from)
		return;
	for (size_t k = s->first[z]; k < s->first[z + 1]; k++) {
		h = &s->held[s->members[k] * Q_COUNT + q];
		if (isnan(h->value) || (end = summary_expiry(s, h)) <= from)
			continue;
		if (end > to_ms)
			end = to_ms;
		summary_weigh(s, c, q, h->value, end - from);
		if (end > cover)
			cover = end;
		if (end > out && ((c->has_low && h->value < c->low) ||
		    (c->has_high && h->value > c->high)))
			out = end;
	}
	c->covered_ms += cover - from;
	c->out_ms += out - from;
	c->swept_ms = to_ms;
}

int
summary_add(struct summary *s, size_t sensor, enum quantity q, double value, int64_t t_ms)
{
	struct summary_held *h;
	struct summary_cell *c;
	size_t z;

	if (sensor >= s->nsensors || (unsigned)q >= Q_COUNT || !isfinite(value) ||
	    (q == Q_TEMPERATURE && value <= -SUMMARY_KELVIN))
		return -EINVAL;
	if (s->sensor_zone[sensor] < 0)
		return 0;
	h = &s->held[sensor * Q_COUNT + q];
	if (!isnan(h->value) && t_ms < h->t_ms)
		return -EINVAL;
	if (t_ms >= s->day_end_ms)
		return -ERANGE;

	z = (size_t)s->sensor_zone[sensor];
	c = summary_cell(s, z, q);
	/* The sensor's previous reading holds up to here; the new one from here. */
	summary_sweep(s, z, q, t_ms);
	h->value = value;
	h->t_ms = t_ms;
	if (t_ms >= s->day_start_ms) {
		c->n++;
		summary_note(c, value);
	}
	return 0;
}

int
summary_day(struct summary *s, int64_t next_start_ms, int64_t next_end_ms,
    void (*cb)(const struct summary_result *, void *arg), void *arg)
{
	struct summary_result r;
	struct summary_cell *c;

	if (next_start_ms < s->day_end_ms || !summary_span_ok(next_start_ms, next_end_ms))
		return -EINVAL;
	for (size_t z = 0; z < s->nzones; z++) {
		for (int q = 0; q < Q_COUNT; q++) {
			summary_sweep(s, z, q, s->day_end_ms);
			c = summary_cell(s, z, q);
			if (cb != NULL && (c->n > 0 || c->held_ms > 0)) {
				memset(&r, 0, sizeof(r));
				r.zone = z;
				r.quantity = q;
				r.day_start_ms = s->day_start_ms;
				r.day_end_ms = s->day_end_ms;
				r.n = c->n;
				r.min = c->min;
				r.max = c->max;
				r.covered_s = c->covered_ms / 1000.0;
				r.held_s = c->held_ms / 1000.0;
				r.out_of_range_s = c->out_ms / 1000.0;
				r.mean = c->held_ms > 0 ? c->sum_wv / (double)c->held_ms : NAN;
				r.mkt = NAN;
				if (q == Q_TEMPERATURE && c->held_ms > 0)
					r.mkt = s->dhr / -(c->mkt_ref +
					    log(c->mkt_sum / (double)c->held_ms)) - SUMMARY_KELVIN;
				cb(&r, arg);
			}
			summary_cell_reset(c, next_start_ms);
		}
	}
	s->day_start_ms = next_start_ms;
	s->day_end_ms = next_end_ms;
	return 0;
}
