/*
 * sysfs — the one way the sysfs drivers read a kernel attribute: open,
 * read to the end, close, each time, so no descriptor outlives an unplug.
 *
 * The attributes are small text files ("21375\n", "sht3x\n", a w1_slave
 * page) that the kernel renders at each read, often by talking to the part
 * there and then; a read can therefore fail with the chip driver's own
 * errno (EIO, ETIMEDOUT, EBUSY) or with ENODEV when the device is gone.
 * sysfs_read folds all that into three answers (see sysfs.h); a driver
 * that wants fewer folds them further itself.
 *
 * It is no driver and owns no configuration keys.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sysfs.h"

int
sysfs_read(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;
	int fd, err = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT || errno == ENOTDIR ? -ENOENT :
		    errno == ENODEV ? -ENODEV : -EIO;
	for (;;) {
		if (len + 1 >= size) {
			err = -EIO;
			break;
		}
		n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno == ENODEV ? -ENODEV : -EIO;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (err < 0)
		return err;
	buf[len] = '\0';
	return (int)len;
}

int
sysfs_read_text(const char *path, char *buf, size_t size)
{
	int len;

	if ((len = sysfs_read(path, buf, size)) > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	return len;
}

bool
sysfs_name_is(const char *dir, const char *want)
{
	char path[PATH_MAX], buf[128];

	if ((size_t)snprintf(path, sizeof(path), "%s/name", dir) >= sizeof(path))
		return false;
	return sysfs_read_text(path, buf, sizeof(buf)) >= 0 && strcmp(buf, want) == 0;
}

bool
sysfs_has(const char *dir, const char *file)
{
	char path[PATH_MAX];

	return (size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) < sizeof(path) &&
	    access(path, F_OK) == 0;
}

bool
sysfs_name_printable(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\' || *s == 0x7f)
			return false;
	return true;
}

void
sysfs_scan_id(char *id, size_t size, const char *prefix, const char *name)
{
	snprintf(id, size, "%s%s", prefix, name);
	for (char *p = id; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			*p = '-';
}
