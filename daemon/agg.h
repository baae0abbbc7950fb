/*
 * Per-window aggregation: n/min/max/mean/last for each sensor and quantity
 * (SPEC §4 telemetry).  Pure: values and times in, cells out; no I/O.
 * Windows are [start, start + interval) aligned to multiples of the
 * interval in epoch time, so gateways in a park report the same windows.
 */
#ifndef COLDGATE_AGG_H
#define COLDGATE_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quantity.h"

struct agg_cell {
	uint32_t	 n;
	bool		 clock_bad;	/* some reading was taken on an unsynchronised clock */
	double		 min, max, sum, last;
};

struct agg {
	size_t		 nsensors;
	int64_t		 interval_ms;
	int64_t		 start_ms;	/* of the current window */
	struct agg_cell	*cells;		/* nsensors * Q_COUNT */
};

/* 0, or -ENOMEM.  The first window is the one holding now_ms. */
int	 agg_init(struct agg *, size_t nsensors, int interval_s, int64_t now_ms);
void	 agg_free(struct agg *);

/* The start of the window that holds t. */
int64_t	 agg_window_start(int64_t t_ms, int64_t interval_ms);
static inline int64_t agg_end(const struct agg *a) { return a->start_ms + a->interval_ms; }

void	 agg_add(struct agg *, size_t sensor, enum quantity, double v, bool clock_ok);
const struct agg_cell *agg_cell(const struct agg *, size_t sensor, enum quantity);
double	 agg_mean(const struct agg_cell *);

/* Empty every cell and start the window that holds now_ms. */
void	 agg_next(struct agg *, int64_t now_ms);

/*
 * Carry the running window over to a new sensor set (after a reload): new
 * sensor i of to (fresh from agg_init) takes the cells of sensor map[i] of
 * from, or stays empty when map[i] < 0.  With another interval nothing is
 * carried: to's own window starts afresh.  Cannot fail.
 */
void	 agg_carry(struct agg *to, const struct agg *from, const int *map);

#endif
