/*
 * modbus — temperature, humidity and CO2 transmitters on Modbus RTU
 * (RS485) or Modbus TCP (an RS485-to-Ethernet converter), through
 * libmodbus.
 *
 * Device: the cheap DIN-rail and wall transmitters sold for mushroom
 * houses and cold rooms, and CO2 meters, each a Modbus slave with a unit
 * id (1..247) on a two-wire RS485 line; one USB adapter (device =
 * "/dev/ttyUSB0") or one converter (host = "10.0.0.7", port 502) carries
 * several of them.  RTU when device is set, TCP when host is.
 * Line settings: baud (9600), parity 'N'/'E'/'O' ('N'), data_bits (8),
 * stop_bits (1); unit; timeout_ms (500), the answer timeout.  0 (and a
 * parity of '\0') in any of them means the default.
 *
 * Frames: read holding registers (0x03) or read input registers (0x04),
 * big-endian 16-bit registers, CRC-16/MODBUS low byte first (RTU) or the
 * MBAP header (TCP).  The register map (modbus_cfg.regs) says which
 * register holds which quantity: value = raw * scale + offset, raw taken
 * as two's complement when is_signed.  The two maps of the common Chinese
 * RS485 T/RH transmitters, offered by the configuration as presets:
 *
 *   map = "holding-rh-t"   0x03, register 0 = RH x 10 (%RH)
 *                                register 1 = T x 10 (C, signed)
 *       unit 1 asks   01 03 00 00 00 02 c4 0b
 *       and hears     01 03 04 02 29 ff e7 2b f9     RH 55.3, T -2.5
 *
 *   map = "input-t-rh"     0x04, register 1 = T x 10 (C, signed)
 *                                register 2 = RH x 10 (%RH)
 *       unit 1 asks   01 04 00 01 00 02 20 0b
 *       and hears     01 04 04 ff e7 02 29 bb 19     T -2.5, RH 55.3
 *
 * Registers of one function that lie within 8 of each other are read in
 * one request (at most 125 registers), so either preset costs one round
 * trip.  A scale of 1/n is applied as a division by n, so that raw 553 at
 * scale 0.1 gives 55.3 and not 55.300000000000004; a scale of 0 is taken
 * for unset, 1.  The readings come out in the order of the map, at most
 * SENSOR_MAX_READINGS of them (a longer map is -EINVAL at open()).
 *
 * Lines: sensors of one configuration on the same serial device share one
 * libmodbus context and descriptor, and so do those on the same host:port;
 * their line settings must agree (-EINVAL otherwise).  One request at a
 * time on a line: the core reads this driver's sensors on one worker
 * thread, and a read also holds the line's mutex.  A line belongs to one
 * configuration, so that while a reload opens the new one next to the old
 * one the settings of a device may change; the new line connects only at
 * its first read, after the old sensors are closed.
 *
 * Timing: the port is opened (the TCP connection made) at the first read,
 * not at open(), so a missing USB adapter at start-up is a failed read and
 * not a failed start.  A round trip at 9600 baud takes 20-50 ms; no answer
 * takes timeout_ms (also the TCP connect timeout), after which the driver
 * discards what the line holds (modbus_flush), and does so again before
 * the next request on that line, so that an answer that comes late is not
 * taken for the next one.  The driver does not retry; the core does.
 *
 * Errors (libmodbus errno -> read result):
 *   ETIMEDOUT (no answer)                           -> -ETIMEDOUT, flush
 *   EMBBADCRC                                       -> -EBADMSG, flush
 *   EMBBADDATA, EMBBADSLAVE, EMBMDATA, EMBBADEXC,
 *     EMBUNKEXC (a frame that is not the answer)    -> -EBADMSG, flush
 *   exception 0x0b, gateway target failed to respond
 *     (a TCP converter saying its unit is silent)   -> -ETIMEDOUT
 *   any other exception (EMBXILFUN, EMBXILADD,
 *     EMBXILVAL, EMBXSFAIL, EMBXSBUSY, ...): the
 *     unit is there and refuses, a wrong map        -> -EPROTO
 *   RTU: the port cannot be opened because it is
 *     not there (ENOENT, ENODEV, ENXIO, EIO), or it
 *     vanished under a request (EIO, ENODEV, ENXIO,
 *     and ECONNRESET, libmodbus' word for a read
 *     of nothing: a hung-up tty)                    -> -ENODEV, port closed
 *   RTU: other failures to open (EACCES, ENOTTY)    -> that errno
 *   TCP: no connection (refused, unreachable, timed
 *     out, name unknown) or the connection lost
 *     (ECONNRESET, EPIPE...)                        -> -ETIMEDOUT, closed
 *   anything else                                   -> -EIO, port closed
 * A closed port is opened again at the next read.  A value outside
 * -55..125 C, 0..100 %RH, 0..40000 ppm CO2 or 0..1 for a door -> -ERANGE;
 * room in out[] for fewer readings than the map gives -> -ENOBUFS.
 *
 * Scan: for each serial line and converter that a modbus sensor in the
 * configuration names, units 1..16 are asked for holding registers 0..1
 * and input registers 1..2 with a 100 ms timeout (up to 3.2 s a line); a
 * unit that answers either gets a "#" line with what it said and, when
 * its values fit a preset, a sensor snippet to paste.
 *
 * Names here start with mb_: libmodbus owns the modbus_ prefix.
 *
 * Configuration keys (mb_keys, at the bottom): device (RTU) or host (TCP),
 * one of them; port 1..65535 (502, TCP only); baud, one of mb_bauds, the
 * rates libmodbus can set (9600); parity none, even or odd (none);
 * data_bits 7..8 (8); stop_bits 1..2 (1); unit 1..247 (1); timeout_ms
 * 10..10000 (500); and map (a preset's name) or registers (a list of
 * groups: quantity and register required, function holding or input,
 * scale, offset, signed), one of them.  baud, parity, data_bits and
 * stop_bits are for RTU only, and sensors on one serial line must agree on
 * them and have units of their own (mb_check_shared).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <modbus.h>

#include "config.h"
#include "sensor.h"

#define MB_DEFAULT_BAUD		9600
#define MB_DEFAULT_PORT		502
#define MB_DEFAULT_TIMEOUT_MS	500
#define MB_GAP			8	/* unread registers allowed inside one request */
#define MB_SPAN_MAX		MODBUS_MAX_READ_REGISTERS	/* 125 */
#define MB_SCAN_UNITS		16
#define MB_SCAN_TIMEOUT_MS	100

/* What a sensor asks of its line, defaults filled in. */
struct mb_params {
	const char	*device;	/* RTU, or NULL */
	const char	*host;		/* TCP, or NULL */
	int		 port;
	int		 baud;
	char		 parity;
	int		 data_bits;
	int		 stop_bits;
};

/* A serial line or a TCP connection, shared by the sensors on it. */
struct mb_line {
	struct mb_line		*next;
	const struct config	*conf;		/* the configuration it belongs to */
	struct mb_params	 p;		/* device and host point at dev and host */
	char			*dev, *host;	/* own copies of the sensor's strings */
	char			*name;		/* for messages: device or host:port */
	modbus_t		*ctx;
	bool			 connected;
	bool			 dirty;		/* flush before the next request */
	int			 last_errno;	/* libmodbus' errno of the last failure */
	int			 refs;
	pthread_mutex_t		 lock;		/* one request at a time */
};

struct mb_group {
	enum modbus_fn	 fn;
	int		 start;
	int		 count;
};

struct mb_sensor {
	struct mb_line		*line;
	int			 unit;
	int			 timeout_ms;
	size_t			 nregs;
	struct modbus_reg	 regs[SENSOR_MAX_READINGS];
	size_t			 ngroups;
	struct mb_group		 groups[SENSOR_MAX_READINGS];
};

static pthread_mutex_t	 mb_lines_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mb_line	*mb_lines;

/*
 * The rates libmodbus 3.1.6 can set on Linux: those its RTU backend maps
 * to a termios B constant (modbus-rtu.c).  It runs any other rate at 9600
 * without a word, 2000000 included (it has no case for B2000000), so the
 * driver refuses them and the configuration takes exactly this list
 * ("baud" in mb_keys).  0-terminated.
 */
static const int mb_bauds[] = { 110, 300, 600, 1200, 2400, 4800, 9600, 19200, 38400,
	57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000,
	2500000, 3000000, 3500000, 4000000, 0 };

static bool
mb_baud_known(int baud)
{
	for (size_t i = 0; mb_bauds[i] != 0; i++)
		if (mb_bauds[i] == baud)
			return true;
	return false;
}

/* The line settings of sc with the defaults filled in.  0 or -EINVAL. */
static int
mb_params_of(const struct sensor_cfg *sc, struct mb_params *p)
{
	const struct modbus_cfg *m = &sc->modbus;

	memset(p, 0, sizeof(*p));
	p->device = m->device != NULL && *m->device != '\0' ? m->device : NULL;
	p->host = m->host != NULL && *m->host != '\0' ? m->host : NULL;
	if ((p->device == NULL) == (p->host == NULL))
		return -EINVAL;
	if (p->host != NULL) {
		p->port = m->port != 0 ? m->port : MB_DEFAULT_PORT;
		return p->port >= 1 && p->port <= 65535 ? 0 : -EINVAL;
	}
	p->baud = m->baud != 0 ? m->baud : MB_DEFAULT_BAUD;
	p->parity = m->parity != '\0' ? m->parity : 'N';
	p->data_bits = m->data_bits != 0 ? m->data_bits : 8;
	p->stop_bits = m->stop_bits != 0 ? m->stop_bits : 1;
	if (!mb_baud_known(p->baud) || strchr("NEO", p->parity) == NULL ||
	    p->data_bits < 5 || p->data_bits > 8 || p->stop_bits < 1 || p->stop_bits > 2)
		return -EINVAL;
	return 0;
}

static bool
mb_same_endpoint(const struct mb_params *a, const struct mb_params *b)
{
	if (a->device != NULL)
		return b->device != NULL && strcmp(a->device, b->device) == 0;
	return b->host != NULL && strcmp(a->host, b->host) == 0 && a->port == b->port;
}

static bool
mb_same_settings(const struct mb_params *a, const struct mb_params *b)
{
	return a->baud == b->baud && a->parity == b->parity &&
	    a->data_bits == b->data_bits && a->stop_bits == b->stop_bits;
}

static void
mb_line_free(struct mb_line *l)
{
	if (l == NULL)
		return;
	if (l->ctx != NULL) {
		if (l->connected)
			modbus_close(l->ctx);
		modbus_free(l->ctx);
	}
	pthread_mutex_destroy(&l->lock);
	free(l->dev);
	free(l->host);
	free(l->name);
	free(l);
}

static int
mb_line_new(const struct config *conf, const struct mb_params *p, struct mb_line **out)
{
	struct mb_line *l;
	char service[16];
	int err;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	l->conf = conf;
	l->p = *p;
	l->p.device = l->p.host = NULL;
	if (p->device != NULL) {
		if ((l->p.device = l->dev = strdup(p->device)) == NULL ||
		    (l->name = strdup(p->device)) == NULL)
			goto err_nomem;
		l->ctx = modbus_new_rtu(p->device, p->baud, p->parity, p->data_bits, p->stop_bits);
	} else {
		if ((l->p.host = l->host = strdup(p->host)) == NULL ||
		    asprintf(&l->name, "%s:%d", p->host, p->port) < 0) {
			l->name = NULL;
			goto err_nomem;
		}
		snprintf(service, sizeof(service), "%d", p->port);
		l->ctx = modbus_new_tcp_pi(p->host, service);
	}
	if (l->ctx == NULL) {
		err = errno == ENOMEM ? -ENOMEM : -EINVAL;
		mb_line_free(l);
		return err;
	}
	*out = l;
	return 0;

err_nomem:
	mb_line_free(l);
	return -ENOMEM;
}

/*
 * The line of conf for p: the one sensors opened before share, or a new
 * one.  A reference the caller gives back with mb_line_put().  -EINVAL when
 * the line exists with other settings, -ENOMEM.
 */
static int
mb_line_get(const struct config *conf, const struct mb_params *p, struct mb_line **out)
{
	struct mb_line *l;
	int rc = 0;

	pthread_mutex_lock(&mb_lines_lock);
	for (l = mb_lines; l != NULL; l = l->next)
		if (l->conf == conf && mb_same_endpoint(&l->p, p))
			break;
	if (l != NULL) {
		if (mb_same_settings(&l->p, p))
			l->refs++;
		else
			rc = -EINVAL;
	} else if ((rc = mb_line_new(conf, p, &l)) == 0) {
		l->refs = 1;
		l->next = mb_lines;
		mb_lines = l;
	}
	pthread_mutex_unlock(&mb_lines_lock);
	if (rc == 0)
		*out = l;
	return rc;
}

static void
mb_line_put(struct mb_line *l)
{
	struct mb_line **pp;

	if (l == NULL)
		return;
	pthread_mutex_lock(&mb_lines_lock);
	if (--l->refs > 0) {
		pthread_mutex_unlock(&mb_lines_lock);
		return;
	}
	for (pp = &mb_lines; *pp != NULL; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	pthread_mutex_unlock(&mb_lines_lock);
	mb_line_free(l);
}

static void
mb_set_timeout(struct mb_line *l, int ms)
{
	modbus_set_response_timeout(l->ctx, (uint32_t)(ms / 1000), (uint32_t)(ms % 1000) * 1000);
}

static void
mb_disconnect(struct mb_line *l)
{
	if (l->connected)
		modbus_close(l->ctx);
	l->connected = false;
}

/* Open the port or connect; with l->lock held.  0 or a negative errno (see the top). */
static int
mb_connect(struct mb_line *l, int timeout_ms)
{
	int e;

	mb_set_timeout(l, timeout_ms);	/* TCP: the connect timeout */
	if (modbus_connect(l->ctx) < 0) {
		l->last_errno = e = errno != 0 ? errno : EIO;
		if (l->p.host != NULL)
			return -ETIMEDOUT;
		return e == ENOENT || e == ENODEV || e == ENXIO || e == EIO ? -ENODEV : -e;
	}
	l->connected = true;
	l->dirty = true;	/* whatever the adapter held from before */
	return 0;
}

/*
 * What a failed request means (the table at the top); acts on the line:
 * flush it, or close it so that the next request opens it again.
 */
static int
mb_failed(struct mb_line *l, int e)
{
	l->last_errno = e;
	switch (e) {
	case ETIMEDOUT:
	case EMBBADCRC:
	case EMBBADDATA:
	case EMBBADSLAVE:
	case EMBMDATA:
	case EMBBADEXC:
	case EMBUNKEXC:
		modbus_flush(l->ctx);
		l->dirty = true;
		return e == ETIMEDOUT ? -ETIMEDOUT : -EBADMSG;
	case EMBXGTAR:
		return -ETIMEDOUT;
	}
	if (e > MODBUS_ENOBASE && e < EMBXGTAR)
		return -EPROTO;
	mb_disconnect(l);
	if (l->p.host != NULL)
		switch (e) {
		case ECONNRESET: case EPIPE: case ECONNREFUSED: case ECONNABORTED:
		case ENOTCONN: case EHOSTUNREACH: case ENETUNREACH: case ENETDOWN:
		case EHOSTDOWN: case EBADF: case EIO:
			return -ETIMEDOUT;
		default:
			return -EIO;
		}
	switch (e) {
	case EIO: case ENODEV: case ENXIO: case ECONNRESET: case EBADF: case EPIPE:
		return -ENODEV;
	default:
		return -EIO;
	}
}

/*
 * One request for count registers from start of function fn of unit,
 * into dst; with l->lock held.  0 or a negative errno.
 */
static int
mb_request(struct mb_line *l, int unit, int timeout_ms, enum modbus_fn fn, int start,
    int count, uint16_t *dst)
{
	int rc;

	if (!l->connected && (rc = mb_connect(l, timeout_ms)) < 0)
		return rc;
	if (l->dirty) {
		modbus_flush(l->ctx);
		l->dirty = false;
	}
	modbus_set_slave(l->ctx, unit);
	mb_set_timeout(l, timeout_ms);
	errno = 0;
	if (fn == MODBUS_FN_HOLDING)
		rc = modbus_read_registers(l->ctx, start, count, dst);
	else
		rc = modbus_read_input_registers(l->ctx, start, count, dst);
	if (rc == count)
		return 0;
	return mb_failed(l, rc < 0 && errno != 0 ? errno : EMBBADDATA);
}

static int
mb_raw_signed(uint16_t raw)
{
	return raw >= 0x8000 ? (int)raw - 0x10000 : (int)raw;
}

static double
mb_value(const struct modbus_reg *r, uint16_t raw)
{
	double v = r->is_signed ? mb_raw_signed(raw) : raw;
	double scale = r->scale != 0 ? r->scale : 1, n = 1 / scale;

	/* 553 / 10 is 55.3; 553 * 0.1 is 55.300000000000004. */
	if (fabs(scale) < 1 && fabs(n - round(n)) < 1e-9 * fabs(n))
		v /= round(n);
	else
		v *= scale;
	return v + r->offset;
}

static bool
mb_plausible(int q, double v)
{
	switch (q) {
	case Q_TEMPERATURE:
		return v >= -55 && v <= 125;
	case Q_HUMIDITY:
		return v >= 0 && v <= 100;
	case Q_CO2:
		return v >= 0 && v <= 40000;
	case Q_DOOR:
		return v == 0 || v == 1;
	default:
		return false;
	}
}

/* Group the registers of s into as few requests as the gap rule allows. */
static void
mb_group(struct mb_sensor *s)
{
	size_t order[SENSOR_MAX_READINGS];

	for (size_t i = 0; i < s->nregs; i++) {
		size_t j = i;

		for (; j > 0; j--) {
			const struct modbus_reg *a = &s->regs[order[j - 1]], *b = &s->regs[i];

			if (a->fn < b->fn || (a->fn == b->fn && a->reg <= b->reg))
				break;
			order[j] = order[j - 1];
		}
		order[j] = i;
	}
	s->ngroups = 0;
	for (size_t i = 0; i < s->nregs; i++) {
		const struct modbus_reg *r = &s->regs[order[i]];
		struct mb_group *g = s->ngroups > 0 ? &s->groups[s->ngroups - 1] : NULL;

		if (g != NULL && g->fn == r->fn && r->reg <= g->start + g->count + MB_GAP &&
		    r->reg - g->start + 1 <= MB_SPAN_MAX) {
			if (r->reg - g->start + 1 > g->count)
				g->count = r->reg - g->start + 1;
			continue;
		}
		s->groups[s->ngroups++] = (struct mb_group){ r->fn, r->reg, 1 };
	}
}

static void
mb_close(void *state)
{
	struct mb_sensor *s = state;

	if (s == NULL)
		return;
	mb_line_put(s->line);
	free(s);
}

static int
mb_open(const struct config *conf, const struct sensor_cfg *sc, void **state)
{
	const struct modbus_cfg *m = &sc->modbus;
	struct mb_params p;
	struct mb_sensor *s;
	int rc;

	if ((rc = mb_params_of(sc, &p)) < 0)
		return rc;
	if (m->unit < 1 || m->unit > 247 || m->timeout_ms < 0 ||
	    m->regs == NULL || m->nregs == 0 || m->nregs > SENSOR_MAX_READINGS)
		return -EINVAL;
	for (size_t i = 0; i < m->nregs; i++) {
		const struct modbus_reg *r = &m->regs[i];

		if (r->quantity < 0 || r->quantity >= Q_COUNT || r->reg < 0 || r->reg > 65535 ||
		    (r->fn != MODBUS_FN_HOLDING && r->fn != MODBUS_FN_INPUT) ||
		    !isfinite(r->scale) || !isfinite(r->offset))
			return -EINVAL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	s->unit = m->unit;
	s->timeout_ms = m->timeout_ms != 0 ? m->timeout_ms : MB_DEFAULT_TIMEOUT_MS;
	s->nregs = m->nregs;
	memcpy(s->regs, m->regs, m->nregs * sizeof(m->regs[0]));
	mb_group(s);
	if ((rc = mb_line_get(conf, &p, &s->line)) < 0) {
		free(s);
		return rc;
	}
	*state = s;
	return 0;
}

static int
mb_read(void *state, const struct sensor_clock *clk, struct reading *out, size_t max)
{
	struct mb_sensor *s = state;
	struct mb_line *l = s->line;
	uint16_t raw[SENSOR_MAX_READINGS][MB_SPAN_MAX];
	struct reading r[SENSOR_MAX_READINGS];
	int rc = 0;

	(void)clk;
	if (max < s->nregs)
		return -ENOBUFS;
	pthread_mutex_lock(&l->lock);
	for (size_t g = 0; g < s->ngroups && rc == 0; g++)
		rc = mb_request(l, s->unit, s->timeout_ms, s->groups[g].fn,
		    s->groups[g].start, s->groups[g].count, raw[g]);
	pthread_mutex_unlock(&l->lock);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < s->nregs; i++) {
		const struct modbus_reg *reg = &s->regs[i];
		size_t g = 0;

		while (s->groups[g].fn != reg->fn || reg->reg < s->groups[g].start ||
		    reg->reg >= s->groups[g].start + s->groups[g].count)
			g++;
		r[i].q = (enum quantity)reg->quantity;
		r[i].value = mb_value(reg, raw[g][reg->reg - s->groups[g].start]);
		if (!mb_plausible(reg->quantity, r[i].value))
			return -ERANGE;
	}
	memcpy(out, r, s->nregs * sizeof(r[0]));
	return (int)s->nregs;
}

/* ---- scan ---- */

static bool
mb_t_fits(uint16_t raw)
{
	int t = mb_raw_signed(raw);

	return t >= -550 && t <= 1250;
}

/* What one probe said, for the "#" line. */
static void
mb_scan_said(char *buf, size_t size, const struct mb_line *l, int rc, const uint16_t *v)
{
	if (rc == 0)
		snprintf(buf, size, "%u %u (0x%04x 0x%04x)", v[0], v[1], v[0], v[1]);
	else if (rc == -ETIMEDOUT && l->last_errno == ETIMEDOUT)
		snprintf(buf, size, "no answer");
	else
		snprintf(buf, size, "%s", modbus_strerror(l->last_errno));
}

/* Ask units 1..MB_SCAN_UNITS on l; print what answers.  The count found. */
static int
mb_scan_line(struct mb_line *l, FILE *out, int *nid)
{
	const struct mb_params *p = &l->p;
	char hs[96], is[96], extra[64] = "";
	int found = 0;

	if (p->device != NULL)
		fprintf(out, "# modbus: %s at %d %d%c%d: asking units 1..%d\n", l->name,
		    p->baud, p->data_bits, p->parity, p->stop_bits, MB_SCAN_UNITS);
	else
		fprintf(out, "# modbus: %s: asking units 1..%d\n", l->name, MB_SCAN_UNITS);
	if (p->device != NULL && p->parity != 'N')
		snprintf(extra, sizeof(extra), " parity = \"%s\";",
		    p->parity == 'E' ? "even" : "odd");
	if (p->device != NULL && p->data_bits != 8)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), " data_bits = %d;",
		    p->data_bits);
	if (p->device != NULL && p->stop_bits != 1)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), " stop_bits = %d;",
		    p->stop_bits);
	for (int unit = 1; unit <= MB_SCAN_UNITS; unit++) {
		uint16_t h[2] = { 0, 0 }, in[2] = { 0, 0 };
		int hrc, irc = -ETIMEDOUT, err = 0;
		bool hfit, ifit, hzero, izero, up;
		const char *map = NULL;

		pthread_mutex_lock(&l->lock);
		hrc = mb_request(l, unit, MB_SCAN_TIMEOUT_MS, MODBUS_FN_HOLDING, 0, 2, h);
		mb_scan_said(hs, sizeof(hs), l, hrc, h);
		if (l->connected) {
			irc = mb_request(l, unit, MB_SCAN_TIMEOUT_MS, MODBUS_FN_INPUT, 1, 2, in);
			mb_scan_said(is, sizeof(is), l, irc, in);
		}
		if (!(up = l->connected))
			err = l->last_errno;
		pthread_mutex_unlock(&l->lock);
		if (!up) {		/* the port is not there, or went away */
			fprintf(out, "# modbus: %s: %s\n", l->name, modbus_strerror(err));
			break;
		}
		if (hrc == -ETIMEDOUT && irc == -ETIMEDOUT)
			continue;
		found++;
		fprintf(out, "# modbus: %s unit %d: holding 0-1: %s; input 1-2: %s\n",
		    l->name, unit, hs, is);
		hfit = hrc == 0 && h[0] <= 1000 && mb_t_fits(h[1]);
		ifit = irc == 0 && in[1] <= 1000 && mb_t_fits(in[0]);
		hzero = h[0] == 0 && h[1] == 0;
		izero = in[0] == 0 && in[1] == 0;
		/* All zeros fits either map and tells nothing: prefer the one with values. */
		if (hfit && (!ifit || !hzero || izero))
			map = "holding-rh-t";
		else if (ifit)
			map = "input-t-rh";
		if (map == NULL) {
			fprintf(out, "# modbus: %s unit %d: fits no preset: list its registers\n",
			    l->name, unit);
			continue;
		}
		if (hfit && ifit && !hzero && !izero)
			fprintf(out, "# modbus: %s unit %d: input-t-rh fits too\n", l->name, unit);
		if (p->device != NULL)
			fprintf(out, "{ id = \"rs485-%d\"; zone = \"CHANGE-ME\"; driver = \"modbus\"; "
			    "device = \"%s\"; baud = %d;%s unit = %d; map = \"%s\"; interval = 10; },\n",
			    ++*nid, p->device, p->baud, extra, unit, map);
		else
			fprintf(out, "{ id = \"rs485-%d\"; zone = \"CHANGE-ME\"; driver = \"modbus\"; "
			    "host = \"%s\"; port = %d; unit = %d; map = \"%s\"; interval = 10; },\n",
			    ++*nid, p->host, p->port, unit, map);
	}
	return found;
}

static int
mb_scan(const struct config *conf, FILE *out)
{
	int found = 0, nid = 0, nlines = 0, rc;

	for (size_t i = 0; i < conf->nsensors; i++) {
		const struct sensor_cfg *sc = &conf->sensors[i];
		struct mb_params p, q;
		struct mb_line *l;
		bool seen = false;

		if (sc->driver == NULL || strcmp(sc->driver, "modbus") != 0)
			continue;
		if (mb_params_of(sc, &p) < 0) {
			fprintf(out, "# modbus: sensor %s: no valid line settings\n", sc->id);
			continue;
		}
		for (size_t j = 0; j < i && !seen; j++)
			seen = conf->sensors[j].driver != NULL &&
			    strcmp(conf->sensors[j].driver, "modbus") == 0 &&
			    mb_params_of(&conf->sensors[j], &q) == 0 && mb_same_endpoint(&p, &q);
		if (seen)
			continue;
		nlines++;
		if ((rc = mb_line_get(conf, &p, &l)) < 0) {
			fprintf(out, "# modbus: sensor %s: %s\n", sc->id, strerror(-rc));
			continue;
		}
		found += mb_scan_line(l, out, &nid);
		mb_line_put(l);
	}
	if (nlines == 0)
		fprintf(out, "# modbus: no sensor names a serial line (device) or converter (host)\n");
	return found;
}

/*
 * Configuration.  The keys a modbus sensor group may hold; "map" and
 * "registers" are parsed by mb_configure, and mb_check_shared compares
 * the units on one serial line.
 */
static const char *const mb_parities[] = { "none", "even", "odd", NULL };
static const int mb_parity_codes[] = { 'N', 'E', 'O' };

#define MB_KEY(member) CFG_FIELD(struct sensor_cfg, modbus.member)
static const struct cfg_key mb_keys[] = {
	{ "device", CFG_STRING, MB_KEY(device) },
	{ "host", CFG_STRING, MB_KEY(host) },
	{ "port", CFG_INT, MB_KEY(port), .min = 1, .max = 65535, .def = MB_DEFAULT_PORT },
	{ "baud", CFG_INT, MB_KEY(baud), .min = 110, .max = 4000000, .def = MB_DEFAULT_BAUD,
	    .values = mb_bauds },
	{ "parity", CFG_ENUM, MB_KEY(parity), .def = 'N', .names = mb_parities,
	    .codes = mb_parity_codes },
	{ "data_bits", CFG_INT, MB_KEY(data_bits), .min = 7, .max = 8, .def = 8 },
	{ "stop_bits", CFG_INT, MB_KEY(stop_bits), .min = 1, .max = 2, .def = 1 },
	{ "unit", CFG_INT, MB_KEY(unit), .min = 1, .max = 247, .def = 1 },
	{ "timeout_ms", CFG_INT, MB_KEY(timeout_ms), .min = 10, .max = 10000,
	    .def = MB_DEFAULT_TIMEOUT_MS },
	{ .name = "map", .type = CFG_HOOK },
	{ .name = "registers", .type = CFG_HOOK },
	{ .name = NULL },
};
#undef MB_KEY

/* An entry of "registers": value = raw * scale + offset. */
static const char *const mb_functions[] = { "holding", "input", NULL };
static const int mb_function_codes[] = { MODBUS_FN_HOLDING, MODBUS_FN_INPUT };

#define REG_KEY(member) CFG_FIELD(struct modbus_reg, member)
static const struct cfg_key mb_reg_keys[] = {
	{ "quantity", CFG_QUANTITY, REG_KEY(quantity), .def = -1, .required = true },
	{ "function", CFG_ENUM, REG_KEY(fn), .def = MODBUS_FN_HOLDING, .names = mb_functions,
	    .codes = mb_function_codes },
	{ "register", CFG_INT, REG_KEY(reg), .min = 0, .max = 65535, .required = true },
	{ "scale", CFG_DOUBLE, REG_KEY(scale), .min = -1e6, .max = 1e6, .def = 1 },
	{ "offset", CFG_DOUBLE, REG_KEY(offset), .min = -1e6, .max = 1e6 },
	{ "signed", CFG_BOOL, REG_KEY(is_signed) },
	{ .name = NULL },
};
#undef REG_KEY

/* The preset register maps of the two common Chinese RS485 T/RH transmitters (top comment). */
static const struct modbus_reg mb_map_holding_rh_t[] = {
	{ Q_HUMIDITY, MODBUS_FN_HOLDING, 0, 0.1, 0, false },
	{ Q_TEMPERATURE, MODBUS_FN_HOLDING, 1, 0.1, 0, true },
};
static const struct modbus_reg mb_map_input_t_rh[] = {
	{ Q_TEMPERATURE, MODBUS_FN_INPUT, 1, 0.1, 0, true },
	{ Q_HUMIDITY, MODBUS_FN_INPUT, 2, 0.1, 0, false },
};

/* "map": a preset's name. */
static void
mb_configure_map(struct config_ctx *x, struct modbus_cfg *m, const char *name)
{
	const struct modbus_reg *map = NULL;
	char q[CONFIG_QUOTE_MAX];
	size_t n = 2;

	if (strcmp(name, "holding-rh-t") == 0)
		map = mb_map_holding_rh_t;
	else if (strcmp(name, "input-t-rh") == 0)
		map = mb_map_input_t_rh;
	else
		config_error(x, "map", "unknown map %s (want holding-rh-t or input-t-rh, or a "
		    "\"registers\" list)", config_quote(q, name));
	if (map != NULL && config_has(x, "registers"))
		config_error(x, "map", "give either map or registers, not both");
	else if (map != NULL && (m->regs = config_calloc(x, n, sizeof(*map))) != NULL) {
		memcpy(m->regs, map, n * sizeof(*map));
		m->nregs = n;
	}
}

/* "registers": a unit's own register map. */
static void
mb_configure_registers(struct config_ctx *x, struct modbus_cfg *m)
{
	struct config_ctx e;
	int n;

	if ((n = config_list(x, "registers")) <= 0)
		return;
	if (n > SENSOR_MAX_READINGS) {
		config_error(x, "registers", "%d registers; a sensor gives at most %d readings "
		    "(make it two sensors)", n, SENSOR_MAX_READINGS);
		return;
	}
	if ((m->regs = config_calloc(x, (size_t)n, sizeof(*m->regs))) == NULL)
		return;
	m->nregs = (size_t)n;
	for (size_t i = 0; i < m->nregs; i++) {
		const struct modbus_reg *r = &m->regs[i];

		if (config_entry(x, "registers", i, mb_reg_keys, &m->regs[i], &e) != CONFIG_PRESENT)
			continue;
		if (r->scale == 0)
			config_error(&e, "scale", "must not be 0");
		for (size_t j = 0; j < i; j++)
			if (r->quantity >= 0 && m->regs[j].quantity == r->quantity) {
				config_error(&e, "quantity", "%s is read twice (registers[%zu])",
				    quantity_name(r->quantity), j);
				break;
			}
	}
}

/* What one key cannot check: RTU or TCP, and a register map. */
static void
mb_configure(struct config_ctx *x, struct sensor_cfg *sc)
{
	static const char *const rtu_only[] = { "baud", "parity", "data_bits", "stop_bits", NULL };
	struct modbus_cfg *m = &sc->modbus;
	const char *map;

	if (config_string(x, "map", &map) == CONFIG_PRESENT)
		mb_configure_map(x, m, map);
	else
		mb_configure_registers(x, m);
	if (m->device != NULL && m->host != NULL)
		config_error(x, "host", "give either device (RTU) or host (TCP), not both");
	else if (!config_has(x, "device") && !config_has(x, "host"))
		config_error(x, "device",
		    "missing (driver \"modbus\" needs device for RTU or host for TCP)");
	if (!config_has(x, "map") && !config_has(x, "registers"))
		config_error(x, "map", "missing (driver \"modbus\" needs map or registers)");
	if (m->host != NULL) {
		for (size_t k = 0; rtu_only[k] != NULL; k++)
			if (config_has(x, rtu_only[k]))
				config_error(x, rtu_only[k],
				    "only for Modbus RTU (device), not TCP (host)");
	} else if (config_has(x, "port")) {
		config_error(x, "port", "only for Modbus TCP (host)");
	}
}

/*
 * Units on one serial line share its settings (mb_line_get refuses a line
 * opened with others) and each needs a unit id of its own.
 */
static void
mb_check_shared(struct config_ctx *x, const struct config *conf, size_t i)
{
	const struct sensor_cfg *a = &conf->sensors[i];
	struct mb_params pa, pb;

	if (a->kind != SENSOR_MODBUS || a->modbus.device == NULL || mb_params_of(a, &pa) < 0)
		return;
	for (size_t j = 0; j < i; j++) {
		const struct sensor_cfg *b = &conf->sensors[j];

		if (b->kind != SENSOR_MODBUS || b->modbus.device == NULL ||
		    mb_params_of(b, &pb) < 0 || !mb_same_endpoint(&pa, &pb))
			continue;
		if (!mb_same_settings(&pa, &pb))
			config_error(x, "device", "\"%s\" is also sensors[%zu]'s line (line %d) with "
			    "other settings: units on one line share baud, parity, data_bits and "
			    "stop_bits", pa.device, j, b->line);
		else if (a->modbus.unit == b->modbus.unit)
			config_error(x, "unit", "unit %d on \"%s\" is also sensors[%zu] (line %d)",
			    a->modbus.unit, pa.device, j, b->line);
		break;
	}
}

static void
mb_unconfigure(struct sensor_cfg *sc)
{
	free(sc->modbus.regs);
	sc->modbus.regs = NULL;
}

const struct sensor_driver modbus_driver = {
	.name = "modbus",
	.open = mb_open,
	.read = mb_read,
	.close = mb_close,
	.blocks = sensor_blocks_always,	/* a round trip takes tens of ms, no answer timeout_ms */
	.bus = sensor_bus_of,		/* one worker per adapter or line */
	.scan = mb_scan,
	.kind = SENSOR_MODBUS,
	.keys = mb_keys,
	.configure = mb_configure,
	.check_shared = mb_check_shared,
	.unconfigure = mb_unconfigure,
};
