/*
 * The wire format (payload.c): every builder against SPEC §4's keys and
 * JSON types, byte for byte against payloads coldgated published before
 * they were built here (captured from a run on simulated sensors), every
 * audit row kind built and read back, and bad input to every parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "payload.h"

static struct zone_cfg zones[] = {
	{ .id = "house-1", .name = "香菇出菇房 1", .profile = "shiitake-fruiting" },
	{ .id = "cold-1", .name = "冷库 \"1\"" },
};

/* The payload in b, parsed; the test fails if json-c does not take it. */
static json_object *
parsed(struct jbuf *b)
{
	json_object *o;

	assert_non_null(jb_text(b));
	o = json_tokener_parse(jb_text(b));
	if (o == NULL || !json_object_is_type(o, json_type_object))
		fail_msg("not a JSON object: %s", jb_text(b));
	return o;
}

/* o has exactly these keys (NULL-terminated), in this order. */
static void
assert_keys(json_object *o, const char *const *keys)
{
	size_t i = 0;

	json_object_object_foreach(o, key, val) {
		(void)val;
		if (keys[i] == NULL || strcmp(key, keys[i]) != 0)
			fail_msg("key %zu is \"%s\", want \"%s\" (%s)", i, key,
			    keys[i] ? keys[i] : "(no more)", json_object_to_json_string(o));
		i++;
	}
	if (keys[i] != NULL)
		fail_msg("key \"%s\" is missing (%s)", keys[i], json_object_to_json_string(o));
}

static json_object *
get(json_object *o, const char *key, json_type type)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no \"%s\"", key);
	if (!json_object_is_type(v, type))
		fail_msg("\"%s\" is a %s, want a %s", key, json_type_to_name(json_object_get_type(v)),
		    json_type_to_name(type));
	return v;
}

static const char *
get_str(json_object *o, const char *key)
{
	return json_object_get_string(get(o, key, json_type_string));
}

static int64_t
get_int(json_object *o, const char *key)
{
	return json_object_get_int64(get(o, key, json_type_int));
}

/* A number: integral values print without a fraction and parse as integers. */
static double
get_num(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no \"%s\"", key);
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		fail_msg("\"%s\" is not a number", key);
	return json_object_get_double(v);
}

/* ---- status ---- */

static void
status_online_carries_site_and_zones_byte_for_byte(void **state)
{
	static const char *const keys[] = { "state", "version", "ts", "site", "zones", NULL };
	static const char *const zkeys[] = { "id", "name", "profile", NULL };
	static const char *const zkeys2[] = { "id", "name", NULL };
	struct jbuf b = { 0 };
	json_object *o, *z;

	(void)state;
	payload_status(&b, &(struct payload_status){ .online = true, .version = "34b6f52",
	    .ts = 1796533261561, .site = "示范园区", .zones = zones, .nzones = 2 });
	assert_string_equal(jb_text(&b), "{\"state\":\"online\",\"version\":\"34b6f52\","
	    "\"ts\":1796533261561,\"site\":\"示范园区\",\"zones\":[{\"id\":\"house-1\","
	    "\"name\":\"香菇出菇房 1\",\"profile\":\"shiitake-fruiting\"},{\"id\":\"cold-1\","
	    "\"name\":\"冷库 \\\"1\\\"\"}]}");
	o = parsed(&b);
	assert_keys(o, keys);
	assert_string_equal(get_str(o, "state"), "online");
	assert_int_equal(get_int(o, "ts"), 1796533261561);
	z = get(o, "zones", json_type_array);
	assert_int_equal(json_object_array_length(z), 2);
	assert_keys(json_object_array_get_idx(z, 0), zkeys);
	assert_keys(json_object_array_get_idx(z, 1), zkeys2);
	assert_string_equal(get_str(json_object_array_get_idx(z, 1), "name"), "冷库 \"1\"");
	json_object_put(o);

	/* No site, and a store that takes no writes. */
	payload_status(&b, &(struct payload_status){ .online = true, .version = "v", .ts = 5,
	    .zones = zones, .nzones = 1, .store_error = "No space left on device" });
	assert_string_equal(jb_text(&b), "{\"state\":\"online\",\"version\":\"v\",\"ts\":5,"
	    "\"zones\":[{\"id\":\"house-1\",\"name\":\"香菇出菇房 1\","
	    "\"profile\":\"shiitake-fruiting\"}],\"store_error\":\"No space left on device\"}");
	jb_free(&b);
}

static void
status_offline_is_state_version_and_ts_only(void **state)
{
	static const char *const keys[] = { "state", "version", "ts", NULL };
	struct jbuf b = { 0 };
	json_object *o;

	(void)state;
	/* Offline (the Last Will too) says nothing of zones, even when given them. */
	payload_status(&b, &(struct payload_status){ .online = false, .version = "34b6f52",
	    .ts = 1796533273672, .site = "x", .zones = zones, .nzones = 2, .store_error = "x" });
	assert_string_equal(jb_text(&b),
	    "{\"state\":\"offline\",\"version\":\"34b6f52\",\"ts\":1796533273672}");
	o = parsed(&b);
	assert_keys(o, keys);
	assert_string_equal(get_str(o, "state"), "offline");
	json_object_put(o);
	jb_free(&b);
}

/* ---- telemetry ---- */

static void
telemetry_window_byte_for_byte(void **state)
{
	struct jbuf b = { 0 };

	(void)state;
	payload_telemetry_begin(&b, &(struct payload_window){ .gw = "cap-gw", .seq = 4,
	    .start = 1796533264000, .end = 1796533266000 });
	payload_telemetry_reading(&b, &(struct payload_reading){ .sensor = "c1-probe",
	    .zone = "cold-1", .quantity = Q_TEMPERATURE, .n = 4, .min = 2, .max = 9.25,
	    .mean = 4.71666666, .last = 9.25, .clock_ok = true });
	payload_telemetry_reading(&b, &(struct payload_reading){ .sensor = "c1-door",
	    .zone = "cold-1", .quantity = Q_DOOR, .n = 4, .min = 0, .max = 1, .mean = 0.5,
	    .last = 1, .clock_ok = true });
	payload_telemetry_end(&b);
	assert_string_equal(jb_text(&b), "{\"gw\":\"cap-gw\",\"seq\":4,\"start\":1796533264000,"
	    "\"end\":1796533266000,\"readings\":[{\"sensor\":\"c1-probe\",\"zone\":\"cold-1\","
	    "\"quantity\":\"temperature\",\"unit\":\"C\",\"n\":4,\"min\":2,\"max\":9.25,"
	    "\"mean\":4.717,\"last\":9.25},{\"sensor\":\"c1-door\",\"zone\":\"cold-1\","
	    "\"quantity\":\"door\",\"unit\":\"0/1\",\"n\":4,\"min\":0,\"max\":1,\"mean\":0.5,"
	    "\"last\":1}]}");
	/* A window with nothing in it still says which window it was. */
	payload_telemetry_begin(&b, &(struct payload_window){ .gw = "g", .seq = 1, .start = 0,
	    .end = 60000 });
	payload_telemetry_end(&b);
	assert_string_equal(jb_text(&b),
	    "{\"gw\":\"g\",\"seq\":1,\"start\":0,\"end\":60000,\"readings\":[]}");
	jb_free(&b);
}

static void
telemetry_has_spec_keys_units_and_clock_ok(void **state)
{
	static const char *const keys[] = { "gw", "seq", "start", "end", "readings", NULL };
	static const char *const rkeys[] = { "sensor", "zone", "quantity", "unit", "n", "min",
		"max", "mean", "last", NULL };
	static const char *const rkeys_bad_clock[] = { "sensor", "zone", "quantity", "unit", "n",
		"min", "max", "mean", "last", "clock_ok", NULL };
	static const struct { const char *quantity, *unit; } spec[Q_COUNT] = {
		[Q_TEMPERATURE] = { "temperature", "C" }, [Q_HUMIDITY] = { "humidity", "%RH" },
		[Q_CO2] = { "co2", "ppm" }, [Q_DOOR] = { "door", "0/1" },
	};
	struct jbuf b = { 0 };
	json_object *o, *r;

	(void)state;
	payload_telemetry_begin(&b, &(struct payload_window){ .gw = "xc-fungus-01", .seq = 7,
	    .start = 1767225600000, .end = 1767225660000 });
	for (int q = 0; q < Q_COUNT; q++)
		payload_telemetry_reading(&b, &(struct payload_reading){ .sensor = "h1-air",
		    .zone = "house-1", .quantity = (enum quantity)q, .n = 12, .min = -1.5,
		    .max = 1200, .mean = 21.3, .last = 0.0625, .clock_ok = q != Q_CO2 });
	payload_telemetry_end(&b);
	o = parsed(&b);
	assert_keys(o, keys);
	assert_string_equal(get_str(o, "gw"), "xc-fungus-01");
	assert_int_equal(get_int(o, "seq"), 7);
	assert_int_equal(get_int(o, "start"), 1767225600000);
	assert_int_equal(get_int(o, "end"), 1767225660000);
	r = get(o, "readings", json_type_array);
	assert_int_equal(json_object_array_length(r), Q_COUNT);
	for (int q = 0; q < Q_COUNT; q++) {
		json_object *e = json_object_array_get_idx(r, (size_t)q);

		assert_keys(e, q == Q_CO2 ? rkeys_bad_clock : rkeys);
		assert_string_equal(get_str(e, "quantity"), spec[q].quantity);
		assert_string_equal(get_str(e, "unit"), spec[q].unit);
		assert_int_equal(get_int(e, "n"), 12);
		assert_true(get_num(e, "min") == -1.5);
		assert_true(get_num(e, "max") == 1200);
		assert_true(get_num(e, "mean") == 21.3);
		/* Three decimals: finer than any sensor, and never 21.300000000000001. */
		assert_true(get_num(e, "last") == 0.062);
		if (q == Q_CO2)
			assert_false(json_object_get_boolean(get(e, "clock_ok", json_type_boolean)));
	}
	json_object_put(o);
	jb_free(&b);
}

/* ---- events ---- */

static void
events_byte_for_byte(void **state)
{
	static const struct {
		struct payload_event e;
		const char *want;
	} cases[] = {
		{ { .gw = "cap-gw", .seq = 3, .type = PAYLOAD_DOOR_OPEN, .ts = 1796533265060,
		    .sensor = { "c1-door", "cold-1", NULL } },
		  "{\"gw\":\"cap-gw\",\"seq\":3,\"type\":\"door_open\",\"ts\":1796533265060,"
		  "\"sensor\":\"c1-door\",\"zone\":\"cold-1\"}" },
		{ { .gw = "cap-gw", .seq = 6, .type = PAYLOAD_DOOR_CLOSE, .ts = 1796533267059,
		    .sensor = { "c1-door", "cold-1", "ignored" } },
		  "{\"gw\":\"cap-gw\",\"seq\":6,\"type\":\"door_close\",\"ts\":1796533267059,"
		  "\"sensor\":\"c1-door\",\"zone\":\"cold-1\"}" },
		{ { .gw = "g", .seq = 1, .type = PAYLOAD_SENSOR_FAULT, .ts = 2,
		    .sensor = { "c1-t", "cold-1", "Connection timed out" } },
		  "{\"gw\":\"g\",\"seq\":1,\"type\":\"sensor_fault\",\"ts\":2,\"sensor\":\"c1-t\","
		  "\"zone\":\"cold-1\",\"error\":\"Connection timed out\"}" },
		{ { .gw = "g", .seq = 2, .type = PAYLOAD_SENSOR_RECOVERED, .ts = 3,
		    .sensor = { "c1-t", "cold-1", NULL } },
		  "{\"gw\":\"g\",\"seq\":2,\"type\":\"sensor_recovered\",\"ts\":3,"
		  "\"sensor\":\"c1-t\",\"zone\":\"cold-1\"}" },
		{ { .gw = "g", .seq = 3, .type = PAYLOAD_CLOCK_SYNC, .ts = 4, .step_ms = -3600250 },
		  "{\"gw\":\"g\",\"seq\":3,\"type\":\"clock_sync\",\"ts\":4,\"step_ms\":-3600250}" },
		{ { .gw = "g", .seq = 4, .type = PAYLOAD_BUFFER_OVERFLOW, .ts = 5,
		    .overflow = { 1000, 20, 3, 256 } },
		  "{\"gw\":\"g\",\"seq\":4,\"type\":\"buffer_overflow\",\"ts\":5,"
		  "\"dropped_readings\":1000,\"dropped_delivered\":20,\"dropped_undelivered\":3,"
		  "\"max_size_mb\":256}" },
		{ { .gw = "g", .seq = 5, .type = PAYLOAD_STORE_ERROR, .ts = 6,
		    .store = { "No space left on device", 17 } },
		  "{\"gw\":\"g\",\"seq\":5,\"type\":\"store_error\",\"ts\":6,"
		  "\"error\":\"No space left on device\",\"queued\":17}" },
	};
	struct jbuf b = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		payload_event(&b, &cases[i].e);
		assert_string_equal(jb_text(&b), cases[i].want);
		json_object_put(parsed(&b));
	}
	jb_free(&b);
}

static void
events_have_spec_head_and_their_fields(void **state)
{
	static const char *const sensor_keys[] = { "gw", "seq", "type", "ts", "sensor", "zone",
		NULL };
	static const char *const fault_keys[] = { "gw", "seq", "type", "ts", "sensor", "zone",
		"error", NULL };
	static const char *const clock_keys[] = { "gw", "seq", "type", "ts", "step_ms", NULL };
	static const char *const overflow_keys[] = { "gw", "seq", "type", "ts",
		"dropped_readings", "dropped_delivered", "dropped_undelivered", "max_size_mb", NULL };
	static const char *const store_keys[] = { "gw", "seq", "type", "ts", "error", "queued",
		NULL };
	static const struct {
		enum payload_event_type type;
		const char *name;
		const char *const *keys;
	} spec[] = {
		{ PAYLOAD_DOOR_OPEN, "door_open", sensor_keys },
		{ PAYLOAD_DOOR_CLOSE, "door_close", sensor_keys },
		{ PAYLOAD_SENSOR_FAULT, "sensor_fault", fault_keys },
		{ PAYLOAD_SENSOR_RECOVERED, "sensor_recovered", sensor_keys },
		{ PAYLOAD_CLOCK_SYNC, "clock_sync", clock_keys },
		{ PAYLOAD_BUFFER_OVERFLOW, "buffer_overflow", overflow_keys },
		{ PAYLOAD_STORE_ERROR, "store_error", store_keys },
	};
	struct jbuf b = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(spec) / sizeof(spec[0]); i++) {
		struct payload_event e = { .gw = "xc-fungus-01", .seq = 100 + (int64_t)i,
		    .type = spec[i].type, .ts = 1767225600123 };
		json_object *o;

		if (spec[i].keys == sensor_keys || spec[i].keys == fault_keys)
			e.sensor.sensor = "c1-door", e.sensor.zone = "cold-1", e.sensor.error = "x";
		else if (spec[i].type == PAYLOAD_STORE_ERROR)
			e.store.error = "Read-only file system";
		payload_event(&b, &e);
		o = parsed(&b);
		assert_keys(o, spec[i].keys);
		assert_string_equal(get_str(o, "gw"), "xc-fungus-01");
		assert_int_equal(get_int(o, "seq"), 100 + (int64_t)i);
		assert_string_equal(get_str(o, "type"), spec[i].name);
		assert_string_equal(payload_event_name(spec[i].type), spec[i].name);
		assert_int_equal(get_int(o, "ts"), 1767225600123);
		json_object_put(o);
	}
	jb_free(&b);
}

static const struct payload_summary day = { .zone = "cold-1", .zone_name = "冷库 1",
	.start = 1796486400000, .end = 1796572800000 };
static const struct payload_summary_item day_t = { .quantity = Q_TEMPERATURE, .n = 100,
	.min = 1.5, .max = 4.25, .mean = 2.5, .mkt = 2.6123, .covered_s = 86400,
	.out_of_range_s = 0 };
static const struct payload_summary_item day_h = { .quantity = Q_HUMIDITY, .n = 50,
	.min = 80, .max = 95, .mean = 90.5, .mkt = NAN, .covered_s = 86000.5,
	.out_of_range_s = 12 };
#define DAY_T	"{\"quantity\":\"temperature\",\"unit\":\"C\",\"n\":100,\"min\":1.5," \
		"\"max\":4.25,\"mean\":2.5,\"mkt\":2.612,\"covered_s\":86400,\"out_of_range_s\":0}"
#define DAY_H	"{\"quantity\":\"humidity\",\"unit\":\"%RH\",\"n\":50,\"min\":80,\"max\":95," \
		"\"mean\":90.5,\"covered_s\":86000.5,\"out_of_range_s\":12}"

static void
summary_event_holds_the_zones_quantities(void **state)
{
	static const char *const keys[] = { "gw", "seq", "type", "ts", "zone", "zone_name",
		"start", "end", "quantities", NULL };
	struct jbuf b = { 0 };
	json_object *o;

	(void)state;
	payload_event(&b, &(struct payload_event){ .gw = "cap-gw", .seq = 12,
	    .type = PAYLOAD_SUMMARY, .ts = 1796572801000, .summary = day });
	payload_summary_item(&b, &day_t);
	payload_summary_item(&b, &day_h);
	payload_summary_end(&b);
	assert_string_equal(jb_text(&b), "{\"gw\":\"cap-gw\",\"seq\":12,\"type\":\"summary\","
	    "\"ts\":1796572801000,\"zone\":\"cold-1\",\"zone_name\":\"冷库 1\","
	    "\"start\":1796486400000,\"end\":1796572800000,\"quantities\":[" DAY_T "," DAY_H "]}");
	o = parsed(&b);
	assert_keys(o, keys);
	assert_int_equal(json_object_array_length(get(o, "quantities", json_type_array)), 2);
	json_object_put(o);
	jb_free(&b);
}

/* ---- alarms ---- */

static const struct payload_alarm acked = { .gw = "cap-gw", .seq = 7,
	.id = "c1-probe-temperature-high", .zone = "cold-1", .sensor = "c1-probe",
	.rule = ALARM_HIGH, .severity = ALARM_WARNING, .state = ALARM_ACKED, .value = 9.25,
	.limit = 4, .since = 1796533285591, .ts = 1796533287094, .by = "王师傅" };

static void
alarm_byte_for_byte(void **state)
{
	struct payload_alarm a = acked;
	struct jbuf b = { 0 };

	(void)state;
	a.seq = 5, a.state = ALARM_ACTIVE, a.by = NULL, a.ts = 1796533286591;
	payload_alarm(&b, &a);
	assert_string_equal(jb_text(&b), "{\"gw\":\"cap-gw\",\"seq\":5,"
	    "\"id\":\"c1-probe-temperature-high\",\"zone\":\"cold-1\",\"sensor\":\"c1-probe\","
	    "\"rule\":\"high\",\"severity\":\"warning\",\"state\":\"active\",\"value\":9.25,"
	    "\"limit\":4,\"since\":1796533285591,\"ts\":1796533286591}");
	payload_alarm(&b, &acked);
	assert_string_equal(jb_text(&b), "{\"gw\":\"cap-gw\",\"seq\":7,"
	    "\"id\":\"c1-probe-temperature-high\",\"zone\":\"cold-1\",\"sensor\":\"c1-probe\","
	    "\"rule\":\"high\",\"severity\":\"warning\",\"state\":\"acked\",\"value\":9.25,"
	    "\"limit\":4,\"since\":1796533285591,\"ts\":1796533287094,\"by\":\"王师傅\"}");
	/* The gateway's own alarm, retired: its rule is gone. */
	payload_alarm(&b, &(struct payload_alarm){ .gw = "g", .seq = 9,
	    .id = "gateway-uplink-down", .rule = ALARM_UPLINK_DOWN, .severity = ALARM_CRITICAL,
	    .state = ALARM_CLEARED, .value = NAN, .limit = 600, .since = 1, .ts = 2, .by = "",
	    .retired = true });
	assert_string_equal(jb_text(&b), "{\"gw\":\"g\",\"seq\":9,\"id\":\"gateway-uplink-down\","
	    "\"zone\":\"gateway\",\"sensor\":\"gateway\",\"rule\":\"uplink_down\","
	    "\"severity\":\"critical\",\"state\":\"cleared\",\"value\":null,\"limit\":600,"
	    "\"since\":1,\"ts\":2,\"retired\":true}");
	jb_free(&b);
}

static void
alarm_has_spec_keys_and_states(void **state)
{
	/* SPEC §4's keys, and severity, which the daemon has always sent after rule. */
	static const char *const keys[] = { "gw", "seq", "id", "zone", "sensor", "rule",
		"severity", "state", "value", "limit", "since", "ts", NULL };
	static const char *const keys_by[] = { "gw", "seq", "id", "zone", "sensor", "rule",
		"severity", "state", "value", "limit", "since", "ts", "by", NULL };
	static const struct { enum alarm_state state; const char *name; } spec[] = {
		{ ALARM_ACTIVE, "active" }, { ALARM_ACKED, "acked" }, { ALARM_CLEARED, "cleared" },
	};
	struct jbuf b = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(spec) / sizeof(spec[0]); i++) {
		struct payload_alarm a = acked;
		json_object *o;

		a.state = spec[i].state;
		a.by = spec[i].state == ALARM_ACTIVE ? NULL : a.by;
		payload_alarm(&b, &a);
		o = parsed(&b);
		assert_keys(o, a.by ? keys_by : keys);
		assert_string_equal(get_str(o, "state"), spec[i].name);
		assert_int_equal(get_int(o, "seq"), 7);
		assert_int_equal(get_int(o, "since"), 1796533285591);
		assert_int_equal(get_int(o, "ts"), 1796533287094);
		assert_true(get_num(o, "value") == 9.25);
		assert_true(get_num(o, "limit") == 4);
		json_object_put(o);
	}
	jb_free(&b);
}

/* ---- commands ---- */

static void
cmd_results_byte_for_byte_and_read_back(void **state)
{
	static const char *const keys[] = { "gw", "cmd", "alarm", "ok", "ts", NULL };
	struct jbuf b = { 0 };
	char err[64];
	bool ok;
	json_object *o;

	(void)state;
	payload_cmd_result(&b, &(struct payload_cmd_result){ .gw = "cap-gw", .cmd = "ack",
	    .alarm = "c1-probe-temperature-high", .ok = false, .error = "already acknowledged",
	    .ts = 1796533287108 });
	assert_string_equal(jb_text(&b), "{\"gw\":\"cap-gw\",\"cmd\":\"ack\","
	    "\"alarm\":\"c1-probe-temperature-high\",\"ok\":false,"
	    "\"error\":\"already acknowledged\",\"ts\":1796533287108}");
	assert_int_equal(payload_cmd_result_parse(b.p, b.len, &ok, err, sizeof(err)), 0);
	assert_false(ok);
	assert_string_equal(err, "already acknowledged");

	/* A command that did not parse names no alarm. */
	payload_cmd_result(&b, &(struct payload_cmd_result){ .gw = "cap-gw", .cmd = "ack",
	    .ok = false, .error = "not JSON: unexpected end", .ts = 1796533267670 });
	assert_string_equal(jb_text(&b), "{\"gw\":\"cap-gw\",\"cmd\":\"ack\",\"ok\":false,"
	    "\"error\":\"not JSON: unexpected end\",\"ts\":1796533267670}");

	payload_cmd_result(&b, &(struct payload_cmd_result){ .gw = "g", .cmd = "ack",
	    .alarm = "x", .ok = true, .error = "not written", .ts = 9 });
	o = parsed(&b);
	assert_keys(o, keys);
	json_object_put(o);
	assert_int_equal(payload_cmd_result_parse(b.p, b.len, &ok, err, sizeof(err)), 0);
	assert_true(ok);
	assert_string_equal(err, "");

	assert_int_equal(payload_cmd_result_parse("{\"gw\":\"g\"}", 10, &ok, err, sizeof(err)),
	    -EINVAL);
	assert_int_equal(payload_cmd_result_parse("{\"ok\":1}", 8, &ok, err, sizeof(err)), -EINVAL);
	assert_int_equal(payload_cmd_result_parse("{\"ok\":tr", 8, &ok, err, sizeof(err)), -EINVAL);
	assert_int_equal(payload_cmd_result_parse("", 0, &ok, err, sizeof(err)), -EINVAL);
	jb_free(&b);
}

static void
ack_built_by_coldgatectl_parses_in_the_daemon(void **state)
{
	struct payload_ack a;
	struct jbuf b = { 0 };
	char why[128];

	(void)state;
	payload_ack(&b, "c1-probe-temperature-high", "王师傅");
	assert_string_equal(jb_text(&b),
	    "{\"alarm\":\"c1-probe-temperature-high\",\"by\":\"王师傅\"}");
	assert_int_equal(payload_ack_parse(b.p, b.len, &a, why, sizeof(why)), 0);
	assert_string_equal(a.alarm, "c1-probe-temperature-high");
	assert_string_equal(a.by, "王师傅");
	/* Bytes that are not UTF-8 are refused before any field is looked at. */
	assert_int_equal(payload_ack_parse("{\"alarm\":\"x\",\"zz\":\"\xc3\x28\"}", 22, &a, why,
	    sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "not UTF-8"));
	jb_free(&b);
}

/* ---- audit rows ---- */

/* Build with fn into b, then parse it back as kind. */
static void
reparse(struct jbuf *b, enum payload_audit_kind kind, struct payload_audit *out)
{
	char why[128] = "";

	assert_non_null(jb_text(b));
	if (payload_audit_parse(payload_audit_kind_name(kind), jb_text(b), out, why,
	    sizeof(why)) != 0)
		fail_msg("%s %s: %s", payload_audit_kind_name(kind), jb_text(b), why);
	assert_int_equal(out->kind, kind);
}

static void
audit_rows_byte_for_byte(void **state)
{
	struct jbuf b = { 0 };

	(void)state;
	payload_audit_config(&b, &(struct payload_audit_config){ .version = "34b6f52",
	    .config = "cg.cfg",
	    .sha256 = "be38ec785c565a49519b5228282272507e1c7473117c134a988b0993b75a9e28" });
	assert_string_equal(jb_text(&b), "{\"version\":\"34b6f52\",\"config\":\"cg.cfg\","
	    "\"sha256\":\"be38ec785c565a49519b5228282272507e1c7473117c134a988b0993b75a9e28\"}");
	payload_audit_alarm(&b, &(struct payload_audit_alarm){ .id = "c1-probe-temperature-high",
	    .state = ALARM_ACTIVE, .value = 9.25, .limit = 4 });
	assert_string_equal(jb_text(&b), "{\"id\":\"c1-probe-temperature-high\","
	    "\"state\":\"active\",\"value\":9.25,\"limit\":4}");
	payload_audit_alarm(&b, &(struct payload_audit_alarm){ .id = "c1-probe-temperature-high",
	    .state = ALARM_CLEARED, .value = 2, .limit = 4, .by = "王师傅" });
	assert_string_equal(jb_text(&b), "{\"id\":\"c1-probe-temperature-high\","
	    "\"state\":\"cleared\",\"value\":2,\"limit\":4,\"by\":\"王师傅\"}");
	payload_audit_ack(&b, &(struct payload_audit_ack){ .id = "c1-probe-temperature-high",
	    .by = "王师傅", .via = "local" });
	assert_string_equal(jb_text(&b), "{\"id\":\"c1-probe-temperature-high\","
	    "\"by\":\"王师傅\",\"via\":\"local\"}");
	payload_audit_stop(&b);
	assert_string_equal(jb_text(&b), "{}");
	payload_audit_clock_sync(&b, 7200000);
	assert_string_equal(jb_text(&b), "{\"step_ms\":7200000}");
	payload_audit_dropped(&b, &(struct payload_audit_dropped){ 1, 2, 3 });
	assert_string_equal(jb_text(&b), "{\"readings\":1,\"delivered\":2,\"undelivered\":3}");
	payload_audit_summary(&b, &day, &day_t);
	assert_string_equal(jb_text(&b), "{\"zone\":\"cold-1\",\"zone_name\":\"冷库 1\","
	    "\"start\":1796486400000,\"end\":1796572800000,\"quantities\":[" DAY_T "]}");
	jb_free(&b);
}

static void
every_audit_kind_reads_back_what_was_written(void **state)
{
	struct payload_audit *p = malloc(sizeof(*p));
	struct jbuf b = { 0 };
	char why[64];

	(void)state;
	assert_non_null(p);
	for (int k = PAYLOAD_AUDIT_START; k <= PAYLOAD_AUDIT_RELOAD; k++) {
		payload_audit_config(&b, &(struct payload_audit_config){ .version = "1.2",
		    .config = "/etc/coldgate/冷库.cfg", .sha256 = "00ff" });
		reparse(&b, (enum payload_audit_kind)k, p);
		assert_string_equal(p->config.version, "1.2");
		assert_string_equal(p->config.config, "/etc/coldgate/冷库.cfg");
		assert_string_equal(p->config.sha256, "00ff");
	}
	payload_audit_config(&b, &(struct payload_audit_config){ .version = "1.2", .config = "c" });
	reparse(&b, PAYLOAD_AUDIT_START, p);
	assert_null(p->config.sha256);

	payload_audit_stop(&b);
	reparse(&b, PAYLOAD_AUDIT_STOP, p);

	payload_audit_clock_sync(&b, -86400000);
	reparse(&b, PAYLOAD_AUDIT_CLOCK_SYNC, p);
	assert_int_equal(p->step_ms, -86400000);

	payload_audit_dropped(&b, &(struct payload_audit_dropped){ 17000000000, 0, 5 });
	reparse(&b, PAYLOAD_AUDIT_DROPPED, p);
	assert_int_equal(p->dropped.readings, 17000000000);
	assert_int_equal(p->dropped.delivered, 0);
	assert_int_equal(p->dropped.undelivered, 5);

	for (int s = ALARM_CLEARED; s <= ALARM_ACKED; s++) {
		payload_audit_alarm(&b, &(struct payload_audit_alarm){ .id = "h1-air-co2-high",
		    .state = (enum alarm_state)s, .value = 1234.5, .limit = -0.25,
		    .by = s == ALARM_ACTIVE ? NULL : "李 \"工\"" });
		reparse(&b, PAYLOAD_AUDIT_ALARM, p);
		assert_string_equal(p->alarm.id, "h1-air-co2-high");
		assert_int_equal(p->alarm.state, s);
		assert_true(p->alarm.value == 1234.5);
		assert_true(p->alarm.limit == -0.25);
		if (s == ALARM_ACTIVE)
			assert_null(p->alarm.by);
		else
			assert_string_equal(p->alarm.by, "李 \"工\"");
	}
	/* A value we did not have is null on the wire and NaN again when read. */
	payload_audit_alarm(&b, &(struct payload_audit_alarm){ .id = "gateway-store-full",
	    .state = ALARM_ACTIVE, .value = NAN, .limit = 0.9 });
	reparse(&b, PAYLOAD_AUDIT_ALARM, p);
	assert_true(isnan(p->alarm.value));
	assert_true(p->alarm.limit == 0.9);

	payload_audit_ack(&b, &(struct payload_audit_ack){ .id = "x", .by = "", .via = "mqtt" });
	reparse(&b, PAYLOAD_AUDIT_ACK, p);
	assert_string_equal(p->ack.id, "x");
	assert_string_equal(p->ack.by, "");
	assert_string_equal(p->ack.via, "mqtt");

	payload_audit_summary(&b, &day, &day_t);
	reparse(&b, PAYLOAD_AUDIT_SUMMARY, p);
	assert_string_equal(p->summary.zone.zone, "cold-1");
	assert_string_equal(p->summary.zone.zone_name, "冷库 1");
	assert_int_equal(p->summary.zone.start, day.start);
	assert_int_equal(p->summary.zone.end, day.end);
	assert_int_equal(p->summary.item.quantity, Q_TEMPERATURE);
	assert_int_equal(p->summary.item.n, 100);
	assert_true(p->summary.item.min == 1.5 && p->summary.item.max == 4.25);
	assert_true(p->summary.item.mean == 2.5);
	assert_true(p->summary.item.mkt == 2.612);	/* as printed: three decimals */
	assert_true(p->summary.item.covered_s == 86400 && p->summary.item.out_of_range_s == 0);
	payload_audit_summary(&b, &day, &day_h);
	reparse(&b, PAYLOAD_AUDIT_SUMMARY, p);
	assert_int_equal(p->summary.item.quantity, Q_HUMIDITY);
	assert_true(isnan(p->summary.item.mkt));
	assert_true(p->summary.item.covered_s == 86000.5);

	/* A kind of a later version reads as OTHER, its detail still an object. */
	assert_int_equal(payload_audit_parse("firmware", "{\"v\":2}", p, why, sizeof(why)), 0);
	assert_int_equal(p->kind, PAYLOAD_AUDIT_OTHER);
	for (int k = PAYLOAD_AUDIT_START; k < PAYLOAD_AUDIT_OTHER; k++)
		assert_int_equal(payload_audit_kind_of(payload_audit_kind_name(
		    (enum payload_audit_kind)k)), k);
	free(p);
	jb_free(&b);
}

static void
bad_audit_rows_say_why(void **state)
{
	static const struct {
		const char *kind, *detail, *why;
	} bad[] = {
		{ "alarm", "", "not JSON" },
		{ "alarm", "{\"id\":\"x\"", "not JSON" },
		{ "alarm", "{\"id\":\"x\"} {}", "not JSON" },
		{ "alarm", "[1]", "not a JSON object" },
		{ "stop", "\"x\"", "not a JSON object" },
		{ "stop", "null", "not JSON" },
		{ "alarm", "{\"state\":\"active\",\"value\":1,\"limit\":2}", "\"id\" is missing" },
		{ "alarm", "{\"id\":\"x\",\"value\":1,\"limit\":2}", "\"state\" is missing" },
		{ "alarm", "{\"id\":\"x\",\"state\":\"active\",\"limit\":2}", "\"value\" is missing" },
		{ "alarm", "{\"id\":7,\"state\":\"active\",\"value\":1,\"limit\":2}",
		  "\"id\" must be a string" },
		{ "alarm", "{\"id\":\"x\",\"state\":\"active\",\"value\":\"1\",\"limit\":2}",
		  "\"value\" must be a number" },
		{ "alarm", "{\"id\":\"x\",\"state\":\"active\",\"value\":1,\"limit\":2,\"by\":[]}",
		  "\"by\" must be a string" },
		{ "alarm", "{\"id\":\"x\",\"state\":\"on fire\",\"value\":1,\"limit\":2}",
		  "\"state\" is not a state" },
		{ "alarm", "{\"id\":\"x\\u0000y\",\"state\":\"active\",\"value\":1,\"limit\":2}",
		  "\"id\" holds a NUL" },
		{ "ack", "{\"id\":\"x\",\"by\":\"li\"}", "\"via\" is missing" },
		{ "ack", "{\"id\":\"x\",\"by\":\"\xff\xfe\",\"via\":\"mqtt\"}", "not UTF-8" },
		{ "ack", "{\"id\":\"x\",\"by\":\"\xe5\x86\",\"via\":\"mqtt\"}", "not UTF-8" },
		{ "start", "{\"version\":\"1\"}", "\"config\" is missing" },
		{ "reload", "{\"version\":1,\"config\":\"c\"}", "\"version\" must be a string" },
		{ "clock_sync", "{\"step_ms\":1.5}", "\"step_ms\" must be an integer" },
		{ "clock_sync", "{}", "\"step_ms\" is missing" },
		{ "dropped", "{\"readings\":1,\"delivered\":2}", "\"undelivered\" is missing" },
		{ "summary", "{\"zone\":\"z\",\"zone_name\":\"n\",\"start\":1,\"end\":2}",
		  "\"quantities\" is missing" },
		{ "summary", "{\"zone\":\"z\",\"zone_name\":\"n\",\"start\":1,\"end\":2,"
		  "\"quantities\":[]}", "must hold one quantity" },
		{ "summary", "{\"zone\":\"z\",\"zone_name\":\"n\",\"start\":1,\"end\":2,"
		  "\"quantities\":[3]}", "must hold an object" },
		{ "summary", "{\"zone\":\"z\",\"zone_name\":\"n\",\"start\":1,\"end\":2,"
		  "\"quantities\":[{\"quantity\":\"temperature\",\"unit\":\"F\",\"n\":1,\"min\":1,"
		  "\"max\":1,\"mean\":1,\"covered_s\":1,\"out_of_range_s\":0}]}",
		  "not a quantity and its unit" },
		{ "summary", "{\"zone\":\"z\",\"zone_name\":\"n\",\"start\":1,\"end\":2,"
		  "\"quantities\":[{\"quantity\":\"temperature\",\"unit\":\"C\",\"n\":1,\"min\":1,"
		  "\"max\":1,\"mean\":1,\"covered_s\":1}]}", "\"out_of_range_s\" is missing" },
		{ "stop", "{\"a\":[[[[[[[[[[1]]]]]]]]]]}", "not JSON" },
	};
	struct payload_audit *p = malloc(sizeof(*p));
	char why[128];

	(void)state;
	assert_non_null(p);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (payload_audit_parse(bad[i].kind, bad[i].detail, p, why, sizeof(why)) != -EINVAL)
			fail_msg("accepted %s %s", bad[i].kind, bad[i].detail);
		if (strstr(why, bad[i].why) == NULL)
			fail_msg("%s %s: reason \"%s\", want \"%s\"", bad[i].kind, bad[i].detail, why,
			    bad[i].why);
	}
	free(p);
}

static void
oversized_audit_rows_are_refused_whole(void **state)
{
	struct payload_audit *p = malloc(sizeof(*p));
	size_t len = PAYLOAD_AUDIT_MAX + 64;
	char *big = malloc(len + 1), why[128];
	int n;

	(void)state;
	assert_non_null(p);
	assert_non_null(big);
	/* The longest detail that fits still parses, every byte of it a string. */
	n = snprintf(big, len, "{\"version\":\"1\",\"config\":\"");
	memset(big + n, 'a', PAYLOAD_AUDIT_MAX - (size_t)n - 2);
	memcpy(big + PAYLOAD_AUDIT_MAX - 2, "\"}", 3);
	assert_int_equal(payload_audit_parse("start", big, p, why, sizeof(why)), 0);
	assert_int_equal(strlen(p->config.config), PAYLOAD_AUDIT_MAX - (size_t)n - 2);
	/* One byte more is refused, with its size. */
	memset(big + n, 'a', PAYLOAD_AUDIT_MAX - (size_t)n - 1);
	memcpy(big + PAYLOAD_AUDIT_MAX - 1, "\"}", 3);
	assert_int_equal(payload_audit_parse("start", big, p, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "at most 8192"));
	free(big);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(status_online_carries_site_and_zones_byte_for_byte),
		cmocka_unit_test(status_offline_is_state_version_and_ts_only),
		cmocka_unit_test(telemetry_window_byte_for_byte),
		cmocka_unit_test(telemetry_has_spec_keys_units_and_clock_ok),
		cmocka_unit_test(events_byte_for_byte),
		cmocka_unit_test(events_have_spec_head_and_their_fields),
		cmocka_unit_test(summary_event_holds_the_zones_quantities),
		cmocka_unit_test(alarm_byte_for_byte),
		cmocka_unit_test(alarm_has_spec_keys_and_states),
		cmocka_unit_test(cmd_results_byte_for_byte_and_read_back),
		cmocka_unit_test(ack_built_by_coldgatectl_parses_in_the_daemon),
		cmocka_unit_test(audit_rows_byte_for_byte),
		cmocka_unit_test(every_audit_kind_reads_back_what_was_written),
		cmocka_unit_test(bad_audit_rows_say_why),
		cmocka_unit_test(oversized_audit_rows_are_refused_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
