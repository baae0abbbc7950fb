/*
 * The stored alarm record (alarmrec.c): its exact bytes, so every build on
 * every machine writes the same; a round trip of every field at its
 * extremes; and refusal, without a partial fill, of another version, a
 * record cut short, bytes past the end, fields out of range and another
 * alarm's record.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alarm.h"

#define HEAD	66	/* the header's bytes, as alarmrec.c writes it down */

/* Field by field; doubles by their bits, so NaN and -0.0 count. */
static void
assert_same_record(const struct alarm_record *a, const struct alarm_record *b)
{
	assert_string_equal(a->id, b->id);
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->severity, b->severity);
	assert_int_equal(a->zone, b->zone);
	assert_int_equal(a->sensor, b->sensor);
	assert_int_equal(a->state, b->state);
	assert_memory_equal(&a->value, &b->value, sizeof(a->value));
	assert_memory_equal(&a->limit, &b->limit, sizeof(a->limit));
	assert_true(a->since == b->since);
	assert_true(a->changed == b->changed);
	assert_string_equal(a->acked_by, b->acked_by);
	assert_true(a->acked_at == b->acked_at);
	assert_true(a->pending == b->pending);
	assert_int_equal(a->nspans, b->nspans);
	for (size_t i = 0; i < a->nspans; i++) {
		assert_true(a->spans[i].from == b->spans[i].from);
		assert_true(a->spans[i].to == b->spans[i].to);
	}
}

static void
round_trip(const struct alarm_record *rec)
{
	uint8_t buf[ALARM_RECORD_MAX];
	struct alarm_record back;
	const char *why = NULL;
	size_t len;

	len = alarm_record_encode(rec, buf);
	assert_true(len <= ALARM_RECORD_MAX);
	assert_int_equal(len, HEAD + 16 * rec->nspans + strlen(rec->id) + strlen(rec->acked_by));
	memset(&back, 0x5a, sizeof(back));
	if (alarm_record_decode(rec->id, buf, len, &back, &why) != 0)
		fail_msg("%s: record %s", rec->id, why);
	assert_same_record(rec, &back);
}

/* The format is these bytes on every machine: written out by hand from alarmrec.c. */
static void
encodes_the_documented_bytes(void **state)
{
	static const uint8_t want[] = {
		0x02, 0x00, 0x00, 0x00,				/* version 2 */
		0x03, 0x01, 0x02,				/* rate, critical, acked */
		0x03, 0x02, 0x01,				/* id_len, by_len, nspans */
		0xff, 0xff, 0xff, 0xff,				/* zone -1 */
		0x02, 0x01, 0x00, 0x00,				/* sensor 258 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f,	/* value 1.5 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0,	/* limit -2 */
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,	/* since */
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,	/* changed -1 */
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* acked_at 1 */
		0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,	/* pending -2 */
		0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* span from 10 */
		0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* span to 20 */
		'a', '-', 'b',					/* id */
		0xc3, 0xa9,					/* acked_by "é" */
	};
	struct alarm_record rec = { .id = "a-b", .kind = ALARM_RATE, .severity = ALARM_CRITICAL,
	    .zone = -1, .sensor = 258, .state = ALARM_ACKED, .value = 1.5, .limit = -2,
	    .since = 0x0102030405060708, .changed = -1, .acked_by = "\xc3\xa9", .acked_at = 1,
	    .pending = -2, .nspans = 1, .spans = { { 10, 20 } } };
	uint8_t buf[ALARM_RECORD_MAX];
	struct alarm_record back;

	(void)state;
	assert_int_equal(alarm_record_encode(&rec, buf), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(alarm_record_decode("a-b", want, sizeof(want), &back, NULL), 0);
	assert_same_record(&rec, &back);
}

static void
every_kind_state_and_severity_round_trips(void **state)
{
	struct alarm_record rec = { .zone = 0, .sensor = 0, .pending = -1 };

	(void)state;
	for (int k = 0; k < ALARM_KIND_COUNT; k++)
		for (int st = ALARM_CLEARED; st <= ALARM_ACKED; st++)
			for (int sv = ALARM_WARNING; sv <= ALARM_CRITICAL; sv++) {
				snprintf(rec.id, sizeof(rec.id), "p-%s-%s-%s", alarm_kind_name(k),
				    alarm_state_name(st), alarm_severity_name(sv));
				rec.kind = k;
				rec.state = st;
				rec.severity = sv;
				round_trip(&rec);
			}
}

static void
extremes_round_trip(void **state)
{
	static const double values[] = { NAN, -NAN, INFINITY, -INFINITY, -0.0, DBL_MAX, -DBL_MAX,
	    DBL_MIN, DBL_TRUE_MIN, -1e-300, 0.1 };
	struct alarm_record rec = { 0 };

	(void)state;
	/* The longest id and name, the most spans, the far ends of every integer. */
	memset(rec.id, 'x', ALARM_ID_MAX);
	rec.id[ALARM_ID_MAX] = '\0';
	memset(rec.acked_by, 'y', ALARM_BY_MAX);
	rec.acked_by[ALARM_BY_MAX] = '\0';
	rec.kind = ALARM_STORE_ERROR;
	rec.severity = ALARM_CRITICAL;
	rec.state = ALARM_ACKED;
	rec.zone = INT_MIN;
	rec.sensor = INT_MAX;
	rec.since = INT64_MIN;
	rec.changed = INT64_MAX;
	rec.acked_at = INT64_MIN + 1;
	rec.pending = -1;
	rec.nspans = ALARM_SPANS_MAX;
	for (size_t i = 0; i < ALARM_SPANS_MAX; i++) {
		rec.spans[i].from = i == 0 ? INT64_MIN : (int64_t)i * 1000;
		rec.spans[i].to = i == ALARM_SPANS_MAX - 1 ? INT64_MAX : (int64_t)i * 1000 + 999;
	}
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		rec.value = values[i];
		rec.limit = -values[i];
		round_trip(&rec);
	}
	{
		uint8_t buf[ALARM_RECORD_MAX];

		assert_int_equal(alarm_record_encode(&rec, buf), ALARM_RECORD_MAX);
	}

	/* The shortest: a one-byte id, no name, no spans; a gateway alarm. */
	memset(&rec, 0, sizeof(rec));
	strcpy(rec.id, "g");
	rec.zone = -1;
	rec.sensor = -1;
	rec.pending = -1;
	round_trip(&rec);
}

/* A full record to break: every field set, two spans, a name. */
static size_t
sample(uint8_t buf[ALARM_RECORD_MAX])
{
	struct alarm_record rec = { .id = "c1-probe-temperature-high", .kind = ALARM_HIGH,
	    .severity = ALARM_CRITICAL, .zone = 0, .sensor = 1, .state = ALARM_ACKED,
	    .value = 8.25, .limit = 8, .since = 1764400000000, .changed = 1764400060000,
	    .acked_by = "anna", .acked_at = 1764400090000, .pending = -1, .nspans = 2,
	    .spans = { { 1, 2 }, { 3, 4 } } };

	return alarm_record_encode(&rec, buf);
}

/* Refused with err, and *out not touched. */
static void
assert_refused(const char *id, const uint8_t *buf, size_t len, int err)
{
	struct alarm_record out, before;
	const char *why = NULL;

	memset(&out, 0xa5, sizeof(out));
	memcpy(&before, &out, sizeof(before));
	assert_int_equal(alarm_record_decode(id, buf, len, &out, &why), err);
	assert_non_null(why);
	assert_memory_equal(&out, &before, sizeof(out));
}

static void
other_versions_are_refused(void **state)
{
	static const uint32_t versions[] = { 0, 1, 3, 0x01000000, UINT32_MAX };
	uint8_t buf[ALARM_RECORD_MAX];
	size_t len = sample(buf);
	struct alarm_record out;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		buf[0] = (uint8_t)versions[i];
		buf[1] = (uint8_t)(versions[i] >> 8);
		buf[2] = (uint8_t)(versions[i] >> 16);
		buf[3] = (uint8_t)(versions[i] >> 24);
		assert_refused("c1-probe-temperature-high", buf, len, -EPROTONOSUPPORT);
	}
	/* The raw struct of schema 2 stores is named as such. */
	buf[0] = 1, buf[1] = buf[2] = buf[3] = 0;
	assert_int_equal(alarm_record_decode(NULL, buf, len, &out, &why), -EPROTONOSUPPORT);
	assert_non_null(strstr(why, "raw C struct"));
}

static void
records_cut_short_are_refused(void **state)
{
	uint8_t buf[ALARM_RECORD_MAX];
	size_t len = sample(buf);

	(void)state;
	for (size_t n = 0; n < len; n++)
		assert_refused("c1-probe-temperature-high", buf, n, -EBADMSG);
}

static void
bytes_past_the_end_are_refused(void **state)
{
	uint8_t buf[ALARM_RECORD_MAX + 1];
	size_t len = sample(buf);

	(void)state;
	buf[len] = 0;
	assert_refused("c1-probe-temperature-high", buf, len + 1, -EBADMSG);
	buf[len] = 'x';
	assert_refused("c1-probe-temperature-high", buf, len + 1, -EBADMSG);
}

static void
fields_out_of_range_are_refused(void **state)
{
	static const struct {
		size_t	 off;
		uint8_t	 v;
	} bad[] = {
		{ 4, ALARM_KIND_COUNT }, { 4, 0xff }, { 5, 2 }, { 6, 3 },
		{ 7, 0 }, { 7, ALARM_ID_MAX + 1 }, { 8, ALARM_BY_MAX + 1 },
		{ 9, ALARM_SPANS_MAX + 1 },
	};
	uint8_t buf[ALARM_RECORD_MAX], good[ALARM_RECORD_MAX];
	size_t len = sample(good);

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(buf, good, len);
		buf[bad[i].off] = bad[i].v;
		assert_refused(NULL, buf, len, -EBADMSG);
	}
	/* A NUL inside the id, and inside the name. */
	memcpy(buf, good, len);
	buf[HEAD + 2 * 16 + 3] = '\0';
	assert_refused(NULL, buf, len, -EBADMSG);
	memcpy(buf, good, len);
	buf[len - 1] = '\0';
	assert_refused(NULL, buf, len, -EBADMSG);
}

static void
another_alarms_record_is_refused(void **state)
{
	uint8_t buf[ALARM_RECORD_MAX];
	size_t len = sample(buf);
	struct alarm_record out;

	(void)state;
	assert_refused("c1-probe-temperature-low", buf, len, -EBADMSG);
	assert_refused("c1-probe-temperature-hig", buf, len, -EBADMSG);
	assert_refused("c1-probe-temperature-high-x", buf, len, -EBADMSG);
	assert_int_equal(alarm_record_decode("c1-probe-temperature-high", buf, len, &out, NULL), 0);
	assert_int_equal(alarm_record_decode(NULL, buf, len, &out, NULL), 0);
	assert_string_equal(out.id, "c1-probe-temperature-high");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(encodes_the_documented_bytes),
		cmocka_unit_test(every_kind_state_and_severity_round_trips),
		cmocka_unit_test(extremes_round_trip),
		cmocka_unit_test(other_versions_are_refused),
		cmocka_unit_test(records_cut_short_are_refused),
		cmocka_unit_test(bytes_past_the_end_are_refused),
		cmocka_unit_test(fields_out_of_range_are_refused),
		cmocka_unit_test(another_alarms_record_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
