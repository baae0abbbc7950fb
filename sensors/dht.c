/*
 * dht22, dht11 — Aosong DHT22 (AM2302) and DHT11 temperature and humidity
 * sensors, through the kernel's IIO dht11 driver.
 *
 * Device: a one-wire-ish proprietary protocol on one GPIO (dtoverlay=dht11,
 * gpiopin=N).  The kernel bit-bangs it and decodes the 40-bit frame; both
 * parts use the same kernel driver, which tells them apart by the frame.
 * DHT22: -40..80 C, 0..100 %RH, 0.1 resolution.  DHT11: 0..50 C, 20..90 %RH,
 * 1 C / 1 %RH.  Both descriptors share this code and the plausibility
 * limits -40..80 C and 0..100 %RH.
 *
 * Kernel interface, from gateway.sysfs_root (normally /sys):
 *
 *   bus/iio/devices/{device}/in_temp_input              m C, one integer
 *   bus/iio/devices/{device}/in_humidityrelative_input  m %RH, one integer
 *
 * device names the IIO directory, e.g. "iio:device0".
 *
 * Timing: the kernel driver re-reads the sensor when its last frame is
 * older than about 2 s, and a read takes some tens of ms.  Reads fail now
 * and then with EIO or ETIMEDOUT (a bad checksum, a missed edge): that is
 * normal for these parts.  The driver does not sleep or retry; the core
 * retries with backoff (no faster than every 2 s for these parts).  The
 * files are opened, read and closed at each read.
 *
 * Errors: the device directory gone -> -ENODEV; any failure to read either
 * file (missing file, EIO, ETIMEDOUT, a directory where the file should be)
 * or a garbled value -> -EIO; a value outside the limits -> -ERANGE.
 *
 * Two readings: Q_TEMPERATURE in degrees C and Q_HUMIDITY in %RH.
 *
 * Scan (dht22_driver only, as the kernel cannot tell the parts apart
 * before it reads one): every bus/iio/devices/iio:deviceN whose name file
 * says "dht11", the kernel driver's name for both, with a dht22 snippet
 * and a note that DHT11 parts want driver "dht11".
 *
 * Configuration keys (dht_keys, at the bottom, for both parts): device, the
 * IIO directory, required.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "sensor.h"
#include "sysfs.h"

#define DHT_TEMP_MIN_MC	(-40000)
#define DHT_TEMP_MAX_MC	80000
#define DHT_RH_MIN_M	0
#define DHT_RH_MAX_M	100000

struct dht {
	char	*dir;		/* {root}/bus/iio/devices/{device} */
	char	*temp;		/* dir/in_temp_input */
	char	*rh;		/* dir/in_humidityrelative_input */
};

/*
 * Read one integer attribute: 0 and *v, or -EIO for any failure to open,
 * read or parse (strictly: an optional sign, digits, an optional newline).
 */
static int
dht_read_int(const char *path, long *v)
{
	char buf[64], *e;

	if (sysfs_read_text(path, buf, sizeof(buf)) < 0)
		return -EIO;
	if (!(buf[0] == '-' || (buf[0] >= '0' && buf[0] <= '9')))
		return -EIO;
	errno = 0;
	*v = strtol(buf, &e, 10);
	if (errno != 0 || e == buf || *v < INT_MIN || *v > INT_MAX)
		return -EIO;
	return *e == '\0' ? 0 : -EIO;
}

static int
dht_open(const struct config *conf, const struct sensor_cfg *sc, void **state)
{
	const char *root = conf->gateway.sysfs_root ? conf->gateway.sysfs_root : "/sys";
	const char *dev = sc->dev.device;
	struct dht *d;

	if (dev == NULL || *dev == '\0' || strchr(dev, '/') != NULL ||
	    strcmp(dev, ".") == 0 || strcmp(dev, "..") == 0)
		return -EINVAL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return -ENOMEM;
	if (asprintf(&d->dir, "%s/bus/iio/devices/%s", root, dev) < 0)
		d->dir = NULL;
	else if (asprintf(&d->temp, "%s/in_temp_input", d->dir) < 0)
		d->temp = NULL;
	else if (asprintf(&d->rh, "%s/in_humidityrelative_input", d->dir) < 0)
		d->rh = NULL;
	if (d->rh == NULL) {
		free(d->temp);
		free(d->dir);
		free(d);
		return -ENOMEM;
	}
	*state = d;
	return 0;
}

static int
dht_read(void *state, const struct sensor_clock *clk, struct reading *out, size_t max)
{
	struct dht *d = state;
	struct stat st;
	long mc, mrh;

	(void)clk;
	if (max < 2)
		return -ENOBUFS;
	if (dht_read_int(d->temp, &mc) < 0 || dht_read_int(d->rh, &mrh) < 0)
		return stat(d->dir, &st) < 0 || !S_ISDIR(st.st_mode) ? -ENODEV : -EIO;
	if (mc < DHT_TEMP_MIN_MC || mc > DHT_TEMP_MAX_MC ||
	    mrh < DHT_RH_MIN_M || mrh > DHT_RH_MAX_M)
		return -ERANGE;
	out[0] = (struct reading){ Q_TEMPERATURE, (double)mc / 1000.0 };
	out[1] = (struct reading){ Q_HUMIDITY, (double)mrh / 1000.0 };
	return 2;
}

static void
dht_close(void *state)
{
	struct dht *d = state;

	if (d == NULL)
		return;
	free(d->dir);
	free(d->temp);
	free(d->rh);
	free(d);
}

static int
dht_filter(const struct dirent *de)
{
	return strncmp(de->d_name, "iio:device", 10) == 0;
}

/* Every IIO device of the kernel's dht11 driver, a dht22 snippet for each. */
static int
dht_scan(const struct config *conf, FILE *out)
{
	const char *root = conf != NULL && conf->gateway.sysfs_root != NULL ?
	    conf->gateway.sysfs_root : "/sys";
	char devices[PATH_MAX], path[PATH_MAX], name[64];
	struct dirent **de;
	int n, found = 0;

	if ((size_t)snprintf(devices, sizeof(devices), "%s/bus/iio/devices", root) >=
	    sizeof(devices))
		return -ENAMETOOLONG;
	if ((n = scandir(devices, &de, dht_filter, versionsort)) < 0) {
		fprintf(out, "# no IIO devices: %s: %s\n", devices, strerror(errno));
		return 0;
	}
	for (int i = 0; i < n; i++) {
		const char *dev = de[i]->d_name;

		if ((size_t)snprintf(path, sizeof(path), "%s/%s/name", devices, dev) >=
		    sizeof(path) || sysfs_read_text(path, name, sizeof(name)) < 0 ||
		    strcmp(name, "dht11") != 0)
			continue;
		fprintf(out, "# %s: dht11 (the kernel's name for DHT11 and DHT22); "
		    "a DHT11 part wants driver = \"dht11\"\n", dev);
		fprintf(out, "{ id = \"dht-%s\"; zone = \"CHANGE-ME\"; driver = \"dht22\"; "
		    "device = \"%s\"; interval = 10; },\n", dev + 10, dev);
		found++;
	}
	fprintf(out, "# %d DHT sensor%s (dtoverlay=dht11,gpiopin=N)%s\n", found,
	    found == 1 ? "" : "s", found > 0 ?
	    "; iio:deviceN numbers change when other IIO devices come or go" : "");
	for (int i = 0; i < n; i++)
		free(de[i]);
	free(de);
	return found;
}

/* Configuration: the IIO directory, for both parts, which the driver cannot do without. */
static const struct cfg_key dht_keys[] = {
	{ "device", CFG_STRING, CFG_FIELD(struct sensor_cfg, dev.device), .required = true },
	{ .name = NULL },
};

const struct sensor_driver dht22_driver = {
	.name = "dht22",
	.open = dht_open,
	.read = dht_read,
	.close = dht_close,
	.blocks = sensor_blocks_always,	/* the kernel bit-bangs the frame while we wait */
	.scan = dht_scan,		/* lists DHT11 parts too: one kernel driver */
	.min_interval = 2.0,		/* the parts need 2 s between measurements */
	.kind = SENSOR_DEVICE,
	.keys = dht_keys,
};

const struct sensor_driver dht11_driver = {
	.name = "dht11",
	.open = dht_open,
	.read = dht_read,
	.close = dht_close,
	.blocks = sensor_blocks_always,	/* the kernel bit-bangs the frame while we wait */
	.min_interval = 2.0,		/* the parts need 2 s between measurements */
	.kind = SENSOR_DEVICE,
	.keys = dht_keys,
};
