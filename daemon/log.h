/*
 * Logging in the manner of OpenBSD's log.h.  In the foreground (and under
 * systemd, which runs us with -f) lines go to stderr; when stderr is the
 * journal (JOURNAL_STREAM is set) each line starts with a "<N>" syslog
 * priority so journald files it at the right level.
 */
#ifndef COLDGATE_LOG_H
#define COLDGATE_LOG_H

#include <stdarg.h>

/* verbose: 0 = info and up, 1 = debug too. */
void log_init(int verbose);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));   /* appends strerror(errno) */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Only at start-up or when out of memory. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
