/*
 * Commands to the gateway (SPEC §4): `{B}/{G}/cmd/ack` over MQTT, and the
 * same requests from coldgatectl over the local control socket.  This
 * module only parses and validates; the daemon carries them out.  Only
 * this module includes json-c's headers on the daemon side.
 *
 * A command is refused, with a reason for `cmd/result`, when it is larger
 * than CMD_MAX_BYTES, not a JSON object, has a field we do not know or a
 * field of the wrong type, or names an alarm id that cannot exist.
 */
#ifndef COLDGATE_CMD_H
#define COLDGATE_CMD_H

#include <stdbool.h>
#include <stddef.h>

#define CMD_MAX_BYTES	1024
#define CMD_NAME_MAX	64		/* bytes of UTF-8 in "by" */

enum cmd_kind { CMD_ACK };

struct cmd {
	enum cmd_kind	 kind;
	char		 alarm[65];		/* [A-Za-z0-9_-]{1,64} */
	char		 by[CMD_NAME_MAX + 1];	/* who acknowledged; "" when not given */
};

/*
 * Parse the command NAME (the last topic level, e.g. "ack") with its JSON
 * payload.  0 and *out filled, or -EINVAL with a short reason in why.
 */
int	 cmd_parse(const char *name, const void *payload, size_t len, struct cmd *out,
	     char *why, size_t whylen);

/*
 * Read a reply the daemon gave (coldgatectl): *ok from "ok", and the
 * "error" text into err.  0, or -EINVAL when it is not a reply.
 */
int	 cmd_reply_parse(const char *reply, size_t len, bool *ok, char *err, size_t errlen);

#endif
