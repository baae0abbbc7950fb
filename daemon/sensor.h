/*
 * The sensor driver interface.  Each driver is one file in sensors/ whose
 * only external symbol is a const struct sensor_driver, listed in the table
 * in sensors/drivers.c.
 *
 * A read returns readings, or a negative errno that says what went wrong:
 * -EBADMSG bad CRC, -ERANGE implausible value, -ETIMEDOUT no answer,
 * -ENODEV gone.  A failed read never yields a reading.  Backoff and
 * complaints about repeated failures live in the core, not in drivers.
 */
#ifndef COLDGATE_SENSOR_H
#define COLDGATE_SENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "quantity.h"

#define SENSOR_MAX_READINGS 4

struct reading {
	enum quantity	q;
	double		value;
};

/* What a driver gets at each read. */
struct sensor_clock {
	int64_t		wall_ms;	/* CLOCK_REALTIME, epoch ms: the reading's ts */
	double		elapsed;	/* seconds since the daemon started (monotonic) */
};

/* A change a sensor reported as it happened (a door contact's edge). */
struct sensor_event {
	struct reading	r;
	int64_t		wall_ms;	/* when it happened: the kernel's timestamp */
};

struct sensor_driver {
	const char	*name;
	/* Make driver state for one configured sensor in *state.  -errno on failure. */
	int		(*open)(const struct config *, const struct sensor_cfg *, void **state);
	/* Fill out[0..max) and return the count, or a negative errno. */
	int		(*read)(void *state, const struct sensor_clock *, struct reading *out, size_t max);
	void		(*close)(void *state);	/* accepts NULL */
	/*
	 * Reads of this sensor can block (a 1-Wire conversion, a bus that
	 * times out): the core runs them on a worker thread, one per driver,
	 * never on the main loop.  NULL means never.
	 */
	bool		(*blocks)(const struct sensor_cfg *);
	/*
	 * Which bus a blocking sensor is on, as a name unique across drivers
	 * (its device node "/dev/i2c-1", "/dev/ttyUSB0"; "tcp:HOST"): sensors
	 * on one bus share a worker and are read one at a time, different
	 * buses in parallel.  NULL, or a NULL result: one worker for the
	 * whole driver.
	 */
	const char	*(*bus)(const struct sensor_cfg *);
	/*
	 * Sensors that report changes as they happen (a door contact).  The
	 * fd the loop waits on for reading; -1 or a NULL callback: none.
	 * events() is called when it is readable, on the main loop (it must
	 * not block): fill out[0..max) and return the count (0: nothing
	 * settled yet), or a negative errno.
	 */
	int		(*event_fd)(void *state);
	int		(*events)(void *state, struct sensor_event *out, size_t max);
	/*
	 * coldgatectl sensors --scan: look for attached devices of this kind
	 * (under conf's sysfs_root, on the I2C buses and serial lines conf
	 * names) and print a configuration snippet for each to out; lines
	 * that are not configuration start with "#".  The count found, or a
	 * negative errno.  NULL: the driver cannot scan.
	 */
	int		(*scan)(const struct config *, FILE *out);
	/* Seconds: never read faster than this, failed reads included (DHT: 2). 0: no limit. */
	double		 min_interval;

	/*
	 * Configuration.  kind: which block of struct sensor_cfg's union the
	 * driver uses.  keys: the keys of its sensor groups (config.h), a
	 * { NULL }-terminated table with fields relative to struct
	 * sensor_cfg; NULL: none.  config.c sets their defaults and parses
	 * them; then configure(), when set, parses the keys the table marks
	 * CFG_HOOK and checks what one key cannot (one that needs another).
	 * check_shared() is called for each of the driver's sensors once all
	 * are parsed, to check it against the ones before it (units on one
	 * serial line).  unconfigure() frees what configure() allocated.
	 * All three report through config_error() and may be NULL.
	 */
	enum sensor_kind kind;
	const struct cfg_key *keys;
	void		(*configure)(struct config_ctx *, struct sensor_cfg *);
	void		(*check_shared)(struct config_ctx *, const struct config *, size_t i);
	void		(*unconfigure)(struct sensor_cfg *);
};

/* For .blocks of drivers whose every read may block (sysfs reads that wait on the kernel). */
bool	 sensor_blocks_always(const struct sensor_cfg *);
/* For .bus of drivers on a device node (I2C, serial), or a TCP host: device, else "tcp:" host. */
const char *sensor_bus_of(const struct sensor_cfg *);

/* The driver of that name, or NULL. */
const struct sensor_driver *sensor_driver_find(const char *name);
/* The i-th driver of the table (0, 1, ...), or NULL past the end. */
const struct sensor_driver *sensor_driver_at(size_t i);

#endif
