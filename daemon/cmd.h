/*
 * Commands to the gateway (SPEC §4): `{B}/{G}/cmd/ack` over MQTT, and the
 * same requests from coldgatectl over the local control socket.  This
 * module knows which commands there are; payload.c reads and checks their
 * JSON (the wire format lives there); the daemon carries them out.
 *
 * A command is refused, with a reason for `cmd/result`, when it is larger
 * than CMD_MAX_BYTES, not a JSON object, has a field we do not know or a
 * field of the wrong type, or names an alarm id that cannot exist.
 */
#ifndef COLDGATE_CMD_H
#define COLDGATE_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "payload.h"

#define CMD_MAX_BYTES	PAYLOAD_CMD_MAX
#define CMD_NAME_MAX	PAYLOAD_NAME_MAX	/* bytes of UTF-8 in "by" */

enum cmd_kind { CMD_ACK };

struct cmd {
	enum cmd_kind	 kind;
	char		 alarm[ALARM_ID_MAX + 1];	/* [A-Za-z0-9_-]{1,64} */
	char		 by[CMD_NAME_MAX + 1];	/* who acknowledged; "" when not given */
};

/*
 * Parse the command NAME (the last topic level, e.g. "ack") with its JSON
 * payload.  0 and *out filled, or -EINVAL with a short reason in why.
 */
int	 cmd_parse(const char *name, const void *payload, size_t len, struct cmd *out,
	     char *why, size_t whylen);

#endif
