#include "quantity.h"

#include <string.h>

static const struct {
	const char *name, *unit;
} quantities[Q_COUNT] = {
	[Q_TEMPERATURE] = { "temperature", "C" },
	[Q_HUMIDITY] = { "humidity", "%RH" },
	[Q_CO2] = { "co2", "ppm" },
	[Q_DOOR] = { "door", "0/1" },
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
