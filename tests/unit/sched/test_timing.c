/* The HA timing inequality refuses every setting that could run a guest twice.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "sched/sched.h"

static void test_defaults_are_safe_with_t_dead_10s(void **state)
{
	struct sched_ha_timing t;
	struct err e;

	(void)state;
	sched_ha_timing_defaults(&t);
	assert_int_equal(t.dead_ms, 10000);
	assert_int_equal(sched_ha_timing_check(&t, &e), 0);
}

static void test_t_dead_one_ms_short_is_refused_with_the_sum(void **state)
{
	struct sched_ha_timing t;
	struct err e;

	(void)state;
	sched_ha_timing_defaults(&t);
	t.dead_ms = t.fence_ms + t.hw_ms + t.kill_ms + t.poll_ms + 1000 - 1;
	assert_int_equal(sched_ha_timing_check(&t, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "9999 ms is unsafe"));
	assert_non_null(strstr(e.msg, "= 10000 ms"));
}

static void test_hardware_watchdog_time_counts_in_reset_mode(void **state)
{
	struct sched_ha_timing t;
	struct err e;

	(void)state;
	sched_ha_timing_defaults(&t);
	t.hw_ms = 10000;
	assert_int_equal(sched_ha_timing_check(&t, &e), -EINVAL);
	t.dead_ms = 20000;
	assert_int_equal(sched_ha_timing_check(&t, &e), 0);
}

static void test_renewal_not_shorter_than_fence_is_refused(void **state)
{
	struct sched_ha_timing t;
	struct err e;

	(void)state;
	sched_ha_timing_defaults(&t);
	t.renew_ms = t.fence_ms;
	assert_int_equal(sched_ha_timing_check(&t, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "shorter than the fence timeout"));
	t.renew_ms = 0;
	assert_int_equal(sched_ha_timing_check(&t, &e), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults_are_safe_with_t_dead_10s),
	        cmocka_unit_test(
	                test_t_dead_one_ms_short_is_refused_with_the_sum),
	        cmocka_unit_test(
	                test_hardware_watchdog_time_counts_in_reset_mode),
	        cmocka_unit_test(
	                test_renewal_not_shorter_than_fence_is_refused),
	};

	return cmocka_run_group_tests_name("sched/timing", tests, NULL, NULL);
}
