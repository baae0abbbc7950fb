/*
 * Local outputs (SPEC §6): the buzzers, lamps and relays, each driven from
 * the alarm engine's state -- a lamp while an alarm of its zones is
 * raised, a buzzer or relay while one is unacknowledged.  An output that
 * will not open is retried at each tick.  Owns the outputs fields of
 * struct daemon (daemon.h); reads the alarm engine, never changes it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "output.h"

/* Whether output o should be on now: see struct output_cfg. */
static bool
output_wanted(const struct daemon *d, const struct output_cfg *o)
{
	enum alarm_severity min = o->critical_only ? ALARM_CRITICAL : ALARM_WARNING;

	for (size_t k = 0; k == 0 || k < o->nzones; k++) {
		int z = o->nzones == 0 ? ALARM_ANY_ZONE : config_zone_index(d->conf, o->zones[k]);

		if (o->role == OUTPUT_LAMP ? alarm_zone_raised(d->alarms, z, min) :
		    alarm_zone_unacked(d->alarms, z, min))
			return true;
	}
	return false;
}

/*
 * Open conf's outputs into rt (calloc'd for conf->noutputs), each in its
 * safe state (off).  One that fails to open is retried at each tick.
 */
void
outputs_open(struct daemon *d, const struct config *conf, struct output_rt *rt)
{
	int rc;

	for (size_t i = 0; i < conf->noutputs; i++) {
		rt[i].cfg = &conf->outputs[i];
		rt[i].drv = output_driver_find(conf->outputs[i].driver);
		rt[i].on = -1;
		if ((rc = rt[i].drv->open(conf, rt[i].cfg, &rt[i].state)) < 0) {
			log_warnx("output %s: cannot open %s line %d: %s; trying again", rt[i].cfg->id,
			    rt[i].cfg->chip, rt[i].cfg->gpio_line, strerror(-rc));
			rt[i].state = NULL;
		} else {
			rt[i].on = 0;
		}
	}
	d->outputs = rt;
	d->noutputs = conf->noutputs;
}

/* Each back to its safe state (off), then let go. */
void
outputs_close(struct daemon *d)
{
	for (size_t i = 0; i < d->noutputs; i++)
		if (d->outputs[i].state != NULL)
			d->outputs[i].drv->close(d->outputs[i].state);
	free(d->outputs);
	d->outputs = NULL;
	d->noutputs = 0;
}

/* Drive every output from the alarms' state; retry opening those that failed when retry is set. */
void
outputs_update(struct daemon *d, bool retry)
{
	for (size_t i = 0; i < d->noutputs; i++) {
		struct output_rt *o = &d->outputs[i];
		bool want;
		int rc;

		if (o->state == NULL) {
			if (!retry || o->drv->open(d->conf, o->cfg, &o->state) < 0) {
				o->state = NULL;
				continue;
			}
			log_info("output %s: opened", o->cfg->id);
			o->on = 0;
		}
		want = d->alarms != NULL && output_wanted(d, o->cfg);
		if (o->on == (int)want)
			continue;
		if ((rc = o->drv->set(o->state, want)) < 0) {
			if (o->on != -1)
				log_warnx("output %s: cannot switch %s: %s", o->cfg->id,
				    want ? "on" : "off", strerror(-rc));
			o->on = -1;	/* try again at the next change or tick */
			continue;
		}
		o->on = want;
		log_info("output %s (%s): %s", o->cfg->id, output_role_name(o->cfg->role),
		    want ? "on" : "off");
	}
}

