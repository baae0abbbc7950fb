/*
 * sht3x, sht4x, scd4x — Sensirion humidity, temperature and CO2 sensors on
 * an I2C bus, driven from user space through the kernel's i2c-dev.
 *
 * Devices:
 *   SHT3x-DIS (SHT30/31/35): temperature and humidity, -40..125 C,
 *     0..100 %RH.  Address 0x44 (ADDR pin low, the default) or 0x45.
 *   SHT4x (SHT40/41/45): temperature and humidity, -40..125 C, 0..100 %RH.
 *     Address 0x44 (the default; 0x45 and 0x46 for other order codes).
 *   SCD4x (SCD40/41): photoacoustic CO2 with temperature and humidity,
 *     address 0x62 only.  CO2 output 0..40000 ppm; it works at -10..60 C.
 *
 * Bus: the i2c-dev node in sensor_cfg device ("/dev/i2c-1"); address is the
 * 7-bit address, -1 for the part's default.  Every transfer is one I2C_RDWR
 * ioctl carrying one message: a write of the command, a sleep for the
 * execution time, then a read of the answer in a transfer of its own (a
 * STOP in between, no repeated start, as the datasheets draw it).  I2C_RDWR
 * names the address in the message, so no I2C_SLAVE is needed; but the
 * kernel's own drivers (hwmon sht3x/sht4x, iio scd4x) must not be bound to
 * the same part, or their commands interleave with ours: with those loaded,
 * use the hwmon or iio driver instead.
 *
 * Frames: commands are 16-bit big-endian (SHT3x, SCD4x) or one byte
 * (SHT4x).  Answers are 16-bit big-endian words, each followed by its
 * CRC-8 (polynomial 0x31, init 0xFF, not reflected, no final xor;
 * CRC(0xBE 0xEF) = 0x92, the datasheets' example).  A word whose CRC is
 * wrong fails the read.
 *
 *   SHT3x  0x2400 measure: single shot, high repeatability, no clock
 *          stretching; the part NACKs its read header until done, so wait
 *          16 ms, past the worst case (15 ms, what the kernel's hwmon
 *          driver waits); read 6 bytes: T msb, lsb, crc, RH msb, lsb, crc.
 *          T = -45 + 175 * S / 65535 C, RH = 100 * S / 65535 %RH.
 *   SHT4x  0xFD measure, high precision; wait 10 ms (max 8.3 ms); read 6
 *          bytes as above.  T as for the SHT3x; RH = -6 + 125 * S / 65535,
 *          cropped to 0..100 as the datasheet tells.
 *   SCD4x  0x21B1 start_periodic_measurement: a new measurement every 5 s.
 *          0xE4B8 get_data_ready_status, 1 ms, read 3 bytes: new data when
 *          the low 11 bits of the word are not all 0.
 *          0xEC05 read_measurement, 1 ms, read 9 bytes: CO2 ppm, T, RH
 *          words.  T = -45 + 175 * S / 65536 C, RH = 100 * S / 65536 %RH
 *          (2^16 here where the SHTs divide by 2^16 - 1).
 *          0x3F86 stop_periodic_measurement; 500 ms before it answers again.
 *
 * SCD4x measuring: open() does nothing on the bus.  The first read sends
 * start.  A measuring SCD4x NACKs every command but read_measurement,
 * get_data_ready_status, stop and set_ambient_pressure, so a NACKed start
 * means it was left measuring (by an earlier run, or a close whose stop got
 * lost) and is fine: whether anybody is there, data-ready tells.  Each read
 * then asks data-ready; no new data is 0 readings, not an error (reads
 * faster than every 5 s, or the first 5 s after start).  When data-ready
 * goes unanswered, or has said "no" for 15 s, the next read sends start
 * again: a part that lost power comes back idle.  close() sends stop, best
 * effort, without waiting out its 500 ms: a sensor opened again at once (a
 * reload) finds the part deaf, that first read fails with -ETIMEDOUT and
 * the next one starts it.
 *
 * Timing: a read sleeps 16 ms (SHT3x), 10 ms (SHT4x) or 2 to 3 ms (SCD4x)
 * between write and read, so every read blocks: the core runs these reads
 * on a worker thread (.blocks).
 *
 * Errors: no device, or an address outside 0x03..0x77 -> -EINVAL at open.
 * The node is opened in open() and kept.  When it cannot be opened (a USB
 * adapter not plugged in yet) open() still succeeds and each read tries
 * again: -ENODEV meanwhile (-EACCES when permission is denied).  A transfer
 * that fails with ENODEV (the adapter went away) closes the node and returns
 * -ENODEV; a later read reopens it, so an adapter that comes back is found
 * again.  A NACK or no answer -> -ETIMEDOUT (adapters say EREMOTEIO, ENXIO,
 * EIO, ETIMEDOUT or EAGAIN); an adapter that cannot do plain I2C transfers
 * (SMBus only: EOPNOTSUPP, ENOTTY, EINVAL) -> -EOPNOTSUPP.  A bad CRC ->
 * -EBADMSG; a value outside the part's range -> -ERANGE.  SCD4x CO2 of
 * 0 ppm is out of range: Sensirion's examples drop it as an invalid sample.
 * All-zero or all-one words with good CRCs are data like any other.
 *
 * Readings: SHT3x/SHT4x Q_TEMPERATURE (C), Q_HUMIDITY (%RH); SCD4x Q_CO2
 * (ppm), Q_TEMPERATURE, Q_HUMIDITY.
 *
 * Scan (sht3x_driver.scan covers all three parts): every bus a
 * sht3x/sht4x/scd4x sensor names, or /dev/i2c-1 if none does.  0x44 and
 * 0x45 are asked for the SHT3x status register (0xF32D), then, where no
 * SHT3x answered, for the SHT4x serial number (0x89); 0x62 for the SCD4x
 * serial number (0x3682), and when that is NACKed, data-ready (answered
 * while measuring).  All of them read, none changes anything.
 *
 * Configuration keys (sht3x_keys, sht4x_keys, scd4x_keys, at the bottom):
 * device, the i2c-dev node, required; address 0x03..0x77, by default the
 * part's own (0x44 for the SHTs, 0x62 for the SCD4x).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/i2c.h>
#include <linux/i2c-dev.h>

#include "config.h"
#include "sensor.h"

#define I2C_ADDR_MIN		0x03
#define I2C_ADDR_MAX		0x77
#define I2C_WORDS_MAX		3

#define SHT_ADDR		0x44
#define SHT_ADDR_ALT		0x45
#define SHT_T_MIN		(-40.0)
#define SHT_T_MAX		125.0

#define SHT3X_MEASURE		0x2400	/* single shot, high repeatability, no stretching */
#define SHT3X_MEASURE_US	16000
#define SHT3X_STATUS		0xF32D
#define SHT3X_STATUS_US		1000

#define SHT4X_MEASURE		0xFD	/* high precision */
#define SHT4X_MEASURE_US	10000
#define SHT4X_SERIAL		0x89
#define SHT4X_SERIAL_US		10000

#define SCD4X_ADDR		0x62
#define SCD4X_START		0x21B1
#define SCD4X_DATA_READY	0xE4B8
#define SCD4X_READ		0xEC05
#define SCD4X_STOP		0x3F86
#define SCD4X_SERIAL		0x3682
#define SCD4X_CMD_US		1000
#define SCD4X_READY_MASK	0x07FF
#define SCD4X_RESTART_S		15.0	/* three measurement periods without data */
#define SCD4X_CO2_MAX		40000.0
#define SCD4X_T_MIN		(-10.0)
#define SCD4X_T_MAX		60.0

enum i2c_part { PART_SHT3X, PART_SHT4X, PART_SCD4X };

struct i2c_sensor {
	enum i2c_part	 part;
	char		*path;		/* the bus node, /dev/i2c-N */
	uint16_t	 addr;
	int		 fd;		/* -1: not open (gone, or not there yet) */
	bool		 measuring;	/* SCD4x: start sent (answered or NACKed) */
	double		 since;		/* SCD4x: elapsed at the start or the last new data */
};

/* Sensirion's CRC-8 over len bytes. */
static uint8_t
i2c_crc8(const uint8_t *p, size_t len)
{
	uint8_t crc = 0xFF;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int b = 0; b < 8; b++)
			crc = crc & 0x80 ? (uint8_t)((crc << 1) ^ 0x31) : (uint8_t)(crc << 1);
	}
	return crc;
}

static void
i2c_sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* What a failed I2C_RDWR means for the reader; see the top of the file. */
static int
i2c_error(int e)
{
	switch (e) {
	case ENODEV:
		return -ENODEV;
	case EOPNOTSUPP:
	case ENOTTY:
	case EINVAL:
		return -EOPNOTSUPP;
	default:
		return -ETIMEDOUT;
	}
}

/* One message, write or read, to addr: 0 or a negative errno (i2c_error). */
static int
i2c_xfer(int fd, uint16_t addr, uint16_t flags, uint8_t *buf, uint16_t len)
{
	struct i2c_msg msg = { .addr = addr, .flags = flags, .len = len, .buf = buf };
	struct i2c_rdwr_ioctl_data data = { .msgs = &msg, .nmsgs = 1 };

	if (ioctl(fd, I2C_RDWR, &data) < 0)
		return i2c_error(errno);
	return 0;
}

/*
 * Send cmd (cmdlen 1 or 2 bytes), wait wait_us, then, if nwords > 0, read
 * nwords words with their CRCs into words.  0 or a negative errno.
 */
static int
i2c_cmd(int fd, uint16_t addr, unsigned cmd, size_t cmdlen, long wait_us,
    uint16_t *words, size_t nwords)
{
	uint8_t buf[I2C_WORDS_MAX * 3];
	int rc;

	if (cmdlen == 2) {
		buf[0] = (uint8_t)(cmd >> 8);
		buf[1] = (uint8_t)cmd;
	} else
		buf[0] = (uint8_t)cmd;
	if ((rc = i2c_xfer(fd, addr, 0, buf, (uint16_t)cmdlen)) < 0)
		return rc;
	if (wait_us > 0)
		i2c_sleep_us(wait_us);
	if (nwords == 0)
		return 0;
	if ((rc = i2c_xfer(fd, addr, I2C_M_RD, buf, (uint16_t)(nwords * 3))) < 0)
		return rc;
	for (size_t i = 0; i < nwords; i++) {
		if (i2c_crc8(buf + 3 * i, 2) != buf[3 * i + 2])
			return -EBADMSG;
		words[i] = (uint16_t)(buf[3 * i] << 8 | buf[3 * i + 1]);
	}
	return 0;
}

/* The sensor's bus node, opened again if it was lost: 0, -ENODEV or -EACCES. */
static int
i2c_node(struct i2c_sensor *s)
{
	if (s->fd >= 0)
		return 0;
	if ((s->fd = open(s->path, O_RDWR | O_CLOEXEC)) < 0)
		return errno == EACCES || errno == EPERM ? -EACCES : -ENODEV;
	return 0;
}

/* i2c_cmd on the sensor's node; an adapter gone closes the node. */
static int
i2c_command(struct i2c_sensor *s, unsigned cmd, long wait_us, uint16_t *words, size_t nwords)
{
	int rc = i2c_cmd(s->fd, s->addr, cmd, s->part == PART_SHT4X ? 1 : 2, wait_us,
	    words, nwords);

	if (rc == -ENODEV) {
		close(s->fd);
		s->fd = -1;
		s->measuring = false;
	}
	return rc;
}

static void
i2c_close(void *state)
{
	struct i2c_sensor *s = state;

	if (s == NULL)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s->path);
	free(s);
}

static int
i2c_open(const struct sensor_cfg *sc, enum i2c_part part, uint16_t def_addr, void **state)
{
	struct i2c_sensor *s;

	if (sc->dev.device == NULL || *sc->dev.device == '\0')
		return -EINVAL;
	if (sc->dev.address != -1 && (sc->dev.address < I2C_ADDR_MIN || sc->dev.address > I2C_ADDR_MAX))
		return -EINVAL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	if ((s->path = strdup(sc->dev.device)) == NULL) {
		free(s);
		return -ENOMEM;
	}
	s->part = part;
	s->addr = sc->dev.address == -1 ? def_addr : (uint16_t)sc->dev.address;
	s->fd = -1;
	/* Not there yet is not an error: reads say -ENODEV and try again. */
	(void)i2c_node(s);
	*state = s;
	return 0;
}

static int
sht3x_open(const struct config *conf, const struct sensor_cfg *sc, void **state)
{
	(void)conf;
	return i2c_open(sc, PART_SHT3X, SHT_ADDR, state);
}

static int
sht4x_open(const struct config *conf, const struct sensor_cfg *sc, void **state)
{
	(void)conf;
	return i2c_open(sc, PART_SHT4X, SHT_ADDR, state);
}

static int
scd4x_open(const struct config *conf, const struct sensor_cfg *sc, void **state)
{
	(void)conf;
	return i2c_open(sc, PART_SCD4X, SCD4X_ADDR, state);
}

/* SHT3x or SHT4x, as s->part says: one measurement, T and RH. */
static int
sht_read(void *state, const struct sensor_clock *clk, struct reading *out, size_t max)
{
	struct i2c_sensor *s = state;
	bool sht4x = s->part == PART_SHT4X;
	uint16_t w[2];
	double t, rh;
	int rc;

	(void)clk;
	if (max < 2)
		return -ENOBUFS;
	if ((rc = i2c_node(s)) < 0 ||
	    (rc = i2c_command(s, sht4x ? SHT4X_MEASURE : SHT3X_MEASURE,
	    sht4x ? SHT4X_MEASURE_US : SHT3X_MEASURE_US, w, 2)) < 0)
		return rc;
	t = -45.0 + 175.0 * w[0] / 65535.0;
	if (t < SHT_T_MIN || t > SHT_T_MAX)
		return -ERANGE;
	if (sht4x) {
		/* The formula reaches -6..119 %RH; the datasheet says to crop it. */
		rh = -6.0 + 125.0 * w[1] / 65535.0;
		rh = rh < 0.0 ? 0.0 : rh > 100.0 ? 100.0 : rh;
	} else
		rh = 100.0 * w[1] / 65535.0;
	out[0] = (struct reading){ Q_TEMPERATURE, t };
	out[1] = (struct reading){ Q_HUMIDITY, rh };
	return 2;
}

static int
scd4x_read(void *state, const struct sensor_clock *clk, struct reading *out, size_t max)
{
	struct i2c_sensor *s = state;
	uint16_t w[3];
	double co2, t, rh;
	int rc;

	if (max < 3)
		return -ENOBUFS;
	if ((rc = i2c_node(s)) < 0)
		return rc;
	if (!s->measuring) {
		/* A NACK: measuring already, or nobody there; data-ready tells. */
		rc = i2c_command(s, SCD4X_START, SCD4X_CMD_US, NULL, 0);
		if (rc < 0 && rc != -ETIMEDOUT)
			return rc;
		s->measuring = true;
		s->since = clk->elapsed;
	}
	if ((rc = i2c_command(s, SCD4X_DATA_READY, SCD4X_CMD_US, w, 1)) < 0) {
		if (rc == -ETIMEDOUT)
			s->measuring = false;
		return rc;
	}
	if ((w[0] & SCD4X_READY_MASK) == 0) {
		if (clk->elapsed - s->since >= SCD4X_RESTART_S)
			s->measuring = false;
		return 0;
	}
	if ((rc = i2c_command(s, SCD4X_READ, SCD4X_CMD_US, w, 3)) < 0)
		return rc;
	s->since = clk->elapsed;
	co2 = w[0];
	t = -45.0 + 175.0 * w[1] / 65536.0;
	rh = 100.0 * w[2] / 65536.0;
	if (co2 <= 0.0 || co2 > SCD4X_CO2_MAX || t < SCD4X_T_MIN || t > SCD4X_T_MAX)
		return -ERANGE;
	out[0] = (struct reading){ Q_CO2, co2 };
	out[1] = (struct reading){ Q_TEMPERATURE, t };
	out[2] = (struct reading){ Q_HUMIDITY, rh };
	return 3;
}

static void
scd4x_close(void *state)
{
	struct i2c_sensor *s = state;

	if (s != NULL && s->fd >= 0 && s->measuring)
		(void)i2c_command(s, SCD4X_STOP, 0, NULL, 0);
	i2c_close(s);
}

/* Print the comment and configuration lines for a part found at addr. */
static void
i2c_scan_print(FILE *out, const char *bus, const char *tag, uint16_t addr,
    const char *part, const char *what)
{
	fprintf(out, "# %s 0x%02x: %s\n", bus, addr, what);
	fprintf(out, "{ id = \"%s%s-%02x\"; zone = \"CHANGE-ME\"; driver = \"%s\"; "
	    "device = \"%s\"; address = 0x%02x; interval = 10; },\n",
	    part, tag, addr, part, bus, addr);
}

/* Probe one bus; tag goes into the ids ("" or "-i2c-3"). The count found. */
static int
i2c_scan_bus(const char *bus, const char *tag, FILE *out)
{
	static const uint16_t sht_addrs[] = { SHT_ADDR, SHT_ADDR_ALT };
	bool sht3x[2] = { false, false };
	char what[96];
	uint16_t w[3];
	int fd, found = 0;

	if ((fd = open(bus, O_RDWR | O_CLOEXEC)) < 0) {
		fprintf(out, "# %s: cannot open: %s\n", bus, strerror(errno));
		return 0;
	}
	/*
	 * All SHT3x first, then SHT4x where none answered: an SHT4x needs a
	 * moment after a command it does not know.
	 */
	for (size_t i = 0; i < 2; i++)
		if (i2c_cmd(fd, sht_addrs[i], SHT3X_STATUS, 2, SHT3X_STATUS_US, w, 1) == 0) {
			snprintf(what, sizeof(what), "SHT3x, status 0x%04x", w[0]);
			i2c_scan_print(out, bus, tag, sht_addrs[i], "sht3x", what);
			sht3x[i] = true;
			found++;
		}
	for (size_t i = 0; i < 2; i++)
		if (!sht3x[i] &&
		    i2c_cmd(fd, sht_addrs[i], SHT4X_SERIAL, 1, SHT4X_SERIAL_US, w, 2) == 0) {
			snprintf(what, sizeof(what), "SHT4x, serial %04x%04x", w[0], w[1]);
			i2c_scan_print(out, bus, tag, sht_addrs[i], "sht4x", what);
			found++;
		}
	/* The serial number needs an idle SCD4x; a measuring one answers data-ready. */
	if (i2c_cmd(fd, SCD4X_ADDR, SCD4X_SERIAL, 2, SCD4X_CMD_US, w, 3) == 0) {
		snprintf(what, sizeof(what), "SCD4x, serial %04x%04x%04x", w[0], w[1], w[2]);
		i2c_scan_print(out, bus, tag, SCD4X_ADDR, "scd4x", what);
		found++;
	} else if (i2c_cmd(fd, SCD4X_ADDR, SCD4X_DATA_READY, 2, SCD4X_CMD_US, w, 1) == 0) {
		i2c_scan_print(out, bus, tag, SCD4X_ADDR, "scd4x", "SCD4x, answers (busy measuring)");
		found++;
	}
	if (found == 0)
		fprintf(out, "# %s: no SHT3x, SHT4x or SCD4x at 0x44, 0x45, 0x62\n", bus);
	close(fd);
	return found;
}

static bool
i2c_is_ours(const char *driver)
{
	return driver != NULL && (strcmp(driver, "sht3x") == 0 ||
	    strcmp(driver, "sht4x") == 0 || strcmp(driver, "scd4x") == 0);
}

/* Every bus an I2C sensor of ours names, or /dev/i2c-1. */
static int
i2c_scan(const struct config *conf, FILE *out)
{
	const char *buses[32];
	size_t nbuses = 0, nsensors = conf != NULL ? conf->nsensors : 0;
	int found = 0;

	for (size_t i = 0; i < nsensors && nbuses < sizeof(buses) / sizeof(buses[0]); i++) {
		const struct sensor_cfg *sc = &conf->sensors[i];
		size_t k;

		if (!i2c_is_ours(sc->driver) || sc->dev.device == NULL || *sc->dev.device == '\0')
			continue;
		for (k = 0; k < nbuses && strcmp(buses[k], sc->dev.device) != 0; k++)
			;
		if (k == nbuses)
			buses[nbuses++] = sc->dev.device;
	}
	if (nbuses == 0)
		buses[nbuses++] = "/dev/i2c-1";
	for (size_t k = 0; k < nbuses; k++) {
		char tag[CONFIG_ID_MAX / 2] = "";

		/* Ids must differ between buses: add the node's name, made an id. */
		if (nbuses > 1) {
			const char *base = strrchr(buses[k], '/');
			size_t n;

			snprintf(tag, sizeof(tag), "-%s", base != NULL ? base + 1 : buses[k]);
			for (n = 1; tag[n] != '\0'; n++)
				if (!(tag[n] == '-' || tag[n] == '_' ||
				    (tag[n] >= '0' && tag[n] <= '9') ||
				    (tag[n] >= 'a' && tag[n] <= 'z') ||
				    (tag[n] >= 'A' && tag[n] <= 'Z')))
					tag[n] = '-';
		}
		found += i2c_scan_bus(buses[k], tag, out);
	}
	return found;
}

/*
 * Configuration: the bus's device node, which the driver cannot do
 * without, and the part's address, by default its usual one.
 */
#define I2C_KEYS(def_addr) { \
	{ "device", CFG_STRING, CFG_FIELD(struct sensor_cfg, dev.device), .required = true }, \
	{ "address", CFG_INT, CFG_FIELD(struct sensor_cfg, dev.address), .min = I2C_ADDR_MIN, \
	    .max = I2C_ADDR_MAX, .def = (def_addr) }, \
	{ .name = NULL }, \
}
static const struct cfg_key sht3x_keys[] = I2C_KEYS(SHT_ADDR);
static const struct cfg_key sht4x_keys[] = I2C_KEYS(SHT_ADDR);
static const struct cfg_key scd4x_keys[] = I2C_KEYS(SCD4X_ADDR);
#undef I2C_KEYS

const struct sensor_driver sht3x_driver = {
	.name = "sht3x",
	.open = sht3x_open,
	.read = sht_read,
	.close = i2c_close,
	.blocks = sensor_blocks_always,	/* sleeps through the conversion */
	.bus = sensor_bus_of,		/* one worker per adapter or line */
	.scan = i2c_scan,		/* finds SHT4x and SCD4x too */
	.kind = SENSOR_DEVICE,
	.keys = sht3x_keys,
};

const struct sensor_driver sht4x_driver = {
	.name = "sht4x",
	.open = sht4x_open,
	.read = sht_read,
	.close = i2c_close,
	.blocks = sensor_blocks_always,	/* sleeps through the conversion */
	.bus = sensor_bus_of,		/* one worker per adapter or line */
	.kind = SENSOR_DEVICE,
	.keys = sht4x_keys,
};

const struct sensor_driver scd4x_driver = {
	.name = "scd4x",
	.open = scd4x_open,
	.read = scd4x_read,
	.close = scd4x_close,
	.blocks = sensor_blocks_always,	/* sleeps through the command times */
	.bus = sensor_bus_of,		/* one worker per adapter or line */
	.kind = SENSOR_DEVICE,
	.keys = scd4x_keys,
};
