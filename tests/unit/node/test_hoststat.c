/* Host figures parse from /proc text, and bad text is named, not guessed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "node/hoststat.h"

static const char meminfo[] = "MemTotal:       24000000 kB\n"
                              "MemFree:         1000000 kB\n"
                              "MemAvailable:    8000000 kB\n"
                              "Buffers:          100000 kB\n"
                              "SwapTotal:       2000000 kB\n"
                              "SwapFree:        1500000 kB\n";

static void
test_meminfo_gives_bytes_and_used_is_total_minus_available(void **state)
{
	struct host_stat s = {0};
	struct err e;

	(void)state;
	assert_int_equal(host_parse_meminfo(meminfo, &s, &e), 0);
	assert_int_equal(s.mem_total, 24000000ULL * 1024);
	assert_int_equal(s.mem_free, 1000000ULL * 1024);
	assert_int_equal(s.mem_used, (24000000ULL - 8000000) * 1024);
	assert_int_equal(s.swap_total, 2000000ULL * 1024);
	assert_int_equal(s.swap_used, 500000ULL * 1024);
}

static void test_meminfo_without_memavailable_uses_memfree(void **state)
{
	struct host_stat s = {0};
	struct err e;

	(void)state;
	assert_int_equal(host_parse_meminfo("MemTotal: 100 kB\nMemFree: 40 kB\n"
	                                    "SwapTotal: 0 kB\nSwapFree: 0 kB\n",
	                                    &s, &e),
	                 0);
	assert_int_equal(s.mem_used, 60 * 1024);
}

static void test_meminfo_missing_key_is_named(void **state)
{
	struct host_stat s = {0};
	struct err e;

	(void)state;
	assert_int_equal(host_parse_meminfo("MemTotal: 100 kB\n", &s, &e),
	                 -EINVAL);
	assert_non_null(strstr(e.msg, "'MemFree'"));
}

static void test_meminfo_available_above_total_is_refused(void **state)
{
	struct host_stat s = {0};
	struct err e;

	(void)state;
	assert_int_equal(host_parse_meminfo("MemTotal: 100 kB\nMemFree: 40 kB\n"
	                                    "MemAvailable: 200 kB\n"
	                                    "SwapTotal: 0 kB\nSwapFree: 0 kB\n",
	                                    &s, &e),
	                 -EINVAL);
}

static void test_loadavg_and_uptime(void **state)
{
	struct host_stat s = {0};
	struct err e;

	(void)state;
	assert_int_equal(
	        host_parse_loadavg("0.52 0.40 0.31 2/345 6789\n", &s, &e), 0);
	assert_true(s.loadavg[0] > 0.51 && s.loadavg[0] < 0.53);
	assert_true(s.loadavg[2] > 0.30 && s.loadavg[2] < 0.32);
	assert_int_equal(host_parse_uptime("12345.67 2345.00\n", &s, &e), 0);
	assert_true(s.uptime_s > 12345.6 && s.uptime_s < 12345.7);
	assert_int_equal(host_parse_loadavg("garbage", &s, &e), -EINVAL);
	assert_int_equal(host_parse_uptime("", &s, &e), -EINVAL);
}

static void test_cpuinfo_counts_processors_and_takes_the_model(void **state)
{
	struct host_stat s = {0};
	struct err e;
	const char *text = "processor\t: 0\nmodel name\t: Test CPU @ 2.0GHz\n\n"
	                   "processor\t: 1\nmodel name\t: Test CPU @ 2.0GHz\n";

	(void)state;
	assert_int_equal(host_parse_cpuinfo(text, &s, &e), 0);
	assert_int_equal(s.cpus, 2);
	assert_string_equal(s.cpu_model, "Test CPU @ 2.0GHz");
	assert_int_equal(host_parse_cpuinfo("flags: x\n", &s, &e), -EINVAL);
}

static void test_cpu_fraction_between_two_samples(void **state)
{
	struct host_stat a = {0}, b = {0};
	struct err e;

	(void)state;
	assert_int_equal(
	        host_parse_stat("cpu  100 0 100 700 100 0 0 0\n", &a, &e), 0);
	assert_int_equal(
	        host_parse_stat("cpu  150 0 150 800 100 0 0 0\n", &b, &e), 0);
	/* 100 busy jiffies of 200 */
	assert_true(host_cpu_fraction(&a, &b) > 0.49 &&
	            host_cpu_fraction(&a, &b) < 0.51);
	assert_true(host_cpu_fraction(&b, &a) == 0);
	assert_int_equal(host_parse_stat("intr 1 2 3\n", &a, &e), -EINVAL);
}

static void test_reading_this_host_gives_plausible_figures(void **state)
{
	struct host_stat s;
	struct err e;

	(void)state;
	assert_int_equal(host_stat_read(&s, &e), 0);
	assert_true(s.mem_total > 0 && s.mem_used <= s.mem_total);
	assert_true(s.cpus >= 1);
	assert_true(s.uptime_s > 0);
	assert_true(s.root_total > 0);
	assert_non_null(strstr(s.kversion, "Linux"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(
	                test_meminfo_gives_bytes_and_used_is_total_minus_available),
	        cmocka_unit_test(
	                test_meminfo_without_memavailable_uses_memfree),
	        cmocka_unit_test(test_meminfo_missing_key_is_named),
	        cmocka_unit_test(test_meminfo_available_above_total_is_refused),
	        cmocka_unit_test(test_loadavg_and_uptime),
	        cmocka_unit_test(
	                test_cpuinfo_counts_processors_and_takes_the_model),
	        cmocka_unit_test(test_cpu_fraction_between_two_samples),
	        cmocka_unit_test(
	                test_reading_this_host_gives_plausible_figures),
	};

	return cmocka_run_group_tests_name("node/hoststat", tests, NULL, NULL);
}
