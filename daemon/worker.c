/*
 * Worker threads for blocking sensor reads (see worker.h).  Owns the
 * threads and their pipes; must not touch anything but the job's driver
 * state while a job runs: the main thread owns everything else.
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct worker {
	pthread_t	 thread;
	int		 jobs[2];	/* main writes [1], the thread reads [0] */
	int		 results[2];	/* the thread writes [1], main reads [0] */
	char		 name[128];	/* the bus or driver; a longer one is cut (two buses then share) */
};

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct worker_job job;
	struct worker_result res;
	struct reading r[SENSOR_MAX_READINGS];
	ssize_t n;

	/* A closed job pipe (EOF) is the signal to stop. */
	while ((n = read(w->jobs[0], &job, sizeof(job))) == sizeof(job) ||
	    (n < 0 && errno == EINTR)) {
		if (n < 0)
			continue;
		memset(&res, 0, sizeof(res));
		res.sensor = job.sensor;
		res.n = job.drv->read(job.state, &job.clk, r, SENSOR_MAX_READINGS);
		res.wall_ms = wall_ms();
		/* Member by member: a driver's padding bytes must not go down the pipe. */
		for (int k = 0; k < res.n && k < SENSOR_MAX_READINGS; k++) {
			res.r[k].q = r[k].q;
			res.r[k].value = r[k].value;
		}
		while (write(w->results[1], &res, sizeof(res)) < 0 && errno == EINTR)
			;
	}
	return NULL;
}

int
worker_start(struct worker **out, const char *name)
{
	struct worker *w;
	int rc;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -ENOMEM;
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->jobs[0] = w->jobs[1] = w->results[0] = w->results[1] = -1;
	if (pipe2(w->jobs, O_CLOEXEC) < 0 || pipe2(w->results, O_CLOEXEC) < 0) {
		rc = -errno;
		goto err;
	}
	/* The main thread never waits on either pipe. */
	if (fcntl(w->jobs[1], F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(w->results[0], F_SETFL, O_NONBLOCK) < 0) {
		rc = -errno;
		goto err;
	}
	if ((rc = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
		rc = -rc;
		goto err;
	}
	*out = w;
	return 0;
err:
	for (int i = 0; i < 2; i++) {
		if (w->jobs[i] >= 0)
			close(w->jobs[i]);
		if (w->results[i] >= 0)
			close(w->results[i]);
	}
	free(w);
	return rc;
}

void
worker_stop(struct worker *w)
{
	if (w == NULL)
		return;
	close(w->jobs[1]);
	pthread_join(w->thread, NULL);
	close(w->jobs[0]);
	close(w->results[0]);
	close(w->results[1]);
	free(w);
}

int
worker_fd(const struct worker *w)
{
	return w->results[0];
}

const char *
worker_name(const struct worker *w)
{
	return w->name;
}

int
worker_submit(struct worker *w, const struct worker_job *job)
{
	ssize_t n = write(w->jobs[1], job, sizeof(*job));

	if (n == sizeof(*job))
		return 0;
	return n < 0 && errno != EAGAIN ? -errno : -EAGAIN;
}

int
worker_collect(struct worker *w, struct worker_result *out)
{
	ssize_t n = read(w->results[0], out, sizeof(*out));

	if (n == sizeof(*out))
		return 1;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	return n < 0 ? -errno : -EIO;
}
