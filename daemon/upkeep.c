/*
 * Upkeep, each second: the store's health (a disk that fills or turns
 * read-only), its size cap and retention with the drops they cause, and
 * steps of the wall clock.  Each turns into an event, an audit row and an
 * alarm, as SPEC §5 and the README's "What survives what" promise.  Owns
 * the upkeep fields of struct daemon; the store's own rules are store.c's.
 */
#include <errno.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "mqtt.h"
#include "payload.h"

/* A change of wall minus monotonic time bigger than this is a step of the clock. */
#define CLOCK_STEP_MS		2000
/* Store pruning batches per housekeeping tick (each at most 1000 rows). */
#define PRUNE_BATCHES		20

/*
 * The store stopped taking writes (a full disk, a read-only file) or takes
 * them again.  Messages wait in the store's memory queue meanwhile, so the
 * store_error event and the alarm reach the broker once it writes again;
 * the alarm's local outputs (buzzer, lamp) follow it at once.
 */
void
upkeep_store_health(struct daemon *d)
{
	struct store_health h;
	int64_t now = now_ms(CLOCK_REALTIME);
	bool was;

	store_health(d->store, &h);
	/* What the memory queue had to drop is a loss of undelivered telemetry. */
	d->drops.undelivered += h.dropped;
	alarm_store_error(d->alarms, h.err != 0, (double)h.queued, now);
	was = d->store_err != 0;
	d->store_err = h.err;		/* status_payload() reads it */
	if ((h.err != 0) == was)
		return;
	if (h.err != 0) {
		log_warnx("store %s cannot be written (%s): keeping messages in memory "
		    "until it can; free space on its disk or make it writable",
		    d->conf->storage.path, strerror(-h.err));
		uplink_event(d, &(struct payload_event){ .type = PAYLOAD_STORE_ERROR,
		    .store = { strerror(-h.err), (int64_t)h.queued } });
	} else
		log_info("store %s takes writes again", d->conf->storage.path);
	if (mqtt_state(d->mqtt) == MQTT_CONNECTED)
		uplink_status_online(d);
}

/* Wall clock minus monotonic clock: changes only when the wall clock is stepped. */
int64_t
upkeep_clock_offset(void)
{
	return now_ms(CLOCK_REALTIME) - now_ms(CLOCK_MONOTONIC);
}

/*
 * Has the wall clock been stepped since the last look?  Called every
 * second and when the window timer is cancelled by a clock change (which
 * not every way of setting the clock raises).  Wall minus monotonic moves
 * only by a step, or by NTP's slewing at well under a millisecond a second,
 * so a change of more than CLOCK_STEP_MS is a step.
 */
void
upkeep_clock(struct daemon *d)
{
	int64_t now, step = upkeep_clock_offset() - d->clock_offset;

	if (step >= -CLOCK_STEP_MS && step <= CLOCK_STEP_MS) {
		d->clock_offset += step;	/* follow the slewing */
		return;
	}
	d->clock_offset += step;
	now = now_ms(CLOCK_REALTIME);
	log_info("the system clock was stepped by %+.3f s", (double)step / 1000.0);
	uplink_event(d, &(struct payload_event){ .type = PAYLOAD_CLOCK_SYNC, .step_ms = step });
	{
		struct jbuf b = { 0 };

		payload_audit_clock_sync(&b, step);
		records_audit(d, PAYLOAD_AUDIT_CLOCK_SYNC, &b);
	}
	alarm_clock_step(d->alarms, step);
	if (now < d->agg.start_ms) {
		/* Back before the running window: close it as measured, start anew. */
		uplink_window_publish(d);
		agg_next(&d->agg, now);
	}
	uplink_window_roll(d, now);
	/* The timer was set for the old clock: an end far ahead would never come. */
	uplink_window_timer(d);
}

/* The store's usage for its alarm, retention and the size cap, and what they dropped. */
void
upkeep_store_space(struct daemon *d)
{
	int64_t mono = now_ms(CLOCK_MONOTONIC);

	if (mono >= d->next_usage) {
		struct store_stats st;

		if (store_stats(d->store, &st) == 0)
			alarm_store_usage(d->alarms, (double)st.used_bytes /
			    ((double)d->conf->storage.max_size_mb * 1048576.0), now_ms(CLOCK_REALTIME));
		d->next_usage = mono + 10000;
	}
	/*
	 * Retention and the size cap, every second: small batches keep each
	 * step short, and up to PRUNE_BATCHES of them keep up with the
	 * fastest sensors we allow, so the store never runs far past its cap.
	 */
	for (int i = 0; i < PRUNE_BATCHES; i++)
		if (store_prune(d->store, now_ms(CLOCK_REALTIME), &d->drops) <= 0)
			break;
	/* Drops are reported as they start, then at most once a minute. */
	if (d->drops.readings + d->drops.delivered + d->drops.undelivered > 0 &&
	    mono >= d->next_overflow_event) {
		log_warnx("store above storage.max_size_mb: dropped %lld readings, "
		    "%lld delivered and %lld undelivered messages",
		    (long long)d->drops.readings, (long long)d->drops.delivered,
		    (long long)d->drops.undelivered);
		uplink_event(d, &(struct payload_event){ .type = PAYLOAD_BUFFER_OVERFLOW,
		    .overflow = { d->drops.readings, d->drops.delivered, d->drops.undelivered,
		    d->conf->storage.max_size_mb } });
		{
			struct jbuf b = { 0 };

			payload_audit_dropped(&b, &(struct payload_audit_dropped){ d->drops.readings,
			    d->drops.delivered, d->drops.undelivered });
			records_audit(d, PAYLOAD_AUDIT_DROPPED, &b);
		}
		memset(&d->drops, 0, sizeof(d->drops));
		d->next_overflow_event = mono + 60000;
	}
}
