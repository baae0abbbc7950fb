/*
 * systemd's readiness and watchdog protocol: one datagram per state change
 * to the AF_UNIX socket named by $NOTIFY_SOCKET.  The protocol is a stable,
 * documented interface (sd_notify(3) "Notes"), a dozen lines to speak; we
 * speak it ourselves rather than link libsystemd, whose dependencies
 * (libgcrypt, liblzma, libzstd, liblz4) would cost more private memory
 * than the whole daemon is allowed.
 */
#ifndef COLDGATE_NOTIFY_H
#define COLDGATE_NOTIFY_H

#include <stdint.h>

/* Send "READY=1", "WATCHDOG=1", "STOPPING=1", ...; a no-op without NOTIFY_SOCKET. */
int	 notify_send(const char *state);
/* The watchdog interval systemd asked for in microseconds, or 0. */
uint64_t notify_watchdog_usec(void);

#endif
