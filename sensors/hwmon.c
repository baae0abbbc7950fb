/*
 * hwmon — any temperature/humidity sensor the kernel exposes through the
 * hwmon class: Sensirion SHT3x/SHT4x, Bosch BME280 (through its hwmon
 * shim), and the like, usually on I2C with a kernel driver bound by a
 * device-tree overlay (dtoverlay=i2c-sensor,sht3x).
 *
 * Kernel interface, from gateway.sysfs_root (normally /sys):
 *
 *   class/hwmon/hwmonN/name             the chip driver's name, e.g. "sht3x"
 *   class/hwmon/hwmonN/temp1_input      m C, one integer
 *   class/hwmon/hwmonN/humidity1_input  m %RH, one integer
 *
 * device is the content of the name file, not hwmonN: the numbers follow
 * probe order and change when a device is unplugged and comes back.  The
 * directory is looked up at open (the first match in version order:
 * hwmon2 before hwmon10), and each read checks that its name file still
 * says device; when it does not (gone, or the number now belongs to
 * another chip) the driver looks again, so a device that disappears and
 * returns is found again.  With two chips of the same name the first one
 * wins: give such a chip one of its own or use another driver.
 *
 * A read reports temp1_input and humidity1_input when present; at least
 * one must be.  Plausibility: -55..125 C, 0..100 %RH.
 *
 * Timing: the chip drivers measure on demand or cache for about a second;
 * a read takes at most some tens of ms.  Files are opened, read and closed
 * at each read.
 *
 * Errors: no hwmon of that name -> -ENODEV; no input file, an unreadable
 * file or a garbled value -> -EIO; a value outside the limits -> -ERANGE.
 *
 * Readings: Q_TEMPERATURE in degrees C and/or Q_HUMIDITY in %RH.
 *
 * Scan: every class/hwmon/hwmonN in version order, its name and which of
 * temp1_input and humidity1_input it has, and a snippet with id
 * "hwmon-" + name for each that has either.  A second device of a name is
 * listed as one this driver cannot reach.  The SoC's own sensors
 * (cpu_thermal) are listed like any other: leave them out of a zone.
 *
 * Configuration keys (hwmon_keys, at the bottom): device, the chip's hwmon
 * name, required.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "sensor.h"
#include "sysfs.h"

#define HW_TEMP_MIN_MC	(-55000)
#define HW_TEMP_MAX_MC	125000
#define HW_RH_MIN_M	0
#define HW_RH_MAX_M	100000

struct hwmon {
	char	*class;		/* {root}/class/hwmon */
	char	*name;		/* what the name file must say */
	char	*dir;		/* class/hwmonN, or NULL when not found */
};

/* Look for the hwmon named h->name; sets h->dir (or NULL). -ENOMEM or 0. */
static int
hw_scan(struct hwmon *h)
{
	char path[PATH_MAX], best[NAME_MAX + 1] = "";
	struct dirent *de;
	DIR *d;

	free(h->dir);
	h->dir = NULL;
	if ((d = opendir(h->class)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", h->class, de->d_name) >=
		    sizeof(path))
			continue;
		if (!sysfs_name_is(path, h->name))
			continue;
		if (best[0] == '\0' || strverscmp(de->d_name, best) < 0)
			snprintf(best, sizeof(best), "%s", de->d_name);
	}
	closedir(d);
	if (best[0] != '\0' && asprintf(&h->dir, "%s/%s", h->class, best) < 0) {
		h->dir = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* dir/file as an integer: 0, -ENOENT when absent, -EIO otherwise. */
static int
hw_read_int(const char *dir, const char *file, long *v)
{
	char path[PATH_MAX], buf[64], *e;
	int rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -EIO;
	if ((rc = sysfs_read_text(path, buf, sizeof(buf))) < 0)
		return rc == -ENOENT ? -ENOENT : -EIO;
	if (!(buf[0] == '-' || (buf[0] >= '0' && buf[0] <= '9')))
		return -EIO;
	errno = 0;
	*v = strtol(buf, &e, 10);
	if (errno != 0 || e == buf || *e != '\0' || *v < INT_MIN || *v > INT_MAX)
		return -EIO;
	return 0;
}

static int
hwmon_open(const struct config *conf, const struct sensor_cfg *sc, void **state)
{
	const char *root = conf->gateway.sysfs_root ? conf->gateway.sysfs_root : "/sys";
	struct hwmon *h;

	if (sc->dev.device == NULL || *sc->dev.device == '\0' || strchr(sc->dev.device, '\n') != NULL)
		return -EINVAL;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return -ENOMEM;
	if (asprintf(&h->class, "%s/class/hwmon", root) < 0)
		h->class = NULL;
	if (h->class != NULL && (h->name = strdup(sc->dev.device)) != NULL &&
	    hw_scan(h) == 0) {
		*state = h;
		return 0;
	}
	free(h->name);
	free(h->class);
	free(h);
	return -ENOMEM;
}

static int
hwmon_read(void *state, const struct sensor_clock *clk, struct reading *out, size_t max)
{
	struct hwmon *h = state;
	long mc, mrh;
	int rt, rh, rc;
	size_t n = 0;

	(void)clk;
	if (max < 2)
		return -ENOBUFS;
	if (h->dir == NULL || !sysfs_name_is(h->dir, h->name))
		if ((rc = hw_scan(h)) < 0)
			return rc;
	if (h->dir == NULL)
		return -ENODEV;
	rt = hw_read_int(h->dir, "temp1_input", &mc);
	rh = hw_read_int(h->dir, "humidity1_input", &mrh);
	if (rt == -ENOENT && rh == -ENOENT)	/* gone since the name check? */
		return sysfs_name_is(h->dir, h->name) ? -EIO : -ENODEV;
	if (rt == -EIO || rh == -EIO)
		return -EIO;
	if ((rt == 0 && (mc < HW_TEMP_MIN_MC || mc > HW_TEMP_MAX_MC)) ||
	    (rh == 0 && (mrh < HW_RH_MIN_M || mrh > HW_RH_MAX_M)))
		return -ERANGE;
	if (rt == 0)
		out[n++] = (struct reading){ Q_TEMPERATURE, (double)mc / 1000.0 };
	if (rh == 0)
		out[n++] = (struct reading){ Q_HUMIDITY, (double)mrh / 1000.0 };
	return (int)n;
}

static void
hwmon_close(void *state)
{
	struct hwmon *h = state;

	if (h == NULL)
		return;
	free(h->class);
	free(h->name);
	free(h->dir);
	free(h);
}

static int
hw_filter(const struct dirent *de)
{
	return strncmp(de->d_name, "hwmon", 5) == 0;
}

/* Every hwmon device with a temperature or humidity input, a snippet for each. */
static int
hwmon_scan(const struct config *conf, FILE *out)
{
	const char *root = conf != NULL && conf->gateway.sysfs_root != NULL ?
	    conf->gateway.sysfs_root : "/sys";
	char class[PATH_MAX], dir[PATH_MAX], id[CONFIG_ID_MAX + 1];
	struct dirent **de;
	char (*names)[128];
	int n, found = 0;

	if ((size_t)snprintf(class, sizeof(class), "%s/class/hwmon", root) >= sizeof(class))
		return -ENAMETOOLONG;
	if ((n = scandir(class, &de, hw_filter, versionsort)) < 0) {
		fprintf(out, "# no hwmon devices: %s: %s\n", class, strerror(errno));
		return 0;
	}
	if ((names = calloc((size_t)n + 1, sizeof(*names))) == NULL) {
		found = -ENOMEM;
		goto out_free;
	}
	for (int i = 0; i < n; i++)
		if ((size_t)snprintf(dir, sizeof(dir), "%s/%s/name", class, de[i]->d_name) >=
		    sizeof(dir) || sysfs_read_text(dir, names[i], sizeof(names[i])) < 0)
			names[i][0] = '\0';
	for (int i = 0; i < n; i++) {
		const char *dev = de[i]->d_name, *name = names[i];
		int t, h, first = i;

		if (name[0] == '\0')
			continue;	/* nothing to name it by */
		if (!sysfs_name_printable(name)) {
			fprintf(out, "# %s: a name no configuration can hold\n", dev);
			continue;
		}
		if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", class, dev) >= sizeof(dir))
			continue;
		t = sysfs_has(dir, "temp1_input");
		h = sysfs_has(dir, "humidity1_input");
		if (!t && !h) {
			fprintf(out, "# %s: %s: no temp1_input or humidity1_input\n", dev, name);
			continue;
		}
		for (int j = 0; j < i && first == i; j++)
			if (strcmp(names[j], name) == 0)
				first = j;
		fprintf(out, "# %s: %s:%s%s", dev, name, t ? " temp1_input" : "",
		    h ? " humidity1_input" : "");
		if (first != i) {
			fprintf(out, "; %s has the same name: the hwmon driver reads that one only\n",
			    de[first]->d_name);
			continue;
		}
		sysfs_scan_id(id, sizeof(id), "hwmon-", name);
		fprintf(out, "\n{ id = \"%s\"; zone = \"CHANGE-ME\"; driver = \"hwmon\"; "
		    "device = \"%s\"; interval = 10; },\n", id, name);
		found++;
	}
	fprintf(out, "# %d hwmon device%s with temp1_input or humidity1_input\n",
	    found, found == 1 ? "" : "s");
	free(names);
out_free:
	for (int i = 0; i < n; i++)
		free(de[i]);
	free(de);
	return found;
}

/* Configuration: the chip's hwmon name, which the driver cannot do without. */
static const struct cfg_key hwmon_keys[] = {
	{ "device", CFG_STRING, CFG_FIELD(struct sensor_cfg, dev.device), .required = true },
	{ .name = NULL },
};

const struct sensor_driver hwmon_driver = {
	.name = "hwmon",
	.open = hwmon_open,
	.read = hwmon_read,
	.close = hwmon_close,
	.blocks = sensor_blocks_always,	/* the kernel converts while we wait */
	.scan = hwmon_scan,
	.kind = SENSOR_DEVICE,
	.keys = hwmon_keys,
};
