/*
 * A worker thread for sensor reads that block (STYLE: "Blocking reads off
 * the loop").  One per driver, i.e. per bus: it takes read jobs from a
 * pipe, runs them one at a time, and hands each result back through a
 * pipe the main loop polls.  While a job runs the main thread does not
 * touch that sensor's driver state; nothing else is shared.
 *
 * Jobs and results are small fixed-size records, so each pipe write is
 * atomic (less than PIPE_BUF).
 */
#ifndef COLDGATE_WORKER_H
#define COLDGATE_WORKER_H

#include <stddef.h>

#include "sensor.h"

struct worker_job {
	size_t				 sensor;	/* the daemon's index */
	const struct sensor_driver	*drv;
	void				*state;
	struct sensor_clock		 clk;		/* when it was due */
};

struct worker_result {
	size_t		 sensor;
	int		 n;		/* readings, or a negative errno */
	struct reading	 r[SENSOR_MAX_READINGS];
	int64_t		 wall_ms;	/* when the read finished: the readings' time */
};

struct worker;

/* 0 or -errno. */
int	 worker_start(struct worker **out, const char *name);
/* Ends the thread once its current read is done, and frees; accepts NULL. */
void	 worker_stop(struct worker *);
/* The fd that becomes readable when results wait. */
int	 worker_fd(const struct worker *);
const char *worker_name(const struct worker *);
/* Queue a job.  0, or -EAGAIN when the queue is full (try at the next due time). */
int	 worker_submit(struct worker *, const struct worker_job *);
/* 1 and *out filled, 0 when no result waits, or -errno. */
int	 worker_collect(struct worker *, struct worker_result *out);

#endif
