/*
 * The alarm engine: each rule kind walked through time, the state machine
 * and acknowledgement, ids, export and import across a restart, the output
 * queries, and allocation failures (calloc is wrapped to fail on demand).
 */
// WRAP: calloc
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alarm.h"

#define T0		((int64_t)1764400000000)	/* 2025-11-29, epoch ms */
#define AT(s)		(T0 + (int64_t)((s) * 1000))	/* s seconds after T0 */
#define HOUR		3600
#define LOG_MAX		64

/* Zone 0 is a cold room with two probes and a door; zone 1 a growing house. */
static const struct alarm_sensor sensors[] = {
	{ "c1-t", 0 }, { "c1-t2", 0 }, { "c1-door", 0 }, { "h1-air", 1 },
};
#define NSENSORS	(sizeof(sensors) / sizeof(sensors[0]))

/* Fail the Nth calloc from now (1 = the next one); 0 never. */
static int calloc_fail_in;

void	*__real_calloc(size_t, size_t);
void	*__wrap_calloc(size_t, size_t);

void *
__wrap_calloc(size_t n, size_t size)
{
	if (calloc_fail_in > 0 && --calloc_fail_in == 0)
		return NULL;
	return __real_calloc(n, size);
}

/* Transitions as the callback saw them, with their strings copied. */
struct seen {
	char			 id[ALARM_ID_MAX + 1];
	char			 by[ALARM_BY_MAX + 1];
	struct alarm_transition	 tr;
};

struct log {
	size_t		 n;
	struct seen	 s[LOG_MAX];
};

static void
record(const struct alarm_transition *tr, void *arg)
{
	struct log *l = arg;
	struct seen *s;

	if (l->n++ >= LOG_MAX)
		return;
	s = &l->s[l->n - 1];
	s->tr = *tr;
	snprintf(s->id, sizeof(s->id), "%s", tr->id);
	s->tr.id = s->id;
	if (tr->acked_by != NULL) {
		snprintf(s->by, sizeof(s->by), "%s", tr->acked_by);
		s->tr.acked_by = s->by;
	}
}

/* Transition i of the log, checked for id, new and old state and time. */
static const struct alarm_transition *
expect(const struct log *l, size_t i, const char *id, enum alarm_state state,
    enum alarm_state old, int64_t t)
{
	assert_true(i < l->n && i < LOG_MAX);
	assert_string_equal(l->s[i].tr.id, id);
	assert_int_equal(l->s[i].tr.state, state);
	assert_int_equal(l->s[i].tr.old, old);
	assert_int_equal(l->s[i].tr.t, t);
	return &l->s[i].tr;
}

static struct alarm_engine *
engine(const struct alarm_rule *rules, size_t n, struct log *l)
{
	struct alarm_engine *e;

	memset(l, 0, sizeof(*l));
	assert_int_equal(alarm_new(&e, rules, n, sensors, NSENSORS, T0, record, l), 0);
	assert_non_null(e);
	return e;
}

static void
feed(struct alarm_engine *e, size_t s, enum quantity q, double v, int64_t t)
{
	assert_int_equal(alarm_reading(e, s, q, v, t), 0);
}

static bool
valid_level(const char *id)
{
	size_t n = strlen(id);

	if (n < 1 || n > 64)
		return false;
	return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static bool
ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), k = strlen(tail);

	return n >= k && strcmp(s + n - k, tail) == 0;
}

static const struct alarm_rule cold_high = {
	.kind = ALARM_HIGH, .severity = ALARM_CRITICAL, .zone = 0, .sensor = -1,
	.quantity = Q_TEMPERATURE, .has_high = true, .high = 4.0, .hysteresis = 0.5,
	.delay = 300,
};

static void
delay_ignores_short_excursions_and_fires_at_delay(void **state)
{
	struct alarm_engine *e;
	const struct alarm_transition *tr;
	struct log l;
	int t;

	(void)state;
	e = engine(&cold_high, 1, &l);
	feed(e, 0, Q_TEMPERATURE, 3.0, AT(0));
	/* Two excursions of 190 s, 400 s in all: each shorter than the delay. */
	for (t = 10; t <= 200; t += 10)
		feed(e, 0, Q_TEMPERATURE, 5.0, AT(t));
	feed(e, 0, Q_TEMPERATURE, 3.0, AT(210));
	for (t = 220; t <= 410; t += 10)
		feed(e, 0, Q_TEMPERATURE, 5.0, AT(t));
	feed(e, 0, Q_TEMPERATURE, 3.0, AT(420));
	alarm_tick(e, AT(900));
	assert_int_equal(l.n, 0);

	/* One reading beyond, then silence: the tick fires it at the delay. */
	feed(e, 0, Q_TEMPERATURE, 5.0, AT(1000));
	alarm_tick(e, AT(1000) + 299999);
	assert_int_equal(l.n, 0);
	alarm_tick(e, AT(1300));
	tr = expect(&l, 0, "c1-t-temperature-high", ALARM_ACTIVE, ALARM_CLEARED, AT(1300));
	assert_int_equal(tr->since, AT(1000));
	assert_int_equal(tr->kind, ALARM_HIGH);
	assert_int_equal(tr->severity, ALARM_CRITICAL);
	assert_int_equal(tr->zone, 0);
	assert_int_equal(tr->sensor, 0);
	assert_int_equal(tr->quantity, Q_TEMPERATURE);
	assert_true(tr->value == 5.0 && tr->limit == 4.0);
	assert_null(tr->acked_by);

	/* Readings every 10 s: the one at exactly the delay fires it. */
	for (t = 2000; t < 2300; t += 10)
		feed(e, 1, Q_TEMPERATURE, 5.0, AT(t));
	assert_int_equal(l.n, 1);
	feed(e, 1, Q_TEMPERATURE, 5.0, AT(2300));
	tr = expect(&l, 1, "c1-t2-temperature-high", ALARM_ACTIVE, ALARM_CLEARED, AT(2300));
	assert_int_equal(tr->since, AT(2000));
	assert_int_equal(l.n, 2);
	alarm_free(e);
}

static void
hysteresis_stops_flapping_and_clears_below_limit_minus_hysteresis(void **state)
{
	static const double noise[] = { 3.9, 4.1, 3.9, 4.2, 3.6, 4.05, 3.5, 4.3, 3.51 };
	struct alarm_rule r = cold_high;
	struct alarm_engine *e;
	const struct alarm_transition *tr;
	struct log l;
	size_t i;

	(void)state;
	r.delay = 0;
	e = engine(&r, 1, &l);
	for (i = 0; i < sizeof(noise) / sizeof(noise[0]); i++)
		feed(e, 0, Q_TEMPERATURE, noise[i], AT(i * 10));
	assert_int_equal(l.n, 1);
	tr = expect(&l, 0, "c1-t-temperature-high", ALARM_ACTIVE, ALARM_CLEARED, AT(10));
	assert_true(tr->value == 4.1);

	feed(e, 0, Q_TEMPERATURE, 3.4, AT(90));
	tr = expect(&l, 1, "c1-t-temperature-high", ALARM_CLEARED, ALARM_ACTIVE, AT(90));
	assert_int_equal(tr->since, AT(10));
	assert_true(tr->value == 3.4);

	/* Back above: the same id is active again, a new episode. */
	feed(e, 0, Q_TEMPERATURE, 3.9, AT(100));
	assert_int_equal(l.n, 2);
	feed(e, 0, Q_TEMPERATURE, 4.1, AT(110));
	tr = expect(&l, 2, "c1-t-temperature-high", ALARM_ACTIVE, ALARM_CLEARED, AT(110));
	assert_int_equal(tr->since, AT(110));
	assert_int_equal(l.n, 3);
	alarm_free(e);
}

static void
low_limit_fires_after_delay_and_clears_above_low_plus_hysteresis(void **state)
{
	static const struct alarm_rule r = {
		.kind = ALARM_LOW, .severity = ALARM_WARNING, .zone = 0, .sensor = -1,
		.quantity = Q_TEMPERATURE, .has_low = true, .low = 0.0, .hysteresis = 0.5,
		.delay = 60,
	};
	struct alarm_engine *e;
	const struct alarm_transition *tr;
	struct log l;

	(void)state;
	e = engine(&r, 1, &l);
	feed(e, 0, Q_TEMPERATURE, 9.0, AT(0));	/* a high value is not a low alarm */
	feed(e, 0, Q_TEMPERATURE, -1.0, AT(10));
	feed(e, 0, Q_TEMPERATURE, -1.0, AT(40));
	alarm_tick(e, AT(69));
	assert_int_equal(l.n, 0);
	alarm_tick(e, AT(70));
	tr = expect(&l, 0, "c1-t-temperature-low", ALARM_ACTIVE, ALARM_CLEARED, AT(70));
	assert_true(tr->value == -1.0 && tr->limit == 0.0);
	assert_int_equal(tr->since, AT(10));
	feed(e, 0, Q_TEMPERATURE, 0.3, AT(80));
	assert_int_equal(l.n, 1);
	feed(e, 0, Q_TEMPERATURE, 0.6, AT(90));
	expect(&l, 1, "c1-t-temperature-low", ALARM_CLEARED, ALARM_ACTIVE, AT(90));
	alarm_free(e);
}

static const struct alarm_rule cold_chain = {
	.kind = ALARM_EXCURSION, .severity = ALARM_CRITICAL, .zone = 0, .sensor = -1,
	.quantity = Q_TEMPERATURE, .has_high = true, .high = 8.0,
	.window = 24 * HOUR, .budget = 10 * HOUR,
};

/*
 * Five excursions of 2 h above 8 C: 4 h apart they add up to 10 h within
 * 24 h and fire; 6 h apart no 24 h window holds more than 8 h.
 */
static void
excursions_add_up_within_the_window_only(void **state)
{
	struct alarm_engine *e;
	const struct alarm_transition *tr;
	struct log l;
	int m;

	(void)state;
	e = engine(&cold_chain, 1, &l);
	for (m = 0; m <= 30 * 60; m++) {
		feed(e, 0, Q_TEMPERATURE, m % 240 < 120 && m < 5 * 240 ? 9.0 : 5.0, AT(m * 60));
		feed(e, 1, Q_TEMPERATURE, m % 360 < 120 && m < 5 * 360 ? 9.0 : 5.0, AT(m * 60));
		alarm_tick(e, AT(m * 60 + 30));
		if (m == 18 * 60 - 1)
			assert_int_equal(l.n, 0);
		if (m == 24 * 60 - 1)
			assert_int_equal(l.n, 1);
	}
	assert_int_equal(l.n, 2);
	/* The reading that ends the fifth excursion completes the 10 h. */
	tr = expect(&l, 0, "c1-t-temperature-excursion", ALARM_ACTIVE, ALARM_CLEARED,
	    AT(18 * HOUR));
	assert_true(tr->value == 10 * HOUR && tr->limit == 10 * HOUR);
	assert_int_equal(tr->since, AT(18 * HOUR));
	/* The first excursion starts to leave the window after 24 h. */
	tr = expect(&l, 1, "c1-t-temperature-excursion", ALARM_CLEARED, ALARM_ACTIVE,
	    AT(24 * HOUR + 30));
	assert_true(tr->value == 10 * HOUR - 30);
	alarm_free(e);
}

static double
spans_total(const struct alarm_record *rec)
{
	double sum = 0;

	for (size_t i = 0; i < rec->nspans; i++) {
		assert_true(rec->spans[i].from <= rec->spans[i].to);
		if (i > 0)
			assert_true(rec->spans[i - 1].to <= rec->spans[i].from);
		sum += (double)(rec->spans[i].to - rec->spans[i].from) / 1000;
	}
	return sum;
}

static void
excursion_memory_is_bounded_and_never_undercounts(void **state)
{
	struct alarm_rule r = cold_chain;
	struct alarm_engine *e;
	struct alarm_record rec;
	struct log l;
	double total;
	int i;

	(void)state;
	r.sensor = 0;
	r.window = r.budget = 10 * 24 * HOUR;
	e = engine(&r, 1, &l);
	/* 10 000 excursions of one second each, alternating with one inside. */
	for (i = 0; i < 20000; i++)
		feed(e, 0, Q_TEMPERATURE, i % 2 == 0 ? 9.0 : 5.0, AT(i));
	assert_int_equal(alarm_export(e, 0, AT(20000), &rec), 0);
	assert_int_equal(rec.nspans, ALARM_SPANS_MAX);
	total = spans_total(&rec);
	assert_true(total >= 10000 && total <= 20000);
	assert_int_equal(l.n, 0);
	/* Once the window has passed them, they are gone. */
	alarm_tick(e, AT(20000) + (int64_t)r.window * 1000 + 1000);
	assert_int_equal(alarm_export(e, 0, AT(20000), &rec), 0);
	assert_int_equal(rec.nspans, 0);
	alarm_free(e);
}

static void
rate_of_change_fires_on_a_fast_change_either_way(void **state)
{
	static const struct alarm_rule r = {
		.kind = ALARM_RATE, .severity = ALARM_WARNING, .zone = 1, .sensor = -1,
		.quantity = Q_TEMPERATURE, .rate = 0.5, .span = 600,
	};
	struct alarm_engine *e;
	const struct alarm_transition *tr;
	struct log l;
	double v = 20.0;
	int t;

	(void)state;
	e = engine(&r, 1, &l);
	/* Flat for 15 min, then 0.3 C/min for 20 min: under the rate. */
	for (t = 0; t < 2100; t += 30) {
		if (t >= 900)
			v = 20.0 + 0.3 * (t - 900) / 60;
		feed(e, 3, Q_TEMPERATURE, v, AT(t));
	}
	assert_int_equal(l.n, 0);
	/* 1 C/min for 10 min: over 10 min the mean passes 0.5 after ~3 min. */
	for (; t <= 2700; t += 30)
		feed(e, 3, Q_TEMPERATURE, v + 1.0 * (t - 2100) / 60, AT(t));
	v += 10.0;
	assert_int_equal(l.n, 1);
	tr = &l.s[0].tr;
	assert_string_equal(tr->id, "h1-air-temperature-rate");
	assert_int_equal(tr->state, ALARM_ACTIVE);
	assert_true(tr->t >= AT(2100 + 170) && tr->t <= AT(2100 + 240));
	assert_true(tr->value >= 0.5 && tr->value < 1.0 && tr->limit == 0.5);
	assert_int_equal(tr->zone, 1);
	/* Flat again: it clears once the last 10 min hold less than 5 C of change. */
	for (; t < 4000; t += 30)
		feed(e, 3, Q_TEMPERATURE, v, AT(t));
	assert_int_equal(l.n, 2);
	tr = &l.s[1].tr;
	assert_int_equal(tr->state, ALARM_CLEARED);
	assert_true(tr->t >= AT(2700 + 240) && tr->t <= AT(2700 + 420));
	/* Falling fast fires it too. */
	for (; t < 4600; t += 30)
		feed(e, 3, Q_TEMPERATURE, v - 1.0 * (t - 4000) / 60, AT(t));
	assert_int_equal(l.n, 3);
	assert_int_equal(l.s[2].tr.state, ALARM_ACTIVE);
	assert_true(l.s[2].tr.value <= -0.5);
	alarm_free(e);
}

static void
stale_fires_after_silence_and_clears_on_a_reading(void **state)
{
	static const struct alarm_rule r = {
		.kind = ALARM_STALE, .severity = ALARM_WARNING, .zone = 0, .sensor = -1,
		.stale_after = 120,
	};
	struct alarm_engine *e;
	const struct alarm_transition *tr;
	struct log l;

	(void)state;
	e = engine(&r, 1, &l);
	feed(e, 0, Q_TEMPERATURE, 2.0, AT(10));
	feed(e, 1, Q_TEMPERATURE, 2.0, AT(50));
	alarm_tick(e, AT(120) - 1);
	assert_int_equal(l.n, 0);
	/* The door contact never answered: stale since the engine started. */
	alarm_tick(e, AT(120));
	tr = expect(&l, 0, "c1-door-stale", ALARM_ACTIVE, ALARM_CLEARED, AT(120));
	assert_int_equal(tr->since, T0);
	assert_true(tr->value == 120 && tr->limit == 120);
	assert_int_equal(tr->quantity, Q_COUNT);
	alarm_tick(e, AT(130) - 1);
	assert_int_equal(l.n, 1);
	alarm_tick(e, AT(130));
	tr = expect(&l, 1, "c1-t-stale", ALARM_ACTIVE, ALARM_CLEARED, AT(130));
	assert_int_equal(tr->since, AT(10));
	alarm_tick(e, AT(170));
	expect(&l, 2, "c1-t2-stale", ALARM_ACTIVE, ALARM_CLEARED, AT(170));
	feed(e, 0, Q_TEMPERATURE, 2.0, AT(200));
	tr = expect(&l, 3, "c1-t-stale", ALARM_CLEARED, ALARM_ACTIVE, AT(200));
	assert_true(tr->value == 190);
	alarm_tick(e, AT(319));
	assert_int_equal(l.n, 4);
	alarm_tick(e, AT(320));
	tr = expect(&l, 4, "c1-t-stale", ALARM_ACTIVE, ALARM_CLEARED, AT(320));
	assert_int_equal(tr->since, AT(200));
	assert_int_equal(l.n, 5);	/* the other zone has no stale rule */
	alarm_free(e);
}

static void
fault_fires_after_n_failures_in_a_row_and_clears_on_good_read(void **state)
{
	static const struct alarm_rule r = {
		.kind = ALARM_FAULT, .severity = ALARM_WARNING, .zone = -1, .sensor = 0,
	};
	struct alarm_engine *e;
	const struct alarm_transition *tr;
	struct log l;

	(void)state;
	e = engine(&r, 1, &l);
	assert_int_equal(alarm_fault(e, 0, -ETIMEDOUT, AT(0)), 0);
	assert_int_equal(alarm_fault(e, 0, -EBADMSG, AT(10)), 0);
	assert_int_equal(alarm_fault(e, 0, 0, AT(20)), 0);	/* a good read ends the run */
	assert_int_equal(alarm_fault(e, 0, -ETIMEDOUT, AT(30)), 0);
	assert_int_equal(alarm_fault(e, 0, -ETIMEDOUT, AT(40)), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(alarm_fault(e, 0, -ETIMEDOUT, AT(50)), 0);
	tr = expect(&l, 0, "c1-t-fault", ALARM_ACTIVE, ALARM_CLEARED, AT(50));
	assert_int_equal(tr->since, AT(30));
	assert_true(tr->value == 3 && tr->limit == 3);
	assert_int_equal(alarm_fault(e, 0, -ETIMEDOUT, AT(60)), 0);
	assert_int_equal(l.n, 1);
	/* Another sensor's failures are its own (and it has no rule). */
	assert_int_equal(alarm_fault(e, 1, -ETIMEDOUT, AT(60)), 0);
	feed(e, 0, Q_TEMPERATURE, 2.0, AT(70));
	tr = expect(&l, 1, "c1-t-fault", ALARM_CLEARED, ALARM_ACTIVE, AT(70));
	assert_true(tr->value == 4);
	assert_int_equal(alarm_fault(e, 0, EIO, AT(80)), -EINVAL);
	assert_int_equal(alarm_fault(e, NSENSORS, -EIO, AT(80)), -EINVAL);
	assert_int_equal(l.n, 2);
	alarm_free(e);
}

static void
door_open_longer_than_max_fires_and_clears_on_close(void **state)
{
	static const struct alarm_rule r = {
		.kind = ALARM_DOOR_OPEN, .severity = ALARM_WARNING, .zone = 0, .sensor = -1,
		.door_open_max = 120,
	};
	struct alarm_engine *e;
	const struct alarm_transition *tr;
	struct alarm_record rec;
	struct log l;

	(void)state;
	e = engine(&r, 1, &l);
	feed(e, 0, Q_TEMPERATURE, 2.0, AT(0));
	feed(e, 2, Q_DOOR, 1, AT(0));
	feed(e, 2, Q_DOOR, 0, AT(60));
	alarm_tick(e, AT(200));
	assert_int_equal(l.n, 0);
	feed(e, 2, Q_DOOR, 1, AT(100));
	alarm_tick(e, AT(220) - 1);
	assert_int_equal(l.n, 0);
	alarm_tick(e, AT(220));
	tr = expect(&l, 0, "c1-door-door-open", ALARM_ACTIVE, ALARM_CLEARED, AT(220));
	assert_int_equal(tr->since, AT(100));
	assert_true(tr->value == 120 && tr->limit == 120);
	assert_int_equal(tr->quantity, Q_DOOR);
	feed(e, 2, Q_DOOR, 1, AT(230));
	assert_int_equal(l.n, 1);
	feed(e, 2, Q_DOOR, 0, AT(300));
	tr = expect(&l, 1, "c1-door-door-open", ALARM_CLEARED, ALARM_ACTIVE, AT(300));
	assert_true(tr->value == 200);
	/* Only the door contact got an instance, not the temperature probe. */
	assert_int_equal(alarm_export(e, 1, AT(300), &rec), -ENOENT);
	alarm_free(e);
}

static void
gateway_uplink_down_and_store_full(void **state)
{
	static const struct alarm_rule r[] = {
		{ .kind = ALARM_UPLINK_DOWN, .severity = ALARM_WARNING, .zone = -1, .sensor = -1,
		  .uplink_down_max = 300 },
		{ .kind = ALARM_STORE_FULL, .severity = ALARM_CRITICAL, .zone = -1, .sensor = -1,
		  .hysteresis = 0.05 },
	};
	struct alarm_engine *e;
	const struct alarm_transition *tr;
	struct log l;

	(void)state;
	e = engine(r, 2, &l);
	alarm_uplink(e, false, AT(0));
	alarm_uplink(e, false, AT(100));
	alarm_tick(e, AT(299));
	assert_int_equal(l.n, 0);
	alarm_tick(e, AT(300));
	tr = expect(&l, 0, "gateway-uplink-down", ALARM_ACTIVE, ALARM_CLEARED, AT(300));
	assert_int_equal(tr->since, AT(0));
	assert_int_equal(tr->zone, -1);
	assert_int_equal(tr->sensor, -1);
	assert_true(tr->value == 300 && tr->limit == 300);
	assert_true(alarm_zone_raised(e, ALARM_GATEWAY, ALARM_WARNING));
	assert_false(alarm_zone_raised(e, 0, ALARM_WARNING));
	alarm_uplink(e, true, AT(400));
	tr = expect(&l, 1, "gateway-uplink-down", ALARM_CLEARED, ALARM_ACTIVE, AT(400));
	assert_true(tr->value == 400);

	alarm_store_usage(e, 0.85, AT(500));
	assert_int_equal(l.n, 2);
	alarm_store_usage(e, 0.91, AT(510));
	tr = expect(&l, 2, "gateway-store-full", ALARM_ACTIVE, ALARM_CLEARED, AT(510));
	assert_true(tr->value == 0.91 && fabs(tr->limit - 0.9) < 1e-9);
	assert_int_equal(tr->severity, ALARM_CRITICAL);
	alarm_store_usage(e, 0.88, AT(520));
	assert_int_equal(l.n, 3);
	alarm_store_usage(e, 0.84, AT(530));
	expect(&l, 3, "gateway-store-full", ALARM_CLEARED, ALARM_ACTIVE, AT(530));
	assert_false(alarm_zone_raised(e, ALARM_GATEWAY, ALARM_WARNING));
	alarm_free(e);
}

static void
ack_records_who_and_follows_the_state_machine(void **state)
{
	struct alarm_rule r = cold_high;
	struct alarm_engine *e;
	const struct alarm_transition *tr;
	struct alarm_record rec;
	char name[128] = "";
	struct log l;
	int i;

	(void)state;
	r.delay = 0;
	e = engine(&r, 1, &l);
	feed(e, 0, Q_TEMPERATURE, 5.0, AT(0));
	assert_int_equal(alarm_ack(e, "c1-t-temperature-high", "李工", AT(10)), 0);
	tr = expect(&l, 1, "c1-t-temperature-high", ALARM_ACKED, ALARM_ACTIVE, AT(10));
	assert_string_equal(tr->acked_by, "李工");
	assert_int_equal(tr->acked_at, AT(10));
	assert_int_equal(tr->since, AT(0));
	assert_int_equal(alarm_ack(e, "c1-t-temperature-high", "wang", AT(11)), -EALREADY);
	assert_int_equal(alarm_get(e, "c1-t-temperature-high", AT(11), &rec), 0);
	assert_int_equal(rec.state, ALARM_ACKED);
	assert_string_equal(rec.acked_by, "李工");
	assert_int_equal(rec.acked_at, AT(10));
	assert_int_equal(rec.changed, AT(10));
	assert_int_equal(alarm_get(e, "no-such-alarm", AT(11), &rec), -ENOENT);
	assert_int_equal(alarm_ack(e, "no-such-alarm", "wang", AT(11)), -ENOENT);
	assert_int_equal(alarm_ack(e, "c1-t2-temperature-high", "wang", AT(11)), -ENOENT);
	assert_int_equal(l.n, 2);
	/* Acked stays acked while the condition holds. */
	feed(e, 0, Q_TEMPERATURE, 6.0, AT(20));
	assert_int_equal(l.n, 2);
	feed(e, 0, Q_TEMPERATURE, 3.0, AT(30));
	tr = expect(&l, 2, "c1-t-temperature-high", ALARM_CLEARED, ALARM_ACKED, AT(30));
	assert_string_equal(tr->acked_by, "李工");
	assert_int_equal(alarm_ack(e, "c1-t-temperature-high", "wang", AT(31)), -ESRCH);
	/* A new episode starts unacknowledged. */
	feed(e, 0, Q_TEMPERATURE, 5.0, AT(40));
	tr = expect(&l, 3, "c1-t-temperature-high", ALARM_ACTIVE, ALARM_CLEARED, AT(40));
	assert_null(tr->acked_by);
	assert_int_equal(tr->acked_at, 0);
	/* A long name is cut on a character boundary: 21 three-byte characters. */
	for (i = 0; i < 30; i++)
		strcat(name, "李");
	assert_int_equal(alarm_ack(e, "c1-t-temperature-high", name, AT(50)), 0);
	tr = expect(&l, 4, "c1-t-temperature-high", ALARM_ACKED, ALARM_ACTIVE, AT(50));
	assert_int_equal(strlen(tr->acked_by), 63);
	assert_memory_equal(tr->acked_by, name, 63);
	alarm_free(e);
}

static void
zone_rule_makes_one_alarm_per_sensor_and_sensor_rule_overrides(void **state)
{
	struct alarm_rule r[2] = { cold_high, cold_high };
	struct alarm_engine *e;
	const struct alarm_transition *tr;
	struct alarm_record rec;
	struct log l;

	(void)state;
	r[0].delay = 0;
	e = engine(r, 1, &l);
	feed(e, 0, Q_TEMPERATURE, 5.0, AT(0));
	feed(e, 1, Q_TEMPERATURE, 5.0, AT(0));
	feed(e, 3, Q_TEMPERATURE, 5.0, AT(0));	/* zone 1: not covered */
	feed(e, 2, Q_DOOR, 1, AT(0));		/* zone 0, but no temperature */
	assert_int_equal(l.n, 2);
	tr = expect(&l, 0, "c1-t-temperature-high", ALARM_ACTIVE, ALARM_CLEARED, AT(0));
	assert_int_equal(tr->sensor, 0);
	tr = expect(&l, 1, "c1-t2-temperature-high", ALARM_ACTIVE, ALARM_CLEARED, AT(0));
	assert_int_equal(tr->sensor, 1);
	assert_int_equal(alarm_export(e, 2, AT(0), &rec), -ENOENT);
	/* Each clears on its own. */
	feed(e, 1, Q_TEMPERATURE, 2.0, AT(10));
	expect(&l, 2, "c1-t2-temperature-high", ALARM_CLEARED, ALARM_ACTIVE, AT(10));
	assert_int_equal(l.n, 3);
	alarm_free(e);

	/* Probe 2 sits by the door and has its own, higher limit. */
	r[1].delay = 0;
	r[1].sensor = 1;
	r[1].high = 10.0;
	e = engine(r, 2, &l);
	feed(e, 1, Q_TEMPERATURE, 5.0, AT(0));
	assert_int_equal(l.n, 0);
	feed(e, 1, Q_TEMPERATURE, 11.0, AT(10));
	tr = expect(&l, 0, "c1-t2-temperature-high", ALARM_ACTIVE, ALARM_CLEARED, AT(10));
	assert_true(tr->limit == 10.0);
	assert_int_equal(l.n, 1);
	feed(e, 0, Q_TEMPERATURE, 5.0, AT(20));
	expect(&l, 1, "c1-t-temperature-high", ALARM_ACTIVE, ALARM_CLEARED, AT(20));
	alarm_free(e);

	/* The order of the rules does not matter. */
	r[0] = r[1];
	r[1] = cold_high;
	r[1].delay = 0;
	e = engine(r, 2, &l);
	feed(e, 1, Q_TEMPERATURE, 5.0, AT(0));
	feed(e, 0, Q_TEMPERATURE, 5.0, AT(0));
	assert_int_equal(l.n, 1);
	expect(&l, 0, "c1-t-temperature-high", ALARM_ACTIVE, ALARM_CLEARED, AT(0));
	alarm_free(e);
}

static void
rules_and_inputs_out_of_range_are_refused(void **state)
{
	struct alarm_rule r[2] = { cold_high, cold_high };
	struct alarm_engine *e = (struct alarm_engine *)&e;

	(void)state;
	r[0].has_high = false;
	assert_int_equal(alarm_new(&e, r, 1, sensors, NSENSORS, T0, NULL, NULL), -EINVAL);
	assert_null(e);
	r[0] = cold_high;
	r[0].sensor = NSENSORS;
	assert_int_equal(alarm_new(&e, r, 1, sensors, NSENSORS, T0, NULL, NULL), -EINVAL);
	r[0] = cold_chain;
	r[0].budget = r[0].window + 1;
	assert_int_equal(alarm_new(&e, r, 1, sensors, NSENSORS, T0, NULL, NULL), -EINVAL);
	r[0] = cold_high;
	r[0].delay = -1;
	assert_int_equal(alarm_new(&e, r, 1, sensors, NSENSORS, T0, NULL, NULL), -EINVAL);
	/* Two zone rules that would make the same id. */
	r[0] = cold_high;
	assert_int_equal(alarm_new(&e, r, 2, sensors, NSENSORS, T0, NULL, NULL), -EEXIST);
	assert_null(e);
	/* The same kind on another quantity is another id. */
	r[1].quantity = Q_HUMIDITY;
	assert_int_equal(alarm_new(&e, r, 2, sensors, NSENSORS, T0, NULL, NULL), 0);
	assert_int_equal(alarm_reading(e, NSENSORS, Q_TEMPERATURE, 1, AT(0)), -EINVAL);
	assert_int_equal(alarm_reading(e, 0, Q_COUNT, 1, AT(0)), -EINVAL);
	assert_int_equal(alarm_reading(e, 0, Q_TEMPERATURE, NAN, AT(0)), -EINVAL);
	alarm_free(e);
	alarm_free(NULL);
	/* No rules, no sensors: an engine that does nothing. */
	assert_int_equal(alarm_new(&e, NULL, 0, NULL, 0, T0, NULL, NULL), 0);
	alarm_tick(e, AT(10));
	assert_false(alarm_zone_raised(e, ALARM_ANY_ZONE, ALARM_WARNING));
	alarm_free(e);
}

/*
 * A restart: export from one engine, import into a fresh one with the same
 * rules.  An alarm that still holds gives no second transition, one whose
 * condition goes clears as usual, and a running delay timer carries on.
 */
static void
export_import_neither_forgets_nor_repeats(void **state)
{
	struct alarm_record recs[4], bad;
	struct alarm_engine *e;
	const struct alarm_transition *tr;
	struct log l;
	size_t n;

	(void)state;
	e = engine(&cold_high, 1, &l);
	feed(e, 0, Q_TEMPERATURE, 5.0, AT(0));
	feed(e, 1, Q_TEMPERATURE, 5.0, AT(200));	/* pending since 200 */
	alarm_tick(e, AT(300));
	assert_int_equal(alarm_ack(e, "c1-t-temperature-high", "ops", AT(310)), 0);
	assert_int_equal(l.n, 2);
	for (n = 0; alarm_export(e, n, AT(400), &recs[n]) == 0; n++)
		assert_true(n < 4);
	assert_int_equal(n, 2);
	assert_string_equal(recs[0].id, "c1-t-temperature-high");
	assert_int_equal(recs[0].state, ALARM_ACKED);
	assert_int_equal(recs[0].since, AT(0));
	assert_string_equal(recs[0].acked_by, "ops");
	assert_int_equal(recs[0].pending, -1);
	assert_int_equal(recs[1].state, ALARM_CLEARED);
	assert_int_equal(recs[1].pending, AT(200));
	alarm_free(e);

	e = engine(&cold_high, 1, &l);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(alarm_import(e, &recs[i]), 0);
	bad = recs[0];
	strcpy(bad.id, "c1-t-humidity-high");
	assert_int_equal(alarm_import(e, &bad), -ENOENT);
	bad = recs[0];
	bad.state = 7;
	assert_int_equal(alarm_import(e, &bad), -EINVAL);
	assert_true(alarm_zone_raised(e, 0, ALARM_WARNING));
	assert_false(alarm_zone_unacked(e, 0, ALARM_WARNING));
	/* No input yet: the restored timer waits for one. */
	alarm_tick(e, AT(500));
	feed(e, 0, Q_TEMPERATURE, 5.0, AT(510));
	feed(e, 0, Q_TEMPERATURE, 3.8, AT(520));
	assert_int_equal(l.n, 0);
	assert_int_equal(alarm_ack(e, "c1-t-temperature-high", "ops", AT(525)), -EALREADY);
	feed(e, 1, Q_TEMPERATURE, 5.0, AT(530));
	tr = expect(&l, 0, "c1-t2-temperature-high", ALARM_ACTIVE, ALARM_CLEARED, AT(530));
	assert_int_equal(tr->since, AT(200));
	feed(e, 0, Q_TEMPERATURE, 3.0, AT(540));
	tr = expect(&l, 1, "c1-t-temperature-high", ALARM_CLEARED, ALARM_ACKED, AT(540));
	assert_int_equal(tr->since, AT(0));
	assert_string_equal(tr->acked_by, "ops");
	assert_int_equal(tr->acked_at, AT(310));
	assert_int_equal(l.n, 2);
	alarm_free(e);
}

static void
import_keeps_the_excursion_time_of_the_window(void **state)
{
	struct alarm_rule r = cold_chain;
	struct alarm_record rec;
	struct alarm_engine *e;
	struct log l;
	int m;

	(void)state;
	r.sensor = 0;
	e = engine(&r, 1, &l);
	for (m = 0; m <= 6 * 60; m++)
		feed(e, 0, Q_TEMPERATURE, 9.0, AT(m * 60));
	assert_int_equal(alarm_export(e, 0, AT(6 * HOUR + 30), &rec), 0);
	assert_int_equal(rec.nspans, 1);
	assert_int_equal(rec.spans[0].from, AT(0));
	assert_int_equal(rec.spans[0].to, AT(6 * HOUR + 30));
	alarm_free(e);

	/* An hour later, 4 more hours above make 10 h: the downtime is not counted. */
	e = engine(&r, 1, &l);
	assert_int_equal(alarm_import(e, &rec), 0);
	for (m = 7 * 60; m < 11 * 60; m++)
		feed(e, 0, Q_TEMPERATURE, 9.0, AT(m * 60));
	alarm_tick(e, AT(11 * HOUR) - 30001);
	assert_int_equal(l.n, 0);
	alarm_tick(e, AT(11 * HOUR) - 30000);
	expect(&l, 0, "c1-t-temperature-excursion", ALARM_ACTIVE, ALARM_CLEARED,
	    AT(11 * HOUR) - 30000);
	alarm_free(e);
}

static void
ids_are_topic_levels_deterministic_and_short(void **state)
{
	static const struct alarm_rule r[] = {
		{ .kind = ALARM_EXCURSION, .zone = 0, .sensor = -1, .quantity = Q_TEMPERATURE,
		  .has_high = true, .high = 8, .window = 60, .budget = 60 },
		{ .kind = ALARM_STALE, .zone = 0, .sensor = -1, .stale_after = 60 },
	};
	struct alarm_sensor s[4] = {
		{ "c1-t", 0 }, { NULL, 0 }, { NULL, 0 }, { "c1.t/x", 0 },
	};
	char long1[65], long2[65], ids[2][8][ALARM_ID_MAX + 1];
	struct alarm_engine *e;
	struct alarm_record rec;
	size_t i, j, n = 0;

	(void)state;
	memset(long1, 'a', 64);
	long1[64] = '\0';
	memcpy(long1, "mushroom-house-north-wing-", 26);
	strcpy(long2, long1);
	long2[63] = 'b';
	s[1].id = long1;
	s[2].id = long2;
	for (int pass = 0; pass < 2; pass++) {
		assert_int_equal(alarm_new(&e, r, 2, s, 4, T0, NULL, NULL), 0);
		for (i = 0; i < 4; i++)
			assert_int_equal(alarm_reading(e, i, Q_TEMPERATURE, 9, AT(0)), 0);
		for (n = 0; alarm_export(e, n, AT(0), &rec) == 0; n++) {
			assert_true(n < 8);
			assert_true(valid_level(rec.id));
			strcpy(ids[pass][n], rec.id);
		}
		alarm_free(e);
	}
	assert_int_equal(n, 8);
	for (i = 0; i < n; i++) {
		assert_string_equal(ids[0][i], ids[1][i]);
		for (j = i + 1; j < n; j++)
			assert_string_not_equal(ids[0][i], ids[0][j]);
	}
	/* Stale instances exist from the start, so they come first. */
	assert_string_equal(ids[0][0], "c1-t-stale");
	assert_string_equal(ids[0][4], "c1-t-temperature-excursion");
	for (i = 0; i < n; i++) {
		assert_true(ends_with(ids[0][i], i < 4 ? "-stale" : "-temperature-excursion"));
		if (i % 4 == 1 || i % 4 == 2) {
			assert_int_equal(strlen(ids[0][i]), 64);
			assert_memory_equal(ids[0][i], long1, 20);
		}
	}
	assert_memory_equal(ids[0][3], "c1_t_x_", 7);
}

static void
output_queries_follow_state_zone_and_severity(void **state)
{
	struct alarm_rule r[2] = { cold_high, cold_high };
	struct alarm_engine *e;
	struct log l;

	(void)state;
	r[0].delay = r[1].delay = 0;
	r[1].zone = 1;
	r[1].severity = ALARM_WARNING;
	e = engine(r, 2, &l);
	assert_false(alarm_zone_raised(e, ALARM_ANY_ZONE, ALARM_WARNING));
	assert_false(alarm_zone_unacked(e, ALARM_ANY_ZONE, ALARM_WARNING));

	feed(e, 3, Q_TEMPERATURE, 5.0, AT(0));
	assert_true(alarm_zone_unacked(e, 1, ALARM_WARNING));
	assert_false(alarm_zone_unacked(e, 1, ALARM_CRITICAL));
	assert_true(alarm_zone_raised(e, 1, ALARM_WARNING));
	assert_false(alarm_zone_raised(e, 0, ALARM_WARNING));
	assert_false(alarm_zone_raised(e, ALARM_GATEWAY, ALARM_WARNING));
	assert_true(alarm_zone_unacked(e, ALARM_ANY_ZONE, ALARM_WARNING));

	/* Acked: the buzzer stops, the lamp stays. */
	assert_int_equal(alarm_ack(e, "h1-air-temperature-high", "ops", AT(10)), 0);
	assert_false(alarm_zone_unacked(e, 1, ALARM_WARNING));
	assert_true(alarm_zone_raised(e, 1, ALARM_WARNING));

	feed(e, 0, Q_TEMPERATURE, 5.0, AT(20));
	assert_true(alarm_zone_unacked(e, 0, ALARM_CRITICAL));
	assert_false(alarm_zone_unacked(e, 1, ALARM_WARNING));

	feed(e, 3, Q_TEMPERATURE, 2.0, AT(30));
	assert_false(alarm_zone_raised(e, 1, ALARM_WARNING));
	assert_true(alarm_zone_raised(e, ALARM_ANY_ZONE, ALARM_WARNING));
	feed(e, 0, Q_TEMPERATURE, 2.0, AT(40));
	assert_false(alarm_zone_raised(e, ALARM_ANY_ZONE, ALARM_WARNING));
	alarm_free(e);
}

static void
clock_step_keeps_durations(void **state)
{
	struct alarm_engine *e;
	const struct alarm_transition *tr;
	struct log l;

	(void)state;
	e = engine(&cold_high, 1, &l);
	feed(e, 0, Q_TEMPERATURE, 5.0, AT(0));
	/* NTP moves the clock an hour on: the timer still needs its 300 s. */
	alarm_clock_step(e, (int64_t)HOUR * 1000);
	feed(e, 0, Q_TEMPERATURE, 5.0, AT(HOUR + 100));
	alarm_tick(e, AT(HOUR + 299));
	assert_int_equal(l.n, 0);
	alarm_tick(e, AT(HOUR + 300));
	tr = expect(&l, 0, "c1-t-temperature-high", ALARM_ACTIVE, ALARM_CLEARED, AT(HOUR + 300));
	assert_int_equal(tr->since, AT(HOUR));
	/* Stepped back half an hour, a raised alarm keeps its start in step. */
	alarm_clock_step(e, -(int64_t)HOUR * 500);
	feed(e, 0, Q_TEMPERATURE, 3.0, AT(HOUR / 2 + 400));
	tr = expect(&l, 1, "c1-t-temperature-high", ALARM_CLEARED, ALARM_ACTIVE,
	    AT(HOUR / 2 + 400));
	assert_int_equal(tr->since, AT(HOUR / 2));
	alarm_free(e);
}

static void
allocation_failures_are_reported_and_leak_nothing(void **state)
{
	static const struct alarm_rule r[] = {
		{ .kind = ALARM_EXCURSION, .zone = 0, .sensor = -1, .quantity = Q_TEMPERATURE,
		  .has_high = true, .high = 8, .window = 60, .budget = 60 },
		{ .kind = ALARM_STALE, .zone = 0, .sensor = -1, .stale_after = 60 },
		{ .kind = ALARM_UPLINK_DOWN, .zone = -1, .sensor = -1, .uplink_down_max = 1 },
	};
	struct alarm_engine *e;
	struct alarm_record rec;
	struct log l = { 0 };
	int k, rc;

	(void)state;
	for (k = 1;; k++) {
		calloc_fail_in = k;
		rc = alarm_new(&e, r, 3, sensors, NSENSORS, T0, record, &l);
		if (rc == 0)
			break;
		assert_int_equal(rc, -ENOMEM);
		assert_null(e);
	}
	calloc_fail_in = 0;
	assert_true(k > 10);	/* it did go through every allocation */

	/* A new instance that cannot be made: reported, and tried again later. */
	calloc_fail_in = 1;
	assert_int_equal(alarm_reading(e, 0, Q_TEMPERATURE, 9, AT(0)), -ENOMEM);
	calloc_fail_in = 2;
	assert_int_equal(alarm_reading(e, 0, Q_TEMPERATURE, 9, AT(1)), -ENOMEM);
	calloc_fail_in = 0;
	/* Three stale instances and the uplink's, nothing half made. */
	assert_int_equal(alarm_export(e, 4, AT(1), &rec), -ENOENT);
	assert_int_equal(alarm_reading(e, 0, Q_TEMPERATURE, 9, AT(2)), 0);
	assert_int_equal(alarm_export(e, 4, AT(2), &rec), 0);
	assert_string_equal(rec.id, "c1-t-temperature-excursion");
	alarm_free(e);
}

/* Tiers of one limit: a tag gives the second one an id of its own. */
static void
tagged_rules_are_separate_alarms(void **state)
{
	struct alarm_rule r[2] = {
		{ .kind = ALARM_HIGH, .severity = ALARM_WARNING, .zone = 0, .sensor = -1,
		    .quantity = Q_TEMPERATURE, .has_high = true, .high = 4.0 },
		{ .kind = ALARM_HIGH, .severity = ALARM_CRITICAL, .zone = 0, .sensor = -1,
		    .quantity = Q_TEMPERATURE, .has_high = true, .high = 8.0, .tag = "critical" },
	};
	struct alarm_sensor one[] = { { "c1-t", 0 } };
	struct alarm_engine *e;
	struct alarm_record rec;

	(void)state;
	assert_int_equal(alarm_new(&e, r, 2, one, 1, 0, NULL, NULL), 0);
	assert_int_equal(alarm_reading(e, 0, Q_TEMPERATURE, 9.0, 1000), 0);
	assert_int_equal(alarm_get(e, "c1-t-temperature-high", 1000, &rec), 0);
	assert_int_equal(rec.state, ALARM_ACTIVE);
	assert_int_equal(alarm_get(e, "c1-t-temperature-high-critical", 1000, &rec), 0);
	assert_int_equal(rec.state, ALARM_ACTIVE);
	assert_int_equal(rec.severity, ALARM_CRITICAL);
	alarm_free(e);

	/* Same tag, same id: refused.  A tag must be plain lower-case letters. */
	strcpy(r[0].tag, "critical");
	assert_int_equal(alarm_new(&e, r, 2, one, 1, 0, NULL, NULL), -EEXIST);
	strcpy(r[0].tag, "Crit-1");
	assert_int_equal(alarm_new(&e, r, 2, one, 1, 0, NULL, NULL), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tagged_rules_are_separate_alarms),
		cmocka_unit_test(delay_ignores_short_excursions_and_fires_at_delay),
		cmocka_unit_test(hysteresis_stops_flapping_and_clears_below_limit_minus_hysteresis),
		cmocka_unit_test(low_limit_fires_after_delay_and_clears_above_low_plus_hysteresis),
		cmocka_unit_test(excursions_add_up_within_the_window_only),
		cmocka_unit_test(excursion_memory_is_bounded_and_never_undercounts),
		cmocka_unit_test(rate_of_change_fires_on_a_fast_change_either_way),
		cmocka_unit_test(stale_fires_after_silence_and_clears_on_a_reading),
		cmocka_unit_test(fault_fires_after_n_failures_in_a_row_and_clears_on_good_read),
		cmocka_unit_test(door_open_longer_than_max_fires_and_clears_on_close),
		cmocka_unit_test(gateway_uplink_down_and_store_full),
		cmocka_unit_test(ack_records_who_and_follows_the_state_machine),
		cmocka_unit_test(zone_rule_makes_one_alarm_per_sensor_and_sensor_rule_overrides),
		cmocka_unit_test(rules_and_inputs_out_of_range_are_refused),
		cmocka_unit_test(export_import_neither_forgets_nor_repeats),
		cmocka_unit_test(import_keeps_the_excursion_time_of_the_window),
		cmocka_unit_test(ids_are_topic_levels_deterministic_and_short),
		cmocka_unit_test(output_queries_follow_state_zone_and_severity),
		cmocka_unit_test(clock_step_keeps_durations),
		cmocka_unit_test(allocation_failures_are_reported_and_leak_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
