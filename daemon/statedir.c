/*
 * The state directory's lock: see statedir.h.  Owns the lock file and
 * nothing else in the directory.
 */
#include "statedir.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * coldgatectl's probe holds a shared lock for a few microseconds; a daemon
 * starting at that moment tries again for this long before it believes
 * another daemon has the directory.
 */
#define LOCK_TRIES	20
#define LOCK_PAUSE_MS	50

int
statedir_ensure(const char *dir)
{
	struct stat st;
	int err;

	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		err = -errno;
		log_warn("gateway.state_dir %s: cannot create", dir);
		return err;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_warnx("gateway.state_dir %s: not a directory", dir);
		return -ENOTDIR;
	}
	return 0;
}

static int
lock_path(const char *dir, char *buf, size_t len)
{
	if ((size_t)snprintf(buf, len, "%s/%s", dir, STATE_LOCK_NAME) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* The pid written in the lock file, or 0. */
static pid_t
read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	long pid;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, NULL, 10);
	return pid > 0 && pid <= INT_MAX ? (pid_t)pid : 0;
}

int
statedir_lock(const char *dir, pid_t *holder)
{
	struct timespec pause = { 0, LOCK_PAUSE_MS * 1000000L };
	char path[PATH_MAX], pid[32];
	int fd, n, err;

	*holder = 0;
	if ((err = lock_path(dir, path, sizeof(path))) < 0) {
		log_warnx("gateway.state_dir %s: too long", dir);
		return err;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640)) < 0) {
		err = -errno;
		log_warn("lock file %s", path);
		return err;
	}
	for (int i = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; i++) {
		err = -errno;
		if (err != -EWOULDBLOCK || i == LOCK_TRIES) {
			if (err == -EWOULDBLOCK)
				*holder = read_pid(fd);
			else
				log_warn("lock file %s", path);
			close(fd);
			return err;
		}
		nanosleep(&pause, NULL);
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warn("lock file %s: cannot write our pid", path);
	return fd;
}

int
statedir_holder(const char *dir, pid_t *pid)
{
	char path[PATH_MAX];
	int fd, err;

	*pid = 0;
	if ((err = lock_path(dir, path, sizeof(path))) < 0)
		return err;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -errno;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		close(fd);
		return 0;
	}
	err = errno == EWOULDBLOCK ? 1 : -errno;
	if (err == 1)
		*pid = read_pid(fd);
	close(fd);
	return err;
}
