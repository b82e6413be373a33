/* Unit tests for struct buf: caps, growth, failures, consume and steal. */
#include <errno.h>
#include <string.h>

#include "lib/lib.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static struct buf b;

static int setup_buf(void **state)
{
	(void)state;
	buf_init(&b, 1 << 20);
	return 0;
}

static int teardown_buf(void **state)
{
	(void)state;
	mem_fail_reset();
	buf_free(&b);
	return 0;
}

/* A copy of the visible state, to check that a failed call changed
 * nothing. */
struct snapshot {
	char *data;
	size_t len, cap, max;
	char bytes[256];
};

static void snap(struct snapshot *s)
{
	s->data = b.data;
	s->len = b.len;
	s->cap = b.cap;
	s->max = b.max;
	assert_true(b.len < sizeof(s->bytes));
	if (b.data != NULL)
		memcpy(s->bytes, b.data, b.len + 1);
}

static void assert_unchanged(const struct snapshot *s)
{
	assert_ptr_equal(b.data, s->data);
	assert_int_equal(b.len, s->len);
	assert_int_equal(b.cap, s->cap);
	assert_int_equal(b.max, s->max);
	if (b.data != NULL)
		assert_memory_equal(b.data, s->bytes, b.len + 1);
}

static void test_buf_init_is_empty_with_no_memory(void **state)
{
	(void)state;
	buf_free(&b);
	buf_init(&b, 100);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 100);
}

static void test_buf_append_copies_bytes_and_nul_terminates(void **state)
{
	(void)state;
	assert_int_equal(buf_append(&b, "abcdef", 3), 0);
	assert_int_equal(b.len, 3);
	assert_string_equal(b.data, "abc");
	assert_true(b.cap >= b.len + 1);
	assert_int_equal(buf_append_str(&b, "de"), 0);
	assert_int_equal(b.len, 5);
	assert_string_equal(b.data, "abcde");
}

static void test_buf_append_keeps_embedded_nul_bytes(void **state)
{
	(void)state;
	assert_int_equal(buf_append(&b, "a\0b", 3), 0);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "a\0b\0", 4);
}

static void test_buf_append_up_to_max_exactly_succeeds(void **state)
{
	(void)state;
	buf_free(&b);
	buf_init(&b, 8);
	assert_int_equal(buf_append(&b, "12345678", 8), 0);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.data, "12345678");
}

static void
test_buf_append_past_cap_fails_and_leaves_buffer_unchanged(void **state)
{
	struct snapshot s;

	(void)state;
	buf_free(&b);
	buf_init(&b, 8);
	assert_int_equal(buf_append(&b, "12345", 5), 0);
	snap(&s);
	assert_int_equal(buf_append(&b, "6789", 4), -E2BIG);
	assert_unchanged(&s);
	assert_string_equal(b.data, "12345");
}

static void
test_buf_first_append_past_cap_fails_without_allocating(void **state)
{
	(void)state;
	buf_free(&b);
	buf_init(&b, 4);
	assert_int_equal(buf_append_str(&b, "hello"), -E2BIG);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

static void
test_buf_printf_past_cap_fails_and_leaves_buffer_unchanged(void **state)
{
	struct snapshot s;

	(void)state;
	buf_free(&b);
	buf_init(&b, 10);
	assert_int_equal(buf_printf(&b, "%d", 1234), 0);
	snap(&s);
	assert_int_equal(buf_printf(&b, "-%s-", "abcdefgh"), -E2BIG);
	assert_unchanged(&s);
	assert_string_equal(b.data, "1234");
}

static void test_buf_reserve_past_cap_fails(void **state)
{
	struct snapshot s;

	(void)state;
	buf_free(&b);
	buf_init(&b, 16);
	assert_int_equal(buf_append_str(&b, "abc"), 0);
	snap(&s);
	assert_int_equal(buf_reserve(&b, 14), -E2BIG);
	assert_unchanged(&s);
	assert_int_equal(buf_reserve(&b, 13), 0);
	assert_true(b.cap >= 16 + 1);
	assert_string_equal(b.data, "abc");
}

static void test_buf_with_max_of_size_max_grows_like_any_other(void **state)
{
	(void)state;
	/* SIZE_MAX is how a caller says "no practical cap"; computing the
	 * capacity as max + 1 must not wrap to 0. */
	buf_free(&b);
	buf_init(&b, SIZE_MAX);
	assert_int_equal(buf_append_str(&b, "abc"), 0);
	assert_true(b.cap >= 4);
	assert_string_equal(b.data, "abc");
}

static void test_buf_reserve_whose_size_wraps_around_fails(void **state)
{
	(void)state;
	buf_free(&b);
	buf_init(&b, SIZE_MAX);
	/* len + extra + 1 (the terminator) wraps to 0: nothing can be
	 * reserved, and saying 0 would let the next append overflow. */
	assert_true(buf_reserve(&b, SIZE_MAX) < 0);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

static void
test_buf_growth_allocation_failure_returns_enomem_and_leaves_buffer_unchanged(
        void **state)
{
	char big[4096];
	struct snapshot s;

	(void)state;
	assert_int_equal(buf_append_str(&b, "kept"), 0);
	snap(&s);
	memset(big, 'z', sizeof(big));
	mem_fail_after(0);
	assert_int_equal(buf_append(&b, big, sizeof(big)), -ENOMEM);
	mem_fail_reset();
	assert_unchanged(&s);
	assert_string_equal(b.data, "kept");
}

static void test_buf_first_allocation_failure_leaves_buffer_empty(void **state)
{
	(void)state;
	mem_fail_after(0);
	assert_int_equal(buf_append_str(&b, "x"), -ENOMEM);
	mem_fail_reset();
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

static void
test_buf_printf_growth_allocation_failure_returns_enomem(void **state)
{
	char big[2048];
	struct snapshot s;

	(void)state;
	assert_int_equal(buf_append_str(&b, "head"), 0);
	snap(&s);
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	mem_fail_after(0);
	assert_int_equal(buf_printf(&b, "%s", big), -ENOMEM);
	mem_fail_reset();
	assert_unchanged(&s);
}

static void
test_buf_appends_survive_every_allocation_failure_point(void **state)
{
	char chunk[300];
	bool completed = false;

	(void)state;
	memset(chunk, 'k', sizeof(chunk));
	/* Sweep: fail the n-th allocation; each step either succeeds whole
	 * or fails with -ENOMEM leaving what was there before. */
	for (long n = 0; n < 64 && !completed; n++) {
		int rc = 0, steps;

		buf_reset(&b);
		buf_free(&b);
		buf_init(&b, 1 << 20);
		mem_fail_after(n);
		for (steps = 0; steps < 20; steps++) {
			size_t before = b.len;

			rc = buf_append(&b, chunk, sizeof(chunk));
			if (rc != 0) {
				assert_int_equal(rc, -ENOMEM);
				assert_int_equal(b.len, before);
				if (b.data != NULL)
					assert_int_equal(b.data[b.len], '\0');
				break;
			}
			assert_int_equal(b.len, before + sizeof(chunk));
			assert_int_equal(b.data[b.len], '\0');
		}
		mem_fail_reset();
		if (n == 0)
			assert_int_equal(rc, -ENOMEM);
		completed = rc == 0;
	}
	assert_true(completed);
	assert_int_equal(b.len, 20 * sizeof(chunk));
}

static void test_buf_printf_grows_past_initial_capacity(void **state)
{
	char want[5001];

	(void)state;
	assert_int_equal(buf_printf(&b, "%s=", "key"), 0);
	memset(want, 'v', 5000);
	want[5000] = '\0';
	assert_int_equal(buf_printf(&b, "%s;%d", want, 42), 0);
	assert_int_equal(b.len, 4 + 5000 + 3);
	assert_int_equal(strncmp(b.data, "key=", 4), 0);
	assert_memory_equal(b.data + 4, want, 5000);
	assert_string_equal(b.data + 4 + 5000, ";42");
}

static void test_buf_many_small_printfs_accumulate(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_printf(&b, "%03d,", i), 0);
	assert_int_equal(b.len, 4000);
	assert_int_equal(strncmp(b.data, "000,001,002,", 12), 0);
	assert_string_equal(b.data + 3996, "999,");
}

static void test_buf_printf_of_empty_string_keeps_buffer_valid(void **state)
{
	(void)state;
	assert_int_equal(buf_printf(&b, "%s", ""), 0);
	assert_int_equal(b.len, 0);
	assert_true(b.data == NULL || b.data[0] == '\0');
}

static void test_buf_reset_empties_and_keeps_memory(void **state)
{
	char *data;

	(void)state;
	assert_int_equal(buf_append_str(&b, "some text"), 0);
	data = b.data;
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_ptr_equal(b.data, data);
	assert_string_equal(b.data, "");
	assert_int_equal(buf_append_str(&b, "new"), 0);
	assert_string_equal(b.data, "new");
}

static void test_buf_consume_drops_prefix_and_keeps_terminator(void **state)
{
	(void)state;
	assert_int_equal(buf_append_str(&b, "hello world"), 0);
	buf_consume(&b, 6);
	assert_int_equal(b.len, 5);
	assert_string_equal(b.data, "world");
	buf_consume(&b, 0);
	assert_string_equal(b.data, "world");
	assert_int_equal(buf_append_str(&b, "!"), 0);
	assert_string_equal(b.data, "world!");
}

static void test_buf_consume_all_leaves_empty_string(void **state)
{
	(void)state;
	assert_int_equal(buf_append_str(&b, "abc"), 0);
	buf_consume(&b, 3);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
}

static void test_buf_consume_frees_room_under_the_cap(void **state)
{
	(void)state;
	buf_free(&b);
	buf_init(&b, 6);
	assert_int_equal(buf_append_str(&b, "abcdef"), 0);
	assert_int_equal(buf_append_str(&b, "g"), -E2BIG);
	buf_consume(&b, 2);
	assert_int_equal(buf_append_str(&b, "gh"), 0);
	assert_string_equal(b.data, "cdefgh");
}

static void test_buf_steal_hands_over_data_and_resets(void **state)
{
	char *stolen;

	(void)state;
	assert_int_equal(buf_append_str(&b, "take me"), 0);
	stolen = buf_steal(&b);
	assert_non_null(stolen);
	assert_string_equal(stolen, "take me");
	assert_int_equal(b.len, 0);
	assert_ptr_not_equal(b.data, stolen);
	/* The buffer is usable again and does not share the stolen block. */
	assert_int_equal(buf_append_str(&b, "again"), 0);
	assert_string_equal(b.data, "again");
	assert_string_equal(stolen, "take me");
	mem_free(stolen);
}

static void test_buf_steal_keeps_the_cap(void **state)
{
	char *stolen;

	(void)state;
	buf_free(&b);
	buf_init(&b, 4);
	assert_int_equal(buf_append_str(&b, "abcd"), 0);
	stolen = buf_steal(&b);
	mem_free(stolen);
	assert_int_equal(b.max, 4);
	assert_int_equal(buf_append_str(&b, "abcde"), -E2BIG);
}

static void test_buf_free_releases_and_allows_reuse(void **state)
{
	(void)state;
	assert_int_equal(buf_append_str(&b, "x"), 0);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	buf_init(&b, 10);
	assert_int_equal(buf_append_str(&b, "y"), 0);
	assert_string_equal(b.data, "y");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup_buf, teardown_buf)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_buf_init_is_empty_with_no_memory),
	        T(test_buf_append_copies_bytes_and_nul_terminates),
	        T(test_buf_append_keeps_embedded_nul_bytes),
	        T(test_buf_append_up_to_max_exactly_succeeds),
	        T(test_buf_append_past_cap_fails_and_leaves_buffer_unchanged),
	        T(test_buf_first_append_past_cap_fails_without_allocating),
	        T(test_buf_printf_past_cap_fails_and_leaves_buffer_unchanged),
	        T(test_buf_reserve_past_cap_fails),
	        T(test_buf_reserve_whose_size_wraps_around_fails),
	        T(test_buf_with_max_of_size_max_grows_like_any_other),
	        T(test_buf_growth_allocation_failure_returns_enomem_and_leaves_buffer_unchanged),
	        T(test_buf_first_allocation_failure_leaves_buffer_empty),
	        T(test_buf_printf_growth_allocation_failure_returns_enomem),
	        T(test_buf_appends_survive_every_allocation_failure_point),
	        T(test_buf_printf_grows_past_initial_capacity),
	        T(test_buf_many_small_printfs_accumulate),
	        T(test_buf_printf_of_empty_string_keeps_buffer_valid),
	        T(test_buf_reset_empties_and_keeps_memory),
	        T(test_buf_consume_drops_prefix_and_keeps_terminator),
	        T(test_buf_consume_all_leaves_empty_string),
	        T(test_buf_consume_frees_room_under_the_cap),
	        T(test_buf_steal_hands_over_data_and_resets),
	        T(test_buf_steal_keeps_the_cap),
	        T(test_buf_free_releases_and_allows_reuse),
	};

	return cmocka_run_group_tests_name("lib/buf", tests, NULL, NULL);
}
