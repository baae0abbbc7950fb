/*
 * The fake Modbus slave (see modbus_slave.h).
 *
 * Replies are built and sent by libmodbus itself (modbus_reply() against a
 * modbus_mapping_t per unit, modbus_reply_exception()), on a context whose
 * socket is set with modbus_set_socket(): the pty's master side, or the
 * TCP connection the request came on.  Only the faulty answers are built
 * here, since libmodbus cannot send a bad CRC.
 *
 * TCP requests are received with modbus_receive().  RTU requests are framed
 * here: libmodbus' RTU server answers one slave id only, and after a
 * request for another id (which it skips) it throws away the next frame as
 * that other slave's answer, so it cannot stand for a multi-drop line.
 * An RTU frame ends when it has the length its function code implies, or
 * at a 20 ms gap.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <modbus.h>

#include "modbus_slave.h"

#define MODBUS_SLAVE_UNITS	248	/* ids 0..247; 0 is broadcast, never answered */
#define MODBUS_SLAVE_CLIENTS	8
#define MODBUS_SLAVE_GAP_MS	20

struct modbus_slave_unit {
	bool			 present;
	modbus_mapping_t	*map;
	enum modbus_slave_fault	 fault;
	int			 arg;
	int			 count;
	unsigned		 requests;
	unsigned		 replies;
	uint8_t			 raw[256];	/* MODBUS_SLAVE_RAW */
	size_t			 nraw;
};

struct modbus_slave {
	bool		 tcp;
	modbus_t	*ctx;
	pthread_t	 thread;
	bool		 running;
	pthread_mutex_t	 lock;		/* units, counters */
	int		 stop[2];	/* pipe: a byte on it stops the thread */

	/* RTU */
	int		 master;	/* the pty side we serve */
	int		 slave;		/* held open so the pty lives between the driver's opens */
	char		 pty[64];
	char		*link;

	/* TCP */
	int		 listen;
	int		 port;
	int		 clients[MODBUS_SLAVE_CLIENTS];
	unsigned	 connections;

	unsigned	 requests;	/* all, to any unit */
	uint8_t		 last[MODBUS_TCP_MAX_ADU_LENGTH];	/* the last request */
	size_t		 nlast;
	struct modbus_slave_unit units[MODBUS_SLAVE_UNITS];
};

static uint16_t
modbus_slave_crc(const uint8_t *p, size_t n)
{
	uint16_t crc = 0xffff;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int b = 0; b < 8; b++)
			crc = crc & 1 ? (uint16_t)((crc >> 1) ^ 0xa001) : (uint16_t)(crc >> 1);
	}
	return crc;
}

static void
modbus_slave_write(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Wait ms on the stop pipe: false if asked to stop meanwhile. */
static bool
modbus_slave_wait(struct modbus_slave *s, int ms)
{
	struct pollfd p = { .fd = s->stop[0], .events = POLLIN };

	return poll(&p, 1, ms) == 0;
}

/*
 * The fault that applies to this request to u (and use one of its count).
 * Called with the lock held.
 */
static enum modbus_slave_fault
modbus_slave_take_fault(struct modbus_slave_unit *u, int *arg)
{
	enum modbus_slave_fault f = u->fault;

	*arg = u->arg;
	if (f != MODBUS_SLAVE_OK && u->count > 0 && --u->count == 0)
		u->fault = MODBUS_SLAVE_OK;
	return f;
}

/*
 * A read answer with a broken frame, for fd: RTU with its CRC inverted,
 * TCP with a byte count one short.  hdr is the request's header length
 * (RTU 1, TCP 7), req the request.  Called with the lock held.
 */
static void
modbus_slave_send_broken(struct modbus_slave *s, int fd, const struct modbus_slave_unit *u,
    const uint8_t *req, int hdr)
{
	uint8_t rsp[300];
	int fn = req[hdr], addr = req[hdr + 1] << 8 | req[hdr + 2];
	int nb = req[hdr + 3] << 8 | req[hdr + 4];
	const uint16_t *tab = fn == 0x03 ? u->map->tab_registers : u->map->tab_input_registers;
	size_t n = 0;

	if ((fn != 0x03 && fn != 0x04) || nb < 1 || addr + nb > MODBUS_SLAVE_NREGS)
		nb = 0;
	if (s->tcp) {
		memcpy(rsp, req, 4);		/* transaction and protocol ids */
		rsp[4] = 0;
		rsp[5] = (uint8_t)(3 + 2 * nb);	/* unit, function, count, data */
		n = 6;
	}
	rsp[n++] = req[hdr - 1];
	rsp[n++] = (uint8_t)fn;
	rsp[n++] = (uint8_t)(s->tcp ? 2 * nb - 1 : 2 * nb);
	for (int i = 0; i < nb; i++) {
		rsp[n++] = (uint8_t)(tab[addr + i] >> 8);
		rsp[n++] = (uint8_t)tab[addr + i];
	}
	if (!s->tcp) {
		uint16_t crc = (uint16_t)~modbus_slave_crc(rsp, n);

		rsp[n++] = (uint8_t)crc;
		rsp[n++] = (uint8_t)(crc >> 8);
	}
	modbus_slave_write(fd, rsp, n);
}

/* The recorded frame of u, as it is (RTU) or in an MBAP header (TCP).  With the lock held. */
static void
modbus_slave_send_raw(struct modbus_slave *s, int fd, const struct modbus_slave_unit *u,
    const uint8_t *req)
{
	uint8_t rsp[7 + sizeof(u->raw)];
	size_t pdu = u->nraw >= 3 ? u->nraw - 3 : 0;	/* after the unit id, before the CRC */

	if (!s->tcp || u->nraw < 3) {
		modbus_slave_write(fd, u->raw, u->nraw);
		return;
	}
	memcpy(rsp, req, 4);
	rsp[4] = (uint8_t)((pdu + 1) >> 8);
	rsp[5] = (uint8_t)(pdu + 1);
	memcpy(rsp + 6, u->raw, pdu + 1);
	modbus_slave_write(fd, rsp, 7 + pdu);
}

/*
 * Answer one request (its CRC checked, for RTU) that came on fd.  unit is
 * the id it is addressed to, hdr the header length before the function code.
 */
static void
modbus_slave_handle(struct modbus_slave *s, int fd, const uint8_t *req, int len, int hdr)
{
	int unit = req[hdr - 1], arg;
	struct modbus_slave_unit *u;
	enum modbus_slave_fault f;

	pthread_mutex_lock(&s->lock);
	s->requests++;
	s->nlast = (size_t)len < sizeof(s->last) ? (size_t)len : sizeof(s->last);
	memcpy(s->last, req, s->nlast);
	if (unit < 1 || unit >= MODBUS_SLAVE_UNITS || !s->units[unit].present) {
		pthread_mutex_unlock(&s->lock);
		return;			/* not ours: silence */
	}
	u = &s->units[unit];
	u->requests++;
	f = modbus_slave_take_fault(u, &arg);
	if (f == MODBUS_SLAVE_SILENT) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	if (f == MODBUS_SLAVE_LATE) {
		pthread_mutex_unlock(&s->lock);
		if (!modbus_slave_wait(s, arg))
			return;
		pthread_mutex_lock(&s->lock);
	}
	modbus_set_socket(s->ctx, fd);
	modbus_set_slave(s->ctx, unit);
	if (f == MODBUS_SLAVE_BAD_CRC)
		modbus_slave_send_broken(s, fd, u, req, hdr);
	else if (f == MODBUS_SLAVE_RAW)
		modbus_slave_send_raw(s, fd, u, req);
	else if (f == MODBUS_SLAVE_EXCEPTION)
		modbus_reply_exception(s->ctx, req, (unsigned)arg);
	else
		modbus_reply(s->ctx, req, len, u->map);
	u->replies++;
	pthread_mutex_unlock(&s->lock);
}

/*
 * The length of the RTU request at p[0..n) by its function code: 0 when
 * more bytes are needed to tell, -1 for a function whose frame only a gap
 * can end.
 */
static int
modbus_slave_rtu_len(const uint8_t *p, size_t n)
{
	if (n < 2)
		return 0;
	switch (p[1]) {
	case 0x01: case 0x02: case 0x03: case 0x04: case 0x05: case 0x06:
		return 8;
	case 0x07: case 0x0b: case 0x0c: case 0x11:
		return 4;
	case 0x0f: case 0x10:
		return n < 7 ? 0 : 9 + p[6];
	default:
		return -1;
	}
}

static void
modbus_slave_rtu_frame(struct modbus_slave *s, const uint8_t *p, size_t n)
{
	if (n < 4 || modbus_slave_crc(p, n - 2) != (p[n - 2] | p[n - 1] << 8))
		return;			/* garbage or a bad CRC: real slaves say nothing */
	modbus_slave_handle(s, s->master, p, (int)n, 1);
}

static void *
modbus_slave_rtu_serve(void *arg)
{
	struct modbus_slave *s = arg;
	uint8_t buf[512];
	size_t len = 0;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = s->stop[0], .events = POLLIN },
			{ .fd = s->master, .events = POLLIN },
		};
		int n = poll(p, 2, len > 0 ? MODBUS_SLAVE_GAP_MS : -1), flen;
		ssize_t r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || p[0].revents != 0)
			break;
		if (n == 0) {		/* a gap ends what has come */
			modbus_slave_rtu_frame(s, buf, len);
			len = 0;
			continue;
		}
		if (!(p[1].revents & POLLIN)) {
			(void)modbus_slave_wait(s, 10);	/* hung up: should not happen, we hold the slave side */
			continue;
		}
		if ((r = read(s->master, buf + len, sizeof(buf) - len)) <= 0)
			continue;
		len += (size_t)r;
		while ((flen = modbus_slave_rtu_len(buf, len)) > 0 && (size_t)flen <= len) {
			modbus_slave_rtu_frame(s, buf, (size_t)flen);
			memmove(buf, buf + flen, len - (size_t)flen);
			len -= (size_t)flen;
		}
		if (len == sizeof(buf))
			len = 0;
	}
	return NULL;
}

static void *
modbus_slave_tcp_serve(void *arg)
{
	struct modbus_slave *s = arg;
	uint8_t req[MODBUS_TCP_MAX_ADU_LENGTH];

	for (;;) {
		struct pollfd p[2 + MODBUS_SLAVE_CLIENTS];
		int n;

		p[0] = (struct pollfd){ .fd = s->stop[0], .events = POLLIN };
		p[1] = (struct pollfd){ .fd = s->listen, .events = POLLIN };
		for (int i = 0; i < MODBUS_SLAVE_CLIENTS; i++)
			p[2 + i] = (struct pollfd){ .fd = s->clients[i], .events = POLLIN };
		if ((n = poll(p, 2 + MODBUS_SLAVE_CLIENTS, -1)) < 0 && errno == EINTR)
			continue;
		if (n < 0 || p[0].revents != 0)
			break;
		if (p[1].revents & POLLIN) {
			int fd = accept4(s->listen, NULL, NULL, SOCK_CLOEXEC), i;

			for (i = 0; fd >= 0 && i < MODBUS_SLAVE_CLIENTS; i++)
				if (s->clients[i] < 0) {
					s->clients[i] = fd;
					pthread_mutex_lock(&s->lock);
					s->connections++;
					pthread_mutex_unlock(&s->lock);
					break;
				}
			if (fd >= 0 && i == MODBUS_SLAVE_CLIENTS)
				close(fd);
		}
		for (int i = 0; i < MODBUS_SLAVE_CLIENTS; i++) {
			int rc;

			if (s->clients[i] < 0 || p[2 + i].revents == 0)
				continue;
			modbus_set_socket(s->ctx, s->clients[i]);
			if ((rc = modbus_receive(s->ctx, req)) < 0) {
				close(s->clients[i]);	/* closed by the client, or garbage */
				s->clients[i] = -1;
			} else if (rc > 0)
				modbus_slave_handle(s, s->clients[i], req, rc, 7);
		}
	}
	return NULL;
}

static struct modbus_slave *
modbus_slave_new(bool tcp)
{
	struct modbus_slave *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->tcp = tcp;
	s->master = s->slave = s->listen = -1;
	for (int i = 0; i < MODBUS_SLAVE_CLIENTS; i++)
		s->clients[i] = -1;
	if (pipe2(s->stop, O_CLOEXEC) < 0) {
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

static struct modbus_slave *
modbus_slave_run(struct modbus_slave *s, void *(*serve)(void *))
{
	int err;

	if ((err = pthread_create(&s->thread, NULL, serve, s)) != 0) {
		modbus_slave_stop(s);
		errno = err;
		return NULL;
	}
	s->running = true;
	return s;
}

struct modbus_slave *
modbus_slave_start_rtu(const char *link)
{
	struct modbus_slave *s;
	struct termios tio;
	int err;

	if ((s = modbus_slave_new(false)) == NULL)
		return NULL;
	if ((s->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0 ||
	    grantpt(s->master) < 0 || unlockpt(s->master) < 0 ||
	    ptsname_r(s->master, s->pty, sizeof(s->pty)) != 0 ||
	    fcntl(s->master, F_SETFL, O_NONBLOCK) < 0 ||
	    (s->slave = open(s->pty, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0 ||
	    tcgetattr(s->slave, &tio) < 0)
		goto err;
	cfmakeraw(&tio);	/* no echo: our answers must not come back to us */
	if (tcsetattr(s->slave, TCSANOW, &tio) < 0)
		goto err;
	if (link != NULL) {
		if ((s->link = strdup(link)) == NULL)
			goto err;
		if ((unlink(link) < 0 && errno != ENOENT) || symlink(s->pty, link) < 0) {
			free(s->link);
			s->link = NULL;
			goto err;
		}
	}
	if ((s->ctx = modbus_new_rtu(s->pty, 9600, 'N', 8, 1)) == NULL)
		goto err;
	modbus_set_socket(s->ctx, s->master);
	return modbus_slave_run(s, modbus_slave_rtu_serve);

err:
	err = errno;
	modbus_slave_stop(s);
	errno = err;
	return NULL;
}

struct modbus_slave *
modbus_slave_start_tcp(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sin);
	struct modbus_slave *s;
	int one = 1, err;

	if (port < 0 || port > 65535) {
		errno = EINVAL;
		return NULL;
	}
	if ((s = modbus_slave_new(true)) == NULL)
		return NULL;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	/* modbus_tcp_listen() cannot bind port 0 and tell which port it got: bind here. */
	if ((s->listen = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(s->listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(s->listen, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(s->listen, 8) < 0 ||
	    getsockname(s->listen, (struct sockaddr *)&sin, &slen) < 0)
		goto err;
	s->port = ntohs(sin.sin_port);
	if ((s->ctx = modbus_new_tcp("127.0.0.1", s->port)) == NULL)
		goto err;
	return modbus_slave_run(s, modbus_slave_tcp_serve);

err:
	err = errno;
	modbus_slave_stop(s);
	errno = err;
	return NULL;
}

void
modbus_slave_stop(struct modbus_slave *s)
{
	if (s == NULL)
		return;
	if (s->running) {
		modbus_slave_write(s->stop[1], (const uint8_t *)"x", 1);
		pthread_join(s->thread, NULL);
	}
	/* The descriptors are ours: modbus_close() would close one of them again. */
	if (s->ctx != NULL)
		modbus_free(s->ctx);
	for (int i = 0; i < MODBUS_SLAVE_CLIENTS; i++)
		if (s->clients[i] >= 0)
			close(s->clients[i]);
	if (s->listen >= 0)
		close(s->listen);
	if (s->master >= 0)
		close(s->master);
	if (s->slave >= 0)
		close(s->slave);
	if (s->link != NULL) {
		unlink(s->link);
		free(s->link);
	}
	for (int i = 0; i < MODBUS_SLAVE_UNITS; i++)
		if (s->units[i].map != NULL)
			modbus_mapping_free(s->units[i].map);
	close(s->stop[0]);
	close(s->stop[1]);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

const char *
modbus_slave_path(const struct modbus_slave *s)
{
	return s->link != NULL ? s->link : s->pty;
}

const char *
modbus_slave_pty(const struct modbus_slave *s)
{
	return s->pty;
}

int
modbus_slave_port(const struct modbus_slave *s)
{
	return s->port;
}

int
modbus_slave_add_unit(struct modbus_slave *s, int unit)
{
	modbus_mapping_t *map;

	if (unit < 1 || unit > 247)
		return -EINVAL;
	if ((map = modbus_mapping_new(0, 0, MODBUS_SLAVE_NREGS, MODBUS_SLAVE_NREGS)) == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	if (s->units[unit].map == NULL) {
		s->units[unit].map = map;
		map = NULL;
	}
	s->units[unit].present = true;
	pthread_mutex_unlock(&s->lock);
	if (map != NULL)		/* added before: keep its registers */
		modbus_mapping_free(map);
	return 0;
}

int
modbus_slave_set_reg(struct modbus_slave *s, int unit, enum modbus_slave_table t, int reg,
    uint16_t value)
{
	int rc = 0;

	if (unit < 1 || unit > 247 || reg < 0 || reg >= MODBUS_SLAVE_NREGS)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (s->units[unit].map == NULL)
		rc = -EINVAL;
	else if (t == MODBUS_SLAVE_HOLDING)
		s->units[unit].map->tab_registers[reg] = value;
	else if (t == MODBUS_SLAVE_INPUT)
		s->units[unit].map->tab_input_registers[reg] = value;
	else
		rc = -EINVAL;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int
modbus_slave_set_fault(struct modbus_slave *s, int unit, enum modbus_slave_fault f, int arg,
    int count)
{
	if (unit < 1 || unit > 247 || (unsigned)f > MODBUS_SLAVE_RAW)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->units[unit].fault = count == 0 ? MODBUS_SLAVE_OK : f;
	s->units[unit].arg = arg;
	s->units[unit].count = count;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int
modbus_slave_set_raw(struct modbus_slave *s, int unit, const uint8_t *frame, size_t len,
    int count)
{
	if (unit < 1 || unit > 247 || len > sizeof(s->units[unit].raw))
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	memcpy(s->units[unit].raw, frame, len);
	s->units[unit].nraw = len;
	s->units[unit].fault = count == 0 ? MODBUS_SLAVE_OK : MODBUS_SLAVE_RAW;
	s->units[unit].count = count;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

size_t
modbus_slave_last_request(struct modbus_slave *s, uint8_t *buf, size_t size)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->nlast < size ? s->nlast : size;
	memcpy(buf, s->last, n);
	pthread_mutex_unlock(&s->lock);
	return n;
}

unsigned
modbus_slave_requests(struct modbus_slave *s, int unit)
{
	unsigned n = 0;

	pthread_mutex_lock(&s->lock);
	if (unit == 0)
		n = s->requests;
	else if (unit > 0 && unit < MODBUS_SLAVE_UNITS)
		n = s->units[unit].requests;
	pthread_mutex_unlock(&s->lock);
	return n;
}

unsigned
modbus_slave_replies(struct modbus_slave *s, int unit)
{
	unsigned n = 0;

	pthread_mutex_lock(&s->lock);
	if (unit > 0 && unit < MODBUS_SLAVE_UNITS)
		n = s->units[unit].replies;
	pthread_mutex_unlock(&s->lock);
	return n;
}

unsigned
modbus_slave_connections(struct modbus_slave *s)
{
	unsigned n;

	pthread_mutex_lock(&s->lock);
	n = s->connections;
	pthread_mutex_unlock(&s->lock);
	return n;
}
