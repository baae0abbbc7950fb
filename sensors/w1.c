/*
 * ds18b20 — Maxim DS18B20 temperature probe on the 1-Wire bus.
 *
 * Device: a 1-Wire digital thermometer, -55..125 C, 12-bit (0.0625 C),
 * usually on a long cable into a cold room.  The Raspberry Pi runs the bus
 * from a GPIO through the kernel's w1-gpio master (dtoverlay=w1-gpio) and
 * the w1_therm slave driver; the daemon never touches the bus itself.
 *
 * Kernel interface, from gateway.sysfs_root (normally /sys):
 *
 *   bus/w1/devices/{device}/w1_slave     device = "28-" + 12 hex digits
 *
 *     72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
 *     72 01 4b 46 7f ff 0e 10 57 t=23125
 *
 *   Line 1 is the 9-byte scratchpad and the kernel's CRC verdict (YES/NO);
 *   line 2 the scratchpad again and the temperature in milli-degrees C
 *   (w1_therm.c: w1_slave_show, "%02x " x 9, ": crc=%02x %s\n", "t=%d\n").
 *   On a NO the kernel prints the last good scratchpad on line 2, so a NO
 *   is a failed read whatever t= says.
 *
 *   bus/w1/devices/{device}/temperature  newer kernels: one integer, m C.
 *   Used only when w1_slave is absent.  A CRC failure there is a read error.
 *
 * Errors: NO -> -EBADMSG; 85000 (the power-on value, read before a
 * conversion completed) and 127937/127940 (scratchpad of 0x07ff: a probe
 * without enough power on a parasitic bus), and anything outside
 * -55..125 C -> -ERANGE; the device directory gone (unplugged, bus lost)
 * -> -ENODEV; an unreadable or garbled file -> -EIO.
 *
 * Timing: each read of w1_slave makes the kernel start a conversion and
 * wait for it, about 750 ms at 12 bits, so a read blocks that long.  The
 * files are opened, read and closed at each read: no descriptor survives an
 * unplug.  Retries and backoff are the core's business.
 *
 * device = "auto" means the only thermometer on the bus: a directory
 * whose name starts with a w1_therm family code (28- DS18B20, 10- DS18S20,
 * 22- DS1822, 3b- DS1825, 42- DS28EA00; all print the same w1_slave).  It
 * is looked up at each read, so a replaced probe is picked up; none there
 * -> -ENODEV, more than one -> -ENOTUNIQ (name the probe instead).
 *
 * One reading: Q_TEMPERATURE in degrees C.
 *
 * Scan: every directory in bus/w1/devices named for a w1_therm family and
 * a serial number in hex, in name order, with a snippet whose id is "t-"
 * and the serial's last six digits (the whole name when two probes share
 * those).  The bus master (w1_bus_master1) and other slaves (a DS2413
 * switch, 3a-) are left out.  Nothing is read: a conversion takes 750 ms
 * per probe.
 *
 * Configuration keys (ds18b20_keys, at the bottom): device, the probe's
 * 1-Wire id, required.
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

#define W1_MIN_MC	(-55000)
#define W1_MAX_MC	125000
#define W1_POWER_ON_MC	85000

/* The w1_therm families: "xx-" prefixes of the devices' directories. */
static const struct {
	const char	*prefix;
	const char	*part;
} w1_families[] = {
	{ "28-", "DS18B20" }, { "10-", "DS18S20" }, { "22-", "DS1822" },
	{ "3b-", "DS1825" }, { "42-", "DS28EA00" },
};

#define W1_NFAMILIES	(sizeof(w1_families) / sizeof(w1_families[0]))

struct w1 {
	char	*devices;	/* {root}/bus/w1/devices */
	int	 autodetect;	/* device = "auto" */
	char	*dir;		/* devices/{device} */
	char	*slave;		/* dir/w1_slave */
	char	*temperature;	/* dir/temperature */
};

/* Parse a decimal integer that ends at end (a trailing newline is fine). */
static int
w1_parse_int(const char *s, const char **end, long *v)
{
	char *e;

	if (!(*s == '-' || (*s >= '0' && *s <= '9')))
		return -EIO;
	errno = 0;
	*v = strtol(s, &e, 10);
	if (errno != 0 || e == s || *v < INT_MIN || *v > INT_MAX)
		return -EIO;
	*end = e;
	return 0;
}

static int
w1_ishex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Skip the 9 scratchpad bytes "xx " at the start of a w1_slave line. */
static const char *
w1_skip_bytes(const char *s)
{
	for (int i = 0; i < 9; i++, s += 3)
		if (!w1_ishex(s[0]) || !w1_ishex(s[1]) || s[2] != ' ')
			return NULL;
	return s;
}

/* The temperature in m C from w1_slave text, or -EBADMSG / -EIO. */
static int
w1_parse_slave(const char *s, long *mc)
{
	const char *e;

	if ((s = w1_skip_bytes(s)) == NULL || strncmp(s, ": crc=", 6) != 0)
		return -EIO;
	s += 6;
	if (!w1_ishex(s[0]) || !w1_ishex(s[1]) || s[2] != ' ')
		return -EIO;
	s += 3;
	if (strncmp(s, "NO\n", 3) == 0)
		return -EBADMSG;
	if (strncmp(s, "YES\n", 4) != 0)
		return -EIO;
	s += 4;
	if ((s = w1_skip_bytes(s)) == NULL || strncmp(s, "t=", 2) != 0)
		return -EIO;
	if (w1_parse_int(s + 2, &e, mc) < 0)
		return -EIO;
	if (*e == '\n')
		e++;
	return *e == '\0' ? 0 : -EIO;
}

/* The temperature in m C from the one-integer temperature attribute. */
static int
w1_parse_attr(const char *s, long *mc)
{
	const char *e;

	if (w1_parse_int(s, &e, mc) < 0)
		return -EIO;
	if (*e == '\n')
		e++;
	return *e == '\0' ? 0 : -EIO;
}

static int
w1_dir_gone(const struct w1 *w)
{
	struct stat st;

	return stat(w->dir, &st) < 0 || !S_ISDIR(st.st_mode);
}

/* Point w at devices/dev. -ENOMEM or 0. */
static int
w1_set_device(struct w1 *w, const char *dev)
{
	free(w->dir);
	free(w->slave);
	free(w->temperature);
	w->slave = w->temperature = NULL;
	if (asprintf(&w->dir, "%s/%s", w->devices, dev) < 0)
		w->dir = NULL;
	else if (asprintf(&w->slave, "%s/w1_slave", w->dir) < 0)
		w->slave = NULL;
	else if (asprintf(&w->temperature, "%s/temperature", w->dir) < 0)
		w->temperature = NULL;
	return w->temperature == NULL ? -ENOMEM : 0;
}

/* device = "auto": find the one thermometer on the bus. */
static int
w1_find_auto(struct w1 *w)
{
	char found[NAME_MAX + 1] = "";
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	if ((d = opendir(w->devices)) == NULL)
		return -ENODEV;
	while ((de = readdir(d)) != NULL)
		for (size_t i = 0; i < W1_NFAMILIES; i++)
			if (strncmp(de->d_name, w1_families[i].prefix, 3) == 0) {
				if (n++ == 0)
					snprintf(found, sizeof(found), "%s", de->d_name);
				break;
			}
	closedir(d);
	if (n == 0)
		return -ENODEV;
	if (n > 1)
		return -ENOTUNIQ;
	return w1_set_device(w, found);
}

static void
ds18b20_close(void *state)
{
	struct w1 *w = state;

	if (w == NULL)
		return;
	free(w->devices);
	free(w->dir);
	free(w->slave);
	free(w->temperature);
	free(w);
}

static int
ds18b20_open(const struct config *conf, const struct sensor_cfg *sc, void **state)
{
	const char *root = conf->gateway.sysfs_root ? conf->gateway.sysfs_root : "/sys";
	const char *dev = sc->dev.device;
	struct w1 *w;

	if (dev == NULL || *dev == '\0' || strchr(dev, '/') != NULL ||
	    strcmp(dev, ".") == 0 || strcmp(dev, "..") == 0)
		return -EINVAL;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -ENOMEM;
	if (asprintf(&w->devices, "%s/bus/w1/devices", root) < 0) {
		free(w);
		return -ENOMEM;
	}
	w->autodetect = strcmp(dev, "auto") == 0;
	if (!w->autodetect && w1_set_device(w, dev) < 0) {
		ds18b20_close(w);
		return -ENOMEM;
	}
	*state = w;
	return 0;
}

static int
ds18b20_read(void *state, const struct sensor_clock *clk, struct reading *out, size_t max)
{
	struct w1 *w = state;
	char buf[256];
	long mc;
	int rc;

	(void)clk;
	if (max < 1)
		return -ENOBUFS;
	if (w->autodetect && (rc = w1_find_auto(w)) < 0)
		return rc;
	if ((rc = sysfs_read(w->slave, buf, sizeof(buf))) >= 0)
		rc = w1_parse_slave(buf, &mc);
	else if (rc == -ENOENT &&
	    (rc = sysfs_read(w->temperature, buf, sizeof(buf))) >= 0)
		rc = w1_parse_attr(buf, &mc);
	if (rc == -ENOENT)
		rc = w1_dir_gone(w) ? -ENODEV : -EIO;
	if (rc < 0)
		return rc;
	if (mc == W1_POWER_ON_MC || mc == 127937 || mc == 127940 ||
	    mc < W1_MIN_MC || mc > W1_MAX_MC)
		return -ERANGE;
	out[0] = (struct reading){ Q_TEMPERATURE, (double)mc / 1000.0 };
	return 1;
}

/* The part a probe's directory name is for, or NULL when it is not a w1_therm probe. */
static const char *
w1_therm_part(const char *name)
{
	size_t i, n;

	for (i = 0; i < W1_NFAMILIES; i++)
		if (strncmp(name, w1_families[i].prefix, 3) == 0)
			break;
	if (i == W1_NFAMILIES)
		return NULL;
	for (n = 0; w1_ishex(name[3 + n]); n++)
		;
	return name[3 + n] == '\0' && n >= 6 ? w1_families[i].part : NULL;
}

static int
w1_therm_filter(const struct dirent *de)
{
	return w1_therm_part(de->d_name) != NULL;
}

/* Every thermometer on the bus, a snippet for each. */
static int
ds18b20_scan(const struct config *conf, FILE *out)
{
	const char *root = conf != NULL && conf->gateway.sysfs_root != NULL ?
	    conf->gateway.sysfs_root : "/sys";
	char devices[PATH_MAX];
	struct dirent **de;
	int n;

	if ((size_t)snprintf(devices, sizeof(devices), "%s/bus/w1/devices", root) >=
	    sizeof(devices))
		return -ENAMETOOLONG;
	if ((n = scandir(devices, &de, w1_therm_filter, alphasort)) < 0) {
		fprintf(out, "# no 1-Wire bus: %s: %s (dtoverlay=w1-gpio?)\n",
		    devices, strerror(errno));
		return 0;
	}
	fprintf(out, "# %d probe%s on the 1-Wire bus\n", n, n == 1 ? "" : "s");
	for (int i = 0; i < n; i++) {
		const char *dev = de[i]->d_name, *tail = dev + strlen(dev) - 6;
		int clash = 0;

		for (int j = 0; j < n && !clash; j++)
			clash = j != i && strcmp(de[j]->d_name + strlen(de[j]->d_name) - 6, tail) == 0;
		fprintf(out, "# %s: %s\n", dev, w1_therm_part(dev));
		fprintf(out, "{ id = \"t-%s\"; zone = \"CHANGE-ME\"; driver = \"ds18b20\"; "
		    "device = \"%s\"; interval = 10; },\n", clash ? dev : tail, dev);
	}
	for (int i = 0; i < n; i++)
		free(de[i]);
	free(de);
	return n;
}

/* Configuration: the probe's 1-Wire id, which the driver cannot do without. */
static const struct cfg_key ds18b20_keys[] = {
	{ "device", CFG_STRING, CFG_FIELD(struct sensor_cfg, dev.device), .required = true },
	{ .name = NULL },
};

const struct sensor_driver ds18b20_driver = {
	.name = "ds18b20",
	.open = ds18b20_open,
	.read = ds18b20_read,
	.close = ds18b20_close,
	.blocks = sensor_blocks_always,	/* the kernel converts while we wait */
	.scan = ds18b20_scan,
	.kind = SENSOR_DEVICE,
	.keys = ds18b20_keys,
};
