/*
 * Records for food safety and the cold chain: the audit trail's rows
 * (hash-chained by the store, audit.h) and the daily summaries -- each
 * zone's period closed into one "summary" event and an audit row, and the
 * running period read back from the store at start and reload.  Owns the
 * records fields of struct daemon; the summary arithmetic is summary.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "payload.h"
#include "summary.h"

/*
 * The retained status.  Online also carries the site and the zones with
 * their names (SPEC §3: names pass through to payloads), so a dashboard
 * learns what "house-1" is called from the one message it reads first.
 */
/*
 * A row in the audit trail, its detail built by payload.c in b (a buffer
 * of its own: d->jb may hold a message being built); b is freed.  Failing
 * to write it is logged, never fatal.
 */
void
records_audit(struct daemon *d, enum payload_audit_kind kind, struct jbuf *b)
{
	const char *text, *name = payload_audit_kind_name(kind);

	if ((text = jb_text(b)) == NULL ||
	    store_audit_append(d->store, now_ms(CLOCK_REALTIME), name, text) < 0)
		log_warnx("could not write a \"%s\" row to the audit trail", name);
	jb_free(b);
}

/* The configuration in force, by the hash of its file, for the audit trail. */
void
records_audit_config(struct daemon *d, enum payload_audit_kind kind)
{
	struct jbuf b = { 0 };
	char hex[2 * AUDIT_HASH_LEN + 1];

	payload_audit_config(&b, &(struct payload_audit_config){ .version = COLDGATE_VERSION,
	    .config = d->conf->path,
	    .sha256 = audit_file_sha256(d->conf->path, hex) == 0 ? hex : NULL });
	records_audit(d, kind, &b);
}

/*
 * The summary period holding t: a local calendar day by default (what a
 * food-safety record means by "a day"), else epoch-aligned periods.
 */
static void
period_bounds(const struct config *c, int64_t t, int64_t *start, int64_t *end)
{
	int64_t period = (int64_t)c->publish.summary_period * 1000;

	if (c->publish.summary_period == 86400) {
		time_t secs = (time_t)(t / 1000);
		struct tm tm;

		localtime_r(&secs, &tm);
		tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		tm.tm_isdst = -1;
		*start = (int64_t)mktime(&tm) * 1000;
		tm.tm_mday++;
		tm.tm_isdst = -1;
		*end = (int64_t)mktime(&tm) * 1000;
		if (*end > *start && *start <= t)
			return;
	}
	*start = agg_window_start(t, period);
	*end = *start + period;
}

static struct payload_summary
zone_of(const struct daemon *d, const struct summary_result *r)
{
	const struct zone_cfg *z = &d->conf->zones[r->zone];

	return (struct payload_summary){ .zone = z->id, .zone_name = z->name,
	    .start = r->day_start_ms, .end = r->day_end_ms };
}

static void
flush_zone(struct daemon *d)
{
	if (d->sum_zone < 0)
		return;
	payload_summary_end(&d->jb);
	uplink_event_queue(d);
	d->sum_zone = -1;
}

/*
 * Each zone's day becomes one "summary" event (through the outbox, so it
 * is stored and delivered like everything else) and an audit-trail row
 * per quantity.
 */
static void
on_summary(const struct summary_result *r, void *arg)
{
	struct daemon *d = arg;
	struct jbuf a = { 0 };
	struct payload_summary zone = zone_of(d, r);
	struct payload_summary_item item = { .quantity = r->quantity, .n = r->n, .min = r->min,
	    .max = r->max, .mean = r->mean, .mkt = r->mkt, .covered_s = r->covered_s,
	    .out_of_range_s = r->out_of_range_s };

	if ((long)r->zone != d->sum_zone) {
		flush_zone(d);
		uplink_event(d, &(struct payload_event){ .type = PAYLOAD_SUMMARY,
		    .summary = zone });
		d->sum_zone = (long)r->zone;
	}
	payload_summary_item(&d->jb, &item);

	payload_audit_summary(&a, &zone, &item);
	records_audit(d, PAYLOAD_AUDIT_SUMMARY, &a);
}

/* Close the open period and open the one holding now (never going back). */
static void
period_close(struct daemon *d, int64_t now)
{
	int64_t start, end, old_end = summary_day_end(d->sum);

	period_bounds(d->conf, now, &start, &end);
	if (start < old_end)
		period_bounds(d->conf, old_end, &start, &end);
	d->sum_zone = -1;
	if (summary_day(d->sum, start, end, on_summary, d) < 0)
		log_warnx("summary: cannot close the period ending %lld", (long long)old_end);
	flush_zone(d);
}

void
records_summary_feed(struct daemon *d, size_t sensor, enum quantity q, double v, int64_t t)
{
	if (d->sum == NULL)
		return;
	if (summary_add(d->sum, sensor, q, v, t) == -ERANGE) {
		period_close(d, t);
		summary_add(d->sum, sensor, q, v, t);
	}
}

struct replay {
	const struct config	*c;
	struct summary		*sum;
	int			 last;		/* index of the last sensor looked up */
	int64_t			 rows;
};

static int
replay_cb(const char *sensor, const char *zone, int quantity, double value, int64_t ts,
    int flags, void *arg)
{
	struct replay *r = arg;
	int i = r->last;

	(void)zone;
	if (READING_QUALITY(flags) != QUALITY_OK)
		return 0;	/* refused readings never enter a summary */
	if (i < 0 || strcmp(r->c->sensors[i].id, sensor) != 0)
		i = config_sensor_index(r->c, sensor);
	if (i < 0)
		return 0;	/* a sensor no longer configured */
	r->last = i;
	r->rows++;
	summary_add(r->sum, (size_t)i, (enum quantity)quantity, value, ts);
	return 0;
}

/*
 * The running period's readings so far, from the store: a restart or a
 * reload must not cut a day's record short.  A day of 100 sensors read
 * every second is 17 million rows and takes seconds; typical gateways
 * read a few sensors a minute.
 */
void
records_summary_replay(struct daemon *d)
{
	struct replay r = { .c = d->conf, .sum = d->sum, .last = -1 };
	int64_t now = now_ms(CLOCK_REALTIME);

	if (d->sum == NULL)
		return;
	store_commit(d->store);
	if (store_readings(d->store, NULL, summary_day_start(d->sum), now, replay_cb, &r) < 0)
		log_warnx("summary: could not read back today's readings; the day's summary "
		    "starts now");
	else if (r.rows > 0)
		log_info("summary: %lld readings of the running period read back from the store",
		    (long long)r.rows);
}

/* Close the running period if it has ended by now. */
void
records_summary_tick(struct daemon *d, int64_t now)
{
	if (d->sum != NULL && now >= summary_day_end(d->sum))
		period_close(d, now);
}

/* A summary for conf's zones, with each zone's first warning threshold as its range. */
int
records_summary_new(const struct config *c, int64_t now, struct summary **out)
{
	int *map;
	int64_t start, end;
	int rc;

	if ((map = calloc(c->nsensors + 1, sizeof(*map))) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < c->nsensors; i++)
		map[i] = (int)c->sensors[i].zone_idx;
	period_bounds(c, now, &start, &end);
	rc = summary_new(out, c->nzones, map, c->nsensors,
	    (int64_t)c->publish.summary_hold * 1000, 0, start, end);
	free(map);
	if (rc < 0)
		return rc;
	for (size_t i = c->nalarms; i-- > 0;) {
		/* Backwards, so the first rule of a zone and quantity is set last and wins. */
		const struct alarm_cfg *a = &c->alarms[i];
		int z = config_zone_index(c, a->zone);

		if (a->type != ALARM_TYPE_THRESHOLD || a->critical || a->sensor[0] != '\0' ||
		    z < 0 || !a->has_quantity)
			continue;
		summary_limits(*out, (size_t)z, a->quantity, a->has_low, a->low, a->has_high,
		    a->high);
	}
	return 0;
}

