/*
 * The alarm engine's edge: each transition it makes is published (the
 * retained SPEC §4 alarm message, through the outbox), written to the
 * audit trail and persisted to the store, so a restart neither forgets an
 * alarm nor raises it twice; at start and reload the stored instances are
 * restored into the new engine.  The engine itself (alarm.c) is pure and
 * knows none of this.  Owns the alarmio fields of struct daemon.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "mqtt.h"
#include "payload.h"
#include "rules.h"

static void
mark_dirty(struct daemon *d, const char *id)
{
	for (size_t i = 0; i < d->ndirty; i++)
		if (strcmp(d->dirty[i], id) == 0)
			return;
	if (d->ndirty == d->capdirty) {
		size_t cap = d->capdirty ? 2 * d->capdirty : 8;
		void *p = realloc(d->dirty, cap * sizeof(*d->dirty));

		if (p == NULL) {
			log_warnx("out of memory: alarm %s not persisted now", id);
			return;
		}
		d->dirty = p;
		d->capdirty = cap;
	}
	snprintf(d->dirty[d->ndirty++], ALARM_ID_MAX + 1, "%s", id);
}

static int
persist(struct daemon *d, const char *id)
{
	struct alarm_record rec;
	uint8_t buf[ALARM_RECORD_MAX];
	struct store_alarm sa;

	if (alarm_get(d->alarms, id, now_ms(CLOCK_REALTIME), &rec) < 0)
		return -ENOENT;
	sa = (struct store_alarm){ .id = rec.id, .state = alarm_state_name(rec.state),
	    .updated_ms = now_ms(CLOCK_REALTIME), .data = buf,
	    .len = alarm_record_encode(&rec, buf) };
	return store_alarm_put(d->store, &sa);
}

/*
 * Transitions are persisted after the engine call that made them returns
 * (the callback must not call back into the engine), and committed at once:
 * a restart must neither forget an alarm nor raise it twice.
 */
void
alarmio_flush(struct daemon *d)
{
	if (d->ndirty == 0)
		return;
	for (size_t i = 0; i < d->ndirty; i++)
		persist(d, d->dirty[i]);
	d->ndirty = 0;
	store_commit(d->store);
	/* Every transition (fired, acked, cleared) passes here: the outputs follow it. */
	outputs_update(d, false);
}

/* Every instance, with running timers and excursion time: at stop and reload. */
void
alarmio_persist_all(struct daemon *d)
{
	struct alarm_record rec;

	if (d->alarms == NULL)
		return;
	for (size_t i = 0; alarm_export(d->alarms, i, now_ms(CLOCK_REALTIME), &rec) == 0; i++)
		mark_dirty(d, rec.id);
	alarmio_flush(d);
}

static const char *
zone_id_of(const struct daemon *d, int zone)
{
	return zone >= 0 && (size_t)zone < d->conf->nzones ? d->conf->zones[zone].id : "gateway";
}

static const char *
sensor_id_of(const struct daemon *d, int sensor)
{
	return sensor >= 0 && (size_t)sensor < d->conf->nsensors ? d->conf->sensors[sensor].id :
	    NULL;
}

/* The SPEC §4 alarm message, retained on {B}/{G}/alarm/{ID}, through the outbox. */
static void
publish(struct daemon *d, const char *id, int zone, int sensor, enum alarm_kind kind,
    enum alarm_severity severity, enum alarm_state state, double value, double limit,
    int64_t since, int64_t t, const char *by, bool retired)
{
	struct jbuf a = { 0 };
	char topic[TOPIC_MAX + ALARM_ID_MAX];

	snprintf(topic, sizeof(topic), "%s%s", d->t.alarm, id);
	payload_alarm(&d->jb, &(struct payload_alarm){ .gw = d->conf->gateway.id,
	    .seq = store_next_seq(d->store), .id = id, .zone = zone_id_of(d, zone),
	    .sensor = sensor_id_of(d, sensor), .rule = kind, .severity = severity, .state = state,
	    .value = value, .limit = limit, .since = since, .ts = t, .by = by,
	    .retired = retired });
	uplink_queue(d, MSG_ALARM, topic, true);

	payload_audit_alarm(&a, &(struct payload_audit_alarm){ .id = id, .state = state,
	    .value = value, .limit = limit, .by = by });
	records_audit(d, PAYLOAD_AUDIT_ALARM, &a);
}

static void
on_alarm(const struct alarm_transition *t, void *arg)
{
	struct daemon *d = arg;

	if (t->state == ALARM_ACTIVE)
		log_warnx("ALARM %s (%s, %s): %s %.3f, limit %.3f", t->id,
		    alarm_severity_name(t->severity), zone_id_of(d, t->zone),
		    alarm_kind_name(t->kind), t->value, t->limit);
	else
		log_info("alarm %s %s", t->id, alarm_state_name(t->state));
	publish(d, t->id, t->zone, t->sensor, t->kind, t->severity, t->state, t->value,
	    t->limit, t->since, t->t, t->acked_by, false);
	mark_dirty(d, t->id);
}

static int
restore_cb(const struct store_alarm *sa, void *arg)
{
	struct daemon *d = arg;
	struct alarm_record rec;
	uint8_t buf[ALARM_RECORD_MAX];
	const char *why;
	int rc;

	if (alarm_record_decode(sa->id, sa->data, sa->len, &rec, &why) < 0) {
		log_warnx("alarm %s: stored record %s; not restored", sa->id, why);
		return 0;
	}
	rc = alarm_import(d->alarms, &rec);
	if (rc == -ENOENT && rec.state != ALARM_CLEARED) {
		/* Its rule is gone: clear it for the dashboard, once. */
		log_info("alarm %s: no rule makes it any more; cleared", rec.id);
		publish(d, rec.id, rec.zone, -1, rec.kind, rec.severity, ALARM_CLEARED, rec.value,
		    rec.limit, rec.since, now_ms(CLOCK_REALTIME), NULL, true);
		rec.state = ALARM_CLEARED;
		store_alarm_put(d->store, &(struct store_alarm){ .id = rec.id, .state = "cleared",
		    .updated_ms = now_ms(CLOCK_REALTIME), .data = buf,
		    .len = alarm_record_encode(&rec, buf) });
	} else if (rc < 0 && rc != -ENOENT) {
		log_warnx("alarm %s: cannot restore it: %s", rec.id, strerror(-rc));
	}
	return 0;
}

/* A new engine for conf's rules; its transitions come to on_alarm.  No side effects. */
int
alarmio_new(struct daemon *d, const struct config *conf, struct alarm_engine **out)
{
	struct alarm_rule *rules;
	struct alarm_sensor *sensors;
	size_t nrules;
	int rc;

	if ((rc = rules_build(conf, &rules, &nrules, &sensors)) < 0)
		return rc;
	rc = alarm_new(out, rules, nrules, sensors, conf->nsensors, now_ms(CLOCK_REALTIME),
	    on_alarm, d);
	free(rules);
	free(sensors);
	if (rc < 0) {
		log_warnx("alarm rules: %s", rc == -EEXIST ?
		    "two rules give the same alarm (same zone or sensor, quantity, type and severity)" :
		    strerror(-rc));
		return rc;
	}
	return 0;
}

/*
 * The alarms carry over by id, across a restart or a reload: the stored
 * instances go into the engine in use.  One that no rule makes any more is
 * cleared for the dashboard, once.
 */
void
alarmio_restore(struct daemon *d)
{
	alarm_uplink(d->alarms, mqtt_state(d->mqtt) == MQTT_CONNECTED, now_ms(CLOCK_REALTIME));
	store_alarm_each(d->store, restore_cb, d);
	store_commit(d->store);
}

