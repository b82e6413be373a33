/* cairnd's settings: defaults, overrides and errors that name file and line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "node/node.h"

static void test_empty_file_gives_usable_defaults(void **state)
{
	struct node_config c;
	struct err e;

	(void)state;
	assert_int_equal(
	        node_config_parse(&c, "t.conf", "node_name = n1\n", &e), 0);
	assert_string_equal(c.data_dir, "/var/lib/cairn");
	assert_string_equal(c.rpc_listen, "0.0.0.0:8016");
	assert_string_equal(c.db_listen, "0.0.0.0:8017");
	assert_string_equal(c.api_listen, "0.0.0.0:8006");
	assert_string_equal(c.log_level, "info");
	assert_int_equal(c.uv_threadpool_size, 8);
	assert_null(c.test_spawn);
	node_config_free(&c);
}

static void test_settings_override_defaults(void **state)
{
	struct node_config c;
	struct err e;
	const char *text = "# node two of a test cluster\n"
	                   "node_name = n2\n"
	                   "data_dir = /tmp/cairn-n2/data\n"
	                   "rpc_listen = 10.99.0.2:18016\n"
	                   "cpu_threads = 3\n";

	(void)state;
	assert_int_equal(node_config_parse(&c, "n2.conf", text, &e), 0);
	assert_string_equal(c.node_name, "n2");
	assert_string_equal(c.data_dir, "/tmp/cairn-n2/data");
	assert_string_equal(c.rpc_listen, "10.99.0.2:18016");
	assert_int_equal(c.cpu_threads, 3);
	node_config_free(&c);
}

static void test_bad_node_name_is_refused(void **state)
{
	struct node_config c;
	struct err e;

	(void)state;
	assert_int_equal(
	        node_config_parse(&c, "t.conf", "node_name = n_1\n", &e),
	        -EINVAL);
	assert_non_null(strstr(e.msg, "'n_1' must be a DNS label"));
	node_config_free(&c);
	assert_int_equal(
	        node_config_parse(&c, "t.conf", "node_name = -a\n", &e),
	        -EINVAL);
	node_config_free(&c);
}

static void test_same_listen_address_twice_is_refused(void **state)
{
	struct node_config c;
	struct err e;

	(void)state;
	assert_int_equal(node_config_parse(&c, "t.conf",
	                                   "node_name = n1\n"
	                                   "db_listen = 0.0.0.0:8016\n",
	                                   &e),
	                 -EINVAL);
	assert_non_null(strstr(e.msg, "must differ"));
	node_config_free(&c);
}

static void test_thread_count_out_of_range_names_line(void **state)
{
	struct node_config c;
	struct err e;

	(void)state;
	assert_int_equal(node_config_parse(&c, "t.conf",
	                                   "node_name = n1\n\n"
	                                   "storage_threads = 0\n",
	                                   &e),
	                 -ERANGE);
	assert_non_null(strstr(e.msg, "t.conf:3:"));
	assert_non_null(strstr(e.msg, "storage_threads"));
	node_config_free(&c);
}

static void test_help_lists_every_key(void **state)
{
	const struct conf_key *k;
	struct buf help;

	(void)state;
	buf_init(&help, 65536);
	assert_int_equal(node_config_help(&help), 0);
	for (k = node_config_keys; k->name != NULL; k++)
		assert_non_null(strstr(help.data, k->name));
	buf_free(&help);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_empty_file_gives_usable_defaults),
	        cmocka_unit_test(test_settings_override_defaults),
	        cmocka_unit_test(test_bad_node_name_is_refused),
	        cmocka_unit_test(test_same_listen_address_twice_is_refused),
	        cmocka_unit_test(test_thread_count_out_of_range_names_line),
	        cmocka_unit_test(test_help_lists_every_key),
	};

	return cmocka_run_group_tests_name("node/config", tests, NULL, NULL);
}
