/*
 * Which commands there are; what each payload may hold is the wire
 * format's (payload.c), so coldgatectl's ack and the daemon's reading of
 * it share one definition.
 */
#include "cmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "payload.h"

int
cmd_parse(const char *name, const void *payload, size_t len, struct cmd *out, char *why,
    size_t whylen)
{
	struct payload_ack a;
	int rc;

	memset(out, 0, sizeof(*out));
	if (strcmp(name, "ack") != 0) {
		snprintf(why, whylen, "unknown command \"%.32s\"", name);
		return -EINVAL;
	}
	out->kind = CMD_ACK;
	if ((rc = payload_ack_parse(payload, len, &a, why, whylen)) < 0)
		return rc;
	memcpy(out->alarm, a.alarm, sizeof(out->alarm));
	memcpy(out->by, a.by, sizeof(out->by));
	return 0;
}
