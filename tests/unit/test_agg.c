/* The aggregator: n/min/max/mean/last per sensor and quantity, aligned windows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agg.h"

static void
windows_align_to_interval_multiples(void **state)
{
	(void)state;
	assert_int_equal(agg_window_start(1700000012345LL, 60000), 1699999980000LL);
	assert_int_equal(agg_window_start(1700000040000LL, 60000), 1700000040000LL);
	assert_int_equal(agg_window_start(59999, 60000), 0);
	assert_int_equal(agg_window_start(-1, 60000), -60000);
}

static void
cells_keep_n_min_max_mean_last(void **state)
{
	struct agg a;
	const struct agg_cell *c;

	(void)state;
	assert_int_equal(agg_init(&a, 2, 60, 1700000012345LL), 0);
	assert_int_equal(a.start_ms, 1699999980000LL);
	assert_int_equal(agg_end(&a), 1700000040000LL);
	agg_add(&a, 1, Q_TEMPERATURE, 3.0, true);
	agg_add(&a, 1, Q_TEMPERATURE, -1.5, true);
	agg_add(&a, 1, Q_TEMPERATURE, 7.5, true);
	agg_add(&a, 1, Q_TEMPERATURE, 2.0, true);
	agg_add(&a, 0, Q_HUMIDITY, 90.0, false);

	c = agg_cell(&a, 1, Q_TEMPERATURE);
	assert_int_equal(c->n, 4);
	assert_true(c->min == -1.5);
	assert_true(c->max == 7.5);
	assert_true(c->last == 2.0);
	assert_true(agg_mean(c) > 2.749 && agg_mean(c) < 2.751);
	assert_false(c->clock_bad);
	/* Other cells are untouched. */
	assert_int_equal(agg_cell(&a, 1, Q_HUMIDITY)->n, 0);
	assert_int_equal(agg_cell(&a, 0, Q_TEMPERATURE)->n, 0);
	assert_true(agg_cell(&a, 0, Q_HUMIDITY)->clock_bad);
	/* Out-of-range sensors are ignored, not written past the end. */
	agg_add(&a, 2, Q_TEMPERATURE, 1.0, true);
	assert_null(agg_cell(&a, 2, Q_TEMPERATURE));
	agg_free(&a);
}

static void
next_window_empties_cells(void **state)
{
	struct agg a;

	(void)state;
	assert_int_equal(agg_init(&a, 1, 10, 1000), 0);
	agg_add(&a, 0, Q_CO2, 900, true);
	agg_next(&a, 25500);
	assert_int_equal(a.start_ms, 20000);
	assert_int_equal(agg_end(&a), 30000);
	assert_int_equal(agg_cell(&a, 0, Q_CO2)->n, 0);
	agg_add(&a, 0, Q_CO2, 1100, true);
	assert_true(agg_cell(&a, 0, Q_CO2)->min == 1100);
	agg_free(&a);
}

static void
carry_takes_cells_by_sensor(void **state)
{
	struct agg a, b, c;
	int map[3] = { 1, -1, 0 };	/* new 0 = old 1, new 1 is new, new 2 = old 0 */

	(void)state;
	assert_int_equal(agg_init(&a, 2, 60, 120000), 0);
	agg_add(&a, 0, Q_TEMPERATURE, 1.0, true);
	agg_add(&a, 1, Q_TEMPERATURE, 5.0, true);
	agg_add(&a, 1, Q_TEMPERATURE, 6.0, true);
	assert_int_equal(agg_init(&b, 3, 60, 150000), 0);
	agg_carry(&b, &a, map);
	assert_int_equal(b.start_ms, 120000);
	assert_int_equal(agg_cell(&b, 0, Q_TEMPERATURE)->n, 2);
	assert_int_equal(agg_cell(&b, 1, Q_TEMPERATURE)->n, 0);
	assert_true(agg_cell(&b, 2, Q_TEMPERATURE)->last == 1.0);
	/* A new interval starts a new window from scratch. */
	assert_int_equal(agg_init(&c, 3, 30, 150000), 0);
	agg_carry(&c, &a, map);
	assert_int_equal(c.start_ms, 150000);
	assert_int_equal(agg_cell(&c, 0, Q_TEMPERATURE)->n, 0);
	agg_free(&a);
	agg_free(&b);
	agg_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(windows_align_to_interval_multiples),
		cmocka_unit_test(cells_keep_n_min_max_mean_last),
		cmocka_unit_test(next_window_empties_cells),
		cmocka_unit_test(carry_takes_cells_by_sensor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
