/* store_rbd_addr_host: the host a fence blocklists, from the client
 * addresses librados and the monitors print, in every form they take;
 * store_rbd_host_fenceable: which hosts may stand for one node. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "store/rbd.h"

static void test_forms(void **state)
{
	static const struct {
		const char *addr, *host;
	} cases[] = {
	        {"10.0.0.2:0/3710147553", "10.0.0.2"},
	        {"v1:10.0.0.2:0/12", "10.0.0.2"},
	        {"v2:192.168.1.20:3300/0", "192.168.1.20"},
	        {"any:10.1.2.3:0/5", "10.1.2.3"},
	        {"[v2:10.0.0.2:0/1,v1:10.0.0.2:0/1]", "10.0.0.2"},
	        {"[fd00::2]:0/12", "fd00::2"},
	        {"v2:[fd00::2]:0/12", "fd00::2"},
	        {"[v2:[fd00::a]:0/1,v1:[fd00::a]:0/1]", "fd00::a"},
	        {"10.0.0.2", "10.0.0.2"},
	};
	char out[STORE_RBD_ADDR_MAX];
	struct err e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(
		        store_rbd_addr_host(cases[i].addr, out, sizeof out, &e),
		        0);
		assert_string_equal(out, cases[i].host);
	}
}

static void test_bad(void **state)
{
	static const char *const bad[] = {"",     ":0/1",     "[fd00::2:0/1",
	                                  "v2:",  "a b:0/1",  "10.0.0.2;x:0/1",
	                                  "[]:0", "$(id):0/1"};
	char out[STORE_RBD_ADDR_MAX], small[4];
	struct err e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(
		        store_rbd_addr_host(bad[i], out, sizeof out, &e),
		        -EINVAL);
		assert_non_null(strstr(e.msg, "client address"));
	}
	assert_int_equal(
	        store_rbd_addr_host("10.0.0.2:0/1", small, sizeof small, &e),
	        -ENOSPC);
}

static void test_fenceable(void **state)
{
	static const char *const yes[] = {"10.0.0.2", "192.168.1.20", "fd00::2",
	                                  "2001:db8::1", "::ffff:10.1.2.3"};
	static const char *const no[] = {"127.0.0.1", "127.1.2.3",
	                                 "0.0.0.0",   "169.254.1.1",
	                                 "::1",       "::",
	                                 "fe80::1",   "::ffff:127.0.0.1",
	                                 "",          "host.example.org",
	                                 "10.0.0"};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof yes / sizeof yes[0]; i++)
		assert_true(store_rbd_host_fenceable(yes[i]));
	for (i = 0; i < sizeof no / sizeof no[0]; i++)
		assert_false(store_rbd_host_fenceable(no[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_forms),
	        cmocka_unit_test(test_bad),
	        cmocka_unit_test(test_fenceable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
