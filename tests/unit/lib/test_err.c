/* Unit tests for struct err: setting, errno text, wrapping and truncation. */
#include <errno.h>
#include <string.h>

#include "lib/lib.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* An err followed by bytes that must never be written: catches overflow
 * even without a sanitizer. */
struct guarded_err {
	struct err e;
	unsigned char canary[64];
};

static void guard_init(struct guarded_err *g)
{
	memset(g, 0, sizeof(*g));
	memset(g->canary, 0xa5, sizeof(g->canary));
	err_clear(&g->e);
}

static void assert_guard_intact(const struct guarded_err *g)
{
	for (size_t i = 0; i < sizeof(g->canary); i++)
		assert_int_equal(g->canary[i], 0xa5);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static void test_err_clear_empties_code_and_message(void **state)
{
	struct err e;

	(void)state;
	memset(&e, 'x', sizeof(e));
	err_clear(&e);
	assert_int_equal(e.code, 0);
	assert_string_equal(e.msg, "");
}

static void test_err_set_formats_message_and_returns_code(void **state)
{
	struct err e;
	int rc;

	(void)state;
	err_clear(&e);
	rc = err_set(&e, -EINVAL, "bad port %d on %s", 70000, "n1");
	assert_int_equal(rc, -EINVAL);
	assert_int_equal(e.code, -EINVAL);
	assert_string_equal(e.msg, "bad port 70000 on n1");
}

static void test_err_set_replaces_previous_error(void **state)
{
	struct err e;

	(void)state;
	err_clear(&e);
	err_set(&e, -EINVAL, "first");
	err_set(&e, -ENOENT, "second");
	assert_int_equal(e.code, -ENOENT);
	assert_string_equal(e.msg, "second");
}

static void test_err_set_accepts_null_err_and_returns_code(void **state)
{
	(void)state;
	assert_int_equal(err_set(NULL, -EPERM, "nobody listens %d", 1), -EPERM);
}

static void test_err_sys_appends_strerror_of_code(void **state)
{
	struct err e;
	char want[ERR_MSG_MAX];
	int rc;

	(void)state;
	err_clear(&e);
	rc = err_sys(&e, -ENOENT, "open %s", "/etc/cairn.conf");
	snprintf(want, sizeof(want), "open /etc/cairn.conf: %s",
	         strerror(ENOENT));
	assert_int_equal(rc, -ENOENT);
	assert_int_equal(e.code, -ENOENT);
	assert_string_equal(e.msg, want);
}

static void test_err_wrap_prefixes_context_and_returns_code(void **state)
{
	struct err e;
	int rc;

	(void)state;
	err_clear(&e);
	err_set(&e, -EIO, "rbd_open failed");
	rc = err_wrap(&e, "storage %s", "ceph");
	assert_int_equal(rc, -EIO);
	assert_int_equal(e.code, -EIO);
	assert_string_equal(e.msg, "storage ceph: rbd_open failed");
}

static void test_err_wrap_chains_outermost_first(void **state)
{
	struct err e;

	(void)state;
	err_clear(&e);
	err_set(&e, -ENOENT, "reason");
	err_wrap(&e, "inner");
	err_wrap(&e, "outer");
	assert_string_equal(e.msg, "outer: inner: reason");
	assert_int_equal(e.code, -ENOENT);
}

static void test_err_wrap_of_sys_error_keeps_errno_text_last(void **state)
{
	struct err e;
	char want[ERR_MSG_MAX];

	(void)state;
	err_clear(&e);
	err_sys(&e, -ENOENT, "rbd_open");
	err_wrap(&e, "storage ceph");
	err_wrap(&e, "start vm %d", 100);
	snprintf(want, sizeof(want), "start vm 100: storage ceph: rbd_open: %s",
	         strerror(ENOENT));
	assert_string_equal(e.msg, want);
}

static void
test_err_set_message_of_exactly_max_minus_one_is_not_truncated(void **state)
{
	struct guarded_err g;
	char text[ERR_MSG_MAX];

	(void)state;
	guard_init(&g);
	memset(text, 'a', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	err_set(&g.e, -EINVAL, "%s", text);
	assert_string_equal(g.e.msg, text);
	assert_guard_intact(&g);
}

static void test_err_set_truncates_over_long_message_with_ellipsis(void **state)
{
	struct guarded_err g;
	char text[3 * ERR_MSG_MAX];

	(void)state;
	guard_init(&g);
	memset(text, 'b', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(err_set(&g.e, -EINVAL, "%s", text), -EINVAL);
	assert_int_equal(g.e.code, -EINVAL);
	assert_int_equal(strlen(g.e.msg), ERR_MSG_MAX - 1);
	assert_true(ends_with(g.e.msg, "..."));
	assert_int_equal(strncmp(g.e.msg, text, ERR_MSG_MAX - 4), 0);
	assert_guard_intact(&g);
}

static void test_err_sys_truncates_over_long_message_with_ellipsis(void **state)
{
	struct guarded_err g;
	char text[2 * ERR_MSG_MAX];

	(void)state;
	guard_init(&g);
	memset(text, 'c', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	err_sys(&g.e, -EACCES, "%s", text);
	assert_int_equal(g.e.code, -EACCES);
	assert_int_equal(strlen(g.e.msg), ERR_MSG_MAX - 1);
	assert_true(ends_with(g.e.msg, "..."));
	assert_guard_intact(&g);
}

static void
test_err_wrap_truncates_with_ellipsis_and_keeps_context_first(void **state)
{
	struct guarded_err g;
	char text[ERR_MSG_MAX];

	(void)state;
	guard_init(&g);
	memset(text, 'd', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	err_set(&g.e, -EIO, "%s", text);
	assert_int_equal(err_wrap(&g.e, "context"), -EIO);
	assert_int_equal(strlen(g.e.msg), ERR_MSG_MAX - 1);
	assert_int_equal(strncmp(g.e.msg, "context: ddd", 12), 0);
	assert_true(ends_with(g.e.msg, "..."));
	assert_guard_intact(&g);
}

static void test_err_wrap_with_over_long_context_does_not_overflow(void **state)
{
	struct guarded_err g;
	char ctx[2 * ERR_MSG_MAX];

	(void)state;
	guard_init(&g);
	memset(ctx, 'e', sizeof(ctx) - 1);
	ctx[sizeof(ctx) - 1] = '\0';
	err_set(&g.e, -EIO, "reason");
	err_wrap(&g.e, "%s", ctx);
	assert_int_equal(g.e.code, -EIO);
	assert_int_equal(strlen(g.e.msg), ERR_MSG_MAX - 1);
	assert_true(ends_with(g.e.msg, "..."));
	assert_guard_intact(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_err_clear_empties_code_and_message),
	        cmocka_unit_test(test_err_set_formats_message_and_returns_code),
	        cmocka_unit_test(test_err_set_replaces_previous_error),
	        cmocka_unit_test(
	                test_err_set_accepts_null_err_and_returns_code),
	        cmocka_unit_test(test_err_sys_appends_strerror_of_code),
	        cmocka_unit_test(
	                test_err_wrap_prefixes_context_and_returns_code),
	        cmocka_unit_test(test_err_wrap_chains_outermost_first),
	        cmocka_unit_test(
	                test_err_wrap_of_sys_error_keeps_errno_text_last),
	        cmocka_unit_test(
	                test_err_set_message_of_exactly_max_minus_one_is_not_truncated),
	        cmocka_unit_test(
	                test_err_set_truncates_over_long_message_with_ellipsis),
	        cmocka_unit_test(
	                test_err_sys_truncates_over_long_message_with_ellipsis),
	        cmocka_unit_test(
	                test_err_wrap_truncates_with_ellipsis_and_keeps_context_first),
	        cmocka_unit_test(
	                test_err_wrap_with_over_long_context_does_not_overflow),
	};

	return cmocka_run_group_tests_name("lib/err", tests, NULL, NULL);
}
