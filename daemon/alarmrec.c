/*
 * The stored alarm record: struct alarm_record as bytes, for the store's
 * alarms.data column and nobody else.  One encoder, one decoder; the
 * daemon and coldgatectl both go through them.
 *
 * A record was once the raw C struct, which changes with the compiler and
 * the architecture (size_t, the alignment of int64_t and double, padding),
 * so a store moved between an amd64 build, an arm64 Pi and an armhf Pi was
 * misread.  This layout is the same everywhere.
 *
 * VERSION 2 FORMAT
 *
 * All integers are little-endian two's complement; a double is its IEEE-754
 * binary64 bit pattern stored as a little-endian u64 (NaN and infinities
 * round-trip bit for bit).  There is no padding and no alignment.  The
 * record is a 66-byte header, then the spans, then the two strings:
 *
 *	offset	size	field		meaning
 *	     0	   4	version		u32, 2 (ALARM_RECORD_VERSION)
 *	     4	   1	kind		u8, enum alarm_kind: 0 high, 1 low,
 *					2 excursion, 3 rate, 4 stale, 5 fault,
 *					6 door_open, 7 store_full,
 *					8 uplink_down, 9 store_error
 *	     5	   1	severity	u8, 0 warning, 1 critical
 *	     6	   1	state		u8, 0 cleared, 1 active, 2 acked
 *	     7	   1	id_len		u8, 1..ALARM_ID_MAX (64)
 *	     8	   1	by_len		u8, 0..ALARM_BY_MAX (64)
 *	     9	   1	nspans		u8, 0..ALARM_SPANS_MAX (32)
 *	    10	   4	zone		i32, zone index or -1
 *	    14	   4	sensor		i32, sensor index or -1
 *	    18	   8	value		f64
 *	    26	   8	limit		f64
 *	    34	   8	since		i64, epoch ms
 *	    42	   8	changed		i64, epoch ms
 *	    50	   8	acked_at	i64, epoch ms
 *	    58	   8	pending		i64, epoch ms or -1
 *	    66	16*n	spans		nspans pairs of i64 (from, to), epoch ms
 *	     .	id_len	id		bytes, no NUL
 *	     .	by_len	acked_by	bytes (UTF-8), no NUL
 *
 * The record is exactly 66 + 16 * nspans + id_len + by_len bytes long
 * (at most ALARM_RECORD_MAX).  See struct alarm_record in alarm.h for what
 * each field means.
 *
 * The version sits where the raw struct kept its uint32_t version word
 * (1 on every little-endian machine we run on), so a raw record is
 * recognised as version 1 rather than misread.  Version 1 has no portable
 * layout: only the store's 2 -> 3 schema migration reads it, with the old
 * struct, on the machine that wrote it, and writes version 2.  A new
 * layout gets a new version and a store migration in the same way, so a
 * coldgate meets only its own version.
 *
 * A reader refuses, and never partly fills in, a record that is of another
 * version, shorter or longer than its header says, has a count or enum out
 * of range, a NUL inside a string, or an id other than its row's.  The
 * caller logs the reason with the alarm's id and goes on without it: the
 * engine raises the alarm again if its condition still holds.
 */
#include "alarm.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#define REC_HEAD	66	/* bytes before the spans */
#define REC_SPAN	16	/* bytes per span */

/* The numbers above are the format; the enums must not drift from them. */
_Static_assert(ALARM_HIGH == 0 && ALARM_LOW == 1 && ALARM_EXCURSION == 2 && ALARM_RATE == 3 &&
    ALARM_STALE == 4 && ALARM_FAULT == 5 && ALARM_DOOR_OPEN == 6 && ALARM_STORE_FULL == 7 &&
    ALARM_UPLINK_DOWN == 8 && ALARM_STORE_ERROR == 9 && ALARM_KIND_COUNT == 10,
    "enum alarm_kind is part of the stored record format (alarmrec.c)");
_Static_assert(ALARM_WARNING == 0 && ALARM_CRITICAL == 1,
    "enum alarm_severity is part of the stored record format (alarmrec.c)");
_Static_assert(ALARM_CLEARED == 0 && ALARM_ACTIVE == 1 && ALARM_ACKED == 2,
    "enum alarm_state is part of the stored record format (alarmrec.c)");
_Static_assert(ALARM_ID_MAX <= 255 && ALARM_BY_MAX <= 255 && ALARM_SPANS_MAX <= 255,
    "lengths and counts are one byte each");
_Static_assert(ALARM_RECORD_MAX == REC_HEAD + REC_SPAN * ALARM_SPANS_MAX + ALARM_ID_MAX +
    ALARM_BY_MAX, "ALARM_RECORD_MAX is the longest record");
_Static_assert(sizeof(double) == sizeof(uint64_t), "a double is stored as its 64 bits");

static uint8_t *
put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++, v >>= 8)
		p[i] = (uint8_t)v;
	return p + bytes;
}

static uint64_t
get_le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;

	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint8_t *
put_f64(uint8_t *p, double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	return put_le(p, v, 8);
}

static double
get_f64(const uint8_t *p)
{
	uint64_t v = get_le(p, 8);
	double d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

size_t
alarm_record_encode(const struct alarm_record *rec, uint8_t buf[ALARM_RECORD_MAX])
{
	size_t idlen = strnlen(rec->id, sizeof(rec->id));
	size_t bylen = strnlen(rec->acked_by, sizeof(rec->acked_by));
	uint8_t *p = buf;

	/* The engine's own records; anything else is a bug in the caller. */
	assert(idlen >= 1 && idlen <= ALARM_ID_MAX && bylen <= ALARM_BY_MAX);
	assert(rec->nspans <= ALARM_SPANS_MAX);
	assert((unsigned)rec->kind < ALARM_KIND_COUNT && (unsigned)rec->severity <= ALARM_CRITICAL &&
	    (unsigned)rec->state <= ALARM_ACKED);

	p = put_le(p, ALARM_RECORD_VERSION, 4);
	p = put_le(p, (uint64_t)rec->kind, 1);
	p = put_le(p, (uint64_t)rec->severity, 1);
	p = put_le(p, (uint64_t)rec->state, 1);
	p = put_le(p, idlen, 1);
	p = put_le(p, bylen, 1);
	p = put_le(p, rec->nspans, 1);
	p = put_le(p, (uint32_t)rec->zone, 4);
	p = put_le(p, (uint32_t)rec->sensor, 4);
	p = put_f64(p, rec->value);
	p = put_f64(p, rec->limit);
	p = put_le(p, (uint64_t)rec->since, 8);
	p = put_le(p, (uint64_t)rec->changed, 8);
	p = put_le(p, (uint64_t)rec->acked_at, 8);
	p = put_le(p, (uint64_t)rec->pending, 8);
	assert(p - buf == REC_HEAD);
	for (size_t i = 0; i < rec->nspans; i++) {
		p = put_le(p, (uint64_t)rec->spans[i].from, 8);
		p = put_le(p, (uint64_t)rec->spans[i].to, 8);
	}
	memcpy(p, rec->id, idlen);
	p += idlen;
	memcpy(p, rec->acked_by, bylen);
	p += bylen;
	return (size_t)(p - buf);
}

static int
decode(const char *id, const uint8_t *p, size_t len, struct alarm_record *out, const char **why)
{
	size_t idlen, bylen, nspans, want;
	const uint8_t *q;

	if (len < 4) {
		*why = "is cut short";
		return -EBADMSG;
	}
	switch (get_le(p, 4)) {
	case ALARM_RECORD_VERSION:
		break;
	case 1:
		*why = "is a raw C struct (version 1) that only the store's migration reads";
		return -EPROTONOSUPPORT;
	default:
		*why = "is of an unknown version (a newer coldgate's, or garbled)";
		return -EPROTONOSUPPORT;
	}
	if (len < REC_HEAD) {
		*why = "is cut short";
		return -EBADMSG;
	}
	idlen = p[7];
	bylen = p[8];
	nspans = p[9];
	if (p[4] >= ALARM_KIND_COUNT || p[5] > ALARM_CRITICAL || p[6] > ALARM_ACKED ||
	    idlen < 1 || idlen > ALARM_ID_MAX || bylen > ALARM_BY_MAX ||
	    nspans > ALARM_SPANS_MAX) {
		*why = "has a field out of range";
		return -EBADMSG;
	}
	want = REC_HEAD + REC_SPAN * nspans + idlen + bylen;
	if (len != want) {
		*why = len < want ? "is cut short" : "has bytes past its end";
		return -EBADMSG;
	}
	q = p + REC_HEAD + REC_SPAN * nspans;
	if (memchr(q, '\0', idlen + bylen) != NULL) {
		*why = "has a NUL inside a string";
		return -EBADMSG;
	}
	if (id != NULL && (strlen(id) != idlen || memcmp(id, q, idlen) != 0)) {
		*why = "is another alarm's";
		return -EBADMSG;
	}

	memset(out, 0, sizeof(*out));
	out->kind = (enum alarm_kind)p[4];
	out->severity = (enum alarm_severity)p[5];
	out->state = (enum alarm_state)p[6];
	out->zone = (int32_t)(uint32_t)get_le(p + 10, 4);
	out->sensor = (int32_t)(uint32_t)get_le(p + 14, 4);
	out->value = get_f64(p + 18);
	out->limit = get_f64(p + 26);
	out->since = (int64_t)get_le(p + 34, 8);
	out->changed = (int64_t)get_le(p + 42, 8);
	out->acked_at = (int64_t)get_le(p + 50, 8);
	out->pending = (int64_t)get_le(p + 58, 8);
	out->nspans = nspans;
	for (size_t i = 0; i < nspans; i++) {
		out->spans[i].from = (int64_t)get_le(p + REC_HEAD + REC_SPAN * i, 8);
		out->spans[i].to = (int64_t)get_le(p + REC_HEAD + REC_SPAN * i + 8, 8);
	}
	memcpy(out->id, q, idlen);
	memcpy(out->acked_by, q + idlen, bylen);
	return 0;
}

int
alarm_record_decode(const char *id, const void *buf, size_t len, struct alarm_record *out,
    const char **why)
{
	const char *dummy;

	return decode(id, buf, len, out, why != NULL ? why : &dummy);
}
