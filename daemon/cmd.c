#include "cmd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "config.h"

static int
refuse(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Printable UTF-8, no control characters: a name an operator typed. */
static bool
valid_name(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	while (*u) {
		int n = *u < 0x80 ? 1 : (*u & 0xe0) == 0xc0 ? 2 : (*u & 0xf0) == 0xe0 ? 3 :
		    (*u & 0xf8) == 0xf0 ? 4 : 0;

		if (n == 0 || (n == 1 && (*u < 0x20 || *u == 0x7f)))
			return false;
		if (n == 2 && *u < 0xc2)
			return false;	/* overlong */
		for (int i = 1; i < n; i++)
			if ((u[i] & 0xc0) != 0x80)
				return false;
		u += n;
	}
	return true;
}

static int
parse_ack(json_object *o, struct cmd *out, char *why, size_t whylen)
{
	bool have_alarm = false;

	json_object_object_foreach(o, key, val) {
		const char *s;

		if (strcmp(key, "alarm") != 0 && strcmp(key, "by") != 0)
			return refuse(why, whylen, "unknown field \"%.32s\"", key);
		if (!json_object_is_type(val, json_type_string))
			return refuse(why, whylen, "\"%s\" must be a string", key);
		s = json_object_get_string(val);
		if (strcmp(key, "alarm") == 0) {
			if (!config_valid_id(s))
				return refuse(why, whylen, "\"alarm\" is not an alarm id");
			snprintf(out->alarm, sizeof(out->alarm), "%s", s);
			have_alarm = true;
		} else {
			if (strlen(s) > CMD_NAME_MAX)
				return refuse(why, whylen, "\"by\" is longer than %d bytes",
				    CMD_NAME_MAX);
			if (!valid_name(s))
				return refuse(why, whylen, "\"by\" is not printable UTF-8");
			snprintf(out->by, sizeof(out->by), "%s", s);
		}
	}
	if (!have_alarm)
		return refuse(why, whylen, "\"alarm\" is missing");
	return 0;
}

int
cmd_parse(const char *name, const void *payload, size_t len, struct cmd *out, char *why,
    size_t whylen)
{
	json_tokener *tok;
	json_object *o;
	enum json_tokener_error jerr;
	int rc;

	memset(out, 0, sizeof(*out));
	if (strcmp(name, "ack") != 0)
		return refuse(why, whylen, "unknown command \"%.32s\"", name);
	if (len > CMD_MAX_BYTES)
		return refuse(why, whylen, "command of %zu bytes; at most %d", len, CMD_MAX_BYTES);
	if (memchr(payload, '\0', len) != NULL)
		return refuse(why, whylen, "NUL byte in the command");
	if ((tok = json_tokener_new_ex(8)) == NULL)
		return refuse(why, whylen, "out of memory");
	o = json_tokener_parse_ex(tok, payload, (int)len);
	jerr = json_tokener_get_error(tok);
	/* Trailing bytes after the object are as bad as a broken object. */
	if (o != NULL && jerr == json_tokener_success && json_tokener_get_parse_end(tok) < len) {
		json_object_put(o);
		o = NULL;
		jerr = json_tokener_error_parse_unexpected;
	}
	json_tokener_free(tok);
	if (o == NULL) {
		return refuse(why, whylen, "not JSON: %s", jerr == json_tokener_continue ?
		    "unexpected end" : json_tokener_error_desc(jerr));
	}
	if (!json_object_is_type(o, json_type_object))
		rc = refuse(why, whylen, "not a JSON object");
	else
		rc = parse_ack(o, out, why, whylen);
	json_object_put(o);
	out->kind = CMD_ACK;
	return rc;
}

int
cmd_reply_parse(const char *reply, size_t len, bool *ok, char *err, size_t errlen)
{
	json_tokener *tok;
	json_object *o, *v;
	int rc = -EINVAL;

	*ok = false;
	if (errlen > 0)
		err[0] = '\0';
	if ((tok = json_tokener_new_ex(8)) == NULL)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, reply, (int)len);
	json_tokener_free(tok);
	if (o == NULL)
		return -EINVAL;
	if (json_object_object_get_ex(o, "ok", &v) && json_object_is_type(v, json_type_boolean)) {
		*ok = json_object_get_boolean(v);
		if (json_object_object_get_ex(o, "error", &v) && errlen > 0)
			snprintf(err, errlen, "%s", json_object_get_string(v));
		rc = 0;
	}
	json_object_put(o);
	return rc;
}
