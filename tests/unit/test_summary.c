/*
 * The daily zone summary: time weighting, mean kinetic temperature, time
 * out of range, the day boundary, several sensors in a zone.
 *
 * The expected MKT figures are not computed by the code under test: each
 * comes from the formula by hand or from a 50-digit Python Decimal check,
 * written next to it.  The helper used for those checks:
 *
 *   from decimal import Decimal as D, getcontext; getcontext().prec = 50
 *   def mkt(pairs, dhr=D(10000)):	# pairs of (C, weight)
 *       W = sum(D(w) for _, w in pairs)
 *       s = sum(D(w) * (-dhr / (D(c) + D("273.15"))).exp() for c, w in pairs)
 *       return dhr / -(s / W).ln() - D("273.15")
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "summary.h"

#define D0	1705276800000LL		/* 2024-01-15 00:00 UTC */
#define MIN	60000LL
#define HOUR	3600000LL
#define DAY	(24 * HOUR)

#define assert_near(a, b, eps) do {					\
	double a_ = (a), b_ = (b);					\
	if (!(fabs(a_ - b_) <= (eps)))					\
		fail_msg("%s = %.12f, expected %.12f", #a, a_, b_);	\
} while (0)

struct got {
	size_t			 n;
	struct summary_result	 r[16];
};

static void
collect(const struct summary_result *r, void *arg)
{
	struct got *g = arg;

	if (g->n < 16)
		g->r[g->n++] = *r;
}

static const struct summary_result *
find(const struct got *g, size_t zone, enum quantity q)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->r[i].zone == zone && g->r[i].quantity == q)
			return &g->r[i];
	fail_msg("no result for zone %zu %s", zone, quantity_name(q));
	return NULL;
}

/* Close the open day into g and open the next one right after it. */
static void
close_day(struct summary *s, struct got *g)
{
	int64_t end = summary_day_end(s);

	g->n = 0;
	assert_int_equal(summary_day(s, end, end + DAY, collect, g), 0);
}

/* MKT lies between min and max and is at least the time-weighted mean. */
static void
assert_mkt_sane(const struct summary_result *r)
{
	assert_true(isfinite(r->mkt));
	assert_true(r->mkt >= r->min - 1e-9 && r->mkt <= r->max + 1e-9);
	assert_true(r->mkt >= r->mean - 1e-9);
}

static void
constant_temperature_has_that_mkt(void **state)
{
	static const int zones[] = { 0 };
	struct summary *s;
	struct got g = { 0 };
	const struct summary_result *r;

	(void)state;
	assert_int_equal(summary_new(&s, 1, zones, 1, 15 * MIN, SUMMARY_DHR_DEFAULT,
	    D0, D0 + DAY), 0);
	for (int i = 0; i < 144; i++)
		assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 4.0, D0 + i * 10 * MIN), 0);
	close_day(s, &g);
	assert_int_equal(g.n, 1);
	r = find(&g, 0, Q_TEMPERATURE);
	assert_int_equal(r->day_start_ms, D0);
	assert_int_equal(r->day_end_ms, D0 + DAY);
	assert_int_equal(r->n, 144);
	assert_true(r->min == 4.0 && r->max == 4.0);
	assert_near(r->mean, 4.0, 1e-12);
	assert_near(r->mkt, 4.0, 1e-9);
	assert_near(r->covered_s, 86400, 0);
	assert_near(r->held_s, 86400, 0);
	assert_near(r->out_of_range_s, 0, 0);
	summary_free(s);
}

/*
 * 20 C and 30 C for one hour each, dH/R = 10000 K, by hand:
 *   exp(-10000 / 293.15) = 1.5319587735336e-15
 *   exp(-10000 / 303.15) = 4.7199879570354e-15
 *   their mean           = 3.1259733652845e-15
 *   -ln(mean)            = 33.399030683330
 *   10000 / 33.399030683330 = 299.409886916003 K = 26.259886916003 C
 * (The brief guessed about 25.4 C; the formula gives 26.26 C, above the
 * arithmetic mean of 25 C as an MKT must be.)
 * python3 -c 'import math;a=(math.exp(-10000/293.15)+math.exp(-10000/303.15))/2;print(10000/-math.log(a)-273.15)'
 */
#define MKT_20_30	26.259886916003

static void
two_points_mkt_by_hand(void **state)
{
	static const int zones[] = { 0 };
	struct summary *s;
	struct got g = { 0 };
	const struct summary_result *r;

	(void)state;
	/* dH/R 0 is the default, 10000 K. */
	assert_int_equal(summary_new(&s, 1, zones, 1, HOUR, 0, D0, D0 + 2 * HOUR), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 20.0, D0), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 30.0, D0 + HOUR), 0);
	close_day(s, &g);
	r = find(&g, 0, Q_TEMPERATURE);
	assert_int_equal(r->n, 2);
	assert_near(r->mean, 25.0, 1e-12);
	assert_near(r->mkt, MKT_20_30, 1e-9);
	assert_mkt_sane(r);
	summary_free(s);
}

/*
 * The USP method: "The mean kinetic temperature is calculated from average
 * storage temperatures recorded over a one-year period, with a minimum of
 * twelve equally spaced average storage temperature observations", with
 * dH = 83.144 kJ/mol and R = 8.3144e-3 kJ/(K mol), so dH/R = 10000 K (USP 29
 * <1160> Pharmaceutical Calculations in Prescription Compounding,
 * http://uspbpep.com/usp29/v29240/usp29nf24s0_c1160.html).  No published
 * worked figure was found, so the year below (monthly means of an unheated
 * store, C) is checked independently:
 * python3 -c 'from decimal import Decimal as D,getcontext as g;g().prec=50;t=[D(x) for x in "2.5 3.8 7.9 12.4 16.8 20.3 23.1 22.6 18.4 12.9 7.2 3.6".split()];s=sum((-D(10000)/(x+D("273.15"))).exp() for x in t)/12;print(D(10000)/-s.ln()-D("273.15"))'
 *   -> 15.423315815095597916...; the arithmetic mean is 12.625.
 * Equal spacing means equal weights, so the twelve observations are fed
 * as twelve two-hour holds of one day: the module does not care what a
 * period is called.
 */
static void
year_of_monthly_means_usp_method(void **state)
{
	static const int zones[] = { 0 };
	static const double months[12] = {
		2.5, 3.8, 7.9, 12.4, 16.8, 20.3, 23.1, 22.6, 18.4, 12.9, 7.2, 3.6,
	};
	struct summary *s;
	struct got g = { 0 };
	const struct summary_result *r;

	(void)state;
	assert_int_equal(summary_new(&s, 1, zones, 1, 2 * HOUR, SUMMARY_DHR_DEFAULT,
	    D0, D0 + DAY), 0);
	for (int i = 0; i < 12; i++)
		assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, months[i], D0 + i * 2 * HOUR), 0);
	close_day(s, &g);
	r = find(&g, 0, Q_TEMPERATURE);
	assert_int_equal(r->n, 12);
	assert_near(r->mean, 12.625, 1e-12);
	assert_near(r->mkt, 15.423315815096, 1e-9);
	assert_mkt_sane(r);
	summary_free(s);
}

/*
 * One reading at 30 C that holds an hour, then twelve at 20 C five minutes
 * apart: an hour each way, so the MKT is the two-point one above and the
 * mean 25 C.  Weighting by reading instead of by time would give
 * mkt([(30,1)] + [(20,1)] * 12) = 21.2816330762 C and a mean of 20.77 C.
 */
static void
uneven_sampling_is_weighted_by_time(void **state)
{
	static const int zones[] = { 0 };
	struct summary *s;
	struct got g = { 0 };
	const struct summary_result *r;

	(void)state;
	assert_int_equal(summary_new(&s, 1, zones, 1, HOUR, SUMMARY_DHR_DEFAULT,
	    D0, D0 + 2 * HOUR), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 30.0, D0), 0);
	for (int i = 0; i < 12; i++)
		assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 20.0, D0 + HOUR + i * 5 * MIN), 0);
	close_day(s, &g);
	r = find(&g, 0, Q_TEMPERATURE);
	assert_int_equal(r->n, 13);
	assert_near(r->held_s, 7200, 0);
	assert_near(r->mean, 25.0, 1e-12);
	assert_near(r->mkt, MKT_20_30, 1e-9);
	summary_free(s);
}

/*
 * A freezer cycling between -25 C and -18 C, half the time each.
 * mkt([(-25,1),(-18,1)]) = -20.6236826409 C; mean -21.5 C.  With dH/R =
 * 250000 K, exp(-250000 / 248.15) and exp(-250000 / 255.15) are both 0.0
 * in a double (exp(-1007), exp(-980)), so a direct sum would give
 * -ln(0) = inf and an MKT of 0 K; relative to the largest exponent it is
 * mkt([(-25,1),(-18,1)], D(250000)) = -18.1803721471 C.
 */
static void
frozen_store_does_not_underflow(void **state)
{
	static const int zones[] = { 0 };
	static const double dhr[2] = { SUMMARY_DHR_DEFAULT, 250000.0 };
	static const double want[2] = { -20.623682640899, -18.180372147135 };
	struct summary *s;
	struct got g = { 0 };
	const struct summary_result *r;

	(void)state;
	for (int k = 0; k < 2; k++) {
		assert_int_equal(summary_new(&s, 1, zones, 1, HOUR, dhr[k], D0, D0 + DAY), 0);
		for (int i = 0; i < 48; i++)
			assert_int_equal(summary_add(s, 0, Q_TEMPERATURE,
			    i % 2 ? -18.0 : -25.0, D0 + i * 30 * MIN), 0);
		close_day(s, &g);
		r = find(&g, 0, Q_TEMPERATURE);
		assert_near(r->mean, -21.5, 1e-12);
		assert_near(r->mkt, want[k], 1e-9);
		assert_mkt_sane(r);
		summary_free(s);
	}
}

/*
 * Limits 2..8 C: 9 C for 30 min and 1 C for 30 min are out, 8 C (on the
 * limit) is in.  Humidity with only a high limit, 95 %RH: 97 for 20 min.
 */
static void
time_out_of_range_counts_beyond_limits(void **state)
{
	static const int zones[] = { 0, 0 };
	struct summary *s;
	struct got g = { 0 };
	const struct summary_result *r;

	(void)state;
	assert_int_equal(summary_new(&s, 1, zones, 2, HOUR, SUMMARY_DHR_DEFAULT,
	    D0, D0 + 3 * HOUR), 0);
	assert_int_equal(summary_limits(s, 0, Q_TEMPERATURE, true, 2.0, true, 8.0), 0);
	assert_int_equal(summary_limits(s, 0, Q_HUMIDITY, false, 0, true, 95.0), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 5.0, D0), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 9.0, D0 + HOUR), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 8.0, D0 + 90 * MIN), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 1.0, D0 + 2 * HOUR), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 5.0, D0 + 150 * MIN), 0);
	assert_int_equal(summary_add(s, 1, Q_HUMIDITY, 90.0, D0), 0);
	assert_int_equal(summary_add(s, 1, Q_HUMIDITY, 97.0, D0 + HOUR), 0);
	assert_int_equal(summary_add(s, 1, Q_HUMIDITY, 90.0, D0 + 80 * MIN), 0);
	close_day(s, &g);
	assert_int_equal(g.n, 2);

	r = find(&g, 0, Q_TEMPERATURE);
	assert_int_equal(r->n, 5);
	assert_true(r->min == 1.0 && r->max == 9.0);
	assert_near(r->covered_s, 3 * 3600, 0);
	assert_near(r->out_of_range_s, 3600, 0);
	assert_mkt_sane(r);

	r = find(&g, 0, Q_HUMIDITY);
	assert_near(r->out_of_range_s, 1200, 0);
	/* The last 90 %RH holds its hour and no more: 02:20, not 03:00. */
	assert_near(r->covered_s, 2 * 3600 + 20 * 60, 0);
	assert_true(isnan(r->mkt));
	summary_free(s);
}

/*
 * A hold is capped at max_hold (15 min): 4 C at 00:00 and 6 C at 01:00
 * cover 30 min of two hours, weigh the same, and 6 C above a 5 C limit is
 * out for its 15 min only, not for the gap after it.
 */
static void
gaps_beyond_max_hold_are_no_data(void **state)
{
	static const int zones[] = { 0 };
	struct summary *s;
	struct got g = { 0 };
	const struct summary_result *r;

	(void)state;
	assert_int_equal(summary_new(&s, 1, zones, 1, 15 * MIN, SUMMARY_DHR_DEFAULT,
	    D0, D0 + 2 * HOUR), 0);
	assert_int_equal(summary_limits(s, 0, Q_TEMPERATURE, false, 0, true, 5.0), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 4.0, D0), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 6.0, D0 + HOUR), 0);
	close_day(s, &g);
	r = find(&g, 0, Q_TEMPERATURE);
	assert_int_equal(r->n, 2);
	assert_near(r->covered_s, 1800, 0);
	assert_near(r->held_s, 1800, 0);
	assert_near(r->out_of_range_s, 900, 0);
	assert_near(r->mean, 5.0, 1e-12);
	summary_free(s);
}

/*
 * A reading at 23:30 with a one-hour cap gives 30 min to each day.  Zone
 * 0's sensor reads again at 00:30 (7 C, holding to 01:30); zone 1's does
 * not, and its 23:30 reading runs out at 00:30 by the cap.  The carried
 * value is in the new day's min/max and mean but not in its n.
 */
static void
day_boundary_splits_a_hold(void **state)
{
	static const int zones[] = { 0, 1 };
	struct summary *s;
	struct got g = { 0 };
	const struct summary_result *r;

	(void)state;
	assert_int_equal(summary_new(&s, 2, zones, 2, HOUR, SUMMARY_DHR_DEFAULT,
	    D0, D0 + DAY), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 5.0, D0 + 23 * HOUR + 30 * MIN), 0);
	assert_int_equal(summary_add(s, 1, Q_TEMPERATURE, 3.0, D0 + 23 * HOUR + 30 * MIN), 0);
	/* The new day's reading is refused until the old day is closed. */
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 7.0, D0 + DAY + 30 * MIN), -ERANGE);
	close_day(s, &g);
	assert_int_equal(g.n, 2);
	assert_near(find(&g, 0, Q_TEMPERATURE)->covered_s, 1800, 0);
	assert_near(find(&g, 1, Q_TEMPERATURE)->covered_s, 1800, 0);
	assert_int_equal(summary_day_start(s), D0 + DAY);

	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 7.0, D0 + DAY + 30 * MIN), 0);
	close_day(s, &g);
	assert_int_equal(g.n, 2);
	r = find(&g, 0, Q_TEMPERATURE);
	assert_int_equal(r->n, 1);
	assert_near(r->covered_s, 1800 + 3600, 0);
	assert_true(r->min == 5.0 && r->max == 7.0);
	assert_near(r->mean, (5.0 * 1800 + 7.0 * 3600) / 5400, 1e-12);
	r = find(&g, 1, Q_TEMPERATURE);
	assert_int_equal(r->n, 0);
	assert_near(r->covered_s, 1800, 0);
	assert_near(r->mkt, 3.0, 1e-9);

	/* The third day: every hold ran out in the second, nothing to report. */
	close_day(s, &g);
	assert_int_equal(g.n, 0);
	summary_free(s);
}

/*
 * The clock jumps over a whole day: the next day opens later, and a
 * carried reading holds only from that day's start, by its own cap.
 */
static void
skipped_days_count_in_no_day(void **state)
{
	static const int zones[] = { 0 };
	struct summary *s;
	struct got g = { 0 };
	const struct summary_result *r;

	(void)state;
	assert_int_equal(summary_new(&s, 1, zones, 1, 2 * DAY, SUMMARY_DHR_DEFAULT,
	    D0, D0 + DAY), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 5.0, D0 + 12 * HOUR), 0);
	assert_int_equal(summary_day(s, D0 + DAY - 1, D0 + 2 * DAY, collect, &g), -EINVAL);
	assert_int_equal(summary_day(s, D0 + 2 * DAY, D0 + 2 * DAY, collect, &g), -EINVAL);
	assert_int_equal(g.n, 0);
	assert_int_equal(summary_day(s, D0 + 2 * DAY, D0 + 3 * DAY, collect, &g), 0);
	assert_int_equal(g.n, 1);
	assert_near(g.r[0].covered_s, 12 * 3600, 0);
	close_day(s, &g);
	r = find(&g, 0, Q_TEMPERATURE);
	/* Held to 12:00 of the third day, the cap; the second day is nobody's. */
	assert_int_equal(r->day_start_ms, D0 + 2 * DAY);
	assert_near(r->covered_s, 12 * 3600, 0);
	summary_free(s);
}

/*
 * Two sensors in zone 0 over four hours, limit 8 C, cap 4 h:
 *   sensor 0: 2 C 00:00-01:30, 9 C 01:30-02:30, 2 C 02:30-04:00
 *   sensor 1: 6 C 00:00-01:00, 9 C 01:00-02:00, 6 C 02:00-04:00
 * Weights add: 2 C 3 h, 9 C 2 h, 6 C 3 h; mean 42/8 = 5.25 C and
 * mkt([(2,3),(9,2),(6,3)]) = 5.7119240674 C.  Covered is the wall clock,
 * 4 h (the weights make 8 h), and out of range the union 01:00-02:30,
 * 1.5 h (the sum would be 2 h).  Zone 1's sensor and a sensor in no zone
 * change none of it.
 */
static void
sensors_of_one_zone_add_their_weights(void **state)
{
	static const int zones[] = { 0, 0, 1, -1 };
	struct summary *s;
	struct got g = { 0 };
	const struct summary_result *r;

	(void)state;
	assert_int_equal(summary_new(&s, 2, zones, 4, 4 * HOUR, SUMMARY_DHR_DEFAULT,
	    D0, D0 + 4 * HOUR), 0);
	assert_int_equal(summary_limits(s, 0, Q_TEMPERATURE, false, 0, true, 8.0), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 2.0, D0), 0);
	assert_int_equal(summary_add(s, 1, Q_TEMPERATURE, 6.0, D0), 0);
	assert_int_equal(summary_add(s, 2, Q_TEMPERATURE, 20.0, D0), 0);
	assert_int_equal(summary_add(s, 3, Q_TEMPERATURE, 40.0, D0), 0);
	assert_int_equal(summary_add(s, 1, Q_TEMPERATURE, 9.0, D0 + HOUR), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 9.0, D0 + 90 * MIN), 0);
	assert_int_equal(summary_add(s, 1, Q_TEMPERATURE, 6.0, D0 + 2 * HOUR), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 2.0, D0 + 150 * MIN), 0);
	close_day(s, &g);
	assert_int_equal(g.n, 2);

	r = find(&g, 0, Q_TEMPERATURE);
	assert_int_equal(r->n, 6);
	assert_true(r->min == 2.0 && r->max == 9.0);
	assert_near(r->covered_s, 4 * 3600, 0);
	assert_near(r->held_s, 8 * 3600, 0);
	assert_near(r->out_of_range_s, 90 * 60, 0);
	assert_near(r->mean, 5.25, 1e-12);
	assert_near(r->mkt, 5.711924067435, 1e-9);
	assert_mkt_sane(r);

	r = find(&g, 1, Q_TEMPERATURE);
	assert_int_equal(r->n, 1);
	assert_near(r->mkt, 20.0, 1e-9);
	summary_free(s);
}

/*
 * Holds of one zone that end at different times, cap 1 h, limit 8 C:
 * sensor 1 reads 9 C at 00:00 (held to 01:00), sensor 0 9.5 C at 00:30
 * (held to 01:30).  Covered and out of range are both 00:00-01:30, 90 min,
 * whichever sensor the sweep looks at last; the weights are 2 h.
 */
static void
union_of_holds_that_end_apart(void **state)
{
	static const int zones[] = { 0, 0 };
	struct summary *s;
	struct got g = { 0 };
	const struct summary_result *r;

	(void)state;
	assert_int_equal(summary_new(&s, 1, zones, 2, HOUR, SUMMARY_DHR_DEFAULT,
	    D0, D0 + 3 * HOUR), 0);
	assert_int_equal(summary_limits(s, 0, Q_TEMPERATURE, false, 0, true, 8.0), 0);
	assert_int_equal(summary_add(s, 1, Q_TEMPERATURE, 9.0, D0), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 9.5, D0 + 30 * MIN), 0);
	close_day(s, &g);
	r = find(&g, 0, Q_TEMPERATURE);
	assert_near(r->covered_s, 90 * 60, 0);
	assert_near(r->out_of_range_s, 90 * 60, 0);
	assert_near(r->held_s, 2 * 3600, 0);
	assert_near(r->mean, 9.25, 1e-12);
	summary_free(s);
}

static void
zone_without_data_gives_no_result(void **state)
{
	static const int zones[] = { 0, 1, 2 };
	struct summary *s;
	struct got g = { 0 };

	(void)state;
	assert_int_equal(summary_new(&s, 3, zones, 3, HOUR, SUMMARY_DHR_DEFAULT,
	    D0, D0 + DAY), 0);
	assert_int_equal(summary_limits(s, 2, Q_TEMPERATURE, true, 0, true, 4), 0);
	assert_int_equal(summary_add(s, 1, Q_CO2, 800, D0 + HOUR), 0);
	close_day(s, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.r[0].zone, 1);
	assert_int_equal(g.r[0].quantity, Q_CO2);
	assert_near(g.r[0].mean, 800, 1e-12);
	assert_true(isnan(g.r[0].mkt));
	summary_free(s);
}

/*
 * A sensor's own readings must come in order; across the sensors of one
 * zone a late one (another bus answered first) holds from the zone's
 * latest reading, and one that comes back after its day was closed holds
 * from the new day's start without counting in its n.
 */
static void
late_and_out_of_order_readings(void **state)
{
	static const int zones[] = { 0, 0 };
	struct summary *s;
	struct got g = { 0 };
	const struct summary_result *r;

	(void)state;
	assert_int_equal(summary_new(&s, 1, zones, 2, HOUR, SUMMARY_DHR_DEFAULT,
	    D0, D0 + HOUR), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 4.0, D0), 0);
	assert_int_equal(summary_add(s, 1, Q_TEMPERATURE, 4.0, D0 + 30 * MIN), 0);
	/* 20 min, older than the zone's 30: 4 C holds to 30, 6 C from there. */
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 6.0, D0 + 20 * MIN), 0);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, 5.0, D0 + 10 * MIN), -EINVAL);
	close_day(s, &g);
	r = find(&g, 0, Q_TEMPERATURE);
	assert_int_equal(r->n, 3);
	assert_near(r->held_s, 3600 + 1800, 0);
	assert_near(r->mean, (4.0 * 30 + 6.0 * 30 + 4.0 * 30) / 90, 1e-12);

	/*
	 * 00:59 of the closed day: holds 01:00-01:59 of the new one, and
	 * sensor 0's 6 C from 00:20 holds 01:00-01:20.
	 */
	assert_int_equal(summary_add(s, 1, Q_TEMPERATURE, 8.0, D0 + 59 * MIN), 0);
	close_day(s, &g);
	r = find(&g, 0, Q_TEMPERATURE);
	assert_int_equal(r->n, 0);
	assert_true(r->min == 6.0 && r->max == 8.0);
	assert_near(r->covered_s, 59 * 60, 0);
	assert_near(r->held_s, 59 * 60 + 20 * 60, 0);
	summary_free(s);
}

static void
bad_arguments_are_refused(void **state)
{
	static const int zones[] = { 0, 1 };
	static const int bad[] = { 0, 2 };
	static const int worse[] = { -2 };
	struct summary *s;

	(void)state;
	assert_int_equal(summary_new(&s, 2, bad, 2, HOUR, 0, D0, D0 + DAY), -EINVAL);
	assert_null(s);
	assert_int_equal(summary_new(&s, 2, worse, 1, HOUR, 0, D0, D0 + DAY), -EINVAL);
	assert_int_equal(summary_new(&s, 2, zones, 2, 0, 0, D0, D0 + DAY), -EINVAL);
	assert_int_equal(summary_new(&s, 2, zones, 2, HOUR, -1, D0, D0 + DAY), -EINVAL);
	assert_int_equal(summary_new(&s, 2, zones, 2, HOUR, NAN, D0, D0 + DAY), -EINVAL);
	assert_int_equal(summary_new(&s, 2, zones, 2, HOUR, 0, D0, D0), -EINVAL);
	assert_int_equal(summary_new(&s, 2, zones, 2, HOUR, 0, INT64_MIN, INT64_MAX), -EINVAL);
	summary_free(NULL);

	assert_int_equal(summary_new(&s, 2, zones, 2, HOUR, 0, D0, D0 + DAY), 0);
	assert_int_equal(summary_limits(s, 2, Q_TEMPERATURE, true, 0, true, 1), -EINVAL);
	assert_int_equal(summary_limits(s, 0, Q_COUNT, true, 0, true, 1), -EINVAL);
	assert_int_equal(summary_limits(s, 0, Q_TEMPERATURE, true, 5, true, 1), -EINVAL);
	assert_int_equal(summary_limits(s, 0, Q_TEMPERATURE, true, NAN, false, 0), -EINVAL);
	assert_int_equal(summary_limits(s, 0, Q_TEMPERATURE, false, NAN, false, NAN), 0);
	assert_int_equal(summary_add(s, 2, Q_TEMPERATURE, 1.0, D0), -EINVAL);
	assert_int_equal(summary_add(s, 0, Q_COUNT, 1.0, D0), -EINVAL);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, NAN, D0), -EINVAL);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, INFINITY, D0), -EINVAL);
	assert_int_equal(summary_add(s, 0, Q_TEMPERATURE, -273.15, D0), -EINVAL);
	/* Below absolute zero is fine for a quantity that is not a temperature. */
	assert_int_equal(summary_add(s, 0, Q_HUMIDITY, -300, D0), 0);
	assert_int_equal(summary_add(s, 0, Q_HUMIDITY, 50, D0 + DAY), -ERANGE);
	summary_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(constant_temperature_has_that_mkt),
		cmocka_unit_test(two_points_mkt_by_hand),
		cmocka_unit_test(year_of_monthly_means_usp_method),
		cmocka_unit_test(uneven_sampling_is_weighted_by_time),
		cmocka_unit_test(frozen_store_does_not_underflow),
		cmocka_unit_test(time_out_of_range_counts_beyond_limits),
		cmocka_unit_test(gaps_beyond_max_hold_are_no_data),
		cmocka_unit_test(day_boundary_splits_a_hold),
		cmocka_unit_test(skipped_days_count_in_no_day),
		cmocka_unit_test(sensors_of_one_zone_add_their_weights),
		cmocka_unit_test(union_of_holds_that_end_apart),
		cmocka_unit_test(zone_without_data_gives_no_result),
		cmocka_unit_test(late_and_out_of_order_readings),
		cmocka_unit_test(bad_arguments_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
