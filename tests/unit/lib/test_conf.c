/* Unit tests for the key = value config parser, its errors and its dump. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/lib.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

struct test_conf {
	char *name;
	char *data_dir;
	int64_t workers;
	bool verbose;
	char *listen;
	char *mode;
	char *comment; /* no default */
};

#define F(field) offsetof(struct test_conf, field)

static const struct conf_key keys[] = {
        {"name", CONF_STRING, F(name), "node1", 0, 32, NULL, "node name"},
        {"data_dir", CONF_PATH, F(data_dir), "/var/lib/cairn", 0, 0, NULL,
         "state directory"},
        {"workers", CONF_INT, F(workers), "4", 1, 64, NULL, "worker threads"},
        {"verbose", CONF_BOOL, F(verbose), "no", 0, 0, NULL, "debug logging"},
        {"listen", CONF_ADDRESS, F(listen), "127.0.0.1:8006", 0, 0, NULL,
         "API address"},
        {"mode", CONF_ENUM, F(mode), "normal", 0, 0,
         "normal|maintenance|standby", "node mode"},
        {"comment", CONF_STRING, F(comment), NULL, 0, 200, NULL, "free text"},
        {NULL, 0, 0, NULL, 0, 0, NULL, NULL},
};

#define SOURCE "test.conf"

static struct test_conf conf;
static struct test_conf reloaded; /* conf parsed back from its dump */
static struct buf out;
static struct err e;
static char tmpdir[64];

static int setup_conf(void **state)
{
	(void)state;
	memset(&conf, 0, sizeof(conf));
	memset(&reloaded, 0, sizeof(reloaded));
	buf_init(&out, 1 << 16);
	err_clear(&e);
	tmpdir[0] = '\0';
	return 0;
}

static int teardown_conf(void **state)
{
	(void)state;
	mem_fail_reset();
	conf_free(keys, &conf);
	conf_free(keys, &reloaded);
	buf_free(&out);
	if (tmpdir[0] != '\0') {
		char path[128];

		snprintf(path, sizeof(path), "%s/cairnd.conf", tmpdir);
		unlink(path);
		rmdir(tmpdir);
	}
	return 0;
}

/* Parses text afresh into `conf`. */
static int parse_len(const char *text, size_t len)
{
	conf_free(keys, &conf);
	memset(&conf, 0, sizeof(conf));
	err_clear(&e);
	return conf_parse(keys, &conf, SOURCE, text, len, &e);
}

static int parse(const char *text)
{
	return parse_len(text, strlen(text));
}

/* The parse fails, and the message names SOURCE:line and contains `what`
 * (when not NULL). */
static void assert_parse_error(const char *text, int line, const char *what)
{
	char where[64];
	int rc = parse(text);

	snprintf(where, sizeof(where), SOURCE ":%d:", line);
	if (rc >= 0 || strstr(e.msg, where) == NULL ||
	    (what != NULL && strstr(e.msg, what) == NULL))
		print_error("text %s\nrc %d msg '%s', wanted '%s' and '%s'\n",
		            text, rc, e.msg, where, what ? what : "");
	assert_true(rc < 0);
	assert_int_equal(e.code, rc);
	assert_non_null(strstr(e.msg, where));
	if (what != NULL)
		assert_non_null(strstr(e.msg, what));
}

/* Dumps `conf` into `out` and parses that into `reloaded`. */
static void dump_and_reload(void)
{
	assert_int_equal(conf_dump(keys, &conf, &out), 0);
	assert_non_null(out.data);
	assert_int_equal(
	        conf_parse(keys, &reloaded, SOURCE, out.data, out.len, &e), 0);
}

static void make_tmpdir(void)
{
	strcpy(tmpdir, "/tmp/cairn-test-conf-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
}

static void write_file(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

/* ---- values ---- */

static void test_conf_empty_text_applies_every_default(void **state)
{
	(void)state;
	assert_int_equal(parse(""), 0);
	assert_string_equal(conf.name, "node1");
	assert_string_equal(conf.data_dir, "/var/lib/cairn");
	assert_int_equal(conf.workers, 4);
	assert_false(conf.verbose);
	assert_string_equal(conf.listen, "127.0.0.1:8006");
	assert_string_equal(conf.mode, "normal");
}

static void test_conf_key_without_default_stays_unset(void **state)
{
	(void)state;
	assert_int_equal(parse("name = x\n"), 0);
	assert_null(conf.comment);
}

static void test_conf_parses_every_type(void **state)
{
	(void)state;
	assert_int_equal(parse("name = web1\n"
	                       "data_dir = /srv/cairn\n"
	                       "workers = 16\n"
	                       "verbose = yes\n"
	                       "listen = [::1]:8443\n"
	                       "mode = maintenance\n"
	                       "comment = rack 4\n"),
	                 0);
	assert_string_equal(conf.name, "web1");
	assert_string_equal(conf.data_dir, "/srv/cairn");
	assert_int_equal(conf.workers, 16);
	assert_true(conf.verbose);
	assert_string_equal(conf.listen, "[::1]:8443");
	assert_string_equal(conf.mode, "maintenance");
	assert_string_equal(conf.comment, "rack 4");
}

static void test_conf_settings_override_only_their_own_defaults(void **state)
{
	(void)state;
	assert_int_equal(parse("workers = 2\n"), 0);
	assert_int_equal(conf.workers, 2);
	assert_string_equal(conf.name, "node1");
	assert_string_equal(conf.mode, "normal");
}

static void test_conf_comments_and_blank_lines_are_ignored(void **state)
{
	(void)state;
	assert_int_equal(parse("# cairnd.conf\n"
	                       "\n"
	                       "#name = ignored\n"
	                       "   \n"
	                       "name = kept\n"
	                       "\n"
	                       "# trailing comment\n"),
	                 0);
	assert_string_equal(conf.name, "kept");
}

static void test_conf_hash_after_start_of_line_is_part_of_value(void **state)
{
	(void)state;
	assert_int_equal(parse("comment = room #4\n"), 0);
	assert_string_equal(conf.comment, "room #4");
}

static void test_conf_spaces_around_key_and_value_are_trimmed(void **state)
{
	(void)state;
	assert_int_equal(parse("   name   =    web2   \nworkers=8\n"), 0);
	assert_string_equal(conf.name, "web2");
	assert_int_equal(conf.workers, 8);
}

static void test_conf_quoted_value_keeps_outer_spaces(void **state)
{
	(void)state;
	assert_int_equal(parse("comment = \"  padded  \"\n"), 0);
	assert_string_equal(conf.comment, "  padded  ");
}

static void test_conf_value_may_contain_equals_sign(void **state)
{
	(void)state;
	assert_int_equal(parse("comment = a=b\n"), 0);
	assert_string_equal(conf.comment, "a=b");
}

static void test_conf_last_line_needs_no_newline(void **state)
{
	(void)state;
	assert_int_equal(parse("name = a\nworkers = 9"), 0);
	assert_int_equal(conf.workers, 9);
}

static void test_conf_reads_only_len_bytes(void **state)
{
	const char text[] = "name = web1XYZ";

	(void)state;
	assert_int_equal(parse_len(text, strlen("name = web1")), 0);
	assert_string_equal(conf.name, "web1");
}

static void test_conf_bool_accepts_every_spelling(void **state)
{
	const char *yes[] = {"1", "yes", "true", "on"};
	const char *no[] = {"0", "no", "false", "off"};
	char text[64];

	(void)state;
	for (size_t i = 0; i < CAIRN_ARRAY_SIZE(yes); i++) {
		snprintf(text, sizeof(text), "verbose = %s\n", yes[i]);
		assert_int_equal(parse(text), 0);
		assert_true(conf.verbose);
		snprintf(text, sizeof(text), "verbose = %s\n", no[i]);
		conf_free(keys, &conf);
		memset(&conf, 0, sizeof(conf));
		conf.verbose = true;
		assert_int_equal(
		        conf_parse(keys, &conf, SOURCE, text, strlen(text), &e),
		        0);
		assert_false(conf.verbose);
	}
}

static void test_conf_int_accepts_both_range_bounds(void **state)
{
	(void)state;
	assert_int_equal(parse("workers = 1\n"), 0);
	assert_int_equal(conf.workers, 1);
	assert_int_equal(parse("workers = 64\n"), 0);
	assert_int_equal(conf.workers, 64);
}

static void test_conf_string_of_exactly_max_length_is_accepted(void **state)
{
	(void)state;
	assert_int_equal(parse("name = 12345678901234567890123456789012\n"), 0);
	assert_int_equal(strlen(conf.name), 32);
}

static void test_conf_address_accepts_hostname_ipv4_and_ipv6(void **state)
{
	(void)state;
	assert_int_equal(parse("listen = node1.example.com:443\n"), 0);
	assert_string_equal(conf.listen, "node1.example.com:443");
	assert_int_equal(parse("listen = 10.0.0.1:65535\n"), 0);
	assert_int_equal(parse("listen = [fe80::1]:1\n"), 0);
}

/* ---- errors, each naming SOURCE:LINE: ---- */

static void test_conf_unknown_key_is_an_error_naming_line_and_key(void **state)
{
	(void)state;
	assert_parse_error("# comment\n\nprot = 8006\n", 3, "prot");
}

static void test_conf_duplicate_key_is_an_error_on_second_line(void **state)
{
	(void)state;
	assert_parse_error("name = a\nworkers = 2\n\nname = b\n", 4, "name");
}

static void test_conf_line_without_equals_is_an_error(void **state)
{
	(void)state;
	assert_parse_error("name = a\nworkers 2\n", 2, NULL);
}

static void test_conf_line_with_empty_key_is_an_error(void **state)
{
	(void)state;
	assert_parse_error("name = a\n = 2\n", 2, NULL);
}

static void test_conf_int_above_max_is_an_error(void **state)
{
	(void)state;
	assert_parse_error("\nworkers = 65\n", 2, "workers");
}

static void test_conf_int_below_min_is_an_error(void **state)
{
	(void)state;
	assert_parse_error("workers = 0\n", 1, "workers");
	assert_parse_error("workers = -3\n", 1, "workers");
}

static void test_conf_int_that_is_not_a_number_is_an_error(void **state)
{
	(void)state;
	assert_parse_error("workers = many\n", 1, "workers");
	assert_parse_error("name = a\nworkers = 12abc\n", 2, "workers");
	assert_parse_error("workers = 0x10\n", 1, "workers");
	assert_parse_error("workers = 1.5\n", 1, "workers");
	assert_parse_error("workers =\n", 1, "workers");
}

static void test_conf_int_overflowing_int64_is_an_error(void **state)
{
	(void)state;
	assert_parse_error("workers = 99999999999999999999999\n", 1, "workers");
	assert_parse_error("workers = 18446744073709551617\n", 1, "workers");
}

static void test_conf_relative_path_is_an_error(void **state)
{
	(void)state;
	assert_parse_error("name = x\n\n\ndata_dir = var/lib/cairn\n", 4,
	                   "data_dir");
}

static void test_conf_path_with_control_character_is_an_error(void **state)
{
	(void)state;
	assert_parse_error("data_dir = /var/\x01lib\n", 1, "data_dir");
}

static void test_conf_string_longer_than_max_is_an_error(void **state)
{
	(void)state;
	assert_parse_error("name = 123456789012345678901234567890123\n", 1,
	                   "name");
}

static void test_conf_string_with_control_character_is_an_error(void **state)
{
	(void)state;
	assert_parse_error("comment = bell\x07here\n", 1, "comment");
}

static void test_conf_bool_with_other_word_is_an_error(void **state)
{
	(void)state;
	assert_parse_error("verbose = maybe\n", 1, "verbose");
	assert_parse_error("verbose = 2\n", 1, "verbose");
}

static void test_conf_address_without_port_is_an_error(void **state)
{
	(void)state;
	assert_parse_error("listen = 127.0.0.1\n", 1, "listen");
	assert_parse_error("listen = [::1]\n", 1, "listen");
	assert_parse_error("listen = host:\n", 1, "listen");
}

static void test_conf_address_with_port_zero_is_an_error(void **state)
{
	(void)state;
	assert_parse_error("name = n\nlisten = 127.0.0.1:0\n", 2, "listen");
}

static void test_conf_address_with_port_above_65535_is_an_error(void **state)
{
	(void)state;
	assert_parse_error("listen = 127.0.0.1:70000\n", 1, "listen");
	assert_parse_error("listen = 127.0.0.1:65536\n", 1, "listen");
}

static void test_conf_address_with_non_numeric_port_is_an_error(void **state)
{
	(void)state;
	assert_parse_error("listen = 127.0.0.1:http\n", 1, "listen");
	assert_parse_error("listen = 127.0.0.1:80x\n", 1, "listen");
}

static void test_conf_enum_outside_choices_is_an_error(void **state)
{
	(void)state;
	assert_parse_error("mode = fast\n", 1, "mode");
}

static void test_conf_enum_prefix_or_list_of_choices_is_an_error(void **state)
{
	(void)state;
	assert_parse_error("mode = norm\n", 1, "mode");
	assert_parse_error("mode = normal|standby\n", 1, "mode");
	assert_parse_error("mode = normalx\n", 1, "mode");
	assert_parse_error("mode = \n", 1, "mode");
}

static void test_conf_line_longer_than_line_max_is_an_error(void **state)
{
	static char text[CONF_LINE_MAX + 200];
	size_t at;

	(void)state;
	strcpy(text, "name = a\ncomment = ");
	at = strlen(text);
	memset(text + at, 'x', CONF_LINE_MAX + 100);
	strcpy(text + at + CONF_LINE_MAX + 100, "\n");
	assert_parse_error(text, 2, NULL);
}

static void test_conf_line_number_counts_comments_and_blank_lines(void **state)
{
	(void)state;
	assert_parse_error("# 1\n\n# 3\nname = a\n\n\n# 7\nbogus = 1\n", 8,
	                   "bogus");
}

static void
test_conf_failure_keeps_defaults_and_settings_before_bad_line(void **state)
{
	(void)state;
	assert_true(parse("name = early\nworkers = 999\nmode = standby\n") < 0);
	assert_string_equal(conf.name, "early");
	assert_int_equal(conf.workers, 4);
	assert_string_equal(conf.mode, "normal");
	assert_string_equal(conf.data_dir, "/var/lib/cairn");
}

static void
test_conf_parse_survives_every_allocation_failure_point(void **state)
{
	const char *text = "name = web1\ndata_dir = /srv\nlisten = [::1]:1\n"
	                   "mode = standby\ncomment = x\n";
	bool completed = false;

	(void)state;
	for (long n = 0; n < 100 && !completed; n++) {
		int rc;

		conf_free(keys, &conf);
		memset(&conf, 0, sizeof(conf));
		mem_fail_after(n);
		rc = conf_parse(keys, &conf, SOURCE, text, strlen(text), &e);
		mem_fail_reset();
		if (n == 0)
			assert_int_equal(rc, -ENOMEM);
		if (rc != 0)
			assert_int_equal(rc, -ENOMEM);
		completed = rc == 0;
	}
	assert_true(completed);
	assert_string_equal(conf.comment, "x");
}

/* ---- conf_dump ---- */

static void test_conf_dump_writes_one_key_value_line_per_setting(void **state)
{
	(void)state;
	assert_int_equal(parse("name = web1\ndata_dir = /srv/cairn\n"
	                       "workers = 8\nlisten = [::1]:8443\n"
	                       "mode = standby\n"),
	                 0);
	assert_int_equal(conf_dump(keys, &conf, &out), 0);
	assert_non_null(out.data);
	assert_true(strncmp(out.data, "name = web1\n", 12) == 0 ||
	            strstr(out.data, "\nname = web1\n") != NULL);
	assert_non_null(strstr(out.data, "\ndata_dir = /srv/cairn\n"));
	assert_non_null(strstr(out.data, "\nworkers = 8\n"));
	assert_non_null(strstr(out.data, "\nlisten = [::1]:8443\n"));
	assert_non_null(strstr(out.data, "\nmode = standby\n"));
	assert_non_null(strstr(out.data, "\nverbose = "));
	assert_int_equal(out.data[out.len - 1], '\n');
}

static void test_conf_dump_output_parses_back_to_the_same_settings(void **state)
{
	(void)state;
	assert_int_equal(parse("name = web1\nverbose = on\nworkers = 3\n"
	                       "comment = \"  padded # text  \"\n"),
	                 0);
	dump_and_reload();
	assert_string_equal(reloaded.name, "web1");
	assert_true(reloaded.verbose);
	assert_int_equal(reloaded.workers, 3);
	assert_string_equal(reloaded.listen, conf.listen);
	assert_string_equal(reloaded.data_dir, conf.data_dir);
	assert_string_equal(reloaded.mode, conf.mode);
	assert_string_equal(reloaded.comment, "  padded # text  ");
}

static void
test_conf_dump_of_value_with_its_own_quotes_parses_back_unchanged(void **state)
{
	(void)state;
	/* The outer quotes are syntax; the value itself is "quoted" with its
	 * quote characters. Dumping it bare would lose them on reload. */
	assert_int_equal(parse("comment = \"\"quoted\"\"\n"), 0);
	assert_string_equal(conf.comment, "\"quoted\"");
	dump_and_reload();
	assert_string_equal(reloaded.comment, "\"quoted\"");
}

static void test_conf_dump_into_too_small_buffer_fails_with_e2big(void **state)
{
	(void)state;
	assert_int_equal(parse(""), 0);
	buf_free(&out);
	buf_init(&out, 10);
	assert_int_equal(conf_dump(keys, &conf, &out), -E2BIG);
}

/* ---- conf_load ---- */

static void test_conf_load_reads_file_and_names_it_in_errors(void **state)
{
	char path[128];
	char where[160];

	(void)state;
	make_tmpdir();
	snprintf(path, sizeof(path), "%s/cairnd.conf", tmpdir);
	write_file(path, "workers = 7\nprot = 1\n", 21);
	assert_true(conf_load(keys, &conf, path, &e) < 0);
	snprintf(where, sizeof(where), "%s:2:", path);
	assert_non_null(strstr(e.msg, where));
	assert_int_equal(conf.workers, 7);
}

static void test_conf_load_good_file_applies_settings(void **state)
{
	char path[128];

	(void)state;
	make_tmpdir();
	snprintf(path, sizeof(path), "%s/cairnd.conf", tmpdir);
	write_file(path, "# ok\nworkers = 12\nmode = standby\n", 33);
	assert_int_equal(conf_load(keys, &conf, path, &e), 0);
	assert_int_equal(conf.workers, 12);
	assert_string_equal(conf.mode, "standby");
	assert_string_equal(conf.name, "node1");
}

static void test_conf_load_missing_file_fails_naming_path(void **state)
{
	const char *path = "/nonexistent-cairn-dir/cairnd.conf";

	(void)state;
	assert_int_equal(conf_load(keys, &conf, path, &e), -ENOENT);
	assert_int_equal(e.code, -ENOENT);
	assert_non_null(strstr(e.msg, path));
}

static void
test_conf_load_file_over_conf_file_max_fails_naming_path(void **state)
{
	char path[128];
	size_t len = CONF_FILE_MAX + 1;
	char *text = mem_alloc(len);

	(void)state;
	assert_non_null(text);
	/* Valid content throughout: only the size is wrong. */
	memset(text, '\n', len);
	make_tmpdir();
	snprintf(path, sizeof(path), "%s/cairnd.conf", tmpdir);
	write_file(path, text, len);
	mem_free(text);
	assert_true(conf_load(keys, &conf, path, &e) < 0);
	assert_non_null(strstr(e.msg, path));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup_conf, teardown_conf)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_conf_empty_text_applies_every_default),
	        T(test_conf_key_without_default_stays_unset),
	        T(test_conf_parses_every_type),
	        T(test_conf_settings_override_only_their_own_defaults),
	        T(test_conf_comments_and_blank_lines_are_ignored),
	        T(test_conf_hash_after_start_of_line_is_part_of_value),
	        T(test_conf_spaces_around_key_and_value_are_trimmed),
	        T(test_conf_quoted_value_keeps_outer_spaces),
	        T(test_conf_value_may_contain_equals_sign),
	        T(test_conf_last_line_needs_no_newline),
	        T(test_conf_reads_only_len_bytes),
	        T(test_conf_bool_accepts_every_spelling),
	        T(test_conf_int_accepts_both_range_bounds),
	        T(test_conf_string_of_exactly_max_length_is_accepted),
	        T(test_conf_address_accepts_hostname_ipv4_and_ipv6),
	        T(test_conf_unknown_key_is_an_error_naming_line_and_key),
	        T(test_conf_duplicate_key_is_an_error_on_second_line),
	        T(test_conf_line_without_equals_is_an_error),
	        T(test_conf_line_with_empty_key_is_an_error),
	        T(test_conf_int_above_max_is_an_error),
	        T(test_conf_int_below_min_is_an_error),
	        T(test_conf_int_that_is_not_a_number_is_an_error),
	        T(test_conf_int_overflowing_int64_is_an_error),
	        T(test_conf_relative_path_is_an_error),
	        T(test_conf_path_with_control_character_is_an_error),
	        T(test_conf_string_longer_than_max_is_an_error),
	        T(test_conf_string_with_control_character_is_an_error),
	        T(test_conf_bool_with_other_word_is_an_error),
	        T(test_conf_address_without_port_is_an_error),
	        T(test_conf_address_with_port_zero_is_an_error),
	        T(test_conf_address_with_port_above_65535_is_an_error),
	        T(test_conf_address_with_non_numeric_port_is_an_error),
	        T(test_conf_enum_outside_choices_is_an_error),
	        T(test_conf_enum_prefix_or_list_of_choices_is_an_error),
	        T(test_conf_line_longer_than_line_max_is_an_error),
	        T(test_conf_line_number_counts_comments_and_blank_lines),
	        T(test_conf_failure_keeps_defaults_and_settings_before_bad_line),
	        T(test_conf_parse_survives_every_allocation_failure_point),
	        T(test_conf_dump_writes_one_key_value_line_per_setting),
	        T(test_conf_dump_output_parses_back_to_the_same_settings),
	        T(test_conf_dump_of_value_with_its_own_quotes_parses_back_unchanged),
	        T(test_conf_dump_into_too_small_buffer_fails_with_e2big),
	        T(test_conf_load_reads_file_and_names_it_in_errors),
	        T(test_conf_load_good_file_applies_settings),
	        T(test_conf_load_missing_file_fails_naming_path),
	        T(test_conf_load_file_over_conf_file_max_fails_naming_path),
	};

	return cmocka_run_group_tests_name("lib/conf", tests, NULL, NULL);
}
