/* The tables of sensor and output drivers: add a new driver's descriptor here. */
#include <stdio.h>
#include <string.h>

#include "config.h"

#include "output.h"
#include "sensor.h"

extern const struct sensor_driver sim_driver;
extern const struct sensor_driver ds18b20_driver;
extern const struct sensor_driver dht22_driver;
extern const struct sensor_driver dht11_driver;
extern const struct sensor_driver hwmon_driver;
extern const struct sensor_driver iio_driver;
extern const struct sensor_driver sht3x_driver;
extern const struct sensor_driver sht4x_driver;
extern const struct sensor_driver scd4x_driver;
extern const struct sensor_driver modbus_driver;
extern const struct sensor_driver gpio_contact_driver;
extern const struct output_driver gpio_output_driver;

static const struct sensor_driver *const drivers[] = {
	&sim_driver,
	&ds18b20_driver,
	&dht22_driver,
	&dht11_driver,
	&hwmon_driver,
	&iio_driver,
	&sht3x_driver,
	&sht4x_driver,
	&scd4x_driver,
	&modbus_driver,
	&gpio_contact_driver,
};

const struct sensor_driver *
sensor_driver_find(const char *name)
{
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (strcmp(drivers[i]->name, name) == 0)
			return drivers[i];
	return NULL;
}

const struct sensor_driver *
sensor_driver_at(size_t i)
{
	return i < sizeof(drivers) / sizeof(drivers[0]) ? drivers[i] : NULL;
}

bool
sensor_blocks_always(const struct sensor_cfg *sc)
{
	(void)sc;
	return true;
}

/* The output drivers, NULL-terminated. */
static const struct output_driver *const output_drivers[] = {
	&gpio_output_driver,
	NULL,
};

const struct output_driver *
output_driver_find(const char *name)
{
	for (size_t i = 0; output_drivers[i] != NULL; i++)
		if (strcmp(output_drivers[i]->name, name) == 0)
			return output_drivers[i];
	return NULL;
}

const struct output_driver *
output_driver_at(size_t i)
{
	return i < sizeof(output_drivers) / sizeof(output_drivers[0]) ? output_drivers[i] : NULL;
}

const char *
sensor_bus_of(const struct sensor_cfg *sc)
{
	static char tcp[300];	/* called on the main thread only (workers_start) */

	if (sensor_device(sc) != NULL)
		return sensor_device(sc);
	if (sc->kind != SENSOR_MODBUS || sc->modbus.host == NULL)
		return NULL;
	snprintf(tcp, sizeof(tcp), "tcp:%s", sc->modbus.host);
	return tcp;
}
