/*
 * Logging (see log.h).  Owns the priority prefixes and the verbosity;
 * must not decide what is worth saying: its callers do.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int log_verbose;
static int log_journal;		/* stderr is connected to journald */

void
log_init(int verbose)
{
	log_verbose = verbose;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

static void
vlog(int pri, const char *fmt, va_list ap, const char *err)
{
	char buf[1024];
	int saved = errno;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (log_journal) {
		fprintf(stderr, "<%d>%s%s%s\n", pri, buf, err ? ": " : "", err ? err : "");
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld coldgate: %s%s%s\n", when, ts.tv_nsec / 1000000, buf,
		    err ? ": " : "", err ? err : "");
	}
	errno = saved;
}

#define LOG_BODY(pri, err) do { va_list ap; va_start(ap, fmt); vlog(pri, fmt, ap, err); va_end(ap); } while (0)

void log_warn(const char *fmt, ...) { const char *e = strerror(errno); LOG_BODY(4, e); }
void log_warnx(const char *fmt, ...) { LOG_BODY(4, NULL); }
void log_info(const char *fmt, ...) { LOG_BODY(6, NULL); }

void
log_debug(const char *fmt, ...)
{
	if (!log_verbose)
		return;
	LOG_BODY(7, NULL);
}

void
fatal(const char *fmt, ...)
{
	const char *e = strerror(errno);

	LOG_BODY(2, e);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY(2, NULL);
	exit(1);
}
