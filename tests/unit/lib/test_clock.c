/* Unit tests for the clock seam: the hand-driven fake and the real clock. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <time.h>

#include "lib/lib.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
	                      .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

static void test_clock_fake_reads_its_initial_values(void **state)
{
	struct clock_fake f;

	(void)state;
	clock_fake_init(&f, 1000, 1764436801123);
	assert_int_equal(clock_mono_ms(&f.clock), 1000);
	assert_int_equal(clock_wall_ms(&f.clock), 1764436801123);
}

static void test_clock_fake_advance_moves_both_clocks(void **state)
{
	struct clock_fake f;

	(void)state;
	clock_fake_init(&f, 5, 1700000000000);
	clock_fake_advance(&f, 250);
	assert_int_equal(clock_mono_ms(&f.clock), 255);
	assert_int_equal(clock_wall_ms(&f.clock), 1700000000250);
	clock_fake_advance(&f, 10000);
	assert_int_equal(clock_mono_ms(&f.clock), 10255);
	assert_int_equal(clock_wall_ms(&f.clock), 1700000010250);
}

static void test_clock_fake_does_not_move_by_itself(void **state)
{
	struct clock_fake f;

	(void)state;
	clock_fake_init(&f, 42, 43);
	sleep_ms(5);
	assert_int_equal(clock_mono_ms(&f.clock), 42);
	assert_int_equal(clock_wall_ms(&f.clock), 43);
	clock_fake_advance(&f, 0);
	assert_int_equal(clock_mono_ms(&f.clock), 42);
	assert_int_equal(clock_wall_ms(&f.clock), 43);
}

static void test_clock_fakes_are_independent(void **state)
{
	struct clock_fake a, b;

	(void)state;
	clock_fake_init(&a, 0, 0);
	clock_fake_init(&b, 100, 100);
	clock_fake_advance(&a, 7);
	assert_int_equal(clock_mono_ms(&a.clock), 7);
	assert_int_equal(clock_mono_ms(&b.clock), 100);
	assert_int_equal(clock_wall_ms(&b.clock), 100);
}

static void test_clock_real_mono_never_goes_backwards(void **state)
{
	struct clock *c = clock_real();
	uint64_t prev, now;

	(void)state;
	assert_non_null(c);
	prev = clock_mono_ms(c);
	for (int i = 0; i < 100000; i++) {
		now = clock_mono_ms(c);
		assert_true(now >= prev);
		prev = now;
	}
}

static void test_clock_real_mono_advances_with_elapsed_time(void **state)
{
	struct clock *c = clock_real();
	uint64_t before, after;

	(void)state;
	before = clock_mono_ms(c);
	sleep_ms(30);
	after = clock_mono_ms(c);
	/* Whole milliseconds on both sides: at least 30 apart. */
	assert_true(after - before >= 30);
	assert_true(after - before < 5000);
}

static void test_clock_real_wall_is_unix_time_in_ms(void **state)
{
	struct clock *c = clock_real();
	struct timespec ts;
	int64_t ours, wall;

	(void)state;
	clock_gettime(CLOCK_REALTIME, &ts);
	ours = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	wall = clock_wall_ms(c);
	assert_true(wall > ours - 2000 && wall < ours + 2000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_clock_fake_reads_its_initial_values),
	        cmocka_unit_test(test_clock_fake_advance_moves_both_clocks),
	        cmocka_unit_test(test_clock_fake_does_not_move_by_itself),
	        cmocka_unit_test(test_clock_fakes_are_independent),
	        cmocka_unit_test(test_clock_real_mono_never_goes_backwards),
	        cmocka_unit_test(
	                test_clock_real_mono_advances_with_elapsed_time),
	        cmocka_unit_test(test_clock_real_wall_is_unix_time_in_ms),
	};

	return cmocka_run_group_tests_name("lib/clock", tests, NULL, NULL);
}
