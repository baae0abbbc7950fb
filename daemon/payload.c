/*
 * The wire format, in one place: the JSON of every MQTT message (SPEC §4:
 * status, telemetry, event, alarm, cmd/ack, cmd/result) and of every row of
 * the audit trail.  Each key is spelled once, below, and both the builders
 * and the parsers use it, so what the daemon writes and what coldgatectl
 * and cmd.c read cannot drift apart.  The builders' output is the daemon's
 * published bytes: consumers and the integration tests compare them, so a
 * change of order or number format here is a change of the contract.
 *
 * This file must not do I/O, touch the store or MQTT, read a clock or keep
 * state: values come in, bytes (or parsed values) go out.
 *
 * The audit trail is durable (rows are hash-chained and kept for years),
 * so its format is written down here.  A row is a kind and a JSON object:
 *
 *   start, reload  {"version":V,"config":PATH,"sha256":HEX}  sha256 left out
 *                  when the file could not be read
 *   stop           {}
 *   clock_sync     {"step_ms":N}                     how far the clock jumped
 *   dropped        {"readings":N,"delivered":N,"undelivered":N}  for the cap
 *   alarm          {"id":ID,"state":"active"|"acked"|"cleared","value":X,
 *                   "limit":X,"by":NAME}             by only when acked
 *   ack            {"id":ID,"by":NAME,"via":"mqtt"|"local"}  by may be ""
 *   summary        {"zone":Z,"zone_name":NAME,"start":MS,"end":MS,
 *                   "quantities":[ITEM]}   one ITEM, as in the summary event
 *
 * N and MS are JSON integers; X is a number (integral values print without
 * a fraction, so they read back as integers) or null for NaN.  Readers
 * ignore keys they do not know, so a later version may add some.
 */
#include "payload.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

/* Every key of the wire, once. */
#define K_ALARM		"alarm"
#define K_BY		"by"
#define K_CMD		"cmd"
#define K_CLOCK_OK	"clock_ok"
#define K_CONFIG	"config"
#define K_COVERED_S	"covered_s"
#define K_DELIVERED	"delivered"
#define K_DROPPED_DELIVERED "dropped_delivered"
#define K_DROPPED_READINGS "dropped_readings"
#define K_DROPPED_UNDELIVERED "dropped_undelivered"
#define K_END		"end"
#define K_ERROR		"error"
#define K_GW		"gw"
#define K_ID		"id"
#define K_LAST		"last"
#define K_LIMIT		"limit"
#define K_MAX		"max"
#define K_MAX_SIZE_MB	"max_size_mb"
#define K_MEAN		"mean"
#define K_MIN		"min"
#define K_MKT		"mkt"
#define K_N		"n"
#define K_NAME		"name"
#define K_OK		"ok"
#define K_OUT_OF_RANGE_S "out_of_range_s"
#define K_PROFILE	"profile"
#define K_QUANTITIES	"quantities"
#define K_QUANTITY	"quantity"
#define K_QUEUED	"queued"
#define K_READINGS	"readings"
#define K_RETIRED	"retired"
#define K_RULE		"rule"
#define K_SENSOR	"sensor"
#define K_SEQ		"seq"
#define K_SEVERITY	"severity"
#define K_SHA256	"sha256"
#define K_SINCE		"since"
#define K_SITE		"site"
#define K_START		"start"
#define K_STATE		"state"
#define K_STEP_MS	"step_ms"
#define K_STORE_ERROR	"store_error"
#define K_TS		"ts"
#define K_TYPE		"type"
#define K_UNDELIVERED	"undelivered"
#define K_UNIT		"unit"
#define K_VALUE		"value"
#define K_VERSION	"version"
#define K_VIA		"via"
#define K_ZONE		"zone"
#define K_ZONE_NAME	"zone_name"
#define K_ZONES		"zones"

/* What stands for the gateway where a zone or a sensor is asked for. */
#define GATEWAY		"gateway"

/* json-c nesting we accept: an audit summary row is three deep. */
#define JSON_DEPTH	8

static const char *const event_names[PAYLOAD_EVENT_COUNT] = {
	[PAYLOAD_DOOR_OPEN] = "door_open", [PAYLOAD_DOOR_CLOSE] = "door_close",
	[PAYLOAD_SENSOR_FAULT] = "sensor_fault", [PAYLOAD_SENSOR_RECOVERED] = "sensor_recovered",
	[PAYLOAD_CLOCK_SYNC] = "clock_sync", [PAYLOAD_BUFFER_OVERFLOW] = "buffer_overflow",
	[PAYLOAD_STORE_ERROR] = "store_error", [PAYLOAD_SUMMARY] = "summary",
};

static const char *const audit_names[] = {
	[PAYLOAD_AUDIT_START] = "start", [PAYLOAD_AUDIT_RELOAD] = "reload",
	[PAYLOAD_AUDIT_STOP] = "stop", [PAYLOAD_AUDIT_CLOCK_SYNC] = "clock_sync",
	[PAYLOAD_AUDIT_DROPPED] = "dropped", [PAYLOAD_AUDIT_ALARM] = "alarm",
	[PAYLOAD_AUDIT_ACK] = "ack", [PAYLOAD_AUDIT_SUMMARY] = "summary",
	[PAYLOAD_AUDIT_OTHER] = "other",
};

/* Every payload is one object, and the buffer holds nothing else. */
static void
object_begin(struct jbuf *b)
{
	jb_reset(b);
	jb_begin(b, '{');
}

static void
jb_bool(struct jbuf *b, const char *key, bool v)
{
	jb_key(b, key);
	jb_vbool(b, v);
}

/* ---- status ---- */

void
payload_status(struct jbuf *b, const struct payload_status *s)
{
	object_begin(b);
	jb_str(b, K_STATE, s->online ? "online" : "offline");
	jb_str(b, K_VERSION, s->version);
	jb_int(b, K_TS, s->ts);
	/* Names pass through (SPEC §3): a dashboard learns them from the message it reads first. */
	if (s->online) {
		if (s->site != NULL)
			jb_str(b, K_SITE, s->site);
		jb_key(b, K_ZONES);
		jb_begin(b, '[');
		for (size_t i = 0; i < s->nzones; i++) {
			jb_begin(b, '{');
			jb_str(b, K_ID, s->zones[i].id);
			jb_str(b, K_NAME, s->zones[i].name);
			if (s->zones[i].profile != NULL)
				jb_str(b, K_PROFILE, s->zones[i].profile);
			jb_end(b, '}');
		}
		jb_end(b, ']');
		if (s->store_error != NULL)
			jb_str(b, K_STORE_ERROR, s->store_error);
	}
	jb_end(b, '}');
}

/* ---- telemetry ---- */

/* gw and seq open every message that goes through the outbox. */
static void
message_begin(struct jbuf *b, const char *gw, int64_t seq)
{
	assert(seq >= 1);
	object_begin(b);
	jb_str(b, K_GW, gw);
	jb_int(b, K_SEQ, seq);
}

void
payload_telemetry_begin(struct jbuf *b, const struct payload_window *w)
{
	assert(w->start <= w->end);
	message_begin(b, w->gw, w->seq);
	jb_int(b, K_START, w->start);
	jb_int(b, K_END, w->end);
	jb_key(b, K_READINGS);
	jb_begin(b, '[');
}

void
payload_telemetry_reading(struct jbuf *b, const struct payload_reading *r)
{
	jb_begin(b, '{');
	jb_str(b, K_SENSOR, r->sensor);
	jb_str(b, K_ZONE, r->zone);
	jb_str(b, K_QUANTITY, quantity_name(r->quantity));
	jb_str(b, K_UNIT, quantity_unit(r->quantity));
	jb_int(b, K_N, r->n);
	jb_num(b, K_MIN, r->min);
	jb_num(b, K_MAX, r->max);
	jb_num(b, K_MEAN, r->mean);
	jb_num(b, K_LAST, r->last);
	/* SPEC §4: the key is there only when the clock was not right. */
	if (!r->clock_ok)
		jb_bool(b, K_CLOCK_OK, false);
	jb_end(b, '}');
}

void
payload_telemetry_end(struct jbuf *b)
{
	jb_end(b, ']');
	jb_end(b, '}');
}

/* ---- events ---- */

const char *
payload_event_name(enum payload_event_type t)
{
	return (unsigned)t < PAYLOAD_EVENT_COUNT ? event_names[t] : "?";
}

static void
summary_open(struct jbuf *b, const struct payload_summary *s)
{
	jb_str(b, K_ZONE, s->zone);
	jb_str(b, K_ZONE_NAME, s->zone_name);
	jb_int(b, K_START, s->start);
	jb_int(b, K_END, s->end);
	jb_key(b, K_QUANTITIES);
	jb_begin(b, '[');
}

void
payload_event(struct jbuf *b, const struct payload_event *e)
{
	message_begin(b, e->gw, e->seq);
	jb_str(b, K_TYPE, payload_event_name(e->type));
	jb_int(b, K_TS, e->ts);
	switch (e->type) {
	case PAYLOAD_DOOR_OPEN:
	case PAYLOAD_DOOR_CLOSE:
	case PAYLOAD_SENSOR_FAULT:
	case PAYLOAD_SENSOR_RECOVERED:
		jb_str(b, K_SENSOR, e->sensor.sensor);
		jb_str(b, K_ZONE, e->sensor.zone);
		if (e->type == PAYLOAD_SENSOR_FAULT)
			jb_str(b, K_ERROR, e->sensor.error);
		break;
	case PAYLOAD_CLOCK_SYNC:
		jb_int(b, K_STEP_MS, e->step_ms);
		break;
	case PAYLOAD_BUFFER_OVERFLOW:
		jb_int(b, K_DROPPED_READINGS, e->overflow.readings);
		jb_int(b, K_DROPPED_DELIVERED, e->overflow.delivered);
		jb_int(b, K_DROPPED_UNDELIVERED, e->overflow.undelivered);
		jb_int(b, K_MAX_SIZE_MB, e->overflow.max_size_mb);
		break;
	case PAYLOAD_STORE_ERROR:
		jb_str(b, K_ERROR, e->store.error);
		jb_int(b, K_QUEUED, e->store.queued);
		break;
	case PAYLOAD_SUMMARY:
		summary_open(b, &e->summary);
		return;		/* the quantities follow */
	case PAYLOAD_EVENT_COUNT:
		break;
	}
	jb_end(b, '}');
}

void
payload_summary_item(struct jbuf *b, const struct payload_summary_item *it)
{
	jb_begin(b, '{');
	jb_str(b, K_QUANTITY, quantity_name(it->quantity));
	jb_str(b, K_UNIT, quantity_unit(it->quantity));
	jb_int(b, K_N, it->n);
	jb_num(b, K_MIN, it->min);
	jb_num(b, K_MAX, it->max);
	jb_num(b, K_MEAN, it->mean);
	if (it->quantity == Q_TEMPERATURE)
		jb_num(b, K_MKT, it->mkt);
	jb_num(b, K_COVERED_S, it->covered_s);
	jb_num(b, K_OUT_OF_RANGE_S, it->out_of_range_s);
	jb_end(b, '}');
}

void
payload_summary_end(struct jbuf *b)
{
	jb_end(b, ']');
	jb_end(b, '}');
}

/* ---- alarms ---- */

void
payload_alarm(struct jbuf *b, const struct payload_alarm *a)
{
	message_begin(b, a->gw, a->seq);
	jb_str(b, K_ID, a->id);
	jb_str(b, K_ZONE, a->zone != NULL ? a->zone : GATEWAY);
	jb_str(b, K_SENSOR, a->sensor != NULL ? a->sensor : GATEWAY);
	jb_str(b, K_RULE, alarm_kind_name(a->rule));
	jb_str(b, K_SEVERITY, alarm_severity_name(a->severity));
	jb_str(b, K_STATE, alarm_state_name(a->state));
	jb_num(b, K_VALUE, a->value);
	jb_num(b, K_LIMIT, a->limit);
	jb_int(b, K_SINCE, a->since);
	jb_int(b, K_TS, a->ts);
	if (a->by != NULL && *a->by != '\0')
		jb_str(b, K_BY, a->by);
	if (a->retired)
		jb_bool(b, K_RETIRED, true);
	jb_end(b, '}');
}

/* ---- reading JSON back ---- */

static int
refuse(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/*
 * len bytes of text as one JSON object, strictly: no more than max bytes,
 * no NUL, UTF-8, nothing after it.  0 and *out (the caller puts it), or
 * -EINVAL with why.
 */
static int
json_read(const void *text, size_t len, size_t max, json_object **out, char *why, size_t whylen)
{
	json_tokener *tok;
	json_object *o;
	enum json_tokener_error jerr;

	*out = NULL;
	if (len > max)
		return refuse(why, whylen, "too long: %zu bytes; at most %zu", len, max);
	if (memchr(text, '\0', len) != NULL)
		return refuse(why, whylen, "NUL byte in it");
	if ((tok = json_tokener_new_ex(JSON_DEPTH)) == NULL)
		return refuse(why, whylen, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	/* Trailing bytes after the object are as bad as a broken object. */
	if (o != NULL && jerr == json_tokener_success && json_tokener_get_parse_end(tok) < len) {
		json_object_put(o);
		o = NULL;
		jerr = json_tokener_error_parse_unexpected;
	}
	json_tokener_free(tok);
	if (o == NULL && jerr == json_tokener_error_parse_utf8_string)
		return refuse(why, whylen, "not UTF-8");
	if (o == NULL)
		return refuse(why, whylen, "not JSON: %s", jerr == json_tokener_continue ?
		    "unexpected end" : json_tokener_error_desc(jerr));
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return refuse(why, whylen, "not a JSON object");
	}
	*out = o;
	return 0;
}

/* ---- commands ---- */

void
payload_ack(struct jbuf *b, const char *alarm, const char *by)
{
	object_begin(b);
	jb_str(b, K_ALARM, alarm);
	jb_str(b, K_BY, by);
	jb_end(b, '}');
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
ack_fields(json_object *o, struct payload_ack *out, char *why, size_t whylen)
{
	bool have_alarm = false;

	json_object_object_foreach(o, key, val) {
		const char *s;

		if (strcmp(key, K_ALARM) != 0 && strcmp(key, K_BY) != 0)
			return refuse(why, whylen, "unknown field \"%.32s\"", key);
		if (!json_object_is_type(val, json_type_string))
			return refuse(why, whylen, "\"%s\" must be a string", key);
		s = json_object_get_string(val);
		if (strcmp(key, K_ALARM) == 0) {
			if (!config_valid_id(s))
				return refuse(why, whylen, "\"%s\" is not an alarm id", K_ALARM);
			snprintf(out->alarm, sizeof(out->alarm), "%s", s);
			have_alarm = true;
		} else {
			if (strlen(s) > PAYLOAD_NAME_MAX)
				return refuse(why, whylen, "\"%s\" is longer than %d bytes", K_BY,
				    PAYLOAD_NAME_MAX);
			if (!valid_name(s))
				return refuse(why, whylen, "\"%s\" is not printable UTF-8", K_BY);
			snprintf(out->by, sizeof(out->by), "%s", s);
		}
	}
	if (!have_alarm)
		return refuse(why, whylen, "\"%s\" is missing", K_ALARM);
	return 0;
}

int
payload_ack_parse(const void *text, size_t len, struct payload_ack *out, char *why,
    size_t whylen)
{
	json_object *o;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = json_read(text, len, PAYLOAD_CMD_MAX, &o, why, whylen)) < 0)
		return rc;
	rc = ack_fields(o, out, why, whylen);
	json_object_put(o);
	return rc;
}

void
payload_cmd_result(struct jbuf *b, const struct payload_cmd_result *r)
{
	object_begin(b);
	jb_str(b, K_GW, r->gw);
	jb_str(b, K_CMD, r->cmd);
	if (r->alarm != NULL)
		jb_str(b, K_ALARM, r->alarm);
	jb_bool(b, K_OK, r->ok);
	if (!r->ok)
		jb_str(b, K_ERROR, r->error);
	jb_int(b, K_TS, r->ts);
	jb_end(b, '}');
}

int
payload_cmd_result_parse(const char *text, size_t len, bool *ok, char *err, size_t errlen)
{
	json_object *o, *v;
	char why[80];
	int rc = -EINVAL;

	*ok = false;
	if (errlen > 0)
		err[0] = '\0';
	/* An answer carries the command's name and error text: twice a command at most. */
	if (json_read(text, len, 2 * PAYLOAD_CMD_MAX, &o, why, sizeof(why)) < 0)
		return -EINVAL;
	if (json_object_object_get_ex(o, K_OK, &v) && json_object_is_type(v, json_type_boolean)) {
		*ok = json_object_get_boolean(v);
		if (json_object_object_get_ex(o, K_ERROR, &v) &&
		    json_object_is_type(v, json_type_string) && errlen > 0)
			snprintf(err, errlen, "%s", json_object_get_string(v));
		rc = 0;
	}
	json_object_put(o);
	return rc;
}

/* ---- audit rows ---- */

const char *
payload_audit_kind_name(enum payload_audit_kind k)
{
	return (unsigned)k <= PAYLOAD_AUDIT_OTHER ? audit_names[k] : "?";
}

enum payload_audit_kind
payload_audit_kind_of(const char *name)
{
	for (int k = 0; k < PAYLOAD_AUDIT_OTHER; k++)
		if (strcmp(name, audit_names[k]) == 0)
			return (enum payload_audit_kind)k;
	return PAYLOAD_AUDIT_OTHER;
}

void
payload_audit_config(struct jbuf *b, const struct payload_audit_config *c)
{
	object_begin(b);
	jb_str(b, K_VERSION, c->version);
	jb_str(b, K_CONFIG, c->config);
	if (c->sha256 != NULL)
		jb_str(b, K_SHA256, c->sha256);
	jb_end(b, '}');
}

void
payload_audit_stop(struct jbuf *b)
{
	object_begin(b);
	jb_end(b, '}');
}

void
payload_audit_clock_sync(struct jbuf *b, int64_t step_ms)
{
	object_begin(b);
	jb_int(b, K_STEP_MS, step_ms);
	jb_end(b, '}');
}

void
payload_audit_dropped(struct jbuf *b, const struct payload_audit_dropped *d)
{
	object_begin(b);
	jb_int(b, K_READINGS, d->readings);
	jb_int(b, K_DELIVERED, d->delivered);
	jb_int(b, K_UNDELIVERED, d->undelivered);
	jb_end(b, '}');
}

void
payload_audit_alarm(struct jbuf *b, const struct payload_audit_alarm *a)
{
	object_begin(b);
	jb_str(b, K_ID, a->id);
	jb_str(b, K_STATE, alarm_state_name(a->state));
	jb_num(b, K_VALUE, a->value);
	jb_num(b, K_LIMIT, a->limit);
	if (a->by != NULL && *a->by != '\0')
		jb_str(b, K_BY, a->by);
	jb_end(b, '}');
}

void
payload_audit_ack(struct jbuf *b, const struct payload_audit_ack *a)
{
	object_begin(b);
	jb_str(b, K_ID, a->id);
	jb_str(b, K_BY, a->by);
	jb_str(b, K_VIA, a->via);
	jb_end(b, '}');
}

void
payload_audit_summary(struct jbuf *b, const struct payload_summary *s,
    const struct payload_summary_item *it)
{
	object_begin(b);
	summary_open(b, s);
	payload_summary_item(b, it);
	payload_summary_end(b);
}

/*
 * Reading a row: the first thing wrong is kept in err and why, and every
 * later look is a no-op, so a parser reads straight through its fields.
 */
struct reader {
	struct payload_audit	*out;
	size_t			 used;		/* of out->text */
	int			 err;
	char			*why;
	size_t			 whylen;
};

static json_object *
member(struct reader *r, json_object *o, const char *key, json_type type, bool need)
{
	json_object *v;

	if (r->err != 0)
		return NULL;
	if (!json_object_object_get_ex(o, key, &v)) {
		if (need)
			r->err = refuse(r->why, r->whylen, "\"%s\" is missing", key);
		return NULL;
	}
	/* A number may print as an integer (21.0 is written 21) or null (NaN). */
	if (json_object_is_type(v, type) || (type == json_type_double &&
	    (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_null))))
		return v;
	r->err = refuse(r->why, r->whylen, "\"%s\" must be %s", key,
	    type == json_type_string ? "a string" : type == json_type_int ? "an integer" :
	    type == json_type_double ? "a number" : type == json_type_array ? "an array" :
	    "an object");
	return NULL;
}

/* A string member, copied into out->text; NULL when absent (or need and an error). */
static const char *
str(struct reader *r, json_object *o, const char *key, bool need)
{
	json_object *v = member(r, o, key, json_type_string, need);
	const char *s;
	size_t len;
	char *p;

	if (v == NULL)
		return NULL;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (memchr(s, '\0', len) != NULL) {
		r->err = refuse(r->why, r->whylen, "\"%s\" holds a NUL", key);
		return NULL;
	}
	/* Never more than the detail's own bytes, which fit: see PAYLOAD_AUDIT_MAX. */
	assert(r->used + len + 1 <= sizeof(r->out->text));
	p = r->out->text + r->used;
	memcpy(p, s, len + 1);
	r->used += len + 1;
	return p;
}

static int64_t
int64(struct reader *r, json_object *o, const char *key)
{
	json_object *v = member(r, o, key, json_type_int, true);

	return v != NULL ? json_object_get_int64(v) : 0;
}

/* A number, NaN for null; NaN also when absent and not needed. */
static double
num(struct reader *r, json_object *o, const char *key, bool need)
{
	json_object *v = member(r, o, key, json_type_double, need);

	return v != NULL && !json_object_is_type(v, json_type_null) ? json_object_get_double(v) :
	    NAN;
}

static void
read_config(struct reader *r, json_object *o, struct payload_audit_config *c)
{
	c->version = str(r, o, K_VERSION, true);
	c->config = str(r, o, K_CONFIG, true);
	c->sha256 = str(r, o, K_SHA256, false);
}

static void
read_alarm(struct reader *r, json_object *o, struct payload_audit_alarm *a)
{
	const char *state;

	a->id = str(r, o, K_ID, true);
	state = str(r, o, K_STATE, true);
	a->value = num(r, o, K_VALUE, true);
	a->limit = num(r, o, K_LIMIT, true);
	a->by = str(r, o, K_BY, false);
	if (r->err != 0)
		return;
	for (a->state = ALARM_CLEARED; a->state <= ALARM_ACKED; a->state++)
		if (strcmp(state, alarm_state_name(a->state)) == 0)
			return;
	r->err = refuse(r->why, r->whylen, "\"%s\" is not a state: \"%.32s\"", K_STATE, state);
}

static void
read_summary(struct reader *r, json_object *o, struct payload_summary *s,
    struct payload_summary_item *it)
{
	json_object *q = member(r, o, K_QUANTITIES, json_type_array, true);
	const char *name, *unit;
	int qi;

	s->zone = str(r, o, K_ZONE, true);
	s->zone_name = str(r, o, K_ZONE_NAME, true);
	s->start = int64(r, o, K_START);
	s->end = int64(r, o, K_END);
	if (r->err != 0)
		return;
	if (json_object_array_length(q) != 1) {
		r->err = refuse(r->why, r->whylen, "\"%s\" must hold one quantity", K_QUANTITIES);
		return;
	}
	o = json_object_array_get_idx(q, 0);
	if (!json_object_is_type(o, json_type_object)) {
		r->err = refuse(r->why, r->whylen, "\"%s\" must hold an object", K_QUANTITIES);
		return;
	}
	name = str(r, o, K_QUANTITY, true);
	unit = str(r, o, K_UNIT, true);
	it->n = int64(r, o, K_N);
	it->min = num(r, o, K_MIN, true);
	it->max = num(r, o, K_MAX, true);
	it->mean = num(r, o, K_MEAN, true);
	it->mkt = num(r, o, K_MKT, false);
	it->covered_s = num(r, o, K_COVERED_S, true);
	it->out_of_range_s = num(r, o, K_OUT_OF_RANGE_S, true);
	if (r->err != 0)
		return;
	if ((qi = quantity_from_name(name)) < 0 || strcmp(unit, quantity_unit(qi)) != 0) {
		r->err = refuse(r->why, r->whylen, "not a quantity and its unit: \"%.16s\" \"%.16s\"",
		    name, unit);
		return;
	}
	it->quantity = (enum quantity)qi;
}

int
payload_audit_parse(const char *kind, const char *detail, struct payload_audit *out, char *why,
    size_t whylen)
{
	struct reader r = { .out = out, .why = why, .whylen = whylen };
	json_object *o;
	int rc;

	memset(out, 0, offsetof(struct payload_audit, text));
	out->kind = payload_audit_kind_of(kind);
	if ((rc = json_read(detail, strlen(detail), PAYLOAD_AUDIT_MAX, &o, why, whylen)) < 0)
		return rc;
	switch (out->kind) {
	case PAYLOAD_AUDIT_START:
	case PAYLOAD_AUDIT_RELOAD:
		read_config(&r, o, &out->config);
		break;
	case PAYLOAD_AUDIT_CLOCK_SYNC:
		out->step_ms = int64(&r, o, K_STEP_MS);
		break;
	case PAYLOAD_AUDIT_DROPPED:
		out->dropped.readings = int64(&r, o, K_READINGS);
		out->dropped.delivered = int64(&r, o, K_DELIVERED);
		out->dropped.undelivered = int64(&r, o, K_UNDELIVERED);
		break;
	case PAYLOAD_AUDIT_ALARM:
		read_alarm(&r, o, &out->alarm);
		break;
	case PAYLOAD_AUDIT_ACK:
		out->ack.id = str(&r, o, K_ID, true);
		out->ack.by = str(&r, o, K_BY, true);
		out->ack.via = str(&r, o, K_VIA, true);
		break;
	case PAYLOAD_AUDIT_SUMMARY:
		read_summary(&r, o, &out->summary.zone, &out->summary.item);
		break;
	case PAYLOAD_AUDIT_STOP:
	case PAYLOAD_AUDIT_OTHER:
		break;
	}
	json_object_put(o);
	return r.err;
}
