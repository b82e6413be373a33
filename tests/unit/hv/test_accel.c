/* The accel option parses its three words and names a bad one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "hv/hv.h"

static void test_each_word_round_trips(void **state)
{
	const char *words[] = {"auto", "kvm", "tcg"};
	enum hv_accel a;
	struct err e;
	size_t i;

	(void)state;
	for (i = 0; i < CAIRN_ARRAY_SIZE(words); i++) {
		assert_int_equal(hv_accel_parse(words[i], &a, &e), 0);
		assert_string_equal(hv_accel_name(a), words[i]);
	}
}

static void test_unknown_word_is_named_in_the_error(void **state)
{
	enum hv_accel a = HV_ACCEL_TCG;
	struct err e;

	(void)state;
	assert_int_equal(hv_accel_parse("KVM", &a, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "'KVM'"));
	assert_int_equal(a, HV_ACCEL_TCG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_each_word_round_trips),
	        cmocka_unit_test(test_unknown_word_is_named_in_the_error),
	};

	return cmocka_run_group_tests_name("hv/accel", tests, NULL, NULL);
}
