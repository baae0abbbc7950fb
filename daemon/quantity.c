/*
 * The quantities, their units and what is plausible for them, and the
 * quality a reading carries.
 *
 * Plausibility limits are those of the widest parts coldgate reads: the
 * DS18B20's -55..125 C, relative humidity 0..100 %, and the SCD4x's
 * 0..40000 ppm CO2 range.  A value outside them is a broken sensor or a
 * garbled frame, not weather.
 *
 * The spike filter's step is how far one read may move from the previous
 * accepted one before it needs a second read to confirm it.  The steps are
 * several times what a cold room or a mushroom house does between two reads
 * even with the door wide open (a few C, some tens of %RH, a few thousand
 * ppm when people walk in), and far below a broken frame's jump.
 */
#include "quantity.h"

#include <errno.h>
#include <string.h>

static const struct {
	const char	*name, *unit;
	double		 min, max;	/* plausible */
	double		 step;		/* spike filter; 0 = none */
} quantities[Q_COUNT] = {
	[Q_TEMPERATURE] = { "temperature", "C", -55, 125, 10 },
	[Q_HUMIDITY] = { "humidity", "%RH", 0, 100, 40 },
	[Q_CO2] = { "co2", "ppm", 0, 40000, 10000 },
	[Q_DOOR] = { "door", "0/1", 0, 1, 0 },
};

static const char *const qualities[QUALITY_COUNT] = {
	[QUALITY_OK] = "ok",
	[QUALITY_CRC] = "crc",
	[QUALITY_TIMEOUT] = "timeout",
	[QUALITY_RANGE] = "range",
	[QUALITY_GONE] = "gone",
	[QUALITY_SPIKE] = "spike",
	[QUALITY_ERROR] = "error",
};

const char *
quantity_name(enum quantity q)
{
	return (unsigned)q < Q_COUNT ? quantities[q].name : "?";
}

const char *
quantity_unit(enum quantity q)
{
	return (unsigned)q < Q_COUNT ? quantities[q].unit : "?";
}

int
quantity_from_name(const char *s)
{
	for (int i = 0; i < Q_COUNT; i++)
		if (strcmp(s, quantities[i].name) == 0)
			return i;
	return -1;
}

bool
quantity_plausible(enum quantity q, double v)
{
	return (unsigned)q < Q_COUNT && v >= quantities[q].min && v <= quantities[q].max;
}

double
quantity_spike_step(enum quantity q)
{
	return (unsigned)q < Q_COUNT ? quantities[q].step : 0;
}

const char *
quality_name(enum quality k)
{
	return (unsigned)k < QUALITY_COUNT ? qualities[k] : "?";
}

enum quality
quality_of_error(int err)
{
	switch (err < 0 ? -err : err) {
	case EBADMSG:
		return QUALITY_CRC;
	case ETIMEDOUT:
		return QUALITY_TIMEOUT;
	case ERANGE:
		return QUALITY_RANGE;
	case ENODEV:
	case ENOENT:
	case ENXIO:
		return QUALITY_GONE;
	default:
		return QUALITY_ERROR;
	}
}
