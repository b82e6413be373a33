/* Unit tests for checked allocation: overflow checks and the failure seam. */
#include <string.h>

#include "lib/lib.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static int teardown_mem(void **state)
{
	(void)state;
	mem_fail_reset();
	return 0;
}

static void test_mem_alloc_returns_writable_memory(void **state)
{
	char *p;

	(void)state;
	p = mem_alloc(64);
	assert_non_null(p);
	memset(p, 'x', 64);
	mem_free(p);
}

static void test_mem_calloc_returns_zeroed_memory(void **state)
{
	unsigned char *p;

	(void)state;
	p = mem_calloc(32, 8);
	assert_non_null(p);
	for (size_t i = 0; i < 32 * 8; i++)
		assert_int_equal(p[i], 0);
	mem_free(p);
}

static void test_mem_calloc_overflowing_size_returns_null(void **state)
{
	(void)state;
	assert_null(mem_calloc(SIZE_MAX / 2, 3));
	assert_null(mem_calloc(3, SIZE_MAX / 2));
	assert_null(mem_calloc(SIZE_MAX, SIZE_MAX));
}

static void
test_mem_realloc_array_overflowing_size_returns_null_and_keeps_ptr(void **state)
{
	char *p;

	(void)state;
	assert_null(mem_realloc_array(NULL, SIZE_MAX / 2, 3));
	p = mem_alloc(8);
	assert_non_null(p);
	memcpy(p, "keepme!", 8);
	assert_null(mem_realloc_array(p, SIZE_MAX / 2, 3));
	/* The old block is still ours and intact. */
	assert_string_equal(p, "keepme!");
	mem_free(p);
}

static void test_mem_realloc_array_grows_and_keeps_contents(void **state)
{
	int *p, *q;

	(void)state;
	p = mem_realloc_array(NULL, 4, sizeof(int));
	assert_non_null(p);
	for (int i = 0; i < 4; i++)
		p[i] = i * 11;
	q = mem_realloc_array(p, 1000, sizeof(int));
	assert_non_null(q);
	for (int i = 0; i < 4; i++)
		assert_int_equal(q[i], i * 11);
	q[999] = 7;
	mem_free(q);
}

static void test_mem_strdup_copies_string(void **state)
{
	const char *orig = "cairn";
	char *copy;

	(void)state;
	copy = mem_strdup(orig);
	assert_non_null(copy);
	assert_ptr_not_equal(copy, orig);
	assert_string_equal(copy, "cairn");
	mem_free(copy);
}

static void test_mem_strndup_stops_at_bound(void **state)
{
	char *copy;

	(void)state;
	copy = mem_strndup("hello world", 5);
	assert_non_null(copy);
	assert_string_equal(copy, "hello");
	mem_free(copy);
}

static void test_mem_strndup_of_shorter_string_copies_it_whole(void **state)
{
	char *copy;

	(void)state;
	copy = mem_strndup("hi", 100);
	assert_non_null(copy);
	assert_string_equal(copy, "hi");
	mem_free(copy);
}

static void test_mem_strndup_does_not_read_past_bound(void **state)
{
	/* Exactly 4 bytes, no terminator: reading a 5th is a bug the
	 * sanitizer reports. */
	char *raw, *copy;

	(void)state;
	raw = mem_alloc(4);
	assert_non_null(raw);
	memcpy(raw, "abcd", 4);
	copy = mem_strndup(raw, 4);
	assert_non_null(copy);
	assert_string_equal(copy, "abcd");
	mem_free(copy);
	mem_free(raw);
}

static void test_mem_strndup_with_zero_bound_gives_empty_string(void **state)
{
	char *copy;

	(void)state;
	copy = mem_strndup("abc", 0);
	assert_non_null(copy);
	assert_string_equal(copy, "");
	mem_free(copy);
}

static void test_mem_free_of_null_is_harmless(void **state)
{
	(void)state;
	mem_free(NULL);
}

static void test_mem_fail_after_zero_fails_the_next_allocation(void **state)
{
	(void)state;
	mem_fail_after(0);
	assert_null(mem_alloc(16));
}

static void test_mem_fail_after_two_lets_two_succeed_then_fails(void **state)
{
	void *a, *b;

	(void)state;
	mem_fail_after(2);
	a = mem_alloc(16);
	b = mem_alloc(16);
	assert_non_null(a);
	assert_non_null(b);
	assert_null(mem_alloc(16));
	mem_free(a);
	mem_free(b);
}

static void test_mem_fail_after_keeps_failing_until_reset(void **state)
{
	void *p;

	(void)state;
	mem_fail_after(0);
	for (int i = 0; i < 5; i++)
		assert_null(mem_alloc(8));
	mem_fail_reset();
	p = mem_alloc(8);
	assert_non_null(p);
	mem_free(p);
}

static void test_mem_fail_after_applies_to_every_allocator(void **state)
{
	void *p;

	(void)state;
	mem_fail_after(0);
	assert_null(mem_alloc(1));
	assert_null(mem_calloc(1, 1));
	assert_null(mem_realloc_array(NULL, 1, 1));
	assert_null(mem_strdup("x"));
	assert_null(mem_strndup("xyz", 2));
	mem_fail_reset();
	p = mem_strdup("ok");
	assert_non_null(p);
	mem_free(p);
}

static void test_mem_failed_realloc_keeps_the_old_block(void **state)
{
	char *p;

	(void)state;
	p = mem_strdup("still here");
	assert_non_null(p);
	mem_fail_after(0);
	assert_null(mem_realloc_array(p, 4096, 1));
	mem_fail_reset();
	assert_string_equal(p, "still here");
	mem_free(p);
}

static void test_mem_fail_after_counts_successes_across_allocators(void **state)
{
	void *a, *b;

	(void)state;
	mem_fail_after(2);
	a = mem_calloc(2, 2);
	b = mem_strdup("b");
	assert_non_null(a);
	assert_non_null(b);
	assert_null(mem_realloc_array(NULL, 2, 2));
	mem_free(a);
	mem_free(b);
}

#define T(name) cmocka_unit_test_teardown(name, teardown_mem)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_mem_alloc_returns_writable_memory),
	        T(test_mem_calloc_returns_zeroed_memory),
	        T(test_mem_calloc_overflowing_size_returns_null),
	        T(test_mem_realloc_array_overflowing_size_returns_null_and_keeps_ptr),
	        T(test_mem_realloc_array_grows_and_keeps_contents),
	        T(test_mem_strdup_copies_string),
	        T(test_mem_strndup_stops_at_bound),
	        T(test_mem_strndup_of_shorter_string_copies_it_whole),
	        T(test_mem_strndup_does_not_read_past_bound),
	        T(test_mem_strndup_with_zero_bound_gives_empty_string),
	        T(test_mem_free_of_null_is_harmless),
	        T(test_mem_fail_after_zero_fails_the_next_allocation),
	        T(test_mem_fail_after_two_lets_two_succeed_then_fails),
	        T(test_mem_fail_after_keeps_failing_until_reset),
	        T(test_mem_fail_after_applies_to_every_allocator),
	        T(test_mem_failed_realloc_keeps_the_old_block),
	        T(test_mem_fail_after_counts_successes_across_allocators),
	};

	return cmocka_run_group_tests_name("lib/mem", tests, NULL, NULL);
}
