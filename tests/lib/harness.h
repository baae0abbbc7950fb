/*
 * The integration test harness: the real coldgated against a real mosquitto
 * on 127.0.0.1 and a free port, each test in a temp dir of its own.
 *
 * A test's life: harness_setup() (in a cmocka setup function) makes the temp
 * dir and starts a broker; the test writes a config, subscribes, starts the
 * daemon and waits for what it expects; it calls harness_pass() as its last
 * statement.  harness_teardown() stops everything and removes the temp dir,
 * or, when the test did not reach harness_pass(), keeps it and prints the
 * daemon's log and the messages it saw.  HARNESS_KEEP=1 in the environment
 * does the same for passing tests (to look at what they saw).
 *
 * Waits take a timeout in seconds and poll: they return as soon as the
 * condition holds, so a generous timeout (HARNESS_TIMEOUT) costs nothing on
 * a fast machine and keeps a slow, noisy one from failing.  Never assert on
 * how long something took.
 *
 * The subscriber runs libmosquitto's own thread (mosquitto_loop_start): fine
 * in test code, unlike in the daemon.  Everything else runs on the test's
 * thread.
 */
#ifndef COLDGATE_TESTS_HARNESS_H
#define COLDGATE_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#define HARNESS_TIMEOUT	60.0		/* seconds: for what should take < 5 */
#define HARNESS_GW	"gw-test"
#define HARNESS_BASE	"coldgate/" HARNESS_GW "/"

/*
 * The head of a daemon config; harness_write_config() fills in the
 * placeholders @PORT@ (broker port), @STATE_DIR@ (DIR/state) and @DIR@ (the
 * temp dir).  Tests append publish, zones and sensors.  Every setting is on
 * its own line, so a test can compute line numbers.
 */
#define HARNESS_CFG_HEAD \
	"gateway = {\n" \
	"  id = \"" HARNESS_GW "\";\n" \
	"  site = \"integration test\";\n" \
	"  state_dir = \"@STATE_DIR@\";\n" \
	"};\n" \
	"mqtt = {\n" \
	"  host = \"127.0.0.1\";\n" \
	"  port = @PORT@;\n" \
	"  keepalive = 10;\n" \
	"  reconnect_min = 1;\n" \
	"  reconnect_max = 2;\n" \
	"};\n" \
	"storage = {\n" \
	"  path = \"coldgate.db\";\n" \
	"  commit_interval_ms = 200;\n" \
	"};\n"

struct harness_msg {
	char		*topic;
	char		*payload;	/* NUL-terminated copy */
	int		 len;
	bool		 retain;
	json_object	*json;		/* parsed payload, NULL if not JSON */
	int64_t		 seq;		/* integer "seq" of the payload, -1 if none */
};

struct harness_sub;

struct harness_broker {
	int		 port;		/* fixed after the first start */
	pid_t		 pid;		/* 0 when not running */
	char		*conf;
	char		*log;
	char		*dir;		/* persistence lives here */
	bool		 refuse;	/* refuse every client's CONNECT (not authorised) */
};

struct harness_proc {
	pid_t		 pid;		/* 0 when not running */
	int		 status;	/* waitpid status of the last exit */
};

struct harness {
	char		*dir;		/* the temp dir, removed when the test passes */
	char		*state_dir;	/* DIR/state (not created: the daemon does) */
	char		*store;		/* DIR/state/coldgate.db */
	char		*log;		/* DIR/coldgated.log: the daemon's stderr */
	const char	*coldgated;	/* $COLDGATED */
	const char	*coldgatectl;	/* $COLDGATECTL */
	const char	*top;		/* $COLDGATE_TOP */
	struct harness_broker broker;
	struct harness_proc daemon;
	struct harness_sub *sub;	/* the subscriber that harness_teardown stops */
	bool		 passed;
};

/* --- the test's frame ---------------------------------------------------- */

/*
 * cmocka setup/teardown: *state becomes a struct harness with a temp dir and
 * a running broker.  Returns 0, or -1 (the test is reported failed).
 */
int	 harness_setup(void **state);
int	 harness_teardown(void **state);
/* Same without a broker (harness_broker_start() later if needed). */
int	 harness_setup_nobroker(void **state);
/* The last statement of a test: marks it passed, so teardown cleans up. */
void	 harness_pass(struct harness *);

/* Seconds on the monotonic clock. */
double	 harness_now(void);
/* Epoch milliseconds. */
int64_t	 harness_wall_ms(void);
void	 harness_sleep(double seconds);
/* Poll pred(arg) every 50 ms until it is true (returns true) or timeout. */
bool	 harness_wait(double timeout, bool (*pred)(void *), void *arg);

/* --- files ---------------------------------------------------------------- */

/* DIR/name; malloc'd, caller frees. */
char	*harness_path(const struct harness *, const char *name);
/* Write text to DIR/name; returns the malloc'd path (caller frees). */
char	*harness_write_file(const struct harness *, const char *name, const char *text);
/* Write the bytes; returns 0 or -errno. */
int	 harness_write_bytes(const char *path, const void *buf, size_t len);
/* The whole file, NUL-terminated (*len without it); NULL if unreadable. */
char	*harness_read_file(const char *path, size_t *len);
bool	 harness_exists(const char *path);
/*
 * tmpl with @PORT@, @STATE_DIR@, @DIR@ filled in, written to DIR/name.
 * Returns the malloc'd path (caller frees).
 */
char	*harness_write_config(const struct harness *, const char *name, const char *tmpl);
/* s with every occurrence of from replaced by to; malloc'd, caller frees. */
char	*harness_replace(const char *s, const char *from, const char *to);
/* 1-based line number of the first line of text containing needle, or -1. */
int	 harness_line_of(const char *text, const char *needle);

/* --- mosquitto ------------------------------------------------------------ */

/*
 * Start mosquitto on 127.0.0.1: on a free port the first time, on the same
 * port afterwards (a restart).  Waits until the port accepts connections.
 * Persistence is on (in the temp dir), so a persistent subscriber's session
 * and queued messages survive a stop/start, as on a real broker.
 */
int	 harness_broker_start(struct harness *);
/* SIGTERM and wait; accepts a stopped broker. */
void	 harness_broker_stop(struct harness *);

/* A free TCP port on 127.0.0.1 (bind port 0, read it back, close). */
int	 harness_free_port(void);

/* --- coldgated ------------------------------------------------------------ */

/*
 * Start "$COLDGATED -f -v -c cfg" with its stdout and stderr appended to
 * h->log.  env: NULL or a NULL-terminated list of "NAME=value" to add (or
 * "NAME=" + value "@PID@" is replaced by the child's own pid).  Returns 0 or
 * -1.
 */
int	 harness_daemon_start(struct harness *, const char *cfg, const char *const *env);
/* Send a signal (no-op when not running). */
void	 harness_daemon_signal(struct harness *, int sig);
/*
 * Wait up to timeout for the daemon to exit.  Returns its exit code, 128+N
 * for death by signal N, or -1 on timeout (it is still running).
 */
int	 harness_daemon_wait(struct harness *, double timeout);
bool	 harness_daemon_running(struct harness *);
/* SIGTERM, wait; returns as harness_daemon_wait (SIGKILL after timeout). */
int	 harness_daemon_stop(struct harness *);
/* The daemon's log so far (malloc'd, caller frees; "" when none). */
char	*harness_daemon_log(const struct harness *);
/* Wait until the daemon's log contains needle. */
bool	 harness_daemon_log_wait(const struct harness *, const char *needle, double timeout);

/*
 * Run argv[0] (a full path) with arguments, wait up to timeout.  *out and
 * *err (each may be NULL) get its stdout and stderr, malloc'd.  Returns the
 * exit code, 128+N for a signal, -1 if it could not run or timed out.
 */
int	 harness_run(struct harness *, const char *const *argv, char **out, char **err,
	     double timeout);

/* --- the subscriber ------------------------------------------------------- */

/*
 * Connect to the broker and subscribe to pattern with QoS 1.  persistent:
 * clean_session=false with a fixed client id, so the broker queues what
 * arrives while it is away (across a broker restart too).  Waits for the
 * SUBACK.  Returns NULL on failure.  The first subscriber of a test is also
 * put in h->sub (harness_teardown stops it and dumps it on failure).
 */
struct harness_sub *harness_sub_start(struct harness *, const char *pattern, bool persistent);
void	 harness_sub_stop(struct harness_sub *);	/* accepts NULL */

/*
 * The messages are kept in arrival order and never freed before stop, so a
 * pointer from harness_sub_get() stays valid.
 */
size_t	 harness_sub_count(struct harness_sub *);
/* Publish payload on topic (QoS 1, not retained) through the subscriber's connection. */
int	 harness_sub_publish(struct harness_sub *, const char *topic, const char *payload);
const struct harness_msg *harness_sub_get(struct harness_sub *, size_t i);
/* How many times the connection (re)connected. */
int	 harness_sub_connects(struct harness_sub *);

/*
 * Index of the first message at or after from whose topic is HARNESS_BASE +
 * suffix (suffix "telemetry", "status", "event", "alarm/" matches any alarm
 * when it ends in '/') and for which match(msg, arg) holds (match may be
 * NULL); -1 if none.
 */
long	 harness_sub_find(struct harness_sub *, size_t from, const char *suffix,
	     bool (*match)(const struct harness_msg *, const void *), const void *arg);
/* The same, waiting up to timeout for such a message. */
long	 harness_sub_wait(struct harness_sub *, size_t from, const char *suffix,
	     bool (*match)(const struct harness_msg *, const void *), const void *arg,
	     double timeout);
/* Wait until n messages at or after from match. Returns the count seen. */
size_t	 harness_sub_wait_n(struct harness_sub *, size_t from, const char *suffix,
	     bool (*match)(const struct harness_msg *, const void *), const void *arg, size_t n,
	     double timeout);
/* Largest seq among messages so far (0 if none). */
int64_t	 harness_sub_max_seq(struct harness_sub *);

/*
 * The delivery check of SPEC §4/§5 over messages [from, count) that carry a
 * seq: each seq not seen before is exactly one more than the largest seen
 * before it (so no gap, and new ones in order), and a repeat is
 * byte-identical to the first message with that seq (a redelivery, not a new
 * message reusing a number).  If first_seq > 0 the first must be that.
 * Returns true, or false with the reason in why.
 */
bool	 harness_check_seqs(struct harness_sub *, size_t from, int64_t first_seq,
	     char *why, size_t whylen);

/* Print the messages (the last max of them) to stderr. */
void	 harness_sub_dump(struct harness_sub *, size_t max);

/* Ready-made matches for harness_sub_find/_wait/_wait_n. */
/* arg: const char *state: a status payload with that "state". */
bool	 harness_match_state(const struct harness_msg *, const void *state);
/* arg: const char *sensor: a telemetry payload with a reading of that sensor. */
bool	 harness_match_sensor(const struct harness_msg *, const void *sensor);
/* arg: const int64_t *: a payload with a seq above it. */
bool	 harness_match_seq_above(const struct harness_msg *, const void *seq);
/* arg: const int64_t *: a telemetry payload whose window starts at or after it. */
bool	 harness_match_start_from(const struct harness_msg *, const void *ms);

/* --- JSON helpers ---------------------------------------------------------- */

/* The member's value, NULL if obj is not an object or lacks it. */
json_object *harness_json_get(json_object *obj, const char *key);
/* String member, or NULL. */
const char *harness_json_str(json_object *obj, const char *key);
/* Integer member (not a double) into *v; false if absent or not an int. */
bool	 harness_json_int(json_object *obj, const char *key, int64_t *v);
/* Number member (int or double) into *v; false if absent or not a number. */
bool	 harness_json_num(json_object *obj, const char *key, double *v);
/*
 * In a telemetry message, stat ("mean", "min", "max", "last") of the first
 * reading of sensor and quantity (NULL: any) that has it; NAN if none does.
 */
double	 harness_reading_stat(const struct harness_msg *, const char *sensor,
	     const char *quantity, const char *stat);

#endif
