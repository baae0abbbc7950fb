/*
 * The state directory and who owns it.  One coldgated at a time may use a
 * state directory: it holds an exclusive flock(2) on STATE_LOCK_NAME there
 * for its whole life, with its pid written in the file.  The lock goes with
 * the process (a kill -9 or a power cut frees it); the file stays, so no
 * exit ever races another daemon's start by unlinking it.  coldgatectl asks
 * the same file whether a daemon is running.
 */
#ifndef COLDGATE_STATEDIR_H
#define COLDGATE_STATEDIR_H

#include <sys/types.h>

#define STATE_LOCK_NAME	"coldgated.lock"

/* Create dir (0750) if it is missing; 0, or -errno with the reason logged. */
int	 statedir_ensure(const char *dir);

/*
 * Take the state directory's lock for this process.  Returns the lock's fd
 * (keep it open; closing it lets go), -EWOULDBLOCK with *holder set to the
 * pid that has it (0 if unknown), or another -errno (logged).
 */
int	 statedir_lock(const char *dir, pid_t *holder);

/*
 * Is a coldgated holding dir's lock?  1 with *pid (0 if unknown), 0 if
 * not, or -errno when the lock file cannot be read (e.g. -ENOENT: no
 * coldgated has ever run there).  Takes no lock that a starting daemon
 * could trip over for longer than the probe itself.
 */
int	 statedir_holder(const char *dir, pid_t *pid);

#endif
