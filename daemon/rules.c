/*
 * The configured rules turned into the alarm engine's (see rules.h).
 * Owns the mapping from zones, profiles and sensors to engine rules; must
 * not evaluate anything: the engine (alarm.c) does.
 */
#include "rules.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alarm.h"
#include "config.h"

/* The common part of every engine rule made from one configured rule. */
static struct alarm_rule
rule_base(const struct config *c, const struct alarm_cfg *a)
{
	struct alarm_rule r;

	memset(&r, 0, sizeof(r));
	r.severity = a->critical ? ALARM_CRITICAL : ALARM_WARNING;
	/* Tiers of one limit differ by severity: the critical one is tagged. */
	if (a->critical)
		strcpy(r.tag, "critical");
	r.sensor = a->sensor[0] != '\0' ? config_sensor_index(c, a->sensor) : -1;
	r.zone = r.sensor >= 0 ? (int)c->sensors[r.sensor].zone_idx :
	    a->zone[0] != '\0' ? config_zone_index(c, a->zone) : -1;
	r.quantity = a->has_quantity ? a->quantity : Q_TEMPERATURE;
	r.hysteresis = a->hysteresis;
	r.delay = a->delay;
	return r;
}

/* Engine rules for one configured rule into out (room for 2); returns how many. */
static size_t
rules_of(const struct config *c, const struct alarm_cfg *a, struct alarm_rule *out)
{
	struct alarm_rule r = rule_base(c, a);
	size_t n = 0;

	switch (a->type) {
	case ALARM_TYPE_THRESHOLD:
		if (a->has_high) {
			out[n] = r;
			out[n].kind = ALARM_HIGH;
			out[n].has_high = true;
			out[n++].high = a->high;
		}
		if (a->has_low) {
			out[n] = r;
			out[n].kind = ALARM_LOW;
			out[n].has_low = true;
			out[n++].low = a->low;
		}
		return n;
	case ALARM_TYPE_EXCURSION:
		r.kind = ALARM_EXCURSION;
		r.has_high = a->has_high;
		r.high = a->high;
		r.has_low = a->has_low;
		r.low = a->low;
		r.window = a->window;
		r.budget = a->total;
		break;
	case ALARM_TYPE_RATE:
		r.kind = ALARM_RATE;
		r.rate = a->rate;
		r.span = a->span;
		break;
	case ALARM_TYPE_STALE:
		r.kind = ALARM_STALE;
		r.stale_after = a->stale_after;
		break;
	case ALARM_TYPE_FAULT:
		r.kind = ALARM_FAULT;
		r.fault_count = a->fault_count;
		break;
	case ALARM_TYPE_DOOR:
		r.kind = ALARM_DOOR_OPEN;
		r.quantity = Q_DOOR;
		r.door_open_max = a->door_open_max;
		break;
	case ALARM_TYPE_STORE_FULL:
		r.kind = ALARM_STORE_FULL;
		r.store_fraction = a->store_full_pct > 0 ? a->store_full_pct / 100.0 : 0;
		r.zone = r.sensor = -1;
		break;
	case ALARM_TYPE_UPLINK_DOWN:
		r.kind = ALARM_UPLINK_DOWN;
		r.uplink_down_max = a->uplink_down_max;
		r.zone = r.sensor = -1;
		break;
	default:
		return 0;	/* ALARM_TYPE_COUNT: no type */
	}
	out[n++] = r;
	return n;
}

int
rules_build(const struct config *c, struct alarm_rule **rules, size_t *nrules,
    struct alarm_sensor **sensors)
{
	struct alarm_rule *r;
	struct alarm_sensor *s;
	size_t n = 0;

	*rules = NULL;
	*sensors = NULL;
	*nrules = 0;
	if ((r = calloc(2 * c->nalarms + 2, sizeof(*r))) == NULL ||
	    (s = calloc(c->nsensors + 1, sizeof(*s))) == NULL) {
		free(r);
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->nalarms; i++)
		n += rules_of(c, &c->alarms[i], r + n);
	/*
	 * A store that takes no writes is always an alarm, configured or not:
	 * the gateway keeps what it cannot store in memory, and only so much.
	 */
	r[n].kind = ALARM_STORE_ERROR;
	r[n].severity = ALARM_CRITICAL;
	r[n].zone = r[n].sensor = -1;
	n++;
	for (size_t i = 0; i < c->nsensors; i++) {
		s[i].id = c->sensors[i].id;
		s[i].zone = (int)c->sensors[i].zone_idx;
	}
	*rules = r;
	*nrules = n;
	*sensors = s;
	return 0;
}
