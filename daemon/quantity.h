/* The quantities coldgate measures and their units (SPEC §4), and the quality of a reading. */
#ifndef COLDGATE_QUANTITY_H
#define COLDGATE_QUANTITY_H

#include <stdbool.h>

enum quantity {
	Q_TEMPERATURE,		/* C */
	Q_HUMIDITY,		/* %RH */
	Q_CO2,			/* ppm */
	Q_DOOR,			/* 0 closed, 1 open */
	Q_COUNT
};

const char	*quantity_name(enum quantity);
const char	*quantity_unit(enum quantity);
/* Returns the quantity for a name, or -1. */
int		 quantity_from_name(const char *);
/* Within what any sensor of that quantity can report. */
bool		 quantity_plausible(enum quantity, double);
/* How far one read may jump before the spike filter wants it confirmed; 0: no filter. */
double		 quantity_spike_step(enum quantity);

/*
 * A reading's quality: ok, or why it was refused.  Refused readings are
 * kept in the store with their quality but never enter aggregates, alarms
 * or summaries.  The values are stored: do not renumber.
 */
enum quality {
	QUALITY_OK,
	QUALITY_CRC,		/* the frame's checksum was wrong */
	QUALITY_TIMEOUT,	/* no answer */
	QUALITY_RANGE,		/* outside what the sensor or quantity can give */
	QUALITY_GONE,		/* the device is not there */
	QUALITY_SPIKE,		/* one read jumped too far and was not confirmed */
	QUALITY_ERROR,		/* any other failure */
	QUALITY_COUNT
};

const char	*quality_name(enum quality);
/* The quality for a driver's negative errno (sensor.h's conventions). */
enum quality	 quality_of_error(int err);

#endif
