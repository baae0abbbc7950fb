/* The quantities coldgate measures and their units (SPEC §4). */
#ifndef COLDGATE_QUANTITY_H
#define COLDGATE_QUANTITY_H

enum quantity {
	Q_TEMPERATURE,		/* C */
	Q_HUMIDITY,		/* %RH */
	Q_CO2,			/* ppm */
	Q_DOOR,			/* 0 closed, 1 open */
	Q_COUNT
};

const char	*quantity_name(enum quantity);
const char	*quantity_unit(enum quantity);
/* Returns the quantity for a name, or -1. */
int		 quantity_from_name(const char *);

#endif
