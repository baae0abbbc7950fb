/*
 * The configuration as a value (SPEC §3).  config_load() parses a libconfig
 * file into a fresh struct config and validates all of it; the daemon swaps
 * it in only when it is good, so a bad SIGHUP keeps the old one running.
 */
#ifndef COLDGATE_CONFIG_H
#define COLDGATE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "quantity.h"

#define CONFIG_ID_MAX	64		/* [A-Za-z0-9_-]{1,64} */
#define CONFIG_DEFAULT_PATH "/etc/coldgate/coldgate.cfg"

enum store_sync { STORE_SYNC_FULL, STORE_SYNC_NORMAL };

struct script_point {
	double	t;			/* seconds since the daemon started */
	double	v;
};

struct fail_window {
	double	from, to;		/* seconds since start, reads fail in [from, to) */
};

/* A GPIO input's pull resistor, as the kernel sets it (libgpiod's bias flags). */
enum gpio_bias { GPIO_BIAS_AS_IS, GPIO_BIAS_DISABLE, GPIO_BIAS_PULL_UP, GPIO_BIAS_PULL_DOWN };

struct zone_cfg {
	char	 id[CONFIG_ID_MAX + 1];
	char	*name;			/* UTF-8, may be Chinese; defaults to id */
	char	*profile;		/* may be NULL */
	int	 line;
};

/*
 * What a sensor's driver needs besides the keys every sensor has.  Which
 * block of struct sensor_cfg's union holds it follows from the driver.
 */
enum sensor_kind {
	SENSOR_DEVICE,			/* ds18b20, dht, hwmon, iio, sht, scd4x (0: a zeroed cfg) */
	SENSOR_SIM,
	SENSOR_GPIO,			/* gpio-contact */
	SENSOR_MODBUS,
};

struct sim_cfg {
	const char *profile;		/* "mushroom-house", "cold-room" or NULL with a script */
	enum quantity quantity;		/* with a script (nscript > 0) */
	struct script_point *script;
	size_t	 nscript;
	struct fail_window *fail;
	size_t	 nfail;
	double	 read_delay;		/* seconds each read takes, as a slow bus would */
};

/* A part on a device node or a sysfs name. */
struct device_cfg {
	const char *device;		/* w1 id, IIO/hwmon name, /dev/i2c-N */
	int	 address;		/* I2C: 7-bit address, -1 = the part's default */
};

struct gpio_cfg {
	const char *chip;		/* "gpiochip0" or a path */
	int	 line;			/* line offset, -1 when absent */
	int	 debounce_ms;		/* default 50, 0..10000 */
	enum gpio_bias bias;		/* default as-is */
	bool	 active_low;
};

/* modbus: device (RTU) or host (TCP) */
struct modbus_cfg {
	const char *device;		/* RTU: serial port */
	const char *host;		/* TCP: RS485-to-Ethernet converter */
	struct modbus_reg *regs;	/* from "map" (a preset) or "registers" */
	size_t	 nregs;
	int	 port;			/* TCP: default 502 */
	int	 baud;			/* RTU: default 9600 */
	int	 data_bits;		/* RTU: default 8 */
	int	 stop_bits;		/* RTU: default 1 */
	int	 unit;			/* slave id 1..247, default 1 */
	int	 timeout_ms;		/* answer timeout, default 500 */
	int	 parity;		/* RTU: 'N' (default), 'E' or 'O' */
};

/*
 * A configured sensor.  Its strings (id, zone, driver and the driver's
 * own) live in the config's string pool and go with config_free; a
 * gateway holds a hundred of these for as long as it runs, so only the
 * block of the union that its kind names is kept.
 */
struct sensor_cfg {
	const char *id;			/* [A-Za-z0-9_-]{1,64} */
	const char *zone;		/* a zone's id */
	size_t	 zone_idx;		/* index into config.zones */
	const char *driver;		/* name in the driver table */
	double	 interval;		/* seconds between reads, >= 0.01 */
	int	 line;
	enum sensor_kind kind;
	bool	 spike_filter;		/* every driver; default true: refuse one-read jumps */
	union {
		struct sim_cfg	  sim;
		struct device_cfg dev;
		struct gpio_cfg	  gpio;
		struct modbus_cfg modbus;
	};
};

enum modbus_fn { MODBUS_FN_HOLDING, MODBUS_FN_INPUT };

/* One quantity in a Modbus unit's register map: value = raw * scale + offset. */
struct modbus_reg {
	int		 quantity;	/* enum quantity */
	enum modbus_fn	 fn;		/* 0x03 holding or 0x04 input */
	int		 reg;		/* register address 0..65535 */
	double		 scale;		/* default 1 (0.1 for the presets) */
	double		 offset;	/* default 0 */
	bool		 is_signed;	/* two's complement 16 bit */
};

/*
 * A local output (buzzer, relay, lamp) on a GPIO line.  A buzzer or relay
 * is on while an alarm of its zones at or above its severity is active and
 * not acknowledged; a lamp is on from the moment such an alarm is raised
 * until it clears (acknowledging does not put it out).  zones empty means
 * every zone and the gateway's own alarms.
 */
enum output_role { OUTPUT_BUZZER, OUTPUT_RELAY, OUTPUT_LAMP, OUTPUT_ROLE_COUNT };

struct output_cfg {
	char	 id[CONFIG_ID_MAX + 1];
	const char *driver;		/* name in the output driver table */
	/* The driver's keys (output.h .keys): gpio-output's.  Strings in the config's pool. */
	const char *chip;
	int	 gpio_line;
	bool	 active_low;
	enum output_role role;
	bool	 critical_only;		/* severity = "critical"; default any */
	char	(*zones)[CONFIG_ID_MAX + 1];
	size_t	 nzones;
	int	 line;
};

/*
 * An alarm rule's type, parsed from its name once in config.c; the keys
 * each type uses are in struct alarm_cfg below.
 */
enum alarm_type {
	ALARM_TYPE_THRESHOLD,		/* the default (0: a zeroed cfg) */
	ALARM_TYPE_EXCURSION,
	ALARM_TYPE_RATE,
	ALARM_TYPE_STALE,
	ALARM_TYPE_FAULT,
	ALARM_TYPE_DOOR,
	ALARM_TYPE_STORE_FULL,
	ALARM_TYPE_UPLINK_DOWN,
	ALARM_TYPE_COUNT
};

/* An alarm rule as configured (or taken from a zone's profile). */
struct alarm_cfg {
	char	 zone[CONFIG_ID_MAX + 1];	/* "" for a sensor's or the gateway's rule */
	char	 sensor[CONFIG_ID_MAX + 1];	/* "" for a zone rule */
	enum alarm_type type;
	enum quantity quantity;		/* threshold, excursion, rate: when has_quantity */
	bool	 has_quantity;
	bool	 critical;		/* severity = "critical"; default "warning" */
	bool	 has_high, has_low;
	double	 high, low;		/* threshold, excursion */
	double	 hysteresis;		/* threshold */
	int	 delay;			/* seconds beyond the limit before it fires */
	int	 total, window;		/* excursion: seconds beyond within a rolling window */
	double	 rate;			/* rate: units per minute */
	int	 span;			/* rate: seconds the change is measured over */
	int	 stale_after;		/* stale */
	int	 fault_count;		/* fault: failed reads in a row, default 3 */
	int	 door_open_max;		/* door */
	int	 store_full_pct;	/* store_full: percent of max_size_mb, default 90 */
	int	 uplink_down_max;	/* uplink_down */
	char	*from_profile;		/* the zone profile it came from, or NULL */
	int	 line;
};

struct config {
	char	*path;			/* the file it came from */
	struct str_block *strings;	/* the sensors' and outputs' strings, freed with it */

	struct {
		char	 id[CONFIG_ID_MAX + 1];
		char	*site;
		char	*state_dir;	/* default /var/lib/coldgate */
		char	*sysfs_root;	/* default /sys */
		char	*profiles_dir;	/* zone profiles; default "profiles" next to the file */
	} gateway;

	struct {
		char	*host;		/* default 127.0.0.1 */
		int	 port;		/* default 1883, 1..65535 */
		int	 keepalive;	/* default 30, 5..3600 */
		char	*base_topic;	/* default "coldgate"; no wildcards, no leading/trailing '/' */
		char	*client_id;	/* default "coldgate-" + gateway.id */
		char	*username;
		char	*password_file;
		char	*tls_ca_file, *tls_cert_file, *tls_key_file;
		int	 max_inflight;	/* outbox window, default 20, 1..1000 */
		int	 reconnect_min;	/* backoff seconds, default 1 */
		int	 reconnect_max;	/* default 60 */
	} mqtt;

	struct {
		char	*path;		/* absolute: state_dir joined with storage.path */
		int	 max_size_mb;	/* default 256, 1..1048576 */
		int	 retain_days;	/* default 30, 1..3650 */
		enum store_sync sync;	/* default full */
		int	 commit_interval_ms; /* default 1000, 10..60000 */
	} storage;

	struct {
		int	 interval;	/* window seconds, default 60, 1..86400 */
		int	 summary_period; /* seconds; 86400 (default) = local calendar days */
		int	 summary_hold;	/* seconds a reading stands for at most, default 900 */
	} publish;

	int	 watchdog_sec;		/* unused unless systemd gives WATCHDOG_USEC */

	struct zone_cfg *zones;
	size_t	 nzones;
	struct sensor_cfg *sensors;
	size_t	 nsensors;
	struct alarm_cfg *alarms;
	size_t	 nalarms;
	struct output_cfg *outputs;
	size_t	 noutputs;
};

/*
 * A driver's configuration keys, as a table config.c walks: each driver
 * (a file in sensors/) declares the keys of its sensor groups -- beyond id, zone,
 * driver, interval and spike_filter, which every sensor has -- in a
 * { NULL }-terminated array of these, reachable as its descriptor's .keys
 * (sensor.h); an output driver those of its output groups beyond id,
 * driver, role, severity and zones (output.h).  config.c knows no driver:
 * it sets each key's default, parses what the file gives by the key's type
 * into the field at .off, and names file, line and full key in every
 * error.  A key of another driver's table (of the same kind) is "not used
 * by driver"; a key of none is "unknown".
 */
enum cfg_type {
	CFG_INT,		/* int in min..max; or one of values[] when given */
	CFG_DOUBLE,		/* double in min..max (max INFINITY: no upper bound) */
	CFG_STRING,		/* const char *: non-empty text, in the config's pool */
	CFG_BOOL,		/* bool */
	CFG_ENUM,		/* int: one of names[]; stores codes[i], or i without codes */
	CFG_QUANTITY,		/* int (enum quantity): a quantity's name */
	CFG_HOOK,		/* parsed by the driver's configure(); the table only names it */
};

struct cfg_key {
	const char	*name;
	enum cfg_type	 type;
	size_t		 off;		/* the field it fills, from the table's base */
	size_t		 size;		/* sizeof that field: config.c checks it fits the type */
	double		 min, max;	/* CFG_INT, CFG_DOUBLE */
	double		 def;		/* default: a number, 0/1, or a code of CFG_ENUM */
	const int	*values;	/* CFG_INT: the only values allowed, 0-terminated */
	const char *const *names;	/* CFG_ENUM: NULL-terminated */
	const int	*codes;		/* CFG_ENUM: what each name stores; NULL: its index */
	bool		 required;	/* absent is an error; def then only fills the field */
};

/* The size of the field a key of that type fills (0 for CFG_HOOK). */
size_t	 config_key_size(enum cfg_type);

/* .off and .size of a field: CFG_FIELD(struct sensor_cfg, modbus.baud). */
#define CFG_FIELD(type, member) \
	.off = offsetof(type, member), .size = sizeof(((type *)0)->member)

/* What a getter found. */
#define CONFIG_ABSENT	0
#define CONFIG_PRESENT	1
#define CONFIG_BAD	(-1)

#define CONFIG_PRE_MAX	96		/* "sensors[12].registers[3]" */
#define CONFIG_QUOTE_MAX 256

struct parser;

/*
 * A group being parsed, as a driver's hooks see it: config.c fills it and
 * the hooks only hand it back.  setting is libconfig's, which only
 * config.c includes.
 */
struct config_ctx {
	struct parser	*p;
	const void	*setting;		/* the group */
	char		 pre[CONFIG_PRE_MAX];	/* its key, "sensors[2]" */
	const char	*driver;		/* named by "missing (driver ... needs it)" */
};

/* An error about the key NAME of the group, at NAME's line (else the group's). */
void	 config_error(struct config_ctx *, const char *name, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* An error about entry I of the list NAME ("NAME[I]"), at that entry's line. */
void	 config_error_at(struct config_ctx *, const char *name, size_t i, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));
/* Whether the group has a setting NAME. */
bool	 config_has(const struct config_ctx *, const char *name);
/* The string NAME, non-empty and good text; *out points into the file's tree. */
int	 config_string(struct config_ctx *, const char *name, const char **out);
/*
 * The list NAME of (a, b) number pairs, as a malloc'd array of 2 * *n
 * doubles (caller frees).  CONFIG_PRESENT even for an empty list (*out NULL).
 */
int	 config_pairs(struct config_ctx *, const char *name, const char *what, double **out,
	    size_t *n);
/*
 * The list NAME of groups: its length, 0 when absent, or -1 when it is no
 * list or empty (reported).  config_entry parses its entry I by KEYS into
 * BASE and gives *entry, the context for errors about that entry.
 */
int	 config_list(struct config_ctx *, const char *name);
int	 config_entry(struct config_ctx *, const char *name, size_t i, const struct cfg_key *keys,
	    void *base, struct config_ctx *entry);
/* calloc that counts a failure as the configuration's "out of memory"; n 0: NULL. */
void	*config_calloc(struct config_ctx *, size_t n, size_t size);
/* S in double quotes for a message, escaped where it is not good text. */
const char *config_quote(char buf[CONFIG_QUOTE_MAX], const char *s);

/*
 * Parse and validate PATH.  On success returns a new config (free it with
 * config_free) and sets *errors to NULL.  On failure returns NULL and sets
 * *errors to a malloc'd text of one or more lines "FILE:LINE: key: what is
 * wrong" (caller frees).
 */
struct config	*config_load(const char *path, char **errors);
void		 config_free(struct config *);	/* accepts NULL */

/* Index of the zone/sensor with that id, or -1. */
int		 config_zone_index(const struct config *, const char *id);
int		 config_sensor_index(const struct config *, const char *id);

/* The device node or name of a sensor on one (a Modbus RTU port included), or NULL. */
const char	*sensor_device(const struct sensor_cfg *);

/* The configuration's name of an alarm type ("threshold", ...). */
const char	*alarm_type_name(enum alarm_type);

/* The configuration's name of an output role ("buzzer", ...). */
const char	*output_role_name(enum output_role);

/* true if s matches [A-Za-z0-9_-]{1,64} */
bool		 config_valid_id(const char *s);

#endif
