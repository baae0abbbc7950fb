/*
 * Reading the small text attributes of sysfs, shared by the drivers that
 * talk to a kernel driver through files (hwmon, iio, dht, w1).
 */
#ifndef COLDGATE_SYSFS_H
#define COLDGATE_SYSFS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Read the whole file at path into buf (size bytes, NUL-terminated).
 * Returns the length, or:
 *   -ENOENT  the file does not exist (ENOENT, or ENOTDIR: a path component
 *            is not a directory);
 *   -ENODEV  the device went away (ENODEV from open or read);
 *   -EIO     anything else: EIO, ETIMEDOUT or EBUSY from the chip driver,
 *            a directory, or a file that does not fit in size - 1 bytes.
 */
int	sysfs_read(const char *path, char *buf, size_t size);
/* sysfs_read without one trailing newline; returns the length without it. */
int	sysfs_read_text(const char *path, char *buf, size_t size);
/* Whether dir/name reads want (its newline aside). */
bool	sysfs_name_is(const char *dir, const char *want);
/* Whether dir/file exists (without reading it: a read may take seconds). */
bool	sysfs_has(const char *dir, const char *file);

/* For the scans' configuration snippets. */
/* Whether a device name can stand in a configuration string as it is. */
bool	sysfs_name_printable(const char *name);
/* prefix + name as a sensor id into id: anything outside [A-Za-z0-9_-] becomes '-'. */
void	sysfs_scan_id(char *id, size_t size, const char *prefix, const char *name);

#endif
