/*
 * A fake Modbus slave for tests: a real Modbus server in a thread of the
 * test process, on a pseudo-terminal (RTU) or on 127.0.0.1 (TCP), that the
 * real driver talks to as it would to an RS485 line or an RS485-to-Ethernet
 * converter.  Unit tests use it in-process; integration tests start it in
 * the test and point the daemon's configuration at modbus_slave_path() or
 * modbus_slave_port().
 *
 * One slave serves one line (a pty, or a TCP port) and any number of unit
 * ids on it; it answers only the units added with modbus_slave_add_unit()
 * and ignores the others in silence, as a real multi-drop line does (the
 * master sees a timeout).  Each unit has holding registers 0..15 and input
 * registers 0..15, all 0 at first; reading beyond them is answered with
 * exception 2 (illegal data address) by libmodbus' own modbus_reply().
 * Requests with a bad CRC are ignored, as real slaves do.
 *
 * Faults are set per unit and apply to the next `count` requests addressed
 * to that unit (count < 0: until changed; MODBUS_SLAVE_OK clears).
 *
 * All functions are thread-safe against the server thread: a test may
 * change registers and faults while the driver reads.  Nothing here calls
 * cmocka; failures return NULL / -errno.  Everything is named
 * modbus_slave_* because every tests/lib file is linked into every test.
 */
#ifndef COLDGATE_TESTS_MODBUS_SLAVE_H
#define COLDGATE_TESTS_MODBUS_SLAVE_H

#include <stddef.h>
#include <stdint.h>

#define MODBUS_SLAVE_NREGS	16	/* holding and input registers 0..15 per unit */

enum modbus_slave_table {
	MODBUS_SLAVE_HOLDING,		/* function 0x03 */
	MODBUS_SLAVE_INPUT,		/* function 0x04 */
};

enum modbus_slave_fault {
	MODBUS_SLAVE_OK,		/* answer normally */
	/*
	 * RTU: the right answer with its CRC inverted.  TCP has no CRC: the
	 * answer's byte count is one short, so the master sees a malformed frame.
	 */
	MODBUS_SLAVE_BAD_CRC,
	MODBUS_SLAVE_EXCEPTION,		/* an exception answer, code = arg (1..11) */
	MODBUS_SLAVE_SILENT,		/* no answer at all */
	MODBUS_SLAVE_LATE,		/* the right answer, arg ms late (the server waits) */
	MODBUS_SLAVE_RAW,		/* the bytes given to modbus_slave_set_raw() */
};

struct modbus_slave;

/*
 * RTU on a new pseudo-terminal pair in raw mode: the slave serves the
 * master side; the driver opens the slave side, modbus_slave_path().  When
 * link is not NULL a symlink of that name is made to the slave side (and
 * replaced if it exists), so a test can restart the slave on a new pty
 * under the same name, as udev's /dev/serial/by-id names do.  NULL and
 * errno on failure.  Free with modbus_slave_stop().
 */
struct modbus_slave	*modbus_slave_start_rtu(const char *link);
/*
 * TCP on 127.0.0.1:port (0: a free port the kernel picks; modbus_slave_port()
 * tells which).  Takes any number of connections.  NULL and errno on failure
 * (EADDRINUSE when port is taken).
 */
struct modbus_slave	*modbus_slave_start_tcp(int port);
/*
 * Stop serving and free: the server thread is joined, the pty's master
 * side or the TCP sockets closed (the driver sees its port vanish), the
 * symlink removed.  Accepts NULL.
 */
void			 modbus_slave_stop(struct modbus_slave *);

/* The device the driver opens: the symlink if one was asked for, else the pty; "" for TCP. */
const char		*modbus_slave_path(const struct modbus_slave *);
/* The pty's own name (/dev/pts/N); "" for TCP. */
const char		*modbus_slave_pty(const struct modbus_slave *);
/* The TCP port; 0 for RTU. */
int			 modbus_slave_port(const struct modbus_slave *);

/* Answer for unit (1..247) from now on.  0 or -EINVAL. */
int			 modbus_slave_add_unit(struct modbus_slave *, int unit);
/* Set a register of an added unit.  0 or -EINVAL. */
int			 modbus_slave_set_reg(struct modbus_slave *, int unit,
			    enum modbus_slave_table, int reg, uint16_t value);
/* A fault for the next count requests to unit (count < 0: until changed).  0 or -EINVAL. */
int			 modbus_slave_set_fault(struct modbus_slave *, int unit,
			    enum modbus_slave_fault, int arg, int count);

/*
 * For the next count requests to unit, answer with frame[0..len) (at most
 * 256 bytes), an RTU frame with its CRC as recorded from a device: sent as
 * it is on RTU; on TCP its CRC is dropped and an MBAP header with the
 * request's transaction id put before it.  0 or -EINVAL.
 */
int			 modbus_slave_set_raw(struct modbus_slave *, int unit,
			    const uint8_t *frame, size_t len, int count);
/*
 * The last request heard on the line (to any unit, with a good CRC), as
 * it came (RTU: the frame with its CRC; TCP: with its MBAP header), into
 * buf[0..size).  Its length (0: none yet).
 */
size_t			 modbus_slave_last_request(struct modbus_slave *, uint8_t *buf, size_t size);

/*
 * Requests with a good CRC addressed to unit, answered or not (unit 0: all
 * requests, to any unit, added or not), and answers written for unit
 * (faulty ones included).  Since the start.
 */
unsigned		 modbus_slave_requests(struct modbus_slave *, int unit);
unsigned		 modbus_slave_replies(struct modbus_slave *, int unit);
/* TCP connections accepted since the start. */
unsigned		 modbus_slave_connections(struct modbus_slave *);

#endif
