/*
 * Fake I2C buses for build/tests/coldgated-fakehw (tests/fakehw/i2c.c):
 * open, close and ioctl wrapped with -Wl,--wrap.  With COLDGATE_FAKEHW_I2C
 * naming a directory, /dev/i2c-N is DIR/i2c-N and the parts on it are
 * files there (see tests/fakehw/README.md, "I2C"); without it, and for
 * every other path and fd, the calls go to the real libc.
 */
#ifndef COLDGATE_FAKE_I2C_H
#define COLDGATE_FAKE_I2C_H

#define FAKE_I2C_ENV		"COLDGATE_FAKEHW_I2C"
#define FAKE_I2C_PERIOD_ENV	"COLDGATE_FAKEHW_I2C_PERIOD_MS"	/* SCD4x period, default 5000 */

int	__wrap_open(const char *path, int flags, ...);
int	__wrap_close(int fd);
int	__wrap_ioctl(int fd, unsigned long request, ...);

#endif
