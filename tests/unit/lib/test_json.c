/* Unit tests for the bounded JSON parser and the typed getters. */
#include <errno.h>
#include <string.h>

#include "lib/lib.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static json_t *parsed;
static struct err e;

static int setup_json(void **state)
{
	(void)state;
	parsed = NULL;
	err_clear(&e);
	return 0;
}

static int teardown_json(void **state)
{
	(void)state;
	mem_fail_reset();
	json_decref(parsed);
	parsed = NULL;
	return 0;
}

static int parse(const char *text, size_t max_len, int max_depth)
{
	json_decref(parsed);
	parsed = NULL;
	err_clear(&e);
	return json_parse_bounded(text, strlen(text), max_len, max_depth,
	                          &parsed, &e);
}

/* Parses a literal the test trusts, for the getter tests. */
static json_t *object(const char *text)
{
	assert_int_equal(parse(text, 4096, JSON_DEFAULT_MAX_DEPTH), 0);
	assert_true(json_is_object(parsed));
	return parsed;
}

/* A string of `depth` '[' then `depth` ']', e.g. "[[[]]]" for 3. */
static char *nested(int depth)
{
	char *s = mem_alloc((size_t)depth * 2 + 1);

	assert_non_null(s);
	memset(s, '[', (size_t)depth);
	memset(s + depth, ']', (size_t)depth);
	s[depth * 2] = '\0';
	return s;
}

/* ---- json_parse_bounded ---- */

static void test_json_parse_valid_object_returns_new_reference(void **state)
{
	(void)state;
	assert_int_equal(parse("{\"a\": [1, 2, {\"b\": null}]}", 1024, 8), 0);
	assert_non_null(parsed);
	assert_true(json_is_object(parsed));
	assert_int_equal(parsed->refcount, 1);
	assert_int_equal(json_array_size(json_object_get(parsed, "a")), 3);
}

static void test_json_parse_longer_than_max_len_fails_with_e2big(void **state)
{
	(void)state;
	assert_int_equal(parse("[1,2,3,4,5]", 10, 8), -E2BIG);
	assert_null(parsed);
	assert_int_equal(e.code, -E2BIG);
	assert_string_not_equal(e.msg, "");
}

static void test_json_parse_of_exactly_max_len_succeeds(void **state)
{
	(void)state;
	assert_int_equal(parse("[1,2,3,4,5]", 11, 8), 0);
	assert_int_equal(json_array_size(parsed), 5);
}

static void test_json_parse_at_max_depth_succeeds(void **state)
{
	char *text = nested(5);

	(void)state;
	assert_int_equal(parse(text, 1024, 5), 0);
	mem_free(text);
}

static void
test_json_parse_deeper_than_max_depth_fails_with_einval(void **state)
{
	char *text = nested(6);

	(void)state;
	assert_int_equal(parse(text, 1024, 5), -EINVAL);
	assert_null(parsed);
	assert_int_equal(e.code, -EINVAL);
	assert_string_not_equal(e.msg, "");
	mem_free(text);
}

static void test_json_parse_counts_objects_and_arrays_toward_depth(void **state)
{
	(void)state;
	assert_int_equal(parse("{\"a\":[{\"b\":[1]}]}", 1024, 4), 0);
	assert_int_equal(parse("{\"a\":[{\"b\":[{}]}]}", 1024, 4), -EINVAL);
}

static void test_json_parse_depth_is_nesting_not_bracket_count(void **state)
{
	(void)state;
	/* Many siblings, each shallow: depth 2. */
	assert_int_equal(parse("[[],[],[],[],[],[],[],[],{},{},{}]", 1024, 2),
	                 0);
}

static void
test_json_parse_brackets_inside_strings_do_not_count_toward_depth(void **state)
{
	(void)state;
	assert_int_equal(
	        parse("{\"a\":\"[[[[[[[[[[{{{{{{{{\",\"[[[[\":1}", 1024, 1), 0);
	assert_string_equal(json_string_value(json_object_get(parsed, "a")),
	                    "[[[[[[[[[[{{{{{{{{");
}

static void test_json_parse_escaped_quote_does_not_end_a_string(void **state)
{
	(void)state;
	/* If \" ended the string, the brackets after it would count. */
	assert_int_equal(parse("[\"\\\"[[[[[[[[\"]", 1024, 1), 0);
	assert_string_equal(json_string_value(json_array_get(parsed, 0)),
	                    "\"[[[[[[[[");
}

static void
test_json_parse_escaped_backslash_before_quote_ends_the_string(void **state)
{
	(void)state;
	/* "\\" is a complete string; the nesting after it is real. */
	assert_int_equal(parse("[\"\\\\\",[[[[1]]]]]", 1024, 3), -EINVAL);
	assert_int_equal(parse("[\"\\\\\",[[[[1]]]]]", 1024, 5), 0);
}

static void
test_json_parse_very_deep_input_fails_without_recursing(void **state)
{
	char *text = nested(100000);

	(void)state;
	json_decref(parsed);
	parsed = NULL;
	assert_int_equal(json_parse_bounded(text, strlen(text), 1 << 20,
	                                    JSON_DEFAULT_MAX_DEPTH, &parsed,
	                                    &e),
	                 -EINVAL);
	assert_null(parsed);
	mem_free(text);
}

static void
test_json_parse_invalid_json_fails_with_einval_and_says_where(void **state)
{
	(void)state;
	assert_int_equal(parse("{\n  \"a\": 1,\n  \"b\": }", 1024, 8), -EINVAL);
	assert_null(parsed);
	assert_int_equal(e.code, -EINVAL);
	/* The error is on line 3. */
	assert_non_null(strstr(e.msg, "3"));
}

static void test_json_parse_trailing_garbage_fails(void **state)
{
	(void)state;
	assert_int_equal(parse("{\"a\":1} x", 1024, 8), -EINVAL);
	assert_null(parsed);
}

static void test_json_parse_empty_input_fails(void **state)
{
	(void)state;
	assert_int_equal(parse("", 1024, 8), -EINVAL);
	assert_null(parsed);
}

static void test_json_parse_unterminated_string_fails(void **state)
{
	(void)state;
	assert_int_equal(parse("[\"abc", 1024, 8), -EINVAL);
	assert_null(parsed);
}

static void
test_json_parse_reads_only_len_bytes_of_unterminated_input(void **state)
{
	/* Exactly 5 bytes, no NUL after them. */
	char *raw = mem_alloc(5);

	(void)state;
	assert_non_null(raw);
	memcpy(raw, "[1,2]", 5);
	assert_int_equal(json_parse_bounded(raw, 5, 5, 8, &parsed, &e), 0);
	assert_int_equal(json_array_size(parsed), 2);
	mem_free(raw);
}

static void test_json_parse_ignores_bytes_after_len(void **state)
{
	const char text[] = "[1,2]garbage";

	(void)state;
	assert_int_equal(json_parse_bounded(text, 5, 5, 8, &parsed, &e), 0);
	assert_int_equal(json_array_size(parsed), 2);
}

static void test_json_parse_of_truncated_prefix_fails(void **state)
{
	const char text[] = "[1,2]";

	(void)state;
	assert_int_equal(json_parse_bounded(text, 3, 100, 8, &parsed, &e),
	                 -EINVAL);
	assert_null(parsed);
}

static void test_json_parse_len_check_uses_len_not_string_length(void **state)
{
	const char text[] = "[1,2,3,4,5,6,7,8,9]";

	(void)state;
	/* The string is longer than max_len, but only 5 bytes are given. */
	assert_int_equal(
	        json_parse_bounded("[1,2]xxxxxxxxxxxx", 5, 5, 8, &parsed, &e),
	        0);
	json_decref(parsed);
	parsed = NULL;
	assert_int_equal(
	        json_parse_bounded(text, sizeof(text) - 1, 10, 8, &parsed, &e),
	        -E2BIG);
	assert_null(parsed);
}

static void test_json_parse_embedded_nul_within_len_fails(void **state)
{
	const char text[] = "[1,2]\0[3]";

	(void)state;
	assert_int_equal(
	        json_parse_bounded(text, sizeof(text) - 1, 100, 8, &parsed, &e),
	        -EINVAL);
	assert_null(parsed);
}

/* ---- json_get_str ---- */

static void test_json_get_str_returns_borrowed_string(void **state)
{
	json_t *o = object("{\"name\":\"web1\"}");
	const char *s = NULL;

	(void)state;
	assert_int_equal(json_get_str(o, "name", &s, &e), 0);
	assert_string_equal(s, "web1");
	assert_ptr_equal(s, json_string_value(json_object_get(o, "name")));
}

static void test_json_get_str_missing_key_is_enoent_naming_key(void **state)
{
	json_t *o = object("{\"name\":\"web1\"}");
	const char *s = "untouched";

	(void)state;
	assert_int_equal(json_get_str(o, "vmid", &s, &e), -ENOENT);
	assert_int_equal(e.code, -ENOENT);
	assert_non_null(strstr(e.msg, "vmid"));
	assert_string_equal(s, "untouched");
}

static void test_json_get_str_null_value_is_enoent(void **state)
{
	json_t *o = object("{\"name\":null}");
	const char *s = "untouched";

	(void)state;
	assert_int_equal(json_get_str(o, "name", &s, &e), -ENOENT);
	assert_string_equal(s, "untouched");
}

static void test_json_get_str_wrong_type_is_einval_naming_key(void **state)
{
	json_t *o = object("{\"name\":5}");
	const char *s = "untouched";

	(void)state;
	assert_int_equal(json_get_str(o, "name", &s, &e), -EINVAL);
	assert_int_equal(e.code, -EINVAL);
	assert_non_null(strstr(e.msg, "name"));
	assert_string_equal(s, "untouched");
}

/* ---- json_get_int ---- */

static void test_json_get_int_returns_value_in_range(void **state)
{
	json_t *o = object("{\"vmid\":100}");
	int64_t v = 0;

	(void)state;
	assert_int_equal(json_get_int(o, "vmid", 100, 999999999, &v, &e), 0);
	assert_int_equal(v, 100);
}

static void test_json_get_int_accepts_both_range_bounds(void **state)
{
	json_t *o = object("{\"lo\":-5,\"hi\":7}");
	int64_t v = 0;

	(void)state;
	assert_int_equal(json_get_int(o, "lo", -5, 7, &v, &e), 0);
	assert_int_equal(v, -5);
	assert_int_equal(json_get_int(o, "hi", -5, 7, &v, &e), 0);
	assert_int_equal(v, 7);
}

static void test_json_get_int_above_max_fails_naming_key(void **state)
{
	json_t *o = object("{\"port\":65536}");
	int64_t v = 42;

	(void)state;
	assert_true(json_get_int(o, "port", 1, 65535, &v, &e) < 0);
	assert_true(e.code < 0);
	assert_non_null(strstr(e.msg, "port"));
	assert_int_equal(v, 42);
}

static void test_json_get_int_below_min_fails_naming_key(void **state)
{
	json_t *o = object("{\"port\":0}");
	int64_t v = 42;

	(void)state;
	assert_true(json_get_int(o, "port", 1, 65535, &v, &e) < 0);
	assert_non_null(strstr(e.msg, "port"));
	assert_int_equal(v, 42);
}

static void test_json_get_int_missing_key_is_enoent(void **state)
{
	json_t *o = object("{}");
	int64_t v = 42;

	(void)state;
	assert_int_equal(json_get_int(o, "vmid", 0, 10, &v, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "vmid"));
	assert_int_equal(v, 42);
}

static void test_json_get_int_null_value_is_enoent(void **state)
{
	json_t *o = object("{\"vmid\":null}");
	int64_t v = 42;

	(void)state;
	assert_int_equal(json_get_int(o, "vmid", 0, 10, &v, &e), -ENOENT);
	assert_int_equal(v, 42);
}

static void test_json_get_int_string_number_is_einval(void **state)
{
	json_t *o = object("{\"vmid\":\"100\"}");
	int64_t v = 42;

	(void)state;
	assert_int_equal(json_get_int(o, "vmid", 0, 1000, &v, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "vmid"));
	assert_int_equal(v, 42);
}

static void test_json_get_int_real_number_is_einval(void **state)
{
	json_t *o = object("{\"vmid\":100.0}");
	int64_t v = 42;

	(void)state;
	assert_int_equal(json_get_int(o, "vmid", 0, 1000, &v, &e), -EINVAL);
	assert_int_equal(v, 42);
}

/* ---- json_get_bool ---- */

static void test_json_get_bool_accepts_true_and_false(void **state)
{
	json_t *o = object("{\"t\":true,\"f\":false}");
	bool v = false;

	(void)state;
	assert_int_equal(json_get_bool(o, "t", &v, &e), 0);
	assert_true(v);
	assert_int_equal(json_get_bool(o, "f", &v, &e), 0);
	assert_false(v);
}

static void test_json_get_bool_accepts_one_and_zero(void **state)
{
	json_t *o = object("{\"one\":1,\"zero\":0}");
	bool v = false;

	(void)state;
	assert_int_equal(json_get_bool(o, "one", &v, &e), 0);
	assert_true(v);
	assert_int_equal(json_get_bool(o, "zero", &v, &e), 0);
	assert_false(v);
}

static void test_json_get_bool_rejects_two(void **state)
{
	json_t *o = object("{\"onboot\":2}");
	bool v = true;

	(void)state;
	assert_int_equal(json_get_bool(o, "onboot", &v, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "onboot"));
	assert_true(v);
}

static void test_json_get_bool_rejects_minus_one(void **state)
{
	json_t *o = object("{\"onboot\":-1}");
	bool v = true;

	(void)state;
	assert_int_equal(json_get_bool(o, "onboot", &v, &e), -EINVAL);
	assert_true(v);
}

static void test_json_get_bool_rejects_string_yes(void **state)
{
	json_t *o = object("{\"onboot\":\"yes\"}");
	bool v = true;

	(void)state;
	assert_int_equal(json_get_bool(o, "onboot", &v, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "onboot"));
	assert_true(v);
}

static void test_json_get_bool_missing_key_is_enoent(void **state)
{
	json_t *o = object("{\"other\":true}");
	bool v = true;

	(void)state;
	assert_int_equal(json_get_bool(o, "onboot", &v, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "onboot"));
	assert_true(v);
}

/* ---- json_to_text ---- */

static void test_json_to_text_is_compact_in_insertion_order(void **state)
{
	json_t *o = json_object();
	char *text;

	(void)state;
	assert_non_null(o);
	json_object_set_new(o, "zeta", json_integer(1));
	json_object_set_new(o, "alpha", json_string("x y"));
	json_object_set_new(o, "mid", json_pack("[b,n]", 1));
	text = json_to_text(o);
	json_decref(o);
	assert_non_null(text);
	assert_string_equal(
	        text, "{\"zeta\":1,\"alpha\":\"x y\",\"mid\":[true,null]}");
	mem_free(text);
}

static void test_json_to_text_round_trips_through_parse(void **state)
{
	const char *src = "{\"b\":[1,2,{\"c\":\"\\\"q\\\"\"}],\"a\":false}";
	char *text;

	(void)state;
	assert_int_equal(parse(src, 1024, 8), 0);
	text = json_to_text(parsed);
	assert_non_null(text);
	assert_string_equal(text, src);
	mem_free(text);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup_json, teardown_json)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_json_parse_valid_object_returns_new_reference),
	        T(test_json_parse_longer_than_max_len_fails_with_e2big),
	        T(test_json_parse_of_exactly_max_len_succeeds),
	        T(test_json_parse_at_max_depth_succeeds),
	        T(test_json_parse_deeper_than_max_depth_fails_with_einval),
	        T(test_json_parse_counts_objects_and_arrays_toward_depth),
	        T(test_json_parse_depth_is_nesting_not_bracket_count),
	        T(test_json_parse_brackets_inside_strings_do_not_count_toward_depth),
	        T(test_json_parse_escaped_quote_does_not_end_a_string),
	        T(test_json_parse_escaped_backslash_before_quote_ends_the_string),
	        T(test_json_parse_very_deep_input_fails_without_recursing),
	        T(test_json_parse_invalid_json_fails_with_einval_and_says_where),
	        T(test_json_parse_trailing_garbage_fails),
	        T(test_json_parse_empty_input_fails),
	        T(test_json_parse_unterminated_string_fails),
	        T(test_json_parse_reads_only_len_bytes_of_unterminated_input),
	        T(test_json_parse_ignores_bytes_after_len),
	        T(test_json_parse_of_truncated_prefix_fails),
	        T(test_json_parse_len_check_uses_len_not_string_length),
	        T(test_json_parse_embedded_nul_within_len_fails),
	        T(test_json_get_str_returns_borrowed_string),
	        T(test_json_get_str_missing_key_is_enoent_naming_key),
	        T(test_json_get_str_null_value_is_enoent),
	        T(test_json_get_str_wrong_type_is_einval_naming_key),
	        T(test_json_get_int_returns_value_in_range),
	        T(test_json_get_int_accepts_both_range_bounds),
	        T(test_json_get_int_above_max_fails_naming_key),
	        T(test_json_get_int_below_min_fails_naming_key),
	        T(test_json_get_int_missing_key_is_enoent),
	        T(test_json_get_int_null_value_is_enoent),
	        T(test_json_get_int_string_number_is_einval),
	        T(test_json_get_int_real_number_is_einval),
	        T(test_json_get_bool_accepts_true_and_false),
	        T(test_json_get_bool_accepts_one_and_zero),
	        T(test_json_get_bool_rejects_two),
	        T(test_json_get_bool_rejects_minus_one),
	        T(test_json_get_bool_rejects_string_yes),
	        T(test_json_get_bool_missing_key_is_enoent),
	        T(test_json_to_text_is_compact_in_insertion_order),
	        T(test_json_to_text_round_trips_through_parse),
	};

	return cmocka_run_group_tests_name("lib/json", tests, NULL, NULL);
}
