/*
 * The daily summary of each zone for cold-chain records: for every
 * quantity seen in the zone over one day, the count, min, max,
 * time-weighted mean, the time with data, the time outside the zone's
 * limits and, for temperature, the mean kinetic temperature (USP <1079>).
 * Pure: readings and times in, results out through a callback; no I/O,
 * no clock, no allocation after summary_new().  Times are Unix epoch
 * milliseconds; the caller decides where a day begins and ends (local
 * midnights, 23 or 25 hours around a DST change), so the module needs no
 * time zone.
 *
 * Weighting.  A reading holds from its time until the next reading of the
 * same sensor and quantity, but at most max_hold_ms: a longer gap counts
 * as no data after the cap.  The last reading of the day holds until the
 * day's end or the cap and carries over into the next day, so the next
 * day's first stretch is weighted from its start: a reading at 23:30 that
 * holds until 00:30 gives 30 minutes to each day.
 *
 * Several sensors in one zone: their weights add for the mean and the MKT
 * (two sensors over a whole day weigh two days), while covered_s and
 * out_of_range_s are wall-clock time: a second is covered when any sensor
 * of the zone holds a reading, and out of range when any held reading is
 * outside the limits (the conservative reading for a food-safety record).
 *
 * Mean kinetic temperature, with w the hold of each reading and T in K:
 *	MKT = (dH/R) / -ln( sum(w * exp(-(dH/R) / T)) / sum(w) )
 * The sum is kept relative to its largest exponent so that cold stores
 * and large dH/R do not underflow to zero.
 *
 * Order.  The readings of one zone are swept forward in time as they
 * come, so every second is classified once.  A reading older than the
 * zone's latest reading of that quantity (another bus answered first)
 * holds from that latest time instead; a reading older than the day's
 * start (it came back after summary_day()) holds from the day's start.
 */
#ifndef COLDGATE_SUMMARY_H
#define COLDGATE_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quantity.h"

/* dH/R in K: 83.144 kJ/mol over 8.3144 J/(mol K), USP <1079>. */
#define SUMMARY_DHR_DEFAULT	10000.0
#define SUMMARY_KELVIN		273.15	/* C to K */

/*
 * One zone and quantity over one day, given to the callback.  A zone and
 * quantity with neither a reading taken in the day nor a reading held
 * into it gives no result.
 */
struct summary_result {
	size_t		 zone;
	enum quantity	 quantity;
	int64_t		 day_start_ms, day_end_ms;	/* [start, end) */
	uint32_t	 n;		/* readings taken in the day */
	/*
	 * Over the readings taken in the day and any reading held into it
	 * from before (which is not in n), so mean and mkt lie between them.
	 */
	double		 min, max;
	double		 mean;		/* time-weighted; NaN when held_s is 0 */
	double		 covered_s;	/* wall-clock seconds with data */
	double		 held_s;	/* sum of every sensor's hold: the weights */
	double		 out_of_range_s; /* wall-clock seconds outside [low, high] */
	double		 mkt;		/* C; NaN unless temperature with held_s > 0 */
};

struct summary;

/*
 * Make a summary in *out (free with summary_free) and open its first day
 * [day_start_ms, day_end_ms).  sensor_zone[i] is the zone index of sensor
 * i, or -1 for a sensor in no zone (its readings are ignored); the array
 * is copied.  max_hold_ms > 0 caps how long a reading stands for.
 * dhr_kelvin is dH/R for the MKT; 0 means SUMMARY_DHR_DEFAULT.
 * 0, -EINVAL (a zone index out of range, max_hold_ms <= 0, dhr_kelvin
 * negative or not finite, day_end_ms <= day_start_ms; *out is NULL), or
 * -ENOMEM.
 */
int	 summary_new(struct summary **out, size_t nzones, const int *sensor_zone,
	    size_t nsensors, int64_t max_hold_ms, double dhr_kelvin,
	    int64_t day_start_ms, int64_t day_end_ms);
void	 summary_free(struct summary *);	/* accepts NULL */

/*
 * Limits of a zone and quantity for out_of_range_s: a value below low
 * (has_low) or above high (has_high) is out; one on a limit is in.  No
 * limit is the default.  They apply to time not yet swept, that is from
 * the zone's latest reading of the quantity on: set them before the day's
 * readings, or accept that a reload changes them from then on.
 * 0, or -EINVAL (zone or quantity out of range, a limit not finite,
 * low > high).
 */
int	 summary_limits(struct summary *, size_t zone, enum quantity,
	    bool has_low, double low, bool has_high, double high);

/*
 * A reading of sensor s; its zone is the one given to summary_new().
 * 0 (also for a sensor in no zone, ignored); -EINVAL (s or quantity out
 * of range, value not finite, a temperature at or below absolute zero, or
 * t_ms before this sensor's previous reading of the quantity: refused);
 * -ERANGE when t_ms is at or after the open day's end: close the day with
 * summary_day() and add the reading again.
 */
int	 summary_add(struct summary *, size_t s, enum quantity, double value, int64_t t_ms);

/* The open day, [start, end). */
int64_t	 summary_day_start(const struct summary *);
int64_t	 summary_day_end(const struct summary *);

/*
 * Close the open day: every reading's hold is counted up to the day's
 * end, and cb (may be NULL) gets one result per zone and quantity with
 * data, zone by zone in index order, then quantities in enum order.  The
 * result is valid only during the call and cb must not call into the
 * summary.  Then open [next_start_ms, next_end_ms), normally next_start_ms
 * == the closed day's end; a later start (the clock jumped forward over
 * whole days) leaves the time between out of every day.  Each sensor's
 * last reading carries over and holds into the new day as far as its cap
 * allows.  0, or -EINVAL (next_start_ms before the closed day's end,
 * next_end_ms <= next_start_ms; nothing is closed then).
 */
int	 summary_day(struct summary *, int64_t next_start_ms, int64_t next_end_ms,
	    void (*cb)(const struct summary_result *, void *arg), void *arg);

#endif
