/*
 * iio — any temperature, humidity or CO2 sensor the kernel exposes through
 * the Industrial I/O subsystem: Bosch BME280/BME680 (bmp280, bme680
 * drivers), TE HTU21, TI HDC100x/HDC2010, Silicon Labs Si7020, Sensirion
 * SCD30/SCD4x, Senseair Sunrise, Winsen MH-Z19B, and the like, on I2C or a
 * serial line with the kernel driver bound by a device-tree overlay
 * (dtoverlay=i2c-sensor,bme280).  Sensirion SHT3x/SHT4x and Aosong AHT20
 * have hwmon drivers instead: driver "hwmon".  DHT11/DHT22 are IIO devices
 * too but have their own drivers ("dht22", "dht11").
 *
 * Kernel interface, from gateway.sysfs_root (normally /sys), as
 * Documentation/ABI/testing/sysfs-bus-iio describes it:
 *
 *   bus/iio/devices/iio:deviceN/name   the part, e.g. "bme280", "scd41"
 *
 * (scd4x and scd30 take the name from the device tree's compatible:
 * "scd40" or "scd41", "scd30"; the name is what the scan prints)
 *
 * and in that directory, for each quantity, either the processed value
 *
 *   in_temp_input                  m C
 *   in_humidityrelative_input      m %RH
 *   in_concentration_co2_input     CO2, see below
 *
 * or the raw value, an offset (default 0) and a scale (default 1):
 *
 *   in_temp_raw, in_temp_offset, in_temp_scale
 *   in_humidityrelative_raw, in_humidityrelative_offset, _scale
 *   in_concentration_co2_raw, in_concentration_co2_offset, _scale
 *     (or in_concentration_offset, _scale when shared by the type)
 *
 *   value = (raw + offset) * scale, in m C, m %RH, or percent for CO2.
 *
 * The kernel prints decimal fixed point ("21375", "-16852.114286",
 * "2.670288085", "92773.437500000"); the values are read as exact decimals
 * and rounded once, so 812 ppm stays 812, not 812.0000000000001.
 *
 * CO2.  The ABI makes a concentration percent after offset and scale, and
 * the drivers with a raw channel follow it: scd4x gives ppm with a scale
 * of 0.000100, scd30 ppm x 100 with 0.000001, sunrise ppm with 1/10000.
 * So ppm = (raw + offset) * scale * 10000.  A raw channel without a scale
 * is ppm (mhz19b).  in_concentration_co2_input is not in the ABI; the two
 * drivers that have it (sgp30, ams-iaq-core) print ppm as micro units,
 * "0.000400" for 400 ppm, so ppm = input * 1000000.  Read as percent that
 * would be 4 ppm, silently; the other way round, a driver that one day
 * prints percent there reads 100 times high and is refused as out of
 * range for anything above 400 ppm, loudly.  Those two parts are
 * metal-oxide gas sensors: their CO2 is an estimate from VOCs, not an
 * NDIR measurement, and no basis for ventilating a mushroom house.
 *
 * device is the content of the name file, not iio:deviceN: the numbers
 * follow probe order and change across reboots and replugs.  open() looks
 * nothing up, so a device that appears later is found.  A read looks for
 * the iio:device* directory whose name says device and keeps it while its
 * name file still says so; when it does not (gone, or the number taken by
 * another part), the read looks again.  Two devices of that name when it
 * looks -> -ENOTUNIQ: reading whichever came first could swap two rooms
 * after a reboot (a second one that appears while the first is held is
 * noticed when the first goes).  Triggers (bus/iio/devices/trigger*) are
 * not devices, whatever their names.
 *
 * A read gives every quantity the device has, in the order temperature,
 * humidity, CO2: between one and three readings.  Plausibility: -55..125
 * C, 0..100 %RH, 0..40000 ppm, for every part.
 *
 * Timing: each file read makes the kernel driver talk to the part: a few
 * ms to tens of ms for most, but the SCD30/SCD4x drivers wait for a fresh
 * measurement at every channel read (2 s and 5 s periods), so reading the
 * three channels of an SCD4x can take 15 s: give it an interval of 30 s or
 * more, or use coldgate's own "scd4x" I2C driver.  The files are opened,
 * read and closed at each read.
 *
 * Errors: no device of that name, or one with none of the channels above
 * (a light or pressure sensor: the name is wrong) -> -ENODEV; two devices
 * of that name -> -ENOTUNIQ; a channel file that fails to read (EIO,
 * ETIMEDOUT when the part does not answer, EBUSY while an SGP30 warms up)
 * or does not hold a decimal number -> -EIO for the whole read; the device
 * gone during the read -> -ENODEV; a value outside the limits -> -ERANGE.
 *
 * Scan: every iio:device* but dht11 (the "dht22" driver lists those) in
 * version order, with the quantities it has and, for each that has any, a
 * snippet with id "iio-" + name.  Two devices of one name are listed as
 * unreadable.  Nothing is read: an SCD4x would take seconds per file.
 *
 * Configuration keys (iioc_keys, at the bottom): device, the IIO device's
 * name, required.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "sensor.h"
#include "sysfs.h"

#define IIO_PREFIX	"iio:device"
#define IIO_MAX_DIGITS	18		/* significant digits an int64_t holds */

/* One quantity: its files and how their values become the reading's unit. */
struct iio_chan {
	enum quantity	 q;
	const char	*label;		/* in scan output */
	const char	*input;
	const char	*raw;
	const char	*offset[2];	/* the channel's own, then the type's; NULL: none */
	const char	*scale[2];
	int		 exp_input;	/* unit = input * 10^exp_input */
	int		 exp_scaled;	/* unit = (raw + offset) * scale * 10^exp_scaled */
	int		 exp_bare;	/* unit = (raw + offset) * 10^exp_bare, no scale file */
	double		 min, max;
};

static const struct iio_chan iio_chans[] = {
	{ Q_TEMPERATURE, "temperature", "in_temp_input", "in_temp_raw",
	  { "in_temp_offset", NULL }, { "in_temp_scale", NULL },
	  -3, -3, -3, -55, 125 },
	{ Q_HUMIDITY, "humidity", "in_humidityrelative_input", "in_humidityrelative_raw",
	  { "in_humidityrelative_offset", NULL }, { "in_humidityrelative_scale", NULL },
	  -3, -3, -3, 0, 100 },
	{ Q_CO2, "co2", "in_concentration_co2_input", "in_concentration_co2_raw",
	  { "in_concentration_co2_offset", "in_concentration_offset" },
	  { "in_concentration_co2_scale", "in_concentration_scale" },
	  6, 4, 0, 0, 40000 },
};

#define IIO_NCHANS	(sizeof(iio_chans) / sizeof(iio_chans[0]))

/* A decimal as the kernel prints it: m * 10^e. */
struct iio_num {
	int64_t	m;
	int	e;
};

struct iioc {
	char	*devices;	/* {root}/bus/iio/devices */
	char	*name;		/* what the name file must say */
	char	*dir;		/* devices/iio:deviceN, or NULL when not found */
};

static const int64_t iio_pow10[IIO_MAX_DIGITS + 1] = {
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
	1000000000, 10000000000, 100000000000, 1000000000000, 10000000000000,
	100000000000000, 1000000000000000, 10000000000000000, 100000000000000000,
	1000000000000000000,
};

/*
 * Parse a decimal: an optional '-', digits, optionally '.' and digits,
 * nothing else.  At most IIO_MAX_DIGITS significant digits.  0 or -EIO.
 */
static int
iio_parse(const char *s, struct iio_num *v)
{
	int neg = 0, sig = 0, frac = -1, any = 0;
	int64_t m = 0;

	if (*s == '-') {
		neg = 1;
		s++;
	}
	for (;; s++) {
		if (*s == '.' && frac < 0 && any) {
			frac = 0;
			continue;
		}
		if (*s < '0' || *s > '9')
			break;
		any = 1;
		if (frac >= 0)
			frac++;
		if (m == 0 && *s == '0')
			continue;
		if (++sig > IIO_MAX_DIGITS)
			return -EIO;
		m = m * 10 + (*s - '0');
	}
	if (*s != '\0' || !any || frac == 0)
		return -EIO;
	v->m = neg ? -m : m;
	v->e = frac > 0 ? -frac : 0;
	return 0;
}

/* dir/file as a decimal: 0, -ENOENT when absent, -EIO otherwise. */
static int
iio_read_num(const char *dir, const char *file, struct iio_num *v)
{
	char path[PATH_MAX], buf[64];
	int rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -EIO;
	/* -ENODEV too: the name check after the reads tells a device gone. */
	if ((rc = sysfs_read_text(path, buf, sizeof(buf))) < 0)
		return rc == -ENOENT ? -ENOENT : -EIO;
	return iio_parse(buf, v);
}

/* The first of names (NULL-terminated, at most 2) present in dir. */
static int
iio_read_first(const char *dir, const char *const names[2], struct iio_num *v)
{
	int rc = -ENOENT;

	for (size_t i = 0; i < 2 && names[i] != NULL && rc == -ENOENT; i++)
		rc = iio_read_num(dir, names[i], v);
	return rc;
}

/* a + b exactly.  0, or -EIO when it does not fit. */
static int
iio_add(struct iio_num a, struct iio_num b, struct iio_num *sum)
{
	int e = a.e < b.e ? a.e : b.e;
	int64_t ma, mb;

	if (a.e - e > IIO_MAX_DIGITS || b.e - e > IIO_MAX_DIGITS ||
	    __builtin_mul_overflow(a.m, iio_pow10[a.e - e], &ma) ||
	    __builtin_mul_overflow(b.m, iio_pow10[b.e - e], &mb) ||
	    __builtin_add_overflow(ma, mb, &sum->m))
		return -EIO;
	sum->e = e;
	return 0;
}

/*
 * v * 10^e.  One rounding when v is an integer below 2^53 and |e| <= 22
 * (powers of ten up to 1e22 are exact doubles), so 92773437500000e-12
 * is exactly 92.7734375.
 */
static double
iio_shift(double v, int e)
{
	double p = 1;

	for (int i = 0; i < (e < 0 ? -e : e); i++)
		p *= 10;
	return e < 0 ? v / p : v * p;
}

/* One channel in its reading's unit: 0, -ENOENT when the device lacks it, -EIO. */
static int
iio_read_chan(const char *dir, const struct iio_chan *c, double *out)
{
	struct iio_num v, off = { 0, 0 }, scale, sum;
	int rc;

	if ((rc = iio_read_num(dir, c->input, &v)) == 0) {
		*out = iio_shift((double)v.m, v.e + c->exp_input);
		return 0;
	}
	if (rc != -ENOENT)
		return rc;
	if ((rc = iio_read_num(dir, c->raw, &v)) < 0)
		return rc;
	if ((rc = iio_read_first(dir, c->offset, &off)) < 0 && rc != -ENOENT)
		return rc;
	if (iio_add(v, off, &sum) < 0)
		return -EIO;
	if ((rc = iio_read_first(dir, c->scale, &scale)) == 0)
		*out = iio_shift((double)sum.m * (double)scale.m,
		    sum.e + scale.e + c->exp_scaled);
	else if (rc == -ENOENT)
		*out = iio_shift((double)sum.m, sum.e + c->exp_bare);
	else
		return rc;
	return 0;
}

/* Look for the one device named s->name; sets s->dir.  0 or -errno. */
static int
iio_find(struct iioc *s)
{
	char path[PATH_MAX], found[NAME_MAX + 1] = "";
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	free(s->dir);
	s->dir = NULL;
	if ((d = opendir(s->devices)) == NULL)
		return -ENODEV;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, IIO_PREFIX, strlen(IIO_PREFIX)) != 0)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", s->devices, de->d_name) >=
		    sizeof(path))
			continue;
		if (sysfs_name_is(path, s->name) && n++ == 0)
			snprintf(found, sizeof(found), "%s", de->d_name);
	}
	closedir(d);
	if (n == 0)
		return -ENODEV;
	if (n > 1)
		return -ENOTUNIQ;
	if (asprintf(&s->dir, "%s/%s", s->devices, found) < 0) {
		s->dir = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void
iioc_close(void *state)
{
	struct iioc *s = state;

	if (s == NULL)
		return;
	free(s->devices);
	free(s->name);
	free(s->dir);
	free(s);
}

static int
iioc_open(const struct config *conf, const struct sensor_cfg *sc, void **state)
{
	const char *root = conf->gateway.sysfs_root ? conf->gateway.sysfs_root : "/sys";
	struct iioc *s;

	if (sc->dev.device == NULL || *sc->dev.device == '\0' || strchr(sc->dev.device, '\n') != NULL)
		return -EINVAL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	if (asprintf(&s->devices, "%s/bus/iio/devices", root) < 0)
		s->devices = NULL;
	if (s->devices == NULL || (s->name = strdup(sc->dev.device)) == NULL) {
		iioc_close(s);
		return -ENOMEM;
	}
	*state = s;
	return 0;
}

static int
iioc_read(void *state, const struct sensor_clock *clk, struct reading *out, size_t max)
{
	struct iioc *s = state;
	struct reading r[IIO_NCHANS];
	int rc, err = 0, erange = 0;
	size_t n = 0;
	double v = 0;

	(void)clk;
	if (s->dir == NULL || !sysfs_name_is(s->dir, s->name))
		if ((rc = iio_find(s)) < 0)
			return rc;
	for (size_t i = 0; i < IIO_NCHANS && err == 0; i++) {
		const struct iio_chan *c = &iio_chans[i];

		if ((rc = iio_read_chan(s->dir, c, &v)) == -ENOENT)
			continue;
		if (rc < 0)
			err = rc;
		else if (!(v >= c->min && v <= c->max))
			erange = 1;
		else
			r[n++] = (struct reading){ c->q, v };
	}
	/*
	 * A device unplugged under the reads leaves files missing, which
	 * would pass for an absent offset or scale: the values count only
	 * if the name still says ours.
	 */
	if (!sysfs_name_is(s->dir, s->name))
		return -ENODEV;
	if (err < 0)
		return err;
	if (erange)
		return -ERANGE;
	if (n == 0)
		return -ENODEV;
	if (n > max)
		return -ENOBUFS;
	memcpy(out, r, n * sizeof(r[0]));
	return (int)n;
}

static int
iio_filter(const struct dirent *de)
{
	return strncmp(de->d_name, IIO_PREFIX, strlen(IIO_PREFIX)) == 0;
}

/* Print what dev (named name) has; true when it has any quantity of ours. */
static int
iio_scan_one(FILE *out, const char *devices, const char *dev, const char *name)
{
	char dir[PATH_MAX];
	size_t nq = 0;

	fprintf(out, "# %s: %s:", dev, name);
	if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", devices, dev) < sizeof(dir))
		for (size_t k = 0; k < IIO_NCHANS; k++)
			if (sysfs_has(dir, iio_chans[k].input) || sysfs_has(dir, iio_chans[k].raw))
				fprintf(out, "%s %s", nq++ ? "," : "", iio_chans[k].label);
	if (nq == 0)
		fprintf(out, " no temperature, humidity or CO2 channel\n");
	return nq > 0;
}

/* Every IIO device but dht11, its quantities, a snippet for each that has any. */
static int
iioc_scan(const struct config *conf, FILE *out)
{
	const char *root = conf != NULL && conf->gateway.sysfs_root != NULL ?
	    conf->gateway.sysfs_root : "/sys";
	char devices[PATH_MAX], path[PATH_MAX], id[CONFIG_ID_MAX + 1];
	struct dirent **de;
	char (*names)[128];
	int n, found = 0;

	if ((size_t)snprintf(devices, sizeof(devices), "%s/bus/iio/devices", root) >=
	    sizeof(devices))
		return -ENAMETOOLONG;
	if ((n = scandir(devices, &de, iio_filter, versionsort)) < 0) {
		fprintf(out, "# no IIO devices: %s: %s\n", devices, strerror(errno));
		return 0;
	}
	if ((names = calloc((size_t)n + 1, sizeof(*names))) == NULL) {
		found = -ENOMEM;
		goto out_free;
	}
	for (int i = 0; i < n; i++)
		if ((size_t)snprintf(path, sizeof(path), "%s/%s/name", devices,
		    de[i]->d_name) >= sizeof(path) ||
		    sysfs_read_text(path, names[i], sizeof(names[i])) < 0)
			names[i][0] = '\0';
	for (int i = 0; i < n; i++) {
		const char *dev = de[i]->d_name, *name = names[i];
		int twin = -1;

		/* No name: nothing to configure it by; dht11: the dht22 driver's. */
		if (name[0] == '\0' || strcmp(name, "dht11") == 0)
			continue;
		if (!sysfs_name_printable(name)) {
			fprintf(out, "# %s: a name no configuration can hold\n", dev);
			continue;
		}
		if (!iio_scan_one(out, devices, dev, name))
			continue;
		for (int j = 0; j < n && twin < 0; j++)
			if (j != i && strcmp(names[j], name) == 0)
				twin = j;
		if (twin >= 0)
			fprintf(out, "; %s has the same name: the iio driver reads neither\n",
			    de[twin]->d_name);
		else {
			sysfs_scan_id(id, sizeof(id), "iio-", name);
			fprintf(out, "\n{ id = \"%s\"; zone = \"CHANGE-ME\"; driver = \"iio\"; "
			    "device = \"%s\"; interval = 10; },\n", id, name);
			found++;
		}
	}
	fprintf(out, "# %d IIO device%s with temperature, humidity or CO2 (DHTs: driver dht22)\n",
	    found, found == 1 ? "" : "s");
	free(names);
out_free:
	for (int i = 0; i < n; i++)
		free(de[i]);
	free(de);
	return found;
}

/* Configuration: the IIO device's name, which the driver cannot do without. */
static const struct cfg_key iioc_keys[] = {
	{ "device", CFG_STRING, CFG_FIELD(struct sensor_cfg, dev.device), .required = true },
	{ .name = NULL },
};

const struct sensor_driver iio_driver = {
	.name = "iio",
	.open = iioc_open,
	.read = iioc_read,
	.close = iioc_close,
	.blocks = sensor_blocks_always,	/* the chip drivers talk to the bus while we wait */
	.scan = iioc_scan,
	.kind = SENSOR_DEVICE,
	.keys = iioc_keys,
};
