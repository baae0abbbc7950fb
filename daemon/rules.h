/*
 * From the configuration's alarm rules (explicit and from zone profiles)
 * to the alarm engine's rules.  Pure: no I/O.
 */
#ifndef COLDGATE_RULES_H
#define COLDGATE_RULES_H

#include <stddef.h>

struct alarm_rule;
struct alarm_sensor;
struct config;

/*
 * *rules: a new array (free it) of *nrules engine rules; a threshold with
 * both limits gives two (high and low).  *sensors: the engine's sensor
 * table in configuration order (free it; ids point into the config).
 * 0 or -ENOMEM.
 */
int	 rules_build(const struct config *, struct alarm_rule **rules, size_t *nrules,
	     struct alarm_sensor **sensors);

#endif
