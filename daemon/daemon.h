/*
 * The running daemon: its state and the rooms that share it (the shape of
 * OpenNTPD's ntpd.h).  One thread owns all of it and runs main.c's epoll
 * loop; each room below owns the fields marked for it and the functions
 * declared under its name, and touches another room's fields only
 * through that room's functions.
 *
 *   main.c      the loop, the timers, bring-up (start and reload), stop
 *   uplink.c    the MQTT link, the outbox pump and its in-flight window,
 *               the status, telemetry windows and events it carries
 *   sampling.c  sensors opened, scheduled and read (inline or in a
 *               worker per bus); readings to store, window, alarms, days
 *   readings.c  (pure) a reading's quality, door edges, faults, retries
 *   alarmio.c   the alarm engine's transitions: persisted, published
 *   outputs.c   buzzers, lamps and relays driven from the alarms
 *   control.c   commands (cmd/ack from MQTT, coldgatectl's socket)
 *   records.c   the audit trail rows and the daily summaries
 *   upkeep.c    each second: the store's health and size, clock steps
 *
 * Only this file and the rooms include it; the pure modules (agg, alarm,
 * summary, readings, payload, config) know nothing of it.
 */
#ifndef COLDGATE_DAEMON_H
#define COLDGATE_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "agg.h"
#include "alarm.h"
#include "json.h"
#include "payload.h"
#include "readings.h"
#include "store.h"

struct config;
struct mqtt;
struct output_cfg;
struct output_driver;
struct sensor_cfg;
struct sensor_driver;
struct summary;
struct worker;

#define TOPIC_MAX		256
/* Worker threads for blocking reads: one per bus (or per driver). */
#define MAX_WORKERS		16

/*
 * The loop's fds and epoll ids.  Worker k's result fd has id FD_COUNT + k,
 * sensor i's event fd EV_BASE + i.
 */
enum { FD_SIGNAL, FD_SENSORS, FD_COMMIT, FD_WINDOW, FD_TICK, FD_WATCHDOG, FD_CONTROL, FD_MQTT,
    FD_COUNT };
#define EV_BASE			(FD_COUNT + MAX_WORKERS)

/* A configured sensor at run time (sampling.c). */
struct sensor_rt {
	const struct sensor_cfg		*cfg;
	const struct sensor_driver	*drv;
	void				*state;
	int				 key;		/* store's sensor key */
	int64_t				 due;		/* monotonic ms of the next read */
	struct worker			*w;		/* reads run there, or NULL: inline */
	bool				 busy;		/* a read is with the worker */
	int				 open_err;	/* state is NULL: why open failed */
	int				 evfd;		/* its event fd in the loop, or -1 */
	struct readings_track		 track;
};

/* A configured output at run time (outputs.c). */
struct output_rt {
	const struct output_cfg		*cfg;
	const struct output_driver	*drv;
	void				*state;		/* NULL: not open (retried) */
	int				 on;		/* as last set, -1 unknown */
};

/* A message handed to the broker, awaiting its PUBACK (uplink.c). */
struct inflight {
	int		 mid;
	int64_t		 seq;
};

/* The topics of one configuration: "{B}/{G}/..." (uplink.c). */
struct topics {
	char		 status[TOPIC_MAX], telemetry[TOPIC_MAX], event[TOPIC_MAX];
	char		 alarm[TOPIC_MAX];	/* "{B}/{G}/alarm/": the id follows */
	char		 cmd[TOPIC_MAX];	/* "{B}/{G}/cmd/": the command follows */
};

struct daemon {
	/* main.c: the configuration in force, the store, the loop */
	struct config	*conf;
	struct store	*store;
	int		 ep;
	int		 fd[FD_COUNT];
	int		 lock_fd;		/* the state directory's lock */
	int64_t		 started_mono;		/* sensor time 0 (the sim driver's scripts) */
	bool		 running;
	int		 exit_code;

	/* upkeep.c */
	int64_t		 next_usage;		/* monotonic ms of the next store usage check */
	struct store_drops drops;		/* dropped for the cap, not yet reported */
	int		 store_err;		/* the store's commits fail with this errno */
	int64_t		 clock_offset;		/* wall minus monotonic ms, to measure steps */
	int64_t		 next_overflow_event;	/* monotonic ms */

	/* uplink.c */
	struct mqtt	*mqtt;
	uint32_t	 mqtt_events;		/* what FD_MQTT is registered for, 0 if not */
	int		 mqtt_regfd;
	struct topics	 t;
	struct jbuf	 jb;			/* the message being built */
	struct agg	 agg;			/* the running telemetry window */
	/* Outbox delivery: messages up to cursor were handed over on this connection. */
	int64_t		 cursor;
	struct inflight	*inflight;		/* capinflight slots, ninflight used */
	int		 ninflight, capinflight;
	int		 window;		/* mqtt.max_inflight: fill up to this */
	bool		 pump;			/* PUBACKs came in: refill the window */
	int		 backoff;		/* seconds before the next connect attempt */
	int64_t		 next_connect;		/* monotonic ms */
	int64_t		 connected_at;		/* monotonic ms of the last CONNACK */
	int64_t		 acked;			/* PUBACKs on this connection */
	bool		 caught_up;		/* the outbox has been empty on this connection */
	int		 status_mid;		/* the offline goodbye we wait for at stop */
	bool		 status_acked;

	/* sampling.c */
	struct sensor_rt *sensors;
	size_t		 nsensors;
	struct worker	*workers[MAX_WORKERS];
	size_t		 nworkers;

	/* outputs.c */
	struct output_rt *outputs;
	size_t		 noutputs;

	/* alarmio.c */
	struct alarm_engine *alarms;
	char		(*dirty)[ALARM_ID_MAX + 1];	/* alarms to persist */
	size_t		 ndirty, capdirty;

	/* control.c */
	char		*control_path;		/* the control socket, unlinked at stop */
	dev_t		 control_dev;		/* ... if the path is still that file */
	ino_t		 control_ino;

	/* records.c */
	struct summary	*sum;			/* the running period's per-zone summary */
	long		 sum_zone;		/* zone of the summary event being built, or -1 */
};

/* main.c */
int64_t	 now_ms(clockid_t);
/* Arm fd to fire after first_ms (0: at once), then every period_ms (0: once). */
void	 timer_set(int fd, int64_t first_ms, int64_t period_ms);

/* uplink.c */
int	 uplink_topics(struct topics *, const struct config *);
/* A new link for conf, its Will on t->status; not connected yet. */
int	 uplink_new(struct daemon *, const struct config *, const struct topics *,
	    struct mqtt **);
/* Can the running link serve b as it served a? */
bool	 uplink_same(const struct config *a, const struct config *b);
void	 uplink_try_connect(struct daemon *);
void	 uplink_sync(struct daemon *);
void	 uplink_pump(struct daemon *);
/* Say goodbye: a retained offline status, waited for at most 2 s, then disconnect. */
void	 uplink_goodbye(struct daemon *, void (*loop_once)(struct daemon *, int));
void	 uplink_status_online(struct daemon *);
void	 uplink_queue(struct daemon *, enum msg_kind, const char *topic, bool retain);
/*
 * Event e, its gw and seq filled in and its ts too when 0 (now), built in
 * d->jb and queued; a summary is left open for its quantities (payload.h),
 * then closed by the caller and queued with uplink_event_queue().
 */
void	 uplink_event(struct daemon *, struct payload_event *);
void	 uplink_event_queue(struct daemon *);
/* Close every window that has ended by wall time now, publish it, start the next. */
void	 uplink_window_roll(struct daemon *, int64_t now);
/* Publish the running window as it is (it ends early). */
void	 uplink_window_publish(struct daemon *);
void	 uplink_window_timer(struct daemon *);

/* sampling.c */
int	 sampling_open(struct daemon *, const struct config *, struct sensor_rt **);
/* Close rt's n sensors and free rt (a set not in use). */
void	 sampling_discard(struct sensor_rt *rt, size_t n);
/* Start the workers and event fds of the sensor set in use. */
void	 sampling_start(struct daemon *);
void	 sampling_stop(struct daemon *);
void	 sampling_run(struct daemon *);
void	 sampling_on_events(struct daemon *, size_t sensor);
void	 sampling_on_worker(struct daemon *, size_t worker);

/* outputs.c */
void	 outputs_open(struct daemon *, const struct config *, struct output_rt *);
void	 outputs_close(struct daemon *);
/* Drive every output from the alarms; with retry, open those that failed. */
void	 outputs_update(struct daemon *, bool retry);

/* alarmio.c */
/* A new engine for conf's rules (no alarms restored yet). */
int	 alarmio_new(struct daemon *, const struct config *, struct alarm_engine **);
/* The stored alarms into d->alarms (an engine for d->conf). */
void	 alarmio_restore(struct daemon *);
/* Persist and commit the transitions made since the last flush; outputs follow. */
void	 alarmio_flush(struct daemon *);
/* Every instance, with running timers and excursion time: at stop and reload. */
void	 alarmio_persist_all(struct daemon *);

/* control.c */
int	 control_open(struct daemon *, const char *dir);
void	 control_close(struct daemon *);
void	 control_on_readable(struct daemon *);
/* Carry out a command (from MQTT or the control socket); the reply goes into b. */
void	 control_command(struct daemon *, const char *name, const void *payload, size_t len,
	    const char *via, struct jbuf *b);

/* records.c */
/* An audit-trail row; b holds its detail, built by payload.c; b is freed. */
void	 records_audit(struct daemon *, enum payload_audit_kind, struct jbuf *b);
/* The configuration in force, by its file's hash: start or reload. */
void	 records_audit_config(struct daemon *, enum payload_audit_kind);
int	 records_summary_new(const struct config *, int64_t now, struct summary **);
/* The running period's readings so far, read back from the store into d->sum. */
void	 records_summary_replay(struct daemon *);
void	 records_summary_feed(struct daemon *, size_t sensor, enum quantity, double, int64_t);
/* Close the period if it has ended by now. */
void	 records_summary_tick(struct daemon *, int64_t now);

/* upkeep.c */
/* Wall clock minus monotonic clock: changes only when the wall clock is stepped. */
int64_t	 upkeep_clock_offset(void);
/* Has the wall clock been stepped since the last look?  Then say so and follow it. */
void	 upkeep_clock(struct daemon *);
/* Does the store take writes (again)?  Say so once, by event, alarm and status. */
void	 upkeep_store_health(struct daemon *);
void	 upkeep_store_space(struct daemon *);

#endif
