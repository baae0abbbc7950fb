/*
 * The verdicts on one sensor's readings (readings.c): quality, the spike
 * filter, door edges, fault counting and the retry back-off.  Until the
 * split these ran only inside the daemon and were tested only through
 * timed integration scripts.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "readings.h"

static struct readings_track
fresh(void)
{
	struct readings_track t;

	readings_track_init(&t);
	return t;
}

static void
implausible_values_are_refused_as_range(void **state)
{
	struct readings_track t = fresh();

	(void)state;
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, 126.0), QUALITY_RANGE);
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, -55.5), QUALITY_RANGE);
	assert_int_equal(readings_quality(&t, true, Q_HUMIDITY, 100.5), QUALITY_RANGE);
	assert_int_equal(readings_quality(&t, true, Q_CO2, -1), QUALITY_RANGE);
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, NAN), QUALITY_RANGE);
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, -55.0), QUALITY_OK);
	/* The quantities it gave are remembered, refused ones too (for failed-read rows). */
	assert_int_equal(t.qmask, (1u << Q_TEMPERATURE) | (1u << Q_HUMIDITY) | (1u << Q_CO2));
}

static void
one_jump_is_held_until_a_second_read_confirms_it(void **state)
{
	struct readings_track t = fresh();

	(void)state;
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, 2.0), QUALITY_OK);
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, 5.0), QUALITY_OK);
	/* 10 C is the step: 30 C after 5 C is a spike ... */
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, 30.0), QUALITY_SPIKE);
	/* ... and a second read near it confirms the jump. */
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, 31.0), QUALITY_OK);
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, 30.5), QUALITY_OK);
}

static void
a_lone_garbled_value_never_passes(void **state)
{
	struct readings_track t = fresh();

	(void)state;
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, 4.0), QUALITY_OK);
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, 85.0), QUALITY_SPIKE);
	/* Back to normal: 4.2 is close to the last accepted 4.0, not to the suspect. */
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, 4.2), QUALITY_OK);
	/* Two garbled values far apart do not confirm each other. */
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, 85.0), QUALITY_SPIKE);
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, -40.0), QUALITY_SPIKE);
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, 4.1), QUALITY_OK);
}

static void
the_filter_is_per_quantity_and_can_be_off(void **state)
{
	struct readings_track t = fresh(), off = fresh();

	(void)state;
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, 4.0), QUALITY_OK);
	/* The first humidity value has nothing to jump from. */
	assert_int_equal(readings_quality(&t, true, Q_HUMIDITY, 90.0), QUALITY_OK);
	assert_int_equal(readings_quality(&t, true, Q_HUMIDITY, 20.0), QUALITY_SPIKE);
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, 5.0), QUALITY_OK);
	/* Doors have no step: every edge is real. */
	assert_int_equal(readings_quality(&t, true, Q_DOOR, 0), QUALITY_OK);
	assert_int_equal(readings_quality(&t, true, Q_DOOR, 1), QUALITY_OK);
	/* spike_filter = false: any plausible value passes. */
	assert_int_equal(readings_quality(&off, false, Q_TEMPERATURE, 4.0), QUALITY_OK);
	assert_int_equal(readings_quality(&off, false, Q_TEMPERATURE, 90.0), QUALITY_OK);
}

static void
a_failed_read_makes_the_filter_forget(void **state)
{
	struct readings_track t = fresh();

	(void)state;
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, 4.0), QUALITY_OK);
	readings_failed(&t);
	/* After a gap the last value says nothing about the next one. */
	assert_int_equal(readings_quality(&t, true, Q_TEMPERATURE, 40.0), QUALITY_OK);
}

static void
doors_give_edges_not_levels(void **state)
{
	struct readings_track t = fresh();

	(void)state;
	/* The first value only says where the door is. */
	assert_int_equal(readings_door(&t, 1), DOOR_SAME);
	assert_int_equal(readings_door(&t, 1), DOOR_SAME);
	assert_int_equal(readings_door(&t, 0), DOOR_CLOSED);
	assert_int_equal(readings_door(&t, 0.2), DOOR_SAME);
	assert_int_equal(readings_door(&t, 0.5), DOOR_OPENED);
	assert_int_equal(readings_door(&t, 0.49), DOOR_CLOSED);
}

static void
the_third_failure_in_a_row_is_a_fault_said_once(void **state)
{
	struct readings_track t = fresh();

	(void)state;
	assert_false(readings_failed(&t));
	assert_false(readings_failed(&t));
	assert_true(readings_failed(&t));
	assert_true(t.faulted);
	for (int i = 0; i < 10; i++)
		assert_false(readings_failed(&t));
	/* The first good read recovers it, once. */
	assert_true(readings_ok(&t));
	assert_false(readings_ok(&t));
	assert_int_equal(t.fails, 0);
	/* Two failures and a good read: no fault, and the count starts again. */
	assert_false(readings_failed(&t));
	assert_false(readings_failed(&t));
	assert_false(readings_ok(&t));
	assert_false(readings_failed(&t));
	assert_false(readings_failed(&t));
	assert_true(readings_failed(&t));
}

static int64_t
delay_after(int fails, double interval_s, double min_interval_s)
{
	struct readings_track t = fresh();

	t.fails = fails;
	return readings_retry_delay(&t, interval_s, min_interval_s);
}

static void
retries_come_sooner_then_back_off(void **state)
{
	(void)state;
	/* A sensor read every minute: 1, 2, 4 ... s, capped at 30 s. */
	assert_int_equal(delay_after(1, 60, 0), 1000);
	assert_int_equal(delay_after(2, 60, 0), 2000);
	assert_int_equal(delay_after(3, 60, 0), 4000);
	assert_int_equal(delay_after(5, 60, 0), 16000);
	assert_int_equal(delay_after(6, 60, 0), 30000);
	assert_int_equal(delay_after(1000, 60, 0), 30000);
	/* Never later than its own interval ... */
	assert_int_equal(delay_after(5, 5, 0), 5000);
	/* ... and never sooner than its part allows (a DHT22 needs 2 s). */
	assert_int_equal(delay_after(1, 60, 2.0), 2000);
	assert_int_equal(delay_after(1, 1, 2.0), 2000);
	/* A sensor read faster than RETRY_MIN retries at RETRY_MIN. */
	assert_int_equal(delay_after(1, 0.5, 0), READINGS_RETRY_MIN_MS);
}

static void
the_period_respects_the_part(void **state)
{
	(void)state;
	assert_int_equal(readings_period(10, 0), 10000);
	assert_int_equal(readings_period(1, 2.0), 2000);
	assert_int_equal(readings_period(0.0001, 0), 1);
}

static void
clock_before_2026_is_not_trusted(void **state)
{
	(void)state;
	assert_false(readings_clock_ok(0));
	assert_false(readings_clock_ok(READINGS_CLOCK_SANE_MS - 1));
	assert_true(readings_clock_ok(READINGS_CLOCK_SANE_MS));
	assert_true(readings_clock_ok(1796000000000LL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(implausible_values_are_refused_as_range),
		cmocka_unit_test(one_jump_is_held_until_a_second_read_confirms_it),
		cmocka_unit_test(a_lone_garbled_value_never_passes),
		cmocka_unit_test(the_filter_is_per_quantity_and_can_be_off),
		cmocka_unit_test(a_failed_read_makes_the_filter_forget),
		cmocka_unit_test(doors_give_edges_not_levels),
		cmocka_unit_test(the_third_failure_in_a_row_is_a_fault_said_once),
		cmocka_unit_test(retries_come_sooner_then_back_off),
		cmocka_unit_test(the_period_respects_the_part),
		cmocka_unit_test(clock_before_2026_is_not_trusted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
