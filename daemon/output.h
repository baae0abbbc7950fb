/*
 * The local output interface: a buzzer, a relay or a warning lamp that the
 * alarm engine drives (SPEC §6 "Local outputs").  Like sensor drivers, each
 * output driver is a const struct output_driver listed in the table in
 * sensors/drivers.c.
 *
 * An output is "on" or "off" in the logical sense (on = sounding, lit,
 * energised); the driver turns that into a line level with active_low.
 * open() puts the output in its safe state (off) before it returns, and
 * close() puts it back to off before it lets go: a daemon that stops, is
 * reloaded or crashes out through close() never leaves a buzzer sounding
 * because of a state it no longer tracks.
 */
#ifndef COLDGATE_OUTPUT_H
#define COLDGATE_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

struct cfg_key;
struct config;
struct output_cfg;

struct output_driver {
	const char	*name;
	/* Take the line, set it off; driver state in *state.  -errno on failure. */
	int		(*open)(const struct config *, const struct output_cfg *, void **state);
	/* Drive it: 0 or -errno. */
	int		(*set)(void *state, bool on);
	/* Off, then release; accepts NULL. */
	void		(*close)(void *state);

	/*
	 * Configuration: the keys of its output groups beyond id, driver,
	 * role, severity and zones, which every output has -- a { NULL
	 * }-terminated table (config.h struct cfg_key) with fields relative
	 * to struct output_cfg; NULL: none.  config.c sets their defaults
	 * and parses them as it does a sensor driver's (sensor.h .keys).
	 */
	const struct cfg_key *keys;
};

/* The output driver of that name, or NULL. */
const struct output_driver *output_driver_find(const char *name);
/* The i-th output driver of the table (0, 1, ...), or NULL past the end. */
const struct output_driver *output_driver_at(size_t i);

#endif
